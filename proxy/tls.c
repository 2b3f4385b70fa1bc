/*
 * tls.c - the TLS engine: OpenSSL 3 over two memory BIOs per session, one for
 * ciphertext received from the peer (fed by the caller) and one for
 * ciphertext to send (drained by the caller). The engine never sees a socket,
 * a loop or a thread; the caller's read callback and write path move the
 * bytes, so the same code serves client sessions (proxy as TLS server) and
 * server connections (proxy as TLS client to PostgreSQL) and is tested by
 * pumping bytes between two sessions in one process.
 *
 * Invariants:
 *  - The input BIO never holds more than PX_TLS_IN_CAP bytes: px_tls_feed
 *    takes only what fits. OpenSSL reads records from it without read-ahead,
 *    so what it has not consumed is exactly px_tls_in_pending().
 *  - The output BIO is unbounded: px_tls_write encrypts everything it is given
 *    (a memory BIO never blocks, so SSL_write never wants to write); the
 *    caller's socket backpressure bounds what it writes.
 *  - A BIO whose buffer grew past PX_TLS_KEEP is replaced by an empty one as
 *    soon as it drains, and SSL_MODE_RELEASE_BUFFERS frees OpenSSL's record
 *    buffers between records, so an idle session holds no data buffers.
 *  - Every call starts with an empty OpenSSL error queue and leaves it empty
 *    (the queue is thread-local; a session may move between threads).
 *  - A failure is sticky: once _state is TLS_FAILED every call returns
 *    PX_TLS_ERROR and _err keeps the first reason.
 * Contexts are immutable after creation and refcounted with C11 atomics; each
 * session holds one reference.
 */
#include "px_tls.h"

#include <arpa/inet.h>
#include <limits.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/buffer.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

/* A drained BIO whose buffer grew beyond this is swapped for a fresh one. */
#define PX_TLS_KEEP (16u * 1024)
/* Gather buffer of px_tls_writev: one full TLS record of plaintext. */
#define PX_TLS_RECORD  16384u
#define PX_TLS_ERR_LEN 256

/* TLS 1.2 suites: forward secrecy and AEAD only (Mozilla "intermediate").
 * TLS 1.3 suites are OpenSSL's defaults, all of which qualify. */
#define PX_TLS12_CIPHERS                                                                           \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"                                   \
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"                                   \
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"                                   \
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305"

#define PX_TLS_SESSION_ID_CTX "fastnext-proxy"

struct px_tls_ctx {
    SSL_CTX *_ssl_ctx;       /* owned; shared by every session made from it */
    atomic_int _refs;        /* the creator's reference + one per live session */
    bool _server;            /* made by px_tls_ctx_server */
    px_tls_verify_t _verify; /* client contexts: what is checked */
};

/* Where a session is. Moves only forward: HANDSHAKE -> OPEN -> PEER_CLOSED,
 * and from any of them to FAILED, which is final. */
typedef enum tls_state {
    TLS_HANDSHAKE = 0, /* handshake not complete yet */
    TLS_OPEN,          /* handshake complete, data flows */
    TLS_PEER_CLOSED,   /* the peer's close_notify was read; we may still write */
    TLS_FAILED,        /* fatal error; _err says why */
} tls_state_t;

struct px_tls {
    SSL *_ssl;                 /* owned; owns both memory BIOs (see SSL_set_bio) */
    px_tls_ctx_t *_ctx;        /* one reference, dropped by px_tls_free */
    char *_host;               /* client: the host dialled (for messages), owned */
    tls_state_t _state;        /* see tls_state_t */
    bool _shutdown_sent;       /* our close_notify is queued (any state but FAILED) */
    char _err[PX_TLS_ERR_LEN]; /* first failure reason, "" while none */
};

const char *px_tls_result_to_str(px_tls_result_t r)
{
    switch (r) {
    case PX_TLS_OK:
        return "ok";
    case PX_TLS_WANT:
        return "want";
    case PX_TLS_CLOSED:
        return "closed";
    case PX_TLS_ERROR:
        return "error";
    }
    return "?";
}

const char *px_tls_verify_to_str(px_tls_verify_t v)
{
    switch (v) {
    case PX_TLS_VERIFY_NONE:
        return "none";
    case PX_TLS_VERIFY_CA:
        return "verify-ca";
    case PX_TLS_VERIFY_FULL:
        return "verify-full";
    }
    return "?";
}

/* ---- errors ---------------------------------------------------------------- */

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* The reason of the earliest queued OpenSSL error, then the queue is emptied. */
static const char *ssl_reason(char *buf, size_t len)
{
    unsigned long e = ERR_peek_error();
    if (e == 0) {
        snprintf(buf, len, "unknown error");
    } else {
        const char *r = ERR_reason_error_string(e);
        if (r)
            snprintf(buf, len, "%s", r);
        else
            ERR_error_string_n(e, buf, len);
    }
    ERR_clear_error();
    return buf;
}

/* The CN of @p cert into @p buf; false if it has none (or an embedded NUL). */
static bool cert_cn(X509 *cert, char *buf, size_t len)
{
    if (!cert || len == 0)
        return false;
    X509_NAME *name = X509_get_subject_name(cert);
    int i = name ? X509_NAME_get_index_by_NID(name, NID_commonName, -1) : -1;
    if (i < 0)
        return false;
    ASN1_STRING *s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
    unsigned char *utf8 = NULL;
    int n = s ? ASN1_STRING_to_UTF8(&utf8, s) : -1;
    if (n < 0)
        return false;
    bool ok = strlen((const char *)utf8) == (size_t)n;
    if (ok)
        snprintf(buf, len, "%s", (const char *)utf8);
    OPENSSL_free(utf8);
    return ok;
}

/* The peer's leaf certificate, also when it failed verification (then it is
 * only in the received chain, which a client keeps with the leaf first). */
static X509 *peer_leaf(const SSL *ssl)
{
    X509 *x = SSL_get0_peer_certificate(ssl);
    if (x)
        return x;
    STACK_OF(X509) *chain = SSL_get_peer_cert_chain(ssl);
    return chain && sk_X509_num(chain) > 0 ? sk_X509_value(chain, 0) : NULL;
}

/*
 * Mark @p t failed after an SSL call returned @p ssl_error, with the best
 * one-line reason: a certificate verification failure names what failed (and
 * the host, for a name mismatch); anything else is OpenSSL's reason string
 * ("wrong version number", "tlsv1 alert unknown ca", ...).
 */
static void tls_fail(px_tls_t *t, int ssl_error)
{
    char reason[160];
    t->_state = TLS_FAILED;
    unsigned long e = ERR_peek_error();
    long vr = SSL_get_verify_result(t->_ssl);
    if (ERR_GET_LIB(e) == ERR_LIB_SSL && ERR_GET_REASON(e) == SSL_R_CERTIFICATE_VERIFY_FAILED &&
        vr != X509_V_OK) {
        const char *what = X509_verify_cert_error_string(vr);
        char cn[96];
        if (vr == X509_V_ERR_HOSTNAME_MISMATCH || vr == X509_V_ERR_IP_ADDRESS_MISMATCH) {
            snprintf(t->_err, sizeof t->_err,
                     "certificate verify failed: %s: certificate is not for \"%s\"", what,
                     t->_host ? t->_host : "");
        } else if (cert_cn(peer_leaf(t->_ssl), cn, sizeof cn)) {
            snprintf(t->_err, sizeof t->_err,
                     "certificate verify failed: %s (certificate CN \"%s\")", what, cn);
        } else {
            snprintf(t->_err, sizeof t->_err, "certificate verify failed: %s", what);
        }
        ERR_clear_error();
        return;
    }
    if (e != 0 && ERR_GET_LIB(e) == ERR_LIB_SSL && ERR_GET_REASON(e) >= SSL_AD_REASON_OFFSET)
        snprintf(t->_err, sizeof t->_err, "peer sent %s", ssl_reason(reason, sizeof reason));
    else if (e != 0)
        snprintf(t->_err, sizeof t->_err, "%s", ssl_reason(reason, sizeof reason));
    else if (ssl_error == SSL_ERROR_SYSCALL)
        snprintf(t->_err, sizeof t->_err, "unexpected end of TLS stream");
    else
        snprintf(t->_err, sizeof t->_err, "TLS failure (SSL error %d)", ssl_error);
    ERR_clear_error();
}

static void tls_fail_msg(px_tls_t *t, const char *msg)
{
    if (t->_state != TLS_FAILED)
        snprintf(t->_err, sizeof t->_err, "%s", msg);
    t->_state = TLS_FAILED;
    ERR_clear_error();
}

/* ---- contexts -------------------------------------------------------------- */

/* Settings common to both roles. False with OpenSSL's reason in @p err. */
static bool ctx_common(SSL_CTX *c, char *err, size_t errlen)
{
    char reason[160];
    if (!SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION) ||
        !SSL_CTX_set_cipher_list(c, PX_TLS12_CIPHERS)) {
        set_err(err, errlen, "TLS settings: %s", ssl_reason(reason, sizeof reason));
        return false;
    }
    SSL_CTX_set_options(c, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    SSL_CTX_set_mode(c, SSL_MODE_RELEASE_BUFFERS);
    /* one record at a time: keeps px_tls_in_pending exact */
    SSL_CTX_set_read_ahead(c, 0);
    return true;
}

static px_tls_ctx_t *ctx_wrap(SSL_CTX *c, bool server, px_tls_verify_t verify, char *err,
                              size_t errlen)
{
    px_tls_ctx_t *ctx = calloc(1, sizeof *ctx);
    if (!ctx) {
        SSL_CTX_free(c);
        set_err(err, errlen, "out of memory");
        return NULL;
    }
    ctx->_ssl_ctx = c;
    atomic_init(&ctx->_refs, 1);
    ctx->_server = server;
    ctx->_verify = verify;
    return ctx;
}

px_tls_ctx_t *px_tls_ctx_server(const char *cert_file, const char *key_file, const char *ca_file,
                                char *err, size_t errlen)
{
    char reason[160];
    ERR_clear_error();
    if (!cert_file || !*cert_file || !key_file || !*key_file) {
        set_err(err, errlen, "TLS server needs a certificate and a key file");
        return NULL;
    }
    SSL_CTX *c = SSL_CTX_new(TLS_server_method());
    if (!c) {
        set_err(err, errlen, "SSL_CTX_new: %s", ssl_reason(reason, sizeof reason));
        return NULL;
    }
    if (!ctx_common(c, err, errlen))
        goto fail;
    SSL_CTX_set_dh_auto(c, 1);
    if (!SSL_CTX_set_session_id_context(c, (const unsigned char *)PX_TLS_SESSION_ID_CTX,
                                        sizeof PX_TLS_SESSION_ID_CTX - 1)) {
        set_err(err, errlen, "TLS settings: %s", ssl_reason(reason, sizeof reason));
        goto fail;
    }
    if (SSL_CTX_use_certificate_chain_file(c, cert_file) != 1) {
        set_err(err, errlen, "cannot load certificate \"%s\": %s", cert_file,
                ssl_reason(reason, sizeof reason));
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(c, key_file, SSL_FILETYPE_PEM) != 1) {
        set_err(err, errlen, "cannot load private key \"%s\": %s", key_file,
                ssl_reason(reason, sizeof reason));
        goto fail;
    }
    if (SSL_CTX_check_private_key(c) != 1) {
        set_err(err, errlen, "private key \"%s\" does not match certificate \"%s\": %s", key_file,
                cert_file, ssl_reason(reason, sizeof reason));
        goto fail;
    }
    if (ca_file && *ca_file) {
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(ca_file);
        if (!names || SSL_CTX_load_verify_locations(c, ca_file, NULL) != 1) {
            sk_X509_NAME_pop_free(names, X509_NAME_free);
            set_err(err, errlen, "cannot load CA file \"%s\": %s", ca_file,
                    ssl_reason(reason, sizeof reason));
            goto fail;
        }
        SSL_CTX_set_client_CA_list(c, names); /* takes ownership */
        SSL_CTX_set_verify(c, SSL_VERIFY_PEER, NULL);
    }
    ERR_clear_error();
    return ctx_wrap(c, true, PX_TLS_VERIFY_NONE, err, errlen);
fail:
    ERR_clear_error();
    SSL_CTX_free(c);
    return NULL;
}

px_tls_ctx_t *px_tls_ctx_client(px_tls_verify_t mode, const char *ca_file, char *err, size_t errlen)
{
    char reason[160];
    ERR_clear_error();
    if (mode != PX_TLS_VERIFY_NONE && mode != PX_TLS_VERIFY_CA && mode != PX_TLS_VERIFY_FULL) {
        set_err(err, errlen, "unknown TLS verify mode %d", (int)mode);
        return NULL;
    }
    SSL_CTX *c = SSL_CTX_new(TLS_client_method());
    if (!c) {
        set_err(err, errlen, "SSL_CTX_new: %s", ssl_reason(reason, sizeof reason));
        return NULL;
    }
    if (!ctx_common(c, err, errlen))
        goto fail;
    /* nothing would ever resume a session: keep none */
    SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
    if (mode == PX_TLS_VERIFY_NONE) {
        SSL_CTX_set_verify(c, SSL_VERIFY_NONE, NULL);
    } else {
        if (ca_file && *ca_file) {
            if (SSL_CTX_load_verify_locations(c, ca_file, NULL) != 1) {
                set_err(err, errlen, "cannot load CA file \"%s\": %s", ca_file,
                        ssl_reason(reason, sizeof reason));
                goto fail;
            }
        } else if (SSL_CTX_set_default_verify_paths(c) != 1) {
            set_err(err, errlen, "cannot load the system CA store: %s",
                    ssl_reason(reason, sizeof reason));
            goto fail;
        }
        SSL_CTX_set_verify(c, SSL_VERIFY_PEER, NULL);
    }
    ERR_clear_error();
    return ctx_wrap(c, false, mode, err, errlen);
fail:
    ERR_clear_error();
    SSL_CTX_free(c);
    return NULL;
}

px_tls_ctx_t *px_tls_ctx_ref(px_tls_ctx_t *ctx)
{
    if (ctx)
        atomic_fetch_add_explicit(&ctx->_refs, 1, memory_order_relaxed);
    return ctx;
}

void px_tls_ctx_free(px_tls_ctx_t *ctx)
{
    if (!ctx)
        return;
    if (atomic_fetch_sub_explicit(&ctx->_refs, 1, memory_order_acq_rel) != 1)
        return;
    SSL_CTX_free(ctx->_ssl_ctx);
    free(ctx);
}

bool px_tls_ctx_is_server(const px_tls_ctx_t *ctx)
{
    return ctx->_server;
}

px_tls_verify_t px_tls_ctx_verify(const px_tls_ctx_t *ctx)
{
    return ctx->_server ? PX_TLS_VERIFY_NONE : ctx->_verify;
}

/* ---- sessions -------------------------------------------------------------- */

static BIO *mem_bio_new(void)
{
    BIO *b = BIO_new(BIO_s_mem());
    if (b)
        BIO_set_mem_eof_return(b, -1); /* empty means "retry later", not EOF */
    return b;
}

static bool is_ip_literal(const char *host)
{
    unsigned char addr[16];
    return inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1;
}

px_tls_t *px_tls_new(px_tls_ctx_t *ctx, const char *peer_host, char *err, size_t errlen)
{
    char reason[160];
    ERR_clear_error();
    if (!ctx) {
        set_err(err, errlen, "no TLS context");
        return NULL;
    }
    if (!ctx->_server && ctx->_verify == PX_TLS_VERIFY_FULL && (!peer_host || !*peer_host)) {
        set_err(err, errlen, "verify-full needs the server's host name");
        return NULL;
    }
    px_tls_t *t = calloc(1, sizeof *t);
    if (!t) {
        set_err(err, errlen, "out of memory");
        return NULL;
    }
    BIO *in = NULL, *out = NULL;
    t->_ssl = SSL_new(ctx->_ssl_ctx);
    in = mem_bio_new();
    out = mem_bio_new();
    if (!t->_ssl || !in || !out) {
        set_err(err, errlen, "out of memory");
        goto fail;
    }
    SSL_set_bio(t->_ssl, in, out); /* the SSL owns them from here */
    in = out = NULL;
    if (ctx->_server) {
        SSL_set_accept_state(t->_ssl);
    } else {
        SSL_set_connect_state(t->_ssl);
        if (peer_host && *peer_host) {
            t->_host = strdup(peer_host);
            if (!t->_host) {
                set_err(err, errlen, "out of memory");
                goto fail;
            }
            bool ip = is_ip_literal(peer_host);
            bool ok = true;
            if (!ip)
                ok = SSL_set_tlsext_host_name(t->_ssl, peer_host) == 1;
            if (ok && ctx->_verify == PX_TLS_VERIFY_FULL) {
                if (ip) {
                    ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->_ssl), peer_host) == 1;
                } else {
                    SSL_set_hostflags(t->_ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
                    ok = SSL_set1_host(t->_ssl, peer_host) == 1;
                }
            }
            if (!ok) {
                set_err(err, errlen, "bad TLS host name \"%s\": %s", peer_host,
                        ssl_reason(reason, sizeof reason));
                goto fail;
            }
        }
    }
    t->_ctx = px_tls_ctx_ref(ctx);
    ERR_clear_error();
    return t;
fail:
    ERR_clear_error();
    BIO_free(in);
    BIO_free(out);
    SSL_free(t->_ssl);
    free(t->_host);
    free(t);
    return NULL;
}

void px_tls_free(px_tls_t *t)
{
    if (!t)
        return;
    SSL_free(t->_ssl);
    free(t->_host);
    px_tls_ctx_t *ctx = t->_ctx;
    free(t);
    px_tls_ctx_free(ctx);
}

/* Swap a drained BIO that grew past PX_TLS_KEEP for an empty one, returning
 * its buffer. On allocation failure the old one simply stays. */
static void bio_trim(px_tls_t *t, bool input)
{
    BIO *b = input ? SSL_get_rbio(t->_ssl) : SSL_get_wbio(t->_ssl);
    BUF_MEM *bm = NULL;
    if (!b || BIO_ctrl_pending(b) != 0)
        return;
    BIO_get_mem_ptr(b, &bm);
    if (!bm || bm->max <= PX_TLS_KEEP)
        return;
    BIO *nb = mem_bio_new();
    if (!nb)
        return;
    if (input)
        SSL_set0_rbio(t->_ssl, nb); /* frees the old one */
    else
        SSL_set0_wbio(t->_ssl, nb);
}

size_t px_tls_in_pending(const px_tls_t *t)
{
    return BIO_ctrl_pending(SSL_get_rbio(t->_ssl));
}

size_t px_tls_in_room(const px_tls_t *t)
{
    size_t pending = px_tls_in_pending(t);
    return pending >= PX_TLS_IN_CAP ? 0 : PX_TLS_IN_CAP - pending;
}

px_tls_result_t px_tls_feed(px_tls_t *t, const uint8_t *cipher, size_t n, size_t *taken)
{
    *taken = 0;
    if (t->_state == TLS_FAILED)
        return PX_TLS_ERROR;
    size_t k = px_tls_in_room(t);
    if (k > n)
        k = n;
    if (k > 0) {
        ERR_clear_error();
        if (BIO_write(SSL_get_rbio(t->_ssl), cipher, (int)k) != (int)k) {
            tls_fail_msg(t, "out of memory buffering TLS input");
            return PX_TLS_ERROR;
        }
        *taken = k;
    }
    return k == n ? PX_TLS_OK : PX_TLS_WANT;
}

px_tls_result_t px_tls_handshake(px_tls_t *t)
{
    if (t->_state == TLS_FAILED)
        return PX_TLS_ERROR;
    if (t->_state != TLS_HANDSHAKE)
        return PX_TLS_OK;
    ERR_clear_error();
    int rc = SSL_do_handshake(t->_ssl);
    if (rc == 1) {
        t->_state = TLS_OPEN;
        bio_trim(t, true);
        return PX_TLS_OK;
    }
    int e = SSL_get_error(t->_ssl, rc);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        ERR_clear_error();
        return PX_TLS_WANT;
    }
    tls_fail(t, e);
    return PX_TLS_ERROR;
}

bool px_tls_is_done(const px_tls_t *t)
{
    return t->_state == TLS_OPEN || t->_state == TLS_PEER_CLOSED;
}

px_tls_result_t px_tls_read(px_tls_t *t, uint8_t *plain, size_t cap, size_t *got)
{
    *got = 0;
    if (t->_state == TLS_FAILED)
        return PX_TLS_ERROR;
    if (t->_state == TLS_PEER_CLOSED)
        return PX_TLS_CLOSED;
    if (t->_state == TLS_HANDSHAKE) {
        px_tls_result_t r = px_tls_handshake(t);
        if (r != PX_TLS_OK)
            return r;
    }
    size_t total = 0;
    while (total < cap) {
        size_t k = 0;
        ERR_clear_error();
        if (SSL_read_ex(t->_ssl, plain + total, cap - total, &k) == 1) {
            total += k;
            continue;
        }
        int e = SSL_get_error(t->_ssl, 0);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
            ERR_clear_error();
        } else if (e == SSL_ERROR_ZERO_RETURN) {
            ERR_clear_error();
            t->_state = TLS_PEER_CLOSED;
        } else {
            tls_fail(t, e); /* data already read is still returned, below */
        }
        break;
    }
    bio_trim(t, true);
    *got = total;
    if (total > 0)
        return PX_TLS_OK;
    if (t->_state == TLS_FAILED)
        return PX_TLS_ERROR;
    return t->_state == TLS_PEER_CLOSED ? PX_TLS_CLOSED : PX_TLS_WANT;
}

bool px_tls_read_pending(const px_tls_t *t)
{
    if (t->_state == TLS_FAILED || t->_state == TLS_PEER_CLOSED)
        return false;
    return SSL_has_pending(t->_ssl) || px_tls_in_pending(t) > 0;
}

/* Encrypt all of @p p into the output BIO. */
static px_tls_result_t write_all(px_tls_t *t, const uint8_t *p, size_t n)
{
    while (n > 0) {
        size_t k = 0;
        ERR_clear_error();
        if (SSL_write_ex(t->_ssl, p, n, &k) != 1) {
            tls_fail(t, SSL_get_error(t->_ssl, 0));
            return PX_TLS_ERROR;
        }
        p += k;
        n -= k;
    }
    return PX_TLS_OK;
}

static px_tls_result_t write_check(px_tls_t *t)
{
    if (t->_state == TLS_FAILED)
        return PX_TLS_ERROR;
    if (t->_state == TLS_HANDSHAKE) {
        tls_fail_msg(t, "TLS write before the handshake completed");
        return PX_TLS_ERROR;
    }
    if (t->_shutdown_sent) {
        tls_fail_msg(t, "TLS write after shutdown");
        return PX_TLS_ERROR;
    }
    return PX_TLS_OK;
}

px_tls_result_t px_tls_write(px_tls_t *t, const void *plain, size_t n)
{
    px_tls_result_t r = write_check(t);
    if (r != PX_TLS_OK)
        return r;
    return write_all(t, plain, n);
}

px_tls_result_t px_tls_writev(px_tls_t *t, const struct iovec *iov, int n)
{
    px_tls_result_t r = write_check(t);
    if (r != PX_TLS_OK)
        return r;
    uint8_t stage[PX_TLS_RECORD];
    size_t used = 0;
    for (int i = 0; i < n; i++) {
        const uint8_t *p = iov[i].iov_base;
        size_t len = iov[i].iov_len;
        while (len > 0) {
            if (used == 0 && len >= sizeof stage) {
                /* big enough for full records by itself: no copy */
                if (write_all(t, p, len) != PX_TLS_OK)
                    return PX_TLS_ERROR;
                break;
            }
            size_t c = sizeof stage - used;
            if (c > len)
                c = len;
            memcpy(stage + used, p, c);
            used += c;
            p += c;
            len -= c;
            if (used == sizeof stage) {
                if (write_all(t, stage, used) != PX_TLS_OK)
                    return PX_TLS_ERROR;
                used = 0;
            }
        }
    }
    return used ? write_all(t, stage, used) : PX_TLS_OK;
}

px_tls_result_t px_tls_shutdown(px_tls_t *t)
{
    if (t->_state == TLS_FAILED)
        return PX_TLS_ERROR;
    if (t->_state == TLS_HANDSHAKE || t->_shutdown_sent)
        return PX_TLS_OK;
    ERR_clear_error();
    int rc = SSL_shutdown(t->_ssl);
    if (rc < 0) {
        int e = SSL_get_error(t->_ssl, rc);
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
            tls_fail(t, e);
            return PX_TLS_ERROR;
        }
    }
    ERR_clear_error();
    t->_shutdown_sent = true;
    return PX_TLS_OK;
}

size_t px_tls_out_pending(const px_tls_t *t)
{
    return BIO_ctrl_pending(SSL_get_wbio(t->_ssl));
}

size_t px_tls_take_out(px_tls_t *t, uint8_t *buf, size_t cap)
{
    BIO *b = SSL_get_wbio(t->_ssl);
    size_t pending = BIO_ctrl_pending(b);
    if (cap > pending)
        cap = pending;
    if (cap > INT_MAX)
        cap = INT_MAX;
    if (cap == 0)
        return 0;
    int n = BIO_read(b, buf, (int)cap);
    ERR_clear_error();
    if (n <= 0)
        return 0;
    bio_trim(t, false);
    return (size_t)n;
}

size_t px_tls_peek_out(const px_tls_t *t, const uint8_t **p)
{
    char *data = NULL;
    long n = BIO_get_mem_data(SSL_get_wbio(t->_ssl), &data);
    *p = (const uint8_t *)data;
    return n > 0 ? (size_t)n : 0;
}

void px_tls_consume_out(px_tls_t *t, size_t n)
{
    BIO *b = SSL_get_wbio(t->_ssl);
    size_t pending = BIO_ctrl_pending(b);
    if (n > pending)
        n = pending;
    if (n == 0)
        return;
    /* a memory BIO seeks its read position within the unread data */
    if (BIO_seek(b, BIO_tell(b) + (long)n) < 0) {
        uint8_t sink[4096];
        while (n > 0) {
            int k = BIO_read(b, sink, (int)(n < sizeof sink ? n : sizeof sink));
            if (k <= 0)
                break;
            n -= (size_t)k;
        }
    }
    ERR_clear_error();
    bio_trim(t, false);
}

const char *px_tls_error(const px_tls_t *t)
{
    return t->_err;
}

const char *px_tls_version(const px_tls_t *t)
{
    return px_tls_is_done(t) ? SSL_get_version(t->_ssl) : "";
}

const char *px_tls_cipher(const px_tls_t *t)
{
    if (!px_tls_is_done(t))
        return "";
    const SSL_CIPHER *c = SSL_get_current_cipher(t->_ssl);
    return c ? SSL_CIPHER_get_name(c) : "";
}

bool px_tls_peer_cn(const px_tls_t *t, char *buf, size_t len)
{
    if (!px_tls_is_done(t))
        return false;
    bool ok = cert_cn(SSL_get0_peer_certificate(t->_ssl), buf, len);
    ERR_clear_error();
    return ok;
}

bool px_tls_peer_verified(const px_tls_t *t)
{
    if (!px_tls_is_done(t) || !SSL_get0_peer_certificate(t->_ssl))
        return false;
    if (!t->_ctx->_server && t->_ctx->_verify == PX_TLS_VERIFY_NONE)
        return false; /* nothing was checked against a CA */
    return SSL_get_verify_result(t->_ssl) == X509_V_OK;
}

bool px_tls_channel_binding(const px_tls_t *t, uint8_t out[PX_TLS_CB_MAX], size_t *len)
{
    *len = 0;
    if (!px_tls_is_done(t))
        return false;
    X509 *cert =
        t->_ctx->_server ? SSL_get_certificate(t->_ssl) : SSL_get0_peer_certificate(t->_ssl);
    int md_nid = NID_undef;
    if (!cert || !OBJ_find_sigid_algs(X509_get_signature_nid(cert), &md_nid, NULL))
        return false;
    const EVP_MD *md = NULL;
    if (md_nid == NID_md5 || md_nid == NID_sha1)
        md = EVP_sha256(); /* RFC 5929 section 4.1 */
    else if (md_nid != NID_undef)
        md = EVP_get_digestbynid(md_nid);
    unsigned int n = 0;
    bool ok = md && EVP_MD_get_size(md) <= PX_TLS_CB_MAX && X509_digest(cert, md, out, &n) == 1;
    ERR_clear_error();
    if (ok)
        *len = n;
    return ok;
}
