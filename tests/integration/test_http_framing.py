"""HTTP framing in every server of ours (issue 18, item 6): a percent-encoded NUL
in a path or query, two different Content-Length headers (RFC 9112 6.3) and
Content-Length together with Transfer-Encoding are a 400 before any routing,
in the registry and in the daemon (both on http/server.c).
Requests are written on raw sockets: clients normalise these away.

Half-closed connections: a client that ends its side (shutdown(SHUT_WR)) is
closed at once, as Go's net/http does, not at the header or idle timeout: with
nothing answered when its head was incomplete or its body cut short (an aborted
request), after the answer when its request was complete.
"""
import hashlib
import json
import os
import socket
import time
import uuid

import pytest

from engine_daemon import Daemon
from test_registry_support import free_port, registry  # noqa: F401  (session fixture)


# Far beyond the deadline of the half-close tests (20 s): a close before it is not the header timeout.
HEADER_TIMEOUT = 120


@pytest.fixture(scope="module")
def daemon(berth_bin):
    d = Daemon(berth_bin)
    d.tcp_port = free_port()
    d.extra_args = ["--http-header-timeout", str(HEADER_TIMEOUT), "--http-idle-timeout", str(HEADER_TIMEOUT),
                    "-H", "unix://" + d.sock, "-H", f"tcp://127.0.0.1:{d.tcp_port}", "--allow-insecure-tcp"]
    try:
        yield d.start()
    finally:
        d.cleanup()


def exchange(sock, data):
    sock.settimeout(20)
    sock.sendall(data)
    out = b""
    while b"\r\n\r\n" not in out:
        chunk = sock.recv(65536)
        if not chunk:
            break
        out += chunk
    head, _, rest = out.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
    n = int(headers.get("content-length", "0"))
    while len(rest) < n:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    return int(lines[0].split()[1]), headers, rest


def reg_req(registry, data):  # noqa: F811
    with socket.create_connection(("127.0.0.1", registry.port)) as s:
        return exchange(s, data)


def api_req(daemon, data):
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(daemon.sock)
        return exchange(s, data)


def test_registry_nul_in_manifest_path_is_400(registry):  # noqa: F811
    digest, _ = registry.push_image("framing/nul", "v1")
    status, _, _ = reg_req(registry, b"GET /v2/framing/nul/manifests/v1 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 200
    status, _, body = reg_req(registry, b"GET /v2/framing/nul/manifests/v1%00.json HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 400, body


def test_registry_nul_in_pushed_tag_creates_nothing(registry):  # noqa: F811
    _, doc = registry.push_image("framing/put", "v1")
    body = json.dumps(doc).encode()
    req = (b"PUT /v2/framing/put/manifests/v9%00evil HTTP/1.1\r\nHost: x\r\n"
           b"Content-Type: application/vnd.oci.image.manifest.v1+json\r\n"
           b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    status, _, out = reg_req(registry, req)
    assert status == 400, out
    tags = registry.req("GET", "/v2/framing/put/tags/list").json()["tags"]
    assert tags == ["v1"]


def test_registry_nul_in_query_is_400(registry):  # noqa: F811
    status, _, _ = reg_req(registry, b"GET /v2/_catalog?n=1%00 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 400


@pytest.mark.parametrize("headers", [
    b"Content-Length: 2\r\nContent-Length: 3\r\n",
    b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n",
], ids=["two-lengths", "length-and-chunked"])
def test_registry_ambiguous_framing_is_400(registry, headers):  # noqa: F811
    req = (b"POST /v2/framing/cl/blobs/uploads/ HTTP/1.1\r\nHost: x\r\n" + headers +
           b"\r\n3\r\nabc\r\n0\r\n\r\n")
    status, hdrs, body = reg_req(registry, req)
    assert status == 400, body


def test_daemon_nul_in_path_and_query_is_400(daemon):
    status, _, _ = api_req(daemon, b"GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 200
    status, _, body = api_req(daemon, b"GET /_ping%00x HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 400, body
    status, _, body = api_req(daemon, b"GET /containers/json?all=1%00 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 400, body


@pytest.mark.parametrize("headers", [
    b"Content-Length: 2\r\nContent-Length: 3\r\n",
    b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n",
], ids=["two-lengths", "length-and-chunked"])
def test_daemon_ambiguous_framing_is_400_and_closes(daemon, headers):
    req = (b"POST /containers/create HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" + headers +
           b"\r\n2\r\n{}\r\n0\r\n\r\n")
    status, hdrs, body = api_req(daemon, req)
    assert status == 400, body
    assert hdrs.get("connection", "").lower() == "close"


def test_daemon_equal_duplicate_lengths_are_fine(daemon):
    status, _, body = api_req(daemon, b"POST /containers/prune HTTP/1.1\r\nHost: x\r\n"
                                      b"Content-Length: 0\r\nContent-Length: 0\r\n\r\n")
    assert status == 200, body


def test_curl_sees_the_registry_refusal(registry):  # noqa: F811
    import subprocess
    p = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                        f"http://{registry.host}/v2/framing/nul/manifests/v1%00.json"],
                       capture_output=True, text=True, timeout=30)
    assert p.stdout == "400"


# ---- half-closed connections ----

HALF_CLOSE_DEADLINE = 20  # the registry's timeouts are 60 s, the daemon's above 120 s


def half_close(sock, data):
    """Send data, end our side, read until the server closes (or the deadline passes).
    Returns (closed, what was answered). On TCP the end rides on the last data segment
    (TCP_CORK: the kernel tacks the FIN onto the unsent data), so that the server reads
    both at once, as from a client whose request and end arrive together."""
    if sock.family == socket.AF_INET:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)
    sock.sendall(data)
    sock.shutdown(socket.SHUT_WR)
    end = time.monotonic() + HALF_CLOSE_DEADLINE
    out = b""
    while time.monotonic() < end:
        sock.settimeout(max(0.1, end - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            break
        except ConnectionResetError:
            return True, out
        if not chunk:
            return True, out
        out += chunk
    return False, out


def api_half_close(daemon, data, tcp=False):
    if tcp:
        with socket.create_connection(("127.0.0.1", daemon.tcp_port)) as s:
            return half_close(s, data)
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(daemon.sock)
        return half_close(s, data)


def reg_half_close(registry, data):  # noqa: F811
    with socket.create_connection(("127.0.0.1", registry.port)) as s:
        return half_close(s, data)


INCOMPLETE_HEADS = [b"GET /_ping HTTP/1.1\r\nHost: x\r\n", b"GET /_pi", b"GET /_ping HTTP/1.1\r\n"]


@pytest.mark.parametrize("tcp", [False, True], ids=["unix", "tcp"])
@pytest.mark.parametrize("head", INCOMPLETE_HEADS, ids=["no-final-crlf", "in-request-line", "no-headers"])
def test_daemon_closes_a_half_closed_incomplete_head(daemon, head, tcp):
    closed, out = api_half_close(daemon, head, tcp)
    assert closed, "a client that ended its side in the middle of its head was held open"
    assert out == b""


@pytest.mark.parametrize("req", [b"GET /_ping HTTP/1.0\r\n\r\n", b"GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n"],
                         ids=["http1.0", "http1.1"])
@pytest.mark.parametrize("tcp", [False, True], ids=["unix", "tcp"])
def test_daemon_answers_a_complete_request_then_closes(daemon, req, tcp):
    closed, out = api_half_close(daemon, req, tcp)
    assert out.startswith(b"HTTP/1.1 200 "), out
    assert out.endswith(b"OK")
    assert closed, "a keep-alive connection whose client ended its side stayed open after the answer"


@pytest.mark.parametrize("tcp", [False, True], ids=["unix", "tcp"])
def test_daemon_half_closed_body_is_an_aborted_request(daemon, tcp):
    body = json.dumps({"Name": "halfclosed-vol"}).encode()
    closed, out = api_half_close(daemon, b"POST /volumes/create HTTP/1.1\r\nHost: x\r\n"
                                         b"Content-Type: application/json\r\nContent-Length: 200\r\n\r\n" + body,
                                 tcp)
    assert closed and out == b""
    assert daemon.json("GET", "/volumes/halfclosed-vol")[0] == 404


@pytest.mark.parametrize("head", [h.replace(b"/_ping", b"/v2/") for h in INCOMPLETE_HEADS],
                         ids=["no-final-crlf", "in-request-line", "no-headers"])
def test_registry_closes_a_half_closed_incomplete_head(registry, head):  # noqa: F811
    closed, out = reg_half_close(registry, head)
    assert closed, "a client that ended its side in the middle of its head was held open"
    assert out == b""


@pytest.mark.parametrize("req", [b"GET /v2/ HTTP/1.0\r\n\r\n", b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n",
                                 b"GET /v2/_catalog HTTP/1.1\r\nHost: x\r\n\r\n"],
                         ids=["http1.0", "http1.1", "catalog"])
def test_registry_answers_a_complete_request_then_closes(registry, req):  # noqa: F811
    for _ in range(5):  # the end of the request arrives with it or after it: either way
        closed, out = reg_half_close(registry, req)
        assert out.startswith(b"HTTP/1.1 200 "), out
        assert closed, "a keep-alive connection whose client ended its side stayed open after the answer"


def monolithic_put(registry, repo, data, length):  # noqa: F811
    loc = registry.req("POST", f"/v2/{repo}/blobs/uploads/").headers["Location"]
    d = "sha256:" + hashlib.sha256(data).hexdigest()
    sep = "&" if "?" in loc else "?"
    return d, (f"PUT {loc}{sep}digest={d} HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
               f"Content-Length: {length}\r\n\r\n").encode()


def test_registry_upload_cut_short_by_a_half_close_commits_nothing(registry):  # noqa: F811
    repo = "framing/halfclose-" + uuid.uuid4().hex[:8]
    data = b"x" * 100000
    d, head = monolithic_put(registry, repo, data, len(data))
    closed, out = reg_half_close(registry, head + data[:60000])
    assert closed, "an upload whose client ended its side in the middle was held open"
    assert not out.startswith(b"HTTP/1.1 201"), out
    assert registry.req("HEAD", f"/v2/{repo}/blobs/{d}").status_code == 404
    # a chunked body without its last chunk likewise
    loc = registry.req("POST", f"/v2/{repo}/blobs/uploads/").headers["Location"]
    sep = "&" if "?" in loc else "?"
    closed, out = reg_half_close(registry, (f"PUT {loc}{sep}digest={d} HTTP/1.1\r\nHost: x\r\n"
                                            "Transfer-Encoding: chunked\r\n\r\n").encode() + b"%x\r\n" % 1000 +
                                 data[:1000] + b"\r\n")
    assert closed and not out.startswith(b"HTTP/1.1 201"), out
    assert registry.req("HEAD", f"/v2/{repo}/blobs/{d}").status_code == 404


@pytest.mark.parametrize("size", [3, 100000])
def test_registry_complete_upload_then_half_close_is_committed(registry, size):  # noqa: F811
    repo = "framing/halfclose-ok-" + uuid.uuid4().hex[:8]
    data = bytes(range(256)) * (size // 256) + b"abc"[: size % 256]
    d, head = monolithic_put(registry, repo, data, len(data))
    closed, out = reg_half_close(registry, head + data)
    assert out.startswith(b"HTTP/1.1 201 "), out
    assert closed
    assert registry.req("HEAD", f"/v2/{repo}/blobs/{d}").status_code == 200


# ---- hostile request heads (RFC 9110/9112; what Go's net/http, dockerd's and Distribution's, does) ----

def responses(raw, head_requests=0):
    """Split what a server answered on one connection into [(status, headers, body)].
    The first head_requests answers are to HEAD requests (no body whatever their Content-Length)."""
    out = []
    while raw:
        head, sep, rest = raw.partition(b"\r\n\r\n")
        assert sep, f"truncated answer: {raw[:200]!r}"
        lines = head.decode("latin-1").split("\r\n")
        assert lines[0].startswith("HTTP/1.1 "), lines[0]
        status = int(lines[0].split()[1])
        hdrs = {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
        n = 0 if (len(out) < head_requests or status < 200) else int(hdrs.get("content-length", "0"))
        out.append((status, hdrs, rest[:n]))
        raw = rest[n:]
    return out


def both(daemon, registry, data, head_requests=0):  # noqa: F811
    """The answers of the daemon (path /_ping) and the registry (path /v2/) to data with {P} replaced."""
    got = {}
    for name, fn, target, p in (("daemon", api_half_close, daemon, b"/_ping"),
                                ("registry", reg_half_close, registry, b"/v2/")):
        closed, out = fn(target, data.replace(b"{P}", p))
        assert closed, f"{name}: connection left open"
        got[name] = responses(out, head_requests)
    return got


SMUGGLED = b"GET {P} HTTP/1.1\r\nHost: x\r\n\r\n"


def post(fields, body=b""):
    return b"POST {P} HTTP/1.1\r\nHost: x\r\n" + fields + b"\r\n" + body


CHUNKED_BODY = b"5\r\nhello\r\n0\r\n\r\n"


@pytest.mark.parametrize("req,status", [
    (post(b"Transfer-Encoding: gzip, chunked\r\n", CHUNKED_BODY), 501),
    (post(b"Transfer-Encoding: chunked, gzip\r\n", CHUNKED_BODY), 400),
    (post(b"Transfer-Encoding: gzip\r\n", CHUNKED_BODY), 400),
    (post(b"Transfer-Encoding: identity\r\n", CHUNKED_BODY), 400),
    (post(b"Transfer-Encoding: xchunked\r\n", CHUNKED_BODY), 400),
    (post(b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", CHUNKED_BODY), 400),
    (b"POST {P} HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + CHUNKED_BODY, 400),
    (post(b"Transfer-Encoding : chunked\r\n", CHUNKED_BODY), 400),
    (post(b"Content-Length : 5\r\n", b"hello"), 400),
    (post(b"Content-Length\t: 5\r\n", b"hello"), 400),
    (post(b"X-A: a\r\nTransfer-Encoding:\r\n chunked\r\n", CHUNKED_BODY), 400),
    (post(b"X-A: a\r\nContent-Length: 5\r\n 0\r\n", b"hello"), 400),
    (b"POST {P} HTTP/1.1\r\n Content-Length: 5\r\nHost: x\r\n\r\nhello", 400),
    (post(b"X(A): b\r\nContent-Length: 5\r\n", b"hello"), 400),
    (post(b"X-A: a\x01b\r\nContent-Length: 5\r\n", b"hello"), 400),
    (post(b"X-A: a\x7fb\r\nContent-Length: 5\r\n", b"hello"), 400),
    (post(b"X-A: a\rContent-Length: 5\r\n", b"hello"), 400),
    (post(b"Host: y\r\nContent-Length: 5\r\n", b"hello"), 400),
    (b"POST {P} HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", 400),
    (b"POST {P}x y HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello", 400),
    (b"POST {P}x\x01 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello", 400),
    (post(b"Expect: bogus\r\nContent-Length: 5\r\n", b"hello"), 417),
], ids=["te-gzip-chunked", "te-chunked-not-last", "te-gzip", "te-identity", "te-xchunked", "te-twice",
        "te-in-http1.0", "te-space-before-colon", "cl-space-before-colon", "cl-tab-before-colon", "te-obs-fold",
        "cl-obs-fold", "first-line-folded", "bad-name", "ctl-in-value", "del-in-value", "bare-cr-in-value",
        "two-hosts", "no-host", "space-in-target", "ctl-in-target", "expect-bogus"])
def test_smuggling_shapes_are_refused_and_close(daemon, registry, req, status):  # noqa: F811
    """Refused before any routing, the connection closed: what followed the head (a body
    in doubt, then a request riding on it) is never read as a request."""
    for name, got in both(daemon, registry, req + SMUGGLED).items():
        assert [g[0] for g in got] == [status], (name, got)
        assert got[0][1].get("connection", "").lower() == "close", (name, got)


@pytest.mark.parametrize("req,statuses", [
    (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", [505]),
    (b"GET {P}\r\n", [400]),
    (b"GET {P} HTTP/1.1\r\nHost: x\r\nX-A: a\tb\r\nX-U: \xc3\xa9\r\n\r\n", [200]),
    (b"HEAD {P} HTTP/1.1\r\nHost: x\r\n\r\n" + SMUGGLED, [200, 200]),
    (b"GET {P} HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello" + SMUGGLED, [200, 200]),
    (b"GET {P} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n0\r\n\r\n" + SMUGGLED,
     [200, 200]),
    (b"GET {P} HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhello", [100, 200]),
    (b"GET {P}?" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", [200]),
    (b"GET {P} HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(10000)) + b"\r\n", [431]),
], ids=["h2-preface", "http0.9", "tab-and-utf8-values", "head-then-get", "pipelined-after-body",
        "pipelined-after-chunked-ext", "expect-continue", "long-target", "many-headers"])
def test_framing_edges_answer_like_go(daemon, registry, req, statuses):  # noqa: F811
    """Shapes libmicrohttpd already frames as Go does (kept so): each request answered in order,
    HEAD without a body, HTTP/2's preface 505, HTTP/0.9 400, absurd heads refused."""
    head_reqs = 1 if req.startswith(b"HEAD") else 0
    for name, got in both(daemon, registry, req, head_reqs).items():
        assert [g[0] for g in got] == statuses, (name, got)
        if head_reqs:
            assert got[0][2] == b"" and got[1][2], (name, got)


# ---- berth server (the cluster's ECS API, over TLS: http/tlsloop.c and its fast path) ----

@pytest.fixture(scope="module")
def cluster_server():
    import shutil
    import tempfile
    from test_cluster_server import Server
    d = tempfile.mkdtemp(prefix="berth-server-it-")
    s = Server(os.path.join(d, "root")).start()
    try:
        yield s
    finally:
        s.stop()
        shutil.rmtree(d, ignore_errors=True)


def tls_exchange(server, data, close_notify=False):
    """data on a TLS connection to berth server; what was answered until the server closed (20 s)."""
    import ssl
    host, port = server.endpoint.split("//")[1].rsplit(":", 1)
    ctx = ssl.create_default_context(cafile=server.ca)
    ctx.check_hostname = False
    with ctx.wrap_socket(socket.create_connection((host, int(port))), server_hostname="localhost") as s:
        s.sendall(data)
        if close_notify:  # TLS's end of the client's side; the answer may still come
            s.setblocking(False)
            try:
                s.unwrap()
            except (ssl.SSLWantReadError, ssl.SSLError):
                pass
            s.setblocking(True)
        out = b""
        end = time.monotonic() + HALF_CLOSE_DEADLINE
        while time.monotonic() < end:
            s.settimeout(max(0.1, end - time.monotonic()))
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                return False, out
            except (ConnectionResetError, ssl.SSLError):
                return True, out
            if not chunk:
                return True, out
            out += chunk
        return False, out


@pytest.mark.parametrize("req,status", [
    (post(b"Transfer-Encoding: gzip, chunked\r\n", CHUNKED_BODY), 501),
    (post(b"Content-Length : 5\r\n", b"hello"), 400),
    (post(b"X-A: a\r\nTransfer-Encoding:\r\n chunked\r\n", CHUNKED_BODY), 400),
    (post(b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", CHUNKED_BODY), 400),
    (b"POST {P} HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", 400),
], ids=["te-gzip-chunked", "cl-space-before-colon", "te-obs-fold", "cl-and-te", "no-host"])
def test_cluster_server_refuses_smuggling_shapes_and_closes(cluster_server, req, status):
    closed, out = tls_exchange(cluster_server, (req + SMUGGLED).replace(b"{P}", b"/"))
    assert closed, "connection left open"
    got = responses(out)
    assert [g[0] for g in got] == [status], got


def test_cluster_server_closes_a_head_ended_by_close_notify(cluster_server):
    closed, out = tls_exchange(cluster_server, b"POST / HTTP/1.1\r\nHost: x\r\n", close_notify=True)
    assert closed, "a client that ended its side in the middle of its head was held open"
    assert out == b""
