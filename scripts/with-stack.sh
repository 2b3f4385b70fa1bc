#!/usr/bin/env bash
# scripts/with-stack.sh CMD [ARGS...]
#
# Starts the test stack (scripts/stack.sh), runs CMD with the stack's environment
# ($PX_STACK_DIR/env.sh) exported, and always stops the stack afterwards, also when CMD
# fails or we are interrupted. Exits with CMD's status (or 130/143 on SIGINT/SIGTERM).
set -euo pipefail

if (($# == 0)); then
    echo "usage: $0 CMD [ARGS...]" >&2
    exit 2
fi

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PX_PORT_BASE="${PX_PORT_BASE:-55430}"
PX_STACK_DIR="$(realpath -m "${PX_STACK_DIR:-$ROOT/.stack}")"
export PX_PORT_BASE PX_STACK_DIR

hard="$(ulimit -Hn)"
if [[ "$hard" == unlimited ]] || ((hard >= 65536)); then
    ulimit -n 65536
else
    ulimit -n "$hard"
fi

stopped=0
stop_stack() {
    if ((stopped == 0)); then
        stopped=1
        # Quietly: the last line of CMD's output (a test summary) stays the last line.
        PX_STACK_QUIET=1 "$ROOT/scripts/stack.sh" stop || echo "with-stack: stopping the stack failed" >&2
    fi
}
# shellcheck disable=SC2317  # invoked by the traps below
on_signal() {
    trap - INT TERM
    echo "with-stack: interrupted, stopping the stack" >&2
    stop_stack
    exit "$1"
}
trap stop_stack EXIT
trap 'on_signal 130' INT
trap 'on_signal 143' TERM

"$ROOT/scripts/stack.sh" start
# shellcheck source=/dev/null
. "$PX_STACK_DIR/env.sh"

set +e
"$@"
rc=$?
set -e
stop_stack
exit "$rc"
