#!/usr/bin/env bats
# Trees (docs/PROTOCOL.md section 10): a directory as one thing with one id. Tree ids are
# checked against the Python reference (bats/p2p_ref.py tree), which walks and encodes the
# tree a second time, and the hostile trees come from its fake peer (treepeer).

bats_require_minimum_version 1.5.0

load ../bats/common

# make_tree DIR: a small tree: files at the top and nested, an empty file, an empty directory,
# a file that is another's copy, an executable, a name with a space.
make_tree() {
	mkdir -p "$1/sub/deeper" "$1/empty" "$1/other"
	make_file "$1/a.bin" 100000 1
	make_file "$1/sub/b.bin" 300000 2
	make_file "$1/sub/deeper/c d.txt" 5000 3
	: >"$1/zero"
	cp "$1/a.bin" "$1/other/a-copy.bin"
	chmod 0755 "$1/sub/b.bin"
	chmod 0600 "$1/sub/deeper/c d.txt"
}

@test "p2p-chunk --tree --id: the tree id, the same as the reference's" {
	make_tree d
	run -0 --separate-stderr p2p-chunk --tree --id d
	assert_output --regexp '^[0-9a-f]{64}$'
	assert_output "$(python3 "$P2P_REF" tree d)"
	assert_stderr ''
}

@test "p2p-chunk --tree: one tree manifest the reference decodes, every entry as on disk" {
	make_tree d
	p2p-chunk --tree d >tree.mf
	run -0 python3 "$P2P_REF" treemanifest tree.mf
	id=$(p2p-chunk --tree --id d)
	echo "$output" | jq -e --arg id "$id" '.id == $id and .name == "d" and .canonical' >/dev/null
	echo "$output" | jq -e '.keys == ["v", "id", "name", "tree", "path"]' >/dev/null
	echo "$output" | jq -c '.entries[]' >entries
	assert_equal "$(jq -r '.[0]' entries | tr '\n' '|')" \
		"a.bin|empty|other/a-copy.bin|sub/b.bin|sub/deeper/c d.txt|zero|"
	assert_equal "$(jq -c 'select(.[0] == "sub/b.bin") | .[1:3]' entries)" "[300000,493]"
	assert_equal "$(jq -c 'select(.[0] == "sub/deeper/c d.txt") | .[2]' entries)" "384"
	assert_equal "$(jq -r 'select(.[0] == "sub/b.bin") | .[3]' entries)" \
		"$(p2p-chunk --id d/sub/b.bin)"
	assert_equal "$(jq -c 'select(.[0] == "empty")' entries)" '["empty"]'
}

@test "p2p-chunk --tree: the id depends on bytes, paths, modes and empty directories only" {
	make_tree d
	id=$(p2p-chunk --tree --id d)
	cp -a d e
	touch -d '2001-01-01' e/a.bin
	assert_equal "$(p2p-chunk --tree --id e)" "$id"
	chmod 0644 e/sub/b.bin
	refute [ "$(p2p-chunk --tree --id e)" = "$id" ]
	chmod 0755 e/sub/b.bin
	rmdir e/empty
	refute [ "$(p2p-chunk --tree --id e)" = "$id" ]
	mkdir e/empty
	mv e/zero e/zero2
	refute [ "$(p2p-chunk --tree --id e)" = "$id" ]
	mv e/zero2 e/zero
	assert_equal "$(p2p-chunk --tree --id e)" "$id"
}

@test "p2p-chunk --tree: a symbolic link is skipped with a warning, not followed" {
	make_tree d
	id=$(p2p-chunk --tree --id d)
	ln -s /etc d/etc-link
	ln -s a.bin d/alias
	run -0 --separate-stderr p2p-chunk --tree --id d
	assert_output "$id"
	assert_stderr --partial 'd/etc-link: a symbolic link; skipped'
	assert_stderr --partial 'd/alias: a symbolic link; skipped'
	assert_equal "$(python3 "$P2P_REF" tree d)" "$id"
}

@test "p2p-chunk --tree: an empty directory has the empty tree's id of PROTOCOL.md" {
	mkdir d
	run -0 --separate-stderr p2p-chunk --tree --id d
	assert_output 54128b41bb79c58b9bd54459b32664fa2697abb2de4200e3f7913200a3af33d5
}

@test "p2p-chunk --tree: the nested vector of PROTOCOL.md, from files on disk" {
	mkdir -p d/d
	: >d/a
	printf '\0' >d/d/b
	chmod 0644 d/a
	chmod 0755 d/d/b
	run -0 p2p-chunk --tree --id d
	assert_output 791eae33b482652904349cc44e749c215869628f754419f9d2e98afbdd85cccf
	mkdir d/e
	rm d/d/b
	rmdir d/d
	run -0 p2p-chunk --tree --id d
	assert_output ad028ae2844bbf612450c5edd90ba95b21ca4bfcbddcacb4beb87a89444dc9c7
}

@test "p2p-chunk --tree: one DIR only, and not a terminal" {
	mkdir a b
	run -2 --separate-stderr p2p-chunk --tree a b
	assert_stderr --partial '--tree takes one DIR'
	run -1 --separate-stderr p2p-chunk --tree --id missing
	assert_stderr --partial 'missing'
}

@test "p2p-serve -d: serves the tree by its id (logged), and HAS says yes for it" {
	make_tree d
	id=$(p2p-chunk --tree --id d)
	start_server -d d
	wait_for grep -q "serving tree $id d (5 files, 505000 bytes)" "$SERVER_ERR"
	run -0 --separate-stderr timeout 20 p2p-discover -t 3 -b "$SERVER_ADDR" --hash "$id" </dev/null
	assert_output --partial "$SERVER_PORT"
}

@test "p2p-fetch --list: files by their paths in the tree, and the tree, marked with '/'" {
	make_tree d
	id=$(p2p-chunk --tree --id d)
	start_server -d d
	run -0 --separate-stderr timeout 20 p2p-fetch --list -p "$SERVER_ADDR" </dev/null
	assert_line "$(p2p-chunk --id d/sub/b.bin)"$'\t300000\tsub/b.bin'
	assert_line "$(p2p-chunk --id 'd/sub/deeper/c d.txt')"$'\t5000\tsub/deeper/c d.txt'
	assert_line "$id"$'\t505000\td/'
	# a-copy.bin is a.bin's bytes: one id, listed once
	assert_equal "$(grep -c "$(p2p-chunk --id d/a.bin)" <<<"$output")" 1
	run -0 --separate-stderr timeout 20 p2p-fetch --list --json -p "$SERVER_ADDR" </dev/null
	echo "$output" >list.json
	assert_equal "$(jq -c --arg id "$id" 'select(.id == $id) | [.type, .files, .size, .name]' list.json)" \
		'["tree",5,505000,"d"]'
	assert_equal "$(jq -c 'select(.path == "sub/b.bin") | [.type, .name]' list.json)" '["file","b.bin"]'
}

@test "an old peer (the reference, caps 0): LIST of three elements, no tree; a tree id is not found" {
	make_tree d
	id=$(p2p-chunk --tree --id d)
	start_server -d d
	run -0 --separate-stderr python3 "$P2P_REF" list "$SERVER_ADDR"
	assert_line "$(p2p-chunk --id d/sub/b.bin)"$'\t300000\tb.bin'
	refute_output --partial "$id"
	run -0 --separate-stderr python3 "$P2P_REF" fetch "$SERVER_ADDR" "$(p2p-chunk --id d/sub/b.bin)"
	run -1 --separate-stderr python3 "$P2P_REF" fetch "$SERVER_ADDR" "$id"
	assert_stderr --partial 'ERROR 1: a tree: needs the trees capability'
}

# tree_tour: a tree served by p2p-serve -d; sets ID.
serve_tree() {
	make_tree d
	ID=$(p2p-chunk --tree --id d)
	start_server -d d
}

# same_tree A B: the same paths, bytes and modes (and empty directories) under A and B.
same_tree() {
	diff <(cd "$1" && find . -printf '%p %y %m %s\n' | sort) \
		<(cd "$2" && find . -printf '%p %y %m %s\n' | sort)
	diff -r "$1" "$2"
}

@test "p2p-fetch TREEID -o DIR: the tree recreated, modes and empty directories too" {
	serve_tree
	run -0 --separate-stderr timeout 60 p2p-fetch -v -p "$SERVER_ADDR" -o out "$ID" </dev/null
	same_tree d out
	assert_equal "$(stat -c %a out/sub/b.bin)" 755
	assert_equal "$(stat -c %a 'out/sub/deeper/c d.txt')" 600
	[ -d out/empty ]
	assert_stderr --partial "$ID: complete, 5 files (3 fetched, 0 already there, 1 copies)"
	assert_equal "$(p2p-chunk --tree --id out)" "$ID"
	assert_equal "$(find out -name '*.part' | wc -l)" 0
}

@test "p2p-fetch TREEID -o DIR: a tree of 3000 tiny files, byte-identical, over reused connections" {
	# Many files, each fetched on a connection an earlier file's fetch
	# left (the server unchoked it then and does not say so again), and
	# some listed twice (copies). Was: stuck after the first few files,
	# and time growing with the cube of the count.
	python3 - d <<'PY'
import os, random, sys
r = random.Random(7)
for i in range(3000):
    sub = os.path.join(sys.argv[1], "d%d" % (i % 6), "e" if i % 4 == 0 else "")
    os.makedirs(sub, exist_ok=True)
    data = r.randbytes(r.randint(1, 300)) if i % 50 else b"same bytes"
    with open(os.path.join(sub, "f%d" % i), "wb") as f:
        f.write(data)
PY
	ID=$(p2p-chunk --tree --id d)
	start_server -d d
	wait_for grep -q "serving tree $ID" "$SERVER_ERR"
	run -0 --separate-stderr timeout 240 p2p-fetch -v -p "$SERVER_ADDR" -o out "$ID" </dev/null
	# Not same_tree: a directory's own size depends on the names it held.
	diff -r d out
	diff <(cd d && find . -printf '%p %y %m\n' | sort) \
		<(cd out && find . -printf '%p %y %m\n' | sort)
	assert_stderr --partial "$ID: complete, 3000 files (2941 fetched, 0 already there, 59 copies)"
	assert_equal "$(find out -name '*.part' | wc -l)" 0
}

@test "p2p-fetch TREEID -o DIR: run again, every file already there is kept, nothing fetched" {
	serve_tree
	timeout 60 p2p-fetch -p "$SERVER_ADDR" -o out "$ID" </dev/null
	rm out/sub/b.bin
	run -0 --separate-stderr timeout 60 p2p-fetch -v -p "$SERVER_ADDR" -o out "$ID" </dev/null
	assert_stderr --partial "(1 fetched, 3 already there, 1 copies)"
	same_tree d out
}

@test "p2p-fetch TREEID -o DIR: resumed after a kill, a file's .part kept and only the rest fetched" {
	make_tree d
	make_file d/big.bin 4M 9
	ID=$(p2p-chunk --tree --id d)
	start_server -d d --max-upload-rate 1M
	# Not under timeout: SIGKILL to timeout leaves the fetch running, which then went on
	# beside the resumed one, renaming and sharing what the test expects left alone.
	p2p-fetch -p "$SERVER_ADDR" -o out "$ID" </dev/null &
	pid=$!
	EXTRA_PIDS+=("$pid")
	wait_for test -s out/big.bin.part
	sleep 1
	kill -KILL "$pid"
	wait "$pid" || true
	[ -f out/big.bin.part ]
	stop_servers
	start_server -d d
	run --separate-stderr timeout 60 p2p-fetch -v -p "$SERVER_ADDR" -o out "$ID" </dev/null
	# What the fetch said, if it fails.
	((status == 0)) || fail "exit $status: $stderr"
	assert_stderr --regexp 'big.bin.part: .*|chunks already there|[1-9][0-9]* already there'
	same_tree d out
}

@test "p2p-fetch TREEID -o DIR: a damaged file is repaired in place, only its bad chunks fetched" {
	make_tree d
	make_file d/big.bin 4M 10
	ID=$(p2p-chunk --tree --id d)
	start_server -d d
	timeout 60 p2p-fetch -p "$SERVER_ADDR" -o out "$ID" </dev/null
	corrupt out/big.bin 5
	corrupt out/big.bin $((4 * 1048576 - 10))
	ino=$(stat -c %i out/big.bin)
	run -0 --separate-stderr timeout 60 p2p-fetch --stats -v -p "$SERVER_ADDR" -o out "$ID" </dev/null
	same_tree d out
	assert_equal "$(stat -c %i out/big.bin)" "$ino"
	assert_stderr --partial "(1 fetched, 4 already there, 1 copies)"
	assert_equal "$(stats_field "$stderr" chunks_fetched)" 2
	(($(stats_field "$stderr" chunks_resumed) > 0))
}

@test "p2p-fetch TREEID > out.tar: GNU tar and bsdtar extract the same tree, in the tree's order" {
	serve_tree
	mkdir -p d/a-directory-name-long-enough-to-need-a-pax-header-for-its-path-because/ustar-names-are-100-bytes
	make_file "d/a-directory-name-long-enough-to-need-a-pax-header-for-its-path-because/ustar-names-are-100-bytes/f.bin" 70000 5
	ID=$(p2p-chunk --tree --id d)
	stop_servers
	start_server -d d
	timeout 60 p2p-fetch -p "$SERVER_ADDR" "$ID" </dev/null >out.tar
	tar tf out.tar >names
	sed 's,/$,,' names >paths
	LC_ALL=C sort -c paths
	assert_equal "$(wc -l <names)" 7
	grep -qx 'empty/' names
	mkdir gnu
	tar -xpf out.tar -C gnu
	same_tree d gnu
	if command -v bsdtar >/dev/null; then
		mkdir bsd
		bsdtar -xpf out.tar -C bsd
		same_tree d bsd
	fi
	timeout 60 p2p-fetch -p "$SERVER_ADDR" "$ID" </dev/null | (mkdir piped && cd piped && tar xpf -)
	same_tree d piped
}

@test "p2p-fetch of a file id still writes the file (a tree's peer is a file's peer too)" {
	serve_tree
	run -0 --separate-stderr timeout 30 p2p-fetch -p "$SERVER_ADDR" -o b "$(p2p-chunk --id d/sub/b.bin)" </dev/null
	cmp b d/sub/b.bin
}

@test "hostile tree: ../ in a path: refused, nothing written outside DIR" {
	make_tree d
	start_server --cmd python3 "$P2P_REF" treepeer d dotdot
	id=$(sed -n 2p "$SERVER_OUT")
	mkdir inside
	run -1 --separate-stderr timeout 30 p2p-fetch -T 5 -p "$SERVER_ADDR" -o inside/out "$id" </dev/null
	[ ! -e escaped ] && [ ! -e inside/escaped ] && [ ! -e inside/out ]
}

@test "hostile tree: an absolute path: refused, nothing written there" {
	make_tree d
	start_server --cmd python3 "$P2P_REF" treepeer d absolute
	id=$(sed -n 2p "$SERVER_OUT")
	run -1 --separate-stderr timeout 30 p2p-fetch -T 5 -p "$SERVER_ADDR" -o out "$id" </dev/null
	[ ! -e /tmp/escaped ] && [ ! -e out ]
}

@test "hostile tree: a count of 2^20 entries: refused before anything is made" {
	make_tree d
	start_server --cmd python3 "$P2P_REF" treepeer d many
	id=$(sed -n 2p "$SERVER_OUT")
	run -1 --separate-stderr timeout 30 p2p-fetch -T 5 -p "$SERVER_ADDR" -o out "$id" </dev/null
	[ ! -e out ]
}

@test "a tree from the reference's honest fake peer (caps 0): fetched whole" {
	make_tree d
	start_server --cmd python3 "$P2P_REF" treepeer d honest
	id=$(sed -n 2p "$SERVER_OUT")
	assert_equal "$id" "$(p2p-chunk --tree --id d)"
	run -0 --separate-stderr timeout 60 p2p-fetch -p "$SERVER_ADDR" -o out "$id" </dev/null
	same_tree d out
}

@test "a symbolic link in DIR on a tree's path is never written through" {
	make_tree d
	start_server --cmd python3 "$P2P_REF" treepeer d honest
	id=$(sed -n 2p "$SERVER_OUT")
	mkdir -p out elsewhere
	ln -s ../elsewhere out/sub
	run -1 --separate-stderr timeout 30 p2p-fetch -p "$SERVER_ADDR" -o out "$id" </dev/null
	assert_stderr --partial 'a symbolic link on the way; not written through'
	assert_equal "$(ls -A elsewhere)" ""
}

@test "set-id bits are never applied: a tree's modes are 0777 at most, and p2p-chunk keeps only those" {
	mkdir d
	make_file d/s 1000 1
	chmod 4755 d/s
	p2p-chunk --tree d >tree.mf
	run -0 python3 "$P2P_REF" treemanifest tree.mf
	echo "$output" | jq -e '.entries[0][2] == 493' >/dev/null
	start_server -d d
	timeout 30 p2p-fetch -p "$SERVER_ADDR" -o out "$(p2p-chunk --tree --id d)" </dev/null
	assert_equal "$(stat -c %a out/s)" 755
}

@test "examples/share_folder.sh: the folder's tree id, its listing, and the tree back both ways" {
	run -0 --separate-stderr timeout 60 "$BATS_TEST_DIRNAME/../examples/share_folder.sh"
	id=$(sed -n 2p <<<"$output")
	[[ $id =~ ^[0-9a-f]{64}$ ]]
	assert_line "$id"$'\t18\tphotos/'
	assert_equal "$(grep -cx "$id" <<<"$output")" 2
	assert_line 'tar: identical'
}

# make_small_tree DIR N: N files of 1 to 4 KiB in 8 directories (one a copy of another, one
# mode 0755, one read-only), and a file of 40000 bytes: more than one block, never batched.
make_small_tree() {
	python3 - "$1" "$2" <<'PY'
import os, random, sys
top, n = sys.argv[1], int(sys.argv[2])
rnd = random.Random(7)
for i in range(n):
    d = os.path.join(top, "d%d" % (i % 8))
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "f%04d" % i), "wb") as f:
        f.write(rnd.randbytes(rnd.randint(1024, 4096)))
with open(os.path.join(top, "big"), "wb") as f:
    f.write(rnd.randbytes(40000))
PY
	cp "$1/d0/f0000" "$1/d1/copy"
	chmod 0755 "$1/d2/f0002"
	chmod 0444 "$1/d3/f0003"
}

@test "many small files from a peer with the files cap: fetched in batches (GET_FILES), whole" {
	make_small_tree d 300
	id=$(p2p-chunk --tree --id d)
	start_server -d d
	run -0 --separate-stderr timeout 60 p2p-fetch -v -p "$SERVER_ADDR" -o out "$id" </dev/null
	same_tree d out
	# 300 files but the copy; the big one was fetched on its own.
	assert_stderr --partial '300 small files fetched in batches (0 not held there, 0 wrong)'
	assert_stderr --partial 'complete, 302 files (301 fetched, 0 already there, 1 copies)'
	[ -z "$(find out -name '*.part')" ]
}

@test "many small files again into the same DIR: kept, none asked for" {
	make_small_tree d 50
	id=$(p2p-chunk --tree --id d)
	start_server -d d
	run -0 --separate-stderr timeout 60 p2p-fetch -p "$SERVER_ADDR" -o out "$id" </dev/null
	run -0 --separate-stderr timeout 60 p2p-fetch -v -p "$SERVER_ADDR" -o out "$id" </dev/null
	same_tree d out
	refute_stderr --partial 'fetched in batches'
	assert_stderr --partial '(0 fetched, 51 already there, 1 copies)'
}

@test "many small files from a peer without the files cap (caps 0): each fetched on its own, never sent GET_FILES" {
	make_small_tree d 40
	start_server --cmd python3 "$P2P_REF" treepeer d honest
	id=$(sed -n 2p "$SERVER_OUT")
	run -0 --separate-stderr timeout 120 p2p-fetch -v -p "$SERVER_ADDR" -o out "$id" </dev/null
	same_tree d out
	refute_stderr --partial 'fetched in batches'
	[ ! -e saw-get-files ]
}

@test "a peer that answers GET_FILES a few files at a time: asked again for the rest, the tree whole" {
	make_small_tree d 40
	start_server --cmd python3 "$P2P_REF" treepeer d files-short
	id=$(sed -n 2p "$SERVER_OUT")
	run -0 --separate-stderr timeout 120 p2p-fetch -v -p "$SERVER_ADDR" -o out "$id" </dev/null
	same_tree d out
	assert_stderr --partial '40 small files fetched in batches (0 not held there, 0 wrong)'
}

@test "a peer that never answers GET_FILES but pushes HAVEs: dropped from the batch at -T, each file fetched on its own" {
	make_small_tree d 10
	start_server --cmd python3 "$P2P_REF" treepeer d files-silent
	id=$(sed -n 2p "$SERVER_OUT")
	run -0 --separate-stderr timeout 60 p2p-fetch -v -T 2 -p "$SERVER_ADDR" -o out "$id" </dev/null
	same_tree d out
	assert_stderr --partial 'no answer to GET_FILES within the timeout; its files asked elsewhere'
	[ -z "$(find out -name '*.part')" ]
}

# hostile_files MODE: a peer whose FILES are wrong in MODE (its manifests and chunks honest):
# it is dropped from the batch, nothing wrong is written, and each file comes on its own.
hostile_files() {
	make_small_tree d 40
	start_server --cmd python3 "$P2P_REF" treepeer d "$1"
	id=$(sed -n 2p "$SERVER_OUT")
	run -0 --separate-stderr timeout 120 p2p-fetch -v -p "$SERVER_ADDR" -o out "$id" </dev/null
	same_tree d out
	assert_stderr --partial "$2"
	assert_stderr --regexp '0 small files fetched in batches \(0 not held there, [1-9][0-9]* wrong\)'
	[ -z "$(find out -name '*.part')" ]
}

@test "hostile FILES: bytes that are not the file's: the peer dropped from the batch, nothing wrong written" {
	hostile_files files-wrong 'FILES: a file that is not the one asked for (wrong size or bytes); its files asked elsewhere'
}

@test "hostile FILES: a file a byte too long: dropped, nothing wrong written" {
	hostile_files files-size 'FILES: a file that is not the one asked for (wrong size or bytes)'
}

@test "hostile FILES: more entries than ids asked: dropped, nothing written from it" {
	hostile_files files-count 'FILES: more files than asked for; its files asked elsewhere'
}
