/*
 * Read/write routing (SPEC §4). When a client starts a transaction the
 * router looks at what it has sent so far, up to the end of the first unit
 * (a Query, or extended-query messages up to Sync), and picks the pool:
 * a read-only unit in autocommit (or a BEGIN READ ONLY transaction) may go
 * to a usable replica, everything else goes to the primary.
 *
 * A unit routed to a replica ends there: the client's next unit is routed
 * anew once the connection is back in its pool, so a write pipelined behind
 * a read never reaches a replica. Units whose end has not arrived yet, and
 * anything the classifier cannot vouch for, go to the primary.
 *
 * Read-your-writes: when a transaction that may have written ends on the
 * primary, the client is fenced: its reads stay on the primary until a
 * health round that started after the commit has seen the primary's WAL
 * position, and then go only to replicas that have replayed past it. While
 * the primary does not answer there is no position to wait for: once the
 * prober has seen it down, fenced reads go to the replicas, the only members
 * left to read from.
 *
 * A client connection also starts with the newest fence of its database: an
 * application that writes on one connection and then opens another (psql's
 * \c, a pool growing, a worker process forking) reads what it wrote. Only
 * the first pick takes it, so long-lived connections keep reading from
 * replicas while others write.
 */
#include <string.h>

#include "px.h"
#include "px_classify.h"
#include "px_health.h"
#include "sqlscan.h"

/* What one SQL text allows. */
typedef enum {
    TEXT_PRIMARY = 0,  /* may write, or not known to be read-only */
    TEXT_PRIMARY_READ, /* read-only, for the primary (hint, standby-sensitive): no fence */
    TEXT_REPLICA,      /* may run on a replica */
    TEXT_REPLICA_HINT, /* hinted to a replica: also while the client is fenced */
} text_verdict_t;

/* Classify one SQL text, with *read_only_txn set for BEGIN/START
 * TRANSACTION ... READ ONLY (not SERIALIZABLE, which hot standbys refuse). */
static text_verdict_t text_verdict(const uint8_t *sql, size_t n, bool *read_only_txn)
{
    px_classify_result_t r;
    px_classify((const char *)sql, n, &r);
    if (r.cls == PX_CLASS_TXN && r.txn == PX_TXN_BEGIN && (r.flags & PX_CLS_F_READ_ONLY) &&
        r.n_stmts == 1 && !px_sqlscan_mentions((const char *)sql, n, "serializable")) {
        *read_only_txn = true;
        return TEXT_REPLICA;
    }
    if (r.flags & (PX_CLS_F_PIN | PX_CLS_F_HAS_TXN | PX_CLS_F_HAS_SESSION))
        return TEXT_PRIMARY;
    if (r.flags & PX_CLS_F_REPLICA_OK)
        return (r.flags & PX_CLS_F_HINT_REPLICA) ? TEXT_REPLICA_HINT : TEXT_REPLICA;
    if (r.cls == PX_CLASS_READ && (r.flags & (PX_CLS_F_HINT_PRIMARY | PX_CLS_F_STANDBY)))
        return TEXT_PRIMARY_READ;
    return TEXT_PRIMARY;
}

/* The lesser of two verdicts: a unit goes where its most demanding text may. */
static text_verdict_t text_min(text_verdict_t a, text_verdict_t b)
{
    return a < b ? a : b;
}

/* Look at the buffered unit starting at the client's read position: what its
 * texts allow together, with *read_only_txn set when it opens a read-only
 * transaction. */
static text_verdict_t classify_unit(px_client_t *c, const px_config_t *cfg, bool *read_only_txn)
{
    px_iobuf_t *in = c->io.in;
    const uint8_t *p = in->data + in->rpos, *end = in->data + in->wpos;
    bool any = false;
    text_verdict_t v = TEXT_REPLICA_HINT;
    *read_only_txn = false;
    while (p < end) {
        px_msg_hdr_t hdr;
        px_span_t body;
        size_t used;
        if (px_codec_read_msg(p, (size_t)(end - p), cfg->max_message_size, &hdr, &body, &used) !=
            PX_CODEC_OK)
            return TEXT_PRIMARY; /* the unit has not fully arrived */
        p += used;
        switch (hdr.type) {
        case 'Q': {
            if (any)
                return TEXT_PRIMARY;
            px_span_t sql;
            if (!px_codec_parse_query(body, &sql))
                return TEXT_PRIMARY;
            return text_verdict(sql.p, sql.n, read_only_txn);
        }
        case 'P': {
            px_span_t stmt, sql;
            int np;
            bool rot = false;
            if (!px_codec_parse_parse(body, &stmt, &sql, &np))
                return TEXT_PRIMARY;
            v = text_min(v, text_verdict(sql.p, sql.n, &rot));
            if (v == TEXT_PRIMARY)
                return v;
            if (rot) {
                /* BEGIN READ ONLY through the extended protocol (psycopg's
                 * read_only): the whole transaction may run on a replica */
                if (any)
                    return TEXT_PRIMARY;
                *read_only_txn = true;
            }
            break;
        }
        case 'B': {
            px_span_t portal, stmt;
            if (!px_codec_parse_bind_names(body, &portal, &stmt))
                return TEXT_PRIMARY;
            if (stmt.n > 0 || (!any && c->unnamed)) {
                /* a named statement, or the unnamed one parsed in an earlier
                 * unit (lib/pq), which the session parses again where it runs */
                const px_stmt_t *st = stmt.n > 0
                                          ? px_stmt_map_get(&c->stmts, (const char *)stmt.p, stmt.n)
                                          : c->unnamed;
                bool rot = false;
                const uint8_t *q = st ? st->rest : NULL;
                const uint8_t *z = q ? memchr(q, 0, st->rest_len) : NULL;
                if (!z)
                    return TEXT_PRIMARY;
                v = text_min(v, text_verdict(q, (size_t)(z - q), &rot));
                if (v == TEXT_PRIMARY || rot)
                    return TEXT_PRIMARY;
            } else if (!any) {
                return TEXT_PRIMARY; /* an unnamed statement parsed earlier: unknown */
            }
            break;
        }
        case 'D':
        case 'E':
            break;
        case 'H':
            /* Parse/Describe then Flush (asyncpg's prepare): the client waits
             * for the description before it binds the same statement. What
             * follows until Sync stays on this member; a write there would be
             * refused by the replica (read-only), never applied. */
            return any ? v : TEXT_PRIMARY;
        case 'C': {
            /* closing a statement is bookkeeping; closing a portal is harmless */
            break;
        }
        case 'S':
            return any ? v : TEXT_PRIMARY;
        default:
            return TEXT_PRIMARY;
        }
        any = true;
    }
    return TEXT_PRIMARY;
}

/* Per database (by hash of its name; a collision only fences more), the
 * health generation of the newest write commit through this instance. */
#define DB_FENCE_SLOTS 64
static _Atomic uint64_t g_db_fence[DB_FENCE_SLOTS];

static _Atomic uint64_t *db_fence(const char *database)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const char *p = database ? database : ""; *p; p++)
        h = (h ^ (uint8_t)*p) * 16777619u;
    return &g_db_fence[h % DB_FENCE_SLOTS];
}

/* A fence lifts only when a health round has seen the replicas catch up, so
 * while one is up the prober is asked for its next round early (at most one
 * request per round, from all workers together): fences last a few tenths
 * of a second, not the prober's whole period. */
static _Atomic uint64_t g_round_asked; /* generation + 1 the last request was made in */

static void ask_round(void)
{
    uint64_t mark = px_health_generation() + 1;
    if (atomic_load_explicit(&g_round_asked, memory_order_relaxed) != mark &&
        atomic_exchange_explicit(&g_round_asked, mark, memory_order_relaxed) != mark)
        px_health_poke();
}

/* Whether replica @p i has replayed what this client has committed. */
static bool replica_caught_up(px_client_t *c, int i)
{
    if (!c->rw_fence_gen || !px_health_primary_up())
        return true; /* no write to wait for, or no primary left to read from */
    if (!c->rw_need_lsn) {
        /* a round that started after the commit must have seen the primary */
        if (px_health_generation() < c->rw_fence_gen + 2) {
            ask_round();
            return false;
        }
        c->rw_need_lsn = px_health_member_lsn(0);
        if (!c->rw_need_lsn)
            return false;
    }
    uint64_t lsn = px_health_member_lsn(1 + i);
    if (lsn != 0 && lsn >= c->rw_need_lsn)
        return true;
    ask_round();
    return false;
}

px_pool_t *px_route_pick(px_client_t *c, px_route_verdict_t *verdict)
{
    px_worker_t *w = c->io.w;
    px_config_t *cfg = px_worker_cfg(w);
    *verdict = PX_ROUTE_PRIMARY;
    if (cfg->n_replicas == 0 || cfg->pool_mode != PX_POOL_MODE_TRANSACTION || c->pinned ||
        c->tx_status != 'I' || !c->io.in)
        return c->pool;
    bool read_only_txn;
    text_verdict_t tv = classify_unit(c, cfg, &read_only_txn);
    if (tv == TEXT_PRIMARY)
        return c->pool;
    if (tv == TEXT_PRIMARY_READ) {
        /* read-only: it writes nothing to fence */
        *verdict = PX_ROUTE_PRIMARY_FALLBACK;
        return c->pool;
    }
    *verdict = read_only_txn ? PX_ROUTE_REPLICA_TXN : PX_ROUTE_REPLICA;
    /* an explicit replica hint reads from a replica even right after a write */
    bool fenced = tv != TEXT_REPLICA_HINT;
    if (!c->rw_inherited) {
        c->rw_inherited = true;
        uint64_t gen = atomic_load_explicit(db_fence(c->database), memory_order_acquire);
        if (gen > c->rw_fence_gen) {
            c->rw_fence_gen = gen;
            c->rw_need_lsn = 0;
        }
    }
    if (c->retried) {
        /* a read a replica failed: the primary is the member least likely
         * to fail it again, and is never behind */
        c->avoid_replica = -1;
        *verdict = PX_ROUTE_PRIMARY_FALLBACK;
        return c->pool;
    }
    uint32_t mask = px_health_usable_mask();
    px_pool_t *best = NULL;
    int best_load = 0;
    int avoid = c->avoid_replica;
    c->avoid_replica = -1;
    /* ties go round, so equal replicas share the reads */
    int n = cfg->n_replicas < 32 ? cfg->n_replicas : 32;
    unsigned start = n > 0 ? w->route_rr++ % (unsigned)n : 0;
    for (int k = 0; k < n; k++) {
        int i = (int)((start + (unsigned)k) % (unsigned)n);
        if (!(mask & (1u << i)) || (fenced && !replica_caught_up(c, i)) || i == avoid)
            continue;
        px_pool_t *p = px_pool_get(w, c->database, c->user, cfg->replicas[i].host,
                                   cfg->replicas[i].port, false);
        if (!p)
            continue;
        /* least busy: connections in use or being made for this worker's
         * clients and clients waiting (open but idle connections are free) */
        int load = atomic_load(&p->n_active) + atomic_load(&p->n_pending) + p->n_waiting;
        if (!best || load < best_load) {
            best = p;
            best_load = load;
        }
    }
    if (!best) {
        *verdict = PX_ROUTE_PRIMARY_FALLBACK;
        return c->pool;
    }
    if (!best->creds.kind || best->creds.kind != c->pool->creds.kind)
        best->creds = c->pool->creds;
    return best;
}

void px_route_done(px_client_t *c, px_pool_t *pool, px_route_verdict_t verdict)
{
    /* a transaction on the primary that may have written fences the client */
    if (pool->is_primary && verdict == PX_ROUTE_PRIMARY && px_worker_cfg(c->io.w)->n_replicas > 0) {
        uint64_t gen = px_health_generation();
        c->rw_fence_gen = gen;
        c->rw_need_lsn = 0;
        c->rw_inherited = true;
        _Atomic uint64_t *f = db_fence(c->database);
        uint64_t cur = atomic_load_explicit(f, memory_order_relaxed);
        while (cur < gen && !atomic_compare_exchange_weak_explicit(
                                f, &cur, gen, memory_order_release, memory_order_relaxed))
            ;
        ask_round();
    }
}
