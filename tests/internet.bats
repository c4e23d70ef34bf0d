#!/usr/bin/env bats
# An internet in network namespaces: three sites (A, B, C), each its own subnet (10.X.1.0/24,
# 10.X.2.0/24, 10.X.3.0/24) on one veth to a router namespace R, which forwards unicast between
# them (as routers do, never broadcasts), and a bootstrap dhtnode in R at 10.X.1.1:4222, the one
# DHT node every tool is told of. Nothing here reaches past these namespaces: the tools run
# with MINI_P2P_NO_PUBLIC_DHT=1 and name that bootstrap node alone.
# Needs root, ip(8) and dhtnode; skips otherwise. Teardown kills everything still running in
# the namespaces and deletes them, whatever the test did; teardown_file deletes any of this
# file's namespaces still there.

bats_require_minimum_version 1.5.0

load ../bats/common
load ../bats/netns

setup_file() {
	export NS_PREFIX=p2pi-$$
}

teardown_file() {
	netns_remove_prefix "$NS_PREFIX"
}

setup() {
	common_setup
	NETNS=()
	[[ $(id -u) == 0 ]] || skip "needs root to create network namespaces"
	command -v ip >/dev/null 2>&1 || skip "needs ip(8) (iproute2)"
	command -v dhtnode >/dev/null 2>&1 || skip "needs dhtnode (make deps)"
	[[ -e $P2P_BIN/../lib/mini-p2p/dht.so ]] || skip "no DHT module (make deps, then make)"
	NS=$NS_PREFIX-$BATS_TEST_NUMBER
	NET=10.$((100 + BATS_TEST_NUMBER % 150))
	if ! ip netns add "$NS-r" 2>ns.err; then
		skip "cannot create a network namespace: $(head -n 1 ns.err)"
	fi
	NETNS+=("$NS-r")
	ip -n "$NS-r" link set lo up
	ip netns exec "$NS-r" sysctl -q -w net.ipv4.ip_forward=1
	local i=1 s
	for s in a b c; do
		ip netns add "$NS-$s"
		NETNS+=("$NS-$s")
		ip link add eth0 netns "$NS-$s" type veth peer name "v$s" netns "$NS-r"
		ip -n "$NS-r" addr add "$NET.$i.1/24" dev "v$s"
		ip -n "$NS-r" link set "v$s" up
		ip -n "$NS-$s" addr add "$NET.$i.2/24" dev eth0
		ip -n "$NS-$s" link set lo up
		ip -n "$NS-$s" link set eth0 up
		ip -n "$NS-$s" route add default via "$NET.$i.1"
		i=$((i + 1))
	done
	BOOT=$NET.1.1:4222
	ip netns exec "$NS-r" dhtnode -s -p 4222 >dhtnode.log 2>&1 &
	EXTRA_PIDS+=($!)
	mkdir share
	make_file share/file.bin 1M 7
	ID=$(p2p-chunk --id share/file.bin)
}

teardown() {
	netns_teardown
}

# in_site S CMD...: run CMD in site S (a, b or c) with the default discovery address (its own
# subnet's broadcast).
in_site() {
	local s=$1
	shift
	ip netns exec "$NS-$s" env -u MINI_P2P_DISCOVERY_ADDR "$@"
}

# serve_dht S [ARGS...]: a server in site S sharing share/ on the DHT. Sets SERVER_ADDR to its
# site address and IDENT to its identity.
serve_dht() {
	local s=$1
	shift
	start_server --cmd ip netns exec "$NS-$s" env -u MINI_P2P_DISCOVERY_ADDR \
		p2p-serve -p 0 -d "$BATS_TEST_TMPDIR/share" --dht --dht-bootstrap "$BOOT" "$@"
	case $s in
	a) SERVER_ADDR=$NET.1.2:$SERVER_PORT ;;
	b) SERVER_ADDR=$NET.2.2:$SERVER_PORT ;;
	c) SERVER_ADDR=$NET.3.2:$SERVER_PORT ;;
	esac
	IDENT=$(server_identity)
}

@test "internet: the router forwards between sites; LAN discovery does not cross it" {
	serve_dht a
	run in_site c timeout 10 p2p-fetch --list -p "$SERVER_ADDR" </dev/null
	assert_success
	assert_output --partial "$ID"
	run -1 --separate-stderr in_site c p2p-discover -t 2
	refute_output --partial "$SERVER_ADDR"
}

@test "internet: a file served in site A with --dht is found from site C and fetched, verified" {
	serve_dht a
	run --separate-stderr in_site c timeout 30 p2p-discover --dht --dht-bootstrap "$BOOT" \
		--hash "$ID" -t 10
	assert_success
	# Its site address, once; never its loopback one, which means nothing in C.
	assert_output "$SERVER_ADDR"
	in_site c p2p-fetch -T 10 "$ID" <<<"$output" >out.bin
	cmp share/file.bin out.bin
}

@test "internet: p2p-discover --dht | p2p-fetch ID, across sites" {
	serve_dht a
	in_site c sh -c "p2p-discover --dht --dht-bootstrap $BOOT --hash $ID -t 10 |
		p2p-fetch -T 10 $ID" >out.bin
	cmp share/file.bin out.bin
}

@test "internet: -l adds the identity the DHT record and the handshake show" {
	serve_dht a
	run --separate-stderr in_site c timeout 30 p2p-discover --dht --dht-bootstrap "$BOOT" \
		--hash "$ID" -t 10 -l
	assert_success
	assert_output --regexp "^$SERVER_ADDR"$'\t'".*"$'\t'"$IDENT"$'\t'"1"$'\t'"direct$"
}

@test "internet: p2p-fetch --dht looks the id up itself; -o shares it on the DHT too" {
	serve_dht a
	run in_site c timeout 30 p2p-fetch --dht --dht-bootstrap "$BOOT" -T 10 -o got.bin "$ID"
	assert_success
	cmp share/file.bin got.bin
}

@test "internet: p2p-send --dht in site A; its link without addresses (p2p://ID#IDENTITY) is looked up with p2p-fetch --dht in C" {
	ip netns exec "$NS-a" env -u MINI_P2P_DISCOVERY_ADDR p2p-send --dht --dht-bootstrap "$BOOT" \
		share/file.bin </dev/null >send.out 2>send.err 3>&- &
	SERVER_PIDS+=($!)
	wait_for -t 30 test -s send.out
	local link id ident
	link=$(head -n 1 send.out)
	link=${link#"p2p-fetch '"}
	link=${link%"'"}
	id=${link#p2p://}
	id=${id%%@*}
	ident=${link##*#}
	assert_equal "$id" "$ID"
	run -2 --separate-stderr in_site c p2p-fetch -o got.bin "p2p://$id#$ident" </dev/null
	assert_stderr --partial 'give --dht'
	run in_site c timeout 60 p2p-fetch --dht --dht-bootstrap "$BOOT" -T 10 -o got.bin \
		"p2p://$id#$ident" </dev/null
	assert_success
	cmp share/file.bin got.bin
}

@test "internet: a node found by its identity (-p ID@dht), wherever it is" {
	serve_dht b
	run in_site c timeout 30 p2p-fetch -p "$IDENT@dht" --dht-bootstrap "$BOOT" -T 10 \
		-o got.bin "$ID"
	assert_success
	cmp share/file.bin got.bin
}

@test "internet: -p ID@dht of an identity nobody announced finds nothing and fails" {
	serve_dht a
	local other
	other=$(printf 'ab%.0s' {1..32})
	run -1 --separate-stderr in_site c timeout 30 p2p-fetch -p "$other@dht" \
		--dht-bootstrap "$BOOT" -T 3 "$ID"
	# Which of the two depends on whether the lookup's time ran out first.
	assert_stderr --regexp "no peer answered|no peers to fetch from"
}

# dht_network FILE: the DHT network id of the private swarm whose secret is in FILE, as
# PROTOCOL.md derives it from the swarm's key (SHA-256 of the file).
dht_network() {
	python3 -c 'import hashlib, sys
k = hashlib.sha256(open(sys.argv[1], "rb").read()).digest()
h = hashlib.sha256(b"mini-p2p dht network v1\0" + k).digest()
print(int.from_bytes(h[:4], "big") or 1)' "$1"
}

@test "internet: a private swarm's id is not found without its secret" {
	head -c 32 /dev/urandom >secret
	chmod 600 secret
	# The swarm's own DHT network, and its bootstrap node.
	ip netns exec "$NS-r" dhtnode -s -p 4223 -n "$(dht_network secret)" >dhtnode2.log 2>&1 &
	EXTRA_PIDS+=($!)
	BOOT=$NET.1.1:4223
	serve_dht a --secret-file "$BATS_TEST_TMPDIR/secret" -v
	wait_for grep -q "network $(dht_network secret)" "$SERVER_ERR"
	# An outsider told of the swarm's bootstrap node, without the secret: nothing.
	run -1 --separate-stderr in_site c timeout 30 p2p-discover --dht --dht-bootstrap "$BOOT" \
		--hash "$ID" -t 5
	assert_output ""
	run --separate-stderr in_site c timeout 30 p2p-discover --dht --dht-bootstrap "$BOOT" \
		--hash "$ID" -t 10 --secret-file "$BATS_TEST_TMPDIR/secret"
	assert_success
	assert_output "$SERVER_ADDR"
}
