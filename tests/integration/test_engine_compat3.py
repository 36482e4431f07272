"""Third compatibility round: differences a side-by-side sweep of the docker CLI
and docker-py against dockerd 20.10 found, each checked with the real client.

One daemon for the module (engine_daemon.busybox_daemon, no container
networking); each test removes what it made.
"""
import json
import os
import tarfile
import uuid

import docker
import pytest

from engine_daemon import busybox_daemon, docker_py


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
    """A running container (with --init) the tests exec into, join and list."""
    c = "sleeper" + uuid.uuid4().hex[:6]
    daemon.docker("run", "-d", "--init", "--name", c, "busybox", "sleep", "600")
    yield c
    daemon.docker("rm", "-f", c)


def name():
    return "t" + uuid.uuid4().hex[:10]


def out(daemon, *args):
    return daemon.docker(*args).stdout


def refused(daemon, *args):
    p = daemon.docker(*args, check=False)
    assert p.returncode != 0, (args, p.stdout)
    return p.stderr


# ---- run options that never reached the runtime spec ----

def test_pid_uts_ipc_host_and_container_modes(daemon, sleeper):
    ns = "for t in pid uts ipc; do readlink /proc/self/ns/$t; done"
    host = [os.readlink(f"/proc/self/ns/{t}") for t in ("pid", "uts", "ipc")]
    shared = out(daemon, "run", "--rm", "--pid", "host", "--uts", "host", "--ipc", "host", "busybox", "sh", "-c", ns)
    assert shared.split() == host
    private = out(daemon, "run", "--rm", "busybox", "sh", "-c", ns).split()
    assert all(a != b for a, b in zip(private, host)), private
    want = out(daemon, "exec", sleeper, "readlink", "/proc/self/ns/pid")
    assert out(daemon, "run", "--rm", "--pid", "container:" + sleeper, "busybox",
               "readlink", "/proc/self/ns/pid") == want


def test_device_option_creates_the_node(daemon):
    o = out(daemon, "run", "--rm", "--device", "/dev/zero:/dev/myzero:r", "busybox",
            "sh", "-c", "ls -l /dev/myzero && head -c 3 /dev/myzero | od -An -tx1")
    assert o.startswith("c") and "1,   5" in o and o.split("\n")[1].split() == ["00", "00", "00"], o
    err = refused(daemon, "run", "--rm", "--device", "/dev/nosuchdevice", "busybox", "true")
    assert ('error gathering device information while adding custom device "/dev/nosuchdevice": '
            "no such file or directory") in err


def test_shm_size_and_oom_score_adj(daemon):
    o = out(daemon, "run", "--rm", "--shm-size", "1m", "--oom-score-adj", "100", "busybox",
            "sh", "-c", "df -k /dev/shm | tail -1; cat /proc/self/oom_score_adj")
    assert o.split()[1] == "1024" and o.split()[-1] == "100", o
    c = name()
    daemon.docker("create", "--name", c, "busybox")
    try:  # the CLI sends ShmSize 0 and IpcMode "": dockerd stores its defaults
        assert out(daemon, "inspect", "-f", "{{.HostConfig.ShmSize}} {{.HostConfig.IpcMode}}", c).split() == \
            ["67108864", "private"]
    finally:
        daemon.docker("rm", c)


def test_dns_options_and_cgroupns_private(daemon):
    o = out(daemon, "run", "--rm", "--dns", "192.0.2.53", "--dns-search", "a.example", "--dns-option", "ndots:2",
            "--cgroupns", "private", "busybox", "sh", "-c", "cat /etc/resolv.conf; head -1 /proc/self/cgroup")
    assert o.splitlines()[:3] == ["search a.example", "nameserver 192.0.2.53", "options ndots:2"], o
    assert o.splitlines()[3].endswith(":/"), o  # the container's own cgroup is its root


def test_loopback_is_up_without_a_network(daemon):
    """The runtime brings up lo in a network namespace it makes, as runc does (dockerd's --network none
    shows it UP): a program that talks to itself over 127.0.0.1 works. It was down."""
    flags = out(daemon, "run", "--rm", "--network", "none", "busybox", "cat", "/sys/class/net/lo/flags")
    assert int(flags, 16) & 0x1, flags


def test_network_of_a_missing_container_fails_the_start_not_the_create(daemon):
    # a 404 at create made the CLI pull the image and report the pull's failure
    err = refused(daemon, "run", "--rm", "--network", "container:nosuchcontainer", "busybox", "true")
    assert "No such container: nosuchcontainer" in err and "Unable to find image" not in err, err


def test_systempaths_unconfined_lifts_masked_and_readonly_paths(daemon):
    sys_opts = "grep ' /proc/sys ' /proc/mounts | cut -d' ' -f4"
    assert out(daemon, "run", "--rm", "busybox", "sh", "-c", sys_opts).startswith("ro,")
    assert out(daemon, "run", "--rm", "--security-opt", "systempaths=unconfined", "busybox", "sh", "-c",
               sys_opts) == ""
    c = name()
    daemon.docker("create", "--name", c, "busybox")
    try:  # dockerd stores the defaults it applies
        hc = json.loads(out(daemon, "inspect", "-f", "{{json .HostConfig}}", c))
        assert "/proc/kcore" in hc["MaskedPaths"] and "/proc/sys" in hc["ReadonlyPaths"]
    finally:
        daemon.docker("rm", c)


def test_primary_group_is_a_supplementary_group(daemon, sleeper):
    groups = "grep ^Groups: /proc/self/status"
    assert out(daemon, "run", "--rm", "busybox", "sh", "-c", groups).split() == ["Groups:", "0"]
    assert out(daemon, "run", "--rm", "-u", "1000:1000", "--group-add", "10", "busybox", "sh", "-c",
               groups).split() == ["Groups:", "10", "1000"]
    assert out(daemon, "exec", "-u", "nobody", sleeper, "sh", "-c", groups).split() == ["Groups:", "65534"]


def test_empty_entrypoint_resets_it_and_user_env_comes_first(daemon):
    assert out(daemon, "run", "--rm", "--entrypoint", "", "busybox", "echo", "hi") == "hi\n"
    assert "No command specified" in refused(daemon, "run", "--rm", "--entrypoint", "", "busybox")
    c = name()
    daemon.docker("create", "--name", c, "-e", "A=1", "busybox", "true")
    try:
        cfg = json.loads(out(daemon, "inspect", "-f", "{{json .Config}}", c))
        assert cfg["Env"][0] == "A=1" and cfg["Env"][1].startswith("PATH=")
    finally:
        daemon.docker("rm", c)


def test_create_checks_stop_signal_and_healthcheck_durations(daemon):
    assert "Invalid signal: BOGUS" in refused(daemon, "create", "--stop-signal", "BOGUS", "busybox")
    for flag, what in (("--health-interval", "Interval"), ("--health-timeout", "Timeout"),
                       ("--health-start-period", "StartPeriod")):
        err = refused(daemon, "create", "--health-cmd", "true", flag, "100us", "busybox")
        assert f"{what} in Healthcheck cannot be less than 1ms" in err


# ---- inspect shapes ----

def test_inspect_config_has_every_member(daemon, client):
    img = client.images.get("busybox")
    assert img.attrs["Config"]["Entrypoint"] is None and img.attrs["Config"]["User"] == ""
    assert img.attrs["ContainerConfig"]["Cmd"] is None and img.attrs["ContainerConfig"]["Tty"] is False
    c = client.containers.create("busybox", "true")
    try:
        assert c.attrs["Config"]["Entrypoint"] is None and c.attrs["Config"]["OnBuild"] is None
        hc = c.attrs["HostConfig"]  # docker-py sent none of these: dockerd shows them all
        assert hc["Binds"] is None and hc["CapAdd"] is None and hc["OomScoreAdj"] == 0
        assert hc["ConsoleSize"] == [0, 0] and hc["CgroupParent"] == ""
    finally:
        c.remove()


def test_image_size_counts_symlinks_as_dockerd(client, busybox):
    """dockerd's layer size is the lstat size of every non-directory: a symlink counts its target's length."""
    want = 0
    with tarfile.open(busybox["docker_archive"]) as outer:
        for m in outer.getmembers():
            if m.name.endswith(".tar"):
                with tarfile.open(fileobj=outer.extractfile(m)) as layer:
                    want += sum(x.size if x.isreg() else len(x.linkname) if x.issym() else 0
                                for x in layer.getmembers())
    assert client.images.get("busybox").attrs["Size"] == want


# ---- image and container list filters ----

def test_image_list_filters(daemon, client):
    repo = "cmp3" + uuid.uuid4().hex[:6]
    tags = [f"{repo}:{t}" for t in ("a", "b")]
    for t in tags:
        daemon.docker("tag", "busybox", t)
    try:
        fmt = "{{.Repository}}:{{.Tag}}"
        assert sorted(out(daemon, "images", repo, "--format", fmt).split()) == sorted(tags)
        assert out(daemon, "images", tags[0], "--format", fmt).split() == [tags[0]]

        def refs(**filters):
            return [r for i in client.api.images(filters=filters) for r in i["RepoTags"] or []]

        assert refs(reference=f"{repo[:4]}*:b") == [tags[1]]
        assert refs(dangling=True) == [] and refs(label="org.berth.test=nope") == []
        assert len(client.images.list(name=tags[1])) == 1 and client.images.list(name=repo + "x") == []
        for bad, msg in (({"bogus": "1"}, "Invalid filter 'bogus'"),
                         ({"dangling": "maybe"}, "Invalid filter 'dangling=[maybe]'")):
            with pytest.raises(docker.errors.APIError) as e:
                client.api.images(filters=bad)
            assert msg in e.value.explanation and e.value.status_code == 400
    finally:
        daemon.docker("rmi", *tags)


@pytest.fixture(scope="module")
def ps_set(daemon):
    """web1 (running, healthcheck, volume), db1 (exited 3), web2 (created)."""
    sfx = uuid.uuid4().hex[:6]
    names = {k: f"{k}{sfx}" for k in ("web1", "db1", "web2")}
    vol = "v" + sfx
    daemon.docker("run", "-d", "--name", names["web1"], "--health-cmd", "true", "-v", f"{vol}:/data",
                  "busybox", "sleep", "60")
    daemon.docker("run", "--name", names["db1"], "busybox", "sh", "-c", "exit 3", check=False)
    daemon.docker("create", "--name", names["web2"], "busybox")
    yield names, vol
    daemon.docker("rm", "-f", *names.values())
    daemon.docker("volume", "rm", vol)


def test_ps_filters(daemon, client, ps_set):
    n, vol = ps_set
    sfx = n["web1"][4:]

    def names(**filters):  # only this test's containers: others may exist
        return {c.name for c in client.containers.list(all=True, filters=filters)} & set(n.values())

    assert names(name=f"^web.{sfx}$") == {n["web1"], n["web2"]}
    assert names(name=f"/db1{sfx}") == {n["db1"]}
    assert names(ancestor="busybox:latest") == set(n.values())
    assert names(health="none") == {n["db1"], n["web2"]}
    assert names(volume=vol) == names(volume="/data") == {n["web1"]}
    assert names(before=n["web2"]) == {n["web1"], n["db1"]}
    assert names(since=n["web1"]) == {n["db1"], n["web2"]}
    assert names(**{"is-task": "true"}) == set()
    assert names(exited="3", status="exited") == {n["db1"]}
    # a status filter lists stopped containers without -a
    assert n["db1"] in out(daemon, "ps", "--filter", "status=exited", "--format", "{{.Names}}").split()
    for bad, msg in (({"bogus": "1"}, "Invalid filter 'bogus'"),
                     ({"status": "bogus"}, "Invalid filter 'status=bogus'"),
                     ({"health": "bogus"}, "Unrecognised filter value for health: bogus"),
                     ({"before": "nosuchcontainer"}, "no such container nosuchcontainer")):
        with pytest.raises(docker.errors.APIError) as e:
            client.containers.list(all=True, filters=bad)
        assert msg in e.value.explanation
        assert e.value.status_code == (404 if "before" in bad else 400)
    # the volume's users are named, as dockerd does
    web1 = client.containers.get(n["web1"]).id
    assert f"remove {vol}: volume is in use - [{web1}]" in refused(daemon, "volume", "rm", vol)


def test_volume_name_filter_is_a_regular_expression(daemon):
    v = "rx" + uuid.uuid4().hex[:6]
    daemon.docker("volume", "create", v)
    daemon.docker("volume", "create", v + "0")
    try:
        assert out(daemon, "volume", "ls", "-q", "--filter", f"name=^{v}$").split() == [v]
    finally:
        daemon.docker("volume", "rm", v, v + "0")


# ---- logs, exec, top ----

def test_logs_tail_not_a_count_and_details(daemon, client):
    c = client.containers.run("busybox", ["sh", "-c", "echo a; echo b"], detach=True)
    try:
        c.wait(timeout=30)
        for tail in ("-1", "abc"):
            assert out(daemon, "logs", "--tail", tail, c.id) == "a\nb\n"
        assert out(daemon, "logs", "--details", c.id) == " a\n b\n"
    finally:
        c.remove()


def test_exec_as_unknown_user_exits_126(client, sleeper):
    r = client.containers.get(sleeper).exec_run("id", user="nosuchuser")
    assert r.exit_code == 126, r
    assert r.output.startswith(b"unable to find user nosuchuser: no matching entries in passwd file"), r


def test_stats_carry_dockerd_members(client, sleeper):
    s = client.containers.get(sleeper).stats(stream=False)
    assert s["num_procs"] == 0 and s["storage_stats"] == {}
    assert s["blkio_stats"]["io_queue_recursive"] is None and "io_service_bytes_recursive" in s["blkio_stats"]


def test_top_uses_ps_args(daemon, sleeper):
    lines = out(daemon, "top", sleeper, "-o", "pid,comm").splitlines()
    assert lines[0].split() == ["PID", "COMMAND"]
    assert sorted(line.split()[1] for line in lines[1:]) == ["docker-init", "sleep"]
    assert out(daemon, "top", sleeper).splitlines()[0].split() == \
        ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]


# ---- error messages ----

def test_inspect_of_an_unknown_name_is_no_such_object(daemon):
    # the CLI tries a container, an image, then a network: a 400 there ended it with that message
    assert "Error: No such object: nosuchthing" in refused(daemon, "inspect", "nosuchthing")


def test_rename_kill_and_name_conflict_errors(daemon):
    c = name()
    cid = out(daemon, "create", "--name", c, "busybox").strip()
    try:
        assert "No such container: nosuchcontainer" in refused(daemon, "rename", "nosuchcontainer", "new name")
        assert f'The container name "/{c}" is already in use by container "{cid}"' in \
            refused(daemon, "create", "--name", c, "busybox")
        assert f"Cannot kill container: {c}: Container {cid} is not running" in refused(daemon, "kill", c)
    finally:
        daemon.docker("rm", c)


# ---- events of images, and dockerd's event filters ----

def test_image_events_and_event_filters(daemon, client, tmp_path):
    """tag, untag, save and load make dockerd's image events (there were none: `docker events
    --filter type=image` was empty); the image filter selects by ID or name with or without its tag;
    an unknown filter key is refused (it was ignored: every event matched)."""
    import time
    since = time.time()  # fractional: this test's events only (the fixture loaded busybox just before)
    image_id = client.images.get("busybox").id
    ref = "evt" + uuid.uuid4().hex[:6] + ":v1"
    daemon.docker("tag", "busybox", ref)
    archive = str(tmp_path / "img.tar")
    daemon.docker("save", "-o", archive, ref)
    daemon.docker("rmi", ref)
    daemon.docker("load", "-i", archive)
    daemon.docker("rmi", ref)
    until = time.time() + 1

    def events(**filters):
        return [(e["Action"], e["Actor"]["ID"], e["Actor"]["Attributes"].get("name"))
                for e in client.events(since=since, until=until, filters=filters, decode=True)]

    got = events(type="image")
    assert [a for a, _, _ in got] == ["tag", "save", "untag", "load", "untag"], got
    assert all(i == image_id for _, i, _ in got), got
    assert got[0][2] == ref and got[3][2] == ref, got
    # by name with and without the tag, by ID; another name selects nothing
    assert [a for a, _, _ in events(type="image", image=ref)] == ["tag", "load"]
    assert len(events(type="image", image=ref.split(":")[0])) == 2
    assert len(events(type="image", image=image_id)) == 5
    assert events(type="image", image="nosuch") == []
    assert events(type="image", network="nosuch") == []
    assert "Invalid filter 'nosuch'" in refused(daemon, "events", "--since", "1s", "--filter", "nosuch=1")


def test_docker_py_keeps_the_output_of_a_tty_exec_that_exits_at_once(daemon, client, sleeper):
    """docker-py reads the 101 head through a buffered reader before it takes the socket: output
    sent within moments of the head was lost to it (1-2% of `echo` execs returned nothing); such
    output now waits for the grace after the head (api/streams.c hijack_fn). docker-compose 1 names
    docker-py in its own User-Agent."""
    compose = docker.APIClient(base_url=daemon.host, version="1.41",
                               user_agent="docker-compose/1.29.2 docker-py/5.0.3 Linux/6.1.0")
    lost = []
    try:
        for i in range(80):
            api = client.api if i < 40 else compose
            x = api.exec_create(sleeper, ["echo", "hello"], tty=True)
            out = api.exec_start(x["Id"], tty=i % 2 == 0, demux=i % 2 == 1)
            if out not in (b"hello\r\n", (b"hello\r\n", None)):
                lost.append((i, out))
    finally:
        compose.close()
    assert lost == []
