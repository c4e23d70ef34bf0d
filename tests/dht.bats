#!/usr/bin/env bats
# The DHT options and settings, on loopback only: the guard that keeps every test and demo
# off the public network (MINI_P2P_NO_PUBLIC_DHT, which bats/common.bash and bats/netns-run
# set), the configuration keys, and OpenDHT mapped only into a process started with --dht.
# Nothing here starts a DHT node that could reach past 127.0.0.1. tests/internet.bats runs
# the DHT across namespaces.

bats_require_minimum_version 1.5.0

load ../bats/common

@test "dht: the guard is on under the suites" {
	[[ $MINI_P2P_NO_PUBLIC_DHT == 1 ]]
}

@test "dht: each tool refuses the default (public) bootstrap node under MINI_P2P_NO_PUBLIC_DHT=1" {
	make_file f 1K
	run -1 --separate-stderr p2p-discover --dht --hash "$(p2p-chunk --id f)" -t 1
	assert_stderr --partial "MINI_P2P_NO_PUBLIC_DHT is set"
	run -1 --separate-stderr p2p-fetch --dht -T 1 "$(p2p-chunk --id f)"
	assert_stderr --partial "MINI_P2P_NO_PUBLIC_DHT is set"
	run -1 --separate-stderr timeout 10 p2p-serve --dht -p 0 -d "$BATS_TEST_TMPDIR" </dev/null
	assert_stderr --partial "MINI_P2P_NO_PUBLIC_DHT is set"
}

@test "dht: a name as a bootstrap node is refused under the guard (no lookup at all)" {
	run -1 --separate-stderr p2p-discover --dht --dht-bootstrap localhost:4222 -t 1
	assert_stderr --partial "must be IP addresses"
	# The public default, named explicitly: taken from the help, so that no test names a
	# public host it could reach should the guard ever fail.
	local public
	public=$(p2p-discover --help | sed -n 's/.*default \([A-Za-z0-9.-]*:[0-9]*\)).*/\1/p')
	[[ -n $public ]]
	MINI_P2P_DHT_BOOTSTRAP=$public run -1 --separate-stderr \
		p2p-discover --dht -t 1
	assert_stderr --partial "MINI_P2P_NO_PUBLIC_DHT is set"
}

@test "dht: network.dht = true in the config file turns it on, and is refused the public node" {
	printf '[network]\ndht = true\n' >c.toml
	run -1 --separate-stderr p2p-discover --config c.toml -t 1
	assert_stderr --partial "MINI_P2P_NO_PUBLIC_DHT is set"
	MINI_P2P_DHT=1 run -1 --separate-stderr p2p-discover -t 1
	assert_stderr --partial "MINI_P2P_NO_PUBLIC_DHT is set"
}

@test "dht: network.dht_bootstrap and dht_port are taken; the flags beat them" {
	local port
	port=$(unused_udp_port)
	printf '[network]\ndht = true\ndht_bootstrap = ["127.0.0.1:1", "127.0.0.2:2"]\ndht_port = %s\n' \
		"$port" >c.toml
	run --separate-stderr p2p-discover --config c.toml -t 1 -v
	assert_stderr --partial "dht: UDP port $port, 2 bootstrap node(s)"
	run --separate-stderr p2p-discover --config c.toml -t 1 -v --dht-bootstrap 127.0.0.1:9 \
		--dht-port 0
	assert_stderr --partial "1 bootstrap node(s)"
	refute_stderr --partial "UDP port $port,"
}

@test "dht: bad DHT settings are usage errors naming them" {
	printf '[network]\ndht = yes\n' >c.toml
	run -2 --separate-stderr p2p-discover --config c.toml
	assert_stderr --partial "network.dht = 'yes': want true or false"
	printf '[network]\ndht_bootstrap = "10.0.0.1"\n' >c.toml
	run -2 --separate-stderr p2p-discover --config c.toml
	assert_stderr --partial "network.dht_bootstrap"
	printf '[network]\ndht_port = 70000\n' >c.toml
	run -2 --separate-stderr p2p-discover --config c.toml
	assert_stderr --partial "network.dht_port"
	run -2 --separate-stderr p2p-fetch -p abcd@dht 00
	assert_stderr --partial "must be 64 hex digits"
}

@test "dht: OpenDHT is mapped only into a process started with --dht" {
	[[ -e $P2P_BIN/../lib/mini-p2p/dht.so ]] || skip "no DHT module (make deps, then make)"
	run ldd "$P2P_BIN/p2p-fetch"
	refute_output --partial opendht
	start_server -d "$BATS_TEST_TMPDIR"
	run grep -c opendht "/proc/$SERVER_PID/maps"
	assert_output 0
	start_server -d "$BATS_TEST_TMPDIR" --dht --dht-bootstrap 127.0.0.1:9
	wait_for grep -q opendht "/proc/$SERVER_PID/maps"
}

@test "dht: without the module, --dht says so and what to do" {
	MINI_P2P_DHT_MODULE=/nonexistent/dht.so run -1 --separate-stderr \
		p2p-discover --dht --dht-bootstrap 127.0.0.1:9 -t 1
	assert_stderr --partial "cannot load the DHT module"
	assert_stderr --partial "make deps"
}
