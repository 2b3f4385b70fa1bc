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
 * position, and then go only to replicas that have replayed past it.
 */
#include <string.h>

#include "px.h"
#include "px_classify.h"
#include "px_health.h"
#include "sqlscan.h"

/* Classify one SQL text; true when it may run on a replica, with
 * *read_only_txn set for BEGIN/START TRANSACTION ... READ ONLY (not
 * SERIALIZABLE, which hot standbys refuse). */
static bool text_replica_ok(const uint8_t *sql, size_t n, bool *read_only_txn)
{
    px_classify_result_t r;
    px_classify((const char *)sql, n, &r);
    if (r.cls == PX_CLASS_TXN && r.txn == PX_TXN_BEGIN && (r.flags & PX_CLS_F_READ_ONLY) &&
        r.n_stmts == 1 && !px_sqlscan_mentions((const char *)sql, n, "serializable")) {
        *read_only_txn = true;
        return true;
    }
    return (r.flags & PX_CLS_F_REPLICA_OK) && !(r.flags & PX_CLS_F_PIN) &&
           !(r.flags & PX_CLS_F_HAS_TXN) && !(r.flags & PX_CLS_F_HAS_SESSION);
}

/* Look at the buffered unit starting at the client's read position. */
static px_route_verdict_t classify_unit(px_client_t *c, const px_config_t *cfg)
{
    px_iobuf_t *in = c->io.in;
    const uint8_t *p = in->data + in->rpos, *end = in->data + in->wpos;
    bool any = false, read_only_txn = false;
    while (p < end) {
        px_msg_hdr_t hdr;
        px_span_t body;
        size_t used;
        if (px_codec_read_msg(p, (size_t)(end - p), cfg->max_message_size, &hdr, &body, &used) !=
            PX_CODEC_OK)
            return PX_ROUTE_PRIMARY; /* the unit has not fully arrived */
        p += used;
        switch (hdr.type) {
        case 'Q': {
            if (any)
                return PX_ROUTE_PRIMARY;
            px_span_t sql;
            if (!px_codec_parse_query(body, &sql) || !text_replica_ok(sql.p, sql.n, &read_only_txn))
                return PX_ROUTE_PRIMARY;
            return read_only_txn ? PX_ROUTE_REPLICA_TXN : PX_ROUTE_REPLICA;
        }
        case 'P': {
            px_span_t stmt, sql;
            int np;
            bool rot = false;
            if (!px_codec_parse_parse(body, &stmt, &sql, &np) ||
                !text_replica_ok(sql.p, sql.n, &rot))
                return PX_ROUTE_PRIMARY;
            if (rot) {
                /* BEGIN READ ONLY through the extended protocol (psycopg's
                 * read_only): the whole transaction may run on a replica */
                if (any)
                    return PX_ROUTE_PRIMARY;
                read_only_txn = true;
            }
            break;
        }
        case 'B': {
            px_span_t portal, stmt;
            if (!px_codec_parse_bind_names(body, &portal, &stmt))
                return PX_ROUTE_PRIMARY;
            if (stmt.n > 0) {
                const px_stmt_t *st = px_stmt_map_get(&c->stmts, (const char *)stmt.p, stmt.n);
                bool rot = false;
                const uint8_t *q = st ? st->rest : NULL;
                const uint8_t *z = q ? memchr(q, 0, st->rest_len) : NULL;
                if (!z || !text_replica_ok(q, (size_t)(z - q), &rot) || rot)
                    return PX_ROUTE_PRIMARY;
            } else if (!any) {
                return PX_ROUTE_PRIMARY; /* an unnamed statement parsed earlier: unknown */
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
            if (!any)
                return PX_ROUTE_PRIMARY;
            return read_only_txn ? PX_ROUTE_REPLICA_TXN : PX_ROUTE_REPLICA;
        case 'C': {
            /* closing a statement is bookkeeping; closing a portal is harmless */
            break;
        }
        case 'S':
            if (!any)
                return PX_ROUTE_PRIMARY;
            return read_only_txn ? PX_ROUTE_REPLICA_TXN : PX_ROUTE_REPLICA;
        default:
            return PX_ROUTE_PRIMARY;
        }
        any = true;
    }
    return PX_ROUTE_PRIMARY;
}

/* Whether replica @p i has replayed what this client has committed. */
static bool replica_caught_up(px_client_t *c, int i)
{
    if (!c->rw_fence_gen)
        return true;
    if (!c->rw_need_lsn) {
        /* a round that started after the commit must have seen the primary */
        if (px_health_generation() < c->rw_fence_gen + 2)
            return false;
        c->rw_need_lsn = px_health_member_lsn(0);
        if (!c->rw_need_lsn)
            return false;
    }
    uint64_t lsn = px_health_member_lsn(1 + i);
    return lsn != 0 && lsn >= c->rw_need_lsn;
}

px_pool_t *px_route_pick(px_client_t *c, px_route_verdict_t *verdict)
{
    px_worker_t *w = c->io.w;
    px_config_t *cfg = px_worker_cfg(w);
    *verdict = PX_ROUTE_PRIMARY;
    if (cfg->n_replicas == 0 || cfg->pool_mode != PX_POOL_MODE_TRANSACTION || c->pinned ||
        c->tx_status != 'I' || !c->io.in)
        return c->pool;
    px_route_verdict_t v = classify_unit(c, cfg);
    *verdict = v;
    if (v == PX_ROUTE_PRIMARY)
        return c->pool;
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
        if (!(mask & (1u << i)) || !replica_caught_up(c, i) || i == avoid)
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
    if (pool->is_primary && verdict == PX_ROUTE_PRIMARY) {
        c->rw_fence_gen = px_health_generation();
        c->rw_need_lsn = 0;
    }
}
