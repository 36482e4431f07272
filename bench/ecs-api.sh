#!/bin/sh
# bench/ecs-api.sh - ECS API request rates with the request-shape check
# (src/server/ecs-shape.c) vs an ANCHOR binary without it (default: /work/main's
# build, the commit before), measured in the same run (bench/ecs_api_bench.py).
# Env: BERTH (binary), ANCHOR (binary), N (requests per operation and round: 300), ROUNDS (2).
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
BERTH=$(readlink -f "${BERTH:-$HERE/../build/src/berth}")
ANCHOR=$(readlink -f "${ANCHOR:-/work/main/build/src/berth}")
uptime
exec /usr/bin/python3 "$HERE/ecs_api_bench.py" --berth "$BERTH" --anchor "$ANCHOR" -n "${N:-300}" --rounds "${ROUNDS:-2}"
