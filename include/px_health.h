/**
 * @file px_health.h
 * Health of the cluster members: the primary (POSTGRES_SERVER:PORT) and the
 * replicas (POSTGRES_READ_REPLICAS). A prober thread of its own checks every
 * member about once a second (connect, pg_is_in_recovery(), replay LSN and
 * lag) and publishes immutable snapshots; readers on any thread take the
 * latest one without blocking a worker loop.
 */
#ifndef PX_HEALTH_H
#define PX_HEALTH_H

#include <stdbool.h>
#include <stdint.h>

struct px_shared;

#define PX_HEALTH_MAX_MEMBERS 17 /* the primary + PX_MAX_REPLICAS */

typedef enum px_member_role {
    PX_MEMBER_PRIMARY = 0, /* configured as the primary */
    PX_MEMBER_REPLICA,     /* configured as a read replica */
} px_member_role_t;

typedef struct px_member_status {
    char host[256];
    uint16_t port;
    px_member_role_t role;     /* as configured */
    bool up;                   /* the last probe connected and answered */
    bool reachable;            /* the server answered, even if it refused the probe's login */
    bool in_recovery;          /* pg_is_in_recovery() */
    bool usable_for_reads;     /* up, in recovery and lag <= READ_REPLICA_MAX_LAG */
    bool promoted;             /* configured as a replica but no longer in recovery */
    uint64_t lsn;              /* replay LSN (replica) or current WAL LSN (primary) */
    double lag_seconds;        /* replay lag; 0 when caught up */
    uint64_t lag_bytes;        /* primary LSN - replay LSN */
    double probe_ms;           /* duration of the last probe */
    uint64_t last_ok_unix_ms;  /* wall-clock time of the last good probe, 0 = never */
    uint64_t probes, failures; /* counters */
    char last_error[160];      /* last probe error, "" when healthy; never a secret */
} px_member_status_t;

/** Start the prober thread. Returns 0 or a negative errno. */
int px_health_start(struct px_shared *sh);
/** Stop and join the prober thread. */
void px_health_stop(void);
/** Copy the latest statuses: [0] is the primary, then the replicas in configured order. */
int px_health_members(px_member_status_t *out, int max);
/** Whether the last probe of the primary succeeded (true until the first probe ends). */
bool px_health_primary_up(void);
/** The primary's current WAL LSN from the last probe (0 when unknown). */
uint64_t px_health_primary_lsn(void);
/** Ask for an immediate probe round (e.g. after a connection error). */
void px_health_poke(void);

/* ---- additions for the router: lock-free reads of the latest round ---------- */

/**
 * Bit i set: replica i (0-based, configured order; member i + 1) is usable for
 * reads — up, in recovery, lag <= READ_REPLICA_MAX_LAG. One atomic load.
 */
uint32_t px_health_usable_mask(void);
/**
 * Replay LSN of member @p idx ([0] the primary's current WAL LSN, [1 + i]
 * replica i) from the last round; 0 when unknown or down. For read-your-writes:
 * a replica may serve a client once this is >= the LSN of its last commit.
 */
uint64_t px_health_member_lsn(int idx);
/** Bumped each time a round is published (0 before the first one). */
uint64_t px_health_generation(void);
/**
 * Reload function volatilities (pg_proc.provolatile) from the primary at the
 * next round, e.g. after CREATE/ALTER FUNCTION went through the proxy. The
 * prober also reloads them every PX_HEALTH_CATALOG_PERIOD_S and publishes
 * them with px_classify_set_volatility() when they changed.
 */
void px_health_refresh_catalog(void);

#define PX_HEALTH_PERIOD_MS         1000 /* between rounds */
#define PX_HEALTH_CONNECT_TIMEOUT_S 2    /* connect + authenticate */
#define PX_HEALTH_QUERY_TIMEOUT_MS  2000 /* probe query (statement_timeout is shorter) */
#define PX_HEALTH_CATALOG_PERIOD_S  60   /* volatility reload */

#endif
