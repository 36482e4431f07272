#!/bin/sh
# bench/services.sh - ECS services on a 3-node berth cluster vs Docker Swarm
# mode on 3 dockerd nodes, measured side by side in one run (issue 14):
#   (a) time from create to steady state of a 60-replica service
#       (`docker service create --replicas 60` vs CreateService);
#   (b) a rolling update of that service (`docker service update --image`
#       vs UpdateService to a new task definition).
# Hosts are network namespaces (bench/cluster_bench.py's plumbing, reused by
# bench/services_bench.py). Prints berth/swarm ratios and the goal (<= 0.25x).
#
# Env: BERTH (binary), REPLICAS (60), SWARM (1; 0 skips the peer), SETTLE (5 s).
# Everything created carries the run's PREFIX or lives in its temp dir; it is
# removed at the end and again by the trap when interrupted.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
BERTH=$(readlink -f "${BERTH:-$HERE/../build/src/berth}")
PREFIX=bsv$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')
DIR=$(mktemp -d /tmp/berth-bench-services-XXXXXX)
PY=""
. "$HERE/cluster-sweep.sh"
trap sweep EXIT
trap 'exit 130' INT TERM HUP

set -- --prefix "$PREFIX" --dir "$DIR" --berth "$BERTH" --replicas "${REPLICAS:-60}" --settle "${SETTLE:-5}"
[ "${SWARM:-1}" = 1 ] || set -- "$@" --no-swarm
/usr/bin/python3 "$HERE/services_bench.py" "$@" &
PY=$!
rc=0
wait "$PY" || rc=$?
PY=""
exit $rc
