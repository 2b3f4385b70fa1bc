"""Large results and COPY stream through the proxy in bounded memory: the
proxy's RSS is sampled while ~100 MB pass through, and may grow by less than
32 MB.  In direct mode the data paths run but there is no proxy to measure."""

import os
import threading
import time

import pytest

import pgwire
from conftest import PASSWORDS

ROWS = 100_000
WIDTH = 1000  # 100 MB of row data in all
BIG_SQL = "SELECT repeat('x', %d) FROM generate_series(1, %d)" % (WIDTH, ROWS)
LIMIT_KB = 32 * 1024


def streaming_proxy(proxy, **env):
    """A proxy whose ASan (if any) keeps a small quarantine, so freed buffers
    do not look like growth."""
    opts = os.environ.get("ASAN_OPTIONS", "")
    if "quarantine_size_mb" not in opts:
        opts = (opts + ":" if opts else "") + "quarantine_size_mb=4"
    env.setdefault("ASAN_OPTIONS", opts)
    return proxy(env=env)


class RssSampler:
    """Samples the proxy's VmRSS every 10 ms in a thread; no-op in direct mode."""

    def __init__(self, px):
        self.px = px
        self.baseline = px.rss_kb() if not px.direct else 0
        self.peak = self.baseline
        self._stop = threading.Event()
        self._th = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, self.px.rss_kb())
            except (OSError, AssertionError):
                return
            self._stop.wait(0.01)

    def __enter__(self):
        if not self.px.direct:
            self._th.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        if not self.px.direct:
            self._th.join(5)

    def check(self, what):
        if self.px.direct:
            return
        growth = self.peak - self.baseline
        assert growth < LIMIT_KB, "%s: proxy RSS grew by %d kB (baseline %d kB)" % (
            what, growth, self.baseline,
        )


def warm(px):
    """One round trip first, so buffers and pools that exist anyway are counted
    in the baseline."""
    with px.connect(autocommit=True) as c:
        c.execute("SELECT repeat('x', 100000) FROM generate_series(1, 10)").fetchall()


@pytest.mark.timeout_s(120)
@pytest.mark.parametrize("how", ["cursor", "stream", "server_side_cursor"])
def test_large_result_streams_in_bounded_memory(proxy, how):
    px = streaming_proxy(proxy)
    warm(px)
    with px.connect(autocommit=(how != "server_side_cursor")) as c:
        rows = total = 0
        with RssSampler(px) as rss:
            if how == "cursor":
                cur = c.execute(BIG_SQL)
                for (v,) in cur:
                    rows += 1
                    total += len(v)
            elif how == "stream":
                for (v,) in c.cursor().stream(BIG_SQL):
                    rows += 1
                    total += len(v)
            else:
                with c.cursor(name="e2e_big") as cur:
                    cur.itersize = 5000
                    cur.execute(BIG_SQL)
                    for (v,) in cur:
                        rows += 1
                        total += len(v)
                c.commit()
        assert (rows, total) == (ROWS, ROWS * WIDTH)
    rss.check("100 MB result via %s" % how)
    px.assert_healthy()


@pytest.mark.timeout_s(120)
def test_copy_out_streams_in_bounded_memory(proxy):
    px = streaming_proxy(proxy)
    warm(px)
    with px.connect(autocommit=True) as c:
        nbytes = 0
        with RssSampler(px) as rss:
            with c.cursor().copy("COPY (%s) TO STDOUT" % BIG_SQL) as cp:
                for block in cp:
                    nbytes += len(block)
        assert nbytes == ROWS * (WIDTH + 1)
    rss.check("100 MB COPY TO STDOUT")
    px.assert_healthy()


@pytest.mark.timeout_s(120)
def test_copy_in_streams_in_bounded_memory(proxy, make_table):
    px = streaming_proxy(proxy)
    t = make_table("v text")
    warm(px)
    line = b"y" * (WIDTH - 1) + b"\n"
    block = line * 1000  # 1 MB
    n_blocks = 64
    with px.connect(autocommit=True) as c:
        with RssSampler(px) as rss:
            with c.cursor().copy("COPY %s FROM STDIN" % t) as cp:
                for _ in range(n_blocks):
                    cp.write(block)
        assert c.execute("SELECT count(*), sum(length(v)) FROM %s" % t).fetchone() == (
            n_blocks * 1000, n_blocks * 1000 * (WIDTH - 1),
        )
    rss.check("64 MB COPY FROM STDIN")
    px.assert_healthy()


@pytest.mark.timeout_s(120)
def test_slow_reader_does_not_balloon_proxy_memory(proxy):
    """A client that reads a 100 MB result slowly must be throttled by TCP
    backpressure, not absorbed into proxy memory; others are not held up."""
    px = streaming_proxy(proxy)
    warm(px)
    raw = px.raw(timeout=30, rcvbuf=32 * 1024)
    try:
        raw.login("fnx", "fnx", PASSWORDS["fnx"])
        with RssSampler(px) as rss:
            raw.send(pgwire.query(BIG_SQL))
            got = 0
            t_end = time.monotonic() + 4
            while time.monotonic() < t_end:  # ~800 kB/s
                raw.sock.settimeout(5)
                chunk = raw.sock.recv(16 * 1024)
                assert chunk, "proxy closed the slow reader"
                raw.buf += chunk
                got += len(chunk)
                time.sleep(0.02)
            # Meanwhile other clients are served promptly.
            t0 = time.monotonic()
            with px.connect(autocommit=True) as other:
                assert other.execute("SELECT 'not blocked'").fetchone()[0] == "not blocked"
            assert time.monotonic() - t0 < 3, "another client waited behind the slow reader"
        rss.check("slow reader of a 100 MB result")
        # Now drain the rest at full speed: every row arrives, in order.
        rows = 0
        while True:
            mtype, body = raw.recv_msg(timeout=30)
            if mtype == "D":
                rows += 1
            elif mtype == "E":
                raise pgwire.PgError(pgwire.parse_error_fields(body))
            elif mtype == "Z":
                break
        assert rows == ROWS
        assert raw.simple_query("SELECT 'after'")[0] == [["after"]]
    finally:
        raw.close()
    px.assert_healthy()
