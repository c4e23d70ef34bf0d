#!/usr/bin/env python3
"""Both ends of a plain TCP stream, to check p2p-faultproxy on its own (tests/faults.bats).

  stream.py serve FILE            listen on 127.0.0.1, print HOST:PORT; send FILE to every
                                  client, then hold the connection until the client closes
  stream.py read ADDR OUT SECS    connect, write what arrives to OUT until the stream ends or
                                  nothing arrives for SECS; print one line
                                  "END BYTES FIRST_MS TOTAL_MS", END being eof, reset or
                                  silent, FIRST_MS the time to the first byte (-1: none)

Every wait is bounded: the server gives up on a client after 60 s.
"""
import socket
import sys
import threading
import time


def serve(path):
    with open(path, "rb") as f:
        data = f.read()
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(16)
    print("127.0.0.1:%d" % ls.getsockname()[1], flush=True)

    def one(c):
        try:
            c.settimeout(60)
            c.sendall(data)
            while c.recv(65536):
                pass
        except OSError:
            pass
        finally:
            c.close()

    while True:
        c, _ = ls.accept()
        threading.Thread(target=one, args=(c,), daemon=True).start()


def read(addr, out, secs):
    host, port = addr.rsplit(":", 1)
    t0 = time.monotonic()
    first = -1
    got = bytearray()
    end = "eof"
    s = socket.socket()
    s.settimeout(10)
    try:
        s.connect((host, int(port)))
    except ConnectionResetError:
        # A reset right after the first bytes may be reported by connect(), the bytes
        # still queued: read them all the same.
        end = "reset"
    try:
        s.settimeout(float(secs))
        while True:
            b = s.recv(65536)
            if not b:
                break
            if first < 0:
                first = int((time.monotonic() - t0) * 1000)
            got += b
    except ConnectionResetError:
        end = "reset"
    except socket.timeout:
        end = "silent"
    s.close()
    with open(out, "wb") as f:
        f.write(got)
    print("%s %d %d %d" % (end, len(got), first, int((time.monotonic() - t0) * 1000)))


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"] and len(sys.argv) == 3:
        serve(sys.argv[2])
    elif sys.argv[1:2] == ["read"] and len(sys.argv) == 5:
        read(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        sys.exit(__doc__)
