# Two home sites behind routers and the internet between them, in network namespaces, for
# relays and hole punching (tests/relay.bats, tests/punch.bats):
#   lan-a 10.0.0.2 -> router-a 10.0.0.1 | 5.5.5.1 -> wan 5.5.5.2 (the relay)
#   lan-b 10.0.1.2 -> router-b 10.0.1.1 | 6.6.6.1 -> wan 6.6.6.2
# Load after common.bash and netns.bash. The suite sets RELAY_PREFIX in setup_file and
# RELAY_NETNS=() in setup, and in teardown removes "${RELAY_NETNS[@]}" (netns_remove); the
# namespaces are named "$RB-wan", "$RB-a", "$RB-ra", "$RB-b", "$RB-rb". Nothing leaves.

# relaybed_setup [MASQ]: the two sites and wan above; each router drops what comes in unasked
# (input and forward), and masquerades as MASQ says: "fully-random" (the default, a symmetric
# NAT) or "keep" (plain masquerade, which keeps a connection's source port when it is free: a
# port-preserving NAT, through which a hole can be punched).
relaybed_setup() {
	local ns site lan wan up masq=${1:-fully-random}
	[[ $masq == keep ]] && masq=
	[[ $(id -u) == 0 ]] || skip "needs root to create network namespaces"
	command -v ip >/dev/null 2>&1 || skip "needs ip(8) (iproute2)"
	command -v nft >/dev/null 2>&1 || skip "needs nft(8) (make deps)"
	RB=$RELAY_PREFIX-$BATS_TEST_NUMBER
	ip netns add "$RB-wan" 2>ns.err || skip "cannot create a network namespace: $(head -n 1 ns.err)"
	RELAY_NETNS+=("$RB-wan")
	for site in a b; do
		ip netns add "$RB-$site"
		RELAY_NETNS+=("$RB-$site")
		ip netns add "$RB-r$site"
		RELAY_NETNS+=("$RB-r$site")
	done
	for ns in "${RELAY_NETNS[@]}"; do
		ip -n "$ns" link set lo up
	done
	for site in a b; do
		if [[ $site == a ]]; then lan=10.0.0 wan=5.5.5 up=eth0; else lan=10.0.1 wan=6.6.6 up=eth1; fi
		ip link add eth0 netns "$RB-$site" type veth peer name lan0 netns "$RB-r$site"
		ip link add "$up" netns "$RB-wan" type veth peer name wan0 netns "$RB-r$site"
		ip -n "$RB-r$site" addr add "$lan.1/24" dev lan0
		ip -n "$RB-r$site" addr add "$wan.1/24" dev wan0
		ip -n "$RB-$site" addr add "$lan.2/24" dev eth0
		ip -n "$RB-wan" addr add "$wan.2/24" dev "$up"
		ip -n "$RB-$site" link set eth0 up
		ip -n "$RB-wan" link set "$up" up
		ip -n "$RB-r$site" link set lan0 up
		ip -n "$RB-r$site" link set wan0 up
		ip -n "$RB-$site" route add default via "$lan.1"
		ip -n "$RB-r$site" route add default via "$wan.2"
		ip netns exec "$RB-r$site" sysctl -q -w net.ipv4.ip_forward=1
		ip netns exec "$RB-r$site" nft -f - <<NFT
table inet relaybed {
	chain input {
		type filter hook input priority 0; policy drop;
		ct state established,related accept
		iifname "lo" accept
	}
	chain forward {
		type filter hook forward priority 0; policy drop;
		ct state established,related accept
		iifname "lan0" oifname "wan0" accept
	}
	chain postrouting {
		type nat hook postrouting priority 100; policy accept;
		oifname "wan0" masquerade $masq
	}
}
NFT
	done
	# The internet routes between the two sites' routers.
	ip netns exec "$RB-wan" sysctl -q -w net.ipv4.ip_forward=1
}

in_site() {
	local where=$1
	shift
	ip netns exec "$RB-$where" env -u MINI_P2P_DISCOVERY_ADDR "$@"
}
