#!/bin/sh
# bench/cluster.sh - a 3-node cluster on this machine, berth vs its peer Docker
# Swarm mode (Debian's dockerd), measured side by side in one run (issue 12 §8).
# Hosts are network namespaces on a bridge inside a VPC namespace of the
# bench's own (192.168.77.0/24, never the machine's interfaces):
#   1. Swarm: 3 dockerd (own roots, sockets, pidfiles, --bridge none, cgroup
#      parent PREFIX-sN), `swarm init` + 2 `join`; busybox loaded on each; time
#      from `docker service create --replicas 30 busybox sleep 3600` to 30
#      tasks running (the manager's /tasks polled every 0.1 s). With --bridge
#      none a task without networks gets only loopback, like networkMode none.
#   2. berth: server in the VPC namespace, 3 agents (--pull-behavior
#      prefer-cached, like swarm's DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1);
#      time from the first of 3 RunTask(count=10, spread by instanceId) to 30
#      RUNNING (boto3 DescribeTasks every 0.1 s), networkMode none; awsvpc (and
#      with BRIDGE=1 bridge) reported separately.
#   3. one task RUNNING after RunTask returns on a warm node (median of 10,
#      DescribeTasks every 10 ms); idle VmRSS of the agents, the server and
#      dockerd (+ its containerd) once each cluster has settled.
#   4. the server's CPU over 30 s under N simulated nodes (bench/cluster_bench.py:
#      tests/integration/berth_agent_client.py over kept-alive sessions, one
#      node certificate each) heartbeating at the server's interval, first
#      heartbeats only, then heartbeats + one parked tasks long poll per node
#      (what a real agent holds).
# Prints a table with berth/swarm ratios and the goals.
#
# Env: BERTH (binary), TASKS (30), SIM_NODES (1000; 0 skips), SIM_SECONDS (30),
#      SWARM (1; 0 skips the peer), BRIDGE (0), TASKS_RUN (1; 0: berth RSS and
#      simulated nodes only), SETTLE (10 s before idle RSS),
#      BENCH_KEEP_LOGS (a directory: the agent and server logs are copied there),
#      BERTH_AB (another berth binary, e.g. the previous commit's: each simulated-node
#      round runs on both servers in turn, on the same root and port, A B then B A,
#      and the table prints their ratio; nothing else uses it).
# Everything created carries the run's PREFIX or lives in its temp dir; it is
# removed at the end and again by the trap when interrupted.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
BERTH=$(readlink -f "${BERTH:-$HERE/../build/src/berth}")
PREFIX=bcb$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')
DIR=$(mktemp -d /tmp/berth-bench-cluster-XXXXXX)
PY=""

. "$HERE/cluster-sweep.sh"
trap sweep EXIT
trap 'exit 130' INT TERM HUP

set -- --prefix "$PREFIX" --dir "$DIR" --berth "$BERTH" --tasks "${TASKS:-30}" \
	--sim-nodes "${SIM_NODES:-1000}" --sim-seconds "${SIM_SECONDS:-30}" --settle "${SETTLE:-10}"
[ "${SWARM:-1}" = 1 ] || set -- "$@" --no-swarm
[ "${BRIDGE:-0}" = 0 ] || set -- "$@" --bridge
[ "${TASKS_RUN:-1}" = 1 ] || set -- "$@" --no-tasks
[ -z "${BERTH_AB:-}" ] || set -- "$@" --berth-ab "$(readlink -f "$BERTH_AB")"
/usr/bin/python3 "$HERE/cluster_bench.py" "$@" &
PY=$!
rc=0
wait "$PY" || rc=$?
PY=""
exit $rc
