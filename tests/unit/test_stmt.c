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

static void test_statement_names_read_back_to_their_keys(void)
{
    px_stmt_key_t k = key_of("SELECT $1::int"), back;
    char name[PX_STMT_NAME_LEN];
    px_stmt_name(k, name);
    CU_ASSERT_TRUE(px_stmt_name_parse(name, strlen(name), &back));
    CU_ASSERT_TRUE(px_stmt_key_eq(k, back));
    CU_ASSERT_FALSE(px_stmt_name_parse(name, 20, &back));     /* too short */
    CU_ASSERT_FALSE(px_stmt_name_parse("fx_0123", 7, &back)); /* too short */
    name[10] = 'G';
    CU_ASSERT_FALSE(px_stmt_name_parse(name, strlen(name), &back)); /* not hex */
    px_stmt_map_t m = {0};
    CU_ASSERT_TRUE_FATAL(px_stmt_map_put(&m, "q1", 2, "SELECT 1", 9, k));
    const px_stmt_t *st = px_stmt_map_by_key(&m, k);
    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    CU_ASSERT_STRING_EQUAL(st->name, "q1");
    CU_ASSERT_PTR_NULL(px_stmt_map_by_key(&m, key_of("SELECT 2")));
    px_stmt_map_clear(&m);
}

static void test_map_bound_is_configurable(void)
{
    px_stmt_map_t m = {0};
    m.max = 3;
    CU_ASSERT_TRUE(px_stmt_map_put(&m, "a", 1, "SELECT 1", 9, key_of("SELECT 1")));
    CU_ASSERT_TRUE(px_stmt_map_put(&m, "b", 1, "SELECT 1", 9, key_of("SELECT 1")));
    CU_ASSERT_TRUE(px_stmt_map_put(&m, "c", 1, "SELECT 1", 9, key_of("SELECT 1")));
    CU_ASSERT_FALSE(px_stmt_map_put(&m, "d", 1, "SELECT 1", 9, key_of("SELECT 1")));
    px_stmt_map_del(&m, "a", 1);
    CU_ASSERT_TRUE(px_stmt_map_put(&m, "d", 1, "SELECT 1", 9, key_of("SELECT 1")));
    CU_ASSERT_EQUAL(m.count, 3);
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

/* ---- result shapes ------------------------------------------------------------ */

/* A RowDescription body: fields of (name, table OID, column, type OID, length, modifier, format).
 */
static size_t row_description(uint8_t *out, const char *const *names, const uint32_t *types,
                              uint32_t table, uint16_t format, int n)
{
    size_t o = 0;
    out[o++] = (uint8_t)(n >> 8);
    out[o++] = (uint8_t)n;
    for (int i = 0; i < n; i++) {
        size_t nl = strlen(names[i]) + 1;
        memcpy(out + o, names[i], nl);
        o += nl;
        uint8_t f[18] = {(uint8_t)(table >> 24),
                         (uint8_t)(table >> 16),
                         (uint8_t)(table >> 8),
                         (uint8_t)table,
                         0,
                         (uint8_t)(i + 1),
                         (uint8_t)(types[i] >> 24),
                         (uint8_t)(types[i] >> 16),
                         (uint8_t)(types[i] >> 8),
                         (uint8_t)types[i],
                         0xff,
                         0xff,
                         0xff,
                         0xff,
                         0xff,
                         0xff,
                         (uint8_t)(format >> 8),
                         (uint8_t)format};
        memcpy(out + o, f, sizeof(f));
        o += sizeof(f);
    }
    return o;
}

static void test_shapes_differ_when_columns_or_types_change_not_tables_or_formats(void)
{
    uint8_t a[256], b[256];
    const char *two[] = {"id", "v"}, *three[] = {"id", "v", "w"}, *renamed[] = {"id", "x"};
    const uint32_t t2[] = {23, 25}, t3[] = {23, 25, 23}, retyped[] = {23, 23};
    uint64_t base = px_stmt_shape(a, row_description(a, two, t2, 16384, 0, 2));
    CU_ASSERT_NOT_EQUAL(base, 0);
    /* the same columns from another table, or asked in binary: the same shape */
    CU_ASSERT_EQUAL(px_stmt_shape(b, row_description(b, two, t2, 99999, 1, 2)), base);
    /* a column more, a column renamed, a type changed: another shape */
    CU_ASSERT_NOT_EQUAL(px_stmt_shape(b, row_description(b, three, t3, 16384, 0, 3)), base);
    CU_ASSERT_NOT_EQUAL(px_stmt_shape(b, row_description(b, renamed, t2, 16384, 0, 2)), base);
    CU_ASSERT_NOT_EQUAL(px_stmt_shape(b, row_description(b, two, retyped, 16384, 0, 2)), base);
    /* NoData has a shape of its own; a truncated body still hashes, in bounds */
    CU_ASSERT_NOT_EQUAL(px_stmt_shape(NULL, 0), 0);
    CU_ASSERT_NOT_EQUAL(px_stmt_shape(NULL, 0), base);
    size_t n = row_description(a, two, t2, 16384, 0, 2);
    for (size_t cut = 0; cut < n; cut++) {
        uint8_t *copy = malloc(cut ? cut : 1);
        memcpy(copy, a, cut);
        CU_ASSERT_NOT_EQUAL(px_stmt_shape(copy, cut), 0);
        free(copy);
    }
}

static void test_set_remembers_a_shape_per_statement_until_it_is_prepared_anew(void)
{
    px_stmt_set_t *s = px_stmt_set_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    px_stmt_key_t ev;
    bool had;
    CU_ASSERT_EQUAL(px_stmt_set_shape(s, nth_key(1)), 0);
    px_stmt_set_note_shape(s, nth_key(1), 77); /* absent: nothing noted */
    CU_ASSERT_EQUAL(px_stmt_set_shape(s, nth_key(1)), 0);
    for (unsigned i = 0; i < 300; i++) {
        px_stmt_set_add(s, nth_key(i), &ev, &had);
        px_stmt_set_note_shape(s, nth_key(i), 1000 + i);
    }
    /* deletions and the rehash they lead to keep every shape with its key */
    for (unsigned i = 0; i < 300; i += 3)
        px_stmt_set_del(s, nth_key(i));
    for (unsigned i = 300; i < 1000; i++)
        px_stmt_set_add(s, nth_key(i), &ev, &had);
    for (unsigned i = 1; i < 300; i++)
        if (i % 3 != 0)
            CU_ASSERT_EQUAL(px_stmt_set_shape(s, nth_key(i)), 1000 + i);
    CU_ASSERT_EQUAL(px_stmt_set_shape(s, nth_key(3)), 0);
    /* deleted then added again: prepared anew, shape not known */
    px_stmt_set_add(s, nth_key(3), &ev, &had);
    CU_ASSERT_EQUAL(px_stmt_set_shape(s, nth_key(3)), 0);
    px_stmt_set_clear(s);
    CU_ASSERT_EQUAL(px_stmt_set_shape(s, nth_key(1)), 0);
    px_stmt_set_free(s);
}

static void test_map_shapes_follow_the_statement_key(void)
{
    px_stmt_map_t m = {0};
    CU_ASSERT_TRUE_FATAL(px_stmt_map_put(&m, "a", 1, "SELECT 1", 9, key_of("SELECT 1")));
    CU_ASSERT_TRUE_FATAL(px_stmt_map_put(&m, "b", 1, "SELECT 2", 9, key_of("SELECT 2")));
    CU_ASSERT_EQUAL(px_stmt_map_get(&m, "a", 1)->shape, 0);
    px_stmt_map_set_shape(&m, px_stmt_name_hash("a", 1), key_of("SELECT 1"), 42);
    CU_ASSERT_EQUAL(px_stmt_map_get(&m, "a", 1)->shape, 42);
    CU_ASSERT_EQUAL(px_stmt_map_get(&m, "b", 1)->shape, 0);
    /* prepared again under the same name: the client has not seen its shape yet */
    CU_ASSERT_TRUE_FATAL(px_stmt_map_put(&m, "a", 1, "SELECT 1", 9, key_of("SELECT 1")));
    CU_ASSERT_EQUAL(px_stmt_map_get(&m, "a", 1)->shape, 0);
    px_stmt_map_clear(&m);
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
        !CU_add_test(s, "test_map_bound_is_configurable", test_map_bound_is_configurable) ||
        !CU_add_test(s, "test_statement_names_read_back_to_their_keys",
                     test_statement_names_read_back_to_their_keys) ||
        !CU_add_test(s, "test_set_evicts_the_oldest_statement_when_full",
                     test_set_evicts_the_oldest_statement_when_full) ||
        !CU_add_test(s, "test_set_delete_and_clear_forget_statements",
                     test_set_delete_and_clear_forget_statements) ||
        !CU_add_test(s, "test_shapes_differ_when_columns_or_types_change_not_tables_or_formats",
                     test_shapes_differ_when_columns_or_types_change_not_tables_or_formats) ||
        !CU_add_test(s, "test_set_remembers_a_shape_per_statement_until_it_is_prepared_anew",
                     test_set_remembers_a_shape_per_statement_until_it_is_prepared_anew) ||
        !CU_add_test(s, "test_map_shapes_follow_the_statement_key",
                     test_map_shapes_follow_the_statement_key)) {
        CU_cleanup_registry();
        return 2;
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
    CU_cleanup_registry();
    return failed == 0 ? 0 : 1;
}
