#!/bin/sh
# A small peer-to-peer network on one host: a seed node shares a generated file with LAN
# discovery on; two more nodes join through it (-b, bootstrap) and share files of their own.
# Then: what each node shares (p2p-fetch --list), the network as discovery sees it
# (p2p-discover -l), the peers learnt through the seed alone (peer exchange), the seed's file
# fetched by content id through `p2p-discover | p2p-fetch`, checked with p2p-verify, and a
# summary. Every process it starts is stopped on exit, however it exits.
#
# Discovery stays on the host (MINI_P2P_DISCOVERY_ADDR=127.255.255.255) and uses a free UDP
# port of its own (or MINI_P2P_DISCOVERY_PORT), so it never meets any other node.
#   examples/network_simulation.sh [SIZE_BYTES]
set -eu
export MINI_P2P_DISCOVERY_ADDR="${MINI_P2P_DISCOVERY_ADDR:-127.255.255.255}"
root=$(cd "$(dirname "$0")/.." && pwd)
PATH="${P2P_BIN:-$root/build/bin}:$PATH"
size=${1:-4194304}
case $size in
'' | *[!0-9]*)
	echo "usage: $0 [SIZE_BYTES]" >&2
	exit 2
	;;
esac

work=$(mktemp -d "${TMPDIR:-/tmp}/p2p-sim.XXXXXX")
pids=
cleanup() {
	status=$?
	trap - EXIT INT TERM
	for pid in $pids; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in $pids; do
		wait "$pid" 2>/dev/null || true
	done
	rm -rf "$work"
	exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say() { printf '== %s\n' "$*"; }
die() {
	echo "network_simulation: $*" >&2
	exit 1
}

# free_udp_port: a UDP port nothing is bound to.
free_udp_port() {
	if command -v python3 >/dev/null 2>&1; then
		python3 -c 'import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 0))
print(s.getsockname()[1])'
	else
		echo $((20000 + $$ % 20000))
	fi
}

dport=${MINI_P2P_DISCOVERY_PORT:-$(free_udp_port)}
# a second port where nobody listens: discovery there finds only what peer exchange gives
quiet_port=$(free_udp_port)
[ "$quiet_port" != "$dport" ] || quiet_port=$((dport + 1))

# start_node NAME [P2P-SERVE ARGS...]: a node sharing $work/NAME/share; sets addr.
start_node() {
	name=$1
	shift
	p2p-serve -q -p 0 --bind 127.0.0.1 -n "$name" --discovery-port "$dport" \
		-d "$work/$name/share" "$@" </dev/null >"$work/$name/addr" 2>"$work/$name/log" &
	pids="$pids $!"
	i=0
	until [ -s "$work/$name/addr" ] && grep -q ':[0-9][0-9]*$' "$work/$name/addr"; do
		i=$((i + 1))
		[ $i -le 100 ] || {
			cat "$work/$name/log" >&2
			die "$name did not start"
		}
		sleep 0.1
	done
	addr=127.0.0.1:$(sed -n '1s/.*://p' "$work/$name/addr")
}

# wait_shares ADDR ID: the node at ADDR lists ID (directories are chunked at start).
wait_shares() {
	i=0
	until p2p-fetch --list -p "$1" </dev/null 2>/dev/null | grep -q "^$2	"; do
		i=$((i + 1))
		[ $i -le 100 ] || die "$1 does not share $2"
		sleep 0.1
	done
}

for n in seed node-1 node-2 fetcher; do
	mkdir -p "$work/$n/share"
done

say "seed: generating a $size-byte file"
head -c "$size" /dev/urandom >"$work/seed/share/seed-file.bin"
id=$(p2p-chunk --id "$work/seed/share/seed-file.bin")
say "seed: content id $id"
start_node seed
seed=$addr
wait_shares "$seed" "$id"
say "seed: serving on $seed (discovery on UDP port $dport)"

head -c 100000 /dev/urandom >"$work/node-1/share/notes-1.bin"
id1=$(p2p-chunk --id "$work/node-1/share/notes-1.bin")
start_node node-1 -b "$seed"
node1=$addr
wait_shares "$node1" "$id1"
say "node-1: serving on $node1, joined through the seed (-b $seed)"

head -c 200000 /dev/urandom >"$work/node-2/share/notes-2.bin"
head -c 300000 /dev/urandom >"$work/node-2/share/photo-2.bin"
id2=$(p2p-chunk --id "$work/node-2/share/notes-2.bin")
start_node node-2 -b "$seed"
node2=$addr
wait_shares "$node2" "$id2"
say "node-2: serving on $node2, joined through the seed (-b $seed)"

for a in "$seed" "$node1" "$node2"; do
	say "p2p-fetch --list -p $a"
	p2p-fetch --list -p "$a" </dev/null
done

say "p2p-discover -l: the network (HOST:PORT, NAME, IDENTITY, FILES, PATH)"
p2p-discover --discovery-port "$dport" -t 2 -l </dev/null >"$work/network"
cat "$work/network"
for n in seed node-1 node-2; do
	grep -q "	$n	" "$work/network" || die "p2p-discover did not find $n"
done

say "peer exchange: p2p-discover -b $seed, with no discovery answering"
i=0
until p2p-discover --discovery-port "$quiet_port" -t 1 -b "$seed" </dev/null \
	>"$work/exchange" 2>/dev/null &&
	[ "$(wc -l <"$work/exchange")" -ge 3 ]; do
	i=$((i + 1))
	[ $i -le 10 ] || break
done
cat "$work/exchange"

say "fetcher: p2p-discover | p2p-fetch -o seed-file.bin $id"
timeout 120 sh -c 'p2p-discover --discovery-port "$1" </dev/null | p2p-fetch --stats -o "$2" "$3"' \
	_ "$dport" "$work/fetcher/seed-file.bin" "$id"

say "fetcher: p2p-verify $id seed-file.bin"
p2p-verify "$id" "$work/fetcher/seed-file.bin"
cmp "$work/seed/share/seed-file.bin" "$work/fetcher/seed-file.bin"

say "summary"
printf '  %-8s %-21s %s\n' node address files
printf '  %-8s %-21s %s\n' seed "$seed" "$(cd "$work/seed/share" && echo *)"
printf '  %-8s %-21s %s\n' node-1 "$node1" "$(cd "$work/node-1/share" && echo *)"
printf '  %-8s %-21s %s\n' node-2 "$node2" "$(cd "$work/node-2/share" && echo *)"
printf '  discovered: %s nodes; through the seed alone: %s\n' \
	"$(wc -l <"$work/network")" "$(wc -l <"$work/exchange")"
printf '  fetched: %s bytes, content id %s\n' "$(wc -c <"$work/fetcher/seed-file.bin")" "$id"
say "simulation OK: 3 nodes found each other; the seed's file arrived verified"
