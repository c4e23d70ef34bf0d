#!/bin/sh
# The internet in network namespaces: three sites (A, B, C), each its own subnet behind one
# router that forwards between them (never broadcasts, as a router does), and a bootstrap
# dhtnode on the router. Site A shares a generated file with --dht; site C, which LAN discovery
# cannot reach, finds it through the DHT (p2p-discover --dht --hash ID), fetches it and checks
# it; then fetches it again from the node of site A's identity alone (-p IDENTITY@dht). Every
# namespace and process it makes is removed on exit, however it exits.
#
# Needs root, ip(8) and dhtnode (make deps). Nothing leaves the namespaces: the tools are told
# of the router's dhtnode alone, under MINI_P2P_NO_PUBLIC_DHT=1.
#   examples/internet_simulation.sh [SIZE_BYTES]
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
PATH="${P2P_BIN:-$root/build/bin}:$PATH"
export MINI_P2P_NO_PUBLIC_DHT=1
unset MINI_P2P_DHT_BOOTSTRAP MINI_P2P_DISCOVERY_ADDR
size=${1:-1048576}
case $size in
'' | *[!0-9]*)
	echo "usage: $0 [SIZE_BYTES]" >&2
	exit 2
	;;
esac
if [ "$(id -u)" != 0 ] || ! command -v ip >/dev/null || ! command -v dhtnode >/dev/null; then
	echo "$0: needs root, ip(8) and dhtnode (make deps)" >&2
	exit 77
fi

ns=p2p-inet-$$
net=10.199
work=$(mktemp -d "${TMPDIR:-/tmp}/p2p-inet.XXXXXX")
export HOME="$work/home"
mkdir -p "$HOME"
cleanup() {
	status=$?
	trap - EXIT INT TERM
	for n in r a b c; do
		for pid in $(ip netns pids "$ns-$n" 2>/dev/null); do
			kill -KILL "$pid" 2>/dev/null || true
		done
		ip netns del "$ns-$n" 2>/dev/null || true
	done
	rm -rf "$work"
	exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "== the internet: router $ns-r, sites A $net.1.0/24, B $net.2.0/24, C $net.3.0/24"
ip netns add "$ns-r"
ip -n "$ns-r" link set lo up
ip netns exec "$ns-r" sysctl -q -w net.ipv4.ip_forward=1
i=1
for s in a b c; do
	ip netns add "$ns-$s"
	ip link add eth0 netns "$ns-$s" type veth peer name "v$s" netns "$ns-r"
	ip -n "$ns-r" addr add "$net.$i.1/24" dev "v$s"
	ip -n "$ns-r" link set "v$s" up
	ip -n "$ns-$s" addr add "$net.$i.2/24" dev eth0
	ip -n "$ns-$s" link set lo up
	ip -n "$ns-$s" link set eth0 up
	ip -n "$ns-$s" route add default via "$net.$i.1"
	i=$((i + 1))
done
boot=$net.1.1:4222
ip netns exec "$ns-r" dhtnode -s -p 4222 >"$work/dhtnode.log" 2>&1 &
echo "== bootstrap dhtnode at $boot"

mkdir "$work/share"
head -c "$size" /dev/urandom >"$work/share/report.bin"
id=$(p2p-chunk --id "$work/share/report.bin")
ip netns exec "$ns-a" p2p-serve -p 0 -n site-a -d "$work/share" --dht --dht-bootstrap "$boot" \
	-v >"$work/a.out" 2>"$work/a.err" &
n=0
until grep -q "dht: UDP port" "$work/a.err" 2>/dev/null; do
	n=$((n + 1))
	[ "$n" -lt 200 ] || { echo "site A did not start" >&2; cat "$work/a.err" >&2; exit 1; }
	sleep 0.05
done
ident=$(sed -n 's/.*identity \([0-9a-f]\{64\}\).*/\1/p' "$work/a.err" | head -n 1)
echo "== site A serves $id ($size bytes) as $ident, on the DHT"

echo "== site C, LAN discovery (does not cross the router):"
ip netns exec "$ns-c" p2p-discover -t 2 || echo "   (nothing, as expected)"

echo "== site C, p2p-discover --dht --hash $id:"
ip netns exec "$ns-c" p2p-discover --dht --dht-bootstrap "$boot" --hash "$id" -t 10 -l |
	tee "$work/found"
addr=$(cut -f 1 "$work/found" | head -n 1)
[ -n "$addr" ] || { echo "site C found nothing" >&2; exit 1; }

echo "== site C fetches from $addr"
ip netns exec "$ns-c" sh -c "cut -f 1 '$work/found' | p2p-fetch -T 10 $id" >"$work/got.bin"
cmp "$work/share/report.bin" "$work/got.bin"
echo "OK	fetched by content id through the DHT, $size bytes, identical"

echo "== site C fetches from the node of identity $ident (-p IDENTITY@dht)"
ip netns exec "$ns-c" p2p-fetch -p "$ident@dht" --dht-bootstrap "$boot" -T 10 \
	-o "$work/got2.bin" "$id"
cmp "$work/share/report.bin" "$work/got2.bin"
echo "OK	fetched from the node found by its identity, identical"
echo "== simulation OK"
