/*
 * Latency histograms and the Prometheus text-format writer.
 *
 * The registry is a static array of per-worker slots, each on its own cache
 * lines, so observing from a worker touches nothing another worker writes and
 * needs no setup. Every counter is a relaxed atomic that only grows; readers
 * sum the slots. A reading is not a global snapshot (a query may land in a
 * bucket after an earlier bucket was read) but it is monotonic between
 * scrapes, and the exported _count is derived from the same bucket reads as
 * the +Inf bucket, so the two always agree as Prometheus requires.
 *
 * The writer never allocates per sample: it appends to a px_metrics_buf_t
 * whose sticky failure flag the caller checks once.
 */
#include "px_metrics.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define RELAXED memory_order_relaxed

const double px_metrics_buckets[PX_METRICS_NBUCKETS] = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
};

/* Sums above this per observation are clamped so sum_ns cannot overflow in
 * any realistic lifetime (2^64 ns is 584 years of summed latency). */
#define PX_METRICS_MAX_OBSERVATION 1e6 /* seconds */

/* ---- histograms ------------------------------------------------------------ */

/* @p own: only this thread writes @p h (a worker's own slot), so a plain
 * relaxed load and store do; otherwise a locked add. */
static void observe(px_metrics_hist_t *h, double seconds, bool own)
{
    if (isnan(seconds))
        return;
    if (seconds < 0)
        seconds = 0;
    int i = 0;
    while (i < PX_METRICS_NBUCKETS && seconds > px_metrics_buckets[i])
        i++;
    if (seconds > PX_METRICS_MAX_OBSERVATION)
        seconds = PX_METRICS_MAX_OBSERVATION;
    uint64_t ns = (uint64_t)(seconds * 1e9 + 0.5);
    if (own) {
        atomic_store_explicit(&h->counts[i], atomic_load_explicit(&h->counts[i], RELAXED) + 1,
                              RELAXED);
        atomic_store_explicit(&h->sum_ns, atomic_load_explicit(&h->sum_ns, RELAXED) + ns, RELAXED);
    } else {
        atomic_fetch_add_explicit(&h->counts[i], 1, RELAXED);
        atomic_fetch_add_explicit(&h->sum_ns, ns, RELAXED);
    }
}

void px_metrics_hist_observe(px_metrics_hist_t *h, double seconds)
{
    observe(h, seconds, false);
}

void px_metrics_hist_snap_init(px_metrics_hist_snap_t *snap)
{
    memset(snap, 0, sizeof(*snap));
}

void px_metrics_hist_read(const px_metrics_hist_t *h, px_metrics_hist_snap_t *snap)
{
    /* snap->cumulative holds cumulative counts; turn this histogram's plain
     * counts into a running sum as they are added */
    uint64_t run = 0;
    for (int i = 0; i <= PX_METRICS_NBUCKETS; i++) {
        run += atomic_load_explicit(&((px_metrics_hist_t *)h)->counts[i], RELAXED);
        snap->cumulative[i] += run;
    }
    snap->count = snap->cumulative[PX_METRICS_NBUCKETS];
    snap->sum += (double)atomic_load_explicit(&((px_metrics_hist_t *)h)->sum_ns, RELAXED) / 1e9;
}

/* ---- registry ------------------------------------------------------------------ */

/* One worker's histograms; aligned so slots never share a cache line. */
typedef struct px_metrics_slot {
    px_metrics_hist_t query[PX_METRICS_ROUTE_COUNT][PX_METRICS_CACHE_COUNT];
    px_metrics_hist_t pool_wait;
} __attribute__((aligned(64))) px_metrics_slot_t;

/* [PX_METRICS_MAX_WORKERS] is shared by callers without a slot of their own. */
static px_metrics_slot_t px_metrics_slots[PX_METRICS_MAX_WORKERS + 1];

static px_metrics_slot_t *px_metrics_slot(int worker)
{
    if (worker < 0 || worker >= PX_METRICS_MAX_WORKERS)
        worker = PX_METRICS_MAX_WORKERS;
    return &px_metrics_slots[worker];
}

const char *px_metrics_route_to_str(px_metrics_route_t r)
{
    switch (r) {
    case PX_METRICS_ROUTE_PRIMARY:
        return "primary";
    case PX_METRICS_ROUTE_REPLICA:
        return "replica";
    default:
        return "unknown";
    }
}

const char *px_metrics_cache_to_str(px_metrics_cache_t c)
{
    switch (c) {
    case PX_METRICS_CACHE_HIT:
        return "hit";
    case PX_METRICS_CACHE_MISS:
        return "miss";
    case PX_METRICS_CACHE_BYPASS:
        return "bypass";
    default:
        return "unknown";
    }
}

void px_metrics_observe_query(int worker, px_metrics_route_t route, px_metrics_cache_t cache,
                              double seconds)
{
    if ((unsigned)route >= PX_METRICS_ROUTE_COUNT || (unsigned)cache >= PX_METRICS_CACHE_COUNT)
        return;
    /* a worker's slot has one writer: the worker itself */
    bool own = worker >= 0 && worker < PX_METRICS_MAX_WORKERS;
    observe(&px_metrics_slot(worker)->query[route][cache], seconds, own);
}

void px_metrics_observe_pool_wait(int worker, double seconds)
{
    observe(&px_metrics_slot(worker)->pool_wait, seconds,
            worker >= 0 && worker < PX_METRICS_MAX_WORKERS);
}

void px_metrics_read_query(px_metrics_route_t route, px_metrics_cache_t cache,
                           px_metrics_hist_snap_t *snap)
{
    if ((unsigned)route >= PX_METRICS_ROUTE_COUNT || (unsigned)cache >= PX_METRICS_CACHE_COUNT)
        return;
    for (int i = 0; i <= PX_METRICS_MAX_WORKERS; i++)
        px_metrics_hist_read(&px_metrics_slots[i].query[route][cache], snap);
}

void px_metrics_read_pool_wait(px_metrics_hist_snap_t *snap)
{
    for (int i = 0; i <= PX_METRICS_MAX_WORKERS; i++)
        px_metrics_hist_read(&px_metrics_slots[i].pool_wait, snap);
}

/* ---- text buffer ------------------------------------------------------------------ */

void px_metrics_buf_init(px_metrics_buf_t *b, size_t max)
{
    memset(b, 0, sizeof(*b));
    b->max = max;
}

void px_metrics_buf_free(px_metrics_buf_t *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
    b->failed = false;
}

void px_metrics_buf_reset(px_metrics_buf_t *b, size_t keep)
{
    if (b->cap > keep) {
        free(b->p);
        b->p = NULL;
        b->cap = 0;
    }
    b->len = 0;
    b->failed = false;
    if (b->p)
        b->p[0] = '\0';
}

/* Make room for @p n more bytes plus the NUL. */
static bool px_metrics_buf_grow(px_metrics_buf_t *b, size_t n)
{
    if (b->failed)
        return false;
    if (n > b->max || b->len > b->max - n) {
        b->failed = true;
        return false;
    }
    size_t need = b->len + n + 1;
    if (need <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        b->failed = true;
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

bool px_metrics_buf_append(px_metrics_buf_t *b, const void *s, size_t n)
{
    if (!px_metrics_buf_grow(b, n))
        return false;
    if (n)
        memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return true;
}

bool px_metrics_buf_puts(px_metrics_buf_t *b, const char *s)
{
    return px_metrics_buf_append(b, s, strlen(s));
}

bool px_metrics_buf_vprintf(px_metrics_buf_t *b, const char *fmt, va_list ap)
{
    char small[256];
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(small, sizeof(small), fmt, ap2);
    va_end(ap2);
    if (n < 0) {
        b->failed = true;
        return false;
    }
    if ((size_t)n < sizeof(small))
        return px_metrics_buf_append(b, small, (size_t)n);
    if (!px_metrics_buf_grow(b, (size_t)n))
        return false;
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return true;
}

bool px_metrics_buf_printf(px_metrics_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    bool ok = px_metrics_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return ok;
}

/* ---- Prometheus text format ----------------------------------------------------------- */

size_t px_metrics_utf8_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len;
    uint32_t cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return len;
}

void px_metrics_escape_label(px_metrics_buf_t *b, const char *s)
{
    if (!s)
        return;
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s);
    while (n > 0) {
        size_t k = px_metrics_utf8_len(p, n);
        if (k == 0) {
            px_metrics_buf_append(b, "\xef\xbf\xbd", 3); /* U+FFFD */
            p++;
            n--;
            continue;
        }
        if (*p == '\\')
            px_metrics_buf_append(b, "\\\\", 2);
        else if (*p == '"')
            px_metrics_buf_append(b, "\\\"", 2);
        else if (*p == '\n')
            px_metrics_buf_append(b, "\\n", 2);
        else
            px_metrics_buf_append(b, p, k);
        p += k;
        n -= k;
    }
}

/* HELP text escapes only backslash and newline. */
static void px_metrics_escape_help(px_metrics_buf_t *b, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\')
            px_metrics_buf_append(b, "\\\\", 2);
        else if (*s == '\n')
            px_metrics_buf_append(b, "\\n", 2);
        else
            px_metrics_buf_append(b, s, 1);
    }
}

void px_metrics_family(px_metrics_buf_t *b, const char *name, const char *type, const char *help)
{
    px_metrics_buf_printf(b, "# HELP %s ", name);
    px_metrics_escape_help(b, help);
    px_metrics_buf_printf(b, "\n# TYPE %s %s\n", name, type);
}

static void px_metrics_labels(px_metrics_buf_t *b, const px_metrics_label_t *labels, int n)
{
    if (n <= 0)
        return;
    px_metrics_buf_append(b, "{", 1);
    for (int i = 0; i < n; i++) {
        if (i)
            px_metrics_buf_append(b, ",", 1);
        px_metrics_buf_puts(b, labels[i].name);
        px_metrics_buf_append(b, "=\"", 2);
        px_metrics_escape_label(b, labels[i].value);
        px_metrics_buf_append(b, "\"", 1);
    }
    px_metrics_buf_append(b, "}", 1);
}

int px_metrics_format_double(char *out, size_t cap, double v)
{
    int n = 0;
    for (int prec = 15; prec <= 17; prec++) {
        n = snprintf(out, cap, "%.*g", prec, v);
        if (n < 0 || (size_t)n >= cap || strtod(out, NULL) == v)
            break;
    }
    return n;
}

/* Values as Go's ParseFloat reads them; integers up to 2^53 print exactly. */
static void px_metrics_value(px_metrics_buf_t *b, double v)
{
    if (isnan(v))
        px_metrics_buf_puts(b, "NaN");
    else if (isinf(v))
        px_metrics_buf_puts(b, v > 0 ? "+Inf" : "-Inf");
    else if (v == floor(v) && fabs(v) < 9007199254740992.0)
        px_metrics_buf_printf(b, "%.0f", v);
    else {
        char num[40];
        int n = px_metrics_format_double(num, sizeof(num), v);
        px_metrics_buf_append(b, num, n > 0 ? (size_t)n : 0);
    }
}

void px_metrics_sample(px_metrics_buf_t *b, const char *name, const px_metrics_label_t *labels,
                       int n_labels, double value)
{
    px_metrics_buf_puts(b, name);
    px_metrics_labels(b, labels, n_labels);
    px_metrics_buf_append(b, " ", 1);
    px_metrics_value(b, value);
    px_metrics_buf_append(b, "\n", 1);
}

void px_metrics_sample_u64(px_metrics_buf_t *b, const char *name, const px_metrics_label_t *labels,
                           int n_labels, uint64_t value)
{
    px_metrics_buf_puts(b, name);
    px_metrics_labels(b, labels, n_labels);
    px_metrics_buf_printf(b, " %llu\n", (unsigned long long)value);
}

#define PX_METRICS_HIST_MAX_LABELS 7

void px_metrics_histogram(px_metrics_buf_t *b, const char *name, const px_metrics_label_t *labels,
                          int n_labels, const px_metrics_hist_snap_t *snap)
{
    if (n_labels < 0 || n_labels > PX_METRICS_HIST_MAX_LABELS) {
        b->failed = true;
        return;
    }
    px_metrics_label_t l[PX_METRICS_HIST_MAX_LABELS + 1];
    for (int i = 0; i < n_labels; i++)
        l[i] = labels[i];
    char series[160], le[32];
    snprintf(series, sizeof(series), "%s_bucket", name);
    for (int i = 0; i <= PX_METRICS_NBUCKETS; i++) {
        if (i < PX_METRICS_NBUCKETS)
            snprintf(le, sizeof(le), "%g", px_metrics_buckets[i]);
        else
            snprintf(le, sizeof(le), "+Inf");
        l[n_labels] = (px_metrics_label_t){"le", le};
        px_metrics_sample_u64(b, series, l, n_labels + 1, snap->cumulative[i]);
    }
    snprintf(series, sizeof(series), "%s_sum", name);
    px_metrics_sample(b, series, labels, n_labels, snap->sum);
    snprintf(series, sizeof(series), "%s_count", name);
    px_metrics_sample_u64(b, series, labels, n_labels, snap->count);
}

void px_metrics_write_histograms(px_metrics_buf_t *b)
{
    px_metrics_family(b, "fastnext_query_duration_seconds", "histogram",
                      "Query latency through the proxy, first byte forwarded to ReadyForQuery, "
                      "by route and result-cache outcome.");
    for (int r = 0; r < PX_METRICS_ROUTE_COUNT; r++) {
        for (int c = 0; c < PX_METRICS_CACHE_COUNT; c++) {
            px_metrics_hist_snap_t snap;
            px_metrics_hist_snap_init(&snap);
            px_metrics_read_query((px_metrics_route_t)r, (px_metrics_cache_t)c, &snap);
            px_metrics_label_t l[2] = {
                {"route", px_metrics_route_to_str((px_metrics_route_t)r)},
                {"cache", px_metrics_cache_to_str((px_metrics_cache_t)c)},
            };
            px_metrics_histogram(b, "fastnext_query_duration_seconds", l, 2, &snap);
        }
    }
    px_metrics_family(b, "fastnext_pool_wait_seconds", "histogram",
                      "Time clients spent queued for a server connection.");
    px_metrics_hist_snap_t snap;
    px_metrics_hist_snap_init(&snap);
    px_metrics_read_pool_wait(&snap);
    px_metrics_histogram(b, "fastnext_pool_wait_seconds", NULL, 0, &snap);
}

/* ---- process ----------------------------------------------------------------------------- */

double px_metrics_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double px_metrics_cpu_percent(double cpu0, double wall0, double cpu1, double wall1)
{
    double dw = wall1 - wall0, dc = cpu1 - cpu0;
    if (!(dw > 0))
        return 0;
    if (dc < 0)
        dc = 0;
    return 100.0 * dc / dw;
}

/* Boot time from /proc/stat ("btime N"), 0 if unknown. */
static double px_metrics_boot_time(void)
{
    FILE *f = fopen("/proc/stat", "r");
    if (!f)
        return 0;
    char line[256];
    double bt = 0;
    while (fgets(line, sizeof(line), f)) {
        unsigned long long v;
        if (sscanf(line, "btime %llu", &v) == 1) {
            bt = (double)v;
            break;
        }
    }
    fclose(f);
    return bt;
}

/* Start time from field 22 of /proc/self/stat (clock ticks after boot). */
static double px_metrics_start_time(void)
{
    FILE *f = fopen("/proc/self/stat", "r");
    if (!f)
        return 0;
    char buf[1024];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* the command name (field 2) may hold spaces and parentheses: skip to the last ')' */
    char *p = strrchr(buf, ')');
    if (!p)
        return 0;
    p++;
    /* fields 3..21 */
    for (int field = 3; field <= 21; field++) {
        p = strchr(p + 1, ' ');
        if (!p)
            return 0;
    }
    unsigned long long ticks = strtoull(p + 1, NULL, 10);
    long hz = sysconf(_SC_CLK_TCK);
    double boot = px_metrics_boot_time();
    if (hz <= 0 || boot == 0)
        return 0;
    return boot + (double)ticks / (double)hz;
}

void px_metrics_process_read(px_metrics_process_t *out)
{
    memset(out, 0, sizeof(*out));
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0)
        out->cpu_seconds = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;

    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        unsigned long long size, resident;
        if (fscanf(f, "%llu %llu", &size, &resident) == 2)
            out->rss_bytes = resident * (uint64_t)sysconf(_SC_PAGESIZE);
        fclose(f);
    }

    out->open_fds = -1;
    DIR *d = opendir("/proc/self/fd");
    if (d) {
        int n = 0;
        struct dirent *e;
        while ((e = readdir(d)) != NULL)
            if (e->d_name[0] != '.')
                n++;
        closedir(d);
        out->open_fds = n - 1; /* the directory stream's own descriptor */
    }

    struct rlimit rl;
    out->max_fds = -1;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
        out->max_fds = (int64_t)rl.rlim_cur;

    static double start_time; /* constant for the process; racing writers store the same */
    double st;
    __atomic_load(&start_time, &st, __ATOMIC_RELAXED);
    if (st == 0) {
        st = px_metrics_start_time();
        __atomic_store(&start_time, &st, __ATOMIC_RELAXED);
    }
    out->start_time = st;
}
