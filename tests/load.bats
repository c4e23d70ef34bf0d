#!/usr/bin/env bats
# One server under many clients: a thousand connections at once, the peer
# limit, and a client that never reads its answers.

bats_require_minimum_version 1.5.0
load ../bats/common

setup() {
	common_setup
	make_file f 10485760 21
	p2p-chunk -c 256K f > f.mf
}

rss_peak_kib() {
	awk '/^VmHWM:/ {print $2}' "/proc/$1/status"
}

@test "1000 connections at once, each asking for chunks of a 10 MiB file: all served, all right" {
	ulimit -n "$(ulimit -Hn)"
	[ "$(ulimit -n)" -ge 2200 ] || skip "descriptor limit $(ulimit -n) is too low for 1000 connections"
	# all 1000 from one address, each in its handshake until the last is open
	start_server --stdin f.mf --no-announce --max-peers 1100 --max-host-handshakes 1000
	# Under the sanitizers, on a loaded machine, a thousand handshakes at once outlasted
	# the reference client's patience now and then (2 CI runs in 3): 300 there, where the
	# point is memory errors, not capacity.
	local n=1000
	! is_asan_build || n=300
	run -0 --separate-stderr timeout 120 python3 "$P2P_REF" load "$SERVER_ADDR" f.mf "$n" 2
	echo "$stderr" >&2
	assert_output "served $n"
	peak=$(rss_peak_kib "$SERVER_PID")
	echo "# server peak RSS ${peak} KiB for $n connections" >&3
	# A sanitizer's allocator keeps freed memory on purpose: no bound there. Over TLS
	# each connection reads its chunk data a record (16 KiB) at a time instead of mapping
	# the file (which a shrinking file turned into SIGBUS): about 52 MiB with mapped
	# files, 68 MiB now, 530 MiB when whole chunks were read in advance.
	is_asan_build || [ "$peak" -lt 81920 ] || fail "server peak RSS $peak KiB"
	# And it still serves a whole fetch afterwards.
	run -0 p2p-fetch -p "$SERVER_ADDR" -o out "$(p2p-chunk --id f)" </dev/null
	cmp f out
}

@test "30 fetches at once from one host, default limits: past the handshakes one address may have at once (8, or half the budget while handshakes are few), each waits its turn, and all succeed" {
	make_file small 1M 22
	p2p-chunk small >small.mf
	start_server --stdin small.mf --no-announce
	local id i pids=()
	id=$(p2p-chunk --id small)
	for i in $(seq 30); do
		p2p-fetch -q -p "$SERVER_ADDR" -o "out.$i" "$id" </dev/null 2>"err.$i" 3>&- &
		pids+=($!)
		EXTRA_PIDS+=($!)
	done
	local failed=0
	for i in "${!pids[@]}"; do
		wait_exit "${pids[$i]}" 120
		((exit_status == 0)) || { failed=$((failed + 1)); cat "err.$((i + 1))" >&2; }
	done
	((failed == 0)) || fail "$failed of 30 fetches failed"
	for i in $(seq 30); do
		cmp small "out.$i"
	done
}

@test "connections past --max-peers are refused cleanly; the others are served" {
	start_server --stdin f.mf --no-announce --max-peers 5
	# Twenty at once: five are served, the rest see the connection closed.
	run --separate-stderr timeout 60 python3 "$P2P_REF" load "$SERVER_ADDR" f.mf 20 1
	assert_failure 1
	assert_stderr --partial "15 failures of 20 connections"
	pid_alive "$SERVER_PID"
	run -0 p2p-fetch -p "$SERVER_ADDR" -o out "$(p2p-chunk --id f)" </dev/null
	cmp f out
}

@test "a client that asks 2000 at once and never reads is dropped, and costs little" {
	start_server --stdin f.mf --no-announce -T 2 -v
	before=$(awk '/^VmRSS:/ {print $2}' "/proc/$SERVER_PID/status")
	python3 - "$SERVER_ADDR" "$(p2p-chunk --id f)" "$P2P_REF" <<'PY' &
import importlib.util, socket, struct, sys, time
spec = importlib.util.spec_from_file_location("r", sys.argv[3])
r = importlib.util.module_from_spec(spec); spec.loader.exec_module(r)
host, port = sys.argv[1].rsplit(":", 1)
fid = bytes.fromhex(sys.argv[2])
def frame(body):
    return struct.pack(">I", len(body)) + body
def enc_get(rid, idx):
    # [6, rid, bin32 id, idx, 262144]
    return bytes([0x95, 0x06, 0xce]) + struct.pack(">I", rid) + b"\xc4\x20" + fid + \
        bytes([0xce]) + struct.pack(">I", idx) + b"\xce" + struct.pack(">I", 262144)
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect((host, int(port)))
if r.tls_on():
    # TLS as the reference speaks it; the requests and the never-reading are the same.
    s = r.tls_context(False).wrap_socket(s)
hello = bytes([0x96, 0x00, 0x01, 0x00, 0xa1, 0x78, 0x00, 0x00])
s.sendall(frame(hello) + b"".join(frame(enc_get(i + 1, i % 40)) for i in range(2000)))
time.sleep(20)
PY
	client=$!
	# Past 128 requests outstanding it is dropped, without waiting for the write timeout.
	wait_for -t 15 grep -q "dropped: over 128 requests outstanding" "$SERVER_ERR"
	after=$(awk '/^VmRSS:/ {print $2}' "/proc/$SERVER_PID/status")
	kill "$client" 2>/dev/null || true
	echo "# server RSS ${before} -> ${after} KiB" >&3
	is_asan_build || [ $((after - before)) -lt 8192 ] ||
		fail "RSS grew from $before to $after KiB"
	run -0 p2p-fetch -p "$SERVER_ADDR" -o out "$(p2p-chunk --id f)" </dev/null
	cmp f out
}
