"""HTTP framing in every server of ours (issue 18, item 6): a percent-encoded NUL
in a path or query, two different Content-Length headers (RFC 9112 6.3) and
Content-Length together with Transfer-Encoding are a 400 before any routing,
in the registry and in the daemon (both on http/server.c).
Requests are written on raw sockets: clients normalise these away.
"""
import json
import socket

import pytest

from engine_daemon import Daemon
from test_registry_support import registry  # noqa: F401  (session fixture)


@pytest.fixture(scope="module")
def daemon(berth_bin):
    d = Daemon(berth_bin)
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
