"""Real clients through the proxy: psql, pgbench, psycopg 3, psycopg2,
SQLAlchemy, node-postgres and asyncpg.  Each test checks results, not just
the absence of exceptions."""

import asyncio
import json
import os
import re
import subprocess
import threading

import psycopg
import psycopg.errors
import pytest

from conftest import DBNAME, HERE, PASSWORDS, pg_env, pg_super, unique, wait_until

# ---------------------------------------------------------------- psql / pgbench


def psql(px, *args, timeout=30, **env):
    r = subprocess.run(
        ["psql", "-X", "-At", "-v", "ON_ERROR_STOP=1"] + list(args),
        env=pg_env(px, **env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert r.returncode == 0, "psql failed (%d): %s" % (r.returncode, r.stderr)
    return r.stdout


def test_psql_multi_statement_string(proxy, make_table):
    px = proxy()
    t = make_table("i int")
    out = psql(
        px,
        "-c",
        "INSERT INTO %s VALUES (1); INSERT INTO %s VALUES (2), (3); "
        "SELECT 'x' || 'y'; SELECT sum(i) FROM %s" % (t, t, t),
    )
    lines = out.split()
    assert lines[-1] == "6", out
    assert "xy" in lines, out


def test_psql_multi_statement_error_stops_the_batch(proxy, make_table):
    px = proxy()
    t = make_table("i int")
    r = subprocess.run(
        ["psql", "-X", "-At", "-c",
         "INSERT INTO %s VALUES (1); SELECT 1/0; INSERT INTO %s VALUES (2)" % (t, t)],
        env=pg_env(px), capture_output=True, text=True, timeout=30,
    )
    assert r.returncode != 0 and "division by zero" in r.stderr, r.stderr
    # A multi-statement Query is one implicit transaction: nothing was kept.
    assert psql(px, "-c", "SELECT count(*) FROM %s" % t).strip() == "0"


def test_psql_copy_in_and_out(proxy, make_table, tmp_path):
    px = proxy()
    t = make_table("id int, name text, note text")
    src = tmp_path / "in.csv"
    rows = ["%d,name %d,\"quoted, with comma %d\"" % (i, i, i) for i in range(20000)]
    src.write_text("\n".join(rows) + "\n")
    psql(px, "-c", "\\copy %s FROM '%s' WITH (FORMAT csv)" % (t, src))
    assert psql(px, "-c", "SELECT count(*), sum(id) FROM %s" % t).strip() == "20000|199990000"
    dst = tmp_path / "out.csv"
    psql(px, "-c", "\\copy (SELECT * FROM %s ORDER BY id) TO '%s' WITH (FORMAT csv)" % (t, dst))
    assert dst.read_text() == src.read_text()
    # A COPY that fails half way (bad data) reports the error and leaves nothing.
    bad = tmp_path / "bad.csv"
    bad.write_text("1,a,b\nnot-a-number,a,b\n")
    r = subprocess.run(
        ["psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", "-c",
         "\\copy %s FROM '%s' WITH (FORMAT csv)" % (t, bad)],
        env=pg_env(px), capture_output=True, text=True, timeout=30,
    )
    assert r.returncode != 0 and "invalid input syntax" in r.stderr, r.stderr
    assert psql(px, "-c", "SELECT count(*) FROM %s" % t).strip() == "20000"


@pytest.fixture
def pgbench_tables(proxy):
    """pgbench -i through the proxy (COPY-based load); tables dropped after."""
    px = proxy(env={"DB_POOL_SIZE": "4", "DB_MAX_OVERFLOW": "4"})
    r = subprocess.run(
        ["pgbench", "-i", "-s", "1", "-q", "--foreign-keys"],
        env=pg_env(px), capture_output=True, text=True, timeout=120,
    )
    assert r.returncode == 0, "pgbench -i failed: %s" % r.stderr
    yield px
    with pg_super() as s:
        s.execute("SET lock_timeout = '5s'")
        try:
            s.execute("DROP TABLE IF EXISTS pgbench_accounts, pgbench_branches, "
                      "pgbench_history, pgbench_tellers")
        except psycopg.Error:
            pass


@pytest.mark.timeout_s(120)
@pytest.mark.parametrize("mode", ["simple", "extended", "prepared"])
def test_pgbench_runs_without_failed_transactions(pgbench_tables, mode):
    px = pgbench_tables
    r = subprocess.run(
        ["pgbench", "-n", "-T", "3", "-c", "8", "-j", "2", "-M", mode],
        env=pg_env(px), capture_output=True, text=True, timeout=60,
    )
    out = r.stdout + r.stderr
    assert r.returncode == 0, "pgbench -M %s exited %d:\n%s" % (mode, r.returncode, out[-3000:])
    m = re.search(r"number of transactions actually processed: (\d+)", out)
    assert m and int(m.group(1)) > 0, out
    m = re.search(r"number of failed transactions: (\d+)", out)
    assert m and m.group(1) == "0", out
    # tpcb-like keeps the balances consistent: a sum check catches lost or
    # duplicated writes.
    bal = psql(
        px, "-c",
        "SELECT (SELECT sum(abalance) FROM pgbench_accounts) = "
        "(SELECT sum(delta) FROM pgbench_history)",
    )
    assert bal.strip() == "t"


# ---------------------------------------------------------------- psycopg 3


def test_psycopg_autocommit_and_transactions(proxy, make_table):
    px = proxy()
    t = make_table("id int primary key, v text")
    with px.connect(autocommit=True) as c:
        c.execute("INSERT INTO %s VALUES (1, 'auto')" % t)
        with c.transaction():
            c.execute("INSERT INTO %s VALUES (%%s, %%s)" % t, (2, "tx"))
            c.execute("INSERT INTO %s VALUES (%%s, %%s)" % t, (3, "tx"))
        with pytest.raises(RuntimeError):
            with c.transaction():
                c.execute("INSERT INTO %s VALUES (4, 'rolled back')" % t)
                raise RuntimeError("roll it back")
        assert c.execute("SELECT array_agg(id ORDER BY id) FROM %s" % t).fetchone()[0] == [1, 2, 3]
    with px.connect() as c:  # autocommit off: implicit BEGIN
        c.execute("INSERT INTO %s VALUES (5, 'committed')" % t)
        c.commit()
        c.execute("INSERT INTO %s VALUES (6, 'not committed')" % t)
        c.rollback()
        assert c.execute("SELECT count(*) FROM %s" % t).fetchone()[0] == 4
        c.rollback()
    # What a second client sees is what was committed.
    with px.connect(autocommit=True) as c:
        assert c.execute("SELECT array_agg(id ORDER BY id) FROM %s" % t).fetchone()[0] == [
            1, 2, 3, 5,
        ]


def test_psycopg_error_mid_transaction_then_rollback(proxy, make_table):
    px = proxy()
    t = make_table("id int primary key")
    with px.connect() as c:
        c.execute("INSERT INTO %s VALUES (1)" % t)
        with pytest.raises(psycopg.errors.DivisionByZero):
            c.execute("SELECT 1/0")
        with pytest.raises(psycopg.errors.InFailedSqlTransaction):
            c.execute("SELECT 1")
        c.rollback()
        assert c.execute("SELECT count(*) FROM %s" % t).fetchone()[0] == 0
        c.execute("INSERT INTO %s VALUES (2)" % t)
        with pytest.raises(psycopg.errors.UniqueViolation):
            c.execute("INSERT INTO %s VALUES (2)" % t)
        c.rollback()
        for i in range(3):
            assert c.execute("SELECT %s::int * 2", (i,)).fetchone()[0] == i * 2
        c.commit()


def test_psycopg_named_server_side_cursor(proxy):
    px = proxy()
    with px.connect() as c:
        with c.cursor(name=unique("cur")) as cur:
            cur.itersize = 500
            cur.execute("SELECT g, md5(g::text) FROM generate_series(1, 20000) g")
            first = cur.fetchmany(10)
            assert [r[0] for r in first] == list(range(1, 11))
            total = 10 + sum(1 for _ in cur)
            assert total == 20000
        # The transaction that held the cursor still works and ends cleanly.
        assert c.execute("SELECT 7").fetchone()[0] == 7
        c.commit()
        assert c.execute("SELECT 8").fetchone()[0] == 8
        c.commit()


def test_psycopg_copy_from_stdin_and_to_stdout(proxy, make_table):
    px = proxy()
    t = make_table("id int, v text")
    n = 50000
    with px.connect(autocommit=True) as c:
        cur = c.cursor()
        with cur.copy("COPY %s (id, v) FROM STDIN" % t) as cp:
            for i in range(n):
                cp.write_row((i, "row %d" % i))
        assert c.execute("SELECT count(*), sum(id) FROM %s" % t).fetchone() == (n, n * (n - 1) // 2)
        out = bytearray()
        with cur.copy("COPY (SELECT * FROM %s ORDER BY id) TO STDOUT" % t) as cp:
            for block in cp:
                out += block
        lines = bytes(out).decode().splitlines()
        assert len(lines) == n and lines[0] == "0\trow 0" and lines[-1] == "%d\trow %d" % (n - 1, n - 1)
        # A failing COPY FROM (bad row) is an error, and the connection goes on.
        with pytest.raises(psycopg.errors.InvalidTextRepresentation):
            with cur.copy("COPY %s (id, v) FROM STDIN" % t) as cp:
                cp.write(b"1\tok\nnot-an-int\tbad\n")
        assert c.execute("SELECT count(*) FROM %s" % t).fetchone()[0] == n


def test_psycopg_executemany_and_pipeline(proxy, make_table):
    px = proxy()
    t = make_table("id int primary key, v text")
    with px.connect(autocommit=True) as c:
        cur = c.cursor()
        cur.executemany("INSERT INTO %s VALUES (%%s, %%s)" % t, [(i, "v%d" % i) for i in range(500)])
        assert c.execute("SELECT count(*) FROM %s" % t).fetchone()[0] == 500
        with c.pipeline() as p:
            curs = []
            for i in range(50):
                cu = c.cursor()
                cu.execute("SELECT v FROM %s WHERE id = %%s" % t, (i,))
                curs.append(cu)
            c.execute("UPDATE %s SET v = 'changed' WHERE id < 10" % t)
            p.sync()
            assert [cu.fetchone()[0] for cu in curs] == ["v%d" % i for i in range(50)]
        assert c.execute("SELECT count(*) FROM %s WHERE v = 'changed'" % t).fetchone()[0] == 10
    with px.connect() as c:  # pipeline inside a transaction
        with c.pipeline():
            for i in range(500, 600):
                c.execute("INSERT INTO %s VALUES (%%s, 'tx')" % t, (i,))
        c.commit()
        assert c.execute("SELECT count(*) FROM %s WHERE v = 'tx'" % t).fetchone()[0] == 100


def test_psycopg_pipeline_error_mid_batch_recovers(proxy, make_table):
    """An error between Sync points aborts the rest of that batch only; the
    connection (and the server connection behind it) stays in sync."""
    px = proxy()
    t = make_table("id int primary key")
    with px.connect(autocommit=True) as c:
        for _ in range(3):
            with pytest.raises(psycopg.errors.UniqueViolation):
                with c.pipeline() as p:
                    c.execute("INSERT INTO %s VALUES (1) ON CONFLICT DO NOTHING" % t)
                    p.sync()  # the batch above commits on its own
                    c.execute("INSERT INTO %s VALUES (1)" % t)  # fails
                    c.execute("INSERT INTO %s VALUES (2)" % t)  # skipped by the server
            for i in range(5):
                assert c.execute("SELECT %s::int", (i,)).fetchone()[0] == i
        assert c.execute("SELECT array_agg(id) FROM %s" % t).fetchone()[0] == [1]
    px.assert_healthy()


def test_psycopg_prepared_statements_are_reused(proxy):
    """prepare=True makes psycopg use a named protocol-level statement; in
    transaction mode the proxy must make that name work on whatever server
    connection it picks."""
    px = proxy()
    with px.connect(autocommit=True) as c:
        for i in range(20):
            r = c.execute("SELECT %s::int + 100, %s::text", (i, "p%d" % i), prepare=True)
            assert r.fetchone() == (i + 100, "p%d" % i)
            if i % 3 == 0:
                with c.transaction():
                    c.execute("SELECT %s::int", (i,), prepare=True)


def test_psycopg_notices_reach_the_client(proxy):
    px = proxy()
    notices = []
    with px.connect(autocommit=True) as c:
        c.add_notice_handler(lambda d: notices.append((d.severity_nonlocalized, d.message_primary)))
        c.execute("DO $$ BEGIN RAISE NOTICE 'e2e notice %', 42; RAISE WARNING 'e2e warning'; END $$")
        c.execute("SELECT 1")
    assert ("NOTICE", "e2e notice 42") in notices, notices
    assert ("WARNING", "e2e warning") in notices, notices


def test_listen_notify_in_session_mode(proxy):
    px = proxy(env={"POOL_MODE": "session"})
    ch = unique("ch")
    got = []
    with px.connect(autocommit=True) as listener, px.connect(autocommit=True) as other:
        listener.add_notify_handler(lambda n: got.append((n.channel, n.payload)))
        listener.execute("LISTEN %s" % ch)
        listener.execute("NOTIFY %s, 'from self'" % ch)
        other.execute("SELECT pg_notify(%s, 'from other')", (ch,))

        def both():
            listener.execute("SELECT 1")
            return len(got) >= 2

        wait_until(both, 5, what="two notifications")
    assert sorted(got) == sorted([(ch, "from self"), (ch, "from other")])


# ---------------------------------------------------------------- psycopg2


def test_psycopg2_basic_and_copy_expert(proxy, make_table):
    import io

    import psycopg2
    import psycopg2.errors

    px = proxy()
    t = make_table("id int, v text")
    c = psycopg2.connect(px.conninfo())
    try:
        cur = c.cursor()
        cur.execute("SELECT %s + %s, %s", (1, 2, "three"))
        assert cur.fetchone() == (3, "three")
        cur.execute("INSERT INTO " + t + " VALUES (%s, %s)", (1, "one"))
        c.commit()
        buf = io.StringIO("".join("%d\tv%d\n" % (i, i) for i in range(2, 10002)))
        cur.copy_expert("COPY %s FROM STDIN" % t, buf)
        c.commit()
        out = io.StringIO()
        cur.copy_expert("COPY (SELECT id FROM %s ORDER BY id) TO STDOUT" % t, out)
        ids = [int(x) for x in out.getvalue().split()]
        assert ids == list(range(1, 10002))
        with pytest.raises(psycopg2.errors.DivisionByZero):
            cur.execute("SELECT 1/0")
        c.rollback()
        cur.execute("SELECT count(*) FROM " + t)
        assert cur.fetchone()[0] == 10001
        c.commit()
    finally:
        c.close()


@pytest.mark.parametrize("pool_mode", ["session", "transaction"])
def test_psycopg2_large_objects_use_function_call(proxy, pool_mode):
    """libpq's lo_* functions are FunctionCall ('F') messages (fastpath)."""
    import psycopg2

    px = proxy(env={"POOL_MODE": pool_mode})
    c = psycopg2.connect(px.conninfo())
    try:
        data = os.urandom(300000)
        lo = c.lobject(0, "wb")
        oid = lo.oid
        assert lo.write(data) == len(data)
        lo.close()
        c.commit()
        lo = c.lobject(oid, "rb")
        lo.seek(1000)
        assert lo.read(16) == data[1000:1016]
        lo.seek(0)
        assert lo.read() == data
        lo.close()
        c.commit()
        c.lobject(oid).unlink()
        c.commit()
    finally:
        c.close()


# ---------------------------------------------------------------- SQLAlchemy


@pytest.mark.timeout_s(120)
def test_sqlalchemy_queuepool_concurrent_threads(proxy, make_table):
    import sqlalchemy as sa

    px = proxy()
    t = make_table("thread int, i int, PRIMARY KEY (thread, i)")
    url = "postgresql+psycopg2://fnx:%s@%s:%d/%s" % (PASSWORDS["fnx"], px.host, px.port, DBNAME)
    engine = sa.create_engine(
        url, pool_size=20, max_overflow=40, pool_timeout=30,
        connect_args={"connect_timeout": 5},
    )
    n_threads, n_tx = 30, 50
    errors = []

    def worker(tid):
        try:
            for i in range(n_tx):
                with engine.begin() as conn:
                    conn.execute(sa.text("INSERT INTO %s VALUES (:t, :i)" % t), {"t": tid, "i": i})
                    n = conn.execute(
                        sa.text("SELECT count(*) FROM %s WHERE thread = :t" % t), {"t": tid}
                    ).scalar()
                    if n != i + 1:
                        errors.append("thread %d tx %d saw %d rows" % (tid, i, n))
        except Exception as e:  # noqa: BLE001 - collected and asserted below
            errors.append("thread %d: %r" % (tid, e))

    threads = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(n_threads)]
    try:
        for th in threads:
            th.start()
        for th in threads:
            th.join(timeout=90)
        assert not any(th.is_alive() for th in threads), "worker threads hung"
        assert errors == []
        with engine.connect() as conn:
            total, distinct = conn.execute(
                sa.text("SELECT count(*), count(DISTINCT (thread, i)) FROM %s" % t)
            ).one()
        assert (total, distinct) == (n_threads * n_tx, n_threads * n_tx)
    finally:
        engine.dispose()


# ---------------------------------------------------------------- node-postgres


def node_modules_dir():
    for d in (os.environ.get("PX_NODE_MODULES"), os.path.join(HERE, "node_modules")):
        if d and os.path.exists(os.path.join(d, "pg", "package.json")):
            return d
    return None


def test_node_postgres_client(proxy, make_table):
    nm = node_modules_dir()
    if nm is None:
        pytest.skip("node 'pg' not installed in tests/e2e/node_modules (run scripts/deps.sh)")
    px = proxy()
    t = make_table("id int primary key, v text")
    env = pg_env(px, E2E_TABLE=t, NODE_PATH=nm)
    r = subprocess.run(
        ["node", os.path.join(HERE, "node_client.js")],
        env=env, capture_output=True, text=True, timeout=60,
    )
    assert r.returncode == 0, "node client failed:\n%s\n%s" % (r.stdout, r.stderr)
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["simple"] == {"one": 1, "ab": "ab"}
    assert out["multi"] == [1, 2]
    assert out["param"] == {"s": 42, "t": "x"}
    assert out["count"] == 2
    assert out["error"] == "22012"
    assert out["after_error"] == 2
    assert out["param_error"] == "22P02"
    assert out["tx_error"] == "23505"
    assert out["in_failed_tx"] == "25P02"
    assert out["named"] == [1, 2, 3, 4, 5]
    assert out["named2"] == "two"


# ---------------------------------------------------------------- asyncpg


@pytest.mark.parametrize("pool_mode", ["session", "transaction"])
def test_asyncpg_client(proxy, make_table, pool_mode):
    """asyncpg caches named prepared statements by default: in transaction
    mode that needs the proxy's prepared-statement tracking (spec §3)."""
    import asyncpg

    px = proxy(env={"POOL_MODE": pool_mode})
    t = make_table("id int primary key, v text")

    async def run():
        c = await asyncpg.connect(
            host=px.host, port=px.port, user="fnx", password=PASSWORDS["fnx"],
            database=DBNAME, timeout=5, command_timeout=15,
        )
        try:
            assert await c.fetchval("SELECT $1::int * 2", 21) == 42
            await c.executemany(
                "INSERT INTO %s VALUES ($1, $2)" % t, [(i, "v%d" % i) for i in range(100)]
            )
            async with c.transaction():
                await c.execute("UPDATE %s SET v = 'tx' WHERE id < 10" % t)
            try:
                async with c.transaction():
                    await c.execute("DELETE FROM %s" % t)
                    raise RuntimeError("roll back")
            except RuntimeError:
                pass
            stmt = await c.prepare("SELECT v FROM %s WHERE id = $1" % t)
            for i in range(0, 100, 7):
                assert await stmt.fetchval(i) == ("tx" if i < 10 else "v%d" % i)
            await c.copy_records_to_table(
                t, records=[(i, "copied") for i in range(100, 1100)], columns=["id", "v"]
            )
            rows = await c.fetch("SELECT v, count(*) FROM %s GROUP BY v ORDER BY v" % t)
            counts = {r["v"]: r["count"] for r in rows}
            assert counts["copied"] == 1000 and counts["tx"] == 10
            with pytest.raises(asyncpg.exceptions.DivisionByZeroError):
                await c.fetchval("SELECT 1/$1::int", 0)
            for i in range(10):  # the statement cache is reused
                assert await c.fetchval("SELECT $1::int * 2", i) == i * 2
        finally:
            await asyncio.wait_for(c.close(), 5)

    asyncio.run(asyncio.wait_for(run(), 45))
