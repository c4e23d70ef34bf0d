#!/usr/bin/env bats
# Faults on the path: p2p-fetch through tests/proxy/p2p-faultproxy, which relays to a p2p-serve
# and cuts, resets, silences, slows or corrupts the stream on purpose. The fetch must end with
# the right bytes whenever an honest path remains, and fail within its timeout, keeping what it
# got, when none does. The proxy is checked on its own first, on a plain stream: a fault suite
# whose faults never happen proves nothing.

bats_require_minimum_version 1.5.0

load ../bats/common

setup() {
	common_setup
	# The proxy cuts, stalls and flips the protocol's own bytes, at offsets counted in the
	# plaintext stream, and the fetch's reaction to each (resume, drop, retry) is what is
	# tested: so the tools run in plaintext here. Under TLS any flipped byte is a TLS error;
	# tests/tls.bats tests that, and the proxy's --dump there shows that no file byte passes
	# in clear.
	export MINI_P2P_NO_TLS=1
	[[ -x $P2P_FAULTPROXY ]] || fail "no $P2P_FAULTPROXY: make it first (make check builds it)"
}

# serve_file FILE: a p2p-serve sharing FILE at 64 KiB chunks, no discovery, named "s" so that
# its HELLO has the same length (14 bytes) on every host. Sets SERVER_ADDR.
# Where a faulty peer is beside an honest one, the file is 16 MiB and the honest path is capped
# (_honest_capped): a few MiB come from a direct peer in some 30 ms, before the proxied one may
# even have answered, and its fault would never happen. Each such test checks that it did.
serve_file() {
	serve_chunked -c 64K "$1" -- --no-announce -n s
}

# ---- the proxy on its own ----

@test "proxy: without faults the stream arrives whole" {
	make_file f 3000000 1
	start_stream_server f
	start_faultproxy "$SERVER_ADDR"
	stream_read "$PROXY_ADDR" got
	assert_equal "$STREAM_END" silent # the server holds the connection open
	cmp f got
	stop_server "$PROXY_PID"
	assert_equal "$exit_status" 0
	assert_equal "$(proxy_connections "$PROXY_ERR")" 1
	proxy_reported "$PROXY_ERR" 'connection 1: closed: 3000000 bytes down, 0 bytes up'
	run grep -E 'cut|reset|silent|flipped' "$PROXY_ERR"
	assert_failure
}

@test "proxy: --cut-after N gives exactly N bytes then EOF; --reset-after N then a reset" {
	make_file f 3000000 2
	start_stream_server f
	local s=$SERVER_ADDR n
	for n in 0 1 65536 1000001; do
		start_faultproxy "$s" --cut-after "$n"
		stream_read "$PROXY_ADDR" got
		assert_equal "$STREAM_END $STREAM_BYTES" "eof $n"
		cmp -n "$n" f got
		proxy_reported "$PROXY_ERR" "connection 1: cut after $n bytes down"

		start_faultproxy "$s" --reset-after "$n"
		stream_read "$PROXY_ADDR" got
		assert_equal "$STREAM_END $STREAM_BYTES" "reset $n"
		cmp -n "$n" f got
		proxy_reported "$PROXY_ERR" "connection 1: reset after $n bytes down"
	done
}

@test "proxy: --silent-after N gives exactly N bytes, then neither data nor EOF" {
	make_file f 3000000 3
	start_stream_server f
	start_faultproxy "$SERVER_ADDR" --silent-after 1000000
	stream_read "$PROXY_ADDR" got 2
	assert_equal "$STREAM_END $STREAM_BYTES" "silent 1000000"
	cmp -n 1000000 f got
	proxy_reported "$PROXY_ERR" 'connection 1: silent after 1000000 bytes down'
}

@test "proxy: --flip-byte N inverts byte N only" {
	make_file f 300000 4
	start_stream_server f
	start_faultproxy "$SERVER_ADDR" --flip-byte 123456
	stream_read "$PROXY_ADDR" got
	assert_equal "$STREAM_BYTES" 300000
	run cmp -l f got
	assert_output --regexp '^ *123457 +[0-7]+ +[0-7]+$' # cmp counts from 1; one line: one byte
	local a b
	read -r _ a b <<<"$output"
	assert_equal $((8#$a ^ 8#$b)) 255
	proxy_reported "$PROXY_ERR" 'connection 1: flipped byte 123456 down'
}

@test "proxy: --only-first 1 faults the first connection only" {
	make_file f 500000 5
	start_stream_server f
	start_faultproxy "$SERVER_ADDR" --only-first 1 --cut-after 1000
	stream_read "$PROXY_ADDR" got1
	assert_equal "$STREAM_END $STREAM_BYTES" "eof 1000"
	stream_read "$PROXY_ADDR" got2
	assert_equal "$STREAM_BYTES" 500000
	cmp f got2
	proxy_reported "$PROXY_ERR" 'connection 2: accepted, relayed cleanly'
	run grep -c 'cut after' "$PROXY_ERR"
	assert_output 1
}

@test "proxy: --delay holds the data; --rate caps the throughput" {
	make_file f 1000000 6
	start_stream_server f
	start_faultproxy "$SERVER_ADDR" --delay 400
	stream_read "$PROXY_ADDR" got
	cmp f got
	((STREAM_FIRST_MS >= 400)) || fail "first byte after $STREAM_FIRST_MS ms with --delay 400"
	start_faultproxy "$SERVER_ADDR" --rate 500000
	stream_read "$PROXY_ADDR" got
	cmp f got
	# 1 MB at 500 kB/s: 2 s, less the first tick's burst; the 2 s of silence come on top.
	# The cap must bite (no faster); a busy machine may make it slower, which is no fault of
	# the proxy's, so the upper bound only catches a cap far too hard.
	local ms=$((STREAM_MS - 2000))
	((ms >= 1700 && ms <= 10000)) || fail "1 MB took $ms ms at --rate 500000"
}

@test "proxy: usage errors exit 2 and name the bad value" {
	run -2 --separate-stderr "$P2P_FAULTPROXY" --cut-after abc 127.0.0.1:1 </dev/null
	assert_stderr_line --partial "'abc'"
	run -2 --separate-stderr "$P2P_FAULTPROXY" --direction sideways 127.0.0.1:1 </dev/null
	assert_stderr_line --partial "'sideways'"
	run -2 --separate-stderr "$P2P_FAULTPROXY" 127.0.0.1 </dev/null
	assert_stderr_line --partial "'127.0.0.1'"
	run -2 --separate-stderr "$P2P_FAULTPROXY" </dev/null
	assert_stderr --partial 'usage: p2p-faultproxy'
	run -0 --separate-stderr "$P2P_FAULTPROXY" --help </dev/null
	assert_output --partial 'usage: p2p-faultproxy'
}

# ---- p2p-fetch through it ----

@test "a fetch through a proxy without faults is byte-identical" {
	make_file f 4M 10
	serve_file f
	start_faultproxy "$SERVER_ADDR"
	run -0 --separate-stderr timeout 60 p2p-fetch --stats -p "$PROXY_ADDR" -o out "$(ref_id f)" </dev/null
	cmp f out
	assert_equal "$(stats_field "$stderr" from)" "$PROXY_ADDR/64"
}

# _honest_capped: the honest path beside a faulty one goes through a proxy without faults,
# capped at 20 MB/s (HONEST, its address). Uncapped, the honest peer can deliver the whole
# file before a busy machine (or the sanitizers) lets the faulty proxy relay its first bytes,
# and then the fault never happens. Call right after serve_file.
_honest_capped() {
	local server=$SERVER_ADDR
	start_faultproxy "$server" --rate 20000000
	HONEST=$PROXY_ADDR
	SERVER_ADDR=$server
}

@test "cut or reset mid-transfer beside an honest peer: complete, correct, nobody dropped" {
	make_file f 16M 11
	serve_file f
	_honest_capped
	local direct=$SERVER_ADDR honest=$HONEST id fault n conns
	id=$(ref_id f)
	for fault in cut reset; do
		start_faultproxy "$direct" "--$fault-after" 1000000
		rm -f out
		run -0 --separate-stderr timeout 60 p2p-fetch --stats -p "$PROXY_ADDR" -p "$honest" -o out "$id" </dev/null
		cmp f out
		proxy_reported "$PROXY_ERR" "connection 1: $fault after 1000000 bytes down" ||
			fail "no $fault: $(cat "$PROXY_ERR")"
		assert_equal "$(stats_field "$stderr" peers_dropped)" 0
		assert_equal "$(stats_field "$stderr" chunks_fetched)" 256
		# the proxied peer delivered chunks before the fault: the fault came mid-transfer
		[[ ",$(stats_field "$stderr" from)," =~ ,$PROXY_ADDR/([0-9]+), ]] ||
			fail "$fault: no chunks through the proxy: $stderr"
		n=${BASH_REMATCH[1]}
		# Each connection through the proxy carries 1000000 bytes at most: 15 chunks of 64 KiB.
		# The fetch reconnects after a cut (up to 3 times), and on a busy machine the
		# direct peer may not have taken the rest by then: so many connections, so many times.
		conns=$(proxy_connections "$PROXY_ERR")
		((n > 0 && n <= 16 * conns)) ||
			fail "$fault: $n chunks through a proxy that stops after 1000000 bytes, over $conns connections"
	done
}

@test "to stdout: a cut and a reset mid-transfer beside an honest peer: byte-identical" {
	make_file f 16M 21
	serve_file f
	_honest_capped
	local direct=$SERVER_ADDR honest=$HONEST id fault
	id=$(ref_id f)
	for fault in cut reset; do
		start_faultproxy "$direct" "--$fault-after" 3000000
		run -0 --separate-stderr to_file out timeout 60 p2p-fetch -p "$PROXY_ADDR" -p "$honest" "$id" </dev/null
		cmp f out
		proxy_reported "$PROXY_ERR" "connection 1: $fault after 3000000 bytes down"
	done
}

@test "cut or reset in the handshake or the manifest beside an honest peer: complete" {
	make_file f 16M 12
	serve_file f
	local server=$SERVER_PID server_err=$SERVER_ERR
	_honest_capped
	local direct=$SERVER_ADDR honest=$HONEST id fault n
	id=$(ref_id f)
	for fault in cut reset; do
		for n in 0 10 1000; do
			start_faultproxy "$direct" "--$fault-after" "$n"
			rm -f out
			run -0 --separate-stderr timeout 60 p2p-fetch --stats -p "$PROXY_ADDR" -p "$honest" -o out "$id" </dev/null
			cmp f out
			proxy_reported "$PROXY_ERR" "connection 1: $fault after $n bytes down" ||
				fail "no $fault after $n bytes: $(cat "$PROXY_ERR")"
			assert_equal "$(stats_field "$stderr" peers_dropped)" 0
		done
	done
	pid_alive "$server" || fail "p2p-serve died of the faults: $(cat "$server_err")"
}

@test "the fetcher's requests cut (--direction up) beside an honest peer: complete" {
	make_file f 16M 13
	serve_file f
	_honest_capped
	local direct=$SERVER_ADDR honest=$HONEST
	start_faultproxy "$direct" --direction up --cut-after 500
	run -0 --separate-stderr timeout 60 p2p-fetch -p "$PROXY_ADDR" -p "$honest" -o out "$(ref_id f)" </dev/null
	cmp f out
	proxy_reported "$PROXY_ERR" 'connection 1: cut after 500 bytes up'
}

# _alone_reconnects FAULT: a fetch from one peer whose first connection FAULT (cut or reset)
# ends mid-transfer, the path clean from then on (--only-first 1).
_alone_reconnects() {
	make_file f 4M 14
	serve_file f
	start_faultproxy "$SERVER_ADDR" --only-first 1 "--$1-after" 1000000
	run --separate-stderr timeout 60 p2p-fetch --stats -T 5 -p "$PROXY_ADDR" -o out "$(ref_id f)" </dev/null
	proxy_reported "$PROXY_ERR" "connection 1: $1 after 1000000 bytes down"
	((status == 0)) || fail "exit $status after the first connection was $1 (connections: $(proxy_connections "$PROXY_ERR")): $stderr"
	cmp f out
	(($(proxy_connections "$PROXY_ERR") >= 2))
}

@test "alone, first connection cut mid-transfer (--only-first 1): the fetch reconnects and completes" {
	_alone_reconnects cut
}

@test "alone, first connection reset mid-transfer (--only-first 1): the fetch reconnects and completes" {
	_alone_reconnects reset
}

@test "a byte flipped through the proxy beside an honest peer: correct output, proxied peer dropped" {
	make_file f 16M 15
	serve_file f
	_honest_capped
	local direct=$SERVER_ADDR honest=$HONEST
	# past HELLO, the manifest (8.3 kB) and two chunks, inside the data of the third
	# chunk the proxied peer sends: one it was asked for, that the fetch cannot finish without
	start_faultproxy "$direct" --flip-byte 200000
	run -0 --separate-stderr timeout 60 p2p-fetch --stats -p "$PROXY_ADDR" -p "$honest" -o out "$(ref_id f)" </dev/null
	cmp f out
	proxy_reported "$PROXY_ERR" 'connection 1: flipped byte 200000 down'
	assert_stderr_line --regexp "^p2p-fetch: $PROXY_ADDR: chunk [0-9]+ failed verification; dropping peer\$"
	assert_equal "$(stats_field "$stderr" peers_dropped)" 1
}

@test "a byte flipped in the proxied peer's manifest beside an honest peer: dropped, never adopted" {
	make_file f 16M 24
	serve_file f
	_honest_capped
	local direct=$SERVER_ADDR honest=$HONEST id n
	id=$(ref_id f)
	# after the 14 bytes of HELLO, 30 is in the manifest's id, 1000 in its chunk hashes
	for n in 30 1000; do
		start_faultproxy "$direct" --flip-byte "$n"
		rm -f out
		run -0 --separate-stderr timeout 60 p2p-fetch --stats -p "$PROXY_ADDR" -p "$honest" -o out "$id" </dev/null
		cmp f out
		proxy_reported "$PROXY_ERR" "connection 1: flipped byte $n down"
		assert_stderr_line --regexp "^p2p-fetch: $PROXY_ADDR: .*; dropping peer\$"
		assert_equal "$(stats_field "$stderr" peers_dropped)" 1
		assert_equal "$(stats_field "$stderr" from)" "$honest/256"
	done
}

# _timed_fetch OUT PEER...: fetch f's id from the PEERs into OUT; sets FETCH_MS. Fails when the
# fetch fails or the output differs.
_timed_fetch() {
	local out=$1 t0 p args=()
	shift
	for p in "$@"; do
		args+=(-p "$p")
	done
	rm -f "$out" "$out.part"
	t0=$(now_ns)
	timeout 120 p2p-fetch "${args[@]}" -o "$out" "$ID" </dev/null 2>>fetch.err || return 1
	FETCH_MS=$(ms_since "$t0")
	cmp f "$out"
}

# _bytes_up ERRFILE N: the bytes connection N of a proxy carried upstream, once it closed.
_bytes_up() {
	wait_for proxy_reported "$1" "connection $2: closed: [0-9]+ bytes down, [0-9]+ bytes up" || return 1
	sed -nE "s/^p2p-faultproxy: connection $2: closed: [0-9]+ bytes down, ([0-9]+) bytes up\$/\1/p" "$1"
}

# _slow_beside_fast NSLOW: NSLOW slow peers (20 kB/s, 1 MiB chunks: 52 s a chunk) beside a
# fast one (4 MB/s: 8 MiB in about 2 s). Every slow peer is asked for chunks, yet the fetch
# never waits for one: it ends long before a slow peer could deliver a single chunk, the
# endgame having asked the fast peer for what the slow ones held. A bound on behaviour with
# a wide margin, not a speed: speeds are measured by p2p-bench, not asserted here.
_slow_beside_fast() {
	local nslow=$1 i e
	make_file f 8M 16
	serve_chunked -c 1M f -- --no-announce -n s
	ID=$(p2p-chunk --id f)
	start_faultproxy "$SERVER_ADDR" --rate 4000000
	local fast=$PROXY_ADDR slow=() slow_err=()
	for ((i = 0; i < nslow; i++)); do
		start_faultproxy "$SERVER_ADDR" --rate 20000
		slow+=("$PROXY_ADDR")
		slow_err+=("$PROXY_ERR")
	done
	_timed_fetch out "${slow[@]}" "$fast" || fail "the fetch failed: $(cat fetch.err)"
	echo "# $nslow slow + fast: $FETCH_MS ms; one chunk from a slow peer takes 52 s" >&3
	((FETCH_MS < 30000)) || fail "$nslow slow + fast took $FETCH_MS ms: it waited for a slow peer"
	# Each slow peer took part: it was sent more than HELLO and GET_MANIFEST (under 120
	# bytes), that is chunk requests. Otherwise this test proves nothing.
	for e in "${slow_err[@]}"; do
		i=$(_bytes_up "$e" 1)
		((i > 150)) || fail "a slow peer was sent $i bytes: no chunk requests"
	done
}

@test "a slow peer (20 kB/s) beside a fast one: the fetch never waits for it" {
	_slow_beside_fast 1
}

@test "two slow peers beside a fast one: the fetch never waits for them" {
	_slow_beside_fast 2
}

@test "a peer silent mid-transfer beside an honest one: the fetch completes" {
	make_file f 16M 22
	serve_file f
	_honest_capped
	local direct=$SERVER_ADDR honest=$HONEST t0 ms
	start_faultproxy "$direct" --silent-after 300000
	t0=$(now_ns)
	run --separate-stderr timeout 60 p2p-fetch --stats -T 3 -p "$PROXY_ADDR" -p "$honest" -o out "$(ref_id f)" </dev/null
	ms=$(ms_since "$t0")
	echo "# exit $status after $ms ms with -T 3" >&3
	proxy_reported "$PROXY_ERR" 'connection 1: silent after 300000 bytes down'
	((status == 0)) || fail "exit $status after $ms ms, the honest peer beside: $stderr"
	cmp f out
}

@test "a slow but steady peer whose chunks take longer than -T to arrive is not given up" {
	# 1 MiB chunks at 250 kB/s: a chunk every 4.2 s, a byte every moment; -T 3 is about
	# silence ("without progress ... waiting for an answer"), not about whole chunks
	make_file f 2M 23
	serve_chunked -c 1M f -- --no-announce
	start_faultproxy "$SERVER_ADDR" --rate 250000
	local t0 ms
	t0=$(now_ns)
	run --separate-stderr timeout 60 p2p-fetch -T 3 -p "$PROXY_ADDR" -o out "$(ref_id f)" </dev/null
	ms=$(ms_since "$t0")
	((status == 0)) || fail "exit $status after $ms ms while bytes kept arriving: $stderr"
	cmp f out
}

@test "a steady peer at 40 kB/s sending one 256 KiB chunk (6.5 s) is not given up with -T 3" {
	# Bytes arrive all the time, yet the fetcher must see them: it may not leave them unread in
	# the kernel (SO_RCVLOWAT) until the whole frame is in, and then call the peer silent.
	make_file f 256K 25
	serve_chunked -c 256K f -- --no-announce
	start_faultproxy "$SERVER_ADDR" --rate 40000
	local t0 ms
	t0=$(now_ns)
	run --separate-stderr timeout 60 p2p-fetch -T 3 -p "$PROXY_ADDR" -o out "$(ref_id f)" </dev/null
	ms=$(ms_since "$t0")
	((status == 0)) || fail "exit $status after $ms ms while bytes kept arriving: $stderr"
	cmp f out
}

@test "every peer silent after some bytes: exit 1 within -T 3 + 5 s, the partial file kept and resumable" {
	make_file f 4M 17
	local id proxies=()
	id=$(ref_id f)
	serve_file f
	local direct=$SERVER_ADDR
	start_faultproxy "$direct" --silent-after 300000
	proxies+=("$PROXY_ADDR")
	local err1=$PROXY_ERR
	serve_file f
	start_faultproxy "$SERVER_ADDR" --silent-after 300000
	proxies+=("$PROXY_ADDR")
	local t0
	t0=$(now_ns)
	run -1 --separate-stderr timeout 30 p2p-fetch --stats -T 3 -p "${proxies[0]}" -p "${proxies[1]}" -o out "$id" </dev/null
	local ms
	ms=$(ms_since "$t0")
	echo "# gave up after $ms ms with -T 3" >&3
	((ms < 8000)) || fail "exit after $ms ms with -T 3"
	((ms >= 2500)) || fail "gave up after $ms ms, before the 3 s timeout"
	proxy_reported "$err1" 'connection 1: silent after 300000 bytes down'
	proxy_reported "$PROXY_ERR" 'connection 1: silent after 300000 bytes down'
	assert_stderr --partial '(partial file kept)'
	assert_file_not_exists out
	assert_file_exists out.part
	local good
	good=$(chunks_ok_count out.part f 65536)
	((good > 0 && good < 64)) || fail "$good good chunks in out.part"
	# a later run from an honest peer keeps them and fetches only the rest
	run -0 --separate-stderr timeout 60 p2p-fetch --stats -p "$direct" -o out "$id" </dev/null
	cmp f out
	assert_equal "$(stats_field "$stderr" chunks_resumed)" "$good"
	assert_equal "$(stats_field "$stderr" chunks_fetched)" $((64 - good))
}

@test "the only peer silent in the handshake: exit 1 within -T 3 + 5 s, no file" {
	make_file f 1M 18
	serve_file f
	start_faultproxy "$SERVER_ADDR" --silent-after 10
	local t0 ms
	t0=$(now_ns)
	run -1 --separate-stderr timeout 30 p2p-fetch -T 3 -p "$PROXY_ADDR" -o out "$(ref_id f)" </dev/null
	ms=$(ms_since "$t0")
	((ms < 8000)) || fail "exit after $ms ms with -T 3"
	proxy_reported "$PROXY_ERR" 'connection 1: silent after 10 bytes down'
	[[ -n $stderr ]] || fail "no message"
	assert_file_not_exists out
	assert_file_not_exists out.part
}

@test "the only peer reset in the handshake on every connection: exit 1 within -T 3 + 5 s, no file" {
	make_file f 1M 19
	serve_file f
	start_faultproxy "$SERVER_ADDR" --reset-after 10
	local t0 ms
	t0=$(now_ns)
	run -1 --separate-stderr timeout 30 p2p-fetch -T 3 -p "$PROXY_ADDR" -o out "$(ref_id f)" </dev/null
	ms=$(ms_since "$t0")
	((ms < 8000)) || fail "exit after $ms ms with -T 3"
	proxy_reported "$PROXY_ERR" 'connection 1: reset after 10 bytes down'
	assert_stderr --partial "$PROXY_ADDR"
	assert_file_not_exists out
	assert_file_not_exists out.part
}

@test "a delayed path both ways (--delay 50) completes correctly" {
	make_file f 2M 20
	serve_file f
	start_faultproxy "$SERVER_ADDR" --direction both --delay 50
	run -0 --separate-stderr timeout 60 p2p-fetch -p "$PROXY_ADDR" -o out "$(ref_id f)" </dev/null
	cmp f out
}
