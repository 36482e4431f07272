"""The ECS API's answers against the contract its clients parse with:
botocore's model of every operation berth serves (ecs_shapes.check_output),
driven with full requests (every documented parameter berth accepts), and
hostile input (wrong types, missing or unknown values, huge strings, bad
ARNs and tokens, malformed JSON, unknown targets) answered with ECS's error
__type, status 400 and a message, with nothing half-created.

One server and one fake agent (berth_agent_client: no containers) for the
module; the agent reports the task transitions itself.
"""
import json
import os
import re
import shutil
import tempfile

import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from ecs_shapes import check_output, error_codes
from test_cluster_server import REGION, TARGET, Server, wait_for

# members berth adds on purpose (docs/cluster.md): its placement explanation and scheduling extensions
BERTH_EXTRA = ("berthPlacement", "berthScheduling")


class Api:
    def __init__(self, server):
        self.server = server
        self.keys = server.keys()
        self.http = requests.Session()
        self.problems = []  # every departure from the model seen by call(), until assert_conforming()

    def post(self, target, body, ctype="application/x-amz-json-1.1"):
        data = body if isinstance(body, (str, bytes)) else json.dumps(body)
        req = AWSRequest(method="POST", url=self.server.endpoint + "/", data=data,
                         headers={"X-Amz-Target": target, "Content-Type": ctype})
        SigV4Auth(Credentials(*self.keys), "ecs", REGION).add_auth(req)
        r = self.http.post(self.server.endpoint + "/", data=data, headers=dict(req.headers.items()),
                           verify=self.server.ca, timeout=30)
        try:
            return r.status_code, r.json()
        except ValueError:
            return r.status_code, r.text

    def call(self, op, body=None):
        """A call that must succeed, its answer checked against the model; returns the answer."""
        status, ans = self.post(TARGET + op, body if body is not None else {})
        assert status == 200, f"{op} {body}: {status} {ans}"
        self.problems += check_output("ecs", op, ans, BERTH_EXTRA)
        return ans

    def assert_conforming(self):
        problems, self.problems = self.problems, []
        assert not problems, "answers depart from botocore's model:\n  " + "\n  ".join(problems[:60])

    def fail(self, op, body, etype, status=400, words=None):
        """A call that must be refused with ECS's __type and a message."""
        code, ans = self.post(TARGET + op, body)
        assert code == status and isinstance(ans, dict), f"{op} {str(body)[:200]}: {code} {str(ans)[:300]}"
        assert ans.get("__type") == etype, f"{op} {str(body)[:200]}: {ans}"
        msg = ans.get("message") or ans.get("Message")
        assert msg and isinstance(msg, str), ans
        if words:
            assert words.lower() in msg.lower(), f"{op}: {msg!r} does not say {words!r}"
        return msg


@pytest.fixture(scope="module")
def env():
    tmp = tempfile.mkdtemp(prefix="berth-ecs-shapes-")
    s = Server(os.path.join(tmp, "root"), extra=["--agent-lease-ttl", "120"]).start()
    try:
        a = s.agent("n1")
        a.register(attributes={"ecs.availability-zone": "az-a", "disk": "ssd"})
        yield Api(s), a
    finally:
        s.stop()
        shutil.rmtree(tmp, ignore_errors=True)


CONTAINERS = [
    {"name": "db", "image": "postgres:16", "cpu": 256, "memory": 256, "memoryReservation": 128,
     "essential": True,
     "environment": [{"name": "POSTGRES_PASSWORD", "value": "x"}],
     "healthCheck": {"command": ["CMD-SHELL", "pg_isready"], "interval": 5, "timeout": 2, "retries": 3,
                     "startPeriod": 10},
     "mountPoints": [{"sourceVolume": "data", "containerPath": "/var/lib/postgresql/data", "readOnly": False}],
     "ulimits": [{"name": "nofile", "softLimit": 1024, "hardLimit": 4096}]},
    {"name": "web", "image": "nginx:1.25", "cpu": 256, "memory": 128, "essential": True,
     "portMappings": [{"containerPort": 80, "hostPort": 80, "protocol": "tcp", "name": "http"},
                      {"containerPort": 53, "protocol": "udp"}],
     "environment": [{"name": "A", "value": "1"}],
     "secrets": [{"name": "TOKEN", "valueFrom": "arn:aws:ssm:us-east-1:123456789012:parameter/token"}],
     "command": ["nginx", "-g", "daemon off;"], "entryPoint": ["/docker-entrypoint.sh"],
     "workingDirectory": "/", "user": "0", "readonlyRootFilesystem": False, "stopTimeout": 5,
     "dockerLabels": {"team": "blue"},
     "logConfiguration": {"logDriver": "json-file", "options": {"max-size": "1m"}},
     "dependsOn": [{"containerName": "db", "condition": "HEALTHY"}],
     "linuxParameters": {"initProcessEnabled": True},
     "mountPoints": [{"sourceVolume": "scratch", "containerPath": "/cache"}],
     "volumesFrom": []},
]
VOLUMES = [{"name": "data", "host": {"sourcePath": "/srv/data"}},
           {"name": "scratch"},
           {"name": "vol", "dockerVolumeConfiguration": {"scope": "task", "driver": "local"}}]


def test_every_operation_answers_in_the_models_shape(env):
    api, agent = env
    arn_of = {}
    # clusters
    c = api.call("CreateCluster", {"clusterName": "shapes", "tags": [{"key": "env", "value": "it"}],
                                   "settings": [{"name": "containerInsights", "value": "disabled"}]})
    arn_of["cluster"] = c["cluster"]["clusterArn"]
    api.call("DescribeClusters", {"clusters": ["shapes", "default", "nope"],
                                  "include": ["TAGS", "SETTINGS", "STATISTICS", "ATTACHMENTS"]})
    api.call("DescribeClusters", {})
    api.call("ListClusters", {"maxResults": 1})
    api.call("ListAccountSettings", {"effectiveSettings": True, "maxResults": 2})
    # task definitions
    td = api.call("RegisterTaskDefinition", {
        "family": "shapes", "taskRoleArn": "arn:aws:iam::123456789012:role/task",
        "executionRoleArn": "arn:aws:iam::123456789012:role/exec", "networkMode": "bridge",
        "containerDefinitions": CONTAINERS, "volumes": VOLUMES,
        "placementConstraints": [{"type": "memberOf", "expression": "attribute:disk == ssd"}],
        "requiresCompatibilities": ["EC2"], "cpu": "512", "memory": "1024",
        "tags": [{"key": "app", "value": "shapes"}], "pidMode": "task", "ipcMode": "task"})
    tdarn = td["taskDefinition"]["taskDefinitionArn"]
    api.call("RegisterTaskDefinition", {"family": "shapes-vpc", "networkMode": "awsvpc",
                                        "containerDefinitions": [{"name": "a", "image": "busybox",
                                                                  "memory": 64}]})
    # nulls and members the model does not have are not stored (ECS drops them): never echoed back
    api.call("RegisterTaskDefinition", {"family": "shapes-odd", "cpu": None, "containerDefinitions": [
        {"name": "a", "image": "busybox", "memory": 64, "healthCheck": None, "portMappings": None,
         "notInTheModel": {"x": 1}, "dockerLabels": {"k": None}}], "volumes": [{"name": "v", "host": None}]})
    api.call("DescribeTaskDefinition", {"taskDefinition": "shapes-odd"})
    api.call("DescribeTaskDefinition", {"taskDefinition": "shapes", "include": ["TAGS"]})
    api.call("DescribeTaskDefinition", {"taskDefinition": tdarn})
    api.call("ListTaskDefinitions", {"familyPrefix": "shapes", "status": "ACTIVE", "sort": "DESC",
                                     "maxResults": 10})
    api.call("ListTaskDefinitionFamilies", {"familyPrefix": "sha", "status": "ALL", "maxResults": 10})
    # every answer names its request, as AWS's do (boto3's ResponseMetadata.RequestId)
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
                        api.server.ecs().list_clusters()["ResponseMetadata"]["RequestId"])
    # pagination through the real clients: tokens from one page open the next, to the end
    want = api.call("ListTaskDefinitions", {"familyPrefix": "shapes"})["taskDefinitionArns"]
    assert len(want) == 3
    pages = api.server.ecs().get_paginator("list_task_definitions").paginate(
        familyPrefix="shapes", PaginationConfig={"PageSize": 1})
    assert [a for p in pages for a in p["taskDefinitionArns"]] == want
    assert api.server.aws("list-task-definitions", "--family-prefix", "shapes", "--page-size", "1")[
        "taskDefinitionArns"] == want
    tok = api.call("ListTaskDefinitions", {"familyPrefix": "shapes", "maxResults": 1})["nextToken"]
    api.fail("ListClusters", {"nextToken": tok}, "InvalidParameterException", words="nextToken")
    # container instances, attributes
    ci = api.call("ListContainerInstances", {"cluster": "default", "status": "ACTIVE",
                                             "filter": "attribute:disk == ssd", "maxResults": 10})
    ciarn = ci["containerInstanceArns"][0]
    api.call("DescribeContainerInstances", {"containerInstances": [ciarn, "0" * 32], "include": ["TAGS"]})
    api.call("PutAttributes", {"attributes": [{"name": "rack", "value": "r1", "targetType": "container-instance",
                                               "targetId": ciarn}]})
    api.call("ListAttributes", {"targetType": "container-instance", "attributeName": "rack",
                                "attributeValue": "r1", "maxResults": 5})
    api.call("DeleteAttributes", {"attributes": [{"name": "rack", "targetId": ciarn}]})
    api.call("UpdateContainerInstancesState", {"containerInstances": [ciarn], "status": "DRAINING"})
    api.call("UpdateContainerInstancesState", {"containerInstances": [ciarn], "status": "ACTIVE"})
    api.call("DescribeContainerInstances", {"containerInstances": [ciarn],
                                            "include": ["TAGS", "CONTAINER_INSTANCE_HEALTH"]})
    gone = api.server.agent("n2")
    gone.register(attributes={"ecs.availability-zone": "az-b"})
    api.call("DeregisterContainerInstance", {"containerInstance": gone.instance_arn, "force": True})
    api.call("DescribeClusters", {"clusters": ["default"], "include": ["CONFIGURATIONS"]})
    # tasks
    run = api.call("RunTask", {
        "taskDefinition": "shapes:1", "count": 2, "group": "batch", "startedBy": "shapes-it",
        "launchType": "EC2", "enableECSManagedTags": True, "propagateTags": "TASK_DEFINITION",
        "tags": [{"key": "run", "value": "1"}], "referenceId": "ref-1",
        "overrides": {"containerOverrides": [{"name": "web", "command": ["true"],
                                              "environment": [{"name": "B", "value": "2"}],
                                              "cpu": 128, "memory": 64}],
                      "cpu": "512", "memory": "1024", "taskRoleArn": "arn:aws:iam::123456789012:role/t2"},
        "placementConstraints": [{"type": "distinctInstance"}],
        "placementStrategy": [{"type": "spread", "field": "attribute:ecs.availability-zone"},
                              {"type": "binpack", "field": "memory"}]})
    assert len(run["tasks"]) + len(run["failures"]) == 2, run
    tarns = [t["taskArn"] for t in run["tasks"]]
    assert tarns
    for status in ("PENDING", "RUNNING"):
        agent.report(*[{"taskArn": t, "lastStatus": status,
                        "containers": [{"name": "db", "lastStatus": status},
                                       {"name": "web", "lastStatus": status}]} for t in tarns])
    # what an agent reports is stored in the model's shape only: a faulty report's wrong fields are left out
    res = agent.report({"taskArn": tarns[0], "lastStatus": "RUNNING", "healthStatus": "HEALTHY",
                        "attachments": [{"id": "a", "type": "ElasticNetworkInterface", "details": [
                            {"name": "privateIPv4Address", "value": "10.1.0.5"}, None]}],
                        "containers": [{"name": "web", "exitCode": None, "reason": 5, "runtimeId": "abc",
                                        "networkBindings": [{"bindIP": "0.0.0.0", "containerPort": 80,
                                                             "hostPort": "80", "protocol": "tcp"}],
                                        "networkInterfaces": [{"attachmentId": "a", "privateIpv4Address":
                                                               "10.1.0.5", "junk": None}],
                                        "healthStatus": "SORT_OF"}]})
    assert res["results"][0]["accepted"], res
    web = [c for c in api.call("DescribeTasks", {"tasks": [tarns[0]]})["tasks"][0]["containers"]
           if c["name"] == "web"][0]
    assert web["runtimeId"] == "abc" and web["networkInterfaces"] == [{"attachmentId": "a",
                                                                       "privateIpv4Address": "10.1.0.5"}]
    assert "reason" not in web and "exitCode" not in web and web["networkBindings"] == [], web
    api.call("DescribeTasks", {"tasks": tarns + ["0" * 32], "include": ["TAGS"]})
    # a task's tags are the same through RunTask, DescribeTasks and the tagging API
    # (its own, the task definition's by propagateTags, ECS's managed one by enableECSManagedTags)
    tags = {"run": "1", "app": "shapes", "aws:ecs:clusterName": "default"}
    assert {t["key"]: t["value"] for t in run["tasks"][0]["tags"]} == tags
    assert {t["key"]: t["value"] for t in api.call("ListTagsForResource", {"resourceArn": tarns[0]})["tags"]} == tags
    api.call("TagResource", {"resourceArn": tarns[0], "tags": [{"key": "more", "value": "2"}]})
    api.call("UntagResource", {"resourceArn": tarns[0], "tagKeys": ["run", "app", "aws:ecs:clusterName"]})
    assert api.call("DescribeTasks", {"tasks": [tarns[0]], "include": ["TAGS"]})["tasks"][0]["tags"] == \
        [{"key": "more", "value": "2"}]
    assert api.call("ListTagsForResource", {"resourceArn": tarns[0]})["tags"] == [{"key": "more", "value": "2"}]
    api.call("ListTasks", {"family": "shapes", "desiredStatus": "RUNNING", "maxResults": 5})
    api.call("ListTasks", {"containerInstance": ciarn, "startedBy": "shapes-it"})
    st = api.call("StartTask", {"taskDefinition": "shapes-vpc", "containerInstances": [ciarn],
                                "startedBy": "shapes-it", "group": "g", "tags": [{"key": "s", "value": "1"}],
                                "enableECSManagedTags": True,
                                "networkConfiguration": {"awsvpcConfiguration": {"subnets": ["subnet-1"]}}})
    tarns += [t["taskArn"] for t in st["tasks"]]
    api.call("StopTask", {"task": tarns[0], "reason": "shapes done"})
    agent.report({"taskArn": tarns[0], "lastStatus": "STOPPED",
                  "containers": [{"name": "db", "lastStatus": "STOPPED", "exitCode": 0},
                                 {"name": "web", "lastStatus": "STOPPED", "exitCode": 137}]})
    agent.report({"taskArn": tarns[-1], "lastStatus": "STOPPED", "stopCode": "WhoKnows",
                  "stoppedReason": "the agent's words"})
    st = api.call("DescribeTasks", {"tasks": tarns})["tasks"]
    assert [(t["stopCode"], t["stoppedReason"]) for t in st if t["taskArn"] == tarns[-1]] == \
        [("EssentialContainerExited", "the agent's words")]
    # tags
    api.call("TagResource", {"resourceArn": arn_of["cluster"], "tags": [{"key": "k", "value": "v"}]})
    api.call("ListTagsForResource", {"resourceArn": arn_of["cluster"]})
    api.call("UntagResource", {"resourceArn": arn_of["cluster"], "tagKeys": ["k"]})
    # services
    svc = api.call("CreateService", {
        "cluster": "default", "serviceName": "web", "taskDefinition": "shapes-vpc", "desiredCount": 1,
        "launchType": "EC2", "schedulingStrategy": "REPLICA", "clientToken": "tok-1",
        "deploymentConfiguration": {"maximumPercent": 200, "minimumHealthyPercent": 50,
                                    "deploymentCircuitBreaker": {"enable": True, "rollback": True}},
        "deploymentController": {"type": "ECS"},
        "placementConstraints": [{"type": "memberOf", "expression": "attribute:disk == ssd"}],
        "placementStrategy": [{"type": "spread", "field": "instanceId"}],
        "networkConfiguration": {"awsvpcConfiguration": {"subnets": ["subnet-1"], "assignPublicIp": "DISABLED"}},
        "healthCheckGracePeriodSeconds": 0, "enableECSManagedTags": True, "propagateTags": "SERVICE",
        "enableExecuteCommand": False, "tags": [{"key": "svc", "value": "web"}]})
    sarn = svc["service"]["serviceArn"]
    api.call("DescribeServices", {"services": ["web", "nope"], "include": ["TAGS"]})
    api.call("ListServices", {"launchType": "EC2", "schedulingStrategy": "REPLICA", "maxResults": 10})
    api.call("ListServicesByNamespace", {"namespace": "default.local"})
    api.call("UpdateService", {"service": "web", "desiredCount": 2, "forceNewDeployment": True,
                               "deploymentConfiguration": {"maximumPercent": 150, "minimumHealthyPercent": 100},
                               "healthCheckGracePeriodSeconds": 5,
                               "placementStrategy": [{"type": "binpack", "field": "cpu"}]})
    stasks = wait_for(lambda: api.call("ListTasks", {"serviceName": "web"})["taskArns"], what="service tasks")
    stags = api.call("DescribeTasks", {"tasks": stasks[:1], "include": ["TAGS"]})["tasks"][0]["tags"]
    assert {t["key"]: t["value"] for t in stags} == {"svc": "web", "aws:ecs:clusterName": "default",
                                                     "aws:ecs:serviceName": "web"}
    api.call("DescribeServices", {"services": [sarn]})
    api.call("ListTagsForResource", {"resourceArn": sarn})
    # task sets (EXTERNAL deployment controller)
    api.call("CreateService", {"serviceName": "ext", "desiredCount": 1,
                               "deploymentController": {"type": "EXTERNAL"}})
    ts = api.call("CreateTaskSet", {"service": "ext", "cluster": "default", "taskDefinition": "shapes-vpc",
                                    "externalId": "blue", "scale": {"value": 100, "unit": "PERCENT"},
                                    "launchType": "EC2", "clientToken": "ts-1",
                                    "tags": [{"key": "ts", "value": "1"}]})
    tsid = ts["taskSet"]["id"]
    api.call("DescribeTaskSets", {"service": "ext", "cluster": "default", "taskSets": [tsid, "ecs-svc/1"],
                                  "include": ["TAGS"]})
    api.call("UpdateTaskSet", {"service": "ext", "cluster": "default", "taskSet": tsid,
                               "scale": {"value": 50, "unit": "PERCENT"}})
    api.call("UpdateServicePrimaryTaskSet", {"service": "ext", "cluster": "default", "primaryTaskSet": tsid})
    api.call("DescribeServices", {"services": ["ext"]})
    api.call("DeleteTaskSet", {"service": "ext", "cluster": "default", "taskSet": tsid, "force": True})
    api.call("UpdateService", {"service": "ext", "desiredCount": 0})
    api.call("DeleteService", {"service": "ext"})
    api.call("DeleteService", {"service": "web", "force": True})
    api.call("DescribeServices", {"services": ["web", "ext"]})
    # a service re-created under the name of a deleted one starts without that one's tags
    # (record and tags are written together: its first tasks see the tags it was created with)
    def stopped():
        left = api.call("ListTasks", {"serviceName": "web", "desiredStatus": "STOPPED"})["taskArns"]
        if left:
            agent.report(*[{"taskArn": t, "lastStatus": "STOPPED", "containers": [
                {"name": "a", "lastStatus": "STOPPED", "exitCode": 0}]} for t in left])
        return api.call("DescribeServices", {"services": ["web"]})["services"][0]["status"] == "INACTIVE"
    wait_for(stopped, what="web INACTIVE")
    api.call("CreateService", {"serviceName": "web", "taskDefinition": "shapes-vpc", "desiredCount": 0})
    assert api.call("ListTagsForResource", {"resourceArn": sarn})["tags"] == []
    api.call("DeleteService", {"service": "web", "force": True})
    # teardown of what this test made, through the API
    api.call("DeregisterTaskDefinition", {"taskDefinition": "shapes:1"})
    api.call("ListTaskDefinitions", {"status": "INACTIVE"})
    api.call("DescribeTaskDefinition", {"taskDefinition": "shapes:1"})
    api.call("DeleteCluster", {"cluster": "shapes"})
    api.call("DescribeClusters", {"clusters": ["shapes"]})
    api.assert_conforming()


SER = "SerializationException"
BAD = ("ClientException", "InvalidParameterException")  # ECS answers either, by operation
C1 = [{"name": "a", "image": "busybox", "memory": 64}]


def td(**kw):
    body = {"family": "hostile", "containerDefinitions": C1}
    body.update(kw)
    return body


def cdef(**kw):
    c = dict(C1[0])
    c.update(kw)
    return td(containerDefinitions=[c])


# (operation, body, acceptable __types)
HOSTILE = [
    # JSON types the model does not have there
    ("CreateCluster", {"clusterName": 5}, (SER,)),
    ("CreateCluster", {"tags": {"k": "v"}}, (SER,)),
    ("RegisterTaskDefinition", td(containerDefinitions="x"), (SER,)),
    ("RegisterTaskDefinition", td(containerDefinitions=[5]), (SER,)),
    ("RegisterTaskDefinition", td(cpu=512), (SER,) + BAD),
    ("RegisterTaskDefinition", cdef(portMappings=[{"containerPort": "80"}]), (SER,)),
    ("RegisterTaskDefinition", cdef(environment=[{"name": 1, "value": "x"}]), (SER,)),
    ("RegisterTaskDefinition", cdef(environment={"A": "1"}), (SER,)),
    ("RegisterTaskDefinition", cdef(healthCheck={"command": ["CMD", "true"], "interval": "5"}), (SER,)),
    ("RegisterTaskDefinition", cdef(essential="yes"), (SER,)),
    ("RegisterTaskDefinition", cdef(memory=1.5), (SER,)),
    ("RegisterTaskDefinition", cdef(dockerLabels={"a": 1}), (SER,)),
    ("RegisterTaskDefinition", cdef(command="sleep 1"), (SER,)),
    ("RegisterTaskDefinition", cdef(ulimits=[{"name": "nofile", "softLimit": "1", "hardLimit": 2}]), (SER,)),
    ("RegisterTaskDefinition", cdef(logConfiguration={"logDriver": "json-file", "options": {"a": 1}}), (SER,)),
    ("RegisterTaskDefinition", cdef(mountPoints=[{"sourceVolume": 1, "containerPath": "/x"}]), (SER,)),
    ("RegisterTaskDefinition", cdef(dependsOn=[{"containerName": "a", "condition": 1}]), (SER,)),
    ("RegisterTaskDefinition", cdef(secrets=[{"name": "S"}]), BAD),
    ("RegisterTaskDefinition", td(volumes=[{"name": "v", "host": "x"}]), (SER,)),
    ("RegisterTaskDefinition", td(tags=[{"key": "k", "value": 1}]), (SER,)),
    ("RunTask", {"taskDefinition": "base", "count": "2"}, (SER,)),
    ("RunTask", {"taskDefinition": "base", "overrides": []}, (SER,)),
    ("RunTask", {"taskDefinition": "base", "overrides": {"containerOverrides": [{"name": "a", "cpu": "1"}]}},
     (SER,)),
    ("RunTask", {"taskDefinition": "base", "enableECSManagedTags": "true"}, (SER,)),
    ("RunTask", {"taskDefinition": "base", "placementConstraints": {"type": "distinctInstance"}}, (SER,)),
    ("ListTasks", {"maxResults": "10"}, (SER,)),
    ("DescribeTasks", {"tasks": "arn"}, (SER,)),
    ("DescribeClusters", {"clusters": [1]}, (SER,)),
    ("CreateService", {"serviceName": "h", "taskDefinition": "base", "desiredCount": "1"}, (SER,)),
    ("CreateService", {"serviceName": "h", "taskDefinition": "base", "desiredCount": 1,
                       "deploymentConfiguration": {"maximumPercent": "200"}}, (SER,)),
    ("UpdateService", {"service": "base-svc", "desiredCount": True}, (SER,)),
    # missing required members
    ("RegisterTaskDefinition", {"containerDefinitions": C1}, BAD),
    ("RegisterTaskDefinition", {"family": "hostile"}, BAD),
    ("RegisterTaskDefinition", td(containerDefinitions=[{"name": "a", "memory": 64}]), BAD),
    ("RegisterTaskDefinition", td(containerDefinitions=[{"image": "busybox", "memory": 64}]), BAD),
    ("RegisterTaskDefinition", td(containerDefinitions=[]), BAD),
    ("RunTask", {}, BAD),
    ("StartTask", {"taskDefinition": "base"}, BAD),
    ("StopTask", {}, BAD),
    ("DescribeTasks", {}, BAD),
    ("DescribeTaskDefinition", {}, BAD),
    ("DeregisterTaskDefinition", {}, BAD),
    ("CreateService", {"taskDefinition": "base", "desiredCount": 1}, BAD),
    ("UpdateService", {"desiredCount": 1}, BAD),
    ("DeleteService", {}, BAD),
    ("DescribeServices", {}, BAD),
    ("PutAttributes", {}, BAD),
    ("PutAttributes", {"attributes": [{"value": "x"}]}, BAD),
    ("ListAttributes", {}, BAD),
    ("TagResource", {"resourceArn": "arn:aws:ecs:us-east-1:123456789012:cluster/default"}, BAD),
    ("UntagResource", {"resourceArn": "arn:aws:ecs:us-east-1:123456789012:cluster/default"}, BAD),
    ("ListTagsForResource", {}, BAD),
    ("UpdateContainerInstancesState", {"status": "DRAINING"}, BAD),
    ("DescribeContainerInstances", {}, BAD),
    ("DeregisterContainerInstance", {}, BAD),
    ("CreateTaskSet", {"service": "ext-h", "cluster": "default"}, BAD),
    ("DescribeTaskSets", {"cluster": "default"}, BAD),
    ("DeleteCluster", {}, BAD),
    # values outside the model's enums
    ("RegisterTaskDefinition", td(networkMode="weird"), BAD),
    ("RegisterTaskDefinition", td(requiresCompatibilities=["MOON"]), BAD),
    ("RegisterTaskDefinition", td(pidMode="vm"), BAD),
    ("RegisterTaskDefinition", cdef(portMappings=[{"containerPort": 80, "protocol": "sctp"}]), BAD),
    ("RegisterTaskDefinition", cdef(dependsOn=[{"containerName": "a", "condition": "SOMETIMES"}]), BAD),
    ("RegisterTaskDefinition", cdef(ulimits=[{"name": "bogus", "softLimit": 1, "hardLimit": 2}]), BAD),
    ("RegisterTaskDefinition", cdef(logConfiguration={"logDriver": "bogus"}), BAD),
    ("RegisterTaskDefinition", td(placementConstraints=[{"type": "distinctInstance"}]), BAD),
    ("RunTask", {"taskDefinition": "base", "launchType": "MOON"}, BAD),
    ("RunTask", {"taskDefinition": "base", "propagateTags": "NOPE"}, BAD),
    ("RunTask", {"taskDefinition": "base", "placementStrategy": [{"type": "random-ish"}]}, BAD),
    ("RunTask", {"taskDefinition": "base", "placementConstraints": [{"type": "sameAs"}]}, BAD),
    ("ListTasks", {"desiredStatus": "BOGUS"}, BAD),
    ("ListTaskDefinitions", {"sort": "SIDEWAYS"}, BAD),
    ("ListTaskDefinitions", {"status": "GONE"}, BAD),
    ("ListTaskDefinitionFamilies", {"status": "GONE"}, BAD),
    ("ListContainerInstances", {"status": "ASLEEP"}, BAD),
    ("UpdateContainerInstancesState", {"containerInstances": ["x"], "status": "PAUSED"}, BAD),
    ("CreateService", {"serviceName": "h", "taskDefinition": "base", "schedulingStrategy": "SOMETIMES"}, BAD),
    ("CreateService", {"serviceName": "h", "taskDefinition": "base", "desiredCount": 1,
                       "deploymentController": {"type": "FOO"}}, BAD),
    ("CreateService", {"serviceName": "h", "taskDefinition": "base", "desiredCount": 1,
                       "launchType": "MOON"}, BAD),
    ("ListServices", {"schedulingStrategy": "SOMETIMES"}, BAD),
    ("DescribeClusters", {"include": ["NOPE"]}, BAD),
    ("DescribeTasks", {"tasks": ["0" * 32], "include": ["NOPE"]}, BAD),
    ("ListAttributes", {"targetType": "cluster"}, BAD),
    ("CreateTaskSet", {"service": "ext-h", "cluster": "default", "taskDefinition": "base",
                       "scale": {"value": 5, "unit": "BYTES"}},
     BAD),
    # values outside the allowed ranges
    ("ListClusters", {"maxResults": 0}, BAD),
    ("ListClusters", {"maxResults": 101}, BAD),
    ("ListClusters", {"maxResults": -1}, BAD),
    ("ListClusters", {"maxResults": 2 ** 40}, BAD + (SER,)),
    ("ListTasks", {"maxResults": 101}, BAD),
    ("ListTaskDefinitions", {"maxResults": 0}, BAD),
    ("ListServices", {"maxResults": 101}, BAD),
    ("ListContainerInstances", {"maxResults": 101}, BAD),
    ("ListAttributes", {"targetType": "container-instance", "maxResults": 101}, BAD),
    ("RunTask", {"taskDefinition": "base", "count": 0}, BAD),
    ("RunTask", {"taskDefinition": "base", "count": 11}, BAD),
    ("RunTask", {"taskDefinition": "base", "count": -1}, BAD),
    ("CreateService", {"serviceName": "h", "taskDefinition": "base", "desiredCount": -1}, BAD),
    ("CreateService", {"serviceName": "h", "taskDefinition": "base", "desiredCount": 1,
                       "deploymentConfiguration": {"maximumPercent": 50}}, BAD),
    ("CreateService", {"serviceName": "h", "taskDefinition": "base", "desiredCount": 1,
                       "deploymentConfiguration": {"minimumHealthyPercent": -5}}, BAD),
    ("CreateService", {"serviceName": "h", "taskDefinition": "base", "desiredCount": 1,
                       "healthCheckGracePeriodSeconds": -1}, BAD),
    ("UpdateService", {"service": "base-svc", "desiredCount": -3}, BAD),
    ("RegisterTaskDefinition", cdef(portMappings=[{"containerPort": 70000}]), BAD),
    ("RegisterTaskDefinition", cdef(portMappings=[{"containerPort": 80, "hostPort": -1}]), BAD),
    ("RegisterTaskDefinition", cdef(memory=0), BAD),
    ("RegisterTaskDefinition", cdef(memory=-64), BAD),
    ("RegisterTaskDefinition", cdef(cpu=-1), BAD),
    ("RegisterTaskDefinition", cdef(healthCheck={"command": ["CMD", "true"], "retries": 100}), BAD),
    ("RegisterTaskDefinition", cdef(healthCheck={"command": ["CMD", "true"], "interval": 1}), BAD),
    ("RegisterTaskDefinition", cdef(healthCheck={"command": ["CMD", "true"], "timeout": 0}), BAD),
    ("RegisterTaskDefinition", cdef(healthCheck={"command": []}), BAD),
    ("RegisterTaskDefinition", cdef(ulimits=[{"name": "nofile", "softLimit": 10, "hardLimit": 5}]), BAD),
    ("RegisterTaskDefinition", cdef(stopTimeout=-1), BAD),
    ("RegisterTaskDefinition", td(cpu="lots"), BAD),
    ("RegisterTaskDefinition", td(memory="-1"), BAD),
    ("UpdateTaskSet", {"service": "ext-h", "cluster": "default", "taskSet": "ecs-svc/1",
                       "scale": {"value": 101, "unit": "PERCENT"}},
     BAD),
    # names, references, identifiers
    ("CreateCluster", {"clusterName": "a" * 256}, BAD),
    ("CreateCluster", {"clusterName": "a b"}, BAD),
    ("CreateCluster", {"clusterName": "a\u0000b"}, BAD + (SER,)),
    ("CreateCluster", {"clusterName": ""}, BAD),
    ("RegisterTaskDefinition", td(family="f" * 256), BAD),
    ("RegisterTaskDefinition", td(family="a/b"), BAD),
    ("RegisterTaskDefinition", cdef(name="n" * 256), BAD),
    ("RegisterTaskDefinition", cdef(name="a b"), BAD),
    ("RegisterTaskDefinition", td(containerDefinitions=[C1[0], C1[0]]), BAD),
    ("RegisterTaskDefinition", cdef(mountPoints=[{"sourceVolume": "missing", "containerPath": "/x"}]), BAD),
    ("RegisterTaskDefinition", cdef(dependsOn=[{"containerName": "missing", "condition": "START"}]), BAD),
    ("RegisterTaskDefinition", cdef(dependsOn=[{"containerName": "a", "condition": "START"}]), BAD),
    ("RegisterTaskDefinition", cdef(links=["b"], volumesFrom=[{"sourceContainer": "missing"}]), BAD),
    ("RegisterTaskDefinition", td(volumes=[{"name": "v"}, {"name": "v"}]), BAD),
    ("RegisterTaskDefinition", td(containerDefinitions=[dict(C1[0], name=f"c{i}") for i in range(11)]), BAD),
    ("RegisterTaskDefinition", cdef(environment=[{"name": f"E{i}", "value": "x" * 100} for i in range(2000)]),
     BAD),
    ("RegisterTaskDefinition", td(tags=[{"key": f"k{i}", "value": "v"} for i in range(51)]), BAD),
    ("RegisterTaskDefinition", td(tags=[{"key": "k" * 129, "value": "v"}]), BAD),
    ("RegisterTaskDefinition", td(tags=[{"key": "aws:x", "value": "v"}]), BAD),
    ("RunTask", {"cluster": "nope", "taskDefinition": "base"}, ("ClusterNotFoundException",)),
    ("RunTask", {"taskDefinition": "nope:1"}, BAD),
    ("RunTask", {"taskDefinition": "base:99"}, BAD),
    ("RunTask", {"taskDefinition": "base:x"}, BAD),
    ("RunTask", {"taskDefinition": "arn:aws:ecs:us-east-1:1:task-definition"}, BAD),
    ("RunTask", {"taskDefinition": "base", "overrides": {"containerOverrides": [{"name": "zz"}]}}, BAD),
    ("RunTask", {"taskDefinition": "base", "startedBy": "s" * 129}, BAD),
    ("RunTask", {"taskDefinition": "base", "group": "g" * 256}, BAD),
    ("RunTask", {"taskDefinition": "base", "tags": [{"key": f"k{i}", "value": "v"} for i in range(51)]}, BAD),
    ("StartTask", {"taskDefinition": "base", "containerInstances": []}, BAD),
    ("StartTask", {"taskDefinition": "base", "containerInstances": ["x"] * 11}, BAD),
    ("StopTask", {"task": "not-a-task"}, BAD),
    ("StopTask", {"task": "arn:aws:ecs:us-east-1:123456789012:task/default/" + "0" * 32}, BAD),
    ("StopTask", {"cluster": "nope", "task": "0" * 32}, ("ClusterNotFoundException",)),
    ("DescribeTasks", {"tasks": ["x"] * 101}, BAD),
    ("DescribeTasks", {"cluster": "nope", "tasks": ["x"]}, ("ClusterNotFoundException",)),
    ("DescribeClusters", {"clusters": ["x"] * 101}, BAD),
    ("DescribeServices", {"services": ["x"] * 11}, BAD),
    ("DescribeServices", {"cluster": "nope", "services": ["x"]}, ("ClusterNotFoundException",)),
    ("DescribeContainerInstances", {"containerInstances": ["x"] * 101}, BAD),
    ("DescribeTaskDefinition", {"taskDefinition": "nope"}, BAD),
    ("DescribeTaskDefinition", {"taskDefinition": "base:0"}, BAD),
    ("DeregisterTaskDefinition", {"taskDefinition": "base"}, BAD),
    ("DeregisterTaskDefinition", {"taskDefinition": "nope:1"}, BAD),
    ("CreateService", {"serviceName": "h", "taskDefinition": "nope:1", "desiredCount": 1}, BAD),
    ("CreateService", {"serviceName": "s" * 256, "taskDefinition": "base", "desiredCount": 1}, BAD),
    ("CreateService", {"serviceName": "base-svc", "taskDefinition": "base", "desiredCount": 1}, BAD),
    ("CreateService", {"cluster": "nope", "serviceName": "h", "taskDefinition": "base", "desiredCount": 1},
     ("ClusterNotFoundException",)),
    ("CreateService", {"serviceName": "h", "desiredCount": 1}, BAD),
    ("CreateService", {"serviceName": "h", "taskDefinition": "base", "schedulingStrategy": "DAEMON",
                       "desiredCount": 2}, BAD),
    ("CreateService", {"serviceName": "h", "taskDefinition": "base", "desiredCount": 1,
                       "loadBalancers": [{"targetGroupArn": "arn:aws:elasticloadbalancing:us-east-1:"
                                          "123456789012:targetgroup/none/0123456789abcdef",
                                          "containerName": "a", "containerPort": 80}]}, BAD),
    ("CreateService", {"serviceName": "h", "taskDefinition": "base", "desiredCount": 1,
                       "loadBalancers": [{"containerName": "a", "containerPort": 80}]}, BAD),
    ("CreateService", {"serviceName": "h", "taskDefinition": "base", "schedulingStrategy": "DAEMON",
                       "placementStrategy": [{"type": "spread", "field": "instanceId"}]}, BAD),
    ("CreateService", {"serviceName": "h", "taskDefinition": "base", "desiredCount": 1,
                       "networkConfiguration": {"awsvpcConfiguration": {"subnets": ["s"],
                                                                        "assignPublicIp": "MAYBE"}}}, BAD),
    ("CreateService", {"serviceName": "h", "taskDefinition": "base", "desiredCount": 1,
                       "tags": [{"key": "aws:x", "value": "v"}]}, BAD),
    ("UpdateService", {"service": "base-svc", "deploymentConfiguration": {"maximumPercent": 50}}, BAD),
    ("UpdateService", {"service": "base-svc", "deploymentConfiguration": {
        "deploymentCircuitBreaker": {"enable": "yes", "rollback": True}}}, (SER,)),
    ("UpdateService", {"service": "base-svc", "placementConstraints": [{"type": "memberOf"}]}, BAD),
    ("UpdateService", {"service": "nope", "desiredCount": 1}, ("ServiceNotFoundException",)),
    ("UpdateService", {"service": "base-svc", "taskDefinition": "nope:3"}, BAD),
    ("DeleteService", {"service": "nope"}, ("ServiceNotFoundException",)),
    ("ListTasks", {"serviceName": "nope"}, ("ServiceNotFoundException",)),
    ("ListTasks", {"serviceName": "a/../b"}, ("ServiceNotFoundException",)),
    ("DeleteService", {"service": "base-svc"}, BAD),  # desiredCount > 0 without force
    ("UpdateContainerInstancesState", {"containerInstances": ["x"] * 11, "status": "DRAINING"}, BAD),
    ("DeregisterContainerInstance", {"containerInstance": "0" * 32}, BAD),
    ("PutAttributes", {"attributes": [{"name": "a", "value": "v", "targetId": "0" * 32}]},
     ("TargetNotFoundException",)),
    ("PutAttributes", {"attributes": [{"name": "a" * 129, "value": "v", "targetId": "0" * 32}]}, BAD),
    ("TagResource", {"resourceArn": "arn:bad", "tags": [{"key": "k", "value": "v"}]}, BAD),
    ("TagResource", {"resourceArn": "arn:aws:ecs:us-east-1:123456789012:cluster/nope",
                     "tags": [{"key": "k", "value": "v"}]}, BAD + ("ResourceNotFoundException",
                                                                   "ClusterNotFoundException")),
    ("TagResource", {"resourceArn": "arn:aws:ecs:us-east-1:123456789012:cluster/default",
                     "tags": [{"key": "k", "value": "v" * 257}]}, BAD),
    ("TagResource", {"resourceArn": "arn:aws:ecs:us-east-1:123456789012:cluster/default", "tags": []}, BAD),
    ("ListTagsForResource", {"resourceArn": "arn:aws:ecs:us-east-1:123456789012:task/default/" + "0" * 32},
     BAD + ("ResourceNotFoundException",)),
    ("ListTagsForResource", {"resourceArn": "nonsense"}, BAD),
    ("CreateTaskSet", {"service": "base-svc", "cluster": "default", "taskDefinition": "base"}, BAD),
    ("CreateTaskSet", {"service": "nope", "cluster": "default", "taskDefinition": "base"},
     ("ServiceNotFoundException",)),
    ("UpdateTaskSet", {"service": "ext-h", "cluster": "default", "taskSet": "nope",
                       "scale": {"value": 5, "unit": "PERCENT"}},
     ("TaskSetNotFoundException",)),
    ("DeleteTaskSet", {"service": "ext-h", "cluster": "default", "taskSet": "nope"}, ("TaskSetNotFoundException",)),
    ("UpdateServicePrimaryTaskSet", {"service": "ext-h", "cluster": "default", "primaryTaskSet": "nope"},
     ("TaskSetNotFoundException",)),
    ("DeleteCluster", {"cluster": "nope"}, ("ClusterNotFoundException",)),
    ("DeleteCluster", {"cluster": "default"}, ("ClusterContainsContainerInstancesException",
                                               "ClusterContainsServicesException",
                                               "ClusterContainsTasksException")),
    # huge and odd identifiers
    ("RunTask", {"cluster": "c" * 100000, "taskDefinition": "base"}, ("ClusterNotFoundException",)),
    ("RunTask", {"taskDefinition": "t" * 100000}, BAD),
    ("RunTask", {"taskDefinition": "base:" + "9" * 30}, BAD),
    ("DescribeTasks", {"tasks": ["x" * 100000]}, ()),
    ("StopTask", {"task": "../../clusters/default"}, BAD),
    ("StopTask", {"task": "arn:aws:ecs:us-east-1:123456789012:task/default/../../x"}, BAD),
    ("UpdateService", {"service": "s" * 100000, "desiredCount": 1}, ("ServiceNotFoundException",)),
    ("UpdateService", {"service": "../base-svc", "desiredCount": 1}, ("ServiceNotFoundException",) + BAD),
    ("DescribeServices", {"services": ["s" * 100000]}, ()),
    ("DescribeContainerInstances", {"containerInstances": ["../../x"]}, ()),
    ("ListTagsForResource", {"resourceArn": "arn:aws:ecs:us-east-1:123456789012:cluster/" + "c" * 100000},
     BAD + ("ResourceNotFoundException",)),
    ("CreateCluster", {"clusterName": "\u00fcber"}, BAD),
    ("CreateCluster", {"clusterName": ["default"]}, (SER,)),
    ("DescribeClusters", {"clusters": ["c" * 100000]}, ()),
    # pagination tokens
    ("ListClusters", {"nextToken": "garbage"}, BAD),
    ("ListClusters", {"nextToken": "x" * 10000}, BAD),
    ("ListTasks", {"nextToken": "\u00ff"}, BAD),
    ("ListTaskDefinitions", {"nextToken": "AAAA"}, BAD),
    ("ListServices", {"nextToken": "-1"}, BAD),
    ("ListContainerInstances", {"nextToken": "{}"}, BAD),
]


def _snapshot(api):
    out = {}
    out["clusters"] = sorted(api.call("ListClusters")["clusterArns"])
    out["families"] = sorted(api.call("ListTaskDefinitionFamilies", {"status": "ALL"})["families"])
    out["taskdefs"] = sorted(api.call("ListTaskDefinitions", {"status": "ACTIVE"})["taskDefinitionArns"])
    out["services"] = sorted(api.call("ListServices")["serviceArns"])
    out["tasks"] = sorted(api.call("ListTasks")["taskArns"])
    ci = api.call("ListContainerInstances")["containerInstanceArns"]
    out["instances"] = api.call("DescribeContainerInstances", {"containerInstances": ci})["containerInstances"]
    for i in out["instances"]:
        i.pop("agentUpdateStatus", None)
    out["tags"] = api.call("ListTagsForResource", {"resourceArn": api.call(
        "DescribeClusters")["clusters"][0]["clusterArn"]})["tags"]
    return out


def test_hostile_input_gets_ecs_errors_and_changes_nothing(env):
    api, _ = env
    api.call("RegisterTaskDefinition", {"family": "base", "containerDefinitions": C1})
    api.call("CreateService", {"serviceName": "base-svc", "taskDefinition": "base", "desiredCount": 1})
    api.call("CreateService", {"serviceName": "ext-h", "desiredCount": 0,
                               "deploymentController": {"type": "EXTERNAL"}})
    # the service's task is the controller's to start: settled before the snapshot
    wait_for(lambda: api.call("ListTasks", {"serviceName": "base-svc"})["taskArns"], what="base-svc's task")
    before = _snapshot(api)
    wrong = []
    generic = {"SerializationException", "UnknownOperationException"}  # the protocol's, not in the model
    for op, body, types in HOSTILE:
        if not types:  # answered, the odd reference among the failures
            code, ans = api.post(TARGET + op, body)
            if code != 200 or not ans.get("failures"):
                wrong.append(f"{op} {json.dumps(body)[:160]}: {code} {str(ans)[:300]}")
            continue
        if not set(types) & (set(error_codes("ecs", op)) | generic):
            wrong.append(f"{op}: test expects {types}, not errors of the operation in the model")
        try:
            api.fail(op, body, types[0]) if len(types) == 1 else None
            if len(types) > 1:
                code, ans = api.post(TARGET + op, body)
                assert code == 400 and isinstance(ans, dict) and ans.get("__type") in types and \
                    ans["__type"] in set(error_codes("ecs", op)) | generic and \
                    isinstance(ans.get("message"), str) and ans["message"], f"{op}: {code} {str(ans)[:300]}"
        except AssertionError as e:
            wrong.append(f"{op} {json.dumps(body)[:160]}: {str(e).splitlines()[0][:300]}")
    after = _snapshot(api)
    api.assert_conforming()
    assert not wrong, f"{len(wrong)} of {len(HOSTILE)} hostile requests misanswered:\n  " + "\n  ".join(wrong)
    for k in before:
        assert after[k] == before[k], f"{k} changed by refused requests: {before[k]} -> {after[k]}"


def test_protocol_errors(env):
    api, _ = env
    families = api.call("ListTaskDefinitionFamilies", {"status": "ALL"})["families"]
    cases = [
        (TARGET + "RegisterTaskDefinition", '{"family": "p", ', "SerializationException"),
        (TARGET + "RegisterTaskDefinition", '[{"family": "p"}]', "SerializationException"),
        (TARGET + "RegisterTaskDefinition", '"family"', "SerializationException"),
        (TARGET + "RegisterTaskDefinition", '{"family": "p", "family": "q"}', "SerializationException"),
        (TARGET + "RegisterTaskDefinition", "[" * 100000 + "]" * 100000, "SerializationException"),
        (TARGET + "RegisterTaskDefinition", b"\xff\xfe{}", "SerializationException"),
        (TARGET + "Nope", "{}", "UnknownOperationException"),
        (TARGET, "{}", "UnknownOperationException"),
        ("AmazonEC2ContainerServiceV20141113", "{}", "UnknownOperationException"),
        ("Foo.CreateCluster", "{}", "UnknownOperationException"),
        (TARGET + "createCluster", "{}", "UnknownOperationException"),
    ]
    wrong = []
    for target, body, etype in cases:
        code, ans = api.post(target, body)
        if code != 400 or not isinstance(ans, dict) or ans.get("__type") != etype or not ans.get("message"):
            wrong.append(f"{target} {str(body)[:60]}: {code} {str(ans)[:200]}")
    # a body over the server's limit is refused whole, before any operation
    code, ans = api.post(TARGET + "RegisterTaskDefinition", json.dumps(
        {"family": "p", "containerDefinitions": [{"name": "a", "image": "x" * (5 << 20), "memory": 64}]}))
    if code not in (400, 413):
        wrong.append(f"5 MiB body: {code} {str(ans)[:200]}")
    assert not wrong, "\n  ".join(wrong)
    assert api.call("ListTaskDefinitionFamilies", {"status": "ALL"})["families"] == families
