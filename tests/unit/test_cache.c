/*
 * Unit tests for proxy/cache.c: tag versions and bumps, the L1 store (exact
 * key comparison, tag validation, races with writes, TTL, LRU budget), the
 * relation catalog's merge rules and the replica-freshness check.
 *
 * The store is process-wide: every test uses keys and tags of its own and
 * clears what it filled.
 */
#include "px_cache.h"

#include <CUnit/Basic.h>
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
