/**
 * @file px_classify.h
 * Statement classification for routing and caching (SPEC §4, §5).
 *
 * px_classify() takes one SQL text as the client sent it — a simple-query
 * string that may hold several statements, or the text of one extended-
 * protocol Parse with $n parameters — as (pointer, length), not
 * NUL-terminated, and says whether it is read-only (may run on a replica),
 * a write, transaction control, session state, or unknown. It also reports
 * whether the result is cacheable, the relations the text names (for cache
 * tags), the primary-key-style equality predicates of simple statements (for
 * fine-grained invalidation) and the hints given in comments.
 *
 * The verdict comes from the real PostgreSQL grammar (libpg_query). Parsing
 * costs tens of microseconds, so verdicts are cached per thread, keyed by the
 * text with comments dropped, whitespace collapsed and — for statements made
 * only of SELECT/WITH/VALUES/TABLE/INSERT/UPDATE/DELETE/MERGE — literal values
 * replaced by their kind: "... WHERE aid = 1" and "... WHERE aid = 2" share
 * one entry, because no literal value in those statements can change the
 * verdict. A cached verdict costs one lexical pass and one hash lookup. The
 * only literal-dependent part of a result, the values of its key predicates
 * (px_classify_key_t), is read from the text at hand on every call: the cached
 * verdict remembers which literal each key comes from, not its value.
 *
 * Function volatility comes from the database's catalog (pg_proc.provolatile)
 * when one has been published with px_classify_set_volatility(); fixed lists
 * of known side-effecting and known read-only built-ins apply always.
 *
 * Thread safety: every function may be called from any thread. The cache is
 * per thread (no locks on the hot path); the volatility table is immutable
 * once published and replaced atomically.
 *
 * Pure module: no sockets, loops or logging.
 */
#ifndef PX_CLASSIFY_H
#define PX_CLASSIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** What a statement (or a whole multi-statement text) is, for routing. */
typedef enum px_class {
    PX_CLASS_UNKNOWN = 0, /* unparseable, too complex, empty, or not confidently read-only */
    PX_CLASS_READ,        /* read-only: may run on a replica */
    PX_CLASS_WRITE,       /* DML, DDL, COPY FROM, CALL, DO, side-effecting functions, ... */
    PX_CLASS_TXN,         /* transaction control: see px_txn_kind_t */
    PX_CLASS_SESSION,     /* session state: see px_session_kind_t */
} px_class_t;

/** Transaction-control statements. */
typedef enum px_txn_kind {
    PX_TXN_NONE = 0,
    PX_TXN_BEGIN,             /* BEGIN, START TRANSACTION */
    PX_TXN_COMMIT,            /* COMMIT, END (AND CHAIN included) */
    PX_TXN_ROLLBACK,          /* ROLLBACK, ABORT */
    PX_TXN_SAVEPOINT,         /* SAVEPOINT x */
    PX_TXN_RELEASE,           /* RELEASE [SAVEPOINT] x */
    PX_TXN_ROLLBACK_TO,       /* ROLLBACK TO [SAVEPOINT] x */
    PX_TXN_PREPARE,           /* PREPARE TRANSACTION 'gid' */
    PX_TXN_COMMIT_PREPARED,   /* COMMIT PREPARED 'gid' */
    PX_TXN_ROLLBACK_PREPARED, /* ROLLBACK PREPARED 'gid' */
    PX_TXN_SET,               /* SET TRANSACTION ..., SET transaction_read_only/_isolation/... */
} px_txn_kind_t;

/** Session-state statements. */
typedef enum px_session_kind {
    PX_SESSION_NONE = 0,
    PX_SESSION_SET,            /* SET x = v, SET x TO DEFAULT, SET ROLE, SET SESSION ... */
    PX_SESSION_SET_LOCAL,      /* SET LOCAL x = v (lasts until the transaction ends) */
    PX_SESSION_RESET,          /* RESET x */
    PX_SESSION_RESET_ALL,      /* RESET ALL */
    PX_SESSION_DISCARD,        /* DISCARD ALL | PLANS | SEQUENCES | TEMP */
    PX_SESSION_LISTEN,         /* LISTEN ch */
    PX_SESSION_UNLISTEN,       /* UNLISTEN ch | * */
    PX_SESSION_PREPARE,        /* PREPARE name AS ... (SQL-level) */
    PX_SESSION_EXECUTE,        /* EXECUTE name (may write: runs where PREPARE ran) */
    PX_SESSION_DEALLOCATE,     /* DEALLOCATE [ALL] */
    PX_SESSION_DECLARE_CURSOR, /* DECLARE c CURSOR ... (WITH HOLD sets PX_CLS_F_PIN) */
    PX_SESSION_FETCH,          /* FETCH, MOVE */
    PX_SESSION_CLOSE_CURSOR,   /* CLOSE c | ALL */
    PX_SESSION_LOAD,           /* LOAD 'library' */
} px_session_kind_t;

/**
 * @name Result flags (px_classify_result_t.flags)
 * Routing and caching read PX_CLS_F_REPLICA_OK and PX_CLS_F_CACHEABLE, which
 * already include the hints; the other bits say why.
 * @{
 */
#define PX_CLS_F_REPLICA_OK     (1u << 0) /**< may run on a replica (READ, or a replica hint) */
#define PX_CLS_F_CACHEABLE      (1u << 1) /**< one read-only SELECT whose result may be cached */
#define PX_CLS_F_HAS_TXN        (1u << 2) /**< contains transaction control */
#define PX_CLS_F_READ_ONLY      (1u << 3) /**< BEGIN/START/SET TRANSACTION ... READ ONLY */
#define PX_CLS_F_HAS_SESSION    (1u << 4) /**< contains a session-state statement */
#define PX_CLS_F_HAS_WRITE      (1u << 5) /**< contains a write (also inside PREPARE/DECLARE) */
#define PX_CLS_F_LOCKING        (1u << 6) /**< FOR UPDATE / NO KEY UPDATE / SHARE / KEY SHARE */
#define PX_CLS_F_VOLATILE       (1u << 7) /**< calls a volatile, time- or session-dependent fn */
#define PX_CLS_F_SIDE_EFFECT    (1u << 8) /**< calls a known side-effecting function */
#define PX_CLS_F_PIN            (1u << 9) /**< leaves session state (LISTEN, WITH HOLD, temp, ...) */
#define PX_CLS_F_UNVERIFIED     (1u << 10) /**< calls a function of unknown volatility */
#define PX_CLS_F_RELS_TRUNCATED (1u << 11) /**< more relations than fit: the list is partial */
#define PX_CLS_F_PARSE_ERROR    (1u << 12) /**< the parser rejected the text */
#define PX_CLS_F_TOO_COMPLEX    (1u << 13) /**< not parsed: too long, too deep, or a NUL byte */
#define PX_CLS_F_COPY           (1u << 14) /**< contains COPY (either direction) */
#define PX_CLS_F_SELECT         (1u << 15) /**< one statement, a SELECT (VALUES, TABLE) */
#define PX_CLS_F_HINT_PRIMARY   (1u << 16) /**< comment hint fastnext:primary */
#define PX_CLS_F_HINT_REPLICA   (1u << 17) /**< comment hint fastnext:replica */
#define PX_CLS_F_HINT_CACHE     (1u << 18) /**< comment hint fastnext:cache [ttl=N] */
#define PX_CLS_F_HINT_NOCACHE   (1u << 19) /**< comment hint fastnext:nocache */
/**
 * Every statement of the text is a read or a plain INSERT / UPDATE / DELETE /
 * MERGE (CTEs, writable ones included), and there is at least one. Reads are
 * READ statements other than COPY (SELECT, VALUES, TABLE, SHOW, EXPLAIN of a
 * read) and locking SELECTs (FOR UPDATE / SHARE change no data). Clear for
 * DDL, TRUNCATE, COPY, CALL, DO, LOCK, VACUUM, NOTIFY, EXPLAIN of a write,
 * SELECT INTO, transaction control, session state, unparseable or too complex
 * texts, and for any call of a known side-effecting function (nextval,
 * setval, set_config, advisory locks, ...), of a volatile function that makes
 * the statement a WRITE, or of a function of unknown volatility. The cache
 * invalidates everything on a write that is not DML: only for DML do the
 * written relations (rel_flags PX_REL_WRITE) and keys say what changed.
 */
#define PX_CLS_F_DML (1u << 20)
/**
 * Calls at least one function that is not a PostgreSQL built-in: schema-
 * qualified outside pg_catalog, or unqualified / pg_catalog-qualified but
 * neither in the built-in lists (see px_classify_vol_t) nor — when a catalog is
 * published — a function that lives only in pg_catalog (for an unqualified
 * name: every function of that name is in pg_catalog, so the call cannot
 * resolve to a user's overload). A STABLE user function may read tables the
 * cache cannot see, so PX_CLS_F_CACHEABLE stays clear (the fastnext:cache hint
 * still forces it).
 */
#define PX_CLS_F_USER_FUNC (1u << 21)
/**
 * Reads a setting a hot standby answers differently from the primary: SHOW or
 * current_setting() of transaction_read_only, default_transaction_read_only
 * or in_hot_standby (current_setting's argument is found in the text, not the
 * cached verdict: literals are normalized away; any argument but a literal
 * counts as one of them). Whoever asks wants to know
 * whether the connection can write (libpq's target_session_attrs, pgjdbc's
 * targetServerType), and through the proxy it can: PX_CLS_F_REPLICA_OK stays
 * clear unless hinted. pg_is_in_recovery() is not among them: it says where
 * the statement ran, and replicas answer it.
 */
#define PX_CLS_F_STANDBY (1u << 22)
#define PX_CLS_F_CACHED  (1u << 24) /**< the verdict came from this thread's cache */
/** @} */

/** Relation flags (px_classify_result_t.rel_flags[i]). */
#define PX_REL_READ  0x01 /**< read by the statement */
#define PX_REL_WRITE 0x02 /**< written, created, altered, dropped, truncated, locked, ... */

/** Most relations reported per text; more set PX_CLS_F_RELS_TRUNCATED. */
#define PX_CLASSIFY_MAX_RELS 32
/** Bytes for the relation names (NUL-terminated, packed). */
#define PX_CLASSIFY_RELS_BYTES 512
/** Most key predicates reported per text; more make key_rows 0 (no key information). */
#define PX_CLASSIFY_MAX_KEYS 16
/** Bytes for the key column names (NUL-terminated, packed, each name once). */
#define PX_CLASSIFY_COLS_BYTES 256

/**
 * One key predicate: "column = value" on relation `rel`, for tagging a cached
 * result (or a write) by key value. See px_classify_result_t.key_rows.
 */
typedef struct px_classify_key {
    uint8_t rel;      /* index of the relation in rels[] / rel_off[] */
    uint8_t is_param; /* 1: the value is bound parameter $param; 0: the literal `value` */
    uint16_t param;   /* 1-based parameter number when is_param */
    uint16_t row;     /* INSERT: 0-based VALUES row; otherwise 0 */
    uint16_t col_off; /* offset in cols[] of the column name, as the parser folded it */
    int64_t value;    /* the integer literal when !is_param */
} px_classify_key_t;

/**
 * The verdict on one text. Plain data: copy it, keep it, no cleanup.
 * Relation i is `rels + rel_off[i]`, a NUL-terminated name as written
 * ("orders", "sales.orders", "db.sales.orders"; quoted identifiers keep their
 * case, unquoted ones are folded by the parser), read and/or written as
 * rel_flags[i] says. CTE names are not relations and are not listed.
 *
 * Key predicates (keys[0 .. n_keys)), for texts of exactly one statement:
 *  - SELECT that reads one relation and nothing else (one FROM item, a plain
 *    relation; no join, subquery or sublink anywhere, CTE, set operation,
 *    function in FROM or INTO; DISTINCT, ORDER BY, LIMIT, GROUP BY and
 *    aggregates are fine): key_rows = 1, one key per top-level AND conjunct
 *    of WHERE of the form `col = V` or `V = col`.
 *  - UPDATE or DELETE of one relation without FROM / USING and without WITH
 *    (RETURNING and subqueries in WHERE are fine): key_rows = 1, keys as for
 *    SELECT, except that UPDATE reports no key on a column it assigns in SET.
 *  - INSERT INTO rel (col, ...) VALUES (...), ... with a column list and no
 *    WITH, ON CONFLICT ... DO NOTHING allowed (DO UPDATE is not): key_rows =
 *    the number of VALUES rows, and a key (with its row) for every listed
 *    column whose expression in that row is a value.
 *  - Anything else: key_rows = 0 and n_keys = 0 (no key information); also
 *    when the keys or their column names do not fit.
 * col is a column reference `col` or `q.col` where q is the relation's name or
 * alias; V is an integer constant (negative ones included; int64 range), a
 * string constant whose whole text is a decimal integer `-?[0-9]+` in int64
 * range (no escapes, not U&'...'), either of those cast to smallint / integer
 * / bigint / int2 / int4 / int8, or a parameter $n, optionally cast so.
 * Nothing else: not 5.0, '5 ', expressions or other casts. A literal that is
 * out of range or not a strict integer in this text yields no key (n_keys
 * shrinks; key_rows stays), and so does a literal preceded by more than 255
 * others in the text (their positions are not kept). Keys are a conjunction:
 * a SELECT result depends only on rows matching each of its keys, an UPDATE
 * or DELETE writes only such rows; fewer keys is always the safe direction.
 */
typedef struct px_classify_result {
    px_class_t cls;            /* the routing class of the whole text */
    px_txn_kind_t txn;         /* last transaction-control statement, or NONE */
    px_session_kind_t session; /* last session-state statement, or NONE */
    uint32_t flags;            /* PX_CLS_F_* */
    int32_t cache_ttl;         /* seconds from a fastnext:cache ttl=N hint; -1 = default */
    uint16_t n_stmts;          /* statements in the text (0: empty or comments only) */
    uint16_t n_rels;           /* relations listed (at most PX_CLASSIFY_MAX_RELS) */
    uint16_t rels_len;         /* bytes used in rels[] */
    uint16_t key_rows;         /* 0: no key information; else rows (see above) */
    uint16_t n_keys;           /* keys[] entries in use */
    uint16_t cols_len;         /* bytes used in cols[] */
    uint8_t rel_flags[PX_CLASSIFY_MAX_RELS];      /* PX_REL_* */
    uint16_t rel_off[PX_CLASSIFY_MAX_RELS];       /* offsets of the names in rels[] */
    px_classify_key_t keys[PX_CLASSIFY_MAX_KEYS]; /* key predicates */
    char cols[PX_CLASSIFY_COLS_BYTES];            /* their column names */
    char rels[PX_CLASSIFY_RELS_BYTES];            /* must stay the last member */
} px_classify_result_t;

/**
 * Classify @p len bytes at @p sql. Never fails: anything the classifier
 * cannot vouch for is PX_CLASS_UNKNOWN (route to the primary). Reads exactly
 * [sql, sql + len); a text containing a NUL byte is UNKNOWN. Texts longer than
 * the configured max_text, or nested deeper than max_depth, are not parsed
 * (UNKNOWN with PX_CLS_F_TOO_COMPLEX).
 *
 * Statement by statement: SELECT/VALUES/TABLE, SHOW, EXPLAIN [ANALYZE] of a
 * read and COPY ... TO STDOUT (of a table or of a read) are READ, unless they
 * lock rows (FOR UPDATE / NO KEY UPDATE / SHARE / KEY SHARE at any level),
 * modify data (writable CTEs at any depth), SELECT INTO, or call a
 * side-effecting or volatile function (see px_classify_vol_t). INSERT,
 * UPDATE, DELETE, MERGE, DDL, COPY FROM, COPY TO a file or program, CALL,
 * DO, NOTIFY, LOCK, VACUUM, ANALYZE, CHECKPOINT, EXPLAIN of anything but a
 * read, and every statement type not named here are WRITE. BEGIN, START,
 * COMMIT, END, ROLLBACK, ABORT, SAVEPOINT, RELEASE, PREPARE TRANSACTION,
 * COMMIT/ROLLBACK PREPARED, SET TRANSACTION and SET transaction_* are TXN.
 * SET, RESET, DISCARD, LISTEN, UNLISTEN, PREPARE, EXECUTE, DEALLOCATE,
 * DECLARE, FETCH, MOVE, CLOSE and LOAD are SESSION.
 *
 * A SELECT naming a pg_temp.* relation is UNKNOWN: temporary tables exist in
 * one session on one server. Reads of system catalogs (pg_*, pg_catalog.*,
 * information_schema.*) are READ but not cacheable.
 *
 * Multi-statement text: READ only when every statement is read-only;
 * otherwise UNKNOWN if any statement is, else WRITE if any is, else TXN if
 * any is, else SESSION. Empty or comment-only text: UNKNOWN with n_stmts 0.
 *
 * Hints (in block or line comments, case-insensitive, several per comment
 * allowed): fastnext:primary clears PX_CLS_F_REPLICA_OK; fastnext:replica
 * sets it for READ, WRITE and UNKNOWN texts (not for TXN or SESSION);
 * fastnext:nocache clears PX_CLS_F_CACHEABLE; fastnext:cache [ttl=N] sets it
 * for a single read-only SELECT even if it calls volatile functions, and
 * sets cache_ttl. primary beats replica, nocache beats cache. Texts that are
 * too long are not scanned for hints.
 */
void px_classify(const char *sql, size_t len, px_classify_result_t *out);

/** As px_classify(), bypassing (and not filling) the cache. For tests and benchmarks. */
void px_classify_uncached(const char *sql, size_t len, px_classify_result_t *out);

/** Name of relation @p i of @p r (i < r->n_rels). */
static inline const char *px_classify_rel(const px_classify_result_t *r, unsigned i)
{
    return r->rels + r->rel_off[i];
}

/** Column name of key @p i of @p r (i < r->n_keys). */
static inline const char *px_classify_key_col(const px_classify_result_t *r, unsigned i)
{
    return r->cols + r->keys[i].col_off;
}

const char *px_class_to_str(px_class_t c);
const char *px_txn_kind_to_str(px_txn_kind_t k);
const char *px_session_kind_to_str(px_session_kind_t k);

/* ---- function volatility -------------------------------------------------- */

/**
 * A table of function volatilities, as pg_proc.provolatile has them:
 * 'i' immutable, 's' stable, 'v' volatile. Build it with px_classify_vol_new()
 * and px_classify_vol_add(), then hand it over with
 * px_classify_set_volatility(). Overloads and same-named functions in several
 * schemas keep the most volatile value.
 *
 * How a function call is judged, in order:
 *  1. Known side effects (nextval, setval, currval, lastval, pg_advisory_*lock*,
 *     set_config, pg_notify, lo_*, txid_current, pg_current_xact_id, dblink*,
 *     pg_current_wal_*lsn, setseed, pg_terminate_backend, pg_stat_reset*, ...)
 *     → WRITE. currval/lastval only read, but they read state of the session
 *     that called nextval — on the primary — so they go there too. Session
 *     advisory locks and set_config also set PX_CLS_F_PIN.
 *  2. Catalog says 'v': read-only built-ins that are volatile only because
 *     their value changes (random, clock_timestamp, gen_random_uuid, pg_sleep,
 *     pg_is_in_recovery, ...) stay READ but not cacheable; anything else
 *     volatile → WRITE (PX_CLS_F_VOLATILE): it may have side effects.
 *  3. Catalog says 's' or 'i' → READ. Time- and session-dependent ones
 *     (now, statement_timestamp, current_setting, age, pg_backend_pid, ...)
 *     and the CURRENT_* keywords are not cacheable.
 *  4. Not in the catalog, or no catalog published: the built-in lists decide
 *     (common aggregates, string, date and JSON functions are known); any
 *     other function → UNKNOWN (PX_CLS_F_UNVERIFIED), i.e. the primary.
 * Schema-qualified calls are looked up as "schema.name"; the built-in lists
 * apply to unqualified and pg_catalog-qualified names only. Operators and
 * functions called inside views are not seen.
 *
 * Independently of volatility, a call of a function that is not a built-in
 * sets PX_CLS_F_USER_FUNC: the table remembers, per unqualified name, whether
 * every function of that name was added with schema "pg_catalog".
 */
typedef struct px_classify_vol px_classify_vol_t;

/** A new empty table, or NULL when out of memory. */
px_classify_vol_t *px_classify_vol_new(void);
/**
 * Record that @p schema.@p name has volatility @p provolatile ('i', 's', 'v';
 * anything else counts as 'v'). @p schema may be NULL (then the function
 * counts as living outside pg_catalog). False when out of memory (the table
 * stays usable).
 */
bool px_classify_vol_add(px_classify_vol_t *v, const char *schema, const char *name,
                         char provolatile) __attribute__((warn_unused_result));
/** Number of names in the table (each function counts as "name" and "schema.name"). */
size_t px_classify_vol_size(const px_classify_vol_t *v);
/** Free a table that was never published. */
void px_classify_vol_free(px_classify_vol_t *v);
/**
 * Publish @p v (ownership passes to the classifier; NULL withdraws the
 * catalog, leaving the built-in lists). Every thread's cached verdicts become
 * stale and are recomputed on their next use. The previous table is freed
 * once no thread uses it.
 */
void px_classify_set_volatility(px_classify_vol_t *v);
/** Whether a catalog table is published. */
bool px_classify_have_volatility(void);

/* ---- configuration, statistics, threads -------------------------------------- */

typedef struct px_classify_config {
    uint32_t cache_entries; /* per-thread verdict cache size in entries [65536]; 0 = no cache */
    uint64_t cache_bytes;   /* per-thread byte budget for keys and verdicts [16 MiB] */
    uint32_t max_text;      /* longer texts are not parsed [131072] */
    uint32_t max_depth;     /* estimated nesting/operator-chain depth limit [1000];
                               at 1000 the parser needs ~0.7 MiB of stack */
} px_classify_config_t;

/** The defaults above. */
void px_classify_config_defaults(px_classify_config_t *cfg);
/**
 * Set the limits. Caches created afterwards use the new sizes; a thread's
 * existing cache keeps its size until px_classify_thread_exit(). Zero
 * max_text / max_depth keep the current value.
 */
void px_classify_configure(const px_classify_config_t *cfg);

typedef struct px_classify_stats {
    uint64_t calls;        /* px_classify() calls */
    uint64_t hits;         /* answered from a cache */
    uint64_t parses;       /* texts handed to the parser */
    uint64_t parse_errors; /* of which the parser rejected */
    uint64_t too_complex;  /* texts not parsed (length, depth, NUL) */
    uint64_t evictions;    /* cache entries evicted for room */
    uint64_t entries;      /* gauge: entries in all live caches */
    uint64_t bytes;        /* gauge: bytes charged in all live caches */
} px_classify_stats_t;

/** Sum of all threads' counters (relaxed reads; for the admin port). */
void px_classify_stats(px_classify_stats_t *out);

/**
 * Free the calling thread's cache and parser memory. Threads that exit free
 * theirs automatically; call it from a thread that lives on (tests, main).
 */
void px_classify_thread_exit(void);

#endif
