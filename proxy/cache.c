/*
 * The result cache's shared core: tag versions, the relation catalog and the
 * in-process level (L1). See include/px_cache.h for the model.
 *
 * Layout. Tag versions are a fixed array of atomic counters indexed by the
 * tag hash (PX_TAG_SLOTS), with the health generation of each slot's last
 * bump beside it. L1 is PX_SHARDS shards, each a chained hash table plus an
 * insertion-ordered list for CLOCK eviction; lookups are lock-free (epoch
 * sections, see the L1 section), writers take the shard's mutex. An entry is
 * one allocation holding its tags and their versions, its key material and
 * its value. The byte budget is global (an atomic); a shard that pushes the
 * total over it evicts from its own cold end, so no thread ever holds two
 * shard locks. The published relation catalog is read the same way: one
 * pointer, swapped by the health thread, the old catalog freed after a grace
 * period.
 */
#include <ck_epoch.h>
#include <ck_pr.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "px_cache.h"

#define PX_TAG_SLOTS   (1u << 20)
#define PX_SHARDS      16
#define PX_BUCKETS_MIN 1024

/* ---- configuration and clock ---------------------------------------------------- */

static pthread_mutex_t g_cfg_lock = PTHREAD_MUTEX_INITIALIZER;
static px_cache_config_t g_cfg = {true, 256ull << 20, 1u << 20, 300};
static _Atomic uint64_t g_max_bytes = 256ull << 20;
static _Atomic uint64_t g_max_entry = 1u << 20;
static _Atomic uint32_t g_default_ttl = 300;
static _Atomic bool g_enabled = true;

uint64_t px_cache_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- tags ------------------------------------------------------------------------- */

static _Atomic uint64_t *g_versions; /* PX_TAG_SLOTS */
static _Atomic uint64_t *g_bump_gen; /* PX_TAG_SLOTS */
static _Atomic uint64_t *g_bump_ms;  /* PX_TAG_SLOTS: wall time of the latest bump heard of */
static _Atomic bool g_synced = true;
static _Atomic uint64_t g_synced_since;

/* Replica freshness: per slot, the primary LSN a round after the slot's last
 * bump saw, remembered for that bump's generation. Rare path (replica fills):
 * striped locks keep the (generation, LSN) pair consistent. */
#define PX_NEED_STRIPES 64
static pthread_mutex_t g_need_lock[PX_NEED_STRIPES];
static uint64_t *g_need_gen; /* PX_TAG_SLOTS */
static uint64_t *g_need_lsn; /* PX_TAG_SLOTS */

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static bool g_init_ok;

static inline uint32_t slot_of(px_tag_t t)
{
    return (uint32_t)(t ^ (t >> 32)) & (PX_TAG_SLOTS - 1);
}

static px_tag_t tag_hash(char kind, const char *name, const int64_t *key)
{
    XXH3_state_t st;
    XXH3_64bits_reset(&st);
    XXH3_64bits_update(&st, &kind, 1);
    if (name)
        XXH3_64bits_update(&st, name, strlen(name) + 1);
    if (key)
        XXH3_64bits_update(&st, key, sizeof(*key));
    return XXH3_64bits_digest(&st);
}

px_tag_t px_cache_tag_epoch(void)
{
    return tag_hash('E', NULL, NULL);
}

px_tag_t px_cache_tag_all(const char *table)
{
    return tag_hash('A', table, NULL);
}

px_tag_t px_cache_tag_scan(const char *table)
{
    return tag_hash('S', table, NULL);
}

px_tag_t px_cache_tag_row(const char *table, int64_t key)
{
    return tag_hash('R', table, &key);
}

bool px_cache_tags_add(px_tag_t *tags, int *n, int cap, px_tag_t t)
{
    for (int i = 0; i < *n; i++)
        if (tags[i] == t)
            return true;
    if (*n >= cap)
        return false;
    tags[(*n)++] = t;
    return true;
}

bool px_cache_tags_add_write(px_tag_t *tags, int *n, int cap, const px_cache_rel_t *rel,
                             const int64_t *keys, int nkeys)
{
    bool keyed = nkeys > 0 && (rel->flags & PX_CACHE_REL_INT_PK) && rel->n_bases == 1;
    if (*n + (keyed ? 1 + nkeys : rel->n_bases) > cap)
        return false; /* nothing added: the caller may fall back to something coarser */
    if (keyed) {
        px_cache_tags_add(tags, n, cap, px_cache_tag_scan(rel->bases[0]));
        for (int k = 0; k < nkeys; k++)
            px_cache_tags_add(tags, n, cap, px_cache_tag_row(rel->bases[0], keys[k]));
        return true;
    }
    for (int b = 0; b < rel->n_bases; b++)
        px_cache_tags_add(tags, n, cap, px_cache_tag_all(rel->bases[b]));
    return true;
}

static _Atomic uint64_t g_stat_bumps;

uint64_t px_cache_tag_version(px_tag_t t)
{
    if (!g_versions)
        return 0;
    return atomic_load_explicit(&g_versions[slot_of(t)], memory_order_acquire);
}

uint64_t px_cache_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void note_bump_ms(uint32_t s, uint64_t ms)
{
    uint64_t cur = atomic_load_explicit(&g_bump_ms[s], memory_order_relaxed);
    while (cur < ms && !atomic_compare_exchange_weak_explicit(
                           &g_bump_ms[s], &cur, ms, memory_order_release, memory_order_relaxed)) {
    }
}

void px_cache_tag_bump_remote(px_tag_t t, uint64_t wall_ms, uint64_t health_gen)
{
    if (!g_versions)
        return;
    uint32_t s = slot_of(t);
    note_bump_ms(s, wall_ms);
    /* the write committed before its message left: a health round that
     * starts after now sees the primary past it */
    atomic_store_explicit(&g_bump_gen[s], health_gen, memory_order_release);
    atomic_fetch_add_explicit(&g_versions[s], 1, memory_order_acq_rel);
    atomic_fetch_add_explicit(&g_stat_bumps, 1, memory_order_relaxed);
}

uint64_t px_cache_tag_last_bump_ms(px_tag_t t)
{
    if (!g_bump_ms)
        return 0;
    return atomic_load_explicit(&g_bump_ms[slot_of(t)], memory_order_acquire);
}

void px_cache_set_synced(bool synced, uint64_t health_gen)
{
    /* either way, what was filled before cannot be vouched for */
    px_cache_tag_bump_remote(px_cache_tag_epoch(), px_cache_wall_ms(), health_gen);
    if (synced)
        atomic_store(&g_synced_since, px_cache_wall_ms());
    atomic_store(&g_synced, synced);
}

bool px_cache_synced(void)
{
    return atomic_load_explicit(&g_synced, memory_order_acquire);
}

uint64_t px_cache_synced_since_ms(void)
{
    return atomic_load(&g_synced_since);
}

void px_cache_tag_bump(px_tag_t t, uint64_t health_gen)
{
    if (!g_versions)
        return;
    uint32_t s = slot_of(t);
    note_bump_ms(s, px_cache_wall_ms());
    /* the generation first: a reader that sees the new version also sees
     * a generation at least as new */
    atomic_store_explicit(&g_bump_gen[s], health_gen, memory_order_release);
    atomic_fetch_add_explicit(&g_versions[s], 1, memory_order_acq_rel);
    atomic_fetch_add_explicit(&g_stat_bumps, 1, memory_order_relaxed);
}

void px_cache_bump_all(uint64_t health_gen)
{
    px_cache_tag_bump(px_cache_tag_epoch(), health_gen);
}

uint64_t px_cache_tag_bump_gen(px_tag_t t)
{
    if (!g_bump_gen)
        return 0;
    return atomic_load_explicit(&g_bump_gen[slot_of(t)], memory_order_acquire);
}

bool px_cache_replica_fresh(const px_tag_t *tags, int n, uint64_t gen_now, uint64_t primary_lsn,
                            uint64_t replica_lsn)
{
    if (!g_versions || gen_now == 0 || primary_lsn == 0 || replica_lsn == 0)
        return false;
    for (int i = 0; i < n; i++) {
        uint32_t s = slot_of(tags[i]);
        uint64_t g = atomic_load_explicit(&g_bump_gen[s], memory_order_acquire);
        pthread_mutex_t *l = &g_need_lock[s % PX_NEED_STRIPES];
        pthread_mutex_lock(l);
        uint64_t need;
        if (g_need_gen[s] == g + 1) {
            need = g_need_lsn[s];
        } else if (gen_now >= g + 2) {
            /* the latest round started after the bump: its primary LSN
             * covers the write that bumped */
            need = primary_lsn;
            g_need_gen[s] = g + 1;
            g_need_lsn[s] = need;
        } else {
            pthread_mutex_unlock(l);
            return false; /* too recent to know */
        }
        pthread_mutex_unlock(l);
        if (replica_lsn < need)
            return false;
    }
    return true;
}

/* ---- L1 entries ------------------------------------------------------------------ */

/*
 * Concurrency. Lookups (px_cache_get, px_cache_catalog_lookup) take no lock and
 * write nothing shared but the entry they return: they run inside a Concurrency
 * Kit epoch section. Writers (fills, clears, eviction, unlinking a stale entry,
 * catalog publication) serialise on the shard mutex. What makes this safe:
 *
 *  1. Publication. An entry is fully built before a release store links it. A
 *     shard's bucket array carries its own size and is published by one
 *     pointer, so readers never pair an array with another array's size.
 *  2. Reclamation. Nothing a reader may still be standing on is freed: an
 *     unlinked entry keeps the table's reference, a replaced bucket array or
 *     catalog its memory, until an epoch grace period has passed (ck_epoch_call
 *     then ck_epoch_poll by the thread that deferred it; ck_epoch_synchronize on
 *     the rare paths). Once the table's reference is gone no reader can reach
 *     the entry, so the last px_cache_entry_put frees it at once. A reader takes
 *     its reference only while refs > 0, never bringing a dead entry back.
 *  3. Termination. Every value ever stored in an entry's chain pointer is NULL
 *     or an entry inserted before it: fills link at the head, an unlink
 *     bypasses the entry (which keeps its own pointer, for readers standing on
 *     it) and a grow splits each chain in its order. A reader therefore always
 *     moves to older entries and reaches the end, even across unlinks and
 *     grows; it may miss an entry being moved, which is only a cache miss.
 *  4. Recency without shared writes. A hit sets the entry's `accessed` flag
 *     (only if clear). A shard keeps its entries in insertion order; eviction
 *     (CLOCK) takes the cold end and gives an entry read since the hand last
 *     passed one second chance at the warm end.
 *
 * No thread waits for a shard mutex inside an epoch section (a reader that
 * finds a stale entry takes a reference and leaves the section first), so a
 * writer may wait for a grace period while holding one.
 */

struct px_cache_entry {
    _Atomic(px_cache_entry_t *) chain;     /* bucket chain, to older entries (invariant 3) */
    px_cache_entry_t *lru_prev, *lru_next; /* insertion order; shard lock */
    ck_epoch_entry_t retire;               /* drops the table's reference after a grace period */
    uint64_t hash;
    uint64_t expires_ms;
    uint64_t charge;       /* bytes counted against the budget */
    _Atomic int refs;      /* the table's reference + readers' */
    _Atomic bool accessed; /* hit since the eviction hand last passed it */
    bool linked;           /* in its shard's table; shard lock */
    uint16_t n_tags;
    uint32_t key_len;
    uint32_t val_len;
    /* tags[n_tags], versions[n_tags], key bytes, value bytes */
    uint64_t data[];
};

static inline px_tag_t *e_tags(px_cache_entry_t *e)
{
    return e->data;
}
static inline uint64_t *e_versions(px_cache_entry_t *e)
{
    return e->data + e->n_tags;
}
static inline uint8_t *e_key(px_cache_entry_t *e)
{
    return (uint8_t *)(e->data + 2u * e->n_tags);
}
static inline uint8_t *e_val(px_cache_entry_t *e)
{
    return e_key(e) + e->key_len;
}

typedef struct buckets {
    ck_epoch_entry_t retire;            /* freed a grace period after being replaced */
    uint32_t n;                         /* slots, a power of two */
    _Atomic(px_cache_entry_t *) slot[]; /* chain heads (newest first) */
} buckets_t;

typedef struct shard {
    _Atomic(buckets_t *) table; /* read lock-free; replaced under the lock */
    /* writers only, from here on: a line of their own, away from `table` */
    _Alignas(64) pthread_mutex_t lock;
    uint32_t n_entries;
    px_cache_entry_t lru; /* sentinel: lru.lru_next is the warm (newest) end */
} shard_t;

static shard_t g_shards[PX_SHARDS];
static _Atomic uint64_t g_bytes, g_entries;
static _Atomic uint64_t g_stat[PX_CACHE_C_COUNT];
static _Atomic uint64_t g_stat_stores, g_stat_raced, g_stat_too_big, g_stat_evictions,
    g_stat_expired, g_stat_invalidated, g_stat_hit_ns, g_stat_hit_samples;

/* ---- epochs: one record per thread that reads or writes ----------------------------- */

static ck_epoch_t g_epoch;
static pthread_once_t g_epoch_once = PTHREAD_ONCE_INIT;
static pthread_key_t g_epoch_key;
static _Thread_local ck_epoch_record_t *t_epoch;

/* A thread going away: run what it deferred, then leave its record to the next thread. */
static void epoch_thread_exit(void *p)
{
    ck_epoch_record_t *r = p;
    ck_epoch_barrier(r);
    ck_epoch_unregister(r);
    t_epoch = NULL;
}

static void epoch_init(void)
{
    ck_epoch_init(&g_epoch);
    (void)pthread_key_create(&g_epoch_key, epoch_thread_exit);
}

/* This thread's epoch record, registered on first use; NULL when out of memory. */
static ck_epoch_record_t *epoch_record(void)
{
    ck_epoch_record_t *r = t_epoch;
    if (r)
        return r;
    pthread_once(&g_epoch_once, epoch_init);
    r = ck_epoch_recycle(&g_epoch, NULL);
    if (!r) {
        r = aligned_alloc(_Alignof(ck_epoch_record_t), sizeof(*r));
        if (!r)
            return NULL;
        memset(r, 0, sizeof(*r));
        ck_epoch_register(&g_epoch, r, NULL);
    }
    (void)pthread_setspecific(g_epoch_key, r);
    t_epoch = r;
    return r;
}

/*
 * Run @p fn on @p ent once no reader can still reach it. The caller has just
 * made it unreachable; the fence orders that store before the epoch is read
 * (a store followed by a load may otherwise be reordered). Without a record
 * (out of memory) the grace period is waited for here.
 */
static void retire(ck_epoch_record_t *rec, ck_epoch_entry_t *ent, ck_epoch_cb_t *fn)
{
    atomic_thread_fence(memory_order_seq_cst);
    if (rec) {
        ck_epoch_call(rec, ent, fn);
        return;
    }
    ck_epoch_synchronize_wait(&g_epoch, NULL, NULL);
    fn(ent);
}

/* Run what this thread deferred and is past its grace period (one load when nothing is). */
static void reclaim(ck_epoch_record_t *rec)
{
    if (rec && ck_pr_load_uint(&rec->n_pending) != 0)
        (void)ck_epoch_poll(rec);
}

/* ---- L1: set-up, lookups, fills --------------------------------------------------------- */

static buckets_t *buckets_new(uint32_t n)
{
    buckets_t *b = calloc(1, sizeof(*b) + (size_t)n * sizeof(b->slot[0]));
    if (b)
        b->n = n;
    return b;
}

static void buckets_free_cb(ck_epoch_entry_t *ent)
{
    free((char *)ent - offsetof(buckets_t, retire));
}

static void init_once(void)
{
    g_versions = calloc(PX_TAG_SLOTS, sizeof(*g_versions));
    g_bump_gen = calloc(PX_TAG_SLOTS, sizeof(*g_bump_gen));
    g_bump_ms = calloc(PX_TAG_SLOTS, sizeof(*g_bump_ms));
    g_need_gen = calloc(PX_TAG_SLOTS, sizeof(*g_need_gen));
    g_need_lsn = calloc(PX_TAG_SLOTS, sizeof(*g_need_lsn));
    if (!g_versions || !g_bump_gen || !g_bump_ms || !g_need_gen || !g_need_lsn)
        return;
    atomic_store(&g_synced_since, px_cache_wall_ms());
    for (int i = 0; i < PX_NEED_STRIPES; i++)
        pthread_mutex_init(&g_need_lock[i], NULL);
    pthread_once(&g_epoch_once, epoch_init);
    for (int i = 0; i < PX_SHARDS; i++) {
        shard_t *sh = &g_shards[i];
        pthread_mutex_init(&sh->lock, NULL);
        buckets_t *b = buckets_new(PX_BUCKETS_MIN);
        if (!b)
            return;
        atomic_store_explicit(&sh->table, b, memory_order_release);
        sh->lru.lru_next = sh->lru.lru_prev = &sh->lru;
    }
    g_init_ok = true;
}

bool px_cache_init(void)
{
    pthread_once(&g_once, init_once);
    return g_init_ok;
}

/* The last reference frees the entry at once: by invariant 2 no reader can reach it then. */
void px_cache_entry_put(px_cache_entry_t *e)
{
    if (e && atomic_fetch_sub_explicit(&e->refs, 1, memory_order_acq_rel) == 1)
        free(e);
}

static void entry_unref_cb(ck_epoch_entry_t *ent)
{
    px_cache_entry_put((px_cache_entry_t *)((char *)ent - offsetof(px_cache_entry_t, retire)));
}

/* A reader's reference, taken only while the entry still has one. */
static bool entry_ref(px_cache_entry_t *e)
{
    int r = atomic_load_explicit(&e->refs, memory_order_relaxed);
    while (r > 0) {
        if (atomic_compare_exchange_weak_explicit(&e->refs, &r, r + 1, memory_order_acquire,
                                                  memory_order_relaxed))
            return true;
    }
    return false;
}

static void lru_remove(px_cache_entry_t *e)
{
    e->lru_prev->lru_next = e->lru_next;
    e->lru_next->lru_prev = e->lru_prev;
}

static void lru_push_warm(shard_t *sh, px_cache_entry_t *e)
{
    e->lru_next = sh->lru.lru_next;
    e->lru_prev = &sh->lru;
    sh->lru.lru_next->lru_prev = e;
    sh->lru.lru_next = e;
}

/*
 * Unlink @p e from its shard (lock held). The table's reference is dropped a
 * grace period later, through @p rec: readers may be standing on @p e, and
 * its chain pointer is left as it is so they can walk on.
 */
static void unlink_locked(shard_t *sh, px_cache_entry_t *e, ck_epoch_record_t *rec)
{
    buckets_t *t = atomic_load_explicit(&sh->table, memory_order_relaxed);
    _Atomic(px_cache_entry_t *) *pp = &t->slot[e->hash & (t->n - 1)];
    px_cache_entry_t *x;
    while ((x = atomic_load_explicit(pp, memory_order_relaxed)) != NULL && x != e)
        pp = &x->chain;
    if (x)
        atomic_store_explicit(pp, atomic_load_explicit(&e->chain, memory_order_relaxed),
                              memory_order_release);
    lru_remove(e);
    e->linked = false;
    sh->n_entries--;
    atomic_fetch_sub_explicit(&g_bytes, e->charge, memory_order_relaxed);
    atomic_fetch_sub_explicit(&g_entries, 1, memory_order_relaxed);
    retire(rec, &e->retire, entry_unref_cb);
}

static bool entry_valid(px_cache_entry_t *e, uint64_t now)
{
    if (now >= e->expires_ms)
        return false;
    px_tag_t *t = e_tags(e);
    uint64_t *v = e_versions(e);
    for (uint16_t i = 0; i < e->n_tags; i++)
        if (px_cache_tag_version(t[i]) != v[i])
            return false;
    return true;
}

static uint64_t key_hash(const void *key, size_t len)
{
    return XXH3_64bits(key, len);
}

static shard_t *shard_of(uint64_t h)
{
    return &g_shards[(h >> 56) % PX_SHARDS];
}

/*
 * @p e, referenced by the caller, was found expired or invalidated: unlink it
 * unless another thread already did, and drop the caller's reference. Called
 * outside any epoch section.
 */
static void drop_stale(shard_t *sh, px_cache_entry_t *e, uint64_t now, ck_epoch_record_t *rec)
{
    pthread_mutex_lock(&sh->lock);
    if (e->linked) {
        if (now >= e->expires_ms)
            atomic_fetch_add_explicit(&g_stat_expired, 1, memory_order_relaxed);
        else
            atomic_fetch_add_explicit(&g_stat_invalidated, 1, memory_order_relaxed);
        unlink_locked(sh, e, rec);
    }
    pthread_mutex_unlock(&sh->lock);
    px_cache_entry_put(e);
}

px_cache_entry_t *px_cache_get(const void *key, size_t key_len)
{
    if (!g_init_ok || !atomic_load_explicit(&g_enabled, memory_order_relaxed))
        return NULL;
    ck_epoch_record_t *rec = epoch_record();
    if (!rec)
        return NULL;
    uint64_t h = key_hash(key, key_len);
    shard_t *sh = shard_of(h);
    uint64_t now = px_cache_now_ms();
    px_cache_entry_t *found = NULL;
    ck_epoch_begin(rec, NULL);
    buckets_t *t = atomic_load_explicit(&sh->table, memory_order_acquire);
    px_cache_entry_t *e = atomic_load_explicit(&t->slot[h & (t->n - 1)], memory_order_acquire);
    for (; e; e = atomic_load_explicit(&e->chain, memory_order_acquire)) {
        if (e->hash == h && e->key_len == key_len && memcmp(e_key(e), key, key_len) == 0) {
            if (entry_ref(e))
                found = e;
            break;
        }
    }
    ck_epoch_end(rec, NULL);
    if (found && !entry_valid(found, now)) {
        drop_stale(sh, found, now, rec);
        found = NULL;
    } else if (found && !atomic_load_explicit(&found->accessed, memory_order_relaxed)) {
        atomic_store_explicit(&found->accessed, true, memory_order_relaxed);
    }
    reclaim(rec);
    return found;
}

const uint8_t *px_cache_entry_value(const px_cache_entry_t *e, size_t *len)
{
    *len = e->val_len;
    return e_val((px_cache_entry_t *)e);
}

const char *px_cache_put_result_to_str(px_cache_put_result_t r)
{
    switch (r) {
    case PX_CACHE_PUT_STORED:
        return "stored";
    case PX_CACHE_PUT_RACED:
        return "raced with a write";
    case PX_CACHE_PUT_TOO_BIG:
        return "too big";
    case PX_CACHE_PUT_DISABLED:
        return "disabled";
    case PX_CACHE_PUT_NO_MEMORY:
        return "out of memory";
    }
    return "?";
}

/*
 * Double @p sh's bucket array (lock held). Each old chain is split into its
 * two new chains in its own order (invariant 3) while the old array is still
 * published; readers of the old array may miss entries meanwhile. The old
 * array is freed after a grace period.
 */
static void grow_locked(shard_t *sh, ck_epoch_record_t *rec)
{
    buckets_t *old = atomic_load_explicit(&sh->table, memory_order_relaxed);
    if (old->n >= (1u << 30))
        return;
    buckets_t *nb = buckets_new(old->n * 2);
    if (!nb)
        return; /* longer chains; still correct */
    for (uint32_t i = 0; i < old->n; i++) {
        px_cache_entry_t *tail[2] = {NULL, NULL};
        px_cache_entry_t *e = atomic_load_explicit(&old->slot[i], memory_order_relaxed);
        while (e) {
            px_cache_entry_t *next = atomic_load_explicit(&e->chain, memory_order_relaxed);
            int k = (e->hash & old->n) != 0;
            if (tail[k])
                atomic_store_explicit(&tail[k]->chain, e, memory_order_release);
            else
                atomic_store_explicit(&nb->slot[i + (k ? old->n : 0)], e, memory_order_relaxed);
            tail[k] = e;
            e = next;
        }
        for (int k = 0; k < 2; k++)
            if (tail[k])
                atomic_store_explicit(&tail[k]->chain, NULL, memory_order_release);
    }
    atomic_store_explicit(&sh->table, nb, memory_order_release);
    retire(rec, &old->retire, buckets_free_cb);
}

/*
 * Evict from @p sh until the budget holds (lock held). The hand starts at the
 * cold end of the insertion order; an entry read since it last passed is given
 * a second chance (flag cleared, moved to the warm end). At most one chance per
 * entry present at the start, so the walk ends even if every entry was read.
 */
static void evict_locked(shard_t *sh, uint64_t max, ck_epoch_record_t *rec)
{
    uint32_t chances = sh->n_entries;
    while (atomic_load_explicit(&g_bytes, memory_order_relaxed) > max &&
           sh->lru.lru_prev != &sh->lru) {
        px_cache_entry_t *e = sh->lru.lru_prev;
        if (chances > 0 && atomic_load_explicit(&e->accessed, memory_order_relaxed)) {
            chances--;
            atomic_store_explicit(&e->accessed, false, memory_order_relaxed);
            lru_remove(e);
            lru_push_warm(sh, e);
            continue;
        }
        unlink_locked(sh, e, rec);
        atomic_fetch_add_explicit(&g_stat_evictions, 1, memory_order_relaxed);
    }
}

px_cache_put_result_t px_cache_put(const void *key, size_t key_len, const uint8_t *val,
                                   size_t val_len, const px_tag_t *tags, const uint64_t *versions,
                                   int n_tags, uint32_t ttl_s)
{
    if (!g_init_ok || !atomic_load_explicit(&g_enabled, memory_order_relaxed))
        return PX_CACHE_PUT_DISABLED;
    uint64_t max = atomic_load_explicit(&g_max_bytes, memory_order_relaxed);
    if (n_tags < 0 || n_tags > PX_CACHE_MAX_TAGS || key_len > UINT32_MAX ||
        val_len > atomic_load_explicit(&g_max_entry, memory_order_relaxed)) {
        atomic_fetch_add_explicit(&g_stat_too_big, 1, memory_order_relaxed);
        return PX_CACHE_PUT_TOO_BIG;
    }
    for (int i = 0; i < n_tags; i++) {
        if (px_cache_tag_version(tags[i]) != versions[i]) {
            atomic_fetch_add_explicit(&g_stat_raced, 1, memory_order_relaxed);
            return PX_CACHE_PUT_RACED;
        }
    }
    size_t size =
        sizeof(px_cache_entry_t) + 2u * sizeof(uint64_t) * (size_t)n_tags + key_len + val_len;
    if (size > max / 2) {
        atomic_fetch_add_explicit(&g_stat_too_big, 1, memory_order_relaxed);
        return PX_CACHE_PUT_TOO_BIG;
    }
    ck_epoch_record_t *rec = epoch_record();
    if (!rec)
        return PX_CACHE_PUT_NO_MEMORY;
    px_cache_entry_t *e = malloc(size);
    if (!e)
        return PX_CACHE_PUT_NO_MEMORY;
    memset(e, 0, sizeof(*e));
    e->hash = key_hash(key, key_len);
    if (ttl_s == 0)
        ttl_s = atomic_load_explicit(&g_default_ttl, memory_order_relaxed);
    e->expires_ms = px_cache_now_ms() + (uint64_t)ttl_s * 1000u;
    e->charge = size + 32; /* allocator overhead and the bucket slot */
    atomic_init(&e->refs, 1);
    atomic_init(&e->accessed, false);
    e->key_len = (uint32_t)key_len;
    e->val_len = (uint32_t)val_len;
    e->n_tags = (uint16_t)n_tags;
    if (n_tags) {
        memcpy(e_tags(e), tags, sizeof(*tags) * (size_t)n_tags);
        memcpy(e_versions(e), versions, sizeof(*versions) * (size_t)n_tags);
    }
    memcpy(e_key(e), key, key_len);
    if (val_len)
        memcpy(e_val(e), val, val_len);

    shard_t *sh = shard_of(e->hash);
    pthread_mutex_lock(&sh->lock);
    /* a write may have bumped a tag while the entry was being built */
    for (int i = 0; i < n_tags; i++) {
        if (px_cache_tag_version(tags[i]) != versions[i]) {
            pthread_mutex_unlock(&sh->lock);
            free(e);
            atomic_fetch_add_explicit(&g_stat_raced, 1, memory_order_relaxed);
            return PX_CACHE_PUT_RACED;
        }
    }
    buckets_t *t = atomic_load_explicit(&sh->table, memory_order_relaxed);
    px_cache_entry_t *o =
        atomic_load_explicit(&t->slot[e->hash & (t->n - 1)], memory_order_relaxed);
    for (; o; o = atomic_load_explicit(&o->chain, memory_order_relaxed)) {
        if (o->hash == e->hash && o->key_len == key_len && memcmp(e_key(o), key, key_len) == 0) {
            unlink_locked(sh, o, rec);
            break;
        }
    }
    if (sh->n_entries >= t->n) {
        grow_locked(sh, rec);
        t = atomic_load_explicit(&sh->table, memory_order_relaxed);
    }
    _Atomic(px_cache_entry_t *) *b = &t->slot[e->hash & (t->n - 1)];
    atomic_store_explicit(&e->chain, atomic_load_explicit(b, memory_order_relaxed),
                          memory_order_relaxed);
    atomic_store_explicit(b, e, memory_order_release); /* publishes the entry (invariant 1) */
    lru_push_warm(sh, e);
    e->linked = true;
    sh->n_entries++;
    atomic_fetch_add_explicit(&g_bytes, e->charge, memory_order_relaxed);
    atomic_fetch_add_explicit(&g_entries, 1, memory_order_relaxed);
    evict_locked(sh, max, rec);
    pthread_mutex_unlock(&sh->lock);
    reclaim(rec);
    atomic_fetch_add_explicit(&g_stat_stores, 1, memory_order_relaxed);
    return PX_CACHE_PUT_STORED;
}

/* Drop every entry. By the time it returns their memory is freed, except for
 * entries readers still hold a reference to. */
uint64_t px_cache_clear(void)
{
    uint64_t n = 0;
    if (!g_init_ok)
        return 0;
    ck_epoch_record_t *rec = epoch_record();
    for (int i = 0; i < PX_SHARDS; i++) {
        shard_t *sh = &g_shards[i];
        pthread_mutex_lock(&sh->lock);
        while (sh->lru.lru_next != &sh->lru) {
            unlink_locked(sh, sh->lru.lru_next, rec);
            n++;
        }
        pthread_mutex_unlock(&sh->lock);
    }
    if (rec)
        ck_epoch_barrier(rec);
    return n;
}

void px_cache_shutdown(void)
{
    px_cache_clear();
}

void px_cache_configure(const px_cache_config_t *cfg)
{
    pthread_mutex_lock(&g_cfg_lock);
    g_cfg = *cfg;
    pthread_mutex_unlock(&g_cfg_lock);
    atomic_store(&g_max_bytes, cfg->max_bytes);
    atomic_store(&g_max_entry, cfg->max_entry);
    atomic_store(&g_default_ttl, cfg->default_ttl ? cfg->default_ttl : 1);
    atomic_store(&g_enabled, cfg->enabled);
    if (!cfg->enabled) {
        px_cache_clear();
        return;
    }
    if (g_init_ok && atomic_load(&g_bytes) > cfg->max_bytes) {
        ck_epoch_record_t *rec = epoch_record();
        for (int i = 0; i < PX_SHARDS; i++) {
            pthread_mutex_lock(&g_shards[i].lock);
            evict_locked(&g_shards[i], cfg->max_bytes, rec);
            pthread_mutex_unlock(&g_shards[i].lock);
        }
        reclaim(rec);
    }
}

void px_cache_get_config(px_cache_config_t *out)
{
    pthread_mutex_lock(&g_cfg_lock);
    *out = g_cfg;
    pthread_mutex_unlock(&g_cfg_lock);
}

/* ---- statistics -------------------------------------------------------------------- */

void px_cache_count(px_cache_counter_t c, uint64_t n)
{
    if ((unsigned)c < PX_CACHE_C_COUNT)
        atomic_fetch_add_explicit(&g_stat[c], n, memory_order_relaxed);
}

void px_cache_observe_hit_ns(uint64_t ns)
{
    atomic_fetch_add_explicit(&g_stat_hit_ns, ns, memory_order_relaxed);
    atomic_fetch_add_explicit(&g_stat_hit_samples, 1, memory_order_relaxed);
}

void px_cache_stats(px_cache_stats_t *o)
{
    memset(o, 0, sizeof(*o));
#define LD(x) atomic_load_explicit(&(x), memory_order_relaxed)
    o->hits = LD(g_stat[PX_CACHE_C_HIT]);
    o->misses = LD(g_stat[PX_CACHE_C_MISS]);
    o->store_replica_behind = LD(g_stat[PX_CACHE_C_STORE_REPLICA_BEHIND]);
    o->store_aborted = LD(g_stat[PX_CACHE_C_STORE_ABORTED]);
    o->coalesced = LD(g_stat[PX_CACHE_C_COALESCED]);
    o->l2_hits = LD(g_stat[PX_CACHE_C_L2_HIT]);
    o->stores = LD(g_stat_stores);
    o->store_raced = LD(g_stat_raced);
    o->store_too_big = LD(g_stat_too_big);
    o->evictions = LD(g_stat_evictions);
    o->expired = LD(g_stat_expired);
    o->invalidated = LD(g_stat_invalidated);
    o->entries = LD(g_entries);
    o->bytes = LD(g_bytes);
    o->bumps = LD(g_stat_bumps);
    o->hit_ns_sum = LD(g_stat_hit_ns);
    o->hit_samples = LD(g_stat_hit_samples);
#undef LD
}

/* ---- relation catalog ------------------------------------------------------------- */

typedef struct cat_rel {
    struct cat_rel *next;
    px_cache_rel_t rel;
    char name[64];
} cat_rel_t;

#define CAT_BUCKETS 4096

struct px_cache_catalog {
    cat_rel_t *buckets[CAT_BUCKETS];
    size_t n;
    char db[64];      /* the database it describes ("": unnamed, any) */
    uint64_t ddl_seq; /* px_cache_ddl_seq() when its load started */
};

static _Atomic(px_cache_catalog_t *) g_cat; /* read in epoch sections */

px_cache_catalog_t *px_cache_catalog_new(void)
{
    return calloc(1, sizeof(px_cache_catalog_t));
}

static uint32_t name_bucket(const char *name)
{
    return (uint32_t)XXH3_64bits(name, strlen(name)) & (CAT_BUCKETS - 1);
}

static cat_rel_t *cat_find(const px_cache_catalog_t *c, const char *name)
{
    for (cat_rel_t *r = c->buckets[name_bucket(name)]; r; r = r->next)
        if (strcmp(r->name, name) == 0)
            return r;
    return NULL;
}

bool px_cache_catalog_add(px_cache_catalog_t *c, const char *name, unsigned flags,
                          const char *pk_col, const char *base)
{
    if (!name || strlen(name) >= sizeof(((cat_rel_t *)0)->name))
        return true; /* longer than PostgreSQL's NAMEDATALEN: never looked up */
    cat_rel_t *r = cat_find(c, name);
    bool fresh = r == NULL;
    if (fresh) {
        r = calloc(1, sizeof(*r));
        if (!r)
            return false;
        strcpy(r->name, name);
        uint32_t b = name_bucket(name);
        r->next = c->buckets[b];
        c->buckets[b] = r;
        c->n++;
        r->rel.flags = flags;
        if (pk_col && (flags & PX_CACHE_REL_INT_PK) && strlen(pk_col) < sizeof(r->rel.pk_col))
            strcpy(r->rel.pk_col, pk_col);
        else
            r->rel.flags &= ~PX_CACHE_REL_INT_PK;
    } else {
        unsigned keep = PX_CACHE_REL_CACHEABLE | PX_CACHE_REL_INT_PK;
        r->rel.flags = (r->rel.flags & (flags | ~keep)) | (flags & ~keep);
        if ((r->rel.flags & PX_CACHE_REL_INT_PK) && (!pk_col || strcmp(pk_col, r->rel.pk_col) != 0))
            r->rel.flags &= ~PX_CACHE_REL_INT_PK;
    }
    if (base && *base) {
        for (int i = 0; i < r->rel.n_bases; i++)
            if (strcmp(r->rel.bases[i], base) == 0)
                return true;
        if (r->rel.n_bases >= PX_CACHE_MAX_BASES || strlen(base) >= sizeof(r->rel.bases[0])) {
            r->rel.flags &= ~PX_CACHE_REL_CACHEABLE;
            r->rel.flags |= PX_CACHE_REL_SIDE; /* writes cannot name every base */
            return true;
        }
        strcpy(r->rel.bases[r->rel.n_bases++], base);
    }
    return true;
}

static _Atomic uint64_t g_ddl_seq;     /* DDL statements seen */
static _Atomic uint64_t g_cat_ddl_seq; /* g_ddl_seq when the published catalog's load started */

void px_cache_note_ddl(void)
{
    atomic_fetch_add_explicit(&g_ddl_seq, 1, memory_order_acq_rel);
}

uint64_t px_cache_ddl_seq(void)
{
    return atomic_load_explicit(&g_ddl_seq, memory_order_acquire);
}

void px_cache_catalog_set_ddl_seq(px_cache_catalog_t *c, uint64_t seq)
{
    c->ddl_seq = seq;
}

bool px_cache_catalog_stale(void)
{
    return atomic_load_explicit(&g_cat_ddl_seq, memory_order_acquire) <
           atomic_load_explicit(&g_ddl_seq, memory_order_acquire);
}

void px_cache_catalog_set_db(px_cache_catalog_t *c, const char *db)
{
    size_t n = db ? strlen(db) : 0;
    if (n >= sizeof c->db)
        n = sizeof c->db - 1; /* PostgreSQL truncates names at 63 bytes too */
    memcpy(c->db, db ? db : "", n);
    c->db[n] = '\0';
}

size_t px_cache_catalog_size(const px_cache_catalog_t *c)
{
    return c ? c->n : 0;
}

void px_cache_catalog_free(px_cache_catalog_t *c)
{
    if (!c)
        return;
    for (int i = 0; i < CAT_BUCKETS; i++) {
        cat_rel_t *r = c->buckets[i];
        while (r) {
            cat_rel_t *n = r->next;
            free(r);
            r = n;
        }
    }
    free(c);
}

/* The old catalog is freed once every lookup that may have loaded it is over. */
void px_cache_catalog_publish(px_cache_catalog_t *c)
{
    px_cache_catalog_t *old = atomic_exchange_explicit(&g_cat, c, memory_order_acq_rel);
    if (c)
        atomic_store_explicit(&g_cat_ddl_seq, c->ddl_seq, memory_order_release);
    if (!old)
        return;
    pthread_once(&g_epoch_once, epoch_init);
    ck_epoch_synchronize_wait(&g_epoch, NULL, NULL);
    px_cache_catalog_free(old);
}

bool px_cache_catalog_ready(void)
{
    return atomic_load_explicit(&g_cat, memory_order_acquire) != NULL;
}

bool px_cache_catalog_ready_for(const char *db)
{
    ck_epoch_record_t *rec = epoch_record();
    if (!rec)
        return false;
    ck_epoch_begin(rec, NULL);
    const px_cache_catalog_t *c = atomic_load_explicit(&g_cat, memory_order_acquire);
    bool ok = c != NULL && (c->db[0] == '\0' || strncmp(c->db, db, sizeof c->db - 1) == 0);
    ck_epoch_end(rec, NULL);
    return ok;
}

bool px_cache_catalog_lookup(const char *name, px_cache_rel_t *out)
{
    const char *dot = strrchr(name, '.');
    if (dot)
        name = dot + 1;
    ck_epoch_record_t *rec = epoch_record();
    if (!rec)
        return false;
    ck_epoch_begin(rec, NULL);
    const px_cache_catalog_t *c = atomic_load_explicit(&g_cat, memory_order_acquire);
    const cat_rel_t *r = c ? cat_find(c, name) : NULL;
    if (r)
        *out = r->rel;
    ck_epoch_end(rec, NULL);
    return r != NULL;
}
