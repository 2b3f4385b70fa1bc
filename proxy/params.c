/*
 * Session parameter sets: a client's startup parameters and what the proxy
 * has SET on a server connection, each as one "name\0value\0..." block.
 * px_params_diff_sql turns one set into another with set_config()/RESET,
 * which is how a pooled server connection takes on the settings of the
 * client it is lent to. Names are kept lower-case, as PostgreSQL folds them.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "px.h"

static uint64_t fnv1a(const char *p, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= (uint8_t)p[i];
        h *= 1099511628211ULL;
    }
    return h;
}

void px_params_free(px_params_t *p)
{
    free(p->block);
    memset(p, 0, sizeof(*p));
}

/* Walk pairs: returns the next offset or -1 at the end. */
static int next_pair(const px_params_t *p, uint32_t off, const char **name, const char **value)
{
    if (!p->block || off >= p->len)
        return -1;
    *name = p->block + off;
    off += (uint32_t)strlen(*name) + 1;
    *value = p->block + off;
    off += (uint32_t)strlen(*value) + 1;
    return (int)off;
}

const char *px_params_get(const px_params_t *p, const char *name)
{
    const char *n, *v;
    int off = 0;
    while ((off = next_pair(p, (uint32_t)off, &n, &v)) >= 0) {
        if (strcasecmp(n, name) == 0) /* stored lower-case; callers may not be */
            return v;
    }
    return NULL;
}

/* Parameters a server connection must carry for the client: everything a
 * client may put in its startup packet that changes how the server behaves,
 * but not the ones that select the pool or the protocol. */
bool px_params_is_tracked(const char *name)
{
    static const char *const skip[] = {"user", "database", "options", "replication", NULL};
    for (int i = 0; skip[i]; i++)
        if (strcmp(name, skip[i]) == 0)
            return false;
    if (strncmp(name, "_pq_.", 5) == 0)
        return false;
    return true;
}

bool px_params_set(px_params_t *p, const char *name, size_t nlen, const char *value, size_t vlen)
{
    if (nlen == 0 || nlen > 63 || vlen > 4096 || memchr(name, 0, nlen) ||
        (vlen > 0 && memchr(value, 0, vlen)))
        return false;
    char lname[64];
    for (size_t i = 0; i < nlen; i++)
        lname[i] = (char)tolower((unsigned char)name[i]);
    lname[nlen] = 0;
    /* rebuild without the old pair, then append the new one */
    size_t cap = p->len + nlen + vlen + 2;
    char *nb = malloc(cap);
    if (!nb)
        return false;
    uint32_t len = 0, count = 0;
    const char *n, *v;
    int off = 0;
    while ((off = next_pair(p, (uint32_t)off, &n, &v)) >= 0) {
        if (strcmp(n, lname) == 0)
            continue;
        size_t a = strlen(n) + 1, b = strlen(v) + 1;
        memcpy(nb + len, n, a);
        memcpy(nb + len + a, v, b);
        len += (uint32_t)(a + b);
        count++;
    }
    memcpy(nb + len, lname, nlen + 1);
    len += (uint32_t)nlen + 1;
    if (vlen > 0)
        memcpy(nb + len, value, vlen);
    nb[len + vlen] = 0;
    len += (uint32_t)vlen + 1;
    count++;
    free(p->block);
    p->block = nb;
    p->len = len;
    p->count = count;
    /* order-independent hash: sum of per-pair hashes */
    uint64_t h = 0;
    off = 0;
    while ((off = next_pair(p, (uint32_t)off, &n, &v)) >= 0) {
        size_t a = strlen(n) + 1 + strlen(v);
        h += fnv1a(n, a);
    }
    p->hash = h;
    return true;
}

bool px_params_del(px_params_t *p, const char *name)
{
    const char *n, *v;
    int off = 0, prev = 0;
    while ((off = next_pair(p, (uint32_t)off, &n, &v)) >= 0) {
        if (strcasecmp(n, name) == 0) {
            /* close the gap in place, then rehash */
            memmove(p->block + prev, p->block + off, p->len - (uint32_t)off);
            p->len -= (uint32_t)(off - prev);
            p->count--;
            uint64_t h = 0;
            int o = 0;
            while ((o = next_pair(p, (uint32_t)o, &n, &v)) >= 0)
                h += fnv1a(n, strlen(n) + 1 + strlen(v));
            p->hash = h;
            if (p->len == 0) {
                free(p->block);
                p->block = NULL;
            }
            return true;
        }
        prev = off;
    }
    return false;
}

bool px_params_copy(px_params_t *dst, const px_params_t *src)
{
    if (dst == src)
        return true; /* freeing dst first would free the source */
    px_params_free(dst);
    if (!src->block)
        return true;
    dst->block = malloc(src->len);
    if (!dst->block)
        return false;
    memcpy(dst->block, src->block, src->len);
    dst->len = src->len;
    dst->count = src->count;
    dst->hash = src->hash;
    return true;
}

/* Append a quoted identifier or literal; returns false when out of room. A
 * literal holding a backslash is written E'...' with the backslashes doubled:
 * a plain '...' would read differently when the server runs with
 * standard_conforming_strings off (and a trailing backslash would then
 * swallow the closing quote). */
static bool put_quoted(char *sql, size_t cap, size_t *len, const char *s, char q)
{
    bool escape = q == '\'' && strchr(s, '\\') != NULL;
    if (escape) {
        if (*len + 1 >= cap)
            return false;
        sql[(*len)++] = 'E';
    }
    if (*len + 1 >= cap)
        return false;
    sql[(*len)++] = q;
    for (; *s; s++) {
        if (*len + 3 >= cap)
            return false;
        if (*s == q || (escape && *s == '\\'))
            sql[(*len)++] = *s;
        sql[(*len)++] = *s;
    }
    if (*len + 1 >= cap)
        return false;
    sql[(*len)++] = q;
    sql[*len] = 0;
    return true;
}

static bool put_str(char *sql, size_t cap, size_t *len, const char *s)
{
    size_t n = strlen(s);
    if (*len + n >= cap) /* room for s and its NUL */
        return false;
    memcpy(sql + *len, s, n + 1);
    *len += n;
    return true;
}

/* Startup values are raw setting strings, not SQL: set_config() takes them
 * the way the server takes startup parameters (a list setting such as
 * search_path keeps its commas), where SET 'a,b' would make one element. */
size_t px_params_diff_sql(const px_params_t *have, const px_params_t *want, char *sql, size_t cap,
                          bool *overflow)
{
    if (overflow)
        *overflow = false;
    size_t len = 0;
    const char *n, *v;
    int off = 0;
    bool any = false;
    char key[66];
    if (cap)
        sql[0] = 0;
    /* startup values (a name a client SET over is left to the SET) */
    while ((off = next_pair(want, (uint32_t)off, &n, &v)) >= 0) {
        const char *cur = px_params_get(have, n);
        if (n[0] == PX_PARAM_SQL || (cur && strcmp(cur, v) == 0))
            continue;
        key[0] = PX_PARAM_SQL;
        snprintf(key + 1, sizeof(key) - 1, "%s", n);
        if (px_params_get(want, key))
            continue;
        if (!put_str(sql, cap, &len, any ? ", " : "SELECT ") ||
            !put_str(sql, cap, &len, "pg_catalog.set_config(") ||
            !put_quoted(sql, cap, &len, n, '\'') || !put_str(sql, cap, &len, ", ") ||
            !put_quoted(sql, cap, &len, v, '\'') || !put_str(sql, cap, &len, ", false)"))
            goto full;
        any = true;
    }
    /* a SET gone (RESET): back to the startup value, if the client has one */
    off = 0;
    while ((off = next_pair(have, (uint32_t)off, &n, &v)) >= 0) {
        if (n[0] != PX_PARAM_SQL || px_params_get(want, n))
            continue;
        const char *base = px_params_get(want, n + 1);
        if (!base)
            continue; /* RESET below */
        if (!put_str(sql, cap, &len, any ? ", " : "SELECT ") ||
            !put_str(sql, cap, &len, "pg_catalog.set_config(") ||
            !put_quoted(sql, cap, &len, n + 1, '\'') || !put_str(sql, cap, &len, ", ") ||
            !put_quoted(sql, cap, &len, base, '\'') || !put_str(sql, cap, &len, ", false)"))
            goto full;
        any = true;
    }
    if (any && !put_str(sql, cap, &len, ";"))
        goto full;
    /* values a client SET: replayed with SET and the value list as it wrote
     * it (the server accepted that text once; a newline ends it safely) */
    off = 0;
    while ((off = next_pair(want, (uint32_t)off, &n, &v)) >= 0) {
        const char *cur = px_params_get(have, n);
        if (n[0] != PX_PARAM_SQL || (cur && strcmp(cur, v) == 0))
            continue;
        if (!put_str(sql, cap, &len, "SET ") || !put_quoted(sql, cap, &len, n + 1, '"') ||
            !put_str(sql, cap, &len, " = ") || !put_str(sql, cap, &len, v + 1) ||
            !put_str(sql, cap, &len, "\n;"))
            goto full;
    }
    off = 0;
    while ((off = next_pair(have, (uint32_t)off, &n, &v)) >= 0) {
        const char *name = n[0] == PX_PARAM_SQL ? n + 1 : n;
        if (px_params_get(want, n))
            continue;
        if (n[0] == PX_PARAM_SQL) {
            /* a SET gone: RESET unless a startup value was put back above */
            if (px_params_get(want, name))
                continue;
        } else {
            /* a startup value gone: RESET unless the client still SETs it */
            key[0] = PX_PARAM_SQL;
            snprintf(key + 1, sizeof(key) - 1, "%s", n);
            if (px_params_get(want, key))
                continue;
        }
        if (!put_str(sql, cap, &len, "RESET ") || !put_quoted(sql, cap, &len, name, '"') ||
            !put_str(sql, cap, &len, ";"))
            goto full;
    }
    return len;
full:
    if (cap)
        sql[0] = 0; /* never leave a cut-off statement behind */
    if (overflow)
        *overflow = true;
    return 0;
}

/* "-c name=value", "-cname=value" and "--name=value" forms, separated by
 * spaces; a backslash escapes the next character, as in PostgreSQL. */
bool px_params_parse_options(px_params_t *p, const char *opts, size_t len)
{
    char tok[4200];
    size_t i = 0;
    bool expect_c = false;
    while (i < len) {
        while (i < len && isspace((unsigned char)opts[i]))
            i++;
        if (i >= len)
            break;
        size_t t = 0;
        while (i < len && !isspace((unsigned char)opts[i])) {
            if (opts[i] == '\\' && i + 1 < len)
                i++;
            if (t + 1 >= sizeof(tok))
                return false;
            tok[t++] = opts[i++];
        }
        tok[t] = 0;
        const char *kv = NULL;
        if (expect_c) {
            kv = tok;
            expect_c = false;
        } else if (strcmp(tok, "-c") == 0) {
            expect_c = true;
            continue;
        } else if (strncmp(tok, "-c", 2) == 0) {
            kv = tok + 2;
        } else if (strncmp(tok, "--", 2) == 0) {
            kv = tok + 2;
        } else {
            return false;
        }
        const char *eq = strchr(kv, '=');
        if (!eq || eq == kv)
            return false;
        char name[64];
        size_t nl = (size_t)(eq - kv);
        if (nl >= sizeof(name))
            return false;
        for (size_t k = 0; k < nl; k++)
            name[k] = kv[k] == '-' ? '_' : kv[k];
        /* the value's length from the token, not strlen: a NUL inside it
         * must make px_params_set refuse it, not cut it short */
        name[nl] = 0;
        if (!px_params_is_tracked(name))
            return false; /* -c user=..., -c _pq_.x=...: not settings */
        if (!px_params_set(p, name, nl, eq + 1, (size_t)(tok + t - (eq + 1))))
            return false;
    }
    return !expect_c;
}
