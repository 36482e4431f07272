"""Bodies and responses are never held whole in the daemon's memory (issue
17): `docker load`, `docker import`, build contexts and `docker cp` into a
container stream through the HTTP server and are spooled to disk; the
daemon's peak RSS (VmHWM, reset before) grows by at most 64 MB. `docker save`
and `docker export` are assembled in a file under the root, not in a memfd
(RAM: the machine's Shmem would grow by the archive's size). BERTH_TEST_UPLOAD_MB
sets the size (default 512; the issue's 2 GB: BERTH_TEST_UPLOAD_MB=2048)."""
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


def test_build_context_streams(daemon, archive):
    ctx = os.path.join(daemon.base, "ctx")
    os.makedirs(ctx, exist_ok=True)
    os.link(archive, os.path.join(ctx, "big.tar"))  # in the context, not used by the Dockerfile
    with open(os.path.join(ctx, "Dockerfile"), "w") as f:
        f.write("FROM big:1\nLABEL streamed=yes\n")
    growth = peak_growth_kb(daemon, lambda: daemon.docker("build", "-q", "-t", "ctx:1", ctx, timeout=600))
    assert daemon.docker("inspect", "-f", "{{.Config.Labels.streamed}}", "ctx:1").stdout.strip() == "yes"
    assert growth <= LIMIT_KB, f"daemon RSS grew by {growth} kB for a {MB} MB build context"


@pytest.fixture(scope="module")
def container(daemon, archive):
    cid = daemon.docker("create", "big:1", "true").stdout.strip()
    return cid


def test_docker_cp_into_a_container_streams(daemon, archive, container):
    growth = peak_growth_kb(daemon, lambda: daemon.docker("cp", archive, f"{container}:/copied.tar", timeout=600))
    assert growth <= LIMIT_KB, f"daemon RSS grew by {growth} kB copying {MB} MB into a container"
    st, _, h = daemon.request("HEAD", f"/containers/{container}/archive?path=/copied.tar")
    assert st == 200


def shmem_kb():
    for line in open("/proc/meminfo"):
        if line.startswith("Shmem:"):
            return int(line.split()[1])
    raise AssertionError("Shmem")


@pytest.mark.parametrize("path", ["/images/big:1/get", "/containers/{cid}/export"])
def test_save_and_export_are_not_assembled_in_memory(daemon, container, path):
    """The answer is assembled before it is sent; half way through reading it, neither the
    daemon's RSS nor the machine's shared memory (a memfd) holds it."""
    from engine_daemon import UnixHTTPConnection
    pid = daemon.proc.pid
    with open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")
    base_rss, base_shm = status_kb(pid, "VmRSS"), shmem_kb()
    conn = UnixHTTPConnection(daemon.sock, timeout=600)
    try:
        conn.request("GET", path.format(cid=container))
        resp = conn.getresponse()
        assert resp.status == 200
        assert len(resp.read(1 << 20)) == 1 << 20
        shm_growth = shmem_kb() - base_shm
        total = 1 << 20
        while chunk := resp.read(1 << 20):
            total += len(chunk)
    finally:
        conn.close()
    assert total >= MB << 20
    rss_growth = status_kb(pid, "VmHWM") - base_rss
    assert rss_growth <= LIMIT_KB, f"daemon RSS grew by {rss_growth} kB sending {total >> 20} MB"
    assert shm_growth <= (MB << 10) // 2, f"shared memory grew by {shm_growth} kB sending {total >> 20} MB"


def test_upload_of_a_broken_archive_is_a_clear_error(daemon):
    r = daemon.docker("load", input="not a tar" * 1000, check=False)
    assert r.returncode != 0
    # dockerd answers 200 with the error in the stream, which the docker CLI prints as is (no "Error")
    assert "not an image archive" in r.stderr, r.stderr
    assert daemon.request("GET", "/_ping")[0] == 200
