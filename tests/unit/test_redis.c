/*
 * Integration tests for proxy/redis.c against the test stack's real servers
 * (scripts/stack.sh): the single Redis (PX_REDIS_PORT) and the 6-node Redis Cluster
 * (PX_REDIS_CLUSTER_NODES, 3 masters + 3 replicas). Each test runs its own libuv loop
 * with deadlines, counts callbacks exactly, and ends by freeing the client and checking
 * that the loop closes (no handle left behind).
 *
 * Covered: GET/SET/DEL round trips, NIL, binary values with NUL bytes, TTL expiry,
 * publish/subscribe and re-subscription after CLIENT KILL, fast failure against a port
 * where nothing listens, timeouts against a server that never answers (and the drop of
 * its silent connection), the in-flight cap, cancel, free with commands in flight (and
 * from a callback), the prefix flush; cluster: keys of all three masters, MOVED after
 * CLUSTER SETSLOT ... NODE, ASK during a slot migration, a manual CLUSTER FAILOVER under
 * traffic (failed back afterwards), reconnection after CLIENT KILL of every connection, a
 * CLIENT PAUSEd master timing out without holding up the others, a slot map naming an
 * unreachable master (a fake node), pub/sub across nodes, the flush; key slots against
 * CLUSTER KEYSLOT.
 *
 * Needs PX_REDIS_PORT and PX_REDIS_CLUSTER_NODES (scripts/with-stack.sh exports them);
 * without them it fails. The stack is shared: keys carry this process's pid, kills
 * target our own connections by client name, one master is paused for 1.3 s, and every
 * slot moved or failed over is put back (ctest: RESOURCE_LOCK px_redis_cluster).
 * Optional: argv[1] runs only the tests whose name contains it; PX_TEST_LOG_LEVEL=debug
 * shows the module's log.
 */
#include "px_log.h"
#include "px_redis.h"

#include <CUnit/Basic.h>
#include <arpa/inet.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

static int g_port;          /* PX_REDIS_PORT */
static const char *g_seeds; /* PX_REDIS_CLUSTER_NODES */
static int g_cports[16];    /* the cluster's ports */
static int g_ncports;
static uv_loop_t g_loop;

/* ---- helpers --------------------------------------------------------------------- */

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void tick_cb(uv_timer_t *t)
{
    (void)t;
}

/* Run the loop until done(arg) or ms pass; a 5 ms ticker keeps it waking up. */
static bool spin(bool (*done)(void *), void *arg, unsigned ms)
{
    uv_timer_t t;
    uv_timer_init(&g_loop, &t);
    uv_timer_start(&t, tick_cb, 5, 5);
    uint64_t end = now_ms() + ms;
    bool ok;
    while (!(ok = done != NULL && done(arg)) && now_ms() < end)
        uv_run(&g_loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&g_loop, UV_RUN_NOWAIT);
    return ok;
}

static void spin_ms(unsigned ms)
{
    (void)spin(NULL, NULL, ms);
}

static void loop_begin(void)
{
    CU_ASSERT_FATAL(uv_loop_init(&g_loop) == 0);
}

static bool loop_idle(void *arg)
{
    (void)arg;
    return !uv_loop_alive(&g_loop);
}

/* After px_redis_free: every handle must close promptly and the loop must close. */
static void loop_end(void)
{
    uint64_t end = now_ms() + 3000;
    while (uv_loop_alive(&g_loop) && now_ms() < end)
        uv_run(&g_loop, UV_RUN_NOWAIT), usleep(1000);
    CU_ASSERT(loop_idle(NULL));
    CU_ASSERT_EQUAL(uv_loop_close(&g_loop), 0);
}

static px_redis_t *single(uint16_t port, uint32_t cmd_timeout)
{
    px_redis_config_t c;
    px_redis_config_defaults(&c);
    c.host = "127.0.0.1";
    c.port = port;
    c.command_timeout_ms = cmd_timeout;
    c.retry_min_ms = 50;
    c.retry_max_ms = 400;
    return px_redis_new(&g_loop, &c);
}

static px_redis_t *cluster(void)
{
    px_redis_config_t c;
    px_redis_config_defaults(&c);
    c.cluster_nodes = g_seeds;
    c.command_timeout_ms = 1000; /* a loaded CI machine (ASan, parallel tests) */
    c.retry_min_ms = 50;
    c.retry_max_ms = 400;
    return px_redis_new(&g_loop, &c);
}

static bool is_available(void *arg)
{
    return px_redis_available(arg);
}

typedef struct got {
    int calls;
    px_redis_status_t st;
    char *data;
    size_t len;
    uint64_t at;
} got_t;

static void got_cb(void *arg, px_redis_status_t st, const char *d, size_t n)
{
    got_t *g = arg;
    g->calls++;
    g->st = st;
    g->at = now_ms();
    free(g->data);
    g->data = NULL;
    g->len = n;
    if (d != NULL) {
        g->data = malloc(n + 1);
        memcpy(g->data, d, n);
        g->data[n] = '\0';
    }
}

static void got_reset(got_t *g)
{
    free(g->data);
    memset(g, 0, sizeof *g);
}

static bool got_called(void *arg)
{
    return ((got_t *)arg)->calls > 0;
}

/* GET and wait for the answer; the result is in *g. */
static void get_wait(px_redis_t *r, const char *key, size_t klen, got_t *g)
{
    got_reset(g);
    (void)px_redis_get(r, key, klen, got_cb, g);
    CU_ASSERT(spin(got_called, g, 5000));
    CU_ASSERT_EQUAL(g->calls, 1);
}

static bool get_is(px_redis_t *r, const char *key, const char *want)
{
    got_t g = {0};
    get_wait(r, key, strlen(key), &g);
    bool ok = want == NULL ? g.st == PX_REDIS_NIL
                           : g.st == PX_REDIS_OK && g.len == strlen(want) &&
                                 memcmp(g.data, want, g.len) == 0;
    if (!ok)
        fprintf(stderr, "GET %s: %s '%.*s' (want %s)\n", key, px_redis_status_to_str(g.st),
                (int)g.len, g.data ? g.data : "", want ? want : "nil");
    got_reset(&g);
    return ok;
}

/* A key of ours: "px-test:<pid>:<name>". */
static const char *key(const char *name)
{
    static char buf[8][160];
    static int i;
    char *b = buf[i++ % 8];
    snprintf(b, sizeof buf[0], "px-test:%d:%s", (int)getpid(), name);
    return b;
}

/* ---- raw (synchronous hiredis) access to the servers --------------------------- */

static redisContext *raw(int port)
{
    struct timeval tv = {2, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
    if (c == NULL || c->err) {
        fprintf(stderr, "raw connect :%d: %s\n", port, c ? c->errstr : "oom");
        if (c != NULL)
            redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, tv);
    return c;
}

/* One command on a fresh connection; the reply (free it) or NULL. */
static redisReply *rawcmd(int port, const char *fmt, ...)
{
    redisContext *c = raw(port);
    if (c == NULL)
        return NULL;
    va_list ap;
    va_start(ap, fmt);
    redisReply *rp = redisvCommand(c, fmt, ap);
    va_end(ap);
    redisFree(c);
    return rp;
}

static bool rawok(int port, const char *fmt, ...)
{
    redisContext *c = raw(port);
    if (c == NULL)
        return false;
    va_list ap;
    va_start(ap, fmt);
    redisReply *rp = redisvCommand(c, fmt, ap);
    va_end(ap);
    redisFree(c);
    bool ok = rp != NULL && rp->type != REDIS_REPLY_ERROR;
    if (rp != NULL && rp->type == REDIS_REPLY_ERROR)
        fprintf(stderr, ":%d %s: %s\n", port, fmt, rp->str);
    if (rp != NULL)
        freeReplyObject(rp);
    return ok;
}

/* The port of the master serving @p slot according to node @p at (0 if unknown). */
static int slot_master_at(int at, int slot)
{
    redisReply *rp = rawcmd(at, "CLUSTER SLOTS");
    int port = 0;
    if (rp != NULL && rp->type == REDIS_REPLY_ARRAY) {
        for (size_t j = 0; j < rp->elements; j++) {
            redisReply *e = rp->element[j];
            if (slot >= e->element[0]->integer && slot <= e->element[1]->integer)
                port = (int)e->element[2]->element[1]->integer;
        }
    }
    if (rp)
        freeReplyObject(rp);
    return port;
}

/* The cluster port of the master serving @p slot (0 if unknown), via CLUSTER SLOTS. */
static int slot_master(int slot)
{
    for (int i = 0; i < g_ncports; i++) {
        int port = slot_master_at(g_cports[i], slot);
        if (port != 0)
            return port;
    }
    return 0;
}

static bool node_id(int port, char *out, size_t n)
{
    redisReply *rp = rawcmd(port, "CLUSTER MYID");
    bool ok = rp != NULL && rp->type == REDIS_REPLY_STRING;
    if (ok)
        snprintf(out, n, "%s", rp->str);
    if (rp)
        freeReplyObject(rp);
    return ok;
}

static bool is_master(int port)
{
    redisReply *rp = rawcmd(port, "ROLE");
    bool m = rp != NULL && rp->type == REDIS_REPLY_ARRAY && rp->elements > 0 &&
             strcmp(rp->element[0]->str, "master") == 0;
    if (rp)
        freeReplyObject(rp);
    return m;
}

/* The port of a replica of the master on @p port (0 if none). */
static int replica_of(int port)
{
    char id[64];
    if (!node_id(port, id, sizeof id))
        return 0;
    redisReply *rp = rawcmd(port, "CLUSTER REPLICAS %s", id);
    int rport = 0;
    if (rp != NULL && rp->type == REDIS_REPLY_ARRAY && rp->elements > 0) {
        /* "<id> 127.0.0.1:<port>@<bus> slave <master> ..." */
        const char *colon = strchr(rp->element[0]->str, ':');
        if (colon != NULL)
            rport = atoi(colon + 1);
    }
    if (rp)
        freeReplyObject(rp);
    return rport;
}

static bool cluster_all_ok(void *arg)
{
    (void)arg;
    for (int i = 0; i < g_ncports; i++) {
        redisReply *rp = rawcmd(g_cports[i], "CLUSTER INFO");
        bool ok = rp != NULL && rp->type == REDIS_REPLY_STRING &&
                  strstr(rp->str, "cluster_state:ok") != NULL &&
                  strstr(rp->str, "cluster_slots_ok:16384") != NULL;
        if (rp)
            freeReplyObject(rp);
        if (!ok)
            return false;
    }
    return true;
}

/* Poll (sleeping, outside any loop) until pred() or ms pass. */
static bool poll_until(bool (*pred)(void *), void *arg, unsigned ms)
{
    uint64_t end = now_ms() + ms;
    while (!pred(arg)) {
        if (now_ms() >= end)
            return false;
        usleep(50 * 1000);
    }
    return true;
}

/* A port where nothing listens (bound, then closed). */
static int dead_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof a;
    CU_ASSERT(bind(fd, (struct sockaddr *)&a, sizeof a) == 0);
    CU_ASSERT(getsockname(fd, (struct sockaddr *)&a, &l) == 0);
    close(fd);
    return ntohs(a.sin_port);
}

/* ---- a server that accepts and reads but never answers (or answers every read with
 * one canned reply: a fake cluster node) ------------------------------------------- */

typedef struct silent {
    uv_tcp_t srv;
    int port;
    int accepted, open;
    const char *reply; /* NULL: silent */
    int reads;
} silent_t;

static void silent_close_cb(uv_handle_t *h)
{
    silent_t *s = h->data;
    s->open--;
    free(h);
}

static void silent_alloc(uv_handle_t *h, size_t sz, uv_buf_t *b)
{
    static char buf[4096];
    (void)h;
    (void)sz;
    *b = uv_buf_init(buf, sizeof buf);
}

static void silent_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    silent_t *s = st->data;
    (void)b;
    if (n < 0 && !uv_is_closing((uv_handle_t *)st))
        uv_close((uv_handle_t *)st, silent_close_cb);
    if (n > 0 && s->reply != NULL) {
        s->reads++;
        uv_buf_t out = uv_buf_init((char *)s->reply, (unsigned)strlen(s->reply));
        CU_ASSERT(uv_try_write(st, &out, 1) == (int)out.len);
    }
}

static void silent_conn(uv_stream_t *srv, int status)
{
    silent_t *s = srv->data;
    if (status < 0)
        return;
    uv_tcp_t *c = malloc(sizeof *c);
    uv_tcp_init(srv->loop, c);
    c->data = s;
    if (uv_accept(srv, (uv_stream_t *)c) == 0) {
        s->accepted++;
        s->open++;
        uv_read_start((uv_stream_t *)c, silent_alloc, silent_read);
    } else {
        s->open++;
        uv_close((uv_handle_t *)c, silent_close_cb);
    }
}

static void silent_start(silent_t *s)
{
    memset(s, 0, sizeof *s);
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", 0, &a);
    uv_tcp_init(&g_loop, &s->srv);
    s->srv.data = s;
    CU_ASSERT_FATAL(uv_tcp_bind(&s->srv, (struct sockaddr *)&a, 0) == 0);
    CU_ASSERT_FATAL(uv_listen((uv_stream_t *)&s->srv, 16, silent_conn) == 0);
    int l = sizeof a;
    uv_tcp_getsockname(&s->srv, (struct sockaddr *)&a, &l);
    s->port = ntohs(a.sin_port);
}

static void silent_walk_close(uv_handle_t *h, void *arg)
{
    if (h->data == arg && h->type == UV_TCP && !uv_is_closing(h) &&
        h != (uv_handle_t *)&((silent_t *)arg)->srv)
        uv_close(h, silent_close_cb);
}

static void silent_stop(silent_t *s)
{
    uv_walk(&g_loop, silent_walk_close, s);
    uv_close((uv_handle_t *)&s->srv, NULL);
}

/* ---- tests: pure ---------------------------------------------------------------- */

static void test_key_slots_match_redis(void)
{
    /* The spec's test vector: CRC16("123456789") = 0x31C3 */
    CU_ASSERT_EQUAL(px_redis_key_slot("123456789", 9), 0x31C3);
    CU_ASSERT_EQUAL(px_redis_key_slot("{user1000}.following", 20),
                    px_redis_key_slot("{user1000}.followers", 20));
    CU_ASSERT_EQUAL(px_redis_key_slot("{user1000}.following", 20),
                    px_redis_key_slot("user1000", 8));
    const char *keys[] = {"foo",
                          "bar",
                          "{}foo",
                          "foo{}{bar}",
                          "foo{{bar}}zap",
                          "foo{bar}{zap}",
                          "{",
                          "}",
                          "a{b",
                          "",
                          "px-cache:0123456789abcdef",
                          "\xff\x00{x}"};
    size_t lens[] = {3, 3, 5, 10, 13, 13, 1, 1, 3, 0, 25, 5};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        redisReply *rp = rawcmd(g_cports[0], "CLUSTER KEYSLOT %b", keys[i], lens[i]);
        CU_ASSERT_FATAL(rp != NULL && rp->type == REDIS_REPLY_INTEGER);
        if (rp->integer != px_redis_key_slot(keys[i], lens[i]))
            fprintf(stderr, "slot of key #%zu: redis %lld, ours %u\n", i, rp->integer,
                    px_redis_key_slot(keys[i], lens[i]));
        CU_ASSERT_EQUAL(rp->integer, px_redis_key_slot(keys[i], lens[i]));
        freeReplyObject(rp);
    }
}

static void test_bad_config_is_refused(void)
{
    loop_begin();
    px_redis_config_t c;
    px_redis_config_defaults(&c);
    CU_ASSERT_PTR_NULL(px_redis_new(&g_loop, &c)); /* no host, no cluster */
    c.cluster_nodes = "nohostport";
    CU_ASSERT_PTR_NULL(px_redis_new(&g_loop, &c));
    c.cluster_nodes = "127.0.0.1:0";
    CU_ASSERT_PTR_NULL(px_redis_new(&g_loop, &c));
    c.cluster_nodes = NULL;
    c.host = "127.0.0.1";
    c.command_timeout_ms = 0;
    CU_ASSERT_PTR_NULL(px_redis_new(&g_loop, &c));
    c.command_timeout_ms = 50;
    c.client_name = "has space";
    CU_ASSERT_PTR_NULL(px_redis_new(&g_loop, &c));
    loop_end();
}

/* ---- tests: single node ---------------------------------------------------------- */

static void test_set_then_get_returns_the_value(void)
{
    loop_begin();
    px_redis_t *r = single((uint16_t)g_port, 1000);
    CU_ASSERT_FATAL(r != NULL);
    CU_ASSERT(spin(is_available, r, 3000));
    CU_ASSERT(px_redis_set(r, key("a"), strlen(key("a")), "hello", 5, 60));
    CU_ASSERT(get_is(r, key("a"), "hello"));
    CU_ASSERT(px_redis_set(r, key("a"), strlen(key("a")), "world!", 6, 0)); /* no TTL */
    CU_ASSERT(get_is(r, key("a"), "world!"));
    redisReply *rp = rawcmd(g_port, "TTL %s", key("a"));
    CU_ASSERT(rp != NULL && rp->type == REDIS_REPLY_INTEGER && rp->integer == -1);
    if (rp)
        freeReplyObject(rp);
    CU_ASSERT(px_redis_del(r, key("a"), strlen(key("a"))));
    CU_ASSERT(get_is(r, key("a"), NULL));
    px_redis_stats_t st;
    px_redis_stats(r, &st);
    CU_ASSERT_EQUAL(st.commands, 6);
    CU_ASSERT_EQUAL(st.errors, 0);
    CU_ASSERT_EQUAL(st.timeouts, 0);
    CU_ASSERT(st.bytes_out > 60 && st.bytes_in > 20);
    CU_ASSERT_EQUAL(st.latency_samples, 6);
    px_redis_free(r);
    loop_end();
}

static void test_missing_key_is_nil(void)
{
    loop_begin();
    px_redis_t *r = single((uint16_t)g_port, 1000);
    CU_ASSERT_FATAL(r != NULL);
    /* issued at once, before the connection is up: sent when it completes */
    got_t g = {0};
    CU_ASSERT(px_redis_get(r, key("missing"), strlen(key("missing")), got_cb, &g) != 0);
    CU_ASSERT_EQUAL(g.calls, 0);
    CU_ASSERT(spin(got_called, &g, 3000));
    CU_ASSERT_EQUAL(g.calls, 1);
    CU_ASSERT_EQUAL(g.st, PX_REDIS_NIL);
    CU_ASSERT_PTR_NULL(g.data);
    got_reset(&g);
    px_redis_free(r);
    loop_end();
}

static void test_binary_values_with_nul_bytes_round_trip(void)
{
    loop_begin();
    px_redis_t *r = single((uint16_t)g_port, 1000);
    CU_ASSERT_FATAL(r != NULL);
    CU_ASSERT(spin(is_available, r, 3000));
    char k[64];
    int kl = snprintf(k, sizeof k, "px-test:%d:bin", (int)getpid());
    k[kl++] = '\0'; /* a NUL inside the key too */
    k[kl++] = '{';
    k[kl++] = '\r';
    k[kl++] = '\n';
    size_t vl = 300000;
    unsigned char *v = malloc(vl);
    for (size_t i = 0; i < vl; i++)
        v[i] = (unsigned char)(i * 7 + (i >> 8));
    v[0] = 0;
    v[vl - 1] = 0;
    CU_ASSERT(px_redis_set(r, k, (size_t)kl, v, vl, 60));
    got_t g = {0};
    get_wait(r, k, (size_t)kl, &g);
    CU_ASSERT_EQUAL(g.st, PX_REDIS_OK);
    CU_ASSERT_EQUAL(g.len, vl);
    CU_ASSERT(g.data != NULL && memcmp(g.data, v, vl) == 0);
    /* empty value: OK with length 0, not NIL */
    CU_ASSERT(px_redis_set(r, k, (size_t)kl, "", 0, 60));
    get_wait(r, k, (size_t)kl, &g);
    CU_ASSERT_EQUAL(g.st, PX_REDIS_OK);
    CU_ASSERT_EQUAL(g.len, 0);
    CU_ASSERT(px_redis_del(r, k, (size_t)kl));
    get_wait(r, k, (size_t)kl, &g);
    CU_ASSERT_EQUAL(g.st, PX_REDIS_NIL);
    got_reset(&g);
    free(v);
    px_redis_free(r);
    loop_end();
}

static void test_ttl_expires(void)
{
    loop_begin();
    px_redis_t *r = single((uint16_t)g_port, 1000);
    CU_ASSERT_FATAL(r != NULL);
    CU_ASSERT(spin(is_available, r, 3000));
    CU_ASSERT(px_redis_set(r, key("ttl"), strlen(key("ttl")), "soon gone", 9, 1));
    CU_ASSERT(get_is(r, key("ttl"), "soon gone"));
    redisReply *rp = rawcmd(g_port, "PTTL %s", key("ttl"));
    CU_ASSERT(rp != NULL && rp->type == REDIS_REPLY_INTEGER && rp->integer > 0 &&
              rp->integer <= 1000);
    if (rp)
        freeReplyObject(rp);
    spin_ms(1300);
    CU_ASSERT(get_is(r, key("ttl"), NULL));
    px_redis_free(r);
    loop_end();
}

typedef struct subst {
    int ups, downs, msgs;
    char last[256];
    size_t last_len;
    int order[8]; /* 1 = up, 0 = down */
} subst_t;

static void sub_msg_cb(void *arg, const char *m, size_t n)
{
    subst_t *s = arg;
    s->msgs++;
    s->last_len = n < sizeof s->last ? n : sizeof s->last;
    memcpy(s->last, m, s->last_len);
}

static void sub_state_cb(void *arg, bool up)
{
    subst_t *s = arg;
    if (s->ups + s->downs < 8)
        s->order[s->ups + s->downs] = up;
    if (up)
        s->ups++;
    else
        s->downs++;
}

static bool sub_ups1(void *a)
{
    return ((subst_t *)a)->ups >= 1;
}
static bool sub_ups2(void *a)
{
    return ((subst_t *)a)->ups >= 2;
}
static bool sub_msgs1(void *a)
{
    return ((subst_t *)a)->msgs >= 1;
}
static bool sub_msgs2(void *a)
{
    return ((subst_t *)a)->msgs >= 2;
}

static void test_publish_reaches_subscriber(void)
{
    loop_begin();
    px_redis_t *r = single((uint16_t)g_port, 1000);
    CU_ASSERT_FATAL(r != NULL);
    subst_t s = {0};
    const char *ch = key("chan");
    CU_ASSERT(px_redis_subscribe(r, ch, sub_msg_cb, sub_state_cb, &s));
    CU_ASSERT_FALSE(px_redis_subscribe(r, ch, sub_msg_cb, sub_state_cb, &s)); /* one only */
    CU_ASSERT(spin(sub_ups1, &s, 3000));
    CU_ASSERT_EQUAL(s.ups, 1);
    CU_ASSERT(px_redis_publish(r, ch, "inv\0alidate", 11));
    CU_ASSERT(spin(sub_msgs1, &s, 3000));
    CU_ASSERT_EQUAL(s.msgs, 1);
    CU_ASSERT(s.last_len == 11 && memcmp(s.last, "inv\0alidate", 11) == 0);
    /* from another client, e.g. another proxy instance */
    CU_ASSERT(rawok(g_port, "PUBLISH %s %s", ch, "second"));
    CU_ASSERT(spin(sub_msgs2, &s, 3000));
    CU_ASSERT(s.last_len == 6 && memcmp(s.last, "second", 6) == 0);
    CU_ASSERT_EQUAL(s.downs, 0);
    px_redis_free(r);
    CU_ASSERT_EQUAL(s.downs, 0); /* no callbacks from free */
    loop_end();
}

/* Kill our connections (found by client name; of @p type: "normal", "pubsub" or NULL for
 * any) with CLIENT KILL ID; how many. */
static int kill_client_named(int port, const char *name, const char *type)
{
    redisReply *rp =
        type != NULL ? rawcmd(port, "CLIENT LIST TYPE %s", type) : rawcmd(port, "CLIENT LIST");
    int killed = 0;
    if (rp != NULL && rp->type == REDIS_REPLY_STRING) {
        char want[128];
        snprintf(want, sizeof want, " name=%s ", name);
        for (char *line = strtok(rp->str, "\n"); line != NULL; line = strtok(NULL, "\n")) {
            if (strstr(line, want) != NULL && strncmp(line, "id=", 3) == 0) {
                long long id = atoll(line + 3);
                killed += rawok(port, "CLIENT KILL ID %lld", id);
            }
        }
    }
    if (rp)
        freeReplyObject(rp);
    return killed;
}

static void test_subscriber_reports_lost_and_resubscribes_after_kill(void)
{
    loop_begin();
    char name[64];
    snprintf(name, sizeof name, "px-test-sub-%d", (int)getpid());
    px_redis_config_t c;
    px_redis_config_defaults(&c);
    c.host = "127.0.0.1";
    c.port = (uint16_t)g_port;
    c.retry_min_ms = 50;
    c.retry_max_ms = 200;
    c.client_name = name;
    px_redis_t *r = px_redis_new(&g_loop, &c);
    CU_ASSERT_FATAL(r != NULL);
    subst_t s = {0};
    const char *ch = key("killchan");
    CU_ASSERT(px_redis_subscribe(r, ch, sub_msg_cb, sub_state_cb, &s));
    CU_ASSERT(spin(sub_ups1, &s, 3000));
    CU_ASSERT_EQUAL(kill_client_named(g_port, name, "pubsub"), 1);
    uint64_t t0 = now_ms();
    CU_ASSERT(spin(sub_ups2, &s, 3000));
    CU_ASSERT(now_ms() - t0 < 1500);
    CU_ASSERT_EQUAL(s.downs, 1);
    CU_ASSERT(s.order[0] == 1 && s.order[1] == 0 && s.order[2] == 1);
    CU_ASSERT(rawok(g_port, "PUBLISH %s %s", ch, "after"));
    CU_ASSERT(spin(sub_msgs1, &s, 3000));
    CU_ASSERT(s.last_len == 5 && memcmp(s.last, "after", 5) == 0);
    px_redis_stats_t st;
    px_redis_stats(r, &st);
    CU_ASSERT(st.reconnects >= 1);
    px_redis_free(r);
    loop_end();
}

static void test_get_against_dead_port_fails_fast(void)
{
    loop_begin();
    int port = dead_port();
    px_redis_t *r = single((uint16_t)port, 1000);
    CU_ASSERT_FATAL(r != NULL);
    spin_ms(20);
    CU_ASSERT_FALSE(px_redis_available(r));
    got_t g = {0};
    uint64_t t0 = now_ms();
    (void)px_redis_get(r, "k", 1, got_cb, &g);
    CU_ASSERT(spin(got_called, &g, 2000));
    CU_ASSERT_EQUAL(g.calls, 1);
    CU_ASSERT_EQUAL(g.st, PX_REDIS_ERR);
    CU_ASSERT(g.at - t0 < 200); /* well within the 1 s command timeout */
    /* in backoff: refused synchronously */
    got_reset(&g);
    CU_ASSERT_EQUAL(px_redis_get(r, "k", 1, got_cb, &g), 0);
    CU_ASSERT_EQUAL(g.calls, 1);
    CU_ASSERT_EQUAL(g.st, PX_REDIS_ERR);
    CU_ASSERT_FALSE(px_redis_set(r, "k", 1, "v", 1, 10));
    spin_ms(500); /* backoff 50..400 ms: it keeps trying */
    px_redis_stats_t st;
    px_redis_stats(r, &st);
    CU_ASSERT(st.reconnects >= 1);
    CU_ASSERT_EQUAL(st.errors, 3);
    CU_ASSERT_EQUAL(st.timeouts, 0);
    got_reset(&g);
    px_redis_free(r);
    loop_end();
}

static bool silent_closed(void *arg)
{
    silent_t *s = arg;
    return s->accepted > 0 && s->open == 0;
}

static void test_get_against_silent_server_times_out(void)
{
    loop_begin();
    silent_t s;
    silent_start(&s);
    px_redis_config_t c;
    px_redis_config_defaults(&c); /* command timeout 50 ms */
    c.host = "127.0.0.1";
    c.port = (uint16_t)s.port;
    c.max_pending = 4;
    c.retry_min_ms = 5000; /* no reconnect during the test */
    c.retry_max_ms = 5000;
    px_redis_t *r = px_redis_new(&g_loop, &c);
    CU_ASSERT_FATAL(r != NULL);
    CU_ASSERT(spin(is_available, r, 2000));
    got_t g[5] = {{0}};
    uint64_t t0 = now_ms();
    for (int i = 0; i < 4; i++)
        CU_ASSERT(px_redis_get(r, "k", 1, got_cb, &g[i]) != 0);
    /* the fifth exceeds max_pending: fails before returning */
    CU_ASSERT_EQUAL(px_redis_get(r, "k", 1, got_cb, &g[4]), 0);
    CU_ASSERT_EQUAL(g[4].calls, 1);
    CU_ASSERT_EQUAL(g[4].st, PX_REDIS_ERR);
    CU_ASSERT(spin(got_called, &g[3], 2000));
    for (int i = 0; i < 4; i++) {
        CU_ASSERT_EQUAL(g[i].calls, 1);
        CU_ASSERT_EQUAL(g[i].st, PX_REDIS_ERR);
        CU_ASSERT(g[i].at - t0 >= 45 && g[i].at - t0 < 500);
    }
    px_redis_stats_t st;
    px_redis_stats(r, &st);
    CU_ASSERT_EQUAL(st.timeouts, 4);
    CU_ASSERT_EQUAL(st.errors, 5);
    /* the timed-out commands still hold their pool entries (their replies may come):
     * still full */
    got_t h = {0};
    CU_ASSERT_EQUAL(px_redis_get(r, "k", 1, got_cb, &h), 0);
    CU_ASSERT_EQUAL(h.st, PX_REDIS_ERR);
    /* a connection silent for a second with commands waiting is dropped */
    CU_ASSERT(spin(silent_closed, &s, 3000));
    CU_ASSERT_FALSE(px_redis_available(r));
    got_reset(&h);
    for (int i = 0; i < 5; i++)
        got_reset(&g[i]);
    px_redis_free(r);
    silent_stop(&s);
    loop_end();
}

static void test_free_with_commands_in_flight_calls_back_with_error(void)
{
    loop_begin();
    silent_t s;
    silent_start(&s);
    px_redis_t *r = single((uint16_t)s.port, 5000);
    CU_ASSERT_FATAL(r != NULL);
    CU_ASSERT(spin(is_available, r, 2000));
    got_t g[3] = {{0}};
    for (int i = 0; i < 3; i++)
        CU_ASSERT(px_redis_get(r, "k", 1, got_cb, &g[i]) != 0);
    spin_ms(20);
    CU_ASSERT_EQUAL(g[0].calls, 0);
    px_redis_cancel(r, 0); /* harmless */
    px_redis_free(r);
    for (int i = 0; i < 3; i++) {
        CU_ASSERT_EQUAL(g[i].calls, 1);
        CU_ASSERT_EQUAL(g[i].st, PX_REDIS_ERR);
        got_reset(&g[i]);
    }
    silent_stop(&s);
    loop_end();
}

typedef struct freer {
    px_redis_t *r;
    int calls;
    got_t *other;
} freer_t;

static void free_in_cb(void *arg, px_redis_status_t st, const char *d, size_t n)
{
    freer_t *f = arg;
    (void)st;
    (void)d;
    (void)n;
    f->calls++;
    px_redis_free(f->r);
    CU_ASSERT_EQUAL(f->other->calls, 1); /* failed during the free */
    /* a command on a closing client fails at once */
    got_t g = {0};
    CU_ASSERT_EQUAL(px_redis_get(f->r, "k", 1, got_cb, &g), 0);
    CU_ASSERT_EQUAL(g.calls, 1);
    CU_ASSERT_EQUAL(g.st, PX_REDIS_ERR);
}

static void test_free_from_a_callback(void)
{
    loop_begin();
    px_redis_t *r = single((uint16_t)g_port, 1000);
    CU_ASSERT_FATAL(r != NULL);
    CU_ASSERT(spin(is_available, r, 3000));
    got_t other = {0};
    freer_t f = {r, 0, &other};
    CU_ASSERT(px_redis_get(r, key("x"), strlen(key("x")), free_in_cb, &f) != 0);
    CU_ASSERT(px_redis_get(r, key("y"), strlen(key("y")), got_cb, &other) != 0);
    uint64_t end = now_ms() + 3000;
    while (f.calls == 0 && now_ms() < end)
        uv_run(&g_loop, UV_RUN_ONCE);
    CU_ASSERT_EQUAL(f.calls, 1);
    CU_ASSERT_EQUAL(other.calls, 1);
    CU_ASSERT_EQUAL(other.st, PX_REDIS_ERR);
    got_reset(&other);
    loop_end();
}

static void test_cancelled_request_callback_is_never_called(void)
{
    loop_begin();
    px_redis_t *r = single((uint16_t)g_port, 1000);
    CU_ASSERT_FATAL(r != NULL);
    CU_ASSERT(spin(is_available, r, 3000));
    CU_ASSERT(px_redis_set(r, key("c"), strlen(key("c")), "v", 1, 60));
    got_t a = {0}, b = {0};
    px_redis_req_t id = px_redis_get(r, key("c"), strlen(key("c")), got_cb, &a);
    CU_ASSERT(id != 0);
    px_redis_cancel(r, id);
    px_redis_req_t id2 = px_redis_get(r, key("c"), strlen(key("c")), got_cb, &b);
    CU_ASSERT(id2 != 0 && id2 != id);
    CU_ASSERT(spin(got_called, &b, 3000));
    spin_ms(50);
    CU_ASSERT_EQUAL(a.calls, 0);
    CU_ASSERT_EQUAL(b.calls, 1);
    CU_ASSERT_EQUAL(b.st, PX_REDIS_OK);
    /* cancelling a completed or recycled request does not touch the new one */
    got_t c2 = {0};
    px_redis_req_t id3 = px_redis_get(r, key("c"), strlen(key("c")), got_cb, &c2);
    px_redis_cancel(r, id);
    px_redis_cancel(r, id2);
    CU_ASSERT(spin(got_called, &c2, 3000));
    CU_ASSERT_EQUAL(c2.calls, 1);
    CU_ASSERT(id3 != 0);
    got_reset(&a);
    got_reset(&b);
    got_reset(&c2);
    px_redis_free(r);
    loop_end();
}

static void test_commands_beyond_max_pending_bytes_are_refused(void)
{
    loop_begin();
    px_redis_config_t c;
    px_redis_config_defaults(&c);
    c.host = "127.0.0.1";
    c.port = (uint16_t)g_port;
    c.command_timeout_ms = 1000;
    c.max_pending_bytes = 1024;
    px_redis_t *r = px_redis_new(&g_loop, &c);
    CU_ASSERT_FATAL(r != NULL);
    CU_ASSERT(spin(is_available, r, 3000));
    char big[2000];
    memset(big, 'x', sizeof big);
    CU_ASSERT_FALSE(px_redis_set(r, key("big"), strlen(key("big")), big, sizeof big, 60));
    CU_ASSERT(px_redis_set(r, key("big"), strlen(key("big")), big, 500, 60));
    got_t g = {0};
    get_wait(r, key("big"), strlen(key("big")), &g);
    CU_ASSERT(g.st == PX_REDIS_OK && g.len == 500);
    got_reset(&g);
    px_redis_stats_t st;
    px_redis_stats(r, &st);
    CU_ASSERT_EQUAL(st.errors, 1);
    CU_ASSERT(px_redis_del(r, key("big"), strlen(key("big"))));
    spin_ms(20);
    px_redis_free(r);
    loop_end();
}

static bool flush_done(void *arg)
{
    return !px_redis_flush_running(arg);
}

/* SET n keys "<prefix><i>" and confirm them with a GET of the last one per node. */
static void set_keys(px_redis_t *r, const char *prefix, int n)
{
    char k[128];
    for (int i = 0; i < n; i++) {
        snprintf(k, sizeof k, "%s%d", prefix, i);
        CU_ASSERT(px_redis_set(r, k, strlen(k), "v", 1, 120));
    }
    for (int i = 0; i < n; i++) {
        snprintf(k, sizeof k, "%s%d", prefix, i);
        CU_ASSERT(get_is(r, k, "v"));
    }
}

static int count_present(px_redis_t *r, const char *prefix, int n)
{
    char k[128];
    int present = 0;
    for (int i = 0; i < n; i++) {
        snprintf(k, sizeof k, "%s%d", prefix, i);
        got_t g = {0};
        get_wait(r, k, strlen(k), &g);
        present += g.st == PX_REDIS_OK;
        got_reset(&g);
    }
    return present;
}

/* Prefixes are literal: "fl*:" must not take "flkeep:" keys, "fl[k]:" not "flk:" ones. */
static void flush_check(px_redis_t *r)
{
    char a[64], b[64], c[64], d[64];
    snprintf(a, sizeof a, "px-test:%d:fl*:", (int)getpid());
    snprintf(b, sizeof b, "px-test:%d:flkeep:", (int)getpid());
    snprintf(c, sizeof c, "px-test:%d:fl[k]:", (int)getpid());
    snprintf(d, sizeof d, "px-test:%d:flk:", (int)getpid());
    set_keys(r, a, 700);
    set_keys(r, b, 30);
    set_keys(r, c, 10);
    set_keys(r, d, 10);
    CU_ASSERT(px_redis_flush_prefix(r, a));
    CU_ASSERT(px_redis_flush_prefix(r, a));       /* coalesced: runs once more after */
    CU_ASSERT_FALSE(px_redis_flush_prefix(r, b)); /* another one is already queued */
    CU_ASSERT(px_redis_flush_running(r));
    CU_ASSERT(spin(flush_done, r, 10000));
    CU_ASSERT_EQUAL(count_present(r, a, 700), 0);
    CU_ASSERT_EQUAL(count_present(r, b, 30), 30);
    CU_ASSERT_EQUAL(count_present(r, c, 10), 10);
    CU_ASSERT(px_redis_flush_prefix(r, c));
    CU_ASSERT(spin(flush_done, r, 10000));
    CU_ASSERT_EQUAL(count_present(r, c, 10), 0);
    CU_ASSERT_EQUAL(count_present(r, d, 10), 10);
    CU_ASSERT(px_redis_flush_prefix(r, b));
    CU_ASSERT(spin(flush_done, r, 10000));
    CU_ASSERT(px_redis_flush_prefix(r, d));
    CU_ASSERT(spin(flush_done, r, 10000));
    CU_ASSERT_EQUAL(count_present(r, b, 30) + count_present(r, d, 10), 0);
    CU_ASSERT_FALSE(px_redis_flush_prefix(r, ""));
    px_redis_stats_t st;
    px_redis_stats(r, &st);
    CU_ASSERT_EQUAL(st.errors, 0);
}

static void test_flush_deletes_only_prefixed_keys(void)
{
    loop_begin();
    px_redis_t *r = single((uint16_t)g_port, 1000);
    CU_ASSERT_FATAL(r != NULL);
    CU_ASSERT(spin(is_available, r, 3000));
    flush_check(r);
    px_redis_free(r);
    loop_end();
}

/* ---- tests: cluster -------------------------------------------------------------- */

static void test_cluster_keys_of_all_masters_round_trip(void)
{
    loop_begin();
    px_redis_t *r = cluster();
    CU_ASSERT_FATAL(r != NULL);
    CU_ASSERT_FATAL(spin(is_available, r, 5000));
    int masters[16] = {0}, nm = 0;
    char k[128], v[128];
    for (int i = 0; i < 300; i++) {
        snprintf(k, sizeof k, "px-test:%d:spread-%d", (int)getpid(), i);
        snprintf(v, sizeof v, "value-%d", i);
        CU_ASSERT(px_redis_set(r, k, strlen(k), v, strlen(v), 120));
    }
    for (int i = 0; i < 300; i++) {
        snprintf(k, sizeof k, "px-test:%d:spread-%d", (int)getpid(), i);
        snprintf(v, sizeof v, "value-%d", i);
        CU_ASSERT(get_is(r, k, v));
        if (i % 10 == 0) {
            int m = slot_master(px_redis_key_slot(k, strlen(k)));
            bool seen = false;
            for (int j = 0; j < nm; j++)
                seen |= masters[j] == m;
            if (!seen && nm < 16)
                masters[nm++] = m;
        }
    }
    CU_ASSERT_EQUAL(nm, 3);
    px_redis_stats_t st;
    px_redis_stats(r, &st);
    CU_ASSERT_EQUAL(st.errors, 0);
    CU_ASSERT_EQUAL(st.redirects, 0); /* the slot map was right from the start */
    for (int i = 0; i < 300; i++) {
        snprintf(k, sizeof k, "px-test:%d:spread-%d", (int)getpid(), i);
        CU_ASSERT(px_redis_del(r, k, strlen(k)));
    }
    spin_ms(50);
    px_redis_free(r);
    loop_end();
}

static void test_cluster_with_unreachable_seeds_fails_fast(void)
{
    loop_begin();
    char seeds[64];
    snprintf(seeds, sizeof seeds, "127.0.0.1:%d,127.0.0.1:%d", dead_port(), dead_port());
    px_redis_config_t c;
    px_redis_config_defaults(&c);
    c.cluster_nodes = seeds;
    px_redis_t *r = px_redis_new(&g_loop, &c);
    CU_ASSERT_FATAL(r != NULL);
    spin_ms(100);
    CU_ASSERT_FALSE(px_redis_available(r));
    got_t g = {0};
    CU_ASSERT_EQUAL(px_redis_get(r, "k", 1, got_cb, &g), 0); /* no slot map: at once */
    CU_ASSERT_EQUAL(g.calls, 1);
    CU_ASSERT_EQUAL(g.st, PX_REDIS_ERR);
    CU_ASSERT_FALSE(px_redis_flush_prefix(r, "x"));
    got_reset(&g);
    px_redis_free(r);
    loop_end();
}

/* Every master's SETSLOT <slot> NODE <id>, the new owner first (the documented order). */
static bool setslot_node(int slot, int owner_port)
{
    char id[64];
    if (!node_id(owner_port, id, sizeof id))
        return false;
    bool ok = rawok(owner_port, "CLUSTER SETSLOT %d NODE %s", slot, id);
    for (int i = 0; i < g_ncports; i++)
        if (g_cports[i] != owner_port && is_master(g_cports[i]))
            ok &= rawok(g_cports[i], "CLUSTER SETSLOT %d NODE %s", slot, id);
    return ok;
}

/* Every node says master a[1] serves slot a[0]. */
static bool slot_owner_is(void *arg)
{
    int *a = arg; /* {slot, port} */
    for (int i = 0; i < g_ncports; i++)
        if (slot_master_at(g_cports[i], a[0]) != a[1])
            return false;
    return true;
}

static void test_cluster_moved_is_followed(void)
{
    loop_begin();
    px_redis_t *r = cluster();
    CU_ASSERT_FATAL(r != NULL);
    CU_ASSERT_FATAL(spin(is_available, r, 5000));
    const char *k = key("{moved}a");
    int slot = px_redis_key_slot(k, strlen(k));
    int from = slot_master(slot), to = 0;
    for (int i = 0; i < g_ncports && to == 0; i++)
        if (g_cports[i] != from && is_master(g_cports[i]))
            to = g_cports[i];
    CU_ASSERT_FATAL(from != 0 && to != 0);
    redisReply *rp = rawcmd(from, "CLUSTER COUNTKEYSINSLOT %d", slot);
    CU_ASSERT_FATAL(rp != NULL && rp->type == REDIS_REPLY_INTEGER && rp->integer == 0);
    freeReplyObject(rp);
    CU_ASSERT(get_is(r, k, NULL)); /* the map says "from" */

    CU_ASSERT_FATAL(setslot_node(slot, to));
    int arg[2] = {slot, to};
    CU_ASSERT(poll_until(slot_owner_is, arg, 5000));
    CU_ASSERT(get_is(r, k, NULL)); /* from answers MOVED; followed to "to" */
    px_redis_stats_t st;
    px_redis_stats(r, &st);
    CU_ASSERT_EQUAL(st.redirects, 1);
    CU_ASSERT(px_redis_set(r, k, strlen(k), "moved", 5, 60));
    CU_ASSERT(get_is(r, k, "moved"));
    px_redis_stats(r, &st);
    CU_ASSERT_EQUAL(st.redirects, 1); /* the map was updated */
    CU_ASSERT_EQUAL(st.errors, 0);
    rp = rawcmd(to, "GET %s", k);
    CU_ASSERT(rp != NULL && rp->type == REDIS_REPLY_STRING && strcmp(rp->str, "moved") == 0);
    if (rp)
        freeReplyObject(rp);

    /* put the (empty again) slot back */
    CU_ASSERT(rawok(to, "DEL %s", k));
    CU_ASSERT(setslot_node(slot, from));
    arg[1] = from;
    CU_ASSERT(poll_until(slot_owner_is, arg, 5000));
    CU_ASSERT(poll_until(cluster_all_ok, NULL, 10000));
    CU_ASSERT(get_is(r, k, NULL)); /* MOVED back */
    px_redis_free(r);
    loop_end();
}

static void test_cluster_ask_is_followed_during_migration(void)
{
    loop_begin();
    px_redis_t *r = cluster();
    CU_ASSERT_FATAL(r != NULL);
    CU_ASSERT_FATAL(spin(is_available, r, 5000));
    const char *k = key("{asking}a");
    int slot = px_redis_key_slot(k, strlen(k));
    int from = slot_master(slot), to = 0;
    for (int i = 0; i < g_ncports && to == 0; i++)
        if (g_cports[i] != from && is_master(g_cports[i]))
            to = g_cports[i];
    CU_ASSERT_FATAL(from != 0 && to != 0);
    char from_id[64], to_id[64];
    CU_ASSERT_FATAL(node_id(from, from_id, sizeof from_id) && node_id(to, to_id, sizeof to_id));
    CU_ASSERT_FATAL(rawok(to, "CLUSTER SETSLOT %d IMPORTING %s", slot, from_id));
    CU_ASSERT_FATAL(rawok(from, "CLUSTER SETSLOT %d MIGRATING %s", slot, to_id));

    /* not on "from": -ASK to "to", where ASKING lets the command in */
    CU_ASSERT(get_is(r, k, NULL));
    CU_ASSERT(px_redis_set(r, k, strlen(k), "asked", 5, 60));
    CU_ASSERT(get_is(r, k, "asked"));
    px_redis_stats_t st;
    px_redis_stats(r, &st);
    CU_ASSERT_EQUAL(st.redirects, 3); /* ASK does not change the map: every time */
    CU_ASSERT_EQUAL(st.errors, 0);
    redisContext *c = raw(to);
    CU_ASSERT_FATAL(c != NULL);
    redisReply *rp = redisCommand(c, "ASKING");
    freeReplyObject(rp);
    rp = redisCommand(c, "GET %s", k);
    CU_ASSERT(rp != NULL && rp->type == REDIS_REPLY_STRING && strcmp(rp->str, "asked") == 0);
    freeReplyObject(rp);
    rp = redisCommand(c, "ASKING");
    freeReplyObject(rp);
    rp = redisCommand(c, "DEL %s", k);
    CU_ASSERT(rp != NULL && rp->type == REDIS_REPLY_INTEGER && rp->integer == 1);
    freeReplyObject(rp);
    redisFree(c);

    CU_ASSERT(rawok(from, "CLUSTER SETSLOT %d STABLE", slot));
    CU_ASSERT(rawok(to, "CLUSTER SETSLOT %d STABLE", slot));
    CU_ASSERT(poll_until(cluster_all_ok, NULL, 10000));
    CU_ASSERT(get_is(r, k, NULL));
    px_redis_stats(r, &st);
    CU_ASSERT_EQUAL(st.redirects, 3);
    px_redis_free(r);
    loop_end();
}

typedef struct fo {
    px_redis_t *r;
    const char *key;
} fo_t;

/* SET then GET through px_redis until one round trip succeeds */
static bool roundtrip_ok(void *arg)
{
    fo_t *f = arg;
    (void)px_redis_set(f->r, f->key, strlen(f->key), "fo", 2, 60);
    got_t g = {0};
    (void)px_redis_get(f->r, f->key, strlen(f->key), got_cb, &g);
    uint64_t end = now_ms() + 2000;
    while (g.calls == 0 && now_ms() < end)
        uv_run(&g_loop, UV_RUN_ONCE);
    bool ok = g.st == PX_REDIS_OK && g.len == 2 && memcmp(g.data, "fo", 2) == 0;
    got_reset(&g);
    if (!ok)
        spin_ms(20);
    return ok;
}

/* INFO replication of @p port contains @p what */
static bool info_has(int port, const char *what)
{
    redisReply *rp = rawcmd(port, "INFO replication");
    bool has = rp != NULL && rp->type == REDIS_REPLY_STRING && strstr(rp->str, what) != NULL;
    if (rp)
        freeReplyObject(rp);
    return has;
}

/* A manual failover needs the replica's link up and its master to know it as its replica
 * (a MFSTART from a node the master does not list as its replica is ignored). */
static bool replica_in_sync(void *arg)
{
    int port = *(int *)arg;
    redisReply *rp = rawcmd(port, "ROLE");
    int master = 0;
    if (rp != NULL && rp->type == REDIS_REPLY_ARRAY && rp->elements >= 3 &&
        strcmp(rp->element[0]->str, "slave") == 0)
        master = (int)rp->element[2]->integer;
    if (rp)
        freeReplyObject(rp);
    char want[64];
    snprintf(want, sizeof want, "port=%d,state=online", port);
    return master != 0 && info_has(port, "master_link_status:up") && info_has(master, want) &&
           replica_of(master) == port;
}

/* The failover to a[1] is complete: it is a master serving slot a[0] in every node's
 * view, and its old master a[2] is a replica. */
static bool failover_done(void *arg)
{
    int *a = arg; /* {slot, new master, old master} */
    return is_master(a[1]) && !is_master(a[2]) && slot_owner_is(a);
}

/* Manual failover from @p master to its replica @p replica, for @p slot. Redis keeps a
 * node's election state for 2 * max(2 s, 2 * node timeout) after it won one, and a
 * replica asked to fail over again within that time "wins" with its stale votes without
 * a new epoch, which nobody else accepts (the master stays paused for the failover's
 * timeout): when the coordinated failover is not complete everywhere in time, TAKEOVER
 * (no election; fine on the test stack) finishes the job. */
static bool failover_to(int replica, int master, int slot)
{
    int arg[3] = {slot, replica, master};
    if (!poll_until(replica_in_sync, &replica, 10000))
        return false;
    if (!rawok(replica, "CLUSTER FAILOVER"))
        return false;
    if (poll_until(failover_done, arg, 6000))
        return true;
    fprintf(stderr, "  [CLUSTER FAILOVER on :%d did not complete: TAKEOVER]\n", replica);
    return rawok(replica, "CLUSTER FAILOVER TAKEOVER") && poll_until(failover_done, arg, 10000);
}

static void test_cluster_failover_keeps_commands_working(void)
{
    loop_begin();
    px_redis_t *r = cluster();
    CU_ASSERT_FATAL(r != NULL);
    CU_ASSERT_FATAL(spin(is_available, r, 5000));
    const char *k = key("{failover}a");
    int slot = px_redis_key_slot(k, strlen(k));
    int old_master = slot_master(slot);
    CU_ASSERT_FATAL(old_master != 0);
    int replica = 0;
    for (int i = 0; i < 200 && (replica == 0 || !replica_in_sync(&replica)); i++) {
        usleep(50 * 1000); /* e.g. a previous fail-back still settling */
        replica = replica_of(old_master);
    }
    CU_ASSERT_FATAL(replica != 0);
    fo_t f = {r, k};
    CU_ASSERT_FATAL(roundtrip_ok(&f));

    /* Traffic goes on while the failover happens (the old master pauses writes, then
     * answers MOVED); a stale-election failure (see failover_to) falls back to TAKEOVER. */
    int arg[3] = {slot, replica, old_master};
    CU_ASSERT_FATAL(poll_until(replica_in_sync, &replica, 10000));
    CU_ASSERT_FATAL(rawok(replica, "CLUSTER FAILOVER"));
    uint64_t t0 = now_ms(), last_fail = 0;
    int ok = 0, failed = 0;
    bool switched = false;
    while (!(switched = failover_done(arg)) && now_ms() - t0 < 6000) {
        if (roundtrip_ok(&f))
            ok++;
        else
            failed++, last_fail = now_ms();
    }
    if (!switched) {
        fprintf(stderr, "  [CLUSTER FAILOVER on :%d did not complete: TAKEOVER]\n", replica);
        CU_ASSERT(rawok(replica, "CLUSTER FAILOVER TAKEOVER"));
        switched = poll_until(failover_done, arg, 10000);
    }
    CU_ASSERT(switched);
    if (switched) {
        uint64_t t1 = now_ms();
        CU_ASSERT(spin(roundtrip_ok, &f, 3000));
        fprintf(stderr,
                "  [failover :%d -> :%d: %d round trips ok and %d failed during it (last failure "
                "%lld ms before it completed); working %llu ms after]\n",
                old_master, replica, ok, failed, last_fail ? (long long)(t1 - last_fail) : -1LL,
                (unsigned long long)(now_ms() - t1));
        /* and then keys of every master work, without error */
        px_redis_stats_t before, after;
        px_redis_stats(r, &before);
        char kk[128];
        for (int i = 0; i < 100; i++) {
            snprintf(kk, sizeof kk, "px-test:%d:fo-%d", (int)getpid(), i);
            CU_ASSERT(px_redis_set(r, kk, strlen(kk), "v", 1, 60));
            CU_ASSERT(get_is(r, kk, "v"));
        }
        px_redis_stats(r, &after);
        CU_ASSERT_EQUAL(after.errors, before.errors);
        CU_ASSERT(after.redirects >= 1); /* the old master's MOVED */
        CU_ASSERT(spin(is_available, r, 3000));
    }
    /* fail back so the stack ends as it started */
    if (!is_master(old_master) || is_master(replica))
        CU_ASSERT(failover_to(old_master, replica, slot));
    CU_ASSERT(is_master(old_master));
    CU_ASSERT(poll_until(cluster_all_ok, NULL, 10000));
    CU_ASSERT(poll_until(replica_in_sync, &replica, 10000));
    CU_ASSERT(spin(roundtrip_ok, &f, 3000));
    CU_ASSERT(px_redis_del(r, k, strlen(k)));
    spin_ms(20);
    px_redis_free(r);
    loop_end();
}

static px_redis_t *cluster_named(const char *name, uint32_t cmd_timeout)
{
    px_redis_config_t c;
    px_redis_config_defaults(&c);
    c.cluster_nodes = g_seeds;
    c.command_timeout_ms = cmd_timeout;
    c.retry_min_ms = 50;
    c.retry_max_ms = 400;
    c.client_name = name;
    return px_redis_new(&g_loop, &c);
}

static void test_cluster_reconnects_after_its_connections_are_killed(void)
{
    loop_begin();
    char name[64];
    snprintf(name, sizeof name, "px-test-kill-%d", (int)getpid());
    px_redis_t *r = cluster_named(name, 1000);
    CU_ASSERT_FATAL(r != NULL);
    CU_ASSERT_FATAL(spin(is_available, r, 5000));
    char k[128];
    for (int i = 0; i < 30; i++) { /* connections to every master */
        snprintf(k, sizeof k, "px-test:%d:kill-%d", (int)getpid(), i);
        CU_ASSERT(px_redis_set(r, k, strlen(k), "v", 1, 60));
        CU_ASSERT(get_is(r, k, "v"));
    }
    int killed = 0;
    for (int i = 0; i < g_ncports; i++)
        killed += kill_client_named(g_cports[i], name, NULL);
    CU_ASSERT(killed >= 3);
    uint64_t t0 = now_ms();
    spin_ms(20);
    fo_t f = {r, k};
    CU_ASSERT(spin(roundtrip_ok, &f, 3000));
    CU_ASSERT(spin(is_available, r, 3000));
    CU_ASSERT(now_ms() - t0 < 3000);
    for (int i = 0; i < 30; i++) {
        snprintf(k, sizeof k, "px-test:%d:kill-%d", (int)getpid(), i);
        f.key = k;
        CU_ASSERT(spin(roundtrip_ok, &f, 2000));
        CU_ASSERT(px_redis_del(r, k, strlen(k)));
    }
    px_redis_stats_t st;
    px_redis_stats(r, &st);
    CU_ASSERT(st.reconnects >= 3);
    spin_ms(20);
    px_redis_free(r);
    loop_end();
}

typedef struct two {
    got_t slow, fast;
} two_t;

static bool fast_called(void *arg)
{
    return ((two_t *)arg)->fast.calls > 0;
}

static bool slow_called(void *arg)
{
    return ((two_t *)arg)->slow.calls > 0;
}

/* CLIENT PAUSE on one master: its commands time out (and its silent connection is
 * dropped and re-made), the other masters' keys are not held up. */
static void test_cluster_paused_master_times_out_without_blocking_others(void)
{
    loop_begin();
    px_redis_t *r = cluster_named(NULL, 100);
    CU_ASSERT_FATAL(r != NULL);
    CU_ASSERT_FATAL(spin(is_available, r, 5000));
    const char *slow_key = key("{pause-slow}"), *fast_key = NULL;
    int slow_master = slot_master(px_redis_key_slot(slow_key, strlen(slow_key)));
    char buf[128];
    for (int i = 0; i < 1000 && fast_key == NULL; i++) {
        snprintf(buf, sizeof buf, "px-test:%d:pause-fast-%d", (int)getpid(), i);
        int m = slot_master(px_redis_key_slot(buf, strlen(buf)));
        if (m != 0 && m != slow_master)
            fast_key = buf;
    }
    CU_ASSERT_FATAL(slow_master != 0 && fast_key != NULL);
    CU_ASSERT(get_is(r, slow_key, NULL));
    CU_ASSERT(get_is(r, fast_key, NULL));

    CU_ASSERT_FATAL(rawok(slow_master, "CLIENT PAUSE 1300 ALL"));
    uint64_t t0 = now_ms();
    two_t t = {{0}, {0}};
    CU_ASSERT(px_redis_get(r, slow_key, strlen(slow_key), got_cb, &t.slow) != 0);
    CU_ASSERT(px_redis_get(r, fast_key, strlen(fast_key), got_cb, &t.fast) != 0);
    CU_ASSERT(spin(fast_called, &t, 1000));
    CU_ASSERT_EQUAL(t.fast.st, PX_REDIS_NIL);
    CU_ASSERT_EQUAL(t.slow.calls, 0); /* still waiting for the paused master */
    CU_ASSERT(spin(slow_called, &t, 1000));
    CU_ASSERT_EQUAL(t.slow.st, PX_REDIS_ERR);
    CU_ASSERT(t.slow.at - t0 >= 90 && t.slow.at - t0 < 400);
    px_redis_stats_t st;
    px_redis_stats(r, &st);
    CU_ASSERT_EQUAL(st.timeouts, 1);

    fo_t f = {r, slow_key};
    CU_ASSERT(spin(roundtrip_ok, &f, 4000)); /* after the pause */
    CU_ASSERT(now_ms() - t0 >= 1200);
    px_redis_stats(r, &st);
    CU_ASSERT(st.reconnects >= 1); /* silent for a second with a command waiting */
    CU_ASSERT(px_redis_del(r, slow_key, strlen(slow_key)));
    spin_ms(20);
    got_reset(&t.slow);
    got_reset(&t.fast);
    px_redis_free(r);
    loop_end();
}

static bool fake_asked(void *arg)
{
    return ((silent_t *)arg)->reads >= 1;
}

/* A slot map whose only master does not listen: commands fail at once (never wait for a
 * timeout), and the map keeps being asked for again while it is unusable. */
static void test_cluster_slots_of_an_unreachable_master_fail_fast(void)
{
    loop_begin();
    char reply[160], seeds[64];
    int dead = dead_port();
    snprintf(reply, sizeof reply,
             "*1\r\n*3\r\n:0\r\n:16383\r\n*3\r\n$9\r\n127.0.0.1\r\n:%d\r\n$3\r\nabc\r\n", dead);
    silent_t fake;
    silent_start(&fake);
    fake.reply = reply;
    snprintf(seeds, sizeof seeds, "127.0.0.1:%d", fake.port);
    px_redis_config_t c;
    px_redis_config_defaults(&c);
    c.cluster_nodes = seeds;
    c.command_timeout_ms = 1000;
    c.retry_min_ms = 50;
    c.retry_max_ms = 200;
    px_redis_t *r = px_redis_new(&g_loop, &c);
    CU_ASSERT_FATAL(r != NULL);
    CU_ASSERT(spin(fake_asked, &fake, 2000));
    spin_ms(30);
    CU_ASSERT_FALSE(px_redis_available(r));
    for (int i = 0; i < 5; i++) {
        got_t g = {0};
        uint64_t t0 = now_ms();
        (void)px_redis_get(r, key("unreachable"), strlen(key("unreachable")), got_cb, &g);
        CU_ASSERT(spin(got_called, &g, 2000));
        CU_ASSERT_EQUAL(g.st, PX_REDIS_ERR);
        CU_ASSERT(g.at - t0 < 100);
        got_reset(&g);
        spin_ms(60);
    }
    int before = fake.reads;
    spin_ms(600);
    CU_ASSERT(fake.reads - before >= 2); /* asked again while the master is down */
    px_redis_stats_t st;
    px_redis_stats(r, &st);
    CU_ASSERT_EQUAL(st.timeouts, 0);
    px_redis_free(r);
    silent_stop(&fake);
    loop_end();
}

static void test_cluster_publish_reaches_subscriber_on_another_node(void)
{
    loop_begin();
    px_redis_t *r = cluster();
    CU_ASSERT_FATAL(r != NULL);
    subst_t s = {0};
    const char *ch = key("cluster-chan");
    CU_ASSERT(px_redis_subscribe(r, ch, sub_msg_cb, sub_state_cb, &s));
    CU_ASSERT(spin(sub_ups1, &s, 5000));
    /* published on every node in turn: each reaches us through the cluster bus */
    for (int i = 0; i < g_ncports; i++) {
        char m[32];
        snprintf(m, sizeof m, "from-%d", g_cports[i]);
        int before = s.msgs;
        CU_ASSERT(rawok(g_cports[i], "PUBLISH %s %s", ch, m));
        uint64_t end = now_ms() + 3000;
        while (s.msgs == before && now_ms() < end)
            spin_ms(5);
        CU_ASSERT(s.last_len == strlen(m) && memcmp(s.last, m, s.last_len) == 0);
    }
    CU_ASSERT_EQUAL(s.msgs, g_ncports);
    /* and through px_redis_publish (to the master of the channel's slot) */
    CU_ASSERT(spin(is_available, r, 5000));
    CU_ASSERT(px_redis_publish(r, ch, "mine", 4));
    int want = g_ncports + 1;
    uint64_t end = now_ms() + 3000;
    while (s.msgs < want && now_ms() < end)
        spin_ms(5);
    CU_ASSERT(s.last_len == 4 && memcmp(s.last, "mine", 4) == 0);
    px_redis_free(r);
    loop_end();
}

static void test_cluster_flush_deletes_only_prefixed_keys(void)
{
    loop_begin();
    px_redis_t *r = cluster();
    CU_ASSERT_FATAL(r != NULL);
    CU_ASSERT_FATAL(spin(is_available, r, 5000));
    flush_check(r);
    px_redis_free(r);
    loop_end();
}

/* ---- main --------------------------------------------------------------------------- */

#define TE(f)                                                                                      \
    {                                                                                              \
#f, f                                                                                      \
    }
static const struct {
    const char *name;
    CU_TestFunc fn;
} tests[] = {
    TE(test_key_slots_match_redis),
    TE(test_bad_config_is_refused),
    TE(test_set_then_get_returns_the_value),
    TE(test_missing_key_is_nil),
    TE(test_binary_values_with_nul_bytes_round_trip),
    TE(test_ttl_expires),
    TE(test_publish_reaches_subscriber),
    TE(test_subscriber_reports_lost_and_resubscribes_after_kill),
    TE(test_get_against_dead_port_fails_fast),
    TE(test_get_against_silent_server_times_out),
    TE(test_free_with_commands_in_flight_calls_back_with_error),
    TE(test_free_from_a_callback),
    TE(test_cancelled_request_callback_is_never_called),
    TE(test_commands_beyond_max_pending_bytes_are_refused),
    TE(test_flush_deletes_only_prefixed_keys),
    TE(test_cluster_keys_of_all_masters_round_trip),
    TE(test_cluster_with_unreachable_seeds_fails_fast),
    TE(test_cluster_slots_of_an_unreachable_master_fail_fast),
    TE(test_cluster_moved_is_followed),
    TE(test_cluster_ask_is_followed_during_migration),
    TE(test_cluster_failover_keeps_commands_working),
    TE(test_cluster_reconnects_after_its_connections_are_killed),
    TE(test_cluster_paused_master_times_out_without_blocking_others),
    TE(test_cluster_publish_reaches_subscriber_on_another_node),
    TE(test_cluster_flush_deletes_only_prefixed_keys),
};

int main(int argc, char **argv)
{
    const char *p = getenv("PX_REDIS_PORT");
    g_port = p != NULL ? atoi(p) : 0;
    g_seeds = getenv("PX_REDIS_CLUSTER_NODES");
    if (g_seeds != NULL) {
        for (const char *s = g_seeds; s != NULL && *s && g_ncports < 16;) {
            const char *colon = strchr(s, ':');
            if (colon == NULL)
                break;
            g_cports[g_ncports++] = atoi(colon + 1);
            s = strchr(colon, ',');
            if (s != NULL)
                s++;
        }
    }
    if (g_port <= 0 || g_ncports != 6) {
        fprintf(stderr,
                "FAIL: test_redis needs the test stack's Redis and 6-node Redis Cluster: "
                "PX_REDIS_PORT and PX_REDIS_CLUSTER_NODES are %s (run it under "
                "scripts/with-stack.sh, or source $PX_STACK_DIR/env.sh after "
                "scripts/stack.sh start)\n",
                g_port <= 0 ? "missing" : "not a 6-node list");
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);                     /* as the proxy: hiredis writes with write(2) */
    const char *lv = getenv("PX_TEST_LOG_LEVEL"); /* e.g. debug */
    px_log_init(lv != NULL && px_log_level_parse(lv) >= 0 ? px_log_level_parse(lv) : PX_LOG_WARN,
                0);
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    CU_pSuite s = CU_add_suite("redis/live", NULL, NULL);
    if (s == NULL) {
        CU_cleanup_registry();
        return 2;
    }
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
        if (argc > 1 && strstr(tests[i].name, argv[1]) == NULL) /* run only matching tests */
            continue;
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
