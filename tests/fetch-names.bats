#!/usr/bin/env bats
# p2p-fetch's output path: -O and -o DIR write under the name the manifest gives, made safe (a
# peer chooses it); -o is checked before anything is fetched; an existing file is written over
# only when it is this file (kept when whole, repaired when damaged) or with --force.

bats_require_minimum_version 1.5.0

load ../bats/common

@test "-O writes under the sender's name, here" {
	make_file song.ogg 300K 1
	serve_chunked -c 16K song.ogg
	mkdir here
	cd here
	run -0 --separate-stderr timeout 60 p2p-fetch -p "$SERVER_ADDR" -O "$(ref_id ../song.ogg)" </dev/null
	assert_output ''
	cmp ../song.ogg song.ogg
	assert_equal "$(ls -A)" song.ogg
	run -0 --separate-stderr timeout 60 p2p-fetch -p "$SERVER_ADDR" --remote-name "$(ref_id ../song.ogg)" </dev/null
	assert_equal "$(ls -A)" song.ogg
}

@test "-o DIR and -o DIR/ (existing directories) write DIR/NAME; no DIR.part, no hidden DIR/.part" {
	make_file song.ogg 300K 2
	serve_chunked -c 16K song.ogg
	mkdir dl dl2
	run -0 --separate-stderr timeout 60 p2p-fetch -p "$SERVER_ADDR" -o dl "$(ref_id song.ogg)" </dev/null
	cmp song.ogg dl/song.ogg
	assert_equal "$(ls -A dl)" song.ogg
	assert_file_not_exists dl.part
	run -0 --separate-stderr timeout 60 p2p-fetch -p "$SERVER_ADDR" -o dl2/ "$(ref_id song.ogg)" </dev/null
	cmp song.ogg dl2/song.ogg
	assert_equal "$(ls -A dl2)" song.ogg
}

@test "-o in a missing directory fails at once naming it, before anything is fetched" {
	make_file song.ogg 300K 3
	serve_chunked -c 16K song.ogg
	local id
	id=$(ref_id song.ogg)
	run -1 --separate-stderr timeout 60 p2p-fetch -p "$SERVER_ADDR" -o missing/dir/f "$id" </dev/null
	assert_stderr 'p2p-fetch: missing/dir: no such directory (the directory of -o missing/dir/f)'
	# checked before any connection: a peer that is not there is never tried
	run -1 --separate-stderr timeout 60 p2p-fetch -p "127.0.0.1:$(unused_port)" -o missing/dir/f "$id" </dev/null
	assert_stderr 'p2p-fetch: missing/dir: no such directory (the directory of -o missing/dir/f)'
	run -1 --separate-stderr timeout 60 p2p-fetch -p "$SERVER_ADDR" -o nodir/ "$id" </dev/null
	assert_stderr 'p2p-fetch: nodir/: no such directory'
	touch plain
	run -1 --separate-stderr timeout 60 p2p-fetch -p "$SERVER_ADDR" -o plain/f "$id" </dev/null
	assert_stderr 'p2p-fetch: plain: not a directory (in -o plain/f)'
	run -2 --separate-stderr timeout 60 p2p-fetch -p "$SERVER_ADDR" -O -o plain "$id" </dev/null
	assert_stderr "p2p-fetch: -O writes under the sender's name: -o then names a directory, and plain is none"
	assert_file_not_exists missing
	assert_file_not_exists nodir
}

@test "a whole, matching FILE: nothing fetched, and said at the default level" {
	make_file song.ogg 300K 4
	serve_chunked -c 16K song.ogg
	cp song.ogg out
	run -0 --separate-stderr timeout 60 p2p-fetch --stats -p "$SERVER_ADDR" -o out "$(ref_id song.ogg)" </dev/null
	assert_stderr_line 'p2p-fetch: out: already complete and verified; nothing to fetch'
	assert_equal "$(stats_field "$stderr" chunks_fetched)" 0
	cmp song.ogg out
	mkdir dl
	cp song.ogg dl/
	run -0 --separate-stderr timeout 60 p2p-fetch -p "$SERVER_ADDR" -o dl "$(ref_id song.ogg)" </dev/null
	assert_stderr_line 'p2p-fetch: dl/song.ogg: already complete and verified; nothing to fetch'
	run -0 --separate-stderr timeout 60 p2p-fetch -q -p "$SERVER_ADDR" -o dl "$(ref_id song.ogg)" </dev/null
	assert_stderr ''
}

@test "another FILE of the same size (no chunk verifies) or another size is refused, exit 1, naming --force; --force replaces it" {
	make_file song.ogg 300K 5
	serve_chunked -c 16K song.ogg
	make_file other 300K 6
	cp other other.orig
	run -1 --separate-stderr timeout 60 p2p-fetch -p "$SERVER_ADDR" -o other "$(ref_id song.ogg)" </dev/null
	assert_stderr_line 'p2p-fetch: other: exists and is another file (no chunk of it matches); not overwritten: remove it, or give --force to replace it'
	cmp other.orig other
	assert_file_not_exists other.part
	echo hello >small
	run -1 --separate-stderr timeout 60 p2p-fetch -p "$SERVER_ADDR" -o small "$(ref_id song.ogg)" </dev/null
	assert_stderr_line 'p2p-fetch: small: exists and is another file (6 bytes, not 307200); not overwritten: remove it, or give --force to replace it'
	assert_equal "$(cat small)" hello
	mkdir dl
	echo hello >dl/song.ogg
	run -1 --separate-stderr timeout 60 p2p-fetch -p "$SERVER_ADDR" -o dl "$(ref_id song.ogg)" </dev/null
	assert_stderr --partial 'dl/song.ogg: exists and is another file'
	assert_equal "$(cat dl/song.ogg)" hello
	run -0 --separate-stderr timeout 60 p2p-fetch --force -p "$SERVER_ADDR" -o other "$(ref_id song.ogg)" </dev/null
	cmp song.ogg other
	run -0 --separate-stderr timeout 60 p2p-fetch --force -p "$SERVER_ADDR" -o small "$(ref_id song.ogg)" </dev/null
	cmp song.ogg small
}

@test "a damaged FILE of the right size (a chunk verifies) is repaired without --force" {
	make_file song.ogg 300K 7
	serve_chunked -c 16K song.ogg
	cp song.ogg out
	corrupt out 5
	corrupt out $((16384 * 10 + 3))
	run -0 --separate-stderr timeout 60 p2p-fetch --stats -p "$SERVER_ADDR" -o out "$(ref_id song.ogg)" </dev/null
	cmp song.ogg out
	assert_equal "$(stats_field "$stderr" chunks_fetched)" 2
}

@test "hostile names: -O writes a sanitised name, never a path, a hidden file or a control character" {
	export MINI_P2P_NO_TLS=1 # p2p-badpeer speaks plaintext
	make_file f 64K 8
	p2p-chunk f >m
	start_badpeer hostile-names m f
	mkdir here
	cd here
	run -0 --separate-stderr timeout 60 p2p-fetch -T 5 -p "$BADPEER_ADDR" -O "$(ref_id ../f)" </dev/null
	echo "$stderr"
	assert_equal "$(ls -A)" 'xp2p-fetch: error: forged[31m1mz'
	cmp ../f 'xp2p-fetch: error: forged[31m1mz'
}

@test "names with leading dots or dashes lose them; a name of nothing but dots becomes the id" {
	mkdir src
	make_file src/.bashrc 20K 9
	make_file src/..x 20K 10
	make_file src/-rf 20K 11
	make_file src/... 20K 12
	start_server --hidden -d src
	local f
	for f in .bashrc ..x -rf ...; do
		wait_listed "$SERVER_ADDR" "$(ref_id "src/$f")" || true
	done
	mkdir here
	cd here
	for f in ..x -rf ...; do
		run -0 --separate-stderr timeout 60 p2p-fetch -p "$SERVER_ADDR" -O "$(ref_id "../src/$f")" </dev/null
	done
	assert_equal "$(ls -A | sort | tr '\n' ' ')" "$(ref_id ../src/...) rf x "
	cmp ../src/..x x
	cmp ../src/-rf rf
	cmp ../src/... "$(ref_id ../src/...)"
}
