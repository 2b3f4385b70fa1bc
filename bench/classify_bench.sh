#!/usr/bin/env bash
# Classifier micro-benchmark (issue #4): cached verdict <= 1 us, cold parse of a typical
# ORM statement <= 50 us. Builds bench/classify_bench.c together with proxy/classify.c
# using the release flags of the CMake build (RelWithDebInfo: -O2 -g -DNDEBUG, C11,
# _GNU_SOURCE) and runs it. Extra arguments go to the benchmark (--no-check: print only).
#
#   bench/classify_bench.sh [--no-check]
#
# Environment: CC [cc], PX_BENCH_OUT [a temporary directory] where the binary goes.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CC="${CC:-cc}"
OUT="${PX_BENCH_OUT:-$(mktemp -d /tmp/classify-bench.XXXXXX)}"
mkdir -p "$OUT"

PGQ_LIB=""
for cand in /usr/lib/x86_64-linux-gnu/libpg_query.a /usr/lib/libpg_query.a /usr/local/lib/libpg_query.a; do
    if [[ -f "$cand" ]]; then
        PGQ_LIB="$cand"
        break
    fi
done
if [[ -z "$PGQ_LIB" ]]; then
    PGQ_LIB="-lpg_query"
fi

"$CC" -std=c11 -O2 -g -DNDEBUG -D_GNU_SOURCE \
    -Wall -Wextra -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 -Wundef -Wpointer-arith \
    -Wshadow -Wno-unused-parameter -Wno-missing-field-initializers -fno-strict-aliasing \
    $(pkg-config --cflags libprotobuf-c 2>/dev/null || true) \
    -I"$ROOT/include" -I"$ROOT/proxy" \
    "$ROOT/bench/classify_bench.c" "$ROOT/proxy/classify.c" \
    "$PGQ_LIB" -lpthread -lm -o "$OUT/classify_bench"

echo "classify_bench: $(nproc) cores, $(uname -m), $("$CC" --version | head -n1)"
exec "$OUT/classify_bench" "$@"
