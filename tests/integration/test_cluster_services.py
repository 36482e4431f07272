"""ECS services on the multi-host fixture (issue 14): desired count kept by the leader's
controller, zone-balanced placement and scale-in, rolling deployments within
minimumHealthyPercent/maximumPercent, the deployment circuit breaker with rollback, DAEMON
services following nodes, drains and lost nodes, EXTERNAL task sets, and ECS's errors for bad
input; driven by `aws ecs` and boto3's services_stable waiter.
"""
import collections
import json
import os
import signal
import subprocess
import time

import pytest
from botocore.exceptions import ClientError

from cluster_fixture import Cluster, Node, wait_for
from conftest import berth_binary

WEB = {
    "family": "svcweb",
    "networkMode": "awsvpc",
    "cpu": "128",
    "memory": "64",
    "containerDefinitions": [{
        "name": "web", "image": "busybox:latest", "memory": 32, "cpu": 64, "essential": True,
        "stopTimeout": 2,  # httpd as PID 1 ignores SIGTERM
        "portMappings": [{"containerPort": 80}],
        "environment": [{"name": "VERSION", "value": "1"}],
        "command": ["sh", "-c", "mkdir -p /www && echo v$VERSION > /www/index.html && exec httpd -f -p 80 -h /www"],
    }],
}
CRASH = dict(WEB, containerDefinitions=[dict(WEB["containerDefinitions"][0], command=["sh", "-c", "exit 3"])])
FAST = {"Delay": 1, "MaxAttempts": 90}


def register(c, td):
    return c.aws("register-task-definition", "--cli-input-json", json.dumps(td))["taskDefinition"]


def describe(ecs, name):
    [s] = ecs.describe_services(services=[name])["services"]
    return s


def wait_stable(ecs, *names):
    ecs.get_waiter("services_stable").wait(services=list(names), WaiterConfig=FAST)
    return ecs.describe_services(services=list(names))["services"]


def service_tasks(ecs, name, desired="RUNNING"):
    arns = ecs.list_tasks(serviceName=name, desiredStatus=desired)["taskArns"]
    return ecs.describe_tasks(tasks=arns)["tasks"] if arns else []


def per_zone(tasks):
    return collections.Counter(t["availabilityZone"] for t in tasks)


def per_node(tasks):
    return collections.Counter(t["containerInstanceArn"] for t in tasks)


def wait_inactive(ecs, name):
    wait_for(lambda: describe(ecs, name)["status"] == "INACTIVE", 60, f"service {name} INACTIVE")


def ecs_error(p):
    assert p.returncode != 0
    return p.stderr


@pytest.fixture(scope="module")
def cluster(busybox):
    c = Cluster(nodes=3, server_args=["--agent-lease-ttl", "3", "--lost-node-timeout", "3"])
    try:
        c.start(busybox=busybox)
        c.busybox = busybox
        c.web1 = register(c, WEB)["taskDefinitionArn"]
        web2 = json.loads(json.dumps(WEB))
        web2["containerDefinitions"][0]["environment"][0]["value"] = "2"
        c.web2 = register(c, web2)["taskDefinitionArn"]
        c.crash = register(c, CRASH)["taskDefinitionArn"]
        yield c
    finally:
        c.cleanup()


@pytest.fixture(scope="module")
def ecs(cluster):
    """A boto3 client; the module's tests run inside the VPC namespace from here on."""
    with cluster.ecs() as client:
        yield client


def test_create_service_reaches_steady_state_spread_over_zones(cluster, ecs):
    c = cluster
    s = c.aws("create-service", "--service-name", "web", "--task-definition", c.web1,
              "--desired-count", "3")["service"]
    assert s["status"] == "ACTIVE" and s["desiredCount"] == 3 and len(s["deployments"]) == 1
    assert s["deployments"][0]["id"].startswith("ecs-svc/") and len(s["deployments"][0]["id"]) == 27
    assert s["serviceArn"].endswith(":service/default/web")
    [s] = wait_stable(ecs, "web")
    assert s["runningCount"] == 3 and s["pendingCount"] == 0
    tasks = service_tasks(ecs, "web")
    assert sorted(per_zone(tasks).values()) == [1, 1, 1]
    assert all(t["group"] == "service:web" and t["startedBy"] == s["deployments"][0]["id"] for t in tasks)
    # COMPLETED once the tasks stayed up for the monitor window (3 s), then the steady-state event
    wait_for(lambda: describe(ecs, "web")["events"][0]["message"] == "(service web) has reached a steady state.",
             20, "steady state event")
    s = describe(ecs, "web")
    assert s["deployments"][0]["rolloutState"] == "COMPLETED"
    msgs = [e["message"] for e in s["events"]]
    assert any(m.startswith("(service web) has started 3 tasks: (task ") for m in msgs), msgs
    assert c.aws("list-services")["serviceArns"] == [s["serviceArn"]]
    assert ecs.list_services_by_namespace(namespace="default.local")["serviceArns"] == [s["serviceArn"]]


def test_scale_out_and_in_stays_balanced(ecs):
    ecs.update_service(service="web", desiredCount=6)
    [s] = wait_stable(ecs, "web")
    assert s["runningCount"] == 6 and len(s["deployments"]) == 1
    assert sorted(per_zone(service_tasks(ecs, "web")).values()) == [2, 2, 2]
    ecs.update_service(service="web", desiredCount=3)
    [s] = wait_stable(ecs, "web")
    assert s["runningCount"] == 3
    assert sorted(per_zone(service_tasks(ecs, "web")).values()) == [1, 1, 1]
    assert any("has stopped 3 running tasks" in e["message"] for e in s["events"])


def sample_until(ecs, name, done, timeout=90):
    """Poll the service and its tasks until done(service); (most tasks alive, fewest healthy) seen."""
    most, fewest = 0, 99
    deadline = time.time() + timeout
    while time.time() < deadline:
        s = describe(ecs, name)
        arns = ecs.list_tasks(serviceName=name)["taskArns"]
        tasks = ecs.describe_tasks(tasks=arns)["tasks"] if arns else []
        most = max(most, sum(t["lastStatus"] != "STOPPED" for t in tasks))
        fewest = min(fewest, sum(t["lastStatus"] == "RUNNING" and t["desiredStatus"] == "RUNNING" for t in tasks))
        if done(s):
            return s, most, fewest
        time.sleep(0.2)
    raise AssertionError(f"timeout: {s['deployments']}")


def test_rolling_update_keeps_within_minimum_healthy_and_maximum_percent(cluster, ecs):
    c = cluster
    c.aws("update-service", "--service", "web", "--task-definition", c.web2, "--deployment-configuration",
          "maximumPercent=134,minimumHealthyPercent=100")  # 3 tasks: at most 4 at once, never fewer than 3
    s, most, fewest = sample_until(ecs, "web", lambda s: len(s["deployments"]) == 1 and s["runningCount"] == 3
                                   and s["deployments"][0]["taskDefinition"] == c.web2)
    assert most <= 4 and fewest >= 3, (most, fewest)
    [s] = wait_stable(ecs, "web")
    assert all(t["taskDefinitionArn"] == c.web2 for t in service_tasks(ecs, "web"))
    assert s["deployments"][0]["rolloutState"] == "COMPLETED"  # old tasks stop only after completion


def test_crash_looping_deployment_trips_the_circuit_breaker_and_rolls_back(cluster, ecs):
    c = cluster
    s = ecs.update_service(service="web", taskDefinition=c.crash, deploymentConfiguration={
        "maximumPercent": 200, "minimumHealthyPercent": 100,
        "deploymentCircuitBreaker": {"enable": True, "rollback": True}})["service"]
    assert len(s["deployments"]) == 2 and s["deployments"][0]["rolloutState"] == "IN_PROGRESS"
    failed_id = s["deployments"][0]["id"]
    s, _, fewest = sample_until(ecs, "web", lambda s: s["deployments"][0]["taskDefinition"] == c.web2
                                and len(s["deployments"]) == 1)
    msgs = [e["message"] for e in s["events"]]
    assert f"(service web) (deployment {failed_id}) deployment failed: tasks failed to start." in msgs, msgs
    assert any("rolling back to deployment" in m for m in msgs), msgs
    assert fewest >= 3, fewest  # never below minimumHealthyPercent of the old capacity
    crashed = [t for t in service_tasks(ecs, "web", "STOPPED") if t["taskDefinitionArn"] == c.crash]
    # the failures the breaker counted exited on their own; a new task still starting when the
    # rollback began is stopped by the scheduler instead (ServiceSchedulerInitiated)
    exited = [t for t in crashed if t["stopCode"] == "EssentialContainerExited"]
    assert len(exited) >= 3, [(t["stopCode"], t.get("stoppedReason")) for t in crashed]
    assert all(t["stopCode"] in ("EssentialContainerExited", "ServiceSchedulerInitiated") for t in crashed)
    [s] = wait_stable(ecs, "web")
    assert s["taskDefinition"] == c.web2 and s["runningCount"] == 3


def test_an_update_keeps_old_tasks_whose_health_is_not_known_yet(cluster, ecs):
    """Issue 14's bug: an update while the old tasks are RUNNING but not yet counted healthy (their
    health not known yet: inside the monitor time, or reports late under load) stopped every one of
    them at once, before any new task existed. Here their health check first runs after 60 s, so
    their health stays UNKNOWN throughout: they must stay until the new tasks are healthy, and then
    go (an UNKNOWN that never resolves does not stall the rollout)."""
    c = cluster
    td = json.loads(json.dumps(WEB))
    td["family"] = "svcslow"
    td["containerDefinitions"][0]["healthCheck"] = {"command": ["CMD-SHELL", "true"], "interval": 60, "timeout": 2,
                                                    "retries": 1}
    slow = register(c, td)["taskDefinitionArn"]
    ecs.create_service(serviceName="slow", taskDefinition=slow, desiredCount=2,
                       deploymentConfiguration={"maximumPercent": 200, "minimumHealthyPercent": 100})
    old = wait_for(lambda: (lambda ts: ts if len(ts) == 2 and all(t["lastStatus"] == "RUNNING" for t in ts) else None)(
        service_tasks(ecs, "slow")), 60, "the 2 tasks RUNNING")
    assert all(t["healthStatus"] == "UNKNOWN" for t in old), [t["healthStatus"] for t in old]
    s = c.aws("update-service", "--service", "slow", "--task-definition", c.web1)["service"]
    new_id = s["deployments"][0]["id"]
    # the new deployment's tasks are placed in the pass that used to stop the old ones
    wait_for(lambda: len([t for t in service_tasks(ecs, "slow") if t["startedBy"] == new_id]) == 2, 30,
             "the new deployment's 2 tasks placed")
    now = ecs.describe_tasks(tasks=[t["taskArn"] for t in old])["tasks"]
    assert [(t["desiredStatus"], t["healthStatus"]) for t in now] == [("RUNNING", "UNKNOWN")] * 2, \
        [(t["desiredStatus"], t.get("stoppedReason")) for t in now]
    # the new ones healthy (no health check: 3 s RUNNING): the old ones go, health still unknown
    s = wait_for(lambda: (lambda s: s if len(s["deployments"]) == 1 and s["runningCount"] == 2
                          and s["deployments"][0]["rolloutState"] == "COMPLETED" else None)(describe(ecs, "slow")),
                 60, "the update completed")
    assert s["taskDefinition"] == c.web1
    gone = ecs.describe_tasks(tasks=[t["taskArn"] for t in old])["tasks"]
    assert all(t["desiredStatus"] == "STOPPED" and t["stoppedReason"] ==
               f"Scaling activity initiated by (deployment {new_id})" for t in gone), gone
    ecs.delete_service(service="slow", force=True)
    wait_inactive(ecs, "slow")


def test_draining_instance_tasks_are_replaced_before_they_stop(ecs):
    node_arn = service_tasks(ecs, "web")[0]["containerInstanceArn"]
    ecs.update_container_instances_state(containerInstances=[node_arn], status="DRAINING")
    try:
        s, most, fewest = sample_until(ecs, "web", lambda s: all(
            t["containerInstanceArn"] != node_arn and t["lastStatus"] == "RUNNING"
            for t in service_tasks(ecs, "web")) and s["runningCount"] == 3)
        assert fewest >= 3, fewest
        wait_stable(ecs, "web")
    finally:
        ecs.update_container_instances_state(containerInstances=[node_arn], status="ACTIVE")


def test_delete_service_needs_force_then_drains_to_inactive(cluster, ecs):
    c = cluster
    err = ecs_error(c.aws("delete-service", "--service", "web", check=False))
    assert "InvalidParameterException" in err and "scaled above 0" in err
    s = ecs.delete_service(service="web", force=True)["service"]
    assert s["status"] == "DRAINING" and s["desiredCount"] == 0
    wait_inactive(ecs, "web")
    assert service_tasks(ecs, "web") == []
    assert ecs.list_services()["serviceArns"] == []
    ecs.create_service(serviceName="web", taskDefinition=c.web1, desiredCount=0)  # the name is free again
    ecs.delete_service(service="web")


def test_daemon_service_follows_joins_and_drains(cluster, ecs):
    c = cluster
    ecs.create_service(serviceName="agentd", taskDefinition=c.web1, schedulingStrategy="DAEMON")
    [s] = wait_stable(ecs, "agentd")
    assert s["desiredCount"] == 3 and sorted(per_node(service_tasks(ecs, "agentd")).values()) == [1, 1, 1]
    # a node joins: it gets the daemon task
    before = {i["containerInstanceArn"] for i in c.instances()}
    node = Node(c, 4, "us-east-1a")
    c.nodes.append(node)
    c.add_host_netns(node)
    node.start()
    node.docker("load", "-i", c.busybox["docker_archive"])
    wait_for(lambda: len(c.instances()) == 4, 30, "node 4 registered")
    [arn] = {i["containerInstanceArn"] for i in c.instances()} - before
    wait_for(lambda: per_node(service_tasks(ecs, "agentd"))[arn] == 1 and describe(ecs, "agentd")["runningCount"] == 4,
             60, "daemon task on the new node")
    # it drains: its daemon task goes and desiredCount follows; back to ACTIVE, the task returns
    ecs.update_container_instances_state(containerInstances=[arn], status="DRAINING")
    wait_for(lambda: arn not in per_node(service_tasks(ecs, "agentd")) and describe(ecs, "agentd")["desiredCount"] == 3,
             60, "daemon task off the drained node")
    ecs.update_container_instances_state(containerInstances=[arn], status="ACTIVE")
    wait_for(lambda: per_node(service_tasks(ecs, "agentd"))[arn] == 1, 60, "daemon task back")
    [s] = wait_stable(ecs, "agentd")
    assert s["desiredCount"] == 4
    # an update honours minimumHealthyPercent: 50% of 4 nodes, so at most 2 nodes without a running task
    ecs.update_service(service="agentd", taskDefinition=c.web2,
                       deploymentConfiguration={"maximumPercent": 100, "minimumHealthyPercent": 50})
    s, _, fewest = sample_until(ecs, "agentd", lambda s: len(s["deployments"]) == 1 and s["runningCount"] == 4
                                and s["deployments"][0]["rolloutState"] == "COMPLETED")
    assert fewest >= 2, fewest
    tasks = service_tasks(ecs, "agentd")
    assert sorted(per_node(tasks).values()) == [1, 1, 1, 1] and all(t["taskDefinitionArn"] == c.web2 for t in tasks)
    ecs.delete_service(service="agentd")  # DAEMON: no force needed
    wait_inactive(ecs, "agentd")
    # the extra node leaves the cluster again
    node.cleanup()
    ecs.deregister_container_instance(containerInstance=arn, force=True)


def test_external_task_sets_scale_and_switch_primary(cluster, ecs):
    c = cluster
    ecs.create_service(serviceName="bg", desiredCount=2, deploymentController={"type": "EXTERNAL"})
    blue = ecs.create_task_set(cluster="default", service="bg", taskDefinition=c.web1, externalId="blue",
                               scale={"value": 100, "unit": "PERCENT"})["taskSet"]
    assert blue["computedDesiredCount"] == 2 and blue["status"] == "ACTIVE"
    ecs.update_service_primary_task_set(cluster="default", service="bg", primaryTaskSet=blue["taskSetArn"])
    green = ecs.create_task_set(cluster="default", service="bg", taskDefinition=c.web2, externalId="green",
                                scale={"value": 50, "unit": "PERCENT"})["taskSet"]
    assert green["computedDesiredCount"] == 1

    def counts():
        sets = ecs.describe_task_sets(cluster="default", service="bg")["taskSets"]
        return {t["externalId"]: (t["status"], t["runningCount"], t["stabilityStatus"]) for t in sets}
    wait_for(lambda: counts() == {"blue": ("PRIMARY", 2, "STEADY_STATE"), "green": ("ACTIVE", 1, "STEADY_STATE")},
             60, "task sets running")
    ecs.update_task_set(cluster="default", service="bg", taskSet=green["taskSetArn"],
                        scale={"value": 100, "unit": "PERCENT"})
    ecs.update_service_primary_task_set(cluster="default", service="bg", primaryTaskSet=green["id"])
    with pytest.raises(ClientError):
        ecs.delete_task_set(cluster="default", service="bg", taskSet=green["taskSetArn"])  # primary: needs force
    ecs.delete_task_set(cluster="default", service="bg", taskSet=blue["taskSetArn"])
    wait_for(lambda: counts() == {"green": ("PRIMARY", 2, "STEADY_STATE")}, 60, "blue drained, green scaled")
    tasks = service_tasks(ecs, "bg")
    assert len(tasks) == 2 and all(t["taskDefinitionArn"] == c.web2 for t in tasks)
    ecs.delete_service(service="bg", force=True)
    wait_inactive(ecs, "bg")


def test_lost_node_tasks_are_replaced_on_other_nodes(cluster, ecs):
    c = cluster
    ecs.create_service(serviceName="lost", taskDefinition=c.web1, desiredCount=3)
    wait_stable(ecs, "lost")
    victim = service_tasks(ecs, "lost")[0]
    node = c.node_of(victim["containerInstanceArn"])
    node.stop(signal.SIGKILL)
    try:
        wait_for(lambda: all(t["containerInstanceArn"] != victim["containerInstanceArn"]
                             and t["lastStatus"] == "RUNNING" for t in service_tasks(ecs, "lost"))
                 and len(service_tasks(ecs, "lost")) == 3, 60, "replacement elsewhere")
        [t] = ecs.describe_tasks(tasks=[victim["taskArn"]])["tasks"]
        assert t["lastStatus"] == "STOPPED" and "node lost" in t["stoppedReason"]
        wait_stable(ecs, "lost")
    finally:
        node.start()
    ecs.delete_service(service="lost", force=True)
    wait_inactive(ecs, "lost")


def test_health_checks_gate_healthy_tasks_and_replace_unhealthy_ones(cluster, ecs):
    c = cluster

    def checked(family, cmd):
        td = json.loads(json.dumps(WEB))
        td["family"] = family
        td["containerDefinitions"][0]["healthCheck"] = {"command": ["CMD-SHELL", cmd], "interval": 5, "timeout": 2,
                                                        "retries": 1}
        return register(c, td)["taskDefinitionArn"]
    ecs.create_service(serviceName="well", taskDefinition=checked("svcwell", "true"), desiredCount=1)
    ecs.create_service(serviceName="sick", taskDefinition=checked("svcsick", "exit 1"), desiredCount=1,
                       healthCheckGracePeriodSeconds=1)
    wait_for(lambda: describe(ecs, "well")["deployments"][0]["rolloutState"] == "COMPLETED", 60, "well COMPLETED")
    [t] = service_tasks(ecs, "well")
    assert t["healthStatus"] == "HEALTHY"
    stopped = wait_for(lambda: [t for t in service_tasks(ecs, "sick", "STOPPED")
                                if t["stoppedReason"].startswith("Task failed container health checks")],
                       60, "the unhealthy task replaced")
    assert stopped[0]["stopCode"] == "ServiceSchedulerInitiated"
    s = wait_for(lambda: (lambda s: s if s["deployments"][0]["failedTasks"] >= 1 else None)(describe(ecs, "sick")),
                 30, "failure counted")
    assert s["deployments"][0]["rolloutState"] == "IN_PROGRESS"  # never healthy: never completed
    for name in ("well", "sick"):
        ecs.delete_service(service=name, force=True)
    for name in ("well", "sick"):
        wait_inactive(ecs, name)


def test_native_cli_creates_scales_lists_and_removes_a_service(cluster, ecs):
    c = cluster
    env = dict(c.aws_env(), AWS_ENDPOINT_URL_ECS=c.endpoint, AWS_CA_BUNDLE=c.ca, AWS_REGION="us-east-1")

    def berth(*args, check=True):  # this thread is in the VPC namespace: so is the child
        p = subprocess.run([berth_binary(), "service", *map(str, args)], capture_output=True, text=True, env=env,
                           timeout=120)
        assert not check or p.returncode == 0, (args, p.stderr)
        return p
    assert berth("create", "cli", "--task-definition", c.web1, "--desired-count", 2, "--max-percent", 150,
                 "--circuit-breaker", "--wait").stdout.strip() == "cli"
    ls = berth("ls").stdout
    assert "cli" in ls and "2/2" in ls and "REPLICA" in ls, ls
    ps = berth("ps", "cli").stdout.splitlines()
    assert len(ps) == 3 and ps[0].split()[:2] == ["TASK", "ID"] and all("RUNNING" in l for l in ps[1:]), ps
    berth("update", "cli", "--desired-count", 1, "--wait")
    out = berth("inspect", "cli").stdout
    assert "1 desired, 1 running" in out and "has stopped 1 running tasks" in out, out
    [s] = json.loads(berth("inspect", "cli", "--format", "json").stdout)["services"]
    assert s["deploymentConfiguration"]["maximumPercent"] == 150
    assert s["deploymentConfiguration"]["deploymentCircuitBreaker"] == {"enable": True, "rollback": True}
    p = berth("rm", "cli", check=False)
    assert p.returncode == 1 and "scaled above 0" in p.stderr
    berth("rm", "-f", "cli")
    wait_inactive(ecs, "cli")
    p = berth("create", "bad", "--task-definition", c.web1, "--desired-count", "-1", check=False)
    assert p.returncode != 0 and "--desired-count" in p.stderr


def test_bad_input_is_refused_with_ecs_errors_and_creates_nothing(cluster, ecs):
    c = cluster
    base = dict(serviceName="bad", taskDefinition="svcweb", desiredCount=1)
    tg = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/nope/0123456789abcdef"
    cases = [
        (dict(desiredCount=-1), "InvalidParameterException", "negative"),
        (dict(taskDefinition="nosuch"), "ClientException", ""),
        (dict(cluster="nosuch"), "ClusterNotFoundException", ""),
        (dict(deploymentConfiguration={"maximumPercent": 90}), "InvalidParameterException", "maximumPercent"),
        (dict(deploymentConfiguration={"maximumPercent": 150, "minimumHealthyPercent": 160}),
         "InvalidParameterException", "minimumHealthyPercent"),
        (dict(schedulingStrategy="DAEMON"), "InvalidParameterException", "desired count"),
        (dict(loadBalancers=[{"targetGroupArn": tg, "containerName": "web", "containerPort": 80}]),
         "InvalidParameterException", "target group"),
        (dict(placementConstraints=[{"type": "memberOf", "expression": "attribute:ecs.os-type =="}]),
         "InvalidParameterException", "placementConstraints"),
        (dict(placementStrategy=[{"type": "spread", "field": "attribute:ecs.availability-zone"},
                                 {"type": "nosuch"}]), "InvalidParameterException", "placementStrategy"),
    ]
    for over, code, text in cases:
        with pytest.raises(ClientError) as e:
            ecs.create_service(**dict(base, **over))
        err = e.value.response["Error"]
        assert err["Code"] == code and text in err["Message"], (over, err)
    assert ecs.list_services()["serviceArns"] == []
    # the aws CLI sees the same error
    err = ecs_error(c.aws("create-service", "--service-name", "bad", "--task-definition", "svcweb",
                          "--desired-count", "-1", check=False))
    assert "InvalidParameterException" in err
    ecs.create_service(serviceName="dup", taskDefinition="svcweb", desiredCount=0)
    with pytest.raises(ClientError) as e:
        ecs.create_service(serviceName="dup", taskDefinition="svcweb", desiredCount=0)
    assert e.value.response["Error"]["Code"] == "InvalidParameterException"
    assert e.value.response["Error"]["Message"] == "Creation of service was not idempotent."
    for call, code in ((lambda: ecs.update_service(service="nosuch", desiredCount=1), "ServiceNotFoundException"),
                       (lambda: ecs.update_service(service="dup", desiredCount=-2), "InvalidParameterException"),
                       (lambda: ecs.update_service(service="dup", taskDefinition="nosuch"), "ClientException"),
                       (lambda: ecs.delete_service(service="nosuch"), "ServiceNotFoundException"),
                       (lambda: ecs.list_services_by_namespace(namespace="nosuch.local"),
                        "NamespaceNotFoundException"),
                       (lambda: ecs.create_task_set(cluster="default", service="dup", taskDefinition="svcweb"),
                        "InvalidParameterException")):
        with pytest.raises(ClientError) as e:
            call()
        assert e.value.response["Error"]["Code"] == code
    out = ecs.describe_services(services=["nosuch"])
    assert out["services"] == [] and out["failures"][0]["reason"] == "MISSING"
    [s] = ecs.describe_services(services=["dup"])["services"]
    assert s["desiredCount"] == 0 and s["deployments"][0]["taskDefinition"].endswith("/svcweb:3")
    ecs.delete_service(service="dup")
    # valid but unplaceable: the service waits with ECS's event
    ecs.create_service(serviceName="nowhere", taskDefinition=c.web1, desiredCount=1, placementConstraints=[
        {"type": "memberOf", "expression": "attribute:ecs.availability-zone == nowhere"}])
    ev = wait_for(lambda: [e["message"] for e in describe(ecs, "nowhere")["events"]
                           if "was unable to place a task" in e["message"]], 30, "placement failure event")
    assert ev[0].startswith("(service nowhere) was unable to place a task because no container instance met all "
                            "of its requirements. Reason: 0/3 nodes"), ev
    assert describe(ecs, "nowhere")["pendingCount"] == 0
    ecs.delete_service(service="nowhere", force=True)
    wait_inactive(ecs, "nowhere")


@pytest.fixture(scope="module")
def replicated(busybox):
    """Two servers sharing etcd; the leader runs the service controller."""
    if not os.access("/usr/bin/etcd", os.X_OK):
        pytest.skip("etcd not installed (apt-get install etcd-server)")
    c = Cluster(nodes=2, servers=2, server_args=["--agent-lease-ttl", "4"])
    try:
        c.start(busybox=busybox)
        c.web1 = register(c, WEB)["taskDefinitionArn"]
        web2 = json.loads(json.dumps(WEB))
        web2["containerDefinitions"][0]["environment"][0]["value"] = "2"
        c.web2 = register(c, web2)["taskDefinitionArn"]
        yield c
    finally:
        c.cleanup()


def test_on_etcd_a_new_leader_continues_the_deployment(replicated):
    c = replicated
    with c.ecs() as ecs:
        ecs.create_service(serviceName="ha", taskDefinition=c.web1, desiredCount=2)
        wait_stable(ecs, "ha")
        ecs.update_service(service="ha", taskDefinition=c.web2)
    # the leader dies in the middle of the rollout
    leader = next(i for i in range(2)
                  if "became leader" in open(os.path.join(c.base, f"server{i}.err")).read())
    c.stop_server(signal.SIGKILL, i=leader)
    c.current = 1 - leader
    with c.ecs() as ecs:
        wait_for(lambda: (lambda s: len(s["deployments"]) == 1 and s["taskDefinition"] == c.web2
                          and s["deployments"][0]["rolloutState"] == "COMPLETED")(describe(ecs, "ha")),
                 90, "the rollout finished by the new leader")
        [s] = wait_stable(ecs, "ha")
        tasks = service_tasks(ecs, "ha")
        assert len(tasks) == 2 and all(t["taskDefinitionArn"] == c.web2 for t in tasks)
    c.start_server(leader)  # back as a follower (agents that try it first find it again)


def etcd_put(key, value):
    """Write a record into the store behind the servers (etcd's v3 JSON gateway; VPC namespace)."""
    import base64
    import urllib.request
    body = json.dumps({"key": base64.b64encode(key.encode()).decode(),
                       "value": base64.b64encode(json.dumps(value).encode()).decode()}).encode()
    urllib.request.urlopen(urllib.request.Request("http://127.0.0.1:2379/v3/kv/put", data=body), timeout=5).read()


def test_on_etcd_load_balanced_tasks_drain_for_the_deregistration_delay(replicated):
    """The target group record is helper lb's (`berth lb create`); here it is written the way lb stores it."""
    c = replicated
    tg = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/svc-tg/0123456789abcdef"
    with c.ecs() as ecs:
        etcd_put("/berth/lb/targetgroups/svc-tg", {"targetGroupArn": tg, "targetGroupName": "svc-tg", "port": 80,
                                                   "protocol": "HTTP", "deregistrationDelay": 2})
        lbs = [{"targetGroupArn": tg, "containerName": "web", "containerPort": 80}]
        with pytest.raises(ClientError) as e:
            ecs.create_service(serviceName="lb", taskDefinition=c.web1, desiredCount=2,
                               loadBalancers=[dict(lbs[0], containerPort=81)])
        assert "did not have a container port 81" in e.value.response["Error"]["Message"]
        s = ecs.create_service(serviceName="lb", taskDefinition=c.web1, desiredCount=2, loadBalancers=lbs)["service"]
        assert s["loadBalancers"] == lbs
        wait_stable(ecs, "lb")
        ecs.update_service(service="lb", desiredCount=1)
        drained = wait_for(lambda: [e for e in describe(ecs, "lb")["events"]
                                    if e["message"] == "(service lb) has begun draining connections on 1 tasks."],
                           30, "draining event")
        [s] = wait_stable(ecs, "lb")
        [t] = service_tasks(ecs, "lb", "STOPPED")
        # drainingAt (not in boto3's model) is set with the event; the stop waits the 2 s delay
        assert (t["stoppingAt"] - drained[0]["createdAt"]).total_seconds() >= 1.9, (t["stoppingAt"], drained)
        ecs.delete_service(service="lb", force=True)
        wait_inactive(ecs, "lb")
