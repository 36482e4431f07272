#!/bin/sh
# bench/lb.sh - request latency through a berth load balancer (HAProxy on the
# node) against the same requests sent straight to the task (the anchor), on a
# 2-host cluster in network namespaces (bench/lb_bench.py): one loop alternates
# the two paths, so both see the same noise; prints p50/p90/p99 of each and of
# the paired overhead. Goal (issue 14): p99 overhead <= 1 ms.
# Env: BERTH (binary), REQUESTS (pairs, 2000).
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
export BERTH_BIN=$(readlink -f "${BERTH:-$HERE/../build/src/berth}")
exec /usr/bin/python3 "$HERE/lb_bench.py"
