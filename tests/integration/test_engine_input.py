"""What the Docker API refuses at create, as dockerd does (issue 18, item 5).

Each case's status and message were taken from dockerd 20.10 (docker.io) on this
machine: resource values out of range (daemon_unix.go's
verifyPlatformContainerResources / verifyPlatformContainerSettings), a relative
WorkingDir, a name holding a NUL byte. Values dockerd accepts (a negative
CpuShares, PidsLimit <= 0 meaning unlimited, MemorySwap -1) stay accepted.
A client that does not speak HTTP on the API socket gets dockerd's
"400 Bad Request" and the connection closes.
"""
import socket
import time

import docker
import pytest

from engine_daemon import Daemon

MIB = 1 << 20
NCPU = len(__import__("os").sched_getaffinity(0))

REFUSED = [
    ({"Memory": -1}, "Minimum memory limit allowed is 6MB"),
    ({"Memory": 1024}, "Minimum memory limit allowed is 6MB"),
    ({"MemorySwap": 64 * MIB}, "You should always set the Memory limit when using Memoryswap limit, see usage"),
    ({"Memory": 64 * MIB, "MemorySwap": 32 * MIB},
     "Minimum memoryswap limit should be larger than memory limit, see usage"),
    ({"ShmSize": -1}, "SHM size can not be less than 0"),
    ({"MemoryReservation": 1024}, "Minimum memory reservation allowed is 6MB"),
    ({"Memory": 64 * MIB, "MemoryReservation": 128 * MIB},
     "Minimum memory limit can not be less than memory reservation limit, see usage"),
    ({"KernelMemory": 1024}, "Minimum kernel memory limit allowed is 6MB"),
    ({"NanoCpus": -1}, f"Range of CPUs is from 0.01 to {NCPU}.00, as there are only {NCPU} CPUs available"),
    ({"NanoCpus": (NCPU + 1) * 10**9},
     f"Range of CPUs is from 0.01 to {NCPU}.00, as there are only {NCPU} CPUs available"),
    ({"NanoCpus": 10**9, "CpuPeriod": 100000}, "Conflicting options: Nano CPUs and CPU Period cannot both be set"),
    ({"CpuPeriod": -1}, "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)"),
    ({"CpuQuota": 10}, "CPU cfs quota can not be less than 1ms (i.e. 1000)"),
    ({"MemorySwappiness": 200}, "Invalid value: 200, valid memory swappiness range is 0-100"),
    ({"OomScoreAdj": 2000}, "Invalid value 2000, range for oom score adj is [-1000, 1000]"),
    ({"BlkioWeight": 5}, "Range of blkio weight is from 10 to 1000"),
    ({"BlkioWeight": 2000}, "Range of blkio weight is from 10 to 1000"),
]

ACCEPTED = [{"CpuShares": -1}, {"PidsLimit": 0}, {"PidsLimit": -1}, {"Memory": 64 * MIB, "MemorySwap": -1},
            {"CpuQuota": -1}, {"MemorySwappiness": -1}]


@pytest.fixture(scope="module")
def daemon(berth_bin, busybox):
    d = Daemon(berth_bin)
    try:
        d.start()
        d.load_busybox(busybox)
        yield d
    finally:
        d.cleanup()


def create(daemon, hostconfig=None, query="", **config):
    body = {"Image": "busybox", "Cmd": ["true"], "HostConfig": hostconfig or {}, **config}
    return daemon.json("POST", "/containers/create" + query, body)


@pytest.mark.parametrize("hostconfig,message", REFUSED, ids=[repr(h) for h, _ in REFUSED])
def test_create_refuses_resources_as_dockerd(daemon, hostconfig, message):
    status, body = create(daemon, hostconfig)
    assert (status, body) == (400, {"message": message})


@pytest.mark.parametrize("hostconfig", ACCEPTED, ids=[repr(h) for h in ACCEPTED])
def test_create_accepts_what_dockerd_accepts(daemon, hostconfig):
    status, body = create(daemon, hostconfig)
    assert status == 201, body
    daemon.request("DELETE", f"/containers/{body['Id']}?force=1")


def test_create_refuses_relative_working_dir(daemon):
    status, body = create(daemon, WorkingDir="rel/dir")
    assert (status, body) == (400, {"message": "the working directory 'rel/dir' is invalid, "
                                               "it needs to be an absolute path"})


def test_create_refuses_name_with_nul(daemon):
    status, body = create(daemon, query="?name=ab%00cd")
    assert status == 400, body
    status, _ = daemon.json("GET", "/containers/ab/json")
    assert status == 404  # nothing was created under the truncated name


def test_refused_request_reads_its_body_and_keeps_the_connection(daemon):
    """A client that sends the body after the headers (Python's http.client, Go's) gets the 400, not EPIPE,
    and the connection serves the next request (Go's net/http drains small unread bodies the same way)."""
    body = b'{"Image": "busybox", "Cmd": ["true"]}'
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(20)
        s.connect(daemon.sock)
        s.sendall(b"POST /containers/create?name=ab%00cd HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n")
        time.sleep(0.3)  # the server has the headers; it answers once the body is read
        s.sendall(body)
        s.sendall(b"GET /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        out = b""
        while chunk := s.recv(4096):
            out += chunk
    assert out.startswith(b"HTTP/1.1 400 "), out
    assert b"NUL byte" in out and out.count(b"HTTP/1.1 ") == 2 and out.endswith(b"OK"), out


def test_docker_py_sees_the_refusals(daemon):
    client = docker.DockerClient(base_url=daemon.host)
    try:
        with pytest.raises(docker.errors.APIError) as e:
            client.containers.create("busybox", "true", mem_limit=-1)
        assert e.value.status_code == 400 and "Minimum memory limit allowed is 6MB" in str(e.value)
        with pytest.raises(docker.errors.APIError) as e:
            client.containers.create("busybox", "true", shm_size=-1)
        assert e.value.status_code == 400 and "SHM size can not be less than 0" in str(e.value)
        with pytest.raises(docker.errors.APIError) as e:
            client.containers.create("busybox", "true", working_dir="tmp")
        assert e.value.status_code == 400 and "needs to be an absolute path" in str(e.value)
        c = client.containers.create("busybox", "true", working_dir="/tmp", mem_limit="64m")
        c.remove(force=True)
    finally:
        client.close()


def raw(daemon, data):
    """Send bytes on the API socket; return what comes back until the server closes."""
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(20)  # a server that never answers fails the test instead of hanging it
        s.connect(daemon.sock)
        s.sendall(data)
        out = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                return out
            out += chunk


@pytest.mark.parametrize("data", [b"hello\r\n\r\n", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
                                  b"SSH-2.0-OpenSSH_9.2\r\n", b"\r\n\r\n"],
                         ids=["text-line", "tls-hello", "ssh-banner", "empty-lines"])
def test_non_http_client_gets_400_and_close(daemon, data):
    out = raw(daemon, data)
    assert out.startswith(b"HTTP/1.1 400 Bad Request\r\n"), out
    assert out.endswith(b"400 Bad Request")


def test_http_still_served_after_non_http_clients(daemon):
    raw(daemon, b"hello\r\n\r\n")
    out = raw(daemon, b"GET /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 200 OK\r\n") and out.endswith(b"OK")
