"""Uploads are never held whole in the daemon's memory (issue 17): `docker
load` of a large archive and `docker import` from stdin stream through the
HTTP server and are spooled to disk; the daemon's peak RSS (VmHWM, reset
before) grows by at most 64 MB. BERTH_TEST_UPLOAD_MB sets the size (default
512; the issue's 2 GB: BERTH_TEST_UPLOAD_MB=2048)."""
import os
import subprocess

import pytest

from engine_daemon import Daemon

MB = int(os.environ.get("BERTH_TEST_UPLOAD_MB", "512"))
LIMIT_KB = 64 * 1024


@pytest.fixture(scope="module")
def daemon(berth_bin):
    d = Daemon(berth_bin)
    try:
        yield d.start()
    finally:
        d.cleanup()


@pytest.fixture(scope="module")
def archive(daemon):
    path = os.path.join(daemon.base, "big.tar")
    mkimage = os.path.join(os.path.dirname(__file__), "..", "..", "scripts", "mkimage")
    subprocess.run(["/usr/bin/python3", mkimage, "--tag", "big:1", "--size", str(MB << 20),
                    "--compression", "none", "--docker-archive", path], check=True, capture_output=True)
    return path


def status_kb(pid, key):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise AssertionError(key)


def peak_growth_kb(d, fn):
    pid = d.proc.pid
    with open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")  # reset VmHWM to the current RSS
    base = status_kb(pid, "VmRSS")
    fn()
    return status_kb(pid, "VmHWM") - base


def test_docker_load_streams(daemon, archive):
    growth = peak_growth_kb(daemon, lambda: daemon.docker("load", "-i", archive, timeout=600))
    assert "big:1" in daemon.docker("images", "--format", "{{.Repository}}:{{.Tag}}").stdout
    assert growth <= LIMIT_KB, f"daemon RSS grew by {growth} kB loading {MB} MB"


def test_docker_import_streams(daemon, archive):
    # any tar works as a rootfs: the archive itself
    growth = peak_growth_kb(daemon, lambda: daemon.docker("import", archive, "imported:1", timeout=600))
    assert "imported:1" in daemon.docker("images", "--format", "{{.Repository}}:{{.Tag}}").stdout
    assert growth <= LIMIT_KB, f"daemon RSS grew by {growth} kB importing {MB} MB"


def test_upload_of_a_broken_archive_is_a_clear_error(daemon):
    r = daemon.docker("load", input="not a tar" * 1000, check=False)
    assert r.returncode != 0
    assert "rror" in r.stderr
    assert daemon.request("GET", "/_ping")[0] == 200
