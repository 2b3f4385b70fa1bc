"""Fixtures for the deployment tests (tests/deploy).

Everything here is offline: no container engine, no cluster. What needs more
than files:

- node + the npm packages of tests/deploy/package.json (kubernetes-models,
  @kubernetes-models/prometheus-operator, @grafana/schema + typescript,
  dockerfile-utils). `deploy_node` installs them with `npm ci` when
  tests/deploy/node_modules is missing or older than package-lock.json.
- the proxy binary (PX_PROXY_BIN, default build/fastnext-proxy) and the test
  stack's environment (PX_PG_PORT, PX_PG_REPLICA1_PORT, ... from
  scripts/stack.sh / scripts/with-stack.sh) for the live /metrics tests;
  without PX_PG_PORT those tests skip.
- redis-server / redis-cli and PostgreSQL 15's binaries (scripts/deps.sh
  installs both) for the tests that run the Redis Cluster and PostgreSQL
  replication scripts of k8s/ on this machine.

The proxy start logic is a trimmed copy of tests/e2e/conftest.py's (that
conftest carries the e2e suite's hooks, so it is not imported).
"""

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request

import pytest
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
K8S = os.path.join(ROOT, "k8s")
GRAFANA = os.path.join(ROOT, "grafana")

PROXY_BIN = os.environ.get("PX_PROXY_BIN") or os.path.join(ROOT, "build", "fastnext-proxy")
if not os.path.isabs(PROXY_BIN):
    PROXY_BIN = os.path.join(ROOT, PROXY_BIN)

PG_HOST = os.environ.get("PX_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ["PX_PG_PORT"]) if os.environ.get("PX_PG_PORT") else None
PGBIN = os.environ.get("PX_PGBIN", "/usr/lib/postgresql/15/bin")

# The stack's login role (scripts/stack.sh creates it).
STACK_USER, STACK_PASSWORD, STACK_DB = "fnx", "fnx_pass", "fnx"


# ---------------------------------------------------------------- helpers


def tail(path, n=30):
    try:
        with open(path, "rb") as f:
            return "\n".join(f.read().decode("utf-8", "replace").splitlines()[-n:])
    except OSError:
        return ""


def free_port(also_plus=None):
    """A free TCP port on 127.0.0.1; with also_plus=N, port+N must be free too
    (Redis Cluster's bus port is port + 10000)."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if also_plus is None:
            return port
        if port + also_plus > 65535:
            continue
        try:
            with socket.socket() as s2:
                s2.bind(("127.0.0.1", port + also_plus))
            return port
        except OSError:
            continue
    raise RuntimeError("no free port found")


def pdeathsig():
    """Child setup: die with the test process."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def stop_process(proc, grace=10.0):
    """SIGTERM by PID, then SIGKILL after grace seconds."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def load_yaml_docs(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def k8s_objects():
    """Every object of every manifest in k8s/ (the Kustomization included)."""
    out = []
    for name in sorted(os.listdir(K8S)):
        if name.endswith((".yaml", ".yml")):
            for d in load_yaml_docs(os.path.join(K8S, name)):
                d["__file__"] = name
                out.append(d)
    return out


def http_get(url, timeout=3.0):
    """(status, body text); status 0 when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")
    except (OSError, urllib.error.URLError):
        return 0, ""


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def objects():
    return k8s_objects()


@pytest.fixture(scope="session")
def find(objects):
    def get(kind, name):
        for o in objects:
            if o.get("kind") == kind and o.get("metadata", {}).get("name") == name:
                return o
        raise AssertionError("k8s/ defines no %s %s" % (kind, name))

    return get


@pytest.fixture(scope="session")
def node():
    exe = shutil.which("node")
    if not exe:
        pytest.fail("node is required for the deployment validators (tests/deploy/*.mjs)")
    return exe


@pytest.fixture(scope="session")
def deploy_node(node):
    """node, with tests/deploy/node_modules installed from package-lock.json."""
    mods = os.path.join(HERE, "node_modules")
    lock = os.path.join(HERE, "package-lock.json")
    stamp = os.path.join(mods, ".package-lock.json")
    if not os.path.exists(stamp) or os.path.getmtime(stamp) < os.path.getmtime(lock):
        npm = shutil.which("npm")
        if not npm:
            pytest.fail("npm is needed to install tests/deploy/node_modules (npm ci)")
        r = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=HERE,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if r.returncode != 0:
            pytest.fail("npm ci in tests/deploy failed:\n%s%s" % (r.stdout, r.stderr))
    return node


@pytest.fixture(scope="session")
def stack():
    if PG_PORT is None:
        pytest.skip(
            "PX_PG_PORT is not set: run under scripts/with-stack.sh "
            "(or source $PX_STACK_DIR/env.sh after scripts/stack.sh start)"
        )
    return {
        "host": PG_HOST,
        "port": PG_PORT,
        "replicas": [
            int(os.environ[k])
            for k in ("PX_PG_REPLICA1_PORT", "PX_PG_REPLICA2_PORT")
            if os.environ.get(k)
        ],
        "redis": int(os.environ.get("PX_REDIS_PORT", "0") or 0),
    }


@pytest.fixture(scope="module")
def live_proxy(stack, tmp_path_factory):
    """The proxy under test, configured like the Kubernetes sidecar (primary,
    both replicas, Redis, the cache on) but on the stack's loopback ports.
    Yields {"admin": "http://127.0.0.1:PORT", "port": client port, "proc": Popen}.
    Skips (with the reason) only when the admin port does not answer."""
    if not os.access(PROXY_BIN, os.X_OK):
        pytest.fail("proxy binary %s not found: build it first (or set PX_PROXY_BIN)" % PROXY_BIN)
    tmp = tmp_path_factory.mktemp("proxy")
    auth = tmp / "userlist.txt"
    auth.write_text('"%s" "%s"\n' % (STACK_USER, STACK_PASSWORD))
    port, admin = free_port(), free_port()
    env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "TZ") if k in os.environ}
    for k, v in os.environ.items():
        if k.endswith("SAN_OPTIONS"):
            env[k] = v
    env.update(
        PROXY_LISTEN="127.0.0.1:%d" % port,
        ADMIN_LISTEN="127.0.0.1:%d" % admin,
        WORKERS="2",
        POSTGRES_SERVER=stack["host"],
        POSTGRES_PORT=str(stack["port"]),
        POSTGRES_DB=STACK_DB,
        POSTGRES_USER=STACK_USER,
        POSTGRES_PASSWORD=STACK_PASSWORD,
        POSTGRES_READ_REPLICAS=",".join("127.0.0.1:%d" % p for p in stack["replicas"]),
        POOL_MODE="transaction",
        DB_POOL_SIZE="4",
        DB_MAX_OVERFLOW="2",
        AUTH_TYPE="scram-sha-256",
        AUTH_FILE=str(auth),
        CACHE_ENABLED="true",
        ADMIN_TOKEN="deploy-test-token",
        LOG_LEVEL="info",
    )
    if stack["redis"]:
        env.update(REDIS_HOST="127.0.0.1", REDIS_PORT=str(stack["redis"]))
    if not env["POSTGRES_READ_REPLICAS"]:
        del env["POSTGRES_READ_REPLICAS"]
    log = tmp / "proxy.log"
    with open(log, "wb") as f:
        proc = subprocess.Popen(
            [PROXY_BIN],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=f,
            stderr=f,
            cwd=str(tmp),
            preexec_fn=pdeathsig,
        )
    base = "http://127.0.0.1:%d" % admin
    try:
        deadline = time.monotonic() + 15
        while True:
            if proc.poll() is not None:
                pytest.fail("proxy exited with %s at startup:\n%s" % (proc.returncode, tail(log)))
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("proxy did not accept on port %d within 15 s:\n%s" % (port, tail(log)))
            time.sleep(0.1)
        deadline = time.monotonic() + 5
        while http_get(base + "/api/v1/scaling/health/liveness")[0] == 0:
            if time.monotonic() > deadline:
                pytest.skip(
                    "the proxy's admin port (ADMIN_LISTEN 127.0.0.1:%d) does not answer: "
                    "this build does not start the admin HTTP server" % admin
                )
            time.sleep(0.1)
        yield {"admin": base, "port": port, "proc": proc, "log": str(log)}
    finally:
        stop_process(proc)
