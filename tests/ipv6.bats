#!/usr/bin/env bats
# IPv6-only sites, in network namespaces: a LAN of three hosts a, b and c (veths joined to a
# bridge in $NS-br, fd00:77::1..3/64), and a router r (fd00:77::fe on the LAN, fd00:78::1 on a
# link to a host d of a second site, fd00:78::2/64) forwarding IPv6 between them. No host but
# loopback has an IPv4 address. Addresses are added "nodad" and duplicate address detection is
# off in every namespace, so that addresses (link-local ones too) are usable at once.
# Needs root and ip(8); skips otherwise. Teardown removes the namespaces whatever the test did.

bats_require_minimum_version 1.5.0

load ../bats/common
load ../bats/netns

setup_file() {
	netns_setup_file
}

teardown_file() {
	netns_teardown_file
}

# ns6_add NAME: a namespace $NS-NAME, loopback up, no DAD, forwarding as asked by the caller.
ns6_add() {
	ip netns add "$NS-$1"
	NETNS+=("$NS-$1")
	ip netns exec "$NS-$1" sysctl -q -w net.ipv6.conf.default.accept_dad=0 \
		net.ipv6.conf.all.accept_dad=0
	ip -n "$NS-$1" link set lo up
}

setup() {
	common_setup
	NETNS=()
	[[ $(id -u) == 0 ]] || skip "needs root to create network namespaces"
	command -v ip >/dev/null 2>&1 || skip "needs ip(8) (iproute2)"
	NS=$NS_PREFIX-$BATS_TEST_NUMBER
	if ! ip netns add "$NS-br" 2>ns.err; then
		skip "cannot create a network namespace: $(head -n 1 ns.err)"
	fi
	NETNS+=("$NS-br")
	ip -n "$NS-br" link add br0 type bridge
	ip -n "$NS-br" link set br0 up
	local i=1 n
	ns6_add r
	ip netns exec "$NS-r" sysctl -q -w net.ipv6.conf.all.forwarding=1
	for n in a b c r; do
		[[ $n == r ]] || ns6_add "$n"
		ip link add eth0 netns "$NS-$n" type veth peer name "v$n" netns "$NS-br"
		ip -n "$NS-br" link set "v$n" master br0 up
		if [[ $n == r ]]; then
			ip -n "$NS-r" addr add fd00:77::fe/64 dev eth0 nodad
		else
			ip -n "$NS-$n" addr add "fd00:77::$i/64" dev eth0 nodad
		fi
		ip -n "$NS-$n" link set eth0 up
		[[ $n == r ]] || ip -n "$NS-$n" -6 route add default via fd00:77::fe
		i=$((i + 1))
	done
	ns6_add d
	ip link add eth0 netns "$NS-d" type veth peer name eth1 netns "$NS-r"
	ip -n "$NS-r" addr add fd00:78::1/64 dev eth1 nodad
	ip -n "$NS-d" addr add fd00:78::2/64 dev eth0 nodad
	ip -n "$NS-r" link set eth1 up
	ip -n "$NS-d" link set eth0 up
	ip -n "$NS-d" -6 route add default via fd00:78::1
	mkdir share-a share-b
	make_file share-a/only-a.bin 2M 1
	make_file share-b/only-b.bin 1M 2
	ID_A=$(p2p-chunk --id share-a/only-a.bin)
	ID_B=$(p2p-chunk --id share-b/only-b.bin)
}

teardown() {
	netns_remove "${NETNS[@]}"
	NETNS=()
}

# in6 NODE CMD...: CMD in namespace NODE with the tools' default discovery (both families).
in6() {
	local node=$1
	shift
	ip netns exec "$NS-$node" env -u MINI_P2P_DISCOVERY_ADDR -u MINI_P2P_DISCOVERY_ADDR6 "$@"
}

# serve6 NODE HOST [P2P-SERVE ARGS...]: a server in NODE listening on :: (both families), default
# discovery; SERVER_ADDR is [HOST]:PORT.
serve6() {
	local node=$1 host=$2
	shift 2
	start_server --cmd ip netns exec "$NS-$node" env -u MINI_P2P_DISCOVERY_ADDR \
		-u MINI_P2P_DISCOVERY_ADDR6 p2p-serve -p 0 --bind :: -n "node-$node" "$@"
	SERVER_ADDR="[$host]:$SERVER_PORT"
}

# listed6 NODE ADDR ID: NODE sees ID in ADDR's list.
listed6() {
	in6 "$1" timeout 10 p2p-fetch --list -p "$2" </dev/null 2>/dev/null | grep -q "^$3"$'\t'
}

@test "ipv6: the sites have no IPv4 address but loopback; a fetch across the router over IPv6" {
	run -0 ip -n "$NS-a" -4 -o addr show dev eth0
	assert_output ''
	serve6 a fd00:77::1 -d "$BATS_TEST_TMPDIR/share-a"
	wait_for listed6 d "$SERVER_ADDR" "$ID_A"
	run -0 --separate-stderr in6 d timeout 30 p2p-fetch -p "$SERVER_ADDR" -o out "$ID_A" </dev/null
	cmp out share-a/only-a.bin
}

@test "ipv6: --bind fd00:77::1 (one IPv6 address) is printed in brackets and fetched from" {
	start_server --cmd ip netns exec "$NS-a" p2p-serve -p 0 --bind fd00:77::1 \
		-d "$BATS_TEST_TMPDIR/share-a"
	assert_equal "$SERVER_HOST" "[fd00:77::1]"
	wait_for listed6 b "[fd00:77::1]:$SERVER_PORT" "$ID_A"
}

@test "ipv6: PEX: a node learns of a's IPv6 address from b and fetches from it in another site" {
	serve6 a fd00:77::1 -d "$BATS_TEST_TMPDIR/share-a"
	local a=$SERVER_ADDR
	serve6 b fd00:77::2 -d "$BATS_TEST_TMPDIR/share-b" -b "$a"
	local b=$SERVER_ADDR
	wait_for listed6 d "$b" "$ID_B"
	# d knows b only; b names a (heard first-hand from its HELLO) in PEERS_REPLY.
	wait_for discover_finds6 d 3 "$a" -- -b "$b" --hash "$ID_A"
	run -0 --separate-stderr in6 d timeout 30 p2p-fetch -p "$a" -o out "$ID_A" </dev/null
	cmp out share-a/only-a.bin
}

# discover_finds6 NODE SECONDS ADDR... -- ARGS...: discover_finds, in NODE.
discover_finds6() {
	local node=$1 t=$2 want=() a
	shift 2
	while (($#)) && [[ $1 != -- ]]; do
		want+=("$1")
		shift
	done
	shift
	DISCOVERED=$(in6 "$node" timeout $((t + 10)) p2p-discover -t "$t" "$@" </dev/null 2>/dev/null) || true
	for a in "${want[@]}"; do
		grep -qxF "$a" <<<"$DISCOVERED" || return 1
	done
}

@test "ipv6: LAN discovery over IPv6 multicast finds a and b by their fd00:77 addresses, not d behind the router" {
	serve6 a fd00:77::1 -d "$BATS_TEST_TMPDIR/share-a"
	local a=$SERVER_ADDR
	serve6 b fd00:77::2 -d "$BATS_TEST_TMPDIR/share-b"
	local b=$SERVER_ADDR
	serve6 d fd00:78::2 -d "$BATS_TEST_TMPDIR/share-b"
	local d=$SERVER_ADDR
	wait_for listed6 c "$a" "$ID_A"
	wait_for listed6 c "$b" "$ID_B"
	wait_for listed6 c "$d" "$ID_B"
	run -0 --separate-stderr in6 c timeout 20 p2p-discover -t 2 </dev/null
	assert_line "$a"
	assert_line "$b"
	refute_line "$d"
	no_duplicate_lines "$output"
}

@test "ipv6: p2p-discover --hash ID | p2p-fetch ID > out, found and fetched over IPv6 alone" {
	serve6 a fd00:77::1 -d "$BATS_TEST_TMPDIR/share-a"
	wait_for listed6 c "$SERVER_ADDR" "$ID_A"
	in6 c timeout 30 sh -c "p2p-discover -t 2 --hash $ID_A | p2p-fetch $ID_A > out" </dev/null
	cmp out share-a/only-a.bin
}

@test "ipv6: a server started after p2p-discover is found: its announcement reaches the group" {
	in6 c timeout 30 p2p-discover -t 8 >found 2>/dev/null </dev/null &
	EXTRA_PIDS+=($!)
	sleep 1
	serve6 a fd00:77::1 -d "$BATS_TEST_TMPDIR/share-a"
	wait_for grep -qxF "$SERVER_ADDR" found
}

@test "ipv6: MINI_P2P_DISCOVERY_ADDR set and MINI_P2P_DISCOVERY_ADDR6 not: no IPv6 discovery" {
	serve6 a fd00:77::1 -d "$BATS_TEST_TMPDIR/share-a"
	local a=$SERVER_ADDR
	wait_for listed6 c "$a" "$ID_A"
	# An asker kept on its host (the README's safe run) asks nobody over IPv6...
	run --separate-stderr in6 c env MINI_P2P_DISCOVERY_ADDR=127.255.255.255 \
		timeout 20 p2p-discover -t 2 </dev/null
	refute_output --partial "$a"
	run --separate-stderr in6 c env MINI_P2P_DISCOVERY_ADDR6=off \
		timeout 20 p2p-discover -t 2 </dev/null
	refute_output --partial "$a"
	# ...and a server kept so neither announces nor answers over IPv6.
	start_server --cmd ip netns exec "$NS-b" env -u MINI_P2P_DISCOVERY_ADDR6 \
		MINI_P2P_DISCOVERY_ADDR=127.255.255.255 p2p-serve -p 0 --bind :: -n quiet -d "$BATS_TEST_TMPDIR/share-b"
	local quiet="[fd00:77::2]:$SERVER_PORT"
	wait_for listed6 c "$quiet" "$ID_B"
	run -0 --separate-stderr in6 c timeout 20 p2p-discover -t 2 </dev/null
	assert_line "$a"
	refute_line "$quiet"
}

# query6 NODE SRC: NODE sends a QUERY from SRC to fd00:77::1 port 9999; true when answered in 2 s.
query6() {
	ip netns exec "$NS-$1" python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, 255)
s.bind((sys.argv[1], 0))
s.sendto(bytes.fromhex("96a46d703270010001c0c434") + bytes(52), ("fd00:77::1", 9999))
s.settimeout(2)
try:
    s.recvfrom(600)
except socket.timeout:
    sys.exit(1)
' "$2"
}

@test "ipv6: a discovery datagram from off the link (d, behind the router) is dropped; one from the link answered" {
	serve6 a fd00:77::1 -d "$BATS_TEST_TMPDIR/share-a"
	local a=$SERVER_ADDR
	wait_for listed6 d "$a" "$ID_A"
	# A QUERY sent straight to a's address reaches its discovery port across the router: a
	# link-scoped service must not take it (nor would d take the answer).
	run --separate-stderr ip netns exec "$NS-d" env -u MINI_P2P_DISCOVERY_ADDR \
		MINI_P2P_DISCOVERY_ADDR6=fd00:77::1 timeout 20 p2p-discover -t 2 </dev/null
	refute_output --partial "$a"
	# The same from c, on a's link (its prefix), is answered.
	run -0 --separate-stderr ip netns exec "$NS-c" env -u MINI_P2P_DISCOVERY_ADDR \
		MINI_P2P_DISCOVERY_ADDR6=fd00:77::1 timeout 20 p2p-discover -t 2 </dev/null
	assert_line "$a"
	# A QUERY (PROTOCOL.md's example) from python3 with hop limit 255, 254 on arrival from d:
	# dropped; the same from c: answered.
	command -v python3 >/dev/null 2>&1 || return 0
	! query6 d fd00:78::2
	query6 c fd00:77::3
}

@test "ipv6: a server bound to 0.0.0.0 announces over IPv4 only, one bound to an IPv6 address over IPv6 only, :: over both" {
	ip -n "$NS-a" addr add 10.77.0.1/24 dev eth0
	ip -n "$NS-b" addr add 10.77.0.2/24 dev eth0
	ip -n "$NS-c" addr add 10.77.0.3/24 dev eth0
	start_server --cmd ip netns exec "$NS-a" env -u MINI_P2P_DISCOVERY_ADDR \
		-u MINI_P2P_DISCOVERY_ADDR6 p2p-serve -p 0 --bind 0.0.0.0 -d "$BATS_TEST_TMPDIR/share-a"
	local four=$SERVER_PORT
	start_server --cmd ip netns exec "$NS-b" env -u MINI_P2P_DISCOVERY_ADDR \
		-u MINI_P2P_DISCOVERY_ADDR6 p2p-serve -p 0 --bind fd00:77::2 -d "$BATS_TEST_TMPDIR/share-b"
	local six=$SERVER_PORT
	serve6 a fd00:77::1 -d "$BATS_TEST_TMPDIR/share-b"
	local both=$SERVER_PORT
	wait_for listed6 c "10.77.0.1:$four" "$ID_A"
	wait_for listed6 c "[fd00:77::2]:$six" "$ID_B"
	wait_for listed6 c "10.77.0.1:$both" "$ID_B"
	run -0 --separate-stderr in6 c timeout 20 p2p-discover -t 3 </dev/null
	assert_line "10.77.0.1:$four"
	refute_line "[fd00:77::1]:$four"
	assert_line "[fd00:77::2]:$six"
	refute_line "10.77.0.2:$six"
	assert_line "10.77.0.1:$both"
	assert_line "[fd00:77::1]:$both"
}

@test "ipv6: MINI_P2P_DISCOVERY_ADDR6 that is not an IPv6 address or off is a usage error" {
	run -2 --separate-stderr env MINI_P2P_DISCOVERY_ADDR6=10.0.0.1 p2p-discover -t 1 </dev/null
	assert_stderr --partial MINI_P2P_DISCOVERY_ADDR6
}

# dual_stack: a and c get IPv4 addresses too (10.77.0.1 and .3); a serves share-a on both
# families. Sets A_PORT and A_ID (its identity).
dual_stack() {
	ip -n "$NS-a" addr add 10.77.0.1/24 dev eth0
	ip -n "$NS-c" addr add 10.77.0.3/24 dev eth0
	serve6 a fd00:77::1 -d "$BATS_TEST_TMPDIR/share-a"
	A_PORT=$SERVER_PORT
	A_ID=$(server_identity)
	wait_for listed6 c "10.77.0.1:$A_PORT" "$ID_A"
	wait_for listed6 c "[fd00:77::1]:$A_PORT" "$ID_A"
}

@test "ipv6: happy eyeballs: a node named at IPv4 and IPv6 addresses is reached over IPv6 first, once" {
	dual_stack
	run -0 --separate-stderr in6 c env P2P_LOG=debug timeout 30 p2p-fetch -o out \
		"p2p://$ID_A@10.77.0.1:$A_PORT,[fd00:77::1]:$A_PORT#$A_ID" </dev/null
	cmp out share-a/only-a.bin
	# one peer, not one an address: the IPv6 one, named second, joined the race, and went first
	assert_stderr --partial "[fd00:77::1]:$A_PORT: another address of 10.77.0.1:$A_PORT"
	assert_stderr --partial "[fd00:77::1]:$A_PORT: connecting (1 of 2)"
	assert_stderr --partial "[fd00:77::1]:$A_PORT: connected first of 2 addresses"
	assert_stderr --partial "from [fd00:77::1]:$A_PORT"
}

@test "ipv6: happy eyeballs: its IPv4 address dead (nobody there), the IPv6 one serves" {
	dual_stack
	run -0 --separate-stderr in6 c env P2P_LOG=debug timeout 30 p2p-fetch -o out \
		"p2p://$ID_A@10.77.0.99:$A_PORT,[fd00:77::1]:$A_PORT#$A_ID" </dev/null
	cmp out share-a/only-a.bin
	assert_stderr --partial "[fd00:77::1]:$A_PORT: connected first of 2 addresses"
}

@test "ipv6: happy eyeballs: its IPv6 address dead (nobody answers neighbour discovery), falls through to IPv4" {
	dual_stack
	run -0 --separate-stderr in6 c env P2P_LOG=debug timeout 30 p2p-fetch -o out \
		"p2p://$ID_A@[fd00:77::99]:$A_PORT,10.77.0.1:$A_PORT#$A_ID" </dev/null
	cmp out share-a/only-a.bin
	assert_stderr --partial "[fd00:77::99]:$A_PORT: connecting (1 of 2)"
	assert_stderr --partial "10.77.0.1:$A_PORT: connected first of 2 addresses"
	assert_stderr --partial "from 10.77.0.1:$A_PORT"
}

@test "ipv6: the DHT across IPv6-only sites: a dhtnode bootstrap on the router, a file served in a found and fetched from d" {
	command -v dhtnode >/dev/null 2>&1 || skip "needs dhtnode (make deps)"
	[[ -e $P2P_BIN/../lib/mini-p2p/dht.so ]] || skip "no DHT module (make deps, then make)"
	ip netns exec "$NS-r" dhtnode -s -p 4222 >dhtnode.log 2>&1 &
	EXTRA_PIDS+=($!)
	local boot='[fd00:78::1]:4222'
	start_server --cmd ip netns exec "$NS-a" p2p-serve -p 0 --bind :: \
		-d "$BATS_TEST_TMPDIR/share-a" --dht --dht-bootstrap '[fd00:77::fe]:4222'
	local a="[fd00:77::1]:$SERVER_PORT"
	run --separate-stderr in6 d timeout 40 p2p-discover --dht --dht-bootstrap "$boot" \
		--hash "$ID_A" -t 15
	assert_success
	assert_output "$a"
	in6 d p2p-fetch -T 10 "$ID_A" <<<"$output" >out
	cmp out share-a/only-a.bin
}
