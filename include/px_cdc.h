/**
 * @file px_cdc.h
 * @brief Result-cache invalidation from the primary's logical decoding stream.
 *
 * Writes that bypass the proxy (other clients, jobs, psql on the server) are
 * caught by following the primary's WAL: a thread of its own opens a
 * replication connection to the application's database (the one whose
 * catalog the cache holds), creates a TEMPORARY logical slot with the
 * test_decoding plugin (dropped by the server when the connection ends, so a
 * proxy that dies leaves nothing behind) and, for every committed
 * transaction, bumps the tags of the tables it changed: by row when the table
 * has an integer primary key and the change names it, else the whole table.
 *
 * Needs wal_level = logical and a role with REPLICATION (POSTGRES_USER). When
 * the server cannot do it the cache works as before (writes through the
 * proxy invalidate at once, others only by CACHE_DEFAULT_TTL) and a warning
 * says why; the thread tries again now and then.
 *
 * Serving rule: once the stream has been up, the cache serves only while it
 * is up, or while the primary is down (nothing can be written then). Every
 * (re)connection starts by invalidating everything: writes made while no
 * slot existed were not seen.
 */
#ifndef PX_CDC_H
#define PX_CDC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct px_shared;

typedef enum px_cdc_state {
    PX_CDC_OFF = 0,     /* disabled by configuration, or the cache is off */
    PX_CDC_STARTING,    /* the first attempt has not finished yet */
    PX_CDC_UP,          /* streaming */
    PX_CDC_DOWN,        /* was up, lost: retrying */
    PX_CDC_UNAVAILABLE, /* the server cannot stream (wal_level, privileges, slots) */
} px_cdc_state_t;

int px_cdc_start(struct px_shared *sh);
void px_cdc_stop(void);

/** Whether the cache may serve entries now (see the serving rule above). */
bool px_cdc_serving(void);

typedef struct px_cdc_stats {
    px_cdc_state_t state;
    uint64_t transactions; /* decoded committed transactions */
    uint64_t changes;      /* row changes and truncates */
    uint64_t bumps;        /* tag bumps made */
    uint64_t connects;     /* streams established */
    char last_error[160];  /* why it is not up, "" when up */
} px_cdc_stats_t;

void px_cdc_get_stats(px_cdc_stats_t *out);
const char *px_cdc_state_str(px_cdc_state_t s);

/* ---- test_decoding output (pure; unit-tested) ---------------------------------- */

#define PX_CDC_MAX_KEYS 8

typedef enum px_cdc_line {
    PX_CDC_LINE_OTHER = 0, /* BEGIN, message, anything else: ignored */
    PX_CDC_LINE_COMMIT,
    PX_CDC_LINE_CHANGE, /* table ...: INSERT|UPDATE|DELETE|TRUNCATE: ... */
    PX_CDC_LINE_BAD,    /* a change line that could not be read */
} px_cdc_line_t;

typedef struct px_cdc_change {
    char relname[64]; /* unquoted, schema dropped */
    int n_keys;       /* values of key_col found (-1: more than PX_CDC_MAX_KEYS) */
    int64_t keys[PX_CDC_MAX_KEYS];
} px_cdc_change_t;

/**
 * Read one line of test_decoding output. For a change, the relation's name
 * and, when @p key_col is not NULL, every integer value of that column the
 * line carries (old key and new tuple of an UPDATE both count). A value that
 * is not a plain integer, or a NULL, sets n_keys to -1 (the caller then
 * invalidates the whole table).
 */
px_cdc_line_t px_cdc_parse_line(const char *line, size_t len, const char *key_col,
                                px_cdc_change_t *out);

#endif
