# Front door: `make serve` and `make test` work on a fresh machine (see README.md).
BUILD_DIR ?= build
GENERATOR := $(shell command -v ninja >/dev/null 2>&1 && echo "-G Ninja")
JOBS ?= $(shell nproc)
SERVE_ARGS ?=

.PHONY: deps configure build serve test test-sanitize python clean

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

# Sanitizer builds, each in its own folder (slow; `make test` runs none of it). ASan + UBSan over
# every unit suite; TSan over the suites with threads: scheduler, engine, embedder, server.
ASAN_DIR ?= build-asan
TSAN_DIR ?= build-tsan
SANITIZE_FLAGS := -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSABLE_CUDA=OFF -DSABLE_PYTHON=OFF
TSAN_TESTS := scheduler_test engine_test embedding_test server_http_test server_connection_test \
	server_api_test

test-sanitize: deps
	cmake -S . -B $(ASAN_DIR) $(GENERATOR) $(SANITIZE_FLAGS) -DSABLE_SANITIZE=address
	cmake --build $(ASAN_DIR) -j $(JOBS)
	cd $(ASAN_DIR) && UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest -L unit --output-on-failure -j $(JOBS)
	cmake -S . -B $(TSAN_DIR) $(GENERATOR) $(SANITIZE_FLAGS) -DSABLE_SANITIZE=thread
	cmake --build $(TSAN_DIR) -j $(JOBS)
	for t in $(TSAN_TESTS); do \
	  TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 $(TSAN_DIR)/tests/$$t || exit 1; \
	done

# The Python package into the current Python (docs/python.md): a wheel built by scikit-build-core.
python: deps
	python3 -m pip install --no-build-isolation ./python \
	  || python3 -m pip install --no-build-isolation --break-system-packages ./python

clean:
	rm -rf $(BUILD_DIR)
