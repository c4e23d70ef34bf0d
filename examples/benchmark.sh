#!/bin/sh
# The benchmark suite, as the original design's examples/benchmark.sh ran it:
# single transfers per size, peer scalability, concurrent downloads and
# resilience, each beside a baseline measured in the same run. Loopback only.
#   examples/benchmark.sh [--quick | --full]
# Writes benchmark_report.json and benchmark_summary.txt here.
set -eu
export MINI_P2P_DISCOVERY_ADDR="${MINI_P2P_DISCOVERY_ADDR:-127.255.255.255}"
root=$(cd "$(dirname "$0")/.." && pwd)
bin="${P2P_BIN:-$root/build/bin}"
exec "$root/bats/netns-run" "$bin/p2p-bench" "${@:---quick}"
