#!/usr/bin/env bats
# Through a home router, in network namespaces (bats/natbed.bash): a node in lan behind a
# router that masquerades and drops what comes in unasked, and nodes in wan, the internet. It
# learns its external address from what the nodes it meets say they see (two of them, at
# distinct hosts), and with --nat maps its port through miniupnpd (NAT-PMP) so that wan
# reaches it; without a mapping wan cannot. Nothing here leaves the namespaces: the router's
# links are its only routes, and port mapping runs only here.

bats_require_minimum_version 1.5.0

load ../bats/common
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
