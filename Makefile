# berth - top-level entry points. Meson does the building; this file only
# names the steps a newcomer needs. See README.md.

BUILD ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 30
PYTEST ?= /usr/bin/python3 -m pytest
# Integration tests run in parallel processes, one test file per process at a time (pytest-xdist,
# --dist loadfile: a file's module fixtures stay in one process). They mostly wait on daemons,
# clusters and clients, so 4 processes on 2 cores cut the wall time to about a third. Every test is
# isolated (own roots, netns, cgroups, ports; the leak check is per process): TEST_JOBS=0 runs them
# serially.
TEST_JOBS ?= 4
PREFIX ?= /usr/local

.PHONY: all build asan deps run test unit unit-asan integration integration-asan bench fuzz lint format clean install

all: build

deps:
	@sh scripts/deps.sh

$(BUILD)/build.ninja:
	meson setup $(BUILD) --buildtype=debugoptimized

$(ASAN_BUILD)/build.ninja:
	meson setup $(ASAN_BUILD) --buildtype=debug -Db_sanitize=address,undefined -Db_lundef=false

build: $(BUILD)/build.ninja
	ninja -C $(BUILD)

asan: $(ASAN_BUILD)/build.ninja
	ninja -C $(ASAN_BUILD)

unit: build
	meson test -C $(BUILD) --print-errorlogs

unit-asan: asan
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		meson test -C $(ASAN_BUILD) --print-errorlogs

integration: build
	BERTH_BIN=$(CURDIR)/$(BUILD)/src/berth $(PYTEST) -ra $(if $(filter 0,$(TEST_JOBS)),,-n $(TEST_JOBS) --dist loadfile) tests/integration

# The integration tests against the sanitizer binary; any ASan/UBSan/LSan report fails the
# run. ASAN_TESTS picks files (default: all of them).
ASAN_TESTS ?= tests/integration
integration-asan: asan
	@sh scripts/integration-asan.sh $(ASAN_BUILD) $(if $(filter 0,$(TEST_JOBS)),,-n $(TEST_JOBS) --dist loadfile) $(ASAN_TESTS)

# What make test runs under the sanitizers: every file that drives the engine, runtime, registry,
# builder, CLI and network code with client and hostile input, plus the cluster server's API and
# bad-input file. The other cluster files run in the release
# build only (under ASan they would double the suite's time); their parsers (SigV4, awsJson, task
# definitions) are fuzz targets.
ASAN_CORE = $(filter-out tests/integration/test_cluster_%,$(wildcard tests/integration/test_*.py)) \
	tests/integration/test_cluster_server.py

# The README's test command: deps, release build + unit tests, sanitizer build + unit tests,
# the core integration files under ASan/UBSan, then every integration file under the release
# build. The last lines are pytest's summary.
test: deps
	$(MAKE) unit
	$(MAKE) unit-asan
	$(MAKE) integration-asan ASAN_TESTS="$(ASAN_CORE)"
	$(MAKE) integration

run: deps build
	@sh scripts/run.sh $(BUILD)/src/berth

bench: build
	@for b in bench/*.sh; do echo "== $$b"; sh $$b || exit 1; done

$(FUZZ_BUILD)/build.ninja:
	CC=clang meson setup $(FUZZ_BUILD) --buildtype=debugoptimized -Dfuzz=true -Dtests=disabled \
		-Db_sanitize=address,undefined -Db_lundef=false

fuzz: $(FUZZ_BUILD)/build.ninja
	ninja -C $(FUZZ_BUILD)
	@sh scripts/fuzz.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

lint: build
	@sh scripts/lint.sh $(BUILD)

format:
	@git ls-files '*.c' '*.h' | xargs clang-format -i

install: build
	install -Dm755 $(BUILD)/src/berth $(DESTDIR)$(PREFIX)/bin/berth
	install -Dm755 $(BUILD)/src/berth-shim $(DESTDIR)$(PREFIX)/bin/berth-shim
	ln -sf berth-shim $(DESTDIR)$(PREFIX)/bin/berth-runtime
	install -Dm644 docs/man/berth.1 $(DESTDIR)$(PREFIX)/share/man/man1/berth.1

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
