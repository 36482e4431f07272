#!/bin/sh
# make run: start the berth daemon in the foreground with its embedded
# defaults (state in /var/lib/berth, socket /run/berth/berth.sock), load a
# generated busybox image, and print commands to try. Ctrl-C stops the daemon;
# containers keep running and the next daemon reattaches to them.
set -eu
BIN=$(realpath "${1:-build/src/berth}")
ROOT=${BERTH_ROOT:-/var/lib/berth}
EXEC_ROOT=${BERTH_EXEC_ROOT:-/run/berth}
SOCK="$EXEC_ROOT/berth.sock"
IMG=$(mktemp -d /tmp/berth-run-XXXXXX)
trap 'rm -rf "$IMG"' EXIT

"$BIN" daemon --root "$ROOT" --exec-root "$EXEC_ROOT" &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$IMG"' EXIT INT TERM
i=0
until [ -S "$SOCK" ] && curl -sf --unix-socket "$SOCK" http://berth/_ping >/dev/null 2>&1; do
	i=$((i + 1))
	[ $i -lt 100 ] || { echo "berth daemon did not start" >&2; exit 1; }
	sleep 0.1
done
python3 scripts/mkimage --docker-archive "$IMG/busybox.tar" >/dev/null
curl -sf --unix-socket "$SOCK" -X POST --data-binary @"$IMG/busybox.tar" \
	-H 'Content-Type: application/x-tar' http://berth/images/load >/dev/null
cat <<MSG

berth daemon running (pid $PID), socket $SOCK, busybox:latest loaded. Try:

  $BIN run --rm busybox echo hi
  $BIN run -d --name web busybox sh -c 'while true; do date; sleep 1; done'
  $BIN logs -f web
  $BIN exec -it web sh
  DOCKER_HOST=unix://$SOCK docker ps
  DOCKER_HOST=unix://$SOCK python3 -c 'import docker; print(docker.from_env().containers.list())'

Ctrl-C stops the daemon (containers keep running).
MSG
wait $PID
