#!/usr/bin/env bash
# Streams a ~1 GB result (1,000,000 rows of 1,000 bytes) through a proxy with
# psql > /dev/null, sampling the proxy's VmRSS (every 50 ms) and VmHWM, and prints
# how much the proxy's memory grew. A proxy that streams with backpressure stays
# flat; one that buffers results grows by about the result size.
#
#   bench/large_result.sh [NAME:PORT:PID ...]
#
# With no arguments (under scripts/with-stack.sh) it starts its own proxy on
# $PX_PROXY_PORT and measures that. Knobs: LARGE_ROWS (1000000), LARGE_WIDTH
# (1000), LARGE_TIMEOUT (600 s per target), LARGE_FETCH_COUNT (unset: psql reads
# the whole result in one go; set e.g. 1000 to make psql use a cursor instead).
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ROWS="${LARGE_ROWS:-1000000}"
WIDTH="${LARGE_WIDTH:-1000}"
LIMIT="${LARGE_TIMEOUT:-600}"
SQL="SELECT repeat('x',$WIDTH) FROM generate_series(1,$ROWS)"

targets=("$@")
if ((${#targets[@]} == 0)); then
    bench_load_env
    start_proxy || die "the proxy did not start"
    targets=("proxy:$PX_PROXY_PORT:$PROXY_PID")
else
    PGBIN="${PX_PGBIN:-/usr/lib/postgresql/15/bin}"
    PSQL="$PGBIN/psql"; [[ -x "$PSQL" ]] || PSQL="$(command -v psql)"
    export PGPASSWORD="${PGPASSWORD:-fnx_pass}"
fi

# sampler PID OUTFILE: writes the highest VmRSS seen (kB) until killed.
sampler() {
    local pid="$1" out="$2" max=0 r
    while kill -0 "$pid" 2>/dev/null; do
        r="$(awk '$1 == "VmRSS:" {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)"
        if [[ -n "$r" ]] && ((r > max)); then
            max=$r
            echo "$max" >"$out"
        fi
        sleep 0.05
    done
}

kb() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }
mb() { awk -v a="$1" 'BEGIN{printf "%.1f", a/1024}'; }

echo
echo "### Large result: $ROWS rows x $WIDTH bytes (~$((ROWS * WIDTH / 1000000)) MB) through psql > /dev/null"
echo
echo "| target | RSS before | peak RSS during | RSS after | VmHWM before → after | RSS growth | time | status |"
echo "|---|---|---|---|---|---|---|---|"
rc_all=0
for spec in "${targets[@]}"; do
    IFS=: read -r name port pid <<<"$spec"
    [[ -n "$pid" && -d "/proc/$pid" ]] || { echo "| $name | - | - | - | - | - | - | no process |"; rc_all=1; continue; }
    peakf="$(mktemp)"
    rss0="$(kb "$pid" VmRSS)"; hwm0="$(kb "$pid" VmHWM)"
    echo "$rss0" >"$peakf"
    sampler "$pid" "$peakf" &
    spid=$!
    t0=$(date +%s.%N)
    rc=0
    timeout --kill-after=10 "$LIMIT" "$PSQL" -X -q -At \
        -v ON_ERROR_STOP=1 ${LARGE_FETCH_COUNT:+-v FETCH_COUNT=$LARGE_FETCH_COUNT} \
        -h 127.0.0.1 -p "$port" -U fnx -d fnx -c "$SQL" >/dev/null 2>"$peakf.err" || rc=$?
    t1=$(date +%s.%N)
    sleep 0.2
    kill "$spid" 2>/dev/null || true
    wait "$spid" 2>/dev/null || true
    rss1="$(kb "$pid" VmRSS)"; hwm1="$(kb "$pid" VmHWM)"
    peak="$(cat "$peakf")"
    status=ok
    if ((rc != 0)); then
        status="fails (rc $rc: $(head -c 200 "$peakf.err" | tr '\n|' '  '))"
        rc_all=1
    fi
    secs="$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}')"
    echo "| $name | $(mb "$rss0") MB | $(mb "$peak") MB | $(mb "$rss1") MB | $(mb "$hwm0") → $(mb "$hwm1") MB | **$(mb $((peak - rss0))) MB** | ${secs} s | $status |"
    rm -f "$peakf" "$peakf.err"
done
exit $rc_all
