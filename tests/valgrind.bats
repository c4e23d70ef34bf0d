#!/usr/bin/env bats
# A whole serve and fetch under valgrind: no leak, no invalid access.

bats_require_minimum_version 1.5.0
load ../bats/common

setup() {
	common_setup
	command -v valgrind >/dev/null || skip "valgrind is not installed"
	# Sanitizer builds and valgrind do not mix.
	[[ "${P2P_BIN:-}" != *asan* ]] || skip "sanitizer build: valgrind does not apply"
	vg_pid=
}

teardown() {
	[ -z "${vg_pid:-}" ] || kill -KILL "$vg_pid" 2>/dev/null || true
	common_teardown
}

VG="valgrind -q --leak-check=full --errors-for-leak-kinds=definite,indirect --error-exitcode=99"

@test "valgrind: p2p-serve and p2p-fetch of a 3 MiB file, clean" {
	make_file f 3145728 31
	p2p-chunk -c 64K f > f.mf
	start_server_stdin f.mf --no-announce
	# The server itself under valgrind, started by hand so its exit
	# status (99 on any error) can be read.
	$VG "$(command -v p2p-serve)" -p 0 --bind 127.0.0.1 --no-announce < f.mf > vg.addr 2> vg.serve.err &
	vg_pid=$!
	wait_for -t 60 test -s vg.addr
	run -0 --separate-stderr $VG "$(command -v p2p-fetch)" -p "$(head -n1 vg.addr)" -p "$SERVER_ADDR" -o out "$(p2p-chunk --id f)" </dev/null
	cmp f out
	kill -TERM "$vg_pid"
	st=0
	timeout_wait=$((SECONDS + 60))
	while kill -0 "$vg_pid" 2>/dev/null && ((SECONDS < timeout_wait)); do sleep 0.1; done
	wait "$vg_pid" || st=$?
	[ "$st" -eq 0 ] || fail "p2p-serve under valgrind: exit $st: $(cat vg.serve.err)"
}

@test "valgrind: p2p-chunk, p2p-verify and p2p-discover, clean" {
	make_file f 200000 32
	run -0 bash -c "$VG $(command -v p2p-chunk) f > f.mf"
	run -0 $VG "$(command -v p2p-verify)" -m f.mf f
	run -0 $VG "$(command -v p2p-verify)" "$(p2p-chunk --id f)" f
	port=$(unused_udp_port)
	P2P_WAIT=60 start_server -d . --discovery-port "$port"
	run -0 --separate-stderr $VG "$(command -v p2p-discover)" -t 2 --discovery-port "$port"
	assert_output "$SERVER_ADDR"
}
