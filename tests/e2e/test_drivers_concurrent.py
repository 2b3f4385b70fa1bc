"""Real drivers with their default settings, many at once, through one
transaction-pooling proxy with a small pool.

The per-driver files (test_driver_*.py, test_prepared.py, test_queries.py)
check each driver's features one client or one scenario at a time.  Here:

- what drivers' and pools' *defaults* send between uses of a connection:
  asyncpg's pool resets a released connection with one multi-statement
  Query (`SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET
  ALL;`), Npgsql and PgBouncer-style resets send `DISCARD ALL`, ORMs send a
  `SET ...; SELECT ...` string; none of them may take a server connection
  away from the other clients for good;
- cancels and driver timeouts (asyncpg `timeout=`) of a query that is still
  waiting for a server connection;
- many connections of one driver (asyncpg, psycopg 3, psycopg 2) running a
  whole application workload at once over a pool of 3: automatic
  server-side prepared statements, per-client random values of many types
  checked exactly, transactions, savepoints, errors mid-transaction,
  server-side cursors, COPY in and out;
- several driver families (asyncpg, psycopg 3, pgx, pgjdbc, Postgres.js)
  at once over one pool of 4 with the result cache on and read replicas
  configured, as an application fleet would run them.

Every test passes directly against PostgreSQL (PX_E2E_DIRECT=1).
"""

import asyncio
import datetime
import decimal
import io
import json
import os
import random
import subprocess
import threading
import time

import psycopg
import psycopg.errors
import pytest

from conftest import DBNAME, PASSWORDS, pg_env, pg_super

PIN_LINE = "pinned to its server connection"
ASYNCPG_RESET = "SELECT pg_advisory_unlock_all();\nCLOSE ALL;\nUNLISTEN *;\nRESET ALL;"


def pin_lines(px):
    if px.direct:
        return []
    return [ln for ln in px.stderr_text().splitlines() if PIN_LINE in ln]


def apg_kw(px, **kw):
    kw.setdefault("timeout", 20)
    return dict(host=px.host, port=px.port, user="fnx", password=PASSWORDS["fnx"],
                database=DBNAME, **kw)


def run_async(coro, limit):
    return asyncio.run(asyncio.wait_for(coro, limit))


# ------------------------------------------- what pools send between two uses


@pytest.mark.timeout_s(40)
def test_asyncpg_pool_release_leaves_the_server_connection_to_other_clients(proxy):
    """asyncpg.create_pool() with its defaults resets every released
    connection with ASYNCPG_RESET.  Two pools (two client connections) over
    one server connection must take turns on it for as long as they like."""
    import asyncpg

    px = proxy(env={"DB_POOL_SIZE": "1", "DB_MAX_OVERFLOW": "0", "DB_POOL_TIMEOUT": "3"})

    async def main():
        pools = [await asyncpg.create_pool(min_size=1, max_size=1, **apg_kw(px))
                 for _ in range(2)]
        try:
            for k in range(4):
                for n, p in enumerate(pools):
                    async with p.acquire() as c:
                        await c.execute("SET application_name = 'pool%d'" % n)
                        assert await c.fetchval("SELECT $1::int * 3", k) == 3 * k
                        assert await c.fetchval("SHOW application_name") == "pool%d" % n
                    async with p.acquire() as c:  # RESET ALL undid the SET
                        assert await c.fetchval("SHOW application_name") == ""
        finally:
            for p in pools:
                await asyncio.wait_for(p.close(), 10)

    run_async(main(), 30)
    assert pin_lines(px) == []


RESETS = {
    "asyncpg_reset": ASYNCPG_RESET,
    "discard_all": "DISCARD ALL",
    "set_then_select": "SET application_name = 'other'; SELECT 1",
}


@pytest.mark.parametrize("what", list(RESETS))
@pytest.mark.timeout_s(30)
def test_reset_statements_pools_send_do_not_take_the_server_connection_for_good(proxy, what):
    """Client a sends what a driver's pool sends when a connection goes back
    (or an ORM's multi-statement string); client b, on the same one server
    connection, must still get answers; a sees exactly PostgreSQL's
    settings afterwards."""
    px = proxy(env={"DB_POOL_SIZE": "1", "DB_MAX_OVERFLOW": "0", "DB_POOL_TIMEOUT": "3"})
    sql = RESETS[what]
    with px.connect(autocommit=True, application_name="app_a") as a, \
            px.connect(autocommit=True, application_name="app_b") as b:
        a.execute("SET statement_timeout = '4321'")
        assert a.execute("SHOW statement_timeout").fetchone()[0] == "4321ms"
        a.execute(sql)
        want = ("4321ms", "other") if what == "set_then_select" else ("0", "app_a")
        for _ in range(3):
            assert b.execute("SELECT 'b', current_setting('application_name')").fetchone() == (
                "b", "app_b")
            assert (a.execute("SHOW statement_timeout").fetchone()[0],
                    a.execute("SHOW application_name").fetchone()[0]) == want
    assert pin_lines(px) == []


# ------------------------------------------- cancel of a query still waiting for a server


def _hold_the_only_server_connection(px, seconds, started):
    with px.connect() as h:
        h.execute("SELECT 1")  # BEGIN: the transaction holds the server connection
        started.set()
        h.execute("SELECT pg_sleep(%s)" % seconds)
        h.rollback()


@pytest.mark.timeout_s(30)
def test_cancel_of_a_query_waiting_for_a_server_connection_cancels_it(proxy):
    px = proxy(env={"DB_POOL_SIZE": "1", "DB_MAX_OVERFLOW": "0", "DB_POOL_TIMEOUT": "20"})
    with px.connect(autocommit=True) as b:
        b.execute("SELECT 1")
        started = threading.Event()
        holder = threading.Thread(target=_hold_the_only_server_connection,
                                  args=(px, 1.5, started))
        holder.start()
        assert started.wait(10)
        got = {}

        def run_b():
            t0 = time.monotonic()
            try:
                b.execute("SELECT pg_sleep(3), 'b-ran'")
                got["b"] = "ran"
            except psycopg.errors.QueryCanceled:
                got["b"] = "canceled"
            got["t"] = time.monotonic() - t0

        tb = threading.Thread(target=run_b)
        tb.start()
        time.sleep(0.3)
        b.cancel()
        tb.join(15)
        holder.join(15)
        assert got.get("b") == "canceled" and got["t"] < 1.2, got
        assert b.execute("SELECT 'b-after'").fetchone() == ("b-after",)


@pytest.mark.timeout_s(30)
def test_asyncpg_timeout_of_a_query_waiting_for_a_server_connection(proxy):
    import asyncpg

    px = proxy(env={"DB_POOL_SIZE": "1", "DB_MAX_OVERFLOW": "0", "DB_POOL_TIMEOUT": "20"})

    started = threading.Event()
    holder = threading.Thread(target=_hold_the_only_server_connection, args=(px, 1.0, started))

    async def main():
        c = await asyncpg.connect(**apg_kw(px))
        try:
            # prepared (asyncpg's statement cache): the timed-out call is Bind/Execute only
            assert await c.fetchval("SELECT pg_sleep($1::float8)::text", 0) == ""
            holder.start()
            while not started.is_set():
                await asyncio.sleep(0.02)
            t0 = time.monotonic()
            with pytest.raises(asyncio.TimeoutError):
                await c.fetchval("SELECT pg_sleep($1::float8)::text", 4, timeout=0.3)
            assert await c.fetchval("SELECT $1::text", "next") == "next"
            return time.monotonic() - t0
        finally:
            await asyncio.wait_for(c.close(), 10)

    try:
        took = run_async(main(), 20)
    finally:
        if holder.is_alive():
            holder.join(15)
    # directly: 0.3 s; the abandoned pg_sleep(4) must not run to its end
    assert took < 2.5, "timeout + next query took %.1fs" % took


# ------------------------------------------- one driver, many connections, a whole app


TYPES_TABLE = ("id int primary key, cl int, b bytea, a int[], j jsonb, n numeric, "
               "ts timestamptz, t text")


def _values(rnd, i, k):
    b = rnd.randbytes(rnd.randint(0, 3000))
    a = [rnd.randint(-10 ** 6, 10 ** 6) for _ in range(rnd.randint(0, 20))]
    j = {"c": i, "k": k, "s": "\u00e9\u20ac" * rnd.randint(0, 5), "f": rnd.random()}
    n = decimal.Decimal("%d.%06d" % (rnd.randint(-10 ** 12, 10 ** 12), rnd.randint(0, 999999)))
    ts = datetime.datetime(2000 + rnd.randint(0, 50), rnd.randint(1, 12), rnd.randint(1, 28),
                           rnd.randint(0, 23), rnd.randint(0, 59), rnd.randint(0, 59),
                           rnd.randint(0, 999999), tzinfo=datetime.timezone.utc)
    return b, a, j, n, ts


async def asyncpg_app(c, t, i, rounds):
    """One asyncpg connection's workload (statement cache on, binary
    results); every answer checked exactly."""
    import asyncpg

    rnd = random.Random(i)
    for k in range(rounds):
        b, a, j, n, ts = _values(rnd, i, k)
        r = await c.fetchrow("SELECT $1::bytea, $2::int[], $3::jsonb, $4::numeric, "
                             "$5::timestamptz, $6::text", b, a, json.dumps(j), n, ts, "t%d" % i)
        assert (r[0], r[1], json.loads(r[2]), r[3], r[4], r[5]) == (b, a, j, n, ts, "t%d" % i)
        base = i * 1000 + k * 100
        async with c.transaction():
            await c.execute("INSERT INTO %s VALUES ($1, $2, $3, $4, $5, $6, $7, $8)" % t,
                            base, i, b, a, json.dumps(j), n, ts, "x")
            with pytest.raises(asyncpg.UniqueViolationError):
                async with c.transaction():  # a savepoint
                    await c.execute("INSERT INTO %s (id, cl) VALUES ($1, $2)" % t, base, i)
            await c.executemany("INSERT INTO %s (id, cl) VALUES ($1, $2)" % t,
                                [(base + m, i) for m in range(1, 5)])
            total = 0
            async for row in c.cursor("SELECT g FROM generate_series(1, $1::int) g", 50 + k,
                                      prefetch=7):
                total += row[0]
            assert total == (50 + k) * (51 + k) // 2
        await c.copy_records_to_table(t, records=[(base + 50 + m, i, "cp%d" % m)
                                                  for m in range(20)],
                                      columns=["id", "cl", "t"])
        assert await c.fetchval("SELECT count(*) FROM %s WHERE cl = $1 AND id BETWEEN $2 AND $3"
                                % t, i, base, base + 99) == 25
        row = await c.fetchrow("SELECT b, a, n, ts FROM %s WHERE id = $1" % t, base)
        assert tuple(row) == (b, a, n, ts)
        with pytest.raises(asyncpg.DivisionByZeroError):
            async with c.transaction():
                await c.execute("INSERT INTO %s (id, cl) VALUES ($1, $2)" % t, base + 99, i)
                await c.fetchval("SELECT 1 / $1::int", 0)
        assert await c.fetchval("SELECT count(*) FROM %s WHERE id = $1" % t, base + 99) == 0
        buf = io.BytesIO()
        await c.copy_from_query("SELECT id, t FROM %s WHERE cl = $1 AND id >= $2 AND id < $3 "
                                "ORDER BY id" % t, i, base + 50, base + 55, output=buf)
        assert buf.getvalue().decode() == "".join(
            "%d\tcp%d\n" % (base + 50 + m, m) for m in range(5))
        await c.execute("SET application_name = 'cl%d_%d'" % (i, k))
        assert await c.fetchval("SELECT current_setting('application_name')") == "cl%d_%d" % (i, k)


@pytest.mark.timeout_s(60)
def test_asyncpg_40_connections_run_a_whole_app_workload_over_a_pool_of_3(proxy, make_table):
    import asyncpg

    px = proxy(env={"DB_POOL_SIZE": "3", "DB_MAX_OVERFLOW": "0", "DB_POOL_TIMEOUT": "30",
                    "CLIENT_LOGIN_TIMEOUT": "30"})
    t = make_table(TYPES_TABLE)
    n_clients, rounds = 40, 4

    async def main():
        conns = await asyncio.gather(*[asyncpg.connect(**apg_kw(px, timeout=30))
                                       for _ in range(n_clients)])
        try:
            return await asyncio.gather(*[asyncpg_app(c, t, i, rounds)
                                          for i, c in enumerate(conns)],
                                        return_exceptions=True)
        finally:
            await asyncio.gather(*[asyncio.wait_for(c.close(), 10) for c in conns])

    results = run_async(main(), 55)
    errors = [(i, r) for i, r in enumerate(results) if isinstance(r, BaseException)]
    assert not errors, "%d of %d clients failed, first: %r" % (len(errors), n_clients, errors[0])
    with pg_super() as s:
        assert s.execute("SELECT count(*), count(DISTINCT cl) FROM %s" % t).fetchone() == (
            n_clients * rounds * 25, n_clients)
    assert pin_lines(px) == []


def psycopg3_app(px, t, i, rounds, **kw):
    """One psycopg 3 connection with its defaults (not autocommit,
    prepare_threshold=5: server-side statements from the 6th run on)."""
    rnd = random.Random(1000 + i)
    with px.connect(**kw) as c:
        for k in range(rounds):
            b, a, j, n, ts = _values(rnd, i, k)
            r = c.execute("SELECT %s::bytea, %s::int[], %s::jsonb, %s::numeric, "
                          "%s::timestamptz, %s::text",
                          (b, a, psycopg.types.json.Jsonb(j), n, ts, "t%d" % i)).fetchone()
            assert r == (b, a, j, n, ts, "t%d" % i)
            base = i * 1000 + k * 100
            c.execute("INSERT INTO " + t + " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                      (base, i, b, a, psycopg.types.json.Jsonb(j), n, ts, "x"))
            with pytest.raises(psycopg.errors.UniqueViolation):
                with c.transaction():  # a savepoint in the open transaction
                    c.execute("INSERT INTO " + t + " (id, cl) VALUES (%s, %s)", (base, i))
            c.cursor().executemany("INSERT INTO " + t + " (id, cl) VALUES (%s, %s)",
                                   [(base + m, i) for m in range(1, 5)])
            with c.cursor(name="cur%d_%d" % (i, k)) as cur:  # a server-side cursor
                cur.itersize = 7
                cur.execute("SELECT g FROM generate_series(1, %s) g", (50 + k,))
                assert sum(r[0] for r in cur) == (50 + k) * (51 + k) // 2
            c.commit()
            with c.cursor().copy("COPY %s (id, cl, t) FROM STDIN" % t) as cp:
                for m in range(20):
                    cp.write_row((base + 50 + m, i, "cp%d" % m))
            c.commit()
            assert c.execute("SELECT count(*) FROM " + t + " WHERE cl = %s AND id BETWEEN %s "
                             "AND %s", (i, base, base + 99)).fetchone() == (25,)
            assert c.execute("SELECT b, a, n, ts FROM " + t + " WHERE id = %s",
                             (base,)).fetchone() == (b, a, n, ts)
            c.execute("INSERT INTO " + t + " (id, cl) VALUES (%s, %s)", (base + 99, i))
            with pytest.raises(psycopg.errors.DivisionByZero):
                c.execute("SELECT 1 / %s::int", (0,))
            c.rollback()
            assert c.execute("SELECT count(*) FROM " + t + " WHERE id = %s",
                             (base + 99,)).fetchone() == (0,)
            with c.cursor().copy("COPY (SELECT id, t FROM %s WHERE cl = %d AND id >= %d AND "
                                 "id < %d ORDER BY id) TO STDOUT"
                                 % (t, i, base + 50, base + 55)) as cp:
                out = b"".join(bytes(d) for d in cp)
            assert out.decode() == "".join("%d\tcp%d\n" % (base + 50 + m, m) for m in range(5))
            c.commit()


def psycopg2_app(px, t, i, rounds):
    """One psycopg2 connection with its defaults, half of them in LATIN1."""
    import psycopg2
    import psycopg2.errors
    import psycopg2.extras

    enc = "LATIN1" if i % 2 else "UTF8"
    rnd = random.Random(2000 + i)
    c = psycopg2.connect(host=px.host, port=px.port, user="fnx", password=PASSWORDS["fnx"],
                         dbname=DBNAME, client_encoding=enc, connect_timeout=20)
    try:
        cur = c.cursor()
        for k in range(rounds):
            text = "caf\u00e9 %d \u00fc%d" % (i, rnd.randint(0, 10 ** 9))
            cur.execute("SELECT %s::text, length(%s::text), current_setting('client_encoding')",
                        (text, text))
            assert cur.fetchone() == (text, len(text), enc)
            base = i * 1000 + k * 100
            cur.execute("INSERT INTO " + t + " (id, cl, t, j) VALUES (%s, %s, %s, %s)",
                        (base, i, text, psycopg2.extras.Json({"t": text})))
            cur.execute("SAVEPOINT s")
            with pytest.raises(psycopg2.errors.UniqueViolation):
                cur.execute("INSERT INTO " + t + " (id, cl) VALUES (%s, %s)", (base, i))
            cur.execute("ROLLBACK TO SAVEPOINT s")
            psycopg2.extras.execute_values(cur, "INSERT INTO " + t + " (id, cl) VALUES %s",
                                           [(base + m, i) for m in range(1, 5)])
            named = c.cursor(name="pc%d_%d" % (i, k))
            named.itersize = 9
            named.execute("SELECT g, %s::text FROM generate_series(1, %s) g", (text, 40 + k))
            rows = list(named)
            named.close()
            assert rows == [(g, text) for g in range(1, 41 + k)]
            c.commit()
            cur.copy_expert("COPY %s (id, cl, t) FROM STDIN" % t, io.StringIO(
                "".join("%d\t%d\t%s\n" % (base + 50 + m, i, text) for m in range(20))))
            c.commit()
            cur.execute("SELECT t, j->>'t' FROM " + t + " WHERE id = %s", (base,))
            assert cur.fetchone() == (text, text)
            out = io.StringIO()
            cur.copy_expert("COPY (SELECT t FROM %s WHERE id BETWEEN %d AND %d) TO STDOUT"
                            % (t, base + 50, base + 52), out)
            assert out.getvalue() == (text + "\n") * 3
            cur.execute("SELECT count(*) FROM " + t + " WHERE cl = %s AND id BETWEEN %s AND %s",
                        (i, base, base + 99))
            assert cur.fetchone() == (25,)
            c.commit()
    finally:
        c.close()


def run_threads(target, args_list):
    errors = []

    def wrap(args):
        try:
            target(*args)
        except BaseException as e:  # noqa: B902 - reported below
            errors.append((args[2], repr(e)))

    ths = [threading.Thread(target=wrap, args=(a,)) for a in args_list]
    for th in ths:
        th.start()
    return ths, errors


@pytest.mark.timeout_s(60)
def test_psycopg3_and_psycopg2_24_connections_whole_app_workload_over_a_pool_of_3(
        proxy, make_table):
    px = proxy(env={"DB_POOL_SIZE": "3", "DB_MAX_OVERFLOW": "0", "DB_POOL_TIMEOUT": "30",
                    "CLIENT_LOGIN_TIMEOUT": "30"})
    t = make_table(TYPES_TABLE)
    rounds = 3
    ths3, err3 = run_threads(psycopg3_app, [(px, t, i, rounds) for i in range(12)])
    ths2, err2 = run_threads(psycopg2_app, [(px, t, i, rounds) for i in range(100, 112)])
    for th in ths3 + ths2:
        th.join(55)
    assert err3 == [] and err2 == []
    with pg_super() as s:
        assert s.execute("SELECT count(*), count(DISTINCT cl) FROM %s" % t).fetchone() == (
            24 * rounds * 25, 24)
    assert pin_lines(px) == []


# ------------------------------------------- several driver families at once


import test_driver_go  # noqa: E402
import test_driver_jdbc  # noqa: E402
from test_driver_jdbc import JAR  # noqa: E402
from test_driver_postgres_js import CLIENT as PGJS_CLIENT, node_modules  # noqa: E402

# the other files' module-scoped fixtures that build the Go and Java clients
pgx_client = test_driver_go.pgx_client
jdbc_classes = test_driver_jdbc.jdbc_classes


def _spawn(argv, px, **env):
    e = pg_env(px, **{k: str(v) for k, v in env.items()})
    return subprocess.Popen(argv, env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def _summary(name, p, timeout):
    stdout, stderr = p.communicate(timeout=timeout)
    assert p.returncode == 0, "%s failed (exit %s):\n%s\n%s" % (
        name, p.returncode, stdout[-3000:], stderr[-3000:])
    return json.loads(stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("config", ["pool_only", "cache_and_replicas"])
@pytest.mark.timeout_s(60)
def test_five_driver_families_at_once_over_one_pool_of_4(
        proxy, make_table, stack, pgx_client, jdbc_classes, config):
    """pgx (pgxpool, 12 goroutines), pgjdbc (6 threads), Postgres.js (12
    clients), asyncpg (12 connections) and psycopg 3 (6 threads), each with
    its defaults, all at once through one proxy with 4 server connections;
    with the result cache on and both replicas configured too, as the
    proxy's defaults would run them (read-your-writes must hold)."""
    env = {"DB_POOL_SIZE": "4", "DB_MAX_OVERFLOW": "0", "DB_POOL_TIMEOUT": "40",
           "CLIENT_LOGIN_TIMEOUT": "30"}
    if config == "cache_and_replicas":
        env.update(CACHE_ENABLED="true", POSTGRES_READ_REPLICAS="127.0.0.1:%d,127.0.0.1:%d" % (
            stack["replica1"], stack["replica2"]))
    px = proxy(env=env)
    node = node_modules()
    t_go, t_java, t_js = (make_table("id int primary key, n int, v text") for _ in range(3))
    t_py = make_table(TYPES_TABLE)
    procs = [
        ("pgx", _spawn([pgx_client, "concurrent"], px, E2E_TABLE=t_go, E2E_WORKERS=12)),
        ("jdbc", _spawn(["java", "-Xmx256m", "-cp", jdbc_classes + os.pathsep + JAR,
                         "JdbcClient", "threads"], px, E2E_TABLE=t_java, E2E_THREADS=6,
                        E2E_ROUNDS=60)),
        ("postgres.js", _spawn(["node", PGJS_CLIENT, "stress"], px, NODE_PATH=node,
                               E2E_TIMEOUT_MS=50000, E2E_TABLE=t_js, E2E_CLIENTS=12,
                               E2E_ROUNDS=25)),
    ]
    import asyncpg

    ths, py_errors = run_threads(psycopg3_app, [(px, t_py, i, 3) for i in range(500, 506)])

    async def apg():
        conns = await asyncio.gather(*[asyncpg.connect(**apg_kw(px, timeout=30))
                                       for _ in range(12)])
        try:
            return await asyncio.gather(*[asyncpg_app(c, t_py, i, 3)
                                          for i, c in enumerate(conns)],
                                        return_exceptions=True)
        finally:
            await asyncio.gather(*[asyncio.wait_for(c.close(), 10) for c in conns])

    apg_results = run_async(apg(), 50)
    for th in ths:
        th.join(50)
    outs = {name: _summary(name, p, 50) for name, p in procs}
    assert [r for r in apg_results if isinstance(r, BaseException)] == []
    assert py_errors == []
    assert outs["pgx"]["errors"] == []
    committed = 30 - 30 // 4
    assert outs["pgx"]["rows"] == [[str(w), str(committed), str(committed)] for w in range(12)]
    assert outs["jdbc"]["errors"] == [] and outs["jdbc"]["n_errors"] == 0, outs["jdbc"]
    bad = outs["postgres.js"]["bad"]
    if config == "cache_and_replicas":
        # ['b2', client, round, n]: a read on another of the client's 10
        # connections right after its commit may go to a replica that has not
        # replayed it yet: read-your-writes holds per client connection (SPEC 4)
        bad = [b for b in bad if b[0] != "b2"]
    assert outs["postgres.js"]["errors"] == [] and bad == []
    assert outs["postgres.js"]["retries"] == []
    with pg_super() as s:
        assert s.execute("SELECT id, n, length(v) FROM %s ORDER BY id" % t_java).fetchall() == [
            (i, 60 - 60 // 5, 60 - 60 // 5) for i in range(1, 7)]
        assert s.execute("SELECT id, n, length(v) FROM %s ORDER BY id" % t_js).fetchall() == [
            (i, 25, 25) for i in range(1, 13)]
        assert s.execute("SELECT count(*) FROM %s" % t_py).fetchone() == (18 * 3 * 25,)
    assert pin_lines(px) == []
