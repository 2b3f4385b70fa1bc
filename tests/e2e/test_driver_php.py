"""PHP's PDO pgsql driver and pg_* functions (Debian's php-pgsql 8.2 over
libpq) through the proxy in transaction pooling mode, with the defaults.

PDO does not emulate prepares by default: every prepare() with placeholders
is a named server-side statement pdo_stmt_<n> counted per connection, so two
connections use the same name for different statements; it is prepared once
and executed many times.  pg_query_params sends an unnamed extended query,
pg_prepare/pg_execute a named one, pg_copy_from/pg_copy_to and PDO's
pgsqlCopyFromArray/pgsqlCopyToArray run COPY, pg_cancel_query a
CancelRequest.  php/pgsql_client.php runs each scenario (forking workers with
pcntl for the concurrent ones) and prints a JSON summary; the tests check it
against fixed expectations and, where the answer is data, against the same
scenario run directly against PostgreSQL.
"""

import os
import shutil
import subprocess

import pytest

import drivers
from drivers import direct
from conftest import HERE, pg_super, unique

CLIENT = os.path.join(HERE, "php", "pgsql_client.php")

POOL_ENV = {"DB_POOL_SIZE": "4", "DB_MAX_OVERFLOW": "2", "DB_POOL_TIMEOUT": "20"}

TYPES_TABLE = ("id int primary key, i4 int, i8 bigint, n numeric, t text, b bytea, bo bool, "
               "tz timestamptz, d date, j json, jb jsonb, ai int[], at text[], u uuid, f8 float8")


@pytest.fixture(scope="module")
def php_pgsql():
    """Skips unless php with pdo_pgsql, pgsql and pcntl is installed."""
    if shutil.which("php") is None:
        pytest.skip("php is not installed (Debian packages php-cli php-pgsql, scripts/deps.sh)")
    r = subprocess.run(["php", "-m"], capture_output=True, text=True, timeout=30)
    mods = set(r.stdout.split())
    missing = {"pdo_pgsql", "pgsql", "pcntl"} - mods
    if missing:
        pytest.skip("php lacks %s (Debian package php-pgsql, scripts/deps.sh)"
                    % ", ".join(sorted(missing)))
    return True


def run_php(ep, scenario, timeout=45, **env):
    """Run one scenario against ep; return its JSON summary and stderr."""
    return drivers.run_client(["php", CLIENT, scenario], ep, "pgsql_client.php", timeout, **env)


def both(px, scenario, make_table=None, cols=None, **env):
    """The scenario through px and directly (each with a fresh table); both summaries."""
    return drivers.both(lambda ep, sc, **e: run_php(ep, sc, **e)[0], px, scenario, make_table,
                        cols, **env)


# ---------------------------------------------------------------- tests


def test_php_pdo_and_pg_query_simple_and_multi_statement_queries_match_postgres(
        proxy, make_table, php_pgsql):
    out, want = both(proxy(), "simple", make_table, "id int primary key, v text")
    assert out == want
    assert out == {
        "delete": 0, "rows": [[1, "one"], [2, "two!"]],
        "row": {"a": 1, "b": "x", "c": None, "d": "2.5"}, "div0": "error 22012", "user": "fnx",
        "pg_query_multi": [["42"]], "pg_version_server": True, "pg_parameter_status": "UTF8",
        "pg_query_error": True, "pg_after_error": "7"}


def test_php_pdo_named_statements_and_pg_query_params_of_many_types_like_postgres(
        proxy, make_table, php_pgsql):
    out, want = both(proxy(), "types", make_table, TYPES_TABLE)
    assert out == want
    rows = out["rows"]
    assert len(rows) == 7
    assert rows[3] == [
        4, -28, -9007199254740993, "12345678901234567890.123456781", "héllo 'wörld' ✓ 4 日本",
        "000102275cfeff04", True, "2024-02-29 10:34:56.123456+00", "1999-12-24",
        '{"a":[1,2,{"b":null}],"u":"ü","i":4}', '{"k": "v", "n": 4}', "{1,-2,4,NULL}",
        '{a,"b c","d\\"e","{x}",NULL,"NULL"}', "0e9d8c1f-3a6b-4a43-9f57-0c1b8e2a7d56", "6"]
    assert rows[6] == [7] + [None] * 14
    assert out["echo"] == ["0.000000000200000000000000000002", "ünï✓", '{"x": [1, 2.5, "y"]}',
                           None]
    assert out["named"] == [["héllo 'wörld' ✓ %d 日本" % i, -9007199254740993]
                            for i in range(1, 7)]
    assert out["pg_query_params"] == ["-21", "héllo 'wörld' ✓ 3 日本", "000102275cfeff03",
                                      "{1,-2,3,NULL}", '{"k": "v", "n": 3}']
    assert out["pg_execute"] == [[["1", "12345678901234567890.123456781"]],
                                 [["4", "12345678901234567890.123456781"]], [["7", None]]]
    assert out["pg_params_echo"] == ["00ff27", None, "5"]


def test_php_8_forked_pdo_connections_same_statement_names_for_different_sql(
        proxy, make_table, php_pgsql):
    """Eight processes prepare four statements each, half in the opposite
    order: pdo_stmt_00000001 is an INSERT on one connection and
    `SELECT ? + ?` on the next.  Six server connections."""
    px = proxy(env=POOL_ENV)
    t = make_table("id int primary key, k int, v text")
    out, stderr = run_php(px, "prepared_pool", E2E_TABLE=t)
    assert out["failed_workers"] == 0, stderr[-3000:]
    assert out["rows"] == [8 * 40, 8 * sum(range(40))]


def test_php_transactions_error_mid_transaction_savepoint_and_23505_in_pdo_and_pg(
        proxy, make_table, php_pgsql):
    out, want = both(proxy(), "transactions", make_table, "id int primary key, v text")
    assert out == want
    assert out == {
        "mid_tx_error": "error 22012", "in_failed_tx": "error 25P02", "in_tx": True,
        "dup": "23505", "dup_errorinfo": "23505", "dup_message": True,
        "dup_in_savepoint": "error 23505", "silent": [False, "23505"], "pg_dup": "23505",
        "pg_status": True, "pg_status_after": True,
        "rows": [[0, "tx0"], [2, "tx2"], [4, "tx4"], [102, "after rollback"], [300, "outer"],
                 [301, "after savepoint"]]}


@pytest.mark.timeout_s(60)
def test_php_200k_rows_through_pdo_and_pg_query_params(proxy, php_pgsql):
    out, _ = run_php(proxy(), "large", E2E_ROWS=200000)
    assert out["pdo"][:2] == [200000, 200000 * 200001 // 2]
    assert out["pg"] == out["pdo"]
    assert run_php(direct(), "large", E2E_ROWS=200000)[0] == out


def test_php_pg_copy_from_to_and_pdo_copy_arrays_with_a_failing_copy(
        proxy, make_table, php_pgsql):
    out, want = both(proxy(), "copy", make_table, "id int primary key, v text, b bytea")
    assert out == want
    assert out["pg_copy_from"] is True and out["pg_copy_from_dup"] is False
    assert out["pg_copy_to"][0] == 20000
    assert out["pg_copy_to"][2] == "19999\trow 19999 ✓ tab\\there\t\\\\x1f4e\n"
    assert out["pdo_copy_from"] is True and out["pdo_copy_dup"] == "error 23505"
    assert out["pdo_copy_to"][0] == 20002
    assert out["after"] == 20002 and out["pg_after"] == "20002"


def test_php_pg_cancel_query_stops_a_pg_sleep(proxy, php_pgsql):
    out, _ = run_php(proxy(), "cancel", E2E_MARKER=unique("phpcancel"))
    assert out == {"cancel_sent": True, "cancel": "", "fast": True, "after": "42",
                   "sleepers": "0"}


def test_php_session_statement_timeout_follows_the_client_across_transactions(
        proxy, php_pgsql):
    out, _ = run_php(proxy(), "timeout")
    assert out == run_php(direct(), "timeout")[0]
    assert out == {"timeout": "error 57014", "fast": True, "show": ["300ms"],
                   "again": "error 57014", "local_longer": 1, "show_after_local": "300ms",
                   "in_tx": "error 57014", "after": 5, "other_conn": "0"}


@pytest.mark.timeout_s(60)
def test_php_12_forked_workers_mixed_transactions_see_their_own_writes(
        proxy, make_table, php_pgsql):
    px = proxy(env=POOL_ENV)
    out, stderr = run_php(px, "concurrent",
                          E2E_TABLE=make_table("id int primary key, n int, v text"),
                          E2E_WORKERS=12)
    assert out["failed_workers"] == 0, stderr[-3000:]
    committed = 30 - 30 // 4
    assert out["rows"] == [[w, committed, committed] for w in range(12)]


def test_php_prepared_select_star_after_alter_table_like_postgres(
        proxy, make_table, php_pgsql):
    """A PDO prepared and a pg_prepare'd `SELECT *` across ADD COLUMN and
    DROP COLUMN: PostgreSQL answers 0A000 to both old statements, a new PDO
    statement sees the new shape."""

    def table():
        t = make_table("id int, v text")
        with pg_super() as c:
            c.execute("INSERT INTO %s VALUES (1, 'one')" % t)
        return t

    want, _ = run_php(direct(), "shape", E2E_TABLE=table())
    old, old_pg = [{"id": 1, "v": "one"}], [{"id": "1", "v": "one"}]
    assert want["steps"] == [old, old_pg, old, old_pg, "error 0A000", "pg error 0A000",
                             "error 0A000", "pg error 0A000", [{"id": 1, "v": "one", "w": 7}],
                             "pg error 0A000", "error 0A000", "pg error 0A000"]
    for env in ({"DB_POOL_SIZE": "1", "DB_MAX_OVERFLOW": "0", "DB_POOL_TIMEOUT": "20"},
                POOL_ENV):
        out, _ = run_php(proxy(env=env), "shape", E2E_TABLE=table())
        assert out == want, "through the proxy with %r" % env


def test_php_pdo_listen_get_notify_and_pg_get_notify(proxy, php_pgsql):
    ch = unique("phpch")
    out, _ = run_php(proxy(), "listen", E2E_CHANNEL=ch)
    assert out["notifications"] == ["%s:payload %d ✓" % (ch, i) for i in range(5)] + [
        "%s:last" % ch]
    assert out["after"] == 3
    assert out["pg_get_notify"] == "%s:to pg" % ch
