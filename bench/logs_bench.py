"""bench/logs_bench.py - driven by bench/logs.sh: ingest and FilterLogEvents against a berth server.

Agent ingest (the path of issue 15's goal): WORKERS json-file logs as the engine writes them (SIZE_MB of
messages in total) are shipped by the agent's awslogs shipper (`berth bench-logs ship`: the agent's code,
mutual TLS with a node certificate obtained by joining) into the server's segment files; the rate counts
message bytes from the shipper's start until every file is acknowledged.

PutLogEvents ingest: WORKERS processes, each its own stream, send PutLogEvents batches of ~1 MiB of log lines
(pre-built JSON bodies, SigV4-signed per request with botocore, over one kept-alive TLS connection
each) until SIZE_MB in total; the rate counts message bytes. Filter: one FilterLogEvents walk
(following nextToken) over every stream with a pattern matching 1 line in 10,000. The anchors use
the same lines written to a file: `cat lines > copy` (plain write throughput of this disk) and
`grep -c` over it.
"""
import json
import multiprocessing
import os
import re
import subprocess
import sys
import time

import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

ENDPOINT, CA, CREDS, WORKDIR, BERTH, TOKEN = sys.argv[1:7]
SIZE_MB = int(os.environ.get("SIZE_MB", "256"))
WORKERS = int(os.environ.get("WORKERS", "4"))
GROUP = "bench"


def creds():
    t = open(CREDS).read()
    return Credentials(re.search(r"aws_access_key_id = (\S+)", t).group(1),
                       re.search(r"aws_secret_access_key = (\S+)", t).group(1))


def call(session, cr, op, body):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = AWSRequest(method="POST", url=ENDPOINT + "/", data=data,
                     headers={"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "Logs_20140328." + op})
    SigV4Auth(cr, "logs", "us-east-1").add_auth(req)
    r = session.post(ENDPOINT + "/", data=data, headers=dict(req.headers), verify=CA)
    if r.status_code != 200:
        raise SystemExit(f"{op}: {r.status_code} {r.text[:300]}")
    return r.json()


def line(i):
    # a realistic access-log line; 1 in 10,000 is an error the filter looks for
    status = 500 if i % 10000 == 0 else 200
    return (f'10.0.{i % 256}.{i % 7} - - [06/Dec/2026:12:00:00 +0000] "GET /api/items/{i} HTTP/1.1" '
            f'{status} {i % 5000} "-" "bench/1.0" rt=0.{i % 1000:03d}')


def batch(start, ts):
    events, size, i = [], 0, start
    while size < 1000000 and len(events) < 10000:
        m = line(i)
        events.append({"timestamp": ts, "message": m})
        size += len(m)
        i += 1
    return events, size, i


def agent_ingest(total):
    """The agent's shipper over WORKERS json-file logs; (message bytes, seconds)."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))
    from berth_agent_client import AgentClient
    node = AgentClient(ENDPOINT, os.path.join(WORKDIR, "node"))
    node.join(TOKEN)
    t = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
    files, nbytes = [], 0
    for w in range(WORKERS):
        path = os.path.join(WORKDIR, f"c{w}-json.log")
        with open(path, "w") as f:
            i, n = 100_000_000 + w * 10_000_000, 0
            while n < total // WORKERS:
                m = line(i)
                f.write(json.dumps({"log": m + "\n", "stream": "stdout", "time": f"{t}.{i % 1000000:06d}123Z"},
                                   separators=(",", ":")) + "\n")
                n += len(m)
                i += 1
        nbytes += n
        files.append(path)
    subprocess.run(["sync"])
    host = ENDPOINT.split("//", 1)[1]
    out = subprocess.run([BERTH, "bench-logs", "ship", host, node.ca, node.cert, node.key,
                          os.path.join(WORKDIR, "ship"), GROUP + "-agent", *files], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit("bench-logs: " + out.stderr[-2000:])
    for f in files:
        os.unlink(f)
    return nbytes, json.loads(out.stdout)["seconds"]


def worker(w, per_worker, q):
    cr, s = creds(), requests.Session()
    stream = f"w{w}"
    call(s, cr, "CreateLogStream", {"logGroupName": GROUP, "logStreamName": stream})
    ts = int(time.time() * 1000)
    # pre-build the bodies (the client's JSON encoding is not what is measured)
    bodies, sent, i = [], 0, w * 10_000_000
    while sent < per_worker:
        ev, size, i = batch(i, ts)
        bodies.append((json.dumps({"logGroupName": GROUP, "logStreamName": stream, "logEvents": ev}).encode(),
                       size))
        sent += size
    q.put("ready")
    t0 = time.monotonic()
    for b, _ in bodies:
        call(s, cr, "PutLogEvents", b)
    q.put((sum(sz for _, sz in bodies), time.monotonic() - t0))


def main():
    cr, s = creds(), requests.Session()
    call(s, cr, "CreateLogGroup", {"logGroupName": GROUP})
    total = SIZE_MB * 1000 * 1000
    agent_bytes, agent_s = agent_ingest(total)
    if os.environ.get("AGENT_ONLY"):  # bench/logs.sh's BASE run: the agent path alone
        print(json.dumps({"agent_bytes": agent_bytes, "agent_mb_s": agent_bytes / agent_s / 1e6}))
        return
    q = multiprocessing.Queue()
    procs = [multiprocessing.Process(target=worker, args=(w, total // WORKERS, q)) for w in range(WORKERS)]
    for p in procs:
        p.start()
    for _ in procs:
        assert q.get() == "ready"
    t0 = time.monotonic()
    results = [q.get() for _ in procs]
    wall = time.monotonic() - t0
    for p in procs:
        p.join()
    nbytes = sum(r[0] for r in results)
    ingest = nbytes / wall / 1e6
    # the same lines on disk, for the anchors
    lines_path = os.path.join(WORKDIR, "lines.txt")
    with open(lines_path, "w") as f:
        for w in range(WORKERS):
            i, n = w * 10_000_000, 0
            while n < total // WORKERS:
                m = line(i)
                f.write(m + "\n")
                n += len(m)
                i += 1
    size = os.path.getsize(lines_path)
    subprocess.run(["sync"])
    t = time.monotonic()
    subprocess.run(f"cat {lines_path} > {lines_path}.copy && sync {lines_path}.copy", shell=True, check=True)
    cat_rate = size / (time.monotonic() - t) / 1e6
    t = time.monotonic()
    g = subprocess.run(["grep", "-c", '" 500 ', lines_path], capture_output=True, text=True)
    grep_s = time.monotonic() - t
    os.unlink(lines_path + ".copy")
    # FilterLogEvents over everything
    t = time.monotonic()
    found, token, calls = 0, None, 0
    while True:
        body = {"logGroupName": GROUP, "filterPattern": '[ip, id, user, ts, request, status = 500, ...]'}
        if token:
            body["nextToken"] = token
        out = call(s, cr, "FilterLogEvents", body)
        calls += 1
        found += len(out["events"])
        token = out.get("nextToken")
        if not token:
            break
    filt_s = time.monotonic() - t
    t = time.monotonic()
    found2 = 0
    out = call(s, cr, "FilterLogEvents", {"logGroupName": GROUP, "filterPattern": '"HTTP/1.1\\" 500"'})
    found2 = len(out["events"])
    term_s = time.monotonic() - t
    print(json.dumps({"bytes": nbytes, "ingest_mb_s": ingest, "agent_bytes": agent_bytes,
                      "agent_mb_s": agent_bytes / agent_s / 1e6, "cat_mb_s": cat_rate, "lines_file": size,
                      "grep_s": grep_s, "grep_count": int(g.stdout.strip() or 0),
                      "filter_space_s": filt_s, "filter_space_found": found,
                      "filter_calls": calls, "filter_term_s": term_s, "filter_term_found": found2}))


if __name__ == "__main__":
    main()
