# Three hosts on one virtual LAN, for the suites that need them (netns.bats,
# first-ten-minutes.bats): network namespaces $NS-a, $NS-b and $NS-c, each with one veth
# (eth0) joined to a bridge in a fourth, $NS-br, addresses $NET.1..3/24 that exist only inside
# them, added without "brd" as many scripts and containers do. Needs root and ip(8): netns_setup
# skips the test otherwise. netns_teardown kills everything still running in the namespaces
# (ip netns pids) and deletes them, whatever the test did; netns_teardown_file deletes any of
# the file's namespaces still there (a setup cut short). netns_remove and netns_remove_prefix
# do the same for suites that build other topologies (internet.bats, natbed.bash). Load after
# common.

# netns_setup_file: in setup_file, the prefix of this file's namespaces.
netns_setup_file() {
	export NS_PREFIX=p2pt-$$
}

netns_teardown_file() {
	netns_remove_prefix "$NS_PREFIX"
}

# netns_remove_prefix PREFIX: kills what runs in, and deletes, every namespace named PREFIX-*
# (in teardown_file: those a setup cut short left behind).
netns_remove_prefix() {
	local ns pid
	for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^$1-"); do
		for pid in $(ip netns pids "$ns" 2>/dev/null); do
			kill -KILL "$pid" 2>/dev/null || true
		done
		ip netns del "$ns" 2>/dev/null || echo "teardown_file: could not delete netns $ns" >&2
	done
}

# netns_setup: in setup, after common_setup: the three hosts; sets NS, NET and NETNS.
netns_setup() {
	NETNS=()
	if [[ $(id -u) != 0 ]]; then
		skip "needs root to create network namespaces"
	fi
	if ! command -v ip >/dev/null 2>&1; then
		skip "needs ip(8) (iproute2) to create network namespaces"
	fi
	NS=$NS_PREFIX-$BATS_TEST_NUMBER
	NET=10.77.$((BATS_TEST_NUMBER % 250))
	if ! ip netns add "$NS-br" 2>ns.err; then
		skip "cannot create a network namespace: $(head -n 1 ns.err)"
	fi
	NETNS+=("$NS-br")
	if ! ip -n "$NS-br" link add br0 type bridge 2>ns.err; then
		skip "cannot create a bridge in a network namespace: $(head -n 1 ns.err)"
	fi
	ip -n "$NS-br" link set br0 up
	local i=1 n
	for n in a b c; do
		ip netns add "$NS-$n"
		NETNS+=("$NS-$n")
		ip link add eth0 netns "$NS-$n" type veth peer name "v$n" netns "$NS-br"
		ip -n "$NS-br" link set "v$n" master br0 up
		ip -n "$NS-$n" addr add "$NET.$i/24" dev eth0
		ip -n "$NS-$n" link set lo up
		ip -n "$NS-$n" link set eth0 up
		i=$((i + 1))
	done
}

# netns_teardown: in teardown, instead of common_teardown (which it calls).
netns_teardown() {
	netns_remove "${NETNS[@]}"
	NETNS=()
}

# netns_remove NS...: in teardown, the namespaces NS (and common_teardown, which it calls):
# what runs in them is asked to stop, the test's own processes are stopped, what is left in
# them is killed, and they are deleted.
netns_remove() {
	local ns pid
	for ns in "$@"; do
		for pid in $(ip netns pids "$ns" 2>/dev/null); do
			kill -TERM "$pid" 2>/dev/null || true
		done
	done
	common_teardown
	for ns in "$@"; do
		for pid in $(ip netns pids "$ns" 2>/dev/null); do
			kill -KILL "$pid" 2>/dev/null || true
		done
	done
	for ns in "$@"; do
		ip netns del "$ns" 2>/dev/null || echo "teardown: could not delete netns $ns" >&2
	done
}

# in_ns NODE CMD...: run CMD in namespace NODE (a, b or c) with the default discovery address.
in_ns() {
	local node=$1
	shift
	ip netns exec "$NS-$node" env -u MINI_P2P_DISCOVERY_ADDR "$@"
}
