"""berth server: the ECS-compatible API driven by Debian's aws CLI and boto3, the
agent protocol driven by a fake agent (berth_agent_client), and the stores
(SQLite; etcd with three servers and leader failover).

Every server runs on a loopback port it picks itself (--listen 127.0.0.1:0;
the endpoint is read from its first output line); etcd gets ports the test
reserved. Processes are killed and temp dirs removed even when a test fails.
"""
import calendar
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time

import boto3
import botocore
import pytest
import requests
import urllib3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

import awscli_fast
from berth_agent_client import AgentClient, AgentError
from conftest import berth_binary

urllib3.disable_warnings()
AWS = "/usr/bin/aws"
ETCD = "/usr/bin/etcd"
REGION = "us-east-1"
TARGET = "AmazonEC2ContainerServiceV20141113."


def wait_for(pred, timeout=20, what="condition"):
    """Poll pred until it returns a truthy value or the deadline passes."""
    deadline = time.monotonic() + timeout
    every = 0.05
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(every)
        every = min(every * 1.5, 0.5)  # long waits poll less often


class Server:
    def __init__(self, root, store="sqlite", extra=()):
        self.root = root
        self.store = store
        self.extra = list(extra)
        self.proc = None
        self.endpoint = None

    def start(self):
        os.makedirs(self.root, exist_ok=True)
        self.out = open(os.path.join(self.root, "..", os.path.basename(self.root) + ".out"), "a+")
        self.err_path = os.path.join(os.path.dirname(self.root), os.path.basename(self.root) + ".err")
        self.err = open(self.err_path, "a")
        self.proc = subprocess.Popen(
            [berth_binary(), "server", "--root", self.root, "--listen", "127.0.0.1:0", "--store", self.store,
             *self.extra], stdout=subprocess.PIPE, stderr=self.err, text=True)
        line = self.proc.stdout.readline()
        m = re.search(r"endpoint (https://127\.0\.0\.1:\d+)", line)
        assert m, f"no endpoint in {line!r}; stderr: {open(self.err_path).read()}"
        self.endpoint = m.group(1)
        return self

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is not None and self.proc.returncode != 0:
            print(f"berth server exited {self.proc.returncode}; stderr:\n" + open(self.err_path).read()[-4000:])
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self.proc.stdout.close()
        self.proc = None

    @property
    def ca(self):
        return os.path.join(self.root, "pki", "ca.pem")

    @property
    def credentials(self):
        return os.path.join(self.root, "credentials")

    def token(self):
        with open(os.path.join(self.root, "join-token")) as f:
            return f.read().strip()

    def keys(self):
        text = open(self.credentials).read()
        return (re.search(r"aws_access_key_id = (\S+)", text).group(1),
                re.search(r"aws_secret_access_key = (\S+)", text).group(1))

    def aws(self, *args, check=True, env_extra=None):
        env = dict(os.environ, AWS_SHARED_CREDENTIALS_FILE=self.credentials, AWS_CONFIG_FILE="/dev/null",
                   AWS_PAGER="", **(env_extra or {}))
        env.pop("AWS_PROFILE", None)
        p = awscli_fast.run(["--region", REGION, "--endpoint-url", self.endpoint, "--ca-bundle", self.ca,
                             "--output", "json", "ecs", *args], env=env, timeout=60)
        if check and p.returncode != 0:
            raise AssertionError(f"aws ecs {args} exited {p.returncode}: {p.stderr}")
        return json.loads(p.stdout) if p.returncode == 0 and p.stdout.strip() else p

    def ecs(self, key=None, secret=None):
        k, s = self.keys()
        return boto3.session.Session().client(
            "ecs", region_name=REGION, endpoint_url=self.endpoint, verify=self.ca,
            aws_access_key_id=key or k, aws_secret_access_key=secret or s)

    def raw(self, op, body, key=None, secret=None):
        """A signed awsJson request with any body (bad JSON included)."""
        k, s = self.keys()
        req = AWSRequest(method="POST", url=self.endpoint + "/", data=body,
                         headers={"X-Amz-Target": TARGET + op, "Content-Type": "application/x-amz-json-1.1"})
        SigV4Auth(Credentials(key or k, secret or s), "ecs", REGION).add_auth(req)
        r = requests.post(self.endpoint + "/", data=body, headers=dict(req.headers.items()), verify=self.ca,
                          timeout=30)
        return r.status_code, r.json()

    def agent(self, name):
        a = AgentClient(self.endpoint, os.path.join(os.path.dirname(self.root), "agent-" + name))
        a.join(self.token())
        return a


@pytest.fixture
def tmp():
    d = tempfile.mkdtemp(prefix="berth-server-it-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def server(tmp):
    s = Server(os.path.join(tmp, "root"), extra=["--agent-lease-ttl", "120"]).start()
    yield s
    s.stop()


@pytest.fixture
def quick_server(tmp):
    """Nodes lapse fast: 3 s lease, 2 s lost-node timeout."""
    s = Server(os.path.join(tmp, "root"), extra=["--agent-lease-ttl", "3", "--lost-node-timeout", "2"]).start()
    yield s
    s.stop()


def code(exc):
    return exc.value.response["Error"]["Code"]


TD = [{"name": "web", "image": "busybox", "memory": 128, "cpu": 256,
       "portMappings": [{"containerPort": 80, "hostPort": 8080}]}]


# ---- identity ----

def test_first_start_creates_identity_and_restart_reuses_it(tmp):
    root = os.path.join(tmp, "root")
    os.makedirs(root)
    os.chmod(root, 0o755)  # made by an installer: the server tightens it (issue 18 item 2)
    s = Server(root).start()
    try:
        assert os.stat(root).st_mode & 0o777 == 0o700
        for name, mode in (("credentials", 0o600), ("join-token", 0o600), ("pki/server-key.pem", 0o600),
                           ("store.db", 0o600)):
            assert os.stat(os.path.join(root, name)).st_mode & 0o777 == mode, name
        token = s.token()
        ca = open(s.ca).read()
        assert re.fullmatch(r"K10[0-9a-f]{64}::[0-9a-f]{32}", token)
        import hashlib
        assert token[3:67] == hashlib.sha256(ca.encode()).hexdigest()
        assert "[default]" in open(s.credentials).read()
        account = s.aws("list-clusters")["clusterArns"][0].split(":")[4]
        assert re.fullmatch(r"\d{12}", account)
        keys = s.keys()
    finally:
        s.stop()
    s.start()
    try:
        assert s.token() == token and open(s.ca).read() == ca and s.keys() == keys
        assert s.aws("list-clusters")["clusterArns"][0].split(":")[4] == account
    finally:
        s.stop()


def test_help_lists_flags():
    p = subprocess.run([berth_binary(), "server", "--help"], capture_output=True, text=True, timeout=10)
    assert p.returncode == 0
    for flag in ("--root", "--listen", "--store", "--region"):
        assert flag in p.stdout


def test_bad_flags_are_refused_before_anything_starts(tmp_path):
    for args, err in ((["--task-retention", "0", "--bogus"], "berth server: invalid --task-retention '0' (1 to 2592000 seconds)\n"),
                      (["--vxlan-id", "16777216"], "berth server: invalid --vxlan-id '16777216'\n"),
                      (["--region="], "berth server: invalid region ''\n"),
                      (["--http-workers", "0"], "berth server: invalid --http-workers '0': expected a number from 1 to 4096\n"),
                      (["--node-subnet-size", "8"], "berth server: --node-subnet-size 8 is larger than the cluster CIDR"),
                      (["--logs-fsync=1"], "server: option '--logs-fsync' doesn't allow an argument\nUsage: berth server"),
                      (["--lo", "1"], "server: option '--lo' is ambiguous; possibilities: '--lost-node-timeout' '--log-level'"),
                      (["extra"], "berth server: unexpected argument 'extra'\n")):
        p = subprocess.run([berth_binary(), "server", "--root", str(tmp_path), *args], capture_output=True, text=True,
                           timeout=10)
        assert p.returncode == 2 and p.stderr.startswith(err) and p.stdout == "", (args, p.stderr)
    assert os.listdir(tmp_path) == []


# ---- authentication ----

def test_wrong_secret_is_invalid_signature(server):
    # ECS (awsJson 1.1) answers a bad signature with 400, as every authentication error but a missing
    # token (aws-sdk-go: "InvalidSignatureException: The request signature we calculated does not
    # match ... status code: 400")
    status, body = server.raw("ListClusters", "{}", secret="not-the-secret")
    assert status == 400 and body == {
        "__type": "InvalidSignatureException",
        "message": "The request signature we calculated does not match the signature you provided. Check your "
                   "AWS Secret Access Key and signing method. Consult the service documentation for details."}
    with pytest.raises(botocore.exceptions.ClientError) as e:
        server.ecs(secret="wrong").list_clusters()
    assert code(e) == "InvalidSignatureException"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    k, _ = server.keys()
    p = server.aws("list-clusters", check=False, env_extra={"AWS_ACCESS_KEY_ID": k, "AWS_SECRET_ACCESS_KEY": "wrong"})
    assert p.returncode == 254 and "An error occurred (InvalidSignatureException) when calling the ListClusters " \
        "operation: The request signature we calculated does not match" in p.stderr, p.stderr


def signed_at(server, when, op="ListClusters", body="{}"):
    """POST an ECS request signed as if at `when` (epoch seconds): botocore's SigV4Auth always signs now."""
    k, s = server.keys()
    req = AWSRequest(method="POST", url=server.endpoint + "/", data=body,
                     headers={"X-Amz-Target": TARGET + op, "Content-Type": "application/x-amz-json-1.1"})
    auth = SigV4Auth(Credentials(k, s), "ecs", REGION)
    req.context["timestamp"] = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(when))
    auth._modify_request_before_signing(req)  # X-Amz-Date from the context's timestamp
    auth._inject_signature_to_request(req, auth.signature(auth.string_to_sign(req, auth.canonical_request(req)),
                                                          req))
    return requests.post(server.endpoint + "/", data=body, headers=dict(req.headers.items()), verify=server.ca,
                         timeout=30)


def test_expired_or_future_signature_answers_as_ecs(server):
    """ECS allows 5 minutes of skew and says which edge was crossed, with 400 (the ECS agent's logs:
    'Signature not yet current: X is still later than Y (Z + 5 min.) status code: 400')."""
    stamp = "%Y%m%dT%H%M%SZ"
    date = r"(\d{8}T\d{6}Z)"
    for offset, pattern in ((-6 * 60, f"Signature expired: {date} is now earlier than {date} \\({date} - 5 min\\.\\)"),
                            (6 * 60, f"Signature not yet current: {date} is still later than {date} "
                                     f"\\({date} \\+ 5 min\\.\\)")):
        when = time.time() + offset
        r = signed_at(server, when)
        body = r.json()
        assert r.status_code == 400 and body["__type"] == "InvalidSignatureException", (r.status_code, body)
        m = re.fullmatch(pattern, body["message"])
        assert m and m.group(1) == time.strftime(stamp, time.gmtime(when)), body
        sent, edge, now = (calendar.timegm(time.strptime(g, stamp)) for g in m.groups())
        assert edge - now == (-300 if offset < 0 else 300) and abs(now - time.time()) < 120, body
    r = signed_at(server, time.time() - 4 * 60)  # within the 5 minutes
    assert r.status_code == 200 and r.json()["clusterArns"]


def test_unknown_key_is_unrecognized_client(server):
    status, body = server.raw("ListClusters", "{}", key="AKIANOTAKEY000000000")
    assert status == 400 and body == {"__type": "UnrecognizedClientException",
                                      "message": "The security token included in the request is invalid."}
    with pytest.raises(botocore.exceptions.ClientError) as e:
        server.ecs(key="AKIANOTAKEY000000000").list_clusters()
    assert code(e) == "UnrecognizedClientException"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    p = server.aws("list-clusters", check=False, env_extra={"AWS_ACCESS_KEY_ID": "AKIANOTAKEY000000000",
                                                            "AWS_SECRET_ACCESS_KEY": "x"})
    assert p.returncode == 254 and p.stderr.strip() == (
        "An error occurred (UnrecognizedClientException) when calling the ListClusters operation: "
        "The security token included in the request is invalid."), p.stderr
    r = requests.post(server.endpoint + "/", data="{}", verify=server.ca, timeout=10,
                      headers={"X-Amz-Target": TARGET + "ListClusters"})
    assert r.status_code == 403 and r.json()["__type"] == "MissingAuthenticationTokenException"
    assert server.aws("list-clusters")["clusterArns"]  # still serving


def test_a_fin_without_close_notify_still_gets_the_answer(server):
    """A client that sends its request and ends with a TCP FIN, no close_notify, reads the whole
    answer, as from Go's crypto/tls or nginx (OpenSSL 3 made that EOF an error: no answer)."""
    k, sec = server.keys()
    body = "{}"
    req = AWSRequest(method="POST", url=server.endpoint + "/", data=body,
                     headers={"X-Amz-Target": TARGET + "ListClusters",
                              "Content-Type": "application/x-amz-json-1.1"})
    SigV4Auth(Credentials(k, sec), "ecs", REGION).add_auth(req)
    host, port = server.endpoint[len("https://"):].split(":")
    head = "".join(f"{n}: {v}\r\n" for n, v in req.headers.items())
    raw = (f"POST / HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Length: {len(body)}\r\n{head}\r\n{body}").encode()
    ctx = ssl.create_default_context(cafile=server.ca)
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(inc, out, server_hostname=host)
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        def pump(send=True):  # out to the socket, the socket in; False at the server's EOF
            if send and out.pending:
                sock.sendall(out.read())
            data = sock.recv(65536)
            if data:
                inc.write(data)
            else:
                inc.write_eof()
            return bool(data)
        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                assert pump(), "the handshake ended"
        tls.write(raw)
        sock.sendall(out.read())
        sock.shutdown(socket.SHUT_WR)  # the FIN, without close_notify
        answer = b""
        while True:
            try:
                chunk = tls.read(65536)
            except ssl.SSLWantReadError:
                if not pump(send=False):
                    break
                continue
            except (ssl.SSLEOFError, ssl.SSLZeroReturnError):
                break
            if not chunk:
                break
            answer += chunk
    head, _, rest = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), answer
    n = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
    assert len(rest) == n and "clusterArns" in json.loads(rest), answer


def test_bad_json_is_serialization_exception(server):
    for body in ("{not json", "[1,2]", '{"clusterName": 5}'):
        status, resp = server.raw("CreateCluster", body)
        assert status == 400 and resp["__type"] == "SerializationException", (body, resp)
    status, resp = server.raw("NoSuchOperation", "{}")
    assert resp["__type"] == "UnknownOperationException"
    assert server.ecs().list_clusters()["clusterArns"]


# ---- clusters ----

def test_list_account_settings(server):
    """`aws ecs list-account-settings` (it was UnknownOperationException): berth's fixed settings, filtered
    by name and value, in pages of at most 10 (the CLI's --max-items/--starting-token work)."""
    out = server.aws("list-account-settings", "--effective-settings")["settings"]
    account = server.aws("list-clusters")["clusterArns"][0].split(":")[4]
    by_name = {x["name"]: x for x in out}
    assert by_name["serviceLongArnFormat"] == {"name": "serviceLongArnFormat", "value": "enabled",
                                               "principalArn": f"arn:aws:iam::{account}:root"}
    assert by_name["taskLongArnFormat"]["value"] == "enabled" and by_name["awsvpcTrunking"]["value"] == "disabled"
    assert by_name["containerInsights"]["value"] == "disabled"
    assert [x["name"] for x in server.aws("list-account-settings", "--name", "taskLongArnFormat")["settings"]] == \
        ["taskLongArnFormat"]
    assert {x["value"] for x in server.aws("list-account-settings", "--value", "disabled")["settings"]} == {"disabled"}
    first = server.aws("list-account-settings", "--max-items", "2")
    rest = server.aws("list-account-settings", "--starting-token", first["NextToken"])
    assert [x["name"] for x in first["settings"] + rest["settings"]] == [x["name"] for x in out]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        server.ecs().list_account_settings(maxResults=11)
    assert code(e) == "InvalidParameterException"

def test_describe_clusters_include_statistics(server):
    """include STATISTICS: ECS's eight counts by launch type, values as strings (berth's are all EC2)."""
    ecs = server.ecs()
    ecs.register_task_definition(family="st", containerDefinitions=[dict(TD[0], portMappings=[])])
    ecs.create_service(serviceName="s1", taskDefinition="st", desiredCount=0)
    server.agent("n1").register()
    assert len(ecs.run_task(taskDefinition="st", count=2)["tasks"]) == 2  # PROVISIONING: pending
    out = server.aws("describe-clusters", "--include", "STATISTICS", "--query", "clusters[0].statistics")
    assert out == [{"name": "runningEC2TasksCount", "value": "0"},
                   {"name": "runningFargateTasksCount", "value": "0"},
                   {"name": "pendingEC2TasksCount", "value": "2"},
                   {"name": "pendingFargateTasksCount", "value": "0"},
                   {"name": "activeEC2ServiceCount", "value": "1"},
                   {"name": "activeFargateServiceCount", "value": "0"},
                   {"name": "drainingEC2ServiceCount", "value": "0"},
                   {"name": "drainingFargateServiceCount", "value": "0"}], out
    assert ecs.describe_clusters()["clusters"][0]["statistics"] == []  # only when asked, as ECS


def test_describe_clusters_settings_only_when_included(server):
    """ECS's DescribeClusters: "If SETTINGS is specified, the settings for the cluster are included";
    without include the cluster carries none of the include-gated members."""
    ecs = server.ecs()
    created = ecs.create_cluster(clusterName="setc",
                                 settings=[{"name": "containerInsights", "value": "enabled"}])["cluster"]
    assert created["settings"] == [{"name": "containerInsights", "value": "enabled"}]
    plain = ecs.describe_clusters(clusters=["setc"])["clusters"][0]
    assert "settings" not in plain and "configuration" not in plain and "tags" not in plain, plain
    assert "attachments" not in plain and plain["statistics"] == [], plain
    out = server.aws("describe-clusters", "--clusters", "setc", "--include", "SETTINGS")["clusters"][0]
    assert out["settings"] == [{"name": "containerInsights", "value": "enabled"}], out
    assert "tags" not in out and out["statistics"] == [], out


def test_clusters_create_describe_list_delete(server):
    c = server.aws("create-cluster", "--cluster-name", "web", "--tags", "key=team,value=a")["cluster"]
    assert c["clusterArn"].endswith(":cluster/web") and c["status"] == "ACTIVE"
    assert c["clusterArn"].startswith("arn:aws:ecs:us-east-1:")
    arns = server.aws("list-clusters")["clusterArns"]
    assert sorted(a.split("/")[-1] for a in arns) == ["default", "web"]
    d = server.aws("describe-clusters", "--clusters", "web", "nope", "--include", "TAGS")
    assert d["clusters"][0]["tags"] == [{"key": "team", "value": "a"}]
    assert d["failures"][0]["reason"] == "MISSING"
    assert server.aws("delete-cluster", "--cluster", "web")["cluster"]["status"] == "INACTIVE"
    assert [a for a in server.aws("list-clusters")["clusterArns"] if a.endswith("/web")] == []
    with pytest.raises(botocore.exceptions.ClientError) as e:
        server.ecs().delete_cluster(cluster="web")
    assert code(e) == "ClusterNotFoundException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        server.ecs().create_cluster(clusterName="bad name!")
    assert code(e) == "InvalidParameterException"


def test_list_clusters_pagination(server):
    ecs = server.ecs()
    for i in range(7):
        ecs.create_cluster(clusterName=f"c{i}")
    page = ecs.list_clusters(maxResults=3)
    assert len(page["clusterArns"]) == 3 and page["nextToken"]
    seen = []
    for p in ecs.get_paginator("list_clusters").paginate(PaginationConfig={"PageSize": 2}):
        assert len(p["clusterArns"]) <= 2
        seen += p["clusterArns"]
    assert len(seen) == 8 and len(set(seen)) == 8
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs.list_clusters(nextToken="!!!")
    assert code(e) == "InvalidParameterException"
    status, body = server.raw("ListClusters", '{"maxResults": 0}')
    assert body["__type"] == "InvalidParameterException"


# ---- task definitions ----

def test_task_definitions(server):
    ecs = server.ecs()
    for fam in ("app", "app", "app", "db"):
        ecs.register_task_definition(family=fam, containerDefinitions=TD)
    td = server.aws("describe-task-definition", "--task-definition", "app")["taskDefinition"]
    assert td["revision"] == 3 and td["family"] == "app" and td["status"] == "ACTIVE"
    assert td["taskDefinitionArn"].endswith(":task-definition/app:3")
    assert td["containerDefinitions"][0]["essential"] is True
    assert td["networkMode"] == "bridge"
    assert re.match(r"\d{4}-\d\d-\d\dT", td["registeredAt"])  # the CLI parsed our epoch seconds
    import datetime
    assert isinstance(ecs.describe_task_definition(taskDefinition="app")["taskDefinition"]["registeredAt"],
                      datetime.datetime)
    arns = ecs.list_task_definitions(familyPrefix="app")["taskDefinitionArns"]
    assert [a.split("/")[-1] for a in arns] == ["app:1", "app:2", "app:3"]
    desc = ecs.list_task_definitions(sort="DESC")["taskDefinitionArns"]
    assert desc[0].endswith("db:1") and desc[-1].endswith("app:1")
    ecs.deregister_task_definition(taskDefinition="app:3")
    assert server.aws("describe-task-definition", "--task-definition", "app")["taskDefinition"]["revision"] == 2
    inactive = ecs.list_task_definitions(status="INACTIVE")["taskDefinitionArns"]
    assert [a.split("/")[-1] for a in inactive] == ["app:3"]
    assert ecs.list_task_definition_families()["families"] == ["app", "db"]
    assert ecs.list_task_definition_families(familyPrefix="d")["families"] == ["db"]
    pages = list(ecs.get_paginator("list_task_definitions").paginate(PaginationConfig={"PageSize": 1}))
    assert sum(len(p["taskDefinitionArns"]) for p in pages) == 3
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs.describe_task_definition(taskDefinition="nope:1")
    assert code(e) == "ClientException"


def test_list_tasks_filters_on_the_launch_type(server):
    """ListTasks launchType: berth's tasks are EC2's; FARGATE (or EXTERNAL) lists none of them."""
    ecs = server.ecs()
    ecs.register_task_definition(family="lt", containerDefinitions=[dict(TD[0], portMappings=[])])
    server.agent("n1").register()
    arns = [t["taskArn"] for t in ecs.run_task(taskDefinition="lt", count=2)["tasks"]]
    assert len(arns) == 2
    assert sorted(server.aws("list-tasks", "--launch-type", "EC2")["taskArns"]) == sorted(arns)
    for other in ("FARGATE", "EXTERNAL"):
        assert server.aws("list-tasks", "--launch-type", other)["taskArns"] == [], other
    assert sorted(ecs.list_tasks(family="lt")["taskArns"]) == sorted(arns)

def test_service_created_by_and_a_scale_reopens_its_rollout_consistently(server):
    """createdBy is the principal's ARN (as ECS, and as registeredBy); scaling a COMPLETED deployment
    makes it IN_PROGRESS with a reason that says so (it kept 'completed.')."""
    ecs = server.ecs()
    ecs.register_task_definition(family="sc", containerDefinitions=[dict(TD[0], portMappings=[])])
    svc = server.aws("create-service", "--service-name", "sc", "--task-definition", "sc", "--desired-count", "0")
    account = svc["service"]["serviceArn"].split(":")[4]
    assert svc["service"]["createdBy"] == f"arn:aws:iam::{account}:root"
    dep = wait_for(lambda: next((d for d in ecs.describe_services(services=["sc"])["services"][0]["deployments"]
                                 if d["rolloutState"] == "COMPLETED"), None), 30, "the empty deployment to complete")
    assert dep["rolloutStateReason"] == f"ECS deployment {dep['id']} completed."
    [dep] = server.aws("update-service", "--service", "sc", "--desired-count", "1")["service"]["deployments"]
    assert (dep["rolloutState"], dep["rolloutStateReason"]) == ("IN_PROGRESS", f"ECS deployment {dep['id']} in progress.")

def test_network_configuration_only_for_awsvpc(server):
    """ECS refuses a networkConfiguration for a task definition that is not awsvpc (it was ignored)."""
    ecs = server.ecs()
    ecs.register_task_definition(family="br", containerDefinitions=[dict(TD[0], portMappings=[])])
    ecs.register_task_definition(family="vpc", networkMode="awsvpc",
                                 containerDefinitions=[dict(TD[0], portMappings=[])])
    inst = server.agent("n1").register()["containerInstanceArn"]
    net = "awsvpcConfiguration={subnets=[subnet-1],assignPublicIp=DISABLED}"
    msg = "Network Configuration is not valid for the given networkMode of this task definition."
    for args in (("run-task", "--task-definition", "br"),
                 ("start-task", "--task-definition", "br", "--container-instances", inst),
                 ("create-service", "--service-name", "br", "--task-definition", "br", "--desired-count", "0")):
        p = server.aws(*args, "--network-configuration", net, check=False)
        assert p.returncode == 254 and p.stderr.strip().endswith("(InvalidParameterException) when calling the %s "
                                                                  "operation: %s" % (
            "".join(w.capitalize() for w in args[0].split("-")), msg)), (args, p.stderr)
    assert ecs.list_tasks()["taskArns"] == [] and ecs.list_services()["serviceArns"] == []
    out = server.aws("run-task", "--task-definition", "vpc", "--network-configuration", net)
    assert len(out["tasks"]) == 1 and not out["failures"]

def test_update_service_checks_network_configuration(server):
    """UpdateService refuses a networkConfiguration for a non-awsvpc task definition, as CreateService
    (the given one against the current task definition, the service's own against a new one)."""
    ecs = server.ecs()
    ecs.register_task_definition(family="br", containerDefinitions=[dict(TD[0], portMappings=[])])
    ecs.register_task_definition(family="vpc", networkMode="awsvpc",
                                 containerDefinitions=[dict(TD[0], portMappings=[])])
    net = "awsvpcConfiguration={subnets=[subnet-1],assignPublicIp=DISABLED}"
    msg = ("An error occurred (InvalidParameterException) when calling the UpdateService operation: "
           "Network Configuration is not valid for the given networkMode of this task definition.")
    server.aws("create-service", "--service-name", "b", "--task-definition", "br", "--desired-count", "0")
    p = server.aws("update-service", "--service", "b", "--network-configuration", net, check=False)
    assert p.returncode == 254 and p.stderr.strip().endswith(msg), p.stderr
    server.aws("create-service", "--service-name", "v", "--task-definition", "vpc", "--desired-count", "0",
               "--network-configuration", net)
    p = server.aws("update-service", "--service", "v", "--task-definition", "br", check=False)
    assert p.returncode == 254 and p.stderr.strip().endswith(msg), p.stderr
    [b, v] = ecs.describe_services(services=["b", "v"])["services"]
    assert "networkConfiguration" not in b and v["taskDefinition"].endswith("/vpc:1"), (b, v)
    out = server.aws("update-service", "--service", "v", "--network-configuration", net, "--desired-count", "1")
    assert out["service"]["desiredCount"] == 1

def test_deleted_service_deployment_is_not_left_in_progress(server):
    """A deleted service (DRAINING, then INACTIVE once its tasks are gone) shows its deployment
    COMPLETED, as ECS: it stayed IN_PROGRESS forever."""
    ecs = server.ecs()
    ecs.register_task_definition(family="gone", containerDefinitions=[dict(TD[0], portMappings=[])])
    [dep] = ecs.create_service(serviceName="gone", taskDefinition="gone", desiredCount=1)["service"]["deployments"]
    assert dep["rolloutState"] == "IN_PROGRESS"  # no instance: it cannot place its task
    assert server.aws("delete-service", "--service", "gone", "--force")["service"]["status"] == "DRAINING"
    svc = wait_for(lambda: next((s for s in ecs.describe_services(services=["gone"])["services"]
                                 if s["status"] == "INACTIVE"), None), 30, "the service INACTIVE")
    [d] = svc["deployments"]
    assert (d["id"], d["rolloutState"], d["rolloutStateReason"], d["desiredCount"]) == \
        (dep["id"], "COMPLETED", f"ECS deployment {dep['id']} completed.", 0), d

def test_an_inactive_task_definition_launches_nothing(server):
    """ECS: a deregistered revision runs no new task and backs no new service or deployment
    (InvalidParameterException "TaskDefinition is inactive"); a service already on it keeps it."""
    ecs = server.ecs()
    for _ in range(2):
        ecs.register_task_definition(family="old", containerDefinitions=TD)
    ecs.create_service(serviceName="keeps", taskDefinition="old:1", desiredCount=0)
    ecs.deregister_task_definition(taskDefinition="old:1")
    inst = server.agent("n1").register()["containerInstanceArn"]
    for args in (("run-task", "--task-definition", "old:1"),
                 ("start-task", "--task-definition", "old:1", "--container-instances", inst),
                 ("create-service", "--service-name", "new", "--task-definition", "old:1", "--desired-count", "1"),
                 ("update-service", "--service", "keeps", "--task-definition", "old:1"),
                 ("run-task", "--task-definition", "arn:aws:ecs:us-east-1:%s:task-definition/old:1"
                  % inst.split(":")[4])):
        p = server.aws(*args, check=False)
        assert p.returncode == 254 and p.stderr.strip().endswith(
            "(InvalidParameterException) when calling the %s operation: TaskDefinition is inactive" %
            "".join(w.capitalize() for w in args[0].split("-"))), (args, p.stderr)
    assert ecs.list_tasks()["taskArns"] == []
    assert ecs.describe_services(services=["new"])["failures"][0]["reason"] == "MISSING"
    # the service on the inactive revision still takes other changes; the family's latest is ACTIVE
    svc = ecs.update_service(service="keeps", desiredCount=0)["service"]
    assert svc["taskDefinition"].endswith("old:1")
    assert ecs.update_service(service="keeps", taskDefinition="old")["service"]["taskDefinition"].endswith("old:2")


BAD_TASKDEFS = [
    ("no-image", {"containerDefinitions": [{"name": "a", "memory": 64}]}, "image"),
    ("network-mode", {"networkMode": "overlay", "containerDefinitions": TD}, "networkMode"),
    ("duplicate-names", {"containerDefinitions": [TD[0], TD[0]]}, "containerDefinitions[1].name"),
    ("depends-cycle", {"containerDefinitions": [
        {"name": "a", "image": "x", "memory": 64, "dependsOn": [{"containerName": "b", "condition": "START"}]},
        {"name": "b", "image": "x", "memory": 64, "dependsOn": [{"containerName": "a", "condition": "START"}]}]},
     "cycle"),
    ("depends-unknown", {"containerDefinitions": [
        {"name": "a", "image": "x", "memory": 64, "dependsOn": [{"containerName": "zz", "condition": "START"}]}]},
     "dependsOn[0].containerName"),
    ("memory-impossible", {"memory": "64", "containerDefinitions": [{"name": "a", "image": "x", "memory": 128}]},
     "memory"),
    ("cpu-impossible", {"cpu": "99999", "containerDefinitions": TD}, "cpu"),
    ("bad-port", {"containerDefinitions": [
        {"name": "a", "image": "x", "memory": 64, "portMappings": [{"containerPort": 70000}]}]}, "containerPort"),
]


@pytest.mark.parametrize("name,body,field", BAD_TASKDEFS, ids=[b[0] for b in BAD_TASKDEFS])
def test_bad_task_definition_is_client_exception(server, name, body, field):
    status, resp = server.raw("RegisterTaskDefinition", json.dumps({"family": "bad", **body}))
    assert status == 400 and resp["__type"] == "ClientException", resp
    assert field in resp["message"]
    assert server.ecs().list_task_definitions(familyPrefix="bad")["taskDefinitionArns"] == []


def test_override_of_an_unknown_container_is_refused(server):
    server.ecs().register_task_definition(family="ov", containerDefinitions=TD)
    before = server.ecs().list_tasks()["taskArns"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        server.ecs().run_task(taskDefinition="ov", overrides={"containerOverrides": [
            {"name": "nope", "environment": [{"name": "A", "value": "1"}]}]})
    assert code(e) == "InvalidParameterException"
    assert "nope" in e.value.response["Error"]["Message"]
    assert server.ecs().list_tasks()["taskArns"] == before


def test_unknown_cluster_and_task(server):
    ecs = server.ecs()
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs.list_tasks(cluster="nope")
    assert code(e) == "ClusterNotFoundException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs.stop_task(task="0123456789abcdef0123456789abcdef")
    assert code(e) == "InvalidParameterException"


# ---- container instances, attributes, tags (fake agents) ----

def test_agent_join_register_and_instances(server):
    a = server.agent("n1")
    reg = a.register(attributes={"ecs.availability-zone": "az-a", "team": "blue"})
    arn = reg["containerInstanceArn"]
    assert re.fullmatch(r"arn:aws:ecs:us-east-1:\d{12}:container-instance/default/[0-9a-f]{32}", arn)
    assert server.aws("list-container-instances")["containerInstanceArns"] == [arn]
    ci = server.aws("describe-container-instances", "--container-instances", arn)["containerInstances"][0]
    assert ci["agentConnected"] is True and ci["status"] == "ACTIVE"
    res = {r["name"]: r for r in ci["registeredResources"]}
    assert res["CPU"]["integerValue"] == 2048 and res["MEMORY"]["integerValue"] == 4096
    attrs = {x["name"]: x.get("value") for x in ci["attributes"]}
    assert attrs["ecs.availability-zone"] == "az-a" and attrs["ecs.os-type"] == "linux"
    filt = server.aws("list-container-instances", "--filter", "attribute:team == blue")
    assert filt["containerInstanceArns"] == [arn]
    assert server.aws("list-container-instances", "--filter", "attribute:team == red")["containerInstanceArns"] == []

    ecs = server.ecs()
    ecs.put_attributes(attributes=[{"name": "disk", "value": "ssd", "targetId": arn}])
    listed = ecs.list_attributes(targetType="container-instance", attributeName="disk")["attributes"]
    assert listed == [{"name": "disk", "value": "ssd", "targetType": "container-instance", "targetId": arn}]
    ecs.delete_attributes(attributes=[{"name": "disk", "targetId": arn}])
    assert ecs.list_attributes(targetType="container-instance", attributeName="disk")["attributes"] == []
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs.put_attributes(attributes=[{"name": "bad name", "value": "x", "targetId": arn}])
    assert code(e) == "InvalidParameterException"

    ecs.tag_resource(resourceArn=arn, tags=[{"key": "k", "value": "v"}])
    assert ecs.list_tags_for_resource(resourceArn=arn)["tags"] == [{"key": "k", "value": "v"}]
    ecs.untag_resource(resourceArn=arn, tagKeys=["k"])
    assert ecs.list_tags_for_resource(resourceArn=arn)["tags"] == []

    out = ecs.update_container_instances_state(containerInstances=[arn], status="DRAINING")
    assert out["containerInstances"][0]["status"] == "DRAINING"
    assert a.heartbeat()["status"] == "DRAINING"
    ecs.update_container_instances_state(containerInstances=[arn], status="ACTIVE")


def test_bad_token_and_deregistered_certificate_are_refused(server):
    bad = AgentClient(server.endpoint, os.path.join(os.path.dirname(server.root), "agent-bad"))
    token = server.token()
    with pytest.raises(AgentError) as e:
        bad.join(token[:-4] + "0000")
    assert e.value.status == 403
    assert server.aws("list-container-instances")["containerInstanceArns"] == []
    with pytest.raises(AgentError) as e:
        bad.join("K10" + "0" * 64 + "::" + token.split("::")[1])
    assert "does not match" in str(e.value)

    a = server.agent("n2")
    arn = a.register()["containerInstanceArn"]
    with pytest.raises(AgentError) as e:
        a.call("POST", "heartbeat", {}, cert=False)
    assert e.value.status == 401
    server.ecs().deregister_container_instance(containerInstance=arn)
    with pytest.raises(AgentError) as e:
        a.heartbeat()
    assert e.value.status == 403
    assert server.aws("list-container-instances")["containerInstanceArns"] == []


# ---- tasks ----

def register_td(server, family="app", memory=128):
    td = [{"name": "web", "image": "busybox", "memory": memory, "cpu": 128}]
    return server.ecs().register_task_definition(family=family, containerDefinitions=td)["taskDefinition"]


def test_task_lifecycle_with_agent_reports(server):
    a = server.agent("n3")
    a.register()
    register_td(server)
    ecs = server.ecs()
    run = ecs.run_task(taskDefinition="app", count=2, startedBy="it", group="g1")
    assert run["failures"] == [] and len(run["tasks"]) == 2
    t = run["tasks"][0]
    assert t["lastStatus"] == "PROVISIONING" and t["desiredStatus"] == "RUNNING"
    assert t["containerInstanceArn"] == a.instance_arn and t["group"] == "g1"
    arns = [x["taskArn"] for x in run["tasks"]]
    assert re.fullmatch(r"arn:aws:ecs:us-east-1:\d{12}:task/default/[0-9a-f]{32}", arns[0])

    poll = a.tasks()
    assert sorted(x["taskArn"] for x in poll["tasks"]) == sorted(arns)
    assert poll["tasks"][0]["taskDefinition"]["family"] == "app"
    for status in ("PENDING", "RUNNING"):
        res = a.report(*[{"taskArn": arn, "lastStatus": status,
                          "containers": [{"name": "web", "lastStatus": status}]} for arn in arns])
        assert all(r["accepted"] for r in res["results"])
    ecs.get_waiter("tasks_running").wait(tasks=arns, WaiterConfig={"Delay": 1, "MaxAttempts": 20})
    d = server.aws("describe-tasks", "--tasks", *arns)["tasks"]
    assert {x["lastStatus"] for x in d} == {"RUNNING"} and all("startedAt" in x for x in d)
    assert sorted(server.aws("list-tasks", "--started-by", "it")["taskArns"]) == sorted(arns)
    assert server.aws("list-tasks", "--family", "app")["taskArns"]
    ci = server.aws("describe-container-instances", "--container-instances", a.instance_arn)
    rem = {r["name"]: r["integerValue"] for r in ci["containerInstances"][0]["remainingResources"]}
    assert rem["MEMORY"] == 4096 - 256 and ci["containerInstances"][0]["runningTasksCount"] == 2

    # a report may not move a task backwards; the rest of its batch still applies (one store transaction),
    # an unknown task is refused, the same task twice applies in order
    bogus = arns[0][:-32] + "0" * 32
    res = a.report({"taskArn": arns[0], "lastStatus": "PENDING"},
                   {"taskArn": arns[1], "lastStatus": "RUNNING", "healthStatus": "UNKNOWN"},
                   {"taskArn": bogus, "lastStatus": "RUNNING"},
                   {"taskArn": arns[1], "lastStatus": "RUNNING", "healthStatus": "HEALTHY"})["results"]
    assert [(r["taskArn"], r["accepted"]) for r in res] == [(arns[0], False), (arns[1], True), (bogus, False),
                                                            (arns[1], True)], res
    assert res[0]["error"] == "status may only move forward" and res[2]["error"] == "no such task on this node"
    assert ecs.describe_tasks(tasks=[arns[1]])["tasks"][0]["healthStatus"] == "HEALTHY"

    # StopTask: the agent sees desired STOPPED on its next long poll, then reports STOPPED
    since = poll["revision"]
    ecs.stop_task(task=arns[0], reason="done here")
    changed = a.tasks(since=since, wait=30)
    stopping = [x for x in changed["tasks"] if x["taskArn"] == arns[0]][0]
    assert stopping["desiredStatus"] == "STOPPED"
    a.report({"taskArn": arns[0], "lastStatus": "STOPPED",
              "containers": [{"name": "web", "lastStatus": "STOPPED", "exitCode": 0}]})
    ecs.get_waiter("tasks_stopped").wait(tasks=[arns[0]], WaiterConfig={"Delay": 1, "MaxAttempts": 20})
    st = ecs.describe_tasks(tasks=[arns[0]])["tasks"][0]
    assert st["stoppedReason"] == "done here" and st["stopCode"] == "UserInitiated"
    assert st["containers"][0]["exitCode"] == 0
    assert ecs.list_tasks(desiredStatus="STOPPED")["taskArns"] == [arns[0]]
    assert ecs.list_tasks()["taskArns"] == [arns[1]]
    assert [x["taskArn"] for x in a.tasks()["tasks"]] == [arns[1]]
    # an idle long poll returns at its deadline with nothing new
    t0 = a.tasks()
    assert [x["taskArn"] for x in a.tasks(since=t0["revision"], wait=1)["tasks"]] == [arns[1]]


def test_unplaceable_task_is_a_failure_not_a_hang(server):
    a = server.agent("n4")
    a.register(memory=512)
    register_td(server, family="huge", memory=4000)
    run = server.ecs().run_task(taskDefinition="huge")
    assert run["tasks"] == [] and run["failures"][0]["reason"] == "RESOURCE:MEMORY"
    assert server.aws("list-tasks")["taskArns"] == []


def test_placement_spread_distinct_and_draining(server):
    agents = [server.agent(f"p{i}") for i in range(3)]
    for i, a in enumerate(agents):
        a.register(attributes={"ecs.availability-zone": "az-a" if i < 2 else "az-b"})
    register_td(server, family="sp")
    ecs = server.ecs()
    run = ecs.run_task(taskDefinition="sp", count=4, placementStrategy=[
        {"type": "spread", "field": "attribute:ecs.availability-zone"}])
    on_b = [t for t in run["tasks"] if t["containerInstanceArn"] == agents[2].instance_arn]
    assert len(run["tasks"]) == 4 and len(on_b) == 2
    ecs.update_container_instances_state(containerInstances=[agents[0].instance_arn], status="DRAINING")
    run = ecs.run_task(taskDefinition="sp", count=3, group="distinct",
                       placementConstraints=[{"type": "distinctInstance"}])
    placed = {t["containerInstanceArn"] for t in run["tasks"]}
    assert len(run["tasks"]) == 2 and agents[0].instance_arn not in placed
    assert len(run["failures"]) == 1
    start = ecs.start_task(taskDefinition="sp", containerInstances=[agents[1].instance_arn])
    assert start["tasks"][0]["containerInstanceArn"] == agents[1].instance_arn
    drain_run_activate_reads_its_writes(ecs, server, agents)


def drain_run_activate_reads_its_writes(ecs, server, agents):
    """Read-your-writes (docs/scheduler.md): a placement right after an acknowledged drain,
    activation or attribute change sees it, every time (the scheduler's cache used to skip
    reading the store when its last read was under 10 ms old, and placed on the drained node)."""
    ecs.register_task_definition(family="tiny", containerDefinitions=[
        {"name": "web", "image": "busybox", "memory": 6, "cpu": 1}])
    p0, p1 = agents[0].instance_arn, agents[1].instance_arn
    # RunTask calls on an empty cluster keep the cache's last read a few ms old all along
    ecs.create_cluster(clusterName="busy")
    stop = threading.Event()

    def busy():
        other = server.ecs()
        while not stop.is_set():
            try:
                other.run_task(cluster="busy", taskDefinition="tiny")
            except botocore.exceptions.ClientError:
                pass  # "No Container Instances were found", after the cache's read
    t = threading.Thread(target=busy)
    t.start()
    try:
        drain_loop(ecs, agents, p0, p1)
    finally:
        stop.set()
        t.join()


def drain_loop(ecs, agents, p0, p1):
    for i in range(12):
        ecs.update_container_instances_state(containerInstances=[p0], status="DRAINING")
        run = ecs.run_task(taskDefinition="tiny", count=3, group=f"rw{i}",
                           placementConstraints=[{"type": "distinctInstance"}])
        assert sorted(t["containerInstanceArn"] for t in run["tasks"]) == sorted(
            [p1, agents[2].instance_arn]), (i, run)
        ecs.update_container_instances_state(containerInstances=[p0], status="ACTIVE")
        ecs.put_attributes(attributes=[{"name": "rw", "value": f"v{i}", "targetId": p1}])
        run = ecs.run_task(taskDefinition="tiny", placementConstraints=[
            {"type": "memberOf", "expression": f"attribute:rw == v{i}"}])
        assert [t["containerInstanceArn"] for t in run["tasks"]] == [p1], (i, run)
        run = ecs.run_task(taskDefinition="tiny", count=3, group=f"ra{i}",
                           placementConstraints=[{"type": "distinctInstance"}])
        assert p0 in {t["containerInstanceArn"] for t in run["tasks"]}, (i, run)


def test_lost_node_tasks_are_stopped(quick_server):
    server = quick_server
    # the client and task definition first: under load they can take longer than the 3 s lease
    register_td(server)
    ecs = server.ecs()
    a = server.agent("lost")
    reg = a.register()
    # a short lease gets a short beat: three per lease, so one lost beat never lapses it
    assert reg["leaseTtl"] == 3 and reg["heartbeatInterval"] == 1, reg
    assert a.heartbeat()["heartbeatInterval"] == 1
    run = ecs.run_task(taskDefinition="app")
    assert run["failures"] == [], run["failures"]
    arn = run["tasks"][0]["taskArn"]
    # no more heartbeats: the 3 s lease lapses, then the 2 s lost-node timeout
    wait_for(lambda: not server.aws("describe-container-instances", "--container-instances",
                                    a.instance_arn)["containerInstances"][0]["agentConnected"],
             what="agentConnected false")
    t = wait_for(lambda: [x for x in server.ecs().describe_tasks(tasks=[arn])["tasks"]
                          if x["lastStatus"] == "STOPPED"], timeout=30, what="task STOPPED")[0]
    assert "node lost" in t["stoppedReason"]
    def back():  # a beat, then the check: under load a check can come after the next 3 s lease lapsed
        a.heartbeat()
        return ecs.describe_container_instances(
            containerInstances=[a.instance_arn])["containerInstances"][0]["agentConnected"] is True
    wait_for(back, timeout=30, what="agentConnected true after a heartbeat")


# ---- durability ----

def test_restart_and_kill9_keep_every_accepted_write(tmp):
    s = Server(os.path.join(tmp, "root")).start()
    try:
        ecs = s.ecs()
        ecs.create_cluster(clusterName="keep")
        for i in range(15):
            ecs.register_task_definition(family=f"k{i % 3}", containerDefinitions=TD)
        a = s.agent("dur")
        a.register()
        run = ecs.run_task(taskDefinition="k0")["tasks"][0]["taskArn"]
        s.stop(signal.SIGKILL)
        s.start()
        ecs = s.ecs()
        assert any(c.endswith("/keep") for c in ecs.list_clusters()["clusterArns"])
        assert len(ecs.list_task_definitions()["taskDefinitionArns"]) == 15
        assert ecs.describe_tasks(tasks=[run])["tasks"][0]["taskArn"] == run
        assert ecs.list_container_instances()["containerInstanceArns"] == [a.instance_arn]
        a.endpoint = s.endpoint  # a new port after the restart
        a.heartbeat()  # the node certificate still works after the restart
        s.stop()
        s.start()
        assert len(s.ecs().list_task_definitions()["taskDefinitionArns"]) == 15
    finally:
        s.stop()


# ---- etcd: three servers, leader failover ----

def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def etcd(tmp):
    if not os.access(ETCD, os.X_OK):
        pytest.skip("etcd not installed (apt-get install etcd-server)")
    cport, pport = free_port(), free_port()
    p = subprocess.Popen([ETCD, "--data-dir", os.path.join(tmp, "etcd"),
                          "--listen-client-urls", f"http://127.0.0.1:{cport}",
                          "--advertise-client-urls", f"http://127.0.0.1:{cport}",
                          "--listen-peer-urls", f"http://127.0.0.1:{pport}",
                          "--initial-advertise-peer-urls", f"http://127.0.0.1:{pport}",
                          "--initial-cluster", f"default=http://127.0.0.1:{pport}"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def up():
        try:
            return requests.post(f"http://127.0.0.1:{cport}/v3/kv/range", json={"key": "AA=="}, timeout=1).ok
        except requests.RequestException:
            assert p.poll() is None, "etcd exited"
            return False
    try:
        wait_for(up, what="etcd")
        yield f"etcd://127.0.0.1:{cport}"
    finally:
        p.kill()
        p.wait()


def leader_of(servers):
    """The server whose last leadership line says it leads."""
    leaders = []
    for s in servers:
        if s.proc is None:
            continue
        lines = [l for l in open(s.err_path) if "leader" in l]
        if lines and "became leader" in lines[-1]:
            leaders.append(s)
    return leaders[0] if len(leaders) == 1 else None


def test_etcd_three_servers_share_state_and_fail_over(tmp, etcd):
    servers = [Server(os.path.join(tmp, f"r{i}"), store=etcd) for i in range(3)]
    try:
        for s in servers:
            s.start()
        keys = servers[0].keys()
        ca = open(servers[0].ca).read()
        for s in servers[1:]:
            assert s.keys() == keys and open(s.ca).read() == ca and s.token() == servers[0].token()
        servers[0].ecs().create_cluster(clusterName="shared")
        servers[1].ecs().register_task_definition(family="ha", containerDefinitions=TD)
        for s in servers:
            assert any(c.endswith("/shared") for c in s.aws("list-clusters")["clusterArns"])
            assert s.ecs().list_task_definitions()["taskDefinitionArns"]
        a = servers[2].agent("ha")
        a.register()
        leader = wait_for(lambda: leader_of(servers), what="one leader")
        leader.stop(signal.SIGKILL)
        rest = [s for s in servers if s is not leader]
        t0 = time.monotonic()
        wait_for(lambda: leader_of(rest), timeout=5, what="a new leader within 5 s")
        assert time.monotonic() - t0 < 5
        ecs = rest[0].ecs()
        assert ecs.list_task_definitions()["taskDefinitionArns"]
        run = ecs.run_task(taskDefinition="ha")
        assert run["failures"] == [] and rest[1].ecs().describe_tasks(
            tasks=[run["tasks"][0]["taskArn"]])["tasks"]
    finally:
        for s in servers:
            s.stop()
