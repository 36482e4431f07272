#!/bin/sh
# make lint: clang-format check and cppcheck over our sources.
set -eu
BUILD=${1:-build}
files=$(git ls-files '*.c' '*.h')
echo "== clang-format"
clang-format --dry-run --Werror $files
echo "== cppcheck"
cppcheck --quiet --error-exitcode=1 --std=c11 --enable=warning,portability \
	--inline-suppr --suppress=missingIncludeSystem -D_GNU_SOURCE -D__CPPCHECK__=1 -Isrc \
	--suppress=syntaxError --suppress=varFuncNullUB --suppress=unknownMacro --suppress=preprocessorErrorDirective \
	src tests/unit tests/fuzz
echo "lint: clean"
