"""Differential protocol fuzzing: seeded random streams of frontend messages
(simple and extended query, pipelines, Flush, errors in pipelines and
transactions, SET/SHOW, SQL and protocol prepared statements, portals with row
limits, COPY both ways, FunctionCall) are sent once to PostgreSQL and once
through the proxy, each run on fresh scratch tables; the normalised backend
message streams and the tables' final contents must be the same (see
protodiff.py for the generator, the runner and what is normalised).

The wide generator (protodiff.Wide, test_driver_like_scenarios_...) adds what
drivers do around that: savepoints and SET/SET LOCAL/RESET/DISCARD in
transactions that commit or roll back, in both protocols; SQL PREPARE/EXECUTE
next to protocol statements; cursors (WITH HOLD); named portals read a few
rows at a time across Flushes and Syncs; Close/Describe of missing names;
LISTEN/NOTIFY; temporary tables; advisory locks; errors in the middle of
pipelines; extended COPY TO STDOUT; empty and very long queries;
multi-statement Queries mixing reads and writes.

PX_E2E_DIRECT=1 compares PostgreSQL with itself (the runner's own check).
PX_PROTODIFF_SEEDS=5000 (and PX_PROTODIFF_START=N) runs that many seeds per
configuration instead of the committed set, for exploration; a divergence is
shrunk to a minimal sequence and printed.  PX_PROTODIFF_WIDE=1 makes every
configuration use the wide generator.

The committed seeds steer around the known proxy bugs (protodiff.AVOID); each
of those has its own minimal reproduction below as a strict xfail.
"""

import os
import time
import warnings

import pytest

import protodiff as pd
from conftest import DIRECT, PASSWORDS, PG_HOST, PG_PORT, pg_super, skip_if_direct

START = int(os.environ.get("PX_PROTODIFF_START", "0"))
EXPLORE = int(os.environ.get("PX_PROTODIFF_SEEDS", "0"))
# PX_PROTODIFF_WIDE=1: every configuration generates the wide streams too
# (savepoints, settings in transactions, SQL PREPARE, cursors, LISTEN, temp
# tables, advisory locks, portals across Flush, very long queries, ...)
WIDE = os.environ.get("PX_PROTODIFF_WIDE", "") not in ("", "0")
SHRINK_SECONDS = 30


def seeds(n, base):
    """The committed seeds of a configuration (or the exploration range)."""
    if EXPLORE:
        return range(base + START, base + START + EXPLORE)
    return range(base, base + n)


def replica_conns(stack):
    import psycopg

    return [psycopg.connect(host=PG_HOST, port=stack[k], user="postgres", dbname="fnx",
                            autocommit=True, connect_timeout=5)
            for k in ("replica1", "replica2") if stack[k]]


def differ(ep, replicas=()):
    su = pg_super()
    return pd.Differ((PG_HOST, PG_PORT), (ep.host, ep.port), PASSWORDS["fnx"], su,
                     replica_conns=replicas)


def check(d, seqs, avoid=pd.KNOWN_BUGS, max_reports=3):
    """Run every sequence; fail with the shrunk reproductions of the first
    divergences; warn about ParameterStatus-only differences."""
    t0 = time.monotonic()
    outs = d.run_many(seqs)
    invalid = [o for o in outs if o.invalid]
    hard = [o for o in outs if o.hard]
    soft = [o for o in outs if o.soft and not o.hard]
    assert len(invalid) <= len(outs) // 20, "\n\n".join(
        o.report("sequence misbehaves against PostgreSQL itself") for o in invalid[:2])
    for o in soft[:3]:
        warnings.warn(o.report("ParameterStatus differs"))
    if hard:
        reports = []
        deadline = time.monotonic() + SHRINK_SECONDS
        for o in hard[:max_reports]:
            left = deadline - time.monotonic()
            if left > 1:
                small = d.shrink(o.seq, budget=150, avoid=avoid, seconds=left)
                o2 = d.pair(small)
                o = o2 if o2.hard else o
            reports.append(o.report("proxy differs from PostgreSQL"))
        pytest.fail("%d of %d sequences differ (seeds %s); minimal reproductions:\n\n%s"
                    % (len(hard), len(outs), [o.seq["seed"] for o in hard][:30],
                       "\n\n".join(reports)), pytrace=False)
    return time.monotonic() - t0


# ---------------------------------------------------------------- configurations

CACHE_ON = {"CACHE_ENABLED": "true"}


@pytest.mark.timeout_s(180)
def test_random_protocol_sequences_get_the_same_answers_as_postgresql(proxy):
    """Default configuration: transaction pooling, result cache on."""
    d = differ(proxy(env=CACHE_ON))
    check(d, [pd.generate(s, 1, avoid=pd.KNOWN_BUGS, wide=WIDE) for s in seeds(120, 0)])


@pytest.mark.timeout_s(180)
def test_random_protocol_sequences_get_the_same_answers_with_the_result_cache_off(proxy):
    d = differ(proxy(env={"CACHE_ENABLED": "false"}))
    check(d, [pd.generate(s, 1, avoid=pd.KNOWN_BUGS, wide=WIDE) for s in seeds(70, 100000)])


@pytest.mark.timeout_s(180)
def test_random_protocol_sequences_get_the_same_answers_with_reads_on_replicas(proxy, stack):
    """Reads routed to the stack's two streaming replicas, result cache on;
    two clients so one's writes and the other's reads meet."""
    if DIRECT:
        ep = proxy()
    else:
        from test_routing import routed

        ep = routed(proxy, stack, **CACHE_ON)
    d = differ(ep, replicas=replica_conns(stack))
    check(d, [pd.generate(s, 1 + s % 2, avoid=pd.KNOWN_BUGS, wide=WIDE)
              for s in seeds(70, 200000)])


@pytest.mark.timeout_s(180)
def test_random_protocol_sequences_get_the_same_answers_in_session_pooling(proxy):
    d = differ(proxy(env={"POOL_MODE": "session", "CACHE_ENABLED": "true"}))
    check(d, [pd.generate(s, 1 + s % 2, avoid=pd.KNOWN_BUGS, wide=WIDE)
              for s in seeds(50, 300000)])


@pytest.mark.timeout_s(180)
def test_concurrent_clients_sharing_one_server_connection_get_the_same_answers(proxy):
    """DB_POOL_SIZE=1 without overflow: two or three clients take turns on one
    server connection (each turn ends at rest: no open transaction), so every
    client's statements, settings and portals must move with it.  Nothing that
    pins is generated (a pinned client would hold the only connection)."""
    d = differ(proxy(env={"DB_POOL_SIZE": "1", "DB_MAX_OVERFLOW": "0", "DB_POOL_TIMEOUT": "5",
                          "CACHE_ENABLED": "true"}))
    check(d, [pd.generate(s, 2 + s % 2, pins=False, avoid=pd.KNOWN_BUGS, wide=WIDE)
              for s in seeds(70, 400000)])


@pytest.mark.timeout_s(180)
def test_driver_like_scenarios_get_the_same_answers_as_postgresql(proxy):
    """The wide generator (protodiff.Wide): savepoints and SETs in
    transactions in both protocols, SQL PREPARE next to protocol statements,
    cursors, portals read across Flush, LISTEN/NOTIFY, temporary tables,
    advisory locks, errors inside pipelines, very long queries; one or two
    clients, transaction pooling, result cache on."""
    d = differ(proxy(env=CACHE_ON))
    check(d, [pd.generate(s, 1 + s % 2, avoid=pd.KNOWN_BUGS, wide=True)
              for s in seeds(40, 500000)])


# ---------------------------------------------------------------- known proxy bugs
#
# Minimal sequences found by the fuzzer; each passes against PostgreSQL itself
# (PX_E2E_DIRECT=1 skips them: there is nothing to compare).


def repro(proxy, steps, env=None, nclients=None):
    skip_if_direct("compares the proxy with PostgreSQL")
    d = differ(proxy(env=env or CACHE_ON))
    seq = {"seed": "literal", "steps": steps,
           "nclients": nclients or 1 + max(c for c, _ in steps)}
    o = d.pair(seq)
    assert not o.invalid, o.report("sequence misbehaves against PostgreSQL itself")
    assert not o.hard, o.report("proxy differs from PostgreSQL")


Q = lambda sql, copy=None: ("Q", sql, copy)  # noqa: E731
P = lambda name, sql, oids=(): ("P", name, sql, list(oids))  # noqa: E731
B = lambda stmt, params=(), portal="": ("B", portal, stmt, [], [p.encode() for p in params], [])  # noqa: E731
E = lambda portal="", n=0: ("E", portal, n)  # noqa: E731
S = ("S",)


def test_set_pipelined_behind_another_query_does_not_leak_to_the_next_client(proxy):
    # client 0 pipelines SELECT 1 + SET search_path; client 1 then gets the
    # one server connection and must still see the default search_path
    repro(proxy, [
        (0, [Q("SELECT 1 AS a"), Q("SET search_path = pg_catalog")]),
        (1, [Q("SHOW search_path"), Q("SELECT count(*) FROM {T}")]),
    ], env={"DB_POOL_SIZE": "1", "DB_MAX_OVERFLOW": "0", "CACHE_ENABLED": "false"})


def test_extended_set_pipelined_behind_a_sync_does_not_leak_to_the_next_client(proxy):
    repro(proxy, [
        (0, [P("", "SELECT 1"), B(""), E(), S,
             P("", "SET statement_timeout = '7s'"), B(""), E(), S]),
        (1, [Q("SHOW statement_timeout")]),
    ], env={"DB_POOL_SIZE": "1", "DB_MAX_OVERFLOW": "0", "CACHE_ENABLED": "false"})


COPY_IN = ("E", "", 0, ([b"41\tx\t1\n"], None))


def test_extended_protocol_copy_from_stdin_leaves_the_connection_in_step(proxy):
    repro(proxy, [
        (0, [P("", "COPY {T} (id, v, n) FROM STDIN"), B(""), COPY_IN, S]),
        (0, [P("q1", "SELECT * FROM {X}"), S]),
        (0, [Q("SELECT count(*) FROM {T}")]),
    ])


def test_failed_extended_copy_from_stdin_keeps_the_session(proxy):
    repro(proxy, [
        (0, [P("s2", "COPY {T} (id, v, n) FROM STDIN"), B("s2"),
             ("E", "", 0, ([b"x\ty\tz\n"], None)), S]),
        (0, [P("q1", "SELECT v, n FROM {T} WHERE id = $1"), S, S]),
        (0, [Q("SELECT count(*) FROM {T}")]),
    ])


def test_bind_with_wrong_parameter_count_names_the_clients_statement(proxy):
    repro(proxy, [(0, [P("q1", "SELECT $1::int8 AS big", [20]), B("q1", ["1", "9"]), E(), S])])


def test_duplicate_parse_in_a_transaction_aborts_it(proxy):
    repro(proxy, [
        (0, [P("s1", "SELECT 1"), S]),
        (0, [Q("BEGIN")]),
        (0, [P("s1", "SELECT 2"), S]),
        (0, [Q("SELECT 3 AS three")]),
        (0, [Q("COMMIT")]),
    ])


def test_duplicate_parse_reports_the_sql_error_first(proxy):
    repro(proxy, [
        (0, [P("q1", "SELECT 1"), S]),
        (0, [P("q1", "SELECT * FROM {X}"), S]),
        (0, [P("q1", "SELECT 1; SELECT 2"), S]),
        (0, [Q("BEGIN"), Q("SELECT 1/0")]),
        (0, [P("q1", "SELECT 1"), S]),
        (0, [Q("ROLLBACK")]),
    ])


@pytest.mark.xfail(strict=True, reason="proxy bug: a Parse of DEALLOCATE ALL that is never "
                   "executed already makes the proxy forget the client's named statements")
def test_parse_of_deallocate_all_without_execute_keeps_the_statements(proxy):
    repro(proxy, [
        (0, [P("s1", "SELECT 1 AS one"), S]),
        (0, [P("", "DEALLOCATE ALL"), S]),
        (0, [B("s1"), E(), S]),
    ])


@pytest.mark.xfail(strict=True, reason="proxy bug: a named statement whose own text is "
                   "DEALLOCATE of its name fails with 26000 instead of deallocating itself")
def test_statement_that_deallocates_itself(proxy):
    repro(proxy, [(0, [P("s1", "DEALLOCATE s1"), B("s1"), E(), S]),
                  (0, [B("s1"), E(), S])])


def test_unnamed_statement_of_another_client_is_not_visible(proxy):
    repro(proxy, [
        (0, [P("", "SELECT 10 / $1::int AS q"), B("", ["5"]), E(), S]),
        (1, [("D", "S", ""), S]),
        (1, [B("", ["1"]), E(), S]),
    ], env={"DB_POOL_SIZE": "1", "DB_MAX_OVERFLOW": "0", "CACHE_ENABLED": "false"})


def test_bind_pipelined_after_a_failed_parse_names_the_clients_statement(proxy):
    repro(proxy, [(0, [P("s1", "SELEC 1"), S, B("s1"), E(), S])])


def test_set_committed_by_commit_and_chain_does_not_leak_to_the_next_client(proxy):
    repro(proxy, [
        (0, [Q("BEGIN"), Q("SET search_path = pg_catalog"), Q("COMMIT AND CHAIN"),
             Q("ROLLBACK")]),
        (1, [Q("SHOW search_path")]),
    ], env={"DB_POOL_SIZE": "1", "DB_MAX_OVERFLOW": "0", "CACHE_ENABLED": "false"})


@pytest.mark.xfail(strict=True, reason="proxy bug: DEALLOCATE pipelined behind the Sync of a "
                   "unit that ended a failed transaction is sent to the server, which knows the "
                   "client's statement by its fx_ name (26000)")
def test_deallocate_pipelined_behind_the_end_of_a_failed_transaction(proxy):
    repro(proxy, [
        (0, [Q("BEGIN")]),
        (0, [Q("SELECT 1/0")]),
        (0, [P("s1", "ROLLBACK"), B("s1"), E(), S, Q("DEALLOCATE s1")]),
    ])


def test_standby_settings_are_answered_by_the_primary(proxy, stack):
    """Whether the connection can write is the primary's answer (current_setting's
    argument is a literal the classifier's cached verdict does not hold).
    pg_is_in_recovery() says where a statement ran: replicas answer it, by design."""
    skip_if_direct("compares the proxy with PostgreSQL")
    from test_routing import routed

    d = differ(routed(proxy, stack, **CACHE_ON), replicas=replica_conns(stack))
    o = d.pair({"seed": "literal", "nclients": 1, "steps": [
        (0, [Q("SELECT current_setting('work_mem') AS w")]),
        (0, [Q("SELECT current_setting('transaction_read_only') AS ro")]),
        (0, [Q("SELECT current_setting('in_hot_standby') AS h")]),
    ]})
    assert not o.invalid, o.report("sequence misbehaves against PostgreSQL itself")
    assert not o.hard, o.report("proxy differs from PostgreSQL")


@pytest.mark.xfail(strict=True, reason="proxy bug (the shared-namespace gap, other direction): "
                   "a Parse of a name made by SQL PREPARE succeeds instead of 42P05")
def test_parse_of_a_name_made_by_sql_prepare_fails(proxy):
    repro(proxy, [
        (0, [Q("PREPARE wq1 AS SELECT 1")]),
        (0, [P("wq1", "SELECT 2 AS two"), B("wq1"), E(), S]),
    ])


@pytest.mark.xfail(strict=True, reason="proxy bug: two named statements with the same text share "
                   "one server statement, and the server's 08P01 for a Bind of the first names "
                   "the second")
def test_parameter_count_error_names_the_bound_statement_when_two_share_a_text(proxy):
    repro(proxy, [(0, [P("s1", "SELECT 1"), P("q1", "SELECT 1"), B("s1", ["9"]), E(), S])])


@pytest.mark.xfail(strict=True, reason="proxy bug: a Parse of DISCARD ALL that is never "
                   "executed already makes the proxy forget the client's named statements")
def test_parse_of_discard_all_without_execute_keeps_the_statements(proxy):
    repro(proxy, [
        (0, [P("s1", "SELECT 1 AS one"), S]),
        (0, [P("", "DISCARD ALL"), S]),
        (0, [B("s1"), E(), S]),
    ])


def test_deallocate_in_a_multi_statement_query_keeps_protocol_statements(proxy):
    repro(proxy, [
        (0, [P("s1", "SELECT 3 AS p"), S]),
        (0, [Q("PREPARE wq1 AS SELECT 1")]),
        (0, [Q("SELECT 2; DEALLOCATE wq1")]),
        (0, [("D", "S", "s1"), S]),
    ])


@pytest.mark.xfail(strict=True, reason="proxy bug: a Close of a statement sent in the same "
                   "write as a Bind of it with the wrong parameter count: the server's 08P01 "
                   "names the proxy's fx_ statement instead of the client's")
def test_close_pipelined_behind_a_failing_bind_names_the_clients_statement(proxy):
    repro(proxy, [
        (0, [P("s1", "SELECT 1"), S]),
        (0, [B("s1", ["9"]), ("C", "S", "s1"), S]),
    ])


@pytest.mark.xfail(strict=True, reason="proxy bug: a Bind pipelined behind a DISCARD ALL that "
                   "fails (inside a transaction) gets the proxy's 26000 instead of the server's "
                   "25P02: the statements are dropped before DISCARD ALL has run")
def test_bind_pipelined_behind_a_failing_discard_all_gets_the_servers_error(proxy):
    repro(proxy, [
        (0, [P("s1", "SELECT 3 AS p"), S]),
        (0, [Q("BEGIN"), Q("DISCARD ALL"), B("s1"), E(), S]),
    ])
