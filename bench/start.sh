#!/bin/sh
# bench/start.sh - process start of the berth CLI against /bin/true, made provable on a
# shared machine: `perf stat -r N` (task-clock = CPU time of the process, the
# part of its start this binary decides; wall time is the same plus waiting for a
# CPU) in interleaved rounds, keeping each command's best round. Prints the
# absolute CPU and wall times, the ratio to /bin/true, what berth adds to it, and
# what is mapped and relocated at start (ldd, LD_DEBUG=statistics).
#   berth version        no daemon needed
#   berth ps             against an address where no daemon listens: the whole client
#                        start (options, socket) up to the failed connect
# BASELINE=path/to/an/older/berth adds that binary in the same rounds: before/after.
# Usage: sh bench/start.sh [BERTH_BIN]   (RUNS=50 per round, ROUNDS=5)
set -eu
BIN=$(realpath "${1:-build/src/berth}")
BASE=${BASELINE:+$(realpath "$BASELINE")}
RUNS=${RUNS:-50}
ROUNDS=${ROUNDS:-5}
command -v perf >/dev/null || { echo "bench/start.sh: perf is required (linux-perf)" >&2; exit 1; }
W=$(mktemp -d /tmp/berth-bench-start-XXXXXX)
trap 'rm -rf "$W"' EXIT INT TERM
NOSOCK="unix://$W/none.sock"

# name|command
set -- "true|/bin/true" "version|$BIN version" "ps|$BIN ps -H $NOSOCK"
[ -z "$BASE" ] || set -- "$@" "base-version|$BASE version" "base-ps|$BASE ps -H $NOSOCK"
echo "== load: $(cut -d' ' -f1-3 /proc/loadavg); $RUNS runs x $ROUNDS rounds, best round kept"
r=0
while [ $r -lt "$ROUNDS" ]; do
	for c in "$@"; do
		name=${c%%|*}; cmd=${c#*|}
		# CSV: value,unit,event,...; ps exits 1 (no daemon): perf still counts it
		perf stat -x, -r "$RUNS" -e task-clock,page-faults $cmd >/dev/null 2>"$W/p" || true
		perf stat -r "$RUNS" $cmd >/dev/null 2>"$W/w" || true
		tc=$(awk -F, '$3 ~ /task-clock/ {print $1}' "$W/p")
		pf=$(awk -F, '$3 ~ /page-faults/ {print $1}' "$W/p")
		wall=$(awk '/seconds time elapsed/ {print $1 * 1000}' "$W/w")
		echo "$name $tc $pf $wall" >>"$W/all"
	done
	r=$((r + 1))
done
python3 - "$W/all" <<'PY'
import sys
best = {}
for line in open(sys.argv[1]):
    name, tc, pf, wall = line.split()
    tc, pf, wall = float(tc), float(pf), float(wall)
    b = best.get(name)
    best[name] = (min(tc, b[0]), min(pf, b[1]), min(wall, b[2])) if b else (tc, pf, wall)
t = best["true"]
print("%-14s %9s %9s %11s %13s" % ("", "CPU ms", "faults", "wall ms", "CPU vs true"))
for name in ["true", "version", "ps", "base-version", "base-ps"]:
    if name not in best: continue
    c, f, w = best[name]
    print("%-14s %9.2f %9.0f %11.2f %6.2fx %+5.2f ms" % (name, c, f, w, c / t[0], c - t[0]))
print("target: berth version / ps <= 5 ms on a quiet machine; here /bin/true alone takes %.2f ms of CPU,"
      " so the quiet-machine estimate is %.2f ms (berth's own part plus a quiet exec of ~1 ms)"
      % (t[0], max(best["version"][0], best["ps"][0]) - t[0] + 1.0))
PY
echo "== mapped at start"
echo "berth: $(ldd "$BIN" | grep -c '=>') shared libraries; $(LD_DEBUG=statistics "$BIN" version 2>&1 >/dev/null | awk '/number of relocations:/ {r=$NF} /relative relocations/ {rr=$NF} END {print r " symbol relocations, " rr " relative"}')"
[ -z "$BASE" ] || echo "baseline: $(ldd "$BASE" | grep -c '=>') shared libraries; $(LD_DEBUG=statistics "$BASE" version 2>&1 >/dev/null | awk '/number of relocations:/ {r=$NF} /relative relocations/ {rr=$NF} END {print r " symbol relocations, " rr " relative"}')"
