/*
 * Pools: per worker, one px_pool_t per (database, user), holding that
 * worker's server connections in lists that match their states (idle,
 * active, pending) and the clients waiting for one, first come first served.
 *
 * The connection limit (DB_POOL_SIZE + DB_MAX_OVERFLOW) is shared by all
 * workers through an atomic budget per (database, user). A worker with
 * waiting clients and no budget sets its bit in `wanted`; a worker that has
 * an idle connection of that pool and nobody waiting for it hands the
 * connection itself over (the socket moves between loops), so the pool
 * behaves as one across workers and no connection is re-opened.
 * Overflow connections open only once a client has waited a while, and close
 * after they have idled a while.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "px.h"

/* A client must wait this long before overflow connections open. */
#define PX_OVERFLOW_DELAY_MS 500
/* A worker's waiter must have waited this much longer than ours to take
 * our connection: keeps connections from ping-ponging between workers. */
#define PX_FAIR_SLACK_MS 200
/* Overflow connections close after idling this long. */
#define PX_OVERFLOW_IDLE_MS 5000

px_pool_t *px_pool_get(px_worker_t *w, const char *database, const char *user, const char *host,
                       uint16_t port, bool is_primary)
{
    for (px_pool_t *p = w->pools; p; p = p->next_in_worker)
        if (p->port == port && strcmp(p->database, database) == 0 && strcmp(p->user, user) == 0 &&
            strcmp(p->host, host) == 0)
            return p;
    px_pool_t *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->w = w;
    p->database = strdup(database);
    p->user = strdup(user);
    p->budget = px_shared_budget(w->shared, database, user, host, port, is_primary);
    if (!p->database || !p->user || !p->budget) {
        free(p->database);
        free(p->user);
        free(p);
        return NULL;
    }
    p->host = p->budget->host;
    p->port = port;
    p->is_primary = is_primary;
    px_list_init(&p->idle);
    px_list_init(&p->active);
    px_list_init(&p->pending);
    px_list_init(&p->waiters);
    px_list_init(&p->welcome_waiters);
    p->next_in_worker = w->pools;
    w->pools = p;
    return p;
}

static bool budget_take(px_pool_t *pool, int limit)
{
    int cur = atomic_load(&pool->budget->open);
    while (cur < limit) {
        if (atomic_compare_exchange_weak(&pool->budget->open, &cur, cur + 1))
            return true;
    }
    return false;
}

/* The client that has waited longest, for a server or for the first login. */
static px_client_t *oldest_waiter(px_pool_t *pool)
{
    px_client_t *a = px_list_empty(&pool->waiters)
                         ? NULL
                         : px_container_of(pool->waiters.next, px_client_t, link);
    px_client_t *b = px_list_empty(&pool->welcome_waiters)
                         ? NULL
                         : px_container_of(pool->welcome_waiters.next, px_client_t, link);
    if (!a)
        return b;
    if (!b)
        return a;
    return a->wait_start <= b->wait_start ? a : b;
}

static void want_budget(px_pool_t *pool, bool want);
static void publish_oldest(px_pool_t *pool);

/* Open connections for waiting clients, within the shared budget. */
static void launch(px_pool_t *pool)
{
    px_worker_t *w = pool->w;
    if (w->stopping || pool->launching)
        return;
    px_config_t *cfg = px_worker_cfg(w);
    int want = pool->n_waiting + (px_list_empty(&pool->welcome_waiters) ? 0 : 1) - pool->n_pending;
    if (want <= 0)
        return;
    /* after a failed login, do not hammer the server: retry at most once a second */
    if (pool->last_error[0] && px_now(w) - pool->last_error_at < 1000 && pool->n_local > 0)
        return;
    int limit = cfg->db_pool_size;
    px_client_t *oldest = oldest_waiter(pool);
    if (oldest && px_now(w) - oldest->wait_start >= PX_OVERFLOW_DELAY_MS)
        limit += cfg->db_max_overflow;
    pool->launching = true;
    while (want-- > 0) {
        if (!budget_take(pool, limit)) {
            if (pool->n_pending == 0 && oldest_waiter(pool))
                want_budget(pool, true);
            break;
        }
        bool overflow = atomic_load(&pool->budget->open) > cfg->db_pool_size;
        px_server_t *s = px_server_open(pool);
        if (!s)
            break; /* px_server_open gave the budget back through px_pool_server_gone */
        s->overflow = overflow;
    }
    pool->launching = false;
}

static void start_check(px_server_t *s)
{
    px_sender_t snd;
    px_sender_init(&snd, &s->io);
    px_server_set_state(s, PX_SERVER_CHECKING);
    s->deadline = px_now(s->io.w) + 5000;
    if (!px_server_inject(s, &snd, "", PX_REQ_SKIP_QUERY) || px_sender_flush(&snd) != 0)
        px_server_close(s, "pre-use check failed");
}

static void link_client(px_server_t *s, px_client_t *c)
{
    px_server_set_state(s, PX_SERVER_ACTIVE);
    s->deadline = 0;
    s->lends++;
    px_client_on_server(c, s);
}

bool px_pool_checkout(px_pool_t *pool, px_client_t *c)
{
    px_worker_t *w = pool->w;
    px_config_t *cfg = px_worker_cfg(w);
    uint64_t now = px_now(w);
    uint64_t check_ms = (uint64_t)(cfg->server_idle_check * 1000.0);
    if (c->seq_want) {
        /* currval()/lastval() read the session's sequence state: the
         * connection that holds the client's latest, if it is still the
         * client's alone (and it needs no pre-use check; else the loop below
         * checks it) */
        for (px_list_t *l = pool->idle.next; l != &pool->idle; l = l->next) {
            px_server_t *s = px_container_of(l, px_server_t, link);
            if (s->serial == c->wr_server && s->seq_owner == c->serial &&
                now - s->last_used <= check_ms) {
                link_client(s, c);
                return true;
            }
        }
    }
    while (!px_list_empty(&pool->idle)) {
        px_server_t *s = px_container_of(pool->idle.next, px_server_t, link);
        if (now - s->last_used > check_ms) {
            start_check(s);
            continue;
        }
        link_client(s, c);
        return true;
    }
    /* queue: state WAITING was set by the caller; join the list */
    c->wait_pool = pool;
    px_list_append(&pool->waiters, &c->link);
    pool->n_waiting++;
    if (pool->n_waiting == 1)
        publish_oldest(pool);
    PX_STAT_INC(w, pool_waits);
    c->deadline = now + (uint64_t)(cfg->db_pool_timeout * 1000.0);
    launch(pool);
    return false;
}

void px_pool_remove_waiter(px_client_t *c)
{
    /* a client linked straight away by px_pool_checkout never joined the list */
    if (px_list_empty(&c->link))
        return;
    px_pool_t *pool = c->wait_pool ? c->wait_pool : c->pool;
    px_list_del(&c->link);
    pool->n_waiting--;
    c->deadline = 0;
    c->wait_pool = NULL;
    publish_oldest(pool);
}

static void want_budget(px_pool_t *pool, bool want)
{
    uint64_t bit = 1ull << pool->w->index;
    pool->wanting = want;
    if (want) {
        if (!(atomic_fetch_or(&pool->budget->wanted, bit) & bit))
            px_shared_wake_all(pool->w->shared, pool->w->index);
    } else if (atomic_load(&pool->budget->wanted) & bit) {
        atomic_fetch_and(&pool->budget->wanted, ~bit);
    }
}

/* Publish when this worker's longest waiter started waiting, so workers
 * can hand connections to whoever has waited longest. */
static void publish_oldest(px_pool_t *pool)
{
    px_client_t *o = oldest_waiter(pool);
    atomic_store_explicit(&pool->budget->oldest[pool->w->index], o ? o->wait_start | 1 : 0,
                          memory_order_relaxed);
}

/* Another worker is short of connections of this pool: hand @p s over when
 * nobody here waits, or when its clients have waited clearly longer than
 * ours (fairness between workers). True when it was moved. */
static bool give_away(px_server_t *s)
{
    px_pool_t *pool = s->pool;
    uint64_t me = 1ull << pool->w->index;
    uint64_t wanted = atomic_load(&pool->budget->wanted) & ~me;
    if (!wanted)
        return false;
    px_client_t *o = oldest_waiter(pool);
    uint64_t mine = o ? o->wait_start : 0;
    while (wanted) {
        int target = __builtin_ctzll(wanted);
        uint64_t bit = 1ull << target;
        wanted &= ~bit;
        uint64_t theirs = atomic_load_explicit(&pool->budget->oldest[target], memory_order_relaxed);
        if (o && (theirs == 0 || theirs + PX_FAIR_SLACK_MS >= mine))
            continue; /* ours waited as long: keep it */
        /* claim the request so one connection moves per request */
        uint64_t cur = atomic_load(&pool->budget->wanted);
        if ((cur & bit) &&
            atomic_compare_exchange_strong(&pool->budget->wanted, &cur, cur & ~bit)) {
            if (px_server_handoff(s, target))
                return true;
            atomic_fetch_or(&pool->budget->wanted, bit); /* could not: put it back */
            return false;
        }
    }
    return false;
}

void px_pool_offer_idle(px_pool_t *pool)
{
    while (!px_list_empty(&pool->idle)) {
        px_server_t *s = px_container_of(pool->idle.next, px_server_t, link);
        if (!give_away(s))
            break;
    }
}

/* Give a usable server to the first waiter, or keep it idle (or close it
 * when it is surplus). */
static void place(px_server_t *s)
{
    px_pool_t *pool = s->pool;
    px_worker_t *w = pool->w;
    if (s->cancel) {
        /* a cancel for the query it ran may still reach its backend: no
         * other client's query until the postmaster has handled it (the
         * cancel's close callback releases it) */
        s->cancel_hold = true;
        return;
    }
    s->deadline = 0;
    if (w->stopping) {
        px_server_close(s, "shutting down");
        return;
    }
    if (give_away(s))
        return;
    if (!px_list_empty(&pool->waiters)) {
        px_client_t *c = px_container_of(pool->waiters.next, px_client_t, link);
        /* px_client_set_state(ACTIVE) in link_client takes it off the list */
        link_client(s, c);
        return;
    }
    s->last_used = px_now(w);
    px_server_set_state(s, PX_SERVER_IDLE);
}

void px_pool_welcome_waiters(px_pool_t *pool)
{
    if (px_list_empty(&pool->welcome_waiters))
        return;
    while (!px_list_empty(&pool->welcome_waiters)) {
        px_client_t *c = px_container_of(pool->welcome_waiters.next, px_client_t, link);
        px_client_on_welcome(c, true); /* moves it off the list */
    }
    publish_oldest(pool);
}

void px_pool_server_ready(px_server_t *s)
{
    px_pool_t *pool = s->pool;
    if (!pool->have_welcome && s->state == PX_SERVER_LOGIN) {
        pool->have_welcome = true;
        px_shared_publish_welcome(pool->w->shared, pool);
    }
    if (pool->have_welcome)
        px_pool_welcome_waiters(pool);
    place(s);
}

void px_pool_release(px_server_t *s)
{
    s->last_used = px_now(s->io.w);
    place(s);
}

void px_pool_server_gone(px_server_t *s)
{
    px_pool_t *pool = s->pool;
    pool->n_local--;
    atomic_fetch_sub(&pool->budget->open, 1);
    launch(pool);
}

void px_pool_login_failed(px_pool_t *pool, const char *sqlstate, const char *msg)
{
    if (pool->last_error[0] == 0) {
        snprintf(pool->last_error, sizeof(pool->last_error), "%s", msg);
        snprintf(pool->last_sqlstate, sizeof(pool->last_sqlstate), "%s", sqlstate);
    }
    pool->last_error_at = px_now(pool->w);
    while (!px_list_empty(&pool->welcome_waiters)) {
        px_client_t *c = px_container_of(pool->welcome_waiters.next, px_client_t, link);
        px_client_on_welcome(c, false);
    }
    /* a replica that cannot be reached: its waiters have sent nothing yet,
     * so they go to their primary instead */
    if (!pool->is_primary) {
        while (!px_list_empty(&pool->waiters)) {
            px_client_t *c = px_container_of(pool->waiters.next, px_client_t, link);
            px_pool_remove_waiter(c);
            c->route = PX_ROUTE_PRIMARY_FALLBACK;
            c->unit_done = false;
            if (px_pool_checkout(c->pool, c))
                continue;
        }
        return;
    }
    /* waiters of a pool that cannot log in at all would only time out */
    if (pool->n_idle + pool->n_active == 0) {
        while (!px_list_empty(&pool->waiters)) {
            px_client_t *c = px_container_of(pool->waiters.next, px_client_t, link);
            px_client_fail(c, PX_CLOSE_SERVER_LOGIN_FAILED, pool->last_sqlstate,
                           "server login failed: %s", pool->last_error);
        }
    }
}

void px_pool_request_welcome(px_pool_t *pool, px_client_t *c)
{
    (void)c;
    c->wait_start = px_now(pool->w);
    publish_oldest(pool);
    launch(pool);
}

void px_pool_tick(px_pool_t *pool, uint64_t now)
{
    px_worker_t *w = pool->w;
    px_config_t *cfg = px_worker_cfg(w);
    /* clients waiting past DB_POOL_TIMEOUT */
    while (!px_list_empty(&pool->waiters)) {
        px_client_t *c = px_container_of(pool->waiters.next, px_client_t, link);
        if (now < c->deadline)
            break;
        PX_STAT_INC(w, pool_timeouts);
        px_client_fail(c, PX_CLOSE_POOL_TIMEOUT, "53300",
                       "pool timeout: no server connection for database \"%s\" user \"%s\" "
                       "became free within DB_POOL_TIMEOUT (%g s)",
                       pool->database, pool->user, cfg->db_pool_timeout);
    }
    /* another worker's login may already have brought the welcome */
    if (!px_list_empty(&pool->welcome_waiters) &&
        (pool->have_welcome || px_shared_fetch_welcome(w->shared, pool)))
        px_pool_welcome_waiters(pool);
    /* clients waiting for the first login past their login deadline */
    px_list_t *it = pool->welcome_waiters.next;
    while (it != &pool->welcome_waiters) {
        px_client_t *c = px_container_of(it, px_client_t, link);
        it = it->next;
        if (c->deadline && now >= c->deadline)
            px_client_fail(c, PX_CLOSE_LOGIN_TIMEOUT, "08006",
                           "timeout while waiting for the server login");
    }
    px_server_check_timeouts(pool, now);
    if (oldest_waiter(pool)) {
        launch(pool);
        /* still short of budget: ask the other workers for a connection */
        if (oldest_waiter(pool) && pool->n_pending == 0)
            want_budget(pool, true);
    } else {
        want_budget(pool, false);
    }
    px_pool_offer_idle(pool);
    /* above DB_POOL_SIZE: overflow connections close once idle a while */
    while (!px_list_empty(&pool->idle) && atomic_load(&pool->budget->open) > cfg->db_pool_size) {
        px_server_t *s = px_container_of(pool->idle.prev, px_server_t, link);
        if (now - s->last_used < PX_OVERFLOW_IDLE_MS)
            break;
        px_server_close(s, "overflow connection no longer needed");
    }
    /* idle connections beyond their lifetime: close, oldest first */
    uint64_t idle_ms = (uint64_t)(cfg->server_idle_timeout * 1000.0);
    while (!px_list_empty(&pool->idle)) {
        px_server_t *s = px_container_of(pool->idle.prev, px_server_t, link);
        if (now - s->last_used < idle_ms || pool->n_local <= 1)
            break;
        px_server_close(s, "idle timeout");
    }
}
