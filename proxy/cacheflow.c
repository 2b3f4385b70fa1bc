/*
 * The result cache on the session side (SPEC §5): which units a client sends
 * are answered from the cache, which fill it, and which writes invalidate
 * what. The store and the tags are in cache.c.
 *
 * Reads. A unit is looked up when the client is between transactions
 * (ReadyForQuery 'I', nothing outstanding), is not pinned and has not
 * changed session state the proxy does not track. Two shapes are cached:
 *   - a simple Query holding one cacheable SELECT;
 *   - an extended unit [Parse] Bind [Describe portal] Execute(all rows) Sync
 *     of one cacheable SELECT, keyed on the bound values and formats.
 * A hit is written to the client from the entry (plus ParseComplete and
 * ReadyForQuery, which the client's protocol flow needs) without a server
 * connection. A miss arms a fill: the tag versions are read now, before the
 * unit is sent, and the replies the server forwards are captured; at the
 * unit's ReadyForQuery the capture is stored if nothing but rows came back,
 * the transaction state is still idle and no tag moved meanwhile. A result
 * read on a replica is stored only if the replica has replayed every write
 * that bumped one of its tags.
 *
 * Writes. Every statement a client sends that may write bumps its tags when
 * it is sent, and again when its transaction ends (the ReadyForQuery 'I'
 * that ends it is passed to the client only afterwards), so a read that
 * starts after the client saw its COMMIT never gets an entry older than it.
 * Row tags are used when the write names its rows by an integer primary key;
 * writes the cache cannot attribute bump everything (EPOCH).
 */
#include <stdlib.h>
#include <string.h>

#include "px.h"
#include "px_cache.h"
#include "px_cdc.h"
#include "px_classify.h"
#include "px_health.h"
#include "px_digest.h"
#include "px_metrics.h"
#include "sqlscan.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

/* A fill in progress: what will be stored when the unit's replies are in. */
struct px_fill {
    struct px_fill *next; /* the worker's in-flight chain */
    px_worker_t *w;
    uint64_t hash;     /* of the key material */
    px_list_t waiters; /* clients waiting for this fill (through their link) */
    bool extended;
    bool has_parse;
    bool aborted;
    bool complete;      /* CommandComplete captured */
    bool shared;        /* it holds its slot in g_fill_slots */
    bool capturing_msg; /* the message being streamed is captured */
    uint32_t ttl;
    uint64_t fill_ms; /* wall clock when its tag versions were read (for L2) */
    int n_tags;
    px_tag_t tags[PX_CACHE_MAX_TAGS];
    uint64_t versions[PX_CACHE_MAX_TAGS];
    uint8_t *buf; /* captured replies */
    size_t len, cap;
    size_t key_len;
    uint8_t key[]; /* key material */
};

/* Tags a transaction's writes bumped, bumped again when it ends. */
#define PX_TXN_BUMPS 64
struct px_txn_bumps {
    bool epoch;
    bool ddl; /* DDL: the catalog is stale again once it commits */
    int n;
    px_tag_t tags[PX_TXN_BUMPS];
};

/* A client's cache state, allocated at its first use of the cache. */
struct px_client_cache {
    struct px_fill *fill;    /* the unit in flight fills an entry */
    struct px_fill *waiting; /* an identical fill of another client it waits for */
    void *l2_pending;        /* an L2 lookup in flight for its unit */
    bool l2_checked;         /* L2 was asked for this unit: fill on a miss */
    bool l2_stored;          /* ... and answered: the next L1 hit is an L2 hit */
    bool woken;              /* on the worker's wake list */
    uint64_t watching;       /* on the worker's watch list: the slot value it waits to change */
    uint64_t watch_start_ms;
    struct px_txn_bumps bumps; /* to bump again when the transaction ends */
    uint8_t *unnamed;          /* the last unnamed Parse body after its name */
    uint32_t unnamed_len;
    uint32_t unnamed_cap; /* bytes allocated: grown, never shrunk, reused per Parse */
};

/*
 * Identical misses are coalesced per worker: while one client's fill of a
 * key is in flight, others asking for the same key wait for it (linked into
 * the fill's waiters through their idle `link`) and look up again when it
 * ends, stored or not. Wake-ups go through the worker's async handle, never
 * from inside the filler's processing.
 */
#define PX_INFLIGHT_BUCKETS 256
struct px_worker_cache {
    struct px_fill *inflight[PX_INFLIGHT_BUCKETS];
    px_list_t wake;  /* clients to process again */
    px_list_t watch; /* clients waiting for another worker's fill */
};

/*
 * Across workers, a fill announces itself in slot hash % PX_FILL_SLOTS (the
 * slot holds the key's hash while the fill runs, if the slot was free). A
 * miss on another worker whose hash is in its slot watches it instead of
 * asking PostgreSQL too, and looks up again once the slot has changed: the
 * entry is in the shared L1 by then, or it fills itself. A hash that only
 * collides costs that client one wait, never a wrong answer (the lookup
 * compares the whole key). Ordering: a watcher counts itself in its worker's
 * fill_watchers before it reads the slot, and a filler clears the slot before
 * it reads the counters (both sequentially consistent), so one of them always
 * sees the other: no watcher is left waiting for a fill that already ended.
 */
#define PX_FILL_SLOTS          4096u
#define PX_FILL_WATCH_LIMIT_MS 5000u /* a watcher stops waiting after this, and fills */
static _Atomic uint64_t g_fill_slots[PX_FILL_SLOTS];

static inline uint64_t fill_slot_value(uint64_t hash)
{
    return hash ? hash : 1;
}

static struct px_worker_cache *worker_cache(px_worker_t *w)
{
    if (!w->cache) {
        w->cache = calloc(1, sizeof(*w->cache));
        if (w->cache) {
            px_list_init(&w->cache->wake);
            px_list_init(&w->cache->watch);
        }
    }
    return w->cache;
}

/* The fill gives its slot back; workers with watchers look again. */
static void fill_unshare(struct px_fill *f)
{
    if (!f->shared)
        return;
    f->shared = false;
    atomic_store(&g_fill_slots[f->hash % PX_FILL_SLOTS], 0);
    px_shared_t *sh = f->w->shared;
    for (int i = 0; i < sh->n_workers; i++) {
        px_worker_t *o = &sh->workers[i];
        if (o != f->w && atomic_load(&o->fill_watchers) > 0)
            uv_async_send(&o->wakeup);
    }
}

static void unwatch(px_client_t *c)
{
    px_list_del(&c->link);
    c->cache->watching = 0;
    atomic_fetch_sub(&c->io.w->fill_watchers, 1);
}

/* Clients whose watched fill ended (or that waited too long) look up again. */
static void watchers_wake(struct px_worker_cache *wc)
{
    uint64_t now = 0;
    px_list_t *l = wc->watch.next;
    while (l != &wc->watch) {
        px_list_t *next = l->next;
        px_client_t *c = px_container_of(l, px_client_t, link);
        struct px_client_cache *cc = c->cache;
        bool ended = atomic_load(&g_fill_slots[cc->watching % PX_FILL_SLOTS]) != cc->watching;
        if (!ended) {
            if (!now)
                now = px_cache_wall_ms();
            ended = now - cc->watch_start_ms > PX_FILL_WATCH_LIMIT_MS;
        }
        if (ended) {
            unwatch(c);
            cc->woken = true;
            px_list_append(&wc->wake, &c->link);
        }
        l = next;
    }
}

static void inflight_del(struct px_fill *f)
{
    struct px_worker_cache *wc = f->w ? f->w->cache : NULL;
    if (!wc)
        return;
    struct px_fill **pp = &wc->inflight[f->hash % PX_INFLIGHT_BUCKETS];
    while (*pp && *pp != f)
        pp = &(*pp)->next;
    if (*pp)
        *pp = f->next;
}

static struct px_fill *inflight_find(px_worker_t *w, uint64_t h, const uint8_t *key, size_t len)
{
    struct px_worker_cache *wc = w->cache;
    if (!wc)
        return NULL;
    for (struct px_fill *f = wc->inflight[h % PX_INFLIGHT_BUCKETS]; f; f = f->next)
        if (f->hash == h && f->key_len == len && memcmp(f->key, key, len) == 0)
            return f;
    return NULL;
}

/* The fill ended: its waiters look up again on the next loop turn. */
static void release_waiters(struct px_fill *f)
{
    inflight_del(f);
    fill_unshare(f);
    struct px_worker_cache *wc = f->w ? f->w->cache : NULL;
    bool any = false;
    while (!px_list_empty(&f->waiters)) {
        px_list_t *l = f->waiters.next;
        px_list_del(l);
        px_client_t *c = px_container_of(l, px_client_t, link);
        c->cache->waiting = NULL;
        if (wc) {
            c->cache->woken = true;
            px_list_append(&wc->wake, &c->link);
            any = true;
        }
    }
    if (any)
        uv_async_send(&f->w->wakeup);
}

static void fill_free(struct px_fill *f)
{
    release_waiters(f);
    free(f->buf);
    free(f);
}

void px_cacheflow_worker_wake(px_worker_t *w)
{
    struct px_worker_cache *wc = w->cache;
    if (wc && !px_list_empty(&wc->watch))
        watchers_wake(wc);
    while (wc && !px_list_empty(&wc->wake)) {
        px_list_t *l = wc->wake.next;
        px_list_del(l);
        px_client_t *c = px_container_of(l, px_client_t, link);
        c->cache->woken = false;
        if (c->state == PX_CLIENT_IDLE)
            px_client_process(c);
    }
}

void px_cacheflow_worker_free(px_worker_t *w)
{
    free(w->cache);
    w->cache = NULL;
}

bool px_cacheflow_waiting(const px_client_t *c)
{
    return c->cache &&
           (c->cache->waiting || c->cache->woken || c->cache->watching || c->cache->l2_pending);
}

/* Put @p c on its worker's wake list (it looks up again on the next turn). */
static void wake(px_client_t *c)
{
    struct px_worker_cache *wc = worker_cache(c->io.w);
    if (!wc || !c->cache || c->cache->woken)
        return;
    c->cache->woken = true;
    px_list_append(&wc->wake, &c->link);
    uv_async_send(&c->io.w->wakeup);
}

static struct px_client_cache *client_cache(px_client_t *c)
{
    if (!c->cache)
        c->cache = calloc(1, sizeof(*c->cache));
    return c->cache;
}

/* ---- small readers --------------------------------------------------------------- */

static bool rd16(const uint8_t **p, const uint8_t *e, int *out)
{
    if (e - *p < 2)
        return false;
    *out = (int16_t)(((*p)[0] << 8) | (*p)[1]);
    *p += 2;
    return true;
}

static bool rd32(const uint8_t **p, const uint8_t *e, int32_t *out)
{
    if (e - *p < 4)
        return false;
    *out = (int32_t)(((uint32_t)(*p)[0] << 24) | ((uint32_t)(*p)[1] << 16) |
                     ((uint32_t)(*p)[2] << 8) | (*p)[3]);
    *p += 4;
    return true;
}

/* A Parse body after the name: the text, then int16 n and n type OIDs. */
typedef struct parse_info {
    const uint8_t *text;
    size_t text_len;
    const uint8_t *rest; /* text\0 + types: the statement's identity */
    size_t rest_len;
    int n_types;
    const uint8_t *types; /* n_types big-endian OIDs */
} parse_info_t;

static bool parse_rest(const uint8_t *rest, size_t len, parse_info_t *pi)
{
    const uint8_t *z = memchr(rest, 0, len);
    if (!z)
        return false;
    pi->text = rest;
    pi->text_len = (size_t)(z - rest);
    pi->rest = rest;
    pi->rest_len = len;
    const uint8_t *p = z + 1, *e = rest + len;
    if (!rd16(&p, e, &pi->n_types) || pi->n_types < 0 || e - p < 4 * pi->n_types)
        return false;
    pi->types = p;
    return true;
}

static uint32_t param_type(const parse_info_t *pi, int i)
{
    if (!pi || i >= pi->n_types)
        return 0;
    const uint8_t *t = pi->types + 4 * i;
    return ((uint32_t)t[0] << 24) | ((uint32_t)t[1] << 16) | ((uint32_t)t[2] << 8) | t[3];
}

/* A Bind body after the two names. */
typedef struct bind_info {
    const uint8_t *after; /* formats, values, result formats */
    size_t after_len;
    int n_fmt;
    const uint8_t *fmts;
    int n_params;
    const uint8_t *values; /* (int32 len, bytes)* */
    const uint8_t *end;
} bind_info_t;

static bool parse_bind(px_span_t body, bind_info_t *bi)
{
    px_span_t portal, stmt;
    if (!px_codec_parse_bind_names(body, &portal, &stmt))
        return false;
    const uint8_t *p = stmt.p + stmt.n + 1, *e = body.p + body.n;
    bi->after = p;
    bi->after_len = (size_t)(e - p);
    bi->end = e;
    if (!rd16(&p, e, &bi->n_fmt) || bi->n_fmt < 0 || e - p < 2 * bi->n_fmt)
        return false;
    bi->fmts = p;
    p += 2 * bi->n_fmt;
    if (!rd16(&p, e, &bi->n_params) || bi->n_params < 0)
        return false;
    bi->values = p;
    return true;
}

/* Parameter @p n (1-based) of a Bind as an integer, when its value can
 * only mean that integer: text "-?[0-9]+" (for an undeclared, integer or
 * numeric parameter) or a 2/4/8-byte binary value of a declared int2/int4/
 * int8 parameter. */
static bool bind_int(const bind_info_t *bi, const parse_info_t *pi, int n, int64_t *out)
{
    if (!bi || n < 1 || n > bi->n_params)
        return false;
    int fmt = 0;
    if (bi->n_fmt == 1)
        fmt = (bi->fmts[0] << 8) | bi->fmts[1];
    else if (bi->n_fmt > 1 && n <= bi->n_fmt)
        fmt = (bi->fmts[2 * (n - 1)] << 8) | bi->fmts[2 * (n - 1) + 1];
    const uint8_t *p = bi->values, *e = bi->end;
    int32_t len = 0;
    for (int i = 1; i <= n; i++) {
        if (!rd32(&p, e, &len))
            return false;
        if (len < 0) {
            if (i == n)
                return false; /* NULL */
            continue;
        }
        if (e - p < len)
            return false;
        if (i < n)
            p += len;
    }
    uint32_t type = param_type(pi, n - 1);
    if (fmt == 1) {
        if (!((type == 21 && len == 2) || (type == 23 && len == 4) || (type == 20 && len == 8)))
            return false;
        uint64_t v = 0;
        for (int i = 0; i < len; i++)
            v = (v << 8) | p[i];
        if (len == 2)
            *out = (int16_t)v;
        else if (len == 4)
            *out = (int32_t)v;
        else
            *out = (int64_t)v;
        return true;
    }
    if (type != 0 && type != 20 && type != 21 && type != 23 && type != 1700)
        return false;
    if (len < 1 || len > 20)
        return false;
    int i = 0;
    bool neg = p[0] == '-';
    if (neg)
        i++;
    if (i >= len)
        return false;
    uint64_t v = 0;
    for (; i < len; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        uint64_t d = (uint64_t)(p[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    if (neg ? v > (uint64_t)INT64_MAX + 1 : v > (uint64_t)INT64_MAX)
        return false;
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return true;
}

/* ---- tags of a statement ----------------------------------------------------------- */

static bool add_tag(px_tag_t *tags, int *n, px_tag_t t)
{
    return px_cache_tags_add(tags, n, PX_CACHE_MAX_TAGS, t);
}

/* The integer primary-key value(s) a statement names for its relation
 * @p rel with primary key @p pk: one per key row. */
static int key_values(const px_classify_result_t *r, unsigned rel, const char *pk,
                      const bind_info_t *bi, const parse_info_t *pi, int64_t *vals, int cap)
{
    if (r->key_rows == 0 || r->key_rows > cap || r->key_rows > PX_CLASSIFY_MAX_KEYS)
        return 0;
    bool have[PX_CLASSIFY_MAX_KEYS] = {false};
    for (unsigned i = 0; i < r->n_keys; i++) {
        const px_classify_key_t *k = &r->keys[i];
        if (k->rel != rel || k->row >= r->key_rows || strcmp(r->cols + k->col_off, pk) != 0)
            continue;
        int64_t v;
        if (k->is_param) {
            if (!bind_int(bi, pi, k->param, &v))
                return 0;
        } else {
            v = k->value;
        }
        if (have[k->row] && vals[k->row] != v)
            return 0; /* pk = 1 AND pk = 2: nothing, but keep it simple */
        vals[k->row] = v;
        have[k->row] = true;
    }
    for (int i = 0; i < r->key_rows; i++)
        if (!have[i])
            return 0;
    return r->key_rows;
}

/* A relation the catalog does not know (made since the last load, or
 * outside the proxy): ask for a reload, at most once a second (the prober loads it at its next
 * round). */
static void unknown_relation(void)
{
    static _Atomic uint64_t last;
    uint64_t now = px_cache_now_ms(), prev = atomic_load_explicit(&last, memory_order_relaxed);
    if (now - prev >= 1000 && atomic_compare_exchange_strong_explicit(
                                  &last, &prev, now, memory_order_relaxed, memory_order_relaxed))
        px_health_refresh_catalog();
}

/* TABLESAMPLE draws other rows each time unless REPEATABLE: never cached. */
static bool sampled(const uint8_t *sql, size_t n)
{
    return px_sqlscan_mentions((const char *)sql, n, "tablesample");
}

/* Tags of a cacheable read; false when it must not be cached. */
static bool read_tags(const px_classify_result_t *r, const bind_info_t *bi, const parse_info_t *pi,
                      px_tag_t *tags, int *n)
{
    if (r->cls != PX_CLASS_READ || !(r->flags & PX_CLS_F_CACHEABLE) || r->n_stmts != 1 ||
        (r->flags & (PX_CLS_F_USER_FUNC | PX_CLS_F_RELS_TRUNCATED | PX_CLS_F_HAS_WRITE |
                     PX_CLS_F_LOCKING | PX_CLS_F_PIN | PX_CLS_F_HAS_SESSION | PX_CLS_F_HAS_TXN)))
        return false;
    *n = 0;
    add_tag(tags, n, px_cache_tag_epoch());
    px_cache_rel_t rel;
    if (r->n_rels == 1 && px_cache_catalog_lookup(px_classify_rel(r, 0), &rel) &&
        (rel.flags & PX_CACHE_REL_CACHEABLE) && (rel.flags & PX_CACHE_REL_INT_PK) &&
        rel.n_bases == 1) {
        int64_t v;
        if (key_values(r, 0, rel.pk_col, bi, pi, &v, 1) == 1) {
            add_tag(tags, n, px_cache_tag_all(rel.bases[0]));
            add_tag(tags, n, px_cache_tag_row(rel.bases[0], v));
            return true;
        }
    }
    for (unsigned i = 0; i < r->n_rels; i++) {
        if (!px_cache_catalog_lookup(px_classify_rel(r, i), &rel)) {
            unknown_relation();
            return false;
        }
        if (!(rel.flags & PX_CACHE_REL_CACHEABLE) || rel.n_bases == 0)
            return false;
        for (int b = 0; b < rel.n_bases; b++)
            if (!add_tag(tags, n, px_cache_tag_all(rel.bases[b])) ||
                !add_tag(tags, n, px_cache_tag_scan(rel.bases[b])))
                return false;
    }
    return true;
}

/* ---- writes ------------------------------------------------------------------------ */

/* Bump @p t here (and remember it for the end of the transaction); the
 * caller publishes what it bumped to the other instances. */
static void note_bump(px_client_t *c, px_tag_t t, uint64_t gen)
{
    px_cache_tag_bump(t, gen);
    struct px_client_cache *cc = client_cache(c);
    if (!cc) {
        /* cannot remember it for the end of the transaction: the bump
         * above is all there is, so make it cover everything */
        px_cache_bump_all(gen);
        return;
    }
    struct px_txn_bumps *b = &cc->bumps;
    if (t == px_cache_tag_epoch()) {
        b->epoch = true;
        return;
    }
    for (int i = 0; i < b->n; i++)
        if (b->tags[i] == t)
            return;
    if (b->n >= PX_TXN_BUMPS) {
        b->epoch = true;
        return;
    }
    b->tags[b->n++] = t;
}

static void bump_everything(px_client_t *c, uint64_t gen)
{
    px_tag_t e = px_cache_tag_epoch();
    note_bump(c, e, gen);
    px_cachesync_publish(c->io.w, &e, 1);
}

/* A statement text a client sends: bump what it may write. */
static void note_statement(px_client_t *c, const uint8_t *sql, size_t len, const bind_info_t *bi,
                           const parse_info_t *pi)
{
    px_classify_result_t r;
    px_classify((const char *)sql, len, &r);
    bool writes = r.cls == PX_CLASS_WRITE || (r.cls == PX_CLASS_UNKNOWN && r.n_stmts > 0) ||
                  (r.flags & PX_CLS_F_HAS_WRITE) || r.session == PX_SESSION_EXECUTE;
    px_set_stmt_t set;
    if (r.cls == PX_CLASS_SESSION && r.session != PX_SESSION_EXECUTE &&
        r.session != PX_SESSION_DECLARE_CURSOR && r.session != PX_SESSION_FETCH &&
        r.session != PX_SESSION_CLOSE_CURSOR &&
        !(px_worker_cfg(c->io.w)->pool_mode == PX_POOL_MODE_TRANSACTION &&
          px_sqlscan_parse_set((const char *)sql, len, &set)))
        c->cache_off = true; /* session settings the cache's key does not hold (SETs carried
                                in transaction pooling join the key with the client's settings) */
    if (r.flags & PX_CLS_F_PIN)
        c->cache_off = true; /* temporary tables may shadow cached names, and the like */
    if (!writes)
        return;
    uint64_t gen = px_health_generation();
    bool dml = (r.flags & PX_CLS_F_DML) && r.n_stmts > 0 && !(r.flags & PX_CLS_F_RELS_TRUNCATED);
    if (dml) {
        /* the relations it writes: by row when it names them by primary key */
        px_tag_t t[PX_CACHE_MAX_TAGS];
        int n = 0;
        bool any = false;
        for (unsigned i = 0; i < r.n_rels && dml; i++) {
            if (!(r.rel_flags[i] & PX_REL_WRITE))
                continue;
            any = true;
            px_cache_rel_t rel;
            if (!px_cache_catalog_lookup(px_classify_rel(&r, i), &rel) ||
                (rel.flags & PX_CACHE_REL_SIDE) || rel.n_bases == 0) {
                dml = false;
                break;
            }
            int64_t vals[PX_CACHE_MAX_TAGS / 2];
            int nv = 0;
            if (r.n_rels == 1 && (rel.flags & PX_CACHE_REL_INT_PK) && rel.n_bases == 1)
                nv = key_values(&r, i, rel.pk_col, bi, pi, vals, PX_CACHE_MAX_TAGS / 2);
            if (!px_cache_tags_add_write(t, &n, PX_CACHE_MAX_TAGS, &rel, vals, nv))
                dml = false;
        }
        /* after DDL through the proxy, until the catalog has been loaded
         * again, a table may have a trigger or cascade it does not know */
        if (dml && any && !px_cache_catalog_stale()) {
            for (int i = 0; i < n; i++)
                note_bump(c, t[i], gen);
            px_cachesync_publish(c->io.w, t, n);
            return;
        }
    }
    bump_everything(c, gen);
    if (!(r.flags & PX_CLS_F_DML) && r.cls != PX_CLASS_UNKNOWN) {
        /* DDL: views, keys, triggers may have changed (again at its commit) */
        struct px_client_cache *cc = client_cache(c);
        if (cc)
            cc->bumps.ddl = true;
        px_cache_note_ddl();
        px_health_refresh_catalog();
    }
}

/* Session-mode or unknown named statement: its text is not known here. */
static const px_stmt_t *client_stmt(px_client_t *c, px_span_t name)
{
    if (name.n == 0)
        return NULL;
    return px_stmt_map_get(&c->stmts, (const char *)name.p, name.n);
}

void px_cacheflow_on_client_msg(px_client_t *c, const px_msg_hdr_t *hdr, px_span_t body)
{
    switch (hdr->type) {
    case 'Q': {
        px_span_t sql;
        if (px_codec_parse_query(body, &sql))
            note_statement(c, sql.p, sql.n, NULL, NULL);
        break;
    }
    case 'P': {
        px_span_t stmt, sql;
        int np;
        if (!px_codec_parse_parse(body, &stmt, &sql, &np))
            break;
        /* remember an unnamed statement's text for its Binds */
        if (stmt.n != 0)
            break;
        struct px_client_cache *cc = client_cache(c);
        if (!cc)
            break;
        const uint8_t *rest = stmt.p + stmt.n + 1;
        size_t rest_len = (size_t)(body.p + body.n - rest);
        cc->unnamed_len = 0;
        if (rest_len > cc->unnamed_cap) {
            /* bounded by the message size limit */
            uint8_t *nb = realloc(cc->unnamed, rest_len);
            if (!nb)
                break; /* its Binds bump everything */
            cc->unnamed = nb;
            cc->unnamed_cap = (uint32_t)rest_len;
        }
        if (rest_len)
            memcpy(cc->unnamed, rest, rest_len);
        cc->unnamed_len = (uint32_t)rest_len;
        break;
    }
    case 'B': {
        bind_info_t bi;
        px_span_t portal, stmt;
        if (!px_codec_parse_bind_names(body, &portal, &stmt) || !parse_bind(body, &bi)) {
            bump_everything(c, px_health_generation());
            break;
        }
        parse_info_t pi;
        const px_stmt_t *st = client_stmt(c, stmt);
        bool ok = false;
        if (st)
            ok = parse_rest(st->rest, st->rest_len, &pi);
        else if (stmt.n == 0 && c->cache && c->cache->unnamed_len)
            ok = parse_rest(c->cache->unnamed, c->cache->unnamed_len, &pi);
        if (ok)
            note_statement(c, pi.text, pi.text_len, &bi, &pi);
        else
            bump_everything(c, px_health_generation());
        break;
    }
    case 'F':
        bump_everything(c, px_health_generation());
        break;
    default:
        break;
    }
}

/* ---- lookups ------------------------------------------------------------------------ */

static bool key_put(uint8_t *buf, size_t cap, size_t *len, const void *p, size_t n)
{
    if (cap - *len < n)
        return false;
    memcpy(buf + *len, p, n);
    *len += n;
    return true;
}

/* Startup settings that cannot change a result: left out of keys so
 * applications that differ only in them share entries. */
static bool param_irrelevant(const char *name)
{
    static const char *const names[] = {
        "application_name",    "fallback_application_name",           "statement_timeout",
        "lock_timeout",        "idle_in_transaction_session_timeout", "idle_session_timeout",
        "log_statement",       "log_min_duration_statement",          "log_min_messages",
        "client_min_messages",
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(name, names[i]) == 0)
            return true;
    return false;
}

/* The key material every entry of this client starts with: who is asking
 * and the settings its results depend on, in the order the client gave
 * them (another order only means another entry). */
static bool key_prefix(px_client_t *c, char shape, uint8_t *buf, size_t cap, size_t *len)
{
    *len = 0;
    if (!key_put(buf, cap, len, &shape, 1) ||
        !key_put(buf, cap, len, c->database, strlen(c->database) + 1) ||
        !key_put(buf, cap, len, c->user, strlen(c->user) + 1))
        return false;
    const char *p = c->params.block, *e = p ? p + c->params.len : NULL;
    while (p && p < e) {
        const char *name = p;
        size_t nl = strnlen(name, (size_t)(e - name));
        if (name + nl >= e)
            return false;
        const char *value = name + nl + 1;
        size_t vl = strnlen(value, (size_t)(e - value));
        if (value + vl >= e)
            return false;
        p = value + vl + 1;
        if (param_irrelevant(name))
            continue;
        if (!key_put(buf, cap, len, name, nl + 1) || !key_put(buf, cap, len, value, vl + 1))
            return false;
    }
    return key_put(buf, cap, len, "", 1);
}

#define KEY_MAX (64 * 1024)

/* An extended unit at the client's read position: [P] B [D] E S, whole. */
typedef struct unit {
    bool has_parse, has_describe;
    int32_t max_rows;
    px_span_t parse_name;
    parse_info_t pi;
    bind_info_t bi;
    size_t total; /* bytes of the whole unit */
} unit_t;

static bool read_unit(px_client_t *c, const px_config_t *cfg, unit_t *u)
{
    px_iobuf_t *in = c->io.in;
    const uint8_t *p = in->data + in->rpos, *end = in->data + in->wpos;
    memset(u, 0, sizeof(*u));
    int step = 0; /* 0: P or B, 1: D or E, 2: E, 3: S */
    bool have_text = false;
    while (p < end) {
        px_msg_hdr_t hdr;
        px_span_t body;
        size_t used;
        if (px_codec_read_msg(p, (size_t)(end - p), cfg->max_message_size, &hdr, &body, &used) !=
            PX_CODEC_OK)
            return false;
        p += used;
        switch (hdr.type) {
        case 'P': {
            if (step != 0 || u->has_parse)
                return false;
            px_span_t sql;
            int np;
            if (!px_codec_parse_parse(body, &u->parse_name, &sql, &np))
                return false;
            const uint8_t *rest = u->parse_name.p + u->parse_name.n + 1;
            if (!parse_rest(rest, (size_t)(body.p + body.n - rest), &u->pi))
                return false;
            u->has_parse = have_text = true;
            /* session mode keeps named statements on the server only */
            if (u->parse_name.n > 0 && cfg->pool_mode != PX_POOL_MODE_TRANSACTION)
                return false;
            if (u->parse_name.n > 0 &&
                px_stmt_map_get(&c->stmts, (const char *)u->parse_name.p, u->parse_name.n))
                return false; /* a duplicate name: the server's error */
            break;
        }
        case 'B': {
            if (step != 0)
                return false;
            px_span_t portal, stmt;
            if (!px_codec_parse_bind_names(body, &portal, &stmt) || portal.n != 0 ||
                !parse_bind(body, &u->bi))
                return false;
            if (u->has_parse) {
                if (stmt.n != u->parse_name.n || memcmp(stmt.p, u->parse_name.p, stmt.n) != 0)
                    return false;
            } else {
                const px_stmt_t *st = client_stmt(c, stmt);
                if (!st || cfg->pool_mode != PX_POOL_MODE_TRANSACTION ||
                    !parse_rest(st->rest, st->rest_len, &u->pi))
                    return false;
                have_text = true;
            }
            step = 1;
            break;
        }
        case 'D': {
            uint8_t kind;
            px_span_t name;
            if (step != 1 || !px_codec_parse_target(body, &kind, &name) || kind != 'P' ||
                name.n != 0)
                return false;
            u->has_describe = true;
            step = 2;
            break;
        }
        case 'E': {
            px_span_t portal;
            int32_t max_rows;
            if ((step != 1 && step != 2) || !px_codec_parse_execute(body, &portal, &max_rows) ||
                portal.n != 0 || max_rows < 0)
                return false;
            u->max_rows = max_rows; /* fetchone-style limits are part of the key */
            step = 3;
            break;
        }
        case 'S':
            if (step != 3 || !have_text)
                return false;
            u->total = (size_t)(p - (in->data + in->rpos));
            return true;
        default:
            return false;
        }
    }
    return false;
}

/* The number of rows a cached reply ends with (its CommandComplete tag). */
static uint64_t value_rows(const uint8_t *v, size_t n)
{
    uint64_t rows = 0;
    px_msg_hdr_t hdr;
    px_span_t body, tag;
    size_t used;
    while (n > 0 && px_codec_read_msg(v, n, UINT32_MAX, &hdr, &body, &used) == PX_CODEC_OK) {
        if (hdr.type == 'C' && px_codec_parse_command_complete(body, &tag))
            rows = px_codec_tag_rows(tag);
        v += used;
        n -= used;
    }
    return rows;
}

static void count_hit(px_client_t *c, uint64_t t0)
{
    uint64_t dt = uv_hrtime() - t0;
    struct px_client_cache *cc = c->cache;
    bool from_l2 = cc && cc->l2_stored;
    if (cc)
        cc->l2_checked = cc->l2_stored = false;
    px_cache_count(from_l2 ? PX_CACHE_C_L2_HIT : PX_CACHE_C_HIT, 1);
    px_cache_observe_hit_ns(dt);
    PX_STAT_INC(c->io.w, queries);
    PX_STAT_INC(c->io.w, transactions); /* an autocommit unit, as the client sees it */
    px_metrics_observe_query(c->io.w->index, PX_METRICS_ROUTE_PRIMARY, PX_METRICS_CACHE_HIT,
                             (double)dt / 1e9);
}

static px_cacheflow_result_t arm_fill(px_client_t *c, const uint8_t *key, size_t key_len,
                                      const px_tag_t *tags, int n_tags, bool extended,
                                      bool has_parse, uint32_t ttl)
{
    struct px_client_cache *cc = client_cache(c);
    struct px_fill *f = cc ? malloc(sizeof(*f) + key_len) : NULL;
    if (!f)
        return PX_CACHEFLOW_BYPASS;
    memset(f, 0, sizeof(*f));
    f->extended = extended;
    f->has_parse = has_parse;
    f->ttl = ttl;
    f->n_tags = n_tags;
    for (int i = 0; i < n_tags; i++) {
        f->tags[i] = tags[i];
        f->versions[i] = px_cache_tag_version(tags[i]);
    }
    f->fill_ms = px_cache_wall_ms();
    f->key_len = key_len;
    memcpy(f->key, key, key_len);
    f->hash = XXH3_64bits(key, key_len);
    px_list_init(&f->waiters);
    struct px_worker_cache *wc = worker_cache(c->io.w);
    if (wc) {
        f->w = c->io.w;
        f->next = wc->inflight[f->hash % PX_INFLIGHT_BUCKETS];
        wc->inflight[f->hash % PX_INFLIGHT_BUCKETS] = f;
        uint64_t free_slot = 0;
        f->shared = c->io.w->shared->n_workers > 1 &&
                    atomic_compare_exchange_strong(&g_fill_slots[f->hash % PX_FILL_SLOTS],
                                                   &free_slot, fill_slot_value(f->hash));
    }
    cc->fill = f;
    px_cache_count(PX_CACHE_C_MISS, 1);
    return PX_CACHEFLOW_MISS;
}

/* The L2 lookup of a client's unit ended (the entry, if any, is in L1). */
static void l2_answered(void *arg, bool stored)
{
    px_client_t *c = arg;
    struct px_client_cache *cc = c->cache;
    cc->l2_checked = true;
    cc->l2_stored = stored;
    if (!cc->l2_pending)
        return; /* failed at once, inside the lookup: it fills */
    cc->l2_pending = NULL;
    wake(c);
}

/* A miss: wait for an identical fill in flight or for L2, or fill. */
static px_cacheflow_result_t miss(px_client_t *c, const uint8_t *key, size_t key_len,
                                  const px_tag_t *tags, int n_tags, bool extended, bool has_parse,
                                  uint32_t ttl)
{
    uint64_t h = XXH3_64bits(key, key_len);
    struct px_fill *f = inflight_find(c->io.w, h, key, key_len);
    struct px_client_cache *cc = client_cache(c);
    if (!cc)
        return PX_CACHEFLOW_BYPASS;
    if (f) {
        cc->waiting = f;
        px_list_append(&f->waiters, &c->link);
        px_cache_count(PX_CACHE_C_COALESCED, 1);
        return PX_CACHEFLOW_WAIT;
    }
    struct px_worker_cache *wc = worker_cache(c->io.w);
    uint64_t v = fill_slot_value(h);
    if (wc && atomic_load_explicit(&g_fill_slots[h % PX_FILL_SLOTS], memory_order_relaxed) == v) {
        /* another worker fills this key: watch its slot (counted first, see above) */
        atomic_fetch_add(&c->io.w->fill_watchers, 1);
        if (atomic_load(&g_fill_slots[h % PX_FILL_SLOTS]) == v) {
            cc->watching = v;
            cc->watch_start_ms = px_cache_wall_ms();
            px_list_append(&wc->watch, &c->link);
            px_cache_count(PX_CACHE_C_COALESCED, 1);
            return PX_CACHEFLOW_WAIT;
        }
        atomic_fetch_sub(&c->io.w->fill_watchers, 1);
    }
    if (!cc->l2_checked && px_cachesync_l2_available(c->io.w)) {
        uint64_t versions[PX_CACHE_MAX_TAGS];
        for (int i = 0; i < n_tags; i++)
            versions[i] = px_cache_tag_version(tags[i]);
        cc->l2_pending = NULL;
        void *pending =
            px_cachesync_l2_get(c->io.w, key, key_len, tags, versions, n_tags, l2_answered, c);
        if (pending && pending != PX_CACHESYNC_DONE) {
            cc->l2_pending = pending;
            return PX_CACHEFLOW_WAIT;
        }
    }
    cc->l2_checked = false;
    return arm_fill(c, key, key_len, tags, n_tags, extended, has_parse, ttl);
}

/* Answer from entry @p e (released here): [ParseComplete], the stored
 * replies, ReadyForQuery; count it. False when it could not be queued. */
static bool serve_hit(px_client_t *c, px_cache_entry_t *e, px_sender_t *to_client,
                      bool parse_complete, const uint8_t *text, size_t text_len, uint64_t t0)
{
    size_t vlen;
    const uint8_t *v = px_cache_entry_value(e, &vlen);
    uint64_t rows = value_rows(v, vlen);
    uint8_t *dst = px_sender_alloc(to_client, vlen + 11);
    bool ok = dst != NULL;
    if (ok) {
        px_wbuf_t wb = px_wbuf_make(dst, vlen + 11);
        if (parse_complete) {
            px_wbuf_begin(&wb, '1');
            px_wbuf_end(&wb);
        }
        px_wbuf_put_bytes(&wb, v, vlen);
        px_build_ready(&wb, 'I');
        ok = !wb.failed && px_sender_span(to_client, dst, wb.len);
    }
    px_cache_entry_put(e);
    if (!ok)
        return false;
    count_hit(c, t0);
    px_digest_record(px_digest_id((const char *)text, text_len), (double)(uv_hrtime() - t0) / 1e9,
                     rows, PX_DIGEST_ROUTE_CACHE, true, false);
    return true;
}

px_cacheflow_result_t px_cacheflow_lookup(px_client_t *c, px_sender_t *to_client)
{
    px_worker_t *w = c->io.w;
    px_config_t *cfg = px_worker_cfg(w);
    if (!cfg->cache_enabled ||
        (c->cache && (c->cache->fill || c->cache->waiting || c->cache->watching)) || c->pinned ||
        c->cache_off || c->tx_status != 'I' || c->unsynced || c->io.pass_left ||
        !px_cache_catalog_ready_for(c->database) || !px_cache_synced() || !px_cdc_serving())
        return PX_CACHEFLOW_BYPASS;
    px_iobuf_t *in = c->io.in;
    const uint8_t *p = in->data + in->rpos;
    size_t avail = in->wpos - in->rpos;
    px_msg_hdr_t hdr;
    px_span_t body;
    size_t used;
    if (px_codec_read_msg(p, avail, cfg->max_message_size, &hdr, &body, &used) != PX_CODEC_OK)
        return PX_CACHEFLOW_BYPASS;
    uint64_t t0 = uv_hrtime();
    uint8_t *key = NULL;
    size_t klen = 0;
    px_tag_t tags[PX_CACHE_MAX_TAGS];
    int n_tags = 0;
    px_classify_result_t r;
    px_cacheflow_result_t res = PX_CACHEFLOW_BYPASS;

    if (hdr.type == 'Q') {
        px_span_t sql;
        if (!px_codec_parse_query(body, &sql))
            return PX_CACHEFLOW_BYPASS;
        px_classify((const char *)sql.p, sql.n, &r);
        if (!read_tags(&r, NULL, NULL, tags, &n_tags) || sampled(sql.p, sql.n))
            return PX_CACHEFLOW_BYPASS;
        size_t cap = 256 + strlen(c->database) + strlen(c->user) + c->params.len + sql.n;
        if (cap > KEY_MAX || !(key = malloc(cap)))
            return PX_CACHEFLOW_BYPASS;
        if (!key_prefix(c, 'Q', key, cap, &klen) || !key_put(key, cap, &klen, sql.p, sql.n))
            goto out;
        px_cache_entry_t *e = px_cache_get(key, klen);
        if (e) {
            if (!serve_hit(c, e, to_client, false, sql.p, sql.n, t0)) {
                res = PX_CACHEFLOW_FAILED;
                goto out;
            }
            in->rpos += (uint32_t)used;
            res = PX_CACHEFLOW_HIT;
            goto out;
        }
        res = miss(c, key, klen, tags, n_tags, false, false,
                   r.cache_ttl > 0 ? (uint32_t)r.cache_ttl : 0);
        goto out;
    }

    if (hdr.type != 'P' && hdr.type != 'B')
        return PX_CACHEFLOW_BYPASS;
    unit_t u;
    if (!read_unit(c, cfg, &u))
        return PX_CACHEFLOW_BYPASS;
    px_classify((const char *)u.pi.text, u.pi.text_len, &r);
    if (!read_tags(&r, &u.bi, &u.pi, tags, &n_tags) || sampled(u.pi.text, u.pi.text_len))
        return PX_CACHEFLOW_BYPASS;
    size_t cap = 256 + strlen(c->database) + strlen(c->user) + c->params.len + u.pi.rest_len +
                 u.bi.after_len;
    if (cap > KEY_MAX || !(key = malloc(cap)))
        return PX_CACHEFLOW_BYPASS;
    /* ParseComplete is not stored (a hit makes it up), so units with and
     * without their Parse share an entry */
    uint8_t shape[6] = {0,
                        u.has_describe,
                        (uint8_t)(u.max_rows >> 24),
                        (uint8_t)(u.max_rows >> 16),
                        (uint8_t)(u.max_rows >> 8),
                        (uint8_t)u.max_rows};
    uint32_t rl = (uint32_t)u.pi.rest_len;
    if (!key_prefix(c, 'X', key, cap, &klen) || !key_put(key, cap, &klen, shape, sizeof(shape)) ||
        !key_put(key, cap, &klen, &rl, sizeof(rl)) ||
        !key_put(key, cap, &klen, u.pi.rest, u.pi.rest_len) ||
        !key_put(key, cap, &klen, u.bi.after, u.bi.after_len))
        goto out;
    px_cache_entry_t *e = px_cache_get(key, klen);
    if (!e) {
        res = miss(c, key, klen, tags, n_tags, true, u.has_parse,
                   r.cache_ttl > 0 ? (uint32_t)r.cache_ttl : 0);
        goto out;
    }
    if (u.has_parse && u.parse_name.n > 0) {
        /* the named statement exists for the client from now on; the
         * server prepares it when it is first used there */
        px_stmt_key_t sk = px_stmt_key(u.pi.rest, u.pi.rest_len);
        sk.lo ^= c->params.hash;
        c->stmts.max = (uint32_t)px_worker_cfg(c->io.w)->max_prepared_statements;
        if (!px_stmt_map_put(&c->stmts, (const char *)u.parse_name.p, u.parse_name.n, u.pi.rest,
                             u.pi.rest_len, sk)) {
            px_cache_entry_put(e);
            res = PX_CACHEFLOW_BYPASS;
            goto out;
        }
        px_stmt_map_confirm(&c->stmts, sk);
    } else if (u.has_parse && !px_client_remember_unnamed(c, u.pi.rest, u.pi.rest_len, false)) {
        px_cache_entry_put(e);
        res = PX_CACHEFLOW_BYPASS;
        goto out;
    }
    if (!serve_hit(c, e, to_client, u.has_parse, u.pi.text, u.pi.text_len, t0)) {
        res = PX_CACHEFLOW_FAILED;
        goto out;
    }
    in->rpos += (uint32_t)u.total;
    res = PX_CACHEFLOW_HIT;
out:
    free(key);
    return res;
}

/* ---- fills ---------------------------------------------------------------------------- */

static void fill_abort(px_client_t *c)
{
    struct px_fill *f = c->cache->fill;
    if (f && !f->aborted) {
        f->aborted = true;
        free(f->buf);
        f->buf = NULL;
        f->len = f->cap = 0;
        px_cache_count(PX_CACHE_C_STORE_ABORTED, 1);
    }
}

static void fill_append(px_client_t *c, const uint8_t *p, size_t n)
{
    struct px_fill *f = c->cache->fill;
    px_cache_config_t cc;
    if (f->len + n > f->cap) {
        px_cache_get_config(&cc);
        if (f->len + n > cc.max_entry) {
            fill_abort(c);
            return;
        }
        size_t cap = f->cap ? f->cap * 2 : 4096;
        while (cap < f->len + n)
            cap *= 2;
        if (cap > cc.max_entry)
            cap = cc.max_entry;
        uint8_t *nb = realloc(f->buf, cap);
        if (!nb) {
            fill_abort(c);
            return;
        }
        f->buf = nb;
        f->cap = cap;
    }
    memcpy(f->buf + f->len, p, n);
    f->len += n;
}

void px_cacheflow_capture(px_client_t *c, uint8_t type, const uint8_t *p, size_t n)
{
    struct px_fill *f = c->cache->fill;
    if (!f || f->aborted)
        return;
    f->capturing_msg = false;
    if (f->complete && type != 'Z') {
        fill_abort(c); /* more than one result */
        return;
    }
    switch (type) {
    case '1':
        if (!f->extended || !f->has_parse)
            fill_abort(c);
        return; /* made up on a hit */
    case '2':
    case 'n':
        if (!f->extended) {
            fill_abort(c);
            return;
        }
        break;
    case 'T':
    case 'D':
        break;
    case 'C':
        f->complete = true;
        break;
    case 's': /* PortalSuspended: the row limit was reached; Sync closes the portal */
        if (!f->extended) {
            fill_abort(c);
            return;
        }
        f->complete = true;
        break;
    case 'Z':
        return;
    default: /* errors, notices, parameter changes, COPY, ...: not cached */
        fill_abort(c);
        return;
    }
    f->capturing_msg = true;
    fill_append(c, p, n);
}

void px_cacheflow_capture_more(px_client_t *c, const uint8_t *p, size_t n)
{
    struct px_fill *f = c->cache->fill;
    if (f && !f->aborted && f->capturing_msg)
        fill_append(c, p, n);
}

/* Index of the replica @p s is on, -1 for the primary or unknown. */
static int replica_index(px_server_t *s)
{
    if (!s || s->pool->is_primary)
        return -1;
    px_config_t *cfg = px_worker_cfg(s->io.w);
    for (int i = 0; i < cfg->n_replicas; i++)
        if (cfg->replicas[i].port == s->pool->port &&
            strcmp(cfg->replicas[i].host, s->pool->host) == 0)
            return i;
    return -2;
}

void px_cacheflow_on_ready(px_client_t *c, px_server_t *s, uint8_t status)
{
    if (!c->cache)
        return;
    struct px_fill *f = c->cache->fill;
    if (f) {
        c->cache->fill = NULL;
        if (!f->aborted && f->complete && status == 'I') {
            bool fresh = true;
            int ri = replica_index(s);
            if (ri == -2) {
                fresh = false;
            } else if (ri >= 0) {
                fresh =
                    px_cache_replica_fresh(f->tags, f->n_tags, px_health_generation(),
                                           px_health_member_lsn(0), px_health_member_lsn(1 + ri));
            }
            if (fresh && px_cache_put(f->key, f->key_len, f->buf, f->len, f->tags, f->versions,
                                      f->n_tags, f->ttl) == PX_CACHE_PUT_STORED) {
                px_cache_config_t ccfg;
                px_cache_get_config(&ccfg);
                px_cachesync_l2_set(c->io.w, f->key, f->key_len, f->buf, f->len, f->fill_ms,
                                    f->ttl ? f->ttl : ccfg.default_ttl);
            } else if (!fresh)
                px_cache_count(PX_CACHE_C_STORE_REPLICA_BEHIND, 1);
        } else if (!f->aborted) {
            px_cache_count(PX_CACHE_C_STORE_ABORTED, 1);
        }
        fill_free(f);
    }
    struct px_txn_bumps *b = &c->cache->bumps;
    if (status == 'I' && (b->n || b->epoch)) {
        /* the transaction is over: bump again before the client hears so */
        uint64_t gen = px_health_generation();
        if (b->ddl) {
            /* a load that ran before the commit did not see it */
            px_cache_note_ddl();
            px_health_refresh_catalog();
        }
        if (b->epoch)
            bump_everything(c, gen);
        for (int i = 0; i < b->n; i++)
            px_cache_tag_bump(b->tags[i], gen);
        px_cachesync_publish(c->io.w, b->tags, b->n);
        b->n = 0;
        b->epoch = b->ddl = false;
    }
}

void px_cacheflow_unit_dropped(px_client_t *c)
{
    struct px_client_cache *cc = c->cache;
    if (!cc || !cc->fill)
        return;
    struct px_fill *f = cc->fill;
    cc->fill = NULL;
    px_cache_count(PX_CACHE_C_STORE_ABORTED, 1);
    fill_free(f);
}

void px_cacheflow_defer(px_client_t *c)
{
    if (client_cache(c))
        wake(c);
}

bool px_cacheflow_filling(const px_client_t *c)
{
    return c->cache && c->cache->fill;
}

void px_cacheflow_client_gone(px_client_t *c)
{
    struct px_client_cache *cc = c->cache;
    if (!cc)
        return;
    if (cc->fill)
        fill_free(cc->fill);
    if (cc->watching)
        unwatch(c);
    else if (cc->waiting || cc->woken)
        px_list_del(&c->link);
    cc->waiting = NULL;
    cc->woken = false;
    /* a write of its may still commit after it left: bump once more (the
     * server connection it leaves in the middle of a request is cancelled) */
    uint64_t gen = px_health_generation();
    if (cc->bumps.epoch) {
        px_tag_t e = px_cache_tag_epoch();
        px_cache_bump_all(gen);
        px_cachesync_publish(c->io.w, &e, 1);
    }
    for (int i = 0; i < cc->bumps.n; i++)
        px_cache_tag_bump(cc->bumps.tags[i], gen);
    px_cachesync_publish(c->io.w, cc->bumps.tags, cc->bumps.n);
    if (cc->l2_pending)
        px_cachesync_l2_cancel(c->io.w, cc->l2_pending);
    free(cc->unnamed);
    free(cc);
    c->cache = NULL;
}
