"""Faults and hostile clients: the primary restarted (fast and immediate shutdown)
under idle, idle-in-transaction, running, COPY and streaming clients; server
connections terminated or timed out server-side; the primary refusing
connections; PostgreSQL down while the proxy starts; a replica restarted under
read load; and clients that pipeline without reading, stream huge COPYs and
vanish, send messages at and over the caps, absurd startup packets, connection
storms, half SCRAM exchanges, Terminate or a close while holding locks, and
cancel storms.

After each: the proxy is up (the fixture fails the test on a sanitizer report),
a well-formed client works and the pools are back to normal.

The tests that stop the stack's primary or a replica restart it with pg_ctl
(the stack's own data directory, $PX_STACK_DIR) and wait until it is ready and
the replicas stream again, so later tests see the stack as it was."""

import http.client
import json
import os
import signal
import socket
import struct
import subprocess
import threading
import time

import psycopg
import psycopg.errors
import pytest

import pgwire
from conftest import (
    DBNAME,
    PASSWORDS,
    PG_HOST,
    PG_PORT,
    PGBIN,
    pg_super,
    skip_if_direct,
    unique,
    wait_until,
)

TRUST = {"AUTH_TYPE": "trust"}


# ---------------------------------------------------------------- stack control


def stack_dir():
    d = os.environ.get("PX_STACK_DIR")
    if not d or not os.path.isdir(d):
        pytest.skip("PX_STACK_DIR is not set: cannot restart stack servers")
    return d


def pg_data_dir(name):
    d = stack_dir()
    root = d
    if os.path.exists(os.path.join(d, "pgroot")):
        with open(os.path.join(d, "pgroot")) as f:
            root = f.read().strip()
    return root, os.path.join(root, name)


def pg_ctl(name, *args, check=True):
    root, data = pg_data_dir(name)
    cmd = [os.path.join(PGBIN, "pg_ctl"), "-D", data, "-l", os.path.join(root, name + ".log")]
    cmd += list(args)
    if os.getuid() == 0:
        cmd = ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--"] + cmd
    r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
    if check and r.returncode != 0:
        raise AssertionError("pg_ctl %s %s failed: %s %s" % (name, args, r.stdout, r.stderr))
    if r.returncode == 0 and args and args[-1] in ("start", "restart"):
        pid_file = os.path.join(stack_dir(), "pids", name)
        if os.path.isdir(os.path.dirname(pid_file)):
            with open(os.path.join(data, "postmaster.pid")) as f:
                pid = f.readline().strip()
            with open(pid_file, "w") as f:
                f.write(pid + "\n")
    return r


def pg_running(name):
    return pg_ctl(name, "status", check=False).returncode == 0


def primary_ready():
    try:
        with pg_super() as c:
            return c.execute("SELECT 1").fetchone()[0] == 1
    except psycopg.Error:
        return False


def replica_ports():
    return [int(os.environ.get(k) or 0) for k in ("PX_PG_REPLICA1_PORT", "PX_PG_REPLICA2_PORT")]


def replicas_streaming():
    want = len([p for p in replica_ports() if p])
    try:
        with pg_super() as c:
            n = c.execute("SELECT count(*) FROM pg_stat_replication "
                          "WHERE state = 'streaming'").fetchone()[0]
    except psycopg.Error:
        return False
    return n >= want


def replica_ready(port):
    try:
        with psycopg.connect(host=PG_HOST, port=port, user="postgres", dbname=DBNAME,
                             autocommit=True, connect_timeout=3) as c:
            return c.execute("SELECT pg_is_in_recovery()").fetchone()[0] is True
    except psycopg.Error:
        return False


def restore_stack():
    """Every stack server this file may stop is running, ready and streaming."""
    for name in ("primary", "replica1", "replica2"):
        if os.path.isdir(pg_data_dir(name)[1]) and not pg_running(name):
            pg_ctl(name, "-w", "-t", "60", "start")
    wait_until(primary_ready, 30, interval=0.2, what="the primary to accept connections")
    for p in replica_ports():
        if p:
            wait_until(lambda: replica_ready(p), 30, interval=0.2, what="replica %d" % p)
    wait_until(replicas_streaming, 30, interval=0.2, what="the replicas to stream again")


@pytest.fixture
def stack_restored(stack):
    """Restarts whatever a test stopped, at teardown."""
    stack_dir()
    yield
    restore_stack()


def restart_primary(mode):
    if mode == "immediate":
        # the stack runs with synchronous_commit = off: without this, commits of
        # the last moments (a test's own CREATE TABLE) may be lost in the crash
        with pg_super() as c:
            c.execute("CHECKPOINT")
    pg_ctl("primary", "-m", mode, "-w", "-t", "60", "restart")
    wait_until(primary_ready, 30, interval=0.1, what="the primary to accept connections")


# ---------------------------------------------------------------- helpers


def pools(ep, user="fnx"):
    conn = http.client.HTTPConnection("127.0.0.1", ep.admin_port, timeout=5)
    try:
        conn.request("GET", "/api/v1/pools")
        body = json.loads(conn.getresponse().read())
    finally:
        conn.close()
    return [p for p in body["pools"] if p["user"] == user and p["role"] == "primary"]


def pools_settled(ep, user="fnx"):
    """No server connection checked out or waited for; open within the limits."""
    def ok():
        ps = pools(ep, user)
        return all(p["in_use"] == 0 and p["waiting"] == 0 and p["pending"] == 0
                   and p["open"] <= p["size"] + p["max_overflow"] for p in ps)
    wait_until(ok, 10, interval=0.2, what="the pools of %s to settle: %r" % (user, pools(ep, user)))


def fnx_backends(user="fnx", state=None):
    sql = ("SELECT count(*) FROM pg_stat_activity WHERE usename = %s AND backend_type = "
           "'client backend' AND application_name <> 'fastnext-proxy health'")
    args = [user]
    if state:
        sql += " AND state = %s"
        args.append(state)
    with pg_super() as c:
        return c.execute(sql, args).fetchone()[0]


def login(ep, user="fnx", timeout=10.0, rcvbuf=None):
    raw = ep.raw(timeout=timeout, rcvbuf=rcvbuf)
    raw.login(user, DBNAME, PASSWORDS.get(user))
    return raw


def read_outcome(raw, timeout):
    """Read until an ErrorResponse, a close, or ReadyForQuery: ("error", fields),
    ("closed", None) or ("ready", None).  TimeoutError if none of them comes."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            mtype, body = raw.recv_msg(timeout=max(0.01, deadline - time.monotonic()))
        except pgwire.Closed:
            return "closed", None
        if mtype == "E":
            return "error", pgwire.parse_error_fields(body)
        if mtype == "Z":
            return "ready", None


def active_with(marker):
    with pg_super() as c:
        return c.execute("SELECT count(*) FROM pg_stat_activity WHERE query LIKE %s AND "
                         "pid <> pg_backend_pid()", ("%" + marker + "%",)).fetchone()[0]


def healthy(ep, user="fnx"):
    ep.assert_healthy(user=user, password=PASSWORDS.get(user))
    pools_settled(ep, user)


# ---------------------------------------------------------------- primary restarts


@pytest.mark.timeout_s(40)
@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_primary_restart_fails_busy_clients_and_idle_clients_carry_on(proxy, stack_restored,
                                                                       make_table, mode):
    skip_if_direct()
    t = make_table("id int")
    ep = proxy(env={"DB_POOL_SIZE": "6", "DB_MAX_OVERFLOW": "2", "DB_POOL_TIMEOUT": "10"})
    idle = [ep.connect() for _ in range(3)]
    in_tx = ep.connect()
    conns = idle + [in_tx]
    try:
        for i, c in enumerate(idle):  # three transactions at once: three server connections
            assert c.execute("SELECT %s::int", (i,)).fetchone()[0] == i
        for c in idle:
            c.commit()
        in_tx.execute("INSERT INTO %s VALUES (1)" % t)  # idle in transaction
        marker = unique("running")
        busy = {}

        def running():
            try:
                with ep.connect(autocommit=True) as c:
                    c.execute("SELECT pg_sleep(30) /* %s */" % marker)
                busy["result"] = "no error"
            except psycopg.Error as e:
                busy["result"] = e
            busy["t"] = time.monotonic()

        th = threading.Thread(target=running, daemon=True)
        th.start()
        wait_until(lambda: active_with(marker) == 1, 5, what="the query to run")
        assert pools(ep)[0]["open"] >= 3 and pools(ep)[0]["in_use"] == 2, pools(ep)

        t0 = time.monotonic()
        restart_primary(mode)
        th.join(10)
        assert isinstance(busy.get("result"), psycopg.Error), busy
        assert busy["t"] - t0 < 10, "the running query failed only after %.1fs" % (busy["t"] - t0)

        # the open transaction is gone: its client is told, at once
        t1 = time.monotonic()
        with pytest.raises(psycopg.Error):
            in_tx.execute("SELECT 1")
        assert time.monotonic() - t1 < 5
        # idle clients carry on: the dead pooled connections are never handed out
        for i, c in enumerate(idle):
            assert c.execute("SELECT %s::int + 100", (i,)).fetchone()[0] == i + 100
            c.commit()
        with pg_super() as s:
            assert s.execute("SELECT count(*) FROM %s" % t).fetchone()[0] == 0
        healthy(ep)
        assert ep.server_conns() <= 8
    finally:
        for c in conns:
            c.close()


def start_copy_in(ep, t):
    raw = login(ep)
    raw.send(pgwire.query("COPY %s FROM STDIN" % t))
    mtype, _ = raw.recv_msg()
    assert mtype == "G", mtype
    raw.send(b"".join(pgwire.message("d", b"%d\n" % i) for i in range(1000)))
    return raw


def start_stream(ep, sql):
    """A client that asks for a big result and reads a little of it, slowly."""
    raw = login(ep, rcvbuf=8192)
    raw.send(pgwire.query(sql))
    for _ in range(20):
        raw.recv_msg()
    return raw


BIG_COPY_OUT = "COPY (SELECT repeat('x', 1000) FROM generate_series(1, 300000)) TO STDOUT"
BIG_SELECT = "SELECT repeat('x', 1000) FROM generate_series(1, 300000)"


@pytest.mark.timeout_s(40)
@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_primary_restart_mid_copy_and_mid_stream_ends_each_client_clearly(
        proxy, stack_restored, make_table, mode):
    skip_if_direct()
    t = make_table("id int")
    ep = proxy(env={"DB_POOL_SIZE": "6", "DB_MAX_OVERFLOW": "0"})
    clients = {
        "copy_in": start_copy_in(ep, t),
        "copy_out": start_stream(ep, BIG_COPY_OUT),
        "large_result": start_stream(ep, BIG_SELECT),
    }
    try:
        restart_primary(mode)
        # the COPY-in client goes on sending, then finishes: it must be told
        raw = clients["copy_in"]
        try:
            raw.send(pgwire.message("d", b"5\n") + pgwire.message("c"))
        except OSError:
            pass
        outcomes = {}
        for name, raw in clients.items():
            t0 = time.monotonic()
            try:
                outcomes[name] = read_outcome(raw, 15)[0]
            except TimeoutError:
                outcomes[name] = "hang"
            outcomes[name + "_s"] = round(time.monotonic() - t0, 1)
        for name in clients:
            assert outcomes[name] in ("error", "closed"), outcomes
        with pg_super() as s:
            assert s.execute("SELECT count(*) FROM %s" % t).fetchone()[0] == 0
        healthy(ep)
    finally:
        for raw in clients.values():
            raw.close()




def readiness(ep):
    conn = http.client.HTTPConnection("127.0.0.1", ep.admin_port, timeout=5)
    try:
        conn.request("GET", "/api/v1/scaling/health/readiness")
        return conn.getresponse().status
    finally:
        conn.close()


@pytest.mark.timeout_s(40)
def test_prepared_statements_carry_on_across_a_primary_restart(proxy, stack_restored):
    skip_if_direct()
    import asyncio

    import asyncpg

    ep = proxy(env={"DB_POOL_SIZE": "2", "DB_MAX_OVERFLOW": "0"})
    c = ep.connect(autocommit=True, prepare_threshold=0)
    loop = asyncio.new_event_loop()
    try:
        for i in range(3):
            assert c.execute("SELECT %s::int + 1", (i,)).fetchone()[0] == i + 1

        async def prepare():
            a = await asyncpg.connect(host=ep.host, port=ep.port, user="fnx",
                                      password=PASSWORDS["fnx"], database=DBNAME)
            st = await a.prepare("SELECT $1::int * 2")
            assert await st.fetchval(4) == 8
            return a, st

        a, st = loop.run_until_complete(prepare())
        restart_primary("immediate")
        # the server-side statements died with the server: prepared again where needed
        for i in range(3):
            assert c.execute("SELECT %s::int + 1", (i,)).fetchone()[0] == i + 1

        async def again():
            try:
                return [await st.fetchval(i) for i in range(3)]
            finally:
                await a.close()

        assert loop.run_until_complete(again()) == [0, 2, 4]
        wait_until(lambda: readiness(ep) == 200, 10, what="readiness back to 200")
    finally:
        c.close()
        loop.close()
    healthy(ep)


@pytest.mark.timeout_s(40)
def test_pinned_clients_are_told_their_session_died_in_a_primary_restart(proxy, stack_restored):
    """A client pinned by session state (LISTEN, a session advisory lock, a temp
    table, SQL PREPARE) must not silently carry on on a fresh connection without it."""
    skip_if_direct()
    pins = ["LISTEN faults_ch", "SELECT pg_advisory_lock(991)",
            "CREATE TEMP TABLE faults_tt (a int)", "PREPARE faults_pq AS SELECT 1"]
    ep = proxy(env={"DB_POOL_SIZE": "6", "DB_MAX_OVERFLOW": "0"})
    conns = [ep.connect(autocommit=True) for _ in pins]
    try:
        for c, pin in zip(conns, pins):
            c.execute(pin)
        restart_primary("fast")
        for c, pin in zip(conns, pins):
            with pytest.raises(psycopg.Error):
                c.execute("SELECT 1")
                pytest.fail("pinned by %r, carried on after its session died" % pin)
    finally:
        for c in conns:
            c.close()
    healthy(ep)

@pytest.mark.timeout_s(40)
def test_primary_restart_in_session_mode_fails_the_session_then_new_clients_work(
        proxy, stack_restored):
    skip_if_direct()
    ep = proxy(env={"POOL_MODE": "session", "DB_POOL_SIZE": "3", "DB_MAX_OVERFLOW": "0"})
    sessions = [ep.connect(autocommit=True) for _ in range(2)]
    try:
        for c in sessions:
            c.execute("SET application_name = 'faults_session'")
        restart_primary("fast")
        for c in sessions:  # the session is gone: told at once, never silently swapped
            t0 = time.monotonic()
            with pytest.raises(psycopg.Error):
                c.execute("SELECT current_setting('application_name')")
            assert time.monotonic() - t0 < 5
    finally:
        for c in sessions:
            c.close()
    for _ in range(4):  # more clients than the pool: the dead connections were given back
        with ep.connect(autocommit=True) as c:
            assert c.execute("SELECT 9").fetchone()[0] == 9
    healthy(ep)


@pytest.mark.timeout_s(40)
def test_a_client_waiting_for_a_pooled_connection_during_a_primary_restart_does_not_hang(
        proxy, stack_restored):
    skip_if_direct()
    ep = proxy(env={"DB_POOL_SIZE": "1", "DB_MAX_OVERFLOW": "0", "DB_POOL_TIMEOUT": "15"})
    holder = ep.connect()
    holder.execute("SELECT 1")  # holds the one server connection
    res = {}

    def wait_for_pool():
        try:
            with ep.connect(autocommit=True) as c:
                res["v"] = c.execute("SELECT 10").fetchone()[0]
        except psycopg.Error as e:
            res["v"] = e

    th = threading.Thread(target=wait_for_pool, daemon=True)
    th.start()
    try:
        wait_until(lambda: pools(ep)[0]["waiting"] == 1, 5, what="a waiting client")
        t0 = time.monotonic()
        restart_primary("immediate")
        th.join(15)
        # answered, or told clearly (a connect attempt failed while the primary was down)
        assert res.get("v") == 10 or (isinstance(res.get("v"), psycopg.Error)
                                      and "server" in str(res["v"])), res
        assert time.monotonic() - t0 < 15
        with pytest.raises(psycopg.Error):
            holder.execute("SELECT 2")
    finally:
        holder.close()
    healthy(ep)

@pytest.mark.timeout_s(40)
def test_proxy_started_while_the_primary_is_down_serves_once_it_is_back(proxy, stack_restored):
    skip_if_direct()
    pg_ctl("primary", "-m", "fast", "-w", "-t", "60", "stop")
    try:
        ep = proxy(env={"DB_POOL_TIMEOUT": "4"})
        t0 = time.monotonic()
        with pytest.raises(psycopg.Error) as ei:
            with ep.connect(autocommit=True) as c:
                c.execute("SELECT 1")
        assert time.monotonic() - t0 < 8, "the error came after %.1fs" % (time.monotonic() - t0)
        assert str(ei.value).strip()
        raw = ep.raw(timeout=10)
        try:
            with pytest.raises(pgwire.PgError) as ei2:
                raw.login("fnx", DBNAME, PASSWORDS["fnx"])
                raw.simple_query("SELECT 1", timeout=10)
            assert ei2.value.sqlstate[:2] in ("08", "53", "57"), ei2.value.fields
        except pgwire.Closed:
            pass
        finally:
            raw.close()
        assert ep.alive()
    finally:
        pg_ctl("primary", "-w", "-t", "60", "start")
    wait_until(primary_ready, 30, what="the primary")

    def works():
        try:
            with ep.connect(autocommit=True) as c:
                return c.execute("SELECT 7").fetchone()[0] == 7
        except psycopg.Error:
            return False

    wait_until(works, 15, interval=0.3, what="clients to work once the primary is back")
    healthy(ep)


@pytest.mark.timeout_s(30)
def test_idle_in_transaction_session_timeout_ends_the_transaction_with_an_error(proxy):
    skip_if_direct()
    ep = proxy(env={"DB_POOL_SIZE": "1", "DB_MAX_OVERFLOW": "0"})
    c = ep.connect()
    try:
        c.execute("SET idle_in_transaction_session_timeout = '300ms'")
        c.commit()
        c.execute("SELECT 1")  # idle in transaction from here
        time.sleep(1.5)
        t0 = time.monotonic()
        with pytest.raises(psycopg.Error) as ei:
            c.execute("SELECT 2")
        assert time.monotonic() - t0 < 5
        assert "idle-in-transaction" in str(ei.value) or ei.value.sqlstate in (
            "25P03", "08006", "08003", "57P01"), (ei.value.sqlstate, str(ei.value))
    finally:
        c.close()
    # the one server connection was replaced: another client gets it
    with ep.connect(autocommit=True) as c2:
        assert c2.execute("SELECT 3").fetchone()[0] == 3
    healthy(ep)


@pytest.mark.timeout_s(30)
def test_statement_timeout_cancels_the_statement_and_the_client_goes_on(proxy):
    skip_if_direct()
    ep = proxy(env={"DB_POOL_SIZE": "1", "DB_MAX_OVERFLOW": "0"})
    with ep.connect(autocommit=True) as c:
        c.execute("SET statement_timeout = '200ms'")
        for _ in range(3):
            t0 = time.monotonic()
            with pytest.raises(psycopg.errors.QueryCanceled):
                c.execute("SELECT pg_sleep(5)")
            assert time.monotonic() - t0 < 3
            assert c.execute("SELECT 4").fetchone()[0] == 4
        with pytest.raises(psycopg.errors.QueryCanceled):  # inside a transaction too
            with c.transaction():
                c.execute("SELECT pg_sleep(5)")
        assert c.execute("SHOW statement_timeout").fetchone()[0] == "200ms"
    with ep.connect(autocommit=True) as c:
        assert c.execute("SHOW statement_timeout").fetchone()[0] != "200ms"
    healthy(ep)


@pytest.mark.timeout_s(30)
def test_terminated_server_connection_in_session_mode_gives_an_error_then_new_clients_work(
        proxy, pgsuper):
    skip_if_direct()
    ep = proxy(env={"POOL_MODE": "session", "DB_POOL_SIZE": "2", "DB_MAX_OVERFLOW": "0"})
    c = ep.connect(autocommit=True)
    try:
        pid = c.execute("SELECT pg_backend_pid()").fetchone()[0]
        pgsuper.execute("SELECT pg_terminate_backend(%s)", (pid,))
        time.sleep(0.3)
        t0 = time.monotonic()
        with pytest.raises(psycopg.Error):
            c.execute("SELECT 1")
        assert time.monotonic() - t0 < 5
    finally:
        c.close()
    for _ in range(4):  # more clients than the pool: the dead one was given back
        with ep.connect(autocommit=True) as c2:
            assert c2.execute("SELECT pg_backend_pid() <> %s", (pid,)).fetchone()[0] is True
    healthy(ep)



@pytest.mark.timeout_s(40)
def test_server_connections_terminated_over_and_over_under_load(proxy, pgsuper):
    """Every proxy backend killed ten times while clients run transactions: a client
    may see an error for a statement that was running, never a hang, and carries on."""
    skip_if_direct()
    ep = proxy(env={"DB_POOL_SIZE": "3", "DB_MAX_OVERFLOW": "1", "SERVER_CHECK_DELAY": "0"})
    stop = threading.Event()
    stats = {"ok": 0, "errors": 0, "bad": []}

    def client(k):
        c = None
        while not stop.is_set():
            try:
                if c is None or c.closed:
                    c = ep.connect(autocommit=True)
                with c.transaction():
                    c.execute("SELECT %s::int", (k,))
                    assert c.execute("SELECT %s::int + 1", (k,)).fetchone()[0] == k + 1
                stats["ok"] += 1
            except psycopg.Error:
                stats["errors"] += 1
            except Exception as e:  # noqa: BLE001
                stats["bad"].append(repr(e))
                return
        if c is not None:
            c.close()

    ths = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(6)]
    for th in ths:
        th.start()
    try:
        wait_until(lambda: stats["ok"] > 50, 10, what="transactions to flow")
        for _ in range(10):
            pgsuper.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE "
                            "usename = 'fnx' AND backend_type = 'client backend' AND "
                            "pid <> pg_backend_pid()")
            time.sleep(0.2)
        n = stats["ok"]
        wait_until(lambda: stats["ok"] > n + 50, 10, what="transactions to go on")
    finally:
        stop.set()
        for th in ths:
            th.join(10)
    assert stats["bad"] == [], stats
    healthy(ep)

@pytest.mark.timeout_s(30)
def test_role_connection_limit_reached_gives_a_clear_error_not_a_hang(proxy, pgsuper):
    skip_if_direct()
    ep = proxy(env={"DB_POOL_TIMEOUT": "8"})
    pgsuper.execute("ALTER ROLE fnx_md5 CONNECTION LIMIT 0")
    try:
        t0 = time.monotonic()
        with pytest.raises(psycopg.Error) as ei:
            with ep.connect(user="fnx_md5", autocommit=True) as c:
                c.execute("SELECT 1")
        took = time.monotonic() - t0
        assert took < 4, "the refusal reached the client after %.1fs" % took
        assert "too many connections" in str(ei.value), str(ei.value)
    finally:
        pgsuper.execute("ALTER ROLE fnx_md5 CONNECTION LIMIT -1")
    healthy(ep, "fnx_md5")
    healthy(ep)


def fill_max_connections():
    """Direct trust connections to the primary until it says too many clients."""
    socks = []
    for _ in range(1000):
        raw = pgwire.RawConn(PG_HOST, PG_PORT, timeout=10)
        try:
            raw.login("fnx_trust", DBNAME)
        except pgwire.PgError as e:
            raw.close()
            assert e.sqlstate == "53300", e.fields
            return socks
        socks.append(raw)
    raise AssertionError("max_connections never reached")


@pytest.mark.timeout_s(45)
def test_primary_refusing_connections_gives_a_clear_error_not_a_hang(proxy):
    skip_if_direct()
    ep = proxy(env={"DB_POOL_TIMEOUT": "8"})
    ep.assert_healthy()
    socks = fill_max_connections()
    try:
        for user in ("fnx_md5", "fnx_plain"):  # pools with no open connection
            t0 = time.monotonic()
            with pytest.raises(psycopg.Error) as ei:
                with ep.connect(user=user, autocommit=True) as c:
                    c.execute("SELECT 1")
            took = time.monotonic() - t0
            assert took < 4, "the refusal reached the client after %.1fs" % took
            assert str(ei.value).strip()
    finally:
        for s in socks:
            s.close()
    wait_until(lambda: fnx_backends("fnx_trust") == 0, 10, what="the fillers to leave")
    healthy(ep)
    healthy(ep, "fnx_md5")



@pytest.mark.timeout_s(30)
def test_a_primary_that_accepts_but_never_answers_logins_gives_a_clear_error(proxy,
                                                                            stack_restored):
    """The postmaster stopped (SIGSTOP): TCP connects succeed, logins never finish."""
    skip_if_direct()
    ep = proxy(env={"DB_POOL_TIMEOUT": "10", "SERVER_CONNECT_TIMEOUT": "2"})
    ep.assert_healthy()
    with open(os.path.join(pg_data_dir("primary")[1], "postmaster.pid")) as f:
        postmaster = int(f.readline())
    os.kill(postmaster, signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        with pytest.raises(psycopg.Error) as ei:
            with ep.connect(user="fnx_md5", autocommit=True) as c:
                c.execute("SELECT 1")
        took = time.monotonic() - t0
        assert took < 6, "the error came after %.1fs" % took
        assert "timeout" in str(ei.value), str(ei.value)
    finally:
        os.kill(postmaster, signal.SIGCONT)
    healthy(ep, "fnx_md5")
    healthy(ep)

# ---------------------------------------------------------------- replica restarted


@pytest.mark.timeout_s(45)
def test_a_replica_restarted_under_read_load_costs_no_client_an_error(proxy, stack_restored,
                                                                       make_table):
    skip_if_direct()
    from test_routing import caught_up, read_load, replicas_spec, wait_usable

    ports = [p for p in replica_ports() if p]
    if len(ports) < 2:
        pytest.skip("the stack has no replicas")
    t = make_table("id int")
    with pg_super() as s:
        s.execute("INSERT INTO %s SELECT generate_series(1, 100)" % t)
    caught_up(ports)
    ep = proxy(env={"POSTGRES_READ_REPLICAS": replicas_spec(ports), "READ_REPLICA_MAX_LAG": "30"})
    wait_usable(ep, ports)
    stop, errors, counts = threading.Event(), [], []
    threads = read_load(ep, t, stop, errors, counts)
    try:
        wait_until(lambda: len(counts) > 100 or errors, 10, what="reads to flow")
        assert not errors, errors[:3]
        pg_ctl("replica1", "-m", "fast", "-w", "-t", "60", "restart")
        wait_until(lambda: replica_ready(ports[0]), 30, what="replica1 back")
        n = len(counts)
        wait_until(lambda: len(counts) > n + 50 or errors, 10, what="reads to go on")
    finally:
        stop.set()
        for th in threads:
            th.join(20)
    assert not errors, errors[:3]
    healthy(ep)



@pytest.mark.timeout_s(30)
def test_a_read_only_transaction_on_a_replica_that_restarts_gets_an_error_at_once(
        proxy, stack_restored):
    skip_if_direct()
    from test_routing import wait_usable

    port = replica_ports()[0]
    if not port:
        pytest.skip("the stack has no replicas")
    ep = proxy(env={"POSTGRES_READ_REPLICAS": "127.0.0.1:%d" % port,
                    "READ_REPLICA_MAX_LAG": "30"})
    wait_usable(ep, [port])
    with ep.connect(autocommit=True) as c:
        c.execute("BEGIN READ ONLY")
        assert c.execute("SELECT pg_is_in_recovery()").fetchone()[0] is True
        pg_ctl("replica1", "-m", "fast", "-w", "-t", "60", "restart")
        t0 = time.monotonic()
        with pytest.raises(psycopg.Error):
            c.execute("SELECT 1")
        assert time.monotonic() - t0 < 5
    healthy(ep)

@pytest.mark.timeout_s(30)
@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_a_read_running_on_a_replica_that_shuts_down_is_retried_on_the_primary(
        proxy, stack_restored, mode):
    skip_if_direct()
    from test_routing import wait_usable

    port = replica_ports()[0]
    if not port:
        pytest.skip("the stack has no replicas")
    ep = proxy(env={"POSTGRES_READ_REPLICAS": "127.0.0.1:%d" % port,
                    "READ_REPLICA_MAX_LAG": "30"})
    wait_usable(ep, [port])
    marker = unique("onreplica")
    res = {}

    def read():
        try:
            with ep.connect(autocommit=True) as c:
                res["row"] = c.execute(
                    "/* fastnext:replica */ SELECT pg_is_in_recovery(), pg_sleep(2) /* %s */"
                    % marker).fetchone()
        except psycopg.Error as e:
            res["row"] = e

    th = threading.Thread(target=read, daemon=True)
    th.start()
    with psycopg.connect(host=PG_HOST, port=port, user="postgres", dbname=DBNAME,
                         autocommit=True) as r:
        wait_until(lambda: r.execute("SELECT count(*) FROM pg_stat_activity WHERE query LIKE %s "
                                     "AND pid <> pg_backend_pid()", ("%" + marker + "%",)
                                     ).fetchone()[0] == 1, 5, what="the read on the replica")
    pg_ctl("replica1", "-m", mode, "-w", "-t", "60", "restart")
    th.join(15)
    assert res.get("row") == (False, ""), res  # answered, by the primary
    healthy(ep)


# ---------------------------------------------------------------- hostile clients


def asan_light(env=None):
    env = dict(env or {})
    opts = os.environ.get("ASAN_OPTIONS", "")
    if "quarantine_size_mb" not in opts:
        opts = (opts + ":" if opts else "") + "quarantine_size_mb=4"
    env.setdefault("ASAN_OPTIONS", opts)
    return env


class Sender(threading.Thread):
    """Sends chunks on a socket until done or the socket blocks for `stall`
    seconds (the proxy stopped reading: backpressure)."""

    def __init__(self, raw, chunks, stall=2.0):
        super().__init__(daemon=True)
        self.raw, self.chunks, self.stall = raw, chunks, stall
        self.sent = 0
        self.blocked = False
        self.error = None

    def run(self):
        self.raw.sock.settimeout(self.stall)
        try:
            for ch in self.chunks:
                self.raw.sock.sendall(ch)
                self.sent += len(ch)
        except socket.timeout:
            self.blocked = True
        except OSError as e:
            self.error = e


@pytest.mark.timeout_s(40)
def test_a_client_pipelining_without_reading_keeps_proxy_memory_bounded(proxy):
    skip_if_direct()
    ep = proxy(env=asan_light({"DB_POOL_SIZE": "2", "DB_MAX_OVERFLOW": "0"}))
    ep.assert_healthy()
    base = ep.rss_kb()
    raw = login(ep, rcvbuf=4096)
    one = pgwire.query("SELECT repeat('x', 2000)")
    chunk = one * 1000
    sender = Sender(raw, (chunk for _ in range(200)))  # up to 200k queries, ~400 MB of answers
    sender.start()
    try:
        peak = base
        deadline = time.monotonic() + 20
        while sender.is_alive() and time.monotonic() < deadline:
            peak = max(peak, ep.rss_kb())
            time.sleep(0.05)
        sender.join(5)
        peak = max(peak, ep.rss_kb())
        assert sender.blocked, "the proxy read %d bytes of queries without stalling" % sender.sent
        assert peak - base < 64 * 1024, "proxy RSS grew by %d kB" % (peak - base)
        # other clients are unaffected meanwhile
        for _ in range(5):
            with ep.connect(autocommit=True) as c:
                assert c.execute("SELECT 5").fetchone()[0] == 5
    finally:
        raw.close()
    healthy(ep)



@pytest.mark.timeout_s(40)
def test_an_extended_pipeline_without_reading_is_never_cut_or_corrupted(proxy):
    """A long pipeline the client does not read: the proxy holds back (the
    socket buffers may also take all of it), and what it forwards stays
    well-framed (it once moved its input buffer under bytes still queued from
    it: PostgreSQL's FATAL invalid frontend message type 0)."""
    skip_if_direct()
    ep = proxy(env={"DB_POOL_SIZE": "2", "DB_MAX_OVERFLOW": "0"})
    one = (pgwire.parse("", "SELECT repeat('x', 2000)") + pgwire.bind("", "")
           + pgwire.execute() + pgwire.sync())
    chunk = one * 1000
    cut = []
    for attempt in range(10):  # the stream broke in about one run out of three
        raw = login(ep, rcvbuf=4096)
        try:
            sender = Sender(raw, (chunk for _ in range(60)), stall=1.0)
            sender.start()
            sender.join(15)
            if sender.error is not None:
                cut.append((attempt, sender.sent, repr(sender.error)))
            else:
                # still connected and answering in order: the first reply is ours
                assert raw.recv_msg(timeout=10)[0] in ("1", "2", "T", "D", "C", "Z")
        finally:
            raw.close()
    assert cut == [], "pipelines cut short: %r" % cut[:3]
    assert "server connection lost" not in ep.stderr_text()
    healthy(ep)

@pytest.mark.timeout_s(40)
def test_a_huge_copy_in_then_a_vanished_client_is_aborted_and_cleaned(proxy, make_table):
    skip_if_direct()
    t = make_table("id int, v text")
    ep = proxy(env=asan_light({"DB_POOL_SIZE": "1", "DB_MAX_OVERFLOW": "0"}))
    ep.assert_healthy()
    base = ep.rss_kb()
    raw = login(ep)
    raw.send(pgwire.query("COPY %s FROM STDIN" % t))
    assert raw.recv_msg()[0] == "G"
    row = b"1\t" + b"y" * 4000 + b"\n"
    chunk = pgwire.message("d", row * 16) * 64  # 4 MB
    sender = Sender(raw, (chunk for _ in range(25)), stall=5)  # ~100 MB
    sender.start()
    sender.join(30)
    assert ep.rss_kb() - base < 64 * 1024
    # and a last CopyData message declared at 16 MB of which only 1 MB arrives
    try:
        raw.send(b"d" + struct.pack("!I", 16 * 1024 * 1024 + 4) + b"z" * (1024 * 1024))
    except OSError:
        pass
    raw.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    raw.close()  # gone, with a reset
    # the one server connection is back, its COPY aborted
    with ep.connect(autocommit=True) as c:
        assert c.execute("SELECT count(*) FROM %s" % t).fetchone()[0] == 0
    assert ep.rss_kb() - base < 64 * 1024
    healthy(ep)


@pytest.mark.timeout_s(30)
def test_messages_at_the_size_cap_pass_and_over_it_get_08P01(proxy):
    """MAX_MESSAGE_SIZE caps a message's body (its declared length less 4)."""
    skip_if_direct()
    cap = 64 * 1024
    ep = proxy(env=dict(TRUST, MAX_MESSAGE_SIZE=str(cap)))
    raw = login(ep, user="fnx_trust")
    try:
        head = b"SELECT length('"
        fill = cap - len(head) - len(b"')") - 1
        sql = head + b"a" * fill + b"')"
        msg = b"Q" + struct.pack("!I", 4 + len(sql) + 1) + sql + b"\0"
        assert len(msg) - 5 == cap
        raw.send(msg)
        rows, _ = raw.collect()
        assert rows == [[str(fill)]], rows
        # one byte more: 08P01
        raw.send(b"Q" + struct.pack("!I", 4 + cap + 1) + sql + b"a\0")
        kind, fields = read_outcome(raw, 5)
        assert kind == "error" and fields["C"] == "08P01", (kind, fields)
        assert raw.wait_closed(3)
    finally:
        raw.close()
    healthy(ep, "fnx_trust")


@pytest.mark.timeout_s(30)
def test_a_result_row_larger_than_max_message_size_reaches_the_client(proxy):
    """MAX_MESSAGE_SIZE caps what clients send; PostgreSQL sends rows up to 1 GB."""
    skip_if_direct()
    cap = 1024 * 1024
    ep = proxy(env=dict(TRUST, MAX_MESSAGE_SIZE=str(cap)))
    with ep.connect(user="fnx_trust", password=None, autocommit=True) as c:
        assert c.execute("SELECT length(repeat('x', %s))", (2 * cap,)).fetchone()[0] == 2 * cap
        v = c.execute("SELECT repeat('x', %s)", (2 * cap,)).fetchone()[0]
        assert len(v) == 2 * cap
    healthy(ep, "fnx_trust")


@pytest.mark.timeout_s(30)
def test_absurd_startup_packets_are_refused_cleanly(proxy):
    skip_if_direct()
    ep = proxy()
    cases = {
        "thousands_of_params": {"user": "fnx", "database": DBNAME,
                                **{"x.p%d" % i: "v" for i in range(3000)}},
        "huge_value": {"user": "fnx", "database": DBNAME, "application_name": "a" * 9000},
        "huge_user": {"user": "u" * 9500, "database": DBNAME},
    }
    for name, params in cases.items():
        raw = ep.raw()
        try:
            try:
                raw.send(pgwire.startup_message(params))
            except OSError:
                continue
            kind, fields = read_outcome(raw, 5)
            assert kind in ("error", "closed"), (name, kind)
            if kind == "error":
                assert fields["C"] in ("08P01", "28000", "28P01", "53300", "54000"), (name, fields)
        finally:
            raw.close()
    # 60 small options are fine
    raw = ep.raw()
    try:
        raw.login("fnx", DBNAME, PASSWORDS["fnx"], **{"x.p%d" % i: "v" for i in range(60)})
        assert raw.simple_query("SHOW x.p59")[0] == [["v"]]
    finally:
        raw.close()
    healthy(ep)


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


@pytest.mark.timeout_s(40)
def test_thousands_of_connections_opened_and_dropped_at_once(proxy):
    skip_if_direct()
    ep = proxy()
    ep.assert_healthy()
    fds = fd_count(ep.pid)
    socks = []
    try:
        for i in range(2000):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.settimeout(5)
            s.connect((ep.host, ep.port))
            if i % 3 == 1:
                s.sendall(pgwire.startup_message({"user": "fnx", "database": DBNAME}))
            elif i % 3 == 2:
                s.sendall(pgwire.ssl_request())
            socks.append(s)
        # psycopg cannot wait on descriptors past 1024: a raw client
        raw = login(ep)
        try:
            assert raw.simple_query("SELECT 6")[0] == [["6"]]
        finally:
            raw.close()
    finally:
        for i, s in enumerate(socks):
            if i % 2:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()
    wait_until(lambda: fd_count(ep.pid) <= fds + 5, 10,
               what="the proxy's descriptors to come back (%d before)" % fds)
    healthy(ep)


@pytest.mark.timeout_s(40)
@pytest.mark.parametrize("auth", ["plain", "scram"])
def test_clients_closing_mid_scram_leave_no_trace(proxy, auth):
    skip_if_direct()
    ep = proxy(auth=auth)
    ep.assert_healthy()
    fds = fd_count(ep.pid)
    for i in range(150):
        raw = ep.raw()
        try:
            raw.startup("fnx", DBNAME)
            mtype, body = raw.recv_msg()
            assert mtype == "R" and struct.unpack_from("!I", body)[0] == pgwire.AUTH_SASL
            if i % 3 == 0:
                continue  # gone before client-first
            scram = pgwire.ScramClient(PASSWORDS["fnx"])
            first = scram.client_first()
            raw.send(pgwire.password_message(
                pgwire.cstr("SCRAM-SHA-256") + struct.pack("!i", len(first)) + first))
            mtype, body = raw.recv_msg()
            assert mtype == "R"
            if i % 3 == 1:
                continue  # gone after server-first
            raw.send(pgwire.password_message(scram.client_final(body[4:])))
            # gone right after client-final, without reading the outcome
        finally:
            if i % 2:
                raw.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            raw.close()
    wait_until(lambda: fd_count(ep.pid) <= fds + 5, 10,
               what="the proxy's descriptors to come back (%d before)" % fds)
    healthy(ep)


# ---------------------------------------------------------------- leaving while holding things


def locked_table(make_table):
    t = make_table("id int PRIMARY KEY, v int")
    with pg_super() as s:
        s.execute("INSERT INTO %s VALUES (1, 0), (2, 0)" % t)
    return t


@pytest.mark.timeout_s(30)
@pytest.mark.parametrize("pool_mode", ["transaction", "session"])
@pytest.mark.parametrize("how", ["terminate", "close", "reset"])
def test_a_client_leaving_mid_transaction_leaves_no_transaction_or_lock_behind(
        proxy, make_table, how, pool_mode):
    skip_if_direct()
    t = locked_table(make_table)
    ep = proxy(env={"DB_POOL_SIZE": "1", "DB_MAX_OVERFLOW": "0", "DB_POOL_TIMEOUT": "5",
                    "POOL_MODE": pool_mode})
    raw = login(ep)
    raw.simple_query("BEGIN")
    raw.simple_query("INSERT INTO %s VALUES (3, 0)" % t)
    raw.simple_query("SELECT * FROM %s WHERE id = 1 FOR UPDATE" % t)
    raw.simple_query("SELECT pg_advisory_xact_lock(4242)")
    raw.simple_query("SET LOCAL lock_timeout = '1ms'")
    if how == "terminate":
        raw.send(pgwire.terminate())
        assert raw.wait_closed(3)
    elif how == "reset":
        raw.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    raw.close()
    # the next client gets the one server connection: clean, and nothing blocks it
    with ep.connect(autocommit=True) as c:
        c.execute("SET lock_timeout = '3s'")
        assert c.execute("SELECT now() = statement_timestamp()").fetchone()[0] is True
        assert c.execute("SELECT count(*) FROM %s" % t).fetchone()[0] == 2
        assert c.execute("UPDATE %s SET v = 1 WHERE id = 1" % t).rowcount == 1
        assert c.execute("SELECT pg_try_advisory_xact_lock(4242)").fetchone()[0] is True
        assert c.execute("SHOW lock_timeout").fetchone()[0] == "3s"
    assert fnx_backends(state="idle in transaction") == 0
    healthy(ep)


@pytest.mark.timeout_s(30)
@pytest.mark.parametrize("mode", ["transaction", "session"])
def test_a_client_vanishing_with_a_session_advisory_lock_releases_it(proxy, mode):
    skip_if_direct()
    ep = proxy(env={"POOL_MODE": mode, "DB_POOL_SIZE": "1", "DB_MAX_OVERFLOW": "0",
                    "DB_POOL_TIMEOUT": "5"})
    key = int(time.time() * 1000) % 1000000
    raw = login(ep)
    assert raw.simple_query("SELECT pg_advisory_lock(%d)" % key)[0] == [[""]]
    raw.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    raw.close()
    with ep.connect(autocommit=True) as c:
        assert c.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()[0] is True
        c.execute("SELECT pg_advisory_unlock(%s)", (key,))
    with pg_super() as s:
        assert s.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND "
                         "objid = %s", (key,)).fetchone()[0] == 0
    healthy(ep)


@pytest.mark.timeout_s(40)
def test_a_cancel_request_storm_cancels_only_its_clients_queries_and_harms_nothing(proxy):
    skip_if_direct()
    ep = proxy()
    target = login(ep)
    pid, key = target.backend_key
    stop = threading.Event()
    sent = [0]

    def storm():
        # every cancel of a running query costs the primary a connection (they
        # are not coalesced), so the storm is paced to keep the stack responsive
        while not stop.is_set():
            socks = []
            for _ in range(10):
                try:
                    s = socket.create_connection((ep.host, ep.port), timeout=5)
                    s.sendall(pgwire.cancel_request(pid, key))
                    socks.append(s)
                except OSError:
                    pass
            for s in socks:
                s.close()
            sent[0] += len(socks)
            time.sleep(0.02)

    th = threading.Thread(target=storm, daemon=True)
    th.start()
    outcomes = {"ok": 0, "canceled": 0}
    try:
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline:
            try:
                target.simple_query("SELECT pg_sleep(0.05)", timeout=10)
                outcomes["ok"] += 1
            except pgwire.PgError as e:
                assert e.sqlstate == "57014", e.fields
                outcomes["canceled"] += 1
    finally:
        stop.set()
        th.join(15)
    assert sent[0] > 500 and outcomes["canceled"] > 0, (sent, outcomes)
    assert target.simple_query("SELECT 8")[0] == [["8"]]
    target.close()
    healthy(ep)


@pytest.mark.timeout_s(30)
def test_cancel_requests_never_cancel_another_clients_query(proxy):
    skip_if_direct()
    ep = proxy(env={"DB_POOL_SIZE": "1", "DB_MAX_OVERFLOW": "0"})
    target = login(ep)
    pid, key = target.backend_key
    stop = threading.Event()
    bystander = {"ok": 0, "errors": []}

    def bystand():  # shares the one server connection with target
        with ep.connect(autocommit=True) as c:
            while not stop.is_set():
                try:
                    c.execute("SELECT pg_sleep(0.1)")
                    bystander["ok"] += 1
                except psycopg.Error as e:
                    bystander["errors"].append(e)

    def cancel():  # target's own key, one at a time
        while not stop.is_set():
            try:
                with socket.create_connection((ep.host, ep.port), timeout=5) as s:
                    s.sendall(pgwire.cancel_request(pid, key))
                    s.recv(16)
            except OSError:
                pass
            time.sleep(0.005)

    ths = [threading.Thread(target=bystand, daemon=True),
           threading.Thread(target=cancel, daemon=True)]
    for th in ths:
        th.start()
    try:
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline:
            try:
                target.simple_query("SELECT 1", timeout=10)
            except pgwire.PgError as e:
                assert e.sqlstate == "57014", e.fields
    finally:
        stop.set()
        for th in ths:
            th.join(15)
        target.close()
    assert bystander["ok"] > 5, bystander
    assert bystander["errors"] == [], bystander["errors"][:3]
