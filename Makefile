# The two commands of README.md:
#   make demo   installs the Debian packages, builds (Release) and runs the demo experiment
#   make test   installs the Debian packages, builds (Release) and runs the test suite
BUILD ?= build
JOBS ?= $(shell nproc)
CTEST_LABELS ?= cpu|mpi

.PHONY: setup configure build demo test bench baselines clean

setup:
	bash scripts/setup.sh

configure: setup
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release

build: configure
	cmake --build $(BUILD) -j $(JOBS)

demo: build
	bash scripts/demo.sh $(BUILD)

test: build
	ctest --test-dir $(BUILD) -L '$(CTEST_LABELS)' --output-on-failure -j $(JOBS)

# every attention variant and KV-cache policy side by side (scripts/baselines.sh; docs/attention.md)
baselines: build
	bash scripts/baselines.sh $(BUILD) configs/embedded/baselines.yaml
	PASSKEY_TASK= bash scripts/baselines.sh $(BUILD) configs/stories260k-baselines.yaml

bench: build
	$(BUILD)/bench/lminf_bench

clean:
	rm -rf $(BUILD)
