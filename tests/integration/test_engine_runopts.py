"""Container run options and volume semantics, driven by the real docker CLI, docker-py and berth's CLI.

--init, --ulimit (and the daemon's --default-ulimit), --security-opt seccomp=PROFILE,
docker update, --privileged, anonymous volumes, copy-up, --volumes-from, -v modes and
--mount. One daemon for the module (engine_daemon.Daemon).
"""
import json
import os
import shutil
import subprocess
import tempfile
import uuid

import pytest

from conftest import run
from engine_daemon import Daemon, wait_for

DOCKER_NEW = "/usr/local/bin/docker"


@pytest.fixture(scope="module")
def daemon(berth_bin, busybox):
    d = Daemon(berth_bin)
    d.extra_args = ["--default-ulimit", "nofile=512:1024"]
    try:
        d.start()
        d.load_busybox(busybox)
        dockerfile = ("FROM busybox\n"
                      "RUN mkdir -p /var/spool/data && echo seeded > /var/spool/data/f"
                      " && chown 1000:1000 /var/spool/data/f && chmod 640 /var/spool/data/f\n"
                      'VOLUME ["/var/spool"]\n')
        run(["/usr/bin/docker", "build", "-q", "-t", "volimg", "-"], input=dockerfile,
            env=dict(d.env, DOCKER_BUILDKIT="0"))
        yield d
    finally:
        d.cleanup()


@pytest.fixture
def tmp(daemon):
    p = tempfile.mkdtemp(prefix="runopts-", dir=daemon.base)
    yield p
    shutil.rmtree(p, ignore_errors=True)


def name():
    return "t" + uuid.uuid4().hex[:10]


def volumes(daemon):
    return {v["Name"] for v in daemon.json("GET", "/volumes")[1]["Volumes"]}


def mounts(daemon, c):
    return daemon.json("GET", f"/containers/{c}/json")[1]["Mounts"]


def volumes_api(daemon):
    return {v["Name"] for v in daemon.json("GET", "/volumes")[1]["Volumes"]}


# ---- --init ----

def test_init_runs_tini_as_pid1_reaps_zombies_and_propagates_exit_code(daemon):
    # The orphan's parent exits at once; the orphan is reparented to PID 1 and must be reaped there.
    p = daemon.docker("run", "--rm", "--init", "busybox", "sh", "-c",
                      "(sh -c 'exit 0' &); sleep 1; ps -o pid,stat,args; exit 3", check=False)
    assert p.returncode == 3
    lines = p.stdout.splitlines()[1:]
    first = lines[0].split(None, 2)
    assert first[0] == "1" and first[2].startswith("/sbin/docker-init -- sh")
    assert not [line for line in lines if line.split()[1].startswith("Z")], p.stdout


def test_init_forwards_stop_signal(daemon):
    c = name()
    daemon.docker("run", "-d", "--name", c, "--init", "busybox", "sh", "-c",
                  "trap 'exit 7' TERM; while :; do sleep 0.1; done")
    try:
        daemon.docker("stop", "-t", "20", c)
        assert daemon.docker("inspect", "--format", "{{.State.ExitCode}}", c).stdout.strip() == "7"
    finally:
        daemon.docker("rm", "-f", c, check=False)


# ---- ulimits ----

def test_daemon_default_ulimit_applies_unless_overridden(daemon):
    out = daemon.docker("run", "--rm", "busybox", "sh", "-c", "ulimit -n; ulimit -Hn").stdout.split()
    assert out == ["512", "1024"]
    out = daemon.docker("run", "--rm", "--ulimit", "nofile=100:200", "busybox", "sh", "-c",
                        "ulimit -n; ulimit -Hn").stdout.split()
    assert out == ["100", "200"]


def test_ulimit_above_daemon_hard_limit_fails_clearly(daemon):
    p = daemon.docker("run", "--rm", "--ulimit", "nofile=100:999999999", "busybox", "true",
                      check=False, timeout=30)
    assert p.returncode == 125
    assert "CAP_SYS_RESOURCE" in p.stderr and "nofile" in p.stderr


def test_bad_ulimits_are_400(daemon):
    for ul, want in (([{"Name": "bogus", "Soft": 1, "Hard": 1}], "invalid ulimit type"),
                     ([{"Name": "nofile", "Soft": 9, "Hard": 1}], "soft limit"),
                     ("nofile", "Ulimits")):
        st, body = daemon.json("POST", "/containers/create",
                               {"Image": "busybox", "Cmd": ["true"], "HostConfig": {"Ulimits": ul}})
        assert st == 400 and want in body["message"], body
    p = daemon.berth("run", "--rm", "--ulimit", "nofile=2:1", "busybox", "true", check=False)
    assert p.returncode != 0 and "soft limit" in p.stderr


# ---- seccomp profiles ----

DENY_MKDIR = {"defaultAction": "SCMP_ACT_ALLOW",
              "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]}],
              "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
                           {"names": ["chmod", "fchmodat"], "action": "SCMP_ACT_ERRNO",
                            "excludes": {"caps": ["CAP_FOWNER"]}}]}


def write_profile(tmp, prof, fname="profile.json"):
    path = os.path.join(tmp, fname)
    with open(path, "w") as f:
        f.write(prof if isinstance(prof, str) else json.dumps(prof))
    return path


def test_seccomp_profile_from_docker_cli_is_enforced(daemon, tmp, docker=DOCKER_NEW):
    path = write_profile(tmp, DENY_MKDIR)
    p = daemon.docker("run", "--rm", "--security-opt", f"seccomp={path}", "busybox", "sh", "-c",
                      "mkdir /x; echo rc=$?; chmod 700 /tmp && echo chmodok", check=False, docker=docker)
    assert "Permission denied" in p.stderr and "rc=1" in p.stdout
    assert "chmodok" in p.stdout  # the chmod rule is excluded: the container has CAP_FOWNER


def test_berth_cli_init_ulimit_and_seccomp_profile_path(daemon, tmp):
    path = write_profile(tmp, DENY_MKDIR)
    p = daemon.berth("run", "--rm", "--init", "--ulimit", "nofile=64", "--security-opt", f"seccomp={path}",
                     "busybox", "sh", "-c", "ps -o pid,args | sed -n 2p; ulimit -n; ulimit -Hn; mkdir /x", check=False)
    assert p.returncode == 1 and "Permission denied" in p.stderr
    out = p.stdout.splitlines()
    assert out[0].split()[:2] == ["1", "/sbin/docker-init"] and out[1:] == ["64", "64"]


def test_seccomp_profile_path_in_raw_api(daemon, tmp):
    path = write_profile(tmp, DENY_MKDIR)
    st, body = daemon.json("POST", "/containers/create", {"Image": "busybox", "Cmd": ["true"],
                                                          "HostConfig": {"SecurityOpt": [f"seccomp={path}"]}})
    assert st == 201
    hc = daemon.json("GET", f"/containers/{body['Id']}/json")[1]["HostConfig"]
    assert json.loads(hc["SecurityOpt"][0][len("seccomp="):])["defaultAction"] == "SCMP_ACT_ALLOW"
    daemon.request("DELETE", f"/containers/{body['Id']}")


def test_seccomp_unconfined_lifts_the_default_profile(daemon):
    cmd = ["busybox", "sh", "-c", "unshare -U true && echo ok"]
    assert "ok" not in daemon.docker("run", "--rm", *cmd, check=False).stdout
    assert "ok" in daemon.docker("run", "--rm", "--security-opt", "seccomp=unconfined", *cmd).stdout


@pytest.mark.parametrize("prof,want", [
    ("{not json", "seccomp profile"),
    ({"defaultAction": "SCMP_ACT_BOGUS"}, "unknown seccomp action"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "architectures": [], "archMap": []}, "either"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"name": "a", "names": ["b"], "action": "SCMP_ACT_ALLOW"}]},
     "'name' and 'names'"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["a"], "action": "SCMP_ACT_ALLOW",
                                                       "args": [{"index": 7, "value": 1, "op": "SCMP_CMP_EQ"}]}]},
     "index"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": "mkdir", "action": "SCMP_ACT_ALLOW"}]}, "names"),
])
def test_malformed_seccomp_profiles_are_rejected_at_create(daemon, tmp, prof, want):
    if isinstance(prof, str):  # one through docker's CLI (it sends the file's content)
        path = write_profile(tmp, prof)
        p = daemon.docker("create", "--security-opt", f"seccomp={path}", "busybox", "true", check=False)
        assert p.returncode != 0 and want in p.stderr, p.stderr
    st, body = daemon.json("POST", "/containers/create", {"Image": "busybox", "HostConfig": {
        "SecurityOpt": ["seccomp=" + (prof if isinstance(prof, str) else json.dumps(prof))]}})
    assert st == 400 and want in body["message"]


def test_unknown_security_opt_is_400(daemon):
    st, body = daemon.json("POST", "/containers/create",
                           {"Image": "busybox", "HostConfig": {"SecurityOpt": ["seccomp=relative.json"]}})
    assert st == 400 and "absolute" in body["message"]
    st, body = daemon.json("POST", "/containers/create",
                           {"Image": "busybox", "HostConfig": {"SecurityOpt": ["bogus=1"]}})
    assert st == 400


# ---- docker update ----

def cgroup(ctrl, cid, f):
    with open(f"/sys/fs/cgroup/{ctrl}/berth/{cid}/{f}") as fh:
        return fh.read().strip()


def test_update_applies_live_to_the_cgroup_and_persists(daemon):
    cid = daemon.docker("run", "-d", "-m", "64m", "busybox", "sleep", "300").stdout.strip()
    try:
        daemon.docker("update", "-m", "128m", "--memory-swap", "256m", "--cpus", "0.5", "--pids-limit", "50",
                      "--cpu-shares", "512", "--restart", "on-failure:3", cid)
        assert cgroup("memory", cid, "memory.limit_in_bytes") == str(128 << 20)
        assert cgroup("cpu", cid, "cpu.cfs_quota_us") == "50000"
        assert cgroup("cpu", cid, "cpu.shares") == "512"
        assert cgroup("pids", cid, "pids.max") == "50"
        hc = json.loads(daemon.docker("inspect", "--format", "{{json .HostConfig}}", cid).stdout)
        assert (hc["Memory"], hc["MemorySwap"], hc["NanoCpus"], hc["PidsLimit"]) == (128 << 20, 256 << 20,
                                                                                     500000000, 50)
        assert hc["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
        daemon.berth("update", "--cpuset-cpus", "0", "--pids-limit", "-1", cid)
        assert cgroup("cpuset", cid, "cpuset.cpus") == "0"
        assert cgroup("pids", cid, "pids.max") == "max"
    finally:
        daemon.docker("rm", "-f", cid, check=False)


def test_update_of_a_stopped_container_applies_at_start(daemon):
    import docker as dockerpy
    cid = daemon.docker("create", "busybox", "sleep", "300").stdout.strip()
    try:
        client = dockerpy.DockerClient(base_url=daemon.host, version="1.41")
        c = client.containers.get(cid)
        assert c.update(mem_limit="100m", cpu_quota=20000, cpu_period=100000) == {"Warnings": []}
        c.start()
        assert cgroup("memory", cid, "memory.limit_in_bytes") == str(100 << 20)
        assert cgroup("cpu", cid, "cpu.cfs_quota_us") == "20000"
    finally:
        daemon.docker("rm", "-f", cid, check=False)


def test_update_bad_input_gives_docker_errors(daemon):
    cid = daemon.docker("create", "--cpus", "1", "busybox", "true").stdout.strip()
    try:
        p = daemon.docker("update", "--cpu-quota", "5000", cid, check=False)
        assert p.returncode != 0 and "Conflicting options" in p.stderr, p.stderr
        for body, want in (({"Memory": 1 << 20}, "Minimum memory limit"),
                           ({"BlkioWeight": 5}, "blkio weight"),
                           ({"RestartPolicy": {"Name": "sometimes"}}, "invalid restart policy"),
                           ({"Memory": 64 << 20, "MemorySwap": 32 << 20}, "memoryswap")):
            st, resp = daemon.json("POST", f"/containers/{cid}/update", body)
            assert st == 400 and want in resp["message"], (body, resp)
        st, body = daemon.json("POST", f"/containers/{cid}/update", {"Memory": "lots"})
        assert st == 400 and "Memory" in body["message"]
        assert daemon.json("POST", "/containers/nope/update", {})[0] == 404
    finally:
        daemon.docker("rm", "-f", cid, check=False)


# ---- --privileged ----

def test_privileged_sees_host_devices_and_can_create_links(daemon):
    host = set(os.listdir("/dev"))
    out = daemon.docker("run", "--rm", "--privileged", "busybox", "sh", "-c",
                        "ls /dev; ip link add brx0 type bridge && echo LINKOK", timeout=60).stdout.split()
    assert "LINKOK" in out
    default = {"null", "zero", "full", "random", "urandom", "tty", "console", "pts", "shm", "mqueue",
               "ptmx", "fd", "stdin", "stdout", "stderr", "core"}
    assert (set(out) & host) - default, out
    p = daemon.docker("run", "--rm", "busybox", "ip", "link", "add", "brx0", "type", "bridge", check=False)
    # refused for want of CAP_NET_ADMIN, not for a missing /sbin/ip (exit 127)
    assert p.returncode not in (0, 126, 127) and "not permitted" in p.stderr, (p.returncode, p.stderr)


def test_failed_start_of_rm_container_removes_it(daemon):
    c = name()
    p = daemon.docker("run", "--rm", "--name", c, "busybox", "/nonexistent", check=False, timeout=30)
    assert p.returncode == 127
    wait_for(lambda: daemon.docker("inspect", c, check=False).returncode != 0)


def test_cap_add_beyond_bounding_set_or_unknown_is_rejected(daemon):
    st, body = daemon.json("POST", "/containers/create",
                           {"Image": "busybox", "HostConfig": {"CapAdd": ["CAP_NOPE"]}})
    assert st == 400 and "unknown capability" in body["message"]
    # a non-string entry is refused at create
    for caps in ({"CapAdd": [5]}, {"CapDrop": [None]}, {"CapAdd": ["chown", {"x": 1}]}):
        st, body = daemon.json("POST", "/containers/create", {"Image": "busybox", "HostConfig": caps})
        assert st == 400 and list(caps)[0] in body["message"], (caps, body)
    assert daemon.request("GET", "/_ping")[0] == 200


# ---- volumes ----

def test_anonymous_volumes_listed_and_removed_with_rm_v(daemon):
    before = volumes(daemon)
    c = daemon.docker("create", "-v", "/data", "volimg", "true").stdout.strip()
    ms = {m["Destination"]: m for m in mounts(daemon, c)}
    assert set(ms) == {"/data", "/var/spool"}
    assert all(m["Type"] == "volume" and len(m["Name"]) == 64 and m["Driver"] == "local" for m in ms.values())
    assert {m["Name"] for m in ms.values()} <= volumes(daemon)
    daemon.docker("rm", "-v", c)
    assert volumes(daemon) == before


def test_rm_without_v_keeps_anonymous_volumes_and_rm_flag_removes_them(daemon):
    st, body = daemon.json("POST", "/containers/create", {"Image": "busybox", "HostConfig": {"Binds": ["/data"]}})
    vol = mounts(daemon, body["Id"])[0]["Name"]
    assert daemon.request("DELETE", f"/containers/{body['Id']}")[0] == 204
    assert vol in volumes(daemon)
    assert daemon.request("DELETE", f"/volumes/{vol}")[0] == 204
    before = volumes(daemon)
    daemon.docker("run", "--rm", "-v", "/data", "busybox", "true")
    wait_for(lambda: volumes(daemon) == before)


def test_copy_up_into_empty_new_volumes_keeps_owner_mode_and_exec_bits(daemon):
    v1, v2, v3 = name(), name(), name()
    st, info = daemon.json("POST", "/volumes/create", {"Name": v3})
    open(os.path.join(info["Mountpoint"], "mine"), "w").close()  # not empty: no copy-up
    out = daemon.docker("run", "--rm", "-v", f"{v1}:/var/spool", "-v", f"{v2}:/bin", "-v", f"{v3}:/etc",
                        "volimg", "sh", "-c", "ls -ln /var/spool/data/f; ls -ln /bin/busybox; ls /etc").stdout.splitlines()
    assert out[0].startswith("-rw-r-----") and " 1000 " in out[0]
    assert out[1].startswith("-rwx") and " 0 " in out[1]
    assert out[2:] == ["mine"]
    out = daemon.docker("run", "--rm", "-v", f"{v1}:/mnt", "busybox", "cat", "/mnt/data/f").stdout
    assert out == "seeded\n"
    for v in (v1, v2, v3):
        assert daemon.request("DELETE", f"/volumes/{v}")[0] == 204


def test_nocopy_disables_copy_up(daemon):
    v1, v2 = name(), name()
    out = daemon.docker("run", "--rm", "-v", f"{v1}:/var/spool:nocopy", "--mount",
                        f"source={v2},target=/etc,volume-nocopy", "volimg", "ls", "/var/spool", "/etc").stdout
    assert out.split() == ["/etc:", "/var/spool:"]
    for v in (v1, v2):
        assert daemon.request("DELETE", f"/volumes/{v}")[0] == 204


def test_volumes_from_with_ro_and_rw(daemon, tmp):
    src = name()
    daemon.docker("create", "--name", src, "-v", "/shared", "-v", f"{tmp}:/hostdir", "busybox", "true")
    try:
        daemon.docker("run", "--rm", "--volumes-from", src, "busybox", "sh", "-c",
                      "echo hi > /shared/f && echo hi > /hostdir/g")
        assert open(os.path.join(tmp, "g")).read() == "hi\n"
        p = daemon.docker("run", "--rm", "--volumes-from", f"{src}:ro", "busybox", "sh", "-c",
                          "cat /shared/f; touch /shared/x", check=False)
        assert p.stdout == "hi\n" and "Read-only file system" in p.stderr
        p = daemon.docker("run", "--rm", "--volumes-from", "nosuchcontainer", "busybox", "true", check=False)
        assert p.returncode == 125 and "No such container" in p.stderr
        st, body = daemon.json("POST", "/containers/create", {"Image": "busybox", "HostConfig": {
            "VolumesFrom": [f"{src}:xx"]}})
        assert st == 400 and "invalid mode" in body["message"]
    finally:
        daemon.docker("rm", "-v", src, check=False)


def test_v_modes_ro_propagation_and_selinux_labels(daemon, tmp):
    c = name()
    p = daemon.docker("run", "--name", c, "-v", f"{tmp}:/a:ro,rshared", "-v", f"{tmp}:/b:z", "-v", f"{tmp}:/c:Z,rw",
                      "busybox", "sh", "-c", "touch /b/ok /a/x", check=False)
    try:
        assert "Read-only file system" in p.stderr and os.path.exists(os.path.join(tmp, "ok"))
        ms = {m["Destination"]: m for m in mounts(daemon, c)}
        assert ms["/a"]["RW"] is False and ms["/a"]["Propagation"] == "rshared" and ms["/a"]["Type"] == "bind"
        assert ms["/b"]["RW"] is True and ms["/c"]["Mode"] == "Z,rw"
    finally:
        daemon.request("DELETE", f"/containers/{c}?force=1")


def test_bad_v_specs_get_clear_errors(daemon):
    p = daemon.docker("create", "-v", "/x:/y:bogus", "busybox", "true", check=False)
    assert p.returncode != 0 and "invalid mode: bogus" in p.stderr
    for spec, want in (("/x:/y:ro,rw", "invalid mode"), ("/x:relative", "must be absolute"),
                       ("/x:/y:nocopy", "invalid mode"), ("vol:/y:rshared", "invalid mode"),
                       ("bad name!:/y", "invalid characters"), ("/x:/", "can't be '/'"),
                       ("a:b:c:d", "invalid volume specification")):
        st, body = daemon.json("POST", "/containers/create", {"Image": "busybox", "HostConfig": {"Binds": [spec]}})
        assert st == 400 and want in body["message"], (spec, body)


def test_duplicate_mount_point_is_rejected(daemon, tmp):
    p = daemon.docker("create", "-v", f"{tmp}:/d", "--mount", f"type=bind,src={tmp},dst=/d", "busybox", "true",
                      check=False)
    assert "Duplicate mount point" in p.stderr


def test_mount_bind_readonly_propagation_and_nonrecursive(daemon, tmp):
    sub = os.path.join(tmp, "sub")
    os.mkdir(sub)
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", sub], check=True)
    c = name()
    try:
        open(os.path.join(sub, "inner"), "w").close()
        out = daemon.docker("run", "--name", c, "--mount", f"type=bind,source={tmp},target=/m,readonly",
                            "--mount", f"type=bind,source={tmp},target=/n,bind-nonrecursive,bind-propagation=rslave",
                            "busybox", "sh", "-c", "ls /m/sub; echo N; ls /n/sub; touch /m/x 2>&1; true").stdout
        assert out.split() == ["inner", "N", "touch:", "/m/x:", "Read-only", "file", "system"]
        ms = {m["Destination"]: m for m in mounts(daemon, c)}
        assert ms["/m"]["RW"] is False and ms["/n"]["Propagation"] == "rslave"
    finally:
        daemon.request("DELETE", f"/containers/{c}?force=1")
        subprocess.run(["umount", "-l", sub])


def test_mount_volume_options_labels_and_tmpfs(daemon):
    v = name()
    out = daemon.docker("run", "--rm", "--mount",
                        f"type=volume,source={v},target=/v,volume-label=team=db,volume-opt=type=tmpfs,"
                        "volume-opt=device=tmpfs,volume-opt=o=size=1m",
                        "--mount", "type=tmpfs,target=/t,tmpfs-size=2m,tmpfs-mode=1770",
                        "busybox", "sh", "-c", "df -k /v | tail -1; df -k /t | tail -1; stat -c %a /t").stdout
    lines = out.splitlines()
    assert lines[0].split()[1] == "1024" and lines[1].split()[1] == "2048" and lines[2] == "1770"
    info = json.loads(daemon.docker("volume", "inspect", v).stdout)[0]
    assert info["Labels"] == {"team": "db"} and info["Options"]["type"] == "tmpfs"
    daemon.docker("volume", "rm", v)
    p = daemon.docker("run", "--rm", "--mount", "type=volume,target=/v,volume-opt=bogus=1", "busybox", "true",
                      check=False)
    assert p.returncode == 125 and "invalid option key" in p.stderr


@pytest.mark.parametrize("spec,want", [
    ("type=bind,source=/nonexistent-berth,target=/t", "bind source path does not exist"),
    ("type=bind,target=/t", "Source must not be empty"),
    ("type=tmpfs,source=x,target=/t", "Source must not be specified"),
    ("type=volume,source=v", "target is required"),
    ("type=nfs,target=/t", "mount type unknown"),
    ("type=volume,target=/t,bind-propagation=rshared", "BindOptions must not be specified"),
])
def test_bad_mount_specs_get_clear_errors(daemon, spec, want):
    # The new docker CLI validates some itself; berth's CLI leaves it to the daemon (same messages).
    p = daemon.berth("create", "--mount", spec, "busybox", "true", check=False)
    assert p.returncode != 0 and want in p.stderr, p.stderr


def test_docker_py_volumes_and_mounts(daemon, tmp):
    import docker as dockerpy
    client = dockerpy.DockerClient(base_url=daemon.host, version="1.41")
    v = name()
    out = client.containers.run("busybox", ["sh", "-c", "ls /b; cat /v/f 2>/dev/null; echo done"], remove=True,
                                volumes={tmp: {"bind": "/b", "mode": "ro"}, v: {"bind": "/v", "mode": "rw"}},
                                mounts=[dockerpy.types.Mount("/t", None, type="tmpfs", tmpfs_size=1 << 20)],
                                init=True, ulimits=[dockerpy.types.Ulimit(name="nproc", soft=100, hard=200)])
    assert out.endswith(b"done\n")
    client.volumes.get(v).remove()


def test_docker_compose_init_ulimits_and_volumes(daemon, tmp):
    compose = os.path.join(tmp, "docker-compose.yml")
    with open(compose, "w") as f:
        f.write("version: '2.4'\nservices:\n  app:\n    image: volimg\n    network_mode: none\n    init: true\n"
                "    ulimits:\n      nofile: {soft: 300, hard: 400}\n"
                "    command: [\"sh\", \"-c\", \"ulimit -n; cat /var/spool/data/f; ps -o pid,args | head -2\"]\n")
    env = dict(daemon.env, COMPOSE_PROJECT_NAME=name())
    try:
        out = subprocess.run(["docker-compose", "-f", compose, "run", "--rm", "-T", "app"], env=env,
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        assert "300" in out.stdout and "seeded" in out.stdout and "docker-init" in out.stdout
    finally:
        subprocess.run(["docker-compose", "-f", compose, "down", "-v"], env=env, capture_output=True, timeout=60)


def test_daemon_config_init_path_and_default_ulimits(berth_bin, tmp):
    bad = os.path.join(tmp, "bad.json")
    with open(bad, "w") as f:
        json.dump({"default-ulimits": {"bogus": {"Soft": 1, "Hard": 1}}}, f)
    p = subprocess.run([berth_bin, "daemon", "--config-file", bad, "--root", os.path.join(tmp, "r"),
                        "--exec-root", os.path.join(tmp, "x"), "--bridge", "none"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode != 0 and "invalid ulimit type: bogus" in p.stderr
    good = os.path.join(tmp, "good.json")
    with open(good, "w") as f:
        json.dump({"init-path": "/nonexistent/tini", "default-ulimits": {"nofile": {"Soft": 10, "Hard": 20}}}, f)
    d = Daemon(berth_bin)
    d.extra_args = ["--config-file", good]
    try:
        d.start()
        st, body = d.json("POST", "/containers/create", {"Image": "busybox", "HostConfig": {"Init": True}})
        assert st == 400 and "/nonexistent/tini" in body["message"] and "--init-path" in body["message"]
    finally:
        d.cleanup()


@pytest.mark.parametrize("client", ["docker", "berth"])
def test_cgroup_parent_places_the_container_and_bad_ones_are_refused(daemon, client):
    run_ = daemon.docker if client == "docker" else daemon.berth
    parent = f"berth-test-{uuid.uuid4().hex[:8]}"
    try:
        p = run_("run", "--rm", "--cgroup-parent", f"{parent}/sub", "busybox", "cat", "/proc/self/cgroup")
        lines = [l for l in p.stdout.splitlines() if ":memory:" in l or l.startswith("0::")]
        assert lines and all(f"/{parent}/sub/" in l for l in lines), p.stdout
        for bad in ("../escape", "a/./b", "sp ace"):
            q = run_("run", "--rm", "--cgroup-parent", bad, "busybox", "true", check=False)
            assert q.returncode == 125 and "invalid cgroup parent" in q.stderr, q.stderr
    finally:
        for root in ("/sys/fs/cgroup", "/sys/fs/cgroup/unified"):
            for ctl in [""] + (os.listdir(root) if os.path.isdir(root) else []):
                for d in (f"{root}/{ctl}/{parent}/sub", f"{root}/{ctl}/{parent}"):
                    if os.path.isdir(d):
                        try:
                            os.rmdir(d)
                        except OSError:
                            pass
