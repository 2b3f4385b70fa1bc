/**
 * @file px_cache.h
 * The result cache's shared core (SPEC §5): tag versions, the relation
 * catalog the tags come from, and the in-process level (L1) of cached
 * results. Sessions (proxy/cacheflow.c) decide what to look up and fill;
 * this module only stores and validates.
 *
 * Tags. Every cached result depends on a few tags, each a 64-bit hash:
 *   - EPOCH: one tag every entry depends on; bumped by writes the cache
 *     cannot attribute (DDL, TRUNCATE, CALL, DO, side-effecting functions,
 *     tables with triggers, rules or cascading foreign keys, unknown text).
 *   - ALL(t): every entry reading base table t depends on it; bumped by a
 *     write to t whose rows the cache cannot name.
 *   - SCAN(t): entries that read t without naming its rows by primary key;
 *     bumped by every write to t.
 *   - ROW(t, k): entries that read only the row of t whose integer primary
 *     key is k; bumped by writes that name that row (UPDATE/DELETE ... WHERE
 *     pk = k, INSERT ... VALUES with pk k).
 * Tables are named by their unqualified name (schemas share tags: that only
 * over-invalidates), views by the base tables they read.
 *
 * Versions. A tag's version lives in a slot of a fixed table indexed by the
 * tag's hash; two tags sharing a slot only invalidate each other more often.
 * Bumps are atomic increments; reads are atomic loads: no locks. An entry
 * records the version of each of its tags as they were BEFORE its query was
 * sent, and is served only while every tag still has that version — so a
 * fill that raced with a write is never served.
 *
 * Thread safety: every function may be called from any thread. Lookups take
 * no lock (Concurrency Kit epoch sections; the entry returned is held by a
 * reference until px_cache_entry_put). L1 is split into shards, each with a
 * mutex that only writers take: fills, eviction, unlinking, clearing.
 */
#ifndef PX_CACHE_H
#define PX_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef uint64_t px_tag_t;

/* ---- configuration ---------------------------------------------------------- */

typedef struct px_cache_config {
    bool enabled;         /* CACHE_ENABLED */
    uint64_t max_bytes;   /* CACHE_MAX_SIZE: L1 budget (keys, values and overhead) */
    uint64_t max_entry;   /* CACHE_MAX_ENTRY_SIZE: largest cached result */
    uint32_t default_ttl; /* CACHE_DEFAULT_TTL seconds */
} px_cache_config_t;

/** Set up the tag table and L1 (idempotent); false when out of memory. */
bool px_cache_init(void);
/** Free every entry (process exit, tests). */
void px_cache_shutdown(void);
/** Apply a configuration (at start and on reload); shrinking evicts. */
void px_cache_configure(const px_cache_config_t *cfg);
/** The configuration in force. */
void px_cache_get_config(px_cache_config_t *out);

/** Monotonic milliseconds, the cache's clock for TTLs. */
uint64_t px_cache_now_ms(void);

/* ---- tags --------------------------------------------------------------------- */

px_tag_t px_cache_tag_epoch(void);
px_tag_t px_cache_tag_all(const char *table);
px_tag_t px_cache_tag_scan(const char *table);
px_tag_t px_cache_tag_row(const char *table, int64_t key);

/** Current version of @p t. */
uint64_t px_cache_tag_version(px_tag_t t);
/**
 * Bump @p t (its entries stop being served). @p health_gen is the health
 * prober's generation now (px_health_generation()), remembered for the
 * replica-freshness check of later fills.
 */
void px_cache_tag_bump(px_tag_t t, uint64_t health_gen);
/** Bump EPOCH: nothing cached before now is served again. */
void px_cache_bump_all(uint64_t health_gen);
/** Health generation of the last bump of @p t (0: never bumped since start). */
uint64_t px_cache_tag_bump_gen(px_tag_t t);

/** Wall-clock milliseconds (for comparing with other instances). */
uint64_t px_cache_wall_ms(void);
/**
 * Apply a bump another instance made at its wall-clock time @p wall_ms
 * (received through the invalidation channel): the version moves, and the
 * slot remembers the latest bump time it has heard of.
 */
void px_cache_tag_bump_remote(px_tag_t t, uint64_t wall_ms, uint64_t health_gen);
/** Wall-clock time of the latest bump of @p t's slot known here (0: none). */
uint64_t px_cache_tag_last_bump_ms(px_tag_t t);

/**
 * Cross-instance state. With a shared level or other instances (Redis
 * configured), the cache may only serve while it hears every instance's
 * invalidations: px_cache_set_synced(false) when the channel is lost (every
 * entry is dropped from service and nothing is looked up or filled),
 * px_cache_set_synced(true) once subscribed again (entries filled before are
 * dropped once more, and L2 entries filled before this moment are refused).
 * Without Redis the cache is synced from the start.
 */
void px_cache_set_synced(bool synced, uint64_t health_gen);
bool px_cache_synced(void);
/** Wall-clock time since which the channel has been heard without a gap. */
uint64_t px_cache_synced_since_ms(void);

/**
 * Replica freshness: a result read from a replica may be cached only if the
 * replica has replayed every write that bumped one of its tags. The caller
 * passes the tags, the current health generation, the primary's WAL LSN and
 * the replica's replay LSN from the latest health round. True when, for each
 * tag, a health round that started after its last bump saw a primary LSN the
 * replica has since replayed.
 */
bool px_cache_replica_fresh(const px_tag_t *tags, int n, uint64_t gen_now, uint64_t primary_lsn,
                            uint64_t replica_lsn);

/* ---- relation catalog ------------------------------------------------------ */

/** Relation flags. */
#define PX_CACHE_REL_CACHEABLE 0x01u /* results reading it may be cached */
#define PX_CACHE_REL_SIDE                                                                          \
    0x02u                         /* writes to it may change other tables (triggers, rules,        \
                                     cascading foreign keys): they bump EPOCH */
#define PX_CACHE_REL_INT_PK 0x04u /* a plain table with a one-column integer primary key */
#define PX_CACHE_REL_VIEW   0x08u /* a view (or materialized view read through its base) */

typedef struct px_cache_catalog px_cache_catalog_t;

px_cache_catalog_t *px_cache_catalog_new(void);
/**
 * Add what the catalog says about relation @p name (unqualified): its flags,
 * its integer primary-key column (or NULL) and one base table its data comes
 * from (itself for a table, the inheritance root for a partition or child, a
 * base table for a view; NULL for none). Call once per (name, base) pair:
 * rows for the same name merge — flags are ANDed for CACHEABLE and INT_PK
 * and ORed for SIDE, bases are collected (at most 16; more clear CACHEABLE),
 * and a second, different primary-key column clears INT_PK.
 */
bool px_cache_catalog_add(px_cache_catalog_t *c, const char *name, unsigned flags,
                          const char *pk_col, const char *base) __attribute__((warn_unused_result));
size_t px_cache_catalog_size(const px_cache_catalog_t *c);
void px_cache_catalog_free(px_cache_catalog_t *c);
/** Publish @p c (ownership passes); the previous catalog is freed. */
void px_cache_catalog_publish(px_cache_catalog_t *c);
/**
 * Name the database @p c describes. Relations are known by name only, and
 * another database may hold the same name as something else (a view over
 * other tables, say), so reads are cached only in this one.
 */
void px_cache_catalog_set_db(px_cache_catalog_t *c, const char *db);
/* DDL through the proxy: the catalog in use may not know its triggers, rules,
 * foreign keys or views until a load started after it is published. Loads
 * take px_cache_ddl_seq() when they start and give it to their catalog. */
void px_cache_note_ddl(void);
uint64_t px_cache_ddl_seq(void);
void px_cache_catalog_set_ddl_seq(px_cache_catalog_t *c, uint64_t seq);
/* A DDL happened that the published catalog may not reflect yet. */
bool px_cache_catalog_stale(void);
/** Whether a catalog has been published. */
bool px_cache_catalog_ready(void);
/** Whether a catalog describing database @p db (or an unnamed one) is published. */
bool px_cache_catalog_ready_for(const char *db);

#define PX_CACHE_MAX_BASES 16
typedef struct px_cache_rel {
    unsigned flags;
    int n_bases;
    char pk_col[64];
    char bases[PX_CACHE_MAX_BASES][64];
} px_cache_rel_t;

/**
 * What the published catalog says about @p name (the last component of a
 * possibly qualified name is used). False when there is no catalog or the
 * name is not in it.
 */
bool px_cache_catalog_lookup(const char *name, px_cache_rel_t *out);

/** Append @p t to @p tags (@p n of @p cap used) unless it is there; false when full. */
bool px_cache_tags_add(px_tag_t *tags, int *n, int cap, px_tag_t t);
/**
 * Append the tags a write to relation @p rel bumps: its scan tag and one row
 * tag per key when it has an integer primary key and @p nkeys of its values
 * are known (the write touched only those rows), else the whole-table tag of
 * each base. False, with nothing added, when they might not fit.
 */
bool px_cache_tags_add_write(px_tag_t *tags, int *n, int cap, const px_cache_rel_t *rel,
                             const int64_t *keys, int nkeys);

/* ---- L1 entries -------------------------------------------------------------- */

#define PX_CACHE_MAX_TAGS 64

typedef struct px_cache_entry px_cache_entry_t;

/**
 * Find the entry stored under exactly @p key (the full key material; the
 * hash only picks the bucket). It is returned with a reference only when it
 * has not expired and every tag still has the version it was filled under;
 * otherwise it is unlinked and NULL is returned. Release with
 * px_cache_entry_put().
 */
px_cache_entry_t *px_cache_get(const void *key, size_t key_len);
/** The cached reply bytes of @p e. */
const uint8_t *px_cache_entry_value(const px_cache_entry_t *e, size_t *len);
void px_cache_entry_put(px_cache_entry_t *e);

/** Why px_cache_put stored or did not store. */
typedef enum px_cache_put_result {
    PX_CACHE_PUT_STORED = 0,
    PX_CACHE_PUT_RACED,    /* a tag was bumped since the snapshot: never served */
    PX_CACHE_PUT_TOO_BIG,  /* larger than max_entry (or the whole budget) */
    PX_CACHE_PUT_DISABLED, /* the cache is off */
    PX_CACHE_PUT_NO_MEMORY,
} px_cache_put_result_t;

const char *px_cache_put_result_to_str(px_cache_put_result_t r);

/**
 * Store @p val under @p key with tags @p tags at versions @p versions (read
 * before the query was sent), for @p ttl_s seconds (0: the default TTL).
 * Replaces an entry under the same key.
 */
px_cache_put_result_t px_cache_put(const void *key, size_t key_len, const uint8_t *val,
                                   size_t val_len, const px_tag_t *tags, const uint64_t *versions,
                                   int n_tags, uint32_t ttl_s);

/** Drop every entry now (DELETE /api/v1/cache). Returns how many were dropped. */
uint64_t px_cache_clear(void);

/* ---- statistics ----------------------------------------------------------------- */

typedef struct px_cache_stats {
    uint64_t hits, misses; /* lookups of cacheable statements */
    uint64_t stores, store_raced, store_too_big, store_replica_behind, store_aborted;
    uint64_t evictions, expired, invalidated; /* entries dropped by budget, TTL, stale tags */
    uint64_t entries, bytes;                  /* gauges */
    uint64_t bumps;                           /* tag bumps (local and received) */
    uint64_t hit_ns_sum, hit_samples;         /* time to serve a hit from L1 */
    uint64_t coalesced;                       /* misses that waited for an identical fill */
    uint64_t l2_hits;                         /* answered from L2 (copied into L1 first) */
} px_cache_stats_t;

void px_cache_stats(px_cache_stats_t *out);

/** Counter hooks for the session side. */
typedef enum px_cache_counter {
    PX_CACHE_C_HIT = 0,
    PX_CACHE_C_MISS,
    PX_CACHE_C_STORE_REPLICA_BEHIND,
    PX_CACHE_C_STORE_ABORTED,
    PX_CACHE_C_COALESCED,
    PX_CACHE_C_L2_HIT, /* answered from an entry another instance filled (via L2) */
    PX_CACHE_C_COUNT,
} px_cache_counter_t;
void px_cache_count(px_cache_counter_t c, uint64_t n);
void px_cache_observe_hit_ns(uint64_t ns);

struct px_shared;
/** Plug the cache's endpoints and metrics into the admin port (admin/cache_admin.c). */
void px_cache_admin_register(struct px_shared *sh);
/**
 * Run the queries of @p path (one per line; blank lines and lines starting
 * with -- or # skipped) through the proxy, in the background, to fill the
 * cache. Also POST /api/v1/cache/warm {"queries": [...]}.
 */
void px_cache_warm_file(const char *path);

#endif
