# The two commands of README.md:
#   make demo   installs the Debian packages, builds (Release) and runs the demo experiment
#   make test   installs the Debian packages, builds (Release) and runs the test suite
BUILD ?= build
JOBS ?= $(shell nproc)
CTEST_LABELS ?= cpu|mpi

.PHONY: setup configure build demo test bench baselines clean fuzz fuzz-build asan-test

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

# ASan + UBSan + libFuzzer build (clang) in its own folder (docs/fuzzing.md); the default build is unchanged.
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 600
FUZZ_TARGETS ?= safetensors model_config experiment_spec tokenizer sequence_source h5_readers
FUZZ_ENV = ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=1:abort_on_error=1 \
           UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

fuzz-build: setup
	cmake -S . -B $(FUZZ_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_COMPILER=clang \
	  -DCMAKE_CXX_COMPILER=clang++ -DLMINF_FUZZ=ON -DLMINF_BUILD_TESTS=$(if $(FUZZ_TESTS),ON,OFF)
	env $(FUZZ_ENV) cmake --build $(FUZZ_BUILD) -j $(JOBS) --target $(addsuffix _fuzz,$(FUZZ_TARGETS)) $(FUZZ_EXTRA_TARGETS)

# Each target FUZZ_SECONDS seconds from its seeds (fuzz/corpus/NAME) and its working corpus
# ($(FUZZ_BUILD)/fuzz/corpus-NAME); a finding stops the run and leaves crash-* / timeout-* here.
fuzz: fuzz-build
	set -e; for t in $(FUZZ_TARGETS); do \
	  mkdir -p $(FUZZ_BUILD)/fuzz/corpus-$$t; \
	  env $(FUZZ_ENV) $(FUZZ_BUILD)/fuzz/$${t}_fuzz -max_total_time=$(FUZZ_SECONDS) -timeout=20 \
	    -rss_limit_mb=4096 -print_final_stats=1 $(FUZZ_BUILD)/fuzz/corpus-$$t fuzz/corpus/$$t; \
	done

# The cpu test label under ASan + UBSan (the fuzz build folder, tests on).
asan-test:
	$(MAKE) fuzz-build FUZZ_TESTS=1 FUZZ_TARGETS= FUZZ_EXTRA_TARGETS=all
	env $(FUZZ_ENV) ctest --test-dir $(FUZZ_BUILD) -L cpu --output-on-failure -j $(JOBS)

clean:
	rm -rf $(BUILD)
