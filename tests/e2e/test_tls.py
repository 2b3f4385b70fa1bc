"""TLS towards clients: with CLIENT_TLS_CERT/KEY the proxy answers SSLRequest
with 'S' and runs TLS (clients with sslmode=require and verify-full work);
CLIENT_TLS_REQUIRE refuses clients without it."""
import os
import subprocess

import psycopg
import pytest

from conftest import skip_if_direct

CA = os.environ.get("PX_TLS_CA")
CERT = os.environ.get("PX_TLS_PROXY_CERT")
KEY = os.environ.get("PX_TLS_PROXY_KEY")

pytestmark = pytest.mark.skipif(not (CA and CERT and KEY),
                                reason="the test stack exported no certificates (PX_TLS_*)")


def tls_env(require=False):
    env = {"CLIENT_TLS_CERT": CERT, "CLIENT_TLS_KEY": KEY}
    if require:
        env["CLIENT_TLS_REQUIRE"] = "true"
    return env


def test_psql_with_verify_full_gets_tls_and_answers(proxy):
    skip_if_direct()
    ep = proxy(env=tls_env())
    dsn = ep.conninfo(sslmode="verify-full", sslrootcert=CA)
    out = subprocess.run(["psql", "-X", "-At", dsn, "-c", "\\conninfo", "-c", "SELECT 40 + 2"],
                         capture_output=True, text=True, timeout=20)
    assert out.returncode == 0, out.stderr
    assert "SSL connection" in out.stdout and "42" in out.stdout


def test_psycopg_verify_full_runs_prepared_statements_and_copy_over_tls(proxy, make_table):
    skip_if_direct()
    ep = proxy(env=tls_env())
    t = make_table("a int, b text")
    with psycopg.connect(ep.conninfo(sslmode="verify-full", sslrootcert=CA),
                         autocommit=True) as c:
        assert c.pgconn.ssl_in_use
        for i in range(8):
            assert c.execute("SELECT %s::int * 2", (i,), prepare=True).fetchone() == (i * 2,)
        with c.cursor().copy("COPY %s FROM STDIN" % t) as cp:
            for i in range(50000):
                cp.write_row((i, "row %d with some text" % i))
        assert c.execute("SELECT count(*) FROM %s" % t).fetchone() == (50000,)
        rows = c.execute("SELECT repeat('x', 1000) FROM generate_series(1, 5000)").fetchall()
        assert len(rows) == 5000 and rows[-1][0] == "x" * 1000


def test_verify_full_against_a_wrong_ca_fails_cleanly(proxy, tmp_path):
    skip_if_direct()
    ep = proxy(env=tls_env())
    wrong = tmp_path / "wrong-ca.crt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj",
                    "/CN=wrong", "-keyout", str(tmp_path / "k"), "-out", str(wrong),
                    "-days", "1"], check=True, capture_output=True, timeout=30)
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(ep.conninfo(sslmode="verify-full", sslrootcert=str(wrong))).close()
    ep.assert_healthy()


def test_plain_clients_still_work_unless_tls_is_required(proxy):
    skip_if_direct()
    ep = proxy(env=tls_env())
    with psycopg.connect(ep.conninfo(sslmode="disable")) as c:
        assert not c.pgconn.ssl_in_use
        assert c.execute("SELECT 1").fetchone() == (1,)
    ep2 = proxy(env=tls_env(require=True))
    with pytest.raises(psycopg.OperationalError) as ex:
        psycopg.connect(ep2.conninfo(sslmode="disable")).close()
    assert "TLS" in str(ex.value)
    with psycopg.connect(ep2.conninfo(sslmode="require")) as c:
        assert c.pgconn.ssl_in_use and c.execute("SELECT 2").fetchone() == (2,)


# ---------------------------------------------------------------- towards PostgreSQL

def ssl_user_auth_file(tmp_path):
    p = tmp_path / "userlist-ssl.txt"
    p.write_text('"fnx_ssl" "ssl_pass"\n"fnx" "fnx_pass"\n')
    return str(p)


def test_the_proxy_reaches_a_tls_only_role_with_verify_full(proxy, tmp_path):
    skip_if_direct()
    ep = proxy(env={"SERVER_TLS_MODE": "verify-full", "SERVER_TLS_CA": CA,
                    "AUTH_FILE": ssl_user_auth_file(tmp_path)})
    with psycopg.connect(ep.conninfo(user="fnx_ssl", password="ssl_pass", sslmode="disable"),
                         autocommit=True) as c:
        ssl, version = c.execute(
            "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone()
        assert ssl is True and version.startswith("TLSv1.")
        rows = c.execute("SELECT repeat('x', 500) FROM generate_series(1, 20000)").fetchall()
        assert len(rows) == 20000
        for i in range(5):
            assert c.execute("SELECT %s::int", (i,), prepare=True).fetchone() == (i,)


def test_one_tls_server_connection_moves_between_workers_without_reconnecting(proxy, tmp_path):
    skip_if_direct()
    # one server connection, two clients on different workers (one client per
    # worker in turn): each transaction needs the connection the other worker
    # holds, so it must move, TLS session and all
    ep = proxy(env={"SERVER_TLS_MODE": "verify-full", "SERVER_TLS_CA": CA, "WORKERS": "2",
                    "WORKER_FILL_CLIENTS": "1", "DB_POOL_SIZE": "1", "DB_MAX_OVERFLOW": "0",
                    "AUTH_FILE": ssl_user_auth_file(tmp_path)})
    info = ep.conninfo(user="fnx_ssl", password="ssl_pass", sslmode="disable")
    with psycopg.connect(info, autocommit=True) as a, psycopg.connect(info, autocommit=True) as b:
        pids = set()
        for i in range(30):
            c = a if i % 2 == 0 else b
            pid, ssl, n = c.execute(
                "SELECT s.pid, s.ssl, %s::int FROM pg_stat_ssl s WHERE s.pid = pg_backend_pid()",
                (i,)).fetchone()
            assert ssl is True and n == i
            pids.add(pid)
            with c.transaction():
                assert c.execute("SELECT count(*) FROM generate_series(1, %s)",
                                 (i + 1,)).fetchone()[0] == i + 1
        assert len(pids) == 1, "the TLS connection was reopened instead of moved: %r" % pids
    assert ep.alive()


def test_server_tls_with_an_unknown_ca_refuses_the_login_clearly(proxy, tmp_path):
    skip_if_direct()
    wrong = tmp_path / "wrong-ca.crt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj",
                    "/CN=wrong", "-keyout", str(tmp_path / "k"), "-out", str(wrong),
                    "-days", "1"], check=True, capture_output=True, timeout=30)
    ep = proxy(env={"SERVER_TLS_MODE": "verify-ca", "SERVER_TLS_CA": str(wrong),
                    "AUTH_FILE": ssl_user_auth_file(tmp_path)})
    with pytest.raises(psycopg.OperationalError) as ex:
        psycopg.connect(ep.conninfo(user="fnx_ssl", password="ssl_pass",
                                    sslmode="disable")).close()
    assert "TLS" in str(ex.value) or "server" in str(ex.value)
    assert ep.alive()
