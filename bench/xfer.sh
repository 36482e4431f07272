#!/bin/sh
# bench/xfer.sh - the libcurl wrapper (http/xfer.h) on its heaviest path: an
# image pull (manifest, config, parallel blob downloads through the multi
# interface) from a local docker-registry, by this tree's berth against an
# anchor berth built before the wrapper (ANCHOR, e.g. main's build), three
# runs each into fresh roots, alternating which goes first. Prints the medians and the ratio
# (target: 1.00x within noise; the wrapper must not cost anything).
#
# Env: BERTH (default build/src/berth), ANCHOR (required), BENCH_SIZE (bytes of
# large files, default 60000000), BENCH_FILES (small files, default 2000).
set -eu

BERTH=${BERTH:-$(pwd)/build/src/berth}
ANCHOR=${ANCHOR:?set ANCHOR to a berth binary built without http/xfer.h}
SIZE=${BENCH_SIZE:-60000000}
FILES=${BENCH_FILES:-2000}
W=$(mktemp -d /tmp/berth-bench-xfer-XXXXXX)
REG_PID=""

cleanup() {
	[ -n "$REG_PID" ] && kill "$REG_PID" 2>/dev/null || true
	rm -rf "$W"
}
trap cleanup EXIT INT TERM

. "$(dirname "$0")/lib-registry.sh"

scripts/mkimage --tag bench:1 --layers 3 --files "$FILES" --size "$SIZE" --oci-archive "$W/img.tar" >/dev/null
bench_registry_start "$W/img.tar"

pull() { # binary root -> seconds
	T0=$(now)
	"$1" image-store --root "$2" pull "$HOST/bench/img:1" >/dev/null
	T1=$(now)
	rm -rf "$2"
	echo "$T1 - $T0" | bc
}

: >"$W/new" && : >"$W/old"
for i in 1 2 3; do # alternate which goes first (the second one pays the first's writeback)
	if [ $((i % 2)) = 1 ]; then
		pull "$ANCHOR" "$W/a$i" >>"$W/old"
		pull "$BERTH" "$W/b$i" >>"$W/new"
	else
		pull "$BERTH" "$W/b$i" >>"$W/new"
		pull "$ANCHOR" "$W/a$i" >>"$W/old"
	fi
	sync
done
med() { sort -n "$1" | sed -n 2p; }
NEW=$(med "$W/new")
OLD=$(med "$W/old")
printf '%-30s %8.3f s (median of 3)\n' "berth pull (http/xfer.h)" "$NEW" "anchor pull (own libcurl code)" "$OLD"
printf 'ratio anchor/new: %.2fx (1.00x = same speed)\n' "$(echo "$OLD / $NEW" | bc -l)"
