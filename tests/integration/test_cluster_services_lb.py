"""Services behind berth's load balancer (issue 14's reliability bar): one module-scoped
cluster of 3 hosts, a service created with `aws ecs create-service --load-balancers`, HTTP
load through the nodes' listeners (HAProxy, as `berth lb` runs it).

- The combined scenario: under continuous requests through the load balancer, a rolling
  deployment to a new task definition, a drain of one host and kill -9 of another host's
  agent, all overlapping; every request is counted and not one may fail (start-before-stop,
  deregistration delay honoured, lost-node replacement), and the service ends at steady state.
- HAProxy's health checks reported back: DescribeTargetHealth (`berth lb targets`) shows
  what the nodes' HAProxy see, and a target failing them is replaced by the service
  scheduler once healthCheckGracePeriodSeconds has passed, with ECS's event and reason.
- Retention: STOPPED tasks and INACTIVE services disappear after --task-retention.
"""
import collections
import http.client
import json
import os
import signal
import subprocess
import threading
import time

import pytest

from cluster_fixture import AWS, REGION, Cluster, in_netns, wait_for
from test_cluster_lb import berth

PORT = 8080
CHK_PORT = 8081
RETENTION = 12  # --task-retention (seconds)
IP_SH = ("IP=$(/bin/busybox ip -o -4 addr show scope global | /bin/busybox awk '{split($4,a,\"/\"); print a[1]}'); "
         "mkdir -p /www && echo v$VERSION $IP > /www/index.html && echo ok > /www/healthz && "
         "exec httpd -f -p 80 -h /www")


def taskdef(family, version):
    return {
        # no task-level cpu: that is a hard CFS quota (ECS's too), and a throttled busybox httpd (a fork
        # per request) under this load misses HAProxy's 1 s checks: the old deployment's tasks then count
        # as unhealthy and are drained at once when the update starts (503s). Container cpu is shares.
        "family": family, "networkMode": "awsvpc", "memory": "64",
        "containerDefinitions": [{
            "name": "web", "image": "busybox:latest", "memory": 32, "cpu": 64, "essential": True,
            "stopTimeout": 2, "portMappings": [{"containerPort": 80}],
            "environment": [{"name": "VERSION", "value": str(version)}], "command": ["sh", "-c", IP_SH],
        }],
    }


def register(c, td):
    return c.aws("register-task-definition", "--cli-input-json", json.dumps(td))["taskDefinition"]["taskDefinitionArn"]


@pytest.fixture(scope="module")
def cluster(busybox):
    # debug: the service controller logs each stop decision with its cause (kept with BERTH_TEST_LOGDIR)
    c = Cluster(nodes=3, server_args=["--agent-lease-ttl", "3", "--lost-node-timeout", "3", "--log-level", "debug",
                                      "--task-retention", str(RETENTION)])
    try:
        c.start(busybox=busybox)
        c.v1 = register(c, taskdef("relweb", 1))
        c.v2 = register(c, taskdef("relweb", 2))
        yield c
    finally:
        c.cleanup()


def describe(ecs, name):
    [s] = ecs.describe_services(services=[name])["services"]
    return s


def service_tasks(ecs, name, desired="RUNNING"):
    arns = ecs.list_tasks(serviceName=name, desiredStatus=desired)["taskArns"]
    return ecs.describe_tasks(tasks=arns)["tasks"] if arns else []


def task_ip(t):
    return t["containers"][0]["networkInterfaces"][0]["privateIpv4Address"]


def get(addr, port, timeout=10):
    conn = http.client.HTTPConnection(addr, port, timeout=timeout)
    try:
        conn.request("GET", "/")
        r = conn.getresponse()
        return r.status, r.read().decode().strip()
    finally:
        conn.close()


class Load:
    """Sequential GETs (a new connection each) through each node's listener until stopped.
    Every request is counted; a failure keeps its time, node and error."""

    def __init__(self, c, nodes, port=PORT):
        self.c, self.port, self.t0 = c, port, time.monotonic()
        self.stop = threading.Event()
        self.ok = collections.Counter()
        self.bodies = collections.defaultdict(list)
        self.failures = []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, args=(n,), daemon=True) for n in nodes]
        self.marks = []

    def mark(self, what):
        self.marks.append((round(time.monotonic() - self.t0, 2), what))

    def _run(self, node):
        with in_netns(self.c.vpc):
            while not self.stop.is_set():
                t = time.monotonic() - self.t0
                try:
                    status, body = get(node.addr, self.port)
                    err = None if status == 200 else f"HTTP {status}: {body[:80]}"
                except OSError as e:
                    err, body = repr(e), None
                with self.lock:
                    if err:
                        self.failures.append((round(t, 2), f"h{node.index}", err))
                    else:
                        self.ok[node.index] += 1
                        self.bodies[node.index].append(body)

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(30)

    def report(self):
        return f"ok per node {dict(self.ok)}, failures {self.failures[:20]} (of {len(self.failures)}), " \
               f"events {self.marks}"


def serving(c, ips, nodes, port=PORT):
    """Every listener of nodes answers from exactly the tasks at ips over two rounds."""
    with in_netns(c.vpc):
        for n in nodes:
            got = set()
            for _ in range(2 * len(ips) + 2):
                try:
                    status, body = get(n.addr, port, timeout=3)
                except OSError:
                    return False
                if status != 200:
                    return False
                got.add(body.split()[1])
            if got != set(ips):
                return False
    return True


@pytest.fixture(scope="module")
def ecs(cluster):
    """A boto3 client; the module's tests run inside the VPC namespace from here on."""
    with cluster.ecs() as client:
        yield client


@pytest.fixture(scope="module")
def lb(cluster):
    arn = berth(cluster, "lb", "create", "relweb", "--port", PORT, "--health-path", "/healthz",
                "--health-interval", 1, "--deregistration-delay", 2).stdout.strip()
    return arn


def exec_in(c, t, *cmd):
    """Run cmd in the task's web container (docker exec on its node)."""
    node = node_by_instance(c)[t["containerInstanceArn"]]
    tid = t["taskArn"].rsplit("/", 1)[1]
    [x] = [x for x in node.containers(all=False) if tid[:20] in x["Names"] and "internalecspause" not in x["Names"]]
    return node.docker("exec", x["ID"], "/bin/busybox", "timeout", "10", *cmd, check=False)


def node_by_instance(c):
    """{containerInstanceArn: Node}."""
    out = {}
    for inst in c.instances():
        zone = next(a["value"] for a in inst["attributes"] if a["name"] == "ecs.availability-zone")
        out[inst["containerInstanceArn"]] = next(n for n in c.nodes if n.zone == zone)
    return out


# Under load this scenario caught the controller stopping every old task at once ~0.1 s after
# UpdateService, before any new task existed: the services_stable waiter passes once the tasks are
# RUNNING, so the update came while they were still inside the 3 s monitor time (not yet counted
# healthy), and old tasks not healthy were free stops. They now stay until the healthy tasks meet
# minimumHealthyPercent without them (server_deploy_free_stop; the server logs each stop decision at debug).
def test_rolling_deploy_drain_and_agent_kill_under_load_fail_no_request(cluster, ecs, lb):
    c = cluster
    c.aws("create-service", "--service-name", "relweb", "--task-definition", c.v1, "--desired-count", 6,
          "--load-balancers", f"targetGroupArn={lb},containerName=web,containerPort=80",
          "--deployment-configuration", "maximumPercent=200,minimumHealthyPercent=100",
          # under load a new task's httpd may listen only seconds after its container started; without a
          # grace period HAProxy's 1 s checks would have the service replace it (ECS's behaviour too)
          "--health-check-grace-period-seconds", 20)
    ecs.get_waiter("services_stable").wait(services=["relweb"], WaiterConfig={"Delay": 1, "MaxAttempts": 90})
    tasks = service_tasks(ecs, "relweb")
    assert len(tasks) == 6
    wait_for(lambda: serving(c, [task_ip(t) for t in tasks], c.nodes), 30, "every listener serving the 6 tasks")
    # the scenario starts where an ECS user would: the target group reports the 6 targets healthy (the
    # service controller drains an old deployment's tasks at once when the load balancers fail them)
    wait_for(lambda: [h["state"] for h in targets(c, "relweb").values()] == ["healthy"] * 6, 60,
             "the target group reporting the 6 tasks healthy")
    nodes = node_by_instance(c)
    arn_of = {n.index: a for a, n in nodes.items()}
    drained, killed = c.nodes[1], c.nodes[2]
    with Load(c, c.nodes) as load:
        time.sleep(1)
        load.mark("update-service v2")
        ecs.update_service(service="relweb", taskDefinition=c.v2)
        # the new deployment's tasks are placed on every node, then one node drains
        wait_for(lambda: {t["containerInstanceArn"] for t in service_tasks(ecs, "relweb")
                          if t["taskDefinitionArn"] == c.v2} == set(nodes), 30, "v2 tasks placed on every node")
        load.mark("drain h2")
        ecs.update_container_instances_state(containerInstances=[arn_of[drained.index]], status="DRAINING")
        # a v2 task on the third node is up: its agent dies (kill -9) in the middle of the rollout
        wait_for(lambda: any(t["taskDefinitionArn"] == c.v2 and t["lastStatus"] == "RUNNING"
                             and t["containerInstanceArn"] == arn_of[killed.index]
                             for t in service_tasks(ecs, "relweb")), 30, "a v2 task running on h3")
        lost = [t["taskArn"] for t in service_tasks(ecs, "relweb") if t["containerInstanceArn"] == arn_of[killed.index]]
        load.mark("kill -9 agent h3")
        killed.stop(signal.SIGKILL)

        def lost_stopped():  # before --task-retention deletes them
            out = ecs.describe_tasks(tasks=lost)
            if all(t["lastStatus"] == "STOPPED" for t in out["tasks"]):
                return [t.get("stoppedReason", "") for t in out["tasks"]]
        reasons = wait_for(lost_stopped, 60, "h3's tasks STOPPED by the lost-node timeout", every=0.2)
        load.mark("h3 lost")

        def settled():
            s = describe(ecs, "relweb")
            ts = service_tasks(ecs, "relweb")
            return (len(s["deployments"]) == 1 and s["taskDefinition"] == c.v2 and s["runningCount"] == 6
                    and s["deployments"][0]["rolloutState"] == "COMPLETED" and len(ts) == 6
                    and all(t["lastStatus"] == "RUNNING" and t["taskDefinitionArn"] == c.v2
                            and t["containerInstanceArn"] == arn_of[c.nodes[0].index] for t in ts))
        wait_for(settled, 150, "v2 deployed, h2 drained and h3's tasks replaced, all on h1", every=0.5)
        load.mark("steady")
        # the agent comes back: it stops its stale copies; the drained node is put back in service
        killed.start()
        ecs.update_container_instances_state(containerInstances=[arn_of[drained.index]], status="ACTIVE")
        seen = {}

        def stale():
            p = killed.docker("ps", "--format", "{{.Names}} {{.Status}}", check=False)
            seen["ps"] = (p.returncode, p.stdout, p.stderr)
            return p.returncode == 0 and "relweb" not in p.stdout
        try:
            # restart, one dataplane answer, then stopTimeout (2 s) and the namespace owner's (2 s)
            wait_for(stale, 90, "the returning agent stopping its stale copies", every=0.5)
        except AssertionError as e:
            raise AssertionError(f"{e}: docker ps on h3 {seen.get('ps')}; agent log:\n"
                                 + open(killed.log).read()[-4000:]) from None
        load.mark("h3 back, h2 active")
        wait_for(lambda: serving(c, [task_ip(t) for t in service_tasks(ecs, "relweb")], c.nodes), 60,
                 "every listener serving the service's tasks")
        time.sleep(1)
    print("load:", load.report())
    assert not load.failures, load.report()
    assert all(load.ok[n.index] > 20 for n in c.nodes), load.report()
    for n in c.nodes:
        versions = [b.split()[0] for b in load.bodies[n.index]]
        assert "v1" in versions and "v2" in versions, (n.index, load.report())
        assert set(versions[-5:]) == {"v2"}, (n.index, load.bodies[n.index][-10:], load.report())
    # start-before-stop and the rest, as ECS writes it
    msgs = [e["message"] for e in describe(ecs, "relweb")["events"]]
    assert any(m.startswith("(service relweb) has begun draining connections on") for m in msgs), msgs
    assert "(service relweb) has reached a steady state." in msgs
    assert any("node lost" in r for r in reasons), reasons
    [s] = ecs.describe_services(services=["relweb"])["services"]
    assert s["runningCount"] == 6 and s["desiredCount"] == 6


def elbv2(c, *args, check=True):
    """`aws elbv2 ...` against the server's endpoint (ELBv2's query protocol)."""
    p = subprocess.run(["nsenter", f"--net=/run/netns/{c.vpc}", AWS, "--region", REGION, "--endpoint-url", c.endpoint,
                        "--ca-bundle", c.ca, "--output", "json", "elbv2", *map(str, args)],
                       capture_output=True, text=True, env=c.aws_env(), timeout=90)
    if check and p.returncode != 0:
        raise AssertionError(f"aws elbv2 {args} exited {p.returncode}: {p.stderr}")
    return json.loads(p.stdout) if p.returncode == 0 and p.stdout.strip() else p


def targets(c, name):
    out = json.loads(berth(c, "lb", "targets", name, "--format", "json").stdout)
    return {d["target"]["id"].rsplit("/", 1)[1]: d["targetHealth"] for d in out["targetHealthDescriptions"]}


def test_haproxy_health_is_reported_and_failing_targets_are_replaced(cluster, ecs):
    c = cluster
    arn = berth(c, "lb", "create", "relchk", "--port", CHK_PORT, "--health-path", "/healthz",
                "--health-interval", 1, "--deregistration-delay", 1).stdout.strip()
    ecs.create_service(serviceName="relchk", taskDefinition=c.v1, desiredCount=2, healthCheckGracePeriodSeconds=600,
                       loadBalancers=[{"targetGroupArn": arn, "containerName": "web", "containerPort": 80}])
    ecs.get_waiter("services_stable").wait(services=["relchk"], WaiterConfig={"Delay": 1, "MaxAttempts": 90})
    tasks = service_tasks(ecs, "relchk")
    ids = {t["taskArn"].rsplit("/", 1)[1] for t in tasks}
    connected = {n.index for n in c.nodes if n.proc}
    # every connected node's HAProxy checks both targets and says so
    wait_for(lambda: (lambda th: set(th) == ids and all(
        h["state"] == "healthy" and len(h.get("nodes", {})) == len(connected) for h in th.values()))(
        targets(c, "relchk")), 30, "both targets healthy on every node")
    sick = tasks[0]
    sick_id = sick["taskArn"].rsplit("/", 1)[1]
    assert exec_in(c, sick, "/bin/busybox", "rm", "/www/healthz").returncode == 0
    # unhealthy once most nodes' checks fail it; here every node's do
    h = wait_for(lambda: (lambda h: h if h.get("state") == "unhealthy" and list(h["nodes"].values()) == [
        "unhealthy"] * len(connected) else None)(targets(c, "relchk").get(sick_id, {})), 30,
        "the target unhealthy as every node's HAProxy sees it")
    assert h["reason"] == "Target.ResponseCodeMismatch", h
    assert h["description"] == "Health checks failed with these codes: [404]", h
    # the same through the aws CLI's elbv2 client (ELB's query protocol and shapes)
    out = elbv2(c, "describe-target-health", "--target-group-arn", arn)["TargetHealthDescriptions"]
    by_ip = {d["Target"]["Id"]: d for d in out}
    assert set(by_ip) == {task_ip(t) for t in tasks}
    bad = by_ip[task_ip(sick)]
    assert bad["Target"]["Port"] == 80 and bad["HealthCheckPort"] == "80"
    assert bad["TargetHealth"] == {"State": "unhealthy", "Reason": "Target.ResponseCodeMismatch",
                                   "Description": "Health checks failed with these codes: [404]"}
    [well] = [d for ip, d in by_ip.items() if ip != task_ip(sick)]
    assert well["TargetHealth"] == {"State": "healthy"}
    [tg] = elbv2(c, "describe-target-groups", "--names", "relchk")["TargetGroups"]
    assert tg["TargetGroupArn"] == arn and tg["Port"] == CHK_PORT and tg["HealthCheckPath"] == "/healthz"
    assert tg["HealthCheckIntervalSeconds"] == 1 and tg["TargetType"] == "ip" and len(tg["LoadBalancerArns"]) == 1
    for args, code in ((["describe-target-health", "--target-group-arn", arn[:-1] + ("e" if arn[-1] == "f" else "f")],
                        "TargetGroupNotFound"),
                       (["describe-target-health", "--target-group-arn", "nope"], "ValidationError"),
                       (["describe-target-groups", "--names", "nosuch"], "TargetGroupNotFound")):
        p = elbv2(c, *args, check=False)
        assert p.returncode != 0 and f"({code})" in p.stderr, (args, p.stderr)
    # inside the grace period the scheduler leaves it; after it, ECS replaces the task
    assert describe(ecs, "relchk")["runningCount"] == 2
    assert ecs.describe_tasks(tasks=[sick["taskArn"]])["tasks"][0]["desiredStatus"] == "RUNNING"
    ecs.update_service(service="relchk", healthCheckGracePeriodSeconds=1)
    [t] = wait_for(lambda: (lambda ts: ts if ts[0]["lastStatus"] == "STOPPED" else None)(
        ecs.describe_tasks(tasks=[sick["taskArn"]])["tasks"]), 60, "the failing task stopped")
    assert t["stoppedReason"] == f"Task failed ELB health checks in (target-group {arn})", t["stoppedReason"]
    assert t["stopCode"] == "ServiceSchedulerInitiated"
    msgs = [e["message"] for e in describe(ecs, "relchk")["events"]]
    want = (f"(service relchk) (task {sick_id}) (port 80) is unhealthy in target-group relchk due to "
            "(reason Health checks failed with these codes: [404]).")
    assert want in msgs, msgs
    ecs.get_waiter("services_stable").wait(services=["relchk"], WaiterConfig={"Delay": 1, "MaxAttempts": 90})
    # counted once the task has STOPPED (the waiter may already pass while it is still stopping)
    wait_for(lambda: describe(ecs, "relchk")["deployments"][0]["failedTasks"] >= 1, 30, "the failure counted")
    assert describe(ecs, "relchk")["runningCount"] == 2
    new = {t["taskArn"].rsplit("/", 1)[1] for t in service_tasks(ecs, "relchk")}
    wait_for(lambda: (lambda th: all(th[i]["state"] == "healthy" for i in new))(targets(c, "relchk")), 30,
             "the replacement healthy")
    ecs.delete_service(service="relchk", force=True)
    wait_for(lambda: describe(ecs, "relchk")["status"] == "INACTIVE", 60, "relchk INACTIVE")
    berth(c, "lb", "rm", "relchk")


def test_stopped_tasks_and_inactive_services_expire_after_the_retention(cluster, ecs):
    c = cluster
    ecs.create_service(serviceName="brief", taskDefinition=c.v1, desiredCount=1)
    ecs.get_waiter("services_stable").wait(services=["brief"], WaiterConfig={"Delay": 1, "MaxAttempts": 90})
    [t] = service_tasks(ecs, "brief")
    ecs.delete_service(service="brief", force=True)
    wait_for(lambda: describe(ecs, "brief")["status"] == "INACTIVE", 60, "brief INACTIVE")
    [stopped] = ecs.describe_tasks(tasks=[t["taskArn"]])["tasks"]
    assert stopped["lastStatus"] == "STOPPED"
    assert t["taskArn"] in ecs.list_tasks(desiredStatus="STOPPED")["taskArns"]

    def gone():
        out = ecs.describe_tasks(tasks=[t["taskArn"]])
        return out["failures"] if not out["tasks"] else None
    [f] = wait_for(gone, RETENTION + 30, "the stopped task deleted", every=0.5)
    # never before the retention: ECS keeps stopped tasks visible (berth: --task-retention)
    assert time.time() - stopped["stoppedAt"].timestamp() >= RETENTION - 1
    assert f["reason"] == "MISSING" and f["arn"] == t["taskArn"]
    assert t["taskArn"] not in ecs.list_tasks(desiredStatus="STOPPED")["taskArns"]
    # the INACTIVE service goes the same way
    wait_for(lambda: not ecs.describe_services(services=["brief"])["services"], RETENTION + 30,
             "the INACTIVE service deleted", every=0.5)
    assert ecs.describe_services(services=["brief"])["failures"][0]["reason"] == "MISSING"
    # earlier tests' stopped tasks (the rollout's, the lost node's) are gone too; running ones stay
    left = ecs.list_tasks(desiredStatus="STOPPED")["taskArns"]
    old = [t["taskArn"] for t in (ecs.describe_tasks(tasks=left)["tasks"] if left else [])
           if t["stoppedAt"].timestamp() < time.time() - RETENTION - 5]
    assert not old, old
    assert len(service_tasks(ecs, "relweb")) == 6


def test_a_copy_whose_agent_died_before_recording_its_containers_is_stopped_whole(cluster, ecs):
    """An agent killed while starting a task (its pause container is started before its id is
    saved) leaves a container the task's state does not name: the resumed copy must not leave it
    running once the task stops (CI: `docker ps` on the returning node kept listing it)."""
    c = cluster
    [t] = ecs.run_task(taskDefinition=c.v1, count=1)["tasks"]
    ecs.get_waiter("tasks_running").wait(tasks=[t["taskArn"]], WaiterConfig={"Delay": 1, "MaxAttempts": 90})
    node = node_by_instance(c)[t["containerInstanceArn"]]
    tid = t["taskArn"].rsplit("/", 1)[1]
    mine = lambda: [x["Names"] for x in node.containers(all=False) if tid[:20] in x["Names"]]  # noqa: E731
    assert len(mine()) == 2, mine()  # the pause container and web
    node.stop(signal.SIGKILL)
    # the state as an agent killed between starting the pause container and saving its id leaves it
    path = os.path.join(node.root, "agent", "tasks", f"{tid}.json")
    doc = json.load(open(path))
    del doc["state"]["pause"]
    with open(path, "w") as f:
        json.dump(doc, f)
    node.start()
    ecs.stop_task(task=t["taskArn"])
    wait_for(lambda: not mine(), 60, "every container of the stopped task gone", every=0.5)
