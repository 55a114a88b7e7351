# shelf.nvim: `make` builds shelfd into bin/ (where the plugin looks for it),
# `make run` opens Neovim on a demo library, `make test` runs every test.
# The build itself never installs anything; `run` and `test` install missing
# Debian packages first (scripts/deps.sh says what).
JOBS ?= 2
BUILD := build
VERSION := $(shell git describe --always --dirty 2>/dev/null || echo dev)

.PHONY: all shelfd run test bench soak deps-build deps-run deps-test deps-bench clean

all: shelfd

shelfd:
	@command -v cmake >/dev/null && command -v pkg-config >/dev/null && \
	  pkg-config --exists libuv msgpack libcjson sqlite3 libcurl libwebsockets openssl || { \
	  echo "shelf: missing build tools or libraries; install them with:"; \
	  echo "  sudo apt-get install cmake make gcc pkg-config libuv1-dev libmsgpack-dev libcjson-dev libsqlite3-dev libcurl4-openssl-dev libwebsockets-dev libwebsockets-evlib-uv libssl-dev"; \
	  echo "(or run 'make run' / 'make test', which install them)"; exit 1; }
	cmake -S . -B $(BUILD)/release -DCMAKE_BUILD_TYPE=Release -DSHELF_VERSION=$(VERSION) >/dev/null
	cmake --build $(BUILD)/release -j$(JOBS) --target shelfd
	@mkdir -p bin && cp $(BUILD)/release/shelfd bin/shelfd.tmp && mv bin/shelfd.tmp bin/shelfd
	@echo "shelf: built bin/shelfd"

deps-build deps-run deps-test deps-bench: deps-%:
	@scripts/deps.sh $*

run: deps-run
	@$(MAKE) --no-print-directory shelfd
	@scripts/run.sh

# The libFuzzer targets need clang: they build in $(BUILD)/fuzz, and the test
# build runs each for FUZZ_SECONDS (fuzz/run.sh).
FUZZ_SECONDS ?= 20
test: deps-test
	@$(MAKE) --no-print-directory shelfd
	cmake -S . -B $(BUILD)/fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug \
	  -DSHELF_FUZZ=ON >/dev/null
	cmake --build $(BUILD)/fuzz -j$(JOBS) --target fuzz
	cmake -S . -B $(BUILD)/test -DCMAKE_BUILD_TYPE=Debug -DSHELF_TESTS=ON \
	  -DSHELF_SANITIZE=ON -DSHELF_WERROR=ON -DSHELF_VERSION=$(VERSION) \
	  -DSHELF_PLAIN_HELPER=$(CURDIR)/$(BUILD)/release/shelfd \
	  -DSHELF_FUZZ_BIN=$(CURDIR)/$(BUILD)/fuzz -DSHELF_FUZZ_SECONDS=$(FUZZ_SECONDS) >/dev/null
	cmake --build $(BUILD)/test -j$(JOBS)
	cd $(BUILD)/test && ctest --output-on-failure -j$(JOBS) $(if $(T),-R '$(T)',)

# Benchmarks print figures; they assert nothing. QUICK=1 runs the small sizes
# only (under a minute). A full run rewrites bench/RESULTS.md and its plot.
bench: deps-bench
	cmake -S . -B $(BUILD)/bench -DCMAKE_BUILD_TYPE=Release -DSHELF_VERSION=$(VERSION) >/dev/null
	cmake --build $(BUILD)/bench -j$(JOBS) --target shelfd
	SHELF_BENCH_HELPER=$(CURDIR)/$(BUILD)/bench/shelfd QUICK=$(QUICK) bench/run.sh

# The long forms of the reliability tests (chaos, faults with long outages,
# fuzzing for minutes); `make test` runs their quick forms.
soak: test
	tests/soak/run.sh $(CURDIR)/$(BUILD)

clean:
	rm -rf $(BUILD) bin
