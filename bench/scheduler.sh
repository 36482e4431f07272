#!/bin/sh
# bench/scheduler.sh - the scheduler library (`berth bench-scheduler`) on
# generated clusters of 1,000 and 10,000 nodes, 100,000 tasks each (RunTask-
# sized requests of 1-10 tasks mixing ECS strategies/constraints and
# Kubernetes-style rules; tasks stop oldest first to hold ~8 per node).
# Compute only: the durable bind (SQLite / etcd) belongs to the server's store.
#
# Prints each run's JSON and the ratio of placements/s against the published
# anchors (they ran elsewhere, on other hardware; the ratio is indicative):
#   kube-scheduler's scheduler_perf CI gate: ~680-810 pods/s at 5,000 nodes
#   Nomad's C1M challenge: 3,750 placements/s (5 servers, 1M containers)
# Goals (issue 13): >= 100,000 placements/s at 10k nodes, p99 decision <= 1 ms,
# <= 1 KiB of snapshot per node.
#
# Times are the thread's CPU time (the machine is shared; wall time is printed
# beside it). Each size runs with berth's default sample (100 feasible nodes
# scored per decision) and with kube-scheduler's adaptive percentage.
#
# Env: BERTH (binary, default build/src/berth), TASKS (default 100000), SEED.
set -eu

BERTH=${BERTH:-$(pwd)/build/src/berth}
TASKS=${TASKS:-100000}
SEED=${SEED:-1}
KUBE_GATE=745   # midpoint of the 680-810 pods/s gate
NOMAD_C1M=3750

field() { printf '%s' "$1" | sed -n "s/.*\"$2\": \\([0-9.]*\\).*/\\1/p"; }

run() {
	nodes=$1
	label=$2
	shift 2
	out=$("$BERTH" bench-scheduler --nodes "$nodes" --tasks "$TASKS" --seed "$SEED" "$@")
	echo "$out"
	pps=$(field "$out" placements_per_s)
	p99=$(field "$out" p99_us)
	bpn=$(field "$out" snapshot_bytes_per_node)
	awk -v n="$nodes" -v l="$label" -v pps="$pps" -v p99="$p99" -v bpn="$bpn" \
		-v k="$KUBE_GATE" -v c="$NOMAD_C1M" 'BEGIN {
		printf "%6d nodes, %-22s %9.0f placements/s  %5.1fx goal 100k  %6.0fx kube gate  %5.0fx Nomad C1M  p99 %.0f us/request  %s B/node\n",
			n, l ":", pps, pps / 100000, pps / k, pps / c, p99, bpn
	}'
}

for nodes in 1000 10000; do
	echo "== $nodes nodes, $TASKS tasks"
	run "$nodes" "default sample" --sample 0
	run "$nodes" "kube adaptive sample" --sample kube
done
