#!/bin/sh
# bench/network.sh - what container networking costs, measured inside a private
# network namespace (nothing touches the machine's networking):
#   1. network setup+teardown latency per container: bridge (CNI bridge +
#      host-local), bridge with a published port (+ portmap), vs --network none
#      (netns + lo only). The difference is the network's added cost.
#   2. HTTP throughput (wrk -> busybox httpd in a container) through a
#      portmap-published port on 127.0.0.1 vs straight to the container's IP.
# The engine does not exist yet, so this drives `berth net-tool` directly; the
# docker side-by-side comparison of the issue waits for the engine.
# Env: BERTH (binary), RUNS (default 20), WRK_SECONDS (default 3).
set -eu
BERTH=${BERTH:-$(dirname "$0")/../build/src/berth}
BERTH=$(readlink -f "$BERTH")
RUNS=${RUNS:-20}
WRK_SECONDS=${WRK_SECONDS:-3}
NS=berth-bench-$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')
DIR=$(mktemp -d /tmp/berth-bench-net-XXXXXX)
HTTPD_PID=

cleanup() {
	[ -n "$HTTPD_PID" ] && kill "$HTTPD_PID" 2>/dev/null || true
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

# mean microseconds of attach+detach over RUNS, args after the id go to attach
cycle() {
	label=$1
	shift
	tool attach warm "$@" >/dev/null && tool detach warm
	t0=$(now_us)
	i=0
	while [ $i -lt "$RUNS" ]; do
		tool attach "c$i" "$@" >/dev/null
		tool detach "c$i"
		i=$((i + 1))
	done
	t1=$(now_us)
	echo $(((t1 - t0) / RUNS))
}

none=$(cycle none --network none)
bridge=$(cycle bridge)
ports=$(cycle ports -p 127.0.0.1:18080:80)
echo "setup+teardown per container (mean of $RUNS, includes ~2 berth process starts):"
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
	if (u == "GB") v *= 1024; else if (u == "KB") v /= 1024; printf "%d", v }'; }
report() { # label direct published unit
	printf '  %-28s direct %8s %s   published %8s %s   ratio %s\n' "$1" "$2" "$4" "$3" "$4" \
		"$(awk -v p="$3" -v d="$2" 'BEGIN { printf "%.2f", (d > 0 ? p / d : 0) }')"
}
echo "HTTP through 127.0.0.1:18080 (portmap DNAT) vs straight to $ip, wrk -t1 -c4 ${WRK_SECONDS}s, busybox httpd:"
report "1 KiB GET (req/s)" "$(rps "http://$ip:80/small.html")" "$(rps "http://127.0.0.1:18080/small.html")" req/s
report "4 MiB GET (MB/s)" "$(mbps "http://$ip:80/big.bin")" "$(mbps "http://127.0.0.1:18080/big.bin")" MB/s
