#!/usr/bin/python3
"""Run PostgreSQL's regression SQL the way pg_regress's parallel_schedule does: a group of
files at once, as concurrent clients of ONE database, directly and through fastnext-proxy.

For every `test:` line of tests/regress/schedule (or --schedule FILE; --groups picks some):

  1. a fresh database `regress_gNN` is cloned from the template (run.py's setup.sql);
  2. the group's files run concurrently in it, each with run.py's psql invocation;
  3. that is done --direct-runs times directly (default 2) and once per variant through
     a fresh proxy (run.py's variants; the pool is smaller than most groups:
     DB_POOL_SIZE=5 DB_MAX_OVERFLOW=5 unless --proxy-env says otherwise, so clients share
     server connections, and DB_POOL_TIMEOUT=120 so a client waits for one rather than
     fail while pinned clients hold the rest);
     With --app-db, every group gets its own proxy whose POSTGRES_DB is the group's
     database: the result cache only serves the application's database (POSTGRES_DB),
     so without it the variants with the cache on never use it here;
  4. a file whose direct outputs differ between the direct runs (after run.py's
     normalisation) is `unstable`: timing-dependent even without the proxy. Every other
     file's proxied output is diffed with its direct one.

Status per file and variant: ok, DIFF(n) (n changed lines; a proxy bug or a legitimate
consequence of pooling), unstable (the proxied output equals one of the direct ones) or
unstable-DIFF(n) (it equals none; diffed against the first direct run). Outputs, diffs
and proxy logs under --out (default build-test-results/regress-schedule/).

Exit status: 0 when no stable file differs, 1 otherwise, 2 on a set-up failure.
"""

import argparse
import difflib
import os
import sys
import re
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import run

SCHEDULE = os.path.join(run.HERE, "schedule")

SCHEDULE_PROXY_ENV = {"DB_POOL_SIZE": "5", "DB_MAX_OVERFLOW": "5", "DB_POOL_TIMEOUT": "120"}

log = run.log


def read_schedule(path):
    groups = []
    with open(path) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line.startswith("test:"):
                groups.append(line[5:].split())
            elif line:
                raise ValueError("%s: not a `test:` line: %r" % (path, line))
    return groups


def pick(spec, n):
    """--groups 1,4-6 (1-based) -> sorted 0-based indexes."""
    if not spec:
        return list(range(n))
    out = set()
    for part in spec.split(","):
        a, _, b = part.partition("-")
        out.update(range(int(a) - 1, int(b or a)))
    return sorted(i for i in out if 0 <= i < n)


def cache_counts(proxy):
    """(hits, stores) of the proxy's result cache, from its metrics."""
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % proxy.admin_port, timeout=5) as r:
            text = r.read().decode()
    except OSError:
        return None
    def total(name):
        return sum(float(v) for v in re.findall(r"^%s\{[^}]*\} (\S+)$" % name, text, re.M))
    return int(total("fastnext_cache_hits_total")), int(total("fastnext_cache_stores_total"))


def wait_cache_ready(proxy, timeout=15):
    """Until the proxy follows the primary's logical decoding stream: before that its
    result cache stores nothing."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(proxy.stderr_path, errors="replace") as f:
            if "following the primary's logical decoding stream" in f.read():
                return
        time.sleep(0.05)
    log("warning: the proxy's result cache did not start within %ds" % timeout)


def drop_db(db):
    """run.drop_db, once the database's logical replication slots are gone: a proxy whose
    POSTGRES_DB it was follows its decoding stream through a temporary slot, which the
    server drops a moment after the proxy exited (DROP DATABASE refuses it while active)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and run.admin_sql(
            "SELECT count(*) FROM pg_replication_slots WHERE database = '%s'" % db).strip() != "0":
        time.sleep(0.1)
    run.drop_db(db)


def diff_lines(a, b, fa, fb):
    d = list(difflib.unified_diff(a.splitlines(True), b.splitlines(True), fa, fb))
    n = sum(1 for l in d if l[:1] in "+-" and not l.startswith(("+++", "---")))
    return d, n


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--schedule", default=SCHEDULE)
    ap.add_argument("--groups", default="", help="1-based group numbers, e.g. 9 or 2,5-7 (default all)")
    ap.add_argument("--variants", default="cache,replicas", help="comma-separated, see run.py")
    ap.add_argument("--direct-runs", type=int, default=2, help="direct runs to tell unstable files")
    ap.add_argument("--out", default=os.path.join(run.ROOT, "build-test-results", "regress-schedule"))
    ap.add_argument("--proxy-bin", default=os.environ.get("PX_PROXY_BIN") or os.path.join(run.ROOT, "build", "fastnext-proxy"))
    ap.add_argument("--timeout", type=int, default=600, help="seconds per file and run")
    ap.add_argument("--proxy-env", action="append", default=[], help="KEY=VALUE for every proxy (repeatable)")
    ap.add_argument("--app-db", action="store_true",
                    help="a proxy per group with POSTGRES_DB = the group's database (result cache active)")
    args = ap.parse_args()

    if not run.PG_PORT:
        log("PX_PG_PORT is not set: source $PX_STACK_DIR/env.sh of a scripts/stack.sh stack")
        return 2
    variants = [v for v in args.variants.split(",") if v]
    for v in variants:
        if v not in run.VARIANTS:
            log("unknown variant %r (known: %s)" % (v, ", ".join(run.VARIANTS)))
            return 2
        if "replicas" in v and not run.REPLICA_PORTS:
            log("variant %s needs PX_PG_REPLICA1_PORT/PX_PG_REPLICA2_PORT" % v)
            return 2
    try:
        schedule = read_schedule(args.schedule)
    except (OSError, ValueError) as e:
        log(str(e))
        return 2
    groups = pick(args.groups, len(schedule))
    for gi in groups:
        for n in schedule[gi]:
            if not os.path.exists(run.sql_path(n)):
                log("group %d: no such test: %s" % (gi + 1, n))
                return 2
    proxy_env = dict(SCHEDULE_PROXY_ENV)
    proxy_env.update(kv.split("=", 1) for kv in args.proxy_env)

    os.makedirs(args.out, exist_ok=True)
    run.BUILDDIR = os.path.abspath(os.path.join(args.out, "builddir"))
    results_dir = os.path.join(run.BUILDDIR, "results")
    os.makedirs(results_dir, exist_ok=True)
    os.chmod(results_dir, 0o777)  # the server (user postgres) writes there too

    log("building template database %s from setup.sql" % run.TEMPLATE_DB)
    run.build_template()
    base_roles = run.roles()

    outputs = {}  # (run, name) -> normalised output
    took = {}  # run -> seconds

    def run_all(label, port, password, replicas, proxy=None, start_proxy=None):
        """Every picked group, in order, each in its own fresh database; returns False
        when the proxy died. With start_proxy(db), a proxy of its own per group."""
        vdir = os.path.join(args.out, label)
        os.makedirs(vdir, exist_ok=True)
        t_start = time.monotonic()
        pending = {}

        def prepare(k):  # the next group's clone is made while this group runs
            if k < len(groups):
                errors = []

                def clone():
                    try:
                        run.fresh_db("regress_g%02d" % (groups[k] + 1), replicas)
                    except Exception as e:  # raised again in the main thread
                        errors.append(e)

                t = threading.Thread(target=clone)
                t.start()
                pending[k] = (t, errors)

        prepare(0)
        alive = True
        for k, gi in enumerate(groups):
            db = "regress_g%02d" % (gi + 1)
            t, errors = pending.pop(k)
            t.join()
            if errors:
                raise errors[0]
            prepare(k + 1)
            names = schedule[gi]
            if start_proxy is not None:
                proxy = start_proxy(db)
                port = proxy.port
            t0 = time.monotonic()
            died = False
            counts = None
            try:
                with ThreadPoolExecutor(max_workers=len(names)) as ex:
                    futs = {n: ex.submit(run.run_file, run.sql_path(n), port, db, password, args.timeout) for n in names}
                    res = {n: f.result() for n, f in futs.items()}
            finally:
                died = proxy is not None and not proxy.alive()
                if start_proxy is not None:
                    counts = cache_counts(proxy)
                    proxy.stop()
            run.rollback_prepared()
            drop_db(db)
            run.drop_new_roles(base_roles)
            for n in names:
                out, rc, _ = res[n]
                with open(os.path.join(vdir, n + ".out"), "w") as f:
                    f.write(out)
                outputs[(label, n)] = run.normalise(out)
            slow = max(names, key=lambda n: res[n][2])
            log("  %-8s group %2d (%2d files) %6.1fs  slowest %s %.1fs%s" % (
                label, gi + 1, len(names), time.monotonic() - t0, slow, res[slow][2],
                "  cache hits %d stores %d" % counts if counts else ""))
            if died:
                log("proxy died (exit %s); see %s" % (proxy.proc.returncode, proxy.stderr_path))
                alive = False
                break
        for t, _ in pending.values():
            t.join()
        took[label] = time.monotonic() - t_start
        return alive

    direct_labels = ["direct"] + ["direct%d" % i for i in range(2, args.direct_runs + 1)]
    for label in direct_labels:
        log("run %s" % label)
        run_all(label, run.PG_PORT, None, False)
    for v in variants:
        log("variant %s" % v)
        overrides = dict(run.VARIANTS[v])
        overrides.update(proxy_env)
        if args.app_db:
            def start_proxy(db, v=v, overrides=overrides):
                proxy = run.Proxy(args.proxy_bin, os.path.join(args.out, v, "proxy-" + db),
                                  dict(overrides, POSTGRES_DB=db))
                if overrides.get("CACHE_ENABLED", "true") != "false":
                    wait_cache_ready(proxy)
                return proxy

            run_all(v, None, run.SUPERUSER_PASSWORD, "replicas" in v, start_proxy=start_proxy)
            continue
        proxy = run.Proxy(args.proxy_bin, os.path.join(args.out, v, "proxy"), overrides)
        try:
            run_all(v, proxy.port, run.SUPERUSER_PASSWORD, "replicas" in v, proxy)
        finally:
            proxy.stop()
    run.drop_db(run.TEMPLATE_DB)

    # judge
    unstable = []
    results = {}
    for gi in groups:
        for n in schedule[gi]:
            directs = [outputs.get((d, n)) for d in direct_labels]
            is_unstable = any(o != directs[0] for o in directs[1:])
            if is_unstable:
                unstable.append(n)
                d, cnt = diff_lines(directs[0], directs[1], "direct/%s.out" % n, "direct2/%s.out" % n)
                with open(os.path.join(args.out, "direct2", n + ".diff"), "w") as f:
                    f.writelines(d)
            for v in variants:
                diff_path = os.path.join(args.out, v, n + ".diff")
                if os.path.exists(diff_path):
                    os.unlink(diff_path)
                o = outputs.get((v, n))
                if o is None:
                    results[(v, n)] = "-"
                    continue
                d, cnt = diff_lines(directs[0], o, "direct/%s.out" % n, "%s/%s.out" % (v, n))
                if is_unstable and o in directs:
                    status = "unstable"
                elif d:
                    status = ("unstable-DIFF(%d)" if is_unstable else "DIFF(%d)") % cnt
                    with open(diff_path, "w") as f:
                        f.writelines(d)
                else:
                    status = "ok"
                results[(v, n)] = status

    log("")
    log("%-3s %-24s %s" % ("grp", "test", " ".join("%-18s" % v for v in variants)))
    for gi in groups:
        for n in schedule[gi]:
            if any(results[(v, n)] != "ok" for v in variants):
                log("%-3d %-24s %s" % (gi + 1, n, " ".join("%-18s" % results[(v, n)] for v in variants)))
    log("")
    nfiles = sum(len(schedule[gi]) for gi in groups)
    log("unstable directly (%d): %s" % (len(unstable), " ".join(unstable) or "none"))
    for label in direct_labels:
        log("%s: %.0fs" % (label, took.get(label, 0)))
    failed = False
    for v in variants:
        bad = sum(1 for gi in groups for n in schedule[gi] if results[(v, n)].startswith(("DIFF", "-")))
        ok = sum(1 for gi in groups for n in schedule[gi] if results[(v, n)] == "ok")
        log("%s: %d files, %d identical, %d differing, %d unstable; %.0fs" % (
            v, nfiles, ok, bad, nfiles - ok - bad, took.get(v, 0)))
        failed |= bad > 0
    log("outputs and diffs in %s" % args.out)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
