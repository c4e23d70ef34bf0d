# Helpers every suite loads with `load ../bats/common`: the tools first in PATH, the bats
# libraries, servers on kernel-chosen ports that teardown kills by PID, test files, and waits
# that always give up. Nothing here uses a fixed port or an address other than 127.0.0.1.

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
unset MINI_P2P_CHUNK_SIZE MINI_P2P_TIMEOUT P2P_LOG RUST_LOG

# How long any wait may take, in seconds.
P2P_WAIT=${P2P_WAIT:-10}

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

# _first_line_addr FILE: true when FILE holds a complete first line HOST:PORT.
_first_line_addr() {
	local line
	[[ -s $1 ]] || return 1
	IFS= read -r line <"$1" || return 1 # no newline yet: not complete
	[[ $line =~ ^[^:[:space:]]+:[0-9]+$ ]]
}

# _start_bg STDIN CMD...: run CMD in the background with stdin from STDIN, stdout and stderr
# to files; wait for its first stdout line HOST:PORT. Sets SERVER_PID, SERVER_PORT,
# SERVER_ADDR (always 127.0.0.1:PORT), SERVER_HOST (as printed), SERVER_OUT, SERVER_ERR.
_start_bg() {
	local input=$1
	shift
	SERVER_COUNT=$((SERVER_COUNT + 1))
	SERVER_OUT="$BATS_TEST_TMPDIR/server.$SERVER_COUNT.out"
	SERVER_ERR="$BATS_TEST_TMPDIR/server.$SERVER_COUNT.err"
	# fd 3 is bats' own: a child that keeps it open makes bats wait for the child.
	"$@" <"$input" >"$SERVER_OUT" 2>"$SERVER_ERR" 3>&- &
	SERVER_PID=$!
	SERVER_PIDS+=("$SERVER_PID")
	local deadline=$((SECONDS + P2P_WAIT))
	until _first_line_addr "$SERVER_OUT"; do
		if ! pid_alive "$SERVER_PID"; then
			echo "server exited before printing HOST:PORT: $*" >&2
			echo "--- stdout:" >&2
			cat "$SERVER_OUT" >&2
			echo "--- stderr:" >&2
			cat "$SERVER_ERR" >&2
			return 1
		fi
		if ((SECONDS >= deadline)); then
			echo "server printed no HOST:PORT within ${P2P_WAIT}s: $*" >&2
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

# start_server [ARGS...]: p2p-serve on 127.0.0.1, port from the kernel, stdin empty.
start_server() {
	_start_bg /dev/null p2p-serve -p 0 --bind 127.0.0.1 "$@"
}

# start_server_stdin FILE [ARGS...]: the same with FILE (manifests) on stdin.
start_server_stdin() {
	local input=$1
	shift
	_start_bg "$input" p2p-serve -p 0 --bind 127.0.0.1 "$@"
}

# start_fake_peer MANIFEST MODE: the Python fake peer of p2p_ref.py (see there for MODEs).
start_fake_peer() {
	_start_bg /dev/null python3 "$P2P_REF" peer "$1" "$2"
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

# Suites call this from teardown(); it also ends other background jobs a test recorded in
# EXTRA_PIDS (a fetch under test, say).
common_teardown() {
	local pid
	for pid in "${EXTRA_PIDS[@]}"; do
		kill -KILL "$pid" 2>/dev/null || true
	done
	EXTRA_PIDS=()
	stop_servers
}
EXTRA_PIDS=()

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
	start_server_stdin "$m" "${serve_args[@]}"
	SERVER_MANIFEST=$m
	local id
	for id in $(manifest_ids "$m"); do
		wait_listed "$SERVER_ADDR" "$id"
	done
}
