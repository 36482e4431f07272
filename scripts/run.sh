#!/bin/sh
# make run: start berth with its embedded defaults. At this stage of the
# project berth has no daemon yet; this prints what the binary offers.
set -eu
BIN=${1:-build/src/berth}
"$BIN" --version
"$BIN" --help
