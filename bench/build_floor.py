#!/usr/bin/python3
"""bench/build_floor.py SOCKET - a trivial Docker API endpoint on a unix socket for bench/build.sh.

It answers /_ping, /version and POST /build (reads the whole context tar, answers a fixed image ID at
once), so `docker build` against it measures the docker CLI's own floor: its start, the context walk
and tar, and sending it. A daemon's share of a cached rebuild is its time minus this floor."""
import os, socket, sys, threading

ID = "sha256:" + "ab" * 32

def handle(c):
    f = c.makefile("rb")
    try:
        while True:
            line = f.readline()
            if not line:
                return
            method, path, _ = line.decode().split(" ", 2)
            hdrs = {}
            while True:
                h = f.readline().decode()
                if h in ("\r\n", "\n", ""):
                    break
                k, v = h.split(":", 1)
                hdrs[k.strip().lower()] = v.strip()
            if hdrs.get("transfer-encoding", "").lower() == "chunked":
                while True:
                    n = int(f.readline().strip().split(b";")[0], 16)
                    if n == 0:
                        f.readline()
                        break
                    left = n
                    while left:
                        left -= len(f.read(min(left, 1 << 20)))
                    f.readline()
            elif "content-length" in hdrs:
                left = int(hdrs["content-length"])
                while left:
                    left -= len(f.read(min(left, 1 << 20)))
            common = "Api-Version: 1.45\r\nOstype: linux\r\nDocker-Experimental: false\r\n"
            if "/_ping" in path:
                body = b"OK"
                ctype = "text/plain"
            elif "/version" in path:
                body = b'{"Version":"25.0.0","ApiVersion":"1.45","MinAPIVersion":"1.24","Os":"linux","Arch":"amd64"}'
                ctype = "application/json"
            elif "/build" in path:
                body = ('{"aux":{"ID":"%s"}}\n{"stream":"%s\\n"}\n' % (ID, ID)).encode()
                ctype = "application/json"
            else:
                body = b'{"message":"not found"}'
                c.sendall(("HTTP/1.1 404 Not Found\r\n%sContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % (common, len(body))).encode() + body)
                continue
            if method == "HEAD":
                body = b""
            c.sendall(("HTTP/1.1 200 OK\r\n%sContent-Type: %s\r\nContent-Length: %d\r\n\r\n" % (common, ctype, len(body))).encode() + body)
    except Exception:
        pass
    finally:
        c.close()

path = sys.argv[1]
try:
    os.unlink(path)
except FileNotFoundError:
    pass
s = socket.socket(socket.AF_UNIX)
s.bind(path)
s.listen(64)
while True:
    c, _ = s.accept()
    threading.Thread(target=handle, args=(c,), daemon=True).start()
