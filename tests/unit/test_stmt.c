/*
 * Unit tests for proxy/stmt.c: server-side statement names, a client's
 * statement map (put/get/replace/delete, confirmation, its bound) and a
 * server connection's statement set (membership, oldest-first eviction).
 */
#include "stmt.h"

#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static px_stmt_key_t key_of(const char *text)
{
    return px_stmt_key(text, strlen(text) + 1);
}

/* ---- names ----------------------------------------------------------------- */

static void test_names_are_fx_and_32_hex_digits_of_the_key(void)
{
    const px_stmt_key_t keys[] = {
        {0, 0},
        {0x0123456789abcdefULL, 0xfedcba9876543210ULL},
        {UINT64_MAX, UINT64_MAX},
        key_of("SELECT 1"),
    };
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        char got[PX_STMT_NAME_LEN], want[64];
        memset(got, 'z', sizeof(got));
        px_stmt_name(keys[i], got);
        snprintf(want, sizeof(want), "fx_%016llx%016llx", (unsigned long long)keys[i].hi,
                 (unsigned long long)keys[i].lo);
        CU_ASSERT_STRING_EQUAL(got, want);
        CU_ASSERT_EQUAL(strlen(got), PX_STMT_NAME_LEN - 1);
    }
}

static void test_keys_depend_on_the_whole_parse_body(void)
{
    px_stmt_key_t a = key_of("SELECT $1"), b = key_of("SELECT $2");
    CU_ASSERT_FALSE(px_stmt_key_eq(a, b));
    CU_ASSERT_TRUE(px_stmt_key_eq(a, key_of("SELECT $1")));
    /* the same text with other parameter types is another statement */
    const char with_int[] = "SELECT $1\0\0\1\0\0\0\x17";
    const char with_text[] = "SELECT $1\0\0\1\0\0\0\x19";
    CU_ASSERT_FALSE(px_stmt_key_eq(px_stmt_key(with_int, sizeof(with_int) - 1),
                                   px_stmt_key(with_text, sizeof(with_text) - 1)));
}

/* ---- a client's map -------------------------------------------------------- */

static void test_map_keeps_replaces_and_forgets_names(void)
{
    px_stmt_map_t m = {0};
    CU_ASSERT_PTR_NULL(px_stmt_map_get(&m, "s1", 2));
    CU_ASSERT_TRUE_FATAL(px_stmt_map_put(&m, "s1", 2, "SELECT 1", 9, key_of("SELECT 1")));
    CU_ASSERT_TRUE_FATAL(px_stmt_map_put(&m, "s2", 2, "SELECT 2", 9, key_of("SELECT 2")));
    const px_stmt_t *st = px_stmt_map_get(&m, "s1", 2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    CU_ASSERT_STRING_EQUAL(st->name, "s1");
    CU_ASSERT_EQUAL(st->rest_len, 9);
    CU_ASSERT_EQUAL(memcmp(st->rest, "SELECT 1", 9), 0);
    CU_ASSERT_TRUE(px_stmt_key_eq(st->key, key_of("SELECT 1")));
    /* a name is not a prefix match */
    CU_ASSERT_PTR_NULL(px_stmt_map_get(&m, "s", 1));
    CU_ASSERT_PTR_NULL(px_stmt_map_get(&m, "s12", 3));
    /* put again: replaced, still one entry under that name */
    CU_ASSERT_TRUE_FATAL(px_stmt_map_put(&m, "s1", 2, "SELECT 3", 9, key_of("SELECT 3")));
    CU_ASSERT_EQUAL(m.count, 2);
    CU_ASSERT_EQUAL(memcmp(px_stmt_map_get(&m, "s1", 2)->rest, "SELECT 3", 9), 0);
    CU_ASSERT_TRUE(px_stmt_map_del(&m, "s1", 2));
    CU_ASSERT_FALSE(px_stmt_map_del(&m, "s1", 2));
    CU_ASSERT_PTR_NULL(px_stmt_map_get(&m, "s1", 2));
    CU_ASSERT_PTR_NOT_NULL(px_stmt_map_get(&m, "s2", 2));
    px_stmt_map_clear(&m);
    CU_ASSERT_EQUAL(m.count, 0);
    CU_ASSERT_PTR_NULL(px_stmt_map_get(&m, "s2", 2));
    px_stmt_map_clear(&m);
}

static void test_map_drops_only_unconfirmed_statements_of_a_failed_parse(void)
{
    px_stmt_map_t m = {0};
    px_stmt_key_t k = key_of("SELECT bad");
    CU_ASSERT_TRUE_FATAL(px_stmt_map_put(&m, "old", 3, "SELECT bad", 11, k));
    px_stmt_map_confirm(&m, k);
    CU_ASSERT_TRUE(px_stmt_map_get(&m, "old", 3)->confirmed);
    CU_ASSERT_TRUE_FATAL(px_stmt_map_put(&m, "new", 3, "SELECT bad", 11, k));
    CU_ASSERT_FALSE(px_stmt_map_get(&m, "new", 3)->confirmed);
    px_stmt_map_drop_unconfirmed(&m, k);
    CU_ASSERT_PTR_NOT_NULL(px_stmt_map_get(&m, "old", 3));
    CU_ASSERT_PTR_NULL(px_stmt_map_get(&m, "new", 3));
    px_stmt_map_clear(&m);
}

static void test_map_refuses_statements_past_its_bound(void)
{
    px_stmt_map_t m = {0};
    char name[32];
    unsigned stored = 0;
    for (unsigned i = 0; i < PX_STMT_MAP_MAX + 10; i++) {
        int n = snprintf(name, sizeof(name), "p%u", i);
        if (px_stmt_map_put(&m, name, (size_t)n, "SELECT 1", 9, key_of("SELECT 1")))
            stored++;
    }
    CU_ASSERT_EQUAL(stored, PX_STMT_MAP_MAX);
    CU_ASSERT_EQUAL(m.count, PX_STMT_MAP_MAX);
    /* replacing an existing name is still allowed when full */
    CU_ASSERT_TRUE(px_stmt_map_put(&m, "p0", 2, "SELECT 2", 9, key_of("SELECT 2")));
    for (unsigned i = 0; i < PX_STMT_MAP_MAX; i += 97) {
        int n = snprintf(name, sizeof(name), "p%u", i);
        CU_ASSERT_PTR_NOT_NULL(px_stmt_map_get(&m, name, (size_t)n));
    }
    px_stmt_map_clear(&m);
}

/* ---- a server connection's set --------------------------------------------- */

static px_stmt_key_t nth_key(unsigned i)
{
    char text[32];
    snprintf(text, sizeof(text), "SELECT %u", i);
    return key_of(text);
}

static void test_set_evicts_the_oldest_statement_when_full(void)
{
    px_stmt_set_t *s = px_stmt_set_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    px_stmt_key_t ev;
    bool had;
    for (unsigned i = 0; i < PX_STMT_SET_MAX; i++) {
        px_stmt_set_add(s, nth_key(i), &ev, &had);
        CU_ASSERT_FALSE(had);
    }
    for (unsigned i = 0; i < PX_STMT_SET_MAX; i++)
        CU_ASSERT_TRUE(px_stmt_set_has(s, nth_key(i)));
    /* one more: the first one goes, and the caller is told which */
    px_stmt_set_add(s, nth_key(PX_STMT_SET_MAX), &ev, &had);
    CU_ASSERT_TRUE(had);
    CU_ASSERT_TRUE(px_stmt_key_eq(ev, nth_key(0)));
    CU_ASSERT_FALSE(px_stmt_set_has(s, nth_key(0)));
    CU_ASSERT_TRUE(px_stmt_set_has(s, nth_key(1)));
    CU_ASSERT_TRUE(px_stmt_set_has(s, nth_key(PX_STMT_SET_MAX)));
    px_stmt_set_free(s);
}

static void test_set_delete_and_clear_forget_statements(void)
{
    px_stmt_set_t *s = px_stmt_set_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    px_stmt_key_t ev;
    bool had;
    for (unsigned i = 0; i < 50; i++)
        px_stmt_set_add(s, nth_key(i), &ev, &had);
    px_stmt_set_del(s, nth_key(7));
    CU_ASSERT_FALSE(px_stmt_set_has(s, nth_key(7)));
    CU_ASSERT_TRUE(px_stmt_set_has(s, nth_key(8)));
    /* deleted slots do not hide keys stored past them */
    for (unsigned i = 0; i < 50; i++)
        if (i != 7)
            CU_ASSERT_TRUE(px_stmt_set_has(s, nth_key(i)));
    px_stmt_set_clear(s);
    for (unsigned i = 0; i < 50; i++)
        CU_ASSERT_FALSE(px_stmt_set_has(s, nth_key(i)));
    /* usable after a clear, through many add/delete rounds */
    for (unsigned round = 0; round < 20; round++) {
        for (unsigned i = 0; i < PX_STMT_SET_MAX; i++)
            px_stmt_set_add(s, nth_key(round * 7919 + i), &ev, &had);
        for (unsigned i = 0; i < PX_STMT_SET_MAX; i += 2)
            px_stmt_set_del(s, nth_key(round * 7919 + i));
    }
    CU_ASSERT_TRUE(px_stmt_set_has(s, nth_key(19 * 7919 + 1)));
    CU_ASSERT_FALSE(px_stmt_set_has(s, nth_key(19 * 7919 + 2)));
    px_stmt_set_free(s);
}

/* ======================= runner ============================================ */

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    CU_pSuite s = CU_add_suite("stmt", NULL, NULL);
    if (!s ||
        !CU_add_test(s, "test_names_are_fx_and_32_hex_digits_of_the_key",
                     test_names_are_fx_and_32_hex_digits_of_the_key) ||
        !CU_add_test(s, "test_keys_depend_on_the_whole_parse_body",
                     test_keys_depend_on_the_whole_parse_body) ||
        !CU_add_test(s, "test_map_keeps_replaces_and_forgets_names",
                     test_map_keeps_replaces_and_forgets_names) ||
        !CU_add_test(s, "test_map_drops_only_unconfirmed_statements_of_a_failed_parse",
                     test_map_drops_only_unconfirmed_statements_of_a_failed_parse) ||
        !CU_add_test(s, "test_map_refuses_statements_past_its_bound",
                     test_map_refuses_statements_past_its_bound) ||
        !CU_add_test(s, "test_set_evicts_the_oldest_statement_when_full",
                     test_set_evicts_the_oldest_statement_when_full) ||
        !CU_add_test(s, "test_set_delete_and_clear_forget_statements",
                     test_set_delete_and_clear_forget_statements)) {
        CU_cleanup_registry();
        return 2;
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
    CU_cleanup_registry();
    return failed == 0 ? 0 : 1;
}
