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
             "latency/1K", "latency/exec", "tree/500", "tree-plain/500"]:
    assert want in names, (want, names)
assert [h["name"] for h in r["http"]] == ["vs-http/" + s for s in
        ["1K", "10K", "100K", "1M", "100M"]], r["http"]
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

# The HTTP baselines: each way a whole process on the same bytes, each
# compared with curl over the same transport, client and server apart.
@test "--http: vs-http figures beside curl from nginx, client and server apart; nginx stopped, nothing left" {
	run -0 --separate-stderr p2p-bench --http --quick -r 2 --json r.json --summary s.txt --dir "$BATS_TEST_TMPDIR"
	python3 - r.json <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
assert [f["name"] for f in r["figures"]] == ["latency/1K", "latency/exec"]
lat, exe = r["figures"]
assert lat["baseline"]["name"] == "curl https+nginx" and lat["ratio"] > 0
assert exe["baseline"]["name"] == "/bin/true" and exe["ratio"] > 0
assert all(f["runs"] == 2 and f["success_rate"] == 1.0 for f in r["figures"])
assert [h["name"] for h in r["http"]] == ["vs-http/" + s for s in
        ["1K", "10K", "100K", "1M", "100M"]], r["http"]
curl = {"p2p-fetch": "curl https", "p2p-fetch --no-tls": "curl http",
        "curl https": "curl https", "curl http": "curl http",
        "raw TCP copy": "curl http"}
for h in r["http"]:
    # --quick: at most 3 runs of 100M whatever -r says.
    assert h["runs"] == (3 if h["name"] == "vs-http/100M" else 2), h
    ways = {w["way"]: w for w in h["ways"]}
    assert sorted(ways) == sorted(list(curl) + ["sha256sum"]), h
    for name, w in ways.items():
        assert w["success_rate"] == 1.0, (h["name"], w)
        assert w["min_s"] <= w["median_s"] <= w["max_s"], w
        assert w["client_cpu_s"] > 0 and w["client_peak_rss_kib"] > 0, w
        if name == "sha256sum":
            assert "server_cpu_s" not in w and "vs_curl" not in w, w
            continue
        assert w["vs_curl"]["way"] == curl[name] and w["vs_curl"]["ratio"] > 0, w
        assert w["server_cpu_s"] >= 0 and w["server_peak_rss_kib"] > 0, w
    assert ways[curl["p2p-fetch"]]["vs_curl"]["ratio"] == 1.0, h
PY
	# One table row a way a size, curl's own ratio 1.00.
	assert_equal "$(grep -c '^vs-http/' s.txt)" 30
	run -0 grep -E '^vs-http/1K +curl https +2 .* 1\.00 ' s.txt
	# nginx was stopped and its directory (config, certificate, logs) removed.
	run ls -d "$BATS_TEST_TMPDIR"/p2p-bench.*
	assert_failure
}

@test "--http: nginx and the servers die with p2p-bench when it is killed" {
	p2p-bench --http --quick -r 50 -q --json r.json --summary s.txt --dir "$BATS_TEST_TMPDIR" 3>&- &
	bench=$!
	nginx=""
	for _ in $(seq 100); do
		nginx=$(pgrep -P "$bench" -x nginx || true)
		[[ -n "$nginx" ]] && break
		sleep 0.1
	done
	[[ -n "$nginx" ]]
	# Both p2p-serve and the raw sender start after nginx.
	for _ in $(seq 100); do
		[[ $(pgrep -P "$bench" | wc -l) -ge 4 ]] && break
		sleep 0.1
	done
	children=$(pgrep -P "$bench" | tr '\n' ' ')
	kill -KILL "$bench"
	wait "$bench" || true
	for pid in $children; do
		for _ in $(seq 100); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		run kill -0 "$pid"
		assert_failure
	done
}
