"""Helpers and settings shared by tests/deploy's conftest.py and test files
(kept out of conftest.py so `from ... import` never picks up another suite's
conftest module)."""

import ctypes
import os
import signal
import socket
import subprocess
import urllib.error
import urllib.request

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


