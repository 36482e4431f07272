"""The scheduler's controllers on real agents (issue 13), one shared 3-node cluster
(multi-host fixture, SQLite server, one zone per node):

- NoExecute taints (`berth node taint`, `berth agent --taint`) evict running tasks:
  RunTask tasks stop with a stoppedReason naming the taint, a service's tasks are
  replaced elsewhere; tolerationSeconds delays the eviction.
- `berth node inspect --why TASKDEF` explains a node; `berth task inspect` shows why a
  task went where it did.
- The rebalancer (turned on with the `berth:rebalance` resource tag through the aws CLI,
  or `berth service update --rebalance N`) restores the spread after a drain, start
  before stop.
"""
import json
import os
import subprocess
import time
from collections import Counter

import botocore
import pytest

from cluster_fixture import Cluster, berth_binary, wait_for

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="agents need root")


@pytest.fixture(scope="module")
def cluster(busybox):
    c = Cluster(nodes=3)
    try:
        c.start(busybox=busybox)
        # boto3 for every call but the one checking the aws-CLI path: under load each aws CLI
        # call costs a Python start of several seconds
        with c.ecs() as ecs:
            c.client = ecs
            tolerations = [{"key": "maint", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 2}]
            for family, tags in (("sleepy", []),
                                 ("tolerant", [{"key": "berth:tolerations", "value": json.dumps(tolerations)}])):
                ecs.register_task_definition(
                    family=family, networkMode="none", **({"tags": tags} if tags else {}),
                    # exits at once on SIGTERM (a bare `sleep` as PID 1 ignores it: every stop,
                    # eviction and move would wait out the stop timeout)
                    containerDefinitions=[{"name": "app", "image": "busybox:latest", "memory": 16, "cpu": 16,
                                           "command": ["sh", "-c", "trap 'exit 0' TERM; sleep 600 & wait"],
                                           "stopTimeout": 2}])
            c.ids = {}  # zone -> container instance id
            arns = ecs.list_container_instances()["containerInstanceArns"]
            for inst in ecs.describe_container_instances(containerInstances=arns)["containerInstances"]:
                zone = next(a["value"] for a in inst["attributes"] if a["name"] == "ecs.availability-zone")
                c.ids[zone] = inst["containerInstanceArn"].rsplit("/", 1)[1]
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
    arns = c.client.list_tasks(desiredStatus=desired, **{"serviceName" if k == "service_name" else k: v
                                                       for k, v in kw.items()})["taskArns"]
    return c.client.describe_tasks(tasks=arns)["tasks"] if arns else []


def task(c, arn):
    return c.client.describe_tasks(tasks=[arn])["tasks"][0]


def zone_of(c, task):
    node = task["containerInstanceArn"].rsplit("/", 1)[1]
    return next(z for z, i in c.ids.items() if i == node)


def service(c, name):
    return c.client.describe_services(services=[name])["services"][0]


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
    run = c.client.start_task(taskDefinition="sleepy", containerInstances=[zc])
    tol = c.client.start_task(taskDefinition="tolerant", containerInstances=[zc])
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
    [a] = c.client.list_attributes(targetType="container-instance", attributeName="berth:taint:maint")["attributes"]
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
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.client.put_attributes(attributes=[{"name": "berth:taint:x", "value": "bad", "targetId": zc}])
    assert "VALUE:EFFECT" in str(e.value)

    berth(c, "node", "taint", zc, "maint-")
    assert c.client.list_attributes(targetType="container-instance",
                                  attributeName="berth:taint:maint")["attributes"] == []
    out = berth(c, "node", "inspect", "--why", "sleepy", zc).stdout
    assert out.startswith(f"{zc}: feasible"), out
    berth(c, "service", "rm", "-f", "ev")


def test_rebalancer_restores_the_spread_after_a_drain_start_before_stop(cluster):
    c = cluster
    zb = c.ids["us-east-1b"]
    berth(c, "service", "create", "rb", "--task-definition", "sleepy", "--desired-count", 6, "--wait")
    wait_spread(c, "rb", [2, 2, 2])
    assert "Rebalance:" not in berth(c, "service", "inspect", "rb").stdout
    # the aws-CLI path to the extension: a resource tag on the service (a bad value changes nothing)
    arn = service(c, "rb")["serviceArn"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.client.tag_resource(resourceArn=arn, tags=[{"key": "berth:rebalance", "value": '{"maxMoves": 0}'}])
    assert e.value.response["Error"]["Code"] == "InvalidParameterException" and "maxMoves" in str(e.value)
    assert c.client.list_tags_for_resource(resourceArn=arn)["tags"] == []
    c.aws("tag-resource", "--resource-arn", arn, "--tags",
          json.dumps([{"key": "berth:rebalance", "value": json.dumps({"maxMoves": 2})}]))
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
    c.client.untag_resource(resourceArn=arn, tagKeys=["berth:rebalance"])
    assert "Rebalance:" not in berth(c, "service", "inspect", "rb").stdout
    berth(c, "service", "update", "rb", "--rebalance", 3)
    assert "at most 3 tasks at a time" in berth(c, "service", "inspect", "rb").stdout
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.client.create_service(serviceName="bad", taskDefinition="sleepy", desiredCount=1,
                              tags=[{"key": "berth:rebalance", "value": '{"maxMoves": 0}'}])
    assert e.value.response["Error"]["Code"] == "InvalidParameterException" and "maxMoves" in str(e.value)
    berth(c, "service", "rm", "-f", "rb")


def test_agent_taint_noexecute_evicts_what_runs_on_the_node(cluster):
    c = cluster
    node = next(n for n in c.nodes if n.zone == "us-east-1a")
    za = c.ids["us-east-1a"]
    run = c.client.start_task(taskDefinition="sleepy", containerInstances=[za])
    arn = run["tasks"][0]["taskArn"]  # placed: it holds the node, running or not
    node.stop()
    node.extra = ["--taint", "gpu=yes:NoExecute"]
    node.start()
    t = wait_for(lambda: (lambda t: t if t["desiredStatus"] == "STOPPED" else None)(
        task(c, arn)), 60, "task evicted by the agent's taint")
    assert t["stoppedReason"] == "Task evicted: node taint gpu=yes:NoExecute not tolerated"
    run = c.client.run_task(taskDefinition="sleepy", count=3, placementConstraints=[
        {"type": "memberOf", "expression": "attribute:ecs.availability-zone == us-east-1a"}])
    assert run["tasks"] == [] and run["failures"][0]["detail"] == \
        "0/3 nodes: 2 memberOf constraint unsatisfied, 1 taint gpu=yes:NoExecute not tolerated"
