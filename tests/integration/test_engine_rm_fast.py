"""`docker run --rm` returns without waiting for work nobody can observe
(issue 17): once the container's record says "removing" it leaves the table
(`wait?condition=removed` answers, `ps -a` no longer lists it, the name is
free) and the unmount and rm -rf of its snapshot go on in the background.
Nothing leaks: the snapshot and directories go once the work ends, and a
daemon killed meanwhile finishes the removal at its next start.

The removal's resource step hangs for containers named "slow"
(BERTH_TEST_HANG_AT=rm-resources:slow, a hook compiled in and active only when
set; it blocks until the test opens and closes $BERTH_TEST_HANG_FIFO)."""
import contextlib
import os
import signal
import subprocess

import pytest

from engine_daemon import DOCKER, Daemon, hanging, release, start_hanging, wait_for


@pytest.fixture
def daemon(berth_bin, busybox):
    d = Daemon(berth_bin)
    start_hanging(d, "rm-resources:slow")
    try:
        d.load_busybox(busybox)
        d.layers = set(os.listdir(os.path.join(d.root, "snapshots")))
        yield d
    finally:
        if d.proc:
            release(d)
        d.cleanup()


def snapshots(d):
    """Container snapshots: every snapshot but the image's layers (present before any container)."""
    return set(os.listdir(os.path.join(d.root, "snapshots"))) - d.layers


def container_dirs(d):
    return os.listdir(os.path.join(d.root, "containers"))


def test_run_rm_returns_before_the_removal_work_and_leaks_nothing(daemon):
    d = daemon
    # both CLIs return while the removal's unmount/rm -rf is held up; exit codes are kept
    r = d.docker("run", "--rm", "--name", "slow", "--network", "none", "busybox", "sh", "-c", "exit 3",
                 check=False, timeout=30)
    assert r.returncode == 3, r.stderr
    assert hanging(d)
    assert "slow" not in d.docker("ps", "-a", "--format", "{{.Names}}", timeout=20).stdout
    assert d.docker("inspect", "slow", check=False, timeout=20).returncode != 0
    # the work is still to do: its snapshot is there
    assert len(snapshots(d)) == 1
    # the name is free at once: a second --rm run with it works (and hangs in its removal too)
    assert d.berth("run", "--rm", "--name", "slow", "--network", "none", "busybox", "echo", "again",
                   timeout=30).stdout == "again\n"
    assert len(snapshots(d)) == 2
    # once the work may go on, nothing is left behind (the second removal may reach its hook later)
    wait_for(lambda: release(d) or (not snapshots(d) and not container_dirs(d)), timeout=30)
    assert d.docker("ps", "-aq", timeout=20).stdout == ""


def test_a_daemon_killed_during_the_background_removal_finishes_it(daemon):
    d = daemon
    d.docker("run", "--rm", "--name", "slow", "--network", "none", "busybox", "true", timeout=30)
    assert hanging(d)
    assert len(snapshots(d)) == 1
    d.stop(signal.SIGKILL)
    d.start()  # without the hook: the recovery finishes the removal before serving
    wait_for(lambda: not snapshots(d) and not container_dirs(d), timeout=30)
    assert d.docker("ps", "-aq", timeout=20).stdout == ""
    # the name is usable after the restart
    d.docker("run", "--rm", "--name", "other", "--network", "none", "busybox", "true", timeout=30)


def test_image_removal_waits_for_a_returned_run_rm_to_free_its_snapshot(daemon):
    d = daemon
    # solo:1 is the image's only name, so its removal checks whether a container uses it
    d.docker("tag", "busybox", "solo:1")
    d.docker("rmi", "busybox")
    d.docker("run", "--rm", "--name", "slow", "--network", "none", "solo:1", "true", timeout=30)
    assert hanging(d) and len(snapshots(d)) == 1
    # the container is gone for the user: removing its image must not fail on its snapshot
    rmi = subprocess.Popen([DOCKER, "rmi", "solo:1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, env=d.env)
    try:
        # it waits for the removal (without that wait it fails at once with a conflict) ...
        with contextlib.suppress(subprocess.TimeoutExpired):
            rmi.wait(timeout=2)
        # ... and goes on once the removal may finish
        wait_for(lambda: release(d) or rmi.poll() is not None, timeout=30)
        out, err = rmi.communicate(timeout=30)
    finally:
        if rmi.poll() is None:
            rmi.kill()
    assert rmi.returncode == 0, err
    assert "Deleted: sha256:" in out
    assert not snapshots(d) and "solo" not in d.docker("images", timeout=20).stdout


def test_image_removal_waits_for_a_stuck_removal_only_so_long(daemon):
    d = daemon
    d.docker("tag", "busybox", "solo:1")
    d.docker("rmi", "busybox")
    d.docker("run", "--rm", "--name", "slow", "--network", "none", "solo:1", "true", timeout=30)
    assert hanging(d)
    # the removal stays held: after its bounded wait (10 s) the image removal answers the conflict
    r = d.docker("rmi", "solo:1", check=False, timeout=40)
    assert r.returncode != 0 and "is using its referenced image" in r.stderr, r.stderr
