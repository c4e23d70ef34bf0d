#!/usr/bin/env bats
# Chunk hashes on demand and no manifest asked twice (docs/PROTOCOL.md sections 1, 2 and 4): a
# node sends a peer that can ask for them (caps bit 3) the manifest of a large file as its root
# alone, and the peer asks for the chunk layer run by run (GET_HASHES), each run checked against
# the root. A file of some MiB takes that path here because MINI_P2P_TEST_INLINE_CHUNKS, for
# tests only, lowers the limit from 16384 hashes; a sparse file past 1 TiB takes it for real.
# A peer of before (bats/p2p_ref.py, protocol 1 without the hashes) still gets whole manifests.

bats_require_minimum_version 1.5.0

load ../bats/common

# serve_rooted ARGS...: serve_chunked ARGS with the inline limit at 4 hashes.
serve_rooted() {
	export MINI_P2P_TEST_INLINE_CHUNKS=4
	serve_chunked "$@"
	unset MINI_P2P_TEST_INLINE_CHUNKS
}

@test "on demand: a manifest sent as its root, the layer asked in 3 runs, each checked; the file arrives intact" {
	make_file src 20000000 1
	serve_rooted -c 16K src -- --stats
	run -0 --separate-stderr timeout 60 p2p-fetch --stats -p "$SERVER_ADDR" -o out "$(ref_id src)" </dev/null
	cmp src out
	# 1221 chunks of 16 KiB: runs of 512, 512 and 197.
	assert_equal "$(stats_field "$stderr" chunks_fetched)" 1221
	assert_equal "$(stats_field "$stderr" manifests)" 1
	assert_equal "$(stats_field "$stderr" hash_runs)" 3
	stop_server "$SERVER_PID"
	assert_equal "$(stats_field "$(cat "$SERVER_ERR")" hashes_out)" 3
	assert_equal "$(stats_field "$(cat "$SERVER_ERR")" manifests_out)" 1
}

@test "without the test limit the same file's layer goes inline: no run asked" {
	make_file src 20000000 1
	serve_chunked -c 16K src -- --stats
	run -0 --separate-stderr timeout 60 p2p-fetch --stats -p "$SERVER_ADDR" -o out "$(ref_id src)" </dev/null
	cmp src out
	assert_equal "$(stats_field "$stderr" hash_runs)" 0
	stop_server "$SERVER_PID"
	assert_equal "$(stats_field "$(cat "$SERVER_ERR")" hashes_out)" 0
}

@test "resume: a .part of a file sent as its root keeps its chunks as their runs arrive" {
	make_file src 20000000 2
	serve_rooted -c 16K src
	head -c 10000000 src >out.part
	truncate -s 20000000 out.part
	run -0 --separate-stderr timeout 60 p2p-fetch --stats -p "$SERVER_ADDR" -o out "$(ref_id src)" </dev/null
	cmp src out
	# 610 whole chunks of 16 KiB lie in the first 10000000 bytes; 611 are left.
	assert_equal "$(stats_field "$stderr" chunks_resumed)" 610
	assert_equal "$(stats_field "$stderr" chunks_fetched)" 611
	assert_equal "$(stats_field "$stderr" hash_runs)" 3
}

@test "a peer of before the hashes (the reference) fetches from a server with the limit lowered: the layer inline, as ever" {
	make_file src 1M 3
	serve_rooted -c 16K src -- --stats
	python3 "$P2P_REF" fetch "$SERVER_ADDR" "$(ref_id src)" >out
	cmp src out
	stop_server "$SERVER_PID"
	assert_equal "$(stats_field "$(cat "$SERVER_ERR")" manifests_out)" 1
	assert_equal "$(stats_field "$(cat "$SERVER_ERR")" hashes_out)" 0
}

@test "no manifest asked twice: of three seeds that know each other, a fetch given one is sent the manifest once in all" {
	make_file src 8M 4
	p2p-chunk -c 64K src >m
	# The first seed is slow, so that the two met through it serve too.
	start_server --stdin m --stats --no-announce --max-upload-rate 1M
	local a=$SERVER_ADDR a_err=$SERVER_ERR a_pid=$SERVER_PID
	start_server --stdin m --stats --no-announce -b "$a"
	local b_err=$SERVER_ERR b_pid=$SERVER_PID b_port=$SERVER_PORT
	start_server --stdin m --stats --no-announce -b "$a"
	local c_err=$SERVER_ERR c_pid=$SERVER_PID c_port=$SERVER_PORT
	wait_listed "$a" "$(ref_id src)"
	wait_for bash -c "python3 '$P2P_REF' peers '$a' | grep ':$b_port\$' >/dev/null"
	wait_for bash -c "python3 '$P2P_REF' peers '$a' | grep ':$c_port\$' >/dev/null"
	run -0 --separate-stderr timeout 60 p2p-fetch --stats -p "$a" -o out "$(ref_id src)" </dev/null
	cmp src out
	assert_equal "$(stats_field "$stderr" manifests)" 1
	(($(stats_field "$stderr" peers_used) >= 2)) || fail "$stderr"
	stop_server "$a_pid"
	stop_server "$b_pid"
	stop_server "$c_pid"
	local sum=0 err
	for err in "$a_err" "$b_err" "$c_err"; do
		sum=$((sum + $(stats_field "$(cat "$err")" manifests_out)))
	done
	assert_equal "$sum" 1
}

@test "a peer that knows no HAS (the reference), met after the manifest, is asked for it as before and serves" {
	make_file src 8M 5
	# The seed is slow, so that the reference, fast, is surely asked for chunks.
	serve_chunked -c 64K src -- --max-upload-rate 1M
	local seed=$SERVER_ADDR
	start_fake_peer "$SERVER_MANIFEST" honest
	local ref=$SERVER_ADDR
	mkfifo peers
	p2p-fetch -v --stats -p "$seed" -p - -o out "$(ref_id src)" <peers >fetch.out 2>fetch.err 3>&- &
	local pid=$!
	EXTRA_PIDS+=("$pid")
	exec 4>peers
	wait_for grep -q ' bytes in [0-9]* chunks, from ' fetch.err
	echo "$ref" >&4
	exec 4>&-
	wait_exit "$pid" 60
	assert_equal "$exit_status" 0
	cmp src out
	local err
	err=$(cat fetch.err)
	[[ " $(stats_field "$err" from)," == *"$ref/"[1-9]* ]] || fail "the reference served nothing: $err"
	assert_equal "$(stats_field "$err" peers_dropped)" 0
}

@test "a file past 1 TiB (sparse): chunked, served as its root, its first MiB fetched and checked long before its layer; a peer of before is told NOT_FOUND" {
	truncate -s $((1024 ** 4 + 1048576)) huge || skip "no 1 TiB sparse file here"
	printf 'hello' | dd of=huge bs=1 seek=100 conv=notrunc status=none
	p2p-chunk huge >huge.m
	local id
	id=$(manifest_ids huge.m)
	start_server --stdin huge.m --no-announce
	wait_listed "$SERVER_ADDR" "$id"
	run -0 python3 "$P2P_REF" list "$SERVER_ADDR"
	assert_output "$id	1099512676352	huge"
	run -0 bash -c "timeout 60 p2p-fetch --stats -p '$SERVER_ADDR' '$id' 2>fetch.err |
		head -c 1048576 | cmp - <(head -c 1048576 huge) && echo same"
	assert_output same
	local err
	err=$(cat fetch.err)
	assert_equal "$(stats_field "$err" manifests)" 1
	# 262145 chunks of 4 MiB: 513 runs of 512 hashes; the first chunk needs one.
	local runs
	runs=$(stats_field "$err" hash_runs)
	((runs >= 1 && runs < 100)) || fail "hash_runs=$runs: $err"
	run -1 --separate-stderr python3 "$P2P_REF" fetch "$SERVER_ADDR" "$id"
	assert_stderr "p2p_ref: fetch: ERROR 1: more chunks than a manifest holds: needs the hashes capability"
}

@test "a manifest with its root in place of its layer: p2p-verify -m checks the id; p2p-serve refuses to serve it" {
	make_file f 1M 6
	p2p-chunk -c 16K f >m
	python3 "$P2P_REF" tamper m root >rooted
	assert_equal "$(manifest_field rooted chunks)" "<absent>"
	run -0 --separate-stderr p2p-verify -m rooted f
	assert_output "OK	f"
	cp f g
	corrupt g 5
	run -1 --separate-stderr p2p-verify -m rooted g
	assert_output "FAILED	g"
	assert_stderr "p2p-verify: g: content id differs (the manifest has no chunk hashes to say where)"
	start_server --stdin rooted --no-announce
	wait_for grep -q 'not served' "$SERVER_ERR"
	run -0 grep -c 'f: manifest has no chunk hashes (a peer.s, not p2p-chunk.s); not served' "$SERVER_ERR"
}
