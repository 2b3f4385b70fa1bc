/*
 * Unit tests for proxy/metrics.c: histogram bucketing (inclusive upper
 * bounds, +Inf, clamping), cumulative readings whose _count equals the +Inf
 * bucket, the per-worker registry (slots summed, out-of-range workers shared,
 * no lost counts under concurrent observers), the sticky text buffer, and the
 * exact Prometheus text this module writes (escaping, values, histogram
 * series), plus the process readings and the CPU-percent arithmetic.
 */
#include "px_metrics.h"

#include <CUnit/Basic.h>
#include <CUnit/CUnit.h>

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int bucket_of(double v)
{
    px_metrics_hist_t h;
    memset(&h, 0, sizeof(h));
    px_metrics_hist_observe(&h, v);
    for (int i = 0; i <= PX_METRICS_NBUCKETS; i++)
        if (atomic_load(&h.counts[i]) == 1)
            return i;
    return -1;
}

static void test_observation_lands_in_first_bucket_whose_bound_is_not_below_it(void)
{
    CU_ASSERT_EQUAL(bucket_of(0), 0);
    CU_ASSERT_EQUAL(bucket_of(0.0001), 0); /* le is inclusive */
    CU_ASSERT_EQUAL(bucket_of(0.00010001), 1);
    CU_ASSERT_EQUAL(bucket_of(0.001), 3);
    CU_ASSERT_EQUAL(bucket_of(0.0011), 4);
    CU_ASSERT_EQUAL(bucket_of(1), 12);
    CU_ASSERT_EQUAL(bucket_of(10), 15);
    CU_ASSERT_EQUAL(bucket_of(10.5), PX_METRICS_NBUCKETS); /* +Inf */
    CU_ASSERT_EQUAL(bucket_of(INFINITY), PX_METRICS_NBUCKETS);
}

static void test_negative_counts_as_zero_and_nan_is_ignored(void)
{
    CU_ASSERT_EQUAL(bucket_of(-3), 0);
    CU_ASSERT_EQUAL(bucket_of(NAN), -1);
    px_metrics_hist_t h;
    memset(&h, 0, sizeof(h));
    px_metrics_hist_observe(&h, -3);
    CU_ASSERT_EQUAL(atomic_load(&h.sum_ns), 0);
}

static void test_bucket_bounds_are_increasing(void)
{
    for (int i = 1; i < PX_METRICS_NBUCKETS; i++)
        CU_ASSERT(px_metrics_buckets[i] > px_metrics_buckets[i - 1]);
    CU_ASSERT_DOUBLE_EQUAL(px_metrics_buckets[0], 0.0001, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(px_metrics_buckets[PX_METRICS_NBUCKETS - 1], 10, 1e-12);
}

static void test_reading_is_cumulative_and_count_equals_inf_bucket(void)
{
    px_metrics_hist_t h;
    memset(&h, 0, sizeof(h));
    px_metrics_hist_observe(&h, 0.0002); /* bucket 1 */
    px_metrics_hist_observe(&h, 0.0002);
    px_metrics_hist_observe(&h, 0.3); /* bucket 11 */
    px_metrics_hist_observe(&h, 60);  /* +Inf */
    px_metrics_hist_snap_t s;
    px_metrics_hist_snap_init(&s);
    px_metrics_hist_read(&h, &s);
    CU_ASSERT_EQUAL(s.cumulative[0], 0);
    CU_ASSERT_EQUAL(s.cumulative[1], 2);
    CU_ASSERT_EQUAL(s.cumulative[10], 2);
    CU_ASSERT_EQUAL(s.cumulative[11], 3);
    CU_ASSERT_EQUAL(s.cumulative[PX_METRICS_NBUCKETS - 1], 3);
    CU_ASSERT_EQUAL(s.cumulative[PX_METRICS_NBUCKETS], 4);
    CU_ASSERT_EQUAL(s.count, 4);
    CU_ASSERT_DOUBLE_EQUAL(s.sum, 0.0004 + 0.3 + 60, 1e-6);
    for (int i = 1; i <= PX_METRICS_NBUCKETS; i++)
        CU_ASSERT(s.cumulative[i] >= s.cumulative[i - 1]);
}

static void test_reading_several_histograms_sums_them(void)
{
    px_metrics_hist_t a, b;
    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    px_metrics_hist_observe(&a, 0.001);
    px_metrics_hist_observe(&b, 0.001);
    px_metrics_hist_observe(&b, 5);
    px_metrics_hist_snap_t s;
    px_metrics_hist_snap_init(&s);
    px_metrics_hist_read(&a, &s);
    px_metrics_hist_read(&b, &s);
    CU_ASSERT_EQUAL(s.cumulative[3], 2);
    CU_ASSERT_EQUAL(s.count, 3);
    CU_ASSERT_EQUAL(s.cumulative[PX_METRICS_NBUCKETS], s.count);
    CU_ASSERT_DOUBLE_EQUAL(s.sum, 5.002, 1e-9);
}

static uint64_t query_count(px_metrics_route_t r, px_metrics_cache_t c)
{
    px_metrics_hist_snap_t s;
    px_metrics_hist_snap_init(&s);
    px_metrics_read_query(r, c, &s);
    return s.count;
}

static void test_registry_sums_worker_slots_and_shares_one_for_out_of_range_workers(void)
{
    uint64_t before = query_count(PX_METRICS_ROUTE_REPLICA, PX_METRICS_CACHE_MISS);
    uint64_t other = query_count(PX_METRICS_ROUTE_PRIMARY, PX_METRICS_CACHE_HIT);
    px_metrics_observe_query(0, PX_METRICS_ROUTE_REPLICA, PX_METRICS_CACHE_MISS, 0.01);
    px_metrics_observe_query(3, PX_METRICS_ROUTE_REPLICA, PX_METRICS_CACHE_MISS, 0.01);
    px_metrics_observe_query(-1, PX_METRICS_ROUTE_REPLICA, PX_METRICS_CACHE_MISS, 0.01);
    px_metrics_observe_query(PX_METRICS_MAX_WORKERS + 5, PX_METRICS_ROUTE_REPLICA,
                             PX_METRICS_CACHE_MISS, 0.01);
    CU_ASSERT_EQUAL(query_count(PX_METRICS_ROUTE_REPLICA, PX_METRICS_CACHE_MISS), before + 4);
    CU_ASSERT_EQUAL(query_count(PX_METRICS_ROUTE_PRIMARY, PX_METRICS_CACHE_HIT), other);

    px_metrics_hist_snap_t s0, s1;
    px_metrics_hist_snap_init(&s0);
    px_metrics_read_pool_wait(&s0);
    px_metrics_observe_pool_wait(1, 0.02);
    px_metrics_observe_pool_wait(99, 0.03);
    px_metrics_hist_snap_init(&s1);
    px_metrics_read_pool_wait(&s1);
    CU_ASSERT_EQUAL(s1.count, s0.count + 2);
    CU_ASSERT_DOUBLE_EQUAL(s1.sum - s0.sum, 0.05, 1e-9);
}

static void test_registry_ignores_out_of_range_route_and_cache(void)
{
    uint64_t total = 0;
    for (int r = 0; r < PX_METRICS_ROUTE_COUNT; r++)
        for (int c = 0; c < PX_METRICS_CACHE_COUNT; c++)
            total += query_count((px_metrics_route_t)r, (px_metrics_cache_t)c);
    px_metrics_observe_query(0, (px_metrics_route_t)7, PX_METRICS_CACHE_HIT, 0.1);
    px_metrics_observe_query(0, PX_METRICS_ROUTE_PRIMARY, (px_metrics_cache_t)-1, 0.1);
    uint64_t after = 0;
    for (int r = 0; r < PX_METRICS_ROUTE_COUNT; r++)
        for (int c = 0; c < PX_METRICS_CACHE_COUNT; c++)
            after += query_count((px_metrics_route_t)r, (px_metrics_cache_t)c);
    CU_ASSERT_EQUAL(after, total);
    CU_ASSERT_STRING_EQUAL(px_metrics_route_to_str(PX_METRICS_ROUTE_PRIMARY), "primary");
    CU_ASSERT_STRING_EQUAL(px_metrics_route_to_str(PX_METRICS_ROUTE_REPLICA), "replica");
    CU_ASSERT_STRING_EQUAL(px_metrics_cache_to_str(PX_METRICS_CACHE_HIT), "hit");
    CU_ASSERT_STRING_EQUAL(px_metrics_cache_to_str(PX_METRICS_CACHE_MISS), "miss");
    CU_ASSERT_STRING_EQUAL(px_metrics_cache_to_str(PX_METRICS_CACHE_BYPASS), "bypass");
}

#define OBSERVERS    4
#define OBSERVATIONS 100000

static void *observer(void *arg)
{
    int worker = (int)(intptr_t)arg;
    for (int i = 0; i < OBSERVATIONS; i++)
        px_metrics_observe_query(worker, PX_METRICS_ROUTE_PRIMARY, PX_METRICS_CACHE_BYPASS,
                                 (i % 7) * 0.001);
    return NULL;
}

static void test_concurrent_observers_lose_no_counts_and_readings_only_grow(void)
{
    uint64_t before = query_count(PX_METRICS_ROUTE_PRIMARY, PX_METRICS_CACHE_BYPASS);
    pthread_t t[OBSERVERS];
    /* two threads share the overflow slot, two have their own */
    int workers[OBSERVERS] = {1, 2, -1, -1};
    for (int i = 0; i < OBSERVERS; i++)
        CU_ASSERT_EQUAL(pthread_create(&t[i], NULL, observer, (void *)(intptr_t)workers[i]), 0);
    uint64_t last = before;
    for (int k = 0; k < 50; k++) {
        uint64_t now = query_count(PX_METRICS_ROUTE_PRIMARY, PX_METRICS_CACHE_BYPASS);
        CU_ASSERT(now >= last);
        last = now;
    }
    for (int i = 0; i < OBSERVERS; i++)
        pthread_join(t[i], NULL);
    CU_ASSERT_EQUAL(query_count(PX_METRICS_ROUTE_PRIMARY, PX_METRICS_CACHE_BYPASS),
                    before + (uint64_t)OBSERVERS * OBSERVATIONS);
}

static void test_buffer_failure_is_sticky_at_the_cap(void)
{
    px_metrics_buf_t b;
    px_metrics_buf_init(&b, 10);
    CU_ASSERT(px_metrics_buf_puts(&b, "12345"));
    CU_ASSERT(px_metrics_buf_printf(&b, "%d", 6789));
    CU_ASSERT_STRING_EQUAL(b.p, "123456789");
    CU_ASSERT_FALSE(px_metrics_buf_puts(&b, "ab"));
    CU_ASSERT(b.failed);
    CU_ASSERT_FALSE(px_metrics_buf_puts(&b, "")); /* stays failed */
    CU_ASSERT_EQUAL(b.len, 9);
    px_metrics_buf_reset(&b, 1024);
    CU_ASSERT_FALSE(b.failed);
    CU_ASSERT_EQUAL(b.len, 0);
    CU_ASSERT_STRING_EQUAL(b.p, "");
    px_metrics_buf_free(&b);
}

static void test_buffer_printf_handles_long_output(void)
{
    px_metrics_buf_t b;
    px_metrics_buf_init(&b, 1 << 20);
    char big[5000];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    CU_ASSERT(px_metrics_buf_printf(&b, "<%s>", big));
    CU_ASSERT_EQUAL(b.len, sizeof(big) + 1);
    CU_ASSERT_EQUAL(b.p[0], '<');
    CU_ASSERT_EQUAL(b.p[b.len - 1], '>');
    CU_ASSERT_EQUAL(b.p[b.len], '\0');
    px_metrics_buf_free(&b);
}

static void test_label_values_are_escaped_and_invalid_utf8_replaced(void)
{
    px_metrics_buf_t b;
    px_metrics_buf_init(&b, 4096);
    px_metrics_label_t l[2] = {{"database", "a\"b\\c\nd"}, {"user", "caf\xc3\xa9\xff"}};
    px_metrics_sample(&b, "fastnext_x", l, 2, 3);
    CU_ASSERT_STRING_EQUAL(b.p, "fastnext_x{database=\"a\\\"b\\\\c\\nd\",user=\"caf\xc3\xa9"
                                "\xef\xbf\xbd\"} 3\n");
    px_metrics_buf_free(&b);
}

static void test_family_writes_help_and_type_with_help_escaped(void)
{
    px_metrics_buf_t b;
    px_metrics_buf_init(&b, 4096);
    px_metrics_family(&b, "fastnext_y_total", "counter", "Two\nlines \\ and \"quotes\".");
    CU_ASSERT_STRING_EQUAL(b.p, "# HELP fastnext_y_total Two\\nlines \\\\ and \"quotes\".\n"
                                "# TYPE fastnext_y_total counter\n");
    px_metrics_buf_free(&b);
}

static void test_values_print_integers_exactly_and_nonfinite_as_prometheus_words(void)
{
    px_metrics_buf_t b;
    px_metrics_buf_init(&b, 4096);
    px_metrics_sample(&b, "a", NULL, 0, 42);
    px_metrics_sample(&b, "b", NULL, 0, 0.25);
    px_metrics_sample(&b, "c", NULL, 0, NAN);
    px_metrics_sample(&b, "d", NULL, 0, INFINITY);
    px_metrics_sample(&b, "e", NULL, 0, -INFINITY);
    px_metrics_sample(&b, "f", NULL, 0, 1e300);
    px_metrics_sample_u64(&b, "g", NULL, 0, UINT64_MAX);
    CU_ASSERT_STRING_EQUAL(b.p, "a 42\nb 0.25\nc NaN\nd +Inf\ne -Inf\nf 1e+300\n"
                                "g 18446744073709551615\n");
    px_metrics_buf_free(&b);
}

static void test_doubles_print_with_the_fewest_digits_that_round_trip(void)
{
    char out[40];
    px_metrics_format_double(out, sizeof(out), 0.1);
    CU_ASSERT_STRING_EQUAL(out, "0.1");
    px_metrics_format_double(out, sizeof(out), 0.032856);
    CU_ASSERT_STRING_EQUAL(out, "0.032856");
    double third = 1.0 / 3.0;
    px_metrics_format_double(out, sizeof(out), third);
    CU_ASSERT_EQUAL(strtod(out, NULL), third);
    px_metrics_format_double(out, sizeof(out), 5e-324);
    CU_ASSERT_EQUAL(strtod(out, NULL), 5e-324);
}

static void test_histogram_series_has_every_bucket_then_sum_and_count(void)
{
    px_metrics_hist_t h;
    memset(&h, 0, sizeof(h));
    px_metrics_hist_observe(&h, 0.003);
    px_metrics_hist_observe(&h, 20);
    px_metrics_hist_snap_t s;
    px_metrics_hist_snap_init(&s);
    px_metrics_hist_read(&h, &s);
    px_metrics_buf_t b;
    px_metrics_buf_init(&b, 1 << 16);
    px_metrics_label_t l = {"route", "primary"};
    px_metrics_histogram(&b, "fastnext_q_seconds", &l, 1, &s);
    CU_ASSERT_FALSE(b.failed);
    CU_ASSERT_PTR_NOT_NULL(strstr(b.p, "fastnext_q_seconds_bucket{route=\"primary\",le=\"0.0001\"} "
                                       "0\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(b.p, "fastnext_q_seconds_bucket{route=\"primary\",le=\"0.00025\"}"
                                       " 0\n"));
    CU_ASSERT_PTR_NOT_NULL(
        strstr(b.p, "fastnext_q_seconds_bucket{route=\"primary\",le=\"0.0025\"} 0\n"));
    CU_ASSERT_PTR_NOT_NULL(
        strstr(b.p, "fastnext_q_seconds_bucket{route=\"primary\",le=\"0.005\"} 1\n"));
    CU_ASSERT_PTR_NOT_NULL(
        strstr(b.p, "fastnext_q_seconds_bucket{route=\"primary\",le=\"10\"} 1\n"));
    CU_ASSERT_PTR_NOT_NULL(
        strstr(b.p, "fastnext_q_seconds_bucket{route=\"primary\",le=\"+Inf\"} 2\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(b.p, "fastnext_q_seconds_sum{route=\"primary\"} 20.003"));
    CU_ASSERT_PTR_NOT_NULL(strstr(b.p, "fastnext_q_seconds_count{route=\"primary\"} 2\n"));
    /* 17 buckets + sum + count lines, buckets first and in order */
    int lines = 0;
    for (const char *p = b.p; *p; p++)
        lines += *p == '\n';
    CU_ASSERT_EQUAL(lines, PX_METRICS_NBUCKETS + 3);
    CU_ASSERT(strstr(b.p, "le=\"+Inf\"") < strstr(b.p, "_sum"));
    CU_ASSERT(strstr(b.p, "_sum") < strstr(b.p, "_count"));
    px_metrics_buf_free(&b);
}

static void test_registry_exposition_has_every_route_cache_series_and_pool_wait(void)
{
    px_metrics_buf_t b;
    px_metrics_buf_init(&b, 1 << 20);
    px_metrics_write_histograms(&b);
    CU_ASSERT_FALSE(b.failed);
    CU_ASSERT_PTR_NOT_NULL(strstr(b.p, "# TYPE fastnext_query_duration_seconds histogram\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(b.p, "# TYPE fastnext_pool_wait_seconds histogram\n"));
    const char *routes[] = {"primary", "replica"}, *caches[] = {"hit", "miss", "bypass"};
    for (int r = 0; r < 2; r++) {
        for (int c = 0; c < 3; c++) {
            char want[160];
            snprintf(want, sizeof(want),
                     "fastnext_query_duration_seconds_count{route=\"%s\",cache=\"%s\"} ", routes[r],
                     caches[c]);
            CU_ASSERT_PTR_NOT_NULL(strstr(b.p, want));
        }
    }
    CU_ASSERT_PTR_NOT_NULL(strstr(b.p, "fastnext_pool_wait_seconds_count "));
    CU_ASSERT_PTR_NOT_NULL(strstr(b.p, "fastnext_pool_wait_seconds_bucket{le=\"+Inf\"} "));
    px_metrics_buf_free(&b);
}

static void test_utf8_length_accepts_valid_and_rejects_malformed_sequences(void)
{
    CU_ASSERT_EQUAL(px_metrics_utf8_len((const unsigned char *)"a", 1), 1);
    CU_ASSERT_EQUAL(px_metrics_utf8_len((const unsigned char *)"\xc3\xa9", 2), 2);
    CU_ASSERT_EQUAL(px_metrics_utf8_len((const unsigned char *)"\xe2\x82\xac", 3), 3);
    CU_ASSERT_EQUAL(px_metrics_utf8_len((const unsigned char *)"\xf0\x9f\x98\x80", 4), 4);
    CU_ASSERT_EQUAL(px_metrics_utf8_len((const unsigned char *)"\xc3", 1), 0);     /* cut */
    CU_ASSERT_EQUAL(px_metrics_utf8_len((const unsigned char *)"\x80", 1), 0);     /* stray */
    CU_ASSERT_EQUAL(px_metrics_utf8_len((const unsigned char *)"\xc0\xaf", 2), 0); /* overlong */
    CU_ASSERT_EQUAL(px_metrics_utf8_len((const unsigned char *)"\xed\xa0\x80", 3), 0); /* sur. */
    CU_ASSERT_EQUAL(px_metrics_utf8_len((const unsigned char *)"\xf4\x90\x80\x80", 4), 0);
}

static void test_cpu_percent_is_cpu_delta_over_wall_delta(void)
{
    CU_ASSERT_DOUBLE_EQUAL(px_metrics_cpu_percent(1.0, 10.0, 1.5, 11.0), 50.0, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(px_metrics_cpu_percent(0, 0, 3.0, 2.0), 150.0, 1e-9); /* 1.5 cores */
    CU_ASSERT_DOUBLE_EQUAL(px_metrics_cpu_percent(1, 5, 1, 5), 0, 1e-9);         /* no time */
    CU_ASSERT_DOUBLE_EQUAL(px_metrics_cpu_percent(2, 5, 1, 6), 0, 1e-9);         /* clamp */
}

static void test_process_reading_reports_memory_fds_and_cpu(void)
{
    px_metrics_process_t p;
    volatile double spin = 0;
    for (int i = 0; i < 2000000; i++)
        spin += i;
    px_metrics_process_read(&p);
    CU_ASSERT(p.cpu_seconds > 0);
    CU_ASSERT(p.rss_bytes > 1024 * 1024);
    CU_ASSERT(p.open_fds >= 3); /* stdin, stdout, stderr */
    FILE *f = tmpfile();
    px_metrics_process_t q;
    px_metrics_process_read(&q);
    CU_ASSERT_EQUAL(q.open_fds, p.open_fds + 1);
    fclose(f);
    CU_ASSERT(p.max_fds == -1 || p.max_fds >= 3);
    CU_ASSERT(p.start_time > 1.5e9);
    CU_ASSERT(px_metrics_now() > 0);
}

int main(void)
{
    static const struct {
        const char *name;
        CU_TestFunc fn;
    } tests[] = {
#define T(fn) {#fn, fn}
        T(test_observation_lands_in_first_bucket_whose_bound_is_not_below_it),
        T(test_negative_counts_as_zero_and_nan_is_ignored),
        T(test_bucket_bounds_are_increasing),
        T(test_reading_is_cumulative_and_count_equals_inf_bucket),
        T(test_reading_several_histograms_sums_them),
        T(test_registry_sums_worker_slots_and_shares_one_for_out_of_range_workers),
        T(test_registry_ignores_out_of_range_route_and_cache),
        T(test_concurrent_observers_lose_no_counts_and_readings_only_grow),
        T(test_buffer_failure_is_sticky_at_the_cap),
        T(test_buffer_printf_handles_long_output),
        T(test_label_values_are_escaped_and_invalid_utf8_replaced),
        T(test_family_writes_help_and_type_with_help_escaped),
        T(test_values_print_integers_exactly_and_nonfinite_as_prometheus_words),
        T(test_doubles_print_with_the_fewest_digits_that_round_trip),
        T(test_histogram_series_has_every_bucket_then_sum_and_count),
        T(test_registry_exposition_has_every_route_cache_series_and_pool_wait),
        T(test_utf8_length_accepts_valid_and_rejects_malformed_sequences),
        T(test_cpu_percent_is_cpu_delta_over_wall_delta),
        T(test_process_reading_reports_memory_fds_and_cpu),
#undef T
    };
    CU_pSuite suite;
    unsigned failed;

    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    suite = CU_add_suite("metrics", NULL, NULL);
    if (suite == NULL)
        return 2;
    for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++)
        if (CU_add_test(suite, tests[i].name, tests[i].fn) == NULL)
            return 2;
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    failed = CU_get_number_of_tests_failed() + CU_get_number_of_failures();
    CU_cleanup_registry();
    return failed == 0 ? 0 : 1;
}
