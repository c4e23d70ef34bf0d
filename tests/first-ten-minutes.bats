#!/usr/bin/env bats
# The first ten minutes, as the README tells them, on three hosts (bats/netns.bash): each
# README block marked `sh quickstart` is taken from README.md here and run as it is written
# (with only its placeholders, seed, host and ID, filled in), each host in a home of its own,
# so the README cannot drift from what the tools do. The last test counts the blocks: a new
# one must get a test here.

bats_require_minimum_version 1.5.0

load ../bats/common
load ../bats/netns

README=$BATS_TEST_DIRNAME/../README.md
BLOCKS=9 # the blocks marked `sh quickstart` that the tests below run

setup_file() {
	netns_setup_file
}

teardown_file() {
	netns_teardown_file
}

setup() {
	common_setup
	netns_setup
	mkdir home-a home-b home-c
}

teardown() {
	netns_teardown
}

# readme_block N: the Nth block of README.md marked `sh quickstart`, as it is written.
readme_block() {
	awk -v n="$1" '/^```sh quickstart$/ { i++; inb = 1; next } /^```$/ { inb = 0 } inb && i == n' "$README"
}

# on NODE TEXT: TEXT run by bash on host NODE (a, b or c), in its home, with the default
# discovery; ended after 120 s.
on() {
	local node=$1
	shift
	in_ns "$node" env HOME="$BATS_TEST_TMPDIR/home-$node" timeout 120 \
		bash -c 'cd && eval "$1"' _ "$1"
}

# _sent FILE N: FILE holds N complete lines.
_sent() {
	[[ -f $1 ]] && (($(wc -l <"$1") >= $2))
}

# send_on NODE TEXT N: TEXT (a p2p-send command) on NODE in the background, until it printed
# N lines. Sets SEND_OUT (its stdout) and SEND_PID; teardown stops it.
send_on() {
	SEND_OUT=$BATS_TEST_TMPDIR/send.$RANDOM.out
	on "$1" "$2" >"$SEND_OUT" 2>"$SEND_OUT.err" 3>&- &
	SEND_PID=$!
	SERVER_PIDS+=("$SEND_PID")
	wait_for -t 30 _sent "$SEND_OUT" "$3" || {
		cat "$SEND_OUT.err" >&2
		return 1
	}
}

# serve_on NODE TEXT: TEXT (a p2p-serve command) on NODE, once it prints where it listens.
serve_on() {
	start_server --cmd ip netns exec "$NS-$1" env -u MINI_P2P_DISCOVERY_ADDR \
		HOME="$BATS_TEST_TMPDIR/home-$1" bash -c 'cd && eval "exec $1"' _ "$2"
}

# A link as p2p-send prints it for host a, whose one address other machines reach is $NET.1.
link_re() {
	printf '%s' "^p2p-fetch 'p2p://[0-9a-f]{64}@${NET//./\\.}\\.1:[0-9]+#[0-9a-f]{64}'\$"
}

@test "quick start: p2p-send FILE on a prints one line; pasted on b, it fetches the file under its name" {
	local send paste line
	send=$(readme_block 1)
	paste=$(readme_block 2)
	assert_equal "$send" 'p2p-send song.ogg'
	assert_equal "$paste" "p2p-fetch 'p2p://...'"
	make_file home-a/song.ogg 3M 1
	send_on a "$send" 1
	line=$(head -n 1 "$SEND_OUT")
	assert_regex "$line" "$(link_re)"
	[[ $line != *127.0.0.1* && $line != *0.0.0.0* ]] || fail "loopback or 0.0.0.0 in $line"
	# the README's paste, the placeholder being what p2p-send printed
	run -0 --separate-stderr on b "${paste/"p2p-fetch 'p2p://...'"/$line}" </dev/null
	cmp home-a/song.ogg home-b/song.ogg
	assert_equal "$(ls -A home-b | grep -vx .config)" song.ogg
	# pasted again: nothing to do, and said
	run -0 --separate-stderr on b "$line" </dev/null
	assert_stderr_line 'p2p-fetch: song.ogg: already complete and verified; nothing to fetch'
	# the identity is pinned: a link naming another is refused
	run -1 --separate-stderr on c "${line%#*}#$(printf '0%.0s' {1..64})'" </dev/null
	assert_stderr --partial 'not the one expected'
	assert_file_not_exists home-c/song.ogg
}

@test "quick start: p2p-send FOLDER on a; pasted on c, the folder arrives whole under its name" {
	local send line
	send=$(readme_block 3)
	assert_equal "$send" 'p2p-send photos'
	mkdir -p home-a/photos/2026/empty
	make_file home-a/photos/a.jpg 700K 2
	make_file home-a/photos/2026/b.jpg 1M 3
	send_on a "$send" 1
	line=$(head -n 1 "$SEND_OUT")
	assert_regex "$line" "$(link_re)"
	run -0 --separate-stderr on c "$line" </dev/null
	diff -r home-a/photos home-c/photos
	[[ -d home-c/photos/2026/empty ]]
	assert_equal "$(ls -A home-c | grep -vx .config)" photos
}

@test "across machines: p2p-serve on a (the seed) and b (joining with -b), seen and fetched from c" {
	mkdir home-a/pub home-b/dir
	make_file home-a/pub/from-a.bin 2M 4
	make_file home-b/dir/from-b.bin 1M 5
	local block4 block5
	block4=$(readme_block 4)
	block5=$(readme_block 5)
	assert_equal "$block4" 'p2p-serve -d ~/pub'
	serve_on a "$block4"
	assert_equal "$(head -n 1 "$SERVER_OUT")" "$NET.1:8080"
	serve_on b "${block5//seed/$NET.1}"
	assert_equal "$(head -n 1 "$SERVER_OUT")" "$NET.2:8080"
	local id_a id_b
	id_a=$(p2p-chunk --id home-a/pub/from-a.bin)
	id_b=$(p2p-chunk --id home-b/dir/from-b.bin)
	wait_for in_ns c sh -c "p2p-fetch --list -p $NET.2:8080 </dev/null 2>/dev/null | grep -q $id_b"
	# the four lines of the block, one by one
	local -a cmds
	mapfile -t cmds < <(readme_block 6)
	assert_equal "${#cmds[@]}" 4
	run -0 --separate-stderr on c "${cmds[0]//seed/$NET.1}" </dev/null
	assert_line --regexp "^${NET//./\\.}\\.1:8080"$'\t'
	assert_line --regexp "^${NET//./\\.}\\.2:8080"$'\t'
	run -0 --separate-stderr on c "${cmds[1]//seed/$NET.1}" </dev/null
	assert_line --regexp "^${NET//./\\.}\\.1:8080"$'\t'
	assert_line --regexp "^${NET//./\\.}\\.2:8080"$'\t'
	run -0 --separate-stderr on c "${cmds[2]//seed/$NET.1}" </dev/null
	assert_line "$id_a"$'\t2097152\tfrom-a.bin'
	refute_line --partial "$id_b"
	run -0 --separate-stderr on c "${cmds[3]//seed/$NET.1}" </dev/null
	assert_line --partial "$id_a"
	assert_line --partial "$id_b"
	# the download: from every node found
	local block7
	block7=$(readme_block 7)
	assert_equal "$block7" 'p2p-discover | p2p-fetch ID > out'
	run -0 --separate-stderr on c "${block7//ID/$id_b}" </dev/null
	cmp home-b/dir/from-b.bin home-c/out
}

@test "on one host: with the README's export, two servers there are found, each on its own port" {
	local block8
	block8=$(readme_block 8)
	assert_equal "$block8" 'export MINI_P2P_DISCOVERY_ADDR=127.255.255.255'
	mkdir home-c/x home-c/y
	make_file home-c/x/x.bin 10K 6
	make_file home-c/y/y.bin 10K 7
	start_server --cmd ip netns exec "$NS-c" env HOME="$BATS_TEST_TMPDIR/home-c" \
		bash -c 'cd && eval "$1" && exec p2p-serve -p 8081 -d x' _ "$block8"
	start_server --cmd ip netns exec "$NS-c" env HOME="$BATS_TEST_TMPDIR/home-c" \
		bash -c 'cd && eval "$1" && exec p2p-serve -p 8082 -d y' _ "$block8"
	run -0 --separate-stderr on c "$block8; p2p-discover -t 2" </dev/null
	assert_line --regexp ':8081$'
	assert_line --regexp ':8082$'
	# and nothing of the LAN: b's server is not found
	run -1 --separate-stderr on b "$block8; p2p-discover -t 2" </dev/null
	assert_output ''
}

@test "fetch everything a peer shares: every folder whole, every file once; a/x.txt and b/x.txt both kept" {
	mkdir -p home-a/pub/a home-a/pub/b
	echo A >home-a/pub/a/x.txt
	echo B >home-a/pub/b/x.txt
	echo top >home-a/pub/top.txt
	serve_on a "$(readme_block 4)"
	local loop
	loop=$(readme_block 9)
	wait_for in_ns b sh -c "p2p-fetch --list -p $NET.1:8080 </dev/null 2>/dev/null | grep -q 'pub/\$'"
	run -0 --separate-stderr on b "${loop//host/$NET.1}" </dev/null
	assert_equal "$(cat home-b/pub/a/x.txt)" A
	assert_equal "$(cat home-b/pub/b/x.txt)" B
	assert_equal "$(cat home-b/pub/top.txt)" top
	assert_equal "$(cat home-b/top.txt)" top
	assert_file_not_exists home-b/x.txt
	# two files of one name, neither in a folder: the second is refused, never written over
	mkdir -p home-c/a home-c/b
	echo one >home-c/a/x.txt
	echo two >home-c/b/x.txt
	start_server --cmd ip netns exec "$NS-c" env -u MINI_P2P_DISCOVERY_ADDR \
		bash -c 'cd "$1" && p2p-chunk a/x.txt b/x.txt | p2p-serve' _ "$BATS_TEST_TMPDIR/home-c"
	wait_for in_ns a sh -c "test \$(p2p-fetch --list -p $NET.3:8080 </dev/null 2>/dev/null | wc -l) = 2"
	mkdir home-a/dl
	run --separate-stderr on a "cd dl && ${loop//host/$NET.3}" </dev/null
	assert_stderr --partial 'x.txt: exists and is another file'
	assert_equal "$(ls -A home-a/dl)" x.txt
	[[ $(cat home-a/dl/x.txt) == one || $(cat home-a/dl/x.txt) == two ]]
}

@test "every block of the README marked quickstart is one a test here runs" {
	local n
	n=$(grep -c '^```sh quickstart$' "$README")
	assert_equal "$n" "$BLOCKS"
	run -0 readme_block "$BLOCKS"
	refute_output ''
}
