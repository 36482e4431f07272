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
import time

import pytest

from cluster_fixture import Cluster, Node, wait_for

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


def describe(c, name):
    [s] = c.aws("describe-services", "--services", name)["services"]
    return s


def wait_stable(c, *names):
    with c.ecs() as ecs:
        ecs.get_waiter("services_stable").wait(services=list(names), WaiterConfig=FAST)
    return [describe(c, n) for n in names]


def service_tasks(c, name, desired="RUNNING"):
    arns = c.aws("list-tasks", "--service-name", name, "--desired-status", desired)["taskArns"]
    return c.aws("describe-tasks", "--tasks", *arns)["tasks"] if arns else []


def per_zone(tasks):
    return collections.Counter(t["availabilityZone"] for t in tasks)


def create(c, name, td="svcweb", count=3, *extra):
    return c.aws("create-service", "--service-name", name, "--task-definition", td,
                 *(["--desired-count", str(count)] if count is not None else []), *extra)["service"]


def delete(c, name):
    c.aws("delete-service", "--service", name, "--force")
    wait_for(lambda: describe(c, name)["status"] == "INACTIVE", 60, f"service {name} INACTIVE")


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


def test_create_service_reaches_steady_state_spread_over_zones(cluster):
    c = cluster
    s = create(c, "web", c.web1, 3)
    assert s["status"] == "ACTIVE" and s["desiredCount"] == 3 and len(s["deployments"]) == 1
    assert s["deployments"][0]["id"].startswith("ecs-svc/") and len(s["deployments"][0]["id"]) == 27
    assert s["serviceArn"].endswith(":service/default/web")
    [s] = wait_stable(c, "web")
    assert s["runningCount"] == 3 and s["pendingCount"] == 0
    # COMPLETED once the tasks stayed up for the monitor window (3 s)
    wait_for(lambda: describe(c, "web")["deployments"][0]["rolloutState"] == "COMPLETED", 20, "COMPLETED")
    tasks = service_tasks(c, "web")
    assert sorted(per_zone(tasks).values()) == [1, 1, 1]
    assert all(t["group"] == "service:web" and t["startedBy"] == s["deployments"][0]["id"] for t in tasks)
    msgs = [e["message"] for e in s["events"]]
    wait_for(lambda: any(m == "(service web) has reached a steady state."
                         for m in (e["message"] for e in describe(c, "web")["events"])), 20, "steady event")
    assert any(m.startswith("(service web) has started 3 tasks: (task ") for m in msgs), msgs
    assert c.aws("list-services")["serviceArns"] == [s["serviceArn"]]


def test_scale_out_and_in_stays_balanced(cluster):
    c = cluster
    c.aws("update-service", "--service", "web", "--desired-count", "6")
    [s] = wait_stable(c, "web")
    assert s["runningCount"] == 6 and len(s["deployments"]) == 1
    assert sorted(per_zone(service_tasks(c, "web")).values()) == [2, 2, 2]
    c.aws("update-service", "--service", "web", "--desired-count", "3")
    [s] = wait_stable(c, "web")
    assert s["runningCount"] == 3
    assert sorted(per_zone(service_tasks(c, "web")).values()) == [1, 1, 1]
    assert any("has stopped 3 running tasks" in e["message"] for e in s["events"])


def test_rolling_update_keeps_within_minimum_healthy_and_maximum_percent(cluster):
    c = cluster
    c.aws("update-service", "--service", "web", "--task-definition", c.web2, "--deployment-configuration",
          "maximumPercent=134,minimumHealthyPercent=100")  # 3 tasks: at most 4 at once, never fewer than 3
    seen_max, seen_min_healthy = 0, 99
    with c.ecs() as ecs:
        deadline = time.time() + 90
        while time.time() < deadline:
            s = ecs.describe_services(services=["web"])["services"][0]
            arns = ecs.list_tasks(serviceName="web")["taskArns"]
            tasks = ecs.describe_tasks(tasks=arns)["tasks"] if arns else []
            alive = [t for t in tasks if t["lastStatus"] != "STOPPED"]
            healthy = [t for t in tasks if t["lastStatus"] == "RUNNING" and t["desiredStatus"] == "RUNNING"]
            seen_max = max(seen_max, len(alive))
            seen_min_healthy = min(seen_min_healthy, len(healthy))
            if (len(s["deployments"]) == 1 and s["runningCount"] == 3
                    and s["deployments"][0]["taskDefinition"] == c.web2):
                break
            time.sleep(0.2)
    assert s["deployments"][0]["taskDefinition"] == c.web2, s["deployments"]
    assert seen_max <= 4, seen_max
    assert seen_min_healthy >= 3, seen_min_healthy
    [s] = wait_stable(c, "web")
    assert all(t["taskDefinitionArn"] == c.web2 for t in service_tasks(c, "web"))
    assert s["deployments"][0]["rolloutState"] == "COMPLETED"  # old tasks stop only after completion


def test_crash_looping_deployment_trips_the_circuit_breaker_and_rolls_back(cluster):
    c = cluster
    s = c.aws("update-service", "--service", "web", "--task-definition", c.crash, "--deployment-configuration",
              "maximumPercent=200,minimumHealthyPercent=100,"
              "deploymentCircuitBreaker={enable=true,rollback=true}")["service"]
    assert len(s["deployments"]) == 2 and s["deployments"][0]["rolloutState"] == "IN_PROGRESS"
    failed_id = s["deployments"][0]["id"]
    low = 99
    with c.ecs() as ecs:
        deadline = time.time() + 90
        while time.time() < deadline:
            s = ecs.describe_services(services=["web"])["services"][0]
            arns = ecs.list_tasks(serviceName="web")["taskArns"]
            tasks = ecs.describe_tasks(tasks=arns)["tasks"] if arns else []
            low = min(low, sum(t["lastStatus"] == "RUNNING" and t["taskDefinitionArn"] == c.web2 for t in tasks))
            if s["deployments"][0]["taskDefinition"] == c.web2 and len(s["deployments"]) == 1:
                break
            time.sleep(0.3)
    msgs = [e["message"] for e in s["events"]]
    assert any(f"(deployment {failed_id}) deployment failed: tasks failed to start." in m for m in msgs), msgs
    assert any("rolling back to deployment" in m for m in msgs), msgs
    assert low >= 3, low  # never below minimumHealthyPercent of the old capacity
    stopped = service_tasks(c, "web", "STOPPED")
    crashed = [t for t in stopped if t["taskDefinitionArn"] == c.crash]
    assert len(crashed) >= 3 and all(t["stopCode"] == "EssentialContainerExited" for t in crashed)
    [s] = wait_stable(c, "web")
    assert s["taskDefinition"] == c.web2 and s["runningCount"] == 3


def test_draining_instance_tasks_are_replaced_before_they_stop(cluster):
    c = cluster
    node_arn = service_tasks(c, "web")[0]["containerInstanceArn"]
    c.aws("update-container-instances-state", "--container-instances", node_arn, "--status", "DRAINING")
    try:
        low = 99

        def moved():
            nonlocal low
            tasks = service_tasks(c, "web")
            low = min(low, sum(t["lastStatus"] == "RUNNING" for t in tasks))
            return all(t["containerInstanceArn"] != node_arn for t in tasks) and len(tasks) == 3 and \
                all(t["lastStatus"] == "RUNNING" for t in tasks)
        wait_for(moved, 60, "tasks off the draining node", every=0.2)
        assert low >= 3, low
        wait_stable(c, "web")
    finally:
        c.aws("update-container-instances-state", "--container-instances", node_arn, "--status", "ACTIVE")


def test_delete_service_needs_force_then_drains_to_inactive(cluster):
    c = cluster
    err = ecs_error(c.aws("delete-service", "--service", "web", check=False))
    assert "InvalidParameterException" in err and "scaled above 0" in err
    s = c.aws("delete-service", "--service", "web", "--force")["service"]
    assert s["status"] == "DRAINING" and s["desiredCount"] == 0
    wait_for(lambda: describe(c, "web")["status"] == "INACTIVE", 60, "INACTIVE")
    assert service_tasks(c, "web") == []
    assert c.aws("list-services")["serviceArns"] == []
    # the name is free again
    create(c, "web", c.web1, 0)
    c.aws("delete-service", "--service", "web")


def test_bad_input_is_refused_with_ecs_errors_and_creates_nothing(cluster):
    c = cluster
    cases = [
        (["--service-name", "bad", "--task-definition", "svcweb", "--desired-count", "-1"],
         "InvalidParameterException"),
        (["--service-name", "bad", "--task-definition", "nosuch", "--desired-count", "1"], "ClientException"),
        (["--cluster", "nosuch", "--service-name", "bad", "--task-definition", "svcweb", "--desired-count", "1"],
         "ClusterNotFoundException"),
        (["--service-name", "bad", "--task-definition", "svcweb", "--desired-count", "1",
          "--deployment-configuration", "maximumPercent=90"], "maximumPercent"),
        (["--service-name", "bad", "--task-definition", "svcweb", "--desired-count", "1",
          "--deployment-configuration", "maximumPercent=120,minimumHealthyPercent=100"], None),
        (["--service-name", "bad", "--task-definition", "svcweb", "--desired-count", "1",
          "--deployment-configuration", "maximumPercent=150,minimumHealthyPercent=160"], "minimumHealthyPercent"),
        (["--service-name", "bad", "--task-definition", "svcweb", "--desired-count", "1",
          "--scheduling-strategy", "DAEMON"], "desired count"),
        (["--service-name", "bad", "--task-definition", "svcweb", "--desired-count", "1", "--load-balancers",
          "targetGroupArn=arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/nope/0123456789abcdef,"
          "containerName=web,containerPort=80"], "target group"),
        (["--service-name", "bad", "--task-definition", "svcweb", "--desired-count", "1",
          "--placement-constraints", '[{"type": "memberOf", "expression": "attribute:ecs.os-type =="}]'], "placementConstraints"),
    ]
    for args, want in cases:
        p = c.aws("create-service", *args, check=False)
        if want is None:  # the valid control case
            assert not isinstance(p, __import__("subprocess").CompletedProcess), p.stderr
            c.aws("delete-service", "--service", "bad", "--force")
            wait_for(lambda: describe(c, "bad")["status"] == "INACTIVE", 30, "control deleted")
            continue
        err = ecs_error(p)
        assert want in err, (args, err)
    assert c.aws("list-services")["serviceArns"] == []
    create(c, "dup", c.web1, 0)
    err = ecs_error(c.aws("create-service", "--service-name", "dup", "--task-definition", "svcweb",
                          "--desired-count", "0", check=False))
    assert "InvalidParameterException" in err and "Creation of service was not idempotent." in err
    err = ecs_error(c.aws("update-service", "--service", "nosuch", "--desired-count", "1", check=False))
    assert "ServiceNotFoundException" in err
    err = ecs_error(c.aws("update-service", "--service", "dup", "--desired-count", "-2", check=False))
    assert "InvalidParameterException" in err
    err = ecs_error(c.aws("delete-service", "--service", "nosuch", check=False))
    assert "ServiceNotFoundException" in err
    out = c.aws("describe-services", "--services", "nosuch")
    assert out["services"] == [] and out["failures"][0]["reason"] == "MISSING"
    c.aws("delete-service", "--service", "dup")
