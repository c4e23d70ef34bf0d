#!/usr/bin/env bats
# Hole punching through a relay (PROTOCOL.md section 13, "Hole punching"): two sites behind
# routers that drop what comes in unasked, a relay in wan between them (bats/relaybed.bash). A
# fetch of a node named through the relay punches first: behind port-keeping routers it is
# direct ("punched"), and the relay carries none of its bytes; behind symmetric ones
# (tests/relay.bats's first test) it falls back to the relay's circuit. Old relays and old nodes
# still give a relayed fetch; a hostile relay cannot aim a node's SYNs where it likes.

bats_require_minimum_version 1.5.0

load ../bats/common
load ../bats/netns
load ../bats/relaybed

setup_file() {
	export RELAY_PREFIX=p2pp-$$
}

teardown_file() {
	netns_remove_prefix "$RELAY_PREFIX"
}

setup() {
	common_setup
	RELAY_NETNS=()
	mkdir share
	make_file share/file.bin 400K 17
	ID=$(p2p-chunk --id share/file.bin)
}

teardown() {
	if ((${#RELAY_NETNS[@]})); then
		netns_remove "${RELAY_NETNS[@]}"
	else
		common_teardown
	fi
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

# fake_relay PORT [TELLS...]: a hostile relay on 127.0.0.1:PORT. It registers the first node
# that comes (checking nothing), prints the caps of its proof, then pushes on its control
# connection one PUNCH_TELL for each HOST:PORT given, at once, and prints "ready PORT" for each
# PUNCH_READY that comes back on a connection of its own, for 4 s.
fake_relay() {
	python3 - "$@" <<'PY' &
import os, select, socket, struct, sys, time
port, tells = int(sys.argv[1]), sys.argv[2:]
lis = socket.socket()
lis.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
lis.bind(("127.0.0.1", port))
lis.listen(64)
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
ctl, _ = lis.accept()
ctl.settimeout(20)
recv_frame(ctl)
ctl.sendall(frame(b"\x93\x16\x01\xc4\x20" + b"\xaa" * 32))
proof = recv_frame(ctl)
print("proof of %d elements, caps %s" % (proof[0] & 0x0f,
      proof[-2:].hex() if proof[0] == 0x95 else "none"), flush=True)
ctl.sendall(frame(b"\x92\x16\x02"))
for i, t in enumerate(tells):
    host, p = t.rsplit(":", 1)
    ip = socket.inet_aton(host)
    ctl.sendall(frame(b"\x95\x1a\x00\xc4\x10" + bytes([i]) * 16 + b"\xc4\x04" + ip +
                      b"\xcd" + struct.pack(">H", int(p))))
end = time.time() + 4
lis.settimeout(0.2)
while time.time() < end:
    try:
        s, _ = lis.accept()
    except socket.timeout:
        continue
    s.settimeout(5)
    try:
        body = recv_frame(s)
    except (EOFError, OSError):
        continue
    # [26, 1, token, port]: the port is the last element (a fixint or uint16).
    p = body[-1] if body[-3] != 0xcd else struct.unpack(">H", body[-2:])[0]
    print("ready", p, flush=True)
    s.close()
print("done", flush=True)
ctl.close()
PY
	EXTRA_PIDS+=("$!")
}

@test "punch: two nodes behind port-keeping NATs: the relay in wan coordinates a punch, the fetch is direct (punched), and no byte goes through the relay" {
	relaybed_setup keep
	start_server --cmd ip netns exec "$RB-wan" env -u MINI_P2P_DISCOVERY_ADDR \
		MINI_P2P_RELAY_DUMP="$BATS_TEST_TMPDIR/relayed.bytes" \
		p2p-serve -p 0 --bind 5.5.5.2 --no-announce -v --relay --relay-port 7100 --stats
	local relay_err=$SERVER_ERR relay_pid=$SERVER_PID
	wait_for grep -q 'relaying on port 7100' "$relay_err"
	start_server --cmd ip netns exec "$RB-b" env -u MINI_P2P_DISCOVERY_ADDR \
		p2p-serve -p 7000 --bind 0.0.0.0 --no-announce -v --via-relay 5.5.5.2:7100 \
		-d "$BATS_TEST_TMPDIR/share"
	local target target_err=$SERVER_ERR
	target=$(server_identity)
	wait_for grep -q 'relay 5.5.5.2:7100: reachable through it' "$SERVER_ERR"
	# Straight at site b's router: nothing forwards its port 7000 to the node.
	run in_site a timeout 10 p2p-fetch -T 3 -p "$target@6.6.6.1:7000" -o direct.bin "$ID"
	assert_failure
	run --separate-stderr in_site a timeout 30 p2p-fetch --stats -v -p "$target@relay:5.5.5.2:7100" \
		-o got.bin "$ID"
	assert_success
	cmp share/file.bin got.bin
	assert_equal "$(stats_field "$stderr" paths)" "5.5.5.2:7100/punched"
	# The relay told each side where it saw the other: both routers' addresses.
	grep -q 'relay: punch 5.5.5.1 to 6.6.6.1' "$relay_err"
	grep -q 'punched to 5.5.5.1:' "$target_err"
	stop_server "$relay_pid"
	# No circuit, and not one byte of the file through the relay.
	grep -q 'relayed: 0 circuits, 0 refused, 0 bytes, 1 punches' "$relay_err"
	[[ ! -s relayed.bytes ]]
}

@test "punch: a hostile relay cannot aim a node's punches anywhere: no loopback, no low port, one at once to an address, 4 at once, 8 each 10 s" {
	ip route replace 192.0.2.0/24 dev lo 2>/dev/null ||
		skip "needs a route of its own (network namespace as root)"
	local port tells=() i
	port=$(unused_port)
	for i in $(seq 1 20); do tells+=("192.0.2.$i:4$(printf %04d "$i")"); done
	fake_relay "$port" 127.0.0.1:40000 192.0.2.200:80 192.0.2.1:50000 "${tells[@]}" >fake.out
	wait_for grep -q listening fake.out
	start_server --cmd p2p-serve -p 0 --bind 127.0.0.1 --no-announce -v \
		--via-relay "127.0.0.1:$port" -d "$BATS_TEST_TMPDIR/share"
	wait_for grep -q done fake.out
	# The node says it punches (caps bit 8, 256) in its proof.
	grep -q 'proof of 5 elements, caps 0100' fake.out
	# 23 asked; 8 answered (the rate), the rest dropped unanswered.
	run grep -c '^ready' fake.out
	assert_output 8
	# Of those: loopback and a low port declined (port 0), a second to 192.0.2.1 declined, a
	# punch to each of four addresses (their SYNs go nowhere here), and the next declined:
	# four at once, at most.
	run grep -c '^ready 0$' fake.out
	assert_output 4
	run grep -c '^ready [1-9]' fake.out
	assert_output 4
	grep -q 'punch to 192.0.2.1:40001 declined: one already under way' "$SERVER_ERR"
	grep -q 'punch to 127.0.0.1:40000 declined: a loopback' "$SERVER_ERR"
	grep -q 'punch to 192.0.2.200:80 declined: a port below 1024' "$SERVER_ERR"
	grep -q 'declined: too many at once' "$SERVER_ERR"
	grep -q 'punch: over the rate, ignored' "$SERVER_ERR"
	# The node still serves: its own port answers.
	run timeout 10 p2p-fetch -p "$SERVER_ADDR" -o ok.bin "$ID"
	assert_success
}

@test "punch: an old relay (no RELAY_PUNCH) refuses the punch as malformed, and the fetch takes its circuit" {
	relaybed_setup keep
	start_server --cmd ip netns exec "$RB-wan" env -u MINI_P2P_DISCOVERY_ADDR \
		MINI_P2P_RELAY_BEFORE_PUNCH=1 \
		p2p-serve -p 0 --bind 5.5.5.2 --no-announce -v --relay --relay-port 7100 --stats
	local relay_err=$SERVER_ERR relay_pid=$SERVER_PID
	wait_for grep -q 'relaying on port 7100' "$relay_err"
	start_server --cmd ip netns exec "$RB-b" env -u MINI_P2P_DISCOVERY_ADDR \
		p2p-serve -p 7000 --bind 0.0.0.0 --no-announce -v --via-relay 5.5.5.2:7100 \
		-d "$BATS_TEST_TMPDIR/share"
	local target
	target=$(server_identity)
	wait_for grep -q 'relay 5.5.5.2:7100: reachable through it' "$SERVER_ERR"
	run --separate-stderr in_site a timeout 30 p2p-fetch --stats -p "$target@relay:5.5.5.2:7100" \
		-o got.bin "$ID"
	assert_success
	cmp share/file.bin got.bin
	assert_equal "$(stats_field "$stderr" paths)" "5.5.5.2:7100/relayed"
	grep -q 'relay: refused 5.5.5.1: malformed' "$relay_err"
	stop_server "$relay_pid"
	grep -q 'relayed: 1 circuits, 0 refused, [0-9]* bytes, 0 punches' "$relay_err"
}

@test "punch: a node that does not punch (a proof without caps) is never told of one: the fetcher gets NO_PUNCH" {
	python3 -c 'import cryptography' 2>/dev/null || skip "needs python3 cryptography (Ed25519)"
	start_relay
	run --separate-stderr timeout 60 python3 - "$RELAY_PORT" <<'PY'
import hashlib, socket, struct, sys
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
port = int(sys.argv[1])
def conn():
    return socket.create_connection(("127.0.0.1", port), timeout=20)
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
k = Ed25519PrivateKey.generate()
pub = k.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
ident = hashlib.sha256(bytes.fromhex("302a300506032b6570032100") + pub).digest()
ctl = conn()
ctl.sendall(frame(b"\x92\x16\x01"))
nonce = recv_frame(ctl)[-32:]
# A node from before punching: four elements, no caps.
ctl.sendall(frame(b"\x94\x16\x02\xc4\x20" + pub + b"\xc4\x40" +
                  k.sign(b"mini-p2p relay register v1" + nonce)))
print("registered:", recv_frame(ctl).hex())
f = conn()
f.sendall(frame(b"\x94\x1a\x05\xc4\x20" + ident + b"\xcd\x9c\x40"))
r = recv_frame(f)
print("punch answered: type %d rid %d code %d" % (r[1], r[2], r[3]))
f = conn()
f.sendall(frame(b"\x93\x17\x01\xc4\x20" + ident))
# The first thing on the control connection is the circuit's INCOMING: no TELL came before.
print("control gets:", recv_frame(ctl)[:2].hex())
PY
	assert_success
	assert_line "registered: 921602"
	assert_line "punch answered: type 1 rid 5 code 10"
	assert_line "control gets: 9318"
}

@test "punch: a relay that takes a punch and never answers does not stall the fetch past -T" {
	local port
	port=$(unused_port)
	python3 - "$port" >silent.out <<'PY' &
import socket, sys, time
lis = socket.socket()
lis.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
lis.bind(("127.0.0.1", int(sys.argv[1])))
lis.listen(16)
print("listening", flush=True)
held = []
end = time.time() + 60
lis.settimeout(1)
while time.time() < end:
    try:
        held.append(lis.accept()[0])
        print("held", len(held), flush=True)
    except socket.timeout:
        pass
PY
	EXTRA_PIDS+=("$!")
	wait_for grep -q listening silent.out
	local other=1111111111111111111111111111111111111111111111111111111111111111
	run timeout 40 p2p-fetch -T 5 -p "$other@relay:127.0.0.1:$port" -o x.bin "$ID"
	assert_failure
	((status != 124))
	# It asked a punch, and then a circuit: two connections held.
	grep -q 'held 2' silent.out
}
