#!/usr/bin/env bats
# p2p-send: one command shares files and folders and prints, for each, the p2p-fetch line that
# fetches them. Here on a host with loopback alone (its one address then goes in the link);
# tests/first-ten-minutes.bats runs it across hosts.

bats_require_minimum_version 1.5.0

load ../bats/common

# send ARGS...: p2p-send in the background until it printed a line per PATH (the last
# arguments, COUNT of them). Sets SEND_OUT, SEND_ERR and SEND_PID; teardown stops it.
send() {
	local count=$1
	shift
	SEND_OUT=$BATS_TEST_TMPDIR/send.out
	SEND_ERR=$BATS_TEST_TMPDIR/send.err
	p2p-send "$@" </dev/null >"$SEND_OUT" 2>"$SEND_ERR" 3>&- &
	SEND_PID=$!
	SERVER_PIDS+=("$SEND_PID")
	wait_for -t 30 _lines "$SEND_OUT" "$count" || {
		cat "$SEND_ERR" >&2
		return 1
	}
}

_lines() {
	[[ -f $1 ]] && (($(wc -l <"$1") >= $2))
}

@test "--help prints usage on stdout and exits 0; no PATH is a usage error" {
	run -0 --separate-stderr p2p-send --help
	assert_output --regexp '^usage: p2p-send'
	assert_output --partial '--json'
	run -2 --separate-stderr p2p-send
	assert_stderr --partial 'p2p-send: no PATH: give the files or folders to send'
	run -2 --separate-stderr p2p-send --bogus x
}

@test "a missing PATH: exit 1, named" {
	run -1 --separate-stderr timeout 30 p2p-send nosuch </dev/null
	assert_stderr 'p2p-send: nosuch: No such file or directory'
}

@test "a file and a folder: one line each, a link with the one address (loopback alone here), the port and the identity; each fetches" {
	make_file song.ogg 200K 1
	mkdir -p photos/sub
	make_file photos/sub/a.jpg 50K 2
	send 2 -p "$(unused_port)" song.ogg photos
	local id
	id=$(ref_id song.ogg)
	run -0 cat "$SEND_OUT"
	assert_equal "${#lines[@]}" 2
	assert_regex "${lines[0]}" "^p2p-fetch 'p2p://$id@127\\.0\\.0\\.1:[0-9]+#[0-9a-f]{64}'\$"
	assert_regex "${lines[1]}" "^p2p-fetch 'p2p://[0-9a-f]{64}@127\\.0\\.0\\.1:[0-9]+#[0-9a-f]{64}'\$"
	refute_output --partial 0.0.0.0
	mkdir recv
	cd recv
	run -0 --separate-stderr bash -c "${lines[0]} </dev/null && ${lines[1]} </dev/null"
	cmp ../song.ogg song.ogg
	diff -r ../photos photos
}

@test "--json: one object a line with path, type and link; --no-tls: no identity in the link" {
	make_file song.ogg 20K 3
	send 1 --json song.ogg
	run -0 jq -r '[.path, .type, (.link | test("^p2p://[0-9a-f]{64}@127\\.0\\.0\\.1:[0-9]+#[0-9a-f]{64}$"))] | @tsv' "$SEND_OUT"
	assert_output $'song.ogg\tfile\ttrue'
	kill "$SEND_PID"
	wait_exit "$SEND_PID" 30
	assert_equal "$exit_status" 0
	send 1 --no-tls song.ogg
	run -0 cat "$SEND_OUT"
	assert_regex "$output" "^p2p-fetch 'p2p://[0-9a-f]{64}@127\\.0\\.0\\.1:[0-9]+'\$"
}

@test "p2p-fetch LINK: a malformed link is a usage error naming its part" {
	local id
	id=$(printf 'x' | sha256sum | cut -d' ' -f1)
	run -2 --separate-stderr p2p-fetch "p2p://${id:1}@127.0.0.1:1" </dev/null
	assert_stderr 'p2p-fetch: link: the content id must be 64 hex digits'
	run -2 --separate-stderr p2p-fetch "p2p://$id@127.0.0.1:1,localhost:2" </dev/null
	assert_stderr 'p2p-fetch: link: address 2: not an IP address'
	run -2 --separate-stderr p2p-fetch "p2p://$id@127.0.0.1:1#abc" </dev/null
	assert_stderr "p2p-fetch: link: the identity after '#' must be 64 hex digits"
	run -2 --separate-stderr p2p-fetch "p2p://$id" </dev/null
	assert_stderr 'p2p-fetch: link: no addresses: give --dht to look the id up in the DHT, or -p HOST:PORT'
}

@test "--bind :: lists both families, IPv6 in brackets; the link fetches" {
	make_file song.ogg 20K 4
	send 1 --bind :: song.ogg
	run -0 cat "$SEND_OUT"
	assert_regex "$output" "^p2p-fetch 'p2p://[0-9a-f]{64}@127\\.0\\.0\\.1:([0-9]+),\\[::1\\]:\\1#[0-9a-f]{64}'\$"
	mkdir recv
	cd recv
	run -0 --separate-stderr bash -c "$output </dev/null"
	cmp ../song.ogg song.ogg
}

@test "--once: exits 0 once a peer got the whole file, saying the upload with -v; a folder is a usage error" {
	make_file song.ogg 200K 5
	send 1 --once -v song.ogg
	pid_alive "$SEND_PID"
	mkdir recv
	cd recv
	run -0 cat "$SEND_OUT"
	run -0 --separate-stderr bash -c "$output </dev/null"
	cmp ../song.ogg song.ogg
	wait_exit "$SEND_PID" 30
	assert_equal "$exit_status" 0
	run -0 grep -c ' info: uploaded song\.ogg .*: 204800 bytes, .*, the whole file$' "$SEND_ERR"
	assert_output 1
	cd ..
	mkdir photos
	run -2 --separate-stderr p2p-send --once photos </dev/null
	assert_stderr --partial 'p2p-send: --once: photos is a folder; --once sends files only'
}
