"""Graceful drain: on SIGTERM the proxy turns readiness 503, stops accepting,
lets running transactions finish (up to DRAIN_TIMEOUT), disconnects clients
between transactions with 57P01, and exits 0."""
import http.client
import json
import signal
import socket
import time

import psycopg
import pytest

from conftest import skip_if_direct, wait_until


def readiness(ep):
    c = http.client.HTTPConnection("127.0.0.1", ep.admin_port, timeout=2)
    try:
        c.request("GET", "/api/v1/scaling/health/readiness")
        r = c.getresponse()
        return r.status, json.loads(r.read() or b"{}")
    finally:
        c.close()


@pytest.mark.timeout_s(60)
def test_sigterm_lets_running_transactions_finish_then_exits_zero(proxy, make_table):
    skip_if_direct()
    ep = proxy(env={"DRAIN_TIMEOUT": "10", "DB_POOL_SIZE": "4"})
    t = make_table("who text, n int")
    wait_until(lambda: readiness(ep)[0] == 200, 10, what="readiness 200")
    busy = ep.connect()   # will be in the middle of a transaction
    idle = ep.connect(autocommit=True)  # between transactions
    assert idle.execute("SELECT 1").fetchone() == (1,)
    busy.execute("INSERT INTO %s VALUES ('busy', 1)" % t)   # BEGIN implied

    ep.stopped_by_test = True
    ep.proc.send_signal(signal.SIGTERM)
    wait_until(lambda: readiness(ep)[0] == 503, 5, what="readiness 503 while draining")
    status, body = readiness(ep)
    assert "draining" in body.get("reason", "")

    # no new clients
    def refused():
        try:
            socket.create_connection(("127.0.0.1", ep.port), timeout=1).close()
            return False
        except OSError:
            return True
    wait_until(refused, 5, what="the listener to close")

    # the client between transactions is told why it goes
    wait_until(lambda: idle.closed or idle.pgconn.status != 0 or _probe_fails(idle), 5,
               what="the idle client to be disconnected")

    # the transaction in flight runs to its end: nothing is cut in the middle
    busy.execute("INSERT INTO %s VALUES ('busy', 2)" % t)
    busy.commit()
    with pytest.raises(psycopg.OperationalError) as ex:
        busy.execute("SELECT 1")
    assert "shutting down" in str(ex.value) or "terminat" in str(ex.value)

    ep.proc.wait(10)
    assert ep.proc.returncode == 0
    with psycopg.connect(ep.env and _direct_conninfo(), autocommit=True) as d:
        assert d.execute("SELECT count(*) FROM %s WHERE who = 'busy'" % t).fetchone() == (2,)


def _probe_fails(conn):
    try:
        conn.execute("SELECT 1")
        return False
    except psycopg.Error:
        return True


def _direct_conninfo():
    import os
    return "host=127.0.0.1 port=%s user=postgres dbname=fnx" % os.environ["PX_PG_PORT"]


@pytest.mark.timeout_s(60)
def test_sigterm_disconnects_a_transaction_still_open_at_the_drain_timeout(proxy, make_table):
    skip_if_direct()
    ep = proxy(env={"DRAIN_TIMEOUT": "1"})
    t = make_table("n int")
    stuck = ep.connect()
    stuck.execute("INSERT INTO %s VALUES (1)" % t)   # and never commits
    t0 = time.monotonic()
    ep.stopped_by_test = True
    ep.proc.send_signal(signal.SIGTERM)
    ep.proc.wait(10)
    assert ep.proc.returncode == 0
    assert time.monotonic() - t0 < 6
    with pytest.raises(psycopg.OperationalError):
        stuck.execute("SELECT 1")
    # the unfinished transaction was rolled back by PostgreSQL, not half-applied
    with psycopg.connect(_direct_conninfo(), autocommit=True) as d:
        assert d.execute("SELECT count(*) FROM %s" % t).fetchone() == (0,)
