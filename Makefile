# Front door: `make serve` and `make test` work on a fresh machine (see README.md).
BUILD_DIR ?= build
GENERATOR := $(shell command -v ninja >/dev/null 2>&1 && echo "-G Ninja")
JOBS ?= $(shell nproc)
SERVE_ARGS ?=

.PHONY: deps configure build serve test python clean

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

# The Python package into the current Python (docs/python.md): a wheel built by scikit-build-core.
python: deps
	python3 -m pip install --no-build-isolation ./python \
	  || python3 -m pip install --no-build-isolation --break-system-packages ./python

clean:
	rm -rf $(BUILD_DIR)
