"""Small helpers shared by the deployment tests: metric names in PromQL
expressions, the Prometheus text format, and Grafana dashboard queries.

The PromQL scan is deliberately simple and conservative: it drops string
literals, Grafana variables, label matchers, ranges, grouping clauses and
numbers, then every identifier that is not a function call or a keyword is a
metric name. tests/deploy/test_deploy.py checks it on tricky expressions.
"""

import re

# Keywords and operators of PromQL that look like identifiers.
KEYWORDS = {
    "and",
    "or",
    "unless",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "offset",
    "bool",
    "inf",
    "nan",
    "atan2",
    "start",
    "end",
}

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_GRAFANA_VAR = re.compile(r"\$\{[^}]*\}|\$\w+|\[\[[^\]]*\]\]")
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\[\]]*\]")
_GROUPING = re.compile(
    r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", re.IGNORECASE
)
_OFFSET = re.compile(r"\boffset\s+-?[0-9a-zA-Z_]+", re.IGNORECASE)
_NUMBER = re.compile(r"(?<![\w:.])(?:0x[0-9a-fA-F]+|\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+)")
_IDENT = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


def metric_names(expr):
    """The metric names an expression selects (a set)."""
    s = _STRING.sub(" ", expr)
    s = _GRAFANA_VAR.sub(" ", s)
    s = _MATCHERS.sub(" ", s)
    s = _RANGE.sub(" ", s)
    s = _GROUPING.sub(" ", s)
    s = _OFFSET.sub(" ", s)
    s = _NUMBER.sub(" ", s)
    names = set()
    for m in _IDENT.finditer(s):
        word = m.group(0)
        rest = s[m.end() :].lstrip()
        if rest.startswith("("):
            continue  # a function or an aggregation
        if word.lower() in KEYWORDS:
            continue
        names.add(word)
    return names


_LABEL_VALUES = re.compile(r"^\s*label_values\s*\((.*)\)\s*$", re.S)
_QUERY_RESULT = re.compile(r"^\s*query_result\s*\((.*)\)\s*$", re.S)


def variable_expr(query):
    """The PromQL inside a Grafana Prometheus variable query, or None when it
    selects no metric (label_values(label), label_names(), metrics(...))."""
    if isinstance(query, dict):
        query = query.get("query", "")
    m = _LABEL_VALUES.match(query or "")
    if m:
        inner = m.group(1)
        # label_values(expr, label): the label is after the last top-level comma
        depth = 0
        cut = None
        for i, ch in enumerate(inner):
            if ch in "({[":
                depth += 1
            elif ch in ")}]":
                depth -= 1
            elif ch == "," and depth == 0:
                cut = i
        return inner[:cut].strip() if cut is not None else None
    m = _QUERY_RESULT.match(query or "")
    if m:
        return m.group(1)
    return None


# ---------------------------------------------------------------- exposition

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s+(\S+)(\s+-?\d+)?\s*$")
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?')


def parse_labels(text):
    if not text:
        return ()
    body = text[1:-1]
    out = []
    pos = 0
    while pos < len(body):
        m = _LABEL.match(body, pos)
        if not m:
            raise ValueError("bad label set %r" % text)
        out.append((m.group(1), m.group(2)))
        pos = m.end()
    return tuple(sorted(out))


def parse_exposition(text):
    """(families {name: type}, samples [(name, labels tuple, value str)])."""
    families = {}
    samples = []
    for line in text.splitlines():
        if not line.strip():
            continue
        if line.startswith("# TYPE "):
            _, _, name, typ = line.split(None, 3)
            families[name] = typ.strip()
            continue
        if line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        if not m:
            raise ValueError("bad sample line %r" % line)
        samples.append((m.group(1), parse_labels(m.group(2)), m.group(3)))
    return families, samples


def series_names(families, samples):
    """Every series name a query may select: sample names, plus the names of
    families declared without samples (histograms: _bucket, _sum, _count)."""
    names = {s[0] for s in samples}
    for fam, typ in families.items():
        if typ == "histogram":
            names.update(fam + sfx for sfx in ("_bucket", "_sum", "_count"))
        elif typ == "summary":
            names.update((fam, fam + "_sum", fam + "_count"))
        else:
            names.add(fam)
    return names


# ---------------------------------------------------------------- dashboards


def iter_panels(panels):
    for p in panels or []:
        yield p
        yield from iter_panels(p.get("panels"))


def dashboard_queries(dash):
    """(where, expr) for every panel target and every query variable."""
    for p in iter_panels(dash.get("panels")):
        for t in p.get("targets") or []:
            if "expr" in t:
                yield "panel %r target %s" % (p.get("title"), t.get("refId")), t["expr"]
    for v in (dash.get("templating") or {}).get("list") or []:
        if v.get("type") == "query":
            e = variable_expr(v.get("query"))
            if e:
                yield "variable $%s" % v.get("name"), e
