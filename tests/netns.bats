#!/usr/bin/env bats
# Discovery across a real (virtual) LAN: three network namespaces, each with one veth joined
# to a bridge in a fourth, addresses 10.77.X.1..3/24 that exist only inside them, added
# without "brd" as many scripts and containers do (the broadcast address is then unset, and
# discovery computes it). Servers in two of them use the default discovery (the broadcast
# address of their veth, port 9999: the namespaces are private, so nothing else is there);
# the third discovers and fetches.
# The hosts are bats/netns.bash's.

bats_require_minimum_version 1.5.0

load ../bats/common
load ../bats/netns

setup_file() {
	netns_setup_file
}

teardown_file() {
	netns_teardown_file
}

setup() {
	common_setup
	netns_setup
	mkdir share-a share-b
	make_file share-a/only-a.bin 2M 1
	make_file share-b/only-b.bin 3M 2
	make_file both.bin 1M 3
	cp both.bin share-a/
	cp both.bin share-b/
	ID_A=$(p2p-chunk --id share-a/only-a.bin)
	ID_B=$(p2p-chunk --id share-b/only-b.bin)
	ID_BOTH=$(p2p-chunk --id both.bin)
}

teardown() {
	netns_teardown
}

# serve_in NODE [P2P-SERVE ARGS...]: a server in NODE on every address (0.0.0.0), default
# discovery. Sets what start_server sets, SERVER_ADDR being NODE's 10.77 address.
serve_in() {
	local node=$1
	shift
	start_server --cmd ip netns exec "$NS-$node" env -u MINI_P2P_DISCOVERY_ADDR \
		p2p-serve -p 0 -n "node-$node" "$@"
	case $node in
	a) SERVER_ADDR=$NET.1:$SERVER_PORT ;;
	b) SERVER_ADDR=$NET.2:$SERVER_PORT ;;
	c) SERVER_ADDR=$NET.3:$SERVER_PORT ;;
	esac
}

# listed_from NODE ADDR ID: NODE sees ID in ADDR's list.
listed_from() {
	in_ns "$1" timeout 10 p2p-fetch --list -p "$2" </dev/null 2>/dev/null | grep -q "^$3"$'\t'
}

# two_servers: node-a shares share-a, node-b share-b; sets A and B (their 10.77 addresses).
two_servers() {
	serve_in a -d "$BATS_TEST_TMPDIR/share-a"
	A=$SERVER_ADDR
	serve_in b -d "$BATS_TEST_TMPDIR/share-b"
	B=$SERVER_ADDR
	wait_for listed_from c "$A" "$ID_A"
	wait_for listed_from c "$B" "$ID_B"
}

@test "netns: the namespaces reach each other over the bridge, and only over it" {
	serve_in a -d "$BATS_TEST_TMPDIR/share-a"
	wait_for listed_from c "$SERVER_ADDR" "$ID_A"
	wait_for listed_from b "$SERVER_ADDR" "$ID_A"
	# the server is not on this (test's) namespace's loopback
	run -1 --separate-stderr timeout 10 p2p-fetch --list -p "127.0.0.1:$SERVER_PORT" </dev/null
}

@test "netns: p2p-discover in node c finds the servers of a and b by their 10.77 addresses" {
	two_servers
	run -0 --separate-stderr in_ns c timeout 20 p2p-discover -t 2 </dev/null
	assert_line "$A"
	assert_line "$B"
	no_duplicate_lines "$output"
	assert_equal "${#lines[@]}" 2
}

@test "netns: no brd set: the interface shows its own address as broadcast, discovery does not use it" {
	run -0 ip -n "$NS-a" -4 -o addr show dev eth0
	refute_output --partial brd
	serve_in a -d "$BATS_TEST_TMPDIR/share-a"
	wait_for listed_from b "$SERVER_ADDR" "$ID_A"
	# A query sent to the host's own address reaches one socket of those sharing the port,
	# at random: p2p-discover beside the server found it 2 runs in 5. The broadcast reaches all.
	local i
	for i in 1 2 3 4 5; do
		run -0 --separate-stderr in_ns a timeout 20 p2p-discover -t 1 </dev/null
		assert_output "$SERVER_ADDR"
	done
	run -0 --separate-stderr in_ns b timeout 20 p2p-discover -t 1 </dev/null
	assert_output "$SERVER_ADDR"
}

@test "netns: p2p-discover -l across the LAN: names and file counts" {
	two_servers
	run -0 --separate-stderr in_ns c timeout 20 p2p-discover -t 2 -l </dev/null
	# The nodes share this test's key (~/.config/p2p/identity.pem), so one identity.
	local id
	id=$(server_identity)
	assert_line "$A"$'\tnode-a\t'"$id"$'\t2\tdirect'
	assert_line "$B"$'\tnode-b\t'"$id"$'\t2\tdirect'
}

@test "netns: --hash across the LAN keeps only the node with the file" {
	two_servers
	run -0 --separate-stderr in_ns c timeout 20 p2p-discover -t 2 --hash "$ID_B" </dev/null
	assert_output "$B"
	run -0 --separate-stderr in_ns c timeout 20 p2p-discover -t 2 --hash "$ID_BOTH" </dev/null
	assert_line "$A"
	assert_line "$B"
	assert_equal "${#lines[@]}" 2
}

@test "netns: p2p-discover | p2p-fetch ID > out fetches across namespaces" {
	two_servers
	run -0 --separate-stderr in_ns c timeout 60 sh -c 'p2p-discover </dev/null | p2p-fetch "$1" >out.b' _ "$ID_B"
	cmp share-b/only-b.bin out.b
	run -0 --separate-stderr in_ns c timeout 60 sh -c 'p2p-discover </dev/null | p2p-fetch "$1" >out.a' _ "$ID_A"
	cmp share-a/only-a.bin out.a
}

@test "netns: a file both nodes have: p2p-discover --hash ID | p2p-fetch -o out ID" {
	two_servers
	run -0 --separate-stderr in_ns c timeout 60 sh -c 'p2p-discover --hash "$1" </dev/null | p2p-fetch --stats -o out.both "$1"' _ "$ID_BOTH"
	cmp both.bin out.both
	local used
	used=$(stats_field "$stderr" peers_used)
	((used >= 1))
}

@test "netns: a server started after p2p-discover is found (announce at start / re-query)" {
	in_ns c timeout 30 p2p-discover -t 15 </dev/null >late.out 2>late.err 3>&- &
	EXTRA_PIDS+=($!)
	sleep 0.5
	serve_in a -d "$BATS_TEST_TMPDIR/share-a"
	wait_for -t 5 grep -qxF "$SERVER_ADDR" late.out
}

@test "netns: --no-announce servers are not discovered, but bootstrap finds them" {
	serve_in a --no-announce -d "$BATS_TEST_TMPDIR/share-a"
	A=$SERVER_ADDR
	serve_in b --no-announce -b "$A" -d "$BATS_TEST_TMPDIR/share-b"
	B=$SERVER_ADDR
	wait_for listed_from c "$B" "$ID_B"
	run -1 --separate-stderr in_ns c timeout 20 p2p-discover -t 1 </dev/null
	assert_stderr 'p2p-discover: no peers found'
	wait_for discover_finds_in c "$A" "$B" -- -b "$B"
}

@test "netns: with MINI_P2P_DISCOVERY_ADDR=127.255.255.255 discovery stays inside the node" {
	two_servers
	run -1 --separate-stderr ip netns exec "$NS-c" env MINI_P2P_DISCOVERY_ADDR=127.255.255.255 \
		timeout 20 p2p-discover -t 1 </dev/null
	assert_output ''
	assert_stderr 'p2p-discover: no peers found'
}

# discover_finds_in NODE ADDR... -- P2P-DISCOVER ARGS...: as discover_finds, run in NODE.
discover_finds_in() {
	local node=$1 want=() a out
	shift
	while (($#)) && [[ $1 != -- ]]; do
		want+=("$1")
		shift
	done
	shift
	out=$(in_ns "$node" timeout 20 p2p-discover -t 1 "$@" </dev/null 2>/dev/null) || true
	for a in "${want[@]}"; do
		grep -qxF "$a" <<<"$out" || return 1
	done
}
