#!/bin/sh
# bench/build.sh - `berth build` vs `docker build` (dockerd's classic builder,
# DOCKER_BUILDKIT=0), side by side on this machine. Both daemons get their own
# roots and the same generated busybox image. The reference build: a
# multi-stage Dockerfile of ~10 steps (RUN, COPY, COPY --from, WORKDIR, ENV,
# ...) with a few MB of context. Measured: cold (--no-cache) and fully cached
# rebuilds, median of RUNS; ratios berth/docker. Also `docker build` against
# berth's socket (docker's CLI sending the context to berth), compared with
# the same against dockerd, and the docker CLI's floor: `docker version`
# against each, and `docker build` against a trivial endpoint that takes the
# context and answers at once (bench/build_floor.py): each daemon's share of a
# cached rebuild is its time minus that floor.
# BASELINE=path/to/an/older/berth adds that binary (its own daemon) to the
# cached rebuild through the docker CLI, measured in the same run.
# Usage: sh bench/build.sh [BERTH_BIN]   (RUNS=5 by default)
set -eu
BIN=$(realpath "${1:-build/src/berth}")
BASE=${BASELINE:+$(realpath "$BASELINE")}
RUNS=${RUNS:-5}
DOCKER=/usr/bin/docker
W=$(mktemp -d /tmp/berth-bench-build-XXXXXX)
BPID= ; DPID= ; FPID= ; OPID=
cleanup() {
	[ -n "$OPID" ] && kill "$OPID" 2>/dev/null || true
	[ -n "$BPID" ] && kill "$BPID" 2>/dev/null || true
	[ -n "$FPID" ] && kill "$FPID" 2>/dev/null || true
	[ -n "$DPID" ] && kill "$DPID" 2>/dev/null || true
	sleep 1
	grep -o " $W[^ ]*" /proc/self/mountinfo | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
	rm -rf "$W"
}
trap cleanup EXIT INT TERM

python3 scripts/mkimage --docker-archive "$W/busybox.tar" >/dev/null

# the reference context: 4 MB of data in 200 files plus a few sources
C="$W/ctx"
mkdir -p "$C/data" "$C/src"
i=0; while [ $i -lt 200 ]; do head -c 20000 /dev/urandom >"$C/data/blob$i"; i=$((i+1)); done
printf 'echo building\n' >"$C/src/build.sh"
printf 'echo app\n' >"$C/src/app.sh"
printf 'data/blob199\n' >"$C/.dockerignore"
cat >"$C/Dockerfile" <<'EOF'
FROM busybox AS build
ENV OUT=/out
WORKDIR /work
COPY src/ ./src/
RUN sh src/build.sh > build.log && mkdir -p $OUT && cp src/app.sh $OUT/ && chmod 755 $OUT/app.sh
COPY data/ /work/data/
RUN cat data/* | md5sum > $OUT/data.md5

FROM busybox
LABEL org.example.bench=build
COPY --from=build /out/ /app/
RUN rm -f /bin/vi && echo "app:x:1000:1000::/app:/bin/sh" >> /etc/passwd
USER app
WORKDIR /app
CMD ["/app/app.sh"]
EOF

"$BIN" daemon --root "$W/b/root" --exec-root "$W/b/run" --pidfile "$W/b.pid" >"$W/b.log" 2>&1 &
BPID=$!
dockerd --data-root "$W/d/data" --exec-root "$W/d/exec" -H "unix://$W/d/docker.sock" --pidfile "$W/d.pid" \
	--bridge=none --iptables=false --ip-masq=false >"$W/d.log" 2>&1 &
DPID=$!
O=
if [ -n "$BASE" ]; then
	"$BASE" daemon --root "$W/o/root" --exec-root "$W/o/run" --pidfile "$W/o.pid" >"$W/o.log" 2>&1 &
	OPID=$!
	O="unix://$W/o/run/berth.sock"
fi
/usr/bin/python3 "$(dirname "$0")/build_floor.py" "$W/floor.sock" >"$W/f.log" 2>&1 &
FPID=$!
B="unix://$W/b/run/berth.sock"; D="unix://$W/d/docker.sock"; F="unix://$W/floor.sock"
for h in "$B" "$D" $O; do
	i=0; until DOCKER_HOST=$h $DOCKER version >/dev/null 2>&1; do i=$((i+1)); [ $i -lt 300 ] || { echo "daemon $h did not start"; exit 1; }; sleep 0.1; done
	DOCKER_HOST=$h $DOCKER load -i "$W/busybox.tar" >/dev/null
done

now_ms() { date +%s%3N; }
# median of RUNS timings of a command (ms)
timeit() {
	n=0; : >"$W/t"
	while [ $n -lt "$RUNS" ]; do
		s=$(now_ms); "$@" >/dev/null 2>"$W/err" || { cat "$W/err"; exit 1; }; e=$(now_ms)
		echo $((e - s)) >>"$W/t"; n=$((n+1))
	done
	sort -n "$W/t" | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'
}
berth_build() { BERTH_EXEC_ROOT="$W/b/run" "$BIN" build -q -t bench "$@" "$C"; }
docker_build() { h=$1; shift; DOCKER_HOST=$h DOCKER_BUILDKIT=0 $DOCKER build -q -t bench "$@" "$C"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }

berth_build >/dev/null; docker_build "$D" >/dev/null
[ -z "$O" ] || docker_build "$O" >/dev/null
bc=$(timeit berth_build --no-cache)
dc=$(timeit docker_build "$D" --no-cache)
bw=$(timeit berth_build)
dw=$(timeit docker_build "$D")
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
b0=$(ticks $BPID)
xw=$(timeit docker_build "$B")
b1=$(ticks $BPID); d0=$(ticks $DPID)
dw2=$(timeit docker_build "$D")
d1=$(ticks $DPID)
cpu_ms() { awk -v a="$1" -v b="$2" -v t="$(getconf CLK_TCK)" -v n="$RUNS" 'BEGIN { printf "%.1f", (b - a) * 1000 / t / n }'; }
bv=$(timeit env DOCKER_HOST="$B" $DOCKER version)
dv=$(timeit env DOCKER_HOST="$D" $DOCKER version)
fw=$(timeit docker_build "$F")
ow=; [ -z "$O" ] || ow=$(timeit docker_build "$O")

echo "reference build: $(grep -c '^[A-Z]' "$C/Dockerfile") instructions, $(du -sh "$C" | cut -f1) context, median of $RUNS runs"
printf '%-38s %10s %10s %8s\n' "" "berth" "docker" "ratio"
printf '%-38s %8sms %8sms %8s\n' "cold build (--no-cache)" "$bc" "$dc" "$(ratio "$bc" "$dc")"
printf '%-38s %8sms %8sms %8s\n' "fully cached rebuild" "$bw" "$dw" "$(ratio "$bw" "$dw")"
printf '%-38s %8sms %8sms %8s\n' "cached, docker CLI -> each daemon" "$xw" "$dw" "$(ratio "$xw" "$dw")"
printf '%-38s %8sms %8sms\n' "docker CLI alone (docker version)" "$bv" "$dv"
printf '%-38s %8sms %8sms %8s\n' "cached, docker CLI, minus its floor" "$((xw - bv))" "$((dw - dv))" "$(ratio "$((xw - bv))" "$((dw - dv))")"
printf '%-38s %8sms\n' "docker build -> a trivial endpoint" "$fw"
[ -z "$O" ] || printf '%-38s %8sms %8sms %8s\n' "cached, docker CLI -> baseline berth" "$ow" "$dw" "$(ratio "$ow" "$dw")"
[ -z "$O" ] || printf '%-38s %8sms %8sms %8s\n' "baseline, minus the CLI's build floor" "$((ow - fw))" "$((dw - fw))" "$(ratio "$((ow - fw))" "$((dw - fw))")"
printf '%-38s %8sms %8sms %8s\n' "cached, minus the CLI's build floor" "$((xw - fw))" "$((dw - fw))" "$(ratio "$((xw - fw))" "$((dw - fw))")"
printf '%-38s %8sms %8sms %8s\n' "daemon CPU per cached docker build" "$(cpu_ms "$b0" "$b1")" "$(cpu_ms "$d0" "$d1")" "$(ratio "$(cpu_ms "$b0" "$b1")" "$(cpu_ms "$d0" "$d1")")"
echo "target: cached rebuild through the docker CLI <= 0.10x dockerd's; the docker CLI's own start,"
echo "context walk (it reads every file twice), tar and send are in both numbers: the CLI alone against a"
echo "trivial endpoint is ${fw} ms, $(ratio "$fw" "$dw")x of dockerd's whole rebuild; the daemon's share is the"
echo "ratio minus that floor, and the daemons' own CPU (dockerd's second timing: $dw2 ms)"
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
