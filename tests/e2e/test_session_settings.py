"""Session SET / RESET in transaction pooling: carried to whichever server
connection the client gets next, never pinned, never leaked (SPEC §3).

Each test runs clients over a small pool with other clients busy, so a
client's transactions land on different server connections; SHOW answers
must follow the client's own SETs everywhere, and nobody else's.
"""
import threading

import pgwire
import psycopg
import pytest

from conftest import DBNAME, PASSWORDS, PG_HOST, PG_PORT, pg_super, skip_if_direct, unique

pytestmark = pytest.mark.usefixtures("stack")


def norm(v):
    return v.replace(" ", "")


def pool(proxy, **env):
    cfg = {"DB_POOL_SIZE": "3", "DB_MAX_OVERFLOW": "0", "WORKERS": "2"}
    cfg.update(env)
    return proxy(env=cfg)


class Churn:
    """Other clients running short transactions, so server connections move."""

    def __init__(self, ep, n=3):
        self.ep, self.stop, self.errors = ep, threading.Event(), []
        self.threads = [threading.Thread(target=self.run) for _ in range(n)]

    def run(self):
        try:
            with self.ep.connect(autocommit=True) as c:
                while not self.stop.is_set():
                    assert norm(c.execute("SHOW search_path").fetchone()[0]) == '"$user",public'
                    assert c.execute("SHOW statement_timeout").fetchone()[0] == "0"
                    assert c.execute("SHOW DateStyle").fetchone()[0] == "ISO, MDY"
        except Exception as e:  # reported by the test
            self.errors.append(e)

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(10)
        assert not self.errors, self.errors[:3]


def pins(ep):
    if ep.direct:
        return 0
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", ep.admin_port, timeout=5)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    conn.close()
    for ln in text.splitlines():
        if ln.startswith("fastnext_client_pins_total"):
            return int(float(ln.split()[-1]))
    return 0


def backends_seen(c, rounds, check):
    pids = set()
    for _ in range(rounds):
        pids.add(c.execute("SELECT pg_backend_pid()").fetchone()[0])
        check()
    return pids


def test_a_session_set_follows_the_client_to_every_server_connection(proxy):
    ep = pool(proxy)
    with Churn(ep), ep.connect(autocommit=True) as a:
        a.execute("SET search_path TO e2e_carried, public")
        a.execute("SET statement_timeout = '4242ms'")

        def check():
            assert norm(a.execute("SHOW search_path").fetchone()[0]) == "e2e_carried,public"
            assert a.execute("SHOW statement_timeout").fetchone()[0] == "4242ms"

        pids = backends_seen(a, 60, check)
    if not ep.direct:
        assert len(pids) > 1, "the client never moved: the test proves nothing"
    assert pins(ep) == 0


def test_datestyle_sets_merge_as_in_postgresql_wherever_the_client_runs(proxy):
    """SET DateStyle merges into the value in force: 'sql' then 'dmy' is
    'SQL, DMY', and 'dmy' over a startup 'Postgres, MDY' is 'Postgres, DMY'."""
    ep = pool(proxy)
    with Churn(ep), ep.connect(autocommit=True) as a, \
            ep.connect(autocommit=True, options="-c DateStyle=Postgres,MDY") as b:
        a.execute("SET datestyle TO sql")
        a.execute("SET datestyle TO dmy")
        b.execute("SET datestyle TO dmy")

        def check():
            assert a.execute("SHOW DateStyle").fetchone()[0] == "SQL, DMY"
            assert b.execute("SHOW DateStyle").fetchone()[0] == "Postgres, DMY"

        pids = backends_seen(a, 40, check) | backends_seen(b, 40, check)
        with a.transaction():
            a.execute("SET datestyle TO german")
        b.execute("RESET datestyle")

        def check2():
            assert a.execute("SHOW DateStyle").fetchone()[0] == "German, DMY"
            assert b.execute("SHOW DateStyle").fetchone()[0] == "Postgres, MDY"

        pids |= backends_seen(a, 40, check2)
    if not ep.direct:
        assert len(pids) > 1, "the clients never moved: the test proves nothing"
    assert pins(ep) == 0


def test_several_sets_in_one_query_are_carried_without_pinning(proxy):
    """psqlODBC sends "SET DateStyle = 'ISO';SET extra_float_digits = 2;show
    transaction_isolation" at connect."""
    ep = pool(proxy)
    with Churn(ep), ep.connect(autocommit=True) as a:
        a.execute("SET search_path TO e2e_multi, public;SET statement_timeout = '4343ms';"
                  "show transaction_isolation")

        def check():
            assert norm(a.execute("SHOW search_path").fetchone()[0]) == "e2e_multi,public"
            assert a.execute("SHOW statement_timeout").fetchone()[0] == "4343ms"

        pids = backends_seen(a, 40, check)
        # SETs mixed with statements that leave no session state are carried too (what
        # ORMs and pool resets send); anything else in the text still pins
        with ep.connect(autocommit=True) as b:
            b.execute("SET statement_timeout = '5s'; SELECT 1")

            def check_b():
                assert b.execute("SHOW statement_timeout").fetchone()[0] == "5s"

            backends_seen(b, 10, check_b)
            b.execute("SET statement_timeout = '6s'; LISTEN e2e_multi")
    if not ep.direct:
        assert len(pids) > 1, "the client never moved: the test proves nothing"
        assert pins(ep) == 1


def test_sets_in_a_committed_transaction_are_carried_and_rolled_back_ones_are_not(proxy):
    ep = pool(proxy)
    with Churn(ep), ep.connect() as a:  # psycopg's default: transactions
        a.execute("SET statement_timeout = '1111ms'")
        a.commit()
        a.execute("SET statement_timeout = '2222ms'")
        a.rollback()
        a.execute("SET search_path TO e2e_txn, public")
        a.execute("SELECT 1")
        a.commit()

        def check():
            assert a.execute("SHOW statement_timeout").fetchone()[0] == "1111ms"
            assert norm(a.execute("SHOW search_path").fetchone()[0]) == "e2e_txn,public"
            a.commit()

        backends_seen(a, 40, check)
    assert pins(ep) == 0


def test_a_failed_set_changes_nothing(proxy):
    ep = pool(proxy)
    with Churn(ep), ep.connect(autocommit=True) as a:
        a.execute("SET statement_timeout = '3333ms'")
        with pytest.raises(psycopg.errors.InvalidParameterValue):
            a.execute("SET statement_timeout = 'forever'")
        with pytest.raises(psycopg.errors.UndefinedObject):
            a.execute("SET no_such_setting_at_all = 1")
        for _ in range(30):
            assert a.execute("SHOW statement_timeout").fetchone()[0] == "3333ms"
    assert pins(ep) == 0


def test_reset_and_reset_all_are_carried(proxy):
    ep = pool(proxy)
    with Churn(ep), ep.connect(autocommit=True) as a:
        a.execute("SET statement_timeout = '4444ms'")
        a.execute("SET search_path TO e2e_reset, public")
        a.execute("RESET statement_timeout")
        for _ in range(20):
            assert a.execute("SHOW statement_timeout").fetchone()[0] == "0"
            assert norm(a.execute("SHOW search_path").fetchone()[0]) == "e2e_reset,public"
        a.execute("SET work_mem TO '8MB'")
        a.execute("RESET ALL")
        for _ in range(20):
            assert norm(a.execute("SHOW search_path").fetchone()[0]) == '"$user",public'
            assert a.execute("SHOW work_mem").fetchone()[0] == "4MB"
        a.execute("SET statement_timeout TO DEFAULT")
        assert a.execute("SHOW statement_timeout").fetchone()[0] == "0"
    assert pins(ep) == 0


def test_custom_settings_and_time_zones_are_carried(proxy):
    ep = pool(proxy)
    with Churn(ep), ep.connect(autocommit=True) as a:
        a.execute("SET myapp.tenant = 'acme'")
        a.execute("SET TIME ZONE 'Asia/Tokyo'")
        a.execute('SET "DateStyle" = \'ISO, DMY\'')
        for _ in range(30):
            assert a.execute("SELECT current_setting('myapp.tenant')").fetchone()[0] == "acme"
            assert a.execute("SHOW timezone").fetchone()[0] == "Asia/Tokyo"
            assert a.execute("SHOW datestyle").fetchone()[0] == "ISO, DMY"
    with ep.connect(autocommit=True) as b:
        for _ in range(10):
            assert b.execute("SELECT current_setting('myapp.tenant', true)").fetchone()[0] in \
                (None, "")
            assert b.execute("SHOW timezone").fetchone()[0] != "Asia/Tokyo"
    assert pins(ep) == 0


def test_a_set_undone_by_a_savepoint_still_pins(proxy):
    skip_if_direct("pinning is the proxy's")
    ep = pool(proxy)
    with ep.connect() as a:
        a.execute("SET statement_timeout = '5555ms'")
        a.execute("SAVEPOINT s1")
        a.execute("SET statement_timeout = '6666ms'")
        a.execute("ROLLBACK TO SAVEPOINT s1")
        a.commit()
        assert a.execute("SHOW statement_timeout").fetchone()[0] == "5555ms"
        a.commit()
    assert pins(ep) == 1


def test_set_role_and_set_local_behave_as_before(proxy):
    skip_if_direct("pinning is the proxy's")
    ep = pool(proxy)
    with ep.connect() as a:
        a.execute("SET LOCAL statement_timeout = '7777ms'")
        assert a.execute("SHOW statement_timeout").fetchone()[0] == "7777ms"
        a.commit()
        assert a.execute("SHOW statement_timeout").fetchone()[0] == "0"
        a.commit()
    assert pins(ep) == 0
    with ep.connect(autocommit=True) as b:
        b.execute("SET ROLE fnx")
        assert b.execute("SELECT current_user").fetchone()[0] == "fnx"
    assert pins(ep) == 1


def test_the_result_cache_keys_on_carried_settings(proxy):
    skip_if_direct("the result cache is the proxy's")
    ep = pool(proxy, CACHE_ENABLED="true")
    s1, s2 = unique("s"), unique("s")
    with pg_super() as s, s.transaction():
        for sch, val in ((s1, "first"), (s2, "second")):
            s.execute("CREATE SCHEMA %s AUTHORIZATION fnx" % sch)
            s.execute("CREATE TABLE %s.things (v text)" % sch)
            s.execute("INSERT INTO %s.things VALUES ('%s')" % (sch, val))
            s.execute("ALTER TABLE %s.things OWNER TO fnx" % sch)
    try:
        with ep.connect(autocommit=True) as a, ep.connect(autocommit=True) as b:
            a.execute("SET search_path TO %s" % s1)
            b.execute("SET search_path TO %s" % s2)
            for _ in range(20):
                assert a.execute("SELECT v FROM things").fetchone() == ("first",)
                assert b.execute("SELECT v FROM things").fetchone() == ("second",)
    finally:
        with pg_super() as s:
            s.execute("DROP SCHEMA %s CASCADE" % s1)
            s.execute("DROP SCHEMA %s CASCADE" % s2)


@pytest.mark.parametrize("mode", ["transaction", "session"])
def test_reset_brings_back_the_clients_startup_values(proxy, mode):
    ep = pool(proxy, POOL_MODE=mode)
    opts = dict(options="-c extra_float_digits=1", application_name="app_e2e")
    with Churn(ep) if mode == "transaction" else _nothing(), \
            ep.connect(autocommit=True, **opts) as a:
        a.execute("SET datestyle = 'ISO, YMD'")
        a.execute("RESET datestyle")
        assert a.execute("SHOW application_name").fetchone()[0] == "app_e2e"
        for _ in range(10):
            assert a.execute("SHOW extra_float_digits").fetchone()[0] == "1"
        a.execute("SET application_name = 'changed'")
        a.execute("RESET ALL")
        for _ in range(10):
            assert a.execute("SHOW application_name").fetchone()[0] == "app_e2e"
            assert a.execute("SHOW extra_float_digits").fetchone()[0] == "1"
        a.execute("RESET application_name")
        assert a.execute("SHOW application_name").fetchone()[0] == "app_e2e"
    assert pins(ep) == 0


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_reset_of_startup_timezone_and_datestyle_matches_postgresql(proxy, stack):
    """pg_regress runs with PGTZ and PGDATESTYLE in the startup packet; RESET
    must bring those back, not the server's defaults."""
    import os
    import subprocess
    ep = pool(proxy)
    env = dict(os.environ, PGTZ="PST8PDT", PGDATESTYLE="Postgres, MDY",
               PGPASSWORD="fnx_pass")
    # one statement per query, as psql sends a script
    stmts = ["SET datestyle = 'ISO, YMD'", "RESET datestyle", "SHOW datestyle",
             "SET TIME ZONE 'UTC'", "RESET ALL", "SHOW TimeZone", "SHOW datestyle",
             # every spelling of the names: TIME ZONE, quoted and mixed case
             "SET TIME ZONE 'UTC'", "RESET TIME ZONE", "SHOW TimeZone",
             "SET \"TimeZone\" = 'UTC'", "RESET \"TimeZone\"", "SHOW TimeZone",
             "SET datestyle = 'ISO'", "RESET \"DateStyle\"", "SHOW DateStyle",
             "BEGIN", "SET TIME ZONE 'UTC'", "RESET TIME ZONE", "COMMIT", "SHOW TimeZone"]
    outs = []
    for port in (stack["port"], ep.port):
        args = ["psql", "-X", "-A", "-t", "-h", "127.0.0.1", "-p", str(port), "-U", "fnx",
                "-d", "fnx"]
        for st in stmts:
            args += ["-c", st]
        r = subprocess.run(args, env=env, capture_output=True, text=True, timeout=30)
        outs.append([ln for ln in r.stdout.splitlines()
                     if ln not in ("SET", "RESET", "BEGIN", "COMMIT", "")])
    assert outs[0] == ["Postgres, MDY", "PST8PDT", "Postgres, MDY", "PST8PDT", "PST8PDT",
                       "Postgres, MDY", "PST8PDT"], outs[0]
    assert outs[1] == outs[0]


@pytest.mark.parametrize("setting,value,check", [
    ("TimeZone", "Asia/Tokyo", "SHOW TimeZone"),
    ("client_encoding", "LATIN1", "SELECT length(convert_to('\u00e9', 'UTF8'))"),
    ("DateStyle", "SQL, DMY", "SHOW DateStyle"),
])
def test_a_reported_setting_changed_in_a_function_stays_with_its_client(proxy, setting, value,
                                                                         check):
    """set_config() inside a function changes a setting the proxy cannot see in the text;
    PostgreSQL reports it (ParameterStatus). The client that made it keeps it, the next
    client on the same server connection never gets it (a client_encoding that leaked
    would garble the other client's text)."""
    ep = proxy(env={"DB_POOL_SIZE": "1", "DB_MAX_OVERFLOW": "0", "CACHE_ENABLED": "false",
                    "DB_POOL_TIMEOUT": "3"})
    fn = unique("setf")
    with pg_super() as s:
        s.execute("CREATE FUNCTION %s() RETURNS text LANGUAGE sql AS "
                  "$$SELECT set_config('%s', '%s', false)$$" % (fn, setting, value))
    try:
        with psycopg.connect(host=PG_HOST, port=PG_PORT, user="postgres", dbname=DBNAME,
                             autocommit=True) as d:
            want_b = d.execute(check).fetchone()[0]
        with ep.connect(autocommit=True) as a:
            a.execute("SELECT %s()" % fn)
            got_a = a.execute("SHOW %s" % setting).fetchone()[0]
        with ep.connect(autocommit=True) as b:
            assert b.execute(check).fetchone()[0] == want_b
        assert got_a.lower().replace(" ", "") == value.lower().replace(" ", "")
    finally:
        with pg_super() as s:
            s.execute("DROP FUNCTION IF EXISTS %s()" % fn)


def test_set_local_and_rolled_back_sets_of_reported_settings_do_not_pin(proxy):
    skip_if_direct("counts the proxy's pins")
    ep = proxy(env={"DB_POOL_SIZE": "1", "DB_MAX_OVERFLOW": "0", "CACHE_ENABLED": "false"})
    with ep.connect(autocommit=True) as a:
        with a.transaction():
            a.execute("SET LOCAL TimeZone = 'Asia/Tokyo'")
            assert a.execute("SHOW TimeZone").fetchone()[0] == "Asia/Tokyo"
        with pytest.raises(psycopg.errors.DivisionByZero), a.transaction():
            a.execute("SET TimeZone = 'Europe/Paris'")
            a.execute("SELECT 1/0")
        a.execute("SET DateStyle = 'German'")
        assert a.execute("SHOW DateStyle").fetchone()[0] == "German, DMY"
        tz = a.execute("SHOW TimeZone").fetchone()[0]
    with ep.connect(autocommit=True) as b:
        assert b.execute("SHOW TimeZone").fetchone()[0] == tz
        assert b.execute("SHOW DateStyle").fetchone()[0] != "German, DMY"
    assert pins(ep) == 0


@pytest.mark.parametrize("how", ["new_session", "after_a_write_of_its_own"])
def test_currval_after_another_clients_nextval_on_the_same_connection_is_undefined(proxy, how):
    """One server connection: b draws from a sequence; then a, which never drew from it,
    reads currval. Directly a gets "not yet defined in this session" (55000); through the
    proxy too, never b's value."""
    ep = proxy(env={"DB_POOL_SIZE": "1", "DB_MAX_OVERFLOW": "0", "CACHE_ENABLED": "false"})
    seq, t = unique("sq"), unique("sqt")
    with pg_super() as s:
        s.execute("CREATE SEQUENCE %s" % seq)
        s.execute("CREATE TABLE %s (v int)" % t)
        s.execute("GRANT ALL ON SEQUENCE %s TO fnx; GRANT ALL ON %s TO fnx" % (seq, t))
    try:
        with ep.connect(autocommit=True) as a, ep.connect(autocommit=True) as b:
            a.execute("INSERT INTO %s VALUES (1)" % t)  # a has written before
            b.execute("SELECT nextval('%s')" % seq)
            with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState):
                if how == "new_session":
                    with ep.connect(autocommit=True) as c:
                        c.execute("SELECT currval('%s')" % seq)
                else:
                    a.execute("INSERT INTO %s VALUES (2)" % t)
                    a.execute("SELECT currval('%s')" % seq)
    finally:
        with pg_super() as s:
            s.execute("DROP TABLE IF EXISTS %s" % t)
            s.execute("DROP SEQUENCE IF EXISTS %s" % seq)


def test_currval_and_lastval_never_answer_another_clients_value(proxy):
    """nextval() leaves its value in the session (currval, lastval): a client's
    next transaction that reads them gets the connection of its last one when
    nobody used it since, and otherwise PostgreSQL's own "not yet defined in
    this session", never the value another client drew there."""
    ep = pool(proxy)
    seq, t = unique("sq"), unique("sqt")
    with pg_super() as s:
        s.execute("CREATE SEQUENCE %s" % seq)
        s.execute("CREATE TABLE %s (id serial PRIMARY KEY, v int)" % t)
        s.execute("GRANT ALL ON SEQUENCE %s, %s_id_seq TO fnx" % (seq, t))
        s.execute("GRANT ALL ON %s TO fnx" % t)
    try:
        with ep.connect(autocommit=True) as a:
            # quiet: the connection is there, unused
            n = a.execute("SELECT nextval('%s')" % seq).fetchone()[0]
            assert a.execute("SELECT currval('%s')" % seq).fetchone()[0] == n
            assert a.execute("SELECT lastval()").fetchone()[0] == n
            # busy: others draw from the same sequences on every connection
            stop, errors = threading.Event(), []

            def draw():
                try:
                    with ep.connect(autocommit=True) as b:
                        while not stop.is_set():
                            b.execute("SELECT nextval('%s')" % seq)
                            b.execute("INSERT INTO %s (v) VALUES (0)" % t)
                except Exception as e:  # reported below
                    errors.append(e)

            threads = [threading.Thread(target=draw) for _ in range(3)]
            for th in threads:
                th.start()
            answered = undefined = 0
            try:
                for i in range(60):
                    new_id = a.execute("INSERT INTO %s (v) VALUES (%d) RETURNING id"
                                       % (t, i)).fetchone()[0]
                    try:
                        assert a.execute("SELECT lastval()").fetchone()[0] == new_id
                        assert a.execute("SELECT currval('%s_id_seq')" % t).fetchone()[0] == new_id
                        answered += 1
                    except psycopg.errors.ObjectNotInPrerequisiteState:
                        undefined += 1
            finally:
                stop.set()
                for th in threads:
                    th.join(10)
            assert not errors, errors[:3]
            assert answered > 0, (answered, undefined)
    finally:
        with pg_super() as s:
            s.execute("DROP TABLE IF EXISTS %s" % t)
            s.execute("DROP SEQUENCE IF EXISTS %s" % seq)


def test_long_startup_options_are_applied_on_every_server_connection(proxy):
    """Startup settings of 9 KB in all (each value under PostgreSQL's own
    limits) reach every server connection the client uses."""
    ep = pool(proxy)
    vals = {k: k * 1500 for k in ("ab", "cd", "ef")}
    opts = " ".join("-c myapp.%s=%s" % (k, v) for k, v in vals.items())
    with Churn(ep), ep.connect(autocommit=True, options=opts) as a:
        def check():
            for k, v in vals.items():
                assert a.execute("SELECT current_setting('myapp.%s')" % k).fetchone()[0] == v

        pids = backends_seen(a, 30, check)
    if not ep.direct:
        assert len(pids) > 1, "the client never moved: the test proves nothing"


def test_a_refused_startup_value_never_leaves_the_last_clients_settings(proxy):
    """One pooled connection. A client with a startup TimeZone leaves; the
    next has a startup value the server refuses (PostgreSQL itself would not
    let it in; the proxy warns). The statement applying its values rolls
    back whole, so neither it nor the client after it may see the first
    client's TimeZone."""
    skip_if_direct("PostgreSQL refuses the bad startup value at login")
    ep = pool(proxy, DB_POOL_SIZE="1", WORKERS="1")
    with pg_super() as s:
        default_tz = s.execute("SHOW TimeZone").fetchone()[0]
        default_ds = s.execute("SHOW DateStyle").fetchone()[0]
    assert default_tz != "Asia/Kathmandu"
    with ep.connect(autocommit=True, options="-c TimeZone=Asia/Kathmandu") as a:
        assert a.execute("SHOW TimeZone").fetchone()[0] == "Asia/Kathmandu"
    notices = []
    with ep.connect(autocommit=True, options="-c DateStyle=bogus") as b:
        b.add_notice_handler(lambda d: notices.append(d.message_primary))
        assert b.execute("SHOW TimeZone").fetchone()[0] == default_tz
        assert b.execute("SHOW DateStyle").fetchone()[0] == default_ds
    assert any("could not apply a session setting" in m for m in notices), notices
    for _ in range(3):
        with ep.connect(autocommit=True) as c:
            assert c.execute("SHOW TimeZone").fetchone()[0] == default_tz
            assert c.execute("SHOW DateStyle").fetchone()[0] == default_ds
    with ep.connect(autocommit=True, options="-c TimeZone=Asia/Kathmandu") as a:
        assert a.execute("SHOW TimeZone").fetchone()[0] == "Asia/Kathmandu"
    with ep.connect(autocommit=True) as c:
        assert c.execute("SHOW TimeZone").fetchone()[0] == default_tz


def test_an_unnamed_set_bound_again_in_a_later_batch_never_reaches_the_next_client(proxy):
    """Parse of a SET in one batch, Bind and Execute of the unnamed statement
    in the next: the SET runs then, so it must be carried (or the client
    pinned), never left on the pooled connection for the next client."""
    ep = pool(proxy, DB_POOL_SIZE="1", WORKERS="1")
    r = ep.raw(timeout=10)
    try:
        r.login("fnx", DBNAME, PASSWORDS["fnx"])
        r.send(pgwire.parse("", "SET statement_timeout = '8888ms'") + pgwire.sync())
        r.collect()
        r.send(pgwire.bind("", "") + pgwire.execute() + pgwire.sync())
        r.collect()
        rows, _ = r.simple_query("SHOW statement_timeout")
        assert rows[0][0] == "8888ms"
    finally:
        r.close()
    with ep.connect(autocommit=True) as c:
        assert c.execute("SHOW statement_timeout").fetchone()[0] == "0"
