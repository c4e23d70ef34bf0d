#!/usr/bin/env bats
# What p2p-serve does with the datagrams that reach its discovery port: bad ones (malformed,
# truncated, oversized, wrong version or magic, queries too short to answer, spoofed announces)
# are ignored, counted and logged, a flood does not stop it serving, and an answer is never
# more than twice its query. The datagrams are built by hand in Python (the format is in
# /tmp/disco-spec.md and docs/PROTOCOL.md) and sent to 127.0.0.1 on the test's own port.

bats_require_minimum_version 1.5.0

load ../bats/common

setup() {
	common_setup
	DP=$(unused_udp_port)
}

# dgram CMD ARGS...: the datagram tool below (see its commands at the end).
dgram() {
	python3 -c "$DGRAM_PY" "$@"
}

DGRAM_PY=$(
	cat <<'PY'
import json, os, socket, struct, sys, time

# ---- msgpack, by hand: shortest forms, as the protocol's encoders write ----
def u(v):
    if v < 0x80: return bytes([v])
    if v < 0x100: return b"\xcc" + bytes([v])
    if v < 0x10000: return b"\xcd" + struct.pack(">H", v)
    if v < 0x100000000: return b"\xce" + struct.pack(">I", v)
    return b"\xcf" + struct.pack(">Q", v)

def s(x):
    b = x.encode() if isinstance(x, str) else x
    if len(b) < 32: return bytes([0xa0 | len(b)]) + b
    if len(b) < 256: return b"\xd9" + bytes([len(b)]) + b
    return b"\xda" + struct.pack(">H", len(b)) + b

def bn(b):
    if len(b) < 256: return b"\xc4" + bytes([len(b)]) + b
    return b"\xc5" + struct.pack(">H", len(b)) + b

def arr(items):
    assert len(items) < 16
    return bytes([0x90 | len(items)]) + b"".join(items)

NIL = b"\xc0"

def query(nonce=1, want=None, size=64, magic="mp2p", version=1, typ=0, nonce_enc=None):
    """A QUERY padded to exactly size bytes (as small as it gets when size is smaller)."""
    head = [s(magic), u(version), u(typ), nonce_enc if nonce_enc is not None else u(nonce),
            NIL if want is None else bn(want)]
    for pad in range(max(0, size - 64), size + 1):
        d = arr(head + [bn(bytes(pad))])
        if len(d) >= size:
            return d
    return d

def announce(port, name="spoof", nfiles=1, nonce=0, magic="mp2p", version=1):
    return arr([s(magic), u(version), u(1), u(nonce), u(port), s(name), u(nfiles)])

# ---- and a small decoder for the answers ----
def decode(b, i=0):
    t = b[i]
    if t <= 0x7f: return t, i + 1
    if 0x90 <= t <= 0x9f:
        out, i = [], i + 1
        for _ in range(t & 0x0f):
            v, i = decode(b, i)
            out.append(v)
        return out, i
    if 0xa0 <= t <= 0xbf:
        n = t & 0x1f
        return b[i + 1:i + 1 + n].decode(), i + 1 + n
    if t == 0xd9:
        n = b[i + 1]
        return b[i + 2:i + 2 + n].decode(), i + 2 + n
    if t == 0xc4:
        n = b[i + 1]
        return bytes(b[i + 2:i + 2 + n]), i + 2 + n
    if t == 0xc0: return None, i + 1
    sizes = {0xcc: 1, 0xcd: 2, 0xce: 4, 0xcf: 8}
    if t in sizes:
        n = sizes[t]
        return int.from_bytes(b[i + 1:i + 1 + n], "big"), i + 1 + n
    raise ValueError("unexpected msgpack byte 0x%02x" % t)

def decode_all(b):
    v, i = decode(b)
    if i != len(b):
        raise ValueError("%d trailing bytes" % (len(b) - i))
    return v

def sock():
    so = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    so.bind(("127.0.0.1", 0))
    return so

def ask(so, port, d, wait=2.0):
    """Send d, return the first answer within wait seconds, or None."""
    so.sendto(d, ("127.0.0.1", port))
    so.settimeout(wait)
    try:
        return so.recvfrom(4096)[0]
    except socket.timeout:
        return None

WANT = bytes(range(32))
BAD = [
    ("empty", b""),
    ("garbage", b"\xff" * 64),
    ("a map, not an array", b"\x82" + s("magic") + s("mp2p") + s("pad") + bn(bytes(40))),
    ("truncated query", query()[:30]),
    ("truncated announce", announce(8080)[:9]),
    ("oversized query, 600 bytes", query(size=600)),
    ("oversized query, 513 bytes", query(size=513)),
    ("version 2", query(version=2)),
    ("version 0", query(version=0)),
    ("magic mp2q", query(magic="mp2q")),
    ("magic MP2P", query(magic="MP2P")),
    ("unknown type 7", query(typ=7)),
    ("nonce is a str", query(nonce_enc=s("1234"))),
    ("nonce above uint32", query(nonce_enc=u(1 << 40))),
    ("want of 31 bytes", query(want=bytes(31), size=80)),
    ("too few elements", arr([s("mp2p"), u(1), u(0)]) + bytes(0)),
    ("query of 20 bytes", query(size=20)),
    ("query of 63 bytes", query(size=63)),
    ("announce with tcp_port 0", announce(0)),
    ("announce with tcp_port 70000", announce(70000)),
    ("announce with a 60-byte name", announce(8080, name="n" * 60)),
    ("announce with a bin name", arr([s("mp2p"), u(1), u(1), u(0), u(8080), bn(b"x"), u(1)])),
    ("trailing bytes after a query", query() + b"\x00"),
]
assert len(query()) == 64 and len(query(size=600)) == 600 and len(query(size=63)) == 63
assert len(query(size=513)) == 513

cmd, port = sys.argv[1], int(sys.argv[2])

if cmd == "bad":
    # Sends every bad datagram, then a good query as a barrier: its answer means the server
    # has read all of them. Prints "SOURCE_PORT COUNT".
    so = sock()
    for name, d in BAD:
        so.sendto(d, ("127.0.0.1", port))
        time.sleep(0.002)
    a = ask(so, port, query(nonce=4242), 5.0)
    if a is None:
        sys.exit("no answer to the good query after the bad ones")
    print(so.getsockname()[1], len(BAD))

elif cmd == "ask":
    # ask PORT [SIZE [WANT_HEX]]: one query, print the answer as JSON with its length.
    size = int(sys.argv[3]) if len(sys.argv) > 3 else 64
    want = bytes.fromhex(sys.argv[4]) if len(sys.argv) > 4 else None
    so = sock()
    q = query(nonce=0x7eadbeef, want=want, size=size)
    a = ask(so, port, q, 2.0)
    if a is None:
        print(json.dumps(None))
        sys.exit(1)
    v = decode_all(a)
    print(json.dumps({"query_len": len(q), "len": len(a), "msg": v}, default=bytes.hex))

elif cmd == "spoof":
    # spoof PORT TCPPORT: well-formed ANNOUNCEs claiming some other node, sent to the server
    # (nonce 0 and a made-up nonce); prints how many datagrams came back within 1 s (none
    # should: announces are not answered).
    so = sock()
    tcp = int(sys.argv[3])
    so.sendto(announce(tcp, name="spoofed"), ("127.0.0.1", port))
    so.sendto(announce(tcp, name="spoofed", nonce=99), ("127.0.0.1", port))
    n, end = 0, time.time() + 1.0
    while time.time() < end:
        so.settimeout(max(0.01, end - time.time()))
        try:
            so.recvfrom(4096)
            n += 1
        except socket.timeout:
            pass
    print(n)

elif cmd == "burst":
    # burst PORT N: N good queries at once; counts the answers arriving within 1 s of the
    # first (any 1-s span meets at most two of the limiter's seconds: <= 400). Arrival is the
    # kernel's receive time (SO_TIMESTAMPNS), not when this program gets to read the answer:
    # on a busy machine sending the queries alone can take most of a second. No answer
    # within 10 s: prints 0.
    SO_TIMESTAMPNS = 35  # Linux; SCM_TIMESTAMPNS has the same value
    n = int(sys.argv[3])
    so = sock()
    so.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
    so.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    for i in range(n):
        so.sendto(query(nonce=i + 1), ("127.0.0.1", port))
    arrived = []
    end = time.time() + 10.0
    while True:
        # until the span is surely over, then whatever is already queued
        left = end - time.time()
        so.settimeout(left if left > 0 else 0.0)
        try:
            _, anc, _, _ = so.recvmsg(4096, socket.CMSG_SPACE(16))
        except (socket.timeout, BlockingIOError):
            break
        for level, kind, data in anc:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                sec, nsec = struct.unpack("qq", data[:16])
                arrived.append(sec + nsec / 1e9)
        if len(arrived) == 1:
            end = arrived[0] + 1.5
    print(sum(1 for t in arrived if t < arrived[0] + 1.0) if arrived else 0)

elif cmd == "flood":
    # flood PORT N SECONDS: N datagrams (good queries and every bad kind, in turn) as fast as
    # Python sends them, for SECONDS at most. Prints how many were sent.
    n, limit = int(sys.argv[3]), float(sys.argv[4])
    so = sock()
    kinds = [query(nonce=7)] + [d for _, d in BAD]
    end, sent = time.time() + limit, 0
    while sent < n and time.time() < end:
        try:
            so.sendto(kinds[sent % len(kinds)], ("127.0.0.1", port))
        except OSError:
            pass
        sent += 1
    print(sent)

elif cmd == "listen":
    # listen PORT SECONDS: share the discovery port (as p2p-discover does) and print every
    # datagram received as JSON, with the time it was read ("t"); "ready" first, once bound.
    so = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    so.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    so.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    so.bind(("0.0.0.0", port))
    print("ready", flush=True)
    end = time.time() + float(sys.argv[3])
    while time.time() < end:
        so.settimeout(max(0.01, end - time.time()))
        try:
            d, src = so.recvfrom(4096)
        except socket.timeout:
            continue
        try:
            v = decode_all(d)
        except Exception as e:
            v = "undecodable: %s" % e
        print(json.dumps({"len": len(d), "src": src[0], "msg": v, "t": time.time()}, default=bytes.hex),
              flush=True)

elif cmd == "bindfree":
    # bindfree PORT: the port can be bound without sharing (nobody holds it).
    so = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    so.bind(("0.0.0.0", port))
    print("free")

else:
    sys.exit("unknown command " + cmd)
PY
)

# json_get JSON EXPR: evaluate the Python expression EXPR on the decoded JSON (as j).
json_get() {
	python3 -c 'import json, sys
j = json.loads(sys.argv[1])
print(eval(sys.argv[2]))' "$1" "$2"
}

# fetch_ok ADDR ID FILE: the server still serves FILE.
fetch_ok() {
	timeout 30 p2p-fetch -p "$1" "$2" </dev/null >"$BATS_TEST_TMPDIR/fetched"
	cmp "$3" "$BATS_TEST_TMPDIR/fetched"
}

# ---- bad datagrams ----

@test "bad datagrams: the server keeps running and serving, and logs each at debug level" {
	make_file f 300000 1
	local id
	id=$(p2p-chunk --id f)
	P2P_LOG=debug serve_chunked f -- --discovery-port "$DP" -n target
	local out src count
	out=$(dgram bad "$DP")
	read -r src count <<<"$out"
	pid_alive "$SERVER_PID"
	fetch_ok "$SERVER_ADDR" "$id" f
	# one line per bad datagram, naming its sender
	local pat="^p2p-serve: [^ ]+ debug: datagram from 127\.0\.0\.1:$src: .+; ignored$"
	wait_for -t 5 eval '(($(grep -cE "$pat" "$SERVER_ERR") >= count))'
	assert_equal "$(grep -cE "$pat" "$SERVER_ERR")" "$count"
	stop_server "$SERVER_PID"
	assert_equal "$exit_status" 0
}

@test "bad datagrams: --stats at SIGTERM counts them, datagrams_bad=N" {
	make_file f 100000 2
	serve_chunked f -- --discovery-port "$DP" --stats
	local out src count
	out=$(dgram bad "$DP")
	read -r src count <<<"$out"
	((count > 0))
	pid_alive "$SERVER_PID"
	stop_server "$SERVER_PID"
	assert_equal "$exit_status" 0
	local stats
	stats=$(<"$SERVER_ERR")
	run -0 stats_field "$stats" datagrams_bad
	assert_output "$count"
}

@test "no bad datagrams: datagrams_bad=0 (its own announces, good queries are not bad)" {
	dserve_stats() { start_server --discovery-port "$DP" --discovery-interval 1 --stats "$@"; }
	dserve_stats -n good
	dgram ask "$DP" >/dev/null
	dgram ask "$DP" 512 >/dev/null
	timeout 20 p2p-discover --discovery-port "$DP" -t 2 </dev/null >/dev/null
	stop_server "$SERVER_PID"
	run -0 stats_field "$(<"$SERVER_ERR")" datagrams_bad
	assert_output 0
}

@test "bad datagrams at the default log level: not logged one by one" {
	make_file f 100000 3
	serve_chunked f -- --discovery-port "$DP"
	dgram bad "$DP" >/dev/null
	pid_alive "$SERVER_PID"
	run grep -c 'datagram from' "$SERVER_ERR"
	assert_output 0
}

@test "a spoofed ANNOUNCE sent to a server: not answered, the server keeps serving" {
	make_file f 200000 4
	local id
	id=$(p2p-chunk --id f)
	serve_chunked f -- --discovery-port "$DP" -n target
	local victim
	victim=$(unused_port)
	run -0 dgram spoof "$DP" "$victim"
	assert_output 0
	pid_alive "$SERVER_PID"
	fetch_ok "$SERVER_ADDR" "$id" f
	# and discovery still answers, with the real node only
	run -0 --separate-stderr timeout 20 p2p-discover --discovery-port "$DP" -t 1
	assert_output "127.0.0.1:$SERVER_PORT"
}

# ---- what an announcement puts in the peer table ----

# peers_of ADDR: the server's PEERS answer, one HOST:PORT a line.
peers_of() {
	timeout 20 python3 "$BATS_TEST_DIRNAME/../bats/p2p_ref.py" peers "$1" </dev/null
}

@test "an announced address is passed on in PEERS only once a handshake to it succeeded" {
	start_server --discovery-port "$DP" -n table
	local table=$SERVER_ADDR table_pid=$SERVER_PID
	# a real node there, not announcing itself
	start_server --no-announce -n real
	local real_port=$SERVER_PORT
	# something that accepts connections but never speaks the protocol
	start_server --cmd python3 -c 'import socket, sys, time
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(16)
print("127.0.0.1:%d" % s.getsockname()[1], flush=True)
time.sleep(120)'
	local silent_port=$SERVER_PORT
	dgram spoof "$DP" "$silent_port" >/dev/null
	dgram spoof "$DP" "$real_port" >/dev/null
	wait_for -t 10 eval 'peers_of "$table" | grep -qxF "127.0.0.1:$real_port"'
	run -0 --separate-stderr peers_of "$table"
	assert_line "127.0.0.1:$real_port"
	refute_line "127.0.0.1:$silent_port"
	pid_alive "$table_pid"
}

# ---- the answer to a query ----

@test "a 64-byte QUERY is answered by an ANNOUNCE of <= 128 bytes (<= 2x the query)" {
	make_file f1 1000 5
	make_file f2 2000 6
	serve_chunked f1 f2 -- --discovery-port "$DP" -n answering
	local j
	j=$(dgram ask "$DP" 64)
	assert_equal "$(json_get "$j" 'j["query_len"]')" 64
	local len
	len=$(json_get "$j" 'j["len"]')
	((len <= 128)) || fail "answer of $len bytes to a 64-byte query"
	((len <= 2 * 64)) || fail "answer of $len bytes to a 64-byte query"
	# ["mp2p", 1, 1, nonce echoed, tcp_port, name, nfiles]
	assert_equal "$(json_get "$j" 'j["msg"][:3]')" "['mp2p', 1, 1]"
	assert_equal "$(json_get "$j" 'hex(j["msg"][3])')" 0x7eadbeef
	assert_equal "$(json_get "$j" 'j["msg"][4]')" "$SERVER_PORT"
	assert_equal "$(json_get "$j" 'j["msg"][5]')" answering
	assert_equal "$(json_get "$j" 'j["msg"][6]')" 2
}

@test "a long node name: the ANNOUNCE stays <= 128 bytes, its name <= 48 bytes" {
	local name
	name=$(printf 'n%.0s' {1..60})
	start_server --discovery-port "$DP" -n "$name"
	local j len
	j=$(dgram ask "$DP" 64)
	len=$(json_get "$j" 'j["len"]')
	((len <= 128)) || fail "answer of $len bytes"
	local nlen
	nlen=$(json_get "$j" 'len(j["msg"][5].encode())')
	((nlen <= 48)) || fail "name of $nlen bytes in the ANNOUNCE"
}

@test "QUERY boundaries: 63 bytes unanswered, 64 and 512 answered, 513 unanswered" {
	start_server --discovery-port "$DP" -n sizes
	run -1 dgram ask "$DP" 63
	run -0 dgram ask "$DP" 64
	run -0 dgram ask "$DP" 200
	run -0 dgram ask "$DP" 512
	run -1 dgram ask "$DP" 513
	run -1 dgram ask "$DP" 600
	pid_alive "$SERVER_PID"
}

@test "a QUERY for a content id is answered by the server that has it" {
	make_file f 50000 7
	local id
	id=$(p2p-chunk --id f)
	serve_chunked f -- --discovery-port "$DP" -n holder
	local j
	j=$(dgram ask "$DP" 80 "$id")
	assert_equal "$(json_get "$j" 'j["msg"][4]')" "$SERVER_PORT"
	local len
	len=$(json_get "$j" 'j["len"]')
	((len <= 2 * 80))
}

@test "at most 200 answers a second: 1000 queries at once get <= 400 answers within 1 s" {
	start_server --discovery-port "$DP" -n limited
	local n
	n=$(dgram burst "$DP" 1000)
	((n >= 1)) || fail "no answer at all"
	((n <= 400)) || fail "$n answers to 1000 queries within 1 s"
	pid_alive "$SERVER_PID"
	# and a second later it answers again
	sleep 1.1
	dgram ask "$DP" >/dev/null
}

@test "--no-announce: no UDP at all (queries unanswered, the port is not even bound)" {
	start_server --discovery-port "$DP" --no-announce -n silent
	run -1 dgram ask "$DP"
	run -0 dgram bindfree "$DP"
	assert_output free
}

# Three announces, the first at start, the third within 3.5 s of the first (two intervals of
# 1 s, and slack): timed between announces, so that a slow start on a busy machine does not count.
@test "announces: at start and every --discovery-interval, nonce 0, <= 128 bytes" {
	dgram listen "$DP" 60 >heard 3>&- &
	EXTRA_PIDS+=($!)
	wait_for grep -q ready heard
	start_server --discovery-port "$DP" --discovery-interval 1 -n beacon
	local pat="\"msg\": \[\"mp2p\", 1, 1, 0, $SERVER_PORT, \"beacon\""
	wait_for -t 15 eval '(($(grep -c "$pat" heard) >= 3))' || {
		cat heard >&2
		fail "fewer than 3 unsolicited announces in 15 s at --discovery-interval 1"
	}
	python3 -c 'import json, sys
ts = []
for l in open(sys.argv[1]):
    if l.startswith("{"):
        j = json.loads(l)
        assert j["len"] <= 128, l
        if j["msg"][:6] == ["mp2p", 1, 1, 0, int(sys.argv[2]), "beacon"]:
            ts.append(j["t"])
assert ts[2] - ts[0] <= 3.5, "3 announces over %.2f s" % (ts[2] - ts[0])' heard "$SERVER_PORT"
}

# ---- a flood ----

@test "a flood of 20000 datagrams does not stop a concurrent fetch" {
	make_file f 8M 8
	local id
	id=$(p2p-chunk --id f)
	serve_chunked f -- --discovery-port "$DP" -n flooded
	dgram flood "$DP" 20000 20 >sent 3>&- &
	local flood=$!
	EXTRA_PIDS+=("$flood")
	timeout 60 p2p-fetch -p "$SERVER_ADDR" "$id" </dev/null >out
	cmp f out
	wait_exit "$flood" 30
	assert_equal "$exit_status" 0
	(($(<sent) > 0))
	pid_alive "$SERVER_PID"
	# still answering queries, still serving
	wait_for -t 5 dgram ask "$DP"
	fetch_ok "$SERVER_ADDR" "$id" f
	stop_server "$SERVER_PID"
	assert_equal "$exit_status" 0
}
