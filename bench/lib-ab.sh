# bench/lib-ab.sh - sourced by the A/B benchmarks (engine-ops.sh, engine-runtimes.sh):
# two commands measured in the same hyperfine runs, ROUNDS rounds of RUNS runs each,
# which one runs first alternating (on a shared machine the load drifts within a
# round). POSIX sh; the caller has `set -eu`, its work dir W, RUNS and ROUNDS.

# ab_bench NAME CMD_A CMD_B: prints NAME, each side's best median (ms) and A/B.
ab_bench() {
	name=$1 a=$2 b=$3
	: >"$W/medians"
	r=0
	while [ $r -lt "$ROUNDS" ]; do
		if [ $((r % 2)) -eq 0 ]; then set -- "$a" "$b"; else set -- "$b" "$a"; fi
		hyperfine -N --warmup 2 --runs "$RUNS" --export-json "$W/h.json" "$1" "$2" >"$W/h.log" 2>&1 ||
			{ cat "$W/h.log" >&2; exit 1; }
		python3 -c "import json; r = json.load(open('$W/h.json'))['results']; o = [0, 1] if $r % 2 == 0 else [1, 0]
print(r[o[0]]['median'], r[o[1]]['median'])" >>"$W/medians"
		r=$((r + 1))
	done
	python3 - "$name" "$W/medians" <<'PY'
import sys
rows = [tuple(map(float, l.split())) for l in open(sys.argv[2])]
a, b = min(r[0] for r in rows), min(r[1] for r in rows)  # each side's best round
print("%-26s %9.1f ms %9.1f ms %8.3f" % (sys.argv[1], a * 1000, b * 1000, a / b))
PY
}
