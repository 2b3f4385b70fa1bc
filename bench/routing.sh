#!/usr/bin/env bash
# What routing costs and what it buys (issue 4): pgbench select-only through the proxy
#   off      no replicas configured (routing off)
#   forced   both stack replicas configured, every read forced to the primary with a
#            /* fastnext: primary */ hint: the whole routing decision, none of the benefit
#   replicas both replicas configured, reads spread over them
# The same script text (with the hint) runs in every target, the result cache is off.
# Medians of BENCH_RUNS runs of BENCH_SECONDS, targets alternated; queries per member from
# pg_stat_database on each member. Writes bench/results/routing-<time>.md.
#
#   scripts/with-stack.sh bench/routing.sh       (or: make bench-routing)
#
# Knobs: BENCH_SECONDS (5) BENCH_RUNS (3) BENCH_CLIENTS ("16 64") BENCH_MODES
# ("simple extended") BENCH_WORKERS (2) PX_PROXY_BIN (build/fastnext-proxy)
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_load_env

SECS="${BENCH_SECONDS:-5}"
RUNS="${BENCH_RUNS:-3}"
CLIENTS="${BENCH_CLIENTS:-16 64}"
MODES="${BENCH_MODES:-simple extended}"
DB=fnx
REPLICAS="127.0.0.1:$PX_PG_REPLICA1_PORT,127.0.0.1:$PX_PG_REPLICA2_PORT"
OUT="$ROOT/bench/results/routing-$(date +%Y%m%d-%H%M%S).md"
mkdir -p "$ROOT/bench/results"

"$PSQL" -h 127.0.0.1 -p "$PX_PG_PORT" -U fnx -d "$DB" -Atqc \
    "SELECT 1 FROM pgbench_accounts LIMIT 1" >/dev/null 2>&1 ||
    "$PGBENCH" -i -q -s 1 -h 127.0.0.1 -p "$PX_PG_PORT" -U fnx "$DB" >/dev/null 2>&1
NACC="$("$PSQL" -h 127.0.0.1 -p "$PX_PG_PORT" -U fnx -d "$DB" -Atqc "SELECT count(*) FROM pgbench_accounts")"
for p in "$PX_PG_REPLICA1_PORT" "$PX_PG_REPLICA2_PORT"; do # the replicas have the rows
    for _ in $(seq 50); do
        n="$("$PSQL" -h 127.0.0.1 -p "$p" -U fnx -d "$DB" -Atqc "SELECT count(*) FROM pgbench_accounts" 2>/dev/null || true)"
        [[ "$n" == "$NACC" ]] && break
        sleep 0.2
    done
done
printf '\\set aid random(1, %d)\nSELECT abalance FROM pgbench_accounts WHERE aid = :aid /* fastnext: primary */;\n' \
    "$NACC" >"$BENCH_TMP/forced.sql"
printf '\\set aid random(1, %d)\nSELECT abalance FROM pgbench_accounts WHERE aid = :aid;\n' \
    "$NACC" >"$BENCH_TMP/plain.sql"

# xact_commit of database fnx on each member
member_counts() {
    local p
    for p in "$PX_PG_PORT" "$PX_PG_REPLICA1_PORT" "$PX_PG_REPLICA2_PORT"; do
        "$PSQL" -h 127.0.0.1 -p "$p" -U fnx -d "$DB" -Atqc \
            "SELECT xact_commit FROM pg_stat_database WHERE datname = '$DB'"
    done | tr '\n' ' '
}

start_target() { # off | forced | replicas
    [[ -n "${PROXY_PID:-}" ]] && stop_pid "$PROXY_PID"
    if [[ "$1" == off ]]; then
        BENCH_PROXY_ENV="POSTGRES_USER=fnx" start_proxy
    else
        BENCH_PROXY_ENV="POSTGRES_USER=fnx POSTGRES_READ_REPLICAS=$REPLICAS" start_proxy
        sleep 2 # the first health round makes the replicas usable
    fi
}

declare -A TPS MEMBERS
for mode in $MODES; do
    for c in $CLIENTS; do
        for run in $(seq "$RUNS"); do
            targets=(off forced replicas)
            ((run % 2 == 0)) && targets=(replicas forced off)
            for t in "${targets[@]}"; do
                start_target "$t"
                script="$BENCH_TMP/forced.sql"
                [[ "$t" == replicas ]] && script="$BENCH_TMP/plain.sql"
                read -r -a before <<<"$(member_counts)"
                tps="$("$PGBENCH" -n -M "$mode" -c "$c" -j 2 -T "$SECS" -f "$script" \
                    -h 127.0.0.1 -p "$PX_PROXY_PORT" -U fnx "$DB" 2>&1 |
                    sed -n 's/^tps = \([0-9.]*\).*/\1/p')"
                read -r -a after <<<"$(member_counts)"
                TPS["$mode/$c/$t"]+="${tps:-0} "
                MEMBERS["$mode/$c/$t"]="$((after[0] - before[0])) $((after[1] - before[1])) $((after[2] - before[2]))"
                log "$mode c=$c run $run $t: $tps TPS (primary/replica1/replica2 commits: ${MEMBERS["$mode/$c/$t"]})"
            done
        done
    done
done
[[ -n "${PROXY_PID:-}" ]] && stop_pid "$PROXY_PID"

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
{
    echo "# Routing cost and benefit ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs)"
    echo
    echo "pgbench select-only (scale 1) through the proxy, result cache off, medians of $RUNS runs of ${SECS} s,"
    echo "targets alternated. \`forced\`: both replicas configured, every read routed with a"
    echo "\`/* fastnext: primary */\` hint (the routing decision is made and goes to the primary)."
    echo
    echo "| mode | clients | off TPS | forced TPS | forced / off | replicas TPS | replicas / off | queries primary / r1 / r2 (replicas run) |"
    echo "|---|---|---|---|---|---|---|---|"
    for mode in $MODES; do
        for c in $CLIENTS; do
            off="$(echo "${TPS["$mode/$c/off"]}" | median)"
            forced="$(echo "${TPS["$mode/$c/forced"]}" | median)"
            rep="$(echo "${TPS["$mode/$c/replicas"]}" | median)"
            printf '| %s | %s | %.0f | %.0f | %.2f× | %.0f | %.2f× | %s |\n' "$mode" "$c" "$off" "$forced" \
                "$(echo "$forced / $off" | bc -l)" "$rep" "$(echo "$rep / $off" | bc -l)" \
                "$(echo "${MEMBERS["$mode/$c/replicas"]}" | tr ' ' '/')"
        done
    done
    echo
    echo "Target (issue 4): forced / off ≥ 0.90 (the routing decision costs at most 10%)."
} | tee "$OUT"
log "wrote $OUT"
