#!/bin/sh
# bench/engine-ops.sh - the engine's runtime operations through the runtime
# interface (src/runtime/ops.h), this build against BASELINE (an older berth:
# the named anchor, its own daemon, measured in the same hyperfine runs):
#   pause+unpause, top, update (each on one running container), run --rm true.
# With the default runtime these are library calls in the daemon; before the
# interface the engine executed `berth-shim runtime ...` for each. RUNTIME=PATH
# runs both daemons on an external runc-compatible runtime instead (the CLI
# implementation: one runtime execution per operation, as before).
# Prints each side's best median over ROUNDS hyperfine rounds (which side runs
# first alternates: on a shared machine the load drifts within a round) and the
# ratio this/baseline.
# Usage: BASELINE=path/to/old/berth sh bench/engine-ops.sh [BERTH_BIN]   (RUNS=10 per round, ROUNDS=4)
set -eu
BIN=$(realpath "${1:-build/src/berth}")
[ -n "${BASELINE:-}" ] || { echo "bench/engine-ops.sh: BASELINE=path/to/an/older/berth is the anchor" >&2; exit 1; }
BASE=$(realpath "$BASELINE")
RUNS=${RUNS:-10}
ROUNDS=${ROUNDS:-4}
command -v hyperfine >/dev/null || { echo "bench/engine-ops.sh: hyperfine is required (scripts/deps.sh)" >&2; exit 1; }
W=$(mktemp -d /tmp/berth-bench-ops-XXXXXX)
. "$(dirname "$0")/lib-ab.sh"
NPID= ; OPID=
cleanup() {
	for h in "$W/n" "$W/o"; do
		[ -S "$h/run/berth.sock" ] && BERTH_HOST="unix://$h/run/berth.sock" "$BIN" rm -f ops >/dev/null 2>&1 || true
	done
	[ -n "$NPID" ] && kill "$NPID" 2>/dev/null || true
	[ -n "$OPID" ] && kill "$OPID" 2>/dev/null || true
	sleep 1
	grep -o " $W[^ ]*" /proc/self/mountinfo | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
	rm -rf "$W"
}
trap cleanup EXIT INT TERM

python3 scripts/mkimage --docker-archive "$W/busybox.tar" >/dev/null
"$BIN" daemon --root "$W/n/root" --exec-root "$W/n/run" --pidfile "$W/n.pid" ${RUNTIME:+--runtime-path "$RUNTIME"} \
	>"$W/n.log" 2>&1 &
NPID=$!
"$BASE" daemon --root "$W/o/root" --exec-root "$W/o/run" --pidfile "$W/o.pid" ${RUNTIME:+--runtime-path "$RUNTIME"} \
	>"$W/o.log" 2>&1 &
OPID=$!
N="unix://$W/n/run/berth.sock"; O="unix://$W/o/run/berth.sock"
for h in $N $O; do
	i=0; until BERTH_HOST=$h "$BIN" ps >/dev/null 2>&1; do i=$((i+1)); [ $i -lt 300 ] || { echo "daemon $h did not start"; exit 1; }; sleep 0.1; done
	BERTH_HOST=$h "$BIN" load -i "$W/busybox.tar" >/dev/null
	BERTH_HOST=$h "$BIN" run -d --name ops --network none busybox sleep 100000 >/dev/null
done

echo "== load: $(cut -d' ' -f1-3 /proc/loadavg)   runtime: ${RUNTIME:-berth (in-process)}   $ROUNDS rounds of $RUNS runs"
printf '%-26s %12s %12s %8s\n' operation "this median" "base median" ratio
bench() { # name, then the command with @B@ (binary) and @H@ (host)
	name=$1; shift
	ab_bench "$name" "$(echo "$*" | sed "s|@B@|$BIN|g; s|@H@|$N|g")" "$(echo "$*" | sed "s|@B@|$BASE|g; s|@H@|$O|g")"
}
bench "pause + unpause" "sh -c 'export BERTH_HOST=@H@; @B@ pause ops >/dev/null && @B@ unpause ops >/dev/null'"
bench "top" "env BERTH_HOST=@H@ @B@ top ops"
bench "update --cpu-shares" "env BERTH_HOST=@H@ @B@ update --cpu-shares 512 ops"
bench "run --rm true" "env BERTH_HOST=@H@ @B@ run --rm --network none busybox true"
echo "(ratio: this build's best median / the baseline's; < 1 is faster)"
