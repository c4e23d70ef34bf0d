# Helpers every suite loads with `load ../bats/common`: the tools first in PATH, the bats
# libraries, the per-test setup and teardown, servers on kernel-chosen ports that teardown kills
# by PID, test files, and waits that always give up. Nothing here uses a fixed port or an
# address other than 127.0.0.1.
#
# setup() and teardown() are defined here. A suite that needs more defines its own setup()
# calling common_setup first, and its own teardown() calling common_teardown (after ending
# what only it knows of). Anything a test exports in setup stays in that test: bats runs each
# test, and its setup, in a process of its own, several at a time.

P2P_BIN=${P2P_BIN:-"$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/build/bin"}
P2P_HELPERS="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
P2P_REF="$P2P_HELPERS/p2p_ref.py"
PATH="$P2P_BIN:$PATH"
export P2P_BIN P2P_REF PATH

bats_load_library bats-support
bats_load_library bats-assert
bats_load_library bats-file

# Discovery (a later issue) must never leave the loopback; the rest of the environment is reset
# so that a developer's settings cannot change what the tools do under test.
export MINI_P2P_DISCOVERY_ADDR=127.255.255.255
# IPv6 discovery (multicast to each interface's link) is off; tests/ipv6.bats turns it on
# inside its namespaces only.
export MINI_P2P_DISCOVERY_ADDR6=off
# Nor the DHT: libproto refuses to start it with the public bootstrap node or any name.
export MINI_P2P_NO_PUBLIC_DHT=1
unset MINI_P2P_DHT MINI_P2P_DHT_BOOTSTRAP MINI_P2P_DHT_PORT
unset MINI_P2P_CHUNK_SIZE MINI_P2P_TIMEOUT P2P_LOG RUST_LOG MINI_P2P_NO_TLS P2P_REF_TLS

# Each test has a home of its own: the nodes' key (~/.config/p2p/identity.pem, made on first
# use) is written there, never in the real home, and tests running at the same time do not
# share it. Every node of one test shares that one identity, which the tools allow.
export HOME="${BATS_TEST_TMPDIR:-${BATS_FILE_TMPDIR:-$BATS_RUN_TMPDIR}}/home"
mkdir -p "$HOME"
unset XDG_CONFIG_HOME P2P_IDENTITY

# The reference's TLS certificate (bats/p2p_ref.py), made once per run and shared by every test:
# made aside, then renamed into place, so that tests loading this at the same time never see
# half of it.
export P2P_REF_CERT_DIR="$BATS_RUN_TMPDIR/p2p-ref-tls"
if [[ ! -s $P2P_REF_CERT_DIR/cert.pem ]]; then
	_p2p_ref_tmp=$(mktemp -d "$BATS_RUN_TMPDIR/p2p-ref-tls.XXXXXX")
	openssl req -x509 -newkey ed25519 -nodes -subj /CN=p2p_ref -days 2 \
		-keyout "$_p2p_ref_tmp/key.pem" -out "$_p2p_ref_tmp/cert.pem" </dev/null >/dev/null 2>&1 ||
		echo "common.bash: openssl cannot make the reference's certificate" >&2
	mv -T "$_p2p_ref_tmp" "$P2P_REF_CERT_DIR" 2>/dev/null || rm -rf "$_p2p_ref_tmp"
	unset _p2p_ref_tmp
fi

# How long any wait may take, in seconds.
P2P_WAIT=${P2P_WAIT:-10}
# How long a server may take to start and say where it listens: longer, as under the
# sanitizers on a loaded machine the reference's Python peer once took over 10 s.
P2P_START_WAIT=${P2P_START_WAIT:-30}

SERVER_PIDS=()
SERVER_COUNT=0

# ---- assertions on $stderr (bats-assert only looks at $output) ----

assert_stderr() {
	local output="$stderr"
	assert_output "$@"
}

refute_stderr() {
	local output="$stderr"
	refute_output "$@"
}

assert_stderr_line() {
	local output="$stderr"
	local -a lines=("${stderr_lines[@]}")
	assert_line "$@"
}

refute_stderr_line() {
	local output="$stderr"
	local -a lines=("${stderr_lines[@]}")
	refute_line "$@"
}

# ---- waiting ----

# wait_for [-t SECONDS] CMD...: run CMD every 0.05 s until it succeeds; fail after SECONDS.
wait_for() {
	local timeout=$P2P_WAIT
	if [[ $1 == -t ]]; then
		timeout=$2
		shift 2
	fi
	local deadline=$((SECONDS + timeout))
	until "$@"; do
		if ((SECONDS >= deadline)); then
			echo "wait_for: gave up after ${timeout}s: $*" >&2
			return 1
		fi
		sleep 0.05
	done
}

# pid_alive PID: true while PID runs (a zombie does not count).
pid_alive() {
	local state
	kill -0 "$1" 2>/dev/null || return 1
	state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
	[[ $state != Z && $state != X ]]
}

# wait_exit PID [SECONDS]: wait for a child of this shell to end; set $exit_status to its
# status. Fails (leaving it running) after SECONDS.
wait_exit() {
	local pid=$1 timeout=${2:-$P2P_WAIT}
	local deadline=$((SECONDS + timeout))
	while pid_alive "$pid"; do
		if ((SECONDS >= deadline)); then
			echo "wait_exit: pid $pid still running after ${timeout}s" >&2
			return 1
		fi
		sleep 0.05
	done
	exit_status=0
	wait "$pid" 2>/dev/null || exit_status=$?
}

# ---- servers ----

# _first_line_addr FILE: true when FILE holds a complete first line HOST:PORT ([HOST]:PORT for
# IPv6).
_first_line_addr() {
	local line
	[[ -s $1 ]] || return 1
	IFS= read -r line <"$1" || return 1 # no newline yet: not complete
	[[ $line =~ ^([^:[:space:]]+|\[[0-9a-fA-F:.%a-z]+\]):[0-9]+$ ]]
}

# One way to start a server: start_server. Whatever it starts is recorded in SERVER_PIDS, and
# teardown stops each by its PID (stop_servers). The wrappers after it (start_fake_peer, and
# start_badpeer, start_faultproxy, start_stream_server further down) only name the program and
# keep its address under a name of their own; serve_chunked chunks and waits for the listing.

# start_server [--stdin FILE] [--cmd PROGRAM] [ARGS...]: a server in the background, once it
# printed where it listens, HOST:PORT, as the first line of its stdout (it fails after
# P2P_START_WAIT seconds, or when the server ends first, showing what it wrote). Without --cmd it is
# `p2p-serve -p 0 --bind 127.0.0.1 ARGS` (the port from the kernel); with it, `PROGRAM ARGS`,
# which must print that line the same way. Stdin is FILE (manifests, for p2p-serve), else
# empty. Sets SERVER_PID, SERVER_PORT, SERVER_ADDR (always 127.0.0.1:PORT), SERVER_HOST (as
# printed), SERVER_OUT and SERVER_ERR (its stdout and stderr, files).
start_server() {
	local input=/dev/null
	local -a cmd=(p2p-serve -p 0 --bind 127.0.0.1)
	while (($#)); do
		case $1 in
		--stdin)
			input=$2
			shift 2
			;;
		--cmd)
			cmd=("$2")
			shift 2
			;;
		*) break ;;
		esac
	done
	cmd+=("$@")
	SERVER_COUNT=$((SERVER_COUNT + 1))
	SERVER_OUT="$BATS_TEST_TMPDIR/server.$SERVER_COUNT.out"
	SERVER_ERR="$BATS_TEST_TMPDIR/server.$SERVER_COUNT.err"
	# fd 3 is bats' own: a child that keeps it open makes bats wait for the child.
	"${cmd[@]}" <"$input" >"$SERVER_OUT" 2>"$SERVER_ERR" 3>&- &
	SERVER_PID=$!
	SERVER_PIDS+=("$SERVER_PID")
	local deadline=$((SECONDS + P2P_START_WAIT))
	until _first_line_addr "$SERVER_OUT"; do
		if ! pid_alive "$SERVER_PID"; then
			echo "server exited before printing HOST:PORT: ${cmd[*]}" >&2
			echo "--- stdout:" >&2
			cat "$SERVER_OUT" >&2
			echo "--- stderr:" >&2
			cat "$SERVER_ERR" >&2
			return 1
		fi
		if ((SECONDS >= deadline)); then
			echo "server printed no HOST:PORT within ${P2P_START_WAIT}s: ${cmd[*]}" >&2
			cat "$SERVER_ERR" >&2
			return 1
		fi
		sleep 0.05
	done
	local line
	IFS= read -r line <"$SERVER_OUT"
	SERVER_HOST=${line%:*}
	SERVER_PORT=${line##*:}
	SERVER_ADDR="127.0.0.1:$SERVER_PORT"
}

# start_fake_peer MANIFEST MODE: the reference's fake peer (bats/p2p_ref.py peer; its MODEs
# and how they match p2p-badpeer's are at the top of that file). Sets what start_server sets.
start_fake_peer() {
	start_server --cmd python3 "$P2P_REF" peer "$1" "$2"
}

# server_identity [ERRFILE]: the identity a p2p-serve logged at start ("identity HEX", info level,
# "identity HEX (private swarm)" in one) in ERRFILE (default: the last server's, $SERVER_ERR),
# waiting for the line to be written.
server_identity() {
	local err=${1:-$SERVER_ERR}
	wait_for grep -Eq ' info: identity [0-9a-f]{64}( |$)' "$err" || return 1
	sed -En 's/.* info: identity ([0-9a-f]{64})( .*)?$/\1/p' "$err" | head -n 1
}

# stop_server PID: TERM, wait up to P2P_WAIT seconds, then KILL. Sets $exit_status.
stop_server() {
	local pid=$1
	exit_status=
	pid_alive "$pid" || {
		exit_status=0
		wait "$pid" 2>/dev/null || exit_status=$?
		return 0
	}
	kill -TERM "$pid" 2>/dev/null || true
	if ! wait_exit "$pid" "$P2P_WAIT" 2>/dev/null; then
		kill -KILL "$pid" 2>/dev/null || true
		wait_exit "$pid" 5 || true
		return 1
	fi
}

stop_servers() {
	local pid
	for pid in "${SERVER_PIDS[@]}"; do
		stop_server "$pid" || echo "stop_servers: $pid ignored TERM, killed" >&2
	done
	SERVER_PIDS=()
}

# common_setup: what every test starts with: its own directory, $BATS_TEST_TMPDIR, as the
# working directory (the environment above is set when this file is loaded, for each test).
common_setup() {
	cd "$BATS_TEST_TMPDIR" || return 1
}

# common_teardown: stops every server the helpers here started, by PID, after ending the other
# background jobs a test recorded in EXTRA_PIDS (a fetch under test, say).
common_teardown() {
	local pid
	for pid in "${EXTRA_PIDS[@]}"; do
		kill -KILL "$pid" 2>/dev/null || true
	done
	EXTRA_PIDS=()
	stop_servers
}
EXTRA_PIDS=()

setup() {
	common_setup
}

teardown() {
	common_teardown
}

# unused_port: a TCP port on 127.0.0.1 that nothing listens on (bound by the kernel, closed).
unused_port() {
	python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

# ---- files ----

# make_file PATH SIZE [SEED]: SIZE bytes (head -c syntax: 16384, 64K, 8M) of pseudo-random
# content, the same for the same SEED every run, different for different seeds.
make_file() {
	local path=$1 size=$2 seed=${3:-0}
	local iv
	iv=$(printf '%032x' "$seed")
	openssl enc -aes-128-ctr -nosalt -K 000102030405060708090a0b0c0d0e0f -iv "$iv" \
		</dev/zero 2>/dev/null | head -c "$size" >"$path"
}

# corrupt PATH OFFSET [TEXT]: overwrite bytes at OFFSET in place (size unchanged).
corrupt() {
	printf '%s' "${3:-XXXX}" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

# ref_id FILE: content id by the reference implementation (bats/p2p_ref.py).
ref_id() {
	python3 "$P2P_REF" id "$1"
}

# manifest_field FILE KEY [INDEX]: a field of manifest INDEX (default 0) of a manifest stream,
# as decoded by the reference (lists print one item a line).
manifest_field() {
	python3 "$P2P_REF" manifests "$1" | python3 -c '
import json, sys
key, idx = sys.argv[1], int(sys.argv[2])
m = [json.loads(l) for l in sys.stdin][idx]
v = m.get(key, "<absent>")
if isinstance(v, list):
    print("\n".join(map(str, v)))
elif isinstance(v, bool):
    print("true" if v else "false")
else:
    print(v)' "$2" "${3:-0}"
}

# stats_field TEXT KEY: the value of KEY=VALUE in a --stats line within TEXT.
stats_field() {
	local line
	line=$(grep -E ': stats ' <<<"$1" | tail -n 1)
	[[ " $line " =~ [[:space:]]$2=([^[:space:]]*) ]] || return 1
	printf '%s\n' "${BASH_REMATCH[1]}"
}

# file_size PATH
file_size() {
	stat -c %s "$1"
}

# has_tty_tool: script(1) is there to give a command a terminal.
has_tty_tool() {
	command -v script >/dev/null 2>&1
}

# to_file OUT CMD...: CMD with stdout to OUT, for `run` on commands with binary output
# (run keeps only text: it would drop the NUL bytes of a manifest).
to_file() {
	local out=$1
	shift
	"$@" >"$out"
}

# listed ADDR ID: the peer at ADDR lists ID (asked over the wire by the reference client, so
# the p2p-serve suite does not depend on p2p-fetch --list).
listed() {
	python3 "$P2P_REF" list "$1" 2>/dev/null | grep -q "^$2"$'\t'
}

# wait_listed ADDR ID...: wait until the peer serves every ID (manifests arrive asynchronously).
wait_listed() {
	local addr=$1 id
	shift
	for id in "$@"; do
		wait_for listed "$addr" "$id"
	done
}

# chunks_ok_count PART SOURCE CS: how many CS-sized chunks of PART already equal SOURCE's.
chunks_ok_count() {
	python3 - "$@" <<'PY'
import sys
part, src, cs = sys.argv[1], sys.argv[2], int(sys.argv[3])
n = 0
with open(part, "rb") as a, open(src, "rb") as b:
    while True:
        y = b.read(cs)
        if not y:
            break
        x = a.read(cs)
        n += x == y
print(n)
PY
}

# corrupt_chunks FILE CS [EVERY]: flip a byte in the middle of every EVERY-th (default every)
# CS-sized chunk of FILE, in place.
corrupt_chunks() {
	python3 - "$@" <<'PY'
import os, sys
path, cs = sys.argv[1], int(sys.argv[2])
every = int(sys.argv[3]) if len(sys.argv) > 3 else 1
size = os.path.getsize(path)
with open(path, "r+b") as f:
    for j in range(0, -(-size // cs), every):
        off = min(j * cs + cs // 2, size - 1)
        f.seek(off)
        b = f.read(1)
        f.seek(off)
        f.write(bytes([b[0] ^ 0xff]))
PY
}

# manifest_ids FILE: the content id of every manifest in a manifest stream, one a line.
manifest_ids() {
	python3 "$P2P_REF" manifests "$1" | python3 -c '
import json, sys
for l in sys.stdin:
    print(json.loads(l)["id"])'
}

# serve_chunked [P2P-CHUNK ARGS...] [-- P2P-SERVE ARGS...]: chunk, start a server on the
# manifests, and wait until it lists every file (stdin is read asynchronously). Sets what
# start_server sets, and SERVER_MANIFEST.
serve_chunked() {
	local chunk_args=() serve_args=()
	while (($#)); do
		if [[ $1 == -- ]]; then
			shift
			serve_args=("$@")
			break
		fi
		chunk_args+=("$1")
		shift
	done
	local m="$BATS_TEST_TMPDIR/manifest.$((SERVER_COUNT + 1))"
	p2p-chunk "${chunk_args[@]}" >"$m"
	start_server --stdin "$m" "${serve_args[@]}"
	SERVER_MANIFEST=$m
	local id
	for id in $(manifest_ids "$m"); do
		wait_listed "$SERVER_ADDR" "$id"
	done
}

# ---- discovery ----

# unused_udp_port: a UDP port that nothing is bound to (picked by the kernel, closed). Each
# discovery test uses its own, given to servers and p2p-discover as --discovery-port, so tests
# and suites running at the same time never see each other's servers.
unused_udp_port() {
	python3 -c 'import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 0))
print(s.getsockname()[1])
s.close()'
}

# now_ns: a timestamp in nanoseconds, for ms_since.
now_ns() {
	date +%s%N
}

# ms_since START: milliseconds elapsed since START (a now_ns value).
ms_since() {
	echo $((($(date +%s%N) - $1) / 1000000))
}

# no_duplicate_lines TEXT: every line of TEXT is there once (prints the repeated ones if not).
no_duplicate_lines() {
	local dups
	dups=$(sort <<<"$1" | uniq -d)
	if [[ -n $dups ]]; then
		echo "lines printed more than once:" >&2
		echo "$dups" >&2
		return 1
	fi
}

# discover_finds SECONDS ADDR... -- P2P-DISCOVER ARGS...: p2p-discover (run for SECONDS at
# most) prints every ADDR. Leaves its stdout in $DISCOVERED. For wait_for loops.
discover_finds() {
	local t=$1 want=() a
	shift
	while (($#)) && [[ $1 != -- ]]; do
		want+=("$1")
		shift
	done
	shift
	DISCOVERED=$(timeout $((t + 10)) p2p-discover -t "$t" "$@" </dev/null 2>/dev/null) || true
	for a in "${want[@]}"; do
		grep -qxF "$a" <<<"$DISCOVERED" || return 1
	done
}

# ---- misbehaving peers (tests/attacks.bats) ----

# The peer of tests/peers/p2p-badpeer.c, built beside the tools it attacks: build/tests for
# build/bin, build-asan/tests for build-asan/bin. P2P_BADPEER overrides.
P2P_BADPEER=${P2P_BADPEER:-"$(dirname "$P2P_BIN")/tests/p2p-badpeer"}

# start_badpeer MODE MANIFEST FILE: p2p-badpeer serving FILE (of MANIFEST) to fetchers,
# misbehaving as MODE. Sets BADPEER_ADDR, BADPEER_PID and BADPEER_ERR (its report on stderr:
# a "misbehaved: MODE: ..." line once it did) and what start_server sets; teardown kills it.
start_badpeer() {
	start_server --cmd "$P2P_BADPEER" serve "$@" || return 1
	BADPEER_ADDR=$SERVER_ADDR
	BADPEER_PID=$SERVER_PID
	BADPEER_ERR=$SERVER_ERR
}

# start_attack [-n COUNT] [-t SECONDS] MODE HOST:PORT [ID]: p2p-badpeer attacking a server in
# the background, until it reports "under way" (or ends). Sets ATTACK_PID and ATTACK_ERR (its
# report); teardown kills it.
start_attack() {
	ATTACK_ERR="$BATS_TEST_TMPDIR/attack.$((${#EXTRA_PIDS[@]} + 1)).err"
	"$P2P_BADPEER" attack "$@" </dev/null >/dev/null 2>"$ATTACK_ERR" 3>&- &
	ATTACK_PID=$!
	EXTRA_PIDS+=("$ATTACK_PID")
	wait_for _attack_started || {
		cat "$ATTACK_ERR" >&2
		return 1
	}
}

_attack_started() {
	grep -q 'under way' "$ATTACK_ERR" || ! pid_alive "$ATTACK_PID"
}

# rss_kib PID: the resident memory of PID in KiB (VmRSS).
rss_kib() {
	awk '$1 == "VmRSS:" { print $2; found = 1 } END { exit !found }' "/proc/$1/status" 2>/dev/null
}

# start_rss_watch PID WHILE_PID: samples PID's resident memory every 0.1 s while WHILE_PID
# runs, keeping the largest in KiB in the file $RSS_MAX_FILE. Sets RSS_WATCH_PID; teardown
# kills it.
start_rss_watch() {
	RSS_MAX_FILE="$BATS_TEST_TMPDIR/rss.max"
	rss_kib "$1" >"$RSS_MAX_FILE"
	_rss_watch "$@" </dev/null >/dev/null 2>&1 3>&- &
	RSS_WATCH_PID=$!
	EXTRA_PIDS+=("$RSS_WATCH_PID")
}

_rss_watch() {
	local max r
	max=$(cat "$RSS_MAX_FILE")
	while pid_alive "$2"; do
		r=$(rss_kib "$1") || break
		if ((r > max)); then
			max=$r
			echo "$max" >"$RSS_MAX_FILE.new" && mv "$RSS_MAX_FILE.new" "$RSS_MAX_FILE"
		fi
		sleep 0.1
	done
}

# is_asan_build: the tools were built with AddressSanitizer, whose quarantine and shadow memory
# keep freed memory resident: resident-memory bounds mean nothing there.
is_asan_build() {
	ldd "$P2P_BIN/p2p-serve" 2>/dev/null | grep -q 'libasan' ||
		nm "$P2P_BIN/p2p-serve" 2>/dev/null | grep -q '__asan_init'
}

# ---- the fault-injecting proxy (tests/faults.bats) ----

# tests/proxy/p2p-faultproxy.c, built beside the tools it tests, like p2p-badpeer: build/tests
# for build/bin, build-asan/tests for build-asan/bin. P2P_FAULTPROXY overrides.
P2P_FAULTPROXY=${P2P_FAULTPROXY:-"$(dirname "$P2P_BIN")/tests/p2p-faultproxy"}
P2P_STREAM="$P2P_HELPERS/../tests/proxy/stream.py"

# start_faultproxy TARGET [OPTIONS...]: p2p-faultproxy relaying to TARGET (HOST:PORT) with the
# faults OPTIONS ask for (--cut-after N, --only-first K, ...). Sets PROXY_ADDR, PROXY_PID and
# PROXY_ERR (its report: one "p2p-faultproxy: connection N: ..." line per connection, fault and
# close) and what start_server sets; teardown kills it.
start_faultproxy() {
	local target=$1
	shift
	start_server --cmd "$P2P_FAULTPROXY" "$@" "$target" || return 1
	PROXY_ADDR=$SERVER_ADDR
	PROXY_PID=$SERVER_PID
	PROXY_ERR=$SERVER_ERR
}

# proxy_reported ERRFILE REGEX: the proxy's report holds a line "p2p-faultproxy: REGEX".
proxy_reported() {
	grep -Eq "^p2p-faultproxy: $2\$" "$1"
}

# proxy_connections ERRFILE: how many connections the proxy accepted so far.
proxy_connections() {
	grep -c '^p2p-faultproxy: connection [0-9]*: accepted' "$1" || true
}

# start_stream_server FILE: a plain TCP server (tests/proxy/stream.py) sending FILE to every
# client, to test the proxy on its own. Sets what start_server sets.
start_stream_server() {
	start_server --cmd python3 "$P2P_STREAM" serve "$1"
}

# stream_read ADDR OUT [SECONDS]: read a stream from ADDR into OUT until it ends or is silent
# for SECONDS (default 2). Sets STREAM_END (eof, reset or silent), STREAM_BYTES, STREAM_FIRST_MS
# (to the first byte; -1 for none) and STREAM_MS.
stream_read() {
	local line
	line=$(timeout $((${3:-2} + 30)) python3 "$P2P_STREAM" read "$1" "$2" "${3:-2}") || return 1
	read -r STREAM_END STREAM_BYTES STREAM_FIRST_MS STREAM_MS <<<"$line"
}

# median N...: the median of integers (the lower middle one for an even count).
median() {
	printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}

# list_files ARGS...: `p2p-fetch --list ARGS` (30 s at most) with the trees left out: a -d
# server shares its tree too (docs/PROTOCOL.md section 10), listed as a text line whose name
# ends in '/', or a JSON object of "type" "tree". Its exit status is p2p-fetch's.
list_files() {
	local rc=0 out
	out=$(timeout 30 p2p-fetch --list "$@") || rc=$?
	if [[ -n $out ]]; then
		grep -v -e $'\t[^\t]*/$' -e '"type":"tree"' <<<"$out" || true
	fi
	return $rc
}
