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
	wait_for grep -q "serving tree $id d (6 files, " "$SERVER_ERR"
	run -0 --separate-stderr timeout 20 p2p-discover -T 3 -b "$SERVER_ADDR" --hash "$id" </dev/null
	assert_output --partial "$SERVER_PORT"
}

@test "p2p-fetch --list: files by their paths in the tree, and the tree, marked with '/'" {
	make_tree d
	id=$(p2p-chunk --tree --id d)
	start_server -d d
	run -0 --separate-stderr timeout 20 p2p-fetch --list -p "$SERVER_ADDR" </dev/null
	assert_line "$(p2p-chunk --id d/sub/b.bin)"$'\t300000\tsub/b.bin'
	assert_line "$(p2p-chunk --id 'd/sub/deeper/c d.txt')"$'\t5000\tsub/deeper/c d.txt'
	assert_line "$id"$'\t405000\td/'
	# a-copy.bin is a.bin's bytes: one id, listed once
	assert_equal "$(grep -c "$(p2p-chunk --id d/a.bin)" <<<"$output")" 1
	run -0 --separate-stderr timeout 20 p2p-fetch --list --json -p "$SERVER_ADDR" </dev/null
	echo "$output" | jq -e --arg id "$id" 'select(.id == $id) |
		.type == "tree" and .files == 6 and .size == 405000 and .name == "d"' >/dev/null
	echo "$output" | jq -e 'select(.path == "sub/b.bin") | .type == "file" and .name == "b.bin"' >/dev/null
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
