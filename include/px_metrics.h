/**
 * @file px_metrics.h
 * Latency histograms the workers feed, and the Prometheus text-format
 * (0.0.4) writer the admin port uses to export them and every other metric.
 *
 * Histograms have fixed buckets (PX_METRICS_BUCKETS, in seconds) and live in
 * a static registry with one slot per worker, so a worker's observation is a
 * few relaxed atomic adds on cache lines no other worker writes; a reader
 * (the admin thread) sums the slots. Nothing needs initialising or freeing.
 * Counts only ever go up, so what a scrape reads is monotonic, and each
 * exported `_count` equals its `le="+Inf"` bucket by construction (both come
 * from the same bucket reads).
 */
#ifndef PX_METRICS_H
#define PX_METRICS_H

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- histograms ------------------------------------------------------------ */

/** Number of finite bucket bounds; a +Inf bucket follows them. */
#define PX_METRICS_NBUCKETS 16

/** Upper bounds (seconds, inclusive: an observation v counts in every le >= v). */
extern const double px_metrics_buckets[PX_METRICS_NBUCKETS];

/** One histogram: per-bucket (non-cumulative) counts and the sum in nanoseconds. */
typedef struct px_metrics_hist {
    _Atomic uint64_t counts[PX_METRICS_NBUCKETS + 1]; /* [NBUCKETS] is the +Inf overflow */
    _Atomic uint64_t sum_ns;                          /* sum of observations, ns */
} px_metrics_hist_t;

/** A point-in-time reading of one or more histograms, summed. */
typedef struct px_metrics_hist_snap {
    uint64_t cumulative[PX_METRICS_NBUCKETS + 1]; /* observations <= bound; last = count */
    uint64_t count;                               /* == cumulative[PX_METRICS_NBUCKETS] */
    double sum;                                   /* seconds */
} px_metrics_hist_snap_t;

/**
 * Record one observation of @p seconds. Negative values count as 0, NaN is
 * ignored, values above the last bound land in +Inf. Safe from any thread.
 */
void px_metrics_hist_observe(px_metrics_hist_t *h, double seconds);

/** Zero @p snap (call before px_metrics_hist_read). */
void px_metrics_hist_snap_init(px_metrics_hist_snap_t *snap);

/**
 * Add @p h's current counts to @p snap and recompute its cumulative view;
 * call once per histogram to merge several (e.g. every worker's).
 */
void px_metrics_hist_read(const px_metrics_hist_t *h, px_metrics_hist_snap_t *snap);

/* ---- the registry the workers feed ------------------------------------------ */

/** Where a query ran. Kept in the registry's own enum so label sets stay fixed. */
typedef enum px_metrics_route {
    PX_METRICS_ROUTE_PRIMARY = 0,
    PX_METRICS_ROUTE_REPLICA,
    PX_METRICS_ROUTE_COUNT,
} px_metrics_route_t;

/** What the result cache did for a query (bypass: not cacheable or cache off). */
typedef enum px_metrics_cache {
    PX_METRICS_CACHE_HIT = 0,
    PX_METRICS_CACHE_MISS,
    PX_METRICS_CACHE_BYPASS,
    PX_METRICS_CACHE_COUNT,
} px_metrics_cache_t;

const char *px_metrics_route_to_str(px_metrics_route_t r);
const char *px_metrics_cache_to_str(px_metrics_cache_t c);

/** Workers with a slot of their own; others share one extra slot. */
#define PX_METRICS_MAX_WORKERS 64

/**
 * A query (a simple Query, or an extended-protocol batch up to its Sync)
 * took @p seconds from the first byte forwarded to ReadyForQuery. @p worker is
 * the calling worker's own index: only that thread may write its slot (any
 * other int selects the shared slot, which any thread may use); out-of-range
 * @p route / @p cache values are ignored.
 */
void px_metrics_observe_query(int worker, px_metrics_route_t route, px_metrics_cache_t cache,
                              double seconds);

/** A client waited @p seconds in a pool's queue before it got a server connection. */
void px_metrics_observe_pool_wait(int worker, double seconds);

/** Sum every slot of one (route, cache) query histogram into @p snap. */
void px_metrics_read_query(px_metrics_route_t route, px_metrics_cache_t cache,
                           px_metrics_hist_snap_t *snap);
/** Sum every slot of the pool-wait histogram into @p snap. */
void px_metrics_read_pool_wait(px_metrics_hist_snap_t *snap);

/* ---- text buffer ---------------------------------------------------------------- */

/**
 * A growable text buffer with a hard cap and a sticky failure flag: once an
 * append fails (no memory, or it would exceed @c max) every later append is a
 * no-op and @c failed stays set; the caller checks once at the end.
 * The text is always NUL-terminated when @c p is not NULL.
 */
typedef struct px_metrics_buf {
    char *p;     /* owned; NULL until the first append */
    size_t len;  /* bytes of text, excluding the NUL */
    size_t cap;  /* bytes allocated */
    size_t max;  /* hard cap on len */
    bool failed; /* an append did not fit */
} px_metrics_buf_t;

void px_metrics_buf_init(px_metrics_buf_t *b, size_t max);
void px_metrics_buf_free(px_metrics_buf_t *b);
/** Empty the text; keeps the allocation unless it grew beyond @p keep bytes. */
void px_metrics_buf_reset(px_metrics_buf_t *b, size_t keep);
bool px_metrics_buf_append(px_metrics_buf_t *b, const void *s, size_t n);
bool px_metrics_buf_puts(px_metrics_buf_t *b, const char *s);
bool px_metrics_buf_printf(px_metrics_buf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
bool px_metrics_buf_vprintf(px_metrics_buf_t *b, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

/**
 * Length of the well-formed UTF-8 sequence at @p s (at most @p n bytes, n > 0),
 * or 0 when it is malformed (stray continuation, overlong form, surrogate,
 * above U+10FFFF, or cut short). Shared by the text escapers.
 */
size_t px_metrics_utf8_len(const unsigned char *s, size_t n);

/**
 * Format a finite @p v with the fewest significant digits (15 to 17) that
 * read back as the same double: 0.1 prints as "0.1", not
 * "0.10000000000000001". Returns the length (snprintf semantics).
 */
int px_metrics_format_double(char *out, size_t cap, double v);

/* ---- Prometheus text format 0.0.4 ------------------------------------------------ */

/** The Content-Type of an exposition in this format. */
#define PX_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

typedef struct px_metrics_label {
    const char *name;  /* [a-zA-Z_][a-zA-Z0-9_]*, a literal */
    const char *value; /* any text; escaped on output (NULL prints as "") */
} px_metrics_label_t;

/** `# HELP` (with \ and newline escaped) and `# TYPE` lines of one family. */
void px_metrics_family(px_metrics_buf_t *b, const char *name, const char *type, const char *help);

/** One sample line; non-finite values print as NaN, +Inf, -Inf. */
void px_metrics_sample(px_metrics_buf_t *b, const char *name, const px_metrics_label_t *labels,
                       int n_labels, double value);
/** One sample line with an exact integer value. */
void px_metrics_sample_u64(px_metrics_buf_t *b, const char *name, const px_metrics_label_t *labels,
                           int n_labels, uint64_t value);

/**
 * The `_bucket` (with `le` added after @p labels), `_sum` and `_count` lines
 * of one histogram series named @p name. At most 7 labels.
 */
void px_metrics_histogram(px_metrics_buf_t *b, const char *name, const px_metrics_label_t *labels,
                          int n_labels, const px_metrics_hist_snap_t *snap);

/**
 * Append @p s to @p b as a label value: backslash, double quote and newline
 * escaped; invalid UTF-8 replaced by U+FFFD so the exposition stays valid.
 */
void px_metrics_escape_label(px_metrics_buf_t *b, const char *s);

/** Write the two histogram families of the registry (query duration, pool wait). */
void px_metrics_write_histograms(px_metrics_buf_t *b);

/* ---- process --------------------------------------------------------------------- */

/** Resource use of this process, from getrusage(2) and /proc/self. */
typedef struct px_metrics_process {
    double cpu_seconds; /* user + system CPU time since start */
    uint64_t rss_bytes; /* resident set size, 0 if unknown */
    int open_fds;       /* entries in /proc/self/fd, -1 if unknown */
    int64_t max_fds;    /* RLIMIT_NOFILE soft limit, -1 if unlimited or unknown */
    double start_time;  /* process start, seconds since the epoch, 0 if unknown */
} px_metrics_process_t;

void px_metrics_process_read(px_metrics_process_t *out);

/** Monotonic seconds (CLOCK_MONOTONIC). */
double px_metrics_now(void);

/**
 * CPU use between two samples in percent of one core (so up to 100 * cores):
 * 100 * d(cpu) / d(wall). Returns 0 when the wall interval is not positive
 * and clamps a negative CPU delta to 0.
 */
double px_metrics_cpu_percent(double cpu0, double wall0, double cpu1, double wall1);

#endif
