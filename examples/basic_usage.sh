#!/bin/sh
# Basic usage of each tool, on a small file, on loopback.
#   examples/basic_usage.sh
set -eu
export MINI_P2P_DISCOVERY_ADDR="${MINI_P2P_DISCOVERY_ADDR:-127.255.255.255}"
root=$(cd "$(dirname "$0")/.." && pwd)
PATH="${P2P_BIN:-$root/build/bin}:$PATH"
work=$(mktemp -d "${TMPDIR:-/tmp}/p2p-basic.XXXXXX")
server=
trap '[ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$work"' EXIT
cd "$work"

echo "hello, peer" > hello.txt
echo "# the content id of a file: its bytes alone decide it"
p2p-chunk --id hello.txt

echo "# a manifest is msgpack; p2p-verify checks a file against it"
p2p-chunk hello.txt > hello.manifest
p2p-verify -m hello.manifest hello.txt

echo "# share a directory, list it, fetch a file from it"
mkdir share && cp hello.txt share/
p2p-serve -q -p 0 --bind 127.0.0.1 -d share > addr < /dev/null &
server=$!
i=0
until [ -s addr ] || [ $i -ge 100 ]; do i=$((i + 1)); sleep 0.1; done
addr=$(head -n 1 addr)
p2p-fetch --list -p "$addr"
p2p-fetch -p "$addr" "$(p2p-chunk --id hello.txt)" > copy.txt
cat copy.txt
