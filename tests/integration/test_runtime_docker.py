"""dockerd (Debian's docker.io) driving `berth-runtime` through containerd's runc shim.

One dockerd for the module (the only user), on its own socket, data root and exec root, started
with `--add-runtime berth=<berth-runtime symlink>`; the generated busybox image
is `docker load`ed once. Each test runs the same thing with `--runtime berth`
and, where the output must match, with the default runc.
"""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

from conftest import TMP_PREFIX, run, unmount_all

IMAGE = "berthtest/busybox:latest"


@pytest.fixture(scope="module")
def dockerd(berth_bin, images):
    if not shutil.which("dockerd"):
        pytest.skip("docker.io not installed")
    base = tempfile.mkdtemp(prefix=TMP_PREFIX + "docker-")
    link = os.path.join(base, "berth-runtime")
    os.symlink(berth_bin, link)
    sock = os.path.join(base, "docker.sock")
    log = open(os.path.join(base, "dockerd.log"), "w")
    proc = subprocess.Popen(
        ["dockerd", "--data-root", os.path.join(base, "data"), "--exec-root", os.path.join(base, "exec"),
         "-H", "unix://" + sock, "--pidfile", os.path.join(base, "docker.pid"), "--bridge=none",
         "--iptables=false", "--ip6tables=false", "--add-runtime", "berth=" + link],
        stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    try:
        env = dict(os.environ, DOCKER_HOST="unix://" + sock)
        for _ in range(300):
            if os.path.exists(sock) and subprocess.run(["docker", "version"], env=env,
                                                       capture_output=True).returncode == 0:
                break
            if proc.poll() is not None:
                pytest.fail("dockerd exited: " + open(os.path.join(base, "dockerd.log")).read()[-2000:])
            time.sleep(0.1)
        img = images.make(name="docker-busybox", tag=IMAGE)
        run(["docker", "load", "-i", img["docker_archive"]], env=env)

        def docker(*args, check=True, timeout=60, **kw):
            return run(["docker", *map(str, args)], check=check, timeout=timeout, env=env, **kw)
        docker.host = "unix://" + sock
        yield docker
    finally:
        subprocess.run(["docker", "-H", "unix://" + sock, "rm", "-f", "-v",
                        *subprocess.run(["docker", "-H", "unix://" + sock, "ps", "-aq"], capture_output=True,
                                        text=True).stdout.split()], capture_output=True)
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        for _ in range(5):  # dockerd may unmount its data root late: repeat until nothing is left
            unmount_all(base)
            if not any(base in line for line in open("/proc/self/mountinfo")):
                break
            time.sleep(0.2)
        shutil.rmtree(base, ignore_errors=True)


def both(docker, *args):
    """Run the same `docker run --rm` under berth and under runc."""
    b = docker("run", "--rm", "--network", "none", "--runtime", "berth", *args, check=False)
    r = docker("run", "--rm", "--network", "none", "--runtime", "runc", *args, check=False)
    return b, r


def test_docker_run_matches_runc(dockerd):
    script = ("id; grep -E '^Cap(Prm|Eff|Bnd)' /proc/self/status; ulimit -n; "
              "awk '{print $5}' /proc/self/mountinfo | sort; ls /dev; exit 3")
    b, r = both(dockerd, IMAGE, "/bin/sh", "-c", script)
    assert b.returncode == r.returncode == 3, b.stderr
    assert b.stdout == r.stdout


def test_docker_tty_matches_runc(dockerd):
    b, r = both(dockerd, "-t", IMAGE, "/bin/sh", "-c", "tty; stty size 2>/dev/null; echo done")
    assert b.returncode == r.returncode == 0, b.stderr
    assert b.stdout == r.stdout and b.stdout.startswith("/dev/pts/0\n")  # text mode folds \r\n


def test_docker_limits_and_caps(dockerd):
    script = ("cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max; "
              "grep CapEff /proc/self/status; touch /x 2>/dev/null || echo read-only")
    b, r = both(dockerd, "--memory", "48m", "--pids-limit", "21", "--cap-drop", "NET_RAW", "--cap-drop", "CHOWN",
                "--read-only", IMAGE, "/bin/sh", "-c", script)
    assert b.returncode == r.returncode == 0, b.stderr
    assert b.stdout == r.stdout
    assert b.stdout.startswith(f"{48 << 20}\n21\n") and b.stdout.endswith("read-only\n")


def test_docker_detach_exec_logs_stop(dockerd):
    dockerd("run", "-d", "--name", "bd1", "--network", "none", "--runtime", "berth", IMAGE, "/bin/sh", "-c",
            "echo started; trap 'echo stopping; exit 0' TERM; while :; do sleep 0.1; done")
    try:
        p = dockerd("exec", "-e", "V=7", "-u", "33", "-w", "/tmp", "bd1", "/bin/sh", "-c", "echo $V; id -u; pwd")
        assert p.stdout == "7\n33\n/tmp\n"
        assert dockerd("exec", "bd1", "/bin/sh", "-c", "exit 4", check=False).returncode == 4
        top = dockerd("top", "bd1").stdout
        assert "sleep" in top or "sh -c" in top
        dockerd("pause", "bd1")
        assert dockerd("inspect", "-f", "{{.State.Status}}", "bd1").stdout.strip() == "paused"
        dockerd("unpause", "bd1")
        dockerd("stop", "-t", "5", "bd1")
        st = json.loads(dockerd("inspect", "bd1").stdout)[0]["State"]
        assert st["ExitCode"] == 0 and not st["Running"]
        assert dockerd("logs", "bd1").stdout == "started\nstopping\n"
    finally:
        dockerd("rm", "-f", "bd1", check=False)


def test_docker_kill_signal(dockerd):
    dockerd("run", "-d", "--name", "bd2", "--network", "none", "--runtime", "berth", IMAGE, "/bin/sleep", "60")
    try:
        dockerd("kill", "--signal", "KILL", "bd2")
        code = dockerd("wait", "bd2").stdout.strip()
        assert code == "137"
    finally:
        dockerd("rm", "-f", "bd2", check=False)


def test_docker_update_and_stats(dockerd):
    dockerd("run", "-d", "--name", "bd3", "--network", "none", "--runtime", "berth", "--memory", "64m", IMAGE,
            "/bin/sleep", "60")
    try:
        dockerd("update", "--memory", "40m", "--memory-swap", "80m", "--pids-limit", "12", "bd3")
        p = dockerd("exec", "bd3", "/bin/sh", "-c",
                    "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max")
        assert p.stdout == f"{40 << 20}\n12\n"
        st = dockerd("stats", "--no-stream", "--format", "{{.MemUsage}}", "bd3").stdout
        assert "40MiB" in st
    finally:
        dockerd("rm", "-f", "bd3", check=False)


def test_docker_run_interactive_tty(dockerd):
    """`docker run -it`: the client needs a terminal; `script` provides one."""
    if not shutil.which("script"):
        pytest.skip("script (util-linux) not installed")
    cmd = ("docker run -it --rm --network none --runtime berth " + IMAGE +
           " /bin/sh -c 'read line; echo got:$line; tty; exit 5'")
    p = subprocess.run(["script", "-qec", cmd, "/dev/null"], input="hello\n", capture_output=True, text=True,
                       timeout=60, env=dict(os.environ, DOCKER_HOST=dockerd.host))
    assert p.returncode == 5, p.stdout + p.stderr
    assert "got:hello" in p.stdout and "/dev/pts/0" in p.stdout
