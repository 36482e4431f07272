#!/bin/sh
# bench/stack.sh - `berth apply --wait` of a 20-service compose stack on a
# 3-node berth cluster vs `docker stack deploy` of the same file on a 3-node
# Docker Swarm, measured side by side in one run (issue 16; goal <= 0.25x
# Swarm's time to steady state), then the same requests (GET / and the
# cache behind web, by service name) through both routing meshes.
# Hosts are network namespaces (bench/cluster_bench.py's plumbing, through
# bench/stack_bench.py).
#
# Env: BERTH (binary), SERVICES (20), SWARM (1; 0 skips the peer), SETTLE (5 s).
# Everything created carries the run's PREFIX or lives in its temp dir; it is
# removed at the end and again by the trap when interrupted.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
BERTH=$(readlink -f "${BERTH:-$HERE/../build/src/berth}")
PREFIX=bst$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')
DIR=$(mktemp -d /tmp/berth-bench-stack-XXXXXX)
PY=""
. "$HERE/cluster-sweep.sh"
trap sweep EXIT
trap 'exit 130' INT TERM HUP

set -- --prefix "$PREFIX" --dir "$DIR" --berth "$BERTH" --services "${SERVICES:-20}" --settle "${SETTLE:-5}"
[ "${SWARM:-1}" = 1 ] || set -- "$@" --no-swarm
/usr/bin/python3 "$HERE/stack_bench.py" "$@" &
PY=$!
rc=0
wait "$PY" || rc=$?
PY=""
exit $rc
