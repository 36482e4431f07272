"""The native cluster CLI (`berth cluster|node|taskdef|task`) against a real `berth server` and
`berth agent`, configured with the AWS conventions, with Debian's aws CLI as the oracle.

One server and one agent (--memory 512, --bridge none, its own cgroup parent) serve the whole
module; tests that change shared state put it back. The node tests that remove the node run last.
"""
import datetime
import json
import os
import shutil
import subprocess
import tempfile

import boto3
import botocore.config
import pytest

from cluster_helpers import Agent, Server, wait_for
from conftest import TMP_PREFIX, run, unmount_all

TASKDEF = {
    "family": "cli-sleep",
    "networkMode": "none",
    "containerDefinitions": [{"name": "main", "image": "busybox:latest", "memory": 32, "essential": True,
                              "command": ["sleep", "3600"], "environment": [{"name": "A", "value": "1"}],
                              "stopTimeout": 2}],
}


@pytest.fixture(scope="module")
def cluster(berth_bin, busybox):
    if os.geteuid() != 0:
        pytest.skip("berth agent needs root")
    base = tempfile.mkdtemp(prefix=TMP_PREFIX + "cluster-cli-")
    server = agent = None
    try:
        server = Server(berth_bin, base)
        agent = Agent(berth_bin, base, server, cpu=1024, memory=512,
                      attributes=["ecs.availability-zone=az-cli"])
        agent.wait_socket()
        agent.docker("load", "-i", busybox["docker_archive"])
        c = Cluster(berth_bin, base, server, agent)
        wait_for(lambda: c.aws("list-container-instances")["containerInstanceArns"], what="the node")
        yield c
    finally:
        if agent and agent.proc.poll() is None and server:
            try:  # let the agent stop what it runs before it goes
                Cluster(berth_bin, base, server, agent).stop_all_tasks()
            except AssertionError:
                pass
        if agent:
            agent.stop()
        if server:
            server.stop()
        unmount_all(base)
        shutil.rmtree(base, ignore_errors=True)


class Cluster:
    def __init__(self, binary, base, server, agent):
        self.bin, self.base, self.server, self.agent = binary, base, server, agent

    def berth(self, *args, check=True, env=None, input=None):
        return run([self.bin, *map(str, args)], check=check, env=env or self.server.env(), input=input)

    def berth_json(self, *args):
        return json.loads(self.berth(*args, "--format", "json").stdout)

    def aws(self, *args, **kw):
        return self.server.aws(*args, **kw)

    def boto(self):
        return boto3.client("ecs", region_name=self.server.region, endpoint_url=self.server.endpoint,
                            verify=self.server.ca, aws_access_key_id=self.key("aws_access_key_id"),
                            aws_secret_access_key=self.key("aws_secret_access_key"),
                            config=botocore.config.Config(retries={"max_attempts": 1}))

    def key(self, name):
        with open(self.server.credentials) as f:
            for line in f:
                k, _, v = line.partition("=")
                if k.strip() == name:
                    return v.strip()
        raise AssertionError(f"{name} not in {self.server.credentials}")

    def taskdef(self, td=None, **changes):
        body = json.loads(json.dumps(td or TASKDEF))
        body.update(changes)
        path = os.path.join(self.base, f"td-{body['family']}.json")
        with open(path, "w") as f:
            json.dump(body, f)
        return self.berth("taskdef", "register", "-f", path).stdout.strip()

    def node_id(self):
        arn = self.aws("list-container-instances")["containerInstanceArns"][0]
        return arn.rsplit("/", 1)[1]

    def stop_all_tasks(self):
        for arn in self.aws("list-tasks")["taskArns"]:
            self.aws("stop-task", "--task", arn)
        arns = self.aws("list-tasks")["taskArns"]
        if arns:
            run([AWS_BIN, "ecs", "wait", "tasks-stopped", "--tasks", *arns, "--endpoint-url",
                 self.server.endpoint], env=self.server.env(), timeout=300)


AWS_BIN = "/usr/bin/aws"


# berth server's Task.containers[] carry "essential", which ECS's Container shape does not have.
EXTRA_FIELDS = {"essential", "berthPlacement"}


def same(mine, theirs):
    """berth prints the API's JSON (timestamps in epoch seconds); the aws CLI turns timestamps
    into ISO 8601 strings. Compare with both as epoch milliseconds, everything else exactly.
    Returns the differing paths (empty: the same), so a failing assert shows them. Fields the
    server sends beyond botocore's model are dropped by the aws CLI; EXTRA_FIELDS lists them."""
    def norm(v, key=""):
        if isinstance(v, dict):
            return {k: norm(x, k) for k, x in v.items()}
        if isinstance(v, list):
            return [norm(x) for x in v]
        if key.endswith("At") and isinstance(v, str):
            return round(datetime.datetime.fromisoformat(v).timestamp() * 1000)
        if key.endswith("At") and isinstance(v, (int, float)):
            return round(v * 1000)
        return v

    diffs = []

    def walk(a, b, path):
        if isinstance(a, dict) and isinstance(b, dict):
            for k in sorted(set(a) | set(b)):
                if k in EXTRA_FIELDS and k not in b:
                    continue
                walk(a.get(k), b.get(k), f"{path}.{k}")
        elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
            for i, (x, y) in enumerate(zip(a, b)):
                walk(x, y, f"{path}[{i}]")
        elif a != b:
            diffs.append(f"{path}: {a!r} != {b!r}")
    walk(norm(mine), norm(theirs), "")
    return diffs


# ---- clusters ----

def test_cluster_ls_json_matches_aws(cluster):
    assert cluster.berth_json("cluster", "ls") == cluster.aws("list-clusters")


def test_cluster_ls_table_shows_counts(cluster):
    out = cluster.berth("cluster", "ls").stdout.splitlines()
    assert out[0].split() == ["NAME", "STATUS", "NODES", "RUNNING", "PENDING"]
    row = next(line.split() for line in out[1:] if line.split()[0] == "default")
    assert row[1] == "ACTIVE" and row[2] == "1"


def test_cluster_create_inspect_rm(cluster):
    arn = cluster.berth("cluster", "create", "cli-c1", "--tag", "team=blue").stdout.strip()
    try:
        assert arn.endswith(":cluster/cli-c1")
        described = cluster.aws("describe-clusters", "--clusters", "cli-c1", "--include", "TAGS")
        assert described["clusters"][0]["clusterArn"] == arn
        assert {"key": "team", "value": "blue"} in described["clusters"][0]["tags"]
        assert not same(cluster.berth_json("cluster", "inspect", "cli-c1"), described)
        human = cluster.berth("cluster", "inspect", "cli-c1").stdout
        assert "Status:          ACTIVE" in human and "team=blue" in human
        assert "cli-c1" in cluster.berth("cluster", "ls", "--format", "{{.clusterName}}").stdout.split()
    finally:
        assert cluster.berth("cluster", "rm", "cli-c1").stdout.strip() == "cli-c1"
    assert arn not in cluster.aws("list-clusters")["clusterArns"]


def test_cluster_rm_unknown_prints_type_and_message(cluster):
    p = cluster.berth("cluster", "rm", "cli-nope", check=False)
    assert p.returncode == 1
    assert p.stderr.strip() == "berth: ClusterNotFoundException: Cluster not found."
    a = cluster.aws("delete-cluster", "--cluster", "cli-nope", check=False)
    assert a.returncode != 0 and "(ClusterNotFoundException)" in a.stderr and "Cluster not found." in a.stderr


def test_ls_follows_next_token(cluster):
    """ListClusters pages at 100: 105 clusters need two pages; both CLIs see all of them."""
    ecs = cluster.boto()
    names = [f"cli-page-{i:03d}" for i in range(105)]
    try:
        for n in names:
            ecs.create_cluster(clusterName=n)
        first = ecs.list_clusters()
        assert "nextToken" in first and len(first["clusterArns"]) == 100
        mine = cluster.berth_json("cluster", "ls")
        assert mine == cluster.aws("list-clusters")
        assert sum(a.rsplit("/", 1)[1] in names for a in mine["clusterArns"]) == 105
        table = cluster.berth("cluster", "ls").stdout.split()
        assert all(n in table for n in names)
    finally:
        for n in names:
            ecs.delete_cluster(cluster=n)


# ---- configuration conventions ----

def test_credentials_from_home_profile_and_service_endpoint(cluster, tmp_path):
    """~/.aws/credentials + ~/.aws/config found through HOME; AWS_PROFILE; AWS_ENDPOINT_URL_ECS wins."""
    aws_dir = tmp_path / ".aws"
    aws_dir.mkdir()
    (aws_dir / "credentials").write_text(
        "[default]\naws_access_key_id = AKIAWRONG\naws_secret_access_key = wrong\n"
        f"[ops]\naws_access_key_id = {cluster.key('aws_access_key_id')}\n"
        f"aws_secret_access_key = {cluster.key('aws_secret_access_key')}\n")
    (aws_dir / "config").write_text(f"[profile ops]\nregion = {cluster.server.region}\n"
                                    f"ca_bundle = {cluster.server.ca}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(HOME=str(tmp_path), AWS_PROFILE="ops", AWS_ENDPOINT_URL="https://127.0.0.1:1",
               AWS_ENDPOINT_URL_ECS=cluster.server.endpoint)
    p = cluster.berth("cluster", "ls", "--format", "json", env=env)
    assert json.loads(p.stdout) == cluster.aws("list-clusters")
    # --profile and --endpoint flags beat the environment
    env.update(AWS_PROFILE="default", AWS_ENDPOINT_URL_ECS="https://127.0.0.1:1")
    p = cluster.berth("cluster", "ls", "--profile", "ops", "--endpoint", cluster.server.endpoint, env=env)
    assert "default" in p.stdout
    # the default profile's key is unknown to the server
    p = cluster.berth("cluster", "ls", "--endpoint", cluster.server.endpoint, "--ca-bundle", cluster.server.ca,
                      env=env, check=False)
    assert p.returncode == 1
    assert p.stderr.startswith("berth: UnrecognizedClientException: ")


def test_env_keys_session_token_and_wrong_secret(cluster):
    env = cluster.server.env(AWS_SHARED_CREDENTIALS_FILE="/nonexistent",
                             AWS_ACCESS_KEY_ID=cluster.key("aws_access_key_id"),
                             AWS_SECRET_ACCESS_KEY=cluster.key("aws_secret_access_key"))
    assert cluster.berth("cluster", "ls", env=env).returncode == 0
    env["AWS_SECRET_ACCESS_KEY"] = "not-the-secret"
    p = cluster.berth("cluster", "ls", env=env, check=False)
    assert p.returncode == 1 and p.stderr.startswith("berth: InvalidSignatureException: ")
    a = run([AWS_BIN, "ecs", "list-clusters", "--endpoint-url", cluster.server.endpoint], env=env, check=False)
    assert a.returncode != 0 and "InvalidSignatureException" in a.stderr


def test_config_errors(cluster):
    p = cluster.berth("cluster", "ls", check=False,
                      env=cluster.server.env(AWS_SHARED_CREDENTIALS_FILE="/nonexistent", HOME="/nonexistent"))
    assert p.returncode == 1 and "unable to locate credentials" in p.stderr
    p = cluster.berth("cluster", "ls", check=False, env=cluster.server.env(AWS_PROFILE="ghost"))
    assert p.returncode == 1 and "ghost" in p.stderr
    p = cluster.berth("cluster", "ls", "--region", "eu-west-1", check=False)
    assert p.returncode == 1 and "InvalidSignatureException" in p.stderr
    # without the cluster's CA bundle the server's certificate does not verify
    p = cluster.berth("cluster", "ls", check=False, env=cluster.server.env(AWS_CA_BUNDLE=None))
    assert p.returncode == 1 and p.stderr.startswith("berth: ListClusters: ")


def test_usage_errors_exit_125(cluster):
    for args in (["task", "run"], ["task", "run", "x", "--count", "0"], ["node", "bogus"],
                 ["cluster", "create"], ["taskdef", "register"], ["task", "ls", "--no-such-flag"],
                 ["task", "run", "x", "--placement-strategy", "field=x"], ["taskdef", "rm", "family-only"]):
        p = cluster.berth(*args, check=False)
        assert p.returncode == 125, (args, p.stderr)
    p = cluster.berth("task", "run", "--help")
    assert p.returncode == 0 and "--placement-constraint" in p.stdout and "--wait" in p.stdout


# ---- task definitions ----

def test_taskdef_register_ls_inspect_rm(cluster):
    arn = cluster.taskdef(family="cli-td")
    arn2 = cluster.berth("taskdef", "register", "-f", "-",
                         input=json.dumps(dict(TASKDEF, family="cli-td"))).stdout.strip()
    assert arn.endswith(":task-definition/cli-td:1") and arn2.endswith(":task-definition/cli-td:2")
    assert (cluster.berth_json("taskdef", "ls", "--family-prefix", "cli-td")
            == cluster.aws("list-task-definitions", "--family-prefix", "cli-td"))
    table = cluster.berth("taskdef", "ls", "--family-prefix", "cli-td").stdout.splitlines()
    assert table[0].split() == ["FAMILY", "REVISION", "ARN"]
    assert [line.split()[:2] for line in table[1:]] == [["cli-td", "1"], ["cli-td", "2"]]
    mine = cluster.berth_json("taskdef", "inspect", "cli-td:1")
    theirs = cluster.aws("describe-task-definition", "--task-definition", "cli-td:1", "--include", "TAGS")
    assert not same(mine, theirs)
    human = cluster.berth("taskdef", "inspect", "cli-td").stdout
    assert "Revision:        2" in human and "busybox:latest" in human
    assert cluster.berth("taskdef", "rm", "cli-td:1").stdout.strip() == arn
    assert cluster.aws("describe-task-definition", "--task-definition", arn)["taskDefinition"]["status"] == "INACTIVE"
    assert cluster.berth_json("taskdef", "ls", "--family-prefix", "cli-td")["taskDefinitionArns"] == [arn2]
    cluster.berth("taskdef", "rm", arn2)


def test_taskdef_register_yaml(cluster, tmp_path):
    y = tmp_path / "td.yaml"
    y.write_text("# the same task definition in YAML\n"
                 "family: cli-yaml\n"
                 "networkMode: none\n"
                 "containerDefinitions:\n"
                 "  - name: main\n"
                 "    image: busybox:latest\n"
                 "    memory: 32\n"
                 "    essential: true\n"
                 "    command: [sleep, '3600']\n"
                 "    environment:\n"
                 "      - {name: A, value: '1'}\n"
                 "    stopTimeout: 2\n")
    arn = cluster.berth("taskdef", "register", "-f", str(y)).stdout.strip()
    try:
        td = cluster.aws("describe-task-definition", "--task-definition", arn)["taskDefinition"]
        ref = cluster.aws("register-task-definition", "--cli-input-json",
                          json.dumps(dict(TASKDEF, family="cli-yaml-ref")))["taskDefinition"]
        assert td["containerDefinitions"] == ref["containerDefinitions"]
        assert td["networkMode"] == "none"
        cluster.aws("deregister-task-definition", "--task-definition", ref["taskDefinitionArn"])
    finally:
        cluster.berth("taskdef", "rm", arn)
    y.write_text("family: x\nfamily: y\n")
    p = cluster.berth("taskdef", "register", "-f", str(y), check=False)
    assert p.returncode == 1 and "line 2" in p.stderr


def test_taskdef_register_refusals(cluster, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"family": "cli-bad", "containerDefinitions": [{"name": "x", "memory": 8}]}))
    p = cluster.berth("taskdef", "register", "-f", str(bad), check=False)
    assert p.returncode == 1 and p.stderr.startswith("berth: ClientException: ") and "image" in p.stderr
    bad.write_text("{not json")
    p = cluster.berth("taskdef", "register", "-f", str(bad), check=False)
    assert p.returncode == 1 and str(bad) in p.stderr
    p = cluster.berth("taskdef", "register", "-f", str(tmp_path / "missing.json"), check=False)
    assert p.returncode == 1 and "missing.json" in p.stderr


# ---- nodes ----

def test_node_ls_and_inspect(cluster):
    assert cluster.berth_json("node", "ls") == cluster.aws("list-container-instances")
    node = cluster.node_id()
    table = cluster.berth("node", "ls").stdout.splitlines()
    assert table[0].split()[:3] == ["ID", "STATUS", "AGENT"]
    row = table[1].split()
    assert row[0] == node and row[1] == "ACTIVE" and row[2] == "true" and row[-1] == "az-cli"
    mine = cluster.berth_json("node", "inspect", node)
    assert not same(mine, cluster.aws("describe-container-instances", "--container-instances", node))
    human = cluster.berth("node", "inspect", node).stdout
    assert "Agent connected: true" in human
    assert "MEMORY     512 registered" in human and "CPU        1024 registered" in human
    assert "ecs.availability-zone=az-cli" in human
    p = cluster.berth("node", "inspect", "0123456789abcdef", check=False)
    assert p.returncode == 1 and "MISSING" in p.stderr


def test_node_drain_and_activate(cluster):
    node = cluster.node_id()
    assert cluster.berth("node", "drain", node).stdout.strip() == node
    try:
        d = cluster.aws("describe-container-instances", "--container-instances", node)
        assert d["containerInstances"][0]["status"] == "DRAINING"
        cluster.taskdef()
        p = cluster.berth("task", "run", "cli-sleep", check=False)
        assert p.returncode == 1 and "berth: " in p.stderr
        assert cluster.aws("list-tasks")["taskArns"] == []
    finally:
        assert cluster.berth("node", "activate", node).stdout.strip() == node
    d = cluster.aws("describe-container-instances", "--container-instances", node)
    assert d["containerInstances"][0]["status"] == "ACTIVE"


# ---- tasks ----

def test_task_run_wait_ls_inspect_stop(cluster):
    cluster.taskdef()
    node = cluster.node_id()
    p = cluster.berth("task", "run", "cli-sleep", "--count", "2", "--started-by", "cli-test", "--group", "g1",
                      "--wait", "--placement-strategy", "type=spread,field=instanceId",
                      "--placement-constraint", "type=memberOf,expression=attribute:ecs.availability-zone == az-cli")
    ids = p.stdout.split()
    try:
        assert len(ids) == 2
        described = cluster.aws("describe-tasks", "--tasks", *ids)["tasks"]
        assert {t["lastStatus"] for t in described} == {"RUNNING"}
        assert {t["startedBy"] for t in described} == {"cli-test"} and {t["group"] for t in described} == {"g1"}
        assert cluster.berth_json("task", "ls") == cluster.aws("list-tasks")
        assert (cluster.berth_json("task", "ls", "--family", "cli-sleep", "--node", node)
                == cluster.aws("list-tasks", "--family", "cli-sleep", "--container-instance", node))
        assert cluster.berth_json("task", "ls", "--family", "other")["taskArns"] == []
        table = cluster.berth("task", "ls").stdout.splitlines()
        assert table[0].split()[:2] == ["TASK", "ID"]
        assert sorted(line.split()[0] for line in table[1:]) == sorted(ids)
        assert all(line.split()[2:5] == ["RUNNING", "RUNNING", node] for line in table[1:])
        mine = cluster.berth_json("task", "inspect", ids[0])
        theirs = cluster.aws("describe-tasks", "--tasks", ids[0], "--include", "TAGS")
        assert not same(mine, theirs)
        human = cluster.berth("task", "inspect", ids[0]).stdout
        assert f"ID:              {ids[0]}" in human and "Last status:     RUNNING" in human
        # the node's Docker API shows the task containers
        assert len(cluster.agent.docker("ps", "-q").stdout.split()) >= 2
        assert cluster.berth("task", "stop", ids[0], "--reason", "cli says stop").stdout.strip() == ids[0]
        run([AWS_BIN, "ecs", "wait", "tasks-stopped", "--tasks", ids[0], "--endpoint-url",
             cluster.server.endpoint], env=cluster.server.env(), timeout=300)
        stopped = cluster.berth_json("task", "ls", "--desired-status", "STOPPED")
        assert stopped == cluster.aws("list-tasks", "--desired-status", "STOPPED")
        assert any(a.endswith(ids[0]) for a in stopped["taskArns"])
        human = cluster.berth("task", "inspect", ids[0]).stdout
        assert "Stopped reason:  cli says stop" in human and "Stop code:       UserInitiated" in human
    finally:
        cluster.stop_all_tasks()


def test_task_run_overrides_and_exit_code(cluster):
    cluster.taskdef()
    p = cluster.berth("task", "run", "cli-sleep", "--env", "B=two", "-e", "C=3",
                      "--command", "sh -c 'exit 3'", "--wait", check=False)
    try:
        tid = p.stdout.strip()
        # --wait returns at RUNNING or STOPPED: a task that exits at once is usually seen STOPPED
        # (exit 1 naming it), but the agent may report RUNNING first, and then 0 is right
        assert p.returncode in (0, 1), p.stderr
        if p.returncode == 1:
            assert "stopped" in p.stderr and tid in p.stderr
        t = wait_for(lambda: next((x for x in cluster.aws("describe-tasks", "--tasks", tid)["tasks"]
                                   if x["lastStatus"] == "STOPPED"), None), 60, "the task to stop")
        assert t["containers"][0]["exitCode"] == 3
        ov = t["overrides"]["containerOverrides"][0]
        assert ov["name"] == "main" and ov["command"] == ["sh", "-c", "exit 3"]
        assert {"name": "B", "value": "two"} in ov["environment"]
    finally:
        cluster.stop_all_tasks()


def test_task_run_failure_reason_resource_memory(cluster):
    cluster.taskdef(family="cli-huge", containerDefinitions=[dict(TASKDEF["containerDefinitions"][0], memory=4096)])
    p = cluster.berth("task", "run", "cli-huge", check=False)
    assert p.returncode == 1
    assert "RESOURCE:MEMORY" in p.stderr
    j = cluster.berth("task", "run", "cli-huge", "--format", "json", check=False)
    assert j.returncode == 1
    assert json.loads(j.stdout)["failures"][0]["reason"] == "RESOURCE:MEMORY"
    a = cluster.aws("run-task", "--task-definition", "cli-huge")
    assert a["failures"][0]["reason"] == "RESOURCE:MEMORY"


def test_task_errors(cluster):
    p = cluster.berth("task", "stop", "0123456789abcdef0123456789abcdef", check=False)
    assert p.returncode == 1 and p.stderr.startswith("berth: InvalidParameterException: ")
    p = cluster.berth("task", "ls", "--cluster", "cli-nope", check=False)
    assert p.stderr.strip() == "berth: ClusterNotFoundException: Cluster not found."
    p = cluster.berth("task", "logs", "0123", check=False)
    assert p.returncode == 1 and p.stderr.startswith("berth: ") and "0123" in p.stderr


# ---- last: remove the node ----

def test_node_rm_force(cluster):
    cluster.taskdef()
    node = cluster.node_id()
    tid = cluster.berth("task", "run", "cli-sleep", "--wait").stdout.strip()
    try:
        p = cluster.berth("node", "rm", node, check=False)
        a = cluster.aws("deregister-container-instance", "--container-instance", node, check=False)
        assert p.returncode == 1 and a.returncode != 0
        assert p.stderr.startswith("berth: ") and p.stderr.split(":")[1].strip() in a.stderr
        assert cluster.berth("node", "rm", "--force", node).stdout.strip() == node
        assert cluster.aws("list-container-instances")["containerInstanceArns"] == []
    finally:
        subprocess.run([cluster.bin, "task", "stop", tid], env=cluster.server.env(), capture_output=True)
