/*
 * Unit tests for proxy/cdc.c's reading of test_decoding output: which lines
 * are commits and changes, the relation's name (quoted identifiers, schema
 * dropped), and the integer primary-key values a change carries — and every
 * case where it cannot be sure (NULL, a non-integer, an unreadable line, too
 * many keys), which must mean "the whole table".
 *
 * Lines are handed over as exact-size heap copies with no terminating NUL, so
 * under ASan any read past the end fails the run.
 */
#include "px_cdc.h"

#include <CUnit/Basic.h>
#include <stdlib.h>
#include <string.h>

static px_cdc_line_t parse(const char *line, const char *key, px_cdc_change_t *out)
{
    size_t n = strlen(line);
    char *b = malloc(n ? n : 1);
    CU_ASSERT_FATAL(b != NULL);
    memcpy(b, line, n);
    px_cdc_line_t r = px_cdc_parse_line(b, n, key, out);
    free(b);
    return r;
}

static void test_commit_begin_and_messages(void)
{
    px_cdc_change_t ch;
    CU_ASSERT_EQUAL(parse("COMMIT", NULL, &ch), PX_CDC_LINE_COMMIT);
    CU_ASSERT_EQUAL(parse("BEGIN", NULL, &ch), PX_CDC_LINE_OTHER);
    CU_ASSERT_EQUAL(parse("message: transactional: 1 prefix: p, sz: 1 content:x", NULL, &ch),
                    PX_CDC_LINE_OTHER);
    CU_ASSERT_EQUAL(parse("", NULL, &ch), PX_CDC_LINE_OTHER);
}

static void test_relation_names(void)
{
    px_cdc_change_t ch;
    CU_ASSERT_EQUAL(parse("table public.accounts: INSERT: id[integer]:1", NULL, &ch),
                    PX_CDC_LINE_CHANGE);
    CU_ASSERT_STRING_EQUAL(ch.relname, "accounts");
    CU_ASSERT_EQUAL(ch.n_keys, -1);
    CU_ASSERT_EQUAL(
        parse("table \"My Schema\".\"Odd.Name: x\"\"y\": DELETE: (no-tuple-data)", NULL, &ch),
        PX_CDC_LINE_CHANGE);
    CU_ASSERT_STRING_EQUAL(ch.relname, "Odd.Name: x\"y");
    CU_ASSERT_EQUAL(parse("table public.t: TRUNCATE: (no-flags)", "id", &ch), PX_CDC_LINE_CHANGE);
    CU_ASSERT_STRING_EQUAL(ch.relname, "t");
    CU_ASSERT_EQUAL(ch.n_keys, -1);
    CU_ASSERT_EQUAL(parse("table public.t: UPSERT: id[integer]:1", NULL, &ch), PX_CDC_LINE_BAD);
    CU_ASSERT_EQUAL(parse("table \"unterminated: INSERT: id[integer]:1", NULL, &ch),
                    PX_CDC_LINE_BAD);
    CU_ASSERT_EQUAL(parse("table public.t", NULL, &ch), PX_CDC_LINE_BAD);
}

static void test_keys_of_a_change(void)
{
    px_cdc_change_t ch;
    CU_ASSERT_EQUAL(parse("table public.pgbench_accounts: UPDATE: aid[integer]:42 bid[integer]:1 "
                          "abalance[integer]:-7 filler[character]:'  aid[integer]:99 '",
                          "aid", &ch),
                    PX_CDC_LINE_CHANGE);
    CU_ASSERT_EQUAL(ch.n_keys, 1);
    CU_ASSERT_EQUAL(ch.keys[0], 42);
    /* a key that changed: old and new both count */
    CU_ASSERT_EQUAL(parse("table public.t: UPDATE: old-key: id[bigint]:-5 new-tuple: "
                          "id[bigint]:9223372036854775807 v[text]:'it''s'",
                          "id", &ch),
                    PX_CDC_LINE_CHANGE);
    CU_ASSERT_EQUAL(ch.n_keys, 2);
    CU_ASSERT_EQUAL(ch.keys[0], -5);
    CU_ASSERT_EQUAL(ch.keys[1], INT64_MAX);
    /* array types end in [] inside the brackets */
    CU_ASSERT_EQUAL(parse("table public.t: INSERT: tags[text[]]:'{a,b}' id[smallint]:3", "id", &ch),
                    PX_CDC_LINE_CHANGE);
    CU_ASSERT_EQUAL(ch.n_keys, 1);
    CU_ASSERT_EQUAL(ch.keys[0], 3);
    CU_ASSERT_EQUAL(parse("table public.t: DELETE: id[integer]:8", "id", &ch), PX_CDC_LINE_CHANGE);
    CU_ASSERT_EQUAL(ch.n_keys, 1);
    CU_ASSERT_EQUAL(ch.keys[0], 8);
    CU_ASSERT_EQUAL(parse("table public.t: INSERT: \"Id\"[integer]:5", "Id", &ch),
                    PX_CDC_LINE_CHANGE);
    CU_ASSERT_EQUAL(ch.n_keys, 1);
}

static void test_unsure_keys_mean_the_whole_table(void)
{
    px_cdc_change_t ch;
    const char *cases[] = {
        "table public.t: INSERT: id[integer]:null v[text]:'x'",
        "table public.t: INSERT: id[numeric]:1.5",
        "table public.t: INSERT: id[bigint]:99999999999999999999",
        "table public.t: INSERT: id[text]:'1'",
        "table public.t: INSERT: v[text]:'x'", /* no key column at all */
        "table public.t: DELETE: (no-tuple-data)",
        "table public.t: UPDATE: id[integer]:1 v[text]:'unterminated",
        "table public.t: UPDATE: id[integer",
        "table public.t: UPDATE: garbage",
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        CU_ASSERT_EQUAL(parse(cases[i], "id", &ch), PX_CDC_LINE_CHANGE);
        CU_ASSERT_EQUAL(ch.n_keys, -1);
        CU_ASSERT_STRING_EQUAL(ch.relname, "t");
    }
    char line[1024] = "table public.t: UPDATE: old-key:";
    for (int i = 0; i < PX_CDC_MAX_KEYS + 1; i++)
        snprintf(line + strlen(line), sizeof line - strlen(line), " id[integer]:%d", i);
    CU_ASSERT_EQUAL(parse(line, "id", &ch), PX_CDC_LINE_CHANGE);
    CU_ASSERT_EQUAL(ch.n_keys, -1);
}

static CU_TestInfo parse_tests[] = {
    {"test_commit_begin_and_messages", test_commit_begin_and_messages},
    {"test_relation_names", test_relation_names},
    {"test_keys_of_a_change", test_keys_of_a_change},
    {"test_unsure_keys_mean_the_whole_table", test_unsure_keys_mean_the_whole_table},
    CU_TEST_INFO_NULL,
};

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    CU_SuiteInfo suites[] = {{"cdc/parse", NULL, NULL, NULL, NULL, parse_tests},
                             CU_SUITE_INFO_NULL};
    if (CU_register_suites(suites) != CUE_SUCCESS) {
        CU_cleanup_registry();
        return 2;
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
    CU_cleanup_registry();
    return failed == 0 ? 0 : 1;
}
