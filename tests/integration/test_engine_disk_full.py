"""A full disk under the daemon's root (issues 17 and 18 item 3): the root is a
64 MB tmpfs mounted by the fixture (unmounted always). Reads keep working,
writes fail with a clear error that the docker CLI and docker-py show, the
daemon keeps serving, a container's real exit code is kept, `rm -f` frees its
snapshot, and once space is freed everything works again, also after a
daemon restart."""
import contextlib
import glob
import os
import subprocess

import docker
import pytest

from conftest import unmount_all
from engine_daemon import Daemon

FULL = ("database or disk is full", "No space left on device")


@pytest.fixture(scope="module")
def daemon(berth_bin, busybox):
    d = Daemon(berth_bin)
    os.makedirs(d.root)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m,mode=0710", "berth-disk-full", d.root], check=True)
    try:
        d.start()
        d.load_busybox(busybox)
        yield d
    finally:
        try:
            if d.proc and d.proc.poll() is None:
                d.remove_all()
            d.stop()
        finally:
            unmount_all(d.root)
            d.cleanup()


def free_kb(d):
    st = os.statvfs(d.root)
    return st.f_bavail * st.f_frsize // 1024


@contextlib.contextmanager
def disk_filled(d):
    """Fill the root's file system to the last block with a file of our own, removed afterwards."""
    path = os.path.join(d.root, "filler")
    try:
        subprocess.run(["dd", "if=/dev/zero", f"of={path}", "bs=1M"], capture_output=True)
        assert free_kb(d) == 0
        yield
    finally:
        os.unlink(path)


def failed_clearly(r):
    assert r.returncode != 0, r
    assert any(m in r.stderr for m in FULL), r.stderr


def snapshots(d):
    return {os.path.basename(p) for p in glob.glob(os.path.join(d.root, "image", "snapshots", "*"))}


def test_container_filling_the_disk(daemon):
    d = daemon
    cid = d.docker("run", "-d", "busybox", "sh", "-c", "dd if=/dev/zero of=/fill bs=1M; exit 3").stdout.strip()
    assert d.docker("wait", cid, timeout=120).stdout.strip() == "3"  # its own exit code, not 137
    assert free_kb(d) == 0
    # reads work
    assert "busybox" in d.docker("images").stdout
    assert cid[:12] in d.docker("ps", "-a").stdout
    assert d.docker("inspect", "-f", "{{.State.ExitCode}}", cid).stdout.strip() == "3"
    # writes fail with the reason, in both clients
    failed_clearly(d.docker("create", "busybox", "true", check=False))
    client = docker.DockerClient(base_url=d.host)
    with pytest.raises(docker.errors.APIError, match="disk is full"):
        client.containers.create("busybox", "true")
    # rm -f frees its snapshot
    d.docker("rm", "-f", cid)
    assert cid not in snapshots(d)
    assert free_kb(d) > 32 * 1024
    assert d.docker("run", "--rm", "busybox", "echo", "works").stdout == "works\n"
    # a restart finds what the API showed
    d.stop()
    d.start()
    assert d.docker("ps", "-aq").stdout == ""
    assert not any(len(s) == 64 and s == cid for s in snapshots(d))


def test_writes_on_a_full_disk_fail_clearly_and_work_after(daemon, images):
    d = daemon
    small = images.make(name="diskfull-small", tag="small:1", size=2 << 20)
    keep = d.docker("create", "--name", "keep", "busybox", "sh", "-c", "echo hello; sleep 600").stdout.strip()
    d.docker("start", keep)
    ctx = os.path.join(d.base, "ctx")
    os.makedirs(ctx, exist_ok=True)
    with open(os.path.join(ctx, "Dockerfile"), "w") as f:
        f.write("FROM busybox\nRUN echo built > /built\n")
    with open(os.path.join(d.base, "file.txt"), "w") as f:
        f.write("copied\n")
    with disk_filled(d):
        failed_clearly(d.docker("create", "--name", "new", "busybox", "true", check=False))
        failed_clearly(d.docker("load", "-i", small["docker_archive"], check=False))
        failed_clearly(d.docker("commit", keep, "committed:1", check=False))
        failed_clearly(d.docker("volume", "create", "vol1", check=False))
        failed_clearly(d.docker("rename", "keep", "kept", check=False))
        r = d.docker("build", "-t", "built:1", ctx, check=False)
        assert r.returncode != 0
        assert any(m in r.stdout + r.stderr for m in FULL), r.stdout + r.stderr
        r = d.docker("exec", keep, "sh", "-c", "seq 1 100000", check=False)  # the log grows: lines are dropped
        # the daemon still serves
        assert "keep" in d.docker("ps").stdout
        assert "new" not in d.docker("ps", "-a").stdout
    # every one works once space is back
    d.docker("create", "--name", "new", "busybox", "true")
    d.docker("load", "-i", small["docker_archive"])
    d.docker("commit", keep, "committed:1")
    d.docker("volume", "create", "vol1")
    d.docker("rename", "keep", "kept")
    d.docker("build", "-q", "-t", "built:1", ctx)
    d.docker("cp", os.path.join(d.base, "file.txt"), "kept:/file.txt")
    assert d.docker("exec", "kept", "cat", "/file.txt").stdout == "copied\n"
    assert d.docker("run", "--rm", "built:1", "cat", "/built").stdout == "built\n"
    assert "hello" in d.docker("logs", "kept").stdout  # the log is still readable whole
    d.stop()
    d.start()
    names = d.docker("ps", "-a", "--format", "{{.Names}}").stdout.split()
    assert sorted(names) == ["kept", "new"]
    tags = d.docker("images", "--format", "{{.Repository}}:{{.Tag}}").stdout.split()
    assert {"small:1", "committed:1", "built:1"} <= set(tags)
    d.docker("rm", "-f", "kept", "new")


def test_cp_into_a_container_on_a_full_disk(daemon):
    d = daemon
    cid = d.docker("run", "-d", "busybox", "sleep", "600").stdout.strip()
    big = os.path.join(d.base, "big.bin")
    with open(big, "wb") as f:
        f.write(os.urandom(1 << 20))
    with disk_filled(d):
        r = d.docker("cp", big, f"{cid}:/big.bin", check=False)
        failed_clearly(r)
        assert d.docker("exec", cid, "echo", "alive").stdout == "alive\n"
    d.docker("cp", big, f"{cid}:/big.bin")
    assert d.docker("exec", cid, "md5sum", "/big.bin").stdout.split()[0] == \
        subprocess.run(["md5sum", big], capture_output=True, text=True).stdout.split()[0]
    d.docker("rm", "-f", cid)
