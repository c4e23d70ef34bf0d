#!/usr/bin/env bats
# The protocol grows without breaking (docs/PROTOCOL.md, "Extending the protocol").
#
# Forward compatibility: a peer from the future (tests/peers/p2p-badpeer.c) pushes messages of
# types this node does not know, answers with error codes it does not know, says BUSY, or
# states a maxreq; p2p-fetch keeps it, finishes with the right file and logs nothing above
# info. A client that pushes such messages to p2p-serve is answered as before and kept.
#
# Interop: the reference (bats/p2p_ref.py) stays a node of version 1 as it was before the
# HELLO's options: it sends a HELLO of five elements and knows no option. It serves p2p-fetch,
# fetches from p2p-serve, and reads their HELLO of eight elements.

bats_require_minimum_version 1.5.0

load ../bats/common

setup() {
	common_setup
	# 1 MiB in 16 KiB chunks: 64 of them, so that a fetch has many requests out at once.
	make_file f 1M 17
	p2p-chunk -c 16K f >m
	ID=$(ref_id f)
	NCHUNKS=64
}

# _nothing_logged TOOL TEXT: no line of TEXT (a tool's stderr at its default level) but the
# stats line and, in plaintext, the warning that TLS is off: nothing was a warning or an error.
_nothing_logged() {
	local tool=$1 line
	while IFS= read -r line; do
		[[ -z $line ]] && continue
		[[ $line == "$tool: stats "* ]] && continue
		[[ $line == "$tool: TLS is off:"* ]] && continue
		[[ $line =~ ^$tool:\ [0-9T:.-]+Z\ (info|debug): ]] && continue
		fail "logged above info: '$line'"
	done <<<"$2"
}

# _fetch_from_badpeer MODE: p2p-fetch from p2p-badpeer in MODE alone (plaintext: the peer writes
# exact bytes): the file right, the peer never dropped, nothing logged above info.
_fetch_from_badpeer() {
	export MINI_P2P_NO_TLS=1
	start_badpeer "$1" m f
	run --separate-stderr to_file out timeout 60 p2p-fetch --stats -T 10 -p "$BADPEER_ADDR" "$ID" </dev/null
	echo "$stderr" >&2
	assert_equal "$status" 0
	cmp f out
	assert_equal "$(stats_field "$stderr" peers_dropped)" 0
	assert_equal "$(stats_field "$stderr" from)" "$BADPEER_ADDR/$NCHUNKS"
	assert_equal "$(stats_field "$stderr" connects)" 1
	_nothing_logged p2p-fetch "$stderr"
	# its report is written as the connection ends
	stop_server "$BADPEER_PID"
	cat "$BADPEER_ERR" >&2
}

# ---- forward compatibility: p2p-fetch ----

@test "fetch: a peer pushing messages of types 42, 99, 48 and 200 between its answers is kept; the file is right" {
	_fetch_from_badpeer push-unknown
	grep -q 'misbehaved: push-unknown:' "$BADPEER_ERR"
}

@test "fetch: an unknown error code (77) to a GET_CHUNK: the chunk is asked again, the peer kept" {
	_fetch_from_badpeer error-code
	grep -q 'error code 77 to GET_CHUNK' "$BADPEER_ERR"
	# the refused chunk was asked again: one GET_CHUNK more than there are chunks
	grep -q ": 0 GET_MANIFEST, $((NCHUNKS + 1)) GET_CHUNK asked, 1 refused" "$BADPEER_ERR"
}

@test "fetch: BUSY to GET_MANIFEST and to three GET_CHUNKs: asked again after a pause, the peer kept" {
	_fetch_from_badpeer busy
	grep -q 'BUSY to GET_MANIFEST' "$BADPEER_ERR"
	grep -q ": 2 GET_MANIFEST, $((NCHUNKS + 3)) GET_CHUNK asked, 4 refused" "$BADPEER_ERR"
}

@test "fetch: a peer's maxreq (2): never more requests out to it than that" {
	_fetch_from_badpeer maxreq
	grep -q 'maxreq: at most [12] requests outstanding (maxreq 2)' "$BADPEER_ERR" ||
		fail "more requests out than the peer's maxreq"
}

# ---- forward compatibility: p2p-serve ----

@test "serve: a client pushing messages of unknown types and a HAVE between its requests: answered in order, nothing else, kept" {
	export MINI_P2P_NO_TLS=1
	start_server --stdin m --no-announce
	wait_listed "$SERVER_ADDR" "$ID"
	run -0 --separate-stderr timeout 60 "$P2P_BADPEER" attack push-unknown "$SERVER_ADDR" "$ID"
	echo "$stderr" >&2
	assert_stderr_line --partial "attack push-unknown: 10 pushes among 3 requests: 3 answered in order, 0 other messages; connection kept"
	# and it serves on
	run -0 --separate-stderr to_file out timeout 60 p2p-fetch -T 10 -p "$SERVER_ADDR" "$ID" </dev/null
	cmp f out
	_nothing_logged p2p-serve "$(cat "$SERVER_ERR")"
}

# ---- interop with a node of version 1 from before the options (bats/p2p_ref.py, TLS) ----

@test "interop: p2p_ref serving (a HELLO of five elements), p2p-fetch fetches; nothing logged" {
	start_fake_peer m honest
	run --separate-stderr to_file out timeout 60 p2p-fetch --stats -T 10 -p "$SERVER_ADDR" "$ID" </dev/null
	echo "$stderr" >&2
	assert_equal "$status" 0
	cmp f out
	assert_equal "$(stats_field "$stderr" from)" "$SERVER_ADDR/$NCHUNKS"
	assert_equal "$(stats_field "$stderr" peers_dropped)" 0
	_nothing_logged p2p-fetch "$stderr"
}

@test "interop: p2p_ref serving, p2p-fetch -o (a node: caps, addrs and seen in its HELLO) fetches; nothing logged" {
	start_fake_peer m honest
	run --separate-stderr timeout 60 p2p-fetch --stats -T 10 -p "$SERVER_ADDR" -o out "$ID" </dev/null
	echo "$stderr" >&2
	assert_equal "$status" 0
	cmp f out
	_nothing_logged p2p-fetch "$stderr"
}

@test "interop: p2p-serve serving, p2p_ref fetches chunks (load) and swarms (INTERESTED, CANCEL); nothing logged" {
	start_server --stdin m --no-announce
	wait_listed "$SERVER_ADDR" "$ID"
	run -0 --separate-stderr timeout 60 python3 "$P2P_REF" load "$SERVER_ADDR" m 4 16
	assert_output "served 4"
	run -0 --separate-stderr timeout 60 python3 "$P2P_REF" swarm "$SERVER_ADDR" "$ID"
	assert_line "map 16384 $NCHUNKS/$NCHUNKS"
	assert_line "answers $NCHUNKS CHUNK, 0 CANCELLED"
	_nothing_logged p2p-serve "$(cat "$SERVER_ERR")"
}

@test "interop: p2p_ref reads our HELLO of eight elements (nil, then the options) and its own of five is taken" {
	start_server --stdin m --no-announce
	wait_listed "$SERVER_ADDR" "$ID"
	run -0 --separate-stderr timeout 30 python3 "$P2P_REF" hello "$SERVER_ADDR"
	echo "$output" >&2
	python3 - "$output" "$SERVER_PORT" <<'PY'
import json, sys
h, port = json.loads(sys.argv[1]), int(sys.argv[2])
assert len(h) == 8, "HELLO of %d elements" % len(h)
assert h[0] == 0 and h[1] == 1, h[:2]
assert h[2] & 1, "caps without swarm: %r" % h[2]
assert h[4] == port and h[5] == 1, h[4:6]
assert h[6] is None, "auth %r" % h[6]
o = h[7]
# A node that may ask here (duplex, caps bit 1) takes answers of any size.
assert o["vmin"] == 1 and o["maxreq"] == 64 and o["maxframe"] == (16777216 if h[2] & 2 else 16384), o
host, seen_port = o["seen"]
assert host == "127.0.0.1" and 0 < seen_port < 65536 and seen_port != port, o["seen"]
assert ["127.0.0.1", port] in o["addrs"] and len(o["addrs"]) <= 8, o["addrs"]
PY
	# a LIST answered after p2p_ref's own five-element HELLO: the server took it
	run -0 --separate-stderr timeout 30 python3 "$P2P_REF" list "$SERVER_ADDR"
	assert_output --partial "$ID"
	_nothing_logged p2p-serve "$(cat "$SERVER_ERR")"
}

@test "interop: a node of six elements (p2p-badpeer honest, no options) is fetched from as before" {
	_fetch_from_badpeer honest
}
