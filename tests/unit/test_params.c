/*
 * Unit tests for proxy/params.c: session parameter sets (set/get/copy/free
 * and the order-independent hash), the SQL that turns one set into another
 * on a pooled server connection, the startup "options" parser, and which
 * startup parameters are tracked. Output buffers are heap blocks of exactly
 * the capacity passed, so under ASan a write past cap fails the run.
 */
#include "px.h"

#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers --------------------------------------------------------------- */

static bool set(px_params_t *p, const char *name, const char *value)
{
    return px_params_set(p, name, strlen(name), value, strlen(value));
}

static void set_ok(px_params_t *p, const char *name, const char *value)
{
    CU_ASSERT_TRUE_FATAL(set(p, name, value));
}

static bool parse(px_params_t *p, const char *opts)
{
    return px_params_parse_options(p, opts, strlen(opts));
}

static void expect_value(const px_params_t *p, const char *name, const char *want, unsigned line)
{
    const char *got = px_params_get(p, name);
    char msg[300];
    snprintf(msg, sizeof(msg), "px_params_get(\"%s\") = %s%s%s, want %s", name, got ? "\"" : "",
             got ? got : "NULL", got ? "\"" : "", want ? want : "NULL");
    bool ok = want == NULL ? got == NULL : (got != NULL && strcmp(got, want) == 0);
    CU_assertImplementation(ok, line, msg, __FILE__, "", CU_FALSE);
}

#define EXPECT_VALUE(p, name, want) expect_value((p), (name), (want), __LINE__)

/* diff into an exact-size heap buffer; returns a static copy of the text */
static const char *diff(const px_params_t *have, const px_params_t *want, size_t *n_out)
{
    static char out[8192];
    char *b = malloc(sizeof(out));
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    size_t n = px_params_diff_sql(have, want, b, sizeof(out), NULL);
    CU_ASSERT_EQUAL(n, strlen(b));
    memcpy(out, b, n + 1);
    free(b);
    if (n_out)
        *n_out = n;
    return out;
}

static void expect_diff(const px_params_t *have, const px_params_t *want, const char *sql,
                        unsigned line)
{
    size_t n = 0;
    const char *got = diff(have, want, &n);
    char msg[1200];
    snprintf(msg, sizeof(msg), "diff = \"%s\", want \"%s\"", got, sql);
    CU_assertImplementation(strcmp(got, sql) == 0 && n == strlen(sql), line, msg, __FILE__, "",
                            CU_FALSE);
}

#define EXPECT_DIFF(have, want, sql) expect_diff((have), (want), (sql), __LINE__)

/* ======================= set / get / copy / free =========================== */

static void test_set_then_get_returns_the_value(void)
{
    px_params_t p = {0};
    set_ok(&p, "application_name", "app");
    set_ok(&p, "timezone", "UTC");
    EXPECT_VALUE(&p, "application_name", "app");
    EXPECT_VALUE(&p, "timezone", "UTC");
    CU_ASSERT_EQUAL(p.count, 2);
    px_params_free(&p);
}

static void test_get_of_a_missing_name_is_null(void)
{
    px_params_t p = {0};
    EXPECT_VALUE(&p, "a", NULL);
    set_ok(&p, "a", "1");
    EXPECT_VALUE(&p, "b", NULL);
    EXPECT_VALUE(&p, "", NULL);
    EXPECT_VALUE(&p, "1", NULL); /* a value is not a name */
    px_params_free(&p);
}

static void test_set_lowercases_names_and_get_ignores_case(void)
{
    px_params_t p = {0};
    set_ok(&p, "DateStyle", "ISO, MDY");
    CU_ASSERT_STRING_EQUAL(p.block, "datestyle");
    EXPECT_VALUE(&p, "datestyle", "ISO, MDY");
    EXPECT_VALUE(&p, "DateStyle", "ISO, MDY");
    EXPECT_VALUE(&p, "DATESTYLE", "ISO, MDY");
    px_params_free(&p);
}

static void test_set_keeps_value_case(void)
{
    px_params_t p = {0};
    set_ok(&p, "application_name", "MyApp");
    EXPECT_VALUE(&p, "application_name", "MyApp");
    px_params_free(&p);
}

static void test_set_replaces_an_existing_name_in_any_case(void)
{
    px_params_t p = {0};
    set_ok(&p, "a", "1");
    set_ok(&p, "TimeZone", "UTC");
    set_ok(&p, "b", "2");
    set_ok(&p, "timezone", "Europe/Paris");
    set_ok(&p, "TIMEZONE", "Asia/Tokyo");
    CU_ASSERT_EQUAL(p.count, 3);
    EXPECT_VALUE(&p, "timezone", "Asia/Tokyo");
    EXPECT_VALUE(&p, "a", "1");
    EXPECT_VALUE(&p, "b", "2");
    /* the block holds exactly the three pairs */
    CU_ASSERT_EQUAL(p.len, strlen("a") + 1 + strlen("1") + 1 + strlen("b") + 1 + strlen("2") + 1 +
                               strlen("timezone") + 1 + strlen("Asia/Tokyo") + 1);
    px_params_free(&p);
}

static void test_block_is_name_nul_value_nul_pairs(void)
{
    px_params_t p = {0};
    set_ok(&p, "a", "1");
    set_ok(&p, "bb", "");
    static const char want[] = "a\0001\000bb\000";
    CU_ASSERT_EQUAL_FATAL(p.len, sizeof(want));
    CU_ASSERT_EQUAL(memcmp(p.block, want, sizeof(want)), 0);
    CU_ASSERT_EQUAL(p.count, 2);
    px_params_free(&p);
}

static void test_set_uses_only_the_given_lengths(void)
{
    px_params_t p = {0};
    CU_ASSERT_TRUE(px_params_set(&p, "search_pathXYZ", 11, "publicXYZ", 6));
    EXPECT_VALUE(&p, "search_path", "public");
    EXPECT_VALUE(&p, "search_pathxyz", NULL);
    px_params_free(&p);
}

static void test_set_accepts_an_empty_value(void)
{
    px_params_t p = {0};
    set_ok(&p, "search_path", "");
    EXPECT_VALUE(&p, "search_path", "");
    /* an empty value needs no bytes behind the pointer */
    CU_ASSERT_TRUE(px_params_set(&p, "application_name", 16, NULL, 0));
    EXPECT_VALUE(&p, "application_name", "");
    CU_ASSERT_EQUAL(p.count, 2);
    px_params_free(&p);
}

static void test_set_rejects_bad_names_and_values_and_leaves_the_set_alone(void)
{
    px_params_t p = {0};
    char name64[65], name63[64], value4097[4098];
    memset(name64, 'n', 64);
    name64[64] = 0;
    memset(name63, 'n', 63);
    name63[63] = 0;
    memset(value4097, 'v', 4097);
    value4097[4097] = 0;
    set_ok(&p, "keep", "me");
    uint64_t hash = p.hash;
    uint32_t len = p.len;

    CU_ASSERT_FALSE(px_params_set(&p, "", 0, "x", 1));
    CU_ASSERT_FALSE(set(&p, name64, "x"));
    CU_ASSERT_FALSE(set(&p, "a", value4097));
    CU_ASSERT_FALSE(px_params_set(&p, "a\0b", 3, "x", 1));
    CU_ASSERT_FALSE(px_params_set(&p, "a", 1, "x\0y", 3));
    CU_ASSERT_EQUAL(p.count, 1);
    CU_ASSERT_EQUAL(p.len, len);
    CU_ASSERT_EQUAL(p.hash, hash);
    EXPECT_VALUE(&p, "keep", "me");

    /* the limits themselves are accepted */
    CU_ASSERT_TRUE(set(&p, name63, "x"));
    CU_ASSERT_TRUE(set(&p, "a", value4097 + 1)); /* 4096 bytes */
    EXPECT_VALUE(&p, name63, "x");
    CU_ASSERT_EQUAL(strlen(px_params_get(&p, "a")), 4096);
    px_params_free(&p);
}

static void test_hash_is_equal_for_equal_sets_in_any_order(void)
{
    px_params_t a = {0}, b = {0}, c = {0};
    set_ok(&a, "application_name", "x");
    set_ok(&a, "timezone", "UTC");
    set_ok(&a, "search_path", "s, public");

    set_ok(&b, "search_path", "s, public");
    set_ok(&b, "TimeZone", "UTC");
    set_ok(&b, "application_name", "x");

    /* reached through replacements */
    set_ok(&c, "timezone", "GMT");
    set_ok(&c, "search_path", "s, public");
    set_ok(&c, "application_name", "old");
    set_ok(&c, "timezone", "UTC");
    set_ok(&c, "application_name", "x");

    CU_ASSERT_EQUAL(a.hash, b.hash);
    CU_ASSERT_EQUAL(a.hash, c.hash);
    CU_ASSERT_EQUAL(a.count, b.count);
    CU_ASSERT_EQUAL(a.count, c.count);
    CU_ASSERT_EQUAL(a.len, c.len);
    px_params_free(&a);
    px_params_free(&b);
    px_params_free(&c);
}

static void test_hash_changes_with_a_value_or_a_name(void)
{
    px_params_t a = {0}, b = {0}, c = {0}, d = {0};
    set_ok(&a, "timezone", "UTC");
    set_ok(&b, "timezone", "GMT");
    set_ok(&c, "datestyle", "UTC");
    /* the same bytes split differently must differ too */
    set_ok(&d, "timezon", "eUTC");
    CU_ASSERT_NOT_EQUAL(a.hash, b.hash);
    CU_ASSERT_NOT_EQUAL(a.hash, c.hash);
    CU_ASSERT_NOT_EQUAL(a.hash, d.hash);
    CU_ASSERT_NOT_EQUAL(a.hash, 0);
    px_params_free(&a);
    px_params_free(&b);
    px_params_free(&c);
    px_params_free(&d);
}

static void test_free_empties_the_set_and_may_be_repeated(void)
{
    px_params_t p = {0};
    px_params_free(&p);
    set_ok(&p, "a", "1");
    px_params_free(&p);
    CU_ASSERT_PTR_NULL(p.block);
    CU_ASSERT_EQUAL(p.len, 0);
    CU_ASSERT_EQUAL(p.count, 0);
    CU_ASSERT_EQUAL(p.hash, 0);
    px_params_free(&p);
    EXPECT_VALUE(&p, "a", NULL);
    set_ok(&p, "b", "2"); /* usable again */
    EXPECT_VALUE(&p, "b", "2");
    px_params_free(&p);
}

static void test_copy_is_equal_and_independent_of_the_source(void)
{
    px_params_t src = {0}, dst = {0};
    set_ok(&src, "a", "1");
    set_ok(&src, "b", "2");
    set_ok(&dst, "old", "value"); /* replaced, not merged (and not leaked) */
    CU_ASSERT_TRUE_FATAL(px_params_copy(&dst, &src));
    CU_ASSERT_EQUAL(dst.len, src.len);
    CU_ASSERT_EQUAL(dst.count, src.count);
    CU_ASSERT_EQUAL(dst.hash, src.hash);
    CU_ASSERT_PTR_NOT_EQUAL(dst.block, src.block);
    CU_ASSERT_EQUAL(memcmp(dst.block, src.block, src.len), 0);
    EXPECT_VALUE(&dst, "old", NULL);

    set_ok(&src, "a", "changed");
    EXPECT_VALUE(&dst, "a", "1");
    px_params_free(&src);
    EXPECT_VALUE(&dst, "b", "2");
    px_params_free(&dst);
}

static void test_copy_of_an_empty_set_empties_the_destination(void)
{
    px_params_t src = {0}, dst = {0};
    set_ok(&dst, "a", "1");
    CU_ASSERT_TRUE(px_params_copy(&dst, &src));
    CU_ASSERT_PTR_NULL(dst.block);
    CU_ASSERT_EQUAL(dst.count, 0);
    CU_ASSERT_EQUAL(dst.len, 0);
    CU_ASSERT_EQUAL(dst.hash, 0);
    px_params_free(&dst);
}

/* Regression: copy freed the destination first, so copying a set onto itself
 * emptied it. */
static void test_copy_onto_itself_keeps_the_set(void)
{
    px_params_t p = {0};
    set_ok(&p, "a", "1");
    uint64_t hash = p.hash;
    CU_ASSERT_TRUE(px_params_copy(&p, &p));
    EXPECT_VALUE(&p, "a", "1");
    CU_ASSERT_EQUAL(p.count, 1);
    CU_ASSERT_EQUAL(p.hash, hash);
    px_params_free(&p);
}

/* ======================= diff SQL ========================================== */

static void test_diff_of_equal_sets_is_an_empty_string(void)
{
    px_params_t a = {0}, b = {0};
    EXPECT_DIFF(&a, &b, "");
    set_ok(&a, "x", "1");
    set_ok(&a, "y", "2");
    set_ok(&b, "y", "2");
    set_ok(&b, "x", "1");
    EXPECT_DIFF(&a, &b, "");
    px_params_free(&a);
    px_params_free(&b);
}

static void test_diff_sets_changed_and_missing_names(void)
{
    px_params_t have = {0}, want = {0};
    set_ok(&have, "a", "1");
    set_ok(&have, "b", "2");
    set_ok(&want, "a", "1");
    set_ok(&want, "b", "3");
    set_ok(&want, "c", "4");
    EXPECT_DIFF(&have, &want,
                "SELECT pg_catalog.set_config('b', '3', false), "
                "pg_catalog.set_config('c', '4', false);");
    px_params_free(&have);
    px_params_free(&want);
}

static void test_diff_resets_names_only_in_have(void)
{
    px_params_t have = {0}, want = {0};
    set_ok(&have, "a", "1");
    set_ok(&have, "z", "9");
    set_ok(&have, "y", "8");
    set_ok(&want, "a", "1");
    EXPECT_DIFF(&have, &want, "RESET \"z\";RESET \"y\";");
    px_params_free(&have);
    EXPECT_DIFF(&want, &have, "RESET \"a\";");
    px_params_free(&want);
}

static void test_diff_sets_before_it_resets(void)
{
    px_params_t have = {0}, want = {0};
    set_ok(&have, "gone", "1");
    set_ok(&want, "new", "2");
    EXPECT_DIFF(&have, &want, "SELECT pg_catalog.set_config('new', '2', false);RESET \"gone\";");
    px_params_free(&have);
    px_params_free(&want);
}

static void test_diff_doubles_quotes_in_names_and_values(void)
{
    px_params_t have = {0}, want = {0};
    set_ok(&want, "application_name", "it's \"x\"");
    set_ok(&want, "my.o'k", "v");
    set_ok(&have, "we\"ird", "1");
    EXPECT_DIFF(&have, &want,
                "SELECT pg_catalog.set_config('application_name', 'it''s \"x\"', false), "
                "pg_catalog.set_config('my.o''k', 'v', false);"
                "RESET \"we\"\"ird\";");
    px_params_free(&have);
    px_params_free(&want);
}

/* Regression: '...' reads a backslash as an escape when the server runs with
 * standard_conforming_strings off, so a value ending in \ broke out of its
 * literal. E'...' with doubled backslashes reads the same either way. */
static void test_diff_writes_backslash_values_as_escape_strings(void)
{
    px_params_t have = {0}, want = {0};
    set_ok(&want, "application_name", "a\\b'\\");
    EXPECT_DIFF(&have, &want,
                "SELECT pg_catalog.set_config('application_name', E'a\\\\b''\\\\', false);");
    px_params_free(&want);
}

/* A startup value is the raw setting string: a list such as search_path
 * must reach the server whole, as set_config() takes it. */
static void test_diff_passes_list_values_whole(void)
{
    px_params_t have = {0}, want = {0};
    set_ok(&want, "search_path", "a,b, \"$user\"");
    EXPECT_DIFF(&have, &want,
                "SELECT pg_catalog.set_config('search_path', 'a,b, \"$user\"', false);");
    px_params_free(&want);
}

static void test_diff_returns_zero_and_empty_string_when_cap_is_too_small(void)
{
    px_params_t have = {0}, want = {0};
    set_ok(&have, "gone", "x");
    set_ok(&want, "application_name", "it's");
    set_ok(&want, "path", "a\\b");
    size_t need = 0;
    (void)diff(&have, &want, &need);
    CU_ASSERT_FATAL(need > 0);
    unsigned bad = 0;
    /* every cap up to the text's length has no room for its NUL */
    for (size_t cap = 1; cap <= need; cap++) {
        char *b = malloc(cap);
        CU_ASSERT_PTR_NOT_NULL_FATAL(b);
        memset(b, 'Z', cap);
        bool overflow = false;
        size_t n = px_params_diff_sql(&have, &want, b, cap, &overflow);
        if (n != 0 || b[0] != 0 || !overflow)
            bad++;
        free(b);
    }
    CU_ASSERT_EQUAL(bad, 0);
    /* and one more byte is enough */
    char *b = malloc(need + 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    bool overflow = true;
    CU_ASSERT_EQUAL(px_params_diff_sql(&have, &want, b, need + 1, &overflow), need);
    CU_ASSERT(!overflow);
    CU_ASSERT_EQUAL(strlen(b), need);
    free(b);
    px_params_free(&have);
    px_params_free(&want);
}

static void test_diff_with_zero_cap_writes_nothing(void)
{
    px_params_t have = {0}, want = {0};
    set_ok(&want, "a", "1");
    char b[1] = {'Z'};
    CU_ASSERT_EQUAL(px_params_diff_sql(&have, &want, b, 0, NULL), 0);
    CU_ASSERT_EQUAL(b[0], 'Z');
    px_params_free(&want);
}

/* ======================= startup options =================================== */

static void test_options_dash_c_space_name_value(void)
{
    px_params_t p = {0};
    CU_ASSERT_TRUE(parse(&p, "-c a=b"));
    EXPECT_VALUE(&p, "a", "b");
    CU_ASSERT_EQUAL(p.count, 1);
    px_params_free(&p);
}

static void test_options_dash_c_joined_to_name_value(void)
{
    px_params_t p = {0};
    CU_ASSERT_TRUE(parse(&p, "-ca=b"));
    EXPECT_VALUE(&p, "a", "b");
    px_params_free(&p);
}

static void test_options_double_dash_name_value(void)
{
    px_params_t p = {0};
    CU_ASSERT_TRUE(parse(&p, "--a=b"));
    EXPECT_VALUE(&p, "a", "b");
    px_params_free(&p);
}

static void test_options_dashes_in_names_become_underscores(void)
{
    px_params_t p = {0};
    CU_ASSERT_TRUE(parse(&p, "--a-b=c -c statement-timeout=5 --x=y-z"));
    EXPECT_VALUE(&p, "a_b", "c");
    EXPECT_VALUE(&p, "statement_timeout", "5");
    EXPECT_VALUE(&p, "x", "y-z"); /* values keep their dashes */
    EXPECT_VALUE(&p, "a-b", NULL);
    px_params_free(&p);
}

static void test_options_backslash_escapes_the_next_character(void)
{
    px_params_t p = {0};
    CU_ASSERT_TRUE(parse(&p, "-c search_path=a\\ b -c x=back\\\\slash --y=\\q"));
    EXPECT_VALUE(&p, "search_path", "a b");
    EXPECT_VALUE(&p, "x", "back\\slash");
    EXPECT_VALUE(&p, "y", "q");
    CU_ASSERT_EQUAL(p.count, 3);
    px_params_free(&p);
}

static void test_options_are_split_on_any_whitespace(void)
{
    px_params_t p = {0};
    CU_ASSERT_TRUE(parse(&p, "  -c a=1 \t --b=2\n-cc=3   -c\td=4  "));
    EXPECT_VALUE(&p, "a", "1");
    EXPECT_VALUE(&p, "b", "2");
    EXPECT_VALUE(&p, "c", "3");
    EXPECT_VALUE(&p, "d", "4");
    CU_ASSERT_EQUAL(p.count, 4);
    px_params_free(&p);
}

static void test_options_lowercase_names_and_later_ones_win(void)
{
    px_params_t p = {0};
    CU_ASSERT_TRUE(parse(&p, "-c DateStyle=ISO --datestyle=German"));
    EXPECT_VALUE(&p, "datestyle", "German");
    CU_ASSERT_EQUAL(p.count, 1);
    px_params_free(&p);
}

static void test_options_value_may_hold_equals_or_be_empty(void)
{
    px_params_t p = {0};
    CU_ASSERT_TRUE(parse(&p, "-c a=b=c --e="));
    EXPECT_VALUE(&p, "a", "b=c");
    EXPECT_VALUE(&p, "e", "");
    px_params_free(&p);
}

static void test_options_empty_or_blank_is_no_options(void)
{
    px_params_t p = {0};
    CU_ASSERT_TRUE(parse(&p, ""));
    CU_ASSERT_TRUE(parse(&p, "   \t "));
    CU_ASSERT_TRUE(px_params_parse_options(&p, NULL, 0));
    CU_ASSERT_EQUAL(p.count, 0);
    px_params_free(&p);
}

static void test_options_malformed_are_rejected(void)
{
    static const char *const bad[] = {
        "-x",   "-c",  "-c a=1 -c", "-c =b", "-c=b",  "a=b",       "--=b",
        "-c a", "--a", "-",         "--",    "-c -c", "-c a=1 -x", "-d 5",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        px_params_t p = {0};
        bool ok = parse(&p, bad[i]);
        char msg[100];
        snprintf(msg, sizeof(msg), "px_params_parse_options(\"%s\") accepted", bad[i]);
        CU_assertImplementation(!ok, __LINE__, msg, __FILE__, "", CU_FALSE);
        px_params_free(&p);
    }
}

static void test_options_longer_than_limits_are_rejected(void)
{
    px_params_t p = {0};
    char opts[5000];
    /* name of 64 characters */
    snprintf(opts, sizeof(opts), "--%064d=x", 0);
    CU_ASSERT_FALSE(parse(&p, opts));
    /* value of 4097 characters */
    memcpy(opts, "--a=", 4);
    memset(opts + 4, 'v', 4097);
    opts[4 + 4097] = 0;
    CU_ASSERT_FALSE(parse(&p, opts));
    /* token longer than the parser's buffer */
    memset(opts, 'v', sizeof(opts) - 1);
    memcpy(opts, "--a=", 4);
    opts[sizeof(opts) - 1] = 0;
    CU_ASSERT_FALSE(parse(&p, opts));
    px_params_free(&p);
}

static void test_options_read_only_the_given_length(void)
{
    px_params_t p = {0};
    const char *opts = "-c a=b -c";
    CU_ASSERT_TRUE(px_params_parse_options(&p, opts, 6));
    EXPECT_VALUE(&p, "a", "b");
    px_params_free(&p);
    /* exact-size heap copy: a read past len would fail under ASan */
    char *h = malloc(9);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    memcpy(h, "--a=b\\ c\\", 9);
    CU_ASSERT_TRUE(px_params_parse_options(&p, h, 9));
    EXPECT_VALUE(&p, "a", "b c\\"); /* a trailing backslash escapes nothing */
    free(h);
    px_params_free(&p);
}

/* Regression: a NUL inside a value was cut off by strlen and the rest of the
 * value silently dropped. */
static void test_options_with_nul_inside_a_value_are_rejected(void)
{
    px_params_t p = {0};
    CU_ASSERT_FALSE(px_params_parse_options(&p, "-c a=b\0c", 8));
    CU_ASSERT_FALSE(px_params_parse_options(&p, "-c a\0=b", 7));
    EXPECT_VALUE(&p, "a", NULL);
    px_params_free(&p);
}

/* ======================= tracked parameters ================================ */

static void test_startup_only_parameters_are_not_tracked(void)
{
    CU_ASSERT_FALSE(px_params_is_tracked("user"));
    CU_ASSERT_FALSE(px_params_is_tracked("database"));
    CU_ASSERT_FALSE(px_params_is_tracked("options"));
    CU_ASSERT_FALSE(px_params_is_tracked("replication"));
    CU_ASSERT_FALSE(px_params_is_tracked("_pq_.command_compression"));
    CU_ASSERT_FALSE(px_params_is_tracked("_pq_."));
}

static void test_settings_are_tracked(void)
{
    CU_ASSERT_TRUE(px_params_is_tracked("application_name"));
    CU_ASSERT_TRUE(px_params_is_tracked("client_encoding"));
    CU_ASSERT_TRUE(px_params_is_tracked("datestyle"));
    CU_ASSERT_TRUE(px_params_is_tracked("timezone"));
    CU_ASSERT_TRUE(px_params_is_tracked("search_path"));
    CU_ASSERT_TRUE(px_params_is_tracked("my.custom"));
    CU_ASSERT_TRUE(px_params_is_tracked("username")); /* not "user" */
    CU_ASSERT_TRUE(px_params_is_tracked("_pq"));
}

/* ======================= runner ============================================ */

typedef struct test_entry {
    const char *name;
    CU_TestFunc fn;
} test_entry_t;

#define T(fn)                                                                                      \
    {                                                                                              \
#fn, fn                                                                                    \
    }

static const test_entry_t set_tests[] = {
    T(test_set_then_get_returns_the_value),
    T(test_get_of_a_missing_name_is_null),
    T(test_set_lowercases_names_and_get_ignores_case),
    T(test_set_keeps_value_case),
    T(test_set_replaces_an_existing_name_in_any_case),
    T(test_block_is_name_nul_value_nul_pairs),
    T(test_set_uses_only_the_given_lengths),
    T(test_set_accepts_an_empty_value),
    T(test_set_rejects_bad_names_and_values_and_leaves_the_set_alone),
    T(test_hash_is_equal_for_equal_sets_in_any_order),
    T(test_hash_changes_with_a_value_or_a_name),
    T(test_free_empties_the_set_and_may_be_repeated),
    T(test_copy_is_equal_and_independent_of_the_source),
    T(test_copy_of_an_empty_set_empties_the_destination),
    T(test_copy_onto_itself_keeps_the_set),
};

static void test_diff_replays_client_sets_with_set_and_their_value_as_written(void)
{
    px_params_t have = {0}, want = {0};
    set_ok(&want, "\x01search_path", "\x01\"App\", public");
    set_ok(&want, "application_name", "web");
    set_ok(&have, "\x01myapp.tenant", "\x01'old'");
    EXPECT_DIFF(&have, &want,
                "SELECT pg_catalog.set_config('application_name', 'web', false);"
                "SET \"search_path\" = \"App\", public\n;"
                "RESET \"myapp.tenant\";");
    px_params_free(&have);
    px_params_free(&want);
}

static void test_diff_puts_a_startup_value_back_when_its_set_is_gone(void)
{
    px_params_t have = {0}, want = {0};
    set_ok(&have, "datestyle", "Postgres, MDY");
    set_ok(&have,
           "\x01"
           "datestyle",
           "\x01'ISO, YMD'");
    set_ok(&want, "datestyle", "Postgres, MDY");
    EXPECT_DIFF(&have, &want, "SELECT pg_catalog.set_config('datestyle', 'Postgres, MDY', false);");
    /* and a SET over a startup value wins over it */
    EXPECT_DIFF(&want, &have, "SET \"datestyle\" = 'ISO, YMD'\n;");
    px_params_free(&have);
    px_params_free(&want);
}

static void test_del_removes_a_name_and_keeps_the_hash_order_independent(void)
{
    px_params_t a = {0}, b = {0};
    set_ok(&a, "x", "1");
    set_ok(&a, "y", "2");
    set_ok(&a, "z", "3");
    set_ok(&b, "z", "3");
    set_ok(&b, "x", "1");
    CU_ASSERT_TRUE(px_params_del(&a, "Y"));
    CU_ASSERT_FALSE(px_params_del(&a, "y"));
    EXPECT_VALUE(&a, "y", NULL);
    EXPECT_VALUE(&a, "z", "3");
    CU_ASSERT_EQUAL(a.count, 2);
    CU_ASSERT_EQUAL(a.hash, b.hash);
    CU_ASSERT_TRUE(px_params_del(&a, "x"));
    CU_ASSERT_TRUE(px_params_del(&a, "z"));
    CU_ASSERT_EQUAL(a.count, 0);
    CU_ASSERT_PTR_NULL(a.block);
    px_params_free(&a);
    px_params_free(&b);
}

static const test_entry_t diff_tests[] = {
    T(test_diff_replays_client_sets_with_set_and_their_value_as_written),
    T(test_diff_puts_a_startup_value_back_when_its_set_is_gone),
    T(test_del_removes_a_name_and_keeps_the_hash_order_independent),
    T(test_diff_of_equal_sets_is_an_empty_string),
    T(test_diff_sets_changed_and_missing_names),
    T(test_diff_resets_names_only_in_have),
    T(test_diff_sets_before_it_resets),
    T(test_diff_doubles_quotes_in_names_and_values),
    T(test_diff_writes_backslash_values_as_escape_strings),
    T(test_diff_passes_list_values_whole),
    T(test_diff_returns_zero_and_empty_string_when_cap_is_too_small),
    T(test_diff_with_zero_cap_writes_nothing),
};

static const test_entry_t options_tests[] = {
    T(test_options_dash_c_space_name_value),
    T(test_options_dash_c_joined_to_name_value),
    T(test_options_double_dash_name_value),
    T(test_options_dashes_in_names_become_underscores),
    T(test_options_backslash_escapes_the_next_character),
    T(test_options_are_split_on_any_whitespace),
    T(test_options_lowercase_names_and_later_ones_win),
    T(test_options_value_may_hold_equals_or_be_empty),
    T(test_options_empty_or_blank_is_no_options),
    T(test_options_malformed_are_rejected),
    T(test_options_longer_than_limits_are_rejected),
    T(test_options_read_only_the_given_length),
    T(test_options_with_nul_inside_a_value_are_rejected),
};

static const test_entry_t tracked_tests[] = {
    T(test_startup_only_parameters_are_not_tracked),
    T(test_settings_are_tracked),
};

static bool add_suite(const char *name, const test_entry_t *tests, size_t n)
{
    CU_pSuite s = CU_add_suite(name, NULL, NULL);
    if (s == NULL)
        return false;
    for (size_t i = 0; i < n; i++)
        if (CU_add_test(s, tests[i].name, tests[i].fn) == NULL)
            return false;
    return true;
}

#define ADD_SUITE(name, arr) add_suite(name, arr, sizeof arr / sizeof arr[0])

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    if (!ADD_SUITE("params/set", set_tests) || !ADD_SUITE("params/diff", diff_tests) ||
        !ADD_SUITE("params/options", options_tests) ||
        !ADD_SUITE("params/tracked", tracked_tests)) {
        CU_cleanup_registry();
        return 2;
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
    CU_cleanup_registry();
    return failed == 0 ? 0 : 1;
}
