/*
 * Unit tests for proxy/digest.c: which texts share a fingerprint (literals,
 * parameters, whitespace, comments, case and IN-list lengths do not matter;
 * anything else does), the normalised text shown on the admin port, the
 * statistics kept per digest (calls, errors, rows, routes, total / mean /
 * min / max and the histogram's p95), the bound on the number of digests
 * (the lightest by total time go first), and two threads recording at once.
 *
 * Texts are handed over as exact-size heap copies with no terminating NUL,
 * so under ASan any read past the end fails the run.
 */
#include "px_digest.h"

#include <CUnit/Basic.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers --------------------------------------------------------------- */

static uint64_t fp_n(const char *p, size_t n)
{
    char *b = malloc(n ? n : 1);
    if (b == NULL)
        return 0;
    if (n)
        memcpy(b, p, n);
    uint64_t h = px_digest_fingerprint(b, n);
    free(b);
    return h;
}

static uint64_t fp(const char *sql)
{
    return fp_n(sql, strlen(sql));
}

static uint64_t id_of(const char *sql)
{
    size_t n = strlen(sql);
    char *b = malloc(n ? n : 1);
    if (b == NULL)
        return 0;
    memcpy(b, sql, n);
    uint64_t id = px_digest_id(b, n);
    free(b);
    return id;
}

static const char *norm(const char *sql)
{
    static char out[PX_DIGEST_TEXT_MAX + 1];
    size_t n = strlen(sql);
    char *b = malloc(n ? n : 1);
    if (b == NULL)
        return "";
    memcpy(b, sql, n);
    px_digest_normalize(b, n, out, sizeof out);
    free(b);
    return out;
}

static void fresh(void)
{
    px_digest_reset();
    px_digest_configure(PX_DIGEST_DEFAULT_MAX);
}

#define SAME(a, b)                                                                                 \
    do {                                                                                           \
        uint64_t fa_ = fp(a), fb_ = fp(b);                                                         \
        if (fa_ == 0 || fa_ != fb_)                                                                \
            fprintf(stderr, "\nexpected one digest:\n  %s\n  %s\n  (%s | %s)\n", a, b, norm(a),    \
                    norm(b));                                                                      \
        CU_ASSERT(fa_ != 0 && fa_ == fb_);                                                         \
    } while (0)

#define DIFFERENT(a, b)                                                                            \
    do {                                                                                           \
        uint64_t fa_ = fp(a), fb_ = fp(b);                                                         \
        if (fa_ == fb_)                                                                            \
            fprintf(stderr, "\nexpected two digests:\n  %s\n  %s\n", a, b);                        \
        CU_ASSERT(fa_ != 0 && fb_ != 0 && fa_ != fb_);                                             \
    } while (0)

#define NORM(sql, want)                                                                            \
    do {                                                                                           \
        const char *got_ = norm(sql);                                                              \
        if (strcmp(got_, want) != 0)                                                               \
            fprintf(stderr, "\nnormalize(%s)\n  got  %s\n  want %s\n", sql, got_, want);           \
        CU_ASSERT_STRING_EQUAL(got_, want);                                                        \
    } while (0)

/* ---- fingerprints ------------------------------------------------------------ */

static void test_literals_and_parameters_do_not_matter(void)
{
    SAME("SELECT abalance FROM pgbench_accounts WHERE aid = 1",
         "SELECT abalance FROM pgbench_accounts WHERE aid = 987654");
    SAME("SELECT abalance FROM pgbench_accounts WHERE aid = 1",
         "SELECT abalance FROM pgbench_accounts WHERE aid = $1");
    SAME("SELECT * FROM t WHERE name = 'alice' AND score > 2.5e3",
         "SELECT * FROM t WHERE name = 'o''brien' AND score > .5");
    SAME("SELECT * FROM t WHERE a = E'x\\'y' AND b = $tag$ $ ' $tag$ AND c = B'1010'",
         "SELECT * FROM t WHERE a = 'z' AND b = $$x$$ AND c = X'ff'");
    SAME("SELECT * FROM t WHERE a = -1", "SELECT * FROM t WHERE a = 7");
    SAME("SELECT -1", "SELECT $1");
    SAME("SELECT * FROM t WHERE flag = true", "SELECT * FROM t WHERE flag = false");
    SAME("SELECT * FROM t WHERE d > date '2024-01-01'", "SELECT * FROM t WHERE d > date $1");
    SAME("SELECT '{1,2}'::int[] @> ARRAY[3]", "SELECT $1::int[] @> ARRAY[$2]");
    SAME("INSERT INTO t (a, b) VALUES (1, 'x')", "INSERT INTO t (a, b) VALUES ($1, $2)");
    SAME("SELECT * FROM t LIMIT 10 OFFSET 20", "SELECT * FROM t LIMIT $1 OFFSET $2");
}

static void test_whitespace_comments_case_and_semicolons_do_not_matter(void)
{
    SAME("SELECT a, b FROM t WHERE a = 1", "  select\ta ,b\n  from T\r\nwhere a=1  ");
    SAME("SELECT a FROM t /* why */ WHERE a = 1 -- trailing",
         "/* fastnext:replica */ SELECT a FROM t WHERE a = 1");
    SAME("SELECT a FROM t /* outer /* nested */ still */ WHERE a = 1",
         "SELECT a FROM t WHERE a = 1");
    SAME("UPDATE t SET v = v + 1 WHERE id = 5;", "UPDATE t SET v = v + 1 WHERE id = 5 ;; ");
    SAME("SELECT count(*) FROM t", "SELECT count ( * ) FROM t");
}

static void test_in_lists_of_any_length_share_a_digest(void)
{
    SAME("SELECT * FROM t WHERE id IN (1)", "SELECT * FROM t WHERE id IN (1, 2, 3, 4)");
    SAME("SELECT * FROM t WHERE id IN (1, 2)", "SELECT * FROM t WHERE id IN ($1, $2, $3)");
    /* pg_stat_statements' text of the same query */
    SAME("SELECT * FROM t WHERE id IN ('a', 'b') AND x = 3",
         "SELECT * FROM t WHERE id IN ($1, $2, $3) AND x = $4");
    /* not a list of values: left alone */
    DIFFERENT("SELECT * FROM t WHERE id IN (SELECT a FROM u)",
              "SELECT * FROM t WHERE id IN (SELECT b FROM u)");
    DIFFERENT("SELECT * FROM t WHERE id IN (1, a)", "SELECT * FROM t WHERE id IN (1, b)");
}

static void test_different_statements_have_different_digests(void)
{
    DIFFERENT("SELECT a FROM t WHERE id = 1", "SELECT b FROM t WHERE id = 1");
    DIFFERENT("SELECT a FROM t WHERE id = 1", "SELECT a FROM u WHERE id = 1");
    DIFFERENT("SELECT a FROM t WHERE id = 1", "SELECT a FROM t WHERE id > 1");
    DIFFERENT("SELECT a FROM t WHERE id = 1", "DELETE FROM t WHERE id = 1");
    DIFFERENT("SELECT a FROM t", "SELECT a FROM t ORDER BY a");
    DIFFERENT("SELECT a - 1 FROM t", "SELECT a, -1 FROM t");
    DIFFERENT("SELECT \"A\" FROM t", "SELECT a FROM t");
    DIFFERENT("SELECT 1; SELECT 2", "SELECT 1");
    DIFFERENT("SELECT * FROM t WHERE a IS NULL", "SELECT * FROM t WHERE a = 1");
    DIFFERENT("INSERT INTO t VALUES (1), (2)", "INSERT INTO t VALUES (1)");
}

static void test_empty_and_comment_only_texts_have_no_digest(void)
{
    CU_ASSERT_EQUAL(fp(""), 0);
    CU_ASSERT_EQUAL(fp("   \n\t"), 0);
    CU_ASSERT_EQUAL(fp("-- nothing\n/* at all */"), 0);
    CU_ASSERT_EQUAL(fp(";;"), 0);
    CU_ASSERT_EQUAL(px_digest_fingerprint(NULL, 10), 0);
    fresh();
    CU_ASSERT_EQUAL(id_of("  -- x"), 0);
}

static void test_normalised_text(void)
{
    NORM("SELECT a, b FROM Foo f WHERE f.x = -1 AND f.y > 2.5e3 AND name = 'o''k' /* c */ LIMIT 10",
         "select a, b from foo f where f.x = $1 and f.y > $2 and name = $3 limit $4");
    NORM("select * from t where id in (1,2,3);", "select * from t where id in ($1, ...)");
    NORM("UPDATE t SET v = v + 1 WHERE id = 5", "update t set v = v + $1 where id = $2");
    NORM("SELECT count(*), \"Mixed\" FROM s.t WHERE x::text = 'a'",
         "select count(*), \"Mixed\" from s.t where x::text = $1");
    NORM("SELECT 1; SELECT 2;", "select $1; select $2");
    NORM("SELECT doc->>'k' FROM t WHERE doc @> '{}'", "select doc ->> $1 from t where doc @> $2");
    /* a long text is cut, on a UTF-8 boundary */
    char out[8];
    const char *utf = "SELECT \"\xc3\xa9\xc3\xa9\"";
    size_t n = px_digest_normalize(utf, strlen(utf), out, sizeof out);
    CU_ASSERT(n <= 7);
    CU_ASSERT_EQUAL(strlen(out), n);
}

static void test_long_texts_are_hashed_whole(void)
{
    /* two texts that differ only after the first 10 KB */
    size_t n = 12000;
    char *a = malloc(n), *b = malloc(n);
    CU_ASSERT_FATAL(a != NULL && b != NULL);
    memcpy(a, "SELECT ", 7);
    for (size_t i = 7; i < n; i += 4)
        memcpy(a + i, "a + ", n - i < 4 ? n - i : 4);
    memcpy(b, a, n);
    a[n - 1] = 'x';
    b[n - 1] = 'y';
    CU_ASSERT(fp_n(a, n) != fp_n(b, n));
    /* and the kept text is bounded */
    fresh();
    uint64_t id = px_digest_id(a, n);
    CU_ASSERT_FATAL(id != 0);
    px_digest_record(id, 0.001, 1, PX_DIGEST_ROUTE_PRIMARY, false, false);
    px_digest_entry_t *e = malloc(sizeof(*e));
    CU_ASSERT_FATAL(e != NULL);
    CU_ASSERT_FATAL(px_digest_get(id, e));
    CU_ASSERT(e->query_truncated);
    CU_ASSERT(strlen(e->query) <= PX_DIGEST_TEXT_MAX);
    CU_ASSERT(!e->has_sample); /* longer than PX_DIGEST_SAMPLE_MAX */
    char s[16];
    CU_ASSERT_EQUAL(px_digest_sample(id, s, sizeof s), 0);
    free(e);
    free(a);
    free(b);
}

static void test_truncated_and_random_input_stays_in_bounds(void)
{
    const char *texts[] = {
        "SELECT 'unterminated",
        "SELECT E'back\\",
        "SELECT $tag$ never closed",
        "SELECT \"open",
        "SELECT /* open /* nested */",
        "SELECT 1e",
        "SELECT U&'x",
        "SELECT U&\"x",
        "SELECT $",
        "SELECT 0x",
        "SELECT - ",
        "SELECT a IN (1, 2,",
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++)
        for (size_t n = 0; n <= strlen(texts[i]); n++)
            (void)fp_n(texts[i], n);
    srand(42);
    char buf[200];
    for (int r = 0; r < 20000; r++) {
        size_t n = (size_t)(rand() % (int)sizeof buf);
        for (size_t i = 0; i < n; i++)
            buf[i] = "SELECT'\"$-/*() ,;:1a.e\\\n\x80\xff"[rand() % 26];
        (void)fp_n(buf, n);
        char out[64];
        char *b = malloc(n ? n : 1);
        CU_ASSERT_FATAL(b != NULL);
        memcpy(b, buf, n);
        size_t k = px_digest_normalize(b, n, out, sizeof out);
        CU_ASSERT(k < sizeof out && out[k] == 0);
        free(b);
    }
}

/* ---- statistics ------------------------------------------------------------ */

static void test_record_math(void)
{
    fresh();
    uint64_t id = id_of("SELECT v FROM kv WHERE k = 1");
    CU_ASSERT_FATAL(id != 0);
    CU_ASSERT_EQUAL(id_of("select v from kv where k = 2"), id);
    px_digest_record(id, 0.010, 1, PX_DIGEST_ROUTE_PRIMARY, false, false);
    px_digest_record(id, 0.030, 1, PX_DIGEST_ROUTE_REPLICA, false, false);
    px_digest_record(id, 0.020, 0, PX_DIGEST_ROUTE_PRIMARY, false, true);
    px_digest_record(id, 0.0001, 1, PX_DIGEST_ROUTE_CACHE, true, false);
    px_digest_entry_t e;
    CU_ASSERT_FATAL(px_digest_get(id, &e));
    CU_ASSERT_EQUAL(e.id, id);
    CU_ASSERT_EQUAL(e.calls, 4);
    CU_ASSERT_EQUAL(e.errors, 1);
    CU_ASSERT_EQUAL(e.rows, 3);
    CU_ASSERT_EQUAL(e.cache_hits, 1);
    CU_ASSERT_EQUAL(e.route_calls[PX_DIGEST_ROUTE_PRIMARY], 2);
    CU_ASSERT_EQUAL(e.route_calls[PX_DIGEST_ROUTE_REPLICA], 1);
    CU_ASSERT_EQUAL(e.route_calls[PX_DIGEST_ROUTE_CACHE], 1);
    CU_ASSERT_DOUBLE_EQUAL(e.total_seconds, 0.0601, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(e.mean_seconds, 0.0601 / 4, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(e.min_seconds, 0.0001, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(e.max_seconds, 0.030, 1e-12);
    CU_ASSERT(e.p95_seconds <= e.max_seconds && e.p95_seconds >= 0.030 * 0.9);
    CU_ASSERT_STRING_EQUAL(e.query, "select v from kv where k = $1");
    CU_ASSERT(e.has_sample);
    CU_ASSERT(e.first_seen_ms > 0 && e.last_seen_ms >= e.first_seen_ms);
    char s[64];
    CU_ASSERT_EQUAL(px_digest_sample(id, s, sizeof s), strlen("SELECT v FROM kv WHERE k = 1"));
    CU_ASSERT_STRING_EQUAL(s, "SELECT v FROM kv WHERE k = 1"); /* the first text seen */
    CU_ASSERT_EQUAL(px_digest_sample(id, s, 5), 0);            /* does not fit */
    /* id 0 is ignored; unknown ids are counted as dropped */
    px_digest_info_t before, after;
    px_digest_info(&before);
    px_digest_record(0, 1.0, 1, PX_DIGEST_ROUTE_PRIMARY, false, false);
    px_digest_record(0x1234, 1.0, 1, PX_DIGEST_ROUTE_PRIMARY, false, false);
    px_digest_info(&after);
    CU_ASSERT_EQUAL(after.dropped, before.dropped + 1);
    CU_ASSERT_EQUAL(after.digests, 1);
    CU_ASSERT_STRING_EQUAL(px_digest_route_to_str(PX_DIGEST_ROUTE_PRIMARY), "primary");
    CU_ASSERT_STRING_EQUAL(px_digest_route_to_str(PX_DIGEST_ROUTE_REPLICA), "replica");
    CU_ASSERT_STRING_EQUAL(px_digest_route_to_str(PX_DIGEST_ROUTE_CACHE), "cache");
}

static void test_p95_from_the_histogram(void)
{
    fresh();
    uint64_t id = id_of("SELECT pg_sleep(1)");
    /* 1 ms .. 100 ms, shuffled: p95 is 95 ms */
    for (int i = 0; i < 100; i++) {
        int v = (i * 37) % 100 + 1;
        px_digest_record(id, v / 1000.0, 0, PX_DIGEST_ROUTE_PRIMARY, false, false);
    }
    px_digest_entry_t e;
    CU_ASSERT_FATAL(px_digest_get(id, &e));
    CU_ASSERT_EQUAL(e.calls, 100);
    CU_ASSERT(fabs(e.p95_seconds - 0.095) <= 0.095 * 0.12);
    CU_ASSERT_DOUBLE_EQUAL(e.mean_seconds, 0.0505, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(e.max_seconds, 0.100, 1e-12);
    /* all equal: p95 is that value exactly (clamped to min and max) */
    uint64_t id2 = id_of("SELECT 2 + 2");
    for (int i = 0; i < 50; i++)
        px_digest_record(id2, 0.0042, 1, PX_DIGEST_ROUTE_REPLICA, false, false);
    CU_ASSERT_FATAL(px_digest_get(id2, &e));
    CU_ASSERT_DOUBLE_EQUAL(e.p95_seconds, 0.0042, 1e-12);
    /* one slow outlier among many fast calls does not move p95 */
    uint64_t id3 = id_of("SELECT 3 FROM three");
    for (int i = 0; i < 99; i++)
        px_digest_record(id3, 0.001, 1, PX_DIGEST_ROUTE_PRIMARY, false, false);
    px_digest_record(id3, 5.0, 1, PX_DIGEST_ROUTE_PRIMARY, false, false);
    CU_ASSERT_FATAL(px_digest_get(id3, &e));
    CU_ASSERT(e.p95_seconds < 0.0012 && e.p95_seconds >= 0.001);
    CU_ASSERT_DOUBLE_EQUAL(e.max_seconds, 5.0, 1e-12);
    /* slow statements keep their resolution: 2 s .. 20 s, p95 = 19 s */
    uint64_t id5 = id_of("SELECT 5 FROM slow_ones");
    for (int i = 1; i <= 20; i++)
        px_digest_record(id5, (double)i, 1, PX_DIGEST_ROUTE_PRIMARY, false, false);
    CU_ASSERT_FATAL(px_digest_get(id5, &e));
    CU_ASSERT(fabs(e.p95_seconds - 19.0) <= 19.0 * 0.12);
    /* sub-microsecond and huge durations land in the end buckets */
    uint64_t id4 = id_of("SELECT 4 FROM four");
    px_digest_record(id4, 0.0, 1, PX_DIGEST_ROUTE_CACHE, true, false);
    px_digest_record(id4, 1e6, 1, PX_DIGEST_ROUTE_PRIMARY, false, false);
    px_digest_record(id4, -1.0, 1, PX_DIGEST_ROUTE_PRIMARY, false, false);
    CU_ASSERT_FATAL(px_digest_get(id4, &e));
    CU_ASSERT_EQUAL(e.calls, 3);
    CU_ASSERT_DOUBLE_EQUAL(e.p95_seconds, 1e6, 1e-6);
}

static void test_top_orders_by_total_or_mean(void)
{
    fresh();
    /* many fast calls: the largest total; one slow call: the largest mean */
    uint64_t many = id_of("SELECT * FROM many WHERE id = 1");
    uint64_t slow = id_of("SELECT * FROM slow WHERE id = 1");
    uint64_t mid = id_of("SELECT * FROM mid WHERE id = 1");
    uint64_t never = id_of("SELECT * FROM never_recorded");
    CU_ASSERT_FATAL(many && slow && mid && never);
    for (int i = 0; i < 1000; i++)
        px_digest_record(many, 0.002, 1, PX_DIGEST_ROUTE_PRIMARY, false, false);
    px_digest_record(slow, 1.5, 1, PX_DIGEST_ROUTE_PRIMARY, false, false);
    for (int i = 0; i < 10; i++)
        px_digest_record(mid, 0.05, 1, PX_DIGEST_ROUTE_PRIMARY, false, false);
    px_digest_entry_t out[8];
    size_t n = px_digest_top(out, 8, PX_DIGEST_ORDER_TOTAL);
    CU_ASSERT_EQUAL_FATAL(n, 3); /* digests without calls are not listed */
    CU_ASSERT_EQUAL(out[0].id, many);
    CU_ASSERT_EQUAL(out[1].id, slow);
    CU_ASSERT_EQUAL(out[2].id, mid);
    n = px_digest_top(out, 8, PX_DIGEST_ORDER_MEAN);
    CU_ASSERT_EQUAL_FATAL(n, 3);
    CU_ASSERT_EQUAL(out[0].id, slow);
    CU_ASSERT_EQUAL(out[1].id, mid);
    CU_ASSERT_EQUAL(out[2].id, many);
    n = px_digest_top(out, 8, PX_DIGEST_ORDER_CALLS);
    CU_ASSERT_EQUAL(out[0].id, many);
    n = px_digest_top(out, 2, PX_DIGEST_ORDER_TOTAL);
    CU_ASSERT_EQUAL(n, 2);
    CU_ASSERT_EQUAL(px_digest_top(out, 0, PX_DIGEST_ORDER_TOTAL), 0);
}

/* ---- bounds ------------------------------------------------------------------ */

static void test_eviction_keeps_the_heaviest(void)
{
    fresh();
    px_digest_configure(10);
    char sql[64];
    uint64_t ids[40];
    /* 40 digests with total times 1..40 s, registered and recorded one by one */
    for (int i = 0; i < 40; i++) {
        snprintf(sql, sizeof sql, "SELECT * FROM t%d WHERE id = 1", i);
        ids[i] = id_of(sql);
        CU_ASSERT_FATAL(ids[i] != 0);
        px_digest_record(ids[i], (double)(i + 1), 1, PX_DIGEST_ROUTE_PRIMARY, false, false);
        px_digest_info_t info;
        px_digest_info(&info);
        CU_ASSERT(info.digests <= 10);
    }
    px_digest_entry_t out[16];
    size_t n = px_digest_top(out, 16, PX_DIGEST_ORDER_TOTAL);
    CU_ASSERT(n >= 9 && n <= 10);
    /* the heaviest nine are all there, heaviest first */
    for (int k = 0; k < 9 && k < (int)n; k++)
        CU_ASSERT_EQUAL(out[k].id, ids[39 - k]);
    px_digest_info_t info;
    px_digest_info(&info);
    CU_ASSERT(info.evictions >= 30);
    CU_ASSERT_EQUAL(info.max_digests, 10);
    /* a light digest that comes back later is evicted again, not a heavy one */
    px_digest_record(ids[0], 0.5, 1, PX_DIGEST_ROUTE_PRIMARY, false, false); /* dropped */
    uint64_t again = id_of("SELECT * FROM t0 WHERE id = 2");
    CU_ASSERT_EQUAL(again, ids[0]);
    px_digest_record(again, 0.5, 1, PX_DIGEST_ROUTE_PRIMARY, false, false);
    for (int i = 40; i < 45; i++) {
        snprintf(sql, sizeof sql, "SELECT * FROM t%d WHERE id = 1", i);
        px_digest_record(id_of(sql), 100.0, 1, PX_DIGEST_ROUTE_PRIMARY, false, false);
    }
    px_digest_entry_t e;
    CU_ASSERT(!px_digest_get(again, &e));
    CU_ASSERT(px_digest_get(ids[39], &e));
    /* shrinking evicts at once; 0 disables */
    px_digest_configure(3);
    px_digest_info(&info);
    CU_ASSERT(info.digests <= 3);
    n = px_digest_top(out, 16, PX_DIGEST_ORDER_TOTAL);
    CU_ASSERT_EQUAL(n, info.digests);
    CU_ASSERT(n > 0 && out[0].total_seconds == 100.0);
    px_digest_configure(0);
    CU_ASSERT_EQUAL(id_of("SELECT 'disabled'"), 0);
    fresh();
}

static void test_a_new_digest_is_not_evicted_before_its_first_record(void)
{
    fresh();
    px_digest_configure(4);
    char sql[64];
    for (int i = 0; i < 4; i++) {
        snprintf(sql, sizeof sql, "SELECT %c FROM heavy", 'a' + i);
        px_digest_record(id_of(sql), 10.0, 1, PX_DIGEST_ROUTE_PRIMARY, false, false);
    }
    /* registered while full: heavy digests make room, the unrecorded newcomer stays */
    uint64_t id = id_of("SELECT newcomer FROM t");
    px_digest_entry_t e;
    CU_ASSERT(px_digest_get(id, &e));
    px_digest_record(id, 20.0, 1, PX_DIGEST_ROUTE_PRIMARY, false, false);
    CU_ASSERT(px_digest_get(id, &e) && e.calls == 1);
    fresh();
}

/* ---- threads ----------------------------------------------------------------- */

#define TH_ITER  50000
#define TH_TEXTS 64

static void *worker(void *arg)
{
    int seed = (int)(intptr_t)arg;
    char sql[96];
    for (int i = 0; i < TH_ITER; i++) {
        int t = (i * 7 + seed) % TH_TEXTS;
        int n = snprintf(sql, sizeof sql, "SELECT c%d FROM tab WHERE k = %d", t, i);
        uint64_t id = px_digest_id(sql, (size_t)n);
        px_digest_record(id, 0.001, 2, seed ? PX_DIGEST_ROUTE_REPLICA : PX_DIGEST_ROUTE_PRIMARY,
                         false, false);
        if (i % 5000 == 0) {
            px_digest_entry_t out[4];
            (void)px_digest_top(out, 4, PX_DIGEST_ORDER_MEAN);
        }
    }
    return NULL;
}

static void test_two_threads_record_concurrently(void)
{
    fresh();
    pthread_t a, b;
    CU_ASSERT_FATAL(pthread_create(&a, NULL, worker, (void *)(intptr_t)0) == 0);
    CU_ASSERT_FATAL(pthread_create(&b, NULL, worker, (void *)(intptr_t)1) == 0);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    px_digest_entry_t *out = calloc(TH_TEXTS + 8, sizeof(*out));
    CU_ASSERT_FATAL(out != NULL);
    size_t n = px_digest_top(out, TH_TEXTS + 8, PX_DIGEST_ORDER_TOTAL);
    CU_ASSERT_EQUAL(n, TH_TEXTS);
    uint64_t calls = 0, rows = 0, prim = 0, repl = 0;
    for (size_t i = 0; i < n; i++) {
        calls += out[i].calls;
        rows += out[i].rows;
        prim += out[i].route_calls[PX_DIGEST_ROUTE_PRIMARY];
        repl += out[i].route_calls[PX_DIGEST_ROUTE_REPLICA];
    }
    CU_ASSERT_EQUAL(calls, 2 * TH_ITER);
    CU_ASSERT_EQUAL(rows, 4 * TH_ITER);
    CU_ASSERT_EQUAL(prim, TH_ITER);
    CU_ASSERT_EQUAL(repl, TH_ITER);
    free(out);
    fresh();
}

/* ---- runner ------------------------------------------------------------------ */

typedef struct test_entry {
    const char *name;
    void (*fn)(void);
} test_entry_t;

#define T(f)                                                                                       \
    {                                                                                              \
#f, f                                                                                      \
    }

static const test_entry_t fp_tests[] = {
    T(test_literals_and_parameters_do_not_matter),
    T(test_whitespace_comments_case_and_semicolons_do_not_matter),
    T(test_in_lists_of_any_length_share_a_digest),
    T(test_different_statements_have_different_digests),
    T(test_empty_and_comment_only_texts_have_no_digest),
    T(test_normalised_text),
    T(test_long_texts_are_hashed_whole),
    T(test_truncated_and_random_input_stays_in_bounds),
};

static const test_entry_t stats_tests[] = {
    T(test_record_math),
    T(test_p95_from_the_histogram),
    T(test_top_orders_by_total_or_mean),
};

static const test_entry_t bound_tests[] = {
    T(test_eviction_keeps_the_heaviest),
    T(test_a_new_digest_is_not_evicted_before_its_first_record),
    T(test_two_threads_record_concurrently),
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
    if (!ADD_SUITE("digest/fingerprint", fp_tests) || !ADD_SUITE("digest/stats", stats_tests) ||
        !ADD_SUITE("digest/bounds", bound_tests)) {
        CU_cleanup_registry();
        return 2;
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
    CU_cleanup_registry();
    px_digest_reset();
    return failed == 0 ? 0 : 1;
}
