#!/usr/bin/python3
"""Summarise a bench/run.sh result directory: medians per cell as a markdown table
(summary.md, also printed) and grouped bars of median TPS (tps.png, via gnuplot).

    /usr/bin/python3 bench/report.py bench/results/<stamp>
"""

import csv
import os
import shutil
import statistics
import subprocess
import sys

TARGETS = ("direct", "pgbouncer", "proxy")


def num(s):
    try:
        return float(s)
    except (TypeError, ValueError):
        return None


def fmt_int(x):
    return f"{x:,.0f}" if x is not None else "–"


def fmt(x, nd=1):
    return f"{x:.{nd}f}" if x is not None else "–"


def main():
    out = sys.argv[1]
    rows = list(csv.DictReader(open(os.path.join(out, "pgbench.csv"))))
    cells = {}  # (section, mode, clients) -> target -> list of rows
    order = []
    for r in rows:
        key = (r["section"], r["mode"], int(r["clients"]))
        if key not in cells:
            cells[key] = {}
            order.append(key)
        cells[key].setdefault(r["target"], []).append(r)
    present = [t for t in TARGETS if any(t in c for c in cells.values())]

    def med(rs, field):
        vals = [num(r[field]) for r in rs if r["status"] == "ok" and num(r[field]) is not None]
        return statistics.median(vals) if vals else None

    def tps_cell(rs):
        if not rs:
            return "–", None
        m = med(rs, "tps")
        nfail = sum(r["status"] != "ok" for r in rs)
        if m is None:
            return "fails", None
        return fmt_int(m) + (f" ({nfail} failed)" if nfail else ""), m

    lines = []
    meta = os.path.join(out, "meta.txt")
    if os.path.exists(meta):
        lines += ["```", open(meta).read().rstrip(), "```", ""]
    has_tps = any(k[0] == "tps" for k in order)
    if has_tps:
        lines += ["### Throughput: pgbench -S, median TPS (excluding connection time)", ""]
    hdr = ["mode", "clients"] + [f"{t} TPS" for t in present]
    if "proxy" in present and "pgbouncer" in present:
        hdr.append("proxy/pgbouncer")
    if "proxy" in present and "direct" in present:
        hdr.append("proxy/direct")
    hdr += [f"latency ms {t}" for t in present]
    hdr += [f"CPU µs/stmt {t}" for t in present if t != "direct"]
    if has_tps:
        lines += ["| " + " | ".join(hdr) + " |", "|" + "---|" * len(hdr)]
    plot_rows = []
    for key in order:
        section, mode, clients = key
        if section != "tps":
            continue
        c = cells[key]
        tps = {t: tps_cell(c.get(t, [])) for t in present}
        row = [mode, str(clients)] + [tps[t][0] for t in present]

        def ratio(a, b):
            x, y = tps[a][1], tps[b][1]
            return f"{x / y:.2f}×" if x and y else "–"
        if "proxy/pgbouncer" in hdr:
            row.append(ratio("proxy", "pgbouncer"))
        if "proxy/direct" in hdr:
            row.append(ratio("proxy", "direct"))
        row += [fmt(med(c.get(t, []), "latency_ms"), 3) for t in present]
        row += [fmt(med(c.get(t, []), "cpu_us_per_stmt")) for t in present if t != "direct"]
        lines.append("| " + " | ".join(row) + " |")
        plot_rows.append((f"{mode}/{clients}", [tps[t][1] for t in present]))

    notes = {}
    for r in rows:
        if r["status"] != "ok":
            notes.setdefault((r["target"], r.get("error") or "pgbench failed"), []).append(
                f"{r['section']} {r['mode']}/{r['clients']}")
    if notes:
        lines += ["", "Failures:"]
        for (target, err), where in notes.items():
            lines.append(f"- {target}: {err} ({', '.join(where)})")

    rtt = [k for k in order if k[0] == "rtt"]
    if rtt:
        lines += ["", "### Single-client round trip: pgbench -S -c 1 -j 1, median latency", "",
                  "| target | latency µs | TPS | CPU µs/stmt |", "|---|---|---|---|"]
        for t in present:
            rs = cells[rtt[0]].get(t, [])
            lat = med(rs, "latency_ms")
            lines.append(f"| {t} | {fmt(lat * 1000 if lat is not None else None, 0)} "
                         f"| {tps_cell(rs)[0]} | {fmt(med(rs, 'cpu_us_per_stmt'))} |")

    for extra in ("idle.txt", "large.txt"):
        p = os.path.join(out, extra)
        if os.path.exists(p):
            text = open(p).read()
            i = text.find("###")
            if i >= 0:
                lines += ["", text[i:].rstrip()]

    summary = "\n".join(lines) + "\n"
    with open(os.path.join(out, "summary.md"), "w") as f:
        f.write(summary)
    print(summary)

    if plot_rows and shutil.which("gnuplot"):
        dat = os.path.join(out, "tps.dat")
        with open(dat, "w") as f:
            f.write("# cell " + " ".join(present) + "\n")
            for label, vals in plot_rows:
                f.write(label + " " + " ".join(f"{v:.0f}" if v is not None else "-"
                                               for v in vals) + "\n")
        cols = " , ".join(f"'' using {i + 2} title '{t}'" if i else
                          f"'{dat}' using {i + 2}:xtic(1) title '{t}'"
                          for i, t in enumerate(present))
        script = f"""
set terminal pngcairo size 1200,600 noenhanced font ',10'
set output '{os.path.join(out, 'tps.png')}'
set title 'pgbench -S: median TPS per cell (mode/clients)'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set datafile missing '-'
set key top right
set grid ytics
set yrange [0:*]
set ylabel 'TPS'
set xtics rotate by -30
plot {cols}
"""
        try:
            subprocess.run(["gnuplot"], input=script, text=True, check=True, timeout=60)
            print(f"plot: {os.path.join(out, 'tps.png')}")
        except (subprocess.SubprocessError, OSError) as e:
            print(f"gnuplot failed: {e}", file=sys.stderr)
    elif plot_rows:
        print("gnuplot not installed: no plot (apt-get install gnuplot-nox)", file=sys.stderr)


if __name__ == "__main__":
    main()
