# A site behind a home router, in network namespaces: lan (10.0.0.2) -> router (10.0.0.1 on its
# LAN side, 5.5.5.1 on its WAN side, nftables masquerade out of the WAN side, forwarding policy
# drop but for replies and what miniupnpd opens) -> wan (5.5.5.2 and 5.5.5.3, two hosts of the
# internet). 5.5.5.1 looks ordinary on purpose: miniupnpd refuses a reserved address as its
# external one. Nothing leaves the namespaces: the router's only routes are its two links.
# Load after common.bash and netns.bash; call natbed_setup from setup (it skips without root or ip/nft) and
# natbed_teardown from teardown (it stops every process in the namespaces by PID, then
# deletes them, whatever the test did). natbed_teardown_file deletes any left by a crash.

# natbed_setup PREFIX: the three namespaces, $NAT_NS-lan, $NAT_NS-r and $NAT_NS-wan.
natbed_setup() {
	NAT_NS=$1-$BATS_TEST_NUMBER
	NAT_NETNS=()
	[[ $(id -u) == 0 ]] || skip "needs root to create network namespaces"
	command -v ip >/dev/null 2>&1 || skip "needs ip(8) (iproute2)"
	command -v nft >/dev/null 2>&1 || skip "needs nft(8) (make deps)"
	if ! ip netns add "$NAT_NS-r" 2>ns.err; then
		skip "cannot create a network namespace: $(head -n 1 ns.err)"
	fi
	NAT_NETNS+=("$NAT_NS-r")
	ip netns add "$NAT_NS-lan"
	NAT_NETNS+=("$NAT_NS-lan")
	ip netns add "$NAT_NS-wan"
	NAT_NETNS+=("$NAT_NS-wan")
	local ns
	for ns in "${NAT_NETNS[@]}"; do
		ip -n "$ns" link set lo up
	done
	ip link add eth0 netns "$NAT_NS-lan" type veth peer name lan0 netns "$NAT_NS-r"
	ip link add eth0 netns "$NAT_NS-wan" type veth peer name wan0 netns "$NAT_NS-r"
	ip -n "$NAT_NS-r" addr add 10.0.0.1/24 dev lan0
	ip -n "$NAT_NS-r" addr add 5.5.5.1/24 dev wan0
	ip -n "$NAT_NS-lan" addr add 10.0.0.2/24 dev eth0
	ip -n "$NAT_NS-wan" addr add 5.5.5.2/24 dev eth0
	ip -n "$NAT_NS-wan" addr add 5.5.5.3/24 dev eth0
	for ns in "${NAT_NETNS[@]}"; do
		ip -n "$ns" link set eth0 up 2>/dev/null || true
	done
	ip -n "$NAT_NS-r" link set lan0 up
	ip -n "$NAT_NS-r" link set wan0 up
	ip -n "$NAT_NS-lan" route add default via 10.0.0.1
	# wan knows no route to 10.0.0.0/24: as on the internet, it reaches lan only through 5.5.5.1.
	ip netns exec "$NAT_NS-r" sysctl -q -w net.ipv4.ip_forward=1
	# The chains miniupnpd fills (names in natbed_miniupnpd's config), empty without it.
	ip netns exec "$NAT_NS-r" nft -f - <<'NFT'
table inet natbed {
	chain forward {
		type filter hook forward priority 0; policy drop;
		ct state established,related accept
		iifname "lan0" oifname "wan0" accept
		jump miniupnpd
	}
	chain miniupnpd {
	}
	chain prerouting {
		type nat hook prerouting priority -100; policy accept;
		jump prerouting_miniupnpd
	}
	chain postrouting {
		type nat hook postrouting priority 100; policy accept;
		jump postrouting_miniupnpd
		oifname "wan0" masquerade
	}
	chain prerouting_miniupnpd {
	}
	chain postrouting_miniupnpd {
	}
}
NFT
}

# natbed_miniupnpd [--no-natpmp]: miniupnpd in the router, NAT-PMP and UPnP on its LAN side
# (UPnP alone with --no-natpmp), mapping to its WAN side, in the foreground (its PID in
# NAT_MINIUPNPD_PID, killed in teardown). Skips when miniupnpd is not installed.
natbed_miniupnpd() {
	natbed_need_module
	local natpmp=yes
	[[ ${1-} == --no-natpmp ]] && natpmp=no
	command -v miniupnpd >/dev/null 2>&1 || [[ -x /usr/sbin/miniupnpd ]] ||
		skip "needs miniupnpd (miniupnpd-nftables; make deps)"
	cat >miniupnpd.conf <<EOF2
ext_ifname=wan0
listening_ip=lan0
port=0
enable_natpmp=$natpmp
enable_upnp=yes
secure_mode=yes
system_uptime=yes
uuid=3c5e1c2e-1b8a-4bcd-9a0e-0123456789ab
upnp_table_name=natbed
upnp_nat_table_name=natbed
upnp_forward_chain=miniupnpd
upnp_nat_chain=prerouting_miniupnpd
upnp_nat_postrouting_chain=postrouting_miniupnpd
allow 1024-65535 10.0.0.0/24 1024-65535
deny 0-65535 0.0.0.0/0 0-65535
EOF2
	ip netns exec "$NAT_NS-r" /usr/sbin/miniupnpd -f "$BATS_TEST_TMPDIR/miniupnpd.conf" -d \
		-P "$BATS_TEST_TMPDIR/miniupnpd.pid" >miniupnpd.log 2>&1 3>&- &
	NAT_MINIUPNPD_PID=$!
	EXTRA_PIDS+=("$NAT_MINIUPNPD_PID")
	wait_for grep -q 'HTTP listening on port' miniupnpd.log || {
		cat miniupnpd.log >&2
		return 1
	}
}

# natbed_need_module: skips without the port-mapping module the tools load for --nat.
natbed_need_module() {
	[[ -e $P2P_BIN/../lib/mini-p2p/nat.so ]] ||
		skip "no port-mapping module (make deps, then make)"
}

# natbed_rules: miniupnpd's rules in the router now (its chains' contents).
natbed_rules() {
	ip netns exec "$NAT_NS-r" nft list chain inet natbed prerouting_miniupnpd
	ip netns exec "$NAT_NS-r" nft list chain inet natbed miniupnpd
}

# in_lan / in_wan / in_router CMD...: run CMD there, LAN discovery off the real interface.
in_lan() { ip netns exec "$NAT_NS-lan" env -u MINI_P2P_DISCOVERY_ADDR "$@"; }
in_wan() { ip netns exec "$NAT_NS-wan" env -u MINI_P2P_DISCOVERY_ADDR "$@"; }
in_router() { ip netns exec "$NAT_NS-r" "$@"; }

natbed_teardown() {
	netns_remove "${NAT_NETNS[@]}"
	NAT_NETNS=()
}

# natbed_teardown_file PREFIX: deletes any namespace of PREFIX still there.
natbed_teardown_file() {
	netns_remove_prefix "$1"
}
