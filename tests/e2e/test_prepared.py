"""Named prepared statements under transaction pooling (SPEC §3, issue 3).

The proxy keeps each client's named statements (protocol-level Parse with a
name) and prepares them, under content-derived server-side names, on whatever
server connection the client gets; Close and a whole-query DEALLOCATE are
answered by the proxy.  These tests drive that with the drivers' default
prepared-statement behaviour (asyncpg's statement cache, psycopg's
prepare_threshold, node-postgres named queries, pgbench -M prepared) and with
raw protocol messages for the exact error paths, and check every answer
against what PostgreSQL itself sends (PX_E2E_DIRECT=1 runs them all against
the primary).
"""

import asyncio
import json
import os
import re
import subprocess
import threading
import time

import psycopg
import psycopg.errors
import pytest

import pgwire
from conftest import (
    DBNAME,
    HERE,
    PASSWORDS,
    PG_HOST,
    PG_PORT,
    pg_env,
    pg_super,
    skip_if_direct,
    unique,
)

PIN_LINE = "pinned to its server connection"


# ---------------------------------------------------------------- helpers


def pin_lines(px):
    """The proxy's "client pinned" log lines (none in direct mode)."""
    if px.direct:
        return []
    return [ln for ln in px.stderr_text().splitlines() if PIN_LINE in ln]


def pins_total(px):
    """fastnext_client_pins_total from the admin port's /metrics, or None
    when the admin port does not answer (then the log is the evidence)."""
    if px.direct or not px.admin_port:
        return None
    import urllib.request

    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % px.admin_port,
                                    timeout=3) as resp:
            text = resp.read().decode()
    except OSError:
        return None
    vals = [float(ln.rsplit(" ", 1)[1]) for ln in text.splitlines()
            if ln.startswith("fastnext_client_pins_total")]
    return sum(vals) if vals else None


def assert_pins(px, n):
    """The client was pinned n times: per the log and, if wired, the counter."""
    if px.direct:
        return
    assert len(pin_lines(px)) == n, pin_lines(px)
    total = pins_total(px)
    assert total in (None, n), "fastnext_client_pins_total = %s, expected %d" % (total, n)


def fnx_backends(conn, since):
    return conn.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE usename = 'fnx' "
        "AND backend_type = 'client backend' AND backend_start >= %s",
        (since,),
    ).fetchone()[0]


class PeakBackends:
    """Samples, in a thread, the most fnx backends (started after the test
    began) PostgreSQL has at once, and the proxy's open server sockets."""

    def __init__(self, px):
        self.px = px
        with pg_super() as s:
            self.since = s.execute("SELECT now()").fetchone()[0]
        self.pg = 0
        self.proc = 0
        self._stop = threading.Event()
        self._th = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        with pg_super() as s:
            while not self._stop.is_set():
                self.pg = max(self.pg, fnx_backends(s, self.since))
                if not self.px.direct:
                    self.proc = max(self.proc, self.px.server_conns())
                self._stop.wait(0.05)

    def __enter__(self):
        self._th.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._th.join(5)

    def check(self, limit):
        """At most `limit` fnx backends at once.  (The proxy's own socket
        count is not asserted: its health probe also connects to the port.)"""
        if self.px.direct:
            return
        assert 0 < self.pg <= limit, "pg_stat_activity saw %d fnx backends (limit %d)" % (
            self.pg, limit)


async def apg_connect(px, **kw):
    import asyncpg

    kw.setdefault("timeout", 20)
    kw.setdefault("command_timeout", 20)
    return await asyncpg.connect(
        host=px.host, port=px.port, user="fnx", password=PASSWORDS["fnx"], database=DBNAME, **kw
    )


def raw_login(px, timeout=10):
    r = px.raw(timeout=timeout)
    r.login("fnx", DBNAME, PASSWORDS["fnx"])
    return r


def close_stmt(name):
    return pgwire.message("C", b"S" + pgwire.cstr(name))


def run(stmt, *params):
    """Bind the unnamed portal to a named statement and execute it."""
    return pgwire.bind("", stmt, params) + pgwire.execute()


def exchange(r, *msgs, timeout=10):
    """Send the messages, read up to ReadyForQuery; a compact transcript:
    '1' ParseComplete, '2' BindComplete, '3' CloseComplete, 't'/'T'/'n'
    describe replies, ('D', row), ('C', tag), ('E', sqlstate), ('Z', status)."""
    r.send(b"".join(msgs))
    out = []
    while True:
        t, body = r.recv_msg(timeout)
        if t == "D":
            out.append(("D",) + tuple(pgwire.parse_data_row(body)))
        elif t == "C":
            out.append(("C", body.rstrip(b"\0").decode()))
        elif t == "E":
            out.append(("E", pgwire.parse_error_fields(body).get("C")))
        elif t == "Z":
            out.append(("Z", body.decode()))
            return out
        elif t in ("N", "S", "A"):
            continue
        else:
            out.append(t)


def q(r, sql, timeout=10):
    """A simple Query's transcript, without RowDescription."""
    return [m for m in exchange(r, pgwire.query(sql), timeout=timeout) if m != "T"]


OK1 = [("C", "SELECT 1"), ("Z", "I")]


# ------------------------------------------------- asyncpg: many clients, default cache


@pytest.mark.timeout_s(120)
def test_asyncpg_statement_cache_200_clients_over_pool_of_4_no_errors(proxy, make_table, pgsuper):
    px = proxy(env={"DB_POOL_SIZE": "4", "DB_MAX_OVERFLOW": "0", "DB_POOL_TIMEOUT": "30",
                    "CLIENT_LOGIN_TIMEOUT": "30"})
    t = make_table("id int primary key, v text")
    pgsuper.execute("INSERT INTO %s SELECT g, 'v' || g FROM generate_series(1, 100) g" % t)
    n_clients = 50 if px.direct else 200
    rounds = 10
    done = []

    async def client(i, go):
        c = await apg_connect(px, timeout=30)
        try:
            await go.wait()
            for k in range(rounds):
                n = (i * 7 + k) % 100 + 1
                assert await c.fetchval("SELECT $1::int * 2", n) == 2 * n
                assert await c.fetchval("SELECT v FROM %s WHERE id = $1" % t, n) == "v%d" % n
                assert await c.fetchval("SELECT $1::text || $2::text", "c%d" % i, "-%d" % k) == (
                    "c%d-%d" % (i, k))
                if k % 3 == 0:
                    async with c.transaction():
                        assert await c.fetchval(
                            "SELECT count(*) FROM %s WHERE id <= $1" % t, n) == n
                        row = await c.fetchrow("SELECT $1::int, $2::text, $3::bigint", i, "x", k)
                        assert tuple(row) == (i, "x", k)
                else:
                    rows = await c.fetch("SELECT id FROM %s WHERE id BETWEEN $1 AND $2 ORDER BY id" % t,
                                         n, n + 2)
                    assert [r[0] for r in rows] == [x for x in (n, n + 1, n + 2) if x <= 100]
            done.append(i)
        finally:
            await asyncio.wait_for(c.close(), 10)

    async def main():
        go = asyncio.Event()
        tasks = [asyncio.create_task(client(i, go)) for i in range(n_clients)]
        await asyncio.sleep(0.5)
        go.set()
        return await asyncio.gather(*tasks, return_exceptions=True)

    with PeakBackends(px) as peak:
        results = asyncio.run(asyncio.wait_for(main(), 100))
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, "%d of %d clients failed, first: %r" % (len(errors), n_clients, errors[0])
    assert len(done) == n_clients
    peak.check(4)
    assert_pins(px, 0)
    px.assert_healthy()


def test_asyncpg_executemany_prepare_reuse_across_transactions_and_copy(proxy, make_table):
    px = proxy(env={"DB_POOL_SIZE": "2", "DB_MAX_OVERFLOW": "0", "DB_POOL_TIMEOUT": "10"})
    t = make_table("id int primary key, v text")

    async def main():
        c = await apg_connect(px)
        h = await apg_connect(px)
        h2 = await apg_connect(px)
        try:
            await c.executemany("INSERT INTO %s VALUES ($1, $2)" % t,
                                [(i, "v%d" % i) for i in range(200)])
            stmt = await c.prepare("SELECT v, pg_backend_pid() FROM %s WHERE id = $1" % t)
            moved = 0
            for k in range(6):
                # h holds one server connection, c works on the other; then h2
                # takes c's and h lets go of its own: c must move over.
                t1 = h.transaction()
                await t1.start()
                await h.fetchval("SELECT 1")
                async with c.transaction():
                    for j in range(3):
                        v, pid_a = await stmt.fetchrow(k * 10 + j)
                        assert v == "v%d" % (k * 10 + j)
                t2 = h2.transaction()
                await t2.start()
                await h2.fetchval("SELECT 1")
                await t1.commit()
                v, pid_b = await stmt.fetchrow(k)  # outside a transaction
                assert v == "v%d" % k
                moved += pid_a != pid_b
                await t2.commit()
            if not px.direct:
                assert moved == 6, "the statement ran on another server connection %d/6 times" % moved
            await c.copy_records_to_table(t, records=[(i, "copied") for i in range(200, 1200)],
                                          columns=["id", "v"])
            await c.executemany("UPDATE %s SET v = $2 WHERE id = $1" % t,
                                [(i, "upd") for i in range(0, 200, 2)])
            counts = dict(await c.fetch("SELECT v, count(*) FROM %s WHERE v IN ('copied', 'upd') "
                                        "GROUP BY v" % t))
            assert counts == {"copied": 1000, "upd": 100}
            assert (await stmt.fetchrow(1))[0] == "v1"
            assert (await stmt.fetchrow(2))[0] == "upd"
        finally:
            for x in (c, h, h2):
                await asyncio.wait_for(x.close(), 5)

    asyncio.run(asyncio.wait_for(main(), 45))
    assert_pins(px, 0)


def test_asyncpg_small_statement_cache_closes_and_reprepares(proxy):
    """statement_cache_size=3 over 8 distinct queries: asyncpg Closes the
    statements it evicts and prepares them again later under new names."""
    px = proxy(env={"DB_POOL_SIZE": "1", "DB_MAX_OVERFLOW": "0", "DB_POOL_TIMEOUT": "10"})

    async def main():
        a = await apg_connect(px, statement_cache_size=3)
        b = await apg_connect(px, statement_cache_size=3)
        try:
            for rnd in range(6):
                for k in range(8):
                    for c, who in ((a, "a"), (b, "b")):
                        got = await c.fetchval("SELECT $1::text || '-%d-%s'" % (k, who), str(rnd))
                        assert got == "%d-%d-%s" % (rnd, k, who)
        finally:
            await asyncio.wait_for(a.close(), 5)
            await asyncio.wait_for(b.close(), 5)

    asyncio.run(asyncio.wait_for(main(), 40))
    assert_pins(px, 0)


def test_asyncpg_cursor_portals_on_prepared_statements(proxy):
    """asyncpg cursors: Bind to a named portal of a cached statement, then
    Execute with a row limit (PortalSuspended) inside a transaction."""
    px = proxy(env={"DB_POOL_SIZE": "1", "DB_MAX_OVERFLOW": "0", "DB_POOL_TIMEOUT": "10"})

    async def main():
        a = await apg_connect(px)
        b = await apg_connect(px)
        try:
            for rnd in range(3):
                for c, mul in ((a, 1), (b, 2)):
                    async with c.transaction():
                        got = [r[0] async for r in c.cursor(
                            "SELECT g * $1::int FROM generate_series(1, 500) g", mul, prefetch=37)]
                        assert got == [g * mul for g in range(1, 501)]
                        cur = await c.cursor("SELECT g FROM generate_series(1, 100) g WHERE g > $1",
                                             rnd)
                        assert [r[0] for r in await cur.fetch(5)] == list(range(rnd + 1, rnd + 6))
                        assert (await cur.fetchrow())[0] == rnd + 6
        finally:
            await asyncio.wait_for(a.close(), 5)
            await asyncio.wait_for(b.close(), 5)

    asyncio.run(asyncio.wait_for(main(), 30))


# ------------------------------------------------- psycopg 3


@pytest.mark.timeout_s(120)
def test_psycopg_prepared_statements_200_connections_over_pool_of_4_no_errors(proxy, make_table):
    px = proxy(env={"DB_POOL_SIZE": "4", "DB_MAX_OVERFLOW": "0", "DB_POOL_TIMEOUT": "30",
                    "CLIENT_LOGIN_TIMEOUT": "30"})
    t = make_table("id int, who int")
    n_clients = 50 if px.direct else 200
    reps = 24

    async def client(i, go):
        explicit = i % 2 == 1  # half prepare=True, half the default threshold (5)
        prep = {"prepare": True} if explicit else {}
        c = await psycopg.AsyncConnection.connect(px.conninfo(connect_timeout=30), autocommit=True)
        try:
            await go.wait()
            for k in range(reps):
                cur = await c.execute("SELECT %s::int + %s::int, %s::text", (i, k, "q"), **prep)
                assert await cur.fetchone() == (i + k, "q")
                if k % 6 == 5:
                    async with c.transaction():
                        await c.execute("INSERT INTO %s VALUES (%%s, %%s)" % t, (k, i), **prep)
                        cur = await c.execute("SELECT count(*) FROM %s WHERE who = %%s" % t, (i,),
                                              **prep)
                        assert (await cur.fetchone())[0] == k // 6 + 1
            cur = await c.execute("SELECT count(*) FROM pg_prepared_statements")
            assert (await cur.fetchone())[0] > 0, "nothing was ever prepared"
        finally:
            await c.close()

    async def main():
        go = asyncio.Event()
        tasks = [asyncio.create_task(client(i, go)) for i in range(n_clients)]
        await asyncio.sleep(0.5)
        go.set()
        return await asyncio.gather(*tasks, return_exceptions=True)

    with PeakBackends(px) as peak:
        results = asyncio.run(asyncio.wait_for(main(), 100))
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, "%d of %d clients failed, first: %r" % (len(errors), n_clients, errors[0])
    with pg_super() as s:
        assert s.execute("SELECT count(*), count(DISTINCT who), min(id) FROM %s" % t).fetchone() == (
            n_clients * 4, n_clients, 5)
    peak.check(4)
    assert_pins(px, 0)


def test_psycopg_pipeline_with_prepared_statements(proxy, make_table):
    px = proxy(env={"DB_POOL_SIZE": "1", "DB_MAX_OVERFLOW": "0", "DB_POOL_TIMEOUT": "10"})
    t = make_table("id int primary key, v text")
    with px.connect(autocommit=True) as c, px.connect(autocommit=True) as other:
        for rnd in range(4):
            with c.pipeline() as p:
                curs = [c.execute("SELECT %s::int * 3, %s::text", (i, "r%d" % rnd), prepare=True)
                        for i in range(10)]
                ins = [c.execute("INSERT INTO %s VALUES (%%s, %%s)" % t, (rnd * 100 + i, "p"),
                                 prepare=True) for i in range(5)]
                p.sync()
                assert [cur.fetchone() for cur in curs] == [(i * 3, "r%d" % rnd) for i in range(10)]
                assert all(cur.rowcount == 1 for cur in ins)
            # another client uses the only server connection in between
            assert other.execute("SELECT %s::int", (rnd,), prepare=True).fetchone()[0] == rnd
            with c.transaction():
                with c.pipeline():
                    curs = [c.execute("SELECT count(*) FROM %s WHERE id < %%s" % t, (rnd * 100 + i,),
                                      prepare=True) for i in range(6)]
                assert [cur.fetchone()[0] for cur in curs] == [
                    rnd * 5 + min(i, 5) for i in range(6)]
    assert_pins(px, 0)


def test_psycopg_server_side_cursors_with_prepared_fetch(proxy):
    """Named cursors in transactions; psycopg prepares the repeated FETCH."""
    px = proxy(env={"DB_POOL_SIZE": "2", "DB_MAX_OVERFLOW": "0", "DB_POOL_TIMEOUT": "10"})
    with px.connect() as a, px.connect() as b:
        for rnd in range(3):
            for c, who in ((a, 1), (b, 2)):
                with c.cursor(name="e2e_nc") as cur:
                    cur.itersize = 50
                    cur.execute("SELECT g * %s FROM generate_series(1, 1000) g", (who,))
                    got = [r[0] for r in cur]
                assert got == [g * who for g in range(1, 1001)]
                c.commit()
    assert_pins(px, 0)


def test_psycopg_with_hold_cursor_pins_and_keeps_working(proxy):
    px = proxy(env={"DB_POOL_SIZE": "1", "DB_MAX_OVERFLOW": "1", "DB_POOL_TIMEOUT": "5"})
    with px.connect() as a, px.connect(autocommit=True) as b:
        cur = a.cursor(name="e2e_hold_nc", withhold=True)
        cur.execute("SELECT g FROM generate_series(1, 100) g")
        a.commit()
        got = []
        for _ in range(5):
            got += [r[0] for r in cur.fetchmany(10)]
            a.commit()
            assert b.execute("SELECT %s::int", (len(got),), prepare=True).fetchone()[0] == len(got)
        assert got == list(range(1, 51))
        assert b.execute("SELECT count(*) FROM pg_cursors WHERE name = 'e2e_hold_nc'").fetchone()[0] == 0
        cur.close()
        a.commit()
    assert_pins(px, 1)


# ------------------------------------------------- node-postgres

NODE_NAMED = r"""
'use strict';
const { Client } = require('pg');
const table = process.env.E2E_TABLE;
const nClients = 6, iters = 40;
async function one(id) {
  const c = new Client({ connectionTimeoutMillis: 10000, query_timeout: 15000 });
  await c.connect();
  let ok = 0;
  for (let i = 0; i < iters; i++) {
    const r = await c.query({ name: 'add', text: 'SELECT $1::int + $2::int AS s', values: [id, i] });
    if (r.rows[0].s !== id + i) throw new Error('add ' + JSON.stringify(r.rows));
    await c.query('BEGIN');
    await c.query({ name: 'ins', text: `INSERT INTO ${table} (who, i) VALUES ($1, $2)`, values: [id, i] });
    const n = await c.query({ name: 'cnt', text: `SELECT count(*)::int AS n FROM ${table} WHERE who = $1`, values: [id] });
    if (n.rows[0].n !== i + 1) throw new Error('cnt ' + JSON.stringify(n.rows));
    await c.query('COMMIT');
    // same name, different client, different text: each client keeps its own
    const w = await c.query({ name: 'who', text: `SELECT '${id}'::text || $1::text AS w`, values: ['!'] });
    if (w.rows[0].w !== id + '!') throw new Error('who ' + JSON.stringify(w.rows));
    ok++;
  }
  await c.end();
  return ok;
}
setTimeout(() => { console.error('node client timed out'); process.exit(2); }, 40000).unref();
Promise.all([...Array(nClients).keys()].map(one))
  .then((oks) => console.log(JSON.stringify({ oks })))
  .catch((e) => { console.error('FAIL', (e && e.stack) || e, e && e.code); process.exit(1); });
"""


def test_node_postgres_named_queries_reused_across_transactions(proxy, make_table, tmp_path):
    nm = None
    for d in (os.environ.get("PX_NODE_MODULES"), os.path.join(HERE, "node_modules")):
        if d and os.path.exists(os.path.join(d, "pg", "package.json")):
            nm = d
            break
    if nm is None:
        pytest.skip("node 'pg' not installed in tests/e2e/node_modules")
    px = proxy(env={"DB_POOL_SIZE": "2", "DB_MAX_OVERFLOW": "0", "DB_POOL_TIMEOUT": "10"})
    t = make_table("who int, i int")
    script = tmp_path / "named.js"
    script.write_text(NODE_NAMED)
    r = subprocess.run(["node", str(script)], env=pg_env(px, E2E_TABLE=t, NODE_PATH=nm),
                       capture_output=True, text=True, timeout=50)
    assert r.returncode == 0, "node failed:\n%s\n%s" % (r.stdout, r.stderr)
    assert json.loads(r.stdout.strip().splitlines()[-1]) == {"oks": [40] * 6}
    with pg_super() as s:
        assert s.execute("SELECT count(*) FROM %s" % t).fetchone()[0] == 240
    assert_pins(px, 0)


# ------------------------------------------------- pgbench -M prepared


class _Direct:
    host, port = PG_HOST, PG_PORT


@pytest.fixture(scope="module")
def pgbench_db(stack):
    r = subprocess.run(["pgbench", "-i", "-s", "1", "-q"], env=pg_env(_Direct),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, "pgbench -i failed: %s" % r.stderr
    yield
    with pg_super() as s:
        s.execute("SET lock_timeout = '5s'")
        try:
            s.execute("DROP TABLE IF EXISTS pgbench_accounts, pgbench_branches, "
                      "pgbench_history, pgbench_tellers")
        except psycopg.Error:
            pass


@pytest.mark.timeout_s(60)
@pytest.mark.parametrize("script,threads", [
    ("select-only", 2), ("select-only", 16), ("tpcb-like", 16),
    pytest.param("tpcb-like", 2, marks=pytest.mark.xfail(
        reason="known limitation: pgbench prepares each command with a blocking call on a "
               "thread shared by 8 clients, so a client outside a transaction waits for a "
               "server connection held by clients of the same thread, which cannot progress "
               "(needs answering Parse+Sync without a server)", strict=False))])
def test_pgbench_prepared_16_clients_over_pool_of_4_no_failures_no_pins(
        proxy, pgbench_db, script, threads):
    """pgbench 15 prepares each command with a blocking PQprepare right
    before its first use, i.e. tpcb-like prepares its UPDATEs inside the
    transaction.  With several clients per thread (-j 2) one client's
    prepare (outside any transaction) must not wait for a server connection
    that the same thread's other clients hold in their transactions."""
    px = proxy(env={"DB_POOL_SIZE": "4", "DB_MAX_OVERFLOW": "0", "DB_POOL_TIMEOUT": "10"})
    args = ["pgbench", "-n", "-T", "3", "-c", "16", "-j", str(threads), "-M", "prepared"]
    if script == "select-only":
        args.append("-S")
    with PeakBackends(px) as peak:
        r = subprocess.run(args, env=pg_env(px), capture_output=True, text=True, timeout=40)
    out = r.stdout + r.stderr
    assert r.returncode == 0, "pgbench exited %d:\n%s" % (r.returncode, out[-3000:])
    m = re.search(r"number of transactions actually processed: (\d+)", out)
    assert m and int(m.group(1)) > 100, out
    m = re.search(r"number of failed transactions: (\d+)", out)
    assert m and m.group(1) == "0", out
    peak.check(4)
    assert_pins(px, 0)
    with pg_super() as s:
        assert s.execute("SELECT (SELECT sum(abalance) FROM pgbench_accounts) = "
                         "(SELECT coalesce(sum(delta), 0) FROM pgbench_history)").fetchone()[0]


# ------------------------------------------------- errors stay in step


def test_named_parse_error_is_reported_and_connection_recovers(proxy):
    px = proxy(env={"DB_POOL_SIZE": "1", "DB_MAX_OVERFLOW": "0"})
    r = raw_login(px)
    try:
        assert exchange(r, pgwire.parse("bad1", "SELEC 1"), pgwire.sync()) == [
            ("E", "42601"), ("Z", "I")]
        # the same batch after the error is skipped, up to Sync
        assert exchange(r, pgwire.parse("bad2", "SELEC 2"), run("bad2"),
                        pgwire.parse("good", "SELECT 5"), run("good"), pgwire.sync()) == [
            ("E", "42601"), ("Z", "I")]
        assert exchange(r, pgwire.parse("bad1", "SELECT $1::int + 1"), run("bad1", "4"),
                        pgwire.sync()) == ["1", "2", ("D", "5"), ("C", "SELECT 1"), ("Z", "I")]
        assert q(r, "SELECT 1") == [("D", "1")] + OK1
    finally:
        r.close()
    with px.connect(autocommit=True) as c:
        with pytest.raises(psycopg.errors.SyntaxError):
            c.execute("SELEC %s", (1,), prepare=True)
        assert c.execute("SELECT %s::int", (5,), prepare=True).fetchone()[0] == 5
    px.assert_healthy()


def test_failed_parse_leaves_no_statement_behind(proxy):
    """After a failed named Parse, the name does not exist: using it is 26000
    (PostgreSQL never stored the statement)."""
    px = proxy(env={"DB_POOL_SIZE": "1", "DB_MAX_OVERFLOW": "0"})
    r = raw_login(px)
    try:
        assert exchange(r, pgwire.parse("s1", "SELECT * FROM e2e_no_such_table"), pgwire.sync()) == [
            ("E", "42P01"), ("Z", "I")]
        assert exchange(r, run("s1"), pgwire.sync()) == [("E", "26000"), ("Z", "I")]
        # named statements parsed after an error in the same batch are skipped
        assert exchange(r, pgwire.parse("g1", "SELECT 1"), run("g1"),
                        pgwire.parse("b1", "SELECT 1 / $1::int"), run("b1", "0"),
                        pgwire.parse("g2", "SELECT 2"), pgwire.sync()) == [
            "1", "2", ("D", "1"), ("C", "SELECT 1"), "1", ("E", "22012"), ("Z", "I")]
        assert exchange(r, run("g2"), pgwire.sync()) == [("E", "26000"), ("Z", "I")]
    finally:
        r.close()


def test_parse_of_an_existing_name_is_rejected_like_postgres(proxy):
    px = proxy(env={"DB_POOL_SIZE": "1", "DB_MAX_OVERFLOW": "0"})
    r = raw_login(px)
    try:
        assert exchange(r, pgwire.parse("s1", "SELECT 'first'"), pgwire.sync()) == ["1", ("Z", "I")]
        assert exchange(r, pgwire.parse("s1", "SELECT 'second'"), pgwire.sync()) == [
            ("E", "42P05"), ("Z", "I")]
        assert exchange(r, run("s1"), pgwire.sync()) == ["2", ("D", "first")] + OK1
    finally:
        r.close()


def test_statements_past_the_limit_get_54000_and_the_connection_goes_on(proxy):
    skip_if_direct("MAX_PREPARED_STATEMENTS is a proxy setting")
    px = proxy(env={"MAX_PREPARED_STATEMENTS": "3"})
    r = raw_login(px)
    try:
        for i in range(3):
            assert exchange(r, pgwire.parse("s%d" % i, "SELECT %d" % i), pgwire.sync()) == [
                "1", ("Z", "I")]
        # the fourth fails as an error of its batch, which skips to Sync
        assert exchange(r, pgwire.parse("s3", "SELECT 3"), run("s0"), pgwire.sync()) == [
            ("E", "54000"), ("Z", "I")]
        # nothing was lost: the first three still run, and closing one makes room
        assert exchange(r, run("s2"), pgwire.sync()) == ["2", ("D", "2")] + OK1
        assert exchange(r, close_stmt("s0"), pgwire.parse("s3", "SELECT 3"), run("s3"),
                        pgwire.sync()) == ["3", "1", "2", ("D", "3")] + OK1
    finally:
        r.close()


def test_unnamed_statement_bound_in_a_later_unit_runs_the_clients_own_text(proxy):
    """lib/pq parses the unnamed statement in one unit (Parse, Describe,
    Sync) and binds it in the next; under transaction pooling that unit may
    run on a connection whose unnamed statement is another client's."""
    px = proxy(env={"DB_POOL_SIZE": "1", "DB_MAX_OVERFLOW": "0"})
    a, b = raw_login(px), raw_login(px)
    try:
        assert exchange(a, pgwire.parse("", "SELECT 'a'::text AS who"),
                        pgwire.describe("S", ""), pgwire.sync()) == ["1", "t", "T", ("Z", "I")]
        # the only server connection now gets b's unnamed statement
        assert exchange(b, pgwire.parse("", "SELECT 'b'::text AS who"), pgwire.sync()) == [
            "1", ("Z", "I")]
        assert exchange(a, run(""), pgwire.sync()) == ["2", ("D", "a"), ("C", "SELECT 1"),
                                                       ("Z", "I")]
        assert exchange(b, run(""), pgwire.sync()) == ["2", ("D", "b"), ("C", "SELECT 1"),
                                                       ("Z", "I")]
        assert exchange(a, pgwire.describe("S", ""), run(""), pgwire.sync()) == [
            "t", "T", "2", ("D", "a"), ("C", "SELECT 1"), ("Z", "I")]
        # a simple Query destroys the unnamed statement, as in PostgreSQL
        assert exchange(a, pgwire.query("SELECT 1")) == ["T", ("D", "1"), ("C", "SELECT 1"),
                                                          ("Z", "I")]
        assert exchange(a, run(""), pgwire.sync()) == [("E", "26000"), ("Z", "I")]
    finally:
        a.close()
        b.close()


def test_result_type_change_gives_postgres_error_then_next_query_works(proxy, make_table, pgsuper):
    px = proxy(env={"DB_POOL_SIZE": "1", "DB_MAX_OVERFLOW": "0"})
    t = make_table("a int")
    pgsuper.execute("INSERT INTO %s VALUES (1)" % t)
    with px.connect(autocommit=True) as c:
        assert c.execute("SELECT * FROM %s" % t, prepare=True).fetchall() == [(1,)]
        pgsuper.execute("DROP TABLE %s" % t)
        pgsuper.execute("CREATE TABLE %s (a int, b text)" % t)
        pgsuper.execute("INSERT INTO %s VALUES (2, 'x')" % t)
        pgsuper.execute("ALTER TABLE %s OWNER TO fnx" % t)
        with pytest.raises(psycopg.Error) as ei:
            c.execute("SELECT * FROM %s" % t, prepare=True)
        assert ei.value.sqlstate == "0A000", ei.value  # cached plan must not change result type
        assert c.execute("SELECT 1").fetchone()[0] == 1
        assert c.execute("SELECT a, b FROM %s" % t).fetchall() == [(2, "x")]


def test_statement_prepared_after_a_schema_change_sees_the_new_columns(proxy, make_table, pgsuper):
    """A statement whose result type changed is stale on the server: a client
    that prepares that text afresh (asyncpg does so by itself after 0A000,
    or a new connection) must get the new result, as from PostgreSQL."""
    px = proxy(env={"DB_POOL_SIZE": "1", "DB_MAX_OVERFLOW": "0"})
    t = make_table("a int")
    pgsuper.execute("INSERT INTO %s VALUES (1)" % t)
    sql = "SELECT * FROM %s" % t
    with px.connect(autocommit=True) as c:
        assert c.execute(sql, prepare=True).fetchall() == [(1,)]
    pgsuper.execute("DROP TABLE %s" % t)
    pgsuper.execute("CREATE TABLE %s (a int, b text)" % t)
    pgsuper.execute("INSERT INTO %s VALUES (2, 'x')" % t)
    pgsuper.execute("ALTER TABLE %s OWNER TO fnx" % t)
    with px.connect(autocommit=True) as c:  # a new client, a fresh Parse
        assert c.execute(sql, prepare=True).fetchall() == [(2, "x")]

    async def main():
        a = await apg_connect(px)
        try:
            assert [tuple(x) for x in await a.fetch(sql)] == [(2, "x")]
            pgsuper.execute("ALTER TABLE %s ADD COLUMN c int DEFAULT 3" % t)
            # asyncpg re-prepares on "cached plan must not change result type"
            assert [tuple(x) for x in await a.fetch(sql)] == [(2, "x", 3)]
        finally:
            await asyncio.wait_for(a.close(), 5)

    asyncio.run(asyncio.wait_for(main(), 20))


def test_pipeline_error_skips_rest_of_batch_and_poisons_nothing(proxy, make_table):
    px = proxy(env={"DB_POOL_SIZE": "1", "DB_MAX_OVERFLOW": "0", "DB_POOL_TIMEOUT": "10"})
    t = make_table("id int primary key")
    ins = "INSERT INTO %s VALUES (%%s)" % t
    # psycopg pipeline: good, bad, good, all prepared, one Sync
    with px.connect(autocommit=True) as c:
        for _ in range(2):
            seen = []
            with pytest.raises(psycopg.errors.DivisionByZero):
                with c.pipeline():
                    seen.append(c.execute(ins, (1,), prepare=True))
                    seen.append(c.execute("SELECT 10 / %s::int", (0,), prepare=True))
                    seen.append(c.execute(ins, (3,), prepare=True))
            assert c.execute("SELECT count(*) FROM %s" % t).fetchone()[0] == 0
        assert c.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        # a Parse error in the middle of a pipeline
        with pytest.raises(psycopg.errors.SyntaxError):
            with c.pipeline():
                c.execute(ins, (1,), prepare=True)
                c.execute("SELEC %s", (0,), prepare=True)
                c.execute("SELECT %s::int * 7", (3,), prepare=True)
        assert c.execute("SELECT count(*) FROM %s" % t).fetchone()[0] == 0
    # raw: exactly what PostgreSQL sends for the batch
    r = raw_login(px)
    try:
        got = exchange(
            r,
            pgwire.parse("g1", "SELECT $1::int + 100"), run("g1", "1"),
            pgwire.parse("b1", "SELECT 1 / $1::int"), run("b1", "0"),
            pgwire.parse("g2", "SELECT $1::int + 200"), run("g2", "2"),
            pgwire.parse("g3", "SELECT $1::int + 300"), run("g1", "3"),
            pgwire.sync(),
        )
        # (1 / 0 is folded when the custom plan is made: Bind fails)
        assert got == ["1", "2", ("D", "101"), ("C", "SELECT 1"), "1", ("E", "22012"), ("Z", "I")]
        assert exchange(r, run("g1", "4"), run("b1", "2"), pgwire.sync()) == [
            "2", ("D", "104"), ("C", "SELECT 1"), "2", ("D", "0"), ("C", "SELECT 1"), ("Z", "I")]
    finally:
        r.close()
    # the next client on the same (only) server connection is fine
    with px.connect(autocommit=True) as d:
        for i in range(6):
            assert d.execute(ins, (100 + i,), prepare=True).rowcount == 1
            assert d.execute("SELECT %s::int * 7", (i,), prepare=True).fetchone()[0] == 7 * i
            assert d.execute("SELECT 10 / %s::int", (i + 1,), prepare=True).fetchone()[0] == 10 // (i + 1)
        names = [n for (n,) in d.execute("SELECT name FROM pg_prepared_statements")]
        if not px.direct:
            assert names and all(n.startswith("fx_") for n in names), names
        assert d.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    r = raw_login(px)
    try:
        assert exchange(r, pgwire.parse("g2", "SELECT $1::int + 200"), run("g2", "2"),
                        pgwire.sync()) == ["1", "2", ("D", "202"), ("C", "SELECT 1"), ("Z", "I")]
    finally:
        r.close()


def test_cancel_during_a_long_prepared_query_then_reuse(proxy):
    px = proxy(env={"DB_POOL_SIZE": "1", "DB_MAX_OVERFLOW": "0", "DB_POOL_TIMEOUT": "10"})
    with px.connect(autocommit=True) as c, px.connect(autocommit=True) as d:
        sleep = "SELECT %s::text, pg_sleep(%s)"
        for i in range(3):
            assert c.execute(sleep, ("w%d" % i, 0.01), prepare=True).fetchone()[0] == "w%d" % i
        threading.Timer(1.0, c.cancel).start()
        t0 = time.monotonic()
        with pytest.raises(psycopg.errors.QueryCanceled):
            c.execute(sleep, ("long", 20), prepare=True)
        assert time.monotonic() - t0 < 6
        assert c.execute(sleep, ("again", 0.01), prepare=True).fetchone()[0] == "again"
        assert d.execute(sleep, ("d", 0.01), prepare=True).fetchone()[0] == "d"
    # in a transaction, raw (psycopg would add a DEALLOCATE ALL after ROLLBACK)
    r = raw_login(px)
    try:
        assert exchange(r, pgwire.parse("sl", "SELECT $1::text, pg_sleep($2::float8)"),
                        pgwire.sync()) == ["1", ("Z", "I")]
        assert q(r, "BEGIN") == [("C", "BEGIN"), ("Z", "T")]
        r.send(run("sl", "long", "20") + pgwire.sync())
        time.sleep(1.0)
        cr = px.raw()
        cr.send(pgwire.cancel_request(*r.backend_key))
        assert cr.wait_closed(5)
        cr.close()
        got = []
        while not got or got[-1][0] != "Z":
            t, body = r.recv_msg(6)
            got.append((t, pgwire.parse_error_fields(body).get("C") if t == "E" else None))
        assert got == [("2", None), ("E", "57014"), ("Z", None)], got
        assert q(r, "ROLLBACK") == [("C", "ROLLBACK"), ("Z", "I")]
        for i in range(3):
            assert exchange(r, run("sl", "r%d" % i, "0"), pgwire.sync()) == [
                "2", ("D", "r%d" % i, "")] + OK1
    finally:
        r.close()
    with px.connect(autocommit=True) as d:
        for i in range(3):
            assert d.execute(sleep, ("d%d" % i, 0), prepare=True).fetchone()[0] == "d%d" % i
    px.assert_healthy()


# ------------------------------------------------- Close, DEALLOCATE, DISCARD


def test_protocol_close_forgets_the_name_and_reparse_works(proxy):
    px = proxy(env={"DB_POOL_SIZE": "1", "DB_MAX_OVERFLOW": "0"})
    r = raw_login(px)
    try:
        assert exchange(r, pgwire.parse("s1", "SELECT $1::int + 1"), pgwire.sync()) == [
            "1", ("Z", "I")]
        assert exchange(r, run("s1", "41"), pgwire.sync()) == ["2", ("D", "42")] + OK1
        assert exchange(r, close_stmt("s1"), pgwire.sync()) == ["3", ("Z", "I")]
        assert exchange(r, run("s1", "1"), pgwire.sync()) == [("E", "26000"), ("Z", "I")]
        assert exchange(r, pgwire.describe("S", "s1"), pgwire.sync()) == [("E", "26000"), ("Z", "I")]
        # closing what does not exist is fine; the name can be parsed again
        assert exchange(r, close_stmt("s1"), close_stmt("nope"), pgwire.sync()) == [
            "3", "3", ("Z", "I")]
        assert exchange(r, pgwire.parse("s1", "SELECT $1::int + 2"), run("s1", "41"),
                        close_stmt("s1"), pgwire.parse("s1", "SELECT $1::int + 3"),
                        run("s1", "41"), pgwire.sync()) == [
            "1", "2", ("D", "43"), ("C", "SELECT 1"), "3", "1", "2", ("D", "44"),
            ("C", "SELECT 1"), ("Z", "I")]
        # Close inside a transaction, statement used in the next one
        assert q(r, "BEGIN") == [("C", "BEGIN"), ("Z", "T")]
        assert exchange(r, close_stmt("s1"), pgwire.parse("s1", "SELECT $1::int + 4"),
                        pgwire.sync()) == ["3", "1", ("Z", "T")]
        assert q(r, "COMMIT") == [("C", "COMMIT"), ("Z", "I")]
        assert exchange(r, run("s1", "1"), pgwire.sync()) == ["2", ("D", "5")] + OK1
    finally:
        r.close()


def test_deallocate_name_and_all_forget_statements(proxy):
    px = proxy(env={"DB_POOL_SIZE": "1", "DB_MAX_OVERFLOW": "0"})
    r = raw_login(px)
    try:
        assert exchange(r, pgwire.parse("s1", "SELECT 1"), pgwire.parse("S2", "SELECT 2"),
                        pgwire.parse("s3", "SELECT 3"), pgwire.sync()) == ["1", "1", "1", ("Z", "I")]
        assert q(r, "DEALLOCATE s1") == [("C", "DEALLOCATE"), ("Z", "I")]
        assert exchange(r, run("s1"), pgwire.sync()) == [("E", "26000"), ("Z", "I")]
        assert q(r, 'deallocate prepare "S2";') == [("C", "DEALLOCATE"), ("Z", "I")]
        assert exchange(r, run("S2"), pgwire.sync()) == [("E", "26000"), ("Z", "I")]
        assert exchange(r, run("s3"), pgwire.sync()) == ["2", ("D", "3")] + OK1
        assert q(r, "DEALLOCATE s1") == [("E", "26000"), ("Z", "I")]  # already gone
        assert exchange(r, pgwire.parse("s1", "SELECT 11"), run("s1"), pgwire.sync()) == [
            "1", "2", ("D", "11")] + OK1
        r2 = q(r, "DEALLOCATE ALL")
        assert r2[0][0] == "C" and r2[-1] == ("Z", "I")
        for name in ("s1", "s3"):
            assert exchange(r, run(name), pgwire.sync()) == [("E", "26000"), ("Z", "I")]
        assert exchange(r, pgwire.parse("s3", "SELECT 33"), run("s3"), pgwire.sync()) == [
            "1", "2", ("D", "33")] + OK1
    finally:
        r.close()


def test_psycopg_deallocate_all_then_rollback_prepares_again(proxy):
    """DEALLOCATE ALL behind psycopg's back makes its statement vanish (26000,
    as directly); after the rollback psycopg sends DEALLOCATE ALL itself
    (the proxy no longer knows any statement of this client) and prepares
    again."""
    px = proxy(env={"DB_POOL_SIZE": "1", "DB_MAX_OVERFLOW": "0", "DB_POOL_TIMEOUT": "5"})
    with px.connect() as c:
        for i in range(3):
            assert c.execute("SELECT %s::int + 7", (i,), prepare=True).fetchone()[0] == i + 7
        c.commit()
        c.execute("DEALLOCATE ALL")
        c.commit()
        with pytest.raises(psycopg.errors.InvalidSqlStatementName):
            c.execute("SELECT %s::int + 7", (1,), prepare=True)
        c.rollback()  # psycopg: ROLLBACK, then DEALLOCATE ALL, cache cleared
        for i in range(3):
            assert c.execute("SELECT %s::int + 7", (i,), prepare=True).fetchone()[0] == i + 7
            c.rollback()


def test_psycopg_statement_cache_rotation_deallocates_its_oldest(proxy):
    """psycopg keeps at most prepared_max statements and sends "DEALLOCATE
    _pg3_N" (extended protocol, unnamed statement) for the oldest."""
    px = proxy(env={"DB_POOL_SIZE": "1", "DB_MAX_OVERFLOW": "0", "DB_POOL_TIMEOUT": "5"})
    with px.connect(autocommit=True) as c:
        c.prepared_max = 2
        for rnd in range(3):
            for k in range(5):
                sql = "SELECT %%s::int + %d" % k
                assert c.execute(sql, (rnd,), prepare=True).fetchone()[0] == rnd + k


def test_psycopg_rollback_keeps_everyones_prepared_statements(proxy):
    """After a ROLLBACK psycopg sends DEALLOCATE ALL (extended protocol): the
    statements of the other clients on that server connection survive, and
    psycopg prepares its own again."""
    px = proxy(env={"DB_POOL_SIZE": "1", "DB_MAX_OVERFLOW": "0", "DB_POOL_TIMEOUT": "5"})
    with px.connect(autocommit=True) as a, px.connect(autocommit=True) as b:
        for rnd in range(3):
            for i in range(3):
                assert a.execute("SELECT %s::int + 1", (i,), prepare=True).fetchone()[0] == i + 1
                assert b.execute("SELECT %s::int + 2", (i,), prepare=True).fetchone()[0] == i + 2
            with a.transaction():
                assert a.execute("SELECT %s::int + 1", (9,), prepare=True).fetchone()[0] == 10
                raise psycopg.Rollback()  # ROLLBACK, then DEALLOCATE ALL
            assert b.execute("SELECT %s::int + 2", (rnd,), prepare=True).fetchone()[0] == rnd + 2
            assert a.execute("SELECT %s::int + 1", (rnd,), prepare=True).fetchone()[0] == rnd + 1


@pytest.mark.parametrize("sql", ["DEALLOCATE s1", "DEALLOCATE ALL", "DISCARD ALL"])
def test_deallocate_through_the_extended_protocol(proxy, sql):
    """The same commands sent as Parse/Bind/Execute of the unnamed statement
    (what psycopg does for its own maintenance): the sender's statement is
    gone, another client's statement on the same server connection is not."""
    px = proxy(env={"DB_POOL_SIZE": "1", "DB_MAX_OVERFLOW": "1", "DB_POOL_TIMEOUT": "5"})
    a, b = raw_login(px), raw_login(px)
    try:
        assert exchange(b, pgwire.parse("bs", "SELECT $1::int + 700"), run("bs", "1"),
                        pgwire.sync()) == ["1", "2", ("D", "701")] + OK1
        assert exchange(a, pgwire.parse("s1", "SELECT $1::int + 700"), run("s1", "2"),
                        pgwire.sync()) == ["1", "2", ("D", "702")] + OK1
        tag = sql.split()[0] + (" ALL" if sql.endswith("ALL") else "")
        assert exchange(a, pgwire.parse("", sql), pgwire.bind("", ""), pgwire.execute(),
                        pgwire.sync()) == ["1", "2", ("C", tag), ("Z", "I")]
        assert exchange(a, run("s1", "3"), pgwire.sync()) == [("E", "26000"), ("Z", "I")]
        assert exchange(b, run("bs", "4"), pgwire.sync()) == ["2", ("D", "704")] + OK1
        assert exchange(a, pgwire.parse("s1", "SELECT $1::int + 700"), run("s1", "5"),
                        pgwire.sync()) == ["1", "2", ("D", "705")] + OK1
    finally:
        a.close()
        b.close()


def test_deallocate_all_command_tag_matches_postgres(proxy):
    px = proxy(env={"DB_POOL_SIZE": "1", "DB_MAX_OVERFLOW": "0"})
    r = raw_login(px)
    try:
        assert exchange(r, pgwire.parse("s1", "SELECT 1"), pgwire.sync()) == ["1", ("Z", "I")]
        assert q(r, "DEALLOCATE ALL") == [("C", "DEALLOCATE ALL"), ("Z", "I")]
    finally:
        r.close()


@pytest.mark.parametrize("how", [
    "query_in_failed_tx", "extended_in_failed_tx",
    "discard_all_in_tx_block"])
def test_failed_deallocate_or_discard_keeps_the_statements(proxy, how):
    """A DEALLOCATE or DISCARD ALL that PostgreSQL refuses (aborted
    transaction, transaction block) deallocates nothing."""
    px = proxy(env={"DB_POOL_SIZE": "1", "DB_MAX_OVERFLOW": "1", "DB_POOL_TIMEOUT": "5"})
    r = raw_login(px)
    try:
        assert exchange(r, pgwire.parse("s1", "SELECT 1"), pgwire.sync()) == ["1", ("Z", "I")]
        assert q(r, "BEGIN") == [("C", "BEGIN"), ("Z", "T")]
        if how == "discard_all_in_tx_block":
            assert q(r, "DISCARD ALL") == [("E", "25001"), ("Z", "E")]
        else:
            assert q(r, "SELECT 1/0") == [("E", "22012"), ("Z", "E")]
            if how == "query_in_failed_tx":
                assert q(r, "DEALLOCATE s1") == [("E", "25P02"), ("Z", "E")]
            else:
                assert exchange(r, pgwire.parse("", "DEALLOCATE s1"), pgwire.bind("", ""),
                                pgwire.execute(), pgwire.sync()) == [("E", "25P02"), ("Z", "E")]
        assert q(r, "ROLLBACK") == [("C", "ROLLBACK"), ("Z", "I")]
        assert exchange(r, run("s1"), pgwire.sync()) == ["2", ("D", "1")] + OK1
    finally:
        r.close()


@pytest.mark.parametrize("protocol", ["simple", "extended"])
def test_deallocate_of_an_unknown_name_keeps_the_other_statements(proxy, protocol):
    px = proxy(env={"DB_POOL_SIZE": "1", "DB_MAX_OVERFLOW": "0", "DB_POOL_TIMEOUT": "5"})
    r = raw_login(px)
    try:
        assert exchange(r, pgwire.parse("s1", "SELECT 1"), pgwire.sync()) == ["1", ("Z", "I")]
        if protocol == "simple":
            assert q(r, "DEALLOCATE nope") == [("E", "26000"), ("Z", "I")]
        else:
            assert exchange(r, pgwire.parse("", "DEALLOCATE nope"), pgwire.bind("", ""),
                            pgwire.execute(), pgwire.sync()) == [
                "1", "2", ("E", "26000"), ("Z", "I")]
        assert exchange(r, run("s1"), pgwire.sync()) == ["2", ("D", "1")] + OK1
    finally:
        r.close()


def test_extended_deallocate_after_moving_to_another_server_connection(proxy):
    """The client's statement was prepared on one server connection; its
    DEALLOCATE (extended protocol) runs on another that never had it."""
    px = proxy(env={"DB_POOL_SIZE": "2", "DB_MAX_OVERFLOW": "0", "DB_POOL_TIMEOUT": "5"})
    with px.connect() as h1, px.connect() as h2:
        r = raw_login(px)
        try:
            h1.execute("SELECT 1")  # h1 holds one server connection
            assert exchange(r, pgwire.parse("s1", "SELECT 41"), run("s1"), pgwire.sync()) == [
                "1", "2", ("D", "41")] + OK1
            h2.execute("SELECT 1")  # h2 takes the one r used
            h1.commit()
            assert exchange(r, pgwire.parse("", "DEALLOCATE s1"), pgwire.bind("", ""),
                            pgwire.execute(), pgwire.sync()) == [
                "1", "2", ("C", "DEALLOCATE"), ("Z", "I")]
            h2.commit()
            assert exchange(r, run("s1"), pgwire.sync()) == [("E", "26000"), ("Z", "I")]
        finally:
            r.close()


def test_deallocate_answered_by_the_proxy_releases_the_server_connection(proxy):
    """A transaction that is only a DEALLOCATE the proxy answers itself must
    still give the server connection back (pool of 1: another client waits)."""
    px = proxy(env={"DB_POOL_SIZE": "1", "DB_MAX_OVERFLOW": "0", "DB_POOL_TIMEOUT": "3"})
    r = raw_login(px)
    try:
        with px.connect(autocommit=True) as b:
            assert exchange(r, pgwire.parse("s1", "SELECT 1"), pgwire.sync()) == ["1", ("Z", "I")]
            assert q(r, "DEALLOCATE s1") == [("C", "DEALLOCATE"), ("Z", "I")]
            t0 = time.monotonic()
            assert b.execute("SELECT 'b1'").fetchone()[0] == "b1"
            assert time.monotonic() - t0 < 2
            # psycopg after a ROLLBACK sends DEALLOCATE ALL on its own
            with px.connect() as a:
                a.execute("SELECT %s::int", (1,), prepare=True)
                a.rollback()
                t0 = time.monotonic()
                assert b.execute("SELECT 'b2'").fetchone()[0] == "b2"
                assert time.monotonic() - t0 < 2
    finally:
        r.close()


@pytest.mark.parametrize("sql", ["DEALLOCATE ALL", "SELECT 1; DEALLOCATE ALL"])
def test_deallocate_all_by_one_client_leaves_other_clients_statements(proxy, sql):
    px = proxy(env={"DB_POOL_SIZE": "1", "DB_MAX_OVERFLOW": "0", "DB_POOL_TIMEOUT": "5"})
    a, b = raw_login(px), raw_login(px)
    try:
        assert exchange(a, pgwire.parse("s1", "SELECT $1::int + 500"), run("s1", "1"),
                        pgwire.sync()) == ["1", "2", ("D", "501")] + OK1
        res = q(b, sql)  # b has no statements of its own
        assert res[-1] == ("Z", "I") and all(m[0] != "E" for m in res), res
        assert exchange(a, run("s1", "2"), pgwire.sync()) == ["2", ("D", "502")] + OK1
        # and b can still prepare the same text under its own name
        assert exchange(b, pgwire.parse("x", "SELECT $1::int + 500"), run("x", "3"),
                        pgwire.sync()) == ["1", "2", ("D", "503")] + OK1
    finally:
        a.close()
        b.close()


@pytest.mark.parametrize("pinned_first", [False, True], ids=["unpinned", "pinned_by_set"])
def test_discard_all_drops_the_clients_statements_and_reparse_works(proxy, pinned_first):
    px = proxy(env={"DB_POOL_SIZE": "1", "DB_MAX_OVERFLOW": "1", "DB_POOL_TIMEOUT": "5"})
    r = raw_login(px)
    try:
        if pinned_first:
            assert q(r, "SET search_path TO public")[-1] == ("Z", "I")
        assert exchange(r, pgwire.parse("s1", "SELECT $1::int * 10"), run("s1", "1"),
                        pgwire.sync()) == ["1", "2", ("D", "10")] + OK1
        assert q(r, "DISCARD ALL") == [("C", "DISCARD ALL"), ("Z", "I")]
        assert exchange(r, run("s1", "2"), pgwire.sync()) == [("E", "26000"), ("Z", "I")]
        assert exchange(r, pgwire.parse("s1", "SELECT $1::int * 10"), run("s1", "3"),
                        pgwire.sync()) == ["1", "2", ("D", "30")] + OK1
        assert exchange(r, pgwire.parse("s2", "SELECT $1::int * 10"), run("s2", "4"),
                        pgwire.sync()) == ["1", "2", ("D", "40")] + OK1
    finally:
        r.close()
    with px.connect(autocommit=True) as c:  # the pool is fine afterwards
        assert c.execute("SELECT %s::int * 10", (5,), prepare=True).fetchone()[0] == 50


@pytest.mark.parametrize("what", ["PLANS", "TEMP", "SEQUENCES"])
def test_discard_other_than_all_keeps_prepared_statements(proxy, what):
    px = proxy(env={"DB_POOL_SIZE": "1", "DB_MAX_OVERFLOW": "1", "DB_POOL_TIMEOUT": "5"})
    r = raw_login(px)
    try:
        assert exchange(r, pgwire.parse("s1", "SELECT $1::int * 11"), run("s1", "1"),
                        pgwire.sync()) == ["1", "2", ("D", "11")] + OK1
        assert q(r, "DISCARD " + what) == [("C", "DISCARD " + what), ("Z", "I")]
        assert exchange(r, run("s1", "2"), pgwire.sync()) == ["2", ("D", "22")] + OK1
        # a new name for the same text works too
        assert exchange(r, pgwire.parse("s2", "SELECT $1::int * 11"), run("s2", "3"),
                        pgwire.sync()) == ["1", "2", ("D", "33")] + OK1
    finally:
        r.close()


@pytest.mark.xfail(reason="known gap: a protocol Close is answered by the proxy, so it does not "
                          "remove an SQL-level PREPAREd statement of the same name",
                   strict=False)
def test_protocol_close_of_an_sql_prepared_statement(proxy):
    """PREPARE (SQL) pins; Close of that name through the protocol removes it
    on the server, as in PostgreSQL, so it can be PREPAREd again."""
    px = proxy(env={"DB_POOL_SIZE": "1", "DB_MAX_OVERFLOW": "1", "DB_POOL_TIMEOUT": "5"})
    r = raw_login(px)
    try:
        assert q(r, "PREPARE sq AS SELECT 1") == [("C", "PREPARE"), ("Z", "I")]
        assert exchange(r, close_stmt("sq"), pgwire.sync()) == ["3", ("Z", "I")]
        assert q(r, "EXECUTE sq") == [("E", "26000"), ("Z", "I")]
        assert q(r, "PREPARE sq AS SELECT 2") == [("C", "PREPARE"), ("Z", "I")]
        assert q(r, "EXECUTE sq") == [("D", "2")] + OK1
    finally:
        r.close()


def test_sql_prepare_pins_and_execute_works_across_transactions(proxy):
    px = proxy(env={"DB_POOL_SIZE": "1", "DB_MAX_OVERFLOW": "1", "DB_POOL_TIMEOUT": "5"})
    with px.connect(autocommit=True) as a, px.connect(autocommit=True) as b:
        a.execute("PREPARE e2e_sq(int) AS SELECT $1 + 1000")
        for i in range(4):
            with a.transaction():
                assert a.execute("EXECUTE e2e_sq(%s)" % i).fetchone()[0] == 1000 + i
            assert b.execute("SELECT count(*) FROM pg_prepared_statements WHERE name = 'e2e_sq'"
                             ).fetchone()[0] == 0
            assert b.execute("SELECT %s::int", (i,), prepare=True).fetchone()[0] == i
        a.execute("DEALLOCATE e2e_sq")
        with pytest.raises(psycopg.errors.InvalidSqlStatementName):
            a.execute("EXECUTE e2e_sq(1)")
    assert_pins(px, 1)


@pytest.mark.xfail(reason="known gap: protocol-level statements live under content names on "
                          "the server, so SQL EXECUTE cannot find them by the client's name",
                   strict=False)
def test_sql_execute_of_a_protocol_prepared_statement(proxy):
    """In PostgreSQL protocol-level and SQL-level statements share one
    namespace: EXECUTE finds a statement made by Parse."""
    px = proxy(env={"DB_POOL_SIZE": "1", "DB_MAX_OVERFLOW": "1", "DB_POOL_TIMEOUT": "5"})
    r = raw_login(px)
    try:
        assert exchange(r, pgwire.parse("ps1", "SELECT 77"), pgwire.sync()) == ["1", ("Z", "I")]
        assert q(r, "EXECUTE ps1") == [("D", "77")] + OK1
    finally:
        r.close()


# ------------------------------------------------- isolation between clients


def test_same_name_different_sql_on_one_server_connection_no_cross_talk(proxy):
    px = proxy(env={"DB_POOL_SIZE": "1", "DB_MAX_OVERFLOW": "0", "DB_POOL_TIMEOUT": "5"})
    a, b = raw_login(px), raw_login(px)
    try:
        assert exchange(a, pgwire.parse("s1", "SELECT 'A:' || $1::text"), pgwire.sync()) == [
            "1", ("Z", "I")]
        assert exchange(b, pgwire.parse("s1", "SELECT 'B:' || $1::text, 2"), pgwire.sync()) == [
            "1", ("Z", "I")]
        for i in range(10):
            assert exchange(a, run("s1", str(i)), pgwire.sync()) == ["2", ("D", "A:%d" % i)] + OK1
            assert exchange(b, run("s1", str(i)), pgwire.sync()) == [
                "2", ("D", "B:%d" % i, "2")] + OK1
        ta = exchange(a, pgwire.describe("S", "s1"), pgwire.sync())
        tb = exchange(b, pgwire.describe("S", "s1"), pgwire.sync())
        assert ta == ["t", "T", ("Z", "I")] and tb == ta
        assert exchange(a, close_stmt("s1"), pgwire.sync()) == ["3", ("Z", "I")]
        assert exchange(b, run("s1", "x"), pgwire.sync()) == ["2", ("D", "B:x", "2")] + OK1
        assert exchange(a, run("s1", "x"), pgwire.sync()) == [("E", "26000"), ("Z", "I")]
    finally:
        a.close()
        b.close()
    # psycopg: both connections call their first prepared statement _pg3_0
    with px.connect(autocommit=True) as c, px.connect(autocommit=True) as d:
        for i in range(8):
            assert c.execute("SELECT %s::int * 2", (i,), prepare=True).fetchone() == (2 * i,)
            assert d.execute("SELECT %s::text || 'd', 1", (i,), prepare=True).fetchone() == (
                "%dd" % i, 1)


def test_same_sql_under_different_names_both_work(proxy):
    px = proxy(env={"DB_POOL_SIZE": "1", "DB_MAX_OVERFLOW": "0", "DB_POOL_TIMEOUT": "5"})
    a, b = raw_login(px), raw_login(px)
    sql = "SELECT $1::int * 3"
    try:
        assert exchange(a, pgwire.parse("a1", sql), pgwire.parse("a2", sql), pgwire.sync()) == [
            "1", "1", ("Z", "I")]
        assert exchange(b, pgwire.parse("b1", sql), run("b1", "2"), pgwire.sync()) == [
            "1", "2", ("D", "6")] + OK1
        assert exchange(a, close_stmt("a1"), run("a2", "3"), pgwire.sync()) == [
            "3", "2", ("D", "9")] + OK1
        assert exchange(b, run("b1", "4"), pgwire.sync()) == ["2", ("D", "12")] + OK1
        assert exchange(a, run("a1", "4"), pgwire.sync()) == [("E", "26000"), ("Z", "I")]
        assert q(b, "DEALLOCATE b1") == [("C", "DEALLOCATE"), ("Z", "I")]
        # (a real round trip: see test_deallocate_answered_by_the_proxy_releases_...)
        assert q(b, "SELECT 1") == [("D", "1")] + OK1
        assert exchange(a, run("a2", "5"), pgwire.sync()) == ["2", ("D", "15")] + OK1
    finally:
        a.close()
        b.close()


def test_statement_prepared_in_one_transaction_runs_on_another_server_connection(proxy):
    px = proxy(env={"DB_POOL_SIZE": "2", "DB_MAX_OVERFLOW": "0", "DB_POOL_TIMEOUT": "5"})
    sql = "SELECT pg_backend_pid(), %s::int + 1"
    with px.connect(autocommit=True) as a, px.connect() as h1, px.connect() as h2:
        p1 = h1.execute("SELECT pg_backend_pid()").fetchone()[0]  # h1 holds one connection
        pid_a, v = a.execute(sql, (1,), prepare=True).fetchone()  # prepared on the other
        assert v == 2
        p2 = h2.execute("SELECT pg_backend_pid()").fetchone()[0]  # h2 takes that other one
        h1.commit()  # only h1's old connection is free now
        pid_b, v = a.execute(sql, (2,), prepare=True).fetchone()
        assert v == 3
        if not px.direct:
            assert pid_a == p2 and pid_b == p1 and pid_a != pid_b, (pid_a, pid_b, p1, p2)
        h2.commit()
        # raw: Parse in one transaction; Describe, Bind in later ones elsewhere
        r = raw_login(px)
        try:
            h1.execute("SELECT 1")
            assert exchange(r, pgwire.parse("s1", "SELECT $1::int * 5, pg_backend_pid()"),
                            pgwire.sync()) == ["1", ("Z", "I")]
            h2.execute("SELECT 1")
            h1.commit()
            got = exchange(r, pgwire.describe("S", "s1"), run("s1", "3"), pgwire.sync())
            assert got[:3] == ["t", "T", "2"] and got[3][1] == "15" and got[4:] == OK1
            h2.commit()
            for i in range(4):
                h = (h1, h2)[i % 2]
                h.execute("SELECT 1")
                assert exchange(r, run("s1", str(i)), pgwire.sync())[1][1] == str(5 * i)
                h.commit()
        finally:
            r.close()
    assert_pins(px, 0)


@pytest.mark.parametrize("same_columns", [True, False], ids=["same_columns", "other_columns"])
def test_same_text_under_different_search_paths_reads_each_clients_table(proxy, pgsuper,
                                                                        same_columns):
    """Schema-per-tenant: two clients whose startup options set different
    search_paths prepare the same text; each reads its own schema's table."""
    sa, sb = unique("e2e_ta"), unique("e2e_tb")
    try:
        for sch, cols, row in ((sa, "a int, b text", "1, 'A'"),
                               (sb, "a int, b text" if same_columns else "a int, b text, c int",
                                "2, 'B'" if same_columns else "2, 'B', 3")):
            pgsuper.execute("CREATE SCHEMA %s AUTHORIZATION fnx" % sch)
            pgsuper.execute("CREATE TABLE %s.t (%s)" % (sch, cols))
            pgsuper.execute("INSERT INTO %s.t VALUES (%s)" % (sch, row))
            pgsuper.execute("ALTER TABLE %s.t OWNER TO fnx" % sch)
        px = proxy(env={"DB_POOL_SIZE": "1", "DB_MAX_OVERFLOW": "0", "DB_POOL_TIMEOUT": "5"})
        with px.connect(autocommit=True, options="-c search_path=%s" % sa) as a, \
                px.connect(autocommit=True, options="-c search_path=%s" % sb) as b:
            for _ in range(3):
                assert a.execute("SELECT * FROM t WHERE a > %s", (0,), prepare=True).fetchall() == [
                    (1, "A")]
                assert b.execute("SELECT * FROM t WHERE a > %s", (0,), prepare=True).fetchall() == (
                    [(2, "B")] if same_columns else [(2, "B", 3)])
    finally:
        pgsuper.execute("DROP SCHEMA IF EXISTS %s, %s CASCADE" % (sa, sb))


def test_named_statement_taking_session_state_pins_the_client(proxy):
    """asyncpg runs every parameterized query as a named statement: a session
    advisory lock or set_config(..., false) taken that way must not leak to
    other clients of the same server connection."""
    px = proxy(env={"DB_POOL_SIZE": "1", "DB_MAX_OVERFLOW": "1", "DB_POOL_TIMEOUT": "5"})
    key = 880000 + int(time.time() * 1000) % 10000

    async def main():
        a = await apg_connect(px)
        b = await apg_connect(px)
        try:
            await a.fetchval("SELECT pg_advisory_lock($1::bigint)", key)
            await a.fetchval("SELECT set_config('search_path', $1, false)", "pg_catalog")
            for _ in range(3):
                assert await b.fetchval("SELECT pg_try_advisory_lock($1::bigint)", key) is False
                assert await b.fetchval("SHOW search_path") == '"$user", public'
                assert await a.fetchval(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = $1 "
                    "AND pid = pg_backend_pid() AND granted", key) == 1
                assert await a.fetchval("SHOW search_path") == "pg_catalog"
            assert await a.fetchval("SELECT pg_advisory_unlock($1::bigint)", key) is True
        finally:
            await asyncio.wait_for(a.close(), 5)
            await asyncio.wait_for(b.close(), 5)

    asyncio.run(asyncio.wait_for(main(), 20))


# ------------------------------------------------- many statements per connection


def test_more_statements_than_a_server_connection_keeps_all_still_work(proxy):
    px = proxy(env={"DB_POOL_SIZE": "1", "DB_MAX_OVERFLOW": "0", "DB_POOL_TIMEOUT": "5"})
    n = 1100
    r = raw_login(px, timeout=20)
    try:
        got = exchange(r, *[pgwire.parse("s%d" % i, "SELECT %d + $1::int" % i) for i in range(n)],
                       pgwire.sync(), timeout=20)
        assert got == ["1"] * n + [("Z", "I")]
        for order in (range(n), reversed(range(n))):
            order = list(order)
            got = exchange(r, *[run("s%d" % i, "1") for i in order], pgwire.sync(), timeout=20)
            rows = [m[1] for m in got if m[0] == "D"]
            assert rows == [str(i + 1) for i in order]
            assert got[-1] == ("Z", "I") and not [m for m in got if m[0] == "E"]
        (cnt,) = q(r, "SELECT count(*) FROM pg_prepared_statements")[0][1:]
        if px.direct:
            assert int(cnt) == n
        else:
            assert int(cnt) <= 1024, "the server connection keeps %s statements" % cnt
    finally:
        r.close()


def test_statement_evicted_in_a_failed_batch_can_be_used_again(proxy):
    """With the server connection's statement set full, a new Parse evicts
    (closes) the oldest; if an earlier error in that batch makes the server
    skip the Close, the old statement must still work afterwards."""
    skip_if_direct("about the proxy's per-connection statement limit")
    px = proxy(env={"DB_POOL_SIZE": "1", "DB_MAX_OVERFLOW": "0", "DB_POOL_TIMEOUT": "5"})
    n = 1024
    r = raw_login(px, timeout=20)
    try:
        got = exchange(r, *[pgwire.parse("s%d" % i, "SELECT %d + $1::int" % i) for i in range(n)],
                       pgwire.sync(), timeout=20)
        assert got == ["1"] * n + [("Z", "I")]
        assert exchange(r, pgwire.parse("bad", "SELEC 1"),
                        pgwire.parse("new", "SELECT -1 + $1::int"), pgwire.sync()) == [
            ("E", "42601"), ("Z", "I")]
        for i in (0, 1, 2):
            assert exchange(r, run("s%d" % i, "1"), pgwire.sync()) == [
                "2", ("D", str(i + 1))] + OK1
    finally:
        r.close()


def test_large_statement_text_and_large_bind_parameters(proxy):
    """A 300 kB statement text and a 2 MB parameter, on a statement that has
    to be prepared again on another server connection."""
    px = proxy(env={"DB_POOL_SIZE": "2", "DB_MAX_OVERFLOW": "0", "DB_POOL_TIMEOUT": "5"})
    pad = "x" * 300000
    sql = "SELECT length($1::text) + length('%s'), md5($1::text)" % pad
    big = "y" * (2 * 1024 * 1024)
    import hashlib
    want = (str(len(big) + len(pad)), hashlib.md5(big.encode()).hexdigest())
    with px.connect() as h1, px.connect() as h2:
        r = raw_login(px, timeout=20)
        try:
            h1.execute("SELECT 1")
            assert exchange(r, pgwire.parse("big", sql), run("big", big), pgwire.sync(),
                            timeout=20) == ["1", "2", ("D",) + want] + OK1
            h2.execute("SELECT 1")
            h1.commit()
            assert exchange(r, run("big", big), pgwire.sync(), timeout=20) == [
                "2", ("D",) + want] + OK1
            h2.commit()
        finally:
            r.close()


def test_prepared_statements_with_read_replicas_configured(proxy, make_table):
    """With replicas, a client's units go to different backends: its
    statements are prepared wherever its next unit runs."""
    px = proxy(env={"DB_POOL_SIZE": "2", "DB_MAX_OVERFLOW": "0", "DB_POOL_TIMEOUT": "5",
                    "POSTGRES_READ_REPLICAS": "127.0.0.1:%s,127.0.0.1:%s" % (
                        os.environ.get("PX_PG_REPLICA1_PORT", "1"),
                        os.environ.get("PX_PG_REPLICA2_PORT", "1")),
                    "POSTGRES_USER": "fnx", "POSTGRES_PASSWORD": PASSWORDS["fnx"]})
    if not os.environ.get("PX_PG_REPLICA1_PORT"):
        pytest.skip("no replicas in this stack")
    t = make_table("id int primary key, v text")
    time.sleep(1.5)  # the table reaches the replicas; their health is known
    ports = set()
    with px.connect(autocommit=True) as c:
        for i in range(30):
            c.execute("INSERT INTO %s VALUES (%%s, %%s)" % t, (i, "v%d" % i), prepare=True)
            assert c.execute("SELECT v FROM %s WHERE id = %%s" % t, (i,),
                             prepare=True).fetchone() == ("v%d" % i,)
            port, v = c.execute("SELECT inet_server_port(), %s::int + 1", (i,),
                                prepare=True).fetchone()
            assert v == i + 1
            ports.add(port)

    # another client's reads may run on a replica: read-your-writes is per
    # client, so give the replicas time to replay the first client's rows
    time.sleep(1.5)

    async def main():
        a = await apg_connect(px)
        try:
            for i in range(30):
                assert await a.fetchval("SELECT v FROM %s WHERE id = $1" % t, i) == "v%d" % i
                assert await a.fetchval("SELECT $1::int + 2", i) == i + 2
        finally:
            await asyncio.wait_for(a.close(), 5)

    asyncio.run(asyncio.wait_for(main(), 20))


# ------------------------------------------------- session mode


def test_session_mode_prepared_statements_pass_through_unchanged(proxy):
    px = proxy(env={"POOL_MODE": "session", "DB_POOL_SIZE": "1", "DB_MAX_OVERFLOW": "0",
                    "DB_POOL_TIMEOUT": "5"})

    async def main():
        a = await apg_connect(px)
        try:
            for i in range(20):
                assert await a.fetchval("SELECT $1::int + 1", i) == i + 1
                async with a.transaction():
                    assert await a.fetchval("SELECT $1::text || 'x'", str(i)) == "%dx" % i
            stmt = await a.prepare("SELECT $1::int * 2")
            assert [await stmt.fetchval(i) for i in range(5)] == [0, 2, 4, 6, 8]
            names = [r[0] for r in await a.fetch("SELECT name FROM pg_prepared_statements")]
            assert names and all(n.startswith("__asyncpg_") for n in names), names
        finally:
            await asyncio.wait_for(a.close(), 5)
        b = await apg_connect(px)  # same (only) server connection, reset
        try:
            assert await b.fetchval("SELECT count(*) FROM pg_prepared_statements "
                                    "WHERE statement NOT LIKE '%pg_prepared_statements%'") == 0
            assert await b.fetchval("SELECT $1::int + 1", 1) == 2
        finally:
            await asyncio.wait_for(b.close(), 5)

    asyncio.run(asyncio.wait_for(main(), 20))
