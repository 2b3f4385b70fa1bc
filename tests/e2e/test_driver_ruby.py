"""The Ruby pg gem (Debian's ruby-pg 1.4 over libpq 15) through the proxy in
transaction pooling mode, with the gem's defaults.

exec/async_exec send simple Queries, exec_params an unnamed Parse/Bind/
Describe/Execute/Sync, prepare/exec_prepared named statements (the
application picks the names, so two connections use the same name for
different statements); copy_data runs COPY both ways, set_single_row_mode
streams, cancel sends a CancelRequest, and libpq's pipeline mode sends many
extended-protocol queries before one Sync.  ruby/pg_client.rb runs each
scenario and prints a JSON summary; the tests check it against fixed
expectations and, where the answer is data, against the same scenario run
directly against PostgreSQL.
"""

import os
import shutil
import subprocess

import pytest

import drivers
from drivers import direct
from conftest import HERE, pg_super, unique

CLIENT = os.path.join(HERE, "ruby", "pg_client.rb")

POOL_ENV = {"DB_POOL_SIZE": "4", "DB_MAX_OVERFLOW": "2", "DB_POOL_TIMEOUT": "20"}

TYPES_TABLE = ("id int primary key, i4 int, i8 bigint, n numeric, t text, b bytea, bo bool, "
               "tz timestamptz, d date, j json, jb jsonb, ai int[], at text[], u uuid, f8 float8")


@pytest.fixture(scope="module")
def ruby_pg():
    """Skips unless ruby and the pg gem are installed."""
    if shutil.which("ruby") is None:
        pytest.skip("ruby is not installed (Debian package ruby-pg, scripts/deps.sh)")
    r = subprocess.run(["ruby", "-rpg", "-e", "print PG::VERSION"], capture_output=True,
                       text=True, timeout=30)
    if r.returncode != 0:
        pytest.skip("the Ruby pg gem is not installed (Debian package ruby-pg, scripts/deps.sh)")
    return r.stdout


def run_rb(ep, scenario, timeout=45, **env):
    """Run one scenario against ep; return its JSON summary."""
    return drivers.run_client(["ruby", CLIENT, scenario], ep, "pg_client.rb", timeout, **env)[0]


def both(px, scenario, make_table=None, cols=None, **env):
    """The scenario through px and directly (each with a fresh table); both summaries."""
    return drivers.both(run_rb, px, scenario, make_table, cols, **env)


# ---------------------------------------------------------------- tests


def test_ruby_simple_queries_multi_statement_notice_and_error_match_postgres(
        proxy, make_table, ruby_pg):
    out, want = both(proxy(), "simple", make_table, "id int primary key, v text")
    assert out == want
    assert out["rows"] == [["1", "one"], ["2", "two!"]]
    assert out["delete"] == ["DELETE 0", 0]
    assert out["multi_last"] == [["2", None]]
    assert out["div0"] == "error 22012"
    assert out["sync_exec"] == "fnx" and out["async_exec"] == "42"
    assert out["notice"] == ["NOTICE:  hello ✓"]


def test_ruby_exec_params_text_and_binary_many_types_round_trip_like_postgres(
        proxy, make_table, ruby_pg):
    out, want = both(proxy(), "types", make_table, TYPES_TABLE)
    assert out == want
    rows = out["rows"]
    assert len(rows) == 7
    assert rows[5] == [
        "6", "-42", "-54043195528445958", "12345678901234567890.123456781",
        "héllo 'wörld' ✓ 6 日本", "\\x000102275cfeff06", "t", "2024-02-29 10:34:56.123456+00",
        "1999-12-26", '{"a":[1,2,{"b":null}],"u":"ü","i":6}', '{"k": "v", "n": 6}',
        "{1,-2,6,NULL}", '{a,"b c","d\\"e","{x}",NULL,"NULL"}',
        "0e9d8c1f-3a6b-4a43-9f57-0c1b8e2a7d56", "9"]
    assert rows[6] == ["7"] + [None] * 14
    assert out["binary"] == ["000102275cfeff02", "ffbffffffffffffe",
                             "0e9d8c1f3a6b4a439f570c1b8e2a7d56", 1]
    assert out["echo"] == [["0.000000000200000000000000000002", "ünï✓",
                            '{"x": [1, 2.5, "y"]}', None]]
    assert out["decoded"] == ["-21", "-27021597764222979", "12345678901234567890.123456781",
                              "héllo 'wörld' ✓ 3 日本", "false", "1999-12-23",
                              "[1, -2, 3, nil]", "4.5"]


def test_ruby_same_statement_names_for_different_sql_on_8_connections_over_6_servers(
        proxy, make_table, ruby_pg):
    """Eight threads, each its own connection, prepare s_0..s_3 (half of them
    in the opposite order, so s_0 is an INSERT on one connection and
    `SELECT $1 + $2` on the next) and run them 40 times, also in transactions."""
    px = proxy(env=POOL_ENV)
    t = make_table("id int primary key, k int, v text")
    out = run_rb(px, "prepared_pool", E2E_TABLE=t)
    assert out["errors"] == []
    assert out["rows"] == [8 * 40, 8 * sum(range(40))]


def test_ruby_transactions_commit_rollback_error_mid_transaction_and_unique_violation(
        proxy, make_table, ruby_pg):
    out, want = both(proxy(), "transactions", make_table, "id int primary key, v text")
    assert out == want
    assert out["mid_tx_error"] == "error 22012" and out["in_failed_tx"] == "error 25P02"
    assert out["status_in_failed"] == 3 and out["status_after"] == 0  # PQTRANS_INERROR, IDLE
    assert out["dup_class"] == "PG::UniqueViolation" and out["dup"] == "23505"
    assert out["dup_constraint"] is True
    assert out["block_dup"] == "23505" and out["dup_in_savepoint"] == "error 23505"
    assert out["rows"] == [["0", "tx0"], ["2", "tx2"], ["4", "tx4"], ["102", "after rollback"],
                           ["200", "block"], ["300", "outer"], ["301", "after savepoint"]]


@pytest.mark.timeout_s(60)
def test_ruby_single_row_mode_streams_200k_rows_and_materializes_them(proxy, ruby_pg):
    out = run_rb(proxy(), "large", E2E_ROWS=200000)
    assert out["round0"][:2] == [200000, 200000 * 200001 // 2]
    assert out["round1"] == out["round0"]
    assert out["count"] == 200000 and out["materialized"] == [200000, "200000"]
    assert run_rb(direct(), "large", E2E_ROWS=200000) == out


def test_ruby_copy_data_in_out_binary_and_copy_errors(proxy, make_table, ruby_pg):
    out, want = both(proxy(), "copy", make_table, "id int primary key, v text, b bytea")
    assert out == want
    assert out["copy_in"] == "COPY 20000" and out["copy_in_rows"] == 20000
    assert out["copy_dup"] == "error 23505"
    assert out["copy_abort"] == "raised client gives up"
    assert out["after_copy_errors"] == 20000
    assert out["copy_out"][0] == 20000
    assert out["copy_out"][2] == ["19998\trow 19998 ✓ tab\\there\t\\\\x1e4e\n",
                                  "19999\trow 19999 ✓ tab\\there\t\\\\x1f4e\n"]
    assert out["copy_out_error"] == "error 22012" and out["after"] == "1"


def test_ruby_cancel_of_pg_sleep_from_same_and_other_thread(proxy, ruby_pg):
    out = run_rb(proxy(), "cancel", E2E_MARKER=unique("rbcancel"))
    assert out == {"cancel_sent": True, "cancel": "57014", "fast": True, "after": "42",
                   "thread_cancel": "57014", "after_thread": "7", "sleepers": "0"}


def test_ruby_session_statement_timeout_follows_the_client_across_transactions(
        proxy, ruby_pg):
    out = run_rb(proxy(), "timeout")
    assert out == run_rb(direct(), "timeout")
    assert out == {"timeout": "error 57014", "fast": True, "show": ["300ms"],
                   "again": "error 57014", "local_longer": 1, "show_after_local": "300ms",
                   "in_tx": "error 57014", "after": "5", "other_conn": "0"}


@pytest.mark.timeout_s(60)
def test_ruby_12_threads_mixed_transactions_see_their_own_writes(proxy, make_table, ruby_pg):
    px = proxy(env=POOL_ENV)
    out = run_rb(px, "concurrent", E2E_TABLE=make_table("id int primary key, n int, v text"),
                 E2E_WORKERS=12)
    assert out["errors"] == []
    committed = 30 - 30 // 4
    assert out["rows"] == [[str(w), str(committed), str(committed)] for w in range(12)]


def test_ruby_prepared_select_star_after_alter_table_fails_and_reprepares_like_postgres(
        proxy, make_table, ruby_pg):
    """A named `SELECT *` across ADD COLUMN and DROP COLUMN: PostgreSQL
    answers 0A000 every time (the gem does not re-prepare); a new name, or
    DEALLOCATE and the old name again, gives the new shape."""

    def table():
        t = make_table("id int, v text")
        with pg_super() as c:
            c.execute("INSERT INTO %s VALUES (1, 'one')" % t)
        return t

    want = run_rb(direct(), "shape", E2E_TABLE=table())
    assert want["steps"] == [
        [["id", "v"], [["1", "one"]]], [["id", "v"], [["1", "one"]]],
        "error 0A000", "error 0A000", [["1", "one", "7"]],
        [["id", "v", "w"], [["1", "one", "7"]]], ["id", "v", "w"],
        "error 0A000", "error 0A000"]
    for env in ({"DB_POOL_SIZE": "1", "DB_MAX_OVERFLOW": "0", "DB_POOL_TIMEOUT": "20"},
                POOL_ENV):
        out = run_rb(proxy(env=env), "shape", E2E_TABLE=table())
        assert out == want, "through the proxy with %r" % env


def test_ruby_listen_notify_and_unlisten(proxy, ruby_pg):
    ch = unique("rbch")
    out = run_rb(proxy(), "listen", E2E_CHANNEL=ch)
    assert out["notifications"] == ["%s:payload %d ✓" % (ch, i) for i in range(5)] + [
        "%s:last" % ch]
    assert out["after"] == "3"
    assert out["after_unlisten"] is None


def test_ruby_libpq_pipeline_mode_with_an_error_aborting_its_segment(
        proxy, make_table, ruby_pg):
    out, want = both(proxy(), "pipeline", make_table, "id int primary key, v text")
    assert out == want
    assert out["results"] == (
        ["INSERT 0 1"] * 10 + [[["10"]], "sync", "INSERT 0 1", "error 22012", "aborted",
                               "sync", "", [["p0"]], [["p1"]], [["p2"]], "sync"])
    assert out["rows"] == [[str(i), "p%d" % i] for i in range(10)]
