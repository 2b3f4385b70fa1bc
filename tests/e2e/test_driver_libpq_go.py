"""lib/pq (Go, Debian's golang-github-lib-pq-dev) through database/sql and the
proxy in transaction pooling mode, with the driver's defaults.

lib/pq sends a query without arguments as a simple Query.  With arguments it
sends Parse of the *unnamed* statement + Describe + Sync, reads the
description, then Bind/Execute/Sync in a second round trip (binary_parameters
off: every parameter in text), so under transaction pooling the two halves of
one autocommit statement may meet different server connections.  db.Prepare
makes named statements "1", "2", ... on each connection of database/sql's
pool.  COPY FROM runs through pq.CopyIn inside a transaction (COPY TO is
refused by lib/pq itself), a cancelled context sends a CancelRequest,
pq.Listener keeps its own connection.  libpq_go/pqclient.go (built offline
against /usr/share/gocode in GOPATH mode) runs each scenario and prints a JSON
summary; the tests check it against fixed expectations and, where the answer
is data, against the same scenario run directly against PostgreSQL.
"""

import os
import shutil
import subprocess

import pytest

import drivers
from drivers import direct
from conftest import HERE, pg_super, unique

GOPATH_SYSTEM = os.environ.get("PX_GOCODE", "/usr/share/gocode")
SOURCE = os.path.join(HERE, "libpq_go", "pqclient.go")

# more client connections than server connections
POOL_ENV = {"DB_POOL_SIZE": "4", "DB_MAX_OVERFLOW": "2", "DB_POOL_TIMEOUT": "20"}

TYPES_TABLE = ("id int primary key, i4 int, i8 bigint, n numeric, t text, b bytea, bo bool, "
               "tz timestamptz, d date, j json, jb jsonb, ai int[], at text[], u uuid, f8 float8")


@pytest.fixture(scope="module")
def pq_client(tmp_path_factory):
    """libpq_go/pqclient.go built against Debian's lib/pq; skips when Go or lib/pq is missing."""
    if shutil.which("go") is None:
        pytest.skip("go is not installed (Debian package golang-go, scripts/deps.sh)")
    if not os.path.isdir(os.path.join(GOPATH_SYSTEM, "src", "github.com", "lib", "pq")):
        pytest.skip(
            "lib/pq not found under %s: install the Debian package golang-github-lib-pq-dev "
            "(scripts/deps.sh) or set PX_GOCODE" % GOPATH_SYSTEM)
    work = tmp_path_factory.mktemp("pq")
    src = work / "src" / "pqclient"
    src.mkdir(parents=True)
    shutil.copy(SOURCE, str(src / "main.go"))
    binary = str(work / "pqclient")
    env = dict(os.environ, GO111MODULE="off", GOFLAGS="", GOPROXY="off",
               GOPATH="%s:%s" % (GOPATH_SYSTEM, work))
    if not os.environ.get("GOCACHE") and not os.environ.get("HOME"):
        env["GOCACHE"] = str(work / "cache")
    r = subprocess.run(["go", "build", "-o", binary, "."], cwd=str(src), env=env,
                       capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, "go build pqclient failed:\n%s%s" % (r.stdout, r.stderr)
    return binary


def run_go(binary, ep, scenario, timeout=45, **env):
    """Run one scenario against ep; return its JSON summary."""
    return drivers.run_client([binary, scenario], ep, "pqclient", timeout, **env)[0]


def both(binary, px, scenario, make_table=None, cols=None, **env):
    return drivers.both(lambda ep, sc, **e: run_go(binary, ep, sc, **e), px, scenario,
                        make_table, cols, **env)


# ---------------------------------------------------------------- tests


def test_pq_simple_queries_and_unnamed_two_round_trip_statements_match_postgres(
        proxy, make_table, pq_client):
    out, want = both(pq_client, proxy(), "simple", make_table, "id int primary key, v text")
    assert out == want
    assert out == {"delete": 0, "rows": [["1", "one"], ["2", "two!"]],
                   "literal": [["1", "x", "<null>", "2.5"]], "columns": ["a", "b", "c", "d"],
                   "div0": "22012", "div0_param": "22012", "user": "fnx",
                   "repeat_sum": 2 * sum(range(50))}


def test_pq_text_parameters_and_results_of_many_types_round_trip_like_postgres(
        proxy, make_table, pq_client):
    out, want = both(pq_client, proxy(), "types", make_table, TYPES_TABLE)
    assert out == want
    rows = out["rows"]
    assert rows == out["rows_simple"]
    assert len(rows) == 7
    assert rows[3] == [
        "4", "-28", "-36028797018963972", "12345678901234567890.123456781",
        "héllo 'wörld' ✓ 4 日本", "\\x000102275cfeff04", "true",
        "2024-02-29T14:34:56.123456Z", "2000-01-04T00:00:00Z",
        '{"a": [1, 2, {"b": null}], "u": "ü", "i": 4}', '{"k": "v", "n": 4}', "{1,-2,4}",
        '{a,"b c","d\\"e","{x}","NULL"}', "0e9d8c1f-3a6b-4a43-9f57-0c1b8e2a7d56", "6"]
    assert rows[5][10:12] == ['{"ключ": [true, null]}', "{1,NULL,3}"]
    assert rows[6] == ["7"] + ["<null>"] * 14
    assert out["scanned"] == [
        -14, "-18014398509481986", "héllo 'wörld' ✓ 2 日本", "000102275cfeff02", True,
        "2024-02-29T12:34:56.123456Z", "2000-01-02", [1, -2, 2],
        ["a", "b c", 'd"e', "{x}", "NULL"], "0e9d8c1f-3a6b-4a43-9f57-0c1b8e2a7d56",
        "12345678901234567890.123456781"]
    assert out["nulls"] == [True, True]
    assert out["echo"] == ["0.000000000200000000000000000002", "ünï✓", '{"x": [1, 2.5, "y"]}',
                           "00ff"]


def test_pq_10_pool_connections_reuse_named_and_unnamed_statements_over_6_servers(
        proxy, make_table, pq_client):
    px = proxy(env=POOL_ENV)
    t = make_table("id int primary key, k int, v text")
    out = run_go(pq_client, px, "prepared_pool", E2E_TABLE=t)
    assert out["errors"] == [], out["errors"][:10]
    assert out["rows"] == 10 * 40
    assert out["open_conns"] >= 2
    with pg_super() as c:
        assert c.execute("SELECT sum(k) FROM %s" % t).fetchone()[0] == 10 * sum(range(40))


def test_pq_transactions_error_mid_transaction_rollback_savepoint_and_23505(
        proxy, make_table, pq_client):
    out, want = both(pq_client, proxy(), "transactions", make_table,
                     "id int primary key, v text")
    assert out == want
    assert out["mid_tx_error"] == "22012"
    assert out["in_failed_tx"] == "25P02" and out["in_failed_tx_simple"] == "25P02"
    assert out["dup_autocommit"] == "23505" and out["dup_simple"] == "23505"
    assert out["dup_constraint"] is True and out["dup_table"] is True
    assert out["dup_in_tx"] == "23505"
    assert out["commit_after_error"] == (
        "go:pq: Could not complete operation in a failed transaction")
    assert out["dup_in_savepoint"] == "23505"
    assert out["rows"] == [["0", "tx0"], ["2", "tx2"], ["4", "tx4"], ["102", "after rollback"],
                           ["200", "outer"], ["201", "after savepoint"]]


@pytest.mark.timeout_s(60)
def test_pq_200k_rows_extended_and_simple_and_an_abandoned_result(proxy, pq_client):
    out = run_go(pq_client, proxy(), "large", E2E_ROWS=200000)
    assert out["round0"][:2] == [200000, 200000 * 200001 // 2]
    assert out["round1"] == out["round0"]
    assert out["after_abandon"] == 1
    assert run_go(pq_client, direct(), "large", E2E_ROWS=200000) == out


def test_pq_copyin_in_a_transaction_and_a_failing_copy(proxy, make_table, pq_client):
    cols = "id int primary key, v text, b bytea"
    out, want = both(pq_client, proxy(), "copy", make_table, cols)
    assert out == want
    assert out["copy_dup"] == "23505"
    assert out["copy_outside_tx"] == "go:pq: COPY is only allowed inside a transaction"
    assert out["after"][:2] == [20000, 200]


def test_pq_context_cancel_and_deadline_stop_the_server_query(proxy, pq_client):
    out = run_go(pq_client, proxy(), "cancel", E2E_MARKER=unique("pqcancel"))
    assert out["cancel"] == "57014" and out["cancel_fast"] is True
    assert out["deadline"] == "57014" and out["deadline_fast"] is True
    assert out["after"] == 42
    assert out["sleepers_left"] == 0


def test_pq_session_statement_timeout_follows_the_client_across_transactions(
        proxy, pq_client):
    out = run_go(pq_client, proxy(), "timeout")
    assert out == run_go(pq_client, direct(), "timeout")
    assert out == {"timeout": "57014", "timeout_fast": True, "show": "300ms",
                   "timeout_again": "57014", "local_longer": "", "show_after_local": "300ms",
                   "timeout_in_tx": "57014", "after": 5, "other_conn": "0"}


def test_pq_12_goroutines_one_shot_queries_with_arguments_get_their_own_answers(
        proxy, pq_client):
    """Each goroutine's `SELECT $1::int + <w>000, $2 || '-w<w>'` must answer with its
    own statement, 12 x 100 times over 6 server connections."""
    out = run_go(pq_client, proxy(env=POOL_ENV), "unnamed", E2E_WORKERS=12)
    assert out["errors"] == {}


@pytest.mark.timeout_s(60)
def test_pq_16_goroutines_mixed_transactions_see_their_own_writes(
        proxy, make_table, pq_client):
    px = proxy(env=POOL_ENV)
    t = make_table("id int primary key, n int, v text")
    out = run_go(pq_client, px, "concurrent", E2E_TABLE=t, E2E_WORKERS=16)
    assert out["errors"] == []
    committed = 30 - 30 // 4
    assert out["rows"] == [[str(w), str(committed), str(committed)] for w in range(16)]


def test_pq_prepared_and_unnamed_select_star_after_alter_table_end_like_postgres(
        proxy, make_table, pq_client):
    def table():
        t = make_table("id int, v text")
        with pg_super() as c:
            c.execute("INSERT INTO %s VALUES (1, 'one')" % t)
        return t

    want = run_go(pq_client, direct(), "shape", E2E_TABLE=table())
    one = [["id", "v"], [["1", "one"]]]
    assert want["steps"][:2] == [one] * 2
    assert want["steps"][2:4] == ["error 0A000", [["id", "v", "w"], [["1", "one", "7"]]]]
    assert want["steps"][-1] == [["id", "w", "v"], [["1", "7", "new"]]]
    for env in ({"DB_POOL_SIZE": "1", "DB_MAX_OVERFLOW": "0", "DB_POOL_TIMEOUT": "20"},
                POOL_ENV):
        out = run_go(pq_client, proxy(env=env), "shape", E2E_TABLE=table())
        assert out == want, "through the proxy with %r" % env


def test_pq_listener_receives_notifications_from_pool_connections(proxy, pq_client):
    ch = unique("pqch")
    out = run_go(pq_client, proxy(), "listen", E2E_CHANNEL=ch)
    assert out["notifications"] == ["%s:payload %d ✓" % (ch, i) for i in range(5)] + [
        "%s:last" % ch]
    assert out["ping"] == ""
    assert "event_error" not in out
