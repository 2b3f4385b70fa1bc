/*
 * auth.c - authentication primitives: the PgBouncer-style auth file
 * (userlist.txt), SCRAM-SHA-256 in both roles (server: the proxy verifies a
 * client; client: the proxy logs in to PostgreSQL with a password, or with the
 * ClientKey recovered from the client's own exchange, as PgBouncer does) and
 * md5. SCRAM follows RFC 5802/7677 the way PostgreSQL's auth-scram.c and
 * libpq's fe-auth-scram.c read it, attribute for attribute, so that what
 * PostgreSQL accepts we accept and what we send PostgreSQL accepts.
 *
 * Invariant: everything here is a pure function of its arguments (the only
 * global is a once-initialised random key that makes mock salts stable), so
 * any worker thread may call it. No secret leaves through an error string,
 * and every stack buffer that held key material or a password is
 * OPENSSL_cleanse()d on every exit path. Every write to a caller's buffer is
 * bounded by the length the caller gave. Peer input that does not parse is
 * PX_SCRAM_FAIL_PROTOCOL; a wrong password is PX_SCRAM_FAIL_PROOF, and so is
 * an internal crypto failure, so that we fail closed.
 */
#include "px_auth.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#define SCRAM_PREFIX             "SCRAM-SHA-256$"
#define SCRAM_SALT_LEN           16   /* what PostgreSQL generates */
#define SCRAM_ITERATIONS_DEFAULT 4096 /* PostgreSQL's scram_iterations default */
/* PostgreSQL's messages are under 200 bytes; anything near this is hostile. */
#define SCRAM_MSG_MAX 1024
/* A salt sent by a server; PostgreSQL sends 16 bytes. */
#define SCRAM_SERVER_SALT_MAX 256
#define B64_LEN(n)            (4 * (((n) + 2) / 3))
/* SASLprep output: a code point of 1-4 UTF-8 bytes expands to at most 3
 * code points of at most 3 bytes each. */
#define PREP_MAX           (PX_AUTH_SECRET_MAX * 9 / 2 + 1)
#define AUTHFILE_MAX_BYTES (64u << 20)

/* ---- small helpers ------------------------------------------------------- */

typedef struct auth_part {
    const void *data;
    size_t len;
} auth_part_t;

const char *px_scram_result_to_str(px_scram_result_t r)
{
    switch (r) {
    case PX_SCRAM_OK:
        return "ok";
    case PX_SCRAM_FAIL_PROOF:
        return "authentication failed";
    case PX_SCRAM_FAIL_PROTOCOL:
        return "protocol violation";
    }
    return "unknown";
}

bool px_auth_consttime_eq(const void *a, const void *b, size_t len)
{
    if (len == 0)
        return true;
    return CRYPTO_memcmp(a, b, len) == 0;
}

/* Writes NUL-terminated standard base64 with padding; false if it won't fit. */
static bool b64_encode(const uint8_t *in, size_t n, char *out, size_t outcap)
{
    if (n > INT_MAX / 2 || B64_LEN(n) + 1 > outcap)
        return false;
    EVP_EncodeBlock((unsigned char *)out, in, (int)n);
    return true;
}

static int b64_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/*
 * Strict decoding, as PostgreSQL's pg_b64_decode: whole quads only, padding
 * only at the very end, no whitespace. (EVP_DecodeBlock accepts whitespace and
 * cannot tell padding from zero bytes, hence our own.)
 */
static bool b64_decode(const char *in, size_t inlen, uint8_t *out, size_t outcap, size_t *outlen)
{
    size_t o = 0;

    if (inlen % 4 != 0)
        return false;
    for (size_t i = 0; i < inlen; i += 4) {
        uint32_t w = 0;
        int pad = 0;
        for (int j = 0; j < 4; j++) {
            char c = in[i + j];
            int v = 0;
            if (c == '=') {
                pad++;
            } else {
                v = b64_value(c);
                if (v < 0 || pad > 0)
                    return false;
            }
            w = (w << 6) | (uint32_t)v;
        }
        if (pad > 2 || (pad > 0 && i + 4 != inlen))
            return false;
        size_t bytes = (size_t)(3 - pad);
        if (o + bytes > outcap)
            return false;
        out[o++] = (uint8_t)(w >> 16);
        if (bytes > 1)
            out[o++] = (uint8_t)(w >> 8);
        if (bytes > 2)
            out[o++] = (uint8_t)w;
    }
    *outlen = o;
    return true;
}

static bool sha256(const void *data, size_t len, uint8_t out[PX_SCRAM_KEY_LEN])
{
    unsigned int n = 0;
    return EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) == 1 && n == PX_SCRAM_KEY_LEN;
}

/* HMAC-SHA-256 over the concatenation of @p parts, so AuthMessage is never
 * assembled in a buffer of its own. */
static bool hmac_sha256(const uint8_t *key, size_t keylen, const auth_part_t *parts, size_t nparts,
                        uint8_t out[PX_SCRAM_KEY_LEN])
{
    bool ok = false;
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
        OSSL_PARAM_construct_end(),
    };
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
    size_t outl = 0;

    if (!ctx || EVP_MAC_init(ctx, key, keylen, params) != 1)
        goto done;
    for (size_t i = 0; i < nparts; i++)
        if (EVP_MAC_update(ctx, parts[i].data, parts[i].len) != 1)
            goto done;
    ok = EVP_MAC_final(ctx, out, &outl, PX_SCRAM_KEY_LEN) == 1 && outl == PX_SCRAM_KEY_LEN;
done:
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac);
    return ok;
}

static bool hmac_str(const uint8_t key[PX_SCRAM_KEY_LEN], const char *s,
                     uint8_t out[PX_SCRAM_KEY_LEN])
{
    auth_part_t part = {s, strlen(s)};
    return hmac_sha256(key, PX_SCRAM_KEY_LEN, &part, 1, out);
}

/* Digits only (no sign, no space), 1..INT_MAX: stricter than strtol. */
static bool parse_iterations(const char *s, int *out)
{
    long v = 0;

    if (*s == '\0')
        return false;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return false;
        v = v * 10 + (*s - '0');
        if (v > INT_MAX)
            return false;
    }
    if (v < 1)
        return false;
    *out = (int)v;
    return true;
}

/* ---- SASLprep ------------------------------------------------------------ */

/*
 * PostgreSQL runs passwords through SASLprep (RFC 4013) before PBKDF2, and
 * uses the raw bytes when the input is not UTF-8 or the mapped string holds a
 * prohibited or unassigned code point. Full NFKC needs the Unicode tables,
 * which we do not carry; instead we handle exactly a set of code points whose
 * NFKC we know (checked against Python's unicodedata for Unicode 3.2), and
 * fall back to the raw bytes, as libpq does when it cannot normalise, for
 * anything else. The set covers ASCII, Latin-1, Latin Extended-A, Vietnamese,
 * basic Greek and Cyrillic, kana, CJK, Hangul syllables, fullwidth ASCII and
 * the Latin ligatures. It holds no combining marks and no right-to-left
 * characters, so canonical composition and the bidi rule never come into play.
 */

/* Code points whose NFKC is themselves (the compat table is checked first). */
static const uint32_t prep_identity[][2] = {
    {0x00A1, 0x00FF}, {0x0100, 0x017F}, {0x0386, 0x0386}, {0x0388, 0x038A}, {0x038C, 0x038C},
    {0x038E, 0x03A1}, {0x03A3, 0x03CE}, {0x0400, 0x045F}, {0x1E00, 0x1E99}, {0x1EA0, 0x1EF9},
    {0x3041, 0x3096}, {0x309D, 0x309E}, {0x30A1, 0x30FE}, {0x4E00, 0x9FA5}, {0xAC00, 0xD7A3},
};

/* Compatibility decompositions (already in NFKC form). */
static const struct {
    uint32_t cp;
    uint32_t to[3];
    int n;
} prep_compat[] = {
    {0x00A8, {0x0020, 0x0308}, 2},
    {0x00AA, {0x0061}, 1},
    {0x00AF, {0x0020, 0x0304}, 2},
    {0x00B2, {0x0032}, 1},
    {0x00B3, {0x0033}, 1},
    {0x00B4, {0x0020, 0x0301}, 2},
    {0x00B5, {0x03BC}, 1},
    {0x00B8, {0x0020, 0x0327}, 2},
    {0x00B9, {0x0031}, 1},
    {0x00BA, {0x006F}, 1},
    {0x00BC, {0x0031, 0x2044, 0x0034}, 3},
    {0x00BD, {0x0031, 0x2044, 0x0032}, 3},
    {0x00BE, {0x0033, 0x2044, 0x0034}, 3},
    {0x0132, {0x0049, 0x004A}, 2},
    {0x0133, {0x0069, 0x006A}, 2},
    {0x013F, {0x004C, 0x00B7}, 2},
    {0x0140, {0x006C, 0x00B7}, 2},
    {0x0149, {0x02BC, 0x006E}, 2},
    {0x017F, {0x0073}, 1},
    {0xFB00, {0x0066, 0x0066}, 2},
    {0xFB01, {0x0066, 0x0069}, 2},
    {0xFB02, {0x0066, 0x006C}, 2},
    {0xFB03, {0x0066, 0x0066, 0x0069}, 3},
    {0xFB04, {0x0066, 0x0066, 0x006C}, 3},
    {0xFB05, {0x0073, 0x0074}, 2},
    {0xFB06, {0x0073, 0x0074}, 2},
};

/* Strict UTF-8 (no overlongs, surrogates or > U+10FFFF); 0 if illegal. */
static size_t utf8_decode(const unsigned char *s, size_t avail, uint32_t *cp)
{
    unsigned char c = s[0];
    size_t n;
    unsigned char lo = 0x80, hi = 0xBF;

    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
        *cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        *cp = c & 0x0F;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        *cp = c & 0x07;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else {
        return 0;
    }
    if (avail < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        unsigned char cc = s[i];
        if (cc < (i == 1 ? lo : 0x80) || cc > (i == 1 ? hi : 0xBF))
            return 0;
        *cp = (*cp << 6) | (cc & 0x3F);
    }
    return n;
}

static size_t utf8_encode(uint32_t cp, unsigned char *out)
{
    if (cp < 0x80) {
        out[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (unsigned char)(0xC0 | (cp >> 6));
        out[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (unsigned char)(0xE0 | (cp >> 12));
        out[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (unsigned char)(0xF0 | (cp >> 18));
    out[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

/*
 * Map one code point (RFC 4013 step 1, then NFKC). Returns how many code
 * points it became (0 = mapped to nothing) or -1 to abandon SASLprep and use
 * the raw password: a prohibited character (PostgreSQL does the same) or one
 * outside our tables (where we cannot know what NFKC does).
 */
static int prep_char(uint32_t cp, uint32_t out[3])
{
    if (cp < 0x20 || cp == 0x7F) /* C.2.1 ASCII control: prohibited */
        return -1;
    if (cp < 0x7F) {
        out[0] = cp;
        return 1;
    }
    /* C.1.2 non-ASCII space, checked before B.1 as PostgreSQL does (U+200B
     * is in both tables) */
    if (cp == 0x00A0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200B) || cp == 0x202F ||
        cp == 0x205F || cp == 0x3000) {
        out[0] = 0x20;
        return 1;
    }
    /* B.1 commonly mapped to nothing */
    if (cp == 0x00AD || cp == 0x034F || cp == 0x1806 || (cp >= 0x180B && cp <= 0x180D) ||
        (cp >= 0x200C && cp <= 0x200D) || cp == 0x2060 || (cp >= 0xFE00 && cp <= 0xFE0F) ||
        cp == 0xFEFF)
        return 0;
    for (size_t i = 0; i < sizeof prep_compat / sizeof prep_compat[0]; i++) {
        if (prep_compat[i].cp == cp) {
            memcpy(out, prep_compat[i].to, sizeof prep_compat[i].to);
            return prep_compat[i].n;
        }
    }
    if (cp >= 0xFF01 && cp <= 0xFF5E) { /* fullwidth ASCII */
        out[0] = cp - 0xFEE0;
        return 1;
    }
    for (size_t i = 0; i < sizeof prep_identity / sizeof prep_identity[0]; i++) {
        if (cp >= prep_identity[i][0] && cp <= prep_identity[i][1]) {
            out[0] = cp;
            return 1;
        }
    }
    return -1;
}

/*
 * SASLprep @p in into @p out. False means "use the raw password": pure ASCII
 * (which SASLprep leaves alone), invalid UTF-8, a prohibited character, an
 * empty result (all as PostgreSQL), or a character outside our tables.
 */
static bool saslprep(const char *in, char *out, size_t outcap)
{
    const unsigned char *s = (const unsigned char *)in;
    size_t len = strlen(in);
    size_t i = 0, o = 0;
    bool ascii = true;

    for (size_t k = 0; k < len; k++)
        if (s[k] >= 0x80)
            ascii = false;
    if (ascii)
        return false;
    while (i < len) {
        uint32_t cp, mapped[3];
        size_t n = utf8_decode(s + i, len - i, &cp);
        if (n == 0)
            goto raw;
        i += n;
        int m = prep_char(cp, mapped);
        if (m < 0)
            goto raw;
        for (int k = 0; k < m; k++) {
            if (o + 4 >= outcap)
                goto raw;
            o += utf8_encode(mapped[k], (unsigned char *)out + o);
        }
    }
    if (o == 0) /* PostgreSQL refuses an empty password after mapping */
        goto raw;
    out[o] = '\0';
    return true;
raw:
    OPENSSL_cleanse(out, outcap);
    return false;
}

/* ClientKey and ServerKey from a password, as scram_SaltedPassword et al. */
static bool keys_from_password(const char *password, const uint8_t *salt, size_t salt_len,
                               int iterations, uint8_t client_key[PX_SCRAM_KEY_LEN],
                               uint8_t server_key[PX_SCRAM_KEY_LEN])
{
    char prepped[PREP_MAX];
    uint8_t salted[PX_SCRAM_KEY_LEN];
    const char *pw = saslprep(password, prepped, sizeof prepped) ? prepped : password;
    size_t pwlen = strlen(pw);
    bool ok = pwlen <= INT_MAX && salt_len <= INT_MAX &&
              PKCS5_PBKDF2_HMAC(pw, (int)pwlen, salt, (int)salt_len, iterations, EVP_sha256(),
                                PX_SCRAM_KEY_LEN, salted) == 1 &&
              hmac_str(salted, "Client Key", client_key) &&
              hmac_str(salted, "Server Key", server_key);

    OPENSSL_cleanse(prepped, sizeof prepped);
    OPENSSL_cleanse(salted, sizeof salted);
    return ok;
}

/* ---- secrets ------------------------------------------------------------- */

/* Fills @p out->text from the binary fields; false if it cannot be encoded. */
static bool format_verifier(px_secret_t *out)
{
    char salt[B64_LEN(sizeof out->salt) + 1];
    char stored[B64_LEN(PX_SCRAM_KEY_LEN) + 1];
    char server[B64_LEN(PX_SCRAM_KEY_LEN) + 1];

    if (!b64_encode(out->salt, out->salt_len, salt, sizeof salt) ||
        !b64_encode(out->stored_key, PX_SCRAM_KEY_LEN, stored, sizeof stored) ||
        !b64_encode(out->server_key, PX_SCRAM_KEY_LEN, server, sizeof server))
        return false;
    int n = snprintf(out->text, sizeof out->text, SCRAM_PREFIX "%d:%s$%s:%s", out->iterations, salt,
                     stored, server);
    return n > 0 && (size_t)n < sizeof out->text;
}

/* A fresh verifier for @p password with a random salt, as scram_build_secret. */
static bool derive_verifier(const char *password, int iterations, px_secret_t *out)
{
    uint8_t client_key[PX_SCRAM_KEY_LEN];
    bool ok;

    OPENSSL_cleanse(out, sizeof *out);
    out->iterations = iterations > 0 ? iterations : SCRAM_ITERATIONS_DEFAULT;
    out->salt_len = SCRAM_SALT_LEN;
    ok = RAND_bytes(out->salt, SCRAM_SALT_LEN) == 1 &&
         keys_from_password(password, out->salt, out->salt_len, out->iterations, client_key,
                            out->server_key) &&
         sha256(client_key, PX_SCRAM_KEY_LEN, out->stored_key) && format_verifier(out);
    OPENSSL_cleanse(client_key, sizeof client_key);
    if (!ok) {
        OPENSSL_cleanse(out, sizeof *out);
        return false;
    }
    out->kind = PX_SECRET_SCRAM;
    return true;
}

/* "SCRAM-SHA-256$<iter>:<salt>$<StoredKey>:<ServerKey>", as parse_scram_secret. */
static bool parse_verifier(const char *text, px_secret_t *out)
{
    const char *iter = text + strlen(SCRAM_PREFIX);
    const char *colon1 = strchr(iter, ':');
    const char *dollar = colon1 ? strchr(colon1 + 1, '$') : NULL;
    const char *colon2 = dollar ? strchr(dollar + 1, ':') : NULL;
    char itbuf[16];
    size_t n;

    if (!colon2 || (size_t)(colon1 - iter) >= sizeof itbuf)
        return false;
    memcpy(itbuf, iter, (size_t)(colon1 - iter));
    itbuf[colon1 - iter] = '\0';
    if (!parse_iterations(itbuf, &out->iterations))
        return false;
    if (!b64_decode(colon1 + 1, (size_t)(dollar - colon1 - 1), out->salt, sizeof out->salt,
                    &out->salt_len) ||
        out->salt_len == 0)
        return false;
    if (!b64_decode(dollar + 1, (size_t)(colon2 - dollar - 1), out->stored_key, PX_SCRAM_KEY_LEN,
                    &n) ||
        n != PX_SCRAM_KEY_LEN)
        return false;
    if (!b64_decode(colon2 + 1, strlen(colon2 + 1), out->server_key, PX_SCRAM_KEY_LEN, &n) ||
        n != PX_SCRAM_KEY_LEN)
        return false;
    return true;
}

static bool is_md5_secret(const char *text)
{
    if (strlen(text) != 35 || memcmp(text, "md5", 3) != 0)
        return false;
    for (int i = 3; i < 35; i++)
        if (!((text[i] >= '0' && text[i] <= '9') || (text[i] >= 'a' && text[i] <= 'f')))
            return false;
    return true;
}

bool px_secret_parse(const char *text, px_secret_t *out)
{
    size_t len;

    if (!out)
        return false;
    OPENSSL_cleanse(out, sizeof *out);
    if (!text || (len = strlen(text)) >= sizeof out->text)
        return false;
    memcpy(out->text, text, len + 1);
    if (len == 0) {
        out->kind = PX_SECRET_NONE;
    } else if (is_md5_secret(text)) {
        out->kind = PX_SECRET_MD5;
    } else if (strncmp(text, SCRAM_PREFIX, strlen(SCRAM_PREFIX)) == 0) {
        if (!parse_verifier(text, out)) {
            OPENSSL_cleanse(out, sizeof *out);
            return false;
        }
        out->kind = PX_SECRET_SCRAM;
    } else {
        out->kind = PX_SECRET_PLAIN;
    }
    return true;
}

/* ---- auth file ----------------------------------------------------------- */

typedef struct authfile_entry {
    char user[PX_AUTH_NAME_MAX];
    px_secret_t secret;
} authfile_entry_t;

struct px_authfile {
    authfile_entry_t *_entries; /* owned; in order of first appearance */
    size_t _count;
    size_t _cap;
    uint32_t *_slots; /* owned; open addressing, entry index + 1, 0 = empty */
    size_t _nslots;   /* power of two, kept > 2 * _count */
};

static uint64_t name_hash(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ull;
    }
    return h;
}

/* The slot holding @p user, or the empty slot where it would go. */
static size_t authfile_slot(const px_authfile_t *af, const char *user)
{
    size_t mask = af->_nslots - 1;
    size_t i = (size_t)name_hash(user) & mask;

    while (af->_slots[i] != 0 && strcmp(af->_entries[af->_slots[i] - 1].user, user) != 0)
        i = (i + 1) & mask;
    return i;
}

static bool authfile_grow(px_authfile_t *af)
{
    if (af->_count == af->_cap) {
        size_t cap = af->_cap ? af->_cap * 2 : 64;
        if (cap > UINT32_MAX - 1)
            return false;
        authfile_entry_t *e = calloc(cap, sizeof *e);
        if (!e)
            return false;
        /* copy by hand rather than realloc, so the old block is cleansed */
        if (af->_count) {
            memcpy(e, af->_entries, af->_count * sizeof *e);
            OPENSSL_cleanse(af->_entries, af->_count * sizeof *e);
        }
        free(af->_entries);
        af->_entries = e;
        af->_cap = cap;
    }
    if ((af->_count + 1) * 2 >= af->_nslots) {
        size_t nslots = af->_nslots ? af->_nslots * 2 : 128;
        uint32_t *slots = calloc(nslots, sizeof *slots);
        if (!slots)
            return false;
        free(af->_slots);
        af->_slots = slots;
        af->_nslots = nslots;
        for (size_t k = 0; k < af->_count; k++)
            af->_slots[authfile_slot(af, af->_entries[k].user)] = (uint32_t)(k + 1);
    }
    return true;
}

/* Adds or replaces (last line wins, as PgBouncer) @p user's secret. */
static bool authfile_put(px_authfile_t *af, const char *user, const px_secret_t *secret)
{
    size_t slot;

    if (!authfile_grow(af))
        return false;
    slot = authfile_slot(af, user);
    if (af->_slots[slot] != 0) {
        af->_entries[af->_slots[slot] - 1].secret = *secret;
        return true;
    }
    authfile_entry_t *e = &af->_entries[af->_count];
    memcpy(e->user, user, strlen(user) + 1);
    e->secret = *secret;
    af->_slots[slot] = (uint32_t)(++af->_count);
    return true;
}

void px_authfile_free(px_authfile_t *af)
{
    if (!af)
        return;
    if (af->_entries)
        OPENSSL_cleanse(af->_entries, af->_cap * sizeof *af->_entries);
    free(af->_entries);
    free(af->_slots);
    free(af);
}

const px_secret_t *px_authfile_lookup(const px_authfile_t *af, const char *user)
{
    if (!af || !user || af->_count == 0)
        return NULL;
    size_t slot = authfile_slot(af, user);
    return af->_slots[slot] ? &af->_entries[af->_slots[slot] - 1].secret : NULL;
}

size_t px_authfile_count(const px_authfile_t *af)
{
    return af ? af->_count : 0;
}

static void set_err(char *err, size_t errlen, const char *msg, int lineno)
{
    if (!err || errlen == 0)
        return;
    if (lineno > 0)
        snprintf(err, errlen, "auth file line %d: %s", lineno, msg);
    else
        snprintf(err, errlen, "auth file: %s", msg);
}

typedef enum quoted_result {
    QUOTED_OK = 0,
    QUOTED_UNTERMINATED,
    QUOTED_TOO_LONG,
} quoted_result_t;

/*
 * Reads the "..." field at *pp (the opening quote) up to @p end, turning ""
 * into a literal quote, and leaves *pp after the closing quote.
 */
static quoted_result_t read_quoted(const char **pp, const char *end, char *out, size_t outcap)
{
    const char *p = *pp + 1;
    size_t n = 0;

    for (;;) {
        if (p >= end)
            return QUOTED_UNTERMINATED;
        if (*p == '"') {
            if (p + 1 < end && p[1] == '"') {
                p++; /* "" is one literal quote */
            } else {
                break;
            }
        }
        if (n + 1 >= outcap)
            return QUOTED_TOO_LONG;
        out[n++] = *p++;
    }
    out[n] = '\0';
    *pp = p + 1;
    return QUOTED_OK;
}

static const char *skip_blanks(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\f' || *p == '\v'))
        p++;
    return p;
}

/* One line [p, end). Returns NULL on success, else the reason (no secret in it). */
static const char *authfile_line(px_authfile_t *af, const char *p, const char *end)
{
    char user[PX_AUTH_NAME_MAX];
    char secret_text[PX_AUTH_SECRET_MAX];
    px_secret_t secret;
    const char *why = NULL;

    p = skip_blanks(p, end);
    if (p == end || *p == ';' || *p == '#')
        return NULL;
    if (*p != '"')
        return "expected a quoted user name";
    switch (read_quoted(&p, end, user, sizeof user)) {
    case QUOTED_OK:
        break;
    case QUOTED_UNTERMINATED:
        return "unterminated quoted user name";
    case QUOTED_TOO_LONG:
        return "user name too long (at most 63 bytes)";
    }
    if (user[0] == '\0')
        return "empty user name";
    p = skip_blanks(p, end);
    if (p == end || *p != '"')
        return "expected a quoted secret after the user name";
    switch (read_quoted(&p, end, secret_text, sizeof secret_text)) {
    case QUOTED_OK:
        break;
    case QUOTED_UNTERMINATED:
        why = "unterminated quoted secret";
        goto out;
    case QUOTED_TOO_LONG:
        why = "secret too long (at most 511 bytes)";
        goto out;
    }
    /* whatever follows the second field is ignored, as in PgBouncer */
    if (!px_secret_parse(secret_text, &secret))
        why = "malformed SCRAM-SHA-256 verifier";
    else if (!authfile_put(af, user, &secret))
        why = "out of memory";
out:
    OPENSSL_cleanse(secret_text, sizeof secret_text);
    OPENSSL_cleanse(&secret, sizeof secret);
    return why;
}

px_authfile_t *px_authfile_parse(const char *text, char *err, size_t errlen)
{
    px_authfile_t *af;
    int lineno = 0;

    if (err && errlen)
        err[0] = '\0';
    if (!text) {
        set_err(err, errlen, "no text", 0);
        return NULL;
    }
    af = calloc(1, sizeof *af);
    if (!af) {
        set_err(err, errlen, "out of memory", 0);
        return NULL;
    }
    for (const char *p = text; *p;) {
        const char *eol = strchr(p, '\n');
        const char *end = eol ? eol : p + strlen(p);
        const char *why;

        lineno++;
        why = authfile_line(af, p, end);
        if (why) {
            set_err(err, errlen, why, lineno);
            px_authfile_free(af);
            return NULL;
        }
        p = eol ? eol + 1 : end;
    }
    return af;
}

px_authfile_t *px_authfile_load(const char *path, char *err, size_t errlen)
{
    px_authfile_t *af = NULL;
    char *buf = NULL;
    size_t size = 0, got;
    struct stat sb;
    FILE *f;

    if (err && errlen)
        err[0] = '\0';
    if (!path) {
        set_err(err, errlen, "no path", 0);
        return NULL;
    }
    f = fopen(path, "rb");
    if (!f) {
        if (err && errlen)
            snprintf(err, errlen, "auth file %s: %s", path, strerror(errno));
        return NULL;
    }
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode) ||
        (unsigned long long)sb.st_size > AUTHFILE_MAX_BYTES) {
        if (err && errlen)
            snprintf(err, errlen, "auth file %s: not a regular file of at most %u bytes", path,
                     AUTHFILE_MAX_BYTES);
        goto done;
    }
    size = (size_t)sb.st_size;
    buf = malloc(size + 1);
    if (!buf) {
        set_err(err, errlen, "out of memory", 0);
        goto done;
    }
    got = fread(buf, 1, size, f);
    if (got != size || ferror(f)) {
        if (err && errlen)
            snprintf(err, errlen, "auth file %s: read error", path);
        goto done;
    }
    buf[size] = '\0';
    const char *nul = memchr(buf, '\0', size);
    if (nul) {
        int lineno = 1;
        for (const char *q = buf; q < nul; q++)
            lineno += *q == '\n';
        set_err(err, errlen, "NUL byte", lineno);
        goto done;
    }
    af = px_authfile_parse(buf, err, errlen);
done:
    if (buf) {
        OPENSSL_cleanse(buf, size + 1);
        free(buf);
    }
    fclose(f);
    return af;
}

/* ---- md5 ----------------------------------------------------------------- */

static bool md5_hex(const void *a, size_t alen, const void *b, size_t blen, char out[36])
{
    static const char hex[] = "0123456789abcdef";
    uint8_t md[16];
    unsigned int n = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    bool ok = ctx && EVP_DigestInit_ex(ctx, EVP_md5(), NULL) == 1 &&
              EVP_DigestUpdate(ctx, a, alen) == 1 && EVP_DigestUpdate(ctx, b, blen) == 1 &&
              EVP_DigestFinal_ex(ctx, md, &n) == 1 && n == sizeof md;

    EVP_MD_CTX_free(ctx);
    if (!ok) {
        out[0] = '\0';
        return false;
    }
    memcpy(out, "md5", 3);
    for (int i = 0; i < 16; i++) {
        out[3 + 2 * i] = hex[md[i] >> 4];
        out[4 + 2 * i] = hex[md[i] & 15];
    }
    out[35] = '\0';
    OPENSSL_cleanse(md, sizeof md);
    return true;
}

void px_md5_hash_password(const char *password, const char *user, char out[36])
{
    if (!password || !user) {
        out[0] = '\0';
        return;
    }
    (void)md5_hex(password, strlen(password), user, strlen(user), out);
}

void px_md5_salted(const char md5_secret[36], const uint8_t salt[4], char out[36])
{
    if (!md5_secret || !salt || strnlen(md5_secret, 36) != 35 || memcmp(md5_secret, "md5", 3)) {
        out[0] = '\0';
        return;
    }
    (void)md5_hex(md5_secret + 3, 32, salt, 4, out);
}

bool px_md5_verify(const px_secret_t *secret, const char *user, const uint8_t salt[4],
                   const char *client_answer)
{
    char hashed[36], expected[36];
    bool ok = false;

    if (!secret || !user || !salt || !client_answer || strnlen(client_answer, 36) != 35)
        return false;
    if (secret->kind == PX_SECRET_PLAIN) {
        px_md5_hash_password(secret->text, user, hashed);
    } else if (secret->kind == PX_SECRET_MD5) {
        memcpy(hashed, secret->text, 36);
    } else {
        return false;
    }
    px_md5_salted(hashed, salt, expected);
    ok = expected[0] != '\0' && px_auth_consttime_eq(expected, client_answer, 35);
    OPENSSL_cleanse(hashed, sizeof hashed);
    OPENSSL_cleanse(expected, sizeof expected);
    return ok;
}

/* ---- SCRAM message parsing ----------------------------------------------- */

/*
 * Copies a peer message into @p buf as a C string. PostgreSQL refuses empty
 * messages and any whose length disagrees with strlen (an embedded NUL).
 */
static bool copy_msg(char *buf, size_t bufsize, const char *msg, size_t len)
{
    if (!msg || len == 0 || len >= bufsize || memchr(msg, '\0', len))
        return false;
    memcpy(buf, msg, len);
    buf[len] = '\0';
    return true;
}

/*
 * Reads "<attr>=<value>" at *pos, as read_attribute in auth-scram.c: the value
 * runs to the next ',' (which is cut and skipped) or to the end.
 */
static bool read_attr(char **pos, char attr, char **value)
{
    char *p = *pos;
    char *comma;

    if (*p != attr || p[1] != '=')
        return false;
    p += 2;
    *value = p;
    comma = strchr(p, ',');
    if (comma) {
        *comma = '\0';
        *pos = comma + 1;
    } else {
        *pos = p + strlen(p);
    }
    return true;
}

/* Any "<letter>=<value>" (an extension, or the proof). */
static bool read_any_attr(char **pos, char *attr, char **value)
{
    char c = **pos;

    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')))
        return false;
    *attr = c;
    return read_attr(pos, c, value);
}

/* A SCRAM nonce: printable ASCII except ',' (RFC 5802), and not empty. */
static bool nonce_ok(const char *s)
{
    if (*s == '\0')
        return false;
    for (; *s; s++)
        if (*s < 0x21 || *s > 0x7E || *s == ',')
            return false;
    return true;
}

/* ---- SCRAM server -------------------------------------------------------- */

bool px_scram_server_init(px_scram_server_t *st, const px_secret_t *secret)
{
    if (!st)
        return false;
    OPENSSL_cleanse(st, sizeof *st);
    if (!secret)
        return false;
    switch (secret->kind) {
    case PX_SECRET_SCRAM:
        st->secret = *secret;
        return true;
    case PX_SECRET_PLAIN:
        return derive_verifier(secret->text, SCRAM_ITERATIONS_DEFAULT, &st->secret);
    case PX_SECRET_NONE:
    case PX_SECRET_MD5:
        break;
    }
    return false;
}

static pthread_once_t g_mock_once = PTHREAD_ONCE_INIT;
static uint8_t g_mock_key[PX_SCRAM_KEY_LEN]; /* per-process, never leaves this file */
static bool g_mock_ready;

static void mock_key_init(void)
{
    g_mock_ready = RAND_bytes(g_mock_key, sizeof g_mock_key) == 1;
}

bool px_scram_server_init_mock(px_scram_server_t *st, const char *user)
{
    uint8_t salt[PX_SCRAM_KEY_LEN];
    auth_part_t parts[2] = {{"mock-salt:", 10}, {user, user ? strlen(user) : 0}};
    bool ok;

    if (!st || !user)
        return false;
    OPENSSL_cleanse(st, sizeof *st);
    if (pthread_once(&g_mock_once, mock_key_init) != 0 || !g_mock_ready)
        return false;
    /* a stable salt per user, so repeated probes see the same challenge; random
     * keys, so no proof can match */
    ok = hmac_sha256(g_mock_key, sizeof g_mock_key, parts, 2, salt) &&
         RAND_bytes(st->secret.stored_key, PX_SCRAM_KEY_LEN) == 1 &&
         RAND_bytes(st->secret.server_key, PX_SCRAM_KEY_LEN) == 1;
    if (ok) {
        st->secret.kind = PX_SECRET_SCRAM;
        st->secret.iterations = SCRAM_ITERATIONS_DEFAULT;
        st->secret.salt_len = SCRAM_SALT_LEN;
        memcpy(st->secret.salt, salt, SCRAM_SALT_LEN);
        ok = format_verifier(&st->secret);
    }
    OPENSSL_cleanse(salt, sizeof salt);
    if (!ok)
        OPENSSL_cleanse(st, sizeof *st);
    return ok;
}

/* Forget the exchange (not the verifier): a failed or finished exchange
 * cannot be continued. */
static void server_reset(px_scram_server_t *st)
{
    st->client_first_bare[0] = '\0';
    st->server_first[0] = '\0';
    st->nonce[0] = '\0';
    st->cbind_flag = '\0';
}

px_scram_result_t px_scram_server_first(px_scram_server_t *st, const char *client_first, size_t len,
                                        char *out, size_t outlen)
{
    char buf[SCRAM_MSG_MAX];
    char salt[B64_LEN(sizeof st->secret.salt) + 1];
    char server_nonce[B64_LEN(PX_SCRAM_NONCE_LEN) + 1];
    uint8_t raw[PX_SCRAM_NONCE_LEN];
    char *p = buf, *user, *client_nonce, *ext, attr;
    char flag;
    int n;

    if (!st || !out || outlen == 0)
        return PX_SCRAM_FAIL_PROTOCOL;
    out[0] = '\0';
    if (st->secret.kind != PX_SECRET_SCRAM || st->server_first[0] != '\0')
        goto fail;
    if (!copy_msg(buf, sizeof buf, client_first, len))
        goto fail;

    /* gs2-header: cbind-flag "," [authzid] "," */
    flag = *p++;
    if (flag != 'n' && flag != 'y') /* 'p' asks for binding we never offered */
        goto fail;
    if (*p++ != ',')
        goto fail;
    if (*p++ != ',') /* an authzid ("a=") is not supported, as in PostgreSQL */
        goto fail;

    /* client-first-message-bare, kept verbatim for AuthMessage */
    if (strlen(p) >= sizeof st->client_first_bare)
        goto fail;
    memcpy(st->client_first_bare, p, strlen(p) + 1);
    if (*p == 'm') /* a mandatory extension we do not know */
        goto fail;
    if (!read_attr(&p, 'n', &user) || !read_attr(&p, 'r', &client_nonce))
        goto fail;
    if (!nonce_ok(client_nonce))
        goto fail;
    while (*p) /* optional extensions, ignored */
        if (!read_any_attr(&p, &attr, &ext))
            goto fail;

    if (RAND_bytes(raw, sizeof raw) != 1 ||
        !b64_encode(raw, sizeof raw, server_nonce, sizeof server_nonce) ||
        !b64_encode(st->secret.salt, st->secret.salt_len, salt, sizeof salt))
        goto fail;
    n = snprintf(st->nonce, sizeof st->nonce, "%s%s", client_nonce, server_nonce);
    if (n < 0 || (size_t)n >= sizeof st->nonce)
        goto fail;
    n = snprintf(st->server_first, sizeof st->server_first, "r=%s,s=%s,i=%d", st->nonce, salt,
                 st->secret.iterations);
    if (n < 0 || (size_t)n >= sizeof st->server_first || (size_t)n >= outlen)
        goto fail;
    memcpy(out, st->server_first, (size_t)n + 1);
    st->cbind_flag = flag;
    return PX_SCRAM_OK;
fail:
    server_reset(st);
    return PX_SCRAM_FAIL_PROTOCOL;
}

px_scram_result_t px_scram_server_final(px_scram_server_t *st, const char *client_final, size_t len,
                                        char *out, size_t outlen)
{
    char buf[SCRAM_MSG_MAX];
    uint8_t proof[PX_SCRAM_KEY_LEN], signature[PX_SCRAM_KEY_LEN];
    uint8_t client_key[PX_SCRAM_KEY_LEN], stored[PX_SCRAM_KEY_LEN];
    uint8_t server_signature[PX_SCRAM_KEY_LEN];
    char *p = buf, *cbind, *final_nonce, *value, *attr_start, attr;
    px_scram_result_t res = PX_SCRAM_FAIL_PROTOCOL;
    size_t n;

    if (!st || !out || outlen == 0)
        return PX_SCRAM_FAIL_PROTOCOL;
    out[0] = '\0';
    st->have_client_key = false;
    if (st->server_first[0] == '\0' || !copy_msg(buf, sizeof buf, client_final, len))
        goto done;
    /* "v=" + base64 ServerSignature + NUL */
    if (outlen < 2 + B64_LEN(PX_SCRAM_KEY_LEN) + 1)
        goto done;

    /* channel-binding: base64 of the gs2 header we saw, "n,," or "y,," */
    if (!read_attr(&p, 'c', &cbind) || strcmp(cbind, st->cbind_flag == 'y' ? "eSws" : "biws"))
        goto done;
    if (!read_attr(&p, 'r', &final_nonce) || strcmp(final_nonce, st->nonce) != 0)
        goto done;
    /* extensions may precede the proof, which must come last */
    do {
        attr_start = p;
        if (!read_any_attr(&p, &attr, &value))
            goto done;
    } while (attr != 'p');
    if (!b64_decode(value, strlen(value), proof, sizeof proof, &n) || n != PX_SCRAM_KEY_LEN ||
        *p != '\0')
        goto done;

    /* AuthMessage = client-first-bare "," server-first "," client-final-without-proof,
     * the last taken from the caller's untouched bytes (buf has its commas cut) */
    auth_part_t parts[5] = {
        {st->client_first_bare, strlen(st->client_first_bare)}, {",", 1},
        {st->server_first, strlen(st->server_first)},           {",", 1},
        {client_final, (size_t)(attr_start - buf) - 1}, /* without ",p=..." */
    };
    res = PX_SCRAM_FAIL_PROOF;
    if (!hmac_sha256(st->secret.stored_key, PX_SCRAM_KEY_LEN, parts, 5, signature))
        goto done;
    for (int i = 0; i < PX_SCRAM_KEY_LEN; i++)
        client_key[i] = proof[i] ^ signature[i];
    if (!sha256(client_key, PX_SCRAM_KEY_LEN, stored) ||
        !px_auth_consttime_eq(stored, st->secret.stored_key, PX_SCRAM_KEY_LEN))
        goto done;
    if (!hmac_sha256(st->secret.server_key, PX_SCRAM_KEY_LEN, parts, 5, server_signature))
        goto done;
    memcpy(out, "v=", 2);
    if (!b64_encode(server_signature, PX_SCRAM_KEY_LEN, out + 2, outlen - 2)) {
        out[0] = '\0';
        goto done;
    }
    memcpy(st->client_key, client_key, PX_SCRAM_KEY_LEN);
    st->have_client_key = true;
    res = PX_SCRAM_OK;
done:
    OPENSSL_cleanse(buf, sizeof buf);
    OPENSSL_cleanse(proof, sizeof proof);
    OPENSSL_cleanse(signature, sizeof signature);
    OPENSSL_cleanse(client_key, sizeof client_key);
    OPENSSL_cleanse(stored, sizeof stored);
    OPENSSL_cleanse(server_signature, sizeof server_signature);
    server_reset(st);
    return res;
}

/* ---- SCRAM client -------------------------------------------------------- */

void px_scram_client_init_password(px_scram_client_t *st, const char *password)
{
    if (!st)
        return;
    OPENSSL_cleanse(st, sizeof *st);
    if (password)
        snprintf(st->password, sizeof st->password, "%s", password);
}

void px_scram_client_init_keys(px_scram_client_t *st, const uint8_t client_key[PX_SCRAM_KEY_LEN],
                               const uint8_t server_key[PX_SCRAM_KEY_LEN])
{
    if (!st)
        return;
    OPENSSL_cleanse(st, sizeof *st);
    if (!client_key || !server_key)
        return; /* use_keys stays false with an empty password: login fails */
    memcpy(st->client_key, client_key, PX_SCRAM_KEY_LEN);
    memcpy(st->server_key, server_key, PX_SCRAM_KEY_LEN);
    st->use_keys = true;
}

size_t px_scram_client_first(px_scram_client_t *st, char *out, size_t outlen)
{
    uint8_t raw[PX_SCRAM_NONCE_LEN];
    int n;

    if (!st || !out || outlen == 0)
        return 0;
    out[0] = '\0';
    st->client_first_bare[0] = '\0';
    st->expected_server_signature[0] = '\0';
    if (RAND_bytes(raw, sizeof raw) != 1 ||
        !b64_encode(raw, sizeof raw, st->client_nonce, sizeof st->client_nonce))
        return 0;
    /* an empty user name: PostgreSQL takes it from the startup packet */
    n = snprintf(st->client_first_bare, sizeof st->client_first_bare, "n=,r=%s", st->client_nonce);
    if (n < 0 || (size_t)n >= sizeof st->client_first_bare)
        goto fail;
    n = snprintf(out, outlen, "n,,%s", st->client_first_bare);
    if (n < 0 || (size_t)n >= outlen)
        goto fail;
    return (size_t)n;
fail:
    out[0] = '\0';
    st->client_first_bare[0] = '\0';
    return 0;
}

px_scram_result_t px_scram_client_final(px_scram_client_t *st, const char *server_first, size_t len,
                                        char *out, size_t outlen, size_t *outlen_used)
{
    char buf[SCRAM_MSG_MAX];
    char without_proof[SCRAM_MSG_MAX];
    char proof_b64[B64_LEN(PX_SCRAM_KEY_LEN) + 1];
    uint8_t salt[SCRAM_SERVER_SALT_MAX];
    uint8_t client_key[PX_SCRAM_KEY_LEN], server_key[PX_SCRAM_KEY_LEN];
    uint8_t stored[PX_SCRAM_KEY_LEN], signature[PX_SCRAM_KEY_LEN];
    uint8_t server_signature[PX_SCRAM_KEY_LEN];
    char *p = buf, *nonce, *salt_b64, *iter_str;
    size_t salt_len = 0, cnonce_len;
    int iterations = 0, n;
    px_scram_result_t res = PX_SCRAM_FAIL_PROTOCOL;

    if (outlen_used)
        *outlen_used = 0;
    if (!st || !out || outlen == 0)
        return PX_SCRAM_FAIL_PROTOCOL;
    out[0] = '\0';
    st->expected_server_signature[0] = '\0';
    if (st->client_first_bare[0] == '\0' || !copy_msg(buf, sizeof buf, server_first, len))
        goto done;

    /* r=<our nonce><theirs>,s=<salt>,i=<iterations>, nothing after (libpq) */
    cnonce_len = strlen(st->client_nonce);
    if (!read_attr(&p, 'r', &nonce) || strlen(nonce) <= cnonce_len ||
        memcmp(nonce, st->client_nonce, cnonce_len) != 0 || !nonce_ok(nonce))
        goto done;
    if (!read_attr(&p, 's', &salt_b64) ||
        !b64_decode(salt_b64, strlen(salt_b64), salt, sizeof salt, &salt_len))
        goto done;
    if (!read_attr(&p, 'i', &iter_str) || !parse_iterations(iter_str, &iterations) || *p != '\0')
        goto done;

    n = snprintf(without_proof, sizeof without_proof, "c=biws,r=%s", nonce);
    if (n < 0 || (size_t)n >= sizeof without_proof)
        goto done;

    res = PX_SCRAM_FAIL_PROOF; /* from here on only crypto can fail: fail closed */
    if (st->use_keys) {
        /* The server's salt and iterations do not matter: the keys are what
         * its verifier was built from. */
        memcpy(client_key, st->client_key, PX_SCRAM_KEY_LEN);
        memcpy(server_key, st->server_key, PX_SCRAM_KEY_LEN);
    } else if (!keys_from_password(st->password, salt, salt_len, iterations, client_key,
                                   server_key)) {
        goto done;
    }
    auth_part_t parts[5] = {
        {st->client_first_bare, strlen(st->client_first_bare)},
        {",", 1},
        {server_first, len},
        {",", 1},
        {without_proof, (size_t)n},
    };
    if (!sha256(client_key, PX_SCRAM_KEY_LEN, stored) ||
        !hmac_sha256(stored, PX_SCRAM_KEY_LEN, parts, 5, signature) ||
        !hmac_sha256(server_key, PX_SCRAM_KEY_LEN, parts, 5, server_signature))
        goto done;
    for (int i = 0; i < PX_SCRAM_KEY_LEN; i++)
        signature[i] ^= client_key[i]; /* now the ClientProof */
    if (!b64_encode(signature, PX_SCRAM_KEY_LEN, proof_b64, sizeof proof_b64) ||
        !b64_encode(server_signature, PX_SCRAM_KEY_LEN, st->expected_server_signature,
                    sizeof st->expected_server_signature))
        goto done;

    res = PX_SCRAM_FAIL_PROTOCOL; /* the caller's buffer is too small */
    n = snprintf(out, outlen, "%s,p=%s", without_proof, proof_b64);
    if (n < 0 || (size_t)n >= outlen) {
        out[0] = '\0';
        st->expected_server_signature[0] = '\0';
        goto done;
    }
    if (outlen_used)
        *outlen_used = (size_t)n;
    res = PX_SCRAM_OK;
done:
    OPENSSL_cleanse(client_key, sizeof client_key);
    OPENSSL_cleanse(server_key, sizeof server_key);
    OPENSSL_cleanse(stored, sizeof stored);
    OPENSSL_cleanse(signature, sizeof signature);
    OPENSSL_cleanse(server_signature, sizeof server_signature);
    OPENSSL_cleanse(proof_b64, sizeof proof_b64);
    return res;
}

px_scram_result_t px_scram_client_verify(const px_scram_client_t *st, const char *server_final,
                                         size_t len)
{
    char buf[SCRAM_MSG_MAX];
    uint8_t got[PX_SCRAM_KEY_LEN], want[PX_SCRAM_KEY_LEN];
    char *p = buf, *value;
    size_t n, m;
    px_scram_result_t res = PX_SCRAM_FAIL_PROTOCOL;

    if (!st || st->expected_server_signature[0] == '\0' ||
        !copy_msg(buf, sizeof buf, server_final, len))
        return PX_SCRAM_FAIL_PROTOCOL;
    if (strncmp(buf, "e=", 2) == 0) /* server-error: it refused us */
        return PX_SCRAM_FAIL_PROOF;
    if (!read_attr(&p, 'v', &value) || *p != '\0' ||
        !b64_decode(value, strlen(value), got, sizeof got, &n) || n != PX_SCRAM_KEY_LEN)
        goto done;
    res = PX_SCRAM_FAIL_PROOF;
    if (b64_decode(st->expected_server_signature, strlen(st->expected_server_signature), want,
                   sizeof want, &m) &&
        m == PX_SCRAM_KEY_LEN && px_auth_consttime_eq(got, want, PX_SCRAM_KEY_LEN))
        res = PX_SCRAM_OK;
done:
    OPENSSL_cleanse(want, sizeof want);
    return res;
}

bool px_scram_make_verifier(const char *password, int iterations, char *out, size_t outlen)
{
    px_secret_t secret;
    bool ok;
    size_t n;

    if (!password || !out || outlen == 0)
        return false;
    out[0] = '\0';
    ok = derive_verifier(password, iterations, &secret) && (n = strlen(secret.text)) < outlen;
    if (ok)
        memcpy(out, secret.text, n + 1);
    OPENSSL_cleanse(&secret, sizeof secret);
    return ok;
}
