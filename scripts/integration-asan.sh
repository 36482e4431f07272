#!/bin/sh
# Run the integration tests against the ASan/UBSan binary. Tests capture the
# binary's stderr, so sanitizer reports go to files (log_path) instead, and
# any report fails the run even when every test passed. UBSan (GCC, combined
# with ASan) ignores log_path and prints to stderr, so halt_on_error=1 makes
# each of its reports fail the command (and so the test) instead.
# usage: integration-asan.sh BUILD_DIR [pytest args...] [tests/integration/FILE...]
# (the whole of tests/integration unless test paths are given)
set -u
BUILD=$1
shift
WHAT=tests/integration
for a in "$@"; do
	case $a in tests/*) WHAT= ;; esac
done
LOGS=$(mktemp -d /tmp/berth-asan-logs-XXXXXX)
# conftest.py names each report file after the test that started the process
BERTH_SANITIZER_LOGS=$LOGS \
BERTH_BIN="$PWD/$BUILD/src/berth" \
ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:log_path=$LOGS/asan" \
UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$LOGS/ubsan" \
	/usr/bin/python3 -m pytest -ra "$@" $WHAT
status=$?
if [ -n "$(ls -A "$LOGS")" ]; then
	# one line per report first (test, error, the first frames), then each report whole
	echo "sanitizer reports (test.pid: error | top frames):"
	for f in "$LOGS"/*; do
		printf '%s: %s | %s\n' "${f##*/}" \
			"$(grep -m1 -E 'ERROR|runtime error|WARNING' "$f" | sed 's/^==[0-9]*==//')" \
			"$(grep -E '^ +#[0-9]+ ' "$f" | grep -v libsanitizer |
				head -6 | sed -E 's/^ +#[0-9]+ 0x[0-9a-f]+ in //; s/ \(.*//' | tr '\n' '<')"
	done
	for f in "$LOGS"/*; do
		echo "== $f"
		cat "$f"
	done
	status=1
fi
rm -rf "$LOGS"
exit $status
