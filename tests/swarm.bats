#!/usr/bin/env bats
# Swarming: a fetch to a file serves what it has verified while it downloads, so one seed can
# feed many fetchers. The seed's upload is capped (--max-upload-rate) where the test is about
# how much it uploads: on loopback every link is as fast as the CPU, and a seed with no limit
# is as good a source as any fetcher; a real seed's uplink is what swarming saves.

bats_require_minimum_version 1.5.0

load ../bats/common

setup() {
	common_setup
	# Each test has its own discovery port: fetchers answer queries on it.
	MINI_P2P_DISCOVERY_PORT=$(unused_udp_port)
	export MINI_P2P_DISCOVERY_PORT
}

# start_fetch NAME ARGS...: p2p-fetch -v --stats ARGS in the background, stdout to NAME.out and
# stderr to NAME.err; records its PID in FETCH_PIDS (and EXTRA_PIDS, for teardown).
start_fetch() {
	local name=$1
	shift
	p2p-fetch -v --stats "$@" >"$name.out" 2>"$name.err" 3>&- &
	FETCH_PIDS+=("$!")
	FETCH_NAMES+=("$name")
	EXTRA_PIDS+=("$!")
}
FETCH_PIDS=()
FETCH_NAMES=()

# fetch_port NAME: the port the fetch writing NAME.err serves on (it says so at -v).
fetch_port() {
	wait_for grep -q 'sharing on port [0-9]' "$1.err" || return 1
	grep -o 'sharing on port [0-9]*' "$1.err" | head -1 | grep -o '[0-9]*$'
}

# wait_fetches SECONDS: wait for every fetch started; fail unless each exited 0, showing the
# end of the log of one that did not.
wait_fetches() {
	local i pid name
	for i in "${!FETCH_PIDS[@]}"; do
		pid=${FETCH_PIDS[$i]} name=${FETCH_NAMES[$i]}
		wait_exit "$pid" "$1" || fail "fetch $name ($pid) still running after $1 s"
		if [[ $exit_status != 0 ]]; then
			tail -n 15 "$name.err" >&2
			fail "fetch $name ($pid) exited $exit_status"
		fi
	done
}

@test "1 seed (upload capped) and 6 fetchers on 64 MiB: identical files; the seed uploads at most 2.5x the file" {
	make_file big 64M 1
	serve_chunked big -- --no-announce --stats --max-upload-rate 16M
	local id seed=$SERVER_PID
	id=$(p2p-chunk --id big)
	for i in 1 2 3 4 5 6; do
		start_fetch "f$i" -T 30 -p "$SERVER_ADDR" -o "f$i" "$id"
	done
	wait_fetches 60
	for i in 1 2 3 4 5 6; do
		cmp big "f$i" || fail "f$i differs"
	done
	stop_server "$seed"
	local line out
	line=$(grep 'stats' "$SERVER_ERR")
	out=$(stats_field "$line" bytes_out)
	echo "seed: $line" >&2
	cat f*.err | grep stats >&2
	((out <= 64 * 1048576 * 5 / 2)) ||
		fail "the seed uploaded $out bytes, over 2.5 times the file"
	# The fetchers really did serve each other.
	local served=0
	for i in 1 2 3 4 5 6; do
		served=$((served + $(stats_field "$(grep stats "f$i.err")" bytes_out)))
	done
	((served >= 64 * 1048576 * 6 - out)) ||
		fail "fetchers uploaded $served bytes; with the seed's $out, not 6 files"
}

@test "a fetcher killed mid-swarm (SIGKILL) does not stall the others" {
	make_file big 32M 2
	serve_chunked big -- --no-announce --max-upload-rate 8M
	local id
	id=$(p2p-chunk --id big)
	for i in 1 2 3 4; do
		start_fetch "f$i" -T 20 -p "$SERVER_ADDR" -o "f$i" "$id"
	done
	local victim=${FETCH_PIDS[0]}
	# Kill it once it holds part of the file, and so is serving others.
	wait_for -t 20 test -s f1.part
	sleep 0.5
	kill -KILL "$victim"
	wait "$victim" 2>/dev/null || true
	FETCH_PIDS=("${FETCH_PIDS[@]:1}")
	wait_fetches 60
	for i in 2 3 4; do
		cmp big "f$i" || fail "f$i differs"
	done
}

@test "--seed: a complete fetch goes on serving until SIGTERM, then exits 0" {
	make_file big 4M 3
	serve_chunked big -- --no-announce
	local id seed=$SERVER_PID
	id=$(p2p-chunk --id big)
	start_fetch a -T 10 --seed -p "$SERVER_ADDR" -o a "$id"
	local a_pid=${FETCH_PIDS[0]} port
	port=$(fetch_port a)
	wait_for -t 20 test -f a
	wait_for grep -q 'seeding' a.err
	pid_alive "$a_pid" || fail "the seeding fetch exited"
	stop_server "$seed"
	# The first seed is gone: the file comes from the fetcher that kept seeding.
	run -0 p2p-fetch -T 10 -p "127.0.0.1:$port" -o b "$id"
	cmp big b
	kill -TERM "$a_pid"
	wait_exit "$a_pid" 10
	assert_equal "$exit_status" 0
	grep -q 'stopped seeding' a.err
}

@test "a partial fetcher answers INTERESTED with what it holds, and is found by p2p-discover --hash" {
	make_file big 32M 4
	serve_chunked -c 256K big -- --no-announce --max-upload-rate 4M
	local id port
	id=$(p2p-chunk --id big)
	# --seed: under load the swarm step below can outlast the rest of the fetch, and the
	# node must still be there for p2p-discover after it
	start_fetch a -T 30 --seed -p "$SERVER_ADDR" -o a "$id"
	port=$(fetch_port a)
	wait_for -t 20 test -s a.part
	run -0 python3 "$P2P_REF" swarm "127.0.0.1:$port" "$id"
	echo "$output" >&2
	assert_line --regexp '^map 262144 [0-9]+/128$'
	local held=${lines[0]#map 262144 }
	held=${held%/128}
	((held > 0 && held < 128)) || fail "held $held of 128: not a partial file"
	assert_line --regexp "^answers [0-9]+ CHUNK, [01] CANCELLED\$"
	run -0 p2p-discover -t 5 --hash "$id" --discovery-port "$MINI_P2P_DISCOVERY_PORT"
	assert_line --regexp "^[0-9.]+:$port\$"
}

@test "CANCEL: a request still queued is answered ERROR CANCELLED, in order" {
	# 32 MiB asked for at once and not read until the CANCEL is sent: more than the socket
	# buffers hold, so the last request is still queued when its CANCEL comes. Chunks of 1 MiB,
	# not more: the server stops reading requests while more than 4 MiB of answers wait, and
	# under TLS a chunk waits whole (nothing goes to the kernel at once, as sendfile does), so
	# the CANCEL behind a 4 MiB chunk would be read only once every chunk had gone.
	make_file big 32M 5
	serve_chunked -c 1M big -- --no-announce
	run -0 python3 "$P2P_REF" swarm "$SERVER_ADDR" "$(p2p-chunk --id big)"
	assert_line 'map 1048576 32/32'
	assert_line 'answers 31 CHUNK, 1 CANCELLED'
}

@test "--max-peers 2 holds on both sides of a fetcher in a swarm" {
	make_file big 16M 6
	serve_chunked big -- --no-announce --max-upload-rate 8M
	local id
	id=$(p2p-chunk --id big)
	start_fetch limited -v -T 30 --max-peers 2 -p "$SERVER_ADDR" -o limited "$id"
	for i in 1 2 3 4; do
		start_fetch "f$i" -T 30 -p "$SERVER_ADDR" -o "f$i" "$id"
	done
	wait_fetches 60
	cmp big limited
	local line
	line=$(grep stats limited.err)
	echo "$line" >&2
	(($(stats_field "$line" peers_used) <= 2)) || fail "used more than 2 peers"
	# Its server refused connections past the limit rather than take a third.
	if grep -Eq 'refused a connection: ([3-9]|[0-9]{2,}) peers' limited.err; then
		fail "more than 2 peers connected to it"
	fi
}

@test "a fetch never connects to itself, nor twice to one peer" {
	make_file big 1M 7
	serve_chunked big -- --no-announce
	local id self
	id=$(p2p-chunk --id big)
	self=$(unused_port)
	run -0 p2p-fetch -vv --stats --port "$self" -p "127.0.0.1:$self" \
	    -p "$SERVER_ADDR" -p "localhost:$SERVER_PORT" -o out "$id"
	cmp big out
	assert_output --partial "127.0.0.1:$self: ourselves; not connecting"
	local line
	line=$(grep stats <<<"$output")
	assert_equal "$(stats_field "$line" peers_used)" 1
	assert_equal "$(stats_field "$line" peers_in)" 0
	# One connection to the seed, under whichever of its two names came first: libproto's
	# "conn" module logs each connection it makes once (the tool's own line says it too).
	assert_equal "$(grep -cE " conn: [^ ]+: connecting\$" <<<"$output")" 1
}

# conns_between PID1 PID2: the established TCP connections between the two processes (each
# counted once: those of PID1 whose far end is a socket of PID2's).
conns_between() {
	local theirs
	theirs=$(ss -tnpH state established | grep "pid=$2," | awk '{ print $3 }' |
	    sed 's/.*://' | sort -u)
	ss -tnpH state established | grep "pid=$1," | awk '{ print $4 }' | sed 's/.*://' |
	    grep -cxF -f <(printf '%s\n' "$theirs") || true
}

@test "two fetchers swarming from a capped seed hold one connection between them, and both ask on it" {
	make_file big 8M 11
	serve_chunked big -- --no-announce --max-upload-rate 2M
	local id
	id=$(p2p-chunk --id big)
	start_fetch f1 -vv -T 30 --seed -p "$SERVER_ADDR" -o f1 "$id"
	start_fetch f2 -vv -T 30 --seed -p "$SERVER_ADDR" -o f2 "$id"
	local p1=${FETCH_PIDS[0]} p2=${FETCH_PIDS[1]} port1 port2
	port1=$(fetch_port f1)
	port2=$(fetch_port f2)
	wait_for -t 60 grep -q 'seeding' f1.err
	wait_for -t 60 grep -q 'seeding' f2.err
	cmp big f1
	cmp big f2
	# Complete, each let go of the connection it asked on; the nodes keep it, to answer.
	local n
	n=$(conns_between "$p1" "$p2")
	echo "connections between the fetchers: $n" >&2
	assert_equal "$n" 1
	# Whichever made it, the other asked there too rather than connect again; had both
	# connected at once, one of the two connections was dropped by both.
	local dials=0 dropped=0
	dials=$(($(grep -cE " conn: 127\.0\.0\.1:$port2: connecting\$" f1.err || true) +
	    $(grep -cE " conn: 127\.0\.0\.1:$port1: connecting\$" f2.err || true)))
	dropped=$(cat f1.err f2.err | grep -c 'connected both ways; keeping the one it made' || true)
	echo "dials $dials, dropped $dropped" >&2
	assert_equal $((dials - dropped)) 1
	grep -q 'asking on the connection it made' f1.err f2.err ||
		fail "neither asked on the connection the other made"
	kill -TERM "$p1" "$p2"
	wait_exit "$p1" 10
	wait_exit "$p2" 10
	# Chunks went between them, on that one connection.
	local from1 from2
	from1=$(stats_field "$(grep stats f1.err)" from)
	from2=$(stats_field "$(grep stats f2.err)" from)
	echo "f1 from $from1; f2 from $from2" >&2
	[[ $from1 == *":$port2/"* || $from2 == *":$port1/"* ]] ||
		fail "neither fetched from the other"
}

@test "an old peer (the reference: version 1, no duplex cap) works both ways with a sharing fetch" {
	make_file big 1M 12
	p2p-chunk big >m
	local id
	id=$(p2p-chunk --id big)
	start_fake_peer m honest
	local ref=$SERVER_ADDR
	# The fetch downloads from it: the reference's HELLO has no duplex cap, so requests flow
	# from the fetch only, and the fetch's node never answers on that connection.
	start_fetch a -vv -T 20 --seed -p "$ref" -o a "$id"
	local port pid=${FETCH_PIDS[0]}
	port=$(fetch_port a)
	wait_for -t 30 grep -q 'seeding' a.err
	cmp big a
	if grep -q 'answered on a connection this node made' a.err; then
		fail "the node answered on the connection to an old peer"
	fi
	# And the old peer asks the fetch, which says it may ask back (caps 127) yet answers it as
	# any node answers.
	run -0 python3 "$P2P_REF" hello "127.0.0.1:$port"
	assert_output --regexp '^\[0, 1, 127, '
	run -0 python3 "$P2P_REF" list "127.0.0.1:$port"
	assert_output --partial "$id"
	run -0 python3 "$P2P_REF" swarm "127.0.0.1:$port" "$id"
	assert_line --regexp '^map [0-9]+ ([0-9]+)/\1$'
	kill -TERM "$pid"
	wait_exit "$pid" 10
}

@test "--no-share: a fetch to a file does not listen; to stdout it never does" {
	make_file big 1M 8
	serve_chunked big -- --no-announce
	local id
	id=$(p2p-chunk --id big)
	run -0 p2p-fetch -v --no-share -p "$SERVER_ADDR" -o out "$id"
	refute_output --partial 'sharing on port'
	run -0 --separate-stderr p2p-fetch -v -p "$SERVER_ADDR" "$id"
	[[ $stderr != *'sharing on port'* ]]
}

@test "--seed without -o, or with --no-share: a usage error (exit 2)" {
	run -2 p2p-fetch --seed -p 127.0.0.1:1 "$(printf '%064d' 0)"
	assert_output --partial 'needs -o FILE'
	run -2 p2p-fetch --seed --no-share -o x -p 127.0.0.1:1 "$(printf '%064d' 0)"
	assert_output --partial 'needs -o FILE'
}

# swarm NAME COUNT ARGS...: COUNT fetches NAME1 ... NAMECOUNT, p2p-fetch -v --stats ARGS -o NAMEi.
swarm() {
	local name=$1 n=$2 i
	shift 2
	for ((i = 1; i <= n; i++)); do
		start_fetch "$name$i" "$@" -o "$name$i"
	done
}

# swarm_to_the_end N ARGS...: N fetchers f1..fN with --seed at 1M up (ARGS: their peers and
# the id), each kept until all are complete, then stopped with SIGTERM; fails unless each
# completed and exited 0.
swarm_to_the_end() {
	local n=$1 i pid
	shift
	swarm f "$n" -T 30 --seed --max-upload-rate 1M "$@"
	for i in $(seq "$n"); do
		wait_for -t 240 test -f "f$i" || fail "f$i not complete"
	done
	for pid in "${FETCH_PIDS[@]}"; do
		kill -TERM "$pid"
	done
	wait_fetches 30
}

@test "20 fetchers from one capped seed: identical files; the seed uploads under 3 copies" {
	make_file big 4M 21
	serve_chunked big -- --no-announce --stats --max-upload-rate 1M
	local id seed=$SERVER_PID
	id=$(p2p-chunk --id big)
	swarm f 20 -T 30 --max-upload-rate 1M -p "$SERVER_ADDR" "$id"
	wait_fetches 240
	for i in $(seq 20); do
		cmp big "f$i" || fail "f$i differs"
	done
	stop_server "$seed"
	local out
	out=$(stats_field "$(grep stats "$SERVER_ERR")" bytes_out)
	echo "seed: $(grep stats "$SERVER_ERR")" >&2
	# Super-seeding and upload slots: each chunk leaves the seed about once, and the
	# fetchers pass it on. Newest-first PEERS answers and a seed asked by all made it 6 or 7.
	# Under the sanitizers every process runs several times slower while the seed's rate
	# stays: the fetchers fall behind the seed, and the copies count says nothing.
	is_asan_build || ((out < 3 * 4194304)) ||
		fail "the seed uploaded $out bytes, 3 copies or more"
}

@test "every fetcher that stayed to the end uploaded something" {
	make_file big 4M 22
	serve_chunked big -- --no-announce --max-upload-rate 1M
	local id
	id=$(p2p-chunk --id big)
	# --seed: each stays until the last is done, so that all of them were there the whole time.
	swarm_to_the_end 12 -p "$SERVER_ADDR" "$id"
	local idle=0 line
	for i in $(seq 12); do
		cmp big "f$i" || fail "f$i differs"
		line=$(grep stats "f$i.err")
		echo "f$i: $line" >&2
		(($(stats_field "$line" chunks_out) > 0)) || idle=$((idle + 1))
	done
	((idle == 0)) || fail "$idle of 12 fetchers uploaded no chunk"
}

@test "many fetchers of a slow seed all complete: slow is not failed" {
	# A seed at 32 KiB/s for 24 fetchers of 16 chunks, each fetcher with a 6 s timeout:
	# the seed's upload shared by all is slow for each, and a fetcher it chokes gets
	# nothing from it for a while. Each still completes, from the seed or the others
	# (where a fetcher gave up on a seed it had, "no progress" or "every peer failed",
	# and one that waited long for the manifest, "no peer answered").
	make_file big 256K 23
	serve_chunked -c 16K big -- --no-announce --stats --max-upload-rate 32K
	local id
	id=$(p2p-chunk --id big)
	# Under the sanitizers a process does in 4 s what it does in about one here: the same
	# patience is a longer timeout there. On a loaded machine 12 s was not enough for a
	# fetcher's manifest to come through the seed's 32 KiB/s beside 24 TLS handshakes
	# (2 runs in 5).
	# A loaded machine (two test runs at once) made 4 s too short for the manifest to
	# come, and once 6 s (CI, the fetcher's first request unanswered): 10 s, still less
	# than the 12 s a choked fetcher waits for the seed.
	local t=10
	is_asan_build && t=20
	swarm f 24 -T "$t" -p "$SERVER_ADDR" "$id"
	wait_fetches 240
	for i in $(seq 24); do
		cmp big "f$i" || fail "f$i differs"
	done
}

@test "a super-seeding seed asks each sharing fetcher what it holds, and hears of every chunk it gets" {
	make_file big 2M 23
	serve_chunked big -c 65536 -- --no-announce -vv --max-upload-rate 1M
	local id seed=$SERVER_PID
	id=$(p2p-chunk --id big)
	# --seed: each stays until the last is done, so that its last HAVEs reach the seed.
	swarm_to_the_end 6 -p "$SERVER_ADDR" "$id"
	stop_server "$seed"
	local peers peer haves held watched=0
	peers=$(sed -n 's/.* \([0-9.]*:[0-9]*\): super-seeded, and asked what it holds$/\1/p' "$SERVER_ERR")
	for peer in $peers; do
		# What it held when it answered, and a HAVE for each chunk it got after: all 32.
		held=$(sed -n "s/.* $peer: holds \([0-9]*\) of 32 chunks; it tells us of each it gets\$/\1/p" "$SERVER_ERR")
		[[ -n $held ]] || fail "$peer: no HAVE_MAP answer seen"
		haves=$(grep -c "conn: $peer: < HAVE rid 0" "$SERVER_ERR" || true)
		echo "# $peer: held $held, then $haves HAVEs" >&3
		((held + haves >= 32)) || fail "$peer: held $held, then $haves HAVEs, of 32 chunks"
		watched=$((watched + 1))
	done
	# Every fetcher that came while 3 others were there is super-seeded and watched.
	((watched >= 3)) || fail "$watched fetchers watched"
}

# redundant_haves LOG: for each connection in a fetcher's -vv log, "accepted|made PEER N": the
# HAVEs it sent there for a chunk the peer had told it of (a HAVE read there before).
redundant_haves() {
	awk '
	/ conn: [0-9.]+:[0-9]+: connecting$/ { p = $(NF - 1); sub(/:$/, "", p); made[p] = 1 }
	/ conn: [0-9.]+:[0-9]+: [<>] HAVE rid 0, / {
		for (i = 1; i <= NF; i++) if ($i == "conn:") peer = $(i + 1)
		sub(/:$/, "", peer)
		for (i = 1; i <= NF; i++) if ($i == "chunk") chunk = $(i + 1)
		sub(/,$/, "", chunk)
		seen[peer] = 1
		if ($0 ~ / < HAVE /) told[peer, chunk] = 1
		else if ((peer, chunk) in told) extra[peer]++
	}
	END { for (p in seen) print ((p in made) ? "made" : "accepted"), p, extra[p] + 0 }' "$1"
}

@test "a sharing fetcher leaves out HAVEs a peer that connected to it does not need; where it connected, all go" {
	make_file big 8M 31
	serve_chunked big -c 65536 -- --no-announce --max-upload-rate 2M
	local id
	id=$(p2p-chunk --id big)
	start_fetch f1 -vv -T 30 --seed -p "$SERVER_ADDR" -o f1 "$id"
	start_fetch f2 -vv -T 30 --seed -p "$SERVER_ADDR" -o f2 "$id"
	wait_for -t 60 grep -q 'seeding' f1.err
	wait_for -t 60 grep -q 'seeding' f2.err
	kill -TERM "${FETCH_PIDS[@]}"
	wait_fetches 10
	cmp big f1
	cmp big f2
	local f how peer n accepted=0
	for f in f1 f2; do
		while read -r how peer n; do
			echo "# $f, on the connection it $how with $peer: $n HAVEs the peer had told it of" >&3
			[[ $how == made ]] && continue
			accepted=$((accepted + 1))
			assert_equal "$n" 0
		done < <(redundant_haves "$f.err")
	done
	((accepted >= 1)) || fail "neither fetcher took a connection from the other"
}
