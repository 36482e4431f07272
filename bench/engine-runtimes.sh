#!/bin/sh
# bench/engine-runtimes.sh - what a container's runtime choice costs: one daemon
# (this build) with `--add-runtime runc=RUNC`, containers on the built-in runtime
# (`--runtime berth`: the named anchor) and on runc (`--runtime runc`) measured in
# the same hyperfine runs: run --rm true, pause+unpause, top, exec true.
# Prints each side's best median over ROUNDS rounds (which side runs first
# alternates: on a shared machine the load drifts within a round) and the ratio
# runc/berth.
# Usage: sh bench/engine-runtimes.sh [BERTH_BIN]   (RUNC=/usr/sbin/runc, RUNS=10 per round, ROUNDS=4)
set -eu
BIN=$(realpath "${1:-build/src/berth}")
RUNC=${RUNC:-/usr/sbin/runc}
RUNS=${RUNS:-10}
ROUNDS=${ROUNDS:-4}
command -v hyperfine >/dev/null || { echo "bench/engine-runtimes.sh: hyperfine is required (scripts/deps.sh)" >&2; exit 1; }
[ -x "$RUNC" ] || { echo "bench/engine-runtimes.sh: no runc at $RUNC (apt-get install runc)" >&2; exit 1; }
W=$(mktemp -d /tmp/berth-bench-rt-XXXXXX)
. "$(dirname "$0")/lib-ab.sh"
PID=
H="unix://$W/run/berth.sock"
cleanup() {
	[ -S "$W/run/berth.sock" ] && BERTH_HOST=$H "$BIN" rm -f on-berth on-runc >/dev/null 2>&1 || true
	[ -n "$PID" ] && kill "$PID" 2>/dev/null || true
	sleep 1
	grep -o " $W[^ ]*" /proc/self/mountinfo | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
	rm -rf "$W"
}
trap cleanup EXIT INT TERM

python3 scripts/mkimage --docker-archive "$W/busybox.tar" >/dev/null
"$BIN" daemon --root "$W/root" --exec-root "$W/run" --pidfile "$W/d.pid" --bridge none \
	--add-runtime "runc=$RUNC" >"$W/d.log" 2>&1 &
PID=$!
i=0; until BERTH_HOST=$H "$BIN" ps >/dev/null 2>&1; do i=$((i+1)); [ $i -lt 300 ] || { echo "daemon did not start"; exit 1; }; sleep 0.1; done
BERTH_HOST=$H "$BIN" load -i "$W/busybox.tar" >/dev/null
for rt in berth runc; do
	BERTH_HOST=$H "$BIN" run -d --runtime $rt --name on-$rt --network none busybox sleep 100000 >/dev/null
done

echo "== load: $(cut -d' ' -f1-3 /proc/loadavg)   runc: $RUNC   $ROUNDS rounds of $RUNS runs"
printf '%-26s %12s %12s %8s\n' operation "runc median" "berth median" ratio
bench() { # name, then the command with @R@ (the runtime's name)
	name=$1; shift
	ab_bench "$name" "$(echo "$*" | sed "s|@R@|runc|g")" "$(echo "$*" | sed "s|@R@|berth|g")"
}
bench "run --rm true" "env BERTH_HOST=$H $BIN run --rm --runtime @R@ --network none busybox true"
bench "pause + unpause" "sh -c 'export BERTH_HOST=$H; $BIN pause on-@R@ >/dev/null && $BIN unpause on-@R@ >/dev/null'"
bench "top" "env BERTH_HOST=$H $BIN top on-@R@"
bench "exec true" "env BERTH_HOST=$H $BIN exec on-@R@ true"
echo "(ratio: runc's best median / the built-in runtime's; > 1 is slower on runc)"
