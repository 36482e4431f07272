#!/usr/bin/python3
"""bench/services_bench.py - the helper of bench/services.sh (issue 14's benchmark).

Same machine, same shape for both: 3 "hosts" (network namespaces on a bridge in a VPC namespace;
the plumbing is bench/cluster_bench.py's). Measured side by side:
  (a) create -> steady state of a REPLICAS-task service: `docker service create --replicas N`
      (until N tasks running) vs ECS CreateService (until DescribeServices shows one deployment and
      runningCount == desiredCount, boto3's services_stable condition);
  (b) a rolling update of that service to a new image/task definition: `docker service update
      --image` (until UpdateStatus completed and N new tasks running) vs UpdateService with a new
      task definition (until stable on the new one). Each with its defaults: swarm updates one task
      at a time, stop-first; ECS starts up to maximumPercent (200%) and stops the old tasks once the
      new ones are healthy.
Tasks: busybox `sleep 3600`, no network (swarm --bridge none, berth networkMode none), a 1-2 s stop.
"""
import argparse
import contextlib
import json
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cluster_bench as cb  # noqa: E402  (its Net, SwarmNode, Agent, server and helpers)

TD = {"family": "svcbench", "networkMode": "none", "containerDefinitions": [{
    "name": "c", "image": "busybox:latest", "memoryReservation": 16, "essential": True, "stopTimeout": 2,
    "environment": [{"name": "V", "value": "1"}], "command": ["sleep", "3600"]}]}


def swarm(b, res):
    nodes = [cb.SwarmNode(b, i) for i in (1, 2, 3)]
    b.swarm_nodes = nodes
    for n in nodes:
        n.start()
    for n in nodes:
        n.wait_up()
        n.docker("load", "-i", b.image)
        n.docker("tag", "busybox:latest", "busybox:v2")
    mgr = nodes[0]
    mgr.docker("swarm", "init", "--advertise-addr", mgr.addr, "--listen-addr", f"{mgr.addr}:2377")
    token = mgr.docker("swarm", "join-token", "-q", "worker").stdout.strip()
    for n in nodes[1:]:
        n.docker("swarm", "join", "--token", token, "--advertise-addr", n.addr, "--listen-addr",
                 f"{n.addr}:2377", f"{mgr.addr}:2377")
    cb.wait_for(lambda: sum(1 for x in mgr.api("GET", "/nodes") if x["Status"]["State"] == "ready") == 3, 60,
                "3 swarm nodes ready", every=0.5)
    time.sleep(b.settle)
    name = f"{b.prefix}svc"
    path = "/tasks?filters=" + cb.urlquote(json.dumps({"service": [name], "desired-state": ["running"]}))

    def running(image=None):
        return sum(1 for t in mgr.api("GET", path) if t["Status"]["State"] == "running"
                   and (image is None or t["Spec"]["ContainerSpec"]["Image"].startswith(image)))

    cb.log("swarm: service create --replicas", b.replicas)
    t0 = time.monotonic()
    mgr.docker("service", "create", "--detach", "--no-resolve-image", "--name", name, "--replicas", b.replicas,
               "--stop-grace-period", "1s", "busybox:latest", "sleep", "3600")
    cb.wait_for(lambda: running() >= b.replicas, 900, "swarm replicas running", every=b.poll)
    res["swarm_create"] = time.monotonic() - t0
    cb.log(f"swarm: {b.replicas} running in {res['swarm_create']:.2f}s; service update --image")
    t0 = time.monotonic()
    mgr.docker("service", "update", "--detach", "--no-resolve-image", "--image", "busybox:v2", name)

    def updated():
        st = mgr.docker("service", "inspect", "--format", "{{if .UpdateStatus}}{{.UpdateStatus.State}}{{end}}",
                        name).stdout.strip()
        return st == "completed" and running("busybox:v2") >= b.replicas
    cb.wait_for(updated, 1800, "swarm update completed", every=max(b.poll, 0.5))
    res["swarm_update"] = time.monotonic() - t0
    cb.log(f"swarm: update completed in {res['swarm_update']:.2f}s")
    mgr.docker("service", "rm", name)
    cb.wait_for(lambda: all(not n.docker("ps", "-q").stdout.split() for n in nodes), 300, "swarm tasks gone",
                every=0.5)
    for n in reversed(nodes):
        n.cleanup()
    b.swarm_nodes = []


def stable(ecs, td_arn, n):
    s = ecs.describe_services(services=["bench"])["services"][0]
    return len(s["deployments"]) == 1 and s["runningCount"] == n and s["desiredCount"] == n and \
        s["deployments"][0]["taskDefinition"] == td_arn


def berth(b, res):
    cb.start_server(b)
    b.agents = [cb.Agent(b, i) for i in (1, 2, 3)]
    for a in b.agents:
        a.start()
        a.docker("load", "-i", b.image)
    with cb.in_netns(b.net.vpc):
        ecs = cb.ecs_client(b)
        cb.wait_for(lambda: len(ecs.list_container_instances()["containerInstanceArns"]) == 3, 60,
                    "3 berth nodes registered", every=0.5)
        td1 = ecs.register_task_definition(**TD)["taskDefinition"]["taskDefinitionArn"]
        td2_in = json.loads(json.dumps(TD))
        td2_in["containerDefinitions"][0]["environment"][0]["value"] = "2"
        td2 = ecs.register_task_definition(**td2_in)["taskDefinition"]["taskDefinitionArn"]
        time.sleep(b.settle)
        cb.log("berth: CreateService desiredCount", b.replicas)
        t0 = time.monotonic()
        ecs.create_service(serviceName="bench", taskDefinition=td1, desiredCount=b.replicas)
        cb.wait_for(lambda: stable(ecs, td1, b.replicas), 900, "berth service stable", every=b.poll)
        res["berth_create"] = time.monotonic() - t0
        per_node = [len(a.docker("ps", "-q").stdout.split()) for a in b.agents]
        cb.log(f"berth: stable in {res['berth_create']:.2f}s (per node {per_node}); UpdateService")
        t0 = time.monotonic()
        ecs.update_service(service="bench", taskDefinition=td2)
        cb.wait_for(lambda: stable(ecs, td2, b.replicas), 1800, "berth update stable", every=b.poll)
        res["berth_update"] = time.monotonic() - t0
        cb.log(f"berth: update stable in {res['berth_update']:.2f}s")
        ecs.delete_service(service="bench", force=True)
        cb.wait_for(lambda: ecs.describe_services(services=["bench"])["services"][0]["status"] == "INACTIVE",
                    300, "berth service deleted", every=0.5)


def report(b, res):
    print(f"\n== bench/services.sh: 3 nodes, {b.replicas} replicas; load average at start {b.load0}, "
          f"at end {cb.loadavg()}")
    print(f"{'measure':52s} {'berth':>10s} {'swarm':>10s} {'berth/swarm':>12s}  goal")
    for key, title in (("create", f"create -> steady state, {b.replicas} replicas"),
                       ("update", "rolling update to a new image / task definition")):
        v, peer = res.get(f"berth_{key}"), res.get(f"swarm_{key}")
        fv = f"{v:9.2f}s" if v is not None else f"{'-':>10s}"
        fp = f"{peer:9.2f}s" if peer is not None else f"{'-':>10s}"
        ratio = f"{v / peer:11.2f}x" if v is not None and peer else f"{'-':>12s}"
        print(f"{title:52s} {fv} {fp} {ratio}  <= 0.25x swarm")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--prefix", required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--berth", required=True)
    ap.add_argument("--replicas", type=int, default=60)
    ap.add_argument("--settle", type=float, default=5)
    ap.add_argument("--poll", type=float, default=0.1)
    ap.add_argument("--no-swarm", action="store_true")
    b = ap.parse_args(namespace=cb.Bench())
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, cb.on_signal)
    b.load0 = cb.loadavg()
    b.net = cb.Net(b.prefix)
    b.swarm_nodes, b.agents, b.server = [], [], None
    b.image = os.path.join(b.dir, "busybox.tar")
    res, rc = {}, 0
    try:
        cb.run([os.path.join(cb.REPO, "scripts", "mkimage"), "--tag", "busybox:latest", "--docker-archive", b.image])
        b.net.build()
        if not b.no_swarm:
            swarm(b, res)
        berth(b, res)
    except cb.Interrupted as e:
        cb.log("interrupted:", e)
        rc = 130
    except Exception as e:  # noqa: BLE001 - report what was measured, then clean up
        cb.log("FAILED:", repr(e))
        rc = 1
    finally:
        for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(s, signal.SIG_IGN)
        for n in b.swarm_nodes + b.agents:
            with contextlib.suppress(Exception):
                n.cleanup()
        cb.stop_pid(b.server, 30)
        b.net.delete()
        cb.unmount_all(b.dir)
        cb.remove_cgroups(b.prefix)
    report(b, res)
    return rc


if __name__ == "__main__":
    sys.exit(main())
