#!/usr/bin/env bats
# p2p-chunk: content ids and manifests. Ids and chunk layers are checked against the Python
# reference in bats/p2p_ref.py, so a hash that is merely self-consistent does not pass.

bats_require_minimum_version 1.5.0

load ../bats/common

@test "--help prints usage on stdout and exits 0" {
	run -0 --separate-stderr p2p-chunk --help
	assert_output --regexp '[Uu]sage:.*p2p-chunk'
	assert_output --partial '-c'
	assert_stderr ''
}

@test "-h is --help" {
	run -0 --separate-stderr p2p-chunk -h
	assert_output --regexp '[Uu]sage:.*p2p-chunk'
}

@test "--version and -V print the version" {
	run -0 --separate-stderr p2p-chunk --version
	assert_output 'p2p-chunk 0.1.0'
	run -0 --separate-stderr p2p-chunk -V
	assert_output 'p2p-chunk 0.1.0'
}

@test "unknown option: usage on stderr, nothing on stdout, exit 2" {
	make_file a 100
	run -2 --separate-stderr p2p-chunk --bogus a
	assert_output ''
	assert_stderr --regexp '[Uu]sage:.*p2p-chunk'
}

@test "no FILE operand is a usage error" {
	run -2 --separate-stderr p2p-chunk --id </dev/null
	assert_output ''
	assert_stderr --regexp '[Uu]sage'
}

@test "--id: one file, its 64-hex id alone; several, or a directory, ID<TAB>PATH a line, as sha256sum" {
	make_file a 1000 1
	make_file b 2000 2
	run -0 --separate-stderr p2p-chunk --id a
	assert_output --regexp '^[0-9a-f]{64}$'
	run -0 --separate-stderr p2p-chunk --id a b
	assert_equal "${#lines[@]}" 2
	assert_line --index 0 "$(ref_id a)	a"
	assert_line --index 1 "$(ref_id b)	b"
	assert_stderr ''
	mkdir -p d/sub
	cp a d/x
	cp b d/sub/y
	run -0 --separate-stderr p2p-chunk --id d
	assert_equal "$output" "$(ref_id b)	d/sub/y
$(ref_id a)	d/x"
}

@test "content id matches the reference for the protocol's test-vector files" {
	: >empty
	printf '\0' >one
	for n in 16384 16385 1048576; do
		python3 "$P2P_REF" bytes "$n" >"byte$n"
	done
	for f in empty one byte16384 byte16385 byte1048576; do
		run -0 --separate-stderr p2p-chunk --id "$f"
		assert_output "$(ref_id "$f")"
	done
}

@test "content id of the empty file is H(size_be64 0 || H(\"\"))" {
	: >empty
	run -0 --separate-stderr p2p-chunk --id empty
	# Computed here by hand from PROTOCOL.md section 1, independently of p2p_ref.py.
	assert_output "$(python3 -c 'import hashlib
print(hashlib.sha256(bytes(8) + hashlib.sha256(b"").digest()).hexdigest())')"
}

@test "content id matches the reference for random files of awkward sizes" {
	for size in 1 16383 49153 100000 3145729; do
		make_file "f$size" "$size" "$size"
		run -0 --separate-stderr p2p-chunk --id "f$size"
		assert_output "$(ref_id "f$size")"
	done
}

@test "content id does not depend on the chunk size" {
	make_file f 3145851 7
	local want
	want=$(ref_id f)
	for cs in 16K 32K 64K 256K 1M 4M 65536; do
		run -0 --separate-stderr p2p-chunk --id -c "$cs" f
		assert_output "$want"
	done
	run -0 --separate-stderr p2p-chunk --id f
	assert_output "$want"
}

@test "content id does not depend on the file's name or directory" {
	make_file f 70000 3
	mkdir -p 'other dir/deeper'
	cp f 'other dir/deeper/héllo wörld.bin'
	run -0 --separate-stderr p2p-chunk --id f
	local want=$output
	run -0 --separate-stderr p2p-chunk --id 'other dir/deeper/héllo wörld.bin'
	assert_output "$want"
	run -0 --separate-stderr p2p-chunk --id "$BATS_TEST_TMPDIR/f"
	assert_output "$want"
}

@test "one changed byte changes the content id" {
	make_file a 100000 4
	cp a b
	corrupt b 50000 Z
	run -0 --separate-stderr p2p-chunk --id a
	assert_output "$(ref_id a)"
	run -0 --separate-stderr p2p-chunk --id b
	assert_output "$(ref_id b)"
	assert_not_equal "$(ref_id a)" "$(ref_id b)"
}

@test "manifest: every field as PROTOCOL.md section 2 says, keys in order, shortest encoding" {
	make_file f 100000 5
	run -0 --separate-stderr to_file m p2p-chunk -c 16K f
	assert_stderr ''
	run -0 python3 "$P2P_REF" manifests m
	assert_equal "${#lines[@]}" 1 # exactly one manifest, nothing after it
	assert_equal "$(manifest_field m v)" 1
	assert_equal "$(manifest_field m id)" "$(ref_id f)"
	assert_equal "$(manifest_field m name)" f
	assert_equal "$(manifest_field m size)" 100000
	assert_equal "$(manifest_field m chunk_size)" 16384
	assert_equal "$(manifest_field m chunks)" "$(python3 "$P2P_REF" chunks f 16384)"
	assert_equal "$(manifest_field m chunks_len)" $((7 * 32))
	assert_equal "$(manifest_field m id_ok)" true
	assert_equal "$(manifest_field m key_order_ok)" true
	assert_equal "$(manifest_field m canonical)" true
	local path
	path=$(manifest_field m path)
	[[ $path == /* ]] || fail "path '$path' is not absolute"
	[[ $path -ef f ]] || fail "path '$path' is not the chunked file"
}

@test "manifest chunk layer matches the reference at every chunk size" {
	make_file f 5000001 6
	for cs in 16384 65536 262144 1048576 4194304; do
		run -0 --separate-stderr to_file "m$cs" p2p-chunk -c "$cs" f
		assert_equal "$(manifest_field "m$cs" chunk_size)" "$cs"
		assert_equal "$(manifest_field "m$cs" chunks)" "$(python3 "$P2P_REF" chunks f "$cs")"
		assert_equal "$(manifest_field "m$cs" id_ok)" true
	done
}

@test "empty file: one empty chunk, 16K, size 0" {
	: >empty
	run -0 --separate-stderr to_file m p2p-chunk empty
	assert_equal "$(manifest_field m size)" 0
	assert_equal "$(manifest_field m chunk_size)" 16384
	assert_equal "$(manifest_field m chunks)" "$(printf '' | sha256sum | cut -d' ' -f1)"
	assert_equal "$(manifest_field m id)" "$(ref_id empty)"
	assert_equal "$(manifest_field m id_ok)" true
}

@test "a file of exactly one chunk (16384 bytes at -c 16K) has one chunk" {
	make_file f 16384 8
	run -0 --separate-stderr to_file m p2p-chunk -c 16K f
	assert_equal "$(manifest_field m chunks_len)" 32
	assert_equal "$(manifest_field m chunks)" "$(sha256sum f | cut -d' ' -f1)"
	assert_equal "$(manifest_field m id)" "$(ref_id f)"
}

@test "one chunk plus one byte (16385 bytes at -c 16K) has two chunks" {
	make_file f 16385 9
	run -0 --separate-stderr to_file m p2p-chunk -c 16K f
	assert_equal "$(manifest_field m chunks_len)" 64
	assert_equal "$(manifest_field m chunks | sed -n 1p)" "$(head -c 16384 f | sha256sum | cut -d' ' -f1)"
	assert_equal "$(manifest_field m chunks | sed -n 2p)" "$(tail -c 1 f | sha256sum | cut -d' ' -f1)"
	assert_equal "$(manifest_field m id)" "$(ref_id f)"
}

@test "-c accepts K, M and plain bytes; --chunk-size is -c" {
	make_file f 8388608 10
	local spec want
	for spec in 16K:16384 32K:32768 1M:1048576 4M:4194304 65536:65536; do
		want=${spec#*:}
		run -0 --separate-stderr to_file m p2p-chunk -c "${spec%%:*}" f
		assert_equal "$(manifest_field m chunk_size)" "$want"
		assert_equal "$(manifest_field m chunks_len)" $((8388608 / want * 32))
	done
	run -0 --separate-stderr to_file m p2p-chunk --chunk-size 128K f
	assert_equal "$(manifest_field m chunk_size)" 131072
}

@test "-c 3000: exit 2 with the documented message" {
	make_file f 100
	run -2 --separate-stderr p2p-chunk -c 3000 f
	assert_output ''
	assert_stderr_line "p2p-chunk: chunk size '3000': must be a power of two from 16K to 4M"
}

@test "-c out of range or not a power of two: exit 2, the value named" {
	make_file f 100
	local bad
	for bad in 8K 8192 8M 48K 0 abc 16KB -16K ''; do
		run -2 --separate-stderr p2p-chunk -c "$bad" f
		assert_output ''
		assert_stderr --partial "chunk size '$bad'"
	done
}

@test "automatic chunk size: 256K from 16 MiB, finer below so a file has 64 chunks, 16K at least" {
	make_file big 33554432 10
	make_file mib 1048576 11
	make_file eight 8388608 13
	make_file small 100000 12
	printf x >one
	run -0 --separate-stderr to_file m p2p-chunk mib small one big eight
	assert_equal "$(manifest_field m chunk_size 0)" 16384
	assert_equal "$(manifest_field m chunk_size 1)" 16384
	assert_equal "$(manifest_field m chunk_size 2)" 16384
	assert_equal "$(manifest_field m chunk_size 3)" 262144
	assert_equal "$(manifest_field m chunk_size 4)" 131072
	assert_equal "$(manifest_field m id_ok 1)" true
}

@test "an explicit -c is clamped to the file too" {
	printf x >one
	make_file small 100000 12
	run -0 --separate-stderr to_file m p2p-chunk -c 4M one small
	assert_equal "$(manifest_field m chunk_size 0)" 16384
	assert_equal "$(manifest_field m chunk_size 1)" 131072
	assert_equal "$(manifest_field m chunks_len 1)" 32
	assert_equal "$(manifest_field m id_ok 1)" true
}

@test "MINI_P2P_CHUNK_SIZE sets the default; -c overrides it" {
	make_file f 1048576 13
	MINI_P2P_CHUNK_SIZE=32K run -0 --separate-stderr to_file m p2p-chunk f
	assert_equal "$(manifest_field m chunk_size)" 32768
	MINI_P2P_CHUNK_SIZE=32K run -0 --separate-stderr to_file m p2p-chunk -c 64K f
	assert_equal "$(manifest_field m chunk_size)" 65536
}

@test "file names with spaces and non-ASCII characters" {
	make_file 'héllo wörld.bin' 40000 14
	run -0 --separate-stderr to_file m p2p-chunk 'héllo wörld.bin'
	assert_stderr ''
	assert_equal "$(manifest_field m name)" 'héllo wörld.bin'
	assert_equal "$(manifest_field m id)" "$(ref_id 'héllo wörld.bin')"
	[[ "$(manifest_field m path)" -ef 'héllo wörld.bin' ]]
}

@test "name is the last path component" {
	mkdir -p a/b
	make_file a/b/c.bin 100
	run -0 --separate-stderr to_file m p2p-chunk a/b/c.bin
	assert_equal "$(manifest_field m name)" c.bin
}

@test "missing file: exit 1, the documented message" {
	run -1 --separate-stderr p2p-chunk nosuch
	assert_output ''
	assert_stderr 'p2p-chunk: nosuch: No such file or directory'
}

@test "missing file among others: the others are still processed, exit 1" {
	make_file a 100 1
	make_file b 200 2
	run -1 --separate-stderr p2p-chunk --id a nosuch b
	assert_equal "${#lines[@]}" 2
	assert_line --index 0 "$(ref_id a)	a"
	assert_line --index 1 "$(ref_id b)	b"
	assert_stderr_line 'p2p-chunk: nosuch: No such file or directory'
}

@test "two files: two manifests back to back, nothing between or after" {
	make_file a 30000 1
	make_file b 50000 2
	run -0 bash -c 'p2p-chunk a b | wc -c'
	(( output > 0 ))
	run -0 --separate-stderr to_file m p2p-chunk a b
	run -0 python3 "$P2P_REF" manifests m
	assert_equal "${#lines[@]}" 2
	assert_equal "$(manifest_field m name 0)" a
	assert_equal "$(manifest_field m name 1)" b
	assert_equal "$(manifest_field m id 1)" "$(ref_id b)"
	# the stream is exactly the two single-file manifests, concatenated
	p2p-chunk a >ma
	p2p-chunk b >mb
	cat ma mb | cmp - m
}

@test "--id with two files prints two lines, each naming its file" {
	make_file a 30000 1
	make_file b 50000 2
	run -0 --separate-stderr p2p-chunk --id a b
	assert_equal "${#lines[@]}" 2
	assert_equal "$output" "$(ref_id a)	a
$(ref_id b)	b"
}

@test "DIR: recursive, one manifest per regular file, sorted, symlinks skipped" {
	mkdir -p d/sub
	make_file d/b.bin 3000 2
	make_file d/a.bin 1000 1
	make_file d/sub/c.bin 5000 3
	ln -s a.bin d/link.bin
	ln -s sub d/linkdir
	run -0 --separate-stderr p2p-chunk --id d
	assert_equal "$output" "$(ref_id d/a.bin)	d/a.bin
$(ref_id d/b.bin)	d/b.bin
$(ref_id d/sub/c.bin)	d/sub/c.bin"
	run -0 --separate-stderr to_file m p2p-chunk d
	assert_equal "$(python3 "$P2P_REF" manifests m | wc -l)" 3
	assert_equal "$(manifest_field m name 2)" c.bin
	[[ "$(manifest_field m path 2)" -ef d/sub/c.bin ]]
}

@test "DIR: a FIFO inside is not read (not a regular file)" {
	mkdir d
	make_file d/a.bin 1000 1
	mkfifo d/fifo
	run -0 --separate-stderr timeout 10 p2p-chunk --id d
	assert_output "$(ref_id d/a.bin)	d/a.bin"
}

@test "- reads stdin: same id, manifest without path" {
	make_file f 70000 15
	run -0 --separate-stderr bash -c 'p2p-chunk --id - < f'
	assert_output "$(ref_id f)"
	run -0 --separate-stderr to_file m p2p-chunk -c 16K - <f
	assert_equal "$(manifest_field m path)" '<absent>'
	assert_equal "$(manifest_field m size)" 70000
	assert_equal "$(manifest_field m chunks)" "$(python3 "$P2P_REF" chunks f 16384)"
	assert_equal "$(manifest_field m id_ok)" true
}

@test "refuses to write manifests to a terminal unless -f" {
	has_tty_tool || skip "script(1) not installed"
	make_file f 1000
	run -2 timeout 20 script -qec "p2p-chunk f" /dev/null </dev/null
	[[ $output == *p2p-chunk* ]] || fail "no message: $output"
	run -0 timeout 20 script -qec "p2p-chunk -f f" /dev/null </dev/null
	[[ $output == *f* ]] || fail "nothing written with -f"
	run -0 timeout 20 script -qec "p2p-chunk --force f" /dev/null </dev/null
	run -0 timeout 20 script -qec "p2p-chunk --id f" /dev/null </dev/null
	assert_output --partial "$(ref_id f)"
}
