#!/bin/sh
# bench/engine-network.sh - container networking through the engines, inside a
# private network namespace (nothing touches the machine's networking):
#   1. `docker run --rm busybox true` with the default bridge vs --network none,
#      against berth's daemon and (when installed, BENCH_DOCKER=0 skips it)
#      dockerd: the difference is what the network adds to a container start;
#   1b. the same on a dual-stack user network (--ipv6, ULA subnet) against an
#      IPv4-only user network of the same engine (the anchor), and dockerd's ratio;
#   2. HTTP throughput (wrk -> busybox httpd in a container) through a port
#      published on 127.0.0.1: berth (portmap DNAT) vs docker (docker-proxy).
# Every number is a median: RUNS timed starts, ROUNDS wrk runs per URL (berth's and
# docker's alternately, so load from other processes hits both alike).
# Env: BERTH (binary), RUNS (default 10), ROUNDS (default 5), WRK_SECONDS (default 3),
#      BENCH_DOCKER.
set -eu
BERTH=$(readlink -f "${BERTH:-$(dirname "$0")/../build/src/berth}")
RUNS=${RUNS:-10}
ROUNDS=${ROUNDS:-5}
WRK_SECONDS=${WRK_SECONDS:-3}
NS=berth-bench-$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')
DIR=$(mktemp -d /tmp/berth-bench-engnet-XXXXXX)
BSOCK="unix://$DIR/b/run/berth.sock"
DSOCK="unix://$DIR/docker.sock"

stop_pidfile() {
	[ -e "$1" ] || return 0
	kill "$(cat "$1")" 2>/dev/null || true
	i=0
	while [ -e "$1" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
}
cleanup() {
	for h in "$BSOCK" "$DSOCK"; do
		ids=$(DOCKER_HOST=$h docker ps -aq 2>/dev/null || true)
		[ -z "$ids" ] || DOCKER_HOST=$h docker rm -f $ids >/dev/null 2>&1 || true
	done
	stop_pidfile "$DIR/b.pid"
	stop_pidfile "$DIR/docker.pid"
	ip netns delete "$NS" 2>/dev/null || true
	grep -o "$DIR[^ ]*" /proc/self/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
	rm -rf "$DIR"
}
trap cleanup EXIT INT TERM

ip netns add "$NS"
ip -n "$NS" link set lo up
in_ns() { nsenter --net=/run/netns/$NS "$@"; }
now_us() { echo $(($(date +%s%N) / 1000)); }
wait_up() {
	i=0
	until DOCKER_HOST=$1 docker version >/dev/null 2>&1; do
		i=$((i + 1))
		[ $i -lt 300 ] || { echo "daemon $1 did not start"; exit 1; }
		sleep 0.1
	done
}
"$(dirname "$0")/../scripts/mkimage" --tag busybox:latest --docker-archive "$DIR/bb.tar" >/dev/null
mkdir -p "$DIR/www"
head -c 1024 /dev/zero | tr '\0' x >"$DIR/www/small.html"
head -c 4194304 /dev/zero >"$DIR/www/big.bin"

# dockerd first: berth picks its default subnet around docker0's route (not the other way round)
DOCKER=0
if [ "${BENCH_DOCKER:-1}" = 1 ] && command -v dockerd >/dev/null; then
	in_ns dockerd --data-root "$DIR/docker" --exec-root "$DIR/dexec" -H "$DSOCK" \
		--pidfile "$DIR/docker.pid" >"$DIR/dockerd.log" 2>&1 &
	wait_up "$DSOCK"
	DOCKER=1
fi
in_ns "$BERTH" daemon --root "$DIR/b/root" --exec-root "$DIR/b/run" --pidfile "$DIR/b.pid" >"$DIR/b.log" 2>&1 &
wait_up "$BSOCK"
hosts="$BSOCK"
[ $DOCKER = 0 ] || hosts="$hosts $DSOCK"
for h in $hosts; do DOCKER_HOST=$h docker load -i "$DIR/bb.tar" >/dev/null; done

median() { sort -n "$1" | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : int((v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
# median us of `docker run --rm busybox true` against $1 with the other args
drun() {
	h=$1
	shift
	DOCKER_HOST=$h docker run --rm "$@" busybox:latest /bin/busybox true
	: >"$DIR/runs"
	i=0
	while [ $i -lt "$RUNS" ]; do
		t0=$(now_us)
		DOCKER_HOST=$h docker run --rm "$@" busybox:latest /bin/busybox true
		echo $(($(now_us) - t0)) >>"$DIR/runs"
		i=$((i + 1))
	done
	median "$DIR/runs"
}
ratio() { awk -v b="$1" -v a="$2" 'BEGIN { printf "%.2f", (a > 0 ? b / a : 0) }'; }

echo "docker run --rm busybox true, median of $RUNS (us):"
bn=$(drun "$BSOCK" --network none)
bb=$(drun "$BSOCK")
printf '  berth   none %8d   bridge %8d   network adds %6d us\n' "$bn" "$bb" $((bb - bn))
if [ $DOCKER = 1 ]; then
	dn=$(drun "$DSOCK" --network none)
	db=$(drun "$DSOCK")
	printf '  docker  none %8d   bridge %8d   network adds %6d us\n' "$dn" "$db" $((db - dn))
	echo "  ratio berth/docker: start with bridge $(ratio "$bb" "$db"), network cost $(ratio $((bb - bn)) $((db - dn)))"
fi

# dual stack: what the IPv6 half adds to a start (second range set, ip6tables for portmap's DEL)
hosts46="$BSOCK"
[ $DOCKER = 0 ] || hosts46="$hosts46 $DSOCK"
for h in $hosts46; do
	DOCKER_HOST=$h docker network create --subnet 10.231.0.0/24 bench4 >/dev/null
	DOCKER_HOST=$h docker network create --ipv6 --subnet 10.231.1.0/24 --subnet fd00:db8:231::/64 bench6 >/dev/null
done
echo "docker run --rm busybox true on a user network, IPv4 only vs dual stack, median of $RUNS (us):"
b4n=$(drun "$BSOCK" --network bench4)
b6n=$(drun "$BSOCK" --network bench6)
printf '  berth   ipv4 %8d   dual stack %8d   ratio dual/ipv4 %s\n' "$b4n" "$b6n" "$(ratio "$b6n" "$b4n")"
if [ $DOCKER = 1 ]; then
	d4n=$(drun "$DSOCK" --network bench4)
	d6n=$(drun "$DSOCK" --network bench6)
	printf '  docker  ipv4 %8d   dual stack %8d   ratio dual/ipv4 %s\n' "$d4n" "$d6n" "$(ratio "$d6n" "$d4n")"
	echo "  ratio berth/docker, dual stack: $(ratio "$b6n" "$d6n")"
fi

web() { # $1 host, $2 host port
	DOCKER_HOST=$1 docker run -d -p "127.0.0.1:$2:80" -v "$DIR/www:/www:ro" busybox:latest \
		/bin/busybox httpd -f -p 80 -h /www >/dev/null
	for _ in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
		in_ns busybox wget -qO /dev/null "http://127.0.0.1:$2/small.html" 2>/dev/null && return 0
		sleep 0.2
	done
	echo "published port $2 does not answer"
	DOCKER_HOST=$1 docker ps -a
	tail -5 "$DIR/b.log"
	exit 1
}
command -v wrk >/dev/null || { echo "wrk not installed: no throughput numbers"; exit 0; }
wrk_run() { in_ns wrk -t1 -c4 -d"${WRK_SECONDS}s" "$1"; }
rps() { wrk_run "$1" | awk '/Requests\/sec/ {print int($2)}'; }
mbps() { wrk_run "$1" | awk '/Transfer\/sec/ { v = $2; u = substr(v, length(v) - 1); v += 0;
	if (u == "GB") v *= 1024; else if (u == "KB") v /= 1024; printf "%d\n", v }'; }
# medians FN URL-A URL-B: ROUNDS alternating runs; prints "median-a median-b" (URL-B may be empty)
medians() {
	: >"$DIR/ma"
	: >"$DIR/mb"
	i=0
	while [ $i -lt "$ROUNDS" ]; do
		$1 "$2" >>"$DIR/ma"
		[ -z "$3" ] || $1 "$3" >>"$DIR/mb"
		i=$((i + 1))
	done
	echo "$(median "$DIR/ma") $([ -z "$3" ] || median "$DIR/mb")"
}
web "$BSOCK" 18080
[ $DOCKER = 0 ] || web "$DSOCK" 18081
echo "published port 127.0.0.1, wrk -t1 -c4 ${WRK_SECONDS}s, busybox httpd, median of $ROUNDS:"
d1u= d4u=
[ $DOCKER = 0 ] || { d1u=http://127.0.0.1:18081/small.html; d4u=http://127.0.0.1:18081/big.bin; }
set -- $(medians rps http://127.0.0.1:18080/small.html "$d1u")
b1=$1 d1=${2:-}
set -- $(medians mbps http://127.0.0.1:18080/big.bin "$d4u")
b4=$1 d4=${2:-}
printf '  berth   1 KiB GET %7d req/s   4 MiB GET %6d MB/s\n' "$b1" "$b4"
if [ $DOCKER = 1 ]; then
	printf '  docker  1 KiB GET %7d req/s   4 MiB GET %6d MB/s\n' "$d1" "$d4"
	echo "  ratio berth/docker: 1 KiB $(ratio "$b1" "$d1"), 4 MiB $(ratio "$b4" "$d4")"
fi
