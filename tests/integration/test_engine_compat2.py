"""Issue 19, second compatibility round: behaviours where berth differed from
dockerd, each checked with a real client (docker-py, the docker CLI, curl).

One daemon for the module (engine_daemon.Daemon, no container networking);
each test removes what it made.
"""
import json
import os
import subprocess
import uuid

import docker
import pytest

from engine_daemon import Daemon, wait_for


@pytest.fixture(scope="module")
def daemon(berth_bin, busybox):
    d = Daemon(berth_bin)
    try:
        d.start()
        d.load_busybox(busybox)
        yield d
    finally:
        d.cleanup()


@pytest.fixture
def client(daemon):
    c = docker.DockerClient(base_url=daemon.host, version="1.41", timeout=60)
    try:
        yield c
    finally:
        c.close()


def name():
    return "t" + uuid.uuid4().hex[:10]


# ---- test image: applets outside /bin ----

@pytest.mark.parametrize("argv", [["top", "-b", "-n", "1"], ["env"], ["find", "/etc", "-name", "passwd"],
                                  ["whoami"], ["ip", "-o", "link", "show", "lo"], ["chroot", "/", "true"]])
def test_busybox_applets_outside_bin_run(daemon, argv):
    """usr/bin/top, sbin/ip, usr/sbin/chroot ... are links that resolve to /bin/busybox."""
    p = daemon.docker("run", "--rm", "busybox", *argv, check=False)
    assert p.returncode == 0, (argv, p.returncode, p.stderr)


# ---- 1. swarm routes outside a swarm ----

def test_swarm_leave_is_503_not_part_of_a_swarm(client):
    # docker-py's cleanup idiom: a forced leave treats dockerd's 503 as done (a 404 raises NotFound)
    assert client.swarm.leave(force=True) is True
    with pytest.raises(docker.errors.APIError) as e:
        client.swarm.leave()
    assert not isinstance(e.value, docker.errors.NotFound)
    assert e.value.status_code == 503
    assert e.value.explanation == "This node is not part of a swarm"


@pytest.mark.parametrize("method,path", [
    ("GET", "/swarm"), ("POST", "/swarm/update"), ("GET", "/swarm/unlockkey"), ("POST", "/swarm/unlock"),
    ("GET", "/nodes"), ("GET", "/nodes/x"), ("DELETE", "/nodes/x"), ("POST", "/nodes/x/update"),
    ("GET", "/services"), ("POST", "/services/create"), ("GET", "/services/x"), ("DELETE", "/services/x"),
    ("POST", "/services/x/update"), ("GET", "/services/x/logs"), ("GET", "/tasks"), ("GET", "/tasks/x"),
    ("GET", "/tasks/x/logs"), ("GET", "/secrets"), ("POST", "/secrets/create"), ("GET", "/secrets/x"),
    ("DELETE", "/secrets/x"), ("POST", "/secrets/x/update"), ("GET", "/configs"), ("POST", "/configs/create"),
    ("GET", "/configs/x"), ("DELETE", "/configs/x"), ("POST", "/configs/x/update")])
def test_swarm_manager_routes_are_503(daemon, method, path):
    p = subprocess.run(["curl", "-s", "--unix-socket", daemon.sock, "-X", method, "-o", "/dev/stdout",
                        "-w", "\n%{http_code}", "http://localhost/v1.41" + path],
                       capture_output=True, text=True, timeout=30)
    body, code = p.stdout.rsplit("\n", 1)
    assert code == "503", (path, code, body)
    assert json.loads(body)["message"].startswith("This node is not a swarm manager.")


def test_swarm_init_is_refused_with_503(client):
    with pytest.raises(docker.errors.APIError) as e:
        client.swarm.init(advertise_addr="127.0.0.1")
    assert e.value.status_code == 503


# ---- 3. kill waits for the exit ----

def test_kill_returns_once_the_container_is_dead(client):
    for _ in range(10):
        c = client.containers.run("busybox", "sleep 60", detach=True)
        try:
            c.kill()
            c.reload()
            assert c.status == "exited" and c.attrs["State"]["ExitCode"] == 137
            c.remove()  # 409 while still running
        finally:
            try:
                c.remove(force=True)
            except docker.errors.NotFound:
                pass


# ---- 4. exec ----

def test_exec_of_missing_binary_reports_127(client):
    c = client.containers.run("busybox", "sleep 60", detach=True)
    try:
        r = c.exec_run(["/nonexistent/binary"])
        assert r.exit_code == 127, r
        r = c.exec_run(["nosuchcommand"])
        assert r.exit_code == 127, r
        r = c.exec_run(["/etc/passwd"])  # not executable
        assert r.exit_code == 126, r
    finally:
        c.remove(force=True)


def test_exec_start_without_tty_multiplexes_a_tty_exec(client):
    c = client.containers.run("busybox", "sleep 60", detach=True)
    try:
        api = client.api
        x = api.exec_create(c.id, ["echo", "hello"], tty=True)
        out = api.exec_start(x["Id"], tty=False, demux=True)
        # multiplexed frames: docker-py splits them into (stdout, stderr); a tty's crlf stays
        assert out == (b"hello\r\n", None), out
    finally:
        c.remove(force=True)


# ---- 8. GroupAdd, wait with a restart policy, prune, Runtime ----

def test_group_add_sets_supplementary_groups(client):
    out = client.containers.run("busybox", "id -G", group_add=["users", "4242"], remove=True)
    assert out.split() == [b"0", b"100", b"4242"], out


def test_group_add_unknown_group_fails(client):
    with pytest.raises(docker.errors.APIError) as e:
        client.containers.run("busybox", "true", group_add=["nosuchgroup"], remove=True)
    assert "nosuchgroup" in str(e.value)


def test_wait_returns_at_first_exit_under_restart_always(client):
    c = client.containers.run("busybox", "sh -c 'exit 3'", detach=True,
                              restart_policy={"Name": "always"})
    try:
        assert c.wait(timeout=30)["StatusCode"] == 3
    finally:
        c.remove(force=True)


def test_container_prune_reports_space_reclaimed(client):
    c = client.containers.run("busybox", "sh -c 'head -c 300000 /dev/zero > /blob'", detach=True,
                              labels={"prune": "me"})
    c.wait(timeout=30)
    r = client.containers.prune(filters={"label": "prune=me"})
    assert r["ContainersDeleted"] == [c.id]
    assert r["SpaceReclaimed"] >= 300000, r


def test_inspect_names_the_runtime(daemon, client):
    c = client.containers.create("busybox", "true")
    try:
        assert c.attrs["HostConfig"]["Runtime"] == "runc"
        assert daemon.docker("inspect", "-f", "{{.HostConfig.Runtime}}", c.id).stdout.strip() == "runc"
    finally:
        c.remove(force=True)


def test_runc_names_the_builtin_runtime_by_default(daemon, client):
    """A daemon without runtime flags: dockerd's runtime names work (docker-py's own test
    creates with runtime='runc'), both naming the built-in runtime."""
    info = client.info()
    assert (info["DefaultRuntime"], info["Runtimes"]) == (
        "runc", {"berth": {"path": "berth"}, "runc": {"path": "berth"},
                 "io.containerd.runc.v2": {"path": "berth"}})
    for rt in ("runc", "berth", "io.containerd.runc.v2"):
        assert client.containers.run("busybox", "echo ok", runtime=rt, remove=True) == b"ok\n"
    p = daemon.docker("run", "--rm", "--runtime", "berth", "busybox", "echo", "cli", check=False)
    assert (p.returncode, p.stdout) == (0, "cli\n"), p.stderr


# ---- F. system df counts a shared layer once ----

def test_system_df_counts_shared_layers_once(berth_bin, images):
    base = images.make()
    layered = images.make(name="layered", tag="layered:latest", layers=1)
    d = Daemon(berth_bin)
    try:
        d.start()
        d.docker("load", "-i", base["docker_archive"])
        d.docker("load", "-i", layered["docker_archive"])
        c = docker.DockerClient(base_url=d.host, version="1.41")
        try:
            sizes = {i.id: i.attrs["Size"] for i in c.images.list()}
            assert len(sizes) == 2
            small, big = sorted(sizes.values())
            df = c.df()
        finally:
            c.close()
        # the layered image is the base layer plus one: the base counts once
        assert df["LayersSize"] == big, (df["LayersSize"], sizes)
        assert {i["Id"]: i["SharedSize"] for i in df["Images"]} == {k: small for k in sizes}
        # the docker CLI shows LayersSize (go-units HumanSize: 4 significant digits, powers of 1000)
        out = d.docker("system", "df", "--format", "{{.Type}} {{.Size}}").stdout.splitlines()
        units = ["B", "kB", "MB", "GB"]
        v, u = float(big), 0
        while v >= 1000 and u < len(units) - 1:
            v, u = v / 1000, u + 1
        assert f"Images {v:.4g}{units[u]}" in out, (out, big)
    finally:
        d.cleanup()


# ---- E. logs --tail reads from the end, follow loses nothing ----

def daemon_rchar(daemon):
    """Bytes the daemon has read through read()/pread() (page cache hits count too)."""
    pid = int(open(daemon.pidfile).read())
    with open(f"/proc/{pid}/io") as f:
        return int(next(l for l in f if l.startswith("rchar:")).split()[1])


@pytest.mark.parametrize("driver", ["json-file", "local"])
def test_logs_tail_reads_only_the_end_of_a_big_log(daemon, driver):
    c = name()
    # 70 000 lines of 1000 bytes: a 70 MB json-file log (local: rotated 20 MB files)
    daemon.docker("run", "-d", "--name", c, "--log-driver", driver, "busybox", "sh", "-c",
                  "yes $(head -c 1000 /dev/zero | tr '\\0' x) | head -n 70000; echo last-line")
    try:
        assert daemon.docker("wait", c, timeout=300).stdout.strip() == "0"
        if driver == "json-file":
            logpath = daemon.docker("inspect", "-f", "{{.LogPath}}", c).stdout.strip()
            assert os.path.getsize(logpath) > 70 << 20
        before = daemon_rchar(daemon)
        out = daemon.docker("logs", "--tail", "5", c).stdout.splitlines()
        read = daemon_rchar(daemon) - before
        assert out[-1] == "last-line" and len(out) == 5 and out[0] == "x" * 1000
        assert read < 4 << 20, f"daemon read {read} bytes for --tail 5"
        before = daemon_rchar(daemon)
        assert daemon.docker("logs", "--tail", "0", c).stdout == ""
        assert daemon_rchar(daemon) - before < 1 << 20
    finally:
        daemon.docker("rm", "-f", c, check=False)


def test_logs_follow_after_tail_loses_no_line(daemon):
    c = name()
    daemon.docker("run", "-d", "--name", c, "busybox", "sh", "-c",
                  "i=0; while :; do echo $i; i=$((i+1)); done")
    try:
        wait_for(lambda: daemon.docker("logs", "--tail", "1", c).stdout.strip() not in ("", "0"))
        p = subprocess.Popen([docker_cli(), "logs", "-f", "--tail", "5", c], env=daemon.env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        got = []
        try:
            while len(got) < 20000:
                line = p.stdout.readline()
                if not line:
                    p.kill()
                    raise AssertionError(f"logs -f ended after {len(got)} lines: {p.stderr.read()}")
                got.append(int(line))
        finally:
            p.kill()
            p.wait()
        assert got[0] > 0
        assert got == list(range(got[0], got[0] + len(got))), "a line went missing or came twice"
    finally:
        daemon.docker("rm", "-f", c, check=False)


def docker_cli():
    from engine_daemon import DOCKER
    return DOCKER
