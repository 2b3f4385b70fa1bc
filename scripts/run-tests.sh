#!/usr/bin/env bash
# The whole test suite, as `make test` and CI run it (through scripts/with-stack.sh, which
# provides the PX_* stack environment):
#
#   (a) build   the sanitizer test build (build-asan: Debug, -Werror, ASan+UBSan) and the
#               normal build (build: RelWithDebInfo)
#   (b) unit    ctest in build-asan (LeakSanitizer on)
#   (c) e2e     pytest tests/e2e against the stack, proxy = build-asan/fastnext-proxy
#   (c2) regress PostgreSQL's regression SQL directly and through the proxy, diffed
#   (d) format  clang-format --dry-run --Werror over the C sources
#   (e) fuzz    libFuzzer targets (clang-14, build-fuzz), each for a bounded time
#
# Every step runs even when an earlier one failed. The last line printed is the summary:
#   SUMMARY: build 2/2 ok, unit 12/12 passed, e2e 40/41 passed, format ok, fuzz 2/2 ok — FAIL
# and the exit status is non-zero on any failure.
#
# Knobs: PX_JOBS [nproc], PX_FUZZ_SECONDS [20] per target, PX_E2E_TIMEOUT [2400] seconds,
# PX_TEST_OUT [<repo>/build-test-results] (junit files, logs, fuzz artifacts).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PY=/usr/bin/python3
JOBS="${PX_JOBS:-$(nproc)}"
FUZZ_SECONDS="${PX_FUZZ_SECONDS:-20}"
E2E_TIMEOUT="${PX_E2E_TIMEOUT:-2400}"
OUT="${PX_TEST_OUT:-$ROOT/build-test-results}"
CLANG_FORMAT="$(command -v clang-format-14 || command -v clang-format || true)"

export ASAN_OPTIONS="detect_leaks=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export PYTHONDONTWRITEBYTECODE=1
# Builds below are independent of a calling make (no jobserver, no "Entering directory").
unset MAKEFLAGS MFLAGS MAKELEVEL || true

hard="$(ulimit -Hn)"
if [[ "$hard" == unlimited ]] || ((hard >= 65536)); then
    ulimit -n 65536
else
    ulimit -n "$hard"
fi

rm -rf "$OUT"
mkdir -p "$OUT"

# Ctrl-C: steps that run under `timeout` (its own process group, so the terminal's SIGINT
# does not reach them) get the signal forwarded, so pytest can tear its fixtures (proxies)
# down; then we stop before the next step. with-stack.sh stops the stack.
interrupted=0
child=""
# shellcheck disable=SC2317  # invoked by the trap below
on_interrupt() {
    interrupted=1
    if [[ -n "$child" ]]; then
        kill -INT "$child" 2>/dev/null || true
    fi
}
trap on_interrupt INT TERM
check_interrupt() {
    if ((interrupted)); then
        echo "run-tests: interrupted" >&2
        exit 130
    fi
}
# run_interruptible CMD...: run CMD (a `timeout ...` command) in the background and wait for
# it even across signals; its exit status is left in $last_rc.
run_interruptible() {
    "$@" &
    child=$!
    while :; do
        last_rc=0
        wait "$child" || last_rc=$?
        kill -0 "$child" 2>/dev/null || break
    done
    child=""
}

header() {
    check_interrupt
    printf '\n======== %s ========\n' "$*"
}
note() { printf -- '--> %s\n' "$*"; }

if [[ -z "${PX_STACK_DIR:-}" || -z "${PX_PG_PORT:-}" ]]; then
    note "WARNING: no test stack environment (run me via scripts/with-stack.sh)"
fi

# junit_counts FILE [group]: prints "GROUP PASSED FAILED SKIPPED" lines. With "group", test
# names "unit/test_x" are counted under "unit" (ctest); without, all under "all" (pytest).
junit_counts() {
    "$PY" - "$@" <<'EOF'
import sys, xml.etree.ElementTree as ET
path = sys.argv[1]
group = len(sys.argv) > 2
res = {}
for tc in ET.parse(path).getroot().iter("testcase"):
    name = tc.get("name", "")
    key = (tc.get("classname", ""), name)
    g = name.split("/", 1)[0] if group and "/" in name else ("ctest" if group else "all")
    if tc.find("failure") is not None or tc.find("error") is not None:
        state = "failed"
    elif tc.find("skipped") is not None or tc.get("status") in ("notrun", "disabled"):
        # ctest marks a test it could not run (missing binary) "notrun" with a <skipped>.
        state = "failed" if (tc.get("status") == "notrun" and group) else "skipped"
    else:
        state = "passed"
    prev = res.get(key)
    if prev is None or prev[1] != "failed":  # a teardown error can repeat a test
        res[key] = (g, state)
counts = {}
for g, state in res.values():
    c = counts.setdefault(g, {"passed": 0, "failed": 0, "skipped": 0})
    c[state] += 1
for g in sorted(counts):
    c = counts[g]
    print(g, c["passed"], c["failed"], c["skipped"])
EOF
}

TOTAL_PASSED=0
TOTAL_FAILED=0
PARTS=()
OVERALL=0

fail_step() { OVERALL=1; }

# ---------------------------------------------------------------------------------------
# (a) build
# ---------------------------------------------------------------------------------------
builds_ok=0
builds_total=0
asan_built=0

header "build (a1): sanitizer test build in build-asan (Debug, PX_WERROR, PX_SANITIZE)"
builds_total=$((builds_total + 1))
if cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DPX_WERROR=ON -DPX_SANITIZE=ON \
    -DPX_FUZZ=OFF && cmake --build build-asan -j "$JOBS"; then
    builds_ok=$((builds_ok + 1))
    asan_built=1
    note "build-asan ok"
else
    note "build-asan FAILED"
fi

header "build (a2): normal build in build (RelWithDebInfo)"
builds_total=$((builds_total + 1))
if cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPX_WERROR=OFF -DPX_SANITIZE=OFF \
    -DPX_FUZZ=OFF && cmake --build build -j "$JOBS"; then
    builds_ok=$((builds_ok + 1))
    note "build ok"
else
    note "build FAILED"
fi
PARTS+=("build $builds_ok/$builds_total ok")
if ((builds_ok != builds_total)); then
    TOTAL_FAILED=$((TOTAL_FAILED + builds_total - builds_ok))
    fail_step
fi

# ---------------------------------------------------------------------------------------
# (b) unit tests (ctest in build-asan; tests are named unit/<file>, other prefixes such as
# loop/<file> are counted under their own name)
# ---------------------------------------------------------------------------------------
header "unit (b): ctest in build-asan (ASAN_OPTIONS=$ASAN_OPTIONS)"
shopt -s nullglob
unit_files=(tests/unit/test_*.c)
shopt -u nullglob
if [[ ! -f build-asan/CTestTestfile.cmake ]]; then
    note "build-asan is not configured; unit tests not run"
    PARTS+=("unit not run")
    TOTAL_FAILED=$((TOTAL_FAILED + 1))
    fail_step
else
    ctest_rc=0
    ctest --test-dir build-asan --output-on-failure -j "$JOBS" --no-tests=ignore \
        --output-junit "$OUT/ctest.xml" >"$OUT/ctest.log" 2>&1 || ctest_rc=$?
    if ((asan_built)); then
        cat "$OUT/ctest.log"
    else
        # Tests whose executable was not built only say so, at length: keep the verdicts.
        grep -E 'Test +#|tests passed|tests failed|^The following|^[[:space:]]+[0-9]+ - ' \
            "$OUT/ctest.log" || true
        note "(build-asan failed; full ctest output in $OUT/ctest.log)"
    fi
    if [[ -f "$OUT/ctest.xml" ]] && counts="$(junit_counts "$OUT/ctest.xml" group)"; then
        unit_seen=0
        while read -r g p f s; do
            [[ -n "$g" ]] || continue
            [[ "$g" == unit ]] && unit_seen=1
            part="$g $p/$((p + f)) passed"
            ((s > 0)) && part+=" ($s skipped)"
            PARTS+=("$part")
            TOTAL_PASSED=$((TOTAL_PASSED + p))
            TOTAL_FAILED=$((TOTAL_FAILED + f))
            ((f == 0)) || fail_step
        done <<<"$counts"
        if ((unit_seen == 0)); then
            if ((${#unit_files[@]} > 0)); then
                note "tests/unit has ${#unit_files[@]} test files but ctest ran no unit/ test"
                PARTS+=("unit 0/${#unit_files[@]} passed (not registered)")
                TOTAL_FAILED=$((TOTAL_FAILED + ${#unit_files[@]}))
                fail_step
            else
                note "no unit tests yet (tests/unit/test_*.c)"
                PARTS+=("unit 0/0 passed")
            fi
        fi
        if ((ctest_rc != 0)) && ((OVERALL == 0)); then
            note "ctest exited $ctest_rc"
            fail_step
        fi
    else
        note "ctest produced no results (exit $ctest_rc)"
        PARTS+=("unit ERROR")
        TOTAL_FAILED=$((TOTAL_FAILED + 1))
        fail_step
    fi
fi

# ---------------------------------------------------------------------------------------
# (c) end-to-end tests
# ---------------------------------------------------------------------------------------
header "e2e (c): pytest tests/e2e (PX_PROXY_BIN=build-asan/fastnext-proxy)"
e2e_tests="$(find tests/e2e -path tests/e2e/node_modules -prune -o -type f \
    \( -name 'test_*.py' -o -name '*_test.py' \) -print 2>/dev/null | head -n1)"
if [[ -z "$e2e_tests" ]]; then
    note "no end-to-end tests yet (tests/e2e/test_*.py): skipped"
    PARTS+=("e2e skipped (no tests)")
elif [[ ! -x build-asan/fastnext-proxy ]]; then
    note "build-asan/fastnext-proxy was not built: e2e tests not run"
    PARTS+=("e2e not run (no proxy binary)")
    TOTAL_FAILED=$((TOTAL_FAILED + 1))
    fail_step
else
    export PX_PROXY_BIN="$ROOT/build-asan/fastnext-proxy"
    run_interruptible timeout --kill-after=30 "$E2E_TIMEOUT" \
        "$PY" -m pytest tests/e2e tests/deploy -q -p no:cacheprovider -rA --junitxml="$OUT/e2e.xml"
    e2e_rc=$last_rc
    check_interrupt
    if ((e2e_rc == 124 || e2e_rc == 137)); then
        note "pytest timed out after ${E2E_TIMEOUT}s"
    fi
    if ((e2e_rc == 5)); then
        note "pytest collected no tests: skipped"
        PARTS+=("e2e skipped (no tests)")
    elif [[ -f "$OUT/e2e.xml" ]] && counts="$(junit_counts "$OUT/e2e.xml")"; then
        read -r _ p f s <<<"${counts:-all 0 0 0}"
        : "${p:=0}" "${f:=0}" "${s:=0}"
        part="e2e $p/$((p + f)) passed"
        ((s > 0)) && part+=" ($s skipped)"
        if ((e2e_rc != 0 && f == 0)); then
            part+=" (pytest exit $e2e_rc)"
            f=1
        fi
        PARTS+=("$part")
        TOTAL_PASSED=$((TOTAL_PASSED + p))
        TOTAL_FAILED=$((TOTAL_FAILED + f))
        ((f == 0)) || fail_step
    else
        note "pytest produced no results (exit $e2e_rc)"
        PARTS+=("e2e ERROR (pytest exit $e2e_rc)")
        TOTAL_FAILED=$((TOTAL_FAILED + 1))
        fail_step
    fi
fi

# ---------------------------------------------------------------------------------------
# (c2) PostgreSQL's regression SQL, directly and through the proxy (result cache on, with
# and without replicas), outputs compared; temp.sql is left out: it expects a brand-new
# backend after \c, which a pool does not give (tests/regress/README.md)
# ---------------------------------------------------------------------------------------
header "regress (c2): tests/regress/run.py --variants cache,replicas"
if [[ ! -x build-asan/fastnext-proxy ]]; then
    PARTS+=("regress not run (no proxy binary)")
    TOTAL_FAILED=$((TOTAL_FAILED + 1))
    fail_step
else
    mapfile -t regress_names < <(find tests/regress/sql -name '*.sql' -printf '%f\n' |
        sed 's/\.sql$//' | grep -vx temp | sort)
    run_interruptible timeout --kill-after=30 900 "$PY" tests/regress/run.py \
        --variants cache,replicas --out "$OUT/regress" \
        --proxy-bin "$ROOT/build-asan/fastnext-proxy" "${regress_names[@]}"
    regress_rc=$last_rc
    check_interrupt
    n_regress=$((${#regress_names[@]} * 2))
    if ((regress_rc == 0)); then
        PARTS+=("regress $n_regress/$n_regress identical")
        TOTAL_PASSED=$((TOTAL_PASSED + n_regress))
    else
        n_diff="$(find "$OUT/regress" -name '*.diff' 2>/dev/null | wc -l)"
        regress_diffs="$(find "$OUT/regress" -name '*.diff' 2>/dev/null | sort)"
        PARTS+=("regress $((n_regress - n_diff))/$n_regress identical (exit $regress_rc)")
        TOTAL_PASSED=$((TOTAL_PASSED + n_regress - n_diff))
        TOTAL_FAILED=$((TOTAL_FAILED + (n_diff > 0 ? n_diff : 1)))
        fail_step
    fi
fi

# ---------------------------------------------------------------------------------------
# (d) clang-format
# ---------------------------------------------------------------------------------------
header "format (d): clang-format --dry-run --Werror"
mapfile -d '' fmt_files < <(
    {
        find proxy admin include tests/unit tests/loop tests/fuzz -type f \
            \( -name '*.c' -o -name '*.h' \) -not -path 'tests/fuzz/corpus/*' -print0 \
            2>/dev/null
        find . -maxdepth 1 -type f \( -name '*.c' -o -name '*.h' \) -print0
    } | sort -z
)
if [[ -z "$CLANG_FORMAT" ]]; then
    note "clang-format not found"
    PARTS+=("format ERROR (no clang-format)")
    TOTAL_FAILED=$((TOTAL_FAILED + 1))
    fail_step
elif ((${#fmt_files[@]} == 0)); then
    note "no C sources to check"
    PARTS+=("format ok")
else
    if "$CLANG_FORMAT" --dry-run --Werror "${fmt_files[@]}" >"$OUT/format.txt" 2>&1; then
        note "${#fmt_files[@]} files formatted correctly ($("$CLANG_FORMAT" --version | head -n1))"
        PARTS+=("format ok")
    else
        bad="$(grep -oE '^[^:]+:[0-9]+:[0-9]+: error' "$OUT/format.txt" | cut -d: -f1 |
            sort -u)"
        nbad="$(grep -c . <<<"$bad" || true)"
        head -n 80 "$OUT/format.txt"
        note "badly formatted ($nbad of ${#fmt_files[@]} files; fix with: make format):"
        while read -r f; do echo "      $f"; done <<<"$bad"
        PARTS+=("format FAIL ($nbad files)")
        TOTAL_FAILED=$((TOTAL_FAILED + 1))
        fail_step
    fi
fi

# ---------------------------------------------------------------------------------------
# (e) libFuzzer targets
# ---------------------------------------------------------------------------------------
header "fuzz (e): libFuzzer targets (clang-14, build-fuzz, ${FUZZ_SECONDS}s each)"
shopt -s nullglob
fuzz_srcs=(tests/fuzz/fuzz_*.c)
shopt -u nullglob
if ((${#fuzz_srcs[@]} == 0)); then
    note "no fuzz targets yet (tests/fuzz/fuzz_*.c)"
    PARTS+=("fuzz none")
else
    fuzz_ok=0
    fuzz_total=${#fuzz_srcs[@]}
    # -fsanitize=fuzzer-no-link puts coverage instrumentation into pxcore too, so the
    # fuzzer is guided by the code under test, not just by the harness file.
    if CC=clang-14 cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang-14 \
        -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPX_FUZZ=ON -DPX_SANITIZE=ON -DPX_WERROR=OFF \
        -DCMAKE_C_FLAGS="-fsanitize=fuzzer-no-link"; then
        for src in "${fuzz_srcs[@]}"; do
            name="$(basename "$src" .c)"
            bin="build-fuzz/fuzz/$name"
            work="$OUT/fuzz/$name"
            mkdir -p "$work/corpus"
            if ! cmake --build build-fuzz -j "$JOBS" --target "$name"; then
                note "$name: build FAILED"
                continue
            fi
            args=(-max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048
                -print_final_stats=1 -artifact_prefix="$work/")
            # The target's own dictionary, else a shared one (first tests/fuzz/*.dict).
            for dict in "tests/fuzz/$name.dict" "tests/fuzz/dict/$name.dict" tests/fuzz/*.dict; do
                if [[ -f "$dict" ]]; then
                    args+=(-dict="$dict")
                    break
                fi
            done
            # New inputs go to the scratch corpus (first dir); the checked-in corpus is
            # only read.
            dirs=("$work/corpus")
            [[ -d "tests/fuzz/corpus/$name" ]] && dirs+=("tests/fuzz/corpus/$name")
            note "$name: ${args[*]} ${dirs[*]}"
            run_interruptible timeout --kill-after=30 $((FUZZ_SECONDS + 300)) "$bin" \
                "${args[@]}" "${dirs[@]}" >"$work.log" 2>&1
            check_interrupt
            if ((last_rc == 0)); then
                fuzz_ok=$((fuzz_ok + 1))
                note "$name: ok ($(grep -E '^(Done|#[0-9]+[[:space:]]+DONE)' "$work.log" |
                    tail -n1))"
            else
                tail -n 60 "$work.log"
                note "$name: FAILED (log: $work.log, crash inputs: $work/)"
            fi
        done
    else
        note "configuring build-fuzz FAILED"
    fi
    PARTS+=("fuzz $fuzz_ok/$fuzz_total ok")
    TOTAL_PASSED=$((TOTAL_PASSED + fuzz_ok))
    if ((fuzz_ok != fuzz_total)); then
        TOTAL_FAILED=$((TOTAL_FAILED + fuzz_total - fuzz_ok))
        fail_step
    fi
fi

# ---------------------------------------------------------------------------------------
# summary: the plain "N passed, N failed" line, then the summary as the very last line
# ---------------------------------------------------------------------------------------
summary="$(printf '%s, ' "${PARTS[@]}")"
summary="${summary%, }"
verdict=PASS
((OVERALL == 0)) || verdict=FAIL
check_interrupt
# What failed, again at the end where a truncated log still shows it: the regress
# differences (first lines of each diff).
if [[ -n "${regress_diffs:-}" ]]; then
    header "regress differences"
    while read -r d; do
        note "${d#"$OUT/"}"
        head -n 40 "$d"
    done <<<"$regress_diffs"
fi
header "summary"
echo "TOTAL: $TOTAL_PASSED passed, $TOTAL_FAILED failed"
echo "SUMMARY: $summary — $verdict"
exit "$OVERALL"
