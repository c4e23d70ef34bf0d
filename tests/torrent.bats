#!/usr/bin/env bats
# p2p-chunk --torrent: a BitTorrent v2 .torrent (BEP 52) made from the hashes behind the content
# ids. Each is loaded into libtorrent (Debian's python3-libtorrent, through torrent_check.py),
# pointed at the same files, and must check 100% (seeding); a damaged file must not.

bats_require_minimum_version 1.5.0

load ../bats/common

LT_PY=/usr/bin/python3
CHECK=$BATS_TEST_DIRNAME/torrent_check.py

setup() {
	common_setup
	"$LT_PY" -c 'import libtorrent' 2>/dev/null || skip "no python3-libtorrent (make deps)"
}

# make_dir DIR: files of several chunk sizes (so the piece length is larger than some files'
# chunks), nested, an empty file and a directory, one file twice.
make_dir() {
	mkdir -p "$1/sub/deeper" "$1/empty dir"
	make_file "$1/big.bin" 5000000 1
	make_file "$1/sub/mid.bin" 100000 2
	make_file "$1/sub/deeper/c d.txt" 5000 3
	make_file "$1/a.txt" 3 4
	: >"$1/zero"
	cp "$1/sub/mid.bin" "$1/mid-copy.bin"
}

@test "--torrent FILE: libtorrent checks the file 100% against it, for sizes across the chunk sizes" {
	local size
	for size in 1 16384 16385 1000000 40000000; do
		mkdir "s$size"
		make_file "s$size/f.bin" "$size" "$size"
		p2p-chunk --torrent "s$size/f.bin" >"$size.torrent"
		run -0 "$LT_PY" "$CHECK" "$size.torrent" "s$size"
		assert_output 'seeding 1.0 v2'
	done
}

@test "--torrent DIR: libtorrent checks the tree 100%: nested files, an empty file, a copy" {
	make_dir d
	p2p-chunk --torrent d >d.torrent
	run -0 "$LT_PY" "$CHECK" d.torrent .
	assert_output 'seeding 1.0 v2'
	# The name is the directory's, the piece length the largest chunk size, the files all there.
	run -0 "$LT_PY" -c '
import sys, libtorrent as lt
ti = lt.torrent_info(sys.argv[1])
fs = ti.files()
print(ti.name(), ti.piece_length())
print(sorted(fs.file_path(i) for i in range(fs.num_files()) if not fs.file_flags(i) & 1))' d.torrent
	assert_line --index 0 "d 65536"
	assert_line --index 1 "['d/a.txt', 'd/big.bin', 'd/mid-copy.bin', 'd/sub/deeper/c d.txt', 'd/sub/mid.bin', 'd/zero']"
}

@test "--torrent: a damaged file does not check; the torrent is the same bytes each time" {
	make_dir d
	p2p-chunk --torrent d >d.torrent
	p2p-chunk --torrent d >again.torrent
	cmp d.torrent again.torrent
	# The same files elsewhere, under the same name: the same torrent.
	mkdir elsewhere
	cp -a d elsewhere/d
	p2p-chunk --torrent elsewhere/d >moved.torrent
	cmp d.torrent moved.torrent
	corrupt d/sub/mid.bin 70000
	run -1 "$LT_PY" "$CHECK" d.torrent .
	assert_output --partial 'downloading'
}

@test "--torrent: the pieces root of a file is what its content id is made of" {
	make_file f.bin 3000000 9
	p2p-chunk --torrent f.bin >f.torrent
	run -0 "$LT_PY" -c '
import sys, hashlib, libtorrent as lt
ti = lt.torrent_info(sys.argv[1])
root = bytes.fromhex(str(ti.files().root(0)))
print(hashlib.sha256((3000000).to_bytes(8, "big") + root).hexdigest())' f.torrent
	assert_output "$(p2p-chunk --id f.bin)"
}

@test "--torrent: usage errors (with --id or --tree, two paths) exit 2; a missing path exits 1" {
	make_file f 10 1
	run -2 p2p-chunk --torrent --id f
	assert_output --partial 'one FILE or DIR'
	run -2 p2p-chunk --torrent f f
	run -2 p2p-chunk --torrent --tree f
	run -1 p2p-chunk --torrent /nonexistent
	assert_output --partial '/nonexistent'
}
