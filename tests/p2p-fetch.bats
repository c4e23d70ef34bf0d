#!/usr/bin/env bats
# p2p-fetch: downloads from one or many peers, verified chunk by chunk, resumable. Besides real
# p2p-serve peers, the fake peers of bats/p2p_ref.py send corrupt chunks, a forged manifest, or
# nothing at all: the fetcher must get the right bytes anyway, or fail, never write wrong ones.

bats_require_minimum_version 1.5.0

load ../bats/common

# A valid id that no file here has: H("not served").
UNKNOWN_ID=$(printf 'not served' | sha256sum | cut -d' ' -f1)

@test "--help prints usage on stdout and exits 0" {
	run -0 --separate-stderr p2p-fetch --help </dev/null
	assert_output --regexp '[Uu]sage:.*p2p-fetch'
	assert_stderr ''
	run -0 --separate-stderr p2p-fetch -h </dev/null
	assert_output --regexp '[Uu]sage:.*p2p-fetch'
}

@test "--version and -V print the version" {
	run -0 --separate-stderr p2p-fetch --version </dev/null
	assert_output 'p2p-fetch 0.1.0'
	run -0 --separate-stderr p2p-fetch -V </dev/null
	assert_output 'p2p-fetch 0.1.0'
}

@test "unknown option: usage on stderr, exit 2" {
	run -2 --separate-stderr timeout 10 p2p-fetch --bogus -p 127.0.0.1:1 "$UNKNOWN_ID" </dev/null
	assert_output ''
	assert_stderr --regexp '[Uu]sage:.*p2p-fetch'
}

@test "no ID: usage error" {
	run -2 --separate-stderr timeout 10 p2p-fetch -p 127.0.0.1:1 </dev/null
	assert_output ''
	assert_stderr --regexp '[Uu]sage'
	assert_stderr_line 'p2p-fetch: no ID: give the content id to fetch (p2p-chunk --id FILE prints a file'"'"'s; p2p-fetch --list -p HOST the ids a peer shares)'
	run -2 --separate-stderr timeout 10 p2p-fetch -p 127.0.0.1:1 "$UNKNOWN_ID" "$UNKNOWN_ID" </dev/null
	assert_stderr_line 'p2p-fetch: one ID at a time'
}

@test "--list usage errors say what is wrong: no ID, no -o" {
	run -2 --separate-stderr timeout 10 p2p-fetch --list -p 127.0.0.1:1 "$UNKNOWN_ID" </dev/null
	assert_output ''
	assert_stderr --regexp '[Uu]sage'
	assert_stderr_line 'p2p-fetch: --list takes no ID'
	run -2 --separate-stderr timeout 10 p2p-fetch --list -p 127.0.0.1:1 -o out </dev/null
	assert_stderr_line 'p2p-fetch: --list writes to stdout: no -o'
	assert_file_not_exists out
}

@test "malformed id: exit 2 with the documented message, no connection" {
	local port
	port=$(unused_port)
	run -2 --separate-stderr timeout 10 p2p-fetch -p "127.0.0.1:$port" abc </dev/null
	assert_output ''
	assert_stderr_line --regexp "^p2p-fetch: malformed content id 'abc'(: .*)?\$"
	refute_stderr --partial connect
	# 8 hex digits or more are a prefix (tests/addressing.bats), fewer are none
	for bad in "${UNKNOWN_ID:0:7}" "${UNKNOWN_ID}a" "z${UNKNOWN_ID:1}"; do
		run -2 --separate-stderr timeout 10 p2p-fetch -p "127.0.0.1:$port" "$bad" </dev/null
		assert_stderr_line --partial "p2p-fetch: malformed content id '$bad'"
	done
}

@test "bad -p HOST:PORT (empty port, port 0, >65535, not a number): exit 2" {
	local bad
	for bad in 127.0.0.1: '[::1]:' 127.0.0.1:0 127.0.0.1:65536 127.0.0.1:70000 127.0.0.1:abc 127.0.0.1:80x; do
		run -2 --separate-stderr timeout 10 p2p-fetch -p "$bad" "$UNKNOWN_ID" </dev/null
		assert_output ''
		[[ -n $stderr ]] || fail "no message for -p '$bad'"
		refute_stderr --partial 'not found'
	done
}

@test "-p HOST or -p [IPv6] without a port: the default port 8080" {
	run -1 --separate-stderr timeout 30 p2p-fetch -T 2 -p 127.0.0.2 -o out "$UNKNOWN_ID" </dev/null
	assert_stderr --partial '127.0.0.2:8080'
	run -1 --separate-stderr timeout 30 p2p-fetch -T 2 -p '[::1]' -o out "$UNKNOWN_ID" </dev/null
	assert_stderr --partial '[::1]:8080'
	# -b too: a peer to ask, not a usage error
	run -1 --separate-stderr timeout 30 p2p-discover -t 1 --discovery-port "$(unused_udp_port)" -b 127.0.0.2
	assert_stderr --partial 'no peers found'
}

@test "-T out of 1..3600 or not a number: exit 2" {
	local port bad
	port=$(unused_port)
	for bad in 0 3601 abc -1 1.5 ''; do
		run -2 --separate-stderr timeout 10 p2p-fetch -T "$bad" -p "127.0.0.1:$port" "$UNKNOWN_ID" </dev/null
		assert_output ''
		[[ -n $stderr ]] || fail "no message for -T '$bad'"
	done
	# the limits themselves are fine: these fail on the connection, not the option
	for good in 1 3600; do
		run -1 --separate-stderr timeout 10 p2p-fetch --timeout "$good" -p "127.0.0.1:$port" "$UNKNOWN_ID" </dev/null
		assert_stderr --partial "127.0.0.1:$port"
	done
}

@test "unreachable peer: exit 1, 'connect HOST:PORT: Connection refused'" {
	local port
	port=$(unused_port)
	run -1 --separate-stderr timeout 20 p2p-fetch -p "127.0.0.1:$port" "$UNKNOWN_ID" </dev/null
	assert_output ''
	assert_stderr_line --partial "p2p-fetch: connect 127.0.0.1:$port: Connection refused"
}

@test "all of several peers unreachable: exit 1, the connect failure named" {
	local p1 p2
	p1=$(unused_port)
	p2=$(unused_port)
	run -1 --separate-stderr timeout 20 p2p-fetch -p "127.0.0.1:$p1" -p "127.0.0.1:$p2" -o out "$UNKNOWN_ID" </dev/null
	assert_stderr --regexp "connect 127\.0\.0\.1:($p1|$p2): Connection refused"
	assert_file_not_exists out
}

@test "an unreachable peer beside a good one: fetched from the good one" {
	make_file f 200000 1
	serve_chunked f
	local port
	port=$(unused_port)
	run -0 --separate-stderr timeout 30 p2p-fetch -p "127.0.0.1:$port" -p "$SERVER_ADDR" -o out "$(ref_id f)" </dev/null
	cmp f out
}

@test "unknown id from a running server: exit 1, 'ID: not found on any peer', quickly" {
	make_file f 1000
	serve_chunked f
	# the default timeout is 30 s: a fetcher that waits for it is not "quick"
	run -1 --separate-stderr timeout 10 p2p-fetch -p "$SERVER_ADDR" -o out "$UNKNOWN_ID" </dev/null
	assert_output ''
	assert_stderr_line "p2p-fetch: $UNKNOWN_ID: not found on any peer"
	assert_file_not_exists out
}

@test "fetch to stdout: byte-identical, for awkward sizes" {
	: >empty
	printf x >one
	make_file b16384 16384 1
	make_file b16385 16385 2
	make_file big 3145729 3
	serve_chunked -c 16K empty one b16384 b16385 big
	local f
	for f in empty one b16384 b16385 big; do
		run -0 --separate-stderr to_file "$f.out" timeout 30 p2p-fetch -p "$SERVER_ADDR" "$(ref_id "$f")" </dev/null
		cmp "$f" "$f.out"
	done
}

@test "uppercase id is accepted" {
	make_file f 50000 4
	serve_chunked f
	timeout 30 p2p-fetch -p "$SERVER_ADDR" "$(ref_id f | tr a-f A-F)" </dev/null >out
	cmp f out
}

@test "-o FILE: writes FILE, no FILE.part left, nothing on stdout" {
	make_file f 1048576 5
	serve_chunked -c 16K f
	run -0 --separate-stderr timeout 30 p2p-fetch -p "$SERVER_ADDR" -o out "$(ref_id f)" </dev/null
	assert_output ''
	cmp f out
	assert_file_not_exists out.part
	run -0 --separate-stderr timeout 30 p2p-fetch -p "$SERVER_ADDR" --output 'héllo wörld.out' "$(ref_id f)" </dev/null
	cmp f 'héllo wörld.out'
	assert_file_not_exists 'héllo wörld.out.part'
}

@test "file names with spaces and non-ASCII characters are served and fetched" {
	make_file 'héllo wörld.bin' 100000 6
	serve_chunked 'héllo wörld.bin'
	local id
	id=$(ref_id 'héllo wörld.bin')
	run -0 --separate-stderr timeout 30 p2p-fetch --list -p "$SERVER_ADDR" </dev/null
	assert_output "$id"$'\t'"100000"$'\t''héllo wörld.bin'
	timeout 30 p2p-fetch -p "$SERVER_ADDR" -o 'out put.bin' "$id" </dev/null
	cmp 'héllo wörld.bin' 'out put.bin'
}

@test "peers from a pipe on stdin, HOST:PORT as the first tab-separated field (no -p, or -p -)" {
	make_file f 300000 7
	serve_chunked f
	local id port
	id=$(ref_id f)
	port=$(unused_port)
	printf '%s\tnode-a\textra\n' "$SERVER_ADDR" >peers
	run -0 --separate-stderr bash -c 'cat peers | timeout 30 p2p-fetch -o out1 "$1"' _ "$id"
	cmp f out1
	run -0 --separate-stderr bash -c 'cat peers | timeout 30 p2p-fetch -p - -o out2 "$1"' _ "$id"
	cmp f out2
	printf '127.0.0.1:%s\tdead\n%s\n' "$port" "$SERVER_ADDR" >peers2
	run -0 --separate-stderr bash -c 'cat peers2 | timeout 30 p2p-fetch -o out3 "$1"' _ "$id"
	cmp f out3
}

@test "peers from a file on stdin (p2p-fetch ID < peers)" {
	make_file f 300000 7
	serve_chunked f
	local id
	id=$(ref_id f)
	printf '%s\tnode-a\n' "$SERVER_ADDR" >peers
	run -0 --separate-stderr timeout 30 p2p-fetch -o out1 "$id" <peers
	cmp f out1
	run -0 --separate-stderr timeout 30 p2p-fetch -p - -o out2 "$id" <peers
	cmp f out2
}

@test "peers from stdin: an empty list fails with exit 1" {
	run -1 --separate-stderr timeout 20 p2p-fetch -o out "$UNKNOWN_ID" </dev/null
	[[ -n $stderr ]] || fail "no message"
	assert_file_not_exists out
}

@test "--list -p: 'ID<TAB>SIZE<TAB>NAME' for every shared file" {
	make_file a 1000 1
	make_file b 2000 2
	: >e
	serve_chunked a b e
	run -0 --separate-stderr timeout 20 p2p-fetch --list -p "$SERVER_ADDR" </dev/null
	assert_equal "$(sort <<<"$output")" "$(printf '%s\t%s\t%s\n' "$(ref_id a)" 1000 a "$(ref_id b)" 2000 b "$(ref_id e)" 0 e | sort)"
	assert_stderr ''
}

@test "--list of several peers (-p, or lines on stdin): every file once; an unreachable one warned of" {
	mkdir a b
	make_file a/one 1000 11
	make_file a/two 2000 12
	cp a/two b/two
	make_file b/three 3000 13
	start_server -d a --no-announce
	local pa=$SERVER_ADDR port
	start_server -d b --no-announce
	local pb=$SERVER_ADDR want
	want=$(printf '%s\t%s\t%s\n' "$(ref_id a/one)" 1000 one "$(ref_id a/two)" 2000 two "$(ref_id b/three)" 3000 three | sort)
	run -0 --separate-stderr list_files -p "$pa" -p "$pb" </dev/null
	assert_equal "$(sort <<<"$output")" "$want"
	assert_stderr ''
	run -0 --separate-stderr timeout 20 bash -c "printf '%s\n' $pa $pb | p2p-fetch --list | grep -v '/\$'"
	assert_equal "$(sort <<<"$output")" "$want"
	port=$(unused_port)
	# the unreachable one first: its failure must not end the run before the next is tried
	run -0 --separate-stderr list_files -p "127.0.0.1:$port" -p "$pb" </dev/null
	assert_equal "$(sort <<<"$output")" "$(printf '%s\t%s\t%s\n' "$(ref_id b/two)" 2000 two "$(ref_id b/three)" 3000 three | sort)"
	assert_stderr_line "p2p-fetch: connect 127.0.0.1:$port: Connection refused"
	# peers on an empty stdin (read at once: not a pipe) beside -p
	run -0 --separate-stderr list_files -p - -p "$pb" </dev/null
	assert_equal "$(sort <<<"$output")" "$(printf '%s\t%s\t%s\n' "$(ref_id b/two)" 2000 two "$(ref_id b/three)" 3000 three | sort)"
}

@test "--list of two peers sharing the same 200 files: 200 lines, each file once (the set grows)" {
	mkdir d
	local i
	for ((i = 0; i < 200; i++)); do
		printf 'file %d\n' "$i" >"d/f$i"
	done
	start_server -d d --no-announce
	local pa=$SERVER_ADDR
	start_server -d d --no-announce
	run -0 --separate-stderr list_files --json -p "$pa" -p "$SERVER_ADDR" </dev/null
	assert_equal "$(jq -r .id <<<"$output" | sort -u | wc -l)" 200
	assert_equal "$(wc -l <<<"$output")" 200
}

@test "--list of a server sharing nothing: no lines, exit 0" {
	start_server
	run -0 --separate-stderr timeout 20 p2p-fetch --list -p "$SERVER_ADDR" </dev/null
	assert_output ''
}

@test "--list of an unreachable peer: exit 1" {
	local port
	port=$(unused_port)
	run -1 --separate-stderr timeout 20 p2p-fetch --list -p "127.0.0.1:$port" </dev/null
	assert_output ''
	assert_stderr --partial "127.0.0.1:$port"
}

@test "--stats: the documented line, exact counts for one peer" {
	make_file f 1048576 8
	serve_chunked -c 16K f
	run -0 --separate-stderr timeout 30 p2p-fetch --stats -p "$SERVER_ADDR" -o out "$(ref_id f)" </dev/null
	cmp f out
	# the documented fields, in order; fields a later issue adds may follow them
	assert_stderr_line --regexp '^p2p-fetch: stats bytes_in=[0-9]+ chunks_fetched=[0-9]+ chunks_resumed=[0-9]+ peers_used=[0-9]+ peers_dropped=[0-9]+ from=[^ ]+( [a-z_]+=[^ ]*)*$'
	assert_equal "$(stats_field "$stderr" chunks_fetched)" 64
	assert_equal "$(stats_field "$stderr" chunks_resumed)" 0
	assert_equal "$(stats_field "$stderr" peers_used)" 1
	assert_equal "$(stats_field "$stderr" peers_dropped)" 0
	assert_equal "$(stats_field "$stderr" from)" "$SERVER_ADDR/64"
	(($(stats_field "$stderr" bytes_in) >= 1048576))
}

@test "three servers at once: chunks come from all three" {
	make_file f 8M 9
	p2p-chunk -c 16K f >m
	local id addrs=()
	id=$(ref_id f)
	for _ in 1 2 3; do
		start_server --stdin m
		wait_listed "$SERVER_ADDR" "$id"
		addrs+=("$SERVER_ADDR")
	done
	run -0 --separate-stderr timeout 60 p2p-fetch --stats -p "${addrs[0]}" -p "${addrs[1]}" -p "${addrs[2]}" -o out "$id" </dev/null
	cmp f out
	assert_equal "$(stats_field "$stderr" chunks_fetched)" 512
	assert_equal "$(stats_field "$stderr" peers_used)" 3
	assert_equal "$(stats_field "$stderr" peers_dropped)" 0
	local from sum=0 entry a
	from=$(stats_field "$stderr" from)
	IFS=, read -ra entries <<<"$from"
	assert_equal "${#entries[@]}" 3
	for a in "${addrs[@]}"; do
		[[ ",$from," =~ ,$a/([0-9]+), ]] || fail "no chunks from $a: from=$from"
		((BASH_REMATCH[1] > 0))
		sum=$((sum + BASH_REMATCH[1]))
	done
	assert_equal "$sum" 512
}

@test "peers that chunked the same file at different sizes form one swarm" {
	make_file f 4M 24
	serve_chunked -c 16K f
	local a=$SERVER_ADDR
	serve_chunked -c 1M f
	run -0 --separate-stderr timeout 60 p2p-fetch --stats -p "$a" -p "$SERVER_ADDR" -o out "$(ref_id f)" </dev/null
	cmp f out
	assert_equal "$(stats_field "$stderr" peers_dropped)" 0
	refute_stderr --partial 'dropping'
}

@test "integrity: a server whose file changed on disk beside an honest one" {
	make_file f 4M 10
	cp f bad.bin
	p2p-chunk -c 16K bad.bin >bad.m
	corrupt bad.bin $((2 * 1048576)) XXXX
	corrupt_chunks bad.bin 16384 # and a byte in every chunk, so the fetcher meets one for sure
	local id
	id=$(ref_id f)
	start_server --stdin bad.m
	wait_listed "$SERVER_ADDR" "$id"
	local bad=$SERVER_ADDR
	serve_chunked -c 16K f
	run -0 --separate-stderr timeout 60 p2p-fetch --stats -p "$bad" -p "$SERVER_ADDR" -o out "$id" </dev/null
	cmp f out
	assert_stderr --regexp "$bad[^"$'\n'"]*dropping peer"
	assert_equal "$(stats_field "$stderr" peers_dropped)" 1
	assert_equal "$(stats_field "$stderr" chunks_fetched)" 256
	refute_regex "$(stats_field "$stderr" from)" "$bad"
}

@test "integrity: only a server whose file changed on disk: exit 1, no output file" {
	make_file f 1M 11
	cp f bad.bin
	p2p-chunk -c 16K bad.bin >bad.m
	corrupt_chunks bad.bin 16384
	start_server --stdin bad.m
	wait_listed "$SERVER_ADDR" "$(ref_id f)"
	run -1 --separate-stderr timeout 60 p2p-fetch -p "$SERVER_ADDR" -o out "$(ref_id f)" </dev/null
	assert_file_not_exists out
	[[ -n $stderr ]] || fail "no message"
}

@test "fake peer (reference implementation) serving honestly: fetched correctly" {
	make_file f 1M 12
	p2p-chunk -c 16K f >m
	start_fake_peer m honest
	run -0 --separate-stderr timeout 30 p2p-fetch -p "$SERVER_ADDR" -o out "$(ref_id f)" </dev/null
	cmp f out
	start_fake_peer m slow
	run -0 --separate-stderr timeout 30 p2p-fetch -p "$SERVER_ADDR" -o out2 "$(ref_id f)" </dev/null
	cmp f out2
}

@test "peer sending corrupt chunks beside an honest one: dropped with the documented warning" {
	make_file f 1M 13
	p2p-chunk -c 16K f >m
	start_fake_peer m corrupt
	local bad=$SERVER_ADDR
	start_fake_peer m slow # honest, slow enough that the bad peer is surely asked too
	run -0 --separate-stderr timeout 60 p2p-fetch --stats -p "$bad" -p "$SERVER_ADDR" -o out "$(ref_id f)" </dev/null
	cmp f out
	assert_stderr_line --regexp "^p2p-fetch: $bad: chunk [0-9]+ failed verification; dropping peer\$"
	assert_equal "$(grep -c "dropping peer" <<<"$stderr")" 1
	assert_equal "$(stats_field "$stderr" peers_dropped)" 1
	assert_equal "$(stats_field "$stderr" from)" "$SERVER_ADDR/64"
}

@test "-q hides the drop warning (only errors)" {
	make_file f 1M 13
	p2p-chunk -c 16K f >m
	start_fake_peer m corrupt
	local bad=$SERVER_ADDR
	start_fake_peer m slow # honest, slow enough that the bad peer is surely asked too
	run -0 --separate-stderr timeout 60 p2p-fetch -q -p "$bad" -p "$SERVER_ADDR" -o out "$(ref_id f)" </dev/null
	cmp f out
	assert_stderr ''
	P2P_LOG=error run -0 --separate-stderr timeout 60 p2p-fetch -p "$bad" -p "$SERVER_ADDR" -o out2 "$(ref_id f)" </dev/null
	cmp f out2
	assert_stderr ''
}

@test "only peers sending corrupt chunks: exit 1, nothing written" {
	make_file f 1M 14
	p2p-chunk -c 16K f >m
	start_fake_peer m corrupt
	run -1 --separate-stderr timeout 60 p2p-fetch -p "$SERVER_ADDR" -o out "$(ref_id f)" </dev/null
	assert_file_not_exists out
	assert_stderr --partial 'failed verification'
	run -1 --separate-stderr to_file stdout.out timeout 60 p2p-fetch -p "$SERVER_ADDR" "$(ref_id f)" </dev/null
	# no chunk verified, so not one byte may reach stdout
	assert_size_zero stdout.out
}

@test "peer with a forged manifest beside an honest one: dropped, fetched from the honest one" {
	make_file f 1M 15
	p2p-chunk -c 16K f >m
	start_fake_peer m badmanifest
	local bad=$SERVER_ADDR
	start_fake_peer m slow
	run -0 --separate-stderr timeout 60 p2p-fetch --stats -p "$bad" -p "$SERVER_ADDR" -o out "$(ref_id f)" </dev/null
	cmp f out
	assert_stderr --partial "$bad"
	assert_equal "$(stats_field "$stderr" peers_dropped)" 1
	assert_equal "$(stats_field "$stderr" from)" "$SERVER_ADDR/64"
}

@test "only a peer with a forged manifest: exit 1" {
	make_file f 1M 16
	p2p-chunk -c 16K f >m
	start_fake_peer m badmanifest
	run -1 --separate-stderr timeout 60 p2p-fetch -p "$SERVER_ADDR" -o out "$(ref_id f)" </dev/null
	assert_file_not_exists out
	[[ -n $stderr ]] || fail "no message"
}

@test "a peer without the file beside one with it: fetched, nobody dropped" {
	make_file f 1M 17
	p2p-chunk -c 16K f >m
	start_fake_peer m notfound
	local none=$SERVER_ADDR
	serve_chunked -c 16K f
	run -0 --separate-stderr timeout 30 p2p-fetch --stats -p "$none" -p "$SERVER_ADDR" -o out "$(ref_id f)" </dev/null
	cmp f out
	assert_equal "$(stats_field "$stderr" peers_dropped)" 0
	assert_equal "$(stats_field "$stderr" from)" "$SERVER_ADDR/64"
}

@test "a silent peer: -T 1 gives up within seconds, exit 1" {
	make_file f 1000
	p2p-chunk f >m
	start_fake_peer m silent
	local t0=$SECONDS
	run -1 --separate-stderr timeout 20 p2p-fetch -T 1 -p "$SERVER_ADDR" -o out "$(ref_id f)" </dev/null
	((SECONDS - t0 <= 10)) || fail "took $((SECONDS - t0)) s with -T 1"
	[[ -n $stderr ]] || fail "no message"
	assert_file_not_exists out
}

@test "MINI_P2P_TIMEOUT sets the default timeout" {
	make_file f 1000
	p2p-chunk f >m
	start_fake_peer m silent
	local t0=$SECONDS
	MINI_P2P_TIMEOUT=1 run -1 --separate-stderr timeout 20 p2p-fetch -p "$SERVER_ADDR" -o out "$(ref_id f)" </dev/null
	((SECONDS - t0 <= 10)) || fail "took $((SECONDS - t0)) s with MINI_P2P_TIMEOUT=1"
}

@test "a silent peer beside an honest one does not stop the fetch" {
	make_file f 1M 18
	p2p-chunk -c 16K f >m
	start_fake_peer m silent
	local silent=$SERVER_ADDR
	serve_chunked -c 16K f
	run -0 --separate-stderr timeout 30 p2p-fetch -T 5 -p "$silent" -p "$SERVER_ADDR" -o out "$(ref_id f)" </dev/null
	cmp f out
}

@test "resume: a .part holding the first half fetches only the second (512 + 512 of 1024)" {
	make_file src 64M 19
	serve_chunked -c 64K src
	head -c 32M src >out.part
	truncate -s 64M out.part
	run -0 --separate-stderr timeout 120 p2p-fetch --stats -p "$SERVER_ADDR" -o out "$(ref_id src)" </dev/null
	cmp src out
	assert_file_not_exists out.part
	assert_equal "$(stats_field "$stderr" chunks_resumed)" 512
	assert_equal "$(stats_field "$stderr" chunks_fetched)" 512
}

@test "resume: wrong chunks in a .part are fetched again, right ones kept" {
	make_file src 16M 20
	serve_chunked -c 64K src
	cp src out.part
	corrupt out.part $((10 * 65536 + 7))
	corrupt out.part $((200 * 65536))
	run -0 --separate-stderr timeout 120 p2p-fetch --stats -p "$SERVER_ADDR" -o out "$(ref_id src)" </dev/null
	cmp src out
	assert_equal "$(stats_field "$stderr" chunks_resumed)" 254
	assert_equal "$(stats_field "$stderr" chunks_fetched)" 2
}

@test "repair: -o over a damaged 64 MiB file fetches only the damaged chunks, written in place" {
	make_file src 64M 22
	serve_chunked -c 64K src
	cp src out
	corrupt out $((3 * 65536 + 5))
	corrupt out $((500 * 65536))
	corrupt out $((1023 * 65536 + 65530))
	ino=$(stat -c %i out)
	run -0 --separate-stderr timeout 120 p2p-fetch --stats -p "$SERVER_ADDR" -o out "$(ref_id src)" </dev/null
	cmp src out
	assert_file_not_exists out.part
	assert_equal "$(stat -c %i out)" "$ino"
	assert_equal "$(stats_field "$stderr" chunks_fetched)" 3
	assert_equal "$(stats_field "$stderr" chunks_resumed)" 1021
	# whole already: nothing fetched, nothing changed
	run -0 --separate-stderr timeout 120 p2p-fetch --stats -p "$SERVER_ADDR" -o out "$(ref_id src)" </dev/null
	cmp src out
	assert_equal "$(stats_field "$stderr" chunks_fetched)" 0
	assert_equal "$(stats_field "$stderr" chunks_resumed)" 1024
}

@test "repair: a hard-linked damaged FILE is not written in place: fetched whole, renamed; a wrong-sized one only with --force" {
	make_file src 4M 23
	serve_chunked -c 64K src
	cp src out
	corrupt out 100
	ln out other
	run -0 --separate-stderr timeout 60 p2p-fetch --stats -p "$SERVER_ADDR" -o out "$(ref_id src)" </dev/null
	cmp src out
	! cmp -s src other
	assert_equal "$(stats_field "$stderr" chunks_fetched)" 64
	head -c 3M src >short
	cp short short.orig
	run -1 --separate-stderr timeout 60 p2p-fetch --stats -p "$SERVER_ADDR" -o short "$(ref_id src)" </dev/null
	assert_stderr_line "p2p-fetch: short: exists and is another file (3145728 bytes, not 4194304); not overwritten: remove it, or give --force to replace it"
	cmp short.orig short
	assert_file_not_exists short.part
	run -0 --separate-stderr timeout 60 p2p-fetch --force --stats -p "$SERVER_ADDR" -o short "$(ref_id src)" </dev/null
	cmp src short
	assert_equal "$(stats_field "$stderr" chunks_fetched)" 64
}

@test "resume: a short .part (file cut off) is completed" {
	make_file src 4M 21
	serve_chunked -c 64K src
	head -c $((10 * 65536 + 1000)) src >out.part
	run -0 --separate-stderr timeout 60 p2p-fetch --stats -p "$SERVER_ADDR" -o out "$(ref_id src)" </dev/null
	cmp src out
	assert_equal "$(stats_field "$stderr" chunks_resumed)" 10
	assert_equal "$(stats_field "$stderr" chunks_fetched)" 54
}

# _fetch_progress: true once the background fetch has written a quarter of out.part, or ended.
_fetch_progress() {
	[[ -e out && ! -e out.part ]] && return 0
	pid_alive "$FETCH_PID" || return 0
	[[ -e out.part ]] || return 1
	local blocks unit
	read -r blocks unit < <(stat -c '%b %B' out.part)
	((blocks * unit >= 16 * 1048576))
}

@test "resume after kill -9: only the missing chunks are fetched" {
	make_file src 64M 22
	serve_chunked -c 64K src
	local id
	id=$(ref_id src)
	p2p-fetch -p "$SERVER_ADDR" -o out "$id" </dev/null >/dev/null 2>fetch1.err 3>&- &
	FETCH_PID=$!
	EXTRA_PIDS+=("$FETCH_PID")
	wait_for -t 60 _fetch_progress
	kill -KILL "$FETCH_PID" 2>/dev/null || true
	wait_exit "$FETCH_PID"
	if [[ -e out && ! -e out.part ]]; then
		skip "the fetch completed before it could be killed"
	fi
	assert_file_exists out.part
	local good
	good=$(chunks_ok_count out.part src 65536)
	((good > 0)) || skip "killed before any chunk was written"
	((good < 1024)) || skip "killed after every chunk was written"
	run -0 --separate-stderr timeout 120 p2p-fetch --stats -p "$SERVER_ADDR" -o out "$id" </dev/null
	cmp src out
	assert_file_not_exists out.part
	local resumed fetched
	resumed=$(stats_field "$stderr" chunks_resumed)
	fetched=$(stats_field "$stderr" chunks_fetched)
	assert_equal "$resumed" "$good"
	assert_equal "$((fetched + resumed))" 1024
	((fetched < 1024))
}

@test "refuses to write to stdout when it is a terminal; -o is fine" {
	has_tty_tool || skip "script(1) not installed"
	make_file f 1000 23
	serve_chunked f
	local id
	id=$(ref_id f)
	run -2 timeout 30 script -qec "p2p-fetch -p $SERVER_ADDR $id" /dev/null </dev/null
	[[ $output == *p2p-fetch* ]] || fail "no message: $output"
	run -0 timeout 30 script -qec "p2p-fetch -p $SERVER_ADDR -o out $id" /dev/null </dev/null
	cmp f out
}
