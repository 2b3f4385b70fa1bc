#!/usr/bin/env bash
# The throwaway test stack: PostgreSQL 15 primary + 2 streaming replicas + Redis + a 6-node
# Redis Cluster (3 masters with a replica each; PX_REDIS_CLUSTER_NODES/_PORTS in env.sh), all
# on 127.0.0.1, all living in one directory. PostgreSQL runs with ssl=on, using a
# throwaway CA made by scripts/make-certs.sh in $PX_STACK_DIR/certs (PX_TLS_* in env.sh);
# role fnx_ssl may only log in over TLS (hostssl), every other role either way.
#
#   scripts/stack.sh start|stop|status
#
# Environment:
#   PX_PORT_BASE     [55430]  primary=BASE, replica1=BASE+1, replica2=BASE+2, redis=BASE+3,
#                             pgbouncer=BASE+4, proxy=BASE+5, proxy admin=BASE+6 (reserved),
#                             redis cluster nodes=BASE+20..BASE+25 (bus ports BASE+30..BASE+35)
#   PX_STACK_DIR     [<repo>/.stack]  removed by `stop`; holds env.sh, logs, data, sockets
#   PX_PGBIN         [/usr/lib/postgresql/15/bin]
#   PX_STACK_TIMEOUT [90]     seconds to wait for each component to become ready
#   PX_STACK_QUIET   [0]      1: print only warnings and errors
#   PX_STACK_KEEP_ON_FAIL [0] 1: a failed `start` leaves its processes and logs for inspection
#
# Several stacks with different PX_PORT_BASE/PX_STACK_DIR run side by side: this script
# only ever touches processes whose PID it recorded in its own directory (and checks that
# the PID still is that process: same executable name, working directory inside the stack)
# and never stops anything by name.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

PX_PORT_BASE="${PX_PORT_BASE:-55430}"
PX_STACK_DIR="$(realpath -m "${PX_STACK_DIR:-$ROOT/.stack}")"
PX_PGBIN="${PX_PGBIN:-/usr/lib/postgresql/15/bin}"
TIMEOUT="${PX_STACK_TIMEOUT:-90}"

if ! [[ "$PX_PORT_BASE" =~ ^[0-9]+$ ]] || ((PX_PORT_BASE < 1024 || PX_PORT_BASE > 65500)); then
    # The highest port is the last Redis Cluster node's bus port, BASE+35.
    echo "stack: PX_PORT_BASE must be an integer in 1024..65500 (got '$PX_PORT_BASE')" >&2
    exit 2
fi
case "$PX_STACK_DIR" in
/ | /root | /home | /tmp | /work | "$ROOT" | "$HOME")
    echo "stack: refusing to use '$PX_STACK_DIR' as a throwaway stack dir" >&2
    exit 2
    ;;
esac

D="$PX_STACK_DIR"
MARKER="$D/.fastnext-stack"
PIDDIR="$D/pids"

# stop/status act on the stack that is in $D, with the ports it was started with.
if [[ "${1:-}" != start && -f "$D/port_base" ]]; then
    PX_PORT_BASE="$(cat "$D/port_base")"
fi

set_ports() {
    PG_PORT=$PX_PORT_BASE
    REPLICA1_PORT=$((PX_PORT_BASE + 1))
    REPLICA2_PORT=$((PX_PORT_BASE + 2))
    REDIS_PORT=$((PX_PORT_BASE + 3))
    PGBOUNCER_PORT=$((PX_PORT_BASE + 4))
    PROXY_PORT=$((PX_PORT_BASE + 5))
    ADMIN_PORT=$((PX_PORT_BASE + 6))
    # Redis Cluster: 6 nodes; each one's cluster bus port is set explicitly (--cluster-port)
    # to port+10, not Redis' default port+10000, so the stack keeps to BASE..BASE+35 and
    # cannot collide with another stack's ports.
    CLUSTER_BUS_OFFSET=10
    CLUSTER_PORTS=()
    CLUSTER_BUS_PORTS=()
    local i
    for ((i = 0; i < 6; i++)); do
        CLUSTER_PORTS+=($((PX_PORT_BASE + 20 + i)))
        CLUSTER_BUS_PORTS+=($((PX_PORT_BASE + 20 + i + CLUSTER_BUS_OFFSET)))
    done
}
set_ports

# Our own psql connections must not pick up a caller's libpq settings.
unset PGHOST PGHOSTADDR PGPORT PGUSER PGDATABASE PGPASSWORD PGPASSFILE PGSERVICE \
    PGOPTIONS PGSSLMODE PGTARGETSESSIONATTRS PGREQUIRESSL || true
export PGCONNECT_TIMEOUT=5

log() {
    if [[ "${PX_STACK_QUIET:-0}" != 1 ]]; then
        echo "stack[$PX_PORT_BASE]: $*"
    fi
}
warn() { echo "stack[$PX_PORT_BASE]: $*" >&2; }

raise_nofile() {
    local hard want=65536
    hard="$(ulimit -Hn)"
    if [[ "$hard" == unlimited ]] || ((hard >= want)); then
        ulimit -n "$want"
    else
        ulimit -n "$hard"
    fi
}

# Run a command as the postgres user (PostgreSQL refuses to run as root). setpriv keeps
# the raised open-files limit, runuser/su would reset it.
as_pg() {
    if [[ "$(id -u)" -eq 0 ]]; then
        setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"
    else
        "$@"
    fi
}

# Where PostgreSQL keeps its data dirs, sockets and logs: the stack dir itself, unless the
# postgres user cannot reach it or the socket path would be too long (108 bytes), in which
# case a private dir under /tmp, recorded in $D/pgroot and removed by `stop`.
pg_root() {
    if [[ -f "$D/pgroot" ]]; then
        cat "$D/pgroot"
    else
        echo "$D"
    fi
}

psql_at() { # port db sql...
    local port="$1" db="$2"
    shift 2
    "$PX_PGBIN/psql" -X -h 127.0.0.1 -p "$port" -U postgres -d "$db" -v ON_ERROR_STOP=1 \
        -Atq "$@"
}

port_in_use() {
    timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
}

# is_ours PID COMM DIR: PID is alive, is COMM, and its working directory is DIR (postgres
# chdirs into its data dir, redis into --dir), possibly already deleted.
is_ours() {
    local pid="$1" comm="$2" dir="$3" c cwd
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    c="$(cat "/proc/$pid/comm" 2>/dev/null)" || return 1
    [[ "$c" == "$comm" ]] || return 1
    cwd="$(readlink "/proc/$pid/cwd" 2>/dev/null)" || return 1
    cwd="${cwd% (deleted)}"
    [[ "$cwd" == "$dir" ]]
}

wait_gone() { # pid seconds
    local pid="$1" i
    for ((i = 0; i < $2 * 10; i++)); do
        [[ -d "/proc/$pid" ]] || return 0
        # A zombie of ours would linger forever; it is gone as far as we care.
        [[ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" == Z ]] && return 0
        sleep 0.1
    done
    return 1
}

stop_pg() { # name
    local name="$1" root dir pid=""
    root="$(pg_root)"
    dir="$root/$name"
    if [[ -f "$dir/postmaster.pid" ]]; then
        pid="$(head -n1 "$dir/postmaster.pid")"
    elif [[ -f "$PIDDIR/$name" ]]; then
        pid="$(cat "$PIDDIR/$name")"
    fi
    [[ -n "$pid" ]] || return 0
    if ! is_ours "$pid" postgres "$dir"; then
        return 0
    fi
    log "stopping $name (pid $pid)"
    if [[ -f "$dir/postmaster.pid" ]]; then
        as_pg "$PX_PGBIN/pg_ctl" -D "$dir" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
    else
        kill -QUIT "$pid" 2>/dev/null || true
    fi
    if ! wait_gone "$pid" 15; then
        warn "$name (pid $pid) did not stop, sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        wait_gone "$pid" 5 || warn "$name (pid $pid) still alive"
    fi
}

stop_redis() {
    local pid=""
    if [[ -f "$D/redis.pid" ]]; then
        pid="$(cat "$D/redis.pid")"
    elif [[ -f "$PIDDIR/redis" ]]; then
        pid="$(cat "$PIDDIR/redis")"
    fi
    [[ -n "$pid" ]] || return 0
    is_ours "$pid" redis-server "$D" || return 0
    log "stopping redis (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    if ! wait_gone "$pid" 10; then
        warn "redis (pid $pid) did not stop, sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        wait_gone "$pid" 5 || warn "redis (pid $pid) still alive"
    fi
}

# Cluster nodes live in $D/redis-cluster/<port>, their --dir: is_ours tells them apart.
cluster_dir() { echo "$D/redis-cluster/$1"; }

stop_cluster() {
    local i port dir pid pids=() ports=()
    for port in "${CLUSTER_PORTS[@]}"; do
        dir="$(cluster_dir "$port")"
        pid=""
        if [[ -f "$dir/redis.pid" ]]; then
            pid="$(cat "$dir/redis.pid")"
        elif [[ -f "$PIDDIR/redis-cluster-$port" ]]; then
            pid="$(cat "$PIDDIR/redis-cluster-$port")"
        fi
        [[ -n "$pid" ]] || continue
        is_ours "$pid" redis-server "$dir" || continue
        log "stopping redis cluster node :$port (pid $pid)"
        kill -TERM "$pid" 2>/dev/null || true
        pids+=("$pid")
        ports+=("$port")
    done
    for ((i = 0; i < ${#pids[@]}; i++)); do
        pid="${pids[i]}"
        if ! wait_gone "$pid" 10; then
            warn "redis cluster node :${ports[i]} (pid $pid) did not stop, sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            wait_gone "$pid" 5 || warn "redis cluster node :${ports[i]} (pid $pid) still alive"
        fi
    done
}

do_stop() {
    [[ -e "$D" ]] || return 0
    if [[ ! -f "$MARKER" ]]; then
        warn "'$D' is not a stack dir (no $MARKER); not touching it"
        return 1
    fi
    local root
    root="$(pg_root)"
    stop_pg replica2
    stop_pg replica1
    stop_pg primary
    stop_redis
    stop_cluster
    if [[ "$root" != "$D" && "$root" == /tmp/fnx-stack.* ]]; then
        rm -rf "$root"
    fi
    rm -rf "$D"
}

print_logs() {
    local root dir f
    root="$(pg_root)"
    for dir in "$D" "$root"; do
        for f in "$dir"/*.log; do
            [[ -f "$f" ]] || continue
            echo "----- tail of $f -----" >&2
            tail -n 25 "$f" >&2 || true
        done
        [[ "$root" != "$D" ]] || break
    done
}

# wait_for DESCRIPTION CMD...: poll CMD until it succeeds or TIMEOUT passes.
wait_for() {
    local what="$1" deadline
    shift
    deadline=$((SECONDS + TIMEOUT))
    until "$@" >/dev/null 2>&1; do
        if ((SECONDS >= deadline)); then
            warn "timed out after ${TIMEOUT}s waiting for $what"
            return 1
        fi
        sleep 0.2
    done
}

# Our ports lie in the kernel's ephemeral range (32768-60999), so a busy machine can briefly
# hold one as the local end of some client connection: a bind that fails with "Address
# already in use" is retried for a while.
BIND_RETRIES="${PX_STACK_BIND_RETRIES:-30}"

# Ask the kernel not to hand our ports (BASE..BASE+6 by default; reserve_ports LO HI for
# another range) out as ephemeral client ports (net.ipv4.ip_local_reserved_ports; appended
# to, never replaced; harmless to leave set). Listening on a reserved port works as usual.
# Skipped where /proc/sys is read-only.
reserve_ports() {
    local f=/proc/sys/net/ipv4/ip_local_reserved_ports cur
    local lo="${1:-$PX_PORT_BASE}" hi="${2:-$((PX_PORT_BASE + 6))}"
    [[ -w "$f" ]] || return 0
    (
        flock -w 10 9 || exit 0
        cur="$(cat "$f")"
        if ! awk -v lo="$lo" -v hi="$hi" -v list="$cur" 'BEGIN {
                n = split(list, r, ",")
                for (i = 1; i <= n; i++) {
                    m = split(r[i], b, "-"); a = b[1] + 0; z = (m > 1 ? b[2] : b[1]) + 0
                    if (a <= lo && hi <= z) exit 0
                }
                exit 1 }'; then
            echo "${cur:+$cur,}$lo-$hi" >"$f" 2>/dev/null || true
        fi
    ) 9>/tmp/.fnx-reserved-ports.lock
}

pg_start() { # root name port
    local root="$1" name="$2" port="$3" attempt
    for ((attempt = 1; ; attempt++)); do
        if as_pg "$PX_PGBIN/pg_ctl" -D "$root/$name" -l "$root/$name.log" -w -t "$TIMEOUT" \
            start </dev/null >>"$root/pg_ctl.log" 2>&1; then
            head -n1 "$root/$name/postmaster.pid" >"$PIDDIR/$name"
            return 0
        fi
        if ((attempt < BIND_RETRIES)) &&
            tail -n 8 "$root/$name.log" | grep -q 'Address already in use'; then
            log "$name: port busy (a client's ephemeral port?), retrying in 1s"
            sleep 1
            continue
        fi
        warn "$name failed to start (see $root/$name.log)"
        if command -v ss >/dev/null; then
            echo "sockets on port $port:" >&2
            ss -tanp 2>/dev/null | grep -E "127\.0\.0\.1:$port\b" >&2 || true
        fi
        return 1
    done
}

redis_start() {
    local attempt seen pid deadline
    for ((attempt = 1; ; attempt++)); do
        seen="$(wc -l 2>/dev/null <"$D/redis.log" || echo 0)"
        rm -f "$D/redis.pid"
        redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --protected-mode yes \
            --save '' --appendonly no --dir "$D" --daemonize yes \
            --pidfile "$D/redis.pid" --logfile "$D/redis.log" --loglevel notice \
            </dev/null >/dev/null 2>&1 || true
        deadline=$((SECONDS + TIMEOUT))
        while ((SECONDS < deadline)); do
            pid="$(cat "$D/redis.pid" 2>/dev/null || true)"
            if [[ -n "$pid" ]] && redis_ready; then
                echo "$pid" >"$PIDDIR/redis"
                return 0
            fi
            # It exits before writing its pidfile when it cannot listen.
            if tail -n +"$((seen + 1))" "$D/redis.log" 2>/dev/null |
                grep -q 'Address already in use'; then
                break
            fi
            sleep 0.2
        done
        if ((SECONDS < deadline && attempt < BIND_RETRIES)); then
            log "redis: port busy (a client's ephemeral port?), retrying in 1s"
            sleep 1
            continue
        fi
        warn "redis failed to start on port $REDIS_PORT (see $D/redis.log)"
        return 1
    done
}

# cluster_start: six cluster-enabled redis-servers (started together, each retried on a busy
# port), joined into 3 masters + 3 replicas by redis-cli --cluster create; returns once
# every node reports cluster_state:ok with all slots served and every replica is in sync.
cluster_start() {
    local attempt port dir pid deadline busy pending=("${CLUSTER_PORTS[@]}") nodes=()
    local -A seen=()
    mkdir -p "$D/redis-cluster"
    for ((attempt = 1; ${#pending[@]} > 0; attempt++)); do
        for port in "${pending[@]}"; do
            dir="$(cluster_dir "$port")"
            mkdir -p "$dir"
            seen[$port]="$(wc -l 2>/dev/null <"$dir/redis.log" || echo 0)"
            rm -f "$dir/redis.pid" "$dir/nodes.conf"
            redis-server --bind 127.0.0.1 --port "$port" --protected-mode yes \
                --cluster-enabled yes --cluster-port $((port + CLUSTER_BUS_OFFSET)) \
                --cluster-config-file nodes.conf --cluster-node-timeout 2000 \
                --save '' --appendonly no --repl-diskless-sync-delay 0 \
                --dir "$dir" --daemonize yes --pidfile "$dir/redis.pid" \
                --logfile "$dir/redis.log" --loglevel notice </dev/null >/dev/null 2>&1 || true
        done
        busy=()
        deadline=$((SECONDS + TIMEOUT))
        for port in "${pending[@]}"; do
            dir="$(cluster_dir "$port")"
            while :; do
                pid="$(cat "$dir/redis.pid" 2>/dev/null || true)"
                if [[ -n "$pid" ]] && cluster_node_pong "$port"; then
                    echo "$pid" >"$PIDDIR/redis-cluster-$port"
                    break
                fi
                # It exits before writing its pidfile when it cannot listen (either port).
                if tail -n +"$((seen[$port] + 1))" "$dir/redis.log" 2>/dev/null |
                    grep -q 'Address already in use'; then
                    busy+=("$port")
                    break
                fi
                if ((SECONDS >= deadline)); then
                    warn "redis cluster node failed to start on port $port (see $dir/redis.log)"
                    return 1
                fi
                sleep 0.1
            done
        done
        pending=("${busy[@]}")
        if ((${#pending[@]} > 0)); then
            if ((attempt >= BIND_RETRIES)); then
                warn "redis cluster: ports ${pending[*]} (or their bus ports," \
                    "+$CLUSTER_BUS_OFFSET) stay busy"
                return 1
            fi
            log "redis cluster: ports ${pending[*]} busy (a client's ephemeral port?)," \
                "retrying in 1s"
            sleep 1
        fi
    done

    for port in "${CLUSTER_PORTS[@]}"; do
        nodes+=("127.0.0.1:$port")
    done
    if ! timeout "$TIMEOUT" redis-cli --cluster create "${nodes[@]}" --cluster-replicas 1 \
        --cluster-yes </dev/null >"$D/redis-cluster/create.log" 2>&1; then
        warn "redis-cli --cluster create failed"
        tail -n 25 "$D/redis-cluster/create.log" >&2 || true
        return 1
    fi
    for port in "${CLUSTER_PORTS[@]}"; do
        wait_for "redis cluster node :$port to report cluster_state:ok" cluster_node_ok "$port"
    done
    wait_for "3 redis cluster replicas in sync with their masters" cluster_replicas_synced
}

cluster_cli() { # port args...
    local port="$1"
    shift
    timeout 5 redis-cli -h 127.0.0.1 -p "$port" "$@"
}

cluster_node_pong() {
    [[ "$(cluster_cli "$1" ping 2>/dev/null)" == PONG ]]
}

cluster_node_ok() {
    local info
    info="$(cluster_cli "$1" cluster info 2>/dev/null | tr -d '\r')" || return 1
    grep -qx 'cluster_state:ok' <<<"$info" &&
        grep -qx 'cluster_slots_ok:16384' <<<"$info" &&
        grep -qx 'cluster_known_nodes:6' <<<"$info" &&
        grep -qx 'cluster_size:3' <<<"$info"
}

cluster_replicas_synced() {
    local port n=0
    for port in "${CLUSTER_PORTS[@]}"; do
        if cluster_cli "$port" info replication 2>/dev/null | tr -d '\r' |
            grep -qx 'master_link_status:up'; then
            n=$((n + 1))
        fi
    done
    ((n == 3))
}

replica_ready() { # port lsn
    [[ "$(psql_at "$1" postgres -c "SELECT pg_is_in_recovery()
            AND pg_last_wal_replay_lsn() >= '$2'::pg_lsn
            AND (SELECT count(*) FROM pg_roles
                 WHERE rolname IN ('fnx','fnx_md5','fnx_plain','fnx_trust','fnx_ssl')) = 5")" == t ]]
}

streaming_count_is() { # n
    [[ "$(psql_at "$PG_PORT" postgres -c \
        "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'")" == "$1" ]]
}

redis_ready() {
    [[ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" == PONG ]]
}

on_start_exit() {
    local rc=$?
    if ((rc != 0)); then
        warn "start failed (exit $rc)"
        print_logs
        if [[ "${PX_STACK_KEEP_ON_FAIL:-0}" == 1 ]]; then
            warn "PX_STACK_KEEP_ON_FAIL=1: leaving $D for inspection (run: $0 stop)"
        else
            do_stop || true
        fi
    fi
    exit "$rc"
}

do_start() {
    local t0=$SECONDS root sock p i lsn
    raise_nofile
    [[ -x "$PX_PGBIN/postgres" ]] || {
        warn "no PostgreSQL at $PX_PGBIN (run scripts/deps.sh)"
        exit 1
    }
    command -v redis-server >/dev/null || {
        warn "redis-server not found (run scripts/deps.sh)"
        exit 1
    }

    if [[ -e "$D" ]]; then
        if [[ -f "$MARKER" ]]; then
            log "cleaning up a previous stack in $D"
            do_stop
        elif [[ -d "$D" && -z "$(ls -A "$D")" ]]; then
            rmdir "$D"
        else
            warn "'$D' exists and is not a stack dir; refusing to use it"
            exit 1
        fi
    fi

    reserve_ports
    reserve_ports "${CLUSTER_PORTS[0]}" "${CLUSTER_BUS_PORTS[5]}"
    for p in "$PG_PORT" "$REPLICA1_PORT" "$REPLICA2_PORT" "$REDIS_PORT" "${CLUSTER_PORTS[@]}" \
        "${CLUSTER_BUS_PORTS[@]}"; do
        if port_in_use "$p"; then
            warn "port $p on 127.0.0.1 is already in use; pick another PX_PORT_BASE"
            exit 1
        fi
    done

    mkdir -p "$D" "$PIDDIR"
    touch "$MARKER"
    echo "$PX_PORT_BASE" >"$D/port_base"
    trap on_start_exit EXIT
    if [[ "$(id -u)" -eq 0 ]]; then
        chown postgres:postgres "$D"
    fi
    chmod 0755 "$D"

    root="$D"
    sock="$D/.s.PGSQL.$PG_PORT"
    if ! as_pg test -w "$D" -a -x "$D" || ((${#sock} > 100)); then
        root="$(mktemp -d /tmp/fnx-stack.XXXXXX)"
        echo "$root" >"$D/pgroot"
        if [[ "$(id -u)" -eq 0 ]]; then
            chown postgres:postgres "$root"
        fi
        log "postgres cannot use $D directly (access or socket path length); using $root"
    fi

    # Throwaway CA + certificates; PostgreSQL gets its own copies it owns (key 0600).
    log "making TLS certificates in $D/certs"
    "$ROOT/scripts/make-certs.sh" "$D/certs"
    mkdir -p "$root/ssl"
    install -m 0644 "$D/certs/server.crt" "$root/ssl/server.crt"
    install -m 0600 "$D/certs/server.key" "$root/ssl/server.key"
    if [[ "$(id -u)" -eq 0 ]]; then
        chown -R postgres:postgres "$root/ssl"
    fi
    chmod 0700 "$root/ssl"

    log "initdb primary"
    if ! as_pg "$PX_PGBIN/initdb" -D "$root/primary" -U postgres -A trust -E UTF8 \
        --locale=C --no-sync --no-instructions >"$root/initdb.log" 2>&1; then
        warn "initdb failed"
        cat "$root/initdb.log" >&2
        exit 1
    fi
    as_pg tee -a "$root/primary/postgresql.conf" >/dev/null <<EOF

# ---- fastnext-proxy test stack ----
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$root'
max_connections = 400
# logical: the proxy follows the primary's changes to keep its result cache fresh
# when writes bypass it (one temporary slot and WAL sender per proxy instance)
wal_level = logical
max_wal_senders = 64
max_replication_slots = 64
hot_standby = on
fsync = off
synchronous_commit = off
full_page_writes = off
shared_buffers = 128MB
shared_preload_libraries = 'pg_stat_statements'
logging_collector = off
log_line_prefix = '%m [%p] %q%u@%d '
log_timezone = 'UTC'
# TLS; the replicas inherit these lines (and the certificate) through pg_basebackup
ssl = on
ssl_cert_file = '$root/ssl/server.crt'
ssl_key_file = '$root/ssl/server.key'
ssl_min_protocol_version = 'TLSv1.2'
EOF
    as_pg tee "$root/primary/pg_hba.conf" >/dev/null <<EOF
# fastnext-proxy test stack
local   all          all                       trust
host    replication  postgres   127.0.0.1/32   trust
hostssl   all        fnx_ssl    127.0.0.1/32   scram-sha-256
hostnossl all        fnx_ssl    127.0.0.1/32   reject
host    all          fnx_trust  127.0.0.1/32   trust
host    all          fnx_md5    127.0.0.1/32   md5
host    all          fnx_plain  127.0.0.1/32   password
host    all          postgres   127.0.0.1/32   trust
host    all          all        127.0.0.1/32   scram-sha-256
EOF

    log "starting primary on 127.0.0.1:$PG_PORT"
    pg_start "$root" primary "$PG_PORT"
    wait_for "primary on port $PG_PORT" psql_at "$PG_PORT" postgres -c "SELECT 1"

    log "creating roles and database fnx"
    psql_at "$PG_PORT" postgres >/dev/null <<'SQL'
SET password_encryption = 'scram-sha-256';
CREATE ROLE fnx LOGIN REPLICATION PASSWORD 'fnx_pass';
SET password_encryption = 'md5';
CREATE ROLE fnx_md5 LOGIN PASSWORD 'md5_pass';
SET password_encryption = 'scram-sha-256';
CREATE ROLE fnx_plain LOGIN PASSWORD 'plain_pass';
CREATE ROLE fnx_trust LOGIN;
CREATE ROLE fnx_ssl LOGIN PASSWORD 'ssl_pass';
CREATE DATABASE fnx OWNER fnx;
GRANT ALL ON DATABASE fnx TO fnx, fnx_md5, fnx_plain, fnx_trust, fnx_ssl;
\connect fnx
GRANT ALL ON SCHEMA public TO fnx, fnx_md5, fnx_plain, fnx_trust, fnx_ssl;
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
SQL

    for i in 1 2; do
        p=$((PG_PORT + i))
        log "pg_basebackup replica$i (slot replica$i)"
        if ! as_pg "$PX_PGBIN/pg_basebackup" -h 127.0.0.1 -p "$PG_PORT" -U postgres \
            -D "$root/replica$i" -R -C -S "replica$i" -X stream -c fast -N \
            >"$root/basebackup$i.log" 2>&1; then
            warn "pg_basebackup for replica$i failed"
            cat "$root/basebackup$i.log" >&2
            exit 1
        fi
        as_pg tee -a "$root/replica$i/postgresql.conf" >/dev/null <<EOF

# ---- replica$i ----
port = $p
hot_standby = on
EOF
        log "starting replica$i on 127.0.0.1:$p"
        pg_start "$root" "replica$i" "$p"
    done

    log "starting redis on 127.0.0.1:$REDIS_PORT"
    redis_start

    log "starting redis cluster on 127.0.0.1:${CLUSTER_PORTS[0]}..${CLUSTER_PORTS[5]}" \
        "(3 masters + 3 replicas)"
    cluster_start

    # A WAL-logged change made after both replicas are up: seeing it replayed proves that
    # streaming works, not just that the base backup was taken after the roles existed.
    psql_at "$PG_PORT" postgres -c "COMMENT ON DATABASE fnx IS 'fastnext-proxy test stack'"
    lsn="$(psql_at "$PG_PORT" postgres -c "SELECT pg_current_wal_lsn()")"
    for i in 1 2; do
        wait_for "replica$i (port $((PG_PORT + i))) to be in recovery and replay $lsn" \
            replica_ready "$((PG_PORT + i))" "$lsn"
    done
    wait_for "2 streaming replicas in pg_stat_replication" streaming_count_is 2

    {
        echo "# fastnext-proxy test stack (generated by scripts/stack.sh start)"
        printf 'export PX_STACK_DIR=%q\n' "$D"
        printf 'export PX_PORT_BASE=%q\n' "$PX_PORT_BASE"
        printf 'export PX_PGBIN=%q\n' "$PX_PGBIN"
        printf 'export PX_PG_HOST=%q\n' 127.0.0.1
        printf 'export PX_PG_PORT=%q\n' "$PG_PORT"
        printf 'export PX_PG_REPLICA1_PORT=%q\n' "$REPLICA1_PORT"
        printf 'export PX_PG_REPLICA2_PORT=%q\n' "$REPLICA2_PORT"
        printf 'export PX_REDIS_PORT=%q\n' "$REDIS_PORT"
        # digits, dots, colons, commas and spaces only: plain single quotes are exact
        printf "export PX_REDIS_CLUSTER_NODES='%s'\n" \
            "$(printf '127.0.0.1:%s,' "${CLUSTER_PORTS[@]}" | sed 's/,$//')"
        printf "export PX_REDIS_CLUSTER_PORTS='%s'\n" "${CLUSTER_PORTS[*]}"
        printf 'export PX_PGBOUNCER_PORT=%q\n' "$PGBOUNCER_PORT"
        printf 'export PX_PROXY_PORT=%q\n' "$PROXY_PORT"
        printf 'export PX_ADMIN_PORT=%q\n' "$ADMIN_PORT"
        printf 'export PX_PG_SOCKET_DIR=%q\n' "$root"
        printf 'export PX_TLS_CA=%q\n' "$D/certs/ca.crt"
        printf 'export PX_TLS_PROXY_CERT=%q\n' "$D/certs/proxy.crt"
        printf 'export PX_TLS_PROXY_KEY=%q\n' "$D/certs/proxy.key"
        printf 'export PX_TLS_PG_CERT=%q\n' "$D/certs/server.crt"
        printf 'export PX_TLS_PG_KEY=%q\n' "$D/certs/server.key"
    } >"$D/env.sh"

    trap - EXIT
    log "ready in $((SECONDS - t0))s: primary :$PG_PORT, replicas :$REPLICA1_PORT :$REPLICA2_PORT," \
        "redis :$REDIS_PORT, redis cluster :${CLUSTER_PORTS[0]}-:${CLUSTER_PORTS[5]};" \
        "env in $D/env.sh"
}

do_status() {
    local root ok=0 name port pid
    if [[ ! -f "$MARKER" ]]; then
        echo "no stack in $D"
        return 1
    fi
    root="$(pg_root)"
    for name in primary replica1 replica2; do
        case $name in
        primary) port=$PG_PORT ;;
        replica1) port=$REPLICA1_PORT ;;
        replica2) port=$REPLICA2_PORT ;;
        esac
        pid="$(head -n1 "$root/$name/postmaster.pid" 2>/dev/null || true)"
        if is_ours "$pid" postgres "$root/$name" &&
            "$PX_PGBIN/pg_isready" -q -h 127.0.0.1 -p "$port"; then
            printf '%-9s up    pid %-8s 127.0.0.1:%s recovery=%s\n' "$name" "$pid" "$port" \
                "$(psql_at "$port" postgres -c 'SELECT pg_is_in_recovery()' 2>/dev/null || echo '?')"
        else
            printf '%-9s DOWN  127.0.0.1:%s\n' "$name" "$port"
            ok=1
        fi
    done
    pid="$(cat "$D/redis.pid" 2>/dev/null || true)"
    if is_ours "$pid" redis-server "$D" && redis_ready; then
        printf '%-9s up    pid %-8s 127.0.0.1:%s\n' redis "$pid" "$REDIS_PORT"
    else
        printf '%-9s DOWN  127.0.0.1:%s\n' redis "$REDIS_PORT"
        ok=1
    fi
    for port in "${CLUSTER_PORTS[@]}"; do
        pid="$(cat "$(cluster_dir "$port")/redis.pid" 2>/dev/null || true)"
        if is_ours "$pid" redis-server "$(cluster_dir "$port")" && cluster_node_ok "$port"; then
            printf '%-9s up    pid %-8s 127.0.0.1:%s role=%s\n' cluster "$pid" "$port" \
                "$(cluster_cli "$port" role 2>/dev/null | head -n1)"
        else
            printf '%-9s DOWN  127.0.0.1:%s\n' cluster "$port"
            ok=1
        fi
    done
    return $ok
}

case "${1:-}" in
start) do_start ;;
stop) do_stop ;;
status) do_status ;;
*)
    echo "usage: $0 start|stop|status" >&2
    exit 2
    ;;
esac
