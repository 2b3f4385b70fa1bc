/*
 * Per-query digests (see include/px_digest.h): a lexical normaliser that
 * fingerprints statement texts, and a bounded, sharded table of per-digest
 * statistics that the workers update on every query and the admin thread
 * reads.
 *
 * The normaliser is one pass over the text producing a token stream with a
 * canonical spacing; the fingerprint is XXH3 over that stream (placeholders
 * as one byte), computed in chunks so texts of any length are covered while
 * only PX_DIGEST_TEXT_MAX bytes of the displayed form are ever kept.
 *
 * Invariant: an entry is reachable from exactly one shard chain, and only
 * while its shard's mutex is held; nothing outside this file ever holds a
 * pointer to an entry (snapshots are copies). Eviction takes g_evict_mu,
 * gathers (score, id) pairs shard by shard, picks the lightest and unlinks
 * them by id, so it never holds two shard locks at once.
 */
#include "px_digest.h"

#include <math.h>
#include <stddef.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#define DG_SHARDS     64u
#define DG_TLS_SLOTS  256u /* per-thread cache of recent texts -> fingerprint */
#define DG_CHUNK      1024u
#define DG_PH         '\x01' /* a placeholder in the hashed stream */
#define DG_ELLIPSIS   '\x02' /* a collapsed IN list's tail in the hashed stream */
#define DG_MAX_PREFIX 16u    /* bytes of the previous word remembered */

/* ==== normaliser ================================================================== */

typedef enum tok {
    TK_NONE = 0, /* start of text */
    TK_WORD,     /* unquoted identifier or keyword (folded) */
    TK_QIDENT,   /* "quoted identifier" */
    TK_PH,       /* literal or parameter placeholder */
    TK_OP,       /* operator */
    TK_LPAREN,
    TK_RPAREN,
    TK_LBRACK,
    TK_RBRACK,
    TK_COMMA,
    TK_SEMI,
    TK_DOT,
    TK_CAST, /* :: */
    TK_COLON,
    TK_OTHER,
} tok_t;

/* IN-list collapse: after the word "in", a "(" is held back while only
 * placeholders and commas follow; ")" then writes "($1, ...)". */
typedef enum in_state {
    IN_NO = 0,
    IN_AFTER_IN, /* the last token was the word "in" */
    IN_HELD,     /* "(" held: ph_held placeholders, last_comma says what came last */
} in_state_t;

typedef struct norm {
    const unsigned char *s;
    size_t n;
    bool display; /* placeholders as $k into out (bounded); else hashed */
    /* display mode */
    char *out;
    size_t o, cap; /* cap excludes the NUL */
    bool truncated;
    /* hash mode */
    size_t c;         /* bytes in chunk */
    XXH3_state_t *st; /* non-NULL once a chunk has been flushed */
    /* tokens */
    unsigned nph;                  /* placeholders written (display numbering) */
    tok_t prev;                    /* last token written */
    char prev_word[DG_MAX_PREFIX]; /* it, if a short word */
    bool any;                      /* a token has been written */
    unsigned semis;                /* ';' held back (dropped at the end) */
    in_state_t in;
    unsigned ph_held;
    bool last_comma;
    /* large members last: norm_init() clears everything before them */
    char chunk[DG_CHUNK];
    XXH3_state_t st_mem;
} norm_t;

static void norm_init(norm_t *N, const char *sql, size_t len, bool display)
{
    memset(N, 0, offsetof(norm_t, chunk));
    N->s = (const unsigned char *)sql;
    N->n = sql ? len : 0;
    N->display = display;
    N->prev = TK_NONE;
    N->in = IN_NO;
}

/* Character classes of the scanner, one table lookup per byte. */
enum { CC_SPACE = 1, CC_ID_START = 2, CC_ID_CONT = 4, CC_DIGIT = 8, CC_UPPER = 16 };

static const unsigned char k_cc[256] = {
    [' '] = CC_SPACE,
    ['\t'] = CC_SPACE,
    ['\n'] = CC_SPACE,
    ['\r'] = CC_SPACE,
    ['\f'] = CC_SPACE,
    ['\v'] = CC_SPACE,
    ['a' ... 'z'] = CC_ID_START | CC_ID_CONT,
    ['A' ... 'Z'] = CC_ID_START | CC_ID_CONT | CC_UPPER,
    ['_'] = CC_ID_START | CC_ID_CONT,
    [0x80 ... 0xff] = CC_ID_START | CC_ID_CONT,
    ['0' ... '9'] = CC_DIGIT | CC_ID_CONT,
    ['$'] = CC_ID_CONT,
};

static inline bool is_ident_start(unsigned char c)
{
    return k_cc[c] & CC_ID_START;
}

static inline bool is_ident_cont(unsigned char c)
{
    return k_cc[c] & CC_ID_CONT;
}

static inline bool is_digit(unsigned char c)
{
    return k_cc[c] & CC_DIGIT;
}

static inline bool is_space(unsigned char c)
{
    return k_cc[c] & CC_SPACE;
}

static inline char fold(unsigned char c)
{
    return (char)(k_cc[c] & CC_UPPER ? c + 32 : c);
}

/* An operator character that keeps a trailing + or - on a multi-character operator. */
static inline bool is_op_special(unsigned char c)
{
    switch (c) {
    case '~':
    case '!':
    case '@':
    case '#':
    case '%':
    case '^':
    case '&':
    case '|':
    case '`':
    case '?':
        return true;
    default:
        return false;
    }
}

static inline bool is_op_char(unsigned char c)
{
    return is_op_special(c) || c == '+' || c == '-' || c == '*' || c == '/' || c == '<' ||
           c == '>' || c == '=';
}

static void put_bytes_slow(norm_t *N, const char *p, size_t k)
{
    if (N->display) {
        if (N->truncated)
            return;
        if (N->o + k > N->cap) {
            size_t room = N->cap - N->o;
            /* cut on a UTF-8 boundary */
            while (room > 0 && ((unsigned char)p[room] & 0xc0) == 0x80)
                room--;
            memcpy(N->out + N->o, p, room);
            N->o += room;
            N->truncated = true;
            return;
        }
        memcpy(N->out + N->o, p, k);
        N->o += k;
        return;
    }
    while (k > 0) {
        if (N->c == DG_CHUNK) {
            if (!N->st) {
                N->st = &N->st_mem;
                XXH3_64bits_reset(N->st);
            }
            XXH3_64bits_update(N->st, N->chunk, N->c);
            N->c = 0;
        }
        size_t m = DG_CHUNK - N->c < k ? DG_CHUNK - N->c : k;
        memcpy(N->chunk + N->c, p, m);
        N->c += m;
        p += m;
        k -= m;
    }
}

/* Most tokens fit the hash chunk's free room: copy them there at once. */
static inline void put_bytes(norm_t *N, const char *p, size_t k)
{
    if (!N->display && k <= DG_CHUNK - N->c) {
        memcpy(N->chunk + N->c, p, k);
        N->c += k;
        return;
    }
    put_bytes_slow(N, p, k);
}

static inline void put_c(norm_t *N, char c)
{
    if (!N->display && N->c < DG_CHUNK) {
        N->chunk[N->c++] = c;
        return;
    }
    put_bytes_slow(N, &c, 1);
}

/* Keywords after which "(" keeps its space ("in (", "values (", ...). */
static bool paren_spaced_after(const char *w)
{
    static const char *const kw[] = {
        "in",     "values", "as",        "and",     "or",       "not",    "exists",    "from",
        "join",   "where",  "on",        "select",  "by",       "set",    "using",     "any",
        "all",    "some",   "over",      "when",    "then",     "else",   "into",      "with",
        "union",  "except", "intersect", "lateral", "filter",   "within", "returning", "table",
        "having", "limit",  "offset",    "case",    "distinct", NULL,
    };
    for (int i = 0; kw[i]; i++)
        if (strcmp(w, kw[i]) == 0)
            return true;
    return false;
}

/* Keywords after which '-' starts a negative number, not a subtraction. */
static bool expr_start_after(const char *w)
{
    static const char *const kw[] = {
        "select",   "where", "and",    "or",        "not",   "when",   "then",
        "else",     "case",  "by",     "values",    "limit", "offset", "between",
        "having",   "on",    "return", "returning", "like",  "ilike",  "set",
        "distinct", "all",   "any",    "some",      "in",    "is",     "to",
        "default",  "array", "fetch",  "first",     "next",  NULL,
    };
    for (int i = 0; kw[i]; i++)
        if (strcmp(w, kw[i]) == 0)
            return true;
    return false;
}

/* Whether a space separates the previous token from one of kind @p t. */
static inline bool spaced(const norm_t *N, tok_t t)
{
    if (!N->any)
        return false;
    switch (N->prev) {
    case TK_LPAREN:
    case TK_LBRACK:
    case TK_DOT:
    case TK_CAST:
        return false;
    default:
        break;
    }
    switch (t) {
    case TK_RPAREN:
    case TK_RBRACK:
    case TK_COMMA:
    case TK_SEMI:
    case TK_DOT:
    case TK_CAST:
    case TK_LBRACK:
        return false;
    case TK_LPAREN:
        if (N->prev == TK_QIDENT)
            return false;
        if (N->prev == TK_WORD)
            return N->prev_word[0] != 0 && paren_spaced_after(N->prev_word);
        return true;
    default:
        return true;
    }
}

/* "$k" for the next placeholder of the displayed form. */
static __attribute__((noinline)) void put_numbered_ph(norm_t *N)
{
    char b[16];
    int w = 0;
    unsigned v = ++N->nph;
    char d[12];
    do {
        d[w++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    b[0] = '$';
    for (int i = 0; i < w; i++)
        b[1 + i] = d[w - 1 - i];
    put_bytes(N, b, (size_t)w + 1);
}

static inline __attribute__((always_inline)) void emit_raw(norm_t *N, tok_t t, const char *p,
                                                           size_t k)
{
    if (N->semis > 0) { /* statements went on: the ';' was a separator */
        N->semis = 0;
        if (N->any) {
            put_c(N, ';');
            N->prev = TK_SEMI;
        }
    }
    if (spaced(N, t))
        put_c(N, ' ');
    if (t == TK_PH) {
        if (N->display)
            put_numbered_ph(N);
        else
            put_c(N, DG_PH);
    } else {
        put_bytes(N, p, k);
    }
    N->prev = t;
    N->any = true;
    N->prev_word[0] = 0;
    if (t == TK_WORD && k < DG_MAX_PREFIX) {
        for (size_t j = 0; j < k; j++)
            N->prev_word[j] = p[j];
        N->prev_word[k] = 0;
    }
}

/* Release a held "(" and what followed it, as it was. */
static void in_flush(norm_t *N)
{
    if (N->in != IN_HELD) {
        N->in = IN_NO;
        return;
    }
    N->in = IN_NO;
    emit_raw(N, TK_LPAREN, "(", 1);
    for (unsigned i = 0; i < N->ph_held; i++) {
        if (i > 0)
            emit_raw(N, TK_COMMA, ",", 1);
        emit_raw(N, TK_PH, NULL, 0);
    }
    if (N->last_comma)
        emit_raw(N, TK_COMMA, ",", 1);
}

/* Write one token, through the IN-list state machine. */
static void emit(norm_t *N, tok_t t, const char *p, size_t k)
{
    if (t == TK_SEMI) {
        in_flush(N);
        N->semis++;
        return;
    }
    switch (N->in) {
    case IN_AFTER_IN:
        if (t == TK_LPAREN && N->semis == 0) {
            N->in = IN_HELD;
            N->ph_held = 0;
            N->last_comma = false;
            return;
        }
        N->in = IN_NO;
        break;
    case IN_HELD:
        if (t == TK_PH && (N->ph_held == 0 || N->last_comma)) {
            N->ph_held++;
            N->last_comma = false;
            return;
        }
        if (t == TK_COMMA && N->ph_held > 0 && !N->last_comma) {
            N->last_comma = true;
            return;
        }
        if (t == TK_RPAREN && N->ph_held > 0 && !N->last_comma) {
            N->in = IN_NO;
            emit_raw(N, TK_LPAREN, "(", 1);
            emit_raw(N, TK_PH, NULL, 0);
            emit_raw(N, TK_COMMA, ",", 1);
            if (N->display)
                emit_raw(N, TK_OTHER, "...", 3);
            else
                emit_raw(N, TK_OTHER, (const char[]){DG_ELLIPSIS}, 1);
            emit_raw(N, TK_RPAREN, ")", 1);
            return;
        }
        in_flush(N);
        break;
    default:
        break;
    }
    emit_raw(N, t, p, k);
    if (t == TK_WORD && k == 2 && p[0] == 'i' && p[1] == 'n')
        N->in = IN_AFTER_IN;
}

/* End of a '...' literal starting at the quote @p i (backslash escapes in
 * E'...'); n when unterminated. */
static size_t squote_end(const unsigned char *s, size_t n, size_t i, bool backslash)
{
    size_t k = i + 1;
    while (k < n) {
        if (backslash && s[k] == '\\') {
            k += 2;
            continue;
        }
        if (s[k] == '\'') {
            if (k + 1 < n && s[k + 1] == '\'') {
                k += 2;
                continue;
            }
            return k + 1;
        }
        k++;
    }
    return n;
}

/* A number starting at @p i (digit, or '.' then digit). Returns its end. */
static size_t number_end(const unsigned char *s, size_t n, size_t i)
{
    size_t k = i;
    if (k + 1 < n && s[k] == '0' && strchr("xXoObB", s[k + 1]) && s[k + 1]) {
        k += 2;
        while (k < n && (is_ident_cont(s[k])))
            k++;
        return k;
    }
    while (k < n && (is_digit(s[k]) || s[k] == '_'))
        k++;
    if (k < n && s[k] == '.' && !(k + 1 < n && s[k + 1] == '.')) {
        k++;
        while (k < n && (is_digit(s[k]) || s[k] == '_'))
            k++;
    }
    if (k < n && (s[k] == 'e' || s[k] == 'E')) {
        size_t e = k + 1;
        if (e < n && (s[e] == '+' || s[e] == '-'))
            e++;
        if (e < n && is_digit(s[e])) {
            k = e;
            while (k < n && is_digit(s[k]))
                k++;
        }
    }
    return k;
}

/* A dollar-quote opening tag at @p i ("$$" or "$tag$"): its length, or 0. */
static size_t dollar_tag(const unsigned char *s, size_t n, size_t i)
{
    size_t k = i + 1;
    if (k < n && s[k] == '$')
        return 2;
    if (k >= n || !is_ident_start(s[k]))
        return 0;
    while (k < n && is_ident_start(s[k])) /* no '$' inside a tag */
        k++;
    while (k < n && (is_ident_start(s[k]) || is_digit(s[k])))
        k++;
    return k < n && s[k] == '$' ? k + 1 - i : 0;
}

static bool operand_before(const norm_t *N)
{
    switch (N->prev) {
    case TK_WORD:
        return !(N->prev_word[0] && expr_start_after(N->prev_word));
    case TK_QIDENT:
    case TK_PH:
    case TK_RPAREN:
    case TK_RBRACK:
        return true;
    default:
        return false;
    }
}

static void normalize(norm_t *N)
{
    const unsigned char *s = N->s;
    size_t n = N->n, i = 0;
    char word[256];
    while (i < n) {
        unsigned char c = s[i];
        if (is_space(c)) {
            i++;
            continue;
        }
        if (c == '-' && i + 1 < n && s[i + 1] == '-') {
            while (i < n && s[i] != '\n')
                i++;
            continue;
        }
        if (c == '/' && i + 1 < n && s[i + 1] == '*') {
            int depth = 1;
            i += 2;
            while (i < n && depth > 0) {
                if (s[i] == '/' && i + 1 < n && s[i + 1] == '*') {
                    depth++;
                    i += 2;
                } else if (s[i] == '*' && i + 1 < n && s[i + 1] == '/') {
                    depth--;
                    i += 2;
                } else {
                    i++;
                }
            }
            continue;
        }
        if (c == '\'') {
            i = squote_end(s, n, i, false);
            emit(N, TK_PH, NULL, 0);
            continue;
        }
        if (c == '"') {
            size_t k = i + 1;
            while (k < n) {
                if (s[k] == '"') {
                    if (k + 1 < n && s[k + 1] == '"') {
                        k += 2;
                        continue;
                    }
                    k++;
                    break;
                }
                k++;
            }
            emit(N, TK_QIDENT, (const char *)s + i, k - i);
            i = k;
            continue;
        }
        if (c == '$') {
            if (i + 1 < n && is_digit(s[i + 1])) {
                i++;
                while (i < n && is_digit(s[i]))
                    i++;
                emit(N, TK_PH, NULL, 0);
                continue;
            }
            size_t tl = dollar_tag(s, n, i);
            if (tl > 0) {
                size_t k = i + tl;
                while (k + tl <= n && memcmp(s + k, s + i, tl) != 0)
                    k++;
                i = k + tl <= n ? k + tl : n;
                emit(N, TK_PH, NULL, 0);
                continue;
            }
            emit(N, TK_OTHER, "$", 1);
            i++;
            continue;
        }
        if (is_digit(c) || (c == '.' && i + 1 < n && is_digit(s[i + 1]))) {
            i = number_end(s, n, i);
            emit(N, TK_PH, NULL, 0);
            continue;
        }
        if (is_ident_start(c)) {
            size_t k = i;
            while (k < n && is_ident_cont(s[k]))
                k++;
            size_t wl = k - i;
            /* E'..', B'..', X'..', N'..', U&'..', U&".." */
            if (wl == 1 && k < n && s[k] == '\'' && strchr("eEbBxXnN", c)) {
                i = squote_end(s, n, k, c == 'e' || c == 'E');
                emit(N, TK_PH, NULL, 0);
                continue;
            }
            if (wl == 1 && (c == 'u' || c == 'U') && k + 1 < n && s[k] == '&' &&
                (s[k + 1] == '\'' || s[k + 1] == '"')) {
                if (s[k + 1] == '\'') {
                    i = squote_end(s, n, k + 1, false);
                    emit(N, TK_PH, NULL, 0);
                    continue;
                }
                size_t q = k + 2;
                while (q < n && s[q] != '"')
                    q++;
                q = q < n ? q + 1 : n;
                emit(N, TK_QIDENT, (const char *)s + i, q - i);
                i = q;
                continue;
            }
            /* fold ASCII to lower case; long words go out in pieces */
            size_t done = 0;
            if (wl <= sizeof(word)) {
                for (size_t j = 0; j < wl; j++)
                    word[j] = fold(s[i + j]);
                if ((wl == 4 && memcmp(word, "true", 4) == 0) ||
                    (wl == 5 && memcmp(word, "false", 5) == 0))
                    emit(N, TK_PH, NULL, 0);
                else
                    emit(N, TK_WORD, word, wl);
                i = k;
                continue;
            }
            /* a word longer than any identifier PostgreSQL keeps: emit it whole */
            emit(N, TK_WORD, "", 0);
            while (done < wl) {
                size_t m = wl - done < sizeof(word) ? wl - done : sizeof(word);
                for (size_t j = 0; j < m; j++)
                    word[j] = fold(s[i + done + j]);
                put_bytes(N, word, m);
                done += m;
            }
            i = k;
            continue;
        }
        if (is_op_char(c)) {
            size_t k = i;
            while (k < n && is_op_char(s[k])) {
                if (k > i && ((s[k] == '-' && k + 1 < n && s[k + 1] == '-') ||
                              (s[k] == '/' && k + 1 < n && s[k + 1] == '*')))
                    break;
                k++;
            }
            /* PostgreSQL's rule: a multi-character operator ending in + or -
             * loses it unless it holds one of ~!@#%^&|`? */
            bool special = false;
            for (size_t j = i; j < k; j++)
                if (is_op_special(s[j]))
                    special = true;
            while (!special && k - i > 1 && (s[k - 1] == '+' || s[k - 1] == '-'))
                k--;
            if (k - i == 1 && c == '-' && !operand_before(N)) {
                size_t j = k;
                while (j < n && is_space(s[j]))
                    j++;
                if (j < n && (is_digit(s[j]) || (s[j] == '.' && j + 1 < n && is_digit(s[j + 1])))) {
                    i = number_end(s, n, j);
                    emit(N, TK_PH, NULL, 0);
                    continue;
                }
            }
            emit(N, TK_OP, (const char *)s + i, k - i);
            i = k;
            continue;
        }
        tok_t t;
        size_t k = 1;
        switch (c) {
        case '(':
            t = TK_LPAREN;
            break;
        case ')':
            t = TK_RPAREN;
            break;
        case '[':
            t = TK_LBRACK;
            break;
        case ']':
            t = TK_RBRACK;
            break;
        case ',':
            t = TK_COMMA;
            break;
        case ';':
            t = TK_SEMI;
            break;
        case '.':
            t = TK_DOT;
            break;
        case ':':
            if (i + 1 < n && s[i + 1] == ':') {
                t = TK_CAST;
                k = 2;
            } else {
                t = TK_COLON;
            }
            break;
        default:
            t = TK_OTHER;
            break;
        }
        emit(N, t, (const char *)s + i, k);
        i += k;
    }
    in_flush(N);
    /* trailing ';' are dropped */
}

uint64_t px_digest_fingerprint(const char *sql, size_t len)
{
    norm_t N;
    norm_init(&N, sql, len, false);
    normalize(&N);
    if (!N.any)
        return 0;
    uint64_t h;
    if (N.st) {
        XXH3_64bits_update(N.st, N.chunk, N.c);
        h = XXH3_64bits_digest(N.st);
    } else {
        h = XXH3_64bits(N.chunk, N.c);
    }
    return h ? h : 1;
}

size_t px_digest_normalize(const char *sql, size_t len, char *out, size_t cap)
{
    if (!out || cap == 0)
        return 0;
    norm_t *N = malloc(sizeof(*N));
    if (!N) {
        out[0] = 0;
        return 0;
    }
    norm_init(N, sql, len, true);
    N->out = out;
    N->cap = cap - 1;
    normalize(N);
    size_t o = N->o;
    out[o] = 0;
    free(N);
    return o;
}

/* ==== the table ===================================================================== */

typedef struct dg_entry {
    struct dg_entry *next; /* shard chain */
    uint64_t id;
    uint64_t calls, errors, rows, cache_hits;
    uint64_t route_calls[PX_DIGEST_ROUTE_COUNT];
    double total, min, max;
    uint64_t first_ms, last_ms; /* wall clock */
    uint64_t born_s;            /* monotonic seconds at registration (grace) */
    uint64_t hist[PX_DIGEST_HIST_BUCKETS];
    char *sample; /* owned; NULL when too long */
    uint32_t sample_len;
    uint32_t query_len;
    bool truncated;
    char query[]; /* normalised text, NUL-terminated */
} dg_entry_t;

typedef struct dg_shard {
    pthread_mutex_t mu;
    dg_entry_t **b; /* buckets, nb a power of two (0: none yet) */
    size_t nb, n;
    char _pad[64];
} dg_shard_t;

static dg_shard_t g_shards[DG_SHARDS];
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t g_evict_mu = PTHREAD_MUTEX_INITIALIZER;
static _Atomic size_t g_max = PX_DIGEST_DEFAULT_MAX;
static _Atomic size_t g_count;
static _Atomic uint64_t g_evictions, g_dropped;

typedef struct dg_tls_slot {
    uint64_t h;
    uint64_t id;
    size_t len;
} dg_tls_slot_t;

static _Thread_local dg_tls_slot_t t_slots[DG_TLS_SLOTS];

static void dg_init(void)
{
    for (unsigned i = 0; i < DG_SHARDS; i++)
        pthread_mutex_init(&g_shards[i].mu, NULL);
}

static inline dg_shard_t *shard_of(uint64_t id)
{
    return &g_shards[id & (DG_SHARDS - 1)];
}

static inline size_t bucket_of(const dg_shard_t *sh, uint64_t id)
{
    return (size_t)((id >> 6) * 0x9E3779B97F4A7C15ull >> 20) & (sh->nb - 1);
}

/* Under sh->mu. */
static dg_entry_t *find(dg_shard_t *sh, uint64_t id)
{
    if (sh->nb == 0)
        return NULL;
    for (dg_entry_t *e = sh->b[bucket_of(sh, id)]; e; e = e->next)
        if (e->id == id)
            return e;
    return NULL;
}

/* Under sh->mu; false when out of memory. */
static bool grow(dg_shard_t *sh)
{
    size_t nb = sh->nb ? sh->nb * 2 : 16;
    dg_entry_t **b = calloc(nb, sizeof(*b));
    if (!b)
        return false;
    size_t old = sh->nb;
    dg_entry_t **ob = sh->b;
    sh->b = b;
    sh->nb = nb;
    for (size_t i = 0; i < old; i++) {
        dg_entry_t *e = ob[i];
        while (e) {
            dg_entry_t *next = e->next;
            size_t k = bucket_of(sh, e->id);
            e->next = b[k];
            b[k] = e;
            e = next;
        }
    }
    free(ob);
    return true;
}

/* Unlink @p id under sh->mu; returns the entry (the caller frees it) or NULL. */
static dg_entry_t *unlink_id(dg_shard_t *sh, uint64_t id)
{
    if (sh->nb == 0)
        return NULL;
    dg_entry_t **pp = &sh->b[bucket_of(sh, id)];
    for (; *pp; pp = &(*pp)->next)
        if ((*pp)->id == id) {
            dg_entry_t *e = *pp;
            *pp = e->next;
            sh->n--;
            return e;
        }
    return NULL;
}

static void entry_free(dg_entry_t *e)
{
    if (!e)
        return;
    free(e->sample);
    free(e);
}

static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec;
}

/* Histogram bucket of a duration. */
static unsigned hist_bucket(double seconds)
{
    double us = seconds * 1e6;
    if (!(us >= 1.0)) /* also NaN and negatives */
        return 0;
    int e;
    double m = frexp(us, &e); /* us = m * 2^e, m in [0.5, 1) */
    m *= 2.0;                 /* [1, 2) */
    e -= 1;
    unsigned q = m < 1.189207115002721   ? 0
                 : m < 1.414213562373095 ? 1
                 : m < 1.681792830507429 ? 2
                                         : 3;
    long b = (long)e * 4 + (long)q + 1;
    return b >= PX_DIGEST_HIST_BUCKETS ? PX_DIGEST_HIST_BUCKETS - 1 : (unsigned)b;
}

/* Quantile @p q of an entry's histogram, clamped to its min and max. */
static double hist_quantile(const dg_entry_t *e, double q)
{
    if (e->calls == 0)
        return 0;
    uint64_t rank = (uint64_t)ceil(q * (double)e->calls);
    if (rank == 0)
        rank = 1;
    uint64_t cum = 0;
    double v = e->max;
    for (unsigned b = 0; b < PX_DIGEST_HIST_BUCKETS; b++) {
        cum += e->hist[b];
        if (cum >= rank) {
            if (b == 0)
                v = 0.5e-6;
            else if (b == PX_DIGEST_HIST_BUCKETS - 1)
                v = e->max;
            else /* geometric middle of [2^((b-1)/4), 2^(b/4)) us */
                v = exp2(((double)b - 0.5) / 4.0) * 1e-6;
            break;
        }
    }
    if (v < e->min)
        v = e->min;
    if (v > e->max)
        v = e->max;
    return v;
}

/* ---- eviction ---------------------------------------------------------------------- */

typedef struct dg_score {
    double score;
    uint64_t id;
} dg_score_t;

static int score_cmp(const void *a, const void *b)
{
    const dg_score_t *x = a, *y = b;
    if (x->score != y->score)
        return x->score < y->score ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* Evict down to @p target digests, lightest first (see the header). */
static void evict_to(size_t target)
{
    pthread_mutex_lock(&g_evict_mu);
    size_t count = atomic_load(&g_count);
    if (count <= target) {
        pthread_mutex_unlock(&g_evict_mu);
        return;
    }
    size_t cap = count + 64, n = 0;
    dg_score_t *sc = malloc(cap * sizeof(*sc));
    if (!sc) {
        pthread_mutex_unlock(&g_evict_mu);
        return;
    }
    uint64_t now = mono_s();
    for (unsigned s = 0; s < DG_SHARDS; s++) {
        dg_shard_t *sh = &g_shards[s];
        pthread_mutex_lock(&sh->mu);
        for (size_t b = 0; b < sh->nb; b++)
            for (dg_entry_t *e = sh->b[b]; e; e = e->next) {
                if (n == cap) {
                    size_t nc = cap * 2;
                    dg_score_t *g = realloc(sc, nc * sizeof(*sc));
                    if (!g)
                        goto gathered;
                    sc = g;
                    cap = nc;
                }
                bool fresh = e->calls == 0 && now - e->born_s < PX_DIGEST_GRACE_S;
                sc[n].score = fresh ? INFINITY : e->total;
                sc[n].id = e->id;
                n++;
            }
    gathered:
        pthread_mutex_unlock(&sh->mu);
    }
    size_t k = n > target ? n - target : 0;
    if (k > 0) {
        qsort(sc, n, sizeof(*sc), score_cmp);
        size_t removed = 0;
        for (size_t i = 0; i < k; i++) {
            dg_shard_t *sh = shard_of(sc[i].id);
            pthread_mutex_lock(&sh->mu);
            dg_entry_t *e = unlink_id(sh, sc[i].id);
            pthread_mutex_unlock(&sh->mu);
            if (e) {
                entry_free(e);
                removed++;
            }
        }
        atomic_fetch_sub(&g_count, removed);
        atomic_fetch_add(&g_evictions, removed);
    }
    free(sc);
    pthread_mutex_unlock(&g_evict_mu);
}

/* The target an eviction shrinks to: 95% of the bound, at least one below it
 * (the bound itself for a bound of one). */
static size_t evict_target(size_t max)
{
    size_t slack = max / 20;
    if (slack == 0)
        slack = 1;
    return max > slack ? max - slack : max;
}

/* ---- public ----------------------------------------------------------------------- */

const char *px_digest_route_to_str(px_digest_route_t r)
{
    switch (r) {
    case PX_DIGEST_ROUTE_PRIMARY:
        return "primary";
    case PX_DIGEST_ROUTE_REPLICA:
        return "replica";
    case PX_DIGEST_ROUTE_CACHE:
        return "cache";
    default:
        return "unknown";
    }
}

/* Register @p id with its texts; false when out of memory. */
static bool register_digest(uint64_t id, const char *sql, size_t len)
{
    char text[PX_DIGEST_TEXT_MAX + 8];
    /* the normaliser cuts at PX_DIGEST_TEXT_MAX; one byte more tells truncation */
    size_t ql = px_digest_normalize(sql, len, text, PX_DIGEST_TEXT_MAX + 2);
    bool truncated = ql > PX_DIGEST_TEXT_MAX;
    if (truncated) {
        ql = PX_DIGEST_TEXT_MAX;
        while (ql > 0 && ((unsigned char)text[ql] & 0xc0) == 0x80)
            ql--;
        text[ql] = 0;
    }
    dg_entry_t *e = calloc(1, sizeof(*e) + ql + 1);
    if (!e)
        return false;
    e->id = id;
    e->query_len = (uint32_t)ql;
    e->truncated = truncated;
    memcpy(e->query, text, ql + 1);
    if (len <= PX_DIGEST_SAMPLE_MAX && memchr(sql, 0, len) == NULL) {
        e->sample = malloc(len + 1);
        if (e->sample) {
            memcpy(e->sample, sql, len);
            e->sample[len] = 0;
            e->sample_len = (uint32_t)len;
        }
    }
    e->first_ms = wall_ms();
    e->born_s = mono_s();
    e->min = INFINITY;
    dg_shard_t *sh = shard_of(id);
    pthread_mutex_lock(&sh->mu);
    if (sh->n >= sh->nb)
        (void)grow(sh); /* longer chains if it fails */
    if (find(sh, id) || sh->nb == 0) {
        bool ok = sh->nb != 0;
        pthread_mutex_unlock(&sh->mu);
        entry_free(e);
        return ok;
    }
    size_t b = bucket_of(sh, id);
    e->next = sh->b[b];
    sh->b[b] = e;
    sh->n++;
    pthread_mutex_unlock(&sh->mu);
    size_t count = atomic_fetch_add(&g_count, 1) + 1;
    size_t max = atomic_load(&g_max);
    if (count > max)
        evict_to(evict_target(max));
    return true;
}

uint64_t px_digest_id(const char *sql, size_t len)
{
    pthread_once(&g_once, dg_init);
    if (!sql || atomic_load_explicit(&g_max, memory_order_relaxed) == 0)
        return 0;
    uint64_t h = XXH3_64bits(sql, len);
    dg_tls_slot_t *slot = &t_slots[h & (DG_TLS_SLOTS - 1)];
    uint64_t id;
    if (slot->id != 0 && slot->h == h && slot->len == len) {
        id = slot->id;
    } else {
        id = px_digest_fingerprint(sql, len);
        if (id == 0)
            return 0;
        slot->h = h;
        slot->len = len;
        slot->id = id;
    }
    dg_shard_t *sh = shard_of(id);
    pthread_mutex_lock(&sh->mu);
    bool known = find(sh, id) != NULL;
    pthread_mutex_unlock(&sh->mu);
    if (known)
        return id;
    return register_digest(id, sql, len) ? id : 0;
}

void px_digest_record(uint64_t id, double seconds, uint64_t rows, px_digest_route_t route,
                      bool cache_hit, bool error)
{
    if (id == 0)
        return;
    pthread_once(&g_once, dg_init);
    if (!(seconds >= 0)) /* NaN, negative */
        seconds = 0;
    unsigned b = hist_bucket(seconds);
    uint64_t now = wall_ms();
    dg_shard_t *sh = shard_of(id);
    pthread_mutex_lock(&sh->mu);
    dg_entry_t *e = find(sh, id);
    if (!e) {
        pthread_mutex_unlock(&sh->mu);
        atomic_fetch_add_explicit(&g_dropped, 1, memory_order_relaxed);
        return;
    }
    e->calls++;
    e->errors += error;
    e->rows += rows;
    e->cache_hits += cache_hit;
    if ((unsigned)route < PX_DIGEST_ROUTE_COUNT)
        e->route_calls[route]++;
    e->total += seconds;
    if (seconds < e->min)
        e->min = seconds;
    if (seconds > e->max)
        e->max = seconds;
    e->hist[b]++;
    e->last_ms = now;
    pthread_mutex_unlock(&sh->mu);
}

/* Copy @p e into @p out (under its shard's lock). */
static void entry_copy(const dg_entry_t *e, px_digest_entry_t *out)
{
    out->id = e->id;
    out->calls = e->calls;
    out->errors = e->errors;
    out->rows = e->rows;
    out->cache_hits = e->cache_hits;
    memcpy(out->route_calls, e->route_calls, sizeof(out->route_calls));
    out->total_seconds = e->total;
    out->mean_seconds = e->calls ? e->total / (double)e->calls : 0;
    out->min_seconds = e->calls ? e->min : 0;
    out->max_seconds = e->max;
    out->p95_seconds = hist_quantile(e, 0.95);
    out->first_seen_ms = e->first_ms;
    out->last_seen_ms = e->last_ms;
    out->has_sample = e->sample != NULL;
    out->query_truncated = e->truncated;
    memcpy(out->query, e->query, e->query_len + 1);
}

bool px_digest_get(uint64_t id, px_digest_entry_t *out)
{
    pthread_once(&g_once, dg_init);
    if (id == 0 || !out)
        return false;
    dg_shard_t *sh = shard_of(id);
    pthread_mutex_lock(&sh->mu);
    dg_entry_t *e = find(sh, id);
    if (e)
        entry_copy(e, out);
    pthread_mutex_unlock(&sh->mu);
    return e != NULL;
}

size_t px_digest_sample(uint64_t id, char *out, size_t cap)
{
    pthread_once(&g_once, dg_init);
    if (id == 0 || !out || cap == 0)
        return 0;
    size_t len = 0;
    dg_shard_t *sh = shard_of(id);
    pthread_mutex_lock(&sh->mu);
    dg_entry_t *e = find(sh, id);
    if (e && e->sample && e->sample_len < cap) {
        len = e->sample_len;
        memcpy(out, e->sample, len + 1);
    }
    pthread_mutex_unlock(&sh->mu);
    if (len == 0)
        out[0] = 0;
    return len;
}

typedef struct dg_key {
    uint64_t id;
    double total, mean, p95;
    uint64_t calls;
} dg_key_t;

static px_digest_order_t g_sort_order; /* qsort has no argument; guarded by g_top_mu */
static pthread_mutex_t g_top_mu = PTHREAD_MUTEX_INITIALIZER;

static int key_cmp(const void *a, const void *b)
{
    const dg_key_t *x = a, *y = b;
    double kx, ky;
    switch (g_sort_order) {
    case PX_DIGEST_ORDER_MEAN:
        kx = x->mean, ky = y->mean;
        break;
    case PX_DIGEST_ORDER_P95:
        kx = x->p95, ky = y->p95;
        break;
    case PX_DIGEST_ORDER_CALLS:
        kx = (double)x->calls, ky = (double)y->calls;
        break;
    default:
        kx = x->total, ky = y->total;
        break;
    }
    if (kx != ky)
        return kx > ky ? -1 : 1;
    if (x->total != y->total)
        return x->total > y->total ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

size_t px_digest_top(px_digest_entry_t *out, size_t max, px_digest_order_t order)
{
    pthread_once(&g_once, dg_init);
    if (!out || max == 0)
        return 0;
    size_t cap = atomic_load(&g_count) + 64, n = 0;
    dg_key_t *keys = malloc(cap * sizeof(*keys));
    if (!keys)
        return 0;
    for (unsigned s = 0; s < DG_SHARDS; s++) {
        dg_shard_t *sh = &g_shards[s];
        pthread_mutex_lock(&sh->mu);
        if (n + sh->n > cap) {
            size_t nc = (n + sh->n) * 2;
            dg_key_t *g = realloc(keys, nc * sizeof(*keys));
            if (!g) {
                pthread_mutex_unlock(&sh->mu);
                break;
            }
            keys = g;
            cap = nc;
        }
        for (size_t b = 0; b < sh->nb; b++)
            for (dg_entry_t *e = sh->b[b]; e; e = e->next) {
                if (e->calls == 0)
                    continue;
                keys[n].id = e->id;
                keys[n].total = e->total;
                keys[n].calls = e->calls;
                keys[n].mean = e->total / (double)e->calls;
                keys[n].p95 = hist_quantile(e, 0.95);
                n++;
            }
        pthread_mutex_unlock(&sh->mu);
    }
    pthread_mutex_lock(&g_top_mu);
    g_sort_order = order;
    qsort(keys, n, sizeof(*keys), key_cmp);
    pthread_mutex_unlock(&g_top_mu);
    size_t w = 0;
    for (size_t i = 0; i < n && w < max; i++)
        if (px_digest_get(keys[i].id, &out[w]) && out[w].calls > 0)
            w++;
    free(keys);
    return w;
}

void px_digest_configure(size_t max_digests)
{
    pthread_once(&g_once, dg_init);
    atomic_store(&g_max, max_digests);
    if (atomic_load(&g_count) > max_digests)
        evict_to(max_digests);
}

void px_digest_info(px_digest_info_t *out)
{
    if (!out)
        return;
    out->digests = atomic_load(&g_count);
    out->max_digests = atomic_load(&g_max);
    out->evictions = atomic_load(&g_evictions);
    out->dropped = atomic_load(&g_dropped);
}

void px_digest_reset(void)
{
    pthread_once(&g_once, dg_init);
    pthread_mutex_lock(&g_evict_mu);
    for (unsigned s = 0; s < DG_SHARDS; s++) {
        dg_shard_t *sh = &g_shards[s];
        pthread_mutex_lock(&sh->mu);
        size_t removed = 0;
        for (size_t b = 0; b < sh->nb; b++) {
            dg_entry_t *e = sh->b[b];
            while (e) {
                dg_entry_t *next = e->next;
                entry_free(e);
                removed++;
                e = next;
            }
            sh->b[b] = NULL;
        }
        free(sh->b);
        sh->b = NULL;
        sh->nb = sh->n = 0;
        pthread_mutex_unlock(&sh->mu);
        atomic_fetch_sub(&g_count, removed);
    }
    pthread_mutex_unlock(&g_evict_mu);
}
