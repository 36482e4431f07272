#!/bin/sh
# bench/logs.sh - the logs API of `berth server` (issue 15): ingest rate of log lines through the
# agent's awslogs shipper (`berth bench-logs ship`: WORKERS json-file logs shipped over mutual TLS into
# the server's segment files, the goal's path), through PutLogEvents (WORKERS clients, ~1 MiB batches,
# pre-built and SigV4-signed) and FilterLogEvents
# over everything ingested (a space-delimited pattern and a quoted term, each matching 1 line in
# 10,000), against anchors measured in the same run on the same lines in a file on the same disk:
# `cat lines > copy` (+ sync) for ingest and `grep -c` for filtering. Prints ratios and the goal
# (ingest >= 50 MB/s). Env: BERTH (binary), SIZE_MB (256; the issue asks 1 GB: SIZE_MB=1000),
# WORKERS (4), SERVER_ARGS (extra `berth server` flags, e.g. "--logs-fsync"), BASE (another berth
# binary, e.g. a build of an older commit: its server and shipper run the agent path first, in the same
# run, and the agent path's ratio to it is printed).
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
BERTH=$(readlink -f "${BERTH:-$HERE/../build/src/berth}")
DIR=$(mktemp -d /tmp/berth-bench-logs-XXXXXX)
PORT=$((20000 + $$ % 10000))
SERVER=""
cleanup() {
	[ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null && wait "$SERVER" 2>/dev/null
	rm -rf "$DIR"
}
trap cleanup EXIT INT TERM
# start_server BINARY SUBDIR: a server of BINARY with its root under DIR/SUBDIR.
start_server() {
	mkdir -p "$DIR/$2"
	# shellcheck disable=SC2086
	"$1" server --root "$DIR/$2/server" --listen "127.0.0.1:$PORT" ${SERVER_ARGS:-} >"$DIR/$2.out" 2>"$DIR/$2.err" &
	SERVER=$!
	i=0
	until grep -q endpoint "$DIR/$2.out" 2>/dev/null; do
		i=$((i + 1)); [ $i -gt 100 ] && { cat "$DIR/$2.err" >&2; exit 1; }
		sleep 0.1
	done
}
# run_bench BINARY SUBDIR: logs_bench.py against the server started there; prints its JSON.
run_bench() {
	/usr/bin/python3 "$HERE/logs_bench.py" "https://127.0.0.1:$PORT" "$DIR/$2/server/pki/ca.pem" \
		"$DIR/$2/server/credentials" "$DIR/$2" "$1" "$(cat "$DIR/$2/server/join-token")"
}
BASE_OUT="{}"
if [ -n "${BASE:-}" ]; then
	start_server "$(readlink -f "$BASE")" base
	BASE_OUT=$(AGENT_ONLY=1 run_bench "$(readlink -f "$BASE")" base)
	kill "$SERVER" && wait "$SERVER" 2>/dev/null || true
	SERVER=""
	rm -rf "$DIR/base"
fi
start_server "$BERTH" run
OUT=$(run_bench "$BERTH" run)
STORED=$(du -sm "$DIR/run/server/logs" | cut -f1)
/usr/bin/python3 - "$OUT" "$STORED" "$BASE_OUT" <<'PY'
import json, sys
r = json.loads(sys.argv[1]); stored = sys.argv[2]; base = json.loads(sys.argv[3])
mb = r["bytes"] / 1e6
print(f"log lines ingested: {r['agent_bytes'] / 1e6:.0f} MB by the agent, {mb:.0f} MB by PutLogEvents, in {r['lines_file'] / 1e6:.0f} MB of lines (stored {stored} MiB on disk)")
print(f"{'measure':44} {'berth':>10} {'anchor':>10} {'ratio':>7}")
print(f"{'ingest MB/s (agent shipper vs cat > file)':44} {r['agent_mb_s']:10.1f} {r['cat_mb_s']:10.1f} "
      f"{r['agent_mb_s'] / r['cat_mb_s']:7.2f}   goal >= 50 MB/s: {'met' if r['agent_mb_s'] >= 50 else 'NOT met'}")
print(f"{'ingest MB/s (PutLogEvents vs cat > file)':44} {r['ingest_mb_s']:10.1f} {r['cat_mb_s']:10.1f} "
      f"{r['ingest_mb_s'] / r['cat_mb_s']:7.2f}")
for k, name in (("filter_space_s", "filter [.., status = 500, ..] s vs grep -c"),
                ("filter_term_s", 'filter "HTTP/1.1\\" 500" s vs grep -c')):
    print(f"{name:44} {r[k]:10.2f} {r['grep_s']:10.2f} {r[k] / r['grep_s']:7.2f}")
if base:
    print(f"{'ingest MB/s (agent shipper vs BASE binary)':44} {r['agent_mb_s']:10.1f} {base['agent_mb_s']:10.1f} "
          f"{r['agent_mb_s'] / base['agent_mb_s']:7.2f}")
print(f"matches: space-delimited {r['filter_space_found']} in {r['filter_calls']} calls, "
      f"term {r['filter_term_found']}, grep -c {r['grep_count']}")
PY
uptime
