"""The daemon gives memory back when idle after bulk work (issue 17, common/memtrim.h): 3 s after
the last `docker load`/save/pull/build request it trims its heap and drops the clean read-only pages
of the libraries that work mapped (libarchive, OpenSSL, ...). The pages come back on use: the
daemon keeps serving (run, save, load again) with identical results."""
import os
import time

import pytest

from engine_daemon import Daemon

RELEASED = "idle after bulk work: memory released"


@pytest.fixture(scope="module")
def daemon(berth_bin):
    d = Daemon(berth_bin)
    d.extra_args = ["--log-level", "debug"]
    try:
        yield d.start()
    finally:
        d.cleanup()


def rss_file_kb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("RssFile:"):
            return int(line.split()[1])
    raise AssertionError("RssFile")


def releases(d):
    return open(d.logpath).read().count(RELEASED)


def wait_release(d, before, deadline_s=60):
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if releases(d) > before:
            return
        time.sleep(0.2)
    raise AssertionError("no release after bulk work:\n" + open(d.logpath).read()[-2000:])


def test_memory_is_given_back_after_load_and_the_daemon_keeps_working(daemon, busybox):
    d = daemon
    wait_release(d, 0)  # the one after the start
    n = releases(d)
    d.load_busybox(busybox)
    loaded = rss_file_kb(d.proc.pid)
    wait_release(d, n)
    # libarchive's and libcrypto's pages (mapped by the load) were dropped
    assert rss_file_kb(d.proc.pid) < loaded
    # ... and fault back in: the daemon still runs, saves and loads
    assert d.docker("run", "--rm", "--network", "none", "busybox", "echo", "ok").stdout == "ok\n"
    out = os.path.join(d.base, "saved.tar")
    n = releases(d)
    d.docker("save", "-o", out, "busybox")
    wait_release(d, n)
    d.docker("rmi", "busybox")
    d.docker("load", "-i", out)
    assert d.docker("run", "--rm", "--network", "none", "busybox", "echo", "again").stdout == "again\n"
