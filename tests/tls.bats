#!/usr/bin/env bats
# TLS on peer connections (docs/PROTOCOL.md section 8): TLS 1.3 by default with a certificate on
# both sides, each node's identity (SHA-256 of its public key) logged, listed and pinned, a
# plaintext peer refused with a message saying why, nothing of a file in clear on the wire, a
# byte changed on the wire caught, private swarms (--secret-file) closed to every other node,
# over TCP and in discovery, and the key file kept private. Identities are computed here a
# second way, from the key file by the openssl command and from the certificate by the
# reference (bats/p2p_ref.py identity), so a tool that logs the wrong hash does not pass.

bats_require_minimum_version 1.5.0

load ../bats/common

# key_identity KEYFILE: a node's identity from its key file: SHA-256 of the DER
# SubjectPublicKeyInfo, as the openssl command writes it.
key_identity() {
	openssl pkey -in "$1" -pubout -outform DER | sha256sum | cut -d ' ' -f 1
}

# new_key FILE: a fresh Ed25519 key in FILE, mode 0600.
new_key() {
	(umask 077 && openssl genpkey -algorithm ed25519 -out "$1" 2>/dev/null)
}

# serve_m [P2P-SERVE ARGS...]: p2p-serve of the manifests in m, no discovery unless ARGS ask.
serve_m() {
	start_server --stdin m --no-announce "$@"
}

# swarm_lists ADDR ID SECRET: a member of the private swarm of SECRET sees ID in ADDR's list
# (the reference cannot join a private swarm: it has no TLS exporter).
swarm_lists() {
	timeout 10 p2p-fetch --list --secret-file "$3" -p "$1" </dev/null 2>/dev/null |
		grep -q "^$2"$'\t'
}

# ---- identities ----

@test "a fetch over TLS 1.3; the server logs its key's identity, and p2p-discover -l and the reference see the same" {
	local dp
	dp=$(unused_udp_port)
	make_file f 1M 1
	serve_chunked -c 64K f -- --discovery-port "$dp" -n tls-node
	local ident
	ident=$(server_identity)
	# the key was made on first use in this test's home, and the identity is that key's
	assert_equal "$ident" "$(key_identity "$HOME/.config/p2p/identity.pem")"
	run -0 python3 "$P2P_REF" identity "$SERVER_ADDR"
	assert_output "$ident"
	run -0 --separate-stderr timeout 30 p2p-fetch -vv -p "$SERVER_ADDR" -o out "$(ref_id f)" </dev/null
	cmp f out
	assert_stderr --partial "conn: $SERVER_ADDR: TLS TLSv1.3, "
	refute_stderr --partial 'TLS is off'
	run -0 --separate-stderr timeout 30 p2p-discover -t 3 -l --discovery-port "$dp" </dev/null
	assert_output "$SERVER_ADDR"$'\ttls-node\t'"$ident"$'\t1\tdirect'
}

@test "--identity with the key of PROTOCOL.md's test vector: identity a050837d...91a5 everywhere" {
	local vector=a050837d85070582ccf7394b0988847cc312cb88259b894899f6f239cf1791a5
	(
		umask 077
		printf '%s\n' '-----BEGIN PRIVATE KEY-----' \
			'MC4CAQAwBQYDK2VwBCIEIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f' \
			'-----END PRIVATE KEY-----' >vector.pem
	)
	assert_equal "$(key_identity vector.pem)" "$vector"
	cp vector.pem vector.copy
	start_server --no-announce --identity vector.pem
	assert_equal "$(server_identity)" "$vector"
	run -0 python3 "$P2P_REF" identity "$SERVER_ADDR"
	assert_output "$vector"
	# the key file is read, not rewritten
	cmp vector.pem vector.copy
	[[ ! -e $HOME/.config/p2p/identity.pem ]] || fail "the default key was made as well"
}

@test "-p ID@HOST:PORT: the right identity fetches; another one: exit 1, both identities named" {
	make_file f 200000 2
	p2p-chunk f >m
	serve_m
	local id ident other
	id=$(ref_id f)
	wait_listed "$SERVER_ADDR" "$id"
	ident=$(server_identity)
	new_key other.pem
	other=$(key_identity other.pem)
	run -0 --separate-stderr timeout 30 p2p-fetch -p "$ident@$SERVER_ADDR" -o out "$id" </dev/null
	cmp f out
	run -1 --separate-stderr timeout 30 p2p-fetch -p "$other@$SERVER_ADDR" -o out2 "$id" </dev/null
	assert_stderr --partial "$SERVER_ADDR: peer identity is not the one expected: identity $ident, not the $other asked for"
	assert_file_not_exists out2
	# a pin of the wrong shape is a usage error
	run -2 --separate-stderr timeout 10 p2p-fetch -p "${ident:1}@$SERVER_ADDR" -o out3 "$id" </dev/null
	assert_stderr --partial '64 hex digits'
}

@test "the reference's fake peer serves over TLS, asks for a client certificate, and can be pinned" {
	make_file f 300000 3
	p2p-chunk -c 16K f >m
	start_fake_peer m honest
	local ident
	ident=$(key_identity "$P2P_REF_CERT_DIR/key.pem")
	run -0 python3 "$P2P_REF" identity "$SERVER_ADDR"
	assert_output "$ident"
	run -0 --separate-stderr timeout 30 p2p-fetch -p "$ident@$SERVER_ADDR" -o out "$(ref_id f)" </dev/null
	cmp f out
	# like p2p-serve, it asks the client for a certificate (any will do) and refuses one without
	run -0 python3 - "$SERVER_ADDR" "$P2P_REF_CERT_DIR" <<'PY'
import os, socket, ssl, sys
host, port = sys.argv[1].rsplit(":", 1)
for with_cert in (False, True):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if with_cert:
        ctx.load_cert_chain(os.path.join(sys.argv[2], "cert.pem"), os.path.join(sys.argv[2], "key.pem"))
    s = ctx.wrap_socket(socket.create_connection((host, int(port)), timeout=10))
    try:
        print("cert" if with_cert else "none", "HELLO" if s.recv(5)[4:] == b"\x95" else "?")
    except ssl.SSLError as e:
        print("cert" if with_cert else "none", e.reason)
PY
	assert_output $'none TLSV13_ALERT_CERTIFICATE_REQUIRED\ncert HELLO'
	run ! grep -q 'cannot ask clients' "$SERVER_ERR"
}

# ---- TLS or not ----

@test "a --no-tls fetch against a TLS server, and a TLS fetch against a --no-tls server: refused, both sides saying why" {
	make_file f 100000 4
	p2p-chunk f >m
	local id
	id=$(ref_id f)
	serve_m
	local tls=$SERVER_ADDR tls_err=$SERVER_ERR
	wait_listed "$tls" "$id"
	serve_m --no-tls
	local plain=$SERVER_ADDR plain_err=$SERVER_ERR
	P2P_REF_TLS=0 wait_listed "$plain" "$id"
	grep -q 'TLS is off' "$plain_err" || fail "no warning from the --no-tls server"

	run -1 --separate-stderr timeout 30 p2p-fetch --no-tls -T 5 -p "$tls" -o out "$id" </dev/null
	assert_stderr --partial 'TLS is off'
	assert_stderr --regexp "$tls: .*the peer may want TLS"
	wait_for grep -Eq ': closed: .*does not speak TLS' "$tls_err"
	assert_file_not_exists out

	# (what the fetch says here is checked over many tries in the next test)
	run -1 --separate-stderr timeout 30 p2p-fetch -T 5 -p "$plain" -o out "$id" </dev/null
	assert_stderr --partial "$plain"
	wait_for grep -q 'the peer speaks TLS and this node does not (--no-tls)' "$plain_err"
	assert_file_not_exists out

	# each with its own kind works
	run -0 --separate-stderr timeout 30 p2p-fetch --no-tls -p "$plain" -o out "$id" </dev/null
	cmp f out
	MINI_P2P_NO_TLS=1 run -0 --separate-stderr timeout 30 p2p-fetch -p "$plain" -o out2 "$id" </dev/null
	cmp f out2
	assert_stderr --partial 'TLS is off'
}

@test "a TLS fetch against a --no-tls server says the peer may run with --no-tls, every time (20 tries)" {
	start_server --no-announce --no-tls
	local i
	for i in $(seq 20); do
		run -1 --separate-stderr timeout 30 p2p-fetch -T 5 -p "$SERVER_ADDR" -o out "$(printf '%064d' 0)" </dev/null
		assert_stderr --regexp "$SERVER_ADDR: .*speak TLS.*--no-tls"
	done
}

@test "the server speaks TLS 1.3 only, and asks the client for a certificate" {
	start_server --no-announce
	# TLS 1.2: refused in the handshake
	run ! timeout 10 openssl s_client -tls1_2 -connect "$SERVER_ADDR" </dev/null
	wait_for grep -q 'closed: TLS failed: unsupported protocol' "$SERVER_ERR"
	# TLS 1.3 without a certificate: the server closes once the client's Finished shows none
	timeout 10 openssl s_client -tls1_3 -connect "$SERVER_ADDR" </dev/null >/dev/null 2>&1 || true
	wait_for grep -q 'closed: TLS failed: peer did not return a certificate' "$SERVER_ERR"
	# with any self-signed one (the reference's), the HELLO comes (caps 127: swarm, duplex, records, hashes, trees, choke, files)
	run -0 python3 "$P2P_REF" hello "$SERVER_ADDR"
	assert_output --regexp '^\[0, 1, 127, '
}

@test "nothing of the file in clear on the wire (every byte the proxy relays); with --no-tls, all of it" {
	# 1 MiB of a marker line, under a name that would show as well
	yes 'P2P-CLEARTEXT-MARKER-0123456789abcdef' | head -c 1M >clear-marker-name.bin
	p2p-chunk -c 64K clear-marker-name.bin >m
	local id
	id=$(ref_id clear-marker-name.bin)
	serve_m
	wait_listed "$SERVER_ADDR" "$id"
	start_faultproxy "$SERVER_ADDR" --dump tls.dump
	run -0 --separate-stderr timeout 30 p2p-fetch -p "$PROXY_ADDR" -o out "$id" </dev/null
	cmp clear-marker-name.bin out
	stop_server "$PROXY_PID"
	# the file did cross the proxy...
	(($(file_size tls.dump) > 1048576)) || fail "only $(file_size tls.dump) bytes relayed"
	# ...and neither its bytes nor its name are in what crossed
	run ! grep -aqF 'P2P-CLEARTEXT-MARKER' tls.dump
	run ! grep -aqF 'clear-marker-name' tls.dump

	# the control: the same with TLS off on both ends shows both
	rm -f out
	serve_m --no-tls
	P2P_REF_TLS=0 wait_listed "$SERVER_ADDR" "$id"
	start_faultproxy "$SERVER_ADDR" --dump plain.dump
	run -0 --separate-stderr timeout 30 p2p-fetch --no-tls -p "$PROXY_ADDR" -o out "$id" </dev/null
	cmp clear-marker-name.bin out
	stop_server "$PROXY_PID"
	grep -aqF 'P2P-CLEARTEXT-MARKER' plain.dump
	grep -aqF 'clear-marker-name' plain.dump
}

@test "a byte flipped on the wire under TLS: a TLS error ends that connection; beside a direct honest peer the fetch completes" {
	make_file f 1M 5
	p2p-chunk -c 16K f >m
	local id n
	id=$(ref_id f)
	serve_m -n s
	local target=$SERVER_ADDR
	wait_listed "$target" "$id"
	# Down from the server: byte 100 is in its ServerHello (its key share), byte 1000 in the
	# first records after the handshake (some 650 bytes): its HELLO or the manifest.
	for n in 100 1000; do
		start_faultproxy "$target" --flip-byte "$n"
		run -1 --separate-stderr timeout 30 p2p-fetch -T 5 -p "$PROXY_ADDR" -o "alone$n" "$id" </dev/null
		proxy_reported "$PROXY_ERR" "connection 1: flipped byte $n down"
		assert_stderr --regexp "$PROXY_ADDR: TLS [^:]*: (decryption failed or )?bad record mac"
		assert_file_not_exists "alone$n"
	done
	# The honest peer beside it is the reference's slow one (10 ms a chunk, 64 chunks), so the
	# proxied connection surely gets as far as its fault before the fetch is over.
	start_fake_peer m slow
	local honest=$SERVER_ADDR
	start_faultproxy "$target" --flip-byte 1000
	run -0 --separate-stderr timeout 60 p2p-fetch -T 5 --stats -p "$PROXY_ADDR" -p "$honest" -o out "$id" </dev/null
	cmp f out
	proxy_reported "$PROXY_ERR" 'connection 1: flipped byte 1000 down'
	assert_stderr --regexp "$PROXY_ADDR: TLS [^:]*: (decryption failed or )?bad record mac"
	# every chunk came from the honest peer: the proxied one failed before its first chunk
	assert_equal "$(stats_field "$stderr" from)" "$honest/64"
}

# ---- private swarms ----

@test "private swarm: members fetch from each other; a node without the secret, or with another, is refused" {
	make_file f 4M 6
	p2p-chunk -c 64K f >m
	local id
	id=$(ref_id f)
	umask 077 # a secret file others can read is refused
	printf 'the swarm of A\n' >a.secret
	printf 'the swarm of B\n' >b.secret
	cp a.secret a-copy.secret # the key is the file's content, not its name
	serve_m -n a1 --secret-file a.secret
	local a1=$SERVER_ADDR a1_err=$SERVER_ERR
	serve_m -n a2 --secret-file a.secret
	local a2=$SERVER_ADDR
	serve_m -n open
	local open=$SERVER_ADDR open_err=$SERVER_ERR
	wait_for swarm_lists "$a1" "$id" a.secret
	wait_for swarm_lists "$a2" "$id" a.secret
	wait_listed "$open" "$id"
	grep -q 'private swarm' "$a1_err" || fail "a1 does not say it is in a private swarm"

	run -0 --separate-stderr timeout 30 p2p-fetch --stats --secret-file a-copy.secret -p "$a1" -p "$a2" -o out "$id" </dev/null
	cmp f out
	assert_equal "$(stats_field "$stderr" peers_dropped)" 0
	refute_stderr --partial 'private swarm'

	# without the secret: the member says why (ERROR AUTH), closes, and logs it; the
	# fetch shows its words, every time (an unread request must not reset them away)
	local i
	for i in 1 2 3 4 5; do
		run -1 --separate-stderr timeout 30 p2p-fetch -T 5 -p "$a1" -o out1 "$id" </dev/null
		assert_stderr --partial "$a1: refused by peer: it says: a private swarm: give its secret (--secret-file)"
		assert_file_not_exists out1
	done
	# p2p-discover, asking it for its identity (-l), warns why it has none
	run --separate-stderr timeout 30 p2p-discover -t 2 -l --bootstrap "$a1" --discovery-port "$(unused_udp_port)" </dev/null
	assert_stderr --partial "$a1: refused by peer: it says: a private swarm"
	wait_for grep -q "closed: peer is not in this private swarm: it gave no proof" "$a1_err"

	# with another secret: refused both ways
	run -1 --separate-stderr timeout 30 p2p-fetch -T 5 --secret-file b.secret -p "$a1" -o out2 "$id" </dev/null
	assert_stderr --partial "$a1: peer is not in this private swarm: its proof of the swarm's secret is wrong"
	assert_file_not_exists out2
	wait_for grep -q "closed: peer is not in this private swarm: its proof of the swarm's secret is wrong" "$a1_err"

	# a member does not fetch from a node outside the swarm either
	run -1 --separate-stderr timeout 30 p2p-fetch -T 5 --secret-file a.secret -p "$open" -o out3 "$id" </dev/null
	assert_stderr --partial "$open: peer is not in this private swarm: it gave no proof"
	assert_file_not_exists out3
	# ... and tells it why
	wait_for grep -q "closed: refused by peer: it says: a private swarm" "$open_err"
}

@test "private swarm discovery: p2p-discover with secret A lists A's servers, not B's nor those without a secret" {
	local dp
	dp=$(unused_udp_port)
	umask 077
	printf 'swarm A' >a.secret
	printf 'swarm B' >b.secret
	start_server --discovery-port "$dp" -n a1 --secret-file a.secret
	local a1=$SERVER_ADDR
	start_server --discovery-port "$dp" -n a2 --secret-file a.secret
	local a2=$SERVER_ADDR
	start_server --discovery-port "$dp" -n b1 --secret-file b.secret --stats
	local b1=$SERVER_ADDR b1_pid=$SERVER_PID b1_err=$SERVER_ERR
	start_server --discovery-port "$dp" -n open --stats
	local open=$SERVER_ADDR open_pid=$SERVER_PID open_err=$SERVER_ERR

	wait_for discover_finds 2 "$a1" "$a2" -- --discovery-port "$dp" --secret-file a.secret
	assert_equal "$(sort <<<"$DISCOVERED")" "$(printf '%s\n' "$a1" "$a2" | sort)"
	wait_for discover_finds 2 "$b1" -- --discovery-port "$dp" --secret-file b.secret
	assert_equal "$DISCOVERED" "$b1"
	wait_for discover_finds 2 "$open" -- --discovery-port "$dp"
	assert_equal "$DISCOVERED" "$open"
	# -l shows the members with their names (over TLS, with the swarm's proof)
	run -0 --separate-stderr timeout 30 p2p-discover -t 3 -l --discovery-port "$dp" --secret-file a.secret </dev/null
	assert_line --regexp "^$a1"$'\ta1\t[0-9a-f]{64}\t0\tdirect$'
	assert_line --regexp "^$a2"$'\ta2\t[0-9a-f]{64}\t0\tdirect$'
	assert_equal "${#lines[@]}" 2

	# the other swarm's datagrams did arrive, and were ignored
	stop_server "$b1_pid"
	stop_server "$open_pid"
	(($(stats_field "$(cat "$b1_err")" datagrams_bad) > 0)) || fail "b1 saw no foreign datagram"
	(($(stats_field "$(cat "$open_err")" datagrams_bad) > 0)) || fail "open saw no foreign datagram"
}

@test "--secret-file with --no-tls (or MINI_P2P_NO_TLS=1) is a usage error, exit 2" {
	printf 's' >s.secret
	run -2 --separate-stderr timeout 10 p2p-serve -p 0 --bind 127.0.0.1 --no-announce --no-tls --secret-file s.secret </dev/null
	assert_output ''
	assert_stderr --partial 'not with --no-tls'
	run -2 --separate-stderr timeout 10 p2p-fetch --no-tls --secret-file s.secret -p 127.0.0.1:1 "$(printf '%064d' 0)" </dev/null
	assert_stderr --partial 'not with --no-tls'
	run -2 --separate-stderr timeout 10 p2p-discover -t 1 --no-tls --secret-file s.secret </dev/null
	assert_stderr --partial 'not with --no-tls'
	MINI_P2P_NO_TLS=1 run -2 --separate-stderr timeout 10 p2p-serve -p 0 --bind 127.0.0.1 --no-announce --secret-file s.secret </dev/null
	assert_output ''
	assert_stderr --partial 'not with --no-tls'
}

# ---- the key file ----

@test "the key: made on first use with mode 0600 (directory 0700), kept across runs; P2P_IDENTITY, XDG_CONFIG_HOME and --identity place it" {
	local key=$HOME/.config/p2p/identity.pem
	[[ ! -e $key ]] || fail "a key before any tool ran"
	start_server --no-announce
	local first
	first=$(server_identity)
	assert_file_exists "$key"
	assert_equal "$(stat -c %a "$key")" 600
	assert_equal "$(stat -c %a "$(dirname "$key")")" 700
	assert_equal "$first" "$(key_identity "$key")"
	cp "$key" key.copy
	stop_servers
	# the second run takes the same key, unchanged
	start_server --no-announce
	assert_equal "$(server_identity)" "$first"
	cmp "$key" key.copy
	stop_servers

	P2P_IDENTITY=$BATS_TEST_TMPDIR/env.pem start_server --no-announce
	assert_equal "$(stat -c %a env.pem)" 600
	assert_equal "$(server_identity)" "$(key_identity env.pem)"
	XDG_CONFIG_HOME=$BATS_TEST_TMPDIR/xdg start_server --no-announce
	assert_equal "$(stat -c %a xdg/p2p/identity.pem)" 600
	assert_equal "$(server_identity)" "$(key_identity xdg/p2p/identity.pem)"
	# --identity wins over P2P_IDENTITY
	P2P_IDENTITY=$BATS_TEST_TMPDIR/env.pem start_server --no-announce --identity opt.pem
	assert_equal "$(stat -c %a opt.pem)" 600
	assert_equal "$(server_identity)" "$(key_identity opt.pem)"
	[[ $(key_identity opt.pem) != "$(key_identity env.pem)" ]]
}

@test "a key file others can read (0644) is refused, exit 1, saying chmod 600; nothing served" {
	new_key k.pem
	chmod 644 k.pem
	run -1 --separate-stderr timeout 10 p2p-serve -p 0 --bind 127.0.0.1 --no-announce --identity k.pem </dev/null
	assert_output ''
	assert_stderr --partial 'k.pem'
	assert_stderr --partial 'chmod 600'
	run -1 --separate-stderr timeout 10 p2p-fetch --identity k.pem -p 127.0.0.1:1 "$(printf '%064d' 0)" </dev/null
	assert_stderr --partial 'chmod 600'
	run -1 --separate-stderr timeout 10 p2p-discover -t 1 --identity k.pem </dev/null
	assert_stderr --partial 'chmod 600'
	# the default place too, and the file is left as it was
	mkdir -p "$HOME/.config/p2p"
	cp -p k.pem "$HOME/.config/p2p/identity.pem"
	run -1 --separate-stderr timeout 10 p2p-serve -p 0 --bind 127.0.0.1 --no-announce </dev/null
	assert_stderr --partial 'chmod 600'
	cmp k.pem "$HOME/.config/p2p/identity.pem"
	assert_equal "$(stat -c %a "$HOME/.config/p2p/identity.pem")" 644
	# once private it is taken
	chmod 600 k.pem
	start_server --no-announce --identity k.pem
	assert_equal "$(server_identity)" "$(key_identity k.pem)"
}

@test "a key or secret file another user owns, or group or others may write, is refused on the file opened: exit 1, naming it and chmod 600" {
	[[ $(id -u) == 0 ]] || skip "needs root to give a file to another user"
	new_key k.pem
	# Group-writable: someone else could put their key in our place.
	chmod 620 k.pem
	run -1 --separate-stderr timeout 10 p2p-serve -p 0 --bind 127.0.0.1 --no-announce --identity k.pem </dev/null
	assert_output ''
	assert_stderr_line "p2p-serve: k.pem: group or others can read or write it: not used as this node's key (chmod 600 it)"
	# Mode 0600, but another user's.
	chmod 600 k.pem
	chown nobody k.pem
	run -1 --separate-stderr timeout 10 p2p-serve -p 0 --bind 127.0.0.1 --no-announce --identity k.pem </dev/null
	assert_output ''
	assert_stderr_line "p2p-serve: k.pem: owned by another user: not used as this node's key (use a key of your own, chmod 600)"
	run -1 --separate-stderr timeout 10 p2p-fetch --identity k.pem -p 127.0.0.1:1 "$(printf '%064d' 0)" </dev/null
	assert_stderr --partial 'k.pem: owned by another user'
	run -1 --separate-stderr timeout 10 p2p-discover -t 1 --identity k.pem </dev/null
	assert_stderr --partial 'k.pem: owned by another user'
	# Through a symbolic link: the file opened is judged, not the link.
	chown root k.pem
	chmod 644 k.pem
	ln -s k.pem link.pem
	run -1 --separate-stderr timeout 10 p2p-serve -p 0 --bind 127.0.0.1 --no-announce --identity link.pem </dev/null
	assert_stderr --partial 'link.pem:'
	chmod 600 k.pem

	# The secret file: others may read it, or write it, or it is another user's.
	(umask 077 && printf 'the swarm' >s.secret)
	chmod 640 s.secret
	run -1 --separate-stderr timeout 10 p2p-serve -p 0 --bind 127.0.0.1 --no-announce --identity k.pem --secret-file s.secret </dev/null
	assert_output ''
	assert_stderr_line "p2p-serve: secret file s.secret: group or others can read or write it: not used (chmod 600 it)"
	chmod 602 s.secret
	run -1 --separate-stderr timeout 10 p2p-fetch --identity k.pem --secret-file s.secret -p 127.0.0.1:1 "$(printf '%064d' 0)" </dev/null
	assert_stderr --partial 'secret file s.secret: group or others can read or write it'
	chmod 600 s.secret
	chown nobody s.secret
	run -1 --separate-stderr timeout 10 p2p-discover -t 1 --identity k.pem --secret-file s.secret </dev/null
	assert_stderr_line "p2p-discover: secret file s.secret: owned by another user: not used (use a copy of your own, chmod 600)"
	# Ours alone, or a pipe of ours: taken.
	chown root s.secret
	start_server --no-announce --identity k.pem --secret-file s.secret
	assert_equal "$(server_identity)" "$(key_identity k.pem)"
	# (alone, it finds no peer: exit 1 for that, and for nothing else)
	run -1 --separate-stderr timeout 10 p2p-discover -t 1 --identity k.pem --secret-file <(printf 'the swarm') </dev/null
	assert_stderr 'p2p-discover: no peers found'
}

@test "a pinned identity that does not match is reported once, not once per address" {
	make_file f 200000 2
	p2p-chunk f >m
	serve_m --bind ::
	local id ident other port=$SERVER_PORT
	id=$(ref_id f)
	ident=$(server_identity)
	new_key other.pem
	other=$(key_identity other.pem)
	# the same node at two addresses, both pinned to another identity
	run -1 --separate-stderr timeout 30 p2p-fetch -o out "p2p://$id@127.0.0.1:$port,[::1]:$port#$other" </dev/null
	assert_equal "$(grep -c "identity $ident, not the $other asked for" <<<"$stderr")" 1
	assert_file_not_exists out
	# one address: said once too (not again in the final message)
	run -1 --separate-stderr timeout 30 p2p-fetch -p "$other@127.0.0.1:$port" -o out "$id" </dev/null
	assert_equal "$(grep -c "identity $ident, not the $other asked for" <<<"$stderr")" 1
	assert_stderr_line --regexp "^p2p-fetch: $id: no peer could be reached$"
}
