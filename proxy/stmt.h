/*
 * Named prepared statements under transaction pooling.
 *
 * A client's statement names are its own; on the server side every
 * statement is named after its content (a 128-bit hash of the Parse body
 * without the name: query text and parameter types), "fx_<32 hex>". So the
 * same statement prepared by many clients is one server-side statement per
 * connection, and a client can be lent any connection: the proxy prepares
 * its statements there when that connection lacks them.
 *
 * px_stmt_map_t: a client's statements (client name -> content), bounded.
 * px_stmt_set_t: which content names a server connection has, bounded, the
 * oldest evicted first (the caller closes it on the server).
 */
#ifndef PX_STMT_H
#define PX_STMT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PX_STMT_NAME_LEN 36    /* "fx_" + 32 hex + NUL */
#define PX_STMT_MAP_MAX  10000 /* statements a client may keep prepared, by default */
#define PX_STMT_SET_MAX  1024  /* statements kept prepared per server connection */

typedef struct px_stmt_key {
    uint64_t lo, hi;
} px_stmt_key_t;

static inline bool px_stmt_key_eq(px_stmt_key_t a, px_stmt_key_t b)
{
    return a.lo == b.lo && a.hi == b.hi;
}

/** Key of a Parse body without its name (query text + parameter types). */
px_stmt_key_t px_stmt_key(const void *rest, size_t len);
/** "fx_" + 32 hex digits, NUL-terminated, into @p out (PX_STMT_NAME_LEN bytes). */
void px_stmt_name(px_stmt_key_t key, char out[PX_STMT_NAME_LEN]);

/* ---- a client's statements ---------------------------------------------- */

typedef struct px_stmt {
    struct px_stmt *next; /* hash chain */
    px_stmt_key_t key;
    uint32_t rest_len; /* bytes of rest[] */
    uint16_t name_len;
    bool confirmed; /* the client has seen its ParseComplete */
    uint64_t shape; /* px_stmt_shape() of the RowDescription the client last saw, 0: none */
    char *name;     /* the client's name, NUL-terminated; points into the same block */
    uint8_t rest[]; /* the Parse body after the name */
} px_stmt_t;

/** One statement on its own (free() it), e.g. a client's unnamed statement; NULL when out
 * of memory or too long. */
px_stmt_t *px_stmt_new(const char *name, size_t name_len, const void *rest, size_t rest_len,
                       px_stmt_key_t key);

typedef struct px_stmt_map {
    px_stmt_t **buckets; /* NULL until the first statement */
    uint32_t n_buckets;
    uint32_t count;
    uint32_t max;       /* statements it may hold; 0: PX_STMT_MAP_MAX */
    px_stmt_t *dropped; /* the last one a failed Parse removed: named in later errors */
} px_stmt_map_t;

/** Add or replace @p name; false when out of memory or over its max. */
bool px_stmt_map_put(px_stmt_map_t *m, const char *name, size_t name_len, const void *rest,
                     size_t rest_len, px_stmt_key_t key) __attribute__((warn_unused_result));
const px_stmt_t *px_stmt_map_get(const px_stmt_map_t *m, const char *name, size_t name_len);
/** Remove @p name; true if it was there. */
bool px_stmt_map_del(px_stmt_map_t *m, const char *name, size_t name_len);
void px_stmt_map_clear(px_stmt_map_t *m);
/** The Parse of every unconfirmed statement with @p key completed. */
void px_stmt_map_confirm(px_stmt_map_t *m, px_stmt_key_t key);
/** The Parse of unconfirmed statements with @p key failed or was skipped: forget them. */
void px_stmt_map_drop_unconfirmed(px_stmt_map_t *m, px_stmt_key_t key);
/** The client's statement stored under server-side key @p key (a linear scan: for errors). */
const px_stmt_t *px_stmt_map_by_key(const px_stmt_map_t *m, px_stmt_key_t key);
/** Read a px_stmt_name() at @p p (at least its 35 characters); false when it is not one. */
bool px_stmt_name_parse(const char *p, size_t n, px_stmt_key_t *key);
/** Hash of a client's statement (or portal) name, as the map files it. */
uint32_t px_stmt_name_hash(const char *name, size_t len);
/** The client was told the result shape of its statement named by @p name_hash (still @p key). */
void px_stmt_map_set_shape(px_stmt_map_t *m, uint32_t name_hash, px_stmt_key_t key, uint64_t shape);

/**
 * A statement's result shape, from the body of the RowDescription ('T') or
 * NoData ('n': @p body NULL) that describes it: the column names, types,
 * lengths and modifiers, as PostgreSQL compares them before it answers
 * "cached plan must not change result type". Never 0. Table OIDs, column
 * numbers and formats are left out.
 */
uint64_t px_stmt_shape(const uint8_t *body, size_t len);

/* ---- a server connection's statements ----------------------------------- */

typedef struct px_stmt_set {
    px_stmt_key_t *slots; /* open addressing, {0,0} = empty, {0,1} = deleted */
    uint64_t *shapes;     /* beside slots: the statement's shape there, 0: not known */
    uint32_t n_slots;     /* power of two, 2 x PX_STMT_SET_MAX */
    uint32_t count;
    px_stmt_key_t *order; /* insertion ring, for eviction */
    uint32_t order_head;
    uint32_t order_count;
} px_stmt_set_t;

px_stmt_set_t *px_stmt_set_new(void);
void px_stmt_set_free(px_stmt_set_t *s);
bool px_stmt_set_has(const px_stmt_set_t *s, px_stmt_key_t key);
/**
 * Insert @p key. When the set is full, the oldest key is removed first and
 * returned through @p evicted (*had_evicted true): the caller must close it
 * on the server.
 */
void px_stmt_set_add(px_stmt_set_t *s, px_stmt_key_t key, px_stmt_key_t *evicted,
                     bool *had_evicted);
void px_stmt_set_del(px_stmt_set_t *s, px_stmt_key_t key);
void px_stmt_set_clear(px_stmt_set_t *s);
/** The shape @p key has on this connection (0: not known, or not there). */
uint64_t px_stmt_set_shape(const px_stmt_set_t *s, px_stmt_key_t key);
/** Note the shape of @p key on this connection (0: forget it); no-op when absent. */
void px_stmt_set_note_shape(px_stmt_set_t *s, px_stmt_key_t key, uint64_t shape);

#endif
