#!/usr/bin/env bats
# Every tool's -h lists every option it takes, aligned, and its man page documents each: the
# long options its getopt table accepts (found by asking the tool, so macros count), those its
# --help shows and those of its man page's option list are the same.

bats_require_minimum_version 1.5.0
load ../bats/common

TOOLS=(p2p-chunk p2p-serve p2p-discover p2p-fetch p2p-verify p2p-bench p2p-send)

setup() {
	common_setup
}

# candidates: every long option name any tool's source spells in a getopt table.
candidates() {
	grep -ohE '\{ "[a-z][a-z0-9-]*", (no|required|optional)_argument' \
		"$BATS_TEST_DIRNAME"/../tools/*.c "$BATS_TEST_DIRNAME"/../tools/*.h |
		sed -E 's/^\{ "([^"]*)".*/\1/' | sort -u
}

# accepted TOOL: the long options TOOL takes. Each candidate is given as --NAME=x before -h:
# getopt says "unrecognized option" only of one the tool does not take. An abbreviation of a
# longer option is taken by getopt too, so a candidate counts only when it is no prefix of
# another one the tool lists in its --help.
accepted() {
	local tool=$1 name err
	for name in $(candidates); do
		err=$(timeout 10 "$tool" "--$name=x" -h 2>&1 >/dev/null </dev/null || true)
		if ! grep -q "unrecognized option" <<<"$err"; then
			echo "$name"
		fi
	done
}

# internal TOOL: options not for users (p2p-bench runs itself with these for its raw-TCP
# baseline), left out of -h and the man page on purpose.
internal() {
	[[ $1 == p2p-bench ]] && printf '%s\n' raw-send raw-recv
	true
}

help_options() {
	"$1" --help | grep -oE -- '--[a-z][a-z0-9-]*' | sed 's/^--//' | sort -u
}

man_options() {
	grep -E '^\.It Fl ' "$BATS_TEST_DIRNAME/../docs/man/$1.1" | grep -oE 'Fl -[a-z][a-z0-9-]*' |
		sed 's/^Fl -//' | sort -u
}

@test "every long option a tool accepts is in its -h, and -h lists none it does not take" {
	local tool name help missing=""
	for tool in "${TOOLS[@]}"; do
		help=$(help_options "$tool")
		for name in $(accepted "$tool"); do
			grep -qx -- "$name" <<<"$(internal "$tool")" && continue
			# an abbreviation getopt took for a longer option of the tool
			grep -qx -- "$name" <<<"$help" ||
				grep -q -- "^$name." <<<"$help" ||
				missing+=" $tool:--$name"
		done
		for name in $help; do
			grep -qx -- "$name" <<<"$(accepted "$tool")" || missing+=" $tool:--$name(not taken)"
		done
	done
	[[ -z $missing ]] || fail "not in -h, or in -h but not taken:$missing"
}

@test "every tool's -h and man page list the same long options" {
	local tool diff out=""
	for tool in "${TOOLS[@]}"; do
		diff=$(diff <(help_options "$tool") <(man_options "$tool") || true)
		[[ -z $diff ]] || out+=$'\n'"$tool (< -h, > man): $diff"
	done
	[[ -z $out ]] || fail "$out"
}

@test "every tool's -h is aligned: each option's text starts in one column" {
	local tool bad
	for tool in "${TOOLS[@]}"; do
		# For each option line, where its text starts (after the first run of two spaces
		# or more) and where its option part ends; the most common start is the column.
		# A line is out of line when its text starts elsewhere though the option part
		# would have fitted before the column (a longer one goes on after two spaces).
		bad=$("$tool" --help | grep -E '^ +-' | awk '
			{ s = $0; lead = match(s, /[^ ]/); rest = substr(s, lead)
			  if (!match(rest, /  +/)) next
			  end[NR] = lead + RSTART - 2; col[NR] = lead + RSTART + RLENGTH - 1
			  line[NR] = $0; n[col[NR]]++ }
			END { best = 0; for (c in n) if (n[c] > n[best]) best = c
			  for (i in col) if (col[i] != best && end[i] < best - 2) print line[i] }')
		[[ -z $bad ]] || fail "$tool: out of line: $bad"
	done
}
