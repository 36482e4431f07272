"""Network state on a full disk (issue 18 item 3, network reservations): the
daemon runs inside a network namespace of ours with its root on a 64 MB tmpfs
(as test_engine_disk_full.py). A reservation (the address a stopped container
keeps, src/net/reserve.c) that cannot be written fails the call with the
reason and leaves no half-kept address; everything works once space is back."""
import json
import os
import subprocess

import pytest

from conftest import unmount_all
from test_engine_disk_full import disk_filled, failed_clearly
from test_engine_network import leases, netns_daemon


@pytest.fixture(scope="module")
def daemon(berth_bin, busybox):
    def mount_root(d):
        os.makedirs(d.root)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m,mode=0710", "berth-net-disk-full", d.root],
                       check=True)

    def unmount_root(d):
        if d.proc and d.proc.poll() is None:
            d.remove_all()
        d.stop()
        unmount_all(d.root)

    with netns_daemon(berth_bin, busybox, "ndf-", prepare=mount_root, before_cleanup=unmount_root) as d:
        yield d


def ip_of(d, ctr, net):
    return json.loads(d.docker("inspect", ctr).stdout)[0]["NetworkSettings"]["Networks"][net]["IPAddress"]


def test_a_reservation_that_cannot_be_written_fails_the_call_and_keeps_the_address(daemon):
    d = daemon
    d.docker("network", "create", "--subnet", "10.249.1.0/24", "dfa")
    d.docker("network", "create", "--subnet", "10.249.2.0/24", "dfb")
    try:
        d.docker("run", "-d", "--name", "web", "--network", "dfa", "--ip", "10.249.1.40", "busybox", "sleep", "600")
        d.docker("network", "connect", "dfb", "web")
        d.docker("stop", "-t", "0", "web")
        assert "10.249.1.40" in leases(d).get("dfa", [])  # kept while stopped
        with disk_filled(d):
            # forgetting the address on dfa means rewriting the reservation (dfb's stays): it fails
            failed_clearly(d.docker("network", "disconnect", "dfa", "web", check=False))
            # and nothing was half done: the address is still held for web
            assert "10.249.1.40" in leases(d).get("dfa", [])
        # nobody else gets the kept address
        r = d.docker("run", "-d", "--name", "thief", "--network", "dfa", "--ip", "10.249.1.40", "busybox",
                     "sleep", "600", check=False)
        assert r.returncode != 0 and "already in use" in r.stderr, r.stderr
        d.docker("rm", "-f", "thief")
        d.docker("start", "web")
        assert ip_of(d, "web", "dfa") == "10.249.1.40"
        # with space back, the disconnect works and frees it
        d.docker("stop", "-t", "0", "web")
        d.docker("network", "disconnect", "dfa", "web")
        assert "dfa" not in leases(d)
    finally:
        d.docker("rm", "-f", "web", "thief", check=False)
        d.docker("network", "rm", "dfa", "dfb", check=False)


def test_stop_on_a_full_disk_keeps_the_address(daemon):
    d = daemon
    d.docker("network", "create", "--subnet", "10.249.3.0/24", "dfc")
    try:
        d.docker("run", "-d", "--name", "keeper", "--network", "dfc", "busybox", "sleep", "600")
        ip = ip_of(d, "keeper", "dfc")
        with disk_filled(d):
            d.docker("stop", "-t", "0", "keeper", check=False)
            assert ip in leases(d).get("dfc", [])  # its lease, or the placeholder of its reservation
        r = d.docker("run", "-d", "--name", "newcomer", "--network", "dfc", "--ip", ip, "busybox", "sleep", "600",
                     check=False)
        assert r.returncode != 0 and "already in use" in r.stderr, r.stderr
        d.docker("start", "keeper")
        assert ip_of(d, "keeper", "dfc") == ip
    finally:
        d.docker("rm", "-f", "keeper", "newcomer", check=False)
        d.docker("network", "rm", "dfc", check=False)
