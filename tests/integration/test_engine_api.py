"""berth daemon driven by real clients: the docker CLI, docker-py, docker-compose and berth's own CLI.

One daemon for the whole module (see engine_daemon.Daemon); each test cleans
up the containers it made.
"""
import json
import os
import subprocess
import threading
import uuid

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


def name():
    return "t" + uuid.uuid4().hex[:10]


# ---- API basics ----

def test_ping_reports_api_version_headers(daemon):
    for method in ("GET", "HEAD"):
        status, body, headers = daemon.request(method, "/_ping")
        assert status == 200
        assert headers["Api-Version"] == "1.41"
        assert headers["Ostype"] == "linux"
    assert daemon.request("GET", "/_ping")[1] == b"OK"


def test_versioned_and_unversioned_paths_are_the_same(daemon):
    a = daemon.json("GET", "/v1.41/version")[1]
    b = daemon.json("GET", "/version")[1]
    assert a["ApiVersion"] == b["ApiVersion"] == "1.41"
    assert daemon.request("GET", "/v1.12/version")[0] == 400


def test_socket_is_group_accessible_only(daemon):
    assert oct(os.stat(daemon.sock).st_mode & 0o777) == "0o660"


def test_invalid_json_body_is_400_with_message(daemon):
    status, body = daemon.json("POST", "/containers/create", "{not json")
    assert status == 400
    assert "message" in body


def test_wrong_field_type_is_400_naming_the_field(daemon):
    status, body = daemon.json("POST", "/containers/create", {"Image": "busybox", "Cmd": 5})
    assert status == 400
    assert "Cmd" in body["message"]
    status, body = daemon.json("POST", "/containers/create", {"Image": "busybox", "HostConfig": {"Memory": "x"}})
    assert status == 400
    assert "Memory" in body["message"]


def test_unknown_container_is_404(daemon):
    for method, path in (("GET", "/containers/nope/json"), ("POST", "/containers/nope/start"),
                         ("DELETE", "/containers/nope"), ("GET", "/containers/nope/logs?stdout=1")):
        status, body = daemon.json(method, path)
        assert status == 404, path
        assert "No such container" in body["message"]


def test_huge_body_is_413_and_daemon_keeps_serving(daemon):
    status, _, _ = daemon.request("POST", "/containers/create", body=b"{" + b" " * (5 << 20) + b"}")
    assert status == 413
    assert daemon.request("GET", "/_ping")[0] == 200


def test_unknown_route_is_404_json(daemon):
    status, body = daemon.json("GET", "/no/such/route")
    assert status == 404
    assert body["message"]


# ---- images ----

def test_docker_load_save_import_rmi(daemon, busybox, workdir):
    ids = daemon.docker("images", "-q", "--no-trunc").stdout.split()
    assert busybox["id"] in ids
    daemon.docker("tag", "busybox", "copy:one")
    out = os.path.join(workdir, "saved.tar")
    daemon.docker("save", "-o", out, "copy:one")
    daemon.docker("rmi", "copy:one")
    assert "copy" not in daemon.docker("images").stdout
    assert "Loaded image: copy:one" in daemon.docker("load", "-i", out).stdout
    daemon.import_rootfs(busybox["rootfs"], "imported:v1")
    assert daemon.docker("run", "--rm", "imported:v1", "echo", "from import").stdout == "from import\n"
    daemon.docker("rmi", "copy:one", "imported:v1")


def test_rmi_of_image_in_use_is_refused(daemon, busybox):
    daemon.import_rootfs(busybox["rootfs"], "inuse:x")
    n = name()
    daemon.docker("create", "--name", n, "inuse:x", "true")
    try:
        p = daemon.docker("rmi", "inuse:x", check=False)
        assert p.returncode != 0 and "conflict" in p.stderr and "container" in p.stderr
    finally:
        daemon.docker("rm", n)
        daemon.docker("rmi", "inuse:x")


# ---- docker CLI ----

def test_docker_run_prints_output_and_returns_exit_code(daemon):
    p = daemon.docker("run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3", check=False)
    assert p.returncode == 3
    assert p.stdout == "out\n"
    assert p.stderr == "err\n"


def test_docker_run_missing_command_exits_127(daemon):
    p = daemon.docker("run", "--rm", "busybox", "nosuchcommand", check=False)
    assert p.returncode == 127


def test_docker_run_passes_stdin(daemon):
    p = daemon.docker("run", "-i", "--rm", "busybox", "cat", input="from stdin\n")
    assert p.stdout == "from stdin\n"


def test_docker_detached_lifecycle(daemon):
    n = name()
    daemon.docker("run", "-d", "--name", n, "-e", "FOO=bar", "busybox", "sh", "-c",
                  "echo hello $FOO; exec sleep 60")
    try:
        ps = daemon.docker("ps", "--format", "{{.Names}} {{.Status}}").stdout
        assert f"{n} Up" in ps
        wait_for(lambda: "hello bar" in daemon.docker("logs", n).stdout)
        p = daemon.docker("exec", n, "sh", "-c", "echo in exec; exit 4", check=False)
        assert (p.returncode, p.stdout) == (4, "in exec\n")
        state = json.loads(daemon.docker("inspect", n).stdout)[0]["State"]
        assert state["Running"] and state["Pid"] > 0
        assert "sleep" in daemon.docker("top", n).stdout
        daemon.docker("stop", "-t", "1", n)
        state = json.loads(daemon.docker("inspect", n).stdout)[0]["State"]
        assert state["Status"] == "exited" and state["ExitCode"] == 137  # pid 1 ignores SIGTERM
    finally:
        daemon.docker("rm", "-f", n, check=False)
    assert n not in daemon.docker("ps", "-a").stdout


def test_docker_pause_unpause(daemon):
    n = name()
    daemon.docker("run", "-d", "--name", n, "busybox", "sleep", "60")
    try:
        daemon.docker("pause", n)
        assert daemon.docker("inspect", "-f", "{{.State.Status}}", n).stdout.strip() == "paused"
        daemon.docker("unpause", n)
        assert daemon.docker("inspect", "-f", "{{.State.Status}}", n).stdout.strip() == "running"
    finally:
        daemon.docker("rm", "-f", n)


def test_docker_rm_running_container_needs_force(daemon):
    n = name()
    daemon.docker("run", "-d", "--name", n, "busybox", "sleep", "60")
    p = daemon.docker("rm", n, check=False)
    assert p.returncode != 0
    assert "cannot remove a running container" in p.stderr
    daemon.docker("rm", "-f", n)


def test_docker_rename_and_name_conflict(daemon):
    a, b = name(), name()
    daemon.docker("create", "--name", a, "busybox", "true")
    daemon.docker("create", "--name", b, "busybox", "true")
    try:
        p = daemon.docker("rename", a, b, check=False)
        assert p.returncode != 0 and "already in use" in p.stderr
        c = name()
        daemon.docker("rename", a, c)
        daemon.docker("inspect", c)
        a = c
    finally:
        daemon.docker("rm", a, b, check=False)


def test_network_none_has_only_loopback(daemon):
    p = daemon.docker("run", "--rm", "--network", "none", "busybox", "ls", "/sys/class/net")
    assert p.stdout.split() == ["lo"]


def test_read_only_rootfs_and_tmpfs(daemon):
    p = daemon.docker("run", "--rm", "--read-only", "--tmpfs", "/scratch", "busybox", "sh", "-c",
                      "touch /x 2>/dev/null && echo rw || echo ro; touch /scratch/y && echo tmpfs-ok")
    assert p.stdout == "ro\ntmpfs-ok\n"


def test_default_capabilities_exclude_sys_admin(daemon):
    p = daemon.docker("run", "--rm", "busybox", "sh", "-c", "grep CapEff /proc/self/status")
    eff = int(p.stdout.split()[1], 16)
    assert eff & (1 << 21) == 0  # CAP_SYS_ADMIN
    assert eff & (1 << 0)  # CAP_CHOWN
    p = daemon.docker("run", "--rm", "--cap-drop", "ALL", "busybox", "grep", "CapEff", "/proc/self/status")
    assert int(p.stdout.split()[1], 16) == 0


def test_default_seccomp_profile_blocks_namespaces_and_mount(daemon):
    p = daemon.docker("run", "--rm", "busybox", "sh", "-c",
                      "grep Seccomp: /proc/self/status; unshare -U true || echo unshare-denied")
    assert p.stdout.split("\n")[0].split() == ["Seccomp:", "2"]
    assert "unshare-denied" in p.stdout
    p = daemon.docker("run", "--rm", "--security-opt", "seccomp=unconfined", "busybox", "grep", "Seccomp:",
                      "/proc/self/status")
    assert p.stdout.split() == ["Seccomp:", "0"]
    p = daemon.docker("run", "--rm", "--security-opt", "apparmor=x", "busybox", "true", check=False)
    assert p.returncode == 125 and "security-opt" in p.stderr


def test_bind_mount_and_named_volume(daemon, workdir):
    with open(os.path.join(workdir, "in.txt"), "w") as f:
        f.write("from host\n")
    vol = name()
    p = daemon.docker("run", "--rm", "-v", f"{workdir}:/host:ro", "-v", f"{vol}:/vol", "busybox", "sh", "-c",
                      "cat /host/in.txt; echo persisted > /vol/f; touch /host/x 2>/dev/null || echo ro")
    assert p.stdout == "from host\nro\n"
    p = daemon.docker("run", "--rm", "-v", f"{vol}:/vol", "busybox", "cat", "/vol/f")
    assert p.stdout == "persisted\n"
    assert vol in daemon.docker("volume", "ls", "-q").stdout
    daemon.docker("volume", "rm", vol)


def test_log_rotation_keeps_max_file(daemon):
    n = name()
    daemon.docker("run", "--name", n, "--log-opt", "max-size=2k", "--log-opt", "max-file=2", "busybox", "sh",
                  "-c", "i=0; while [ $i -lt 200 ]; do echo line-$i-xxxxxxxxxxxxxxxxxxxxxxxx; i=$((i+1)); done")
    try:
        path = daemon.docker("inspect", "-f", "{{.LogPath}}", n).stdout.strip()
        d = os.path.dirname(path)
        logs = sorted(f for f in os.listdir(d) if "-json.log" in f)
        assert logs == [os.path.basename(path), os.path.basename(path) + ".1"]
        assert all(os.path.getsize(os.path.join(d, f)) <= 2048 + 200 for f in logs)
        out = daemon.docker("logs", n).stdout.splitlines()
        assert out[-1].startswith("line-199-")
    finally:
        daemon.docker("rm", n)


def test_logs_tail_and_timestamps(daemon):
    n = name()
    daemon.docker("run", "--name", n, "busybox", "sh", "-c", "echo a; echo b; echo c")
    try:
        assert daemon.docker("logs", "--tail", "2", n).stdout == "b\nc\n"
        line = daemon.docker("logs", "-t", "--tail", "1", n).stdout
        assert line.endswith(" c\n") and line[:4].isdigit() and "T" in line.split()[0]
    finally:
        daemon.docker("rm", n)


def test_newer_docker_client_negotiates_down(daemon):
    p = daemon.docker("version", "--format", "{{.Server.APIVersion}}", docker="/usr/local/bin/docker")
    assert p.stdout.strip() == "1.41"
    p = daemon.docker("run", "--rm", "busybox", "echo", "negotiated", docker="/usr/local/bin/docker")
    assert p.stdout == "negotiated\n"


def test_events_record_lifecycle(daemon):
    since = daemon.json("GET", "/info")[1]["SystemTime"]
    n = name()
    daemon.docker("run", "--rm", "--name", n, "busybox", "true")
    p = subprocess.Popen(["/usr/bin/docker", "events", "--since", since, "--filter", f"container={n}",
                          "--format", "{{.Action}}"], env=daemon.env, stdout=subprocess.PIPE, text=True)
    try:
        actions = []
        for line in p.stdout:
            actions.append(line.strip())
            if line.strip() == "destroy":
                break
    finally:
        p.kill()
        p.wait()
    assert actions == ["create", "start", "die", "destroy"]


# ---- docker-py ----

def test_docker_py_run_exec_logs(daemon):
    env = dict(os.environ, DOCKER_HOST=daemon.host)
    script = r'''
import docker
c = docker.from_env()
print(c.containers.run("busybox", "echo py-run", remove=True).decode(), end="")
ct = c.containers.run("busybox", "sh -c 'echo started; exec sleep 60'", detach=True)
r = ct.exec_run("sh -c 'echo py-exec; exit 6'")
print(r.exit_code, r.output.decode(), end="")
print(ct.logs().decode(), end="")
ct.reload(); print(ct.status)
ct.stop(timeout=1); ct.remove()
'''
    p = subprocess.run(["/usr/bin/python3", "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout == "py-run\n6 py-exec\nstarted\nrunning\n"


# ---- docker-compose ----

COMPOSE = """version: "3"
services:
  web:
    image: busybox
    command: sh -c 'echo web $$GREETING; echo shared-data > /data/f; exec sleep 60'
    env_file: web.env
    network_mode: none
    volumes: [ "shared:/data" ]
  worker:
    image: busybox
    command: sh -c 'echo worker $$MODE; exec sleep 60'
    env_file: worker.env
    network_mode: none
    volumes: [ "shared:/data" ]
volumes:
  shared:
"""


def test_docker_compose_two_services_volume_env_files(daemon, workdir):
    with open(os.path.join(workdir, "docker-compose.yml"), "w") as f:
        f.write(COMPOSE)
    with open(os.path.join(workdir, "web.env"), "w") as f:
        f.write("GREETING=hello\n")
    with open(os.path.join(workdir, "worker.env"), "w") as f:
        f.write("MODE=batch\n")
    proj = name()
    compose = ["docker-compose", "-p", proj]
    kw = dict(cwd=workdir, env=daemon.env, capture_output=True, text=True, timeout=120)
    try:
        p = subprocess.run(compose + ["up", "-d"], **kw)
        assert p.returncode == 0, p.stderr
        p = subprocess.run(compose + ["ps", "-q"], **kw)
        assert len(p.stdout.split()) == 2
        wait_for(lambda: "web hello" in subprocess.run(compose + ["logs"], **kw).stdout)
        assert "worker batch" in subprocess.run(compose + ["logs"], **kw).stdout
        wait_for(lambda: daemon.docker("exec", f"{proj}_worker_1", "cat", "/data/f", check=False).stdout
                 == "shared-data\n")
    finally:
        p = subprocess.run(compose + ["down", "-v", "-t", "1"], **kw)
    assert p.returncode == 0, p.stderr
    assert f"{proj}_shared" not in daemon.docker("volume", "ls", "-q").stdout


# ---- berth CLI ----

def test_berth_cli_run_ps_logs_rm(daemon):
    n = name()
    assert daemon.berth("run", "--rm", "busybox", "echo", "hi").stdout == "hi\n"
    daemon.berth("run", "-d", "--name", n, "busybox", "sh", "-c", "echo bg; exec sleep 60")
    try:
        assert n in daemon.berth("ps", "--format", "{{.Names}}").stdout.split()
        wait_for(lambda: daemon.berth("logs", n).stdout == "bg\n")
        p = daemon.berth("exec", n, "sh", "-c", "exit 9", check=False)
        assert p.returncode == 9
        assert daemon.berth("inspect", "-f", "{{.State.Status}}", n).stdout == "running\n"
    finally:
        daemon.berth("rm", "-f", n)


def test_berth_cli_exit_codes(daemon):
    assert daemon.berth("run", "--rm", "busybox", "sh", "-c", "exit 42", check=False).returncode == 42
    assert daemon.berth("run", "--rm", "busybox", "nosuch", check=False).returncode == 127
    assert daemon.berth("run", "--rm", "busybox", "/etc", check=False).returncode == 126
    p = daemon.berth("run", "--rm", "nosuchimage", check=False)
    assert p.returncode == 125 and "No such image" in p.stderr


def test_berth_cli_help_everywhere(daemon):
    for verb in ("run", "ps", "logs", "exec", "stop", "rm", "inspect", "images", "daemon", "events"):
        p = daemon.berth(verb, "--help")
        assert p.stdout.startswith("Usage: berth " + verb), verb


# ---- load ----

def test_concurrent_runs_ps_and_logs(daemon):
    errors = []

    def worker(i):
        try:
            n = f"conc{i}-{uuid.uuid4().hex[:6]}"
            p = daemon.docker("run", "--name", n, "busybox", "echo", f"msg{i}", check=False)
            if p.stdout != f"msg{i}\n":
                errors.append((i, p.stdout, p.stderr))
            daemon.docker("ps", "-a", check=False)
            if daemon.docker("logs", n, check=False).stdout != f"msg{i}\n":
                errors.append((i, "logs"))
            daemon.docker("rm", n, check=False)
        except Exception as e:  # noqa: BLE001 - collected and asserted below
            errors.append((i, repr(e)))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert daemon.request("GET", "/_ping")[0] == 200
    mounts = open("/proc/self/mountinfo").read()
    assert os.path.join(daemon.root, "containers") not in mounts
