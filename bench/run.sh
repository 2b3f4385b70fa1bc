#!/usr/bin/env bash
# pgbench select-only workloads against PostgreSQL directly, through PgBouncer 1.18
# and through fastnext-proxy, alternating the targets inside every run of every
# cell, then the idle-client memory test and the large-result test.
#
#   make bench                      (= scripts/with-stack.sh bench/run.sh)
#   BENCH_SECONDS=3 BENCH_RUNS=1 BENCH_CLIENTS=16 BENCH_IDLE=0 make bench
#
# Knobs (defaults): BENCH_SECONDS (10) BENCH_RUNS (3) BENCH_CLIENTS ("16 64 256")
# BENCH_MODES ("simple extended prepared") BENCH_TARGETS ("direct pgbouncer proxy")
# BENCH_TPS (1) BENCH_JOBS (2) BENCH_WARMUP (2 s per target, 0 = none) BENCH_RTT (1)
# BENCH_RTT_SECONDS (= BENCH_SECONDS) BENCH_IDLE (1) BENCH_IDLE_CLIENTS (10000)
# BENCH_LARGE (1) BENCH_WORKERS (2) BENCH_PROXY_CACHE (false) BENCH_SCALE (10)
# PX_PROXY_BIN (build/fastnext-proxy) BENCH_OUT (bench/results/<timestamp>)
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_load_env

SECONDS_PER_RUN="${BENCH_SECONDS:-10}"
RUNS="${BENCH_RUNS:-3}"
CLIENTS="${BENCH_CLIENTS:-16 64 256}"
MODES="${BENCH_MODES:-simple extended prepared}"
TARGETS="${BENCH_TARGETS:-direct pgbouncer proxy}"
JOBS="${BENCH_JOBS:-2}"
WARMUP="${BENCH_WARMUP:-2}"
SCALE="${BENCH_SCALE:-10}"
STAMP="$(date +%Y%m%d-%H%M%S)"
OUT="${BENCH_OUT:-$BENCH_DIR/results/$STAMP}"
mkdir -p "$OUT"
CSV="$OUT/pgbench.csv"
CLK_TCK="$(getconf CLK_TCK)"

want_target() { [[ " $TARGETS " == *" $1 "* ]]; }

# --- data -------------------------------------------------------------------
init_data() {
    local have
    have="$(timeout 30 "$PSQL" -X -At -h "$BENCH_HOST" -p "$PX_PG_PORT" -U fnx -d fnx \
        -c "select (select count(*) from pgbench_branches)::text || ':' ||
                   (select count(*) from pgbench_accounts)::text" 2>/dev/null || true)"
    if [[ "$have" == "$SCALE:$((SCALE * 100000))" ]]; then
        log "pgbench tables already initialised at scale $SCALE"
        return
    fi
    log "pgbench -i -s $SCALE on the primary (found '${have:-nothing}')"
    timeout 900 "$PGBENCH" -i -q -s "$SCALE" -h "$BENCH_HOST" -p "$PX_PG_PORT" -U fnx fnx \
        >"$OUT/pgbench-init.log" 2>&1 || { cat "$OUT/pgbench-init.log" >&2; die "pgbench -i failed"; }
}

# --- servers ----------------------------------------------------------------
PGBOUNCER_PID=""
PROXY_PID=""
write_userlist
if want_target pgbouncer || [[ "${BENCH_IDLE:-1}" != 0 ]]; then
    start_pgbouncer
fi
if want_target proxy || [[ "${BENCH_IDLE:-1}" != 0 || "${BENCH_LARGE:-1}" != 0 ]]; then
    start_proxy || true
fi
if [[ -z "$PROXY_PID" ]]; then
    kept=""
    for t in $TARGETS; do [[ $t == proxy ]] || kept+="$t "; done
    TARGETS="$kept"
fi
init_data

port_of() {
    case "$1" in
        direct) echo "$PX_PG_PORT" ;;
        pgbouncer) echo "$PX_PGBOUNCER_PORT" ;;
        proxy) echo "$PX_PROXY_PORT" ;;
    esac
}
pid_of() {
    case "$1" in
        direct) echo "" ;;
        pgbouncer) echo "$PGBOUNCER_PID" ;;
        proxy) echo "$PROXY_PID" ;;
    esac
}

{
    echo "# pgbench -n -S -j $JOBS -T $SECONDS_PER_RUN, scale $SCALE, runs $RUNS, $(date -Is)"
    echo "# host: $(nproc) cpus, $(uname -r); load before: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "# pgbouncer: $("$PGBOUNCER_BIN" --version | head -n1); proxy: $PROXY_BIN (WORKERS=${BENCH_WORKERS:-2})"
} >"$OUT/meta.txt"
echo "section,mode,clients,run,target,status,tps,latency_ms,transactions,failed,cpu_s,cpu_us_per_stmt,error" >"$CSV"

# run_one SECTION MODE CLIENTS JOBS RUN TARGET SECONDS: one pgbench, one CSV row.
run_one() {
    local section="$1" mode="$2" clients="$3" jobs="$4" run="$5" target="$6" secs="$7"
    local port pid t0 t1 rc=0 logf status tps lat txns failed cpu_s cpu_us err
    port="$(port_of "$target")"
    pid="$(pid_of "$target")"
    logf="$OUT/logs/$section-$mode-c$clients-r$run-$target.log"
    mkdir -p "$OUT/logs"
    t0=0; [[ -n "$pid" ]] && t0="$(cpu_ticks "$pid")"
    timeout --kill-after=10 $((secs + 120)) \
        "$PGBENCH" -n -S -M "$mode" -c "$clients" -j "$jobs" -T "$secs" \
        -h "$BENCH_HOST" -p "$port" -U fnx fnx >"$logf" 2>&1 || rc=$?
    t1=0; [[ -n "$pid" ]] && t1="$(cpu_ticks "$pid")"
    tps="$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time)$/\1/p' "$logf")"
    lat="$(sed -n 's/^latency average = \([0-9.]*\) ms$/\1/p' "$logf")"
    txns="$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$logf")"
    failed="$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$logf")"
    status=ok
    if [[ $rc -ne 0 || -z "$tps" || "${failed:-0}" != 0 ]] || grep -qE 'aborted|ERROR:|FATAL:' "$logf"; then
        status=fails
    fi
    cpu_s=""; cpu_us=""
    if [[ -n "$pid" ]]; then
        cpu_s="$(awk -v a="$t0" -v b="$t1" -v hz="$CLK_TCK" 'BEGIN{printf "%.2f", (b-a)/hz}')"
        if [[ -n "$txns" && "$txns" -gt 0 ]]; then
            cpu_us="$(awk -v a="$t0" -v b="$t1" -v hz="$CLK_TCK" -v n="$txns" \
                'BEGIN{printf "%.1f", (b-a)/hz*1e6/n}')"
        fi
    fi
    err=""
    if [[ $status != ok ]]; then
        err="$(grep -m1 -E 'ERROR|FATAL|aborted|error' "$logf" || tail -n1 "$logf" || true)"
        [[ $rc -eq 124 || $rc -eq 137 ]] && err="timed out; $err"
        err="$(tr -d ',"\r\n' <<<"$err" | cut -c1-200)"
    fi
    echo "$section,$mode,$clients,$run,$target,$status,${tps:-},${lat:-},${txns:-},${failed:-},$cpu_s,$cpu_us,$err" >>"$CSV"
    if [[ $status == ok ]]; then
        log "$section $mode c=$clients run $run $target: tps ${tps} lat ${lat} ms cpu ${cpu_us:--} us/stmt"
    else
        log "$section $mode c=$clients run $run $target: FAILS (rc $rc): $err"
    fi
    [[ $status == ok ]]
}

# After a failed proxy run: if the proxy no longer answers a query within
# 20 s (e.g. leaked server connections), restart it so later cells measure
# something. Restarts are logged and counted in meta.txt.
PROXY_RESTARTS=0
check_proxy_after_failure() {
    [[ $1 == proxy && -n "$PROXY_PID" ]] || return 0
    if ! kill -0 "$PROXY_PID" 2>/dev/null || ! psql_ok "$PX_PROXY_PORT"; then
        log "WARNING: the proxy stopped serving after that failure; restarting it"
        PROXY_RESTARTS=$((PROXY_RESTARTS + 1))
        echo "# proxy restarted after a failed run ($PROXY_RESTARTS) at $(date -Is)" >>"$OUT/meta.txt"
        if ! restart_proxy; then
            log "WARNING: the proxy did not come back; dropping it from the remaining runs"
            kept=""
            for t in $TARGETS; do [[ $t == proxy ]] || kept+="$t "; done
            TARGETS="$kept"
        fi
    fi
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

# --- warm-up: fills pools and PostgreSQL's buffers; not recorded --------------
if [[ "$WARMUP" != 0 && "${BENCH_TPS:-1}${BENCH_RTT:-1}" != 00 ]]; then
    for target in $TARGETS; do
        timeout 120 "$PGBENCH" -n -S -c 16 -j "$JOBS" -T "$WARMUP" -h "$BENCH_HOST" \
            -p "$(port_of "$target")" -U fnx fnx >/dev/null 2>&1 || log "warm-up through $target failed"
    done
fi

# --- throughput -------------------------------------------------------------
[[ "${BENCH_TPS:-1}" != 0 ]] || MODES=""
for mode in $MODES; do
    for clients in $CLIENTS; do
        skip_bouncer=0
        for ((run = 1; run <= RUNS; run++)); do
            for target in $(rotate $((run - 1))); do
                if [[ $target == pgbouncer && $skip_bouncer == 1 ]]; then
                    continue
                fi
                if ! run_one tps "$mode" "$clients" "$JOBS" "$run" "$target" "$SECONDS_PER_RUN"; then
                    # PgBouncer 1.18 cannot do named prepared statements in transaction
                    # pooling: record the failure once per cell instead of every run.
                    [[ $target == pgbouncer && $mode == prepared ]] && skip_bouncer=1
                    check_proxy_after_failure "$target"
                fi
            done
        done
    done
done

# --- single-client round trip -----------------------------------------------
if [[ "${BENCH_RTT:-1}" != 0 ]]; then
    for ((run = 1; run <= RUNS; run++)); do
        for target in $(rotate $((run - 1))); do
            run_one rtt simple 1 1 "$run" "$target" "${BENCH_RTT_SECONDS:-$SECONDS_PER_RUN}" ||
                check_proxy_after_failure "$target"
        done
    done
fi

# --- idle clients -----------------------------------------------------------
if [[ "${BENCH_IDLE:-1}" != 0 ]]; then
    idle_args=()
    [[ -n "$PROXY_PID" ]] && idle_args+=(--target "proxy:$PX_PROXY_PORT:$PROXY_PID")
    [[ -n "$PGBOUNCER_PID" ]] && idle_args+=(--target "pgbouncer:$PX_PGBOUNCER_PORT:$PGBOUNCER_PID")
    if ((${#idle_args[@]})); then
        log "idle clients: ${BENCH_IDLE_CLIENTS:-10000} per target"
        timeout --kill-after=10 600 "$PY" "$BENCH_DIR/idle_clients.py" \
            -n "${BENCH_IDLE_CLIENTS:-10000}" --timeout "${BENCH_IDLE_TIMEOUT:-120}" \
            --csv "$OUT/idle.csv" "${idle_args[@]}" | tee "$OUT/idle.txt" \
            || log "WARNING: idle-client test failed"
    fi
fi

# --- large result -----------------------------------------------------------
if [[ "${BENCH_LARGE:-1}" != 0 ]]; then
    large_args=()
    [[ -n "$PROXY_PID" ]] && large_args+=("proxy:$PX_PROXY_PORT:$PROXY_PID")
    [[ -n "$PGBOUNCER_PID" ]] && large_args+=("pgbouncer:$PX_PGBOUNCER_PORT:$PGBOUNCER_PID")
    if ((${#large_args[@]})); then
        timeout --kill-after=10 900 "$BENCH_DIR/large_result.sh" "${large_args[@]}" \
            | tee "$OUT/large.txt" || log "WARNING: large-result test failed"
    fi
fi

# --- report -----------------------------------------------------------------
"$PY" "$BENCH_DIR/report.py" "$OUT"
if [[ "$(dirname "$OUT")" == "$BENCH_DIR/results" ]]; then
    ln -sfn "$(basename "$OUT")" "$BENCH_DIR/results/latest"
fi
log "results in $OUT"
