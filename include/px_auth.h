/**
 * @file px_auth.h
 * Authentication primitives, pure functions over strings and bytes: the auth
 * file (PgBouncer userlist.txt format), SCRAM-SHA-256 as server (verifying a
 * client) and as client (logging in to PostgreSQL), and md5. Nothing here
 * touches a socket or logs a secret.
 */
#ifndef PX_AUTH_H
#define PX_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PX_AUTH_MUSTCHECK __attribute__((warn_unused_result))

#define PX_SCRAM_KEY_LEN   32 /* SHA-256 digest length */
#define PX_SCRAM_NONCE_LEN 24 /* raw random bytes before base64 */
#define PX_AUTH_NAME_MAX   64 /* NAMEDATALEN */
#define PX_AUTH_SECRET_MAX 512

typedef enum px_secret_kind {
    PX_SECRET_NONE = 0, /* user unknown or no secret */
    PX_SECRET_PLAIN,    /* a plaintext password */
    PX_SECRET_MD5,      /* "md5" + 32 hex digits: md5(password || user) */
    PX_SECRET_SCRAM,    /* SCRAM-SHA-256$<iter>:<salt>$<StoredKey>:<ServerKey> */
} px_secret_kind_t;

/** One user's secret, parsed. */
typedef struct px_secret {
    px_secret_kind_t kind;
    char text[PX_AUTH_SECRET_MAX]; /* the secret as written (plain, md5 or verifier) */
    /* for PX_SECRET_SCRAM (and derived for PX_SECRET_PLAIN on demand): */
    int iterations;
    uint8_t salt[64];
    size_t salt_len;
    uint8_t stored_key[PX_SCRAM_KEY_LEN];
    uint8_t server_key[PX_SCRAM_KEY_LEN];
} px_secret_t;

/**
 * Classify and parse @p text into @p out: "" is PX_SECRET_NONE, "md5" + exactly
 * 32 lowercase hex digits is PX_SECRET_MD5, a "SCRAM-SHA-256$" prefix is a
 * verifier (salt at most 64 bytes), anything else PX_SECRET_PLAIN. False if a
 * verifier is malformed or @p text does not fit PX_AUTH_SECRET_MAX.
 */
bool px_secret_parse(const char *text, px_secret_t *out) PX_AUTH_MUSTCHECK;

/* ---- auth file ---------------------------------------------------------- */

typedef struct px_authfile px_authfile_t;

/**
 * Load a userlist.txt: one `"user" "secret"` per line, `""` escapes a quote
 * inside a field, lines starting with `;` or `#` and blank lines ignored.
 * Returns NULL with a reason in @p err (a line number, never a secret).
 */
px_authfile_t *px_authfile_load(const char *path, char *err, size_t errlen) PX_AUTH_MUSTCHECK;
/** Same, from a NUL-terminated buffer (for tests). */
px_authfile_t *px_authfile_parse(const char *text, char *err, size_t errlen) PX_AUTH_MUSTCHECK;
/**
 * The secret of @p user, or NULL if the file does not name the user. A user
 * written with an empty secret ("") gets a PX_SECRET_NONE secret (trust only).
 * When a user appears twice, the last line wins (as in PgBouncer). The object
 * is immutable once loaded, so any thread may look up concurrently. The
 * pointer lives as long as the file object.
 */
const px_secret_t *px_authfile_lookup(const px_authfile_t *af, const char *user);
size_t px_authfile_count(const px_authfile_t *af);
void px_authfile_free(px_authfile_t *af);

/* ---- md5 ---------------------------------------------------------------- */

/** out = "md5" + hex(md5(password || user)); @p out has room for 36 bytes. */
void px_md5_hash_password(const char *password, const char *user, char out[36]);
/**
 * The answer to AuthenticationMD5Password: "md5" + hex(md5(hex_part || salt)),
 * where @p md5_secret is "md5..." as made by px_md5_hash_password.
 */
void px_md5_salted(const char md5_secret[36], const uint8_t salt[4], char out[36]);
/** Check a client's md5 answer against a secret (plain or md5). False for SCRAM. */
bool px_md5_verify(const px_secret_t *secret, const char *user, const uint8_t salt[4],
                   const char *client_answer);

/* ---- SCRAM-SHA-256, server side (the proxy verifies a client) ----------- */

typedef enum px_scram_result {
    PX_SCRAM_OK = 0,        /* step done; output produced */
    PX_SCRAM_FAIL_PROOF,    /* wrong password: answer 28P01 */
    PX_SCRAM_FAIL_PROTOCOL, /* malformed message: answer 08P01 */
} px_scram_result_t;

typedef struct px_scram_server {
    px_secret_t secret; /* the user's verifier (derived from a plain secret if needed) */
    char client_first_bare[512];
    char server_first[512];
    char nonce[128];                      /* client nonce + server nonce */
    uint8_t client_key[PX_SCRAM_KEY_LEN]; /* recovered from the client's proof */
    bool have_client_key;
    char cbind_flag; /* gs2 flag of client-first ('n' or 'y'); c= must repeat it */
} px_scram_server_t;

/** A short lower-case phrase for logs and metrics labels. */
const char *px_scram_result_to_str(px_scram_result_t r);

/**
 * Prepare a server exchange for @p secret (PLAIN or SCRAM; false otherwise).
 * A PLAIN secret is turned into a verifier (random 16-byte salt, 4096
 * iterations) and its plaintext is not kept in @p st.
 */
bool px_scram_server_init(px_scram_server_t *st, const px_secret_t *secret) PX_AUTH_MUSTCHECK;
/**
 * Prepare a doomed exchange for a user with no usable verifier, as PostgreSQL
 * does: the salt is stable per @p user for the life of the process and the
 * keys are random, so the exchange looks normal and ends in
 * PX_SCRAM_FAIL_PROOF without revealing that the user does not exist.
 */
bool px_scram_server_init_mock(px_scram_server_t *st, const char *user) PX_AUTH_MUSTCHECK;
/**
 * Handle SASLInitialResponse data (client-first-message, e.g. "n,,n=,r=...").
 * Writes the server-first-message (NUL-terminated) to @p out. Channel-binding
 * flag 'p' is refused (we never offer SCRAM-SHA-256-PLUS); the user name in
 * the message is ignored, as PostgreSQL ignores it. Too small an @p out is
 * PX_SCRAM_FAIL_PROTOCOL.
 */
px_scram_result_t px_scram_server_first(px_scram_server_t *st, const char *client_first, size_t len,
                                        char *out, size_t outlen) PX_AUTH_MUSTCHECK;
/**
 * Handle SASLResponse data (client-final-message). On PX_SCRAM_OK writes the
 * server-final-message ("v=...") to @p out and fills st->client_key. A wrong
 * password (or an internal crypto failure: we fail closed) is
 * PX_SCRAM_FAIL_PROOF and writes nothing. The exchange is over after this
 * call whatever the result.
 */
px_scram_result_t px_scram_server_final(px_scram_server_t *st, const char *client_final, size_t len,
                                        char *out, size_t outlen) PX_AUTH_MUSTCHECK;

/* ---- SCRAM-SHA-256, client side (the proxy logs in to PostgreSQL) ------- */

typedef struct px_scram_client {
    /* credentials: either a password, or the keys recovered from a client */
    char password[PX_AUTH_SECRET_MAX];
    bool use_keys;
    uint8_t client_key[PX_SCRAM_KEY_LEN];
    uint8_t server_key[PX_SCRAM_KEY_LEN];
    char client_nonce[64];
    char client_first_bare[256];
    char expected_server_signature[64]; /* base64, checked in px_scram_client_verify */
} px_scram_client_t;

/**
 * Log in with a plaintext password, SASLprep'd as libpq does (at most
 * PX_AUTH_SECRET_MAX - 1 bytes; a longer one is cut and so fails).
 */
void px_scram_client_init_password(px_scram_client_t *st, const char *password);
/** Log in with ClientKey and ServerKey (the server must hold the same verifier). */
void px_scram_client_init_keys(px_scram_client_t *st, const uint8_t client_key[PX_SCRAM_KEY_LEN],
                               const uint8_t server_key[PX_SCRAM_KEY_LEN]);
/**
 * Writes the client-first-message ("n,,n=,r=<nonce>") to @p out; returns its
 * length, or 0 on failure (@p out too small, no randomness).
 */
size_t px_scram_client_first(px_scram_client_t *st, char *out, size_t outlen);
/**
 * Given the server-first-message (AuthenticationSASLContinue data), writes the
 * client-final-message to @p out and sets *outlen_used.
 */
px_scram_result_t px_scram_client_final(px_scram_client_t *st, const char *server_first, size_t len,
                                        char *out, size_t outlen,
                                        size_t *outlen_used) PX_AUTH_MUSTCHECK;
/**
 * Check the server-final-message (AuthenticationSASLFinal data): a wrong
 * ServerSignature or an "e=" error is PX_SCRAM_FAIL_PROOF, garbage
 * PX_SCRAM_FAIL_PROTOCOL.
 */
px_scram_result_t px_scram_client_verify(const px_scram_client_t *st, const char *server_final,
                                         size_t len) PX_AUTH_MUSTCHECK;

/**
 * Build a verifier "SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>"
 * from a password, with a random 16-byte salt; @p iterations <= 0 means 4096.
 */
bool px_scram_make_verifier(const char *password, int iterations, char *out,
                            size_t outlen) PX_AUTH_MUSTCHECK;

/** Constant-time compare. */
bool px_auth_consttime_eq(const void *a, const void *b, size_t len);

#endif
