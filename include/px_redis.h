/**
 * @file px_redis.h
 * Asynchronous Redis / Redis Cluster client for one libuv loop: the cache's
 * second level (GET / SET EX / DEL), cross-instance invalidation (PUBLISH /
 * SUBSCRIBE) and the admin port's flush (SCAN + UNLINK). Built on hiredis'
 * async API with an event adapter of our own.
 *
 * One px_redis_t per loop: each proxy worker has its own, the invalidation
 * subscriber another on its thread. Every function except px_redis_stats()
 * must be called on the loop's thread, and every callback runs there.
 * hiredis writes with write(2): the process must ignore SIGPIPE (the proxy
 * does).
 *
 * Redis is an optimisation, never a dependency: a command that cannot be sent
 * at once (no connection, unknown slot, too many in flight) fails at once, and
 * one that is not answered within command_timeout_ms completes with
 * PX_REDIS_ERR. Nothing here blocks the loop or grows without bound: commands
 * in flight are capped in number (max_pending) and bytes (max_pending_bytes),
 * a connection that answers nothing for max(1 s, connect_timeout_ms) while
 * commands wait is dropped, and failed connections are re-made with an
 * exponential backoff (retry_min_ms..retry_max_ms, jittered). Host names are
 * resolved on the libuv threadpool, never on the loop. Our own commands
 * (CLUSTER SLOTS, SCAN, UNLINK) time out after max(1 s, connect_timeout_ms).
 *
 * Cluster mode (cluster_nodes set): the slot map comes from CLUSTER SLOTS of
 * any reachable node; keys go to the master of their CRC16 slot (hash tags
 * {...} honoured) over one connection per master. MOVED updates the map,
 * schedules a full refresh and re-sends; ASK sends ASKING + the command to the
 * named node once; at most PX_REDIS_MAX_REDIRECTS redirections per command.
 * A master that fails triggers a refresh from another node (after a failover
 * the promoted replica takes its slots); meanwhile its slots fail fast.
 */
#ifndef PX_REDIS_H
#define PX_REDIS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#define PX_REDIS_MUSTCHECK __attribute__((warn_unused_result))

#define PX_REDIS_MAX_REDIRECTS 5     /* MOVED/ASK followed per command */
#define PX_REDIS_MAX_NODES     256   /* cluster nodes remembered (masters, replicas, seeds) */
#define PX_REDIS_REFRESH_MS    10000 /* periodic CLUSTER SLOTS while all is well */

typedef struct px_redis px_redis_t;

typedef struct px_redis_config {
    const char *host;            /* single node (name or address), or */
    uint16_t port;               /*   its port */
    const char *cluster_nodes;   /* "h:p,h:p,..." seeds: cluster mode when set (not "") */
    uint32_t connect_timeout_ms; /* [200] name resolution + TCP connect */
    uint32_t command_timeout_ms; /* [50] unanswered by then: completes with PX_REDIS_ERR */
    uint32_t max_pending;        /* [4096] commands in flight; more fail at once */
    uint64_t max_pending_bytes;  /* [64 MiB] bytes of commands in flight; more fail at once */
    uint32_t retry_min_ms;       /* [100] reconnect backoff, doubled per failure ... */
    uint32_t retry_max_ms;       /* [2000] ... up to this */
    const char *client_name;     /* [NULL] CLIENT SETNAME on every connection (no spaces) */
} px_redis_config_t;

/** Fill @p c with the defaults above (host NULL, port 6379, no cluster). */
void px_redis_config_defaults(px_redis_config_t *c);

/**
 * Create a client on @p loop and start connecting in the background (the
 * configuration strings are copied). Returns NULL on a bad configuration (no
 * host, unparsable cluster_nodes, zero timeouts or limits) or out of memory.
 * A command for a node whose connection is down fails at once with
 * PX_REDIS_ERR; the first connection attempt to a node (not a reconnect after
 * a failure) accepts commands, which are sent when it completes. In cluster
 * mode commands fail at once until the first CLUSTER SLOTS answer arrived.
 */
px_redis_t *px_redis_new(uv_loop_t *loop, const px_redis_config_t *cfg) PX_REDIS_MUSTCHECK;

/**
 * Close everything. Callbacks of commands in flight that were not cancelled
 * are called with PX_REDIS_ERR during this call; no callback of any kind
 * (values, subscriber) runs after it returns. May be called from inside a
 * px_redis callback. The handles close asynchronously: run the loop (e.g.
 * until it has no more active handles) to release them. Loop thread only.
 */
void px_redis_free(px_redis_t *r);

/**
 * Whether commands are expected to succeed now. Single node: connected.
 * Cluster: the slot map is known and covers every slot, and every master is
 * connected, or being connected to with no failure since its last success.
 */
bool px_redis_available(const px_redis_t *r);

typedef enum px_redis_status {
    PX_REDIS_OK = 0,  /* the command succeeded (GET: key found) */
    PX_REDIS_NIL = 1, /* GET: no such key */
    PX_REDIS_ERR = -1 /* not sent, refused, timed out, connection lost or error reply */
} px_redis_status_t;

/** "ok", "nil", "error". */
const char *px_redis_status_to_str(px_redis_status_t st);

/**
 * Value callback. @p data/@p len is the value for PX_REDIS_OK (valid only
 * during the call, not NUL-terminated), NULL/0 otherwise.
 */
typedef void (*px_redis_value_cb)(void *arg, px_redis_status_t st, const char *data, size_t len);

typedef uint64_t px_redis_req_t; /* 0 = not issued */

/**
 * GET @p key (binary-safe). @p cb is called exactly once, unless
 * px_redis_cancel() was called first. When the command cannot be sent at all
 * (Redis unavailable, slot unknown, too many in flight, closing) @p cb is
 * called synchronously, before this function returns, with PX_REDIS_ERR and
 * the result is 0. Otherwise the result identifies the request for
 * px_redis_cancel().
 */
px_redis_req_t px_redis_get(px_redis_t *r, const void *key, size_t klen, px_redis_value_cb cb,
                            void *arg);

/**
 * Forget request @p id: its callback will not be called. The command itself
 * may still reach Redis. Harmless on 0, completed or unknown ids.
 */
void px_redis_cancel(px_redis_t *r, px_redis_req_t id);

/**
 * SET key value EX ttl_s (no expiry when @p ttl_s is 0), fire-and-forget.
 * Returns false when it could not be sent at once; later failures are counted
 * in the stats (errors, timeouts).
 */
bool px_redis_set(px_redis_t *r, const void *key, size_t klen, const void *val, size_t vlen,
                  uint32_t ttl_s);
/** DEL key, fire-and-forget like px_redis_set(). */
bool px_redis_del(px_redis_t *r, const void *key, size_t klen);
/**
 * PUBLISH channel msg, fire-and-forget like px_redis_set(). In a cluster it
 * goes to the master of the channel name's slot; Redis Cluster forwards it
 * to every node's subscribers.
 */
bool px_redis_publish(px_redis_t *r, const char *channel, const void *msg, size_t len);

/**
 * Subscribe to @p channel on a connection of its own (cluster: to any node;
 * PUBLISH reaches the subscribers of every node). @p on_msg is called for
 * each message (@p msg valid during the call only). @p on_state(arg, true)
 * once subscribed, again after every re-subscription; @p on_state(arg, false)
 * when the subscription is lost (connection dropped) — messages published
 * meanwhile are lost, so a cache must treat false as "invalidate everything
 * I cannot vouch for". Reconnects and re-subscribes by itself with backoff
 * (cluster: trying the other nodes in turn). One subscription per client:
 * returns false if there already is one, or on bad arguments. @p on_state
 * may be NULL.
 */
bool px_redis_subscribe(px_redis_t *r, const char *channel,
                        void (*on_msg)(void *arg, const char *msg, size_t len),
                        void (*on_state)(void *arg, bool subscribed), void *arg);

/**
 * Counters for the admin port. Each is updated with relaxed atomics on the
 * loop thread, so px_redis_stats() may be called from any thread (while @p r
 * is alive); the values are not a consistent snapshot of one instant.
 */
typedef struct px_redis_stats {
    uint64_t commands;   /* commands issued (GET/SET/DEL/PUBLISH, plus internal ones) */
    uint64_t errors;     /* commands that failed for any reason, timeouts included */
    uint64_t timeouts;   /* commands not answered within their timeout */
    uint64_t redirects;  /* MOVED and ASK followed */
    uint64_t reconnects; /* connection attempts after a failure or a drop */
    uint64_t bytes_in;   /* RESP bytes of replies and messages received */
    uint64_t bytes_out;  /* RESP bytes of commands sent */
    uint64_t latency_us_sum, latency_samples; /* issue-to-reply time of answered commands */
} px_redis_stats_t;

void px_redis_stats(const px_redis_t *r, px_redis_stats_t *out);

/**
 * Delete every key starting with @p prefix on every master (single node: on
 * it): SCAN MATCH <prefix>* in batches, each batch's keys UNLINKed before the
 * next SCAN, one batch in flight per master. Runs in the background; returns
 * false when it could not start (closing, empty prefix, cluster slot map not
 * known yet, out of memory). A flush requested while one runs is queued and
 * starts when it ends, so keys written meanwhile are covered; one flush can
 * be queued (the same prefix again is merged into it, another prefix while
 * one is queued returns false). Best effort: keys on a master that is down
 * are not deleted (the errors are counted).
 */
bool px_redis_flush_prefix(px_redis_t *r, const char *prefix);

/** Whether a flush is still running (tests, admin status). */
bool px_redis_flush_running(const px_redis_t *r);

/** The Redis Cluster hash slot (0..16383) of @p key, honouring {hash tags}. */
uint16_t px_redis_key_slot(const void *key, size_t klen);

#endif
