"""The engine's global lock is never held across blocking work (issue 17): a
container whose exit cleanup hangs (BERTH_TEST_HANG_AT=exit-cleanup:NAME, a
hook compiled in and active only when set; it blocks until the test opens
and closes $BERTH_TEST_HANG_FIFO) holds up nothing but itself: `docker ps`,
`docker run` of another container and its removal answer meanwhile."""
import pytest

from engine_daemon import Daemon, hanging, release, start_hanging, wait_for


@pytest.fixture(scope="module")
def daemon(berth_bin, busybox):
    d = Daemon(berth_bin)
    start_hanging(d, "exit-cleanup:stuck")
    try:
        d.load_busybox(busybox)
        yield d
    finally:
        if d.proc:
            release(d)
        d.cleanup()


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
