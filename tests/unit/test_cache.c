/*
 * Unit tests for proxy/cache.c: tag versions and bumps, the L1 store (exact
 * key comparison, tag validation, races with writes, TTL, the budget and its
 * second-chance eviction, lock-free lookups racing with fills, evictions,
 * clears and bumps), the relation catalog (merge rules, lookups racing with
 * republication) and the replica-freshness check.
 *
 * The store is process-wide: every test uses keys and tags of its own and
 * clears what it filled.
 */
#include "px_cache.h"

#include <CUnit/Basic.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void configure(uint64_t max_bytes, uint64_t max_entry, uint32_t ttl)
{
    px_cache_config_t c = {
        .enabled = true, .max_bytes = max_bytes, .max_entry = max_entry, .default_ttl = ttl};
    px_cache_configure(&c);
}

static int suite_init(void)
{
    if (!px_cache_init())
        return 1;
    configure(64u << 20, 1u << 20, 300);
    return 0;
}

static px_cache_put_result_t put(const char *key, const char *val, const px_tag_t *tags, int n,
                                 const uint64_t *versions, uint32_t ttl)
{
    return px_cache_put(key, strlen(key), (const uint8_t *)val, strlen(val), tags, versions, n,
                        ttl);
}

/* The value stored under @p key, or NULL (static buffer). */
static const char *get(const char *key)
{
    static char out[4096];
    px_cache_entry_t *e = px_cache_get(key, strlen(key));
    if (!e)
        return NULL;
    size_t n;
    const uint8_t *v = px_cache_entry_value(e, &n);
    snprintf(out, sizeof(out), "%.*s", (int)n, (const char *)v);
    px_cache_entry_put(e);
    return out;
}

static void snapshot(const px_tag_t *tags, int n, uint64_t *versions)
{
    for (int i = 0; i < n; i++)
        versions[i] = px_cache_tag_version(tags[i]);
}

/* ---- tags ------------------------------------------------------------------------ */

static void test_tags_of_different_kinds_and_names_differ(void)
{
    px_tag_t t[] = {px_cache_tag_epoch(),           px_cache_tag_all("orders"),
                    px_cache_tag_scan("orders"),    px_cache_tag_all("order"),
                    px_cache_tag_row("orders", 1),  px_cache_tag_row("orders", 2),
                    px_cache_tag_row("orders", -1), px_cache_tag_row("items", 1)};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        for (size_t j = i + 1; j < sizeof t / sizeof t[0]; j++)
            CU_ASSERT_NOT_EQUAL(t[i], t[j]);
    CU_ASSERT_EQUAL(px_cache_tag_row("orders", 7), px_cache_tag_row("orders", 7));
}

static void test_a_bump_changes_the_version_and_records_the_generation(void)
{
    px_tag_t t = px_cache_tag_all("bump_me");
    uint64_t v = px_cache_tag_version(t);
    px_cache_tag_bump(t, 42);
    CU_ASSERT_NOT_EQUAL(px_cache_tag_version(t), v);
    CU_ASSERT_EQUAL(px_cache_tag_bump_gen(t), 42);
}

/* ---- L1 ---------------------------------------------------------------------------- */

static void test_a_stored_entry_is_found_by_its_exact_key(void)
{
    px_tag_t tags[] = {px_cache_tag_epoch(), px_cache_tag_all("exact")};
    uint64_t ver[2];
    snapshot(tags, 2, ver);
    CU_ASSERT_EQUAL(put("exact-key", "rows", tags, 2, ver, 0), PX_CACHE_PUT_STORED);
    CU_ASSERT_STRING_EQUAL(get("exact-key"), "rows");
    CU_ASSERT_PTR_NULL(get("exact-ke"));
    CU_ASSERT_PTR_NULL(get("exact-key "));
    CU_ASSERT_PTR_NULL(get("Exact-key"));
    px_cache_clear();
}

static void test_a_bumped_tag_hides_the_entry(void)
{
    px_tag_t tags[] = {px_cache_tag_epoch(), px_cache_tag_all("hide"), px_cache_tag_row("hide", 3)};
    uint64_t ver[3];
    snapshot(tags, 3, ver);
    CU_ASSERT_EQUAL(put("hide-key", "v", tags, 3, ver, 0), PX_CACHE_PUT_STORED);
    px_cache_tag_bump(px_cache_tag_row("hide", 4), 1); /* another row: still served */
    CU_ASSERT_PTR_NOT_NULL(get("hide-key"));
    px_cache_tag_bump(px_cache_tag_row("hide", 3), 1);
    CU_ASSERT_PTR_NULL(get("hide-key"));
    px_cache_stats_t st;
    px_cache_stats(&st);
    CU_ASSERT_TRUE(st.invalidated >= 1);
    px_cache_clear();
}

static void test_bumping_everything_hides_every_entry(void)
{
    px_tag_t tags[] = {px_cache_tag_epoch(), px_cache_tag_all("ep")};
    uint64_t ver[2];
    snapshot(tags, 2, ver);
    CU_ASSERT_EQUAL(put("epoch-key", "v", tags, 2, ver, 0), PX_CACHE_PUT_STORED);
    px_cache_bump_all(1);
    CU_ASSERT_PTR_NULL(get("epoch-key"));
}

static void test_a_fill_that_raced_with_a_write_is_not_stored(void)
{
    px_tag_t tags[] = {px_cache_tag_epoch(), px_cache_tag_scan("race")};
    uint64_t ver[2];
    snapshot(tags, 2, ver);        /* taken before the query was sent */
    px_cache_tag_bump(tags[1], 1); /* a write committed while it ran */
    CU_ASSERT_EQUAL(put("race-key", "old rows", tags, 2, ver, 0), PX_CACHE_PUT_RACED);
    CU_ASSERT_PTR_NULL(get("race-key"));
}

static void test_a_new_fill_replaces_the_entry_under_the_same_key(void)
{
    px_tag_t tags[] = {px_cache_tag_epoch()};
    uint64_t ver[1];
    snapshot(tags, 1, ver);
    CU_ASSERT_EQUAL(put("same-key", "one", tags, 1, ver, 0), PX_CACHE_PUT_STORED);
    CU_ASSERT_EQUAL(put("same-key", "two", tags, 1, ver, 0), PX_CACHE_PUT_STORED);
    CU_ASSERT_STRING_EQUAL(get("same-key"), "two");
    px_cache_stats_t st;
    px_cache_stats(&st);
    CU_ASSERT_EQUAL(st.entries, 1);
    px_cache_clear();
}

static void test_an_entry_expires_after_its_ttl(void)
{
    px_tag_t tags[] = {px_cache_tag_epoch()};
    uint64_t ver[1];
    snapshot(tags, 1, ver);
    CU_ASSERT_EQUAL(put("ttl-key", "v", tags, 1, ver, 1), PX_CACHE_PUT_STORED);
    CU_ASSERT_PTR_NOT_NULL(get("ttl-key"));
    usleep(1100 * 1000);
    CU_ASSERT_PTR_NULL(get("ttl-key"));
}

static void test_a_value_over_the_entry_limit_is_not_stored(void)
{
    configure(64u << 20, 16, 300);
    px_tag_t tags[] = {px_cache_tag_epoch()};
    uint64_t ver[1];
    snapshot(tags, 1, ver);
    CU_ASSERT_EQUAL(put("big-key", "seventeen bytes!!", tags, 1, ver, 0), PX_CACHE_PUT_TOO_BIG);
    CU_ASSERT_EQUAL(put("small-key", "sixteen bytes!!!", tags, 1, ver, 0), PX_CACHE_PUT_STORED);
    configure(64u << 20, 1u << 20, 300);
    px_cache_clear();
}

static void test_the_budget_evicts_the_least_recently_used(void)
{
    configure(64 * 1024, 8 * 1024, 300);
    px_tag_t tags[] = {px_cache_tag_epoch()};
    uint64_t ver[1];
    snapshot(tags, 1, ver);
    char val[2000];
    memset(val, 'x', sizeof(val) - 1);
    val[sizeof(val) - 1] = 0;
    char key[32];
    for (int i = 0; i < 200; i++) {
        snprintf(key, sizeof(key), "lru-%d", i);
        CU_ASSERT_EQUAL(put(key, val, tags, 1, ver, 0), PX_CACHE_PUT_STORED);
        if (i > 0)
            CU_ASSERT_PTR_NOT_NULL(get("lru-0")); /* kept hot */
    }
    px_cache_stats_t st;
    px_cache_stats(&st);
    CU_ASSERT_TRUE(st.bytes <= 64 * 1024);
    CU_ASSERT_TRUE(st.evictions > 0);
    CU_ASSERT_PTR_NULL(get("lru-1"));
    configure(64u << 20, 1u << 20, 300);
    px_cache_clear();
}

static void test_an_entry_read_under_a_reference_survives_its_eviction(void)
{
    px_tag_t tags[] = {px_cache_tag_epoch()};
    uint64_t ver[1];
    snapshot(tags, 1, ver);
    CU_ASSERT_EQUAL(put("ref-key", "still here", tags, 1, ver, 0), PX_CACHE_PUT_STORED);
    px_cache_entry_t *e = px_cache_get("ref-key", 7);
    CU_ASSERT_PTR_NOT_NULL_FATAL(e);
    CU_ASSERT_EQUAL(px_cache_clear(), 1);
    size_t n;
    const uint8_t *v = px_cache_entry_value(e, &n);
    CU_ASSERT_EQUAL(n, 10);
    CU_ASSERT_EQUAL(memcmp(v, "still here", 10), 0);
    px_cache_entry_put(e);
}

static void test_a_disabled_cache_stores_and_finds_nothing(void)
{
    px_tag_t tags[] = {px_cache_tag_epoch()};
    uint64_t ver[1];
    snapshot(tags, 1, ver);
    CU_ASSERT_EQUAL(put("off-key", "v", tags, 1, ver, 0), PX_CACHE_PUT_STORED);
    px_cache_config_t c = {.enabled = false, .max_bytes = 1 << 20, .max_entry = 1 << 10};
    px_cache_configure(&c);
    CU_ASSERT_PTR_NULL(get("off-key"));
    CU_ASSERT_EQUAL(put("off-key", "v", tags, 1, ver, 0), PX_CACHE_PUT_DISABLED);
    configure(64u << 20, 1u << 20, 300);
    CU_ASSERT_PTR_NULL(get("off-key")); /* switching off dropped everything */
}

/* ---- catalog ----------------------------------------------------------------------- */

static void test_the_catalog_merges_rows_of_one_name(void)
{
    px_cache_catalog_t *c = px_cache_catalog_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    unsigned ok = PX_CACHE_REL_CACHEABLE;
    /* a view over two tables */
    CU_ASSERT_TRUE(px_cache_catalog_add(c, "v", ok | PX_CACHE_REL_VIEW, NULL, "a"));
    CU_ASSERT_TRUE(px_cache_catalog_add(c, "v", ok | PX_CACHE_REL_VIEW, NULL, "b"));
    CU_ASSERT_TRUE(px_cache_catalog_add(c, "v", ok | PX_CACHE_REL_VIEW, NULL, "a"));
    /* a table with an integer key, and its namesake in another schema without */
    CU_ASSERT_TRUE(px_cache_catalog_add(c, "t", ok | PX_CACHE_REL_INT_PK, "id", "t"));
    CU_ASSERT_TRUE(px_cache_catalog_add(c, "k", ok | PX_CACHE_REL_INT_PK, "id", "k"));
    CU_ASSERT_TRUE(px_cache_catalog_add(c, "k", ok, NULL, "k"));
    /* a table with a trigger in one schema */
    CU_ASSERT_TRUE(px_cache_catalog_add(c, "s", ok, NULL, "s"));
    CU_ASSERT_TRUE(px_cache_catalog_add(c, "s", ok | PX_CACHE_REL_SIDE, NULL, "s"));
    /* a foreign table in one schema */
    CU_ASSERT_TRUE(px_cache_catalog_add(c, "f", ok, NULL, "f"));
    CU_ASSERT_TRUE(px_cache_catalog_add(c, "f", 0, NULL, "f"));
    CU_ASSERT_EQUAL(px_cache_catalog_size(c), 5);
    px_cache_catalog_publish(c);
    CU_ASSERT_TRUE(px_cache_catalog_ready());

    px_cache_rel_t r;
    CU_ASSERT_TRUE_FATAL(px_cache_catalog_lookup("v", &r));
    CU_ASSERT_EQUAL(r.n_bases, 2);
    CU_ASSERT_STRING_EQUAL(r.bases[0], "a");
    CU_ASSERT_STRING_EQUAL(r.bases[1], "b");
    CU_ASSERT_TRUE(r.flags & PX_CACHE_REL_CACHEABLE);
    CU_ASSERT_TRUE_FATAL(px_cache_catalog_lookup("public.t", &r));
    CU_ASSERT_TRUE(r.flags & PX_CACHE_REL_INT_PK);
    CU_ASSERT_STRING_EQUAL(r.pk_col, "id");
    CU_ASSERT_TRUE_FATAL(px_cache_catalog_lookup("k", &r));
    CU_ASSERT_FALSE(r.flags & PX_CACHE_REL_INT_PK);
    CU_ASSERT_TRUE_FATAL(px_cache_catalog_lookup("s", &r));
    CU_ASSERT_TRUE(r.flags & PX_CACHE_REL_SIDE);
    CU_ASSERT_TRUE_FATAL(px_cache_catalog_lookup("f", &r));
    CU_ASSERT_FALSE(r.flags & PX_CACHE_REL_CACHEABLE);
    CU_ASSERT_FALSE(px_cache_catalog_lookup("missing", &r));
}

static void test_a_relation_with_too_many_bases_is_not_cacheable(void)
{
    px_cache_catalog_t *c = px_cache_catalog_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    char base[16];
    for (int i = 0; i <= PX_CACHE_MAX_BASES; i++) {
        snprintf(base, sizeof(base), "b%d", i);
        CU_ASSERT_TRUE(px_cache_catalog_add(c, "wide", PX_CACHE_REL_CACHEABLE, NULL, base));
    }
    px_cache_catalog_publish(c);
    px_cache_rel_t r;
    CU_ASSERT_TRUE_FATAL(px_cache_catalog_lookup("wide", &r));
    CU_ASSERT_FALSE(r.flags & PX_CACHE_REL_CACHEABLE);
    CU_ASSERT_TRUE(r.flags & PX_CACHE_REL_SIDE);
}

/* ---- replicas ------------------------------------------------------------------------ */

static void test_a_replica_fill_waits_for_a_round_after_the_last_bump(void)
{
    px_tag_t t[] = {px_cache_tag_scan("rep")};
    px_cache_tag_bump(t[0], 100); /* a write at generation 100 */
    /* the next round may have started before the write: unknown */
    CU_ASSERT_FALSE(px_cache_replica_fresh(t, 1, 101, 5000, 9999));
    /* a round that started after it saw the primary at 5000 */
    CU_ASSERT_FALSE(px_cache_replica_fresh(t, 1, 102, 5000, 4999));
    CU_ASSERT_TRUE(px_cache_replica_fresh(t, 1, 102, 5000, 5000));
    /* later rounds keep the LSN the first one after the bump saw */
    CU_ASSERT_TRUE(px_cache_replica_fresh(t, 1, 110, 90000, 5001));
    /* another write moves the bar again */
    px_cache_tag_bump(t[0], 110);
    CU_ASSERT_FALSE(px_cache_replica_fresh(t, 1, 111, 90000, 95000));
    CU_ASSERT_FALSE(px_cache_replica_fresh(t, 1, 112, 90000, 5001));
    CU_ASSERT_TRUE(px_cache_replica_fresh(t, 1, 112, 90000, 90000));
    /* no health information: never */
    CU_ASSERT_FALSE(px_cache_replica_fresh(t, 1, 0, 0, 0));
}

/* ---- eviction policy ------------------------------------------------------------------ */

static void test_entries_read_recently_survive_a_burst_of_fills_never_read(void)
{
    px_cache_clear();
    px_tag_t tags[] = {px_cache_tag_all("second_chance")};
    uint64_t ver[1];
    snapshot(tags, 1, ver);
    char val[200];
    memset(val, 'v', sizeof(val) - 1);
    val[sizeof(val) - 1] = 0;
    /* what one entry costs: every key below has this length and this value */
    CU_ASSERT_EQUAL(put("sc-p-0000", val, tags, 1, ver, 0), PX_CACHE_PUT_STORED);
    px_cache_stats_t st;
    px_cache_stats(&st);
    CU_ASSERT_EQUAL_FATAL(st.entries, 1);
    uint64_t charge = st.bytes;
    px_cache_clear();

    enum { HOT = 16, COLD = 240, BURST = 64 };
    configure((HOT + COLD) * charge, 8 * 1024, 300);
    char key[32];
    /* the hot entries are the oldest: by insertion order alone they would go first */
    for (int i = 0; i < HOT; i++) {
        snprintf(key, sizeof(key), "sc-h-%04d", i);
        CU_ASSERT_EQUAL(put(key, val, tags, 1, ver, 0), PX_CACHE_PUT_STORED);
    }
    for (int i = 0; i < COLD; i++) {
        snprintf(key, sizeof(key), "sc-c-%04d", i);
        CU_ASSERT_EQUAL(put(key, val, tags, 1, ver, 0), PX_CACHE_PUT_STORED);
    }
    px_cache_stats(&st);
    CU_ASSERT_EQUAL(st.entries, HOT + COLD); /* the budget holds all of them */
    uint64_t evictions = st.evictions;
    for (int i = 0; i < HOT; i++) {
        snprintf(key, sizeof(key), "sc-h-%04d", i);
        CU_ASSERT_PTR_NOT_NULL(get(key));
    }
    for (int i = 0; i < BURST; i++) {
        snprintf(key, sizeof(key), "sc-b-%04d", i);
        CU_ASSERT_EQUAL(put(key, val, tags, 1, ver, 0), PX_CACHE_PUT_STORED);
    }
    px_cache_stats(&st);
    CU_ASSERT_EQUAL(st.evictions - evictions, BURST); /* one per fill over the budget */
    for (int i = 0; i < HOT; i++) {
        snprintf(key, sizeof(key), "sc-h-%04d", i);
        CU_ASSERT_PTR_NOT_NULL(get(key));
    }
    int gone = 0;
    for (int i = 0; i < COLD; i++) {
        snprintf(key, sizeof(key), "sc-c-%04d", i);
        gone += get(key) == NULL;
    }
    for (int i = 0; i < BURST; i++) {
        snprintf(key, sizeof(key), "sc-b-%04d", i);
        gone += get(key) == NULL;
    }
    CU_ASSERT_EQUAL(gone, BURST); /* every eviction took an entry never read */
    configure(64u << 20, 1u << 20, 300);
    px_cache_clear();
}

/* ---- concurrency ------------------------------------------------------------------------ */

/*
 * Readers look keys up while writers replace them under a budget that keeps
 * eviction running, bump their tags and clear the cache. Each value names its
 * key and is filled with a byte derived from it, and readers check every byte:
 * under AddressSanitizer, reading an entry (or a chain) after it was freed
 * aborts the run.
 */
#define ST_KEYS    32
#define ST_READERS 4
#define ST_WRITERS 2
#define ST_READS   60000
#define ST_WRITES  20000
#define ST_KEY_MAX 256

static _Atomic unsigned g_st_wrong, g_st_hits, g_st_failed_puts;

static uint32_t xorshift(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

/* Long, like real keys (statement text and parameters): readers spend their
 * time comparing keys in the chains, where an early free would be seen. */
static int st_key(char *key, size_t size, unsigned i)
{
    return snprintf(key, size, "stress-%03u|%0200u|", i, i);
}

static px_tag_t st_tag(unsigned i)
{
    return px_cache_tag_all(i % 2 ? "stress_odd" : "stress_even");
}

/* A value of key @p i: the key, then a fill byte of its own, @p len_seed sets the length. */
static size_t st_value(unsigned i, uint32_t len_seed, uint8_t *buf, size_t size)
{
    int n = st_key((char *)buf, size, i);
    size_t len = (size_t)n + len_seed % (size - (size_t)n);
    memset(buf + n, 'a' + (int)(i % 26), len - (size_t)n);
    return len;
}

static bool st_value_is_of(unsigned i, const px_cache_entry_t *e)
{
    char pre[ST_KEY_MAX];
    int n = st_key(pre, sizeof(pre), i);
    size_t len;
    const uint8_t *v = px_cache_entry_value(e, &len);
    if (len < (size_t)n || memcmp(v, pre, (size_t)n) != 0)
        return false;
    for (size_t k = (size_t)n; k < len; k++)
        if (v[k] != 'a' + i % 26)
            return false;
    return true;
}

static void *st_reader(void *arg)
{
    uint32_t seed = (uint32_t)(uintptr_t)arg * 2654435761u + 1;
    px_cache_entry_t *held = NULL; /* kept across later lookups, evictions and clears */
    unsigned held_key = 0, hits = 0, wrong = 0;
    char key[ST_KEY_MAX];
    for (int it = 0; it < ST_READS; it++) {
        unsigned i = xorshift(&seed) % ST_KEYS;
        int n = st_key(key, sizeof(key), i);
        px_cache_entry_t *e = px_cache_get(key, (size_t)n);
        if (!e)
            continue;
        hits++;
        wrong += !st_value_is_of(i, e);
        if (held) {
            wrong += !st_value_is_of(held_key, held);
            px_cache_entry_put(held);
        }
        held = e;
        held_key = i;
    }
    if (held) {
        wrong += !st_value_is_of(held_key, held);
        px_cache_entry_put(held);
    }
    atomic_fetch_add(&g_st_hits, hits);
    atomic_fetch_add(&g_st_wrong, wrong);
    return NULL;
}

static void *st_writer(void *arg)
{
    uint32_t seed = (uint32_t)(uintptr_t)arg * 40503u + 7;
    uint8_t val[1600];
    char key[ST_KEY_MAX];
    unsigned failed = 0;
    for (unsigned it = 1; it <= ST_WRITES; it++) {
        unsigned i = xorshift(&seed) % ST_KEYS;
        int n = st_key(key, sizeof(key), i);
        px_tag_t tags[] = {st_tag(i), px_cache_tag_row("stress", i)};
        uint64_t ver[2];
        snapshot(tags, 2, ver);
        size_t len = st_value(i, xorshift(&seed), val, sizeof(val));
        px_cache_put_result_t r = px_cache_put(key, (size_t)n, val, len, tags, ver, 2, 0);
        failed += r != PX_CACHE_PUT_STORED && r != PX_CACHE_PUT_RACED;
        if (it % 97 == 0)
            px_cache_tag_bump(st_tag(it), 1);
        if (it % 61 == 0)
            px_cache_tag_bump(px_cache_tag_row("stress", xorshift(&seed) % ST_KEYS), 1);
        if (it % 2500 == 0)
            px_cache_clear();
    }
    atomic_fetch_add(&g_st_failed_puts, failed);
    return NULL;
}

static void test_readers_never_see_a_wrong_or_freed_value_while_writers_churn(void)
{
    px_cache_clear();
    configure(16 * 1024, 4 * 1024, 300); /* about fifteen values: eviction on most fills */
    px_cache_stats_t before, after;
    px_cache_stats(&before);
    pthread_t r[ST_READERS], w[ST_WRITERS];
    for (uintptr_t i = 0; i < ST_READERS; i++)
        CU_ASSERT_EQUAL_FATAL(pthread_create(&r[i], NULL, st_reader, (void *)(i + 1)), 0);
    for (uintptr_t i = 0; i < ST_WRITERS; i++)
        CU_ASSERT_EQUAL_FATAL(pthread_create(&w[i], NULL, st_writer, (void *)(i + 1)), 0);
    for (int i = 0; i < ST_WRITERS; i++)
        pthread_join(w[i], NULL);
    for (int i = 0; i < ST_READERS; i++)
        pthread_join(r[i], NULL);
    CU_ASSERT_EQUAL(atomic_load(&g_st_wrong), 0);
    CU_ASSERT_EQUAL(atomic_load(&g_st_failed_puts), 0);
    CU_ASSERT_TRUE(atomic_load(&g_st_hits) > 0);
    px_cache_stats(&after);
    CU_ASSERT_TRUE(after.evictions > before.evictions);
    CU_ASSERT_TRUE(after.invalidated > before.invalidated);
    px_cache_clear();
    px_cache_stats(&after);
    CU_ASSERT_EQUAL(after.entries, 0); /* the accounting survived the races */
    CU_ASSERT_EQUAL(after.bytes, 0);
    configure(64u << 20, 1u << 20, 300);
}

/*
 * Fills enough distinct keys to make every shard double its bucket array
 * (twice) while readers look the same keys up: a lookup may miss a key being
 * moved, but never returns another key's value, and once the fills are done
 * every key is found.
 */
#define GR_KEYS 48000

static _Atomic unsigned g_gr_wrong, g_gr_filled;

static int gr_key(char *key, size_t size, unsigned i)
{
    return snprintf(key, size, "grow-%06u", i);
}

static void *gr_reader(void *arg)
{
    uint32_t seed = (uint32_t)(uintptr_t)arg * 2654435761u + 5;
    unsigned wrong = 0;
    char key[32];
    for (int it = 0; it < 4 * GR_KEYS / 3; it++) {
        unsigned filled = atomic_load(&g_gr_filled);
        unsigned i = xorshift(&seed) % (filled + 1);
        int n = gr_key(key, sizeof(key), i);
        px_cache_entry_t *e = px_cache_get(key, (size_t)n);
        if (!e)
            continue;
        size_t len;
        const uint8_t *v = px_cache_entry_value(e, &len);
        wrong += len != (size_t)n || memcmp(v, key, len) != 0;
        px_cache_entry_put(e);
    }
    atomic_fetch_add(&g_gr_wrong, wrong);
    return NULL;
}

static void test_lookups_during_table_growth_find_only_their_own_values(void)
{
    px_cache_clear();
    px_tag_t tags[] = {px_cache_tag_all("grow")};
    uint64_t ver[1];
    snapshot(tags, 1, ver);
    atomic_store(&g_gr_filled, 0);
    pthread_t r[4];
    for (uintptr_t i = 0; i < 4; i++)
        CU_ASSERT_EQUAL_FATAL(pthread_create(&r[i], NULL, gr_reader, (void *)(i + 1)), 0);
    char key[32];
    unsigned stored = 0;
    for (unsigned i = 0; i < GR_KEYS; i++) {
        int n = gr_key(key, sizeof(key), i);
        stored += px_cache_put(key, (size_t)n, (const uint8_t *)key, (size_t)n, tags, ver, 1, 0) ==
                  PX_CACHE_PUT_STORED;
        atomic_store(&g_gr_filled, i);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(r[i], NULL);
    CU_ASSERT_EQUAL(stored, GR_KEYS);
    CU_ASSERT_EQUAL(atomic_load(&g_gr_wrong), 0);
    unsigned found = 0;
    for (unsigned i = 0; i < GR_KEYS; i++) {
        gr_key(key, sizeof(key), i);
        found += get(key) != NULL;
    }
    CU_ASSERT_EQUAL(found, GR_KEYS);
    px_cache_stats_t st;
    px_cache_stats(&st);
    CU_ASSERT_EQUAL(st.entries, GR_KEYS);
    px_cache_clear();
}

/*
 * Readers look relations up while the catalog is replaced. Catalog g says of
 * every relation: primary key "pk<g>", bases {itself, "gen<g>"}. A lookup
 * that mixed two catalogs, or read a freed one, shows up as a mismatch (or an
 * AddressSanitizer report); a reader never sees an older catalog after a
 * newer one.
 */
#define CAT_RELS     32
#define CAT_VERSIONS 300
#define CAT_LOOKUPS  20000
static _Atomic unsigned g_cat_wrong;
static _Atomic bool g_cat_done;

static px_cache_catalog_t *cat_version(unsigned g)
{
    px_cache_catalog_t *c = px_cache_catalog_new();
    if (!c)
        return NULL;
    char name[32], pk[32], gen[32];
    snprintf(pk, sizeof(pk), "pk%u", g);
    snprintf(gen, sizeof(gen), "gen%u", g);
    unsigned flags = PX_CACHE_REL_CACHEABLE | PX_CACHE_REL_INT_PK;
    for (int i = 0; i < CAT_RELS; i++) {
        snprintf(name, sizeof(name), "crel%d", i);
        if (!px_cache_catalog_add(c, name, flags, pk, name) ||
            !px_cache_catalog_add(c, name, flags, pk, gen)) {
            px_cache_catalog_free(c);
            return NULL;
        }
    }
    return c;
}

static void *cat_reader(void *arg)
{
    uint32_t seed = (uint32_t)(uintptr_t)arg * 2246822519u + 3;
    unsigned wrong = 0, last = 0;
    char name[32], qualified[48];
    for (int n = 0; n < CAT_LOOKUPS || !atomic_load(&g_cat_done); n++) {
        snprintf(name, sizeof(name), "crel%u", xorshift(&seed) % CAT_RELS);
        snprintf(qualified, sizeof(qualified), "public.%s", name);
        px_cache_rel_t rel;
        unsigned g_pk = 0, g_base = 0;
        if (!px_cache_catalog_lookup(n % 2 ? qualified : name, &rel) || rel.n_bases != 2 ||
            !(rel.flags & PX_CACHE_REL_INT_PK) || strcmp(rel.bases[0], name) != 0 ||
            sscanf(rel.pk_col, "pk%u", &g_pk) != 1 || sscanf(rel.bases[1], "gen%u", &g_base) != 1 ||
            g_pk != g_base || g_pk < last) {
            wrong++;
            continue;
        }
        last = g_pk;
    }
    atomic_fetch_add(&g_cat_wrong, wrong);
    return NULL;
}

static void test_lookups_never_see_a_torn_or_freed_catalog_while_it_is_republished(void)
{
    px_cache_catalog_t *c = cat_version(1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    px_cache_catalog_publish(c);
    atomic_store(&g_cat_done, false);
    pthread_t r[4];
    for (uintptr_t i = 0; i < 4; i++)
        CU_ASSERT_EQUAL_FATAL(pthread_create(&r[i], NULL, cat_reader, (void *)(i + 1)), 0);
    unsigned published = 1;
    for (unsigned g = 2; g <= CAT_VERSIONS; g++) {
        c = cat_version(g);
        if (!c)
            break;
        px_cache_catalog_publish(c);
        published = g;
    }
    atomic_store(&g_cat_done, true);
    for (int i = 0; i < 4; i++)
        pthread_join(r[i], NULL);
    CU_ASSERT_EQUAL(published, CAT_VERSIONS);
    CU_ASSERT_EQUAL(atomic_load(&g_cat_wrong), 0);
    px_cache_rel_t rel;
    CU_ASSERT_TRUE_FATAL(px_cache_catalog_lookup("crel0", &rel));
    CU_ASSERT_STRING_EQUAL(rel.pk_col, "pk300");
}

/* ---- runner ------------------------------------------------------------------------ */

typedef struct {
    const char *name;
    CU_TestFunc fn;
} test_entry_t;

#define T(f)                                                                                       \
    {                                                                                              \
#f, f                                                                                      \
    }

static const test_entry_t tests[] = {
    T(test_tags_of_different_kinds_and_names_differ),
    T(test_a_bump_changes_the_version_and_records_the_generation),
    T(test_a_stored_entry_is_found_by_its_exact_key),
    T(test_a_bumped_tag_hides_the_entry),
    T(test_bumping_everything_hides_every_entry),
    T(test_a_fill_that_raced_with_a_write_is_not_stored),
    T(test_a_new_fill_replaces_the_entry_under_the_same_key),
    T(test_an_entry_expires_after_its_ttl),
    T(test_a_value_over_the_entry_limit_is_not_stored),
    T(test_the_budget_evicts_the_least_recently_used),
    T(test_an_entry_read_under_a_reference_survives_its_eviction),
    T(test_a_disabled_cache_stores_and_finds_nothing),
    T(test_the_catalog_merges_rows_of_one_name),
    T(test_a_relation_with_too_many_bases_is_not_cacheable),
    T(test_a_replica_fill_waits_for_a_round_after_the_last_bump),
    T(test_entries_read_recently_survive_a_burst_of_fills_never_read),
    T(test_readers_never_see_a_wrong_or_freed_value_while_writers_churn),
    T(test_lookups_during_table_growth_find_only_their_own_values),
    T(test_lookups_never_see_a_torn_or_freed_catalog_while_it_is_republished),
};

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    CU_pSuite s = CU_add_suite("cache", suite_init, NULL);
    if (!s) {
        CU_cleanup_registry();
        return 2;
    }
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
        if (!CU_add_test(s, tests[i].name, tests[i].fn)) {
            CU_cleanup_registry();
            return 2;
        }
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
    px_cache_clear();
    px_cache_catalog_publish(NULL);
    CU_cleanup_registry();
    return failed == 0 ? 0 : 1;
}
