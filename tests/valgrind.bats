#!/usr/bin/env bats
# A whole serve and fetch under valgrind: no leak, no invalid access.

bats_require_minimum_version 1.5.0
load ../bats/common

setup() {
	common_setup
	command -v valgrind >/dev/null || skip "valgrind is not installed"
	# Sanitizer builds and valgrind do not mix.
	[[ "${P2P_BIN:-}" != *asan* ]] || skip "sanitizer build: valgrind does not apply"
}

VG="valgrind -q --leak-check=full --errors-for-leak-kinds=definite,indirect --error-exitcode=99"

@test "valgrind: p2p-serve and p2p-fetch of a 3 MiB file, clean" {
	make_file f 3145728 31
	p2p-chunk -c 64K f > f.mf
	start_server --stdin f.mf --no-announce
	local plain=$SERVER_ADDR
	# The server itself under valgrind too: stop_server reads its exit status (99 on any error).
	P2P_WAIT=60 start_server --stdin f.mf --cmd $VG "$(command -v p2p-serve)" -p 0 --bind 127.0.0.1 --no-announce
	local vg=$SERVER_ADDR vg_pid=$SERVER_PID vg_err=$SERVER_ERR
	run -0 --separate-stderr $VG "$(command -v p2p-fetch)" -p "$vg" -p "$plain" -o out "$(p2p-chunk --id f)" </dev/null
	cmp f out
	P2P_WAIT=60 stop_server "$vg_pid" || fail "p2p-serve under valgrind ignored TERM for 60 s: $(cat "$vg_err")"
	[ "$exit_status" -eq 0 ] || fail "p2p-serve under valgrind: exit $exit_status: $(cat "$vg_err")"
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
