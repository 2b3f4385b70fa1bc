# shellcheck shell=bash disable=SC2034
# Shared helpers for the benchmark scripts (sourced, not executed).
#
# Expects the test-stack environment (scripts/with-stack.sh exports it, or it is
# read from $PX_STACK_DIR/env.sh). Starts PgBouncer and the proxy as children of
# the calling shell, records their PIDs, and stops exactly those PIDs on exit.

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH_DIR/.." && pwd)"
PY=/usr/bin/python3

log() { printf '[bench %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

bench_load_env() {
    if [[ -z "${PX_PG_PORT:-}" && -n "${PX_STACK_DIR:-}" && -f "$PX_STACK_DIR/env.sh" ]]; then
        # shellcheck disable=SC1091
        source "$PX_STACK_DIR/env.sh"
    fi
    local v
    for v in PX_PG_HOST PX_PG_PORT PX_PGBOUNCER_PORT PX_PROXY_PORT PX_ADMIN_PORT; do
        [[ -n "${!v:-}" ]] || die "$v is not set: run under scripts/with-stack.sh (or set PX_STACK_DIR)"
    done
    PGBIN="${PX_PGBIN:-/usr/lib/postgresql/15/bin}"
    PGBENCH="$PGBIN/pgbench"; [[ -x "$PGBENCH" ]] || PGBENCH="$(command -v pgbench)"
    PSQL="$PGBIN/psql";       [[ -x "$PSQL" ]]    || PSQL="$(command -v psql)"
    PGBOUNCER_BIN="${PX_PGBOUNCER_BIN:-/usr/sbin/pgbouncer}"
    PROXY_BIN="${PX_PROXY_BIN:-$ROOT/build/fastnext-proxy}"
    [[ "$PROXY_BIN" = /* ]] || PROXY_BIN="$ROOT/$PROXY_BIN"
    BENCH_HOST=127.0.0.1
    export PGPASSWORD=fnx_pass PGCONNECT_TIMEOUT=10
    # 10,000 idle clients need that many descriptors in each server and in the client.
    ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
    BENCH_TMP="$(mktemp -d /tmp/fnx-bench.XXXXXX)"
    chmod 755 "$BENCH_TMP"
    BENCH_PIDS=()
    trap bench_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

bench_cleanup() {
    local pid i
    for pid in "${BENCH_PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${BENCH_PIDS[@]}"; do
        for ((i = 0; i < 50; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    BENCH_PIDS=()
    if [[ -n "${BENCH_TMP:-}" && -d "$BENCH_TMP" ]]; then
        if [[ -n "${BENCH_KEEP_TMP:-}" ]]; then
            log "kept $BENCH_TMP"
        else
            rm -rf "$BENCH_TMP"
        fi
    fi
}

# wait_port PORT SECONDS [PID]: until something accepts on 127.0.0.1:PORT.
wait_port() {
    local port="$1" secs="$2" pid="${3:-}" i
    for ((i = 0; i < secs * 10; i++)); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            return 0
        fi
        if [[ -n "$pid" ]] && ! kill -0 "$pid" 2>/dev/null; then
            return 1
        fi
        sleep 0.1
    done
    return 1
}

# psql_ok PORT: can fnx run a query through that port?
psql_ok() {
    timeout 20 "$PSQL" -X -q -At -h "$BENCH_HOST" -p "$1" -U fnx -d fnx -c 'select 1' >/dev/null 2>&1
}

write_userlist() {
    # PgBouncer's auth_file format; the same file feeds the proxy's AUTH_FILE.
    printf '"fnx" "fnx_pass"\n' >"$BENCH_TMP/userlist.txt"
    chmod 644 "$BENCH_TMP/userlist.txt"
}

# start_pgbouncer: PgBouncer 1.18, transaction pooling, pool 20, SCRAM, on
# $PX_PGBOUNCER_PORT -> primary. Sets PGBOUNCER_PID.
start_pgbouncer() {
    local dir="$BENCH_TMP/pgbouncer"
    mkdir -p "$dir"
    [[ -f "$BENCH_TMP/userlist.txt" ]] || write_userlist
    cat >"$dir/pgbouncer.ini" <<EOF
[databases]
fnx = host=${PX_PG_HOST:-127.0.0.1} port=$PX_PG_PORT dbname=fnx

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $PX_PGBOUNCER_PORT
unix_socket_dir =
auth_type = scram-sha-256
auth_file = $BENCH_TMP/userlist.txt
pool_mode = transaction
default_pool_size = 20
min_pool_size = 0
reserve_pool_size = 0
max_client_conn = 11000
max_db_connections = 0
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
log_connections = 0
log_disconnections = 0
log_pooler_errors = 1
stats_period = 3600
ignore_startup_parameters = extra_float_digits
EOF
    local -a as_user=()
    if [[ "$(id -u)" -eq 0 ]]; then
        # PgBouncer refuses to run as root.
        chown -R postgres:postgres "$dir"
        as_user=(setpriv --reuid=postgres --regid=postgres --init-groups)
    fi
    "${as_user[@]}" "$PGBOUNCER_BIN" "$dir/pgbouncer.ini" >"$dir/stdout.log" 2>&1 &
    PGBOUNCER_PID=$!
    BENCH_PIDS+=("$PGBOUNCER_PID")
    if ! wait_port "$PX_PGBOUNCER_PORT" 20 "$PGBOUNCER_PID"; then
        tail -n 20 "$dir/pgbouncer.log" "$dir/stdout.log" >&2 2>/dev/null || true
        die "PgBouncer did not start on port $PX_PGBOUNCER_PORT"
    fi
    psql_ok "$PX_PGBOUNCER_PORT" || die "cannot query through PgBouncer (see $dir/pgbouncer.log)"
    log "PgBouncer $("$PGBOUNCER_BIN" --version | head -n1 | awk '{print $2}') pid $PGBOUNCER_PID on :$PX_PGBOUNCER_PORT"
}

# start_proxy: the proxy with the same pooling settings. Sets PROXY_PID, or
# leaves it empty (and returns 1) when the binary is missing or does not serve.
start_proxy() {
    PROXY_PID=""
    if [[ ! -x "$PROXY_BIN" ]]; then
        log "WARNING: $PROXY_BIN not found; skipping the proxy"
        return 1
    fi
    [[ -f "$BENCH_TMP/userlist.txt" ]] || write_userlist
    local cache="${BENCH_PROXY_CACHE:-false}"
    env PROXY_LISTEN="127.0.0.1:$PX_PROXY_PORT" \
        ADMIN_LISTEN="127.0.0.1:$PX_ADMIN_PORT" \
        POSTGRES_SERVER="${PX_PG_HOST:-127.0.0.1}" POSTGRES_PORT="$PX_PG_PORT" \
        POSTGRES_DB=fnx POSTGRES_USER=fnx POSTGRES_PASSWORD=fnx_pass \
        POOL_MODE=transaction DB_POOL_SIZE=20 DB_MAX_OVERFLOW=0 \
        AUTH_TYPE=scram-sha-256 AUTH_FILE="$BENCH_TMP/userlist.txt" \
        MAX_CLIENT_CONN=11000 LOG_LEVEL="${BENCH_PROXY_LOG_LEVEL:-warn}" \
        WORKERS="${BENCH_WORKERS:-2}" CACHE_ENABLED="$cache" \
        ${BENCH_PROXY_ENV:-} "$PROXY_BIN" >"$BENCH_TMP/proxy.log" 2>&1 &
    PROXY_PID=$!
    BENCH_PIDS+=("$PROXY_PID")
    if ! wait_port "$PX_PROXY_PORT" 20 "$PROXY_PID" || ! psql_ok "$PX_PROXY_PORT"; then
        log "WARNING: the proxy does not serve queries on :$PX_PROXY_PORT; skipping it. Log tail:"
        tail -n 20 "$BENCH_TMP/proxy.log" >&2 || true
        kill -TERM "$PROXY_PID" 2>/dev/null || true
        PROXY_PID=""
        return 1
    fi
    log "proxy pid $PROXY_PID on :$PX_PROXY_PORT (WORKERS=${BENCH_WORKERS:-2}, CACHE_ENABLED=$cache)"
}

# stop_pid PID: TERM, wait up to 5 s, KILL; forget it.
stop_pid() {
    local pid="$1" i keep=() p
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    for p in "${BENCH_PIDS[@]}"; do [[ $p == "$pid" ]] || keep+=("$p"); done
    BENCH_PIDS=("${keep[@]}")
}

# restart_proxy: after a failure left the proxy unable to serve (so that one
# broken cell does not poison every later measurement).
restart_proxy() {
    [[ -n "${PROXY_PID:-}" ]] && stop_pid "$PROXY_PID"
    cp "$BENCH_TMP/proxy.log" "$BENCH_TMP/proxy.log.$(date +%s)" 2>/dev/null || true
    start_proxy
}

# cpu_ticks PID: utime+stime of the whole process (all threads), in clock ticks.
cpu_ticks() {
    local stat
    stat="$(cat "/proc/$1/stat" 2>/dev/null)" || { echo 0; return; }
    stat="${stat##*) }"   # fields after "(comm) "; field 3 (state) is now first
    local -a f
    read -r -a f <<<"$stat"
    echo $((f[11] + f[12]))
}

# rss_kb PID FIELD: VmRSS / VmHWM in kB.
status_kb() {
    awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status" 2>/dev/null || echo 0
}
