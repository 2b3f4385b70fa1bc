#!/usr/bin/env bash
# Throwaway TLS certificates for the test stack (scripts/stack.sh start calls this).
#
#   scripts/make-certs.sh DIR
#
# Writes into DIR (created if missing; existing files of these names are replaced):
#   ca.crt     ca.key       a self-signed CA, the only trust anchor tests need (PX_TLS_CA)
#   server.crt server.key   PostgreSQL's certificate            (PX_TLS_PG_CERT/KEY)
#   proxy.crt  proxy.key    the proxy's client-facing certificate (PX_TLS_PROXY_CERT/KEY)
# Both leaf certificates have CN=localhost and SANs DNS:localhost, IP:127.0.0.1, IP:::1,
# so sslmode=verify-full works with host=localhost and host=127.0.0.1. Keys are RSA 2048,
# mode 0600, owned by the caller.
#
# Environment:
#   PX_CERT_DAYS       [30]  validity of every certificate
#   PX_CERT_EXTRA_SAN  []    more SANs for both leaves, e.g. "DNS:proxy,DNS:db" (containers)
set -euo pipefail

if (($# != 1)) || [[ -z "$1" ]]; then
    echo "usage: $0 DIR" >&2
    exit 2
fi
command -v openssl >/dev/null || {
    echo "make-certs: openssl not found" >&2
    exit 1
}

OUT="$1"
DAYS="${PX_CERT_DAYS:-30}"
SAN="DNS:localhost,IP:127.0.0.1,IP:::1${PX_CERT_EXTRA_SAN:+,$PX_CERT_EXTRA_SAN}"
if ! [[ "$DAYS" =~ ^[1-9][0-9]*$ ]]; then
    echo "make-certs: PX_CERT_DAYS must be a positive integer (got '$DAYS')" >&2
    exit 2
fi

mkdir -p "$OUT"
work="$(mktemp -d "${TMPDIR:-/tmp}/px-certs.XXXXXX")"
trap 'rm -rf "$work"' EXIT
umask 077

cat >"$work/openssl.cnf" <<EOF
[req]
distinguished_name = dn
prompt = no
[dn]
CN = placeholder
[v3_ca]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[v3_leaf]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = $SAN
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF

run() { # quiet unless it fails
    if ! "$@" >"$work/log" 2>&1; then
        echo "make-certs: failed: $*" >&2
        cat "$work/log" >&2
        exit 1
    fi
}

run openssl req -config "$work/openssl.cnf" -x509 -newkey rsa:2048 -nodes -sha256 \
    -days "$DAYS" -subj "/O=fastnext-proxy test stack/CN=fastnext-proxy throwaway CA" \
    -extensions v3_ca -keyout "$work/ca.key" -out "$work/ca.crt"

serial=1
for name in server proxy; do
    serial=$((serial + 1))
    run openssl req -config "$work/openssl.cnf" -new -newkey rsa:2048 -nodes -sha256 \
        -subj "/O=fastnext-proxy test stack/OU=$name/CN=localhost" \
        -keyout "$work/$name.key" -out "$work/$name.csr"
    run openssl x509 -req -in "$work/$name.csr" -CA "$work/ca.crt" -CAkey "$work/ca.key" \
        -set_serial "$(date +%s)$serial" -days "$DAYS" -sha256 \
        -extfile "$work/openssl.cnf" -extensions v3_leaf -out "$work/$name.crt"
done
run openssl verify -CAfile "$work/ca.crt" "$work/server.crt" "$work/proxy.crt"

for f in ca server proxy; do
    install -m 0644 "$work/$f.crt" "$OUT/$f.crt"
    install -m 0600 "$work/$f.key" "$OUT/$f.key"
done
