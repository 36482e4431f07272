"""Issue 19, second compatibility round: behaviours where berth differed from
dockerd, each checked with a real client (docker-py, the docker CLI, curl).

One daemon for the module (engine_daemon.Daemon, no container networking);
each test removes what it made.
"""
import json
import os
import subprocess
import uuid

import docker
import pytest

from engine_daemon import Daemon, wait_for


@pytest.fixture(scope="module")
def daemon(berth_bin, busybox):
    d = Daemon(berth_bin)
    try:
        d.start()
        d.load_busybox(busybox)
        yield d
    finally:
        d.cleanup()


@pytest.fixture
def client(daemon):
    c = docker.DockerClient(base_url=daemon.host, version="1.41", timeout=60)
    try:
        yield c
    finally:
        c.close()


def name():
    return "t" + uuid.uuid4().hex[:10]


# ---- test image: applets outside /bin ----

@pytest.mark.parametrize("argv", [["top", "-b", "-n", "1"], ["env"], ["find", "/etc", "-name", "passwd"],
                                  ["whoami"], ["ip", "-o", "link", "show", "lo"], ["chroot", "/", "true"]])
def test_busybox_applets_outside_bin_run(daemon, argv):
    """usr/bin/top, sbin/ip, usr/sbin/chroot ... are links that resolve to /bin/busybox."""
    p = daemon.docker("run", "--rm", "busybox", *argv, check=False)
    assert p.returncode == 0, (argv, p.returncode, p.stderr)

