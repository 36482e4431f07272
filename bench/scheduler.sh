#!/bin/sh
# bench/scheduler.sh - the scheduler library (`berth bench-scheduler`) on
# generated clusters of 1,000 and 10,000 nodes, 100,000 tasks each (RunTask-
# sized requests of 1-10 tasks mixing ECS strategies/constraints and
# Kubernetes-style rules; tasks stop oldest first to hold ~8 per node).
# Then the durable path (`--store`): the server's RunTask handler binding every
# placement in the store (SQLite file on disk; etcd when /usr/bin/etcd exists,
# a private one on a free loopback port), from 8 and 32 concurrent callers.
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
# Durable goal (issue 13): >= 20,000 placements/s with SQLite at 10k nodes.
# The durable runs also print placements per CPU-second of the whole process
# (callers, store writer and checkpointer; wall-clock rates on a loaded VM
# measure the other tenants) and the bytes the process wrote to the disk per
# placement (/proc/self/io).
#
# Each durable line prints the ratio to the 20,000/s goal, the process's
# CPU-seconds and placements per CPU-second, and the machine's load
# (uptime) when it ran.
#
# A/B: BASE=/path/to/an/older/berth runs every SQLite durable case with that
# binary first and then with BERTH, back to back (the machine is shared:
# compare interleaved runs, and per CPU-second), and prints after/before.
#
# Env: BERTH (binary, default build/src/berth), BASE (binary to compare, off),
# TASKS (default 100000), SEED, DURABLE_TASKS (default 20000), ETCD_TASKS
# (default 2000), STORE_DIR (default /var/tmp: a real disk), COMPUTE=0 skips
# the compute-only runs, ETCD=0 the etcd ones.
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

DURABLE_TASKS=${DURABLE_TASKS:-20000}
ETCD_TASKS=${ETCD_TASKS:-2000} # etcd binds one RunTask per round trip: keep the run short
STORE_DIR=${STORE_DIR:-/var/tmp}
GOAL_DURABLE=20000

COMPUTE=${COMPUTE:-1}
ETCD=${ETCD:-1}
BASE=${BASE:-}
load() { uptime | sed 's/.*load average: *//'; }

if [ "$COMPUTE" != 0 ]; then
	for nodes in 1000 10000; do
		echo "== $nodes nodes, $TASKS tasks"
		run "$nodes" "default sample" --sample 0
		run "$nodes" "kube adaptive sample" --sample kube
	done
fi

tmp=$(mktemp -d "$STORE_DIR/berth-bench-sched.XXXXXX")
etcd_pid=
cleanup() {
	# (set -e: the killed etcd's status must not end the cleanup before the rm)
	if [ -n "$etcd_pid" ]; then
		kill "$etcd_pid" 2>/dev/null || true
		wait "$etcd_pid" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

# durable NODES STORE CLIENTS [BINARY [LABEL]]: one run; sets pps and ppc (placements per CPU-second)
durable() {
	nodes=$1
	store=$2
	clients=$3
	bin=${4:-$BERTH}
	label=${5:-}
	l=$(load)
	out=$("$bin" bench-scheduler --store "$store" --nodes "$nodes" --tasks "$DURABLE_TASKS" --seed "$SEED" \
		--clients "$clients")
	echo "$out"
	pps=$(field "$out" placements_per_s)
	p99=$(field "$out" p99_us)
	ppc=$(field "$out" placements_per_cpu_s)
	cpu=$(field "$out" cpu_seconds)
	bpp=$(field "$out" written_bytes_per_placement)
	awk -v n="$nodes" -v s="${store%%:*}" -v k="$clients" -v pps="$pps" -v p99="$p99" -v g="$GOAL_DURABLE" \
		-v kg="$KUBE_GATE" -v c="$NOMAD_C1M" -v ppc="$ppc" -v bpp="$bpp" -v cpu="$cpu" -v l="$l" \
		-v lab="$label" 'BEGIN {
		printf "%s%6d nodes, durable %-6s %2d clients: %7.0f placements/s  %5.2fx goal 20k  %5.1fx kube gate  %5.2fx Nomad C1M  p99 %.0f ms/RunTask  %.2f CPU-s  %.0f placements per CPU-second",
			lab, n, s, k, pps, pps / g, pps / kg, pps / c, p99 / 1000, cpu, ppc
		if (s == "sqlite") printf "  %.0f B written per placement", bpp  # (etcd writes in its own process)
		printf "  (load %s)\n", l
	}'
}

for nodes in 1000 10000; do
	for clients in 8 32; do
		if [ -n "$BASE" ]; then
			durable "$nodes" "sqlite:$tmp/base-$nodes-$clients.db" "$clients" "$BASE" "before: "
			bpps=$pps bppc=$ppc
			durable "$nodes" "sqlite:$tmp/store-$nodes-$clients.db" "$clients" "$BERTH" "after:  "
			awk -v a="$pps" -v b="$bpps" -v ac="$ppc" -v bc="$bppc" 'BEGIN {
				printf "        after/before: %.2fx placements/s, %.2fx placements per CPU-second\n", a / b, ac / bc
			}'
		else
			durable "$nodes" "sqlite:$tmp/store-$nodes-$clients.db" "$clients"
		fi
	done
done

if [ "$ETCD" != 0 ] && [ -x /usr/bin/etcd ]; then
	port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	peer=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	/usr/bin/etcd --data-dir "$tmp/etcd" --listen-client-urls "http://127.0.0.1:$port" \
		--advertise-client-urls "http://127.0.0.1:$port" --listen-peer-urls "http://127.0.0.1:$peer" \
		--initial-advertise-peer-urls "http://127.0.0.1:$peer" \
		--initial-cluster "default=http://127.0.0.1:$peer" >"$tmp/etcd.log" 2>&1 &
	etcd_pid=$!
	for _ in $(seq 100); do
		curl -sf "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break
		sleep 0.1
	done
	for nodes in 1000 10000; do
		DURABLE_TASKS=$ETCD_TASKS durable "$nodes" "etcd://127.0.0.1:$port" 8
	done
elif [ "$ETCD" != 0 ]; then
	echo "(etcd not installed: the etcd durable run is skipped; apt-get install etcd-server)"
fi
