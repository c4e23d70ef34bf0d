#!/usr/bin/env bats
# p2p-serve: what it serves (manifests on stdin, -d DIR), its one stdout line, its exit codes
# and signals. What a server lists is read over the wire by the reference client
# (bats/p2p_ref.py), so these tests do not rest on p2p-fetch alone.

bats_require_minimum_version 1.5.0

load ../bats/common

teardown() {
	[[ -z ${FIFO_FD:-} ]] || exec {FIFO_FD}>&-
	[[ -z ${VETH:-} ]] || ip link del "$VETH" 2>/dev/null || true
	common_teardown
}

@test "--help prints usage on stdout and exits 0" {
	run -0 --separate-stderr timeout 10 p2p-serve --help </dev/null
	assert_output --regexp '[Uu]sage:.*p2p-serve'
	assert_stderr ''
	run -0 --separate-stderr timeout 10 p2p-serve -h </dev/null
	assert_output --regexp '[Uu]sage:.*p2p-serve'
}

@test "--version and -V print the version" {
	run -0 --separate-stderr timeout 10 p2p-serve --version </dev/null
	assert_output 'p2p-serve 0.1.0'
	run -0 --separate-stderr timeout 10 p2p-serve -V </dev/null
	assert_output 'p2p-serve 0.1.0'
}

@test "unknown option: usage on stderr, exit 2" {
	run -2 --separate-stderr timeout 10 p2p-serve --bogus </dev/null
	assert_output ''
	assert_stderr --regexp '[Uu]sage:.*p2p-serve'
}

@test "port out of range or not a number: exit 2 without serving" {
	local bad
	for bad in 70000 65536 abc -1 12x ''; do
		run -2 --separate-stderr timeout 10 p2p-serve -p "$bad" --bind 127.0.0.1 </dev/null
		assert_output ''
		[[ -n $stderr ]] || fail "no message for -p '$bad'"
	done
	run -2 --separate-stderr timeout 10 p2p-serve --port 99999 --bind 127.0.0.1 </dev/null
	assert_output ''
}

@test "prints exactly one line HOST:PORT, and listens there" {
	start_server
	assert_equal "$SERVER_HOST" 127.0.0.1
	((SERVER_PORT > 0 && SERVER_PORT < 65536))
	run -0 python3 "$P2P_REF" hello "$SERVER_ADDR"
	# the line is flushed at start, and nothing else follows on stdout
	assert_equal "$(wc -l <"$SERVER_OUT")" 1
	stop_server "$SERVER_PID"
	assert_equal "$(cat "$SERVER_OUT")" "127.0.0.1:$SERVER_PORT"
}

@test "HELLO: protocol version 1, caps 127 (swarm, duplex, records, hashes, trees, choke, files), the -n name, the listening port" {
	start_server -n 'node-α'
	run -0 python3 "$P2P_REF" hello "$SERVER_ADDR"
	assert_output --regexp "^\\[0, 1, 127, \"node-α\", $SERVER_PORT(, .*)?\\]\$"
	start_server --name other
	run -0 python3 "$P2P_REF" hello "$SERVER_ADDR"
	assert_output --partial '"other"'
}

@test "serves the files whose manifests come on stdin" {
	make_file a 100000 1
	make_file 'héllo wörld.bin' 3000 2
	p2p-chunk a 'héllo wörld.bin' >m
	start_server --stdin m
	local ida idb
	ida=$(ref_id a)
	idb=$(ref_id 'héllo wörld.bin')
	wait_listed "$SERVER_ADDR" "$ida" "$idb"
	run -0 python3 "$P2P_REF" list "$SERVER_ADDR"
	assert_equal "$(sort <<<"$output")" "$(printf '%s\t%s\t%s\n' "$ida" 100000 a "$idb" 3000 'héllo wörld.bin' | sort)"
}

@test "logs 'p2p-serve: TIME info: serving ID NAME' per file at the default level" {
	make_file a 100000 1
	make_file 'héllo wörld.bin' 3000 2
	p2p-chunk a 'héllo wörld.bin' >m
	start_server --stdin m
	wait_for grep -qE "^p2p-serve: [0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}\.[0-9]{3}Z info: serving $(ref_id a) a\$" "$SERVER_ERR"
	wait_for grep -qF " info: serving $(ref_id 'héllo wörld.bin') héllo wörld.bin" "$SERVER_ERR"
}

@test "-q, P2P_LOG=warn and RUST_LOG=warn hide the info lines; -v raises warn to info" {
	make_file a 1000 1
	p2p-chunk a >m
	local id
	id=$(ref_id a)

	start_server --stdin m -q
	wait_listed "$SERVER_ADDR" "$id"
	sleep 0.2
	run ! grep -q serving "$SERVER_ERR"

	P2P_LOG=warn start_server --stdin m
	wait_listed "$SERVER_ADDR" "$id"
	sleep 0.2
	run ! grep -q serving "$SERVER_ERR"

	RUST_LOG=warn start_server --stdin m
	wait_listed "$SERVER_ADDR" "$id"
	sleep 0.2
	run ! grep -q serving "$SERVER_ERR"

	P2P_LOG=warn start_server --stdin m -v
	wait_for grep -qF " info: serving $id a" "$SERVER_ERR"
}

@test "stdin is read asynchronously: files appear as their manifests arrive" {
	make_file a 20000 1
	make_file b 30000 2
	local ida idb
	ida=$(ref_id a)
	idb=$(ref_id b)
	mkfifo fifo
	# Opened read-write, the FIFO never blocks us nor reaches EOF while FIFO_FD is open.
	exec {FIFO_FD}<>fifo
	start_server --stdin fifo
	p2p-chunk a >&"$FIFO_FD"
	wait_listed "$SERVER_ADDR" "$ida"
	run ! listed "$SERVER_ADDR" "$idb"
	p2p-chunk b >&"$FIFO_FD"
	wait_listed "$SERVER_ADDR" "$idb"
	timeout 20 p2p-fetch -p "$SERVER_ADDR" "$idb" >b.out
	cmp b b.out
	# still open: a third manifest later is served too
	make_file c 1000 3
	p2p-chunk c >&"$FIFO_FD"
	wait_listed "$SERVER_ADDR" "$(ref_id c)"
}

@test "stdin at EOF: keeps running and serving" {
	make_file a 20000 1
	p2p-chunk a >m
	start_server --stdin m
	wait_listed "$SERVER_ADDR" "$(ref_id a)"
	sleep 0.5
	pid_alive "$SERVER_PID"
	run -0 python3 "$P2P_REF" hello "$SERVER_ADDR"
}

@test "-d DIR serves every regular file under DIR, recursively" {
	mkdir -p d/sub
	make_file d/a.bin 70000 1
	make_file d/sub/b.bin 5000 2
	make_file 'd/sub/héllo wörld.bin' 40000 3
	: >d/empty
	start_server -d d
	local ids=() f
	for f in d/a.bin d/sub/b.bin 'd/sub/héllo wörld.bin' d/empty; do
		ids+=("$(ref_id "$f")")
	done
	wait_listed "$SERVER_ADDR" "${ids[@]}"
	run -0 python3 "$P2P_REF" list "$SERVER_ADDR"
	assert_equal "$(sort <<<"$output")" "$(printf '%s\t%s\t%s\n' \
		"${ids[0]}" 70000 a.bin "${ids[1]}" 5000 b.bin "${ids[2]}" 40000 'héllo wörld.bin' "${ids[3]}" 0 empty | sort)"
	local i=0
	for f in d/a.bin d/sub/b.bin 'd/sub/héllo wörld.bin' d/empty; do
		timeout 20 p2p-fetch -p "$SERVER_ADDR" -o "out$i" "${ids[$i]}"
		cmp "$f" "out$i"
		i=$((i + 1))
	done
}

@test "an upload done: one line at the default level, who (address, name, identity), what (name, short id), bytes; none per chunk" {
	make_file song.ogg 300000 4
	start_server song.ogg
	local id
	id=$(ref_id song.ogg)
	wait_listed "$SERVER_ADDR" "$id"
	timeout 30 p2p-fetch -p "$SERVER_ADDR" -o got.ogg "$id" </dev/null
	cmp song.ogg got.ogg
	wait_for grep -q ' info: uploaded ' "$SERVER_ERR"
	run -0 grep ' info: uploaded ' "$SERVER_ERR"
	assert_equal "${#lines[@]}" 1
	assert_regex "${lines[0]}" " info: uploaded song\.ogg \(${id:0:8}\) to 127\.0\.0\.1:[0-9]+ \([^,]+, [0-9a-f]{8}\): 300000 bytes, ([0-9]+) of \1 chunks, the whole file\$"
}

# not_listed ADDR ID: the server at ADDR does not list ID.
not_listed() {
	! python3 "$P2P_REF" list "$1" | grep -q "^$2"$'\t'
}

@test "a shared folder is live: on SIGHUP a changed file is chunked again, a new one shared, a removed one withdrawn; the old id fails 'changed on the sharing node'" {
	mkdir d
	make_file d/a 70000 1
	make_file d/b 5000 2
	start_server --rescan 0 -d d
	local olda oldb newa c
	olda=$(ref_id d/a)
	oldb=$(ref_id d/b)
	wait_listed "$SERVER_ADDR" "$olda" "$oldb"
	wait_for grep -q 'serving tree ' "$SERVER_ERR"
	local tree
	tree=$(sed -n 's/.*serving tree \([0-9a-f]\{64\}\) .*/\1/p' "$SERVER_ERR")
	make_file d/a 80000 3
	make_file d/c 3000 4
	rm d/b
	newa=$(ref_id d/a)
	c=$(ref_id d/c)
	kill -HUP "$SERVER_PID"
	wait_listed "$SERVER_ADDR" "$newa" "$c"
	wait_for not_listed "$SERVER_ADDR" "$olda"
	wait_for not_listed "$SERVER_ADDR" "$oldb"
	run -0 python3 "$P2P_REF" list "$SERVER_ADDR"
	assert_equal "${#lines[@]}" 2 # a and c
	grep -q "d/a: changed; $olda withdrawn" "$SERVER_ERR"
	grep -q "d/b: gone; $oldb withdrawn" "$SERVER_ERR"
	run -1 --separate-stderr timeout 30 p2p-fetch -p "$SERVER_ADDR" -o old "$olda" </dev/null
	assert_stderr --partial "$olda: changed on the sharing node ($SERVER_ADDR)"
	refute_stderr --partial 'every peer failed'
	run -1 --separate-stderr timeout 30 p2p-fetch -p "$SERVER_ADDR" -o oldtree "$tree" </dev/null
	assert_stderr --partial "$tree: changed on the sharing node ($SERVER_ADDR)"
	timeout 30 p2p-fetch -p "$SERVER_ADDR" -o new "$newa" </dev/null
	cmp d/a new
	pid_alive "$SERVER_PID"
}

@test "a live folder with the same bytes twice: either copy removed, the other still serves them" {
	local gone
	for gone in x y; do
		rm -rf d
		mkdir d
		make_file d/x 30000 5
		cp d/x d/y
		start_server --rescan 0 -d d
		local id
		id=$(ref_id d/x)
		wait_listed "$SERVER_ADDR" "$id"
		rm "d/$gone"
		kill -HUP "$SERVER_PID"
		wait_for grep -q "d/$gone: gone" "$SERVER_ERR"
		wait_listed "$SERVER_ADDR" "$id"
		rm -f got
		timeout 30 p2p-fetch -p "$SERVER_ADDR" -o got "$id" </dev/null
		cmp d/[xy] got
		stop_server "$SERVER_PID"
	done
}

@test "--rescan SECONDS: a file added to a shared folder is served without a signal" {
	mkdir d
	make_file d/a 1000 1
	start_server --rescan 1 -d d
	wait_listed "$SERVER_ADDR" "$(ref_id d/a)"
	make_file d/new 2000 2
	wait_listed "$SERVER_ADDR" "$(ref_id d/new)"
	run -2 --separate-stderr timeout 10 p2p-serve --rescan x </dev/null
	assert_stderr --partial 'rescan interval'
}

@test "-d may repeat, and adds to stdin" {
	mkdir d1 d2
	make_file d1/a 1000 1
	make_file d2/b 2000 2
	make_file c 3000 3
	p2p-chunk c >m
	start_server --stdin m -d d1 -d d2
	wait_listed "$SERVER_ADDR" "$(ref_id d1/a)" "$(ref_id d2/b)" "$(ref_id c)"
	run -0 python3 "$P2P_REF" list "$SERVER_ADDR"
	assert_equal "${#lines[@]}" 3
}

@test "-d of a missing directory: exit 1, the directory named" {
	run -1 --separate-stderr timeout 10 p2p-serve -p 0 --bind 127.0.0.1 -d nosuchdir </dev/null
	assert_stderr --partial nosuchdir
}

@test "p2p-serve FILE DIR: the file by its id, the folder whole by its tree id; no manifest pipe" {
	make_file song.ogg 90000 1
	mkdir -p photos/sub
	make_file photos/sub/a.jpg 5000 2
	start_server song.ogg photos
	local id tid
	id=$(ref_id song.ogg)
	wait_listed "$SERVER_ADDR" "$id" "$(ref_id photos/sub/a.jpg)"
	wait_for grep -q "serving tree [0-9a-f]\{64\} photos (1 files, 5000 bytes)" "$SERVER_ERR"
	tid=$(sed -n 's/.*serving tree \([0-9a-f]\{64\}\) photos .*/\1/p' "$SERVER_ERR")
	timeout 30 p2p-fetch -p "$SERVER_ADDR" -o got.ogg "$id" </dev/null
	cmp song.ogg got.ogg
	timeout 30 p2p-fetch -p "$SERVER_ADDR" -o gotdir "$tid" </dev/null
	diff -r photos gotdir
}

@test "p2p-serve FILE of a missing file: exit 1, the file named" {
	run -1 --separate-stderr timeout 10 p2p-serve -p 0 --bind 127.0.0.1 nosuch </dev/null
	assert_stderr 'p2p-serve: nosuch: No such file or directory'
}

@test "-d FILE: says to name the file instead, not 'not a directory'" {
	make_file f 100 1
	run -1 --separate-stderr timeout 10 p2p-serve -p 0 --bind 127.0.0.1 -d f </dev/null
	assert_stderr 'p2p-serve: f is a file: to share it, p2p-serve f'
}

@test "a usage error names the wrong argument before the usage" {
	run -2 --separate-stderr timeout 10 p2p-serve --bogus </dev/null
	assert_regex "${stderr_lines[0]}" "--bogus"
	assert_regex "${stderr_lines[1]}" '^usage: p2p-serve'
	run -2 --separate-stderr timeout 10 p2p-serve -p </dev/null
	assert_regex "${stderr_lines[0]}" "requires an argument -- 'p'"
	assert_regex "${stderr_lines[1]}" '^usage: p2p-serve'
}

@test "port in use: exit 1, 'bind ADDR: Address already in use'" {
	start_server
	run -1 --separate-stderr timeout 10 p2p-serve -p "$SERVER_PORT" --bind 127.0.0.1 </dev/null
	assert_output ''
	assert_stderr_line "p2p-serve: bind 127.0.0.1:$SERVER_PORT: Address already in use"
	# the first server is unharmed
	run -0 python3 "$P2P_REF" hello "$SERVER_ADDR"
}

@test "SIGTERM: exits 0" {
	start_server
	kill -TERM "$SERVER_PID"
	wait_exit "$SERVER_PID"
	assert_equal "$exit_status" 0
}

# The address is printed before -d DIR is read (here 128 MiB to hash): a signal sent as soon as
# it is read must already be handled.
@test "SIGTERM right after the address, while -d DIR is still being read: exits 0" {
	mkdir d
	head -c 128M /dev/zero >d/zeros
	start_server -d d
	kill -TERM "$SERVER_PID"
	wait_exit "$SERVER_PID"
	assert_equal "$exit_status" 0
}

@test "SIGINT: exits 0" {
	start_server
	kill -INT "$SERVER_PID"
	wait_exit "$SERVER_PID"
	assert_equal "$exit_status" 0
}

@test "SIGTERM with a client connected: exits 0" {
	start_server
	# a client that connects and stays idle
	python3 -c 'import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
time.sleep(30)' "$SERVER_PORT" 3>&- &
	EXTRA_PIDS+=($!)
	sleep 0.3
	kill -TERM "$SERVER_PID"
	wait_exit "$SERVER_PID"
	assert_equal "$exit_status" 0
}

@test "--stats: one line at exit with the counters" {
	make_file a 65536 1
	p2p-chunk -c 16K a >m
	start_server --stdin m --stats
	local id
	id=$(ref_id a)
	wait_listed "$SERVER_ADDR" "$id"
	timeout 20 p2p-fetch -p "$SERVER_ADDR" -o out "$id"
	cmp a out
	stop_server "$SERVER_PID"
	assert_equal "$exit_status" 0
	local err
	err=$(cat "$SERVER_ERR")
	assert_equal "$(grep -c 'p2p-serve: stats ' <<<"$err")" 1
	# the documented fields, in order; fields a later issue adds may follow them
	assert_regex "$(grep 'p2p-serve: stats ' <<<"$err")" \
		'^p2p-serve: stats bytes_in=[0-9]+ bytes_out=[0-9]+ chunks_out=[0-9]+ manifests_out=[0-9]+ peers=[0-9]+( [a-z_]+=[^ ]*)*$'
	assert_equal "$(stats_field "$err" chunks_out)" 4
	assert_equal "$(stats_field "$err" manifests_out)" 1
	(($(stats_field "$err" bytes_out) >= 65536))
	(($(stats_field "$err" bytes_in) > 0))
	(($(stats_field "$err" peers) >= 1))
}

@test "no --stats: no stats line" {
	start_server
	stop_server "$SERVER_PID"
	run ! grep -q 'stats' "$SERVER_ERR"
}

@test "a client sending an oversized frame is dropped; the server goes on" {
	make_file a 20000 1
	p2p-chunk a >m
	start_server --stdin m
	local id
	id=$(ref_id a)
	wait_listed "$SERVER_ADDR" "$id"
	run -0 timeout 20 python3 "$P2P_REF" junk "$SERVER_ADDR"
	assert_output closed
	pid_alive "$SERVER_PID"
	timeout 20 p2p-fetch -p "$SERVER_ADDR" -o out "$id"
	cmp a out
}

@test "the manifest's path is not sent to peers" {
	make_file a 20000 1
	p2p-chunk a >m
	start_server --stdin m
	local id
	id=$(ref_id a)
	wait_listed "$SERVER_ADDR" "$id"
	# a fetch through a fake peer would not tell; grep the bytes a real GET_MANIFEST returns
	run -0 python3 - "$SERVER_ADDR" "$id" "$P2P_REF" <<'PY'
import sys, importlib.util
spec = importlib.util.spec_from_file_location("r", sys.argv[3])
r = importlib.util.module_from_spec(spec); spec.loader.exec_module(r)
s, _ = r.connect(sys.argv[1])
s.sendall(r.frame([4, 9, bytes.fromhex(sys.argv[2])]))
reply = r.recv_frame(s)
assert reply[0] == 5 and reply[1] == 9, reply[:3]
m = reply[2]
print(sorted(m.keys()))
PY
	assert_output "['chunk_size', 'chunks', 'id', 'name', 'size', 'v']"
}

@test "GET_MANIFEST for an unknown id is answered ERROR NOT_FOUND" {
	start_server
	run -0 python3 - "$SERVER_ADDR" "$P2P_REF" <<'PY'
import sys, importlib.util
spec = importlib.util.spec_from_file_location("r", sys.argv[2])
r = importlib.util.module_from_spec(spec); spec.loader.exec_module(r)
s, _ = r.connect(sys.argv[1])
s.sendall(r.frame([4, 77, bytes(32)]))
reply = r.recv_frame(s)
print(reply[:3])
PY
	assert_output '[1, 77, 1]'
}

@test "on every interface: one line per interface address, reachable ones first, never 0.0.0.0" {
	# A second interface with an address and no brd, as containers set them.
	ip link add p2pv0 type veth peer name p2pv1 || skip "cannot make a veth pair here"
	VETH=p2pv0
	ip addr add 10.77.0.1/24 dev p2pv0
	ip link set p2pv0 up
	ip link set p2pv1 up
	start_server --cmd p2p-serve -p 0
	local port=$SERVER_PORT
	run -0 cat "$SERVER_OUT"
	assert_line --index 0 "10.77.0.1:$port"
	assert_line --index 1 "127.0.0.1:$port"
	refute_output --partial 0.0.0.0
	run -0 python3 "$P2P_REF" hello "10.77.0.1:$port"
}

@test "TLS: a file that shrinks while a stalled client's chunks wait: that client gets ERRORs or loses its line, the server goes on" {
	mkdir share
	make_file share/big 16M 21
	make_file share/other 300000 22
	start_server -d share
	id=$(p2p-chunk --id share/big)
	wait_listed "$SERVER_ADDR" "$id"
	# 16 chunks of 1 MiB asked for, none read: they wait in the server.
	python3 "$P2P_REF" stall "$SERVER_ADDR" "$id" 1048576 16 go >stall.out 2>stall.err 3>&- &
	EXTRA_PIDS+=("$!")
	stall_pid=$!
	wait_for grep -q asked stall.out
	sleep 1 # the server takes in the requests it can
	truncate -s 0 share/big
	touch go
	wait_exit "$stall_pid" 30
	cat stall.err >&2
	# Every answer whole: chunks read before the cut, then an ERROR for each chunk not
	# begun; a chunk whose header had gone out cannot be finished, and ends the connection
	# instead (its data are read from the file as the client reads, never mapped).
	if ((exit_status == 0)); then
		run grep -E '^answers [0-9]+ CHUNK, [1-9][0-9]* ERROR$' stall.out
		assert_success
	else
		run grep -E '^p2p_ref: stall: connection ended after [0-9]+ answers' stall.err
		assert_success
		grep -q 'a shared file ended before the chunk it was serving' "$SERVER_ERR" ||
			fail "the server did not say why: $(cat "$SERVER_ERR")"
	fi
	pid_alive "$SERVER_PID"
	run -0 --separate-stderr p2p-fetch -T 10 -p "$SERVER_ADDR" -o got "$(p2p-chunk --id share/other)" </dev/null
	cmp got share/other
	stop_server "$SERVER_PID"
	assert_equal "$exit_status" 0
}

@test "a manifest whose path names other bytes: nothing of them is served, the server says so" {
	make_file shared 300000 23
	make_file secret 300000 24
	p2p-chunk "$PWD/shared" >m
	id=$(p2p-chunk --id shared)
	# The same hashes, with the other file's path (as long).
	python3 -c 'import sys
data = open("m", "rb").read()
old, new = (sys.argv[1] + "/shared").encode(), (sys.argv[1] + "/secret").encode()
assert data.count(old) == 1
open("m.bad", "wb").write(data.replace(old, new))' "$PWD"
	start_server --stdin m.bad --stats
	wait_listed "$SERVER_ADDR" "$id"
	run -1 --separate-stderr p2p-fetch -T 5 -p "$SERVER_ADDR" -o got "$id" </dev/null
	assert_stderr --partial "file unavailable"
	[[ ! -e got ]]
	grep -q "secret: not the file its manifest describes" "$SERVER_ERR"
	stop_server "$SERVER_PID"
	assert_equal "$(stats_field "$(cat "$SERVER_ERR")" chunks_out)" 0
}

@test "a manifest whose file matches it is served, each chunk checked once" {
	make_file f 2M 25
	p2p-chunk -c 262144 f >m
	start_server --stdin m
	id=$(p2p-chunk --id f)
	wait_listed "$SERVER_ADDR" "$id"
	run -0 --separate-stderr p2p-fetch -p "$SERVER_ADDR" -o got "$id" </dev/null
	cmp got f
	# A second time, from the chunks already checked.
	run -0 --separate-stderr p2p-fetch -p "$SERVER_ADDR" -o got2 "$id" </dev/null
	cmp got2 f
}

# A client may have 64 requests outstanding (HELLO's maxreq); the server never stops reading
# it to slow it, since a side that stops reading can deadlock requests both ways: past 64 it
# is answered BUSY in turn, past 128 it is dropped.
@test "flow control: a client past 64 requests outstanding gets BUSY for the rest, answered in turn" {
	mkdir share
	make_file share/big 4M 23
	start_server -d share
	id=$(p2p-chunk --id share/big)
	wait_listed "$SERVER_ADDR" "$id"
	python3 "$P2P_REF" stall "$SERVER_ADDR" "$id" 1048576 100 go 4 >stall.out 2>stall.err 3>&- &
	EXTRA_PIDS+=("$!")
	stall_pid=$!
	wait_for grep -q asked stall.out
	sleep 1 # the server takes in the requests: no more than its output allows
	touch go
	wait_exit "$stall_pid" 30
	cat stall.err >&2
	assert_equal "$exit_status" 0
	run -0 cat stall.out
	# Every request answered once: as many CHUNKs as were within the 64, then BUSY.
	[[ ${lines[1]} =~ ^answers\ ([0-9]+)\ CHUNK,\ ([0-9]+)\ ERROR$ ]] || fail "$output"
	chunks=${BASH_REMATCH[1]} errors=${BASH_REMATCH[2]}
	assert_equal $((chunks + errors)) 100
	assert_equal "${lines[2]}" "busy $errors"
	((errors >= 30)) || fail "only $errors BUSY of 100 asked at once"
	run -0 --separate-stderr p2p-fetch -T 10 -p "$SERVER_ADDR" -o got "$id" </dev/null
	cmp got share/big
}

@test "flow control: a client past 128 requests outstanding is dropped; the server goes on" {
	mkdir share
	make_file share/big 4M 23
	start_server -d share
	id=$(p2p-chunk --id share/big)
	wait_listed "$SERVER_ADDR" "$id"
	python3 "$P2P_REF" stall "$SERVER_ADDR" "$id" 1048576 200 go 4 >stall.out 2>stall.err 3>&- &
	EXTRA_PIDS+=("$!")
	stall_pid=$!
	wait_for grep -q asked stall.out
	wait_for grep -q 'over 128 requests outstanding' "$SERVER_ERR"
	touch go
	wait_exit "$stall_pid" 30
	assert_equal "$exit_status" 1
	run -0 cat stall.err
	assert_output --partial "connection ended after"
	pid_alive "$SERVER_PID"
	run -0 --separate-stderr p2p-fetch -T 10 -p "$SERVER_ADDR" -o got "$id" </dev/null
	cmp got share/big
}
