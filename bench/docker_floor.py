#!/usr/bin/python3
"""docker_floor.py SOCKET - the docker CLI's floor for `docker run --rm busybox true` and `docker version`.

A unix-socket server that answers, at once and from canned replies, every request those two
commands send (recorded against `berth daemon`: HEAD /_ping, POST /containers/create, the attach
upgrade, POST .../wait?condition=removed, POST .../start, GET /version). What a docker CLI run
against it takes is the CLI's own time: its process start, its requests' round trips over a unix
socket and its exit, with no daemon work at all. bench/engine.sh prints it beside both daemons.
Runs until killed. Logs nothing.
"""
import os
import socket
import sys
import threading

CID = "f" * 64
COMMON = b"Api-Version: 1.41\r\nDocker-Experimental: false\r\nOstype: linux\r\nServer: floor\r\n"
VERSION = (b'{"Platform":{"Name":"floor"},"Components":[],"Version":"20.10.24","ApiVersion":"1.41",'
           b'"MinAPIVersion":"1.12","GitCommit":"0","GoVersion":"go1.19","Os":"linux","Arch":"amd64",'
           b'"KernelVersion":"6","BuildTime":"2026-01-01T00:00:00.000000000+00:00"}\n')


def reply(status, body=b"", ctype=b"application/json", extra=b""):
    head = b"HTTP/1.1 " + status + b"\r\n" + COMMON + extra
    if body or not status.startswith(b"204"):
        head += b"Content-Type: " + ctype + b"\r\n"
    return head + b"Content-Length: %d\r\n\r\n" % len(body) + body


def read_request(conn, buf):
    """(request line, body, rest of buf) or None at EOF."""
    while b"\r\n\r\n" not in buf:
        d = conn.recv(65536)
        if not d:
            return None
        buf += d
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    n = 0
    for h in lines[1:]:
        k, _, v = h.partition(":")
        if k.strip().lower() == "content-length":
            n = int(v.strip())
    while len(rest) < n:
        d = conn.recv(65536)
        if not d:
            return None
        rest += d
    return lines[0], rest[:n], rest[n:]


def serve(conn):
    buf = b""
    try:
        while True:
            r = read_request(conn, buf)
            if r is None:
                return
            line, _, buf = r
            method, target, _ = line.split(" ", 2)
            path = target.split("?", 1)[0]
            if path.endswith("/_ping"):
                conn.sendall(reply(b"200 OK", b"OK" if method == "GET" else b"", b"text/plain; charset=utf-8"))
            elif path.endswith("/version"):
                conn.sendall(reply(b"200 OK", VERSION))
            elif path.endswith("/containers/create"):
                conn.sendall(reply(b"201 Created", b'{"Id":"%s","Warnings":[]}\n' % CID.encode()))
            elif path.endswith("/attach"):
                # the stream of a container that printed nothing: upgraded, then its end
                conn.sendall(b"HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\n"
                             b"Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
                conn.shutdown(socket.SHUT_WR)
                while conn.recv(65536):
                    pass
                return
            elif path.endswith("/wait"):
                body = b'{"Error":null,"StatusCode":0}\n'
                conn.sendall(b"HTTP/1.1 200 OK\r\n" + COMMON + b"Content-Type: application/json\r\n"
                             b"Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))
            elif path.endswith("/start"):
                conn.sendall(reply(b"204 No Content"))
            else:
                conn.sendall(reply(b"404 Not Found", b'{"message":"page not found"}\n'))
    except OSError:
        pass
    finally:
        conn.close()


def main():
    path = sys.argv[1]
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.listen(128)
    while True:
        conn, _ = s.accept()
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    main()
