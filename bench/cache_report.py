#!/usr/bin/python3
"""Helpers of bench/cache.sh (the result-cache benchmark).

    cache_report.py fetch URL
        GET URL (the admin port's /api/v1/cache/stats) and print the body; "{}" and exit
        status 1 when it cannot be read.
    cache_report.py record --csv FILE --workload W --mode M --clients N --run R
                           --target T --rc RC --out PGBENCH_OUTPUT --lat-prefix PREFIX
                           [--stats-before F --stats-after F] [--pg-before S --pg-after S]
                           [--pg-source SRC] [--cpu-ticks N --clk-tck HZ]
        Parse one pgbench run (its output, its per-transaction logs PREFIX.*, the cache
        statistics and PostgreSQL's statement counters before and after it) and append one
        row to the CSV; prints a one-line summary.
    cache_report.py report PREFIX
        From PREFIX.csv and PREFIX/meta.txt write PREFIX.md (tables and the target checks,
        also printed) and PREFIX.json (meta, every run, the medians per cell, the checks).

Latency percentiles come from pgbench's per-transaction logs (-l, field 3 = elapsed µs),
nearest rank. Every figure of a cell is the median over its runs that did not fail.
"""

import argparse
import csv
import glob
import json
import math
import os
import re
import statistics
import sys
import urllib.request

FIELDS = [
    "workload", "mode", "clients", "run", "target", "status", "tps", "latency_avg_ms",
    "p50_ms", "p95_ms", "p99_ms", "latency_samples", "transactions", "reads", "writes",
    "failed", "cache_hits", "cache_misses", "hit_ratio", "cache_stores", "cache_invalidated",
    "pg_reads", "pg_writes", "pg_statements", "pg_per_stmt", "pg_source", "cpu_s",
    "cpu_us_per_stmt", "error",
]
TARGETS = ("direct", "nocache", "cache")
TARGET_NAMES = {"direct": "direct PostgreSQL", "nocache": "proxy, cache off",
                "cache": "proxy, cache on"}
WORKLOAD_NAMES = {"select": "select-only (read.sql)",
                  "mixed": "90% reads / 10% writes (read.sql@9 + write.sql@1)"}
HIT_RATIO_TARGET = 0.85
SPEEDUP_TARGET = 5.0


def num(s):
    try:
        x = float(s)
        return x if math.isfinite(x) else None
    except (TypeError, ValueError):
        return None


# --- fetch ----------------------------------------------------------------------------

def cmd_fetch(args):
    try:
        with urllib.request.urlopen(args.url, timeout=5) as r:
            body = r.read().decode()
        json.loads(body)
    except (OSError, ValueError) as e:
        print(f"fetch {args.url}: {e}", file=sys.stderr)
        print("{}")
        return 1
    print(body)
    return 0


# --- record ---------------------------------------------------------------------------

def percentile(sorted_vals, p):
    """Nearest rank."""
    if not sorted_vals:
        return None
    k = max(0, math.ceil(p / 100.0 * len(sorted_vals)) - 1)
    return sorted_vals[k]


def read_latencies(prefix):
    """Elapsed µs of every logged transaction in PREFIX.* (one file per pgbench thread)."""
    vals = []
    for path in glob.glob(glob.escape(prefix) + ".*"):
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 3 and parts[2].isdigit():
                    vals.append(int(parts[2]))
    vals.sort()
    return vals


def parse_pgbench(text):
    def grab(pattern, conv=float):
        m = re.search(pattern, text, re.M)
        return conv(m.group(1)) if m else None
    out = {
        "tps": grab(r"^tps = ([0-9.]+) \(without initial connection time\)"),
        "latency_avg_ms": grab(r"^latency average = ([0-9.]+) ms"),
        "transactions": grab(r"^number of transactions actually processed: (\d+)", int),
        "failed": grab(r"^number of failed transactions: (\d+)", int),
        "reads": None, "writes": None,
    }
    # With several -f scripts pgbench prints a section per script.
    for m in re.finditer(r"^SQL script \d+: (\S+)\n(?: - weight: .*\n)? - (\d+) transactions",
                         text, re.M):
        key = "writes" if os.path.basename(m.group(1)).startswith("write") else "reads"
        out[key] = (out[key] or 0) + int(m.group(2))
    if out["reads"] is None and out["writes"] is None and out["transactions"] is not None:
        out["reads"], out["writes"] = out["transactions"], 0
    return out


def load_json(path):
    if not path or not os.path.exists(path):
        return None
    try:
        with open(path) as f:
            d = json.load(f)
        return d if d else None
    except (OSError, ValueError):
        return None


def cache_counts(stats):
    l1 = (stats.get("levels") or {}).get("l1") or {}
    hits = stats.get("total_hits", l1.get("hits"))
    misses = stats.get("total_misses", l1.get("misses"))
    return hits, misses


def cmd_record(args):
    text = open(args.out, errors="replace").read() if os.path.exists(args.out) else ""
    pg = parse_pgbench(text)
    lat = read_latencies(args.lat_prefix)
    row = {k: "" for k in FIELDS}
    row.update(workload=args.workload, mode=args.mode, clients=args.clients, run=args.run,
               target=args.target)

    status = "ok"
    if (args.rc != 0 or pg["tps"] is None or (pg["failed"] or 0) != 0
            or re.search(r"aborted|ERROR:|FATAL:", text)):
        status = "fails"
    row["status"] = status
    for k in ("tps", "latency_avg_ms", "transactions", "reads", "writes", "failed"):
        if pg[k] is not None:
            row[k] = pg[k]
    if lat:
        row["latency_samples"] = len(lat)
        for p in (50, 95, 99):
            row[f"p{p}_ms"] = f"{percentile(lat, p) / 1000.0:.3f}"

    s0, s1 = load_json(args.stats_before), load_json(args.stats_after)
    if s0 is not None and s1 is not None:
        h0, m0 = cache_counts(s0)
        h1, m1 = cache_counts(s1)
        if None not in (h0, m0, h1, m1):
            hits, misses = h1 - h0, m1 - m0
            row["cache_hits"], row["cache_misses"] = hits, misses
            if hits + misses > 0:
                row["hit_ratio"] = f"{hits / (hits + misses):.4f}"
        l1a = (s1.get("levels") or {}).get("l1") or {}
        l1b = (s0.get("levels") or {}).get("l1") or {}
        for field, src in (("cache_stores", "stores"), ("cache_invalidated", "invalidated")):
            if isinstance(l1a.get(src), int) and isinstance(l1b.get(src), int):
                row[field] = l1a[src] - l1b[src]

    if args.pg_before and args.pg_after:
        b = [int(x) for x in args.pg_before.split()]
        a = [int(x) for x in args.pg_after.split()]
        if len(a) == len(b) == 2:
            row["pg_reads"], row["pg_writes"] = a[0] - b[0], a[1] - b[1]
            row["pg_statements"] = row["pg_reads"] + row["pg_writes"]
        elif len(a) == len(b) == 1:
            row["pg_statements"] = a[0] - b[0]
        row["pg_source"] = args.pg_source
        if row["pg_statements"] != "" and pg["transactions"]:
            row["pg_per_stmt"] = f"{row['pg_statements'] / pg['transactions']:.4f}"

    if args.cpu_ticks is not None and args.clk_tck:
        cpu_s = args.cpu_ticks / args.clk_tck
        row["cpu_s"] = f"{cpu_s:.2f}"
        if pg["transactions"]:
            row["cpu_us_per_stmt"] = f"{cpu_s * 1e6 / pg['transactions']:.1f}"

    if status != "ok":
        err = ""
        for line in text.splitlines():
            if re.search(r"ERROR|FATAL|aborted|error", line):
                err = line
                break
        if not err and text.strip():
            err = text.strip().splitlines()[-1]
        if args.rc in (124, 137):
            err = "timed out; " + err
        row["error"] = re.sub(r'[,"\r\n]', "", err)[:200] or f"pgbench exit {args.rc}"

    new = not os.path.exists(args.csv) or os.path.getsize(args.csv) == 0
    with open(args.csv, "a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS)
        if new:
            w.writeheader()
        w.writerow(row)

    desc = f"{args.workload} {args.mode} c={args.clients} run {args.run} {args.target}:"
    if status == "ok":
        parts = [f"tps {float(row['tps']):.0f}"]
        if row["p50_ms"]:
            parts.append(f"p50/p95/p99 {row['p50_ms']}/{row['p95_ms']}/{row['p99_ms']} ms")
        if row["hit_ratio"]:
            parts.append(f"hit ratio {float(row['hit_ratio']) * 100:.1f}%")
        if row["pg_per_stmt"]:
            parts.append(f"PG stmts/stmt {float(row['pg_per_stmt']):.3f}")
        print(desc, ", ".join(parts))
    else:
        print(desc, f"FAILS (rc {args.rc}): {row['error']}")
    return 0 if status == "ok" else 1


# --- report ---------------------------------------------------------------------------

def fmt_int(x):
    return f"{x:,.0f}" if x is not None else "–"


def fmt(x, nd=2):
    return f"{x:.{nd}f}" if x is not None else "–"


def fmt_pct(x):
    return f"{x * 100:.1f}%" if x is not None else "–"


def read_meta(path):
    lines, kv = [], {}
    if os.path.exists(path):
        for line in open(path):
            line = line.rstrip("\n")
            lines.append(line)
            if ": " in line:
                k, v = line.split(": ", 1)
                kv[k.strip()] = v
    return lines, kv


def cmd_report(args):
    prefix = args.prefix
    rows = list(csv.DictReader(open(prefix + ".csv")))
    meta_lines, meta = read_meta(os.path.join(prefix, "meta.txt"))

    cells, order = {}, []
    for r in rows:
        key = (r["workload"], r["mode"], int(r["clients"]))
        if key not in cells:
            cells[key] = {}
            order.append(key)
        cells[key].setdefault(r["target"], []).append(r)

    def med(rs, field):
        vals = [num(r[field]) for r in rs if r["status"] == "ok" and num(r[field]) is not None]
        return statistics.median(vals) if vals else None

    summary = []  # one dict per (cell, target)
    for key in order:
        workload, mode, clients = key
        direct_tps = med(cells[key].get("direct", []), "tps")
        nocache_tps = med(cells[key].get("nocache", []), "tps")
        for t in TARGETS:
            rs = cells[key].get(t)
            if not rs:
                continue
            s = {"workload": workload, "mode": mode, "clients": clients, "target": t,
                 "runs": len(rs), "failed_runs": sum(r["status"] != "ok" for r in rs)}
            for f in ("tps", "p50_ms", "p95_ms", "p99_ms", "latency_avg_ms", "transactions",
                      "reads", "writes", "cache_hits", "cache_misses", "hit_ratio",
                      "pg_statements", "pg_per_stmt", "cpu_us_per_stmt"):
                s[f] = med(rs, f)
            ok = [r for r in rs if r["status"] == "ok"]
            # Statements PostgreSQL did not have to run: client statements minus those it ran.
            saved = [num(r["transactions"]) - num(r["pg_statements"]) for r in ok
                     if num(r["transactions"]) is not None and num(r["pg_statements"]) is not None]
            s["pg_saved"] = statistics.median(saved) if saved else None
            s["x_direct"] = s["tps"] / direct_tps if s["tps"] and direct_tps else None
            s["x_nocache"] = s["tps"] / nocache_tps if s["tps"] and nocache_tps else None
            s["errors"] = sorted({r["error"] for r in rs if r["status"] != "ok" and r["error"]})
            summary.append(s)

    # --- the two targets of the issue --------------------------------------------------
    checks = []
    hr_cells = [s for s in summary if s["target"] == "cache" and s["workload"] == "mixed"]
    hr_basis = "mixed"
    if not hr_cells:  # only select-only was run: judge it there, and say so
        hr_cells = [s for s in summary if s["target"] == "cache"]
        hr_basis = "select"
    if hr_cells:
        per = [(f"{s['workload']} {s['mode']}/{s['clients']}", s["hit_ratio"]) for s in hr_cells]
        met = [v is not None and v >= HIT_RATIO_TARGET for _, v in per]
        checks.append({
            "name": f"hit ratio >= {HIT_RATIO_TARGET:.0%} on the "
                    f"{'90/10 read-heavy' if hr_basis == 'mixed' else 'select-only'} workload",
            "met": all(met), "cells_met": sum(met), "cells": len(met),
            "values": {k: v for k, v in per},
            "show": lambda v: fmt_pct(v),
        })
    sp_cells = [s for s in summary if s["target"] == "cache" and s["workload"] == "select"]
    if sp_cells:
        per = [(f"select {s['mode']}/{s['clients']}", s["x_direct"]) for s in sp_cells]
        met = [v is not None and v >= SPEEDUP_TARGET for _, v in per]
        checks.append({
            "name": f"select-only cached TPS >= {SPEEDUP_TARGET:.0f}x direct PostgreSQL",
            "met": all(met), "cells_met": sum(met), "cells": len(met),
            "values": {k: v for k, v in per},
            "show": lambda v: f"{v:.2f}×" if v is not None else "–",
        })

    # --- markdown ------------------------------------------------------------------------
    L = ["# Result-cache benchmark (bench/cache.sh)", ""]
    if meta_lines:
        L += ["```"] + meta_lines + ["```", ""]
    for workload in dict.fromkeys(k[0] for k in order):
        L += [f"### {WORKLOAD_NAMES.get(workload, workload)}: medians of "
              f"{meta.get('runs', '?')} runs of {meta.get('seconds', '?')} s", ""]
        hdr = ["mode", "clients", "target", "TPS", "× direct", "× cache off", "p50 ms", "p95 ms",
               "p99 ms", "hit ratio", "queries saved (hits)", "saved at PostgreSQL",
               "PG stmts / client stmt", "CPU µs/stmt"]
        L += ["| " + " | ".join(hdr) + " |", "|" + "---|" * len(hdr)]
        for s in summary:
            if s["workload"] != workload:
                continue
            tps = fmt_int(s["tps"]) if s["tps"] is not None else "fails"
            if s["failed_runs"] and s["tps"] is not None:
                tps += f" ({s['failed_runs']} failed)"
            L.append("| " + " | ".join([
                s["mode"], str(s["clients"]), TARGET_NAMES.get(s["target"], s["target"]), tps,
                f"{s['x_direct']:.2f}×" if s["x_direct"] is not None else "–",
                f"{s['x_nocache']:.2f}×" if s["x_nocache"] is not None else "–",
                fmt(s["p50_ms"], 3), fmt(s["p95_ms"], 3), fmt(s["p99_ms"], 3),
                fmt_pct(s["hit_ratio"]) if s["target"] == "cache" else "–",
                fmt_int(s["cache_hits"]) if s["target"] == "cache" else "–",
                fmt_int(s["pg_saved"]),
                fmt(s["pg_per_stmt"], 3),
                fmt(s["cpu_us_per_stmt"], 1) if s["target"] != "direct" else "–",
            ]) + " |")
        L.append("")

    L += ["### Targets", ""]
    if not checks:
        L.append("- both targets: **NOT CHECKED** (no run through the proxy with the cache on; "
                 "see the log for why the proxy was left out)")
    for c in checks:
        verdict = "**met**" if c["met"] else "**NOT MET**"
        vals = ", ".join(f"{k}: {c['show'](v)}" for k, v in c["values"].items())
        L.append(f"- {c['name']}: {verdict} ({c['cells_met']} of {c['cells']} cells; {vals})")
    L += ["",
          "Queries saved (hits) = statements answered from the cache (the admin stats delta "
          "over the run); saved at PostgreSQL = client statements − statements PostgreSQL "
          f"executed ({meta.get('pg counter', 'pg_stat_statements calls')} delta); "
          "PG stmts / client stmt = statements PostgreSQL executed per statement pgbench sent "
          "(1.0 without a cache). Hit ratio = hits / (hits + misses) of cacheable lookups "
          "(the reads) over the run. Latency percentiles: pgbench per-transaction logs "
          f"(sampling rate {meta.get('latency log sampling', '?')}), nearest rank, median over "
          "runs. CPU µs/stmt: the proxy's utime+stime over the run / transactions."]
    notes = []
    for s in summary:
        for e in s["errors"]:
            notes.append(f"- {s['target']} {s['workload']} {s['mode']}/{s['clients']}: {e}")
    if notes:
        L += ["", "Failures:"] + notes
    md = "\n".join(L) + "\n"
    with open(prefix + ".md", "w") as f:
        f.write(md)

    out = {
        "meta": meta, "meta_lines": meta_lines,
        "checks": [{k: v for k, v in c.items() if k != "show"} for c in checks],
        "cells": [{k: v for k, v in s.items()} for s in summary],
        "runs": rows,
    }
    with open(prefix + ".json", "w") as f:
        json.dump(out, f, indent=1)
    print(md)
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("fetch")
    p.add_argument("url")
    p = sub.add_parser("record")
    for a in ("--csv", "--workload", "--mode", "--clients", "--run", "--target", "--out",
              "--lat-prefix"):
        p.add_argument(a, required=True)
    p.add_argument("--rc", type=int, required=True)
    for a in ("--stats-before", "--stats-after", "--pg-before", "--pg-after", "--pg-source"):
        p.add_argument(a, default="")
    p.add_argument("--cpu-ticks", type=int)
    p.add_argument("--clk-tck", type=int)
    p = sub.add_parser("report")
    p.add_argument("prefix")
    args = ap.parse_args()
    return {"fetch": cmd_fetch, "record": cmd_record, "report": cmd_report}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
