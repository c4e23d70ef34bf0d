#!/usr/bin/env bats
# Logging: levels per module from P2P_LOG (RUST_LOG, the original's name, and its
# mini_p2p:: module paths), the configuration file, -v and -q; one line per event, with a UTC
# timestamp, the level and the module, except the tool's own errors and warnings, which stay
# "p2p-fetch: message".

bats_require_minimum_version 1.5.0
load ../bats/common

TS='[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z'

setup() {
	common_setup
	make_file f 300000 3
	ID=$(p2p-chunk --id f)
}

# fetch_log [ENV=VALUE...] -- [P2P-FETCH ARGS...]: a fetch of f from a fresh server; its
# stderr in $stderr.
fetch_log() {
	local envs=()
	while [[ $1 != -- ]]; do
		envs+=("$1")
		shift
	done
	shift
	[[ -n ${SERVER_ADDR:-} ]] || serve_chunked f -- --no-announce
	# each run a whole fetch: over a whole out, p2p-fetch says there is nothing to do
	rm -f out
	run -0 --separate-stderr env "${envs[@]}" p2p-fetch "$@" -p "$SERVER_ADDR" -o out "$ID" </dev/null
	cmp f out
}

@test "by default p2p-fetch says nothing on success" {
	fetch_log --
	assert_stderr ''
}

@test "P2P_LOG=debug: every line has the tool, a timestamp, the level and the module" {
	fetch_log P2P_LOG=debug --
	assert_stderr_line --regexp "^p2p-fetch: $TS debug conn: 127\.0\.0\.1:[0-9]+: connecting\$"
	assert_stderr_line --regexp "^p2p-fetch: $TS debug conn: 127\.0\.0\.1:[0-9]+: handshake done: .*"
	assert_stderr_line --regexp "^p2p-fetch: $TS info: $ID: complete, 300000 bytes\$"
	# no trace at debug
	refute_stderr --regexp ' trace '
	local line
	for line in "${stderr_lines[@]}"; do
		[[ $line =~ ^p2p-fetch:\ $TS\ (error|warn|info|debug|trace)(\ [a-z]+)?:\  ]] ||
			fail "not a log line: $line"
	done
}

@test "P2P_LOG=info,proto::conn=trace: frames of the conn module at trace, the rest at info" {
	fetch_log 'P2P_LOG=info,proto::conn=trace' --
	assert_stderr_line --regexp "^p2p-fetch: $TS trace conn: 127\.0\.0\.1:[0-9]+: > GET_MANIFEST rid [0-9]+, [0-9]+ bytes\$"
	assert_stderr_line --regexp "^p2p-fetch: $TS trace conn: 127\.0\.0\.1:[0-9]+: < CHUNK rid [0-9]+, [0-9]+ bytes\$"
	assert_stderr_line --regexp " info: $ID: complete"
	# the tool's own debug lines stay off
	refute_stderr --regexp "$TS debug: "
}

@test "RUST_LOG=mini_p2p::network=trace, the original's form, works as an alias" {
	fetch_log RUST_LOG=mini_p2p::network=trace --
	assert_stderr --regexp "$TS trace conn: .*< CHUNK"
	refute_stderr --regexp "$TS info: "
}

@test "P2P_LOG beats RUST_LOG; a module filter for another tool or program is ignored" {
	fetch_log P2P_LOG=warn RUST_LOG=trace --
	assert_stderr ''
	fetch_log 'P2P_LOG=p2p-serve=trace,tokio=debug' --
	assert_stderr ''
	fetch_log 'P2P_LOG=p2p-fetch=debug' --
	assert_stderr --regexp "$TS debug: 127\.0\.0\.1:[0-9]+: connecting"
	refute_stderr --regexp ' conn: '
}

@test "-v raises every module one level; -q leaves only errors" {
	fetch_log P2P_LOG=info -- -v
	assert_stderr --regexp "$TS debug conn: "
	fetch_log P2P_LOG=trace -- -q
	assert_stderr ''
	run -1 --separate-stderr p2p-fetch -q -p "127.0.0.1:$(unused_port)" -o out "$ID" </dev/null
	assert_stderr_line --regexp "^p2p-fetch: connect 127\.0\.0\.1:[0-9]+: Connection refused\$"
}

@test "errors and warnings of the tool keep the plain form, at any level" {
	run -1 --separate-stderr env P2P_LOG=trace p2p-fetch -p "127.0.0.1:$(unused_port)" -o out "$ID" </dev/null
	assert_stderr_line --regexp "^p2p-fetch: connect 127\.0\.0\.1:[0-9]+: Connection refused\$"
	assert_stderr_line --regexp "^p2p-fetch: $TS debug conn: 127\.0\.0\.1:[0-9]+: connecting\$"
}

@test "the store and disco modules: p2p-serve logs what it adds and what it announces" {
	P2P_LOG=warn,store=debug,disco=trace serve_chunked f -- --discovery-port "$(unused_udp_port)"
	wait_for grep -qE "^p2p-serve: $TS debug store: added $ID: .*/f, 300000 bytes in 19 chunks of 16384\$" "$SERVER_ERR"
	wait_for grep -qE "^p2p-serve: $TS trace disco: > announcement to 127\.255\.255\.255:[0-9]+: TCP port $SERVER_PORT, 1 files\$" "$SERVER_ERR"
	run ! grep -E ' info: | conn: ' "$SERVER_ERR"
}

@test "logging.level in the configuration file takes a filter too; the environment beats it" {
	mkdir -p config
	printf '[logging]\nlevel = "warn,conn=debug"  # a filter\n' > config/default.toml
	fetch_log --
	assert_stderr --regexp "$TS debug conn: "
	refute_stderr --regexp "$TS info: "
	fetch_log P2P_LOG=error --
	assert_stderr ''
	printf '[logging]\nlevel = "warn,conn=loud"\n' > config/default.toml
	run -2 --separate-stderr p2p-fetch -p "$SERVER_ADDR" "$ID" </dev/null
	assert_stderr "p2p-fetch: config/default.toml:2: logging.level = 'warn,conn=loud': want error, warn, info, debug or trace"
}

@test "a level that is none in P2P_LOG or RUST_LOG is a usage error naming the variable; another program's module is not" {
	run -2 --separate-stderr env P2P_LOG=verbose p2p-chunk --id "$BATS_TEST_FILENAME"
	assert_stderr --partial "p2p-chunk: P2P_LOG 'verbose': a level is error, warn, info, debug or trace"
	assert_output ''
	run -2 --separate-stderr env -u P2P_LOG RUST_LOG=conn=loud p2p-fetch --help
	assert_stderr --partial "p2p-fetch: RUST_LOG 'conn=loud'"
	run -0 --separate-stderr env -u P2P_LOG RUST_LOG=tokio=debug p2p-chunk --id "$BATS_TEST_FILENAME"
	assert_stderr ''
}
