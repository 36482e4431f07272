"""Fourth compatibility round: differences from dockerd (moby) a review found, each checked
with the docker CLI or docker-py.

One daemon for the module (engine_daemon.busybox_daemon, no container networking unless a
test says so); each test removes what it made.
"""
import json
import time
import uuid

import pytest

from conftest import run
from engine_daemon import busybox_daemon, docker_py, wait_for


@pytest.fixture(scope="module")
def daemon(berth_bin, busybox):
    with busybox_daemon(berth_bin, busybox) as d:
        yield d


@pytest.fixture
def client(daemon):
    with docker_py(daemon) as c:
        yield c


@pytest.fixture(scope="module")
def sleeper(daemon):
    """A running container the tests exec into."""
    c = "sleeper" + uuid.uuid4().hex[:6]
    daemon.docker("run", "-d", "--init", "--name", c, "busybox", "sleep", "600")
    yield c
    daemon.docker("rm", "-f", c)


def name():
    return "t" + uuid.uuid4().hex[:10]


def out(daemon, *args):
    return daemon.docker(*args).stdout


# ---- exec ----

def test_exec_in_a_missing_workdir_exits_126_with_the_runtimes_message(daemon, client, sleeper):
    """dockerd: the runtime refuses the start (runc checks the cwd before it reports the process
    started), 126 and "OCI runtime exec failed"; berth's runtime failed after, 127."""
    p = daemon.docker("exec", "-w", "/missing", sleeper, "true", check=False)
    assert p.returncode == 126, p
    assert ('OCI runtime exec failed: exec failed: unable to start container process: chdir to cwd '
            '("/missing") set in config.json failed: no such file or directory: unknown') in p.stdout + p.stderr, p
    r = client.containers.get(sleeper).exec_run("true", workdir="/etc/passwd")
    assert r.exit_code == 126 and b"not a directory" in r.output, r
    assert client.containers.get(sleeper).exec_run("pwd", workdir="/etc").output == b"/etc\n"


def test_exec_events_name_the_command_and_exec_die_has_the_exit_code(daemon, client, sleeper):
    since = time.time()
    r = client.containers.get(sleeper).exec_run(["sh", "-c", "exit 3"])
    assert r.exit_code == 3
    daemon.docker("exec", "-d", sleeper, "true")
    x = client.api.exec_create(sleeper, ["true"])["Id"]
    client.api.exec_start(x, detach=True)
    # a detached exec's exit is noticed without anyone asking for it

    def events(*filters):
        args = ["events", "--since", "%.6f" % since, "--until", "%.6f" % time.time(),
                "--format", "{{.Action}}|{{.Actor.Attributes.execID}}|{{.Actor.Attributes.exitCode}}"]
        for f in filters:
            args += ["--filter", f]
        return out(daemon, *args).splitlines()

    assert wait_for(lambda: len(events("event=exec_die")) == 3, timeout=30)
    got = events("container=" + sleeper)
    by_exec = {}
    for g in got:
        action, xid, _ = g.split("|")
        by_exec.setdefault(xid, []).append(action)
    assert sorted(by_exec.values()) == [
        ["exec_create: sh -c exit 3", "exec_start: sh -c exit 3", "exec_die"],
        ["exec_create: true ", "exec_start: true ", "exec_die"],
        ["exec_create: true ", "exec_start: true ", "exec_die"]], got
    die = events("event=exec_die")
    assert sorted(d.split("|")[2] for d in die) == ["0", "0", "3"], die
    assert x in [d.split("|")[1] for d in die]
    # exec_create and exec_start select by prefix (dockerd's fuzzy match), other actions exactly
    assert len(events("event=exec_create")) == 3
    assert len(events("event=exec_start", "event=exec_die")) == 6
    assert events("event=exec") == [] and events("event=exec_di") == []



def test_health_probes_log_exec_events_with_the_probe_command(daemon):
    """dockerd runs each HEALTHCHECK probe through its exec machinery (daemon/health.go): every
    probe logs exec_create and exec_start with the probe's command, and exec_die with its code."""
    c = name()
    since = time.time()
    daemon.docker("run", "-d", "--name", c, "--health-cmd", "test -d /", "--health-interval", "100ms",
                  "busybox", "sleep", "600")
    try:
        def events(*filters):
            args = ["events", "--since", "%.6f" % since, "--until", "%.6f" % time.time(),
                    "--filter", "container=" + c, "--format",
                    "{{.Action}}|{{.Actor.Attributes.execID}}|{{.Actor.Attributes.exitCode}}"]
            for f in filters:
                args += ["--filter", f]
            return out(daemon, *args).splitlines()

        assert wait_for(lambda: len(events("event=exec_die")) >= 2, timeout=60)
        got = events()
        assert "health_status: healthy|<no value>|<no value>" in got, got
        by_exec = {}
        for g in got:
            action, xid, code = g.split("|")
            if xid != "<no value>":
                by_exec.setdefault(xid, []).append((action, code))
        done = [v for v in by_exec.values() if v[-1][0] == "exec_die"]
        assert len(done) >= 2, got
        for v in done:
            assert v == [("exec_create: /bin/sh -c test -d /", "<no value>"),
                         ("exec_start: /bin/sh -c test -d /", "<no value>"),
                         ("exec_die", "0")], got
    finally:
        daemon.docker("rm", "-f", c)

# ---- ps --filter ancestor ----

def build(daemon, tag, dockerfile):
    run(["/usr/bin/docker", "build", "-q", "-t", tag, "-"], input=dockerfile,
        env=dict(daemon.env, DOCKER_BUILDKIT="0"), timeout=180)


def test_ps_ancestor_matches_containers_of_images_built_from_it(daemon):
    """dockerd's ancestor filter walks the image's children (moby daemon/list.go): a container of an
    image built FROM busybox (or FROM that) is busybox's descendant; berth matched only the image."""
    child, grandchild = "child" + uuid.uuid4().hex[:6], "grand" + uuid.uuid4().hex[:6]
    build(daemon, child, "FROM busybox\nRUN echo 1 > /one\n")
    build(daemon, grandchild, f"FROM {child}\nENV TWO=2\n")
    ids = {}
    try:
        for img in ("busybox", child, grandchild):
            ids[img] = out(daemon, "create", img, "true").strip()

        def ps(anc):
            return set(out(daemon, "ps", "-aq", "--no-trunc", "--filter", "ancestor=" + anc).split()) & \
                set(ids.values())

        assert ps("busybox") == set(ids.values())
        assert ps(child) == {ids[child], ids[grandchild]}
        assert ps(grandchild) == {ids[grandchild]}
        assert ps("nosuchimage") == set()
    finally:
        for cid in ids.values():
            daemon.docker("rm", cid)
        daemon.docker("rmi", grandchild, child)


# ---- /etc/hosts ----

ETCHOSTS_DEFAULTS = ("127.0.0.1\tlocalhost\n"
                     "::1\tlocalhost ip6-localhost ip6-loopback\n"
                     "fe00::0\tip6-localnet\n"
                     "ff00::0\tip6-mcastprefix\n"
                     "ff02::1\tip6-allnodes\n"
                     "ff02::2\tip6-allrouters\n")


def test_etc_hosts_has_libnetworks_ipv6_entries(daemon):
    """libnetwork/etc/etchosts' defaults, then --add-host entries; with --network none no line
    for the host name (it has no address). Without them, berth wrote two lines and the name."""
    assert out(daemon, "run", "--rm", "--network", "none", "busybox", "cat", "/etc/hosts") == ETCHOSTS_DEFAULTS
    assert out(daemon, "run", "--rm", "--network", "none", "--add-host", "foo:1.2.3.4", "busybox",
               "cat", "/etc/hosts") == ETCHOSTS_DEFAULTS + "1.2.3.4\tfoo\n"
    # a daemon without container networking: the name resolves to loopback, after the extra hosts
    assert out(daemon, "run", "--rm", "--hostname", "h1", "--add-host", "foo:1.2.3.4", "busybox",
               "cat", "/etc/hosts") == ETCHOSTS_DEFAULTS + "1.2.3.4\tfoo\n127.0.0.1\th1\n"


# ---- API versions ----

def test_api_versions_outside_the_supported_range_are_refused(daemon):
    status, body, _ = daemon.request("GET", "/v1.12/version")
    assert status == 400 and json.loads(body)["message"] == (
        "client version 1.12 is too old. Minimum supported API version is 1.24, "
        "please upgrade your client to a newer version")
    # dockerd refuses a version above its own (berth answered as 1.41); berth reads requests up to
    # 1.44 (per-endpoint MAC addresses, docs/net.md)
    status, body, headers = daemon.request("GET", "/v1.99/containers/json")
    assert status == 400 and json.loads(body)["message"] == \
        "client version 1.99 is too new. Maximum supported API version is 1.44", body
    assert daemon.request("GET", "/v1.45/version")[0] == 400
    assert daemon.request("GET", "/v1.44/version")[0] == 200
    assert headers["Api-Version"] == "1.41"
    for v in ("/v1.24", "/v1.41", ""):
        assert daemon.request("GET", v + "/version")[0] == 200
    status, body, headers = daemon.request("GET", "/_ping")
    assert (status, body, headers["Api-Version"], headers["Builder-Version"]) == (200, b"OK", "1.41", "1")
    status, body, headers = daemon.request("HEAD", "/_ping")
    assert status == 200 and headers["Content-Length"] == "0" and headers["Builder-Version"] == "1"
    v = json.loads(daemon.request("GET", "/version")[1])
    assert (v["ApiVersion"], v["MinAPIVersion"]) == ("1.41", "1.24")
    assert v["Components"][0]["Details"]["MinAPIVersion"] == "1.24"
    assert v["Components"][0]["Details"]["Experimental"] == "false"
    # the CLI negotiates down to the daemon's version
    assert out(daemon, "version", "--format", "{{.Client.APIVersion}} {{.Server.APIVersion}}").split() == \
        ["1.41", "1.41"]


# ---- network events of a container's start and exit, and of prune ----

@pytest.fixture(scope="module")
def netdaemon(berth_bin, busybox):
    from test_engine_network import netns_daemon
    with netns_daemon(berth_bin, busybox, "c4-") as d:
        yield d
        d.remove_all()


def test_network_events_of_start_exit_and_prune(netdaemon):
    """dockerd logs network connect when a container's start joins a network, disconnect when it
    exits, destroy for each network prune removes; berth logged them only for the network API."""
    d = netdaemon
    since = "%.6f" % time.time()
    net = "n" + uuid.uuid4().hex[:8]
    net_id = out(d, "network", "create", net).strip()
    bridge_id = json.loads(out(d, "network", "inspect", "bridge"))[0]["Id"]
    c = name()
    cid = out(d, "run", "-d", "--name", c, "--network", net, "busybox", "sleep", "600").strip()
    d.docker("rm", "-f", c)
    rid = out(d, "run", "-d", "busybox", "true").strip()
    assert out(d, "wait", rid).strip() == "0"
    d.docker("rm", rid)
    assert net in out(d, "network", "prune", "-f")

    def events():
        lines = out(d, "events", "--since", since, "--until", "%.6f" % time.time(), "--filter", "type=network",
                    "--format", "{{.Action}} {{.Actor.ID}} {{.Actor.Attributes.name}} "
                    "{{.Actor.Attributes.type}} {{.Actor.Attributes.container}}").splitlines()
        return [[w for w in line.split() if w not in ("<no", "value>")] for line in lines]

    # an exit's cleanup runs after `docker wait` returns: wait for its disconnect
    wait_for(lambda: len(events()) == 6, timeout=30)
    assert events() == [["create", net_id, net, "bridge"],
                        ["connect", net_id, net, "bridge", cid],
                        ["disconnect", net_id, net, "bridge", cid],
                        ["connect", bridge_id, "bridge", "bridge", rid],
                        ["disconnect", bridge_id, "bridge", "bridge", rid],
                        ["destroy", net_id, net, "bridge"]], events()


def test_image_events_carry_the_images_labels(daemon):
    """The labels come from the image's config alone (was a whole image inspect per event), read
    before a removal: the untag of the last reference carries them too, the delete none (as dockerd,
    where the image is gone by then)."""
    img = "lab" + uuid.uuid4().hex[:6]
    build(daemon, img, "FROM busybox\nLABEL com.example.team=berth\n")
    since = "%.6f" % time.time()
    daemon.docker("tag", img, img + ":two")
    daemon.docker("rmi", img + ":two", img)
    got = out(daemon, "events", "--since", since, "--until", "%.6f" % time.time(), "--filter", "type=image",
              "--format", "{{.Action}} {{index .Actor.Attributes \"com.example.team\"}}").split("\n")
    assert got == ["tag berth", "untag berth", "untag berth", "delete ", ""], got


# ---- --log-opt labels/env: attrs of json-file records ----

def test_log_opt_labels_and_env_become_record_attrs(daemon):
    """moby's ExtraAttributes: the labels and env values the log options name (or match) are every
    json-file record's attrs, which `docker logs --details` shows; berth accepted the options and
    wrote no attrs."""
    c = name()
    daemon.docker("run", "--name", c, "--label", "team=core", "--label", "tier=db", "--label", "other=x",
                  "-e", "APP=web", "-e", "REGION=eu", "-e", "SECRET=s",
                  "--log-opt", "labels=team,nosuch", "--log-opt", "labels-regex=^ti",
                  "--log-opt", "env=APP", "--log-opt", "env-regex=^REG",
                  "busybox", "echo", "hello")
    try:
        assert out(daemon, "logs", "--details", c) == "APP=web,REGION=eu,team=core,tier=db hello\n"
        assert out(daemon, "logs", c) == "hello\n"
        path = json.loads(out(daemon, "inspect", c))[0]["LogPath"]
        rec = json.loads(open(path).readline())
        assert list(rec) == ["log", "stream", "attrs", "time"], rec
        assert rec["attrs"] == {"APP": "web", "REGION": "eu", "team": "core", "tier": "db"}
    finally:
        daemon.docker("rm", c)


# ---- --ipc shareable and container:X ----

def test_ipc_container_joins_a_shareable_donor_and_refuses_a_private_one(daemon, sleeper):
    """dockerd: joining a donor's IPC needs its /dev/shm on the host (IpcMode shareable); the default,
    private, is refused with "non-shareable IPC"; the joiner is in the donor's IPC namespace (SysV
    IPC shared). berth joined any running container's."""
    p = daemon.docker("run", "--rm", "--ipc", "container:" + sleeper, "busybox", "true", check=False)
    sid = json.loads(out(daemon, "inspect", sleeper))[0]["Id"]
    assert p.returncode == 125 and (
        f"can't join IPC of container {sid}: non-shareable IPC "
        "(hint: use IpcMode:shareable for the donor container)") in p.stderr, p
    donor = name()
    daemon.docker("run", "-d", "--name", donor, "--ipc", "shareable", "busybox", "sleep", "600")
    try:
        assert out(daemon, "inspect", "-f", "{{.HostConfig.IpcMode}}", donor).strip() == "shareable"
        want = out(daemon, "exec", donor, "readlink", "/proc/self/ns/ipc")
        got = out(daemon, "run", "--rm", "--ipc", "container:" + donor, "busybox", "readlink",
                  "/proc/self/ns/ipc")
        assert got == want, got
        # a joiner of the donor may be joined in turn (dockerd: it has the donor's shm)
        j = name()
        daemon.docker("run", "-d", "--name", j, "--ipc", "container:" + donor, "busybox", "sleep", "600")
        try:
            assert out(daemon, "run", "--rm", "--ipc", "container:" + j, "busybox", "readlink",
                       "/proc/self/ns/ipc") == want
        finally:
            daemon.docker("rm", "-f", j)
        daemon.docker("stop", "-t", "0", donor)
        p = daemon.docker("run", "--rm", "--ipc", "container:" + donor, "busybox", "true", check=False)
        did = json.loads(out(daemon, "inspect", donor))[0]["Id"]
        assert p.returncode == 125 and \
            f"can't join IPC of container {did}: Container {did} is not running" in p.stderr, p
    finally:
        daemon.docker("rm", "-f", donor)


def test_ipc_joiners_share_the_donors_dev_shm_across_a_daemon_restart(berth_bin, busybox):
    """dockerd mounts a shareable container's /dev/shm as a tmpfs on the host (--shm-size, default
    64 MiB) and binds it into every joiner: POSIX shm (files in /dev/shm) is shared, not only SysV
    IPC. The mount outlives a daemon restart and goes when the container exits or is removed."""
    with busybox_daemon(berth_bin, busybox) as d:
        donor = name()
        d.docker("run", "-d", "--name", donor, "--ipc", "shareable", "--shm-size", "8m", "busybox",
                 "sleep", "600")
        did = json.loads(out(d, "inspect", donor))[0]["Id"]
        d.docker("exec", donor, "sh", "-c", "echo from-donor > /dev/shm/seg")
        assert out(d, "exec", donor, "df", "-k", "/dev/shm").splitlines()[1].split()[1] == "8192"
        d.stop()
        d.start()
        got = out(d, "run", "--rm", "--ipc", "container:" + donor, "busybox", "cat", "/dev/shm/seg")
        assert got == "from-donor\n"
        j = name()
        d.docker("run", "-d", "--name", j, "--ipc", "container:" + donor, "busybox", "sleep", "600")
        d.docker("exec", j, "sh", "-c", "echo from-joiner > /dev/shm/back")
        assert out(d, "exec", donor, "cat", "/dev/shm/back") == "from-joiner\n"
        # a joiner of a joiner: the donor's shm as well
        assert out(d, "run", "--rm", "--ipc", "container:" + j, "busybox", "cat", "/dev/shm/seg") == \
            "from-donor\n"
        # a private container's /dev/shm is its own
        assert d.docker("run", "--rm", "busybox", "cat", "/dev/shm/seg", check=False).returncode == 1

        def shm_mounted():
            with open("/proc/self/mountinfo") as f:
                return any(did + "/shm" in line for line in f)

        assert shm_mounted()
        d.docker("rm", "-f", j)
        # as dockerd's Cleanup: the shm goes with each run (a start mounts a fresh one)
        d.docker("stop", "-t", "0", donor)
        assert wait_for(lambda: not shm_mounted(), timeout=30)
        d.docker("start", donor)
        assert shm_mounted() and out(d, "exec", donor, "ls", "/dev/shm") == ""
        d.docker("rm", "-f", donor)
        assert not shm_mounted()
