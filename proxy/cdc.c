/*
 * Result-cache invalidation from the primary's logical decoding stream (see
 * px_cdc.h). One thread, one blocking-with-timeouts libpq replication
 * connection; everything it does to the cache is px_cache_tag_bump.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "px.h"
#include "px_cache.h"
#include "px_cdc.h"
#include "px_health.h"

#define CDC_CONNECT_TIMEOUT_S 3
#define CDC_RETRY_MS          500   /* after losing a stream that was up */
#define CDC_UNAVAILABLE_RETRY 30000 /* after the server said it cannot */
#define CDC_FEEDBACK_MS       1000  /* standby status updates */
#define CDC_POLL_MS           200   /* how often the thread looks at its stop flag */
#define CDC_MAX_TXN_TAGS      256   /* more in one transaction: invalidate everything */

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_t g_thread;
static bool g_running;
static atomic_bool g_stop;
static _Atomic int g_state = PX_CDC_OFF;
static _Atomic uint64_t g_txns, g_changes, g_bumps, g_connects;
static pthread_mutex_t g_err_lock = PTHREAD_MUTEX_INITIALIZER;
static char g_err[160];

const char *px_cdc_state_str(px_cdc_state_t s)
{
    switch (s) {
    case PX_CDC_OFF:
        return "off";
    case PX_CDC_STARTING:
        return "starting";
    case PX_CDC_UP:
        return "up";
    case PX_CDC_DOWN:
        return "down";
    case PX_CDC_UNAVAILABLE:
        return "unavailable";
    }
    return "?";
}

bool px_cdc_serving(void)
{
    int s = atomic_load_explicit(&g_state, memory_order_acquire);
    if (s == PX_CDC_OFF || s == PX_CDC_UP || s == PX_CDC_UNAVAILABLE)
        return true;
    /* starting, or lost: writes may go unseen, unless nothing can write */
    return !px_health_primary_up();
}

void px_cdc_get_stats(px_cdc_stats_t *out)
{
    memset(out, 0, sizeof *out);
    out->state = (px_cdc_state_t)atomic_load(&g_state);
    out->transactions = atomic_load(&g_txns);
    out->changes = atomic_load(&g_changes);
    out->bumps = atomic_load(&g_bumps);
    out->connects = atomic_load(&g_connects);
    pthread_mutex_lock(&g_err_lock);
    memcpy(out->last_error, g_err, sizeof out->last_error);
    pthread_mutex_unlock(&g_err_lock);
}

/* ---- test_decoding lines ------------------------------------------------------------ */

typedef struct cur {
    const char *p, *end;
} cur_t;

static bool at(const cur_t *c, const char *s)
{
    size_t n = strlen(s);
    return (size_t)(c->end - c->p) >= n && memcmp(c->p, s, n) == 0;
}

/* An identifier as quote_identifier writes it, unquoted into @p out. */
static bool read_ident(cur_t *c, char *out, size_t cap)
{
    size_t n = 0;
    if (c->p < c->end && *c->p == '"') {
        c->p++;
        for (;;) {
            if (c->p >= c->end)
                return false;
            if (*c->p == '"') {
                if (c->p + 1 < c->end && c->p[1] == '"') {
                    c->p++;
                } else {
                    c->p++;
                    break;
                }
            }
            if (n + 1 >= cap)
                return false;
            out[n++] = *c->p++;
        }
    } else {
        while (c->p < c->end && *c->p != '.' && *c->p != ':' && *c->p != '[' && *c->p != ' ') {
            if (n + 1 >= cap)
                return false;
            out[n++] = *c->p++;
        }
        if (n == 0)
            return false;
    }
    out[n] = '\0';
    return true;
}

/* A column value: 'quoted' (quotes doubled inside) or a bare word. */
static bool read_value(cur_t *c, const char **v, size_t *vn, bool *quoted)
{
    *quoted = c->p < c->end && *c->p == '\'';
    if (*quoted) {
        c->p++;
        *v = c->p;
        for (;;) {
            if (c->p >= c->end)
                return false;
            if (*c->p == '\'') {
                if (c->p + 1 < c->end && c->p[1] == '\'') {
                    c->p += 2;
                    continue;
                }
                *vn = (size_t)(c->p - *v);
                c->p++;
                return true;
            }
            c->p++;
        }
    }
    *v = c->p;
    while (c->p < c->end && *c->p != ' ')
        c->p++;
    *vn = (size_t)(c->p - *v);
    return true;
}

static bool parse_int64(const char *s, size_t n, int64_t *out)
{
    char buf[24];
    if (n == 0 || n >= sizeof buf)
        return false;
    memcpy(buf, s, n);
    buf[n] = '\0';
    char *e;
    errno = 0;
    long long v = strtoll(buf, &e, 10);
    if (errno != 0 || *e != '\0' || (buf[0] != '-' && (buf[0] < '0' || buf[0] > '9')))
        return false;
    *out = (int64_t)v;
    return true;
}

px_cdc_line_t px_cdc_parse_line(const char *line, size_t len, const char *key_col,
                                px_cdc_change_t *out)
{
    memset(out, 0, sizeof *out);
    cur_t c = {line, line + len};
    if (at(&c, "COMMIT"))
        return PX_CDC_LINE_COMMIT;
    if (!at(&c, "table "))
        return PX_CDC_LINE_OTHER;
    c.p += 6;
    char part[128];
    if (!read_ident(&c, part, sizeof part))
        return PX_CDC_LINE_BAD;
    if (c.p < c.end && *c.p == '.') {
        c.p++;
        if (!read_ident(&c, part, sizeof part))
            return PX_CDC_LINE_BAD;
    }
    if (strlen(part) >= sizeof out->relname || !at(&c, ": "))
        return PX_CDC_LINE_BAD;
    strcpy(out->relname, part);
    c.p += 2;
    if (!at(&c, "INSERT:") && !at(&c, "UPDATE:") && !at(&c, "DELETE:") && !at(&c, "TRUNCATE:"))
        return PX_CDC_LINE_BAD;
    if (key_col == NULL || at(&c, "TRUNCATE:")) {
        out->n_keys = -1;
        return PX_CDC_LINE_CHANGE;
    }
    c.p += 7;
    bool seen = false;
    while (c.p < c.end) {
        if (*c.p == ' ') {
            c.p++;
            continue;
        }
        if (at(&c, "old-key:") || at(&c, "new-tuple:")) {
            c.p += at(&c, "old-key:") ? 8 : 10;
            continue;
        }
        if (at(&c, "(no-tuple-data)")) {
            c.p += 15;
            continue;
        }
        char col[128];
        if (!read_ident(&c, col, sizeof col) || c.p >= c.end || *c.p != '[')
            goto whole_table;
        /* the type, up to "]:" (array types end in "[]") */
        const char *close = NULL;
        for (const char *q = c.p; q + 1 < c.end; q++)
            if (q[0] == ']' && q[1] == ':') {
                close = q;
                break;
            }
        if (close == NULL)
            goto whole_table;
        c.p = close + 2;
        const char *v;
        size_t vn;
        bool quoted;
        if (!read_value(&c, &v, &vn, &quoted))
            goto whole_table;
        if (strcmp(col, key_col) != 0)
            continue;
        int64_t k;
        if (quoted || !parse_int64(v, vn, &k))
            goto whole_table; /* null, unchanged-toast-datum, not an integer */
        seen = true;
        bool dup = false;
        for (int i = 0; i < out->n_keys; i++)
            dup |= out->keys[i] == k;
        if (dup)
            continue;
        if (out->n_keys >= PX_CDC_MAX_KEYS)
            goto whole_table;
        out->keys[out->n_keys++] = k;
    }
    if (!seen)
        goto whole_table;
    return PX_CDC_LINE_CHANGE;
whole_table:
    out->n_keys = -1;
    return PX_CDC_LINE_CHANGE;
}

/* ---- the stream --------------------------------------------------------------------- */

typedef struct cdc {
    px_shared_t *sh;
    char *host, *db, *user, *password;
    uint16_t port;
    bool enabled;
    PGconn *conn;
    char slot[48];
    uint64_t received; /* end of the last WAL data handled */
    uint64_t next_feedback_ms;
    /* the transaction being read */
    px_tag_t tags[CDC_MAX_TXN_TAGS];
    int n_tags;
    bool all; /* invalidate everything at its commit */
    bool logged_unavailable;
} cdc_t;

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void set_error(const char *what, const char *detail)
{
    pthread_mutex_lock(&g_err_lock);
    snprintf(g_err, sizeof g_err, "%s%s%s", what, detail && *detail ? ": " : "",
             detail ? detail : "");
    size_t n = strlen(g_err);
    while (n > 0 && (g_err[n - 1] == '\n' || g_err[n - 1] == ' '))
        g_err[--n] = '\0';
    pthread_mutex_unlock(&g_err_lock);
}

static void free_secret(char **p)
{
    if (*p) {
        OPENSSL_cleanse(*p, strlen(*p));
        free(*p);
        *p = NULL;
    }
}

static void read_config(cdc_t *C)
{
    free(C->host);
    free(C->db);
    free(C->user);
    free_secret(&C->password);
    C->host = C->db = C->user = NULL;
    C->enabled = false;
    pthread_mutex_lock(&C->sh->lock);
    const px_config_t *cfg = C->sh->cfg;
    if (cfg != NULL && cfg->cache_enabled && cfg->cache_wal_invalidation) {
        C->enabled = true;
        C->host = strdup(cfg->postgres_server ? cfg->postgres_server : "127.0.0.1");
        C->port = cfg->postgres_port;
        /* the database whose catalog the cache holds (as the health prober) */
        C->db = strdup(px_config_app_db(cfg));
        if (cfg->postgres_user)
            C->user = strdup(cfg->postgres_user);
        if (cfg->postgres_password)
            C->password = strdup(cfg->postgres_password);
    }
    pthread_mutex_unlock(&C->sh->lock);
    if (C->enabled && C->user && !C->password &&
        !px_shared_plain_password(C->sh, C->user, &C->password))
        C->enabled = false;
    if (C->enabled && (!C->host || !C->db))
        C->enabled = false;
}

static void disconnect(cdc_t *C)
{
    if (C->conn)
        PQfinish(C->conn);
    C->conn = NULL;
}

/* Errors that say this server cannot stream for us: wait long before trying again. */
static bool cannot_stream(const char *msg)
{
    return strstr(msg, "wal_level") || strstr(msg, "permission denied") ||
           strstr(msg, "must be superuser") || strstr(msg, "replication role") ||
           strstr(msg, "max_replication_slots") || strstr(msg, "max_wal_senders") ||
           strstr(msg, "all replication slots are in use") ||
           strstr(msg, "could not access file \"test_decoding\"") ||
           strstr(msg, "no pg_hba.conf entry");
}

/* Wait for @p fd to be ready for @p events, up to @p ms; false once told to stop. */
static bool wait_fd(int fd, short events, int ms)
{
    if (atomic_load(&g_stop))
        return false;
    struct pollfd pfd = {.fd = fd, .events = events};
    if (poll(&pfd, 1, ms) < 0 && errno != EINTR)
        return false;
    return !atomic_load(&g_stop);
}

/* Connect without blocking the thread's stop flag; NULL-safe result in C->conn. */
static bool connect_async(cdc_t *C, const char *const *kw, const char *const *val)
{
    C->conn = PQconnectStartParams(kw, val, 0);
    if (C->conn == NULL || PQstatus(C->conn) == CONNECTION_BAD)
        return false;
    uint64_t deadline = now_ms() + CDC_CONNECT_TIMEOUT_S * 1000u;
    PostgresPollingStatusType st = PGRES_POLLING_WRITING;
    while (st != PGRES_POLLING_OK) {
        if (st == PGRES_POLLING_FAILED || now_ms() >= deadline)
            return false;
        if (!wait_fd(PQsocket(C->conn), st == PGRES_POLLING_READING ? POLLIN : POLLOUT,
                     CDC_POLL_MS))
            return false;
        st = PQconnectPoll(C->conn);
    }
    return true;
}

/* Run one command, waiting with the stop flag in view; NULL when stopped or broken. */
static PGresult *exec_async(cdc_t *C, const char *sql)
{
    if (!PQsendQuery(C->conn, sql))
        return NULL;
    PGresult *last = NULL;
    for (;;) {
        while (PQisBusy(C->conn)) {
            if (!wait_fd(PQsocket(C->conn), POLLIN, CDC_POLL_MS) || !PQconsumeInput(C->conn)) {
                PQclear(last);
                return NULL;
            }
        }
        PGresult *r = PQgetResult(C->conn);
        if (r == NULL)
            return last;
        ExecStatusType st = PQresultStatus(r);
        PQclear(last);
        last = r;
        if (st == PGRES_COPY_BOTH || st == PGRES_COPY_OUT || st == PGRES_COPY_IN)
            return last; /* the stream starts: no end of results before it ends */
    }
}

/* Connect, create the slot and start streaming; false with the error set. */
static bool open_stream(cdc_t *C, bool *unavailable)
{
    *unavailable = false;
    char port[8], timeout[8];
    snprintf(port, sizeof port, "%u", (unsigned)C->port);
    snprintf(timeout, sizeof timeout, "%d", CDC_CONNECT_TIMEOUT_S);
    const char *kw[16], *val[16];
    int k = 0;
#define KV(key, v) (kw[k] = (key), val[k] = (v), k++)
    KV("host", C->host);
    KV("port", port);
    KV("dbname", C->db);
    if (C->user)
        KV("user", C->user);
    if (C->password)
        KV("password", C->password);
    KV("replication", "database");
    KV("connect_timeout", timeout);
    KV("application_name", "fastnext-proxy cache invalidation");
    KV("keepalives", "1");
    KV("keepalives_idle", "5");
    KV("keepalives_interval", "2");
    KV("keepalives_count", "2");
    KV("tcp_user_timeout", "5000");
    KV("gssencmode", "disable");
#undef KV
    kw[k] = val[k] = NULL;
    if (!connect_async(C, kw, val)) {
        const char *m = C->conn == NULL                       ? "out of memory"
                        : atomic_load(&g_stop)                ? "stopping"
                        : PQstatus(C->conn) == CONNECTION_BAD ? PQerrorMessage(C->conn)
                                                              : "timed out";
        *unavailable = cannot_stream(m);
        set_error("connect failed", m);
        disconnect(C);
        return false;
    }
    unsigned char rnd[6];
    if (RAND_bytes(rnd, sizeof rnd) != 1)
        memset(rnd, 0, sizeof rnd);
    snprintf(C->slot, sizeof C->slot, "fastnext_%02x%02x%02x%02x%02x%02x", rnd[0], rnd[1], rnd[2],
             rnd[3], rnd[4], rnd[5]);
    char sql[256];
    snprintf(sql, sizeof sql,
             "CREATE_REPLICATION_SLOT %s TEMPORARY LOGICAL test_decoding NOEXPORT_SNAPSHOT",
             C->slot);
    PGresult *r = exec_async(C, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        const char *m = r ? PQresultErrorMessage(r) : PQerrorMessage(C->conn);
        *unavailable = cannot_stream(m);
        set_error("creating a logical replication slot failed", m);
        PQclear(r);
        disconnect(C);
        return false;
    }
    PQclear(r);
    snprintf(sql, sizeof sql,
             "START_REPLICATION SLOT %s LOGICAL 0/0 (\"skip-empty-xacts\" '1', "
             "\"include-xids\" '0', \"include-timestamp\" '0')",
             C->slot);
    r = exec_async(C, sql);
    if (PQresultStatus(r) != PGRES_COPY_BOTH) {
        set_error("starting the replication stream failed",
                  r ? PQresultErrorMessage(r) : PQerrorMessage(C->conn));
        PQclear(r);
        disconnect(C);
        return false;
    }
    PQclear(r);
    return true;
}

static void put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (unsigned char)(v & 0xff);
        v >>= 8;
    }
}

static uint64_t get_u64(const char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | (unsigned char)p[i];
    return v;
}

/* Standby status update: everything received is flushed and applied. */
static bool send_feedback(cdc_t *C, bool reply)
{
    unsigned char m[34];
    m[0] = 'r';
    put_u64(m + 1, C->received);
    put_u64(m + 9, C->received);
    put_u64(m + 17, C->received);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    /* microseconds since 2000-01-01 */
    uint64_t us = ((uint64_t)ts.tv_sec - 946684800u) * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
    put_u64(m + 25, us);
    m[33] = reply ? 1 : 0;
    if (PQputCopyData(C->conn, (const char *)m, sizeof m) != 1 || PQflush(C->conn) != 0) {
        set_error("sending feedback failed", PQerrorMessage(C->conn));
        return false;
    }
    C->next_feedback_ms = now_ms() + CDC_FEEDBACK_MS;
    return true;
}

static void on_change(cdc_t *C, const char *line, size_t len)
{
    px_cdc_change_t ch;
    px_cdc_line_t kind = px_cdc_parse_line(line, len, NULL, &ch);
    if (kind == PX_CDC_LINE_BAD) {
        C->all = true;
        return;
    }
    atomic_fetch_add_explicit(&g_changes, 1, memory_order_relaxed);
    px_cache_rel_t rel;
    if (!px_cache_catalog_lookup(ch.relname, &rel) || rel.n_bases == 0)
        return; /* not in the catalog: nothing cached reads it */
    bool keyed = (rel.flags & PX_CACHE_REL_INT_PK) && rel.pk_col[0] &&
                 px_cdc_parse_line(line, len, rel.pk_col, &ch) == PX_CDC_LINE_CHANGE &&
                 ch.n_keys > 0;
    /* by row while the transaction's tags leave room for its tables, else by table */
    if ((keyed &&
         px_cache_tags_add_write(C->tags, &C->n_tags, CDC_MAX_TXN_TAGS - PX_CACHE_MAX_BASES, &rel,
                                 ch.keys, ch.n_keys)) ||
        px_cache_tags_add_write(C->tags, &C->n_tags, CDC_MAX_TXN_TAGS, &rel, NULL, 0))
        return;
    C->all = true;
}

static void on_commit(cdc_t *C)
{
    atomic_fetch_add_explicit(&g_txns, 1, memory_order_relaxed);
    uint64_t gen = px_health_generation();
    if (C->all) {
        px_cache_bump_all(gen);
        atomic_fetch_add_explicit(&g_bumps, 1, memory_order_relaxed);
    } else {
        for (int i = 0; i < C->n_tags; i++)
            px_cache_tag_bump(C->tags[i], gen);
        atomic_fetch_add_explicit(&g_bumps, (uint64_t)C->n_tags, memory_order_relaxed);
    }
    C->n_tags = 0;
    C->all = false;
}

/* One CopyData message from the server; false when the stream is broken. */
static bool on_message(cdc_t *C, const char *buf, int n)
{
    if (n >= 25 && buf[0] == 'w') {
        uint64_t start = get_u64(buf + 1);
        const char *line = buf + 25;
        size_t len = (size_t)n - 25;
        if (px_cdc_parse_line(line, len, NULL, &(px_cdc_change_t){0}) == PX_CDC_LINE_COMMIT)
            on_commit(C);
        else if (len > 6 && memcmp(line, "table ", 6) == 0)
            on_change(C, line, len);
        if (start > C->received)
            C->received = start;
        return true;
    }
    if (n >= 18 && buf[0] == 'k') {
        uint64_t end = get_u64(buf + 1);
        /* between transactions everything up to the server's end is seen */
        if (C->n_tags == 0 && !C->all && end > C->received)
            C->received = end;
        if (buf[17])
            return send_feedback(C, false);
        return true;
    }
    return true;
}

/* Read the stream until it breaks or the thread is told to stop. */
static void stream(cdc_t *C)
{
    C->next_feedback_ms = now_ms() + CDC_FEEDBACK_MS;
    while (!atomic_load(&g_stop)) {
        char *buf = NULL;
        int n = PQgetCopyData(C->conn, &buf, 1);
        if (n > 0) {
            bool ok = on_message(C, buf, n);
            PQfreemem(buf);
            if (!ok)
                return;
            continue;
        }
        if (n == -1) {
            PGresult *r = PQgetResult(C->conn);
            set_error("the replication stream ended", r ? PQresultErrorMessage(r) : "");
            PQclear(r);
            return;
        }
        if (n == -2) {
            set_error("reading the replication stream failed", PQerrorMessage(C->conn));
            return;
        }
        uint64_t now = now_ms();
        if (now >= C->next_feedback_ms && !send_feedback(C, false))
            return;
        struct pollfd pfd = {.fd = PQsocket(C->conn), .events = POLLIN};
        int wait = (int)(C->next_feedback_ms > now ? C->next_feedback_ms - now : 0);
        if (wait > CDC_POLL_MS)
            wait = CDC_POLL_MS;
        if (poll(&pfd, 1, wait) < 0 && errno != EINTR) {
            set_error("poll failed", strerror(errno));
            return;
        }
        if (PQconsumeInput(C->conn) != 1) {
            set_error("reading the replication stream failed", PQerrorMessage(C->conn));
            return;
        }
        /* the configuration may have turned it off */
        pthread_mutex_lock(&C->sh->lock);
        bool on = C->sh->cfg && C->sh->cfg->cache_enabled && C->sh->cfg->cache_wal_invalidation;
        pthread_mutex_unlock(&C->sh->lock);
        if (!on)
            return;
    }
}

/* Sleep up to @p ms, waking early when told to stop. */
static void nap(uint64_t ms)
{
    uint64_t until = now_ms() + ms;
    while (!atomic_load(&g_stop)) {
        uint64_t now = now_ms();
        if (now >= until)
            return;
        uint64_t d = until - now < 100 ? until - now : 100;
        struct timespec ts = {0, (long)d * 1000000L};
        nanosleep(&ts, NULL);
    }
}

static void *cdc_main(void *arg)
{
    cdc_t *C = calloc(1, sizeof *C);
    if (!C)
        return NULL;
    C->sh = arg;
    while (!atomic_load(&g_stop)) {
        read_config(C);
        if (!C->enabled) {
            atomic_store(&g_state, PX_CDC_OFF);
            set_error("", NULL);
            nap(1000);
            continue;
        }
        if (atomic_load(&g_state) == PX_CDC_OFF)
            atomic_store(&g_state, PX_CDC_STARTING);
        bool unavailable;
        if (!open_stream(C, &unavailable)) {
            int s = atomic_load(&g_state);
            if (unavailable) {
                if (!C->logged_unavailable) {
                    C->logged_unavailable = true;
                    pthread_mutex_lock(&g_err_lock);
                    px_log_warn("cache",
                                "writes that bypass the proxy are invalidated only by "
                                "CACHE_DEFAULT_TTL: %s (logical decoding needs wal_level=logical "
                                "and a role with REPLICATION)",
                                g_err);
                    pthread_mutex_unlock(&g_err_lock);
                }
                atomic_store(&g_state, PX_CDC_UNAVAILABLE);
                nap(CDC_UNAVAILABLE_RETRY);
            } else {
                if (s == PX_CDC_UP)
                    atomic_store(&g_state, PX_CDC_DOWN);
                nap(CDC_RETRY_MS);
            }
            continue;
        }
        /* writes made while no slot existed were not seen */
        px_cache_bump_all(px_health_generation());
        C->n_tags = 0;
        C->all = false;
        C->received = 0;
        set_error("", NULL);
        atomic_fetch_add(&g_connects, 1);
        if (atomic_load(&g_state) != PX_CDC_UP)
            px_log_info("cache", "following the primary's logical decoding stream (slot %s)",
                        C->slot);
        atomic_store_explicit(&g_state, PX_CDC_UP, memory_order_release);
        C->logged_unavailable = false;
        stream(C);
        disconnect(C);
        if (!atomic_load(&g_stop)) {
            atomic_store(&g_state, PX_CDC_DOWN);
            px_health_poke(); /* is the primary gone (then hits may be served)? */
            pthread_mutex_lock(&g_err_lock);
            px_log_warn("cache", "lost the logical decoding stream: %s", g_err);
            pthread_mutex_unlock(&g_err_lock);
            nap(CDC_RETRY_MS);
        }
    }
    disconnect(C);
    free(C->host);
    free(C->db);
    free(C->user);
    free_secret(&C->password);
    free(C);
    return NULL;
}

int px_cdc_start(px_shared_t *sh)
{
    pthread_mutex_lock(&g_lock);
    if (g_running) {
        pthread_mutex_unlock(&g_lock);
        return -EALREADY;
    }
    atomic_store(&g_stop, false);
    /* until the first attempt is over the cache does not serve */
    pthread_mutex_lock(&sh->lock);
    bool on = sh->cfg && sh->cfg->cache_enabled && sh->cfg->cache_wal_invalidation;
    pthread_mutex_unlock(&sh->lock);
    atomic_store(&g_state, on ? PX_CDC_STARTING : PX_CDC_OFF);
    int rc = pthread_create(&g_thread, NULL, cdc_main, sh);
    if (rc != 0) {
        atomic_store(&g_state, PX_CDC_OFF);
        pthread_mutex_unlock(&g_lock);
        return -rc;
    }
    g_running = true;
    pthread_mutex_unlock(&g_lock);
    return 0;
}

void px_cdc_stop(void)
{
    pthread_mutex_lock(&g_lock);
    if (!g_running) {
        pthread_mutex_unlock(&g_lock);
        return;
    }
    atomic_store(&g_stop, true);
    pthread_t th = g_thread;
    pthread_mutex_unlock(&g_lock);
    pthread_join(th, NULL);
    pthread_mutex_lock(&g_lock);
    g_running = false;
    pthread_mutex_unlock(&g_lock);
}
