"""Bounded HTTP server resources (issue 17): a worker pool instead of a thread
per connection, a connection limit with a clear 503, header and body deadlines
against slow-loris clients, while legitimate long-lived streams keep working.
Raw sockets on the daemon's unix socket; limits made small by flags."""
import itertools
import socket
import threading
import time

import pytest

from engine_daemon import Daemon

HEADER_TIMEOUT = 2


@pytest.fixture(scope="module")
def daemon(berth_bin):
    d = Daemon(berth_bin)
    d.extra_args = ["--http-max-connections", "24", "--http-workers", "4",
                    "--http-header-timeout", str(HEADER_TIMEOUT), "--http-body-min-rate", "1024"]
    try:
        yield d.start()
    finally:
        d.cleanup()


def pid_of(d):
    return d.proc.pid


def threads(d):
    for line in open(f"/proc/{pid_of(d)}/status"):
        if line.startswith("Threads:"):
            return int(line.split()[1])
    raise AssertionError("no Threads line")


def connect(d):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(30)
    s.connect(d.sock)
    return s


def closed_by_server(s, deadline=30):
    """True once the server closed s (EOF or reset), reading whatever it sent."""
    s.settimeout(1)
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            if s.recv(4096) == b"":
                return True
        except socket.timeout:
            continue
        except ConnectionResetError:
            return True
    return False


def ping(d):
    return d.request("GET", "/_ping", timeout=10)[0]


def test_idle_connections_hold_no_thread_and_expire(daemon):
    before = threads(daemon)
    socks = []
    try:
        for _ in range(16):
            s = connect(daemon)
            s.sendall(b"GE")  # a request line that never completes: handed to the server
            socks.append(s)
        time.sleep(0.3)
        assert ping(daemon) == 200
        # a thread per connection would add 16 here
        assert threads(daemon) - before < 8
        for s in socks:
            assert closed_by_server(s), "a connection that never finished its headers stayed open"
    finally:
        for s in socks:
            s.close()
    assert ping(daemon) == 200


def trickle(s, data):
    """Send data (bytes, or an endless iterator of byte strings) a byte every 0.2 s
    from a thread until the server closes s; the stop event ends it early."""
    stop = threading.Event()

    def run():
        for b in data:
            if stop.is_set():
                return
            try:
                s.send(bytes([b]) if isinstance(b, int) else b)
            except OSError:
                return
            time.sleep(0.2)

    t = threading.Thread(target=run)
    t.start()
    return stop, t


def assert_trickle_cut_off(daemon, s, data, what):
    stop, t = trickle(s, data)
    try:
        assert closed_by_server(s), what
        assert ping(daemon) == 200
    finally:
        stop.set()
        t.join()
        s.close()


def test_slowloris_headers_are_cut_off(daemon):
    assert_trickle_cut_off(daemon, connect(daemon), b"GET /_ping HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200,
                           "1 byte every 0.2 s of headers kept the connection")


def test_slowloris_body_is_cut_off(daemon):
    s = connect(daemon)
    s.sendall(b"POST /volumes/create HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Content-Length: 4096\r\n\r\n")
    assert_trickle_cut_off(daemon, s, itertools.repeat(b" "), "a body at 5 bytes/s held its connection")


@pytest.fixture
def patient(berth_bin):
    """A daemon whose header deadline is long: the limit test holds idle connections."""
    d = Daemon(berth_bin)
    d.extra_args = ["--http-max-connections", "12", "--http-workers", "2", "--http-header-timeout", "60"]
    try:
        yield d.start()
    finally:
        d.cleanup()


def test_connection_limit_answers_503_and_existing_clients_continue(patient):
    d = patient
    events = connect(d)
    events.sendall(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
    head = b""
    while b"\r\n\r\n" not in head:
        head += events.recv(4096)
    assert head.startswith(b"HTTP/1.1 200")
    idle = []
    try:
        # fill the server up (the events stream holds one slot)
        refused = None
        for _ in range(40):
            s = connect(d)
            s.sendall(b"GE")
            time.sleep(0.05)
            s.settimeout(0.3)
            try:
                data = s.recv(4096)
            except socket.timeout:
                idle.append(s)
                continue
            refused = data
            s.close()
            break
        assert refused is not None, "no connection was refused"
        assert refused.startswith(b"HTTP/1.1 503"), refused
        assert b"too many connections" in refused and b"Retry-After: 1" in refused
        assert len(idle) >= 8
        # the existing stream still works: free one slot, make an event, see it
        idle.pop().close()
        time.sleep(0.3)
        st, _ = d.json("POST", "/volumes/create", {"Name": "limits-vol"})
        assert st == 201
        events.settimeout(20)
        buf = head.partition(b"\r\n\r\n")[2]
        while b"limits-vol" not in buf:
            chunk = events.recv(4096)
            assert chunk, "the events stream ended"
            buf += chunk
    finally:
        for s in idle:
            s.close()
        events.close()
    # with the idle ones gone, new clients are served again
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if ping(d) == 200:
                break
        except OSError:
            pass
        time.sleep(0.1)
    assert ping(d) == 200
    assert d.json("DELETE", "/volumes/limits-vol")[0] == 204


def test_workers_queue_requests_beyond_the_pool(daemon):
    """More concurrent blocking requests than workers: all answered (queued, not refused)."""
    results = []

    def one():
        results.append(daemon.request("GET", "/containers/json?all=1", timeout=30)[0])

    ts = [threading.Thread(target=one) for _ in range(12)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert results == [200] * 12


def test_bad_limit_flags_are_refused(berth_bin):
    import subprocess
    r = subprocess.run([berth_bin, "daemon", "--http-workers", "0"], capture_output=True, text=True, timeout=10)
    assert r.returncode != 0
    assert "http-workers" in r.stderr
    r = subprocess.run([berth_bin, "daemon", "--help"], capture_output=True, text=True, timeout=10)
    assert "--http-max-connections" in r.stdout
    # one message per bad flag, before anything starts; an unknown flag also gets the usage
    for args, err in ((["--http-body-min-rate", "x", "--bogus"],
                       "berth daemon: invalid --http-body-min-rate 'x': expected a number from 1 to 1073741824\n"),
                      (["--default-ulimit", "nofile"], "berth daemon: --default-ulimit: "),
                      (["--tls=1"], "daemon: option '--tls' doesn't allow an argument\nUsage: berth daemon"),
                      (["--h"], "daemon: option '--h' is ambiguous; possibilities: '--host' '--http-max-connections'"),
                      (["--root", "/x", "extra"], "berth daemon: unexpected argument 'extra'\n")):
        r = subprocess.run([berth_bin, "daemon", *args], capture_output=True, text=True, timeout=10)
        assert r.returncode == 1 and r.stderr.startswith(err) and r.stdout == "", (args, r.stderr)
    assert r.stderr == err
