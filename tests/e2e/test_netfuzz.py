"""A short, fixed run of the network-level mutational fuzzer (netfuzz.py):
hostile sessions (mutated startup/query/COPY/FunctionCall/cancel streams)
against the proxy while well-behaved clients check their own answers and the
state of the server connections they get.  The long hunt is

    python3 tests/e2e/netfuzz.py --seeds 0-4999 --seconds 1800

Plus deterministic reproductions of what the fuzzer found.
"""

import struct
import time

import pytest

import netfuzz
import pgwire
from conftest import skip_if_direct

ENV = {"AUTH_TYPE": "trust", "DB_POOL_TIMEOUT": "5"}

# Generator features left out of the fixed CI run while a proxy bug they hit is
# open (none now).
AVOID = ()

CI_SEEDS = list(range(0, 200))


@pytest.mark.timeout_s(55)
def test_hostile_sessions_beside_good_clients(proxy):
    skip_if_direct("checks the proxy's pool and process")
    px = proxy(env=ENV)
    pool_max = int(px.env["DB_POOL_SIZE"]) + int(px.env["DB_MAX_OVERFLOW"])
    findings, done = netfuzz.campaign(
        px.host,
        px.port,
        CI_SEEDS,
        seconds=25,
        n_hostile=2,
        n_good=2,
        alive=px.alive,
        errpath=px.stderr_path,
        log=lambda *a: None,
        pool_max=pool_max,
        avoid=AVOID,
    )
    assert len(done) >= 20, "only %d seeds ran" % len(done)
    assert not findings, "\n\n".join(findings)
    assert px.server_conns() <= pool_max
    px.assert_healthy(user="fnx_trust", password=None)


def _funcall_text(oid, *args):
    body = struct.pack("!IHH", oid, 1, 0) + struct.pack("!H", len(args))
    for a in args:
        a = a.encode()
        body += struct.pack("!i", len(a)) + a
    return pgwire.message("F", body + struct.pack("!H", 0))


def test_functioncall_state_does_not_leak_to_the_next_client(proxy):
    skip_if_direct("pooling")
    px = proxy(env=dict(ENV, DB_POOL_SIZE="1", DB_MAX_OVERFLOW="0", WORKERS="1"))
    a = px.raw()
    a.login("fnx_trust", "fnx")
    a.send(_funcall_text(netfuzz.OID_SET_CONFIG, "statement_timeout", "9999ms", "false"))
    a.collect()
    a.send(_funcall_text(netfuzz.OID_ADVISORY_LOCK, "424242"))
    a.collect()
    a.send(pgwire.terminate())
    assert a.wait_closed(3)
    a.close()
    time.sleep(0.3)
    b = px.raw()
    b.login("fnx_trust", "fnx")
    rows, _ = b.simple_query(
        "SELECT current_setting('statement_timeout'), (SELECT count(*) FROM pg_locks "
        "WHERE locktype = 'advisory' AND pid = pg_backend_pid())"
    )
    b.close()
    assert rows == [["0", "0"]]


def _own_proxy(tmp_path, **env):
    """A proxy this test starts and stops itself (so an expected crash fails
    the test body, where xfail sees it, not the fixture's teardown)."""
    cfg = {k: str(v) for k, v in env.items()}
    proc, port, errpath, _ = netfuzz.start_proxy(
        netfuzz.os.environ.get("PX_PROXY_BIN") or conftest_proxy_bin(), str(tmp_path), cfg
    )
    return proc, port, errpath


def conftest_proxy_bin():
    import conftest

    return conftest.PROXY_BIN


def _check_own(proc, errpath):
    alive = proc.poll() is None
    netfuzz.stop_proxy(proc)
    rep = netfuzz.sanitizer_report(errpath)
    assert alive and not rep, "proxy died or sanitizer report:\n%s" % (rep or "")


def _own_session(tmp_path, script):
    """Log in to a proxy of the test's own, run script(conn) and return what it returns
    (or the exception that ended the exchange), then check that the proxy survived."""
    proc, port, errpath = _own_proxy(tmp_path, WORKERS=1)
    try:
        c = pgwire.RawConn("127.0.0.1", port)
        c.login("fnx_trust", "fnx")
        try:
            got = script(c)
        except (pgwire.Closed, TimeoutError, OSError) as e:
            got = repr(e)
        c.close()
    finally:
        _check_own(proc, errpath)
    return got


def test_a_flush_with_a_long_declared_length_and_no_server_is_stepped_over_safely(tmp_path):
    """A Flush (nothing outstanding, so no server connection is taken for it) that
    declares a body and sends it in pieces: the proxy must not step past its input."""
    skip_if_direct("crash of the proxy")

    def script(c):
        c.send(b"H" + struct.pack("!I", 4 + 200000) + b"\0" * 1000)
        time.sleep(0.2)
        for _ in range(25):
            c.send(b"\0" * 10000)
        c.send(pgwire.query("SELECT 7"))
        return c.recv_msg(timeout=5)

    got = _own_session(tmp_path, script)
    # after the Flush, 50,000 zero bytes: PostgreSQL's "invalid frontend message type 0"
    assert got[0] == "E", got


def test_skipped_message_not_yet_received_whole(tmp_path):
    skip_if_direct("crash of the proxy")

    def script(c):
        c.send(pgwire.parse("", "SELEC broken") + pgwire.message("H"))
        assert c.recv_msg()[0] == "E"  # 42601; the server now skips to Sync
        c.send(pgwire.message("F", b"\0" * 300000))  # skipped, arrives in pieces
        c.send(pgwire.sync())
        return c.recv_msg(timeout=5)

    assert _own_session(tmp_path, script) == ("Z", b"I")


def test_skipped_execute_split_across_reads(tmp_path):
    skip_if_direct("proxy input framing")

    def script(c):
        c.send(pgwire.parse("", "SELEC broken") + pgwire.message("H"))
        assert c.recv_msg()[0] == "E"
        e = pgwire.execute("", 0)
        c.send(e[:6])
        time.sleep(0.2)
        c.send(e[6:] + pgwire.sync())
        return c.recv_msg(timeout=5)

    assert _own_session(tmp_path, script) == ("Z", b"I")


def test_partial_stray_copydone_then_close(proxy):
    skip_if_direct("pooling")
    px = proxy(env=dict(ENV, DB_POOL_SIZE="1", DB_MAX_OVERFLOW="0", WORKERS="1"))
    c = px.raw()
    c.login("fnx_trust", "fnx")
    c.send(b"c" + struct.pack("!I", 52) + b"COPY")  # declares 48 body bytes, sends 4
    time.sleep(0.1)
    c.close()
    time.sleep(0.2)
    d = px.raw()
    d.login("fnx_trust", "fnx")
    try:
        rows, _ = d.simple_query("SELECT 1")  # hangs: it completes the CopyDone
    finally:
        d.close()
    assert rows == [["1"]]


def test_password_message_after_login_hits_only_its_sender(proxy):
    skip_if_direct("pooling")
    px = proxy(env=dict(ENV, DB_POOL_SIZE="1", DB_MAX_OVERFLOW="0", WORKERS="1"))
    h = px.raw()
    h.login("fnx_trust", "fnx")
    h.simple_query("BEGIN")  # holds the pool's one server connection
    g = px.raw()
    g.login("fnx_trust", "fnx")
    g.send(pgwire.query("SELECT 1"))  # waits for it
    time.sleep(0.3)
    h.send(pgwire.query("COMMIT") + pgwire.password_message(b"hx\0"))
    try:
        rows, _ = g.collect()
    finally:
        g.close()
        h.close()
    assert rows == [["1"]]


@pytest.mark.xfail(
    strict=True,
    reason="proxy bug: a Close of the unnamed statement that the server skips "
    "(after an error, before Sync) makes the proxy forget the statement (26000)",
)
def test_skipped_close_of_unnamed_statement(proxy):
    skip_if_direct("PostgreSQL's own behaviour is what the test expects")
    px = proxy(env=ENV)
    c = px.raw()
    c.login("fnx_trust", "fnx")
    c.send(
        pgwire.parse("", "SELECT 7")
        + pgwire.execute("hx_unknown_portal")  # 34000: the server skips to Sync
        + pgwire.message("C", b"S\0")  # skipped: the statement stays
        + pgwire.sync()
    )
    with pytest.raises(pgwire.PgError) as ei:
        c.collect()
    assert ei.value.sqlstate == "34000"
    c.send(pgwire.bind("", "") + pgwire.execute() + pgwire.sync())
    rows, _ = c.collect()
    c.close()
    assert rows == [["7"]]
