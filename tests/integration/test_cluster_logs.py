"""Task logs through the server's CloudWatch Logs API (issue 15, logs): containers with
`logConfiguration` awslogs are shipped by their agent to the server; `aws logs get-log-events`,
`filter-log-events` (filter patterns), `tail --follow`, boto3 and `berth task logs` read them;
nothing is lost or duplicated when the agent is killed -9 mid-stream or the server is away;
retention expires events; bad requests get the API's errors.

One module-scoped cluster (2 nodes). The server runs with `--logs-day-seconds 3
--logs-sweep-interval 1` (a retention "day" is 3 s here, docs/logs.md).
"""
import json
import re
import select
import signal
import subprocess
import time

import pytest

from cluster_fixture import AWS, REGION, Cluster, wait_for
from conftest import berth_binary

GROUP = "/ecs/logtest"


def taskdef(family, script, prefix="app", group=GROUP, create="true"):
    opts = {"awslogs-group": group, "awslogs-region": REGION, "awslogs-stream-prefix": prefix}
    if create:
        opts["awslogs-create-group"] = create
    return {"family": family, "networkMode": "none", "containerDefinitions": [{
        "name": "main", "image": "busybox:latest", "memory": 32, "essential": True, "stopTimeout": 2,
        "command": ["sh", "-c", script],
        "logConfiguration": {"logDriver": "awslogs", "options": opts},
    }]}


# prints "n 0" .. "n N-1" in bursts of 200 with a pause between them
NUMBERS = ('i=0; while [ $i -lt {n} ]; do echo "n $i"; i=$((i+1)); '
           'if [ $((i % 200)) = 0 ]; then sleep {pause}; fi; done; sleep 0.5')


def logs(c, *args, check=True):
    return c.aws_cli("logs", *args, check=check)


def run_task(c, family):
    out = c.aws("run-task", "--task-definition", family)
    assert not out["failures"], out["failures"]
    return out["tasks"][0]


ORDER = ["PROVISIONING", "PENDING", "ACTIVATING", "RUNNING", "DEACTIVATING", "STOPPING", "DEPROVISIONING",
         "STOPPED"]


def wait_task(c, arn, status, timeout=60):
    """The task once it has reached status (or gone past it: a short task may be STOPPED already)."""
    with c.ecs() as ecs:
        def reached():
            t = ecs.describe_tasks(tasks=[arn])["tasks"][0]
            return t if ORDER.index(t["lastStatus"]) >= ORDER.index(status) else None
        return wait_for(reached, timeout, f"task {status}", every=0.3)


def stream_of(task, prefix="app"):
    return f"{prefix}/main/{task['taskArn'].rsplit('/', 1)[1]}"


def all_events(c, stream, group=GROUP):
    """Every event of a stream, oldest first, following nextForwardToken (boto3: faster than the CLI)."""
    from botocore.exceptions import ClientError
    events, token = [], None
    with boto_logs(c) as cl:
        while True:
            kw = {"nextToken": token} if token else {"startFromHead": True}
            try:
                out = cl.get_log_events(logGroupName=group, logStreamName=stream, **kw)
            except ClientError as e:
                assert e.response["Error"]["Code"] == "ResourceNotFoundException", e
                return []
            events += out["events"]
            # a short page is the end (a stream still growing would otherwise keep the loop going)
            if out["nextForwardToken"] == token or len(out["events"]) < 10000:
                return events
            token = out["nextForwardToken"]


def wait_messages(c, stream, count, group=GROUP, timeout=60):
    def enough():
        ev = all_events(c, stream, group)
        return ev if len(ev) >= count else None
    return [e["message"] for e in wait_for(enough, timeout, f"{count} events in {stream}", every=0.5)]


def boto_logs(c):
    return c.boto("logs")


@pytest.fixture(scope="module")
def cluster(busybox):
    c = Cluster(nodes=2, server_args=["--logs-day-seconds", "3", "--logs-sweep-interval", "1"])
    try:
        c.start(busybox=busybox)
        yield c
    finally:
        c.cleanup()


@pytest.fixture(scope="module")
def crashed(cluster):
    """A task that prints 1500 lines, a JSON line and an error, then exits 3 (its essential container)."""
    c = cluster
    script = NUMBERS.format(n=1500, pause=0) + '; echo \'{"level":"error","code":503}\'; echo "ERROR boom"; exit 3'
    c.aws("register-task-definition", "--cli-input-json", json.dumps(taskdef("crasher", script)))
    task = run_task(c, "crasher")
    t = wait_task(c, task["taskArn"], "STOPPED")
    assert t["stopCode"] == "EssentialContainerExited", t.get("stoppedReason")
    msgs = wait_messages(c, stream_of(task), 1502)
    return task, msgs


def test_get_log_events_has_every_line_in_order(cluster, crashed):
    task, msgs = crashed
    assert msgs == [f"n {i}" for i in range(1500)] + ['{"level":"error","code":503}', "ERROR boom"]
    # the group was created by the agent (awslogs-create-group) and the stream is named as ECS does
    groups = logs(cluster, "describe-log-groups", "--log-group-name-prefix", "/ecs/")["logGroups"]
    assert [g["logGroupName"] for g in groups] == [GROUP]
    streams = logs(cluster, "describe-log-streams", "--log-group-name", GROUP)["logStreams"]
    st = next(s for s in streams if s["logStreamName"] == stream_of(task))
    assert st["storedBytes"] > 1500 * 4 and st["lastEventTimestamp"] >= st["firstEventTimestamp"]
    # default (no --start-from-head): the newest events, and a backward token to page back
    out = logs(cluster, "get-log-events", "--log-group-name", GROUP, "--log-stream-name", stream_of(task),
               "--limit", "2")
    assert [e["message"] for e in out["events"]] == ['{"level":"error","code":503}', "ERROR boom"]
    back = logs(cluster, "get-log-events", "--log-group-name", GROUP, "--log-stream-name", stream_of(task),
                "--limit", "3", "--next-token", out["nextBackwardToken"])
    assert [e["message"] for e in back["events"]] == ["n 1497", "n 1498", "n 1499"]


def test_filter_log_events_patterns(cluster, crashed):
    task, _ = crashed

    def matches(pattern):
        with boto_logs(cluster) as cl:
            out = cl.filter_log_events(logGroupName=GROUP, logStreamNames=[stream_of(task)], filterPattern=pattern)
        return [e["message"] for e in out["events"]]
    # the aws CLI once, boto3 for the rest
    out = logs(cluster, "filter-log-events", "--log-group-name", GROUP, "--log-stream-names", stream_of(task),
               "--filter-pattern", '{ $.level = "error" }')
    assert [e["message"] for e in out["events"]] == ['{"level":"error","code":503}']
    assert matches("ERROR") == ["ERROR boom"]
    assert matches("{ $.code >= 500 && $.level = err* }") == ['{"level":"error","code":503}']
    assert matches('"n 149"') == ["n 149"] + [f"n {1490 + i}" for i in range(10)]
    assert matches("?boom ?1499") == ["n 1499", "ERROR boom"]
    assert matches("n -1 -2 -3 -4 -5 -6 -7 -8 -9") == ["n 0"]
    assert matches("[word, number = 1234]") == ["n 1234"]


def test_filter_pagination_with_boto3(cluster, crashed):
    task, msgs = crashed
    with boto_logs(cluster) as cl:
        pages = list(cl.get_paginator("filter_log_events").paginate(
            logGroupName=GROUP, logStreamNames=[stream_of(task)], PaginationConfig={"PageSize": 400}))
        assert len(pages) >= 4
        assert [e["message"] for p in pages for e in p["events"]] == msgs
        # get_log_events forward paging: the token repeats at the end of the stream
        got, token = [], None
        while True:
            kw = {"nextToken": token} if token else {"startFromHead": True}
            out = cl.get_log_events(logGroupName=GROUP, logStreamName=stream_of(task), limit=700, **kw)
            got += [e["message"] for e in out["events"]]
            if out["nextForwardToken"] == token:
                break
            token = out["nextForwardToken"]
        assert got == msgs


def test_berth_task_logs(cluster, crashed):
    task, msgs = crashed
    p = subprocess.run(["nsenter", f"--net=/run/netns/{cluster.vpc}", berth_binary(), "task", "logs",
                        "--endpoint", cluster.endpoint, "--ca-bundle", cluster.ca, "--region", REGION,
                        task["taskArn"].rsplit("/", 1)[1]],
                       capture_output=True, text=True, env=cluster.aws_env(), timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines() == msgs


def test_tail_follow_and_docker_logs_on_the_node(cluster):
    c = cluster
    c.aws("register-task-definition", "--cli-input-json", json.dumps(
        taskdef("ticker", 'i=0; while true; do echo "tick $i"; i=$((i+1)); sleep 0.2; done', prefix="tk")))
    task = run_task(c, "ticker")
    wait_task(c, task["taskArn"], "RUNNING")
    wait_messages(c, stream_of(task, "tk"), 1)
    p = subprocess.Popen(["nsenter", f"--net=/run/netns/{c.vpc}", AWS, "--region", REGION, "--endpoint-url",
                          c.endpoint, "--ca-bundle", c.ca, "logs", "tail", GROUP, "--follow",
                          "--log-stream-name-prefix", "tk/", "--format", "short"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=c.aws_env())
    try:
        lines, deadline = [], time.monotonic() + 30
        while len(lines) < 3 and time.monotonic() < deadline:
            r, _, _ = select.select([p.stdout], [], [], 1)
            if r:
                lines.append(p.stdout.readline())
        assert len(lines) == 3, p.stderr.read() if p.poll() is not None else "no lines from aws logs tail"
        assert all(re.match(r"\S+ tick \d+$", x.strip()) for x in lines), lines
    finally:
        p.kill()
        p.wait()
    # the engine keeps its own log: `docker logs` on the node reads it too
    node = c.node_of(wait_task(c, task["taskArn"], "RUNNING")["containerInstanceArn"])
    name = next(x["Names"] for x in node.containers(all=False) if "ticker" in x["Names"])
    assert "tick 0" in node.docker("logs", name).stdout
    c.aws("stop-task", "--task", task["taskArn"])
    wait_task(c, task["taskArn"], "STOPPED")


def test_agent_kill9_mid_stream_loses_and_duplicates_nothing(cluster):
    c = cluster
    n = 3000
    c.aws("register-task-definition", "--cli-input-json", json.dumps(
        taskdef("counter", "sleep 2; " + NUMBERS.format(n=n, pause=0.1), prefix="ct")))
    task = run_task(c, "counter")
    t = wait_task(c, task["taskArn"], "RUNNING")
    node = c.node_of(t["containerInstanceArn"])
    wait_messages(c, stream_of(task, "ct"), 200)  # shipping has begun
    node.stop(signal.SIGKILL)
    time.sleep(1)  # the task keeps printing while its agent is dead
    node.start()
    msgs = wait_messages(c, stream_of(task, "ct"), n)
    assert msgs == [f"n {i}" for i in range(n)]
    wait_task(c, task["taskArn"], "STOPPED")
    time.sleep(1)  # a late duplicate would show up now (the agent ships the rest at the task's end)
    assert len(all_events(c, stream_of(task, "ct"))) == n


def test_server_down_buffers_then_delivers_in_order(cluster):
    c = cluster
    c.aws("register-task-definition", "--cli-input-json", json.dumps(
        taskdef("offline", "sleep 3; " + NUMBERS.format(n=800, pause=0) + "; exit 0", prefix="off")))
    task = run_task(c, "offline")
    wait_task(c, task["taskArn"], "RUNNING")
    c.stop_server()
    try:
        time.sleep(4)  # the task prints and exits meanwhile; its container is removed by the agent
    finally:
        c.start_server()
    msgs = wait_messages(c, stream_of(task, "off"), 800)
    assert msgs == [f"n {i}" for i in range(800)]
    wait_task(c, task["taskArn"], "STOPPED")


def test_put_log_events_and_retention_expiry(cluster):
    c = cluster
    logs(c, "create-log-group", "--log-group-name", "ret")
    now = int(time.time() * 1000)
    with boto_logs(c) as cl:
        cl.create_log_stream(logGroupName="ret", logStreamName="s")
        out = cl.put_log_events(logGroupName="ret", logStreamName="s",
                                logEvents=[{"timestamp": now + i, "message": f"m{i}"} for i in range(5)])
        assert out["nextSequenceToken"] == "5" and "rejectedLogEventsInfo" not in out
        assert [e["message"] for e in all_events(c, "s", "ret")] == [f"m{i}" for i in range(5)]
        cl.put_retention_policy(logGroupName="ret", retentionInDays=1)
        assert cl.describe_log_groups(logGroupNamePrefix="ret")["logGroups"][0]["retentionInDays"] == 1
        # a "day" is 3 s here: the events expire, and the sweep removes their bytes
        wait_for(lambda: all_events(c, "s", "ret") == [], 20, "expiry", every=0.5)
        wait_for(lambda: cl.describe_log_streams(logGroupName="ret")["logStreams"][0]["storedBytes"] < 100, 20,
                 "the sweep to free the segment", every=0.5)
        cl.delete_retention_policy(logGroupName="ret")
        cl.delete_log_group(logGroupName="ret")


def test_bad_requests_get_the_apis_errors(cluster):
    c = cluster
    from botocore.exceptions import ClientError

    def cli_err(*args):
        p = logs(c, *args, check=False)
        assert not isinstance(p, dict), f"{args} succeeded"
        m = re.search(r"\((\w+)\)", p.stderr)
        return m.group(1) if m else p.stderr
    assert cli_err("filter-log-events", "--log-group-name", GROUP, "--filter-pattern", '{ $.level = ') == \
        "InvalidParameterException"
    assert cli_err("create-log-group", "--log-group-name", GROUP) == "ResourceAlreadyExistsException"
    now = int(time.time() * 1000)
    with boto_logs(c) as cl:
        def err(op, **kw):
            with pytest.raises(ClientError) as e:
                getattr(cl, op)(**kw)
            return e.value.response["Error"]["Code"]
        assert err("filter_log_events", logGroupName=GROUP, filterPattern='"unterminated') == \
            "InvalidParameterException"
        assert err("filter_log_events", logGroupName=GROUP, filterPattern="[a, b") == "InvalidParameterException"
        assert err("filter_log_events", logGroupName=GROUP, logStreamNames=["a"], logStreamNamePrefix="b") == \
            "InvalidParameterException"
        assert err("filter_log_events", logGroupName="/nope") == "ResourceNotFoundException"
        assert err("get_log_events", logGroupName=GROUP, logStreamName="nope") == "ResourceNotFoundException"
        assert err("create_log_group", logGroupName="bad name!") == "InvalidParameterException"
        assert err("put_retention_policy", logGroupName=GROUP, retentionInDays=2) == "InvalidParameterException"
        cl.create_log_stream(logGroupName=GROUP, logStreamName="manual")
        assert err("create_log_stream", logGroupName=GROUP, logStreamName="manual") == \
            "ResourceAlreadyExistsException"
        assert err("put_log_events", logGroupName=GROUP, logStreamName="manual",
                   logEvents=[{"timestamp": now, "message": "b"}, {"timestamp": now - 5, "message": "a"}]) == \
            "InvalidParameterException"
        assert err("get_log_events", logGroupName=GROUP, logStreamName="manual", nextToken="garbage") == \
            "InvalidParameterException"
        assert err("filter_log_events", logGroupName=GROUP, nextToken="garbage") == "InvalidParameterException"
        # nothing half-created by the refusals
        assert [g["logGroupName"] for g in cl.describe_log_groups()["logGroups"]] == [GROUP]


def test_crashed_task_logs_outlive_the_task_and_its_node(cluster, crashed):
    task, msgs = crashed
    c = cluster
    node = c.node_of(task["containerInstanceArn"])
    node.stop()
    c.aws("deregister-container-instance", "--container-instance", task["containerInstanceArn"], "--force")
    assert [e["message"] for e in all_events(c, stream_of(task))] == msgs
