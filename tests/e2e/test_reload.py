"""SIGHUP reloads the configuration file and the auth file: reloadable keys
take effect, keys that need a restart keep their value and are logged."""
import json
import signal
import http.client

import psycopg
import pytest

from conftest import skip_if_direct, wait_until


def admin_config(ep):
    c = http.client.HTTPConnection("127.0.0.1", ep.admin_port, timeout=3)
    try:
        c.request("GET", "/api/v1/config")
        r = c.getresponse()
        return json.loads(r.read())
    finally:
        c.close()


def find_value(cfg, key):
    """The effective value of @key in /api/v1/config, whatever its exact shape."""
    text = json.dumps(cfg)
    i = text.find('"%s"' % key)
    assert i >= 0, "key %s not in /api/v1/config" % key
    return text[i:i + 200]


def test_sighup_applies_reloadable_keys_and_logs_the_rest(proxy, tmp_path):
    skip_if_direct()
    ini = tmp_path / "proxy.ini"
    ini.write_text("[fastnext]\nDB_POOL_TIMEOUT = 5\nMAX_CLIENT_CONN = 100\nWORKERS = 2\n")
    ep = proxy(env={"DB_POOL_TIMEOUT": None, "MAX_CLIENT_CONN": None, "WORKERS": None},
               args=("--config", str(ini)))
    with ep.connect(autocommit=True) as c:
        assert c.execute("SELECT 1").fetchone() == (1,)
    assert '"100"' in find_value(admin_config(ep), "MAX_CLIENT_CONN") or \
        "100" in find_value(admin_config(ep), "MAX_CLIENT_CONN")

    ini.write_text("[fastnext]\nDB_POOL_TIMEOUT = 7\nMAX_CLIENT_CONN = 250\nWORKERS = 1\n")
    ep.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: "configuration reloaded" in ep.stderr_text(), 5, what="the reload")
    log = ep.stderr_text()
    assert "MAX_CLIENT_CONN changed" in log
    assert "WORKERS changed but needs a restart" in log
    assert "250" in find_value(admin_config(ep), "MAX_CLIENT_CONN")
    # the running proxy keeps serving clients after the reload
    with ep.connect(autocommit=True) as c:
        assert c.execute("SELECT 2").fetchone() == (2,)


def test_sighup_reloads_the_auth_file(proxy, tmp_path):
    skip_if_direct()
    ep = proxy()
    auth = ep.env["AUTH_FILE"]
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(ep.conninfo(user="fnx", password="a-new-password")).close()
    # a new password for fnx in the auth file: the proxy accepts it after SIGHUP
    # (its server login uses the same file's secret, so keep the real one for
    # the server side by switching the client-facing check only)
    lines = open(auth).read().splitlines()
    lines = [l for l in lines if not l.startswith('"fnx" ')] + ['"fnx" "a-new-password"']
    open(auth, "w").write("\n".join(lines) + "\n")
    ep.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: "configuration reloaded" in ep.stderr_text(), 5, what="the reload")
    # the client-side check now wants the new password; the old one is refused
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(ep.conninfo(user="fnx", password="fnx_pass")).close()
    # the new password passes the proxy's check (the server then refuses it:
    # the server still has the old password), which shows up as a server login error
    with pytest.raises(psycopg.OperationalError) as ex:
        psycopg.connect(ep.conninfo(user="fnx", password="a-new-password")).close()
    assert "password authentication failed" in str(ex.value)
    ep.assert_healthy(user="fnx_md5")
