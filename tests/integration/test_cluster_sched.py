"""The server places tasks with the scheduler library (issue 13): ECS placement
strategies and constraints from RunTask and the task definition, berth's
Kubernetes-style extensions as `berth:*` task-definition tags, explanations in
RunTask failures and BerthExplainPlacement, preemption.

Placement tests use fake nodes speaking the agent protocol (berth_agent_client,
no containers); the last test runs real agents on the multi-host fixture.
"""
import json
import os
from collections import Counter

import botocore
import pytest

from test_cluster_server import Server, code, tmp  # noqa: F401 - the tmp fixture

ZONES = ["us-east-1a", "us-east-1b", "us-east-1c"]


@pytest.fixture
def server(tmp):  # noqa: F811
    s = Server(os.path.join(tmp, "root"), extra=["--agent-lease-ttl", "120"]).start()
    yield s
    s.stop()


def nodes(server, n=3, memory=4096, **kw):
    """n fake nodes, node i in ZONES[i % 3]; kw: per-node lists of register() arguments."""
    out = []
    for i in range(n):
        a = server.agent(f"n{i}")
        extra = {k: v[i] for k, v in kw.items()}
        attrs = {"ecs.availability-zone": ZONES[i % 3], **extra.pop("attributes", {})}
        a.register(memory=memory, attributes=attrs, **extra)
        out.append(a)
    return out


def td(server, family, memory=128, cpu=128, tags=None, **kw):
    c = [{"name": "app", "image": "busybox", "memory": memory, "cpu": cpu}]
    args = {"family": family, "containerDefinitions": c, **kw}
    if tags:
        args["tags"] = [{"key": k, "value": v if isinstance(v, str) else json.dumps(v)} for k, v in tags.items()]
    return server.ecs().register_task_definition(**args)["taskDefinition"]


def where(run, agents):
    """Index of each placed task's node."""
    arns = [a.instance_arn for a in agents]
    return [arns.index(t["containerInstanceArn"]) for t in run["tasks"]]


def test_nine_tasks_spread_over_three_zones_three_each(server):
    agents = nodes(server)
    td(server, "sp")
    run = server.aws("run-task", "--task-definition", "sp", "--count", "9", "--placement-strategy",
                     "type=spread,field=attribute:ecs.availability-zone")
    assert run["failures"] == []
    assert sorted(Counter(where(run, agents)).values()) == [3, 3, 3]
    assert {t["availabilityZone"] for t in run["tasks"]} == set(ZONES)


def test_distinct_instance_places_one_per_node_and_explains_the_rest(server):
    agents = nodes(server)
    td(server, "di")
    run = server.ecs().run_task(taskDefinition="di", count=4, group="g",
                                placementConstraints=[{"type": "distinctInstance"}])
    assert sorted(where(run, agents)) == [0, 1, 2]
    assert run["failures"] == [{"reason": "DistinctInstance placement constraint unsatisfied.",
                                "detail": "0/3 nodes: 3 distinctInstance: group already on node"}]


def test_drained_node_gets_nothing(server):
    agents = nodes(server)
    td(server, "dr")
    ecs = server.ecs()
    ecs.update_container_instances_state(containerInstances=[agents[1].instance_arn], status="DRAINING")
    run = ecs.run_task(taskDefinition="dr", count=6)
    assert len(run["tasks"]) == 6 and 1 not in where(run, agents)
    ecs.update_container_instances_state(containerInstances=[a.instance_arn for a in agents], status="DRAINING")
    run = ecs.run_task(taskDefinition="dr")
    assert run["failures"] == [{"reason": "DRAINING", "detail": "0/3 nodes: 3 DRAINING"}]


def test_failures_explain_per_filter_with_counts(server):
    agents = nodes(server, memory=1024)
    td(server, "big", memory=2000)
    ecs = server.ecs()
    ecs.update_container_instances_state(containerInstances=[agents[0].instance_arn], status="DRAINING")
    run = ecs.run_task(taskDefinition="big", count=2)
    assert run["tasks"] == []
    f = {"reason": "RESOURCE:MEMORY", "detail": "0/3 nodes: 2 insufficient memory, 1 DRAINING"}
    assert run["failures"] == [f, f]
    td(server, "cpu", cpu=4096, memory=16)
    run = ecs.run_task(taskDefinition="cpu")
    assert run["failures"] == [{"reason": "RESOURCE:CPU", "detail": "0/3 nodes: 2 insufficient cpu, 1 DRAINING"}]


def test_taint_without_toleration_is_avoided_and_a_toleration_admits(server):
    gpu = [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]
    agents = nodes(server, taints=[gpu, [], []], labels=[{"accel": "gpu"}, {}, {}])
    td(server, "plain")
    run = server.ecs().run_task(taskDefinition="plain", count=6)
    assert len(run["tasks"]) == 6 and 0 not in where(run, agents)
    # only the tainted node matches the selector: without a toleration nothing fits, and the text says why
    td(server, "sel", tags={"berth:nodeSelector": {"accel": "gpu"}})
    run = server.ecs().run_task(taskDefinition="sel")
    assert run["failures"][0]["reason"] == "ATTRIBUTE"  # the reason of most nodes
    assert run["failures"][0]["detail"] == \
        "0/3 nodes: 2 node selector mismatch, 1 taint dedicated=gpu:NoSchedule not tolerated"
    # tags through the aws CLI, as its users set them (shorthand: the JSON value in single quotes)
    server.aws("register-task-definition", "--family", "gpu", "--container-definitions",
               json.dumps([{"name": "app", "image": "busybox", "memory": 64}]), "--tags",
               "key=berth:nodeSelector,value='" + json.dumps({"accel": "gpu"}) + "'",
               "key=berth:tolerations,value='" + json.dumps([{"key": "dedicated", "operator": "Equal",
                                                              "value": "gpu", "effect": "NoSchedule"}]) + "'")
    run = server.ecs().run_task(taskDefinition="gpu", count=2)
    assert where(run, agents) == [0, 0]


def test_member_of_on_a_custom_attribute(server):
    agents = nodes(server)
    td(server, "mo")
    server.aws("put-attributes", "--attributes",
               f"name=stack,value=blue,targetType=container-instance,targetId={agents[2].instance_arn}")
    run = server.ecs().run_task(taskDefinition="mo", count=3, placementConstraints=[
        {"type": "memberOf", "expression": "attribute:stack == blue"}])
    assert where(run, agents) == [2, 2, 2]
    run = server.ecs().run_task(taskDefinition="mo", placementConstraints=[
        {"type": "memberOf", "expression": "attribute:stack in [green, red] or attribute:ecs.availability-zone =~ 'eu-.*'"}])
    assert run["failures"] == [{"reason": "MemberOf placement constraint unsatisfied.",
                                "detail": "0/3 nodes: 3 memberOf constraint unsatisfied"}]
    # the task definition's memberOf constraint applies too
    td(server, "mo2", placementConstraints=[{"type": "memberOf", "expression": "attribute:ecs.availability-zone != us-east-1a"}])
    run = server.ecs().run_task(taskDefinition="mo2", count=4)
    assert 0 not in where(run, agents) and len(run["tasks"]) == 4


def test_binpack_fills_one_node_first(server):
    agents = nodes(server, memory=4096)
    td(server, "bp", memory=1000)
    run = server.ecs().run_task(taskDefinition="bp", count=5, placementStrategy=[{"type": "binpack", "field": "memory"}])
    counts = sorted(Counter(where(run, agents)).values())
    assert counts == [1, 4]
    # spread then falls back to the emptiest: binpack again puts the next one beside the lone task
    run2 = server.ecs().run_task(taskDefinition="bp", placementStrategy=[{"type": "binpack", "field": "memory"}])
    lone = [i for i, n in Counter(where(run, agents)).items() if n == 1][0]
    assert where(run2, agents) == [lone]


def test_malformed_member_of_names_the_position(server):
    nodes(server, n=1)
    td(server, "bad")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        server.ecs().run_task(taskDefinition="bad", placementConstraints=[
            {"type": "memberOf", "expression": "attribute:stack == blue and"}])
    assert code(e) == "InvalidParameterException"
    msg = e.value.response["Error"]["Message"]
    assert "placementConstraints[0]" in msg and "position 28" in msg, msg
    # in a task definition the same mistake is a ClientException at registration
    with pytest.raises(botocore.exceptions.ClientError) as e:
        td(server, "bad2", placementConstraints=[{"type": "memberOf", "expression": "attribute:x =="}])
    assert code(e) == "ClientException" and "position" in e.value.response["Error"]["Message"]


@pytest.mark.parametrize("key,value,needle", [
    ("berth:tolerations", "[{\"effect\": \"Sometimes\"}]", "tag 'berth:tolerations'[0]: expected"),
    ("berth:nodeSelector", "disk=ssd", "tag 'berth:nodeSelector': value is not JSON"),
    ("berth:priority", "\"high\"", "tag 'berth:priority': expected a 32-bit integer"),
    ("berth:nodeAffinity", "{\"required\": [{\"matchExpressions\": [{\"key\": \"a\", \"operator\": \"Near\"}]}]}",
     "needs 'key' and 'operator'"),
    ("berth:tolerate", "[]", "tag 'berth:tolerate': unknown berth scheduling tag"),
])
def test_bad_scheduling_tags_are_client_exceptions(server, key, value, needle):
    p = server.aws("register-task-definition", "--family", "t", "--container-definitions",
                   json.dumps([{"name": "app", "image": "busybox", "memory": 64}]), "--tags",
                   json.dumps([{"key": key, "value": value}]), check=False)
    assert p.returncode != 0 and "ClientException" in p.stderr and needle in p.stderr, p.stderr


def test_explain_placement_answers_why_not_this_node(server):
    agents = nodes(server, memory=1024)
    td(server, "ex", memory=600)
    server.ecs().update_container_instances_state(containerInstances=[agents[0].instance_arn], status="DRAINING")
    status, out = server.raw("BerthExplainPlacement", json.dumps(
        {"taskDefinition": "ex", "containerInstance": agents[0].instance_arn}))
    assert status == 200 and out["feasible"] is False and out["explanation"].startswith("DRAINING"), out
    status, out = server.raw("BerthExplainPlacement", json.dumps(
        {"taskDefinition": "ex", "containerInstance": agents[1].instance_arn.rsplit("/", 1)[1]}))
    assert status == 200 and out["feasible"] is True and out["containerInstanceArn"] == agents[1].instance_arn
    server.ecs().run_task(taskDefinition="ex", count=2, placementConstraints=[
        {"type": "memberOf", "expression": f"instanceId == {agents[1].instance_arn.rsplit('/', 1)[1]}"}])
    status, out = server.raw("BerthExplainPlacement", json.dumps(
        {"taskDefinition": "ex", "containerInstance": agents[1].instance_arn}))
    assert out["feasible"] is False and "insufficient memory" in out["explanation"], out
    status, out = server.raw("BerthExplainPlacement", json.dumps(
        {"taskDefinition": "ex", "containerInstance": "nope"}))
    assert status == 400 and out["__type"] == "InvalidParameterException"


def test_start_task_on_named_instances_explains_that_node(server):
    agents = nodes(server, memory=1024)
    td(server, "st", memory=800)
    ecs = server.ecs()
    out = ecs.start_task(taskDefinition="st", containerInstances=[agents[0].instance_arn, agents[0].instance_arn])
    assert where(out, agents) == [0]
    assert out["failures"] == [{"arn": agents[0].instance_arn, "reason": "RESOURCE:MEMORY",
                                "detail": "0/1 nodes: 1 insufficient memory"}]
    out = ecs.start_task(taskDefinition="st", containerInstances=["missing0"])
    assert out["failures"][0]["reason"] == "MISSING"


def test_stopped_tasks_release_their_node_and_deregistered_nodes_get_nothing(server):
    agents = nodes(server, n=2, memory=1024)
    td(server, "rel", memory=1000)
    ecs = server.ecs()
    run = ecs.run_task(taskDefinition="rel", count=2)
    assert sorted(where(run, agents)) == [0, 1]
    assert ecs.run_task(taskDefinition="rel")["failures"][0]["reason"] == "RESOURCE:MEMORY"
    # the agent reports the task STOPPED: its memory is free again (the snapshot follows the store)
    t0 = [t for t in run["tasks"] if t["containerInstanceArn"] == agents[0].instance_arn][0]
    agents[0].report({"taskArn": t0["taskArn"], "lastStatus": "STOPPED"})
    again = ecs.run_task(taskDefinition="rel")
    assert where(again, agents) == [0]
    ecs.deregister_container_instance(containerInstance=agents[0].instance_arn, force=True)
    run = ecs.run_task(taskDefinition="rel")
    assert run["failures"] == [{"reason": "RESOURCE:MEMORY", "detail": "0/1 nodes: 1 insufficient memory"}]


def test_higher_priority_task_preempts_a_lower_one(server):
    agents = nodes(server, n=1, memory=1024)
    td(server, "low", memory=800)
    td(server, "high", memory=800, tags={"berth:priority": 1000, "berth:preempt": True})
    ecs = server.ecs()
    low = ecs.run_task(taskDefinition="low")["tasks"][0]
    run = ecs.run_task(taskDefinition="high")
    assert run["failures"] == [] and where(run, agents) == [0]
    high = run["tasks"][0]
    assert high["lastStatus"] == "PROVISIONING"
    victim = ecs.describe_tasks(tasks=[low["taskArn"]])["tasks"][0]
    assert victim["desiredStatus"] == "STOPPED" and victim["stopCode"] == "Preempted"
    assert victim["stoppedReason"] == f"Preempted by task {high['taskArn']}"
    # a task of the same low priority cannot preempt: it is refused with the explanation
    run = ecs.run_task(taskDefinition="low")
    assert run["failures"] == [{"reason": "RESOURCE:MEMORY", "detail": "0/1 nodes: 1 insufficient memory"}]


def test_two_concurrent_preemptions_share_one_disruption_budget(server):
    """A service with disruptionBudget maxUnavailable 1 (the berth:disruptionBudget tag): two preempting
    RunTask calls sent at once stop one of its tasks, not one each (the budget is used in the bind)."""
    import sqlite3
    import threading
    from test_cluster_server import wait_for
    agents = nodes(server, n=3, memory=1024)
    td(server, "web", memory=800)
    td(server, "urgent", memory=800, tags={"berth:priority": 1000, "berth:preempt": True})
    ecs = server.ecs()
    ecs.create_service(serviceName="web", taskDefinition="web", desiredCount=3,
                       tags=[{"key": "berth:disruptionBudget", "value": '{"maxUnavailable": 1}'}])

    def running():  # the fake agents start what they are given
        n = 0
        for a in agents:
            arns = [t["taskArn"] for t in a.tasks()["tasks"] if t.get("desiredStatus", "RUNNING") == "RUNNING"]
            if arns:
                a.report(*[{"taskArn": arn, "lastStatus": "RUNNING",
                            "containers": [{"name": "app", "lastStatus": "RUNNING"}]} for arn in arns])
            n += len(arns)
        return n == 3

    wait_for(running, timeout=60, what="the service's 3 tasks running")
    db = os.path.join(server.root, "store.db")

    def budget():
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            row = con.execute("SELECT l.value FROM keys k JOIN log l ON l.id = k.id "
                              "WHERE k.key = '/berth/budgets/default/service:web'").fetchone()
        finally:
            con.close()
        return json.loads(row[0])["allowed"] if row else None

    wait_for(lambda: budget() == 1, timeout=60, what="the leader's budget: 1 disruption allowed")
    results = [None, None]
    clients = [server.ecs(), server.ecs()]
    go = threading.Barrier(2)

    def run(i):
        go.wait()
        results[i] = clients[i].run_task(taskDefinition="urgent")

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    placed = sum(len(r["tasks"]) for r in results)
    arns = ecs.list_tasks(serviceName="web", desiredStatus="STOPPED")["taskArns"]
    stopped = ecs.describe_tasks(tasks=arns)["tasks"] if arns else []
    assert placed == 1 and [t["stopCode"] for t in stopped] == ["Preempted"], (results, stopped)
    refused = [r for r in results if not r["tasks"]][0]
    assert refused["failures"] and refused["failures"][0]["reason"] == "RESOURCE:MEMORY", refused
    assert budget() == 0


def test_bench_scheduler_binds_every_placement_in_the_store(berth_bin, tmp):  # noqa: F811
    """bench-scheduler --store sqlite:PATH runs the server's RunTask path: the tasks are in the store."""
    import sqlite3
    import subprocess
    db = os.path.join(tmp, "bench.db")
    p = subprocess.run([berth_bin, "bench-scheduler", "--store", f"sqlite:{db}", "--nodes", "40", "--tasks", "120",
                        "--clients", "4"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["store"] == "sqlite" and out["placed"] + out["unplaced"] == 120 and out["errors"] == 0
    assert out["placed"] >= 100 and out["placements_per_s"] > 0 and out["p99_us"] >= out["p50_us"]
    con = sqlite3.connect(db)
    rows = [json.loads(v) for (v,) in con.execute(
        "SELECT l.value FROM keys k JOIN log l ON l.id = k.id WHERE k.key LIKE '/berth/tasks/%'")]
    con.close()
    assert len(rows) == out["placed"]
    assert all(r["lastStatus"] == "PROVISIONING" and "best of" in r["berthPlacement"]["explanation"] for r in rows)
    # a new file only; a bad store is refused
    p = subprocess.run([berth_bin, "bench-scheduler", "--store", f"sqlite:{db}"], capture_output=True, text=True)
    assert p.returncode == 1 and "exists" in p.stderr
    p = subprocess.run([berth_bin, "bench-scheduler", "--store", "mysql://x"], capture_output=True, text=True)
    assert p.returncode == 1 and "sqlite:PATH or etcd://HOST:PORT" in p.stderr
    # both benches' options: bad counts print the usage, stray operands are refused
    for args, err in ((["--nodes", "x"], "Usage: berth bench-scheduler [--nodes N]"),
                      (["--store", "sqlite:" + db, "--clients", "x"], "Usage: berth bench-scheduler --store"),
                      (["--store", "sqlite:" + db, "--sample", "5"], "bench-scheduler: unrecognized option '--sample'"),
                      (["--nodes", "5", "extra"], "berth bench-scheduler: unexpected argument 'extra'\n"),
                      (["--batch"], "bench-scheduler: option '--batch' requires an argument")):
        p = subprocess.run([berth_bin, "bench-scheduler", *args], capture_output=True, text=True, timeout=10)
        assert p.returncode == 2 and p.stderr.startswith(err) and p.stdout == "", (args, p.stderr)


# ---- real agents (multi-host fixture: network namespaces, one berth agent each) ----

def test_real_nodes_spread_over_zones_and_run_their_tasks(busybox):
    from cluster_fixture import Cluster
    c = Cluster(nodes=3)
    try:
        c.start(busybox=busybox)
        c.aws("register-task-definition", "--cli-input-json", json.dumps({
            "family": "spr", "networkMode": "none",
            "containerDefinitions": [{"name": "app", "image": "busybox:latest", "memory": 32, "cpu": 64,
                                      "command": ["sleep", "600"]}]}))
        run = c.aws("run-task", "--task-definition", "spr", "--count", "6", "--placement-strategy",
                    "type=spread,field=attribute:ecs.availability-zone")
        assert run["failures"] == []
        arns = [t["taskArn"] for t in run["tasks"]]
        with c.ecs() as ecs:
            ecs.get_waiter("tasks_running").wait(tasks=arns, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
        per_zone = Counter(t["availabilityZone"] for t in run["tasks"])
        assert sorted(per_zone.values()) == [2, 2, 2]
        for t in run["tasks"]:
            node = c.node_of(t["containerInstanceArn"])
            assert node.zone == t["availabilityZone"]
            tid = t["taskArn"].rsplit("/", 1)[1]
            assert any(n.startswith(f"ecs-spr-1-app-{tid[:20]}") for n in
                       (x["Names"] for x in node.containers(all=False))), node.containers(all=False)
        for a in arns:
            c.aws("stop-task", "--task", a)
    finally:
        c.cleanup()
