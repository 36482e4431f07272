"""The engine's global lock is never held across blocking work (issue 17): a
container whose exit cleanup hangs (BERTH_TEST_HANG_AT=exit-cleanup:NAME, a
hook compiled in and active only when set; it blocks until the test opens
and closes $BERTH_TEST_HANG_FIFO) holds up nothing but itself: `docker ps`,
`docker run` of another container and its removal answer meanwhile."""
import glob
import os

import pytest

from engine_daemon import Daemon, wait_for


@pytest.fixture(scope="module")
def daemon(berth_bin, busybox):
    d = Daemon(berth_bin)
    fifo = os.path.join(d.base, "hang.fifo")
    os.mkfifo(fifo)
    d.env = dict(d.env)
    old = {k: os.environ.get(k) for k in ("BERTH_TEST_HANG_AT", "BERTH_TEST_HANG_FIFO")}
    os.environ.update(BERTH_TEST_HANG_AT="exit-cleanup:stuck", BERTH_TEST_HANG_FIFO=fifo)
    try:
        d.start()
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    try:
        d.load_busybox(busybox)
        d.fifo = fifo
        yield d
    finally:
        if d.proc:
            release(d)
        d.cleanup()


def hanging(d):
    """A daemon thread waits for a writer on the FIFO (the kernel's wchan says so; looking does not wake it)."""
    for t in glob.glob(f"/proc/{d.proc.pid}/task/*/wchan"):
        try:
            if open(t).read() == "wait_for_partner":
                return True
        except OSError:
            pass
    return False


def release(d):
    """Let a hung cleanup go on: opening the FIFO for writing wakes its reader, closing it ends the wait."""
    try:
        os.close(os.open(d.fifo, os.O_WRONLY | os.O_NONBLOCK))
    except OSError:  # ENXIO: nobody waits
        pass


def test_a_hanging_exit_cleanup_stalls_nobody_else(daemon):
    d = daemon
    d.docker("run", "-d", "--name", "stuck", "busybox", "sh", "-c", "exit 7")
    # its cleanup now hangs in the daemon (the FIFO has a reader once it is there)
    wait_for(lambda: hanging(d), timeout=30)
    # everyone else is served meanwhile, within the CLI's own timeouts
    assert "stuck" in d.docker("ps", "-a", timeout=20).stdout
    assert d.docker("run", "--rm", "busybox", "echo", "others run", timeout=30).stdout == "others run\n"
    other = d.docker("run", "-d", "busybox", "sleep", "600", timeout=30).stdout.strip()
    d.docker("rm", "-f", other, timeout=30)
    assert d.docker("inspect", "-f", "{{.State.Status}}", "stuck", timeout=20).stdout.strip() == "running"
    assert hanging(d)
    # the hung container's exit is recorded once its cleanup ends
    release(d)
    assert d.docker("wait", "stuck", timeout=30).stdout.strip() == "7"
    d.docker("rm", "stuck")
