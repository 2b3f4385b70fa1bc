#!/usr/bin/env bash
# Result-cache benchmark: a read-heavy pgbench workload (Zipf-distributed primary-key reads
# over the 100,000 rows of pgbench_accounts, scale 1) against PostgreSQL directly, through
# fastnext-proxy with the result cache off and through fastnext-proxy with it on,
# alternating the three targets from run to run. Reports TPS, p50/p95/p99 latency, the
# cache hit ratio, the statements the cache saved PostgreSQL, and the two targets of the
# issue: hit ratio >= 85% on the 90/10 workload, select-only cached TPS >= 5x direct.
#
#   make bench-cache                (= scripts/with-stack.sh bench/cache.sh)
#   BENCH_SECONDS=3 BENCH_RUNS=1 BENCH_MODES=simple make bench-cache
#   source $PX_STACK_DIR/env.sh; bench/cache.sh          (a stack that is already running)
#
# Workloads: select = bench/cache/read.sql alone; mixed = read.sql@9 + write.sql@1.
# Knobs (defaults): BENCH_SECONDS (5) BENCH_RUNS (3) BENCH_CLIENTS ("16 64")
# BENCH_MODES ("simple extended prepared") BENCH_WORKLOADS ("select mixed")
# BENCH_TARGETS ("direct nocache cache") BENCH_JOBS (2) BENCH_WARMUP (1 s per workload,
# mode and target, 0 = none) BENCH_ZIPF (1.1) BENCH_CACHE_SCALE (1) BENCH_LOG_SAMPLING (0.1)
# BENCH_WORKERS (2) BENCH_POOL_SIZE (20) BENCH_CACHE_MAX_SIZE (256mb) BENCH_CACHE_TTL (300)
# BENCH_CACHE_REDIS (0; 1 = give the proxy the stack's Redis as REDIS_HOST/REDIS_PORT)
# BENCH_NOCACHE_PORT ($PX_PGBOUNCER_PORT) BENCH_NOCACHE_ADMIN_PORT ($PX_ADMIN_PORT + 1)
# BENCH_PROXY_LOG_LEVEL (warn) BENCH_CACHE_OUT (bench/results/cache-<timestamp>, a prefix)
# BENCH_KEEP_TMP PX_PROXY_BIN (build/fastnext-proxy)
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
COMMAND_LINE="$({ env | grep -E '^(BENCH_|PX_PROXY_BIN=|PX_PORT_BASE=)' || true; } | sort | tr '\n' ' ')$0${*:+ $*}"
bench_load_env

SECONDS_PER_RUN="${BENCH_SECONDS:-5}"
RUNS="${BENCH_RUNS:-3}"
CLIENTS="${BENCH_CLIENTS:-16 64}"
MODES="${BENCH_MODES:-simple extended prepared}"
WORKLOADS="${BENCH_WORKLOADS:-select mixed}"
TARGETS="${BENCH_TARGETS:-direct nocache cache}"
JOBS="${BENCH_JOBS:-2}"
WARMUP="${BENCH_WARMUP:-1}"
ZIPF="${BENCH_ZIPF:-1.1}"
SCALE="${BENCH_CACHE_SCALE:-1}"
NACCOUNTS=$((SCALE * 100000))
SAMPLING="${BENCH_LOG_SAMPLING:-0.1}"
WORKERS="${BENCH_WORKERS:-2}"
POOL_SIZE="${BENCH_POOL_SIZE:-20}"
CACHE_SIZE="${BENCH_CACHE_MAX_SIZE:-256mb}"
CACHE_TTL="${BENCH_CACHE_TTL:-300}"
NOCACHE_PORT="${BENCH_NOCACHE_PORT:-$PX_PGBOUNCER_PORT}"
NOCACHE_ADMIN_PORT="${BENCH_NOCACHE_ADMIN_PORT:-$((PX_ADMIN_PORT + 1))}"
ADMIN_TOKEN_BENCH="bench-$RANDOM$RANDOM"
SCRIPTS="$BENCH_DIR/cache"
REPORT=("$PY" "$BENCH_DIR/cache_report.py")
STAMP="$(date +%Y%m%d-%H%M%S)"
OUT="${BENCH_CACHE_OUT:-$BENCH_DIR/results/cache-$STAMP}"
[[ "$OUT" = /* ]] || OUT="$PWD/$OUT"
LOGS="$OUT"            # directory: pgbench outputs, meta.txt, proxy logs
CSV="$OUT.csv"
mkdir -p "$LOGS"
rm -f "$CSV"
CLK_TCK="$(getconf CLK_TCK)"
T_START=$(date +%s)

[[ -f "$SCRIPTS/read.sql" && -f "$SCRIPTS/write.sql" ]] || die "missing $SCRIPTS/{read,write}.sql"
for w in $WORKLOADS; do [[ $w == select || $w == mixed ]] || die "unknown workload '$w'"; done
for t in $TARGETS; do
    [[ $t == direct || $t == nocache || $t == cache ]] || die "unknown target '$t'"
done

want_target() { [[ " $TARGETS " == *" $1 "* ]]; }
drop_target() {
    local kept="" t
    for t in $TARGETS; do [[ $t == "$1" ]] || kept+="$t "; done
    TARGETS="$kept"
}
q() { timeout 30 "$PSQL" -X -q -At -h "$BENCH_HOST" -p "$PX_PG_PORT" -U fnx -d fnx "$@"; }

# --- data: pgbench tables at $SCALE (100,000 accounts per unit) ------------------------
init_data() {
    local have
    have="$(q -c "select (select count(*) from pgbench_branches)::text || ':' ||
                         (select count(*) from pgbench_accounts)::text || ':' ||
                         (select count(*) from pg_index where indrelid = 'pgbench_accounts'::regclass
                                                        and indisprimary)::text" 2>/dev/null || true)"
    if [[ "$have" == "$SCALE:$NACCOUNTS:1" ]]; then
        log "pgbench tables already at scale $SCALE ($NACCOUNTS accounts)"
        return
    fi
    log "pgbench -i -s $SCALE on the primary (found '${have:-nothing}')"
    timeout 600 "$PGBENCH" -i -q -s "$SCALE" -h "$BENCH_HOST" -p "$PX_PG_PORT" -U fnx fnx \
        >"$LOGS/pgbench-init.log" 2>&1 || { cat "$LOGS/pgbench-init.log" >&2; die "pgbench -i failed"; }
}
init_data

# --- statements PostgreSQL ran: pg_stat_statements when it is there --------------------
PG_SOURCE=xact_commit
PSS_SQL="select coalesce(sum(calls) filter (where query ilike '%SELECT abalance FROM pgbench_accounts WHERE aid%'), 0),
                coalesce(sum(calls) filter (where query ilike '%UPDATE pgbench_accounts SET abalance%'), 0)
           from pg_stat_statements where dbid = (select oid from pg_database where datname = current_database())"
if q -F' ' -c "$PSS_SQL" >/dev/null 2>&1; then
    PG_SOURCE=pg_stat_statements
fi
# pg_snapshot: "READS WRITES" (pg_stat_statements calls of the two benchmark statements),
# or "TRANSACTIONS" (pg_stat_database xact_commit + xact_rollback of the database: includes
# the proxies' own probes, and idle backends report it up to ~10 s late).
pg_snapshot() {
    if [[ $PG_SOURCE == pg_stat_statements ]]; then
        q -F' ' -c "$PSS_SQL" 2>/dev/null || echo ""
    else
        q -c "select xact_commit + xact_rollback from pg_stat_database
               where datname = current_database()" 2>/dev/null || echo ""
    fi
}

# --- meta -------------------------------------------------------------------------------
PG_VERSION="$(q -c 'show server_version' 2>/dev/null || echo unknown)"
{
    echo "command: $COMMAND_LINE"
    echo "date: $(date -Is)"
    echo "host: $(nproc) cpus ($(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)), $(uname -r), $(awk '/^MemTotal/ {printf "%.1f GB", $2/1048576}' /proc/meminfo) RAM, loopback only"
    echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "postgresql: $PG_VERSION (primary 127.0.0.1:$PX_PG_PORT, database fnx); $("$PGBENCH" --version)"
    echo "proxy: $PROXY_BIN (built $(date -r "$PROXY_BIN" -Is 2>/dev/null || echo '?') in a tree at $(git -C "$(dirname "$PROXY_BIN")" describe --always --dirty 2>/dev/null || echo '?')), WORKERS=$WORKERS, POOL_MODE=transaction, DB_POOL_SIZE=$POOL_SIZE, DB_MAX_OVERFLOW=0, CACHE_MAX_SIZE=$CACHE_SIZE, CACHE_DEFAULT_TTL=$CACHE_TTL, L2 Redis: $([[ "${BENCH_CACHE_REDIS:-0}" != 0 ]] && echo "127.0.0.1:${PX_REDIS_PORT:-?}" || echo off)"
    echo "data: pgbench -i -s $SCALE ($NACCOUNTS rows in pgbench_accounts)"
    echo "keys: random_zipfian(1, $NACCOUNTS, $ZIPF)"
    echo "pgbench: -n -M MODE -c CLIENTS -j $JOBS -T $SECONDS_PER_RUN -D naccounts=$NACCOUNTS -D zipf=$ZIPF -f read.sql  (select)  |  -f read.sql@9 -f write.sql@1  (mixed);  -l --sampling-rate=$SAMPLING"
    echo "workloads: $WORKLOADS"
    echo "modes: $MODES"
    echo "clients: $CLIENTS"
    echo "runs: $RUNS"
    echo "seconds: $SECONDS_PER_RUN"
    echo "warm-up: ${WARMUP} s per workload, mode and target, not recorded"
    echo "latency log sampling: $SAMPLING"
    echo "pg counter: $PG_SOURCE"
} >"$LOGS/meta.txt"

# --- proxies: one with the cache off, one with it on, both running all along -----------
write_userlist
NOCACHE_PID=""
CACHE_PID=""
# start_bench_proxy NAME PORT ADMIN_PORT CACHE_ENABLED: sets ${NAME}_PID, or returns 1.
start_bench_proxy() {
    local name="$1" port="$2" admin="$3" cache="$4" pid i
    local -a redis=()
    if [[ ! -x "$PROXY_BIN" ]]; then
        log "WARNING: $PROXY_BIN not found (make build); skipping the proxy targets"
        return 1
    fi
    for i in "$port" "$admin"; do
        if (exec 3<>"/dev/tcp/127.0.0.1/$i") 2>/dev/null; then
            log "WARNING: port $i is already in use; not starting the $name proxy"
            return 1
        fi
    done
    if [[ "${BENCH_CACHE_REDIS:-0}" != 0 && -n "${PX_REDIS_PORT:-}" ]]; then
        redis=(REDIS_HOST=127.0.0.1 REDIS_PORT="$PX_REDIS_PORT")
    fi
    env PROXY_LISTEN="127.0.0.1:$port" ADMIN_LISTEN="127.0.0.1:$admin" \
        POSTGRES_SERVER="${PX_PG_HOST:-127.0.0.1}" POSTGRES_PORT="$PX_PG_PORT" \
        POSTGRES_DB=fnx POSTGRES_USER=fnx POSTGRES_PASSWORD=fnx_pass \
        AUTH_TYPE=scram-sha-256 AUTH_FILE="$BENCH_TMP/userlist.txt" \
        POOL_MODE=transaction DB_POOL_SIZE="$POOL_SIZE" DB_MAX_OVERFLOW=0 \
        MAX_CLIENT_CONN=2000 WORKERS="$WORKERS" LOG_LEVEL="${BENCH_PROXY_LOG_LEVEL:-warn}" \
        CACHE_ENABLED="$cache" CACHE_MAX_SIZE="$CACHE_SIZE" CACHE_DEFAULT_TTL="$CACHE_TTL" \
        ADMIN_TOKEN="$ADMIN_TOKEN_BENCH" "${redis[@]}" \
        "$PROXY_BIN" >>"$LOGS/proxy-$name.log" 2>&1 &
    pid=$!
    BENCH_PIDS+=("$pid")
    if ! wait_port "$port" 20 "$pid" || ! psql_ok "$port"; then
        log "WARNING: the $name proxy does not serve queries on :$port. Log tail:"
        tail -n 20 "$LOGS/proxy-$name.log" >&2 || true
        stop_pid "$pid"
        return 1
    fi
    if [[ $cache == true ]]; then
        # The cache serves nothing until the health checker has loaded the relation catalog.
        local loaded=""
        for ((i = 0; i < 300; i++)); do
            if "${REPORT[@]}" fetch "http://127.0.0.1:$admin/api/v1/cache/stats" 2>/dev/null |
                grep -q '"catalog_loaded": *true'; then
                loaded=1
                break
            fi
            sleep 0.1
        done
        if [[ -z "$loaded" ]]; then
            log "WARNING: the cache's relation catalog did not load within 30 s; measuring anyway"
            echo "warning: catalog_loaded was still false 30 s after the cache proxy started" >>"$LOGS/meta.txt"
        fi
    fi
    printf -v "${name^^}_PID" '%s' "$pid"
    log "proxy ($name) pid $pid on :$port, admin :$admin (WORKERS=$WORKERS, CACHE_ENABLED=$cache)"
}
want_target nocache && { start_bench_proxy nocache "$NOCACHE_PORT" "$NOCACHE_ADMIN_PORT" false || drop_target nocache; }
want_target cache && { start_bench_proxy cache "$PX_PROXY_PORT" "$PX_ADMIN_PORT" true || drop_target cache; }
[[ -n "${TARGETS// /}" ]] || die "no target left to measure"
echo "targets: $TARGETS(rotated from run to run)" >>"$LOGS/meta.txt"

port_of() {
    case "$1" in
        direct) echo "$PX_PG_PORT" ;;
        nocache) echo "$NOCACHE_PORT" ;;
        cache) echo "$PX_PROXY_PORT" ;;
    esac
}
pid_of() {
    case "$1" in
        direct) echo "" ;;
        nocache) echo "$NOCACHE_PID" ;;
        cache) echo "$CACHE_PID" ;;
    esac
}

# A proxy that stopped serving after a failed run is restarted (and that is recorded), so
# one broken cell does not poison the rest.
check_proxy_after_failure() {
    local t="$1" pid
    [[ $t == direct ]] && return 0
    pid="$(pid_of "$t")"
    if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null && psql_ok "$(port_of "$t")"; then
        return 0
    fi
    log "WARNING: the $t proxy stopped serving after that failure; restarting it"
    echo "restart: the $t proxy was restarted after a failed run at $(date -Is)" >>"$LOGS/meta.txt"
    [[ -n "$pid" ]] && stop_pid "$pid"
    if [[ $t == cache ]]; then
        start_bench_proxy cache "$PX_PROXY_PORT" "$PX_ADMIN_PORT" true || drop_target cache
    else
        start_bench_proxy nocache "$NOCACHE_PORT" "$NOCACHE_ADMIN_PORT" false || drop_target nocache
    fi
}

# bg_wait CMD...: runs CMD in the background and waits for it, so that an INT/TERM trap
# fires at once (bash defers traps while a foreground child runs); bench_cleanup stops it.
bg_wait() {
    local pid rc=0 p keep=()
    "$@" &
    pid=$!
    BENCH_PIDS+=("$pid")
    wait "$pid" || rc=$?
    for p in "${BENCH_PIDS[@]}"; do [[ $p == "$pid" ]] || keep+=("$p"); done
    BENCH_PIDS=("${keep[@]}")
    return "$rc"
}

# --- one pgbench run ----------------------------------------------------------------------
# set_workload WORKLOAD: the pgbench script options of WORKLOAD into WL_ARGS.
WL_ARGS=()
set_workload() {
    case "$1" in
        select) WL_ARGS=(-f "$SCRIPTS/read.sql") ;;
        mixed) WL_ARGS=(-f "$SCRIPTS/read.sql@9" -f "$SCRIPTS/write.sql@1") ;;
    esac
}

# run_one WORKLOAD MODE CLIENTS RUN TARGET: one recorded pgbench run, one CSV row.
run_one() {
    local workload="$1" mode="$2" clients="$3" run="$4" target="$5"
    local port pid admin="" logf lat s0="" s1="" pg0 pg1 t0=0 t1=0 rc=0 jobs
    port="$(port_of "$target")"
    pid="$(pid_of "$target")"
    jobs=$((JOBS < clients ? JOBS : clients))
    logf="$LOGS/$workload-$mode-c$clients-r$run-$target.log"
    lat="$BENCH_TMP/lat-$workload-$mode-$clients-$run-$target"
    if [[ $target == cache ]]; then
        admin="http://127.0.0.1:$PX_ADMIN_PORT/api/v1/cache/stats"
        s0="$BENCH_TMP/stats0.json"
        s1="$BENCH_TMP/stats1.json"
        "${REPORT[@]}" fetch "$admin" >"$s0" 2>/dev/null || true
    fi
    pg0="$(pg_snapshot)"
    [[ -n "$pid" ]] && t0="$(cpu_ticks "$pid")"
    set_workload "$workload"
    bg_wait timeout --kill-after=10 $((SECONDS_PER_RUN + 120)) \
        "$PGBENCH" -n -M "$mode" -c "$clients" -j "$jobs" -T "$SECONDS_PER_RUN" \
        -D naccounts="$NACCOUNTS" -D zipf="$ZIPF" "${WL_ARGS[@]}" \
        -l --log-prefix="$lat" --sampling-rate="$SAMPLING" \
        -h "$BENCH_HOST" -p "$port" -U fnx fnx >"$logf" 2>&1 || rc=$?
    [[ -n "$pid" ]] && t1="$(cpu_ticks "$pid")"
    pg1="$(pg_snapshot)"
    [[ -n "$admin" ]] && { "${REPORT[@]}" fetch "$admin" >"$s1" 2>/dev/null || true; }
    local -a extra=()
    [[ -n "$pid" ]] && extra+=(--cpu-ticks $((t1 - t0)) --clk-tck "$CLK_TCK")
    local ok=0 line
    line="$("${REPORT[@]}" record --csv "$CSV" --workload "$workload" --mode "$mode" \
        --clients "$clients" --run "$run" --target "$target" --rc "$rc" --out "$logf" \
        --lat-prefix "$lat" --stats-before "$s0" --stats-after "$s1" \
        --pg-before "$pg0" --pg-after "$pg1" --pg-source "$PG_SOURCE" "${extra[@]}" 2>&1)" || ok=1
    log "$line"
    rm -f "$lat".*
    return "$ok"
}

# warm_one WORKLOAD MODE CLIENTS TARGET: fills pools, PostgreSQL's buffers and the cache.
warm_one() {
    local workload="$1" mode="$2" clients="$3" target="$4" jobs
    jobs=$((JOBS < clients ? JOBS : clients))
    set_workload "$workload"
    bg_wait timeout --kill-after=10 $((WARMUP + 60)) \
        "$PGBENCH" -n -M "$mode" -c "$clients" -j "$jobs" -T "$WARMUP" \
        -D naccounts="$NACCOUNTS" -D zipf="$ZIPF" "${WL_ARGS[@]}" \
        -h "$BENCH_HOST" -p "$(port_of "$target")" -U fnx fnx >/dev/null 2>&1 ||
        log "warm-up through $target failed"
}

# Targets in the order of this run: rotated each run so none always goes first.
rotate() {
    local -a t
    read -r -a t <<<"$TARGETS"
    ((${#t[@]})) || return 0
    local n=${#t[@]} k=$(($1 % ${#t[@]})) i out=()
    for ((i = 0; i < n; i++)); do out+=("${t[(i + k) % n]}"); done
    echo "${out[*]}"
}

# --- the matrix ---------------------------------------------------------------------------
# A warm-up per workload and mode (with the first client count) and target fills the
# pools, PostgreSQL's buffers and the cache for the cells that follow; it is not recorded.
for workload in $WORKLOADS; do
    for mode in $MODES; do
        warmed=0
        for clients in $CLIENTS; do
            if [[ "$WARMUP" != 0 && $warmed == 0 ]]; then
                for target in $TARGETS; do warm_one "$workload" "$mode" "$clients" "$target"; done
                warmed=1
            fi
            for ((run = 1; run <= RUNS; run++)); do
                for target in $(rotate $((run - 1))); do
                    run_one "$workload" "$mode" "$clients" "$run" "$target" ||
                        check_proxy_after_failure "$target"
                done
            done
        done
    done
done

# --- report -------------------------------------------------------------------------------
if [[ -n "$CACHE_PID" ]]; then
    "${REPORT[@]}" fetch "http://127.0.0.1:$PX_ADMIN_PORT/api/v1/cache/stats" \
        >"$LOGS/cache-stats-final.json" 2>/dev/null || true
fi
{
    echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "elapsed: $(($(date +%s) - T_START)) s"
} >>"$LOGS/meta.txt"
"$PY" "$BENCH_DIR/cache_report.py" report "$OUT"
if [[ "$(dirname "$OUT")" == "$BENCH_DIR/results" ]]; then
    for ext in md csv json; do ln -sfn "$(basename "$OUT").$ext" "$BENCH_DIR/results/cache-latest.$ext"; done
fi
log "results: $OUT.md, $OUT.csv, $OUT.json (pgbench outputs and proxy logs in $OUT/)"
