"""Service autoscaling (issue 15, autoscaling): Application Auto Scaling's API on the server's endpoint
(`aws application-autoscaling`, boto3), target tracking on the service's CPU utilization from the agents'
metrics (scale out within the alarm window, back in after the low alarm and the cooldown), scheduled
actions, scaling activities with ECS-like causes, and the API's errors (docs/autoscaling.md).

One module-scoped cluster (2 nodes). Requests per target: a service behind a berth load balancer
(HAProxy on every node, its request counters sent with the agents' samples) scales out while a client
sends requests through the load balancer and back in when it stops. The server's datapoints last 1 s (--metrics-period 1) and agents
sample every second, so target tracking's high alarm (3 datapoints) fires within seconds and the low one
(15 datapoints) within ~15 s. The service's tasks burn CPU while the file `burn` exists in a host directory
they mount (a quarter of their eighth of a CPU is already 25%).
"""
import datetime
import http.client
import json
import os
import shutil
import subprocess
import tempfile
import threading

import pytest
from botocore.exceptions import ClientError

from cluster_fixture import REGION, Cluster, in_netns, wait_for
from conftest import berth_binary

SERVICE = "burn"
RESOURCE = f"service/default/{SERVICE}"
DIM = "ecs:service:DesiredCount"
BURN = ('while :; do if [ -e /ctl/burn ]; then i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; '
        'else sleep 0.3; fi; done')


@pytest.fixture(scope="module")
def cluster(busybox):
    c = Cluster(nodes=2, server_args=["--metrics-period", "1"])
    c.ctl = tempfile.mkdtemp(prefix="berth-burn-")
    try:
        c.start(busybox=busybox, node_extra=("--metrics-interval", "1"))
        with c.ecs() as ecs:
            ecs.register_task_definition(
                family="burner", networkMode="none", cpu="128", memory="64",
                volumes=[{"name": "ctl", "host": {"sourcePath": c.ctl}}],
                containerDefinitions=[{"name": "main", "image": "busybox:latest", "essential": True,
                                       "stopTimeout": 2, "command": ["sh", "-c", BURN],
                                       "mountPoints": [{"sourceVolume": "ctl", "containerPath": "/ctl"}]}])
            ecs.create_service(serviceName=SERVICE, taskDefinition="burner", desiredCount=1)
            ecs.create_service(serviceName="plain", taskDefinition="burner", desiredCount=0)
        yield c
    finally:
        c.cleanup()
        shutil.rmtree(c.ctl, ignore_errors=True)


def service(c, name=SERVICE):
    with c.ecs() as ecs:
        return ecs.describe_services(services=[name])["services"][0]


def aas(c, *args, check=True):
    """`aws application-autoscaling ARGS` against the server (JSON answer, or the process on failure)."""
    return c.aws_cli("application-autoscaling", *args, check=check)


def berth(c, *args):
    env = dict(c.aws_env(), AWS_ENDPOINT_URL=c.endpoint, AWS_CA_BUNDLE=c.ca, AWS_REGION=REGION)
    p = subprocess.run(["nsenter", f"--net=/run/netns/{c.vpc}", berth_binary(), *args], capture_output=True,
                       text=True, env=env, timeout=60)
    assert p.returncode == 0, f"berth {args}: {p.stderr}"
    return p


def error_code(fn, **kw):
    with pytest.raises(ClientError) as e:
        fn(**kw)
    return e.value.response["Error"]["Code"]


def test_register_and_describe_with_the_aws_cli(cluster):
    aas(cluster, "register-scalable-target", "--service-namespace", "ecs", "--resource-id", RESOURCE,
        "--scalable-dimension", DIM, "--min-capacity", 1, "--max-capacity", 3)
    out = aas(cluster, "describe-scalable-targets", "--service-namespace", "ecs")
    t = [x for x in out["ScalableTargets"] if x["ResourceId"] == RESOURCE]
    assert t and t[0]["MinCapacity"] == 1 and t[0]["MaxCapacity"] == 3
    assert t[0]["ScalableDimension"] == DIM and "CreationTime" in t[0]


def test_target_tracking_scales_out_then_back_in(cluster):
    with cluster.boto("application-autoscaling") as aa:
        out = aa.put_scaling_policy(
            PolicyName="cpu50", ServiceNamespace="ecs", ResourceId=RESOURCE, ScalableDimension=DIM,
            PolicyType="TargetTrackingScaling",
            TargetTrackingScalingPolicyConfiguration={
                "TargetValue": 50.0, "ScaleOutCooldown": 4, "ScaleInCooldown": 4,
                "PredefinedMetricSpecification": {"PredefinedMetricType": "ECSServiceAverageCPUUtilization"}})
        high = [a["AlarmName"] for a in out["Alarms"] if "AlarmHigh" in a["AlarmName"]]
        assert high and high[0].startswith(f"TargetTracking-{RESOURCE}-AlarmHigh-")
    wait_for(lambda: service(cluster)["runningCount"] == 1, 60, "the service's first task running", every=0.5)
    open(os.path.join(cluster.ctl, "burn"), "w").close()
    wait_for(lambda: service(cluster)["desiredCount"] >= 2, 40, "a scale-out", every=0.5)
    with cluster.boto("application-autoscaling") as aa:
        acts = aa.describe_scaling_activities(ServiceNamespace="ecs", ResourceId=RESOURCE)["ScalingActivities"]
    assert acts and acts[0]["StatusCode"] == "Successful"
    assert acts[0]["Cause"].startswith(f"monitor alarm {high[0]} in state ALARM triggered policy cpu50")
    assert acts[0]["Description"].startswith("Setting desired count to ")
    stats = json.loads(berth(cluster, "service", "stats", SERVICE, "--periods", "5", "--format", "json").stdout)
    assert stats["services"][0]["serviceName"] == SERVICE and len(stats["services"][0]["datapoints"]) == 5
    assert any((p["cpuUtilization"] or 0) > 50 for p in stats["services"][0]["datapoints"])
    assert SERVICE in berth(cluster, "service", "stats", SERVICE).stdout
    os.unlink(os.path.join(cluster.ctl, "burn"))
    wait_for(lambda: service(cluster)["desiredCount"] == 1, 60, "the scale-in back to the minimum", every=1)
    with cluster.boto("application-autoscaling") as aa:
        acts = aa.describe_scaling_activities(ServiceNamespace="ecs", ResourceId=RESOURCE)["ScalingActivities"]
        assert "AlarmLow" in acts[0]["Cause"] and acts[0]["Description"] == "Setting desired count to 1."
        aa.delete_scaling_policy(PolicyName="cpu50", ServiceNamespace="ecs", ResourceId=RESOURCE,
                                 ScalableDimension=DIM)
        assert aa.describe_scaling_policies(ServiceNamespace="ecs", ResourceId=RESOURCE)["ScalingPolicies"] == []


def test_scheduled_action_changes_capacity_at_its_time(cluster):
    at = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=4)).strftime("%Y-%m-%dT%H:%M:%S")
    with cluster.boto("application-autoscaling") as aa:
        aa.put_scheduled_action(ServiceNamespace="ecs", ResourceId=RESOURCE, ScalableDimension=DIM,
                                ScheduledActionName="morning", Schedule=f"at({at})",
                                ScalableTargetAction={"MinCapacity": 2, "MaxCapacity": 3})
    acts = aas(cluster, "describe-scheduled-actions", "--service-namespace", "ecs")["ScheduledActions"]
    assert [a["Schedule"] for a in acts if a["ScheduledActionName"] == "morning"] == [f"at({at})"]
    wait_for(lambda: service(cluster)["desiredCount"] == 2, 30, "the scheduled action's capacity", every=0.5)
    with cluster.boto("application-autoscaling") as aa:
        t = aa.describe_scalable_targets(ServiceNamespace="ecs", ResourceIds=[RESOURCE])["ScalableTargets"][0]
        assert t["MinCapacity"] == 2
        acts = aa.describe_scaling_activities(ServiceNamespace="ecs", ResourceId=RESOURCE)["ScalingActivities"]
        assert acts[0]["Cause"] == "scheduled action name morning was triggered"
        assert acts[0]["Description"] == "Setting desired count to 2."
        aa.delete_scheduled_action(ServiceNamespace="ecs", ResourceId=RESOURCE, ScalableDimension=DIM,
                                   ScheduledActionName="morning")


def test_bad_requests_get_the_apis_errors(cluster):
    with cluster.boto("application-autoscaling") as aa:
        base = {"ServiceNamespace": "ecs", "ScalableDimension": DIM}
        assert error_code(aa.register_scalable_target, ResourceId="service/default/nope", MinCapacity=1,
                          MaxCapacity=2, **base) == "ValidationException"
        assert error_code(aa.register_scalable_target, ResourceId="service/default/plain", MinCapacity=3,
                          MaxCapacity=2, **base) == "ValidationException"
        assert error_code(aa.register_scalable_target, ResourceId="not-a-service", MinCapacity=1,
                          MaxCapacity=2, **base) == "ValidationException"
        assert error_code(aa.describe_scalable_targets, ServiceNamespace="dynamodb") == "ValidationException"
        tt = {"TargetValue": 50.0, "PredefinedMetricSpecification": {
            "PredefinedMetricType": "ECSServiceAverageCPUUtilization"}}
        assert error_code(aa.put_scaling_policy, PolicyName="p", ResourceId="service/default/plain",
                          PolicyType="TargetTrackingScaling", TargetTrackingScalingPolicyConfiguration=tt,
                          **base) == "ObjectNotFoundException"
        bad_metric = {"TargetValue": 50.0, "PredefinedMetricSpecification": {
            "PredefinedMetricType": "DynamoDBReadCapacityUtilization"}}
        assert error_code(aa.put_scaling_policy, PolicyName="p", ResourceId=RESOURCE,
                          PolicyType="TargetTrackingScaling", TargetTrackingScalingPolicyConfiguration=bad_metric,
                          **base) == "ValidationException"
        alb = {"TargetValue": 50.0, "PredefinedMetricSpecification": {"PredefinedMetricType": "ALBRequestCountPerTarget"}}
        assert error_code(aa.put_scaling_policy, PolicyName="p", ResourceId=RESOURCE,
                          PolicyType="TargetTrackingScaling", TargetTrackingScalingPolicyConfiguration=alb,
                          **base) == "ValidationException"  # no ResourceLabel
        gap = {"AdjustmentType": "ChangeInCapacity", "StepAdjustments": [
            {"MetricIntervalLowerBound": 0, "MetricIntervalUpperBound": 10, "ScalingAdjustment": 1},
            {"MetricIntervalLowerBound": 20, "ScalingAdjustment": 2}]}
        assert error_code(aa.put_scaling_policy, PolicyName="s", ResourceId=RESOURCE, PolicyType="StepScaling",
                          StepScalingPolicyConfiguration=gap, **base) == "ValidationException"
        assert error_code(aa.delete_scaling_policy, PolicyName="never", ResourceId=RESOURCE,
                          **base) == "ObjectNotFoundException"
        assert error_code(aa.delete_scheduled_action, ScheduledActionName="never", ResourceId=RESOURCE,
                          **base) == "ObjectNotFoundException"
        assert error_code(aa.deregister_scalable_target, ResourceId="service/default/plain",
                          **base) == "ObjectNotFoundException"
        # a step policy with contiguous steps is taken (and described without berth's private fields)
        ok = {"AdjustmentType": "ChangeInCapacity", "Cooldown": 30, "StepAdjustments": [
            {"MetricIntervalUpperBound": 20, "ScalingAdjustment": -1},
            {"MetricIntervalLowerBound": 20, "MetricIntervalUpperBound": 70, "ScalingAdjustment": 0},
            {"MetricIntervalLowerBound": 70, "ScalingAdjustment": 1}]}
        arn = aa.put_scaling_policy(PolicyName="steps", ResourceId=RESOURCE, PolicyType="StepScaling",
                                    StepScalingPolicyConfiguration=ok, **base)["PolicyARN"]
        assert arn.endswith(f"resource/ecs/{RESOURCE}:policyName/steps")
        pols = aa.describe_scaling_policies(ServiceNamespace="ecs", PolicyNames=["steps"])["ScalingPolicies"]
        assert len(pols) == 1 and "berthState" not in pols[0]
        aa.delete_scaling_policy(PolicyName="steps", ResourceId=RESOURCE, **base)
        for sched in ["cron(0 12 * * * *)", "rate(1 minutes)", "at(2026-02-30T10:00:00)", "every(5 minutes)",
                      "cron(0 12 ? * MON#2 *)"]:
            assert error_code(aa.put_scheduled_action, ScheduledActionName="bad", Schedule=sched,
                              ScalableTargetAction={"MinCapacity": 1}, ResourceId=RESOURCE,
                              **base) == "ValidationException", sched
    p = aas(cluster, "put-scheduled-action", "--service-namespace", "ecs", "--resource-id", RESOURCE,
            "--scalable-dimension", DIM, "--scheduled-action-name", "bad", "--schedule", "cron(0 12 * * * *)",
            "--scalable-target-action", "MinCapacity=1", check=False)
    assert p.returncode != 0 and "ValidationException" in p.stderr and "day-of-week" in p.stderr, p.stderr
    p = aas(cluster, "put-scheduled-action", "--service-namespace", "ecs", "--resource-id",
            "service/default/plain", "--scalable-dimension", DIM, "--scheduled-action-name", "x", "--schedule",
            "rate(5 minutes)", "--scalable-target-action", "MinCapacity=1", check=False)
    assert p.returncode != 0 and "ObjectNotFoundException" in p.stderr


def test_deregister_removes_policies_and_actions(cluster):
    with cluster.boto("application-autoscaling") as aa:
        base = {"ServiceNamespace": "ecs", "ScalableDimension": DIM, "ResourceId": RESOURCE}
        aa.put_scheduled_action(ScheduledActionName="later", Schedule="cron(0 3 ? * SUN *)",
                                ScalableTargetAction={"MaxCapacity": 3}, **base)
        aa.deregister_scalable_target(**base)
        assert aa.describe_scalable_targets(ServiceNamespace="ecs", ResourceIds=[RESOURCE])["ScalableTargets"] == []
        assert aa.describe_scheduled_actions(ServiceNamespace="ecs", ResourceId=RESOURCE)["ScheduledActions"] == []


WEB_SH = "mkdir -p /www && echo ok > /www/index.html && exec httpd -f -p 80 -h /www"
LB_PORT = 8086


def lb_get(addr):
    conn = http.client.HTTPConnection(addr, LB_PORT, timeout=3)
    try:
        conn.request("GET", "/")
        return conn.getresponse().status
    except OSError:
        return None
    finally:
        conn.close()


def test_requests_per_target_scale_out_under_load_and_back_in(cluster):
    """ALBRequestCountPerTarget end to end: HAProxy's counters -> agents -> the leader's scaler."""
    c = cluster
    tg = berth(c, "lb", "create", "reqs", "--port", str(LB_PORT), "--health-path", "/", "--health-interval", "1",
               "--deregistration-delay", "1").stdout.strip()
    name, tg_id = tg.split(":targetgroup/", 1)[1].split("/")
    resource = "service/default/web"
    with c.ecs() as ecs:
        ecs.register_task_definition(
            family="reqweb", networkMode="awsvpc", cpu="128", memory="64",
            containerDefinitions=[{"name": "web", "image": "busybox:latest", "essential": True, "stopTimeout": 2,
                                   "portMappings": [{"containerPort": 80}], "command": ["sh", "-c", WEB_SH]}])
        ecs.create_service(serviceName="web", taskDefinition="reqweb", desiredCount=1, loadBalancers=[
            {"targetGroupArn": tg, "containerName": "web", "containerPort": 80}])
    stop = threading.Event()
    load = None
    try:
        with c.boto("application-autoscaling") as aa:
            aa.register_scalable_target(ServiceNamespace="ecs", ResourceId=resource, ScalableDimension=DIM,
                                        MinCapacity=1, MaxCapacity=3)
            aa.put_scaling_policy(
                PolicyName="reqs", ServiceNamespace="ecs", ResourceId=resource, ScalableDimension=DIM,
                PolicyType="TargetTrackingScaling",
                TargetTrackingScalingPolicyConfiguration={
                    "TargetValue": 5.0, "ScaleOutCooldown": 2, "ScaleInCooldown": 2,
                    "PredefinedMetricSpecification": {
                        "PredefinedMetricType": "ALBRequestCountPerTarget",
                        "ResourceLabel": f"app/reqs/{tg_id}/targetgroup/{name}/{tg_id}"}})
        addrs = [n.addr for n in c.nodes]

        def served():
            with in_netns(c.vpc):
                return all(lb_get(a) == 200 for a in addrs)
        wait_for(served, 60, "the service's task behind every node's listener", every=0.5)
        assert service(c, "web")["desiredCount"] == 1

        def client():
            with in_netns(c.vpc):
                i = 0
                while not stop.is_set():
                    lb_get(addrs[i % len(addrs)])
                    i += 1
                    stop.wait(0.02)
        load = threading.Thread(target=client, daemon=True)
        load.start()
        wait_for(lambda: service(c, "web")["desiredCount"] >= 2, 40, "a scale-out under load", every=0.5)
        stop.set()
        load.join(10)
        wait_for(lambda: service(c, "web")["desiredCount"] == 1, 60, "the scale-in once the load stopped",
                 every=1)
        with c.boto("application-autoscaling") as aa:
            acts = aa.describe_scaling_activities(ServiceNamespace="ecs", ResourceId=resource)["ScalingActivities"]
        causes = [a["Cause"] for a in acts]
        assert "AlarmLow" in causes[0] and any("AlarmHigh" in x and "triggered policy reqs" in x for x in causes)
    finally:
        stop.set()
        with c.boto("application-autoscaling") as aa:
            aa.deregister_scalable_target(ServiceNamespace="ecs", ResourceId=resource, ScalableDimension=DIM)
        with c.ecs() as ecs:
            ecs.delete_service(service="web", force=True)
        try:  # refused while the deleted service's tasks drain: the cluster goes with the module anyway
            berth(c, "lb", "rm", "reqs")
        except AssertionError:
            pass
