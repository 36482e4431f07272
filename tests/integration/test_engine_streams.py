"""Streams and logs: attach with logs=1, detach keys, signal proxying, slow
clients that must not block a container, and the local/none log drivers."""
import json
import os
import pty
import select
import signal
import socket
import subprocess
import time

import pytest

from engine_daemon import DOCKER, Daemon, wait_for

DOCKER28 = "/usr/local/bin/docker"


@pytest.fixture(scope="module")
def daemon(berth_bin, busybox):
    d = Daemon(berth_bin)
    try:
        d.start()
        d.load_busybox(busybox)
        yield d
    finally:
        d.cleanup()


def inspect(d, name):
    return json.loads(d.docker("inspect", name).stdout)[0]


def raw_attach(d, name, query):
    """Hijacked POST /attach; returns the socket after the 101 headers."""
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(20)
    s.connect(d.sock)
    s.sendall(f"POST /v1.41/containers/{name}/attach?{query} HTTP/1.1\r\nHost: x\r\n"
              "Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(1)
        assert chunk, head
        head += chunk
    return s, head.split(b"\r\n")[0].decode()


def read_all(s):
    out = b""
    while True:
        b = s.recv(65536)
        if not b:
            return out
        out += b


def demux(data):
    out, i = {1: b"", 2: b""}, 0
    while i + 8 <= len(data):
        n = int.from_bytes(data[i + 4:i + 8], "big")
        out[data[i]] = out.get(data[i], b"") + data[i + 8:i + 8 + n]
        i += 8 + n
    return out


def pty_session(argv, env, steps, timeout=20):
    """Run argv on a pty; steps: (text to wait for, bytes to type then). Returns (exit code, output)."""
    master, slave = os.openpty()
    p = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True)
    os.close(slave)
    out = b""
    steps = list(steps)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            r, _, _ = select.select([master], [], [], 0.2)
            if r:
                try:
                    chunk = os.read(master, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                out += chunk
            if steps and steps[0][0] in out:
                os.write(master, steps.pop(0)[1])
            if p.poll() is not None and not r:
                break
        try:
            return p.wait(timeout=10), out
        except subprocess.TimeoutExpired:
            return None, out
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        os.close(master)


def test_attach_logs_replays_output_without_stream(daemon):
    daemon.docker("run", "--name", "replay", "busybox", "sh", "-c", "echo one; echo two >&2")
    s, status = raw_attach(daemon, "replay", "logs=1&stream=0&stdout=1&stderr=1")
    assert "101" in status
    frames = demux(read_all(s))
    s.close()
    assert frames[1] == b"one\n" and frames[2] == b"two\n"


def test_attach_logs_then_live_stream(daemon):
    daemon.docker("run", "-d", "--name", "live", "busybox", "sh", "-c",
                  "echo early; mkfifo /tmp/go; cat /tmp/go; echo late")
    wait_for(lambda: b"early" in daemon.docker("logs", "live").stdout.encode())
    s, _ = raw_attach(daemon, "live", "logs=1&stream=1&stdout=1&stderr=1")
    pid = inspect(daemon, "live")["State"]["Pid"]
    with open(f"/proc/{pid}/root/tmp/go", "w") as f:
        f.write("go\n")
    out = demux(read_all(s))[1]
    s.close()
    assert out == b"early\ngo\nlate\n"


def test_docker_py_attach_logs(daemon):
    docker = pytest.importorskip("docker")
    cl = docker.DockerClient(base_url=daemon.host)
    c = cl.containers.run("busybox", ["sh", "-c", "echo from-py"], detach=True, name="pyattach")
    assert c.wait()["StatusCode"] == 0
    assert c.attach(stdout=True, stderr=True, logs=True, stream=False) == b"from-py\n"


def test_docker_start_attach_of_exited_container_streams_new_run(daemon):
    daemon.docker("create", "--name", "again", "busybox", "echo", "again")
    assert daemon.docker("start", "-a", "again").stdout == "again\n"
    assert daemon.docker("start", "-a", "again").stdout == "again\n"
    assert daemon.docker("logs", "again").stdout == "again\nagain\n"


def test_invalid_detach_keys_are_rejected(daemon):
    daemon.docker("run", "-d", "--name", "dk", "busybox", "sleep", "600")
    st, body, _ = daemon.request("POST", "/containers/dk/attach?stream=1&stdout=1&detachKeys=ctrl-1")
    assert st == 400 and json.loads(body)["message"] == "Invalid detach keys (ctrl-1) provided"
    st, body = daemon.json("POST", "/containers/dk/exec", {"Cmd": ["true"], "DetachKeys": "ctrl-xx"})
    assert st == 400 and body["message"] == "Invalid escape keys (ctrl-xx) provided"
    p = daemon.docker("attach", "--detach-keys", "ctrl-", "dk", check=False, timeout=20)
    assert p.returncode != 0 and "400" in p.stderr  # docker 20.10: "unable to upgrade to tcp, received 400"


@pytest.mark.parametrize("cli", [DOCKER, "berth"])
def test_detach_keys_leave_the_container_running(daemon, cli):
    if cli != "berth" and not os.path.exists(cli):
        pytest.skip(f"{cli} missing")
    name = "det" + str(abs(hash(cli)) % 10000)
    argv = [daemon.bin if cli == "berth" else cli, "run", "-it", "--name", name, "--detach-keys", "ctrl-a,x",
            "busybox", "sh", "-c", "echo ready; exec cat"]
    code, out = pty_session(argv, daemon.env, [(b"ready", b"hello\r"), (b"hello\r\nhello", b"\x01x")])
    assert code == 0, out
    assert b"hello" in out
    assert inspect(daemon, name)["State"]["Running"]
    # attach again and detach with the default keys
    code, out = pty_session([DOCKER, "attach", name], daemon.env, [(b"", b"again\r"), (b"again\r\nagain", b"\x10\x11")])
    assert inspect(daemon, name)["State"]["Running"]
    daemon.docker("rm", "-f", name)


def test_daemon_default_detach_keys(berth_bin, busybox, daemon):
    daemon.docker("run", "-d", "-it", "--name", "ddk", "busybox", "sh", "-c", "exec cat")
    # the query overrides nothing here: the daemon's default (ctrl-p,ctrl-q) detaches a raw attach
    s, _ = raw_attach(daemon, "ddk", "stream=1&stdin=1&stdout=1")
    s.sendall(b"abc")
    data = b""
    while b"abc" not in data:
        data += s.recv(4096)
    s.sendall(b"\x10\x11")
    data += read_all(s)
    s.close()
    assert b"abc" in data
    assert inspect(daemon, "ddk")["State"]["Running"]


@pytest.mark.parametrize("cli", ["berth", DOCKER])
def test_sig_proxy_forwards_signals(daemon, cli):
    name = "sig" + str(abs(hash(cli)) % 10000)
    argv = [daemon.bin if cli == "berth" else cli, "run", "--name", name, "busybox", "sh", "-c",
            "trap 'echo got-usr1' USR1; trap 'echo got-term; exit 3' TERM; echo ready; "
            "while true; do sleep 0.1; done"]
    p = subprocess.Popen(argv, env=daemon.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        line = p.stdout.readline()
        assert line == b"ready\n"
        p.send_signal(signal.SIGUSR1)
        assert p.stdout.readline() == b"got-usr1\n"
        p.send_signal(signal.SIGTERM)
        assert p.stdout.readline() == b"got-term\n"
        assert p.wait(timeout=20) == 3
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_berth_attach_streams_output_and_proxies_signals(daemon):
    daemon.docker("run", "-d", "--name", "batt", "busybox", "sh", "-c",
                  "trap 'echo got-usr2' USR2; trap 'exit 4' TERM; "
                  "while [ ! -e /tmp/go ]; do echo waiting; sleep 0.2; done; "
                  "echo attached; while true; do sleep 0.1; done")
    p = subprocess.Popen([daemon.bin, "attach", "batt"], env=daemon.env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    try:
        assert p.stdout.readline() == b"waiting\n"  # attached
        pid = inspect(daemon, "batt")["State"]["Pid"]
        open(f"/proc/{pid}/root/tmp/go", "w").close()
        while (line := p.stdout.readline()) == b"waiting\n":
            pass
        assert line == b"attached\n"
        p.send_signal(signal.SIGUSR2)
        assert p.stdout.readline() == b"got-usr2\n"
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=20) == 4
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_berth_attach_refuses_a_stopped_container(daemon):
    daemon.docker("create", "--name", "notyet", "busybox", "true")
    p = daemon.berth("attach", "notyet", check=False)
    assert p.returncode == 1
    assert "You cannot attach to a stopped container, start it first" in p.stderr


def test_stalled_client_does_not_block_output_or_log(daemon):
    daemon.docker("run", "-d", "--name", "flood", "busybox", "sh", "-c",
                  "echo ready; mkfifo /tmp/go; cat /tmp/go; "
                  "head -c 8000000 /dev/zero | tr '\\0' a | fold -w 3999; echo; "
                  "echo done-flooding; exec sleep 600")
    wait_for(lambda: "ready" in daemon.docker("logs", "flood").stdout)
    stalled, _ = raw_attach(daemon, "flood", "stream=1&stdout=1&stderr=1")
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    pid = inspect(daemon, "flood")["State"]["Pid"]
    with open(f"/proc/{pid}/root/tmp/go", "w") as f:
        f.write("go\n")
    # 8 MB written while one client reads nothing: the log has all of it
    wait_for(lambda: "done-flooding" in daemon.docker("logs", "--tail", "1", "flood").stdout, timeout=60)
    lines = daemon.docker("logs", "flood").stdout.splitlines()
    assert lines.count("a" * 3999) == 2000 and lines[-2] == "a" * 2000
    # and a new client is served at once
    code = daemon.docker("exec", "flood", "echo", "alive").stdout
    assert code == "alive\n"
    stalled.close()


def test_local_log_driver(daemon):
    daemon.docker("run", "--name", "loc", "--log-driver", "local", "--log-opt", "max-size=20k",
                  "--log-opt", "max-file=3", "busybox", "sh", "-c",
                  "i=0; while [ $i -lt 3000 ]; do echo line-$i; i=$((i+1)); done; echo err >&2; printf tail")
    c = inspect(daemon, "loc")
    assert c["HostConfig"]["LogConfig"]["Type"] == "local"
    out = daemon.docker("logs", "loc")
    lines = out.stdout.splitlines()
    assert lines[-1] == "tail" and out.stderr == "err\n"
    # rotated (and gzipped) files are read back; older ones beyond max-file are gone
    assert lines[0].startswith("line-") and lines[0] != "line-0"
    ldir = os.path.join(daemon.root, "containers", c["Id"], "local-logs")
    wait_for(lambda: any(f.endswith(".gz") for f in os.listdir(ldir)))
    assert daemon.docker("logs", "--tail", "3", "loc").stdout == "line-2999\ntail"
    ts = daemon.docker("logs", "-t", "--tail", "1", "loc").stdout
    assert ts.endswith(" tail") and ts[4] == "-" and ts[10] == "T"
    since = daemon.docker("logs", "--since", "2000-01-01T00:00:00Z", "--until", "2001-01-01T00:00:00Z", "loc")
    assert since.stdout == ""
    assert daemon.berth("logs", "--tail", "1", "loc").stdout.endswith("tail")


def test_json_file_compress_rotated_files(daemon):
    daemon.docker("run", "--name", "jgz", "--log-opt", "max-size=10k", "--log-opt", "max-file=2",
                  "--log-opt", "compress=true", "busybox", "sh", "-c",
                  "i=0; while [ $i -lt 1000 ]; do echo line-$i; i=$((i+1)); done")
    cid = inspect(daemon, "jgz")["Id"]
    cdir = os.path.join(daemon.root, "containers", cid)
    wait_for(lambda: os.path.exists(os.path.join(cdir, f"{cid}-json.log.1.gz")))
    lines = daemon.docker("logs", "jgz").stdout.splitlines()
    assert lines[-1] == "line-999" and len(lines) > 150  # more than the live file holds
    assert lines == [f"line-{i}" for i in range(1000 - len(lines), 1000)]


def test_local_log_driver_follow(daemon):
    daemon.docker("run", "-d", "--name", "locf", "--log-driver", "local", "busybox", "sh", "-c",
                  "echo a; mkfifo /tmp/go; cat /tmp/go; echo b")
    p = subprocess.Popen([DOCKER, "logs", "-f", "locf"], env=daemon.env, stdout=subprocess.PIPE)
    assert p.stdout.readline() == b"a\n"
    pid = inspect(daemon, "locf")["State"]["Pid"]
    with open(f"/proc/{pid}/root/tmp/go", "w") as f:
        f.write("go\n")
    assert p.stdout.read() == b"go\nb\n"
    assert p.wait(timeout=20) == 0


def test_bad_log_options(daemon):
    p = daemon.docker("run", "--log-driver", "local", "--log-opt", "foo=1", "busybox", "true", check=False)
    assert p.returncode != 0 and "unknown log opt 'foo' for log driver local" in p.stderr
    p = daemon.docker("run", "--log-driver", "syslogx", "busybox", "true", check=False)
    assert p.returncode != 0 and "no log driver named 'syslogx'" in p.stderr


def test_none_log_driver(daemon):
    daemon.docker("run", "--name", "nolog", "--log-driver", "none", "busybox", "echo", "hi")
    p = daemon.docker("logs", "nolog", check=False)
    assert p.returncode != 0
    assert "configured logging driver does not support reading" in p.stderr


@pytest.fixture(scope="module")
def custom(berth_bin, busybox):
    """A daemon with stream/log defaults, on the in-process runtime (TTY exec: runc
    refuses --console-socket without --detach, see docs/engine.md)."""
    d = Daemon(berth_bin)
    try:
        d.extra_args = ["--log-driver", "local", "--detach-keys", "ctrl-x", "--runtime-path", "berth"]
        d.start()
        d.load_busybox(busybox)
        d.docker("run", "-d", "--name", "box", "busybox", "sleep", "600")
        yield d
    finally:
        d.cleanup()


def test_daemon_default_log_driver(custom):
    custom.docker("run", "--name", "dl", "busybox", "echo", "hi")
    assert inspect(custom, "dl")["HostConfig"]["LogConfig"]["Type"] == "local"
    assert custom.docker("logs", "dl").stdout == "hi\n"


@pytest.mark.parametrize("cli", ["berth", DOCKER28])
def test_exec_detach_keys_leave_the_process_running(custom, cli):
    if cli != "berth" and not os.path.exists(cli):
        pytest.skip(f"{cli} missing")
    argv = [custom.bin if cli == "berth" else cli, "exec", "-it", "--detach-keys", "ctrl-e", "box", "sh", "-c",
            f"echo ready; exec sleep 60{len(cli)}"]
    code, out = pty_session(argv, custom.env, [(b"ready", b"\x05")])
    assert code == (0 if cli == "berth" else 1), out  # docker's CLI says "read escape sequence", exit 1
    assert f"sleep 60{len(cli)}" in custom.docker("exec", "box", "ps").stdout


def test_exec_uses_the_daemon_default_detach_keys(custom):
    code, out = pty_session([custom.bin, "exec", "-it", "box", "sh", "-c", "echo ready; exec sleep 599"],
                            custom.env, [(b"ready", b"\x18")])
    assert code == 0, out
    assert "sleep 599" in custom.docker("exec", "box", "ps").stdout
