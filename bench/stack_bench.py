#!/usr/bin/python3
"""bench/stack_bench.py - the helper of bench/stack.sh (issue 16's benchmark).

One compose file of N services (default 20: `web` publishing port 8080 and
answering through its CGI from `cache` by service name, `cache` a busybox nc
loop, and N-2 workers, each 2 replicas) deployed on the same machine, same
shape, side by side:
  swarm: `docker stack deploy -c stack.yml st` on 3 dockerd nodes in Swarm mode,
         until every service has its replicas running;
  berth: `berth apply -f stack.yml --name st` on a 3-node berth cluster, until
         every task runs, and until every service is stable (one COMPLETED
         deployment, runningCount == desiredCount: what `apply --wait` waits for).
Then the same requests through each platform's routing mesh (every node's port
8080): GET / and GET /cgi-bin/cache must give the same answers on both.
The plumbing (namespaces, dockerd and agent nodes, the server) is
bench/cluster_bench.py's. Swarm's virtual IPs and routing mesh are IPVS in
the nodes' sandboxes, which does not work in these network namespaces: the
cache uses `endpoint_mode: dnsrr` (what berth's discovery does anyway: task
addresses) and, when the mesh does not answer, the Swarm side is asked from
inside its web tasks (`docker exec ... wget`), which still goes through
Swarm's service name resolution.
"""
import argparse
import contextlib
import http.client
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cluster_bench as cb  # noqa: E402

STACK = "st"
WEB_SH = """mkdir -p /www/cgi-bin
echo hello from the stack > /www/index.html
printf '#!/bin/sh\\necho Content-Type: text/plain\\necho\\nnc -w 2 cache 6379 </dev/null\\n' > /www/cgi-bin/cache
chmod +x /www/cgi-bin/cache
exec httpd -f -p 80 -h /www"""


def stack_file(n):
    web = "\n".join("        " + line for line in WEB_SH.splitlines())
    out = f"""version: "3.8"
x-deploy: &deploy
  replicas: 2
  resources: {{reservations: {{memory: 16M}}}}
services:
  web:
    image: busybox:latest
    command:
      - sh
      - -c
      - |
{web}
    ports: ["8080:80"]
    stop_grace_period: 2s
    deploy: *deploy
  cache:
    image: busybox:latest
    command: ["sh", "-c", "while true; do echo PONG | nc -l -p 6379; done"]
    stop_grace_period: 2s
    deploy:
      <<: *deploy
      endpoint_mode: dnsrr
"""
    for i in range(1, n - 1):
        out += f"""  worker{i}:
    image: busybox:latest
    command: ["sh", "-c", "while true; do sleep 1; done"]
    stop_grace_period: 1s
    deploy: *deploy
"""
    return out


def requests_through(addrs):
    """[(path, body)] of GET / and /cgi-bin/cache on every address's port 8080 (None when it failed)."""
    out = []
    for path in ("/", "/cgi-bin/cache"):
        for a in addrs:
            try:
                c = http.client.HTTPConnection(a, 8080, timeout=5)
                c.request("GET", path)
                r = c.getresponse()
                out.append((path, r.read().decode().strip() if r.status == 200 else f"HTTP {r.status}"))
                c.close()
            except OSError as e:
                out.append((path, None if not str(e) else None))
    return out


def settled_answers(b, addrs):
    """The answers once they stop failing (a mesh converges a little after the tasks run)."""
    last = []

    def ok():
        nonlocal last
        with cb.in_netns(b.net.vpc):
            last = requests_through(addrs)
        return all(body for _, body in last) and last
    with contextlib.suppress(Exception):
        cb.wait_for(ok, 60, "answers through the routing mesh", every=1)
    return last


def swarm(b, res):
    nodes = [cb.SwarmNode(b, i) for i in (1, 2, 3)]
    b.swarm_nodes = nodes
    for n in nodes:
        n.start()
    for n in nodes:
        n.wait_up()
        n.docker("load", "-i", b.image)
    mgr = nodes[0]
    mgr.docker("swarm", "init", "--advertise-addr", mgr.addr, "--listen-addr", f"{mgr.addr}:2377")
    token = mgr.docker("swarm", "join-token", "-q", "worker").stdout.strip()
    for n in nodes[1:]:
        n.docker("swarm", "join", "--token", token, "--advertise-addr", n.addr, "--listen-addr",
                 f"{n.addr}:2377", f"{mgr.addr}:2377")
    cb.wait_for(lambda: sum(1 for x in mgr.api("GET", "/nodes") if x["Status"]["State"] == "ready") == 3, 60,
                "3 swarm nodes ready", every=0.5)
    time.sleep(b.settle)
    want = 2 * b.services

    def running():
        tasks = mgr.api("GET", "/tasks?filters=" + cb.urlquote(json.dumps({"desired-state": ["running"]})))
        return sum(1 for t in tasks if t["Status"]["State"] == "running")

    cb.log(f"swarm: docker stack deploy ({b.services} services, {want} tasks)")
    t0 = time.monotonic()
    mgr.docker("stack", "deploy", "-c", b.file, "--resolve-image", "never", STACK, timeout=300)
    res["swarm_deploy_ret"] = time.monotonic() - t0
    cb.wait_for(lambda: running() >= want, 900, "swarm stack running", every=b.poll)
    res["swarm_steady"] = time.monotonic() - t0
    cb.log(f"swarm: {want} tasks running in {res['swarm_steady']:.2f}s")
    res["swarm_answers"] = settled_answers(b, [n.addr for n in nodes])
    if not all(body for _, body in res["swarm_answers"]):
        # the routing mesh (IPVS in the ingress sandbox) may not work in network namespaces:
        # ask a web task itself, which still exercises Swarm's name resolution of `cache`
        res["swarm_mesh"] = "no"
        res["swarm_answers"] = []
        for n in nodes:
            ids = n.docker("ps", "-q", "--filter", f"label=com.docker.swarm.service.name={STACK}_web").stdout.split()
            for path in (("/", "/cgi-bin/cache") if ids else ()):
                p = n.docker("exec", ids[0], "wget", "-q", "-O-", f"http://localhost{path}", check=False)
                res["swarm_answers"].append((path, p.stdout.strip() if p.returncode == 0 else None))
    mgr.docker("stack", "rm", STACK)
    cb.wait_for(lambda: all(not n.docker("ps", "-q").stdout.split() for n in nodes), 300, "swarm tasks gone",
                every=0.5)
    for n in reversed(nodes):
        n.cleanup()
    b.swarm_nodes = []


def berth_cli(b, *args, timeout=900):
    env = dict(os.environ, AWS_SHARED_CREDENTIALS_FILE=os.path.join(b.server_root, "credentials"),
               AWS_CONFIG_FILE="/dev/null", AWS_CA_BUNDLE=b.ca, AWS_ENDPOINT_URL=b.endpoint,
               AWS_REGION=cb.AWS_REGION)
    env.pop("AWS_PROFILE", None)
    p = subprocess.run(["nsenter", f"--net=/run/netns/{b.net.vpc}", b.berth, *args], capture_output=True,
                       text=True, env=env, timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError(f"berth {args}: {p.stdout}\n{p.stderr}")
    return p


def task_profile(ecs, t0_wall):
    """Where the time to "every task running" goes, from the tasks' own timestamps (seconds after the
    apply started): when the service controller created them (placement), and how long each took from
    creation to RUNNING on its node (pull, create, start, the agent's report)."""
    arns = []
    for page in ecs.get_paginator("list_tasks").paginate(desiredStatus="RUNNING"):
        arns += page["taskArns"]
    tasks = []
    for i in range(0, len(arns), 100):
        tasks += ecs.describe_tasks(tasks=arns[i:i + 100])["tasks"]
    created = sorted(t["createdAt"].timestamp() - t0_wall for t in tasks)
    start = sorted(t["startedAt"].timestamp() - t["createdAt"].timestamp() for t in tasks if t.get("startedAt"))
    if not created or not start:
        return None
    return {"first_created": created[0], "last_created": created[-1],
            "start_median": start[len(start) // 2], "start_max": start[-1]}


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
    time.sleep(b.settle)
    cb.log(f"berth: berth apply ({b.services} services), then DescribeServices until stable")
    names = [f"{STACK}_{n}" for n in ["web", "cache"] + [f"worker{i}" for i in range(1, b.services - 1)]]
    t0, t0_wall = time.monotonic(), time.time()
    berth_cli(b, "apply", "-f", b.file, "--name", STACK)
    res["berth_apply_ret"] = time.monotonic() - t0
    with cb.in_netns(b.net.vpc):
        ecs = cb.ecs_client(b)

        def state():
            svcs = []
            for i in range(0, len(names), 10):
                svcs += ecs.describe_services(services=names[i:i + 10])["services"]
            running = sum(s["runningCount"] for s in svcs)
            stable = all(len(s["deployments"]) == 1 and s["deployments"][0].get("rolloutState") == "COMPLETED"
                         and s["runningCount"] == s["desiredCount"] for s in svcs)
            return running, stable
        while True:
            running, stable = state()
            now = time.monotonic() - t0
            if running >= 2 * b.services and "berth_running" not in res:
                res["berth_running"] = now
            if stable:
                res["berth_steady"] = now
                break
            if now > 900:
                raise RuntimeError("berth stack not stable after 900 s")
            time.sleep(b.poll)
        res["berth_profile"] = task_profile(ecs, t0_wall)
    cb.log(f"berth: {2 * b.services} running in {res['berth_running']:.2f}s, stable in {res['berth_steady']:.2f}s")
    t0 = time.monotonic()
    p = berth_cli(b, "apply", "-f", b.file, "--name", STACK)
    res["berth_noop"] = time.monotonic() - t0
    res["berth_noop_out"] = p.stdout.strip()
    res["berth_answers"] = settled_answers(b, [a.addr for a in b.agents])
    berth_cli(b, "stack", "rm", STACK)


def report(b, res):
    print(f"\n== bench/stack.sh: {b.services} services x 2 replicas on 3 nodes; load average at start "
          f"{b.load0}, at end {cb.loadavg()}")
    print(f"{'measure':52s} {'berth':>10s} {'swarm':>10s} {'berth/swarm':>12s}  goal")
    for key, title in (("berth_running", "deploy -> every task running"),
                       ("berth_steady", "deploy -> steady state (berth: services stable)")):
        v, peer = res.get(key), res.get("swarm_steady")
        fv = f"{v:9.2f}s" if v is not None else f"{'-':>10s}"
        fp = f"{peer:9.2f}s" if peer is not None else f"{'-':>10s}"
        ratio = f"{v / peer:11.2f}x" if v is not None and peer else f"{'-':>12s}"
        print(f"{title:52s} {fv} {fp} {ratio}  <= 0.25x swarm")
    if "berth_apply_ret" in res:
        print(f"{'berth apply returned after':52s} {res['berth_apply_ret']:9.2f}s")
    prof = res.get("berth_profile")
    if prof:
        print(f"{'berth tasks created (service controller) after':52s} {prof['first_created']:9.2f}s"
              f" .. {prof['last_created']:.2f}s")
        print(f"{'berth task created -> RUNNING (median, max)':52s} {prof['start_median']:9.2f}s"
              f" .. {prof['start_max']:.2f}s")
    if "berth_noop" in res:
        print(f"{'second apply (' + res['berth_noop_out'] + ')':52s} {res['berth_noop']:9.2f}s")
    if "swarm_deploy_ret" in res:
        print(f"{'docker stack deploy returned after':52s} {'':>10s} {res['swarm_deploy_ret']:9.2f}s")
    sa, ba = res.get("swarm_answers"), res.get("berth_answers")
    if ba is not None:
        print("berth answers:", sorted(set(ba), key=str))
    if sa is not None:
        how = " (routing mesh unavailable here: asked the web tasks)" if res.get("swarm_mesh") == "no" else ""
        print(f"swarm answers{how}:", sorted(set(sa), key=str))
        print("same answers on both:", "yes" if sa and ba and sorted(set(sa)) == sorted(set(ba)) else "NO")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--prefix", required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--berth", required=True)
    ap.add_argument("--services", type=int, default=20)
    ap.add_argument("--settle", type=float, default=5)
    ap.add_argument("--poll", type=float, default=0.2)
    ap.add_argument("--no-swarm", action="store_true")
    b = ap.parse_args(namespace=cb.Bench())
    b.file = os.path.join(b.dir, "stack.yml")
    with open(b.file, "w") as f:
        f.write(stack_file(b.services))
    return cb.run_peer_and_berth(b, swarm, berth, report)

if __name__ == "__main__":
    sys.exit(main())
