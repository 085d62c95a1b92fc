# Front door: `make serve` and `make test` work on a fresh machine (see README.md).
BUILD_DIR ?= build
GENERATOR := $(shell command -v ninja >/dev/null 2>&1 && echo "-G Ninja")
JOBS ?= $(shell nproc)
SERVE_ARGS ?=

.PHONY: deps configure build serve test test-sanitize test-asan test-tsan python clean

deps:
	./scripts/install-deps.sh

configure: deps
	cmake -S . -B $(BUILD_DIR) $(GENERATOR) -DCMAKE_BUILD_TYPE=Release

build: configure
	cmake --build $(BUILD_DIR) -j $(JOBS)

serve: build
	./scripts/serve-default.sh $(BUILD_DIR) $(SERVE_ARGS)

test: build
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS)

# Sanitizer builds (docs/testing.md: times, and why CI runs only `make test`), each in its own
# folder, CPU-only, -O1 (SANITIZE_OPT=-O0 builds in half the time, runs slower), building only
# what they run: ASan + UBSan over every unit suite (target sable_unit_tests), TSan over the
# suites with threads (scheduler, engine, embedder, server). clang
# when installed (it compiles them about a third faster than gcc). ccache keys leave out the build
# folder (CCACHE_NOHASHDIR), so another checkout reuses the objects. `make test` runs the part that
# fits CI (ctest label sanitize: the scheduler's suites, cmake/SableSanitizedSuites.cmake).
ASAN_DIR ?= build-asan
TSAN_DIR ?= build-tsan
SANITIZE_CC ?= $(shell command -v clang >/dev/null 2>&1 && echo clang || echo cc)
SANITIZE_CXX ?= $(shell command -v clang++ >/dev/null 2>&1 && echo clang++ || echo c++)
SANITIZE_OPT ?= -O1
SANITIZE_FLAGS := -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSABLE_CUDA=OFF -DSABLE_PYTHON=OFF \
	-DCMAKE_C_COMPILER=$(SANITIZE_CC) -DCMAKE_CXX_COMPILER=$(SANITIZE_CXX) \
	-DSABLE_SANITIZE_OPT=$(SANITIZE_OPT)
TSAN_TESTS := scheduler_test engine_test embedding_test server_http_test server_connection_test \
	server_api_test
TSAN_RUN_OPTIONS := halt_on_error=1:second_deadlock_stack=1:suppressions=$(CURDIR)/tests/sanitize/tsan.supp

test-sanitize test-asan test-tsan: export CCACHE_NOHASHDIR := 1
test-sanitize: test-asan test-tsan

test-asan: deps
	cmake -S . -B $(ASAN_DIR) $(GENERATOR) $(SANITIZE_FLAGS) -DSABLE_SANITIZE=address
	cmake --build $(ASAN_DIR) -j $(JOBS) --target sable_unit_tests
	cd $(ASAN_DIR) && UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest -L unit --output-on-failure -j $(JOBS)

test-tsan: deps
	cmake -S . -B $(TSAN_DIR) $(GENERATOR) $(SANITIZE_FLAGS) -DSABLE_SANITIZE=thread
	cmake --build $(TSAN_DIR) -j $(JOBS) --target sable_plugins $(TSAN_TESTS)
	for t in $(TSAN_TESTS); do \
	  TSAN_OPTIONS=$(TSAN_RUN_OPTIONS) $(TSAN_DIR)/tests/$$t || exit 1; \
	done

# The Python package into the current Python (docs/python.md): a wheel built by scikit-build-core.
python: deps
	python3 -m pip install --no-build-isolation ./python \
	  || python3 -m pip install --no-build-isolation --break-system-packages ./python

clean:
	rm -rf $(BUILD_DIR)
