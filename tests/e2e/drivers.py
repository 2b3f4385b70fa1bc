"""What the driver tests (test_driver_*.py) share: PostgreSQL itself as the
reference endpoint, running a client program's scenario and reading the JSON
summary it prints last, running a scenario through the proxy and directly
(each with a fresh table), and marking a known proxy bug."""

import json
import subprocess

import pytest

from conftest import DIRECT, PG_HOST, PG_PORT, Endpoint, pg_env


def direct():
    """PostgreSQL itself, for the comparisons."""
    return Endpoint(PG_HOST, PG_PORT)


def run_client(argv, ep, label, timeout=45, extra_env=None, cwd=None, **env):
    """Run argv (a client program and its scenario) against ep; fail with its
    output on a non-zero exit; return (the JSON summary on its last line,
    its stderr)."""
    e = pg_env(ep, **dict(extra_env or {}), **{k: str(v) for k, v in env.items()})
    r = subprocess.run(argv, env=e, capture_output=True, text=True, timeout=timeout, cwd=cwd)
    assert r.returncode == 0, "%s %s against %s:%d failed (exit %s):\n%s\n%s" % (
        label, argv[-1], ep.host, ep.port, r.returncode, r.stdout[-3000:], r.stderr[-3000:])
    return json.loads(r.stdout.strip().splitlines()[-1]), r.stderr


def both(run, px, scenario, make_table=None, cols=None, **env):
    """run(ep, scenario, **env) through px and directly, each with a fresh
    table of cols when given (E2E_TABLE); both summaries."""
    outs = []
    for ep in (px, direct()):
        if cols:
            env["E2E_TABLE"] = make_table(cols)
        outs.append(run(ep, scenario, **env))
    return outs


def proxy_bug(reason):
    """A known proxy bug: strict xfail through the proxy, must pass directly."""
    return pytest.mark.xfail(not DIRECT, strict=True, reason="proxy bug: " + reason)
