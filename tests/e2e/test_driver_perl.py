"""Perl DBI + DBD::Pg (Debian's libdbd-pg-perl 3.16 over libpq) through the
proxy in transaction pooling mode, with the driver's defaults.

DBD::Pg prepares every statement with placeholders on the server
(pg_server_prepare=1): the first execute() sends Parse(dbdpg_p<pid>_<n>),
later ones Bind/Execute/Sync of that name; do() without placeholders and
multi-statement strings are simple Queries.  COPY runs through
pg_putcopydata/pg_getcopydata, cancel through pg_async + pg_cancel,
notifications through pg_notifies.  perl/dbdpg_client.pl runs each scenario
(forking workers for the concurrent ones) and prints a JSON summary; the tests
check it against fixed expectations and, where the answer is data, against the
same scenario run directly against PostgreSQL.
"""

import os
import shutil
import subprocess

import pytest

import drivers
from drivers import direct
from conftest import HERE, pg_super, unique

CLIENT = os.path.join(HERE, "perl", "dbdpg_client.pl")

POOL_ENV = {"DB_POOL_SIZE": "4", "DB_MAX_OVERFLOW": "2", "DB_POOL_TIMEOUT": "20"}

TYPES_TABLE = ("id int primary key, i4 int, i8 bigint, n numeric, t text, b bytea, bo bool, "
               "tz timestamptz, d date, j json, jb jsonb, ai int[], at text[], u uuid, f8 float8")


@pytest.fixture(scope="module")
def dbd_pg():
    """Skips unless perl, DBI and DBD::Pg are installed."""
    if shutil.which("perl") is None:
        pytest.skip("perl is not installed")
    r = subprocess.run(["perl", "-MDBD::Pg", "-MJSON::PP", "-e", "print $DBD::Pg::VERSION"],
                       capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        pytest.skip("DBD::Pg is not installed (Debian package libdbd-pg-perl, scripts/deps.sh)")
    return r.stdout


def run_pl(ep, scenario, timeout=45, **env):
    """Run one scenario against ep; return its JSON summary and stderr."""
    out, err = drivers.run_client(["perl", CLIENT, scenario], ep, "dbdpg_client.pl", timeout,
                                  **env)
    assert "invalidates" not in err, err[-3000:]
    return out, err


def both(px, scenario, make_table=None, cols=None, **env):
    """The scenario through px and directly (each with a fresh table); both summaries."""
    return drivers.both(lambda ep, sc, **e: run_pl(ep, sc, **e)[0], px, scenario, make_table,
                        cols, **env)


# ---------------------------------------------------------------- tests


def test_perl_simple_queries_multi_statement_notice_and_error_match_postgres(
        proxy, make_table, dbd_pg):
    out, want = both(proxy(), "simple", make_table, "id int primary key, v text")
    assert out == want
    assert out == {"delete": 0, "div0": "error 22012", "notices": ["NOTICE:  hello ✓"],
                   "ping": 1, "row": [1, "x", None, 2.5], "rows": [[1, "one"], [2, "two!"]],
                   "user": "fnx"}


def test_perl_server_prepared_placeholders_of_many_types_round_trip_like_postgres(
        proxy, make_table, dbd_pg):
    out, want = both(proxy(), "types", make_table, TYPES_TABLE)
    assert out == want
    rows = out["rows"]
    assert len(rows) == 7
    assert rows[3] == [
        4, -28, -9007199254740993, "12345678901234567890.123456781", "héllo 'wörld' ✓ 4 日本",
        "000102275cfeff04", 1, "2024-02-29 10:34:56.123456+00", "1999-12-24",
        '{"a": [1, 2, {"b": null}], "u": "ü", "i": 4}', '{"k": "v", "n": 4}',
        [1, -2, 4, None], ["a", "b c", 'd"e', "{x}", None, "NULL"],
        "0e9d8c1f-3a6b-4a43-9f57-0c1b8e2a7d56", 6]
    assert rows[6] == [7] + [None] * 14
    assert out["echo"] == ["0.000000000200000000000000000002", "ünï✓", '{"x": [1, 2.5, "y"]}',
                           None, "00ff"]
    assert out["by_id"] == [["héllo 'wörld' ✓ %d 日本" % i, "000102275cfeff0%d" % i]
                            for i in range(1, 7)]


def test_perl_8_forked_connections_reuse_server_prepared_statements_over_6_servers(
        proxy, make_table, dbd_pg):
    px = proxy(env=POOL_ENV)
    t = make_table("id int primary key, k int, v text")
    out, stderr = run_pl(px, "prepared_pool", E2E_TABLE=t)
    assert out["failed_workers"] == 0, stderr[-3000:]
    assert out["rows"] == [8 * 40, 8 * sum(range(40))]


def test_perl_transactions_autocommit_off_savepoints_error_mid_transaction_and_23505(
        proxy, make_table, dbd_pg):
    out, want = both(proxy(), "transactions", make_table, "id int primary key, v text")
    assert out == want
    assert out == {
        "dup": "error 23505", "dup_autocommit_off": "error 23505", "dup_errstr": 1,
        "dup_in_savepoint": "error 23505", "in_failed_tx": "error 25P02",
        "mid_tx_error": "error 22012",
        "rows": [[0, "tx0"], [2, "tx2"], [4, "tx4"], [102, "after rollback"], [201, "kept"],
                 [300, "outer"], [301, "after savepoint"]]}


@pytest.mark.timeout_s(60)
def test_perl_200k_rows_whole_and_through_a_cursor_in_batches(proxy, dbd_pg):
    out, _ = run_pl(proxy(), "large", E2E_ROWS=200000)
    assert out["whole"][:2] == [200000, 200000 * 200001 // 2]
    assert out["cursor"] == out["whole"]
    assert run_pl(direct(), "large", E2E_ROWS=200000)[0] == out


def test_perl_copy_in_and_out_and_a_failing_copy(proxy, make_table, dbd_pg):
    out, want = both(proxy(), "copy", make_table, "id int primary key, v text, b bytea")
    assert out == want
    assert out["copy_in"] == 1 and out["after_dup"] == 20000
    assert out["copy_dup"] == "error 23505"
    assert out["copy_out"][0] == 20000
    assert out["copy_out_error"] == "error 22012" and out["after"] == 1


def test_perl_pg_cancel_of_an_async_pg_sleep(proxy, dbd_pg):
    out, _ = run_pl(proxy(), "cancel", E2E_MARKER=unique("plcancel"))
    assert out == {"after": 42, "async_result": 1, "cancel": "cancelled", "fast": 1,
                   "sleepers": 0, "state": "57014"}


def test_perl_session_statement_timeout_follows_the_client_across_transactions(
        proxy, dbd_pg):
    out, _ = run_pl(proxy(), "timeout")
    assert out == run_pl(direct(), "timeout")[0]
    assert out == {"after": 5, "again": "error 57014", "fast": 1, "in_tx": "error 57014",
                   "local_longer": 1, "other_conn": "0", "show": ["300ms"],
                   "show_after_local": "300ms", "timeout": "error 57014"}


@pytest.mark.timeout_s(60)
def test_perl_12_forked_workers_mixed_transactions_see_their_own_writes(
        proxy, make_table, dbd_pg):
    px = proxy(env=POOL_ENV)
    t = make_table("id int primary key, n int, v text")
    out, stderr = run_pl(px, "concurrent", E2E_TABLE=t, E2E_WORKERS=12)
    assert out["failed_workers"] == 0, stderr[-3000:]
    committed = 30 - 30 // 4
    assert out["rows"] == [[w, committed, committed] for w in range(12)]


def test_perl_server_prepared_select_star_after_alter_table_like_postgres(
        proxy, make_table, dbd_pg):
    """A server-prepared `SELECT *` across ADD COLUMN and DROP COLUMN:
    PostgreSQL answers 0A000 to the old statement handle; a new handle sees
    the new shape."""

    def table():
        t = make_table("id int, v text")
        with pg_super() as c:
            c.execute("INSERT INTO %s VALUES (1, 'one')" % t)
        return t

    want, _ = run_pl(direct(), "shape", E2E_TABLE=table())
    assert want["steps"] == [
        [["id", "v"], [[1, "one"]]], [["id", "v"], [[1, "one"]]], "error 0A000",
        "error 0A000", [["id", "v", "w"], [[1, "one", 7]]], [["id", "v", "w"], [[1, "one", 7]]],
        "error 0A000", [[1, 7]]]
    for env in ({"DB_POOL_SIZE": "1", "DB_MAX_OVERFLOW": "0", "DB_POOL_TIMEOUT": "20"},
                POOL_ENV):
        out, _ = run_pl(proxy(env=env), "shape", E2E_TABLE=table())
        assert out == want, "through the proxy with %r" % env


def test_perl_listen_and_pg_notifies(proxy, dbd_pg):
    ch = unique("plch")
    out, _ = run_pl(proxy(), "listen", E2E_CHANNEL=ch)
    assert out["notifications"] == ["%s:payload %d ✓" % (ch, i) for i in range(5)] + [
        "%s:last" % ch]
    assert out["after"] == 3
