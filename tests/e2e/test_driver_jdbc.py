"""pgjdbc (the PostgreSQL JDBC driver, Debian's libpostgresql-jdbc-java)
through the proxy in transaction pooling mode, with the driver's defaults.

pgjdbc runs everything with the extended protocol; a PreparedStatement turns
into a named server-side statement (S_n) at its 5th execution
(prepareThreshold=5), after which it asks for binary results for some types;
setFetchSize inside a transaction reads through a named portal with Execute row
limits (PortalSuspended); batches pipeline many Bind/Execute pairs before one
Sync.  jdbc/JdbcClient.java (compiled here with javac into a temporary
directory) runs each scenario and prints a JSON summary; the tests check it
against fixed expectations and, where the answer is data, against the same
scenario run directly against PostgreSQL.
"""

import json
import os
import shutil
import subprocess

import pytest

import drivers
from drivers import direct
from conftest import DIRECT, HERE, PG_PORT, pg_env, pg_super, unique

JAR = os.environ.get("PX_PGJDBC_JAR", "/usr/share/java/postgresql.jar")
SOURCE = os.path.join(HERE, "jdbc", "JdbcClient.java")


@pytest.fixture(scope="module")
def jdbc_classes(tmp_path_factory):
    """JdbcClient compiled against pgjdbc; skips when Java or pgjdbc is missing."""
    for tool in ("java", "javac"):
        if shutil.which(tool) is None:
            pytest.skip("%s is not installed (a JDK 11+ is needed for the JDBC tests)" % tool)
    if not os.path.isfile(JAR):
        pytest.skip(
            "pgjdbc not found at %s: install the Debian package libpostgresql-jdbc-java "
            "(scripts/deps.sh) or set PX_PGJDBC_JAR" % JAR)
    out = str(tmp_path_factory.mktemp("jdbc-classes"))
    r = subprocess.run(["javac", "-d", out, "-cp", JAR, SOURCE],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, "javac JdbcClient.java failed:\n%s%s" % (r.stdout, r.stderr)
    return out


def run_java(classes, ep, scenario, timeout=45, **env):
    """Run one scenario against ep in its own JVM; return its JSON summary."""
    argv = ["java", "-Xmx512m", "-cp", classes + os.pathsep + JAR, "JdbcClient", scenario]
    return drivers.run_client(argv, ep, "JdbcClient", timeout, **env)[0]


@pytest.fixture
def jdbc_functions(stack):
    """A fresh prefix with FN_add, FN_out, FN_srf (functions) and FN_proc (a
    procedure with an INOUT parameter), owned by fnx, dropped at teardown."""
    fn = unique("jfn")
    with pg_super() as c:
        c.execute("CREATE FUNCTION %s_add(a int, b int) RETURNS int LANGUAGE sql IMMUTABLE "
                  "AS 'SELECT a + b'" % fn)
        c.execute("CREATE FUNCTION %s_out(a int, OUT b int, OUT c text) LANGUAGE sql "
                  "AS 'SELECT a * 2, ''x'' || a'" % fn)
        c.execute("CREATE FUNCTION %s_srf(n int) RETURNS SETOF int LANGUAGE sql "
                  "AS 'SELECT generate_series(1, n)'" % fn)
        c.execute("CREATE PROCEDURE %s_proc(a int, INOUT r int) LANGUAGE plpgsql "
                  "AS 'BEGIN r := a * 10; END'" % fn)
        for f in ("_add(int, int)", "_out(int)", "_srf(int)"):
            c.execute("ALTER FUNCTION %s%s OWNER TO fnx" % (fn, f))
        c.execute("ALTER PROCEDURE %s_proc(int, int) OWNER TO fnx" % fn)
    yield fn
    with pg_super() as c:
        for f in ("FUNCTION %s_add(int, int)", "FUNCTION %s_out(int)", "FUNCTION %s_srf(int)",
                  "PROCEDURE %s_proc(int, int)"):
            c.execute("DROP " + f % fn)


# ---------------------------------------------------------------- tests


def test_jdbc_prepared_statement_crosses_prepare_threshold_over_many_transactions(
        proxy, make_table, jdbc_classes):
    px = proxy()
    cols = "id int primary key, v text"
    via_proxy = run_java(jdbc_classes, px, "prepared", E2E_TABLE=make_table(cols))
    via_pg = run_java(jdbc_classes, direct(), "prepared", E2E_TABLE=make_table(cols))
    assert via_proxy == via_pg
    assert via_proxy["autocommit"] == [2 * i for i in range(40)]
    # transaction i inserts i, then counts rows <= i; every third rolls back
    expect, committed = [], 0
    for i in range(30):
        expect.append((committed + 1) * 1000 + i)
        if i % 3 != 2:
            committed += 1
    assert via_proxy["tx"] == expect
    assert via_proxy["rows"] == 20


def test_jdbc_transactions_commit_rollback_error_mid_transaction_and_savepoints(
        proxy, make_table, jdbc_classes):
    px = proxy()
    cols = "id int primary key, v text"
    via_proxy = run_java(jdbc_classes, px, "transactions", E2E_TABLE=make_table(cols))
    via_pg = run_java(jdbc_classes, direct(), "transactions", E2E_TABLE=make_table(cols))
    assert via_proxy == via_pg
    assert via_proxy["dup"] == "23505"
    assert via_proxy["in_failed_tx"] == "25P02"
    assert via_proxy["dup_after_sp"] == "23505"
    expect = []
    for r in range(8):
        expect += [[r * 10 + 1, "a"], [r * 10 + 2, "b"]]
    expect += [[1001, "before sp"], [1003, "after rollback to sp"]]
    assert via_proxy["rows"] == expect
    assert via_proxy["autocommit_error"] == "22012"
    assert via_proxy["after_autocommit_error"] == 2


def test_jdbc_batch_inserts_and_generated_keys_match_postgres(proxy, make_table, jdbc_classes):
    px = proxy()
    cols = "id bigserial primary key, k int unique, v text"
    via_proxy = run_java(jdbc_classes, px, "batch", E2E_TABLE=make_table(cols))
    via_pg = run_java(jdbc_classes, direct(), "batch", E2E_TABLE=make_table(cols))
    assert via_proxy == via_pg
    for r in range(3):
        assert via_proxy["batch_tx_%d" % r] == [1000, 1000]
    assert via_proxy["batch_auto"] == 500
    assert via_proxy["bad_batch"] == ["23505", "23505"]
    assert via_proxy["statement_batch"] == [1, 10, 5]
    assert via_proxy["generated_keys"] == [[30000 + i, "key", True] for i in range(8)]
    assert via_proxy["batch_generated_keys"] == [31000 + i for i in range(20)]
    # 3000 + 500 + 1 - 5 + 8 + 20 rows; the failed batch left nothing
    assert via_proxy["final"][:2] == [3524, 3524]


def test_jdbc_fetch_size_reads_100k_rows_through_suspended_portals(proxy, jdbc_classes):
    px = proxy()
    out = run_java(jdbc_classes, px, "fetch")
    for r in range(7):
        assert out["fetch_%d" % r] == [100000, 5000050000, "14ee22eaba297944c96afdbe5b16c65b"]
    assert out["two_portals"] == [12502500, -12502500]
    assert out["abandoned_at"] == 120 and out["after_abandoned"] == 77
    assert out["autocommit_rows"] == 100000
    assert run_java(jdbc_classes, direct(), "fetch") == out


def test_jdbc_database_metadata_tables_columns_keys_functions(
        proxy, make_table, jdbc_classes, jdbc_functions):
    px = proxy()
    t = make_table("id bigserial primary key, k int unique, v text NOT NULL")
    via_proxy = run_java(jdbc_classes, px, "meta", E2E_TABLE=t, E2E_FN=jdbc_functions)
    assert via_proxy == run_java(jdbc_classes, direct(), "meta", E2E_TABLE=t,
                                 E2E_FN=jdbc_functions)
    assert via_proxy["product"] == "PostgreSQL" and via_proxy["user"] == "fnx"
    first = via_proxy["first"]
    assert first["tables"] == [["public", t, "TABLE"]]
    assert first["columns"] == [["id", "bigserial", -5, "NO", 1], ["k", "int4", 4, "YES", 2],
                                ["v", "text", 12, "NO", 3]]
    assert first["pk"] == ["id"]
    assert first["functions"] == [jdbc_functions + s for s in ("_add", "_out", "_srf")]
    assert via_proxy["type_info_has_rows"] is True


def test_jdbc_callable_statement_return_value_out_params_and_procedure(
        proxy, jdbc_classes, jdbc_functions):
    px = proxy()
    out = run_java(jdbc_classes, px, "call", E2E_FN=jdbc_functions)
    assert out == run_java(jdbc_classes, direct(), "call", E2E_FN=jdbc_functions)
    assert out["return_value"] == [100 + i for i in range(8)]
    assert out["out_params"] == [42, "x21"]
    assert out["procedure_inout"] == 50
    assert out["srf"] == [6] * 6


def test_jdbc_types_round_trip_in_text_and_binary_like_postgres(proxy, make_table, jdbc_classes):
    px = proxy()
    cols = ("id int primary key, ts timestamp, tstz timestamptz, d date, n numeric, b bytea, "
            "ia int[], ta text[], u uuid, j jsonb, f float8, bo bool, i8 int8, t text")
    via_proxy = run_java(jdbc_classes, px, "types", E2E_TABLE=make_table(cols))
    via_pg = run_java(jdbc_classes, direct(), "types", E2E_TABLE=make_table(cols))
    assert via_proxy == via_pg
    rows = via_proxy["rows"]
    assert len(rows) == 14
    assert rows[0] == [
        1, "2024-02-29 12:34:56.7891", "2024-02-29T10:34:56.000001Z", "2024-02-21",
        "12345678901234567890.123456781", "000102275cfeff01", [1, -2, 1, None],
        ["a", "b c", 'd"e', "{x}", None, "NULL"], "UUID:0e9d8c1f-3a6b-4a43-9f57-0c1b8e2a7d56",
        '{"a": [1, 2, {"b": null}], "i": 1, "u": "ü"}', 1.5, False, -9007199254740993,
        "héllo '1'"]
    assert rows[1] == [8] + [None] * 13
    # the 7th read of each statement is a named statement with binary results
    assert rows[12][0] == 7 and rows[12][5] == "000102275cfeff07"
    assert rows[12][12] == -9007199254740993
    assert via_proxy["select"][6] == [
        "0e9d8c1f-3a6b-4a43-9f57-0c1b8e2a7d55", "0.0000000002", "0600", [6, 7],
        "2000-01-01T00:00Z", "6"]


@pytest.mark.timeout_s(60)
def test_jdbc_12_threads_own_connections_over_pool_of_4_no_errors(proxy, make_table, jdbc_classes):
    """Two JVMs with different time zones (pgjdbc sends TimeZone at startup),
    six threads each, every thread its own Connection; each query also checks
    that it sees its own JVM's TimeZone, whichever server connection runs it."""
    px = proxy(env={"DB_POOL_SIZE": "4", "DB_MAX_OVERFLOW": "0", "DB_POOL_TIMEOUT": "30"})
    rounds = 150
    runs = []
    for tz in ("Asia/Kolkata", "America/New_York"):
        t = make_table("id int primary key, n int, v text")
        e = pg_env(px, E2E_TABLE=t, E2E_THREADS="6", E2E_ROUNDS=str(rounds))
        p = subprocess.Popen(
            ["java", "-Xmx256m", "-Duser.timezone=" + tz,
             "-cp", jdbc_classes + os.pathsep + JAR, "JdbcClient", "threads"],
            env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        runs.append((tz, t, p))
    for tz, t, p in runs:
        stdout, stderr = p.communicate(timeout=50)
        assert p.returncode == 0, "JdbcClient threads (%s) failed:\n%s\n%s" % (tz, stdout, stderr)
        out = json.loads(stdout.strip().splitlines()[-1])
        assert out["errors"] == [] and out["n_errors"] == 0, out
        assert out["statements"] == 6 * rounds * 3
        assert out["timezone"] == tz
        with pg_super() as c:
            rows = c.execute("SELECT id, n, length(v) FROM %s ORDER BY id" % t).fetchall()
        committed = rounds - rounds // 5
        assert rows == [(i, committed, committed) for i in range(1, 7)]


# ------------------------------------ a statement's result shape changing under it

# one server connection; DDL goes straight to PostgreSQL, so no result cache
# and no replicas (which could lag it)
SHAPE_ENV = {"DB_POOL_SIZE": "1", "DB_MAX_OVERFLOW": "0", "DB_POOL_TIMEOUT": "20",
             "CACHE_ENABLED": "false", "POSTGRES_READ_REPLICAS": None}

SHAPE_OK = [["id=1", "v=one"],
            ["id=1", "v=one", "w=7"], ["id=1", "v=one", "w=7"],
            ["id=1", "w=7", "v=5"], ["id=1", "w=7", "v=5"]]


def shape_table(make_table):
    t = make_table("id int, v text")
    with pg_super() as c:
        c.execute("INSERT INTO %s VALUES (1, 'one')" % t)
    return t


def test_jdbc_named_statement_never_runs_with_another_clients_result_shape(
        proxy, make_table, jdbc_classes):
    """Two connections share one server connection (DB_POOL_SIZE=1) and run
    the same server-prepared `SELECT *`; the table gains a column.
    PostgreSQL answers each connection's own S_n with 0A000 and pgjdbc
    re-prepares; through the proxy the first re-Parse must not change the
    statement the other connection's S_n still means."""
    px = proxy(env=SHAPE_ENV)
    out = run_java(jdbc_classes, px, "shape", E2E_TABLE=shape_table(make_table),
                   E2E_SUPER_PORT=PG_PORT)
    assert out["c1"] == [SHAPE_OK[1], SHAPE_OK[3]]
    assert out["c2"] == SHAPE_OK


def test_jdbc_named_statement_reprepared_on_a_new_server_connection_keeps_its_shape(
        proxy, make_table, jdbc_classes):
    """One connection's server-prepared `SELECT *`; the table gains a column
    and the server connection is replaced.  The proxy prepares the statement
    again on the new server connection: the client must then see what
    PostgreSQL would give it (0A000, which pgjdbc heals by re-preparing), not
    a statement of another shape under its cached result formats."""
    if DIRECT:
        pytest.skip("PX_E2E_DIRECT=1: terminating the server connection ends the client")
    px = proxy(env=SHAPE_ENV)
    out = run_java(jdbc_classes, px, "shape", E2E_TABLE=shape_table(make_table),
                   E2E_SUPER_PORT=PG_PORT, E2E_RECONNECT=1)
    assert out["terminated"] == [1, 1], "the server connection was not replaced: %r" % out
    assert out["c2"] == SHAPE_OK
