#!/usr/bin/env bats
# p2p-verify: a file against a manifest or a content id. Every failure mode is checked for
# the exact report (which chunk, which size), and forged manifests must be refused.

bats_require_minimum_version 1.5.0

load ../bats/common

@test "--help prints usage on stdout and exits 0" {
	run -0 --separate-stderr p2p-verify --help
	assert_output --regexp '[Uu]sage:.*p2p-verify'
	assert_stderr ''
	run -0 --separate-stderr p2p-verify -h
	assert_output --regexp '[Uu]sage:.*p2p-verify'
}

@test "--version and -V print the version" {
	run -0 --separate-stderr p2p-verify --version
	assert_output 'p2p-verify 0.1.0'
	run -0 --separate-stderr p2p-verify -V
	assert_output 'p2p-verify 0.1.0'
}

@test "unknown option: usage on stderr, exit 2" {
	make_file a 100
	run -2 --separate-stderr p2p-verify --bogus a
	assert_output ''
	assert_stderr --regexp '[Uu]sage:.*p2p-verify'
}

@test "wrong number of arguments: exit 2" {
	make_file a 100
	p2p-chunk a >m
	local id
	id=$(ref_id a)
	run -2 --separate-stderr p2p-verify </dev/null
	assert_stderr --regexp '[Uu]sage'
	run -2 --separate-stderr p2p-verify "$id" </dev/null
	assert_stderr --regexp '[Uu]sage'
	run -2 --separate-stderr p2p-verify "$id" a a </dev/null
	assert_stderr --regexp '[Uu]sage'
	run -2 --separate-stderr p2p-verify -m m </dev/null
	assert_stderr --regexp '[Uu]sage'
	run -2 --separate-stderr p2p-verify -m m a a </dev/null
	assert_stderr --regexp '[Uu]sage'
}

@test "p2p-chunk a | p2p-verify -m - b: equal files print OK, exit 0" {
	make_file a 1048576 1
	cp a b
	run -0 --separate-stderr bash -c 'p2p-chunk a | p2p-verify -m - b'
	assert_output $'OK\tb'
	assert_stderr ''
	# control: the same pipeline says FAILED for another file
	make_file c 1048576 2
	run -1 --separate-stderr bash -c 'p2p-chunk a | p2p-verify -m - c'
	assert_output $'FAILED\tc'
}

@test "p2p-chunk a | p2p-verify -m - b: modified b names its bad chunks, exit 1" {
	make_file a 1048576 1
	cp a b
	corrupt b $((3 * 16384 + 100))
	corrupt b $((7 * 16384))
	run -1 --separate-stderr bash -c 'p2p-chunk -c 16K a | p2p-verify -m - b'
	assert_output $'FAILED\tb'
	assert_stderr_line 'p2p-verify: b: chunk 3 does not match'
	assert_stderr_line 'p2p-verify: b: chunk 7 does not match'
	assert_equal "$(grep -c 'does not match' <<<"$stderr")" 2
}

@test "chunk numbers follow the manifest's chunk size" {
	make_file a 3145728 2
	cp a b
	corrupt b $((1048576 + 5))
	p2p-chunk -c 1M a >m
	run -1 --separate-stderr p2p-verify -m m b
	assert_output $'FAILED\tb'
	assert_stderr 'p2p-verify: b: chunk 1 does not match'
}

@test "the last, short chunk is checked too" {
	make_file a 16385 3
	cp a b
	corrupt b 16384 Q
	p2p-chunk -c 16K a >m
	run -1 --separate-stderr p2p-verify -m m b
	assert_output $'FAILED\tb'
	assert_stderr 'p2p-verify: b: chunk 1 does not match'
}

@test "more than 20 bad chunks: 20 lines, then ...and N more" {
	make_file a 1048576 4
	cp a b
	corrupt_chunks b 16384 # all 64 chunks
	p2p-chunk -c 16K a >m
	run -1 --separate-stderr p2p-verify -m m b
	assert_output $'FAILED\tb'
	assert_equal "$(grep -c 'does not match' <<<"$stderr")" 20
	assert_stderr_line 'p2p-verify: b: chunk 0 does not match'
	assert_stderr_line 'p2p-verify: b: chunk 19 does not match'
	assert_stderr_line --regexp '^p2p-verify: b: \.\.\.and 44 more'
	assert_equal "${#stderr_lines[@]}" 21
}

@test "size differs: the documented message, exit 1" {
	printf 'hello world\n' >a
	printf 'hello worl' >b
	p2p-chunk a >m
	run -1 --separate-stderr p2p-verify -m m b
	assert_output $'FAILED\tb'
	assert_stderr "p2p-verify: b: size 10 differs from manifest's 12"
}

@test "a longer file fails on size, not OK" {
	make_file a 16384 5
	{ cat a; printf x; } >b
	p2p-chunk a >m
	run -1 --separate-stderr p2p-verify -m m b
	assert_output $'FAILED\tb'
	assert_stderr "p2p-verify: b: size 16385 differs from manifest's 16384"
}

@test "--manifest FILE: the first manifest in the file is used" {
	make_file a 20000 1
	make_file c 30000 2
	p2p-chunk a c >m
	run -0 --separate-stderr p2p-verify --manifest m a
	assert_output $'OK\ta'
	run -1 --separate-stderr p2p-verify -m m c
	assert_output $'FAILED\tc'
}

@test "ID FILE: matching id prints OK, exit 0" {
	make_file a 100000 6
	cp a 'héllo wörld.bin'
	run -0 --separate-stderr p2p-verify "$(ref_id a)" 'héllo wörld.bin'
	assert_output $'OK\théllo wörld.bin'
	assert_stderr ''
	make_file other 100000 7
	run -1 --separate-stderr p2p-verify "$(ref_id a)" other
	assert_output $'FAILED\tother'
}

@test "ID FILE: uppercase id is accepted" {
	make_file a 100000 6
	run -0 --separate-stderr p2p-verify "$(ref_id a | tr a-f A-F)" a
	assert_output $'OK\ta'
	make_file b 100000 7
	run -1 --separate-stderr p2p-verify "$(ref_id a | tr a-f A-F)" b
	assert_output $'FAILED\tb'
}

@test "ID FILE: other content prints FAILED and 'content id differs', exit 1" {
	make_file a 100000 6
	cp a b
	corrupt b 99999 Z
	run -1 --separate-stderr p2p-verify "$(ref_id a)" b
	assert_output $'FAILED\tb'
	assert_stderr 'p2p-verify: b: content id differs'
}

@test "malformed id: exit 2 with the documented message" {
	make_file a 100
	run -2 --separate-stderr p2p-verify abc a
	assert_output ''
	assert_stderr_line --regexp "^p2p-verify: malformed content id 'abc'(: .*)?\$"
	local id
	id=$(ref_id a)
	for bad in "${id:1}" "${id}0" "g${id:1}" "${id:0:32} ${id:33}"; do
		run -2 --separate-stderr p2p-verify "$bad" a
		assert_stderr_line --partial "p2p-verify: malformed content id '$bad'"
	done
}

@test "missing FILE: exit 1 with a message naming it" {
	make_file a 100
	p2p-chunk a >m
	run -1 --separate-stderr p2p-verify "$(ref_id a)" nosuch
	assert_stderr --partial 'nosuch'
	assert_stderr --partial 'No such file or directory'
	run -1 --separate-stderr p2p-verify -m m nosuch
	assert_stderr --partial 'nosuch'
	refute_output --partial OK
}

@test "missing manifest file: exit 1" {
	make_file a 100
	run -1 --separate-stderr p2p-verify -m nosuch.m a
	assert_stderr --partial 'nosuch.m'
	refute_output --partial OK
}

@test "garbage manifest: exit 1, 'p2p-verify: manifest: ...'" {
	make_file a 100
	printf 'this is not msgpack at all\n' >m
	run -1 --separate-stderr p2p-verify -m m a
	# the spec's exact form; the other manifest tests accept any 'p2p-verify: manifest...: reason'
	assert_stderr --regexp '^p2p-verify: manifest: '
	refute_output --partial OK
}

@test "empty or truncated manifest: exit 1" {
	make_file a 100000
	p2p-chunk a >m
	head -c $(($(file_size m) / 2)) m >half
	run -1 --separate-stderr p2p-verify -m half a
	assert_stderr --regexp '^p2p-verify: manifest[^'$'\n'']*: [^'$'\n'']+$'
	refute_output --partial OK
	run -1 --separate-stderr p2p-verify -m - a </dev/null
	assert_stderr --regexp '^p2p-verify: manifest[^'$'\n'']*: [^'$'\n'']+$'
}

@test "forged manifest: chunk layer that does not give its id is refused" {
	make_file a 100000 7
	p2p-chunk -c 16K a >m
	python3 "$P2P_REF" tamper m chunks >forged
	# the forgery is well-formed: only one bit of one chunk hash differs
	assert_equal "$(manifest_field forged canonical)" true
	assert_equal "$(manifest_field forged id_ok)" false
	run -1 --separate-stderr p2p-verify -m forged a
	assert_stderr --regexp '^p2p-verify: manifest[^'$'\n'']*: [^'$'\n'']+$'
	refute_output --partial OK
}

@test "forged manifest: id that the chunk layer does not give is refused" {
	make_file a 100000 7
	p2p-chunk -c 16K a >m
	python3 "$P2P_REF" tamper m id >forged
	run -1 --separate-stderr p2p-verify -m forged a
	assert_stderr --regexp '^p2p-verify: manifest[^'$'\n'']*: [^'$'\n'']+$'
	refute_output --partial OK
}

@test "a manifest without path (from stdin) verifies the named file" {
	make_file a 50000 8
	p2p-chunk - <a >m
	cp a b
	run -0 --separate-stderr p2p-verify -m m b
	assert_output $'OK\tb'
	corrupt b 100
	run -1 --separate-stderr p2p-verify -m m b
	assert_output $'FAILED\tb'
	assert_stderr 'p2p-verify: b: chunk 0 does not match'
}

@test "empty file verifies against its manifest and id" {
	: >e
	p2p-chunk e >m
	run -0 --separate-stderr p2p-verify -m m e
	assert_output $'OK\te'
	run -0 --separate-stderr p2p-verify "$(ref_id e)" e
	assert_output $'OK\te'
	printf x >x
	run -1 --separate-stderr p2p-verify -m m x
	assert_output $'FAILED\tx'
	assert_stderr "p2p-verify: x: size 1 differs from manifest's 0"
}

@test "a manifest made at any chunk size verifies the same file" {
	make_file a 2097152 9
	cp a b
	corrupt b 2000000
	for cs in 16K 256K 4M; do
		p2p-chunk -c "$cs" a >m
		run -0 --separate-stderr p2p-verify -m m a
		assert_output $'OK\ta'
		run -1 --separate-stderr p2p-verify -m m b
		assert_output $'FAILED\tb'
	done
}

# verify_tree_setup: a tree d, its manifest d.tree, and a copy of it in c.
verify_tree_setup() {
	mkdir -p d/sub d/empty
	make_file d/a.bin 100000 1
	make_file d/sub/b.bin 300000 2
	make_file d/gone.bin 1000 3
	chmod 0755 d/sub/b.bin
	p2p-chunk --tree d >d.tree
	cp -a d c
}

@test "-m TREE_MANIFEST DIR: a copy of the tree prints OK, exit 0" {
	verify_tree_setup
	run -0 --separate-stderr p2p-verify -m d.tree c
	assert_output $'OK\tc'
	assert_stderr ''
}

@test "-m TREE_MANIFEST DIR: a line for each missing, resized, re-moded or changed file, exit 1" {
	verify_tree_setup
	rm c/gone.bin
	rmdir c/empty
	truncate -s 99999 c/a.bin
	chmod 0644 c/sub/b.bin
	corrupt c/sub/b.bin 5
	run -1 --separate-stderr p2p-verify -m d.tree c
	assert_output $'FAILED\tc'
	assert_stderr_line 'p2p-verify: c/gone.bin: missing'
	assert_stderr_line 'p2p-verify: c/empty: missing'
	assert_stderr_line "p2p-verify: c/a.bin: size 99999 differs from the tree's 100000"
	assert_stderr_line "p2p-verify: c/sub/b.bin: mode 644 differs from the tree's 755"
	assert_stderr_line 'p2p-verify: c/sub/b.bin: content differs'
	assert_equal "$(wc -l <<<"$stderr")" 5
	run -1 --separate-stderr p2p-verify --json -m d.tree c
	assert_equal "$(jq -c '[.ok, [.bad_files[].path]]' <<<"$output")" \
	    '[false,["a.bin","empty","gone.bin","sub/b.bin","sub/b.bin"]]'
}

@test "-m TREE_MANIFEST DIR: a link in DIR at a file's path is not followed" {
	verify_tree_setup
	rm c/a.bin
	ln -s ../d/a.bin c/a.bin
	run -1 --separate-stderr p2p-verify -m d.tree c
	assert_stderr --partial 'p2p-verify: c/a.bin: '
	assert_output $'FAILED\tc'
}

@test "TREEID DIR: the tree id of DIR compared, OK or FAILED saying the tree id differs" {
	verify_tree_setup
	id=$(p2p-chunk --tree --id d)
	run -0 --separate-stderr p2p-verify "$id" c
	assert_output $'OK\tc'
	chmod 0600 c/a.bin
	run -1 --separate-stderr p2p-verify "$id" c
	assert_output $'FAILED\tc'
	assert_stderr 'p2p-verify: c: tree id differs (the tree manifest, with -m, names the files)'
	run -1 --separate-stderr p2p-verify --json "$id" c
	assert_equal "$(jq -c '[.ok, .expected == "'"$id"'"]' <<<"$output")" '[false,true]'
}
