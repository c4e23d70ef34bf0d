#!/usr/bin/env bats
# p2p-discover, and the discovery side of p2p-serve, on loopback. Every test picks its own UDP
# discovery port (DP) and gives it to every server and p2p-discover it runs, so tests (and
# suites run at the same time) never see each other's servers; common.bash keeps the
# datagrams on the host (MINI_P2P_DISCOVERY_ADDR=127.255.255.255).

bats_require_minimum_version 1.5.0

load ../bats/common

ID0=0000000000000000000000000000000000000000000000000000000000000000

setup() {
	common_setup
	DP=$(unused_udp_port)
	# p2p-discover on this test's port, never longer than 60 s whatever it is told
	DISCOVER=(timeout 60 p2p-discover --discovery-port "$DP")
}

# dserve [P2P-SERVE ARGS...]: a server on this test's discovery port.
dserve() {
	start_server --discovery-port "$DP" "$@"
}

# ---- usage ----

@test "--help and -h print usage on stdout, exit 0" {
	local opt
	for opt in --help -h; do
		run -0 --separate-stderr p2p-discover "$opt"
		assert_line --index 0 --partial 'usage: p2p-discover'
		assert_output --partial '--hash'
		assert_output --partial '--discovery-port'
		assert_equal "$stderr" ''
	done
}

@test "-V prints the version" {
	run -0 --separate-stderr p2p-discover -V
	assert_output 'p2p-discover 0.1.0'
}

@test "unknown option: usage on stderr, exit 2" {
	run -2 --separate-stderr "${DISCOVER[@]}" -t 1 --no-such-option
	assert_output ''
	assert_stderr --partial 'usage: p2p-discover'
}

@test "-t out of 0..3600 or not a number: exit 2, nothing on stdout" {
	local t
	for t in 3601 -1 abc '' 5x 99999999999999999999; do
		run -2 --separate-stderr "${DISCOVER[@]}" -t "$t"
		assert_output ''
		[[ -n $stderr ]] || fail "-t '$t': no message on stderr"
	done
	run -2 --separate-stderr "${DISCOVER[@]}" --timeout -1
	run -2 --separate-stderr "${DISCOVER[@]}" -t
}

@test "--hash with a malformed id: exit 2 'malformed content id'" {
	local bad
	for bad in abc "${ID0:1}" "${ID0}0" "g${ID0:1}" "" "${ID0:2} z"; do
		run -2 --separate-stderr "${DISCOVER[@]}" -t 1 --hash "$bad"
		assert_output ''
		assert_stderr "p2p-discover: malformed content id '$bad'"
	done
}

@test "bad -b HOST:PORT or --discovery-port: exit 2" {
	local b
	for b in nohost: 127.0.0.1: 127.0.0.1:0 127.0.0.1:70000 127.0.0.1:abc :; do
		run -2 --separate-stderr timeout 20 p2p-discover --discovery-port "$DP" -t 1 -b "$b"
		assert_output ''
	done
	local p
	for p in 70000 abc -1; do
		run -2 --separate-stderr timeout 20 p2p-discover -t 1 --discovery-port "$p"
		assert_output ''
	done
}

@test "p2p-serve: bad discovery options are usage errors (exit 2)" {
	run -2 --separate-stderr timeout 20 p2p-serve -p 0 --bind 127.0.0.1 --discovery-port 70000 </dev/null
	run -2 --separate-stderr timeout 20 p2p-serve -p 0 --bind 127.0.0.1 --discovery-port "$DP" -b nohost </dev/null
	run -2 --separate-stderr timeout 20 p2p-serve -p 0 --bind 127.0.0.1 --discovery-port "$DP" -b 127.0.0.1:0 </dev/null
	run -2 --separate-stderr timeout 20 p2p-serve -p 0 --bind 127.0.0.1 --discovery-port "$DP" --discovery-interval abc </dev/null
}

@test "a bad peer address is the same usage error for -b and p2p-fetch -p: exit 2, one line naming it" {
	local a why case
	for case in 'nohost:|port must be from 1 to 65535' ':1|want HOST:PORT' \
	    '127.0.0.1:0|port must be from 1 to 65535'; do
		a=${case%%|*}
		why=${case#*|}
		run -2 --separate-stderr timeout 20 p2p-discover --discovery-port "$DP" -t 1 -b "$a" </dev/null
		assert_equal "$stderr" "p2p-discover: bootstrap peer '$a': $why"
		run -2 --separate-stderr timeout 20 p2p-serve -p 0 --bind 127.0.0.1 --discovery-port "$DP" -b "$a" </dev/null
		assert_equal "$stderr" "p2p-serve: bootstrap peer '$a': $why"
		run -2 --separate-stderr timeout 20 p2p-fetch -p "$a" "$ID0" </dev/null
		assert_equal "$stderr" "p2p-fetch: peer '$a': $why"
	done
	# -p takes ID@HOST:PORT, and says what is wrong with the ID; -b takes no ID
	run -2 --separate-stderr timeout 20 p2p-fetch -p "${ID0:1}@127.0.0.1:1" "$ID0" </dev/null
	assert_equal "$stderr" "p2p-fetch: peer '${ID0:1}@127.0.0.1:1': the identity before '@' must be 64 hex digits"
	run -2 --separate-stderr timeout 20 p2p-serve -p 0 --bind 127.0.0.1 --discovery-port "$DP" -b "$ID0@127.0.0.1:1" </dev/null
	assert_stderr --partial "p2p-serve: bootstrap peer '$ID0@127.0.0.1:1': "
}

# ---- finding servers on the host ----

@test "no server: exit 1 'p2p-discover: no peers found', within about -t" {
	local t0 ms
	t0=$(now_ns)
	run -1 --separate-stderr "${DISCOVER[@]}" -t 1
	ms=$(ms_since "$t0")
	assert_output ''
	assert_stderr 'p2p-discover: no peers found'
	((ms < 4000)) || fail "p2p-discover -t 1 ran ${ms} ms"
}

@test "a server started before p2p-discover is found within 1 s (-t 1)" {
	dserve -n early
	local t0 ms
	t0=$(now_ns)
	run -0 --separate-stderr "${DISCOVER[@]}" -t 1
	ms=$(ms_since "$t0")
	assert_output "127.0.0.1:$SERVER_PORT"
	((ms < 4000)) || fail "p2p-discover -t 1 ran ${ms} ms"
}

@test "a server started while p2p-discover runs is found (its start announce or a re-query)" {
	"${DISCOVER[@]}" -t 20 </dev/null >found 2>found.err 3>&- &
	EXTRA_PIDS+=($!)
	sleep 0.3
	dserve -n late
	wait_for -t 5 grep -qxF "127.0.0.1:$SERVER_PORT" found
}

@test "two servers on one host: both found, each printed once" {
	dserve -n one
	local a=127.0.0.1:$SERVER_PORT
	dserve -n two
	local b=127.0.0.1:$SERVER_PORT
	# -t 3: three rounds of queries, each answered by both servers
	run -0 --separate-stderr "${DISCOVER[@]}" -t 3
	assert_line "$a"
	assert_line "$b"
	no_duplicate_lines "$output"
	assert_equal "${#lines[@]}" 2
}

@test "a server on another discovery port is not found" {
	start_server --discovery-port "$(unused_udp_port)" -n elsewhere
	run -1 --separate-stderr "${DISCOVER[@]}" -t 1
	assert_output ''
	assert_stderr 'p2p-discover: no peers found'
}

@test "p2p-serve takes its discovery port from MINI_P2P_DISCOVERY_PORT" {
	MINI_P2P_DISCOVERY_PORT=$DP start_server -n from-env
	run -0 --separate-stderr "${DISCOVER[@]}" -t 1
	assert_output "127.0.0.1:$SERVER_PORT"
}

@test "-l: HOST:PORT, NAME from p2p-serve -n, IDENTITY, NFILES, tab-separated" {
	# Each node a key of its own, so that each line is seen to carry its own node's identity.
	make_file f1 1000 1
	make_file f2 20000 2
	serve_chunked f1 f2 -- --discovery-port "$DP" -n node-one --identity one.pem
	local a=127.0.0.1:$SERVER_PORT ida
	ida=$(server_identity)
	mkdir share
	make_file share/x 100 3
	make_file share/y 200 4
	make_file share/z 300 5
	dserve -n node-two -d share --identity two.pem
	wait_listed "$SERVER_ADDR" $(p2p-chunk --id share | cut -f1)
	local b=127.0.0.1:$SERVER_PORT idb
	idb=$(server_identity)
	dserve -n node-empty --identity empty.pem
	local c=127.0.0.1:$SERVER_PORT idc
	idc=$(server_identity)
	[[ $ida != "$idb" && $idb != "$idc" && $ida != "$idc" ]] || fail "the nodes share an identity"
	run -0 --separate-stderr "${DISCOVER[@]}" -t 2 -l
	assert_equal "${#lines[@]}" 3
	assert_line "$a"$'\tnode-one\t'"$ida"$'\t2\tdirect'
	assert_line "$b"$'\tnode-two\t'"$idb"$'\t3\tdirect'
	assert_line "$c"$'\tnode-empty\t'"$idc"$'\t0\tdirect'
	local line
	for line in "${lines[@]}"; do
		assert_equal "$(awk -F '\t' '{ print NF }' <<<"$line")" 5
	done
	run -0 --separate-stderr "${DISCOVER[@]}" -t 1 --long
	assert_line "$a"$'\tnode-one\t'"$ida"$'\t2\tdirect'
}

@test "-l with --no-tls: IDENTITY is '-'" {
	dserve -n plain --no-tls
	local a=127.0.0.1:$SERVER_PORT
	run -0 --separate-stderr "${DISCOVER[@]}" -t 1 -l --no-tls
	assert_output "$a"$'\tplain\t-\t0\tdirect'
	assert_stderr --partial 'TLS is off'
}

@test "--hash ID: only the server that has the file" {
	make_file f1 30000 1
	make_file f2 40000 2
	serve_chunked f1 -- --discovery-port "$DP" -n has-f1
	local a=127.0.0.1:$SERVER_PORT
	serve_chunked f2 -- --discovery-port "$DP" -n has-f2
	local b=127.0.0.1:$SERVER_PORT
	local id1 id2
	id1=$(p2p-chunk --id f1)
	id2=$(p2p-chunk --id f2)
	run -0 --separate-stderr "${DISCOVER[@]}" -t 2 --hash "$id1"
	assert_output "$a"
	run -0 --separate-stderr "${DISCOVER[@]}" -t 2 --hash "$id2"
	assert_output "$b"
	# upper case is accepted
	run -0 --separate-stderr "${DISCOVER[@]}" -t 2 --hash "${id2^^}"
	assert_output "$b"
	# without --hash: both
	run -0 --separate-stderr "${DISCOVER[@]}" -t 2
	assert_line "$a"
	assert_line "$b"
}

@test "--hash ID nobody has: exit 1 'no peers found'" {
	make_file f1 30000 1
	serve_chunked f1 -- --discovery-port "$DP"
	run -1 --separate-stderr "${DISCOVER[@]}" -t 1 --hash "$ID0"
	assert_output ''
	assert_stderr 'p2p-discover: no peers found'
}

@test "--no-announce: that server is not found, another one is" {
	dserve -n quiet --no-announce
	local quiet=127.0.0.1:$SERVER_PORT
	dserve -n loud
	local loud=127.0.0.1:$SERVER_PORT
	run -0 --separate-stderr "${DISCOVER[@]}" -t 2
	assert_output "$loud"
	refute_line "$quiet"
	stop_server "$SERVER_PID"
	run -1 --separate-stderr "${DISCOVER[@]}" -t 1
	assert_output ''
	assert_stderr 'p2p-discover: no peers found'
}

# ---- the reader going away ----

@test "p2p-discover -t 30 | head -1 returns once a peer is printed, long before -t" {
	dserve -n first
	local t0 ms
	t0=$(now_ns)
	run -0 --separate-stderr timeout 20 sh -c 'p2p-discover --discovery-port "$1" -t 30 </dev/null | head -n 1' _ "$DP"
	ms=$(ms_since "$t0")
	assert_output "127.0.0.1:$SERVER_PORT"
	((ms < 10000)) || fail "p2p-discover -t 30 | head -1 took ${ms} ms"
}

@test "no server: p2p-discover -t 30 | true returns at once, long before -t" {
	local t0 ms
	t0=$(now_ns)
	run -0 timeout 20 sh -c 'p2p-discover --discovery-port "$1" -t 30 </dev/null | true' _ "$DP"
	ms=$(ms_since "$t0")
	((ms < 10000)) || fail "p2p-discover -t 30 | true took ${ms} ms"
}

@test "the reader goes away while servers exist but nothing new arrives: exits long before -t" {
	dserve -n one
	local t0 ms
	# the peer is printed at once into a pipe nobody reads after 'true' ended
	t0=$(now_ns)
	run -0 timeout 20 sh -c 'p2p-discover --discovery-port "$1" -t 30 </dev/null | true' _ "$DP"
	ms=$(ms_since "$t0")
	((ms < 10000)) || fail "took ${ms} ms"
}

# ---- bootstrap and peer exchange ----

@test "bootstrap: -b B finds B and the peer B joined through (both --no-announce)" {
	dserve -n node-a --no-announce
	local a=127.0.0.1:$SERVER_PORT
	dserve -n node-b --no-announce -b "$a"
	local b=127.0.0.1:$SERVER_PORT
	local other
	other=$(unused_udp_port)
	wait_for discover_finds 1 "$a" "$b" -- --discovery-port "$other" -b "$b"
	run -0 --separate-stderr timeout 20 p2p-discover --discovery-port "$other" -t 1 -b "$b"
	assert_line "$a"
	assert_line "$b"
	no_duplicate_lines "$output"
	assert_equal "${#lines[@]}" 2
}

@test "bootstrap: the peer joined through learns the joiner (-b A finds B)" {
	dserve -n node-a --no-announce
	local a=127.0.0.1:$SERVER_PORT
	dserve -n node-b --no-announce -b "$a"
	local b=127.0.0.1:$SERVER_PORT
	local other
	other=$(unused_udp_port)
	wait_for discover_finds 1 "$a" "$b" -- --discovery-port "$other" -b "$a"
	no_duplicate_lines "$DISCOVERED"
}

@test "peer exchange is transitive: C joined B, B joined A; -b C finds A, B and C" {
	dserve -n node-a --no-announce
	local a=127.0.0.1:$SERVER_PORT
	dserve -n node-b --no-announce -b "$a"
	local b=127.0.0.1:$SERVER_PORT
	dserve -n node-c --no-announce -b "$b"
	local c=127.0.0.1:$SERVER_PORT
	local other
	other=$(unused_udp_port)
	wait_for discover_finds 1 "$a" "$b" "$c" -- --discovery-port "$other" -b "$c"
	no_duplicate_lines "$DISCOVERED"
	assert_equal "$(wc -l <<<"$DISCOVERED")" 3
}

@test "--quick: stops once A, B and C (learned through -b C) have answered, long before -t 60" {
	dserve -n node-a --no-announce
	local a=127.0.0.1:$SERVER_PORT
	dserve -n node-b --no-announce -b "$a"
	local b=127.0.0.1:$SERVER_PORT
	dserve -n node-c --no-announce -b "$b"
	local c=127.0.0.1:$SERVER_PORT
	local other
	other=$(unused_udp_port)
	# B and C know their peers once they joined
	wait_for discover_finds 1 "$a" "$b" "$c" -- --discovery-port "$other" -b "$c"
	# 60 s would outlast the timeout: only stopping early ends it in time
	run -0 --separate-stderr timeout 30 p2p-discover --quick -t 60 --discovery-port "$other" -b "$c"
	assert_line "$a"
	assert_line "$b"
	assert_line "$c"
	run -0 --separate-stderr timeout 30 p2p-discover --quick -t 60 -l --discovery-port "$other" -b "$c"
	assert_line --regexp "^$c	node-c	[0-9a-f]{64}	"
	assert_line --regexp "^$a	node-a	[0-9a-f]{64}	"
}

@test "-t 0: --quick within the default 5 s; a LAN server is found; --quick is in --help and the man page" {
	make_file f1 30000 1
	serve_chunked f1 -- --discovery-port "$DP"
	local a=127.0.0.1:$SERVER_PORT
	run -0 --separate-stderr timeout 30 "${DISCOVER[@]}" -t 0
	assert_output "$a"
	run -0 --separate-stderr timeout 30 "${DISCOVER[@]}" --quick --hash "$(p2p-chunk --id f1)"
	assert_output "$a"
	# a bootstrap peer that never answers is waited for until the timeout, then given up
	run -1 --separate-stderr timeout 30 p2p-discover --quick -t 2 --discovery-port "$(unused_udp_port)" -b "127.0.0.1:$(unused_port)"
	run -0 p2p-discover --help
	assert_output --partial '--quick'
	grep -q 'Fl -quick' "$BATS_TEST_DIRNAME/../docs/man/p2p-discover.1"
}

@test "bootstrap with -l: the names of peers found through PEERS" {
	dserve -n node-a --no-announce
	local a=127.0.0.1:$SERVER_PORT
	dserve -n node-b --no-announce -b "$a"
	local b=127.0.0.1:$SERVER_PORT
	local other
	other=$(unused_udp_port)
	wait_for discover_finds 1 "$a" "$b" -- --discovery-port "$other" -b "$b"
	run -0 --separate-stderr timeout 20 p2p-discover --discovery-port "$other" -t 1 -l -b "$b"
	# The two share this test's key (~/.config/p2p/identity.pem), so one identity.
	local id
	id=$(server_identity)
	assert_line "$a"$'\tnode-a\t'"$id"$'\t0\tdirect'
	assert_line "$b"$'\tnode-b\t'"$id"$'\t0\tdirect'
}

@test "bootstrap peer unreachable: exit 1, no peers found" {
	local dead
	dead=127.0.0.1:$(unused_port)
	run -1 --separate-stderr "${DISCOVER[@]}" -t 1 -b "$dead"
	assert_output ''
	assert_stderr --partial 'p2p-discover: no peers found'
}

# ---- with p2p-fetch ----

@test "p2p-discover | p2p-fetch ID > out: the file arrives and the pipeline ends" {
	make_file f 3M 7
	local id
	id=$(p2p-chunk --id f)
	serve_chunked f -- --discovery-port "$DP" -n seed
	dserve -n empty-node
	run -0 --separate-stderr timeout 30 sh -c 'p2p-discover --discovery-port "$1" </dev/null | p2p-fetch "$2" >out' _ "$DP" "$id"
	cmp f out
	run -0 --separate-stderr p2p-verify "$id" out
	assert_output $'OK\tout'
}

@test "p2p-discover --hash ID | p2p-fetch -o out ID, from two servers" {
	make_file f 4M 8
	local id
	id=$(p2p-chunk --id f)
	serve_chunked f -- --discovery-port "$DP" -n seed-1
	serve_chunked f -- --discovery-port "$DP" -n seed-2
	run -0 --separate-stderr timeout 30 sh -c 'p2p-discover --discovery-port "$1" --hash "$2" </dev/null | p2p-fetch --stats -o out "$2"' _ "$DP" "$id"
	cmp f out
	local used
	used=$(stats_field "$stderr" peers_used)
	((used >= 1))
}
