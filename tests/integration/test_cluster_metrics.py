"""Task metrics (issue 15, metrics): agents sample each task's cgroup and network namespace every
--metrics-interval seconds and send the samples to the server, which keeps per-task values and per-service
and per-cluster utilization (percent of the tasks' reservations, docs/metrics.md); both expose them to
Prometheus (the server on its endpoint with a bearer token, each agent on --metrics-listen), and a real
Prometheus scrapes them; `berth top` shows the cluster.

One module-scoped cluster (2 nodes): agents sample every second, the server's datapoints are 2 s long.
"""
import json
import os
import re
import shutil
import ssl
import subprocess
import tempfile
import urllib.error
import urllib.parse
import urllib.request

import pytest

from cluster_fixture import Cluster, in_netns, wait_for
from conftest import berth_binary

AGENT_PORT = 9779
PROM_PORT = 9090
PROMETHEUS = "/usr/bin/prometheus"


def busy_taskdef(family="busy"):
    # a quarter of a CPU, spent entirely: ~100% of its reservation
    return {"family": family, "networkMode": "awsvpc", "cpu": "256", "memory": "64", "containerDefinitions": [{
        "name": "main", "image": "busybox:latest", "essential": True, "stopTimeout": 2,
        "command": ["sh", "-c", "while :; do :; done"]}]}


def idle_taskdef(family="idle"):
    return {"family": family, "networkMode": "none", "memory": "32", "containerDefinitions": [{
        "name": "main", "image": "busybox:latest", "essential": True, "stopTimeout": 2,
        "command": ["sleep", "3600"]}]}


@pytest.fixture(scope="module")
def cluster(busybox):
    c = Cluster(nodes=2, server_args=["--metrics-period", "2"])
    try:
        c.start(busybox=busybox, node_extra=("--metrics-interval", "1", "--metrics-listen",
                                             f"0.0.0.0:{AGENT_PORT}"))
        yield c
    finally:
        c.cleanup()


def register(c, td):
    with c.ecs() as ecs:
        ecs.register_task_definition(**td)


def run_task(c, family):
    with c.ecs() as ecs:
        out = ecs.run_task(taskDefinition=family)
        assert not out["failures"], out["failures"]
        arn = out["tasks"][0]["taskArn"]
        try:
            ecs.get_waiter("tasks_running").wait(tasks=[arn], WaiterConfig={"Delay": 1, "MaxAttempts": 60})
        except Exception:
            raise AssertionError(f"task not RUNNING: {ecs.describe_tasks(tasks=[arn])['tasks'][0]}")
    return arn


def stop_task(c, arn):
    with c.ecs() as ecs:
        ecs.stop_task(task=arn)


def get(c, url, token=None, timeout=10):
    """(status, body) of GET url from the VPC namespace, verifying the server with the cluster CA."""
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    ctx = ssl.create_default_context(cafile=c.ca)
    with in_netns(c.vpc):
        try:
            with urllib.request.urlopen(req, timeout=timeout, context=ctx if url.startswith("https") else None) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()
        except urllib.error.URLError as e:  # not listening (yet)
            return 0, str(e)


def token(c):
    return open(os.path.join(c.server_root, "metrics-token")).read().strip()


def series(text, name, **labels):
    """Values of the samples of name whose labels include labels."""
    out = []
    for line in text.splitlines():
        m = re.match(r'^(\w+)\{(.*)\} (\S+)$', line)
        if not m or m.group(1) != name:
            continue
        have = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2)))
        if all(have.get(k) == v for k, v in labels.items()):
            out.append(float(m.group(3)))
    return out


@pytest.fixture(scope="module")
def busy(cluster):
    register(cluster, busy_taskdef())
    arn = run_task(cluster, "busy")
    yield arn
    stop_task(cluster, arn)


def test_server_exposition_needs_the_bearer_token(cluster):
    status, body = get(cluster, cluster.endpoint + "/metrics")
    assert status == 401 and "metrics-token" in body
    status, _ = get(cluster, cluster.endpoint + "/metrics", token="0" * 64)
    assert status == 401
    status, body = get(cluster, cluster.endpoint + "/metrics", token=token(cluster))
    assert status == 200
    assert series(body, "berth_cluster_running_tasks", cluster="default") is not None


def test_busy_task_is_near_its_cpu_reservation(cluster, busy):
    tid = busy.rsplit("/", 1)[1]

    def busy_enough():
        _, body = get(cluster, cluster.endpoint + "/metrics", token=token(cluster))
        v = series(body, "berth_task_cpu_utilization_percent", cluster="default", task=tid,
                   task_definition_family="busy", service="")
        return body if v and v[0] > 60 else None
    body = wait_for(busy_enough, 30, "the busy task's CPU utilization above 60%", every=0.5)
    assert series(body, "berth_task_cpu_seconds_total", task=tid)[0] > 0
    assert series(body, "berth_task_memory_bytes", task=tid)[0] > 0
    assert series(body, "berth_task_memory_limit_bytes", task=tid) == [64 * 1024 * 1024]
    assert series(body, "berth_task_cpu_reserved_units", task=tid) == [256]
    assert series(body, "berth_task_network_receive_bytes_total", task=tid)  # the awsvpc namespace's eth0
    assert series(body, "berth_cluster_cpu_utilization_percent", cluster="default")[0] > 0


def test_agent_exposition_has_node_and_task_series(cluster, busy):
    tid = busy.rsplit("/", 1)[1]
    node = cluster.node_of(cluster.aws("describe-tasks", "--tasks", busy)["tasks"][0]["containerInstanceArn"])

    def has_task():
        status, body = get(cluster, f"http://{node.addr}:{AGENT_PORT}/metrics")
        return body if status == 200 and series(body, "berth_task_cpu_seconds_total", task=tid) else None
    body = wait_for(has_task, 20, "the task on its agent's /metrics", every=0.5)
    assert series(body, "berth_node_memory_total_bytes")[0] > 0
    assert series(body, "berth_node_running_tasks")[0] >= 1
    assert series(body, "berth_node_cpu_seconds_total", mode="idle")[0] > 0
    status, _ = get(cluster, f"http://{node.addr}:{AGENT_PORT}/other")
    assert status == 404


def test_prometheus_scrapes_server_and_agents(cluster, busy):
    tid = busy.rsplit("/", 1)[1]
    d = tempfile.mkdtemp(prefix="berth-prom-")
    host, port = re.match(r"https://([\d.]+):(\d+)", cluster.endpoint).groups()
    cfg = f"""
global: {{scrape_interval: 1s, evaluation_interval: 1s}}
scrape_configs:
  - job_name: berth-server
    scheme: https
    tls_config: {{ca_file: {cluster.ca}}}
    authorization: {{type: Bearer, credentials_file: {os.path.join(cluster.server_root, "metrics-token")}}}
    static_configs: [{{targets: ["{host}:{port}"]}}]
  - job_name: berth-agents
    static_configs: [{{targets: [{", ".join(f'"{n.addr}:{AGENT_PORT}"' for n in cluster.nodes)}]}}]
"""
    with open(os.path.join(d, "prometheus.yml"), "w") as f:
        f.write(cfg)
    log = open(os.path.join(d, "prometheus.log"), "w")
    prom = subprocess.Popen(["nsenter", f"--net=/run/netns/{cluster.vpc}", PROMETHEUS, "--config.file",
                             os.path.join(d, "prometheus.yml"), "--storage.tsdb.path", os.path.join(d, "data"),
                             "--web.listen-address", f"127.0.0.1:{PROM_PORT}"],
                            stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    try:
        def query(q):
            status, body = get(cluster, f"http://127.0.0.1:{PROM_PORT}/api/v1/query?" +
                               urllib.parse.urlencode({"query": q}), timeout=5) if prom.poll() is None else (0, "")
            assert prom.poll() is None, open(os.path.join(d, "prometheus.log")).read()[-2000:]
            if status != 200:
                return None
            return json.loads(body)["data"]["result"] or None

        task = wait_for(lambda: query(f'berth_task_cpu_utilization_percent{{job="berth-server",task="{tid}"}}'),
                        40, "Prometheus to have the task's series from the server", every=1)
        assert task[0]["metric"]["task_definition_family"] == "busy"
        assert task[0]["metric"]["cluster"] == "default"
        nodes = wait_for(lambda: (lambda r: r if r and len(r) == 2 else None)(
            query('berth_node_memory_total_bytes{job="berth-agents"}')), 20,
            "Prometheus to have both agents' node series", every=1)
        assert {n["metric"]["instance"] for n in nodes} == {f"{n.addr}:{AGENT_PORT}" for n in cluster.nodes}
        up = query('up{job="berth-server"}')
        assert up and up[0]["value"][1] == "1"
    finally:
        prom.terminate()
        try:
            prom.wait(timeout=10)
        except subprocess.TimeoutExpired:
            prom.kill()
            prom.wait()
        shutil.rmtree(d, ignore_errors=True)


def berth(c, *args, check=True):
    env = dict(c.aws_env(), AWS_ENDPOINT_URL=c.endpoint, AWS_CA_BUNDLE=c.ca, AWS_REGION="us-east-1")
    p = subprocess.run(["nsenter", f"--net=/run/netns/{c.vpc}", berth_binary(), *args], capture_output=True,
                       text=True, env=env, timeout=60)
    if check and p.returncode != 0:
        raise AssertionError(f"berth {args} exited {p.returncode}: {p.stderr}")
    return p


def test_berth_top_shows_the_busy_task(cluster, busy):
    tid = busy.rsplit("/", 1)[1]

    def listed():
        out = json.loads(berth(cluster, "cluster", "top", "--format", "json").stdout)
        t = [x for x in out["tasks"] if x["taskArn"] == busy]
        return out if t and t[0]["cpuUtilization"] is not None else None
    out = wait_for(listed, 20, "the task in BerthDescribeMetrics", every=0.5)
    assert out["cluster"] == "default" and out["period"] == 2
    assert out["clusterMetrics"]["runningCount"] >= 1
    table = berth(cluster, "top").stdout
    assert table.startswith("CLUSTER default")
    assert tid in table and "busy" in table
    p = berth(cluster, "top", "--cluster", "nope", check=False)
    assert p.returncode != 0 and "ClusterNotFoundException" in p.stderr


def test_stopped_task_leaves_the_exposition(cluster):
    register(cluster, idle_taskdef())
    arn = run_task(cluster, "idle")
    tid = arn.rsplit("/", 1)[1]
    wait_for(lambda: series(get(cluster, cluster.endpoint + "/metrics", token=token(cluster))[1],
                            "berth_task_memory_bytes", task=tid), 20, "the idle task's memory series", every=0.5)
    stop_task(cluster, arn)
    with cluster.ecs() as ecs:
        ecs.get_waiter("tasks_stopped").wait(tasks=[arn], WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    _, body = get(cluster, cluster.endpoint + "/metrics", token=token(cluster))
    assert not series(body, "berth_task_memory_bytes", task=tid)
