/**
 * @file px_digest.h
 * Per-query digests (SPEC §6, slow queries): what the proxy itself measured
 * for each normalised statement — calls, errors, rows, total / mean / max /
 * p95 time, cache hits and calls per route.
 *
 * A statement's digest id is the fingerprint of its text after a lexical
 * normalisation: comments and whitespace dropped, unquoted words folded to
 * lower case, every literal (numbers, strings of any kind, dollar-quoted
 * bodies, TRUE / FALSE, a minus sign folded into the number it negates) and
 * every $n parameter replaced by one placeholder, trailing semicolons
 * ignored, and an IN list made only of placeholders collapsed to one. So
 * "SELECT * FROM t WHERE id IN (1, 2)  -- x" and
 * "select * from t where id in ($1,$2,$3);" share a digest, while statements
 * that differ in anything else (keywords, names, operators, structure) do
 * not. pg_stat_statements' query texts ($1, $2, ... for constants) go through
 * the same function and land on the same id, which is how the admin port
 * joins the two.
 *
 * Costs: px_digest_id() is one lexical pass over the text plus one lookup
 * under a shard mutex (a per-thread cache of recent texts skips the lexical
 * pass for repeated texts); px_digest_record() is one lookup and a few
 * additions under the same mutex. Both are meant for the worker threads' hot
 * path.
 *
 * Bounded memory: at most max_digests digests (px_digest_configure, default
 * PX_DIGEST_DEFAULT_MAX). When a new statement arrives and the table is full,
 * the digests with the smallest total time are evicted (5% of the table at a
 * time, at least one), so the table keeps the top digests by total time.
 * A digest registered less than PX_DIGEST_GRACE_S seconds ago that has not
 * been recorded yet counts as the heaviest for this purpose — it has had no
 * chance to show its time — unless nothing else is left to evict. Each digest
 * keeps its normalised text (at most PX_DIGEST_TEXT_MAX bytes) and the first
 * text seen with its literal values (at most PX_DIGEST_SAMPLE_MAX bytes;
 * longer samples are not kept), for EXPLAIN.
 *
 * Thread safety: every function may be called from any thread. Pure module:
 * no sockets, loops or logging.
 */
#ifndef PX_DIGEST_H
#define PX_DIGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PX_DIGEST_DEFAULT_MAX 5000 /* digests kept unless configured */
#define PX_DIGEST_TEXT_MAX    2048 /* bytes of normalised text kept per digest */
#define PX_DIGEST_SAMPLE_MAX  8192 /* longest sample text kept */
#define PX_DIGEST_GRACE_S     10   /* a new, unrecorded digest is not evicted for this long */
/*
 * Latency histogram per digest: bucket 0 holds durations under 1 us, bucket
 * b >= 1 covers [2^((b-1)/4), 2^(b/4)) us (~19% wide), the last one
 * everything from 2^31.5 us (~50 minutes) up.
 */
#define PX_DIGEST_HIST_BUCKETS 128

/** Where a recorded execution was answered. */
typedef enum px_digest_route {
    PX_DIGEST_ROUTE_PRIMARY = 0,
    PX_DIGEST_ROUTE_REPLICA,
    PX_DIGEST_ROUTE_CACHE,
    PX_DIGEST_ROUTE_COUNT,
} px_digest_route_t;

const char *px_digest_route_to_str(px_digest_route_t r);

/** Sort order of px_digest_top(). */
typedef enum px_digest_order {
    PX_DIGEST_ORDER_TOTAL = 0, /* total time, descending */
    PX_DIGEST_ORDER_MEAN,      /* mean time, descending */
    PX_DIGEST_ORDER_P95,       /* 95th percentile, descending */
    PX_DIGEST_ORDER_CALLS,     /* calls, descending */
} px_digest_order_t;

/**
 * Fingerprint of @p len bytes at @p sql (not NUL-terminated) after the
 * normalisation described above, without registering anything. 0 for a text
 * with no token (empty, blanks or comments only). Never reads outside
 * [sql, sql + len).
 */
uint64_t px_digest_fingerprint(const char *sql, size_t len);

/**
 * The normalised text of @p sql as px_digest_top() shows it (placeholders
 * written $1, $2, ... in order), NUL-terminated in @p out, cut at @p cap - 1
 * bytes on a UTF-8 boundary. Returns the length written.
 */
size_t px_digest_normalize(const char *sql, size_t len, char *out, size_t cap);

/**
 * The digest id of @p sql (px_digest_fingerprint), registering the digest
 * with its normalised text and @p sql as its sample on first sight. Returns
 * 0 when it cannot (empty text, digests disabled with max 0, out of memory);
 * px_digest_record() ignores id 0.
 */
uint64_t px_digest_id(const char *sql, size_t len);

/**
 * Account one execution of digest @p id: its elapsed time, the rows it
 * returned or affected (CommandComplete), where it ran, whether it was a
 * cache hit (normally with route CACHE) and whether it failed. Executions of
 * a digest that was evicted meanwhile are counted as dropped (px_digest_info).
 */
void px_digest_record(uint64_t id, double seconds, uint64_t rows, px_digest_route_t route,
                      bool cache_hit, bool error);

/** One digest in a snapshot. Plain data: copy it, keep it, no cleanup. */
typedef struct px_digest_entry {
    uint64_t id;
    uint64_t calls;                              /* recorded executions, failed ones included */
    uint64_t errors;                             /* of which failed */
    uint64_t rows;                               /* sum of rows */
    uint64_t cache_hits;                         /* of which answered from the result cache */
    uint64_t route_calls[PX_DIGEST_ROUTE_COUNT]; /* calls per route */
    double total_seconds;                        /* sum of elapsed times */
    double mean_seconds;                         /* total / calls, 0 without calls */
    double min_seconds, max_seconds;
    double p95_seconds;                 /* from the histogram: within ~10%, clamped to [min, max] */
    uint64_t first_seen_ms;             /* wall clock (ms since the epoch) of registration */
    uint64_t last_seen_ms;              /* of the last record, 0 when never recorded */
    bool has_sample;                    /* px_digest_sample() has a text */
    bool query_truncated;               /* query[] holds only the first PX_DIGEST_TEXT_MAX bytes */
    char query[PX_DIGEST_TEXT_MAX + 1]; /* normalised text, NUL-terminated */
} px_digest_entry_t;

/**
 * Snapshot of at most @p max digests with at least one recorded call,
 * sorted by @p order (ties by total time, then id), into @p out. Returns how
 * many were written. Each digest is copied under its shard's lock, so its
 * numbers are consistent with each other; digests are not frozen against
 * each other.
 */
size_t px_digest_top(px_digest_entry_t *out, size_t max, px_digest_order_t order);

/** One digest by id; false when it is not (or no longer) kept. */
bool px_digest_get(uint64_t id, px_digest_entry_t *out);

/**
 * Copy the sample text of digest @p id (the first text seen, literal values
 * and all) NUL-terminated into @p out. Returns its length, or 0 when there is
 * none (digest unknown, sample too long to keep) or it does not fit in @p cap.
 */
size_t px_digest_sample(uint64_t id, char *out, size_t cap);

/**
 * Set the most digests kept (0 disables digests: px_digest_id returns 0).
 * Shrinking evicts the lightest at once.
 */
void px_digest_configure(size_t max_digests);

typedef struct px_digest_info {
    size_t digests;     /* kept now */
    size_t max_digests; /* configured bound */
    uint64_t evictions; /* digests evicted for room since start */
    uint64_t dropped;   /* records whose digest had been evicted */
} px_digest_info_t;

void px_digest_info(px_digest_info_t *out);

/** Forget every digest (tests, and an admin reset). Counters stay. */
void px_digest_reset(void);

#endif
