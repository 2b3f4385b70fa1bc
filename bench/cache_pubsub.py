#!/usr/bin/python3
"""How long another proxy instance serves an entry after a write through
this one: the cross-instance invalidation delay over Redis pub/sub.

Two proxies (the same binary, both with REDIS_HOST, or REDIS_CLUSTER_NODES
with --cluster) in front of the stack's primary. For each of N rounds: instance
B caches `SELECT v FROM t WHERE id = 1`; a client of instance A updates the
row; the time from A's UPDATE returning to B's first answer with the new
value is one sample (B is polled in a tight loop, so the figure includes one
poll's round trip, about 0.1 ms on loopback). Prints p50 / p95 / p99 / max in
milliseconds and writes them to bench/results/cache-pubsub-<time>.json.

Needs the stack's environment (scripts/stack.sh's env.sh: PX_PG_PORT,
PX_REDIS_PORT, PX_REDIS_CLUSTER_NODES) and the proxy binary (PX_PROXY_BIN or
build/fastnext-proxy). Usage: bench/cache_pubsub.py [--rounds N] [--cluster]
"""
import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import psycopg

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def start_proxy(binary, pg_port, redis_env, tmp):
    port, admin = free_port(), free_port()
    auth = os.path.join(tmp, "userlist-%d.txt" % port)
    with open(auth, "w") as f:
        f.write('"fnx" "fnx_pass"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(PROXY_LISTEN="127.0.0.1:%d" % port, ADMIN_LISTEN="127.0.0.1:%d" % admin,
               POSTGRES_SERVER="127.0.0.1", POSTGRES_PORT=str(pg_port), POSTGRES_USER="fnx",
               AUTH_FILE=auth, WORKERS="2", DB_POOL_SIZE="8", CACHE_ENABLED="true",
               LOG_LEVEL="warn", DRAIN_TIMEOUT="1", **redis_env)
    log = open(os.path.join(tmp, "proxy-%d.log" % port), "wb")
    proc = subprocess.Popen([binary], env=env, stdout=log, stderr=log)
    deadline = time.time() + 15
    while time.time() < deadline:
        try:
            st = json.load(urllib.request.urlopen(
                "http://127.0.0.1:%d/api/v1/cache/stats" % admin, timeout=1))
            if st.get("catalog_loaded") and st.get("serving"):
                return proc, port, admin
        except OSError:
            pass
        time.sleep(0.1)
    proc.kill()
    sys.exit("proxy on :%d did not come up (log in %s)" % (port, tmp))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=500)
    ap.add_argument("--cluster", action="store_true")
    args = ap.parse_args()
    pg_port = int(os.environ["PX_PG_PORT"])
    if args.cluster:
        redis_env = {"REDIS_CLUSTER_NODES": os.environ["PX_REDIS_CLUSTER_NODES"]}
    else:
        redis_env = {"REDIS_HOST": "127.0.0.1", "REDIS_PORT": os.environ["PX_REDIS_PORT"]}
    binary = os.environ.get("PX_PROXY_BIN") or os.path.join(ROOT, "build", "fastnext-proxy")
    table = "bench_pubsub_%d" % os.getpid()
    with psycopg.connect(host="127.0.0.1", port=pg_port, user="postgres", dbname="fnx",
                         autocommit=True) as s:
        s.execute("CREATE TABLE %s (id int primary key, v int)" % table)
        s.execute("INSERT INTO %s VALUES (1, 0)" % table)
        s.execute("ALTER TABLE %s OWNER TO fnx" % table)
    procs = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            a = start_proxy(binary, pg_port, redis_env, tmp)
            b = start_proxy(binary, pg_port, redis_env, tmp)
            procs = [a[0], b[0]]
            conn = "host=127.0.0.1 port=%d user=fnx password=fnx_pass dbname=fnx"
            sql = "SELECT v FROM %s WHERE id = 1" % table
            with psycopg.connect(conn % a[1], autocommit=True) as wa, \
                    psycopg.connect(conn % b[1], autocommit=True) as rb:
                # b's catalog learns the table
                deadline = time.time() + 10
                while time.time() < deadline:
                    rb.execute(sql).fetchone()
                    st = json.load(urllib.request.urlopen(
                        "http://127.0.0.1:%d/api/v1/cache/stats" % b[2]))
                    if st["total_hits"] > 0:
                        break
                    time.sleep(0.1)
                samples, polls = [], 0
                for i in range(1, args.rounds + 1):
                    rb.execute(sql).fetchone()  # cached in b
                    rb.execute(sql).fetchone()
                    wa.execute("UPDATE %s SET v = %d WHERE id = 1" % (table, i))
                    t0 = time.perf_counter()
                    while rb.execute(sql).fetchone()[0] != i:
                        polls += 1
                        if time.perf_counter() - t0 > 5:
                            sys.exit("instance B still stale after 5 s (round %d)" % i)
                    samples.append((time.perf_counter() - t0) * 1000.0)
            samples.sort()

            def pct(p):
                return samples[min(len(samples) - 1, int(round(p / 100.0 * (len(samples) - 1))))]

            res = {"rounds": len(samples), "p50_ms": round(pct(50), 3),
                   "p95_ms": round(pct(95), 3), "p99_ms": round(pct(99), 3),
                   "max_ms": round(samples[-1], 3), "stale_polls": polls,
                   "redis": "cluster" if args.cluster else "single"}
            print("cross-instance invalidation delay (%s Redis, %d rounds): p50 %.2f ms, "
                  "p95 %.2f ms, p99 %.2f ms, max %.2f ms; B answered stale %d times in all"
                  % (res["redis"], res["rounds"], res["p50_ms"], res["p95_ms"], res["p99_ms"],
                     res["max_ms"], polls))
            out = os.path.join(ROOT, "bench", "results",
                               "cache-pubsub-%s.json" % time.strftime("%Y%m%d-%H%M%S"))
            os.makedirs(os.path.dirname(out), exist_ok=True)
            with open(out, "w") as f:
                json.dump(res, f, indent=1)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
        with psycopg.connect(host="127.0.0.1", port=pg_port, user="postgres", dbname="fnx",
                             autocommit=True) as s:
            s.execute("DROP TABLE IF EXISTS %s" % table)


if __name__ == "__main__":
    main()
