"""berth agent on a simulated multi-host cluster (cluster_fixture): tasks placed by
`aws ecs run-task` run on the nodes through the host layer, report their
transitions, and survive agent and server restarts (issue 12 §3, §4, §7).
"""
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess

import pytest

from cluster_fixture import Cluster, wait_for
from conftest import run

RUNC = shutil.which("runc") or "/usr/sbin/runc"
# The daemon's runtime options on every node: a runc binary under its own name (tasks keep the
# built-in runtime) and dockerd's io.containerd.runc.v2 as the default (runc, the built-in here).
NODE_RUNTIMES = ["--add-runtime", f"realrunc={RUNC}", "--default-runtime", "io.containerd.runc.v2"]

WEB = {
    "family": "web",
    "networkMode": "awsvpc",
    "cpu": "256",
    "memory": "128",
    "containerDefinitions": [{
        "name": "web", "image": "busybox:latest", "memory": 64, "cpu": 128, "essential": True,
        "stopTimeout": 2,  # httpd as PID 1 ignores SIGTERM: the stop is a SIGKILL after this
        "portMappings": [{"containerPort": 80}],
        "command": ["sh", "-c", "mkdir -p /www && echo hello-from-task > /www/index.html && "
                                "exec httpd -f -p 80 -h /www"],
        "dockerLabels": {"team": "a"},
    }],
}


def register(cluster, td):
    return cluster.aws("register-task-definition", "--cli-input-json", json.dumps(td))["taskDefinition"]


def describe(cluster, arns):
    return cluster.api("describe_tasks", tasks=list(arns))["tasks"]


def wait_status(cluster, arns, status, timeout=60):
    def ok():
        ts = describe(cluster, arns)
        return ts if len(ts) == len(arns) and all(t["lastStatus"] == status for t in ts) else None
    return wait_for(ok, timeout, f"tasks {status}")


def run_task(cluster, *args):
    out = cluster.aws("run-task", *args)
    assert not out["failures"], out["failures"]
    return [t["taskArn"] for t in out["tasks"]]


def stop_all(cluster):
    arns = cluster.api("list_tasks")["taskArns"]
    for a in arns:
        cluster.api("stop_task", task=a)
    if arns:
        wait_status(cluster, arns, "STOPPED", 90)


def cluster_on(store, busybox):
    """Three nodes on one store backend. The tests of this file run on SQLite here and on etcd in
    test_cluster_agent_etcd.py (shared/CLUSTER.md): two files, so that parallel workers
    (pytest-xdist --dist loadfile) run the two backends at the same time."""
    if store == "etcd" and not os.access("/usr/bin/etcd", os.X_OK):
        pytest.skip("etcd not installed (apt-get install etcd-server)")
    c = Cluster(nodes=3, store=store)
    try:
        c.start(busybox=busybox, node_extra=NODE_RUNTIMES)
        register(c, WEB)
        yield c
    finally:
        c.cleanup()


@pytest.fixture(scope="module")
def cluster(busybox):
    yield from cluster_on("sqlite", busybox)


@pytest.fixture
def clean(cluster):
    yield cluster
    stop_all(cluster)


def test_nodes_register_connected_with_their_zones(cluster):
    insts = cluster.instances()
    assert len(insts) == 3
    zones = sorted(next(a["value"] for a in i["attributes"] if a["name"] == "ecs.availability-zone")
                   for i in insts)
    assert zones == ["us-east-1a", "us-east-1b", "us-east-1c"]
    assert all(i["status"] == "ACTIVE" and i["agentConnected"] for i in insts)
    cpu = [r for r in insts[0]["registeredResources"] if r["name"] == "CPU"][0]["integerValue"]
    assert cpu == 1024 * os.cpu_count()


def test_agent_runtime_options_as_the_daemons(cluster):
    """berth agent --add-runtime/--default-runtime: the node's Docker API lists them, a container
    may choose the defined runtime (in its own state root), one naming none gets the default."""
    node = cluster.nodes[0]
    info = json.loads(node.docker("info", "-f", "{{json .}}").stdout)
    assert info["DefaultRuntime"] == "io.containerd.runc.v2"
    assert info["Runtimes"] == {"berth": {"path": "berth"}, "runc": {"path": "berth"},
                                "realrunc": {"path": RUNC}, "io.containerd.runc.v2": {"path": "berth"}}
    dflt = node.docker("create", "--network", "none", "busybox", "true").stdout.strip()
    assert node.docker("inspect", "-f", "{{.HostConfig.Runtime}}", dflt).stdout.strip() == "io.containerd.runc.v2"
    node.docker("rm", dflt)
    if not os.access(RUNC, os.X_OK):
        return
    cid = node.docker("run", "-d", "--network", "none", "--runtime", "realrunc", "busybox", "sleep", "600")
    cid = cid.stdout.strip()
    try:
        st = run([RUNC, "--root", os.path.join(node.exec_root, "runtime-realrunc"), "state", cid], check=False)
        assert st.returncode == 0 and json.loads(st.stdout)["status"] == "running", st.stderr
    finally:
        node.docker("rm", "-f", cid)


def test_run_task_spreads_over_zones_and_each_node_runs_its_task(clean):
    c = clean
    arns = run_task(c, "--task-definition", "web", "--count", "3", "--placement-strategy",
                    "type=spread,field=attribute:ecs.availability-zone")
    with c.ecs() as ecs:
        ecs.get_waiter("tasks_running").wait(tasks=arns, WaiterConfig={"Delay": 1, "MaxAttempts": 90})
    tasks = describe(c, arns)
    assert len({t["containerInstanceArn"] for t in tasks}) == 3
    for t in tasks:
        node = c.node_of(t["containerInstanceArn"])
        ip = t["containers"][0]["networkInterfaces"][0]["privateIpv4Address"]
        assert ip.startswith(node.subnet.rsplit(".", 2)[0] + "."), (ip, node.subnet)
        [eni] = t["attachments"]
        details = {d["name"]: d["value"] for d in eni["details"]}
        assert eni["type"] == "ElasticNetworkInterface" and eni["status"] == "ATTACHED"
        assert details["privateIPv4Address"] == ip and details["macAddress"]
        # as ECS: the container's interface names the task's attachment by its id (a UUID)
        assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", eni["id"])
        assert t["containers"][0]["networkInterfaces"] == [{"attachmentId": eni["id"], "privateIpv4Address": ip}]
        names = {x["Names"]: x for x in node.containers(all=False)}
        tid = t["taskArn"].rsplit("/", 1)[1]
        web = names[f"ecs-web-1-web-{tid[:20]}"]
        labels = dict(kv.split("=", 1) for kv in web["Labels"].split(","))
        assert labels["com.amazonaws.ecs.task-arn"] == t["taskArn"]
        assert labels["com.amazonaws.ecs.container-name"] == "web"
        assert labels["com.amazonaws.ecs.task-definition-family"] == "web"
        assert labels["com.amazonaws.ecs.cluster"].endswith(":cluster/default")
        assert labels["team"] == "a"
        # the task's own address serves, from its node
        p = run(["nsenter", f"--net=/run/netns/{node.netns}", "/usr/bin/python3", "-c",
                 f"import urllib.request;print(urllib.request.urlopen('http://{ip}/',timeout=10).read().decode())"])
        assert p.stdout.strip() == "hello-from-task"


def test_bridge_task_reports_its_dynamic_host_port_and_health(clean):
    c = clean
    register(c, {"family": "bridged", "networkMode": "bridge", "containerDefinitions": [{
        "name": "web", "image": "busybox:latest", "memory": 32, "stopTimeout": 2,
        "portMappings": [{"containerPort": 80, "hostPort": 0}],
        "command": ["sh", "-c", "mkdir -p /www && echo bridged > /www/index.html && exec httpd -f -p 80 -h /www"],
        "healthCheck": {"command": ["CMD-SHELL", "wget -q -O /dev/null http://127.0.0.1/ || exit 1"],
                        "interval": 5, "timeout": 2, "retries": 2}}]})
    [arn] = run_task(c, "--task-definition", "bridged")
    wait_status(c, [arn], "RUNNING")
    t = wait_for(lambda: next((x for x in describe(c, [arn]) if x.get("healthStatus") == "HEALTHY"), None),
                 60, "task HEALTHY")
    assert t["containers"][0]["healthStatus"] == "HEALTHY"
    [b] = t["containers"][0]["networkBindings"]
    assert b["containerPort"] == 80 and b["protocol"] == "tcp" and b["hostPort"] > 0
    node = c.node_of(t["containerInstanceArn"])
    p = run(["nsenter", f"--net=/run/netns/{node.netns}", "/usr/bin/python3", "-c",
             f"import urllib.request;print(urllib.request.urlopen('http://127.0.0.1:{b['hostPort']}/',"
             "timeout=10).read().decode())"])
    assert p.stdout.strip() == "bridged"


def test_essential_container_exit_stops_the_task_with_its_exit_code(clean):
    c = clean
    register(c, {"family": "oneshot", "networkMode": "none", "containerDefinitions": [
        {"name": "main", "image": "busybox:latest", "memory": 16, "command": ["sh", "-c", "exit 7"]},
        {"name": "side", "image": "busybox:latest", "memory": 16, "essential": False, "stopTimeout": 2,
         "command": ["sleep", "600"]}]})
    [arn] = run_task(c, "--task-definition", "oneshot")
    with c.ecs() as ecs:
        ecs.get_waiter("tasks_stopped").wait(tasks=[arn], WaiterConfig={"Delay": 1, "MaxAttempts": 90})
    [t] = describe(c, [arn])
    assert t["stopCode"] == "EssentialContainerExited"
    assert t["stoppedReason"] == "Essential container in task exited"
    codes = {x["name"]: x.get("exitCode") for x in t["containers"]}
    assert codes["main"] == 7 and codes["side"] == 137
    assert all(x["lastStatus"] == "STOPPED" for x in t["containers"])


def test_a_task_whose_secrets_cannot_be_read_fails_to_start(clean):
    """ECS fails a task whose secrets it cannot retrieve (ResourceInitializationError); berth has no
    secrets store, so the task fails the same way instead of running without the variable."""
    c = clean
    register(c, {"family": "withsecret", "networkMode": "none", "containerDefinitions": [
        {"name": "app", "image": "busybox:latest", "memory": 16, "command": ["sleep", "600"],
         "environment": [{"name": "PLAIN", "value": "1"}],
         "secrets": [{"name": "DB_PASSWORD", "valueFrom": "arn:aws:ssm:us-east-1:123456789012:parameter/db"}]}]})
    [arn] = run_task(c, "--task-definition", "withsecret")
    with c.ecs() as ecs:
        ecs.get_waiter("tasks_stopped").wait(tasks=[arn], WaiterConfig={"Delay": 1, "MaxAttempts": 90})
    [t] = describe(c, [arn])
    assert t["stopCode"] == "TaskFailedToStart", t
    assert t["stoppedReason"].startswith("ResourceInitializationError: unable to pull secrets: container 'app' "
                                         "secret 'DB_PASSWORD' (valueFrom 'arn:aws:ssm:"), t["stoppedReason"]
    assert "runtimeId" not in t["containers"][0]  # no container was created


# Issue 18 item 1 for tasks: every fd of a task's process is its own (pipes, its own /dev/null),
# never the host's /dev/null or another host file. The probe exits 3 on a foreign fd.
FD_PROBE = (
    'own=$(stat -c %D:%i /dev/null); bad=0; [ "$own" = "$HOSTNULL" ] && bad=1; '
    'for f in /proc/$$/fd/*; do t=$(readlink $f); id=$(stat -L -c %D:%i $f); '
    'case "$t" in pipe:*|/dev/null) ;; *) echo "foreign fd $f -> $t"; bad=1;; esac; '
    '[ "$id" = "$HOSTNULL" ] && { echo "fd $f is the host null"; bad=1; }; '
    '[ "$t" = /dev/null ] && [ "$id" != "$own" ] && { echo "fd $f is a foreign null"; bad=1; }; '
    'done; exit $((bad * 3))')


def test_task_processes_hold_no_host_fd(clean):
    c = clean
    st = os.stat("/dev/null")
    host_null = f"{st.st_dev:x}:{st.st_ino}"
    register(c, {"family": "fdprobe", "networkMode": "awsvpc", "containerDefinitions": [
        {"name": "probe", "image": "busybox:latest", "memory": 16,
         "environment": [{"name": "HOSTNULL", "value": host_null}],
         "command": ["sh", "-c", FD_PROBE]}]})
    [arn] = run_task(c, "--task-definition", "fdprobe")
    [t] = wait_status(c, [arn], "STOPPED", 90)
    assert t["containers"][0].get("exitCode") == 0, t


def test_depends_on_success_starts_after_the_dependency_completed(clean):
    c = clean
    register(c, {"family": "ordered", "networkMode": "none",
                 "volumes": [{"name": "scratch"}],
                 "containerDefinitions": [
                     {"name": "app", "image": "busybox:latest", "memory": 16, "stopTimeout": 2,
                      "mountPoints": [{"sourceVolume": "scratch", "containerPath": "/s"}],
                      "command": ["sh", "-c", "test -f /s/ready && exec sleep 600; exit 9"],
                      "dependsOn": [{"containerName": "init", "condition": "SUCCESS"}]},
                     {"name": "init", "image": "busybox:latest", "memory": 16, "essential": False,
                      "mountPoints": [{"sourceVolume": "scratch", "containerPath": "/s"}],
                      "command": ["sh", "-c", "sleep 1; touch /s/ready"]}]})
    [arn] = run_task(c, "--task-definition", "ordered")
    wait_status(c, [arn], "RUNNING")
    [t] = describe(c, [arn])
    st = {x["name"]: (x["lastStatus"], x.get("exitCode")) for x in t["containers"]}
    assert st == {"init": ("STOPPED", 0), "app": ("RUNNING", None)}, st


def test_dependency_that_fails_stops_the_task_before_its_dependents_start(clean):
    c = clean
    register(c, {"family": "badinit", "networkMode": "none", "containerDefinitions": [
        {"name": "app", "image": "busybox:latest", "memory": 16, "command": ["sleep", "600"], "stopTimeout": 2,
         "dependsOn": [{"containerName": "init", "condition": "SUCCESS"}]},
        {"name": "init", "image": "busybox:latest", "memory": 16, "essential": False,
         "command": ["sh", "-c", "exit 4"]}]})
    [arn] = run_task(c, "--task-definition", "badinit")
    [t] = wait_status(c, [arn], "STOPPED")
    assert t["stopCode"] == "TaskFailedToStart"
    assert "SUCCESS" in t["stoppedReason"] and "init" in t["stoppedReason"]


def test_stop_task_stops_containers_and_the_node_removes_them(clean):
    c = clean
    [arn] = run_task(c, "--task-definition", "web")
    [t] = wait_status(c, [arn], "RUNNING")
    node = c.node_of(t["containerInstanceArn"])
    tid = arn.rsplit("/", 1)[1]
    assert any(tid[:20] in x["Names"] for x in node.containers())
    c.aws("stop-task", "--task", arn, "--reason", "maintenance")
    [t] = wait_status(c, [arn], "STOPPED", 90)
    assert t["stoppedReason"] == "maintenance" and t["stopCode"] == "UserInitiated"
    assert t["containers"][0]["exitCode"] in (0, 137, 143)
    wait_for(lambda: not any(tid[:20] in x["Names"] for x in node.containers()), 30, "containers removed")


def test_unplaceable_task_is_a_failure_not_a_hang(cluster):
    register(cluster, {"family": "huge", "containerDefinitions": [
        {"name": "x", "image": "busybox:latest", "memory": 120_000}]})
    out = cluster.aws("run-task", "--task-definition", "huge")
    assert out["tasks"] == [] and out["failures"]
    assert out["failures"][0]["reason"] == "RESOURCE:MEMORY"


def test_drained_node_gets_no_new_tasks(clean):
    c = clean
    drained = c.instances()[0]["containerInstanceArn"]
    c.aws("update-container-instances-state", "--container-instances", drained, "--status", "DRAINING")
    try:
        arns = run_task(c, "--task-definition", "web", "--count", "4")
        assert drained not in {t["containerInstanceArn"] for t in describe(c, arns)}
    finally:
        c.aws("update-container-instances-state", "--container-instances", drained, "--status", "ACTIVE")


def test_agent_kill9_keeps_tasks_running_and_the_restarted_agent_reattaches(clean):
    c = clean
    [arn] = run_task(c, "--task-definition", "web")
    [t] = wait_status(c, [arn], "RUNNING")
    node = c.node_of(t["containerInstanceArn"])
    before = {x["ID"] for x in node.containers(all=False)}
    node.stop(signal.SIGKILL)
    ip = t["containers"][0]["networkInterfaces"][0]["privateIpv4Address"]
    # the task keeps serving while its agent is gone
    p = run(["nsenter", f"--net=/run/netns/{node.netns}", "/usr/bin/python3", "-c",
             f"import urllib.request;print(urllib.request.urlopen('http://{ip}/',timeout=10).read().decode())"])
    assert p.stdout.strip() == "hello-from-task"
    node.start()
    assert {x["ID"] for x in node.containers(all=False)} == before
    [t] = describe(c, [arn])
    assert t["lastStatus"] == "RUNNING"
    c.aws("stop-task", "--task", arn)
    wait_status(c, [arn], "STOPPED", 90)


def test_server_restart_keeps_state_and_tasks_keep_running(clean):
    c = clean
    [arn] = run_task(c, "--task-definition", "web")
    wait_status(c, [arn], "RUNNING")
    c.stop_server(signal.SIGKILL)
    c.start_server()
    assert len(c.instances()) == 3
    [t] = describe(c, [arn])
    assert t["lastStatus"] == "RUNNING"
    node = c.node_of(t["containerInstanceArn"])
    tid = arn.rsplit("/", 1)[1]
    assert any(tid[:20] in x["Names"] for x in node.containers(all=False))
    # the agents found the restarted server again: a new task still gets placed and run
    [arn2] = run_task(c, "--task-definition", "web")
    wait_status(c, [arn2], "RUNNING")


def test_agent_with_a_bad_token_is_refused_and_registers_nothing(cluster):
    node = cluster.nodes[0]
    good = cluster.token()
    bad = good[:-4] + ("0000" if not good.endswith("0000") else "1111")
    base = os.path.join(cluster.base, "intruder")
    args = node.args(token=bad)
    i = args.index("--root")
    args[i + 1] = os.path.join(base, "root")
    args[args.index("--exec-root") + 1] = os.path.join(base, "run")
    args[args.index("--pidfile") + 1] = os.path.join(base, "pid")
    args[args.index("--cgroup-parent") + 1] = node.cgroup_parent + "-x"
    before = len(cluster.instances())
    p = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert p.returncode != 0
    assert "join refused" in p.stderr, p.stderr
    assert len(cluster.instances()) == before
    run(["umount", "-R", os.path.join(base, "run")], check=False)


def test_agent_rejects_a_token_pinning_another_ca(cluster):
    node = cluster.nodes[0]
    other = "K10" + "ab" * 32 + "::" + "cd" * 16
    args = node.args(token=other)
    base = os.path.join(cluster.base, "intruder2")
    for flag, v in (("--root", "root"), ("--exec-root", "run"), ("--pidfile", "pid")):
        args[args.index(flag) + 1] = os.path.join(base, v)
    args[args.index("--cgroup-parent") + 1] = node.cgroup_parent + "-y"
    p = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert p.returncode != 0 and "does not match the join token" in p.stderr, p.stderr


def test_agent_usage_errors(berth_bin, tmp_path):
    for args, msg in ((["agent"], "--server and --token are required"),
                      (["agent", "--server", "http://x:1", "--token", "t"], "expected https://HOST:PORT"),
                      (["agent", "--server", "https://x:1", "--token", "t", "--cpu", "-1"], "invalid --cpu"),
                      (["agent", "--server", "https://x:1", "--token", "t", "extra"], "unexpected argument"),
                      (["agent", "--server", "https://x:1", "--token", "t", "--add-runtime", "berth=/x"],
                       "berth agent: --add-runtime: runtime name 'berth' is reserved"),
                      (["agent", "--server", "https://x:1", "--token", "t", "--root", str(tmp_path / "root"),
                        "--default-runtime", "crun"], "berth agent: specified default runtime 'crun' does not exist")):
        p = subprocess.run([berth_bin, *args], capture_output=True, text=True, timeout=10)
        assert p.returncode == 1 and msg in p.stderr, (args, p.stderr)
    assert not (tmp_path / "root").exists()  # a bad runtime option is refused before anything is made
    p = subprocess.run([berth_bin, "agent", "--help"], capture_output=True, text=True, timeout=10)
    assert p.returncode == 0 and "--token" in p.stdout and "--add-runtime NAME=PATH" in p.stdout
    # the first bad flag ends the parse: one message (a bad value used to be followed by getopt's)
    for args, err in ((["--cpu", "x", "--bogus"], "berth agent: invalid --cpu 'x'\n"),
                      (["--metrics-interval", "11"], "berth agent: invalid --metrics-interval '11': 1 to 10 seconds\n"),
                      (["--label", "a=b", "--taint=k:NoSchedule", "--memory="], "berth agent: invalid --memory ''\n")):
        p = subprocess.run([berth_bin, "agent", *args], capture_output=True, text=True, timeout=10)
        assert p.returncode == 1 and p.stderr == err, (args, p.stderr)
    p = subprocess.run([berth_bin, "agent", "--bogus"], capture_output=True, text=True, timeout=10)
    assert p.returncode == 1 and p.stderr.startswith("agent: unrecognized option '--bogus'\nUsage: berth agent")


@pytest.fixture
def quick(busybox):
    """Two nodes whose leases lapse fast: 3 s lease, 4 s lost-node timeout."""
    c = Cluster(nodes=2, server_args=["--agent-lease-ttl", "3", "--lost-node-timeout", "4"])
    try:
        c.start(busybox=busybox)
        register(c, WEB)
        yield c
    finally:
        c.cleanup()


def test_lost_node_tasks_stop_and_the_returning_agent_stops_its_stale_copies(quick):
    c = quick
    [arn] = run_task(c, "--task-definition", "web")
    [t] = wait_status(c, [arn], "RUNNING")
    node = c.node_of(t["containerInstanceArn"])
    tid = arn.rsplit("/", 1)[1]
    node.stop(signal.SIGKILL)
    [t] = wait_status(c, [arn], "STOPPED", 60)
    assert "lost" in t["stoppedReason"].lower(), t["stoppedReason"]
    node.start()
    wait_for(lambda: not any(tid[:20] in x["Names"] for x in node.containers()), 90, "stale copy removed")


@pytest.fixture
def replicated(busybox):
    """Two servers sharing etcd, two nodes whose agents know both (--server A,B)."""
    if not os.access("/usr/bin/etcd", os.X_OK):
        pytest.skip("etcd not installed (apt-get install etcd-server)")
    c = Cluster(nodes=2, servers=2, server_args=["--agent-lease-ttl", "4"])
    try:
        c.start(busybox=busybox)
        register(c, WEB)
        yield c
    finally:
        c.cleanup()


def test_agents_fail_over_to_another_server_replica(replicated):
    c = replicated
    [arn] = run_task(c, "--task-definition", "web")
    wait_status(c, [arn], "RUNNING")
    # the agents talk to the first replica; it dies, the second serves the same cluster
    c.stop_server(signal.SIGKILL, i=0)
    c.current = 1
    [t] = describe(c, [arn])
    assert t["lastStatus"] == "RUNNING"
    wait_for(lambda: all(i["agentConnected"] for i in c.instances()), 60, "agents heartbeating to replica 2")
    # tasks placed through the survivor reach the nodes and report back through it
    [arn2] = run_task(c, "--task-definition", "web")
    wait_status(c, [arn2], "RUNNING", 90)
    c.aws("stop-task", "--task", arn2)
    wait_status(c, [arn2], "STOPPED", 90)


# ---- make run (scripts/run.sh): the platform on one host, and the commands it prints ----

def _printed_commands(text):
    """The commands run.sh prints (indented lines, backslash continuations joined), in order."""
    cmds, cur = [], ""
    for line in text.splitlines():
        if not line.startswith("  ") and not cur:
            continue
        cur += line.strip()
        if cur.endswith("\\"):
            cur = cur[:-1] + " "
            continue
        cmds.append(cur)
        cur = ""
    return cmds


def test_run_sh_starts_the_platform_and_the_commands_it_prints_work(netns, workdir):
    """README: `make run` (scripts/run.sh) with every path, port and cgroup moved (as for a second
    platform beside another), in a namespace of the test's own; its printed aws ecs commands, the
    berth CLI and the docker CLI lines then work as printed (they reached /run/berth/berth.sock)."""
    import shlex
    import awscli_fast
    from conftest import REPO, berth_binary, unmount_all
    tag = os.path.basename(workdir)[-6:].replace("-", "")
    env = dict(os.environ, BERTH_ROOT=os.path.join(workdir, "root"), BERTH_EXEC_ROOT=os.path.join(workdir, "run"),
               BERTH_LISTEN="127.0.0.1:17443", BERTH_REGISTRY="127.0.0.1:17444",
               BERTH_CGROUP_PARENT=f"runsh{tag}", BERTH_BRIDGE=f"rsh{tag}")
    log = open(os.path.join(workdir, "run.log"), "w")
    proc = subprocess.Popen(["nsenter", f"--net=/run/netns/{netns}", "sh", os.path.join(REPO, "scripts", "run.sh"),
                             berth_binary()], stdout=subprocess.PIPE, stderr=log, text=True, env=env,
                            cwd=workdir, start_new_session=True)
    sock = os.path.join(env["BERTH_EXEC_ROOT"], "berth.sock")
    docker = ["nsenter", f"--net=/run/netns/{netns}", "/usr/bin/docker", "-H", "unix://" + sock]
    try:
        out = ""
        while "Ctrl-C stops" not in out:
            line = proc.stdout.readline()  # run.sh gives up on its own after 30 s per step
            assert line, "run.sh exited:\n" + out + open(log.name).read()[-3000:]
            out += line
        cmds = _printed_commands(out)
        shell_env = dict(os.environ)
        for cmd in (c for c in cmds if c.startswith("export ")):
            shell_env.update(kv.split("=", 1) for kv in shlex.split(cmd)[1:])
        assert shell_env["AWS_SHARED_CREDENTIALS_FILE"] == os.path.join(env["BERTH_ROOT"], "server", "credentials")
        shell_env.pop("AWS_PROFILE", None)
        shell_env.update(AWS_CONFIG_FILE="/dev/null", AWS_PAGER="")
        task_arn = None
        for cmd in cmds:
            argv = shlex.split(cmd, comments=True)
            if argv[0] != "aws" or "ecr" in argv[:8] or "|" in argv:
                continue
            if "TASK_ARN" in argv:
                argv[argv.index("TASK_ARN")] = task_arn
            p = awscli_fast.run(argv[1:] + ["--output", "json"], env=shell_env, netns=netns, timeout=300)
            assert p.returncode == 0, (cmd, p.stderr)
            res = json.loads(p.stdout) if p.stdout.strip() else {}
            if "run-task" in argv:
                assert not res["failures"] and len(res["tasks"]) == 2, res
                task_arn = res["tasks"][0]["taskArn"]
            if "list-container-instances" in argv:
                assert len(res["containerInstanceArns"]) == 1
        assert task_arn
        [berth_run] = [c for c in cmds if c.endswith(" run --rm busybox echo hi")]
        p = run(["nsenter", f"--net=/run/netns/{netns}", "sh", "-c", berth_run], check=False)
        assert p.returncode == 0 and p.stdout == "hi\n", (berth_run, p.stdout, p.stderr)
        [docker_ps] = [c for c in cmds if c.endswith(" docker ps")]
        p = run(["nsenter", f"--net=/run/netns/{netns}", "sh", "-c", docker_ps + " --format '{{.Names}}'"])
        assert sum(n.startswith("ecs-hello-1-hello-") for n in p.stdout.split()) >= 3  # the service's 3
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the script, the server and the agent
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        proc.stdout.close()
        log.close()
        # task containers outlive the agent by design: kill them (by the cgroups of this run) and their
        # shims (by this run's paths on their command line), then undo mounts and cgroups
        cgroups = []
        for top in ("/sys/fs/cgroup", "/sys/fs/cgroup/unified"):
            for ctl in [""] + (os.listdir(top) if os.path.isdir(top) else []):
                for name in (env["BERTH_CGROUP_PARENT"] + "-tasks", env["BERTH_CGROUP_PARENT"]):
                    cgroups += [w[0] for w in os.walk(os.path.join(top, ctl, name))]
        cgroups.sort(key=len, reverse=True)
        pids = set()
        for d in cgroups:
            with contextlib.suppress(OSError):
                pids |= {int(x) for x in open(os.path.join(d, "cgroup.procs")).read().split()}
        for p in filter(str.isdigit, os.listdir("/proc")):
            with contextlib.suppress(OSError):
                if workdir.encode() in open(f"/proc/{p}/cmdline", "rb").read():
                    pids.add(int(p))
        pids.discard(os.getpid())
        for pid in pids:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)

        def alive(pid):
            try:
                return open(f"/proc/{pid}/stat").read().rsplit(") ", 1)[1][0] != "Z"
            except (OSError, IndexError):
                return False
        wait_for(lambda: not any(alive(pid) for pid in pids), 30, "the run's task processes to die")
        unmount_all(workdir)
        for d in cgroups:
            with contextlib.suppress(OSError):
                os.rmdir(d)
