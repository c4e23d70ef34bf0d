#!/usr/bin/env bats
# The configuration file: where it is found, what it sets, and that flags
# beat the environment, which beats the file, which beats the defaults.

bats_require_minimum_version 1.5.0
load ../bats/common

setup() {
	common_setup
	mkdir -p config
	make_file f 300000 41
}

chunk_size_of() {
	python3 "$P2P_REF" manifests - | python3 -c 'import json,sys; print(json.load(sys.stdin)["chunk_size"])'
}

@test "no configuration file anywhere: defaults, no error" {
	run -0 --separate-stderr p2p-chunk --id f
	assert_stderr ''
}

@test "config/default.toml in the working directory sets the chunk size; comments after values are allowed" {
	printf '[storage]\nchunk_size = 65536  # 64 KiB\n' > config/default.toml
	assert_equal "$(p2p-chunk f | chunk_size_of)" 65536
}

@test "~/.config/p2p/config.toml is read when there is no config/default.toml" {
	mkdir -p home/.config/p2p
	printf '[storage]\nchunk_size = 32768\n' > home/.config/p2p/config.toml
	assert_equal "$(p2p-chunk f | chunk_size_of)" 32768
	printf '[storage]\nchunk_size = 65536\n' > config/default.toml
	assert_equal "$(p2p-chunk f | chunk_size_of)" 65536
}

@test "flags beat the environment, which beats the file" {
	printf '[storage]\nchunk_size = 32768\n' > config/default.toml
	assert_equal "$(p2p-chunk f | chunk_size_of)" 32768
	assert_equal "$(MINI_P2P_CHUNK_SIZE=65536 p2p-chunk f | chunk_size_of)" 65536
	assert_equal "$(MINI_P2P_CHUNK_SIZE=65536 p2p-chunk -c 16K f | chunk_size_of)" 16384
}

@test "--config FILE is read instead; a missing --config file is an error" {
	printf '[storage]\nchunk_size = 65536\n' > config/default.toml
	printf '[storage]\nchunk_size = 16384\n' > mine.toml
	assert_equal "$(p2p-chunk --config mine.toml f | chunk_size_of)" 16384
	assert_equal "$(p2p-chunk --config=mine.toml f | chunk_size_of)" 16384
	run -2 --separate-stderr p2p-chunk --config nosuch.toml --id f
	assert_stderr "p2p-chunk: config nosuch.toml: No such file or directory"
}

@test "an invalid value is rejected naming file:line, the key and the value" {
	printf '[network]\nmax_peers = 50\n\n[storage]\nchunk_size = 3000\n' > config/default.toml
	run -2 --separate-stderr p2p-chunk --id f
	assert_stderr "p2p-chunk: config/default.toml:5: storage.chunk_size = '3000': want a power of two from 16384 to 4194304"
	printf '[logging]\nlevel = "loud"\n' > config/default.toml
	run -2 --separate-stderr p2p-verify "$(printf '%064d' 0)" f
	assert_stderr "p2p-verify: config/default.toml:2: logging.level = 'loud': want error, warn, info, debug or trace"
	printf '[network]\nconnection_timeout = 0\n' > config/default.toml
	run -2 --separate-stderr p2p-fetch -p 127.0.0.1:1 "$(printf '%064d' 0)" </dev/null
	assert_stderr --partial "config/default.toml:2: network.connection_timeout = '0'"
}

@test "the original's config/default.toml is accepted as it stands, and its log level applies" {
	cat > config/default.toml <<'TOML'
[network]
max_peers = 50
connection_timeout = 30
discovery_interval = 30

[storage]
chunk_size = 65536
max_file_size = 1073741824  # 1GB

[logging]
level = "info"
TOML
	run -0 --separate-stderr p2p-chunk --id f
	assert_stderr --regexp "^p2p-chunk: [^ ]+Z info: f: 300000 bytes, 5 chunks of 65536\$"
	# The environment's level beats the file's.
	P2P_LOG=error run -0 --separate-stderr p2p-chunk --id f
	assert_stderr ''
}

@test "storage.max_file_size: larger files are refused by p2p-chunk and p2p-fetch" {
	printf '[storage]\nmax_file_size = 100000\n' > config/default.toml
	run -1 --separate-stderr p2p-chunk --id f
	assert_stderr --partial "f: 300000 bytes, over storage.max_file_size (100000)"
	rm config/default.toml
	p2p-chunk f > f.mf
	start_server --stdin f.mf --no-announce
	printf '[storage]\nmax_file_size = 100000\n' > config/default.toml
	run -1 --separate-stderr p2p-fetch -p "$SERVER_ADDR" "$(p2p-chunk --config /dev/null --id f)" </dev/null
	assert_stderr --partial "300000 bytes, over storage.max_file_size (100000)"
}

@test "network.max_peers and connection_timeout reach p2p-serve: past the limit, connections are refused" {
	printf '[network]\nmax_peers = 2\n' > config/default.toml
	p2p-chunk --config /dev/null -c 64K f > f.mf
	start_server --stdin f.mf --no-announce
	run --separate-stderr timeout 30 python3 "$P2P_REF" load "$SERVER_ADDR" f.mf 5 1
	assert_stderr --partial "3 failures of 5 connections"
	# The environment beats the file.
	MINI_P2P_MAX_PEERS=10 start_server --stdin f.mf --no-announce
	run -0 --separate-stderr timeout 30 python3 "$P2P_REF" load "$SERVER_ADDR" f.mf 5 1
}

@test "the environment is read in one place: a malformed MINI_P2P_* is the same usage error in every tool" {
	local tool var
	for var in MINI_P2P_MAX_PEERS MINI_P2P_TIMEOUT MINI_P2P_DISCOVERY_PORT; do
		for tool in p2p-serve p2p-fetch p2p-discover; do
			run -2 --separate-stderr env "$var=12x" timeout 10 "$tool" --help </dev/null
			assert_stderr --partial "$var"
			assert_stderr --partial "'12x'"
		done
	done
	run -2 --separate-stderr env MINI_P2P_CHUNK_SIZE=3 timeout 10 p2p-chunk f </dev/null
	assert_stderr --partial MINI_P2P_CHUNK_SIZE
}

@test "MINI_P2P_TIMEOUT is the configuration's connection_timeout for p2p-serve too" {
	make_file f2 1000 5
	p2p-chunk f2 >f2.mf
	MINI_P2P_TIMEOUT=2 start_server --stdin f2.mf --no-announce
	# a connection that says nothing is closed by the handshake deadline (-T): 2 s, not 30
	python3 - "${SERVER_ADDR%:*}" "${SERVER_ADDR##*:}" <<'PY'
import socket, sys, time
s = socket.create_connection((sys.argv[1], int(sys.argv[2])))
s.settimeout(20)
start = time.monotonic()
try:
    while s.recv(4096):
        pass
except (ConnectionResetError, socket.timeout):
    pass
took = time.monotonic() - start
print("closed after %.1f s" % took)
sys.exit(0 if took < 15 else 1)
PY
}

@test "an unknown key is a warning naming file and line; with --strict, exit 2 in every tool" {
	printf '[network]\nmax_peers = 5\nmax_peer = 5\n' > config/default.toml
	run -0 --separate-stderr p2p-chunk --id f
	assert_stderr "p2p-chunk: config/default.toml:3: [network] max_peer: unknown key, ignored (--strict makes it an error)"
	local tool
	for tool in p2p-chunk p2p-fetch p2p-serve p2p-discover; do
		run -2 --separate-stderr timeout 10 "$tool" --strict --help </dev/null
		assert_stderr "$tool: config/default.toml:3: network.max_peer: unknown key"
		assert_output ''
	done
}

@test "config/example.toml: every key known, accepted by --strict without a word" {
	run -0 --separate-stderr p2p-chunk --strict --config "$BATS_TEST_DIRNAME/../config/example.toml" --id f
	assert_stderr ''
}
