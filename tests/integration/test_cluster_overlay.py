"""The VXLAN overlay (issue 12 §3 "Overlay", docs/cluster.md): every node gets a
subnet of the server's --cluster-cidr, agents program a vxlan device from the
server's peer list, and awsvpc tasks on different hosts reach each other by IP
with their real source addresses. Hosts are network namespaces on one bridge
(cluster_fixture); the subnets here come from the server (no --task-subnet).
"""
import ipaddress
import json
import os
import signal
import subprocess
import threading

import pytest

from berth_agent_client import AgentClient, AgentError
from cluster_fixture import Cluster, Node, in_netns, wait_for
from conftest import run

# busybox httpd serving a page and a CGI that answers the caller's address
ECHO = {
    "family": "echo",
    "networkMode": "awsvpc",
    "cpu": "256",
    "memory": "128",
    "containerDefinitions": [{
        "name": "web", "image": "busybox:latest", "memory": 64, "cpu": 128, "essential": True,
        "portMappings": [{"containerPort": 80}], "stopTimeout": 2,
        "command": ["sh", "-c",
                    "mkdir -p /www/cgi-bin && echo hello-from-task > /www/index.html && "
                    "printf '#!/bin/sh\\necho Content-Type: text/plain\\necho\\necho peer=$REMOTE_ADDR\\n' "
                    "> /www/cgi-bin/peer && chmod +x /www/cgi-bin/peer && exec httpd -f -p 80 -h /www"],
    }],
}


def describe(c, arns):
    return c.aws("describe-tasks", "--tasks", *arns)["tasks"]


def run_spread(c, count):
    out = c.aws("run-task", "--task-definition", "echo", "--count", count, "--placement-strategy",
                "type=spread,field=instanceId")
    assert not out["failures"], out["failures"]
    arns = [t["taskArn"] for t in out["tasks"]]
    with c.ecs() as ecs:
        ecs.get_waiter("tasks_running").wait(tasks=arns, WaiterConfig={"Delay": 1, "MaxAttempts": 90})
    return describe(c, arns)


def task_ip(t):
    return t["containers"][0]["networkInterfaces"][0]["privateIpv4Address"]


def container_of(c, t):
    """(node, container id) of the task's web container."""
    node = c.node_of(t["containerInstanceArn"])
    tid = t["taskArn"].rsplit("/", 1)[1]
    [x] = [x for x in node.containers(all=False) if x["Names"] == f"ecs-echo-1-web-{tid[:20]}"]
    return node, x["ID"]


def fetch_from_task(c, t, url):
    """GET url from inside the task's container with busybox wget under busybox timeout
    (`wget -T` segfaults here; the generated image's /usr/bin applet links dangle, so
    both run as /bin/busybox applets)."""
    node, cid = container_of(c, t)
    return node.docker("exec", cid, "/bin/busybox", "timeout", "10", "/bin/busybox", "wget", "-qO-", url,
                       check=False)


def subnet_of(node):
    vtep = node.vtep()
    return ipaddress.ip_network(f"{vtep}/24") if vtep else None


@pytest.fixture(scope="module")
def cluster(busybox):
    c = Cluster(nodes=3, explicit_subnets=False)
    try:
        c.start(busybox=busybox)
        c.aws("register-task-definition", "--cli-input-json", json.dumps(ECHO))
        wait_for(lambda: all(len(n.overlay_routes()) == 2 for n in c.nodes), 30, "overlay routes to both peers")
        yield c
    finally:
        c.cleanup()


@pytest.fixture
def tasks(cluster):
    """Three echo tasks, one per node; stopped afterwards."""
    ts = run_spread(cluster, 3)
    assert len({t["containerInstanceArn"] for t in ts}) == 3
    yield ts
    arns = [t["taskArn"] for t in ts]
    for a in arns:
        cluster.aws("stop-task", "--task", a)
    wait_for(lambda: all(t["lastStatus"] == "STOPPED" for t in describe(cluster, arns)), 90, "tasks stopped")


def test_each_node_gets_a_distinct_subnet_of_the_cluster_cidr(cluster):
    pool = ipaddress.ip_network(cluster.cluster_cidr)
    subnets = [subnet_of(n) for n in cluster.nodes]
    assert all(s is not None and s.subnet_of(pool) for s in subnets), subnets
    assert len(set(subnets)) == 3
    for n, own in zip(cluster.nodes, subnets):
        routes = n.overlay_routes()
        others = {str(s) for s in subnets if s != own}
        assert set(routes) == others, (routes, others)
        # flannel's shape: each peer subnet via the peer's VTEP (its network address), onlink
        assert all(gw == dst.split("/")[0] for dst, gw in routes.items()), routes


def test_awsvpc_tasks_on_different_hosts_reach_each_other_by_ip(cluster, tasks):
    ts = tasks
    for t in ts:
        node = cluster.node_of(t["containerInstanceArn"])
        assert ipaddress.ip_address(task_ip(t)) in subnet_of(node), (task_ip(t), subnet_of(node))
    for src in ts:
        for dst in ts:
            if dst is src:
                continue
            p = fetch_from_task(cluster, src, f"http://{task_ip(dst)}/")
            assert p.returncode == 0 and p.stdout.strip() == "hello-from-task", (task_ip(src), task_ip(dst),
                                                                                 p.stdout, p.stderr)


def test_peers_see_the_real_source_ip_of_a_task_on_another_host(cluster, tasks):
    a, b = tasks[0], tasks[1]
    p = fetch_from_task(cluster, a, f"http://{task_ip(b)}/cgi-bin/peer")
    assert p.returncode == 0, p.stderr
    seen = p.stdout.strip().removeprefix("peer=").strip("[]")  # httpd on [::] prints [::ffff:A.B.C.D]
    addr = ipaddress.ip_address(seen)
    addr = getattr(addr, "ipv4_mapped", None) or addr
    assert str(addr) == task_ip(a), p.stdout


def test_stopped_agent_keeps_the_dataplane_and_subnets_survive_restarts(cluster, tasks):
    c = cluster
    before = [subnet_of(n) for n in c.nodes]
    a, b = tasks[0], tasks[1]
    node_b = c.node_of(b["containerInstanceArn"])
    routes_b = node_b.overlay_routes()
    node_b.stop(signal.SIGTERM)
    # tasks keep running while their agent is down, and stay reachable across hosts
    assert node_b.overlay_routes() == routes_b
    p = fetch_from_task(c, a, f"http://{task_ip(b)}/")
    assert p.returncode == 0 and p.stdout.strip() == "hello-from-task", p.stderr
    node_b.start()
    assert subnet_of(node_b) == before[c.nodes.index(node_b)]
    c.stop_server(signal.SIGKILL)
    c.start_server()
    for n in c.nodes:  # the agents re-register with the restarted server
        n.stop()
        n.start()
    wait_for(lambda: all(i["agentConnected"] for i in c.instances()), 30, "agents reconnected")
    assert [subnet_of(n) for n in c.nodes] == before
    wait_for(lambda: all(len(n.overlay_routes()) == 2 for n in c.nodes), 30, "overlay routes after restarts")
    p = fetch_from_task(c, b, f"http://{task_ip(a)}/")
    assert p.returncode == 0 and p.stdout.strip() == "hello-from-task", p.stderr


def test_awsvpc_tasks_started_at_once_get_distinct_addresses_and_reach_each_other(cluster):
    """Several awsvpc tasks per node set up at the same time (net_lock is not held across the CNI
    calls): each gets its own address of its node's subnet, and each reaches a task on its own
    node and one on another node."""
    c = cluster
    ts = run_spread(c, 6)
    try:
        ips = [task_ip(t) for t in ts]
        assert len(set(ips)) == 6, ips
        by_node = {}
        for t in ts:
            node = c.node_of(t["containerInstanceArn"])
            assert ipaddress.ip_address(task_ip(t)) in subnet_of(node), (task_ip(t), subnet_of(node))
            by_node.setdefault(t["containerInstanceArn"], []).append(t)
        assert sorted(len(v) for v in by_node.values()) == [2, 2, 2], by_node.keys()
        for i, src in enumerate(ts):
            same = next(t for t in by_node[src["containerInstanceArn"]] if t is not src)
            other = next(t for t in ts[i + 1:] + ts[:i] if t["containerInstanceArn"] != src["containerInstanceArn"])
            for dst in (same, other):
                p = fetch_from_task(c, src, f"http://{task_ip(dst)}/")
                assert p.returncode == 0 and p.stdout.strip() == "hello-from-task", (task_ip(src), task_ip(dst),
                                                                                     p.stdout, p.stderr)
    finally:
        arns = [t["taskArn"] for t in ts]
        for a in arns:
            c.aws("stop-task", "--task", a)
        wait_for(lambda: all(t["lastStatus"] == "STOPPED" for t in describe(c, arns)), 90, "tasks stopped")


def test_deregistered_node_leaves_the_overlay_and_its_subnet_is_reused(cluster):
    """Last in this module: it removes node 3 from the cluster."""
    c = cluster
    gone = c.nodes[2]
    gone_subnet = str(subnet_of(gone))
    arn = next(i["containerInstanceArn"] for i in c.instances()
               if next(a["value"] for a in i["attributes"] if a["name"] == "ecs.availability-zone") == gone.zone)
    c.aws("deregister-container-instance", "--container-instance", arn, "--force")
    for n in c.nodes[:2]:
        wait_for(lambda n=n: gone_subnet not in n.overlay_routes(), 10, f"h{n.index} drops the route")
        assert len(n.overlay_routes()) == 1
    wait_for(lambda: gone.proc.poll() is not None, 30, "the deregistered agent exits")
    gone.proc = None
    # a new host joins: it gets the freed subnet, and the others route to it
    fresh = Node(c, 4, "us-east-1c")
    c.nodes.append(fresh)
    c.add_host_netns(fresh)
    fresh.start()
    wait_for(lambda: fresh.vtep(), 30, "the new node's overlay")
    assert str(subnet_of(fresh)) == gone_subnet
    for n in c.nodes[:2] + [fresh]:
        wait_for(lambda n=n: len(n.overlay_routes()) == 2, 10, f"h{n.index} routes to both peers")
    assert gone_subnet in c.nodes[0].overlay_routes()


@pytest.fixture
def small(tmp_path):
    """A server alone whose cluster CIDR holds two node subnets (10.42.7.0/24 in /25s)."""
    c = Cluster(nodes=0, server_args=["--cluster-cidr", "10.42.7.0/24", "--node-subnet-size", "25"])
    try:
        c.build_network()
        c.start_server()
        yield c
    finally:
        c.cleanup()


def fake_node(c, name, address):
    """A protocol-level node (berth_agent_client) joined and registered at address."""
    a = AgentClient(c.endpoint, os.path.join(c.base, "fake-" + name))
    a.join(c.token())
    body = a.call("POST", "register", {"cluster": "default", "agentVersion": "test",
                                       "resources": {"cpu": 1024, "memory": 1024}, "address": address})
    a.instance_arn = body["containerInstanceArn"]
    return a, body


def test_exhausted_cluster_cidr_refuses_the_node_naming_the_cidr_and_deregistration_frees(small):
    c = small
    with in_netns(c.vpc):
        a, ra = fake_node(c, "a", "192.168.77.50")
        b, rb = fake_node(c, "b", "192.168.77.51")
        assert {ra["taskSubnet"], rb["taskSubnet"]} == {"10.42.7.0/25", "10.42.7.128/25"}
        assert ra["clusterCidr"] == "10.42.7.0/24" and ra["vxlanId"] == 1
        late = AgentClient(c.endpoint, os.path.join(c.base, "fake-late"))
        late.join(c.token())
        with pytest.raises(AgentError) as e:
            late.call("POST", "register", {"cluster": "default", "resources": {"cpu": 1, "memory": 1},
                                           "address": "192.168.77.52"})
        assert e.value.status == 409 and e.value.body["code"] == "SubnetExhausted", e.value.body
        assert "no free /25 left in the cluster CIDR '10.42.7.0/24'" in e.value.body["error"], e.value.body
        # b sees a as its only peer, with what a registered
        [peer] = b.call("GET", "peers")["peers"]
        assert peer == {"nodeId": a.node_id, "address": "192.168.77.50", "taskSubnet": ra["taskSubnet"],
                        "vtepMac": ra["vtepMac"]}
    assert len(c.instances()) == 2
    c.aws("deregister-container-instance", "--container-instance", a.instance_arn)
    with in_netns(c.vpc):
        body = late.call("POST", "register", {"cluster": "default", "resources": {"cpu": 1, "memory": 1},
                                              "address": "192.168.77.52"})
        assert body["taskSubnet"] == ra["taskSubnet"]  # a's subnet, freed and reused
        assert [p["nodeId"] for p in b.call("GET", "peers")["peers"]] == [late.node_id]


def test_peers_long_poll_answers_when_a_node_registers(small):
    c = small
    with in_netns(c.vpc):
        a, _ = fake_node(c, "a", "192.168.77.60")
        b = AgentClient(c.endpoint, os.path.join(c.base, "fake-b"))
        b.join(c.token())  # joined, not registered: no subnet yet, so no peer
        first = a.call("GET", "peers")
        assert first["peers"] == []
        result = {}

        def poll():
            with in_netns(c.vpc):
                result["v"] = a.call("GET", "peers", params={"since": first["revision"], "wait": 30})

        t = threading.Thread(target=poll)
        t.start()
        rb = b.call("POST", "register", {"cluster": "default", "resources": {"cpu": 1, "memory": 1},
                                         "address": "192.168.77.61"})
        t.join(40)
        assert not t.is_alive()
    [peer] = result["v"]["peers"]
    assert peer["nodeId"] == b.node_id and peer["taskSubnet"] == rb["taskSubnet"]
    assert result["v"]["revision"] > first["revision"]


def test_explicit_task_subnet_outside_the_cluster_cidr_is_refused(small):
    c = small
    with in_netns(c.vpc):
        a = AgentClient(c.endpoint, os.path.join(c.base, "fake-x"))
        a.join(c.token())
        with pytest.raises(AgentError) as e:
            a.call("POST", "register", {"cluster": "default", "resources": {"cpu": 1, "memory": 1},
                                        "taskSubnet": "10.99.0.0/24"})
    assert e.value.status == 400 and "outside the cluster CIDR '10.42.7.0/24'" in e.value.body["error"]


def test_server_usage_errors_for_overlay_flags(berth_bin):
    for args, msg in ((["--cluster-cidr", "10.42.0.1/16"], "invalid --cluster-cidr"),
                      (["--cluster-cidr", "nonsense"], "invalid --cluster-cidr"),
                      (["--node-subnet-size", "31"], "invalid --node-subnet-size"),
                      (["--cluster-cidr", "10.42.0.0/24", "--node-subnet-size", "16"], "larger than the cluster"),
                      (["--vxlan-id", "16777216"], "invalid --vxlan-id")):
        p = subprocess.run([berth_bin, "server", *args], capture_output=True, text=True, timeout=10)
        assert p.returncode == 2 and msg in p.stderr, (args, p.stderr)
    p = subprocess.run([berth_bin, "server", "--help"], capture_output=True, text=True, timeout=10)
    assert "--cluster-cidr" in p.stdout and "--node-subnet-size" in p.stdout
    p = subprocess.run([berth_bin, "agent", "--help"], capture_output=True, text=True, timeout=10)
    assert "--advertise-address" in p.stdout
