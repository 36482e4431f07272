"""Load balancing and service discovery (issue 14, docs/lb.md): `berth lb` objects
on the server, HAProxy on every agent host reconfigured through its runtime API,
and SERVICE / SERVICE.CLUSTER.local names answered by the resolver awsvpc tasks
use. "Service tasks" are RunTask tasks with group service:NAME attached to the
load balancer with `berth lb attach` (the service record of CreateService counts
the same way once services exist). One module-scoped cluster of 3 hosts.
"""
import http.client
import json
import os
import re
import ssl
import subprocess
import threading
import time

import pytest

from cluster_fixture import Cluster, in_netns, wait_for
from conftest import berth_binary

PORT = 8080
TLS_PORT = 8443
IP_SH = ("IP=$(/bin/busybox ip -o -4 addr show scope global | /bin/busybox awk '{split($4,a,\"/\"); print a[1]}'); "
         "mkdir -p /www && echo $IP > /www/index.html && echo ok > /www/healthz && exec httpd -f -p 80 -h /www")
WEB = {
    "family": "lbweb",
    "networkMode": "awsvpc",
    "cpu": "128",
    "memory": "64",
    "containerDefinitions": [{
        "name": "web", "image": "busybox:latest", "memory": 32, "essential": True, "stopTimeout": 2,
        "portMappings": [{"containerPort": 80}], "command": ["sh", "-c", IP_SH],
    }],
}


@pytest.fixture(scope="module")
def cluster(busybox):
    # metrics every second (test_requests_count_for_the_service_behind_the_load_balancer)
    c = Cluster(nodes=3, explicit_subnets=False, server_args=["--metrics-period", "1"])
    try:
        c.start(busybox=busybox, node_extra=("--metrics-interval", "1"))
        c.aws("register-task-definition", "--cli-input-json", json.dumps(WEB))
        yield c
    finally:
        c.cleanup()


def berth(c, *args, check=True):
    env = dict(c.aws_env(), AWS_CA_BUNDLE=c.ca, AWS_ENDPOINT_URL=c.endpoint, AWS_REGION="us-east-1")
    p = subprocess.run(["nsenter", f"--net=/run/netns/{c.vpc}", berth_binary(), *map(str, args)],
                       capture_output=True, text=True, env=env, timeout=60)
    if check and p.returncode != 0:
        raise AssertionError(f"berth {args} exited {p.returncode}: {p.stderr}")
    return p


def get(addr, port, path="/", tls=False, timeout=3):
    """GET through a node's listener from the VPC namespace (the calling thread must be in it)."""
    if tls:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        conn = http.client.HTTPSConnection(addr, port, timeout=timeout, context=ctx)
    else:
        conn = http.client.HTTPConnection(addr, port, timeout=timeout)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        return r.status, r.read().decode().strip()
    finally:
        conn.close()


def answers(c, node, n, port=PORT, tls=False):
    """The bodies of n requests through node's listener (None for a failed one)."""
    out = []
    with in_netns(c.vpc):
        for _ in range(n):
            try:
                status, body = get(node.addr, port, tls=tls)
                out.append(body if status == 200 else None)
            except OSError:
                out.append(None)
    return out


def run_tasks(c, count, group="service:web"):
    out = c.aws("run-task", "--task-definition", "lbweb", "--count", count, "--group", group,
                "--placement-strategy", "type=spread,field=instanceId")
    assert not out["failures"], out["failures"]
    arns = [t["taskArn"] for t in out["tasks"]]
    with c.ecs() as ecs:
        ecs.get_waiter("tasks_running").wait(tasks=arns, WaiterConfig={"Delay": 1, "MaxAttempts": 90})
    return c.aws("describe-tasks", "--tasks", *arns)["tasks"]


def task_ip(t):
    return t["containers"][0]["networkInterfaces"][0]["privateIpv4Address"]


def exec_in(c, t, *cmd):
    node = c.node_of(t["containerInstanceArn"])
    tid = t["taskArn"].rsplit("/", 1)[1]
    [x] = [x for x in node.containers(all=False) if x["Names"].startswith("ecs-lbweb-") and tid[:20] in x["Names"]
           and "internalecspause" not in x["Names"]]
    return node.docker("exec", x["ID"], "/bin/busybox", "timeout", "10", *cmd, check=False)


def in_rotation(c, ips, port=PORT, tls=False):
    """Every node's listener answers with exactly ips over a full round."""
    for n in c.nodes:
        got = set(answers(c, n, 2 * max(1, len(ips)) + 2, port, tls))
        if got != set(ips):
            return False
    return True


@pytest.fixture(scope="module")
def web(cluster):
    """The load balancer 'web' and three service:web tasks (one per node) attached to it."""
    c = cluster
    p = berth(c, "lb", "create", "web", "--port", PORT, "--health-path", "/healthz", "--health-interval", 1,
              "--deregistration-delay", 1)
    arn = p.stdout.strip()
    berth(c, "lb", "attach", "web", "--service", "web", "--container", "web", "--port", 80)
    ts = run_tasks(c, 3)
    assert len({t["containerInstanceArn"] for t in ts}) == 3
    ips = [task_ip(t) for t in ts]
    wait_for(lambda: in_rotation(c, ips), 30, "every node's listener to serve the three tasks")
    return {"arn": arn, "tasks": ts}


def test_create_prints_the_target_group_arn_and_inspect_shows_it(cluster, web):
    assert re.fullmatch(r"arn:aws:elasticloadbalancing:us-east-1:\d{12}:targetgroup/web/[0-9a-f]{16}", web["arn"])
    out = json.loads(berth(cluster, "lb", "inspect", "web", "--format", "json").stdout)
    [lb] = out["loadBalancers"]
    assert lb["targetGroup"]["targetGroupArn"] == web["arn"]
    assert lb["targetGroup"]["deregistrationDelay"] == 1 and lb["targetGroup"]["healthCheckPath"] == "/healthz"
    assert lb["port"] == PORT and lb["protocol"] == "HTTP" and lb["cluster"] == "default"
    assert [a["serviceName"] for a in lb["attachments"]] == ["web"]
    assert "web" in berth(cluster, "lb", "ls").stdout


def test_every_node_round_robins_over_tasks_on_all_nodes(cluster, web):
    ips = sorted(task_ip(t) for t in web["tasks"])
    for n in cluster.nodes:
        got = answers(cluster, n, 9)
        assert None not in got, got
        assert sorted(set(got)) == ips
        assert all(got.count(ip) == 3 for ip in ips), got  # round robin: each task once per round
    def states():  # as the nodes' HAProxy report them (within a second of a change)
        out = json.loads(berth(cluster, "lb", "targets", "web", "--format", "json").stdout)
        return {d["target"]["ip"]: (d["targetHealth"]["state"], len(d["targetHealth"].get("nodes", {})))
                for d in out["targetHealthDescriptions"]}
    wait_for(lambda: states() == {ip: ("healthy", 3) for ip in ips}, 10, "every target healthy on 3 nodes")


def test_requests_count_for_the_service_behind_the_load_balancer(cluster, web):
    """The nodes' HAProxy counters reach the service's metrics (ALBRequestCountPerTarget's input)."""
    def requests():
        out = json.loads(berth(cluster, "service", "stats", "web", "--periods", "30", "--format", "json").stdout)
        return sum(p["requestCount"] for p in out["services"][0]["datapoints"])
    before = requests()
    for n in cluster.nodes:
        assert None not in answers(cluster, n, 10)
    wait_for(lambda: requests() >= before + 30, 20, "30 requests in the service's datapoints", every=1)


def test_service_discovery_resolves_service_and_cluster_local_names(cluster, web):
    c = cluster
    ips = sorted(task_ip(t) for t in web["tasks"])

    def resolved(name, t=web["tasks"][0]):
        p = exec_in(c, t, "/bin/busybox", "nslookup", name)
        found = re.findall(r"Address(?: \d+)?:\s*(\d+\.\d+\.\d+\.\d+)", p.stdout.split("Name:", 1)[-1])
        return sorted(set(found)) if "Name:" in p.stdout else []

    assert wait_for(lambda: resolved("web") == ips and ips, 10, "web to resolve")
    assert resolved("web.default.local") == ips
    p = exec_in(c, web["tasks"][1], "/bin/busybox", "wget", "-qO-", "http://web:80/")
    assert p.returncode == 0 and p.stdout.strip() in ips, (p.stdout, p.stderr)
    # a new task of the service joins the name, a stopped one leaves it
    [extra] = run_tasks(c, 1)
    t0 = time.monotonic()
    wait_for(lambda: task_ip(extra) in resolved("web"), 10, "the new task in the name")
    joined = time.monotonic() - t0
    c.aws("stop-task", "--task", extra["taskArn"])
    wait_for(lambda: task_ip(extra) not in resolved("web"), 10, "the stopped task out of the name")
    print(f"discovery: a new task resolved {joined:.2f}s after RUNNING")
    assert resolved("web") == ips


def loop_requests(c, node, stop, result):
    ok = fail = 0
    seen = []
    with in_netns(c.vpc):
        while not stop.is_set():
            try:
                status, body = get(node.addr, PORT)
                if status == 200:
                    ok += 1
                    seen.append(body)
                else:
                    fail += 1
            except OSError:
                fail += 1
    result.update(ok=ok, fail=fail, seen=seen)


def test_drained_task_leaves_rotation_with_zero_failed_requests(cluster, web):
    c = cluster
    victim = web["tasks"][2]
    stop, results, threads = threading.Event(), [], []
    for n in c.nodes:
        r = {}
        results.append(r)
        threads.append(threading.Thread(target=loop_requests, args=(c, n, stop, r)))
    for t in threads:
        t.start()
    try:
        time.sleep(0.5)
        berth(c, "lb", "drain", "web", victim["taskArn"], "--stop")
        wait_for(lambda: c.aws("describe-tasks", "--tasks", victim["taskArn"])["tasks"][0]["lastStatus"] == "STOPPED",
                 60, "the drained task to stop")
        time.sleep(0.5)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    for r in results:
        assert r["fail"] == 0 and r["ok"] > 10, r["fail"]
        assert task_ip(victim) in r["seen"]  # it served before it drained
        assert task_ip(victim) not in r["seen"][-5:]
    web["tasks"] = web["tasks"][:2]
    assert in_rotation(c, [task_ip(t) for t in web["tasks"]])


def test_failing_health_check_takes_the_target_out(cluster, web):
    c = cluster
    sick, well = web["tasks"][0], web["tasks"][1]
    assert exec_in(c, sick, "/bin/busybox", "rm", "/www/healthz").returncode == 0
    wait_for(lambda: in_rotation(c, [task_ip(well)]), 20, "the unhealthy target out of every node's rotation")
    # the server reports it as HAProxy sees it (a RunTask task: no service scheduler replaces it)
    out = wait_for(lambda: [d["targetHealth"] for d in json.loads(berth(c, "lb", "targets", "web", "--format",
                                                                     "json").stdout)["targetHealthDescriptions"]
                            if d["target"]["ip"] == task_ip(sick) and d["targetHealth"]["state"] == "unhealthy"],
                   10, "the target unhealthy in describe-target-health")
    assert out[0]["reason"] == "Target.ResponseCodeMismatch", out
    assert "unhealthy" in berth(c, "lb", "targets", "web").stdout
    assert exec_in(c, sick, "/bin/busybox", "sh", "-c", "echo ok > /www/healthz").returncode == 0
    wait_for(lambda: in_rotation(c, [task_ip(t) for t in web["tasks"]]), 20, "the target back after it recovers")


def test_tls_listener_terminates_with_the_given_certificate(cluster, web, tmp_path):
    c = cluster
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=web.test"], check=True,
                   capture_output=True)
    berth(c, "lb", "create", "websec", "--port", TLS_PORT, "--tls-cert", cert, "--tls-key", key)
    berth(c, "lb", "attach", "websec", "--service", "web", "--container", "web", "--port", 80)
    ips = [task_ip(t) for t in web["tasks"]]
    wait_for(lambda: in_rotation(c, ips, TLS_PORT, tls=True), 30, "the TLS listener on every node")
    with in_netns(c.vpc):
        pem = ssl.get_server_certificate((c.nodes[0].addr, TLS_PORT))
    assert pem.split() == open(cert).read().split()
    out = berth(c, "lb", "inspect", "websec", "--format", "json").stdout
    assert "PRIVATE KEY" not in out and "BEGIN CERTIFICATE" not in out and json.loads(out)["loadBalancers"][0]["tls"]
    # the plain listener is still plain
    assert in_rotation(c, ips)
    berth(c, "lb", "detach", "websec", "--service", "web")
    berth(c, "lb", "rm", "websec")
    with in_netns(c.vpc):
        wait_for(lambda: not _listening(c.nodes[0].addr, TLS_PORT), 15, "the TLS listener to close")


def _listening(addr, port):
    import socket
    try:
        socket.create_connection((addr, port), timeout=1).close()
        return True
    except OSError:
        return False


def test_bad_input_gives_clear_errors_and_creates_nothing(cluster, web, tmp_path):
    c = cluster
    before = berth(c, "lb", "ls", "--format", "json").stdout
    cases = [
        (["lb", "create", "web", "--port", 9000], "DuplicateLoadBalancerNameException"),
        (["lb", "create", "other", "--port", PORT], "port 8080 is already used by load balancer 'web'"),
        (["lb", "create", "other", "--port", 22], "port 22 is reserved"),
        (["lb", "create", "bad_name", "--port", 9001], "InvalidParameterException: name 'bad_name'"),
        (["lb", "create", "other", "--port", 9002, "--protocol", "udp"], "protocol 'udp': expected HTTP or TCP"),
        (["lb", "create", "other", "--port", 9003, "--health-path", "nope"], "healthCheckPath 'nope'"),
        (["lb", "rm", "nosuch"], "LoadBalancerNotFoundException: Load balancer 'nosuch' not found."),
        (["lb", "inspect", "nosuch"], "LoadBalancerNotFoundException"),
        (["lb", "rm", "web"], "ResourceInUseException"),
    ]
    bad = tmp_path / "bad.pem"
    bad.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    cases.append((["lb", "create", "other", "--port", 9004, "--tls-cert", bad, "--tls-key", bad],
                  "certificate: not a PEM X.509 certificate"))
    for args, msg in cases:
        p = berth(c, *args, check=False)
        assert p.returncode == 1 and msg in p.stderr, (args, p.returncode, p.stderr)
    for args in (["lb", "create", "x", "--port", 70000], ["lb", "create", "x", "--port", 0], ["lb", "create", "x"]):
        p = berth(c, *args, check=False)
        assert p.returncode == 125, (args, p.stderr)
    assert berth(c, "lb", "ls", "--format", "json").stdout == before
