"""A berth cluster on one machine (shared/CLUSTER.md): "hosts" are network
namespaces joined by one bridge inside a namespace of the test's own (a
simulated VPC, 192.168.77.0/24, never on the host's interfaces). The server
runs in the VPC namespace; every host runs a real `berth agent` with its own
root, exec root, cgroup parent and task subnet (given with --task-subnet, or
assigned by the server from the cluster's --cluster-cidr, 10.OCTET.0.0/16).
Agents program a VXLAN overlay between the hosts (device OVERLAY_DEVICE in
each host namespace). Clients (aws CLI, boto3, the
docker CLI on each node's socket) are driven from the test.

Everything the fixture creates is removed at teardown, also after failures:
task containers (through each node's Docker API), agents and the server (by
the PIDs started here), mounts under the roots, cgroup directories of the
nodes' parents, the namespaces (which takes the veths and bridges along).
"""
import contextlib
import ctypes
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import uuid

import awscli_fast
from conftest import berth_binary, run, unmount_all, _created_netns

AWS = "/usr/bin/aws"
OVERLAY_DEVICE = "berth.vxlan"
DOCKER = "/usr/bin/docker"
REGION = "us-east-1"
CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL("libc.so.6", use_errno=True)


POLL_MAX = 0.5  # seconds between polls once a wait is long: 4 test workers share 2 cores


def wait_for(pred, timeout=30, what="condition", every=0.1):
    """Poll pred (a remote API without a watch) until truthy or the deadline: every `every` seconds at
    first, then less often (x1.5 per poll, up to POLL_MAX) so that long waits leave the CPU to others."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(every)
        every = min(every * 1.5, max(every, POLL_MAX))


@contextlib.contextmanager
def in_netns(name):
    """Run the calling thread (and what it spawns) inside /run/netns/NAME for the block."""
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


class Node:
    def __init__(self, cluster, index, zone, extra=()):
        self.cluster = cluster
        self.index = index
        self.zone = zone
        self.netns = f"{cluster.prefix}-h{index}"
        self.addr = f"192.168.77.{10 + index}"
        self.base = os.path.join(cluster.base, f"h{index}")
        self.root = os.path.join(self.base, "root")
        self.exec_root = os.path.join(self.base, "run")
        self.sock = os.path.join(self.exec_root, "berth.sock")
        self.pidfile = os.path.join(self.base, "agent.pid")
        self.log = os.path.join(self.base, "agent.log")
        self.cgroup_parent = f"{cluster.prefix}-h{index}"
        self.subnet = f"10.{cluster.octet}.{index}.0/24" if cluster.explicit_subnets else None
        self.extra = list(extra)
        self.proc = None
        os.makedirs(self.base, exist_ok=True)

    def args(self, token=None):
        return ["nsenter", f"--net=/run/netns/{self.netns}", berth_binary(), "agent",
                "--server", ",".join(self.cluster.endpoints), "--token", token or self.cluster.token(),
                "--root", self.root, "--exec-root", self.exec_root, "--cgroup-parent", self.cgroup_parent,
                *(["--task-subnet", self.subnet] if self.subnet else []),
                "--attribute", f"ecs.availability-zone={self.zone}",
                "--pidfile", self.pidfile, *self.extra]

    def start(self, wait=True):
        if os.path.exists(self.pidfile):  # left by an agent that was killed
            os.unlink(self.pidfile)
        log = open(self.log, "a")
        self.proc = subprocess.Popen(self.args(), stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        if wait:
            wait_for(lambda: self.proc.poll() is not None or os.path.exists(self.pidfile), 30,
                     f"agent h{self.index} to start")
            assert self.proc.poll() is None, "agent exited:\n" + open(self.log).read()[-3000:]
        return self

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def docker(self, *args, check=True, timeout=60):
        return run([DOCKER, "-H", "unix://" + self.sock, *map(str, args)], check=check, timeout=timeout)

    def containers(self, all=True):
        p = self.docker("ps", *(["-a"] if all else []), "--format", "{{json .}}", check=False)
        return [json.loads(l) for l in p.stdout.splitlines() if l.strip()] if p.returncode == 0 else []

    def ip_json(self, *args):
        """`ip -j ARGS` inside this host's namespace (parsed); [] when the device is absent."""
        p = run(["ip", "-n", self.netns, "-j", *args], check=False)
        return json.loads(p.stdout) if p.returncode == 0 and p.stdout.strip() else []

    def overlay_routes(self):
        """{task subnet: gateway} of the overlay routes on this host."""
        return {r["dst"]: r.get("gateway") for r in self.ip_json("-4", "route", "show", "dev", OVERLAY_DEVICE)}

    def vtep(self):
        """The VTEP address on this host's vxlan device (its task subnet's network address), or None."""
        for link in self.ip_json("-4", "addr", "show", "dev", OVERLAY_DEVICE):
            for a in link.get("addr_info", []):
                return a["local"]
        return None

    def _cgroup_dirs(self):
        """This node's cgroup directories in every hierarchy, deepest first."""
        out = []
        for root in ("/sys/fs/cgroup", "/sys/fs/cgroup/unified"):
            for ctl in [""] + (os.listdir(root) if os.path.isdir(root) else []):
                top = os.path.join(root, ctl)
                for name in (f"{self.cgroup_parent}-tasks", self.cgroup_parent):
                    d = os.path.join(top, name)
                    if os.path.isdir(d):
                        out += [p for p, _, _ in os.walk(d)]
        return sorted(set(out), key=len, reverse=True)

    def _kill_leftovers(self):
        """Kill what outlived the agent: task containers (by this node's cgroups; a task the agent
        restarted while the containers were being removed, or those of an agent the test killed)
        and their shims (by this node's paths on their command line). Only this node's processes."""
        pids = set()
        for d in self._cgroup_dirs():
            with contextlib.suppress(OSError):
                pids |= {int(x) for x in open(os.path.join(d, "cgroup.procs")).read().split()}
        for p in os.listdir("/proc"):
            if p.isdigit():
                with contextlib.suppress(OSError):
                    if self.base.encode() in open(f"/proc/{p}/cmdline", "rb").read():
                        pids.add(int(p))
        pids.discard(os.getpid())
        for pid in pids:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        def alive(pid):
            try:
                return open(f"/proc/{pid}/stat").read().rsplit(") ", 1)[1][0] != "Z"
            except (OSError, IndexError):
                return False
        wait_for(lambda: not any(alive(pid) for pid in pids), 10, "leftover task processes to die")

    def cleanup(self):
        if os.path.exists(self.sock):
            for c in self.containers():
                self.docker("rm", "-f", c["ID"], check=False)
        self.stop()
        self._kill_leftovers()
        unmount_all(self.base)
        for d in self._cgroup_dirs():
            with contextlib.suppress(OSError):
                os.rmdir(d)


class Cluster:
    """A server in the VPC namespace and N agents, one per host namespace."""

    def __init__(self, nodes=3, server_args=(), servers=1, explicit_subnets=True, store=None):
        """store: "sqlite" or "etcd" (default: etcd with several servers, SQLite with one)."""
        self.prefix = "bc" + uuid.uuid4().hex[:6]
        self.octet = 100 + int(self.prefix[-2:], 16) % 100
        self.vpc = f"{self.prefix}-vpc"
        self.base = tempfile.mkdtemp(prefix="berth-cluster-")
        self.server_args = list(server_args)
        # with several servers they share an etcd in the VPC namespace; server i listens on .(1+i)
        self.n_servers = servers
        self.store = store or ("etcd" if servers > 1 else "sqlite")
        assert self.store in ("sqlite", "etcd") and (servers == 1 or self.store == "etcd")
        self.servers = [None] * servers
        self.endpoints = [None] * servers
        self.ports = [0] * servers
        self.etcd = None
        self.current = 0
        self.explicit_subnets = explicit_subnets
        if "--cluster-cidr" not in self.server_args:
            self.server_args += ["--cluster-cidr", f"10.{self.octet}.0.0/16"]
        self.cluster_cidr = self.server_args[self.server_args.index("--cluster-cidr") + 1]
        self.nodes = []
        self.n = nodes
        self._clients = {}

    @property
    def server_root(self):
        return os.path.join(self.base, f"server{self.current}" if self.n_servers > 1 else "server")

    @property
    def endpoint(self):
        return self.endpoints[self.current]

    @property
    def server(self):
        return self.servers[self.current]

    # ---- network ----
    def _ns(self, name):
        run(["ip", "netns", "add", name])
        _created_netns.add(name)
        run(["ip", "-n", name, "link", "set", "lo", "up"])

    def build_network(self):
        self._ns(self.vpc)
        run(["ip", "-n", self.vpc, "link", "add", "br0", "type", "bridge"])
        for i in range(self.n_servers):
            run(["ip", "-n", self.vpc, "addr", "add", f"192.168.77.{1 + i}/24", "dev", "br0"])
        run(["ip", "-n", self.vpc, "link", "set", "br0", "up"])

    def add_host_netns(self, node):
        self._ns(node.netns)
        a, b = f"v{node.index}a", f"v{node.index}b"
        run(["ip", "-n", node.netns, "link", "add", a, "type", "veth", "peer", "name", b, "netns", self.vpc])
        run(["ip", "-n", node.netns, "addr", "add", f"{node.addr}/24", "dev", a])
        run(["ip", "-n", node.netns, "link", "set", a, "up"])
        run(["ip", "-n", self.vpc, "link", "set", b, "master", "br0", "up"])

    # ---- servers ----
    def start_etcd(self):
        d = os.path.join(self.base, "etcd")
        self.etcd = subprocess.Popen(
            ["nsenter", f"--net=/run/netns/{self.vpc}", "/usr/bin/etcd", "--data-dir", d,
             "--listen-client-urls", "http://127.0.0.1:2379", "--advertise-client-urls", "http://127.0.0.1:2379",
             "--listen-peer-urls", "http://127.0.0.1:2380", "--initial-advertise-peer-urls",
             "http://127.0.0.1:2380", "--initial-cluster", "default=http://127.0.0.1:2380"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def up():
            assert self.etcd.poll() is None, "etcd exited"
            p = subprocess.run(["nsenter", f"--net=/run/netns/{self.vpc}", "/usr/bin/python3", "-c",
                                "import urllib.request;urllib.request.urlopen(urllib.request.Request("
                                "'http://127.0.0.1:2379/v3/kv/range',data=b'{\"key\":\"AA==\"}'),timeout=1)"],
                               capture_output=True)
            return p.returncode == 0
        wait_for(up, 30, "etcd")

    def start_server(self, i=None):
        i = self.current if i is None else i
        root = os.path.join(self.base, f"server{i}" if self.n_servers > 1 else "server")
        os.makedirs(root, exist_ok=True)
        err = open(os.path.join(self.base, f"server{i}.err"), "a")
        store = ["--store", "etcd://127.0.0.1:2379"] if self.store == "etcd" else []
        addr = f"192.168.77.{1 + i}"
        p = subprocess.Popen(
            ["nsenter", f"--net=/run/netns/{self.vpc}", berth_binary(), "server", "--root", root,
             "--listen", f"{addr}:{self.ports[i]}", *store, *self.server_args],
            stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL, text=True)
        line = p.stdout.readline()
        m = re.search(r"endpoint (https://192\.168\.77\.\d+:(\d+))", line)
        assert m, f"no endpoint in {line!r}: " + open(os.path.join(self.base, f"server{i}.err")).read()
        self.servers[i], self.endpoints[i], self.ports[i] = p, m.group(1), int(m.group(2))
        return self

    def stop_server(self, sig=signal.SIGTERM, i=None):
        i = self.current if i is None else i
        p = self.servers[i]
        if p and p.poll() is None:
            p.send_signal(sig)
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if p:
            p.stdout.close()
        self.servers[i] = None

    def token(self):
        return open(os.path.join(self.server_root, "join-token")).read().strip()

    @property
    def ca(self):
        return os.path.join(self.server_root, "pki", "ca.pem")

    def aws_env(self):
        env = dict(os.environ, AWS_SHARED_CREDENTIALS_FILE=os.path.join(self.server_root, "credentials"),
                   AWS_CONFIG_FILE="/dev/null", AWS_PAGER="")
        env.pop("AWS_PROFILE", None)
        return env

    def aws_cli(self, service, *args, check=True, timeout=90):
        """Debian's aws CLI (`aws SERVICE ARGS`, awscli_fast) from the VPC namespace against the current
        server: the parsed JSON answer, or the CompletedProcess when it failed (check=False)."""
        p = awscli_fast.run(["--region", REGION, "--endpoint-url", self.endpoint, "--ca-bundle", self.ca,
                             "--output", "json", service, *args], env=self.aws_env(), netns=self.vpc,
                            timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError(f"aws {service} {args} on {self.endpoint} exited {p.returncode}: {p.stderr}")
        return json.loads(p.stdout) if p.returncode == 0 and p.stdout.strip() else p

    def aws(self, *args, check=True):
        """`aws ecs ARGS` (see aws_cli)."""
        return self.aws_cli("ecs", *args, check=check)

    def _client(self, service):
        """The kept boto3 client of service for the current server (made on first use: a new client costs
        about half a second of CPU). Call inside in_netns(self.vpc): it connects from the calling thread."""
        import boto3
        key = (service, self.endpoint, self.server_root)
        if key not in self._clients:
            keys = open(os.path.join(self.server_root, "credentials")).read()
            self._clients[key] = boto3.session.Session().client(
                service, region_name=REGION, endpoint_url=self.endpoint, verify=self.ca,
                aws_access_key_id=re.search(r"aws_access_key_id = (\S+)", keys).group(1),
                aws_secret_access_key=re.search(r"aws_secret_access_key = (\S+)", keys).group(1))
        return self._clients[key]

    @contextlib.contextmanager
    def boto(self, service):
        """A boto3 client of service ("ecs", "logs") usable inside the block (the thread is in the VPC namespace)."""
        with in_netns(self.vpc):
            yield self._client(service)

    def ecs(self):
        """A boto3 ECS client usable inside the block (the thread is in the VPC namespace)."""
        return self.boto("ecs")

    def api(self, op, service="ecs", **params):
        """One call through the kept boto3 client (e.g. api("describe_tasks", tasks=[...])). Polling loops
        use this: an `aws` CLI call costs far more CPU, which 4 test workers on 2 cores cannot afford every
        100 ms. Tests of the CLI itself call aws()."""
        with in_netns(self.vpc):
            out = getattr(self._client(service), op)(**params)
        out.pop("ResponseMetadata", None)
        return out

    # ---- lifecycle ----
    def start(self, busybox=None, node_extra=()):
        self.build_network()
        if self.store == "etcd":
            self.start_etcd()
        for i in range(self.n_servers):
            self.start_server(i)
        for i in range(1, self.n + 1):
            node = Node(self, i, f"{REGION}{'abc'[(i - 1) % 3]}", node_extra)
            self.nodes.append(node)
            self.add_host_netns(node)
            node.start()
            if busybox:
                node.docker("load", "-i", busybox["docker_archive"])
        wait_for(lambda: len(self.instances()) == self.n, 30, "every node registered")
        return self

    def instances(self):
        arns = self.api("list_container_instances")["containerInstanceArns"]
        if not arns:
            return []
        return self.api("describe_container_instances", containerInstances=arns)["containerInstances"]

    def node_of(self, instance_arn):
        for inst in self.instances():
            if inst["containerInstanceArn"] == instance_arn:
                zone = next(a["value"] for a in inst["attributes"] if a["name"] == "ecs.availability-zone")
                return next(n for n in self.nodes if n.zone == zone and n.proc)
        raise AssertionError(f"no node for {instance_arn}")

    def cleanup(self):
        for n in self.nodes:
            try:
                n.cleanup()
            except Exception as e:  # noqa: BLE001 - keep tearing down
                print(f"cleanup of node h{n.index}: {e}")
        for i in range(self.n_servers):
            self.stop_server(i=i)
        if self.etcd:
            self.etcd.kill()
            self.etcd.wait()
        for name in [n.netns for n in self.nodes] + [self.vpc]:
            subprocess.run(["ip", "netns", "delete", name], capture_output=True)
        unmount_all(self.base)
        keep = os.environ.get("BERTH_TEST_LOGDIR")
        if keep:
            shutil.copytree(self.base, os.path.join(keep, os.path.basename(self.base)),
                            ignore=shutil.ignore_patterns("*.sock", "rootfs", "snapshots", "content"),
                            dirs_exist_ok=True)
        shutil.rmtree(self.base, ignore_errors=True)
