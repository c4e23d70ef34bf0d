#!/usr/bin/env bats
# p2p-bench runs end to end and writes a well-formed report whose figures
# all succeeded, each transfer beside its baseline.

bats_require_minimum_version 1.5.0
load ../bats/common

@test "--help prints usage on stdout, exit 0; a bad option is exit 2" {
	run -0 --separate-stderr p2p-bench --help
	assert_output --partial "usage: p2p-bench"
	run -2 --separate-stderr p2p-bench --bogus
	assert_stderr --partial "usage: p2p-bench"
	run -2 --separate-stderr p2p-bench --quick --full
	run -2 --separate-stderr p2p-bench --tree 10 --swarm 1
	run -2 --separate-stderr p2p-bench --tree 0
}

@test "--tree N: the tree figures alone, fetched with and without TLS beside tar | socat" {
	run -0 --separate-stderr p2p-bench --tree 300 -r 2 --json r.json --summary s.txt --dir "$BATS_TEST_TMPDIR"
	python3 - r.json <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
names = [f["name"] for f in r["figures"]]
assert names == ["tree/300", "tree-plain/300"], names
for f in r["figures"]:
    assert f["success_rate"] == 1.0 and f["runs"] == 2, f
    assert f["baseline"]["name"] == "tar|socat|tar" and f["ratio"] > 0, f
    assert f["baseline"]["runs"] == 2, f
    # 300 files of 1 to 4 KiB
    assert 300 * 1024 <= f["bytes"] <= 300 * 4096, f
PY
	assert_equal "$(grep -c '^tree' s.txt)" 2
	run ls -d "$BATS_TEST_TMPDIR"/p2p-bench.*
	assert_failure
}

@test "--quick writes the report and the summary, every figure succeeded" {
	run -0 --separate-stderr p2p-bench --quick --json r.json --summary s.txt --dir "$BATS_TEST_TMPDIR"
	assert_file_exists r.json
	assert_file_exists s.txt
	python3 - r.json <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
names = [f["name"] for f in r["figures"]]
for want in ["single/1K", "single/10K", "single/100K", "single/1M",
             "single/100M", "hash/100M", "peers/1/32M", "peers/8/32M",
             "concurrent/100/10M", "resilience/3-1/64M", "tls/100M",
             "tree/500", "tree-plain/500"]:
    assert want in names, (want, names)
for f in r["figures"]:
    assert f["success_rate"] == 1.0, f
    assert f["min_s"] <= f["median_s"] <= f["max_s"], f
    assert f["peak_rss_kib"] > 0, f
    if f["name"].startswith("single/"):
        assert f["baseline"]["name"] == "raw TCP copy" and f["ratio"] > 0, f
    if f["name"].startswith("tls/"):
        assert f["baseline"]["name"] == "--no-tls fetch" and f["ratio"] > 0, f
PY
	# The summary is the table people read: one line per figure.
	assert_equal "$(grep -c '^single/' s.txt)" 5
	[[ "$stderr" == *"wrote r.json and s.txt"* ]]
	# Nothing is left behind in the work directory.
	run ls -d "$BATS_TEST_TMPDIR"/p2p-bench.*
	assert_failure
}
