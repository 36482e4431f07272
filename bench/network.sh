#!/bin/sh
# bench/network.sh - what container networking costs, measured inside a private
# network namespace (nothing touches the machine's networking):
#   1. network setup+teardown latency per container: bridge (CNI bridge +
#      host-local), bridge with a published port (+ portmap), vs --network none
#      (netns + lo only). The difference is the network's added cost.
#   2. HTTP throughput (wrk -> busybox httpd in a container) through a
#      portmap-published port on 127.0.0.1 vs straight to the container's IP.
#   3. when dockerd is installed (BENCH_DOCKER=0 skips it): the same measures
#      for docker in the same namespace, side by side: `docker run --rm`
#      bridge vs --network none, and throughput through docker's published
#      port (docker-proxy for 127.0.0.1), run back to back with berth's.
# The engine does not exist yet, so berth's numbers drive `berth net-tool`
# directly (no container process), docker's include a whole container start.
# Every number is a median: RUNS timed cycles, ROUNDS wrk runs per URL (the
# URLs compared are run alternately, round by round, so load from other
# processes on a shared machine hits them alike).
# Env: BERTH (binary), RUNS (default 20), ROUNDS (default 5), WRK_SECONDS (default 3),
#      BENCH_DOCKER.
set -eu
BERTH=${BERTH:-$(dirname "$0")/../build/src/berth}
BERTH=$(readlink -f "$BERTH")
RUNS=${RUNS:-20}
ROUNDS=${ROUNDS:-5}
WRK_SECONDS=${WRK_SECONDS:-3}
NS=berth-bench-$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')
DIR=$(mktemp -d /tmp/berth-bench-net-XXXXXX)
HTTPD_PID=
DOCKERD=

cleanup() {
	[ -n "$HTTPD_PID" ] && kill "$HTTPD_PID" 2>/dev/null || true
	if [ -n "$DOCKERD" ]; then
		docker rm -f bweb >/dev/null 2>&1 || true
		kill "$(cat "$DIR/docker.pid")" 2>/dev/null || true
		i=0
		while [ -e "$DIR/docker.pid" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
	fi
	nsenter --net=/run/netns/$NS "$BERTH" net-tool --root "$DIR/root" --exec-root "$DIR/run" gc >/dev/null 2>&1 || true
	ip netns delete "$NS" 2>/dev/null || true
	grep -o "$DIR[^ ]*" /proc/self/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
	rm -rf "$DIR"
}
trap cleanup EXIT INT TERM

ip netns add "$NS"
ip -n "$NS" link set lo up
tool() { nsenter --net=/run/netns/$NS "$BERTH" net-tool --root "$DIR/root" --exec-root "$DIR/run" "$@"; }
now_us() { echo $(($(date +%s%N) / 1000)); }

tool ls >/dev/null # initialise state, default network, isolation chains

# median microseconds of attach+detach over RUNS (each timed alone), args after the id go to attach
cycle() {
	label=$1
	shift
	tool attach warm "$@" >/dev/null && tool detach warm
	i=0
	: >"$DIR/t-$label"
	while [ $i -lt "$RUNS" ]; do
		t0=$(now_us)
		tool attach "c$i" "$@" >/dev/null
		tool detach "c$i"
		echo $(($(now_us) - t0)) >>"$DIR/t-$label"
		i=$((i + 1))
	done
	median "$DIR/t-$label"
}
median() { sort -n "$1" | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : int((v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }

none=$(cycle none --network none)
bridge=$(cycle bridge)
ports=$(cycle ports -p 127.0.0.1:18080:80)
echo "setup+teardown per container (median of $RUNS, includes 2 berth process starts):"
printf '  none            %6d us\n' "$none"
printf '  bridge          %6d us   (+%d us for the network)\n' "$bridge" $((bridge - none))
printf '  bridge + -p     %6d us   (+%d us for the network)\n' "$ports" $((ports - none))

# throughput
mkdir -p "$DIR/www"
head -c 1024 /dev/zero | tr '\0' x >"$DIR/www/small.html"
head -c 4194304 /dev/zero >"$DIR/www/big.bin"
out=$(tool attach web -p 127.0.0.1:18080:80)
netns=$(echo "$out" | sed -n 's/.*"NetnsPath": "\(.*\)".*/\1/p')
ip=$(echo "$out" | sed -n 's/.*"IPAddress": "\(172[^"]*\)".*/\1/p' | head -1)
nsenter --net="$netns" busybox httpd -f -p 80 -h "$DIR/www" &
HTTPD_PID=$!
for _ in 1 2 3 4 5 6 7 8 9 10; do
	nsenter --net=/run/netns/$NS busybox wget -qO /dev/null "http://$ip/small.html" 2>/dev/null && break
	sleep 0.1
done
wrk_run() { nsenter --net=/run/netns/$NS wrk -t1 -c4 -d"${WRK_SECONDS}s" "$1"; }
rps() { wrk_run "$1" | awk '/Requests\/sec/ {print int($2)}'; }
# wrk prints e.g. "Transfer/sec:    123.45MB"; normalise to MB/s
mbps() { wrk_run "$1" | awk '/Transfer\/sec/ { v = $2; u = substr(v, length(v) - 1); v += 0;
	if (u == "GB") v *= 1024; else if (u == "KB") v /= 1024; printf "%d\n", v }'; }
# compare FN URL-A URL-B: ROUNDS alternating runs of FN (rps or mbps); prints "median-a median-b"
compare() {
	fn=$1
	: >"$DIR/ca"
	: >"$DIR/cb"
	i=0
	while [ $i -lt "$ROUNDS" ]; do
		if [ $((i % 2)) = 0 ]; then
			$fn "$2" >>"$DIR/ca"
			$fn "$3" >>"$DIR/cb"
		else
			$fn "$3" >>"$DIR/cb"
			$fn "$2" >>"$DIR/ca"
		fi
		i=$((i + 1))
	done
	echo "$(median "$DIR/ca") $(median "$DIR/cb")"
}
report() { # label name-a a name-b b unit: prints both and the ratio b/a
	printf '  %-18s %-9s %6s   %-9s %6s %-6s  ratio %s/%s %s\n' "$1" "$2" "$3" "$4" "$5" "$6" "$4" "$2" \
		"$(awk -v b="$5" -v a="$3" 'BEGIN { printf "%.2f", (a > 0 ? b / a : 0) }')"
}
echo "HTTP through 127.0.0.1:18080 (portmap DNAT) vs straight to $ip, wrk -t1 -c4 ${WRK_SECONDS}s, busybox httpd, median of $ROUNDS:"
set -- $(compare rps "http://$ip:80/small.html" "http://127.0.0.1:18080/small.html")
report "1 KiB GET" direct "$1" published "$2" req/s
set -- $(compare mbps "http://$ip:80/big.bin" "http://127.0.0.1:18080/big.bin")
report "4 MiB GET" direct "$1" published "$2" MB/s

[ "${BENCH_DOCKER:-1}" = 1 ] && command -v dockerd >/dev/null && command -v docker >/dev/null || exit 0
echo "docker, same namespace (dockerd --data-root/--exec-root private, userland proxy on):"
scripts_dir=$(dirname "$0")/../scripts
"$scripts_dir/mkimage" --tag busybox:latest --docker-archive "$DIR/bb.tar" >/dev/null
nsenter --net=/run/netns/$NS dockerd --data-root "$DIR/docker" --exec-root "$DIR/dexec" \
	-H "unix://$DIR/docker.sock" --pidfile "$DIR/docker.pid" >"$DIR/dockerd.log" 2>&1 &
DOCKERD=$!
export DOCKER_HOST="unix://$DIR/docker.sock"
i=0
until docker version >/dev/null 2>&1; do
	i=$((i + 1))
	[ $i -gt 150 ] && { echo "dockerd did not start"; tail "$DIR/dockerd.log"; exit 1; }
	sleep 0.2
done
docker load -i "$DIR/bb.tar" >/dev/null
drun() { # median us of `docker run --rm` with the given args
	docker run --rm "$@" busybox:latest /bin/busybox true
	: >"$DIR/d"
	i=0
	while [ $i -lt "$RUNS" ]; do
		t0=$(now_us)
		docker run --rm "$@" busybox:latest /bin/busybox true
		echo $(($(now_us) - t0)) >>"$DIR/d"
		i=$((i + 1))
	done
	median "$DIR/d"
}
dnone=$(drun --network none)
dbridge=$(drun)
printf '  docker run --rm, none   %8d us\n' "$dnone"
printf '  docker run --rm, bridge %8d us   (+%d us for the network; berth: +%d us)\n' "$dbridge" \
	$((dbridge - dnone)) $((bridge - none))
docker run -d --name bweb -p 127.0.0.1:18081:80 -v "$DIR/www:/www:ro" busybox:latest \
	/bin/busybox httpd -f -p 80 -h /www >/dev/null
for _ in 1 2 3 4 5 6 7 8 9 10; do
	nsenter --net=/run/netns/$NS busybox wget -qO /dev/null "http://127.0.0.1:18081/small.html" 2>/dev/null && break
	sleep 0.2
done
echo "published port throughput, berth (portmap DNAT) vs docker (docker-proxy), alternating, median of $ROUNDS:"
set -- $(compare rps "http://127.0.0.1:18081/small.html" "http://127.0.0.1:18080/small.html")
report "1 KiB GET" docker "$1" berth "$2" req/s
set -- $(compare mbps "http://127.0.0.1:18081/big.bin" "http://127.0.0.1:18080/big.bin")
report "4 MiB GET" docker "$1" berth "$2" MB/s
