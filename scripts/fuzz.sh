#!/bin/sh
# Run every libFuzzer target in BUILD for SECONDS each, seeded from
# tests/fuzz/corpus/<target>/ when present, with tests/fuzz/dict/<target>.dict
# when present. Crashes land in BUILD/fuzz-artifacts.
set -eu
BUILD=$1
SECONDS_EACH=${2:-30}
ART="$BUILD/fuzz-artifacts"
mkdir -p "$ART"
status=0
for t in "$BUILD"/tests/fuzz/fuzz-*; do
	[ -f "$t" ] && [ -x "$t" ] || continue
	name=$(basename "$t")
	corpus="$BUILD/fuzz-corpus/$name"
	mkdir -p "$corpus"
	seeds=""
	[ -d "tests/fuzz/corpus/$name" ] && seeds="tests/fuzz/corpus/$name"
	dict=""
	[ -f "tests/fuzz/dict/$name.dict" ] && dict="-dict=tests/fuzz/dict/$name.dict"
	echo "== $name (${SECONDS_EACH}s)"
	if ! "$t" -max_total_time="$SECONDS_EACH" -artifact_prefix="$ART/$name-" \
		-print_final_stats=1 $dict "$corpus" $seeds 2>"$ART/$name.log"; then
		echo "FAIL $name: see $ART/$name.log"
		tail -30 "$ART/$name.log"
		status=1
	else
		grep -E 'stat::number_of_executed_units' "$ART/$name.log" || true
	fi
done
exit $status
