#!/usr/bin/env python3
"""Network-level mutational fuzzer for the proxy's session state machine.

Well-formed client sessions (startup, simple and extended queries, pipelines,
COPY IN/OUT, FunctionCall, CancelRequest, Sync/Flush, Terminate) are generated
from a seed, then mutated at the message level (drop / duplicate / reorder,
wrong messages at the wrong time, a second StartupMessage, bad lengths, byte
flips, truncation, half-close, slow drip) and sent to a running proxy by
*hostile* clients, while *good* clients run checked queries through the same
proxy and the same pool.

Oracles (each violation is reported as a finding):
  hang      a hostile connection gets no answer (a reply to its probe, an
            ErrorResponse or a close) within HANG_S seconds after its last byte
  good      a good client gets an error, a wrong value, a hang, or sees state
            a hostile client left on a server connection (settings, temp
            tables, prepared statements, advisory locks, an open transaction)
  crash     the proxy process exits, or its stderr holds a sanitizer report
  leak      after the run, server connections are not idle in PostgreSQL, or
            more are open than the pool allows
  diff      (--diff) a session of well-formed messages gets other SQLSTATEs
            through the proxy than from PostgreSQL itself

Standalone (starts its own proxy, like conftest.py does):

    set -a; . $PX_STACK_DIR/env.sh; set +a
    python3 tests/e2e/netfuzz.py --seeds 0-999 --seconds 600

A seed fixes the byte stream and the delivery plan of one hostile session;
`--show SEED` prints it, `--seeds N --good 0 --hostile 1` replays it alone.
"""

import argparse
import os
import random
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import pgwire  # noqa: E402

HANG_S = 10.0  # every hostile connection is answered or closed within this
USER = "fnx_trust"  # trust on the proxy and in pg_hba: no auth round trips
DB = "fnx"
SINK = "netfuzz_sink"  # a real table for COPY FROM STDIN / INSERT (created by setup())

# function OIDs for FunctionCall (stable in PostgreSQL 15)
OID_INT4PL = 177
OID_SET_CONFIG = 2078
OID_ADVISORY_LOCK = 2880
OID_PG_SLEEP = 2626

# ---------------------------------------------------------------- messages


def m_query(sql):
    return ("Q:" + sql[:40], pgwire.query(sql))


def m_parse(name, sql, oids=()):
    return ("P:%s:%s" % (name, sql[:30]), pgwire.parse(name, sql, oids))


def m_bind(portal, stmt, params=(), rfmt=()):
    return ("B:%s:%s" % (portal, stmt), pgwire.bind(portal, stmt, params, rfmt))


def m_describe(kind, name=""):
    return ("D:%s:%s" % (kind, name), pgwire.describe(kind, name))


def m_close(kind, name=""):
    return ("C:%s:%s" % (kind, name), pgwire.message("C", kind.encode() + pgwire.cstr(name)))


def m_execute(portal="", max_rows=0):
    return ("E:%s:%d" % (portal, max_rows), pgwire.execute(portal, max_rows))


def m_sync():
    return ("S", pgwire.sync())


def m_flush():
    return ("H", pgwire.message("H"))


def m_terminate():
    return ("X", pgwire.terminate())


def m_copydata(data):
    return ("d", pgwire.message("d", data))


def m_copydone():
    return ("c", pgwire.message("c"))


def m_copyfail(msg="hx copy fail"):
    return ("f", pgwire.message("f", pgwire.cstr(msg)))


def m_funcall(oid, args, afmts=(), rfmt=0):
    body = struct.pack("!I", oid) + struct.pack("!H", len(afmts))
    body += b"".join(struct.pack("!H", f) for f in afmts)
    body += pgwire.values(args) + struct.pack("!H", rfmt)
    return ("F:%d" % oid, pgwire.message("F", body))


def m_startup(params=None):
    p = {"user": USER, "database": DB}
    p.update(params or {})
    return ("startup", pgwire.startup_message(p))


def m_password(data=b"hx\0"):
    return ("p", pgwire.password_message(data))


# ---------------------------------------------------------------- session generator

# Statements a hostile session runs.  Several leave session state on the server
# connection on purpose: the proxy must pin, track or reset it, never hand it
# to another client.
SIMPLE = [
    "SELECT 1",
    "SELECT generate_series(1, 50)",
    "SELECT 1; SELECT 2",
    "SELECT 1/0",
    "BEGIN",
    "COMMIT",
    "ROLLBACK",
    "BEGIN; SELECT 1",
    "SET statement_timeout = '7777ms'",
    "SET LOCAL work_mem = '7777kB'",
    "SET search_path = hx_nowhere, public",
    "SELECT set_config('lock_timeout', '7777ms', false)",
    "RESET ALL",
    "CREATE TEMP TABLE hx_tmp (a int)",
    "PREPARE hx_prep AS SELECT 1",
    "EXECUTE hx_prep",
    "DEALLOCATE hx_prep",
    "DEALLOCATE ALL",
    "DISCARD ALL",
    "SELECT pg_advisory_lock(%(lock)d)",
    "SELECT pg_advisory_unlock_all()",
    "LISTEN hx_chan",
    "NOTIFY hx_chan, 'x'",
    "DECLARE hx_cur CURSOR WITH HOLD FOR SELECT 1",
    "SELECT pg_sleep(0.2)",
    "INSERT INTO %s (v) VALUES ('hx')" % SINK,
    "COPY (SELECT generate_series(1, 20)) TO STDOUT",
    "SHOW statement_timeout",
    "",
    ";",
]

EXT_SQL = [
    ("SELECT $1::int", (23,), ["5"]),
    ("SELECT $1::text", (), ["hx"]),
    ("SELECT generate_series(1, $1::int)", (), ["30"]),
    ("SELECT 1/$1::int", (), ["0"]),
    ("SET statement_timeout = '8888ms'", (), []),
    ("SELECT set_config('work_mem', '8888kB', false)", (), []),
    ("BEGIN", (), []),
    ("COMMIT", (), []),
    ("SELECT pg_advisory_lock(%(lock)d)", (), []),
    ("INSERT INTO %s (v) VALUES ($1)" % SINK, (), ["hx-ext"]),
    ("COPY (SELECT 1) TO STDOUT", (), []),
    ("SELECT pg_sleep(0.1)", (), []),
]


# Each seed takes its own advisory lock keys: hostile sessions never wait for
# each other's locks, and a lock left on a pooled connection shows up in the
# good clients' pg_locks check instead of as a cascade of hangs.
def _fill(sql, rng):
    return sql.replace("%(lock)d", str(rng.lock_key)) if "%(lock)d" in sql else sql


def gen_simple(rng, out):
    out.append(m_query(_fill(rng.choice(SIMPLE), rng)))


def gen_extended(rng, out, pipeline=1):
    for _ in range(pipeline):
        sql, oids, params = rng.choice(EXT_SQL)
        sql = _fill(sql, rng)
        stmt = rng.choice(["", "", "hx_s1", "hx_s2"])
        portal = rng.choice(["", "", "hx_p1"])
        out.append(m_parse(stmt, sql, oids))
        if rng.random() < 0.3:
            out.append(m_describe("S", stmt))
        out.append(m_bind(portal, stmt, params, rng.choice([(), (0,), (1,)])))
        if rng.random() < 0.3:
            out.append(m_describe("P", portal))
        out.append(m_execute(portal, rng.choice([0, 0, 0, 1, 2])))
        if rng.random() < 0.2:
            out.append(m_execute(portal, 0))  # the rest of a suspended portal
        if rng.random() < 0.2:
            out.append(m_flush())
        if rng.random() < 0.2:
            out.append(m_close(rng.choice("SP"), rng.choice([stmt, portal, "hx_none"])))
    out.append(m_sync())


def gen_copy_in(rng, out, extended=False):
    sql = "COPY %s (v) FROM STDIN" % SINK
    if extended:
        out.append(m_parse("", sql))
        out.append(m_bind("", ""))
        out.append(m_execute())
        out.append(m_sync())  # pipelined behind the Execute, as libpq does
    else:
        out.append(m_query(sql))
    for i in range(rng.randint(0, 5)):
        out.append(m_copydata(b"hx-copy-%d\n" % i))
    out.append(m_copyfail() if rng.random() < 0.3 else m_copydone())
    if extended:
        out.append(m_sync())


def gen_funcall(rng, out):
    k = rng.randrange(4)
    if k in (1, 2) and "funcall_state" in rng.avoid:
        k = 0
    if k == 0:
        out.append(m_funcall(OID_INT4PL, [struct.pack("!i", 2), struct.pack("!i", 3)], (1,), 1))
    elif k == 1:
        out.append(
            m_funcall(OID_SET_CONFIG, ["statement_timeout", "9999ms", "false"], (0,), 0)
        )
    elif k == 2:
        out.append(m_funcall(OID_ADVISORY_LOCK, [str(rng.lock_key + 1)], (0,), 0))
    else:
        out.append(m_funcall(OID_PG_SLEEP, ["0.1"], (0,), 0))


def generate(seed, avoid=()):
    """A well-formed hostile session: (rng, startup params, [message]).

    avoid: generator features left out ("funcall_state": FunctionCalls that
    leave session state, set_config and pg_advisory_lock; "split": messages
    delivered in pieces or with a wrong length or type, i.e. partly received;
    "password": a PasswordMessage after login)."""
    rng = random.Random(seed)
    rng.lock_key = 1000000 + 2 * seed
    rng.avoid = tuple(avoid)
    msgs = []
    for _ in range(rng.randint(1, 6)):
        k = rng.random()
        if k < 0.3:
            gen_simple(rng, msgs)
        elif k < 0.6:
            gen_extended(rng, msgs, pipeline=rng.choice([1, 1, 2, 3]))
        elif k < 0.75:
            gen_copy_in(rng, msgs, extended=rng.random() < 0.3)
        elif k < 0.9:
            gen_funcall(rng, msgs)
        else:
            msgs.append(m_query("COPY (SELECT generate_series(1, 100)) TO STDOUT"))
    startup = {}
    if rng.random() < 0.15:
        startup = rng.choice(
            [
                {"application_name": "hx" * rng.randint(1, 40)},
                {"options": "-c statement_timeout=6666"},
                {"options": "-c search_path=hx_nowhere"},
                {"DateStyle": "German"},
                {"client_encoding": "LATIN1"},
                {"replication": "database"},
                {"hx_unknown_guc": "1"},
                {"TimeZone": "Asia/Kathmandu"},
            ]
        )
    return rng, startup, msgs


# ---------------------------------------------------------------- mutation

WRONG_TIME = [
    lambda r: m_copydata(b"hx-stray\n"),
    lambda r: m_copydone(),
    lambda r: m_copyfail(),
    lambda r: m_bind("", "hx_unknown_stmt"),
    lambda r: m_bind("hx_p9", ""),
    lambda r: m_execute("hx_unknown_portal"),
    lambda r: m_describe("P", "hx_unknown_portal"),
    lambda r: m_describe("S", "hx_unknown_stmt"),
    lambda r: m_close("P", "hx_unknown_portal"),
    lambda r: m_sync(),
    lambda r: m_flush(),
    lambda r: m_startup(),
    lambda r: ("ssl", pgwire.ssl_request()),
    lambda r: ("cancelpkt", pgwire.cancel_request(1, 2)),
    lambda r: m_password(),
    lambda r: m_terminate(),
    lambda r: m_query("SELECT 'hx-wrong-time'"),
    lambda r: m_parse("hx_s1", "SELECT 2"),
    lambda r: m_execute("", 1),
    lambda r: ("unknown", pgwire.message(r.choice([b"z", b"A", b"\xff", b"a", b"v"]), b"xx")),
    lambda r: m_funcall(r.choice([0, 1, 0xFFFFFFFF, OID_INT4PL]), [b"\0\0\0\1"], (1,), 1),
    lambda r: ("bindbad", pgwire.message("B", b"\0\0" + struct.pack("!hH", -1, 65535))),
]


UNTYPED = ("startup", "ssl", "cancelpkt")


def set_len(label, raw, value):
    """Rewrite a message's (or startup packet's) declared length."""
    if label.split("!")[0] in UNTYPED:
        return struct.pack("!I", value & 0xFFFFFFFF) + raw[4:]
    return raw[:1] + struct.pack("!I", value & 0xFFFFFFFF) + raw[5:]


def mutate(rng, msgs, avoid=()):
    """Apply 1-4 message-level mutations; returns (msgs, notes, wellformed).

    Each message is (label, bytes); the bytes may no longer be a well-formed
    message.  wellformed is False once any byte-level mutation is applied."""
    msgs = list(msgs)
    notes = []
    wellformed = True
    for _ in range(rng.randint(1, 4)):
        n = len(msgs)
        op = rng.choice(
            [
                "drop", "dup", "swap", "move", "insert", "insert", "insert",
                "len", "flip", "type", "truncate", "none",
            ]
        )
        i = rng.randrange(n) if n else 0
        if op == "drop" and n > 1:
            notes.append("drop %d %s" % (i, msgs[i][0]))
            del msgs[i]
        elif op == "dup" and n:
            notes.append("dup %d %s" % (i, msgs[i][0]))
            msgs.insert(i, msgs[i])
        elif op == "swap" and n > 1:
            j = min(i + 1, n - 1)
            i = j - 1
            notes.append("swap %d %d" % (i, j))
            msgs[i], msgs[j] = msgs[j], msgs[i]
        elif op == "move" and n > 1:
            j = rng.randrange(n)
            notes.append("move %d->%d %s" % (i, j, msgs[i][0]))
            msgs.insert(j, msgs.pop(i))
        elif op == "insert":
            m = rng.choice(WRONG_TIME)(rng)
            if "password" in avoid and m[0] == "p":
                m = m_flush()
            j = rng.randrange(n + 1)
            notes.append("insert %d %s" % (j, m[0]))
            msgs.insert(j, m)
            if m[0] in ("startup", "ssl", "cancelpkt", "unknown", "bindbad", "p") or m[0].startswith(
                "F:"
            ):
                wellformed = False
        elif op == "len" and n and "split" not in avoid:
            label, raw = msgs[i]
            true_len = len(raw) - 1
            v = rng.choice(
                [0, 1, 3, 4, true_len - 1, true_len + 1, true_len + 1000, 0x7FFFFFFF,
                 0x80000000, 0xFFFFFFFF, rng.getrandbits(32), 1 << 20, (1 << 20) + 1]
            )
            notes.append("len %d %s = %d" % (i, label, v))
            msgs[i] = (label + "!len", set_len(label, raw, v))
            wellformed = False
        elif op == "flip" and n:
            label, raw = msgs[i]
            if len(raw) > 5:
                b = bytearray(raw)
                for _ in range(rng.randint(1, 3)):
                    k = rng.randrange(5, len(b))
                    b[k] = rng.choice([0, 0xFF, b[k] ^ (1 << rng.randrange(8)), rng.randrange(256)])
                notes.append("flip %d %s" % (i, label))
                msgs[i] = (label + "!flip", bytes(b))
                wellformed = False
        elif op == "type" and n and "split" not in avoid:
            label, raw = msgs[i]
            t = rng.choice(b"BCdcfDEHFPpQSX")
            notes.append("type %d %s -> %c" % (i, label, t))
            msgs[i] = (label + "!type", bytes([t]) + raw[1:])
            wellformed = False
        elif op == "truncate" and n and "split" not in avoid:
            label, raw = msgs[i]
            cut = rng.randrange(1, max(2, len(raw)))
            notes.append("truncate %d %s at %d" % (i, label, cut))
            msgs = msgs[:i] + [(label + "!cut", raw[:cut])]
            wellformed = False
            break
    return msgs, notes, wellformed


def plan(seed, avoid=()):
    """The whole hostile session for a seed: a dict the runner follows."""
    rng, startup, msgs = generate(seed, avoid)
    mutated, notes, wellformed = mutate(rng, msgs, avoid)
    if rng.random() < 0.1:
        notes.append("no mutation")
        mutated, wellformed = msgs, True
    delivery = rng.choice(["one", "one", "each", "each", "chunks", "drip"])
    if "split" in avoid and delivery in ("chunks", "drip"):
        delivery = "each"
    ending = rng.choice(["probe", "probe", "probe", "terminate", "close", "halfclose", "hold"])
    cancel_at = rng.randrange(len(mutated) + 1) if rng.random() < 0.15 else None
    cancel_bad_key = rng.random() < 0.3
    return dict(
        seed=seed,
        avoid=tuple(avoid),
        startup=startup,
        msgs=mutated,
        notes=notes,
        wellformed=wellformed,
        delivery=delivery,
        ending=ending,
        cancel_at=cancel_at,
        cancel_bad_key=cancel_bad_key,
        chunk_seed=rng.getrandbits(32),
    )


def show_plan(p):
    lines = ["seed %d: delivery=%s ending=%s cancel_at=%s startup=%r" % (
        p["seed"], p["delivery"], p["ending"], p["cancel_at"], p["startup"])]
    lines.append("  mutations: " + "; ".join(p["notes"]))
    for label, raw in p["msgs"]:
        lines.append("  %-40s %s" % (label[:40], raw[:48].hex() + ("..." if len(raw) > 48 else "")))
    return "\n".join(lines)


def incomplete(raw_stream):
    """Whether the byte stream (after login) ends inside a message, i.e. the
    server may legitimately wait for more bytes."""
    off = 0
    while off < len(raw_stream):
        if len(raw_stream) - off < 5:
            return True
        (ln,) = struct.unpack_from("!I", raw_stream, off + 1)
        if ln < 4:
            return False  # a protocol error: must be answered
        if ln > (1 << 30):
            return False
        if off + 1 + ln > len(raw_stream):
            return True
        off += 1 + ln
    return False


# ---------------------------------------------------------------- the hostile runner


class Reader(threading.Thread):
    """Reads backend messages off a socket until EOF; records them."""

    def __init__(self, sock):
        super().__init__(daemon=True)
        self.sock = sock
        self.msgs = []  # (type, sqlstate-or-status-or-None, data)
        self.eof = threading.Event()
        self.stopped = threading.Event()
        self.cond = threading.Condition()
        self.buf = bytearray()
        self.backend_key = None
        self.bad = None

    def run(self):
        # polls, so that the owner can stop it and then really close the
        # socket (a close() while another thread sits in recv() does not)
        self.sock.settimeout(0.1)
        try:
            while not self.stopped.is_set():
                try:
                    chunk = self.sock.recv(65536)
                except socket.timeout:
                    continue
                except OSError:
                    break
                if not chunk:
                    break
                self.buf += chunk
                self._parse()
        finally:
            with self.cond:
                self.eof.set()
                self.cond.notify_all()

    def _parse(self):
        while len(self.buf) >= 5:
            t = chr(self.buf[0])
            (ln,) = struct.unpack_from("!I", self.buf, 1)
            if ln < 4 or ln > (1 << 30):
                self.bad = "backend message %r with length %d" % (t, ln)
                self.buf.clear()
                return
            if len(self.buf) < 1 + ln:
                return
            body = bytes(self.buf[5 : 1 + ln])
            del self.buf[: 1 + ln]
            info = None
            if t in "EN":
                info = pgwire.parse_error_fields(body).get("C")
            elif t == "Z":
                info = body[:1].decode()
            elif t == "K":
                self.backend_key = struct.unpack("!II", body[:8])
            elif t == "D":
                try:
                    info = pgwire.parse_data_row(body)
                except struct.error:
                    info = "?"
            with self.cond:
                self.msgs.append((t, info))
                self.cond.notify_all()

    def wait_for(self, pred, timeout):
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                if pred():
                    return True
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self.cond.wait(remaining)


def _send(sock, data):
    try:
        sock.sendall(data)
        return True
    except OSError:
        return False


def send_cancel(host, port, key):
    try:
        s = socket.create_connection((host, port), timeout=3)
        s.sendall(pgwire.cancel_request(*key))
        s.settimeout(3)
        try:
            s.recv(16)
        except OSError:
            pass
        s.close()
    except OSError:
        pass


def run_hostile(host, port, p, hang_s=HANG_S, trace=None):
    """Run one planned hostile session. Returns a list of problem strings
    (empty: the oracle held) and the transcript."""
    problems = []
    try:
        sock = socket.create_connection((host, port), timeout=5)
    except OSError as e:
        return ["connect failed: %s" % e], []
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    rd = Reader(sock)
    rd.start()
    try:
        _send(sock, m_startup(p["startup"])[1])
        ok = rd.wait_for(lambda: rd.eof.is_set() or any(t in "ZE" for t, _ in rd.msgs), hang_s)
        if not ok:
            return ["hang: no answer to the StartupMessage in %.0fs" % hang_s], rd.msgs
        if rd.eof.is_set() or rd.msgs[-1][0] == "E":
            # refused at login (e.g. replication=database): fine if closed
            if not rd.wait_for(rd.eof.is_set, hang_s):
                problems.append("hang: login refused but connection left open")
            return problems, rd.msgs
        crng = random.Random(p["chunk_seed"])
        stream = b"".join(raw for _, raw in p["msgs"])
        deadline = time.monotonic() + 3.0  # bound a drip
        for idx, (label, raw) in enumerate(p["msgs"]):
            if p["cancel_at"] == idx and rd.backend_key:
                key = rd.backend_key
                if p["cancel_bad_key"]:
                    key = (key[0], key[1] ^ 1)
                send_cancel(host, port, key)
            if p["delivery"] == "one":
                if idx == 0 and not _send(sock, stream):
                    break
                continue
            if p["delivery"] == "each":
                if not _send(sock, raw):
                    break
                continue
            # chunks / drip
            off = 0
            while off < len(raw):
                k = crng.randint(1, 7 if p["delivery"] == "drip" else 64)
                if not _send(sock, raw[off : off + k]):
                    break
                off += k
                if time.monotonic() < deadline:
                    time.sleep(crng.choice([0, 0, 0.001, 0.005]) if p["delivery"] == "drip" else 0)
        if p["cancel_at"] == len(p["msgs"]) and rd.backend_key:
            send_cancel(host, port, rd.backend_key)
        ending = p["ending"]
        partial = incomplete(stream)
        if ending == "probe" and not partial:
            marker = "hxprobe%d" % p["seed"]
            n0 = len(rd.msgs)
            _send(sock, pgwire.sync() + pgwire.query("SELECT '%s'" % marker))

            def answered():
                if rd.eof.is_set():
                    return True
                for t, info in rd.msgs[n0:]:
                    if t == "E" or (t == "D" and info == [marker]):
                        return True
                return False

            if not rd.wait_for(answered, hang_s):
                problems.append(
                    "hang: probe (Sync + Query) not answered within %.0fs; last messages %s"
                    % (hang_s, rd.msgs[-6:])
                )
            else:
                _send(sock, pgwire.terminate())
                if not rd.wait_for(rd.eof.is_set, hang_s):
                    problems.append("hang: Terminate after the probe did not close")
        elif ending in ("terminate", "probe") and not partial:
            _send(sock, pgwire.terminate())
            if not rd.wait_for(rd.eof.is_set, hang_s):
                problems.append("hang: Terminate did not close the connection")
        elif ending == "halfclose" or (ending == "probe" and partial):
            try:
                sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            if not rd.wait_for(rd.eof.is_set, hang_s):
                problems.append("hang: half-closed connection not closed within %.0fs" % hang_s)
        elif ending == "hold":
            # say nothing more: a complete stream must get its answers, a
            # protocol error its close; then leave
            time.sleep(0.2)
        # "close": just go
        if rd.bad:
            problems.append("bad backend stream: " + rd.bad)
    finally:
        rd.stopped.set()
        rd.join(5)
        if p["ending"] == "close" and p["chunk_seed"] & 1:
            # abortive close: RST instead of FIN
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        try:
            sock.close()
        except OSError:
            pass
    return problems, rd.msgs


# ---------------------------------------------------------------- good clients


CHECK_SQL = (
    "SELECT current_setting('statement_timeout'), current_setting('work_mem'), "
    "current_setting('lock_timeout'), current_setting('search_path'), "
    "current_setting('DateStyle'), current_setting('TimeZone'), "
    "(SELECT count(*) FROM pg_prepared_statements WHERE name LIKE 'hx%%'), "
    "(SELECT count(*) FROM pg_class WHERE relnamespace = pg_my_temp_schema()), "
    "(SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()), "
    "(SELECT count(*) FROM pg_cursors), "
    "(SELECT count(*) FROM pg_listening_channels()), "
    "now() = statement_timestamp(), %s::int"
)


class Good(threading.Thread):
    """A well-behaved client: every answer is checked exactly."""

    def __init__(self, host, port, idx, stop, baseline, findings, lock):
        super().__init__(daemon=True)
        self.host, self.port, self.idx = host, port, idx
        self.stop = stop
        self.baseline = baseline
        self.findings = findings
        self.lock = lock
        self.rng = random.Random(idx * 7919 + os.getpid())
        self.ops = 0

    def fail(self, what):
        with self.lock:
            self.findings.append("good client %d: %s" % (self.idx, what))

    def one_session(self):
        c = pgwire.RawConn(self.host, self.port, timeout=20)
        try:
            c.login(USER, DB)
            for _ in range(self.rng.randint(1, 8)):
                if self.stop.is_set():
                    break
                v = self.rng.randint(-(2**31), 2**31 - 1)
                k = self.rng.randrange(4)
                if k == 0:
                    rows, _ = c.simple_query(CHECK_SQL % v)
                    got = tuple(rows[0])
                    want = self.baseline + ("0", "0", "0", "0", "0", "t", str(v))
                    if got != want:
                        self.fail("state check: got %r want %r" % (got, want))
                elif k == 1:
                    c.send(
                        pgwire.parse("", "SELECT $1::int, $2::text")
                        + pgwire.bind("", "", [str(v), "g%d" % self.idx])
                        + pgwire.execute()
                        + pgwire.sync()
                    )
                    rows, _ = c.collect()
                    if rows != [[str(v), "g%d" % self.idx]]:
                        self.fail("extended echo: got %r want %r" % (rows, v))
                elif k == 2:
                    tag = uuid.uuid4().hex[:12]
                    rows, _ = c.simple_query(
                        "BEGIN; INSERT INTO %s (v) VALUES ('g%s'); COMMIT" % (SINK, tag)
                    )
                    rows, _ = c.simple_query("SELECT count(*) FROM %s WHERE v = 'g%s'" % (SINK, tag))
                    if rows != [["1"]]:
                        self.fail("committed row read back: got %r" % rows)
                else:
                    c.send(
                        pgwire.parse("", "SELECT $1::int + 0 FROM generate_series(1, 3)")
                        + pgwire.bind("", "", [str(v)])
                        + pgwire.execute("", 2)
                        + pgwire.sync()
                        + pgwire.query("SELECT %d" % v)
                    )
                    rows, _ = c.collect()
                    rows2, _ = c.collect()
                    if rows != [[str(v)], [str(v)]] or rows2 != [[str(v)]]:
                        self.fail("pipeline: got %r %r want %d" % (rows, rows2, v))
                self.ops += 1
            c.send(pgwire.terminate())
        finally:
            c.close()

    def run(self):
        while not self.stop.is_set():
            try:
                self.one_session()
            except Exception as e:  # any error or timeout is a finding
                self.fail("%s: %s" % (type(e).__name__, e))
                time.sleep(0.2)


def baseline_settings(host, port):
    c = pgwire.RawConn(host, port, timeout=20)
    try:
        c.login(USER, DB)
        rows, _ = c.simple_query(CHECK_SQL % 0)
        return tuple(rows[0][:6])
    finally:
        c.close()


# ---------------------------------------------------------------- stack side


def pg_super_sql(sql):
    import psycopg

    with psycopg.connect(
        host=os.environ.get("PX_PG_HOST", "127.0.0.1"),
        port=int(os.environ["PX_PG_PORT"]),
        user="postgres",
        dbname=DB,
        autocommit=True,
        connect_timeout=5,
    ) as c:
        cur = c.execute(sql)
        return cur.fetchall() if cur.description else None


def setup_db():
    pg_super_sql(
        "CREATE TABLE IF NOT EXISTS %s (id bigserial primary key, v text); "
        "GRANT ALL ON %s TO PUBLIC; GRANT ALL ON SEQUENCE %s_id_seq TO PUBLIC"
        % (SINK, SINK, SINK)
    )


def server_backends():
    """PostgreSQL backends of the fuzz user: [(pid, state, query)]."""
    return pg_super_sql(
        "SELECT pid, state, left(query, 60) FROM pg_stat_activity "
        "WHERE usename = '%s' AND backend_type = 'client backend'" % USER
    )


def stuck_after(seed, known, settle=3.0):
    """Per-seed leak oracle (one hostile client at a time): the user's server
    backends not idle settle seconds after the session ended, that were not
    already stuck before it."""
    deadline = time.monotonic() + settle
    while True:
        rows = [r for r in server_backends() if r[1] != "idle" and r[0] not in known]
        if not rows or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    known.update(r[0] for r in rows)
    return ["leak: server backend left %r after the session" % (r,) for r in rows]


def state_after(host, port, baseline):
    """A fresh client's view of its server connection (with DB_POOL_SIZE=1 it
    is the one the hostile session just used): clean, and answers in time."""
    try:
        c = pgwire.RawConn(host, port, timeout=HANG_S)
        try:
            c.login(USER, DB)
            rows, _ = c.simple_query(CHECK_SQL % 1)
            c.send(pgwire.terminate())
        finally:
            c.close()
    except Exception as e:
        return ["next client: %s: %s" % (type(e).__name__, e)]
    want = baseline + ("0", "0", "0", "0", "0", "t", "1")
    if tuple(rows[0]) != want:
        return ["next client sees state: got %r want %r" % (tuple(rows[0]), want)]
    return []


def post_checks(host, port, pool_max, settle=15.0):
    """After the storm: every backend of the user idle (not in a transaction
    or COPY), at most pool_max of them, and fresh clients see clean state."""
    problems = []
    deadline = time.monotonic() + settle
    while True:
        rows = server_backends()
        bad = [r for r in rows if r[1] != "idle"]
        if (not bad and len(rows) <= pool_max) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    if bad:
        problems.append("leak: server backends not idle after the run: %r" % bad)
    if len(rows) > pool_max:
        problems.append("leak: %d server backends open, pool allows %d" % (len(rows), pool_max))
    return problems


# ---------------------------------------------------------------- proxy process


SANITIZER_MARKERS = ("AddressSanitizer", "LeakSanitizer", "runtime error:", "ThreadSanitizer")


def sanitizer_report(path):
    try:
        with open(path, "rb") as f:
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return None
    for m in SANITIZER_MARKERS:
        i = text.find(m)
        if i >= 0:
            return text[max(0, i - 200) : i + 6000]
    return None


def start_proxy(binary, workdir, extra_env=None):
    from conftest import DEFAULT_PROXY_ENV, auth_file_lines, free_port, proxy_base_env

    auth = os.path.join(workdir, "userlist.txt")
    with open(auth, "w") as f:
        f.write(auth_file_lines("plain"))
    port, admin = free_port(), free_port()
    cfg = dict(DEFAULT_PROXY_ENV)
    cfg.update(
        PROXY_LISTEN="127.0.0.1:%d" % port,
        ADMIN_LISTEN="127.0.0.1:%d" % admin,
        POSTGRES_SERVER=os.environ.get("PX_PG_HOST", "127.0.0.1"),
        POSTGRES_PORT=os.environ["PX_PG_PORT"],
        AUTH_FILE=auth,
        AUTH_TYPE="trust",
        DB_POOL_TIMEOUT="5",  # a pool wait is answered well within HANG_S
    )
    cfg.update(extra_env or {})
    env = proxy_base_env()
    env.update(cfg)
    errpath = os.path.join(workdir, "proxy.stderr")
    errf = open(errpath, "wb")
    proc = subprocess.Popen([binary], env=env, stdin=subprocess.DEVNULL, stdout=errf, stderr=errf)
    deadline = time.monotonic() + 15
    while True:
        if proc.poll() is not None:
            raise RuntimeError("proxy exited at startup: %s" % open(errpath).read()[-2000:])
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError("proxy did not start")
            time.sleep(0.05)
    return proc, port, errpath, cfg


def stop_proxy(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    return proc.returncode


# ---------------------------------------------------------------- the campaign


def campaign(host, port, seeds, seconds, n_hostile=2, n_good=3, alive=None, errpath=None,
             log=print, pool_max=6, avoid=(), check_each=False):
    """Run hostile seeds against host:port with good clients alongside.
    Returns (findings, seeds_run)."""
    findings = []
    lock = threading.Lock()
    setup_db()
    baseline = baseline_settings(host, port)
    stop = threading.Event()
    goods = [Good(host, port, i, stop, baseline, findings, lock) for i in range(n_good)]
    for g in goods:
        g.start()
    todo = list(seeds)
    done = []
    known_stuck = set()
    t_end = time.monotonic() + seconds

    def hostile_worker():
        while True:
            with lock:
                if not todo or time.monotonic() > t_end or stop.is_set():
                    return
                seed = todo.pop(0)
            p = plan(seed, avoid)
            try:
                problems, _ = run_hostile(host, port, p)
            except Exception as e:
                problems = ["runner error %s: %s" % (type(e).__name__, e)], []
            if check_each:
                problems += stuck_after(seed, known_stuck)
                problems += state_after(host, port, baseline)
            with lock:
                done.append(seed)
                for pr in problems:
                    findings.append("seed %d: %s\n%s" % (seed, pr, show_plan(p)))
            if alive and not alive():
                stop.set()
                return

    hs = [threading.Thread(target=hostile_worker, daemon=True) for _ in range(n_hostile)]
    for h in hs:
        h.start()
    last = time.monotonic()
    while any(h.is_alive() for h in hs):
        time.sleep(0.2)
        if time.monotonic() - last > 30:
            last = time.monotonic()
            log("... %d seeds, %d findings, good ops %s" % (len(done), len(findings),
                                                           [g.ops for g in goods]))
        if errpath and sanitizer_report(errpath):
            findings.append("crash: sanitizer report in proxy stderr")
            stop.set()
        if alive and not alive():
            findings.append("crash: proxy process died")
            stop.set()
    stop.set()
    for g in goods:
        g.join(30)
    if alive is None or alive():
        findings.extend(post_checks(host, port, pool_max))
        # fresh clients after the storm: many sessions, each must see clean state
        stop2 = threading.Event()
        sweep = [Good(host, port, 100 + i, stop2, baseline, findings, lock) for i in range(4)]
        for g in sweep:
            g.start()
        time.sleep(3)
        stop2.set()
        for g in sweep:
            g.join(30)
    return findings, done


def minimize(host, port, seed, avoid=(), tries=2, log=print):
    """Greedy message-level minimisation of a failing seed run alone: drop
    one message at a time while the run still shows a problem (hang, a
    server backend left busy, or state the next client sees: run the proxy
    with DB_POOL_SIZE=1 WORKERS=1). Returns the smallest failing plan."""
    known = set(r[0] for r in server_backends() if r[1] != "idle")
    baseline = baseline_settings(host, port)

    def fails(p):
        for _ in range(tries):
            problems, _ = run_hostile(host, port, p)
            problems += stuck_after(p["seed"], known)
            problems += state_after(host, port, baseline)
            if problems:
                return problems
        return None

    p = plan(seed, avoid)
    first = fails(p)
    if not first:
        log("seed %d does not fail alone" % seed)
        return None
    changed = True
    while changed:
        changed = False
        for i in range(len(p["msgs"]) - 1, -1, -1):
            q = dict(p, msgs=p["msgs"][:i] + p["msgs"][i + 1 :], cancel_at=None)
            if p["cancel_at"] is not None:
                q["cancel_at"] = p["cancel_at"] if p["cancel_at"] <= i else p["cancel_at"] - 1
                q["cancel_at"] = min(q["cancel_at"], len(q["msgs"]))
            if fails(q):
                p, changed = q, True
    for delivery in ("one", "each"):
        q = dict(p, delivery=delivery)
        if p["delivery"] != delivery and fails(q):
            p = q
            break
    log(show_plan(p))
    log("problems: %s" % fails(p))
    return p


def transcript(host, port, p, timeout=8.0):
    """Send a plan's messages in one write, then Sync + a marker Query; the
    backend messages up to the marker's ReadyForQuery (or the close),
    normalised for comparison: type letters, SQLSTATE of errors, transaction
    status of ReadyForQuery."""
    sock = socket.create_connection((host, port), timeout=5)
    rd = Reader(sock)
    rd.start()
    marker = "hxmark%d" % p["seed"]
    try:
        _send(sock, m_startup(p["startup"])[1])
        if not rd.wait_for(lambda: rd.eof.is_set() or any(t in "ZE" for t, _ in rd.msgs), timeout):
            return ["<login hang>"]
        n0 = len(rd.msgs)
        _send(sock, b"".join(raw for _, raw in p["msgs"]))
        _send(sock, pgwire.sync() + pgwire.query("SELECT '%s'" % marker))

        def ended():
            if rd.eof.is_set():
                return True
            seen = False
            for t, info in rd.msgs[n0:]:
                if t == "D" and info == [marker]:
                    seen = True
                elif seen and t == "Z":
                    return True
            return False

        hung = not rd.wait_for(ended, timeout)
        out = []
        for t, info in rd.msgs[n0:]:
            if t in "SKNA":
                continue
            out.append(t + (":" + str(info) if t in "EZ" else ""))
        if hung:
            out.append("<hang>")
        elif rd.eof.is_set():
            out.append("<closed>")
        return out
    finally:
        rd.stopped.set()
        rd.join(5)
        sock.close()


def diff_seeds(host, port, direct_port, seeds, avoid=(), log=print):
    """Valid-but-odd sessions (message-level mutations only, no cancel):
    the proxy's answers must match PostgreSQL's own."""
    findings = []
    for seed in seeds:
        p = plan(seed, avoid)
        if not p["wellformed"] or p["startup"]:
            continue
        p["cancel_at"] = None
        a = transcript("127.0.0.1", direct_port, p)
        b = transcript(host, port, p)
        if a != b:
            i = next((k for k in range(min(len(a), len(b))) if a[k] != b[k]), min(len(a), len(b)))
            findings.append(
                "seed %d: diff at %d: direct %s | proxy %s\n%s"
                % (seed, i, a[max(0, i - 3) : i + 4], b[max(0, i - 3) : i + 4], show_plan(p))
            )
            log(findings[-1])
    return findings


def parse_seeds(spec):
    out = []
    for part in spec.split(","):
        if "-" in part:
            a, b = part.split("-")
            out.extend(range(int(a), int(b) + 1))
        elif part:
            out.append(int(part))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", default="0-199")
    ap.add_argument("--seconds", type=float, default=300)
    ap.add_argument("--hostile", type=int, default=2)
    ap.add_argument("--good", type=int, default=3)
    ap.add_argument("--proxy-bin", default=os.environ.get("PX_PROXY_BIN")
                    or os.path.join(HERE, "..", "..", "build-asan", "fastnext-proxy"))
    ap.add_argument("--connect", help="host:port of an already running proxy (no process checks)")
    ap.add_argument("--show", type=int, help="print the plan of one seed and exit")
    ap.add_argument("--env", action="append", default=[], help="KEY=VALUE for the proxy")
    ap.add_argument("--check-each", action="store_true",
                    help="after each seed, check no server backend is left busy (use --hostile 1)")
    ap.add_argument("--minimize", type=int, help="minimise a failing seed (needs --connect)")
    ap.add_argument("--diff", action="store_true",
                    help="compare well-formed mutated sessions with PostgreSQL (needs --connect)")
    ap.add_argument("--avoid", default="", help="generator features to leave out, e.g. funcall_state")
    args = ap.parse_args()
    avoid = tuple(a for a in args.avoid.split(",") if a)
    if args.show is not None:
        print(show_plan(plan(args.show, avoid)))
        return 0
    seeds = parse_seeds(args.seeds)
    if args.diff:
        host, port = args.connect.rsplit(":", 1)
        f = diff_seeds(host, int(port), int(os.environ["PX_PG_PORT"]), seeds, avoid)
        print("%d differences" % len(f))
        return 1 if f else 0
    if args.minimize is not None:
        host, port = args.connect.rsplit(":", 1)
        minimize(host, int(port), args.minimize, avoid)
        return 0
    if args.connect:
        host, port = args.connect.rsplit(":", 1)
        findings, done = campaign(host, int(port), seeds, args.seconds, args.hostile, args.good,
                                  avoid=avoid, check_each=args.check_each)
    else:
        workdir = tempfile.mkdtemp(prefix="netfuzz-")
        extra = dict(kv.split("=", 1) for kv in args.env)
        proc, port, errpath, cfg = start_proxy(args.proxy_bin, workdir, extra)
        pool_max = int(cfg["DB_POOL_SIZE"]) + int(cfg["DB_MAX_OVERFLOW"])
        print("proxy pid %d port %d stderr %s" % (proc.pid, port, errpath), flush=True)
        try:
            findings, done = campaign("127.0.0.1", port, seeds, args.seconds, args.hostile,
                                      args.good, alive=lambda: proc.poll() is None,
                                      errpath=errpath, pool_max=pool_max, avoid=avoid,
                                      check_each=args.check_each)
        finally:
            rc = stop_proxy(proc)
        rep = sanitizer_report(errpath)
        if rep:
            findings.append("sanitizer report:\n" + rep)
        print("proxy exit status %s" % rc)
    print("seeds run: %d (%s..%s)" % (len(done), min(done) if done else "-",
                                      max(done) if done else "-"))
    for f in findings:
        print("FINDING:", f)
        print()
    print("%d findings" % len(findings))
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
