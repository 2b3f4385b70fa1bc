"""Startup and authentication: SCRAM (plaintext secret and verifier-only
secret), md5, trust, wrong passwords, unknown users, SSL/GSSENC negotiation,
startup parameters, and the command-line flags.

SQLSTATEs of login failures are checked with raw pgwire logins: psycopg 3.1
does not expose the SQLSTATE of a failed connection attempt.
"""

import os
import re
import subprocess

import psycopg
import pytest

import pgwire
from conftest import (
    DIRECT,
    PASSWORDS,
    PROXY_BIN,
    free_port,
    proxy_base_env,
    skip_if_direct,
)

# ---------------------------------------------------------------- client auth


def test_scram_login_with_plaintext_secret(proxy):
    px = proxy(auth="plain")
    raw = px.raw()
    try:
        codes = raw.login("fnx", "fnx", PASSWORDS["fnx"])
        assert codes[0] == pgwire.AUTH_SASL, "client was not asked for SCRAM: %r" % codes
        assert raw.backend_key is not None, "no BackendKeyData"
        assert raw.params.get("server_version", "").startswith("15"), raw.params
        rows, _ = raw.simple_query("SELECT current_user, current_database()")
        assert rows == [["fnx", "fnx"]]
    finally:
        raw.close()
    with px.connect(autocommit=True) as c:
        assert c.execute("SELECT current_user").fetchone()[0] == "fnx"


def test_scram_login_with_verifier_only_secret(proxy):
    """The auth file holds only fnx's SCRAM verifier: the proxy checks the
    client's proof with it and logs in to PostgreSQL with the recovered keys."""
    px = proxy(auth="scram")
    for _ in range(3):  # new server connections each time are fine too
        with px.connect(autocommit=True) as c:
            assert c.execute("SELECT current_user").fetchone()[0] == "fnx"
            c.execute("BEGIN")
            c.execute("SELECT 1")
            c.execute("COMMIT")
    raw = px.raw()
    try:
        codes = raw.login("fnx", "fnx", PASSWORDS["fnx"])
        assert codes[0] == pgwire.AUTH_SASL
        assert codes[-1] == pgwire.AUTH_OK
    finally:
        raw.close()


def test_scram_verifier_only_secret_rejects_wrong_password(proxy):
    px = proxy(auth="scram")
    raw = px.raw()
    try:
        with pytest.raises(pgwire.PgError) as ei:
            raw.login("fnx", "fnx", "not-the-password")
        assert ei.value.sqlstate == "28P01", ei.value.fields
    finally:
        raw.close()
    px.assert_healthy()


def test_md5_client_auth_with_md5_hash_secret(proxy):
    px = proxy(env={"AUTH_TYPE": "md5"}, auth="md5")
    raw = px.raw()
    try:
        codes = raw.login("fnx_md5", "fnx", PASSWORDS["fnx_md5"])
        assert codes[0] == pgwire.AUTH_MD5, "client was not asked for md5: %r" % codes
        rows, _ = raw.simple_query("SELECT current_user")
        assert rows == [["fnx_md5"]]
    finally:
        raw.close()
    with px.connect(user="fnx_md5", autocommit=True) as c:
        assert c.execute("SELECT current_user").fetchone()[0] == "fnx_md5"


def test_md5_client_auth_for_scram_server_user_with_plaintext_secret(proxy):
    """Client speaks md5 to the proxy, the proxy speaks SCRAM to PostgreSQL."""
    skip_if_direct("PostgreSQL's hba asks fnx for SCRAM, not md5")
    px = proxy(env={"AUTH_TYPE": "md5"}, auth="md5")
    with px.connect(user="fnx", autocommit=True) as c:
        assert c.execute("SELECT current_user").fetchone()[0] == "fnx"


def test_server_password_auth_for_fnx_plain(proxy):
    """fnx_plain's hba entry is `password`: the proxy must answer a cleartext
    request from the server with the auth file's password."""
    px = proxy(auth="plain")
    with px.connect(user="fnx_plain", autocommit=True) as c:
        assert c.execute("SELECT current_user").fetchone()[0] == "fnx_plain"


def test_trust_auth_for_fnx_trust(proxy):
    px = proxy(env={"AUTH_TYPE": "trust"})
    raw = px.raw()
    try:
        codes = raw.login("fnx_trust", "fnx", password=None)
        assert codes == [pgwire.AUTH_OK], "trust login asked for a password: %r" % codes
        rows, _ = raw.simple_query("SELECT current_user")
        assert rows == [["fnx_trust"]]
    finally:
        raw.close()
    with px.connect(user="fnx_trust", password=None, autocommit=True) as c:
        assert c.execute("SELECT current_user").fetchone()[0] == "fnx_trust"


@pytest.mark.parametrize(
    "auth_type,user,variant",
    [("scram-sha-256", "fnx", "plain"), ("md5", "fnx_md5", "md5")],
)
def test_wrong_password_gets_28P01(proxy, auth_type, user, variant):
    px = proxy(env={"AUTH_TYPE": auth_type}, auth=variant)
    raw = px.raw()
    try:
        with pytest.raises(pgwire.PgError) as ei:
            raw.login(user, "fnx", "wrong-password")
        assert ei.value.sqlstate == "28P01", ei.value.fields
        assert ei.value.fields.get("S") == "FATAL"
        assert raw.wait_closed(3), "connection left open after a failed login"
    finally:
        raw.close()
    with pytest.raises(psycopg.OperationalError, match="(?i)password authentication failed"):
        px.connect(user=user, password="wrong-password")
    px.assert_healthy(user=user)


def test_unknown_user_is_rejected_with_28P01_or_28000(proxy):
    px = proxy()
    raw = px.raw()
    try:
        with pytest.raises(pgwire.PgError) as ei:
            raw.login("e2e_no_such_user", "fnx", "whatever")
        assert ei.value.sqlstate in ("28P01", "28000"), ei.value.fields
    finally:
        raw.close()
    px.assert_healthy()


def test_startup_without_user_is_rejected(proxy):
    px = proxy()
    raw = px.raw()
    try:
        raw.send(pgwire.startup_message({"database": "fnx"}))
        kind, fields = raw.read_until_error_or_close(5)
        if kind == "error":
            assert fields.get("C") in ("28000", "08P01", "28P01"), fields
    finally:
        raw.close()
    px.assert_healthy()


# ---------------------------------------------------------------- SSL / GSSENC


def test_sslrequest_is_answered_N_and_startup_continues(proxy):
    px = proxy()
    raw = px.raw()
    try:
        raw.send(pgwire.ssl_request())
        assert raw.recv_bytes(1) == b"N"
        codes = raw.login("fnx", "fnx", PASSWORDS["fnx"])
        assert codes[-1] == pgwire.AUTH_OK
        assert raw.simple_query("SELECT 1")[0] == [["1"]]
    finally:
        raw.close()


def test_sslmode_prefer_works(proxy):
    px = proxy()
    with px.connect(sslmode="prefer", autocommit=True) as c:
        assert c.execute("SELECT 1").fetchone()[0] == 1
        assert c.pgconn.ssl_in_use is False


def test_sslmode_require_fails_cleanly(proxy):
    px = proxy()
    with pytest.raises(psycopg.OperationalError, match="(?i)ssl"):
        px.connect(sslmode="require")
    px.assert_healthy()


def test_gssencrequest_is_answered_N_and_startup_continues(proxy):
    px = proxy()
    raw = px.raw()
    try:
        raw.send(pgwire.gssenc_request())
        answer = raw.recv_bytes(1)
        if DIRECT and answer == b"G":
            pytest.skip("this PostgreSQL is built with GSSAPI and offers GSS encryption")
        assert answer == b"N", "GSSENCRequest must be declined with 'N', got %r" % answer
        raw.send(pgwire.ssl_request())  # libpq may try SSL next on the same socket
        assert raw.recv_bytes(1) == b"N"
        raw.login("fnx", "fnx", PASSWORDS["fnx"])
        assert raw.simple_query("SELECT 1")[0] == [["1"]]
    finally:
        raw.close()


def test_gssencmode_prefer_default_works(proxy):
    px = proxy()
    with px.connect(gssencmode="prefer", autocommit=True) as c:
        assert c.execute("SELECT 1").fetchone()[0] == 1


# ---------------------------------------------------------------- startup parameters


def test_application_name_and_options_take_effect(proxy):
    px = proxy()
    with px.connect(
        autocommit=True,
        application_name="e2e-appname",
        options="-c search_path=e2e_nosuch,public -c statement_timeout=4321",
    ) as c:
        # Several statements: in transaction mode each may run on a different
        # server connection, and each must carry the client's startup settings.
        for _ in range(5):
            assert c.execute("SHOW search_path").fetchone()[0].replace(" ", "") == "e2e_nosuch,public"
            assert c.execute("SELECT current_setting('application_name')").fetchone()[0] == (
                "e2e-appname"
            )
            assert c.execute("SHOW statement_timeout").fetchone()[0] == "4321ms"
        assert c.info.parameter_status("application_name") == "e2e-appname"
    # A second client without options sees the defaults.
    with px.connect(autocommit=True) as c:
        for _ in range(5):
            assert c.execute("SHOW search_path").fetchone()[0] == '"$user", public'
            assert c.execute("SHOW statement_timeout").fetchone()[0] == "0"


def test_pgoptions_environment_reaches_the_server(proxy, tmp_path):
    px = proxy()
    from conftest import pg_env

    env = pg_env(px, PGOPTIONS="-c search_path=e2e_pgopt,public")
    out = subprocess.run(
        ["psql", "-X", "-At", "-c", "SHOW search_path"],
        env=env,
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().replace(" ", "") == "e2e_pgopt,public"


def test_logs_never_contain_passwords(proxy):
    skip_if_direct("checks the proxy's own log")
    px = proxy(env={"LOG_LEVEL": "debug"})
    for user in ("fnx", "fnx_md5", "fnx_plain"):
        with px.connect(user=user, autocommit=True) as c:
            c.execute("SELECT 1")
        with pytest.raises(psycopg.OperationalError):
            px.connect(user=user, password="e2e-wrong-secret-42")
    text = px.stderr_text()
    for secret in list(PASSWORDS.values()) + ["e2e-wrong-secret-42"]:
        assert secret not in text, "secret %r appears in the proxy log" % secret


# ---------------------------------------------------------------- command line


def run_cli(args, env_extra=None, timeout=15):
    skip_if_direct("runs the proxy binary")
    if not os.access(PROXY_BIN, os.X_OK):
        pytest.fail("proxy binary %s not built" % PROXY_BIN)
    env = proxy_base_env()
    env.update(env_extra or {})
    return subprocess.run(
        [PROXY_BIN] + list(args),
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.parametrize("flag", ["--help", "--version"])
def test_help_and_version_exit_0(flag):
    r = run_cli([flag])
    assert r.returncode == 0, r.stderr
    out = r.stdout + r.stderr
    assert out.strip(), "no output"
    if flag == "--version":
        assert re.search(r"\d+\.\d+", out), out
    else:
        assert "--check-config" in out, out


def test_check_config_prints_config_and_masks_secrets():
    secret = "e2e-S3cr3t-Pa55w0rd"
    token = "e2e-admin-token-xyz987"
    r = run_cli(
        ["--check-config"],
        {
            "POSTGRES_SERVER": "127.0.0.1",
            "POSTGRES_USER": "fnx",
            "POSTGRES_PASSWORD": secret,
            "ADMIN_TOKEN": token,
            "DB_POOL_SIZE": "7",
            "PROXY_LISTEN": "127.0.0.1:%d" % free_port(),
        },
    )
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert re.search(r"DB_POOL_SIZE\W+7\b", out), "effective config not printed:\n" + out
    assert "POSTGRES_PASSWORD" in out, out
    assert secret not in out, "POSTGRES_PASSWORD printed in clear"
    assert token not in out, "ADMIN_TOKEN printed in clear"


BAD_CONFIGS = [
    {"POOL_MODE": "bogus"},
    {"DB_POOL_SIZE": "abc"},
    {"PROXY_LISTEN": "127.0.0.1:99999"},
    {"AUTH_TYPE": "kerberos"},
]


@pytest.mark.parametrize("bad", BAD_CONFIGS, ids=lambda d: "-".join(d))
def test_bad_config_exits_1(bad):
    env = {"POSTGRES_SERVER": "127.0.0.1", "PROXY_LISTEN": "127.0.0.1:%d" % free_port(),
           "ADMIN_LISTEN": "127.0.0.1:%d" % free_port()}
    env.update(bad)
    r = run_cli(["--check-config"], env)
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    key = next(iter(bad))
    assert key in r.stdout + r.stderr, "error does not name %s:\n%s" % (key, r.stderr)
    # Started for real with the same config, it must exit 1 too, not serve.
    try:
        r = run_cli([], env, timeout=10)
    except subprocess.TimeoutExpired:
        pytest.fail("proxy started with %r kept running instead of exiting 1" % bad)
    assert r.returncode == 1, (r.returncode, r.stderr[-2000:])

