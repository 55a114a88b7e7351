# shelf.nvim: `make` builds shelfd into bin/ (where the plugin looks for it),
# `make run` opens Neovim on a demo library, `make test` runs every test.
# `make` also builds doc/tags, so `:help shelf` works without `:helptags`.
# The build itself never installs anything; `run` and `test` install missing
# Debian packages first (scripts/deps.sh says what).
JOBS ?= 2
BUILD := build
VERSION := $(shell git describe --always --dirty 2>/dev/null || echo dev)

# The Neovim end-to-end tests run on Debian's nvim and on each Neovim build in
# $(SHARED)/nvim (test-only files beside the project; cmake/nvims.cmake), or on
# one Neovim only: `make test NVIM=/path/to/nvim`. Only NVIM given on the
# command line counts: inside a Neovim terminal $NVIM is the editor's socket.
SHARED ?= ../shared
TEST_NVIM := $(if $(filter command line,$(origin NVIM)),$(NVIM),)

.PHONY: all shelfd run test bench soak deps-build deps-run deps-test deps-bench clean

all: shelfd doc/tags

# Help tags as plugin managers make them. Without a Neovim here, say how.
doc/tags: doc/shelf.txt
	@if command -v nvim >/dev/null; then \
	  nvim --headless -u NONE -i NONE -n \
	    -c 'try | helptags doc | catch | echo v:exception | cquit 1 | endtry' -c 'qa!' && \
	  echo "shelf: built doc/tags"; \
	else echo "shelf: no nvim on PATH, doc/tags not built: run :helptags ALL in Neovim once"; fi

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
	@$(MAKE) --no-print-directory all
	@SHELF_NVIM=$(TEST_NVIM) scripts/run.sh

# The libFuzzer targets need clang: they build in $(BUILD)/fuzz, and the test
# build runs each for FUZZ_SECONDS (fuzz/run.sh).
FUZZ_SECONDS ?= 20
test: deps-test
	@$(MAKE) --no-print-directory all
	cmake -S . -B $(BUILD)/fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug \
	  -DSHELF_FUZZ=ON >/dev/null
	cmake --build $(BUILD)/fuzz -j$(JOBS) --target fuzz
	cmake -S . -B $(BUILD)/test -DCMAKE_BUILD_TYPE=Debug -DSHELF_TESTS=ON \
	  -DSHELF_SANITIZE=ON -DSHELF_WERROR=ON -DSHELF_VERSION=$(VERSION) \
	  -DSHELF_PLAIN_HELPER=$(CURDIR)/$(BUILD)/release/shelfd \
	  -DSHELF_FUZZ_BIN=$(CURDIR)/$(BUILD)/fuzz -DSHELF_FUZZ_SECONDS=$(FUZZ_SECONDS) \
	  -DSHELF_NVIM=$(TEST_NVIM) -DSHELF_SHARED=$(abspath $(SHARED)) >/dev/null
	cmake --build $(BUILD)/test -j$(JOBS)
	cd $(BUILD)/test && ctest --output-on-failure -j$(JOBS) $(if $(T),-R '$(T)',)

# Benchmarks print figures; they assert nothing. QUICK=1 runs the small sizes
# only (about two minutes). A full run (the 100k libraries, the Supabase stack
# and the emulated link: 41 minutes once on a busy 2-core machine, less on a
# quiet one) rewrites bench/RESULTS.md and its plot.
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
