"""kill -9 of the daemon at exact points of create, start and rm (issue 18,
item 4): after a restart the container exists fully or not at all, and
nothing of it is left over: no process, mount, cgroup, runtime state or
directory. The daemon SIGKILLs itself where $BERTH_TEST_CRASH_AT says
(common/util.h util_crash_point), so no timing is involved."""
import glob
import json
import os

import pytest

from conftest import mounts_under
from engine_daemon import Daemon


@pytest.fixture(scope="module")
def daemon(berth_bin, busybox):
    d = Daemon(berth_bin)
    try:
        d.start()
        d.load_busybox(busybox)
        yield d
    finally:
        os.environ.pop("BERTH_TEST_CRASH_AT", None)
        d.cleanup()


def restart_crashing_at(d, point):
    d.stop()
    os.environ["BERTH_TEST_CRASH_AT"] = point
    try:
        d.start()
    finally:
        os.environ.pop("BERTH_TEST_CRASH_AT", None)


def crashed_then_restarted(d):
    d.proc.wait(timeout=30)
    assert d.proc.returncode == -9, "the daemon did not crash at the point"
    d.proc = None
    d.start()


def processes_of(d):
    """Processes whose command line names this daemon's exec root (shims, runtimes)."""
    found = []
    for p in glob.glob("/proc/[0-9]*/cmdline"):
        try:
            cmd = open(p, "rb").read()
        except OSError:
            continue
        if d.exec_root.encode() in cmd and str(d.proc.pid) != p.split("/")[2]:
            found.append(cmd)
    return found


def leftovers(d, cid):
    out = []
    if cid:
        out += glob.glob(f"/sys/fs/cgroup/*/berth/{cid}") + glob.glob(f"/sys/fs/cgroup/berth/{cid}")
        out += glob.glob(os.path.join(d.exec_root, "runc", cid))
    out += processes_of(d)
    out += mounts_under(d.base)
    return out


def ids(d):
    return {c["Id"]: c["State"] for c in d.json("GET", "/containers/json?all=1")[1]}


def created_id(d, name):
    st, body = d.json("POST", f"/containers/create?name={name}", {"Image": "busybox", "Cmd": ["sleep", "600"]})
    assert st == 201, body
    return body["Id"]


def test_crash_while_creating_leaves_no_container(daemon):
    d = daemon
    before = set(os.listdir(os.path.join(d.root, "containers")))
    restart_crashing_at(d, "create-dir")
    with pytest.raises(Exception):
        d.json("POST", "/containers/create?name=c-create", {"Image": "busybox", "Cmd": ["true"]})
    crashed_then_restarted(d)
    assert not any(c for c in ids(d))
    assert set(os.listdir(os.path.join(d.root, "containers"))) == before
    assert leftovers(d, None) == []


@pytest.mark.parametrize("point", ["start-snapshot", "start-shim", "start-started"])
def test_crash_while_starting_leaves_a_created_container(daemon, point):
    d = daemon
    restart_crashing_at(d, point)
    cid = created_id(d, "c-" + point)
    with pytest.raises(Exception):
        d.request("POST", f"/containers/{cid}/start")
    crashed_then_restarted(d)
    assert ids(d) == {cid: "created"}
    assert leftovers(d, cid) == []
    # and it works: start, exec, remove
    assert d.request("POST", f"/containers/{cid}/start")[0] == 204
    assert d.docker("exec", cid, "echo", "alive").stdout == "alive\n"
    assert d.request("DELETE", f"/containers/{cid}?force=1")[0] == 204
    assert ids(d) == {}
    assert leftovers(d, cid) == []


@pytest.mark.parametrize("point", ["rm-marked", "rm-snapshot"])
def test_crash_while_removing_finishes_the_removal(daemon, point):
    d = daemon
    restart_crashing_at(d, point)
    cid = created_id(d, "c-" + point)
    assert d.request("POST", f"/containers/{cid}/start")[0] == 204
    with pytest.raises(Exception):
        d.request("DELETE", f"/containers/{cid}?force=1")
    crashed_then_restarted(d)
    assert ids(d) == {}
    assert leftovers(d, cid) == []
    assert not os.path.exists(os.path.join(d.root, "containers", cid))
    # the name is free again
    cid2 = created_id(d, "c-" + point)
    assert d.request("DELETE", f"/containers/{cid2}")[0] == 204


def test_crash_before_an_rm_containers_removal_finishes_it(daemon):
    """An --rm container exited, its rootfs still mounted (the removal unmounts it), the daemon killed
    before the removal began: the next start removes it (as dockerd) and nothing is left mounted."""
    d = daemon
    restart_crashing_at(d, "rm-auto")
    st, body = d.json("POST", "/containers/create?name=c-rm-auto",
                      {"Image": "busybox", "Cmd": ["true"], "HostConfig": {"AutoRemove": True, "NetworkMode": "none"}})
    assert st == 201, body
    cid = body["Id"]
    try:
        d.request("POST", f"/containers/{cid}/start")
    except Exception:
        pass  # the daemon may die before it answers
    crashed_then_restarted(d)
    assert ids(d) == {}
    assert leftovers(d, cid) == []
    assert not os.path.exists(os.path.join(d.root, "containers", cid))
