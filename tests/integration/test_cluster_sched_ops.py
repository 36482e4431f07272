"""The scheduler's controllers on real agents (issue 13), one shared 3-node cluster
(multi-host fixture, SQLite server, one zone per node):

- NoExecute taints (`berth node taint`, `berth agent --taint`) evict running tasks:
  RunTask tasks stop with a stoppedReason naming the taint, a service's tasks are
  replaced elsewhere; tolerationSeconds delays the eviction.
- `berth node inspect --why TASKDEF` explains a node; `berth task inspect` shows why a
  task went where it did.
- The rebalancer (`berth service create --rebalance N`) restores the spread after a
  drain, start before stop.
"""
import json
import os
import subprocess
import time
from collections import Counter

import pytest

from cluster_fixture import Cluster, berth_binary, wait_for

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="agents need root")


@pytest.fixture(scope="module")
def cluster(busybox):
    c = Cluster(nodes=3)
    try:
        c.start(busybox=busybox)
        for family, extra in (("sleepy", {}),
                              ("tolerant", {"berthScheduling": {"tolerations": [
                                  {"key": "maint", "operator": "Exists", "effect": "NoExecute",
                                   "tolerationSeconds": 2}]}})):
            c.aws("register-task-definition", "--cli-input-json", json.dumps({
                "family": family, "networkMode": "none", **({"tags": [{"key": "berth:tolerations", "value":
                                                                      json.dumps(extra["berthScheduling"]["tolerations"])}]}
                                                            if extra else {}),
                "containerDefinitions": [{"name": "app", "image": "busybox:latest", "memory": 16, "cpu": 16,
                                          "command": ["sleep", "600"]}]}))
        c.ids = {}  # zone -> container instance id
        for inst in c.instances():
            zone = next(a["value"] for a in inst["attributes"] if a["name"] == "ecs.availability-zone")
            c.ids[zone] = inst["containerInstanceArn"].rsplit("/", 1)[1]
        with c.ecs() as ecs:  # boto3 for polling (the aws CLI costs a Python start per call)
            c.boto = ecs
            yield c
    finally:
        c.cleanup()


def berth(c, *args, check=True):
    env = dict(c.aws_env(), AWS_ENDPOINT_URL_ECS=c.endpoint, AWS_CA_BUNDLE=c.ca, AWS_REGION="us-east-1")
    p = subprocess.run(["nsenter", f"--net=/run/netns/{c.vpc}", berth_binary(), *map(str, args)],
                       capture_output=True, text=True, env=env, timeout=120)
    assert not check or p.returncode == 0, (args, p.stdout, p.stderr)
    return p


def tasks(c, desired="RUNNING", **kw):
    arns = c.boto.list_tasks(desiredStatus=desired, **{"serviceName" if k == "service_name" else k: v
                                                       for k, v in kw.items()})["taskArns"]
    return c.boto.describe_tasks(tasks=arns)["tasks"] if arns else []


def task(c, arn):
    return c.boto.describe_tasks(tasks=[arn])["tasks"][0]


def zone_of(c, task):
    node = task["containerInstanceArn"].rsplit("/", 1)[1]
    return next(z for z, i in c.ids.items() if i == node)


def service(c, name):
    return c.boto.describe_services(services=[name])["services"][0]


def wait_spread(c, name, want, timeout=60):
    def ok():
        ts = [t for t in tasks(c, service_name=name) if t["lastStatus"] == "RUNNING"]
        got = sorted(Counter(zone_of(c, t) for t in ts).values())
        return got if got == want and len(ts) == sum(want) else None
    return wait_for(ok, timeout, f"{name} spread {want}", every=0.5)


def test_noexecute_taint_evicts_runtask_tasks_and_service_tasks_move(cluster):
    c = cluster
    zc = c.ids["us-east-1c"]
    berth(c, "service", "create", "ev", "--task-definition", "sleepy", "--desired-count", 3, "--wait")
    wait_spread(c, "ev", [1, 1, 1])
    run = c.aws("start-task", "--task-definition", "sleepy", "--container-instances", zc)
    tol = c.aws("start-task", "--task-definition", "tolerant", "--container-instances", zc)
    arn, tol_arn = run["tasks"][0]["taskArn"], tol["tasks"][0]["taskArn"]
    wait_for(lambda: all(task(c, a)["lastStatus"] == "RUNNING" for a in (arn, tol_arn)),
             60, "tasks on zone c running")
    # task inspect: why the task went where it did (named instance); a placed one: the strategy
    out = berth(c, "task", "inspect", arn.rsplit("/", 1)[1]).stdout
    assert "Placement:" in out and "the node asked for" in out, out
    ev_task = next(t for t in tasks(c, service_name="ev") if zone_of(c, t) == "us-east-1c")
    out = berth(c, "task", "inspect", ev_task["taskArn"].rsplit("/", 1)[1]).stdout
    assert "best of" in out and "spread(attribute:ecs.availability-zone)" in out, out

    tainted_at = time.time()
    berth(c, "node", "taint", zc, "maint=now:NoExecute")
    [a] = c.aws("list-attributes", "--target-type", "container-instance", "--attribute-name",
                "berth:taint:maint")["attributes"]
    assert a["value"] == "now:NoExecute"
    stopped = wait_for(lambda: (lambda t: t if t["desiredStatus"] == "STOPPED" else None)(
        task(c, arn)), 30, "RunTask task evicted")
    assert stopped["stopCode"] == "TerminationNotice"
    assert stopped["stoppedReason"] == "Task evicted: node taint maint=now:NoExecute not tolerated"
    # the service's task on zone c is replaced on the other nodes
    wait_spread(c, "ev", [1, 2], timeout=60)
    # the tolerating task stays 2 s after the taint, then goes
    t = wait_for(lambda: (lambda t: t if t["desiredStatus"] == "STOPPED" else None)(
        task(c, tol_arn)), 30, "tolerating task evicted")
    assert t["stoppedReason"] == "Task evicted: node taint maint=now:NoExecute tolerated for 2 s"
    assert t["stoppingAt"].timestamp() - tainted_at >= 1.5

    # why not this node: every filter that rejects it, through the native CLI
    out = berth(c, "node", "inspect", "--why", "sleepy", zc).stdout
    assert out.strip() == f"{zc}: not feasible: taint maint=now:NoExecute not tolerated", out
    out = berth(c, "node", "inspect", "--why", "tolerant", zc).stdout
    assert out.startswith(f"{zc}: feasible"), out
    p = berth(c, "node", "taint", zc, "maint=now:Sometimes", check=False)
    assert p.returncode != 0 and "EFFECT" in p.stderr
    p = c.aws("put-attributes", "--attributes", f"name=berth:taint:x,value=bad,targetId={zc}", check=False)
    assert p.returncode != 0 and "VALUE:EFFECT" in p.stderr

    berth(c, "node", "taint", zc, "maint-")
    assert c.aws("list-attributes", "--target-type", "container-instance", "--attribute-name",
                 "berth:taint:maint")["attributes"] == []
    out = berth(c, "node", "inspect", "--why", "sleepy", zc).stdout
    assert out.startswith(f"{zc}: feasible"), out
    berth(c, "service", "rm", "-f", "ev")


def test_rebalancer_restores_the_spread_after_a_drain_start_before_stop(cluster):
    c = cluster
    zb = c.ids["us-east-1b"]
    berth(c, "service", "create", "rb", "--task-definition", "sleepy", "--desired-count", 6,
          "--rebalance", 2, "--wait")
    wait_spread(c, "rb", [2, 2, 2])
    out = berth(c, "service", "inspect", "rb").stdout
    assert "Rebalance:" in out and "at most 2 tasks at a time" in out, out
    berth(c, "node", "drain", zb)
    wait_spread(c, "rb", [3, 3], timeout=90)
    berth(c, "node", "activate", zb)
    low = []

    def balanced():
        ts = tasks(c, service_name="rb")
        running = [t for t in ts if t["lastStatus"] == "RUNNING"]
        low.append(len(running))
        got = sorted(Counter(zone_of(c, t) for t in running).values())
        return got == [2, 2, 2] and len(ts) == 6
    wait_for(balanced, 90, "rb rebalanced to 2/2/2", every=0.5)
    assert min(low) >= 6, low  # start before stop: never fewer running than desired
    events = [e["message"] for e in service(c, "rb")["events"]]
    moved = [m for m in events if "is rebalancing" in m]
    assert moved and all("(start before stop)" in m for m in moved), events
    assert sum(int(m.split("rebalancing ")[1].split()[0]) for m in moved) >= 2
    # at rest: no more moves
    n = len(moved)
    wait_spread(c, "rb", [2, 2, 2])
    assert len([e for e in service(c, "rb")["events"] if "is rebalancing" in e["message"]]) == n
    p = berth(c, "service", "update", "rb", "--rebalance", 101, check=False)
    assert p.returncode != 0 and "--rebalance" in p.stderr
    p = c.aws("create-service", "--service-name", "bad", "--task-definition", "sleepy", "--desired-count", 1,
              "--tags", json.dumps([{"key": "berth:rebalance", "value": json.dumps({"maxMoves": 0})}]), check=False)
    assert p.returncode != 0 and "InvalidParameterException" in p.stderr and "maxMoves" in p.stderr
    berth(c, "service", "rm", "-f", "rb")


def test_agent_taint_noexecute_evicts_what_runs_on_the_node(cluster):
    c = cluster
    node = next(n for n in c.nodes if n.zone == "us-east-1a")
    za = c.ids["us-east-1a"]
    run = c.aws("start-task", "--task-definition", "sleepy", "--container-instances", za)
    arn = run["tasks"][0]["taskArn"]  # placed: it holds the node, running or not
    node.stop()
    node.extra = ["--taint", "gpu=yes:NoExecute"]
    node.start()
    t = wait_for(lambda: (lambda t: t if t["desiredStatus"] == "STOPPED" else None)(
        task(c, arn)), 60, "task evicted by the agent's taint")
    assert t["stoppedReason"] == "Task evicted: node taint gpu=yes:NoExecute not tolerated"
    run = c.aws("run-task", "--task-definition", "sleepy", "--count", 3, "--placement-constraints", json.dumps(
        [{"type": "memberOf", "expression": "attribute:ecs.availability-zone == us-east-1a"}]))
    assert run["tasks"] == [] and run["failures"][0]["detail"] == \
        "0/3 nodes: 2 memberOf constraint unsatisfied, 1 taint gpu=yes:NoExecute not tolerated"
