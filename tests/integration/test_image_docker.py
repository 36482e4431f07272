"""Round trips with the real docker (one private dockerd per session):
`docker save` -> berth load and berth save -> `docker load` keep the image ID
and the filesystem."""
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import time

import pytest

from conftest import run
from test_image_store import store, tree


@pytest.fixture(scope="session")
def dockerd():
    base = tempfile.mkdtemp(prefix="berth-it-dockerd-")
    sock = os.path.join(base, "d.sock")
    log = open(os.path.join(base, "log"), "w")
    proc = subprocess.Popen(
        ["dockerd", "--data-root", os.path.join(base, "data"), "--exec-root", os.path.join(base, "exec"),
         "-H", "unix://" + sock, "--pidfile", os.path.join(base, "pid"), "--bridge=none",
         "--iptables=false", "--ip6tables=false", "--storage-driver=overlay2"],
        stdout=log, stderr=log)
    env = dict(os.environ, DOCKER_HOST="unix://" + sock)
    try:
        end = time.monotonic() + 30
        while subprocess.run(["docker", "version"], env=env, capture_output=True).returncode != 0:
            if proc.poll() is not None or time.monotonic() > end:
                pytest.fail("dockerd did not start: " + open(os.path.join(base, "log")).read()[-2000:])
            time.sleep(0.2)
        yield env
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        subprocess.run(["umount", "-R", "-l", os.path.join(base, "data")], capture_output=True)
        subprocess.run(["umount", "-R", "-l", os.path.join(base, "exec")], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def docker(env, *args, **kw):
    return run(["docker", *args], env=env, **kw)


def docker_rootfs(env, image, dest):
    """Filesystem of an image as docker sees it (docker create + export)."""
    cid = docker(env, "create", image, "sh").stdout.strip()
    try:
        tarpath = dest + ".tar"
        docker(env, "export", "-o", tarpath, cid)
        os.makedirs(dest)
        run(["tar", "-xpf", tarpath, "-C", dest, "--numeric-owner"])
    finally:
        docker(env, "rm", cid)
    # docker adds its mount points for the container; drop them
    for extra in (".dockerenv", "etc/hosts", "etc/hostname", "etc/resolv.conf", "dev/console", "dev/pts", "dev/shm",
                  "proc", "sys"):
        p = os.path.join(dest, extra)
        if os.path.isdir(p) and not os.path.islink(p) and not os.listdir(p):
            continue
        if os.path.lexists(p) and not os.path.isdir(p):
            os.unlink(p)
    return dest


def comparable(t):
    ignore = ("etc/hosts", "etc/hostname", "etc/resolv.conf", "etc/mtab", ".dockerenv", "dev/console", "dev/pts", "dev/shm",
              "dev", "proc", "sys")
    return {k: v for k, v in t.items() if k not in ignore and not k.startswith(("dev/", "proc/", "sys/"))}


def test_docker_save_loads_into_berth(berth, dockerd, images, workdir):
    img = images.make(name="layered", tag="layered:1", layers=2, whiteouts=True)
    docker(dockerd, "load", "-i", img["docker_archive"])
    saved = os.path.join(workdir, "from-docker.tar")
    docker(dockerd, "save", "-o", saved, "layered:1")
    p = store(berth, "load", "-q", "-i", saved)
    assert "Loaded image: layered:1" in p.stdout
    info = json.loads(store(berth, "inspect", "layered:1").stdout)[0]
    dinfo = json.loads(docker(dockerd, "image", "inspect", "layered:1").stdout)[0]
    assert info["Id"] == dinfo["Id"] == img["id"]
    assert info["RootFS"]["Layers"] == dinfo["RootFS"]["Layers"]
    rootfs = store(berth, "mount", "--image", "layered:1", "dk1").stdout.strip()
    try:
        mine = comparable(tree(rootfs, attrs=True))
        theirs = comparable(tree(docker_rootfs(dockerd, "layered:1", os.path.join(workdir, "docker-rootfs")),
                                 attrs=True))
        assert mine == theirs
    finally:
        store(berth, "unmount", "--rm", "dk1")


def test_berth_save_loads_into_docker(berth, dockerd, images, workdir):
    img = images.make(name="saveme", tag="saveme:2", layers=1, whiteouts=True)
    store(berth, "load", "-q", "-i", img["oci_archive"])
    out = os.path.join(workdir, "from-berth.tar")
    store(berth, "save", "-o", out, "saveme:2")
    p = docker(dockerd, "load", "-i", out)
    assert "saveme:2" in p.stdout
    dinfo = json.loads(docker(dockerd, "image", "inspect", "saveme:2").stdout)[0]
    assert dinfo["Id"] == img["id"]
    rootfs = store(berth, "mount", "--image", "saveme:2", "dk2").stdout.strip()
    try:
        mine = comparable(tree(rootfs, attrs=True))
        theirs = comparable(tree(docker_rootfs(dockerd, "saveme:2", os.path.join(workdir, "docker-rootfs2")),
                                 attrs=True))
        assert mine == theirs
    finally:
        store(berth, "unmount", "--rm", "dk2")
