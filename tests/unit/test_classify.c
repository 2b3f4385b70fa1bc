/*
 * Unit tests for proxy/classify.c: the routing class of SQL texts (read,
 * write, transaction control, session state, unknown), the flags behind it,
 * function volatility from a published catalog table, relation lists, hints,
 * the DML and user-function flags, key predicates and the per-thread verdict
 * cache (including the refresh of key values on cache hits).
 *
 * Every text is copied into a heap buffer of exactly its length, with no
 * terminating NUL, so under ASan any read past the end fails the run. Each
 * table case is checked uncached, then through the cache twice (the second
 * call must be a hit with the same verdict). The bounds suite feeds every
 * prefix and suffix of every case, random bytes and pathological nesting.
 *
 * The catalog table is process-global: suites that publish one withdraw it
 * before they return, so the other suites see the built-in lists only.
 */
#include "px_classify.h"

#include <CUnit/Basic.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers --------------------------------------------------------------- */

#define R  PX_CLASS_READ
#define W  PX_CLASS_WRITE
#define T  PX_CLASS_TXN
#define S  PX_CLASS_SESSION
#define U  PX_CLASS_UNKNOWN
#define NK (-1) /* do not check the txn/session kind */

#define F_REPLICA   PX_CLS_F_REPLICA_OK
#define F_CACHE     PX_CLS_F_CACHEABLE
#define F_RO        PX_CLS_F_READ_ONLY
#define F_LOCK      PX_CLS_F_LOCKING
#define F_VOL       PX_CLS_F_VOLATILE
#define F_SIDE      PX_CLS_F_SIDE_EFFECT
#define F_PIN       PX_CLS_F_PIN
#define F_UNVER     PX_CLS_F_UNVERIFIED
#define F_HASW      PX_CLS_F_HAS_WRITE
#define F_HAST      PX_CLS_F_HAS_TXN
#define F_HASS      PX_CLS_F_HAS_SESSION
#define F_PERR      PX_CLS_F_PARSE_ERROR
#define F_COMPLEX   PX_CLS_F_TOO_COMPLEX
#define F_COPY      PX_CLS_F_COPY
#define F_SELECT    PX_CLS_F_SELECT
#define F_TRUNC     PX_CLS_F_RELS_TRUNCATED
#define F_CACHED    PX_CLS_F_CACHED
#define F_H_PRIMARY PX_CLS_F_HINT_PRIMARY
#define F_H_REPLICA PX_CLS_F_HINT_REPLICA
#define F_H_CACHE   PX_CLS_F_HINT_CACHE
#define F_H_NOCACHE PX_CLS_F_HINT_NOCACHE
#define F_DML       PX_CLS_F_DML
#define F_USER      PX_CLS_F_USER_FUNC
#define F_STANDBY   PX_CLS_F_STANDBY

typedef struct tcase {
    const char *sql;
    px_class_t cls;
    uint32_t set;   /* flags that must be set */
    uint32_t clear; /* flags that must be clear */
    int kind;       /* px_txn_kind_t for TXN, px_session_kind_t for SESSION, NK */
} tcase_t;

typedef enum { MODE_UNCACHED, MODE_CACHED } mode_t_;

/* Classify n bytes of p from an exact-size heap copy (no NUL after it). */
static void classify_n(const char *p, size_t n, mode_t_ mode, px_classify_result_t *out)
{
    char *b = malloc(n ? n : 1);
    CU_ASSERT_FATAL(b != NULL);
    if (n)
        memcpy(b, p, n);
    if (mode == MODE_CACHED)
        px_classify(b, n, out);
    else
        px_classify_uncached(b, n, out);
    free(b);
}

static void classify_s(const char *sql, mode_t_ mode, px_classify_result_t *out)
{
    classify_n(sql, strlen(sql), mode, out);
}

static char *flags_str(uint32_t f, char *buf, size_t cap)
{
    static const struct {
        uint32_t bit;
        const char *name;
    } names[] = {
        {F_REPLICA, "REPLICA_OK"},
        {F_CACHE, "CACHEABLE"},
        {F_HAST, "HAS_TXN"},
        {F_RO, "READ_ONLY"},
        {F_HASS, "HAS_SESSION"},
        {F_HASW, "HAS_WRITE"},
        {F_LOCK, "LOCKING"},
        {F_VOL, "VOLATILE"},
        {F_SIDE, "SIDE_EFFECT"},
        {F_PIN, "PIN"},
        {F_UNVER, "UNVERIFIED"},
        {F_TRUNC, "RELS_TRUNCATED"},
        {F_PERR, "PARSE_ERROR"},
        {F_COMPLEX, "TOO_COMPLEX"},
        {F_COPY, "COPY"},
        {F_SELECT, "SELECT"},
        {F_H_PRIMARY, "H_PRIMARY"},
        {F_H_REPLICA, "H_REPLICA"},
        {F_H_CACHE, "H_CACHE"},
        {F_H_NOCACHE, "H_NOCACHE"},
        {F_DML, "DML"},
        {F_USER, "USER_FUNC"},
        {F_CACHED, "CACHED"},
    };
    size_t o = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if ((f & names[i].bit) && o + strlen(names[i].name) + 2 < cap)
            o += (size_t)snprintf(buf + o, cap - o, "%s%s", o ? "|" : "", names[i].name);
    return buf;
}

static void fail_msg(const char *what, const tcase_t *c, const px_classify_result_t *r,
                     const char *file, unsigned line)
{
    char msg[1024], fl[512];
    snprintf(msg, sizeof msg, "%s: \"%.300s\" -> %s [%s] txn=%s session=%s, want %s", what, c->sql,
             px_class_to_str(r->cls), flags_str(r->flags, fl, sizeof fl),
             px_txn_kind_to_str(r->txn), px_session_kind_to_str(r->session),
             px_class_to_str(c->cls));
    CU_assertImplementation(CU_FALSE, line, msg, file, "", CU_FALSE);
}

static bool verdict_ok(const tcase_t *c, const px_classify_result_t *r)
{
    if (r->cls != c->cls || (r->flags & c->set) != c->set || (r->flags & c->clear) != 0)
        return false;
    if (c->kind != NK) {
        if (c->cls == T && (int)r->txn != c->kind)
            return false;
        if (c->cls == S && (int)r->session != c->kind)
            return false;
    }
    return true;
}

static bool same_verdict(const px_classify_result_t *a, const px_classify_result_t *b)
{
    if (a->cls != b->cls || (a->flags & ~F_CACHED) != (b->flags & ~F_CACHED) || a->txn != b->txn ||
        a->session != b->session || a->cache_ttl != b->cache_ttl || a->n_stmts != b->n_stmts ||
        a->n_rels != b->n_rels)
        return false;
    for (unsigned i = 0; i < a->n_rels; i++)
        if (strcmp(px_classify_rel(a, i), px_classify_rel(b, i)) != 0 ||
            a->rel_flags[i] != b->rel_flags[i])
            return false;
    return true;
}

static unsigned g_cases_checked;

static void check_case(const tcase_t *c, const char *file, unsigned line)
{
    px_classify_result_t u, c1, c2;
    classify_s(c->sql, MODE_UNCACHED, &u);
    g_cases_checked++;
    if (!verdict_ok(c, &u)) {
        fail_msg("uncached", c, &u, file, line);
        return;
    }
    CU_ASSERT(!(u.flags & F_CACHED));
    classify_s(c->sql, MODE_CACHED, &c1);
    classify_s(c->sql, MODE_CACHED, &c2);
    if (!same_verdict(&u, &c1) || !same_verdict(&u, &c2)) {
        fail_msg("cache changed the verdict", c, &c2, file, line);
        return;
    }
    /* The second call is a hit; parse errors are not cached under a shared
     * (normalized) key, so that one bad literal cannot spoil its siblings. */
    if (!(u.flags & F_PERR))
        CU_ASSERT(c2.flags & F_CACHED);
    /* Routing invariants that hold for every verdict without hints. */
    if (!(u.flags & (F_H_REPLICA | F_H_PRIMARY)))
        CU_ASSERT(((u.flags & F_REPLICA) != 0) == (u.cls == R && !(u.flags & F_STANDBY)));
    if (u.flags & F_CACHE)
        CU_ASSERT(u.cls == R);
}

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))
#define CHECK_ALL(arr)                                                                             \
    for (size_t i_ = 0; i_ < N_OF(arr); i_++)                                                      \
    check_case(&(arr)[i_], __FILE__, __LINE__)

/* ---- case tables ------------------------------------------------------------------ */

static const tcase_t read_cases[] = {
    {"SELECT 1", R, F_REPLICA | F_CACHE | F_SELECT, 0, NK},
    {"select * from users where id = 1", R, F_REPLICA | F_CACHE, 0, NK},
    {"SELECT u.id, u.name FROM public.users u JOIN orders o ON o.user_id = u.id "
     "WHERE o.total > 100 ORDER BY u.name LIMIT 10",
     R, F_REPLICA | F_CACHE, 0, NK},
    {"SELECT users.id AS users_id, users.email AS users_email FROM users "
     "WHERE users.id = $1 AND users.deleted_at IS NULL ORDER BY users.created_at DESC "
     "LIMIT $2 OFFSET $3",
     R, F_REPLICA | F_CACHE, 0, NK},
    {"SELECT count(*) FROM t", R, F_REPLICA | F_CACHE, 0, NK},
    {"SELECT * FROM t WHERE id = $1", R, F_REPLICA | F_CACHE, 0, NK},
    {"VALUES (1), (2)", R, F_REPLICA | F_CACHE | F_SELECT, 0, NK},
    {"VALUES (1)", R, F_REPLICA, 0, NK},
    {"TABLE t", R, F_REPLICA | F_CACHE | F_SELECT, 0, NK},
    {"SHOW search_path", R, F_REPLICA, F_CACHE | F_SELECT, NK},
    {"SHOW ALL", R, F_REPLICA, F_CACHE, NK},
    /* a standby answers these differently: the primary says what the proxy can do */
    {"SHOW transaction_read_only", R, F_STANDBY, F_REPLICA, NK},
    {"show IN_HOT_STANDBY", R, F_STANDBY, F_REPLICA, NK},
    {"SHOW default_transaction_read_only", R, F_STANDBY, F_REPLICA, NK},
    {"SELECT current_setting('transaction_read_only')", R, F_STANDBY | F_VOL, F_REPLICA, NK},
    {"select current_setting('IN_HOT_STANDBY')::bool", R, F_STANDBY, F_REPLICA, NK},
    {"SELECT current_setting('app.tenant')", R, F_REPLICA | F_VOL, F_STANDBY | F_CACHE, NK},
    {"SELECT current_setting($1)", R, F_STANDBY, F_REPLICA, NK},
    {"SELECT pg_catalog.current_setting(name) FROM pg_settings", R, F_STANDBY, F_REPLICA, NK},
    {"/* fastnext:replica */ SHOW transaction_read_only", R, F_STANDBY | F_REPLICA, 0, NK},
    {"EXPLAIN SELECT * FROM t", R, F_REPLICA, F_CACHE, NK},
    {"EXPLAIN ANALYZE SELECT * FROM t", R, F_REPLICA, F_CACHE, NK},
    {"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) SELECT 1", R, F_REPLICA, F_CACHE, NK},
    {"COPY t TO STDOUT", R, F_REPLICA | F_COPY, F_CACHE, NK},
    {"COPY t (a, b) TO STDOUT WITH (FORMAT csv, HEADER)", R, F_REPLICA | F_COPY, 0, NK},
    {"COPY (SELECT * FROM t WHERE a > 1) TO STDOUT WITH (FORMAT csv)", R, F_REPLICA | F_COPY, 0,
     NK},
    {"WITH x AS (SELECT * FROM t) SELECT * FROM x", R, F_REPLICA | F_CACHE, 0, NK},
    {"WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 10) "
     "SELECT * FROM r",
     R, F_REPLICA | F_CACHE, 0, NK},
    {"SELECT * FROM t WHERE id IN (SELECT id FROM u)", R, F_REPLICA, 0, NK},
    {"SELECT EXISTS (SELECT 1 FROM t WHERE a = 1)", R, F_REPLICA, 0, NK},
    {"SELECT * FROM (SELECT * FROM t) s", R, F_REPLICA, 0, NK},
    {"SELECT a FROM t UNION SELECT b FROM u EXCEPT SELECT c FROM v", R, F_REPLICA, 0, NK},
    {"SELECT now()", R, F_REPLICA | F_VOL, F_CACHE, NK},
    {"SELECT random()", R, F_REPLICA | F_VOL, F_CACHE, NK},
    {"SELECT clock_timestamp(), gen_random_uuid()", R, F_REPLICA, F_CACHE, NK},
    {"SELECT current_timestamp", R, F_REPLICA | F_VOL, F_CACHE, NK},
    {"SELECT CURRENT_DATE, LOCALTIMESTAMP, CURRENT_USER", R, F_REPLICA, F_CACHE, NK},
    {"SELECT * FROM events WHERE at > now() - interval '1 hour'", R, F_REPLICA, F_CACHE, NK},
    {"SELECT 'now'::timestamptz", R, F_REPLICA | F_VOL, F_CACHE, NK},
    {"SELECT 'x'::text", R, F_REPLICA | F_CACHE, 0, NK},
    {"SELECT lower(name), upper(name), length(name) FROM t", R, F_REPLICA | F_CACHE, 0, NK},
    {"SELECT pg_sleep(0)", R, F_REPLICA, F_CACHE, NK},
    {"SELECT pg_is_in_recovery()", R, F_REPLICA, F_STANDBY | F_CACHE, NK},
    {"SELECT pg_last_wal_replay_lsn()", R, F_REPLICA, F_CACHE, NK},
    {"SELECT 1;", R, F_REPLICA, 0, NK},
    {"   SELECT 1   ", R, F_REPLICA, 0, NK},
    {"SELECT 'FOR UPDATE'", R, F_REPLICA, 0, NK},
    {"SELECT '; INSERT INTO t VALUES (1)'", R, F_REPLICA, 0, NK},
    {"SELECT 'it''s; DELETE FROM t'", R, F_REPLICA, 0, NK},
    {"SELECT $$ DELETE FROM t $$", R, F_REPLICA, 0, NK},
    {"SELECT $tag$ ; DROP TABLE t; $tag$", R, F_REPLICA, 0, NK},
    {"SELECT E'\\'; DELETE FROM t; --'", R, F_REPLICA, 0, NK},
    {"SELECT U&'d\\0061t\\+000061'", R, F_REPLICA, 0, NK},
    {"SELECT B'1010', X'1F', N'abc'", R, F_REPLICA, 0, NK},
    {"/* leading comment */ SELECT 1", R, F_REPLICA, 0, NK},
    {"SELECT 1 -- trailing comment", R, F_REPLICA, 0, NK},
    {"SELECT /* a /* nested */ comment */ 1", R, F_REPLICA, 0, NK},
    {"SELECT a, row_number() OVER (PARTITION BY b ORDER BY c) FROM t", R, F_REPLICA | F_CACHE, 0,
     NK},
    {"SELECT jsonb_build_object('a', 1, 'b', ARRAY[1,2])", R, F_REPLICA | F_CACHE, 0, NK},
    {"SELECT * FROM generate_series(1, 10) g", R, F_REPLICA | F_CACHE, 0, NK},
    {"SELECT * FROM t TABLESAMPLE SYSTEM (10)", R, F_REPLICA, 0, NK},
    {"SELECT DISTINCT ON (a) a, b FROM t ORDER BY a, b DESC", R, F_REPLICA, 0, NK},
    {"SELECT a, count(*) FROM t GROUP BY a HAVING count(*) > 1", R, F_REPLICA, 0, NK},
    {"SELECT * FROM t LEFT JOIN LATERAL (SELECT * FROM u WHERE u.t_id = t.id LIMIT 1) x ON true", R,
     F_REPLICA, 0, NK},
    {"SELECT * FROM t FETCH FIRST 5 ROWS ONLY", R, F_REPLICA, 0, NK},
    {"SELECT CASE WHEN a > 0 THEN 'pos' ELSE 'neg' END FROM t", R, F_REPLICA, 0, NK},
    {"SELECT x::text, y::int, z::numeric(10,2) FROM t", R, F_REPLICA, 0, NK},
    {"SELECT * FROM \"Weird Table\" WHERE \"Col\" = 'v'", R, F_REPLICA, 0, NK},
    {"SELECT substring(name FROM 1 FOR 3), trim(both ' ' from name), extract(year from d) FROM t",
     R, F_REPLICA | F_CACHE, 0, NK},
    {"SELECT coalesce(a, b), nullif(a, 0), greatest(a, b) FROM t", R, F_REPLICA | F_CACHE, 0, NK},
    {"SELECT * FROM t WHERE name LIKE 'a%' AND tags @> ARRAY['x'] AND doc ->> 'k' = 'v'", R,
     F_REPLICA, 0, NK},
    {"SELECT 1; SELECT 2", R, F_REPLICA, F_CACHE | F_SELECT, NK},
    {"SELECT * FROM t; SELECT * FROM u;", R, F_REPLICA, F_CACHE, NK},
    {"SELECT pg_catalog.lower('X')", R, F_REPLICA | F_CACHE, 0, NK},
    {"SELECT * FROM pg_class", R, F_REPLICA, F_CACHE, NK},
    {"SELECT * FROM pg_catalog.pg_stat_activity", R, F_REPLICA, F_CACHE, NK},
    {"SELECT * FROM information_schema.tables", R, F_REPLICA, F_CACHE, NK},
    {"(SELECT 1) UNION ALL (SELECT 2)", R, F_REPLICA, 0, NK},
    {"SELECT .5, 1e10, 1.5E-3, 42", R, F_REPLICA, 0, NK},
};

static const tcase_t write_cases[] = {
    {"INSERT INTO t VALUES (1)", W, F_HASW, F_REPLICA | F_CACHE, NK},
    {"insert into t select * from u", W, F_HASW, F_REPLICA, NK},
    {"INSERT INTO t (a) VALUES (1) ON CONFLICT (a) DO UPDATE SET a = excluded.a RETURNING *", W,
     F_HASW, F_REPLICA, NK},
    {"INSERT INTO t VALUES (E'it''s \\' ok', 'x')", W, F_HASW, F_REPLICA, NK},
    {"UPDATE t SET a = 1 WHERE id = 2", W, F_HASW, F_REPLICA, NK},
    {"DELETE FROM t WHERE id = 1", W, F_HASW, F_REPLICA, NK},
    {"MERGE INTO t USING u ON t.id = u.id WHEN MATCHED THEN UPDATE SET a = u.a "
     "WHEN NOT MATCHED THEN INSERT VALUES (u.id, u.a)",
     W, F_HASW, F_REPLICA, NK},
    {"SELECT * FROM t FOR UPDATE", W, F_LOCK, F_REPLICA | F_CACHE, NK},
    {"SELECT * FROM t FOR NO KEY UPDATE", W, F_LOCK, F_REPLICA, NK},
    {"SELECT * FROM t FOR SHARE", W, F_LOCK, F_REPLICA, NK},
    {"SELECT * FROM t FOR KEY SHARE", W, F_LOCK, F_REPLICA, NK},
    {"SELECT * FROM t FOR UPDATE SKIP LOCKED", W, F_LOCK, F_REPLICA, NK},
    {"SELECT * FROM t a JOIN u b ON true FOR UPDATE OF a NOWAIT", W, F_LOCK, F_REPLICA, NK},
    {"select id from jobs where state = 'ready' order by id limit 1 for no key update skip locked",
     W, F_LOCK, F_REPLICA, NK},
    {"SELECT * FROM (SELECT * FROM t FOR UPDATE) s", W, F_LOCK, F_REPLICA, NK},
    {"SELECT * FROM t WHERE id IN (SELECT id FROM u FOR SHARE)", W, F_LOCK, F_REPLICA, NK},
    {"SELECT (SELECT a FROM u FOR KEY SHARE) FROM t", W, F_LOCK, F_REPLICA, NK},
    {"WITH x AS (SELECT * FROM t FOR UPDATE) SELECT * FROM x", W, F_LOCK, F_REPLICA, NK},
    {"SELECT 1 UNION SELECT a FROM (SELECT a FROM t FOR UPDATE) s", W, F_LOCK, F_REPLICA, NK},
    {"WITH x AS (INSERT INTO t VALUES (1) RETURNING *) SELECT * FROM x", W, F_HASW, F_REPLICA, NK},
    {"WITH x AS (UPDATE t SET a = 1 RETURNING *) SELECT * FROM x", W, F_HASW, F_REPLICA, NK},
    {"WITH x AS (DELETE FROM t RETURNING *) SELECT count(*) FROM x", W, F_HASW, F_REPLICA, NK},
    {"WITH a AS (SELECT 1), b AS (DELETE FROM t RETURNING *) SELECT * FROM a", W, F_HASW, F_REPLICA,
     NK},
    {"SELECT * FROM (WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d) s", W, F_HASW,
     F_REPLICA, NK},
    {"SELECT * FROM u WHERE id IN (WITH i AS (INSERT INTO t VALUES (1) RETURNING a) "
     "SELECT a FROM i)",
     W, F_HASW, F_REPLICA, NK},
    {"WITH RECURSIVE w AS (WITH v AS (UPDATE t SET a = 2 RETURNING a) SELECT a FROM v) "
     "SELECT * FROM w",
     W, F_HASW, F_REPLICA, NK},
    {"SELECT * INTO newt FROM t", W, F_HASW, F_REPLICA, NK},
    {"SELECT * INTO TEMP newt FROM t", W, F_HASW | F_PIN, F_REPLICA, NK},
    {"CREATE TABLE t2 AS SELECT * FROM t", W, F_HASW, F_REPLICA, NK},
    {"SELECT nextval('s')", W, F_SIDE, F_REPLICA | F_CACHE, NK},
    {"SELECT setval('s', 10)", W, F_SIDE, F_REPLICA, NK},
    {"SELECT currval('s')", W, F_SIDE, F_REPLICA, NK},
    {"SELECT lastval()", W, F_SIDE, F_REPLICA, NK},
    {"SELECT pg_advisory_lock(1)", W, F_SIDE | F_PIN, F_REPLICA, NK},
    {"SELECT pg_try_advisory_lock(1, 2)", W, F_SIDE | F_PIN, F_REPLICA, NK},
    {"SELECT pg_advisory_lock_shared(1)", W, F_PIN, F_REPLICA, NK},
    {"SELECT pg_advisory_xact_lock(1)", W, F_SIDE, F_REPLICA | F_PIN, NK},
    {"SELECT pg_advisory_unlock(1)", W, F_SIDE, F_REPLICA, NK},
    {"SELECT set_config('search_path', 'x', false)", W, F_SIDE | F_PIN, F_REPLICA, NK},
    {"SELECT set_config('app.user', '42', true)", W, F_SIDE, F_REPLICA, NK},
    {"SELECT pg_notify('ch', 'msg')", W, F_SIDE, F_REPLICA, NK},
    {"SELECT lo_create(0)", W, F_SIDE, F_REPLICA, NK},
    {"SELECT lo_unlink(123)", W, F_SIDE, F_REPLICA, NK},
    {"SELECT txid_current()", W, F_SIDE, F_REPLICA, NK},
    {"SELECT pg_current_xact_id()", W, F_SIDE, F_REPLICA, NK},
    {"SELECT pg_current_wal_lsn()", W, F_SIDE, F_REPLICA, NK},
    {"SELECT dblink_exec('conn', 'DELETE FROM t')", W, F_SIDE, F_REPLICA, NK},
    {"SELECT pg_catalog.nextval('s')", W, F_SIDE, F_REPLICA, NK},
    {"SELECT * FROM t WHERE id = nextval('s')", W, F_SIDE, F_REPLICA, NK},
    {"SELECT id FROM t ORDER BY (SELECT nextval('s'))", W, F_SIDE, F_REPLICA, NK},
    {"SELECT * FROM nextval('s')", W, F_SIDE, F_REPLICA, NK},
    {"SELECT count(*) FILTER (WHERE setval('s', 1) > 0) FROM t", W, F_SIDE, F_REPLICA, NK},
    {"SELECT 1 FROM t WHERE EXISTS (SELECT pg_advisory_lock(id))", W, F_SIDE, F_REPLICA, NK},
    {"EXPLAIN ANALYZE INSERT INTO t VALUES (1)", W, 0, F_REPLICA, NK},
    {"EXPLAIN (ANALYZE) DELETE FROM t", W, 0, F_REPLICA, NK},
    {"EXPLAIN INSERT INTO t VALUES (1)", W, 0, F_REPLICA, NK},
    {"EXPLAIN ANALYZE SELECT nextval('s')", W, F_SIDE, F_REPLICA, NK},
    {"EXPLAIN SELECT * FROM t FOR UPDATE", W, F_LOCK, F_REPLICA, NK},
    {"COPY t FROM STDIN", W, F_COPY | F_HASW, F_REPLICA, NK},
    {"COPY t (a, b) FROM STDIN WITH (FORMAT csv)", W, F_COPY, F_REPLICA, NK},
    {"COPY t TO '/tmp/x'", W, F_COPY, F_REPLICA, NK},
    {"COPY t TO PROGRAM 'gzip > /tmp/x'", W, F_COPY, F_REPLICA, NK},
    {"COPY (INSERT INTO t VALUES (1) RETURNING *) TO STDOUT", W, F_COPY, F_REPLICA, NK},
    {"COPY (SELECT * FROM t FOR UPDATE) TO STDOUT", W, F_COPY, F_REPLICA, NK},
    {"CALL p()", W, F_HASW, F_REPLICA, NK},
    {"CALL p(1, 'x')", W, 0, F_REPLICA, NK},
    {"DO $$ BEGIN PERFORM 1; END $$", W, 0, F_REPLICA, NK},
    {"DO LANGUAGE plpgsql $x$ BEGIN NULL; END $x$", W, 0, F_REPLICA, NK},
    {"CREATE TABLE t (a int)", W, 0, F_REPLICA | F_PIN, NK},
    {"CREATE TEMP TABLE tt (a int)", W, F_PIN, F_REPLICA, NK},
    {"CREATE TEMPORARY TABLE tt AS SELECT 1", W, F_PIN, F_REPLICA, NK},
    {"CREATE INDEX CONCURRENTLY i ON t (a)", W, 0, F_REPLICA, NK},
    {"CREATE VIEW v AS SELECT * FROM t", W, 0, F_REPLICA, NK},
    {"CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$", W, 0, F_REPLICA, NK},
    {"CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT 2; END", W, 0,
     F_REPLICA, NK},
    {"ALTER TABLE t ADD COLUMN b int", W, 0, F_REPLICA, NK},
    {"DROP TABLE t", W, 0, F_REPLICA, NK},
    {"DROP TABLE IF EXISTS a, b CASCADE", W, 0, F_REPLICA, NK},
    {"TRUNCATE t", W, 0, F_REPLICA, NK},
    {"TRUNCATE TABLE a, b RESTART IDENTITY", W, 0, F_REPLICA, NK},
    {"VACUUM", W, 0, F_REPLICA, NK},
    {"VACUUM (ANALYZE, VERBOSE) t", W, 0, F_REPLICA, NK},
    {"ANALYZE t", W, 0, F_REPLICA, NK},
    {"ANALYZE", W, 0, F_REPLICA, NK},
    {"LOCK TABLE t IN ACCESS EXCLUSIVE MODE", W, 0, F_REPLICA, NK},
    {"LOCK t", W, 0, F_REPLICA, NK},
    {"REINDEX TABLE t", W, 0, F_REPLICA, NK},
    {"CLUSTER t USING i", W, 0, F_REPLICA, NK},
    {"REFRESH MATERIALIZED VIEW CONCURRENTLY mv", W, 0, F_REPLICA, NK},
    {"GRANT SELECT ON t TO someone", W, 0, F_REPLICA, NK},
    {"COMMENT ON TABLE t IS 'x'", W, 0, F_REPLICA, NK},
    {"NOTIFY ch, 'x'", W, 0, F_REPLICA, NK},
    {"CHECKPOINT", W, 0, F_REPLICA, NK},
    {"CREATE EXTENSION IF NOT EXISTS pgcrypto", W, 0, F_REPLICA, NK},
    {"ALTER SYSTEM SET work_mem = '1MB'", W, 0, F_REPLICA, NK},
    {"CREATE SEQUENCE s", W, 0, F_REPLICA, NK},
    {"SECURITY LABEL ON TABLE t IS 'x'", W, 0, F_REPLICA, NK},
    {"SELECT 1; INSERT INTO t VALUES (1)", W, F_HASW, F_REPLICA | F_CACHE, NK},
    {"SELECT * FROM t; UPDATE t SET a = 1; SELECT 2", W, F_HASW, F_REPLICA, NK},
    {"SELECT * FROM t FOR UPDATE; SELECT 1", W, F_LOCK, F_REPLICA, NK},
};

static const tcase_t txn_cases[] = {
    {"BEGIN", T, F_HAST, F_RO | F_REPLICA, PX_TXN_BEGIN},
    {"begin transaction", T, 0, F_RO, PX_TXN_BEGIN},
    {"BEGIN READ ONLY", T, F_RO, F_REPLICA, PX_TXN_BEGIN},
    {"BEGIN TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY", T, F_RO, 0, PX_TXN_BEGIN},
    {"START TRANSACTION ISOLATION LEVEL SERIALIZABLE READ ONLY", T, F_RO, 0, PX_TXN_BEGIN},
    {"START TRANSACTION ISOLATION LEVEL SERIALIZABLE, READ ONLY, DEFERRABLE", T, F_RO, 0,
     PX_TXN_BEGIN},
    {"START TRANSACTION READ WRITE", T, 0, F_RO, PX_TXN_BEGIN},
    {"BEGIN READ ONLY, READ WRITE", T, 0, F_RO, PX_TXN_BEGIN},
    {"COMMIT", T, F_HAST, 0, PX_TXN_COMMIT},
    {"END", T, 0, 0, PX_TXN_COMMIT},
    {"COMMIT AND CHAIN", T, 0, 0, PX_TXN_COMMIT},
    {"ROLLBACK", T, 0, 0, PX_TXN_ROLLBACK},
    {"ABORT", T, 0, 0, PX_TXN_ROLLBACK},
    {"SAVEPOINT s1", T, 0, 0, PX_TXN_SAVEPOINT},
    {"RELEASE SAVEPOINT s1", T, 0, 0, PX_TXN_RELEASE},
    {"RELEASE s1", T, 0, 0, PX_TXN_RELEASE},
    {"ROLLBACK TO SAVEPOINT s1", T, 0, 0, PX_TXN_ROLLBACK_TO},
    {"ROLLBACK TO s1", T, 0, 0, PX_TXN_ROLLBACK_TO},
    {"PREPARE TRANSACTION 'g1'", T, 0, 0, PX_TXN_PREPARE},
    {"COMMIT PREPARED 'g1'", T, 0, 0, PX_TXN_COMMIT_PREPARED},
    {"ROLLBACK PREPARED 'g1'", T, 0, 0, PX_TXN_ROLLBACK_PREPARED},
    {"SET TRANSACTION READ ONLY", T, F_RO, F_REPLICA, PX_TXN_SET},
    {"SET TRANSACTION ISOLATION LEVEL SERIALIZABLE", T, 0, F_RO, PX_TXN_SET},
    {"SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY", T, F_RO, 0, PX_TXN_SET},
    {"SET transaction_read_only = on", T, F_RO, 0, PX_TXN_SET},
    {"SET transaction_read_only TO off", T, 0, F_RO, PX_TXN_SET},
    {"SET LOCAL transaction_read_only = true", T, F_RO, 0, PX_TXN_SET},
    {"SET transaction_isolation = 'serializable'", T, 0, F_RO, PX_TXN_SET},
    {"BEGIN; SELECT 1; COMMIT", T, F_HAST, F_RO | F_REPLICA, PX_TXN_COMMIT},
    {"BEGIN READ ONLY; SELECT * FROM t", T, F_HAST | F_RO, 0, PX_TXN_BEGIN},
    {"BEGIN; INSERT INTO t VALUES (1); COMMIT", W, F_HAST | F_HASW, F_REPLICA, NK},
};

static const tcase_t session_cases[] = {
    {"SET search_path = a, b", S, F_HASS, F_REPLICA | F_PIN, PX_SESSION_SET},
    {"SET x.y = 1", S, 0, 0, PX_SESSION_SET},
    {"set statement_timeout to 1000", S, 0, 0, PX_SESSION_SET},
    {"SET SESSION work_mem = '64MB'", S, 0, 0, PX_SESSION_SET},
    {"SET work_mem TO DEFAULT", S, 0, 0, PX_SESSION_SET},
    {"SET LOCAL statement_timeout = 0", S, 0, 0, PX_SESSION_SET_LOCAL},
    {"SET SESSION AUTHORIZATION someone", S, 0, 0, PX_SESSION_SET},
    {"SET ROLE r", S, 0, 0, PX_SESSION_SET},
    {"SET TIME ZONE 'UTC'", S, 0, 0, PX_SESSION_SET},
    {"SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY", S, 0, 0, PX_SESSION_SET},
    {"RESET search_path", S, 0, 0, PX_SESSION_RESET},
    {"RESET ALL", S, 0, 0, PX_SESSION_RESET_ALL},
    {"DISCARD ALL", S, 0, 0, PX_SESSION_DISCARD},
    {"DISCARD PLANS", S, 0, 0, PX_SESSION_DISCARD},
    {"LISTEN ch", S, F_PIN, F_REPLICA, PX_SESSION_LISTEN},
    {"UNLISTEN *", S, 0, 0, PX_SESSION_UNLISTEN},
    {"UNLISTEN ch", S, 0, 0, PX_SESSION_UNLISTEN},
    {"PREPARE p AS SELECT 1", S, F_PIN, F_HASW, PX_SESSION_PREPARE},
    {"PREPARE p (int) AS INSERT INTO t VALUES ($1)", S, F_HASW, 0, PX_SESSION_PREPARE},
    {"PREPARE q AS SELECT * FROM t FOR UPDATE", S, F_HASW, 0, PX_SESSION_PREPARE},
    {"EXECUTE p", S, 0, F_REPLICA, PX_SESSION_EXECUTE},
    {"EXECUTE p(1, 'x')", S, 0, 0, PX_SESSION_EXECUTE},
    {"DEALLOCATE p", S, 0, 0, PX_SESSION_DEALLOCATE},
    {"DEALLOCATE ALL", S, 0, 0, PX_SESSION_DEALLOCATE},
    {"DECLARE c CURSOR FOR SELECT * FROM t", S, 0, F_PIN | F_HASW, PX_SESSION_DECLARE_CURSOR},
    {"DECLARE c CURSOR WITH HOLD FOR SELECT 1", S, F_PIN, 0, PX_SESSION_DECLARE_CURSOR},
    {"DECLARE c NO SCROLL CURSOR FOR SELECT * FROM t FOR UPDATE", S, F_HASW, 0,
     PX_SESSION_DECLARE_CURSOR},
    {"FETCH 10 FROM c", S, 0, 0, PX_SESSION_FETCH},
    {"FETCH ALL c", S, 0, 0, PX_SESSION_FETCH},
    {"MOVE NEXT IN c", S, 0, 0, PX_SESSION_FETCH},
    {"CLOSE c", S, 0, 0, PX_SESSION_CLOSE_CURSOR},
    {"CLOSE ALL", S, 0, 0, PX_SESSION_CLOSE_CURSOR},
    {"LOAD 'auto_explain'", S, F_PIN, 0, PX_SESSION_LOAD},
    {"SET x.a = 1; SELECT 1", S, F_HASS, F_REPLICA, PX_SESSION_SET},
};

static const tcase_t unknown_cases[] = {
    {"", U, 0, F_REPLICA | F_PERR, NK},
    {"   \n\t ", U, 0, F_REPLICA, NK},
    {"-- just a comment", U, 0, F_REPLICA, NK},
    {"/* only a comment */", U, 0, F_REPLICA, NK},
    {";", U, 0, F_REPLICA, NK},
    {";;  ;", U, 0, F_REPLICA, NK},
    {"SELEC 1", U, F_PERR, F_REPLICA, NK},
    {"garbage text here", U, F_PERR, F_REPLICA, NK},
    {"SELECT 'unterminated", U, F_PERR, F_REPLICA, NK},
    {"SELECT \"unterminated", U, F_PERR, F_REPLICA, NK},
    {"SELECT $$unterminated", U, F_PERR, F_REPLICA, NK},
    {"SELECT 1 /* unterminated", U, F_PERR, F_REPLICA, NK},
    {"SELECT * FROM", U, F_PERR, F_REPLICA, NK},
    {"SELECT 1; garbage", U, F_PERR, F_REPLICA, NK},
    {"\x01\x02\x03", U, F_PERR, F_REPLICA, NK},
    {"SELECT \x01", U, F_PERR, F_REPLICA, NK},
    {"SET\vx.y = 1", U, F_PERR, F_REPLICA, NK}, /* \v is not whitespace to PostgreSQL 15 */
    {"SELECT\v1", U, F_PERR, F_REPLICA, NK},
    {"SELECT my_unknown_function(1)", U, F_UNVER, F_REPLICA | F_CACHE, NK},
    {"SELECT * FROM t WHERE public.f(a)", U, F_UNVER, F_REPLICA, NK},
    {"SELECT 1; SELECT mystery()", U, F_UNVER, F_REPLICA, NK},
    {"SELECT mystery(); INSERT INTO t VALUES (1)", U, F_UNVER | F_HASW, F_REPLICA, NK},
    {"EXPLAIN SELECT mystery()", U, 0, F_REPLICA, NK},
    {"SELECT * FROM pg_temp.scratch", U, 0, F_REPLICA | F_CACHE, NK},
    {"SELECT * FROM t JOIN pg_temp_3.x ON true", U, 0, F_REPLICA, NK},
};

/* ---- table suites ------------------------------------------------------------------- */

static int suite_init(void)
{
    px_classify_set_volatility(NULL);
    return 0;
}

static void test_read_cases(void)
{
    CHECK_ALL(read_cases);
}

static void test_write_cases(void)
{
    CHECK_ALL(write_cases);
}

static void test_txn_cases(void)
{
    CHECK_ALL(txn_cases);
}

static void test_session_cases(void)
{
    CHECK_ALL(session_cases);
}

static void test_unknown_cases(void)
{
    CHECK_ALL(unknown_cases);
}

static void test_statement_counts(void)
{
    px_classify_result_t r;
    classify_s("SELECT 1; SELECT 2; SELECT 3", MODE_CACHED, &r);
    CU_ASSERT_EQUAL(r.n_stmts, 3);
    classify_s("", MODE_CACHED, &r);
    CU_ASSERT_EQUAL(r.n_stmts, 0);
    classify_s("/* x */ -- y", MODE_CACHED, &r);
    CU_ASSERT_EQUAL(r.n_stmts, 0);
    classify_s("INSERT INTO t VALUES (1);;", MODE_CACHED, &r);
    CU_ASSERT_EQUAL(r.n_stmts, 1);
}

static void test_nul_byte_is_unknown(void)
{
    static const char sql[] = "SELECT 1\0; DROP TABLE t";
    px_classify_result_t r;
    classify_n(sql, sizeof sql - 1, MODE_CACHED, &r);
    CU_ASSERT_EQUAL(r.cls, U);
    CU_ASSERT(r.flags & F_COMPLEX);
    CU_ASSERT(!(r.flags & F_REPLICA));
}

static void test_null_pointer_zero_length(void)
{
    px_classify_result_t r;
    px_classify(NULL, 0, &r);
    CU_ASSERT_EQUAL(r.cls, U);
    CU_ASSERT_EQUAL(r.n_stmts, 0);
    px_classify(NULL, 5, &r);
    CU_ASSERT_EQUAL(r.cls, U);
}

static void test_to_str(void)
{
    CU_ASSERT_STRING_EQUAL(px_class_to_str(R), "read");
    CU_ASSERT_STRING_EQUAL(px_class_to_str(U), "unknown");
    CU_ASSERT_STRING_EQUAL(px_txn_kind_to_str(PX_TXN_SET), "set_transaction");
    CU_ASSERT_STRING_EQUAL(px_txn_kind_to_str((px_txn_kind_t)99), "?");
    CU_ASSERT_STRING_EQUAL(px_session_kind_to_str(PX_SESSION_LOAD), "load");
    CU_ASSERT_STRING_EQUAL(px_session_kind_to_str((px_session_kind_t)99), "?");
}

/* ---- function volatility from the catalog -------------------------------------------- */

static px_classify_vol_t *make_catalog(char my_func_vol)
{
    px_classify_vol_t *v = px_classify_vol_new();
    CU_ASSERT_FATAL(v != NULL);
    static const struct {
        const char *schema, *name;
        char vol;
    } rows[] = {
        {"pg_catalog", "lower", 'i'},   {"pg_catalog", "count", 'i'},
        {"pg_catalog", "now", 's'},     {"pg_catalog", "random", 'v'},
        {"pg_catalog", "nextval", 'v'}, {"pg_catalog", "txid_current", 's'},
        {"pg_catalog", "to_char", 's'}, {"pg_catalog", "pg_is_in_recovery", 'v'},
        {"public", "my_stable", 's'},   {"public", "my_immutable", 'i'},
        {"app", "audit", 'v'},          {"app", "lookup", 's'},
        {"public", "overloaded", 'i'},  {"other", "overloaded", 'v'},
    };
    for (size_t i = 0; i < N_OF(rows); i++)
        CU_ASSERT(px_classify_vol_add(v, rows[i].schema, rows[i].name, rows[i].vol));
    CU_ASSERT(px_classify_vol_add(v, "public", "my_func", my_func_vol));
    return v;
}

static const tcase_t catalog_cases[] = {
    {"SELECT my_func()", W, F_VOL, F_REPLICA | F_CACHE, NK}, /* my_func is VOLATILE here */
    {"SELECT public.my_func(1)", W, F_VOL, F_REPLICA, NK},
    {"SELECT * FROM t WHERE a = my_func()", W, 0, F_REPLICA, NK},
    {"SELECT * FROM my_func()", W, 0, F_REPLICA, NK},
    /* Read-only, but user functions may read tables the cache cannot see. */
    {"SELECT my_stable(), my_immutable() FROM t", R, F_REPLICA | F_USER, F_CACHE, NK},
    {"SELECT app.lookup(1)", R, F_REPLICA, 0, NK},
    {"SELECT app.audit('x')", W, 0, F_REPLICA, NK},
    {"SELECT overloaded(1)", W, 0, F_REPLICA, NK}, /* the most volatile same-named function */
    {"SELECT public.overloaded(1)", R, F_REPLICA, 0, NK},
    {"SELECT random()", R, F_REPLICA | F_VOL, F_CACHE, NK}, /* volatile but read-only */
    {"SELECT pg_is_in_recovery()", R, F_REPLICA, F_CACHE, NK},
    {"SELECT now()", R, F_REPLICA, F_CACHE, NK},         /* stable, yet time-dependent */
    {"SELECT txid_current()", W, F_SIDE, F_REPLICA, NK}, /* the list beats the catalog */
    {"SELECT nextval('s')", W, F_SIDE, F_REPLICA, NK},
    {"SELECT lower(a), count(*) FROM t GROUP BY 1", R, F_REPLICA | F_CACHE, 0, NK},
    {"SELECT to_char(now(), 'YYYY')", R, F_REPLICA, F_CACHE, NK},
    {"SELECT length(a) FROM t", R, F_REPLICA | F_CACHE, 0, NK}, /* not in this catalog: list */
    {"SELECT not_in_catalog()", U, F_UNVER, F_REPLICA, NK},
    {"SELECT nosuch.lookup(1)", U, F_UNVER, F_REPLICA, NK},
    {"EXPLAIN ANALYZE SELECT my_func()", W, 0, F_REPLICA, NK},
};

static void test_volatile_user_function_goes_to_primary(void)
{
    px_classify_set_volatility(make_catalog('v'));
    CU_ASSERT(px_classify_have_volatility());
    CHECK_ALL(catalog_cases);
    px_classify_set_volatility(NULL);
    CU_ASSERT(!px_classify_have_volatility());
}

static void test_stable_user_function_is_read_and_republish_invalidates(void)
{
    px_classify_result_t r;
    px_classify_set_volatility(make_catalog('v'));
    classify_s("SELECT my_func() FROM t", MODE_CACHED, &r);
    CU_ASSERT_EQUAL(r.cls, W);
    classify_s("SELECT my_func() FROM t", MODE_CACHED, &r);
    CU_ASSERT_EQUAL(r.cls, W);
    CU_ASSERT(r.flags & F_CACHED);

    /* ALTER FUNCTION my_func() STABLE, and the catalog refresh publishes it. */
    px_classify_set_volatility(make_catalog('s'));
    classify_s("SELECT my_func() FROM t", MODE_CACHED, &r);
    CU_ASSERT_EQUAL(r.cls, R);
    CU_ASSERT(!(r.flags & F_CACHED)); /* recomputed, not the stale verdict */
    CU_ASSERT(r.flags & F_REPLICA);
    CU_ASSERT(r.flags & F_USER); /* a user function: read, but not cacheable */
    CU_ASSERT(!(r.flags & F_CACHE));
    classify_s("SELECT my_func() FROM t", MODE_CACHED, &r);
    CU_ASSERT(r.flags & F_CACHED);
    CU_ASSERT_EQUAL(r.cls, R);

    /* Immutable: also read. */
    px_classify_set_volatility(make_catalog('i'));
    classify_s("SELECT my_func()", MODE_CACHED, &r);
    CU_ASSERT_EQUAL(r.cls, R);

    /* Without a catalog the function is unknown: primary. */
    px_classify_set_volatility(NULL);
    classify_s("SELECT my_func()", MODE_CACHED, &r);
    CU_ASSERT_EQUAL(r.cls, U);
    CU_ASSERT(r.flags & F_UNVER);
}

static void test_volatility_table_api(void)
{
    px_classify_vol_t *v = px_classify_vol_new();
    CU_ASSERT_FATAL(v != NULL);
    CU_ASSERT_EQUAL(px_classify_vol_size(v), 0);
    CU_ASSERT(px_classify_vol_add(v, "s", "f", 'i'));
    CU_ASSERT_EQUAL(px_classify_vol_size(v), 2); /* "f" and "s.f" */
    CU_ASSERT(px_classify_vol_add(v, "s", "f", 'v'));
    CU_ASSERT(px_classify_vol_add(v, NULL, "g", 'x')); /* unknown letter counts as volatile */
    CU_ASSERT_EQUAL(px_classify_vol_size(v), 3);
    CU_ASSERT(!px_classify_vol_add(v, "s", NULL, 'i'));
    /* Grow well past the initial table size. */
    char name[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(name, sizeof name, "fn_%d", i);
        CU_ASSERT(px_classify_vol_add(v, "pg_catalog", name, i % 2 ? 's' : 'i'));
    }
    CU_ASSERT_EQUAL(px_classify_vol_size(v), 3 + 10000);
    px_classify_set_volatility(v);
    px_classify_result_t r;
    classify_s("SELECT f(), s.f()", MODE_CACHED, &r);
    CU_ASSERT_EQUAL(r.cls, W); /* the later 'v' wins over 'i' */
    classify_s("SELECT fn_4999(), pg_catalog.fn_10()", MODE_CACHED, &r);
    CU_ASSERT_EQUAL(r.cls, R);
    classify_s("SELECT g()", MODE_CACHED, &r);
    CU_ASSERT_EQUAL(r.cls, W);
    px_classify_set_volatility(NULL);
    px_classify_vol_free(NULL);
    px_classify_vol_free(px_classify_vol_new());
}

/* ---- relations ---------------------------------------------------------------------- */

/* Expect exactly the relations in @p want ("name:r", "name:w", "name:rw"), in order. */
static void check_rels(const char *sql, const char *const *want, size_t n_want, const char *file,
                       unsigned line)
{
    px_classify_result_t r;
    classify_s(sql, MODE_UNCACHED, &r);
    char got[1024] = "";
    size_t o = 0;
    for (unsigned i = 0; i < r.n_rels && o < sizeof got - 80; i++)
        o += (size_t)snprintf(got + o, sizeof got - o, "%s%s:%s%s", i ? " " : "",
                              px_classify_rel(&r, i), (r.rel_flags[i] & PX_REL_READ) ? "r" : "",
                              (r.rel_flags[i] & PX_REL_WRITE) ? "w" : "");
    char exp[1024] = "";
    o = 0;
    for (size_t i = 0; i < n_want; i++)
        o += (size_t)snprintf(exp + o, sizeof exp - o, "%s%s", i ? " " : "", want[i]);
    char msg[2600];
    snprintf(msg, sizeof msg, "relations of \"%s\": got [%s], want [%s]", sql, got, exp);
    CU_assertImplementation(strcmp(got, exp) == 0, line, msg, file, "", CU_FALSE);
}

#define RELS(sql, ...)                                                                             \
    do {                                                                                           \
        static const char *const w_[] = {__VA_ARGS__};                                             \
        check_rels((sql), w_, N_OF(w_), __FILE__, __LINE__);                                       \
    } while (0)
#define NO_RELS(sql) check_rels((sql), NULL, 0, __FILE__, __LINE__)

static void test_relations(void)
{
    RELS("SELECT * FROM a JOIN s.b ON true, c.d.e", "a:r", "s.b:r", "c.d.e:r");
    RELS("SELECT * FROM t x JOIN t y ON true", "t:r");
    RELS("SELECT * FROM \"MixedCase\", Plain, \"we\"\"ird\"", "MixedCase:r", "plain:r",
         "we\"ird:r");
    RELS("WITH x AS (SELECT * FROM t) SELECT * FROM x JOIN u ON true", "t:r", "u:r");
    RELS("WITH x AS (SELECT 1) SELECT * FROM s.x", "s.x:r");
    /* Non-recursive: a's body sees the table b, not the later CTE b. */
    RELS("WITH a AS (SELECT * FROM b), b AS (SELECT 1) SELECT * FROM a, b", "b:r");
    /* Recursive: every CTE is visible in every body. */
    NO_RELS("WITH RECURSIVE a AS (SELECT * FROM b), b AS (SELECT 1) SELECT * FROM a");
    /* A CTE is visible only in its own statement. */
    RELS("SELECT * FROM (WITH t AS (SELECT 1) SELECT * FROM t) s, t", "t:r");
    RELS("WITH c AS (SELECT 1) SELECT * FROM c UNION SELECT * FROM (SELECT * FROM c) z, d", "d:r");
    RELS("SELECT * FROM t WHERE id IN (SELECT id FROM u WHERE EXISTS (SELECT 1 FROM v))", "t:r",
         "u:r", "v:r");
    RELS("INSERT INTO t SELECT * FROM u", "t:w", "u:r");
    RELS("UPDATE t SET a = u.a FROM u WHERE t.id = u.id", "t:w", "u:r");
    RELS("DELETE FROM s.t USING u WHERE s.t.id = u.id", "s.t:w", "u:r");
    RELS("WITH x AS (INSERT INTO t VALUES (1) RETURNING *) SELECT * FROM x, u", "t:w", "u:r");
    RELS("SELECT * INTO n FROM t", "n:w", "t:r");
    RELS("TRUNCATE a, b", "a:w", "b:w");
    RELS("DROP TABLE s.a", "s.a:w");
    RELS("DROP TABLE IF EXISTS a, s.b, c.s.d CASCADE", "a:w", "s.b:w", "c.s.d:w");
    RELS("DROP VIEW v; DROP MATERIALIZED VIEW mv", "v:w", "mv:w");
    NO_RELS("DROP INDEX i");
    NO_RELS("DROP FUNCTION f()");
    RELS("ALTER TABLE a RENAME TO b", "a:w");
    RELS("CREATE INDEX i ON s.t (a)", "s.t:w");
    RELS("LOCK TABLE a, b", "a:w", "b:w");
    RELS("MERGE INTO t USING u ON t.id = u.id WHEN MATCHED THEN DELETE", "t:w", "u:r");
    RELS("CREATE TEMP TABLE tt AS SELECT * FROM src", "src:w", "tt:w");
    RELS("WITH RECURSIVE r AS (SELECT 1 UNION ALL SELECT n + 1 FROM r, s) SELECT * FROM r", "s:r");
    RELS("ALTER TABLE a ADD COLUMN x int", "a:w");
    RELS("COPY t TO STDOUT", "t:r");
    RELS("COPY t FROM STDIN", "t:w");
    RELS("COPY (SELECT * FROM a JOIN b USING (id)) TO STDOUT", "a:r", "b:r");
    RELS("EXPLAIN SELECT * FROM t", "t:r");
    RELS("SELECT * FROM a; SELECT * FROM b", "a:r", "b:r");
    RELS("TABLE t", "t:r");
    NO_RELS("SELECT 1");
    NO_RELS("SELECT * FROM generate_series(1, 3)");
    NO_RELS("BEGIN");

    /* More relations than fit: truncated, and not cacheable. */
    char sql[2048] = "SELECT * FROM t0";
    for (int i = 1; i < 40; i++) {
        size_t l = strlen(sql);
        snprintf(sql + l, sizeof sql - l, ", t%d", i);
    }
    px_classify_result_t r;
    classify_s(sql, MODE_CACHED, &r);
    CU_ASSERT_EQUAL(r.cls, R);
    CU_ASSERT_FATAL(r.n_rels == PX_CLASSIFY_MAX_RELS);
    CU_ASSERT(r.flags & F_TRUNC);
    CU_ASSERT(!(r.flags & F_CACHE));
    CU_ASSERT_STRING_EQUAL(px_classify_rel(&r, 31), "t31");

    /* Long names overflow the byte budget before the count. */
    char big[8192] = "SELECT * FROM ";
    for (int i = 0; i < 12; i++) {
        size_t l = strlen(big);
        snprintf(big + l, sizeof big - l, "%ss%02d_%.55s.t_%.55s", i ? ", " : "", i,
                 "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
                 "yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy");
    }
    classify_s(big, MODE_UNCACHED, &r);
    CU_ASSERT(r.flags & F_TRUNC);
    CU_ASSERT(r.rels_len <= PX_CLASSIFY_RELS_BYTES);
    CU_ASSERT(r.n_rels >= 3 && r.n_rels < 12);
}

/* ---- hints --------------------------------------------------------------------------- */

static const tcase_t hint_cases[] = {
    {"/* fastnext:primary */ SELECT 1", R, F_H_PRIMARY, F_REPLICA, NK},
    {"SELECT 1 /* fastnext:\tprimary */", R, F_H_PRIMARY, F_REPLICA, NK},
    {"SELECT 1 /* fastnext:replica */", R, F_H_REPLICA | F_REPLICA, 0, NK},
    {"/* fastnext:replica */ SELECT nextval('s')", W, F_H_REPLICA | F_REPLICA, 0, NK},
    {"/* fastnext:replica */ SELECT mystery()", U, F_REPLICA, 0, NK},
    {"/* fastnext:replica */ BEGIN", T, F_H_REPLICA, F_REPLICA, NK},
    {"/* fastnext:replica */ SET x.y = 1", S, 0, F_REPLICA, NK},
    {"/* FastNext:Primary */ SELECT 1", R, F_H_PRIMARY, F_REPLICA, NK},
    {"/* fastnext:primary fastnext:replica */ SELECT 1", R, F_H_PRIMARY, F_REPLICA, NK},
    {"/* fastnext:replica */ /* fastnext:primary */ SELECT 1", R, F_H_PRIMARY, F_REPLICA, NK},
    {"-- fastnext:primary\nSELECT 1", R, F_H_PRIMARY, F_REPLICA, NK},
    {"SELECT 1 -- fastnext:primary", R, F_H_PRIMARY, F_REPLICA, NK},
    {"/* outer /* fastnext:primary */ still comment */ SELECT 1", R, F_H_PRIMARY, F_REPLICA, NK},
    {"SELECT '/* fastnext:primary */'", R, F_REPLICA, F_H_PRIMARY, NK},
    {"SELECT $$ -- fastnext:primary $$", R, F_REPLICA, F_H_PRIMARY, NK},
    {"SELECT \"/* fastnext:primary */\" FROM t", R, F_REPLICA, F_H_PRIMARY, NK},
    {"/* fastnext:primaryx */ SELECT 1", R, F_REPLICA, F_H_PRIMARY, NK},
    {"/* fastnext: primary */ SELECT 1", R, F_H_PRIMARY, F_REPLICA, NK}, /* space allowed */
    {"/* fastnext:cache ttl=60 */ SELECT now()", R, F_H_CACHE | F_CACHE, 0, NK},
    {"/* fastnext:cache */ SELECT * FROM t", R, F_H_CACHE | F_CACHE, 0, NK},
    {"/* fastnext:nocache */ SELECT * FROM t", R, F_H_NOCACHE, F_CACHE, NK},
    {"/* fastnext:cache ttl=60 fastnext:nocache */ SELECT 1", R, F_H_NOCACHE, F_CACHE, NK},
    {"/* fastnext:cache ttl=60 */ INSERT INTO t VALUES (1)", W, F_H_CACHE, F_CACHE, NK},
    {"/* fastnext:cache ttl=60 */ SELECT 1; SELECT 2", R, F_H_CACHE, F_CACHE, NK},
    {"/* fastnext:cache ttl=60 */ SHOW x", R, 0, F_CACHE, NK},
    {"/* fastnext:cache ttl=5 */ SELECT * FROM t FOR UPDATE", W, 0, F_CACHE, NK},
    {"/* traceparent='00-abc' */ SELECT 1", R, F_REPLICA | F_CACHE, F_H_PRIMARY, NK},
};

static void test_hint_cases(void)
{
    CHECK_ALL(hint_cases);
}

static void test_hint_ttl(void)
{
    static const struct {
        const char *sql;
        int32_t ttl;
    } cases[] = {
        {"/* fastnext:cache ttl=60 */ SELECT 1", 60},
        {"/* fastnext:cache ttl = 7 */ SELECT 1", 7},
        {"/* FASTNEXT:CACHE TTL=0 */ SELECT 1", 0},
        {"/* fastnext:cache */ SELECT 1", -1},
        {"/* fastnext:cache ttl=abc */ SELECT 1", -1},
        {"/* fastnext:cache ttl=99999999999999 */ SELECT 1", 315360000},
        {"/* fastnext:nocache fastnext:cache ttl=60 */ SELECT 1", -1},
        {"SELECT 1", -1},
        {"-- fastnext:cache ttl=30\nSELECT * FROM t", 30},
    };
    for (size_t i = 0; i < N_OF(cases); i++) {
        px_classify_result_t r;
        classify_s(cases[i].sql, MODE_CACHED, &r);
        if (r.cache_ttl != cases[i].ttl) {
            char msg[256];
            snprintf(msg, sizeof msg, "ttl of \"%s\" = %d, want %d", cases[i].sql, r.cache_ttl,
                     cases[i].ttl);
            CU_assertImplementation(CU_FALSE, __LINE__, msg, __FILE__, "", CU_FALSE);
        }
    }
}

/* Hints are not part of the cache key: the same statement with and without
 * them shares one cached verdict, and each call gets its own hints. */
static void test_hints_apply_to_cached_verdicts(void)
{
    px_classify_result_t r;
    classify_s("/* fastnext:primary */ SELECT * FROM hinted WHERE id = 1", MODE_CACHED, &r);
    CU_ASSERT(!(r.flags & F_REPLICA));
    classify_s("SELECT * FROM hinted WHERE id = 2", MODE_CACHED, &r);
    CU_ASSERT(r.flags & F_CACHED);
    CU_ASSERT(r.flags & F_REPLICA);
    CU_ASSERT(!(r.flags & F_H_PRIMARY));
    classify_s("SELECT * FROM hinted WHERE id = 3 /* fastnext:nocache */", MODE_CACHED, &r);
    CU_ASSERT(r.flags & F_CACHED);
    CU_ASSERT(!(r.flags & F_CACHE));
    classify_s("SELECT * FROM hinted WHERE id = 4", MODE_CACHED, &r);
    CU_ASSERT(r.flags & F_CACHE);
}

/* ---- cache --------------------------------------------------------------------------- */

static void test_cache_hit_same_verdict(void)
{
    px_classify_stats_t s0, s1;
    px_classify_stats(&s0);
    px_classify_result_t a, b;
    classify_s("SELECT * FROM cache_t WHERE id = 1", MODE_CACHED, &a);
    classify_s("SELECT * FROM cache_t WHERE id = 1", MODE_CACHED, &b);
    CU_ASSERT(!(a.flags & F_CACHED));
    CU_ASSERT(b.flags & F_CACHED);
    CU_ASSERT(same_verdict(&a, &b));
    CU_ASSERT_FATAL(b.n_rels == 1);
    CU_ASSERT_STRING_EQUAL(px_classify_rel(&b, 0), "cache_t");
    px_classify_stats(&s1);
    CU_ASSERT(s1.calls >= s0.calls + 2);
    CU_ASSERT(s1.hits >= s0.hits + 1);
    CU_ASSERT(s1.parses >= s0.parses + 1);
    CU_ASSERT(s1.entries >= 1);
    CU_ASSERT(s1.bytes > 0);
}

static void test_cache_normalizes_literals_whitespace_and_comments(void)
{
    px_classify_result_t r;
    classify_s("SELECT abalance FROM pgbench_accounts WHERE aid = 1;", MODE_CACHED, &r);
    CU_ASSERT(!(r.flags & F_CACHED));
    static const char *const same[] = {
        "SELECT abalance FROM pgbench_accounts WHERE aid = 77341;",
        "SELECT abalance FROM pgbench_accounts WHERE aid = 2;",
        "SELECT  abalance\n FROM pgbench_accounts WHERE aid =   99 ;",
        "/* app=x,trace=123 */ SELECT abalance FROM pgbench_accounts WHERE aid = 5; -- c",
    };
    for (size_t i = 0; i < N_OF(same); i++) {
        classify_s(same[i], MODE_CACHED, &r);
        CU_ASSERT(r.flags & F_CACHED);
        CU_ASSERT_EQUAL(r.cls, R);
    }
    /* Strings, numbers and floats are different kinds of literal. */
    classify_s("SELECT abalance FROM pgbench_accounts WHERE aid = '2';", MODE_CACHED, &r);
    CU_ASSERT(!(r.flags & F_CACHED));
    classify_s("SELECT abalance FROM pgbench_accounts WHERE aid = 'abc';", MODE_CACHED, &r);
    CU_ASSERT(r.flags & F_CACHED);
    classify_s("SELECT abalance FROM pgbench_accounts WHERE aid = 2.5;", MODE_CACHED, &r);
    CU_ASSERT(!(r.flags & F_CACHED));
    /* ... and the time-relative strings are a kind of their own. */
    classify_s("SELECT * FROM ev WHERE at > 'yesterday'::date", MODE_CACHED, &r);
    CU_ASSERT(!(r.flags & F_CACHED));
    CU_ASSERT(!(r.flags & F_CACHE));
    classify_s("SELECT * FROM ev WHERE at > '2024-01-01'::date", MODE_CACHED, &r);
    CU_ASSERT(!(r.flags & F_CACHED));
    CU_ASSERT(r.flags & F_CACHE);
    classify_s("SELECT * FROM ev WHERE at > ' Today '::date", MODE_CACHED, &r);
    CU_ASSERT(r.flags & F_CACHED);
    CU_ASSERT(!(r.flags & F_CACHE));
    /* A literal the parser rejects does not spoil the entry of its shape. */
    classify_s("SELECT * FROM esc WHERE a = U&'\\zzzz'", MODE_CACHED, &r);
    CU_ASSERT(r.flags & F_PERR);
    classify_s("SELECT * FROM esc WHERE a = U&'ok'", MODE_CACHED, &r);
    CU_ASSERT(!(r.flags & F_CACHED));
    CU_ASSERT_EQUAL(r.cls, R);
    classify_s("SELECT * FROM esc WHERE a = U&'\\zzzz'", MODE_CACHED, &r);
    CU_ASSERT(r.flags & F_CACHED); /* the valid sibling's verdict: the server rejects it */
    /* Writes normalize too. */
    classify_s("INSERT INTO t VALUES (1, 'a')", MODE_CACHED, &r);
    classify_s("INSERT INTO t VALUES (2, 'bb')", MODE_CACHED, &r);
    CU_ASSERT(r.flags & F_CACHED);
    CU_ASSERT_EQUAL(r.cls, W);
    /* Statements whose literals matter keep them in the key. */
    classify_s("SET transaction_read_only = on", MODE_CACHED, &r);
    CU_ASSERT(r.flags & F_RO);
    classify_s("SET transaction_read_only = off", MODE_CACHED, &r);
    CU_ASSERT(!(r.flags & F_CACHED));
    CU_ASSERT(!(r.flags & F_RO));
    classify_s("SELECT 1; SET transaction_read_only = 1", MODE_CACHED, &r);
    classify_s("SELECT 1; SET transaction_read_only = 0", MODE_CACHED, &r);
    CU_ASSERT(!(r.flags & F_CACHED));
    /* Different statements never share an entry. */
    classify_s("SELECT * FROM t WHERE id = 1", MODE_CACHED, &r);
    CU_ASSERT_EQUAL(r.cls, R);
    classify_s("SELECT * FROM t WHERE id = 1 FOR UPDATE", MODE_CACHED, &r);
    CU_ASSERT_EQUAL(r.cls, W);
    classify_s("SELECT * FROM \"T\" WHERE id = 1", MODE_CACHED, &r);
    CU_ASSERT(!(r.flags & F_CACHED));
    /* An identifier that looks like a literal prefix is still an identifier. */
    classify_s("SELECT e FROM t", MODE_CACHED, &r);
    classify_s("SELECT x FROM t", MODE_CACHED, &r);
    CU_ASSERT(!(r.flags & F_CACHED));
}

static void test_uncached_never_hits(void)
{
    px_classify_result_t r;
    for (int i = 0; i < 3; i++) {
        classify_s("SELECT 42 FROM uncached_t", MODE_UNCACHED, &r);
        CU_ASSERT(!(r.flags & F_CACHED));
    }
}

typedef struct small_cache_arg {
    int hits_after;
    int misses_first_round;
    uint64_t evictions;
} small_cache_arg_t;

static void *small_cache_thread(void *p)
{
    small_cache_arg_t *a = p;
    char sql[64];
    px_classify_result_t r;
    px_classify_stats_t s0, s1;
    px_classify_stats(&s0);
    for (int i = 0; i < 100; i++) {
        snprintf(sql, sizeof sql, "SELECT * FROM small_%d", i);
        px_classify(sql, strlen(sql), &r);
        if (!(r.flags & F_CACHED))
            a->misses_first_round++;
    }
    /* The most recent few are still there; a repeated one becomes "hot". */
    for (int k = 0; k < 3; k++) {
        px_classify("SELECT * FROM small_99", 22, &r);
        if (r.flags & F_CACHED)
            a->hits_after++;
    }
    px_classify_stats(&s1);
    a->evictions = s1.evictions - s0.evictions;
    px_classify_thread_exit();
    /* Using the classifier again after thread_exit starts a fresh cache. */
    px_classify("SELECT 1", 8, &r);
    return NULL;
}

static void test_small_cache_evicts(void)
{
    px_classify_config_t cfg, def;
    px_classify_config_defaults(&def);
    cfg = def;
    cfg.cache_entries = 8;
    px_classify_configure(&cfg);
    small_cache_arg_t a = {0, 0, 0};
    pthread_t th;
    CU_ASSERT_FATAL(pthread_create(&th, NULL, small_cache_thread, &a) == 0);
    pthread_join(th, NULL);
    px_classify_configure(&def);
    CU_ASSERT_EQUAL(a.misses_first_round, 100);
    CU_ASSERT_EQUAL(a.hits_after, 3);
    CU_ASSERT(a.evictions >= 92);
}

static void *byte_budget_thread(void *p)
{
    uint64_t *bytes = p;
    char sql[600];
    px_classify_result_t r;
    for (int i = 0; i < 400; i++) {
        int n = snprintf(sql, sizeof sql, "SELECT * FROM budget_%d WHERE ", i);
        while (n < 500)
            n += snprintf(sql + n, sizeof sql - (size_t)n, "c%d = $1 AND ", n);
        n += snprintf(sql + n, sizeof sql - (size_t)n, "true");
        px_classify(sql, (size_t)n, &r);
    }
    px_classify_stats_t s;
    px_classify_stats(&s);
    *bytes = s.bytes;
    px_classify_thread_exit();
    return NULL;
}

static void test_byte_budget_bounds_the_cache(void)
{
    px_classify_config_t cfg, def;
    px_classify_config_defaults(&def);
    cfg = def;
    cfg.cache_bytes = 64 * 1024;
    px_classify_configure(&cfg);
    px_classify_thread_exit(); /* this thread's cache is rebuilt with the new budget */
    uint64_t bytes = 0;
    pthread_t th;
    CU_ASSERT_FATAL(pthread_create(&th, NULL, byte_budget_thread, &bytes) == 0);
    pthread_join(th, NULL);
    px_classify_configure(&def);
    /* Only this (main) thread's cache and the finished thread's are counted;
     * the finished one is gone, so what is left is small. */
    px_classify_stats_t s;
    px_classify_stats(&s);
    CU_ASSERT(s.bytes <= 64 * 1024);
    CU_ASSERT(bytes > 0);
}

static void test_cache_disabled(void)
{
    px_classify_config_t cfg, def;
    px_classify_config_defaults(&def);
    cfg = def;
    cfg.cache_entries = 0;
    px_classify_configure(&cfg);
    px_classify_thread_exit();
    px_classify_result_t r;
    classify_s("SELECT 7 FROM nocache_t", MODE_CACHED, &r);
    classify_s("SELECT 7 FROM nocache_t", MODE_CACHED, &r);
    CU_ASSERT(!(r.flags & F_CACHED));
    CU_ASSERT_EQUAL(r.cls, R);
    px_classify_configure(&def);
    px_classify_thread_exit();
    classify_s("SELECT 7 FROM nocache_t", MODE_CACHED, &r);
    classify_s("SELECT 7 FROM nocache_t", MODE_CACHED, &r);
    CU_ASSERT(r.flags & F_CACHED);
}

typedef struct mt_arg {
    int id;
    int errors;
} mt_arg_t;

static void *mt_thread(void *p)
{
    mt_arg_t *a = p;
    const tcase_t *tables[] = {read_cases, write_cases, txn_cases, session_cases};
    const size_t sizes[] = {N_OF(read_cases), N_OF(write_cases), N_OF(txn_cases),
                            N_OF(session_cases)};
    px_classify_result_t r;
    for (int round = 0; round < 20; round++) {
        for (size_t t = 0; t < 4; t++) {
            for (size_t i = 0; i < sizes[t]; i++) {
                const tcase_t *c = &tables[t][(i + (size_t)a->id * 7) % sizes[t]];
                px_classify(c->sql, strlen(c->sql), &r);
                if (!verdict_ok(c, &r))
                    a->errors++;
            }
        }
    }
    return NULL; /* the thread's cache is freed by its destructor */
}

static void test_threads_classify_concurrently(void)
{
    enum { N = 4 };
    pthread_t th[N];
    mt_arg_t args[N];
    for (int i = 0; i < N; i++) {
        args[i] = (mt_arg_t){i, 0};
        CU_ASSERT_FATAL(pthread_create(&th[i], NULL, mt_thread, &args[i]) == 0);
    }
    /* Republish catalogs while they run: verdicts stay right (no catalog case
     * depends on these tables) and nothing is freed under a reader. */
    for (int k = 0; k < 50; k++) {
        px_classify_vol_t *v = px_classify_vol_new();
        CU_ASSERT_FATAL(v != NULL);
        CU_ASSERT(px_classify_vol_add(v, "pg_catalog", "count", 'i'));
        px_classify_set_volatility(v);
    }
    px_classify_set_volatility(NULL);
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        CU_ASSERT_EQUAL(args[i].errors, 0);
    }
}

/* ---- DML flag ------------------------------------------------------------------------ */

static const tcase_t dml_cases[] = {
    {"INSERT INTO t (id) VALUES (1)", W, F_DML | F_HASW, 0, NK},
    {"INSERT INTO t SELECT * FROM u", W, F_DML, 0, NK},
    {"INSERT INTO t (a) VALUES (1) ON CONFLICT (a) DO UPDATE SET a = excluded.a RETURNING *", W,
     F_DML, 0, NK},
    {"UPDATE t SET a = 1 WHERE id = 2", W, F_DML, 0, NK},
    {"UPDATE t SET a = u.a FROM u WHERE t.id = u.id", W, F_DML, 0, NK},
    {"DELETE FROM t WHERE id = 1", W, F_DML, 0, NK},
    {"MERGE INTO t USING u ON t.id = u.id WHEN MATCHED THEN UPDATE SET a = u.a "
     "WHEN NOT MATCHED THEN INSERT VALUES (u.id, u.a)",
     W, F_DML, 0, NK},
    {"WITH x AS (DELETE FROM t RETURNING *) SELECT count(*) FROM x", W, F_DML, 0, NK},
    {"WITH x AS (INSERT INTO t VALUES (1) RETURNING *) INSERT INTO u SELECT * FROM x", W, F_DML, 0,
     NK},
    {"SELECT * FROM t WHERE id = 1", R, F_DML, 0, NK},
    {"SELECT * FROM t FOR UPDATE SKIP LOCKED", W, F_DML | F_LOCK, 0, NK}, /* changes no data */
    {"SELECT now(), random()", R, F_DML, 0, NK},
    {"SHOW search_path", R, F_DML, 0, NK},
    {"EXPLAIN SELECT * FROM t", R, F_DML, 0, NK},
    {"SELECT 1; UPDATE t SET a = 1; DELETE FROM u", W, F_DML, 0, NK},
    {"INSERT INTO t (a, b) VALUES (1, now())", W, F_DML, 0, NK},
};

static const tcase_t not_dml_cases[] = {
    {"TRUNCATE t", W, 0, F_DML, NK},
    {"CREATE TABLE t2 (a int)", W, 0, F_DML, NK},
    {"CREATE TABLE t2 AS SELECT * FROM t", W, 0, F_DML, NK},
    {"ALTER TABLE t ADD COLUMN b int", W, 0, F_DML, NK},
    {"DROP TABLE t", W, 0, F_DML, NK},
    {"COPY t FROM STDIN", W, F_COPY, F_DML, NK},
    {"COPY t TO STDOUT", R, F_COPY, F_DML, NK},
    {"CALL p(1)", W, 0, F_DML, NK},
    {"DO $$ BEGIN PERFORM 1; END $$", W, 0, F_DML, NK},
    {"LOCK TABLE t IN ACCESS EXCLUSIVE MODE", W, 0, F_DML, NK},
    {"VACUUM t", W, 0, F_DML, NK},
    {"NOTIFY ch", W, 0, F_DML, NK},
    {"SELECT * INTO n FROM t", W, 0, F_DML, NK},
    {"SELECT nextval('s')", W, F_SIDE, F_DML, NK},
    {"INSERT INTO t (id) VALUES (nextval('s'))", W, F_SIDE, F_DML, NK},
    {"UPDATE t SET a = setval('s', 1) WHERE id = 1", W, F_SIDE, F_DML, NK},
    {"SELECT set_config('x.y', '1', false)", W, F_SIDE, F_DML, NK},
    {"SELECT pg_advisory_xact_lock(1)", W, F_SIDE, F_DML, NK},
    {"DELETE FROM t WHERE id = mystery()", W, F_UNVER, F_DML, NK}, /* may write anything */
    {"SELECT mystery()", U, F_UNVER, F_DML, NK},
    {"EXPLAIN ANALYZE DELETE FROM t", W, 0, F_DML, NK},
    {"SELECT 1; TRUNCATE t", W, 0, F_DML, NK},
    {"BEGIN; INSERT INTO t VALUES (1); COMMIT", W, F_HAST, F_DML, NK},
    {"SET search_path = a", S, 0, F_DML, NK},
    {"PREPARE p AS INSERT INTO t VALUES (1)", S, 0, F_DML, NK},
    {"EXECUTE p", S, 0, F_DML, NK},
    {"SELECT * FROM pg_temp.x", U, 0, F_DML, NK},
    {"", U, 0, F_DML, NK},
    {"INSERT INTO", U, F_PERR, F_DML, NK},
};

static void test_dml_flag_set_for_reads_and_plain_dml(void)
{
    CHECK_ALL(dml_cases);
}

static void test_dml_flag_clear_for_ddl_utility_and_side_effects(void)
{
    CHECK_ALL(not_dml_cases);
}

static void test_dml_flag_clear_for_volatile_user_function(void)
{
    static const tcase_t cases[] = {
        {"UPDATE t SET a = my_func(a) WHERE id = 1", W, F_VOL | F_USER, F_DML, NK},
        {"SELECT my_func() FROM t", W, F_VOL, F_DML, NK},
        {"UPDATE t SET a = my_stable(a) WHERE id = 1", W, F_DML | F_USER, 0, NK},
        {"SELECT random() FROM t", R, F_DML, F_USER, NK}, /* volatile, but a read */
    };
    px_classify_set_volatility(make_catalog('v'));
    CHECK_ALL(cases);
    px_classify_set_volatility(NULL);
}

/* ---- user functions ------------------------------------------------------------------ */

static void test_user_function_sets_user_func_and_clears_cacheable(void)
{
    static const tcase_t no_catalog[] = {
        {"SELECT mystery(a) FROM t", U, F_USER | F_UNVER, F_CACHE, NK},
        {"SELECT public.lower(a) FROM t", U, F_USER, F_CACHE, NK},
        {"SELECT * FROM app.fetch_rows(1)", U, F_USER, F_CACHE, NK},
        {"CALL p()", W, F_USER, 0, NK},
    };
    static const tcase_t with_catalog[] = {
        {"SELECT my_func() FROM t", R, F_USER | F_REPLICA, F_CACHE, NK},
        {"SELECT my_immutable(a) FROM t WHERE id = 1", R, F_USER, F_CACHE, NK},
        {"SELECT app.lookup(1)", R, F_USER, F_CACHE, NK},
        {"SELECT * FROM t WHERE a = public.my_stable()", R, F_USER, F_CACHE, NK},
        {"SELECT lower(a), my_stable() FROM t", R, F_USER, F_CACHE, NK},
        /* The hint forces caching, as it does for volatile functions. */
        {"/* fastnext:cache ttl=5 */ SELECT my_func() FROM t", R, F_USER | F_CACHE, 0, NK},
        {"/* fastnext:cache */ SELECT my_func() FROM t /* fastnext:nocache */", R, F_USER, F_CACHE,
         NK},
    };
    CHECK_ALL(no_catalog);
    px_classify_set_volatility(make_catalog('s'));
    CHECK_ALL(with_catalog);
    px_classify_set_volatility(NULL);
}

static void test_builtin_functions_are_not_user_funcs(void)
{
    static const tcase_t cases[] = {
        {"SELECT lower(a), count(*), length(b) FROM t GROUP BY 1, 3", R, F_CACHE, F_USER, NK},
        {"SELECT pg_catalog.lower('X')", R, F_CACHE, F_USER, NK},
        {"SELECT now(), random(), pg_backend_pid()", R, 0, F_USER, NK},
        {"SELECT nextval('s')", W, F_SIDE, F_USER, NK},
        {"SELECT extract(year FROM d), trim(both ' ' FROM s), position('a' IN s) FROM t", R,
         F_CACHE, F_USER, NK},
        {"SELECT * FROM generate_series(1, 3)", R, F_CACHE, F_USER, NK},
        {"SELECT coalesce(a, 1), greatest(a, b) FROM t", R, F_CACHE, F_USER, NK},
        {"SELECT 1", R, F_CACHE, F_USER, NK},
    };
    CHECK_ALL(cases);
}

static void test_catalog_pg_catalog_function_is_not_user_func(void)
{
    px_classify_vol_t *v = px_classify_vol_new();
    CU_ASSERT_FATAL(v != NULL);
    CU_ASSERT(px_classify_vol_add(v, "pg_catalog", "sinh", 'i')); /* not in the built-in lists */
    CU_ASSERT(px_classify_vol_add(v, "pg_catalog", "area", 'i'));
    CU_ASSERT(px_classify_vol_add(v, "public", "area", 'i')); /* a user overload of the name */
    CU_ASSERT(px_classify_vol_add(v, NULL, "noschema", 'i'));
    CU_ASSERT(px_classify_vol_add(v, "public", "my_fn", 'i'));
    px_classify_set_volatility(v);
    static const tcase_t cases[] = {
        {"SELECT sinh(x) FROM t", R, F_CACHE, F_USER, NK},
        {"SELECT pg_catalog.sinh(x) FROM t", R, F_CACHE, F_USER, NK},
        /* An unqualified call may resolve to the user's overload. */
        {"SELECT area(x) FROM t", R, F_USER, F_CACHE, NK},
        {"SELECT pg_catalog.area(x) FROM t", R, F_CACHE, F_USER, NK},
        {"SELECT public.area(x) FROM t", R, F_USER, F_CACHE, NK},
        {"SELECT noschema(x) FROM t", R, F_USER, F_CACHE, NK},
        {"SELECT my_fn(x) FROM t", R, F_USER, F_CACHE, NK},
        {"SELECT pg_catalog.my_fn(x) FROM t", R, F_USER, F_CACHE, NK},
        {"SELECT lower(x) FROM t", R, F_CACHE, F_USER, NK}, /* the lists still apply */
    };
    CHECK_ALL(cases);
    px_classify_set_volatility(NULL);
}

/* ---- key predicates ------------------------------------------------------------------- */

/* "rows=N" then, per key, "row:rel.col=value" (value "$n" for a parameter). */
static void keys_str(const px_classify_result_t *r, char *buf, size_t cap)
{
    size_t o = (size_t)snprintf(buf, cap, "rows=%u", r->key_rows);
    for (unsigned i = 0; i < r->n_keys && o < cap; i++) {
        const px_classify_key_t *k = &r->keys[i];
        if (k->is_param)
            o += (size_t)snprintf(buf + o, cap - o, " %u:%s.%s=$%u", k->row,
                                  px_classify_rel(r, k->rel), px_classify_key_col(r, i), k->param);
        else
            o += (size_t)snprintf(buf + o, cap - o, " %u:%s.%s=%lld", k->row,
                                  px_classify_rel(r, k->rel), px_classify_key_col(r, i),
                                  (long long)k->value);
    }
}

/* Structural invariants of the key fields, for any result. */
static bool keys_sane(const px_classify_result_t *r)
{
    if (r->n_keys > PX_CLASSIFY_MAX_KEYS || r->cols_len > PX_CLASSIFY_COLS_BYTES)
        return false;
    if (r->key_rows == 0 && (r->n_keys != 0 || r->cols_len != 0))
        return false;
    for (unsigned i = 0; i < r->n_keys; i++) {
        const px_classify_key_t *k = &r->keys[i];
        if (k->rel >= r->n_rels || k->col_off >= r->cols_len ||
            memchr(r->cols + k->col_off, '\0', r->cols_len - k->col_off) == NULL ||
            (r->key_rows <= 1 && k->row != 0) || (r->key_rows > 1 && k->row >= r->key_rows) ||
            (k->is_param && k->param == 0))
            return false;
    }
    return true;
}

/* Classify @p sql uncached, then twice through the cache (the second a hit),
 * and expect the keys @p want each time. */
static void check_keys(const char *sql, const char *want, const char *file, unsigned line)
{
    px_classify_result_t r[3];
    classify_s(sql, MODE_UNCACHED, &r[0]);
    classify_s(sql, MODE_CACHED, &r[1]);
    classify_s(sql, MODE_CACHED, &r[2]);
    static const char *const how[] = {"uncached", "cached", "cache hit"};
    for (int i = 0; i < 3; i++) {
        char got[1024], msg[1600];
        keys_str(&r[i], got, sizeof got);
        snprintf(msg, sizeof msg, "keys of \"%.300s\" (%s): got [%s], want [%s]", sql, how[i], got,
                 want);
        CU_assertImplementation(strcmp(got, want) == 0 && keys_sane(&r[i]), line, msg, file, "",
                                CU_FALSE);
    }
    if (!(r[0].flags & F_PERR))
        CU_ASSERT(r[2].flags & F_CACHED);
}

#define KEYS(sql, want) check_keys((sql), (want), __FILE__, __LINE__)

static void test_keys_select_one_relation(void)
{
    KEYS("SELECT v FROM kt WHERE id = 1", "rows=1 0:kt.id=1");
    KEYS("SELECT v FROM kt WHERE 42 = id", "rows=1 0:kt.id=42");
    KEYS("SELECT * FROM kt WHERE a = 1 AND b = 2 AND c > 3 AND d = e AND f IS NULL",
         "rows=1 0:kt.a=1 0:kt.b=2");
    KEYS("SELECT * FROM kt WHERE a = 1 AND (b = 2 AND (c = 3))",
         "rows=1 0:kt.a=1 0:kt.b=2 0:kt.c=3");
    KEYS("SELECT * FROM kt WHERE kt.id = 7", "rows=1 0:kt.id=7");
    KEYS("SELECT * FROM s.kt WHERE kt.id = 7", "rows=1 0:s.kt.id=7");
    KEYS("SELECT * FROM kt AS x WHERE x.id = 8 AND y = 9", "rows=1 0:kt.id=8 0:kt.y=9");
    KEYS("SELECT * FROM \"KT\" WHERE \"Id\" = 1 AND ID = 2", "rows=1 0:KT.Id=1 0:KT.id=2");
    KEYS("SELECT count(*), max(v) FROM kt WHERE g = 3 GROUP BY h HAVING count(*) > 1 "
         "ORDER BY 1 DESC LIMIT 10 OFFSET 5",
         "rows=1 0:kt.g=3");
    KEYS("SELECT DISTINCT a FROM kt WHERE id = 4", "rows=1 0:kt.id=4");
    KEYS("SELECT DISTINCT ON (a) a, b FROM kt WHERE id = 4 ORDER BY a, b", "rows=1 0:kt.id=4");
    KEYS("SELECT a, row_number() OVER (ORDER BY b) FROM kt WHERE id = 5", "rows=1 0:kt.id=5");
    KEYS("SELECT * FROM kt", "rows=1");
    KEYS("SELECT * FROM kt WHERE a > 1", "rows=1");
    KEYS("SELECT * FROM kt WHERE id = 1 FOR UPDATE", "rows=1 0:kt.id=1");
    KEYS("TABLE kt", "rows=1");
    /* The same column twice: one name in cols[]. */
    px_classify_result_t r;
    classify_s("SELECT * FROM kt WHERE id = 1 AND id = 2", MODE_UNCACHED, &r);
    CU_ASSERT_EQUAL_FATAL(r.n_keys, 2);
    CU_ASSERT_EQUAL(r.keys[0].col_off, r.keys[1].col_off);
    CU_ASSERT_EQUAL(r.cols_len, 3);
    CU_ASSERT_STRING_EQUAL(px_classify_key_col(&r, 1), "id");
}

static void test_keys_select_not_reported_for_complex_reads(void)
{
    KEYS("SELECT * FROM kt JOIN ku ON kt.id = ku.id WHERE kt.id = 1", "rows=0");
    KEYS("SELECT * FROM kt, ku WHERE kt.id = 1", "rows=0");
    KEYS("SELECT * FROM kt x JOIN kt y ON true WHERE x.id = 1", "rows=0");
    KEYS("SELECT * FROM kt WHERE id = 1 AND a IN (SELECT a FROM ku)", "rows=0");
    KEYS("SELECT * FROM kt WHERE id = 1 AND EXISTS (SELECT 1)", "rows=0");
    KEYS("SELECT (SELECT 1), v FROM kt WHERE id = 1", "rows=0");
    KEYS("SELECT * FROM kt WHERE id = 1 ORDER BY (SELECT 1)", "rows=0");
    KEYS("SELECT * FROM (SELECT * FROM kt) s WHERE id = 1", "rows=0");
    KEYS("WITH c AS (SELECT 1) SELECT * FROM kt WHERE id = 1", "rows=0");
    KEYS("SELECT * FROM kt WHERE id = 1 UNION SELECT * FROM kt WHERE id = 2", "rows=0");
    KEYS("SELECT * FROM generate_series(1, 3) g WHERE g = 1", "rows=0");
    KEYS("SELECT * FROM kt, generate_series(1, 3) g WHERE id = 1", "rows=0");
    KEYS("SELECT * FROM kt TABLESAMPLE SYSTEM (10) WHERE id = 1", "rows=0");
    KEYS("SELECT * INTO kn FROM kt WHERE id = 1", "rows=0");
    KEYS("SELECT 1 WHERE 1 = 1", "rows=0");
    KEYS("VALUES (1)", "rows=0");
    KEYS("SELECT * FROM kt WHERE id = 1; SELECT 2", "rows=0");
    KEYS("EXPLAIN SELECT * FROM kt WHERE id = 1", "rows=0");
    /* FROM kt AS x(a, b) renames kt's columns: "a" is not kt.a. */
    KEYS("SELECT * FROM kt AS x(a, b) WHERE a = 1", "rows=0");
    /* Conjuncts that are not `col = V` give no key; the others still do. */
    KEYS("SELECT * FROM kt WHERE id = 1 OR id = 2", "rows=1");
    KEYS("SELECT * FROM kt WHERE (a = 1 OR b = 2) AND c = 3", "rows=1 0:kt.c=3");
    KEYS("SELECT * FROM kt WHERE NOT (a = 1) AND b = 2", "rows=1 0:kt.b=2");
    KEYS("SELECT * FROM kt WHERE a = 1 + 1 AND b = c AND d = abs(1) AND e IN (1)", "rows=1");
    KEYS("SELECT * FROM kt WHERE a <> 1 AND b IS NOT DISTINCT FROM 2", "rows=1");
    KEYS("SELECT * FROM kt WHERE a OPERATOR(pg_catalog.=) 1", "rows=1");
    /* Qualifiers must name the relation (or its alias, once it has one). */
    KEYS("SELECT * FROM kt WHERE other.id = 1 AND id = 2", "rows=1 0:kt.id=2");
    KEYS("SELECT * FROM kt x WHERE kt.id = 1", "rows=1");
    KEYS("SELECT * FROM s.kt WHERE s.kt.id = 1", "rows=1");
    KEYS("SELECT * FROM kt WHERE kt.* = 1", "rows=1");
}

static void test_keys_update_and_delete(void)
{
    KEYS("UPDATE kt SET v = 1 WHERE id = 5", "rows=1 0:kt.id=5");
    KEYS("UPDATE kt SET v = v + 1 WHERE id = $1 AND k = 2 RETURNING *",
         "rows=1 0:kt.id=$1 0:kt.k=2");
    KEYS("UPDATE kt AS x SET v = 1 WHERE x.id = 3", "rows=1 0:kt.id=3");
    /* Never a key on a column the UPDATE assigns. */
    KEYS("UPDATE kt SET id = 7, v = 1 WHERE id = 5 AND k = 3", "rows=1 0:kt.k=3");
    KEYS("UPDATE kt SET (a, b) = (1, 2) WHERE a = 1 AND b = 2 AND c = 3", "rows=1 0:kt.c=3");
    KEYS("UPDATE kt SET (a, b) = (SELECT 1, 2) WHERE b = 2 AND c = 3", "rows=1 0:kt.c=3");
    KEYS("UPDATE kt SET a[1] = 1 WHERE a = 1 AND c = 3", "rows=1 0:kt.c=3");
    /* Subqueries in WHERE do not change which rows of kt are written. */
    KEYS("UPDATE kt SET v = 1 WHERE id = 5 AND a IN (SELECT a FROM ku WHERE id = 9)",
         "rows=1 0:kt.id=5");
    KEYS("DELETE FROM kt WHERE id = 1", "rows=1 0:kt.id=1");
    KEYS("DELETE FROM s.kt WHERE kt.id = $2::bigint RETURNING v", "rows=1 0:s.kt.id=$2");
    KEYS("DELETE FROM kt WHERE id = 1 AND EXISTS (SELECT 1 FROM ku WHERE ku.id = kt.id)",
         "rows=1 0:kt.id=1");
    KEYS("DELETE FROM kt", "rows=1");
    KEYS("DELETE FROM kt WHERE id = 1 OR id = 2", "rows=1");
    KEYS("DELETE FROM kt WHERE CURRENT OF c", "rows=1");
    /* FROM, USING or WITH: no key information at all. */
    KEYS("UPDATE kt SET v = 1 FROM ku WHERE kt.id = ku.id AND kt.id = 5", "rows=0");
    KEYS("DELETE FROM kt USING ku WHERE kt.id = 1", "rows=0");
    KEYS("WITH q AS (SELECT 1) UPDATE kt SET v = 1 WHERE id = 5", "rows=0");
    KEYS("WITH q AS (SELECT 1) DELETE FROM kt WHERE id = 5", "rows=0");
    KEYS("WITH d AS (DELETE FROM kt WHERE id = 1 RETURNING *) SELECT * FROM d", "rows=0");
    KEYS("MERGE INTO kt USING ku ON kt.id = ku.id WHEN MATCHED THEN DELETE", "rows=0");
    KEYS("UPDATE kt SET v = 1 WHERE id = 5; UPDATE kt SET v = 1 WHERE id = 6", "rows=0");
}

static void test_keys_insert_values(void)
{
    KEYS("INSERT INTO kt (id, v) VALUES (1, 'a')", "rows=1 0:kt.id=1");
    KEYS("INSERT INTO kt (id, v) VALUES (1, 'a'), (-2, DEFAULT), ($1, '7')",
         "rows=3 0:kt.id=1 1:kt.id=-2 2:kt.id=$1 2:kt.v=7");
    KEYS("INSERT INTO kt (id, v) VALUES (now(), 1), (2 + 2, $3::int8) RETURNING id",
         "rows=2 0:kt.v=1 1:kt.v=$3");
    KEYS("INSERT INTO s.kt AS x (id) VALUES (1)", "rows=1 0:s.kt.id=1");
    KEYS("INSERT INTO kt (id, v) VALUES (1, 'a') ON CONFLICT (id) DO NOTHING", "rows=1 0:kt.id=1");
    KEYS("INSERT INTO kt (id, v) VALUES (1, (SELECT max(v) FROM ku))", "rows=1 0:kt.id=1");
    KEYS("INSERT INTO kt (a[1], b) VALUES (1, 2)", "rows=1 0:kt.b=2");
    KEYS("INSERT INTO kt (v) VALUES ('x'), ('y')", "rows=2");
    /* Exactly PX_CLASSIFY_MAX_KEYS keys fit; one more and there is no key information. */
    KEYS("INSERT INTO kt (id, v) VALUES (1,1),(2,2),(3,3),(4,4),(5,5),(6,6),(7,7),(8,8)",
         "rows=8 0:kt.id=1 0:kt.v=1 1:kt.id=2 1:kt.v=2 2:kt.id=3 2:kt.v=3 3:kt.id=4 3:kt.v=4 "
         "4:kt.id=5 4:kt.v=5 5:kt.id=6 5:kt.v=6 6:kt.id=7 6:kt.v=7 7:kt.id=8 7:kt.v=8");
    KEYS("INSERT INTO kt (id, v) VALUES (1,1),(2,2),(3,3),(4,4),(5,5),(6,6),(7,7),(8,8),(9,9)",
         "rows=0");
    KEYS("INSERT INTO kt (id, v) VALUES (1, 'a') ON CONFLICT (id) DO UPDATE SET v = 'b'", "rows=0");
    KEYS("INSERT INTO kt (id) SELECT 1", "rows=0");
    KEYS("INSERT INTO kt (id) SELECT id FROM ku WHERE id = 1", "rows=0");
    KEYS("INSERT INTO kt (id) VALUES (1) UNION VALUES (2)", "rows=0");
    KEYS("INSERT INTO kt VALUES (1)", "rows=0");
    KEYS("INSERT INTO kt DEFAULT VALUES", "rows=0");
    KEYS("WITH x AS (SELECT 1) INSERT INTO kt (id) VALUES (1)", "rows=0");
    KEYS("INSERT INTO kt (id) VALUES (1); INSERT INTO kt (id) VALUES (2)", "rows=0");
}

static void test_keys_values_casts_and_params(void)
{
    KEYS("SELECT * FROM kv WHERE id = $1", "rows=1 0:kv.id=$1");
    KEYS("SELECT * FROM kv WHERE id = $12::int", "rows=1 0:kv.id=$12");
    KEYS("SELECT * FROM kv WHERE id = CAST($2 AS int8)", "rows=1 0:kv.id=$2");
    KEYS("SELECT * FROM kv WHERE id = $1::smallint AND b = $2::integer AND c = $3::bigint "
         "AND d = $4::int2 AND e = $5::int4 AND f = $6::pg_catalog.int8",
         "rows=1 0:kv.id=$1 0:kv.b=$2 0:kv.c=$3 0:kv.d=$4 0:kv.e=$5 0:kv.f=$6");
    KEYS("SELECT * FROM kv WHERE id = '5'", "rows=1 0:kv.id=5");
    KEYS("SELECT * FROM kv WHERE id = '5'::bigint", "rows=1 0:kv.id=5");
    KEYS("SELECT * FROM kv WHERE id = bigint '6'", "rows=1 0:kv.id=6");
    KEYS("SELECT * FROM kv WHERE id = 7::int8", "rows=1 0:kv.id=7");
    KEYS("SELECT * FROM kv WHERE id = '-0012'", "rows=1 0:kv.id=-12");
    KEYS("SELECT * FROM kv WHERE id = E'13'", "rows=1 0:kv.id=13");
    /* Negative integers: the JSON tree loses their value; the text has it. */
    KEYS("SELECT * FROM kv WHERE id = -5", "rows=1 0:kv.id=-5");
    KEYS("SELECT * FROM kv WHERE id=-6", "rows=1 0:kv.id=-6");
    KEYS("SELECT * FROM kv WHERE id = - (-7)", "rows=1 0:kv.id=7");
    KEYS("SELECT * FROM kv WHERE id = -(-(-8))", "rows=1 0:kv.id=-8");
    KEYS("SELECT * FROM kv WHERE id = - /* c */ 9", "rows=1 0:kv.id=-9");
    KEYS("SELECT * FROM kv WHERE id = (-10)::int8", "rows=1 0:kv.id=-10");
    KEYS("SELECT * FROM kv WHERE id = -0", "rows=1 0:kv.id=0");
    KEYS("SELECT * FROM kv WHERE id = (11)", "rows=1 0:kv.id=11");
    /* Not values. */
    KEYS("SELECT * FROM kv WHERE id = -5::int8", "rows=1"); /* -(5::int8): an expression */
    KEYS("SELECT * FROM kv WHERE id = 5.0", "rows=1");
    KEYS("SELECT * FROM kv WHERE id = 1e3", "rows=1");
    KEYS("SELECT * FROM kv WHERE id = '5 '", "rows=1");
    KEYS("SELECT * FROM kv WHERE id = ' 5'", "rows=1");
    KEYS("SELECT * FROM kv WHERE id = '+5'", "rows=1");
    KEYS("SELECT * FROM kv WHERE id = '5.0'", "rows=1");
    KEYS("SELECT * FROM kv WHERE id = ''", "rows=1");
    KEYS("SELECT * FROM kv WHERE id = '-'", "rows=1");
    KEYS("SELECT * FROM kv WHERE id = 'abc'", "rows=1");
    KEYS("SELECT * FROM kv WHERE id = U&'5'", "rows=1");
    KEYS("SELECT * FROM kv WHERE id = +5", "rows=1");
    KEYS("SELECT * FROM kv WHERE id = 5::numeric", "rows=1");
    KEYS("SELECT * FROM kv WHERE id = '5'::text", "rows=1");
    KEYS("SELECT * FROM kv WHERE id = $1::int[]", "rows=1");
    KEYS("SELECT * FROM kv WHERE id = $1::numeric(10)", "rows=1");
    KEYS("SELECT * FROM kv WHERE id = $1::myschema.int8", "rows=1");
    KEYS("SELECT * FROM kv WHERE id = $1::int::int8", "rows=1");
    KEYS("SELECT * FROM kv WHERE id = NULL AND b = true AND c = B'101' AND d = X'1F'", "rows=1");
    KEYS("SELECT * FROM kv WHERE id = $1[1]", "rows=1");
}

static void test_keys_int64_bounds(void)
{
    KEYS("SELECT * FROM kb WHERE id = 2147483647", "rows=1 0:kb.id=2147483647");
    KEYS("SELECT * FROM kb WHERE id = 2147483648", "rows=1 0:kb.id=2147483648");
    KEYS("SELECT * FROM kb WHERE id = 9000000000", "rows=1 0:kb.id=9000000000");
    KEYS("SELECT * FROM kb WHERE id = 9223372036854775807", "rows=1 0:kb.id=9223372036854775807");
    KEYS("SELECT * FROM kb WHERE id = 9223372036854775808", "rows=1");
    KEYS("SELECT * FROM kb WHERE id = 99999999999999999999999", "rows=1");
    KEYS("SELECT * FROM kb WHERE id = -2147483648", "rows=1 0:kb.id=-2147483648");
    KEYS("SELECT * FROM kb WHERE id = -9223372036854775808", "rows=1 0:kb.id=-9223372036854775808");
    KEYS("SELECT * FROM kb WHERE id = -9223372036854775809", "rows=1");
    KEYS("SELECT * FROM kb WHERE id = '9223372036854775807'", "rows=1 0:kb.id=9223372036854775807");
    KEYS("SELECT * FROM kb WHERE id = '9223372036854775808'", "rows=1");
    KEYS("SELECT * FROM kb WHERE id = '-9223372036854775808'",
         "rows=1 0:kb.id=-9223372036854775808");
    KEYS("SELECT * FROM kb WHERE id = '-9223372036854775809'", "rows=1");
    KEYS("SELECT * FROM kb WHERE id = 00000000000000000000042", "rows=1 0:kb.id=42");
    KEYS("INSERT INTO kb (id, v) VALUES (9223372036854775808, 1)", "rows=1 0:kb.v=1");
}

/* Texts differing only in literal values share one cached verdict; the key
 * values must still be those of the text at hand. */
static void test_keys_literal_values_refresh_on_cache_hits(void)
{
    px_classify_result_t r;
    classify_s("SELECT v FROM kr WHERE id = 1", MODE_CACHED, &r);
    CU_ASSERT(!(r.flags & F_CACHED));
    CU_ASSERT_EQUAL_FATAL(r.n_keys, 1);
    CU_ASSERT_EQUAL(r.keys[0].value, 1);
    classify_s("SELECT v FROM kr WHERE id = 2", MODE_CACHED, &r);
    CU_ASSERT(r.flags & F_CACHED);
    CU_ASSERT_EQUAL_FATAL(r.n_keys, 1);
    CU_ASSERT_EQUAL(r.keys[0].value, 2);
    CU_ASSERT(!r.keys[0].is_param);
    CU_ASSERT_STRING_EQUAL(px_classify_key_col(&r, 0), "id");
    classify_s("SELECT  v FROM kr /* x */ WHERE id = 9000000000", MODE_CACHED, &r);
    CU_ASSERT(r.flags & F_CACHED);
    CU_ASSERT_EQUAL_FATAL(r.n_keys, 1);
    CU_ASSERT_EQUAL(r.keys[0].value, 9000000000LL);
    /* Out of range in this text: no key for it; the next text has one again. */
    classify_s("SELECT v FROM kr WHERE id = 9223372036854775808", MODE_CACHED, &r);
    CU_ASSERT(r.flags & F_CACHED);
    CU_ASSERT_EQUAL(r.key_rows, 1);
    CU_ASSERT_EQUAL(r.n_keys, 0);
    classify_s("SELECT v FROM kr WHERE id = 3", MODE_CACHED, &r);
    CU_ASSERT(r.flags & F_CACHED);
    CU_ASSERT_EQUAL_FATAL(r.n_keys, 1);
    CU_ASSERT_EQUAL(r.keys[0].value, 3);

    /* Negative literals, and several literals of which only some are keys. */
    classify_s("SELECT v FROM kr WHERE a = -5 AND b > 10 AND c = 20", MODE_CACHED, &r);
    CU_ASSERT_EQUAL_FATAL(r.n_keys, 2);
    CU_ASSERT_EQUAL(r.keys[0].value, -5);
    CU_ASSERT_EQUAL(r.keys[1].value, 20);
    classify_s("SELECT v FROM kr WHERE a = -6 AND b > 11 AND c = 21", MODE_CACHED, &r);
    CU_ASSERT(r.flags & F_CACHED);
    CU_ASSERT_EQUAL_FATAL(r.n_keys, 2);
    CU_ASSERT_EQUAL(r.keys[0].value, -6);
    CU_ASSERT_EQUAL(r.keys[1].value, 21);

    /* String literals. */
    classify_s("SELECT v FROM kr WHERE id = '7'", MODE_CACHED, &r);
    CU_ASSERT_EQUAL_FATAL(r.n_keys, 1);
    CU_ASSERT_EQUAL(r.keys[0].value, 7);
    classify_s("SELECT v FROM kr WHERE id = '8'", MODE_CACHED, &r);
    CU_ASSERT(r.flags & F_CACHED);
    CU_ASSERT_EQUAL_FATAL(r.n_keys, 1);
    CU_ASSERT_EQUAL(r.keys[0].value, 8);
    classify_s("SELECT v FROM kr WHERE id = 'eight'", MODE_CACHED, &r);
    CU_ASSERT(r.flags & F_CACHED);
    CU_ASSERT_EQUAL(r.n_keys, 0);
    CU_ASSERT_EQUAL(r.key_rows, 1);
    classify_s("SELECT v FROM kr WHERE id = '-9'", MODE_CACHED, &r);
    CU_ASSERT(r.flags & F_CACHED);
    CU_ASSERT_EQUAL_FATAL(r.n_keys, 1);
    CU_ASSERT_EQUAL(r.keys[0].value, -9);
    /* The first text of a shape may be the one without a key. */
    classify_s("SELECT v FROM kr WHERE id = 'x'::int8", MODE_CACHED, &r);
    CU_ASSERT(!(r.flags & F_CACHED));
    CU_ASSERT_EQUAL(r.n_keys, 0);
    classify_s("SELECT v FROM kr WHERE id = '10'::int8", MODE_CACHED, &r);
    CU_ASSERT(r.flags & F_CACHED);
    CU_ASSERT_EQUAL_FATAL(r.n_keys, 1);
    CU_ASSERT_EQUAL(r.keys[0].value, 10);

    /* INSERT rows. */
    classify_s("INSERT INTO kr (id, v) VALUES (-1, 'a'), (2, '3')", MODE_CACHED, &r);
    CU_ASSERT_EQUAL(r.key_rows, 2);
    CU_ASSERT_EQUAL_FATAL(r.n_keys, 3);
    classify_s("INSERT INTO kr (id, v) VALUES (-4, '5'), (6, 'b')", MODE_CACHED, &r);
    CU_ASSERT(r.flags & F_CACHED);
    CU_ASSERT_EQUAL(r.key_rows, 2);
    CU_ASSERT_EQUAL_FATAL(r.n_keys, 3);
    CU_ASSERT(r.keys[0].row == 0 && r.keys[0].value == -4);
    CU_ASSERT(r.keys[1].row == 0 && r.keys[1].value == 5);
    CU_ASSERT_STRING_EQUAL(px_classify_key_col(&r, 1), "v");
    CU_ASSERT(r.keys[2].row == 1 && r.keys[2].value == 6);

    /* UPDATE and DELETE, parameters mixed in. */
    classify_s("UPDATE kr SET v = 'x' WHERE id = 100 AND t = $1", MODE_CACHED, &r);
    classify_s("UPDATE kr SET v = 'y' WHERE id = 200 AND t = $1", MODE_CACHED, &r);
    CU_ASSERT(r.flags & F_CACHED);
    CU_ASSERT_EQUAL_FATAL(r.n_keys, 2);
    CU_ASSERT_EQUAL(r.keys[0].value, 200);
    CU_ASSERT(r.keys[1].is_param && r.keys[1].param == 1);
    classify_s("DELETE FROM kr WHERE id = 300", MODE_CACHED, &r);
    classify_s("DELETE FROM kr WHERE id = 301", MODE_CACHED, &r);
    CU_ASSERT(r.flags & F_CACHED);
    CU_ASSERT_EQUAL_FATAL(r.n_keys, 1);
    CU_ASSERT_EQUAL(r.keys[0].value, 301);
}

/* Literal positions are kept for the first 256 literals of a text only. */
static void test_keys_literal_after_many_others_gives_no_key(void)
{
    char sql[4096];
    for (int before = 254; before <= 256; before++) {
        int n = snprintf(sql, sizeof sql, "SELECT * FROM km WHERE a IN (0");
        for (int i = 1; i < before; i++)
            n += snprintf(sql + n, sizeof sql - (size_t)n, ",%d", i);
        n += snprintf(sql + n, sizeof sql - (size_t)n, ") AND id = 77 AND k = $1");
        px_classify_result_t u, c;
        classify_n(sql, (size_t)n, MODE_UNCACHED, &u);
        classify_n(sql, (size_t)n, MODE_CACHED, &c);
        CU_ASSERT_EQUAL(u.key_rows, 1);
        CU_ASSERT(keys_sane(&u) && keys_sane(&c));
        CU_ASSERT_EQUAL(u.n_keys, c.n_keys);
        /* the 77 is literal number before + 1 */
        CU_ASSERT_EQUAL(u.n_keys, before < 256 ? 2 : 1);
        CU_ASSERT(u.keys[u.n_keys - 1].is_param);
        if (before < 256)
            CU_ASSERT_EQUAL(u.keys[0].value, 77);
    }
}

static void test_keys_column_names_that_do_not_fit(void)
{
    /* Identifiers are at most 63 bytes: four such names fill cols[256]
     * exactly, a fifth does not fit and there is no key information. */
    char sql[2048], col[63];
    memset(col, 'c', sizeof col);
    int n = snprintf(sql, sizeof sql, "SELECT * FROM kc WHERE ");
    px_classify_result_t r;
    for (int i = 1; i <= 5; i++) {
        n += snprintf(sql + n, sizeof sql - (size_t)n, "%s%.62s%d = %d", i > 1 ? " AND " : "", col,
                      i, i);
        classify_n(sql, (size_t)n, MODE_UNCACHED, &r);
        CU_ASSERT(keys_sane(&r));
        CU_ASSERT_EQUAL(r.key_rows, i <= 4 ? 1 : 0);
        CU_ASSERT_EQUAL(r.n_keys, i <= 4 ? i : 0);
        CU_ASSERT_EQUAL(r.cols_len, i <= 4 ? 64 * i : 0);
    }
}

/* Many shapes, each through the parser and through the cache: same keys. */
static void test_keys_same_from_cache_as_from_parser(void)
{
    static const char *const texts[] = {
        "SELECT * FROM kx WHERE id = 1 AND b = '2' AND c = -3 AND d = $1",
        "SELECT * FROM kx WHERE id = -(4) AND e = '-5'::int8",
        "UPDATE kx SET a = 1, b = '2' WHERE id = 3 AND c = -4",
        "DELETE FROM kx WHERE id = '5' AND k = $2::int",
        "INSERT INTO kx (a, b, c) VALUES (1, -2, '3'), ($1, 'x', 4.5)",
        "SELECT * FROM kx WHERE id = 9223372036854775808 AND k = 1",
    };
    for (size_t i = 0; i < N_OF(texts); i++) {
        px_classify_result_t u, c1, c2;
        classify_s(texts[i], MODE_UNCACHED, &u);
        classify_s(texts[i], MODE_CACHED, &c1);
        classify_s(texts[i], MODE_CACHED, &c2);
        char a[1024], b[1024], c[1024];
        keys_str(&u, a, sizeof a);
        keys_str(&c1, b, sizeof b);
        keys_str(&c2, c, sizeof c);
        CU_ASSERT_STRING_EQUAL(a, b);
        CU_ASSERT_STRING_EQUAL(a, c);
        CU_ASSERT(c2.flags & F_CACHED);
        CU_ASSERT(u.key_rows > 0);
    }
}

/* ---- bounds -------------------------------------------------------------------------- */

static void test_every_prefix_and_suffix_stays_in_bounds(void)
{
    const tcase_t *tables[] = {read_cases,    write_cases,   txn_cases,
                               session_cases, unknown_cases, hint_cases};
    const size_t sizes[] = {N_OF(read_cases),    N_OF(write_cases),   N_OF(txn_cases),
                            N_OF(session_cases), N_OF(unknown_cases), N_OF(hint_cases)};
    px_classify_result_t r;
    for (size_t t = 0; t < N_OF(tables); t++) {
        for (size_t i = 0; i < sizes[t]; i++) {
            const char *sql = tables[t][i].sql;
            size_t n = strlen(sql);
            for (size_t k = 0; k <= n; k++) {
                classify_n(sql, k, MODE_CACHED, &r);
                CU_ASSERT(r.cls <= PX_CLASS_SESSION);
                CU_ASSERT(keys_sane(&r));
                classify_n(sql + k, n - k, MODE_UNCACHED, &r);
                CU_ASSERT(r.rels_len <= PX_CLASSIFY_RELS_BYTES);
                CU_ASSERT(keys_sane(&r));
            }
        }
    }
}

static void test_random_bytes_stay_in_bounds(void)
{
    static const char alphabet[] = "SELECT FROM WHERE 'x' \"y\" $$ $a$ -- /* */ ( ) [ ] ; , . "
                                   "e'\\' U&'x' b'1' 1.5e3 $1 :: + - * / < > = \n\t";
    uint64_t s = 0x9e3779b97f4a7c15ull;
    char buf[512];
    px_classify_result_t r;
    for (int iter = 0; iter < 3000; iter++) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        size_t n = s % sizeof buf;
        for (size_t i = 0; i < n; i++) {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            buf[i] = (iter & 1) ? (char)(s & 0xff) : alphabet[s % (sizeof alphabet - 1)];
        }
        classify_n(buf, n, (iter & 2) ? MODE_CACHED : MODE_UNCACHED, &r);
        CU_ASSERT(r.cls <= PX_CLASS_SESSION);
        CU_ASSERT(keys_sane(&r));
        if (r.cls == R)
            CU_ASSERT(!(r.flags & (F_PERR | F_COMPLEX)));
    }
}

static char *repeat3(const char *head, const char *mid, int n, const char *mid2, const char *tail)
{
    size_t len = strlen(head) + (strlen(mid) + strlen(mid2)) * (size_t)n + strlen(tail) + 1;
    char *b = malloc(len);
    CU_ASSERT_FATAL(b != NULL);
    char *p = b;
    p += sprintf(p, "%s", head);
    for (int i = 0; i < n; i++)
        p += sprintf(p, "%s", mid);
    for (int i = 0; i < n; i++)
        p += sprintf(p, "%s", mid2);
    sprintf(p, "%s", tail);
    return b;
}

/* Shapes that overflow libpg_query's stack or bison's, or just take long:
 * rejected before parsing, or by the parser, never a crash. */
static void test_pathological_nesting_is_unknown(void)
{
    struct {
        const char *head, *mid;
        int n;
        const char *mid2, *tail;
    } shapes[] = {
        {"SELECT 1", "+1", 50000, "", ""},
        {"SELECT 1", "::int", 20000, "", ""},
        {"SELECT 1", " || 'a'", 20000, "", ""},
        {"SELECT ", "(", 20000, ")", "1"},
        {"SELECT ", "f(", 5000, ")", "1"},
        {"SELECT ", "CASE WHEN a THEN ", 3000, " END", "1"},
        {"SELECT ", "ARRAY[", 3000, "]", "1"},
        {"SELECT 1", " UNION SELECT 1", 5000, "", ""},
        {"SELECT * FROM a", " JOIN a ON true", 3000, "", ""},
        {"SELECT ", "NOT ", 20000, "", "true"},
        {"SELECT ", "- ", 20000, "", "1"},
        {"SELECT ", "(SELECT ", 3000, ")", "1"},
    };
    for (size_t i = 0; i < N_OF(shapes); i++) {
        size_t hl = strlen(shapes[i].head), ml = strlen(shapes[i].mid), m2 = strlen(shapes[i].mid2),
               tl = strlen(shapes[i].tail);
        size_t l = hl + (ml + m2) * (size_t)shapes[i].n + tl;
        char *sql = malloc(l + 1);
        CU_ASSERT_FATAL(sql != NULL);
        char *p = sql;
        memcpy(p, shapes[i].head, hl);
        p += hl;
        for (int k = 0; k < shapes[i].n; k++, p += ml)
            memcpy(p, shapes[i].mid, ml);
        memcpy(p, shapes[i].tail, tl); /* between the opening and the closing halves */
        p += tl;
        for (int k = 0; k < shapes[i].n; k++, p += m2)
            memcpy(p, shapes[i].mid2, m2);
        *p = '\0';
        px_classify_result_t r;
        classify_n(sql, l, MODE_CACHED, &r);
        char msg[160];
        snprintf(msg, sizeof msg, "shape %zu (%.40s...) -> %s", i, sql, px_class_to_str(r.cls));
        CU_assertImplementation(r.cls == U && (r.flags & (F_COMPLEX | F_PERR)), __LINE__, msg,
                                __FILE__, "", CU_FALSE);
        free(sql);
    }
}

static void test_moderate_nesting_still_parses(void)
{
    char *sql = repeat3("SELECT 1", "+1", 200, "", "");
    px_classify_result_t r;
    classify_s(sql, MODE_CACHED, &r);
    CU_ASSERT_EQUAL(r.cls, R);
    free(sql);
    sql = repeat3("SELECT ", "(", 100, ")", "");
    size_t l = strlen(sql);
    /* "SELECT (((...)))": put a 1 in the middle */
    char *b = malloc(l + 2);
    CU_ASSERT_FATAL(b != NULL);
    memcpy(b, sql, 7 + 100);
    b[107] = '1';
    memcpy(b + 108, sql + 107, l - 107 + 1);
    classify_s(b, MODE_CACHED, &r);
    CU_ASSERT_EQUAL(r.cls, R);
    free(b);
    free(sql);
    /* A long but flat statement: a big IN list. */
    size_t cap = 200000;
    char *in = malloc(cap);
    CU_ASSERT_FATAL(in != NULL);
    int n = snprintf(in, cap, "SELECT * FROM t WHERE id IN (0");
    for (int i = 1; i < 5000; i++)
        n += snprintf(in + n, cap - (size_t)n, ",%d", i);
    n += snprintf(in + n, cap - (size_t)n, ")");
    classify_n(in, (size_t)n, MODE_CACHED, &r);
    CU_ASSERT_EQUAL(r.cls, R);
    free(in);
}

static void test_max_text_limit(void)
{
    px_classify_config_t cfg, def;
    px_classify_config_defaults(&def);
    size_t n = def.max_text + 1;
    char *big = malloc(n);
    CU_ASSERT_FATAL(big != NULL);
    memset(big, ' ', n);
    memcpy(big, "SELECT 1", 8);
    px_classify_result_t r;
    classify_n(big, n, MODE_CACHED, &r);
    CU_ASSERT_EQUAL(r.cls, U);
    CU_ASSERT(r.flags & F_COMPLEX);
    classify_n(big, n - 1, MODE_CACHED, &r);
    CU_ASSERT_EQUAL(r.cls, R);
    cfg = def;
    cfg.max_text = 16;
    px_classify_configure(&cfg);
    classify_s("SELECT 1 FROM a_long_table_name", MODE_CACHED, &r);
    CU_ASSERT_EQUAL(r.cls, U);
    CU_ASSERT(r.flags & F_COMPLEX);
    px_classify_configure(&def);
    classify_s("SELECT 1 FROM a_long_table_name", MODE_CACHED, &r);
    CU_ASSERT_EQUAL(r.cls, R);
    free(big);
}

/* ---- runner ---------------------------------------------------------------------------- */

typedef struct {
    const char *name;
    void (*fn)(void);
} test_entry_t;

#define TE(fn)                                                                                     \
    {                                                                                              \
#fn, fn                                                                                    \
    }

static const test_entry_t class_tests[] = {
    TE(test_read_cases),
    TE(test_write_cases),
    TE(test_txn_cases),
    TE(test_session_cases),
    TE(test_unknown_cases),
    TE(test_statement_counts),
    TE(test_nul_byte_is_unknown),
    TE(test_null_pointer_zero_length),
    TE(test_to_str),
};

static const test_entry_t function_tests[] = {
    TE(test_volatile_user_function_goes_to_primary),
    TE(test_stable_user_function_is_read_and_republish_invalidates),
    TE(test_volatility_table_api),
};

static const test_entry_t rel_hint_tests[] = {
    TE(test_relations),
    TE(test_hint_cases),
    TE(test_hint_ttl),
    TE(test_hints_apply_to_cached_verdicts),
};

static const test_entry_t cache_tests[] = {
    TE(test_cache_hit_same_verdict),
    TE(test_cache_normalizes_literals_whitespace_and_comments),
    TE(test_uncached_never_hits),
    TE(test_small_cache_evicts),
    TE(test_byte_budget_bounds_the_cache),
    TE(test_cache_disabled),
    TE(test_threads_classify_concurrently),
};

static const test_entry_t dml_user_func_tests[] = {
    TE(test_dml_flag_set_for_reads_and_plain_dml),
    TE(test_dml_flag_clear_for_ddl_utility_and_side_effects),
    TE(test_dml_flag_clear_for_volatile_user_function),
    TE(test_user_function_sets_user_func_and_clears_cacheable),
    TE(test_builtin_functions_are_not_user_funcs),
    TE(test_catalog_pg_catalog_function_is_not_user_func),
};

static const test_entry_t key_tests[] = {
    TE(test_keys_select_one_relation),
    TE(test_keys_select_not_reported_for_complex_reads),
    TE(test_keys_update_and_delete),
    TE(test_keys_insert_values),
    TE(test_keys_values_casts_and_params),
    TE(test_keys_int64_bounds),
    TE(test_keys_literal_values_refresh_on_cache_hits),
    TE(test_keys_literal_after_many_others_gives_no_key),
    TE(test_keys_column_names_that_do_not_fit),
    TE(test_keys_same_from_cache_as_from_parser),
};

static const test_entry_t bounds_tests[] = {
    TE(test_every_prefix_and_suffix_stays_in_bounds),
    TE(test_random_bytes_stay_in_bounds),
    TE(test_pathological_nesting_is_unknown),
    TE(test_moderate_nesting_still_parses),
    TE(test_max_text_limit),
};

static bool add_suite(const char *name, const test_entry_t *tests, size_t n)
{
    CU_pSuite s = CU_add_suite(name, suite_init, NULL);
    if (s == NULL)
        return false;
    for (size_t i = 0; i < n; i++)
        if (CU_add_test(s, tests[i].name, tests[i].fn) == NULL)
            return false;
    return true;
}

#define ADD_SUITE(name, arr) add_suite(name, arr, N_OF(arr))

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    if (!ADD_SUITE("classify/classes", class_tests) ||
        !ADD_SUITE("classify/functions", function_tests) ||
        !ADD_SUITE("classify/relations_hints", rel_hint_tests) ||
        !ADD_SUITE("classify/cache", cache_tests) ||
        !ADD_SUITE("classify/dml_user_func", dml_user_func_tests) ||
        !ADD_SUITE("classify/keys", key_tests) || !ADD_SUITE("classify/bounds", bounds_tests)) {
        CU_cleanup_registry();
        return 2;
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
    printf("table cases checked: %u\n", g_cases_checked);
    CU_cleanup_registry();
    px_classify_set_volatility(NULL);
    px_classify_thread_exit();
    return failed == 0 ? 0 : 1;
}
