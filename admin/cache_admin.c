/*
 * The result cache on the admin port: GET /api/v1/cache/stats, POST
 * /api/v1/cache/invalidate, DELETE /api/v1/cache and the fastnext_cache_*
 * Prometheus families. Runs on the admin thread; everything it reads is
 * atomic in cache.c.
 */
#include <ctype.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "px.h"
#include "px_admin.h"
#include "px_cache.h"
#include "px_cdc.h"
#include "px_health.h"
#include "px_metrics.h"

static px_shared_t *g_sh;
static _Atomic uint64_t g_warm_ok, g_warm_failed, g_warm_runs;
static _Atomic int g_warm_running;

static double ratio(uint64_t hits, uint64_t misses)
{
    return hits + misses ? (double)hits / (double)(hits + misses) : 0.0;
}

static void cache_stats(px_json_t *j, void *arg)
{
    (void)arg;
    px_cache_stats_t st;
    px_cache_config_t cfg;
    px_cachesync_stats_t ss;
    px_cache_stats(&st);
    px_cache_get_config(&cfg);
    px_cachesync_stats(&ss);
    uint64_t hits = st.hits + st.l2_hits;
    px_json_kv_double(j, "hit_ratio", ratio(hits, st.misses));
    px_json_kv_uint(j, "total_hits", hits);
    px_json_kv_uint(j, "total_misses", st.misses);
    px_json_kv_uint(j, "memory_usage", st.bytes);
    px_json_kv_uint(j, "entries", st.entries);
    px_json_kv_uint(j, "invalidations", st.bumps);
    px_json_kv_bool(j, "catalog_loaded", px_cache_catalog_ready());
    px_json_kv_bool(j, "serving", px_cache_synced() && px_cdc_serving());
    px_cdc_stats_t cs;
    px_cdc_get_stats(&cs);
    px_json_key(j, "wal_invalidation");
    px_json_obj(j);
    px_json_kv_str(j, "state", px_cdc_state_str(cs.state));
    px_json_kv_uint(j, "transactions", cs.transactions);
    px_json_kv_uint(j, "changes", cs.changes);
    px_json_kv_uint(j, "bumps", cs.bumps);
    px_json_kv_uint(j, "connects", cs.connects);
    px_json_kv_str(j, "last_error", cs.last_error);
    px_json_obj_end(j);
    px_json_key(j, "warm");
    px_json_obj(j);
    px_json_kv_uint(j, "runs", atomic_load(&g_warm_runs));
    px_json_kv_int(j, "running", atomic_load(&g_warm_running));
    px_json_kv_uint(j, "queries_ok", atomic_load(&g_warm_ok));
    px_json_kv_uint(j, "queries_failed", atomic_load(&g_warm_failed));
    px_json_obj_end(j);
    px_json_key(j, "levels");
    px_json_obj(j);
    px_json_key(j, "l1");
    px_json_obj(j);
    px_json_kv_double(j, "hit_ratio", ratio(st.hits, st.misses + st.l2_hits));
    px_json_kv_uint(j, "hits", st.hits);
    px_json_kv_uint(j, "misses", st.misses + st.l2_hits);
    px_json_kv_uint(j, "entries", st.entries);
    px_json_kv_uint(j, "memory_usage", st.bytes);
    px_json_kv_uint(j, "max_size", cfg.max_bytes);
    px_json_kv_uint(j, "max_entry_size", cfg.max_entry);
    px_json_kv_uint(j, "stores", st.stores);
    px_json_kv_uint(j, "stores_raced", st.store_raced);
    px_json_kv_uint(j, "stores_too_big", st.store_too_big);
    px_json_kv_uint(j, "stores_replica_behind", st.store_replica_behind);
    px_json_kv_uint(j, "fills_not_cacheable", st.store_aborted);
    px_json_kv_uint(j, "coalesced", st.coalesced);
    px_json_kv_uint(j, "evictions", st.evictions);
    px_json_kv_uint(j, "expired", st.expired);
    px_json_kv_uint(j, "invalidated", st.invalidated);
    px_json_kv_double(j, "hit_latency_us_avg",
                      st.hit_samples ? (double)st.hit_ns_sum / (double)st.hit_samples / 1000.0 : 0);
    px_json_obj_end(j);
    px_json_key(j, "l2");
    px_json_obj(j);
    uint64_t l2_miss = ss.l2_misses + ss.l2_refused + ss.l2_errors;
    px_json_kv_bool(j, "configured", ss.configured);
    px_json_kv_bool(j, "invalidation_channel_up", ss.configured && ss.synced);
    px_json_kv_double(j, "hit_ratio", ratio(ss.l2_hits, l2_miss));
    px_json_kv_uint(j, "hits", ss.l2_hits);
    px_json_kv_uint(j, "misses", l2_miss);
    px_json_kv_uint(j, "refused_stale", ss.l2_refused);
    px_json_kv_uint(j, "errors", ss.l2_errors);
    px_json_kv_uint(j, "stores", ss.l2_sets);
    px_json_kv_uint(j, "invalidations_published", ss.published);
    px_json_kv_uint(j, "invalidations_received", ss.received);
    px_json_kv_double(j, "latency_us_avg",
                      ss.l2_samples ? (double)ss.l2_ns_sum / (double)ss.l2_samples / 1000.0 : 0);
    px_json_obj_end(j);
    px_json_obj_end(j);
}

/* The strings of "<key>": [...] in a small JSON body (heap copies, JSON
 * escapes decoded, \uXXXX as UTF-8): at most @p cap of them, none empty or
 * longer than @p max_len bytes as written. Returns how many, -1 when the body
 * does not hold such a list. Not a general JSON parser: the first "<key>"
 * in the text counts. */
static int parse_strings(const char *body, size_t len, const char *key, char **out, int cap,
                         size_t max_len)
{
    const char *e = body + len, *k = NULL;
    size_t kl = strlen(key);
    for (const char *p = body; p + kl + 2 <= e; p++)
        if (p[0] == '"' && memcmp(p + 1, key, kl) == 0 && p[kl + 1] == '"') {
            k = p + kl + 2;
            break;
        }
    if (!k)
        return -1;
    while (k < e && (*k == ':' || isspace((unsigned char)*k)))
        k++;
    if (k >= e || *k++ != '[')
        return -1;
    int n = 0;
    while (k < e) {
        while (k < e && (*k == ',' || isspace((unsigned char)*k)))
            k++;
        if (k < e && *k == ']')
            return n;
        if (k >= e || *k != '"' || n >= cap)
            goto bad;
        k++;
        /* the string's encoded length bounds its decoded one */
        const char *z = k;
        while (z < e && *z != '"')
            z += *z == '\\' ? 2 : 1;
        if ((size_t)(z - k) > max_len)
            goto bad;
        char *q = malloc((size_t)(z - k) + 4);
        if (!q)
            goto bad;
        size_t ql = 0;
        while (k < e && *k != '"') {
            char ch = *k++;
            if (ch == '\\') {
                if (k >= e)
                    break;
                ch = *k++;
                switch (ch) {
                case 'n':
                    ch = '\n';
                    break;
                case 't':
                    ch = '\t';
                    break;
                case 'r':
                    ch = '\r';
                    break;
                case 'b':
                    ch = '\b';
                    break;
                case 'f':
                    ch = '\f';
                    break;
                case 'u': {
                    unsigned v = 0;
                    for (int i = 0; i < 4; i++, k++) {
                        if (k >= e || !isxdigit((unsigned char)*k)) {
                            free(q);
                            goto bad;
                        }
                        v = v * 16 + (unsigned)(isdigit((unsigned char)*k)
                                                    ? *k - '0'
                                                    : (tolower((unsigned char)*k) - 'a' + 10));
                    }
                    if (v == 0) {
                        free(q);
                        goto bad;
                    }
                    if (v < 0x80) {
                        q[ql++] = (char)v;
                    } else if (v < 0x800) {
                        q[ql++] = (char)(0xc0 | (v >> 6));
                        q[ql++] = (char)(0x80 | (v & 0x3f));
                    } else {
                        q[ql++] = (char)(0xe0 | (v >> 12));
                        q[ql++] = (char)(0x80 | ((v >> 6) & 0x3f));
                        q[ql++] = (char)(0x80 | (v & 0x3f));
                    }
                    continue;
                }
                default:
                    break; /* \" \\ \/ */
                }
            }
            q[ql++] = ch;
        }
        if (k >= e || ql == 0) {
            free(q);
            goto bad;
        }
        k++;
        q[ql] = 0;
        out[n++] = q;
    }
bad:
    for (int i = 0; i < n; i++)
        free(out[i]);
    return -1;
}

static int cache_invalidate(const char *body, size_t len, px_json_t *j, void *arg)
{
    (void)arg;
    char *tags[64];
    int n = parse_strings(body, len, "tags", tags, 64, 63);
    if (n < 0) {
        px_json_obj(j);
        px_json_kv_str(j, "error",
                       "expected {\"tags\": [\"table\", ...]} (at most 64 names of up to 63 bytes; "
                       "\"*\" invalidates everything)");
        px_json_obj_end(j);
        return 400;
    }
    uint64_t gen = px_health_generation();
    int bumped = 0, np = 0;
    px_tag_t pub[64 * PX_CACHE_MAX_BASES];
    for (int i = 0; i < n; i++) {
        if (strcmp(tags[i], "*") == 0) {
            px_cache_bump_all(gen);
            pub[np++] = px_cache_tag_epoch();
            bumped++;
            continue;
        }
        /* a table, or a view: its base tables */
        px_cache_rel_t rel;
        if (px_cache_catalog_lookup(tags[i], &rel) && rel.n_bases > 0) {
            for (int b = 0; b < rel.n_bases; b++)
                pub[np++] = px_cache_tag_all(rel.bases[b]);
        } else {
            const char *dot = strrchr(tags[i], '.');
            pub[np++] = px_cache_tag_all(dot ? dot + 1 : tags[i]);
        }
        bumped++;
    }
    for (int i = 0; i < n; i++)
        free(tags[i]);
    for (int i = 0; i < np; i++)
        px_cache_tag_bump(pub[i], gen);
    px_cachesync_queue_publish(g_sh, pub, np);
    px_json_obj(j);
    px_json_kv_int(j, "invalidated_tags", bumped);
    px_json_obj_end(j);
    return 200;
}

static int cache_clear(px_json_t *j, void *arg)
{
    (void)arg;
    px_tag_t e = px_cache_tag_epoch();
    px_cache_bump_all(px_health_generation());
    px_cachesync_queue_publish(g_sh, &e, 1);
    uint64_t n = px_cache_clear();
    px_json_obj(j);
    px_json_kv_uint(j, "cleared_entries", n);
    px_json_obj_end(j);
    return 200;
}

static void cache_metrics(px_metrics_buf_t *b, void *arg)
{
    (void)arg;
    px_cache_stats_t st;
    px_cache_stats(&st);
    px_cachesync_stats_t ss;
    px_cachesync_stats(&ss);
    uint64_t l2_miss = ss.l2_misses + ss.l2_refused + ss.l2_errors;
    px_metrics_label_t l1[] = {{"level", "l1"}};
    px_metrics_label_t l2[] = {{"level", "l2"}};
    px_metrics_family(b, "fastnext_cache_hits_total", "counter",
                      "Cacheable statements answered from the cache, by level.");
    px_metrics_sample_u64(b, "fastnext_cache_hits_total", l1, 1, st.hits);
    px_metrics_sample_u64(b, "fastnext_cache_hits_total", l2, 1, ss.l2_hits);
    px_metrics_family(b, "fastnext_cache_misses_total", "counter",
                      "Cacheable statements the cache could not answer, by level.");
    px_metrics_sample_u64(b, "fastnext_cache_misses_total", l1, 1, st.misses + st.l2_hits);
    px_metrics_sample_u64(b, "fastnext_cache_misses_total", l2, 1, l2_miss);
    px_metrics_family(b, "fastnext_cache_hit_ratio", "gauge",
                      "Hits / (hits + misses) since start, by level.");
    px_metrics_sample(b, "fastnext_cache_hit_ratio", l1, 1, ratio(st.hits, st.misses + st.l2_hits));
    px_metrics_sample(b, "fastnext_cache_hit_ratio", l2, 1, ratio(ss.l2_hits, l2_miss));
    px_metrics_family(b, "fastnext_redis_hit_ratio", "gauge",
                      "Hits / lookups of the Redis level (L2) since start.");
    px_metrics_sample(b, "fastnext_redis_hit_ratio", NULL, 0, ratio(ss.l2_hits, l2_miss));
    px_metrics_family(b, "fastnext_cache_invalidation_channel_up", "gauge",
                      "1 while the cross-instance invalidation channel is subscribed (or not "
                      "needed), 0 while the cache steps aside.");
    px_metrics_sample_u64(b, "fastnext_cache_invalidation_channel_up", NULL, 0,
                          px_cache_synced() ? 1 : 0);
    px_metrics_family(b, "fastnext_cache_bytes", "gauge", "Bytes held by cached results.");
    px_metrics_sample_u64(b, "fastnext_cache_bytes", l1, 1, st.bytes);
    px_cache_config_t cfg;
    px_cache_get_config(&cfg);
    px_metrics_family(b, "fastnext_cache_max_bytes", "gauge", "CACHE_MAX_SIZE: the L1 budget.");
    px_metrics_sample_u64(b, "fastnext_cache_max_bytes", l1, 1, cfg.max_bytes);
    uint64_t rerr, rcmd;
    int rup;
    px_cachesync_redis_totals(&rerr, &rcmd, &rup);
    px_metrics_family(
        b, "fastnext_redis_up", "gauge",
        "1 while Redis is configured, answers and the invalidation channel is subscribed.");
    px_metrics_sample_u64(b, "fastnext_redis_up", NULL, 0, (uint64_t)rup);
    px_metrics_family(b, "fastnext_redis_commands_total", "counter",
                      "Redis commands issued by the workers.");
    px_metrics_sample_u64(b, "fastnext_redis_commands_total", NULL, 0, rcmd);
    px_metrics_family(b, "fastnext_redis_errors_total", "counter",
                      "Redis commands that failed (errors, timeouts, connection loss).");
    px_metrics_sample_u64(b, "fastnext_redis_errors_total", NULL, 0, rerr);
    px_metrics_family(b, "fastnext_cache_entries", "gauge", "Cached results.");
    px_metrics_sample_u64(b, "fastnext_cache_entries", l1, 1, st.entries);
    px_metrics_family(b, "fastnext_cache_evictions_total", "counter",
                      "Entries evicted to stay within CACHE_MAX_SIZE.");
    px_metrics_sample_u64(b, "fastnext_cache_evictions_total", l1, 1, st.evictions);
    px_metrics_family(b, "fastnext_cache_invalidations_total", "counter",
                      "Tag version bumps (writes and admin invalidations).");
    px_metrics_sample_u64(b, "fastnext_cache_invalidations_total", NULL, 0, st.bumps);
    px_metrics_family(b, "fastnext_cache_stores_total", "counter", "Results stored in the cache.");
    px_metrics_sample_u64(b, "fastnext_cache_stores_total", l1, 1, st.stores);
    px_metrics_family(b, "fastnext_cache_hit_seconds_total", "counter",
                      "Time spent serving hits, by level.");
    px_metrics_sample(b, "fastnext_cache_hit_seconds_total", l1, 1, (double)st.hit_ns_sum / 1e9);
}

/* ---- warming ------------------------------------------------------------------------ */

/*
 * Warming runs the queries through the proxy itself, as an ordinary client
 * (POSTGRES_USER with POSTGRES_PASSWORD, database POSTGRES_DB), on a thread
 * of its own: every fill takes the normal path, with its keys, tags and
 * checks, and under the same key as an application's (no settings of its
 * own). At most PX_WARM_MAX queries a run.
 */
#define PX_WARM_MAX 1000

typedef struct warm_job {
    char conninfo[1024];
    int n;
    char *queries[];
} warm_job_t;

static void conn_kv(char *out, size_t cap, const char *key, const char *val)
{
    size_t len = strlen(out);
    if (!val || len + 8 >= cap)
        return;
    int w = snprintf(out + len, cap - len, "%s%s='", len ? " " : "", key);
    if (w < 0 || (size_t)w >= cap - len)
        return;
    len += (size_t)w;
    for (const char *p = val; *p && len + 3 < cap; p++) {
        if (*p == '\\' || *p == '\'')
            out[len++] = '\\';
        out[len++] = *p;
    }
    out[len++] = '\'';
    out[len] = 0;
}

static void *warm_main(void *arg)
{
    warm_job_t *job = arg;
    /* at start, the relation catalog the cache needs arrives with the
     * health checker's first round */
    for (int i = 0; i < 100 && !(px_cache_catalog_ready() && px_cdc_serving()); i++)
        usleep(100 * 1000);
    PGconn *c = PQconnectdb(job->conninfo);
    uint64_t ok = 0, failed = 0;
    if (PQstatus(c) != CONNECTION_OK) {
        char msg[256];
        snprintf(msg, sizeof(msg), "%s", PQerrorMessage(c));
        msg[strcspn(msg, "\n")] = 0;
        px_log_warn("cache", "warming could not connect to the proxy: %s", msg);
        failed = (uint64_t)job->n;
    } else {
        for (int i = 0; i < job->n; i++) {
            PGresult *r = PQexec(c, job->queries[i]);
            ExecStatusType st = PQresultStatus(r);
            if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)
                ok++;
            else
                failed++;
            PQclear(r);
        }
    }
    PQfinish(c);
    atomic_fetch_add(&g_warm_ok, ok);
    atomic_fetch_add(&g_warm_failed, failed);
    atomic_fetch_sub(&g_warm_running, 1);
    px_log_info("cache", "warming ran %d queries: %llu ok, %llu failed", job->n,
                (unsigned long long)ok, (unsigned long long)failed);
    for (int i = 0; i < job->n; i++)
        free(job->queries[i]);
    free(job);
    return NULL;
}

/* Start a run over @p queries (ownership passes); false when it cannot. */
static bool warm_start(char **queries, int n)
{
    warm_job_t *job = calloc(1, sizeof(*job) + sizeof(char *) * (size_t)n);
    if (!job || !g_sh) {
        free(job);
        goto fail;
    }
    job->n = n;
    memcpy(job->queries, queries, sizeof(char *) * (size_t)n);
    pthread_mutex_lock(&g_sh->lock);
    const px_config_t *cfg = g_sh->cfg;
    char port[8];
    snprintf(port, sizeof(port), "%u", cfg->proxy_listen.port);
    const char *host = cfg->proxy_listen.host;
    if (!host || !*host || strcmp(host, "0.0.0.0") == 0 || strcmp(host, "*") == 0)
        host = "127.0.0.1";
    else if (strcmp(host, "::") == 0)
        host = "::1";
    conn_kv(job->conninfo, sizeof(job->conninfo), "host", host);
    conn_kv(job->conninfo, sizeof(job->conninfo), "port", port);
    conn_kv(job->conninfo, sizeof(job->conninfo), "user", cfg->postgres_user);
    conn_kv(job->conninfo, sizeof(job->conninfo), "password", cfg->postgres_password);
    conn_kv(job->conninfo, sizeof(job->conninfo), "dbname",
            cfg->postgres_db ? cfg->postgres_db : cfg->postgres_user);
    conn_kv(job->conninfo, sizeof(job->conninfo), "connect_timeout", "5");
    conn_kv(job->conninfo, sizeof(job->conninfo), "sslmode", "prefer");
    pthread_mutex_unlock(&g_sh->lock);
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    atomic_fetch_add(&g_warm_running, 1);
    atomic_fetch_add(&g_warm_runs, 1);
    int rc = pthread_create(&t, &attr, warm_main, job);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        atomic_fetch_sub(&g_warm_running, 1);
        free(job);
        goto fail;
    }
    return true;
fail:
    for (int i = 0; i < n; i++)
        free(queries[i]);
    return false;
}

static int cache_warm(const char *body, size_t len, px_json_t *j, void *arg)
{
    (void)arg;
    char **q = calloc(PX_WARM_MAX, sizeof(char *));
    int n = q ? parse_strings(body, len, "queries", q, PX_WARM_MAX, len) : -1;
    if (n <= 0) {
        free(q);
        px_json_obj(j);
        px_json_kv_str(j, "error", "expected {\"queries\": [\"SELECT ...\", ...]} (1 to 1000)");
        px_json_obj_end(j);
        return 400;
    }
    bool ok = warm_start(q, n);
    free(q);
    px_json_obj(j);
    if (!ok) {
        px_json_kv_str(j, "error", "could not start warming");
        px_json_obj_end(j);
        return 503;
    }
    px_json_kv_int(j, "queued", n);
    px_json_obj_end(j);
    return 202;
}

void px_cache_warm_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        px_log_warn("cache", "cannot read CACHE_WARM_FILE %s", path);
        return;
    }
    char **q = calloc(PX_WARM_MAX, sizeof(char *));
    int n = 0;
    char line[16384];
    while (q && n < PX_WARM_MAX && fgets(line, sizeof(line), f)) {
        size_t l = strcspn(line, "\r\n");
        line[l] = 0;
        const char *p = line;
        while (isspace((unsigned char)*p))
            p++;
        if (!*p || (p[0] == '-' && p[1] == '-') || p[0] == '#')
            continue;
        if (!(q[n] = strdup(p)))
            break;
        n++;
    }
    fclose(f);
    if (q && n > 0)
        warm_start(q, n);
    free(q);
}

static const px_admin_cache_ops_t g_ops = {
    .stats = cache_stats,
    .invalidate = cache_invalidate,
    .clear = cache_clear,
    .warm = cache_warm,
    .metrics = cache_metrics,
    .arg = NULL,
};

void px_cache_admin_register(struct px_shared *sh)
{
    g_sh = sh;
    px_admin_set_cache_ops(&g_ops);
}
