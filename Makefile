# fastnext-proxy — top-level entry points. The build itself is CMake (CMakeLists.txt).
#
#   make deps    install missing Debian packages and the node e2e client (scripts/deps.sh)
#   make build   configure + build into build/ (binary: build/fastnext-proxy)
#   make test    full suite on a throwaway PostgreSQL+replicas+Redis stack; ends with SUMMARY
#   make run     stack + proxy on 127.0.0.1:6432 (admin :9930); Ctrl-C stops everything
#   make bench   benchmark (bench/run.sh) on a throwaway stack
#   make bench-cache  result-cache benchmark (bench/cache.sh) on a throwaway stack
#   make format  clang-format -i the C sources
#   make clean   remove build trees, test results and a leftover default stack

SHELL := /bin/bash
JOBS ?= 2
CLANG_FORMAT ?= $(shell command -v clang-format-14 || command -v clang-format)

FORMAT_DIRS := proxy admin include tests/unit tests/loop tests/fuzz
FORMAT_SRCS = $(sort $(shell find $(FORMAT_DIRS) -type f \( -name '*.c' -o -name '*.h' \) \
	-not -path 'tests/fuzz/corpus/*' 2>/dev/null) $(wildcard *.c *.h))

.PHONY: all deps build test run bench bench-cache bench-routing format clean

all: build

deps:
	@scripts/deps.sh

build:
	cmake -S . -B build && cmake --build build -j$(JOBS)

test: deps
	@scripts/with-stack.sh scripts/run-tests.sh

run: deps build
	@scripts/run.sh

bench: deps build
	@scripts/with-stack.sh bench/run.sh

bench-cache: deps build
	@scripts/with-stack.sh bench/cache.sh

bench-routing: deps build
	@scripts/with-stack.sh bench/routing.sh

format:
	@if [ -n "$(strip $(FORMAT_SRCS))" ]; then $(CLANG_FORMAT) -i $(FORMAT_SRCS); fi

clean:
	@if [ -f .stack/.fastnext-stack ]; then scripts/stack.sh stop; fi
	rm -rf build build-asan build-fuzz build-test-results
