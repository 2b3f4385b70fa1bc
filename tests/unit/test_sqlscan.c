/*
 * Unit tests for proxy/sqlscan.c: which SQL texts leave session state on a
 * server connection (so a transaction-pooled client must be pinned), and
 * which do not. Every text is copied into a heap buffer of exactly its
 * length, with no terminating NUL, so under ASan any read past the end fails
 * the run. The last suite feeds truncations and random bytes the same way.
 *
 * Documented conservative answers (false positives by design, see the
 * comment at the top of sqlscan.c): set_config(..., true) is flagged like
 * set_config(..., false); CREATE TABLE t (temp int) and INSERT INTO temp ...
 * are flagged because "temp" follows CREATE / INTO.
 */
#include "sqlscan.h"

#include <CUnit/Basic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers --------------------------------------------------------------- */

/* Scan n bytes of p from an exact-size heap copy (no NUL after it). */
static const char *scan_n(const char *p, size_t n)
{
    char *b = malloc(n ? n : 1);
    if (b == NULL)
        return NULL;
    if (n)
        memcpy(b, p, n);
    const char *why = px_sqlscan_session_state(b, n);
    free(b);
    return why;
}

static const char *scan(const char *sql)
{
    return scan_n(sql, strlen(sql));
}

static void check(const char *sql, bool want_state, const char *want_reason, const char *file,
                  unsigned line)
{
    const char *why = scan(sql);
    bool ok = (why != NULL) == want_state;
    if (ok && want_reason != NULL)
        ok = strcmp(why, want_reason) == 0;
    char msg[512];
    snprintf(msg, sizeof(msg), "px_sqlscan_session_state(\"%s\") = %s%s%s, want %s", sql,
             why ? "\"" : "", why ? why : "NULL", why ? "\"" : "",
             want_reason ? want_reason : (want_state ? "a reason" : "NULL"));
    CU_assertImplementation(ok, line, msg, file, "", CU_FALSE);
}

#define EXPECT_STATE(sql)       check((sql), true, NULL, __FILE__, __LINE__)
#define EXPECT_REASON(sql, why) check((sql), true, (why), __FILE__, __LINE__)
#define EXPECT_NONE(sql)        check((sql), false, NULL, __FILE__, __LINE__)
#define N_OF(a)                 (sizeof(a) / sizeof((a)[0]))
#define EXPECT_ALL_STATE(arr)                                                                      \
    for (size_t i_ = 0; i_ < N_OF(arr); i_++)                                                      \
    check((arr)[i_], true, NULL, __FILE__, __LINE__)
#define EXPECT_ALL_NONE(arr)                                                                       \
    for (size_t i_ = 0; i_ < N_OF(arr); i_++)                                                      \
    check((arr)[i_], false, NULL, __FILE__, __LINE__)

/* ---- case tables (also the seeds of the fuzz suite) ------------------------ */

static const char *const session_set[] = {
    "SET x = 1",
    "SET SESSION x = 1",
    "SET SESSION x TO 1",
    "set search_path to a,b",
    "SeT SeArCh_PaTh To a, b",
    "SET search_path = \"$user\", public",
    "SET TIME ZONE 'UTC'",
    "SET ROLE someone",
    "SET SESSION AUTHORIZATION someone",
    "SET application_name = 'SET LOCAL'",
    "SET\nx\n=\n1",
    "SET/**/x=1",
};

static const char *const resets[] = {
    "RESET x", "RESET ALL", "reset all", "RESET search_path", "RESET ROLE",
};

static const char *const prepares[] = {
    "PREPARE p AS SELECT 1",
    "PREPARE p (int) AS SELECT $1",
    "prepare p as select 1",
};

static const char *const temp_tables[] = {
    "CREATE TEMP TABLE t (x int)",
    "CREATE TEMPORARY TABLE t (x int)",
    "CREATE GLOBAL TEMPORARY TABLE t (x int)",
    "CREATE LOCAL TEMP TABLE t (x int)",
    "create temp table t as select 1",
    "CREATE OR REPLACE TEMP VIEW v AS SELECT 1",
    "CREATE TEMP SEQUENCE s",
    "CREATE /* c */ TEMP TABLE t (x int)",
};

static const char *const select_into_temp[] = {
    "SELECT 1 AS x INTO TEMP t",
    "SELECT * INTO TEMPORARY TABLE t FROM src",
    "select a, b into temp t from src where a > 1",
    "SELECT * INTO /* c */ TEMP t FROM src",
};

static const char *const session_functions[] = {
    "SELECT pg_advisory_lock(1)",
    "SELECT pg_try_advisory_lock(1)",
    "SELECT pg_advisory_lock_shared(1)",
    "SELECT pg_try_advisory_lock_shared(1)",
    "SELECT PG_ADVISORY_LOCK(1)",
    "SELECT pg_advisory_lock (1)",
    "SELECT pg_advisory_lock /* c */ (1)",
    "SELECT pg_catalog.pg_advisory_lock(1)",
    "SELECT x FROM t WHERE pg_try_advisory_lock(t.id)",
    "SELECT set_config('a', 'b', false)",
    "SELECT * FROM set_config('a', 'b', false)",
    "SELECT pg_catalog.set_config('search_path', 'x', false)",
    "SELECT setseed(0.5)",
    "SELECT dblink_connect('c', 'dbname=x')",
};

static const char *const after_comments[] = {
    "-- x\nSET x = 1",
    "/* c */ SET x = 1",
    "/* c */SET x = 1",
    "/* a /* nested */ b */ SET x = 1",
    "-- one\n-- two\n/* three */\nSET x = 1",
    "--\nSET x = 1",
    "-- x\r\nSET x = 1",
};

static const char *const later_statements[] = {
    "SELECT 1; SET x=1",
    "SELECT 1; SELECT 2; SET x = 1",
    "SELECT 1;SET x=1",
    "BEGIN; SET x = 1; COMMIT",
    "SELECT 1; -- c\nLISTEN ch",
    "SELECT ';'; SET x = 1",
    "SELECT 1;;; RESET ALL",
    "SELECT $$;$$; PREPARE p AS SELECT 1",
    "SELECT 1; SELECT pg_advisory_lock(1)",
    "INSERT INTO t VALUES (1); CREATE TEMP TABLE u (x int)",
};

static const char *const leading_space[] = {
    "   SET x = 1",
    "\n\n\tSET x = 1",
    "\r\n \f\vSET x = 1",
};

static const char *const plain_queries[] = {
    "",
    "   ",
    ";",
    ";;;",
    "-- only a comment",
    "/* only a comment */",
    "SELECT 1",
    "select 1",
    "SELECT * FROM t WHERE a = 1",
    "BEGIN",
    "COMMIT",
    "ROLLBACK",
    "START TRANSACTION ISOLATION LEVEL SERIALIZABLE",
    "BEGIN; SELECT 1; COMMIT",
    "INSERT INTO t VALUES (1, 'x')",
    "UPDATE t SET a = 1 WHERE b = 2",
    "DELETE FROM t WHERE a = 1",
    "SHOW search_path",
    "NOTIFY ch, 'payload'",
    "UNLISTEN *",
    "CREATE TABLE t (x int)",
    "CREATE UNLOGGED TABLE t (x int)",
    "DECLARE c CURSOR FOR SELECT 1",
    "DECLARE c CURSOR WITHOUT HOLD FOR SELECT 1",
    "EXECUTE p(1)",
    "SELECT pg_notify('ch', 'x')",
    "SELECT * FROM pg_settings WHERE name = 'work_mem'",
    "SELECT $1, $2",
    "SELECT 1 -- SET x = 1",
};

static const char *const transaction_scoped_sets[] = {
    "SET LOCAL x = 1",
    "set local search_path to a",
    "SET LOCAL ROLE someone",
    "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE",
    "SET TRANSACTION READ ONLY",
    "SET CONSTRAINTS ALL DEFERRED",
    "SET CONSTRAINTS c1, c2 IMMEDIATE",
    "BEGIN; SET LOCAL x = 1; COMMIT",
    "/* c */ SET LOCAL x = 1",
};

static const char *const xact_locks[] = {
    "SELECT pg_advisory_xact_lock(1)",
    "SELECT pg_try_advisory_xact_lock(1)",
    "SELECT pg_advisory_xact_lock_shared(1)",
    "SELECT pg_advisory_unlock(1)",
    "SELECT pg_advisory_lock", /* a column, not a call */
};

static const char *const literals[] = {
    "SELECT 'SET x'",
    "SELECT 'a; SET x = 1'",
    "SELECT 'it''s; SET x = 1'",
    "SELECT 'pg_advisory_lock(1)'",
    "SELECT 'CREATE TEMP TABLE t'",
    "SELECT \"set\" FROM t",
    "SELECT \"a;SET x=1\" FROM t",
    "SELECT \"x\"\";SET y=1\" FROM t",
    "SELECT $$ SET $$",
    "SELECT $$; SET x = 1$$",
    "SELECT $tag$; SET x = 1 $$ ; SET y = 1 $tag$",
    "SELECT $a$ $b$ ; SET $b$ $a$",
    "SELECT E'\\' SET'",
    "SELECT E'\\'; SET x = 1'",
    "SELECT e'\\\\\\'; SET x = 1'",
    "SELECT U&'d\\0061t; SET'",
    "SELECT 1 /* ; SET x=1 */",
    "SELECT 1 /* a /* b */ ; SET x=1 */",
    "SELECT 1 -- ; SET x=1",
    "SELECT 1 -- ; SET x=1\n",
};

static const char *const prepare_transaction[] = {
    "PREPARE TRANSACTION 'x'",   "prepare transaction 'gid-1'", "PREPARE TRANSACTION E'x'",
    "PREPARE TRANSACTION $$x$$", "COMMIT PREPARED 'x'",         "ROLLBACK PREPARED 'x'",
};

static const char *const temp_columns[] = {
    "SELECT temp FROM weather",
    "SELECT city, temp FROM weather WHERE temp > 20",
    "SELECT w.temp, \"temp\" FROM weather w",
    "UPDATE weather SET temp = temp + 1",
    "SELECT temporary FROM t",
    "SELECT 1 INTO \"temp\"", /* a table named temp, quoted: not the keyword */
};

/* Regressions: each table below was scanned as "no state" before the fix. */

/* an identifier ending in e before a quote is not an E'' string */
static const char *const typed_literals[] = {
    "SELECT date'2020-01-01\\'; SET x = 1; --'",
    "SELECT some_type'\\'; SET x = 1; --'",
};

/* a -- comment ends at a carriage return too */
static const char *const cr_comments[] = {
    "SELECT 1 -- c\r; SET x = 1",
    "-- c\rSET x = 1",
};

/* custom settings whose prefix is a keyword of SET */
static const char *const keyword_prefixed_settings[] = {
    "SET local.x = 1",
    "SET transaction.x = 1",
    "SET constraints.x TO 1",
};

/* a prepared statement may be named "transaction" */
static const char *const statements_named_transaction[] = {
    "PREPARE transaction AS SELECT 1",
    "PREPARE transaction (int) AS SELECT $1",
    "PREPARE transaction(int) AS SELECT $1",
};

static const char *const quoted_function_names[] = {
    "SELECT \"pg_advisory_lock\"(1)",
    "SELECT pg_catalog.\"set_config\"('a', 'b', false)",
};

static const char *const temp_schema_objects[] = {
    "CREATE TABLE pg_temp.t (x int)",
    "CREATE TABLE \"pg_temp\".t (x int)",
    "CREATE FUNCTION pg_temp.f() RETURNS int LANGUAGE sql AS 'SELECT 1'",
    "SELECT 1 INTO pg_temp.t",
    "CREATE VIEW pg_temp_3.v AS SELECT 1",
};

/* UPDATE pg_settings runs set_config(name, setting, false) */
static const char *const pg_settings_updates[] = {
    "UPDATE pg_settings SET setting = 'x' WHERE name = 'application_name'",
    "UPDATE pg_catalog.pg_settings SET setting = '1' WHERE name = 'x'",
    "WITH u AS (UPDATE pg_settings SET setting = '1' WHERE name = 'x' RETURNING 1) SELECT 1",
};

static const char *const explained_temp_tables[] = {
    "EXPLAIN ANALYZE CREATE TEMP TABLE t AS SELECT 1",
    "EXPLAIN (ANALYZE) SELECT 1 INTO TEMP t",
};

static const char *const session_do_blocks[] = {
    "DO $$ BEGIN PERFORM set_config('a', 'b', false); END $$",
    "DO $$BEGIN SET x = 1; END$$",
    "DO $$ BEGIN EXECUTE 'LISTEN ch'; END $$",
    "DO 'BEGIN EXECUTE ''RESET ALL''; END'",
    "DO LANGUAGE plpgsql $b$ BEGIN CREATE TEMP TABLE t (x int); END $b$",
    "do $$ begin perform pg_advisory_lock(1); end $$",
    "DO E'BEGIN PERFORM \\163et_config(''a'', ''b'', false); END'", /* \163 is s */
};

/* with standard_conforming_strings = off, '\'' is one quote, so SET runs */
static const char *const backslash_quotes[] = {
    "SELECT '\\''; SET x = 1; --'",
    "SELECT 'a\\'b'; SET x = 1; --'",
};

static const char *const harmless_do_blocks[] = {
    "DO $$ BEGIN RAISE NOTICE 'e2e notice %', 42; RAISE WARNING 'e2e warning'; END $$",
    "DO $$ BEGIN INSERT INTO t VALUES (1); END $$",
    "DO $$ DECLARE r record; BEGIN FOR r IN SELECT 1 LOOP NULL; END LOOP; END $$",
};

/* ======================= session state ===================================== */

static void test_session_set_is_state(void)
{
    EXPECT_ALL_STATE(session_set);
    EXPECT_REASON("SET x = 1", "SET");
}

static void test_set_session_characteristics_is_state(void)
{
    EXPECT_REASON("SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL SERIALIZABLE",
                  "SET SESSION CHARACTERISTICS");
}

static void test_reset_is_state(void)
{
    EXPECT_ALL_STATE(resets);
    EXPECT_REASON("RESET ALL", "RESET");
}

static void test_prepare_is_state(void)
{
    EXPECT_ALL_STATE(prepares);
    EXPECT_REASON("PREPARE p AS SELECT 1", "PREPARE");
}

static void test_listen_load_discard_are_state(void)
{
    EXPECT_REASON("LISTEN ch", "LISTEN");
    EXPECT_REASON("listen \"Ch\"", "LISTEN");
    EXPECT_REASON("LOAD 'x'", "LOAD");
    EXPECT_REASON("DISCARD ALL", "DISCARD");
    /* these only drop what the client's own transactions could leave */
    EXPECT_NONE("discard plans");
    EXPECT_NONE("DISCARD SEQUENCES");
    EXPECT_NONE("discard temp");
    EXPECT_NONE("DISCARD TEMPORARY");
}

static void test_declare_with_hold_is_state(void)
{
    EXPECT_REASON("DECLARE c CURSOR WITH HOLD FOR SELECT 1", "DECLARE ... WITH HOLD");
    EXPECT_STATE("declare c no scroll cursor with hold for select 1");
    EXPECT_STATE("DECLARE c CURSOR WITH /* c */ HOLD FOR SELECT 1");
    EXPECT_STATE("DECLARE \"c\" BINARY CURSOR WITH HOLD FOR SELECT 1");
}

static void test_declare_without_hold_is_not_state(void)
{
    EXPECT_NONE("DECLARE c CURSOR FOR SELECT 1");
    EXPECT_NONE("DECLARE c CURSOR WITHOUT HOLD FOR SELECT 1");
    EXPECT_NONE("SELECT 1 WITH hold"); /* not a DECLARE */
}

static void test_create_temp_table_forms_are_state(void)
{
    EXPECT_ALL_STATE(temp_tables);
    EXPECT_REASON("CREATE TEMP TABLE t (x int)", "temporary table");
}

static void test_select_into_temp_is_state(void)
{
    EXPECT_ALL_STATE(select_into_temp);
}

static void test_session_level_functions_are_state(void)
{
    EXPECT_ALL_STATE(session_functions);
    EXPECT_REASON("SELECT pg_advisory_lock(1)", "session-level function");
}

/* set_config's third argument (is_local) is not read: a transaction-local
 * set_config is flagged too. Conservative, documented behaviour. */
static void test_set_config_is_local_is_flagged_conservatively(void)
{
    EXPECT_REASON("SELECT set_config('a', 'b', true)", "session-level function");
}

static void test_statement_after_leading_comment_is_seen(void)
{
    EXPECT_ALL_STATE(after_comments);
}

static void test_state_in_a_later_statement_is_seen(void)
{
    EXPECT_ALL_STATE(later_statements);
}

static void test_leading_whitespace_is_skipped(void)
{
    EXPECT_ALL_STATE(leading_space);
}

static void test_nested_comment_hides_only_its_content(void)
{
    EXPECT_NONE("/* a /* b */ ; SET x = 1 */ SELECT 1");
    EXPECT_STATE("/* a /* b */ c */ SET x = 1");
    EXPECT_STATE("/* a /* b /* c */ d */ e */ SET x = 1");
    EXPECT_NONE("/* unterminated /* SET x = 1 */");
}

/* ======================= not session state ================================= */

static void test_plain_queries_are_not_state(void)
{
    EXPECT_ALL_NONE(plain_queries);
}

static void test_transaction_scoped_set_is_not_state(void)
{
    EXPECT_ALL_NONE(transaction_scoped_sets);
}

static void test_transaction_advisory_lock_is_not_state(void)
{
    EXPECT_ALL_NONE(xact_locks);
}

static void test_literals_identifiers_and_comments_hide_keywords(void)
{
    EXPECT_ALL_NONE(literals);
}

static void test_escape_string_ends_after_escaped_backslash(void)
{
    /* E'\\' is one backslash; the SET after it is real */
    EXPECT_STATE("SELECT E'\\\\'; SET x = 1");
    EXPECT_STATE("SELECT e'\\\\'; SET x = 1");
}

static void test_positional_parameter_is_not_a_dollar_quote(void)
{
    EXPECT_NONE("SELECT $1, $2");
    EXPECT_STATE("SELECT $1; SET x = 1");
    EXPECT_STATE("SELECT $1 ; SET x = 1 ; SELECT $1");
}

static void test_identifier_with_dollar_is_not_a_dollar_quote(void)
{
    EXPECT_STATE("SELECT a$b$ FROM t; SET x = 1");
}

static void test_prepare_transaction_is_not_state(void)
{
    EXPECT_ALL_NONE(prepare_transaction);
}

static void test_column_named_temp_is_not_state(void)
{
    EXPECT_ALL_NONE(temp_columns);
}

/* "temp" after CREATE or INTO is taken as the keyword even where it is a
 * name; these pin the client needlessly but never leak state. */
static void test_temp_named_columns_in_create_or_into_are_conservative_false_positives(void)
{
    EXPECT_STATE("CREATE TABLE t (temp int)");
    EXPECT_STATE("CREATE VIEW v AS SELECT temp FROM weather");
    EXPECT_STATE("INSERT INTO temp VALUES (1)");
}

static void test_do_block_without_session_words_is_not_state(void)
{
    EXPECT_ALL_NONE(harmless_do_blocks);
}

/* ======================= regressions ======================================= */

static void test_identifier_ending_in_e_does_not_start_an_escape_string(void)
{
    EXPECT_ALL_STATE(typed_literals);
}

static void test_line_comment_ends_at_carriage_return(void)
{
    EXPECT_ALL_STATE(cr_comments);
}

static void test_set_of_setting_prefixed_local_transaction_or_constraints_is_state(void)
{
    EXPECT_ALL_STATE(keyword_prefixed_settings);
    EXPECT_REASON("SET local.x = 1", "SET");
}

static void test_prepare_of_statement_named_transaction_is_state(void)
{
    EXPECT_ALL_STATE(statements_named_transaction);
    EXPECT_REASON("PREPARE transaction AS SELECT 1", "PREPARE");
}

static void test_quoted_session_function_name_is_state(void)
{
    EXPECT_ALL_STATE(quoted_function_names);
    /* a quoted name keeps its case: this is some other function */
    EXPECT_NONE("SELECT \"PG_ADVISORY_LOCK\"(1)");
}

static void test_object_in_temporary_schema_is_state(void)
{
    EXPECT_ALL_STATE(temp_schema_objects);
    EXPECT_REASON("CREATE TABLE pg_temp.t (x int)", "temporary schema object");
    EXPECT_NONE("SELECT * FROM pg_temporary.t"); /* not the temp schema */
}

static void test_update_of_pg_settings_is_state(void)
{
    EXPECT_ALL_STATE(pg_settings_updates);
    EXPECT_REASON("UPDATE pg_settings SET setting = '1' WHERE name = 'x'", "UPDATE pg_settings");
}

static void test_temp_table_created_under_explain_is_state(void)
{
    EXPECT_ALL_STATE(explained_temp_tables);
}

static void test_do_block_with_session_words_is_state(void)
{
    EXPECT_ALL_STATE(session_do_blocks);
    EXPECT_REASON("DO $$ BEGIN SET x = 1; END $$", "DO block");
}

static void test_backslash_quote_read_as_with_standard_strings_off_is_state(void)
{
    EXPECT_ALL_STATE(backslash_quotes);
}

static void test_setseed_is_state(void)
{
    EXPECT_REASON("SELECT setseed(0.5)", "session-level function");
}

static void test_set_local_of_keyword_prefixed_setting_is_not_state(void)
{
    EXPECT_NONE("SET LOCAL local.x = 1");
    EXPECT_NONE("SET LOCAL transaction.x = 1");
}

static void test_length_bounds_the_scan_not_a_nul(void)
{
    /* only the first 8 bytes are the statement */
    EXPECT_NONE("");
    CU_ASSERT_PTR_NULL(px_sqlscan_session_state("SELECT 1; SET x = 1", 8));
    CU_ASSERT_PTR_NOT_NULL(px_sqlscan_session_state("SET x\0garbage", 5));
    CU_ASSERT_PTR_NULL(px_sqlscan_session_state("SELECT 1\0; SET x = 1", 9));
    CU_ASSERT_PTR_NULL(px_sqlscan_session_state(NULL, 0));
}

/* ======================= bounds (fuzz) ===================================== */

static const char *const *const all_tables[] = {
    session_set,
    resets,
    prepares,
    temp_tables,
    select_into_temp,
    session_functions,
    after_comments,
    later_statements,
    leading_space,
    plain_queries,
    transaction_scoped_sets,
    xact_locks,
    literals,
    prepare_transaction,
    temp_columns,
    typed_literals,
    cr_comments,
    keyword_prefixed_settings,
    statements_named_transaction,
    quoted_function_names,
    temp_schema_objects,
    pg_settings_updates,
    explained_temp_tables,
    session_do_blocks,
    backslash_quotes,
    harmless_do_blocks,
};

static const size_t all_sizes[] = {
    N_OF(session_set),
    N_OF(resets),
    N_OF(prepares),
    N_OF(temp_tables),
    N_OF(select_into_temp),
    N_OF(session_functions),
    N_OF(after_comments),
    N_OF(later_statements),
    N_OF(leading_space),
    N_OF(plain_queries),
    N_OF(transaction_scoped_sets),
    N_OF(xact_locks),
    N_OF(literals),
    N_OF(prepare_transaction),
    N_OF(temp_columns),
    N_OF(typed_literals),
    N_OF(cr_comments),
    N_OF(keyword_prefixed_settings),
    N_OF(statements_named_transaction),
    N_OF(quoted_function_names),
    N_OF(temp_schema_objects),
    N_OF(pg_settings_updates),
    N_OF(explained_temp_tables),
    N_OF(session_do_blocks),
    N_OF(backslash_quotes),
    N_OF(harmless_do_blocks),
};

/* A reason is a short, non-empty, printable static string. */
static bool reason_ok(const char *why)
{
    if (why == NULL)
        return true;
    size_t n = strlen(why);
    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++)
        if (why[i] < 0x20 || why[i] > 0x7e)
            return false;
    return true;
}

static void test_every_prefix_and_suffix_of_every_case_stays_in_bounds(void)
{
    unsigned bad = 0, scans = 0;
    for (size_t t = 0; t < N_OF(all_tables); t++) {
        for (size_t k = 0; k < all_sizes[t]; k++) {
            const char *sql = all_tables[t][k];
            size_t n = strlen(sql);
            for (size_t cut = 0; cut <= n; cut++) {
                if (!reason_ok(scan_n(sql, cut)))
                    bad++;
                if (!reason_ok(scan_n(sql + cut, n - cut)))
                    bad++;
                scans += 2;
            }
        }
    }
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT(scans > 1000);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint32_t rng(void)
{
    /* xorshift64*: fixed seed, so a failure reproduces */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 2685821657736338717ULL) >> 32);
}

static void test_random_bytes_stay_in_bounds_and_are_deterministic(void)
{
    /* half the bytes from the characters the lexer cares about */
    static const char special[] = "'\"$-/*;\\eEuU&\n\r \t(.:_0123456789";
    static const char *const words[] = {
        "SET ", "LOCAL ",   "CREATE ", "TEMP ", "INTO ", "DO ",   "$$",      "$a$",
        "E'",   "--",       "/*",      "*/",    "WITH ", "HOLD ", "pg_temp", "pg_advisory_lock(",
        "\"",   "PREPARE ",
    };
    unsigned bad = 0;
    char buf[96];
    for (int iter = 0; iter < 30000; iter++) {
        size_t n = rng() % sizeof(buf);
        size_t k = 0;
        while (k < n) {
            uint32_t r = rng() % 8;
            if (r < 3) {
                buf[k++] = (char)(rng() & 0xff);
            } else if (r < 7) {
                buf[k++] = special[rng() % (sizeof(special) - 1)];
            } else {
                const char *w = words[rng() % N_OF(words)];
                for (; *w && k < n; w++)
                    buf[k++] = *w;
            }
        }
        const char *a = scan_n(buf, n);
        const char *b = scan_n(buf, n);
        if (!reason_ok(a) || a != b)
            bad++;
    }
    CU_ASSERT_EQUAL(bad, 0);
}

static void test_unterminated_tokens_at_the_end_stay_in_bounds(void)
{
    static const char *const ends[] = {
        "'",
        "\"",
        "$",
        "$$",
        "$a",
        "$a$",
        "E'",
        "E'\\",
        "e'\\",
        "--",
        "/*",
        "/* /*",
        "-",
        "/",
        "SELECT E'\\",
        "SELECT $a$ x $a",
        "SELECT \"x\"\"",
        "SELECT 'x''",
        "SET",
        "SET LOCAL",
        "PREPARE transaction",
        "DO $$",
        "DO 'x",
        "DO E'\\",
        "SELECT pg_advisory_lock",
        "SELECT \"pg_advisory_lock\"",
    };
    unsigned bad = 0;
    for (size_t i = 0; i < N_OF(ends); i++)
        if (!reason_ok(scan(ends[i])))
            bad++;
    CU_ASSERT_EQUAL(bad, 0);
}

/* The quick pass may only rule out texts the full scan finds nothing in. */
static void test_quick_pass_never_hides_what_the_full_scan_finds(void)
{
    unsigned hidden = 0, flagged = 0;
    for (size_t t = 0; t < N_OF(all_tables); t++) {
        for (size_t k = 0; k < all_sizes[t]; k++) {
            const char *sql = all_tables[t][k];
            size_t n = strlen(sql);
            for (size_t cut = 0; cut <= n; cut++) {
                const char *parts[2][2] = {{sql, sql + cut}, {sql + cut, sql + n}};
                for (int j = 0; j < 2; j++) {
                    size_t len = (size_t)(parts[j][1] - parts[j][0]);
                    if (px_sqlscan_session_state_full(parts[j][0], len) ||
                        px_sqlscan_drops_statements(parts[j][0], len)) {
                        flagged++;
                        if (!px_sqlscan_may_matter(parts[j][0], len))
                            hidden++;
                    }
                }
            }
        }
    }
    static const char *const words[] = {
        "SET ",        "set",
        "ReSeT ",      "LOCAL ",
        "CREATE ",     "TEMP ",
        "tEmPoRaRy ",  "INTO ",
        "DO ",         "$$",
        "$a$",         "E'",
        "--",          "/*",
        "*/",          "WITH ",
        "HOLD ",       "pg_temp_12.",
        "PREPARE ",    "LISTEN ",
        "LOAD ",       "DISCARD ",
        "EXECUTE ",    "OFFSET ",
        "offset",      "UPDATE ",
        "pg_settings", "\"",
        "\\",          "set_config(",
        "SETSEED(",    "dblink_connect_u(",
        "LO_OPEN(",    "pg_try_advisory_lock_shared(",
        ";",           "DECLARE ",
        "SELECT ",     "(",
        "'",           " ",
    };
    for (int iter = 0; iter < 60000; iter++) {
        char buf[128];
        size_t n = rng() % sizeof(buf), k = 0;
        while (k < n) {
            if (rng() % 6 == 0) {
                buf[k++] = (char)(rng() & 0xff);
                continue;
            }
            for (const char *w = words[rng() % N_OF(words)]; *w && k < n; w++)
                buf[k++] = *w;
        }
        if (px_sqlscan_session_state_full(buf, n) || px_sqlscan_drops_statements(buf, n)) {
            flagged++;
            if (!px_sqlscan_may_matter(buf, n))
                hidden++;
        }
    }
    /* one minimal text per answer the full scan gives, each needle alone */
    static const char *const minimal[] = {
        "SET x = 1",
        "reset x",
        "PREPARE p AS SELECT 1",
        "LISTEN c",
        "LOAD 'x'",
        "DECLARE c CURSOR WITH HOLD FOR SELECT 1",
        "CREATE TEMP TABLE t ()",
        "CREATE TEMPORARY TABLE t ()",
        "SELECT 1 INTO TEMP t",
        "SELECT * FROM pg_temp.t",
        "SELECT * FROM pg_temp_3.t",
        "UPDATE pg_settings SET setting = 1",
        "SELECT pg_advisory_lock(1)",
        "SELECT pg_try_advisory_lock_shared(1)",
        "SELECT set_config('a.b', 'c', false)",
        "SELECT setseed(0.5)",
        "SELECT dblink_connect('x')",
        "SELECT lo_open(1, 2)",
        "DO $$ BEGIN EXECUTE 'x'; END $$",
        "DO $$ BEGIN PERFORM 1 FROM hold; END $$",
        "DO E'\\123'",
        "DO 'x' ",
        "DEALLOCATE p",
        "deallocate prepare all",
        "DISCARD ALL",
    };
    for (size_t i = 0; i < N_OF(minimal); i++) {
        const char *sql = minimal[i];
        if (px_sqlscan_session_state_full(sql, strlen(sql)) ||
            px_sqlscan_drops_statements(sql, strlen(sql))) {
            flagged++;
            if (!px_sqlscan_may_matter(sql, strlen(sql)))
                hidden++;
        }
    }
    CU_ASSERT_EQUAL(hidden, 0);
    CU_ASSERT(flagged > 5000);
}

static void test_only_deallocate_all_and_discard_all_drop_every_statement(void)
{
    static const char *const all[] = {
        "DEALLOCATE ALL",
        "deallocate prepare all;",
        "SELECT 1; DEALLOCATE ALL",
        "discard  all",
        "BEGIN; SELECT 2; DISCARD ALL; COMMIT",
    };
    static const char *const some[] = {
        "DEALLOCATE p",  "SELECT 2; DEALLOCATE wq1", "DEALLOCATE PREPARE \"all\"",
        "DISCARD PLANS", "SELECT 'DEALLOCATE ALL'",  "DEALLOCATE allx",
    };
    for (size_t i = 0; i < N_OF(all); i++)
        CU_ASSERT(px_sqlscan_drops_all_statements(all[i], strlen(all[i])));
    for (size_t i = 0; i < N_OF(some); i++)
        CU_ASSERT(!px_sqlscan_drops_all_statements(some[i], strlen(some[i])));
}

static void test_quick_pass_rules_out_ordinary_queries(void)
{
    static const char *const plain[] = {
        "SELECT abalance FROM pgbench_accounts WHERE aid = 48213;",
        "UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid = 3",
        "select * from orders order by id limit 10 offset 20",
        "INSERT INTO t (a, b) VALUES ($1, $2) RETURNING id",
        "BEGIN",
        "COMMIT",
    };
    CU_ASSERT_FALSE(px_sqlscan_may_matter(plain[0], strlen(plain[0])));
    CU_ASSERT_FALSE(px_sqlscan_may_matter(plain[2], strlen(plain[2])));
    CU_ASSERT_FALSE(px_sqlscan_may_matter(plain[3], strlen(plain[3])));
    CU_ASSERT_FALSE(px_sqlscan_may_matter(plain[4], strlen(plain[4])));
    CU_ASSERT_FALSE(px_sqlscan_may_matter(plain[5], strlen(plain[5])));
    /* "SET" of an UPDATE is a needle: the full scan decides (and finds nothing) */
    CU_ASSERT_TRUE(px_sqlscan_may_matter(plain[1], strlen(plain[1])));
    CU_ASSERT_PTR_NULL(px_sqlscan_session_state(plain[1], strlen(plain[1])));
}

static void test_quick_pass_remembers_each_text_exactly(void)
{
    /* same lengths, one letter apart, many more texts than remembered slots,
     * asked again and again: every answer must be the text's own */
    unsigned wrong = 0;
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 2000; i++) {
            char a[64], b[64];
            int na = snprintf(a, sizeof(a), "SELECT hold_%04d FROM t", i);
            int nb = snprintf(b, sizeof(b), "SELECT hole_%04d FROM t", i);
            if (!px_sqlscan_may_matter_remembered(a, (size_t)na))
                wrong++;
            if (px_sqlscan_may_matter_remembered(b, (size_t)nb))
                wrong++;
            /* a prefix of a remembered text is another text */
            if (px_sqlscan_may_matter_remembered(a, 10))
                wrong++;
        }
    }
    CU_ASSERT_EQUAL(wrong, 0);
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

static const test_entry_t state_tests[] = {
    T(test_session_set_is_state),
    T(test_set_session_characteristics_is_state),
    T(test_reset_is_state),
    T(test_prepare_is_state),
    T(test_listen_load_discard_are_state),
    T(test_declare_with_hold_is_state),
    T(test_create_temp_table_forms_are_state),
    T(test_select_into_temp_is_state),
    T(test_session_level_functions_are_state),
    T(test_set_config_is_local_is_flagged_conservatively),
    T(test_statement_after_leading_comment_is_seen),
    T(test_state_in_a_later_statement_is_seen),
    T(test_leading_whitespace_is_skipped),
    T(test_nested_comment_hides_only_its_content),
    T(test_escape_string_ends_after_escaped_backslash),
    T(test_positional_parameter_is_not_a_dollar_quote),
    T(test_identifier_with_dollar_is_not_a_dollar_quote),
    T(test_temp_named_columns_in_create_or_into_are_conservative_false_positives),
};

static const test_entry_t no_state_tests[] = {
    T(test_plain_queries_are_not_state),
    T(test_transaction_scoped_set_is_not_state),
    T(test_transaction_advisory_lock_is_not_state),
    T(test_literals_identifiers_and_comments_hide_keywords),
    T(test_declare_without_hold_is_not_state),
    T(test_prepare_transaction_is_not_state),
    T(test_column_named_temp_is_not_state),
    T(test_do_block_without_session_words_is_not_state),
    T(test_set_local_of_keyword_prefixed_setting_is_not_state),
};

static const test_entry_t regression_tests[] = {
    T(test_identifier_ending_in_e_does_not_start_an_escape_string),
    T(test_line_comment_ends_at_carriage_return),
    T(test_set_of_setting_prefixed_local_transaction_or_constraints_is_state),
    T(test_prepare_of_statement_named_transaction_is_state),
    T(test_quoted_session_function_name_is_state),
    T(test_object_in_temporary_schema_is_state),
    T(test_update_of_pg_settings_is_state),
    T(test_temp_table_created_under_explain_is_state),
    T(test_do_block_with_session_words_is_state),
    T(test_backslash_quote_read_as_with_standard_strings_off_is_state),
    T(test_setseed_is_state),
    T(test_length_bounds_the_scan_not_a_nul),
};

static const test_entry_t quick_pass_tests[] = {
    T(test_quick_pass_never_hides_what_the_full_scan_finds),
    T(test_quick_pass_rules_out_ordinary_queries),
    T(test_only_deallocate_all_and_discard_all_drop_every_statement),
    T(test_quick_pass_remembers_each_text_exactly),
};

static const test_entry_t bounds_tests[] = {
    T(test_every_prefix_and_suffix_of_every_case_stays_in_bounds),
    T(test_random_bytes_stay_in_bounds_and_are_deterministic),
    T(test_unterminated_tokens_at_the_end_stay_in_bounds),
};

/* ---- replayable SET statements ----------------------------------------------------- */

static void expect_set(const char *sql, px_set_kind_t kind, const char *name, const char *value,
                       unsigned line)
{
    px_set_stmt_t st;
    bool ok = px_sqlscan_parse_set(sql, strlen(sql), &st);
    char msg[400];
    snprintf(msg, sizeof(msg), "%s: got ok=%d kind=%d name=%s value=%.*s", sql, ok, st.kind,
             st.name, (int)st.value_len, st.value ? st.value : "");
    bool good = ok && st.kind == kind && strcmp(st.name, name ? name : "") == 0 &&
                (value ? st.value && st.value_len == strlen(value) &&
                             memcmp(st.value, value, st.value_len) == 0
                       : st.value == NULL);
    CU_assertImplementation(good, line, msg, __FILE__, "", CU_FALSE);
}

static void expect_no_set(const char *sql, unsigned line)
{
    px_set_stmt_t st;
    bool ok = px_sqlscan_parse_set(sql, strlen(sql), &st);
    char msg[300];
    snprintf(msg, sizeof(msg), "%s: should not be replayable", sql);
    CU_assertImplementation(!ok, line, msg, __FILE__, "", CU_FALSE);
}

#define EXPECT_SET(sql, k, n, v) expect_set((sql), (k), (n), (v), __LINE__)
#define EXPECT_NO_SET(sql)       expect_no_set((sql), __LINE__)

static void test_session_sets_are_replayable_with_their_value_as_written(void)
{
    EXPECT_SET("SET search_path = app, public", PX_SET_VALUE, "search_path", "app, public");
    EXPECT_SET("set search_path to \"MyApp\", public;", PX_SET_VALUE, "search_path",
               "\"MyApp\", public");
    EXPECT_SET("  /* c */ SET SESSION statement_timeout = '5s' ; ", PX_SET_VALUE,
               "statement_timeout", "'5s'");
    EXPECT_SET("SET work_mem TO 65536", PX_SET_VALUE, "work_mem", "65536");
    EXPECT_SET("SET myapp.tenant = 'acme'", PX_SET_VALUE, "myapp.tenant", "'acme'");
    EXPECT_SET("SET \"DateStyle\" = 'ISO, DMY'", PX_SET_VALUE, "datestyle", "'ISO, DMY'");
    EXPECT_SET("SET extra_float_digits = -3", PX_SET_VALUE, "extra_float_digits", "-3");
    EXPECT_SET("SET TIME ZONE 'Europe/Paris'", PX_SET_VALUE, "timezone", "'Europe/Paris'");
    EXPECT_SET("SET SCHEMA 'app'", PX_SET_VALUE, "search_path", "'app'");
    EXPECT_SET("SET x.y = 'it''s'", PX_SET_VALUE, "x.y", "'it''s'");
    EXPECT_SET("SET search_path = /* before */ a", PX_SET_VALUE, "search_path", "a");
}

static void test_resets_and_defaults_are_replayable(void)
{
    EXPECT_SET("RESET search_path", PX_SET_RESET, "search_path", NULL);
    EXPECT_SET("reset \"TimeZone\";", PX_SET_RESET, "timezone", NULL);
    EXPECT_SET("RESET TIME ZONE", PX_SET_RESET, "timezone", NULL);
    EXPECT_SET("reset time  zone ;", PX_SET_RESET, "timezone", NULL);
    EXPECT_SET("SET \"DateStyle\" = 'ISO'", PX_SET_VALUE, "datestyle", "'ISO'");
    EXPECT_SET("SET work_mem TO DEFAULT", PX_SET_RESET, "work_mem", NULL);
    EXPECT_SET("SET TIME ZONE LOCAL", PX_SET_RESET, "timezone", NULL);
    EXPECT_SET("RESET ALL", PX_SET_RESET_ALL, "", NULL);
    EXPECT_SET("reset all;", PX_SET_RESET_ALL, "", NULL);
}

static void test_sets_the_proxy_cannot_carry_are_refused(void)
{
    EXPECT_NO_SET("SET LOCAL search_path = x");
    EXPECT_NO_SET("SET ROLE admin");
    EXPECT_NO_SET("SET SESSION AUTHORIZATION bob");
    EXPECT_NO_SET("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY");
    EXPECT_NO_SET("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE");
    EXPECT_NO_SET("SET transaction_read_only = on");
    EXPECT_NO_SET("SET CONSTRAINTS ALL DEFERRED");
    EXPECT_NO_SET("SET NAMES 'UTF8'");
    EXPECT_NO_SET("SET TIME ZONE INTERVAL '+02:00' HOUR TO MINUTE");
    EXPECT_NO_SET("SET search_path = a; SELECT 1");
    EXPECT_NO_SET("SET search_path = a -- why");
    EXPECT_NO_SET("SET search_path = a /* x */, b");
    EXPECT_NO_SET("SET x.y = E'a\\'b'");
    EXPECT_NO_SET("SET x.y = 'a\\'");
    EXPECT_NO_SET("SET x.y = $$a$$");
    EXPECT_NO_SET("SET search_path =");
    EXPECT_NO_SET("SET search_path = 'unterminated");
    EXPECT_NO_SET("RESET ROLE");
    EXPECT_NO_SET("RESET SESSION AUTHORIZATION");
    EXPECT_NO_SET("RESET x; SELECT 1");
    EXPECT_NO_SET("SELECT set_config('a.b', 'c', false)");
    EXPECT_NO_SET("SETTINGS");
}

static const test_entry_t set_tests[] = {
    T(test_session_sets_are_replayable_with_their_value_as_written),
    T(test_resets_and_defaults_are_replayable),
    T(test_sets_the_proxy_cannot_carry_are_refused),
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
    if (!ADD_SUITE("sqlscan/state", state_tests) ||
        !ADD_SUITE("sqlscan/no_state", no_state_tests) ||
        !ADD_SUITE("sqlscan/regressions", regression_tests) ||
        !ADD_SUITE("sqlscan/bounds", bounds_tests) || !ADD_SUITE("sqlscan/set", set_tests) ||
        !ADD_SUITE("sqlscan/quick_pass", quick_pass_tests)) {
        CU_cleanup_registry();
        return 2;
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
    CU_cleanup_registry();
    return failed == 0 ? 0 : 1;
}
