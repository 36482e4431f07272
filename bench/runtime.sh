#!/bin/sh
# bench/runtime.sh - `run` of a busybox bundle executing `true`: berth vs crun
# vs runc vs the raw namespace floor, side by side in one hyperfine run, then
# berth's ratios and where its time goes (per-phase timings).
#
# crun refuses this host's hybrid cgroup layout, so every contender runs inside
# one private mount namespace with a cgroup2 mount at /sys/fs/cgroup, crun
# with --cgroup-manager=disabled; nobody is asked for cgroup work (the bundle
# has no cgroupsPath and no resources). "berth" is `berth-runtime` as
# installed (a symlink to the slim berth-shim binary): it re-executes itself
# (CVE-2019-5736 protection) through a detached read-only mount; "berth-multi"
# is `berth-runtime` as a symlink to the multi-call berth binary (~50 shared
# libraries to load, then the same re-exec into berth-shim); "berth-ro" is the
# berth binary on a read-only bind mount, which needs no re-exec at all
# (docs/runtime.md).
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

SLIM=$(dirname "$BERTH")/berth-shim
[ -x "$SLIM" ] || { echo "bench/runtime.sh: build first ($SLIM missing)" >&2; exit 1; }
ln -s "$SLIM" "$W/berth-runtime"
mkdir -p "$W/multi" && ln -s "$BERTH" "$W/multi/berth-runtime"
"$HERE/scripts/mkimage" --rootfs "$W/rootfs" >/dev/null
mkdir -p "$W/bundle" "$W/ro"
touch "$W/ro/berth-runtime"
(cd "$W/bundle" && runc spec)
python3 - "$W/bundle/config.json" "$W/rootfs" <<'PY'
import json, sys
path, rootfs = sys.argv[1], sys.argv[2]
c = json.load(open(path))
c["root"]["path"] = rootfs
c["process"]["terminal"] = False
c["process"]["args"] = ["true"]
c["hostname"] = "bench"
c["linux"].pop("resources", None)
json.dump(c, open(path, "w"))
PY

# The part that runs in the private mount namespace (its mounts vanish with it).
cat >"$W/inner.sh" <<'SH'
set -eu
W=$1 B=$1/bundle RUNS=$2 BERTH=$3
mount --make-rprivate /
mount -t cgroup2 none /sys/fs/cgroup
mount --bind "$BERTH" "$W/ro/berth-runtime"
mount -o remount,bind,ro "$W/ro/berth-runtime"
hyperfine -N --warmup 5 --runs "$RUNS" --export-json "$W/results.json" \
	-n berth "$W/berth-runtime --root $W/berth-state run --bundle $B bench" \
	-n berth-multi "$W/multi/berth-runtime --root $W/berth-state run --bundle $B bench" \
	-n berth-ro "$W/ro/berth-runtime --root $W/berth-state run --bundle $B bench" \
	-n crun "crun --cgroup-manager=disabled --root $W/crun-state run --bundle $B bench" \
	-n runc "runc --root $W/runc-state run --bundle $B bench" \
	-n floor "unshare --pid --mount --uts --ipc --net --fork true"
echo
echo "berth per-phase timings (us, one run; BERTH_RUNTIME_TIMINGS=1):"
BERTH_RUNTIME_TIMINGS=1 "$W/berth-runtime" --root "$W/berth-state" run --bundle "$B" bench 2>&1 |
	sed -n 's/.*phase=\([^ ]*\) us=\([0-9]*\) pid=\([0-9]*\).*/  \1 \2 (pid \3)/p'
SH
unshare -m sh "$W/inner.sh" "$W" "$RUNS" "$BERTH" >"$W/out.txt" 2>&1 || { cat "$W/out.txt"; exit 1; }
grep -E "^Benchmark|Time \(mean" "$W/out.txt"

python3 - "$W/results.json" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
m = {k: v["mean"] * 1000 for k, v in r.items()}
med = {k: v["median"] * 1000 for k, v in r.items()}
print()
print("note: all run in one private mount namespace with a cgroup2 mount at /sys/fs/cgroup;")
print("      crun with --cgroup-manager=disabled (it refuses this host's hybrid layout)")
notes = {"berth": "(berth-runtime -> berth-shim; re-exec on a detached read-only mount)",
         "berth-multi": "(berth-runtime -> berth: ~50 libraries, then the same re-exec)",
         "berth-ro": "(berth binary on a read-only mount: no re-exec)"}
for k in ("berth", "berth-multi", "berth-ro", "crun", "runc", "floor"):
    print("%-10s %8.2f ms  median %8.2f ms  %s" % (k, m[k], med[k], notes.get(k, "")))
print("median ratios: berth/crun %.2f, berth/floor %.2f" % (med["berth"] / med["crun"], med["berth"] / med["floor"]))
print("berth/crun  = %.2f   (target <= 0.8)" % (m["berth"] / m["crun"]))
print("berth/floor = %.2f   (target <= 1.5)" % (m["berth"] / m["floor"]))
print("berth/runc  = %.2f" % (m["berth"] / m["runc"]))
print("berth-ro/crun = %.2f, berth-ro/floor = %.2f" % (m["berth-ro"] / m["crun"], m["berth-ro"] / m["floor"]))
# CPU time (user + system of the whole process tree) is steadier than wall time on a shared machine
c = {k: (v["user"] + v["system"]) * 1000 for k, v in r.items()}
print("cpu ms: " + ", ".join("%s %.1f" % (k, c[k]) for k in ("berth", "berth-multi", "berth-ro", "crun", "runc", "floor")))
print("cpu ratios: berth/crun %.2f, berth/floor %.2f, berth-ro/crun %.2f, berth-ro/floor %.2f" % (
    c["berth"] / c["crun"], c["berth"] / c["floor"], c["berth-ro"] / c["crun"], c["berth-ro"] / c["floor"]))
PY
echo
sed -n '/per-phase/,$p' "$W/out.txt"
