"""Per-container OCI runtimes, as dockerd's: `berth daemon --add-runtime NAME=PATH`,
the config file's "runtimes", `--default-runtime`; `docker run --runtime NAME`
(docker CLI, docker-py, the berth CLI); GET /info's Runtimes and DefaultRuntime;
inspect's HostConfig.Runtime; the choice kept across daemon restarts and used for
every operation of the container. Real runc (Debian's package) is the external runtime.

One daemon for the module: runc defined by flag, a wrapper around runc
("wrapped", from the config file, with runtimeArgs) and the built-in runtime
as the default.
"""
import json
import os
import shutil
import subprocess
import uuid

import docker
import pytest

from engine_daemon import busybox_daemon, docker_py, wait_for

RUNC = shutil.which("runc") or "/usr/sbin/runc"


def wrapper(base):
    """A runtime that logs its argv to base/wrapped.argv, then is runc."""
    path = os.path.join(base, "runc-wrap")
    with open(path, "w") as f:
        f.write(f'#!/bin/sh\necho "$*" >> {base}/wrapped.argv\nexec {RUNC} "$@"\n')
    os.chmod(path, 0o755)
    return path


@pytest.fixture(scope="module")
def wrapdir(tmp_path_factory):
    """The wrapped runtime, its argv log and the daemon's config file."""
    return str(tmp_path_factory.mktemp("runtimes"))


@pytest.fixture(scope="module")
def daemon(berth_bin, busybox, wrapdir):
    if not os.access(RUNC, os.X_OK):
        pytest.skip("runc not installed")
    cfg = os.path.join(wrapdir, "daemon.json")
    with open(cfg, "w") as f:
        json.dump({"runtimes": {"wrapped": {"path": wrapper(wrapdir), "runtimeArgs": ["--debug"]}},
                   "default-runtime": "berth"}, f)
    with busybox_daemon(berth_bin, busybox, ["--add-runtime", f"runc={RUNC}", "--config-file", cfg]) as d:
        yield d


@pytest.fixture
def client(daemon):
    with docker_py(daemon) as c:
        yield c


def name():
    return "rt" + uuid.uuid4().hex[:10]


def state_on(daemon, runtime, cid):
    """The OCI state of cid as runtime ("runc", "wrapped" or "berth") keeps it, or None."""
    if runtime == "berth":
        cmd = [daemon.bin, "runtime", "--root", os.path.join(daemon.exec_root, "runc"), "state", cid]
    else:
        cmd = [RUNC, "--root", os.path.join(daemon.exec_root, "runtime-" + runtime), "state", cid]
    p = subprocess.run(cmd, capture_output=True, text=True)
    return json.loads(p.stdout)["status"] if p.returncode == 0 else None


def inspect_runtime(daemon, ref):
    return daemon.docker("inspect", "-f", "{{.HostConfig.Runtime}}", ref).stdout.strip()


def test_info_lists_the_runtimes_and_the_default(daemon, client, wrapdir):
    info = client.info()
    assert info["DefaultRuntime"] == "berth"
    assert info["Runtimes"] == {
        "berth": {"path": "berth"},
        "runc": {"path": RUNC},
        "wrapped": {"path": os.path.join(wrapdir, "runc-wrap"), "runtimeArgs": ["--debug"]},
        "io.containerd.runc.v2": {"path": RUNC},  # dockerd's other name of runc
    }
    out = daemon.docker("info", "-f", "{{.DefaultRuntime}} {{range $k, $v := .Runtimes}}{{$k}},{{end}}").stdout
    assert out.strip() == "berth berth,io.containerd.runc.v2,runc,wrapped,"


def test_runc_and_default_containers_side_by_side(daemon):
    """docker run --runtime runc runs on runc, the default on the built-in runtime; every
    operation of each goes to its own runtime."""
    a, b = name(), name()
    daemon.docker("run", "-d", "--runtime", "runc", "--name", a, "busybox", "sleep", "600")
    daemon.docker("run", "-d", "--name", b, "busybox", "sleep", "600")
    ida = daemon.docker("inspect", "-f", "{{.Id}}", a).stdout.strip()
    idb = daemon.docker("inspect", "-f", "{{.Id}}", b).stdout.strip()
    assert (inspect_runtime(daemon, a), inspect_runtime(daemon, b)) == ("runc", "berth")
    assert (state_on(daemon, "runc", ida), state_on(daemon, "berth", ida)) == ("running", None)
    assert (state_on(daemon, "berth", idb), state_on(daemon, "runc", idb)) == ("running", None)
    for c, rt, cid in ((a, "runc", ida), (b, "berth", idb)):
        daemon.docker("pause", c)
        assert state_on(daemon, rt, cid) == "paused"
        daemon.docker("unpause", c)
        assert state_on(daemon, rt, cid) == "running"
        assert "sleep 600" in daemon.docker("top", c).stdout
        assert daemon.docker("exec", c, "echo", "in-" + rt).stdout == f"in-{rt}\n"
        daemon.docker("update", "--pids-limit", "64", c)
        daemon.docker("stop", "-t", "1", c)
        assert daemon.docker("inspect", "-f", "{{.State.Status}}", c).stdout.strip() == "exited"
        wait_for(lambda: state_on(daemon, rt, cid) is None, timeout=60)  # the shim deleted its state
        daemon.docker("rm", c)
    p = daemon.docker("run", "--rm", "--runtime", "runc", "busybox", "sh", "-c", "echo hi; exit 3", check=False)
    assert (p.returncode, p.stdout) == (3, "hi\n")


def test_docker_py_runtime_and_runtime_args(daemon, client, wrapdir):
    """docker-py's runtime=: a runtime from the config file, called with its runtimeArgs first."""
    c = client.containers.run("busybox", "sleep 600", runtime="wrapped", detach=True)
    try:
        assert c.attrs["HostConfig"]["Runtime"] == "wrapped"
        assert state_on(daemon, "wrapped", c.id) == "running"
        c.pause()
        c.unpause()
        with open(os.path.join(wrapdir, "wrapped.argv")) as f:
            lines = [ln for ln in f.read().splitlines() if c.id in ln]
        known = {"create", "start", "pause", "resume", "delete", "kill", "state", "exec", "ps", "update"}
        verbs = [next(w for w in ln.split() if w in known) for ln in lines]
        assert all(ln.startswith("--debug --root ") for ln in lines), lines
        # create and start from the shim, pause and resume from the daemon
        assert verbs[:4] == ["create", "start", "pause", "resume"], verbs
    finally:
        c.remove(force=True)
    d = client.containers.create("busybox", "true")
    try:
        assert d.attrs["HostConfig"]["Runtime"] == "berth"  # the daemon's default
    finally:
        d.remove()


def test_runc_v2_is_dockerds_other_name_of_runc(daemon, client):
    """docker run --runtime io.containerd.runc.v2 (the docker CLI and docker-py) runs on runc,
    in runc's state root, and the container keeps the name it chose, as with dockerd."""
    a = name()
    daemon.docker("run", "-d", "--runtime", "io.containerd.runc.v2", "--name", a, "busybox", "sleep", "600")
    c = client.containers.run("busybox", "sleep 600", runtime="io.containerd.runc.v2", detach=True)
    try:
        ida = daemon.docker("inspect", "-f", "{{.Id}}", a).stdout.strip()
        assert inspect_runtime(daemon, a) == "io.containerd.runc.v2"
        assert c.attrs["HostConfig"]["Runtime"] == "io.containerd.runc.v2"
        for cid in (ida, c.id):
            assert (state_on(daemon, "runc", cid), state_on(daemon, "berth", cid)) == ("running", None)
        daemon.docker("pause", a)
        assert state_on(daemon, "runc", ida) == "paused"
        daemon.docker("unpause", a)
        assert daemon.docker("exec", a, "echo", "v2").stdout == "v2\n"
    finally:
        daemon.docker("rm", "-f", a)
        c.remove(force=True)
    # not every dotted name: containerd's other shims are not runtimes here
    p = daemon.docker("run", "--rm", "--runtime", "io.containerd.runc.v1", "busybox", "true", check=False)
    assert p.returncode == 125 and "Unknown runtime specified io.containerd.runc.v1" in p.stderr, p.stderr


def test_unknown_runtime_is_refused(daemon, client):
    before = daemon.docker("ps", "-aq").stdout
    p = daemon.docker("run", "--runtime", "nope", "busybox", "true", check=False)
    assert p.returncode == 125
    assert "Unknown runtime specified nope" in p.stderr, p.stderr
    with pytest.raises(docker.errors.APIError) as e:
        client.containers.create("busybox", "true", runtime="nope")
    assert e.value.status_code == 400
    assert e.value.explanation == "Unknown runtime specified nope"
    status, body = daemon.json("POST", "/containers/create",
                               {"Image": "busybox", "HostConfig": {"Runtime": 7}})
    assert status == 400, body
    assert daemon.docker("ps", "-aq").stdout == before


def test_berth_cli_runtime(daemon):
    p = daemon.berth("run", "--rm", "--runtime", "runc", "busybox", "sh", "-c", "echo from-runc")
    assert p.stdout == "from-runc\n"
    p = daemon.berth("create", "--runtime", "nope", "busybox", "true", check=False)
    assert p.returncode != 0 and "Unknown runtime specified nope" in p.stderr, p.stderr
    assert "--runtime NAME" in daemon.berth("run", "--help").stdout
    assert " Runtimes: berth io.containerd.runc.v2 runc wrapped\n Default Runtime: berth\n" in \
        daemon.berth("info").stdout


def test_restart_keeps_each_containers_runtime(daemon):
    """The choice is stored with the container: after a daemon restart the running runc
    container is still managed through runc, a created one starts on runc; a run keeps its
    runtime even when the restarted daemon no longer defines it, a new start is refused."""
    run, created, wrapped = name(), name(), name()
    daemon.docker("run", "-d", "--runtime", "runc", "--name", run, "busybox", "sleep", "600")
    daemon.docker("create", "--runtime", "runc", "--name", created, "busybox", "sleep", "600")
    daemon.docker("run", "-d", "--runtime", "wrapped", "--name", wrapped, "busybox", "sleep", "600")
    ids = {c: daemon.docker("inspect", "-f", "{{.Id}}", c).stdout.strip() for c in (run, created, wrapped)}
    saved = daemon.extra_args
    daemon.stop()
    daemon.start()
    try:
        assert [inspect_runtime(daemon, c) for c in (run, created, wrapped)] == ["runc", "runc", "wrapped"]
        daemon.docker("pause", run)
        assert state_on(daemon, "runc", ids[run]) == "paused"
        daemon.docker("unpause", run)
        daemon.docker("start", created)
        assert state_on(daemon, "runc", ids[created]) == "running"
        # a daemon without "wrapped" (no config file): the running one stays manageable; its
        # default is runc by dockerd's other name, which a container naming none records
        daemon.stop()
        daemon.extra_args = ["--add-runtime", f"runc={RUNC}", "--default-runtime", "io.containerd.runc.v2"]
        daemon.start()
        assert daemon.json("GET", "/info")[1]["DefaultRuntime"] == "io.containerd.runc.v2"
        dflt = daemon.docker("run", "-d", "busybox", "sleep", "600").stdout.strip()
        assert inspect_runtime(daemon, dflt) == "io.containerd.runc.v2"
        assert state_on(daemon, "runc", dflt) == "running"
        daemon.docker("rm", "-f", dflt)
        assert "sleep 600" in daemon.docker("top", wrapped).stdout
        daemon.docker("stop", "-t", "1", wrapped)
        wait_for(lambda: state_on(daemon, "wrapped", ids[wrapped]) is None, timeout=60)
        p = daemon.docker("start", wrapped, check=False)
        assert p.returncode != 0 and "unknown or invalid runtime name: wrapped" in p.stderr, p.stderr
        assert daemon.docker("inspect", "-f", "{{.State.Status}}", wrapped).stdout.strip() == "exited"
    finally:
        daemon.stop()
        daemon.extra_args = saved
        daemon.start()
        daemon.docker("rm", "-f", run, created, wrapped)
    for c, rt in ((run, "runc"), (created, "runc"), (wrapped, "wrapped")):
        assert state_on(daemon, rt, ids[c]) is None


def test_crash_during_a_runc_start_is_cleaned_up_through_runc(daemon):
    """kill -9 of the daemon right after runc started a container, before the start was
    recorded: the next daemon deletes it through runc (its shim.json's runtime), and the
    container, still 'created' and still runc's, starts on runc."""
    c = name()
    daemon.docker("create", "--runtime", "runc", "--name", c, "busybox", "sleep", "600")
    cid = daemon.docker("inspect", "-f", "{{.Id}}", c).stdout.strip()
    daemon.stop()
    os.environ["BERTH_TEST_CRASH_AT"] = "start-started"
    try:
        daemon.start()
    finally:
        os.environ.pop("BERTH_TEST_CRASH_AT", None)
    try:
        with pytest.raises(Exception):
            daemon.request("POST", f"/containers/{cid}/start")
        daemon.proc.wait(timeout=30)
        assert daemon.proc.returncode == -9, "the daemon did not crash at the point"
        daemon.proc = None
        daemon.start()
        assert daemon.docker("inspect", "-f", "{{.State.Status}}", c).stdout.strip() == "created"
        assert state_on(daemon, "runc", cid) is None
        assert not os.path.exists(os.path.join(daemon.exec_root, "runtime-runc", cid))
        daemon.docker("start", c)
        assert state_on(daemon, "runc", cid) == "running"
    finally:
        if daemon.proc is None:
            daemon.start()
        daemon.docker("rm", "-f", c)


@pytest.mark.parametrize("args, config, msg", [
    (["--add-runtime", "runc"], None, "invalid runtime argument: runc"),
    (["--add-runtime", "=/usr/sbin/runc"], None, "invalid runtime argument: =/usr/sbin/runc"),
    (["--add-runtime", "crun="], None, "invalid runtime argument: crun="),
    (["--add-runtime", "a=/x", "--add-runtime", "A=/y"], None, "runtime 'a' was already defined"),
    (["--add-runtime", "berth=/x"], None, "runtime name 'berth' is reserved"),
    (["--add-runtime", "a/b=/x"], None, "invalid runtime name 'a/b'"),
    (["--default-runtime", "nope"], None, "specified default runtime 'nope' does not exist"),
    (["--runtime-path", "/x", "--add-runtime", "runc=/y"], None,
     "--runtime-path: runtime 'runc' was already defined"),
    (["--add-runtime", "a=/x"], {"runtimes": {"a": {"path": "/y"}}},
     "config key 'runtimes': runtime 'a' was already defined"),
    ([], {"runtimes": {"gv": {"runtimeType": "io.containerd.runsc.v1"}}}, "'runtimeType' is not supported"),
    ([], {"runtimes": {"gv": {}}}, "runtime 'gv': a path must be configured"),
    ([], {"default-runtime": "gv"}, "specified default runtime 'gv' does not exist"),
    (["--default-runtime", "io.containerd.runc.v1"], None,
     "specified default runtime 'io.containerd.runc.v1' does not exist"),
])
def test_daemon_refuses_bad_runtime_options(berth_bin, tmp_path, args, config, msg):
    if config is not None:
        (tmp_path / "daemon.json").write_text(json.dumps(config))
        args = [*args, "--config-file", str(tmp_path / "daemon.json")]
    p = subprocess.run([berth_bin, "daemon", "--root", str(tmp_path / "root"), "--exec-root",
                        str(tmp_path / "run"), "--bridge", "none", *args],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 1, p
    assert p.stderr.startswith("berth daemon") and msg in p.stderr, p.stderr
    assert not (tmp_path / "root").exists()  # refused before anything was made
