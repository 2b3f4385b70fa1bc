/*
 * The admin port's endpoints (SPEC §6), served by admin/http.c on the admin
 * thread. Every handler only reads: worker counters and pool gauges through
 * px_stats (relaxed atomics), cluster health through px_health's published
 * snapshots, latency histograms through px_metrics, and the current config
 * snapshot (referenced under px_shared_t.lock, never copied field by field
 * while it can change). No handler writes proxy state or blocks a worker.
 *
 * Invariant: every number an endpoint reports is measured; what the build
 * cannot measure yet (the result cache, query digests, routing) is reported as
 * unavailable — 501 or "available": false — never as a made-up zero. Those
 * modules plug in through px_admin_set_cache_ops / px_admin_set_handler.
 *
 * Mutating endpoints need "Authorization: Bearer $ADMIN_TOKEN" (compared in
 * constant time) and are refused with 403 while no token is configured.
 */
#include "px_admin.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "px.h"
#include "px_health.h"
#include "px_metrics.h"
#include "px_stats.h"

#define PX_ADMIN_MAX_POOLS 4096 /* pools listed / exported per request */

/* One admin port per process. Written by px_admin_start before the server
 * thread exists and by px_admin_stop after it ended; the sampler fields are
 * touched only on the server thread. */
typedef struct px_admin {
    px_shared_t *sh;                             /* process state (read-only here) */
    px_http_server_t *srv;                       /* the running server, or NULL */
    _Atomic(const px_admin_cache_ops_t *) cache; /* registered cache hooks or NULL */
    pthread_mutex_t plug_lock;                   /* guards plug[] */
    struct {
        px_http_handler_fn fn;
        void *arg;
    } plug[PX_ADMIN_EP_COUNT];  /* late endpoints, NULL: 501 */
    double cpu_prev, wall_prev; /* last sampler reading */
    double cpu_percent;         /* over the last full window */
    bool have_window;           /* cpu_percent holds a full window */
} px_admin_t;

static px_admin_t g_admin = {.plug_lock = PTHREAD_MUTEX_INITIALIZER};

/* ---- helpers ------------------------------------------------------------------ */

static px_config_t *px_admin_cfg(px_admin_t *a)
{
    pthread_mutex_lock(&a->sh->lock);
    px_config_t *cfg = px_config_ref(a->sh->cfg);
    pthread_mutex_unlock(&a->sh->lock);
    return cfg;
}

static void px_admin_lsn(char *out, size_t cap, uint64_t lsn)
{
    snprintf(out, cap, "%X/%X", (unsigned)(lsn >> 32), (unsigned)(lsn & 0xffffffffu));
}

/* "host:port", with brackets around an IPv6 host. */
static void px_admin_hostport(char *out, size_t cap, const char *host, unsigned port)
{
    if (strchr(host, ':'))
        snprintf(out, cap, "[%s]:%u", host, port);
    else
        snprintf(out, cap, "%s:%u", host, port);
}

/* The health snapshot; when the prober has published nothing yet, a primary
 * entry from the config with up = px_health_primary_up(). Returns the count. */
static int px_admin_members(px_admin_t *a, px_member_status_t *m, int max, bool *probed)
{
    int n = px_health_members(m, max);
    if (n > max)
        n = max;
    *probed = n > 0;
    if (n <= 0) {
        px_config_t *cfg = px_admin_cfg(a);
        memset(&m[0], 0, sizeof(m[0]));
        snprintf(m[0].host, sizeof(m[0].host), "%s",
                 cfg->postgres_server ? cfg->postgres_server : "");
        m[0].port = cfg->postgres_port;
        m[0].role = PX_MEMBER_PRIMARY;
        m[0].up = px_health_primary_up();
        px_config_unref(cfg);
        n = 1;
    }
    return n;
}

static void px_admin_member_json(px_json_t *j, const px_member_status_t *m, bool probed)
{
    char lsn[32];
    px_json_obj(j);
    px_json_kv_str(j, "host", m->host);
    px_json_kv_uint(j, "port", m->port);
    px_json_kv_str(j, "role", m->role == PX_MEMBER_PRIMARY ? "primary" : "replica");
    px_json_kv_bool(j, "probed", probed);
    px_json_kv_bool(j, "up", m->up);
    if (probed && m->up) {
        px_json_kv_bool(j, "in_recovery", m->in_recovery);
        px_admin_lsn(lsn, sizeof(lsn), m->lsn);
        px_json_kv_str(j, "lsn", m->lsn ? lsn : NULL);
    } else {
        px_json_key(j, "in_recovery");
        px_json_null(j);
        px_json_kv_str(j, "lsn", NULL);
    }
    if (m->role == PX_MEMBER_REPLICA) {
        px_json_kv_bool(j, "usable", m->usable_for_reads);
        px_json_kv_bool(j, "promoted", m->promoted);
        if (m->up) {
            px_json_kv_double(j, "lag_seconds", m->lag_seconds);
            px_json_kv_uint(j, "lag_bytes", m->lag_bytes);
        } else {
            px_json_key(j, "lag_seconds");
            px_json_null(j);
            px_json_key(j, "lag_bytes");
            px_json_null(j);
        }
    }
    if (probed) {
        px_json_kv_double(j, "probe_ms", m->probe_ms);
        px_json_key(j, "last_ok_unix_ms");
        if (m->last_ok_unix_ms)
            px_json_uint(j, m->last_ok_unix_ms);
        else
            px_json_null(j);
        px_json_kv_uint(j, "probes", m->probes);
        px_json_kv_uint(j, "failures", m->failures);
        px_json_kv_str(j, "last_error", m->last_error[0] ? m->last_error : NULL);
    }
    px_json_obj_end(j);
}

/* Every pool; *out is malloc'd (free it), returns the count listed. */
static int px_admin_pools(px_admin_t *a, px_pool_stats_t **out, int *total)
{
    int cap = 64;
    px_pool_stats_t *ps = NULL;
    for (;;) {
        px_pool_stats_t *np = realloc(ps, (size_t)cap * sizeof(*ps));
        if (!np) {
            free(ps);
            *out = NULL;
            *total = 0;
            return 0;
        }
        ps = np;
        int n = px_stats_pools(a->sh, ps, cap);
        if (n <= cap || cap >= PX_ADMIN_MAX_POOLS) {
            *out = ps;
            *total = n;
            return n < cap ? n : cap;
        }
        cap = n < PX_ADMIN_MAX_POOLS ? n : PX_ADMIN_MAX_POOLS;
    }
}

static void px_admin_pools_json(px_json_t *j, const px_pool_stats_t *ps, int n)
{
    px_json_arr(j);
    for (int i = 0; i < n; i++) {
        const px_pool_stats_t *p = &ps[i];
        px_json_obj(j);
        px_json_kv_str(j, "database", p->database);
        px_json_kv_str(j, "user", p->user);
        px_json_kv_str(j, "backend", p->backend);
        px_json_kv_str(j, "role", p->role);
        px_json_kv_int(j, "size", p->size);
        px_json_kv_int(j, "max_overflow", p->max_overflow);
        px_json_kv_int(j, "open", p->open);
        px_json_kv_int(j, "in_use", p->active);
        px_json_kv_int(j, "idle", p->idle);
        px_json_kv_int(j, "waiting", p->waiting);
        px_json_kv_int(j, "pending", p->pending);
        px_json_kv_int(j, "pinned", p->pinned);
        px_json_obj_end(j);
    }
    px_json_arr_end(j);
}

/* Start a JSON body (the caller closes the object it opens). */
static void px_admin_json(px_http_response_t *resp, px_json_t *j, int status)
{
    resp->status = status;
    resp->content_type = "application/json";
    px_json_init(j, &resp->body);
}

static void px_admin_json_end(px_http_response_t *resp)
{
    px_metrics_buf_append(&resp->body, "\n", 1);
}

/*
 * Gate for mutating endpoints: 403 when ADMIN_TOKEN is not configured, 401
 * (with WWW-Authenticate) when the bearer token is missing or wrong. Returns
 * true when the request may proceed.
 */
static bool px_admin_authorize(px_admin_t *a, const px_http_request_t *req,
                               px_http_response_t *resp)
{
    px_config_t *cfg = px_admin_cfg(a);
    bool configured = cfg->admin_token && cfg->admin_token[0];
    bool ok =
        configured && px_http_bearer_ok(px_http_header(req, "Authorization"), cfg->admin_token);
    px_config_unref(cfg);
    if (!configured) {
        px_http_response_error(resp, 403,
                               "mutating admin endpoints are disabled: ADMIN_TOKEN is not "
                               "configured");
        return false;
    }
    if (!ok) {
        px_http_response_error(resp, 401, "missing or invalid bearer token");
        (void)px_http_response_header(resp, "WWW-Authenticate", "Bearer realm=\"fastnext-admin\"");
        px_log_info("admin", "refused %s %s: bad or missing bearer token", req->method_name,
                    req->path);
        return false;
    }
    px_log_info("admin", "authorized %s %s", req->method_name, req->path);
    return true;
}

/* ---- health ------------------------------------------------------------------- */

static void px_admin_liveness(const px_http_request_t *req, px_http_response_t *resp, void *arg)
{
    px_admin_t *a = arg;
    px_json_t j;
    (void)req;
    px_admin_json(resp, &j, 200);
    px_json_obj(&j);
    px_json_kv_str(&j, "status", "ok");
    px_json_kv_str(&j, "version", PX_VERSION);
    px_json_kv_int(&j, "workers", a->sh->n_workers);
    px_json_obj_end(&j);
    px_admin_json_end(resp);
}

static void px_admin_readiness(const px_http_request_t *req, px_http_response_t *resp, void *arg)
{
    px_admin_t *a = arg;
    px_member_status_t m[PX_HEALTH_MAX_MEMBERS];
    bool probed;
    (void)req;
    px_admin_members(a, m, PX_HEALTH_MAX_MEMBERS, &probed);
    bool up = px_health_primary_up();
    bool draining = atomic_load(&a->sh->draining);
    px_json_t j;
    px_admin_json(resp, &j, up && !draining ? 200 : 503);
    px_json_obj(&j);
    px_json_kv_str(&j, "status", up && !draining ? "ready" : "not ready");
    if (draining) {
        px_json_kv_str(&j, "reason", "draining: the proxy is shutting down");
    } else if (!up) {
        char hp[300], reason[600];
        px_admin_hostport(hp, sizeof(hp), m[0].host, m[0].port);
        snprintf(reason, sizeof(reason), "primary %s is unreachable%s%s", hp,
                 m[0].last_error[0] ? ": " : "", m[0].last_error);
        px_json_kv_str(&j, "reason", reason);
    }
    px_json_key(&j, "primary");
    px_admin_member_json(&j, &m[0], probed);
    px_json_obj_end(&j);
    px_admin_json_end(resp);
}

static void px_admin_cache_json(px_admin_t *a, px_json_t *j, const px_config_t *cfg)
{
    const px_admin_cache_ops_t *ops = atomic_load(&a->cache);
    px_json_obj(j);
    px_json_kv_bool(j, "enabled", cfg->cache_enabled);
    px_json_kv_bool(j, "available", ops != NULL);
    if (ops && ops->stats) {
        ops->stats(j, ops->arg);
    } else {
        px_json_kv_str(j, "reason", "result cache not available in this build");
        px_json_key(j, "levels");
        px_json_obj(j);
        px_json_obj_end(j);
    }
    px_json_obj_end(j);
}

static void px_admin_deep(const px_http_request_t *req, px_http_response_t *resp, void *arg)
{
    px_admin_t *a = arg;
    px_member_status_t m[PX_HEALTH_MAX_MEMBERS];
    bool probed;
    (void)req;
    int n = px_admin_members(a, m, PX_HEALTH_MAX_MEMBERS, &probed);
    bool primary_up = px_health_primary_up();
    int replicas_down = 0;
    for (int i = 1; i < n; i++)
        if (!m[i].usable_for_reads)
            replicas_down++;
    px_config_t *cfg = px_admin_cfg(a);
    px_stats_totals_t t;
    px_stats_totals(a->sh, &t);
    px_pool_stats_t *ps;
    int total;
    int np = px_admin_pools(a, &ps, &total);

    px_json_t j;
    px_admin_json(resp, &j, primary_up ? 200 : 503);
    px_json_obj(&j);
    px_json_kv_str(&j, "status", !primary_up ? "down" : replicas_down ? "degraded" : "ok");
    px_json_key(&j, "primary");
    px_admin_member_json(&j, &m[0], probed);
    px_json_key(&j, "replicas");
    px_json_arr(&j);
    for (int i = 1; i < n; i++)
        px_admin_member_json(&j, &m[i], probed);
    px_json_arr_end(&j);
    px_json_kv_int(&j, "replicas_usable", (n - 1) - replicas_down);
    px_json_key(&j, "workers");
    px_json_obj(&j);
    px_json_kv_int(&j, "count", t.workers);
    px_json_kv_uint(&j, "client_connections", t.clients_active);
    px_json_kv_uint(&j, "iobuf_in_use", t.iobufs_in_use);
    px_json_obj_end(&j);
    px_json_key(&j, "pools");
    px_admin_pools_json(&j, ps, np);
    px_json_key(&j, "cache");
    px_admin_cache_json(a, &j, cfg);
    px_json_key(&j, "redis");
    px_json_obj(&j);
    bool redis = cfg->redis_host || cfg->redis_cluster_nodes;
    px_json_kv_bool(&j, "configured", redis);
    if (cfg->redis_cluster_nodes) {
        px_json_kv_str(&j, "nodes", cfg->redis_cluster_nodes);
    } else if (cfg->redis_host) {
        char hp[300];
        px_admin_hostport(hp, sizeof(hp), cfg->redis_host, cfg->redis_port);
        px_json_kv_str(&j, "nodes", hp);
    }
    px_json_kv_bool(&j, "checked", false);
    px_json_kv_str(&j, "reason", "the Redis cache level is not available in this build");
    px_json_obj_end(&j);
    px_json_obj_end(&j);
    px_admin_json_end(resp);
    free(ps);
    px_config_unref(cfg);
}

static void px_admin_replication(const px_http_request_t *req, px_http_response_t *resp, void *arg)
{
    px_admin_t *a = arg;
    px_member_status_t m[PX_HEALTH_MAX_MEMBERS];
    bool probed;
    (void)req;
    int n = px_admin_members(a, m, PX_HEALTH_MAX_MEMBERS, &probed);
    px_config_t *cfg = px_admin_cfg(a);
    px_json_t j;
    px_admin_json(resp, &j, 200);
    px_json_obj(&j);
    px_json_key(&j, "primary");
    px_admin_member_json(&j, &m[0], probed);
    px_json_kv_double(&j, "max_lag_seconds", cfg->read_replica_max_lag);
    px_json_key(&j, "replicas");
    px_json_arr(&j);
    for (int i = 1; i < n; i++)
        px_admin_member_json(&j, &m[i], probed);
    px_json_arr_end(&j);
    px_json_obj_end(&j);
    px_admin_json_end(resp);
    px_config_unref(cfg);
}

/* ---- pools and config ----------------------------------------------------------- */

static void px_admin_pools_ep(const px_http_request_t *req, px_http_response_t *resp, void *arg)
{
    px_admin_t *a = arg;
    (void)req;
    px_pool_stats_t *ps;
    int total;
    int n = px_admin_pools(a, &ps, &total);
    px_json_t j;
    px_admin_json(resp, &j, 200);
    px_json_obj(&j);
    px_json_kv_int(&j, "count", total);
    px_json_key(&j, "pools");
    px_admin_pools_json(&j, ps, n);
    px_json_obj_end(&j);
    px_admin_json_end(resp);
    free(ps);
}

/* Undo px_config_print's quoting of a value ("..." with \" and \\). */
static void px_admin_unquote(char *v)
{
    size_t n = strlen(v);
    if (n < 2 || v[0] != '"' || v[n - 1] != '"')
        return;
    char *o = v;
    for (size_t i = 1; i + 1 < n; i++) {
        if (v[i] == '\\' && i + 2 < n)
            i++;
        *o++ = v[i];
    }
    *o = '\0';
}

static void px_admin_config(const px_http_request_t *req, px_http_response_t *resp, void *arg)
{
    px_admin_t *a = arg;
    (void)req;
    px_config_t *cfg = px_admin_cfg(a);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) {
        px_config_unref(cfg);
        px_http_response_error(resp, 500, "out of memory");
        return;
    }
    /* px_config_print is the one place that knows how to show each key with
     * its secrets masked; reuse it and turn its lines into JSON */
    px_config_print(cfg, f);
    fclose(f);
    px_json_t j;
    px_admin_json(resp, &j, 200);
    px_json_obj(&j);
    px_json_kv_str(&j, "file", cfg->config_file);
    px_json_key(&j, "config");
    px_json_obj(&j);
    for (char *line = text, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        char *eq = strstr(line, " = ");
        char *src = strstr(line, "  # ");
        if (!eq || !src || src < eq)
            continue;
        /* the source comment is the last "  # " on the line */
        for (char *s = src; (s = strstr(s + 1, "  # ")) != NULL;)
            src = s;
        *eq = '\0';
        *src = '\0';
        char *value = eq + 3;
        px_admin_unquote(value);
        px_json_key(&j, line);
        px_json_obj(&j);
        px_json_kv_str(&j, "value", *value ? value : NULL);
        px_json_kv_str(&j, "source", src + 4);
        px_json_obj_end(&j);
    }
    px_json_obj_end(&j);
    px_json_obj_end(&j);
    px_admin_json_end(resp);
    free(text);
    px_config_unref(cfg);
}

/* ---- cache ------------------------------------------------------------------------ */

static void px_admin_cache_stats(const px_http_request_t *req, px_http_response_t *resp, void *arg)
{
    px_admin_t *a = arg;
    (void)req;
    px_config_t *cfg = px_admin_cfg(a);
    px_json_t j;
    px_admin_json(resp, &j, 200);
    px_admin_cache_json(a, &j, cfg);
    px_admin_json_end(resp);
    px_config_unref(cfg);
}

typedef enum px_admin_cache_op {
    PX_ADMIN_CACHE_INVALIDATE,
    PX_ADMIN_CACHE_CLEAR,
    PX_ADMIN_CACHE_WARM,
} px_admin_cache_op_t;

static void px_admin_cache_mutate(px_admin_t *a, px_admin_cache_op_t op,
                                  const px_http_request_t *req, px_http_response_t *resp)
{
    if (!px_admin_authorize(a, req, resp))
        return;
    const px_admin_cache_ops_t *ops = atomic_load(&a->cache);
    int (*fn_body)(const char *, size_t, px_json_t *, void *) = NULL;
    int (*fn_clear)(px_json_t *, void *) = NULL;
    if (ops) {
        if (op == PX_ADMIN_CACHE_INVALIDATE)
            fn_body = ops->invalidate;
        else if (op == PX_ADMIN_CACHE_WARM)
            fn_body = ops->warm;
        else
            fn_clear = ops->clear;
    }
    if (!fn_body && !fn_clear) {
        px_http_response_error(resp, 501, "result cache not available in this build");
        return;
    }
    px_json_t j;
    px_admin_json(resp, &j, 200);
    int status = fn_body ? fn_body(req->body ? req->body : "", req->body_len, &j, ops->arg)
                         : fn_clear(&j, ops->arg);
    if (status < 100 || status > 599 || j.depth != 0) {
        px_http_response_error(resp, 500, "cache module returned an invalid answer");
        return;
    }
    resp->status = status;
    px_admin_json_end(resp);
}

static void px_admin_cache_invalidate(const px_http_request_t *req, px_http_response_t *resp,
                                      void *arg)
{
    px_admin_cache_mutate(arg, PX_ADMIN_CACHE_INVALIDATE, req, resp);
}

static void px_admin_cache_clear(const px_http_request_t *req, px_http_response_t *resp, void *arg)
{
    px_admin_cache_mutate(arg, PX_ADMIN_CACHE_CLEAR, req, resp);
}

static void px_admin_cache_warm(const px_http_request_t *req, px_http_response_t *resp, void *arg)
{
    px_admin_cache_mutate(arg, PX_ADMIN_CACHE_WARM, req, resp);
}

/* ---- endpoints other modules fill in ------------------------------------------------- */

static const char *const px_admin_plug_missing[PX_ADMIN_EP_COUNT] = {
    [PX_ADMIN_EP_SLOW_QUERIES] = "slow-query digests are not available in this build yet",
    [PX_ADMIN_EP_INDEX_RECOMMENDATIONS] =
        "index recommendations are not available in this build yet",
    [PX_ADMIN_EP_ROUTING_EXPLAIN] =
        "routing explain is not available in this build yet: every statement goes to the "
        "primary",
};

static void px_admin_plugged(px_admin_t *a, px_admin_endpoint_t ep, const px_http_request_t *req,
                             px_http_response_t *resp)
{
    pthread_mutex_lock(&a->plug_lock);
    px_http_handler_fn fn = a->plug[ep].fn;
    void *parg = a->plug[ep].arg;
    pthread_mutex_unlock(&a->plug_lock);
    if (!fn) {
        px_http_response_error(resp, 501, px_admin_plug_missing[ep]);
        return;
    }
    fn(req, resp, parg);
}

static void px_admin_slow_queries(const px_http_request_t *req, px_http_response_t *resp, void *arg)
{
    px_admin_plugged(arg, PX_ADMIN_EP_SLOW_QUERIES, req, resp);
}

static void px_admin_index_recs(const px_http_request_t *req, px_http_response_t *resp, void *arg)
{
    px_admin_plugged(arg, PX_ADMIN_EP_INDEX_RECOMMENDATIONS, req, resp);
}

static void px_admin_explain(const px_http_request_t *req, px_http_response_t *resp, void *arg)
{
    px_admin_plugged(arg, PX_ADMIN_EP_ROUTING_EXPLAIN, req, resp);
}

/* ---- Prometheus ------------------------------------------------------------------------ */

static double px_admin_cpu_percent(px_admin_t *a)
{
    if (a->have_window)
        return a->cpu_percent;
    /* within the first window: since the sampler started */
    px_metrics_process_t p;
    px_metrics_process_read(&p);
    return px_metrics_cpu_percent(a->cpu_prev, a->wall_prev, p.cpu_seconds, px_metrics_now());
}

/* Sample the process CPU once per sweep (1 s): fastnext_cpu_percent is the
 * last full window, the same for every scraper however often it scrapes. */
static void px_admin_tick(void *arg)
{
    px_admin_t *a = arg;
    px_metrics_process_t p;
    px_metrics_process_read(&p);
    double now = px_metrics_now();
    a->cpu_percent = px_metrics_cpu_percent(a->cpu_prev, a->wall_prev, p.cpu_seconds, now);
    a->cpu_prev = p.cpu_seconds;
    a->wall_prev = now;
    a->have_window = true;
}

static void px_admin_gauge(px_metrics_buf_t *b, const char *name, const char *help, double v)
{
    px_metrics_family(b, name, "gauge", help);
    px_metrics_sample(b, name, NULL, 0, v);
}

static void px_admin_counter(px_metrics_buf_t *b, const char *name, const char *help, uint64_t v)
{
    px_metrics_family(b, name, "counter", help);
    px_metrics_sample_u64(b, name, NULL, 0, v);
}

static void px_admin_pool_family(px_metrics_buf_t *b, const char *name, const char *help,
                                 const px_pool_stats_t *ps, int n, size_t field)
{
    px_metrics_family(b, name, "gauge", help);
    for (int i = 0; i < n; i++) {
        px_metrics_label_t l[3] = {
            {"database", ps[i].database}, {"user", ps[i].user}, {"backend", ps[i].backend}};
        int v;
        memcpy(&v, (const char *)&ps[i] + field, sizeof(v));
        px_metrics_sample(b, name, l, 3, v);
    }
}

static void px_admin_metrics(const px_http_request_t *req, px_http_response_t *resp, void *arg)
{
    px_admin_t *a = arg;
    px_metrics_buf_t *b = &resp->body;
    (void)req;
    resp->content_type = PX_METRICS_CONTENT_TYPE;

    px_stats_totals_t t;
    px_stats_totals(a->sh, &t);

    px_admin_gauge(b, "fastnext_up", "Whether the proxy is running (always 1 when scraped).", 1);
    px_metrics_family(b, "fastnext_build_info", "gauge", "Build information; the value is 1.");
    px_metrics_label_t ver = {"version", PX_VERSION};
    px_metrics_sample(b, "fastnext_build_info", &ver, 1, 1);
    px_admin_gauge(b, "fastnext_workers", "Worker threads, each with its own event loop.",
                   t.workers);

    /* clients */
    px_admin_gauge(b, "fastnext_client_connections", "Client connections open now.",
                   (double)t.clients_active);
    px_metrics_family(b, "fastnext_worker_client_connections", "gauge",
                      "Client connections per worker thread (WORKER_FILL_CLIENTS fills workers "
                      "in order).");
    for (int i = 0; i < a->sh->n_workers; i++) {
        char idx[16];
        snprintf(idx, sizeof(idx), "%d", i);
        px_metrics_label_t wl = {"worker", idx};
        px_metrics_sample(
            b, "fastnext_worker_client_connections", &wl, 1,
            (double)atomic_load_explicit(&a->sh->workers[i].n_clients, memory_order_relaxed));
    }
    px_admin_counter(b, "fastnext_client_connections_accepted_total",
                     "Client connections accepted.", t.clients_accepted);
    px_admin_counter(b, "fastnext_client_connections_rejected_total",
                     "Client connections refused because MAX_CLIENT_CONN was reached.",
                     t.clients_rejected);
    px_admin_counter(b, "fastnext_login_failures_total", "Client logins that failed.",
                     t.login_failures);
    px_admin_counter(b, "fastnext_protocol_errors_total",
                     "Client sessions ended for a protocol violation.", t.protocol_errors);
    px_admin_counter(b, "fastnext_transactions_total",
                     "Transactions completed (ReadyForQuery idle after a client request).",
                     t.transactions);
    px_admin_counter(b, "fastnext_queries_total",
                     "Queries forwarded (Query, Execute and FunctionCall messages).", t.queries);

    /* pools */
    px_pool_stats_t *ps;
    int total;
    int n = px_admin_pools(a, &ps, &total);
    px_admin_gauge(b, "fastnext_db_pools",
                   "Server connection pools, one per (database, user, backend).", total);
    px_admin_pool_family(b, "fastnext_db_pool_size", "DB_POOL_SIZE of the pool.", ps, n,
                         offsetof(px_pool_stats_t, size));
    px_admin_pool_family(b, "fastnext_db_pool_max_overflow", "DB_MAX_OVERFLOW of the pool.", ps, n,
                         offsetof(px_pool_stats_t, max_overflow));
    px_admin_pool_family(b, "fastnext_db_pool_open",
                         "Server connections open (all workers, any state).", ps, n,
                         offsetof(px_pool_stats_t, open));
    px_admin_pool_family(b, "fastnext_db_pool_checked_out",
                         "Server connections linked to a client now.", ps, n,
                         offsetof(px_pool_stats_t, active));
    px_admin_pool_family(b, "fastnext_db_pool_idle", "Idle server connections ready for use.", ps,
                         n, offsetof(px_pool_stats_t, idle));
    px_admin_pool_family(b, "fastnext_db_pool_pending",
                         "Server connections connecting, logging in, being checked or reset.", ps,
                         n, offsetof(px_pool_stats_t, pending));
    px_admin_pool_family(b, "fastnext_db_pool_waiting", "Clients queued for a server connection.",
                         ps, n, offsetof(px_pool_stats_t, waiting));
    px_admin_pool_family(b, "fastnext_db_pool_pinned",
                         "Clients pinned to their server connection (session state).", ps, n,
                         offsetof(px_pool_stats_t, pinned));
    free(ps);
    px_admin_counter(b, "fastnext_pool_waits_total",
                     "Times a client had to queue for a server connection.", t.pool_waits);
    px_admin_counter(b, "fastnext_pool_timeouts_total",
                     "Clients that gave up after DB_POOL_TIMEOUT without a connection.",
                     t.pool_timeouts);
    px_admin_counter(b, "fastnext_client_pins_total",
                     "Times a client was pinned to its server connection.", t.pins);
    px_admin_counter(b, "fastnext_server_connections_opened_total", "Server connections opened.",
                     t.servers_opened);
    px_admin_counter(b, "fastnext_server_connections_closed_total", "Server connections closed.",
                     t.servers_closed);
    px_admin_counter(b, "fastnext_server_connections_broken_total",
                     "Server connections discarded after an error or a failed check.",
                     t.servers_broken);
    px_admin_counter(b, "fastnext_cancel_requests_forwarded_total",
                     "Cancel requests forwarded to a server.", t.cancels_forwarded);
    px_metrics_family(b, "fastnext_bytes_total", "counter", "Bytes forwarded, by direction.");
    px_metrics_label_t c2s = {"direction", "client_to_server"};
    px_metrics_label_t s2c = {"direction", "server_to_client"};
    px_metrics_sample_u64(b, "fastnext_bytes_total", &c2s, 1, t.bytes_client_to_server);
    px_metrics_sample_u64(b, "fastnext_bytes_total", &s2c, 1, t.bytes_server_to_client);
    px_admin_gauge(b, "fastnext_iobuf_in_use", "I/O buffers attached to connections now.",
                   (double)t.iobufs_in_use);

    /* cluster health */
    px_member_status_t m[PX_HEALTH_MAX_MEMBERS];
    bool probed;
    int nm = px_admin_members(a, m, PX_HEALTH_MAX_MEMBERS, &probed);
    px_admin_gauge(b, "fastnext_primary_up", "Whether the last probe of the primary succeeded.",
                   px_health_primary_up() ? 1 : 0);
    char names[PX_HEALTH_MAX_MEMBERS][300];
    for (int i = 1; i < nm; i++)
        px_admin_hostport(names[i], sizeof(names[i]), m[i].host, m[i].port);
    px_metrics_family(b, "fastnext_replica_up", "gauge",
                      "Whether the last probe of the replica succeeded.");
    for (int i = 1; i < nm; i++) {
        px_metrics_label_t l = {"replica", names[i]};
        px_metrics_sample(b, "fastnext_replica_up", &l, 1, m[i].up ? 1 : 0);
    }
    px_metrics_family(b, "fastnext_replica_usable", "gauge",
                      "Whether the replica takes reads (up, in recovery, lag within "
                      "READ_REPLICA_MAX_LAG).");
    for (int i = 1; i < nm; i++) {
        px_metrics_label_t l = {"replica", names[i]};
        px_metrics_sample(b, "fastnext_replica_usable", &l, 1, m[i].usable_for_reads ? 1 : 0);
    }
    px_metrics_family(b, "fastnext_replica_lag_seconds", "gauge",
                      "Replay lag of the replica in seconds (NaN while it is down).");
    for (int i = 1; i < nm; i++) {
        px_metrics_label_t l = {"replica", names[i]};
        px_metrics_sample(b, "fastnext_replica_lag_seconds", &l, 1,
                          m[i].up ? m[i].lag_seconds : NAN);
    }
    px_metrics_family(b, "fastnext_replica_lag_bytes", "gauge",
                      "WAL bytes the replica has yet to replay (NaN while it is down).");
    for (int i = 1; i < nm; i++) {
        px_metrics_label_t l = {"replica", names[i]};
        px_metrics_sample(b, "fastnext_replica_lag_bytes", &l, 1,
                          m[i].up ? (double)m[i].lag_bytes : NAN);
    }

    /* latency */
    px_metrics_write_histograms(b);

    /* cache, when a module provides it */
    const px_admin_cache_ops_t *ops = atomic_load(&a->cache);
    if (ops && ops->metrics)
        ops->metrics(b, ops->arg);

    /* process */
    px_metrics_process_t p;
    px_metrics_process_read(&p);
    px_admin_gauge(b, "fastnext_cpu_percent",
                   "Process CPU use over the last second, percent of one core.",
                   px_admin_cpu_percent(a));
    px_metrics_family(b, "fastnext_process_cpu_seconds_total", "counter",
                      "User and system CPU time used by the process.");
    px_metrics_sample(b, "fastnext_process_cpu_seconds_total", NULL, 0, p.cpu_seconds);
    px_admin_gauge(b, "fastnext_process_resident_memory_bytes", "Resident set size.",
                   (double)p.rss_bytes);
    if (p.open_fds >= 0)
        px_admin_gauge(b, "fastnext_process_open_fds", "Open file descriptors.", p.open_fds);
    if (p.max_fds >= 0)
        px_admin_gauge(b, "fastnext_process_max_fds", "Limit on open file descriptors.",
                       (double)p.max_fds);
    if (p.start_time > 0)
        px_admin_gauge(b, "fastnext_process_start_time_seconds",
                       "Process start time, seconds since the epoch.", p.start_time);
}

/* ---- the server ------------------------------------------------------------------------- */

static const px_http_route_t px_admin_routes[] = {
    {"/api/v1/scaling/health/liveness", PX_HTTP_M(PX_HTTP_GET), px_admin_liveness},
    {"/api/v1/scaling/health/readiness", PX_HTTP_M(PX_HTTP_GET), px_admin_readiness},
    {"/api/v1/scaling/health/deep", PX_HTTP_M(PX_HTTP_GET), px_admin_deep},
    {"/api/v1/scaling/replication/status", PX_HTTP_M(PX_HTTP_GET), px_admin_replication},
    {"/api/v1/scaling/metrics/prometheus", PX_HTTP_M(PX_HTTP_GET), px_admin_metrics},
    {"/metrics", PX_HTTP_M(PX_HTTP_GET), px_admin_metrics},
    {"/api/v1/pools", PX_HTTP_M(PX_HTTP_GET), px_admin_pools_ep},
    {"/api/v1/config", PX_HTTP_M(PX_HTTP_GET), px_admin_config},
    {"/api/v1/cache/stats", PX_HTTP_M(PX_HTTP_GET), px_admin_cache_stats},
    {"/api/v1/cache/invalidate", PX_HTTP_M(PX_HTTP_POST), px_admin_cache_invalidate},
    {"/api/v1/cache", PX_HTTP_M(PX_HTTP_DELETE), px_admin_cache_clear},
    {"/api/v1/cache/warm", PX_HTTP_M(PX_HTTP_POST), px_admin_cache_warm},
    {"/api/v1/database/slow-queries", PX_HTTP_M(PX_HTTP_GET), px_admin_slow_queries},
    {"/api/v1/database/index-recommendations", PX_HTTP_M(PX_HTTP_GET), px_admin_index_recs},
    {"/api/v1/routing/explain", PX_HTTP_M(PX_HTTP_GET), px_admin_explain},
};

static void px_admin_handle(const px_http_request_t *req, px_http_response_t *resp, void *arg)
{
    px_http_dispatch(px_admin_routes, sizeof(px_admin_routes) / sizeof(px_admin_routes[0]), req,
                     resp, arg);
}

int px_admin_start(px_shared_t *sh)
{
    px_admin_t *a = &g_admin;
    if (a->srv)
        return -EALREADY;
    a->sh = sh;
    px_config_t *cfg = px_admin_cfg(a);
    px_metrics_process_t p;
    px_metrics_process_read(&p);
    a->cpu_prev = p.cpu_seconds;
    a->wall_prev = px_metrics_now();
    a->have_window = false;
    px_http_server_opts_t o = {
        .host = cfg->admin_listen.host,
        .port = cfg->admin_listen.port,
        .handler = px_admin_handle,
        .arg = a,
        .on_tick = px_admin_tick,
        .name = "admin",
    };
    int err;
    a->srv = px_http_server_start(&o, &err);
    if (!a->srv) {
        px_log_error("admin", "cannot listen on %s:%u: %s", cfg->admin_listen.host,
                     cfg->admin_listen.port, uv_strerror(err));
        px_config_unref(cfg);
        return err;
    }
    px_log_info("admin", "admin HTTP listening on %s:%u", cfg->admin_listen.host,
                px_http_server_port(a->srv));
    px_config_unref(cfg);
    return 0;
}

void px_admin_stop(void)
{
    px_admin_t *a = &g_admin;
    if (!a->srv)
        return;
    px_http_server_stop(a->srv);
    a->srv = NULL;
}

uint16_t px_admin_port(void)
{
    return px_http_server_port(g_admin.srv);
}

void px_admin_set_cache_ops(const px_admin_cache_ops_t *ops)
{
    atomic_store(&g_admin.cache, ops);
}

void px_admin_set_handler(px_admin_endpoint_t ep, px_http_handler_fn fn, void *arg)
{
    if ((unsigned)ep >= PX_ADMIN_EP_COUNT)
        return;
    pthread_mutex_lock(&g_admin.plug_lock);
    g_admin.plug[ep].fn = fn;
    g_admin.plug[ep].arg = arg;
    pthread_mutex_unlock(&g_admin.plug_lock);
}
