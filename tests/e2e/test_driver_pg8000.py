"""pg8000 (pure-Python, Debian's python3-pg8000 1.10.6) through the proxy in
transaction pooling mode, with the driver's defaults.

pg8000 1.10 runs every statement, with or without parameters, through the
extended protocol with a Flush after each message: the first run of a
(query, parameter types) pair sends Parse(pg8000_statement_<n>) + Describe +
Sync and caches the statement and its row description for the connection's
life (it never closes one; a DDL command *on this connection* empties the
cache); every run binds a named portal pg8000_portal_<n> and Executes it 100
rows at a time, then closes it with Close + Sync.  DB-API autocommit is off:
the first statement sends `begin transaction` first, and a result longer than
100 rows is read through the suspended portal inside that transaction.  COPY
goes through execute(..., stream=), notifications land in conn.notifies while
any query runs.  This version has no SCRAM (the proxy runs with
AUTH_TYPE=md5 and the role is fnx_md5, md5 on the server as well), no
pg8000.native and no cancel API.
"""

import datetime
import decimal
import hashlib
import io
import re
import threading
import time
import uuid

import pytest

from drivers import direct
from conftest import PASSWORDS, pg_super, unique

pg8000 = pytest.importorskip(
    "pg8000", reason="pg8000 is not installed (Debian package python3-pg8000, scripts/deps.sh)")

USER = "fnx_md5"
PROXY_ENV = {"AUTH_TYPE": "md5"}
# more client connections than server connections: every named statement
# meets several server connections
POOL_ENV = dict(PROXY_ENV, DB_POOL_SIZE="4", DB_MAX_OVERFLOW="2", DB_POOL_TIMEOUT="20")

TYPES_TABLE = ("id int primary key, i4 int, i8 bigint, n numeric, t text, b bytea, bo bool, "
               "tz timestamptz, d date, j json, jb jsonb, ai int[], at text[], u uuid, f8 float8")


pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def colnames(cur):
    return [d[0].decode() if isinstance(d[0], bytes) else d[0] for d in cur.description]


def connect(ep, autocommit=False):
    c = pg8000.connect(user=USER, password=PASSWORDS[USER], host=ep.host, port=ep.port,
                       database="fnx", timeout=30)
    c.autocommit = autocommit
    return c


def sqlstate(e):
    """The SQLSTATE of a pg8000 ProgrammingError (args: S, V, C, M, ...)."""
    for a in getattr(e, "args", ())[1:4]:
        if isinstance(a, str) and re.fullmatch(r"[0-9A-Z]{5}", a) and re.search(r"\d", a):
            return a
    return "%s: %s" % (type(e).__name__, e)


def attempt(fn):
    try:
        return fn()
    except pg8000.Error as e:
        return "error " + sqlstate(e)


def norm(v):
    """Plain JSON-like values for comparisons."""
    if isinstance(v, (list, tuple)):
        return [norm(x) for x in v]
    if isinstance(v, (bytes, bytearray, memoryview)):
        return bytes(v).hex()
    if isinstance(v, datetime.datetime):
        return v.astimezone(datetime.timezone.utc).isoformat()
    if isinstance(v, decimal.Decimal):
        return "{:f}".format(v)
    if isinstance(v, (datetime.date, uuid.UUID)):
        return str(v)
    if isinstance(v, dict):
        return {k: norm(x) for k, x in v.items()}
    return v


def both(px, fn, make_table=None, cols=None, **kw):
    """fn(endpoint, table) through px and directly (each with a fresh table)."""
    outs = []
    for ep in (px, direct()):
        t = make_table(cols) if cols else None
        outs.append(fn(ep, t, **kw))
    return outs


# ---------------------------------------------------------------- scenarios


def scenario_simple(ep, t):
    out = {}
    c = connect(ep)
    cur = c.cursor()
    cur.execute("INSERT INTO %s VALUES (1, 'one')" % t)
    cur.execute("INSERT INTO %s VALUES (2, 'two')" % t)
    cur.execute("UPDATE %s SET v = v || '!' WHERE id = 2" % t)
    cur.execute("DELETE FROM %s WHERE id > 100" % t)
    out["delete"] = cur.rowcount
    c.commit()
    cur.execute("SELECT id, v FROM %s ORDER BY id" % t)
    out["rows"] = norm(cur.fetchall())
    out["columns"] = colnames(cur)
    cur.execute("SELECT 1 AS a, 'x'::text AS b, NULL::int AS c, 2.5::float8 AS d")
    out["literal"] = norm(cur.fetchall())
    out["div0"] = attempt(lambda: cur.execute("SELECT 1/0"))
    c.rollback()
    cur.execute("SELECT current_user, %s::text || '✓'", ("ü",))
    out["user"] = norm(cur.fetchone())
    c.rollback()
    # the same statement text run many times: one cached named statement
    out["repeat"] = []
    for i in range(20):
        cur.execute("SELECT %s::int * 2", (i,))
        out["repeat"].append(cur.fetchone()[0])
    c.commit()
    c.close()
    return out


def scenario_types(ep, t):
    out = {}
    c = connect(ep)
    cur = c.cursor()
    ins = "INSERT INTO %s VALUES (%%s, %%s, %%s, %%s, %%s, %%s, %%s, %%s, %%s, %%s, %%s, " \
          "%%s, %%s, %%s, %%s)" % t
    ts = datetime.datetime(2024, 2, 29, 10, 34, 56, 123456, tzinfo=pg8000.utc)
    u = uuid.UUID("0e9d8c1f-3a6b-4a43-9f57-0c1b8e2a7d56")
    for i in range(1, 7):
        cur.execute(ins, (
            i, -7 * i, -9007199254740993 * i, decimal.Decimal("12345678901234567890.123456781"),
            "héllo 'wörld' ✓ %d 日本" % i, b"\x00\x01\x02'\\\xfe\xff" + bytes([i]), i % 2 == 0,
            ts + datetime.timedelta(hours=i), datetime.date(1999, 12, 31) - datetime.timedelta(i),
            '{"a": [1, 2, {"b": null}], "u": "ü", "i": %d}' % i, '{"k": "v", "n": %d}' % i,
            [1, -2, i], ["a", "b c", 'd"e', "{x}", "NULL"], u, 1.5 * i))
    cur.execute("INSERT INTO %s (id) VALUES (%%s)" % t, (7,))
    cur.execute("UPDATE %s SET ai = %%s::int[], jb = %%s WHERE id = %%s" % t,
                ("{1,NULL,3}", '{"ключ": [true, null]}', 6))
    c.commit()
    cur.execute("SELECT * FROM %s WHERE id >= %%s ORDER BY id" % t, (0,))
    out["rows"] = norm(cur.fetchall())
    out["types"] = [d[1] for d in cur.description]
    cur.execute("SELECT %s::numeric * 2, %s::text || '✓', %s::jsonb, %s::int IS NULL, %s::bytea",
                ("0.000000000100000000000000000001", "ünï", '{"x": [1, 2.5, "y"]}', None,
                 b"\x00\xff"))
    out["echo"] = norm(cur.fetchone())
    cur.execute("SELECT %s, %s, %s, %s, %s", (True, 1.25, u, datetime.date(2000, 1, 2),
                                              decimal.Decimal("-1.50")))
    out["echo_typed"] = norm(cur.fetchone())
    c.rollback()
    c.close()
    return out


def scenario_transactions(ep, t):
    out = {}
    c = connect(ep)
    cur = c.cursor()
    ins = "INSERT INTO %s (id, v) VALUES (%%s, %%s)" % t
    for i in range(6):
        cur.execute(ins, (i, "tx%d" % i))
        cur.execute("SELECT count(*) FROM %s" % t)
        (c.commit if i % 2 == 0 else c.rollback)()
    cur.execute(ins, (100, "before error"))
    out["mid_tx_error"] = attempt(lambda: cur.execute("SELECT 1/%s::int", (0,)))
    out["in_failed_tx"] = attempt(lambda: cur.execute(ins, (101, "in failed tx")))
    c.rollback()
    cur.execute(ins, (102, "after rollback"))
    c.commit()
    out["dup"] = attempt(lambda: cur.execute(ins, (0, "dup")))
    out["commit_after_dup"] = attempt(c.commit)  # COMMIT of a failed transaction rolls back
    cur.execute(ins, (200, "outer"))
    cur.execute("SAVEPOINT s1")
    out["dup_in_savepoint"] = attempt(lambda: cur.execute(ins, (200, "dup")))
    cur.execute("ROLLBACK TO SAVEPOINT s1")
    cur.execute(ins, (201, "after savepoint"))
    c.commit()
    a = connect(ep, autocommit=True)
    out["dup_autocommit"] = attempt(lambda: a.cursor().execute(ins, (1 - 1, "dup")))
    acur = a.cursor()
    acur.execute(ins, (300, "autocommit"))
    a.close()
    cur.execute("SELECT id, v FROM %s ORDER BY id" % t)
    out["rows"] = norm(cur.fetchall())
    c.rollback()
    c.close()
    return out


def scenario_large(ep, t, n=200000):
    out = {}
    c = connect(ep)
    cur = c.cursor()
    cur.execute("SELECT g, md5(g::text), g::numeric / 7 FROM generate_series(1, %s::int) g",
                (n,))
    h = hashlib.md5()
    cnt = total = 0
    for g, m, q in cur:
        cnt += 1
        total += g
        if g % 1000 == 0:
            h.update(("%s|%s;" % (m, q)).encode())
    out["whole"] = [cnt, total, h.hexdigest()]
    # half a result, then a new statement on the same cursor: pg8000 leaves the
    # first portal suspended inside the transaction
    cur.execute("SELECT g FROM generate_series(1, %s::int) g", (n,))
    out["first"] = [cur.fetchone()[0] for _ in range(150)][-1]
    cur.execute("SELECT %s::int + 1", (41,))
    out["after"] = cur.fetchone()[0]
    c.commit()
    # autocommit: more than 100 rows cannot be read (the portal ends with the
    # implicit transaction); the connection goes on
    a = connect(ep, autocommit=True)
    acur = a.cursor()
    try:
        acur.execute("SELECT g FROM generate_series(1, 1000) g")
        out["autocommit_large"] = "no error"
    except pg8000.InterfaceError as e:
        out["autocommit_large"] = "InterfaceError " + str(e)[:40]
    acur.execute("SELECT count(*) FROM generate_series(1, 1000)")
    out["autocommit_after"] = acur.fetchone()[0]
    a.close()
    c.close()
    return out


def copy_data(n=20000):
    lines = []
    for i in range(n):
        v = "\\N" if i % 100 == 0 else "row %d ✓ tab\\there" % i
        lines.append("%d\t%s\t\\\\x%02x%02x\n" % (i, v, i & 255, (i >> 8) & 255))
    return "".join(lines).encode()


def scenario_copy_in(ep, t):
    out = {}
    data = copy_data()
    c = connect(ep)
    cur = c.cursor()
    cur.execute("COPY %s (id, v, b) FROM STDIN" % t, stream=io.BytesIO(data))
    out["copy_in"] = cur.rowcount
    c.commit()
    first5 = b"".join(data.splitlines(True)[:5])
    out["copy_dup"] = attempt(lambda: cur.execute("COPY %s (id, v, b) FROM STDIN" % t,
                                                  stream=io.BytesIO(first5)))
    c.rollback()
    a = connect(ep, autocommit=True)
    acur = a.cursor()
    acur.execute("COPY %s (id, v, b) FROM STDIN" % t, stream=io.BytesIO(b"50000\tac\t\\N\n"))
    out["copy_in_autocommit"] = acur.rowcount
    acur.execute("SELECT count(*), count(v), md5(string_agg(v, ',' ORDER BY id)) FROM %s" % t)
    out["after"] = list(acur.fetchone())
    a.close()
    cur.execute("SELECT %s::int", (1,))
    out["same_conn"] = cur.fetchone()[0]
    c.commit()
    c.close()
    return out


def scenario_copy_out(ep, t):
    out = {}
    data = copy_data()
    with pg_super() as s:
        with s.cursor().copy("COPY %s (id, v, b) FROM STDIN" % t) as cp:
            cp.write(data)
    c = connect(ep)
    cur = c.cursor()
    buf = io.BytesIO()
    cur.execute("COPY (SELECT * FROM %s ORDER BY id) TO STDOUT" % t, stream=buf)
    out["copy_out_rows"] = cur.rowcount
    out["copy_out_same"] = buf.getvalue() == data
    out["copy_out_error"] = attempt(
        lambda: cur.execute("COPY (SELECT 1/0) TO STDOUT", stream=io.BytesIO()))
    c.rollback()
    cur.execute("SELECT count(*), count(v) FROM %s" % t)
    out["after"] = list(cur.fetchone())
    c.commit()
    a = connect(ep, autocommit=True)
    buf = io.BytesIO()
    a.cursor().execute("COPY (SELECT id FROM %s WHERE id < 3 ORDER BY id) TO STDOUT" % t,
                       stream=buf)
    out["autocommit_copy_out"] = buf.getvalue().decode()
    a.close()
    c.close()
    return out


def scenario_timeout(ep, t):
    out = {}
    c = connect(ep)
    cur = c.cursor()
    cur.execute("SET statement_timeout = '300ms'")
    c.commit()
    t0 = time.monotonic()
    out["timeout"] = attempt(lambda: cur.execute("SELECT pg_sleep(%s)", (5.0,)))
    out["fast"] = time.monotonic() - t0 < 4
    c.rollback()
    shows = set()
    for _ in range(5):
        cur.execute("SHOW statement_timeout")
        shows.add(cur.fetchone()[0])
        c.commit()
    out["show"] = sorted(shows)
    out["again"] = attempt(lambda: cur.execute("SELECT pg_sleep(1)"))
    c.rollback()
    cur.execute("SET LOCAL statement_timeout = '5s'")
    out["local_longer"] = attempt(lambda: cur.execute("SELECT pg_sleep(0.5)") or "ok")
    c.commit()
    cur.execute("SHOW statement_timeout")
    out["show_after_local"] = cur.fetchone()[0]
    c.commit()
    c2 = connect(ep)
    cur2 = c2.cursor()
    cur2.execute("SHOW statement_timeout")
    out["other_conn"] = cur2.fetchone()[0]
    c2.close()
    c.close()
    return out


def scenario_shape(ep, t):
    """A cached `SELECT *` of one connection while another changes the
    table: pg8000 keeps its cached statement and row description (only DDL
    on the same connection clears its cache)."""
    steps = []
    c = connect(ep, autocommit=True)
    other = connect(ep, autocommit=True)
    q = "SELECT * FROM %s WHERE id = %%s" % t

    def run(conn):
        cur = conn.cursor()
        try:
            cur.execute(q, (1,))
            steps.append([colnames(cur), norm(cur.fetchall())])
        except pg8000.Error as e:
            steps.append("error " + sqlstate(e))

    run(c)
    run(c)
    run(other)
    other.cursor().execute("ALTER TABLE %s ADD COLUMN w int DEFAULT 7" % t)
    for _ in range(3):
        run(c)
    run(other)  # the ALTER emptied other's cache
    c.cursor().execute("ALTER TABLE %s DROP COLUMN v" % t)  # empties c's cache
    run(c)
    other.cursor().execute("ALTER TABLE %s ADD COLUMN v text DEFAULT 'new'" % t)
    for _ in range(2):
        run(c)
    c.close()
    other.close()
    return steps


def scenario_listen(ep, ch):
    out = {}
    listener = connect(ep, autocommit=True)
    lcur = listener.cursor()
    lcur.execute("LISTEN " + ch)
    n = connect(ep)
    ncur = n.cursor()
    for i in range(5):
        ncur.execute("SELECT pg_notify(%s, %s)", (ch, "payload %d" % i))
        n.commit()
    ncur.execute("SELECT pg_notify(%s, 'rolled back')", (ch,))
    n.rollback()
    ncur.execute("NOTIFY %s, 'last'" % ch)
    n.commit()
    deadline = time.monotonic() + 5
    while len(listener.notifies) < 6 and time.monotonic() < deadline:
        lcur.execute("SELECT 1")
        time.sleep(0.05)
    out["notifications"] = [cond for _pid, cond in listener.notifies]
    out["from_pids"] = len({pid for pid, _ in listener.notifies}) >= 1
    lcur.execute("SELECT %s::int", (3,))
    out["after"] = lcur.fetchone()[0]
    n.close()
    listener.close()
    return out


# ---------------------------------------------------------------- tests


def test_pg8000_simple_queries_and_repeated_statement_match_postgres(proxy, make_table):
    out, want = both(proxy(env=PROXY_ENV), scenario_simple, make_table,
                     "id int primary key, v text")
    assert out == want
    assert out == {"delete": 0, "rows": [[1, "one"], [2, "two!"]], "columns": ["id", "v"],
                   "literal": [[1, "x", None, 2.5]], "div0": "error 22012",
                   "user": ["fnx_md5", "ü✓"], "repeat": [2 * i for i in range(20)]}


def test_pg8000_parameters_and_results_of_many_types_round_trip_like_postgres(
        proxy, make_table):
    out, want = both(proxy(env=PROXY_ENV), scenario_types, make_table, TYPES_TABLE)
    assert out == want
    rows = out["rows"]
    assert len(rows) == 7
    assert rows[3] == [
        4, -28, -36028797018963972, "12345678901234567890.123456781",
        "héllo 'wörld' ✓ 4 日本", "000102275cfeff04", True, "2024-02-29T14:34:56.123456+00:00",
        "1999-12-27", {"a": [1, 2, {"b": None}], "u": "ü", "i": 4}, {"k": "v", "n": 4},
        [1, -2, 4], ["a", "b c", 'd"e', "{x}", "NULL"], "0e9d8c1f-3a6b-4a43-9f57-0c1b8e2a7d56",
        6.0]
    assert rows[5][10:12] == [{"ключ": [True, None]}, [1, None, 3]]
    assert rows[6] == [7] + [None] * 14
    assert out["echo"] == ["0.000000000200000000000000000002", "ünï✓", {"x": [1, 2.5, "y"]},
                           True, "00ff"]
    assert out["echo_typed"] == [True, 1.25, "0e9d8c1f-3a6b-4a43-9f57-0c1b8e2a7d56",
                                 "2000-01-02", "-1.50"]


def test_pg8000_10_connections_reuse_cached_named_statements_over_6_server_connections(
        proxy, make_table):
    px = proxy(env=POOL_ENV)
    t = make_table("id int primary key, k int, v text")
    errors = []
    rounds = 40

    def worker(w):
        try:
            c = connect(px)
            cur = c.cursor()
            for r in range(rounds):
                i = w * 1000 + r
                cur.execute("INSERT INTO %s (id, k, v) VALUES (%%s, %%s, %%s)" % t,
                            (i, r, "w%d-r%d" % (w, r)))
                cur.execute("SELECT v, k FROM %s WHERE id = %%s" % t, (i,))
                got = cur.fetchone()
                if got != ["w%d-r%d" % (w, r), r]:
                    errors.append("select %d: %r" % (i, got))
                c.commit()
                cur.execute("SELECT count(*), coalesce(sum(k), 0) FROM %s "
                            "WHERE id >= %%s AND id < %%s" % t, (w * 1000, w * 1000 + 1000))
                got = cur.fetchone()
                if got != [r + 1, r * (r + 1) // 2]:
                    errors.append("count w%d r%d: %r" % (w, r, got))
                cur.execute("SELECT %s::int + %s::int, %s::text", (w, r, "x"))
                if cur.fetchone() != [w + r, "x"]:
                    errors.append("add w%d r%d" % (w, r))
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


def test_pg8000_transactions_error_mid_transaction_rollback_savepoint_and_23505(
        proxy, make_table):
    out, want = both(proxy(env=PROXY_ENV), scenario_transactions, make_table,
                     "id int primary key, v text")
    assert out == want
    assert out["mid_tx_error"] == "error 22012"
    assert out["in_failed_tx"] == "error 25P02"
    assert out["dup"] == "error 23505" and out["dup_autocommit"] == "error 23505"
    assert out["dup_in_savepoint"] == "error 23505"
    assert out["rows"] == [[0, "tx0"], [2, "tx2"], [4, "tx4"], [102, "after rollback"],
                           [200, "outer"], [201, "after savepoint"], [300, "autocommit"]]


@pytest.mark.timeout_s(60)
def test_pg8000_200k_rows_through_a_suspended_portal_100_rows_at_a_time(proxy):
    out = scenario_large(proxy(env=PROXY_ENV), None)
    assert out["whole"][:2] == [200000, 200000 * 200001 // 2]
    assert out["first"] == 150 and out["after"] == 42
    assert out["autocommit_large"].startswith("InterfaceError")
    assert out["autocommit_after"] == 1000
    assert scenario_large(direct(), None) == out


def test_pg8000_copy_out_through_the_extended_protocol_and_a_failing_copy_out(
        proxy, make_table):
    out, want = both(proxy(env=PROXY_ENV), scenario_copy_out, make_table,
                     "id int primary key, v text, b bytea")
    assert out == want
    assert out == {"copy_out_rows": 20000, "copy_out_same": True,
                   "copy_out_error": "error 22012", "after": [20000, 19800],
                   "autocommit_copy_out": "0\n1\n2\n"}


def test_pg8000_copy_in_through_the_extended_protocol_then_more_statements(
        proxy, make_table):
    out, want = both(proxy(env=PROXY_ENV), scenario_copy_in, make_table,
                     "id int primary key, v text, b bytea")
    assert out == want
    assert out["copy_in"] == 20000 and out["copy_in_autocommit"] == 1
    assert out["copy_dup"] == "error 23505"
    assert out["after"][:2] == [20001, 19801] and out["same_conn"] == 1


def test_pg8000_session_statement_timeout_follows_the_client_across_transactions(proxy):
    out, want = both(proxy(env=PROXY_ENV), scenario_timeout)
    assert out == want
    assert out == {"timeout": "error 57014", "fast": True, "show": ["300ms"],
                   "again": "error 57014", "local_longer": "ok", "show_after_local": "300ms",
                   "other_conn": "0"}


@pytest.mark.timeout_s(60)
def test_pg8000_12_threads_mixed_transactions_see_their_own_writes(proxy, make_table):
    px = proxy(env=POOL_ENV)
    t = make_table("id int primary key, n int, v text")
    errors = []
    rounds = 30

    def worker(w):
        try:
            c = connect(px)
            cur = c.cursor()
            cur.execute("INSERT INTO %s (id, n, v) VALUES (%%s, 0, '')" % t, (w,))
            c.commit()
            want = 0
            for r in range(rounds):
                cur.execute("UPDATE %s SET n = n + 1, v = v || %%s WHERE id = %%s "
                            "RETURNING n, v" % t, (str(r % 10), w))
                n, v = cur.fetchone()
                if n != want + 1 or len(v) != want + 1:
                    errors.append("w%d r%d: %r %r want %d" % (w, r, n, v, want + 1))
                if r % 4 == 3:
                    c.rollback()
                else:
                    c.commit()
                    want += 1
                cur.execute("SELECT n FROM %s WHERE id = %%s" % t, (w,))
                got = cur.fetchone()[0]
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


def test_pg8000_cached_select_star_after_alter_table_ends_like_postgres(proxy, make_table):
    def table():
        t = make_table("id int, v text")
        with pg_super() as c:
            c.execute("INSERT INTO %s VALUES (1, 'one')" % t)
            c.execute("ALTER TABLE %s OWNER TO %s" % (t, USER))  # its ALTERs run as fnx_md5
        return t

    want = scenario_shape(direct(), table())
    one = [["id", "v"], [[1, "one"]]]
    assert want[:3] == [one] * 3
    assert want[3:6] == ["error 0A000"] * 3
    assert want[6] == [["id", "v", "w"], [[1, "one", 7]]]
    assert want[7] == [["id", "w"], [[1, 7]]]
    assert want[8:] == ["error 0A000"] * 2
    # two server connections: the smallest pool this driver works with (see
    # test_pg8000_an_idle_connection_holds_no_server_connection_after_login)
    for env in (dict(PROXY_ENV, DB_POOL_SIZE="2", DB_MAX_OVERFLOW="0", DB_POOL_TIMEOUT="20"),
                POOL_ENV):
        out = scenario_shape(proxy(env=env), table())
        assert out == want, "through the proxy with %r" % env


def test_pg8000_an_idle_connection_holds_no_server_connection_after_login(proxy):
    px = proxy(env=dict(PROXY_ENV, DB_POOL_SIZE="1", DB_MAX_OVERFLOW="0", DB_POOL_TIMEOUT="3"))
    a = connect(px, autocommit=True)
    b = connect(px, autocommit=True)  # connected, no statement yet
    try:
        got = []
        for c in (a, b, a):
            cur = c.cursor()
            cur.execute("SELECT %s::int", (len(got),))
            got.append(cur.fetchone()[0])
        assert got == [0, 1, 2]
    finally:
        for c in (a, b):
            try:
                c.close()
            except Exception:  # noqa: BLE001 - the proxy may have closed it
                pass


def test_pg8000_listen_collects_notifications_while_queries_run(proxy):
    ch = unique("p8kch")
    out = scenario_listen(proxy(env=PROXY_ENV), ch)
    assert out["notifications"] == [ch] * 6
    assert out["after"] == 3
