"""Fixtures for the deployment tests (tests/deploy), imported by the test
modules. (No conftest.py: tests/e2e's modules `from conftest import ...`,
and a second conftest module would shadow theirs when both suites run in
one pytest session.)

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

import os
import shutil
import socket
import subprocess
import time

import pytest

from deploy_support import (
    HERE,
    PG_HOST,
    PG_PORT,
    PROXY_BIN,
    STACK_DB,
    STACK_PASSWORD,
    STACK_USER,
    free_port,
    http_get,
    k8s_objects,
    pdeathsig,
    stop_process,
    tail,
)


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
