#!/bin/sh
# bench/engine.sh - berth daemon vs dockerd, side by side on this machine.
# Each daemon gets its own root, exec root and socket, and the same generated
# busybox image (docker load). Prints times, ratios and memory.
#   process start: `berth version` and `berth ps` (empty daemon) against /bin/true
#   run --rm --network none busybox true: berth CLI->berth, docker CLI->berth, docker CLI->dockerd,
#   and docker CLI->bench/docker_floor.py (canned instant replies: the docker CLI's own floor)
#   ps -a with 100 containers; 50 concurrent `run -d`; idle RSS; RSS and PSS
#   (/proc/PID/smaps_rollup) per shim with 10 and with 50 containers running
# Times are hyperfine means with the median next to them (this machine is shared
# and noisy: compare medians of repeated runs).
# BASELINE=path/to/an/older/berth adds that binary (its own daemon) to the
# process-start and run measurements, in the same hyperfine runs: before/after.
# Usage: sh bench/engine.sh [BERTH_BIN]   (RUNS=20 by default; RUNTIME=PATH: berth daemon --runtime-path)
set -eu
BIN=$(realpath "${1:-build/src/berth}")
BASE=${BASELINE:+$(realpath "$BASELINE")}
RUNS=${RUNS:-20}
DOCKER=/usr/bin/docker
W=$(mktemp -d /tmp/berth-bench-engine-XXXXXX)
BPID= ; DPID= ; OPID= ; FPID=
cleanup() {
	[ -n "$FPID" ] && kill "$FPID" 2>/dev/null || true
	for h in "unix://$W/b/run/berth.sock" "unix://$W/d/docker.sock" "unix://$W/o/run/berth.sock"; do
		ids=$(DOCKER_HOST=$h $DOCKER ps -aq 2>/dev/null || true)
		[ -n "$ids" ] && DOCKER_HOST=$h $DOCKER rm -f $ids >/dev/null 2>&1 || true
	done
	[ -n "$BPID" ] && kill "$BPID" 2>/dev/null || true
	[ -n "$DPID" ] && kill "$DPID" 2>/dev/null || true
	[ -n "$OPID" ] && kill "$OPID" 2>/dev/null || true
	sleep 1
	grep -o " $W[^ ]*" /proc/self/mountinfo | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
	rm -rf "$W"
}
trap cleanup EXIT INT TERM

python3 scripts/mkimage --docker-archive "$W/busybox.tar" >/dev/null

"$BIN" daemon --root "$W/b/root" --exec-root "$W/b/run" --pidfile "$W/b.pid" ${RUNTIME:+--runtime-path "$RUNTIME"} \
	>"$W/b.log" 2>&1 &
BPID=$!
dockerd --data-root "$W/d/data" --exec-root "$W/d/exec" -H "unix://$W/d/docker.sock" --pidfile "$W/d.pid" \
	--bridge=none --iptables=false --ip-masq=false >"$W/d.log" 2>&1 &
DPID=$!
/usr/bin/python3 "$(dirname "$0")/docker_floor.py" "$W/floor.sock" &
FPID=$!
B="unix://$W/b/run/berth.sock"; D="unix://$W/d/docker.sock"; O="unix://$W/o/run/berth.sock"; F="unix://$W/floor.sock"
HOSTS="$B $D"
if [ -n "$BASE" ]; then
	"$BASE" daemon --root "$W/o/root" --exec-root "$W/o/run" --pidfile "$W/o.pid" >"$W/o.log" 2>&1 &
	OPID=$!
	HOSTS="$HOSTS $O"
fi
for h in $HOSTS; do
	i=0; until DOCKER_HOST=$h $DOCKER version >/dev/null 2>&1; do i=$((i+1)); [ $i -lt 300 ] || { echo "daemon $h did not start"; exit 1; }; sleep 0.1; done
done
sleep 4 # idle: the daemon gives back what its start mapped and freed 3 s after it (common/memtrim.h)
START_RSS="berth daemon: $(awk '/^VmRSS/ {print $2}' /proc/$BPID/status) kB   dockerd: $(awk '/^VmRSS/ {print $2}' /proc/$DPID/status) kB${OPID:+   baseline: $(awk '/^VmRSS/ {print $2}' /proc/$OPID/status) kB}"
for h in $HOSTS; do
	DOCKER_HOST=$h $DOCKER load -i "$W/busybox.tar" >/dev/null
done

rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
pss_kb() { awk '/^Pss:/ {print $2}' "/proc/$1/smaps_rollup" 2>/dev/null || echo 0; }
shims() { # pids of our daemon's shims: "... shim $W/b/run/c/ID" (berth-shim, or `berth shim`)
	for c in /proc/[0-9]*/cmdline; do
		tr '\0' ' ' 2>/dev/null <"$c" | grep -q " shim $W/b/run/c/" || continue
		p=${c#/proc/}; echo "${p%/cmdline}"
	done
}
shim_mem() { # "N shims: RSS x kB, PSS y kB per shim"
	n=0; rss=0; pss=0
	for p in $(shims); do n=$((n + 1)); rss=$((rss + $(rss_kb $p))); pss=$((pss + $(pss_kb $p))); done
	[ $n -gt 0 ] || { echo "no shims found"; return; }
	echo "$n shims: RSS $((rss / n)) kB, PSS $((pss / n)) kB per shim (target <= 1024)"
}
ms() { python3 -c "import sys; print(round(float(sys.argv[1])*1000, 1))" "$1"; }
mean() { # mean wall time (s) of a command, RUNS times; its median goes to $W/median
	hyperfine -N --warmup 2 --runs "$RUNS" --export-json "$W/h.json" "$@" >"$W/h.log" 2>&1 ||
		{ cat "$W/h.log" >&2; exit 1; }
	python3 -c "import json; r = json.load(open('$W/h.json'))['results'][0]; print(r['median'], file=open('$W/median', 'a')); print(r['mean'])"
}
med() { sed -n "${1}p" "$W/median"; }
ratio() { python3 -c "import sys; print(round(float(sys.argv[1])/float(sys.argv[2]), 3))" "$1" "$2"; }

echo "== load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== idle RSS 4 s after start (target <= 10240 kB; containerd not counted)"
echo "$START_RSS"
echo "== RSS right after docker load (libarchive, libcrypto mapped from then on)"
BI=$(rss_kb $BPID); DI=$(rss_kb $DPID)
echo "berth daemon: ${BI} kB   dockerd: ${DI} kB${OPID:+   baseline: $(rss_kb $OPID) kB}"
sleep 4 # the daemon gives memory back 3 s after the last bulk request (common/memtrim.h)
echo "== idle RSS 4 s after docker load (target <= 10240 kB)"
BI=$(rss_kb $BPID); DI=$(rss_kb $DPID)
echo "berth daemon: ${BI} kB (PSS $(pss_kb $BPID) kB)   dockerd: ${DI} kB${OPID:+   baseline: $(rss_kb $OPID) kB}"

# user+system CPU ms of one run (steadier than wall time on a loaded machine)
cpu_ms() { python3 -c "import json; r = json.load(open('$W/h.json'))['results'][0]; print(round((r['user'] + r['system']) * 1000, 2))"; }
echo "== process start ($RUNS runs; the mean, CPU in brackets; target <= 5 ms on a quiet machine)"
V0=$(mean /bin/true); C0=$(cpu_ms)
V1=$(mean "$BIN version"); C1=$(cpu_ms)
V2=$(mean "$BIN ps -H $B"); C2=$(cpu_ms)
echo "/bin/true (floor):    $(ms $V0) ms  [$C0]"
echo "berth version:        $(ms $V1) ms  [$C1]  ($(ldd "$BIN" | wc -l) libraries at start)"
echo "berth ps (empty):     $(ms $V2) ms  [$C2]"
if [ -n "$BASE" ]; then
	V3=$(mean "$BASE version"); C3=$(cpu_ms)
	V4=$(mean "$BASE ps -H $O"); C4=$(cpu_ms)
	echo "baseline version:     $(ms $V3) ms  [$C3]  ($(ldd "$BASE" | wc -l) libraries at start)"
	echo "baseline ps (empty):  $(ms $V4) ms  [$C4]"
fi
: >"$W/median"

echo "== run --rm --network none busybox true ($RUNS runs, mean)"
# daemon process CPU (user+system, its own threads: neither containerd nor berth's shims) per run
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
TCK=$(getconf CLK_TCK)
per_run_ms() { python3 -c "import sys; print(round((int(sys.argv[2]) - int(sys.argv[1])) * 1000 / $TCK / ($RUNS + 2), 1))" "$1" "$2"; }
T1=$(mean "$BIN run -H $B --rm --network none busybox true")
b0=$(ticks $BPID)
T2=$(mean "$DOCKER -H $B run --rm --network none busybox true")
b1=$(ticks $BPID); d0=$(ticks $DPID)
T3=$(mean "$DOCKER -H $D run --rm --network none busybox true")
d1=$(ticks $DPID)
echo "berth CLI -> berth:   $(ms $T1) ms  (median $(ms $(med 1)))"
echo "docker CLI -> berth:  $(ms $T2) ms  (median $(ms $(med 2)))"
echo "docker CLI -> dockerd: $(ms $T3) ms  (median $(ms $(med 3)))"
if [ -n "$BASE" ]; then
	T4=$(mean "$BASE run -H $O --rm --network none busybox true")
	T5=$(mean "$DOCKER -H $O run --rm --network none busybox true")
	echo "baseline berth CLI -> baseline:  $(ms $T4) ms  (median $(ms $(med 4)))"
	echo "docker CLI -> baseline:          $(ms $T5) ms  (median $(ms $(med 5)))"
	echo "baseline ratios: berth CLI $(ratio $T4 $T3), docker CLI $(ratio $T5 $T3)"
fi
# the docker CLI's own floor against each daemon (its start and a version request); medians
# (a floor measured in a noisy second skews a difference more than a ratio)
mean "$DOCKER -H $B version" >/dev/null; F2=$(tail -1 "$W/median")
mean "$DOCKER -H $D version" >/dev/null; F3=$(tail -1 "$W/median")
echo "ratio berth/docker: $(ratio $T1 $T3)  (target <= 0.05; docker CLI on both: $(ratio $T2 $T3), target <= 0.1; medians: $(ratio $(med 1) $(med 3)), $(ratio $(med 2) $(med 3)))"
echo "docker CLI alone (docker version, median): -> berth $(ms $F2) ms, -> dockerd $(ms $F3) ms"
share() { python3 -c "import sys; a, fa, b, fb = map(float, sys.argv[1:]); print(round((a - fa) / (b - fb), 3) if b > fb and a > fa else 'n/a (floor above the run: noise)')" "$@"; }
echo "daemon's share, docker CLI on both (medians, each minus its CLI floor): $(ms $(python3 -c "print($(med 2) - $F2)")) ms vs $(ms $(python3 -c "print($(med 3) - $F3)")) ms, ratio $(share $(med 2) $F2 $(med 3) $F3)"
echo "daemon CPU per docker run: berth $(per_run_ms $b0 $b1) ms (shims not counted), dockerd $(per_run_ms $d0 $d1) ms (containerd not counted)"
# The docker CLI's own floor for this run: the same five requests answered at once from canned
# replies (bench/docker_floor.py). Measured interleaved with both daemons (floor, berth, dockerd, one
# each in turn), so that load drifting during the bench moves all three alike; medians.
python3 - "$DOCKER" "$F" "$B" "$D" "$RUNS" <<'PY'
import statistics, subprocess, sys, time
docker, hosts, runs = sys.argv[1], sys.argv[2:5], int(sys.argv[5])
t = {h: [] for h in hosts}
for i in range(runs + 1):
    for h in hosts:
        s = time.perf_counter()
        subprocess.run([docker, "-H", h, "run", "--rm", "--network", "none", "busybox", "true"], check=True)
        if i:  # the first round warms up
            t[h].append(time.perf_counter() - s)
f, b, d = (1000 * statistics.median(t[h]) for h in hosts)
print(f"interleaved docker CLI run --rm ({runs} rounds, medians): -> floor {f:.1f} ms, -> berth {b:.1f} ms, -> dockerd {d:.1f} ms")
print(f"  berth/dockerd {b / d:.3f} (target <= 0.1); the CLI's floor alone {f / d:.3f}x of dockerd's run, "
      f"leaving the daemon {max(0.0, 0.1 * d - f):.1f} ms of the goal; daemon's share above the floor "
      f"{b - f:.1f} vs {d - f:.1f} ms: {(b - f) / (d - f):.3f}")
PY
[ -z "$BASE" ] || for h in "$O"; do DOCKER_HOST=$h $DOCKER rm -f $(DOCKER_HOST=$h $DOCKER ps -aq) >/dev/null 2>&1 || true; kill "$OPID"; OPID=; done

echo "== ps -a with 100 containers"
for h in "$B" "$D"; do
	seq 100 | xargs -P 8 -I{} env DOCKER_HOST=$h $DOCKER create --network none busybox true >/dev/null
done
: >"$W/median"
P1=$(mean "$BIN ps -H $B -a")
P2=$(mean "$DOCKER -H $D ps -a")
echo "berth: $(ms $P1) ms  docker: $(ms $P2) ms  ratio: $(ratio $P1 $P2)"
for h in "$B" "$D"; do DOCKER_HOST=$h $DOCKER rm $(DOCKER_HOST=$h $DOCKER ps -aq) >/dev/null; done

echo "== memory per shim, 10 containers running"
B0=$(rss_kb $BPID)
seq 10 | xargs -P 10 -I{} env DOCKER_HOST=$B $DOCKER run -d --network none busybox sleep 600 >/dev/null
sleep 1
echo "berth: $(shim_mem); daemon +$(( ($(rss_kb $BPID) - B0) / 10 )) kB/container"
DOCKER_HOST=$B $DOCKER rm -f $(DOCKER_HOST=$B $DOCKER ps -aq) >/dev/null
BI=$(rss_kb $BPID)

echo "== 50 concurrent run -d"
for h in "$B" "$D"; do
	s=$(date +%s.%N)
	seq 50 | xargs -P 50 -I{} env DOCKER_HOST=$h $DOCKER run -d --network none busybox sleep 600 >/dev/null
	e=$(date +%s.%N)
	echo "$h: $(python3 -c "print(round(($e-$s)*1000))") ms"
done
echo "== memory per running container (50 running)"
BR=$(rss_kb $BPID)
echo "berth: daemon +$(( (BR - BI) / 50 )) kB/container; $(shim_mem)"
DR=$(rss_kb $DPID)
echo "dockerd: +$(( (DR - DI) / 50 )) kB/container (containerd-shim not counted)"
