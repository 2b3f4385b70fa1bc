/*
 * test_tls.c - unit tests for proxy/tls.c: a client px_tls_t and a server
 * px_tls_t in one process, with ciphertext pumped between them by hand the
 * way a libuv read callback and write path would move it. Covers the
 * handshake under each verify mode, verification failures and their reasons,
 * data both ways (1 MB in chunks, single-byte fragments), close_notify,
 * garbage input, the input cap, contexts shared across threads, and the
 * protocol floor (TLS 1.2) checked with a raw OpenSSL peer.
 *
 * Certificates (a CA, a server certificate for localhost/127.0.0.1 signed by
 * it, and an unrelated CA) are made once per run with the openssl binary in a
 * mkdtemp directory, removed at exit. Invariant: each test builds its own
 * contexts and sessions and frees them, so LeakSanitizer sees every object
 * and any test can run alone.
 */
#include "px_tls.h"

#include <CUnit/Basic.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

static char dir[256];
static char ca_crt[300], other_ca_crt[300], other_ca_key[300], srv_crt[300], srv_key[300];

/* ---- certificates -------------------------------------------------------- */

static const char cnf_text[] = "[req]\n"
                               "distinguished_name = dn\n"
                               "prompt = no\n"
                               "[dn]\n"
                               "CN = placeholder\n"
                               "[v3_ca]\n"
                               "basicConstraints = critical, CA:TRUE\n"
                               "keyUsage = critical, keyCertSign, cRLSign\n"
                               "subjectKeyIdentifier = hash\n"
                               "[v3_srv]\n"
                               "basicConstraints = CA:FALSE\n"
                               "keyUsage = critical, digitalSignature, keyEncipherment\n"
                               "extendedKeyUsage = serverAuth\n"
                               "subjectAltName = DNS:localhost, IP:127.0.0.1\n"
                               "authorityKeyIdentifier = keyid\n";

static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int run(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    char full[2600];
    snprintf(full, sizeof full, "cd '%s' && %s >>openssl.log 2>&1", dir, cmd);
    int rc = system(full);
    if (rc != 0)
        fprintf(stderr, "test_tls: command failed (%d): %s\n", rc, cmd);
    return rc;
}

#define NEWKEY "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"

static int make_certs(void)
{
    snprintf(dir, sizeof dir, "/tmp/px-test-tls.XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    char path[300];
    snprintf(path, sizeof path, "%s/req.cnf", dir);
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fputs(cnf_text, f);
    fclose(f);
    snprintf(ca_crt, sizeof ca_crt, "%s/ca.crt", dir);
    snprintf(other_ca_crt, sizeof other_ca_crt, "%s/other-ca.crt", dir);
    snprintf(other_ca_key, sizeof other_ca_key, "%s/other-ca.key", dir);
    snprintf(srv_crt, sizeof srv_crt, "%s/server.crt", dir);
    snprintf(srv_key, sizeof srv_key, "%s/server.key", dir);
    if (run("openssl req -config req.cnf -x509 " NEWKEY " -keyout ca.key -out ca.crt -days 2 "
            "-subj '/CN=px test CA' -extensions v3_ca") ||
        run("openssl req -config req.cnf -x509 " NEWKEY " -keyout other-ca.key -out other-ca.crt "
            "-days 2 -subj '/CN=px other CA' -extensions v3_ca") ||
        run("openssl req -config req.cnf -new " NEWKEY " -keyout server.key -out server.csr "
            "-subj '/CN=localhost'") ||
        run("openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -set_serial 2 -days 2 "
            "-extfile req.cnf -extensions v3_srv -out server.crt"))
        return -1;
    return 0;
}

static void remove_certs(void)
{
    if (dir[0]) {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0)
            fprintf(stderr, "test_tls: could not remove %s\n", dir);
    }
}

/* ---- pumping ------------------------------------------------------------- */

/* One direction of a connection: ciphertext taken out of `from` in pieces of
 * at most `chunk`, fed to `to`; what `to` refuses (input cap) is carried. */
typedef struct link {
    px_tls_t *from, *to;
    size_t chunk;
    size_t off, len;
    size_t max_in_pending; /* largest px_tls_in_pending(to) seen */
    bool feed_error;
    uint8_t buf[160 * 1024];
} link_t;

static size_t link_move(link_t *l)
{
    if (l->off == l->len) {
        l->off = l->len = 0;
        size_t cap = l->chunk < sizeof l->buf ? l->chunk : sizeof l->buf;
        l->len = px_tls_take_out(l->from, l->buf, cap);
    }
    if (l->off == l->len)
        return 0;
    size_t taken = 0;
    px_tls_result_t r = px_tls_feed(l->to, l->buf + l->off, l->len - l->off, &taken);
    if (r == PX_TLS_ERROR)
        l->feed_error = true;
    l->off += taken;
    size_t pend = px_tls_in_pending(l->to);
    if (pend > l->max_in_pending)
        l->max_in_pending = pend;
    return taken;
}

static bool link_idle(const link_t *l)
{
    return l->off == l->len && px_tls_out_pending(l->from) == 0;
}

typedef struct pair {
    px_tls_ctx_t *sctx, *cctx;
    px_tls_t *s, *c;
    px_tls_result_t rs, rc; /* last handshake results */
    link_t c2s, s2c;
} pair_t;

static pair_t *pair_new_ctx(px_tls_ctx_t *sctx, px_tls_ctx_t *cctx, const char *host, size_t chunk)
{
    char err[256] = "";
    pair_t *p = calloc(1, sizeof *p);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    p->sctx = sctx;
    p->cctx = cctx;
    p->s = px_tls_new(sctx, NULL, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p->s);
    p->c = px_tls_new(cctx, host, err, sizeof err);
    if (!p->c)
        fprintf(stderr, "px_tls_new: %s\n", err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p->c);
    p->c2s = (link_t){.from = p->c, .to = p->s, .chunk = chunk};
    p->s2c = (link_t){.from = p->s, .to = p->c, .chunk = chunk};
    p->rs = p->rc = PX_TLS_WANT;
    return p;
}

/* A pair owning fresh contexts: server with our certificate, client with @p mode. */
static pair_t *pair_new(px_tls_verify_t mode, const char *ca, const char *host, size_t chunk)
{
    char err[256] = "";
    px_tls_ctx_t *sctx = px_tls_ctx_server(srv_crt, srv_key, NULL, err, sizeof err);
    if (!sctx)
        fprintf(stderr, "px_tls_ctx_server: %s\n", err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(sctx);
    px_tls_ctx_t *cctx = px_tls_ctx_client(mode, ca, err, sizeof err);
    if (!cctx)
        fprintf(stderr, "px_tls_ctx_client: %s\n", err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cctx);
    pair_t *p = pair_new_ctx(sctx, cctx, host, chunk);
    return p;
}

/* Frees the sessions and drops the pair's context references; contexts are
 * freed here because sessions hold their own references. */
static void pair_free(pair_t *p)
{
    px_tls_free(p->s);
    px_tls_free(p->c);
    px_tls_ctx_free(p->sctx);
    px_tls_ctx_free(p->cctx);
    free(p);
}

/* Drive both handshakes to completion or failure. 0 when both are done and
 * every byte has moved; -1 when one side failed (after letting its alert
 * reach the other); -2 when stuck. */
static int pair_handshake(pair_t *p)
{
    for (long iter = 0; iter < 10L * 1000 * 1000; iter++) {
        size_t moved = 0;
        if (p->rc == PX_TLS_WANT)
            p->rc = px_tls_handshake(p->c);
        moved += link_move(&p->c2s);
        if (p->rs == PX_TLS_WANT)
            p->rs = px_tls_handshake(p->s);
        moved += link_move(&p->s2c);
        bool failed = p->rc == PX_TLS_ERROR || p->rs == PX_TLS_ERROR;
        if (!failed && p->rc == PX_TLS_OK && p->rs == PX_TLS_OK && link_idle(&p->c2s) &&
            link_idle(&p->s2c))
            return 0;
        if (moved == 0) {
            if (failed)
                return -1;
            if (p->rc != PX_TLS_WANT && p->rs != PX_TLS_WANT)
                return -2;
            /* a side that is done but whose peer still waits: nothing to move */
            if (link_idle(&p->c2s) && link_idle(&p->s2c) &&
                !(p->rc == PX_TLS_WANT && px_tls_in_pending(p->c) > 0) &&
                !(p->rs == PX_TLS_WANT && px_tls_in_pending(p->s) > 0))
                return -2;
        }
    }
    return -2;
}

/* Move everything pending on @p l and read it on l->to into @p recv (at most
 * @p readcap per px_tls_read call) until nothing moves and nothing is left to
 * read. Returns the last read result. */
static px_tls_result_t flow(link_t *l, uint8_t *recv, size_t cap, size_t *got, size_t readcap)
{
    px_tls_result_t r = PX_TLS_WANT;
    for (;;) {
        size_t moved = link_move(l);
        size_t n = 0;
        for (;;) {
            size_t room = cap - *got;
            if (room > readcap)
                room = readcap;
            if (room == 0)
                break;
            r = px_tls_read(l->to, recv + *got, room, &n);
            *got += n;
            if (r != PX_TLS_OK)
                break;
        }
        if (r == PX_TLS_ERROR || r == PX_TLS_CLOSED)
            return r;
        if (moved == 0 && link_idle(l) && !px_tls_read_pending(l->to))
            return r;
        if (moved == 0 && link_idle(l) && *got == cap)
            return r;
    }
}

static void fill_pattern(uint8_t *p, size_t n, uint32_t seed)
{
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = (uint8_t)x;
    }
}

static bool contains(const char *hay, const char *needle)
{
    return hay && strstr(hay, needle) != NULL;
}

/* PX_TEST_VERBOSE=1 prints the reasons the tests check, to read them whole. */
static void show(const char *what, const char *text)
{
    if (getenv("PX_TEST_VERBOSE"))
        fprintf(stderr, "\n    [%s] %s", what, text);
}

/* ---- handshakes ---------------------------------------------------------- */

static void test_handshake_completes_with_verify_none(void)
{
    pair_t *p = pair_new(PX_TLS_VERIFY_NONE, NULL, NULL, 4096);
    CU_ASSERT_EQUAL(pair_handshake(p), 0);
    CU_ASSERT_TRUE(px_tls_is_done(p->c));
    CU_ASSERT_TRUE(px_tls_is_done(p->s));
    CU_ASSERT_STRING_EQUAL(px_tls_error(p->c), "");
    CU_ASSERT_FALSE(px_tls_peer_verified(p->c)); /* nothing was checked */
    pair_free(p);
}

static void test_handshake_completes_with_verify_ca(void)
{
    pair_t *p = pair_new(PX_TLS_VERIFY_CA, ca_crt, NULL, 4096);
    CU_ASSERT_EQUAL(pair_handshake(p), 0);
    CU_ASSERT_TRUE(px_tls_is_done(p->c));
    CU_ASSERT_TRUE(px_tls_peer_verified(p->c));
    pair_free(p);
}

static void test_handshake_completes_with_verify_full_by_dns_name(void)
{
    pair_t *p = pair_new(PX_TLS_VERIFY_FULL, ca_crt, "localhost", 4096);
    CU_ASSERT_EQUAL(pair_handshake(p), 0);
    CU_ASSERT_TRUE(px_tls_peer_verified(p->c));
    pair_free(p);
}

static void test_handshake_completes_with_verify_full_by_ip_address(void)
{
    pair_t *p = pair_new(PX_TLS_VERIFY_FULL, ca_crt, "127.0.0.1", 4096);
    CU_ASSERT_EQUAL(pair_handshake(p), 0);
    CU_ASSERT_TRUE(px_tls_peer_verified(p->c));
    pair_free(p);
}

static void test_verify_full_wrong_host_fails_naming_the_host(void)
{
    pair_t *p = pair_new(PX_TLS_VERIFY_FULL, ca_crt, "wrong.example.com", 4096);
    CU_ASSERT_EQUAL(pair_handshake(p), -1);
    CU_ASSERT_EQUAL(p->rc, PX_TLS_ERROR);
    CU_ASSERT_FALSE(px_tls_is_done(p->c));
    CU_ASSERT_TRUE(contains(px_tls_error(p->c), "certificate verify failed"));
    CU_ASSERT_TRUE(contains(px_tls_error(p->c), "wrong.example.com"));
    show("wrong host, client", px_tls_error(p->c));
    /* the client's alert reaches the server, which fails with a reason too */
    CU_ASSERT_EQUAL(p->rs, PX_TLS_ERROR);
    CU_ASSERT_TRUE(contains(px_tls_error(p->s), "alert"));
    show("wrong host, server", px_tls_error(p->s));
    pair_free(p);
}

static void test_verify_full_wrong_ip_address_fails_naming_it(void)
{
    pair_t *p = pair_new(PX_TLS_VERIFY_FULL, ca_crt, "127.0.0.2", 4096);
    CU_ASSERT_EQUAL(pair_handshake(p), -1);
    CU_ASSERT_TRUE(contains(px_tls_error(p->c), "certificate verify failed"));
    CU_ASSERT_TRUE(contains(px_tls_error(p->c), "127.0.0.2"));
    show("wrong ip, client", px_tls_error(p->c));
    pair_free(p);
}

static void test_verify_full_rejects_partial_wildcard_and_suffix_names(void)
{
    /* "host" is not "localhost"; a name only sharing a suffix must fail */
    pair_t *p = pair_new(PX_TLS_VERIFY_FULL, ca_crt, "host", 4096);
    CU_ASSERT_EQUAL(pair_handshake(p), -1);
    CU_ASSERT_TRUE(contains(px_tls_error(p->c), "\"host\""));
    pair_free(p);
}

static void test_verify_ca_with_unknown_ca_fails(void)
{
    pair_t *p = pair_new(PX_TLS_VERIFY_CA, other_ca_crt, NULL, 4096);
    CU_ASSERT_EQUAL(pair_handshake(p), -1);
    CU_ASSERT_EQUAL(p->rc, PX_TLS_ERROR);
    CU_ASSERT_TRUE(contains(px_tls_error(p->c), "certificate verify failed"));
    CU_ASSERT_TRUE(contains(px_tls_error(p->c), "localhost")); /* the CN it saw */
    show("unknown ca, client", px_tls_error(p->c));
    show("unknown ca, server", px_tls_error(p->s));
    CU_ASSERT_EQUAL(p->rs, PX_TLS_ERROR);
    pair_free(p);
}

static void test_verify_ca_does_not_check_the_host_name(void)
{
    pair_t *p = pair_new(PX_TLS_VERIFY_CA, ca_crt, "wrong.example.com", 4096);
    CU_ASSERT_EQUAL(pair_handshake(p), 0);
    pair_free(p);
}

static void test_verify_none_accepts_a_certificate_from_an_unknown_ca(void)
{
    pair_t *p = pair_new(PX_TLS_VERIFY_NONE, other_ca_crt, "wrong.example.com", 4096);
    CU_ASSERT_EQUAL(pair_handshake(p), 0);
    pair_free(p);
}

static void test_verify_full_without_host_is_refused_by_new(void)
{
    char err[256] = "";
    px_tls_ctx_t *cctx = px_tls_ctx_client(PX_TLS_VERIFY_FULL, ca_crt, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cctx);
    CU_ASSERT_PTR_NULL(px_tls_new(cctx, NULL, err, sizeof err));
    CU_ASSERT_TRUE(contains(err, "verify-full"));
    err[0] = 0;
    CU_ASSERT_PTR_NULL(px_tls_new(cctx, "", err, sizeof err));
    CU_ASSERT_TRUE(contains(err, "host"));
    px_tls_ctx_free(cctx);
}

static void test_handshake_survives_one_byte_fragments(void)
{
    pair_t *p = pair_new(PX_TLS_VERIFY_FULL, ca_crt, "localhost", 1);
    CU_ASSERT_EQUAL(pair_handshake(p), 0);
    CU_ASSERT_TRUE(px_tls_is_done(p->c));
    CU_ASSERT_TRUE(px_tls_is_done(p->s));
    pair_free(p);
}

static void test_server_with_ca_accepts_a_client_without_certificate(void)
{
    char err[256] = "";
    px_tls_ctx_t *sctx = px_tls_ctx_server(srv_crt, srv_key, ca_crt, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(sctx);
    px_tls_ctx_t *cctx = px_tls_ctx_client(PX_TLS_VERIFY_FULL, ca_crt, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cctx);
    pair_t *p = pair_new_ctx(sctx, cctx, "localhost", 4096);
    CU_ASSERT_EQUAL(pair_handshake(p), 0);
    CU_ASSERT_FALSE(px_tls_peer_verified(p->s)); /* no client certificate */
    char cn[64];
    CU_ASSERT_FALSE(px_tls_peer_cn(p->s, cn, sizeof cn));
    pair_free(p);
}

static void test_version_cipher_and_peer_cn_describe_the_session(void)
{
    pair_t *p = pair_new(PX_TLS_VERIFY_FULL, ca_crt, "localhost", 4096);
    CU_ASSERT_STRING_EQUAL(px_tls_version(p->c), "");
    CU_ASSERT_STRING_EQUAL(px_tls_cipher(p->c), "");
    CU_ASSERT_EQUAL_FATAL(pair_handshake(p), 0);
    CU_ASSERT_STRING_EQUAL(px_tls_version(p->c), "TLSv1.3");
    CU_ASSERT_STRING_EQUAL(px_tls_version(p->s), "TLSv1.3");
    CU_ASSERT_TRUE(strlen(px_tls_cipher(p->c)) > 0);
    CU_ASSERT_STRING_EQUAL(px_tls_cipher(p->c), px_tls_cipher(p->s));
    char cn[64] = "";
    CU_ASSERT_TRUE(px_tls_peer_cn(p->c, cn, sizeof cn));
    CU_ASSERT_STRING_EQUAL(cn, "localhost");
    char small[4] = "";
    CU_ASSERT_TRUE(px_tls_peer_cn(p->c, small, sizeof small));
    CU_ASSERT_STRING_EQUAL(small, "loc"); /* truncated, terminated */
    pair_free(p);
}

static void test_channel_binding_is_the_server_certificate_hash_on_both_ends(void)
{
    pair_t *p = pair_new(PX_TLS_VERIFY_CA, ca_crt, NULL, 4096);
    uint8_t cb_c[PX_TLS_CB_MAX], cb_s[PX_TLS_CB_MAX];
    size_t len_c = 0, len_s = 0;
    CU_ASSERT_FALSE(px_tls_channel_binding(p->c, cb_c, &len_c));
    CU_ASSERT_EQUAL_FATAL(pair_handshake(p), 0);
    CU_ASSERT_TRUE(px_tls_channel_binding(p->c, cb_c, &len_c));
    CU_ASSERT_TRUE(px_tls_channel_binding(p->s, cb_s, &len_s));
    CU_ASSERT_EQUAL(len_c, 32); /* ecdsa-with-SHA256 -> SHA-256 */
    CU_ASSERT_EQUAL(len_c, len_s);
    CU_ASSERT_EQUAL(memcmp(cb_c, cb_s, len_c), 0);
    /* and it is SHA-256 over the DER certificate, as PostgreSQL computes it */
    FILE *f = fopen(srv_crt, "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    CU_ASSERT_PTR_NOT_NULL_FATAL(x);
    uint8_t want[EVP_MAX_MD_SIZE];
    unsigned int wlen = 0;
    CU_ASSERT_EQUAL(X509_digest(x, EVP_sha256(), want, &wlen), 1);
    X509_free(x);
    CU_ASSERT_EQUAL(wlen, len_c);
    CU_ASSERT_EQUAL(memcmp(want, cb_c, wlen), 0);
    pair_free(p);
}

/* ---- contexts ------------------------------------------------------------ */

static void test_server_ctx_reports_missing_files_and_mismatched_key(void)
{
    char err[512] = "";
    char missing[320];
    snprintf(missing, sizeof missing, "%s/nope.crt", dir);
    CU_ASSERT_PTR_NULL(px_tls_ctx_server(missing, srv_key, NULL, err, sizeof err));
    CU_ASSERT_TRUE(contains(err, "nope.crt"));
    err[0] = 0;
    CU_ASSERT_PTR_NULL(px_tls_ctx_server(srv_crt, other_ca_key, NULL, err, sizeof err));
    CU_ASSERT_TRUE(contains(err, "other-ca.key"));
    CU_ASSERT_TRUE(contains(err, "mismatch") || contains(err, "does not match"));
    err[0] = 0;
    CU_ASSERT_PTR_NULL(px_tls_ctx_server(srv_crt, srv_key, missing, err, sizeof err));
    CU_ASSERT_TRUE(contains(err, "CA file"));
    err[0] = 0;
    CU_ASSERT_PTR_NULL(px_tls_ctx_server(NULL, srv_key, NULL, err, sizeof err));
    CU_ASSERT_TRUE(strlen(err) > 0);
    /* a key file holding a certificate is no key */
    err[0] = 0;
    CU_ASSERT_PTR_NULL(px_tls_ctx_server(srv_crt, srv_crt, NULL, err, sizeof err));
    CU_ASSERT_TRUE(contains(err, "private key"));
    /* nothing left on this thread's OpenSSL error queue */
    CU_ASSERT_EQUAL(ERR_peek_error(), 0);
}

static void test_client_ctx_reports_a_missing_ca_file(void)
{
    char err[512] = "";
    char missing[320];
    snprintf(missing, sizeof missing, "%s/nope-ca.crt", dir);
    CU_ASSERT_PTR_NULL(px_tls_ctx_client(PX_TLS_VERIFY_CA, missing, err, sizeof err));
    CU_ASSERT_TRUE(contains(err, "nope-ca.crt"));
    CU_ASSERT_PTR_NULL(px_tls_ctx_client((px_tls_verify_t)42, NULL, err, sizeof err));
    /* the CA file is not read at all for VERIFY_NONE */
    px_tls_ctx_t *c = px_tls_ctx_client(PX_TLS_VERIFY_NONE, missing, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL(c);
    CU_ASSERT_FALSE(px_tls_ctx_is_server(c));
    CU_ASSERT_EQUAL(px_tls_ctx_verify(c), PX_TLS_VERIFY_NONE);
    px_tls_ctx_free(c);
    CU_ASSERT_EQUAL(ERR_peek_error(), 0);
}

static void test_ctx_outlives_its_creator_reference_while_sessions_use_it(void)
{
    char err[256] = "";
    px_tls_ctx_t *sctx = px_tls_ctx_server(srv_crt, srv_key, NULL, err, sizeof err);
    px_tls_ctx_t *cctx = px_tls_ctx_client(PX_TLS_VERIFY_FULL, ca_crt, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(sctx);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cctx);
    CU_ASSERT_TRUE(px_tls_ctx_is_server(sctx));
    CU_ASSERT_EQUAL(px_tls_ctx_verify(cctx), PX_TLS_VERIFY_FULL);
    pair_t *p = pair_new_ctx(px_tls_ctx_ref(sctx), px_tls_ctx_ref(cctx), "localhost", 4096);
    /* drop the creator's references (a config reload would): sessions keep theirs */
    px_tls_ctx_free(sctx);
    px_tls_ctx_free(cctx);
    px_tls_ctx_free(p->sctx);
    px_tls_ctx_free(p->cctx);
    p->sctx = p->cctx = NULL;
    CU_ASSERT_EQUAL(pair_handshake(p), 0);
    pair_free(p);
    px_tls_ctx_free(NULL);
}

/* ---- data ---------------------------------------------------------------- */

static void test_data_round_trips_both_ways(void)
{
    pair_t *p = pair_new(PX_TLS_VERIFY_FULL, ca_crt, "localhost", 4096);
    CU_ASSERT_EQUAL_FATAL(pair_handshake(p), 0);
    uint8_t buf[256];
    size_t got = 0;
    CU_ASSERT_EQUAL(px_tls_write(p->c, "Q select 1", 10), PX_TLS_OK);
    CU_ASSERT_TRUE(px_tls_out_pending(p->c) > 10);
    flow(&p->c2s, buf, sizeof buf, &got, sizeof buf);
    CU_ASSERT_EQUAL(got, 10);
    CU_ASSERT_EQUAL(memcmp(buf, "Q select 1", 10), 0);
    got = 0;
    CU_ASSERT_EQUAL(px_tls_write(p->s, "T row", 5), PX_TLS_OK);
    CU_ASSERT_EQUAL(px_tls_write(p->s, "Z", 1), PX_TLS_OK);
    flow(&p->s2c, buf, sizeof buf, &got, sizeof buf);
    CU_ASSERT_EQUAL(got, 6);
    CU_ASSERT_EQUAL(memcmp(buf, "T rowZ", 6), 0);
    /* nothing more: a read says WANT */
    size_t n = 99;
    CU_ASSERT_EQUAL(px_tls_read(p->c, buf, sizeof buf, &n), PX_TLS_WANT);
    CU_ASSERT_EQUAL(n, 0);
    CU_ASSERT_EQUAL(px_tls_write(p->c, "", 0), PX_TLS_OK);
    CU_ASSERT_EQUAL(px_tls_out_pending(p->c), 0);
    pair_free(p);
}

#define MB (1024u * 1024)

static void test_one_megabyte_round_trips_in_chunks_both_ways(void)
{
    pair_t *p = pair_new(PX_TLS_VERIFY_FULL, ca_crt, "localhost", 16 * 1024);
    CU_ASSERT_EQUAL_FATAL(pair_handshake(p), 0);
    uint8_t *data = malloc(MB), *recv = malloc(MB);
    CU_ASSERT_PTR_NOT_NULL_FATAL(data);
    CU_ASSERT_PTR_NOT_NULL_FATAL(recv);
    fill_pattern(data, MB, 7);

    /* client -> server: written 10000 bytes at a time, moved as it goes,
     * read with a small plaintext buffer (as a consumer under backpressure) */
    size_t got = 0;
    for (size_t off = 0; off < MB; off += 10000) {
        size_t n = MB - off < 10000 ? MB - off : 10000;
        CU_ASSERT_EQUAL_FATAL(px_tls_write(p->c, data + off, n), PX_TLS_OK);
        flow(&p->c2s, recv, MB, &got, 3000);
    }
    flow(&p->c2s, recv, MB, &got, 3000);
    CU_ASSERT_EQUAL(got, MB);
    CU_ASSERT_EQUAL(memcmp(recv, data, MB), 0);
    CU_ASSERT_TRUE(p->c2s.max_in_pending <= PX_TLS_IN_CAP);

    /* server -> client: one 1 MB write, moved in pieces bigger than the
     * input cap, so feeds are partial and reads must drain in between */
    fill_pattern(data, MB, 8);
    memset(recv, 0, MB);
    got = 0;
    CU_ASSERT_EQUAL_FATAL(px_tls_write(p->s, data, MB), PX_TLS_OK);
    CU_ASSERT_TRUE(px_tls_out_pending(p->s) > MB);
    p->s2c.chunk = sizeof p->s2c.buf;
    flow(&p->s2c, recv, MB, &got, 64 * 1024);
    CU_ASSERT_EQUAL(got, MB);
    CU_ASSERT_EQUAL(memcmp(recv, data, MB), 0);
    CU_ASSERT_EQUAL(p->s2c.max_in_pending, PX_TLS_IN_CAP); /* the cap was reached, not passed */
    CU_ASSERT_EQUAL(px_tls_out_pending(p->s), 0);
    CU_ASSERT_EQUAL(px_tls_in_pending(p->c), 0);
    free(data);
    free(recv);
    pair_free(p);
}

static void test_one_byte_fragments_fed_one_at_a_time_deliver_data(void)
{
    pair_t *p = pair_new(PX_TLS_VERIFY_FULL, ca_crt, "localhost", 1);
    CU_ASSERT_EQUAL_FATAL(pair_handshake(p), 0);
    uint8_t data[3000], recv[3000];
    fill_pattern(data, sizeof data, 3);
    CU_ASSERT_EQUAL(px_tls_write(p->c, data, sizeof data), PX_TLS_OK);
    size_t got = 0, wants = 0;
    /* feed one byte, try to read, repeat: reads say WANT until a record is whole */
    while (got < sizeof data) {
        size_t moved = link_move(&p->c2s);
        size_t n = 0;
        px_tls_result_t r = px_tls_read(p->s, recv + got, sizeof recv - got, &n);
        CU_ASSERT_TRUE_FATAL(r == PX_TLS_OK || r == PX_TLS_WANT);
        got += n;
        if (r == PX_TLS_WANT)
            wants++;
        if (moved == 0 && r == PX_TLS_WANT)
            break;
    }
    CU_ASSERT_EQUAL(got, sizeof data);
    CU_ASSERT_EQUAL(memcmp(recv, data, sizeof data), 0);
    CU_ASSERT_TRUE(wants > 3000); /* almost every byte alone was not enough */
    /* and back, one byte at a time as well */
    got = 0;
    CU_ASSERT_EQUAL(px_tls_write(p->s, "pong", 4), PX_TLS_OK);
    flow(&p->s2c, recv, sizeof recv, &got, 1);
    CU_ASSERT_EQUAL(got, 4);
    CU_ASSERT_EQUAL(memcmp(recv, "pong", 4), 0);
    pair_free(p);
}

static void test_writev_gathers_small_pieces_into_few_records(void)
{
    pair_t *p = pair_new(PX_TLS_VERIFY_NONE, NULL, NULL, 64 * 1024);
    CU_ASSERT_EQUAL_FATAL(pair_handshake(p), 0);
    enum { PIECES = 2000, PIECE = 10, BIG = 40000 };
    static uint8_t data[PIECES * PIECE + BIG], recv[PIECES * PIECE + BIG];
    fill_pattern(data, sizeof data, 11);
    static struct iovec iov[PIECES + 1];
    for (int i = 0; i < PIECES; i++)
        iov[i] = (struct iovec){.iov_base = data + i * PIECE, .iov_len = PIECE};
    iov[PIECES] = (struct iovec){.iov_base = data + PIECES * PIECE, .iov_len = BIG};
    CU_ASSERT_EQUAL(px_tls_writev(p->c, iov, PIECES + 1), PX_TLS_OK);
    /* 60000 bytes in 4 records: well under one record's overhead per piece */
    size_t out = px_tls_out_pending(p->c);
    CU_ASSERT_TRUE(out > sizeof data);
    CU_ASSERT_TRUE(out < sizeof data + 8 * 32);
    size_t got = 0;
    flow(&p->c2s, recv, sizeof recv, &got, sizeof recv);
    CU_ASSERT_EQUAL(got, sizeof data);
    CU_ASSERT_EQUAL(memcmp(recv, data, sizeof data), 0);
    CU_ASSERT_EQUAL(px_tls_writev(p->c, iov, 0), PX_TLS_OK);
    pair_free(p);
}

static void test_peek_and_consume_out_send_without_copying(void)
{
    pair_t *p = pair_new(PX_TLS_VERIFY_NONE, NULL, NULL, 4096);
    CU_ASSERT_EQUAL_FATAL(pair_handshake(p), 0);
    uint8_t data[5000], recv[5000];
    fill_pattern(data, sizeof data, 5);
    CU_ASSERT_EQUAL(px_tls_write(p->s, data, sizeof data), PX_TLS_OK);
    size_t total = px_tls_out_pending(p->s);
    const uint8_t *ptr = NULL;
    CU_ASSERT_EQUAL(px_tls_peek_out(p->s, &ptr), total);
    /* a "socket" that takes 1000 bytes at a time */
    size_t got = 0;
    while (px_tls_out_pending(p->s) > 0) {
        size_t n = px_tls_peek_out(p->s, &ptr);
        if (n > 1000)
            n = 1000;
        size_t taken = 0;
        CU_ASSERT_EQUAL_FATAL(px_tls_feed(p->c, ptr, n, &taken), PX_TLS_OK);
        px_tls_consume_out(p->s, taken);
        size_t r = 0;
        while (px_tls_read(p->c, recv + got, sizeof recv - got, &r) == PX_TLS_OK)
            got += r;
    }
    CU_ASSERT_EQUAL(got, sizeof data);
    CU_ASSERT_EQUAL(memcmp(recv, data, sizeof data), 0);
    px_tls_consume_out(p->s, 100); /* nothing pending: no-op */
    CU_ASSERT_EQUAL(px_tls_peek_out(p->s, &ptr), 0);
    pair_free(p);
}

static void test_take_out_drains_in_caller_sized_pieces(void)
{
    pair_t *p = pair_new(PX_TLS_VERIFY_NONE, NULL, NULL, 4096);
    uint8_t b[64];
    CU_ASSERT_EQUAL(px_tls_take_out(p->c, b, sizeof b), 0); /* nothing yet */
    CU_ASSERT_EQUAL(px_tls_handshake(p->c), PX_TLS_WANT);   /* ClientHello queued */
    size_t hello = px_tls_out_pending(p->c);
    CU_ASSERT_TRUE(hello > 100);
    size_t n = px_tls_take_out(p->c, b, sizeof b);
    CU_ASSERT_EQUAL(n, sizeof b);
    CU_ASSERT_EQUAL(b[0], 0x16); /* a handshake record */
    CU_ASSERT_EQUAL(px_tls_out_pending(p->c), hello - sizeof b);
    CU_ASSERT_EQUAL(px_tls_take_out(p->c, b, 0), 0);
    pair_free(p);
}

/* ---- close, garbage, caps ------------------------------------------------- */

static void test_close_notify_is_seen_as_closed_after_the_data(void)
{
    pair_t *p = pair_new(PX_TLS_VERIFY_FULL, ca_crt, "localhost", 4096);
    CU_ASSERT_EQUAL_FATAL(pair_handshake(p), 0);
    CU_ASSERT_EQUAL(px_tls_write(p->c, "X", 1), PX_TLS_OK);
    CU_ASSERT_EQUAL(px_tls_shutdown(p->c), PX_TLS_OK);
    CU_ASSERT_EQUAL(px_tls_shutdown(p->c), PX_TLS_OK); /* idempotent */
    uint8_t buf[16];
    size_t got = 0;
    px_tls_result_t r = flow(&p->c2s, buf, sizeof buf, &got, sizeof buf);
    CU_ASSERT_EQUAL(got, 1);
    CU_ASSERT_EQUAL(buf[0], 'X');
    if (r == PX_TLS_OK) /* data and close_notify in one read: CLOSED comes next */
        r = px_tls_read(p->s, buf, sizeof buf, &got);
    CU_ASSERT_EQUAL(r, PX_TLS_CLOSED);
    size_t n = 5;
    CU_ASSERT_EQUAL(px_tls_read(p->s, buf, sizeof buf, &n), PX_TLS_CLOSED);
    CU_ASSERT_EQUAL(n, 0);
    CU_ASSERT_FALSE(px_tls_read_pending(p->s));
    /* the side that shut down may not write again */
    CU_ASSERT_EQUAL(px_tls_write(p->c, "Y", 1), PX_TLS_ERROR);
    CU_ASSERT_TRUE(contains(px_tls_error(p->c), "shutdown"));
    /* the other side answers with its own close_notify */
    CU_ASSERT_EQUAL(px_tls_shutdown(p->s), PX_TLS_OK);
    got = 0;
    CU_ASSERT_TRUE(px_tls_out_pending(p->s) > 0);
    pair_free(p);
}

static void test_shutdown_before_handshake_queues_nothing(void)
{
    pair_t *p = pair_new(PX_TLS_VERIFY_NONE, NULL, NULL, 4096);
    CU_ASSERT_EQUAL(px_tls_shutdown(p->s), PX_TLS_OK);
    CU_ASSERT_EQUAL(px_tls_out_pending(p->s), 0);
    pair_free(p);
}

static void test_garbage_before_handshake_is_an_error_not_a_crash(void)
{
    pair_t *p = pair_new(PX_TLS_VERIFY_NONE, NULL, NULL, 4096);
    static const char http[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    size_t taken = 0;
    CU_ASSERT_EQUAL(px_tls_feed(p->s, (const uint8_t *)http, sizeof http - 1, &taken), PX_TLS_OK);
    CU_ASSERT_EQUAL(px_tls_handshake(p->s), PX_TLS_ERROR);
    CU_ASSERT_TRUE(strlen(px_tls_error(p->s)) > 0);
    CU_ASSERT_PTR_NULL(strchr(px_tls_error(p->s), '\n'));
    show("http to server", px_tls_error(p->s));
    CU_ASSERT_FALSE(px_tls_is_done(p->s));
    /* random bytes as a server's answer to the client's hello */
    uint8_t junk[700];
    fill_pattern(junk, sizeof junk, 99);
    CU_ASSERT_EQUAL(px_tls_handshake(p->c), PX_TLS_WANT);
    CU_ASSERT_EQUAL(px_tls_feed(p->c, junk, sizeof junk, &taken), PX_TLS_OK);
    CU_ASSERT_EQUAL(px_tls_handshake(p->c), PX_TLS_ERROR);
    CU_ASSERT_TRUE(strlen(px_tls_error(p->c)) > 0);
    show("junk to client", px_tls_error(p->c));
    CU_ASSERT_EQUAL(ERR_peek_error(), 0);
    pair_free(p);
}

static void test_garbage_after_handshake_is_an_error_and_stays_one(void)
{
    pair_t *p = pair_new(PX_TLS_VERIFY_FULL, ca_crt, "localhost", 4096);
    CU_ASSERT_EQUAL_FATAL(pair_handshake(p), 0);
    uint8_t buf[64];
    size_t n = 0;
    CU_ASSERT_EQUAL(px_tls_read(p->s, buf, sizeof buf, &n), PX_TLS_WANT); /* settled */
    /* a well-formed application-data record header with a body of junk */
    uint8_t rec[5 + 100] = {0x17, 0x03, 0x03, 0x00, 100};
    fill_pattern(rec + 5, 100, 1);
    size_t taken = 0;
    CU_ASSERT_EQUAL(px_tls_feed(p->s, rec, sizeof rec, &taken), PX_TLS_OK);
    CU_ASSERT_EQUAL(px_tls_read(p->s, buf, sizeof buf, &n), PX_TLS_ERROR);
    CU_ASSERT_EQUAL(n, 0);
    char first[256];
    snprintf(first, sizeof first, "%s", px_tls_error(p->s));
    CU_ASSERT_TRUE(strlen(first) > 0);
    show("junk record", first);
    /* sticky: every later call fails with the first reason */
    CU_ASSERT_EQUAL(px_tls_read(p->s, buf, sizeof buf, &n), PX_TLS_ERROR);
    CU_ASSERT_EQUAL(px_tls_write(p->s, "x", 1), PX_TLS_ERROR);
    CU_ASSERT_EQUAL(px_tls_feed(p->s, rec, sizeof rec, &taken), PX_TLS_ERROR);
    CU_ASSERT_EQUAL(taken, 0);
    CU_ASSERT_EQUAL(px_tls_handshake(p->s), PX_TLS_ERROR);
    CU_ASSERT_EQUAL(px_tls_shutdown(p->s), PX_TLS_ERROR);
    CU_ASSERT_FALSE(px_tls_is_done(p->s));
    CU_ASSERT_STRING_EQUAL(px_tls_error(p->s), first);
    CU_ASSERT_EQUAL(ERR_peek_error(), 0);
    pair_free(p);
}

static void test_oversized_record_header_is_an_error(void)
{
    pair_t *p = pair_new(PX_TLS_VERIFY_NONE, NULL, NULL, 4096);
    CU_ASSERT_EQUAL_FATAL(pair_handshake(p), 0);
    /* a record claiming 65535 bytes: refused from its header */
    uint8_t rec[5] = {0x17, 0x03, 0x03, 0xff, 0xff};
    size_t taken = 0, n = 0;
    uint8_t buf[16];
    CU_ASSERT_EQUAL(px_tls_feed(p->c, rec, sizeof rec, &taken), PX_TLS_OK);
    CU_ASSERT_EQUAL(px_tls_read(p->c, buf, sizeof buf, &n), PX_TLS_ERROR);
    pair_free(p);
}

static void test_feed_cap_is_enforced(void)
{
    pair_t *p = pair_new(PX_TLS_VERIFY_NONE, NULL, NULL, 4096);
    size_t big = PX_TLS_IN_CAP + 1000;
    uint8_t *junk = calloc(1, big);
    CU_ASSERT_PTR_NOT_NULL_FATAL(junk);
    size_t taken = 0;
    CU_ASSERT_EQUAL(px_tls_in_room(p->s), PX_TLS_IN_CAP);
    CU_ASSERT_EQUAL(px_tls_feed(p->s, junk, 1000, &taken), PX_TLS_OK);
    CU_ASSERT_EQUAL(taken, 1000);
    CU_ASSERT_EQUAL(px_tls_feed(p->s, junk, big, &taken), PX_TLS_WANT);
    CU_ASSERT_EQUAL(taken, PX_TLS_IN_CAP - 1000);
    CU_ASSERT_EQUAL(px_tls_in_pending(p->s), PX_TLS_IN_CAP);
    CU_ASSERT_EQUAL(px_tls_in_room(p->s), 0);
    CU_ASSERT_EQUAL(px_tls_feed(p->s, junk, 1, &taken), PX_TLS_WANT);
    CU_ASSERT_EQUAL(taken, 0);
    CU_ASSERT_EQUAL(px_tls_feed(p->s, junk, 0, &taken), PX_TLS_OK);
    CU_ASSERT_EQUAL(px_tls_in_pending(p->s), PX_TLS_IN_CAP);
    /* zeros are no ClientHello: the handshake fails instead of waiting */
    CU_ASSERT_EQUAL(px_tls_handshake(p->s), PX_TLS_ERROR);
    free(junk);
    pair_free(p);
}

static void test_write_before_handshake_is_refused(void)
{
    pair_t *p = pair_new(PX_TLS_VERIFY_NONE, NULL, NULL, 4096);
    CU_ASSERT_EQUAL(px_tls_write(p->c, "early", 5), PX_TLS_ERROR);
    CU_ASSERT_TRUE(contains(px_tls_error(p->c), "before the handshake"));
    show("early write", px_tls_error(p->c));
    struct iovec v = {.iov_base = "x", .iov_len = 1};
    CU_ASSERT_EQUAL(px_tls_writev(p->s, &v, 1), PX_TLS_ERROR);
    pair_free(p);
}

static void test_read_drives_the_handshake(void)
{
    pair_t *p = pair_new(PX_TLS_VERIFY_FULL, ca_crt, "localhost", 4096);
    uint8_t buf[32];
    size_t n = 0;
    /* only reads on the server side; the client uses handshake */
    for (int i = 0; i < 100 && !(px_tls_is_done(p->c) && px_tls_is_done(p->s)); i++) {
        if (!px_tls_is_done(p->c))
            CU_ASSERT_NOT_EQUAL(px_tls_handshake(p->c), PX_TLS_ERROR);
        (void)link_move(&p->c2s);
        CU_ASSERT_EQUAL(px_tls_read(p->s, buf, sizeof buf, &n), PX_TLS_WANT);
        (void)link_move(&p->s2c);
    }
    CU_ASSERT_TRUE(px_tls_is_done(p->s));
    CU_ASSERT_EQUAL(px_tls_write(p->c, "hi", 2), PX_TLS_OK);
    size_t got = 0;
    flow(&p->c2s, buf, sizeof buf, &got, sizeof buf);
    CU_ASSERT_EQUAL(got, 2);
    pair_free(p);
}

/* ---- protocol floor, with a raw OpenSSL client --------------------------- */

/* Offer exactly @p version to a px server session; true if its handshake got
 * past the ClientHello (no error after the first flight). */
static px_tls_result_t raw_client_hello(int version, char *reason, size_t len)
{
    char err[256];
    px_tls_ctx_t *sctx = px_tls_ctx_server(srv_crt, srv_key, NULL, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(sctx);
    px_tls_t *s = px_tls_new(sctx, NULL, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    SSL_CTX *rc = SSL_CTX_new(TLS_client_method());
    CU_ASSERT_PTR_NOT_NULL_FATAL(rc);
    SSL_CTX_set_security_level(rc, 0);
    CU_ASSERT_EQUAL(SSL_CTX_set_min_proto_version(rc, version), 1);
    CU_ASSERT_EQUAL(SSL_CTX_set_max_proto_version(rc, version), 1);
    if (version < TLS1_2_VERSION)
        CU_ASSERT_EQUAL(SSL_CTX_set_cipher_list(rc, "ALL:@SECLEVEL=0"), 1);
    SSL *ssl = SSL_new(rc);
    BIO *in = BIO_new(BIO_s_mem()), *out = BIO_new(BIO_s_mem());
    BIO_set_mem_eof_return(in, -1);
    SSL_set_bio(ssl, in, out);
    SSL_set_connect_state(ssl);
    px_tls_result_t r = PX_TLS_WANT;
    for (int i = 0; i < 10 && r == PX_TLS_WANT; i++) {
        (void)SSL_do_handshake(ssl);
        uint8_t buf[8192];
        int n;
        while ((n = BIO_read(out, buf, sizeof buf)) > 0) {
            size_t taken;
            CU_ASSERT_EQUAL(px_tls_feed(s, buf, (size_t)n, &taken), PX_TLS_OK);
        }
        r = px_tls_handshake(s);
        size_t k;
        while ((k = px_tls_take_out(s, buf, sizeof buf)) > 0)
            BIO_write(in, buf, (int)k);
    }
    snprintf(reason, len, "%s|%s", px_tls_error(s), r == PX_TLS_OK ? px_tls_cipher(s) : "");
    SSL_free(ssl);
    SSL_CTX_free(rc);
    ERR_clear_error();
    px_tls_free(s);
    px_tls_ctx_free(sctx);
    return r;
}

static void test_tls12_client_is_accepted_with_an_aead_suite(void)
{
    char reason[512];
    CU_ASSERT_EQUAL(raw_client_hello(TLS1_2_VERSION, reason, sizeof reason), PX_TLS_OK);
    show("tls1.2 server error|cipher", reason);
    CU_ASSERT_TRUE(contains(reason, "GCM") || contains(reason, "CHACHA20"));
}

static void test_tls11_client_is_refused(void)
{
    char reason[512];
    CU_ASSERT_EQUAL(raw_client_hello(TLS1_1_VERSION, reason, sizeof reason), PX_TLS_ERROR);
    show("tls1.1 server error|cipher", reason);
    CU_ASSERT_TRUE(contains(reason, "protocol") || contains(reason, "version"));
}

/* ---- threads -------------------------------------------------------------- */

typedef struct worker_arg {
    px_tls_ctx_t *sctx, *cctx;
    int rounds;
    int ok;
} worker_arg_t;

/* CUnit asserts are not thread-safe: count successes, assert in main. */
static void *handshake_worker(void *argp)
{
    worker_arg_t *a = argp;
    for (int i = 0; i < a->rounds; i++) {
        pair_t *p = calloc(1, sizeof *p);
        char err[256];
        if (!p)
            break;
        p->s = px_tls_new(a->sctx, NULL, err, sizeof err);
        p->c = px_tls_new(a->cctx, "localhost", err, sizeof err);
        if (p->s && p->c) {
            p->c2s = (link_t){.from = p->c, .to = p->s, .chunk = 1500};
            p->s2c = (link_t){.from = p->s, .to = p->c, .chunk = 1500};
            p->rs = p->rc = PX_TLS_WANT;
            uint8_t buf[64];
            size_t got = 0;
            if (pair_handshake(p) == 0 && px_tls_write(p->c, "ping", 4) == PX_TLS_OK &&
                flow(&p->c2s, buf, sizeof buf, &got, sizeof buf) != PX_TLS_ERROR && got == 4 &&
                memcmp(buf, "ping", 4) == 0)
                a->ok++;
        }
        px_tls_free(p->s);
        px_tls_free(p->c);
        free(p);
    }
    return NULL;
}

static void test_shared_contexts_serve_concurrent_threads(void)
{
    char err[256];
    px_tls_ctx_t *sctx = px_tls_ctx_server(srv_crt, srv_key, NULL, err, sizeof err);
    px_tls_ctx_t *cctx = px_tls_ctx_client(PX_TLS_VERIFY_FULL, ca_crt, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(sctx);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cctx);
    enum { THREADS = 4, ROUNDS = 15 };
    pthread_t th[THREADS];
    worker_arg_t args[THREADS];
    for (int i = 0; i < THREADS; i++) {
        args[i] = (worker_arg_t){.sctx = sctx, .cctx = cctx, .rounds = ROUNDS};
        CU_ASSERT_EQUAL_FATAL(pthread_create(&th[i], NULL, handshake_worker, &args[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        CU_ASSERT_EQUAL(args[i].ok, ROUNDS);
    }
    px_tls_ctx_free(sctx);
    px_tls_ctx_free(cctx);
}

typedef struct finish_arg {
    pair_t *p;
    int rc;
} finish_arg_t;

static void *finish_handshake(void *argp)
{
    finish_arg_t *a = argp;
    a->rc = pair_handshake(a->p);
    return NULL;
}

static void test_session_moves_between_threads(void)
{
    pair_t *p = pair_new(PX_TLS_VERIFY_FULL, ca_crt, "localhost", 4096);
    /* first flight on this thread, the rest on another, data back here */
    CU_ASSERT_EQUAL(px_tls_handshake(p->c), PX_TLS_WANT);
    p->rc = PX_TLS_WANT;
    finish_arg_t a = {.p = p, .rc = -9};
    pthread_t th;
    CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, finish_handshake, &a), 0);
    pthread_join(th, NULL);
    CU_ASSERT_EQUAL(a.rc, 0);
    CU_ASSERT_EQUAL(px_tls_write(p->s, "moved", 5), PX_TLS_OK);
    uint8_t buf[16];
    size_t got = 0;
    flow(&p->s2c, buf, sizeof buf, &got, sizeof buf);
    CU_ASSERT_EQUAL(got, 5);
    pair_free(p);
}

static void test_result_and_verify_names(void)
{
    CU_ASSERT_STRING_EQUAL(px_tls_result_to_str(PX_TLS_OK), "ok");
    CU_ASSERT_STRING_EQUAL(px_tls_result_to_str(PX_TLS_WANT), "want");
    CU_ASSERT_STRING_EQUAL(px_tls_result_to_str(PX_TLS_CLOSED), "closed");
    CU_ASSERT_STRING_EQUAL(px_tls_result_to_str(PX_TLS_ERROR), "error");
    CU_ASSERT_STRING_EQUAL(px_tls_result_to_str((px_tls_result_t)99), "?");
    CU_ASSERT_STRING_EQUAL(px_tls_verify_to_str(PX_TLS_VERIFY_NONE), "none");
    CU_ASSERT_STRING_EQUAL(px_tls_verify_to_str(PX_TLS_VERIFY_CA), "verify-ca");
    CU_ASSERT_STRING_EQUAL(px_tls_verify_to_str(PX_TLS_VERIFY_FULL), "verify-full");
}

#define TEST(fn)                                                                                   \
    {                                                                                              \
#fn, fn                                                                                    \
    }

int main(void)
{
    static const struct {
        const char *name;
        CU_TestFunc fn;
    } tests[] = {
        TEST(test_handshake_completes_with_verify_none),
        TEST(test_handshake_completes_with_verify_ca),
        TEST(test_handshake_completes_with_verify_full_by_dns_name),
        TEST(test_handshake_completes_with_verify_full_by_ip_address),
        TEST(test_verify_full_wrong_host_fails_naming_the_host),
        TEST(test_verify_full_wrong_ip_address_fails_naming_it),
        TEST(test_verify_full_rejects_partial_wildcard_and_suffix_names),
        TEST(test_verify_ca_with_unknown_ca_fails),
        TEST(test_verify_ca_does_not_check_the_host_name),
        TEST(test_verify_none_accepts_a_certificate_from_an_unknown_ca),
        TEST(test_verify_full_without_host_is_refused_by_new),
        TEST(test_handshake_survives_one_byte_fragments),
        TEST(test_server_with_ca_accepts_a_client_without_certificate),
        TEST(test_version_cipher_and_peer_cn_describe_the_session),
        TEST(test_channel_binding_is_the_server_certificate_hash_on_both_ends),
        TEST(test_server_ctx_reports_missing_files_and_mismatched_key),
        TEST(test_client_ctx_reports_a_missing_ca_file),
        TEST(test_ctx_outlives_its_creator_reference_while_sessions_use_it),
        TEST(test_data_round_trips_both_ways),
        TEST(test_one_megabyte_round_trips_in_chunks_both_ways),
        TEST(test_one_byte_fragments_fed_one_at_a_time_deliver_data),
        TEST(test_writev_gathers_small_pieces_into_few_records),
        TEST(test_peek_and_consume_out_send_without_copying),
        TEST(test_take_out_drains_in_caller_sized_pieces),
        TEST(test_close_notify_is_seen_as_closed_after_the_data),
        TEST(test_shutdown_before_handshake_queues_nothing),
        TEST(test_garbage_before_handshake_is_an_error_not_a_crash),
        TEST(test_garbage_after_handshake_is_an_error_and_stays_one),
        TEST(test_oversized_record_header_is_an_error),
        TEST(test_feed_cap_is_enforced),
        TEST(test_write_before_handshake_is_refused),
        TEST(test_read_drives_the_handshake),
        TEST(test_tls12_client_is_accepted_with_an_aead_suite),
        TEST(test_tls11_client_is_refused),
        TEST(test_shared_contexts_serve_concurrent_threads),
        TEST(test_session_moves_between_threads),
        TEST(test_result_and_verify_names),
    };
    unsigned failures;

    if (make_certs() != 0) {
        fprintf(stderr, "test_tls: could not make test certificates in %s\n", dir);
        remove_certs();
        return 2;
    }
    if (CU_initialize_registry() != CUE_SUCCESS) {
        remove_certs();
        return 2;
    }
    CU_pSuite suite = CU_add_suite("tls", NULL, NULL);
    if (!suite)
        goto fail;
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++)
        if (!CU_add_test(suite, tests[i].name, tests[i].fn))
            goto fail;
    CU_basic_set_mode(CU_BRM_VERBOSE);
    if (CU_basic_run_tests() != CUE_SUCCESS)
        goto fail;
    failures = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
    CU_cleanup_registry();
    remove_certs();
    return failures ? 1 : 0;
fail:
    CU_cleanup_registry();
    remove_certs();
    return 2;
}
