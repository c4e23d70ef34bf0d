#!/usr/bin/env python3
"""Independent reference for the bats suites: docs/PROTOCOL.md written again in Python.

The suites check the C tools against this, not against themselves: a content id or a manifest
that agrees with a second implementation of the spec cannot be wrong in the same way twice.
Standard library only (no msgpack module), so it runs wherever python3 does.

  p2p_ref.py id FILE...              content id of each FILE, one per line
  p2p_ref.py chunks FILE CS          the chunk layer of FILE at chunk size CS, one hex hash a line
  p2p_ref.py bytes N                 byte(N) of the test vectors (byte i = i mod 251) on stdout
  p2p_ref.py manifests FILE|-        decode a manifest stream: one JSON object per manifest
  p2p_ref.py tamper FILE WHAT        rewrite the first manifest of FILE: WHAT is chunks (flip a
                                     bit of chunk 0's hash), id (flip a bit of the id) or nopath
  p2p_ref.py hello HOST:PORT         connect, send HELLO, print the peer's HELLO as JSON
  p2p_ref.py list HOST:PORT          LIST over the wire, print "ID<TAB>SIZE<TAB>NAME" lines
  p2p_ref.py junk HOST:PORT          send a frame header of 4 GiB before HELLO; print "closed"
                                     when the peer closes the connection (exit 1 after 10 s)
  p2p_ref.py peer MANIFEST MODE      a fake peer on 127.0.0.1, port from the kernel, prints
                                     HOST:PORT then serves MANIFEST's file. MODE: honest,
                                     corrupt (every chunk has a flipped byte), badmanifest (the
                                     chunk layer does not match the id), silent (accepts, says
                                     nothing), notfound (knows no file), slow (honest,
                                     10 ms per chunk: a good peer that cannot finish the
                                     whole file before a bad one is asked for some)
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
"""

import hashlib
import json
import os
import socket
import struct
import sys
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
    host, port = addr.rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=10)
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

    def handle(conn):
        try:
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
                        time.sleep(0.01)
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
    host, port = addr.rsplit(":", 1)
    socks = []
    for _ in range(n):
        s = socket.create_connection((host, int(port)), timeout=60)
        socks.append(s)
    # Every connection is open before any is served: N at once.
    wanted = []
    for s in socks:
        idx = [random.randrange(nchunks) for _ in range(k)]
        wanted.append(idx)
        s.sendall(frame([0, 1, 0, "load", 0]) +
                  b"".join(frame([6, j + 1, fid, i, cs]) for j, i in enumerate(idx)))
    bad = 0
    for s, idx in zip(socks, wanted):
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


def main(argv):
    if len(argv) < 2:
        sys.stderr.write(__doc__)
        return 2
    cmd, args = argv[1], argv[2:]
    if cmd == "id":
        for p in args:
            print(file_id(p).hex())
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
        else:
            return 2
        sys.stdout.buffer.write(enc(m))
    elif cmd == "hello":
        s, hello = connect(args[0])
        s.close()
        print(json.dumps(hello, ensure_ascii=False))
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
    elif cmd == "junk":
        host, port = args[0].rsplit(":", 1)
        s = socket.create_connection((host, int(port)), timeout=10)
        s.sendall(b"\xff\xff\xff\xff" + b"\x00" * 64)
        try:
            while s.recv(65536):
                pass
        except ConnectionResetError:
            pass
        except socket.timeout:
            print("p2p_ref: junk: connection still open after 10 s", file=sys.stderr)
            return 1
        print("closed")
    elif cmd == "peer":
        serve_peer(args[0], args[1])
    elif cmd == "swarm":
        return swarm(args[0], bytes.fromhex(args[1]))
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
