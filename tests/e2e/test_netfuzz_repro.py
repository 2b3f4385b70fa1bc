"""Deterministic reproductions of cross-client damage the network fuzzer
(netfuzz.py, --hostile 1 --good 1, DB_POOL_SIZE=1) found: a hostile client's
stream or settings reach the next client of the same pooled server connection.

Each test runs a pool of ONE server connection, so the "good" client always
gets the connection the hostile one just used.
"""

import socket
import struct
import time

import pytest

import pgwire
from conftest import pg_super, skip_if_direct, unique

USER, DB = "fnx_trust", "fnx"
ENV = {
    "AUTH_TYPE": "trust",
    "DB_POOL_TIMEOUT": "5",
    "DB_POOL_SIZE": "1",
    "DB_MAX_OVERFLOW": "0",
    "WORKERS": "1",
}


def _login(px):
    c = px.raw()
    c.login(USER, DB)
    return c


def _until_ready(c, timeout=3.0):
    """Backend messages up to ReadyForQuery: [(type, sqlstate-or-status)]."""
    out = []
    while True:
        t, body = c.recv_msg(timeout)
        info = None
        if t in "EN":
            info = pgwire.parse_error_fields(body).get("C")
        elif t == "Z":
            info = body[:1].decode()
        out.append((t, info))
        if t == "Z":
            return out


def test_set_behind_a_failed_batch_with_a_query_in_it_does_not_leak(proxy):
    skip_if_direct("pooling")
    px = proxy(env=ENV)
    h = _login(px)
    # one write: an extended batch that fails (its Parse) with a Query before
    # its Sync (PostgreSQL skips that Query), then a SET the proxy tracks
    h.send(
        pgwire.parse("", "SELEC 1")
        + pgwire.query("SELECT 'skipped by the server'")
        + pgwire.sync()
        + pgwire.query("SET statement_timeout = '7777ms'")
    )
    first = _until_ready(h)
    assert ("E", "42601") in first and first[-1] == ("Z", "I")
    assert [t for t, _ in _until_ready(h)] == ["C", "Z"]  # SET, ReadyForQuery
    h.send(pgwire.terminate())
    assert h.wait_closed(3)
    h.close()
    time.sleep(0.2)
    g = _login(px)
    rows, _ = g.simple_query("SELECT current_setting('statement_timeout')")
    g.close()
    assert rows == [["0"]], "the next client got the hostile client's SET: %r" % rows


def test_release_in_the_middle_of_a_forwarded_copydata(proxy):
    skip_if_direct("pooling")
    px = proxy(env=ENV)
    h = _login(px)
    # a Query and, behind it in the same write, the first 15 bytes of a
    # 25-byte CopyData (a stray one: outside COPY PostgreSQL ignores it); the
    # proxy forwards both, PostgreSQL answers the Query and waits for the
    # CopyData's last 10 bytes
    h.send(pgwire.query("SELECT 1") + b"d" + struct.pack("!I", 4 + 20) + b"x" * 10)
    assert _until_ready(h)[-1] == ("Z", "I")
    time.sleep(0.2)
    # the connection stays with h while h owes it the rest of a message (as in a
    # transaction); h leaves without sending it: that connection is not lent again
    h.close()
    g = _login(px)
    try:
        # with the bug, PostgreSQL takes "Q\0\0\0\x0eSELEC" as the rest of the
        # CopyData and "T 42" as the next message: FATAL 08P01 "invalid
        # frontend message type 84", and the proxy's 08006 server connection lost
        rows, _ = g.simple_query("SELECT 42", timeout=3)
    finally:
        g.close()
        h.close()
    assert rows == [["42"]]


@pytest.mark.timeout_s(60)
def test_late_cancel_does_not_hit_the_next_client(proxy):
    skip_if_direct("pooling")
    px = proxy(env=ENV)
    hits = []
    for i in range(40):
        h = _login(px)
        key = h.backend_key
        g = _login(px)
        # the hostile client opens a transaction with a short query and
        # cancels it at once: the query usually ends before the cancel lands
        h.send(pgwire.query("BEGIN; SELECT 1"))
        s = socket.create_connection((px.host, px.port), timeout=3)
        s.sendall(pgwire.cancel_request(*key))
        s.close()
        # the good client waits for the one server connection
        g.send(pgwire.query("SELECT pg_sleep(0.2)"))
        _until_ready(h)
        h.close()  # leaves in a transaction: ROLLBACK, then the good client
        try:
            got = _until_ready(g, timeout=5)
        finally:
            g.close()
        if ("E", "57014") in got:
            hits.append(i)
    assert not hits, "the good client's query was cancelled in rounds %r" % hits


def test_a_name_reparsed_behind_a_failed_batch_is_a_statement_of_its_own(proxy):
    """Batch one fails before its Parse of s1 (PostgreSQL skips the Parse);
    batch two, in the same write, parses s1 again with an advisory lock and
    runs it. For PostgreSQL the name was free: the lock is taken, as the
    client asked. The proxy once sent the second text under the first text's
    server-side name as a taken name, so the lock ran without pinning the
    client and stayed on the pooled connection for the next one."""
    px = proxy(env=ENV)
    key = 424242
    h = _login(px)
    h.send(
        pgwire.execute("hx_unknown_portal")
        + pgwire.parse("s1", "SELECT 1")
        + pgwire.sync()
        + pgwire.parse("s1", "SELECT pg_advisory_lock(%d)" % key)
        + pgwire.bind("", "s1")
        + pgwire.execute()
        + pgwire.sync()
    )
    assert _until_ready(h) == [("E", "34000"), ("Z", "I")]
    assert [t for t, _ in _until_ready(h)] == ["1", "2", "D", "C", "Z"]
    h.send(pgwire.terminate())
    assert h.wait_closed(3)
    h.close()
    time.sleep(0.2)
    g = _login(px)
    rows, _ = g.simple_query(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = %d" % key)
    g.close()
    assert rows == [["0"]], "the hostile client's advisory lock outlived it"


def test_a_sync_sent_during_copy_from_stdin_gets_no_ready_for_query(proxy):
    """Extended COPY FROM STDIN; once the server asked for data, a Sync
    (PostgreSQL ignores it in copy-in), the data, CopyDone and the Sync that
    ends the batch: one ReadyForQuery. The proxy once waited for two, so
    every later reply went to the wrong request and the client hung."""
    px = proxy(env=ENV)
    t = unique("nf_copy")
    with pg_super() as s:
        s.execute("CREATE TABLE %s (v text)" % t)
        s.execute("GRANT ALL ON %s TO PUBLIC" % t)
    try:
        h = _login(px)
        h.send(pgwire.parse("", "COPY %s (v) FROM STDIN" % t) + pgwire.bind("", "")
               + pgwire.execute())
        h.send(pgwire.flush())
        t1, _ = h.recv_msg(3)
        t2, _ = h.recv_msg(3)
        t3, _ = h.recv_msg(3)
        assert (t1, t2, t3) == ("1", "2", "G")
        h.send(pgwire.sync() + pgwire.message("d", b"a\n") + pgwire.message("c")
               + pgwire.sync())
        assert [t for t, _ in _until_ready(h)] == ["C", "Z"]
        rows, _ = h.simple_query("SELECT count(*) FROM %s" % t)
        assert rows == [["1"]]
        if not px.direct:
            # h is idle: its server connection (the only one) is back in
            # the pool, not held for a ReadyForQuery that never comes
            g = _login(px)
            rows, _ = g.simple_query("SELECT 1", timeout=10)
            assert rows == [["1"]]
            g.close()
        h.send(pgwire.terminate())
        h.close()
    finally:
        with pg_super() as s:
            s.execute("DROP TABLE %s" % t)


@pytest.mark.parametrize("bad", ["absurd_length", "malformed_query"])
def test_a_bad_message_right_behind_the_rest_of_a_forwarded_message(proxy, bad):
    """A stray CopyData (PostgreSQL ignores it) arriving in two reads, the
    second ending with a header of an absurd length or a malformed Query: the
    client is refused (08P01), and the rest of the CopyData, taken in the
    same read, still reaches the server or the connection is closed. It was dropped, and the connection went back to the
    pool in the middle of a message: the next client's bytes completed it and
    PostgreSQL closed that client's connection."""
    px = proxy(env=ENV)
    h = _login(px)
    d = b"d" + struct.pack("!I", 14) + b"0123456789"
    h.send(d[:7])
    time.sleep(0.05)
    if bad == "absurd_length":
        h.send(d[7:] + b"d" + struct.pack("!I", 0x7FFFFFFF))
    else:  # a Query whose text has no terminating NUL
        h.send(d[7:] + b"Q" + struct.pack("!I", 12) + b"SELECT 1")
    kind, fields = h.read_until_error_or_close(5)
    if not px.direct:
        assert kind == "error" and fields.get("C") == "08P01", (kind, fields)
    h.close()
    time.sleep(0.2)
    g = _login(px)
    rows, _ = g.simple_query("SELECT 1")
    g.close()
    assert rows == [["1"]]
