#!/usr/bin/env bash
# Installs what building and testing fastnext-proxy needs on a Debian 12 machine.
#
# Idempotent and quick when everything is present: `apt-get update` runs only
# when a package is missing. Node.js/npm are NOT installed from apt (they
# conflict with the node already on our machines); when npm exists, the
# node-postgres client used by the e2e tests is installed into
# tests/e2e/node_modules from tests/e2e/package.json(+lock).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

PACKAGES=(
    # build
    build-essential cmake pkg-config clang-14 libclang-rt-14-dev clang-format-14 valgrind
    # libraries
    libuv1-dev libpq-dev libhiredis-dev libck-dev libcunit1-dev libpg-query-dev
    libprotobuf-c-dev libssl-dev libhttp-parser-dev liblz4-dev libxxhash-dev
    # servers for the test stack and the benchmark
    postgresql-15 postgresql-contrib redis-server redis-tools pgbouncer
    # HypoPG (hypothetical indexes) for the index-recommendation tests
    postgresql-15-hypopg
    # e2e clients (system python: /usr/bin/python3)
    python3-psycopg python3-psycopg2 python3-asyncpg python3-sqlalchemy python3-pytest
    # pgjdbc and a JDK for the JDBC driver tests
    libpostgresql-jdbc-java openjdk-17-jdk-headless
    # Go pgx v4, Perl DBD::Pg, PHP PDO/pg_*, Ruby pg for the other driver tests
    golang-go golang-github-jackc-pgx-v4-dev libdbd-pg-perl php-cli php-pgsql ruby-pg
    # pg8000, Go lib/pq, psqlODBC via pyodbc, C++ libpqxx for more driver tests
    python3-pg8000 golang-github-lib-pq-dev odbc-postgresql unixodbc python3-pyodbc libpqxx-dev
    # tools the scripts use
    util-linux procps coreutils iproute2
    # promtool (metrics format check), gnuplot (bench plot), YAML for the deploy checks
    prometheus gnuplot-nox python3-yaml
)

missing=()
for pkg in "${PACKAGES[@]}"; do
    status="$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)"
    if [[ "$status" != "install ok installed" ]]; then
        missing+=("$pkg")
    fi
done

if ((${#missing[@]} > 0)); then
    echo "deps: installing missing Debian packages: ${missing[*]}"
    SUDO=()
    if [[ "$(id -u)" -ne 0 ]]; then
        SUDO=(sudo)
    fi
    export DEBIAN_FRONTEND=noninteractive
    "${SUDO[@]}" apt-get -o DPkg::Lock::Timeout=600 update -q
    "${SUDO[@]}" apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends \
        "${missing[@]}"
else
    echo "deps: all Debian packages present"
fi

# node packages: node-postgres and postgres.js for the e2e tests, kubernetes-models & co for the
# offline deployment checks.
for E2E in "$ROOT/tests/e2e" "$ROOT/tests/deploy"; do
if [[ -f "$E2E/package.json" ]]; then
    if [[ -f "$E2E/node_modules/pg/package.json" && -f "$E2E/node_modules/postgres/package.json" ]]; then
        echo "deps: node packages present in ${E2E#"$ROOT"/}/node_modules"
    elif [[ -d "$E2E/node_modules" && "$E2E" == */deploy ]]; then
        echo "deps: node packages present in ${E2E#"$ROOT"/}/node_modules"
    elif command -v npm >/dev/null 2>&1; then
        echo "deps: installing node packages into ${E2E#"$ROOT"/}/node_modules"
        if [[ -f "$E2E/package-lock.json" ]]; then
            (cd "$E2E" && npm ci --no-audit --no-fund --loglevel=error)
        else
            (cd "$E2E" && npm install --no-audit --no-fund --loglevel=error)
        fi
    else
        echo "deps: WARNING: npm not found; node-based tests cannot run" >&2
    fi
fi
done
