"""Stack files (issue 16, docs/stack.md): `berth apply -f stack.yml` makes a
cluster match a compose file (task definitions, services, a load balancer per
published port, one-off jobs), idempotently; `--dry-run` prints the diff,
`--prune` deletes what the file dropped, bad files change nothing, a failed
apply undoes itself; `berth stack ls|services|ps|rm`. The aws CLI is the
oracle for what exists. One module-scoped cluster of 3 hosts; the tests run in
order and build on each other (the stack they leave is the next one's start).

The same stack file on Docker Swarm (`docker stack deploy`, answering the same
requests) is compared in bench/stack.sh: a Swarm with its routing mesh takes
longer to start than this module's budget.
"""
import http.client
import json
import os
import subprocess

import pytest

from cluster_fixture import Cluster, in_netns, wait_for
from conftest import berth_binary

PORT = 8080
STACK = "st"
NODE_ADDRS = ["192.168.77.11", "192.168.77.12", "192.168.77.13"]

WEB_SH = """mkdir -p /www/cgi-bin
echo {version} > /www/index.html
printf '#!/bin/sh\\necho Content-Type: text/plain\\necho\\nnc -w 2 cache 6379 </dev/null\\n' > /www/cgi-bin/cache
sed s/cache/st_cache/ /www/cgi-bin/cache > /www/cgi-bin/full
chmod +x /www/cgi-bin/cache /www/cgi-bin/full
exec httpd -f -p 80 -h /www
"""


def stack_file(version="v1", worker_replicas=2, extra=""):
    web_sh = "\n".join("        " + line for line in WEB_SH.format(version=version).splitlines())
    return f"""version: "3.8"
x-small: &small
  resources:
    limits: {{memory: 32M}}
services:
  web:
    image: busybox:latest
    command:
      - sh
      - -c
      - |
{web_sh}
    ports:
      - "{PORT}:80"
    stop_grace_period: 2s
    depends_on: [cache]
    deploy:
      <<: *small
      replicas: 2
      update_config: {{parallelism: 2, order: start-first, failure_action: rollback}}
  cache:
    image: busybox:latest
    command: ["sh", "-c", "while true; do echo PONG | nc -l -p 6379; done"]
    stop_grace_period: 2s
    deploy:
      <<: *small
  worker:
    image: busybox:latest
    command: ["sh", "-c", "while true; do sleep 1; done"]
    environment:
      QUEUE: jobs
    stop_grace_period: 2s
    deploy:
      <<: *small
      replicas: {worker_replicas}
      placement:
        preferences: [{{spread: node.labels.ecs.availability-zone}}]
  migrate:
    image: busybox:latest
    command: ["sh", "-c", "echo migrated"]
    deploy:
      <<: *small
      restart_policy: {{condition: none}}
{extra}"""


@pytest.fixture(scope="module")
def cluster(busybox):
    c = Cluster(nodes=3, explicit_subnets=False)
    try:
        c.start(busybox=busybox)
        yield c
    finally:
        c.cleanup()


def berth(c, *args, check=True, timeout=150):
    env = dict(c.aws_env(), AWS_CA_BUNDLE=c.ca, AWS_ENDPOINT_URL=c.endpoint, AWS_REGION="us-east-1")
    p = subprocess.run(["nsenter", f"--net=/run/netns/{c.vpc}", berth_binary(), *map(str, args)],
                       capture_output=True, text=True, env=env, timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError(f"berth {args} exited {p.returncode}:\n{p.stdout}\n{p.stderr}")
    return p


def apply(c, tmp_path, text, *flags, check=True):
    f = tmp_path / "stack.yml"
    f.write_text(text)
    return berth(c, "apply", "-f", f, "--name", STACK, *flags, check=check)


def get(addr, path="/"):
    conn = http.client.HTTPConnection(addr, PORT, timeout=5)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        return r.status, r.read().decode().strip()
    finally:
        conn.close()


def answers(c, path="/", n=6):
    """Bodies of n requests spread over every node's listener (None for a failed one)."""
    out = []
    with in_netns(c.vpc):
        for i in range(n):
            try:
                status, body = get(NODE_ADDRS[i % 3], path)
                out.append(body if status == 200 else None)
            except OSError:
                out.append(None)
    return out


def services(c):
    """ECS name -> DescribeServices item (boto3), for the stack's services."""
    out = {}
    with c.ecs() as ecs:
        arns = ecs.list_services()["serviceArns"]
        for i in range(0, len(arns), 10):
            for s in ecs.describe_services(services=arns[i:i + 10], include=["TAGS"])["services"]:
                tags = {t["key"]: t["value"] for t in s.get("tags", [])}
                if s["status"] != "INACTIVE" and tags.get("com.docker.stack.namespace") == STACK:
                    out[s["serviceName"]] = s
    return out


def active_taskdefs(c, prefix=f"{STACK}_"):
    with c.ecs() as ecs:
        return sorted(ecs.list_task_definitions(familyPrefix=prefix, status="ACTIVE")["taskDefinitionArns"])


def snapshot(c):
    """What an apply that changes nothing must leave as it is."""
    svcs = services(c)
    lbs = json.loads(berth(c, "lb", "ls", "--format", "json").stdout)["loadBalancers"]
    return ({n: (s["taskDefinition"], s["desiredCount"], [d["id"] for d in s["deployments"]])
             for n, s in svcs.items()}, active_taskdefs(c), sorted(lb["loadBalancerName"] for lb in lbs))


def test_apply_creates_the_stack(cluster, tmp_path):
    p = apply(cluster, tmp_path, stack_file(), "--wait", "--wait-timeout", "120")
    for line in ["+ taskdef  st_cache", "+ lb       st-web-8080 (port 8080)", "+ service  st_web (2 replicas)",
                 "+ service  st_worker (2 replicas)", "+ run job  st_migrate (1 task)"]:
        assert line in p.stdout, p.stdout
    # dependency order: cache's service before web's
    assert p.stdout.index("+ service  st_cache") < p.stdout.index("+ service  st_web")
    svcs = services(cluster)
    assert set(svcs) == {"st_web", "st_cache", "st_worker"}
    web = svcs["st_web"]
    assert web["runningCount"] == 2 and web["desiredCount"] == 2
    assert web["loadBalancers"][0]["containerName"] == "web" and web["loadBalancers"][0]["containerPort"] == 80
    assert web["deploymentConfiguration"]["maximumPercent"] == 200
    assert web["deploymentConfiguration"]["deploymentCircuitBreaker"] == {"enable": True, "rollback": True}
    assert {"key": "com.docker.stack.image", "value": "busybox:latest"} in web["tags"]
    assert svcs["st_worker"]["placementStrategy"] == [{"type": "spread",
                                                       "field": "attribute:ecs.availability-zone"}]
    td = cluster.aws("describe-task-definition", "--task-definition", "st_worker")["taskDefinition"]
    assert td["networkMode"] == "awsvpc"
    assert td["containerDefinitions"][0]["environment"] == [{"name": "QUEUE", "value": "jobs"}]
    assert td["containerDefinitions"][0]["memory"] == 32
    # through the load balancer on every node, and from web to the cache by its service name
    wait_for(lambda: answers(cluster) == ["v1"] * 6, 30, "v1 through every node's listener")
    # from web to the cache by its short name (cache.st, the stack searched first) and its full name
    wait_for(lambda: answers(cluster, "/cgi-bin/cache", 3) == ["PONG"] * 3, 30, "web -> cache")
    # the cache is `nc -l` in a loop: one connection at a time, with a gap between them
    wait_for(lambda: answers(cluster, "/cgi-bin/full", 3) == ["PONG"] * 3, 30, "web -> cache by its full name")
    # the one-off job ran once and exited 0
    def job_done():
        with cluster.ecs() as ecs:
            arns = ecs.list_tasks(family="st_migrate", desiredStatus="STOPPED")["taskArns"]
            return arns and ecs.describe_tasks(tasks=arns)["tasks"]
    tasks = wait_for(job_done, 30, "the job to finish")
    assert len(tasks) == 1 and tasks[0]["containers"][0]["exitCode"] == 0
    ls = berth(cluster, "stack", "ls").stdout.split("\n")
    assert any(line.split() == ["st", "3"] for line in ls), ls
    svc_ls = berth(cluster, "stack", "services", STACK).stdout
    assert "st_web" in svc_ls and "2/2" in svc_ls and "busybox:latest" in svc_ls
    ps = berth(cluster, "stack", "ps", STACK).stdout
    assert ps.count("RUNNING") >= 5 and "st_migrate:1" in ps


def test_second_apply_changes_nothing(cluster, tmp_path):
    before = snapshot(cluster)
    p = apply(cluster, tmp_path, stack_file())
    assert p.stdout.strip() == "no changes", p.stdout
    assert snapshot(cluster) == before


def test_dry_run_prints_the_diff_and_changes_nothing(cluster, tmp_path):
    before = snapshot(cluster)
    p = apply(cluster, tmp_path, stack_file(version="v2", worker_replicas=3), "--dry-run")
    out = p.stdout
    assert "~ taskdef  st_web\n    containerDefinitions[0].command[2]: " in out, out
    assert "~ service  st_web\n    taskDefinition: " in out, out
    assert "~ service  st_worker\n    desiredCount: 2 -> 3\n" in out, out
    assert "~ service  st_web\n    taskDefinition: " in out and "-> \"st_web (new revision)\"" in out, out
    assert "  st_cache" not in out and "migrate" not in out, out
    assert snapshot(cluster) == before


def test_reapply_deploys_only_the_changed_service(cluster, tmp_path):
    before = services(cluster)
    apply(cluster, tmp_path, stack_file(version="v2"), "--wait", "--wait-timeout", "120")
    after = services(cluster)
    assert after["st_web"]["deployments"][0]["id"] != before["st_web"]["deployments"][0]["id"]
    assert after["st_web"]["taskDefinition"].endswith(":2")
    for name in ("st_cache", "st_worker"):
        assert [d["id"] for d in after[name]["deployments"]] == [d["id"] for d in before[name]["deployments"]]
    wait_for(lambda: answers(cluster) == ["v2"] * 6, 30, "v2 through the load balancer")
    # the job did not run again: its definition did not change
    with cluster.ecs() as ecs:
        assert len(ecs.list_tasks(family="st_migrate", desiredStatus="STOPPED")["taskArns"]) == 1


BAD_FILES = [
    ("services:\n  web:\n    image: busybox\n    bogus: 1\n", "stack.yml:4:5: services.web.bogus: unknown key 'bogus'"),
    ("services:\n  web:\n    image: busybox\n    ports: [\"80\n", "stack.yml:5:1: "),
    ("services:\n  web:\n    image: busybox\n    ports: ['99999:80']\n",
     "stack.yml:4:13: services.web.ports[0]: invalid port '99999:80'"),
    ("services:\n  web:\n    build: ./app\n", "services.web.build: building needs the cluster registry"),
]


@pytest.mark.parametrize("text,error", BAD_FILES, ids=["unknown-key", "bad-yaml", "bad-port", "build"])
def test_bad_files_are_refused_and_change_nothing(cluster, tmp_path, text, error):
    before = snapshot(cluster)
    p = apply(cluster, tmp_path, text, "--prune", check=False)
    assert p.returncode == 1
    assert error in p.stderr, p.stderr
    assert snapshot(cluster) == before


def test_failed_apply_rolls_back(cluster, tmp_path):
    """A file the server refuses part-way (a task definition larger than ECS allows): nothing stays."""
    before = snapshot(cluster)
    extra = ("  api:\n    image: busybox:latest\n    command: [sleep, '1000']\n    ports: ['9090:80']\n"
             "  huge:\n    image: busybox:latest\n    deploy: {resources: {limits: {memory: 100000G}}}\n")
    p = apply(cluster, tmp_path, stack_file(version="v2", worker_replicas=3, extra=extra), check=False)
    assert p.returncode == 1
    assert "apply failed at create taskdef st_huge" in p.stderr, p.stderr
    assert "undo DeregisterTaskDefinition" in p.stderr, p.stderr
    assert snapshot(cluster)[0] == before[0]
    assert active_taskdefs(cluster, "st_api") == []


def test_unplaceable_job_rolls_back_services_and_load_balancers(cluster, tmp_path):
    """The last step fails (a job no node can hold): the new service, its load balancer, the scaled
    service and the new task definitions are all undone."""
    before = snapshot(cluster)
    extra = ("  api:\n    image: busybox:latest\n    command: [sleep, '1000']\n    ports: ['9090:80']\n"
             "    stop_grace_period: 2s\n"
             "  bigjob:\n    image: busybox:latest\n    deploy:\n      restart_policy: {condition: none}\n"
             "      resources: {reservations: {memory: 100G}}\n")
    p = apply(cluster, tmp_path, stack_file(version="v2", worker_replicas=3, extra=extra), check=False)
    assert p.returncode == 1
    assert "+ service  st_api" in p.stdout and "~ service  st_worker" in p.stdout, p.stdout
    assert "RESOURCE:MEMORY" in p.stderr and "apply failed at run job st_bigjob" in p.stderr, p.stderr
    for undo in ("undo DeleteService st_api", "undo BerthDeleteLoadBalancer st-api-9090",
                 "undo UpdateService st_worker", "undo DeregisterTaskDefinition"):
        assert undo in p.stderr, p.stderr
    after = snapshot(cluster)
    assert after[1:] == before[1:]
    assert {n: v[:2] for n, v in after[0].items()} == {n: v[:2] for n, v in before[0].items()}
    assert services(cluster)["st_worker"]["desiredCount"] == 2


def test_prune_removes_what_the_file_dropped(cluster, tmp_path):
    text = stack_file(version="v2").replace("    ports:\n      - \"8080:80\"\n", "")
    text = text[:text.index("  worker:")] + text[text.index("  migrate:"):]
    # web no longer publishes its port: its load balancer goes; worker stays without --prune
    p = apply(cluster, tmp_path, text)
    assert "~ service  st_web\n    loadBalancers: " in p.stdout and "- lb       st-web-8080" in p.stdout, p.stdout
    assert "service st_worker is not in the file: apply with --prune to delete it" in p.stderr
    assert "st_worker" in services(cluster)
    assert json.loads(berth(cluster, "lb", "ls", "--format", "json").stdout)["loadBalancers"] == []
    p = apply(cluster, tmp_path, text, "--prune")
    assert p.stdout == "- service  st_worker\n", p.stdout
    wait_for(lambda: set(services(cluster)) == {"st_web", "st_cache"}, 30, "st_worker to drain and go")
    assert active_taskdefs(cluster, "st_worker") == []


def test_stack_rm_removes_everything(cluster):
    p = berth(cluster, "stack", "rm", STACK)
    assert "- service  st_web" in p.stdout and "- job      st_migrate" in p.stdout, p.stdout
    assert services(cluster) == {}
    assert active_taskdefs(cluster) == []
    assert "st" not in berth(cluster, "stack", "ls").stdout.split()
    assert berth(cluster, "stack", "rm", STACK, check=False).returncode == 1
