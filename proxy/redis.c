/*
 * Asynchronous Redis / Redis Cluster client for one libuv loop (include/px_redis.h): the
 * result cache's L2, invalidation pub/sub and the admin flush.
 *
 * Commands. Every command, the caller's and our own (CLUSTER SLOTS, SCAN, UNLINK), is a
 * cmd_t from a pool sized at creation (max_pending + a reserve for slot-map refreshes), so
 * the number in flight is bounded and a request id is (generation, pool index). A live
 * command sits in one of two FIFO deadline lists (callers' commands share one timeout,
 * ours another, so each list is deadline-ordered) swept by one uv_timer. A command is
 * "live" until it completed towards its owner (reply, error, timeout, cancel-then-reply)
 * and "sent" while hiredis holds a callback for it; its pool entry is reused only when it
 * is neither, so a late reply never lands on a recycled command.
 *
 * Connections. One hiredis async context per node (single node: one; cluster: one per
 * master, plus connections to other nodes made only to load the slot map), one for the
 * subscriber. hiredis 0.14's libuv adapter ignores poll errors (libuv reports POLLERR as
 * UV_EBADF and stops the watcher), which leaves a refused or reset connection hanging, so
 * the adapter here is our own: on an error status it lets hiredis run the operation it
 * was waiting for, which then fails, and drops the connection if it did not. A
 * connection that fails is retried after an exponential backoff with jitter; a
 * connection that stops answering for stall_ms while commands wait is dropped. Commands
 * for a node that is down fail at once.
 *
 * Lifetimes. hiredis calls back into us from redisAsyncHandleRead/Write (from our poll
 * callback) and from redisAsyncFree (from our code). We only ever free a context from a
 * timer callback, from px_redis_free's teardown or from our poll callback, never from a
 * hiredis callback. Entry points from the loop (poll, timer, resolver) and the public
 * functions bracket their work with enter()/leave(); px_redis_free() called at any depth
 * only fails the callers' commands and marks the client closing, and the outermost
 * leave() tears everything down, so no frame below it touches freed memory.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "px_log.h"
#include "px_redis.h"

#define SLOTS            16384
#define NO_NODE          UINT16_MAX
#define RESERVED_CMDS    8    /* pool entries only slot-map refreshes may use */
#define REFRESH_GAP_MS   100  /* CLUSTER SLOTS at most this often */
#define MIN_INTERNAL_MS  1000 /* timeout of our own commands (at least) */
#define MIN_STALL_MS     1000 /* silence that drops a connection with commands waiting (at least) */
#define FLUSH_SCAN_COUNT 256  /* SCAN ... COUNT per batch */
#define MAX_SEEDS        64
#define ASKING_LEN       16 /* "*1\r\n$6\r\nASKING\r\n" */

static const char TAG[] = "redis";

/* ---- types ------------------------------------------------------------------------- */

typedef enum conn_state {
    CONN_DOWN = 0,   /* no context; reconnect at retry_at (when wanted) */
    CONN_RESOLVING,  /* uv_getaddrinfo in flight */
    CONN_CONNECTING, /* context made, TCP connect in progress (commands are buffered) */
    CONN_UP,
} conn_state_t;

typedef enum conn_role {
    ROLE_NODE = 0, /* commands */
    ROLE_SUB,      /* the subscriber */
} conn_role_t;

typedef struct rconn rconn_t;

typedef struct resolve {
    uv_getaddrinfo_t req; /* owned by the loop until its callback */
    rconn_t *c;           /* NULL once the connection gave up on it */
} resolve_t;

struct rconn {
    px_redis_t *r;
    conn_role_t role;
    conn_state_t state;
    char *host; /* as configured or announced; owned */
    uint16_t port;
    bool numeric;                /* host is an IP literal: no resolution */
    char addr[INET6_ADDRSTRLEN]; /* the address connected to */
    redisAsyncContext *ac;       /* CONNECTING/UP; owned (freed through hiredis) */
    resolve_t *resolve;          /* RESOLVING */
    uint64_t deadline;           /* RESOLVING/CONNECTING: give up at (now_ms) */
    uint64_t retry_at;           /* DOWN: earliest reconnect (now_ms) */
    uint64_t waiting_since;      /* UP: last reply, or when the first waiting command went */
    uint32_t backoff_ms;         /* the next backoff */
    uint32_t fails;              /* consecutive failures since the last success */
    uint32_t inflight;           /* commands on this context whose reply has not come */
    bool tried;                  /* a connection was attempted before (reconnect counter) */
};

typedef struct node {
    rconn_t c;     /* its connection (c.host/c.port name the node) */
    bool seed;     /* from cluster_nodes: never forgotten */
    bool in_map;   /* in the last slot map (master or replica), or named by MOVED */
    bool master;   /* serves slots in the current map */
    uint32_t refs; /* commands targeting it and flush jobs: not pruned while > 0 */
} node_t;

typedef enum cmd_kind {
    K_GET = 0, /* the caller's value callback */
    K_VOID,    /* SET / DEL / PUBLISH: fire-and-forget */
    K_SLOTS,   /* CLUSTER SLOTS */
    K_SCAN,    /* flush: SCAN */
    K_UNLINK,  /* flush: UNLINK */
} cmd_kind_t;

typedef struct flush_job flush_job_t;

typedef struct cmd {
    struct cmd *prev, *next; /* deadline list while live; free list (next) while free */
    uint32_t gen;            /* bumped per use: request id = gen << 32 | index + 1 */
    uint8_t kind;            /* cmd_kind_t */
    uint8_t redirects;       /* MOVED/ASK followed so far */
    bool used;               /* taken from the pool */
    bool live;               /* not completed towards its owner yet */
    bool sent;               /* hiredis holds a callback for it */
    bool reserve;            /* took one of the RESERVED_CMDS entries */
    node_t *target;          /* our commands: the node they must run on (ref held) */
    flush_job_t *job;        /* K_SCAN/K_UNLINK */
    uint64_t deadline;       /* now_ms() */
    uint64_t t0;             /* uv_hrtime() at issue, for latency */
    px_redis_value_cb cb;    /* K_GET; NULL once cancelled */
    void *arg;
    char *buf; /* the RESP command; owned */
    size_t len;
} cmd_t;

typedef struct cmd_list {
    cmd_t *head, *tail;
} cmd_list_t;

struct flush_job {
    node_t *node;     /* a master (ref held); NULL once done */
    char cursor[24];  /* SCAN cursor: "0" at the start and, once started, at the end */
    bool started;     /* the first SCAN went */
    uint32_t unlinks; /* UNLINKs of the current batch in flight (+1 while sending them) */
};

typedef struct px_redis_st {
    _Atomic uint64_t commands, errors, timeouts, redirects, reconnects, bytes_in, bytes_out;
    _Atomic uint64_t lat_sum, lat_n;
} px_redis_st_t;

struct px_redis {
    uv_loop_t *loop;
    uv_timer_t *timer; /* separately allocated: freed by its close callback */
    bool timer_armed;
    uint64_t timer_due;

    px_redis_config_t cfg; /* strings below are our copies */
    char *cfg_host, *cfg_seeds, *cfg_name;
    bool cluster;
    bool closing;   /* px_redis_free called: no new work, no callbacks */
    bool torn_down; /* teardown ran (guards re-entry) */
    uint32_t depth; /* nesting of enter(); teardown waits for 0 */
    uint32_t internal_timeout_ms, stall_ms;
    uint64_t rng;

    node_t **nodes; /* single node: nodes[0] */
    uint16_t nnodes, nodes_cap;
    uint16_t *slots;     /* cluster: slot -> index in nodes, NO_NODE if unknown */
    uint16_t *slots_tmp; /* scratch for CLUSTER SLOTS */
    uint32_t covered;    /* slots with a node */
    bool refresh_wanted, refresh_inflight;
    uint64_t refresh_at, last_refresh;
    uint32_t refresh_rr;

    cmd_t *cmds; /* the pool */
    uint32_t ncmds, nuser, nreserve;
    cmd_t *free_cmds;
    uint64_t pending_bytes;
    cmd_list_t user_list, own_list;

    struct {
        bool active;
        char *channel;
        size_t chlen;
        void (*on_msg)(void *arg, const char *msg, size_t len);
        void (*on_state)(void *arg, bool subscribed);
        void *arg;
        bool subscribed;
        uint32_t rr;
        rconn_t c;
    } sub;

    struct {
        flush_job_t *jobs;
        uint16_t njobs, running;
        char *pattern;
        size_t plen;
        char *pending; /* prefix to flush again when this one ends */
    } flush;

    px_redis_st_t st;
};

#define ST_ADD(r, f, n) atomic_fetch_add_explicit(&(r)->st.f, (uint64_t)(n), memory_order_relaxed)
#define ST_INC(r, f)    ST_ADD(r, f, 1)

static void conn_connect(px_redis_t *r, rconn_t *c);
static void conn_open(px_redis_t *r, rconn_t *c);
static void conn_drop(px_redis_t *r, rconn_t *c, const char *why);
static void finish(px_redis_t *r, cmd_t *c, px_redis_status_t st, const redisReply *reply);
static void refresh_request(px_redis_t *r);
static void schedule(px_redis_t *r, uint64_t due);
static void sub_repoint(px_redis_t *r);
static void teardown(px_redis_t *r);
static void flush_job_next(px_redis_t *r, flush_job_t *j);
static void flush_scan_done(px_redis_t *r, flush_job_t *j, const redisReply *rp);

/* ---- small helpers ------------------------------------------------------------------- */

/* Our clock for deadlines, backoffs and stall checks: the monotonic clock read now, not
 * the loop's cached time, which lags by however long the current loop iteration has
 * run (a command issued late in a long iteration would get a deadline in the past). */
static uint64_t now_ms(const px_redis_t *r)
{
    (void)r;
    return uv_hrtime() / 1000000u;
}

static void enter(px_redis_t *r)
{
    r->depth++;
}

/* The end of an entry point. When it was the outermost one and px_redis_free was called
 * meanwhile, r is freed here: the caller must return without touching it. */
static void leave(px_redis_t *r)
{
    if (--r->depth == 0 && r->closing && !r->torn_down)
        teardown(r);
}

static char *xstrndup(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (p != NULL) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

static uint32_t jitter(px_redis_t *r, uint32_t ms)
{
    /* xorshift64: +-20% so the workers of one proxy do not reconnect in lockstep */
    r->rng ^= r->rng << 13;
    r->rng ^= r->rng >> 7;
    r->rng ^= r->rng << 17;
    uint32_t span = ms / 5;
    if (span == 0)
        return ms;
    return ms - span + (uint32_t)(r->rng % (2u * span + 1u));
}

static bool is_ip_literal(const char *h)
{
    unsigned char buf[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, h, buf) == 1 || inet_pton(AF_INET6, h, buf) == 1;
}

/* "host:port", "[v6]:port" or "v6:port" (the port is after the last colon). */
static bool parse_hostport(const char *s, size_t n, char **host, uint16_t *port)
{
    const char *colon = NULL;
    for (size_t i = 0; i < n; i++)
        if (s[i] == ':')
            colon = s + i;
    if (colon == NULL || colon == s + n - 1)
        return false;
    unsigned long p = 0;
    for (const char *q = colon + 1; q < s + n; q++) {
        if (*q < '0' || *q > '9' || p > 65535)
            return false;
        p = p * 10 + (unsigned long)(*q - '0');
    }
    if (p == 0 || p > 65535)
        return false;
    const char *h = s;
    size_t hl = (size_t)(colon - s);
    if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
        h++;
        hl -= 2;
    }
    *host = xstrndup(h, hl);
    if (*host == NULL)
        return false;
    *port = (uint16_t)p;
    return true;
}

/* ---- CRC16 key slots (Redis Cluster spec: CRC16-CCITT/XMODEM, {hash tags}) ------------ */

static uint16_t crc16(const unsigned char *p, size_t n)
{
    uint16_t crc = 0;
    for (size_t i = 0; i < n; i++) {
        crc ^= (uint16_t)(p[i] << 8);
        for (int b = 0; b < 8; b++)
            crc = (crc & 0x8000) ? (uint16_t)((crc << 1) ^ 0x1021) : (uint16_t)(crc << 1);
    }
    return crc;
}

uint16_t px_redis_key_slot(const void *key, size_t klen)
{
    const unsigned char *k = key;
    size_t s;
    for (s = 0; s < klen && k[s] != '{'; s++)
        ;
    if (s < klen) {
        size_t e;
        for (e = s + 1; e < klen && k[e] != '}'; e++)
            ;
        if (e < klen && e > s + 1)
            return crc16(k + s + 1, e - s - 1) & (SLOTS - 1);
    }
    return crc16(k, klen) & (SLOTS - 1);
}

/* ---- RESP ------------------------------------------------------------------------------ */

static size_t digits(uint64_t v)
{
    size_t d = 1;
    while (v >= 10) {
        v /= 10;
        d++;
    }
    return d;
}

/* One RESP array command from argc binary-safe arguments, in one allocation. */
static char *resp_format(int argc, const void *const *argv, const size_t *lens, size_t *out)
{
    size_t n = 1 + digits((uint64_t)argc) + 2;
    for (int i = 0; i < argc; i++)
        n += 1 + digits(lens[i]) + 2 + lens[i] + 2;
    char *buf = malloc(n + 1);
    if (buf == NULL)
        return NULL;
    char *p = buf + sprintf(buf, "*%d\r\n", argc);
    for (int i = 0; i < argc; i++) {
        p += sprintf(p, "$%zu\r\n", lens[i]);
        if (lens[i] > 0)
            memcpy(p, argv[i], lens[i]);
        p += lens[i];
        *p++ = '\r';
        *p++ = '\n';
    }
    *out = (size_t)(p - buf);
    return buf;
}

/* Bytes a RESP2 reply took on the wire, for bytes_in. */
static size_t resp_size(const redisReply *rp)
{
    switch (rp->type) {
    case REDIS_REPLY_STRING:
        return 1 + digits(rp->len) + 2 + rp->len + 2;
    case REDIS_REPLY_NIL:
        return 5;
    case REDIS_REPLY_INTEGER:
        return 1 + (rp->integer < 0) +
               digits(rp->integer < 0 ? 0 - (uint64_t)rp->integer : (uint64_t)rp->integer) + 2;
    case REDIS_REPLY_STATUS:
    case REDIS_REPLY_ERROR:
        return 1 + rp->len + 2;
    case REDIS_REPLY_ARRAY: {
        size_t n = 1 + digits(rp->elements) + 2;
        for (size_t i = 0; i < rp->elements; i++)
            n += resp_size(rp->element[i]);
        return n;
    }
    default:
        return 0;
    }
}

const char *px_redis_status_to_str(px_redis_status_t st)
{
    switch (st) {
    case PX_REDIS_OK:
        return "ok";
    case PX_REDIS_NIL:
        return "nil";
    case PX_REDIS_ERR:
        return "error";
    }
    return "?";
}

/* ---- hiredis event adapter --------------------------------------------------------------- */

typedef struct ev {
    redisAsyncContext *ac; /* NULL once hiredis cleaned up */
    uv_poll_t poll;        /* freed with this struct in its close callback */
    int events;
} ev_t;

static void ev_poll_cb(uv_poll_t *h, int status, int events)
{
    ev_t *p = h->data;
    if (p->ac == NULL)
        return;
    rconn_t *c = p->ac->data;
    px_redis_t *r = c->r;
    enter(r);
    /* On POLLERR libuv passes UV_EBADF and stops the watcher: run what hiredis waits for,
     * so it sees the socket error (connect refused, reset) and disconnects. */
    int ev = status < 0 ? p->events : events;
    if (p->ac != NULL && (ev & UV_READABLE))
        redisAsyncHandleRead(p->ac);
    if (p->ac != NULL && (ev & UV_WRITABLE))
        redisAsyncHandleWrite(p->ac);
    if (status < 0 && p->ac != NULL && c->ac == p->ac)
        conn_drop(r, c, "socket error"); /* still there, but no longer watched */
    leave(r);
}

static void ev_update(ev_t *p)
{
    if (p->events)
        (void)uv_poll_start(&p->poll, p->events, ev_poll_cb);
    else
        (void)uv_poll_stop(&p->poll);
}

static void ev_add_read(void *d)
{
    ev_t *p = d;
    p->events |= UV_READABLE;
    ev_update(p);
}

static void ev_del_read(void *d)
{
    ev_t *p = d;
    p->events &= ~UV_READABLE;
    ev_update(p);
}

static void ev_add_write(void *d)
{
    ev_t *p = d;
    p->events |= UV_WRITABLE;
    ev_update(p);
}

static void ev_del_write(void *d)
{
    ev_t *p = d;
    p->events &= ~UV_WRITABLE;
    ev_update(p);
}

static void ev_close_cb(uv_handle_t *h)
{
    free(h->data);
}

/* hiredis 0.14 may call this twice for one context (disconnect, then free): the hooks
 * are unset on the first call, so later event calls and the second cleanup are no-ops. */
static void ev_cleanup(void *d)
{
    ev_t *p = d;
    redisAsyncContext *ac = p->ac;
    if (ac == NULL)
        return;
    ac->ev.addRead = ac->ev.delRead = ac->ev.addWrite = ac->ev.delWrite = NULL;
    ac->ev.cleanup = NULL;
    ac->ev.data = NULL;
    p->ac = NULL;
    uv_close((uv_handle_t *)&p->poll, ev_close_cb);
}

static bool ev_attach(redisAsyncContext *ac, uv_loop_t *loop)
{
    ev_t *p = calloc(1, sizeof *p);
    if (p == NULL)
        return false;
    if (uv_poll_init_socket(loop, &p->poll, ac->c.fd) != 0) {
        free(p);
        return false;
    }
    p->poll.data = p;
    p->ac = ac;
    ac->ev.data = p;
    ac->ev.addRead = ev_add_read;
    ac->ev.delRead = ev_del_read;
    ac->ev.addWrite = ev_add_write;
    ac->ev.delWrite = ev_del_write;
    ac->ev.cleanup = ev_cleanup;
    return true;
}

/* ---- the command pool and deadline lists ----------------------------------------------- */

static void list_append(cmd_list_t *l, cmd_t *c)
{
    c->next = NULL;
    c->prev = l->tail;
    if (l->tail != NULL)
        l->tail->next = c;
    else
        l->head = c;
    l->tail = c;
}

static void list_remove(cmd_list_t *l, cmd_t *c)
{
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        l->head = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    else
        l->tail = c->prev;
    c->prev = c->next = NULL;
}

static bool is_own(cmd_kind_t k)
{
    return k == K_SLOTS || k == K_SCAN || k == K_UNLINK;
}

static cmd_list_t *list_of(px_redis_t *r, const cmd_t *c)
{
    return is_own((cmd_kind_t)c->kind) ? &r->own_list : &r->user_list;
}

/* Take a pool entry for a command of @p len bytes (the buffer is attached by the caller).
 * Slot-map refreshes may use the reserve; everything else shares max_pending. */
static cmd_t *cmd_alloc(px_redis_t *r, cmd_kind_t kind, size_t len)
{
    if (r->closing || r->free_cmds == NULL)
        return NULL;
    if (kind == K_SLOTS) {
        if (r->nreserve >= RESERVED_CMDS && r->nuser >= r->cfg.max_pending)
            return NULL;
    } else if (r->nuser >= r->cfg.max_pending ||
               r->pending_bytes + len > r->cfg.max_pending_bytes) {
        return NULL;
    }
    cmd_t *c = r->free_cmds;
    r->free_cmds = c->next;
    uint32_t gen = c->gen + 1;
    memset(c, 0, sizeof *c);
    c->gen = gen != 0 ? gen : 1;
    c->used = true;
    c->kind = (uint8_t)kind;
    c->reserve = kind == K_SLOTS && r->nuser >= r->cfg.max_pending;
    if (c->reserve)
        r->nreserve++;
    else
        r->nuser++;
    c->live = true;
    c->t0 = uv_hrtime();
    uint32_t tmo = is_own(kind) ? r->internal_timeout_ms : r->cfg.command_timeout_ms;
    c->deadline = now_ms(r) + tmo;
    list_append(is_own(kind) ? &r->own_list : &r->user_list, c);
    schedule(r, c->deadline);
    ST_INC(r, commands);
    return c;
}

static void cmd_attach(px_redis_t *r, cmd_t *c, char *buf, size_t len)
{
    c->buf = buf;
    c->len = len;
    r->pending_bytes += len;
}

static void cmd_release_if_idle(px_redis_t *r, cmd_t *c)
{
    if (c->live || c->sent || !c->used)
        return;
    r->pending_bytes -= c->len;
    free(c->buf);
    c->buf = NULL;
    c->len = 0;
    if (c->target != NULL) {
        c->target->refs--;
        c->target = NULL;
    }
    if (c->reserve)
        r->nreserve--;
    else
        r->nuser--;
    c->used = false;
    c->cb = NULL;
    c->job = NULL;
    c->next = r->free_cmds;
    r->free_cmds = c;
}

static px_redis_req_t cmd_id(const px_redis_t *r, const cmd_t *c)
{
    return ((uint64_t)c->gen << 32) | (uint64_t)(c - r->cmds + 1);
}

/* ---- connections --------------------------------------------------------------------- */

static void conn_init(px_redis_t *r, rconn_t *c, conn_role_t role)
{
    memset(c, 0, sizeof *c);
    c->r = r;
    c->role = role;
    c->backoff_ms = r->cfg.retry_min_ms;
}

static bool conn_set_addr(rconn_t *c, const char *host, size_t hlen, uint16_t port)
{
    char *h = xstrndup(host, hlen);
    if (h == NULL)
        return false;
    free(c->host);
    c->host = h;
    c->port = port;
    c->numeric = is_ip_literal(h);
    c->addr[0] = '\0';
    return true;
}

/* Whether the timer should keep this connection up (reconnect when it is down). */
static bool conn_wanted(const px_redis_t *r, const rconn_t *c)
{
    if (c->role == ROLE_SUB)
        return r->sub.active;
    if (!r->cluster)
        return true;
    return ((const node_t *)c)->master;
}

/* The connection went down (failed to connect, dropped, or dropped by us): back off,
 * and tell whoever depends on it. Its context is already detached (c->ac == NULL). */
static void conn_down(px_redis_t *r, rconn_t *c, const char *why)
{
    bool was_up = c->state == CONN_UP;
    c->state = CONN_DOWN;
    if (r->closing)
        return;
    uint64_t now = now_ms(r);
    uint32_t delay = jitter(r, c->backoff_ms);
    c->retry_at = now + delay;
    c->backoff_ms =
        c->backoff_ms >= r->cfg.retry_max_ms / 2 ? r->cfg.retry_max_ms : c->backoff_ms * 2;
    if (c->fails++ == 0)
        px_log_warn(TAG, "%s %s:%u %s: %s; retrying in %u ms",
                    c->role == ROLE_SUB ? "subscriber" : "node", c->host, c->port,
                    was_up ? "lost" : "unreachable", why ? why : "error", delay);
    else
        px_log_debug(TAG, "%s:%u still unreachable (%u failures): %s; retrying in %u ms", c->host,
                     c->port, c->fails, why ? why : "error", delay);
    if (c->role == ROLE_SUB) {
        bool was = r->sub.subscribed;
        r->sub.subscribed = false;
        if (was && r->sub.on_state != NULL)
            r->sub.on_state(r->sub.arg, false);
    } else if (r->cluster) {
        refresh_request(r);
    }
    if (!r->closing && conn_wanted(r, c))
        schedule(r, c->retry_at);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    resolve_t *q = (resolve_t *)req;
    rconn_t *c = q->c;
    free(q);
    if (c == NULL) { /* the connection gave up on this resolution */
        uv_freeaddrinfo(res);
        return;
    }
    px_redis_t *r = c->r;
    enter(r);
    c->resolve = NULL;
    const char *err = NULL;
    if (status < 0 || res == NULL) {
        err = status < 0 ? uv_strerror(status) : "no address";
    } else if (res->ai_family == AF_INET6) {
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)res->ai_addr)->sin6_addr, c->addr,
                  sizeof c->addr);
    } else {
        inet_ntop(AF_INET, &((struct sockaddr_in *)res->ai_addr)->sin_addr, c->addr,
                  sizeof c->addr);
    }
    uv_freeaddrinfo(res);
    if (err != NULL)
        conn_down(r, c, err);
    else
        conn_open(r, c);
    leave(r);
}

/* Start (re)connecting. Names are resolved on the threadpool every time (an address
 * behind a name may change), literals are used as they are. */
static void conn_connect(px_redis_t *r, rconn_t *c)
{
    if (r->closing || c->state != CONN_DOWN)
        return;
    if (c->tried)
        ST_INC(r, reconnects);
    c->tried = true;
    c->deadline = now_ms(r) + r->cfg.connect_timeout_ms;
    schedule(r, c->deadline);
    if (c->numeric) {
        snprintf(c->addr, sizeof c->addr, "%s", c->host);
        conn_open(r, c);
        return;
    }
    resolve_t *q = calloc(1, sizeof *q);
    if (q == NULL) {
        conn_down(r, c, "out of memory");
        return;
    }
    q->c = c;
    char port[8];
    snprintf(port, sizeof port, "%u", c->port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    int rc = uv_getaddrinfo(r->loop, &q->req, on_resolved, c->host, port, &hints);
    if (rc != 0) {
        free(q);
        conn_down(r, c, uv_strerror(rc));
        return;
    }
    c->resolve = q;
    c->state = CONN_RESOLVING;
}

static void on_sub_reply(redisAsyncContext *ac, void *reply, void *priv);

static void on_connect(const redisAsyncContext *cac, int status)
{
    redisAsyncContext *ac = (redisAsyncContext *)cac;
    rconn_t *c = ac->data;
    px_redis_t *r = c->r;
    if (c->ac != ac)
        return;
    if (status != REDIS_OK) {
        /* hiredis frees the context after this returns, failing its commands */
        c->ac = NULL;
        conn_down(r, c, ac->errstr[0] ? ac->errstr : "connect failed");
        return;
    }
    c->state = CONN_UP;
    c->waiting_since = now_ms(r);
    if (c->fails > 0)
        px_log_info(TAG, "%s:%u connected again after %u failures", c->host, c->port, c->fails);
    else
        px_log_debug(TAG, "%s:%u connected", c->host, c->port);
    c->fails = 0;
    c->backoff_ms = r->cfg.retry_min_ms;
    if (c->inflight > 0 || c->role == ROLE_SUB)
        schedule(r, c->waiting_since + r->stall_ms);
}

static void on_disconnect(const redisAsyncContext *cac, int status)
{
    redisAsyncContext *ac = (redisAsyncContext *)cac;
    rconn_t *c = ac->data;
    if (c == NULL || c->ac != ac)
        return; /* we dropped it ourselves */
    c->ac = NULL;
    conn_down(c->r, c,
              status == REDIS_OK ? "closed" : (ac->errstr[0] ? ac->errstr : "connection error"));
}

/* Make the hiredis context for c->addr (non-blocking connect) and queue what every
 * connection sends first: CLIENT SETNAME, and SUBSCRIBE on the subscriber's. */
static void conn_open(px_redis_t *r, rconn_t *c)
{
    redisAsyncContext *ac = redisAsyncConnect(c->addr, c->port);
    if (ac == NULL) {
        c->state = CONN_DOWN;
        conn_down(r, c, "out of memory");
        return;
    }
    if (ac->err) {
        char err[128];
        snprintf(err, sizeof err, "%s", ac->errstr);
        redisAsyncFree(ac); /* never attached: no callbacks */
        c->state = CONN_DOWN;
        conn_down(r, c, err);
        return;
    }
    if (!ev_attach(ac, r->loop)) {
        redisAsyncFree(ac);
        c->state = CONN_DOWN;
        conn_down(r, c, "cannot watch the socket");
        return;
    }
    ac->data = c;
    c->ac = ac;
    c->state = CONN_CONNECTING;
    c->inflight = 0;
    (void)redisAsyncSetConnectCallback(ac, on_connect);
    (void)redisAsyncSetDisconnectCallback(ac, on_disconnect);
    (void)redisEnableKeepAlive(&ac->c);
    if (r->cfg_name != NULL) {
        const char *argv[3] = {"CLIENT", "SETNAME", r->cfg_name};
        size_t lens[3] = {6, 7, strlen(r->cfg_name)};
        (void)redisAsyncCommandArgv(ac, NULL, NULL, 3, argv, lens);
    }
    if (c->role == ROLE_SUB) {
        const char *argv[2] = {"SUBSCRIBE", r->sub.channel};
        size_t lens[2] = {9, r->sub.chlen};
        if (redisAsyncCommandArgv(ac, on_sub_reply, r, 2, argv, lens) != REDIS_OK)
            conn_drop(r, c, "cannot queue SUBSCRIBE");
    }
}

/* Drop c's context (or resolution) now. Never called from a hiredis callback: the
 * context's remaining commands are failed synchronously by redisAsyncFree. */
static void conn_drop(px_redis_t *r, rconn_t *c, const char *why)
{
    redisAsyncContext *ac = c->ac;
    c->ac = NULL;
    if (c->resolve != NULL) {
        c->resolve->c = NULL;
        (void)uv_cancel((uv_req_t *)&c->resolve->req);
        c->resolve = NULL;
    }
    if (c->state != CONN_DOWN)
        conn_down(r, c, why);
    if (ac != NULL)
        redisAsyncFree(ac);
}

/* Can a command go to c now? Connects a wanted connection whose backoff ran out. A
 * connection being re-made after a failure takes nothing (it is probably still down):
 * commands fail fast instead of waiting for it. */
static bool conn_ready(px_redis_t *r, rconn_t *c)
{
    if (c->state == CONN_DOWN && now_ms(r) >= c->retry_at)
        conn_connect(r, c);
    return c->state == CONN_UP || (c->state == CONN_CONNECTING && c->fails == 0);
}

/* ---- nodes and the slot map -------------------------------------------------------- */

static node_t *node_find(px_redis_t *r, const char *host, size_t hlen, uint16_t port)
{
    for (uint16_t i = 0; i < r->nnodes; i++) {
        node_t *n = r->nodes[i];
        if (n->c.port == port && strlen(n->c.host) == hlen && memcmp(n->c.host, host, hlen) == 0)
            return n;
    }
    return NULL;
}

static uint16_t node_index(const px_redis_t *r, const node_t *n)
{
    for (uint16_t i = 0; i < r->nnodes; i++)
        if (r->nodes[i] == n)
            return i;
    return NO_NODE;
}

static node_t *node_get(px_redis_t *r, const char *host, size_t hlen, uint16_t port)
{
    node_t *n = node_find(r, host, hlen, port);
    if (n != NULL)
        return n;
    if (r->nnodes >= PX_REDIS_MAX_NODES) {
        px_log_warn(TAG, "more than %d cluster nodes; ignoring %.*s:%u", PX_REDIS_MAX_NODES,
                    (int)hlen, host, port);
        return NULL;
    }
    if (r->nnodes == r->nodes_cap) {
        uint16_t cap = r->nodes_cap ? (uint16_t)(r->nodes_cap * 2) : 8;
        node_t **nn = realloc(r->nodes, cap * sizeof *nn);
        if (nn == NULL)
            return NULL;
        r->nodes = nn;
        r->nodes_cap = cap;
    }
    n = calloc(1, sizeof *n);
    if (n == NULL)
        return NULL;
    conn_init(r, &n->c, ROLE_NODE);
    if (!conn_set_addr(&n->c, host, hlen, port)) {
        free(n);
        return NULL;
    }
    r->nodes[r->nnodes++] = n;
    return n;
}

static void node_free(node_t *n)
{
    free(n->c.host);
    free(n);
}

/* Close a connection that has nothing in flight, without counting a failure. */
static void conn_close_idle(rconn_t *c)
{
    redisAsyncContext *ac = c->ac;
    c->ac = NULL;
    c->state = CONN_DOWN;
    c->retry_at = 0;
    px_log_debug(TAG, "%s:%u: closing an idle connection to a node without slots", c->host,
                 c->port);
    redisAsyncFree(ac);
}

/* Forget nodes that left the map (not seeds, nothing pointing at them), and close idle
 * connections to nodes that serve no slots (replicas asked for the map while masters
 * were unreachable). Runs from the timer only: dropping a connection fails its
 * commands synchronously. */
static void nodes_prune(px_redis_t *r)
{
    bool any = false;
    for (uint16_t i = 0; i < r->nnodes; i++) {
        node_t *n = r->nodes[i];
        if (!n->master && n->c.state == CONN_UP && n->c.inflight == 0 && n->refs == 0 &&
            r->covered == SLOTS)
            conn_close_idle(&n->c);
        if (!n->seed && !n->in_map && n->refs == 0) {
            any = true;
            if (n->c.ac != NULL || n->c.resolve != NULL)
                conn_drop(r, &n->c, "no longer in the cluster");
        }
    }
    if (!any || r->closing)
        return;
    uint16_t remap[PX_REDIS_MAX_NODES];
    uint16_t k = 0;
    for (uint16_t i = 0; i < r->nnodes; i++) {
        node_t *n = r->nodes[i];
        if (!n->seed && !n->in_map && n->refs == 0 && n->c.ac == NULL && n->c.resolve == NULL) {
            px_log_debug(TAG, "forgetting node %s:%u", n->c.host, n->c.port);
            node_free(n);
            remap[i] = NO_NODE;
        } else {
            remap[i] = k;
            r->nodes[k++] = n;
        }
    }
    if (k == r->nnodes)
        return;
    r->nnodes = k;
    for (uint32_t s = 0; s < SLOTS; s++) {
        if (r->slots[s] != NO_NODE) {
            r->slots[s] = remap[r->slots[s]];
            r->covered -= r->slots[s] == NO_NODE; /* not expected: mapped nodes are in_map */
        }
    }
}

static void refresh_request(px_redis_t *r)
{
    if (!r->cluster || r->closing || r->refresh_wanted)
        return;
    r->refresh_wanted = true;
    uint64_t now = now_ms(r);
    r->refresh_at = r->last_refresh + REFRESH_GAP_MS > now ? r->last_refresh + REFRESH_GAP_MS : now;
    schedule(r, r->refresh_at);
}

/* A node to ask for the slot map: one that is up, else one that may be connected to
 * now, round robin so a node that keeps failing is not asked forever. */
static node_t *refresh_pick(px_redis_t *r)
{
    uint64_t now = now_ms(r);
    for (int pass = 0; pass < 3; pass++) {
        for (uint16_t k = 0; k < r->nnodes; k++) {
            node_t *n = r->nodes[(r->refresh_rr + k) % r->nnodes];
            const rconn_t *c = &n->c;
            bool ok = pass == 0   ? c->state == CONN_UP
                      : pass == 1 ? c->state == CONN_CONNECTING && c->fails == 0
                                  : c->state == CONN_DOWN && now >= c->retry_at;
            if (ok) {
                r->refresh_rr = (r->refresh_rr + k + 1) % r->nnodes;
                return n;
            }
        }
    }
    return NULL;
}

static bool cmd_send(px_redis_t *r, cmd_t *c, node_t *n, bool asking);

static void refresh_start(px_redis_t *r)
{
    uint64_t now = now_ms(r);
    r->refresh_wanted = false;
    r->last_refresh = now;
    node_t *n = refresh_pick(r);
    if (n == NULL) {
        px_log_debug(TAG, "no cluster node reachable for CLUSTER SLOTS");
        return; /* the timer tries again when a backoff runs out */
    }
    static const void *const argv[2] = {"CLUSTER", "SLOTS"};
    static const size_t lens[2] = {7, 5};
    size_t len;
    char *buf = resp_format(2, argv, lens, &len);
    cmd_t *c = buf != NULL ? cmd_alloc(r, K_SLOTS, len) : NULL;
    if (c == NULL) {
        free(buf);
        ST_INC(r, errors);
        return;
    }
    cmd_attach(r, c, buf, len);
    c->target = n;
    n->refs++;
    r->refresh_inflight = true;
    if (!cmd_send(r, c, n, false))
        finish(r, c, PX_REDIS_ERR, NULL);
}

static bool reply_is(const redisReply *rp, int type)
{
    return rp != NULL && rp->type == type;
}

/* Apply a CLUSTER SLOTS reply from @p from. Returns false (map unchanged) when it is
 * malformed or serves no slot. */
static bool slots_apply(px_redis_t *r, node_t *from, const redisReply *rp)
{
    if (!reply_is(rp, REDIS_REPLY_ARRAY))
        return false;
    if (r->slots_tmp == NULL && (r->slots_tmp = malloc(SLOTS * sizeof(uint16_t))) == NULL)
        return false;
    uint16_t *tmp = r->slots_tmp;
    for (uint32_t s = 0; s < SLOTS; s++)
        tmp[s] = NO_NODE;
    /* Nodes are looked up (and created) first; flags change only once the reply is
     * known to be good. */
    uint32_t covered = 0;
    for (size_t i = 0; i < rp->elements; i++) {
        const redisReply *e = rp->element[i];
        if (!reply_is(e, REDIS_REPLY_ARRAY) || e->elements < 3 ||
            !reply_is(e->element[0], REDIS_REPLY_INTEGER) ||
            !reply_is(e->element[1], REDIS_REPLY_INTEGER))
            return false;
        long long a = e->element[0]->integer, b = e->element[1]->integer;
        if (a < 0 || b < a || b >= SLOTS)
            return false;
        for (size_t j = 2; j < e->elements; j++) {
            const redisReply *nd = e->element[j];
            if (!reply_is(nd, REDIS_REPLY_ARRAY) || nd->elements < 2 ||
                !reply_is(nd->element[0], REDIS_REPLY_STRING) ||
                !reply_is(nd->element[1], REDIS_REPLY_INTEGER) || nd->element[1]->integer <= 0 ||
                nd->element[1]->integer > 65535)
                return false;
            const char *h = nd->element[0]->str;
            size_t hl = nd->element[0]->len;
            if (hl == 0 || (hl == 1 && h[0] == '?')) { /* "the node you asked" */
                h = from->c.host;
                hl = strlen(h);
            }
            node_t *n = node_get(r, h, hl, (uint16_t)nd->element[1]->integer);
            if (n == NULL)
                continue;
            if (j == 2) {
                uint16_t idx = node_index(r, n);
                for (long long s = a; s <= b; s++) {
                    if (tmp[s] == NO_NODE)
                        covered++;
                    tmp[s] = idx;
                }
            }
        }
    }
    if (covered == 0)
        return false;
    for (uint16_t i = 0; i < r->nnodes; i++)
        r->nodes[i]->in_map = r->nodes[i]->master = false;
    for (size_t i = 0; i < rp->elements; i++) {
        const redisReply *e = rp->element[i];
        for (size_t j = 2; j < e->elements; j++) {
            const redisReply *nd = e->element[j];
            const char *h = nd->element[0]->str;
            size_t hl = nd->element[0]->len;
            if (hl == 0 || (hl == 1 && h[0] == '?')) {
                h = from->c.host;
                hl = strlen(h);
            }
            node_t *n = node_find(r, h, hl, (uint16_t)nd->element[1]->integer);
            if (n != NULL) {
                n->in_map = true;
                if (j == 2)
                    n->master = true;
            }
        }
    }
    bool changed = r->covered != covered || memcmp(r->slots, tmp, SLOTS * sizeof *tmp) != 0;
    memcpy(r->slots, tmp, SLOTS * sizeof *tmp);
    r->covered = covered;
    if (changed) {
        unsigned masters = 0;
        for (uint16_t i = 0; i < r->nnodes; i++)
            masters += r->nodes[i]->master;
        px_log_info(TAG, "cluster slot map from %s:%u: %u masters, %u of %d slots served",
                    from->c.host, from->c.port, masters, covered, SLOTS);
        if (r->sub.active)
            schedule(r, now_ms(r)); /* the subscription may belong elsewhere now */
    }
    return true;
}

static void slots_done(px_redis_t *r, node_t *from, const redisReply *rp)
{
    r->refresh_inflight = false;
    if (r->closing)
        return;
    if (rp == NULL || !slots_apply(r, from, rp)) {
        px_log_debug(TAG, "CLUSTER SLOTS from %s:%u failed", from->c.host, from->c.port);
        refresh_request(r);
        return;
    }
    schedule(r, now_ms(r)); /* connect new masters, prune old nodes */
}

/* Node for a key's slot (cluster) or the node (single). NULL when unknown. */
static node_t *route(px_redis_t *r, uint16_t slot)
{
    if (!r->cluster)
        return r->nodes[0];
    uint16_t i = r->slots[slot];
    if (i == NO_NODE) {
        refresh_request(r);
        return NULL;
    }
    return r->nodes[i];
}

/* ---- sending and completing --------------------------------------------------------- */

static void on_reply(redisAsyncContext *ac, void *reply, void *priv);

static bool cmd_send(px_redis_t *r, cmd_t *c, node_t *n, bool asking)
{
    rconn_t *conn = &n->c;
    if (r->closing || !conn_ready(r, conn))
        return false;
    if (asking && redisAsyncCommand(conn->ac, NULL, NULL, "ASKING") != REDIS_OK)
        return false;
    if (redisAsyncFormattedCommand(conn->ac, on_reply, c, c->buf, c->len) != REDIS_OK)
        return false;
    c->sent = true;
    if (conn->inflight++ == 0 && conn->state == CONN_UP) {
        conn->waiting_since = now_ms(r);
        schedule(r, conn->waiting_since + r->stall_ms);
    }
    ST_ADD(r, bytes_out, c->len + (asking ? ASKING_LEN : 0));
    return true;
}

/* Complete a live command towards its owner. Runs the caller's callback (or our
 * handler) last, after the pool entry was given back when possible. */
static void finish(px_redis_t *r, cmd_t *c, px_redis_status_t st, const redisReply *reply)
{
    if (!c->live)
        return;
    c->live = false;
    list_remove(list_of(r, c), c);
    if (st == PX_REDIS_ERR) {
        ST_INC(r, errors);
    } else {
        ST_ADD(r, lat_sum, (uv_hrtime() - c->t0) / 1000u);
        ST_INC(r, lat_n);
    }
    cmd_kind_t kind = (cmd_kind_t)c->kind;
    px_redis_value_cb cb = c->cb;
    void *arg = c->arg;
    flush_job_t *job = c->job;
    node_t *target = c->target;
    if (target != NULL)
        target->refs++; /* kept for the handler below */
    c->cb = NULL;
    cmd_release_if_idle(r, c);
    switch (kind) {
    case K_GET:
        if (cb != NULL) {
            if (st == PX_REDIS_OK)
                cb(arg, st, reply->str, reply->len);
            else
                cb(arg, st, NULL, 0);
        }
        break;
    case K_VOID:
        break;
    case K_SLOTS:
        slots_done(r, target, st == PX_REDIS_OK ? reply : NULL);
        break;
    case K_SCAN:
        flush_scan_done(r, job, st == PX_REDIS_OK ? reply : NULL);
        break;
    case K_UNLINK:
        if (--job->unlinks == 0)
            flush_job_next(r, job);
        break;
    }
    if (target != NULL)
        target->refs--;
}

/* -MOVED <slot> <host>:<port> / -ASK <slot> <host>:<port> */
static void on_redirect(px_redis_t *r, cmd_t *c, rconn_t *from, const redisReply *rp, bool ask)
{
    const char *s = rp->str + (ask ? 4 : 6), *end = rp->str + rp->len;
    unsigned long slot = 0;
    while (s < end && *s >= '0' && *s <= '9')
        slot = slot * 10 + (unsigned long)(*s++ - '0');
    char *host = NULL;
    uint16_t port = 0;
    if (s >= end || *s != ' ' || slot >= SLOTS ||
        !parse_hostport(s + 1, (size_t)(end - s - 1), &host, &port)) {
        px_log_warn(TAG, "bad redirection from %s:%u: %.*s", from->host, from->port, (int)rp->len,
                    rp->str);
        finish(r, c, PX_REDIS_ERR, NULL);
        return;
    }
    node_t *n = NULL;
    if (host[0] == '\0') /* unknown endpoint: the same host */
        n = node_get(r, from->host, strlen(from->host), port);
    else
        n = node_get(r, host, strlen(host), port);
    free(host);
    if (n == NULL || c->redirects >= PX_REDIS_MAX_REDIRECTS) {
        if (n != NULL)
            px_log_debug(TAG, "slot %lu: more than %d redirections", slot, PX_REDIS_MAX_REDIRECTS);
        finish(r, c, PX_REDIS_ERR, NULL);
        return;
    }
    c->redirects++;
    ST_INC(r, redirects);
    if (!ask) {
        uint16_t idx = node_index(r, n);
        if (r->slots[slot] == NO_NODE)
            r->covered++;
        r->slots[slot] = idx;
        n->in_map = n->master = true;
        refresh_request(r);
    }
    if (!cmd_send(r, c, n, ask))
        finish(r, c, PX_REDIS_ERR, NULL);
}

static void on_reply(redisAsyncContext *ac, void *reply, void *priv)
{
    cmd_t *c = priv;
    const redisReply *rp = reply;
    rconn_t *conn = ac->data;
    px_redis_t *r = conn->r;
    c->sent = false;
    if (conn->inflight > 0)
        conn->inflight--;
    conn->waiting_since = now_ms(r);
    if (rp != NULL)
        ST_ADD(r, bytes_in, resp_size(rp));
    if (!c->live) { /* timed out or completed meanwhile: only the pool entry is left */
        cmd_release_if_idle(r, c);
        return;
    }
    if (r->closing) {
        finish(r, c, PX_REDIS_ERR, NULL);
        return;
    }
    if (rp == NULL) { /* the connection went away */
        finish(r, c, PX_REDIS_ERR, NULL);
        return;
    }
    if (rp->type == REDIS_REPLY_ERROR) {
        bool moved = rp->len > 6 && strncmp(rp->str, "MOVED ", 6) == 0;
        bool ask = rp->len > 4 && strncmp(rp->str, "ASK ", 4) == 0;
        if (r->cluster && (moved || ask) && c->target == NULL) {
            on_redirect(r, c, conn, rp, ask);
            return;
        }
        if (r->cluster && (moved || (rp->len >= 11 && strncmp(rp->str, "CLUSTERDOWN", 11) == 0)))
            refresh_request(r);
        px_log_debug(TAG, "%s:%u: %.*s", conn->host, conn->port,
                     (int)(rp->len > 200 ? 200 : rp->len), rp->str);
        finish(r, c, PX_REDIS_ERR, NULL);
        return;
    }
    switch ((cmd_kind_t)c->kind) {
    case K_GET:
        if (rp->type == REDIS_REPLY_STRING)
            finish(r, c, PX_REDIS_OK, rp);
        else if (rp->type == REDIS_REPLY_NIL)
            finish(r, c, PX_REDIS_NIL, NULL);
        else
            finish(r, c, PX_REDIS_ERR, NULL);
        break;
    case K_SCAN:
        finish(r, c, rp->type == REDIS_REPLY_ARRAY ? PX_REDIS_OK : PX_REDIS_ERR, rp);
        break;
    default:
        finish(r, c, PX_REDIS_OK, rp);
        break;
    }
}

/* Issue a keyed command: the pool entry, the route, the send. On failure the command
 * is completed at once (a GET's callback runs before this returns) and 0 is returned. */
static px_redis_req_t issue(px_redis_t *r, cmd_kind_t kind, uint16_t slot, int argc,
                            const void *const *argv, const size_t *lens, px_redis_value_cb cb,
                            void *arg)
{
    size_t len = 0;
    char *buf = r->closing ? NULL : resp_format(argc, argv, lens, &len);
    cmd_t *c = buf != NULL ? cmd_alloc(r, kind, len) : NULL;
    if (c == NULL) {
        free(buf);
        ST_INC(r, commands);
        ST_INC(r, errors);
        if (cb != NULL)
            cb(arg, PX_REDIS_ERR, NULL, 0);
        return 0;
    }
    cmd_attach(r, c, buf, len);
    c->cb = cb;
    c->arg = arg;
    node_t *n = route(r, slot);
    if (n == NULL || !cmd_send(r, c, n, false)) {
        finish(r, c, PX_REDIS_ERR, NULL);
        return 0;
    }
    return cmd_id(r, c);
}

/* ---- the timer: deadlines, connection upkeep, refreshes ------------------------------ */

static void timer_cb(uv_timer_t *t);

static void schedule(px_redis_t *r, uint64_t due)
{
    if (r->closing || (r->timer_armed && r->timer_due <= due))
        return;
    uint64_t now = now_ms(r);
    r->timer_armed = true;
    r->timer_due = due;
    (void)uv_timer_start(r->timer, timer_cb, due > now ? due - now : 0, 0);
}

/* The next time a connection needs the timer (UINT64_MAX: never). */
static uint64_t conn_next(const px_redis_t *r, const rconn_t *c)
{
    switch (c->state) {
    case CONN_RESOLVING:
    case CONN_CONNECTING:
        return c->deadline;
    case CONN_UP:
        if (c->inflight > 0 || (c->role == ROLE_SUB && !r->sub.subscribed))
            return c->waiting_since + r->stall_ms;
        return UINT64_MAX;
    case CONN_DOWN:
        return conn_wanted(r, c) ? c->retry_at : UINT64_MAX;
    }
    return UINT64_MAX;
}

static bool cluster_degraded(const px_redis_t *r)
{
    if (r->covered < SLOTS)
        return true;
    for (uint16_t i = 0; i < r->nnodes; i++)
        if (r->nodes[i]->master && r->nodes[i]->c.state == CONN_DOWN)
            return true;
    return false;
}

static uint64_t refresh_next(const px_redis_t *r)
{
    if (!r->cluster || r->refresh_inflight)
        return UINT64_MAX;
    if (r->refresh_wanted)
        return r->refresh_at;
    if (cluster_degraded(r)) { /* keep asking until a failover shows up in the map */
        uint32_t gap = r->cfg.retry_min_ms > REFRESH_GAP_MS ? r->cfg.retry_min_ms : REFRESH_GAP_MS;
        return r->last_refresh + gap;
    }
    return r->last_refresh + PX_REDIS_REFRESH_MS;
}

static void timer_arm(px_redis_t *r)
{
    uint64_t due = UINT64_MAX;
    if (r->user_list.head != NULL)
        due = r->user_list.head->deadline;
    if (r->own_list.head != NULL && r->own_list.head->deadline < due)
        due = r->own_list.head->deadline;
    for (uint16_t i = 0; i < r->nnodes; i++) {
        uint64_t t = conn_next(r, &r->nodes[i]->c);
        if (t < due)
            due = t;
    }
    if (r->sub.active) {
        uint64_t t = conn_next(r, &r->sub.c);
        if (t < due)
            due = t;
    }
    uint64_t t = refresh_next(r);
    if (t < due)
        due = t;
    r->timer_armed = false;
    if (due == UINT64_MAX)
        (void)uv_timer_stop(r->timer);
    else
        schedule(r, due);
}

/* Deadlines and reconnects for one connection. */
static void conn_tick(px_redis_t *r, rconn_t *c, uint64_t now)
{
    char why[64];
    switch (c->state) {
    case CONN_RESOLVING:
    case CONN_CONNECTING:
        if (now >= c->deadline) {
            snprintf(why, sizeof why, "connect timeout (%u ms)", r->cfg.connect_timeout_ms);
            conn_drop(r, c, why);
        }
        break;
    case CONN_UP:
        if ((c->inflight > 0 || (c->role == ROLE_SUB && !r->sub.subscribed)) &&
            now >= c->waiting_since + r->stall_ms) {
            snprintf(why, sizeof why, "no reply for %u ms", r->stall_ms);
            conn_drop(r, c, why);
        }
        break;
    case CONN_DOWN:
        if (conn_wanted(r, c) && now >= c->retry_at)
            conn_connect(r, c);
        break;
    }
}

static void sub_connect(px_redis_t *r);

static void tick(px_redis_t *r)
{
    uint64_t now = now_ms(r);
    cmd_list_t *lists[2] = {&r->user_list, &r->own_list};
    for (int l = 0; l < 2; l++) {
        cmd_t *c;
        while ((c = lists[l]->head) != NULL && c->deadline <= now) {
            ST_INC(r, timeouts);
            finish(r, c, PX_REDIS_ERR, NULL);
            if (r->closing)
                return;
        }
    }
    for (uint16_t i = 0; i < r->nnodes; i++) {
        conn_tick(r, &r->nodes[i]->c, now);
        if (r->closing)
            return;
    }
    if (r->sub.active) {
        if (r->sub.c.state == CONN_DOWN && now >= r->sub.c.retry_at)
            sub_connect(r);
        else
            conn_tick(r, &r->sub.c, now);
        if (r->closing)
            return;
    }
    if (r->cluster) {
        if (!r->refresh_inflight && now >= refresh_next(r))
            refresh_start(r);
        if (r->closing)
            return;
        nodes_prune(r);
        if (r->closing)
            return;
        sub_repoint(r);
        if (r->closing)
            return;
    }
    timer_arm(r);
}

static void timer_cb(uv_timer_t *t)
{
    px_redis_t *r = t->data;
    r->timer_armed = false;
    enter(r);
    if (!r->closing)
        tick(r);
    leave(r);
}

/* ---- subscriber --------------------------------------------------------------------- */

static void on_sub_reply(redisAsyncContext *ac, void *reply, void *priv)
{
    px_redis_t *r = priv;
    const redisReply *rp = reply;
    rconn_t *c = ac->data;
    if (rp == NULL || r->closing || !r->sub.active || c->ac != ac)
        return; /* the connection is going away; conn_down reports the loss */
    ST_ADD(r, bytes_in, resp_size(rp));
    if (rp->type != REDIS_REPLY_ARRAY || rp->elements < 3 ||
        !reply_is(rp->element[0], REDIS_REPLY_STRING))
        return;
    const redisReply *kind = rp->element[0];
    if (kind->len == 7 && strncasecmp(kind->str, "message", 7) == 0) {
        if (reply_is(rp->element[2], REDIS_REPLY_STRING) && r->sub.on_msg != NULL)
            r->sub.on_msg(r->sub.arg, rp->element[2]->str, rp->element[2]->len);
    } else if (kind->len == 9 && strncasecmp(kind->str, "subscribe", 9) == 0) {
        r->sub.subscribed = true;
        px_log_info(TAG, "subscribed to %s on %s:%u", r->sub.channel, c->host, c->port);
        if (r->sub.on_state != NULL)
            r->sub.on_state(r->sub.arg, true);
    }
}

/* The master of the subscribed channel's slot, when the map names one. A PUBLISH
 * reaches that node's subscribers at once; other nodes hear it over the cluster
 * bus, which can add tens of milliseconds. */
static const node_t *sub_owner(const px_redis_t *r)
{
    if (!r->cluster || r->sub.channel == NULL)
        return NULL;
    uint16_t i = r->slots[px_redis_key_slot(r->sub.channel, r->sub.chlen)];
    return i == NO_NODE ? NULL : r->nodes[i];
}

static void sub_connect(px_redis_t *r);

/* A subscription held on another node than the channel's (healthy) master moves there:
 * the subscriber reports the short gap (on_state false, then true). */
static void sub_repoint(px_redis_t *r)
{
    const node_t *o = sub_owner(r);
    rconn_t *c = &r->sub.c;
    if (!r->sub.active || !r->sub.subscribed || o == NULL || o->c.state != CONN_UP ||
        r->covered != SLOTS || c->host == NULL)
        return;
    if (c->port == o->c.port && strcmp(c->host, o->c.host) == 0)
        return;
    r->sub.rr &= ~1u; /* the next connect goes to the owner */
    conn_drop(r, c, "moving the subscription to the channel's master");
}

/* (Re)connect the subscriber: to the configured node, or in a cluster to the channel's
 * master, else (every other try, or with no map yet) the next node in turn (every node
 * relays a cluster's PUBLISH). */
static void sub_connect(px_redis_t *r)
{
    rconn_t *c = &r->sub.c;
    if (r->cluster && r->nnodes > 0) {
        const node_t *n = sub_owner(r);
        if (n == NULL || (r->sub.rr & 1))
            n = r->nodes[r->sub.rr % r->nnodes];
        r->sub.rr++;
        if (!conn_set_addr(c, n->c.host, strlen(n->c.host), n->c.port)) {
            conn_down(r, c, "out of memory");
            return;
        }
    }
    conn_connect(r, c);
}

bool px_redis_subscribe(px_redis_t *r, const char *channel,
                        void (*on_msg)(void *arg, const char *msg, size_t len),
                        void (*on_state)(void *arg, bool subscribed), void *arg)
{
    if (r == NULL || r->closing || r->sub.active || channel == NULL || channel[0] == '\0' ||
        on_msg == NULL)
        return false;
    char *ch = strdup(channel);
    if (ch == NULL)
        return false;
    enter(r);
    conn_init(r, &r->sub.c, ROLE_SUB);
    if (!r->cluster && !conn_set_addr(&r->sub.c, r->cfg_host, strlen(r->cfg_host), r->cfg.port)) {
        free(ch);
        leave(r);
        return false;
    }
    r->sub.channel = ch;
    r->sub.chlen = strlen(ch);
    r->sub.on_msg = on_msg;
    r->sub.on_state = on_state;
    r->sub.arg = arg;
    r->sub.subscribed = false;
    r->sub.active = true;
    sub_connect(r);
    leave(r);
    return true;
}

/* ---- flush ---------------------------------------------------------------------------- */

static void flush_finish(px_redis_t *r)
{
    free(r->flush.jobs);
    free(r->flush.pattern);
    r->flush.jobs = NULL;
    r->flush.pattern = NULL;
    r->flush.njobs = 0;
    char *again = r->flush.pending;
    r->flush.pending = NULL;
    if (again != NULL && !r->closing)
        (void)px_redis_flush_prefix(r, again);
    free(again);
}

static void flush_job_done(px_redis_t *r, flush_job_t *j)
{
    if (j->node == NULL)
        return;
    j->node->refs--;
    j->node = NULL;
    if (--r->flush.running == 0)
        flush_finish(r);
}

/* The job's batch is done: the next SCAN, or the end at cursor 0. */
static void flush_job_next(px_redis_t *r, flush_job_t *j)
{
    if (j->node == NULL)
        return;
    if (r->closing || (j->started && strcmp(j->cursor, "0") == 0)) {
        flush_job_done(r, j);
        return;
    }
    j->started = true;
    char count[8];
    snprintf(count, sizeof count, "%d", FLUSH_SCAN_COUNT);
    const void *argv[6] = {"SCAN", j->cursor, "MATCH", r->flush.pattern, "COUNT", count};
    size_t lens[6] = {4, strlen(j->cursor), 5, r->flush.plen, 5, strlen(count)};
    size_t len;
    char *buf = resp_format(6, argv, lens, &len);
    cmd_t *c = buf != NULL ? cmd_alloc(r, K_SCAN, len) : NULL;
    if (c == NULL) {
        free(buf);
        ST_INC(r, commands);
        ST_INC(r, errors);
        px_log_warn(TAG, "flush on %s:%u stopped: too many commands in flight", j->node->c.host,
                    j->node->c.port);
        flush_job_done(r, j);
        return;
    }
    cmd_attach(r, c, buf, len);
    c->job = j;
    c->target = j->node;
    j->node->refs++;
    if (!cmd_send(r, c, j->node, false))
        finish(r, c, PX_REDIS_ERR, NULL); /* ends the job (flush_scan_done) */
}

/* UNLINK one run of keys of a SCAN batch (the caller holds a batch reference). */
static void flush_unlink(px_redis_t *r, flush_job_t *j, const redisReply *keys, size_t from,
                         size_t cnt)
{
    const void **av = malloc((cnt + 1) * sizeof *av);
    size_t *al = malloc((cnt + 1) * sizeof *al);
    char *buf = NULL;
    size_t len = 0;
    if (av != NULL && al != NULL) {
        av[0] = "UNLINK";
        al[0] = 6;
        for (size_t k = 0; k < cnt; k++) {
            av[k + 1] = keys->element[from + k]->str;
            al[k + 1] = keys->element[from + k]->len;
        }
        buf = resp_format((int)cnt + 1, av, al, &len);
    }
    free(av);
    free(al);
    cmd_t *u = buf != NULL ? cmd_alloc(r, K_UNLINK, len) : NULL;
    if (u == NULL) {
        free(buf);
        ST_INC(r, commands);
        ST_INC(r, errors);
        return;
    }
    cmd_attach(r, u, buf, len);
    u->job = j;
    u->target = j->node;
    j->node->refs++;
    j->unlinks++;
    if (!cmd_send(r, u, j->node, false))
        finish(r, u, PX_REDIS_ERR, NULL);
}

/* A SCAN answered (rp) or failed (NULL): UNLINK its keys, one command per run of keys
 * of the same slot in a cluster (a multi-key command must not cross slots), then go on
 * once they are all answered. */
static void flush_scan_done(px_redis_t *r, flush_job_t *j, const redisReply *rp)
{
    const redisReply *keys = NULL;
    if (rp != NULL && rp->elements == 2 && reply_is(rp->element[0], REDIS_REPLY_STRING) &&
        rp->element[0]->len > 0 && rp->element[0]->len < sizeof j->cursor &&
        reply_is(rp->element[1], REDIS_REPLY_ARRAY)) {
        memcpy(j->cursor, rp->element[0]->str, rp->element[0]->len);
        j->cursor[rp->element[0]->len] = '\0';
        keys = rp->element[1];
    } else {
        snprintf(j->cursor, sizeof j->cursor, "0"); /* give up on this node */
    }
    j->unlinks++; /* the batch reference: a failing UNLINK must not start the next SCAN */
    size_t nk = keys != NULL ? keys->elements : 0;
    for (size_t i = 0; i < nk; i++)
        if (!reply_is(keys->element[i], REDIS_REPLY_STRING))
            nk = 0; /* not a key list */
    size_t i = 0;
    while (i < nk && !r->closing) {
        size_t e = i + 1;
        if (!r->cluster) {
            e = nk;
        } else {
            uint16_t slot = px_redis_key_slot(keys->element[i]->str, keys->element[i]->len);
            while (e < nk &&
                   px_redis_key_slot(keys->element[e]->str, keys->element[e]->len) == slot)
                e++;
        }
        flush_unlink(r, j, keys, i, e - i);
        i = e;
    }
    if (--j->unlinks == 0)
        flush_job_next(r, j);
}

bool px_redis_flush_prefix(px_redis_t *r, const char *prefix)
{
    if (r == NULL || r->closing || prefix == NULL || prefix[0] == '\0')
        return false;
    if (r->flush.njobs > 0) { /* running: once more when it ends */
        if (r->flush.pending != NULL)
            return strcmp(r->flush.pending, prefix) == 0;
        r->flush.pending = strdup(prefix);
        return r->flush.pending != NULL;
    }
    size_t pl = strlen(prefix);
    char *pat = malloc(2 * pl + 2);
    if (pat == NULL)
        return false;
    size_t k = 0;
    for (size_t i = 0; i < pl; i++) {
        if (strchr("*?[]\\", prefix[i]) != NULL)
            pat[k++] = '\\';
        pat[k++] = prefix[i];
    }
    pat[k++] = '*';
    pat[k] = '\0';
    uint16_t nm = 0;
    for (uint16_t i = 0; i < r->nnodes; i++)
        nm += !r->cluster || r->nodes[i]->master;
    flush_job_t *jobs = nm > 0 ? calloc(nm, sizeof *jobs) : NULL;
    if (jobs == NULL) {
        if (nm == 0)
            px_log_warn(TAG, "flush %s: the cluster slot map is not known yet", prefix);
        free(pat);
        return false;
    }
    enter(r);
    r->flush.jobs = jobs;
    r->flush.njobs = nm;
    r->flush.running = nm;
    r->flush.pattern = pat;
    r->flush.plen = k;
    for (uint16_t i = 0, j = 0; i < r->nnodes && j < nm; i++) {
        if (r->cluster && !r->nodes[i]->master)
            continue;
        jobs[j].node = r->nodes[i];
        r->nodes[i]->refs++;
        snprintf(jobs[j].cursor, sizeof jobs[j].cursor, "0");
        j++;
    }
    px_log_info(TAG, "flushing keys %s on %u node(s)", pat, nm);
    /* A job that fails at once may end the whole flush (and free jobs) */
    for (uint16_t j = 0; j < nm && r->flush.jobs == jobs; j++)
        flush_job_next(r, &jobs[j]);
    leave(r);
    return true;
}

bool px_redis_flush_running(const px_redis_t *r)
{
    return r != NULL && r->flush.njobs > 0;
}

/* ---- public API ------------------------------------------------------------------------ */

void px_redis_config_defaults(px_redis_config_t *c)
{
    memset(c, 0, sizeof *c);
    c->port = 6379;
    c->connect_timeout_ms = 200;
    c->command_timeout_ms = 50;
    c->max_pending = 4096;
    c->max_pending_bytes = 64u << 20;
    c->retry_min_ms = 100;
    c->retry_max_ms = 2000;
}

static bool parse_seeds(px_redis_t *r, const char *list)
{
    const char *p = list;
    unsigned n = 0;
    while (*p != '\0') {
        const char *e = strchr(p, ',');
        size_t len = e != NULL ? (size_t)(e - p) : strlen(p);
        while (len > 0 && (*p == ' ' || *p == '\t'))
            p++, len--;
        while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
            len--;
        if (len > 0) {
            char *host = NULL;
            uint16_t port;
            if (!parse_hostport(p, len, &host, &port) || host[0] == '\0') {
                free(host);
                px_log_error(TAG, "bad cluster node '%.*s' (want host:port)", (int)len, p);
                return false;
            }
            if (n >= MAX_SEEDS) {
                px_log_error(TAG, "more than %d cluster nodes in the seed list", MAX_SEEDS);
                free(host);
                return false;
            }
            node_t *nd = node_get(r, host, strlen(host), port);
            free(host);
            if (nd == NULL)
                return false;
            nd->seed = true;
            n++;
        }
        if (e == NULL)
            break;
        p = e + 1;
    }
    if (n == 0)
        px_log_error(TAG, "no cluster node in '%s'", list);
    return n > 0;
}

px_redis_t *px_redis_new(uv_loop_t *loop, const px_redis_config_t *cfg)
{
    if (loop == NULL || cfg == NULL || cfg->connect_timeout_ms == 0 ||
        cfg->command_timeout_ms == 0 || cfg->max_pending == 0 || cfg->max_pending > (1u << 24) ||
        cfg->max_pending_bytes == 0 || cfg->retry_min_ms == 0 ||
        cfg->retry_max_ms < cfg->retry_min_ms) {
        px_log_error(TAG, "bad configuration (timeouts, limits and backoff must be > 0)");
        return NULL;
    }
    bool cluster = cfg->cluster_nodes != NULL && cfg->cluster_nodes[0] != '\0';
    if (!cluster && (cfg->host == NULL || cfg->host[0] == '\0' || cfg->port == 0)) {
        px_log_error(TAG, "bad configuration: no host:port and no cluster nodes");
        return NULL;
    }
    if (cfg->client_name != NULL && strpbrk(cfg->client_name, " \t\r\n") != NULL) {
        px_log_error(TAG, "bad configuration: client name with spaces");
        return NULL;
    }
    px_redis_t *r = calloc(1, sizeof *r);
    if (r == NULL)
        return NULL;
    r->loop = loop;
    r->cfg = *cfg;
    r->cluster = cluster;
    r->internal_timeout_ms =
        cfg->connect_timeout_ms > MIN_INTERNAL_MS ? cfg->connect_timeout_ms : MIN_INTERNAL_MS;
    r->stall_ms = cfg->connect_timeout_ms > MIN_STALL_MS ? cfg->connect_timeout_ms : MIN_STALL_MS;
    r->rng = (uv_hrtime() ^ (uint64_t)(uintptr_t)r) | 1u;
    r->timer = malloc(sizeof *r->timer);
    r->ncmds = cfg->max_pending + RESERVED_CMDS;
    r->cmds = calloc(r->ncmds, sizeof *r->cmds);
    if (cfg->client_name != NULL)
        r->cfg_name = strdup(cfg->client_name);
    bool ok =
        r->timer != NULL && r->cmds != NULL && (cfg->client_name == NULL || r->cfg_name != NULL);
    if (ok && r->cluster) {
        r->cfg_seeds = strdup(cfg->cluster_nodes);
        r->slots = malloc(SLOTS * sizeof *r->slots);
        ok = r->cfg_seeds != NULL && r->slots != NULL;
        if (ok) {
            for (uint32_t s = 0; s < SLOTS; s++)
                r->slots[s] = NO_NODE;
            ok = parse_seeds(r, r->cfg_seeds);
        }
    } else if (ok) {
        r->cfg_host = strdup(cfg->host);
        ok = r->cfg_host != NULL && node_get(r, cfg->host, strlen(cfg->host), cfg->port) != NULL;
    }
    if (!ok || uv_timer_init(loop, r->timer) != 0) {
        for (uint16_t i = 0; i < r->nnodes; i++)
            node_free(r->nodes[i]);
        free(r->nodes);
        free(r->slots);
        free(r->cmds);
        free(r->timer);
        free(r->cfg_host);
        free(r->cfg_seeds);
        free(r->cfg_name);
        free(r);
        return NULL;
    }
    r->cfg.host = r->cfg_host;
    r->cfg.cluster_nodes = r->cfg_seeds;
    r->cfg.client_name = r->cfg_name;
    r->timer->data = r;
    for (uint32_t i = r->ncmds; i-- > 0;) {
        r->cmds[i].next = r->free_cmds;
        r->free_cmds = &r->cmds[i];
    }
    enter(r);
    if (r->cluster)
        refresh_start(r);
    else
        conn_connect(r, &r->nodes[0]->c);
    timer_arm(r);
    leave(r);
    return r;
}

static void timer_close_cb(uv_handle_t *h)
{
    free(h);
}

/* Free everything; r is gone afterwards. Runs at depth 0 (no frame of ours or of
 * hiredis below), after px_redis_free failed the callers' commands. */
static void teardown(px_redis_t *r)
{
    r->torn_down = true;
    r->sub.active = false;
    for (uint16_t i = 0; i < r->nnodes; i++)
        conn_drop(r, &r->nodes[i]->c, NULL);
    conn_drop(r, &r->sub.c, NULL);
    /* Dropping failed whatever was still on the wire; our own commands may remain. */
    cmd_list_t *lists[2] = {&r->user_list, &r->own_list};
    for (int l = 0; l < 2; l++)
        while (lists[l]->head != NULL)
            finish(r, lists[l]->head, PX_REDIS_ERR, NULL);
    for (uint16_t i = 0; i < r->nnodes; i++)
        node_free(r->nodes[i]);
    free(r->nodes);
    free(r->slots);
    free(r->slots_tmp);
    for (uint32_t i = 0; i < r->ncmds; i++)
        free(r->cmds[i].buf);
    free(r->cmds);
    free(r->sub.c.host);
    free(r->sub.channel);
    free(r->flush.jobs);
    free(r->flush.pattern);
    free(r->flush.pending);
    free(r->cfg_host);
    free(r->cfg_seeds);
    free(r->cfg_name);
    r->timer->data = NULL;
    uv_close((uv_handle_t *)r->timer, timer_close_cb);
    free(r);
}

void px_redis_free(px_redis_t *r)
{
    if (r == NULL || r->closing)
        return;
    enter(r);
    r->closing = true;
    r->sub.active = false;
    r->sub.on_msg = NULL;
    r->sub.on_state = NULL;
    (void)uv_timer_stop(r->timer);
    r->timer_armed = false;
    /* The callers' commands complete now, with an error (our own ones with them). */
    cmd_list_t *lists[2] = {&r->user_list, &r->own_list};
    for (int l = 0; l < 2; l++)
        while (lists[l]->head != NULL)
            finish(r, lists[l]->head, PX_REDIS_ERR, NULL);
    leave(r);
}

bool px_redis_available(const px_redis_t *r)
{
    if (r == NULL || r->closing)
        return false;
    if (!r->cluster)
        return r->nodes[0]->c.state == CONN_UP;
    if (r->covered < SLOTS)
        return false;
    for (uint16_t i = 0; i < r->nnodes; i++) {
        const rconn_t *c = &r->nodes[i]->c;
        if (!r->nodes[i]->master)
            continue;
        if (c->state == CONN_UP)
            continue;
        if ((c->state == CONN_CONNECTING || c->state == CONN_RESOLVING) && c->fails == 0)
            continue;
        return false;
    }
    return true;
}

px_redis_req_t px_redis_get(px_redis_t *r, const void *key, size_t klen, px_redis_value_cb cb,
                            void *arg)
{
    if (r == NULL || cb == NULL) {
        if (cb != NULL)
            cb(arg, PX_REDIS_ERR, NULL, 0);
        return 0;
    }
    const void *argv[2] = {"GET", key};
    size_t lens[2] = {3, klen};
    enter(r);
    px_redis_req_t id = issue(r, K_GET, px_redis_key_slot(key, klen), 2, argv, lens, cb, arg);
    leave(r);
    return id;
}

void px_redis_cancel(px_redis_t *r, px_redis_req_t id)
{
    if (r == NULL || id == 0)
        return;
    uint64_t idx = (id & 0xffffffffu) - 1;
    if (idx >= r->ncmds)
        return;
    cmd_t *c = &r->cmds[idx];
    if (c->used && c->live && c->gen == (uint32_t)(id >> 32) && c->kind == K_GET)
        c->cb = NULL; /* completes silently on reply or timeout */
}

bool px_redis_set(px_redis_t *r, const void *key, size_t klen, const void *val, size_t vlen,
                  uint32_t ttl_s)
{
    if (r == NULL)
        return false;
    char ttl[12];
    snprintf(ttl, sizeof ttl, "%u", ttl_s);
    const void *argv[5] = {"SET", key, val, "EX", ttl};
    size_t lens[5] = {3, klen, vlen, 2, strlen(ttl)};
    enter(r);
    bool ok = issue(r, K_VOID, px_redis_key_slot(key, klen), ttl_s > 0 ? 5 : 3, argv, lens, NULL,
                    NULL) != 0;
    leave(r);
    return ok;
}

bool px_redis_del(px_redis_t *r, const void *key, size_t klen)
{
    if (r == NULL)
        return false;
    const void *argv[2] = {"DEL", key};
    size_t lens[2] = {3, klen};
    enter(r);
    bool ok = issue(r, K_VOID, px_redis_key_slot(key, klen), 2, argv, lens, NULL, NULL) != 0;
    leave(r);
    return ok;
}

bool px_redis_publish(px_redis_t *r, const char *channel, const void *msg, size_t len)
{
    if (r == NULL || channel == NULL)
        return false;
    size_t chlen = strlen(channel);
    const void *argv[3] = {"PUBLISH", channel, msg};
    size_t lens[3] = {7, chlen, len};
    enter(r);
    bool ok = issue(r, K_VOID, px_redis_key_slot(channel, chlen), 3, argv, lens, NULL, NULL) != 0;
    leave(r);
    return ok;
}

void px_redis_stats(const px_redis_t *r, px_redis_stats_t *out)
{
    px_redis_st_t *st = (px_redis_st_t *)&r->st;
    out->commands = atomic_load_explicit(&st->commands, memory_order_relaxed);
    out->errors = atomic_load_explicit(&st->errors, memory_order_relaxed);
    out->timeouts = atomic_load_explicit(&st->timeouts, memory_order_relaxed);
    out->redirects = atomic_load_explicit(&st->redirects, memory_order_relaxed);
    out->reconnects = atomic_load_explicit(&st->reconnects, memory_order_relaxed);
    out->bytes_in = atomic_load_explicit(&st->bytes_in, memory_order_relaxed);
    out->bytes_out = atomic_load_explicit(&st->bytes_out, memory_order_relaxed);
    out->latency_us_sum = atomic_load_explicit(&st->lat_sum, memory_order_relaxed);
    out->latency_samples = atomic_load_explicit(&st->lat_n, memory_order_relaxed);
}
