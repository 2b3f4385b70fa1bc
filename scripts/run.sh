#!/usr/bin/env bash
# `make run`: a throwaway stack (PostgreSQL primary + 2 replicas + Redis) plus the proxy on
# 127.0.0.1:6432 (admin 127.0.0.1:9930), in the foreground. Ctrl-C stops the proxy and the
# stack and leaves nothing running.
#
# Environment: PX_PORT_BASE [55430] and PX_STACK_DIR as for scripts/stack.sh;
# PX_PROXY_BIN [build/fastnext-proxy]; PROXY_LISTEN/ADMIN_LISTEN override the listen addresses.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PX_PORT_BASE="${PX_PORT_BASE:-55430}"
PX_STACK_DIR="$(realpath -m "${PX_STACK_DIR:-$ROOT/.stack}")"
export PX_PORT_BASE PX_STACK_DIR
BIN="${PX_PROXY_BIN:-$ROOT/build/fastnext-proxy}"
LISTEN="${PROXY_LISTEN:-127.0.0.1:6432}"
ADMIN="${ADMIN_LISTEN:-127.0.0.1:9930}"

if [[ ! -x "$BIN" ]]; then
    echo "run: $BIN not found; build it first (make build)" >&2
    exit 1
fi

hard="$(ulimit -Hn)"
if [[ "$hard" == unlimited ]] || ((hard >= 65536)); then
    ulimit -n 65536
else
    ulimit -n "$hard"
fi

proxy_pid=""
cleaned=0
# shellcheck disable=SC2317  # invoked by the traps below
cleanup() {
    ((cleaned == 0)) || return 0
    cleaned=1
    trap - INT TERM
    if [[ -n "$proxy_pid" ]] && kill -0 "$proxy_pid" 2>/dev/null; then
        echo "run: stopping the proxy (pid $proxy_pid)"
        kill -TERM "$proxy_pid" 2>/dev/null || true
        for _ in $(seq 1 100); do
            kill -0 "$proxy_pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$proxy_pid" 2>/dev/null; then
            echo "run: proxy did not exit in 10s, sending SIGKILL" >&2
            kill -KILL "$proxy_pid" 2>/dev/null || true
        fi
        wait "$proxy_pid" 2>/dev/null || true
    fi
    echo "run: stopping the stack"
    "$ROOT/scripts/stack.sh" stop || true
}
# shellcheck disable=SC2317  # invoked by the traps below
on_signal() {
    cleanup
    exit "$1"
}
trap cleanup EXIT
trap 'on_signal 130' INT
trap 'on_signal 143' TERM

"$ROOT/scripts/stack.sh" start
# shellcheck source=/dev/null
. "$PX_STACK_DIR/env.sh"

# PgBouncer userlist.txt format; the proxy logs in to PostgreSQL as each user with these.
AUTH_FILE_PATH="$PX_STACK_DIR/userlist.txt"
cat >"$AUTH_FILE_PATH" <<'EOF'
"fnx" "fnx_pass"
"fnx_md5" "md5_pass"
"fnx_plain" "plain_pass"
"fnx_trust" ""
EOF
chmod 0600 "$AUTH_FILE_PATH"

host="${LISTEN%:*}"
port="${LISTEN##*:}"
cat <<EOF

================================================================================
 fastnext-proxy  $BIN
   proxy   $LISTEN     admin http://$ADMIN/
   primary 127.0.0.1:$PX_PG_PORT  replicas 127.0.0.1:$PX_PG_REPLICA1_PORT,127.0.0.1:$PX_PG_REPLICA2_PORT  redis 127.0.0.1:$PX_REDIS_PORT
   users   fnx/fnx_pass (scram)  fnx_md5/md5_pass  fnx_plain/plain_pass  fnx_trust
   auth    $AUTH_FILE_PATH

 Connect through the proxy:
   psql "postgresql://fnx:fnx_pass@$host:$port/fnx"
 Directly to the primary:
   psql "postgresql://fnx:fnx_pass@127.0.0.1:$PX_PG_PORT/fnx"

 Ctrl-C stops the proxy and the stack.
================================================================================

EOF

env PROXY_LISTEN="$LISTEN" ADMIN_LISTEN="$ADMIN" \
    POSTGRES_SERVER=127.0.0.1 POSTGRES_PORT="$PX_PG_PORT" \
    POSTGRES_READ_REPLICAS="127.0.0.1:$PX_PG_REPLICA1_PORT,127.0.0.1:$PX_PG_REPLICA2_PORT" \
    REDIS_HOST=127.0.0.1 REDIS_PORT="$PX_REDIS_PORT" \
    AUTH_FILE="$AUTH_FILE_PATH" AUTH_TYPE=scram-sha-256 \
    POSTGRES_USER=fnx POSTGRES_PASSWORD=fnx_pass POSTGRES_DB=fnx \
    "$BIN" "$@" &
proxy_pid=$!

# `wait` returns early when a trapped signal arrives, so Ctrl-C is handled at once even if
# the proxy (a background job, so SIGINT-immune) keeps running; cleanup then sends SIGTERM.
rc=0
wait "$proxy_pid" || rc=$?
echo "run: proxy exited with status $rc"
proxy_pid=""
exit "$rc"
