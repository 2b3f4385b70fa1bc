/*
 * Internal types shared by the proxy's modules: workers, client sessions,
 * server connections, pools and their I/O plumbing.
 *
 * Threading: every object here belongs to exactly one worker and is touched
 * only from that worker's libuv loop. Cross-worker traffic (cancel requests,
 * pool budget, reload) goes through px_shared_t (atomics / a mutex) and the
 * worker's uv_async_t.
 */
#ifndef PX_H
#define PX_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <uv.h>

#include "px_auth.h"
#include "px_codec.h"
#include "px_config.h"
#include "px_log.h"
#include "stmt.h"

#define PX_MUSTCHECK_INT __attribute__((warn_unused_result))

#define px_container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

/* ---- intrusive list ------------------------------------------------------ */

typedef struct px_list {
    struct px_list *prev, *next;
} px_list_t;

static inline void px_list_init(px_list_t *l)
{
    l->prev = l->next = l;
}
static inline bool px_list_empty(const px_list_t *l)
{
    return l->next == l;
}
static inline void px_list_append(px_list_t *head, px_list_t *item)
{
    item->prev = head->prev;
    item->next = head;
    head->prev->next = item;
    head->prev = item;
}
static inline void px_list_prepend(px_list_t *head, px_list_t *item)
{
    item->next = head->next;
    item->prev = head;
    head->next->prev = item;
    head->next = item;
}
static inline void px_list_del(px_list_t *item)
{
    item->prev->next = item->next;
    item->next->prev = item->prev;
    item->prev = item->next = item;
}

/* ---- I/O buffers ------------------------------------------------------- */

/* Standard buffer: one socket read's worth. Bigger ones are malloc'd on
 * demand for single messages the proxy must see whole, and freed once drained. */
#define PX_IOBUF_SIZE (32 * 1024)

typedef struct px_iobuf {
    struct px_iobuf *next; /* free-list link while pooled */
    uint32_t cap;          /* bytes in data[] */
    uint32_t rpos;         /* first unconsumed byte */
    uint32_t wpos;         /* end of valid data */
    uint8_t data[];
} px_iobuf_t;

/* ---- statistics ------------------------------------------------------------ */

/* Per-worker counters: written only by the owning worker, read (relaxed) by
 * the admin port and summed across workers. */
typedef struct px_stats {
    _Atomic uint64_t clients_accepted;
    _Atomic uint64_t clients_active;   /* gauge: live client sessions */
    _Atomic uint64_t clients_rejected; /* MAX_CLIENT_CONN */
    _Atomic uint64_t login_failures;
    _Atomic uint64_t protocol_errors;
    _Atomic uint64_t transactions;
    _Atomic uint64_t queries;
    _Atomic uint64_t pool_waits;
    _Atomic uint64_t pool_timeouts;
    _Atomic uint64_t pins; /* clients pinned to a server connection */
    _Atomic uint64_t servers_opened;
    _Atomic uint64_t servers_closed;
    _Atomic uint64_t servers_broken; /* discarded after an error or failed check */
    _Atomic uint64_t cancels_forwarded;
    _Atomic uint64_t bytes_client_to_server;
    _Atomic uint64_t bytes_server_to_client;
    _Atomic uint64_t iobufs_in_use; /* gauge */
} px_stats_t;

/* A counter only its owner thread writes (others read it with relaxed loads):
 * a plain load and store, no locked read-modify-write. */
#define PX_OWN_ADD(p, n)                                                                           \
    atomic_store_explicit((p), atomic_load_explicit((p), memory_order_relaxed) + (n),              \
                          memory_order_relaxed)

/* Worker counters: written by the worker's own thread only. */
#define PX_STAT_INC(w, f)    PX_OWN_ADD(&(w)->stats.f, 1)
#define PX_STAT_ADD(w, f, n) PX_OWN_ADD(&(w)->stats.f, (n))
#define PX_STAT_DEC(w, f)    PX_OWN_ADD(&(w)->stats.f, -1)

/* ---- forward declarations ------------------------------------------------ */

struct px_tls;
struct px_tls_ctx;

typedef struct px_worker px_worker_t;
typedef struct px_client px_client_t;
typedef struct px_server px_server_t;
typedef struct px_pool px_pool_t;
typedef struct px_shared px_shared_t;

/* ---- connection I/O ------------------------------------------------------ */

typedef enum px_io_kind {
    PX_IO_CLIENT = 1,
    PX_IO_SERVER = 2,
} px_io_kind_t;

/* The socket half common to client sessions and server connections. */
typedef struct px_io {
    uv_tcp_t tcp;            /* the socket; its close callback frees the owner */
    px_worker_t *w;          /* owning worker */
    px_iobuf_t *in;          /* received bytes, attached lazily, returned when empty */
    px_iobuf_t *out;         /* bytes not yet accepted by the socket (one uv_write in flight) */
    px_iobuf_t *out_retired; /* an outgrown out buffer the in-flight write still reads */
    struct px_tls *tls;      /* TLS session when the peer asked for it, owned */
    uv_write_t *wreq;        /* the in-flight write, from the worker's free list */
    uint32_t out_inflight;   /* bytes of out handed to the in-flight uv_write */
    uint32_t pass_left;      /* body bytes of the current message still to pass or skip */
    uint8_t kind;            /* px_io_kind_t */
    bool pass_skip;          /* the current message is being skipped, not forwarded */
    bool reading;            /* uv_read_start is active */
    bool paused;             /* the peer's output is full: stopped reading until it drains */
    bool closing;            /* uv_close was called; everything else is a no-op */
    bool pumping;            /* inside px_io_tls_pump: no re-entry */
} px_io_t;

/* Collects what one processing pass sends to one destination: spans of the
 * source's input buffer and synthesized messages, in order, then one write. */
#define PX_SENDER_IOV     32
#define PX_SENDER_SCRATCH 4096
typedef struct px_sender {
    px_io_t *dst;
    uv_buf_t iov[PX_SENDER_IOV];
    int n;
    size_t bytes;
    size_t scratch_used;
    void *heap[4]; /* larger rewritten messages, freed at flush */
    int n_heap;
    unsigned flushes; /* writes so far: bytes queued before the first one can be taken back */
    uint8_t scratch[PX_SENDER_SCRATCH];
} px_sender_t;

/* ---- outstanding-request FIFO ------------------------------------------- */

/*
 * One entry per request that gets a reply, in the order the server will
 * answer: what ends the entry's replies, and whether they go to the client,
 * are swallowed (the proxy injected the request) or are made up by the proxy
 * (the request never went to the server).
 */
typedef enum px_req_kind {
    PX_REQ_QUERY = 0,  /* client Query: replies up to ReadyForQuery */
    PX_REQ_FUNC,       /* client FunctionCall: up to ReadyForQuery */
    PX_REQ_SYNC,       /* client Sync: ReadyForQuery */
    PX_REQ_PARSE,      /* client Parse: ParseComplete */
    PX_REQ_BIND,       /* client Bind: BindComplete */
    PX_REQ_CLOSE,      /* client Close: CloseComplete */
    PX_REQ_DESCRIBE,   /* client Describe: [ParameterDescription] RowDescription|NoData */
    PX_REQ_EXECUTE,    /* client Execute: rows, then CommandComplete|PortalSuspended|EmptyQuery */
    PX_REQ_SKIP_QUERY, /* injected Query: swallow up to ReadyForQuery */
    PX_REQ_SKIP_SET,   /* injected settings: swallow, errors become warnings */
    PX_REQ_SKIP_PARSE, /* injected Parse: swallow ParseComplete */
    PX_REQ_SKIP_CLOSE, /* injected Close: swallow CloseComplete */
    PX_REQ_SKIP_DESCRIBE,     /* injected Describe of a statement: swallow, note its shape */
    PX_REQ_SYNTH_PARSE,       /* answer ParseComplete ourselves */
    PX_REQ_SYNTH_CLOSE,       /* answer CloseComplete ourselves */
    PX_REQ_SYNTH_DEALLOC,     /* answer a DEALLOCATE name query ourselves */
    PX_REQ_SYNTH_DEALLOC_ALL, /* answer a DEALLOCATE ALL query ourselves */
    PX_REQ_SYNTH_ERROR,       /* an error the proxy raises in an extended batch */
} px_req_kind_t;

typedef struct px_req {
    uint8_t kind;       /* px_req_kind_t */
    bool has_key;       /* key names a server-side statement this request creates */
    bool after_exec;    /* PX_REQ_SYNC sent behind an Execute before any CopyDone/CopyFail */
    bool in_copy;       /* PX_REQ_SYNC sent while the server took COPY data */
    uint32_t name_hash; /* PX_REQ_DESCRIBE with a key: px_stmt_name_hash of the client's name */
    px_stmt_key_t key;
} px_req_t;

#define PX_FIFO_INLINE 8
#define PX_FIFO_MAX    65536 /* requests in flight on one server connection */
typedef struct px_fifo {
    px_req_t *items; /* ring: inline_items or a heap array */
    uint32_t cap;    /* power of two */
    uint32_t head;
    uint32_t count;
    px_req_t inline_items[PX_FIFO_INLINE];
} px_fifo_t;

static inline void px_fifo_init(px_fifo_t *f)
{
    f->items = f->inline_items;
    f->cap = PX_FIFO_INLINE;
    f->head = f->count = 0;
}
static inline bool px_fifo_full(const px_fifo_t *f)
{
    return f->count >= PX_FIFO_MAX;
}
static inline px_req_t *px_fifo_peek(px_fifo_t *f)
{
    return f->count ? &f->items[f->head] : NULL;
}
static inline px_req_t *px_fifo_at(px_fifo_t *f, uint32_t i)
{
    return &f->items[(f->head + i) & (f->cap - 1)];
}
static inline void px_fifo_pop(px_fifo_t *f)
{
    f->head = (f->head + 1) & (f->cap - 1);
    f->count--;
}
/** Remove the request @p i places from the head (0 < i < count). */
void px_fifo_remove_at(px_fifo_t *f, uint32_t i);
/** Append; false when out of memory or at PX_FIFO_MAX. */
bool px_fifo_push(px_fifo_t *f, px_req_kind_t kind, const px_stmt_key_t *key) PX_MUSTCHECK_INT;
void px_fifo_free(px_fifo_t *f);

/* ---- session parameters ------------------------------------------------- */

/* A set of name=value settings, kept as one block "name\0value\0..." so a
 * session carries one allocation. Used for the client's startup parameters
 * and for what the proxy has SET on a server connection. */
typedef struct px_params {
    char *block;    /* owned; NULL when empty */
    uint32_t len;   /* bytes in block */
    uint32_t count; /* pairs */
    uint64_t hash;  /* over the block, to skip diffs when equal */
} px_params_t;

/* ---- routing ------------------------------------------------------------- */

typedef enum px_route_verdict {
    PX_ROUTE_PRIMARY = 0,      /* may write, or not known to be read-only */
    PX_ROUTE_PRIMARY_FALLBACK, /* read-only, but no replica is usable or caught up */
    PX_ROUTE_REPLICA,          /* a read-only unit in autocommit */
    PX_ROUTE_REPLICA_TXN,      /* BEGIN READ ONLY: the whole transaction on a replica */
} px_route_verdict_t;

/* ---- client session ------------------------------------------------------ */

typedef enum px_client_state {
    PX_CLIENT_STARTUP = 0, /* waiting for a startup packet (also after SSL 'N') */
    PX_CLIENT_AUTH,        /* waiting for the password / SASL messages */
    PX_CLIENT_WELCOME,     /* authenticated; waiting for the pool's first server login */
    PX_CLIENT_IDLE,        /* logged in, no server connection */
    PX_CLIENT_WAITING,     /* queued for a server connection */
    PX_CLIENT_ACTIVE,      /* linked to a server connection */
    PX_CLIENT_CLOSING,     /* closing; no further events */
} px_client_state_t;

const char *px_client_state_to_str(px_client_state_t st);

/* Why a session ended: teardown, logs and counters switch on this. */
typedef enum px_close_reason {
    PX_CLOSE_CLIENT_EOF = 0,
    PX_CLOSE_CLIENT_TERMINATE,
    PX_CLOSE_CLIENT_READ_ERROR,
    PX_CLOSE_CLIENT_WRITE_ERROR,
    PX_CLOSE_PROTOCOL_ERROR,
    PX_CLOSE_LOGIN_TIMEOUT,
    PX_CLOSE_AUTH_FAILED,
    PX_CLOSE_POOL_TIMEOUT,
    PX_CLOSE_SERVER_LOST,
    PX_CLOSE_SERVER_LOGIN_FAILED,
    PX_CLOSE_TOO_MANY_CLIENTS,
    PX_CLOSE_SHUTDOWN,
    PX_CLOSE_INTERNAL,
} px_close_reason_t;

const char *px_close_reason_to_str(px_close_reason_t r);

typedef enum px_auth_step {
    PX_AUTH_STEP_NONE = 0,
    PX_AUTH_STEP_PASSWORD, /* cleartext (unused by default) */
    PX_AUTH_STEP_MD5,
    PX_AUTH_STEP_SASL_INIT,
    PX_AUTH_STEP_SASL_FINAL,
} px_auth_step_t;

struct px_client {
    px_io_t io;                  /* socket; must stay first member for container_of */
    px_client_state_t state;     /* written only by px_client_set_state */
    px_list_t link;              /* login list, pool waiters list, or self */
    px_pool_t *pool;             /* the (database, user) pool, set after authentication */
    px_server_t *server;         /* linked server connection, if any */
    px_pool_t *wait_pool;        /* the pool it waits in (WAITING): its own or a replica's */
    uint32_t id;                 /* proxy-issued backend pid: worker index << 24 | slot */
    uint32_t cancel_key;         /* proxy-issued cancel key */
    uint64_t deadline;           /* login or pool-wait deadline (loop ms), 0 = none */
    uint64_t wait_start;         /* when it queued for a server (loop ms) */
    px_params_t params;          /* startup parameters and carried SETs, replayed on servers */
    px_stmt_map_t stmts;         /* its named prepared statements (transaction mode) */
    char *user;                  /* owned */
    char *database;              /* owned */
    struct px_client_auth *auth; /* login-time state, freed once logged in */
    char *synth_error;           /* that error: "SQLSTATE\0message", owned, NULL = none */
    uint64_t q_start_ns;   /* uv_hrtime() when the request being answered went out, 0 = none */
    uint64_t rw_fence_gen; /* health generation at its last write commit, 0 = none */
    uint64_t rw_need_lsn;  /* primary LSN replicas must reach for it, 0 = not yet known */
    uint64_t digest_id;    /* px_digest id of the statement being answered, 0 = none */
    struct px_client_cache *cache; /* result-cache state (cacheflow.c), lazily made */
    struct px_client_sets *sets;   /* session SETs run but not yet carried (session.c) */
    struct px_retry *retry;        /* a replica unit kept until its first reply byte */
    char *restore;                 /* startup values to put back after a RESET being sent */
    bool pinned;                   /* keeps its server connection until it leaves */
    uint8_t route;                 /* px_route_verdict_t of the current transaction */
    bool skip_till_sync;           /* the proxy raised an error in this batch: drop to Sync */
    bool unit_done;                /* a replica-routed unit has been sent in full */
    uint64_t serial;               /* never reused in this process (px_serial_next) */
    uint64_t wr_server;            /* serial of the server connection of its last write */
    bool set_local;                /* its transaction ran SET LOCAL (reports are undone) */
    bool sets_reverted;            /* its transaction undid SETs: reports until it ends */
    bool seq_want;                 /* the unit reads currval()/lastval(): the pool
                                      offers the connection holding its latest */
    bool unsynced;                 /* extended-protocol messages sent since the last Sync */
    bool in_copy_in;               /* the server asked for COPY data */
    bool copy_end_sent;            /* CopyDone/CopyFail (or the copy failed) since the last
                                      Query or Execute */
    bool exec_open;                /* an Execute sent since the last CopyDone/CopyFail */
    bool batch_bound;              /* a Bind since the last Sync */
    bool pass_unsent;              /* bytes for the server queued in this pass, not sent */
    bool unnamed_fresh;            /* the unnamed statement was parsed in this batch */
    uint8_t tx_status;             /* last ReadyForQuery status seen: I, T or E */
    bool cache_off;                /* changed session state the cache key does not hold */
    bool cache_seen;               /* the unit at the read position was looked up already */
    bool retried;                  /* the unit being routed is a retry (no second one) */
    int8_t avoid_replica;          /* replica index the next pick skips (a failed retry), -1 */
    bool rw_inherited;             /* took its database's write fence at its first pick */
    bool unnamed_here;             /* its unnamed statement is the server connection's */
    struct px_stmt *unnamed;       /* its unnamed statement (transaction mode), owned */
    char peer[53];                 /* "ip:port" for logs (an IPv6 address and port fit) */
};

/* ---- server connection --------------------------------------------------- */

typedef enum px_server_state {
    PX_SERVER_CONNECTING = 0, /* TCP connect in progress */
    PX_SERVER_LOGIN,          /* startup sent; authenticating */
    PX_SERVER_IDLE,           /* in its pool's idle list */
    PX_SERVER_ACTIVE,         /* linked to a client */
    PX_SERVER_CHECKING,       /* a pre-use ping in flight */
    PX_SERVER_RESETTING,      /* DISCARD ALL in flight after a session ended */
    PX_SERVER_CLOSING,
} px_server_state_t;

const char *px_server_state_to_str(px_server_state_t st);

struct px_server {
    px_io_t io;               /* socket; first member */
    px_server_state_t state;  /* written only by px_server_set_state */
    px_list_t link;           /* the pool list matching state */
    px_pool_t *pool;          /* owner pool */
    px_client_t *client;      /* linked client while ACTIVE */
    uv_connect_t connect_req; /* TCP connect */
    px_fifo_t fifo;           /* outstanding requests, popped at ReadyForQuery */
    px_stmt_set_t *stmts;     /* server-side statements prepared on it (lazy) */
    bool ignore_till_sync;    /* after an extended-query error: it skips to Sync */
    bool shape_wait;          /* a Bind waits for the shape of a statement prepared here */
    bool said_fatal;          /* forwarded a FATAL error: the client has its reason */
    bool bound_valid;         /* bound_key: the client statement the last Bind used */
    uint32_t bound_portal;    /* px_stmt_name_hash of that Bind's portal name */
    uint32_t bound_name;      /* px_stmt_name_hash of the client's statement name */
    px_stmt_key_t bound_key;
    px_params_t applied;           /* settings the proxy has SET on this connection */
    bool params_unknown;           /* a SET of them failed: RESET ALL before the next */
    uint32_t id;                   /* proxy-local id for logs (unique in its worker) */
    uint64_t lends;                /* times given to a client */
    uint64_t serial;               /* never reused in this process (px_serial_next) */
    uint64_t seq_owner;            /* serial of the client whose writes left sequence
                                      state (currval, lastval) here; 0: none;
                                      PX_SEQ_MIXED: several clients' */
    struct px_cancel_conn *cancel; /* a CancelRequest for its backend in flight */
    bool cancel_hold;              /* released while it was: back to the pool after */
    bool cancel_deferred;          /* the client's cancel waits for its own request */
    uint32_t be_pid;               /* BackendKeyData from PostgreSQL, for cancels */
    uint32_t be_key;
    uint64_t last_used;            /* loop ms when last released */
    uint64_t deadline;             /* connect/login/check deadline */
    struct px_scram_client *scram; /* login-time SCRAM state */
    uint8_t tx_status;             /* last ReadyForQuery status */
    bool overflow;                 /* opened above DB_POOL_SIZE: close when idle */
    bool welcome_pending;          /* its login supplies the pool's welcome parameters */
    bool tls_asked;                /* SSLRequest sent, waiting for its one-byte answer */
};

/** Largest message accepted from PostgreSQL (its MaxAllocSize plus framing). */
#define PX_SERVER_MAX_MESSAGE (0x40000000u + 1024u)

/* ---- pools ------------------------------------------------------------------ */

typedef struct px_welcome_param {
    char *name;
    char *value;
} px_welcome_param_t;

/* Connection budget of one (database, user) across all workers. */
typedef struct px_pool_budget {
    char *key;      /* "database\0user" */
    char host[256]; /* the backend its connections go to */
    uint16_t port;
    bool is_primary;             /* the configured primary (else a read replica) */
    _Atomic int open;            /* server connections open across workers */
    _Atomic uint64_t wanted;     /* bit per worker with waiters and no budget */
    _Atomic uint64_t oldest[64]; /* per worker: loop ms its oldest waiter queued, 0 = none */
    struct px_pool_budget *next;
    /* the first login's ParameterStatus, for every worker's welcome;
     * guarded by px_shared_t.lock, immutable once have_welcome is set */
    struct px_welcome_param *welcome;
    int n_welcome;
    _Atomic bool have_welcome;
} px_pool_budget_t;

/* What the pool's server logs in with. */
typedef struct px_pool_creds {
    px_secret_kind_t kind;           /* PLAIN, MD5, SCRAM (keys) or NONE */
    char secret[PX_AUTH_SECRET_MAX]; /* password or md5 hash */
    uint8_t client_key[PX_SCRAM_KEY_LEN];
    uint8_t server_key[PX_SCRAM_KEY_LEN];
    bool have_keys;
} px_pool_creds_t;

struct px_pool {
    px_worker_t *w;
    px_pool_t *next_in_worker; /* worker's pool chain */
    px_pool_budget_t *budget;  /* shared across workers */
    const char *host;          /* backend, owned by the budget */
    uint16_t port;
    bool is_primary;
    char *database;
    char *user;
    px_list_t idle;            /* px_server_t, most recently used first */
    px_list_t active;          /* px_server_t linked to clients */
    px_list_t pending;         /* connecting, login, checking, resetting */
    px_list_t waiters;         /* px_client_t waiting for a server, FIFO */
    px_list_t welcome_waiters; /* px_client_t waiting for the welcome parameters */
    /* gauges: written by the owning worker, read by the admin thread */
    _Atomic int n_idle, n_active, n_pending, n_waiting;
    _Atomic int n_local;  /* this worker's open server connections */
    _Atomic int n_pinned; /* clients pinned to a server connection now */
    px_pool_creds_t creds;
    px_welcome_param_t *welcome; /* ParameterStatus of the first login */
    int n_welcome;
    bool have_welcome;
    bool launching;       /* guards launch() against re-entry through failures */
    bool wanting;         /* this worker's bit is set in budget->wanted */
    char last_error[256]; /* last server login error, for waiting clients */
    char last_sqlstate[6];
    uint64_t last_error_at; /* loop ms */
};

/* ---- worker ------------------------------------------------------------------- */

typedef struct px_cancel_msg {
    uint32_t pid, key;
} px_cancel_msg_t;

/* An idle server connection moving to another worker: the socket (a dup'd
 * fd) and what the proxy knows about the session on it. */
typedef struct px_handoff {
    int fd;
    px_pool_budget_t *budget; /* identifies (database, user) */
    uint32_t be_pid, be_key;
    px_params_t applied;  /* ownership moves with the message */
    px_stmt_set_t *stmts; /* likewise */
    struct px_tls *tls;   /* likewise: the TLS session, between records, or NULL */
    uint64_t serial, seq_owner;
    bool params_unknown;
} px_handoff_t;

#define PX_HANDOFF_QUEUE 64

#define PX_CANCEL_QUEUE 256

#define PX_CLIENT_HANDOFF_QUEUE 256

struct px_worker {
    int index;
    pthread_t thread;
    uv_loop_t loop;
    uv_tcp_t listener;
    uv_timer_t tick;           /* timeouts, pool maintenance: every PX_TICK_MS */
    uv_async_t wakeup;         /* cross-thread: cancels, stop, reload */
    _Atomic int fill_watchers; /* its clients waiting for another worker's cache fill */
    px_shared_t *shared;
    px_config_t *cfg;         /* snapshot in use; replaced at a safe point on reload */
    px_pool_t *_Atomic pools; /* chain, prepend-only: readable from the admin thread */
    px_list_t login_clients;  /* clients in STARTUP/AUTH/WELCOME, for the login deadline */
    px_client_t **slots;      /* client by slot (id & 0xffffff) */
    uint32_t n_slots;         /* highest slot handed out */
    uint32_t slots_cap;
    uint32_t free_slot;    /* head of the free-slot chain (stored in slots as tagged ints) */
    px_iobuf_t *free_bufs; /* standard-size buffer pool */
    uint32_t n_free_bufs;
    uv_write_t *free_wreqs; /* write requests pool (linked through data) */
    uint32_t next_server_id;
    _Atomic uint32_t n_clients; /* clients here, and those handed here not yet adopted */
    unsigned route_rr;          /* where the next replica pick starts */
    bool stopping;
    bool listening;
    /* cross-thread inbox, guarded by inbox_lock */
    pthread_mutex_t inbox_lock;
    px_cancel_msg_t cancels[PX_CANCEL_QUEUE];
    int n_cancels;
    px_handoff_t handoffs[PX_HANDOFF_QUEUE];
    int n_handoffs;
    int client_fds[PX_CLIENT_HANDOFF_QUEUE]; /* accepted elsewhere, to adopt here */
    int n_client_fds;
    bool stop_requested;
    bool reload_requested;
    bool drain_requested;
    bool draining;           /* SIGTERM: no new clients; each leaves when its transaction ends */
    uint64_t drain_deadline; /* loop ms after which everyone still here is disconnected */
    px_stats_t stats;
    uint64_t reply_ns; /* uv_hrtime() of the server reply being processed, 0: not read yet */
    struct px_worker_cache *cache; /* result-cache state of this loop (cacheflow.c) */
    struct px_cache_sync *sync;    /* Redis client of this loop (cachesync.c), or NULL */
};

#define PX_TICK_MS 50

/* The time of the server reply px_server_process() is reading, taken once for
 * all the statements it completes. */
static inline uint64_t px_reply_ns(px_worker_t *w)
{
    if (w->reply_ns == 0)
        w->reply_ns = uv_hrtime();
    return w->reply_ns;
}

/* ---- process-wide state ------------------------------------------------- */

struct px_shared {
    pthread_mutex_t lock;          /* guards cfg, authfile, budgets */
    struct px_tls_ctx *client_tls; /* certificate for clients' SSLRequest, or NULL */
    struct px_tls_ctx *server_tls; /* TLS towards PostgreSQL (SERVER_TLS_MODE), or NULL */
    px_config_t *cfg;              /* current snapshot (ref held) */
    px_authfile_t *authfile;       /* current auth file or NULL */
    int authfile_refs;             /* readers inside px_shared_lookup_secret */
    px_pool_budget_t *budgets;     /* chain */
    struct px_verifier_cache *verifiers[256]; /* SCRAM verifiers derived from plain secrets */
    _Atomic int n_clients;                    /* across workers, for MAX_CLIENT_CONN */
    _Atomic bool draining;                    /* SIGTERM received: readiness turns 503 */
    _Atomic int workers_done;                 /* workers whose loop has ended */
    px_worker_t *workers;
    int n_workers;
    int listen_fd_family;
};

/* ---- module functions ------------------------------------------------------ */

/* iobuf.c */
px_iobuf_t *px_iobuf_get(px_worker_t *w, uint32_t cap);
void px_iobuf_put(px_worker_t *w, px_iobuf_t *b);
/** Make room for a whole message of @p need bytes at b->rpos; may replace *bp. */
bool px_iobuf_reserve(px_worker_t *w, px_iobuf_t **bp, uint32_t need) PX_MUSTCHECK_INT;
void px_iobuf_compact(px_iobuf_t *b);
void px_iobuf_trim_pool(px_worker_t *w, uint32_t keep);

/* io.c */
void px_io_init(px_io_t *io, px_worker_t *w, px_io_kind_t kind);
int px_io_start_read(px_io_t *io) PX_MUSTCHECK_INT;
void px_io_stop_read(px_io_t *io);
void px_sender_init(px_sender_t *s, px_io_t *dst);
/** Queue bytes that stay valid until px_sender_flush. */
bool px_sender_span(px_sender_t *s, const void *p, size_t n) PX_MUSTCHECK_INT;
/** A builder over the sender's scratch; px_sender_commit adds what was built. */
px_wbuf_t px_sender_wbuf(px_sender_t *s);
/**
 * Memory for a message of @p n bytes that stays valid until the next flush
 * (queue it with px_sender_span). NULL when out of memory or the flush it
 * needed failed.
 */
void *px_sender_alloc(px_sender_t *s, size_t n);
bool px_sender_commit(px_sender_t *s, px_wbuf_t *wb) PX_MUSTCHECK_INT;
/**
 * Write everything queued: try the socket first, keep the rest in dst->out
 * with one uv_write. Returns 0, or a negative libuv error (the destination is
 * broken; the caller starts its teardown).
 */
int px_sender_flush(px_sender_t *s) PX_MUSTCHECK_INT;
/** Forget everything queued and not yet written. */
void px_sender_discard(px_sender_t *s);
/** Whether the destination still has bytes in flight (the source must wait). */
static inline bool px_io_blocked(const px_io_t *io)
{
    return io->out != NULL;
}
void px_io_close(px_io_t *io, uv_close_cb cb);
/**
 * Start TLS as the server side on @p io (after answering 'S' to SSLRequest);
 * bytes already received are ciphertext. False when no session could be made.
 */
bool px_io_tls_accept(px_io_t *io, struct px_tls_ctx *ctx) PX_MUSTCHECK_INT;
/** Start TLS as the client side towards a server that answered 'S'. */
bool px_io_tls_connect(px_io_t *io, struct px_tls_ctx *ctx, const char *host) PX_MUSTCHECK_INT;
/** Run the handshake, decrypt what TLS holds into io->in and process it. */
void px_io_tls_pump(px_io_t *io);
void px_io_release_in(px_io_t *io);

/* params.c */
/* First byte of the name and of the value of a setting a client made with SET
 * (kept beside the startup value of the same name, which a RESET brings
 * back): the value's rest is its value list as written in SQL, replayed with
 * SET (startup values are plain strings, replayed with set_config()). */
#define PX_PARAM_SQL '\x01'
/** Remove @p name; true if it was there. */
bool px_params_del(px_params_t *p, const char *name);
void px_params_free(px_params_t *p);
bool px_params_set(px_params_t *p, const char *name, size_t nlen, const char *value,
                   size_t vlen) PX_MUSTCHECK_INT;
const char *px_params_get(const px_params_t *p, const char *name);
bool px_params_copy(px_params_t *dst, const px_params_t *src) PX_MUSTCHECK_INT;
/**
 * Write to @p sql the SET/RESET statements turning @p have into @p want; 0
 * and "" when there is nothing to do, or (with *@p overflow set) when they do
 * not fit in @p cap. @p overflow may be NULL.
 */
size_t px_params_diff_sql(const px_params_t *have, const px_params_t *want, char *sql, size_t cap,
                          bool *overflow);
bool px_params_is_tracked(const char *name);
/** Parse "-c a=b --c=d" startup options into @p p. False on malformed options. */
bool px_params_parse_options(px_params_t *p, const char *opts, size_t len) PX_MUSTCHECK_INT;

/* session.c */
void px_client_accept(px_worker_t *w, uv_stream_t *listener);
/** Take over a client socket another worker accepted (its n_clients already counts it). */
void px_client_adopt(px_worker_t *w, int fd);
void px_client_set_state(px_client_t *c, px_client_state_t st);
void px_client_fail(px_client_t *c, px_close_reason_t why, const char *sqlstate, const char *fmt,
                    ...) __attribute__((format(printf, 4, 5)));
void px_client_close(px_client_t *c, px_close_reason_t why);
/** Called by the pool when @p s has been linked to waiting client @p c. */
void px_client_on_server(px_client_t *c, px_server_t *s);
/** The pool's welcome parameters arrived (or failed: @p ok false). */
void px_client_on_welcome(px_client_t *c, bool ok);
/** Resume reading/processing a client whose server drained its output. */
void px_client_resume(px_client_t *c);
/** No transaction or request of the client is in progress (draining may disconnect it). */
bool px_client_between_transactions(px_client_t *c);
void px_client_process(px_client_t *c);
void px_worker_cancel(px_worker_t *w, uint32_t pid, uint32_t key);
void px_client_check_timeouts(px_worker_t *w, uint64_t now);
/** CommandComplete / ErrorResponse / ReadyForQuery reach a client with SETs in flight. */
void px_client_sets_on_command(px_client_t *c, px_span_t body);
void px_client_sets_on_param(px_client_t *c, px_span_t body);
void px_client_sets_ready_skipped(px_client_t *c);
void px_client_sets_on_error(px_client_t *c);
void px_client_sets_on_ready(px_client_t *c, px_server_t *s, uint8_t status);
/** A statement's CommandComplete (@p body) or ErrorResponse (@p body NULL) reaches the client. */
void px_client_digest_done(px_client_t *c, px_server_t *s, const px_span_t *tag_body);
/** A reply byte reaches the client: its unit can no longer be retried. */
void px_client_retry_disarm(px_client_t *c);
/**
 * The replica connection of @p c failed before any reply byte reached it:
 * send the unit again elsewhere (once). False when it cannot (then fail it).
 */
bool px_client_retry(px_client_t *c, px_server_t *s, const char *why);
/** Whether an ErrorResponse from a replica before any reply byte is worth a retry. */
bool px_client_retry_error(px_client_t *c, px_span_t body);

/* server.c */
px_server_t *px_server_open(px_pool_t *pool) PX_MUSTCHECK_INT;
void px_server_set_state(px_server_t *s, px_server_state_t st);
void px_server_close(px_server_t *s, const char *why);
void px_server_process(px_server_t *srv);
void px_server_resume(px_server_t *s);
/** Send a query whose replies are swallowed (ping, DISCARD ALL, settings). */
bool px_server_inject(px_server_t *s, px_sender_t *snd, const char *sql,
                      px_req_kind_t kind) PX_MUSTCHECK_INT;
/** Prepare a client's statement under its server-side name; the reply is swallowed. */
bool px_server_inject_parse(px_server_t *s, px_sender_t *snd, px_stmt_key_t key,
                            const uint8_t *rest, size_t rest_len) PX_MUSTCHECK_INT;
/** Parse of the unnamed statement (@p rest: the body after the name), its ParseComplete
 * swallowed. */
bool px_server_inject_parse_unnamed(px_server_t *s, px_sender_t *snd, const uint8_t *rest,
                                    size_t rest_len) PX_MUSTCHECK_INT;
/** Close a server-side statement (evicted); the reply is swallowed. */
bool px_server_inject_close(px_server_t *s, px_sender_t *snd, px_stmt_key_t key) PX_MUSTCHECK_INT;
/** Describe statement @p key, then Flush: its shape is noted when the answer comes. */
bool px_server_inject_describe(px_server_t *s, px_sender_t *snd,
                               px_stmt_key_t key) PX_MUSTCHECK_INT;
/** Emit the replies the proxy makes up, while they are at the head of the FIFO. */
bool px_server_drain_synth(px_server_t *s, px_sender_t *to_client) PX_MUSTCHECK_INT;
void px_server_send_cancel(px_server_t *s);
void px_server_cancel_for_client(px_server_t *s);
/** The TLS handshake with the server completed: send the startup packet. */
bool px_server_tls_ready(px_server_t *s) PX_MUSTCHECK_INT;
void px_server_check_timeouts(px_pool_t *pool, uint64_t now);
/** Move idle @p s to worker @p target; false when it cannot (then nothing changed). */
bool px_server_handoff(px_server_t *s, int target) PX_MUSTCHECK_INT;
/** Adopt a connection handed over by another worker. */
void px_server_adopt(px_worker_t *w, px_handoff_t *h);

/* pool.c */
/** The pool of (database, user) on backend host:port, created on first use. */
px_pool_t *px_pool_get(px_worker_t *w, const char *database, const char *user, const char *host,
                       uint16_t port, bool is_primary) PX_MUSTCHECK_INT;
/** Ask for a server connection; links one now (true) or queues the client. */
bool px_pool_checkout(px_pool_t *pool, px_client_t *c);
/** The client is done with @p s in a clean state: reuse it. */
void px_pool_release(px_server_t *s);
/** A server became usable (login done, check done, reset done). */
void px_pool_server_ready(px_server_t *s);
/** A server connection is gone; give back its budget and serve waiters. */
void px_pool_server_gone(px_server_t *s);
void px_pool_login_failed(px_pool_t *pool, const char *sqlstate, const char *msg);
void px_pool_remove_waiter(px_client_t *c);
void px_pool_tick(px_pool_t *pool, uint64_t now);
/** Hand idle connections to workers that asked for budget. */
void px_pool_offer_idle(px_pool_t *pool);
void px_pool_request_welcome(px_pool_t *pool, px_client_t *c);
/** The pool has its welcome parameters: greet every client waiting for them. */
void px_pool_welcome_waiters(px_pool_t *pool);

/** Longest unnamed statement kept per client for Binds in later units (256 KiB). */
#define PX_UNNAMED_KEEP_MAX (256u * 1024u)
/** The client's unnamed statement is now this Parse body (after the name); @p here: it is
 * prepared on its current server connection. False when out of memory. */
bool px_client_remember_unnamed(px_client_t *c, const uint8_t *rest, size_t rest_len, bool here);

/* route.c */
/** The pool for the transaction the client is starting (its primary pool or a replica's). */
px_pool_t *px_route_pick(px_client_t *c, px_route_verdict_t *verdict);
/** The transaction ended and its server connection went back to @p pool. */
void px_route_done(px_client_t *c, px_pool_t *pool, px_route_verdict_t verdict);

/* cacheflow.c: the result cache on the session side */
typedef enum px_cacheflow_result {
    PX_CACHEFLOW_BYPASS = 0, /* not cacheable here: carry on as usual */
    PX_CACHEFLOW_HIT,        /* answered; the unit was consumed */
    PX_CACHEFLOW_MISS,       /* a fill is armed: send the unit on */
    PX_CACHEFLOW_FAILED,     /* could not queue the answer */
    PX_CACHEFLOW_WAIT,       /* an identical fill is in flight: wait for it, then look up again */
} px_cacheflow_result_t;
/** At the start of a unit: answer it from the cache, or arm a fill. */
px_cacheflow_result_t px_cacheflow_lookup(px_client_t *c, px_sender_t *to_client);
/** A message the client sends on: bump what a write touches. */
void px_cacheflow_on_client_msg(px_client_t *c, const px_msg_hdr_t *hdr, px_span_t body);
/** The head of a server reply forwarded to a filling client (@p n bytes of it here). */
void px_cacheflow_capture(px_client_t *c, uint8_t type, const uint8_t *p, size_t n);
/** More bytes of the reply being streamed. */
void px_cacheflow_capture_more(px_client_t *c, const uint8_t *p, size_t n);
/** ReadyForQuery @p status reaches the client: store a fill, bump a finished transaction. */
void px_cacheflow_on_ready(px_client_t *c, px_server_t *s, uint8_t status);
void px_cacheflow_client_gone(px_client_t *c);
/** The client waits for another client's identical fill: do not process its input. */
bool px_cacheflow_waiting(const px_client_t *c);
/** Process the clients whose awaited fill ended (from the worker's async handle). */
void px_cacheflow_worker_wake(px_worker_t *w);
void px_cacheflow_worker_free(px_worker_t *w);
/** Process @p c again on the worker's next loop turn (not from inside the caller). */
void px_cacheflow_defer(px_client_t *c);
#define PX_SEQ_MIXED UINT64_MAX
/* A process-wide number never handed out twice (clients, server connections). */
uint64_t px_serial_next(void);
/* The client's unit ended before reaching a server (cancelled while waiting): a
 * fill armed for it is dropped. */
void px_cacheflow_unit_dropped(px_client_t *c);
/** A fill is armed: forwarded replies go through px_cacheflow_capture*. */
bool px_cacheflow_filling(const px_client_t *c);

/* cachesync.c: invalidations across instances and the Redis level (L2) */
#define PX_CACHESYNC_DONE ((void *)1)
typedef void (*px_cachesync_got_cb)(void *arg, bool stored);
typedef struct px_cachesync_stats {
    uint64_t l2_hits, l2_misses, l2_errors, l2_refused, l2_sets;
    uint64_t published, received;
    uint64_t l2_ns_sum, l2_samples;
    bool configured, synced;
} px_cachesync_stats_t;
/** At start: Redis configured means other instances may exist (stay unsynced until heard). */
void px_cachesync_init(const px_config_t *cfg);
bool px_cachesync_configured(void);
/** On the worker's thread, before its loop runs / when it stops. */
void px_cachesync_worker_start(px_worker_t *w);
void px_cachesync_worker_stop(px_worker_t *w);
/** Tell the other instances about bumps made on this worker. */
void px_cachesync_publish(px_worker_t *w, const uint64_t *tags, int n);
/** From any thread: bumps for worker 0 to publish. */
void px_cachesync_queue_publish(px_shared_t *sh, const uint64_t *tags, int n);
void px_cachesync_drain(px_worker_t *w);
bool px_cachesync_l2_available(px_worker_t *w);
/**
 * Look @p key up in L2; an acceptable value is copied into L1 under @p tags
 * at @p versions, then @p cb(arg, stored) runs on the loop. Returns a handle
 * for px_cachesync_l2_cancel, NULL when L2 is not available, or
 * PX_CACHESYNC_DONE when it failed at once (@p cb has already run).
 */
void *px_cachesync_l2_get(px_worker_t *w, const uint8_t *key, size_t key_len, const uint64_t *tags,
                          const uint64_t *versions, int n_tags, px_cachesync_got_cb cb, void *arg);
void px_cachesync_l2_cancel(px_worker_t *w, void *pending);
void px_cachesync_l2_set(px_worker_t *w, const uint8_t *key, size_t key_len, const uint8_t *val,
                         size_t val_len, uint64_t fill_ms, uint32_t ttl_s);
void px_cachesync_stats(px_cachesync_stats_t *out);
/** Redis commands and errors of every worker's client; whether the channel is up. */
void px_cachesync_redis_totals(uint64_t *errors, uint64_t *commands, int *available);
/** On the worker's tick: publish its Redis client's counters for the admin port. */
void px_cachesync_tick(px_worker_t *w);

/* worker.c */
/** Loop, listener and wake-up handle; no thread yet, so others can post to it. */
int px_worker_init(px_worker_t *w) PX_MUSTCHECK_INT;
/** Start the worker's thread (after every worker is initialised). */
int px_worker_run(px_worker_t *w) PX_MUSTCHECK_INT;
px_config_t *px_worker_cfg(px_worker_t *w);
uint32_t px_worker_slot_alloc(px_worker_t *w, px_client_t *c);
void px_worker_slot_free(px_worker_t *w, uint32_t id);
px_client_t *px_worker_slot_get(px_worker_t *w, uint32_t id);
uv_write_t *px_worker_wreq_get(px_worker_t *w);
void px_worker_wreq_put(px_worker_t *w, uv_write_t *r);
void px_shared_post_cancel(px_shared_t *sh, uint32_t pid, uint32_t key);
bool px_shared_post_handoff(px_shared_t *sh, int target, px_handoff_t *h) PX_MUSTCHECK_INT;
/** Queue an accepted client socket for worker @p target; false: queue full or stopping. */
bool px_shared_post_client(px_shared_t *sh, int target, int fd) PX_MUSTCHECK_INT;
void px_shared_wake_all(px_shared_t *sh, int except);
/**
 * A SCRAM verifier for a user whose secret is a plaintext password, derived
 * once (PBKDF2 is the costliest part of a login) and reused while the
 * password stays the same.
 */
bool px_shared_verifier_for_plain(px_shared_t *sh, const char *user, const px_secret_t *plain,
                                  px_secret_t *out) PX_MUSTCHECK_INT;
/** Copy the secret of @p user into @p out. False when the user is unknown. */
bool px_shared_lookup_secret(px_shared_t *sh, const char *user, px_secret_t *out);
/**
 * The side connections' password when POSTGRES_PASSWORD is not set: @p user's
 * plaintext password from the auth file, a copy in *@p out (left alone when
 * there is none). False only when out of memory.
 */
bool px_shared_plain_password(px_shared_t *sh, const char *user, char **out);
px_pool_budget_t *px_shared_budget(px_shared_t *sh, const char *database, const char *user,
                                   const char *host, uint16_t port, bool is_primary);
/** Publish a pool's welcome parameters to all workers (first one wins). */
void px_shared_publish_welcome(px_shared_t *sh, px_pool_t *pool);
/** Take the welcome parameters another worker published; false if none yet. */
bool px_shared_fetch_welcome(px_shared_t *sh, px_pool_t *pool);

static inline uint64_t px_now(px_worker_t *w)
{
    return uv_now(&w->loop);
}

#endif
