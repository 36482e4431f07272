#!/bin/sh
# bench/runtime.sh - `run` of a busybox bundle executing `true`: berth vs crun
# vs runc vs the raw namespace floor, side by side in one hyperfine run, then
# berth's ratios and where its time goes (per-phase timings).
#
# crun refuses this host's hybrid cgroup layout, so it runs inside a private
# mount namespace with a cgroup2 mount at /sys/fs/cgroup and
# --cgroup-manager=disabled. That wrapper (unshare -m + mount + sh) costs
# something by itself: it is measured alone ("crun-wrapper") and subtracted.
#
# Usage: sh bench/runtime.sh [runs]   (env BERTH=path/to/berth)
set -eu

RUNS=${1:-40}
HERE=$(cd "$(dirname "$0")/.." && pwd)
BERTH=${BERTH:-$HERE/build/src/berth}
command -v hyperfine >/dev/null || { echo "bench/runtime.sh: hyperfine is required (scripts/deps.sh)" >&2; exit 1; }
[ -x "$BERTH" ] || { echo "bench/runtime.sh: build first ($BERTH missing)" >&2; exit 1; }

W=$(mktemp -d /tmp/berth-bench-rt.XXXXXX)
cleanup() {
	for rt in runc crun; do "$rt" --root "$W/$rt-state" delete -f bench >/dev/null 2>&1 || true; done
	"$W/berth-runtime" --root "$W/berth-state" delete -f bench >/dev/null 2>&1 || true
	rm -rf "$W"
}
trap cleanup EXIT INT TERM

ln -s "$BERTH" "$W/berth-runtime"
"$HERE/scripts/mkimage" --rootfs "$W/rootfs" >/dev/null
mkdir -p "$W/bundle"
(cd "$W/bundle" && runc spec)
python3 - "$W/bundle/config.json" "$W/rootfs" <<'EOF'
import json, sys
path, rootfs = sys.argv[1], sys.argv[2]
c = json.load(open(path))
c["root"]["path"] = rootfs
c["process"]["terminal"] = False
c["process"]["args"] = ["true"]
c["hostname"] = "bench"
# no cgroup work for anyone: crun runs with --cgroup-manager=disabled
c["linux"].pop("resources", None)
json.dump(c, open(path, "w"))
EOF

B="$W/bundle"
CRUN_WRAP="unshare -m sh -c 'mount --make-rprivate / && mount -t cgroup2 none /sys/fs/cgroup && exec \"\$@\"' sh"
hyperfine -N --warmup 5 --runs "$RUNS" --export-json "$W/results.json" \
	-n berth "$W/berth-runtime --root $W/berth-state run --bundle $B bench" \
	-n crun "$CRUN_WRAP crun --cgroup-manager=disabled --root $W/crun-state run --bundle $B bench" \
	-n crun-wrapper "$CRUN_WRAP true" \
	-n runc "runc --root $W/runc-state run --bundle $B bench" \
	-n floor "unshare --pid --mount --uts --ipc --net --fork true" >"$W/hyperfine.txt" 2>&1 ||
	{ cat "$W/hyperfine.txt"; exit 1; }
grep -E "^Benchmark|Time \(mean" "$W/hyperfine.txt"

python3 - "$W/results.json" <<'EOF'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
m = {k: v["mean"] * 1000 for k, v in r.items()}
crun = m["crun"] - m["crun-wrapper"]
print()
print("note: crun runs in a private mount ns with a cgroup2 mount and --cgroup-manager=disabled")
print("      (it refuses the hybrid layout); the wrapper's own %.2f ms are subtracted." % m["crun-wrapper"])
print("%-8s %8.2f ms" % ("berth", m["berth"]))
print("%-8s %8.2f ms  (%.2f wrapped)" % ("crun", crun, m["crun"]))
print("%-8s %8.2f ms" % ("runc", m["runc"]))
print("%-8s %8.2f ms" % ("floor", m["floor"]))
print("berth/crun  = %.2f   (target <= 0.8)" % (m["berth"] / crun))
print("berth/floor = %.2f   (target <= 1.5)" % (m["berth"] / m["floor"]))
print("berth/runc  = %.2f" % (m["berth"] / m["runc"]))
EOF

echo
echo "berth per-phase timings (us, one run; BERTH_RUNTIME_TIMINGS=1):"
BERTH_RUNTIME_TIMINGS=1 "$W/berth-runtime" --root "$W/berth-state" run --bundle "$B" bench 2>&1 |
	sed -n 's/.*phase=\([^ ]*\) us=\([0-9]*\) pid=\([0-9]*\).*/  \1 \2 (pid \3)/p'
