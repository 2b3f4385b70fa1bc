"""Postgres.js (npm `postgres`) through the proxy in transaction pooling mode,
with the driver's default settings.

Postgres.js prepares every parameterized query as a named statement: the first
run of a query sends Parse(name) + Describe + Flush *without* Sync and only
after the ParameterDescription sends Bind/Execute/Sync; later runs send just
Bind/Execute/Sync, pipelined, many at once on one connection.  Cursors send
Execute with a row limit and Flush, and Sync only at the end.  Each scenario
lives in postgres_js_client.js and prints a JSON summary; the tests check it
against fixed expectations and, where the answer is data, against the same
scenario run directly against PostgreSQL.  The client reports every silent
re-run the driver makes when a named statement is unknown to the server
(`retries`), so a proxy that lost a statement cannot hide behind the driver.
"""

import os
import shutil
import threading

import pytest

import drivers
from drivers import direct
from conftest import DIRECT, HERE, PG_PORT, pg_super, unique

CLIENT = os.path.join(HERE, "postgres_js_client.js")
PIN_LINE = "pinned to its server connection"
HEALTH_APP = "fastnext-proxy health"

TYPES_TABLE = (
    "id int primary key, i int, t text, n numeric, ts timestamptz, j jsonb, b bytea, "
    "ai int[], at text[]"
)


def node_modules():
    """tests/e2e/node_modules (or PX_NODE_MODULES) holding `postgres`, else skip."""
    if shutil.which("node") is None:
        pytest.skip("node is not installed")
    for d in (os.environ.get("PX_NODE_MODULES"), os.path.join(HERE, "node_modules")):
        if d and os.path.isfile(os.path.join(d, "postgres", "package.json")):
            return d
    pytest.skip(
        "npm package 'postgres' (Postgres.js) is not installed in tests/e2e/node_modules: "
        "run `npm ci` in tests/e2e (scripts/deps.sh)"
    )


def run_js(ep, scenario, timeout=45, **env):
    """Run one scenario against ep; return its JSON summary (fails on a
    non-zero exit with the client's output)."""
    extra = {"NODE_PATH": node_modules(), "E2E_TIMEOUT_MS": str(int(timeout * 1000) - 2000)}
    out = drivers.run_client(["node", CLIENT, scenario], ep, "postgres.js", timeout,
                             extra_env=extra, cwd=HERE, **env)[0]
    retries = out.pop("retries")
    assert retries == [], (
        "the driver had to re-run queries whose named statement the server did not know "
        "([sqlstate, routine, message, sql], ...): %r" % retries)
    return out


def pin_lines(px):
    if px.direct:
        return []
    return [ln for ln in px.stderr_text().splitlines() if PIN_LINE in ln]


class PeakBackends:
    """Samples, in a thread, the most client backends of fnx (started after
    construction, other than the proxy's health probe) PostgreSQL has at once."""

    def __init__(self):
        with pg_super() as s:
            self.since = s.execute("SELECT now()").fetchone()[0]
        self.peak = 0
        self._stop = threading.Event()
        self._th = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        with pg_super() as s:
            while not self._stop.is_set():
                (n,) = s.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE usename = 'fnx' "
                    "AND backend_type = 'client backend' AND backend_start >= %s "
                    "AND application_name <> %s", (self.since, HEALTH_APP)).fetchone()
                self.peak = max(self.peak, n)
                self._stop.wait(0.05)

    def __enter__(self):
        self._th.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._th.join(5)


# ---------------------------------------------------------------- tests


def test_postgres_js_parameters_of_every_common_type_round_trip_as_directly(proxy, make_table):
    px = proxy()
    via_proxy = run_js(px, "types", E2E_TABLE=make_table(TYPES_TABLE))
    via_pg = run_js(direct(), "types", E2E_TABLE=make_table(TYPES_TABLE))
    assert via_proxy == via_pg
    sel = via_proxy["select"][0]
    assert sel["i"] == 42 and sel["i8"] == "-9007199254740993"
    assert sel["t"] == "héllo wörld 'quoted' \"dq\" \\ back"
    assert sel["n"] == "12345678901234567890.123456789"
    assert sel["ts"] == {"date": "2024-02-29T12:34:56.789Z"}
    assert sel["j"] == {"a": [1, 2, {"b": None}], "s": "x", "u": "ü"}
    assert sel["b"] == {"hex": "000102275cfeff"}
    assert sel["ai"] == [1, -2, 3] and sel["at"] == ["a", "b c", 'd"e', "{x}", "NULL?"]
    assert sel["nul"] is None and sel["nul_t"] is None and sel["bo"] is True
    assert sel["f"] == 1.5 and sel["u"] == "0e9d8c1f-3a6b-4a43-9f57-0c1b8e2a7d55"
    rows = via_proxy["table"]
    assert [r["id"] for r in rows] == [1, 2, 3, 4]
    assert rows[2]["b"] == {"hex": "000102275cfeff03"} and rows[2]["ai"] == [1, -2, 3, 3]
    assert rows[1]["j"]["id"] == 2 and rows[1]["ts"] == {"date": "2024-02-29T12:34:58.789Z"}
    assert all(v is None for k, v in rows[3].items() if k != "id")
    assert via_proxy["table_again"] == rows
    assert via_proxy["where_in"] == [1, 3, 4] and via_proxy["any"] == [2, 4]
    assert via_proxy["param_error"] == "22P02"


def test_postgres_js_statement_cache_reuses_one_statement_and_survives_1100_distinct(proxy):
    """300 runs of one query use one driver statement; 1100 distinct
    statements on one client (more than the proxy keeps per server
    connection) all answer, and re-running the oldest 100 still works."""
    px = proxy()
    out = run_js(px, "repeat")
    assert out["values"] == [2 * i for i in range(300)]
    assert out["names"] == 1
    assert out["distinct_ok"] == 1100
    assert out["rerun_ok"] == 100


@pytest.mark.parametrize("cache", ["cache_off", "cache_on"])
def test_postgres_js_600_pipelined_queries_on_one_connection_get_their_own_answers(proxy, cache):
    """Twice the same 600 queries in flight on one connection, errors among
    them.  With the result cache on (the proxy's production default) the
    second round's repeated queries are answered from the cache while the
    others go to PostgreSQL, in the same pipeline."""
    px = proxy(env={"CACHE_ENABLED": "true" if cache == "cache_on" else "false"})
    out = run_js(px, "pipelined")
    assert out["rounds"] == [{"n": 600, "errors": 50, "mismatches": [], "n_mismatches": 0}] * 2
    # a syntax error and an unknown table between good queries in one pipeline
    assert out["mid"] == [1, "42601", 2, "42P01", 3]
    assert out["after"] == 7
    if cache == "cache_off":
        assert run_js(direct(), "pipelined") == out


def test_postgres_js_begin_commits_rolls_back_and_keeps_statements_like_postgres(
        proxy, make_table):
    px = proxy()
    via_proxy = run_js(px, "transactions", E2E_TABLE=make_table("id int primary key, v text"))
    via_pg = run_js(direct(), "transactions", E2E_TABLE=make_table("id int primary key, v text"))
    assert via_proxy == via_pg
    assert via_proxy["commit"] == 2
    assert via_proxy["thrown"] == "APP"
    assert via_proxy["server_error"] == "23505"
    assert via_proxy["savepoint"] == {"inner": "23505", "count_in_tx": 3}
    assert via_proxy["array_form"] == "a2"
    assert via_proxy["in_tx_concurrent"] == 50
    assert via_proxy["isolation"] == "repeatable read"
    assert via_proxy["rolled_back_prepares"] == [
        ["22012", 1002], ["Error: app", 2002], ["22012", 3002]]
    assert via_proxy["cursor_in_tx"] == [10300, 5]
    assert via_proxy["rows"] == [[1, "one"], [2, "two"], [5, "outer"], [7, "a2"]]
    assert via_proxy["total"] == 54


def test_postgres_js_unsafe_multi_statement_text_rolls_back_on_error(proxy, make_table):
    px = proxy()
    via_proxy = run_js(px, "unsafe", E2E_TABLE=make_table("id int primary key, v text"))
    via_pg = run_js(direct(), "unsafe", E2E_TABLE=make_table("id int primary key, v text"))
    assert via_proxy == via_pg
    # (the driver labels each result of a multi-statement text with the
    # command of the one after it: directly too)
    assert [r[2] for r in via_proxy["multi"]] == [[{"a": 1}], [{"n": 2}], [{"c": "z"}]]
    assert via_proxy["multi_error"] == "22012"
    assert via_proxy["after_error"] == 2
    assert via_proxy["unnamed"] == {"s": 42, "t": "u"}
    assert via_proxy["simple"] == [[{"five": 5}], [{"six": 6}]]
    assert via_proxy["set_and_show"] == "7MB"


def test_postgres_js_copy_from_stdin_and_to_stdout_20k_rows(proxy, make_table):
    px = proxy()
    t = make_table("id int primary key, v text")
    out = run_js(px, "copy", E2E_TABLE=t)
    assert out["count"] == {"n": 20000, "s": "200010000"}
    assert out["copy_out_ok"] is True
    with pg_super() as c:
        assert c.execute("SELECT count(*), max(v) FROM %s" % t).fetchone() == (20000, "v9999")


def test_postgres_js_listen_receives_every_notify_and_pins_the_listener(proxy):
    px = proxy()
    out = run_js(px, "listen", E2E_CHANNEL=unique("ch"))
    assert out["got"] == ["n0", "n1", "n2", "n3", "n4", "n5"]
    assert out["after"] == 1
    if not px.direct:
        assert len(pin_lines(px)) == 1, pin_lines(px)
        assert pin_lines(px)[0].endswith(": LISTEN"), pin_lines(px)


def test_postgres_js_100k_row_result_and_cursors_match_postgres(proxy):
    px = proxy()
    out = run_js(px, "large")
    assert out["count"] == 100000 and out["sum"] == 5000050000 and out["ordered"] is True
    assert out["h_last"] == "14ee22eaba297944c96afdbe5b16c65b"  # md5('100000')
    assert out["cursor"] == {"seen": 100000, "sum": 5000050000, "batches": 100}
    assert out["cursor_closed_early"] == 500
    assert out["for_each"] == 5000
    assert out["after"] == 3
    assert run_js(direct(), "large") == out


def test_postgres_js_cancel_stops_a_running_query_and_client_goes_on(proxy):
    px = proxy()
    out = run_js(px, "cancel")
    assert out["code"] == "57014"
    assert out["ms"] < 5000, out
    assert out["after"] == 8


@pytest.mark.timeout_s(60)
def test_postgres_js_24_clients_over_pool_of_4_thousands_of_queries_no_errors(proxy, make_table):
    px = proxy(env={"DB_POOL_SIZE": "4", "DB_MAX_OVERFLOW": "0", "DB_POOL_TIMEOUT": "30",
                    "CLIENT_LOGIN_TIMEOUT": "30"})
    t = make_table("id int primary key, n int, v text")
    clients, rounds = 24, 60
    with PeakBackends() as peak:
        out = run_js(px, "stress", timeout=50, E2E_TABLE=t, E2E_CLIENTS=clients,
                     E2E_ROUNDS=rounds)
    assert out["errors"] == []
    assert out["bad"] == []
    assert out["queries"] == clients * rounds * 8
    with pg_super() as c:
        rows = c.execute("SELECT id, n, length(v) FROM %s ORDER BY id" % t).fetchall()
    assert rows == [(i, rounds, rounds) for i in range(1, clients + 1)]
    if not DIRECT:
        assert 0 < peak.peak <= 4, "PostgreSQL saw %d fnx backends at once" % peak.peak


# ------------------------------------ a statement's result shape changing under it

# one server connection; DDL goes straight to PostgreSQL, so no result cache
# and no replicas (which could lag it)
SHAPE_ENV = {"DB_POOL_SIZE": "1", "DB_MAX_OVERFLOW": "0", "DB_POOL_TIMEOUT": "20",
             "CACHE_ENABLED": "false", "POSTGRES_READ_REPLICAS": None}

SHAPE_OK = [[{"id": 1, "v": "one"}],
            [{"id": 1, "v": "one", "w": 7}], [{"id": 1, "v": "one", "w": 7}],
            [{"id": 1, "w": 7, "v": 5}], [{"id": 1, "w": 7, "v": 5}]]


def shape_table(make_table):
    t = make_table("id int, v text")
    with pg_super() as c:
        c.execute("INSERT INTO %s VALUES (1, 'one')" % t)
    return t


def test_postgres_js_named_statement_never_runs_with_another_clients_result_shape(
        proxy, make_table):
    """Two clients share one server connection (DB_POOL_SIZE=1) and run the
    same prepared `select *`; the table gains a column, later swaps one.
    PostgreSQL answers each client's own statement with 0A000 and the driver
    re-prepares; through the proxy the first client's re-Parse must not
    change what the other client's statement returns under its cached
    RowDescription."""
    px = proxy(env=SHAPE_ENV)
    out = run_js(px, "shape", E2E_TABLE=shape_table(make_table), E2E_SUPER_PORT=PG_PORT)
    assert out["a"] == [SHAPE_OK[0], SHAPE_OK[1], SHAPE_OK[3]]
    assert out["b"] == SHAPE_OK


def test_postgres_js_named_statement_reprepared_on_a_new_server_connection_keeps_its_shape(
        proxy, make_table):
    """One client's prepared `select *`; the table changes shape and the
    server connection is replaced, so the proxy prepares the statement again
    on a new server connection.  The client must see what PostgreSQL would
    give it (0A000, healed by the driver's re-prepare), never rows of the new
    shape decoded with the old RowDescription."""
    if DIRECT:
        pytest.skip("PX_E2E_DIRECT=1: terminating the server connection ends the client")
    px = proxy(env=SHAPE_ENV)
    out = run_js(px, "shape", E2E_TABLE=shape_table(make_table), E2E_SUPER_PORT=PG_PORT,
                 E2E_RECONNECT=1)
    assert out["terminated"] == [1, 1], "the server connection was not replaced: %r" % out
    assert out["b"] == SHAPE_OK
