#!/bin/sh
# The file sharing demo (make demo): one node shares a generated file, another
# fetches it by content id, verifies it, and says so. Everything stays on
# loopback; make demo also runs it inside a private network namespace.
#   examples/file_sharing_demo.sh [SIZE_BYTES]
set -eu
# Discovery datagrams stay on this host unless told otherwise.
export MINI_P2P_DISCOVERY_ADDR="${MINI_P2P_DISCOVERY_ADDR:-127.255.255.255}"
root=$(cd "$(dirname "$0")/.." && pwd)
PATH="${P2P_BIN:-$root/build/bin}:$PATH"
size=${1:-33554432}
work=$(mktemp -d "${TMPDIR:-/tmp}/p2p-demo.XXXXXX")
server=
cleanup() {
	[ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT INT TERM

say() { printf '== %s\n' "$*"; }

say "node A: generating a $size-byte file"
mkdir "$work/a" "$work/b"
head -c "$size" /dev/urandom > "$work/a/shared.bin"
id=$(p2p-chunk --id "$work/a/shared.bin")
say "node A: content id $id"

say "node A: p2p-chunk shared.bin | p2p-serve -p 0"
p2p-chunk "$work/a/shared.bin" |
	p2p-serve -q -p 0 --bind 127.0.0.1 -n node-a > "$work/addr" &
server=$!
i=0
while [ ! -s "$work/addr" ]; do
	i=$((i + 1))
	[ $i -le 100 ] || { echo "demo: server did not start" >&2; exit 1; }
	sleep 0.1
done
addr=$(head -n 1 "$work/addr")
say "node A: serving on $addr"

say "node B: p2p-discover -l (who is on the LAN?)"
p2p-discover -t 1 -l

say "node B: p2p-fetch --list -p $addr"
p2p-fetch --list -p "$addr"

say "node B: p2p-discover | p2p-fetch -o fetched.bin $id"
p2p-discover | p2p-fetch --stats -o "$work/b/fetched.bin" "$id"

say "node B: p2p-verify $id fetched.bin"
p2p-verify "$id" "$work/b/fetched.bin"
cmp "$work/a/shared.bin" "$work/b/fetched.bin"
say "demo OK: node B holds a verified, byte-identical copy of node A's file"
