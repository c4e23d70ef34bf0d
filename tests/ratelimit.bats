#!/usr/bin/env bats
# Bandwidth limits: --max-download-rate and --max-upload-rate (and network.max_*_rate in the
# configuration file) on p2p-fetch and p2p-serve. One budget is shared by every connection of
# the process. Each limit is measured from outside (bytes over wall-clock time, four seconds
# of transfer or more) and must hold within 15%: a limit that does not bite, or one that
# bites far too hard, fails. Chunks of 4 MiB put the limits to the test where libproto reads
# and writes past libevent: a whole frame read at once, a whole chunk sent by sendfile.

bats_require_minimum_version 1.5.0
load ../bats/common

RATE=2097152 # 2M, in bytes per second

setup() {
	common_setup
	make_file f 8M 7
	ID=$(p2p-chunk --id f)
}

# within_15 BYTES START_NS END_NS: BYTES over the time between is within 15% of RATE.
within_15() {
	local ns=$(($3 - $2)) rate
	rate=$(($1 * 1000000000 / ns))
	echo "# $1 bytes in $((ns / 1000000)) ms: $rate bytes/s, limit $RATE" >&3
	((rate >= RATE * 85 / 100 && rate <= RATE * 115 / 100)) ||
		fail "$rate bytes/s is not within 15% of $RATE"
}

@test "p2p-fetch --max-download-rate 2M: 8 MiB in about 4 s, in chunks of 4 MiB" {
	serve_chunked -c 4M f -- --no-announce
	local t0 t1
	t0=$(now_ns)
	timeout 60 p2p-fetch --max-download-rate 2M -p "$SERVER_ADDR" -o out "$ID" </dev/null
	t1=$(now_ns)
	cmp f out
	within_15 8388608 "$t0" "$t1"
}

# With two peers the endgame asks for the last chunks of the file of both, so more than the
# file's bytes cross the wire, some in frames cut off at the end that no counter sees: the file
# cannot come faster than the limit allows (with a budget per peer it would take 2 s), and
# comes within twice the time.
@test "p2p-fetch --max-download-rate is one budget over all peers: two servers, no faster" {
	p2p-chunk f >f.mf
	start_server --stdin f.mf --no-announce
	local a=$SERVER_ADDR
	start_server --stdin f.mf --no-announce
	wait_listed "$a" "$ID"
	wait_listed "$SERVER_ADDR" "$ID"
	local t0 t1
	t0=$(now_ns)
	run -0 --separate-stderr timeout 60 p2p-fetch --stats --max-download-rate 2M -p "$a" -p "$SERVER_ADDR" -o out "$ID" </dev/null
	t1=$(now_ns)
	cmp f out
	assert_equal "$(stats_field "$stderr" peers_used)" 2
	local ms=$(((t1 - t0) / 1000000))
	echo "# 8 MiB from two peers in $ms ms, at most 2 MiB/s in all" >&3
	((ms >= 4000 * 100 / 115 && ms <= 8000)) || fail "$ms ms for 8 MiB at 2 MiB/s"
}

@test "p2p-serve --max-upload-rate 2M: 8 MiB in about 4 s, in chunks of 4 MiB sent by sendfile" {
	serve_chunked -c 4M f -- --no-announce --max-upload-rate 2M
	local t0 t1
	t0=$(now_ns)
	timeout 60 p2p-fetch -p "$SERVER_ADDR" -o out "$ID" </dev/null
	t1=$(now_ns)
	cmp f out
	within_15 8388608 "$t0" "$t1"
}

@test "p2p-serve --max-upload-rate is one budget over all clients: two fetches of 4 MiB at once" {
	make_file g 4M 8
	make_file h 4M 9
	serve_chunked -c 4M g h -- --no-announce --max-upload-rate 2M
	local t0 t1 p1 p2
	t0=$(now_ns)
	timeout 60 p2p-fetch -p "$SERVER_ADDR" -o out.g "$(p2p-chunk --id g)" </dev/null &
	p1=$!
	timeout 60 p2p-fetch -p "$SERVER_ADDR" -o out.h "$(p2p-chunk --id h)" </dev/null &
	p2=$!
	EXTRA_PIDS+=("$p1" "$p2")
	wait_exit "$p1" 60
	assert_equal "$exit_status" 0
	wait_exit "$p2" 60
	assert_equal "$exit_status" 0
	t1=$(now_ns)
	cmp g out.g
	cmp h out.h
	# two processes starting and ending apart: no faster than the limit (a budget per
	# client would take 2 s), and within twice the time
	local ms=$(((t1 - t0) / 1000000))
	echo "# two fetches of 4 MiB in $ms ms, at most 2 MiB/s in all" >&3
	((ms >= 4000 * 100 / 115 && ms <= 8000)) || fail "$ms ms for 8 MiB at 2 MiB/s"
}

@test "network.max_download_rate and max_upload_rate in the configuration file; the flag beats them" {
	# The server starts first: it would read the file too, and serve at 512K.
	serve_chunked f -- --no-announce
	mkdir config
	printf '[network]\nmax_download_rate = "3M"  # bytes/s\nmax_upload_rate = 512K\n' >config/default.toml
	run -0 --separate-stderr env P2P_LOG=conn=debug p2p-fetch -p "$SERVER_ADDR" -o out "$ID" </dev/null
	assert_stderr --partial 'rate limit: 3145728 bytes/s in, 524288 out'
	rm out
	run -0 --separate-stderr env P2P_LOG=conn=debug p2p-fetch --max-download-rate 0 -p "$SERVER_ADDR" -o out "$ID" </dev/null
	assert_stderr --partial 'rate limit: 0 bytes/s in, 524288 out'
	printf '[network]\nmax_upload_rate = 10\n' >config/default.toml
	run -2 --separate-stderr p2p-serve -p 0 --no-announce
	assert_stderr "p2p-serve: config/default.toml:2: network.max_upload_rate = '10': want bytes per second from 1K to 1T, with K, M or G, or 0"
}

@test "a bad rate is a usage error naming the value; no limit: no rate-limit group at all" {
	local bad
	for bad in 10 1023 abc 5X 2MB '' -1 2T 99999999999999999999; do
		run -2 --separate-stderr p2p-fetch --max-download-rate "$bad" -p 127.0.0.1:1 "$ID" </dev/null
		assert_stderr "p2p-fetch: max download rate '$bad': want bytes per second from 1K to 1T, with K, M or G, or 0 for no limit"
		run -2 --separate-stderr p2p-serve --max-upload-rate "$bad"
		assert_stderr --partial "max upload rate '$bad'"
	done
	serve_chunked f -- --no-announce
	run -0 --separate-stderr env P2P_LOG=conn=debug p2p-fetch -p "$SERVER_ADDR" -o out "$ID" </dev/null
	refute_stderr --partial 'rate limit'
}
