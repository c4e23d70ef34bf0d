#!/usr/bin/env bats
# Relays (PROTOCOL.md section 13). The first test builds two home sites behind routers whose
# masquerade is fully random (a symmetric NAT: each connection out gets a port of its own, so
# the punch a fetch tries first fails), and a relay on the internet between them, in network
# namespaces (bats/relaybed.bash; tests/punch.bats has the punches that work).
# The others run on loopback in the test's own namespace (bats/netns-run). Nothing leaves.

bats_require_minimum_version 1.5.0

load ../bats/common
load ../bats/netns
load ../bats/relaybed

setup_file() {
	export RELAY_PREFIX=p2pr-$$
}

teardown_file() {
	netns_remove_prefix "$RELAY_PREFIX"
}

setup() {
	common_setup
	RELAY_NETNS=()
	mkdir share
	make_file share/file.bin 400K 17
	# Bytes no TLS record would hold by chance: the relay must never see them.
	printf 'PLAINTEXT-MARKER-%04d\n' $(seq 1 2000) >>share/file.bin
	ID=$(p2p-chunk --id share/file.bin)
}

teardown() {
	if ((${#RELAY_NETNS[@]})); then
		netns_remove "${RELAY_NETNS[@]}"
	else
		common_teardown
	fi
}

# raw_relay MODE ADDR [HEX]: a client of the relay at ADDR that sends what MODE says and then
# holds its connection (until killed, or 60 s): connect HEX (a circuit to that identity),
# accept (a token the relay never gave), garbage (an HTTP request), silent (nothing),
# prove0 (a proof with no nonce asked), incoming (a RELAY_INCOMING, the relay's own message),
# nonce2 (ASK_NONCE twice), big (a frame of the largest size, N 4096, malformed), toobig (N 4097),
# silentN (N silent connections). It prints "reply HEX" for the first bytes it gets back.
# RAW_SRC, when set, is the address it connects from.
raw_relay() {
	python3 - "$@" <<'PY' &
import socket, struct, sys, time, os
mode, addr = sys.argv[1], sys.argv[2]
host, port = addr.rsplit(":", 1)
src = os.environ.get("RAW_SRC")
s = socket.create_connection((host, int(port)), timeout=10,
                             source_address=(src, 0) if src else None)
def frame(body):
    return struct.pack(">I", len(body)) + body
if mode == "connect":
    s.sendall(frame(b"\x93\x17\x01\xc4\x20" + bytes.fromhex(sys.argv[3])))
elif mode == "accept":
    s.sendall(frame(b"\x93\x19\x01\xc4\x10" + os.urandom(16)))
elif mode == "garbage":
    s.sendall(b"GET / HTTP/1.0\r\n\r\n")
elif mode == "nonce":
    s.sendall(frame(b"\x92\x16\x01"))
elif mode == "nonce2":
    s.sendall(frame(b"\x92\x16\x01") * 2)
elif mode == "big":
    s.sendall(frame(b"\xc1" * 4096))
elif mode == "prove0":
    s.sendall(frame(b"\x94\x16\x02\xc4\x20" + bytes(32) + b"\xc4\x40" + bytes(64)))
elif mode == "incoming":
    s.sendall(frame(b"\x93\x18\x00\xc4\x10" + bytes(16)))
elif mode == "toobig":
    s.sendall(frame(b"\xc1" * 4097))
elif mode.startswith("silent") and mode != "silent":
    held = [s] + [socket.create_connection((host, int(port)), timeout=10,
                  source_address=(src, 0) if src else None)
                  for _ in range(int(mode[6:]) - 1)]
print("sent", flush=True)
s.settimeout(60)
try:
    got = s.recv(4096)
    print("reply", got.hex(), flush=True)
    while got:
        got = s.recv(4096)
except OSError:
    pass
PY
	EXTRA_PIDS+=("$!")
}

# start_relay [ARGS...]: a relay on 127.0.0.1:$RELAY_PORT (debug log in $RELAY_ERR).
start_relay() {
	RELAY_PORT=$(unused_port)
	start_server --cmd p2p-serve -p 0 --bind 127.0.0.1 --no-announce -v --relay \
		--relay-port "$RELAY_PORT" --stats "$@"
	RELAY_ERR=$SERVER_ERR
	RELAY_PID=$SERVER_PID
	wait_for grep -q "relaying on port $RELAY_PORT" "$RELAY_ERR"
}

# start_target: a node sharing share/, reached only through the relay (it listens on
# 127.0.0.2, which the fetches never name); TARGET its identity.
start_target() {
	start_server --cmd p2p-serve -p 0 --bind 127.0.0.2 --no-announce -v \
		--via-relay "127.0.0.1:$RELAY_PORT" -d "$BATS_TEST_TMPDIR/share"
	TARGET=$(server_identity)
	wait_for grep -q "relay 127.0.0.1:$RELAY_PORT: reachable through it" "$SERVER_ERR"
}

@test "relay: two nodes behind symmetric NATs: the fetch goes through the relay in wan, bytes right, path relayed, and the relay saw no plaintext" {
	relaybed_setup
	start_server --cmd ip netns exec "$RB-wan" env -u MINI_P2P_DISCOVERY_ADDR \
		MINI_P2P_RELAY_DUMP="$BATS_TEST_TMPDIR/relayed.bytes" \
		p2p-serve -p 0 --bind 5.5.5.2 --no-announce -v --relay --relay-port 7100 --stats
	local relay_err=$SERVER_ERR relay_pid=$SERVER_PID
	wait_for grep -q 'relaying on port 7100' "$relay_err"
	start_server --cmd ip netns exec "$RB-b" env -u MINI_P2P_DISCOVERY_ADDR \
		p2p-serve -p 7000 --bind 0.0.0.0 --no-announce -v --via-relay 5.5.5.2:7100 \
		-d "$BATS_TEST_TMPDIR/share"
	local target
	target=$(server_identity)
	wait_for grep -q 'relay 5.5.5.2:7100: reachable through it' "$SERVER_ERR"
	# Straight at site b's router: nothing forwards its port 7000 to the node.
	run in_site a timeout 10 p2p-fetch -T 3 -p "$target@6.6.6.1:7000" -o direct.bin "$ID"
	assert_failure
	# Through the relay.
	run --separate-stderr in_site a timeout 30 p2p-fetch --stats -p "$target@relay:5.5.5.2:7100" \
		-o got.bin "$ID"
	assert_success
	cmp share/file.bin got.bin
	assert_equal "$(stats_field "$stderr" paths)" "5.5.5.2:7100/relayed"
	# The relay saw the node's side from its router's address, not the node's.
	grep -q 'relay: circuit 5.5.5.1 to 6.6.6.1' "$relay_err"
	stop_server "$relay_pid"
	# A punch was coordinated first, and failed: the circuit came last.
	grep -q 'relayed: 1 circuits, 0 refused, [0-9]* bytes, 1 punches' "$relay_err"
	# It copied the whole file's worth, and not one byte of it in the clear.
	(($(file_size relayed.bytes) > $(file_size share/file.bin)))
	run grep -c 'PLAINTEXT-MARKER' relayed.bytes
	assert_output 0
	grep -q 'PLAINTEXT-MARKER' share/file.bin
}

@test "relay: a node the relay does not know is refused by code; a relayed peer is named by its identity" {
	start_relay
	start_target
	local other=0000000000000000000000000000000000000000000000000000000000000000
	# A node the relay does not know: refused at the relay, by its code.
	run timeout 20 p2p-fetch -T 5 -p "$other@relay:127.0.0.1:$RELAY_PORT" -o x.bin "$ID"
	assert_failure
	wait_for grep -q 'relay: refused 127.0.0.1: no such node here' "$RELAY_ERR"
	# Without TLS the relay could read and forge: refused.
	run timeout 20 p2p-fetch --no-tls -T 3 -p "$TARGET@relay:127.0.0.1:$RELAY_PORT" -o y.bin "$ID"
	assert_failure
	assert_output --partial 'through a relay only with TLS'
	# A relayed peer is always named by its identity.
	run p2p-fetch -p "relay:127.0.0.1:$RELAY_PORT" "$ID"
	assert_failure 2
	assert_output --partial 'named by its identity'
	run --separate-stderr timeout 20 p2p-fetch --stats -p "$TARGET@relay:127.0.0.1:$RELAY_PORT" \
		-o ok.bin "$ID"
	assert_success
	cmp share/file.bin ok.bin
	# The same named on standard input, as p2p-discover's lines are.
	echo "$TARGET@relay:127.0.0.1:$RELAY_PORT" >peers.txt
	run --separate-stderr timeout 20 p2p-fetch --stats -o stdin.bin "$ID" <peers.txt
	assert_success
	cmp share/file.bin stdin.bin
	assert_equal "$(stats_field "$stderr" paths)" "127.0.0.1:$RELAY_PORT/relayed"
}

@test "relay: circuits past --relay-max-circuits are refused, and served again once one ends" {
	start_relay --relay-max-circuits 1
	start_target
	raw_relay connect "127.0.0.1:$RELAY_PORT" "$TARGET" >held.out
	local holder=$!
	wait_for grep -q sent held.out
	wait_for grep -q 'relay: circuit 127.0.0.1 to 127.0.0.1' "$RELAY_ERR"
	run timeout 20 p2p-fetch -T 5 -p "$TARGET@relay:127.0.0.1:$RELAY_PORT" -o x.bin "$ID"
	assert_failure
	wait_for grep -q 'relay: refused 127.0.0.1: too many circuits' "$RELAY_ERR"
	kill "$holder"
	run --separate-stderr timeout 20 p2p-fetch --stats -p "$TARGET@relay:127.0.0.1:$RELAY_PORT" \
		-o ok.bin "$ID"
	assert_success
	cmp share/file.bin ok.bin
}

@test "relay: garbage, a forged token and a silent client do not stall a circuit" {
	start_relay
	start_target
	raw_relay garbage "127.0.0.1:$RELAY_PORT" >garbage.out
	raw_relay accept "127.0.0.1:$RELAY_PORT" >accept.out
	raw_relay silent "127.0.0.1:$RELAY_PORT" >silent.out
	wait_for grep -q sent garbage.out
	wait_for grep -q sent accept.out
	wait_for grep -q sent silent.out
	wait_for grep -q 'relay: refused 127.0.0.1: too big' "$RELAY_ERR"
	wait_for grep -q 'relay: refused 127.0.0.1: no such token' "$RELAY_ERR"
	run --separate-stderr timeout 20 p2p-fetch --stats -p "$TARGET@relay:127.0.0.1:$RELAY_PORT" \
		-o ok.bin "$ID"
	assert_success
	cmp share/file.bin ok.bin
	assert_equal "$(stats_field "$stderr" paths)" "127.0.0.1:$RELAY_PORT/relayed"
}

@test "relay: a relay says so in its HELLO (caps bit 7, its port in \"relay\"); another node does not" {
	start_relay
	local relay_addr=$SERVER_ADDR
	run --separate-stderr timeout 10 p2p-fetch -vv --list -p "$relay_addr"
	assert_success
	[[ $stderr == *"$relay_addr: relays on port $RELAY_PORT"* ]]
	start_server --cmd p2p-serve -p 0 --bind 127.0.0.1 --no-announce share/file.bin
	run --separate-stderr timeout 10 p2p-fetch -vv --list -p "$SERVER_ADDR"
	assert_success
	[[ $stderr != *"relays on port"* ]]
}

@test "relay: one address registers at most 4 nodes; the 5th is refused and tries again later" {
	start_relay
	local i
	for i in 1 2 3 4 5; do
		start_server --cmd p2p-serve -p 0 --bind 127.0.0.1 --no-announce -v \
			--identity "$BATS_TEST_TMPDIR/k$i.pem" --via-relay "127.0.0.1:$RELAY_PORT" \
			share/file.bin
		if ((i < 5)); then
			wait_for grep -q 'reachable through it' "$SERVER_ERR"
		fi
	done
	wait_for grep -q "relay 127.0.0.1:$RELAY_PORT: relay full; again in" "$SERVER_ERR"
	run grep -c 'registered' "$RELAY_ERR"
	assert_output 4
}

@test "relay: a node re-registers after its relay restarts" {
	start_relay
	local port=$RELAY_PORT
	start_target
	local target_err=$SERVER_ERR
	stop_server "$RELAY_PID"
	start_server --cmd p2p-serve -p 0 --bind 127.0.0.1 --no-announce -v --relay --relay-port "$port"
	RELAY_ERR=$SERVER_ERR
	wait_for grep -q "relay: 127.0.0.1 registered" "$RELAY_ERR"
	run timeout 20 p2p-fetch -p "$TARGET@relay:127.0.0.1:$port" -o ok.bin "$ID"
	assert_success
	cmp share/file.bin ok.bin
	grep -q 'again in' "$target_err"
}

@test "relay: a tree through the relay: its small files fetched each through the circuit, no batch dialled at the relay's port" {
	for i in 1 2 3 4 5 6; do
		head -c $((1000 * i)) share/file.bin >"share/small$i"
	done
	start_relay
	start_target
	tree=$(p2p-chunk --tree --id share)
	run --separate-stderr timeout 60 p2p-fetch -v -T 5 -p "$TARGET@relay:127.0.0.1:$RELAY_PORT" \
		-o out "$tree"
	assert_success
	for i in 1 2 3 4 5 6; do cmp "share/small$i" "out/small$i"; done
	refute_stderr --partial 'fetched in batches'
	# The relay's port reads a node's HELLO as a relay frame: "too big".
	run ! grep -q 'refused 127.0.0.1: too big' "$RELAY_ERR"
}

@test "relay: a second ASK_NONCE on a connection is refused by an ERROR and the close" {
	start_relay
	raw_relay nonce2 "127.0.0.1:$RELAY_PORT" >nonce2.out
	wait_for grep -q 'relay: refused 127.0.0.1: nonce already sent' "$RELAY_ERR"
	# The NONCE (41 bytes) and then the ERROR: nothing more is ever queued.
	wait_for grep -q '^reply 00000025' nonce2.out
}

@test "relay: a frame of the largest size (N 4096) is read whole (here: refused as malformed, ERROR BAD_REQUEST rid 0); N 4097 is too big" {
	start_relay
	raw_relay big "127.0.0.1:$RELAY_PORT" >big.out
	wait_for grep -q 'relay: refused 127.0.0.1: malformed' "$RELAY_ERR"
	# [1, 0, 2, "malformed"], the relay's last frame
	wait_for grep -qx 'reply 0000000e94010002a96d616c666f726d6564' big.out
	raw_relay toobig "127.0.0.1:$RELAY_PORT" >toobig.out
	wait_for grep -q 'relay: refused 127.0.0.1: too big' "$RELAY_ERR"
}

@test "relay: refusals carry section 13's code and rid: forged token, proof without a nonce, a client's INCOMING" {
	start_relay
	raw_relay accept "127.0.0.1:$RELAY_PORT" >accept.out
	raw_relay prove0 "127.0.0.1:$RELAY_PORT" >prove0.out
	raw_relay incoming "127.0.0.1:$RELAY_PORT" >incoming.out
	# [1, 1, 1 NOT_FOUND, "no such token"]
	wait_for grep -qx 'reply 0000001294010101ad6e6f207375636820746f6b656e' accept.out
	# [1, 2, 7 AUTH, "no proof"]
	wait_for grep -qx 'reply 0000000d94010207a86e6f2070726f6f66' prove0.out
	# [1, 0, 2 BAD_REQUEST, "not a relay request"]
	wait_for grep -qx "reply 0000001894010002b3$(printf 'not a relay request' | od -An -tx1 | tr -d ' \n')" incoming.out
}

# fake_relay MODE PORT: a hostile relay on 127.0.0.1:PORT. To a node's ASK_NONCE it answers, in
# mode longerror, an ERROR of a 4000-byte text; in mode flood, a nonce, then (whatever the
# proof) registered and 100 RELAY_INCOMINGs at once. Each other connection (a node taking a
# circuit) it holds unanswered and prints "accept".
fake_relay() {
	python3 - "$@" <<'PY' &
import os, socket, struct, sys, threading
mode, port = sys.argv[1], int(sys.argv[2])
lis = socket.socket()
lis.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
lis.bind(("127.0.0.1", port))
lis.listen(128)
print("listening", flush=True)
def frame(body):
    return struct.pack(">I", len(body)) + body
def recv_exact(s, n):
    b = b""
    while len(b) < n:
        got = s.recv(n - len(b))
        if not got:
            raise EOFError
        b += got
    return b
def recv_frame(s):
    return recv_exact(s, struct.unpack(">I", recv_exact(s, 4))[0])
held = []
def serve(s):
    try:
        first = recv_frame(s)
        if first[:2] != b"\x92\x16":
            print("accept", flush=True)
            return
        if mode == "longerror":
            text = b"TESTREFUSAL " + b"x" * 3988
            s.sendall(frame(b"\x94\x01\x01\x04\xda" + struct.pack(">H", len(text)) + text))
            return
        s.sendall(frame(b"\x93\x16\x01\xc4\x20" + os.urandom(32)))
        recv_frame(s)
        s.sendall(frame(b"\x92\x16\x02"))
        s.sendall(b"".join(frame(b"\x93\x18\x00\xc4\x10" + os.urandom(16))
                           for _ in range(100)))
        print("flooded", flush=True)
    except (OSError, EOFError):
        pass
while True:
    c, _ = lis.accept()
    held.append(c)
    threading.Thread(target=serve, args=(c,), daemon=True).start()
PY
	EXTRA_PIDS+=("$!")
}

@test "relay: a relay's ERROR of a 4000-byte text is read whole by the node (its first 63 bytes logged)" {
	local port
	port=$(unused_port)
	fake_relay longerror "$port" >fake.out
	wait_for grep -q listening fake.out
	start_server --cmd p2p-serve -p 0 --bind 127.0.0.2 --no-announce -v \
		--via-relay "127.0.0.1:$port" -d "$BATS_TEST_TMPDIR/share"
	wait_for grep -q "relay 127.0.0.1:$port: TESTREFUSAL xxxx" "$SERVER_ERR"
	run ! grep -q "frame too big" "$SERVER_ERR"
}

@test "relay: 100 RELAY_INCOMINGs at once from a hostile relay: at most 4 circuits taken at a time; direct fetches still served" {
	local port
	port=$(unused_port)
	fake_relay flood "$port" >fake.out
	wait_for grep -q listening fake.out
	start_server --cmd p2p-serve -p 0 --bind 127.0.0.2 --no-announce -v \
		--via-relay "127.0.0.1:$port" -d "$BATS_TEST_TMPDIR/share"
	wait_for grep -q flooded fake.out
	wait_for grep -q "relay 127.0.0.1:$port: circuit not taken: 4 relayed handshakes under way" "$SERVER_ERR"
	run -0 --separate-stderr timeout 30 p2p-fetch -p "127.0.0.2:$SERVER_PORT" -o out "$ID" </dev/null
	cmp out share/file.bin
	run -0 grep -c '^accept$' fake.out
	((output <= 4))
	((output >= 1))
}

@test "relay: one host holds at most 8 connections that have not said what they are for" {
	start_relay
	raw_relay silent8 "127.0.0.1:$RELAY_PORT" >silent8.out
	wait_for grep -q sent silent8.out
	raw_relay silent "127.0.0.1:$RELAY_PORT" >silent9.out
	wait_for grep -q 'relay: refused 127.0.0.1: too many new connections' "$RELAY_ERR"
	# Another host is still served: 127.0.0.3 gets its nonce.
	RAW_SRC=127.0.0.3 raw_relay nonce "127.0.0.1:$RELAY_PORT" >other.out
	wait_for grep -q '^reply 00000025' other.out
}

@test "relay: a node re-registering from a host at its limit is refused and keeps its registration" {
	python3 -c 'import cryptography' 2>/dev/null || skip "needs python3 cryptography (Ed25519)"
	start_relay
	run --separate-stderr timeout 60 python3 - "$RELAY_PORT" <<'PY'
import hashlib, socket, struct, sys
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
port = int(sys.argv[1])
def conn(src):
    return socket.create_connection(("127.0.0.1", port), timeout=20, source_address=(src, 0))
def frame(body):
    return struct.pack(">I", len(body)) + body
def recv_exact(s, n):
    b = b""
    while len(b) < n:
        got = s.recv(n - len(b))
        if not got:
            raise EOFError
        b += got
    return b
def recv_frame(s):
    return recv_exact(s, struct.unpack(">I", recv_exact(s, 4))[0])
def register(src, key):
    pub = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    s = conn(src)
    s.sendall(frame(b"\x92\x16\x01"))
    nonce = recv_frame(s)[-32:]
    sig = key.sign(b"mini-p2p relay register v1" + nonce)
    s.sendall(frame(b"\x94\x16\x02\xc4\x20" + pub + b"\xc4\x40" + sig))
    r = recv_frame(s)
    return s, "registered" if r[:2] == b"\x92\x16" else "refused %d" % r[1]
k = Ed25519PrivateKey.generate()
pub = k.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
ident = hashlib.sha256(bytes.fromhex("302a300506032b6570032100") + pub).digest()
ctl, what = register("127.0.0.3", k)
print("K from 127.0.0.3:", what)
held = []
for i in range(4):
    s, what = register("127.0.0.1", Ed25519PrivateKey.generate())
    held.append(s)
    print("other from 127.0.0.1:", what)
s, what = register("127.0.0.1", k)
print("K from 127.0.0.1:", what)
f = conn("127.0.0.4")
f.sendall(frame(b"\x93\x17\x01\xc4\x20" + ident))
print("K's control connection gets:", recv_frame(ctl)[:2].hex())
PY
	assert_success
	assert_line "K from 127.0.0.3: registered"
	assert_line "K from 127.0.0.1: refused 1"
	assert_line "K's control connection gets: 9318"
}
