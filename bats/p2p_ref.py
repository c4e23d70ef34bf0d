#!/usr/bin/env python3
"""Independent reference for the bats suites: docs/PROTOCOL.md written again in Python.

The suites check the C tools against this, not against themselves: a content id or a manifest
that agrees with a second implementation of the spec cannot be wrong in the same way twice.
Standard library only (no msgpack module), so it runs wherever python3 does.

Connections are TLS 1.3, as the tools' are by default: each side presents a self-signed
certificate (the files $P2P_REF_CERT_DIR/cert.pem and key.pem, which bats/common.bash makes once
per run; without it, a key made with the openssl command for this process alone) and accepts any
certificate, since identities are what the tools check, not the reference. The fake peer asks
every client for its certificate, as p2p-serve does. P2P_REF_TLS=0 speaks plaintext, for nodes
run with --no-tls; so does MINI_P2P_NO_TLS=1 when P2P_REF_TLS is not set. The reference cannot
join a private swarm (--secret-file): Python's ssl module exports no keying material.

  p2p_ref.py id FILE...              content id of each FILE, one per line
  p2p_ref.py chunks FILE CS          the chunk layer of FILE at chunk size CS, one hex hash a line
  p2p_ref.py bytes N                 byte(N) of the test vectors (byte i = i mod 251) on stdout
  p2p_ref.py manifests FILE|-        decode a manifest stream: one JSON object per manifest
  p2p_ref.py tamper FILE WHAT        rewrite the first manifest of FILE: WHAT is chunks (flip a
                                     bit of chunk 0's hash), id (flip a bit of the id), nopath,
                                     or root (the tree's root in place of the chunk layer, as a
                                     node sends a large file's manifest)
  p2p_ref.py hello HOST:PORT         connect, send HELLO, print the peer's HELLO as JSON (bins
                                     as hex)
  p2p_ref.py identity HOST:PORT      the peer's identity from its TLS certificate: SHA-256 of
                                     its DER SubjectPublicKeyInfo, 64 hex digits
  p2p_ref.py list HOST:PORT          LIST over the wire, print "ID<TAB>SIZE<TAB>NAME" lines
  p2p_ref.py fetch HOST:PORT ID      fetch a file as a node of protocol 1 before the hashes
                                     (caps 0): GET_MANIFEST, the manifest checked against ID
                                     (its "chunks" required), then every chunk, each checked,
                                     to stdout; exit 1 naming the ERROR or what was wrong
  p2p_ref.py peers HOST:PORT         PEERS over the wire, print the peer table as HOST:PORT lines
  p2p_ref.py junk HOST:PORT          send a frame header of 4 GiB before HELLO (inside the TLS
                                     session); print "closed" when the peer closes the
                                     connection (exit 1 after 10 s)
  p2p_ref.py peer MANIFEST MODE      a fake peer on 127.0.0.1, port from the kernel, prints
                                     HOST:PORT then serves MANIFEST's file. MODE: honest,
                                     corrupt (every chunk has a flipped byte), badmanifest (the
                                     chunk layer does not match the id), silent (accepts,
                                     completes the TLS handshake, says nothing), notfound
                                     (knows no file), slow (honest, 10 ms per chunk, or
                                     P2P_REF_SLOW_MS: a good peer that cannot finish the
                                     whole file before a bad one is asked for some). It answers PEERS as version 1
                                     did, [host, port] pairs only: those of P2P_REF_PEERS
                                     (HOST:PORT words), or none; an id asked about is ignored
  p2p_ref.py tree DIR                the tree id of DIR (docs/PROTOCOL.md section 10): regular
                                     files and empty directories, symbolic links skipped
  p2p_ref.py treemanifest FILE|-     decode a tree manifest: one JSON object, its id checked
                                     against its "tree" bytes, and its entries
  p2p_ref.py treepeer DIR MODE       a fake peer like "peer", serving the tree of DIR by its id
                                     and each of its files (chunk size 16384); prints HOST:PORT,
                                     then the tree id. MODE: honest, dotdot (the tree also lists
                                     "../escaped" with the first file's id), absolute (also
                                     "/tmp/escaped"), many (a tree declaring 2^20 entries, its id
                                     that of those bytes). With caps 0 it writes the file
                                     saw-get-files where it runs if it is ever sent GET_FILES
                                     (type 20). Modes with the files cap (64), answering
                                     GET_FILES: files-short (honest, at most 3 files an
                                     answer), files-wrong (each file's last byte flipped),
                                     files-count (one entry more than asked), files-size (each
                                     file with a byte more), files-silent (no answer to any
                                     GET_FILES, but a HAVE pushed every half second after the
                                     first); GET_MANIFEST and GET_CHUNK honest
  p2p_ref.py load HOST:PORT MANIFEST N K
                                     open N connections at once, all held open together; on
                                     each ask for K random chunks, check every one against
                                     MANIFEST; print "served N" when all were right, exit 1
                                     otherwise (and say which)
  p2p_ref.py swarm HOST:PORT ID      INTERESTED in ID, then GET_CHUNK for every chunk the
                                     HAVE_MAP says is held, all at once, and a CANCEL for the
                                     last one; print "map CS HELD/COUNT" and "answers N CHUNK
                                     (all verified against the map's sizes), K CANCELLED";
                                     exit 1 on anything out of order
  p2p_ref.py stall HOST:PORT ID CS N GOFILE [COUNT]
                                     ask for chunks 0..N-1 of ID at chunk size CS (modulo COUNT
                                     when given) with a small receive buffer, print "asked", read
                                     nothing until GOFILE exists (30 s at most), then read the N
                                     answers; print "answers C CHUNK, E ERROR" and "busy B" (the
                                     ERRORs that were BUSY); exit 1 when the connection ends
                                     first or a CHUNK is not CS bytes long

Its fake peer and junk beside tests/peers/p2p-badpeer.c. Both misbehave on purpose, for
different proofs: this one is the protocol written a second time, over TLS as the tools run by
default, so p2p-fetch is shown to work with, and drop, a peer that is not itself (p2p-fetch.bats,
tls.bats); p2p-badpeer is plaintext, built on libproto for the honest parts and writing the
dishonest bytes one by one, for attacks on the frame and message layers at exact offsets and at
speed (attacks.bats). Where both have a mode, each is kept for that reason:

  here (peer MODE, junk)   p2p-badpeer            the same?
  honest                   serve honest           yes: here interop over TLS; there the control
                                                  (the fetch uses it like any peer, so a drop
                                                  in another mode is the mode's doing)
  corrupt                  serve wrong-chunk      yes (a byte flipped mid-chunk): here the drop
                                                  warning, -q and stdout as a user sees them,
                                                  over TLS; there the attack table, plaintext
  badmanifest              serve forged-manifest  yes (chunk layer altered, id kept): as corrupt
  silent                   serve stall            no: silent sends no HELLO at all (the
                                                  wait for HELLO); stall goes quiet after it
  notfound, slow           -                      only here (slow is an honest peer, 10 ms a
                                                  chunk; drip is a bad one, a byte every 2 s)
  junk HOST:PORT           attack huge-length     no: junk is once, before HELLO, inside TLS;
                                                  huge-length is after HELLO, over and over,
                                                  while the server's memory is watched
  -                        the other modes        only there: they need exact bytes
"""

import hashlib
import json
import os
import shutil
import socket
import ssl
import stat as stat_mod
import struct
import subprocess
import sys
import tempfile
import threading
import time

BLOCK = 16384


def H(b):
    return hashlib.sha256(b).digest()


def zero_node(height):
    z = bytes(32)
    for _ in range(height):
        z = H(z + z)
    return z


def reduce_layer(nodes, width, pad):
    """Pad `nodes` to `width` (a power of two) with `pad` and hash pairs up to one root."""
    nodes = list(nodes) + [pad] * (width - len(nodes))
    height = 0
    while len(nodes) > 1:
        nodes = [H(nodes[i] + nodes[i + 1]) for i in range(0, len(nodes), 2)]
        height += 1
    return nodes[0]


def leaves_of(path):
    leaves = []
    size = 0
    with open(path, "rb") as f:
        while True:
            b = f.read(BLOCK)
            if not b:
                break
            size += len(b)
            leaves.append(H(b))
    if not leaves:
        leaves.append(H(b""))
    return size, leaves


def width_of(n):
    w = 1
    while w < n:
        w *= 2
    return w


def content_id(size, root):
    return H(struct.pack(">Q", size) + root)


def file_id(path):
    size, leaves = leaves_of(path)
    root = reduce_layer(leaves, width_of(len(leaves)), bytes(32))
    return content_id(size, root)


def chunk_layer(leaves, cs):
    per = cs // BLOCK
    out = []
    for j in range(0, len(leaves), per):
        out.append(reduce_layer(leaves[j:j + per], per, bytes(32)))
    return out


def chunk_size_valid(size, cs):
    nblocks = max(1, -(-size // BLOCK))
    return (BLOCK <= cs <= 4 << 20 and cs & (cs - 1) == 0
            and cs <= width_of(nblocks) * BLOCK)


def id_from_layer(size, cs, layer):
    nblocks = max(1, -(-size // BLOCK))
    W = width_of(nblocks)
    per = cs // BLOCK
    k = per.bit_length() - 1
    return content_id(size, reduce_layer(layer, W // per, zero_node(k)))


# --- msgpack, the subset the protocol uses, shortest forms only on encode ---

class Bad(Exception):
    pass


def enc(o):
    if o is None:
        return b"\xc0"
    if o is True:
        return b"\xc3"
    if o is False:
        return b"\xc2"
    if isinstance(o, int):
        if o < 0:
            if o >= -32:
                return struct.pack("b", o)
            for code, fmt in ((0xd0, ">b"), (0xd1, ">h"), (0xd2, ">i"), (0xd3, ">q")):
                try:
                    return bytes([code]) + struct.pack(fmt, o)
                except struct.error:
                    pass
        if o < 128:
            return bytes([o])
        for code, fmt, lim in ((0xcc, ">B", 1 << 8), (0xcd, ">H", 1 << 16),
                               (0xce, ">I", 1 << 32), (0xcf, ">Q", 1 << 64)):
            if o < lim:
                return bytes([code]) + struct.pack(fmt, o)
        raise Bad("int too large")
    if isinstance(o, str):
        b = o.encode("utf-8", "surrogateescape")
        n = len(b)
        if n < 32:
            return bytes([0xa0 | n]) + b
        if n < 256:
            return b"\xd9" + bytes([n]) + b
        if n < 65536:
            return b"\xda" + struct.pack(">H", n) + b
        return b"\xdb" + struct.pack(">I", n) + b
    if isinstance(o, (bytes, bytearray)):
        n = len(o)
        if n < 256:
            return b"\xc4" + bytes([n]) + bytes(o)
        if n < 65536:
            return b"\xc5" + struct.pack(">H", n) + bytes(o)
        return b"\xc6" + struct.pack(">I", n) + bytes(o)
    if isinstance(o, list):
        n = len(o)
        if n < 16:
            h = bytes([0x90 | n])
        elif n < 65536:
            h = b"\xdc" + struct.pack(">H", n)
        else:
            h = b"\xdd" + struct.pack(">I", n)
        return h + b"".join(enc(x) for x in o)
    if isinstance(o, dict):
        n = len(o)
        if n < 16:
            h = bytes([0x80 | n])
        elif n < 65536:
            h = b"\xde" + struct.pack(">H", n)
        else:
            h = b"\xdf" + struct.pack(">I", n)
        return h + b"".join(enc(k) + enc(v) for k, v in o.items())
    raise Bad("cannot encode %r" % type(o))


def dec(buf, pos=0, depth=0):
    """Decode one object at buf[pos:]; return (object, next position)."""
    if depth > 32:
        raise Bad("too deep")

    def need(n):
        if pos + n > len(buf):
            raise Bad("truncated")

    need(1)
    c = buf[pos]
    pos += 1

    def take(n):
        nonlocal pos
        need(n)
        b = buf[pos:pos + n]
        pos += n
        return b

    def container(n, is_map):
        nonlocal pos
        if is_map:
            out = {}
            for _ in range(n):
                k, pos = dec(buf, pos, depth + 1)
                v, pos = dec(buf, pos, depth + 1)
                if isinstance(k, (dict, list)):
                    raise Bad("unhashable key")
                out[k] = v
            return out
        out = []
        for _ in range(n):
            v, pos = dec(buf, pos, depth + 1)
            out.append(v)
        return out

    if c <= 0x7f:
        return c, pos
    if c >= 0xe0:
        return c - 256, pos
    if 0x80 <= c <= 0x8f:
        return container(c & 0x0f, True), pos
    if 0x90 <= c <= 0x9f:
        return container(c & 0x0f, False), pos
    if 0xa0 <= c <= 0xbf:
        return take(c & 0x1f).decode("utf-8", "surrogateescape"), pos
    if c == 0xc0:
        return None, pos
    if c == 0xc2:
        return False, pos
    if c == 0xc3:
        return True, pos
    if c in (0xc4, 0xc5, 0xc6):
        n = struct.unpack({0xc4: ">B", 0xc5: ">H", 0xc6: ">I"}[c], take({0xc4: 1, 0xc5: 2, 0xc6: 4}[c]))[0]
        return bytes(take(n)), pos
    if c in (0xcc, 0xcd, 0xce, 0xcf):
        fmt, n = {0xcc: (">B", 1), 0xcd: (">H", 2), 0xce: (">I", 4), 0xcf: (">Q", 8)}[c]
        return struct.unpack(fmt, take(n))[0], pos
    if c in (0xd0, 0xd1, 0xd2, 0xd3):
        fmt, n = {0xd0: (">b", 1), 0xd1: (">h", 2), 0xd2: (">i", 4), 0xd3: (">q", 8)}[c]
        return struct.unpack(fmt, take(n))[0], pos
    if c in (0xca, 0xcb):
        fmt, n = {0xca: (">f", 4), 0xcb: (">d", 8)}[c]
        return struct.unpack(fmt, take(n))[0], pos
    if c in (0xd9, 0xda, 0xdb):
        n = struct.unpack({0xd9: ">B", 0xda: ">H", 0xdb: ">I"}[c], take({0xd9: 1, 0xda: 2, 0xdb: 4}[c]))[0]
        return take(n).decode("utf-8", "surrogateescape"), pos
    if c in (0xdc, 0xdd):
        n = struct.unpack(">H" if c == 0xdc else ">I", take(2 if c == 0xdc else 4))[0]
        return container(n, False), pos
    if c in (0xde, 0xdf):
        n = struct.unpack(">H" if c == 0xde else ">I", take(2 if c == 0xde else 4))[0]
        return container(n, True), pos
    raise Bad("unsupported msgpack type 0x%02x" % c)


def read_stream(data):
    """Yield (object, raw bytes) for each msgpack object in data, back to back."""
    pos = 0
    while pos < len(data):
        obj, end = dec(data, pos)
        yield obj, data[pos:end]
        pos = end


KEY_ORDER = ["v", "id", "name", "size", "chunk_size", "chunks", "path"]


def describe(m, raw):
    """A manifest as JSON-friendly data, with what the suites assert on."""
    if not isinstance(m, dict):
        raise Bad("manifest is not a map")
    d = {"keys": list(m.keys()), "canonical": enc(m) == raw, "raw_len": len(raw)}
    for k, v in m.items():
        if isinstance(v, bytes):
            v = v.hex()
        d[k] = v
    chunks = m.get("chunks")
    if isinstance(chunks, bytes):
        d["chunks"] = [chunks[i:i + 32].hex() for i in range(0, len(chunks), 32)]
        d["chunks_len"] = len(chunks)
    d["key_order_ok"] = [k for k in KEY_ORDER if k in m] == list(m.keys())
    try:
        d["id_ok"] = id_from_layer(m["size"], m["chunk_size"],
                                   [chunks[i:i + 32] for i in range(0, len(chunks), 32)]) == m["id"]
    except Exception:
        d["id_ok"] = False
    return d


# --- TLS ---

def tls_on():
    """TLS unless P2P_REF_TLS=0, or MINI_P2P_NO_TLS=1 (the tools' switch) with P2P_REF_TLS unset."""
    v = os.environ.get("P2P_REF_TLS", "")
    if v:
        return v != "0"
    return os.environ.get("MINI_P2P_NO_TLS") != "1"


def make_cert(d):
    """A self-signed Ed25519 certificate and its key in d (cert.pem, key.pem), by openssl(1)."""
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ed25519", "-nodes",
                    "-keyout", os.path.join(d, "key.pem"), "-out", os.path.join(d, "cert.pem"),
                    "-subj", "/CN=p2p_ref", "-days", "2"],
                   check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def load_cert(ctx):
    d = os.environ.get("P2P_REF_CERT_DIR")
    if d:
        ctx.load_cert_chain(os.path.join(d, "cert.pem"), os.path.join(d, "key.pem"))
        return
    # Loaded into the context at once, so the files need not outlive this call.
    d = tempfile.mkdtemp(prefix="p2p_ref.")
    try:
        make_cert(d)
        ctx.load_cert_chain(os.path.join(d, "cert.pem"), os.path.join(d, "key.pem"))
    finally:
        shutil.rmtree(d, ignore_errors=True)


_ACCEPT_ANY = None


def ask_any_client_cert(ctx):
    """Make a server context ask every client for a certificate and accept any, as p2p-serve's
    does. The ssl module can only verify against a CA store (a self-signed certificate fails),
    so this sets OpenSSL's verify callback on the SSL_CTX that ctx wraps, through ctypes; the
    pointer is checked against verify_mode first. False when that cannot be done: the peer
    then asks for no certificate, and says so on stderr."""
    global _ACCEPT_ANY
    try:
        import ctypes
        import _ssl
        lib = ctypes.CDLL(_ssl.__file__)  # its libssl, the one ctx lives in
        lib.SSL_CTX_get_verify_mode.restype = ctypes.c_int
        lib.SSL_CTX_get_verify_mode.argtypes = [ctypes.c_void_p]
        cb_type = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_void_p)
        lib.SSL_CTX_set_verify.restype = None
        lib.SSL_CTX_set_verify.argtypes = [ctypes.c_void_p, ctypes.c_int, cb_type]
        # PySSLContext: PyObject_HEAD, then the SSL_CTX pointer.
        ptr = ctypes.c_void_p.from_address(id(ctx) + object.__basicsize__).value
        if not ptr:
            raise OSError("no SSL_CTX")
        ctx.verify_mode = ssl.CERT_OPTIONAL
        if lib.SSL_CTX_get_verify_mode(ptr) != 1:      # SSL_VERIFY_PEER
            raise OSError("unexpected SSLContext layout")
        ctx.verify_mode = ssl.CERT_NONE
        if lib.SSL_CTX_get_verify_mode(ptr) != 0:
            raise OSError("unexpected SSLContext layout")
        if _ACCEPT_ANY is None:
            _ACCEPT_ANY = cb_type(lambda ok, store: 1)
        lib.SSL_CTX_set_verify(ptr, 1 | 2, _ACCEPT_ANY)  # PEER | FAIL_IF_NO_PEER_CERT
        return True
    except (OSError, AttributeError, ImportError) as e:
        ctx.verify_mode = ssl.CERT_NONE
        print("p2p_ref: cannot ask clients for a certificate (%s); asking for none" % e,
              file=sys.stderr)
        return False


_CTX = {}


def tls_context(server):
    """The one client or server context of this process: TLS 1.3 only, our certificate, and
    any peer certificate accepted (identities are checked by the tools, or by `identity`)."""
    if server not in _CTX:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if server else ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        if server:
            ctx.num_tickets = 0     # as p2p-serve: nobody resumes
            ask_any_client_cert(ctx)
        else:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        load_cert(ctx)
        _CTX[server] = ctx
    return _CTX[server]


def der_tlv(buf, pos):
    """One DER element at buf[pos:]: (tag, start of its contents, end)."""
    tag = buf[pos]
    n = buf[pos + 1]
    pos += 2
    if n & 0x80:
        k = n & 0x7f
        n = int.from_bytes(buf[pos:pos + k], "big")
        pos += k
    return tag, pos, pos + n


def cert_identity(der):
    """A node's identity from its certificate: SHA-256 of the DER SubjectPublicKeyInfo, the
    seventh element of tbsCertificate counting the optional [0] version (PROTOCOL.md)."""
    _, pos, _ = der_tlv(der, 0)              # Certificate
    _, pos, end = der_tlv(der, pos)          # tbsCertificate
    fields = []
    while pos < end:
        tag, body, nxt = der_tlv(der, pos)
        fields.append((tag, pos, nxt))
        pos = nxt
    if fields and fields[0][0] == 0xa0:      # [0] EXPLICIT version
        fields = fields[1:]
    # serial, signature, issuer, validity, subject, subjectPublicKeyInfo
    tag, start, stop = fields[5]
    if tag != 0x30:
        raise Bad("no SubjectPublicKeyInfo in the certificate")
    return H(der[start:stop])


def open_conn(addr, timeout=10):
    """A connection to addr, TLS or not as tls_on() says; the handshake done."""
    host, port = addr.rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=timeout)
    if not tls_on():
        return s
    try:
        return tls_context(False).wrap_socket(s)
    except BaseException:
        s.close()
        raise


def peer_identity(s):
    """The identity of the peer on TLS socket s, or None (plaintext, or no certificate)."""
    der = s.getpeercert(binary_form=True) if isinstance(s, ssl.SSLSocket) else None
    return cert_identity(der) if der else None


# --- the wire ---

def frame(obj):
    body = enc(obj)
    return struct.pack(">I", len(body)) + body


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        b = sock.recv(n - len(buf))
        if not b:
            raise EOFError
        buf += b
    return buf


def recv_frame(sock):
    n = struct.unpack(">I", recv_exact(sock, 4))[0]
    if n > 16 << 20:
        raise Bad("frame too large")
    obj, end = dec(recv_exact(sock, n))
    if end != n:
        raise Bad("trailing bytes in frame")
    return obj


def connect(addr):
    s = open_conn(addr)
    s.sendall(frame([0, 1, 0, "p2p_ref", 0]))
    hello = recv_frame(s)
    return s, hello


def load_manifest(path):
    with open(path, "rb") as f:
        data = f.read()
    m, _ = dec(data)
    return m


def serve_peer(manifest_path, mode):
    m = load_manifest(manifest_path)
    fid, size, cs, name, fpath = m["id"], m["size"], m["chunk_size"], m["name"], m.get("path")
    wire = {k: m[k] for k in KEY_ORDER if k in m and k != "path"}
    if mode == "badmanifest":
        ch = bytearray(wire["chunks"])
        ch[0] ^= 1
        wire["chunks"] = bytes(ch)
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(64)
    port = lsock.getsockname()[1]
    sys.stdout.write("127.0.0.1:%d\n" % port)
    sys.stdout.flush()

    use_tls = tls_on()
    if use_tls:
        tls_context(True)   # made before the first client, and before any thread
    slow_ms = int(os.environ.get("P2P_REF_SLOW_MS", "10"))
    peers_named = []
    for word in os.environ.get("P2P_REF_PEERS", "").split():
        host, _, p = word.rpartition(":")
        peers_named.append([host.strip("[]"), int(p)])

    def handle(conn):
        try:
            if use_tls:
                # The handshake in the connection's own thread: a client that stalls in it
                # holds up no one else.
                conn.settimeout(30)
                conn = tls_context(True).wrap_socket(conn, server_side=True)
                conn.settimeout(None)
            if mode == "silent":
                while conn.recv(65536):
                    pass
                return
            conn.sendall(frame([0, 1, 0, "fake-" + mode, port]))
            first = recv_frame(conn)
            if not isinstance(first, list) or first[:1] != [0]:
                return
            while True:
                msg = recv_frame(conn)
                t, rid = msg[0], msg[1]
                known = mode != "notfound"
                if t == 2:
                    files = [[fid, size, name]] if known else []
                    conn.sendall(frame([3, rid, files]))
                elif t == 4:
                    if known and msg[2] == fid:
                        conn.sendall(frame([5, rid, wire]))
                    else:
                        conn.sendall(frame([1, rid, 1, "not found"]))
                elif t == 8:
                    # [8, rid] or [8, rid, id]: elements past the rid are ignored, as a node
                    # of version 1's first draft ignored them.
                    conn.sendall(frame([9, rid, peers_named]))
                elif t == 6:
                    # [6, rid, id, index, chunk_size]: the requester's chunk size
                    idx = msg[3]
                    rcs = msg[4] if len(msg) > 4 else cs
                    if not known or msg[2] != fid:
                        conn.sendall(frame([1, rid, 1, "not found"]))
                        continue
                    if not chunk_size_valid(size, rcs):
                        conn.sendall(frame([1, rid, 2, "bad chunk size"]))
                        continue
                    if not (0 <= idx < max(1, -(-size // rcs))):
                        conn.sendall(frame([1, rid, 1, "not found"]))
                        continue
                    with open(fpath, "rb") as f:
                        f.seek(idx * rcs)
                        data = bytearray(f.read(rcs))
                    if mode == "slow":
                        time.sleep(slow_ms / 1000)
                    if mode == "corrupt" and data:
                        data[len(data) // 2] ^= 0xff
                    conn.sendall(frame([7, rid, bytes(data)]))
                else:
                    conn.sendall(frame([1, rid, 2, "bad request"]))
        except (EOFError, OSError, Bad, IndexError, TypeError):
            pass
        finally:
            conn.close()

    while True:
        conn, _ = lsock.accept()
        threading.Thread(target=handle, args=(conn,), daemon=True).start()


def chunk_hash(data, cs):
    leaves = [H(data[i:i + BLOCK]) for i in range(0, max(len(data), 1), BLOCK)]
    return reduce_layer(leaves, cs // BLOCK, bytes(32))


def load(addr, manifest_path, n, k):
    import random
    m = load_manifest(manifest_path)
    cs, size, fid = m["chunk_size"], m["size"], m["id"]
    nchunks = max(1, -(-size // cs))
    layer = [m["chunks"][i * 32:(i + 1) * 32] for i in range(nchunks)]
    socks = []
    bad = 0
    for _ in range(n):
        # Under TLS a connection the server refuses (--max-peers) fails here, in the handshake.
        try:
            socks.append(open_conn(addr, timeout=60))
        except OSError as e:
            socks.append(None)
            bad += 1
            print("connection failed: %s" % e, file=sys.stderr)
    # Every connection is open before any is served: N at once.
    wanted = []
    for s in socks:
        idx = [random.randrange(nchunks) for _ in range(k)]
        wanted.append(idx)
        if s is None:
            continue
        try:
            s.sendall(frame([0, 1, 0, "load", 0]) +
                      b"".join(frame([6, j + 1, fid, i, cs]) for j, i in enumerate(idx)))
        except OSError:
            pass  # seen as a failure when its answers are read
    for s, idx in zip(socks, wanted):
        if s is None:
            continue
        try:
            recv_frame(s)  # HELLO
            for j, i in enumerate(idx):
                r = recv_frame(s)
                ok = (r[0] == 7 and r[1] == j + 1 and chunk_hash(r[2], cs) == layer[i])
                if not ok:
                    bad += 1
                    print("chunk %d: wrong answer %r" % (i, r[:2]), file=sys.stderr)
        except (OSError, EOFError, Bad) as e:
            bad += 1
            print("connection failed: %s" % e, file=sys.stderr)
        s.close()
    if bad:
        print("%d failures of %d connections" % (bad, n), file=sys.stderr)
        return 1
    print("served %d" % n)
    return 0


def swarm(addr, fid):
    s, hello = connect(addr)
    if not hello[2] & 1:
        print("p2p_ref: swarm: the peer does not have the swarm cap", file=sys.stderr)
        return 1
    s.sendall(frame([4, 1, fid]))
    manifest = recv_frame(s)
    if manifest[0] != 5:
        print("p2p_ref: swarm: no manifest: %r" % (manifest[:4],), file=sys.stderr)
        return 1
    size = manifest[2]["size"]
    s.sendall(frame([12, 2, fid]))
    m = recv_frame(s)
    if m[0] != 13 or m[1] != 2:
        print("p2p_ref: swarm: expected HAVE_MAP, got %r" % (m[:2],), file=sys.stderr)
        return 1
    cs, bits = m[2], m[3]
    count = -(-size // cs)
    if len(bits) != (count + 7) // 8:
        print("p2p_ref: swarm: bitfield of %d bytes for %d chunks" % (len(bits), count),
              file=sys.stderr)
        return 1
    held = [i for i in range(count) if bits[i // 8] & (0x80 >> (i % 8))]
    print("map %d %d/%d" % (cs, len(held), count))
    if not held:
        return 0
    rids = {}
    out = b""
    for k, i in enumerate(held):
        rid = 100 + k
        rids[rid] = i
        out += frame([6, rid, fid, i, cs])
    out += frame([15, 100 + len(held) - 1])
    s.sendall(out)
    chunks = cancelled = 0
    for rid in sorted(rids):
        a = recv_frame(s)
        while a[0] == 14 and a[1] == 0:    # HAVE pushes may come between answers
            a = recv_frame(s)
        if a[1] != rid:
            print("p2p_ref: swarm: answer to %d where %d was due" % (a[1], rid), file=sys.stderr)
            return 1
        i = rids[rid]
        if a[0] == 7 and len(a[2]) == min(cs, size - i * cs):
            chunks += 1
        elif a[0] == 1 and a[2] == 6:
            cancelled += 1
        else:
            print("p2p_ref: swarm: chunk %d: unexpected %r" % (i, a[:3]), file=sys.stderr)
            return 1
    s.close()
    print("answers %d CHUNK, %d CANCELLED" % (chunks, cancelled))
    return 0


def fetch(addr, fid):
    s, _ = connect(addr)
    s.sendall(frame([4, 1, fid]))
    a = recv_frame(s)
    if a[0] == 1:
        print("p2p_ref: fetch: ERROR %d: %s" % (a[2], a[3]), file=sys.stderr)
        return 1
    m = a[2] if a[0] == 5 and a[1] == 1 else None
    if not isinstance(m, dict) or m.get("v") != 1 or not isinstance(m.get("chunks"), bytes):
        print("p2p_ref: fetch: not a manifest of protocol 1: %r" % (a[:2],), file=sys.stderr)
        return 1
    size, cs, chunks = m["size"], m["chunk_size"], m["chunks"]
    count = max(1, -(-size // cs))
    layer = [chunks[i * 32:(i + 1) * 32] for i in range(count)]
    if (not chunk_size_valid(size, cs) or len(chunks) != 32 * count or m["id"] != fid
            or id_from_layer(size, cs, layer) != fid):
        print("p2p_ref: fetch: the manifest does not give the id", file=sys.stderr)
        return 1
    out = sys.stdout.buffer
    for first in range(0, count, 32):
        batch = range(first, min(first + 32, count))
        s.sendall(b"".join(frame([6, 100 + i, fid, i, cs]) for i in batch))
        for i in batch:
            a = recv_frame(s)
            if a[0] != 7 or a[1] != 100 + i or chunk_hash(a[2], cs) != layer[i]:
                print("p2p_ref: fetch: chunk %d: bad answer %r" % (i, a[:2]), file=sys.stderr)
                return 1
            out.write(a[2])
    s.close()
    return 0


def stall(addr, fid, cs, n, gofile, count=None):
    host, port = addr.rsplit(":", 1)
    raw = socket.socket()
    # A small window: the server's chunks wait in its own buffers, not in ours.
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    raw.settimeout(30)
    raw.connect((host, int(port)))
    s = tls_context(False).wrap_socket(raw) if tls_on() else raw
    s.sendall(frame([0, 1, 0, "stall", 0]))
    recv_frame(s)
    s.sendall(b"".join(frame([6, i + 1, fid, i % count if count else i, cs])
                       for i in range(n)))
    print("asked", flush=True)
    deadline = time.time() + 30
    while not os.path.exists(gofile) and time.time() < deadline:
        time.sleep(0.05)
    chunks = errors = busy = 0
    for i in range(n):
        try:
            a = recv_frame(s)
        except (OSError, EOFError, ssl.SSLError) as e:
            print("p2p_ref: stall: connection ended after %d answers: %s" % (i, e),
                  file=sys.stderr)
            return 1
        if a[0] == 7 and len(a[2]) == cs:
            chunks += 1
        elif a[0] == 1:
            errors += 1
            busy += a[2] == 4
        else:
            print("p2p_ref: stall: answer %d: unexpected %r (%d bytes)" %
                  (i, a[:2], len(a[2]) if a[0] == 7 else -1), file=sys.stderr)
            return 1
    print("answers %d CHUNK, %d ERROR" % (chunks, errors))
    print("busy %d" % busy)
    return 0


TREE_PREFIX = b"mini-p2p-tree-v1"


def tree_entries(top):
    """The entries of the tree at top, sorted by path bytes: [path, size, mode, id] for each
    regular file, [path] for each directory with nothing beneath it. Links are skipped."""
    out = []

    def walk(rel):
        d = os.path.join(os.fsencode(top), rel) if rel else os.fsencode(top)
        names = sorted(os.listdir(os.fsencode(d)))
        kept = 0
        for n in names:
            r = rel + b"/" + n if rel else n
            st = os.lstat(os.path.join(os.fsencode(top), r))
            if stat_mod.S_ISLNK(st.st_mode):
                continue
            if stat_mod.S_ISDIR(st.st_mode):
                if not walk(r):
                    out.append([r])
                kept += 1
            elif stat_mod.S_ISREG(st.st_mode):
                out.append([r, st.st_size, st.st_mode & 0o777,
                            file_id(os.path.join(os.fsencode(top), r))])
                kept += 1
        return kept

    walk(b"")
    out.sort(key=lambda e: e[0])
    return out


def tree_id(encoding):
    return H(TREE_PREFIX + encoding)


def tree_check(m):
    """The entries of a tree manifest map, after checking its id and every rule of section 10."""
    if not isinstance(m, dict) or m.get("v") != 1 or not isinstance(m.get("tree"), bytes):
        raise Bad("not a tree manifest")
    raw = m["tree"]
    if tree_id(raw) != m.get("id"):
        raise Bad("tree does not hash to id")
    entries, end = dec(raw)
    if end != len(raw) or enc(entries) != raw or not isinstance(entries, list):
        raise Bad("tree not canonical")
    paths = set()
    last = None
    for e in entries:
        p = e[0]
        if not isinstance(p, bytes) or (last is not None and p <= last):
            raise Bad("tree not sorted")
        last = p
        parts = p.split(b"/")
        if (len(p) > 4095 or len(parts) > 64 or b"\0" in p or
                any(c in (b"", b".", b"..") or len(c) > 255 for c in parts)):
            raise Bad("bad path %r" % p)
        if len(e) == 4 and (e[2] > 0o777 or len(e[3]) != 32):
            raise Bad("bad file entry")
        if len(e) not in (1, 4):
            raise Bad("bad entry")
        paths.add(p)
    for e in entries:
        parts = e[0].split(b"/")
        for i in range(1, len(parts)):
            if b"/".join(parts[:i]) in paths:
                raise Bad("%r lies beneath another entry" % e[0])
    return entries


def files_answer(files, ids, mode):
    """The FILES entries a treepeer in a files- mode answers ids with."""
    out = []
    for i in ids[:3] if mode == "files-short" else ids:
        if i not in files or files[i][2] > BLOCK:
            out.append(None)
            continue
        with open(files[i][1], "rb") as f:
            data = f.read()
        if mode == "files-wrong" and data:
            data = data[:-1] + bytes([data[-1] ^ 1])
        elif mode == "files-size":
            data += b"x"
        out.append(data)
    if mode == "files-count":
        out.append(out[0] if out else None)
    return out


def serve_tree(top, mode):
    """A fake peer of version 1 (caps 0) serving the tree of top and each of its files."""
    cs = BLOCK
    entries = tree_entries(top)
    files = {}
    for e in entries:
        if len(e) == 4:
            path = os.path.join(os.fsencode(top), e[0])
            size, leaves = leaves_of(path)
            layer = chunk_layer(leaves, cs)
            files[e[3]] = ({"v": 1, "id": e[3], "name": os.path.basename(e[0]).decode(
                "utf-8", "surrogateescape"), "size": size, "chunk_size": cs,
                "chunks": b"".join(layer)}, path, size)
    forged = [list(e) for e in entries]
    first = next(e for e in entries if len(e) == 4)
    if mode == "dotdot":
        forged.append([b"../escaped"] + first[1:])
    elif mode == "absolute":
        forged.append([b"/tmp/escaped"] + first[1:])
    forged.sort(key=lambda e: e[0])
    raw = enc(forged)
    if mode == "many":
        raw = b"\xdd" + struct.pack(">I", 1 << 20) + enc(first) * 4
    tid = tree_id(raw)
    wire = {"v": 1, "id": tid, "name": "forged", "tree": raw}
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(64)
    port = lsock.getsockname()[1]
    sys.stdout.write("127.0.0.1:%d\n%s\n" % (port, tid.hex()))
    sys.stdout.flush()
    use_tls = tls_on()
    if use_tls:
        tls_context(True)

    def handle(conn):
        try:
            if use_tls:
                conn.settimeout(30)
                conn = tls_context(True).wrap_socket(conn, server_side=True)
                conn.settimeout(None)
            caps = 64 if mode.startswith("files-") else 0
            conn.sendall(frame([0, 1, caps, "fake-tree-" + mode, port]))
            first_msg = recv_frame(conn)
            if not isinstance(first_msg, list) or first_msg[:1] != [0]:
                return
            while True:
                msg = recv_frame(conn)
                t, rid = msg[0], msg[1]
                if t == 4 and msg[2] == tid:
                    conn.sendall(frame([5, rid, wire]))
                elif t == 4 and msg[2] in files:
                    conn.sendall(frame([5, rid, files[msg[2]][0]]))
                elif t == 6 and msg[2] in files and msg[4] == cs:
                    _, path, size = files[msg[2]]
                    if not 0 <= msg[3] < max(1, -(-size // cs)):
                        conn.sendall(frame([1, rid, 1, "not found"]))
                        continue
                    with open(path, "rb") as f:
                        f.seek(msg[3] * cs)
                        conn.sendall(frame([7, rid, f.read(cs)]))
                elif t == 20 and not caps:
                    open("saw-get-files", "w").close()
                    conn.sendall(frame([1, rid, 2, "bad request"]))
                elif t == 20 and mode == "files-silent":
                    # Pushed, never an answer: the connection never goes idle.
                    while True:
                        time.sleep(0.5)
                        conn.sendall(frame([14, 0, first[3], 0]))
                elif t == 20:
                    conn.sendall(frame([21, rid, files_answer(files, msg[2], mode)]))
                elif t == 8:
                    conn.sendall(frame([9, rid, []]))
                elif t in (4, 6):
                    conn.sendall(frame([1, rid, 1, "not found"]))
                else:
                    conn.sendall(frame([1, rid, 2, "bad request"]))
        except (EOFError, OSError, Bad, IndexError, TypeError):
            pass
        finally:
            conn.close()

    while True:
        conn, _ = lsock.accept()
        threading.Thread(target=handle, args=(conn,), daemon=True).start()


def main(argv):
    if len(argv) < 2:
        sys.stderr.write(__doc__)
        return 2
    cmd, args = argv[1], argv[2:]
    if cmd == "id":
        for p in args:
            print(file_id(p).hex())
    elif cmd == "tree":
        print(tree_id(enc(tree_entries(args[0]))).hex())
    elif cmd == "treemanifest":
        data = sys.stdin.buffer.read() if args[0] == "-" else open(args[0], "rb").read()
        try:
            m, end = dec(data)
            entries = tree_check(m)
        except Bad as e:
            print("p2p_ref: treemanifest: %s" % e, file=sys.stderr)
            return 1
        print(json.dumps({"id": m["id"].hex(), "name": m.get("name"), "keys": list(m.keys()),
                          "canonical": enc(m) == data[:end],
                          "entries": [[e[0].decode("utf-8", "surrogateescape")] +
                                      [x.hex() if isinstance(x, bytes) else x for x in e[1:]]
                                      for e in entries]}, ensure_ascii=False))
    elif cmd == "treepeer":
        serve_tree(args[0], args[1])
    elif cmd == "chunks":
        size, leaves = leaves_of(args[0])
        for h in chunk_layer(leaves, int(args[1])):
            print(h.hex())
    elif cmd == "load":
        return load(args[0], args[1], int(args[2]), int(args[3]))
    elif cmd == "bytes":
        n = int(args[0])
        pattern = bytes(i % 251 for i in range(251))
        out = sys.stdout.buffer
        full, rest = divmod(n, 251)
        for _ in range(full):
            out.write(pattern)
        out.write(pattern[:rest])
    elif cmd == "manifests":
        data = sys.stdin.buffer.read() if args[0] == "-" else open(args[0], "rb").read()
        try:
            for obj, raw in read_stream(data):
                print(json.dumps(describe(obj, raw), ensure_ascii=False))
        except Bad as e:
            print("p2p_ref: manifests: %s" % e, file=sys.stderr)
            return 1
    elif cmd == "tamper":
        data = open(args[0], "rb").read()
        m, _ = dec(data)
        if args[1] == "chunks":
            ch = bytearray(m["chunks"])
            ch[0] ^= 1
            m["chunks"] = bytes(ch)
        elif args[1] == "id":
            i = bytearray(m["id"])
            i[0] ^= 1
            m["id"] = bytes(i)
        elif args[1] == "nopath":
            m.pop("path", None)
        elif args[1] == "root":
            size, cs, ch = m["size"], m["chunk_size"], m.pop("chunks")
            per = cs // BLOCK
            width = width_of(max(1, -(-size // BLOCK))) // per
            layer = [ch[i:i + 32] for i in range(0, len(ch), 32)]
            path = m.pop("path", None)
            m["root"] = reduce_layer(layer, width, zero_node(per.bit_length() - 1))
            if path is not None:
                m["path"] = path
        else:
            return 2
        sys.stdout.buffer.write(enc(m))
    elif cmd == "identity":
        if not tls_on():
            print("p2p_ref: identity: TLS is off (P2P_REF_TLS=0 or MINI_P2P_NO_TLS=1)",
                  file=sys.stderr)
            return 2
        s = open_conn(args[0])
        ident = peer_identity(s)
        s.close()
        if ident is None:
            print("p2p_ref: identity: the peer showed no certificate", file=sys.stderr)
            return 1
        print(ident.hex())
    elif cmd == "hello":
        s, hello = connect(args[0])
        s.close()
        # A bin (a HELLO's auth, or a bin in its options) as hex: JSON has no bytes.
        print(json.dumps(hello, ensure_ascii=False,
                         default=lambda o: o.hex() if isinstance(o, bytes) else repr(o)))
    elif cmd == "list":
        s, _ = connect(args[0])
        s.sendall(frame([2, 42]))
        reply = recv_frame(s)
        s.close()
        if reply[0] != 3 or reply[1] != 42:
            print("p2p_ref: list: unexpected reply %r" % (reply[:2],), file=sys.stderr)
            return 1
        for fid, size, name in reply[2]:
            print("%s\t%d\t%s" % (fid.hex(), size, name))
    elif cmd == "peers":
        s, _ = connect(args[0])
        s.sendall(frame([8, 43]))
        reply = recv_frame(s)
        s.close()
        if reply[0] != 9 or reply[1] != 43:
            print("p2p_ref: peers: unexpected reply %r" % (reply[:2],), file=sys.stderr)
            return 1
        for host, port in reply[2]:
            print(("[%s]:%d" if ":" in host else "%s:%d") % (host, port))
    elif cmd == "junk":
        # Under TLS the frame header goes inside the session: the frame parser is the target.
        s = open_conn(args[0])
        s.sendall(b"\xff\xff\xff\xff" + b"\x00" * 64)
        try:
            while s.recv(65536):
                pass
        except (ConnectionResetError, ssl.SSLError):
            pass
        except socket.timeout:
            print("p2p_ref: junk: connection still open after 10 s", file=sys.stderr)
            return 1
        print("closed")
    elif cmd == "peer":
        serve_peer(args[0], args[1])
    elif cmd == "stall":
        return stall(args[0], bytes.fromhex(args[1]), int(args[2]), int(args[3]), args[4],
                     int(args[5]) if len(args) > 5 else None)
    elif cmd == "swarm":
        return swarm(args[0], bytes.fromhex(args[1]))
    elif cmd == "fetch":
        return fetch(args[0], bytes.fromhex(args[1]))
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
