/*
 * Admin-side views of worker counters and pools. Nothing here writes worker
 * state: counters are read with relaxed atomic loads and summed; each
 * worker's pool chain is prepend-only and its pools live as long as the
 * process, so walking it from another thread is safe.
 */
#include <stdio.h>
#include <string.h>

#include "px.h"
#include "px_stats.h"

#define LOAD(x) atomic_load_explicit(&(x), memory_order_relaxed)

void px_stats_totals(px_shared_t *sh, px_stats_totals_t *out)
{
    memset(out, 0, sizeof(*out));
    out->workers = sh->n_workers;
    for (int i = 0; i < sh->n_workers; i++) {
        px_stats_t *st = &sh->workers[i].stats;
        out->clients_accepted += LOAD(st->clients_accepted);
        out->clients_active += LOAD(st->clients_active);
        out->clients_rejected += LOAD(st->clients_rejected);
        out->login_failures += LOAD(st->login_failures);
        out->protocol_errors += LOAD(st->protocol_errors);
        out->transactions += LOAD(st->transactions);
        out->queries += LOAD(st->queries);
        out->pool_waits += LOAD(st->pool_waits);
        out->pool_timeouts += LOAD(st->pool_timeouts);
        out->pins += LOAD(st->pins);
        out->servers_opened += LOAD(st->servers_opened);
        out->servers_closed += LOAD(st->servers_closed);
        out->servers_broken += LOAD(st->servers_broken);
        out->cancels_forwarded += LOAD(st->cancels_forwarded);
        out->bytes_client_to_server += LOAD(st->bytes_client_to_server);
        out->bytes_server_to_client += LOAD(st->bytes_server_to_client);
        out->iobufs_in_use += LOAD(st->iobufs_in_use);
    }
}

int px_stats_pools(px_shared_t *sh, px_pool_stats_t *out, int max)
{
    int n = 0;
    pthread_mutex_lock(&sh->lock);
    int size = sh->cfg->db_pool_size, overflow = sh->cfg->db_max_overflow;
    for (px_pool_budget_t *b = sh->budgets; b; b = b->next) {
        const char *database = b->key;
        const char *user = b->key + strlen(b->key) + 1;
        if (n < max) {
            px_pool_stats_t *ps = &out[n];
            memset(ps, 0, sizeof(*ps));
            snprintf(ps->database, sizeof(ps->database), "%s", database);
            snprintf(ps->user, sizeof(ps->user), "%s", user);
            snprintf(ps->backend, sizeof(ps->backend), "%s:%u", b->host, b->port);
            ps->role = b->is_primary ? "primary" : "replica";
            ps->open = LOAD(b->open);
            ps->size = size;
            ps->max_overflow = overflow;
            for (int i = 0; i < sh->n_workers; i++) {
                px_worker_t *w = &sh->workers[i];
                for (px_pool_t *p = atomic_load(&w->pools); p; p = p->next_in_worker) {
                    if (p->budget != b)
                        continue;
                    ps->active += LOAD(p->n_active);
                    ps->idle += LOAD(p->n_idle);
                    ps->pending += LOAD(p->n_pending);
                    ps->waiting += LOAD(p->n_waiting);
                    ps->pinned += LOAD(p->n_pinned);
                }
            }
        }
        n++;
    }
    pthread_mutex_unlock(&sh->lock);
    return n;
}
