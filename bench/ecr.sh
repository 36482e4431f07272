#!/bin/sh
# bench/ecr.sh - push and pull of one image through the cluster registry
# (`berth server --registry`, HTTPS from the cluster CA, Basic auth with an ECR
# token from `aws ecr get-login-password`) vs Debian's docker-registry
# (CNCF Distribution 2.8) with the same TLS certificate and htpasswd (bcrypt)
# Basic auth, same image, same run.
#
# skopeo copies a generated image (scripts/mkimage, BENCH_SIZE bytes, 3
# uncompressed layers; skopeo gzips them on push) in each of BENCH_ROUNDS
# rounds (default 3) to fresh servers, alternating which goes first; medians
# are printed with berth/Distribution ratios (< 1: berth is faster). Server CPU
# is the whole process: for berth that includes the control plane (SQLite,
# leader loop), idle here.
set -eu
REPO=$(cd "$(dirname "$0")/.." && pwd)
BERTH=${BERTH_BIN:-$REPO/build/src/berth}
PY=/usr/bin/python3
AWS=/usr/bin/aws
SIZE=${BENCH_SIZE:-100000000}
ROUNDS=${BENCH_ROUNDS:-3}
for t in skopeo docker-registry htpasswd; do
	command -v "$t" >/dev/null || { echo "bench: '$t' not found (run scripts/deps.sh)" >&2; exit 1; }
done
[ -x "$BERTH" ] || { echo "bench: berth binary '$BERTH' not found (make build)" >&2; exit 1; }

WORK=$(mktemp -d /tmp/berth-bench-ecr-XXXXXX)
SHM=$(mktemp -d /dev/shm/berth-bench-ecr-XXXXXX 2>/dev/null || mktemp -d "$WORK/pull-XXXXXX")
RES=$WORK/results
: >"$RES"
PIDS=""
cleanup() {
	for p in $PIDS; do kill "$p" 2>/dev/null || true; done
	for p in $PIDS; do wait "$p" 2>/dev/null || true; done
	rm -rf "$WORK" "$SHM"
}
trap cleanup EXIT INT TERM

free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now() { "$PY" -c 'import time; print(time.monotonic())'; }
elapsed() { "$PY" -c "print(f'{$2 - $1:.3f}')"; }
cpu() { awk '{printf "%.2f", ($14 + $15) / 100}' "/proc/$1/stat"; }
delta() { "$PY" -c "print(f'{$2 - $1:.2f}')"; }
record() { echo "$1 $2" >>"$RES"; }

echo "== generating a ~$((SIZE / 1000000)) MB image (scripts/mkimage)"
"$REPO/scripts/mkimage" --tag bench:latest --size "$SIZE" --layers 3 --compression none --oci "$WORK/image" >/dev/null

start_dist() {
	port=$(free_port)
	rm -rf "$WORK/dist-data"
	cat >"$WORK/dist.yml" <<YML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: $WORK/dist-data
http:
  addr: 127.0.0.1:$port
  tls:
    certificate: $WORK/srv/pki/registry.pem
    key: $WORK/srv/pki/registry-key.pem
auth:
  htpasswd:
    realm: bench
    path: $WORK/htpasswd
YML
	htpasswd -cbB "$WORK/htpasswd" bench bench-pw 2>/dev/null
	docker-registry serve "$WORK/dist.yml" >"$WORK/dist.log" 2>&1 &
	dist_pid=$!
	PIDS="$PIDS $!"
	dist_host=127.0.0.1:$port
	i=0
	while ! curl -s -o /dev/null --cacert "$WORK/srv/pki/ca.pem" "https://$dist_host/v2/"; do
		i=$((i + 1)); [ $i -lt 200 ] || { echo "bench: docker-registry did not start" >&2; exit 1; }
		sleep 0.05
	done
}

start_berth() {
	rm -rf "$WORK/srv"
	mkdir -p "$WORK/srv"
	"$BERTH" server --root "$WORK/srv" --listen 127.0.0.1:0 --registry 127.0.0.1:0 --log-level warn \
		>"$WORK/srv.out" 2>"$WORK/srv.err" &
	berth_pid=$!
	PIDS="$PIDS $!"
	i=0
	while ! grep -q '^registry ' "$WORK/srv.out" 2>/dev/null; do
		i=$((i + 1)); [ $i -lt 400 ] || { echo "bench: berth server did not start" >&2; cat "$WORK/srv.err" >&2; exit 1; }
		sleep 0.05
	done
	berth_host=$(sed -n 's/^registry \([^ ]*\).*/\1/p' "$WORK/srv.out")
	endpoint=$(sed -n 's/.*endpoint \(https:[^ ]*\).*/\1/p' "$WORK/srv.out")
	export AWS_SHARED_CREDENTIALS_FILE="$WORK/srv/credentials" AWS_CONFIG_FILE=/dev/null AWS_PAGER=""
	set -- --region us-east-1 --endpoint-url "$endpoint" --ca-bundle "$WORK/srv/pki/ca.pem"
	"$AWS" ecr create-repository --repository-name bench/image "$@" >/dev/null
	token=$("$AWS" ecr get-login-password "$@")
	mkdir -p "$WORK/certs"
	cp "$WORK/srv/pki/ca.pem" "$WORK/certs/ca.crt"
}

stop_servers() {
	for p in $PIDS; do kill "$p" 2>/dev/null || true; done
	for p in $PIDS; do wait "$p" 2>/dev/null || true; done
	PIDS=""
}

# push/pull NAME: records NAME_push, NAME_pull and the server CPU of each
push() {
	eval "host=\$$1_host pid=\$$1_pid"
	c0=$(cpu "$pid"); t0=$(now)
	if [ "$1" = berth ]; then
		skopeo copy -q --dest-creds "AWS:$token" --dest-cert-dir "$WORK/certs" "oci:$WORK/image" "docker://$host/bench/image:v1"
	else
		skopeo copy -q --dest-creds bench:bench-pw --dest-cert-dir "$WORK/certs" "oci:$WORK/image" "docker://$host/bench/image:v1"
	fi
	t1=$(now); c1=$(cpu "$pid")
	record "$1_push" "$(elapsed "$t0" "$t1")"
	record "$1_push_cpu" "$(delta "$c0" "$c1")"
}
pull() {
	eval "host=\$$1_host pid=\$$1_pid"
	rm -rf "$SHM/pulled"
	c0=$(cpu "$pid"); t0=$(now)
	if [ "$1" = berth ]; then
		skopeo copy -q --src-creds "AWS:$token" --src-cert-dir "$WORK/certs" "docker://$host/bench/image:v1" "oci:$SHM/pulled:v1"
	else
		skopeo copy -q --src-creds bench:bench-pw --src-cert-dir "$WORK/certs" "docker://$host/bench/image:v1" "oci:$SHM/pulled:v1"
	fi
	t1=$(now); c1=$(cpu "$pid")
	record "$1_pull" "$(elapsed "$t0" "$t1")"
	record "$1_pull_cpu" "$(delta "$c0" "$c1")"
}

echo "== $ROUNDS rounds: berth server --registry (ECR token) vs docker-registry (htpasswd), both HTTPS"
r=0
while [ $r -lt "$ROUNDS" ]; do
	start_berth # first: its certificate serves both
	start_dist
	if [ $((r % 2)) -eq 0 ]; then order="berth dist"; else order="dist berth"; fi
	for s in $order; do push "$s"; done
	for s in $order; do pull "$s"; done
	stop_servers
	r=$((r + 1))
done

"$PY" - "$RES" <<'PYEOF'
import statistics, sys
vals = {}
for line in open(sys.argv[1]):
    k, v = line.split()
    vals.setdefault(k, []).append(float(v))
med = {k: statistics.median(v) for k, v in vals.items()}
print(f"{'metric':34} {'berth':>8} {'Distribution':>13} {'berth/Dist':>11}")
for label, k in [("skopeo push, s", "push"), ("skopeo pull, s", "pull"),
                 ("server CPU during push, s", "push_cpu"), ("server CPU during pull, s", "pull_cpu")]:
    b, d = med[f"berth_{k}"], med[f"dist_{k}"]
    ratio = f"{b / d:.2f}" if d else "-"
    print(f"{label:34} {b:8.2f} {d:13.2f} {ratio:>11}")
b = med["berth_push"] + med["berth_pull"]
d = med["dist_push"] + med["dist_pull"]
print(f"push+pull: berth {b:.2f} s, Distribution {d:.2f} s, ratio {b / d:.2f}")
PYEOF
