"""pgx v4 (Go, Debian's golang-github-jackc-pgx-v4-dev) through the proxy in
transaction pooling mode, with the driver's defaults.

pgx runs every query with arguments through the extended protocol and its
per-connection statement cache: the first run sends Parse(lrupsc_<conn>_<n>)
+ Describe + Sync, later runs Bind/Execute/Sync with binary formats for every
type it knows; a query without arguments passed to Exec is a simple Query.
Names are per process (lrupsc_1_0 in two processes means two different
statements).  pgxpool keeps several such connections, so under transaction
pooling each named statement meets several server connections.  A context
deadline makes pgx send a CancelRequest and close the connection.
go/pgxclient.go (built offline against /usr/share/gocode in GOPATH mode) runs
each scenario and prints a JSON summary; the tests check it against fixed
expectations and, where the answer is data, against the same scenario run
directly against PostgreSQL.
"""

import json
import os
import shutil
import subprocess

import pytest

import drivers
from drivers import direct
from conftest import HERE, pg_env, pg_super, unique

GOPATH_SYSTEM = os.environ.get("PX_GOCODE", "/usr/share/gocode")
SOURCE = os.path.join(HERE, "go", "pgxclient.go")

# more client connections than server connections: every named statement
# meets several server connections
POOL_ENV = {"DB_POOL_SIZE": "4", "DB_MAX_OVERFLOW": "2", "DB_POOL_TIMEOUT": "20"}


@pytest.fixture(scope="module")
def pgx_client(tmp_path_factory):
    """go/pgxclient.go built against Debian's pgx v4; skips when Go or pgx is missing."""
    if shutil.which("go") is None:
        pytest.skip("go is not installed (Debian package golang-go, scripts/deps.sh)")
    if not os.path.isdir(os.path.join(GOPATH_SYSTEM, "src", "github.com", "jackc", "pgx", "v4")):
        pytest.skip(
            "pgx v4 not found under %s: install the Debian package "
            "golang-github-jackc-pgx-v4-dev (scripts/deps.sh) or set PX_GOCODE" % GOPATH_SYSTEM)
    work = tmp_path_factory.mktemp("pgx")
    src = work / "src" / "pgxclient"
    src.mkdir(parents=True)
    shutil.copy(SOURCE, str(src / "main.go"))
    binary = str(work / "pgxclient")
    env = dict(os.environ, GO111MODULE="off", GOFLAGS="", GOPROXY="off",
               GOPATH="%s:%s" % (GOPATH_SYSTEM, work))
    if not os.environ.get("GOCACHE") and not os.environ.get("HOME"):
        env["GOCACHE"] = str(work / "cache")  # else go's own cache makes rebuilds quick
    r = subprocess.run(["go", "build", "-o", binary, "."], cwd=str(src), env=env,
                       capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, "go build pgxclient failed:\n%s%s" % (r.stdout, r.stderr)
    return binary


def go_env(ep, **env):
    return pg_env(ep, **{k: str(v) for k, v in env.items()})


def run_go(binary, ep, scenario, timeout=45, **env):
    """Run one scenario against ep; return its JSON summary."""
    return drivers.run_client([binary, scenario], ep, "pgxclient", timeout, **env)[0]


# ---------------------------------------------------------------- tests


def test_pgx_simple_query_multi_statement_and_autocommit_error_match_postgres(
        proxy, make_table, pgx_client):
    px = proxy()
    out = run_go(pgx_client, px, "simple", E2E_TABLE=make_table("id int primary key, v text"))
    assert out == run_go(pgx_client, direct(), "simple",
                         E2E_TABLE=make_table("id int primary key, v text"))
    assert out["rows"] == [["1", '"one"'], ["2", '"two!"']]
    assert out["delete_tag"] == "DELETE 0"
    assert out["agg"] == "1,2,3,4,5"
    assert out["literal"] == [["1", '"x"', "<null>", "2.5"]]
    assert out["div0"] == "22012"
    assert out["user"] == "fnx"


def test_pgx_binary_parameters_and_results_of_many_types_round_trip_like_postgres(
        proxy, make_table, pgx_client):
    px = proxy()
    cols = ("id int primary key, i4 int, i8 bigint, n numeric, t text, b bytea, bo bool, "
            "tz timestamptz, d date, j json, jb jsonb, ai int[], at text[], u uuid, f8 float8")
    out = run_go(pgx_client, px, "types", E2E_TABLE=make_table(cols))
    assert out == run_go(pgx_client, direct(), "types", E2E_TABLE=make_table(cols))
    rows = out["rows"]
    assert len(rows) == 7
    assert rows[1] == [
        "2", "-14", "-18014398509481986", "12345678901234567890.123456781",
        '"héllo \'wörld\' ✓ 2 日本"', "\\x000102275cfeff02", "true",
        "2024-02-29T12:34:56.123456Z", "2000-01-02T00:00:00Z",
        '{"a":[1,2,{"b":null}],"i":2,"u":"ü"}', '{"k":"v","n":2}', "{1,-2,2}",
        '{a,b c,"d\\"e","{x}","NULL"}', "0e9d8c1f3a6b4a439f570c1b8e2a7d56", "3"]
    assert rows[5][10:12] == ['{"ключ":[true,null]}', "{1,NULL,3}"]
    assert rows[6] == ["7"] + ["<null>"] * 14
    assert out["scanned"] == [
        -14, "-18014398509481986", "héllo 'wörld' ✓ 2 日本", "000102275cfeff02", True,
        "2024-02-29T12:34:56.123456Z", "2000-01-02", [1, -2, 2],
        ["a", "b c", 'd"e', "{x}", "NULL"], "0e9d8c1f3a6b4a439f570c1b8e2a7d56",
        "12345678901234567890.123456781"]
    assert out["nulls"] == [True, True]
    assert out["echo"] == ["0.000000000200000000000000000002", "ünï✓",
                           {"x": [1, 2.5, "y"]}]
    assert out["numeric_binary"] == "-98765432109876543.210"


def test_pgx_cached_named_statements_of_two_processes_meet_many_server_connections(
        proxy, make_table, pgx_client):
    """Two processes (12 goroutines over a pgxpool of 6 each) run the same four
    statements, one in the opposite order: lrupsc_1_0 is an INSERT in one
    process and `SELECT $1 + $2` in the other.  Six server connections."""
    px = proxy(env=POOL_ENV)
    t = make_table("id int primary key, k int, v text")
    procs = []
    for offset, reverse in ((0, "0"), (100000, "1")):
        procs.append(subprocess.Popen(
            [pgx_client, "prepared_pool"],
            env=go_env(px, E2E_TABLE=t, E2E_OFFSET=offset, E2E_REVERSE=reverse),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outs = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=50)
        assert p.returncode == 0, "pgxclient prepared_pool failed:\n%s\n%s" % (stdout, stderr)
        outs.append(json.loads(stdout.strip().splitlines()[-1]))
    for out in outs:
        assert out["errors"] is None, out["errors"][:10]
        assert out["rows"] == 12 * 40
        assert out["pool_conns"] >= 2
    with pg_super() as c:
        assert c.execute("SELECT count(*), sum(k) FROM %s" % t).fetchone() == (
            2 * 12 * 40, 2 * 12 * sum(range(40)))


def test_pgx_transactions_commit_rollback_error_mid_transaction_and_unique_violation(
        proxy, make_table, pgx_client):
    px = proxy()
    cols = "id int primary key, v text"
    out = run_go(pgx_client, px, "transactions", E2E_TABLE=make_table(cols))
    assert out == run_go(pgx_client, direct(), "transactions", E2E_TABLE=make_table(cols))
    assert out["mid_tx_error"] == "22012"
    assert out["in_failed_tx"] == "25P02"
    assert out["dup_autocommit"] == "23505"
    assert out["dup_constraint"] is True and out["dup_table"] is True
    assert out["dup_in_tx"] == "23505"
    assert out["commit_after_error"].startswith("go:commit unexpectedly resulted in rollback")
    assert out["dup_in_savepoint"] == "23505"
    assert out["begin_func"] == "go:app error"
    assert out["rows"] == [["0", '"tx0"'], ["2", '"tx2"'], ["4", '"tx4"'],
                           ["102", '"after rollback"'], ["200", '"outer"'],
                           ["201", '"after savepoint"']]


@pytest.mark.timeout_s(60)
def test_pgx_streams_200k_rows_twice_and_abandons_a_result_half_way(proxy, pgx_client):
    px = proxy()
    out = run_go(pgx_client, px, "large", E2E_ROWS=200000)
    assert out["round0"][:2] == [200000, 200000 * 200001 // 2]
    assert out["round1"] == out["round0"]
    assert out["after_abandon"] == 1
    assert run_go(pgx_client, direct(), "large", E2E_ROWS=200000) == out


def test_pgx_copy_from_binary_and_text_copy_to_and_copy_errors(proxy, make_table, pgx_client):
    px = proxy()
    cols = "id int primary key, v text, b bytea"
    out = run_go(pgx_client, px, "copy", E2E_TABLE=make_table(cols))
    assert out == run_go(pgx_client, direct(), "copy", E2E_TABLE=make_table(cols))
    assert out["copied_in"] == 20000
    assert out["copy_dup"] == "23505"
    assert out["text_copy_in"] == "COPY 2"
    assert out["copy_out_tag"] == "COPY 20002"
    assert out["copy_out_lines"] == 20002
    assert out["copy_out_last"] == ["50000\ttext copy\t\\\\x00ff", "50001\t\\N\t\\N"]
    assert out["copy_out_error"] == "22012"
    assert out["nulls"] == 201


def test_pgx_cancel_request_and_context_deadline_stop_the_server_query(proxy, pgx_client):
    px = proxy()
    out = run_go(pgx_client, px, "cancel", E2E_MARKER=unique("pgxcancel"))
    assert out["cancel"] == "57014"
    assert out["cancel_fast"] is True
    assert out["after_cancel"] == 42
    assert out["deadline_error"] is True and out["deadline_fast"] is True
    assert out["after_deadline"] == 42
    assert out["sleepers_left"] == 0


def test_pgx_session_statement_timeout_follows_the_client_across_transactions(
        proxy, pgx_client):
    px = proxy()
    out = run_go(pgx_client, px, "timeout")
    assert out == run_go(pgx_client, direct(), "timeout")
    assert out["timeout"] == "57014" and out["timeout_fast"] is True
    assert out["show"] == "300ms"
    assert out["timeout_again"] == "57014"
    assert out["local_longer"] == ""
    assert out["show_after_local"] == "300ms"
    assert out["timeout_in_tx"] == "57014"
    assert out["after"] == 5
    assert out["other_conn"] == "0"


@pytest.mark.timeout_s(60)
def test_pgx_16_goroutines_mixed_transactions_see_their_own_writes(
        proxy, make_table, pgx_client):
    px = proxy(env=POOL_ENV)
    t = make_table("id int primary key, n int, v text")
    out = run_go(pgx_client, px, "concurrent", E2E_TABLE=t, E2E_WORKERS=16)
    assert out["errors"] == []
    committed = 30 - 30 // 4
    assert out["rows"] == [[str(w), str(committed), str(committed)] for w in range(16)]


def test_pgx_cached_select_star_after_alter_table_ends_like_postgres(
        proxy, make_table, pgx_client):
    """pgx's cached `SELECT *` across ADD COLUMN / DROP COLUMN: PostgreSQL
    answers the stale statement with 0A000 once, pgx drops it from its cache
    and the next run prepares it again.  Through the proxy every step must
    be the same, on one server connection or several."""

    def table():
        t = make_table("id int, v text")
        with pg_super() as c:
            c.execute("INSERT INTO %s VALUES (1, 'one')" % t)
        return t

    want = run_go(pgx_client, direct(), "shape", E2E_TABLE=table())
    one = ["id", "v"], [["1", '"one"']]
    assert want["steps"][:3] == [list(one)] * 3
    assert want["steps"][-1] == [["id", "w", "v"], [["1", "7", '"new"']]]
    for env in ({"DB_POOL_SIZE": "1", "DB_MAX_OVERFLOW": "0", "DB_POOL_TIMEOUT": "20"},
                POOL_ENV):
        px = proxy(env=env)
        out = run_go(pgx_client, px, "shape", E2E_TABLE=table())
        assert out == want, "through the proxy with %r" % env


def test_pgx_listen_receives_notifications_from_pool_connections(proxy, pgx_client):
    px = proxy()
    ch = unique("pgxch")
    out = run_go(pgx_client, px, "listen", E2E_CHANNEL=ch)
    assert out["notifications"] == ["%s:payload %d ✓" % (ch, i) for i in range(5)] + [
        "%s:last" % ch]
    assert out["after"] == 3


def test_pgx_database_sql_prepared_statements_transactions_and_errors(
        proxy, make_table, pgx_client):
    px = proxy(env=POOL_ENV)
    cols = "id int primary key, v text"
    out = run_go(pgx_client, px, "stdlib", E2E_TABLE=make_table(cols))
    assert out == run_go(pgx_client, direct(), "stdlib", E2E_TABLE=make_table(cols))
    assert out["errors"] == []
    assert out["dup"] == "23505" and out["in_failed_tx"] == "25P02"
    assert out["rows"] == 270  # 10 workers x 30, minus ids 0..29
