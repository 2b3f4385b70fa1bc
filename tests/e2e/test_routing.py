"""Read/write routing (SPEC §4, issue 4) on the test stack's primary and two
streaming replicas: reads really reach the replicas (pg_is_in_recovery() and
inet_server_port() tell where a statement ran), writes and side-effecting
reads never do, transactions stay on one member, hints override, read-your-
writes holds while the replicas are paused, a lagging or unreachable replica
takes no reads, real clients keep working, and the primary going away (a TCP
relay in front of it is switched off; the shared stack is never stopped)
fails writes clearly while reads keep going to the replicas.

Everything here except the SERIALIZABLE READ ONLY check is about the proxy's
routing, so it skips in PX_E2E_DIRECT mode."""

import asyncio
import contextlib
import http.client
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
from relay import Relay
from conftest import (
    DBNAME,
    DIRECT,
    HERE,
    PASSWORDS,
    PG_HOST,
    free_port,
    pg_env,
    pg_super,
    skip_if_direct,
    unique,
    wait_until,
)

STATUS = "/api/v1/scaling/replication/status"
WHERE = "SELECT pg_is_in_recovery(), inet_server_port()"


# ---------------------------------------------------------------- helpers


def replica_ports(stack):
    ports = [stack["replica1"], stack["replica2"]]
    if not all(ports):
        pytest.skip("the stack has no replicas (PX_PG_REPLICA1_PORT / PX_PG_REPLICA2_PORT)")
    return ports


def replicas_spec(ports):
    return ",".join("127.0.0.1:%d" % p for p in ports)


def replication_status(ep):
    """The admin port's replication status, or None while it does not answer."""
    conn = http.client.HTTPConnection("127.0.0.1", ep.admin_port, timeout=5)
    try:
        conn.request("GET", STATUS)
        r = conn.getresponse()
        data = r.read()
    except OSError:
        return None
    finally:
        conn.close()
    assert r.status == 200, (r.status, data)
    return json.loads(data)


def replica_state(ep):
    """{port: replica entry} from the replication status, or None."""
    body = replication_status(ep)
    if body is None:
        return None
    return {r["port"]: r for r in body["replicas"]}


def wait_usable(ep, ports, usable=True, timeout=20):
    def ok():
        st = replica_state(ep)
        if st and all(p in st and st[p]["usable"] is usable for p in ports):
            return st
        return None

    return wait_until(ok, timeout, interval=0.2,
                      what="replicas %s reported usable=%s" % (ports, usable))


def routed(proxy, stack, extra=(), wait=True, **env):
    """A proxy with both stack replicas (and `extra` host:port entries) as read
    replicas; waits until the health checker has found both usable."""
    skip_if_direct("routing to replicas is the proxy's job")
    ports = replica_ports(stack)
    cfg = {"POSTGRES_READ_REPLICAS": ",".join([replicas_spec(ports)] + list(extra))}
    cfg.update(env)
    ep = proxy(env=cfg)
    if wait:
        wait_usable(ep, ports)
    return ep


def where(conn, sql=WHERE, params=None, **kw):
    """(in_recovery, server_port) of the member that ran `sql`."""
    return tuple(conn.execute(sql, params, **kw).fetchone())


def replica_super(port):
    """A direct superuser connection to a replica."""
    return psycopg.connect(host=PG_HOST, port=port, user="postgres", dbname=DBNAME,
                           autocommit=True, connect_timeout=5)


def resume(ports):
    """Resume WAL replay on every port; returns the errors (never raises)."""
    errors = []
    for p in ports:
        try:
            with replica_super(p) as c:
                c.execute("SELECT pg_wal_replay_resume()")
        except Exception as e:  # keep going: the other replica must resume too
            errors.append((p, e))
    return errors


@contextlib.contextmanager
def paused(ports):
    """Replay paused on the given replicas for the block; ALWAYS resumed.

    Each replica first replays everything the primary has written, so replay
    never stops half-way through a DDL transaction (an ALTER TABLE whose lock
    record was replayed but whose commit was not would block every read of
    that table on the standby until replay resumed)."""
    caught_up(ports)
    try:
        for p in ports:
            with replica_super(p) as c:
                c.execute("SELECT pg_wal_replay_pause()")
                state = c.execute("SELECT pg_get_wal_replay_pause_state()").fetchone()[0]
                assert state in ("pause requested", "paused"), state
        yield
    finally:
        errors = resume(ports)
        assert not errors, "could not resume replay: %r" % errors


@pytest.fixture
def resume_replicas_at_teardown(stack):
    """Belt and braces: whatever happens, replay runs again after the test."""
    yield
    ports = [p for p in (stack["replica1"], stack["replica2"]) if p]
    resume(ports)


@pytest.fixture
def functions(stack):
    """Two SQL functions returning pg_is_in_recovery(): one VOLATILE, one
    STABLE.  Made before the proxy starts, so its first catalog load knows
    them."""
    vol, stab = unique("fn_vol"), unique("fn_stable")
    with pg_super() as c:
        c.execute("CREATE FUNCTION %s() RETURNS boolean LANGUAGE sql VOLATILE "
                  "AS 'SELECT pg_is_in_recovery()'" % vol)
        c.execute("CREATE FUNCTION %s() RETURNS boolean LANGUAGE sql STABLE "
                  "AS 'SELECT pg_is_in_recovery()'" % stab)
    yield vol, stab
    with pg_super() as c:
        c.execute("DROP FUNCTION IF EXISTS %s()" % vol)
        c.execute("DROP FUNCTION IF EXISTS %s()" % stab)


def caught_up(ports, timeout=10):
    """Until every replica has replayed the primary's current WAL position."""
    with pg_super() as c:
        lsn = c.execute("SELECT pg_current_wal_lsn()::text").fetchone()[0]
    wait_replicated(ports, "SELECT pg_last_wal_replay_lsn() >= '%s'::pg_lsn" % lsn, timeout)


def wait_replicated(ports, sql, timeout=10):
    """Until `sql` returns a truthy first column on every replica."""
    for p in ports:
        with replica_super(p) as c:

            def done():
                try:
                    return c.execute(sql).fetchone()[0]
                except psycopg.errors.UndefinedTable:  # not replayed yet
                    return False

            wait_until(done, timeout, what="replica %d to replay: %s" % (p, sql))


def node_modules_dir():
    for d in (os.environ.get("PX_NODE_MODULES"), os.path.join(HERE, "node_modules")):
        if d and os.path.exists(os.path.join(d, "pg", "package.json")):
            return d
    return None



# ---------------------------------------------------------------- reads go to replicas


def test_plain_autocommit_reads_reach_the_replicas(proxy, stack, make_table):
    ep = routed(proxy, stack)
    ports = replica_ports(stack)
    t = make_table("id int primary key, v text")
    with pg_super() as s:
        s.execute("INSERT INTO %s SELECT g, 'v' || g FROM generate_series(1, 50) g" % t)
    wait_replicated(ports, "SELECT count(*) = 50 FROM %s" % t)

    with ep.connect(autocommit=True) as c:
        for i in range(10):
            # simple query protocol (psycopg sends parameterless text this way)
            rec, port = where(c)
            assert rec is True and port in ports, (rec, port)
            # extended protocol, unnamed statement
            rec, port, n = where(c, WHERE + ", %s::int", (i,))
            assert rec is True and port in ports and n == i, (rec, port)
            # an ordinary read of a table
            row = c.execute("SELECT v, pg_is_in_recovery() FROM %s WHERE id = %%s" % t,
                            (i + 1,)).fetchone()
            assert row == ("v%d" % (i + 1), True)
        # named prepared statements (psycopg prepare=True) too, on whichever replica
        for i in range(6):
            rec, port, n = where(c, WHERE + ", %s::int + 1", (i,), prepare=True)
            assert rec is True and port in ports and n == i + 1, (rec, port)
        # a multi-statement read-only string goes to a replica as a whole
        cur = c.execute("SELECT pg_is_in_recovery(); SELECT count(*) FROM %s" % t)
        assert cur.fetchone()[0] is True
        assert cur.nextset() and cur.fetchone()[0] == 50

    # concurrent readers are spread over both replicas (least connections)
    seen, errors = set(), []

    def reader():
        try:
            with ep.connect(autocommit=True) as c:
                for _ in range(8):
                    rec, port, _ = where(c, WHERE + ", pg_sleep(0.03)")
                    assert rec is True, port
                    seen.add(port)
        except Exception as e:
            errors.append(e)

    threads = [threading.Thread(target=reader, daemon=True) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(30)
    assert not errors, errors
    assert seen == set(ports), "reads reached only %s of %s" % (seen, ports)


def test_session_settings_hold_wherever_reads_run(proxy, stack):
    """Settings a client gives at startup (options=-c ...) are replayed on
    whichever member runs its reads, replicas included; a session SET must
    hold too (today it pins the client to its primary connection, which is
    correct if not ideal, so only the result is checked)."""
    ep = routed(proxy, stack)
    ports = replica_ports(stack)
    schema, name = unique("sch"), unique("t")
    # one transaction: a replica that has the tables also has their grants
    with pg_super() as s, s.transaction():
        s.execute("CREATE SCHEMA %s" % schema)
        s.execute("GRANT USAGE ON SCHEMA %s TO PUBLIC" % schema)
        s.execute("CREATE TABLE public.%s AS SELECT 'public'::text AS v" % name)
        s.execute("CREATE TABLE %s.%s AS SELECT 'schema'::text AS v" % (schema, name))
        s.execute("GRANT SELECT ON public.%s, %s.%s TO PUBLIC" % (name, schema, name))
    try:
        wait_replicated(ports, "SELECT to_regclass('%s.%s') IS NOT NULL" % (schema, name))
        opts = "-c search_path=%s,public -c statement_timeout=4321ms" % schema
        with ep.connect(autocommit=True, options=opts) as c:
            for i in range(6):
                row = c.execute("SELECT v, current_setting('statement_timeout'), "
                                "pg_is_in_recovery() FROM %s WHERE %%s" % name, (True,)).fetchone()
                assert row == ("schema", "4321ms", True), row
                row = c.execute("SELECT v, pg_is_in_recovery() FROM %s" % name).fetchone()
                assert row == ("schema", True), row
        with ep.connect(autocommit=True) as c:
            assert c.execute("SELECT v, pg_is_in_recovery() FROM %s" % name).fetchone() == (
                "public", True)
            c.execute("SET search_path TO %s, public" % schema)
            c.execute("SET statement_timeout = '4321ms'")
            for i in range(6):
                row = c.execute("SELECT v, current_setting('statement_timeout') FROM %s "
                                "WHERE %%s" % name, (True,)).fetchone()
                assert row == ("schema", "4321ms"), row
    finally:
        with pg_super() as s:
            s.execute("DROP SCHEMA %s CASCADE" % schema)
            s.execute("DROP TABLE IF EXISTS public.%s" % name)


# ---------------------------------------------------------------- writes never do


def test_writes_and_side_effecting_reads_never_reach_a_replica(proxy, stack, make_table,
                                                               functions):
    vol, stab = functions
    t = make_table("id int primary key, v text")
    seq = unique("seq")
    into = unique("t_into")
    with pg_super() as s:
        s.execute("INSERT INTO %s SELECT g, 'v' FROM generate_series(1, 10) g" % t)
        s.execute("CREATE SEQUENCE %s" % seq)
        s.execute("GRANT ALL ON SEQUENCE %s TO PUBLIC" % seq)
    try:
        ep = routed(proxy, stack)
        ports = replica_ports(stack)
        wait_replicated(ports, "SELECT count(*) = 10 FROM %s" % t)
        wait_replicated(ports, "SELECT to_regproc('%s') IS NOT NULL" % vol)
        on_primary = [
            ("INSERT INTO {t} VALUES (100, 'x') RETURNING pg_is_in_recovery()", None),
            ("INSERT INTO {t} VALUES (%s, 'x') RETURNING pg_is_in_recovery()", (101,)),
            ("UPDATE {t} SET v = 'u' WHERE id = 1 RETURNING pg_is_in_recovery()", None),
            ("DELETE FROM {t} WHERE id = %s RETURNING pg_is_in_recovery()", (2,)),
            ("SELECT pg_is_in_recovery() FROM {t} WHERE id = 3 FOR UPDATE", None),
            ("SELECT pg_is_in_recovery() FROM {t} WHERE id = %s FOR UPDATE", (3,)),
            ("SELECT pg_is_in_recovery() FROM {t} WHERE id = 3 FOR NO KEY UPDATE", None),
            ("SELECT pg_is_in_recovery() FROM {t} WHERE id = 3 FOR SHARE", None),
            ("SELECT pg_is_in_recovery() FROM {t} WHERE id = 3 FOR KEY SHARE", None),
            ("SELECT pg_is_in_recovery() FROM (SELECT * FROM {t} WHERE id = 3 FOR UPDATE) s",
             None),
            ("SELECT pg_is_in_recovery() FROM {t} WHERE id = 4 FOR UPDATE SKIP LOCKED", None),
            ("SELECT pg_is_in_recovery(), nextval('{seq}')", None),
            ("SELECT pg_is_in_recovery(), nextval(%s)", (seq,)),
            ("SELECT pg_is_in_recovery(), setval('{seq}', 100)", None),
            ("SELECT pg_is_in_recovery(), txid_current()", None),
            ("WITH w AS (INSERT INTO {t} VALUES (102, 'cte') RETURNING id) "
             "SELECT pg_is_in_recovery() FROM w", None),
            ("WITH r AS (SELECT 1), w AS (UPDATE {t} SET v = 'cte' WHERE id = %s RETURNING id) "
             "SELECT pg_is_in_recovery() FROM r, w", (5,)),
            ("WITH w AS (DELETE FROM {t} WHERE id = 6 RETURNING id) "
             "SELECT pg_is_in_recovery() FROM (SELECT * FROM w) s", None),
            ("SELECT {vol}()", None),
            ("SELECT {vol}() WHERE %s", (True,)),
            ("SELECT {vol}(), v FROM {t} WHERE id = 7", None),
        ]
        with ep.connect(autocommit=True) as c:
            assert where(c)[0] is True, "reads are not reaching the replicas at all"
            for sql, params in on_primary:
                q = sql.format(t=t, seq=seq, vol=vol)
                try:
                    row = c.execute(q, params).fetchone()
                except psycopg.errors.ReadOnlySqlTransaction as e:
                    pytest.fail("%r ran on a replica: %s" % (q, e))
                assert row[0] is False, "%r ran on a replica" % q

            # SELECT INTO, EXPLAIN ANALYZE of a write, COPY FROM: a
            # replica would refuse them (25006), the primary runs them
            c.execute("SELECT pg_is_in_recovery() AS r INTO %s" % into)
            c.execute("EXPLAIN ANALYZE INSERT INTO %s VALUES (103, 'explained')" % t)
            with c.cursor().copy("COPY %s (id, v) FROM STDIN" % t) as cp:
                cp.write_row((104, "copied"))

            # a STABLE function may run on a replica; the classifier learns
            # volatility from the catalog, so only ask that it works
            assert c.execute("SELECT %s()" % stab).fetchone()[0] in (True, False)

        with pg_super() as s:
            assert s.execute("SELECT r FROM %s" % into).fetchone()[0] is False
            got = dict(s.execute("SELECT id, v FROM %s WHERE id >= 100" % t).fetchall())
            assert got == {100: "x", 101: "x", 102: "cte", 103: "explained", 104: "copied"}
            assert s.execute("SELECT last_value FROM %s" % seq).fetchone()[0] == 100
    finally:
        with pg_super() as s:
            s.execute("DROP TABLE IF EXISTS %s" % into)
            s.execute("DROP SEQUENCE IF EXISTS %s" % seq)


def test_a_write_pipelined_behind_a_read_goes_to_the_primary(proxy, stack, make_table):
    ep = routed(proxy, stack)
    t = make_table("id int")
    raw = ep.raw(timeout=10)
    try:
        raw.login("fnx", DBNAME, PASSWORDS["fnx"])
        # three extended-protocol units sent in one go: read, write, read
        unit = lambda sql: (pgwire.parse("", sql) + pgwire.bind("", "") +  # noqa: E731
                            pgwire.execute() + pgwire.sync())
        raw.send(unit("SELECT pg_is_in_recovery()")
                 + unit("INSERT INTO %s VALUES (1) RETURNING pg_is_in_recovery()" % t)
                 + unit("SELECT count(*), bool_or(pg_is_in_recovery()) FROM %s" % t))
        assert raw.collect()[0] == [["t"]]
        assert raw.collect()[0] == [["f"]], "the pipelined INSERT ran on a replica"
        # the client just wrote: its read-back stays on the primary and sees the row
        assert raw.collect()[0] == [["1", "f"]]

        # the same with simple queries, and a mixed multi-statement string
        raw.send(pgwire.query("INSERT INTO %s VALUES (2) RETURNING pg_is_in_recovery()" % t)
                 + pgwire.query("SELECT count(*) FROM %s" % t))
        assert raw.collect()[0] == [["f"]]
        assert raw.collect()[0] == [["2"]]
        rows, tags = raw.simple_query(
            "SELECT pg_is_in_recovery(); INSERT INTO %s VALUES (3)" % t, timeout=10)
        assert rows == [["f"]] and tags == ["SELECT 1", "INSERT 0 1"]
    finally:
        raw.close()


# ---------------------------------------------------------------- transactions


def test_explicit_transactions_stay_on_the_primary(proxy, stack, make_table):
    ep = routed(proxy, stack)
    t = make_table("id int")
    with ep.connect() as c:  # psycopg default: statements run inside BEGIN ... COMMIT
        rec, port = where(c)
        assert rec is False and port == stack["port"]
        pid = c.execute("SELECT pg_backend_pid()").fetchone()[0]
        c.execute("INSERT INTO %s VALUES (1)" % t)
        assert where(c) == (False, stack["port"])
        assert c.execute("SELECT count(*), pg_backend_pid() FROM %s" % t).fetchone() == (1, pid)
        c.commit()

    with ep.connect(autocommit=True) as c:
        c.execute("BEGIN")
        assert where(c)[0] is False
        pid = c.execute("SELECT pg_backend_pid()").fetchone()[0]
        c.execute("INSERT INTO %s VALUES (%%s)" % t, (2,))
        assert c.execute("SELECT count(*), pg_backend_pid(), pg_is_in_recovery() FROM %s"
                         % t).fetchone() == (2, pid, False)
        c.execute("COMMIT")
        # a read-only first statement inside BEGIN does not move the transaction
        c.execute("START TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        assert where(c, WHERE + " WHERE %s", (True,))[0] is False
        c.execute("INSERT INTO %s VALUES (3)" % t)
        c.execute("ROLLBACK")
        # BEGIN and a read in one string: still the primary
        cur = c.execute("BEGIN; SELECT pg_is_in_recovery()")
        assert cur.nextset() and cur.fetchone()[0] is False
        c.execute("INSERT INTO %s VALUES (4)" % t)
        c.execute("COMMIT")
        assert c.execute("SELECT count(*) FROM %s" % t).fetchone()[0] == 3


def test_begin_read_only_transactions_run_on_one_replica(proxy, stack, make_table):
    ep = routed(proxy, stack)
    ports = replica_ports(stack)
    t = make_table("id int")
    wait_replicated(ports, "SELECT to_regclass('%s') IS NOT NULL" % t)
    for begin in ("BEGIN READ ONLY", "START TRANSACTION READ ONLY",
                  "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
                  "begin transaction read only"):
        with ep.connect(autocommit=True) as c:
            c.execute(begin)
            rec, port, pid = where(c, WHERE + ", pg_backend_pid()")
            assert rec is True and port in ports, (begin, rec, port)
            for _ in range(3):
                assert where(c, WHERE + ", pg_backend_pid()") == (True, port, pid), begin
            assert c.execute("SELECT count(*) FROM %s" % t).fetchone()[0] == 0
            c.execute("COMMIT")

    with ep.connect(autocommit=True) as c:
        # a write in a READ ONLY transaction fails as it would on the primary ...
        c.execute("BEGIN READ ONLY")
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            c.execute("INSERT INTO %s VALUES (1)" % t)
        c.execute("ROLLBACK")
        # ... and the next unit is routed anew: the write goes to the primary
        assert c.execute("INSERT INTO %s VALUES (1) RETURNING pg_is_in_recovery()"
                         % t).fetchone()[0] is False
        c.execute("BEGIN READ WRITE")
        assert where(c)[0] is False
        c.execute("COMMIT")


def test_psycopg_read_only_transactions_run_on_a_replica(proxy, stack):
    """psycopg 3 with read_only=True sends BEGIN READ ONLY (and COMMIT) with
    the extended protocol (Parse/Bind/Describe/Execute/Sync): it is the same
    read-only transaction and belongs on a replica."""
    ep = routed(proxy, stack)
    ports = replica_ports(stack)
    with ep.connect() as c:
        c.read_only = True
        for i in range(3):
            rec, port = where(c)
            assert rec is True and port in ports, "psycopg read-only transaction on the primary"
            assert where(c, WHERE + " WHERE %s", (True,)) == (True, port)
            c.commit()


def test_serializable_read_only_transactions_work(proxy, stack):
    """PostgreSQL refuses SERIALIZABLE on a hot standby; a client asking for a
    serializable read-only transaction must get one (on the primary), not an
    error it would never see without the proxy."""
    ep = proxy() if DIRECT else routed(proxy, stack)
    with ep.connect(autocommit=True) as c:
        for begin in ("BEGIN ISOLATION LEVEL SERIALIZABLE READ ONLY",
                      "BEGIN ISOLATION LEVEL SERIALIZABLE READ ONLY DEFERRABLE",
                      "START TRANSACTION READ ONLY, ISOLATION LEVEL SERIALIZABLE"):
            c.execute(begin)
            assert c.execute("SELECT 1").fetchone()[0] == 1, begin
            c.execute("COMMIT")
    with ep.connect() as c:
        c.isolation_level = psycopg.IsolationLevel.SERIALIZABLE
        c.read_only = True
        assert c.execute("SELECT 2").fetchone()[0] == 2
        c.commit()


# ---------------------------------------------------------------- hints


def test_hints_override_the_classifier_both_ways(proxy, stack, make_table, functions):
    vol, _ = functions
    ep = routed(proxy, stack)
    ports = replica_ports(stack)
    t = make_table("id int, v text")
    wait_replicated(ports, "SELECT to_regproc('%s') IS NOT NULL" % vol)
    wait_replicated(ports, "SELECT to_regclass('%s') IS NOT NULL" % t)

    def fresh(sql, params=None):
        # every unit run on the primary fences its client's reads there for
        # a moment (read-your-writes), so each check gets its own client
        with ep.connect(autocommit=True) as c:
            return c.execute(sql, params).fetchone()

    # plain reads go to a replica; the primary hint keeps them on the primary
    assert fresh("SELECT pg_is_in_recovery()")[0] is True
    for sql in ("/* fastnext:primary */ SELECT pg_is_in_recovery()",
                "SELECT pg_is_in_recovery() /* fastnext:primary */",
                "-- fastnext:primary\nSELECT pg_is_in_recovery()",
                "SELECT /* fastnext:primary */ pg_is_in_recovery()"):
        assert fresh(sql)[0] is False, sql
    assert fresh("/* fastnext:primary */ SELECT pg_is_in_recovery(), %s::int", (1,))[0] is False
    # a VOLATILE function goes to the primary; the replica hint sends it to a replica
    assert fresh("SELECT %s()" % vol)[0] is False
    assert fresh("/* fastnext:replica */ SELECT %s()" % vol)[0] is True
    assert fresh("/* fastnext:replica */ SELECT %s() WHERE %%s" % vol, (True,))[0] is True
    # the replica hint on a write really sends it to a replica, which refuses it
    with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        fresh("/* fastnext:replica */ INSERT INTO %s VALUES (1, 'hinted') RETURNING id" % t)
    # a hint inside a string literal is data, not a hint (once the write fence
    # the volatile call left on the database has lifted)
    wait_until(lambda: fresh("SELECT pg_is_in_recovery()")[0] is True, 10,
               what="the database's write fence to lift")
    assert fresh("SELECT '/* fastnext:primary */' AS s, pg_is_in_recovery()") == (
        "/* fastnext:primary */", True)
    assert fresh("INSERT INTO %s VALUES (2, '/* fastnext:replica */') "
                 "RETURNING pg_is_in_recovery()" % t)[0] is False


def test_read_write_checks_see_the_primary(proxy, stack):
    """libpq's target_session_attrs=read-write and pgjdbc's targetServerType
    ask whether the connection can write: through the proxy it always can."""
    ep = routed(proxy, stack)
    with ep.connect(autocommit=True) as c:
        assert where(c)[0] is True, "reads do not reach the replicas to begin with"
        for name in ("transaction_read_only", "in_hot_standby", "default_transaction_read_only"):
            assert c.execute("SHOW %s" % name).fetchone()[0] == "off", name
            # the setting's name is a literal: the verdict cached for another
            # current_setting() must not send these to a replica
            assert c.execute("SELECT current_setting('work_mem')").fetchone()[0]
            assert c.execute("SELECT current_setting('%s')" % name).fetchone()[0] == "off", name
            assert c.execute("SELECT current_setting(%s)", (name,)).fetchone()[0] == "off", name
        # asking wrote nothing: the next plain read still goes to a replica
        assert where(c)[0] is True, "a read-only check fenced the client to the primary"
    with psycopg.connect(ep.conninfo(), target_session_attrs="read-write",
                         autocommit=True) as c:
        assert c.execute("SELECT 1").fetchone()[0] == 1


def test_volatility_comes_from_the_clients_database(proxy, stack):
    """The classifier's function volatility must describe the database the
    client uses.  A function that is STABLE in another database of the same
    server (here: postgres) but VOLATILE in the client's (fnx) must run on
    the primary."""
    ports = replica_ports(stack)
    name = unique("fn_xdb")
    with pg_super("postgres") as s:
        s.execute("CREATE FUNCTION public.%s() RETURNS boolean LANGUAGE sql STABLE "
                  "AS 'SELECT true'" % name)
    try:
        with pg_super() as s:
            s.execute("CREATE FUNCTION public.%s() RETURNS boolean LANGUAGE sql VOLATILE "
                      "AS 'SELECT pg_is_in_recovery()'" % name)
        wait_replicated(ports, "SELECT to_regproc('%s') IS NOT NULL" % name)
        ep = routed(proxy, stack)  # its first catalog load sees both functions
        with ep.connect(autocommit=True) as c:
            assert c.execute("SELECT %s()" % name).fetchone()[0] is False, (
                "a VOLATILE function of database fnx ran on a replica")
    finally:
        with pg_super() as s:
            s.execute("DROP FUNCTION IF EXISTS public.%s()" % name)
        with pg_super("postgres") as s:
            s.execute("DROP FUNCTION IF EXISTS public.%s()" % name)


# ---------------------------------------------------------------- read-your-writes


@pytest.mark.timeout_s(60)
def test_read_your_writes_holds_while_the_replicas_are_paused(
        proxy, stack, make_table, resume_replicas_at_teardown):
    import asyncpg

    ports = replica_ports(stack)
    # a generous lag limit: the paused replicas stay usable for everyone else
    ep = routed(proxy, stack, READ_REPLICA_MAX_LAG="60")
    t = make_table("id int, who text")
    wait_replicated(ports, "SELECT to_regclass('%s') IS NOT NULL" % t)
    with ep.connect(autocommit=True) as writer, ep.connect(autocommit=True) as other:
        assert where(writer)[0] is True, "reads do not reach the replicas to begin with"
        assert where(other)[0] is True, "reads do not reach the replicas to begin with"
        with paused(ports):
            for k in range(5):
                assert writer.execute("INSERT INTO %s VALUES (%%s, 'w') RETURNING "
                                      "pg_is_in_recovery()" % t, (k,)).fetchone()[0] is False
                for i in range(20):
                    if i % 2:
                        row = writer.execute("SELECT count(*), bool_or(pg_is_in_recovery()) "
                                             "FROM %s WHERE id = %d" % (t, k)).fetchone()
                    else:
                        row = writer.execute("SELECT count(*), bool_or(pg_is_in_recovery()) "
                                             "FROM %s WHERE id = %%s" % t, (k,)).fetchone()
                    assert row == (1, False), "read %d after write %d missed it: %r" % (i, k, row)
                # a client that wrote nothing and was reading before the write
                # still reads from the (stale) replicas
                row = other.execute("SELECT (SELECT count(*) FROM %s), pg_is_in_recovery()"
                                    % t).fetchone()
                assert row == (0, True), row
                # a connection opened after the write (psql's \c, a pool growing)
                # reads it: it starts with its database's newest write fence
                with ep.connect(autocommit=True) as later:
                    row = later.execute("SELECT count(*), bool_or(pg_is_in_recovery()) "
                                        "FROM %s WHERE id = %d" % (t, k)).fetchone()
                    assert row == (1, False), "a new connection missed write %d: %r" % (k, row)

            # a write inside an explicit transaction fences the same way
            with writer.transaction():
                writer.execute("INSERT INTO %s VALUES (10, 'tx')" % t)
            for _ in range(10):
                assert writer.execute("SELECT count(*) FROM %s WHERE id = 10"
                                      % t).fetchone()[0] == 1

            # asyncpg: named prepared statements on both sides of the write
            async def run():
                c = await asyncpg.connect(host=ep.host, port=ep.port, user="fnx",
                                          password=PASSWORDS["fnx"], database=DBNAME,
                                          timeout=5, command_timeout=10)
                try:
                    for k in range(20, 25):
                        await c.execute("INSERT INTO %s VALUES ($1, 'apg')" % t, k)
                        for _ in range(5):
                            n = await c.fetchval("SELECT count(*) FROM %s WHERE id = $1" % t, k)
                            assert n == 1, "asyncpg read-back of %d missed it" % k
                finally:
                    await asyncio.wait_for(c.close(), 5)

            asyncio.run(asyncio.wait_for(run(), 30))

            st = replica_state(ep)
            assert all(st[p]["usable"] for p in ports), st

        # after resume the replicas replay the writes and the writer's reads
        # may go back to them, now seeing its rows there
        def back_on_replica():
            row = writer.execute("SELECT (SELECT count(*) FROM %s WHERE id = 10), "
                                 "pg_is_in_recovery()" % t).fetchone()
            assert row[0] == 1, row
            return row[1]

        wait_until(back_on_replica, 15, interval=0.2, what="the writer's reads back on a replica")


# ---------------------------------------------------------------- replica health


def test_objects_a_replica_has_not_replayed_yet_are_read_from_the_primary(
        proxy, stack, resume_replicas_at_teardown):
    """DDL and GRANTs made on the primary directly (a migration tool, another
    proxy instance) reach the replicas a little later; the proxy cannot fence
    for them. A read a replica answers with a missing object or privilege is
    sent again to the primary, whose answer is PostgreSQL's."""
    ports = replica_ports(stack)
    ep = routed(proxy, stack, READ_REPLICA_MAX_LAG="60")
    t = unique("lag_ddl")
    with ep.connect(autocommit=True) as c:
        assert where(c)[0] is True, "reads do not reach the replicas to begin with"
        with paused(ports):
            with pg_super() as su:
                su.execute("CREATE TABLE %s (id int, v text)" % t)
                su.execute("INSERT INTO %s VALUES (1, 'one')" % t)
                su.execute("GRANT SELECT ON %s TO fnx" % t)
            try:
                # simple and extended protocol, a client that never wrote
                assert c.execute("SELECT v FROM %s" % t).fetchall() == [("one",)]
                assert c.execute("SELECT v FROM %s WHERE id = %%s" % t, (1,)).fetchall() == [
                    ("one",)]
                # the replicas still lack it, and still take other reads
                assert where(c)[0] is True
                # a table that exists nowhere: PostgreSQL's own error
                with pytest.raises(psycopg.errors.UndefinedTable):
                    c.execute("SELECT * FROM %s_missing" % t)
                assert c.execute("SELECT count(*) FROM %s" % t).fetchone()[0] == 1
            finally:
                with pg_super() as su:
                    su.execute("DROP TABLE IF EXISTS %s" % t)


@pytest.mark.timeout_s(60)
def test_a_lagging_replica_drops_out_and_comes_back(proxy, stack, make_table,
                                                    resume_replicas_at_teardown):
    ports = replica_ports(stack)
    lagging, healthy = ports
    ep = routed(proxy, stack, READ_REPLICA_MAX_LAG="1")
    t = make_table("id serial, at timestamptz default now()")
    with pg_super() as s, ep.connect(autocommit=True) as reader:

        def write_and_check(usable):
            s.execute("INSERT INTO %s DEFAULT VALUES" % t)
            st = replica_state(ep)
            return st if st[lagging]["usable"] is usable else None

        with paused([lagging]):
            st = wait_until(lambda: write_and_check(False), 15, interval=0.2,
                            what="the paused replica marked unusable")
            assert st[lagging]["up"] is True and st[lagging]["lag_seconds"] > 1, st[lagging]
            assert st[healthy]["usable"] is True, st[healthy]
            # while it is out every read goes to the other replica
            for _ in range(20):
                assert where(reader) == (True, healthy)
        # resumed: it replays, catches up and takes reads again
        st = wait_until(lambda: write_and_check(True), 15, interval=0.2,
                        what="the resumed replica usable again")
        assert st[lagging]["lag_seconds"] <= 1, st[lagging]

    # concurrent readers reach it again
    seen, errors = set(), []

    def read():
        try:
            with ep.connect(autocommit=True) as c:
                for _ in range(6):
                    seen.add(where(c, WHERE + ", pg_sleep(0.03)")[1])
        except Exception as e:
            errors.append(e)

    threads = [threading.Thread(target=read, daemon=True) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(30)
    assert not errors, errors
    assert lagging in seen, seen


def test_an_unreachable_replica_never_gets_reads_and_causes_no_errors(proxy, stack):
    ports = replica_ports(stack)
    dead = free_port()  # nothing listens there
    # no waiting for the first health round: reads start at once
    ep = routed(proxy, stack, extra=["127.0.0.1:%d" % dead], wait=False)
    seen, errors, count = {}, [], [0]
    lock = threading.Lock()

    def reader(i):
        try:
            with ep.connect(autocommit=True) as c:
                for k in range(40):
                    rec, port, v = where(c, WHERE + ", %s::int", (k,))
                    assert v == k
                    with lock:
                        seen[port] = seen.get(port, 0) + 1
                        count[0] += 1
                    time.sleep(0.01)
        except Exception as e:
            errors.append(e)

    threads = [threading.Thread(target=reader, args=(i,), daemon=True) for i in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(40)
    assert not errors, "%d client errors, first: %r" % (len(errors), errors[0])
    assert count[0] == 160

    st = wait_usable(ep, ports)
    assert st[dead]["up"] is False and st[dead]["usable"] is False, st[dead]
    # now that the checker has run, reads go to the two live replicas only
    with ep.connect(autocommit=True) as c:
        for _ in range(20):
            rec, port = where(c)
            assert rec is True and port in ports, (rec, port)
    assert dead not in seen


# ---------------------------------------------------------------- real clients


NODE_SCRIPT = r"""
const { Client } = require('pg');
(async () => {
  const table = process.env.E2E_TABLE, who = process.env.E2E_WHO, n = +process.env.E2E_N;
  const c = new Client({ connectionTimeoutMillis: 5000, query_timeout: 15000 });
  await c.connect();
  const out = { replica_reads: 0, reads: 0 };
  // its first read takes the newest write fence of the database (the other
  // clients are writing): a few reads may run on the primary before it lifts
  for (let i = 0; i < 100 && out.replica_reads < 10; i++) {
    const r = await c.query(i % 2 ? 'SELECT pg_is_in_recovery() AS r'
                                  : 'SELECT pg_is_in_recovery() AS r, $1::int AS i', i % 2 ? [] : [i]);
    out.reads++;
    if (r.rows[0].r) out.replica_reads++;
    else await new Promise((res) => setTimeout(res, 50));
  }
  for (let i = 0; i < n; i++) {
    if (i % 5 === 4) {
      await c.query('BEGIN');
      await c.query(`INSERT INTO ${table} (who, n) VALUES ($1, $2)`, [who, i]);
      await c.query('COMMIT');
    } else {
      await c.query(`INSERT INTO ${table} (who, n) VALUES ($1, $2)`, [who, i]);
    }
    const r = await c.query(`SELECT count(*)::int AS k FROM ${table} WHERE who = $1`, [who]);
    if (r.rows[0].k !== i + 1) throw new Error(`read-your-writes: saw ${r.rows[0].k} rows after ${i + 1} inserts`);
  }
  await c.end();
  console.log(JSON.stringify(out));
})().catch((e) => { console.error('FAIL', (e && e.stack) || e); process.exit(1); });
setTimeout(() => { console.error('node client timed out'); process.exit(2); }, 40000).unref();
"""


@pytest.mark.timeout_s(90)
def test_default_clients_keep_working_with_replicas(proxy, stack, make_table):
    import asyncpg
    import psycopg2

    ep = routed(proxy, stack)
    t = make_table("who text, n int")
    N = 30  # writes per client, each read back at once
    errors, replica_reads = [], {}

    def check_count(got, who, i):
        assert got == i + 1, "%s saw %d rows after %d inserts" % (who, got, i + 1)

    def psycopg3_client(who):
        try:
            with ep.connect() as c:  # default: not autocommit
                for i in range(10):
                    c.execute("SELECT pg_is_in_recovery(), %s::int", (i,)).fetchone()
                    c.commit()
                for i in range(N):
                    c.execute("INSERT INTO %s VALUES (%%s, %%s)" % t, (who, i))
                    if i % 3 == 0:
                        c.commit()
                    got = c.execute("SELECT count(*) FROM %s WHERE who = %%s" % t,
                                    (who,)).fetchone()[0]
                    check_count(got, who, i)
                    c.commit()
        except Exception as e:
            errors.append((who, e))

    def psycopg2_client(who):
        try:
            c = psycopg2.connect(ep.conninfo())
            try:
                cur = c.cursor()
                for i in range(10):
                    cur.execute("SELECT pg_is_in_recovery()")
                    cur.fetchone()
                    c.commit()
                for i in range(N):
                    cur.execute("INSERT INTO %s VALUES (%%s, %%s)" % t, (who, i))
                    c.commit()
                    cur.execute("SELECT count(*) FROM %s WHERE who = %%s" % t, (who,))
                    check_count(cur.fetchone()[0], who, i)
                    c.commit()
            finally:
                c.close()
        except Exception as e:
            errors.append((who, e))

    def asyncpg_clients(whos):
        async def one(who):
            c = await asyncpg.connect(host=ep.host, port=ep.port, user="fnx",
                                      password=PASSWORDS["fnx"], database=DBNAME,
                                      timeout=5, command_timeout=15)
            try:
                for i in range(10):
                    assert await c.fetchval("SELECT pg_is_in_recovery()") in (True, False)
                ins = await c.prepare("INSERT INTO %s VALUES ($1, $2)" % t)
                for i in range(N):
                    if i % 4 == 3:
                        async with c.transaction():
                            await ins.fetch(who, i)
                    else:
                        await c.execute("INSERT INTO %s VALUES ($1, $2)" % t, who, i)
                    got = await c.fetchval("SELECT count(*) FROM %s WHERE who = $1" % t, who)
                    check_count(got, who, i)
            finally:
                await asyncio.wait_for(c.close(), 5)

        async def run():
            res = await asyncio.gather(*(one(w) for w in whos), return_exceptions=True)
            for w, r in zip(whos, res):
                if isinstance(r, BaseException):
                    errors.append((w, r))

        try:
            asyncio.run(asyncio.wait_for(run(), 60))
        except Exception as e:
            errors.append(("asyncpg", e))

    node_procs = []
    nm = node_modules_dir()
    if nm is not None:
        for who in ("node1", "node2"):
            env = pg_env(ep, E2E_TABLE=t, E2E_WHO=who, E2E_N=str(N), NODE_PATH=nm)
            node_procs.append((who, subprocess.Popen(
                ["node", "-e", NODE_SCRIPT], env=env, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, text=True)))

    threads = [threading.Thread(target=psycopg3_client, args=(w,), daemon=True)
               for w in ("pg3a", "pg3b")]
    threads.append(threading.Thread(target=psycopg2_client, args=("pg2",), daemon=True))
    threads.append(threading.Thread(target=asyncpg_clients, args=(["apg1", "apg2"],),
                                    daemon=True))
    for th in threads:
        th.start()
    for th in threads:
        th.join(70)
    for who, p in node_procs:
        try:
            out, err = p.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
        if p.returncode != 0:
            errors.append((who, "node exit %s: %s" % (p.returncode, err.strip()[-500:])))
        else:
            o = json.loads(out.strip().splitlines()[-1])
            replica_reads[who] = (o["replica_reads"], o["reads"])
    assert not errors, "%d client errors, first: %r" % (len(errors), errors[0])
    assert all(not th.is_alive() for th in threads)

    with pg_super() as s:
        counts = dict(s.execute("SELECT who, count(*) FROM %s GROUP BY who" % t).fetchall())
    expect = {w: N for w in ("pg3a", "pg3b", "pg2", "apg1", "apg2")}
    expect.update({w: N for w, _ in node_procs})
    assert counts == expect
    # node-postgres's plain reads (before it wrote anything) reached replicas
    # once the write fence it started with had lifted; asyncpg has its own
    # test below
    for who, (reps, total) in replica_reads.items():
        assert reps == 10, "%s: only %d of %d reads on a replica" % (who, reps, total)
    if nm is None:
        pytest.skip("node 'pg' not installed: psycopg, psycopg2 and asyncpg checked only")


def test_asyncpg_reads_reach_the_replicas(proxy, stack):
    """asyncpg (default settings) prepares every statement with Parse,
    Describe and Flush, then Bind, Execute and Sync.  Its autocommit reads
    must reach the replicas like anyone else's, and a client that has never
    written must not be held on the primary."""
    import asyncpg

    ep = routed(proxy, stack)
    ports = replica_ports(stack)

    async def run():
        c = await asyncpg.connect(host=ep.host, port=ep.port, user="fnx",
                                  password=PASSWORDS["fnx"], database=DBNAME,
                                  timeout=5, command_timeout=10)
        try:
            out = []
            for i in range(10):
                out.append(tuple(await c.fetchrow(WHERE)))
                out.append(tuple(await c.fetchrow(WHERE + ", $1::int", i))[:2])
            return out
        finally:
            await asyncio.wait_for(c.close(), 5)

    seen = asyncio.run(asyncio.wait_for(run(), 30))
    on_primary = [s for s in seen if s[0] is not True]
    assert not on_primary, "%d of %d asyncpg reads ran on the primary" % (
        len(on_primary), len(seen))
    assert {s[1] for s in seen} <= set(ports)


# ---------------------------------------------------------------- primary down


@pytest.mark.timeout_s(60)
def test_primary_down_fails_writes_clearly_while_reads_continue(proxy, stack, make_table):
    skip_if_direct("the primary behind a relay is a proxy setup")
    ports = replica_ports(stack)
    t = make_table("id int")
    relay = Relay(stack["port"])
    relay.start()
    conns, raw = [], None
    try:
        ep = routed(proxy, stack, POSTGRES_SERVER="127.0.0.1", POSTGRES_PORT=str(relay.port),
                    READ_REPLICA_MAX_LAG="30")
        readers = [ep.connect(autocommit=True) for _ in range(3)]
        writer = ep.connect(autocommit=True)
        conns += readers + [writer]
        for r in readers:
            assert where(r)[0] is True
        assert writer.execute("INSERT INTO %s VALUES (1) RETURNING pg_is_in_recovery()"
                              % t).fetchone()[0] is False
        raw = ep.raw(timeout=15)
        raw.login("fnx", DBNAME, PASSWORDS["fnx"])

        relay.stop()
        # at once: the pooled primary connections just died under the proxy
        t0 = time.monotonic()
        with pytest.raises(psycopg.Error) as ei:
            writer.execute("INSERT INTO %s VALUES (2)" % t)
        assert time.monotonic() - t0 < 10, "the write failed only after %.1fs" % (
            time.monotonic() - t0)
        assert str(ei.value).strip()

        # once the health checker has seen the primary down: the error itself
        wait_until(lambda: (replication_status(ep) or {}).get("primary", {}).get("up") is False,
                   15, what="the health checker to see the primary down")
        t0 = time.monotonic()
        with pytest.raises(pgwire.PgError) as ei:
            raw.simple_query("INSERT INTO %s VALUES (3)" % t, timeout=12)
        assert time.monotonic() - t0 < 10, "the write failed only after %.1fs" % (
            time.monotonic() - t0)
        err = ei.value
        assert err.sqlstate[:2] in ("08", "53", "57"), err.fields
        assert re.search(r"(?i)primary|server|connect|backend|unavailable", err.message), (
            err.fields)

        # reads keep working on the replicas for connected clients ...
        for _ in range(10):
            for r in readers:
                rec, port = where(r)
                assert rec is True and port in ports, (rec, port)
        # ... and for a client that connects now
        with ep.connect(autocommit=True) as c:
            rec, port = where(c)
            assert rec is True and port in ports, (rec, port)

        relay.start()

        def write_works():
            try:
                with ep.connect(autocommit=True) as c:
                    return c.execute("INSERT INTO %s VALUES (4) RETURNING pg_is_in_recovery()"
                                     % t).fetchone()[0] is False
            except psycopg.Error:
                return False

        wait_until(write_works, 20, interval=0.3, what="writes to work after the relay is back")
        if not writer.closed:  # a client that saw the error and kept its connection
            assert writer.execute("INSERT INTO %s VALUES (5) RETURNING pg_is_in_recovery()"
                                  % t).fetchone()[0] is False
        for r in readers:
            assert where(r)[0] is True
        with pg_super() as s:
            ids = [r[0] for r in s.execute("SELECT id FROM %s ORDER BY id" % t).fetchall()]
        assert ids[:2] == [1, 4] and 2 not in ids and 3 not in ids, ids
    finally:
        for c in conns:
            try:
                c.close()
            except Exception:
                pass
        if raw is not None:
            raw.close()
        relay.stop()


# ---------------------------------------------------------------- replica failures


def read_load(ep, t, stop, errors, counts, n=4):
    """Clients reading in autocommit until `stop`; errors and answers counted."""
    def run():
        try:
            with ep.connect(autocommit=True) as c:
                while not stop.is_set():
                    try:
                        n_rows = c.execute("SELECT count(*) FROM %s" % t).fetchone()[0]
                        assert n_rows == 100, n_rows
                        counts.append(1)
                    except psycopg.Error as e:
                        errors.append(e)
                        return
        except Exception as e:  # connect failures count too
            errors.append(e)

    threads = [threading.Thread(target=run) for _ in range(n)]
    for th in threads:
        th.start()
    return threads


def test_a_replica_lost_under_read_load_costs_no_client_an_error(proxy, stack, make_table):
    ports = replica_ports(stack)
    t = make_table("id int")
    with pg_super() as s:
        s.execute("INSERT INTO %s SELECT generate_series(1, 100)" % t)
    caught_up(ports)
    relay = Relay(ports[0])
    relay.start()
    try:
        ep = routed(proxy, stack, wait=False, POSTGRES_READ_REPLICAS="127.0.0.1:%d,127.0.0.1:%d"
                    % (relay.port, ports[1]))
        wait_usable(ep, [relay.port, ports[1]])
        stop, errors, counts = threading.Event(), [], []
        threads = read_load(ep, t, stop, errors, counts)
        wait_until(lambda: len(counts) > 200 or errors, 10, what="reads to flow")
        assert not errors, errors[:3]
        for _ in range(3):  # the replica dies under load, comes back, dies again
            relay.stop()
            time.sleep(0.5)
            relay.start()
            time.sleep(0.5)
        stop.set()
        for th in threads:
            th.join(20)
        assert not errors, errors[:3]
        assert len(counts) > 300
    finally:
        relay.stop()


def test_a_replica_backend_terminated_mid_read_is_retried_invisibly(proxy, stack, make_table):
    ports = replica_ports(stack)
    t = make_table("id int")
    with pg_super() as s:
        s.execute("INSERT INTO %s SELECT generate_series(1, 100)" % t)
    caught_up(ports)
    ep = routed(proxy, stack)
    stop, errors, counts = threading.Event(), [], []
    threads = read_load(ep, t, stop, errors, counts)
    try:
        wait_until(lambda: len(counts) > 100 or errors, 10, what="reads to flow")
        assert not errors, errors[:3]
        for _ in range(5):
            for p in ports:  # 57P01 on every proxy backend of the replicas
                with replica_super(p) as c:
                    c.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                              "WHERE usename = 'fnx' AND pid <> pg_backend_pid()")
            time.sleep(0.2)
    finally:
        stop.set()
        for th in threads:
            th.join(20)
    assert not errors, errors[:3]


def test_reads_are_shared_between_the_replicas(proxy, stack):
    ports = replica_ports(stack)
    ep = routed(proxy, stack)
    seen, lock = [], threading.Lock()

    def run():
        with ep.connect(autocommit=True) as c:
            for _ in range(100):
                rec, port = where(c)
                with lock:
                    seen.append(port)

    threads = [threading.Thread(target=run) for _ in range(6)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(30)
    counts = {p: seen.count(p) for p in ports}
    assert len(seen) == 600 and sum(counts.values()) == 600, counts
    assert min(counts.values()) >= 100, "one replica took nearly all the reads: %r" % counts
