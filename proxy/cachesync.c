/*
 * The result cache across proxy instances (SPEC §5): invalidations through
 * Redis pub/sub and the shared second level (L2) in Redis or Redis Cluster.
 * Each worker has its own px_redis_t on its loop; worker 0 also holds the
 * subscription.
 *
 * Invalidation messages. Every tag a worker bumps is published on
 * PX_SYNC_CHANNEL as "FXI1" | instance id (8) | wall ms (8) | n (2) | tags
 * (8 each), little-endian. Other instances bump the same tags on receipt; an
 * instance ignores its own messages. While the subscription is down nothing
 * is served or filled (px_cache_set_synced), since invalidations would be
 * missed; when it is back, everything filled before is dropped.
 *
 * L2 entries. Key "fx:" + the 128-bit hash of the key material in hex. Value
 * "FXL2" | fill wall ms (8) | expiry wall ms (8) | key length (4) | key
 * material | value. An entry is accepted only when its key material is the
 * one asked for, it has not expired, it was filled after this instance's
 * channel came up, and after the latest bump of each of the reader's tags it
 * has heard of, with PX_SYNC_SKEW_MS to spare for clocks that differ between
 * hosts. Accepted entries are copied into L1 with the reader's own tags at
 * the versions read before the GET, so a local write meanwhile still wins.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/rand.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "px.h"
#include "px_cache.h"
#include "px_health.h"
#include "px_redis.h"

#define PX_SYNC_CHANNEL  "fastnext:invalidate"
#define PX_SYNC_SKEW_MS  500
#define PX_SYNC_MAX_TAGS 512

static uint64_t g_instance;
static bool g_configured;
static _Atomic uint64_t g_l2_hits, g_l2_misses, g_l2_errors, g_l2_refused, g_l2_sets, g_published,
    g_received, g_l2_ns, g_l2_samples;

struct px_cache_sync {
    px_redis_t *redis;
};

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}
static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

void px_cachesync_init(const px_config_t *cfg)
{
    g_configured = cfg->cache_enabled && (cfg->redis_host || cfg->redis_cluster_nodes);
    if (RAND_bytes((unsigned char *)&g_instance, sizeof(g_instance)) != 1)
        g_instance = px_cache_wall_ms() ^ (uint64_t)getpid() << 32;
    if (g_configured)
        px_cache_set_synced(false, px_health_generation()); /* until subscribed */
}

bool px_cachesync_configured(void)
{
    return g_configured;
}

/* ---- the channel ----------------------------------------------------------------- */

static void on_message(void *arg, const char *msg, size_t len)
{
    (void)arg;
    const uint8_t *p = (const uint8_t *)msg;
    if (len < 22 || memcmp(p, "FXI1", 4) != 0)
        return;
    uint64_t from = get_u64(p + 4), ms = get_u64(p + 12);
    unsigned n = (unsigned)p[20] | ((unsigned)p[21] << 8);
    if (len != 22 + 8u * n || from == g_instance)
        return;
    uint64_t gen = px_health_generation();
    for (unsigned i = 0; i < n; i++)
        px_cache_tag_bump_remote(get_u64(p + 22 + 8 * i), ms, gen);
    atomic_fetch_add_explicit(&g_received, 1, memory_order_relaxed);
}

static void on_state(void *arg, bool subscribed)
{
    (void)arg;
    px_cache_set_synced(subscribed, px_health_generation());
    if (subscribed)
        px_log_info("cache", "invalidation channel up: the cache serves again");
    else
        px_log_warn("cache", "invalidation channel lost: the cache steps aside until it is back");
}

/* ---- per worker ------------------------------------------------------------------- */

void px_cachesync_worker_start(px_worker_t *w)
{
    px_config_t *cfg = px_worker_cfg(w);
    if (!g_configured)
        return;
    px_redis_config_t rc;
    px_redis_config_defaults(&rc);
    rc.host = cfg->redis_host;
    rc.port = cfg->redis_port;
    rc.cluster_nodes = cfg->redis_cluster_nodes;
    rc.client_name = "fastnext-proxy";
    struct px_cache_sync *cs = calloc(1, sizeof(*cs));
    if (!cs || !(cs->redis = px_redis_new(&w->loop, &rc))) {
        free(cs);
        px_log_error("cache", "worker %d: cannot set up the Redis client", w->index);
        return;
    }
    w->sync = cs;
    if (w->index == 0 &&
        !px_redis_subscribe(cs->redis, PX_SYNC_CHANNEL, on_message, on_state, NULL))
        px_log_error("cache", "cannot subscribe to the invalidation channel");
}

void px_cachesync_worker_stop(px_worker_t *w)
{
    if (!w->sync)
        return;
    px_redis_free(w->sync->redis);
    free(w->sync);
    w->sync = NULL;
}

void px_cachesync_publish(px_worker_t *w, const px_tag_t *tags, int n)
{
    if (!w->sync || n <= 0)
        return;
    uint8_t buf[22 + 8 * 64];
    uint64_t ms = px_cache_wall_ms();
    while (n > 0) {
        int k = n > 64 ? 64 : n;
        memcpy(buf, "FXI1", 4);
        put_u64(buf + 4, g_instance);
        put_u64(buf + 12, ms);
        buf[20] = (uint8_t)k;
        buf[21] = 0;
        for (int i = 0; i < k; i++)
            put_u64(buf + 22 + 8 * i, tags[i]);
        if (px_redis_publish(w->sync->redis, PX_SYNC_CHANNEL, buf, 22 + 8 * (size_t)k))
            atomic_fetch_add_explicit(&g_published, 1, memory_order_relaxed);
        tags += k;
        n -= k;
    }
}

/* Bumps made off the loops (the admin port), published by worker 0. */
static pthread_mutex_t g_queue_lock = PTHREAD_MUTEX_INITIALIZER;
static px_tag_t g_queue[PX_SYNC_MAX_TAGS];
static int g_queued;
static bool g_queue_overflow;

void px_cachesync_queue_publish(px_shared_t *sh, const px_tag_t *tags, int n)
{
    if (!g_configured || !sh || sh->n_workers < 1)
        return;
    pthread_mutex_lock(&g_queue_lock);
    for (int i = 0; i < n; i++) {
        if (g_queued < PX_SYNC_MAX_TAGS)
            g_queue[g_queued++] = tags[i];
        else
            g_queue_overflow = true;
    }
    pthread_mutex_unlock(&g_queue_lock);
    uv_async_send(&sh->workers[0].wakeup);
}

void px_cachesync_drain(px_worker_t *w)
{
    if (w->index != 0 || !w->sync)
        return;
    px_tag_t tags[PX_SYNC_MAX_TAGS];
    pthread_mutex_lock(&g_queue_lock);
    int n = g_queued;
    memcpy(tags, g_queue, sizeof(tags[0]) * (size_t)n);
    if (g_queue_overflow) {
        tags[0] = px_cache_tag_epoch(); /* too many to name: everything */
        n = 1;
    }
    g_queued = 0;
    g_queue_overflow = false;
    pthread_mutex_unlock(&g_queue_lock);
    px_cachesync_publish(w, tags, n);
}

/* ---- L2 ------------------------------------------------------------------------------ */

bool px_cachesync_l2_available(px_worker_t *w)
{
    return w->sync && px_cache_synced() && px_redis_available(w->sync->redis);
}

static void l2_key(const uint8_t *key, size_t len, char out[40])
{
    static const char hex[] = "0123456789abcdef";
    XXH128_hash_t h = XXH3_128bits(key, len);
    memcpy(out, "fx:", 3);
    for (int i = 0; i < 16; i++) {
        uint64_t v = i < 8 ? h.high64 : h.low64;
        unsigned b = (unsigned)(v >> (8 * (7 - (i % 8)))) & 0xff;
        out[3 + 2 * i] = hex[b >> 4];
        out[4 + 2 * i] = hex[b & 15];
    }
    out[35] = 0;
}

void px_cachesync_l2_set(px_worker_t *w, const uint8_t *key, size_t key_len, const uint8_t *val,
                         size_t val_len, uint64_t fill_ms, uint32_t ttl_s)
{
    if (!px_cachesync_l2_available(w) || ttl_s == 0)
        return;
    size_t n = 4 + 8 + 8 + 4 + key_len + val_len;
    uint8_t *b = malloc(n);
    if (!b)
        return;
    memcpy(b, "FXL2", 4);
    put_u64(b + 4, fill_ms);
    put_u64(b + 12, fill_ms + (uint64_t)ttl_s * 1000u);
    put_u32(b + 20, (uint32_t)key_len);
    memcpy(b + 24, key, key_len);
    memcpy(b + 24 + key_len, val, val_len);
    char k[40];
    l2_key(key, key_len, k);
    if (px_redis_set(w->sync->redis, k, 35, b, n, ttl_s))
        atomic_fetch_add_explicit(&g_l2_sets, 1, memory_order_relaxed);
    free(b);
}

/* A GET in flight for a client. */
typedef struct l2_get {
    px_cachesync_got_cb cb;
    void *arg;
    uint8_t *key;
    size_t key_len;
    int n_tags;
    px_tag_t tags[PX_CACHE_MAX_TAGS];
    uint64_t versions[PX_CACHE_MAX_TAGS];
    uint64_t started_ns;
    px_redis_req_t id;
} l2_get_t;

/* Whether an L2 value may be served for these tags now. */
static bool l2_acceptable(const l2_get_t *g, const uint8_t *v, size_t len, const uint8_t **val,
                          size_t *val_len, uint64_t *expires_ms)
{
    if (len < 24 || memcmp(v, "FXL2", 4) != 0)
        return false;
    uint64_t fill = get_u64(v + 4), exp = get_u64(v + 12);
    uint32_t kl = get_u32(v + 20);
    if ((size_t)kl != g->key_len || len - 24 < kl || memcmp(v + 24, g->key, kl) != 0)
        return false; /* another key under the same hash */
    uint64_t now = px_cache_wall_ms();
    if (exp <= now)
        return false;
    if (fill < px_cache_synced_since_ms() + PX_SYNC_SKEW_MS)
        return false; /* filled before this instance could hear every write */
    for (int i = 0; i < g->n_tags; i++)
        if (fill < px_cache_tag_last_bump_ms(g->tags[i]) + PX_SYNC_SKEW_MS)
            return false;
    *val = v + 24 + kl;
    *val_len = len - 24 - kl;
    *expires_ms = exp;
    return true;
}

static void l2_got(void *arg, px_redis_status_t st, const char *data, size_t len)
{
    l2_get_t *g = arg;
    atomic_fetch_add_explicit(&g_l2_ns, uv_hrtime() - g->started_ns, memory_order_relaxed);
    atomic_fetch_add_explicit(&g_l2_samples, 1, memory_order_relaxed);
    bool stored = false;
    if (st == PX_REDIS_OK) {
        const uint8_t *val;
        size_t val_len;
        uint64_t exp;
        if (l2_acceptable(g, (const uint8_t *)data, len, &val, &val_len, &exp)) {
            uint64_t left = (exp - px_cache_wall_ms() + 999) / 1000;
            stored = px_cache_put(g->key, g->key_len, val, val_len, g->tags, g->versions, g->n_tags,
                                  (uint32_t)(left ? left : 1)) == PX_CACHE_PUT_STORED;
            atomic_fetch_add_explicit(stored ? &g_l2_hits : &g_l2_refused, 1, memory_order_relaxed);
        } else {
            atomic_fetch_add_explicit(&g_l2_refused, 1, memory_order_relaxed);
        }
    } else if (st == PX_REDIS_NIL) {
        atomic_fetch_add_explicit(&g_l2_misses, 1, memory_order_relaxed);
    } else {
        atomic_fetch_add_explicit(&g_l2_errors, 1, memory_order_relaxed);
    }
    px_cachesync_got_cb cb = g->cb;
    void *cb_arg = g->arg;
    free(g->key);
    free(g);
    cb(cb_arg, stored);
}

void *px_cachesync_l2_get(px_worker_t *w, const uint8_t *key, size_t key_len, const px_tag_t *tags,
                          const uint64_t *versions, int n_tags, px_cachesync_got_cb cb, void *arg)
{
    if (!px_cachesync_l2_available(w) || n_tags > PX_CACHE_MAX_TAGS)
        return NULL;
    l2_get_t *g = calloc(1, sizeof(*g));
    if (!g || !(g->key = malloc(key_len ? key_len : 1))) {
        free(g);
        return NULL;
    }
    memcpy(g->key, key, key_len);
    g->key_len = key_len;
    g->n_tags = n_tags;
    memcpy(g->tags, tags, sizeof(*tags) * (size_t)n_tags);
    memcpy(g->versions, versions, sizeof(*versions) * (size_t)n_tags);
    g->cb = cb;
    g->arg = arg;
    g->started_ns = uv_hrtime();
    char k[40];
    l2_key(key, key_len, k);
    /* a failure to send calls l2_got at once: report "not pending" then */
    bool sync_fail = false;
    g->id = 0;
    px_redis_req_t id = px_redis_get(w->sync->redis, k, 35, l2_got, g);
    if (id == 0)
        sync_fail = true; /* l2_got already ran (and freed g, and called cb) */
    else
        g->id = id;
    return sync_fail ? PX_CACHESYNC_DONE : g;
}

void px_cachesync_l2_cancel(px_worker_t *w, void *pending)
{
    l2_get_t *g = pending;
    if (!g || g == PX_CACHESYNC_DONE)
        return;
    if (w->sync)
        px_redis_cancel(w->sync->redis, g->id);
    free(g->key);
    free(g);
}

void px_cachesync_stats(px_cachesync_stats_t *o)
{
    memset(o, 0, sizeof(*o));
    o->l2_hits = atomic_load(&g_l2_hits);
    o->l2_misses = atomic_load(&g_l2_misses);
    o->l2_errors = atomic_load(&g_l2_errors);
    o->l2_refused = atomic_load(&g_l2_refused);
    o->l2_sets = atomic_load(&g_l2_sets);
    o->published = atomic_load(&g_published);
    o->received = atomic_load(&g_received);
    o->l2_ns_sum = atomic_load(&g_l2_ns);
    o->l2_samples = atomic_load(&g_l2_samples);
    o->configured = g_configured;
    o->synced = px_cache_synced();
}

/* Each worker copies its Redis client's counters here on its tick, so other
 * threads never touch a client that its worker may be freeing. */
#define PX_SYNC_MAX_WORKERS 64
static _Atomic uint64_t g_w_errors[PX_SYNC_MAX_WORKERS], g_w_commands[PX_SYNC_MAX_WORKERS];

void px_cachesync_tick(px_worker_t *w)
{
    if (!w->sync || w->index < 0 || w->index >= PX_SYNC_MAX_WORKERS)
        return;
    px_redis_stats_t st;
    px_redis_stats(w->sync->redis, &st);
    atomic_store_explicit(&g_w_errors[w->index], st.errors, memory_order_relaxed);
    atomic_store_explicit(&g_w_commands[w->index], st.commands, memory_order_relaxed);
}

void px_cachesync_redis_totals(uint64_t *errors, uint64_t *commands, int *available)
{
    *errors = *commands = 0;
    for (int i = 0; i < PX_SYNC_MAX_WORKERS; i++) {
        *errors += atomic_load_explicit(&g_w_errors[i], memory_order_relaxed);
        *commands += atomic_load_explicit(&g_w_commands[i], memory_order_relaxed);
    }
    *available = g_configured && px_cache_synced() ? 1 : 0;
}
