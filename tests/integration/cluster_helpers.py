"""Helpers for cluster tests: a `berth server` and `berth agent` per test module.

Shared by the cluster test files (import from here rather than copying): the
server is started on 127.0.0.1 port 0 and its endpoint read from the first line
it prints; clients get an environment with the server's credentials file and CA
bundle, exactly as a user would configure the aws CLI. Every process started
here is stopped by its PID, and the agent's containers and cgroups are removed,
even when a test failed.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import time
import uuid

import awscli_fast
from conftest import run, unmount_all

AWS = "/usr/bin/aws"
DOCKER = shutil.which("docker") or "/usr/bin/docker"


def wait_for(pred, timeout=60, interval=0.1, what="condition"):
    """Poll a remote API (no watch exists) until pred() is truthy; returns its value. The interval grows
    (x1.5 per poll, up to 0.5 s) so that long waits leave the CPU to the other test workers."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval)
        interval = min(interval * 1.5, max(interval, 0.5))


class Server:
    """`berth server --root ROOT --listen 127.0.0.1:0`, stopped with SIGTERM by PID."""

    def __init__(self, binary, base, region="us-east-1"):
        self.bin = binary
        self.root = os.path.join(base, "server")
        self.region = region
        self.log = open(os.path.join(base, "server.log"), "w")
        self.proc = subprocess.Popen([binary, "server", "--root", self.root, "--listen", "127.0.0.1:0",
                                      "--region", region], stdout=subprocess.PIPE, stderr=self.log,
                                     text=True)
        line = self.proc.stdout.readline()
        m = re.search(r"endpoint (https://127\.0\.0\.1:\d+)", line)
        if not m:
            self.stop()
            raise AssertionError(f"berth server did not start: {line!r}")
        self.endpoint = m.group(1)
        self.ca = os.path.join(self.root, "pki", "ca.pem")
        self.credentials = os.path.join(self.root, "credentials")
        with open(os.path.join(self.root, "join-token")) as f:
            self.join_token = f.read().strip()

    def env(self, **extra):
        """A client environment with nothing from the caller's AWS setup leaking in."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(AWS_SHARED_CREDENTIALS_FILE=self.credentials, AWS_CONFIG_FILE=os.devnull,
                   AWS_CA_BUNDLE=self.ca, AWS_ENDPOINT_URL=self.endpoint, AWS_REGION=self.region,
                   AWS_PAGER="")
        env.update(extra)
        return {k: v for k, v in env.items() if v is not None}

    def aws(self, *args, check=True, env=None):
        """Debian's aws CLI against this server; JSON output parsed when the call succeeds."""
        p = awscli_fast.run(["ecs", *args, "--endpoint-url", self.endpoint, "--output", "json"],
                            env=env or self.env(), check=check)
        if p.returncode == 0 and p.stdout.strip():
            return json.loads(p.stdout)
        return p

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        self.log.close()


class Agent:
    """`berth agent` joined to server with private roots, no bridge and its own cgroup parent.

    Needs root. stop() removes the task containers through the node's Docker
    socket (they outlive the agent by design), stops the agent by PID, and
    removes the cgroup directories it made.
    """

    def __init__(self, binary, base, server, cpu=1024, memory=512, attributes=()):
        self.base = os.path.join(base, "agent")
        self.root = os.path.join(self.base, "root")
        self.exec_root = os.path.join(self.base, "run")
        os.makedirs(self.root)
        os.makedirs(self.exec_root)
        self.cgroup_parent = "berth-test-" + uuid.uuid4().hex[:8]
        self.sock = "unix://" + os.path.join(self.exec_root, "berth.sock")
        cmd = [binary, "agent", "--server", server.endpoint, "--token", server.join_token,
               "--root", self.root, "--exec-root", self.exec_root, "--bridge", "none",
               "--cgroup-parent", self.cgroup_parent, "--pull-behavior", "prefer-cached",
               "--cpu", str(cpu), "--memory", str(memory)]
        for a in attributes:
            cmd += ["--attribute", a]
        self.log = open(os.path.join(self.base, "agent.log"), "w")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)

    def docker(self, *args, check=True):
        return run([DOCKER, "-H", self.sock, *map(str, args)], check=check)

    def wait_socket(self, timeout=60):
        def ready():
            if self.proc.poll() is not None:
                raise AssertionError(f"berth agent exited {self.proc.returncode}: {self.log_text()}")
            return self.docker("version", check=False).returncode == 0
        wait_for(ready, timeout, what="the agent's Docker socket")

    def log_text(self):
        with open(os.path.join(self.base, "agent.log")) as f:
            return f.read()

    def stop(self):
        if self.proc.poll() is None:
            ids = self.docker("ps", "-aq", check=False).stdout.split()
            if ids:
                self.docker("rm", "-f", *ids, check=False)
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        self.kill_leftovers()
        unmount_all(self.base)
        self.remove_cgroups()

    def cgroup_dirs(self):
        """This agent's cgroup trees: /sys/fs/cgroup/<parent>* (v2) or /sys/fs/cgroup/*/<parent>* (v1)."""
        tops = ["/sys/fs/cgroup"] + [os.path.join("/sys/fs/cgroup", d) for d in os.listdir("/sys/fs/cgroup")]
        return [os.path.join(top, name) for top in tops if os.path.isdir(top)
                for name in os.listdir(top) if name.startswith(self.cgroup_parent)]

    def kill_leftovers(self):
        """A container whose creation raced with stop() outlives the agent: kill what is left in
        this agent's cgroups and the shims under its exec root (all descendants of our agent)."""
        pids = set()
        for top in self.cgroup_dirs():
            for dirpath, _, files in os.walk(top):
                if "cgroup.procs" in files:
                    with open(os.path.join(dirpath, "cgroup.procs")) as f:
                        pids.update(int(x) for x in f.read().split())
        for pid in os.listdir("/proc"):
            if pid.isdigit():
                try:
                    with open(f"/proc/{pid}/cmdline", "rb") as f:
                        if self.exec_root.encode() in f.read():
                            pids.add(int(pid))
                except OSError:
                    pass
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for pid in pids:  # they are not our children: wait for them to vanish
            wait_for(lambda: not os.path.exists(f"/proc/{pid}") or _zombie(pid), timeout=30,
                     what=f"pid {pid} to exit")

    def remove_cgroups(self):
        """Remove this agent's cgroup directories, deepest first."""
        for top in self.cgroup_dirs():
            for dirpath, _, _ in sorted(os.walk(top), key=lambda w: -len(w[0])):
                try:
                    os.rmdir(dirpath)
                except OSError:
                    pass


def _zombie(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True
