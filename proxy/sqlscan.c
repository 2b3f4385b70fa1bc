/*
 * Lexical scan for session state. Splits the text into statements at
 * top-level semicolons and looks at each statement's leading keywords, plus a
 * scan of identifiers for function calls that take session-level locks or set
 * session settings. Conservative by design: a false positive pins a client to
 * its server connection (correct, only less pooled); a false negative would
 * leak state between clients, so anything doubtful counts as state.
 *
 * The text is scanned twice: once lexing '...' literals as PostgreSQL does
 * with standard_conforming_strings on (backslash is literal), once as with it
 * off (backslash escapes). The proxy does not know the server's setting, and
 * a client can choose it, so a statement hidden from either reading counts.
 *
 * Known conservative answers (false positives, by design):
 *  - any set_config(...) call, even with is_local = true;
 *  - any "temp"/"temporary" word in a statement containing CREATE, so
 *    CREATE TABLE t (temp int) pins, as does INSERT INTO temp ...;
 *  - DISCARD of any kind, and any reference to the pg_temp schema;
 *  - a DO block whose body mentions a session keyword or dynamic SQL.
 * Not detectable lexically: state set inside functions or procedures the
 * statement calls (SELECT f(), CALL p()).
 */
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "sqlscan.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

typedef struct {
    const char *p;
    size_t n;
    size_t i;
    bool backslash_quotes; /* lex '...' as with standard_conforming_strings off */
} scan_t;

/* Skip whitespace and comments. A "--" comment ends at \n or \r, as in the
 * PostgreSQL lexer; block comments nest. */
static void skip_space(scan_t *s)
{
    while (s->i < s->n) {
        char ch = s->p[s->i];
        if (isspace((unsigned char)ch)) {
            s->i++;
        } else if (ch == '-' && s->i + 1 < s->n && s->p[s->i + 1] == '-') {
            while (s->i < s->n && s->p[s->i] != '\n' && s->p[s->i] != '\r')
                s->i++;
        } else if (ch == '/' && s->i + 1 < s->n && s->p[s->i + 1] == '*') {
            int depth = 1;
            s->i += 2;
            while (s->i < s->n && depth > 0) {
                if (s->p[s->i] == '*' && s->i + 1 < s->n && s->p[s->i + 1] == '/') {
                    depth--;
                    s->i += 2;
                } else if (s->p[s->i] == '/' && s->i + 1 < s->n && s->p[s->i + 1] == '*') {
                    depth++;
                    s->i += 2;
                } else {
                    s->i++;
                }
            }
        } else {
            break;
        }
    }
}

static bool is_ident_start(char ch)
{
    return isalpha((unsigned char)ch) || ch == '_' || (unsigned char)ch >= 0x80;
}

static bool is_ident_char(char ch)
{
    return isalnum((unsigned char)ch) || ch == '_' || ch == '$' || (unsigned char)ch >= 0x80;
}

/* Read one word (lower-cased into w). Returns its length, 0 if no word here. */
static size_t read_word(scan_t *s, char *w, size_t cap)
{
    size_t k = 0;
    w[0] = 0;
    if (s->i >= s->n || !is_ident_start(s->p[s->i]))
        return 0;
    while (s->i < s->n && is_ident_char(s->p[s->i])) {
        if (k + 1 < cap)
            w[k++] = (char)tolower((unsigned char)s->p[s->i]);
        s->i++;
    }
    w[k] = 0;
    return k;
}

/* Is the quote at s->i the start of an E'...' string? Only when the E is a
 * token of its own: in date'...' the e ends an identifier. */
static bool is_escape_string(const scan_t *s)
{
    if (s->i == 0 || (s->p[s->i - 1] != 'E' && s->p[s->i - 1] != 'e'))
        return false;
    return s->i == 1 || !is_ident_char(s->p[s->i - 2]);
}

/* Skip a quoted token starting at s->i (', ", E'', $tag$). */
static void skip_quoted(scan_t *s)
{
    char q = s->p[s->i];
    if (q == '$') {
        size_t j = s->i + 1;
        while (j < s->n && (is_ident_char(s->p[j]) && s->p[j] != '$'))
            j++;
        if (j >= s->n || s->p[j] != '$') {
            s->i++;
            return;
        }
        size_t taglen = j - s->i + 1;
        const char *tag = s->p + s->i;
        s->i = j + 1;
        while (s->i + taglen <= s->n) {
            if (memcmp(s->p + s->i, tag, taglen) == 0) {
                s->i += taglen;
                return;
            }
            s->i++;
        }
        s->i = s->n;
        return;
    }
    bool backslash = q == '\'' && (s->backslash_quotes || is_escape_string(s));
    s->i++;
    while (s->i < s->n) {
        char ch = s->p[s->i];
        if (backslash && ch == '\\') {
            s->i += 2;
            continue;
        }
        if (ch == q) {
            if (s->i + 1 < s->n && s->p[s->i + 1] == q) {
                s->i += 2;
                continue;
            }
            s->i++;
            return;
        }
        s->i++;
    }
    if (s->i > s->n)
        s->i = s->n;
}

/* Read a "quoted identifier" at s->i into w (case kept, "" undoubled). */
static void read_quoted_ident(scan_t *s, char *w, size_t cap)
{
    size_t k = 0;
    s->i++;
    while (s->i < s->n) {
        char ch = s->p[s->i];
        if (ch == '"') {
            if (s->i + 1 < s->n && s->p[s->i + 1] == '"') {
                s->i++;
            } else {
                s->i++;
                break;
            }
        }
        if (k + 1 < cap)
            w[k++] = ch;
        s->i++;
    }
    w[k] = 0;
}

static bool word_is(const char *w, const char *lit)
{
    return strcmp(w, lit) == 0;
}

static const char *const session_functions[] = {
    "pg_advisory_lock",
    "pg_advisory_lock_shared",
    "pg_try_advisory_lock",
    "pg_try_advisory_lock_shared",
    "set_config",
    "setseed",
    "dblink_connect",
    "dblink_connect_u",
    "lo_open",
    NULL,
};

static bool is_session_function(const char *w)
{
    for (int k = 0; session_functions[k]; k++)
        if (word_is(w, session_functions[k]))
            return true;
    return false;
}

/* pg_temp, or a backend's own pg_temp_NNN */
static bool is_temp_schema(const char *w)
{
    if (strncmp(w, "pg_temp", 7) != 0)
        return false;
    if (w[7] == 0)
        return true;
    if (w[7] != '_' || w[8] == 0)
        return false;
    for (const char *c = w + 8; *c; c++)
        if (!isdigit((unsigned char)*c))
            return false;
    return true;
}

/* Words that, anywhere in a DO block's body, may mean session state. The body
 * is another language (PL/pgSQL, ...), so this is a plain word search over
 * its text, nested literals and comments included. */
static bool do_body_word_is_suspect(const char *w)
{
    static const char *const words[] = {
        "set",  "reset", "listen",    "prepare", "load",        "discard",
        "hold", "temp",  "temporary", "execute", "pg_settings", NULL,
    };
    for (int k = 0; words[k]; k++)
        if (word_is(w, words[k]))
            return true;
    return is_temp_schema(w) || is_session_function(w);
}

static bool do_body_is_suspect(const char *p, size_t n, bool escape_string)
{
    char w[64];
    size_t i = 0;
    while (i < n) {
        if (escape_string && p[i] == '\\')
            return true; /* \123-style escapes could spell anything */
        if (!is_ident_start(p[i])) {
            i++;
            continue;
        }
        size_t k = 0;
        while (i < n && is_ident_char(p[i])) {
            if (k + 1 < sizeof(w))
                w[k++] = (char)tolower((unsigned char)p[i]);
            i++;
        }
        w[k] = 0;
        if (do_body_word_is_suspect(w))
            return true;
    }
    return false;
}

/* Leading keywords of one statement; returns a reason or NULL. The scanner
 * is left at the statement's start for the body scan. */
static const char *check_head(scan_t *s)
{
    char w1[32] = "", w2[32] = "", w3[32] = "";
    size_t save = s->i;
    read_word(s, w1, sizeof(w1));
    skip_space(s);
    read_word(s, w2, sizeof(w2));
    skip_space(s);
    /* what follows the second word: "." makes it a qualified name */
    char after2 = s->i < s->n ? s->p[s->i] : 0;
    read_word(s, w3, sizeof(w3));
    s->i = save;
    if (word_is(w1, "set")) {
        /* SET LOCAL x, SET TRANSACTION ..., SET CONSTRAINTS ... are
         * transaction-scoped; SET local.x = 1 sets the custom setting
         * "local.x" for the session. */
        if ((word_is(w2, "local") || word_is(w2, "transaction") || word_is(w2, "constraints")) &&
            after2 != '.')
            return NULL;
        if (word_is(w2, "session") && word_is(w3, "characteristics"))
            return "SET SESSION CHARACTERISTICS";
        return "SET";
    }
    if (word_is(w1, "reset"))
        return "RESET";
    if (word_is(w1, "prepare")) {
        /* PREPARE TRANSACTION 'gid' is two-phase commit, but a statement
         * may be named "transaction": PREPARE transaction [(types)] AS ... */
        if (word_is(w2, "transaction") && !word_is(w3, "as") && after2 != '(')
            return NULL;
        return "PREPARE";
    }
    if (word_is(w1, "listen"))
        return "LISTEN";
    if (word_is(w1, "load"))
        return "LOAD";
    /* DISCARD PLANS / SEQUENCES / TEMP[ORARY] only drop what this client's own
     * transactions could have left on the connection (temporary objects pin
     * their client); DISCARD ALL also resets the settings: the session code
     * carries it as RESET ALL outside a transaction */
    if (word_is(w1, "discard"))
        return word_is(w2, "plans") || word_is(w2, "sequences") || word_is(w2, "temp") ||
                       word_is(w2, "temporary")
                   ? NULL
                   : "DISCARD";
    /* CREATE [GLOBAL|LOCAL] TEMP[ORARY] ..., SELECT ... INTO TEMP, DECLARE
     * ... WITH HOLD and DO bodies are left to the body scan. */
    return NULL;
}

/* Names seen as bare words (lower-cased) or quoted identifiers (as written). */
static const char *check_name(scan_t *s, const char *name, bool saw_update)
{
    if (is_temp_schema(name))
        return "temporary schema object";
    if (saw_update && word_is(name, "pg_settings"))
        return "UPDATE pg_settings";
    skip_space(s);
    if (s->i < s->n && s->p[s->i] == '(' && is_session_function(name))
        return "session-level function";
    return NULL;
}

static const char *scan(const char *sql, size_t len, bool backslash_quotes)
{
    scan_t s = {sql, len, 0, backslash_quotes};
    bool at_start = true;
    char head[16] = "", prev[64] = "";
    bool saw_create = false, saw_update = false;
    while (s.i < s.n) {
        skip_space(&s);
        if (s.i >= s.n)
            break;
        if (at_start) {
            const char *why = check_head(&s);
            if (why)
                return why;
            size_t save = s.i;
            read_word(&s, head, sizeof(head));
            s.i = save;
            at_start = false;
            prev[0] = 0;
            saw_create = saw_update = false;
        }
        char ch = s.p[s.i];
        if (ch == ';') {
            s.i++;
            at_start = true;
            continue;
        }
        if (ch == '$' && s.i + 1 < s.n && isdigit((unsigned char)s.p[s.i + 1])) {
            s.i++; /* $1 parameter */
            continue;
        }
        if (ch == '"') {
            char w[64];
            read_quoted_ident(&s, w, sizeof(w));
            const char *why = check_name(&s, w, saw_update);
            if (why)
                return why;
            prev[0] = 0;
            continue;
        }
        if (ch == '\'' || ch == '$') {
            size_t start = s.i;
            bool escape = ch == '\'' && (s.backslash_quotes || is_escape_string(&s));
            skip_quoted(&s);
            if (word_is(head, "do") && do_body_is_suspect(s.p + start, s.i - start, escape))
                return "DO block";
            prev[0] = 0;
            continue;
        }
        char w[64];
        if (read_word(&s, w, sizeof(w))) {
            if (word_is(w, "create"))
                saw_create = true; /* reserved: never a plain name */
            if (word_is(w, "update"))
                saw_update = true;
            if (word_is(head, "declare") && word_is(prev, "with") && word_is(w, "hold"))
                return "DECLARE ... WITH HOLD";
            if ((word_is(w, "temp") || word_is(w, "temporary")) &&
                (saw_create || word_is(prev, "into")))
                return "temporary table";
            const char *why = check_name(&s, w, saw_update);
            if (why)
                return why;
            memcpy(prev, w, sizeof(prev) <= sizeof(w) ? sizeof(prev) : sizeof(w));
            prev[sizeof(prev) - 1] = 0;
            continue;
        }
        s.i++;
    }
    return NULL;
}

static inline unsigned char lower_ascii(unsigned char ch)
{
    return ch >= 'A' && ch <= 'Z' ? (unsigned char)(ch + 32) : ch;
}

/* Does the text at p[i..n) start with @p word (lower case), ignoring ASCII case? */
static bool word_at(const char *p, size_t n, size_t i, const char *word, size_t wl)
{
    if (n - i < wl)
        return false;
    for (size_t k = 1; k < wl; k++)
        if (lower_ascii((unsigned char)p[i + k]) != (unsigned char)word[k])
            return false;
    return true;
}

static bool may_matter(const char *sql, size_t len);

/* Parse texts come back again and again (an application's statements, every
 * Parse of a driver that does not name them): remember the answer for recent
 * short ones, per thread, keyed by the whole text. Simple-protocol texts
 * usually carry their literals and rarely repeat: they skip the table. */
#define MEMO_SLOTS 128
#define MEMO_TEXT  240

typedef struct {
    uint64_t h;
    uint32_t len; /* 0: empty */
    bool matter;
    char text[MEMO_TEXT];
} memo_t;

static _Thread_local memo_t t_memo[MEMO_SLOTS];

bool px_sqlscan_may_matter(const char *sql, size_t len)
{
    return may_matter(sql, len);
}

bool px_sqlscan_may_matter_remembered(const char *sql, size_t len)
{
    if (len == 0 || len > MEMO_TEXT)
        return may_matter(sql, len);
    uint64_t h = XXH3_64bits(sql, len);
    memo_t *m = &t_memo[h & (MEMO_SLOTS - 1)];
    if (m->len == len && m->h == h && memcmp(m->text, sql, len) == 0)
        return m->matter;
    m->matter = may_matter(sql, len);
    m->h = h;
    m->len = (uint32_t)len;
    memcpy(m->text, sql, len);
    return m->matter;
}

/* The second letters (bit c - 'a') a needle of may_matter() starting with each
 * byte can have; '\\' matches on its own. */
#define L2(c) (1u << ((c) - 'a'))
static const uint32_t k_needle_second[256] = {
    ['s'] = L2('e'),
    ['S'] = L2('e'),
    ['l'] = L2('i') | L2('o'),
    ['L'] = L2('i') | L2('o'),
    ['p'] = L2('r'),
    ['P'] = L2('r'),
    ['d'] = L2('i') | L2('b') | L2('e'),
    ['D'] = L2('i') | L2('b') | L2('e'),
    ['h'] = L2('o'),
    ['H'] = L2('o'),
    ['t'] = L2('e'),
    ['T'] = L2('e'),
    ['a'] = L2('d'),
    ['A'] = L2('d'),
    ['e'] = L2('x'),
    ['E'] = L2('x'),
};
#undef L2

static bool may_matter(const char *sql, size_t len)
{
    /* Every answer scan() can give needs one of these in the text, as a
     * contiguous run of characters: the leading keywords (set, reset, prepare,
     * listen, load, discard), "hold", "temp"/"temporary"/pg_temp,
     * pg_settings, the session functions (pg_advisory_*, set_config,
     * setseed, dblink_connect*, lo_open) and a DO body's words (the same, plus
     * execute, and any backslash); and "deallocate", for
     * px_sqlscan_drops_statements(). A quoted identifier's "" only ever adds a
     * '"', which no needle has. */
    for (size_t i = 0; i < len; i++) {
        uint32_t second = k_needle_second[(unsigned char)sql[i]];
        if (second != 0) {
            unsigned char c1 = i + 1 < len ? lower_ascii((unsigned char)sql[i + 1]) : 0;
            if (c1 < 'a' || c1 > 'z' || !(second & (1u << (c1 - 'a'))))
                continue;
        } else if (sql[i] != '\\') {
            continue;
        }
        switch (lower_ascii((unsigned char)sql[i])) {
        case 's':
            /* "set" anywhere but in "offset", the common harmless one */
            if (word_at(sql, len, i, "set", 3) &&
                !(i >= 3 && lower_ascii((unsigned char)sql[i - 1]) == 'f' &&
                  lower_ascii((unsigned char)sql[i - 2]) == 'f' &&
                  lower_ascii((unsigned char)sql[i - 3]) == 'o'))
                return true;
            break;
        case 'l':
            if (word_at(sql, len, i, "listen", 6) || word_at(sql, len, i, "load", 4) ||
                word_at(sql, len, i, "lo_open", 7))
                return true;
            break;
        case 'p':
            if (word_at(sql, len, i, "prepare", 7))
                return true;
            break;
        case 'd':
            if (word_at(sql, len, i, "discard", 7) || word_at(sql, len, i, "dblink", 6) ||
                word_at(sql, len, i, "deallocate", 10))
                return true;
            break;
        case 'h':
            if (word_at(sql, len, i, "hold", 4))
                return true;
            break;
        case 't':
            if (word_at(sql, len, i, "temp", 4))
                return true;
            break;
        case 'a':
            if (word_at(sql, len, i, "advisory", 8))
                return true;
            break;
        case 'e':
            if (word_at(sql, len, i, "execute", 7))
                return true;
            break;
        case '\\':
            return true;
        default:
            break;
        }
    }
    return false;
}

const char *px_sqlscan_session_state_full(const char *sql, size_t len)
{
    const char *why = scan(sql, len, false);
    if (!why)
        why = scan(sql, len, true);
    return why;
}

const char *px_sqlscan_session_state(const char *sql, size_t len)
{
    if (!px_sqlscan_may_matter_remembered(sql, len))
        return NULL;
    return px_sqlscan_session_state_full(sql, len);
}

bool px_sqlscan_mentions(const char *sql, size_t len, const char *word)
{
    size_t wl = strlen(word);
    if (wl == 0)
        return true;
    for (size_t i = 0; i + wl <= len; i++) {
        if (lower_ascii((unsigned char)sql[i]) != (unsigned char)word[0])
            continue;
        size_t k = 1;
        while (k < wl && lower_ascii((unsigned char)sql[i + k]) == (unsigned char)word[k])
            k++;
        if (k == wl)
            return true;
    }
    return false;
}

static bool drops_impl(const char *sql, size_t len, bool all_only)
{
    bool either = false;
    for (size_t i = 0; i < len && !either; i++)
        if (lower_ascii((unsigned char)sql[i]) == 'd')
            either = word_at(sql, len, i, "deallocate", 10) || word_at(sql, len, i, "discard", 7);
    if (!either)
        return false;
    scan_t s = {sql, len, 0};
    bool at_start = true;
    while (s.i < s.n) {
        skip_space(&s);
        if (s.i >= s.n)
            break;
        char ch = s.p[s.i];
        if (ch == ';') {
            s.i++;
            at_start = true;
            continue;
        }
        if (ch == '\'' || ch == '"' ||
            (ch == '$' && !(s.i + 1 < s.n && isdigit((unsigned char)s.p[s.i + 1])))) {
            skip_quoted(&s);
            at_start = false;
            continue;
        }
        char w[32];
        if (read_word(&s, w, sizeof(w))) {
            if (at_start && strcmp(w, "deallocate") == 0) {
                if (!all_only)
                    return true;
                /* DEALLOCATE [PREPARE] ALL; one name drops only that one */
                char w2[16] = "";
                skip_space(&s);
                read_word(&s, w2, sizeof(w2));
                if (strcmp(w2, "prepare") == 0) {
                    skip_space(&s);
                    read_word(&s, w2, sizeof(w2));
                }
                if (strcmp(w2, "all") == 0)
                    return true;
                at_start = false;
                continue;
            }
            if (at_start && strcmp(w, "discard") == 0) {
                /* DISCARD ALL drops statements; PLANS, TEMP, SEQUENCES do not */
                char w2[16] = "";
                skip_space(&s);
                read_word(&s, w2, sizeof(w2));
                if (strcmp(w2, "all") == 0)
                    return true;
                at_start = false;
                continue;
            }
            at_start = false;
            continue;
        }
        at_start = false;
        s.i++;
    }
    return false;
}

bool px_sqlscan_drops_statements(const char *sql, size_t len)
{
    return drops_impl(sql, len, false);
}

bool px_sqlscan_drops_all_statements(const char *sql, size_t len)
{
    return drops_impl(sql, len, true);
}

/* ---- session SET statements the proxy can replay ----------------------------- */

/* Case-insensitive keyword at s->i, followed by a non-identifier character. */
static bool take_kw(scan_t *s, const char *kw)
{
    size_t k = strlen(kw);
    if (s->n - s->i < k || strncasecmp(s->p + s->i, kw, k) != 0)
        return false;
    if (s->i + k < s->n && is_ident_char(s->p[s->i + k]))
        return false;
    s->i += k;
    skip_space(s);
    return true;
}

/* A setting name: identifier or "quoted identifier", dot-separated parts;
 * unquoted parts lower-cased as PostgreSQL folds them. */
static bool take_name(scan_t *s, char *out, size_t cap)
{
    size_t len = 0;
    for (;;) {
        if (s->i < s->n && s->p[s->i] == '"') {
            s->i++;
            /* setting names are case-insensitive even when quoted */
            while (s->i < s->n && s->p[s->i] != '"') {
                if (len + 1 >= cap)
                    return false;
                out[len++] = (char)tolower((unsigned char)s->p[s->i++]);
            }
            if (s->i >= s->n)
                return false;
            s->i++;
        } else if (s->i < s->n && is_ident_start(s->p[s->i])) {
            while (s->i < s->n && is_ident_char(s->p[s->i])) {
                if (len + 1 >= cap)
                    return false;
                out[len++] = (char)tolower((unsigned char)s->p[s->i++]);
            }
        } else {
            return false;
        }
        if (s->i < s->n && s->p[s->i] == '.') {
            if (len + 1 >= cap)
                return false;
            out[len++] = '.';
            s->i++;
            continue;
        }
        break;
    }
    out[len] = 0;
    skip_space(s);
    return len > 0;
}

/* The value list of a SET, up to an optional ';' at the end: identifiers,
 * numbers, commas, signs, dots and plain '...' or "..." tokens only (no
 * comments, backslashes, dollar quotes or E'' strings), so the text means the
 * same whatever standard_conforming_strings says and can be replayed as is. */
static bool take_value(scan_t *s, const char **v, size_t *vlen)
{
    size_t start = s->i, end = s->i;
    while (s->i < s->n) {
        char ch = s->p[s->i];
        if (ch == ';') {
            s->i++;
            skip_space(s);
            if (s->i != s->n)
                return false; /* another statement follows */
            break;
        }
        if (ch == '\'' || ch == '"') {
            if (ch == '\'' && s->i > start && (s->p[s->i - 1] | 0x20) == 'e' &&
                (s->i - 1 == start || !is_ident_char(s->p[s->i - 2])))
                return false; /* E'...' */
            s->i++;
            for (;;) {
                if (s->i >= s->n)
                    return false;
                if (s->p[s->i] == '\\')
                    return false;
                if (s->p[s->i] == ch) {
                    if (s->i + 1 < s->n && s->p[s->i + 1] == ch) {
                        s->i += 2;
                        continue;
                    }
                    s->i++;
                    break;
                }
                s->i++;
            }
            end = s->i;
            continue;
        }
        if (isspace((unsigned char)ch)) {
            s->i++;
            continue;
        }
        if (is_ident_char(ch) || ch == ',' || ch == '.' || ch == '-' || ch == '+') {
            if (ch == '-' && s->i + 1 < s->n && s->p[s->i + 1] == '-')
                return false; /* a comment */
            if (ch == '$')
                return false;
            s->i++;
            end = s->i;
            continue;
        }
        return false;
    }
    if (end == start)
        return false;
    *v = s->p + start;
    *vlen = end - start;
    return true;
}

static bool value_is(const char *v, size_t n, const char *word)
{
    return n == strlen(word) && strncasecmp(v, word, n) == 0;
}

bool px_sqlscan_parse_set(const char *sql, size_t len, px_set_stmt_t *out)
{
    scan_t s = {sql, len, 0, false};
    memset(out, 0, sizeof(*out));
    skip_space(&s);
    /* only SET and RESET statements: a look at the first letter rules out the rest */
    unsigned char first = s.i < s.n ? lower_ascii((unsigned char)s.p[s.i]) : 0;
    if ((first != 's' && first != 'r') || memchr(sql, 0, len))
        return false;
    if (take_kw(&s, "reset")) {
        if (take_kw(&s, "all")) {
            if (s.i < s.n && s.p[s.i] == ';') {
                s.i++;
                skip_space(&s);
            }
            if (s.i != s.n)
                return false;
            out->kind = PX_SET_RESET_ALL;
            return true;
        }
        if (take_kw(&s, "time")) {
            if (!take_kw(&s, "zone"))
                return false;
            strcpy(out->name, "timezone");
        } else if (!take_name(&s, out->name, sizeof(out->name))) {
            return false;
        }
        if (s.i < s.n && s.p[s.i] == ';') {
            s.i++;
            skip_space(&s);
        }
        if (s.i != s.n || strcmp(out->name, "role") == 0 || strcmp(out->name, "session") == 0 ||
            strcmp(out->name, "session_authorization") == 0 ||
            strcmp(out->name, "transaction_isolation") == 0 ||
            strcmp(out->name, "transaction_read_only") == 0 ||
            strcmp(out->name, "transaction_deferrable") == 0)
            return false;
        out->kind = PX_SET_RESET;
        return true;
    }
    if (!take_kw(&s, "set"))
        return false;
    if (take_kw(&s, "local"))
        return false; /* lasts until the transaction ends: nothing to carry */
    (void)take_kw(&s, "session");
    if (take_kw(&s, "time")) {
        if (!take_kw(&s, "zone") || !take_value(&s, &out->value, &out->value_len))
            return false;
        strcpy(out->name, "timezone");
        if (value_is(out->value, out->value_len, "local") ||
            value_is(out->value, out->value_len, "default")) {
            out->kind = PX_SET_RESET;
            out->value = NULL;
            out->value_len = 0;
            return true;
        }
        if (out->value[0] != '\'')
            return false; /* INTERVAL '...' HOUR TO MINUTE, numbers: keep it simple */
        out->kind = PX_SET_VALUE;
        return true;
    }
    if (take_kw(&s, "schema")) {
        if (!take_value(&s, &out->value, &out->value_len) || out->value[0] != '\'')
            return false;
        strcpy(out->name, "search_path");
        out->kind = PX_SET_VALUE;
        return true;
    }
    if (!take_name(&s, out->name, sizeof(out->name)))
        return false;
    static const char *const refuse[] = {"role",
                                         "session",
                                         "transaction",
                                         "constraints",
                                         "names",
                                         "authorization",
                                         "session_authorization",
                                         "characteristics",
                                         "transaction_isolation",
                                         "transaction_read_only",
                                         "transaction_deferrable",
                                         NULL};
    for (int i = 0; refuse[i]; i++)
        if (strcmp(out->name, refuse[i]) == 0)
            return false;
    if (s.i < s.n && s.p[s.i] == '=') {
        s.i++;
        skip_space(&s);
    } else if (!take_kw(&s, "to")) {
        return false;
    }
    if (!take_value(&s, &out->value, &out->value_len))
        return false;
    if (value_is(out->value, out->value_len, "default")) {
        out->kind = PX_SET_RESET;
        out->value = NULL;
        out->value_len = 0;
        return true;
    }
    out->kind = PX_SET_VALUE;
    return true;
}
