#!/usr/bin/python3
"""bench/cluster_bench.py - the helper of bench/cluster.sh (issue 12 section 8).

Builds, on this one machine, a Docker Swarm of 3 dockerd "nodes" and a berth
cluster of the same shape (a server in a VPC namespace, 3 agents in host
namespaces on its bridge), measures both side by side and prints a table with
ratios. Also: one task RUNNING after RunTask on a warm node, idle RSS of the
server, the agents and dockerd, and the server's CPU under N simulated nodes
that speak the real agent protocol (tests/integration/berth_agent_client.py).

Everything it creates carries PREFIX (network namespaces PREFIX-*, cgroup
parents PREFIX-*) or lives under DIR; it is removed in a finally block, and
bench/cluster.sh sweeps the same names again from its trap.
"""
import argparse
import contextlib
import ctypes
import heapq
import json
import os
import queue
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import http.client
import json as _json
import ssl
from urllib.parse import urlencode, urlparse

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))

AWS_REGION = "us-east-1"
DOCKER = "/usr/bin/docker"
CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL("libc.so.6", use_errno=True)
TICK = os.sysconf("SC_CLK_TCK")


class Interrupted(Exception):
    pass


def on_signal(signum, _frame):
    raise Interrupted(f"signal {signum}")


def log(*a):
    print(f"[{time.strftime('%H:%M:%S')}]", *a, file=sys.stderr, flush=True)


def run(cmd, check=True, timeout=120, **kw):
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    p = subprocess.run(cmd, timeout=timeout, **kw)
    if check and p.returncode != 0:
        raise RuntimeError(f"{cmd!r} exited {p.returncode}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}")
    return p


def wait_for(pred, timeout, what, every=0.1):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(every)


@contextlib.contextmanager
def in_netns(name):
    """The calling thread (and what it spawns) inside /run/netns/NAME for the block."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{name}", os.O_RDONLY)
    try:
        if _libc.setns(target, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns")
        try:
            yield
        finally:
            if _libc.setns(own, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns back")
    finally:
        os.close(own)
        os.close(target)


def rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime (fields 14, 15)


def children(pid):
    out = []
    try:
        for t in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{t}/children") as f:
                out += [int(x) for x in f.read().split()]
    except OSError:
        pass
    return out


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def mounts_under(path):
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split()[4].encode().decode("unicode_escape")
            if mp == path or mp.startswith(path.rstrip("/") + "/"):
                found.append(mp)
    return sorted(found, key=len, reverse=True)


def unmount_all(path):
    for mp in mounts_under(path):
        subprocess.run(["umount", "-l", mp], capture_output=True)


def remove_cgroups(prefix):
    """Directories /sys/fs/cgroup/*/PREFIX* (and the v2 root), deepest first."""
    for root in ("/sys/fs/cgroup", "/sys/fs/cgroup/unified"):
        if not os.path.isdir(root):
            continue
        tops = [root] + [os.path.join(root, c) for c in os.listdir(root)]
        for top in tops:
            if not os.path.isdir(top):
                continue
            try:
                names = [n for n in os.listdir(top) if n.startswith(prefix)]
            except OSError:
                continue
            for n in names:
                d = os.path.join(top, n)
                for dirpath, _, _ in sorted(os.walk(d), key=lambda t: -len(t[0])):
                    with contextlib.suppress(OSError):
                        os.rmdir(dirpath)


def stop_pid(proc, timeout=30):
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def median(xs):
    return statistics.median(xs) if xs else float("nan")


class UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path, timeout=30):
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)


def docker_api(sock, method, path):
    c = UnixHTTP(sock)
    try:
        c.request(method, path)
        r = c.getresponse()
        body = r.read()
        if r.status >= 300:
            raise RuntimeError(f"{method} {path}: {r.status} {body[:300]!r}")
        return json.loads(body) if body else None
    finally:
        c.close()


# --------------------------------------------------------------------------- network


class Net:
    """A VPC namespace with bridge br0 (192.168.77.1/24) and host namespaces on it."""

    def __init__(self, prefix):
        self.prefix = prefix
        self.vpc = f"{prefix}-vpc"
        self.hosts = []

    def _ns(self, name):
        run(["ip", "netns", "add", name])
        run(["ip", "-n", name, "link", "set", "lo", "up"])

    def build(self):
        self._ns(self.vpc)
        run(["ip", "-n", self.vpc, "link", "add", "br0", "type", "bridge"])
        run(["ip", "-n", self.vpc, "addr", "add", "192.168.77.1/24", "dev", "br0"])
        run(["ip", "-n", self.vpc, "link", "set", "br0", "up"])

    def add_host(self, tag, addr):
        """A host namespace PREFIX-TAG with ADDR/24 on the bridge."""
        ns = f"{self.prefix}-{tag}"
        self._ns(ns)
        a, b = f"{tag}a", f"{tag}b"
        run(["ip", "-n", ns, "link", "add", a, "type", "veth", "peer", "name", b, "netns", self.vpc])
        run(["ip", "-n", ns, "addr", "add", f"{addr}/24", "dev", a])
        run(["ip", "-n", ns, "link", "set", a, "up"])
        run(["ip", "-n", ns, "route", "add", "default", "via", "192.168.77.1"])
        run(["ip", "-n", self.vpc, "link", "set", b, "master", "br0", "up"])
        self.hosts.append(ns)
        return ns

    def delete(self):
        for ns in self.hosts + [self.vpc]:
            subprocess.run(["ip", "netns", "delete", ns], capture_output=True)
        self.hosts = []


# --------------------------------------------------------------------------- swarm


class SwarmNode:
    def __init__(self, bench, i):
        self.i = i
        self.addr = f"192.168.77.{10 + i}"
        self.base = os.path.join(bench.dir, f"s{i}")
        os.makedirs(self.base)
        self.sock = os.path.join(self.base, "docker.sock")
        self.pidfile = os.path.join(self.base, "docker.pid")
        self.cgroup_parent = f"{bench.prefix}-s{i}"
        self.ns = bench.net.add_host(f"s{i}", self.addr)
        self.proc = None

    def start(self):
        env = dict(os.environ, DOCKER_SERVICE_PREFER_OFFLINE_IMAGE="1")  # the image is loaded; no pull
        log_f = open(os.path.join(self.base, "dockerd.log"), "w")
        self.proc = subprocess.Popen(
            ["nsenter", f"--net=/run/netns/{self.ns}", "dockerd", "--data-root", os.path.join(self.base, "data"),
             "--exec-root", os.path.join(self.base, "x"), "-H", "unix://" + self.sock, "--pidfile", self.pidfile,
             "--bridge", "none", "--cgroup-parent", self.cgroup_parent],
            stdout=log_f, stderr=log_f, stdin=subprocess.DEVNULL, env=env)

    def wait_up(self):
        wait_for(lambda: self.proc.poll() is not None or self.docker("version", check=False).returncode == 0,
                 120, f"dockerd s{self.i}", every=0.2)
        if self.proc.poll() is not None:
            raise RuntimeError("dockerd exited:\n" + open(os.path.join(self.base, "dockerd.log")).read()[-3000:])

    def docker(self, *args, check=True, timeout=120):
        return run([DOCKER, "-H", "unix://" + self.sock, *map(str, args)], check=check, timeout=timeout)

    def api(self, method, path):
        return docker_api(self.sock, method, path)

    def rss(self):
        """(dockerd, dockerd + its containerd) in kB."""
        pid = self.proc.pid
        d = rss_kb(pid)
        return d, d + sum(rss_kb(c) for c in children(pid) if open(f"/proc/{c}/comm").read().strip() == "containerd")

    def cleanup(self):
        if self.proc and self.proc.poll() is None:
            ids = self.docker("ps", "-aq", check=False).stdout.split()
            if ids:
                self.docker("rm", "-f", *ids, check=False)
            self.docker("swarm", "leave", "--force", check=False, timeout=60)
            stop_pid(self.proc, 60)
        unmount_all(self.base)


def bench_swarm(b, res):
    nodes = [SwarmNode(b, i) for i in (1, 2, 3)]
    b.swarm_nodes = nodes
    for n in nodes:
        n.start()
    for n in nodes:
        n.wait_up()
        n.docker("load", "-i", b.image)
    mgr = nodes[0]
    mgr.docker("swarm", "init", "--advertise-addr", mgr.addr, "--listen-addr", f"{mgr.addr}:2377")
    token = mgr.docker("swarm", "join-token", "-q", "worker").stdout.strip()
    for n in nodes[1:]:
        n.docker("swarm", "join", "--token", token, "--advertise-addr", n.addr, "--listen-addr",
                 f"{n.addr}:2377", f"{mgr.addr}:2377")
    wait_for(lambda: sum(1 for x in mgr.api("GET", "/nodes") if x["Status"]["State"] == "ready") == 3, 60,
             "3 swarm nodes ready", every=0.5)
    log("swarm: 3 nodes ready; settling", b.settle, "s")
    time.sleep(b.settle)
    rs = [n.rss() for n in nodes]
    res["dockerd_rss"] = [r[0] for r in rs]
    res["dockerd_containerd_rss"] = [r[1] for r in rs]

    name = f"{b.prefix}bench"
    filt = json.dumps({"service": [name], "desired-state": ["running"]})
    path = "/tasks?filters=" + urlquote(filt)

    def running():
        return sum(1 for t in mgr.api("GET", path) if t["Status"]["State"] == "running")

    log("swarm: docker service create --replicas", b.tasks)
    t0 = time.monotonic()
    mgr.docker("service", "create", "--detach", "--no-resolve-image", "--name", name, "--replicas", b.tasks,
               "--stop-grace-period", "1s", "busybox:latest", "sleep", "3600")
    t_ret = time.monotonic()
    firsts = [None]

    def all_running():
        n = running()
        if n and firsts[0] is None:
            firsts[0] = time.monotonic()
        return n >= b.tasks
    wait_for(all_running, 600, f"{b.tasks} swarm tasks running", every=b.poll)
    t1 = time.monotonic()
    res["swarm_n"] = t1 - t0
    res["swarm_first"] = firsts[0] - t0
    res["swarm_create_ret"] = t_ret - t0
    per_node = [len(n.docker("ps", "-q").stdout.split()) for n in nodes]
    res["swarm_spread"] = per_node
    res["dockerd_rss_busy"] = [n.rss()[0] for n in nodes]
    log(f"swarm: {b.tasks} running in {t1 - t0:.2f}s (per node {per_node})")
    mgr.docker("service", "rm", name)
    wait_for(lambda: all(not n.docker("ps", "-q").stdout.split() for n in nodes), 120, "swarm containers gone",
             every=0.5)
    for n in reversed(nodes):
        n.cleanup()
    b.swarm_nodes = []


def urlquote(s):
    from urllib.parse import quote
    return quote(s, safe="")


# --------------------------------------------------------------------------- berth


class Agent:
    def __init__(self, b, i):
        self.i = i
        self.addr = f"192.168.77.{20 + i}"
        self.base = os.path.join(b.dir, f"b{i}")
        os.makedirs(self.base)
        self.root = os.path.join(self.base, "root")
        self.exec_root = os.path.join(self.base, "run")
        self.sock = os.path.join(self.exec_root, "berth.sock")
        self.pidfile = os.path.join(self.base, "agent.pid")
        self.log = os.path.join(self.base, "agent.log")
        self.cgroup_parent = f"{b.prefix}-b{i}"
        self.ns = b.net.add_host(f"b{i}", self.addr)
        self.b = b
        self.proc = None

    def start(self):
        b = self.b
        lf = open(self.log, "a")
        self.proc = subprocess.Popen(
            ["nsenter", f"--net=/run/netns/{self.ns}", b.berth, "agent", "--server", b.endpoint, "--token",
             b.token, "--root", self.root, "--exec-root", self.exec_root, "--cgroup-parent", self.cgroup_parent,
             "--attribute", f"ecs.availability-zone=us-east-1{'abc'[self.i - 1]}",
             "--pull-behavior", "prefer-cached", "--pidfile", self.pidfile],
            stdout=lf, stderr=lf, stdin=subprocess.DEVNULL)
        wait_for(lambda: self.proc.poll() is not None or (os.path.exists(self.sock) and self.docker(
            "version", check=False).returncode == 0), 60, f"agent b{self.i}", every=0.2)
        if self.proc.poll() is not None:
            raise RuntimeError("agent exited:\n" + open(self.log).read()[-3000:])

    def docker(self, *args, check=True, timeout=120):
        return run([DOCKER, "-H", "unix://" + self.sock, *map(str, args)], check=check, timeout=timeout)

    def cleanup(self):
        if self.proc and self.proc.poll() is None and os.path.exists(self.sock):
            ids = self.docker("ps", "-aq", check=False).stdout.split()
            if ids:
                self.docker("rm", "-f", *ids, check=False)
        stop_pid(self.proc, 30)
        unmount_all(self.base)


def start_server(b, binary=None, port=0):
    """Start the server (binary: b.berth); port != 0: again on the root and port of the previous one."""
    root = os.path.join(b.dir, "server")
    if not port:
        os.makedirs(root)
    b.server_bin = binary or b.berth
    err = open(os.path.join(b.dir, "server.log"), "a")
    b.server = subprocess.Popen(
        ["nsenter", f"--net=/run/netns/{b.net.vpc}", b.server_bin, "server", "--root", root, "--listen",
         f"192.168.77.1:{port}"], stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL, text=True)
    with open(os.path.join(b.dir, "server.pid"), "w") as f:  # for cluster.sh's trap
        f.write(str(b.server.pid))
    line = b.server.stdout.readline()
    m = re.search(r"endpoint (https://192\.168\.77\.1:(\d+))", line)
    if not m:
        raise RuntimeError(f"no endpoint in {line!r}: " + open(os.path.join(b.dir, "server.log")).read()[-2000:])
    b.endpoint = m.group(1)
    b.server_root = root
    b.token = open(os.path.join(root, "join-token")).read().strip()
    b.ca = os.path.join(root, "pki", "ca.pem")


def ecs_client(b):
    import boto3
    import botocore.config
    keys = open(os.path.join(b.server_root, "credentials")).read()
    k = re.search(r"aws_access_key_id = (\S+)", keys).group(1)
    s = re.search(r"aws_secret_access_key = (\S+)", keys).group(1)
    return boto3.session.Session().client(
        "ecs", region_name=AWS_REGION, endpoint_url=b.endpoint, verify=b.ca, aws_access_key_id=k,
        aws_secret_access_key=s, config=botocore.config.Config(retries={"max_attempts": 1},
                                                               max_pool_connections=4))


def describe_all(ecs, arns, cluster="default"):
    out = []
    for i in range(0, len(arns), 100):
        out += ecs.describe_tasks(cluster=cluster, tasks=arns[i:i + 100])["tasks"]
    return out


def run_n(ecs, family, n, strategy=True):
    arns = []
    while len(arns) < n:
        kw = {"placementStrategy": [{"type": "spread", "field": "instanceId"}]} if strategy else {}
        r = ecs.run_task(cluster="default", taskDefinition=family, count=min(10, n - len(arns)), **kw)
        if r.get("failures"):
            raise RuntimeError(f"RunTask failures: {r['failures']}")
        arns += [t["taskArn"] for t in r["tasks"]]
    return arns


def stop_all(ecs, arns, timeout=180):
    for a in arns:
        ecs.stop_task(cluster="default", task=a, reason="bench")
    wait_for(lambda: all(t["lastStatus"] == "STOPPED" for t in describe_all(ecs, arns)), timeout,
             "tasks STOPPED", every=0.5)


def time_to_running(b, ecs, family, n):
    """Seconds from the first RunTask call to n tasks RUNNING (DescribeTasks polling)."""
    t0 = time.monotonic()
    arns = run_n(ecs, family, n)
    t_ret = time.monotonic()
    w_ret = time.time()
    first = [None]
    seen = {}

    def done():
        tl = describe_all(ecs, arns)
        now = time.time()
        for t in tl:
            if t["lastStatus"] == "RUNNING" and t["taskArn"] not in seen:
                seen[t["taskArn"]] = (now, t)
        k = sum(1 for t in tl if t["lastStatus"] == "RUNNING")
        if k and first[0] is None:
            first[0] = time.monotonic()
        bad = [t for t in tl if t["lastStatus"] == "STOPPED"]
        if bad:
            raise RuntimeError(f"task stopped: {bad[0].get('stoppedReason')} {bad[0].get('containers')}")
        return k >= n
    wait_for(done, 600, f"{n} {family} tasks RUNNING", every=b.poll)
    t1 = time.monotonic()
    marks = [task_marks(b, t, w_ret, when) for when, t in seen.values()]
    spread = {}
    for _, t in seen.values():
        spread[t["containerInstanceArn"]] = spread.get(t["containerInstanceArn"], 0) + 1
    return arns, t1 - t0, t_ret - t0, first[0] - t0, marks, sorted(spread.values())


def ts(v):
    """A timestamp from boto3 (datetime) or Docker (RFC 3339 with ns) as epoch seconds."""
    if v is None or v == "" or str(v).startswith("0001-"):
        return None
    if hasattr(v, "timestamp"):
        return v.timestamp()
    import datetime
    m = re.match(r"(.*T\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-].*)$", v)
    frac = (m.group(2) or ".0")[:7]
    z = "+00:00" if m.group(3) == "Z" else m.group(3)
    return datetime.datetime.fromisoformat(m.group(1) + frac + z).timestamp()


PHASES = [("RunTask returned -> pullStartedAt (placement, long-poll delivery, task cgroup)", "ret", "pull0"),
          ("pullStartedAt -> container's Created (image check; awsvpc: pause container + CNI)", "pull0", "created"),
          ("container's Created -> pullStoppedAt (the create call finishes)", "created", "pull1"),
          ("pullStoppedAt -> container's StartedAt (engine start)", "pull1", "started"),
          ("container's StartedAt -> server's startedAt (RUNNING report)", "started", "srv"),
          ("server's startedAt -> client sees RUNNING (DescribeTasks poll)", "srv", "seen")]


def task_marks(b, t, t_ret, t_seen):
    """Wall-clock marks of one task's path, from DescribeTasks and the node's Docker API."""
    m = {"ret": t_ret, "seen": t_seen, "pull0": ts(t.get("pullStartedAt")), "pull1": ts(t.get("pullStoppedAt")),
         "srv": ts(t.get("startedAt"))}
    agent = b.instance_agent.get(t.get("containerInstanceArn"))
    cid = next((c.get("runtimeId") for c in t.get("containers", []) if c.get("runtimeId")), None)
    if agent and cid:
        with contextlib.suppress(Exception):
            j = docker_api(agent.sock, "GET", f"/containers/{cid}/json")
            m["created"] = ts(j["Created"])
            m["started"] = ts(j["State"]["StartedAt"])
    return m


def phase_stats(marks):
    out = []
    for label, a, z in PHASES:
        d = [m[z] - m[a] for m in marks if m.get(a) is not None and m.get(z) is not None]
        out.append((label, median(d) if d else None, max(d) if d else None))
    return out


TASKDEFS = {
    mode: {"family": f"bench-{mode}", "networkMode": mode, "containerDefinitions": [{
        "name": "c", "image": "busybox:latest", "memoryReservation": 16, "essential": True, "stopTimeout": 2,
        "command": ["sleep", "3600"]}]}
    for mode in ("none", "bridge", "awsvpc")
}


def bench_berth(b, res):
    start_server(b)
    agents = [Agent(b, i) for i in (1, 2, 3)]
    b.agents = agents
    for a in agents:
        a.start()
        a.docker("load", "-i", b.image)
    with in_netns(b.net.vpc):
        ecs = ecs_client(b)
        wait_for(lambda: len(ecs.list_container_instances(cluster="default")["containerInstanceArns"]) == 3, 60,
                 "3 berth nodes registered", every=0.5)
        for td in TASKDEFS.values():
            ecs.register_task_definition(**td)
        b.instance_agent = {}
        for a in agents:
            m = re.search(r"msg=registered .*instance=(\S+)", open(a.log).read())
            if m:
                b.instance_agent[m.group(1)] = a
        log("berth: 3 nodes registered; settling", b.settle, "s")
        time.sleep(b.settle)
        res["agent_rss"] = [rss_kb(a.proc.pid) for a in agents]
        res["server_rss"] = rss_kb(b.server.pid)

        modes = [] if b.no_tasks else ["none", "awsvpc"] + (["bridge"] if b.bridge else [])
        for mode in modes:
            log(f"berth: {b.tasks} {mode} tasks (RunTask x{(b.tasks + 9) // 10})")
            arns, t, t_ret, t_first, marks, spread = time_to_running(b, ecs, f"bench-{mode}", b.tasks)
            res[f"berth_{mode}_phases"] = phase_stats(marks)
            res[f"berth_{mode}"] = t
            res[f"berth_{mode}_ret"] = t_ret
            res[f"berth_{mode}_first"] = t_first
            res[f"berth_{mode}_spread"] = spread
            if mode == "none":
                res["agent_rss_busy"] = [rss_kb(a.proc.pid) for a in agents]
                res["server_rss_busy"] = rss_kb(b.server.pid)
            log(f"berth: {b.tasks} {mode} running in {t:.2f}s (RunTask calls {t_ret:.2f}s, per node {spread})")
            stop_all(ecs, arns)
            for a in agents:  # the next round starts from empty nodes, like swarm's
                ids = a.docker("ps", "-aq").stdout.split()
                if ids:
                    a.docker("rm", "-f", *ids)

        # one task on a warm node: RunTask returns -> RUNNING
        if not b.no_tasks:
            log(f"berth: single task latency x{b.single}")
        after, total, marks = [], [], []
        for k in range(0 if b.no_tasks else b.single + 1):
            t0 = time.monotonic()
            r = ecs.run_task(cluster="default", taskDefinition="bench-none", count=1)
            t_ret = time.monotonic()
            w_ret = time.time()
            arn = r["tasks"][0]["taskArn"]
            last = {}

            def running():
                last["t"] = ecs.describe_tasks(cluster="default", tasks=[arn])["tasks"][0]
                return last["t"]["lastStatus"] == "RUNNING"
            wait_for(running, 60, "single task RUNNING", every=0.01)
            t1 = time.monotonic()
            w_seen = time.time()
            if k:  # the first one only warms up
                after.append(t1 - t_ret)
                total.append(t1 - t0)
                marks.append(task_marks(b, last["t"], w_ret, w_seen))
            stop_all(ecs, [arn])
        res["single_phases"] = phase_stats(marks)
        res["single_after"] = after
        res["single_total"] = total

        for a in agents:
            ids = a.docker("ps", "-aq").stdout.split()
            if ids:
                a.docker("rm", "-f", *ids)
        # idle server CPU with the 3 real agents, then the simulated nodes
        if b.sim_nodes:
            ecs.create_cluster(clusterName="sim")
            res["server_cpu_idle"] = server_cpu(b, b.sim_seconds)
            log(f"berth: server idle CPU {res['server_cpu_idle']:.2f}% over {b.sim_seconds}s")
    if b.sim_nodes:
        simulate(b, res)


def server_cpu(b, seconds):
    pid = b.server.pid
    c0, t0 = cpu_ticks(pid), time.monotonic()
    time.sleep(seconds)
    c1, t1 = cpu_ticks(pid), time.monotonic()
    return 100.0 * (c1 - c0) / TICK / (t1 - t0)


# --------------------------------------------------------------------------- simulated nodes


def simulate(b, res):
    import urllib3
    from berth_agent_client import AgentClient
    urllib3.disable_warnings()
    threading.stack_size(512 * 1024)

    class SimNode(AgentClient):
        """berth_agent_client's AgentClient (join: CA pin + CSR, register, heartbeat, tasks) with a cheaper
        transport for the calls under the node certificate: one ssl context per node (CA + its own
        certificate loaded once) and http.client, one kept-alive connection per purpose as `berth agent`
        keeps one per thread (src/agent/agent.c conn_get), or a new TLS connection per call."""

        def __init__(self, endpoint, workdir):
            super().__init__(endpoint, workdir)
            u = urlparse(endpoint)
            self.host, self.port = u.hostname, u.port
            self.ctx = None
            self.keepalive = False
            self.conns = {}

        def _context(self):
            if self.ctx is None:
                ctx = ssl.create_default_context(cafile=self.ca)
                ctx.load_cert_chain(self.cert, self.key)
                self.ctx = ctx
            return self.ctx

        def call(self, method, path, json=None, params=None, timeout=70, cert=True, purpose="hb"):
            if not cert:
                return super().call(method, path, json, params, timeout, cert)
            url = "/agent/v1/" + path + ("?" + urlencode(params) if params else "")
            body = _json.dumps(json).encode() if json is not None else None
            conn = self.conns.pop(purpose, None) if self.keepalive else None
            if conn is None:
                conn = http.client.HTTPSConnection(self.host, self.port, context=self._context(), timeout=timeout)
            if purpose == "poll":
                self.poll_conn = conn
            try:
                conn.request(method, url, body=body, headers={"Content-Type": "application/json"} if body else {})
                r = conn.getresponse()
                data = r.read()
            except BaseException:
                conn.close()
                raise
            if self.keepalive and not r.will_close:
                self.conns[purpose] = conn
            else:
                conn.close()
            if r.status != 200:
                raise AgentError(r.status, data[:300])
            return _json.loads(data)

        def tasks(self, since=0, wait=0):
            return self.call("GET", "tasks", params={"since": since, "wait": wait}, purpose="poll")

        def drop(self):
            for c in self.conns.values():
                c.close()
            self.conns = {}

        def abort_poll(self):
            c = getattr(self, "poll_conn", None)
            if c is not None and c.sock is not None:
                with contextlib.suppress(OSError):
                    c.sock.shutdown(socket.SHUT_RDWR)

    n = b.sim_nodes
    nodes = [SimNode(b.endpoint, os.path.join(b.dir, "sim", f"n{i}")) for i in range(n)]
    b.sim_stop = threading.Event()
    stop = b.sim_stop
    errors = []

    def pool(fn, items, workers):
        q = queue.Queue()
        for it in items:
            q.put(it)

        def w():
            with in_netns(b.net.vpc):
                while not stop.is_set():
                    try:
                        it = q.get_nowait()
                    except queue.Empty:
                        return
                    try:
                        fn(it)
                    except Exception as e:  # noqa: BLE001
                        errors.append(repr(e))
        ts = [threading.Thread(target=w, daemon=True) for _ in range(workers)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()

    def retried(fn):
        def go(nd):
            for attempt in range(5):  # as a real agent does, retry a refused or dropped connection
                try:
                    return fn(nd)
                except Exception:  # noqa: BLE001
                    if attempt == 4:
                        raise
                    time.sleep(1 + attempt)
        return go

    t0 = time.monotonic()
    pool(retried(lambda nd: nd.join(b.token)), nodes, 8)
    t_join = time.monotonic() - t0
    interval = [5]

    def reg(nd):
        r = nd.register(cluster="sim", attributes={"ecs.availability-zone": f"us-east-1{'abc'[hash(nd.dir) % 3]}"})
        interval[0] = r.get("heartbeatInterval", 5)
    t0 = time.monotonic()
    pool(retried(reg), nodes, 8)
    t_reg = time.monotonic() - t0
    if errors:
        raise RuntimeError(f"{len(errors)} simulated joins/registers failed, first: {errors[0]}")
    iv = interval[0]
    log(f"sim: {n} nodes joined in {t_join:.1f}s, registered in {t_reg:.1f}s; heartbeat every {iv}s")
    res["sim_join_s"] = t_join
    res["sim_register_s"] = t_reg
    res["sim_interval"] = iv

    for mi, (mode, keepalive, longpoll) in enumerate(SIM_MODES):
        # BERTH_AB: both binaries on each mode, in turn (A B, then B A: neither always runs second)
        runs = [(b.berth, "")]
        if b.berth_ab:
            runs = [(b.berth, ""), (b.berth_ab, "_ab")][::1 if mi % 2 == 0 else -1]
        for binary, suffix in runs:
            if binary != b.server_bin:
                restart_server(b, binary)
            k = len(nodes)
            while True:
                for nd in nodes:
                    nd.drop()
                    nd.keepalive = keepalive
                out = sim_round(b, nodes[:k], iv, longpoll, errors, f"{mode}{suffix and ', BERTH_AB'}")
                res[f"sim_{mode}{suffix}"] = out  # the latest attempt, also when interrupted
                if out["sustained"] >= 0.9 or k <= b.sim_nodes // 4:
                    break
                log(f"sim: the client did not sustain {k} nodes; halving")
                k //= 2
    stop.set()


def restart_server(b, binary):
    """The same server (root, port) on another binary: the simulated nodes keep their certificates."""
    port = int(urlparse(b.endpoint).port)
    stop_pid(b.server, 30)
    log(f"sim: server restarted on {binary}")
    for attempt in range(50):  # the port may linger a moment
        try:
            return start_server(b, binary, port)
        except RuntimeError:
            if attempt == 49:
                raise
            time.sleep(0.2)


# berth agent keeps one connection per thread (heartbeat, tasks long poll, reporter): kept-alive, like the
# real agent; SIM_TLS_EACH=1 adds the old mode of a new TLS connection per call, for comparison
SIM_MODES = [("heartbeats, kept-alive connections", True, False),
             ("heartbeats + parked tasks long poll, kept-alive connections (as berth agent)", True, True)]
if os.environ.get("SIM_TLS_EACH") == "1":
    SIM_MODES.insert(1, ("heartbeats, new TLS connection each", False, False))


def sim_round(b, nodes, iv, longpoll, errors, mode):
    """Heartbeat every node on a fixed schedule (phases spread over the interval); optionally hold one
    tasks long poll per node, as the real agent does. Measure the server's CPU over sim_seconds."""
    n = len(nodes)
    stop = threading.Event()
    due = [(time.monotonic() + iv * i / n, i) for i in range(n)]
    heapq.heapify(due)
    work = queue.Queue()
    lat, late, fails = [], [], [0]
    lock = threading.Lock()

    def scheduler():
        while not stop.is_set() and not b.sim_stop.is_set():
            t, i = due[0]
            now = time.monotonic()
            if t > now:
                time.sleep(min(t - now, 0.05))
                continue
            heapq.heapreplace(due, (t + iv, i))
            work.put((t, i))

    def worker():
        with in_netns(b.net.vpc):
            while not stop.is_set():
                try:
                    t, i = work.get(timeout=0.2)
                except queue.Empty:
                    continue
                s = time.monotonic()
                try:
                    nodes[i].heartbeat()
                    e = time.monotonic()
                    with lock:
                        lat.append(e - s)
                        late.append(s - t)
                except Exception as ex:  # noqa: BLE001
                    with lock:
                        fails[0] += 1
                        if len(errors) < 20:
                            errors.append(repr(ex))

    def poller(nd):
        with in_netns(b.net.vpc):
            since = 0
            while not stop.is_set():
                try:
                    r = nd.tasks(since=since, wait=20 if since else 0)  # the agent's POLL_WAIT_SEC
                    since = r.get("revision", since)
                except Exception as ex:  # noqa: BLE001
                    if stop.is_set():
                        return
                    with lock:
                        fails[0] += 1
                        if len(errors) < 20:
                            errors.append("poll " + repr(ex))
                    time.sleep(1)

    threads = [threading.Thread(target=scheduler, daemon=True)]
    threads += [threading.Thread(target=worker, daemon=True) for _ in range(b.sim_workers)]
    if longpoll:
        threads += [threading.Thread(target=poller, args=(nd,), daemon=True) for nd in nodes]
    for t in threads:
        t.start()
    # warm up until the schedule is steady: every node has connected (kept-alive mode), the queue is drained
    # and heartbeats start on time (at least 10 s, at most 60 s)
    w0 = time.monotonic()
    while True:
        time.sleep(1)
        with lock:
            recent = late[-max(20, n // 10):]
        el = time.monotonic() - w0
        if el >= 60 or (el >= max(2 * iv, 10) and work.qsize() < 5 and recent and max(recent) < 0.5):
            break
    with lock:
        lat.clear()
        late.clear()
        fails[0] = 0
    pid = b.server.pid
    c0, t0 = cpu_ticks(pid), time.monotonic()
    time.sleep(b.sim_seconds)
    c1, t1 = cpu_ticks(pid), time.monotonic()
    with lock:
        got, lt, lte, nf = len(lat), sorted(lat), sorted(late), fails[0]
    threads_srv = len(os.listdir(f"/proc/{pid}/task"))
    rss = rss_kb(pid)
    stop.set()
    for nd in nodes:  # end the parked long polls now, so that rounds do not overlap
        nd.abort_poll()
    end = time.monotonic() + 30  # one deadline for all (daemon threads; a stuck one is left behind)
    for t in threads:
        t.join(timeout=max(0.1, end - time.monotonic()))
    expected = n * (t1 - t0) / iv
    q = lambda xs, p: xs[min(len(xs) - 1, int(p * len(xs)))] if xs else float("nan")  # noqa: E731
    out = {"nodes": n, "cpu": 100.0 * (c1 - c0) / TICK / (t1 - t0), "rate": got / (t1 - t0),
           "sustained": got / expected if expected else 0, "lat_p50": q(lt, .5), "lat_p99": q(lt, .99),
           "late_p99": q(lte, .99), "fails": nf, "server_threads": threads_srv, "server_rss": rss,
           "longpoll": longpoll, "errors": sorted(set(e[:160] for e in errors))[:3]}
    errors.clear()
    log(f"sim ({mode}): {n} nodes, server {out['cpu']:.1f}% "
        f"of a core, {out['rate']:.0f} hb/s ({100 * out['sustained']:.0f}% of schedule), "
        f"p99 {1000 * out['lat_p99']:.0f} ms, lateness p99 {1000 * out['late_p99']:.0f} ms, {nf} failures")
    time.sleep(1)
    return out


# --------------------------------------------------------------------------- report


def report(b, res):
    L = []
    p = L.append
    mb = lambda kb: kb / 1024  # noqa: E731
    p("")
    p(f"== bench/cluster.sh: 3 nodes (network namespaces), {b.tasks} tasks; load average at start {b.load0}, "
      f"at end {loadavg()}")
    p(f"{'measure':58s} {'berth':>10s} {'swarm':>10s} {'berth/swarm':>12s}  goal")
    sw = res.get("swarm_n")

    def row(name, v, peer=None, goal="", unit="s"):
        fmt = (lambda x: f"{x:9.2f}{unit}") if unit == "s" else (lambda x: f"{x:8.1f}{unit}")
        pv = fmt(peer) if peer is not None else f"{'-':>10s}"
        ratio = f"{v / peer:11.2f}x" if peer else f"{'-':>12s}"
        p(f"{name:58s} {fmt(v)} {pv} {ratio}  {goal}")

    if "berth_none" in res:
        row(f"{b.tasks} tasks to RUNNING, networkMode none (swarm: no network)", res["berth_none"], sw,
            "<= 0.25x swarm")
        row("  ... first task RUNNING", res["berth_none_first"], res.get("swarm_first"))
        row("  ... RunTask calls return / service create returns", res["berth_none_ret"],
            res.get("swarm_create_ret"))
    for mode in ("bridge", "awsvpc"):
        if f"berth_{mode}" in res:
            row(f"{b.tasks} tasks to RUNNING, networkMode {mode} (vs swarm)", res[f"berth_{mode}"], sw)
    if res.get("single_after"):
        a = res["single_after"]
        row(f"one task RUNNING after RunTask returns, median of {len(a)}", median(a), None, "<= 0.30 s")
        p(f"{'  ... min / max':58s} {min(a):9.2f}s {max(a):9.2f}s")
        row("  ... from the RunTask call (median)", median(res["single_total"]))
    for key, title in (("single_phases", "one warm task"), ("berth_none_phases", f"{b.tasks} none tasks"),
                       ("berth_awsvpc_phases", f"{b.tasks} awsvpc tasks")):
        if res.get(key):
            p(f"  where the time goes, {title} (median / max over tasks, wall clocks of client, agent, engine, server):")
            for label, med, mx in res[key]:
                if med is not None:
                    p(f"    {label:70s} {1000 * med:7.0f} ms {1000 * mx:7.0f} ms")
    if "agent_rss" in res:
        d = res.get("dockerd_rss")
        row("agent idle RSS (max of 3) vs dockerd", mb(max(res["agent_rss"])), mb(max(d)) if d else None,
            "<= 20 MB", unit="M")
        if d:
            row("agent idle RSS vs dockerd + its containerd", mb(max(res["agent_rss"])),
                mb(max(res["dockerd_containerd_rss"])), unit="M")
        row("server idle RSS", mb(res["server_rss"]), None, "<= 30 MB", unit="M")
    if "agent_rss_busy" in res:
        d = res.get("dockerd_rss_busy")
        row(f"agent RSS with {b.tasks // 3} tasks (max) vs dockerd", mb(max(res["agent_rss_busy"])),
            mb(max(d)) if d else None, unit="M")
        row(f"server RSS with {b.tasks} tasks", mb(res["server_rss_busy"]), unit="M")
    if "server_cpu_idle" in res:
        row("server CPU, 3 real agents idle (% of one core)", res["server_cpu_idle"], unit="%")
    for mode, _, _ in SIM_MODES:
        s = res.get(f"sim_{mode}")
        if not s:
            continue
        p(f"  {s['nodes']} simulated nodes, {mode}:")
        row("    server CPU (% of one core)", s["cpu"], None, "< 10% at 1,000 nodes", unit="%")
        p(f"    ... {s['cpu'] / 10.0:.2f}x the 10% goal")
        o = res.get(f"sim_{mode}_ab")
        if o:
            p(f"    ... BERTH_AB ({b.berth_ab}) in the same run: {o['cpu']:.1f}% of one core "
              f"({o['rate']:.0f} hb/s, {o['fails']} failures, {o['server_threads']} threads, RSS "
              f"{mb(o['server_rss']):.1f} MB); this binary / BERTH_AB = {s['cpu'] / o['cpu']:.2f}x")
        ok = s["sustained"] >= 0.95 and s["fails"] == 0
        p(f"    ... {s['rate']:.0f} heartbeats/s = {100 * s['sustained']:.0f}% of the schedule (every "
          f"{res['sim_interval']} s), latency p50 {1000 * s['lat_p50']:.0f} ms p99 {1000 * s['lat_p99']:.0f} ms, "
          f"client lateness p99 {1000 * s['late_p99']:.0f} ms, {s['fails']} failures; server {s['server_threads']} "
          f"threads, RSS {mb(s['server_rss']):.1f} MB{'' if ok else '  (NOT sustained)'}")
        for e in s.get("errors", []):
            p(f"    ... error: {e}")
        if s["nodes"] != 1000 and s["sustained"] > 0:
            per = (s["cpu"] - res.get("server_cpu_idle", 0)) / (s["nodes"] * s["sustained"])
            p(f"    ... EXTRAPOLATED to 1,000 nodes (linear in heartbeats, above idle): "
              f"{res.get('server_cpu_idle', 0) + 1000 * per:.1f}% of one core")
    if "sim_join_s" in res:
        p(f"  ... {b.sim_nodes} simulated nodes joined (CSR signed) in {res['sim_join_s']:.1f} s, registered in "
          f"{res['sim_register_s']:.1f} s (8 client threads)")
    if "swarm_spread" in res or "berth_none_spread" in res:
        p(f"  tasks per node: swarm {res.get('swarm_spread')}, berth none {res.get('berth_none_spread')}, "
          f"awsvpc {res.get('berth_awsvpc_spread')}")
    print("\n".join(L), flush=True)


# --------------------------------------------------------------------------- main


class Bench:
    pass


def run_peer_and_berth(b, swarm_fn, berth_fn, report_fn):
    """The skeleton of a berth-vs-Swarm bench (bench/stack_bench.py): signals, the image, the
    network, swarm_fn(b, res) unless b.no_swarm, berth_fn(b, res), the cleanup of whatever b
    holds (swarm_nodes, agents, server, net, dir, cgroups of prefix) even after a failure, then
    report_fn(b, res). Returns the exit code."""
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, on_signal)
    b.load0 = loadavg()
    b.net = Net(b.prefix)
    b.swarm_nodes, b.agents, b.server = [], [], None
    b.image = os.path.join(b.dir, "busybox.tar")
    res, rc = {}, 0
    try:
        run([os.path.join(REPO, "scripts", "mkimage"), "--tag", "busybox:latest", "--docker-archive", b.image])
        b.net.build()
        if not b.no_swarm:
            swarm_fn(b, res)
        berth_fn(b, res)
    except Interrupted as e:
        log("interrupted:", e)
        rc = 130
    except Exception as e:  # noqa: BLE001 - report what was measured, then clean up
        log("FAILED:", repr(e))
        rc = 1
    finally:
        for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(s, signal.SIG_IGN)
        for n in b.swarm_nodes + b.agents:
            with contextlib.suppress(Exception):
                n.cleanup()
        stop_pid(b.server, 30)
        b.net.delete()
        unmount_all(b.dir)
        remove_cgroups(b.prefix)
    report_fn(b, res)
    return rc


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--prefix", required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--berth", required=True)
    ap.add_argument("--tasks", type=int, default=30)
    ap.add_argument("--single", type=int, default=10)
    ap.add_argument("--settle", type=float, default=10)
    ap.add_argument("--poll", type=float, default=0.1)
    ap.add_argument("--sim-nodes", type=int, default=1000)
    ap.add_argument("--sim-seconds", type=float, default=30)
    ap.add_argument("--sim-workers", type=int, default=48)
    ap.add_argument("--no-swarm", action="store_true")
    ap.add_argument("--bridge", action="store_true", help="also 30 bridge tasks")
    ap.add_argument("--no-tasks", action="store_true", help="berth: only RSS and the simulated nodes")
    ap.add_argument("--berth-ab", default=None, help="simulated nodes: also on this binary, in turn")
    b = ap.parse_args(namespace=Bench())
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, on_signal)
    b.load0 = loadavg()
    b.net = Net(b.prefix)
    b.swarm_nodes, b.agents, b.server, b.sim_stop, b.instance_agent = [], [], None, None, {}
    b.image = os.path.join(b.dir, "busybox.tar")
    res = {}
    rc = 0
    try:
        run([os.path.join(REPO, "scripts", "mkimage"), "--tag", "busybox:latest", "--docker-archive", b.image])
        b.net.build()
        if not b.no_swarm:
            bench_swarm(b, res)
        bench_berth(b, res)
    except Interrupted as e:
        log("interrupted:", e)
        rc = 130
    except Exception as e:  # noqa: BLE001 - report what was measured, then clean up
        log("FAILED:", repr(e))
        rc = 1
    finally:
        for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(s, signal.SIG_IGN)
        if b.sim_stop:
            b.sim_stop.set()
        for n in b.swarm_nodes:
            with contextlib.suppress(Exception):
                n.cleanup()
        if b.agents and os.environ.get("BENCH_KEEP_LOGS"):
            for a in b.agents:
                subprocess.run(["cp", a.log, os.path.join(os.environ["BENCH_KEEP_LOGS"], f"agent-b{a.i}.log")])
            subprocess.run(["cp", os.path.join(b.dir, "server.log"), os.environ["BENCH_KEEP_LOGS"]])
        for a in b.agents:
            with contextlib.suppress(Exception):
                a.cleanup()
        stop_pid(b.server, 30)
        b.net.delete()
        unmount_all(b.dir)
        remove_cgroups(b.prefix)
    report(b, res)
    return rc


if __name__ == "__main__":
    sys.exit(main())
