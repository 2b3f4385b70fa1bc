"""psqlODBC (Debian's odbc-postgresql, psqlodbcw.so over libpq) through pyodbc
and the proxy in transaction pooling mode, with the driver's defaults.

The driver is named by path in a DSN-less connection string (no odbc.ini).
Its defaults: UseServerSidePrepare=1 (a statement with `?` parameters is
parsed on the server as a named `_PLAN0x...` statement of its statement
handle and bound/executed from there), autocommit off (pyodbc's default: the
driver sends BEGIN before the first statement of a transaction) and
statement-level rollback (Protocol=7.4, rollback on error 2): inside a
transaction every statement is wrapped in SAVEPOINT / RELEASE and an error
rolls back to the savepoint, so the transaction goes on after an error.
SQLCancel (cursor.cancel()) sends a CancelRequest.  ODBC has no COPY and no
notification API, so those scenarios are not here.
"""

import datetime
import decimal
import threading
import time
import uuid

import pytest

from drivers import direct
from conftest import PASSWORDS, pg_super, unique

pyodbc = pytest.importorskip(
    "pyodbc", reason="pyodbc is not installed (Debian package python3-pyodbc, scripts/deps.sh)")

DRIVER_PATHS = ("/usr/lib/x86_64-linux-gnu/odbc/psqlodbcw.so",
                "/usr/lib/aarch64-linux-gnu/odbc/psqlodbcw.so")

POOL_ENV = {"DB_POOL_SIZE": "4", "DB_MAX_OVERFLOW": "2", "DB_POOL_TIMEOUT": "20"}

TYPES_TABLE = ("id int primary key, i4 int, i8 bigint, n numeric, t text, b bytea, bo bool, "
               "tz timestamptz, d date, j json, jb jsonb, ai int[], at text[], u uuid, f8 float8")


@pytest.fixture(scope="module")
def driver():
    import os

    for p in DRIVER_PATHS:
        if os.path.exists(p):
            return p
    pytest.skip("psqlodbcw.so not found (Debian packages odbc-postgresql unixodbc, "
                "scripts/deps.sh)")


def connect(driver, ep, autocommit=False):
    cs = "Driver=%s;Server=%s;Port=%d;Database=fnx;Uid=fnx;Pwd=%s;" % (
        driver, ep.host, ep.port, PASSWORDS["fnx"])
    return pyodbc.connect(cs, autocommit=autocommit, timeout=10)


def attempt(fn):
    try:
        r = fn()
        return "ok" if r is None or isinstance(r, pyodbc.Cursor) else r
    except pyodbc.Error as e:
        return "error " + e.args[0]


def norm(v):
    if isinstance(v, (list, tuple, pyodbc.Row)):
        return [norm(x) for x in v]
    if isinstance(v, (bytes, bytearray)):
        return bytes(v).hex()
    if isinstance(v, decimal.Decimal):
        return "{:f}".format(v)
    if isinstance(v, (datetime.date, datetime.datetime, uuid.UUID)):
        return v.isoformat() if not isinstance(v, uuid.UUID) else str(v)
    return v


def both(driver, px, fn, make_table=None, cols=None):
    outs = []
    for ep in (px, direct()):
        t = make_table(cols) if cols else None
        outs.append(fn(driver, ep, t))
    return outs


# ---------------------------------------------------------------- scenarios


def scenario_simple(driver, ep, t):
    out = {}
    c = connect(driver, ep)
    cur = c.cursor()
    cur.execute("INSERT INTO %s VALUES (1, 'one')" % t)
    cur.execute("INSERT INTO %s VALUES (2, 'two')" % t)
    cur.execute("UPDATE %s SET v = v || '!' WHERE id = 2" % t)
    out["delete"] = cur.execute("DELETE FROM %s WHERE id > 100" % t).rowcount
    c.commit()
    out["rows"] = norm(cur.execute("SELECT id, v FROM %s ORDER BY id" % t).fetchall())
    cur.execute("SELECT 1 AS a, 'x'::text AS b, NULL::int AS c, 2.5::float8 AS d")
    out["columns"] = [d[0] for d in cur.description]
    out["literal"] = norm(cur.fetchall())
    out["div0"] = attempt(lambda: cur.execute("SELECT 1/0"))
    out["user"] = norm(cur.execute("SELECT current_user, ?::text || '✓'", "ü").fetchone())
    c.rollback()
    # the same parameterised statement many times on one statement handle
    out["repeat"] = [cur.execute("SELECT ?::int * 2", i).fetchone()[0] for i in range(20)]
    c.commit()
    c.close()
    return out


def scenario_types(driver, ep, t):
    out = {}
    c = connect(driver, ep)
    cur = c.cursor()
    ins = "INSERT INTO %s VALUES (?, ?, ?, ?, ?, ?, ?, ?::timestamptz, ?, ?, ?, ?::int[], " \
          "?::text[], ?::uuid, ?)" % t
    for i in range(1, 7):
        cur.execute(ins, i, -7 * i, -9007199254740993 * i,
                    decimal.Decimal("12345678901234567890.123456781"),
                    "héllo 'wörld' ✓ %d 日本" % i, b"\x00\x01\x02'\\\xfe\xff" + bytes([i]),
                    i % 2 == 0, "2024-02-29 1%d:34:56.123456+00" % i,
                    datetime.date(1999, 12, 31) - datetime.timedelta(i),
                    '{"a": [1, 2, {"b": null}], "u": "ü", "i": %d}' % i,
                    '{"k": "v", "n": %d}' % i, "{1,-2,%d}" % i,
                    '{a,"b c","d\\"e","{x}","NULL"}', "0e9d8c1f-3a6b-4a43-9f57-0c1b8e2a7d56",
                    1.5 * i)
    cur.execute("INSERT INTO %s (id) VALUES (?)" % t, 7)
    cur.execute("UPDATE %s SET ai = ?::int[], jb = ?::jsonb WHERE id = ?" % t,
                "{1,NULL,3}", '{"ключ": [true, null]}', 6)
    c.commit()
    rows = cur.execute("SELECT * FROM %s WHERE id >= ? ORDER BY id" % t, 0).fetchall()
    out["rows"] = norm(rows)
    out["rows_unprepared"] = norm(cur.execute("SELECT * FROM %s ORDER BY id" % t).fetchall())
    out["echo"] = norm(cur.execute(
        "SELECT ?::numeric * 2, ?::text || '✓', ?::jsonb, ?::int IS NULL, ?::bytea",
        "0.000000000100000000000000000001", "ünï", '{"x": [1, 2.5, "y"]}', None,
        b"\x00\xff").fetchone())
    c.rollback()
    c.close()
    return out


def scenario_transactions(driver, ep, t):
    out = {}
    c = connect(driver, ep)
    cur = c.cursor()
    ins = "INSERT INTO %s (id, v) VALUES (?, ?)" % t
    for i in range(6):
        cur.execute(ins, i, "tx%d" % i)
        cur.execute("SELECT count(*) FROM %s" % t).fetchone()
        (c.commit if i % 2 == 0 else c.rollback)()
    # statement-level rollback: an error inside a transaction rolls back that
    # statement only (psqlODBC's savepoint), the transaction goes on
    cur.execute(ins, 100, "before error")
    out["mid_tx_error"] = attempt(lambda: cur.execute("SELECT 1/?::int", 0))
    out["after_error_in_tx"] = attempt(lambda: cur.execute(ins, 101, "after error in tx"))
    out["dup_in_tx"] = attempt(lambda: cur.execute(ins, 0, "dup"))
    cur.execute(ins, 103, "after dup in tx")
    c.commit()
    cur.execute(ins, 104, "rolled back")
    out["mid_tx_error_simple"] = attempt(lambda: cur.execute("SELECT 1/0"))
    c.rollback()
    cur.execute(ins, 105, "after rollback")
    c.commit()
    a = connect(driver, ep, autocommit=True)
    acur = a.cursor()
    out["dup_autocommit"] = attempt(lambda: acur.execute(ins, 0, "dup"))
    try:
        acur.execute(ins, 1 - 1, "dup")
    except pyodbc.IntegrityError as e:
        out["dup_class"] = type(e).__name__ + " " + e.args[0]
    acur.execute(ins, 300, "autocommit")
    a.close()
    out["rows"] = norm(cur.execute("SELECT id, v FROM %s ORDER BY id" % t).fetchall())
    c.rollback()
    c.close()
    return out


def scenario_large(driver, ep, t, n=200000):
    import hashlib

    out = {}
    c = connect(driver, ep)
    cur = c.cursor()
    for name, args in (("param", (n,)), ("literal", ())):
        q = "SELECT g, md5(g::text), g::numeric / 7 FROM generate_series(1, %s) g" % (
            "?::int" if args else str(n))
        cur.execute(q, *args)
        h = hashlib.md5()
        cnt = total = 0
        while True:
            batch = cur.fetchmany(5000)
            if not batch:
                break
            for g, m, qq in batch:
                cnt += 1
                total += g
                if g % 1000 == 0:
                    h.update(("%s|%s;" % (m, norm(qq))).encode())
        out[name] = [cnt, total, h.hexdigest()]
    c.rollback()
    out["after"] = cur.execute("SELECT ?::int + 1", 41).fetchone()[0]
    c.close()
    return out


def scenario_timeout(driver, ep, t):
    out = {}
    c = connect(driver, ep)
    cur = c.cursor()
    cur.execute("SET statement_timeout = '300ms'")
    c.commit()
    t0 = time.monotonic()
    out["timeout"] = attempt(lambda: cur.execute("SELECT pg_sleep(?)", 5.0))
    out["fast"] = time.monotonic() - t0 < 4
    c.rollback()
    shows = set()
    for _ in range(5):
        shows.add(cur.execute("SHOW statement_timeout").fetchone()[0])
        c.commit()
    out["show"] = sorted(shows)
    out["again"] = attempt(lambda: cur.execute("SELECT pg_sleep(1)"))
    c.rollback()
    cur.execute("SET LOCAL statement_timeout = '5s'")
    out["local_longer"] = attempt(lambda: cur.execute("SELECT pg_sleep(0.5)"))
    c.commit()
    out["show_after_local"] = cur.execute("SHOW statement_timeout").fetchone()[0]
    c.commit()
    c2 = connect(driver, ep)
    out["other_conn"] = c2.cursor().execute("SHOW statement_timeout").fetchone()[0]
    c2.close()
    c.close()
    return out


def scenario_shape(driver, ep, t):
    """A server-prepared `SELECT *` (one statement handle, same SQL text:
    pyodbc re-executes the prepared statement) while another connection
    changes the table."""
    steps = []
    c = connect(driver, ep, autocommit=True)
    other = connect(driver, ep, autocommit=True)
    cur = c.cursor()
    q = "SELECT * FROM %s WHERE id = ?" % t

    def run(cursor):
        try:
            cursor.execute(q, 1)
            steps.append([[d[0] for d in cursor.description], norm(cursor.fetchall())])
        except pyodbc.Error as e:
            steps.append("error " + e.args[0])

    run(cur)
    run(cur)
    run(other.cursor())
    other.cursor().execute("ALTER TABLE %s ADD COLUMN w int DEFAULT 7" % t)
    for _ in range(3):
        run(cur)
    run(c.cursor())  # a new statement handle prepares again
    other.cursor().execute("ALTER TABLE %s DROP COLUMN v" % t)
    other.cursor().execute("ALTER TABLE %s ADD COLUMN v text DEFAULT 'new'" % t)
    for _ in range(2):
        run(cur)
    c.close()
    other.close()
    return steps


# ---------------------------------------------------------------- tests


def test_odbc_simple_queries_and_a_repeated_prepared_statement_match_postgres(
        proxy, make_table, driver):
    out, want = both(driver, proxy(), scenario_simple, make_table, "id int primary key, v text")
    assert out == want
    assert out == {"delete": 0, "rows": [[1, "one"], [2, "two!"]],
                   "columns": ["a", "b", "c", "d"], "literal": [[1, "x", None, 2.5]],
                   "div0": "error 22012", "user": ["fnx", "ü✓"],
                   "repeat": [2 * i for i in range(20)]}


def test_odbc_parameters_and_results_of_many_types_round_trip_like_postgres(
        proxy, make_table, driver):
    out, want = both(driver, proxy(), scenario_types, make_table, TYPES_TABLE)
    assert out == want
    rows = out["rows"]
    assert rows == out["rows_unprepared"]
    assert len(rows) == 7
    assert rows[3][:7] == [
        4, -28, -36028797018963972, "12345678901234567890.123456781",
        "héllo 'wörld' ✓ 4 日本", "000102275cfeff04", "1"]
    assert rows[3][9:14] == [
        '{"a": [1, 2, {"b": null}], "u": "ü", "i": 4}', '{"k": "v", "n": 4}', "{1,-2,4}",
        '{a,"b c","d\\"e","{x}","NULL"}', "0E9D8C1F-3A6B-4A43-9F57-0C1B8E2A7D56"]  # as a GUID
    assert rows[5][10:12] == ['{"ключ": [true, null]}', "{1,NULL,3}"]
    assert rows[6] == [7] + [None] * 14
    assert out["echo"] == ["0.000000000200000000000000000002", "ünï✓", '{"x": [1, 2.5, "y"]}',
                           "1", "00ff"]  # BoolsAsChar


def test_odbc_10_connections_reuse_server_prepared_statements_over_6_server_connections(
        proxy, make_table, driver):
    px = proxy(env=POOL_ENV)
    t = make_table("id int primary key, k int, v text")
    errors = []
    rounds = 30

    def worker(w):
        try:
            c = connect(driver, px)
            ins, sel, cnt = c.cursor(), c.cursor(), c.cursor()  # one prepared statement each
            for r in range(rounds):
                i = w * 1000 + r
                ins.execute("INSERT INTO %s (id, k, v) VALUES (?, ?, ?)" % t, i, r,
                            "w%d-r%d" % (w, r))
                got = norm(sel.execute("SELECT v, k FROM %s WHERE id = ?" % t, i).fetchone())
                if got != ["w%d-r%d" % (w, r), r]:
                    errors.append("select %d: %r" % (i, got))
                c.commit()
                got = norm(cnt.execute("SELECT count(*), coalesce(sum(k), 0) FROM %s "
                                       "WHERE id >= ? AND id < ?" % t,
                                       w * 1000, w * 1000 + 1000).fetchone())
                if got != [r + 1, r * (r + 1) // 2]:
                    errors.append("count w%d r%d: %r" % (w, r, got))
                c.commit()
            c.close()
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append("worker %d: %r" % (w, e))

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(10)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(50)
    assert errors == []
    with pg_super() as c:
        assert c.execute("SELECT count(*), sum(k) FROM %s" % t).fetchone() == (
            10 * rounds, 10 * sum(range(rounds)))


def test_odbc_statement_level_rollback_savepoints_keep_the_transaction_after_errors(
        proxy, make_table, driver):
    out, want = both(driver, proxy(), scenario_transactions, make_table,
                     "id int primary key, v text")
    assert out == want
    assert out["mid_tx_error"] == "error 22012"
    assert out["after_error_in_tx"] == "ok"
    assert out["dup_in_tx"] == "error 23505" and out["dup_autocommit"] == "error 23505"
    assert out["dup_class"] == "IntegrityError 23505"
    assert out["mid_tx_error_simple"] == "error 22012"
    assert out["rows"] == [[0, "tx0"], [2, "tx2"], [4, "tx4"], [100, "before error"],
                           [101, "after error in tx"], [103, "after dup in tx"],
                           [105, "after rollback"], [300, "autocommit"]]


@pytest.mark.timeout_s(60)
def test_odbc_200k_rows_with_and_without_parameters(proxy, driver):
    out = scenario_large(driver, proxy(), None)
    assert out["param"][:2] == [200000, 200000 * 200001 // 2]
    assert out["literal"] == out["param"]
    assert out["after"] == 42
    assert scenario_large(driver, direct(), None) == out


def test_odbc_sqlcancel_stops_a_running_pg_sleep(proxy, driver):
    px = proxy()
    marker = unique("odbccancel")
    c = connect(driver, px, autocommit=True)
    cur = c.cursor()
    threading.Timer(0.7, cur.cancel).start()
    t0 = time.monotonic()
    res = attempt(lambda: cur.execute("SELECT pg_sleep(20) /* %s */" % marker))
    took = time.monotonic() - t0
    assert res == "error 57014" and took < 8
    assert cur.execute("SELECT ?::int * 2", 21).fetchone()[0] == 42
    with pg_super() as s:
        assert s.execute("SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
                         "AND query LIKE %s", ("%" + marker + "%",)).fetchone()[0] == 0
    c.close()


def test_odbc_session_statement_timeout_follows_the_client_across_transactions(
        proxy, driver):
    out, want = both(driver, proxy(), scenario_timeout)
    assert out == want
    assert out == {"timeout": "error 57014", "fast": True, "show": ["300ms"],
                   "again": "error 57014", "local_longer": "ok", "show_after_local": "300ms",
                   "other_conn": "0"}


@pytest.mark.timeout_s(60)
def test_odbc_12_threads_mixed_transactions_see_their_own_writes(proxy, make_table, driver):
    px = proxy(env=POOL_ENV)
    t = make_table("id int primary key, n int, v text")
    errors = []
    rounds = 30

    def worker(w):
        try:
            c = connect(driver, px)
            cur = c.cursor()
            cur.execute("INSERT INTO %s (id, n, v) VALUES (?, 0, '')" % t, w)
            c.commit()
            want = 0
            for r in range(rounds):
                n, v = cur.execute("UPDATE %s SET n = n + 1, v = v || ? WHERE id = ? "
                                   "RETURNING n, v" % t, str(r % 10), w).fetchone()
                if n != want + 1 or len(v) != want + 1:
                    errors.append("w%d r%d: %r %r want %d" % (w, r, n, v, want + 1))
                if r % 4 == 3:
                    c.rollback()
                else:
                    c.commit()
                    want += 1
                got = cur.execute("SELECT n FROM %s WHERE id = ?" % t, w).fetchone()[0]
                if got != want:
                    errors.append("read w%d r%d: %r want %d" % (w, r, got, want))
                c.commit()
            c.close()
        except Exception as e:  # noqa: BLE001
            errors.append("worker %d: %r" % (w, e))

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(12)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(50)
    assert errors == []
    committed = rounds - rounds // 4
    with pg_super() as c:
        assert c.execute("SELECT id, n, length(v) FROM %s ORDER BY id" % t).fetchall() == [
            (w, committed, committed) for w in range(12)]


def test_odbc_server_prepared_select_star_after_alter_table_ends_like_postgres(
        proxy, make_table, driver):
    def table():
        t = make_table("id int, v text")
        with pg_super() as c:
            c.execute("INSERT INTO %s VALUES (1, 'one')" % t)
        return t

    want = scenario_shape(driver, direct(), table())
    one = [["id", "v"], [[1, "one"]]]
    assert want[:3] == [one] * 3
    assert want[-1] == [["id", "w", "v"], [[1, 7, "new"]]] or want[-1].startswith("error")
    # two server connections at least: see
    # test_odbc_two_connections_share_one_server_connection_between_transactions
    for env in ({"DB_POOL_SIZE": "2", "DB_MAX_OVERFLOW": "0", "DB_POOL_TIMEOUT": "20"},
                POOL_ENV):
        out = scenario_shape(driver, proxy(env=env), table())
        assert out == want, "through the proxy with %r" % env


def test_odbc_two_connections_share_one_server_connection_between_transactions(
        proxy, driver):
    px = proxy(env={"DB_POOL_SIZE": "1", "DB_MAX_OVERFLOW": "0", "DB_POOL_TIMEOUT": "3"})
    a = connect(driver, px, autocommit=True)
    try:
        b = connect(driver, px, autocommit=True)
        got = [cur.execute("SELECT ?::int", i).fetchone()[0]
               for i, cur in enumerate((a.cursor(), b.cursor(), a.cursor()))]
        assert got == [0, 1, 2]
        b.close()
    finally:
        a.close()
