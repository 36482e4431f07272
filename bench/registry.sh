#!/bin/sh
# bench/registry.sh - berth registry vs Debian's docker-registry (CNCF Distribution 2.8)
# on the same machine and the same data:
#   (a) skopeo push then pull of a generated ~200 MB multi-layer image
#   (b) manifest GET (wrk) and blob HEAD (ab -k: wrk cannot do HEAD) at 64 and 256
#       connections, keep-alive (req/s, p99)
#   (c) server peak RSS (VmHWM)
# Prints each number and the berth/Distribution ratio (throughput: higher is
# better; latency, time and memory: lower is better).
#
# Env: BERTH_BIN (default build/src/berth), BENCH_SIZE (bytes, default 200000000),
#      BENCH_SECONDS (per wrk run, default 5), BENCH_THREADS (wrk threads, default 2).
set -eu
# Debian's interpreter directly: a pyenv shim costs ~100 ms per call, inside the timings
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3

REPO=$(cd "$(dirname "$0")/.." && pwd)
BERTH=${BERTH_BIN:-$REPO/build/src/berth}
SIZE=${BENCH_SIZE:-200000000}
SECS=${BENCH_SECONDS:-5}
WRK_THREADS=${BENCH_THREADS:-2}
for t in skopeo wrk ab docker-registry; do
	command -v "$t" >/dev/null || { echo "bench: '$t' not found (run scripts/deps.sh)" >&2; exit 1; }
done
[ -x "$BERTH" ] || { echo "bench: berth binary '$BERTH' not found (make build)" >&2; exit 1; }

WORK=$(mktemp -d /tmp/berth-bench-registry-XXXXXX)
# pulled images go to tmpfs when there is one, so the client's own disk writes do not dominate
if [ -d /dev/shm ] && [ -w /dev/shm ]; then
	PULLED_DIR=$(mktemp -d /dev/shm/berth-bench-pull-XXXXXX)
else
	PULLED_DIR=$(mktemp -d "$WORK/pull-XXXXXX")
fi
PULLED=$PULLED_DIR/image
PIDS=""
cleanup() {
	for p in $PIDS; do kill "$p" 2>/dev/null || true; done
	for p in $PIDS; do wait "$p" 2>/dev/null || true; done
	rm -rf "$WORK" "$PULLED_DIR"
}
trap cleanup EXIT INT TERM

free_port() {
	"$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_up() {
	i=0
	while ! "$PY" -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$1/v2/', timeout=1)" 2>/dev/null; do
		i=$((i + 1))
		[ $i -lt 200 ] || { echo "bench: server on port $1 did not start" >&2; exit 1; }
		sleep 0.05
	done
}

now() { "$PY" -c 'import time; print(time.monotonic())'; }
elapsed() { "$PY" -c "print(f'{$2 - $1:.2f}')"; }
ratio() { "$PY" -c "a, b = float('$1'), float('$2'); print(f'{a / b:.2f}' if b else 'n/a')"; }

echo "== generating a ~$((SIZE / 1000000)) MB image (scripts/mkimage)"
"$REPO/scripts/mkimage" --tag bench:latest --size "$SIZE" --layers 3 --compression none \
	--oci "$WORK/image" >/dev/null

start_distribution() {
	port=$(free_port)
	cat >"$WORK/distribution.yml" <<YML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: $WORK/distribution-data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
YML
	docker-registry serve "$WORK/distribution.yml" >"$WORK/distribution.log" 2>&1 &
	SERVER_PID=$!
	PIDS="$PIDS $SERVER_PID"
	SERVER_PORT=$port
	wait_up "$port"
}

start_berth() {
	port=$(free_port)
	"$BERTH" registry serve --root "$WORK/berth-data" --addr "127.0.0.1:$port" --no-access-log \
		--log-level warn >"$WORK/berth.log" 2>&1 &
	SERVER_PID=$!
	PIDS="$PIDS $SERVER_PID"
	SERVER_PORT=$port
	wait_up "$port"
}

cat >"$WORK/manifest.lua" <<'LUA'
wrk.headers["Accept"] = "application/vnd.oci.image.manifest.v1+json"
LUA

# wrk_run URL SCRIPT CONNS -> "req/s p99_ms"
wrk_run() {
	out=$(wrk -t "$WRK_THREADS" -c "$3" -d "${SECS}s" --latency -s "$2" "$1")
	echo "$out" | "$PY" -c '
import re, sys
t = sys.stdin.read()
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1))
m = re.search(r"\s99%\s+([\d.]+)(us|ms|s)", t)
v = float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[m.group(2)]
errs = re.search(r"Non-2xx or 3xx responses: (\d+)", t)
if errs:
    print("bench: wrk saw", errs.group(1), "error responses", file=sys.stderr)
print(f"{rps:.0f} {v:.2f}")'
}

# ab_head URL CONNS -> "req/s p99_ms" (wrk cannot do HEAD: it waits for a body)
ab_head() {
	ab -k -i -c "$2" -t "$SECS" -n 100000000 "$1" 2>&1 | "$PY" -c '
import re, sys
t = sys.stdin.read()
rps = float(re.search(r"Requests per second:\s+([\d.]+)", t).group(1))
p99 = float(re.search(r"\s99%\s+(\d+)", t).group(1))
bad = re.search(r"Non-2xx responses:\s+(\d+)", t)
if bad:
    print("bench: ab saw", bad.group(1), "error responses", file=sys.stderr)
print(f"{rps:.0f} {p99:.2f}")'
}

check_ok() {
	code=$("$PY" -c "import urllib.request as u; r=u.urlopen(u.Request('$1', method='$2', headers={'Accept': 'application/vnd.oci.image.manifest.v1+json'})); print(r.status)")
	[ "$code" = 200 ] || { echo "bench: $2 $1 returned $code" >&2; exit 1; }
}

# push NAME HOST: skopeo push; fills NAME_push and NAME_pushsync (until durable:
# berth fsyncs every blob, Distribution does not, so both are shown)
push() {
	name=$1 host=$2
	sync
	t0=$(now)
	skopeo copy -q --dest-tls-verify=false "oci:$WORK/image" "docker://$host/bench/image:v1"
	t1=$(now)
	sync
	t1s=$(now)
	eval "${name}_push=$(elapsed "$t0" "$t1")"
	eval "${name}_pushsync=$(elapsed "$t0" "$t1s")"
}

# pull NAME HOST: skopeo pull into tmpfs; keeps the best of the rounds in NAME_pull
pull() {
	name=$1 host=$2
	rm -rf "$PULLED"
	t0=$(now)
	skopeo copy -q --src-tls-verify=false "docker://$host/bench/image:v1" "oci:$PULLED:v1"
	t1=$(now)
	took=$(elapsed "$t0" "$t1")
	eval "prev=\${${name}_pull:-}"
	if [ -z "$prev" ] || "$PY" -c "import sys; sys.exit(0 if $took < $prev else 1)"; then
		eval "${name}_pull=$took"
	fi
	blob=$("$PY" -c "import json; m=json.load(open('$PULLED/index.json'))['manifests'][0]['digest'].split(':')[1]; print(json.load(open('$PULLED/blobs/sha256/'+m))['config']['digest'])")
	rm -rf "$PULLED"
	check_ok "http://$host/v2/bench/image/manifests/v1" GET
	check_ok "http://$host/v2/bench/image/blobs/$blob" HEAD
	eval "${name}_blob=$blob"
}

# load NAME HOST CONNS: fills NAME_mC_rps/_p99 and NAME_hC_rps/_p99
load() {
	name=$1 host=$2 c=$3
	eval "blob=\$${name}_blob"
	set -- $(wrk_run "http://$host/v2/bench/image/manifests/v1" "$WORK/manifest.lua" "$c")
	eval "${name}_m${c}_rps=$1 ${name}_m${c}_p99=$2"
	set -- $(ab_head "http://$host/v2/bench/image/blobs/$blob" "$c")
	eval "${name}_h${c}_rps=$1 ${name}_h${c}_p99=$2"
}

# Both servers run side by side; every measurement alternates between them so
# that load from other processes on this shared machine hits both alike.
echo "== Distribution (docker-registry $(docker-registry --version 2>/dev/null | awk '{print $3}')) and berth registry"
start_distribution
DIST_PID=$SERVER_PID DIST=127.0.0.1:$SERVER_PORT
start_berth
BERTH_PID=$SERVER_PID BERTHH=127.0.0.1:$SERVER_PORT
push dist "$DIST"
push berth "$BERTHH"
for round in 1 2; do
	pull dist "$DIST"
	pull berth "$BERTHH"
done
for c in 64 256; do
	load dist "$DIST" $c
	load berth "$BERTHH" $c
done
dist_rss=$(awk '/VmHWM/ {print $2}' /proc/$DIST_PID/status)
berth_rss=$(awk '/VmHWM/ {print $2}' /proc/$BERTH_PID/status)

row() { # label berth dist better(high|low)
	r=$(ratio "$2" "$3")
	printf "%-34s %12s %12s %8s  (%s is better)\n" "$1" "$2" "$3" "$r" "$4"
}
echo
printf "%-34s %12s %12s %8s\n" "metric" "berth" "distribution" "ratio"
row "skopeo push ($((SIZE / 1000000)) MB, s)" "$berth_push" "$dist_push" lower
row "skopeo push + sync ($((SIZE / 1000000)) MB, s)" "$berth_pushsync" "$dist_pushsync" lower
row "skopeo pull ($((SIZE / 1000000)) MB, best of 2, s)" "$berth_pull" "$dist_pull" lower
for c in 64 256; do
	eval row "\"manifest GET c=$c (req/s)\"" "\$berth_m${c}_rps" "\$dist_m${c}_rps" higher
	eval row "\"manifest GET c=$c p99 (ms)\"" "\$berth_m${c}_p99" "\$dist_m${c}_p99" lower
	eval row "\"blob HEAD c=$c (req/s)\"" "\$berth_h${c}_rps" "\$dist_h${c}_rps" higher
	eval row "\"blob HEAD c=$c p99 (ms)\"" "\$berth_h${c}_p99" "\$dist_h${c}_p99" lower
done
row "peak RSS (KiB)" "$berth_rss" "$dist_rss" lower
echo "(load average during the run: $(cut -d' ' -f1-3 /proc/loadavg); this machine is shared, numbers are noisy)"
