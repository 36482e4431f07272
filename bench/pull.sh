#!/bin/sh
# bench/pull.sh - pull + unpack of a generated ~200 MB image from a local
# docker-registry: berth vs `skopeo copy` to an OCI dir + unpacking its layers
# with tar, vs `docker pull` into a private dockerd. Prints times, ratios and
# berth's peak RSS (GNU time). Targets: berth >= 1.5x docker, RSS < 64 MB.
#
# Env: BERTH (binary, default build/src/berth), BENCH_SIZE (bytes of large
# files, default 150000000), BENCH_FILES (small files, default 20000).
set -eu

BERTH=${BERTH:-$(pwd)/build/src/berth}
SIZE=${BENCH_SIZE:-150000000}
FILES=${BENCH_FILES:-20000}
W=$(mktemp -d /tmp/berth-bench-pull-XXXXXX)
REG_PID=""
DOCKERD_PID=""

cleanup() {
	[ -n "$REG_PID" ] && kill "$REG_PID" 2>/dev/null || true
	if [ -n "$DOCKERD_PID" ]; then
		kill "$DOCKERD_PID" 2>/dev/null || true
		wait "$DOCKERD_PID" 2>/dev/null || true
	fi
	"$BERTH" image-store --root "$W/berth" unmount --rm bench 2>/dev/null || true
	umount -R -l "$W/docker" 2>/dev/null || true
	rm -rf "$W"
}
trap cleanup EXIT INT TERM

. "$(dirname "$0")/lib-registry.sh"
elapsed() { echo "$2 - $1" | bc; }

echo "== generating image (large files: $SIZE bytes, small files: $FILES)"
scripts/mkimage --tag bench:1 --layers 2 --files "$FILES" --size "$SIZE" --oci-archive "$W/img.tar" >/dev/null
ls -l "$W/img.tar" | awk '{printf "archive: %.1f MB\n", $5/1e6}'

bench_registry_start "$W/img.tar"

echo "== berth image-store pull"
T0=$(now)
/usr/bin/time -v -o "$W/berth.time" "$BERTH" image-store --root "$W/berth" pull "$HOST/bench/img:1" >/dev/null 2>"$W/berth.err"
T1=$(now)
BERTH_S=$(elapsed "$T0" "$T1")
RSS_KB=$(awk -F: '/Maximum resident set size/ {gsub(/ /,"",$2); print $2}' "$W/berth.time")
"$BERTH" image-store --root "$W/berth" mount --image "$HOST/bench/img:1" bench >/dev/null
NFILES=$(find "$W/berth/snapshots/bench/rootfs" | wc -l)
"$BERTH" image-store --root "$W/berth" unmount --rm bench

echo "== skopeo copy + tar unpack"
T0=$(now)
skopeo copy -q --src-tls-verify=false "docker://$HOST/bench/img:1" "oci:$W/skopeo:1"
mkdir -p "$W/skopeo-rootfs"
python3 - "$W/skopeo" "$W/skopeo-rootfs" <<'EOF'
import json, os, subprocess, sys
oci, dest = sys.argv[1], sys.argv[2]
idx = json.load(open(os.path.join(oci, "index.json")))
blob = lambda d: os.path.join(oci, "blobs", "sha256", d.split(":")[1])
m = json.load(open(blob(idx["manifests"][0]["digest"])))
for i, l in enumerate(m["layers"]):
    d = os.path.join(dest, str(i))
    os.makedirs(d)
    subprocess.run(["tar", "-xpf", blob(l["digest"]), "-C", d], check=True)
EOF
T1=$(now)
SKOPEO_S=$(elapsed "$T0" "$T1")

echo "== docker pull"
mkdir -p "$W/docker"
dockerd --data-root "$W/docker/data" --exec-root "$W/docker/exec" -H "unix://$W/docker/d.sock" \
	--pidfile "$W/docker/pid" --bridge=none --iptables=false --ip6tables=false >"$W/docker/log" 2>&1 &
DOCKERD_PID=$!
export DOCKER_HOST="unix://$W/docker/d.sock"
for _ in $(seq 300); do docker version >/dev/null 2>&1 && break; sleep 0.1; done
T0=$(now)
docker pull -q "$HOST/bench/img:1" >/dev/null
T1=$(now)
DOCKER_S=$(elapsed "$T0" "$T1")

echo
printf '%-28s %8.2f s\n' "berth pull+unpack" "$BERTH_S" "skopeo copy + tar unpack" "$SKOPEO_S" \
	"docker pull" "$DOCKER_S"
printf 'files in rootfs: %s\n' "$NFILES"
printf 'berth peak RSS: %.1f MB (target < 64 MB)\n' "$(echo "$RSS_KB / 1024" | bc -l)"
printf 'speed vs docker: %.2fx (target >= 1.5x)\n' "$(echo "$DOCKER_S / $BERTH_S" | bc -l)"
printf 'speed vs skopeo+tar: %.2fx\n' "$(echo "$SKOPEO_S / $BERTH_S" | bc -l)"
