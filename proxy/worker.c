/*
 * Workers: one thread and one libuv loop each, all accepting on the same
 * port (SO_REUSEPORT), so the kernel spreads clients across cores. A session
 * lives on exactly one loop for its whole life. Other threads reach a worker
 * only through its inbox (a small mutex-guarded queue) and its uv_async_t:
 * cancel requests routed by the proxy-issued backend pid, stop and reload.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "px.h"

#define PX_SLOT_BITS 24
#define PX_SLOT_MASK ((1u << PX_SLOT_BITS) - 1)

px_config_t *px_worker_cfg(px_worker_t *w)
{
    return w->cfg;
}

/* ---- client slots: proxy-issued backend pids ---------------------------- */

uint32_t px_worker_slot_alloc(px_worker_t *w, px_client_t *c)
{
    uint32_t slot;
    if (w->free_slot) {
        slot = w->free_slot;
        w->free_slot = (uint32_t)((uintptr_t)w->slots[slot] >> 1);
    } else {
        if (w->n_slots + 1 >= PX_SLOT_MASK)
            return 0;
        if (w->n_slots + 1 >= w->slots_cap) {
            uint32_t cap = w->slots_cap < 64 ? 64 : w->slots_cap * 2;
            px_client_t **ns = realloc(w->slots, sizeof(*ns) * cap);
            if (!ns)
                return 0;
            w->slots = ns;
            w->slots_cap = cap;
        }
        slot = ++w->n_slots; /* slot 0 is never used: pid 0 is invalid */
    }
    w->slots[slot] = c;
    return ((uint32_t)w->index << PX_SLOT_BITS) | slot;
}

void px_worker_slot_free(px_worker_t *w, uint32_t id)
{
    uint32_t slot = id & PX_SLOT_MASK;
    if (slot == 0 || slot > w->n_slots)
        return;
    /* tag free entries with the low bit so lookups can tell them apart */
    w->slots[slot] = (px_client_t *)(uintptr_t)(((uintptr_t)w->free_slot << 1) | 1u);
    w->free_slot = slot;
}

px_client_t *px_worker_slot_get(px_worker_t *w, uint32_t id)
{
    uint32_t slot = id & PX_SLOT_MASK;
    if ((id >> PX_SLOT_BITS) != (uint32_t)w->index || slot == 0 || slot > w->n_slots)
        return NULL;
    uintptr_t v = (uintptr_t)w->slots[slot];
    if (v & 1u)
        return NULL;
    return (px_client_t *)v;
}

/* ---- write requests ------------------------------------------------------------ */

uv_write_t *px_worker_wreq_get(px_worker_t *w)
{
    uv_write_t *r = w->free_wreqs;
    if (r) {
        w->free_wreqs = r->data;
        return r;
    }
    return malloc(sizeof(*r));
}

void px_worker_wreq_put(px_worker_t *w, uv_write_t *r)
{
    r->data = w->free_wreqs;
    w->free_wreqs = r;
}

/* ---- loop callbacks ----------------------------------------------------------- */

/*
 * Where a new client should live. Each worker blocks in epoll when it has
 * nothing to do, and every wake-up costs a context switch; a few busy clients
 * spread over all workers wake each of them per query, where one worker would
 * have batched them. So workers fill in order: the first with fewer than
 * WORKER_FILL_CLIENTS clients takes the new one; once all have that many, the
 * one with the fewest.
 */
static int pick_worker(px_worker_t *w)
{
    px_shared_t *sh = w->shared;
    int fill = px_worker_cfg(w)->worker_fill_clients;
    if (fill <= 0 || sh->n_workers < 2)
        return w->index;
    int best = w->index;
    uint32_t best_n = atomic_load_explicit(&w->n_clients, memory_order_relaxed);
    for (int i = 0; i < sh->n_workers; i++) {
        uint32_t n = atomic_load_explicit(&sh->workers[i].n_clients, memory_order_relaxed);
        if (n < (uint32_t)fill)
            return i;
        if (n < best_n) {
            best_n = n;
            best = i;
        }
    }
    return best;
}

static void free_handle_cb(uv_handle_t *h)
{
    free(h);
}

/* Accept here and queue the socket for worker @p target. False when the
 * client should stay here after all (nothing accepted yet). */
static bool accept_for(px_worker_t *w, uv_stream_t *listener, int target)
{
    uv_tcp_t *t = malloc(sizeof(*t));
    if (!t || uv_tcp_init(&w->loop, t) != 0) {
        free(t);
        return false;
    }
    uv_os_fd_t fd = -1;
    int nfd = -1;
    int rc = uv_accept(listener, (uv_stream_t *)t);
    if (rc == 0)
        rc = uv_fileno((uv_handle_t *)t, &fd);
    if (rc == 0 && (nfd = fcntl(fd, F_DUPFD_CLOEXEC, 0)) < 0)
        rc = uv_translate_sys_error(errno);
    uv_close((uv_handle_t *)t, free_handle_cb); /* the dup keeps the connection */
    if (rc != 0) {
        px_log_warn(NULL, "accept failed on worker %d: %s", w->index, uv_strerror(rc));
        return true;
    }
    if (!px_shared_post_client(w->shared, target, nfd)) {
        w->n_clients++;
        px_client_adopt(w, nfd);
    }
    return true;
}

static void on_connection(uv_stream_t *listener, int status)
{
    px_worker_t *w = listener->data;
    if (status < 0) {
        px_log_warn(NULL, "accept failed on worker %d: %s", w->index, uv_strerror(status));
        return;
    }
    if (w->stopping)
        return;
    int target = pick_worker(w);
    if (target != w->index && accept_for(w, listener, target))
        return;
    px_client_accept(w, listener);
}

static void stop_worker(px_worker_t *w);
static void start_drain(px_worker_t *w);
static void drain_tick(px_worker_t *w, uint64_t now);

static void tick_cb(uv_timer_t *t)
{
    px_worker_t *w = t->data;
    px_cachesync_tick(w);
    uint64_t now = px_now(w);
    px_client_check_timeouts(w, now);
    for (px_pool_t *p = w->pools; p; p = p->next_in_worker)
        px_pool_tick(p, now);
    px_iobuf_trim_pool(w, 64);
    if (w->draining)
        drain_tick(w, now);
}

/* SIGTERM: stop accepting, let every client finish the transaction it is
 * in, then leave; whoever is still here at DRAIN_TIMEOUT is disconnected. */
static void start_drain(px_worker_t *w)
{
    w->draining = true;
    w->drain_deadline = px_now(w) + (uint64_t)(px_worker_cfg(w)->drain_timeout * 1000.0);
    if (w->listening) {
        uv_close((uv_handle_t *)&w->listener, NULL);
        w->listening = false;
    }
    drain_tick(w, px_now(w));
}

static void drain_tick(px_worker_t *w, uint64_t now)
{
    if (w->stopping)
        return;
    if (now >= w->drain_deadline || w->n_clients == 0) {
        stop_worker(w);
        return;
    }
    for (uint32_t i = 1; i <= w->n_slots; i++) {
        uintptr_t v = (uintptr_t)w->slots[i];
        if (v & 1u)
            continue;
        px_client_t *c = (px_client_t *)v;
        if (c && c->state != PX_CLIENT_CLOSING && px_client_between_transactions(c))
            px_client_fail(c, PX_CLOSE_SHUTDOWN, "57P01",
                           "terminating connection because the proxy is shutting down");
    }
}

static void wakeup_cb(uv_async_t *a)
{
    px_worker_t *w = a->data;
    px_cancel_msg_t cancels[PX_CANCEL_QUEUE];
    px_handoff_t handoffs[PX_HANDOFF_QUEUE];
    pthread_mutex_lock(&w->inbox_lock);
    int n = w->n_cancels;
    memcpy(cancels, w->cancels, sizeof(cancels[0]) * (size_t)n);
    w->n_cancels = 0;
    int nh = w->n_handoffs;
    memcpy(handoffs, w->handoffs, sizeof(handoffs[0]) * (size_t)nh);
    w->n_handoffs = 0;
    int client_fds[PX_CLIENT_HANDOFF_QUEUE];
    int nc = w->n_client_fds;
    memcpy(client_fds, w->client_fds, sizeof(client_fds[0]) * (size_t)nc);
    w->n_client_fds = 0;
    bool stop = w->stop_requested;
    bool reload = w->reload_requested;
    bool drain = w->drain_requested;
    w->reload_requested = false;
    w->drain_requested = false;
    pthread_mutex_unlock(&w->inbox_lock);
    for (int i = 0; i < n; i++)
        px_worker_cancel(w, cancels[i].pid, cancels[i].key);
    for (int i = 0; i < nh; i++)
        px_server_adopt(w, &handoffs[i]);
    for (int i = 0; i < nc; i++)
        px_client_adopt(w, client_fds[i]);
    px_cacheflow_worker_wake(w);
    px_cachesync_drain(w);
    /* another worker may be asking for budget this worker holds idle */
    for (px_pool_t *p = w->pools; p; p = p->next_in_worker)
        px_pool_offer_idle(p);
    if (reload) {
        pthread_mutex_lock(&w->shared->lock);
        px_config_t *cfg = px_config_ref(w->shared->cfg);
        pthread_mutex_unlock(&w->shared->lock);
        px_config_t *old = w->cfg;
        w->cfg = cfg;
        px_config_unref(old);
    }
    if (stop && !w->stopping)
        stop_worker(w);
    else if (drain && !w->draining && !w->stopping)
        start_drain(w);
}

void px_shared_post_cancel(px_shared_t *sh, uint32_t pid, uint32_t key)
{
    int idx = (int)(pid >> PX_SLOT_BITS);
    if (idx < 0 || idx >= sh->n_workers)
        return;
    px_worker_t *w = &sh->workers[idx];
    pthread_mutex_lock(&w->inbox_lock);
    if (w->n_cancels < PX_CANCEL_QUEUE) {
        w->cancels[w->n_cancels].pid = pid;
        w->cancels[w->n_cancels].key = key;
        w->n_cancels++;
    }
    pthread_mutex_unlock(&w->inbox_lock);
    uv_async_send(&w->wakeup);
}

bool px_shared_post_handoff(px_shared_t *sh, int target, px_handoff_t *h)
{
    if (target < 0 || target >= sh->n_workers)
        return false;
    px_worker_t *w = &sh->workers[target];
    bool ok = false;
    pthread_mutex_lock(&w->inbox_lock);
    if (w->n_handoffs < PX_HANDOFF_QUEUE && !w->stop_requested) {
        w->handoffs[w->n_handoffs++] = *h;
        ok = true;
    }
    pthread_mutex_unlock(&w->inbox_lock);
    if (ok)
        uv_async_send(&w->wakeup);
    return ok;
}

bool px_shared_post_client(px_shared_t *sh, int target, int fd)
{
    if (target < 0 || target >= sh->n_workers)
        return false;
    px_worker_t *w = &sh->workers[target];
    bool ok = false;
    pthread_mutex_lock(&w->inbox_lock);
    if (w->n_client_fds < PX_CLIENT_HANDOFF_QUEUE && !w->stop_requested && !w->drain_requested) {
        w->client_fds[w->n_client_fds++] = fd;
        w->n_clients++; /* counted from now, so a burst of accepts fills in order */
        ok = true;
    }
    pthread_mutex_unlock(&w->inbox_lock);
    if (ok)
        uv_async_send(&w->wakeup);
    return ok;
}

void px_shared_wake_all(px_shared_t *sh, int except)
{
    for (int i = 0; i < sh->n_workers; i++)
        if (i != except)
            uv_async_send(&sh->workers[i].wakeup);
}

static void walk_close_cb(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (uv_is_closing(h))
        return;
    void *data = h->data;
    if (h->type == UV_TCP && data) {
        px_io_t *io = data;
        if (io->kind == PX_IO_CLIENT && !io->closing) {
            px_client_fail((px_client_t *)io, PX_CLOSE_SHUTDOWN, "57P01",
                           "terminating connection because the proxy is shutting down");
            return;
        }
        if (io->kind == PX_IO_SERVER && !io->closing) {
            px_server_close((px_server_t *)io, "shutting down");
            return;
        }
    }
}

static void stop_worker(px_worker_t *w)
{
    w->stopping = true;
    if (w->listening)
        uv_close((uv_handle_t *)&w->listener, NULL);
    w->listening = false;
    uv_timer_stop(&w->tick);
    uv_close((uv_handle_t *)&w->tick, NULL);
    uv_close((uv_handle_t *)&w->wakeup, NULL);
    px_cachesync_worker_stop(w);
    /* client and server sockets carry their session in data; cancel
     * connections do not (their data is a px_cancel_conn_t, kind unknown) */
    uv_walk(&w->loop, walk_close_cb, NULL);
}

static void *worker_main(void *arg)
{
    px_worker_t *w = arg;
    px_cachesync_worker_start(w);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    /* close whatever is left (cancel connections in flight) */
    uv_run(&w->loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&w->loop) != 0)
        px_log_warn(NULL, "worker %d: loop closed with handles still open", w->index);
    px_cacheflow_worker_free(w);
    atomic_fetch_add(&w->shared->workers_done, 1);
    return NULL;
}

/* A listening socket of our own, so every worker can bind the same port. */
static int make_listener(const px_hostport_t *hp)
{
    struct sockaddr_storage ss;
    socklen_t len;
    memset(&ss, 0, sizeof(ss));
    struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
    const char *host = hp->host[0] ? hp->host : "0.0.0.0";
    if (uv_ip4_addr(host, hp->port, a4) == 0) {
        len = sizeof(*a4);
    } else if (uv_ip6_addr(host, hp->port, a6) == 0) {
        len = sizeof(*a6);
    } else {
        return -EINVAL;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
        bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, 4096) != 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    return fd;
}

int px_worker_init(px_worker_t *w)
{
    int rc = uv_loop_init(&w->loop);
    if (rc != 0)
        return rc;
    px_list_init(&w->login_clients);
    pthread_mutex_init(&w->inbox_lock, NULL);
    int fd = make_listener(&w->cfg->proxy_listen);
    if (fd < 0) {
        px_log_error(NULL, "cannot listen on %s:%u: %s", w->cfg->proxy_listen.host,
                     w->cfg->proxy_listen.port, strerror(-fd));
        return fd;
    }
    uv_tcp_init(&w->loop, &w->listener);
    w->listener.data = NULL; /* not a session: walk_close_cb skips it */
    if ((rc = uv_tcp_open(&w->listener, fd)) != 0 ||
        (rc = uv_listen((uv_stream_t *)&w->listener, 4096, on_connection)) != 0) {
        px_log_error(NULL, "cannot listen: %s", uv_strerror(rc));
        return rc;
    }
    w->listener.data = w;
    w->listening = true;
    uv_timer_init(&w->loop, &w->tick);
    w->tick.data = NULL;
    uv_timer_start(&w->tick, tick_cb, PX_TICK_MS, PX_TICK_MS);
    uv_async_init(&w->loop, &w->wakeup, wakeup_cb);
    w->wakeup.data = w;
    w->tick.data = w;
    return 0;
}

int px_worker_run(px_worker_t *w)
{
    int rc = pthread_create(&w->thread, NULL, worker_main, w);
    return rc == 0 ? 0 : -rc;
}

/* ---- shared state ------------------------------------------------------------- */

bool px_shared_plain_password(px_shared_t *sh, const char *user, char **out)
{
    px_secret_t sec;
    bool ok = true;
    if (px_shared_lookup_secret(sh, user, &sec) && sec.kind == PX_SECRET_PLAIN)
        ok = (*out = strdup(sec.text)) != NULL;
    OPENSSL_cleanse(&sec, sizeof sec);
    return ok;
}

bool px_shared_lookup_secret(px_shared_t *sh, const char *user, px_secret_t *out)
{
    bool found = false;
    pthread_mutex_lock(&sh->lock);
    if (sh->authfile) {
        const px_secret_t *s = px_authfile_lookup(sh->authfile, user);
        if (s && s->kind != PX_SECRET_NONE) {
            *out = *s;
            found = true;
        } else if (s) {
            memset(out, 0, sizeof(*out));
            out->kind = PX_SECRET_NONE;
            found = true;
        }
    } else if (sh->cfg->postgres_user && strcmp(sh->cfg->postgres_user, user) == 0) {
        if (sh->cfg->postgres_password && sh->cfg->postgres_password[0]) {
            found = px_secret_parse(sh->cfg->postgres_password, out);
        } else {
            memset(out, 0, sizeof(*out));
            out->kind = PX_SECRET_NONE;
            found = true;
        }
    }
    pthread_mutex_unlock(&sh->lock);
    return found;
}

px_pool_budget_t *px_shared_budget(px_shared_t *sh, const char *database, const char *user,
                                   const char *host, uint16_t port, bool is_primary)
{
    size_t dl = strlen(database), ul = strlen(user);
    if (strlen(host) >= sizeof(((px_pool_budget_t *)0)->host))
        return NULL;
    pthread_mutex_lock(&sh->lock);
    px_pool_budget_t *b;
    for (b = sh->budgets; b; b = b->next)
        if (b->port == port && strcmp(b->key, database) == 0 &&
            strcmp(b->key + dl + 1, user) == 0 && strcmp(b->host, host) == 0)
            break;
    if (!b) {
        b = calloc(1, sizeof(*b));
        if (b) {
            b->key = malloc(dl + ul + 2);
            if (!b->key) {
                free(b);
                b = NULL;
            } else {
                memcpy(b->key, database, dl + 1);
                memcpy(b->key + dl + 1, user, ul + 1);
                snprintf(b->host, sizeof(b->host), "%s", host);
                b->port = port;
                b->is_primary = is_primary;
                b->next = sh->budgets;
                sh->budgets = b;
            }
        }
    }
    pthread_mutex_unlock(&sh->lock);
    return b;
}

static bool copy_welcome(px_welcome_param_t **dst, int *n_dst, const px_welcome_param_t *src, int n)
{
    px_welcome_param_t *a = calloc((size_t)n + 1, sizeof(*a));
    if (!a)
        return false;
    for (int i = 0; i < n; i++) {
        a[i].name = strdup(src[i].name);
        a[i].value = strdup(src[i].value);
        if (!a[i].name || !a[i].value) {
            for (int k = 0; k <= i; k++) {
                free(a[k].name);
                free(a[k].value);
            }
            free(a);
            return false;
        }
    }
    *dst = a;
    *n_dst = n;
    return true;
}

void px_shared_publish_welcome(px_shared_t *sh, px_pool_t *pool)
{
    px_pool_budget_t *b = pool->budget;
    if (atomic_load(&b->have_welcome))
        return;
    pthread_mutex_lock(&sh->lock);
    if (!atomic_load(&b->have_welcome) &&
        copy_welcome(&b->welcome, &b->n_welcome, pool->welcome, pool->n_welcome))
        atomic_store(&b->have_welcome, true);
    pthread_mutex_unlock(&sh->lock);
}

bool px_shared_fetch_welcome(px_shared_t *sh, px_pool_t *pool)
{
    px_pool_budget_t *b = pool->budget;
    if (!atomic_load(&b->have_welcome))
        return false;
    pthread_mutex_lock(&sh->lock);
    for (int i = 0; i < pool->n_welcome; i++) {
        free(pool->welcome[i].name);
        free(pool->welcome[i].value);
    }
    free(pool->welcome);
    pool->welcome = NULL;
    pool->n_welcome = 0;
    bool ok = copy_welcome(&pool->welcome, &pool->n_welcome, b->welcome, b->n_welcome);
    pthread_mutex_unlock(&sh->lock);
    if (ok) {
        pool->have_welcome = true;
        px_pool_welcome_waiters(pool);
    }
    return ok;
}

struct px_verifier_cache {
    struct px_verifier_cache *next;
    char user[PX_AUTH_NAME_MAX];
    uint8_t pw_digest[32]; /* SHA-256 of the password it was derived from */
    px_secret_t verifier;
};

#define PX_VERIFIER_CACHE_MAX 8192

static unsigned verifier_bucket(const char *user)
{
    unsigned h = 2166136261u;
    for (; *user; user++)
        h = (h ^ (uint8_t)*user) * 16777619u;
    return h & 255u;
}

bool px_shared_verifier_for_plain(px_shared_t *sh, const char *user, const px_secret_t *plain,
                                  px_secret_t *out)
{
    uint8_t digest[32];
    unsigned dlen = 0;
    if (plain->kind != PX_SECRET_PLAIN || strlen(user) >= PX_AUTH_NAME_MAX ||
        !EVP_Digest(plain->text, strlen(plain->text), digest, &dlen, EVP_sha256(), NULL))
        return false;
    unsigned b = verifier_bucket(user);
    bool found = false;
    pthread_mutex_lock(&sh->lock);
    for (struct px_verifier_cache *e = sh->verifiers[b]; e; e = e->next) {
        if (strcmp(e->user, user) == 0 && CRYPTO_memcmp(e->pw_digest, digest, 32) == 0) {
            *out = e->verifier;
            found = true;
            break;
        }
    }
    pthread_mutex_unlock(&sh->lock);
    if (found)
        return true;
    char text[PX_AUTH_SECRET_MAX];
    if (!px_scram_make_verifier(plain->text, 4096, text, sizeof(text)) ||
        !px_secret_parse(text, out)) {
        OPENSSL_cleanse(text, sizeof(text));
        return false;
    }
    OPENSSL_cleanse(text, sizeof(text));
    struct px_verifier_cache *e = calloc(1, sizeof(*e));
    if (!e)
        return true; /* derived, just not cached */
    snprintf(e->user, sizeof(e->user), "%s", user);
    memcpy(e->pw_digest, digest, 32);
    e->verifier = *out;
    pthread_mutex_lock(&sh->lock);
    static int count;
    if (count < PX_VERIFIER_CACHE_MAX) {
        e->next = sh->verifiers[b];
        sh->verifiers[b] = e;
        count++;
        e = NULL;
    }
    pthread_mutex_unlock(&sh->lock);
    free(e);
    return true;
}
