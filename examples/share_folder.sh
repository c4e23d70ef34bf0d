#!/bin/sh
# Share a folder as one thing and fetch it whole, to a directory and as tar, on loopback.
#   examples/share_folder.sh
set -eu
export MINI_P2P_DISCOVERY_ADDR="${MINI_P2P_DISCOVERY_ADDR:-127.255.255.255}"
root=$(cd "$(dirname "$0")/.." && pwd)
PATH="${P2P_BIN:-$root/build/bin}:$PATH"
work=$(mktemp -d "${TMPDIR:-/tmp}/p2p-folder.XXXXXX")
server=
trap '[ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$work"' EXIT
cd "$work"

mkdir -p photos/2024/summer photos/empty
echo "beach" > photos/2024/summer/beach.txt
echo "notes" > photos/notes.txt
cp photos/notes.txt photos/2024/notes-copy.txt
chmod 0600 photos/notes.txt

echo "# one id for the whole folder: paths, bytes, modes and empty directories"
tree=$(p2p-chunk --tree --id photos)
echo "$tree"

echo "# share it; the listing shows each file's path and the tree"
p2p-serve -q -p 0 --bind 127.0.0.1 -d photos > addr < /dev/null &
server=$!
i=0
until [ -s addr ] || [ $i -ge 100 ]; do i=$((i + 1)); sleep 0.1; done
addr=$(head -n 1 addr)
p2p-fetch --list -p "$addr" < /dev/null

echo "# fetch the folder to a directory: the same tree id comes back"
p2p-fetch -q -p "$addr" -o copy "$tree" < /dev/null
p2p-chunk --tree --id copy

echo "# or stream it as tar"
mkdir untarred
p2p-fetch -q -p "$addr" "$tree" < /dev/null | tar -x -C untarred
diff -r photos untarred && echo "tar: identical"
