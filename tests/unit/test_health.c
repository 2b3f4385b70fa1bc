/*
 * Integration tests for proxy/health.c against a live primary and two
 * streaming replicas (scripts/stack.sh): every member is probed, a replica
 * whose replay is paused falls out of the read set after READ_REPLICA_MAX_LAG
 * and returns after resume, unreachable and hung members are reported down
 * without stalling the others, the primary down leaves the replicas usable,
 * a wrong password is reported (the primary stays "reachable" for readiness)
 * but never printed, pokes are prompt, and the function volatility catalog
 * reaches the classifier.
 *
 * Needs PX_PG_PORT, PX_PG_REPLICA1_PORT and PX_PG_REPLICA2_PORT (and the
 * stack's roles: fnx/fnx_pass, postgres trusted on 127.0.0.1). Without them
 * it prints SKIP and exits 0.
 *
 * The stack is shared with other tests: this file never stops a member. It
 * pauses replay on replica 1 and always resumes it, also on failure.
 */
#include "px.h"
#include "px_classify.h"
#include "px_config.h"
#include "px_health.h"

#include <CUnit/Basic.h>
#include <arpa/inet.h>
#include <errno.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static px_shared_t g_sh;
static int g_pg, g_r1, g_r2;

/* ---- helpers --------------------------------------------------------------- */

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* A configuration snapshot: primary port, replica list, password, max lag. */
static px_config_t *make_cfg(int primary_port, const char *replicas, const char *password,
                             const char *max_lag)
{
    char v[8][512];
    snprintf(v[0], sizeof v[0], "POSTGRES_SERVER=127.0.0.1");
    snprintf(v[1], sizeof v[1], "POSTGRES_PORT=%d", primary_port);
    snprintf(v[2], sizeof v[2], "POSTGRES_DB=fnx");
    snprintf(v[3], sizeof v[3], "POSTGRES_USER=fnx");
    snprintf(v[4], sizeof v[4], "POSTGRES_PASSWORD=%s", password);
    snprintf(v[5], sizeof v[5], "POSTGRES_READ_REPLICAS=%s", replicas);
    snprintf(v[6], sizeof v[6], "READ_REPLICA_MAX_LAG=%s", max_lag);
    char *envp[8];
    for (int i = 0; i < 7; i++)
        envp[i] = v[i];
    envp[7] = NULL;
    char err[256];
    px_config_t *cfg = px_config_load(NULL, envp, err, sizeof err);
    if (cfg == NULL)
        fprintf(stderr, "px_config_load: %s\n", err);
    return cfg;
}

static char g_replicas[128];

static px_config_t *default_cfg(void)
{
    return make_cfg(g_pg, g_replicas, "fnx_pass", "1");
}

/* Publish @p cfg as the current snapshot, as a reload would. */
static void set_cfg(px_config_t *cfg)
{
    pthread_mutex_lock(&g_sh.lock);
    px_config_t *old = g_sh.cfg;
    g_sh.cfg = cfg;
    pthread_mutex_unlock(&g_sh.lock);
    px_config_unref(old);
}

/* Run @p sql as @p user on 127.0.0.1:@p port, database fnx. False on error. */
static bool run_sql(int port, const char *user, const char *sql)
{
    char ci[256];
    snprintf(ci, sizeof ci,
             "host=127.0.0.1 port=%d dbname=fnx user=%s password=fnx_pass connect_timeout=5", port,
             user);
    PGconn *c = PQconnectdb(ci);
    bool ok = PQstatus(c) == CONNECTION_OK;
    if (!ok) {
        fprintf(stderr, "connect to %d: %s", port, PQerrorMessage(c));
    } else {
        PGresult *r = PQexec(c, sql);
        ok = PQresultStatus(r) == PGRES_TUPLES_OK || PQresultStatus(r) == PGRES_COMMAND_OK;
        if (!ok)
            fprintf(stderr, "%s: %s", sql, PQresultErrorMessage(r));
        PQclear(r);
    }
    PQfinish(c);
    return ok;
}

typedef bool (*pred_fn)(const px_member_status_t *m, int n, void *arg);

/* Poke and poll until @p pred holds or @p timeout_ms passes. */
static bool wait_for(pred_fn pred, void *arg, unsigned timeout_ms, px_member_status_t *out,
                     int *n_out)
{
    px_member_status_t m[PX_HEALTH_MAX_MEMBERS];
    uint64_t end = now_ms() + timeout_ms;
    for (;;) {
        int n = px_health_members(m, PX_HEALTH_MAX_MEMBERS);
        if (pred(m, n, arg)) {
            if (out != NULL)
                memcpy(out, m, sizeof m);
            if (n_out != NULL)
                *n_out = n;
            return true;
        }
        if (now_ms() > end) {
            if (out != NULL)
                memcpy(out, m, sizeof m);
            if (n_out != NULL)
                *n_out = n;
            return false;
        }
        px_health_poke();
        sleep_ms(150);
    }
}

static void dump(const px_member_status_t *m, int n)
{
    for (int i = 0; i < n; i++)
        fprintf(stderr,
                "  [%d] %s:%u role=%d up=%d rec=%d usable=%d promoted=%d lsn=%llx lag=%.2fs/%llub "
                "probes=%llu failures=%llu err='%s'\n",
                i, m[i].host, m[i].port, m[i].role, m[i].up, m[i].in_recovery,
                m[i].usable_for_reads, m[i].promoted, (unsigned long long)m[i].lsn,
                m[i].lag_seconds, (unsigned long long)m[i].lag_bytes,
                (unsigned long long)m[i].probes, (unsigned long long)m[i].failures,
                m[i].last_error);
}

static bool all_up(const px_member_status_t *m, int n, void *arg)
{
    int want = arg ? *(int *)arg : 3;
    if (n != want)
        return false;
    for (int i = 0; i < n; i++)
        if (!m[i].up || (i > 0 && !m[i].usable_for_reads))
            return false;
    return true;
}

/* ---- tests ------------------------------------------------------------------ */

static void test_start_rejects_null_and_double_start(void)
{
    CU_ASSERT_EQUAL(px_health_start(NULL), -EINVAL);
    CU_ASSERT_EQUAL(px_health_start(&g_sh), 0);
    CU_ASSERT_EQUAL(px_health_start(&g_sh), -EALREADY);
}

static void test_all_members_up(void)
{
    px_member_status_t m[PX_HEALTH_MAX_MEMBERS];
    int n = 0;
    bool ok = wait_for(all_up, NULL, 15000, m, &n);
    if (!ok)
        dump(m, n);
    CU_ASSERT_FATAL(ok);
    CU_ASSERT_EQUAL(m[0].role, PX_MEMBER_PRIMARY);
    CU_ASSERT_EQUAL(m[0].port, g_pg);
    CU_ASSERT_STRING_EQUAL(m[0].host, "127.0.0.1");
    CU_ASSERT(!m[0].in_recovery);
    CU_ASSERT(!m[0].usable_for_reads);
    CU_ASSERT(m[0].lsn > 0);
    for (int i = 1; i < 3; i++) {
        CU_ASSERT_EQUAL(m[i].role, PX_MEMBER_REPLICA);
        CU_ASSERT(m[i].in_recovery);
        CU_ASSERT(!m[i].promoted);
        CU_ASSERT(m[i].lsn > 0);
        CU_ASSERT(m[i].lag_seconds <= 1.0);
        CU_ASSERT_STRING_EQUAL(m[i].last_error, "");
    }
    CU_ASSERT_EQUAL(m[1].port, g_r1);
    CU_ASSERT_EQUAL(m[2].port, g_r2);
    for (int i = 0; i < 3; i++) {
        CU_ASSERT(m[i].last_ok_unix_ms > 0);
        CU_ASSERT(m[i].probes >= 1);
        CU_ASSERT(m[i].probe_ms >= 0 && m[i].probe_ms < 2000);
    }
    CU_ASSERT(px_health_primary_up());
    CU_ASSERT(px_health_primary_lsn() > 0);
    CU_ASSERT_EQUAL(px_health_usable_mask(), 3u);
    CU_ASSERT(px_health_member_lsn(0) > 0);
    CU_ASSERT(px_health_member_lsn(1) > 0);
    CU_ASSERT(px_health_member_lsn(2) > 0);
    CU_ASSERT_EQUAL(px_health_member_lsn(-1), 0);
    CU_ASSERT_EQUAL(px_health_member_lsn(PX_HEALTH_MAX_MEMBERS), 0);
    CU_ASSERT(px_health_generation() > 0);
    /* a buffer smaller than the member list */
    CU_ASSERT_EQUAL(px_health_members(m, 2), 2);
    CU_ASSERT_EQUAL(px_health_members(m, 0), 0);
    CU_ASSERT_EQUAL(px_health_members(NULL, 3), 0);
}

static bool r1_lagging(const px_member_status_t *m, int n, void *arg)
{
    (void)arg;
    /* keep WAL coming so the paused replica falls further behind */
    run_sql(g_pg, "fnx", "INSERT INTO px_health_lag VALUES (1)");
    return n == 3 && m[1].up && !m[1].usable_for_reads && m[1].lag_seconds > 1.0 &&
           m[1].lag_bytes > 0;
}

static bool r1_back(const px_member_status_t *m, int n, void *arg)
{
    (void)arg;
    return n == 3 && m[1].up && m[1].usable_for_reads && m[1].lag_seconds == 0 &&
           m[1].lag_bytes == 0;
}

static void test_paused_replica_drops_out_and_returns(void)
{
    CU_ASSERT_FATAL(run_sql(g_pg, "fnx", "CREATE TABLE IF NOT EXISTS px_health_lag (x int)"));
    CU_ASSERT_FATAL(wait_for(all_up, NULL, 15000, NULL, NULL));
    CU_ASSERT_FATAL(run_sql(g_r1, "postgres", "SELECT pg_wal_replay_pause()"));
    px_member_status_t m[PX_HEALTH_MAX_MEMBERS];
    int n = 0;
    bool ok = wait_for(r1_lagging, NULL, 20000, m, &n);
    if (!ok)
        dump(m, n);
    CU_ASSERT(ok);
    if (ok) {
        CU_ASSERT(m[1].in_recovery);
        CU_ASSERT(m[2].usable_for_reads); /* the other replica is unaffected */
        CU_ASSERT(m[1].lsn < m[0].lsn);
        CU_ASSERT(!(px_health_usable_mask() & 1u));
        CU_ASSERT(px_health_usable_mask() & 2u);
        CU_ASSERT(px_health_member_lsn(1) < px_health_primary_lsn());
    }
    CU_ASSERT_FATAL(run_sql(g_r1, "postgres", "SELECT pg_wal_replay_resume()"));
    ok = wait_for(r1_back, NULL, 20000, m, &n);
    if (!ok)
        dump(m, n);
    CU_ASSERT(ok);
    CU_ASSERT_EQUAL(px_health_usable_mask(), 3u);
    CU_ASSERT(px_health_member_lsn(1) >= px_health_member_lsn(0) || px_health_member_lsn(1) > 0);
    run_sql(g_pg, "fnx", "DROP TABLE IF EXISTS px_health_lag");
}

static bool fourth_down(const px_member_status_t *m, int n, void *arg)
{
    (void)arg;
    return n == 4 && m[3].probes >= 2 && !m[3].up && m[3].failures >= 2 && m[1].up && m[2].up;
}

static void test_unreachable_member_is_down_with_error(void)
{
    char reps[160];
    snprintf(reps, sizeof reps, "%s,127.0.0.1:1", g_replicas);
    set_cfg(make_cfg(g_pg, reps, "fnx_pass", "1")); /* a reload adds a replica */
    px_member_status_t m[PX_HEALTH_MAX_MEMBERS];
    int n = 0;
    bool ok = wait_for(fourth_down, NULL, 15000, m, &n);
    if (!ok)
        dump(m, n);
    CU_ASSERT_FATAL(ok);
    CU_ASSERT_EQUAL(m[3].port, 1);
    CU_ASSERT_EQUAL(m[3].role, PX_MEMBER_REPLICA);
    CU_ASSERT(!m[3].usable_for_reads);
    CU_ASSERT(strlen(m[3].last_error) > 0);
    CU_ASSERT(strstr(m[3].last_error, "connect") != NULL);
    CU_ASSERT(strchr(m[3].last_error, '\n') == NULL);
    CU_ASSERT_EQUAL(m[3].last_ok_unix_ms, 0);
    CU_ASSERT(!(px_health_usable_mask() & 4u));
    CU_ASSERT(px_health_primary_up());

    set_cfg(default_cfg()); /* and a reload removes it again */
    ok = wait_for(all_up, NULL, 15000, m, &n);
    CU_ASSERT(ok);
    CU_ASSERT_EQUAL(n, 3);
}

typedef struct hung_arg {
    int port;
} hung_arg_t;

static bool hung_down(const px_member_status_t *m, int n, void *arg)
{
    hung_arg_t *h = arg;
    return n == 3 && m[2].port == h->port && m[2].probes >= 1 && !m[2].up &&
           strstr(m[2].last_error, "timed out") != NULL;
}

/* A member that accepts TCP but never answers must cost one deadline per
 * round, not stall the prober. */
static void test_hung_member_does_not_stall_the_others(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    CU_ASSERT_FATAL(fd >= 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof a;
    CU_ASSERT_FATAL(bind(fd, (struct sockaddr *)&a, sizeof a) == 0);
    CU_ASSERT_FATAL(listen(fd, 16) == 0);
    CU_ASSERT_FATAL(getsockname(fd, (struct sockaddr *)&a, &al) == 0);
    hung_arg_t h = {ntohs(a.sin_port)};
    char reps[160];
    snprintf(reps, sizeof reps, "127.0.0.1:%d,127.0.0.1:%d", g_r1, h.port);
    set_cfg(make_cfg(g_pg, reps, "fnx_pass", "1"));

    px_member_status_t m[PX_HEALTH_MAX_MEMBERS];
    int n = 0;
    bool ok = wait_for(hung_down, &h, 15000, m, &n);
    if (!ok)
        dump(m, n);
    CU_ASSERT(ok);
    /* Rounds keep coming (one per ~2 s deadline) and the healthy members stay up. */
    uint64_t g0 = px_health_generation(), t0 = now_ms();
    uint64_t probes0 = m[1].probes;
    while (px_health_generation() < g0 + 2 && now_ms() - t0 < 8000)
        sleep_ms(100);
    uint64_t took = now_ms() - t0;
    CU_ASSERT(px_health_generation() >= g0 + 2);
    CU_ASSERT(took < 7000);
    n = px_health_members(m, PX_HEALTH_MAX_MEMBERS);
    CU_ASSERT(m[0].up);
    CU_ASSERT(m[1].up && m[1].usable_for_reads);
    CU_ASSERT(m[1].probes >= probes0 + 2);
    CU_ASSERT(!m[2].up);
    CU_ASSERT(m[2].probe_ms < 3000);
    close(fd);
    set_cfg(default_cfg());
    CU_ASSERT(wait_for(all_up, NULL, 15000, NULL, NULL));
}

static bool primary_down(const px_member_status_t *m, int n, void *arg)
{
    (void)arg;
    return n == 3 && !m[0].up && m[0].failures >= 1 && m[1].up && m[2].up &&
           m[1].usable_for_reads && m[2].usable_for_reads && !px_health_primary_up();
}

static void test_primary_down_replicas_still_usable(void)
{
    set_cfg(make_cfg(1, g_replicas, "fnx_pass", "1")); /* nothing listens on port 1 */
    px_member_status_t m[PX_HEALTH_MAX_MEMBERS];
    int n = 0;
    bool ok = wait_for(primary_down, NULL, 15000, m, &n);
    if (!ok)
        dump(m, n);
    CU_ASSERT(ok);
    CU_ASSERT(strlen(m[0].last_error) > 0);
    CU_ASSERT(!m[0].reachable);
    CU_ASSERT_EQUAL(px_health_primary_lsn(), 0);
    CU_ASSERT_EQUAL(px_health_member_lsn(0), 0);
    CU_ASSERT_EQUAL(px_health_usable_mask(), 3u);
    CU_ASSERT(!m[1].promoted && !m[2].promoted);
    set_cfg(default_cfg());
    ok = wait_for(all_up, NULL, 15000, m, &n);
    CU_ASSERT(ok);
    CU_ASSERT(px_health_primary_up());
}

static bool auth_failed(const px_member_status_t *m, int n, void *arg)
{
    (void)arg;
    return n == 3 && !m[0].up && !m[1].up && !m[2].up && m[0].failures >= 1 && m[1].failures >= 1;
}

static void test_wrong_password_is_reported_never_printed(void)
{
    static const char secret[] = "wrong_secret_4711";
    /* Capture stderr (the log) for the duration. */
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    FILE *tmp = tmpfile();
    CU_ASSERT_FATAL(saved >= 0 && tmp != NULL);
    dup2(fileno(tmp), STDERR_FILENO);

    set_cfg(make_cfg(g_pg, g_replicas, secret, "1"));
    px_member_status_t m[PX_HEALTH_MAX_MEMBERS];
    int n = 0;
    bool ok = wait_for(auth_failed, NULL, 15000, m, &n);

    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    if (!ok)
        dump(m, n);
    CU_ASSERT(ok);
    for (int i = 0; i < n; i++) {
        CU_ASSERT(strstr(m[i].last_error, secret) == NULL);
        CU_ASSERT(strstr(m[i].last_error, "password") != NULL ||
                  strstr(m[i].last_error, "auth") != NULL);
    }
    /* The primary answered (and refused the login): reachable, so ready;
     * but not up, so nothing may be routed by its LSN or role. */
    CU_ASSERT(m[0].reachable);
    CU_ASSERT(px_health_primary_up());
    CU_ASSERT_EQUAL(px_health_primary_lsn(), 0);
    CU_ASSERT_EQUAL(px_health_usable_mask(), 0u);
    char buf[65536];
    rewind(tmp);
    size_t got = fread(buf, 1, sizeof buf - 1, tmp);
    buf[got] = '\0';
    fclose(tmp);
    CU_ASSERT(strstr(buf, secret) == NULL);
    CU_ASSERT(got > 0); /* the transitions were logged */

    set_cfg(default_cfg());
    CU_ASSERT(wait_for(all_up, NULL, 15000, NULL, NULL));
}

static void test_poke_is_prompt(void)
{
    uint64_t best = UINT64_MAX;
    for (int k = 0; k < 3; k++) {
        sleep_ms(150);
        uint64_t g = px_health_generation(), t0 = now_ms();
        px_health_poke();
        while (px_health_generation() == g && now_ms() - t0 < 3000)
            sleep_ms(5);
        uint64_t took = now_ms() - t0;
        if (took < best)
            best = took;
    }
    CU_ASSERT(best < 500); /* the period is 1000 ms */
}

static bool vol_is(const char *sql, px_class_t want)
{
    px_classify_result_t r;
    px_classify(sql, strlen(sql), &r);
    return r.cls == want;
}

static bool wait_class(const char *sql, px_class_t want, unsigned timeout_ms)
{
    uint64_t end = now_ms() + timeout_ms;
    while (!vol_is(sql, want)) {
        if (now_ms() > end)
            return false;
        sleep_ms(100);
    }
    return true;
}

static void test_catalog_reaches_the_classifier(void)
{
    uint64_t end = now_ms() + 15000;
    while (!px_classify_have_volatility() && now_ms() < end)
        sleep_ms(100);
    CU_ASSERT_FATAL(px_classify_have_volatility());
    CU_ASSERT(vol_is("SELECT pg_is_in_recovery()", PX_CLASS_READ));
    CU_ASSERT(vol_is("SELECT lower(datname) FROM pg_database", PX_CLASS_READ));
    CU_ASSERT(vol_is("SELECT nextval('s')", PX_CLASS_WRITE));
    CU_ASSERT(vol_is("SELECT no_such_function_px()", PX_CLASS_UNKNOWN));

    CU_ASSERT_FATAL(run_sql(g_pg, "fnx",
                            "CREATE OR REPLACE FUNCTION px_health_fn() RETURNS int "
                            "LANGUAGE sql VOLATILE AS 'SELECT 1'"));
    px_health_refresh_catalog();
    CU_ASSERT(wait_class("SELECT px_health_fn()", PX_CLASS_WRITE, 10000));
    CU_ASSERT(wait_class("SELECT public.px_health_fn()", PX_CLASS_WRITE, 1000));
    CU_ASSERT_FATAL(run_sql(g_pg, "fnx", "ALTER FUNCTION px_health_fn() STABLE"));
    px_health_refresh_catalog();
    CU_ASSERT(wait_class("SELECT px_health_fn()", PX_CLASS_READ, 10000));
    run_sql(g_pg, "fnx", "DROP FUNCTION IF EXISTS px_health_fn()");
}

static void test_stop_and_restart(void)
{
    px_health_stop();
    px_health_stop(); /* harmless */
    px_member_status_t m[PX_HEALTH_MAX_MEMBERS];
    CU_ASSERT_EQUAL(px_health_members(m, PX_HEALTH_MAX_MEMBERS), 3); /* last snapshot stays */
    CU_ASSERT_EQUAL(px_health_start(&g_sh), 0);
    CU_ASSERT(px_health_primary_up()); /* true until the first round ends */
    CU_ASSERT(wait_for(all_up, NULL, 15000, NULL, NULL));
}

/* ---- runner ---------------------------------------------------------------------- */

static int suite_init(void)
{
    pthread_mutex_init(&g_sh.lock, NULL);
    snprintf(g_replicas, sizeof g_replicas, "127.0.0.1:%d,127.0.0.1:%d", g_r1, g_r2);
    /* a previous run that died mid-test may have left replay paused */
    run_sql(g_r1, "postgres", "SELECT pg_wal_replay_resume() WHERE pg_is_wal_replay_paused()");
    g_sh.cfg = default_cfg();
    return g_sh.cfg != NULL ? 0 : 1;
}

static int suite_cleanup(void)
{
    run_sql(g_r1, "postgres", "SELECT pg_wal_replay_resume() WHERE pg_is_wal_replay_paused()");
    px_health_stop();
    set_cfg(NULL);
    pthread_mutex_destroy(&g_sh.lock);
    px_classify_set_volatility(NULL);
    px_classify_thread_exit();
    return 0;
}

typedef struct {
    const char *name;
    void (*fn)(void);
} test_entry_t;

#define TE(fn)                                                                                     \
    {                                                                                              \
#fn, fn                                                                                    \
    }

static const test_entry_t tests[] = {
    TE(test_start_rejects_null_and_double_start),
    TE(test_all_members_up),
    TE(test_paused_replica_drops_out_and_returns),
    TE(test_unreachable_member_is_down_with_error),
    TE(test_hung_member_does_not_stall_the_others),
    TE(test_primary_down_replicas_still_usable),
    TE(test_wrong_password_is_reported_never_printed),
    TE(test_poke_is_prompt),
    TE(test_catalog_reaches_the_classifier),
    TE(test_stop_and_restart),
};

static int env_port(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? atoi(v) : 0;
}

int main(void)
{
    g_pg = env_port("PX_PG_PORT");
    g_r1 = env_port("PX_PG_REPLICA1_PORT");
    g_r2 = env_port("PX_PG_REPLICA2_PORT");
    if (g_pg <= 0 || g_r1 <= 0 || g_r2 <= 0) {
        printf("SKIP: test_health needs a live primary and two replicas "
               "(PX_PG_PORT, PX_PG_REPLICA1_PORT, PX_PG_REPLICA2_PORT; see scripts/stack.sh)\n");
        return 0;
    }
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    CU_pSuite s = CU_add_suite("health/live", suite_init, suite_cleanup);
    if (s == NULL) {
        CU_cleanup_registry();
        return 2;
    }
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
        if (CU_add_test(s, tests[i].name, tests[i].fn) == NULL) {
            CU_cleanup_registry();
            return 2;
        }
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed() +
                      CU_get_number_of_suites_failed();
    CU_cleanup_registry();
    return failed == 0 ? 0 : 1;
}
