/*
 * Lexical scan for session state. Splits the text into statements at
 * top-level semicolons and looks at each statement's leading keywords, plus a
 * scan of identifiers for function calls that take session-level locks or set
 * session settings. Conservative by design: a false positive pins a client to
 * its server connection (correct, only less pooled); a false negative would
 * leak state between clients, so anything doubtful counts as state.
 */
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "sqlscan.h"

typedef struct {
    const char *p;
    size_t n;
    size_t i;
} scan_t;

/* Skip whitespace and comments. */
static void skip_space(scan_t *s)
{
    while (s->i < s->n) {
        char ch = s->p[s->i];
        if (isspace((unsigned char)ch)) {
            s->i++;
        } else if (ch == '-' && s->i + 1 < s->n && s->p[s->i + 1] == '-') {
            while (s->i < s->n && s->p[s->i] != '\n')
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

static bool is_ident_char(char ch)
{
    return isalnum((unsigned char)ch) || ch == '_' || ch == '$' || (unsigned char)ch >= 0x80;
}

/* Read one word (lower-cased into w). Returns its length, 0 if no word here. */
static size_t read_word(scan_t *s, char *w, size_t cap)
{
    size_t k = 0;
    if (s->i >= s->n || !(isalpha((unsigned char)s->p[s->i]) || s->p[s->i] == '_'))
        return 0;
    while (s->i < s->n && is_ident_char(s->p[s->i])) {
        if (k + 1 < cap)
            w[k++] = (char)tolower((unsigned char)s->p[s->i]);
        s->i++;
    }
    w[k] = 0;
    return k;
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
    bool backslash = s->i > 0 && (s->p[s->i - 1] == 'E' || s->p[s->i - 1] == 'e');
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
}

static bool word_is(const char *w, const char *lit)
{
    return strcmp(w, lit) == 0;
}

static const char *const session_functions[] = {
    "pg_advisory_lock", "pg_advisory_lock_shared", "pg_try_advisory_lock",
    "pg_try_advisory_lock_shared", "set_config", "dblink_connect", "lo_open", NULL,
};

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
    read_word(s, w3, sizeof(w3));
    s->i = save;
    if (word_is(w1, "set")) {
        if (word_is(w2, "local") || word_is(w2, "transaction") || word_is(w2, "constraints"))
            return NULL;
        if (word_is(w2, "session") && word_is(w3, "characteristics"))
            return "SET SESSION CHARACTERISTICS";
        return "SET";
    }
    if (word_is(w1, "reset"))
        return "RESET";
    if (word_is(w1, "prepare") && !word_is(w2, "transaction"))
        return "PREPARE";
    if (word_is(w1, "listen"))
        return "LISTEN";
    if (word_is(w1, "load"))
        return "LOAD";
    if (word_is(w1, "discard"))
        return "DISCARD";
    if (word_is(w1, "create") || word_is(w1, "select")) {
        /* CREATE [GLOBAL|LOCAL] TEMP[ORARY] ..., SELECT ... INTO TEMP */
        return NULL; /* handled by the body scan, which sees every word */
    }
    return NULL;
}

const char *px_sqlscan_session_state(const char *sql, size_t len)
{
    scan_t s = {sql, len, 0};
    bool at_start = true;
    char prev[64] = "";
    bool saw_declare = false, saw_with = false, saw_create = false;
    while (s.i < s.n) {
        skip_space(&s);
        if (s.i >= s.n)
            break;
        if (at_start) {
            const char *why = check_head(&s);
            if (why)
                return why;
            at_start = false;
            prev[0] = 0;
            saw_declare = saw_with = saw_create = false;
        }
        char ch = s.p[s.i];
        if (ch == ';') {
            s.i++;
            at_start = true;
            continue;
        }
        if (ch == '\'' || ch == '"' || ch == '$') {
            if (ch == '$' && s.i + 1 < s.n && isdigit((unsigned char)s.p[s.i + 1])) {
                s.i++; /* $1 parameter */
                continue;
            }
            skip_quoted(&s);
            prev[0] = 0;
            continue;
        }
        char w[64];
        if (read_word(&s, w, sizeof(w))) {
            if (word_is(w, "declare") && !saw_declare && prev[0] == 0)
                saw_declare = true;
            if (word_is(w, "create") && prev[0] == 0)
                saw_create = true;
            if (saw_declare && word_is(prev, "with") && word_is(w, "hold"))
                return "DECLARE ... WITH HOLD";
            if (word_is(w, "temp") || word_is(w, "temporary")) {
                if (saw_create || word_is(prev, "into"))
                    return "temporary table";
            }
            (void)saw_with;
            skip_space(&s);
            if (s.i < s.n && s.p[s.i] == '(') {
                for (int k = 0; session_functions[k]; k++)
                    if (word_is(w, session_functions[k]))
                        return "session-level function";
            }
            snprintf(prev, sizeof(prev), "%s", w);
            continue;
        }
        s.i++;
    }
    return NULL;
}
