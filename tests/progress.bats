#!/usr/bin/env bats
# The progress line of p2p-fetch and p2p-chunk: on stderr when it is a terminal (checked
# through script(1) and, rendered, through tmux), with --progress when it is not, never with
# -q alone; redrawn in place with \r, ended with a newline, and other stderr lines start on a
# line of their own.

bats_require_minimum_version 1.5.0
load ../bats/common

# A progress record: "p2p-fetch: 1.5 MiB of 2.0 MiB (75%)  1.0 MiB/s  1 peer  ETA 0:01".
SIZE='[0-9.]+ (B|KiB|MiB|GiB)'
REC="^p2p-fetch: $SIZE of 2\\.0 MiB \\([0-9]+%\\)  $SIZE/s  [0-9]+ peers?  ETA [-0-9:]+ *\$"
FINAL="^p2p-fetch: 2\\.0 MiB of 2\\.0 MiB \\(100%\\)  $SIZE/s  in 0:0[0-9] *\$"

setup() {
	common_setup
	make_file f 2M 5
	ID=$(p2p-chunk --id f)
}

teardown() {
	if [[ -n ${TMUX_PID:-} ]]; then
		kill "$TMUX_PID" 2>/dev/null || true
	fi
	common_teardown
}

# records FILE: the stderr in FILE cut at \r and \n, one record a line, blank ones dropped.
records() {
	tr '\r' '\n' <"$1" | grep -v '^ *$' || true
}

# A 2 MiB fetch at 1 MiB/s: two seconds, long enough for several redraws.
slow_fetch() {
	[[ -n ${SERVER_ADDR:-} ]] || serve_chunked -c 256K f -- --no-announce
	timeout 30 p2p-fetch --max-download-rate 1M -p "$SERVER_ADDR" -o out "$@" "$ID" </dev/null
}

@test "--progress with stderr to a file: records redrawn with \\r, a final one ended by a newline" {
	slow_fetch --progress 2>err
	cmp f out
	run records err
	((${#lines[@]} >= 4)) || fail "only ${#lines[@]} records: $output"
	local i
	for ((i = 0; i < ${#lines[@]} - 1; i++)); do
		[[ ${lines[i]} =~ $REC ]] || fail "not a progress record: '${lines[i]}'"
	done
	[[ ${lines[-1]} =~ $FINAL ]] || fail "not the final record: '${lines[-1]}'"
	# one line in all: redrawn with \r, the one newline at the very end
	assert_equal "$(tr -cd '\n' <err | wc -c)" 1
	assert_equal "$(tail -c 1 err | od -An -c | tr -d ' ')" '\n'
	(($(tr -cd '\r' <err | wc -c) >= 4))
	# no escape sequences in a file
	run ! grep -q $'\033' err
	# at most a few redraws a second: 2 s of transfer
	((${#lines[@]} <= 14)) || fail "${#lines[@]} records in 2 s"
}

@test "no progress when stderr is not a terminal, without --progress; -q does not stop --progress" {
	slow_fetch 2>err
	cmp f out
	assert_equal "$(stat -c %s err)" 0
	rm out
	slow_fetch -q --progress 2>err
	run records err
	[[ ${lines[-1]} =~ $FINAL ]]
}

@test "--progress: log lines start on a line of their own, and the progress line goes on after them" {
	P2P_LOG=info slow_fetch --progress 2>err
	run records err
	assert_line --regexp ' info: [0-9a-f]{64}: f, 2097152 bytes in 8 chunks, from '
	assert_line --regexp ' info: [0-9a-f]{64}: complete, 2097152 bytes$'
	[[ ${lines[-1]} =~ $FINAL ]]
	# a log line never follows a progress record on the same line
	run grep -c $'\r''p2p-fetch: [0-9]\{4\}-' err
	assert_output 0
	# the two above start lines of their own (a loaded machine may add
	# more info lines, a reconnection say)
	(($(grep -c '^p2p-fetch: [0-9]\{4\}-.* info: ' err) >= 2))
}

@test "p2p-chunk --progress: the file's name, its bytes, and the final record" {
	make_file big 64M 6
	p2p-chunk --progress --id big >id 2>err
	assert_equal "$(cat id)" "$(ref_id big)"
	run records err
	assert_line --regexp '^p2p-chunk: big: 64\.0 MiB of 64\.0 MiB \(100%\)  [0-9.]+ [KMG]iB/s  in 0:[0-9]{2} *$'
	assert_equal "$(tr -cd '\n' <err | wc -c)" 1
	# without --progress, on a file: nothing
	p2p-chunk --id big >id 2>err
	assert_equal "$(stat -c %s err)" 0
}

@test "on a terminal (script): progress drawn with \\r and erase-to-end-of-line; -q silences it" {
	has_tty_tool || skip "script(1) is not installed"
	serve_chunked -c 256K f -- --no-announce
	script -qfec "p2p-fetch --max-download-rate 1M -p $SERVER_ADDR -o out $ID" typescript >/dev/null </dev/null
	cmp f out
	grep -q $'\r''p2p-fetch: .* ETA .*'$'\033''\[K' typescript
	grep -q 'p2p-fetch: 2\.0 MiB of 2\.0 MiB (100%) .* in 0:0' typescript
	rm out
	script -qfec "p2p-fetch -q --max-download-rate 1M -p $SERVER_ADDR -o out $ID" typescript >/dev/null </dev/null
	cmp f out
	run ! grep -q 'MiB/s' typescript
}

@test "on a terminal (tmux): the screen shows one progress line, redrawn in place, then the prompt below it" {
	command -v tmux >/dev/null || skip "tmux is not installed"
	serve_chunked f -- --no-announce
	local sock="$BATS_TEST_TMPDIR/tmux.sock" screen
	tmux -S "$sock" -f /dev/null new-session -d -x 120 -y 20 \
		"env PATH='$PATH' p2p-fetch --max-download-rate 1M -p $SERVER_ADDR -o out $ID; echo FETCH-DONE; sleep 60"
	TMUX_PID=$(tmux -S "$sock" display-message -p '#{pid}')
	# midway: a single progress line, not a scroll of them
	wait_for -t 5 eval "tmux -S '$sock' capture-pane -p | grep -q ETA"
	screen=$(tmux -S "$sock" capture-pane -p)
	assert_equal "$(grep -c 'p2p-fetch:' <<<"$screen")" 1
	[[ $(grep 'p2p-fetch:' <<<"$screen") =~ $REC ]] || fail "midway: $screen"
	# at the end: the final line, and the next output on the line below it
	wait_for -t 20 eval "tmux -S '$sock' capture-pane -p | grep -q FETCH-DONE"
	screen=$(tmux -S "$sock" capture-pane -p | grep -v '^$')
	assert_equal "$(grep -c 'p2p-fetch:' <<<"$screen")" 1
	[[ $(sed -n 1p <<<"$screen") =~ $FINAL ]] || fail "at the end: $screen"
	assert_equal "$(sed -n 2p <<<"$screen")" FETCH-DONE
	cmp f out
	tmux -S "$sock" kill-server
	wait_for -t 5 eval '! kill -0 "$TMUX_PID" 2>/dev/null'
	TMUX_PID=
}

@test "every option of progress, JSON and bandwidth is in --help, the man page and the README" {
	local docs="$BATS_TEST_DIRNAME/../docs/man" readme="$BATS_TEST_DIRNAME/../README.md"
	local pair tool opt
	for pair in p2p-fetch:--progress p2p-fetch:--json p2p-fetch:--max-download-rate \
		p2p-fetch:--max-upload-rate p2p-serve:--json p2p-serve:--max-download-rate \
		p2p-serve:--max-upload-rate p2p-chunk:--progress p2p-verify:--json \
		p2p-discover:--json; do
		tool=${pair%%:*}
		opt=${pair#*:}
		run -0 "$tool" --help
		assert_output --partial -- "$opt"
		grep -q -- "Fl -${opt#--}" "$docs/$tool.1" || fail "$opt is not in $tool(1)"
		grep -q -- "$opt" "$readme" || fail "$opt is not in the README"
	done
	grep -q 'max_upload_rate' "$docs/p2p.7"
	grep -q 'mini_p2p::network' "$docs/p2p.7"
}

@test "the peer count is the peers that sent data: a connected one that sends nothing is not counted" {
	p2p-chunk -c 256K f >m
	start_fake_peer m silent
	local silent=$SERVER_ADDR
	SERVER_ADDR=
	serve_chunked -c 256K f -- --no-announce
	timeout 30 p2p-fetch --progress --max-download-rate 1M -T 20 -p "$silent" \
		-p "$SERVER_ADDR" -o out "$ID" </dev/null 2>err
	cmp f out
	run records err
	assert_line --regexp '  1 peer  ETA '
	refute_line --regexp '  2 peers  '
}

@test "a resumed fetch: the final line says what was resumed, and its rate counts only this run's bytes" {
	serve_chunked -c 256K f -- --no-announce
	head -c 1792K f >out.part
	truncate -s 2M out.part
	# the last chunk alone, at 64 KiB/s: about 4 s, so over the whole 2 MiB the rate would be
	# some 500 KiB/s, over this run's 256 KiB some 64 KiB/s
	timeout 60 p2p-fetch --progress --max-download-rate 64K -p "$SERVER_ADDR" -o out "$ID" \
		</dev/null 2>err
	cmp f out
	run records err
	[[ ${lines[-1]} =~ ^p2p-fetch:\ 2\.0\ MiB\ of\ 2\.0\ MiB\ \(100%\)\ \ ([0-9.]+)\ (B|KiB)/s\ \ in\ 0:[0-9]{2},\ resumed\ 7\ of\ 8\ chunks\ *$ ]] ||
		fail "not the final record: '${lines[-1]}'"
	# a rate limit of 64 KiB/s bounds it (the burst of a limiter is at most a second's)
	[[ ${BASH_REMATCH[2]} == B ]] || ((${BASH_REMATCH[1]%.*} < 200)) ||
		fail "the rate counts resumed bytes: ${lines[-1]}"
}

# interrupted SIG STATUS: a slow fetch to a file, stopped by SIG midway, exits STATUS and keeps
# the .part; the bytes of its final progress line are those its message says were kept.
interrupted() {
	serve_chunked -c 64K f -- --no-announce
	p2p-fetch --progress --max-download-rate 256K -p "$SERVER_ADDR" -o out "$ID" </dev/null 2>err &
	local pid=$! status=0
	wait_for -t 20 eval '[[ -s out.part ]] && grep -q " peer  ETA" err'
	kill "-$1" "$pid"
	wait "$pid" || status=$?
	assert_equal "$status" "$2"
	assert_file_exists out.part
	assert_file_not_exists out
	run records err
	assert_line --regexp "^p2p-fetch: interrupted by .*\\(partial file kept: [0-9]+ of 2097152 bytes\\)"
	local kept final
	kept=$(grep -o 'partial file kept: [0-9]*' err | grep -o '[0-9]*$')
	final=$(grep " in 0:" <<<"$output" | tail -n 1)
	((kept % 65536 == 0)) || fail "kept $kept bytes: not whole chunks"
	[[ $final =~ ^p2p-fetch:\ ([0-9.]+\ (B|KiB|MiB))\ of\ 2\.0\ MiB ]] || fail "no final line: $output"
	assert_equal "${BASH_REMATCH[1]}" "$(human "$kept")"
	# the same command goes on from there
	timeout 30 p2p-fetch -p "$SERVER_ADDR" -o out "$ID" </dev/null
	cmp f out
}

# human BYTES: as the progress line says it.
human() {
	python3 -c 'import sys
v = float(sys.argv[1]); u = 0
while v >= 1024 and u < 4: v /= 1024; u += 1
print("%.0f B" % v if u == 0 else "%.1f %siB" % (v, " KMGT"[u]))' "$1"
}

@test "SIGINT: exits 130, the .part kept, and the final line says the bytes kept" {
	interrupted INT 130
}

@test "SIGTERM: exits 143, the .part kept" {
	interrupted TERM 143
}

@test "the exit statuses 130 and 143 are in the man page and the README" {
	grep -q '^\.It 130$' "$BATS_TEST_DIRNAME/../docs/man/p2p-fetch.1"
	grep -q '^\.It 143$' "$BATS_TEST_DIRNAME/../docs/man/p2p-fetch.1"
	grep -q 'exits 130' "$BATS_TEST_DIRNAME/../README.md"
}
