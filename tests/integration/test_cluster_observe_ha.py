"""Logs and metrics with several server replicas (issue 15 on etcd, docs/logs.md and docs/metrics.md
"Several servers"): the node's agent talks to replica 0 only, yet replica 1 answers GetLogEvents,
FilterLogEvents, `aws logs tail` and DescribeLogStreams for its streams (the calls go to the replica
holding the events), a stream written through replica 1 is found by a FilterLogEvents on replica 0, a
replica that is down makes its streams "not searched completely" (or ServiceUnavailableException) rather
than silently empty, and once its registration is gone a write takes its stream over (owner failover:
the stream reads whole again when the old owner is back); replica 1's /metrics and BerthDescribeMetrics show the node's tasks (the samples
reach every replica through etcd), so the leader's autoscaler sees every node whichever replica it is.

One module-scoped cluster: 2 servers on etcd, 1 node (agent at 1 s metrics).
"""
import os
import re
import ssl
import subprocess
import time
import urllib.request

import pytest

from cluster_fixture import AWS, REGION, Cluster, in_netns, wait_for

GROUP = "/ecs/ha"


@pytest.fixture(scope="module")
def cluster(busybox):
    c = Cluster(nodes=1, servers=2, server_args=["--metrics-period", "1"])
    try:
        c.start(busybox=busybox, node_extra=("--metrics-interval", "1"))
        yield c
    finally:
        c.cleanup()


def on(c, i):
    c.current = i
    return c


def logs(c, *args, check=True):
    return c.aws_cli("logs", *args, check=check)


def run_printer(c, lines):
    td = {"family": "printer", "networkMode": "none", "containerDefinitions": [{
        "name": "main", "image": "busybox:latest", "memory": 32, "essential": True, "stopTimeout": 2,
        "command": ["sh", "-c", f'i=0; while [ $i -lt {lines} ]; do echo "ha line $i"; i=$((i+1)); done; '
                                'sleep 3600'],
        "logConfiguration": {"logDriver": "awslogs", "options": {
            "awslogs-group": GROUP, "awslogs-region": REGION, "awslogs-stream-prefix": "app",
            "awslogs-create-group": "true"}}}]}
    with c.ecs() as ecs:
        ecs.register_task_definition(**td)
        out = ecs.run_task(taskDefinition="printer")
        assert not out["failures"], out["failures"]
        arn = out["tasks"][0]["taskArn"]
        ecs.get_waiter("tasks_running").wait(tasks=[arn], WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    return arn


def boto_logs(c, i):
    """A boto3 logs client of replica i (usable inside the block)."""
    c.current = i
    return c.boto("logs")


def test_logs_and_metrics_are_cluster_wide(cluster):
    from botocore.exceptions import ClientError
    c = on(cluster, 0)
    arn = run_printer(c, 300)
    task_id = arn.rsplit("/", 1)[1]
    stream = f"app/main/{task_id}"

    # shipped to replica 0 (the agent's server); read in full through replica 1
    with boto_logs(c, 0) as l0:
        def complete():
            try:
                return len(l0.get_log_events(logGroupName=GROUP, logStreamName=stream,
                                             startFromHead=True)["events"]) == 300
            except ClientError:
                return False
        wait_for(complete, 60, "the task's 300 lines on replica 0")
    got = logs(on(c, 1), "get-log-events", "--log-group-name", GROUP, "--log-stream-name", stream,
               "--start-from-head")
    assert [e["message"] for e in got["events"]] == [f"ha line {i}" for i in range(300)]
    tail = subprocess.run(["nsenter", f"--net=/run/netns/{c.vpc}", AWS, "--region", REGION, "--endpoint-url",
                           c.endpoint, "--ca-bundle", c.ca, "logs", "tail", GROUP, "--since", "1h",
                           "--format", "short"], capture_output=True, text=True, env=c.aws_env(), timeout=90)
    assert tail.returncode == 0 and tail.stdout.count("ha line ") == 300, tail.stderr
    with boto_logs(c, 1) as l1:
        desc = l1.describe_log_streams(logGroupName=GROUP)["logStreams"]
        assert [s["logStreamName"] for s in desc] == [stream] and desc[0]["storedBytes"] > 0, desc
        assert "berthReplica" not in desc[0]
        found = l1.filter_log_events(logGroupName=GROUP, filterPattern='"ha line 29"')
        assert sorted(e["message"] for e in found["events"]) == ["ha line 29"] + [f"ha line {i}" for i in
                                                                                  range(290, 300)]
        # a stream written through replica 1 lives there; replica 0 finds it with the node's stream
        l1.create_log_stream(logGroupName=GROUP, logStreamName="via-1")
        l1.put_log_events(logGroupName=GROUP, logStreamName="via-1", logEvents=[
            {"timestamp": int(time.time() * 1000), "message": "ha line from replica 1"}])
    with boto_logs(c, 0) as l0:
        both = l0.filter_log_events(logGroupName=GROUP, filterPattern='"ha line"')
        names = {e["logStreamName"] for e in both["events"]}
        assert names == {stream, "via-1"} and len(both["events"]) == 301, names
        assert all(s["searchedCompletely"] for s in both["searchedLogStreams"])
        pages = list(l0.get_paginator("filter_log_events").paginate(logGroupName=GROUP,
                                                                     PaginationConfig={"PageSize": 100}))
        assert len(pages) >= 4 and sum(len(p["events"]) for p in pages) == 301

    # metrics: the node reports to replica 0; replica 1 (and so whichever replica leads) has its task
    token = open(f"{c.base}/server1/metrics-token").read().strip()
    ctx = ssl.create_default_context(cafile=c.ca)

    def scraped():
        req = urllib.request.Request(c.endpoints[1] + "/metrics", headers={"Authorization": f"Bearer {token}"})
        with in_netns(c.vpc):
            body = urllib.request.urlopen(req, context=ctx, timeout=10).read().decode()
        return re.search(r'berth_task_memory_bytes\{[^}]*task="%s"' % task_id, body)
    wait_for(scraped, 30, "the node's task in replica 1's /metrics")

    # replica 1 down: its stream is reported as not searched, not as empty; back up: found again
    c.stop_server(i=1)
    try:
        with boto_logs(c, 0) as l0:
            part = l0.filter_log_events(logGroupName=GROUP, filterPattern='"ha line"')
            assert len(part["events"]) == 300
            assert {s["logStreamName"]: s["searchedCompletely"] for s in part["searchedLogStreams"]} == {
                stream: True, "via-1": False}
        p = logs(c, "get-log-events", "--log-group-name", GROUP, "--log-stream-name", "via-1", check=False)
        assert p.returncode != 0 and "ServiceUnavailableException" in p.stderr, p.stderr
        # its registration gone, a write takes the stream over (owner failover): new events land on
        # replica 0 and read at once; replica 1's part is passed over while it is away
        with boto_logs(c, 0) as l0:
            def taken_over():
                try:
                    l0.put_log_events(logGroupName=GROUP, logStreamName="via-1", logEvents=[
                        {"timestamp": int(time.time() * 1000), "message": "ha line after failover"}])
                    return True
                except ClientError as e:
                    assert e.response["Error"]["Code"] == "ServiceUnavailableException", e
                    return False
            wait_for(taken_over, 30, "replica 0 taking over replica 1's stream")
            got = l0.get_log_events(logGroupName=GROUP, logStreamName="via-1", startFromHead=True)["events"]
            assert [e["message"] for e in got] == ["ha line after failover"]
    finally:
        c.start_server(i=1)
    with boto_logs(c, 1) as l1:
        def readable():
            try:
                return [e["message"] for e in l1.get_log_events(logGroupName=GROUP, logStreamName="via-1",
                                                                 startFromHead=True)["events"]]
            except ClientError:
                return None
        # back up: both owners' events, in order, from either replica
        wait_for(lambda: readable() == ["ha line from replica 1", "ha line after failover"], 30,
                 "replica 1's part of the stream readable again")
        last = l1.get_log_events(logGroupName=GROUP, logStreamName="via-1", limit=1)
        assert [e["message"] for e in last["events"]] == ["ha line after failover"]
        older = l1.get_log_events(logGroupName=GROUP, logStreamName="via-1", limit=1,
                                  nextToken=last["nextBackwardToken"])
        assert [e["message"] for e in older["events"]] == ["ha line from replica 1"]
        both = l1.filter_log_events(logGroupName=GROUP, logStreamNames=["via-1"], filterPattern='"ha line"')
        assert len(both["events"]) == 2 and len({e["eventId"] for e in both["events"]}) == 2
        assert [s["searchedCompletely"] for s in both["searchedLogStreams"]] == [True]
        l1.put_log_events(logGroupName=GROUP, logStreamName="via-1", logEvents=[
            {"timestamp": int(time.time() * 1000), "message": "ha line via the new owner"}])
    with boto_logs(c, 0) as l0:
        assert len(l0.get_log_events(logGroupName=GROUP, logStreamName="via-1", startFromHead=True)["events"]) == 3
    # deleting the group through replica 1 removes the events on both replicas
    with boto_logs(c, 1) as l1:
        l1.delete_log_group(logGroupName=GROUP)
        assert l1.describe_log_groups()["logGroups"] == []
    for i in (0, 1):
        assert os.listdir(f"{c.base}/server{i}/logs") == [], i
