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
