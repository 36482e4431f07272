#!/bin/sh
# bench/metrics.sh - the metrics of issue 15: the agent's sampling cost and the server's exposition.
#  1. CPU seconds the agent's sampler spends per round of 100 task cgroups (the runtime's cgroup readers
#     + /proc/PID/net/dev), against `cat` of the same cgroup files (one cat per cgroup, what a shell
#     collector would do) measured in the same run on the same cgroups.
#  2. Render time of the server's /metrics for 1000 tasks in 10 services (in-process), against python's
#     http.server serving the same bytes as a static file (one GET, curl, averaged).
# Env: BERTH (binary), TASKS (100 cgroups), ROUNDS (20).
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
BERTH=$(readlink -f "${BERTH:-$HERE/../build/src/berth}")
TASKS=${TASKS:-100}
ROUNDS=${ROUNDS:-20}
PARENT="berth-bench-metrics-$$"
DIR=$(mktemp -d /tmp/berth-bench-metrics-XXXXXX)
PY=""
CTRLS="cpu cpuacct memory blkio pids"
cleanup() {
	set +e
	[ -n "$PY" ] && kill "$PY" 2>/dev/null && wait "$PY" 2>/dev/null
	for d in $(for c in $CTRLS; do echo "/sys/fs/cgroup/$c/$PARENT"; done) "/sys/fs/cgroup/$PARENT"; do
		[ -d "$d" ] || continue
		rmdir "$d"/task-* 2>/dev/null
		rmdir "$d"
	done
	rm -rf "$DIR"
}
trap cleanup EXIT INT TERM

# the task cgroups (empty: the files are read the same way)
if [ -d /sys/fs/cgroup/cpuacct ]; then
	for c in $CTRLS; do
		for i in $(seq 1 "$TASKS"); do mkdir -p "/sys/fs/cgroup/$c/$PARENT/task-$i"; done
	done
	FILES="cpuacct/%s/cpuacct.usage cpuacct/%s/cpuacct.stat cpu/%s/cpu.stat memory/%s/memory.usage_in_bytes
memory/%s/memory.limit_in_bytes memory/%s/memory.max_usage_in_bytes memory/%s/memory.failcnt memory/%s/memory.stat
pids/%s/pids.current pids/%s/pids.max blkio/%s/blkio.throttle.io_service_bytes_recursive
blkio/%s/blkio.throttle.io_serviced_recursive"
else
	for i in $(seq 1 "$TASKS"); do mkdir -p "/sys/fs/cgroup/$PARENT/task-$i"; done
	FILES="%s/cpu.stat %s/memory.current %s/memory.max %s/memory.stat %s/pids.current %s/pids.max %s/io.stat"
fi
SAMPLE=$("$BERTH" bench-metrics sample "$PARENT" "$ROUNDS")
# the anchor: one `cat` per cgroup of the same files and the same /proc/self/net/dev
args_of() { for f in $FILES; do printf "/sys/fs/cgroup/$f " "$1"; done; echo /proc/self/net/dev; }
: > "$DIR/cmds"
for i in $(seq 1 "$TASKS"); do echo "cat $(args_of "$PARENT/task-$i") >/dev/null 2>&1" >> "$DIR/cmds"; done
CAT=$(/usr/bin/python3 - "$DIR/cmds" "$ROUNDS" "$TASKS" <<'PY'
import os, resource, sys, subprocess
cmds = open(sys.argv[1]).read()
rounds, n = int(sys.argv[2]), int(sys.argv[3])
before = resource.getrusage(resource.RUSAGE_CHILDREN)
for _ in range(rounds):
    subprocess.run(["sh", "-c", cmds], check=False)
after = resource.getrusage(resource.RUSAGE_CHILDREN)
cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
print(f"{cpu / rounds * 100 / n:.6f}")
PY
)
RENDER=$("$BERTH" bench-metrics render 1000 50 "$DIR/metrics.txt")
PORT=$((30000 + $$ % 10000))
(cd "$DIR" && exec /usr/bin/python3 -m http.server "$PORT" --bind 127.0.0.1 >/dev/null 2>&1) &
PY=$!
i=0
until curl -sf -o /dev/null "http://127.0.0.1:$PORT/metrics.txt"; do
	i=$((i + 1)); [ $i -gt 50 ] && { echo "http.server did not start"; exit 1; }
	sleep 0.1
done
STATIC=$(/usr/bin/python3 - "$PORT" <<'PY'
import sys, time, urllib.request
url = f"http://127.0.0.1:{sys.argv[1]}/metrics.txt"
n = 50
t = time.monotonic()
for _ in range(n):
    urllib.request.urlopen(url).read()
print(f"{(time.monotonic() - t) / n * 1000:.3f}")
PY
)
/usr/bin/python3 - "$SAMPLE" "$CAT" "$RENDER" "$STATIC" <<'PY'
import json, sys
s, cat, r, static = json.loads(sys.argv[1]), float(sys.argv[2]), json.loads(sys.argv[3]), float(sys.argv[4])
print(f"{'measure':58} {'berth':>10} {'anchor':>10} {'ratio':>7}")
print(f"{'CPU ms per round of 100 task cgroups (sampler vs cat)':58} {s['cpu_s_per_round_per_100'] * 1000:10.2f} "
      f"{cat * 1000:10.2f} {s['cpu_s_per_round_per_100'] / cat:7.3f}")
print(f"{'/metrics for 1000 tasks, ms (render vs http.server GET)':58} {r['render_ms']:10.2f} {static:10.2f} "
      f"{r['render_ms'] / static:7.3f}   ({r['bytes']} bytes)")
PY
