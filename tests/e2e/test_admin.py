"""The admin HTTP port (SPEC §6, issue 6): every endpoint's status codes, JSON
shapes and content types; HTTP/1.1 behaviour (keep-alive, pipelining, request
size and time limits, JSON 404/405); bearer-token rules for the mutating
endpoints; readiness following the primary down and back up; and the
Prometheus exposition, checked with promtool and with counters that grow
between two scrapes."""

import http.client
import json
import re
import shutil
import socket
import subprocess
import time

import pytest

from conftest import DEFAULT_PROXY_ENV, free_port, skip_if_direct, wait_until
from relay import Relay

TOKEN = "e2e-admin-token-5f1c"
JSON = "application/json"
PROM_TYPE = "text/plain; version=0.0.4"

# Families /metrics must always carry (issue 6 and SPEC §6).
REQUIRED_FAMILIES = {
    "fastnext_up": "gauge",
    "fastnext_build_info": "gauge",
    "fastnext_workers": "gauge",
    "fastnext_client_connections": "gauge",
    "fastnext_client_connections_accepted_total": "counter",
    "fastnext_client_connections_rejected_total": "counter",
    "fastnext_login_failures_total": "counter",
    "fastnext_protocol_errors_total": "counter",
    "fastnext_transactions_total": "counter",
    "fastnext_queries_total": "counter",
    "fastnext_db_pool_size": "gauge",
    "fastnext_db_pool_max_overflow": "gauge",
    "fastnext_db_pool_open": "gauge",
    "fastnext_db_pool_checked_out": "gauge",
    "fastnext_db_pool_idle": "gauge",
    "fastnext_db_pool_waiting": "gauge",
    "fastnext_db_pool_pinned": "gauge",
    "fastnext_pool_waits_total": "counter",
    "fastnext_pool_timeouts_total": "counter",
    "fastnext_client_pins_total": "counter",
    "fastnext_server_connections_opened_total": "counter",
    "fastnext_server_connections_closed_total": "counter",
    "fastnext_cancel_requests_forwarded_total": "counter",
    "fastnext_bytes_total": "counter",
    "fastnext_iobuf_in_use": "gauge",
    "fastnext_replica_up": "gauge",
    "fastnext_replica_lag_seconds": "gauge",
    "fastnext_replica_lag_bytes": "gauge",
    "fastnext_primary_up": "gauge",
    "fastnext_cpu_percent": "gauge",
    "fastnext_process_resident_memory_bytes": "gauge",
    "fastnext_process_open_fds": "gauge",
    "fastnext_query_duration_seconds": "histogram",
    "fastnext_pool_wait_seconds": "histogram",
}


# ---------------------------------------------------------------- helpers


def admin_up(ep, timeout=10):
    """Wait until the admin port accepts (it starts right after the workers)."""
    skip_if_direct("the admin port belongs to the proxy")

    def ok():
        try:
            socket.create_connection(("127.0.0.1", ep.admin_port), timeout=0.5).close()
            return True
        except OSError:
            return False

    wait_until(ok, timeout, what="admin port %d" % ep.admin_port)
    return ep


def request(ep, method, path, body=None, headers=None, conn=None):
    """One request; returns (status, headers dict (lower-case names), body bytes)."""
    own = conn is None
    if own:
        conn = http.client.HTTPConnection("127.0.0.1", ep.admin_port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        data = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data
    finally:
        if own:
            conn.close()


def get_json(ep, path, expect=200, **kw):
    status, hdrs, data = request(ep, "GET", path, **kw)
    assert status == expect, (path, status, data)
    assert hdrs["content-type"] == JSON, hdrs
    assert int(hdrs["content-length"]) == len(data)
    return json.loads(data)


def auth(token=TOKEN):
    return {"Authorization": "Bearer " + token}


def raw_exchange(ep, payload, timeout=15.0):
    """Send raw bytes, read until the server closes; returns everything read."""
    s = socket.create_connection(("127.0.0.1", ep.admin_port), timeout=timeout)
    try:
        s.sendall(payload)
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            out += chunk
        return out
    finally:
        s.close()


def split_responses(data):
    """Split a byte stream of HTTP responses (Content-Length framed)."""
    out = []
    while data:
        head, sep, rest = data.partition(b"\r\n\r\n")
        assert sep, data[:200]
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        hdrs = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            hdrs[k.strip().lower()] = v.strip()
        n = int(hdrs.get("content-length", "0"))
        if status < 200:
            n = 0
        out.append((status, hdrs, rest[:n]))
        data = rest[n:]
    return out


def parse_prom(text):
    """{family: type}, {series (name + labels): value} from an exposition."""
    types, samples = {}, {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, typ = line.split(" ", 3)
            types[name] = typ
        elif line and not line.startswith("#"):
            series, _, value = line.rpartition(" ")
            samples[series] = float(value)
    return types, samples


def scrape(ep, path="/metrics"):
    status, hdrs, data = request(ep, "GET", path)
    assert status == 200
    assert hdrs["content-type"].startswith(PROM_TYPE), hdrs
    return data.decode()


def run_queries(ep, n, user="fnx"):
    with ep.connect(user=user, autocommit=True) as c:
        for i in range(n):
            assert c.execute("SELECT %s::int", (i,)).fetchone()[0] == i



# ---------------------------------------------------------------- health


def test_liveness_is_ok_and_cheap(proxy):
    ep = admin_up(proxy())
    t0 = time.monotonic()
    body = get_json(ep, "/api/v1/scaling/health/liveness")
    assert time.monotonic() - t0 < 1.0
    assert body["status"] == "ok"
    assert body["workers"] == 2


def test_readiness_follows_the_primary_down_and_back_up(proxy, stack):
    relay = Relay(stack["port"])
    relay.start()
    try:
        ep = admin_up(proxy(env={"POSTGRES_PORT": relay.port}))

        def ready_status():
            status, _, data = request(ep, "GET", "/api/v1/scaling/health/readiness")
            return status, json.loads(data)

        def ready():
            status, body = ready_status()
            return status == 200 and body["primary"]["up"] is True

        wait_until(ready, 15, what="readiness 200 with the primary probed up")
        status, body = ready_status()
        assert body["status"] == "ready"
        assert body["primary"]["up"] is True
        assert body["primary"]["port"] == relay.port

        relay.stop()
        wait_until(lambda: ready_status()[0] == 503, 15, what="readiness 503 with primary down")
        status, body = ready_status()
        assert body["status"] == "not ready"
        assert "primary" in body["reason"] and str(relay.port) in body["reason"]
        assert body["primary"]["up"] is False
        deep = get_json(ep, "/api/v1/scaling/health/deep", expect=503)
        assert deep["status"] == "down"
        # liveness does not depend on the database
        assert get_json(ep, "/api/v1/scaling/health/liveness")["status"] == "ok"
        status, _, data = request(ep, "GET", "/metrics")
        assert "\nfastnext_primary_up 0\n" in data.decode()

        relay.start()
        wait_until(lambda: ready_status()[0] == 200, 15, what="readiness 200 again")
    finally:
        relay.stop()


def test_deep_health_lists_every_component(proxy, stack):
    replicas = "127.0.0.1:%d,127.0.0.1:%d" % (stack["replica1"], stack["replica2"])
    ep = admin_up(proxy(env={"POSTGRES_READ_REPLICAS": replicas}))
    run_queries(ep, 3)
    # the members appear once the health checker's first round is done
    wait_until(lambda: len(json.loads(request(ep, "GET", "/api/v1/scaling/health/deep")[2])
                           .get("replicas") or []) == 2, 10, what="the first health round")
    body = get_json(ep, "/api/v1/scaling/health/deep")
    assert body["status"] in ("ok", "degraded")
    assert body["primary"]["role"] == "primary"
    assert body["primary"]["port"] == stack["port"]
    assert [r["port"] for r in body["replicas"]] == [stack["replica1"], stack["replica2"]]
    for r in body["replicas"]:
        assert r["role"] == "replica"
        assert {"host", "port", "up", "usable", "lag_seconds", "lag_bytes", "lsn"} <= set(r)
    assert body["workers"]["count"] == 2
    assert body["workers"]["client_connections"] >= 0
    pools = {(p["database"], p["user"]): p for p in body["pools"]}
    assert ("fnx", "fnx") in pools
    assert body["cache"]["enabled"] is (DEFAULT_PROXY_ENV["CACHE_ENABLED"] == "true")
    assert body["cache"]["available"] is True
    assert {"hit_ratio", "total_hits", "total_misses", "memory_usage"} <= set(body["cache"])
    assert body["redis"]["configured"] is False


def test_replication_status_reports_each_replica(proxy, stack):
    replicas = "127.0.0.1:%d,127.0.0.1:%d" % (stack["replica1"], stack["replica2"])
    ep = admin_up(proxy(env={"POSTGRES_READ_REPLICAS": replicas, "READ_REPLICA_MAX_LAG": "7"}))

    def both_up():
        b = get_json(ep, "/api/v1/scaling/replication/status")
        return b if all(r["up"] for r in b["replicas"]) and len(b["replicas"]) == 2 else None

    body = wait_until(both_up, 20, what="both replicas reported up")
    assert body["max_lag_seconds"] == 7
    assert body["primary"]["up"] is True
    for r, port in zip(body["replicas"], (stack["replica1"], stack["replica2"])):
        assert r["host"] == "127.0.0.1" and r["port"] == port
        assert r["in_recovery"] is True
        assert re.fullmatch(r"[0-9A-F]+/[0-9A-F]+", r["lsn"]), r["lsn"]
        assert isinstance(r["lag_seconds"], (int, float)) and r["lag_seconds"] >= 0
        assert isinstance(r["lag_bytes"], int) and r["lag_bytes"] >= 0
        assert isinstance(r["usable"], bool)


def test_replica_series_carry_host_port_labels(proxy, stack):
    down = free_port()  # nothing listens there
    replicas = "127.0.0.1:%d,127.0.0.1:%d" % (stack["replica1"], down)
    ep = admin_up(proxy(env={"POSTGRES_READ_REPLICAS": replicas}))

    def settled():
        _, s = parse_prom(scrape(ep))
        up = s.get('fastnext_replica_up{replica="127.0.0.1:%d"}' % stack["replica1"])
        dn = s.get('fastnext_replica_up{replica="127.0.0.1:%d"}' % down)
        return s if up == 1 and dn == 0 else None

    s = wait_until(settled, 20, what="one replica up, one down")
    assert s['fastnext_replica_lag_seconds{replica="127.0.0.1:%d"}' % stack["replica1"]] >= 0
    lag = s['fastnext_replica_lag_seconds{replica="127.0.0.1:%d"}' % down]
    assert lag != lag  # NaN: unknown while down, never a made-up 0
    body = get_json(ep, "/api/v1/scaling/health/deep")
    assert body["status"] == "degraded"


# ---------------------------------------------------------------- pools and config


def test_pools_lists_every_pool_with_its_gauges(proxy):
    ep = admin_up(proxy())
    run_queries(ep, 2, user="fnx")
    run_queries(ep, 2, user="fnx_md5")
    holder = ep.connect(user="fnx")  # a transaction holds a server connection
    try:
        holder.execute("SELECT 1")
        body = get_json(ep, "/api/v1/pools")
        pools = {(p["database"], p["user"]): p for p in body["pools"]}
        assert body["count"] == len(body["pools"]) >= 2
        assert {("fnx", "fnx"), ("fnx", "fnx_md5")} <= set(pools)
        p = pools[("fnx", "fnx")]
        keys = {"database", "user", "backend", "role", "size", "max_overflow", "open", "in_use",
                "idle", "waiting", "pending", "pinned"}
        assert set(p) == keys
        assert p["size"] == 4 and p["max_overflow"] == 2  # DB_POOL_SIZE / DB_MAX_OVERFLOW
        assert p["in_use"] >= 1 and p["open"] >= 1
        assert p["waiting"] == 0
        _, s = parse_prom(scrape(ep))
        assert p["role"] == "primary" and p["backend"].startswith("127.0.0.1:")
        be = p["backend"]
        assert s['fastnext_db_pool_checked_out{database="fnx",user="fnx",backend="%s"}' % be] >= 1
        assert s['fastnext_db_pool_size{database="fnx",user="fnx_md5",backend="%s"}' % be] == 4
    finally:
        holder.rollback()
        holder.close()


def test_config_shows_the_effective_config_with_secrets_masked(proxy):
    ep = admin_up(proxy(env={"ADMIN_TOKEN": TOKEN, "POSTGRES_PASSWORD": "pw-never-shown"}))
    status, hdrs, data = request(ep, "GET", "/api/v1/config")
    assert status == 200 and hdrs["content-type"] == JSON
    assert TOKEN.encode() not in data and b"pw-never-shown" not in data
    cfg = json.loads(data)["config"]
    assert cfg["ADMIN_TOKEN"] == {"value": "********", "source": "env"}
    assert cfg["POSTGRES_PASSWORD"]["value"] == "********"
    assert cfg["DB_POOL_SIZE"] == {"value": "4", "source": "env"}
    assert cfg["ADMIN_LISTEN"]["value"] == "127.0.0.1:%d" % ep.admin_port
    assert cfg["REDIS_HOST"]["value"] is None
    assert cfg["CACHE_DEFAULT_TTL"]["source"] == "default"


# ---------------------------------------------------------------- cache and later endpoints


def test_cache_stats_report_totals_and_each_level(proxy):
    ep = admin_up(proxy(env={"CACHE_ENABLED": "true"}))
    body = get_json(ep, "/api/v1/cache/stats")
    assert body["enabled"] is True
    assert body["available"] is True
    for k in ("hit_ratio", "total_hits", "total_misses", "memory_usage"):
        assert isinstance(body[k], (int, float)), (k, body)
    assert {"hits", "misses", "entries", "memory_usage", "evictions"} <= set(body["levels"]["l1"])


MUTATING = [
    ("POST", "/api/v1/cache/invalidate", b'{"tags":["users"]}'),
    ("DELETE", "/api/v1/cache", None),
    ("POST", "/api/v1/cache/warm", b'{"queries":["SELECT 1"]}'),
]


def test_mutating_endpoints_need_the_bearer_token(proxy):
    ep = admin_up(proxy(env={"ADMIN_TOKEN": TOKEN}))
    for method, path, body in MUTATING:
        hdr = {"Content-Type": JSON}
        status, hdrs, data = request(ep, method, path, body=body, headers=hdr)
        assert status == 401, (path, status)
        assert hdrs["www-authenticate"].startswith("Bearer")
        assert json.loads(data)["error"]
        for bad in ("Bearer wrong", "Bearer " + TOKEN + "x", "Basic " + TOKEN, TOKEN):
            hdrs_bad = dict(hdr, Authorization=bad)
            status, _, _ = request(ep, method, path, body=body, headers=hdrs_bad)
            assert status == 401, (path, bad, status)
        status, hdrs, data = request(ep, method, path, body=body, headers=dict(hdr, **auth()))
        assert status in (200, 202), (path, status, data)
        assert hdrs["content-type"] == JSON
        assert "error" not in json.loads(data)


def test_mutating_endpoints_are_refused_without_a_configured_token(proxy):
    ep = admin_up(proxy(env={"ADMIN_TOKEN": None}))
    for method, path, body in MUTATING:
        for hdr in ({}, auth(), auth("")):
            status, _, data = request(ep, method, path, body=body, headers=hdr)
            assert status == 403, (path, hdr, status)
            assert "ADMIN_TOKEN" in json.loads(data)["error"]


def test_database_and_routing_endpoints_answer_json(proxy):
    ep = admin_up(proxy())
    body = get_json(ep, "/api/v1/routing/explain?sql=SELECT+1")
    assert isinstance(body, dict) and body, body
    for path in ("/api/v1/database/slow-queries", "/api/v1/database/index-recommendations"):
        status, hdrs, data = request(ep, "GET", path)
        assert status in (200, 502, 503), (path, status, data)
        assert hdrs["content-type"] == JSON
        assert isinstance(json.loads(data), dict)


# ---------------------------------------------------------------- HTTP behaviour


def test_unknown_path_is_a_json_404_and_wrong_method_a_405_with_allow(proxy):
    ep = admin_up(proxy())
    for path in ("/nope", "/api/v1/pools/", "/metrics/x"):
        status, hdrs, data = request(ep, "GET", path)
        assert status == 404 and hdrs["content-type"] == JSON
        assert json.loads(data) == {"error": "not found"}
    status, hdrs, data = request(ep, "POST", "/metrics", body=b"")
    assert status == 405
    assert json.loads(data) == {"error": "method not allowed"}
    assert hdrs["allow"] == "GET, HEAD, OPTIONS"
    status, hdrs, _ = request(ep, "GET", "/api/v1/cache")
    assert status == 405 and hdrs["allow"] == "DELETE, OPTIONS"
    status, hdrs, data = request(ep, "OPTIONS", "/api/v1/cache/warm")
    assert status == 204 and hdrs["allow"] == "POST, OPTIONS" and data == b""
    status, hdrs, data = request(ep, "HEAD", "/api/v1/scaling/health/liveness")
    assert status == 200 and data == b"" and int(hdrs["content-length"]) > 0


def test_keep_alive_serves_many_requests_on_one_connection(proxy):
    ep = admin_up(proxy())
    conn = http.client.HTTPConnection("127.0.0.1", ep.admin_port, timeout=10)
    try:
        conn.connect()
        sock = conn.sock
        paths = ["/api/v1/scaling/health/liveness", "/metrics", "/api/v1/pools", "/nope",
                 "/api/v1/config"] * 4
        for path in paths:
            status, hdrs, _ = request(ep, "GET", path, conn=conn)
            assert status in (200, 404)
            assert hdrs["connection"] == "keep-alive"
        assert conn.sock is sock  # never reconnected
    finally:
        conn.close()


def test_pipelined_requests_are_answered_in_order(proxy):
    ep = admin_up(proxy(env={"ADMIN_TOKEN": TOKEN}))
    reqs = [
        b"GET /api/v1/scaling/health/liveness HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET /nope HTTP/1.1\r\nHost: a\r\n\r\n",
        b"POST /metrics HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc",
        b"DELETE /api/v1/cache HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer " + TOKEN.encode()
        + b"\r\n\r\n",
        b"HEAD /api/v1/pools HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET /api/v1/scaling/health/liveness HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    ]
    data = raw_exchange(ep, b"".join(reqs))
    # HEAD carries a Content-Length but no body: frame it by hand
    parts = []
    for _ in range(6):
        head, _, data = data.partition(b"\r\n\r\n")
        status = int(head.split(b" ")[1])
        m = re.search(rb"Content-Length: (\d+)", head)
        n = int(m.group(1)) if m and len(parts) != 4 else 0
        parts.append((status, data[:n]))
        data = data[n:]
    assert data == b""
    assert [p[0] for p in parts] == [200, 404, 405, 200, 200, 200]
    assert json.loads(parts[0][1])["status"] == "ok"
    assert parts[4][1] == b""


def test_oversized_requests_are_refused_and_closed(proxy):
    ep = admin_up(proxy())
    big_header = b"GET /metrics HTTP/1.1\r\nX-Big: " + b"x" * 20000 + b"\r\n\r\n"
    (status, hdrs, body), = split_responses(raw_exchange(ep, big_header))
    assert status == 431 and hdrs["connection"] == "close"
    assert json.loads(body)["error"]

    big_body = b"POST /api/v1/cache/warm HTTP/1.1\r\nContent-Length: 100000\r\n\r\n" + b"y" * 100000
    (status, hdrs, body), = split_responses(raw_exchange(ep, big_body))
    assert status == 413 and hdrs["connection"] == "close"

    long_url = b"GET /" + b"a" * 10000 + b" HTTP/1.1\r\n\r\n"
    (status, _, _), = split_responses(raw_exchange(ep, long_url))
    assert status == 414

    (status, _, _), = split_responses(raw_exchange(ep, b"\x16\x03\x01\x00\x05hello\r\n\r\n"))
    assert status in (400, 501)
    # the server is fine afterwards
    assert get_json(ep, "/api/v1/scaling/health/liveness")["status"] == "ok"


@pytest.mark.timeout_s(40)
def test_a_slow_request_is_cut_off_with_408(proxy):
    ep = admin_up(proxy())
    s = socket.create_connection(("127.0.0.1", ep.admin_port), timeout=25)
    try:
        t0 = time.monotonic()
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: slow\r\n")  # never finished
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        took = time.monotonic() - t0
    finally:
        s.close()
    (status, hdrs, _), = split_responses(data)
    assert status == 408 and hdrs["connection"] == "close"
    assert 8 <= took <= 15, took
    assert get_json(ep, "/api/v1/scaling/health/liveness")["status"] == "ok"


# ---------------------------------------------------------------- Prometheus


def promtool():
    return shutil.which("promtool")


def test_metrics_are_valid_and_counters_grow_between_scrapes(proxy):
    ep = admin_up(proxy())
    run_queries(ep, 2)
    first = scrape(ep)
    types, before = parse_prom(first)
    for name, typ in REQUIRED_FAMILIES.items():
        assert types.get(name) == typ, (name, types.get(name))
        assert "# HELP %s " % name in first, name
    for name, typ in types.items():
        assert name.startswith("fastnext_")
        assert name.endswith("_total") == (typ == "counter"), name
    assert before["fastnext_up"] == 1
    assert before['fastnext_build_info{version="%s"}' % re.search(
        r'fastnext_build_info\{version="([^"]+)"\}', first).group(1)] == 1

    run_queries(ep, 25)
    second = scrape(ep, "/api/v1/scaling/metrics/prometheus")
    _, after = parse_prom(second)
    for series, v in before.items():
        name = re.split(r"[{ ]", series)[0]
        if name.endswith("_total") or name.endswith(("_bucket", "_count", "_sum")):
            assert after.get(series, 0) >= v, (series, v, after.get(series))
    assert after["fastnext_queries_total"] >= before["fastnext_queries_total"] + 25
    assert after["fastnext_transactions_total"] >= before["fastnext_transactions_total"] + 25
    assert after["fastnext_client_connections_accepted_total"] > before[
        "fastnext_client_connections_accepted_total"]
    for d in ("client_to_server", "server_to_client"):
        key = 'fastnext_bytes_total{direction="%s"}' % d
        assert after[key] > before[key]
    q = 'fastnext_query_duration_seconds_count{route="primary",cache="bypass"}'
    assert after[q] >= before[q] + 25, "query latency histogram not fed by the workers"
    inf = 'fastnext_query_duration_seconds_bucket{route="primary",cache="bypass",le="+Inf"}'
    assert after[inf] == after[q]
    assert after["fastnext_process_resident_memory_bytes"] > 1e6
    assert after["fastnext_process_open_fds"] > 3
    assert after["fastnext_cpu_percent"] >= 0
    assert after["fastnext_workers"] == 2

    if not promtool():
        pytest.skip("promtool not installed (Debian package 'prometheus'): exposition checked "
                    "by the parser above only")
    for text in (first, second):
        r = subprocess.run([promtool(), "check", "metrics"], input=text.encode(),
                           capture_output=True, timeout=30)
        assert r.returncode == 0, (r.stdout + r.stderr).decode()


def test_label_values_are_escaped_in_the_exposition(proxy):
    # pool labels come from client-chosen names: a database name with a quote,
    # a backslash and non-ASCII must still give a valid exposition
    ep = admin_up(proxy())
    weird = 'we"ird\\db é'
    try:
        with ep.connect(dbname=weird, autocommit=True) as c:
            c.execute("SELECT 1")
    except Exception:
        pass  # the database does not exist; the pool for it does
    text = scrape(ep)
    assert 'database="we\\"ird\\\\db é"' in text
    if promtool():
        r = subprocess.run([promtool(), "check", "metrics"], input=text.encode(),
                           capture_output=True, timeout=30)
        assert r.returncode == 0, (r.stdout + r.stderr).decode()
    body = get_json(ep, "/api/v1/pools")
    assert weird in {p["database"] for p in body["pools"]}
