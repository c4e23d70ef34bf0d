#!/usr/bin/env bats
# p2p-fetch's friendlier addressing: an id given by a unique prefix of 8 hex digits or more, or a
# file by --name, looked up in the lists of the peers given (the LIST --list makes); several
# ids that match are an error naming each (exit 1), none is one pointing at --list (exit 1),
# and a malformed id says what is wrong with it (exit 2). Lists come from peers: a flood of
# matches is cut to a few, their names made printable.

bats_require_minimum_version 1.5.0

load ../bats/common

# serve_dir DIR: a p2p-serve sharing DIR, once it lists every file in it.
serve_dir() {
	local dir=$1 f
	start_server -d "$dir"
	while IFS= read -r f; do
		wait_listed "$SERVER_ADDR" "$(ref_id "$f")"
	done < <(find "$dir" -type f)
}

@test "a unique prefix of 8 hex digits (either case) fetches the file, byte-identical" {
	mkdir share
	make_file share/song.ogg 300K 1
	make_file share/other.bin 100K 2
	serve_dir share
	local id
	id=$(ref_id share/song.ogg)
	run -0 --separate-stderr to_file out timeout 60 p2p-fetch -p "$SERVER_ADDR" "${id:0:8}" </dev/null
	cmp share/song.ogg out
	run -0 --separate-stderr to_file out2 timeout 60 p2p-fetch -p "$SERVER_ADDR" "${id:0:12}" \
		</dev/null
	cmp share/song.ogg out2
	local upper=${id:0:8}
	mkdir here
	cd here
	run -0 --separate-stderr timeout 60 p2p-fetch -p "$SERVER_ADDR" -O "${upper^^}" </dev/null
	cmp ../share/song.ogg song.ogg
	assert_equal "$(ls -A)" song.ogg
}

@test "the peers on stdin are asked for their lists too, then fetched from" {
	mkdir share
	make_file share/song.ogg 200K 3
	serve_dir share
	local id
	id=$(ref_id share/song.ogg)
	run -0 --separate-stderr to_file out timeout 60 p2p-fetch "${id:0:8}" <<<"$SERVER_ADDR"
	cmp share/song.ogg out
	run -0 --separate-stderr to_file out2 timeout 60 p2p-fetch --name song.ogg <<<"$SERVER_ADDR"
	cmp share/song.ogg out2
}

@test "fewer than 8 hex digits, a character not hex, or more than 64: exit 2 naming the fault, no connection" {
	local port id=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
	port=$(unused_port)
	run -2 --separate-stderr timeout 10 p2p-fetch -p "127.0.0.1:$port" "${id:0:7}" </dev/null
	assert_output ''
	assert_stderr "p2p-fetch: malformed content id '0123456': 7 hex digits; an id is 64, or a unique prefix of 8 or more: p2p-fetch --list -p HOST shows the ids a peer shares"
	run -2 --separate-stderr timeout 10 p2p-fetch -p "127.0.0.1:$port" a </dev/null
	assert_stderr --partial "'a': 1 hex digit; "
	run -2 --separate-stderr timeout 10 p2p-fetch -p "127.0.0.1:$port" "${id:0:9}g" </dev/null
	assert_stderr "p2p-fetch: malformed content id '012345678g': character 10 is not a hex digit; an id is 64 hex digits (a unique prefix of 8 or more will do) or a p2p:// link, and --name NAME fetches by name: p2p-fetch --list -p HOST shows what a peer shares"
	run -2 --separate-stderr timeout 10 p2p-fetch -p "127.0.0.1:$port" notes.txt </dev/null
	assert_stderr --partial "'notes.txt': character 1 is not a hex digit; "
	run -2 --separate-stderr timeout 10 p2p-fetch -p "127.0.0.1:$port" "${id}0" </dev/null
	assert_stderr --partial "'${id}0': 65 hex digits; an id is 64"
	refute_stderr --partial connect
}

@test "a prefix no peer lists: exit 1 naming it, and the --list that shows what they share" {
	mkdir share
	make_file share/song.ogg 100K 4
	serve_dir share
	local id
	id=$(ref_id share/song.ogg)
	local miss=00000000
	[[ ${id:0:8} != "$miss" ]] || miss=11111111
	run -1 --separate-stderr timeout 60 p2p-fetch -p "$SERVER_ADDR" "$miss" </dev/null
	assert_output ''
	assert_stderr "p2p-fetch: none of the files or trees the peers list has an id starting with $miss; to see what they share: p2p-fetch --list -p $SERVER_ADDR"
	run -1 --separate-stderr timeout 60 p2p-fetch -p "$SERVER_ADDR" --name nothere.txt </dev/null
	assert_stderr "p2p-fetch: none of the files or trees the peers list is named 'nothere.txt'; to see what they share: p2p-fetch --list -p $SERVER_ADDR"
}

@test "an ambiguous prefix from a peer that floods its list: exit 1, 16 candidates shown, printable; a longer prefix resolves" {
	export MINI_P2P_NO_TLS=1
	make_file f 100K 5
	p2p-chunk f >m
	local id
	id=$(ref_id f)
	start_badpeer list-flood m f
	run -1 --separate-stderr timeout 60 p2p-fetch -p "$BADPEER_ADDR" "${id:0:8}" </dev/null
	assert_output ''
	assert_stderr_line "p2p-fetch: more than 16 files or trees the peers list have an id starting with ${id:0:8}; fetch one by its id (or 8 hex digits or more of it that no other has):"
	local lines
	lines=$(grep -c "^${id:0:8}[0-9a-f]\{56\}"$'\t' <<<"$stderr")
	assert_equal "$lines" 16
	# the file itself is among them, by its name, and the peer is named
	assert_stderr_line "$id"$'\tf\t'"$BADPEER_ADDR"
	# no escape, no C1 control reached the terminal; each name cut
	if grep -q $'[\x1b\x07]\|\xc2\x9b' <<<"$stderr"; then
		fail "a control character was written: $stderr"
	fi
	# the made-up ids go on 5a5a...: the file's 5th byte tells it apart
	[[ ${id:8:2} != 5a ]] || skip "the file's id has 5a as its 5th byte"
	run -0 --separate-stderr to_file out timeout 60 p2p-fetch -p "$BADPEER_ADDR" "${id:0:10}" </dev/null
	cmp f out
}

@test "--name fetches what the peers list by that name, or by its path in a tree, or a tree; -O and -o DIR as other fetches" {
	mkdir -p share/docs/sub
	make_file share/song.ogg 200K 6
	make_file share/docs/sub/notes.txt 10K 7
	serve_dir share
	run -0 --separate-stderr to_file out timeout 60 p2p-fetch -p "$SERVER_ADDR" --name song.ogg </dev/null
	cmp share/song.ogg out
	run -0 --separate-stderr to_file out2 timeout 60 p2p-fetch -p "$SERVER_ADDR" --name docs/sub/notes.txt </dev/null
	cmp share/docs/sub/notes.txt out2
	mkdir dl here
	run -0 --separate-stderr timeout 60 p2p-fetch -p "$SERVER_ADDR" --name notes.txt -o dl </dev/null
	cmp share/docs/sub/notes.txt dl/notes.txt
	# the folder itself, listed as a tree by its name
	run -0 --separate-stderr timeout 60 p2p-fetch -p "$SERVER_ADDR" --name share -o got </dev/null
	diff -r share got
	cd here
	run -0 --separate-stderr timeout 60 p2p-fetch -p "$SERVER_ADDR" --name song.ogg -O </dev/null
	cmp ../share/song.ogg song.ogg
	assert_equal "$(ls -A)" song.ogg
}

@test "--name: one file on two peers is one; two files of one name are ambiguous, each id, name and peer said" {
	mkdir a b c
	make_file a/notes.txt 20K 8
	cp a/notes.txt b/notes.txt
	make_file c/notes.txt 20K 9
	serve_dir a
	local pa=$SERVER_ADDR
	serve_dir b
	local pb=$SERVER_ADDR
	serve_dir c
	local pc=$SERVER_ADDR
	run -0 --separate-stderr to_file out timeout 60 p2p-fetch -p "$pa" -p "$pb" --name notes.txt </dev/null
	cmp a/notes.txt out
	run -1 --separate-stderr timeout 60 p2p-fetch -p "$pa" -p "$pc" --name notes.txt </dev/null
	assert_output ''
	assert_stderr_line "p2p-fetch: 2 files or trees the peers list are named 'notes.txt'; fetch one by its id (or 8 hex digits or more of it that no other has):"
	assert_stderr_line "$(ref_id a/notes.txt)"$'\tnotes.txt\t'"$pa"
	assert_stderr_line "$(ref_id c/notes.txt)"$'\tnotes.txt\t'"$pc"
	assert_file_not_exists notes.txt
}

@test "--name with an ID, or with --list: usage errors (exit 2)" {
	local port
	port=$(unused_port)
	run -2 --separate-stderr timeout 10 p2p-fetch -p "127.0.0.1:$port" --name x 01234567 </dev/null
	assert_stderr_line 'p2p-fetch: --name NAME or an ID, not both'
	run -2 --separate-stderr timeout 10 p2p-fetch -p "127.0.0.1:$port" --list --name x </dev/null
	assert_stderr_line 'p2p-fetch: --list lists all: no --name'
	refute_stderr --partial 'Connection refused'
}
