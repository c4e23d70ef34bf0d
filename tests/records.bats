#!/usr/bin/env bats
# Signed peer records (docs/PROTOCOL.md section 4, "Peer records" and "The peer table"): a
# node's HELLO carries its record, a node passes on what it knows of others with their records,
# and a fetch that learns a peer through PEERS with a record connects to it only as the
# record's identity, so another node answering at that address is refused; a fetch asks PEERS
# about its file, and is named first the peers that fetched it. Old peers (the
# reference, bats/p2p_ref.py, speaks version 1 without records) still exchange PEERS with new
# ones both ways. Each node here has a key of its own (--identity), outside what it shares.

bats_require_minimum_version 1.5.0

load ../bats/common

# new_key FILE: a fresh Ed25519 key in FILE, mode 0600.
new_key() {
	(umask 077 && openssl genpkey -algorithm ed25519 -out "$1" 2>/dev/null)
}

# key_identity KEYFILE: the identity of a key, by the openssl command.
key_identity() {
	openssl pkey -in "$1" -pubout -outform DER | sha256sum | cut -d ' ' -f 1
}

# node NAME [P2P-SERVE ARGS...]: a p2p-serve of share/ with key keys/NAME.pem, no discovery.
node() {
	local name=$1
	shift
	[[ -e keys/$name.pem ]] || new_key "keys/$name.pem"
	start_server --no-announce --identity "keys/$name.pem" -n "$name" -d share "$@"
}

# peers_of ADDR: the peers ADDR names in PEERS_REPLY, asked by the reference (version 1, no
# records cap), one HOST:PORT a line; fails when the reference cannot read the answer.
peers_of() {
	python3 "$P2P_REF" peers "$1"
}

# names ADDR PEER: ADDR passes PEER on.
names() {
	peers_of "$1" | grep -qx "$2"
}

# names_many ADDR N: ADDR passes on N peers or more.
names_many() {
	(($(peers_of "$1" | wc -l) >= $2))
}

# boot_rounds ERRFILE N: the node logging to ERRFILE (-v) has asked its bootstrap peers N times.
boot_rounds() {
	(($(grep -c 'bootstrap: [0-9]* peers known' "$1") >= $2))
}

setup() {
	common_setup
	mkdir -p keys share
	make_file share/f 2M 7
	ID=$(ref_id share/f)
}

@test "a node's HELLO carries its record under \"rec\", and caps bit 2; with --no-tls, neither" {
	node a
	run -0 python3 "$P2P_REF" hello "$SERVER_ADDR"
	# [0, 1, caps, name, port, nfiles, nil (no auth), {..., "rec": <hex>}]: "rec" the last key
	assert_output --regexp '^\[0, 1, 127, "a", [0-9]+, 1, null, \{.*, "rec": "92c4[0-9a-f]+"\}\]$'
	start_server --no-announce --no-tls -n b -d share
	run -0 env P2P_REF_TLS=0 python3 "$P2P_REF" hello "$SERVER_ADDR"
	assert_output --regexp '^\[0, 1, 127, "b", [0-9]+, 1, null, \{.*\}\]$'
	refute_output --partial '"rec"'
}

@test "a fetch learns a peer through PEERS with its record and pins it: an impostor at its address is refused" {
	node s
	local s=$SERVER_ADDR
	node b -b "$s"
	local b=$SERVER_ADDR b_pid=$SERVER_PID b_port=$SERVER_PORT
	wait_for names "$s" "$b"
	stop_server "$b_pid"
	# Another node, with the same file, where b was: only its identity differs.
	new_key keys/impostor.pem
	start_server --no-announce --identity keys/impostor.pem -n impostor -d share --stats \
		-p "$b_port" --bind 127.0.0.1
	local impostor_pid=$SERVER_PID impostor_err=$SERVER_ERR
	run -0 --separate-stderr timeout 60 p2p-fetch -p "$s" --max-download-rate 512K --stats \
		-o out "$ID"
	cmp out share/f
	# It connected to b's address asking for b's identity, got the impostor's, and said so.
	local want="p2p-fetch: $b: peer identity is not the one expected: identity"
	want+=" $(key_identity keys/impostor.pem), not the $(key_identity keys/b.pem) asked for;"
	assert_stderr_line "$want dropping peer"
	assert_equal "$(stats_field "$stderr" connects)" 2
	stop_server "$impostor_pid"
	run -0 cat "$impostor_err"
	assert_equal "$(stats_field "$output" chunks_out)" 0
	assert_equal "$(stats_field "$output" manifests_out)" 0
}

@test "the same, b still there: the fetch learns b through PEERS and fetches from it as b" {
	# s slow, so that the fetch cannot be over before b is asked
	node s --max-upload-rate 256K
	local s=$SERVER_ADDR
	node b -b "$s"
	local b=$SERVER_ADDR
	wait_for names "$s" "$b"
	run -0 --separate-stderr timeout 60 p2p-fetch -p "$s" --stats -o out "$ID"
	cmp out share/f
	[[ $(stats_field "$stderr" from) == *"$b/"* ]]
	assert_equal "$(stats_field "$stderr" peers_dropped)" 0
}

@test "an old peer asks a new one for PEERS: [host, port] entries it can read, records left out" {
	node s
	local s=$SERVER_ADDR
	node b -b "$s"
	local b=$SERVER_ADDR
	node c -b "$s"
	local c=$SERVER_ADDR
	# The reference takes an entry apart as exactly two elements: a record would break it.
	wait_for names "$s" "$b"
	wait_for names "$s" "$c"
	run -0 peers_of "$s"
	assert_equal "${#lines[@]}" 2
}

@test "a new fetch asks an old peer for PEERS with an id: its version-1 answer is taken, and the peer it names fetched from" {
	node s
	local s=$SERVER_ADDR
	p2p-chunk share/f >m
	export P2P_REF_PEERS=$s
	# 250 ms a chunk: the reference cannot finish before s is asked, even under a sanitizer.
	P2P_REF_SLOW_MS=250 start_fake_peer m slow
	local ref=$SERVER_ADDR
	run -0 --separate-stderr timeout 60 p2p-fetch -p "$ref" --stats -o out "$ID"
	cmp out share/f
	# s was named by the reference alone, unsigned, and served too.
	[[ $(stats_field "$stderr" from) == *"$s/"* ]]
	assert_equal "$(stats_field "$stderr" peers_dropped)" 0
}

@test "bootstrap hearsay is passed on with its record only: signed, C names A; without records (--no-tls), it does not" {
	node a
	local a=$SERVER_ADDR
	node b -b "$a"
	local b=$SERVER_ADDR
	node c -b "$b"
	local c=$SERVER_ADDR
	# c met b itself, and heard of a from b, with a's record.
	wait_for names "$c" "$b"
	wait_for names "$c" "$a"

	export MINI_P2P_NO_TLS=1
	start_server --no-announce -n a2 -d share
	local a2=$SERVER_ADDR
	start_server --no-announce -n b2 -d share -b "$a2"
	local b2=$SERVER_ADDR
	start_server --no-announce -n c2 -d share -b "$b2" -v --discovery-interval 1
	local c2=$SERVER_ADDR c2_err=$SERVER_ERR
	wait_for names "$c2" "$b2"
	wait_for names "$b2" "$a2"
	# Three rounds of c2's bootstrap, each hearing of a2 from b2 again: never passed on.
	wait_for boot_rounds "$c2_err" 3
	run -0 peers_of "$c2"
	assert_output "$b2"
}

@test "PEERS about the file: the peer that fetched it comes first, ahead of 17 newer ones that have nothing" {
	node s
	local s=$SERVER_ADDR
	# h fetched the file from s (s noted it), and seeds it, its line to s closed.
	p2p-fetch -v --seed -o h.out -p "$s" "$ID" 2>h.err 3>&- &
	EXTRA_PIDS+=("$!")
	wait_for -t 20 grep -q 'complete' h.err
	local h
	h=127.0.0.1:$(grep -o 'sharing on port [0-9]*' h.err | grep -o '[0-9]*$')
	wait_for names "$s" "$h"
	# 17 nodes that share nothing join s after it: more than the 16 connections a fetch
	# makes on one peer's word, all seen more recently than h.
	mkdir empty
	local i
	for i in $(seq 17); do
		start_server --no-announce -n "e$i" -d empty -b "$s"
	done
	wait_for names_many "$s" 18
	run -0 --separate-stderr timeout 60 p2p-fetch -vv -p "$s" -o out "$ID"
	cmp out share/f
	assert_stderr_line --regexp "debug: $h: connecting\$"
}
