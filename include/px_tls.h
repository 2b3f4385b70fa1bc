/**
 * @file px_tls.h
 * TLS engine over OpenSSL 3 memory BIOs. Nothing here touches a socket, a loop
 * or a thread: the caller moves ciphertext in (px_tls_feed) and out
 * (px_tls_take_out) and plaintext through px_tls_read / px_tls_write, so the
 * engine drops into any read callback and write path, and is unit-testable by
 * pumping bytes between two in-process ends.
 *
 * Driving one connection (the caller owns the socket):
 *
 *   on bytes from the socket:   px_tls_feed() as much as it takes (the rest
 *                               stays in the caller's buffer; stop reading the
 *                               socket while px_tls_in_room() is 0);
 *                               while !px_tls_is_done(): px_tls_handshake();
 *                               then px_tls_read() until it returns WANT
 *                               (or the plaintext consumer is full);
 *   to send plaintext:          px_tls_write() / px_tls_writev();
 *   after ANY call above:       while px_tls_out_pending(): px_tls_take_out()
 *                               and send those bytes (a read or handshake can
 *                               produce output too: handshake flights,
 *                               TLS 1.3 session tickets, alerts).
 *
 * Results: PX_TLS_OK (progress), PX_TLS_WANT (needs more ciphertext in; some
 * output may be pending), PX_TLS_CLOSED (peer sent close_notify), PX_TLS_ERROR
 * (fatal and sticky: px_tls_error() holds a one-line reason; send what
 * px_tls_take_out() still has, which may be an alert, then close the socket).
 *
 * Threads: a px_tls_ctx_t is immutable after creation and refcounted; any
 * number of threads may create sessions from it concurrently. A px_tls_t is
 * used by one thread at a time; it may move to another thread between calls
 * (each call clears and consumes OpenSSL's thread-local error queue, so nothing
 * leaks from one call or thread to the next).
 *
 * Memory: received ciphertext not yet decrypted is capped at PX_TLS_IN_CAP per
 * session; output is not capped (px_tls_write encrypts all it is given, so the
 * caller's own write backpressure bounds it). Both buffers are released when
 * they drain after a burst, so an idle session holds only OpenSSL's state.
 */
#ifndef PX_TLS_H
#define PX_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define PX_TLS_MUSTCHECK __attribute__((warn_unused_result))

/** Most received ciphertext a session holds before px_tls_feed refuses more. */
#define PX_TLS_IN_CAP (64u * 1024)
/** Room for px_tls_channel_binding() output (SHA-512 is the largest digest). */
#define PX_TLS_CB_MAX 64

typedef enum px_tls_result {
    PX_TLS_OK = 0, /* done / progress made */
    PX_TLS_WANT,   /* needs more ciphertext (or, from feed: input is at the cap) */
    PX_TLS_CLOSED, /* the peer sent close_notify: no more plaintext will come */
    PX_TLS_ERROR,  /* fatal; px_tls_error() says why; the session stays failed */
} px_tls_result_t;

/** Certificate checks a client context makes on the server it connects to. */
typedef enum px_tls_verify {
    PX_TLS_VERIFY_NONE = 0, /* sslmode=prefer/require: encrypt, verify nothing */
    PX_TLS_VERIFY_CA,       /* sslmode=verify-ca: chain must lead to a trusted CA */
    PX_TLS_VERIFY_FULL,     /* sslmode=verify-full: also the host name/IP vs SAN/CN */
} px_tls_verify_t;

/** A configured TLS context, shared by all workers (refcounted, immutable). */
typedef struct px_tls_ctx px_tls_ctx_t;
/** One TLS connection's state. */
typedef struct px_tls px_tls_t;

const char *px_tls_result_to_str(px_tls_result_t r);
const char *px_tls_verify_to_str(px_tls_verify_t v);

/* ---- contexts ----------------------------------------------------------- */

/**
 * A context for accepting TLS clients: TLS 1.2 and 1.3 only, forward-secret
 * AEAD cipher suites for 1.2 (OpenSSL's defaults for 1.3), no renegotiation,
 * no compression; session tickets are issued (resumption works within this
 * context's lifetime). @p cert_file is a PEM certificate chain (leaf first),
 * @p key_file its PEM private key (checked to match). If @p ca_file is given,
 * clients are asked for a certificate and one that is presented must verify
 * against it (a client may still present none: requiring one is policy for
 * the caller, see px_tls_peer_verified()). NULL with a one-line reason in
 * @p err on failure (the file name and OpenSSL's reason, never key material).
 * The caller owns one reference.
 */
px_tls_ctx_t *px_tls_ctx_server(const char *cert_file, const char *key_file, const char *ca_file,
                                char *err, size_t errlen) PX_TLS_MUSTCHECK;

/**
 * A context for connecting to TLS servers (PostgreSQL). @p mode says what is
 * verified; for VERIFY_CA/VERIFY_FULL the trusted roots are @p ca_file (PEM,
 * may hold several), or the system's default store when @p ca_file is NULL.
 * For VERIFY_NONE @p ca_file is ignored. TLS 1.2+, no renegotiation, no client
 * session cache. NULL with a reason in @p err on failure. The caller owns one
 * reference.
 */
px_tls_ctx_t *px_tls_ctx_client(px_tls_verify_t mode, const char *ca_file, char *err,
                                size_t errlen) PX_TLS_MUSTCHECK;

/** Take another reference (e.g. for a config snapshot). Thread-safe. */
px_tls_ctx_t *px_tls_ctx_ref(px_tls_ctx_t *ctx);
/** Drop a reference; the last one (sessions hold one each) frees. NULL is a no-op. */
void px_tls_ctx_free(px_tls_ctx_t *ctx);
/** True for a px_tls_ctx_server() context. */
bool px_tls_ctx_is_server(const px_tls_ctx_t *ctx);
/** The verify mode of a client context (PX_TLS_VERIFY_NONE for a server one). */
px_tls_verify_t px_tls_ctx_verify(const px_tls_ctx_t *ctx);

/* ---- sessions ----------------------------------------------------------- */

/**
 * A new session in the role of @p ctx (server contexts accept, client
 * contexts connect). @p peer_host (client role only; ignored for servers) is
 * the name the caller dialled: sent as SNI when it is a DNS name (never for an
 * IP literal, per RFC 6066) and, with PX_TLS_VERIFY_FULL, matched against the
 * certificate's SAN (an IP literal against iPAddress SANs, a name against
 * dNSName SANs, or the CN when there are none; no partial wildcards).
 * VERIFY_FULL without a host is refused. NULL with a reason in @p err (out of
 * memory or a bad host). The session holds a reference to @p ctx.
 */
px_tls_t *px_tls_new(px_tls_ctx_t *ctx, const char *peer_host, char *err,
                     size_t errlen) PX_TLS_MUSTCHECK;
/** Free a session (no close_notify is sent: call px_tls_shutdown first for that). */
void px_tls_free(px_tls_t *t);

/**
 * Append up to @p n bytes of ciphertext received from the peer. Takes
 * min(n, px_tls_in_room()) bytes and stores that count in @p *taken. Returns
 * PX_TLS_OK when all @p n were taken; PX_TLS_WANT when the cap stopped it: keep
 * the rest, stop reading the socket, call px_tls_handshake/px_tls_read to
 * drain, then feed the rest; PX_TLS_ERROR if the session has failed or memory
 * ran out (nothing taken).
 */
px_tls_result_t px_tls_feed(px_tls_t *t, const uint8_t *cipher, size_t n,
                            size_t *taken) PX_TLS_MUSTCHECK;
/** Ciphertext fed but not yet consumed by OpenSSL (0..PX_TLS_IN_CAP). */
size_t px_tls_in_pending(const px_tls_t *t);
/** How much px_tls_feed would take now: PX_TLS_IN_CAP - px_tls_in_pending(). */
size_t px_tls_in_room(const px_tls_t *t);

/**
 * Advance the handshake with the ciphertext fed so far. PX_TLS_OK once it is
 * complete (also on every later call); PX_TLS_WANT while it needs the peer's
 * next flight (our own flight, if any, is now in the output); PX_TLS_ERROR on
 * failure, e.g. "certificate verify failed: hostname mismatch: certificate is
 * not for \"db.example\"" or "peer sent tlsv1 alert unknown ca"; the output may
 * then hold an alert for the peer. A client session may be driven from the start
 * (its ClientHello is output by the first call); a server session simply
 * waits for input.
 */
px_tls_result_t px_tls_handshake(px_tls_t *t) PX_TLS_MUSTCHECK;
/** True once the handshake has completed (and the session has not failed). */
bool px_tls_is_done(const px_tls_t *t);

/**
 * Decrypt into @p plain, up to @p cap bytes, as many records as are complete.
 * PX_TLS_OK with *got > 0; PX_TLS_WANT with *got == 0 when no complete record
 * is buffered; PX_TLS_CLOSED (got 0) once the peer's close_notify is reached
 * (all data before it has been returned); PX_TLS_ERROR on a bad record or
 * alert. Drives the handshake if it is not complete yet. Call it until it
 * returns something other than OK: a feed produces no event of its own, so
 * data left decrypted-but-unread is only delivered by calling again (e.g.
 * when the consumer has room again). May queue output (e.g. a key update
 * answer): drain it afterwards.
 */
px_tls_result_t px_tls_read(px_tls_t *t, uint8_t *plain, size_t cap, size_t *got) PX_TLS_MUSTCHECK;
/** True if px_tls_read might return data without more input being fed. */
bool px_tls_read_pending(const px_tls_t *t);

/**
 * Encrypt all @p n bytes into the output (records of up to 16 KB): PX_TLS_OK,
 * or PX_TLS_ERROR (fatal, like every error) on failure, before the handshake
 * has completed, or after px_tls_shutdown.
 */
px_tls_result_t px_tls_write(px_tls_t *t, const void *plain, size_t n) PX_TLS_MUSTCHECK;
/**
 * As px_tls_write for the concatenation of @p iov[0..n), but small pieces are
 * gathered into full-size records first, so a batch of many small protocol
 * messages costs a few records, not one each. On Unix uv_buf_t is laid out as
 * struct iovec, so a libuv iovec array can be passed as is.
 */
px_tls_result_t px_tls_writev(px_tls_t *t, const struct iovec *iov, int n) PX_TLS_MUSTCHECK;

/**
 * Queue our close_notify (once; later calls do nothing). We do not wait for
 * the peer's: send the output, then close the socket. Before the handshake
 * completes (or after a failure) there is nothing to say and nothing is
 * queued. Always PX_TLS_OK unless the session failed.
 */
px_tls_result_t px_tls_shutdown(px_tls_t *t);

/** Bytes of ciphertext waiting to be sent to the peer. */
size_t px_tls_out_pending(const px_tls_t *t);
/**
 * Move up to @p cap bytes of pending ciphertext into @p buf, in order;
 * returns how many. Repeat while px_tls_out_pending() > 0.
 */
size_t px_tls_take_out(px_tls_t *t, uint8_t *buf, size_t cap);

/**
 * Zero-copy alternative to px_tls_take_out: point @p *p at all pending
 * ciphertext (contiguous) and return its length. The pointer is valid until
 * the next call on @p t other than the *_pending queries, so use it for a
 * synchronous send (uv_try_write), then px_tls_consume_out() what was sent.
 */
size_t px_tls_peek_out(const px_tls_t *t, const uint8_t **p);
/** Drop the first @p n bytes of pending ciphertext (clamped to what is pending). */
void px_tls_consume_out(px_tls_t *t, size_t n);

/** The failure reason ("" if none): one line, valid until px_tls_free. */
const char *px_tls_error(const px_tls_t *t);

/* ---- for logs and authentication ---------------------------------------- */

/** Negotiated protocol ("TLSv1.3"), or "" before the handshake completes. */
const char *px_tls_version(const px_tls_t *t);
/** Negotiated cipher suite ("TLS_AES_256_GCM_SHA384"), or "". */
const char *px_tls_cipher(const px_tls_t *t);
/**
 * Copy the Common Name of the peer's certificate into @p buf (truncated and
 * NUL-terminated). False when the peer presented none or it has no CN.
 */
bool px_tls_peer_cn(const px_tls_t *t, char *buf, size_t len);
/** True if the peer presented a certificate and it verified against the CA. */
bool px_tls_peer_verified(const px_tls_t *t);
/**
 * The tls-server-end-point channel binding (RFC 5929) for SCRAM-SHA-256-PLUS:
 * the hash of the server's certificate (our own on a server session, the
 * peer's on a client session) with its signature's digest, SHA-256 for
 * MD5/SHA-1. False before the handshake completes or when it cannot be
 * computed (e.g. an EdDSA certificate, which PostgreSQL refuses too).
 */
bool px_tls_channel_binding(const px_tls_t *t, uint8_t out[PX_TLS_CB_MAX],
                            size_t *len) PX_TLS_MUSTCHECK;

#endif /* PX_TLS_H */
