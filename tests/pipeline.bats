#!/usr/bin/env bats
# The tools together, as the product is used: chunk | serve, fetch, verify, pass a file on.

bats_require_minimum_version 1.5.0

load ../bats/common

@test "p2p-chunk FILE | p2p-serve, then p2p-fetch ID > out: byte-identical" {
	make_file 'héllo wörld.bin' 3M 1
	local id
	id=$(p2p-chunk --id 'héllo wörld.bin')
	# the literal pipeline: the server's stdin is p2p-chunk's stdout
	start_server --stdin <(p2p-chunk 'héllo wörld.bin')
	wait_listed "$SERVER_ADDR" "$id"
	timeout 30 p2p-fetch -p "$SERVER_ADDR" "$id" </dev/null >out
	cmp 'héllo wörld.bin' out
	run -0 --separate-stderr p2p-verify "$id" out
	assert_output $'OK\tout'
}

@test "fetched file verifies against the original manifest" {
	make_file a 2M 2
	p2p-chunk -c 16K a >m
	start_server --stdin m
	local id
	id=$(p2p-chunk --id a)
	wait_listed "$SERVER_ADDR" "$id"
	timeout 30 p2p-fetch -p "$SERVER_ADDR" -o b "$id" </dev/null
	run -0 --separate-stderr bash -c 'p2p-verify -m - b < m'
	assert_output $'OK\tb'
	run -0 --separate-stderr bash -c 'p2p-chunk a | p2p-verify -m - b'
	assert_output $'OK\tb'
}

@test "p2p-chunk a | p2p-verify -m - b: modified b fails with the bad chunk" {
	make_file a 1M 3
	cp a b
	corrupt b $((5 * 16384 + 1))
	run -1 --separate-stderr bash -c 'p2p-chunk -c 16K a | p2p-verify -m - b'
	assert_output $'FAILED\tb'
	assert_stderr 'p2p-verify: b: chunk 5 does not match'
}

@test "manifest streams: p2p-chunk a b | wc -c > 0; --id a b prints 2 lines" {
	make_file a 1000 4
	make_file b 2000 5
	run -0 bash -c 'p2p-chunk a b | wc -c'
	((output > 0))
	run -0 bash -c 'p2p-chunk --id a b | wc -l'
	assert_output 2
}

@test "a directory: serve -d, list, fetch every listed file, verify each" {
	mkdir -p share/sub
	make_file share/one.bin 100000 6
	make_file 'share/sub/two and three.bin' 200000 7
	: >share/empty
	start_server -d share
	wait_listed "$SERVER_ADDR" $(p2p-chunk --id share | cut -f1)
	run -0 --separate-stderr list_files -p "$SERVER_ADDR" </dev/null
	assert_equal "${#lines[@]}" 3
	local id size name n=0
	while IFS=$'\t' read -r id size name; do
		name=${name//\//-} # a path in the tree: sub/x.bin
		timeout 30 p2p-fetch -p "$SERVER_ADDR" -o "got-$name" "$id" </dev/null
		assert_equal "$(file_size "got-$name")" "$size"
		p2p-verify "$id" "got-$name" >/dev/null
		n=$((n + 1))
	done <<<"$output"
	assert_equal "$n" 3
	cmp share/one.bin got-one.bin
	cmp 'share/sub/two and three.bin' 'got-sub-two and three.bin'
	cmp share/empty got-empty
}

@test "a file passed on: fetched from A, served by B, fetched from B alone" {
	make_file orig 5M 8
	local id
	id=$(p2p-chunk --id orig)
	serve_chunked orig
	local a=$SERVER_ADDR
	mkdir relay
	timeout 30 p2p-fetch -p "$a" -o relay/copy "$id" </dev/null
	stop_server "$SERVER_PID"
	start_server -d relay
	wait_listed "$SERVER_ADDR" "$id"
	timeout 30 p2p-fetch -p "$SERVER_ADDR" "$id" </dev/null >final
	cmp orig final
	# A is gone: asking it alone now fails
	run -1 --separate-stderr timeout 20 p2p-fetch -p "$a" "$id" </dev/null
	assert_stderr --partial "$a"
}

@test "peers listed on stdin, as p2p-discover would print them" {
	make_file f 1M 9
	serve_chunked f
	local a=$SERVER_ADDR id
	serve_chunked f
	id=$(p2p-chunk --id f)
	run -0 --separate-stderr bash -c 'printf "%s\tnode-a\n%s\tnode-b\n" "$1" "$2" | timeout 30 p2p-fetch --stats "$3" >out' _ "$a" "$SERVER_ADDR" "$id"
	cmp f out
	assert_equal "$(stats_field "$stderr" chunks_resumed)" 0
}

@test "three servers, one of them lying: the file arrives intact" {
	make_file f 8M 10
	cp f lie.bin
	p2p-chunk -c 64K lie.bin >lie.m
	corrupt_chunks lie.bin 65536
	p2p-chunk -c 64K f >m
	local id addrs=()
	id=$(p2p-chunk --id f)
	start_server --stdin lie.m
	wait_listed "$SERVER_ADDR" "$id"
	addrs+=(-p "$SERVER_ADDR")
	for _ in 1 2; do
		start_server --stdin m
		wait_listed "$SERVER_ADDR" "$id"
		addrs+=(-p "$SERVER_ADDR")
	done
	run -0 --separate-stderr to_file out timeout 60 p2p-fetch --stats "${addrs[@]}" "$id" </dev/null
	cmp f out
	assert_equal "$(stats_field "$stderr" chunks_fetched)" 128
}
