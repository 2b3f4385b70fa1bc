"""C++ libpqxx 6 (Debian's libpqxx-dev, over libpq) through the proxy in
transaction pooling mode, with the library's defaults.

pqxx::work sends BEGIN / COMMIT as simple Queries; exec() is a simple Query,
exec_params() an unnamed Parse/Bind/Describe/Execute/Sync in one go
(PQexecParams); conn.prepare() registers a named statement that libpq
prepares on the server (Parse + Sync) the first time it runs; stream_to and
stream_from are COPY FROM STDIN / COPY TO STDOUT; pqxx::pipeline sends
several queries before reading any answer; cancel_query() sends a
CancelRequest; a notification_receiver makes the connection LISTEN.
libpqxx/pqxxclient.cpp (compiled with g++ -std=c++17 -lpqxx -lpq) runs each
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

SOURCE = os.path.join(HERE, "libpqxx", "pqxxclient.cpp")

POOL_ENV = {"DB_POOL_SIZE": "4", "DB_MAX_OVERFLOW": "2", "DB_POOL_TIMEOUT": "20"}

TYPES_TABLE = ("id int primary key, i4 int, i8 bigint, n numeric, t text, b bytea, bo bool, "
               "tz timestamptz, d date, j json, jb jsonb, ai int[], at text[], u uuid, f8 float8")


@pytest.fixture(scope="module")
def pqxx_client(tmp_path_factory):
    """libpqxx/pqxxclient.cpp compiled; skips when g++ or libpqxx is missing."""
    if shutil.which("g++") is None:
        pytest.skip("g++ is not installed (Debian package build-essential, scripts/deps.sh)")
    if not os.path.exists("/usr/include/pqxx/pqxx"):
        pytest.skip("libpqxx headers not found: install the Debian package libpqxx-dev "
                    "(scripts/deps.sh)")
    binary = str(tmp_path_factory.mktemp("pqxx") / "pqxxclient")
    r = subprocess.run(["g++", "-std=c++17", "-O1", "-Wall", "-o", binary, SOURCE, "-lpqxx",
                        "-lpq", "-pthread"], capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, "g++ pqxxclient failed:\n%s%s" % (r.stdout, r.stderr)
    return binary


def run_cc(binary, ep, scenario, timeout=45, **env):
    return drivers.run_client([binary, scenario], ep, "pqxxclient", timeout, **env)[0]


def both(binary, px, scenario, make_table=None, cols=None, **env):
    return drivers.both(lambda ep, sc, **e: run_cc(binary, ep, sc, **e), px, scenario,
                        make_table, cols, **env)


# ---------------------------------------------------------------- tests


def test_pqxx_simple_queries_and_exec_params_match_postgres(proxy, make_table, pqxx_client):
    out, want = both(pqxx_client, proxy(), "simple", make_table, "id int primary key, v text")
    assert out == want
    assert out == {"delete": 0, "rows": [["1", "one"], ["2", "two!"]],
                   "literal": [["1", "x", None, "2.5"]], "columns": ["a", "b", "c", "d"],
                   "div0": "error 22012", "div0_params": "error 22012",
                   "user": [["fnx", "ü✓"]], "repeat_sum": 2 * sum(range(50))}


def test_pqxx_prepared_and_exec_params_of_many_types_round_trip_like_postgres(
        proxy, make_table, pqxx_client):
    out, want = both(pqxx_client, proxy(), "types", make_table, TYPES_TABLE)
    assert out == want
    rows = out["rows"]
    assert rows == out["rows_simple"]
    assert len(rows) == 7
    assert rows[3] == [
        "4", "-28", "-36028797018963972", "12345678901234567890.123456781",
        "héllo 'wörld' ✓ 4 日本", "\\x000102275cfeff04", "t", "2024-02-29 14:34:56.123456+00",
        "1999-12-27", '{"a": [1, 2, {"b": null}], "u": "ü", "i": 4}', '{"k": "v", "n": 4}',
        "{1,-2,4}", '{a,"b c","d\\"e","{x}","NULL"}', "0e9d8c1f-3a6b-4a43-9f57-0c1b8e2a7d56",
        "6"]
    assert rows[5][10:12] == ['{"ключ": [true, null]}', "{1,NULL,3}"]
    assert rows[6] == ["7"] + [None] * 14
    assert out["bytea"] == "000102275cfeff02"
    assert out["echo"] == [["0.000000000200000000000000000002", "ünï✓", '{"x": [1, 2.5, "y"]}',
                            "t"]]


def test_pqxx_10_connections_reuse_prepared_statements_over_6_server_connections(
        proxy, make_table, pqxx_client):
    px = proxy(env=POOL_ENV)
    t = make_table("id int primary key, k int, v text")
    out = run_cc(pqxx_client, px, "prepared_pool", E2E_TABLE=t)
    assert out["errors"] == []
    with pg_super() as c:
        assert c.execute("SELECT count(*), sum(k) FROM %s" % t).fetchone() == (
            400, 10 * sum(range(40)))


def test_pqxx_work_commit_abort_error_mid_transaction_savepoint_and_23505(
        proxy, make_table, pqxx_client):
    out, want = both(pqxx_client, proxy(), "transactions", make_table,
                     "id int primary key, v text")
    assert out == want
    assert out["mid_tx_error"] == "error 22012" and out["mid_tx_error_simple"] == "error 22012"
    assert out["in_failed_tx"] == "error 25P02"
    assert out["dup_autocommit"] == "error 23505"
    assert out["dup_class"] == "unique_violation 23505"
    assert out["dup_in_tx"] == "error 23505" and out["dup_in_savepoint"] == "error 23505"
    assert out["rows"] == [["0", "tx0"], ["2", "tx2"], ["4", "tx4"], ["102", "after rollback"],
                           ["200", "outer"], ["201", "after savepoint"]]


@pytest.mark.timeout_s(60)
def test_pqxx_200k_rows_with_exec_params_and_exec(proxy, pqxx_client):
    out = run_cc(pqxx_client, proxy(), "large", E2E_ROWS=200000)
    assert out["round0"][:2] == [200000, 200000 * 200001 // 2]
    assert out["round1"] == out["round0"]
    assert run_cc(pqxx_client, direct(), "large", E2E_ROWS=200000) == out


def test_pqxx_stream_to_and_stream_from_copy_and_a_failing_copy(
        proxy, make_table, pqxx_client):
    out, want = both(pqxx_client, proxy(), "copy", make_table,
                     "id int primary key, v text, b bytea")
    assert out == want
    assert out["copy_dup"] == "error 23505"
    assert out["copy_out"] == [20000, sum(range(20000))]
    assert out["copy_out_last"] == "19999\trow 19999 ✓ 'q' \\\\ back\t\\\\x00ff\n"
    assert out["after"][0][0] == "20000"


def test_pqxx_cancel_query_stops_a_running_pg_sleep(proxy, pqxx_client):
    out = run_cc(pqxx_client, proxy(), "cancel", E2E_MARKER=unique("pqxxcancel"))
    assert out == {"cancel": "error 57014", "cancel_fast": True, "after": 42,
                   "sleepers_left": 0}


def test_pqxx_session_statement_timeout_follows_the_client_across_transactions(
        proxy, pqxx_client):
    out = run_cc(pqxx_client, proxy(), "timeout")
    assert out == run_cc(pqxx_client, direct(), "timeout")
    assert out == {"timeout": "error 57014", "fast": True, "show": "300ms",
                   "again": "error 57014", "local_longer": "", "show_after_local": "300ms",
                   "other_conn": "0"}


@pytest.mark.timeout_s(60)
def test_pqxx_12_threads_mixed_transactions_see_their_own_writes(
        proxy, make_table, pqxx_client):
    px = proxy(env=POOL_ENV)
    t = make_table("id int primary key, n int, v text")
    out = run_cc(pqxx_client, px, "concurrent", E2E_TABLE=t, E2E_WORKERS=12)
    assert out["errors"] == []
    committed = 30 - 30 // 4
    assert out["rows"] == [[str(w), str(committed), str(committed)] for w in range(12)]


def test_pqxx_prepared_select_star_after_alter_table_ends_like_postgres(
        proxy, make_table, pqxx_client):
    def table():
        t = make_table("id int, v text")
        with pg_super() as c:
            c.execute("INSERT INTO %s VALUES (1, 'one')" % t)
        return t

    want = run_cc(pqxx_client, direct(), "shape", E2E_TABLE=table())
    one = [["id", "v"], [["1", "one"]]]
    assert want["steps"][:2] == [one] * 2
    assert want["steps"][2:4] == ["error 0A000", [["id", "v", "w"], [["1", "one", "7"]]]]
    assert want["steps"][-1] == [["id", "w", "v"], [["1", "7", "new"]]]
    for env in ({"DB_POOL_SIZE": "1", "DB_MAX_OVERFLOW": "0", "DB_POOL_TIMEOUT": "20"},
                POOL_ENV):
        out = run_cc(pqxx_client, proxy(env=env), "shape", E2E_TABLE=table())
        assert out == want, "through the proxy with %r" % env


def test_pqxx_pipeline_of_queries_and_an_error_in_the_middle(proxy, make_table, pqxx_client):
    out, want = both(pqxx_client, proxy(), "pipeline", make_table, "id int primary key, v text")
    # after the error libpqxx reports the third query as 25P02 or as not run,
    # depending on how far the answers had arrived
    for o in (out, want):
        third = o["error_pipeline"].pop()
        assert third == "error 25P02" or third.startswith("other: Could not complete query")
    assert out == want
    assert out["results"] == [str(i) for i in range(20)] + ["20"]
    assert out["error_pipeline"] == ["", "error 22012"]
    assert out["after"] == [["20", str(sum(range(20)))]]


def test_pqxx_notification_receiver_gets_notifications_from_other_connections(
        proxy, pqxx_client):
    ch = unique("pqxxch")
    out = run_cc(pqxx_client, proxy(), "listen", E2E_CHANNEL=ch)
    assert out["notifications"] == ["%s:payload %d ✓" % (ch, i) for i in range(5)] + [
        "%s:last" % ch]
    assert out["after"] == 3
