"""The engine with an external runc-compatible runtime (`--runtime-path /usr/sbin/runc`)
instead of the default in-process runtime: the lifecycle, logs and exec (also with a TTY)."""
import os
import shutil

import pytest

from engine_daemon import Daemon
from test_engine_streams import pty_session

RUNC = shutil.which("runc") or "/usr/sbin/runc"


@pytest.fixture(scope="module")
def daemon(berth_bin, busybox):
    if not os.access(RUNC, os.X_OK):
        pytest.skip("runc not installed")
    d = Daemon(berth_bin)
    try:
        d.extra_args = ["--runtime-path", RUNC]
        d.start()
        d.load_busybox(busybox)
        d.docker("run", "-d", "--name", "box", "busybox", "sleep", "600")
        yield d
    finally:
        d.cleanup()


def test_run_rm_returns_output_and_exit_code(daemon):
    p = daemon.docker("run", "--rm", "busybox", "sh", "-c", "echo hi; exit 3", check=False)
    assert (p.returncode, p.stdout) == (3, "hi\n")


def test_missing_executable_is_127(daemon):
    assert daemon.docker("run", "--rm", "busybox", "/nonexistent", check=False).returncode == 127


def test_exec_without_tty(daemon):
    assert daemon.docker("exec", "box", "sh", "-c", "echo $((6*7))").stdout == "42\n"


def test_exec_with_tty_and_exit_code(daemon):
    code, out = pty_session([daemon.bin, "exec", "-it", "box", "sh", "-c", "tty; exit 5"], daemon.env, [])
    assert code == 5, out
    assert b"/dev/pts/" in out


def test_stop_and_logs(daemon):
    daemon.docker("run", "-d", "--name", "lg", "busybox", "sh", "-c", "echo one; exec sleep 600")
    daemon.docker("stop", "-t", "1", "lg")
    assert daemon.docker("logs", "lg").stdout == "one\n"
    assert daemon.docker("inspect", "-f", "{{.State.Status}}", "lg").stdout.strip() == "exited"


def cgroup_value(pid, controller, v2_file, v1_file):
    """A cgroup file of process pid: the unified hierarchy's, or controller's v1 one."""
    with open(f"/proc/{pid}/cgroup") as f:
        lines = [ln.split(":", 2) for ln in f.read().split("\n") if ln]
    for _, ctrls, path in lines:
        if controller in ctrls.split(","):
            with open(f"/sys/fs/cgroup/{controller}{path}/{v1_file}") as f:
                return f.read().strip()
    path = [p for _, c, p in lines if c == ""][0]
    with open(f"/sys/fs/cgroup{path}/{v2_file}") as f:
        return f.read().strip()


def test_pause_top_update_and_rm_through_runc(daemon):
    """The engine's own runtime operations (runtime/ops.h's CLI implementation) on runc."""
    daemon.docker("run", "-d", "--name", "ops", "busybox", "sleep", "600")
    daemon.docker("pause", "ops")
    assert daemon.docker("inspect", "-f", "{{.State.Status}}", "ops").stdout.strip() == "paused"
    p = daemon.docker("pause", "ops", check=False)
    assert p.returncode != 0 and "is already paused" in p.stderr, p.stderr
    daemon.docker("unpause", "ops")
    assert daemon.docker("inspect", "-f", "{{.State.Status}}", "ops").stdout.strip() == "running"
    top = daemon.docker("top", "ops").stdout
    assert "sleep 600" in top, top
    daemon.docker("update", "--memory", "64m", "--memory-swap", "-1", "--pids-limit", "50", "ops")
    pid = int(daemon.docker("inspect", "-f", "{{.State.Pid}}", "ops").stdout)
    assert cgroup_value(pid, "memory", "memory.max", "memory.limit_in_bytes") == str(64 << 20)
    assert cgroup_value(pid, "pids", "pids.max", "pids.max") == "50"
    # a bad update reaches runc and comes back as the daemon's error
    p = daemon.docker("update", "--cpuset-cpus", "999", "ops", check=False)
    assert p.returncode != 0 and "OCI runtime update failed" in p.stderr, p.stderr
    daemon.docker("rm", "-f", "ops")
