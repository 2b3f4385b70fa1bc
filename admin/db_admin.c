/*
 * The database endpoints of the admin port (see include/px_db_admin.h):
 * slow queries from the proxy's own digests joined with pg_stat_statements,
 * index recommendations from EXPLAIN plans (with HypoPG's estimate), and the
 * routing / caching verdict on one statement.
 *
 * Everything here runs on the admin thread. The connection to the primary is
 * this file's own; it is only ever used with bounded waits (poll with a
 * deadline, never a blocking libpq call) and is dropped on any error that
 * may have left it in an unknown state. Nothing is ever written on the
 * primary: the session has default_transaction_read_only on, statements of
 * clients are only EXPLAINed (never ANALYZE) inside BEGIN READ ONLY ...
 * ROLLBACK, always through the extended protocol (one statement per
 * message, so a sample text cannot smuggle a second statement), and
 * hypothetical indexes live in the session's memory until hypopg_reset().
 */
#include "px_db_admin.h"

#include <ctype.h>
#include <libpq-fe.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/crypto.h>

#include "px.h"
#include "px_admin.h"
#include "px_cache.h"
#include "px_classify.h"
#include "px_digest.h"
#include "px_health.h"

#define DBA_CONNECT_MS   2000 /* connect + authenticate */
#define DBA_STATEMENT_MS 3000 /* client-side wait per statement (server: 2 s) */
#define DBA_SLOW_DEFAULT 20
#define DBA_SLOW_MAX     500
#define DBA_RECS_DEFAULT 10
#define DBA_RECS_MAX     50
#define DBA_PGSS_ROWS    5000 /* pg_stat_statements rows read for the join */
#define DBA_MAX_SUGGEST  16   /* suggestions per analysed statement */
#define DBA_MAX_KEYS     4    /* columns per suggested index */
#define DBA_SMALL_TABLE  1000 /* without HypoPG: fewer rows never need an index */
#define DBA_MIN_GAIN     0.10 /* with HypoPG: a suggestion must cut the cost by 10% */
#define DBA_SQL_MAX      8192 /* a routing/explain text */
#define DBA_PLAN_MAX     (1u << 20)

static px_shared_t *g_sh;

/* The connection to the primary; only the admin thread uses it. */
static struct {
    pthread_mutex_t mu;
    PGconn *conn;
    char *sig; /* the settings it was opened with (secret included), to notice changes */
} g_db = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* ---- small helpers ------------------------------------------------------------------ */

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Copy the first line of @p msg (libpq messages end in newlines). */
static void set_err(char *err, size_t cap, const char *prefix, const char *msg)
{
    if (!err || cap == 0)
        return;
    snprintf(err, cap, "%s%s%s", prefix ? prefix : "", prefix && msg ? ": " : "", msg ? msg : "");
    err[strcspn(err, "\n")] = 0;
    size_t l = strlen(err);
    while (l > 0 && (err[l - 1] == ' ' || err[l - 1] == '\r'))
        err[--l] = 0;
}

static void free_secret(char *s)
{
    if (s) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

static void db_drop(void)
{
    if (g_db.conn)
        PQfinish(g_db.conn);
    g_db.conn = NULL;
    free_secret(g_db.sig);
    g_db.sig = NULL;
}

/* Wait until the connection's socket is ready for @p events or @p deadline passes. */
static bool wait_sock(PGconn *c, short events, uint64_t deadline)
{
    int fd = PQsocket(c);
    if (fd < 0)
        return false;
    for (;;) {
        uint64_t now = now_ms();
        if (now >= deadline)
            return false;
        struct pollfd p = {.fd = fd, .events = events};
        int rc = poll(&p, 1, (int)(deadline - now));
        if (rc > 0)
            return true;
        if (rc == 0)
            return false;
        /* EINTR: go round */
    }
}

/* ---- connecting ------------------------------------------------------------------- */

typedef struct db_params {
    char host[256];
    char port[8];
    char *user, *password, *db, *ca;
    const char *sslmode;
} db_params_t;

static void params_free(db_params_t *p)
{
    free(p->user);
    free_secret(p->password);
    free(p->db);
    free(p->ca);
    memset(p, 0, sizeof(*p));
}

static const char *sslmode_of(int mode)
{
    switch (mode) {
    case PX_SERVER_TLS_PREFER:
        return "prefer";
    case PX_SERVER_TLS_REQUIRE:
        return "require";
    case PX_SERVER_TLS_VERIFY_CA:
        return "verify-ca";
    case PX_SERVER_TLS_VERIFY_FULL:
        return "verify-full";
    default:
        return "disable";
    }
}

/* The primary's coordinates from the current config snapshot. */
static bool params_load(db_params_t *p)
{
    memset(p, 0, sizeof(*p));
    if (!g_sh)
        return false;
    bool oom = false;
    pthread_mutex_lock(&g_sh->lock);
    const px_config_t *cfg = g_sh->cfg;
    snprintf(p->host, sizeof(p->host), "%s",
             cfg->postgres_server && *cfg->postgres_server ? cfg->postgres_server : "127.0.0.1");
    snprintf(p->port, sizeof(p->port), "%u", (unsigned)cfg->postgres_port);
    oom |= (p->db = strdup(px_config_app_db(cfg))) == NULL;
    if (cfg->postgres_user)
        oom |= (p->user = strdup(cfg->postgres_user)) == NULL;
    if (cfg->postgres_password)
        oom |= (p->password = strdup(cfg->postgres_password)) == NULL;
    if (cfg->server_tls_ca)
        oom |= (p->ca = strdup(cfg->server_tls_ca)) == NULL;
    p->sslmode = sslmode_of(cfg->server_tls_mode);
    pthread_mutex_unlock(&g_sh->lock);
    if (!oom && p->user && !p->password)
        oom |= !px_shared_plain_password(g_sh, p->user, &p->password);
    if (oom)
        params_free(p);
    return !oom;
}

static char *params_sig(const db_params_t *p)
{
    size_t n = strlen(p->host) + strlen(p->port) + strlen(p->sslmode) + 16;
    const char *parts[] = {p->user, p->password, p->db, p->ca};
    for (int i = 0; i < 4; i++)
        n += parts[i] ? strlen(parts[i]) : 0;
    char *s = malloc(n);
    if (s)
        snprintf(s, n, "%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s", p->host, p->port, p->sslmode,
                 p->user ? p->user : "", p->password ? p->password : "", p->db, p->ca ? p->ca : "");
    return s;
}

/*
 * The connection to the primary, opened (or reopened, when the settings
 * changed or it broke) within DBA_CONNECT_MS. NULL with @p err set when it
 * cannot be had. Call with g_db.mu held.
 */
static PGconn *db_get(char *err, size_t errcap)
{
    db_params_t p;
    if (!params_load(&p)) {
        set_err(err, errcap, "out of memory", NULL);
        return NULL;
    }
    char *sig = params_sig(&p);
    if (g_db.conn && sig && g_db.sig && strcmp(sig, g_db.sig) == 0 &&
        PQstatus(g_db.conn) == CONNECTION_OK && PQtransactionStatus(g_db.conn) == PQTRANS_IDLE) {
        free_secret(sig);
        params_free(&p);
        return g_db.conn;
    }
    db_drop();
    const char *kw[24], *val[24];
    int k = 0;
#define KV(key, v) (kw[k] = (key), val[k] = (v), k++)
    KV("host", p.host);
    KV("port", p.port);
    KV("dbname", p.db);
    if (p.user)
        KV("user", p.user);
    if (p.password)
        KV("password", p.password);
    KV("connect_timeout", "2");
    KV("application_name", "fastnext-proxy admin");
    KV("options", "-c statement_timeout=2000 -c lock_timeout=1000 "
                  "-c idle_in_transaction_session_timeout=10000 "
                  "-c default_transaction_read_only=on");
    KV("sslmode", p.sslmode);
    if (p.ca)
        KV("sslrootcert", p.ca);
    KV("keepalives", "1");
    KV("keepalives_idle", "5");
    KV("keepalives_interval", "2");
    KV("keepalives_count", "2");
    KV("tcp_user_timeout", "5000");
    KV("gssencmode", "disable");
#undef KV
    kw[k] = val[k] = NULL;
    uint64_t deadline = now_ms() + DBA_CONNECT_MS;
    PGconn *c = PQconnectStartParams(kw, val, 0);
    params_free(&p);
    if (!c || PQstatus(c) == CONNECTION_BAD) {
        set_err(err, errcap, "cannot connect to the primary",
                c ? PQerrorMessage(c) : "out of memory");
        goto fail;
    }
    PostgresPollingStatusType st = PGRES_POLLING_WRITING;
    while (st != PGRES_POLLING_OK) {
        if (st == PGRES_POLLING_FAILED) {
            set_err(err, errcap, "cannot connect to the primary", PQerrorMessage(c));
            goto fail;
        }
        if (!wait_sock(c, st == PGRES_POLLING_READING ? POLLIN : POLLOUT, deadline)) {
            set_err(err, errcap, "cannot connect to the primary", "timed out after 2 s");
            goto fail;
        }
        st = PQconnectPoll(c);
    }
    if (PQsetnonblocking(c, 1) != 0) {
        set_err(err, errcap, "cannot connect to the primary", PQerrorMessage(c));
        goto fail;
    }
    g_db.conn = c;
    g_db.sig = sig;
    return c;
fail:
    if (c)
        PQfinish(c);
    free_secret(sig);
    return NULL;
}

/*
 * Run one statement (extended protocol: exactly one statement) with text
 * parameters, waiting at most DBA_STATEMENT_MS. Returns its result
 * (PGRES_TUPLES_OK or PGRES_COMMAND_OK) or NULL with @p err set. On a
 * timeout or a broken connection the connection is dropped (the server's
 * statement_timeout ends whatever still runs there).
 */
static PGresult *db_exec(const char *sql, int np, const char *const *vals, char *err, size_t errcap)
{
    PGconn *c = g_db.conn;
    if (!c) {
        set_err(err, errcap, "no connection to the primary", NULL);
        return NULL;
    }
    uint64_t deadline = now_ms() + DBA_STATEMENT_MS;
    if (!PQsendQueryParams(c, sql, np, NULL, vals, NULL, NULL, 0)) {
        set_err(err, errcap, "query failed", PQerrorMessage(c));
        db_drop();
        return NULL;
    }
    int f;
    while ((f = PQflush(c)) == 1) {
        if (!wait_sock(c, POLLOUT | POLLIN, deadline) || !PQconsumeInput(c)) {
            f = -1;
            break;
        }
    }
    if (f != 0) {
        set_err(err, errcap, "query failed", "cannot send to the primary");
        db_drop();
        return NULL;
    }
    PGresult *keep = NULL;
    for (;;) {
        while (PQisBusy(c)) {
            if (!wait_sock(c, POLLIN, deadline)) {
                set_err(err, errcap, "query failed", "no answer from the primary within 3 s");
                PQclear(keep);
                db_drop();
                return NULL;
            }
            if (!PQconsumeInput(c)) {
                set_err(err, errcap, "query failed", PQerrorMessage(c));
                PQclear(keep);
                db_drop();
                return NULL;
            }
        }
        PGresult *r = PQgetResult(c);
        if (!r)
            break;
        ExecStatusType s = PQresultStatus(r);
        bool is_err = s != PGRES_TUPLES_OK && s != PGRES_COMMAND_OK;
        if (!keep || (is_err && PQresultStatus(keep) != PGRES_FATAL_ERROR)) {
            PQclear(keep);
            keep = r;
        } else {
            PQclear(r);
        }
    }
    if (!keep) {
        set_err(err, errcap, "query failed", "no result");
        return NULL;
    }
    ExecStatusType s = PQresultStatus(keep);
    if (s != PGRES_TUPLES_OK && s != PGRES_COMMAND_OK) {
        const char *m = PQresultErrorField(keep, PG_DIAG_MESSAGE_PRIMARY);
        set_err(err, errcap, NULL, m ? m : PQresultErrorMessage(keep));
        PQclear(keep);
        if (PQstatus(c) != CONNECTION_OK)
            db_drop();
        return NULL;
    }
    return keep;
}

/* Run a statement whose result does not matter; false (err set) when it failed. */
static bool db_cmd(const char *sql, char *err, size_t errcap)
{
    PGresult *r = db_exec(sql, 0, NULL, err, errcap);
    PQclear(r);
    return r != NULL;
}

/* Schema of extension @p name in the connected database (quoted), "" when absent; false on error.
 */
static bool db_extension(const char *name, char *schema, size_t cap, char *err, size_t errcap)
{
    const char *v[1] = {name};
    PGresult *r = db_exec("SELECT quote_ident(n.nspname) FROM pg_catalog.pg_extension e "
                          "JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace "
                          "WHERE e.extname = $1",
                          1, v, err, errcap);
    if (!r)
        return false;
    schema[0] = 0;
    if (PQntuples(r) > 0)
        snprintf(schema, cap, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    return true;
}

/* ---- request helpers ----------------------------------------------------------------- */

static void json_begin(px_http_response_t *resp, px_json_t *j, int status)
{
    resp->status = status;
    resp->content_type = "application/json";
    px_json_init(j, &resp->body);
}

static void json_end(px_http_response_t *resp)
{
    if (resp->body.failed) {
        px_http_response_error(resp, 500, "response too large");
        return;
    }
    px_metrics_buf_append(&resp->body, "\n", 1);
}

/* Integer query parameter in [lo, hi]; @p def when absent; false (400 sent) when bad. */
static bool int_param(const px_http_request_t *req, px_http_response_t *resp, const char *name,
                      long def, long lo, long hi, long *out)
{
    char buf[32], msg[128];
    int n = px_http_query_param(req, name, buf, sizeof(buf));
    if (n < 0) {
        /* absent, or malformed: tell them apart by the raw query */
        char key[40];
        snprintf(key, sizeof(key), "%s=", name);
        const char *q = req->query;
        bool present = false;
        for (const char *p = q; p && (p = strstr(p, key)) != NULL; p++)
            if (p == q || p[-1] == '&') {
                present = true;
                break;
            }
        if (!present) {
            *out = def;
            return true;
        }
    }
    char *end = NULL;
    long v = n > 0 ? strtol(buf, &end, 10) : 0;
    if (n <= 0 || !end || *end || v < lo || v > hi) {
        snprintf(msg, sizeof(msg), "%s must be an integer from %ld to %ld", name, lo, hi);
        px_http_response_error(resp, 400, msg);
        return false;
    }
    *out = v;
    return true;
}

static void digest_hex(char *out, size_t cap, uint64_t id)
{
    snprintf(out, cap, "%016llx", (unsigned long long)id);
}

static void iso_time(char *out, size_t cap, uint64_t ms)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    size_t n = strftime(out, cap, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, cap - n, ".%03uZ", (unsigned)(ms % 1000));
}

/* ==== GET /api/v1/database/slow-queries ============================================== */

typedef struct pgss_sum {
    uint64_t entries;
    double calls, total, rows, hit, read;
} pgss_sum_t;

/*
 * Join @p n digests with pg_stat_statements: every row whose query text has
 * the same fingerprint as a digest is added to that digest's sums. Returns
 * "installed", "not installed" or NULL (then @p err says why).
 */
static const char *pgss_join(const px_digest_entry_t *d, size_t n, pgss_sum_t *sums, char *err,
                             size_t errcap)
{
    pthread_mutex_lock(&g_db.mu);
    const char *status = NULL;
    char schema[256], sql[768];
    if (!db_get(err, errcap) ||
        !db_extension("pg_stat_statements", schema, sizeof(schema), err, errcap))
        goto out;
    if (!schema[0]) {
        status = "not installed";
        goto out;
    }
    int ver = g_db.conn ? PQserverVersion(g_db.conn) : 0;
    snprintf(sql, sizeof(sql),
             "SELECT query, calls, %s, rows, shared_blks_hit, shared_blks_read "
             "FROM %s.pg_stat_statements WHERE query IS NOT NULL%s "
             "ORDER BY 3 DESC LIMIT %d",
             ver >= 130000 ? "total_exec_time" : "total_time", schema,
             ver >= 140000 ? " AND toplevel" : "", DBA_PGSS_ROWS);
    PGresult *r = db_exec(sql, 0, NULL, err, errcap);
    if (!r)
        goto out;
    for (int i = 0; i < PQntuples(r); i++) {
        const char *q = PQgetvalue(r, i, 0);
        uint64_t fp = px_digest_fingerprint(q, (size_t)PQgetlength(r, i, 0));
        if (fp == 0)
            continue;
        for (size_t k = 0; k < n; k++) {
            if (d[k].id != fp)
                continue;
            sums[k].entries++;
            sums[k].calls += strtod(PQgetvalue(r, i, 1), NULL);
            sums[k].total += strtod(PQgetvalue(r, i, 2), NULL);
            sums[k].rows += strtod(PQgetvalue(r, i, 3), NULL);
            sums[k].hit += strtod(PQgetvalue(r, i, 4), NULL);
            sums[k].read += strtod(PQgetvalue(r, i, 5), NULL);
        }
    }
    PQclear(r);
    status = "installed";
out:
    pthread_mutex_unlock(&g_db.mu);
    return status;
}

static bool parse_order(const char *s, px_digest_order_t *o)
{
    static const struct {
        const char *name;
        px_digest_order_t order;
    } t[] = {{"total", PX_DIGEST_ORDER_TOTAL},
             {"mean", PX_DIGEST_ORDER_MEAN},
             {"p95", PX_DIGEST_ORDER_P95},
             {"calls", PX_DIGEST_ORDER_CALLS}};
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
        if (strcmp(s, t[i].name) == 0) {
            *o = t[i].order;
            return true;
        }
    return false;
}

static void slow_queries(const px_http_request_t *req, px_http_response_t *resp, void *arg)
{
    (void)arg;
    long limit;
    if (!int_param(req, resp, "limit", DBA_SLOW_DEFAULT, 1, DBA_SLOW_MAX, &limit))
        return;
    char order_s[16] = "total";
    px_digest_order_t order = PX_DIGEST_ORDER_TOTAL;
    int on = px_http_query_param(req, "order", order_s, sizeof(order_s));
    if ((on >= 0 || strstr(req->query, "order=")) && (on < 0 || !parse_order(order_s, &order))) {
        px_http_response_error(resp, 400, "order must be one of total, mean, p95, calls");
        return;
    }
    px_digest_entry_t *d = calloc((size_t)limit, sizeof(*d));
    pgss_sum_t *sums = calloc((size_t)limit, sizeof(*sums));
    if (!d || !sums) {
        free(d);
        free(sums);
        px_http_response_error(resp, 500, "out of memory");
        return;
    }
    size_t n = px_digest_top(d, (size_t)limit, order);
    char err[256] = "";
    const char *pgss = pgss_join(d, n, sums, err, sizeof(err));

    px_json_t j;
    json_begin(resp, &j, 200);
    px_json_obj(&j);
    px_json_kv_str(&j, "order", order_s);
    px_json_kv_int(&j, "limit", limit);
    px_digest_info_t info;
    px_digest_info(&info);
    px_json_key(&j, "digests");
    px_json_obj(&j);
    px_json_kv_uint(&j, "tracked", info.digests);
    px_json_kv_uint(&j, "max", info.max_digests);
    px_json_kv_uint(&j, "evictions", info.evictions);
    px_json_kv_uint(&j, "dropped_records", info.dropped);
    px_json_obj_end(&j);
    px_json_kv_str(&j, "pg_stat_statements", pgss ? pgss : "unavailable");
    if (!pgss)
        px_json_kv_str(&j, "pg_stat_statements_error", err);
    px_json_key(&j, "queries");
    px_json_arr(&j);
    for (size_t i = 0; i < n; i++) {
        const px_digest_entry_t *e = &d[i];
        char hex[24], ts[40];
        px_json_obj(&j);
        px_json_kv_str(&j, "query", e->query);
        if (e->query_truncated)
            px_json_kv_bool(&j, "query_truncated", true);
        digest_hex(hex, sizeof(hex), e->id);
        px_json_kv_str(&j, "digest", hex);
        px_json_kv_uint(&j, "calls", e->calls);
        px_json_kv_uint(&j, "errors", e->errors);
        px_json_kv_uint(&j, "rows", e->rows);
        px_json_kv_double(&j, "total_ms", e->total_seconds * 1e3);
        px_json_kv_double(&j, "mean_ms", e->mean_seconds * 1e3);
        px_json_kv_double(&j, "p95_ms", e->p95_seconds * 1e3);
        px_json_kv_double(&j, "max_ms", e->max_seconds * 1e3);
        px_json_kv_double(&j, "min_ms", e->min_seconds * 1e3);
        px_json_kv_uint(&j, "cache_hits", e->cache_hits);
        px_json_key(&j, "routes");
        px_json_obj(&j);
        for (int r = 0; r < PX_DIGEST_ROUTE_COUNT; r++)
            px_json_kv_uint(&j, px_digest_route_to_str((px_digest_route_t)r), e->route_calls[r]);
        px_json_obj_end(&j);
        iso_time(ts, sizeof(ts), e->first_seen_ms);
        px_json_kv_str(&j, "first_seen", ts);
        iso_time(ts, sizeof(ts), e->last_seen_ms);
        px_json_kv_str(&j, "last_seen", ts);
        px_json_key(&j, "pg_stat_statements");
        if (!pgss || strcmp(pgss, "installed") != 0) {
            px_json_str(&j, pgss ? pgss : "unavailable");
        } else if (sums[i].entries == 0) {
            px_json_null(&j);
        } else {
            px_json_obj(&j);
            px_json_kv_double(&j, "calls", sums[i].calls);
            px_json_kv_double(&j, "total_exec_time", sums[i].total);
            px_json_kv_double(&j, "mean_exec_time",
                              sums[i].calls > 0 ? sums[i].total / sums[i].calls : 0.0);
            px_json_kv_double(&j, "rows", sums[i].rows);
            px_json_kv_double(&j, "shared_blks_hit", sums[i].hit);
            px_json_kv_double(&j, "shared_blks_read", sums[i].read);
            px_json_kv_uint(&j, "entries", sums[i].entries);
            px_json_obj_end(&j);
        }
        px_json_obj_end(&j);
    }
    px_json_arr_end(&j);
    px_json_obj_end(&j);
    json_end(resp);
    free(d);
    free(sums);
}

/* ==== GET /api/v1/database/index-recommendations ===================================== */

/*
 * Plan text handling. EXPLAIN (VERBOSE) prints every column reference
 * qualified by its range table alias ("t.col", quoted as identifiers are),
 * puts every operator expression in parentheses with spaces around the
 * operator, and joins conjuncts with " AND ". The filter parser relies on
 * exactly that shape and gives up (suggests nothing) on anything else.
 */

/* Skip a quoted span ('...' or "...") starting at s[i]; returns the index after it. */
static size_t skip_quoted(const char *s, size_t n, size_t i)
{
    char q = s[i];
    size_t k = i + 1;
    while (k < n) {
        if (s[k] == q) {
            if (k + 1 < n && s[k + 1] == q) {
                k += 2;
                continue;
            }
            return k + 1;
        }
        k++;
    }
    return n;
}

/* Trim blanks and outer parentheses that enclose the whole of [*b, *e). */
static void strip_parens(const char *s, size_t *b, size_t *e)
{
    for (;;) {
        while (*b < *e && isspace((unsigned char)s[*b]))
            (*b)++;
        while (*e > *b && isspace((unsigned char)s[*e - 1]))
            (*e)--;
        if (*e - *b < 2 || s[*b] != '(' || s[*e - 1] != ')')
            return;
        int depth = 0;
        size_t i = *b;
        while (i < *e) {
            char c = s[i];
            if (c == '\'' || c == '"') {
                i = skip_quoted(s, *e, i);
                continue;
            }
            if (c == '(')
                depth++;
            else if (c == ')' && --depth == 0 && i != *e - 1)
                return; /* "(a) AND (b)": the first paren closes early */
            i++;
        }
        (*b)++;
        (*e)--;
    }
}

typedef struct span {
    size_t b, e;
} span_t;

/*
 * Split [b, e) at top-level occurrences of @p word (" AND " / " OR ").
 * Returns the number of parts (at most @p max; 0 when there are more).
 */
static int split_top(const char *s, size_t b, size_t e, const char *word, span_t *out, int max)
{
    size_t wl = strlen(word);
    int n = 0, depth = 0;
    size_t start = b, i = b;
    while (i < e) {
        char c = s[i];
        if (c == '\'' || c == '"') {
            i = skip_quoted(s, e, i);
            continue;
        }
        if (c == '(' || c == '[')
            depth++;
        else if (c == ')' || c == ']')
            depth--;
        else if (depth == 0 && i + wl <= e && memcmp(s + i, word, wl) == 0) {
            if (n == max)
                return 0;
            out[n++] = (span_t){start, i};
            i += wl;
            start = i;
            continue;
        }
        i++;
    }
    if (n == max)
        return 0;
    out[n++] = (span_t){start, e};
    return n;
}

static bool is_op_ch(char c)
{
    return c && strchr("+-*/<>=~!@#%^&|`?", c) != NULL;
}

/* The top-level binary operator of [b, e) (" op "): its span, false when none. */
static bool find_op(const char *s, size_t b, size_t e, span_t *op)
{
    int depth = 0;
    size_t i = b;
    while (i < e) {
        char c = s[i];
        if (c == '\'' || c == '"') {
            i = skip_quoted(s, e, i);
            continue;
        }
        if (c == '(' || c == '[')
            depth++;
        else if (c == ')' || c == ']')
            depth--;
        else if (depth == 0 && c == ' ' && i + 2 < e && is_op_ch(s[i + 1])) {
            size_t k = i + 1;
            while (k < e && is_op_ch(s[k]))
                k++;
            if (k < e && s[k] == ' ') {
                *op = (span_t){i + 1, k};
                return true;
            }
        }
        i++;
    }
    return false;
}

/* Length of an identifier (plain or "quoted") at s[i], 0 when none. */
static size_t ident_len(const char *s, size_t e, size_t i)
{
    if (i >= e)
        return 0;
    if (s[i] == '"')
        return skip_quoted(s, e, i) - i;
    size_t k = i;
    while (k < e && (isalnum((unsigned char)s[k]) || s[k] == '_' || s[k] == '$' ||
                     (unsigned char)s[k] >= 0x80))
        k++;
    if (k == i || isdigit((unsigned char)s[i]))
        return 0;
    return k - i;
}

/* Whether [b, e) refers to a column of @p alias ("alias." outside quotes). */
static bool mentions_alias(const char *s, size_t b, size_t e, const char *alias)
{
    size_t al = strlen(alias);
    size_t i = b;
    while (i < e) {
        if (s[i] == '\'') {
            i = skip_quoted(s, e, i);
            continue;
        }
        bool start = i == b || !(isalnum((unsigned char)s[i - 1]) || s[i - 1] == '_' ||
                                 s[i - 1] == '"' || s[i - 1] == '.');
        if (start && i + al + 1 <= e && memcmp(s + i, alias, al) == 0 && s[i + al] == '.')
            return true;
        if (s[i] == '"') {
            i = skip_quoted(s, e, i);
            continue;
        }
        i++;
    }
    return false;
}

/* Whether [b, e) mentions any qualified column "x.y" (an identifier, a dot, an identifier). */
static bool mentions_any_column(const char *s, size_t b, size_t e)
{
    size_t i = b;
    while (i < e) {
        if (s[i] == '\'') {
            i = skip_quoted(s, e, i);
            continue;
        }
        size_t l = ident_len(s, e, i);
        if (l > 0) {
            if (i + l < e && s[i + l] == '.' && ident_len(s, e, i + l + 1) > 0)
                return true;
            i += l;
            continue;
        }
        i++;
    }
    return false;
}

/*
 * If [b, e) is a column of @p alias — "alias.col", or "(alias.col)::type" —
 * write the column (as printed) into @p col and return true.
 */
static bool column_of(const char *s, size_t b, size_t e, const char *alias, char *col, size_t cap)
{
    size_t al = strlen(alias);
    /* (alias.col)::type */
    if (s[b] == '(') {
        size_t close = b + 1;
        while (close < e && s[close] != ')') {
            if (s[close] == '"')
                close = skip_quoted(s, e, close);
            else
                close++;
        }
        if (close + 2 < e && s[close + 1] == ':' && s[close + 2] == ':')
            e = close, b = b + 1;
        else
            return false;
    }
    if (e - b <= al + 1 || memcmp(s + b, alias, al) != 0 || s[b + al] != '.')
        return false;
    size_t l = ident_len(s, e, b + al + 1);
    if (l == 0 || b + al + 1 + l != e || l >= cap)
        return false;
    memcpy(col, s + b + al + 1, l);
    col[l] = 0;
    return true;
}

/* [b, e) with every "alias." removed, into @p out; false when it does not fit. */
static bool strip_alias(const char *s, size_t b, size_t e, const char *alias, char *out, size_t cap)
{
    size_t al = strlen(alias), o = 0, i = b;
    while (i < e) {
        if (s[i] == '\'' || s[i] == '"') {
            size_t k = skip_quoted(s, e, i);
            bool is_alias =
                s[i] == '"' && k - i == al && memcmp(s + i, alias, al) == 0 && k < e && s[k] == '.';
            if (is_alias) {
                i = k + 1;
                continue;
            }
            if (o + (k - i) >= cap)
                return false;
            memcpy(out + o, s + i, k - i);
            o += k - i;
            i = k;
            continue;
        }
        bool start =
            i == b || !(isalnum((unsigned char)s[i - 1]) || s[i - 1] == '_' || s[i - 1] == '.');
        if (start && i + al + 1 <= e && memcmp(s + i, alias, al) == 0 && s[i + al] == '.') {
            i += al + 1;
            continue;
        }
        if (o + 1 >= cap)
            return false;
        out[o++] = s[i++];
    }
    out[o] = 0;
    return true;
}

typedef enum pred_kind {
    PRED_NONE = 0,
    PRED_EQ,    /* btree, first */
    PRED_RANGE, /* btree, after the equalities */
    PRED_GIN,   /* jsonb @> ? ?| ?&, arrays && @> <@, full text @@ */
} pred_kind_t;

static pred_kind_t op_kind(const char *s, span_t op, const char *right)
{
    size_t l = op.e - op.b;
    const char *o = s + op.b;
#define OPIS(lit) (l == sizeof(lit) - 1 && memcmp(o, lit, l) == 0)
    if (OPIS("="))
        return PRED_EQ; /* also "= ANY (...)": an IN list */
    if (OPIS("<") || OPIS(">") || OPIS("<=") || OPIS(">="))
        return strncmp(right, "ANY ", 4) == 0 || strncmp(right, "ALL ", 4) == 0 ? PRED_NONE
                                                                                : PRED_RANGE;
    if (OPIS("@>") || OPIS("<@") || OPIS("?") || OPIS("?|") || OPIS("?&") || OPIS("&&") ||
        OPIS("@@") || OPIS("@?"))
        return PRED_GIN;
#undef OPIS
    return PRED_NONE;
}

/* A key of a suggested index: a column, or an expression (written in parentheses). */
typedef struct ikey {
    char text[256];
    bool expr;
    pred_kind_t kind;
} ikey_t;

typedef struct suggestion {
    char table[300]; /* quoted schema.table */
    char method[8];  /* btree | gin */
    int n_keys;
    ikey_t keys[DBA_MAX_KEYS];
    char reason[768];
    bool from_join;
    double cost_after; /* NAN: not estimated */
    char hypo_error[160];
} suggestion_t;

typedef struct scan {
    char table[300]; /* quoted schema.table */
    char alias[130]; /* as column references print it */
    char filter[2048];
} scan_t;

#define DBA_MAX_SCANS 32
#define DBA_MAX_CONJ  32

static bool key_has(const ikey_t *k, int n, const char *text)
{
    for (int i = 0; i < n; i++)
        if (strcmp(k[i].text, text) == 0)
            return true;
    return false;
}

/* One conjunct of a scan's filter: the key it could use and how, false when none. */
static bool conjunct_key(const char *s, size_t b, size_t e, const char *alias, ikey_t *key)
{
    strip_parens(s, &b, &e);
    span_t op;
    if (!find_op(s, b, e, &op))
        return false;
    size_t lb = b, le = op.b - 1, rb = op.e + 1, re = e;
    char right[8];
    snprintf(right, sizeof(right), "%.*s", (int)(re - rb < 7 ? re - rb : 7), s + rb);
    pred_kind_t kind = op_kind(s, op, right);
    if (kind == PRED_NONE)
        return false;
    /* which side is ours: the other must not read this relation's columns */
    bool l_ours = mentions_alias(s, lb, le, alias), r_ours = mentions_alias(s, rb, re, alias);
    if (l_ours == r_ours)
        return false;
    size_t cb = l_ours ? lb : rb, ce = l_ours ? le : re;
    size_t ob = l_ours ? rb : lb, oe = l_ours ? re : le;
    if (memmem(s + ob, oe - ob, "SubPlan", 7) || memmem(s + ob, oe - ob, "InitPlan", 8))
        return false;
    if (!l_ours && kind == PRED_RANGE)
        return false; /* "5 < t.a": rare, and the direction would flip */
    key->kind = kind;
    if (column_of(s, cb, ce, alias, key->text, sizeof(key->text))) {
        key->expr = false;
        return true;
    }
    /* an expression of this relation's columns only: an expression index */
    if (!strip_alias(s, cb, ce, alias, key->text, sizeof(key->text)))
        return false;
    if (mentions_any_column(key->text, 0, strlen(key->text)) || strstr(key->text, "SubPlan") ||
        strchr(key->text, '$'))
        return false;
    key->expr = true;
    return true;
}

/* Suggestions for one scan's filter, appended to @p out (n in/out). */
static void suggest_for_filter(const scan_t *sc, suggestion_t *out, int *n, int max)
{
    const char *s = sc->filter;
    size_t b = 0, e = strlen(s);
    strip_parens(s, &b, &e);
    span_t parts[DBA_MAX_CONJ];
    span_t ors[2];
    if (split_top(s, b, e, " OR ", ors, 2) != 1)
        return; /* a disjunction at the top: no single index serves it */
    int np = split_top(s, b, e, " AND ", parts, DBA_MAX_CONJ);
    ikey_t eq[DBA_MAX_KEYS], range[DBA_MAX_KEYS];
    int neq = 0, nrange = 0;
    for (int i = 0; i < np; i++) {
        ikey_t k;
        if (!conjunct_key(s, parts[i].b, parts[i].e, sc->alias, &k))
            continue;
        if (k.kind == PRED_GIN) {
            if (*n >= max)
                continue;
            suggestion_t *g = &out[(*n)++];
            memset(g, 0, sizeof(*g));
            snprintf(g->table, sizeof(g->table), "%s", sc->table);
            snprintf(g->method, sizeof(g->method), "gin");
            g->keys[0] = k;
            g->n_keys = 1;
            snprintf(g->reason, sizeof(g->reason),
                     "Seq Scan on %.120s: containment / full-text operator on %.64s; Filter %.240s",
                     sc->table, k.text, sc->filter);
            g->cost_after = NAN;
            continue;
        }
        if (k.kind == PRED_EQ && neq < DBA_MAX_KEYS && !key_has(eq, neq, k.text))
            eq[neq++] = k;
        else if (k.kind == PRED_RANGE && nrange < DBA_MAX_KEYS && !key_has(range, nrange, k.text) &&
                 !key_has(eq, neq, k.text))
            range[nrange++] = k;
    }
    if (neq + nrange == 0 || *n >= max)
        return;
    suggestion_t *g = &out[(*n)++];
    memset(g, 0, sizeof(*g));
    snprintf(g->table, sizeof(g->table), "%s", sc->table);
    snprintf(g->method, sizeof(g->method), "btree");
    for (int i = 0; i < neq && g->n_keys < DBA_MAX_KEYS; i++)
        g->keys[g->n_keys++] = eq[i];
    /* one range column after the equalities: later ones could not narrow the scan */
    if (nrange > 0 && g->n_keys < DBA_MAX_KEYS)
        g->keys[g->n_keys++] = range[0];
    char eqs[300] = "", rgs[300] = "";
    for (int i = 0; i < neq; i++)
        snprintf(eqs + strlen(eqs), sizeof(eqs) - strlen(eqs), "%s%.64s", i ? ", " : "",
                 eq[i].text);
    if (nrange > 0)
        snprintf(rgs, sizeof(rgs), "%.64s", range[0].text);
    /* cut where it must: the columns come first, the whole filter last */
    if (snprintf(g->reason, sizeof(g->reason), "Seq Scan on %.120s: %s%s%s%s%s; Filter %.240s",
                 sc->table, neq ? "equality on " : "", eqs, neq && nrange ? ", " : "",
                 nrange ? "range on " : "", rgs, sc->filter) < 0)
        g->reason[0] = 0;
    g->cost_after = NAN;
}

/* Suggestions from join conditions on sequentially scanned relations. */
static void suggest_for_join(const char *cond, const scan_t *scans, int nscans, suggestion_t *out,
                             int *n, int max)
{
    size_t b = 0, e = strlen(cond);
    strip_parens(cond, &b, &e);
    span_t parts[DBA_MAX_CONJ];
    int np = split_top(cond, b, e, " AND ", parts, DBA_MAX_CONJ);
    for (int i = 0; i < np && *n < max; i++) {
        size_t pb = parts[i].b, pe = parts[i].e;
        strip_parens(cond, &pb, &pe);
        span_t op;
        if (!find_op(cond, pb, pe, &op) || op.e - op.b != 1 || cond[op.b] != '=')
            continue;
        span_t side[2] = {{pb, op.b - 1}, {op.e + 1, pe}};
        for (int sd = 0; sd < 2 && *n < max; sd++)
            for (int k = 0; k < nscans; k++) {
                char col[256];
                if (!column_of(cond, side[sd].b, side[sd].e, scans[k].alias, col, sizeof(col)))
                    continue;
                /* already the first key of a suggestion for that table? */
                bool dup = false;
                for (int x = 0; x < *n; x++)
                    if (strcmp(out[x].table, scans[k].table) == 0 &&
                        strcmp(out[x].method, "btree") == 0 && out[x].n_keys > 0 &&
                        strcmp(out[x].keys[0].text, col) == 0)
                        dup = true;
                if (dup)
                    break;
                suggestion_t *g = &out[(*n)++];
                memset(g, 0, sizeof(*g));
                snprintf(g->table, sizeof(g->table), "%s", scans[k].table);
                snprintf(g->method, sizeof(g->method), "btree");
                snprintf(g->keys[0].text, sizeof(g->keys[0].text), "%s", col);
                g->keys[0].kind = PRED_EQ;
                g->n_keys = 1;
                g->from_join = true;
                snprintf(g->reason, sizeof(g->reason),
                         "join condition %.*s reads %s with a Seq Scan", (int)(pe - pb), cond + pb,
                         scans[k].table);
                g->cost_after = NAN;
                break;
            }
    }
}

static void index_keys_sql(const suggestion_t *g, char *out, size_t cap)
{
    size_t o = 0;
    out[0] = 0;
    for (int i = 0; i < g->n_keys; i++) {
        int w = snprintf(out + o, cap - o, "%s%s%s%s", i ? ", " : "", g->keys[i].expr ? "(" : "",
                         g->keys[i].text, g->keys[i].expr ? ")" : "");
        if (w < 0 || (size_t)w >= cap - o)
            return;
        o += (size_t)w;
    }
}

/* First $n parameter number used in @p sql outside literals (max n), 0 when none. */
static int max_param(const char *s)
{
    size_t n = strlen(s), i = 0;
    int mx = 0;
    while (i < n) {
        char c = s[i];
        if (c == '\'' || c == '"') {
            i = skip_quoted(s, n, i);
            continue;
        }
        if (c == '-' && i + 1 < n && s[i + 1] == '-') {
            while (i < n && s[i] != '\n')
                i++;
            continue;
        }
        if (c == '/' && i + 1 < n && s[i + 1] == '*') {
            const char *end = strstr(s + i + 2, "*/");
            i = end ? (size_t)(end - s) + 2 : n;
            continue;
        }
        if (c == '$') {
            if (i + 1 < n && isdigit((unsigned char)s[i + 1])) {
                long v = strtol(s + i + 1, NULL, 10);
                if (v > mx && v < 65536)
                    mx = (int)v;
                i++;
                while (i < n && isdigit((unsigned char)s[i]))
                    i++;
                continue;
            }
            /* dollar quote */
            size_t k = i + 1;
            while (k < n && (isalnum((unsigned char)s[k]) || s[k] == '_'))
                k++;
            if (k < n && s[k] == '$' && (i == 0 || !isalnum((unsigned char)s[i - 1]))) {
                size_t tl = k + 1 - i;
                const char *end = NULL;
                for (size_t q = k + 1; q + tl <= n; q++)
                    if (memcmp(s + q, s + i, tl) == 0) {
                        end = s + q;
                        break;
                    }
                i = end ? (size_t)(end - s) + tl : n;
                continue;
            }
        }
        i++;
    }
    return mx;
}

/* What one analysis needs to EXPLAIN its statement again. */
typedef struct explain_ctx {
    const char *sample;
    int nparams;
    bool generic_plan; /* PG16+: EXPLAIN (GENERIC_PLAN) */
    bool prepared;     /* a PREPARE fastnext_ir was issued (deallocate afterwards) */
} explain_ctx_t;

/* EXPLAIN the sample; its JSON plan (malloc'd) or NULL with err set. */
static char *explain(explain_ctx_t *x, double *cost, char *err, size_t errcap)
{
    size_t sl = strlen(x->sample);
    char *sql = malloc(sl + 128 + (size_t)x->nparams * 6);
    if (!sql) {
        set_err(err, errcap, "out of memory", NULL);
        return NULL;
    }
    PGresult *r = NULL;
    if (x->nparams > 0 && !x->generic_plan) {
        /* PG15 and older: a prepared statement's generic plan */
        /* this session's only prepared statement: a leftover must not block the name */
        if (!db_cmd("DEALLOCATE ALL", err, errcap))
            goto out;
        x->prepared = false;
        snprintf(sql, sl + 128, "PREPARE fastnext_ir AS %s", x->sample);
        if (!db_cmd(sql, err, errcap))
            goto out;
        x->prepared = true;
        size_t o =
            (size_t)snprintf(sql, 128, "EXPLAIN (FORMAT JSON, VERBOSE) EXECUTE fastnext_ir(");
        for (int i = 0; i < x->nparams; i++)
            o += (size_t)sprintf(sql + o, "%sNULL", i ? "," : "");
        sprintf(sql + o, ")");
    } else {
        snprintf(sql, sl + 128, "EXPLAIN (FORMAT JSON, VERBOSE%s) %s",
                 x->generic_plan && x->nparams > 0 ? ", GENERIC_PLAN" : "", x->sample);
    }
    r = db_exec(sql, 0, NULL, err, errcap);
out:
    free(sql);
    if (!r)
        return NULL;
    char *plan = NULL;
    if (PQntuples(r) == 1 && PQnfields(r) == 1 && (size_t)PQgetlength(r, 0, 0) < DBA_PLAN_MAX)
        plan = strdup(PQgetvalue(r, 0, 0));
    PQclear(r);
    if (!plan) {
        set_err(err, errcap, "unexpected EXPLAIN output", NULL);
        return NULL;
    }
    const char *tc = strstr(plan, "\"Total Cost\":");
    *cost = tc ? strtod(tc + 13, NULL) : NAN;
    return plan;
}

typedef struct analysis {
    char query[PX_DIGEST_TEXT_MAX + 1];
    uint64_t id;
    double total_ms;
    uint64_t calls;
    double cost_before;
    int n;
    suggestion_t sug[DBA_MAX_SUGGEST];
    char skipped[256]; /* why nothing was suggested, "" when something was */
} analysis_t;

/* Whether the normalised text is a SELECT / UPDATE / DELETE (or WITH ... of one). */
static bool explainable(const char *q, const char *sample)
{
    if (strncmp(q, "select ", 7) && strncmp(q, "update ", 7) && strncmp(q, "delete ", 7) &&
        strncmp(q, "with ", 5))
        return false;
    px_classify_result_t r;
    px_classify(sample, strlen(sample), &r);
    if (r.n_stmts != 1 || (r.flags & (PX_CLS_F_PARSE_ERROR | PX_CLS_F_TOO_COMPLEX)))
        return false;
    return (r.flags & PX_CLS_F_SELECT) || (r.flags & PX_CLS_F_DML) || r.cls == PX_CLASS_READ;
}

/* Drop key columns that already lead an index of the same method; false: nothing left. */
static bool prune_existing(suggestion_t *g, PGresult *idx)
{
    int w = 0;
    for (int i = 0; i < g->n_keys; i++) {
        bool lead = false;
        for (int r = 0; r < PQntuples(idx); r++)
            if (strcmp(PQgetvalue(idx, r, 0), g->method) == 0 &&
                strcmp(PQgetvalue(idx, r, 1), g->keys[i].text) == 0)
                lead = true;
        if (!lead)
            g->keys[w++] = g->keys[i];
    }
    g->n_keys = w;
    return w > 0;
}

/* Analyse one digest's sample inside a read-only transaction. False: the connection is gone. */
static bool analyse(analysis_t *a, const char *sample, const char *hypopg, int server_ver)
{
    char err[256] = "";
    explain_ctx_t x = {
        .sample = sample, .nparams = max_param(sample), .generic_plan = server_ver >= 160000};
    if (!db_cmd("BEGIN READ ONLY", err, sizeof(err)))
        goto fail;
    if (x.nparams > 0 && !x.generic_plan &&
        !db_cmd("SET LOCAL plan_cache_mode = force_generic_plan", err, sizeof(err)))
        goto fail;
    char *plan = explain(&x, &a->cost_before, err, sizeof(err));
    if (!plan)
        goto fail;
    const char *pv[1] = {plan};
    PGresult *nodes = db_exec(
        "SELECT n->>'Node Type', "
        "coalesce(quote_ident(n->>'Schema') || '.' || quote_ident(n->>'Relation Name'), ''), "
        "coalesce(quote_ident(n->>'Alias'), ''), coalesce(n->>'Filter', ''), "
        "concat_ws(' AND ', n->>'Hash Cond', n->>'Merge Cond', n->>'Join Filter') "
        "FROM jsonb_path_query($1::jsonb, 'strict $.**') AS n "
        "WHERE jsonb_typeof(n) = 'object' AND n ? 'Node Type'",
        1, pv, err, sizeof(err));
    free(plan);
    if (!nodes)
        goto fail;
    scan_t *scans = calloc(DBA_MAX_SCANS, sizeof(*scans));
    int ns = 0;
    for (int i = 0; scans && i < PQntuples(nodes) && ns < DBA_MAX_SCANS; i++) {
        const char *tab = PQgetvalue(nodes, i, 1);
        if (strcmp(PQgetvalue(nodes, i, 0), "Seq Scan") != 0 || !*tab ||
            strncmp(tab, "pg_catalog.", 11) == 0 || strncmp(tab, "information_schema.", 19) == 0 ||
            strncmp(tab, "pg_toast.", 9) == 0)
            continue; /* system catalogs are not ours to index */
        scan_t *sc = &scans[ns++];
        snprintf(sc->table, sizeof(sc->table), "%s", PQgetvalue(nodes, i, 1));
        snprintf(sc->alias, sizeof(sc->alias), "%s", PQgetvalue(nodes, i, 2));
        snprintf(sc->filter, sizeof(sc->filter), "%s", PQgetvalue(nodes, i, 3));
    }
    for (int i = 0; scans && i < ns; i++)
        if (scans[i].filter[0])
            suggest_for_filter(&scans[i], a->sug, &a->n, DBA_MAX_SUGGEST);
    for (int i = 0; scans && i < PQntuples(nodes); i++)
        if (*PQgetvalue(nodes, i, 4))
            suggest_for_join(PQgetvalue(nodes, i, 4), scans, ns, a->sug, &a->n, DBA_MAX_SUGGEST);
    PQclear(nodes);
    free(scans);
    if (a->n == 0)
        snprintf(a->skipped, sizeof(a->skipped), "%s",
                 "no sequential scan with an indexable condition in its plan");

    /* existing indexes and table sizes */
    int w = 0;
    for (int i = 0; i < a->n; i++) {
        suggestion_t *g = &a->sug[i];
        const char *tv[1] = {g->table};
        PGresult *idx = db_exec(
            "SELECT coalesce(am.amname, ''), coalesce(pg_get_indexdef(i.indexrelid, 1, true), ''), "
            "t.reltuples::float8 FROM pg_catalog.pg_class t "
            "LEFT JOIN pg_catalog.pg_index i ON i.indrelid = t.oid "
            "LEFT JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid "
            "LEFT JOIN pg_catalog.pg_am am ON am.oid = ic.relam WHERE t.oid = $1::regclass",
            1, tv, err, sizeof(err));
        if (!idx)
            goto fail_x;
        bool keep = prune_existing(g, idx);
        double tuples = PQntuples(idx) > 0 ? strtod(PQgetvalue(idx, 0, 2), NULL) : -1;
        PQclear(idx);
        if (!keep) {
            snprintf(a->skipped, sizeof(a->skipped), "%.120s already has an index on %.100s",
                     g->table, g->keys[0].text);
            continue;
        }
        if (!hypopg[0] && tuples >= 0 && tuples < DBA_SMALL_TABLE) {
            snprintf(a->skipped, sizeof(a->skipped),
                     "%.120s has %.0f rows: too small to need an index", g->table, tuples);
            continue;
        }
        a->sug[w++] = *g;
    }
    a->n = w;

    /* HypoPG: each suggestion alone, EXPLAINed again */
    if (hypopg[0]) {
        int kept = 0;
        for (int i = 0; i < a->n; i++) {
            suggestion_t *g = &a->sug[i];
            char keys[1100], create[1600], call[300];
            index_keys_sql(g, keys, sizeof(keys));
            snprintf(create, sizeof(create), "CREATE INDEX ON %s USING %s (%s)", g->table,
                     g->method, keys);
            snprintf(call, sizeof(call), "SELECT * FROM %s.hypopg_create_index($1)", hypopg);
            const char *cv[1] = {create};
            PGresult *hr = db_exec(call, 1, cv, g->hypo_error, sizeof(g->hypo_error));
            double after = NAN;
            if (hr) {
                PQclear(hr);
                char *p2 = explain(&x, &after, g->hypo_error, sizeof(g->hypo_error));
                free(p2);
                snprintf(call, sizeof(call), "SELECT %s.hypopg_reset()", hypopg);
                if (!db_cmd(call, err, sizeof(err)))
                    goto fail_x;
            } else if (PQtransactionStatus(g_db.conn) == PQTRANS_INERROR) {
                /* the failed call aborted the transaction: the remaining ones need a new one */
                if (!db_cmd("ROLLBACK", err, sizeof(err)) ||
                    !db_cmd("BEGIN READ ONLY", err, sizeof(err)))
                    goto fail_x;
                if (x.nparams > 0 && !x.generic_plan &&
                    !db_cmd("SET LOCAL plan_cache_mode = force_generic_plan", err, sizeof(err)))
                    goto fail_x;
            }
            if (!g_db.conn)
                goto fail_x;
            g->cost_after = after;
            if (isfinite(after) && isfinite(a->cost_before) &&
                after > a->cost_before * (1.0 - DBA_MIN_GAIN)) {
                snprintf(
                    a->skipped, sizeof(a->skipped),
                    "HypoPG: an index on %.100s (%.80s) would not lower the estimated cost %.2f "
                    "(%.2f)",
                    g->table, keys, a->cost_before, after);
                continue;
            }
            a->sug[kept++] = *g;
        }
        a->n = kept;
    }
    (void)db_cmd("ROLLBACK", err, sizeof(err));
    if (x.prepared && g_db.conn)
        (void)db_cmd("DEALLOCATE ALL", err, sizeof(err));
    if (a->n > 0)
        a->skipped[0] = 0;
    return g_db.conn != NULL;

fail_x:
fail:
    snprintf(a->skipped, sizeof(a->skipped), "%s", err[0] ? err : "failed");
    a->n = 0;
    if (g_db.conn && PQtransactionStatus(g_db.conn) != PQTRANS_IDLE) {
        char e2[128];
        (void)db_cmd("ROLLBACK", e2, sizeof(e2));
    }
    if (g_db.conn && (x.prepared || hypopg[0])) {
        char e2[128], call[300];
        if (x.prepared)
            (void)db_cmd("DEALLOCATE ALL", e2, sizeof(e2));
        if (hypopg[0] && g_db.conn) {
            snprintf(call, sizeof(call), "SELECT %s.hypopg_reset()", hypopg);
            (void)db_cmd(call, e2, sizeof(e2));
        }
    }
    return g_db.conn != NULL;
}

/* A statement to analyse: from the proxy's digests or from pg_stat_statements. */
typedef struct cand {
    uint64_t id; /* digest id (the fingerprint, for pg_stat_statements rows) */
    double total_ms;
    uint64_t calls;
    char *query;  /* normalised text, owned */
    char *sample; /* text to EXPLAIN, owned */
} cand_t;

static void cands_free(cand_t *c, size_t n)
{
    for (size_t i = 0; c && i < n; i++) {
        free(c[i].query);
        free(c[i].sample);
    }
    free(c);
}

/* The heaviest explainable digests, at most @p max. */
static size_t cands_from_digests(cand_t *c, size_t max)
{
    size_t want = max * 4, n = 0;
    px_digest_entry_t *d = calloc(want, sizeof(*d));
    char *sample = malloc(PX_DIGEST_SAMPLE_MAX + 1);
    size_t nd = d && sample ? px_digest_top(d, want, PX_DIGEST_ORDER_TOTAL) : 0;
    for (size_t i = 0; i < nd && n < max; i++) {
        if (px_digest_sample(d[i].id, sample, PX_DIGEST_SAMPLE_MAX + 1) == 0 ||
            !explainable(d[i].query, sample))
            continue;
        c[n].id = d[i].id;
        c[n].total_ms = d[i].total_seconds * 1e3;
        c[n].calls = d[i].calls;
        c[n].query = strdup(d[i].query);
        c[n].sample = strdup(sample);
        if (!c[n].query || !c[n].sample) {
            free(c[n].query);
            free(c[n].sample);
            break;
        }
        n++;
    }
    free(d);
    free(sample);
    return n;
}

/*
 * The heaviest explainable statements of pg_stat_statements (their texts
 * hold $n where the constants were: EXPLAINed as generic plans), at most
 * @p max, one per fingerprint. Call with g_db.mu held and a connection.
 */
static size_t cands_from_pgss(cand_t *c, size_t max, char *err, size_t errcap, bool *installed)
{
    char schema[256], sql[640];
    *installed = false;
    if (!db_extension("pg_stat_statements", schema, sizeof(schema), err, errcap) || !schema[0])
        return 0;
    *installed = true;
    int ver = PQserverVersion(g_db.conn);
    snprintf(sql, sizeof(sql),
             "SELECT query, sum(calls)::float8, sum(%s)::float8 FROM %s.pg_stat_statements "
             "WHERE query IS NOT NULL%s AND dbid = (SELECT oid FROM pg_catalog.pg_database "
             "WHERE datname = pg_catalog.current_database()) "
             "GROUP BY query ORDER BY 3 DESC LIMIT %zu",
             ver >= 130000 ? "total_exec_time" : "total_time", schema,
             ver >= 140000 ? " AND toplevel" : "", max * 8);
    PGresult *r = db_exec(sql, 0, NULL, err, errcap);
    if (!r)
        return 0;
    size_t n = 0;
    char *norm = malloc(PX_DIGEST_TEXT_MAX + 1);
    for (int i = 0; norm && i < PQntuples(r) && n < max; i++) {
        const char *q = PQgetvalue(r, i, 0);
        size_t ql = (size_t)PQgetlength(r, i, 0);
        if (ql > PX_DIGEST_SAMPLE_MAX)
            continue;
        px_digest_normalize(q, ql, norm, PX_DIGEST_TEXT_MAX + 1);
        if (!explainable(norm, q))
            continue;
        uint64_t id = px_digest_fingerprint(q, ql);
        bool dup = false;
        for (size_t k = 0; k < n; k++)
            dup |= c[k].id == id;
        if (dup)
            continue;
        c[n].id = id;
        c[n].calls = (uint64_t)strtod(PQgetvalue(r, i, 1), NULL);
        c[n].total_ms = strtod(PQgetvalue(r, i, 2), NULL);
        c[n].query = strdup(norm);
        c[n].sample = strdup(q);
        if (!c[n].query || !c[n].sample) {
            free(c[n].query);
            free(c[n].sample);
            break;
        }
        n++;
    }
    free(norm);
    PQclear(r);
    return n;
}

static void index_recs(const px_http_request_t *req, px_http_response_t *resp, void *arg)
{
    (void)arg;
    long limit;
    if (!int_param(req, resp, "limit", DBA_RECS_DEFAULT, 1, DBA_RECS_MAX, &limit))
        return;
    char source[32] = "digests";
    int sn = px_http_query_param(req, "source", source, sizeof(source));
    bool from_pgss = sn > 0 && strcmp(source, "pg_stat_statements") == 0;
    if ((sn >= 0 || strstr(req->query, "source=")) && !from_pgss &&
        (sn <= 0 || strcmp(source, "digests") != 0)) {
        px_http_response_error(resp, 400, "source must be digests or pg_stat_statements");
        return;
    }
    uint64_t deadline = now_ms() + PX_DB_ADMIN_BUDGET_MS;
    cand_t *c = calloc((size_t)limit, sizeof(*c));
    analysis_t *an = calloc((size_t)limit, sizeof(*an));
    if (!c || !an) {
        free(c);
        free(an);
        px_http_response_error(resp, 500, "out of memory");
        return;
    }
    size_t nc = from_pgss ? 0 : cands_from_digests(c, (size_t)limit);
    char err[256] = "", hypopg[256] = "";
    int ver = 0;
    pthread_mutex_lock(&g_db.mu);
    bool ok = db_get(err, sizeof(err)) &&
              db_extension("hypopg", hypopg, sizeof(hypopg), err, sizeof(err));
    bool pgss_installed = false;
    if (ok && from_pgss) {
        nc = cands_from_pgss(c, (size_t)limit, err, sizeof(err), &pgss_installed);
        ok = g_db.conn != NULL;
    }
    if (!ok) {
        pthread_mutex_unlock(&g_db.mu);
        char msg[400];
        snprintf(msg, sizeof(msg), "cannot reach the primary for EXPLAIN: %s", err);
        px_http_response_error(resp, 503, msg);
        goto done;
    }
    if (from_pgss && !pgss_installed) {
        pthread_mutex_unlock(&g_db.mu);
        px_http_response_error(resp, 409,
                               "source=pg_stat_statements: the extension is not installed in "
                               "the database the proxy connects to");
        goto done;
    }
    ver = PQserverVersion(g_db.conn);
    size_t na = 0;
    bool out_of_time = false;
    for (size_t i = 0; i < nc; i++) {
        if (now_ms() >= deadline) {
            out_of_time = true;
            break;
        }
        analysis_t *a = &an[na++];
        snprintf(a->query, sizeof(a->query), "%s", c[i].query);
        a->id = c[i].id;
        a->total_ms = c[i].total_ms;
        a->calls = c[i].calls;
        a->cost_before = NAN;
        if (!g_db.conn && !db_get(err, sizeof(err))) {
            snprintf(a->skipped, sizeof(a->skipped), "%s", err);
            break;
        }
        if (!analyse(a, c[i].sample, hypopg, ver) && !g_db.conn)
            px_log_warn("admin", "index recommendations: lost the connection to the primary: %s",
                        a->skipped);
    }
    pthread_mutex_unlock(&g_db.mu);

    px_json_t j;
    json_begin(resp, &j, 200);
    px_json_obj(&j);
    px_json_kv_str(&j, "source", from_pgss ? "pg_stat_statements" : "digests");
    px_json_kv_str(&j, "hypopg", hypopg[0] ? "installed" : "not installed");
    px_json_kv_int(&j, "server_version_num", ver);
    px_json_kv_uint(&j, "analyzed", na);
    px_json_kv_bool(&j, "time_budget_exhausted", out_of_time);
    px_json_key(&j, "recommendations");
    px_json_arr(&j);
    for (size_t i = 0; i < na; i++) {
        const analysis_t *a = &an[i];
        for (int k = 0; k < a->n; k++) {
            const suggestion_t *g = &a->sug[k];
            char hex[24], keys[1100], create[1700];
            digest_hex(hex, sizeof(hex), a->id);
            index_keys_sql(g, keys, sizeof(keys));
            snprintf(create, sizeof(create), "CREATE INDEX CONCURRENTLY ON %s USING %s (%s);",
                     g->table, g->method, keys);
            px_json_obj(&j);
            px_json_kv_str(&j, "query", a->query);
            px_json_kv_str(&j, "digest", hex);
            px_json_kv_uint(&j, "calls", a->calls);
            px_json_kv_double(&j, "total_ms", a->total_ms);
            px_json_kv_str(&j, "table", g->table);
            px_json_key(&j, "columns");
            px_json_arr(&j);
            for (int kk = 0; kk < g->n_keys; kk++)
                px_json_str(&j, g->keys[kk].text);
            px_json_arr_end(&j);
            px_json_kv_str(&j, "method", g->method);
            px_json_kv_str(&j, "create_statement", create);
            px_json_kv_str(&j, "reason", g->reason);
            px_json_kv_double(&j, "cost_before", a->cost_before);
            px_json_kv_double(&j, "cost_after", g->cost_after); /* NaN: null */
            if (g->hypo_error[0])
                px_json_kv_str(&j, "hypopg_error", g->hypo_error);
            px_json_obj_end(&j);
        }
    }
    px_json_arr_end(&j);
    px_json_key(&j, "skipped");
    px_json_arr(&j);
    for (size_t i = 0; i < na; i++)
        if (an[i].n == 0) {
            px_json_obj(&j);
            px_json_kv_str(&j, "query", an[i].query);
            px_json_kv_str(&j, "reason", an[i].skipped[0] ? an[i].skipped : "nothing to suggest");
            px_json_obj_end(&j);
        }
    px_json_arr_end(&j);
    px_json_obj_end(&j);
    json_end(resp);
done:
    cands_free(c, nc);
    free(an);
}

/* ==== GET /api/v1/routing/explain ======================================================= */

static const struct {
    uint32_t bit;
    const char *name;
} g_flag_names[] = {
    {PX_CLS_F_REPLICA_OK, "replica_ok"},
    {PX_CLS_F_CACHEABLE, "cacheable"},
    {PX_CLS_F_HAS_TXN, "has_txn"},
    {PX_CLS_F_READ_ONLY, "read_only"},
    {PX_CLS_F_HAS_SESSION, "has_session"},
    {PX_CLS_F_HAS_WRITE, "has_write"},
    {PX_CLS_F_LOCKING, "locking"},
    {PX_CLS_F_VOLATILE, "volatile"},
    {PX_CLS_F_SIDE_EFFECT, "side_effect"},
    {PX_CLS_F_PIN, "pin"},
    {PX_CLS_F_UNVERIFIED, "unverified"},
    {PX_CLS_F_RELS_TRUNCATED, "rels_truncated"},
    {PX_CLS_F_PARSE_ERROR, "parse_error"},
    {PX_CLS_F_TOO_COMPLEX, "too_complex"},
    {PX_CLS_F_COPY, "copy"},
    {PX_CLS_F_SELECT, "select"},
    {PX_CLS_F_HINT_PRIMARY, "hint_primary"},
    {PX_CLS_F_HINT_REPLICA, "hint_replica"},
    {PX_CLS_F_HINT_CACHE, "hint_cache"},
    {PX_CLS_F_HINT_NOCACHE, "hint_nocache"},
    {PX_CLS_F_DML, "dml"},
    {PX_CLS_F_USER_FUNC, "user_func"},
    {PX_CLS_F_CACHED, "cached_verdict"},
};

static bool mentions_ci(const char *s, size_t n, const char *w)
{
    size_t wl = strlen(w);
    for (size_t i = 0; i + wl <= n; i++)
        if (strncasecmp(s + i, w, wl) == 0)
            return true;
    return false;
}

/* Why the router would keep @p r on the primary in autocommit; NULL: a replica may take it. */
static const char *route_reason(const px_classify_result_t *r, const char *sql, size_t len,
                                bool *read_only_txn)
{
    *read_only_txn = false;
    if (r->cls == PX_CLASS_TXN && r->txn == PX_TXN_BEGIN && (r->flags & PX_CLS_F_READ_ONLY) &&
        r->n_stmts == 1) {
        if (mentions_ci(sql, len, "serializable"))
            return "hot standbys refuse SERIALIZABLE transactions";
        *read_only_txn = true;
        return NULL;
    }
    if (r->flags & PX_CLS_F_HINT_PRIMARY)
        return "the fastnext:primary hint";
    if (!(r->flags & PX_CLS_F_REPLICA_OK)) {
        if (r->flags & PX_CLS_F_PARSE_ERROR)
            return "the parser rejected the text";
        if (r->flags & PX_CLS_F_TOO_COMPLEX)
            return "too long or too deeply nested to classify";
        if (r->n_stmts == 0)
            return "empty text";
        if (r->flags & PX_CLS_F_LOCKING)
            return "locking read (FOR UPDATE / SHARE)";
        if (r->flags & PX_CLS_F_SIDE_EFFECT)
            return "calls a side-effecting function";
        if (r->flags & PX_CLS_F_UNVERIFIED)
            return "calls a function of unknown volatility";
        if (r->flags & PX_CLS_F_VOLATILE)
            return "calls a volatile function";
        switch (r->cls) {
        case PX_CLASS_WRITE:
            return "writes";
        case PX_CLASS_TXN:
            return "transaction control";
        case PX_CLASS_SESSION:
            return "changes session state";
        default:
            return "the classifier cannot vouch that it only reads";
        }
    }
    if (r->flags & PX_CLS_F_PIN)
        return "leaves session state that pins the client to its connection";
    if (r->flags & PX_CLS_F_HAS_TXN)
        return "contains transaction control";
    if (r->flags & PX_CLS_F_HAS_SESSION)
        return "contains a session-state statement";
    return NULL;
}

static void routing_explain(const px_http_request_t *req, px_http_response_t *resp, void *arg)
{
    (void)arg;
    char *sql = malloc(DBA_SQL_MAX);
    px_classify_result_t *r = malloc(sizeof(*r));
    char *norm = malloc(PX_DIGEST_TEXT_MAX + 1);
    if (!sql || !r || !norm) {
        px_http_response_error(resp, 500, "out of memory");
        goto out;
    }
    int n = px_http_query_param(req, "sql", sql, DBA_SQL_MAX);
    if (n <= 0) {
        px_http_response_error(resp, 400,
                               "expected ?sql=<url-encoded statement> (at most 8191 bytes)");
        goto out;
    }
    size_t len = (size_t)n;
    px_classify(sql, len, r);
    px_digest_normalize(sql, len, norm, PX_DIGEST_TEXT_MAX + 1);

    px_config_t *cfg = NULL;
    if (g_sh) {
        pthread_mutex_lock(&g_sh->lock);
        cfg = px_config_ref(g_sh->cfg);
        pthread_mutex_unlock(&g_sh->lock);
    }
    int n_replicas = cfg ? cfg->n_replicas : 0;
    bool cache_enabled = cfg ? cfg->cache_enabled : false;

    px_json_t j;
    json_begin(resp, &j, 200);
    px_json_obj(&j);
    px_json_kv_str(&j, "sql", sql);
    px_json_kv_str(&j, "normalized", norm);
    char hex[24];
    digest_hex(hex, sizeof(hex), px_digest_fingerprint(sql, len));
    px_json_kv_str(&j, "digest", hex);
    px_json_kv_str(&j, "class", px_class_to_str(r->cls));
    px_json_kv_str(&j, "txn", px_txn_kind_to_str(r->txn));
    px_json_kv_str(&j, "session", px_session_kind_to_str(r->session));
    px_json_kv_uint(&j, "statements", r->n_stmts);
    px_json_key(&j, "flags");
    px_json_arr(&j);
    for (size_t i = 0; i < sizeof(g_flag_names) / sizeof(g_flag_names[0]); i++)
        if (r->flags & g_flag_names[i].bit)
            px_json_str(&j, g_flag_names[i].name);
    px_json_arr_end(&j);

    /* relations, with what the cache's catalog knows of them */
    px_json_key(&j, "relations");
    px_json_arr(&j);
    for (unsigned i = 0; i < r->n_rels; i++) {
        px_json_obj(&j);
        px_json_kv_str(&j, "name", px_classify_rel(r, i));
        px_json_kv_bool(&j, "read", r->rel_flags[i] & PX_REL_READ);
        px_json_kv_bool(&j, "write", r->rel_flags[i] & PX_REL_WRITE);
        px_cache_rel_t rel;
        px_json_key(&j, "cache_catalog");
        if (px_cache_catalog_lookup(px_classify_rel(r, i), &rel)) {
            px_json_obj(&j);
            px_json_kv_bool(&j, "cacheable", rel.flags & PX_CACHE_REL_CACHEABLE);
            px_json_kv_bool(&j, "view", rel.flags & PX_CACHE_REL_VIEW);
            px_json_kv_bool(&j, "side_effects", rel.flags & PX_CACHE_REL_SIDE);
            px_json_kv_str(&j, "int_pk", rel.flags & PX_CACHE_REL_INT_PK ? rel.pk_col : NULL);
            px_json_key(&j, "bases");
            px_json_arr(&j);
            for (int b = 0; b < rel.n_bases; b++)
                px_json_str(&j, rel.bases[b]);
            px_json_arr_end(&j);
            px_json_obj_end(&j);
        } else {
            px_json_null(&j);
        }
        px_json_obj_end(&j);
    }
    px_json_arr_end(&j);
    px_json_kv_bool(&j, "relations_truncated", r->flags & PX_CLS_F_RELS_TRUNCATED);

    px_json_kv_uint(&j, "key_rows", r->key_rows);
    px_json_key(&j, "keys");
    px_json_arr(&j);
    for (unsigned i = 0; i < r->n_keys; i++) {
        const px_classify_key_t *k = &r->keys[i];
        px_json_obj(&j);
        px_json_kv_str(&j, "relation", k->rel < r->n_rels ? px_classify_rel(r, k->rel) : NULL);
        px_json_kv_str(&j, "column", px_classify_key_col(r, i));
        if (k->is_param)
            px_json_kv_uint(&j, "param", k->param);
        else
            px_json_kv_int(&j, "value", k->value);
        px_json_kv_uint(&j, "row", k->row);
        px_json_obj_end(&j);
    }
    px_json_arr_end(&j);

    px_json_key(&j, "hints");
    px_json_obj(&j);
    px_json_kv_bool(&j, "primary", r->flags & PX_CLS_F_HINT_PRIMARY);
    px_json_kv_bool(&j, "replica", r->flags & PX_CLS_F_HINT_REPLICA);
    px_json_kv_bool(&j, "cache", r->flags & PX_CLS_F_HINT_CACHE);
    px_json_kv_bool(&j, "nocache", r->flags & PX_CLS_F_HINT_NOCACHE);
    px_json_key(&j, "cache_ttl");
    if (r->cache_ttl >= 0)
        px_json_int(&j, r->cache_ttl);
    else
        px_json_null(&j);
    px_json_obj_end(&j);

    /* routing, as px_route would decide it for a client in autocommit */
    bool rot = false;
    const char *why = route_reason(r, sql, len, &rot);
    uint32_t mask = px_health_usable_mask();
    int usable = 0;
    for (int i = 0; i < n_replicas && i < 32; i++)
        usable += (mask >> i) & 1u;
    px_json_key(&j, "routing");
    px_json_obj(&j);
    px_json_kv_bool(&j, "replica_eligible", why == NULL);
    px_json_kv_bool(&j, "read_only_transaction", rot);
    const char *target, *because;
    if (why) {
        target = "primary";
        because = why;
    } else if (n_replicas == 0) {
        target = "primary";
        because = "no read replicas are configured (POSTGRES_READ_REPLICAS)";
    } else if (usable == 0) {
        target = "primary";
        because = "read-only, but no replica is usable now (down, or lagging more than "
                  "READ_REPLICA_MAX_LAG)";
    } else {
        target = "replica";
        because = rot ? "BEGIN READ ONLY: the transaction runs on the least-loaded usable replica"
                      : "read-only in autocommit: the least-loaded usable replica";
    }
    px_json_kv_str(&j, "autocommit", target);
    px_json_kv_str(&j, "reason", because);
    px_json_kv_str(&j, "note",
                   "inside a read-write transaction everything runs on the primary; after a "
                   "client's own commit its reads wait for a replica that has replayed it");
    px_json_key(&j, "replicas");
    px_json_obj(&j);
    px_json_kv_int(&j, "configured", n_replicas);
    px_json_kv_int(&j, "usable", usable);
    char maskhex[16];
    snprintf(maskhex, sizeof(maskhex), "0x%x", (unsigned)mask);
    px_json_kv_str(&j, "usable_mask", maskhex);
    px_member_status_t *ms = calloc(PX_HEALTH_MAX_MEMBERS, sizeof(*ms));
    int nm = ms ? px_health_members(ms, PX_HEALTH_MAX_MEMBERS) : 0;
    px_json_key(&j, "members");
    px_json_arr(&j);
    for (int i = 1; i < nm; i++) {
        px_json_obj(&j);
        px_json_kv_str(&j, "host", ms[i].host);
        px_json_kv_uint(&j, "port", ms[i].port);
        px_json_kv_bool(&j, "up", ms[i].up);
        px_json_kv_bool(&j, "usable", (mask >> (i - 1)) & 1u);
        px_json_kv_double(&j, "lag_seconds", ms[i].lag_seconds);
        px_json_obj_end(&j);
    }
    px_json_arr_end(&j);
    free(ms);
    px_json_obj_end(&j);
    px_json_obj_end(&j);

    /* caching, as cacheflow would decide it */
    px_json_key(&j, "cache");
    px_json_obj(&j);
    px_json_kv_bool(&j, "enabled", cache_enabled);
    px_json_key(&j, "reasons");
    px_json_arr(&j);
    int nwhy = 0;
#define WHY(s) (px_json_str(&j, (s)), nwhy++)
    if (!cache_enabled)
        WHY("CACHE_ENABLED is off");
    if (r->cls != PX_CLASS_READ)
        WHY("not a read");
    if (!(r->flags & PX_CLS_F_CACHEABLE)) {
        if (r->flags & PX_CLS_F_HINT_NOCACHE)
            WHY("the fastnext:nocache hint");
        else if (r->flags & PX_CLS_F_VOLATILE)
            WHY("calls a volatile, time- or session-dependent function");
        else if (r->cls == PX_CLASS_READ)
            WHY("not one plain SELECT (or it reads system catalogs)");
    }
    if (r->n_stmts != 1)
        WHY("not exactly one statement");
    if (r->flags & PX_CLS_F_USER_FUNC)
        WHY("calls a user-defined function");
    if (r->flags & PX_CLS_F_RELS_TRUNCATED)
        WHY("names too many relations");
    if (r->flags & PX_CLS_F_LOCKING)
        WHY("locking read");
    if (r->flags & (PX_CLS_F_PIN | PX_CLS_F_HAS_SESSION | PX_CLS_F_HAS_TXN | PX_CLS_F_HAS_WRITE))
        WHY("writes, or touches transaction or session state");
    if (mentions_ci(sql, len, "tablesample"))
        WHY("TABLESAMPLE");
    if (!px_cache_catalog_ready()) {
        WHY("the relation catalog has not been loaded yet");
    } else {
        bool refreshed = false;
        for (unsigned i = 0; i < r->n_rels; i++) {
            px_cache_rel_t rel;
            char msg[160];
            if (!px_cache_catalog_lookup(px_classify_rel(r, i), &rel)) {
                /* as a session would: new tables reach the catalog on its next load */
                if (!refreshed)
                    px_health_refresh_catalog();
                refreshed = true;
                snprintf(msg, sizeof(msg),
                         "relation %s is not in the cache's catalog (a reload was requested)",
                         px_classify_rel(r, i));
                WHY(msg);
            } else if (!(rel.flags & PX_CACHE_REL_CACHEABLE) || rel.n_bases == 0) {
                snprintf(msg, sizeof(msg),
                         "relation %s is not cacheable (temporary, unlogged, foreign, or too "
                         "many base tables)",
                         px_classify_rel(r, i));
                WHY(msg);
            }
        }
    }
#undef WHY
    px_json_arr_end(&j);
    px_json_kv_bool(&j, "would_cache", nwhy == 0);
    if (nwhy == 0 && r->cache_ttl >= 0)
        px_json_kv_int(&j, "ttl", r->cache_ttl);
    px_json_kv_str(&j, "note",
                   "only in autocommit, for clients that are not pinned; extended-protocol units "
                   "are keyed on their bound values");
    px_json_obj_end(&j);

    px_json_obj_end(&j);
    json_end(resp);
    if (cfg)
        px_config_unref(cfg);
out:
    free(sql);
    free(r);
    free(norm);
}

/* ==== registration ====================================================================== */

void px_db_admin_register(struct px_shared *sh)
{
    g_sh = sh;
    px_admin_set_handler(PX_ADMIN_EP_SLOW_QUERIES, slow_queries, NULL);
    px_admin_set_handler(PX_ADMIN_EP_INDEX_RECOMMENDATIONS, index_recs, NULL);
    px_admin_set_handler(PX_ADMIN_EP_ROUTING_EXPLAIN, routing_explain, NULL);
}

void px_db_admin_shutdown(void)
{
    pthread_mutex_lock(&g_db.mu);
    db_drop();
    pthread_mutex_unlock(&g_db.mu);
}
