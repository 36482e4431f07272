#!/usr/bin/python3
"""bench/lb_bench.py - the helper of bench/lb.sh (issue 14's latency goal).

A 2-host berth cluster (tests/integration/cluster_fixture.py: namespaces on a
bridge inside a VPC namespace of its own), a load balancer `bench` on port 8080
attached to two busybox httpd awsvpc tasks, then from host 1's namespace: N
sequential HTTP GETs (new connection each, like curl) straight to one task
(the anchor) and N through host 1's listener; prints p50/p99 of both and the
p99 overhead (goal: <= 1 ms).
"""
import json
import os
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
os.environ.setdefault("BERTH_BIN", os.path.join(REPO, "build", "src", "berth"))

from cluster_fixture import Cluster, in_netns, wait_for  # noqa: E402
from test_cluster_lb import WEB, berth, run_tasks, task_ip, in_rotation  # noqa: E402

N = int(os.environ.get("REQUESTS", "2000"))

PROBE = r"""
import http.client, sys, time
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
out = []
for i in range(n + 50):
    t = time.perf_counter()
    c = http.client.HTTPConnection(host, port, timeout=5)
    c.request("GET", "/")
    r = c.getresponse(); r.read(); c.close()
    assert r.status == 200
    if i >= 50:
        out.append(time.perf_counter() - t)
out.sort()
print(out[len(out) // 2] * 1e3, out[int(len(out) * 0.99)] * 1e3)
"""


def probe(c, node, host, port):
    p = subprocess.run(["ip", "netns", "exec", node.netns, "/usr/bin/python3", "-c", PROBE, host, str(port), str(N)],
                       capture_output=True, text=True, timeout=600, check=True)
    return [float(x) for x in p.stdout.split()]


def main():
    d = tempfile.mkdtemp(prefix="berth-bench-lb-")
    subprocess.run([os.path.join(REPO, "scripts", "mkimage"), "--tag", "busybox:latest", "--docker-archive",
                    os.path.join(d, "busybox.tar")], check=True, capture_output=True)
    c = Cluster(nodes=2, explicit_subnets=False)
    try:
        c.start(busybox={"docker_archive": os.path.join(d, "busybox.tar")})
        c.aws("register-task-definition", "--cli-input-json", json.dumps(WEB))
        berth(c, "lb", "create", "bench", "--port", 8080)
        berth(c, "lb", "attach", "bench", "--service", "web", "--container", "web", "--port", 80)
        ts = run_tasks(c, 2)
        ips = [task_ip(t) for t in ts]
        wait_for(lambda: in_rotation(c, ips), 30, "the listener")
        node = c.nodes[0]
        direct = probe(c, node, ips[1], 80)  # the task on the other host: the same path the LB takes
        via = probe(c, node, "127.0.0.1", 8080)
        print(f"requests: {N} sequential GETs from host 1, a new connection each; load: {os.getloadavg()}")
        print(f"{'path':<28}{'p50 ms':>10}{'p99 ms':>10}")
        print(f"{'direct to a task (anchor)':<28}{direct[0]:>10.3f}{direct[1]:>10.3f}")
        print(f"{'through the LB (HAProxy)':<28}{via[0]:>10.3f}{via[1]:>10.3f}")
        print(f"p50 ratio {via[0] / direct[0]:.2f}x, p99 ratio {via[1] / direct[1]:.2f}x, "
              f"p99 overhead {via[1] - direct[1]:.3f} ms (goal <= 1 ms: {'met' if via[1] - direct[1] <= 1 else 'NOT met'})")
    finally:
        c.cleanup()
        subprocess.run(["rm", "-rf", d])


if __name__ == "__main__":
    main()
