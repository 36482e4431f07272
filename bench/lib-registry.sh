# bench/lib-registry.sh - sourced by the pull benchmarks (pull.sh, xfer.sh): a local
# docker-registry (Debian's Distribution) serving one generated image over plain HTTP on
# loopback. POSIX sh; the caller has `set -eu`, its work dir W, and kills $REG_PID on exit.

now() { date +%s.%N; }

# bench_registry_start ARCHIVE: serve docker-registry on a free 127.0.0.1 port, its store
# under $W/reg, and push the OCI archive ARCHIVE to it as bench/img:1.
# Sets HOST (host:port) and REG_PID.
bench_registry_start() {
	port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	HOST="127.0.0.1:$port"
	mkdir -p "$W/reg"
	cat >"$W/reg/config.yml" <<CFG
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $W/reg/data
http:
  addr: $HOST
CFG
	docker-registry serve "$W/reg/config.yml" >"$W/reg/log" 2>&1 &
	REG_PID=$!
	for _ in $(seq 100); do curl -sf "http://$HOST/v2/" >/dev/null && break; sleep 0.05; done
	curl -sf "http://$HOST/v2/" >/dev/null || { echo "bench: docker-registry did not start" >&2; exit 1; }
	skopeo copy -q --dest-tls-verify=false "oci-archive:$1" "docker://$HOST/bench/img:1"
	sync
}
