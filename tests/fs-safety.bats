#!/usr/bin/env bats
# Nothing is written outside the output path, nothing is served from
# outside a shared directory, and a full disk loses no verified chunk.

bats_require_minimum_version 1.5.0
load ../bats/common

@test "serve -d: symbolic links inside DIR are not followed, so nothing outside is shared" {
	mkdir share outside
	echo "secret canary" > outside/canary
	make_file share/real.bin 50000 1
	ln -s ../outside/canary share/link-to-file
	ln -s ../outside share/link-to-dir
	start_server -d share
	run -0 --separate-stderr list_files -p "$SERVER_ADDR"
	assert_equal "${#lines[@]}" 1
	assert_line --partial "	real.bin"
	refute_output --partial canary
	# The canary's id is not served either.
	run -1 --separate-stderr p2p-fetch -T 5 -p "$SERVER_ADDR" "$(p2p-chunk --id outside/canary)" </dev/null
	assert_stderr --partial "not found on any peer"
}

@test "fetch -o writes only FILE (through FILE.part), whatever the peer calls the file" {
	mkdir share out
	make_file 'share/..evil name' 40000 2
	echo untouched > canary
	start_server -d share --hidden
	id=$(p2p-chunk --id 'share/..evil name')
	run -0 --separate-stderr p2p-fetch -p "$SERVER_ADDR" -o out/got "$id" </dev/null
	cmp 'share/..evil name' out/got
	assert_equal "$(ls out)" got
	assert_equal "$(cat canary)" untouched
}

@test "serve -d: a directory swapped for a link after the walk is not followed when serving" {
	mkdir -p share/sub outside
	make_file share/sub/f 50000 3
	# Outside, a file of the same size: served in its place if the link were followed.
	make_file outside/f 50000 4
	start_server -d share
	id=$(p2p-chunk --id share/sub/f)
	wait_listed "$SERVER_ADDR" "$id"
	mv share/sub share/sub.old
	ln -s ../outside share/sub
	run -1 --separate-stderr p2p-fetch -T 5 -p "$SERVER_ADDR" -o got "$id" </dev/null
	assert_stderr --partial "refused: file unavailable"
	[[ ! -e got ]]
	# The server says why, and goes on serving.
	grep -q 'share/sub/f: Too many levels of symbolic links' "$SERVER_ERR"
	pid_alive "$SERVER_PID"
}

@test "fetch -o: a FILE.part that is a link, a FIFO or a directory is never written through" {
	make_file src 40000 5
	start_server --stdin <(p2p-chunk src)
	id=$(p2p-chunk --id src)
	wait_listed "$SERVER_ADDR" "$id"
	echo untouched > canary
	ln -s canary out.part
	run -1 --separate-stderr p2p-fetch -p "$SERVER_ADDR" -o out "$id" </dev/null
	assert_stderr --partial "out.part: is a symbolic link; not written through"
	assert_equal "$(cat canary)" untouched
	rm out.part
	mkfifo out.part
	run -1 --separate-stderr p2p-fetch -p "$SERVER_ADDR" -o out "$id" </dev/null
	assert_stderr --partial "out.part: not a regular file; not written"
	rm out.part
	mkdir out.part
	run -1 --separate-stderr p2p-fetch -p "$SERVER_ADDR" -o out "$id" </dev/null
	assert_stderr --partial "out.part: Is a directory"
	[[ ! -e out ]]
}

@test "fetch -o: a FILE.part another user owns or others may write is refused and left as it is" {
	[[ $(id -u) == 0 ]] || skip "needs root to give the .part to another user"
	make_file src 40000 5
	start_server --stdin <(p2p-chunk src)
	id=$(p2p-chunk --id src)
	wait_listed "$SERVER_ADDR" "$id"
	# Planted by nobody (in /tmp anyone can): writable by its owner, so the file fetched
	# would stay theirs to change after it was verified.
	echo planted > out.part
	chown nobody out.part
	before=$(stat -c '%U %a %s %Y' out.part)
	run -1 --separate-stderr p2p-fetch -p "$SERVER_ADDR" -o out "$id" </dev/null
	assert_stderr_line "p2p-fetch: out.part: not yours alone (another user's, writable by group or others, or hard-linked); not used: remove it, or fetch to another FILE"
	assert_equal "$(cat out.part)" planted
	assert_equal "$(stat -c '%U %a %s %Y' out.part)" "$before"
	[[ ! -e out ]]
	# Ours, but others may write it.
	chown root out.part
	chmod o+w out.part
	run -1 --separate-stderr p2p-fetch -p "$SERVER_ADDR" -o out "$id" </dev/null
	assert_stderr --partial "out.part: not yours alone"
	assert_equal "$(cat out.part)" planted
	[[ ! -e out ]]
	# Ours alone: taken, and the planted bytes overwritten.
	chmod 644 out.part
	run -0 --separate-stderr p2p-fetch -p "$SERVER_ADDR" -o out "$id" </dev/null
	cmp src out
}

@test "--list: control characters and tabs in a peer's names cannot break the lines" {
	mkdir share
	make_file "share/$(printf 'tab\there')" 1000 3
	make_file "share/$(printf 'esc\033[31mred')" 1000 4
	make_file "share/$(printf 'new\nline')" 1000 5
	start_server -d share
	run -0 --separate-stderr list_files -p "$SERVER_ADDR"
	assert_equal "${#lines[@]}" 3
	for line in "${lines[@]}"; do
		assert_equal "$(printf '%s' "$line" | awk -F'\t' '{print NF}')" 3
		[[ "$line" != *$'\033'* ]] || fail "escape byte passed through: $line"
	done
}

@test "disk full: exit 1 with a clear error, .part kept; after freeing space the rerun fetches only the missing chunks" {
	if [ "$(id -u)" != 0 ] || ! unshare -m true 2>/dev/null; then
		skip "needs root to mount a small tmpfs in a private mount namespace"
	fi
	make_file f 4194304 6
	p2p-chunk -c 64K f > f.mf
	start_server --stdin f.mf
	id=$(p2p-chunk --id f)
	mkdir small
	run -0 unshare -m bash -c '
		set -u
		mount -t tmpfs -o size=5m tmpfs small || exit 10
		head -c 3000000 /dev/zero > small/filler
		p2p-fetch -T 10 -p "$1" -o small/out "$2" </dev/null 2> err1
		echo "rc1=$?"
		ls small
		rm small/filler
		p2p-fetch -T 10 --stats -p "$1" -o small/out "$2" </dev/null 2> err2
		echo "rc2=$?"
		cmp f small/out && echo same
		cat err1 err2' _ "$SERVER_ADDR" "$id"
	assert_line rc1=1
	assert_line out.part
	assert_line --regexp '^p2p-fetch: small/out.part: No space left on device \(partial file kept\)$'
	# Said once, not once per chunk still in flight.
	assert_equal "$(grep -c 'No space left' <<<"$output")" 1
	assert_line rc2=0
	assert_line same
	stats=$(grep 'p2p-fetch: stats' <<<"$output")
	resumed=$(stats_field "$stats" chunks_resumed)
	fetched=$(stats_field "$stats" chunks_fetched)
	# 4 MiB in 64 KiB chunks is 64; about 2 MiB fitted the first time.
	[ "$resumed" -ge 20 ] || fail "resumed only $resumed: $stats"
	assert_equal "$((resumed + fetched))" 64
}

@test "serve -d: a file swapped for a FIFO after the walk cannot freeze the server" {
	mkdir share
	make_file share/f 50000 11
	make_file share/other 50000 12
	start_server -d share
	id=$(p2p-chunk --id share/f)
	wait_listed "$SERVER_ADDR" "$id"
	rm share/f
	mkfifo share/f
	# Opened with no writer, a FIFO would block the one event loop for good.
	run -1 --separate-stderr timeout 20 p2p-fetch -T 5 -p "$SERVER_ADDR" -o got "$id" </dev/null
	assert_stderr --partial "refused: file unavailable"
	grep -q 'share/f: not the file its manifest describes' "$SERVER_ERR"
	run -0 --separate-stderr timeout 20 p2p-fetch -T 5 -p "$SERVER_ADDR" -o got "$(p2p-chunk --id share/other)" </dev/null
	cmp got share/other
	stop_server "$SERVER_PID"
	assert_equal "$exit_status" 0
}

@test "serve -d: a file replaced by another of the same size is not served in its place" {
	mkdir share
	make_file share/f 50000 13
	make_file new 50000 14
	start_server -d share
	id=$(p2p-chunk --id share/f)
	wait_listed "$SERVER_ADDR" "$id"
	mv new share/f
	run -1 --separate-stderr timeout 20 p2p-fetch -T 5 -p "$SERVER_ADDR" -o got "$id" </dev/null
	assert_stderr --partial "refused: file unavailable"
	refute_stderr --partial "failed verification"
	pid_alive "$SERVER_PID"
}

@test "serve -d ~: the node's key, its secret and configuration are never served; hidden files only with --hidden" {
	mkdir -p "$HOME/.secret" "$HOME/.config/p2p" "$HOME/docs"
	echo "API_KEY=canary-env" > "$HOME/.env"
	echo "canary-secret-key" > "$HOME/.secret/key"
	echo "canary-swarm" > "$HOME/swarm.key"
	chmod 600 "$HOME/swarm.key" # a secret others may read is refused
	echo "[network]" > "$HOME/.config/p2p/config.toml"
	make_file "$HOME/docs/visible" 30000 15
	start_server -d "$HOME" --secret-file "$HOME/swarm.key"
	key=$(p2p-chunk --id "$HOME/.config/p2p/identity.pem")
	grep -q -- "-----BEGIN PRIVATE KEY-----" "$HOME/.config/p2p/identity.pem"
	run -0 --separate-stderr list_files --secret-file "$HOME/swarm.key" -p "$SERVER_ADDR"
	assert_equal "${#lines[@]}" 1
	assert_line --regexp $'\t(.*/)?visible$'
	run -1 --separate-stderr p2p-fetch --secret-file "$HOME/swarm.key" -T 5 -p "$SERVER_ADDR" -o got "$key" </dev/null
	[[ ! -e got ]]
	grep -q "shares the home directory" "$SERVER_ERR"
	stop_server "$SERVER_PID"

	# --hidden: dot files, but still not the key, the secret nor the configuration.
	start_server -d "$HOME" --secret-file "$HOME/swarm.key" --hidden
	run -0 --separate-stderr list_files --secret-file "$HOME/swarm.key" -p "$SERVER_ADDR"
	assert_equal "${#lines[@]}" 3
	assert_line --partial "	.env"
	assert_line --regexp $'\t(.*/)?key$'
	refute_output --partial "identity.pem"
	refute_output --partial "config.toml"
	refute_output --partial "swarm.key"
	grep -q "/.config/p2p: the configuration directory; never served" "$SERVER_ERR"
	grep -q "swarm.key: the swarm's secret; never served" "$SERVER_ERR"
}

@test "serve: a key named with --identity inside the shared directory, or piped in as a manifest, is never served" {
	mkdir share
	make_file share/visible 30000 16
	start_server -d share --identity share/node.pem
	run -0 --separate-stderr list_files -p "$SERVER_ADDR"
	assert_equal "${#lines[@]}" 1
	assert_line --regexp $'\t(.*/)?visible$'
	stop_server "$SERVER_PID"
	p2p-chunk share/node.pem >m
	start_server --stdin m --identity share/node.pem
	grep -q "node.pem: this node's key; never served" "$SERVER_ERR"
	run -0 --separate-stderr list_files -p "$SERVER_ADDR"
	assert_equal "${#lines[@]}" 0
}
