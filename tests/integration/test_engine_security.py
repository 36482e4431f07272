"""What crosses into a default container: no fd of a container process may refer to
a host file, device or socket that the user did not ask to share (issue 18, item 1).

Root in a default container holds CAP_FOWNER/CAP_CHOWN: an fd on the host's
/dev/null would let it fchmod/fchown the host's device node. Every process the
engine starts (run, exec, with and without a TTY, build RUN steps, and the same
through an external runc) must see only its own pipes, its own pty and the
container's own /dev/null. The probe never writes to anything: it only stats.
"""
import os
import re

import pytest

from conftest import run
from engine_daemon import DOCKER, Daemon
from test_engine_runc import RUNC
from test_engine_streams import pty_session

# One line per fd of the shell ($$, not self: readlink and stat are children),
# then the container's own /dev/null.
PROBE = ('for f in /proc/$$/fd/*; do echo "fd $f $(readlink $f) $(stat -L -c %D:%i $f)"; done; '
         'echo "null $(stat -c %D:%i /dev/null)"')
ALLOWED = re.compile(r"^(pipe:\[\d+\]|/dev/null|/dev/pts/\d+)$")


def host_null():
    st = os.stat("/dev/null")
    return f"{st.st_dev:x}:{st.st_ino}"


def check_probe(out):
    """Parse PROBE's output; assert no fd is foreign. Returns {fd: (target, id)}, own null id."""
    if isinstance(out, bytes):
        out = out.decode(errors="replace")
    fds, own = {}, None
    for line in out.replace("\r", "").splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[0] == "fd":
            fds[int(parts[1].rsplit("/", 1)[1])] = (parts[2], parts[3])
        elif len(parts) == 2 and parts[0] == "null":
            own = parts[1]
    assert own and 0 in fds and 1 in fds and 2 in fds, out
    assert own != host_null(), "the container's /dev/null is the host's node"
    for fd, (target, ident) in fds.items():
        assert ALLOWED.match(target), f"fd {fd} -> {target!r} in the container: {out}"
        assert ident != host_null(), f"fd {fd} is the host's /dev/null: {out}"
        if target == "/dev/null":
            assert ident == own, f"fd {fd} is a /dev/null that is not the container's: {out}"
    return fds, own


@pytest.fixture(scope="module")
def daemon(berth_bin, busybox):
    d = Daemon(berth_bin)
    try:
        d.start()
        d.load_busybox(busybox)
        d.docker("run", "-d", "--name", "box", "busybox", "sleep", "600")
        yield d
    finally:
        d.cleanup()


def test_run_without_stdin_gets_the_containers_own_dev_null(daemon):
    fds, own = check_probe(daemon.docker("run", "--rm", "busybox", "sh", "-c", PROBE).stdout)
    assert fds[0] == ("/dev/null", own)


def test_run_with_stdin_gets_a_pipe(daemon):
    fds, _ = check_probe(daemon.docker("run", "--rm", "-i", "busybox", "sh", "-c", PROBE, input="").stdout)
    assert fds[0][0].startswith("pipe:")


def test_run_with_tty_gets_only_its_pty(daemon):
    code, out = pty_session([DOCKER, "run", "--rm", "-t", "busybox", "sh", "-c", PROBE], daemon.env, [])
    assert code == 0, out
    fds, _ = check_probe(out)
    assert all(t.startswith("/dev/pts/") for t, _ in (fds[0], fds[1], fds[2])), out


def test_exec_without_stdin_gets_the_containers_own_dev_null(daemon):
    fds, own = check_probe(daemon.docker("exec", "box", "sh", "-c", PROBE).stdout)
    assert fds[0] == ("/dev/null", own)


def test_exec_with_tty_gets_only_its_pty(daemon):
    code, out = pty_session([DOCKER, "exec", "-t", "box", "sh", "-c", PROBE], daemon.env, [])
    assert code == 0, out
    check_probe(out)


def test_detached_run_logs_show_no_host_fd(daemon):
    daemon.docker("run", "-d", "--name", "det", "busybox", "sh", "-c", PROBE)
    assert daemon.docker("wait", "det").stdout.strip() == "0"
    fds, own = check_probe(daemon.docker("logs", "det").stdout)
    assert fds[0] == ("/dev/null", own)
    daemon.docker("rm", "det")


def test_build_run_step_gets_the_containers_own_dev_null(daemon, tmp_path):
    (tmp_path / "Dockerfile").write_text(f"FROM busybox\nRUN {PROBE}\n")
    p = run([DOCKER, "build", "--no-cache", str(tmp_path)], env=dict(daemon.env, DOCKER_BUILDKIT="0"),
            timeout=120)
    fds, own = check_probe(p.stdout)
    assert fds[0] == ("/dev/null", own)


@pytest.fixture(scope="module")
def runc_daemon(berth_bin, busybox):
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


def test_runc_run_without_stdin_shows_no_host_fd(runc_daemon):
    check_probe(runc_daemon.docker("run", "--rm", "busybox", "sh", "-c", PROBE).stdout)


def test_runc_exec_without_stdin_shows_no_host_fd(runc_daemon):
    check_probe(runc_daemon.docker("exec", "box", "sh", "-c", PROBE).stdout)
