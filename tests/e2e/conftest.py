"""Fixtures for the end-to-end suite: the test stack, the proxy under test, and
helpers shared by the test files.

The stack (PostgreSQL primary + replicas + Redis) is started outside pytest by
scripts/with-stack.sh, which exports PX_PG_HOST, PX_PG_PORT, ... .  Without
PX_PG_PORT every test is skipped.

`proxy(env=..., auth=...)` starts PX_PROXY_BIN (default build/fastnext-proxy)
on free ports with a fresh auth file and returns an endpoint; at teardown the
proxy is stopped by PID and its stderr is checked for sanitizer reports.

PX_E2E_DIRECT=1 makes `proxy(...)` return the primary's own address instead:
every test that does not need the proxy must pass against PostgreSQL itself,
which is how the suite's own expectations are checked.  Tests that only make
sense through the proxy skip in that mode.
"""

import ctypes
import faulthandler
import os
import random
import re
import shlex
import shutil
import signal
import socket
import subprocess
import time
import uuid
import warnings

import pytest

import pgwire

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))

DIRECT = os.environ.get("PX_E2E_DIRECT", "") == "1"
PROXY_BIN = os.environ.get("PX_PROXY_BIN") or os.path.join(ROOT, "build", "fastnext-proxy")
if not os.path.isabs(PROXY_BIN):
    PROXY_BIN = os.path.join(ROOT, PROXY_BIN)

PG_HOST = os.environ.get("PX_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ["PX_PG_PORT"]) if os.environ.get("PX_PG_PORT") else None
PGBIN = os.environ.get("PX_PGBIN", "/usr/lib/postgresql/15/bin")

# The roles the stack creates, with their passwords (None: no password needed).
PASSWORDS = {
    "fnx": "fnx_pass",  # SCRAM in pg_authid, owner of database fnx
    "fnx_md5": "md5_pass",  # md5 in pg_authid, hba md5
    "fnx_plain": "plain_pass",  # hba password (cleartext)
    "fnx_trust": "trust_pass",  # hba trust; the proxy's auth file still lists it
}
DBNAME = "fnx"

# Default proxy configuration for the tests.  The result cache is switched off
# so protocol and pooling tests see PostgreSQL's answers, not cached ones.
DEFAULT_PROXY_ENV = {
    "POOL_MODE": "transaction",
    "DB_POOL_SIZE": "4",
    "DB_MAX_OVERFLOW": "2",
    "DB_POOL_TIMEOUT": "5",
    "WORKERS": "2",
    # one client per worker in turn: every test crosses workers (server handoffs,
    # cancels, cache coalescing); test_pooling checks the default filling
    "WORKER_FILL_CLIENTS": "1",
    "AUTH_TYPE": "scram-sha-256",
    "CLIENT_LOGIN_TIMEOUT": "3",
    "LOG_LEVEL": "info",
    "CACHE_ENABLED": "false",
    # the health checker logs in as this user (its password comes from the auth file)
    "POSTGRES_USER": "fnx",
    # SIGTERM drains; tests stop proxies with SIGTERM and should not wait long
    "DRAIN_TIMEOUT": "2",
}

# PX_E2E_PROXY_ENV="WORKERS=1 LOG_LEVEL=debug" changes the defaults for a
# diagnostic run (tests that set a key themselves still win).
for _kv in shlex.split(os.environ.get("PX_E2E_PROXY_ENV", "")):
    _k, _, _v = _kv.partition("=")
    DEFAULT_PROXY_ENV[_k] = _v

SANITIZER_MARKERS = ("AddressSanitizer", "LeakSanitizer", "runtime error:", "ThreadSanitizer")

DEFAULT_TEST_TIMEOUT = 60  # seconds per test body; override with @pytest.mark.timeout_s(N)

_DEFAULT = object()


# ---------------------------------------------------------------- pytest hooks


def pytest_configure(config):
    config.addinivalue_line("markers", "timeout_s(n): wall-clock limit for the test body")


def pytest_collection_modifyitems(config, items):
    if PG_PORT is None:
        skip = pytest.mark.skip(
            reason="PX_PG_PORT is not set: run the e2e suite under scripts/with-stack.sh "
            "(or source $PX_STACK_DIR/env.sh after scripts/stack.sh start)"
        )
        for item in items:
            item.add_marker(skip)


class TestTimeout(Exception):
    """Raised in the main thread when a test body runs past its limit."""


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    """Bound every test body: SIGALRM raises TestTimeout (psycopg 3 and Python
    code notice it); if something blocks in C and ignores it, faulthandler
    dumps the stacks and ends the run 60 s later rather than hanging CI."""
    m = item.get_closest_marker("timeout_s")
    limit = m.args[0] if m else DEFAULT_TEST_TIMEOUT

    def on_alarm(signum, frame):
        raise TestTimeout("test body exceeded %ss" % limit)

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, limit)
    faulthandler.dump_traceback_later(limit + 60, exit=True)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        faulthandler.cancel_dump_traceback_later()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Attach the tail of each proxy's stderr to a failing test's report."""
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        for p in getattr(item, "_px_proxies", []):
            if p.stderr_path and os.path.exists(p.stderr_path):
                rep.sections.append(
                    ("proxy %s stderr (tail)" % p.port, tail(p.stderr_path, 40))
                )


# ---------------------------------------------------------------- helpers


def tail(path, n=30):
    try:
        with open(path, "rb") as f:
            lines = f.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return ""
    return "\n".join(lines[-n:])


def unique(prefix="e2e"):
    """A fresh identifier for tables, channels, markers in query text."""
    return "%s_%s" % (prefix, uuid.uuid4().hex[:10])


def free_port():
    """A free TCP port on 127.0.0.1 below the kernel's ephemeral range (32768
    and up by default), so an outgoing connection cannot take it between
    this check and the proxy's own bind."""
    for _ in range(500):
        port = random.randint(20000, 32000)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout, interval=0.1, what="condition"):
    """Poll predicate() until truthy; return its value or fail after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        v = predicate()
        if v:
            return v
        if time.monotonic() >= deadline:
            pytest.fail("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(interval)


def skip_if_direct(reason="only meaningful through the proxy"):
    if DIRECT:
        pytest.skip("PX_E2E_DIRECT=1: " + reason)


def pg_super(dbname=DBNAME):
    """A direct superuser connection to the primary (autocommit)."""
    import psycopg

    return psycopg.connect(
        host=PG_HOST,
        port=PG_PORT,
        user="postgres",
        dbname=dbname,
        autocommit=True,
        connect_timeout=5,
    )


def rss_kb(pid):
    """Resident set size of a process in kB, from /proc/<pid>/status."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for pid %d" % pid)


def _socket_inodes(pid):
    inodes = set()
    fd_dir = "/proc/%d/fd" % pid
    for fd in os.listdir(fd_dir):
        try:
            target = os.readlink(os.path.join(fd_dir, fd))
        except OSError:
            continue
        m = re.match(r"socket:\[(\d+)\]", target)
        if m:
            inodes.add(m.group(1))
    return inodes


def established_conns(pid, remote_port):
    """Number of ESTABLISHED TCP connections owned by pid to remote_port."""
    inodes = _socket_inodes(pid)
    n = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    parts = line.split()
                    rem_port = int(parts[2].split(":")[1], 16)
                    if rem_port == remote_port and parts[3] == "01" and parts[9] in inodes:
                        n += 1
        except OSError:
            continue
    return n


def pg_env(endpoint, user="fnx", password=_DEFAULT, dbname=DBNAME, **extra):
    """Environment for libpq command-line tools (psql, pgbench)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(
        PGHOST=endpoint.host,
        PGPORT=str(endpoint.port),
        PGUSER=user,
        PGDATABASE=dbname,
        PGCONNECT_TIMEOUT="5",
        PGSSLMODE="disable",
        PGAPPNAME="e2e",
    )
    if password is _DEFAULT:
        password = PASSWORDS.get(user)
    if password is not None:
        env["PGPASSWORD"] = password
    env.update(extra)
    return env


def _pdeathsig():
    """Child setup: die with the test process, never outlive a killed pytest."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


# ---------------------------------------------------------------- endpoint


class Endpoint:
    """Where a test connects: a running proxy, or (direct mode) the primary."""

    def __init__(self, host, port, proc=None, env=None, stderr_path=None, admin_port=None):
        self.host = host
        self.port = port
        self.proc = proc
        self.env = env or {}
        self.stderr_path = stderr_path
        self.admin_port = admin_port
        self.direct = proc is None

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def conninfo(self, user="fnx", password=_DEFAULT, dbname=DBNAME, **kw):
        import psycopg.conninfo

        if password is _DEFAULT:
            password = PASSWORDS.get(user)
        params = dict(host=self.host, port=self.port, user=user, dbname=dbname)
        if password is not None:
            params["password"] = password
        params.setdefault("connect_timeout", 5)
        params.update(kw)
        return psycopg.conninfo.make_conninfo(**params)

    def connect(self, user="fnx", password=_DEFAULT, dbname=DBNAME, autocommit=False, **kw):
        """A psycopg 3 connection through this endpoint."""
        import psycopg

        extra = {}
        for k in ("prepare_threshold", "row_factory", "cursor_factory"):
            if k in kw:
                extra[k] = kw.pop(k)
        return psycopg.connect(
            self.conninfo(user, password, dbname, **kw), autocommit=autocommit, **extra
        )

    def raw(self, timeout=5.0, rcvbuf=None):
        """A raw pgwire socket to this endpoint (not logged in)."""
        return pgwire.RawConn(self.host, self.port, timeout=timeout, rcvbuf=rcvbuf)

    def alive(self):
        return self.direct or self.proc.poll() is None

    def rss_kb(self):
        return rss_kb(self.pid)

    def server_conns(self):
        """Server connections this proxy holds open to the primary right now."""
        return established_conns(self.pid, PG_PORT)

    def stderr_text(self):
        if not self.stderr_path:
            return ""
        with open(self.stderr_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def assert_healthy(self, user="fnx", **kw):
        """The process is alive and a fresh well-formed client gets answers."""
        assert self.alive(), "proxy process died (exit %s)" % self.proc.returncode
        with self.connect(user=user, autocommit=True, **kw) as c:
            assert c.execute("SELECT 41 + 1").fetchone()[0] == 42


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def stack():
    return {
        "host": PG_HOST,
        "port": PG_PORT,
        "replica1": int(os.environ.get("PX_PG_REPLICA1_PORT", "0") or 0),
        "replica2": int(os.environ.get("PX_PG_REPLICA2_PORT", "0") or 0),
        "redis": int(os.environ.get("PX_REDIS_PORT", "0") or 0),
        "pgbin": PGBIN,
    }


@pytest.fixture(scope="session")
def fnx_scram_verifier(stack):
    """fnx's SCRAM verifier exactly as the server stores it."""
    with pg_super("postgres") as c:
        (v,) = c.execute("SELECT rolpassword FROM pg_authid WHERE rolname = 'fnx'").fetchone()
    assert v.startswith("SCRAM-SHA-256$"), v
    return v


def auth_file_lines(variant, fnx_verifier=None):
    """userlist.txt contents.

    plain: every secret a plaintext password.
    scram: fnx's secret is its SCRAM verifier only (no plaintext for fnx).
    md5:   fnx_md5's secret is its md5 hash; others plaintext (fnx is SCRAM on
           the server, so the proxy needs something it can log in with).
    """
    secrets = dict(PASSWORDS)
    if variant == "scram":
        secrets["fnx"] = fnx_verifier
    elif variant == "md5":
        secrets["fnx_md5"] = pgwire.md5_hash_secret("fnx_md5", PASSWORDS["fnx_md5"])
    elif variant != "plain":
        raise ValueError(variant)
    return "".join('"%s" "%s"\n' % (u, s) for u, s in secrets.items())


def proxy_base_env():
    """A clean environment: nothing of the caller's proxy/libpq config leaks in."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    for k, v in os.environ.items():
        if k.endswith("SAN_OPTIONS"):
            env[k] = v
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
    return env


def _stop(proc, grace=5.0):
    """SIGTERM, then SIGKILL after grace seconds. Returns seconds it took."""
    t0 = time.monotonic()
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    return time.monotonic() - t0


@pytest.fixture
def proxy(stack, tmp_path, request):
    """Factory: proxy(env=None, auth="plain") -> Endpoint.

    env overrides DEFAULT_PROXY_ENV (a value of None removes a key).  auth picks
    the auth-file variant (see auth_file_lines).  In direct mode returns the
    primary's address and ignores both.
    """
    started = []
    request.node._px_proxies = started

    def start(env=None, auth="plain", args=()):
        if DIRECT:
            return Endpoint(PG_HOST, PG_PORT)
        if not os.access(PROXY_BIN, os.X_OK):
            pytest.fail(
                "proxy binary %s not found or not executable: build it first "
                "(or set PX_PROXY_BIN, or PX_E2E_DIRECT=1 to test against PostgreSQL)"
                % PROXY_BIN
            )
        n = len(started)
        verifier = None
        if auth == "scram":
            verifier = request.getfixturevalue("fnx_scram_verifier")
        auth_path = tmp_path / ("userlist-%d.txt" % n)
        auth_path.write_text(auth_file_lines(auth, verifier))
        port, admin_port = free_port(), free_port()
        cfg = dict(DEFAULT_PROXY_ENV)
        cfg.update(
            PROXY_LISTEN="127.0.0.1:%d" % port,
            ADMIN_LISTEN="127.0.0.1:%d" % admin_port,
            POSTGRES_SERVER=PG_HOST,
            POSTGRES_PORT=str(PG_PORT),
            AUTH_FILE=str(auth_path),
        )
        for k, v in (env or {}).items():
            if v is None:
                cfg.pop(k, None)
            else:
                cfg[k] = str(v)
        full_env = proxy_base_env()
        full_env.update(cfg)
        stderr_path = str(tmp_path / ("proxy-%d.stderr" % n))
        with open(stderr_path, "wb") as errf:
            proc = subprocess.Popen(
                [PROXY_BIN] + list(args),
                env=full_env,
                stdin=subprocess.DEVNULL,
                stdout=errf,
                stderr=errf,
                cwd=str(tmp_path),
                preexec_fn=_pdeathsig,
            )
        ep = Endpoint("127.0.0.1", port, proc, cfg, stderr_path, admin_port)
        started.append(ep)
        deadline = time.monotonic() + 10
        while True:
            if proc.poll() is not None:
                pytest.fail(
                    "proxy exited with %s during startup; stderr tail:\n%s"
                    % (proc.returncode, tail(stderr_path))
                )
            try:
                # the admin port answers once the start got past it
                if cfg.get("ADMIN_LISTEN") == "127.0.0.1:%d" % admin_port:
                    socket.create_connection(("127.0.0.1", admin_port), timeout=0.5).close()
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(
                    "proxy did not accept on 127.0.0.1:%d within 10s; stderr tail:\n%s"
                    % (port, tail(stderr_path))
                )
            time.sleep(0.05)
        return ep

    yield start

    problems = []
    log_dir = os.environ.get("PX_E2E_LOG_DIR") or os.environ.get("PX_TEST_OUT")
    for i, ep in enumerate(started):
        crashed = ep.proc.poll()
        if crashed == 0 and getattr(ep, "stopped_by_test", False):
            crashed = None  # the test stopped it on purpose (e.g. a SIGTERM drain)
        took = _stop(ep.proc)
        text = ep.stderr_text()
        if log_dir:  # keep every proxy log of the run for CI artifacts
            dest = os.path.join(log_dir, "e2e-proxy-logs")
            os.makedirs(dest, exist_ok=True)
            safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.nodeid)[-150:]
            shutil.copyfile(ep.stderr_path, os.path.join(dest, "%s.%d.stderr" % (safe, i)))
        if crashed is not None:
            problems.append(
                "proxy on port %d exited by itself during the test (status %s)"
                % (ep.port, crashed)
            )
        elif took > 4.9:
            warnings.warn("proxy on port %d ignored SIGTERM for 5s and was killed" % ep.port)
        for marker in SANITIZER_MARKERS:
            if marker in text:
                problems.append("sanitizer report (%r) in proxy stderr" % marker)
                break
    if problems:
        pytest.fail(
            "; ".join(problems)
            + "\n"
            + "\n".join("--- %s\n%s" % (ep.stderr_path, tail(ep.stderr_path, 60)) for ep in started)
        )


@pytest.fixture
def pgsuper(stack):
    """A direct superuser connection to the primary, database fnx."""
    c = pg_super()
    yield c
    c.close()


@pytest.fixture
def make_table(stack):
    """Factory: make_table("id int, v text") -> a fresh table owned by fnx,
    dropped at teardown."""
    made = []

    def make(columns, name=None):
        name = name or unique("t")
        # one transaction: a replica that sees the table also sees its owner
        # and grants (and never holds the ALTER's lock on its own)
        with pg_super() as c, c.transaction():
            c.execute("CREATE TABLE %s (%s)" % (name, columns))
            c.execute("ALTER TABLE %s OWNER TO fnx" % name)
            c.execute("GRANT ALL ON %s TO PUBLIC" % name)
        made.append(name)
        return name

    yield make
    if made:
        with pg_super() as c:
            c.execute("SET lock_timeout = '5s'")
            for name in made:
                try:
                    c.execute("DROP TABLE IF EXISTS %s" % name)
                except Exception:
                    pass
