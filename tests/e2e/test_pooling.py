"""Pooling behaviour: bounded server connections under many clients, pool
timeouts, transaction and session mode semantics, session state isolation,
cancel, vanishing clients, dying servers and the client limit."""

import asyncio
import re
import threading
import time

import psycopg
import psycopg.errors
import pytest

import pgwire
from conftest import PASSWORDS, pg_super, skip_if_direct, unique, wait_until


def server_backends(conn, since=None):
    """fnx client backends on the primary (optionally started after `since`)."""
    sql = ("SELECT count(*) FROM pg_stat_activity WHERE usename = 'fnx' AND backend_type = "
           "'client backend' AND application_name <> 'fastnext-proxy health'")
    if since is None:
        return conn.execute(sql).fetchone()[0]
    return conn.execute(sql + " AND backend_start >= %s", (since,)).fetchone()[0]


def norm(s):
    return s.replace(" ", "")


# ---------------------------------------------------------------- many clients


def worker_clients(ep):
    """fastnext_worker_client_connections per worker, from /metrics."""
    import urllib.request
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % ep.admin_port, timeout=5) as r:
        text = r.read().decode()
    out = {}
    for m in re.finditer(r'^fastnext_worker_client_connections\{worker="(\d+)"\} (\S+)$', text,
                         re.M):
        out[int(m.group(1))] = int(float(m.group(2)))
    return out


def test_clients_fill_the_first_worker_before_the_next(proxy):
    skip_if_direct("workers are the proxy's")
    px = proxy(env={"WORKERS": "2", "WORKER_FILL_CLIENTS": "4"})
    conns = [px.connect(autocommit=True) for _ in range(6)]
    try:
        # whichever worker the kernel gave each connection to, the first four
        # live on worker 0 and the next two on worker 1 ...
        wait_until(lambda: worker_clients(px) == {0: 4, 1: 2}, timeout=5,
                   what="clients per worker %r" % (worker_clients(px),))
        # ... and every one of them is served, in and out of transactions
        for i, c in enumerate(conns):
            assert c.execute("SELECT %s::int + 1", (i,)).fetchone()[0] == i + 1
            with c.transaction():
                c.execute("CREATE TEMP TABLE IF NOT EXISTS fill_t (x int) ON COMMIT DROP")
                assert c.execute("SELECT count(*) FROM fill_t").fetchone()[0] == 0
        # both full: the next goes to the one with fewer clients
        conns.append(px.connect(autocommit=True))
        wait_until(lambda: worker_clients(px) == {0: 4, 1: 3}, timeout=5,
                   what="clients per worker %r" % (worker_clients(px),))
        # a cancel finds a client that was handed to another worker
        c = conns[5]
        c.execute("SELECT 1")
        t = threading.Timer(0.5, c.cancel)
        t.start()
        with pytest.raises(psycopg.errors.QueryCanceled):
            c.execute("SELECT pg_sleep(10)")
        t.join()
        assert c.execute("SELECT 2").fetchone()[0] == 2
    finally:
        for c in conns:
            c.close()
    wait_until(lambda: worker_clients(px) == {0: 0, 1: 0}, timeout=5,
               what="clients per worker after closing %r" % (worker_clients(px),))


def test_worker_fill_zero_leaves_clients_where_the_kernel_put_them(proxy):
    skip_if_direct("workers are the proxy's")
    px = proxy(env={"WORKERS": "2", "WORKER_FILL_CLIENTS": "0"})
    conns = [px.connect(autocommit=True) for _ in range(40)]
    try:
        counts = worker_clients(px)
        assert sum(counts.values()) == 40
        # SO_REUSEPORT hashes each connection to a worker: 40 never all land on one
        assert min(counts.values()) > 0, counts
        for c in conns:
            assert c.execute("SELECT 1").fetchone()[0] == 1
    finally:
        for c in conns:
            c.close()


@pytest.mark.timeout_s(180)
def test_500_concurrent_clients_share_a_bounded_pool(proxy, pgsuper):
    t_start = pgsuper.execute("SELECT now()").fetchone()[0]
    # DB_POOL_SIZE=4, DB_MAX_OVERFLOW=2.  500 SCRAM logins at once take the
    # Python side a while: the login deadline is not what is under test here.
    px = proxy(env={"CLIENT_LOGIN_TIMEOUT": "20"})
    limit = 4 + 2
    n = 40 if px.direct else 500
    peak = {"pg": 0, "proc": 0}
    stop = threading.Event()

    def sampler():
        with pg_super() as s:
            while not stop.is_set():
                peak["pg"] = max(peak["pg"], server_backends(s, t_start))
                if not px.direct:
                    peak["proc"] = max(peak["proc"], px.server_conns())
                stop.wait(0.05)

    async def client(i, connected, go):
        conn = await psycopg.AsyncConnection.connect(
            px.conninfo(connect_timeout=20), autocommit=True, prepare_threshold=None
        )
        try:
            connected.append(i)
            await go.wait()
            for k in range(3):
                cur = await conn.execute("SELECT %s::int + %s::int, pg_sleep(0.002)", (i, k))
                assert (await cur.fetchone())[0] == i + k
            async with conn.transaction():
                cur = await conn.execute("SELECT %s::text", ("c%d" % i,))
                assert (await cur.fetchone())[0] == "c%d" % i
        finally:
            await conn.close()

    async def run():
        connected, go = [], asyncio.Event()
        tasks = [asyncio.create_task(client(i, connected, go)) for i in range(n)]
        # Hold everyone connected at once before the queries start.
        deadline = time.monotonic() + 60
        while len(connected) < n and time.monotonic() < deadline:
            if any(t.done() and t.exception() for t in tasks):
                break
            await asyncio.sleep(0.05)
        go.set()
        return await asyncio.gather(*tasks, return_exceptions=True)

    th = threading.Thread(target=sampler, daemon=True)
    th.start()
    try:
        results = asyncio.run(asyncio.wait_for(run(), 150))
    finally:
        stop.set()
        th.join(5)
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, "%d of %d clients failed, first: %r" % (len(errors), n, errors[0])
    if not px.direct:
        # +1: the health checker's own connection to the primary
        assert 0 < peak["proc"] <= limit + 1, "proxy held %d server connections" % peak["proc"]
        assert peak["pg"] <= limit, "pg_stat_activity saw %d fnx backends" % peak["pg"]
    px.assert_healthy()


# ---------------------------------------------------------------- pool timeout


def test_pool_timeout_gives_clear_error(proxy):
    skip_if_direct("PostgreSQL has no pool")
    px = proxy(env={"DB_POOL_SIZE": "1", "DB_MAX_OVERFLOW": "0", "DB_POOL_TIMEOUT": "1"})
    with px.connect() as a:
        a.execute("SELECT 1")  # implicit BEGIN: a holds the only server connection
        raw = px.raw(timeout=10)
        t0 = time.monotonic()
        try:
            with pytest.raises(pgwire.PgError) as ei:
                raw.login("fnx", "fnx", PASSWORDS["fnx"])
                raw.simple_query("SELECT 1", timeout=10)
        finally:
            raw.close()
        elapsed = time.monotonic() - t0
        err = ei.value
        assert err.sqlstate[:2] in ("53", "08"), err.fields
        assert re.search(r"(?i)pool|timeout|timed out", err.message), err.fields
        assert elapsed < 5, "error came after %.1fs with DB_POOL_TIMEOUT=1" % elapsed
        a.commit()
    px.assert_healthy()


def test_waiting_client_is_served_when_a_connection_frees_up(proxy):
    px = proxy(env={"DB_POOL_SIZE": "1", "DB_MAX_OVERFLOW": "0", "DB_POOL_TIMEOUT": "10"})
    with px.connect() as a, px.connect(autocommit=True) as b:
        a.execute("SELECT 1")
        release = threading.Timer(1.0, a.commit)
        release.start()
        t0 = time.monotonic()
        assert b.execute("SELECT 'served'").fetchone()[0] == "served"
        if not px.direct:
            assert 0.7 < time.monotonic() - t0 < 5
        release.join(5)


# ---------------------------------------------------------------- transaction mode


def test_transaction_mode_clients_interleave_on_one_server_connection(proxy, make_table):
    px = proxy(env={"DB_POOL_SIZE": "1", "DB_MAX_OVERFLOW": "0", "DB_POOL_TIMEOUT": "10"})
    t = make_table("who text, n int")
    pids = set()
    with px.connect() as a, px.connect() as b:
        for i in range(5):
            a.execute("INSERT INTO %s VALUES ('a', %%s)" % t, (i,))
            pids.add(a.execute("SELECT pg_backend_pid()").fetchone()[0])
            a.commit()
            b.execute("INSERT INTO %s VALUES ('b', %%s)" % t, (i,))
            pids.add(b.execute("SELECT pg_backend_pid()").fetchone()[0])
            assert b.execute("SELECT count(*) FROM %s WHERE who = 'b'" % t).fetchone()[0] == i + 1
            b.commit()
        if not px.direct:
            assert len(pids) == 1, "expected one shared server connection, saw %s" % pids

        # a holds the connection in a transaction; b's statement waits for it.
        a.execute("INSERT INTO %s VALUES ('a', 99)" % t)
        seen = {}

        def b_reads():
            seen["n"] = b.execute("SELECT count(*) FROM %s WHERE who = 'a'" % t).fetchone()[0]
            b.commit()

        th = threading.Thread(target=b_reads, daemon=True)
        th.start()
        time.sleep(1.0)
        if not px.direct:
            assert th.is_alive(), "b ran while a held the only server connection"
        a.commit()
        th.join(5)
        assert not th.is_alive(), "b never got the connection back"
        assert seen["n"] == (5 if px.direct else 6)
        assert a.execute("SELECT count(*) FROM %s" % t).fetchone()[0] == 11
        a.commit()


# ---------------------------------------------------------------- session mode


def test_session_mode_state_does_not_leak_between_clients(proxy):
    px = proxy(env={"POOL_MODE": "session", "DB_POOL_SIZE": "1", "DB_MAX_OVERFLOW": "0"})
    with px.connect(autocommit=True) as a:
        pid_a = a.execute("SELECT pg_backend_pid()").fetchone()[0]
        a.execute("SET search_path TO e2e_leak, public")
        a.execute("SET statement_timeout = '4242ms'")
        a.execute("PREPARE e2e_leak_stmt AS SELECT 1")
        a.execute("CREATE TEMP TABLE e2e_leak_tmp (x int)")
        a.execute("SELECT pg_advisory_lock(770001)")
        a.execute("LISTEN e2e_leak_ch")
        a.execute("DECLARE e2e_leak_cur CURSOR WITH HOLD FOR SELECT 1")
        a.execute("SELECT %s::int", (1,), prepare=True)
    with px.connect(autocommit=True) as b:
        pid_b = b.execute("SELECT pg_backend_pid()").fetchone()[0]
        if not px.direct:
            assert pid_b == pid_a, "the one pooled server connection was not reused"
        assert norm(b.execute("SHOW search_path").fetchone()[0]) == '"$user",public'
        assert b.execute("SHOW statement_timeout").fetchone()[0] == "0"
        assert b.execute("SELECT count(*) FROM pg_prepared_statements").fetchone()[0] == 0
        assert b.execute("SELECT to_regclass('e2e_leak_tmp')").fetchone()[0] is None
        assert b.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
        ).fetchone()[0] == 0
        assert b.execute("SELECT count(*) FROM pg_listening_channels()").fetchone()[0] == 0
        assert b.execute("SELECT count(*) FROM pg_cursors WHERE name = 'e2e_hold'").fetchone()[0] == 0


# -------------------------------------------- transaction mode: session state
#
# Each kind: setup(a, ctx) gives client A some session state; check_a(a, ctx,
# round) proves A still has it; check_b(b, ctx) proves B (same pool) does not
# see it.  A may instead be refused with a clear error at setup.


def _set_setup(a, ctx):
    a.execute("SET search_path TO e2e_pinned, public")
    a.execute("SET statement_timeout = '4242ms'")


def _set_check_a(a, ctx, rnd):
    assert norm(a.execute("SHOW search_path").fetchone()[0]) == "e2e_pinned,public"
    assert a.execute("SHOW statement_timeout").fetchone()[0] == "4242ms"


def _set_check_b(b, ctx):
    assert norm(b.execute("SHOW search_path").fetchone()[0]) == '"$user",public'
    assert b.execute("SHOW statement_timeout").fetchone()[0] == "0"


def _temp_setup(a, ctx):
    a.execute("CREATE TEMP TABLE e2e_tmp_pin (x int)")
    a.execute("INSERT INTO e2e_tmp_pin VALUES (1)")


def _temp_check_a(a, ctx, rnd):
    a.execute("INSERT INTO e2e_tmp_pin VALUES (%s)", (rnd + 2,))
    assert a.execute("SELECT count(*) FROM e2e_tmp_pin").fetchone()[0] == rnd + 2


def _temp_check_b(b, ctx):
    assert b.execute("SELECT to_regclass('e2e_tmp_pin')").fetchone()[0] is None


def _prep_setup(a, ctx):
    # prepare=True: a named protocol-level statement (psycopg calls it _pg3_0).
    assert a.execute("SELECT %s::text || '-A'", ("x",), prepare=True).fetchone()[0] == "x-A"


def _prep_check_a(a, ctx, rnd):
    v = "r%d" % rnd
    assert a.execute("SELECT %s::text || '-A'", (v,), prepare=True).fetchone()[0] == v + "-A"


def _prep_check_b(b, ctx):
    # B's first prepared statement gets the same name as A's: it must be B's.
    ctx["b_runs"] = ctx.get("b_runs", 0) + 1
    v = "b%d" % ctx["b_runs"]
    assert b.execute("SELECT %s::text || '-B'", (v,), prepare=True).fetchone()[0] == v + "-B"


def _listen_setup(a, ctx):
    ctx["ch"] = unique("ch")
    ctx["a_got"], ctx["b_got"] = [], []
    a.add_notify_handler(lambda n: ctx["a_got"].append(n.payload))
    a.execute("LISTEN %s" % ctx["ch"])


def _listen_check_a(a, ctx, rnd):
    with pg_super() as s:
        s.execute("SELECT pg_notify(%s, %s)", (ctx["ch"], "n%d" % rnd))
    wait_until(lambda: a.execute("SELECT 1") and ("n%d" % rnd) in ctx["a_got"], 5,
               what="A's notification")


def _listen_check_b(b, ctx):
    if not ctx.get("b_handler"):
        b.add_notify_handler(lambda n: ctx["b_got"].append((n.channel, n.payload)))
        ctx["b_handler"] = True
    for _ in range(3):
        b.execute("SELECT 1")
        time.sleep(0.05)
    assert ctx["b_got"] == [], "B received A's notifications: %r" % ctx["b_got"]


def _lock_setup(a, ctx):
    ctx["key"] = 770000 + (int(time.time() * 1000) % 10000)
    assert a.execute("SELECT pg_advisory_lock(%s)", (ctx["key"],)).fetchone() is not None


def _lock_check_a(a, ctx, rnd):
    assert a.execute(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = %s "
        "AND pid = pg_backend_pid() AND granted", (ctx["key"],)
    ).fetchone()[0] == 1


def _lock_check_b(b, ctx):
    got = b.execute("SELECT pg_try_advisory_lock(%s)", (ctx["key"],)).fetchone()[0]
    if got:
        b.execute("SELECT pg_advisory_unlock(%s)", (ctx["key"],))
    assert got is False, "B acquired A's session advisory lock: B runs on A's session"


def _cursor_setup(a, ctx):
    a.execute("DECLARE e2e_hold CURSOR WITH HOLD FOR SELECT g FROM generate_series(1, 100) g")


def _cursor_check_a(a, ctx, rnd):
    rows = a.execute("FETCH 2 FROM e2e_hold").fetchall()
    assert rows == [(2 * rnd + 1,), (2 * rnd + 2,)]


def _cursor_check_b(b, ctx):
    assert b.execute("SELECT count(*) FROM pg_cursors WHERE name = 'e2e_hold'").fetchone()[0] == 0


SESSION_STATE = {
    "set": (_set_setup, _set_check_a, _set_check_b),
    "temp_table": (_temp_setup, _temp_check_a, _temp_check_b),
    "prepared_statement": (_prep_setup, _prep_check_a, _prep_check_b),
    "listen": (_listen_setup, _listen_check_a, _listen_check_b),
    "advisory_lock": (_lock_setup, _lock_check_a, _lock_check_b),
    "with_hold_cursor": (_cursor_setup, _cursor_check_a, _cursor_check_b),
}


@pytest.mark.parametrize("kind", list(SESSION_STATE))
def test_transaction_mode_session_state_never_leaks(proxy, kind):
    """Pool of 1 (+1 overflow): if A's state is not pinned, B lands on A's
    server connection and would see it.  A keeps its state or is refused."""
    setup, check_a, check_b = SESSION_STATE[kind]
    px = proxy(env={"DB_POOL_SIZE": "1", "DB_MAX_OVERFLOW": "1", "DB_POOL_TIMEOUT": "3"})
    ctx = {}
    with px.connect(autocommit=True) as a, px.connect(autocommit=True) as b:
        try:
            setup(a, ctx)
            a_refused = None
        except psycopg.Error as e:
            a_refused = e
            assert str(e).strip(), "refused without a message"
            assert a.execute("SELECT 1").fetchone()[0] == 1
        for rnd in range(3):
            check_b(b, ctx)
            with b.transaction():
                check_b(b, ctx)
            if a_refused is None:
                check_a(a, ctx, rnd)
    px.assert_healthy()


# ---------------------------------------------------------------- cancel


def test_cancel_request_stops_running_query(proxy):
    px = proxy()
    with px.connect(autocommit=True) as c, px.connect(autocommit=True) as other:
        # A cancel with nothing running is harmless and not remembered.
        c.cancel()
        time.sleep(0.3)
        assert c.execute("SELECT 1, pg_sleep(0.5)").fetchone()[0] == 1

        done = {}

        def other_runs():
            done["v"] = other.execute("SELECT 'untouched', pg_sleep(3)").fetchone()[0]

        th = threading.Thread(target=other_runs, daemon=True)
        th.start()
        threading.Timer(1.0, c.cancel).start()
        t0 = time.monotonic()
        with pytest.raises(psycopg.errors.QueryCanceled):
            c.execute("SELECT pg_sleep(20)")
        assert time.monotonic() - t0 < 6
        assert c.execute("SELECT 2").fetchone()[0] == 2
        th.join(10)
        assert done.get("v") == "untouched", "another client's query was cancelled"

        # Inside a transaction as well; the client then rolls back and goes on.
        c.execute("BEGIN")
        threading.Timer(1.0, c.cancel).start()
        with pytest.raises(psycopg.errors.QueryCanceled):
            c.execute("SELECT pg_sleep(20)")
        c.execute("ROLLBACK")
        assert c.execute("SELECT 3").fetchone()[0] == 3


def test_raw_cancel_request_uses_proxy_backend_key(proxy):
    """A raw CancelRequest with the key from BackendKeyData cancels the query."""
    px = proxy()
    raw = px.raw(timeout=10)
    try:
        raw.login("fnx", "fnx", PASSWORDS["fnx"])
        pid, key = raw.backend_key
        raw.send(pgwire.query("SELECT pg_sleep(20)"))
        time.sleep(1.0)
        cr = px.raw()
        cr.send(pgwire.cancel_request(pid, key))
        assert cr.wait_closed(5)
        cr.close()
        with pytest.raises(pgwire.PgError) as ei:
            raw.collect(timeout=6)
        assert ei.value.sqlstate == "57014"
        assert raw.simple_query("SELECT 5")[0] == [["5"]]
    finally:
        raw.close()


# ---------------------------------------------------------------- vanishing peers


def _active_with(marker):
    with pg_super() as s:
        return s.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE %s",
            ("%" + marker + "%",),
        ).fetchone()[0]


def test_client_disconnect_mid_query_cancels_server_query(proxy):
    skip_if_direct("PostgreSQL only notices a vanished client when the query ends")
    px = proxy(env={"DB_POOL_SIZE": "1", "DB_MAX_OVERFLOW": "0", "DB_POOL_TIMEOUT": "10"})
    marker = unique("vanish")
    raw = px.raw()
    raw.login("fnx", "fnx", PASSWORDS["fnx"])
    raw.send(pgwire.query("SELECT pg_sleep(30) /* %s */" % marker))
    wait_until(lambda: _active_with(marker) == 1, 5, what="the query to start")
    raw.close()
    t0 = time.monotonic()
    wait_until(lambda: _active_with(marker) == 0, 5, what="the orphaned query to be cancelled")
    # The only server connection is usable again (cleaned, or replaced).
    with px.connect(autocommit=True) as c:
        assert c.execute("SELECT 'next'").fetchone()[0] == "next"
    assert time.monotonic() - t0 < 10


def test_server_killed_mid_transaction_gives_client_error(proxy, pgsuper):
    px = proxy()
    with px.connect() as c:
        pid = c.execute("SELECT pg_backend_pid()").fetchone()[0]
        pgsuper.execute("SELECT pg_terminate_backend(%s)", (pid,))
        t0 = time.monotonic()
        with pytest.raises(psycopg.Error):
            c.execute("SELECT 1")
        assert time.monotonic() - t0 < 5
    # Killed while the client waits for a result.
    with px.connect(autocommit=True) as c:
        pid = c.execute("SELECT pg_backend_pid()").fetchone()[0]  # may differ per statement
        marker = unique("killme")
        killer = threading.Timer(
            1.0,
            lambda: pg_super().execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE %s "
                "AND pid <> pg_backend_pid()", ("%" + marker + "%",)
            ),
        )
        killer.start()
        t0 = time.monotonic()
        with pytest.raises(psycopg.Error):
            c.execute("SELECT pg_sleep(20) /* %s */" % marker)
        assert time.monotonic() - t0 < 6
        killer.join()
    px.assert_healthy()
    with px.connect() as c:
        c.execute("SELECT 1")
        c.commit()


def test_idle_server_connections_killed_are_not_handed_out(proxy, pgsuper):
    px = proxy(env={"SERVER_CHECK_DELAY": "0", "DB_POOL_SIZE": "4", "DB_MAX_OVERFLOW": "0"})
    conns = [px.connect() for _ in range(4)]
    try:
        for c in conns:  # four transactions at once: four server connections
            c.execute("SELECT 1")
        for c in conns:
            c.commit()
        keep = conns.pop(0)
        for c in conns:
            c.close()
        if not px.direct:
            wait_until(lambda: px.server_conns() >= 1, 5, what="pooled server connections")
        killed = pgsuper.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE usename = 'fnx' AND state = 'idle' AND backend_type = 'client backend'"
        ).fetchone()[0]
        assert killed >= 1
        time.sleep(0.3)
        if not px.direct:
            # keep's old server connection is gone; in transaction mode it just
            # gets another one.
            for i in range(3):
                assert keep.execute("SELECT %s::int", (i,)).fetchone()[0] == i
                keep.commit()
        errors = []

        def worker(k):
            try:
                with px.connect(autocommit=True) as c:
                    for i in range(5):
                        assert c.execute("SELECT %s::int", (k * 10 + i,)).fetchone()[0] == k * 10 + i
            except Exception as e:  # noqa: BLE001
                errors.append(repr(e))

        ths = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(6)]
        for th in ths:
            th.start()
        for th in ths:
            th.join(20)
        assert errors == []
    finally:
        for c in conns:
            c.close()
        keep.close()


# ---------------------------------------------------------------- client limit


def test_max_client_conn_rejects_the_sixth_client(proxy):
    skip_if_direct("max_connections of PostgreSQL is not under test")
    px = proxy(env={"MAX_CLIENT_CONN": "5"})
    five = [px.connect(autocommit=True) for _ in range(5)]
    try:
        for i, c in enumerate(five):
            assert c.execute("SELECT %s::int", (i,)).fetchone()[0] == i
        raw = px.raw()
        try:
            with pytest.raises(pgwire.PgError) as ei:
                raw.login("fnx", "fnx", PASSWORDS["fnx"])
            assert ei.value.sqlstate == "53300", ei.value.fields
        finally:
            raw.close()
        with pytest.raises(psycopg.OperationalError):
            px.connect()
        for i, c in enumerate(five):
            assert c.execute("SELECT %s::int", (i + 10,)).fetchone()[0] == i + 10
        five.pop().close()

        def sixth_fits():
            try:
                with px.connect(autocommit=True) as c:
                    return c.execute("SELECT 1").fetchone()[0] == 1
            except psycopg.OperationalError:
                return False

        wait_until(sixth_fits, 5, interval=0.2, what="a freed client slot")
    finally:
        for c in five:
            c.close()
