/**
 * @file px_stats.h
 * Read-only views of the proxy's counters and pools for the admin port.
 * Safe to call from any thread: counters are relaxed atomics owned by the
 * workers, summed here; pool lists are prepend-only and never freed while
 * the process runs.
 */
#ifndef PX_STATS_H
#define PX_STATS_H

#include <stdint.h>

struct px_shared;

/** Process-wide totals (sums over workers). Counters only go up; gauges are marked. */
typedef struct px_stats_totals {
    uint64_t clients_accepted;
    uint64_t clients_active; /* gauge */
    uint64_t clients_rejected;
    uint64_t login_failures;
    uint64_t protocol_errors;
    uint64_t transactions;
    uint64_t queries;
    uint64_t pool_waits;
    uint64_t pool_timeouts;
    uint64_t pins;
    uint64_t servers_opened;
    uint64_t servers_closed;
    uint64_t servers_broken;
    uint64_t cancels_forwarded;
    uint64_t bytes_client_to_server;
    uint64_t bytes_server_to_client;
    uint64_t iobufs_in_use; /* gauge */
    int workers;
} px_stats_totals_t;

/** One (database, user) pool, summed over workers. */
typedef struct px_pool_stats {
    char database[64];
    char user[64];
    char backend[280]; /* "host:port" of the member its connections go to */
    const char *role;  /* "primary" or "replica" */
    int open;          /* server connections open (the shared budget in use) */
    int active;        /* linked to a client */
    int idle;
    int pending;      /* connecting, logging in, checking or resetting */
    int waiting;      /* clients waiting for a server connection */
    int pinned;       /* clients pinned to their server connection */
    int size;         /* DB_POOL_SIZE */
    int max_overflow; /* DB_MAX_OVERFLOW */
} px_pool_stats_t;

void px_stats_totals(struct px_shared *sh, px_stats_totals_t *out);
/** Fills up to @p max pools; returns how many exist (may exceed @p max). */
int px_stats_pools(struct px_shared *sh, px_pool_stats_t *out, int max);

#endif
