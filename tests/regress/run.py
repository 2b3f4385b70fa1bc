#!/usr/bin/python3
"""Run PostgreSQL regression SQL directly and through fastnext-proxy, and diff the outputs.

For every tests/regress/sql/<name>.sql (with --extra, tests/regress/sql-extra/ too; or the
names given on the command line):

  1. a template database `regress_tmpl` is built once on the primary from setup.sql
     (test_setup.sql's tables with generated data), directly, as `postgres`;
  2. per variant and per file, a fresh database `regress_<name>` is cloned from it and the
     file is run with `psql -X -a -q -v ON_ERROR_STOP=0` (echo all, errors do not stop the
     script, stderr folded into stdout: what pg_regress does), as superuser `postgres`;
  3. the variant `direct` talks to the primary itself; every other variant talks to a
     fresh proxy (build/fastnext-proxy) started for that variant with the e2e suite's
     defaults, except that the result cache keeps its default (on) unless the variant
     says otherwise;
  4. each proxied output is compared with the direct one after normalisation (see
     NORMALISE) and a unified diff is written next to it.

Variants (choose with --variants, comma separated; `direct` always runs first):
  cache           transaction pooling, result cache on (the defaults)         [default]
  replicas        as cache, plus POSTGRES_READ_REPLICAS = the stack's replicas [default]
  nocache         transaction pooling, CACHE_ENABLED=false
  session         POOL_MODE=session, cache on
  nocache-replicas  replicas, CACHE_ENABLED=false

The stack comes from scripts/stack.sh's env.sh (PX_PG_HOST, PX_PG_PORT,
PX_PG_REPLICA1_PORT, PX_PG_REPLICA2_PORT, PX_PGBIN).  Role `postgres` logs in over TCP
without a password on the stack (pg_hba trust), so the proxy's auth file simply lists it
with a made-up password that psql sends to the proxy.

Exit status: 0 when every proxied output equals the direct one, 1 otherwise, 2 on a
set-up failure.
"""

import argparse
import difflib
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
SQL_DIR = os.path.join(HERE, "sql")
# more files of the suite, identical through the proxy too, that CI leaves out to keep its
# run short (each file costs a database clone per variant); run them by name or --extra
EXTRA_DIR = os.path.join(HERE, "sql-extra")
SETUP_SQL = os.path.join(HERE, "setup.sql")
# what the suite's \getenv abs_builddir reads: files write under its results/ (server-side
# COPY TO, lo_export, psql's \lo_export); main() points it into --out
BUILDDIR = HERE

PG_HOST = os.environ.get("PX_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("PX_PG_PORT", "0") or 0)
REPLICA_PORTS = [
    int(p)
    for p in (os.environ.get("PX_PG_REPLICA1_PORT"), os.environ.get("PX_PG_REPLICA2_PORT"))
    if p
]
PGBIN = os.environ.get("PX_PGBIN", "/usr/lib/postgresql/15/bin")
PSQL = os.path.join(PGBIN, "psql")

SUPERUSER = "postgres"
SUPERUSER_PASSWORD = "regress_pass"  # only between psql and the proxy
TEMPLATE_DB = "regress_tmpl"

# The e2e suite's proxy defaults (tests/e2e/conftest.py DEFAULT_PROXY_ENV), less
# CACHE_ENABLED=false: the acceptance run keeps the cache at its default, on.
BASE_PROXY_ENV = {
    "POOL_MODE": "transaction",
    "DB_POOL_SIZE": "4",
    "DB_MAX_OVERFLOW": "2",
    "DB_POOL_TIMEOUT": "5",
    "WORKERS": "2",
    "AUTH_TYPE": "scram-sha-256",
    "CLIENT_LOGIN_TIMEOUT": "3",
    "LOG_LEVEL": "info",
    "POSTGRES_USER": "fnx",
    "DRAIN_TIMEOUT": "2",
}

AUTH_USERS = {
    "fnx": "fnx_pass",
    "fnx_md5": "md5_pass",
    "fnx_plain": "plain_pass",
    "fnx_trust": "trust_pass",
    SUPERUSER: SUPERUSER_PASSWORD,
}


def replicas_value():
    return ",".join("%s:%d" % (PG_HOST, p) for p in REPLICA_PORTS)


VARIANTS = {
    "cache": {},
    "replicas": {"POSTGRES_READ_REPLICAS": replicas_value},
    "nocache": {"CACHE_ENABLED": "false"},
    "session": {"POOL_MODE": "session"},
    "nocache-replicas": {"CACHE_ENABLED": "false", "POSTGRES_READ_REPLICAS": replicas_value},
}

# What legitimately differs between two runs of the same file.
NORMALISE = [
    # backend process ids (pg_stat_activity, pg_terminate_backend messages, ...)
    (re.compile(r"\b(PID|pid|process) \d+\b"), r"\1 N"),
    # the script line psql prefixes to an asynchronous NOTICE/WARNING/INFO is the line it
    # was reading when the message reached it: a statement-level BEFORE trigger's notice
    # during COPY FROM stdin (flushed by the server right after CopyInResponse) is shown
    # with the COPY line when both arrive in one read, and with the line of the closing
    # \. otherwise; through a proxy they often arrive together
    (re.compile(r"^psql:([^:\n]+):\d+: (NOTICE|WARNING|INFO):", re.M), r"psql:\1:N: \2:"),
    # \timing output, should a file turn it on
    (re.compile(r"Time: \d+\.\d+ ms.*"), "Time: N ms"),
]


def sql_path(name):
    p = os.path.join(SQL_DIR, name + ".sql")
    return p if os.path.exists(p) else os.path.join(EXTRA_DIR, name + ".sql")


def log(msg):
    print(msg, flush=True)


def psql_env(port, dbname, password=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(
        PGHOST=PG_HOST,
        PGPORT=str(port),
        PGUSER=SUPERUSER,
        PGDATABASE=dbname,
        PGSSLMODE="disable",
        PGCONNECT_TIMEOUT="10",
        # what pg_regress puts in its tests' environment
        PGAPPNAME="pg_regress",
        # what the suite's \getenv reads: data files live in tests/regress/data
        PG_ABS_SRCDIR=HERE,
        PG_ABS_BUILDDIR=BUILDDIR,
        PGTZ="PST8PDT",
        PGDATESTYLE="Postgres, MDY",
        LC_MESSAGES="C",
        LANG="C",
        LC_ALL="C",
    )
    if password is not None:
        env["PGPASSWORD"] = password
    return env


def admin_sql(sql, dbname="postgres", port=None, check=True):
    """Run SQL directly on a server as postgres; returns stdout."""
    r = subprocess.run(
        [PSQL, "-X", "-Atq", "-v", "ON_ERROR_STOP=1", "-c", sql],
        env=psql_env(port or PG_PORT, dbname),
        capture_output=True,
        text=True,
        timeout=120,
    )
    if check and r.returncode != 0:
        raise RuntimeError("psql failed (%s): %s\n%s" % (r.returncode, sql, r.stderr))
    return r.stdout


def wait_replicas_caught_up(timeout=30):
    if not REPLICA_PORTS:
        return
    lsn = admin_sql("SELECT pg_current_wal_lsn()").strip()
    deadline = time.monotonic() + timeout
    for p in REPLICA_PORTS:
        while True:
            out = admin_sql(
                "SELECT pg_last_wal_replay_lsn() >= '%s'::pg_lsn" % lsn, port=p, check=False
            ).strip()
            if out == "t":
                break
            if time.monotonic() > deadline:
                log("warning: replica :%d has not replayed %s" % (p, lsn))
                break
            time.sleep(0.05)


def drop_db(name):
    admin_sql('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % name)


def build_template():
    drop_db(TEMPLATE_DB)
    admin_sql('CREATE DATABASE "%s"' % TEMPLATE_DB)
    r = subprocess.run(
        [PSQL, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", SETUP_SQL],
        env=psql_env(PG_PORT, TEMPLATE_DB),
        capture_output=True,
        text=True,
        timeout=600,
    )
    if r.returncode != 0:
        raise RuntimeError("setup.sql failed:\n%s%s" % (r.stdout, r.stderr))


def fresh_db(name, replicas=True):
    """A new database `name` cloned from the template; with replicas, waits until they
    have replayed it (only variants that read from replicas need that)."""
    # one psql for the three statements (each its own -c: CREATE DATABASE cannot run in
    # the implicit transaction of a multi-statement query)
    # The stack preloads pg_stat_statements, which turns compute_query_id on, and then
    # EXPLAIN VERBOSE prints a "Query Identifier" that hashes the OIDs of the objects a
    # file created: different in every fresh database.  pg_regress's own runs do not
    # show it either.
    stmts = [
        'DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % name,
        'CREATE DATABASE "%s" TEMPLATE "%s"' % (name, TEMPLATE_DB),
        'ALTER DATABASE "%s" SET compute_query_id = off' % name,
    ]
    cmd = [PSQL, "-X", "-Atq", "-v", "ON_ERROR_STOP=1"]
    for st in stmts:
        cmd += ["-c", st]
    r = subprocess.run(cmd, env=psql_env(PG_PORT, "postgres"), capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        raise RuntimeError("psql failed (%s): %s\n%s" % (r.returncode, "; ".join(stmts), r.stderr))
    if replicas:
        wait_replicas_caught_up()


def roles():
    return set(admin_sql("SELECT rolname FROM pg_roles").split())


def drop_new_roles(before):
    for r in sorted(roles() - before):
        admin_sql('DROP OWNED BY "%s" CASCADE' % r, dbname="postgres", check=False)
        admin_sql('DROP ROLE IF EXISTS "%s"' % r, check=False)


def rollback_prepared():
    for gid in admin_sql("SELECT gid FROM pg_prepared_xacts").split("\n"):
        if gid:
            admin_sql("ROLLBACK PREPARED '%s'" % gid.replace("'", "''"), check=False)


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


class Proxy:
    def __init__(self, binary, workdir, overrides):
        self.workdir = workdir
        os.makedirs(workdir, exist_ok=True)
        self.auth_path = os.path.join(workdir, "userlist.txt")
        with open(self.auth_path, "w") as f:
            for u, p in AUTH_USERS.items():
                f.write('"%s" "%s"\n' % (u, p))
        # a port taken between the check and the proxy's bind: new ports, again
        for attempt in range(3):
            try:
                self._start(binary, workdir, overrides)
                return
            except RuntimeError:
                if attempt == 2:
                    raise

    def _start(self, binary, workdir, overrides):
        self.port, self.admin_port = free_port(), free_port()
        cfg = dict(BASE_PROXY_ENV)
        cfg.update(
            PROXY_LISTEN="127.0.0.1:%d" % self.port,
            ADMIN_LISTEN="127.0.0.1:%d" % self.admin_port,
            POSTGRES_SERVER=PG_HOST,
            POSTGRES_PORT=str(PG_PORT),
            AUTH_FILE=self.auth_path,
        )
        for k, v in overrides.items():
            cfg[k] = v() if callable(v) else v
        self.cfg = cfg
        env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "LC_ALL", "TZ") if k in os.environ}
        env.update(cfg)
        self.stderr_path = os.path.join(workdir, "proxy.log")
        self.errf = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(
            [binary],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self.errf,
            stderr=self.errf,
            cwd=workdir,
        )
        deadline = time.monotonic() + 15
        while True:
            if self.proc.poll() is not None:
                self.errf.close()
                raise RuntimeError("proxy exited with %s at start; see %s" % (self.proc.returncode, self.stderr_path))
            try:
                # both: the admin port answers once the start got past it
                socket.create_connection(("127.0.0.1", self.admin_port), timeout=0.5).close()
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("proxy did not listen on :%d" % self.port)
                time.sleep(0.05)
        if "POSTGRES_READ_REPLICAS" in cfg:
            time.sleep(2.5)  # let the health checker see the replicas once

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.errf.close()


def normalise(text):
    for rx, rep in NORMALISE:
        text = rx.sub(rep, text)
    return text


# --noise: a second client in the file's database, through the same proxy, runs short
# statements back to back while the file runs, so the pool holds more than one server
# connection and the file's client lands on different ones between its transactions (with
# one client the pool never grows past one connection and nothing has to move)
NOISE_SQL = "SELECT pg_sleep(0.003);\n" * 30000


def start_noise(port, dbname, password, workdir):
    path = os.path.join(workdir, "noise.sql")
    if not os.path.exists(path):
        with open(path, "w") as f:
            f.write(NOISE_SQL)
    env = psql_env(port, dbname, password)
    env["PGAPPNAME"] = "noise"
    p = subprocess.Popen(
        [PSQL, "-X", "-q", "-o", os.devnull, "-f", path],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(0.05)
    return p


def run_file(path, port, dbname, password, timeout, noise_dir=None):
    t0 = time.monotonic()
    noise = start_noise(port, dbname, password, noise_dir) if noise_dir else None
    try:
        r = subprocess.run(
            [PSQL, "-X", "-a", "-q", "-v", "ON_ERROR_STOP=0", "-f", path],
            env=psql_env(port, dbname, password),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=timeout,
        )
        out = r.stdout.decode("utf-8", "replace")
        rc = r.returncode
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode("utf-8", "replace") + "\n*** TIMEOUT after %ss ***\n" % timeout
        rc = -1
    finally:
        if noise is not None:
            noise.kill()
            noise.wait()
    return out, rc, time.monotonic() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="*", help="test names (default: every sql/*.sql)")
    ap.add_argument("--variants", default="cache,replicas", help="comma-separated, see above")
    ap.add_argument("--out", default=os.path.join(ROOT, "build-test-results", "regress"))
    ap.add_argument("--proxy-bin", default=os.environ.get("PX_PROXY_BIN") or os.path.join(ROOT, "build", "fastnext-proxy"))
    ap.add_argument("--timeout", type=int, default=300, help="seconds per file and run")
    ap.add_argument("--proxy-env", action="append", default=[], help="KEY=VALUE for every proxy (repeatable)")
    ap.add_argument("--extra", action="store_true", help="with no names: sql-extra/*.sql too")
    ap.add_argument("--noise", action="store_true",
                    help="a second client in the same database while a file runs through the proxy")
    args = ap.parse_args()

    if not PG_PORT:
        log("PX_PG_PORT is not set: source $PX_STACK_DIR/env.sh of a scripts/stack.sh stack")
        return 2
    variants = [v for v in args.variants.split(",") if v]
    for v in variants:
        if v not in VARIANTS:
            log("unknown variant %r (known: %s)" % (v, ", ".join(VARIANTS)))
            return 2
        if "replicas" in v and len(REPLICA_PORTS) < 1:
            log("variant %s needs PX_PG_REPLICA1_PORT/PX_PG_REPLICA2_PORT" % v)
            return 2
    extra = dict(kv.split("=", 1) for kv in args.proxy_env)

    def listed(d):
        return [f[:-4] for f in os.listdir(d) if f.endswith(".sql")] if os.path.isdir(d) else []

    names = args.names or sorted(listed(SQL_DIR) + (listed(EXTRA_DIR) if args.extra else []))
    for n in names:
        if not os.path.exists(sql_path(n)):
            log("no such test: %s" % n)
            return 2
    os.makedirs(args.out, exist_ok=True)
    global BUILDDIR
    BUILDDIR = os.path.abspath(os.path.join(args.out, "builddir"))
    results_dir = os.path.join(BUILDDIR, "results")
    os.makedirs(results_dir, exist_ok=True)
    os.chmod(results_dir, 0o777)  # the server (user postgres) writes there too

    log("building template database %s from setup.sql" % TEMPLATE_DB)
    build_template()
    base_roles = roles()

    results = {}  # (variant, name) -> status
    outputs = {}

    def run_variant(variant, port, password, proxy=None):
        vdir = os.path.join(args.out, variant)
        os.makedirs(vdir, exist_ok=True)
        # the next file's database is cloned (and the replicas wait for) while this file
        # runs: CREATE DATABASE costs about as much as an average file
        pending = {}

        def prepare(i):
            if i < len(names):
                errors = []

                def clone():
                    try:
                        fresh_db("regress_" + names[i], "replicas" in variant)
                    except Exception as e:  # raised again in the main thread
                        errors.append(e)

                t = threading.Thread(target=clone)
                t.start()
                pending[i] = (t, errors)

        prepare(0)
        for i, n in enumerate(names):
            db = "regress_" + n
            t, errors = pending.pop(i)
            t.join()
            if errors:
                raise errors[0]
            prepare(i + 1)
            out, rc, took = run_file(
                sql_path(n), port, db, password, args.timeout,
                args.out if (args.noise and proxy is not None) else None,
            )
            rollback_prepared()
            drop_db(db)
            drop_new_roles(base_roles)
            with open(os.path.join(vdir, n + ".out"), "w") as f:
                f.write(out)
            outputs[(variant, n)] = normalise(out)
            status = "ok"
            if variant != "direct":
                d = list(
                    difflib.unified_diff(
                        outputs[("direct", n)].splitlines(True),
                        outputs[(variant, n)].splitlines(True),
                        "direct/%s.out" % n,
                        "%s/%s.out" % (variant, n),
                    )
                )
                diff_path = os.path.join(vdir, n + ".diff")
                if d:
                    status = "DIFF(%d)" % sum(
                        1 for l in d if l[:1] in "+-" and not l.startswith(("+++", "---"))
                    )
                    with open(diff_path, "w") as f:
                        f.writelines(d)
                elif os.path.exists(diff_path):
                    os.unlink(diff_path)
                if proxy is not None and not proxy.alive():
                    status += " PROXY-DIED"
            results[(variant, n)] = status
            log("  %-16s %-24s %-10s %.1fs" % (variant, n, status, took))
            if proxy is not None and not proxy.alive():
                log("proxy died (exit %s); see %s" % (proxy.proc.returncode, proxy.stderr_path))
                for t, _ in pending.values():
                    t.join()
                return False
        return True

    log("variant direct")
    run_variant("direct", PG_PORT, None)
    for v in variants:
        log("variant %s" % v)
        overrides = dict(VARIANTS[v])
        overrides.update(extra)
        proxy = Proxy(args.proxy_bin, os.path.join(args.out, v, "proxy"), overrides)
        try:
            run_variant(v, proxy.port, SUPERUSER_PASSWORD, proxy)
        finally:
            proxy.stop()

    drop_db(TEMPLATE_DB)

    # summary
    log("")
    log("%-24s %s" % ("test", " ".join("%-14s" % v for v in variants)))
    for n in names:
        log("%-24s %s" % (n, " ".join("%-14s" % results.get((v, n), "-") for v in variants)))
    log("")
    failed = False
    for v in variants:
        same = sum(1 for n in names if results.get((v, n)) == "ok")
        log("%s: %d files, %d identical, %d differing" % (v, len(names), same, len(names) - same))
        failed |= same != len(names)
    log("outputs and diffs in %s" % args.out)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
