#!/usr/bin/python3
"""bench/ecs_api_bench.py - the ECS API's request cost with the request-shape
check (src/server/ecs-shape.c) against the same server without it (ANCHOR: a
berth binary of the commit before, e.g. main's build), in one run: each binary
serves its own root and one simulated node (tests/integration/berth_agent_client.py);
the rounds alternate A B B A so that the machine's noise hits both alike.

Per operation, requests per second over one kept-alive connection, signed as
boto3 signs them (SigV4): RegisterTaskDefinition with a full two-container
definition (the biggest body the check walks), RunTask with overrides and tags,
DescribeTasks of 10 tasks, and a refused request (a wrong type deep inside
a container definition). Prints a table with the ratio berth/anchor (>1: faster).
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))

import requests  # noqa: E402
import urllib3  # noqa: E402
from botocore.auth import SigV4Auth  # noqa: E402
from botocore.awsrequest import AWSRequest  # noqa: E402
from botocore.credentials import Credentials  # noqa: E402

from berth_agent_client import AgentClient  # noqa: E402

urllib3.disable_warnings()
TARGET = "AmazonEC2ContainerServiceV20141113."
C = {"name": "web", "image": "nginx:1.25", "cpu": 128, "memory": 64, "essential": True,
     "portMappings": [{"containerPort": 80, "protocol": "tcp"}],
     "environment": [{"name": f"E{i}", "value": "v" * 20} for i in range(30)],
     "healthCheck": {"command": ["CMD-SHELL", "true"], "interval": 5, "timeout": 2, "retries": 3},
     "ulimits": [{"name": "nofile", "softLimit": 1024, "hardLimit": 4096}],
     "logConfiguration": {"logDriver": "json-file", "options": {"max-size": "1m"}},
     "dockerLabels": {f"l{i}": "x" for i in range(20)}, "mountPoints": [{"sourceVolume": "v", "containerPath": "/v"}]}
TD = {"family": "bench", "networkMode": "bridge", "volumes": [{"name": "v"}],
      "containerDefinitions": [C, dict(C, name="side", portMappings=[], dependsOn=[
          {"containerName": "web", "condition": "HEALTHY"}])], "tags": [{"key": "k", "value": "v"}]}
BAD = dict(TD, containerDefinitions=[dict(C, portMappings=[{"containerPort": "80"}])])


class Server:
    def __init__(self, binary, root):
        self.root = root
        os.makedirs(root)
        self.err = open(root + ".err", "w")
        self.proc = subprocess.Popen([binary, "server", "--root", root, "--listen", "127.0.0.1:0",
                                      "--agent-lease-ttl", "600"], stdout=subprocess.PIPE, stderr=self.err,
                                     text=True)
        self.endpoint = re.search(r"endpoint (https://\S+)", self.proc.stdout.readline()).group(1)
        text = open(os.path.join(root, "credentials")).read()
        self.creds = Credentials(re.search(r"aws_access_key_id = (\S+)", text).group(1),
                                 re.search(r"aws_secret_access_key = (\S+)", text).group(1))
        self.http = requests.Session()
        self.ca = os.path.join(root, "pki", "ca.pem")
        self.agent = AgentClient(self.endpoint, root + "-agent")
        self.agent.join(open(os.path.join(root, "join-token")).read().strip())
        self.agent.register(cpu=1 << 20, memory=1 << 30)

    def call(self, op, body):
        data = json.dumps(body)
        req = AWSRequest(method="POST", url=self.endpoint + "/", data=data,
                         headers={"X-Amz-Target": TARGET + op, "Content-Type": "application/x-amz-json-1.1"})
        SigV4Auth(self.creds, "ecs", "us-east-1").add_auth(req)
        r = self.http.post(self.endpoint + "/", data=data, headers=dict(req.headers.items()), verify=self.ca, timeout=30)
        return r.status_code, r.json()

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)


def rate(srv, op, body, n, want):
    t0 = time.perf_counter()
    for _ in range(n):
        code, ans = srv.call(op, body)
        assert code == want, (op, code, ans)
    return n / (time.perf_counter() - t0)


def round_of(srv, n, tasks):
    return {
        "RegisterTaskDefinition": rate(srv, "RegisterTaskDefinition", TD, n, 200),
        "RunTask": rate(srv, "RunTask", {"taskDefinition": "bench", "overrides": {"containerOverrides": [
            {"name": "web", "environment": [{"name": "X", "value": "1"}]}]}, "tags": [{"key": "a", "value": "b"}]},
            n, 200),
        "DescribeTasks(10)": rate(srv, "DescribeTasks", {"tasks": tasks}, n, 200),
        "refused (bad type)": rate(srv, "RegisterTaskDefinition", BAD, n, 400),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--berth", required=True)
    ap.add_argument("--anchor", required=True)
    ap.add_argument("-n", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=2)
    a = ap.parse_args()
    d = tempfile.mkdtemp(prefix="berth-bench-ecsapi-")
    servers = {}
    try:
        servers = {"berth": Server(a.berth, os.path.join(d, "b")), "anchor": Server(a.anchor, os.path.join(d, "a"))}
        tasks = {}
        for k, s in servers.items():
            s.call("RegisterTaskDefinition", TD)
            _, ans = s.call("RunTask", {"taskDefinition": "bench", "count": 10})
            tasks[k] = [t["taskArn"] for t in ans["tasks"]]
        res = {"berth": [], "anchor": []}
        for r in range(a.rounds):
            for k in (("berth", "anchor") if r % 2 == 0 else ("anchor", "berth")):
                res[k].append(round_of(servers[k], a.n, tasks[k]))
        print(f"{'operation':26} {'berth req/s':>12} {'anchor req/s':>13} {'ratio':>7}")
        for op in res["berth"][0]:
            b = max(x[op] for x in res["berth"])
            an = max(x[op] for x in res["anchor"])
            print(f"{op:26} {b:12.0f} {an:13.0f} {b / an:7.2f}")
    finally:
        for s in servers.values():
            s.stop()
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
