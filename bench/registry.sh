#!/bin/sh
# bench/registry.sh - berth registry vs Debian's docker-registry (CNCF Distribution 2.8)
# on the same machine and the same data, medians of BENCH_ROUNDS rounds:
#   (a) skopeo push then pull of a generated ~200 MB multi-layer image (uncompressed
#       layers: skopeo gzips them on push, as it does for any docker:// destination)
#   (a') the same bytes without skopeo: a minimal Python client (one keep-alive
#       connection, skopeo's request pattern: POST, PATCH with Content-Length, PUT
#       ?digest=; GET manifest + blobs) pushing and pulling the compressed blobs
#       skopeo uploaded. This is the servers' own throughput.
#   (a'') skopeo's floor: the same skopeo copies with no registry (oci -> dir with
#       gzip, dir -> oci on tmpfs): what skopeo costs by itself.
#   server CPU seconds (utime+stime of the server process) per operation: the
#       least noisy number on a shared machine.
#   (b) manifest GET (wrk) and blob HEAD (ab -k: wrk cannot do HEAD) at 64 and 256
#       connections, keep-alive (req/s, p99)
#   (c) server peak RSS (VmHWM)
# berth runs with its defaults (storage.fsync: true, every blob fsynced before it
# is acknowledged); Distribution's filesystem driver never fsyncs, so the raw
# numbers are also given for berth with --no-fsync (same durability as Distribution).
# Every round starts fresh servers on new ports (skopeo's blob-info cache would
# otherwise turn repeated pushes into cross-repository mounts) and alternates
# which server goes first.
#
# A/B mode: ANCHOR_BIN=<another berth> runs that berth's registry (same flags) in
# Distribution's place, so every ratio is this berth / the anchor (e.g. main's build).
#
# Env: BERTH_BIN (default build/src/berth), BENCH_SIZE (bytes, default 200000000),
#      BENCH_ROUNDS (default 3), BENCH_SECONDS (per wrk/ab run, default 3),
#      BENCH_THREADS (wrk threads, default 2).
set -eu
# Debian's interpreter directly: a pyenv shim costs ~100 ms per call, inside the timings
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3

REPO=$(cd "$(dirname "$0")/.." && pwd)
BERTH=${BERTH_BIN:-$REPO/build/src/berth}
SIZE=${BENCH_SIZE:-200000000}
ROUNDS=${BENCH_ROUNDS:-3}
SECS=${BENCH_SECONDS:-3}
WRK_THREADS=${BENCH_THREADS:-2}
for t in skopeo wrk ab docker-registry; do
	command -v "$t" >/dev/null || { echo "bench: '$t' not found (run scripts/deps.sh)" >&2; exit 1; }
done
[ -x "$BERTH" ] || { echo "bench: berth binary '$BERTH' not found (make build)" >&2; exit 1; }

WORK=$(mktemp -d /tmp/berth-bench-registry-XXXXXX)
# pulled images go to tmpfs when there is one, so the client's own disk writes do not dominate
if [ -d /dev/shm ] && [ -w /dev/shm ]; then
	SHM=$(mktemp -d /dev/shm/berth-bench-pull-XXXXXX)
else
	SHM=$(mktemp -d "$WORK/pull-XXXXXX")
fi
PULLED=$SHM/image
GZ=$SHM/gz # the compressed image as skopeo pushed it: input of the raw client
RES=$WORK/results
: >"$RES"
PIDS=""
cleanup() {
	for p in $PIDS; do kill "$p" 2>/dev/null || true; done
	for p in $PIDS; do wait "$p" 2>/dev/null || true; done
	rm -rf "$WORK" "$SHM"
}
trap cleanup EXIT INT TERM

free_port() {
	"$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_up() {
	i=0
	while ! "$PY" -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$1/v2/', timeout=1)" 2>/dev/null; do
		i=$((i + 1))
		[ $i -lt 200 ] || { echo "bench: server on port $1 did not start" >&2; exit 1; }
		sleep 0.05
	done
}

now() { "$PY" -c 'import time; print(time.monotonic())'; }
elapsed() { "$PY" -c "print(f'{$2 - $1:.3f}')"; }
cpu() { awk '{printf "%.2f", ($14 + $15) / 100}' "/proc/$1/stat"; } # CLK_TCK is 100 on Linux
cpu_delta() { "$PY" -c "print(f'{$2 - $1:.2f}')"; }
record() { echo "$1 $2" >>"$RES"; } # metric value

cat >"$WORK/raw.py" <<'PYEOF'
"""Minimal distribution client: push/pull an OCI layout's blobs over one
keep-alive connection with skopeo's request pattern. Prints seconds."""
import http.client, json, os, sys, time, urllib.parse

BUF = 1 << 20


def layout(d):
    idx = json.load(open(os.path.join(d, "index.json")))
    path = lambda dg: os.path.join(d, "blobs", *dg.split(":"))
    mbytes = open(path(idx["manifests"][0]["digest"]), "rb").read()
    m = json.loads(mbytes)
    return m, mbytes, [m["config"]] + m["layers"], path


def location(host, loc, extra):
    u = urllib.parse.urlsplit(urllib.parse.urljoin(f"http://{host}/", loc))
    q = u.query + ("&" if u.query and extra else "") + extra
    return u.path + ("?" + q if q else "")


def call(c, method, url, expect, **kw):
    c.request(method, url, **kw)
    r = c.getresponse()
    r.read()
    if r.status != expect:
        sys.exit(f"raw.py: {method} {url}: {r.status}")
    return r


def push(host, repo, d):
    m, mbytes, blobs, path = layout(d)
    c = http.client.HTTPConnection(host, blocksize=BUF)
    t0 = time.monotonic()
    for b in blobs:
        r = call(c, "POST", f"/v2/{repo}/blobs/uploads/", 202)
        with open(path(b["digest"]), "rb") as f:
            r = call(c, "PATCH", location(host, r.headers["Location"], ""), 202, body=f,
                     headers={"Content-Type": "application/octet-stream", "Content-Length": str(b["size"])})
        digest = "digest=" + urllib.parse.quote(b["digest"])
        call(c, "PUT", location(host, r.headers["Location"], digest), 201, headers={"Content-Length": "0"})
    call(c, "PUT", f"/v2/{repo}/manifests/v1", 201, body=mbytes, headers={"Content-Type": m["mediaType"]})
    return time.monotonic() - t0


def pull(host, repo, d):
    m, _, blobs, _ = layout(d)
    c = http.client.HTTPConnection(host)
    mv = memoryview(bytearray(BUF))
    t0 = time.monotonic()
    call(c, "GET", f"/v2/{repo}/manifests/v1", 200, headers={"Accept": m["mediaType"]})
    for b in blobs:
        c.request("GET", f"/v2/{repo}/blobs/{b['digest']}")
        r = c.getresponse()
        n = 0
        while (k := r.readinto(mv)):
            n += k
        if r.status != 200 or n != b["size"]:
            sys.exit(f"raw.py: GET {b['digest']}: {r.status}, {n} of {b['size']} bytes")
    return time.monotonic() - t0


op, host, repo, d = sys.argv[1:5]
print(f"{(push if op == 'push' else pull)(host, repo, d):.3f}")
PYEOF

echo "== generating a ~$((SIZE / 1000000)) MB image (scripts/mkimage)"
"$REPO/scripts/mkimage" --tag bench:latest --size "$SIZE" --layers 3 --compression none \
	--oci "$WORK/image" >/dev/null

# start_distribution NAME / start_berth NAME [flags]: fresh data dir and port;
# sets NAME_pid and NAME_host
start_distribution() {
	port=$(free_port)
	rm -rf "$WORK/data-$1"
	if [ -n "${ANCHOR_BIN:-}" ]; then
		"$ANCHOR_BIN" registry serve --root "$WORK/data-$1" --addr "127.0.0.1:$port" --no-access-log \
			--log-level warn >"$WORK/$1.log" 2>&1 &
		eval "$1_pid=$! $1_host=127.0.0.1:$port"
		PIDS="$PIDS $!"
		wait_up "$port"
		return
	fi
	cat >"$WORK/distribution.yml" <<YML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: $WORK/data-$1
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
YML
	docker-registry serve "$WORK/distribution.yml" >"$WORK/$1.log" 2>&1 &
	eval "$1_pid=$! $1_host=127.0.0.1:$port"
	PIDS="$PIDS $!"
	wait_up "$port"
}

start_berth() {
	name=$1
	shift
	port=$(free_port)
	rm -rf "$WORK/data-$name"
	"$BERTH" registry serve --root "$WORK/data-$name" --addr "127.0.0.1:$port" --no-access-log \
		--log-level warn "$@" >"$WORK/$name.log" 2>&1 &
	eval "${name}_pid=$! ${name}_host=127.0.0.1:$port"
	PIDS="$PIDS $!"
	wait_up "$port"
}

stop_servers() {
	for p in $PIDS; do kill "$p" 2>/dev/null || true; done
	for p in $PIDS; do wait "$p" 2>/dev/null || true; done
	PIDS=""
}

# skopeo_push NAME: skopeo push to server NAME; records NAME_push, NAME_push_cpu
skopeo_push() {
	eval "host=\$$1_host pid=\$$1_pid"
	c0=$(cpu "$pid")
	t0=$(now)
	skopeo copy -q --dest-tls-verify=false "oci:$WORK/image" "docker://$host/bench/image:v1"
	t1=$(now)
	record "$1_push" "$(elapsed "$t0" "$t1")"
	record "$1_push_cpu" "$(cpu_delta "$c0" "$(cpu "$pid")")"
}

# skopeo_pull NAME: skopeo pull into tmpfs; records NAME_pull, NAME_pull_cpu
skopeo_pull() {
	eval "host=\$$1_host pid=\$$1_pid"
	rm -rf "$PULLED"
	c0=$(cpu "$pid")
	t0=$(now)
	skopeo copy -q --src-tls-verify=false "docker://$host/bench/image:v1" "oci:$PULLED:v1"
	t1=$(now)
	record "$1_pull" "$(elapsed "$t0" "$t1")"
	record "$1_pull_cpu" "$(cpu_delta "$c0" "$(cpu "$pid")")"
	[ -d "$GZ" ] || cp -r "$PULLED" "$GZ"
	rm -rf "$PULLED"
}

# raw NAME REPO: the Python client pushes then pulls the compressed image
raw() {
	eval "host=\$$1_host pid=\$$1_pid"
	c0=$(cpu "$pid")
	record "$1_rawpush" "$("$PY" "$WORK/raw.py" push "$host" "$2" "$GZ")"
	c1=$(cpu "$pid")
	record "$1_rawpull" "$("$PY" "$WORK/raw.py" pull "$host" "$2" "$GZ")"
	record "$1_rawpush_cpu" "$(cpu_delta "$c0" "$c1")"
	record "$1_rawpull_cpu" "$(cpu_delta "$c1" "$(cpu "$pid")")"
}

floor() {
	rm -rf "$SHM/dir" "$PULLED"
	t0=$(now)
	skopeo copy -q --dest-compress "oci:$WORK/image" "dir:$SHM/dir"
	t1=$(now)
	skopeo copy -q "dir:$SHM/dir" "oci:$PULLED:v1"
	t2=$(now)
	record floor_push "$(elapsed "$t0" "$t1")"
	record floor_pull "$(elapsed "$t1" "$t2")"
	rm -rf "$SHM/dir" "$PULLED"
}

echo "== $ROUNDS rounds: Distribution ($(docker-registry --version 2>/dev/null | awk '{print $3}')), berth, berth --no-fsync"
# an older berth (before storage.fsync) has no --no-fsync: skip that column
NOFS=nofs
"$BERTH" registry serve --help 2>&1 | grep -q -- --no-fsync || NOFS=
round=1
while [ $round -le "$ROUNDS" ]; do
	start_distribution dist
	start_berth berth
	[ -z "$NOFS" ] || start_berth nofs --no-fsync
	if [ $((round % 2)) = 1 ]; then order="dist berth"; else order="berth dist"; fi
	for s in $order; do skopeo_push "$s"; done
	for s in $order; do skopeo_pull "$s"; done
	floor
	for s in $order $NOFS; do raw "$s" "raw/r$round"; done
	if [ "$round" -lt "$ROUNDS" ]; then stop_servers; fi
	echo "   round $round done (load $(cut -d' ' -f1 /proc/loadavg))"
	round=$((round + 1))
done

cat >"$WORK/manifest.lua" <<'LUA'
wrk.headers["Accept"] = "application/vnd.oci.image.manifest.v1+json"
LUA

# wrk_run URL SCRIPT CONNS -> "req/s p99_ms"
wrk_run() {
	out=$(wrk -t "$WRK_THREADS" -c "$3" -d "${SECS}s" --latency -s "$2" "$1")
	echo "$out" | "$PY" -c '
import re, sys
t = sys.stdin.read()
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1))
m = re.search(r"\s99%\s+([\d.]+)(us|ms|s)", t)
v = float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[m.group(2)]
errs = re.search(r"Non-2xx or 3xx responses: (\d+)", t)
if errs:
    print("bench: wrk saw", errs.group(1), "error responses", file=sys.stderr)
print(f"{rps:.0f} {v:.2f}")'
}

# ab_head URL CONNS -> "req/s p99_ms" (wrk cannot do HEAD: it waits for a body)
ab_head() {
	ab -k -i -c "$2" -t "$SECS" -n 100000000 "$1" 2>&1 | "$PY" -c '
import re, sys
t = sys.stdin.read()
rps = float(re.search(r"Requests per second:\s+([\d.]+)", t).group(1))
p99 = float(re.search(r"\s99%\s+(\d+)", t).group(1))
bad = re.search(r"Non-2xx responses:\s+(\d+)", t)
if bad:
    print("bench: ab saw", bad.group(1), "error responses", file=sys.stderr)
print(f"{rps:.0f} {p99:.2f}")'
}

# load NAME CONNS: manifest GET and config-blob HEAD
load() {
	eval "host=\$$1_host"
	blob=$("$PY" -c "import json; m=json.load(open('$GZ/index.json'))['manifests'][0]['digest'].split(':')[1]; print(json.load(open('$GZ/blobs/sha256/'+m))['config']['digest'])")
	set -- "$1" "$2" $(wrk_run "http://$host/v2/bench/image/manifests/v1" "$WORK/manifest.lua" "$2")
	record "$1_m$2_rps" "$3"
	record "$1_m$2_p99" "$4"
	set -- "$1" "$2" $(ab_head "http://$host/v2/bench/image/blobs/$blob" "$2")
	record "$1_h$2_rps" "$3"
	record "$1_h$2_p99" "$4"
}

echo "== wrk/ab, $ROUNDS x ${SECS}s per point"
i=1
while [ $i -le "$ROUNDS" ]; do
	for c in 64 256; do
		load dist $c
		load berth $c
	done
	i=$((i + 1))
done
record dist_rss "$(awk '/VmHWM/ {print $2}' "/proc/$dist_pid/status")"
record berth_rss "$(awk '/VmHWM/ {print $2}' "/proc/$berth_pid/status")"

[ -z "${ANCHOR_BIN:-}" ] || echo "(A/B: the 'distrib.'/Distribution column is the anchor berth $ANCHOR_BIN)"
MB=$((SIZE / 1000000)) "$PY" - "$RES" <<'PYEOF'
import collections, os, statistics, sys
v = collections.defaultdict(list)
for line in open(sys.argv[1]):
    k, x = line.split()
    v[k].append(float(x))
med = {k: statistics.median(x) for k, x in v.items()}
mb = os.environ["MB"]
print(f"\nmedians of {len(v['berth_push'])} rounds; ratio = berth/distribution "
      "(times, CPU, latency, memory: lower is better; req/s: higher is better)\n")
print(f"{'metric':<44} {'berth':>10} {'anchor' if os.environ.get('ANCHOR_BIN') else 'distrib.':>10} {'ratio':>7}")
def row(label, b, d, fmt="{:.2f}"):
    bv, dv = med.get(b), med.get(d)
    if bv is None or dv is None:
        return
    r = f"{bv / dv:.2f}" if dv else "n/a"
    print(f"{label:<44} {fmt.format(bv):>10} {fmt.format(dv):>10} {r:>7}")
row(f"skopeo push ({mb} MB, s)", "berth_push", "dist_push")
row(f"skopeo pull ({mb} MB, s)", "berth_pull", "dist_pull")
row("  server CPU during skopeo push (s)", "berth_push_cpu", "dist_push_cpu")
row("  server CPU during skopeo pull (s)", "berth_pull_cpu", "dist_pull_cpu")
row("raw HTTP push (compressed blobs, s)", "berth_rawpush", "dist_rawpush", "{:.3f}")
row("raw HTTP pull (s)", "berth_rawpull", "dist_rawpull", "{:.3f}")
row("raw HTTP push, berth --no-fsync (s)", "nofs_rawpush", "dist_rawpush", "{:.3f}")
row("  server CPU per raw push (s)", "berth_rawpush_cpu", "dist_rawpush_cpu")
row("  server CPU per raw pull (s)", "berth_rawpull_cpu", "dist_rawpull_cpu")
for c in (64, 256):
    row(f"manifest GET c={c} (req/s)", f"berth_m{c}_rps", f"dist_m{c}_rps", "{:.0f}")
    row(f"manifest GET c={c} p99 (ms)", f"berth_m{c}_p99", f"dist_m{c}_p99")
    row(f"blob HEAD c={c} (req/s)", f"berth_h{c}_rps", f"dist_h{c}_rps", "{:.0f}")
    row(f"blob HEAD c={c} p99 (ms)", f"berth_h{c}_p99", f"dist_h{c}_p99")
row("peak RSS (KiB)", "berth_rss", "dist_rss", "{:.0f}")
fp, fl = med["floor_push"], med["floor_pull"]
print(f"\nskopeo alone (no registry): push work {fp:.2f} s (oci -> dir, gzip), pull work {fl:.2f} s (dir -> oci)")
def x(d, b):
    return f"{d / b:.2f}x" if b > 0 else "n/a"
bs, ds = med["berth_push"] + med["berth_pull"], med["dist_push"] + med["dist_pull"]
print(f"throughput vs Distribution (higher is better):")
print(f"  skopeo push+pull                      {x(ds, bs)}")
be, de = bs - fp - fl, ds - fp - fl
print(f"  skopeo push+pull minus skopeo's floor {x(de, be)}   ({be:.2f} s vs {de:.2f} s above the floor)")
br = med["berth_rawpush"] + med["berth_rawpull"]
dr = med["dist_rawpush"] + med["dist_rawpull"]
nr = med.get("nofs_rawpush", 0) + med.get("nofs_rawpull", 0)
print(f"  raw HTTP push+pull                    {x(dr, br)}   (berth --no-fsync: {x(dr, nr)})")
bc = med["berth_rawpush_cpu"] + med["berth_rawpull_cpu"]
dc = med["dist_rawpush_cpu"] + med["dist_rawpull_cpu"]
print(f"  server CPU per raw push+pull          {x(dc, bc)}")
PYEOF
echo "(load average at the end: $(cut -d' ' -f1-3 /proc/loadavg); this machine is shared, numbers are noisy)"
