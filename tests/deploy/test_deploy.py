"""Deployment checks (issue 7), all offline: the Kubernetes manifests in k8s/,
Dockerfile.proxy, the Grafana dashboards in grafana/, and the metrics the
dashboards query against a live proxy's /metrics.

    /usr/bin/python3 -m pytest tests/deploy -q       (under scripts/with-stack.sh
                                                      for the live-metrics tests)
"""

import json
import os
import pathlib
import re
import shlex
import shutil
import subprocess
import tempfile
import time
import urllib.parse

import pytest
import yaml

import promql
from deploy_fixtures import deploy_node, find, live_proxy, node, objects, stack  # noqa: F401 (fixtures)
from deploy_support import (
    GRAFANA,
    HERE,
    K8S,
    PGBIN,
    ROOT,
    free_port,
    http_get,
    pdeathsig,
    stop_process,
    tail,
)

LIVENESS = "/api/v1/scaling/health/liveness"
READINESS = "/api/v1/scaling/health/readiness"
DOCKERFILE = os.path.join(ROOT, "Dockerfile.proxy")
RELEASE_BIN = os.path.join(ROOT, "build", "fastnext-proxy")

# The proxy drains on SIGTERM for at most its drain timeout. Until the proxy
# has a setting for it (a ConfigMap key named *DRAIN*TIMEOUT* or
# *SHUTDOWN*TIMEOUT* is picked up when it appears), plan for 30 s.
ASSUMED_DRAIN_TIMEOUT = 30
DRAIN_MARGIN = 5


def run(cmd, timeout=300, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)


def containers(obj):
    spec = obj["spec"]["template"]["spec"]
    return {c["name"]: c for c in spec.get("initContainers", []) + spec["containers"]}


def pg_args(container):
    """{setting: value} of the `-c name=value` arguments of a postgres container."""
    args = container.get("args", [])
    out = {}
    for i, a in enumerate(args):
        if a == "-c":
            k, _, v = args[i + 1].partition("=")
            out[k] = v
    return out


def size_bytes(s):
    m = re.fullmatch(r"(\d+)\s*([kmg]?b?)", s.strip().lower())
    assert m, s
    mult = {"": 1, "b": 1, "k": 1 << 10, "kb": 1 << 10, "m": 1 << 20, "mb": 1 << 20, "g": 1 << 30, "gb": 1 << 30}
    return int(m.group(1)) * mult[m.group(2)]


# ====================================================================== k8s


def test_k8s_manifests_validate_offline(deploy_node):
    """Every manifest against the Kubernetes (and prometheus-operator CRD)
    schemas, strict about unknown fields, plus cross-references."""
    r = run([deploy_node, os.path.join(HERE, "validate_k8s.mjs"), K8S])
    print(r.stdout)
    assert r.returncode == 0, r.stdout + r.stderr
    assert re.search(r"^validate_k8s: \d+ passed, 0 failed$", r.stdout, re.M)


MUTATIONS = {
    # (file, old, new, message the validator must print)
    "misspelt field": (
        "app-deployment.yaml",
        "          readinessProbe:\n            # 200",
        "          readinesProbe:\n            # 200",
        "unknown field /spec/template/spec/containers/1/readinesProbe",
    ),
    "wrong type": (
        "app-deployment.yaml",
        "containerPort: 9930",
        'containerPort: "9930"',
        "containerPort must be integer",
    ),
    "missing secret key": (
        "app-deployment.yaml",
        "key: ADMIN_TOKEN",
        "key: ADMIN_TOKN",
        "refers to key ADMIN_TOKN of Secret fastnext-proxy",
    ),
    "probe on an undeclared port": (
        "app-deployment.yaml",
        "              path: /api/v1/scaling/health/readiness\n              port: admin",
        "              path: /api/v1/scaling/health/readiness\n              port: metrics",
        "readinessProbe uses port name metrics",
    ),
    "selector mismatch": (
        "app-service.yaml",
        "  selector:\n    app.kubernetes.io/name: app\n  ports:\n    - name: http",
        "  selector:\n    app.kubernetes.io/name: api\n  ports:\n    - name: http",
        "its selector matches no pod template",
    ),
    "CRD field typo": (
        "servicemonitor.yaml",
        "scrapeTimeout: 10s",
        "scrapeTimout: 10s",
        "unknown field /spec/endpoints/0/scrapeTimout",
    ),
    "CRD wrong type": (
        "servicemonitor.yaml",
        "honorLabels: false",
        'honorLabels: "no"',
        "honorLabels must be boolean",
    ),
    "unknown kind": (
        "namespace.yaml",
        None,
        "---\napiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\n  namespace: fastnext\n",
        "unknown kind example.com/v1/Widget",
    ),
    "root container": (
        "redis-cluster.yaml",
        "        runAsUser: 999\n        runAsGroup: 999\n        fsGroup: 999",
        "        runAsUser: 0\n        runAsGroup: 999\n        fsGroup: 999",
        "runAsUser 0 (restricted)",
    ),
    "file not in kustomization": (
        "kustomization.yaml",
        "  - networkpolicy.yaml\n",
        "",
        "networkpolicy.yaml is not listed in resources",
    ),
}


@pytest.mark.parametrize("case", sorted(MUTATIONS))
def test_k8s_validator_rejects(case, deploy_node, tmp_path):
    """The validator is not a rubber stamp: each known-bad edit is caught."""
    name, old, new, expect = MUTATIONS[case]
    work = tmp_path / "k8s"
    shutil.copytree(K8S, work)
    p = work / name
    text = p.read_text()
    if old is None:
        text += new
    else:
        assert old in text, "mutation %r no longer applies to %s" % (case, name)
        text = text.replace(old, new, 1)
    p.write_text(text)
    r = run([deploy_node, os.path.join(HERE, "validate_k8s.mjs"), str(work)])
    assert r.returncode != 0, r.stdout
    assert expect in r.stdout, r.stdout


def test_namespace_everywhere(objects):
    kinds = {o["kind"] for o in objects}
    assert "Namespace" in kinds
    for o in objects:
        if o["kind"] in ("Namespace", "Kustomization"):
            continue
        assert o["metadata"].get("namespace") == "fastnext", (o["kind"], o["metadata"]["name"])


def test_proxy_sidecar(find):
    """The app Deployment: the FastAPI container plus the fastnext-proxy sidecar
    with probes on the admin port, config from the ConfigMap, secrets and the
    auth file from the Secret, non-root read-only, Prometheus annotations."""
    dep = find("Deployment", "app")
    cm = find("ConfigMap", "fastnext-proxy-config")["data"]
    cs = containers(dep)
    assert set(cs) == {"app", "fastnext-proxy"}

    app = cs["app"]
    assert app["image"] == "registry.example.com/app:latest"
    env = {e["name"]: e for e in app["env"]}
    assert env["DATABASE_URL"]["value"] == "postgresql://app@127.0.0.1:6432/app"
    assert cm["PROXY_LISTEN"] == "127.0.0.1:6432"

    px = cs["fastnext-proxy"]
    assert px["image"].startswith("fastnext-proxy:")
    ports = {p["name"]: p["containerPort"] for p in px["ports"]}
    assert ports == {"postgres": 6432, "admin": 9930}
    assert cm["ADMIN_LISTEN"] == "0.0.0.0:9930", "probes and Prometheus reach the admin port on the pod IP"
    for probe, path in (
        ("startupProbe", LIVENESS),
        ("livenessProbe", LIVENESS),
        ("readinessProbe", READINESS),
    ):
        g = px[probe]["httpGet"]
        assert g["path"] == path and g["port"] in ("admin", 9930), probe
    assert px["livenessProbe"]["timeoutSeconds"] >= 2
    assert [e["configMapRef"]["name"] for e in px["envFrom"]] == ["fastnext-proxy-config"]
    penv = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in px["env"]}
    assert penv["ADMIN_TOKEN"] == {"name": "fastnext-proxy", "key": "ADMIN_TOKEN"}
    assert penv["POSTGRES_PASSWORD"] == {"name": "fastnext-proxy", "key": "POSTGRES_PASSWORD"}
    for k in ("ADMIN_TOKEN", "POSTGRES_PASSWORD", "AUTH_FILE_CONTENT"):
        assert k not in cm, "secrets never live in the ConfigMap"

    # the auth file: AUTH_FILE points into a read-only mount of the Secret
    auth_dir, auth_name = os.path.split(cm["AUTH_FILE"])
    mount = [m for m in px["volumeMounts"] if m["mountPath"] == auth_dir]
    assert mount and mount[0].get("readOnly") and "subPath" not in mount[0]
    vol = [v for v in dep["spec"]["template"]["spec"]["volumes"] if v["name"] == mount[0]["name"]][0]
    assert vol["secret"]["secretName"] == "fastnext-proxy"
    assert {"key": "userlist.txt", "path": auth_name} in vol["secret"]["items"]

    for c in cs.values():
        sc = c["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
        assert c["resources"]["requests"] and c["resources"]["limits"]
    psc = dep["spec"]["template"]["spec"]["securityContext"]
    assert psc["runAsNonRoot"] is True and psc["runAsUser"] != 0
    assert px["securityContext"]["runAsUser"] == 10001, "the uid of Dockerfile.proxy's USER"

    ann = dep["spec"]["template"]["metadata"]["annotations"]
    assert ann["prometheus.io/scrape"] == "true"
    assert ann["prometheus.io/port"] == cm["ADMIN_LISTEN"].rsplit(":", 1)[1]
    assert ann["prometheus.io/path"] == "/metrics"
    assert int(cm["WORKERS"]) <= float(px["resources"]["limits"]["cpu"])


def test_drain_fits_the_grace_period(find):
    """terminationGracePeriodSeconds covers the proxy's preStop wait, its drain
    timeout and a margin, and the app stops before the proxy does."""
    dep = find("Deployment", "app")
    cm = find("ConfigMap", "fastnext-proxy-config")["data"]
    cs = containers(dep)

    def sleep_of(c):
        cmd = " ".join(c["lifecycle"]["preStop"]["exec"]["command"])
        m = re.search(r"\bsleep (\d+)", cmd)
        assert m, cmd
        return int(m.group(1))

    drain_keys = [k for k in cm if re.search(r"(DRAIN|SHUTDOWN).*TIMEOUT", k)]
    drain = int(cm[drain_keys[0]]) if drain_keys else ASSUMED_DRAIN_TIMEOUT
    grace = dep["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    px_wait, app_wait = sleep_of(cs["fastnext-proxy"]), sleep_of(cs["app"])
    assert app_wait < px_wait, "the proxy must outlive the app's own shutdown"
    assert grace >= px_wait + drain + DRAIN_MARGIN, (grace, px_wait, drain)


def test_proxy_config_is_valid(find, tmp_path):
    """`fastnext-proxy --check-config` accepts the ConfigMap (with the Secret's
    keys), and every ConfigMap key is a setting the proxy knows."""
    if not os.access(RELEASE_BIN, os.X_OK):
        pytest.skip("build/fastnext-proxy is not built")
    cm = find("ConfigMap", "fastnext-proxy-config")["data"]
    sec = find("Secret", "fastnext-proxy")["stringData"]
    auth = tmp_path / "userlist.txt"
    auth.write_text(sec["userlist.txt"])
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    env.update(cm)
    env.update(AUTH_FILE=str(auth), ADMIN_TOKEN=sec["ADMIN_TOKEN"], POSTGRES_PASSWORD=sec["POSTGRES_PASSWORD"])
    r = run([RELEASE_BIN, "--check-config"], env=env, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    from_env = {l.split("=", 1)[0].strip() for l in r.stdout.splitlines() if l.rstrip().endswith("# env")}
    unknown = sorted(set(cm) - from_env)
    assert not unknown, "ConfigMap keys the proxy ignores: %s\n%s" % (unknown, r.stdout)
    assert "# auth file: 1 users" in r.stdout


def test_proxy_config_points_at_the_manifests(find):
    """POSTGRES_SERVER, POSTGRES_READ_REPLICAS and REDIS_CLUSTER_NODES name the
    Services and StatefulSet pods defined in k8s/, and the expected values."""
    cm = find("ConfigMap", "fastnext-proxy-config")["data"]
    assert cm["POOL_MODE"] == "transaction"
    assert cm["DB_POOL_SIZE"] == "20" and cm["DB_MAX_OVERFLOW"] == "40"
    assert cm["CACHE_ENABLED"] == "true"
    for k in ("CACHE_DEFAULT_TTL", "CACHE_MAX_SIZE", "CACHE_MAX_ENTRY_SIZE"):
        assert k in cm

    svc = find("Service", cm["POSTGRES_SERVER"])
    assert svc["spec"]["selector"]["app.kubernetes.io/component"] == "primary"
    assert svc["spec"]["ports"][0]["port"] == int(cm["POSTGRES_PORT"])

    def pods(sts_name):
        sts = find("StatefulSet", sts_name)
        svc = find("Service", sts["spec"]["serviceName"])
        assert svc["spec"]["clusterIP"] == "None"
        return ["%s-%d.%s" % (sts_name, i, svc["metadata"]["name"]) for i in range(sts["spec"]["replicas"])]

    replicas = [hp.rsplit(":", 1) for hp in cm["POSTGRES_READ_REPLICAS"].split(",")]
    assert [h for h, _ in replicas] == pods("postgres-replica")
    assert len(replicas) == 2 and all(p == "5432" for _, p in replicas)

    nodes = cm["REDIS_CLUSTER_NODES"].split(",")
    assert [n.rsplit(":", 1)[0] for n in nodes] == pods("redis-cluster")
    assert len(nodes) == 6 and all(n.endswith(":6379") for n in nodes)
    job = find("Job", "redis-cluster-create")
    jenv = {e["name"]: e.get("value") for e in containers(job)["create"]["env"]}
    assert jenv["REDIS_CLUSTER_NODES"].split() == nodes


def test_hpa_and_pdb(find):
    hpa = find("HorizontalPodAutoscaler", "app")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "app"}
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 20)
    targets = {
        m["resource"]["name"]: m["resource"]["target"]
        for m in hpa["spec"]["metrics"]
        if m["type"] == "Resource"
    }
    assert targets == {
        "cpu": {"type": "Utilization", "averageUtilization": 70},
        "memory": {"type": "Utilization", "averageUtilization": 80},
    }
    pdb = find("PodDisruptionBudget", "app")
    assert pdb["spec"]["selector"]["matchLabels"] == find("Deployment", "app")["spec"]["selector"]["matchLabels"]
    # room for an eviction at the HPA's minimum
    assert pdb["spec"]["minAvailable"] < hpa["spec"]["minReplicas"]


def test_redis_cluster_spec(find):
    sts = find("StatefulSet", "redis-cluster")
    assert sts["spec"]["replicas"] == 6
    assert sts["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
    conf = find("ConfigMap", "redis-cluster-config")["data"]["redis.conf"]
    lines = [l.split(None, 1) for l in conf.splitlines() if l.strip() and not l.startswith("#")]
    kv = {}
    for k, *v in lines:
        kv.setdefault(k, []).append(v[0] if v else "")
    assert kv["cluster-enabled"] == ["yes"]
    assert kv["maxmemory"] == ["2gb"] and kv["maxmemory-policy"] == ["allkeys-lru"]
    assert kv["appendonly"] == ["yes"] and kv["save"], "RDB snapshots and AOF"
    assert kv["dir"] == ["/data"] and kv["cluster-config-file"] == ["/data/nodes.conf"]
    limit = containers(sts)["redis"]["resources"]["limits"]["memory"]
    assert limit.endswith("Gi") and int(limit[:-2]) * (1 << 30) > size_bytes(kv["maxmemory"][0])
    script = find("ConfigMap", "redis-cluster-config")["data"]["create-cluster.sh"]
    assert "redis-cli --cluster create $addrs --cluster-replicas 1" in script


def test_postgres_spec(find):
    primary = find("StatefulSet", "postgres-primary")
    replica = find("StatefulSet", "postgres-replica")
    cm = find("ConfigMap", "fastnext-proxy-config")["data"]
    hpa = find("HorizontalPodAutoscaler", "app")
    assert primary["spec"]["replicas"] == 1 and replica["spec"]["replicas"] == 2
    for sts in (primary, replica):
        for c in containers(sts).values():
            assert c["image"] == "postgres:15"
    init = containers(replica)["basebackup"]
    assert init in replica["spec"]["template"]["spec"]["initContainers"]
    script = find("ConfigMap", "postgres-scripts")["data"]["basebackup.sh"]
    assert "pg_basebackup" in script and "--write-recovery-conf" in script  # -R

    p, r = pg_args(containers(primary)["postgres"]), pg_args(containers(replica)["postgres"])
    # logical: every proxy (up to the HPA's maximum) follows the primary's changes
    senders = 2 * replica["spec"]["replicas"] + hpa["spec"]["maxReplicas"]
    assert p["wal_level"] == "logical" and int(p["max_wal_senders"]) >= senders
    assert int(p["max_replication_slots"]) >= hpa["spec"]["maxReplicas"]
    # every proxy may open DB_POOL_SIZE + DB_MAX_OVERFLOW per (database, user)
    need = hpa["spec"]["maxReplicas"] * (int(cm["DB_POOL_SIZE"]) + int(cm["DB_MAX_OVERFLOW"]))
    assert int(p["max_connections"]) > need, (p["max_connections"], need)
    # hot standby refuses to start with less than the primary's
    for k in ("max_connections", "max_wal_senders"):
        assert int(r.get(k, 0)) >= int(p[k]), k
    assert r["hot_standby"] == "on"


def test_secrets_are_placeholders(objects):
    """The Secrets are templates: every value is a marked placeholder."""
    secrets = [o for o in objects if o["kind"] == "Secret"]
    assert {s["metadata"]["name"] for s in secrets} == {"fastnext-proxy", "postgres-credentials"}
    for s in secrets:
        assert "data" not in s, "templates use stringData"
        for k, v in s["stringData"].items():
            assert "CHANGE-ME" in v, "%s/%s must be a CHANGE-ME placeholder" % (s["metadata"]["name"], k)
    assert set(next(s for s in secrets if s["metadata"]["name"] == "fastnext-proxy")["stringData"]) == {
        "userlist.txt",
        "ADMIN_TOKEN",
        "POSTGRES_PASSWORD",
    }


def test_servicemonitor_and_annotations_agree(find):
    sm = find("ServiceMonitor", "fastnext-proxy")
    svc = find("Service", "app-proxy-metrics")
    ep = sm["spec"]["endpoints"][0]
    port = [p for p in svc["spec"]["ports"] if p["name"] == ep["port"]][0]
    ann = find("Deployment", "app")["spec"]["template"]["metadata"]["annotations"]
    assert port["port"] == int(ann["prometheus.io/port"])
    assert ep["path"] == ann["prometheus.io/path"] == "/metrics"


def test_config_scripts_parse(objects):
    """Every shell script carried in a ConfigMap passes `sh -n` / `bash -n`."""
    n = 0
    for o in objects:
        if o["kind"] != "ConfigMap":
            continue
        for key, text in o.get("data", {}).items():
            if not key.endswith(".sh"):
                continue
            shell = "bash" if text.startswith("#!/bin/bash") else "sh"
            r = run([shell, "-n"], input=text)
            assert r.returncode == 0, "%s/%s: %s" % (o["metadata"]["name"], key, r.stderr)
            n += 1
    assert n >= 4


# ---------------------------------------------------------------- the scripts, run here


def _redis_up(port, host="127.0.0.1", timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = run(["redis-cli", "-h", host, "-p", str(port), "ping"], timeout=5)
        if r.stdout.strip() == "PONG":
            return
        time.sleep(0.1)
    raise AssertionError("redis %s:%d did not start" % (host, port))


def test_redis_cluster_scripts(find, tmp_path):
    """create-cluster.sh makes 3 masters + 3 replicas out of 6 nodes, does no
    harm when run again, and after every node restarted (start.sh) under a
    new IP the cluster heals by running it once more."""
    if not (shutil.which("redis-server") and shutil.which("redis-cli")):
        pytest.skip("redis-server / redis-cli not installed (scripts/deps.sh installs them)")
    data = find("ConfigMap", "redis-cluster-config")["data"]
    (tmp_path / "start.sh").write_text(data["start.sh"])
    (tmp_path / "create.sh").write_text(data["create-cluster.sh"])
    ports = []
    while len(ports) < 6:
        p = free_port(also_plus=10000)
        if p not in ports:
            ports.append(p)

    def start_all(ips):
        for i, (ip, port) in enumerate(zip(ips, ports)):
            d = tmp_path / ("n%d" % i)
            d.mkdir(exist_ok=True)
            conf = d / "redis.conf"
            conf.write_text(data["redis.conf"].replace("/data", str(d)))
            env = dict(os.environ, POD_IP=ip, REDIS_DATA_DIR=str(d), REDIS_CONF=str(conf))
            r = run(
                ["sh", str(tmp_path / "start.sh"), "--port", str(port), "--bind", ip,
                 "--daemonize", "yes", "--pidfile", str(d / "redis.pid"),
                 "--logfile", str(d / "redis.log"), "--appendonly", "no", "--save", ""],
                env=env,
                timeout=30,
            )
            assert r.returncode == 0, r.stdout + r.stderr
            _redis_up(port, ip)

    def stop_all():
        for i, port in enumerate(ports):
            pidfile = tmp_path / ("n%d" % i) / "redis.pid"
            if pidfile.exists():
                try:
                    os.kill(int(pidfile.read_text()), 15)
                except (OSError, ValueError):
                    pass
        time.sleep(0.5)

    def create(ips):
        env = dict(
            os.environ,
            REDIS_CLUSTER_NODES=" ".join("%s:%d" % (ip, p) for ip, p in zip(ips, ports)),
            REDIS_CLUSTER_WAIT="60",
        )
        r = run(["sh", str(tmp_path / "create.sh")], env=env, timeout=180)
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
        return r.stdout

    def roles(ip, port):
        out = run(["redis-cli", "-h", ip, "-p", str(port), "cluster", "nodes"]).stdout
        flags = [l.split()[2].split(",") for l in out.splitlines() if l.strip()]
        return sorted("master" if "master" in f else "slave" if "slave" in f else ",".join(f) for f in flags), out

    try:
        ips = ["127.0.0.1"] * 6
        start_all(ips)
        out = create(ips)
        assert "cluster ok: 3 masters, 3 replicas, 6 nodes" in out, out[-2000:]
        got, out = roles(ips[0], ports[0])
        assert got == ["master"] * 3 + ["slave"] * 3, out
        out = create(ips)  # again: no harm
        assert "the cluster exists" in out and "cluster ok: 3 masters, 3 replicas, 6 nodes" in out
        stop_all()
        ips = ["127.0.0.%d" % (20 + i) for i in range(6)]  # every pod came back elsewhere
        start_all(ips)
        for i in range(6):
            conf = (tmp_path / ("n%d" % i) / "nodes.conf").read_text()
            assert "%s:%d@" % (ips[i], ports[i]) in [l for l in conf.splitlines() if "myself" in l][0]
        out = create(ips)
        assert "cluster ok: 3 masters, 3 replicas, 6 nodes" in out, out[-2000:]
        got, out = roles(ips[0], ports[0])
        assert got == ["master"] * 3 + ["slave"] * 3, out
    finally:
        stop_all()


def _as_postgres():
    """preexec/argv prefix to run PostgreSQL tools as `postgres` when we are root."""
    if os.geteuid() != 0:
        return []
    if not shutil.which("setpriv"):
        pytest.skip("running as root without setpriv")
    return ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--"]


def test_postgres_replication_scripts(find, tmp_path):
    """The primary's init script and the replicas' pg_basebackup -R script,
    run here against a throwaway PostgreSQL 15 with the manifests' settings:
    the roles exist with their passwords (SCRAM only), the replica streams,
    and the health role can run the proxy's probe query on it."""
    if not os.path.exists(os.path.join(PGBIN, "initdb")):
        pytest.skip("PostgreSQL 15 binaries not found in %s" % PGBIN)
    import psycopg

    scripts = find("ConfigMap", "postgres-scripts")["data"]
    p_args = pg_args(containers(find("StatefulSet", "postgres-primary"))["postgres"])
    r_args = pg_args(containers(find("StatefulSet", "postgres-replica"))["postgres"])
    as_pg = _as_postgres()
    # not under tmp_path: pytest's directories are private to root, and the
    # postgres user must reach this one (and its socket path must stay short)
    base = pathlib.Path(tempfile.mkdtemp(prefix="fnx-deploy-pg-"))
    if os.geteuid() == 0:
        shutil.chown(base, "postgres", "postgres")
    primary, replica = base / "primary", base / "replica" / "pgdata"
    (base / "init.sh").write_text(scripts["10-init-primary.sh"])
    (base / "basebackup.sh").write_text(scripts["basebackup.sh"])
    pw = {"REPLICATION_PASSWORD": "repl-secret", "APP_PASSWORD": "app-secret", "HEALTH_PASSWORD": "health-secret"}
    pport, rport = free_port(), free_port()

    def settings(args, port):
        s = dict(args)
        s.update(
            port=str(port),
            listen_addresses="127.0.0.1",
            unix_socket_directories=str(base),
            shared_buffers="32MB",  # the manifests' 512MB is for a real node
            cluster_name=s.get("cluster_name", "").replace("$(POD_NAME)", "postgres-replica-0"),
        )
        return " ".join("-c %s" % shlex.quote("%s=%s" % kv) for kv in s.items() if kv[1] != "")

    def pg_ctl(datadir, *a):
        return run(as_pg + [os.path.join(PGBIN, "pg_ctl"), "-D", str(datadir), *a], timeout=120)

    r = run(as_pg + [os.path.join(PGBIN, "initdb"), "-D", str(primary), "-U", "postgres",
                     "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8",
                     "--locale=C", "--no-sync"], timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    # like the image: no host trust lines, passwords over TCP
    hba = "local all all trust\nlocal replication all trust\nhost all all all scram-sha-256\n"
    run(as_pg + ["tee", str(primary / "pg_hba.conf")], input=hba)
    started = []
    try:
        r = pg_ctl(primary, "-l", str(base / "primary.log"), "-w", "-o", settings(p_args, pport), "start")
        assert r.returncode == 0, r.stdout + r.stderr + tail(str(base / "primary.log"))
        started.append(primary)
        env = dict(os.environ, PGHOST=str(base), PGPORT=str(pport), PGDATA=str(primary),
                   POSTGRES_USER="postgres", POSTGRES_DB="postgres", **pw)
        r = run(as_pg + ["bash", str(base / "init.sh")], env=env, timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        assert pg_ctl(primary, "reload").returncode == 0

        env = dict(os.environ, PGDATA=str(replica), PRIMARY_HOST="127.0.0.1",
                   PRIMARY_PORT=str(pport), REPLICATION_PASSWORD=pw["REPLICATION_PASSWORD"])
        for k in ("PGHOST", "PGPORT", "PGPASSWORD", "PGUSER"):
            env.pop(k, None)
        if os.geteuid() == 0:
            shutil.chown(replica.parent if replica.parent.exists() else base, "postgres", "postgres")
        r = run(as_pg + ["bash", str(base / "basebackup.sh")], env=env, timeout=300)
        assert r.returncode == 0, r.stdout + r.stderr
        assert (replica / "standby.signal").exists()
        r = run(as_pg + ["bash", str(base / "basebackup.sh")], env=env, timeout=60)
        assert r.returncode == 0 and "already holds a cluster" in r.stdout  # idempotent

        r = pg_ctl(replica, "-l", str(base / "replica.log"), "-w", "-o", settings(r_args, rport), "start")
        assert r.returncode == 0, r.stdout + r.stderr + tail(str(base / "replica.log"))
        started.append(replica)

        def conn(port, user, password, db="app"):
            return psycopg.connect(host="127.0.0.1", port=port, user=user, password=password,
                                   dbname=db, autocommit=True, connect_timeout=5)

        with conn(pport, "app", pw["APP_PASSWORD"]) as c:
            c.execute("CREATE TABLE t (v int)")
            c.execute("INSERT INTO t VALUES (42)")
            assert c.execute("SELECT count(*) FROM pg_extension WHERE extname = 'pg_stat_statements'").fetchone()[0] == 1
        with pytest.raises(psycopg.OperationalError):
            conn(pport, "app", "wrong-password").close()
        deadline = time.monotonic() + 30
        with conn(rport, "app", pw["APP_PASSWORD"]) as c:
            while True:
                try:
                    if c.execute("SELECT v FROM t").fetchone() == (42,):
                        break
                except psycopg.errors.UndefinedTable:
                    pass
                assert time.monotonic() < deadline, "the replica did not replay the primary's writes"
                time.sleep(0.2)
        with conn(rport, "fastnext_health", pw["HEALTH_PASSWORD"]) as c:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                c.execute("SELECT v FROM t")  # the prober sees no application data
            row = c.execute(
                "SELECT pg_catalog.pg_is_in_recovery(), pg_catalog.pg_last_wal_replay_lsn(), "
                "pg_catalog.pg_last_wal_receive_lsn()"
            ).fetchone()
            assert row[0] is True and row[1] is not None and row[2] is not None
        with psycopg.connect(host=str(base), port=pport, user="postgres", dbname="postgres", autocommit=True) as c:
            rows = c.execute("SELECT application_name, state FROM pg_stat_replication").fetchall()
        assert rows == [("postgres-replica-0", "streaming")]
    finally:
        for d in reversed(started):
            pg_ctl(d, "-m", "immediate", "stop")
        shutil.rmtree(base, ignore_errors=True)


# ====================================================================== Dockerfile


def dockerfile_instructions(path=DOCKERFILE):
    """[(stage index, INSTRUCTION, argument text)] with continuations joined."""
    out, stage, buf = [], -1, ""
    with open(path) as f:
        for raw in f:
            line = raw.rstrip("\n")
            if not buf and (not line.strip() or line.lstrip().startswith("#")):
                continue
            if buf and line.lstrip().startswith("#"):
                continue  # comment inside a continuation
            if line.endswith("\\"):
                buf += line[:-1] + " "
                continue
            buf += line
            instr, _, args = buf.strip().partition(" ")
            instr = instr.upper()
            if instr == "FROM":
                stage += 1
            out.append((stage, instr, args.strip()))
            buf = ""
    return out


def shell_commands(text):
    """The simple commands of a shell line, as token lists."""
    lex = shlex.shlex(text, posix=True, punctuation_chars=True)
    lex.whitespace_split = True
    cmds, cur = [], []
    for tok in lex:
        if tok in ("&&", "||", ";", "|", "&"):
            if cur:
                cmds.append(cur)
            cur = []
        else:
            cur.append(tok)
    if cur:
        cmds.append(cur)
    return cmds


def cmake_invocations(cmds):
    """{(flag, value)} of each cmake command: `-S .`, `-B build`, `--build build`."""
    out = []
    for c in cmds:
        if c and c[0] == "cmake":
            pairs = set()
            for i, t in enumerate(c[1:], 1):
                if t in ("-S", "-B", "--build", "--target", "-G") and i + 1 < len(c):
                    pairs.add((t, c[i + 1]))
            out.append(pairs)
    return out


def test_dockerfile_structure():
    ins = dockerfile_instructions()
    froms = [(s, a) for s, i, a in ins if i == "FROM"]
    assert len(froms) >= 2, "multi-stage build"
    names = {}
    for s, a in froms:
        m = re.fullmatch(r"(\S+)(?:\s+AS\s+(\S+))?", a, re.I)
        assert m, a
        assert re.match(r"debian:12", m.group(1)), "Debian 12 stages: %s" % a
        if m.group(2):
            names[m.group(2)] = s
    final = froms[-1][0]
    last = [(i, a) for s, i, a in ins if s == final]
    copies_from = [a for i, a in last if i == "COPY" and a.startswith("--from=")]
    assert any(a.split()[0].split("=", 1)[1] in names for a in copies_from), "runtime copies from the build stage"
    users = [a for i, a in last if i == "USER"]
    assert users, "the runtime stage sets USER"
    uid = users[-1].split(":")[0]
    assert uid not in ("0", "root") and (not uid.isdigit() or int(uid) >= 1000), users[-1]
    hc = [a for i, a in last if i == "HEALTHCHECK"]
    assert len(hc) == 1 and LIVENESS in hc[0], hc
    env_admin = re.search(r"ADMIN_LISTEN=\S*:(\d+)", " ".join(a for i, a in last if i == "ENV"))
    assert env_admin and ":%s%s" % (env_admin.group(1), LIVENESS) in hc[0], "HEALTHCHECK hits ADMIN_LISTEN"
    exposed = " ".join(a for i, a in last if i == "EXPOSE").split()
    assert "6432" in exposed and "9930" in exposed
    ep = [a for i, a in last if i == "ENTRYPOINT"]
    assert ep and json.loads(ep[-1])[0].endswith("fastnext-proxy"), "exec-form ENTRYPOINT"


def test_dockerfile_build_commands_match_readme():
    """The Dockerfile builds with the README's commands (it may add flags such
    as -DCMAKE_BUILD_TYPE or --target, never drop or change these)."""
    readme = open(os.path.join(ROOT, "README.md")).read()
    spans = re.findall(r"```[a-z]*\n(.*?)```", readme, re.S) + re.findall(r"`([^`\n]+)`", readme)
    want = []
    for span in spans:
        for line in span.splitlines():
            if "cmake" in line:
                want += cmake_invocations(shell_commands(line))
    want = [w for w in want if w]
    assert {("-S", "."), ("-B", "build")} in want and {("--build", "build")} in want, (
        "the README no longer shows `cmake -S . -B build && cmake --build build`: %s" % want
    )
    ins = dockerfile_instructions()
    have = []
    for s, i, a in ins:
        if i == "RUN" and s == 0:
            have += cmake_invocations(shell_commands(a))
    for w in want:
        assert any(w <= h for h in have), "Dockerfile build stage lacks `cmake %s`: it runs %s" % (
            " ".join("%s %s" % p for p in sorted(w)), have
        )
    configure = next(i for i, h in enumerate(have) if {("-S", "."), ("-B", "build")} <= h)
    build = next(i for i, h in enumerate(have) if ("--build", "build") in h)
    assert configure < build


def _apt_packages(args):
    pkgs = []
    for c in shell_commands(args):
        if c[:1] == ["apt-get"] and "install" in c:
            pkgs += [t for t in c[c.index("install") + 1 :] if not t.startswith("-")]
    return set(pkgs)


def test_dockerfile_packages():
    """The build stage installs the build tools and libraries scripts/deps.sh
    installs (test-only ones aside); the runtime stage installs the package of
    every shared library the release binary links."""
    text = open(os.path.join(ROOT, "scripts", "deps.sh")).read()
    body = re.search(r"PACKAGES=\((.*?)\n\)", text, re.S).group(1)
    groups, cur = {}, None
    for line in body.splitlines():
        line = line.strip()
        if line.startswith("#"):
            cur = line.lstrip("# ").strip()
            groups[cur] = []
        elif line and cur:
            groups[cur] += line.split()
    test_only = {"libcunit1-dev"}
    need_build = {"build-essential", "cmake", "pkg-config"} | (set(groups["libraries"]) - test_only)
    ins = dockerfile_instructions()
    stages = max(s for s, _, _ in ins)
    build = set().union(*[_apt_packages(a) for s, i, a in ins if s == 0 and i == "RUN"])
    runtime = set().union(*[_apt_packages(a) for s, i, a in ins if s == stages and i == "RUN"])
    assert need_build <= build, "build stage lacks %s" % sorted(need_build - build)
    assert "curl" in runtime, "the HEALTHCHECK uses curl"

    if not os.access(RELEASE_BIN, os.X_OK):
        pytest.skip("build/fastnext-proxy is not built: runtime libraries not checked")
    r = run(["readelf", "-d", RELEASE_BIN])
    assert r.returncode == 0, r.stderr
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", r.stdout)
    assert needed
    base = {"libc6", "libgcc-s1", "zlib1g"}  # in debian:12-slim already
    missing = []
    for so in needed:
        r = run(["dpkg", "-S", "*/" + so])
        owners = {l.split(":")[0] for l in r.stdout.splitlines() if l.rstrip().endswith("/" + so)}
        assert owners, "no Debian package ships %s" % so
        if not owners & (runtime | base):
            missing.append("%s (%s)" % (so, ", ".join(sorted(owners))))
    assert not missing, "runtime stage lacks the packages of: %s" % missing


def test_dockerfile_copies_what_cmake_builds():
    cml = open(os.path.join(ROOT, "CMakeLists.txt")).read()
    dirs = set(re.findall(r"\b([a-z]+)/\*\.c\b", re.search(r"file\(GLOB PX_CORE_SOURCES[^)]*\)", cml).group(0)))
    dirs |= set(re.search(r"target_include_directories\(pxcore PUBLIC ([^)]*)\)", cml).group(1).split())
    dirs.add(re.search(r"add_executable\(fastnext-proxy ([^/]+)/", cml).group(1))
    copied = set()
    for s, i, a in dockerfile_instructions():
        if s == 0 and i == "COPY":
            srcs = a.split()[:-1]
            copied |= {x.strip("./").rstrip("/") or "." for x in srcs}
    assert "." in copied or ({"CMakeLists.txt"} | dirs) <= copied, (
        "the build stage must COPY %s" % sorted(({"CMakeLists.txt"} | dirs) - copied)
    )


def test_dockerfile_lint(deploy_node):
    """dockerfile-utils (npm; the linter of VS Code's Docker support) must
    report nothing, and our own best-practice rules hold. (npm dockerfilelint
    was tried: it rejects HEALTHCHECK --start-period, a valid flag since
    Docker 17.05, so it is not used.)"""
    r = run([deploy_node, os.path.join(HERE, "node_modules", "dockerfile-utils", "bin", "dockerfile-utils"),
             "lint", DOCKERFILE])
    assert r.returncode == 0 and not r.stdout.strip(), r.stdout + r.stderr

    problems = []
    ins = dockerfile_instructions()
    stage_names = []
    for s, i, a in ins:
        if i == "FROM":
            img = a.split()[0]
            if ":" not in img or img.endswith(":latest"):
                problems.append("FROM %s: pin a tag" % img)
            if " as " in a.lower():
                stage_names.append(a.split()[-1])
        if i == "ADD":
            problems.append("ADD %s: use COPY" % a)
        if i == "COPY" and a.startswith("--from="):
            src = a.split()[0].split("=", 1)[1]
            if src not in stage_names:
                problems.append("COPY --from=%s: no such earlier stage" % src)
        if i == "WORKDIR" and not a.startswith("/"):
            problems.append("WORKDIR %s: use an absolute path" % a)
        if i in ("ENTRYPOINT", "CMD") and not a.startswith("["):
            problems.append("%s %s: use the exec (JSON) form" % (i, a))
        if i == "RUN":
            cmds = shell_commands(a)
            for c in cmds:
                if c[:1] == ["sudo"]:
                    problems.append("RUN uses sudo")
                if c[:1] == ["apt-get"] and "install" in c:
                    if "-y" not in c and "--yes" not in c:
                        problems.append("apt-get install without -y")
                    if "--no-install-recommends" not in c:
                        problems.append("apt-get install without --no-install-recommends")
                    if not any(x[:2] == ["apt-get", "update"] for x in cmds):
                        problems.append("apt-get install without apt-get update in the same RUN")
                    if not any(x[:2] == ["rm", "-rf"] and "/var/lib/apt/lists/*" in x for x in cmds):
                        problems.append("apt-get install without rm -rf /var/lib/apt/lists/*")
            if re.search(r"curl[^|]*\|\s*(ba)?sh", a):
                problems.append("RUN pipes a download into a shell")
        if i == "EXPOSE":
            for p in a.split():
                if not (p.split("/")[0].isdigit() and 0 < int(p.split("/")[0]) < 65536):
                    problems.append("EXPOSE %s" % p)
    assert not problems, problems


# ====================================================================== Grafana


def dashboards():
    d = os.path.join(GRAFANA, "dashboards")
    out = {}
    for f in sorted(os.listdir(d)):
        if f.endswith(".json"):
            with open(os.path.join(d, f)) as fh:
                out[f] = json.load(fh)
    return out


def test_dashboards_structure():
    ds = dashboards()
    assert set(ds) >= {
        "fastnext-database.json",
        "fastnext-cache.json",
        "fastnext-application.json",
        "fastnext-system.json",
    }
    uids = set()
    for f, d in ds.items():
        assert d["uid"] not in uids and len(d["uid"]) <= 40, f
        uids.add(d["uid"])
        assert d["title"] and 36 <= d["schemaVersion"] <= 41, f
        tvars = {v["name"]: v for v in d["templating"]["list"]}
        assert tvars["datasource"]["type"] == "datasource" and tvars["datasource"]["query"] == "prometheus"
        ids = set()
        panels = list(promql.iter_panels(d["panels"]))
        assert len(panels) >= 6, f
        for p in panels:
            assert p["id"] not in ids, (f, p["id"])
            ids.add(p["id"])
            g = p["gridPos"]
            assert 0 <= g["x"] and g["x"] + g["w"] <= 24 and g["h"] > 0, (f, p["title"])
            if p["type"] in ("row", "text"):
                continue
            assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, (f, p["title"])
            assert p["targets"], (f, p["title"])
            refs = [t["refId"] for t in p["targets"]]
            assert len(refs) == len(set(refs)), (f, p["title"])
            for t in p["targets"]:
                assert t["expr"].strip(), (f, p["title"])
                names = promql.metric_names(t["expr"])
                assert names and all(n.startswith("fastnext_") for n in names), (f, p["title"], names)
        # rows never overlap panels: walk the grid
        cells = set()
        for p in panels:
            g = p["gridPos"]
            for x in range(g["x"], g["x"] + g["w"]):
                for y in range(g["y"], g["y"] + g["h"]):
                    assert (x, y) not in cells, (f, p["title"], "overlaps another panel")
                    cells.add((x, y))


def test_dashboards_grafana_schema(deploy_node):
    """Type-checked against @grafana/schema's Dashboard (see validate_dashboards.mjs)."""
    r = run([deploy_node, os.path.join(HERE, "validate_dashboards.mjs"), os.path.join(GRAFANA, "dashboards")])
    print(r.stdout)
    assert r.returncode == 0, r.stdout + r.stderr


def test_dashboard_panels_cover_the_issue():
    """What issue 7 asks each dashboard to show (by metric)."""
    want = {
        "fastnext-database.json": [
            "fastnext_db_pool_size", "fastnext_db_pool_checked_out", "fastnext_db_pool_idle",
            "fastnext_db_pool_waiting", "fastnext_db_pool_pinned", "fastnext_pool_waits_total",
            "fastnext_pool_timeouts_total", "fastnext_pool_wait_seconds_bucket",
            "fastnext_query_duration_seconds_bucket", "fastnext_replica_up",
            "fastnext_replica_lag_seconds", "fastnext_replica_lag_bytes", "fastnext_primary_up",
        ],
        "fastnext-cache.json": ["fastnext_query_duration_seconds_count", "fastnext_query_duration_seconds_bucket"],
        "fastnext-application.json": [
            "fastnext_queries_total", "fastnext_transactions_total", "fastnext_protocol_errors_total",
            "fastnext_login_failures_total", "fastnext_client_connections_rejected_total",
            "fastnext_query_duration_seconds_bucket",
        ],
        "fastnext-system.json": [
            "fastnext_cpu_percent", "fastnext_process_resident_memory_bytes", "fastnext_process_open_fds",
            "fastnext_client_connections", "fastnext_server_connections_opened_total",
            "fastnext_server_connections_closed_total", "fastnext_iobuf_in_use",
        ],
    }
    ds = dashboards()
    for f, names in want.items():
        used = set()
        for _, e in promql.dashboard_queries(ds[f]):
            used |= promql.metric_names(e)
        assert set(names) <= used, (f, sorted(set(names) - used))
    qd = [e for _, e in promql.dashboard_queries(ds["fastnext-database.json"]) if "histogram_quantile" in e and "route" in e]
    assert {q.split(",")[0] for q in qd} >= {"histogram_quantile(0.5", "histogram_quantile(0.95", "histogram_quantile(0.99"}


def test_grafana_provisioning():
    with open(os.path.join(GRAFANA, "provisioning", "datasources", "prometheus.yaml")) as f:
        ds = yaml.safe_load(f)
    assert ds["apiVersion"] == 1
    (prom,) = [d for d in ds["datasources"] if d["type"] == "prometheus"]
    assert prom["uid"] and prom["url"].startswith("http") and prom.get("isDefault") is True
    provs = os.listdir(os.path.join(GRAFANA, "provisioning", "dashboards"))
    assert provs
    for name in provs:
        with open(os.path.join(GRAFANA, "provisioning", "dashboards", name)) as f:
            pv = yaml.safe_load(f)
        assert pv["apiVersion"] == 1
        for p in pv["providers"]:
            assert p["type"] == "file" and p["options"]["path"].startswith("/"), p


def test_promql_metric_extraction():
    cases = {
        'histogram_quantile(0.95, sum by (le, route) (rate(fastnext_query_duration_seconds_bucket{job=~"$job", cache="hit"}[$__rate_interval])))': {"fastnext_query_duration_seconds_bucket"},
        "sum(rate(a_total[5m])) / on(instance) group_left(version) b": {"a_total", "b"},
        "time() - fastnext_process_start_time_seconds": {"fastnext_process_start_time_seconds"},
        "x offset 5m": {"x"},
        "1e-9 + foo * 100": {"foo"},
        'count by (version) (fastnext_build_info{x="a{b} c"})': {"fastnext_build_info"},
        "sum without (pod) (m1) and m2 unless m3 or m4": {"m1", "m2", "m3", "m4"},
        "topk(5, foo)": {"foo"},
        "fastnext_up == bool 1": {"fastnext_up"},
        "max_over_time(x[5m:1m])": {"x"},
        "sum by(le)(y)": {"y"},
        "a:b:c + 0x1F": {"a:b:c"},
        "${foo} + bar{l=\"$x\"}": {"bar"},
    }
    for expr, want in cases.items():
        assert promql.metric_names(expr) == want, expr
    assert promql.variable_expr({"query": 'label_values(fastnext_up{job=~"$job"}, instance)'}) == 'fastnext_up{job=~"$job"}'
    assert promql.variable_expr("label_values(job)") is None
    fams, samples = promql.parse_exposition(
        "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_sum 0.5\nh_count 1\n# TYPE g gauge\n# TYPE c_total counter\nc_total{a=\"x\\\"y\"} 3\n"
    )
    assert promql.series_names(fams, samples) == {"h_bucket", "h_sum", "h_count", "g", "c_total"}


def _source_metrics():
    """Families the proxy's C sources register (name -> type)."""
    out = {}
    pat = re.compile(
        r'px_(metrics_family|admin_gauge|admin_counter|admin_pool_family)\(\s*\w+,\s*"(fastnext_\w+)"(?:,\s*"(\w+)")?'
    )
    for d in ("admin", "proxy"):
        for f in os.listdir(os.path.join(ROOT, d)):
            if f.endswith(".c"):
                text = open(os.path.join(ROOT, d, f)).read()
                for kind, name, typ in pat.findall(text):
                    out[name] = typ if kind == "metrics_family" else ("counter" if kind == "admin_counter" else "gauge")
    return out


def _unknown_metrics(valid):
    bad = []
    for f, d in dashboards().items():
        for where, expr in promql.dashboard_queries(d):
            for n in sorted(promql.metric_names(expr) - valid):
                bad.append("%s %s: %s" % (f, where, n))
    return bad


def test_dashboards_use_metrics_the_sources_register():
    """Early warning without a stack: every metric a panel queries is one the
    C sources register (the live test below is the authority)."""
    fams = _source_metrics()
    assert "fastnext_db_pool_size" in fams and fams.get("fastnext_query_duration_seconds") == "histogram"
    bad = _unknown_metrics(promql.series_names(fams, []))
    assert not bad, "panels query metrics the proxy does not register:\n" + "\n".join(bad)


# ---------------------------------------------------------------- live /metrics


@pytest.fixture(scope="module")
def scrape(live_proxy, stack):
    """/metrics of a running proxy, after a client query (so pools exist) and
    once every replica has been probed."""
    import psycopg

    with psycopg.connect(host="127.0.0.1", port=live_proxy["port"], user="fnx", password="fnx_pass",
                         dbname="fnx", autocommit=True, connect_timeout=5) as c:
        assert c.execute("SELECT 41 + 1").fetchone()[0] == 42
    deadline = time.monotonic() + 15
    while True:
        status, text = http_get(live_proxy["admin"] + "/metrics")
        assert status == 200, (status, text[:500])
        fams, samples = promql.parse_exposition(text)
        probed = sum(1 for n, _, _ in samples if n == "fastnext_replica_lag_seconds")
        if probed >= len(stack["replicas"]) or time.monotonic() > deadline:
            return text, fams, samples
        time.sleep(0.3)


def test_dashboards_use_only_exported_metrics(scrape):
    """THE check: every metric any panel or variable queries is exported by
    a live proxy's /metrics (histogram _bucket/_sum/_count map to their
    family)."""
    text, fams, samples = scrape
    valid = promql.series_names(fams, samples)
    assert "fastnext_up" in valid and len(valid) > 20, text[:2000]
    bad = _unknown_metrics(valid)
    assert not bad, "panels query metrics the proxy does not export:\n" + "\n".join(bad)


def test_metrics_have_no_duplicate_series(scrape):
    """Prometheus drops all but one sample of series that repeat a name and
    label set in one scrape, so such series would show wrong numbers."""
    text, fams, samples = scrape
    seen, dups = set(), []
    for name, labels, _ in samples:
        key = (name, labels)
        if key in seen:
            dups.append("%s%s" % (name, dict(labels)))
        seen.add(key)
    assert not dups, "series exported more than once (add the label that tells them apart):\n" + "\n".join(
        sorted(set(dups))
    )


def test_docs_list_only_missing_metrics(scrape):
    """docs/deploy.md's "Dashboards to extend" names metrics the proxy does not
    export yet; once one is exported, a panel should use it and the list shrink."""
    text, fams, samples = scrape
    valid = promql.series_names(fams, samples) | set(fams)
    doc = open(os.path.join(ROOT, "docs", "deploy.md")).read()
    m = re.search(r"^### Dashboards to extend\n(.*?)(?=^#{1,3} |\Z)", doc, re.S | re.M)
    assert m, "docs/deploy.md has no '### Dashboards to extend' section"
    items = re.findall(r"^- .*?(?=^- |^\s*$)", m.group(1), re.S | re.M)  # the bullet list
    listed = set(re.findall(r"`(fastnext_[a-z0-9_]+)`", "".join(items)))
    assert listed, "the section lists no metric"
    now = sorted(n for n in listed if n in valid or n + "_bucket" in valid)
    assert not now, "now exported, give them panels and drop them from the list: %s" % now


PROM_BIN = shutil.which("prometheus")


@pytest.mark.skipif(not PROM_BIN, reason="the prometheus server binary is not installed (apt: prometheus)")
def test_dashboard_queries_evaluate_in_prometheus(live_proxy, scrape, tmp_path):
    """A real Prometheus scrapes the live proxy; every panel and variable query
    (Grafana variables filled in) must parse and return data, so a typo in a
    label matcher (cache="hits") fails too."""
    port = free_port()
    admin = live_proxy["admin"].split("//", 1)[1]
    cfg = tmp_path / "prometheus.yml"
    cfg.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n  - job_name: fastnext-proxy\n    metrics_path: /metrics\n"
        "    static_configs:\n      - targets: ['%s']\n" % admin
    )
    log = tmp_path / "prometheus.log"
    with open(log, "wb") as f:
        proc = subprocess.Popen(
            [PROM_BIN, "--config.file=%s" % cfg, "--storage.tsdb.path=%s" % (tmp_path / "data"),
             "--web.listen-address=127.0.0.1:%d" % port, "--log.level=warn"],
            stdout=f, stderr=f, stdin=subprocess.DEVNULL, cwd=str(tmp_path), preexec_fn=pdeathsig,
        )
    api = "http://127.0.0.1:%d/api/v1/query?query=" % port

    def query(expr):
        status, body = http_get(api + urllib.parse.quote(expr), timeout=10)
        assert status == 200, (expr, status, body[:500])
        return json.loads(body)["data"]["result"]

    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, tail(str(log))
            if http_get("http://127.0.0.1:%d/-/ready" % port)[0] == 200:
                try:
                    r = query('count_over_time(fastnext_up{job="fastnext-proxy"}[30s])')
                    if r and float(r[0]["value"][1]) >= 5:
                        break
                except (AssertionError, ValueError, KeyError):
                    pass
            assert time.monotonic() < deadline, "prometheus did not scrape the proxy:\n" + tail(str(log))
            time.sleep(0.5)
        subst = [("$__rate_interval", "10s"), ("${datasource}", ""), ("$job", "fastnext-proxy"), ("$instance", ".*")]
        empty = []
        for f, d in dashboards().items():
            for where, expr in promql.dashboard_queries(d):
                e = expr
                for a, b in subst:
                    e = e.replace(a, b)
                if not query(e):
                    empty.append("%s %s: %s" % (f, where, e))
        assert not empty, "queries that return nothing from a live proxy:\n" + "\n".join(empty)
    finally:
        stop_process(proc)
