"""Bad input on raw sockets: garbage, absurd or tiny lengths, truncated and
unknown messages, slow-loris startups, old protocol versions, stray cancel
requests.  Each must end in an ErrorResponse (08P01 unless noted) or a close,
within a deadline, and leave the proxy serving well-formed clients.

The proxy runs with AUTH_TYPE=trust so a raw login (user fnx_trust) needs no
password exchange.  PostgreSQL itself often just closes where the proxy is
expected to send 08P01 first: in direct mode a plain close is accepted.
"""

import random
import selectors
import socket
import struct
import threading
import time

import psycopg
import pytest

import pgwire
from conftest import PASSWORDS, pg_super, skip_if_direct, wait_until

LOGIN_TIMEOUT = 3  # CLIENT_LOGIN_TIMEOUT in these proxies
TRUST = {"AUTH_TYPE": "trust", "CLIENT_LOGIN_TIMEOUT": str(LOGIN_TIMEOUT)}


def trust_proxy(proxy):
    return proxy(env=TRUST)


def healthy(px):
    px.assert_healthy(user="fnx_trust", password=None)


def trust_login(px):
    raw = px.raw()
    raw.login("fnx_trust", "fnx")
    return raw


def expect_rejected(px, raw, timeout=5, codes=("08P01",), require_error=False):
    """ErrorResponse with one of `codes` then close, or (if allowed) a close."""
    kind, fields = raw.read_until_error_or_close(timeout)
    if kind == "error":
        assert fields.get("C") in codes, fields
        assert fields.get("M"), "ErrorResponse without a message"
        assert raw.wait_closed(timeout), "connection left open after a fatal error"
    else:
        assert not (require_error and not px.direct), "closed without an ErrorResponse"
    return kind, fields


# ---------------------------------------------------------------- startup phase


STARTUP_GARBAGE = {
    "http_request": b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",
    "tls_client_hello": bytes.fromhex("16030100c8010000c40303") + bytes(32),
    "length_0x7fffffff": struct.pack("!II", 0x7FFFFFFF, pgwire.PROTOCOL_3_0) + b"user\0x\0\0",
    "length_4": struct.pack("!I", 4),
    "length_0": struct.pack("!I", 0),
    "unknown_request_code": struct.pack("!II", 16, 12345678) + bytes(8),
    "unterminated_params": struct.pack("!II", 20, pgwire.PROTOCOL_3_0) + b"user\0fnx_trust",
}


@pytest.mark.parametrize("name", list(STARTUP_GARBAGE))
def test_garbage_startup_packet_is_rejected(proxy, name):
    px = trust_proxy(proxy)
    raw = px.raw()
    try:
        raw.send(STARTUP_GARBAGE[name])
        expect_rejected(px, raw, timeout=LOGIN_TIMEOUT + 2, codes=("08P01", "0A000"))
    finally:
        raw.close()
    healthy(px)


def test_protocol_version_2_is_rejected(proxy):
    px = trust_proxy(proxy)
    raw = px.raw()
    try:
        raw.send(pgwire.startup_message({"user": "fnx_trust", "database": "fnx"}, version=2 << 16))
        data = b""
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            raw.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = raw.sock.recv(4096)
            except socket.timeout:
                break
            except OSError:
                break
            if not chunk:
                break
            data += chunk
        assert data[:1] == b"E", "expected an ErrorResponse, got %r" % data[:60]
        assert b"protocol" in data.lower(), data
        assert raw.wait_closed(3)
    finally:
        raw.close()
    healthy(px)


@pytest.mark.parametrize("stall", ["nothing_sent", "partial_startup", "partial_length"])
def test_slow_loris_startup_is_closed_within_login_timeout(proxy, stall):
    skip_if_direct("PostgreSQL's authentication_timeout is 60 s")
    px = trust_proxy(proxy)
    pkt = pgwire.startup_message({"user": "fnx_trust", "database": "fnx"})
    send = {"nothing_sent": b"", "partial_startup": pkt[:10], "partial_length": pkt[:2]}[stall]
    # Many stalled sockets at once; a well-formed client is served meanwhile.
    stalled = [px.raw() for _ in range(30)]
    t0 = time.monotonic()
    try:
        for r in stalled:
            if send:
                r.send(send)
        healthy(px)
        for r in stalled:
            kind, fields = r.read_until_error_or_close(LOGIN_TIMEOUT + 2 - (time.monotonic() - t0))
            if kind == "error":
                assert fields.get("C") in ("08P01", "57014", "08006"), fields
    except TimeoutError:
        pytest.fail("a stalled startup was still open after %.1fs" % (time.monotonic() - t0))
    finally:
        for r in stalled:
            r.close()
    healthy(px)


def test_slow_loris_during_scram_exchange_is_closed(proxy):
    """Startup sent, SCRAM challenge never answered."""
    skip_if_direct("PostgreSQL's authentication_timeout is 60 s")
    px = proxy(env={"CLIENT_LOGIN_TIMEOUT": str(LOGIN_TIMEOUT)})
    raw = px.raw()
    try:
        raw.startup("fnx", "fnx")
        mtype, body = raw.recv_msg()
        assert mtype == "R" and struct.unpack("!I", body[:4])[0] == pgwire.AUTH_SASL
        t0 = time.monotonic()
        try:
            raw.read_until_error_or_close(LOGIN_TIMEOUT + 2)
        except TimeoutError:
            pytest.fail("SCRAM exchange left hanging for %.1fs" % (time.monotonic() - t0))
    finally:
        raw.close()
    px.assert_healthy()


def test_random_garbage_connections_do_not_harm_the_proxy(proxy):
    px = trust_proxy(proxy)
    rng = random.Random(20240601)
    sel = selectors.DefaultSelector()
    socks = []
    for i in range(100):
        s = socket.create_connection((px.host, px.port), timeout=5)
        kind = i % 3
        if kind == 0:
            payload = rng.randbytes(rng.randint(1, 300))
        elif kind == 1:  # a valid-looking header, then garbage
            payload = struct.pack("!II", rng.randint(8, 400), pgwire.PROTOCOL_3_0)
            payload += rng.randbytes(rng.randint(0, 200))
        else:  # a good startup, then garbage messages
            payload = pgwire.startup_message({"user": "fnx_trust", "database": "fnx"})
            payload += rng.randbytes(rng.randint(1, 300))
        try:
            s.sendall(payload)
        except OSError:
            pass
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
        socks.append(s)
    healthy(px)  # served while 100 bad connections are open
    open_socks = set(socks)
    deadline = time.monotonic() + (LOGIN_TIMEOUT + 3)
    while open_socks and time.monotonic() < deadline and not px.direct:
        for key, _ in sel.select(timeout=0.2):
            try:
                if not key.fileobj.recv(65536):
                    open_socks.discard(key.fileobj)
                    sel.unregister(key.fileobj)
            except BlockingIOError:
                pass
            except OSError:
                open_socks.discard(key.fileobj)
                sel.unregister(key.fileobj)
    for s in socks:
        s.close()
    sel.close()
    if not px.direct:
        # Connections that logged in and then sent garbage may legitimately be
        # waiting for the rest of a plausible message; the rest must be gone.
        assert len(open_socks) <= 40, "%d garbage connections still open" % len(open_socks)
    healthy(px)


# ---------------------------------------------------------------- after login


AFTER_LOGIN = {
    "declared_length_0x7fffffff": b"Q" + struct.pack("!I", 0x7FFFFFFF) + b"SELECT 1\0",
    "declared_length_below_4": b"Q" + struct.pack("!I", 2),
    "unknown_message_type": b"z" + struct.pack("!I", 4),
    "nul_message_type": b"\0" + struct.pack("!I", 4),
}


@pytest.mark.parametrize("name", list(AFTER_LOGIN))
def test_bad_message_after_login_gets_08P01(proxy, name):
    px = trust_proxy(proxy)
    raw = trust_login(px)
    try:
        t0 = time.monotonic()
        raw.send(AFTER_LOGIN[name])
        expect_rejected(px, raw, timeout=5, require_error=True)
        assert time.monotonic() - t0 < 5
    finally:
        raw.close()
    healthy(px)


def test_bad_message_in_a_transaction_gets_08P01(proxy):
    """Same, while holding a server connection in a transaction: the proxy must
    also release (roll back or discard) that server connection."""
    px = proxy(env=dict(TRUST, DB_POOL_SIZE="1", DB_MAX_OVERFLOW="0", DB_POOL_TIMEOUT="5"))
    raw = trust_login(px)
    try:
        raw.simple_query("BEGIN")
        raw.simple_query("SELECT 1")
        raw.send(b"Q" + struct.pack("!I", 0x7FFFFFFF) + b"SELECT")
        expect_rejected(px, raw, timeout=5, require_error=True)
    finally:
        raw.close()
    healthy(px)  # needs the one server connection back


def test_a_query_inside_an_unsynced_extended_batch_is_refused(proxy):
    """Bind and Execute of BEGIN, then simple Queries before any Sync, then an
    Execute of the unnamed portal: PostgreSQL 15.20's backend crashes on this
    (every other client loses its connection while the server restarts). No
    driver sends a Query before the Sync that ends its batch: the proxy
    refuses it, and PostgreSQL keeps running."""
    skip_if_direct("this sequence crashes the PostgreSQL 15.20 backend")
    px = trust_proxy(proxy)
    with pg_super() as s:
        started = s.execute("SELECT pg_postmaster_start_time()").fetchone()[0]
    raw = trust_login(px)
    try:
        raw.send(pgwire.parse("", "BEGIN") + pgwire.bind("", "") + pgwire.execute("", 2)
                 + pgwire.query("DISCARD ALL") + pgwire.query("SELECT 1")
                 + pgwire.parse("s1", "COMMIT") + pgwire.execute("", 1) + pgwire.sync())
        kind, fields = expect_rejected(px, raw, timeout=5, require_error=True)
        assert "Sync" in fields.get("M", ""), fields
    finally:
        raw.close()
    healthy(px)
    with pg_super() as s:
        assert s.execute("SELECT pg_postmaster_start_time()").fetchone()[0] == started


def test_truncated_message_then_close_is_harmless(proxy):
    px = trust_proxy(proxy)
    for cut in (1, 3, 5, 12):
        raw = trust_login(px)
        msg = pgwire.query("SELECT 'this message is cut short'")
        raw.send(msg[:cut])
        raw.close()
    # Also mid-transaction, and mid extended-protocol batch.
    raw = trust_login(px)
    raw.simple_query("BEGIN")
    raw.send(pgwire.parse("", "SELECT $1::int") + pgwire.bind("", "", ["1"])[:7])
    raw.close()
    time.sleep(0.3)
    healthy(px)
    with px.connect(user="fnx_trust", password=None) as c:
        assert c.execute("SELECT 1").fetchone()[0] == 1
        c.commit()


def test_terminate_message_closes_cleanly(proxy):
    px = trust_proxy(proxy)
    raw = trust_login(px)
    try:
        raw.simple_query("SELECT 1")
        raw.send(pgwire.terminate())
        assert raw.wait_closed(3)
    finally:
        raw.close()
    healthy(px)


@pytest.mark.parametrize("sql", ["INSERT INTO {t} VALUES (1)",
                                 "SELECT pg_sleep(0.3); INSERT INTO {t} VALUES (1)"])
def test_a_terminate_sent_right_behind_a_write_lets_the_write_finish(proxy, make_table, sql):
    """A client that sends its last statement and Terminate in one write and goes:
    PostgreSQL runs the statement, then ends the session; through the proxy too."""
    t = make_table("n int")
    px = trust_proxy(proxy)
    raw = trust_login(px)
    try:
        raw.send(pgwire.query(sql.format(t=t)) + pgwire.terminate())
        raw.wait_closed(3)
    finally:
        raw.close()
    with pg_super() as s:
        wait_until(lambda: s.execute("SELECT count(*) FROM %s" % t).fetchone()[0] == 1, 5,
                   what="the write sent before Terminate to commit")
    healthy(px)


# ---------------------------------------------------------------- cancel requests


def test_cancel_request_with_random_keys_is_harmless(proxy):
    px = proxy()
    rng = random.Random(7)
    result = {}

    def victim():
        with px.connect(autocommit=True) as c:
            result["v"] = c.execute("SELECT 'survived', pg_sleep(1.5)").fetchone()[0]

    th = threading.Thread(target=victim, daemon=True)
    th.start()
    time.sleep(0.5)
    for _ in range(20):
        raw = px.raw()
        try:
            raw.send(pgwire.cancel_request(rng.getrandbits(32), rng.getrandbits(32)))
            assert raw.wait_closed(3), "CancelRequest connection not closed"
        finally:
            raw.close()
    # A truncated CancelRequest as well.
    raw = px.raw()
    raw.send(pgwire.cancel_request(1, 2)[:10])
    raw.close()
    th.join(10)
    assert result.get("v") == "survived"
    px.assert_healthy()
    # After all this, SCRAM logins work too.
    with psycopg.connect(px.conninfo(password=PASSWORDS["fnx"]), autocommit=True) as c:
        assert c.execute("SELECT 1").fetchone()[0] == 1
