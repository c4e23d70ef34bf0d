#!/usr/bin/env bats
# Through a home router, in network namespaces (bats/natbed.bash): a node in lan behind a
# router that masquerades and drops what comes in unasked, and nodes in wan, the internet. It
# learns its external address from what the nodes it meets say they see (two of them, at
# distinct hosts), and with --nat maps its port through miniupnpd (NAT-PMP) so that wan
# reaches it; without a mapping wan cannot. Nothing here leaves the namespaces: the router's
# links are its only routes, and port mapping runs only here.
# Two sites each behind such a router, with no mapping, and a relay in wan between them:
# tests/punch.bats (port-preserving routers: a punched, direct fetch) and tests/relay.bats
# (symmetric routers: the punch fails, the fetch is relayed).

bats_require_minimum_version 1.5.0

load ../bats/common
load ../bats/netns
load ../bats/natbed

setup_file() {
	export NAT_PREFIX=p2pn-$$
}

teardown_file() {
	natbed_teardown_file "$NAT_PREFIX"
}

setup() {
	common_setup
	natbed_setup "$NAT_PREFIX"
	mkdir share
	make_file share/file.bin 1M 11
	ID=$(p2p-chunk --id share/file.bin)
}

teardown() {
	natbed_teardown
}

# serve_in WHERE [ARGS...]: p2p-serve in lan or wan, sharing share/; SERVER_PID etc. as
# start_server sets them.
serve_in() {
	local where=$1
	shift
	start_server --cmd ip netns exec "$NAT_NS-$where" env -u MINI_P2P_DISCOVERY_ADDR \
		p2p-serve -p 0 --no-announce -d "$BATS_TEST_TMPDIR/share" "$@"
}

@test "nat: the router masquerades lan and drops what wan sends it unasked" {
	serve_in wan --bind 5.5.5.2
	local wan_port=$SERVER_PORT
	run in_lan timeout 10 p2p-fetch --list -p "5.5.5.2:$wan_port" </dev/null
	assert_success
	assert_output --partial "$ID"
	# Reached at its own address: direct.
	run --separate-stderr in_lan timeout 10 p2p-fetch --stats -p "5.5.5.2:$wan_port" "$ID"
	assert_success
	assert_equal "$(stats_field "$stderr" paths)" "5.5.5.2:$wan_port/direct"
	serve_in lan -p 7000 --bind 0.0.0.0
	# Nothing forwards 5.5.5.1:7000 to lan: refused or dropped, and no bytes come.
	run in_wan timeout 10 p2p-fetch -T 3 -p 5.5.5.1:7000 "$ID"
	assert_failure
}

@test "nat: a node learns its external address once two peers at distinct hosts see it there" {
	serve_in wan --bind 5.5.5.2
	local w1=5.5.5.2:$SERVER_PORT
	serve_in wan --bind 5.5.5.3
	local w2=5.5.5.3:$SERVER_PORT
	serve_in lan -v -b "$w1" -b "$w2"
	local port=$SERVER_PORT
	wait_for grep -q "info: external address 5.5.5.1:$port: 2 peers see this node at it" \
		"$SERVER_ERR"
	# Once: each later round of the same peers changes nothing.
	run grep -c 'external address' "$SERVER_ERR"
	assert_output 1
}

@test "nat: --nat maps the port through miniupnpd (NAT-PMP); wan fetches at the external address; the mapping goes at exit" {
	natbed_miniupnpd
	serve_in lan -v -p 7000 --nat
	local pid=$SERVER_PID
	wait_for grep -q 'info: mapped TCP 7000 at 5.5.5.1:7000 via NAT-PMP' "$SERVER_ERR"
	run grep -c 'mapped TCP' "$SERVER_ERR"
	assert_output 1
	run natbed_rules
	assert_output --partial 7000
	in_wan timeout 20 p2p-fetch --stats -T 10 -p 5.5.5.1:7000 "$ID" >out.bin 2>fetch.err
	cmp share/file.bin out.bin
	# The fetcher knows how it got there: the node's HELLO says 5.5.5.1:7000 is its mapping.
	assert_equal "$(stats_field "$(cat fetch.err)" paths)" "5.5.5.1:7000/mapped"
	run -0 --separate-stderr in_wan timeout 20 p2p-discover -t 2 -l -b 5.5.5.1:7000 </dev/null
	assert_line --regexp $'^5\\.5\\.5\\.1:7000\t[^\t]+\t[0-9a-f]{64}\t1\tmapped$'
	stop_server "$pid"
	[[ $exit_status == 0 ]]
	grep -q 'info: removed the mapping of TCP 7000 via NAT-PMP' "$SERVER_ERR"
	run natbed_rules
	refute_output --partial 7000
	run in_wan timeout 10 p2p-fetch -T 3 -p 5.5.5.1:7000 "$ID"
	assert_failure
}

@test "nat: the mapping is renewed at half its lease" {
	natbed_miniupnpd
	MINI_P2P_NAT_LEASE=4 serve_in lan -v -p 7000 --nat
	wait_for grep -q 'info: mapped TCP 7000 at 5.5.5.1:7000 via NAT-PMP' "$SERVER_ERR"
	wait_for grep -q 'debug: renewed the mapping of TCP 7000 at 5.5.5.1:7000 via NAT-PMP' \
		"$SERVER_ERR"
	run grep -c 'port mapping request : 7000->10.0.0.2:7000 tcp lifetime=4s' miniupnpd.log
	(( output >= 2 ))
}

@test "nat: without NAT-PMP, --nat maps through UPnP-IGD; the mapping goes at exit" {
	natbed_miniupnpd --no-natpmp
	serve_in lan -v -p 7000 --nat
	local pid=$SERVER_PID
	wait_for -t 30 grep -q 'info: mapped TCP 7000 at 5.5.5.1:7000 via UPnP-IGD' "$SERVER_ERR"
	in_wan timeout 20 p2p-fetch -T 10 -p 5.5.5.1:7000 "$ID" >out.bin
	cmp share/file.bin out.bin
	stop_server "$pid"
	grep -q 'info: removed the mapping of TCP 7000 via UPnP-IGD' "$SERVER_ERR"
	run natbed_rules
	refute_output --partial 7000
}

@test "nat: with no router that maps, --nat says why and the node serves on" {
	natbed_need_module
	serve_in lan -v -p 7000 --nat
	wait_for -t 30 grep -q 'info: no port mapping: NAT-PMP: .*; UPnP-IGD: ' "$SERVER_ERR"
	run in_lan timeout 10 p2p-fetch --list -p 10.0.0.2:7000 </dev/null
	assert_success
	assert_output --partial "$ID"
}

@test "nat: a mapping is not asked for without --nat, nor with --no-nat after it" {
	natbed_miniupnpd
	serve_in lan -v -p 7000
	serve_in lan -v -p 7001 --nat --no-nat
	run in_lan timeout 10 p2p-fetch --list -p 10.0.0.2:7001 </dev/null
	assert_success
	run grep -c 'NAT-PMP request received' miniupnpd.log
	assert_output 0
	run natbed_rules
	refute_output --partial 700
}

@test "nat: network.nat = true in the config maps the port of a sharing p2p-fetch, removed at its end" {
	natbed_miniupnpd
	serve_in wan --bind 5.5.5.2
	local w1=5.5.5.2:$SERVER_PORT
	printf '[network]\nnat = true\n' >nat.toml
	start_server --cmd ip netns exec "$NAT_NS-lan" env -u MINI_P2P_DISCOVERY_ADDR \
		sh -c 'echo 10.0.0.2:7002; exec p2p-fetch -v --config nat.toml --port 7002 --seed \
		-T 10 -p "$1" -o out.bin "$2"' sh "$w1" "$ID"
	local pid=$SERVER_PID
	wait_for grep -q 'info: mapped TCP 7002 at 5.5.5.1:7002 via NAT-PMP' "$SERVER_ERR"
	wait_for cmp -s share/file.bin out.bin
	stop_server "$pid"
	grep -q 'info: removed the mapping of TCP 7002 via NAT-PMP' "$SERVER_ERR"
	run natbed_rules
	refute_output --partial 7002
}

@test "nat: without its module, --nat says so and the node serves on" {
	MINI_P2P_NAT_MODULE=/nonexistent/nat.so serve_in lan -v -p 7000 --nat
	wait_for grep -q 'info: no port mapping: cannot load its module: ' "$SERVER_ERR"
	run in_lan timeout 10 p2p-fetch --list -p 10.0.0.2:7000 </dev/null
	assert_success
	assert_output --partial "$ID"
}

@test "nat: a node mapped late announces its external address on the DHT at once; wan finds it there and fetches" {
	command -v dhtnode >/dev/null 2>&1 || skip "needs dhtnode (make deps)"
	[[ -e $P2P_BIN/../lib/mini-p2p/dht.so ]] || skip "no DHT module (make deps, then make)"
	# UPnP-IGD alone: the mapping comes seconds after the DHT's first put, which is put
	# again at once with it, not at the next round 5 minutes later.
	natbed_miniupnpd --no-natpmp
	ip netns exec "$NAT_NS-wan" dhtnode -s -p 4222 >dhtnode.log 2>&1 3>&- &
	EXTRA_PIDS+=($!)
	serve_in lan -v -p 7000 --nat --dht --dht-bootstrap 5.5.5.2:4222
	wait_for -t 30 grep -q 'info: mapped TCP 7000 at 5.5.5.1:7000 via UPnP-IGD' "$SERVER_ERR"
	# The lan address means nothing in wan: what it finds is the mapping.
	local found
	found=$(in_wan timeout 60 p2p-discover --dht --dht-bootstrap 5.5.5.2:4222 --hash "$ID" \
		-t 30 </dev/null)
	assert_equal "$found" "5.5.5.1:7000"
	in_wan timeout 20 p2p-fetch -T 10 "$ID" <<<"$found" >out.bin
	cmp share/file.bin out.bin
}
