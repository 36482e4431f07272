"""State on disk is private (issue 18, item 2): as another user (nobody), nothing
under the daemon's root, its exec root or the registry's storage is readable,
and neither a container's environment secret nor a build secret can be read
anywhere there. Also, as root, the state files themselves are 0600 (logs 0640),
the roots 0710 like dockerd's, and a build secret reaches no file at all.
Containers running as a non-root user keep working: their rootfs, volumes and
/etc files reach them through mounts made by root.

The temp bases are opened up (0755) first, so only berth's own modes protect
the state, as under /var/lib.
"""
import json
import os
import stat
import subprocess
import uuid

import pytest

from conftest import run
from engine_daemon import Daemon
from test_build_exec import context
from test_registry_support import RegistryFactory

ENV_SECRET = "API_TOKEN=envsecret-" + uuid.uuid4().hex
BUILD_SECRET = "buildsecret-" + uuid.uuid4().hex

# Runs as nobody: walk the trees, report every file it could open and any secret it saw.
WALKER = r"""
import json, os, sys
needles = [n.encode() for n in sys.argv[1].split(",")]
readable, leaks, listed = [], [], []
for top in sys.argv[2:]:
    for d, dirs, files in os.walk(top, onerror=lambda e: None):
        listed.append(d)
        for f in files:
            p = os.path.join(d, f)
            try:
                if os.path.islink(p):
                    continue
                with open(p, "rb") as fh:
                    data = fh.read(64 << 20)
            except OSError:
                continue
            readable.append(p)
            leaks += [p for n in needles if n in data]
print(json.dumps({"readable": readable, "leaks": leaks, "listed": listed}))
"""


def as_nobody(*argv):
    return run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *argv])


@pytest.fixture(scope="module")
def setup(berth_bin, busybox, tmp_path_factory):
    reg_f = RegistryFactory()
    d = Daemon(berth_bin)
    try:
        os.chmod(d.base, 0o755)
        reg = reg_f()
        os.chmod(reg.base, 0o755)
        d.start()
        d.load_busybox(busybox)
        d.docker("run", "-d", "--name", "withenv", "-e", ENV_SECRET, "busybox", "sh", "-c",
                 "echo started; exec sleep 600")
        d.docker("run", "--name", "exited", "-e", ENV_SECRET, "busybox", "sh", "-c", "echo $API_TOKEN | wc -c")
        d.docker("volume", "create", "vol")
        tmp = tmp_path_factory.mktemp("ctx")
        sec = tmp / "tok"
        sec.write_text(BUILD_SECRET)
        df = ("FROM busybox\n"
              "RUN --mount=type=secret,id=tok wc -c /run/secrets/tok > /len\n"
              "RUN --mount=type=secret,id=tok,env=TOK test -n \"$TOK\" && echo ok > /ok\n")
        d.berth("build", "-t", "sec:built", "--secret", f"id=tok,src={sec}", context(tmp, df), timeout=120)
        ref = f"{reg.host}/private/built:v1"
        d.docker("tag", "sec:built", ref)
        d.berth("push", ref, timeout=120)
        yield d, reg
    finally:
        d.cleanup()
        reg_f.close()


def trees(d, reg):
    return [d.root, d.exec_root, reg.root]


def test_nobody_reads_nothing_and_finds_no_secret(setup):
    d, reg = setup
    out = json.loads(as_nobody("/usr/bin/python3", "-c", WALKER, f"{ENV_SECRET},{BUILD_SECRET}",
                               *trees(d, reg)).stdout)
    assert out["leaks"] == []
    assert out["readable"] == []


def test_roots_are_0710_and_registry_storage_0700(setup):
    d, reg = setup
    assert stat.S_IMODE(os.stat(d.root).st_mode) == 0o710
    assert stat.S_IMODE(os.stat(d.exec_root).st_mode) == 0o710
    assert stat.S_IMODE(os.stat(reg.root).st_mode) == 0o700


def state_files(d, reg):
    """Files holding state (not image content, not what is mounted into containers)."""
    skip_dirs = {os.path.join(d.root, x) for x in ("snapshots", "content", "tmp", "volumes")}
    mounted = {"hosts", "hostname", "resolv.conf"}
    for top in trees(d, reg):
        for dpath, dirs, files in os.walk(top):
            dirs[:] = [x for x in dirs if os.path.join(dpath, x) not in skip_dirs
                       and not os.path.ismount(os.path.join(dpath, x))]
            for f in files:
                p = os.path.join(dpath, f)
                st = os.lstat(p)
                if stat.S_ISREG(st.st_mode) and f not in mounted:
                    yield p, stat.S_IMODE(st.st_mode)


def test_state_files_are_private(setup):
    d, reg = setup
    found = dict(state_files(d, reg))
    names = {os.path.basename(p) for p in found}
    assert {"berth.db", "berth.db-wal", "image.db", "cache.db"} <= names, sorted(names)
    bad = {p: oct(m) for p, m in found.items()
           if m & (0o037 if p.endswith(".log") else 0o077)}
    assert bad == {}


def test_env_secret_only_in_private_files_and_build_secret_nowhere(setup):
    d, reg = setup
    holders = []
    for top in trees(d, reg):
        for dpath, dirs, files in os.walk(top):
            dirs[:] = [x for x in dirs if not os.path.ismount(os.path.join(dpath, x))]
            for f in files:
                p = os.path.join(dpath, f)
                if os.path.islink(p) or not os.path.isfile(p):
                    continue
                data = open(p, "rb").read()
                assert BUILD_SECRET.encode() not in data, p
                if ENV_SECRET.encode() in data:
                    holders.append((p, oct(stat.S_IMODE(os.stat(p).st_mode))))
    assert holders, "the env secret should be recorded somewhere (the container's config)"
    assert all(m == "0o600" for _, m in holders), holders


def test_non_root_user_containers_still_work(setup):
    d, _ = setup
    p = d.docker("run", "--rm", "--user", "1000:1000", "-v", "vol:/data", "--tmpfs", "/scratch",
                 "busybox", "sh", "-c",
                 "id -u; cat /etc/hostname >/dev/null && grep -q localhost /etc/hosts && ls /data >/dev/null "
                 "&& ls /bin/sh && echo w > /scratch/f && cat /scratch/f")
    assert p.stdout.splitlines()[0] == "1000" and p.stdout.endswith("/bin/sh\nw\n"), p.stdout
    p = d.docker("exec", "--user", "1000", "withenv", "sh", "-c", "id -u; cat /etc/hostname")
    assert p.stdout.startswith("1000\n")
    assert d.docker("logs", "withenv").stdout == "started\n"
    p = d.docker("run", "--rm", "--user", "1000", "sec:built", "cat", "/len", "/ok")
    assert p.stdout.endswith("ok\n")


def test_existing_install_is_tightened_at_open(berth_bin):
    d = Daemon(berth_bin)
    try:
        os.chmod(d.base, 0o755)
        d.start()
        d.stop()
        db = os.path.join(d.root, "berth.db")
        for p, m in ((d.root, 0o711), (d.exec_root, 0o711), (db, 0o644), (os.path.join(d.root, "image.db"), 0o644)):
            os.chmod(p, m)
        d.start()
        assert stat.S_IMODE(os.stat(d.root).st_mode) == 0o710
        assert stat.S_IMODE(os.stat(d.exec_root).st_mode) == 0o710
        for f in ("berth.db", "berth.db-wal", "berth.db-shm", "image.db"):
            p = os.path.join(d.root, f)
            if os.path.exists(p):
                assert stat.S_IMODE(os.stat(p).st_mode) == 0o600, f
    finally:
        d.cleanup()
