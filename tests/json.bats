#!/usr/bin/env bats
# --json: p2p-fetch --list, p2p-discover -l, p2p-verify and the --stats lines of p2p-fetch and
# p2p-serve print one JSON object a line, which jq reads. Names may hold any bytes: the
# escaper (tool_json_escape in tools/json.c) is checked case by case through p2p-verify,
# which prints the file name it was given.

bats_require_minimum_version 1.5.0
load ../bats/common

setup() {
	common_setup
	command -v jq >/dev/null || skip "jq is not installed (make deps)"
	DP=$(unused_udp_port)
}

# json_string_of NAME: the raw JSON text p2p-verify --json writes for a file named NAME.
json_string_of() {
	local out
	printf 'x' >"$1"
	out=$(p2p-verify --json "$(p2p-chunk --id -- "$1")" "$1") || return 1
	jq -e . >/dev/null <<<"$out" || {
		echo "not JSON: $out" >&2
		return 1
	}
	out=${out#\{\"file\":}
	printf '%s\n' "${out%%,\"ok\":*}"
	rm -f -- "$1"
}

# escapes PRINTF-FORMAT EXPECTED-JSON [DECODED-PRINTF-FORMAT]: the name made by the format is
# written as EXPECTED-JSON, and jq decodes that to the name itself (or to the given text, where
# bytes that are not UTF-8 became U+FFFD).
escapes() {
	local name decoded want
	name=$(printf "$1")
	run json_string_of "$name"
	assert_success
	assert_output "$2"
	want=$(printf "${3:-$1}")
	decoded=$(jq -r . <<<"$output")
	assert_equal "$decoded" "$want"
}

@test "escaper: ASCII as it is; quote and backslash escaped" {
	escapes 'plain.txt' '"plain.txt"'
	escapes 'a"b\\c' '"a\"b\\c"'
}

@test "escaper: control characters and DEL as escapes, never raw" {
	escapes 'a\tb\nc\rd' '"a\tb\nc\rd"'
	escapes 'x\001y\037z\177' '"x\u0001y\u001fz\u007f"'
	escapes '\033[31mred' '"\u001b[31mred"'
}

@test "escaper: valid UTF-8 of 2, 3 and 4 bytes passes unchanged; U+2028 and U+2029 escaped" {
	escapes 'h\303\251llo \342\202\254 \360\237\230\200' '"héllo € 😀"'
	escapes 'a\342\200\250b\342\200\251c' '"a\u2028b\u2029c"'
}

@test "escaper: every byte that is not valid UTF-8 becomes U+FFFD" {
	local r='\357\277\275' # U+FFFD in UTF-8, as jq decodes \ufffd
	escapes 'a\377b' '"a\ufffdb"' "a${r}b"
	escapes 'a\200b' '"a\ufffdb"' "a${r}b"
	# cut short, then ASCII
	escapes 'a\342\202x' '"a\ufffd\ufffdx"' "a${r}${r}x"
	# overlong '/'
	escapes 'a\300\257' '"a\ufffd\ufffd"' "a${r}${r}"
	# a UTF-16 surrogate
	escapes 'a\355\240\200' '"a\ufffd\ufffd\ufffd"' "a${r}${r}${r}"
	# past U+10FFFF
	escapes 'a\364\220\200\200' '"a\ufffd\ufffd\ufffd\ufffd"' "a${r}${r}${r}${r}"
	# cut short at the very end
	escapes 'a\360\237' '"a\ufffd\ufffd"' "a${r}${r}"
}

@test "p2p-verify --json: ok, the file's id and the expected one; bad chunks listed; exit codes kept" {
	make_file f 1M 1
	p2p-chunk -c 256K f >f.mf
	run -0 --separate-stderr p2p-verify --json -m f.mf f
	assert_equal "$(jq -c '[.file, .ok, .size, .bad_chunks]' <<<"$output")" '["f",true,1048576,[]]'
	assert_equal "$(jq -r .id <<<"$output")" "$(ref_id f)"
	assert_equal "$(jq -r .expected <<<"$output")" "$(ref_id f)"
	cp f g
	corrupt g 300000
	corrupt g 900000
	run -1 --separate-stderr p2p-verify --json -m f.mf g
	assert_equal "$(jq -c '[.file, .ok, .bad_chunks]' <<<"$output")" '["g",false,[1,3]]'
	[[ $(jq -r .id <<<"$output") != "$(ref_id f)" ]]
	assert_stderr_line 'p2p-verify: g: chunk 1 does not match'
	run -1 --separate-stderr p2p-verify --json "$(ref_id f)" g
	assert_equal "$(jq -c '[.ok, has("bad_chunks")]' <<<"$output")" '[false,false]'
}

@test "p2p-fetch --list --json: id, size and name per line; odd names exact, through jq" {
	mkdir share
	make_file share/plain.txt 1000 1
	make_file "share/$(printf 'tab\there "quoted" \\ h\303\251')" 2000 2
	make_file "share/$(printf 'new\nline')" 3000 3
	make_file "share/$(printf 'bad\377byte')" 4000 4
	start_server -d share --no-announce
	run -0 --separate-stderr list_files --json -p "$SERVER_ADDR"
	assert_equal "${#lines[@]}" 4
	local line
	for line in "${lines[@]}"; do
		# a file of a -d tree: its path in the tree, and its type (PROTOCOL.md section 10)
		jq -e 'keys == ["id", "name", "path", "size", "type"]' >/dev/null <<<"$line"
	done
	assert_equal "$(jq -r 'select(.size == 1000) | .name' <<<"$output")" plain.txt
	assert_equal "$(jq -r 'select(.size == 1000) | .id' <<<"$output")" "$(ref_id share/plain.txt)"
	assert_equal "$(jq -r 'select(.size == 2000) | .name' <<<"$output")" "$(printf 'tab\there "quoted" \\ h\303\251')"
	assert_equal "$(jq -r 'select(.size == 3000) | .name' <<<"$output")" "$(printf 'new\nline')"
	assert_equal "$(jq -r 'select(.size == 4000) | .name' <<<"$output")" "$(printf 'bad\357\277\275byte')"
	assert_equal "$(jq -r 'select(.size == 4000) | .id' <<<"$output")" "$(ref_id "share/$(printf 'bad\377byte')")"
}

@test "p2p-discover -l --json: addr, host, port, name, identity and nfiles, through jq" {
	mkdir share
	make_file share/a 1000 1
	make_file share/b 1000 2
	start_server --discovery-port "$DP" -n 'node "one"' -d share
	run -0 --separate-stderr timeout 30 p2p-discover --discovery-port "$DP" -t 2 -l --json
	assert_equal "${#lines[@]}" 1
	assert_equal "$(jq -c '[.addr, .host, .port, .name, .identity, .nfiles]' <<<"$output")" \
		"[\"$SERVER_ADDR\",\"127.0.0.1\",$SERVER_PORT,\"node \\\"one\\\"\",null,2]"
	# --json alone is the long form too
	run -0 --separate-stderr timeout 30 p2p-discover --discovery-port "$DP" -t 1 --json
	assert_equal "$(jq -r .addr <<<"$output")" "$SERVER_ADDR"
}

@test "p2p-fetch --stats --json: one JSON line on stderr, the counts of the text line" {
	make_file f 2M 1
	serve_chunked -c 256K f -- --no-announce
	run -0 --separate-stderr p2p-fetch -q --stats --json -p "$SERVER_ADDR" -o out "$(ref_id f)" </dev/null
	cmp f out
	assert_equal "${#stderr_lines[@]}" 1
	assert_equal "$(jq -c '[.tool, .chunks_fetched, .chunks_resumed, .peers_used, .peers_dropped, .exit]' <<<"$stderr")" \
		'["p2p-fetch",8,0,1,0,0]'
	assert_equal "$(jq -c '.from' <<<"$stderr")" "[{\"peer\":\"$SERVER_ADDR\",\"chunks\":8}]"
	(($(jq .bytes_in <<<"$stderr") >= 2097152))
}

@test "p2p-serve --stats --json: a JSON line at exit that jq reads" {
	make_file f 1M 1
	serve_chunked -c 256K f -- --no-announce --stats --json
	p2p-fetch -p "$SERVER_ADDR" -o out "$(ref_id f)" </dev/null
	stop_server "$SERVER_PID"
	assert_equal "$exit_status" 0
	run jq -c '[.tool, .chunks_out, .manifests_out, .peers >= 1, .bytes_out >= 1048576, .datagrams_bad]' \
		< <(grep '^{' "$SERVER_ERR")
	assert_output '["p2p-serve",4,1,true,true,0]'
}
