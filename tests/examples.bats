#!/usr/bin/env bats
# The runnable examples: they succeed, say what they should, and leave nothing running.
# Each runs with TMPDIR inside the test's directory (so what it starts can be recognised by
# its paths) and, where it uses discovery, a discovery port of its own.

bats_require_minimum_version 1.5.0

load ../bats/common

EXAMPLES="$(cd "$BATS_TEST_DIRNAME/../examples" && pwd)"

setup() {
	common_setup
	mkdir tmp
	export TMPDIR=$BATS_TEST_TMPDIR/tmp
	export MINI_P2P_DISCOVERY_PORT
	MINI_P2P_DISCOVERY_PORT=$(unused_udp_port)
}

teardown() {
	# anything still running from this test's directory is a leak: end it, by PID
	local pid
	for pid in $(leftover_pids); do
		kill -KILL "$pid" 2>/dev/null || true
	done
	common_teardown
}

# leftover_pids: processes whose command line mentions TMPDIR (the examples give their
# servers paths in their work directory, under TMPDIR).
leftover_pids() {
	local f pid cmd
	for f in /proc/[0-9]*/cmdline; do
		pid=${f#/proc/}
		pid=${pid%/cmdline}
		cmd=$(tr '\0' ' ' 2>/dev/null <"$f") || continue
		[[ $cmd == *"$TMPDIR/"* ]] && echo "$pid"
	done
	return 0
}

# nothing_left: no process of the example remains, and its work directory is gone.
nothing_left() {
	local left rest
	left=$(leftover_pids)
	if [[ -n $left ]]; then
		echo "still running:" >&2
		ps -o pid,args -p "${left//$'\n'/,}" >&2 || true
		return 1
	fi
	rest=$(find "$TMPDIR" -mindepth 1 -maxdepth 1)
	if [[ -n $rest ]]; then
		echo "left behind: $rest" >&2
		return 1
	fi
}

@test "examples/basic_usage.sh: exit 0, an id, a verified manifest, the file back" {
	run -0 --separate-stderr timeout 60 "$EXAMPLES/basic_usage.sh"
	assert_line --regexp '^[0-9a-f]{64}$'
	assert_line $'OK\thello.txt'
	assert_line --regexp $'^[0-9a-f]{64}\t12\thello.txt$'
	assert_line 'hello, peer'
	wait_for -t 5 nothing_left
}

@test "examples/file_sharing_demo.sh 1048576: exit 0, fetched through discovery, verified" {
	run -0 --separate-stderr timeout 120 "$EXAMPLES/file_sharing_demo.sh" 1048576
	assert_line --regexp '^== node A: content id [0-9a-f]{64}$'
	assert_line --regexp $'^127\\.0\\.0\\.1:[0-9]+\tnode-a\t[0-9a-f]{64}\t1\tdirect$'
	assert_line --regexp $'^OK\t.*/fetched\\.bin$'
	assert_line --partial '== demo OK'
	wait_for -t 5 nothing_left
}

@test "examples/network_simulation.sh: three nodes, discovery, fetch, verify, summary" {
	run -0 --separate-stderr timeout 180 "$EXAMPLES/network_simulation.sh" 1048576
	# each node's files
	assert_line --regexp $'^[0-9a-f]{64}\t1048576\tseed-file\\.bin$'
	assert_line --regexp $'^[0-9a-f]{64}\t100000\tnotes-1\\.bin$'
	assert_line --regexp $'^[0-9a-f]{64}\t200000\tnotes-2\\.bin$'
	assert_line --regexp $'^[0-9a-f]{64}\t300000\tphoto-2\\.bin$'
	# the network as p2p-discover -l shows it
	assert_line --regexp $'^127\\.0\\.0\\.1:[0-9]+\tseed\t[0-9a-f]{64}\t1\tdirect$'
	assert_line --regexp $'^127\\.0\\.0\\.1:[0-9]+\tnode-1\t[0-9a-f]{64}\t1\tdirect$'
	assert_line --regexp $'^127\\.0\\.0\\.1:[0-9]+\tnode-2\t[0-9a-f]{64}\t2\tdirect$'
	# the fetch, verified, and the summary
	assert_line --regexp $'^OK\t.*/fetcher/seed-file\\.bin$'
	assert_line --partial 'discovered: 3 nodes'
	assert_line --partial 'fetched: 1048576 bytes'
	assert_line --partial '== simulation OK'
	local id
	id=$(sed -n 's/^== seed: content id //p' <<<"$output")
	[[ $id =~ ^[0-9a-f]{64}$ ]]
	assert_line --regexp "^$id"$'\t1048576\tseed-file\\.bin$'
	assert_stderr --partial 'p2p-fetch: stats'
	wait_for -t 5 nothing_left
}

@test "examples/network_simulation.sh: stopped by SIGTERM midway, it stops its nodes too" {
	"$EXAMPLES/network_simulation.sh" 1048576 >sim.out 2>sim.err 3>&- &
	local sim=$!
	EXTRA_PIDS+=("$sim")
	wait_for -t 60 grep -q '^== node-2: serving' sim.out
	kill -TERM "$sim"
	wait_exit "$sim" 30
	((exit_status != 0))
	run cat sim.out
	refute_output --partial 'simulation OK'
	wait_for -t 10 nothing_left
}

@test "examples/network_simulation.sh: a bad size is a usage error" {
	run -2 --separate-stderr timeout 20 "$EXAMPLES/network_simulation.sh" lots
	assert_stderr --partial usage
	wait_for -t 5 nothing_left
}

@test "examples/internet_simulation.sh: three sites, a dhtnode, found and fetched across them" {
	run --separate-stderr timeout 120 "$EXAMPLES/internet_simulation.sh" 300000
	if ((status == 77)); then
		skip "$stderr"
	fi
	assert_success
	assert_line --regexp $'^10\\.199\\.1\\.2:[0-9]+\tsite-a\t[0-9a-f]{64}\t1\tdirect$'
	assert_line --partial 'OK	fetched by content id through the DHT, 300000 bytes'
	assert_line --partial 'OK	fetched from the node found by its identity'
	assert_line '== simulation OK'
	run ip netns list
	refute_output --partial p2p-inet-
}
