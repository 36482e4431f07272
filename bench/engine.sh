#!/bin/sh
# bench/engine.sh - berth daemon vs dockerd, side by side on this machine.
# Each daemon gets its own root, exec root and socket, and the same generated
# busybox image (docker load). Prints times, ratios and memory.
#   run --rm --network none busybox true: berth CLI->berth, docker CLI->berth, docker CLI->dockerd
#   ps -a with 100 containers; 50 concurrent `run -d`; idle RSS; RSS per running container
# Usage: sh bench/engine.sh [BERTH_BIN]   (RUNS=20 by default)
set -eu
BIN=$(realpath "${1:-build/src/berth}")
RUNS=${RUNS:-20}
DOCKER=/usr/bin/docker
W=$(mktemp -d /tmp/berth-bench-engine-XXXXXX)
BPID= ; DPID=
cleanup() {
	for h in "unix://$W/b/run/berth.sock" "unix://$W/d/docker.sock"; do
		ids=$(DOCKER_HOST=$h $DOCKER ps -aq 2>/dev/null || true)
		[ -n "$ids" ] && DOCKER_HOST=$h $DOCKER rm -f $ids >/dev/null 2>&1 || true
	done
	[ -n "$BPID" ] && kill "$BPID" 2>/dev/null || true
	[ -n "$DPID" ] && kill "$DPID" 2>/dev/null || true
	sleep 1
	grep -o " $W[^ ]*" /proc/self/mountinfo | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
	rm -rf "$W"
}
trap cleanup EXIT INT TERM

python3 scripts/mkimage --docker-archive "$W/busybox.tar" >/dev/null

"$BIN" daemon --root "$W/b/root" --exec-root "$W/b/run" --pidfile "$W/b.pid" >"$W/b.log" 2>&1 &
BPID=$!
dockerd --data-root "$W/d/data" --exec-root "$W/d/exec" -H "unix://$W/d/docker.sock" --pidfile "$W/d.pid" \
	--bridge=none --iptables=false --ip-masq=false >"$W/d.log" 2>&1 &
DPID=$!
B="unix://$W/b/run/berth.sock"; D="unix://$W/d/docker.sock"
for h in "$B" "$D"; do
	i=0; until DOCKER_HOST=$h $DOCKER version >/dev/null 2>&1; do i=$((i+1)); [ $i -lt 300 ] || { echo "daemon $h did not start"; exit 1; }; sleep 0.1; done
	DOCKER_HOST=$h $DOCKER load -i "$W/busybox.tar" >/dev/null
done

rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
ms() { python3 -c "import sys; print(round(float(sys.argv[1])*1000, 1))" "$1"; }
mean() { # mean wall time (s) of a command, RUNS times
	hyperfine -N --warmup 2 --runs "$RUNS" --export-json "$W/h.json" "$@" >"$W/h.log" 2>&1 ||
		{ cat "$W/h.log" >&2; exit 1; }
	python3 -c "import json; print(json.load(open('$W/h.json'))['results'][0]['mean'])"
}
ratio() { python3 -c "import sys; print(round(float(sys.argv[1])/float(sys.argv[2]), 3))" "$1" "$2"; }

echo "== idle RSS"
BI=$(rss_kb $BPID); DI=$(rss_kb $DPID)
echo "berth daemon: ${BI} kB   dockerd: ${DI} kB (containerd not counted)"

echo "== run --rm --network none busybox true ($RUNS runs, mean)"
T1=$(mean "$BIN run -H $B --rm --network none busybox true")
T2=$(mean "$DOCKER -H $B run --rm --network none busybox true")
T3=$(mean "$DOCKER -H $D run --rm --network none busybox true")
echo "berth CLI -> berth:   $(ms $T1) ms"
echo "docker CLI -> berth:  $(ms $T2) ms"
echo "docker CLI -> dockerd: $(ms $T3) ms"
echo "ratio berth/docker: $(ratio $T1 $T3)  (docker CLI on both: $(ratio $T2 $T3); target <= 0.1)"

echo "== ps -a with 100 containers"
for h in "$B" "$D"; do
	seq 100 | xargs -P 8 -I{} env DOCKER_HOST=$h $DOCKER create --network none busybox true >/dev/null
done
P1=$(mean "$BIN ps -H $B -a")
P2=$(mean "$DOCKER -H $D ps -a")
echo "berth: $(ms $P1) ms  docker: $(ms $P2) ms  ratio: $(ratio $P1 $P2)"
for h in "$B" "$D"; do DOCKER_HOST=$h $DOCKER rm $(DOCKER_HOST=$h $DOCKER ps -aq) >/dev/null; done

echo "== 50 concurrent run -d"
for h in "$B" "$D"; do
	s=$(date +%s.%N)
	seq 50 | xargs -P 50 -I{} env DOCKER_HOST=$h $DOCKER run -d --network none busybox sleep 600 >/dev/null
	e=$(date +%s.%N)
	echo "$h: $(python3 -c "print(round(($e-$s)*1000))") ms"
done
echo "== RSS per running container (50 running)"
BR=$(rss_kb $BPID)
SH=0; for p in $(pgrep -P 1 -x berth || true); do grep -q "$W/b/run" /proc/$p/cmdline 2>/dev/null && SH=$((SH + $(rss_kb $p))); done
echo "berth: daemon +$(( (BR - BI) / 50 )) kB/container, shims $(( SH / 50 )) kB/container (target <= 1024)"
DR=$(rss_kb $DPID)
echo "dockerd: +$(( (DR - DI) / 50 )) kB/container (containerd-shim not counted)"
