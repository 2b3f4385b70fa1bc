/*
 * Client sessions: one px_client_t per client connection, driven by an
 * explicit state (px_client_state_t) that only px_client_set_state writes.
 * Each state has exactly one list membership: STARTUP/AUTH/WELCOME are on the
 * worker's login list (for the login deadline), WAITING is on its pool's
 * waiters list, the others on none.
 *
 * Client bytes are framed with the codec and forwarded to the linked server
 * connection as spans of the client's own input buffer; only Query and Parse
 * are looked into whole. Every request that will end in ReadyForQuery pushes
 * a FORWARD entry on the server's outstanding-request FIFO.
 *
 * The session ends through px_client_fail (ErrorResponse + close) or
 * px_client_close; memory is freed only in the socket's close callback.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <ctype.h>
#include <strings.h>

#include <openssl/rand.h>

#include "px.h"
#include "sqlscan.h"
#include "px_classify.h"
#include "px_digest.h"
#include "px_metrics.h"
#include "px_tls.h"

struct px_client_auth {
    px_auth_step_t step;
    px_secret_t secret; /* the user's secret (or a decoy for unknown users) */
    bool user_known;
    uint8_t md5_salt[4];
    px_scram_server_t scram;
};

static const char *const client_state_names[] = {
    "startup", "auth", "welcome", "idle", "waiting", "active", "closing",
};

const char *px_client_state_to_str(px_client_state_t st)
{
    return (unsigned)st < sizeof(client_state_names) / sizeof(client_state_names[0])
               ? client_state_names[st]
               : "?";
}

const char *px_close_reason_to_str(px_close_reason_t r)
{
    switch (r) {
    case PX_CLOSE_CLIENT_EOF:
        return "client closed the connection";
    case PX_CLOSE_CLIENT_TERMINATE:
        return "client terminated";
    case PX_CLOSE_CLIENT_READ_ERROR:
        return "client read error";
    case PX_CLOSE_CLIENT_WRITE_ERROR:
        return "client write error";
    case PX_CLOSE_PROTOCOL_ERROR:
        return "protocol error";
    case PX_CLOSE_LOGIN_TIMEOUT:
        return "login timeout";
    case PX_CLOSE_AUTH_FAILED:
        return "authentication failed";
    case PX_CLOSE_POOL_TIMEOUT:
        return "pool timeout";
    case PX_CLOSE_SERVER_LOST:
        return "server connection lost";
    case PX_CLOSE_SERVER_LOGIN_FAILED:
        return "server login failed";
    case PX_CLOSE_TOO_MANY_CLIENTS:
        return "too many clients";
    case PX_CLOSE_SHUTDOWN:
        return "shutdown";
    case PX_CLOSE_INTERNAL:
        return "internal error";
    }
    return "?";
}

static void client_tag(px_client_t *c, char *buf, size_t n)
{
    snprintf(buf, n, "C-%u %s%s%s", c->id, c->peer, c->user ? " " : "", c->user ? c->user : "");
}

#define CLOG(level, c, ...)                                                                        \
    do {                                                                                           \
        if ((level) <= __atomic_load_n(&px_log_level, __ATOMIC_RELAXED)) {                         \
            char tag_[160];                                                                        \
            client_tag((c), tag_, sizeof(tag_));                                                   \
            px_log_write((level), tag_, __VA_ARGS__);                                              \
        }                                                                                          \
    } while (0)

void px_client_set_state(px_client_t *c, px_client_state_t st)
{
    px_client_state_t old = c->state;
    if (old == st)
        return;
    /* leave the old state's list */
    switch (old) {
    case PX_CLIENT_STARTUP:
    case PX_CLIENT_AUTH:
        if (st != PX_CLIENT_STARTUP && st != PX_CLIENT_AUTH)
            px_list_del(&c->link);
        break;
    case PX_CLIENT_WELCOME:
        px_list_del(&c->link);
        break;
    case PX_CLIENT_WAITING:
        px_pool_remove_waiter(c);
        break;
    default:
        break;
    }
    c->state = st;
    /* join the new state's list */
    if (st == PX_CLIENT_WELCOME) {
        /* moves from the login list to the pool's welcome list; the login
         * deadline keeps running through the pool's tick */
        px_list_append(&c->pool->welcome_waiters, &c->link);
    }
    px_log_debug(NULL, "C-%u state %s -> %s", c->id, px_client_state_to_str(old),
                 px_client_state_to_str(st));
}

/* ---- sending helpers ----------------------------------------------------- */

/* Send one ErrorResponse right away (best effort) and close. */
void px_client_fail(px_client_t *c, px_close_reason_t why, const char *sqlstate, const char *fmt,
                    ...)
{
    if (c->state == PX_CLIENT_CLOSING)
        return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    px_sender_t snd;
    px_sender_init(&snd, &c->io);
    px_wbuf_t wb = px_sender_wbuf(&snd);
    px_build_error(&wb, "FATAL", sqlstate, msg);
    if (px_sender_commit(&snd, &wb) && px_sender_flush(&snd) != 0) {
        /* the client is gone; closing is all that is left */
    }
    CLOG(why == PX_CLOSE_AUTH_FAILED || why == PX_CLOSE_PROTOCOL_ERROR ? PX_LOG_WARN : PX_LOG_INFO,
         c, "closing: %s (%s: %s)", px_close_reason_to_str(why), sqlstate, msg);
    if (why == PX_CLOSE_PROTOCOL_ERROR)
        PX_STAT_INC(c->io.w, protocol_errors);
    px_client_close(c, why);
}

static void client_free_cb(uv_handle_t *h)
{
    px_client_t *c = (px_client_t *)h->data;
    px_worker_t *w = c->io.w;
    px_iobuf_put(w, c->io.in);
    if (!c->io.wreq)
        px_iobuf_put(w, c->io.out);
    /* an in-flight write's callback runs (ECANCELED) before the close
     * callback and has already returned its buffer */
    px_params_free(&c->params);
    px_tls_free(c->io.tls);
    px_stmt_map_clear(&c->stmts);
    free(c->unnamed);
    free(c->synth_error);
    free(c->user);
    free(c->database);
    if (c->auth) {
        OPENSSL_cleanse(c->auth, sizeof(*c->auth));
        free(c->auth);
    }
    px_worker_slot_free(w, c->id);
    atomic_fetch_sub(&w->shared->n_clients, 1);
    w->n_clients--;
    PX_STAT_DEC(w, clients_active);
    free(c);
}

/* Detach the server connection of a leaving client: reuse it when it is
 * clean, reset it when the session left state on it, otherwise cancel what
 * runs on it and close it. */
static void sets_clear(px_client_t *c);

static void detach_server(px_client_t *c, bool terminated)
{
    px_server_t *s = c->server;
    if (!s)
        return;
    c->server = NULL;
    s->client = NULL;
    px_config_t *cfg = px_worker_cfg(c->io.w);
    /* the client may also owe the server the rest of a message it forwards */
    bool busy = s->fifo.count > 0 || c->unsynced || s->io.pass_left > 0 || c->in_copy_in ||
                c->pass_unsent || s->ignore_till_sync || (c->io.pass_left > 0 && !c->io.pass_skip);
    if (busy) {
        if (terminated && !c->in_copy_in && !(c->io.pass_left > 0 && !c->io.pass_skip)) {
            /* a Terminate behind its requests: PostgreSQL runs them (an
             * INSERT sent just before it commits) and then ends; so does
             * this connection, which is not reused */
            static const uint8_t terminate[5] = {'X', 0, 0, 0, 4};
            px_sender_t snd;
            px_sender_init(&snd, &s->io);
            if (px_sender_span(&snd, terminate, sizeof(terminate)) && px_sender_flush(&snd) != 0) {
                /* broken already: closing is all that is left */
            }
            px_server_close(s, "client terminated with requests outstanding");
            return;
        }
        px_server_send_cancel(s);
        px_server_close(s, "client left in the middle of a request");
        return;
    }
    bool dirty = c->pinned || cfg->pool_mode == PX_POOL_MODE_SESSION;
    if (s->tx_status == 'I' && !dirty) {
        px_pool_release(s);
        return;
    }
    px_sender_t snd;
    px_sender_init(&snd, &s->io);
    bool ok = true;
    if (s->tx_status != 'I')
        ok = px_server_inject(s, &snd, "ROLLBACK", PX_REQ_SKIP_QUERY);
    if (ok && dirty) {
        ok = px_server_inject(s, &snd, "DISCARD ALL", PX_REQ_SKIP_QUERY);
        s->seq_owner = 0;
        px_params_free(&s->applied);
        px_stmt_set_clear(s->stmts); /* DISCARD ALL deallocates them all */
    }
    if (!ok || px_sender_flush(&snd) != 0) {
        px_server_close(s, "could not reset the server connection");
        return;
    }
    px_server_set_state(s, PX_SERVER_RESETTING);
}

void px_client_close(px_client_t *c, px_close_reason_t why)
{
    if (c->state == PX_CLIENT_CLOSING)
        return;
    px_log_debug(NULL, "C-%u close: %s", c->id, px_close_reason_to_str(why));
    if (c->state == PX_CLIENT_WAITING)
        px_pool_remove_waiter(c);
    else if (c->state == PX_CLIENT_STARTUP || c->state == PX_CLIENT_AUTH ||
             c->state == PX_CLIENT_WELCOME)
        px_list_del(&c->link);
    c->state = PX_CLIENT_CLOSING;
    if (c->pinned)
        c->pool->n_pinned--;
    px_cacheflow_client_gone(c);
    sets_clear(c);
    free(c->restore);
    c->restore = NULL;
    px_client_retry_disarm(c);
    detach_server(c, why == PX_CLOSE_CLIENT_TERMINATE);
    px_io_close(&c->io, client_free_cb);
}

/* A session whose accept failed: nothing else was attached to it yet. */
static void unaccepted_free_cb(uv_handle_t *h)
{
    free(h->data);
}

uint64_t px_serial_next(void)
{
    static _Atomic uint64_t next = 1;
    return atomic_fetch_add_explicit(&next, 1, memory_order_relaxed);
}

/* ---- accept ------------------------------------------------------------------ */

static px_client_t *client_alloc(px_worker_t *w)
{
    px_client_t *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->serial = px_serial_next();
    c->avoid_replica = -1;
    px_io_init(&c->io, w, PX_IO_CLIENT);
    if (uv_tcp_init(&w->loop, &c->io.tcp) != 0) {
        free(c);
        return NULL;
    }
    c->io.tcp.data = c;
    return c;
}

/* nothing to free but the handle */
static void client_unaccepted(px_client_t *c)
{
    c->state = PX_CLIENT_CLOSING;
    c->io.closing = true;
    uv_close((uv_handle_t *)&c->io.tcp, unaccepted_free_cb);
}

static void client_start(px_worker_t *w, px_client_t *c);

void px_client_accept(px_worker_t *w, uv_stream_t *listener)
{
    px_client_t *c = client_alloc(w);
    if (!c)
        return;
    if (uv_accept(listener, (uv_stream_t *)&c->io.tcp) != 0) {
        client_unaccepted(c);
        return;
    }
    w->n_clients++;
    client_start(w, c);
}

void px_client_adopt(px_worker_t *w, int fd)
{
    px_client_t *c = w->stopping || w->draining ? NULL : client_alloc(w);
    if (!c) {
        close(fd);
        w->n_clients--;
        return;
    }
    if (uv_tcp_open(&c->io.tcp, fd) != 0) {
        close(fd);
        w->n_clients--;
        client_unaccepted(c);
        return;
    }
    client_start(w, c);
}

static void client_start(px_worker_t *w, px_client_t *c)
{
    px_list_init(&c->link);
    c->state = PX_CLIENT_STARTUP;
    c->tx_status = 'I';
    atomic_fetch_add(&w->shared->n_clients, 1);
    PX_STAT_INC(w, clients_accepted);
    PX_STAT_INC(w, clients_active);
    c->id = px_worker_slot_alloc(w, c);
    if (RAND_bytes((unsigned char *)&c->cancel_key, sizeof(c->cancel_key)) != 1)
        c->cancel_key = (uint32_t)rand();
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    c->peer[0] = 0;
    if (uv_tcp_getpeername(&c->io.tcp, (struct sockaddr *)&ss, &len) == 0) {
        char ip[46] = "";
        int port = 0;
        if (ss.ss_family == AF_INET) {
            struct sockaddr_in *a = (struct sockaddr_in *)&ss;
            uv_ip4_name(a, ip, sizeof(ip));
            port = ntohs(a->sin_port);
        } else if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
            uv_ip6_name(a, ip, sizeof(ip));
            port = ntohs(a->sin6_port);
        }
        snprintf(c->peer, sizeof(c->peer), "%s:%d", ip, port);
    }
    uv_tcp_nodelay(&c->io.tcp, 1);
    px_config_t *cfg = px_worker_cfg(w);
    c->deadline = px_now(w) + (uint64_t)(cfg->client_login_timeout * 1000.0);
    px_list_append(&w->login_clients, &c->link);
    if (c->id == 0) {
        px_client_fail(c, PX_CLOSE_INTERNAL, "53200", "out of memory");
        return;
    }
    if (atomic_load(&w->shared->n_clients) > cfg->max_client_conn) {
        PX_STAT_INC(w, clients_rejected);
        px_client_fail(c, PX_CLOSE_TOO_MANY_CLIENTS, "53300",
                       "sorry, too many clients already (MAX_CLIENT_CONN %d)",
                       cfg->max_client_conn);
        return;
    }
    if (px_io_start_read(&c->io) != 0)
        px_client_close(c, PX_CLOSE_CLIENT_READ_ERROR);
}

/* ---- startup and authentication ---------------------------------------- */

static bool send_raw(px_client_t *c, const void *p, size_t n)
{
    px_sender_t snd;
    px_sender_init(&snd, &c->io);
    return px_sender_span(&snd, p, n) && px_sender_flush(&snd) == 0;
}

static char *span_dup(px_span_t s)
{
    char *p = malloc(s.n + 1);
    if (p) {
        memcpy(p, s.p, s.n);
        p[s.n] = 0;
    }
    return p;
}

/* PostgreSQL reports client_encoding in its canonical spelling; echo the
 * client's choice the way the server would. */
static void canonical_encoding(const char *in, char *out, size_t n)
{
    size_t j = 0;
    for (size_t i = 0; in[i] && j + 1 < n; i++) {
        if (in[i] == '-')
            continue;
        out[j++] = (char)toupper((unsigned char)in[i]);
    }
    out[j] = 0;
    if (strcmp(out, "UNICODE") == 0)
        snprintf(out, n, "UTF8");
}

/* The login reply: AuthenticationOk, the server's parameters with the
 * client's own settings on top, our BackendKeyData, ReadyForQuery. */
static void send_welcome(px_client_t *c)
{
    px_pool_t *pool = c->pool;
    px_sender_t snd;
    px_sender_init(&snd, &c->io);
    px_wbuf_t wb = px_sender_wbuf(&snd);
    px_build_auth(&wb, PX_AUTH_OK, NULL, 0);
    for (int i = 0; i < pool->n_welcome; i++) {
        const char *name = pool->welcome[i].name;
        const char *value = pool->welcome[i].value;
        char lname[64];
        size_t k;
        for (k = 0; name[k] && k + 1 < sizeof(lname); k++)
            lname[k] = (char)tolower((unsigned char)name[k]);
        lname[k] = 0;
        const char *mine = px_params_get(&c->params, lname);
        char enc[64];
        if (mine && strcmp(lname, "client_encoding") == 0) {
            canonical_encoding(mine, enc, sizeof(enc));
            mine = enc;
        }
        px_build_param_status(&wb, name, mine ? mine : value);
        if (wb.failed) {
            /* scratch full: send what we have and continue */
            wb.failed = false;
            wb.len = wb._msg_start;
            if (!px_sender_commit(&snd, &wb) || px_sender_flush(&snd) != 0)
                goto fail;
            wb = px_sender_wbuf(&snd);
            px_build_param_status(&wb, name, mine ? mine : value);
        }
    }
    px_build_backend_key(&wb, c->id, c->cancel_key);
    px_build_ready(&wb, 'I');
    if (!px_sender_commit(&snd, &wb) || px_sender_flush(&snd) != 0)
        goto fail;
    return;
fail:
    px_client_close(c, PX_CLOSE_CLIENT_WRITE_ERROR);
}

static void login_done(px_client_t *c)
{
    if (c->auth) {
        OPENSSL_cleanse(c->auth, sizeof(*c->auth));
        free(c->auth);
        c->auth = NULL;
    }
    c->deadline = 0;
    px_client_set_state(c, PX_CLIENT_IDLE);
    CLOG(PX_LOG_DEBUG, c, "login ok, database %s", c->database);
    send_welcome(c);
}

void px_client_on_welcome(px_client_t *c, bool ok)
{
    if (c->state != PX_CLIENT_WELCOME)
        return;
    if (!ok) {
        px_pool_t *pool = c->pool;
        px_client_fail(c, PX_CLOSE_SERVER_LOGIN_FAILED,
                       pool->last_sqlstate[0] ? pool->last_sqlstate : "08006",
                       "server login failed: %s",
                       pool->last_error[0] ? pool->last_error : "no server connection");
        return;
    }
    login_done(c);
    if (c->state == PX_CLIENT_IDLE)
        px_client_process(c);
}

/* Authentication succeeded: remember how the pool logs in, then greet. */
static void auth_ok(px_client_t *c)
{
    px_worker_t *w = c->io.w;
    px_config_t *cfg = px_worker_cfg(w);
    px_pool_t *pool =
        px_pool_get(w, c->database, c->user, cfg->postgres_server, cfg->postgres_port, true);
    if (!pool) {
        px_client_fail(c, PX_CLOSE_INTERNAL, "53200", "out of memory");
        return;
    }
    c->pool = pool;
    struct px_client_auth *a = c->auth;
    if (a && a->user_known) {
        px_pool_creds_t *cr = &pool->creds;
        switch (a->secret.kind) {
        case PX_SECRET_PLAIN:
        case PX_SECRET_MD5:
            cr->kind = a->secret.kind;
            snprintf(cr->secret, sizeof(cr->secret), "%s", a->secret.text);
            break;
        case PX_SECRET_SCRAM:
            if (a->scram.have_client_key) {
                cr->kind = PX_SECRET_SCRAM;
                memcpy(cr->client_key, a->scram.client_key, PX_SCRAM_KEY_LEN);
                memcpy(cr->server_key, a->secret.server_key, PX_SCRAM_KEY_LEN);
                cr->have_keys = true;
            }
            break;
        default:
            break;
        }
    }
    (void)cfg;
    if (pool->have_welcome || px_shared_fetch_welcome(w->shared, pool)) {
        login_done(c);
        return;
    }
    px_client_set_state(c, PX_CLIENT_WELCOME);
    px_pool_request_welcome(pool, c);
}

static void auth_fail(px_client_t *c)
{
    PX_STAT_INC(c->io.w, login_failures);
    px_client_fail(c, PX_CLOSE_AUTH_FAILED, "28P01",
                   "password authentication failed for user \"%s\"", c->user);
}

static void begin_auth(px_client_t *c)
{
    px_worker_t *w = c->io.w;
    px_config_t *cfg = px_worker_cfg(w);
    struct px_client_auth *a = calloc(1, sizeof(*a));
    if (!a) {
        px_client_fail(c, PX_CLOSE_INTERNAL, "53200", "out of memory");
        return;
    }
    c->auth = a;
    a->user_known = px_shared_lookup_secret(w->shared, c->user, &a->secret);
    if (cfg->auth_type == PX_AUTH_TYPE_TRUST) {
        if (!a->user_known && cfg->auth_file) {
            PX_STAT_INC(w, login_failures);
            px_client_fail(c, PX_CLOSE_AUTH_FAILED, "28000", "role \"%s\" does not exist", c->user);
            return;
        }
        auth_ok(c);
        return;
    }
    px_secret_kind_t k = a->user_known ? a->secret.kind : PX_SECRET_NONE;
    bool use_md5 =
        (k == PX_SECRET_MD5) || (cfg->auth_type == PX_AUTH_TYPE_MD5 && k == PX_SECRET_PLAIN);
    px_sender_t snd;
    px_sender_init(&snd, &c->io);
    px_wbuf_t wb = px_sender_wbuf(&snd);
    if (use_md5) {
        if (RAND_bytes(a->md5_salt, 4) != 1) {
            px_client_fail(c, PX_CLOSE_INTERNAL, "58000", "could not generate random salt");
            return;
        }
        px_build_auth(&wb, PX_AUTH_MD5, a->md5_salt, 4);
        a->step = PX_AUTH_STEP_MD5;
    } else {
        bool started;
        if (k != PX_SECRET_PLAIN && k != PX_SECRET_SCRAM) {
            /* unknown user: a decoy exchange with a stable per-user salt, so
             * the reply does not tell which users exist */
            a->user_known = false;
            started = px_scram_server_init_mock(&a->scram, c->user);
        } else if (k == PX_SECRET_PLAIN) {
            px_secret_t v;
            started = px_shared_verifier_for_plain(w->shared, c->user, &a->secret, &v) &&
                      px_scram_server_init(&a->scram, &v);
            OPENSSL_cleanse(&v, sizeof(v));
        } else {
            started = px_scram_server_init(&a->scram, &a->secret);
        }
        if (!started) {
            px_client_fail(c, PX_CLOSE_INTERNAL, "XX000", "could not start SCRAM authentication");
            return;
        }
        px_build_auth_sasl(&wb);
        a->step = PX_AUTH_STEP_SASL_INIT;
    }
    px_client_set_state(c, PX_CLIENT_AUTH);
    if (!px_sender_commit(&snd, &wb) || px_sender_flush(&snd) != 0)
        px_client_close(c, PX_CLOSE_CLIENT_WRITE_ERROR);
}

static void handle_auth_msg(px_client_t *c, px_msg_hdr_t *hdr, px_span_t body)
{
    struct px_client_auth *a = c->auth;
    if (hdr->type != 'p') {
        px_client_fail(c, PX_CLOSE_PROTOCOL_ERROR, "08P01",
                       "expected password response, got message type %d", hdr->type);
        return;
    }
    switch (a->step) {
    case PX_AUTH_STEP_MD5: {
        px_span_t pw = {0};
        if (!px_codec_parse_password(body, &pw)) {
            px_client_fail(c, PX_CLOSE_PROTOCOL_ERROR, "08P01", "malformed password message");
            return;
        }
        if (pw.n != 35) {
            auth_fail(c);
            return;
        }
        char ans[36];
        memcpy(ans, pw.p, 35);
        ans[35] = 0;
        if (!a->user_known || !px_md5_verify(&a->secret, c->user, a->md5_salt, ans)) {
            auth_fail(c);
            return;
        }
        auth_ok(c);
        return;
    }
    case PX_AUTH_STEP_SASL_INIT: {
        px_span_t mech, data;
        if (!px_codec_parse_sasl_initial(body, &mech, &data)) {
            px_client_fail(c, PX_CLOSE_PROTOCOL_ERROR, "08P01", "malformed SASLInitialResponse");
            return;
        }
        if (mech.n != 13 || memcmp(mech.p, "SCRAM-SHA-256", 13) != 0) {
            px_client_fail(c, PX_CLOSE_PROTOCOL_ERROR, "28000",
                           "client selected an invalid SASL authentication mechanism");
            return;
        }
        char out[512];
        px_scram_result_t r =
            px_scram_server_first(&a->scram, (const char *)data.p, data.n, out, sizeof(out));
        if (r != PX_SCRAM_OK) {
            px_client_fail(c, PX_CLOSE_PROTOCOL_ERROR, "08P01", "malformed SCRAM message");
            return;
        }
        px_sender_t snd;
        px_sender_init(&snd, &c->io);
        px_wbuf_t wb = px_sender_wbuf(&snd);
        px_build_auth(&wb, PX_AUTH_SASL_CONTINUE, out, strlen(out));
        a->step = PX_AUTH_STEP_SASL_FINAL;
        if (!px_sender_commit(&snd, &wb) || px_sender_flush(&snd) != 0)
            px_client_close(c, PX_CLOSE_CLIENT_WRITE_ERROR);
        return;
    }
    case PX_AUTH_STEP_SASL_FINAL: {
        char out[512];
        px_scram_result_t r =
            px_scram_server_final(&a->scram, (const char *)body.p, body.n, out, sizeof(out));
        if (r == PX_SCRAM_FAIL_PROTOCOL) {
            px_client_fail(c, PX_CLOSE_PROTOCOL_ERROR, "08P01", "malformed SCRAM message");
            return;
        }
        if (r != PX_SCRAM_OK || !a->user_known) {
            auth_fail(c);
            return;
        }
        px_sender_t snd;
        px_sender_init(&snd, &c->io);
        px_wbuf_t wb = px_sender_wbuf(&snd);
        px_build_auth(&wb, PX_AUTH_SASL_FINAL, out, strlen(out));
        if (!px_sender_commit(&snd, &wb) || px_sender_flush(&snd) != 0) {
            px_client_close(c, PX_CLOSE_CLIENT_WRITE_ERROR);
            return;
        }
        auth_ok(c);
        return;
    }
    default:
        px_client_fail(c, PX_CLOSE_PROTOCOL_ERROR, "08P01", "unexpected password message");
        return;
    }
}

static bool span_is(px_span_t s, const char *lit)
{
    size_t n = strlen(lit);
    return s.n == n && memcmp(s.p, lit, n) == 0;
}

/* Returns false when the session was failed. */
static bool handle_startup(px_client_t *c, const px_startup_t *st)
{
    px_worker_t *w = c->io.w;
    px_config_t *cfg = px_worker_cfg(w);
    px_span_t unknown[PX_STARTUP_MAX_PARAMS];
    int n_unknown = 0;
    px_span_t user = {0}, db = {0};
    for (int i = 0; i < st->n_params; i++) {
        const px_startup_param_t *p = &st->params[i];
        if (span_is(p->name, "user"))
            user = p->value;
        else if (span_is(p->name, "database"))
            db = p->value;
        else if (span_is(p->name, "replication")) {
            if (!span_is(p->value, "false") && !span_is(p->value, "0") &&
                !span_is(p->value, "off") && !span_is(p->value, "no")) {
                px_client_fail(c, PX_CLOSE_PROTOCOL_ERROR, "08P01",
                               "replication connections are not supported by the proxy");
                return false;
            }
        } else if (p->name.n > 5 && memcmp(p->name.p, "_pq_.", 5) == 0) {
            unknown[n_unknown++] = p->name;
        } else if (span_is(p->name, "options")) {
            if (!px_params_parse_options(&c->params, (const char *)p->value.p, p->value.n)) {
                px_client_fail(c, PX_CLOSE_PROTOCOL_ERROR, "08P01",
                               "invalid startup options: only -c name=value and --name=value "
                               "are supported");
                return false;
            }
        } else {
            if (!px_params_set(&c->params, (const char *)p->name.p, p->name.n,
                               (const char *)p->value.p, p->value.n)) {
                px_client_fail(c, PX_CLOSE_PROTOCOL_ERROR, "08P01", "invalid startup parameter");
                return false;
            }
        }
    }
    if (user.n == 0 || user.n >= PX_AUTH_NAME_MAX || memchr(user.p, 0, user.n)) {
        px_client_fail(c, PX_CLOSE_PROTOCOL_ERROR, "28000",
                       "no PostgreSQL user name specified in startup packet");
        return false;
    }
    c->user = span_dup(user);
    if (db.n >= PX_AUTH_NAME_MAX) {
        px_client_fail(c, PX_CLOSE_PROTOCOL_ERROR, "08P01", "database name too long");
        return false;
    }
    c->database =
        db.n ? span_dup(db) : (cfg->postgres_db ? strdup(cfg->postgres_db) : span_dup(user));
    if (!c->user || !c->database) {
        px_client_fail(c, PX_CLOSE_INTERNAL, "53200", "out of memory");
        return false;
    }
    if (st->proto_minor > 0 || n_unknown > 0) {
        px_sender_t snd;
        px_sender_init(&snd, &c->io);
        px_wbuf_t wb = px_sender_wbuf(&snd);
        px_build_negotiate_version(&wb, 0, unknown, n_unknown);
        if (!px_sender_commit(&snd, &wb) || px_sender_flush(&snd) != 0) {
            px_client_close(c, PX_CLOSE_CLIENT_WRITE_ERROR);
            return false;
        }
    }
    begin_auth(c);
    return c->state != PX_CLIENT_CLOSING;
}

/* ---- query phase ----------------------------------------------------------- */

static bool frontend_type_ok(uint8_t t)
{
    switch (t) {
    case 'B':
    case 'C':
    case 'd':
    case 'c':
    case 'f':
    case 'D':
    case 'E':
    case 'H':
    case 'F':
    case 'P':
    case 'p':
    case 'Q':
    case 'S':
    case 'X':
        return true;
    default:
        return false;
    }
}

/*
 * A FunctionCall (the protocol's fast path, by function OID) of one of the
 * built-in functions whose effect outlives the transaction, as the text scan
 * finds them in SQL: set_config, setseed, the session-level advisory locks,
 * lo_open. An OID not yet arrived counts as one.
 */
static bool function_call_keeps_state(px_span_t body)
{
    static const uint32_t oids[] = {
        2078,                   /* set_config */
        1599,                   /* setseed */
        2880, 2881, 2882, 2883, /* pg_[try_]advisory_lock[_shared](bigint) */
        2886, 2887, 2888, 2889, /* pg_[try_]advisory_lock[_shared](int, int) */
        952,                    /* lo_open */
    };
    if (body.n < 4)
        return true;
    uint32_t oid = (uint32_t)body.p[0] << 24 | (uint32_t)body.p[1] << 16 |
                   (uint32_t)body.p[2] << 8 | body.p[3];
    for (size_t i = 0; i < sizeof(oids) / sizeof(oids[0]); i++)
        if (oids[i] == oid)
            return true;
    return false;
}

static void pin(px_client_t *c, const char *why)
{
    if (c->pinned)
        return;
    c->pinned = true;
    c->pool->n_pinned++;
    PX_STAT_INC(c->io.w, pins);
    CLOG(PX_LOG_INFO, c, "pinned to its server connection until it disconnects: %s", why);
}

bool px_client_between_transactions(px_client_t *c)
{
    switch (c->state) {
    case PX_CLIENT_STARTUP:
    case PX_CLIENT_AUTH:
    case PX_CLIENT_WELCOME:
    case PX_CLIENT_IDLE:
    case PX_CLIENT_WAITING:
        return true;
    case PX_CLIENT_ACTIVE: {
        px_server_t *s = c->server;
        return s && s->fifo.count == 0 && c->tx_status == 'I' && !c->unsynced && !c->io.pass_left &&
               !c->in_copy_in;
    }
    default:
        return false;
    }
}

void px_client_resume(px_client_t *c)
{
    if (c->state == PX_CLIENT_CLOSING)
        return;
    if (c->io.paused) {
        c->io.paused = false;
        px_client_process(c);
        /* plaintext TLS still holds arrives with no socket event */
        if (c->io.tls && c->state != PX_CLIENT_CLOSING && px_tls_read_pending(c->io.tls))
            px_io_tls_pump(&c->io);
    }
}

/* "currval" or "lastval" anywhere (any case): one pass, on every transaction. */
static bool mentions_sequence_state(const char *sql, size_t n)
{
    if (!memchr(sql, 'v', n) && !memchr(sql, 'V', n))
        return false;
    for (size_t i = 4; i + 2 < n; i++) {
        if ((sql[i] | 0x20) != 'v' || (sql[i + 1] | 0x20) != 'a' || (sql[i + 2] | 0x20) != 'l')
            continue;
        char w[4];
        for (int k = 0; k < 4; k++)
            w[k] = (char)(sql[i - 4 + k] | 0x20);
        if (memcmp(w, "curr", 4) == 0 || memcmp(w, "last", 4) == 0)
            return true;
    }
    return false;
}

/* Whether the first message of a transaction reads the session's sequence
 * state (currval(), lastval()): a Query or Parse whose text mentions them, or
 * a Bind of a statement whose text does. */
static bool reads_sequence_state(const px_client_t *c, uint8_t type, px_span_t body)
{
    px_span_t sql, stmt, portal;
    int np;
    if (type == 'Q')
        return px_codec_parse_query(body, &sql) &&
               mentions_sequence_state((const char *)sql.p, sql.n);
    if (type == 'P')
        return px_codec_parse_parse(body, &stmt, &sql, &np) &&
               mentions_sequence_state((const char *)sql.p, sql.n);
    if (type != 'B' || !px_codec_parse_bind_names(body, &portal, &stmt))
        return false;
    const px_stmt_t *st =
        stmt.n > 0 ? px_stmt_map_get(&c->stmts, (const char *)stmt.p, stmt.n) : c->unnamed;
    if (!st)
        return false;
    return mentions_sequence_state((const char *)st->rest,
                                   strnlen((const char *)st->rest, st->rest_len));
}

/* Longest SET/RESET text the proxy sends to bring a connection to a client's
 * settings (each value is at most 4 KiB, names 63 bytes). */
#define PX_PARAMS_SQL_MAX (256u * 1024u)

void px_client_on_server(px_client_t *c, px_server_t *s)
{
    px_worker_t *w = c->io.w;
    c->server = s;
    s->client = c;
    s->cancel_deferred = false;
    c->unnamed_here = false; /* another client's, or none */
    px_client_set_state(c, PX_CLIENT_ACTIVE);
    uint64_t waited = px_now(w) - c->wait_start;
    px_metrics_observe_pool_wait(w->index, (double)waited / 1000.0);
    /* what brings the connection to the client's state, in one write */
    px_sender_t snd;
    px_sender_init(&snd, &s->io);
    bool sent = true;
    if (c->params.hash != s->applied.hash || c->params.count != s->applied.count ||
        s->params_unknown) {
        if (s->applied.count > 0 || s->params_unknown) {
            /* another client's settings go first, in a statement of their
             * own: should one of this client's values be refused, the
             * statement setting them rolls back whole and leaves the
             * connection's defaults, never the last client's values */
            sent = px_server_inject(s, &snd, "RESET ALL", PX_REQ_SKIP_SET);
            px_params_free(&s->applied);
            s->params_unknown = false;
        }
        char small[8192], *sql = small, *big = NULL;
        bool overflow;
        size_t n = px_params_diff_sql(&s->applied, &c->params, sql, sizeof(small), &overflow);
        if (overflow && (big = malloc(PX_PARAMS_SQL_MAX)) != NULL) {
            /* many or long settings: a bigger buffer, once */
            sql = big;
            n = px_params_diff_sql(&s->applied, &c->params, sql, PX_PARAMS_SQL_MAX, &overflow);
        }
        if (overflow) {
            /* differs but did not fit: never record settings as applied
             * that were not sent */
            free(big);
            s->params_unknown = true; /* the RESET ALL may not have gone */
            px_sender_discard(&snd);
            px_client_fail(c, PX_CLOSE_INTERNAL, "54000",
                           "startup parameters too long to apply on a pooled connection");
            return;
        }
        sent = sent && (n == 0 || px_server_inject(s, &snd, sql, PX_REQ_SKIP_SET)); /* copies */
        free(big);
        if (sent && !px_params_copy(&s->applied, &c->params)) {
            s->params_unknown = true;
            px_sender_discard(&snd);
            px_client_fail(c, PX_CLOSE_INTERNAL, "53200", "out of memory");
            return;
        }
    }
    if (c->seq_want && s->seq_owner != 0 &&
        (s->seq_owner != c->serial || s->serial != c->wr_server)) {
        /* the transaction reads currval()/lastval(), and the sequence state
         * here is another client's (or mixed), or this client's own from
         * before its last write elsewhere: PostgreSQL's "not yet defined in
         * this session" beats a value that is not the client's latest */
        sent = sent && px_server_inject(s, &snd, "DISCARD SEQUENCES", PX_REQ_SKIP_QUERY);
        s->seq_owner = 0;
    }
    c->seq_want = false;
    if (!sent || px_sender_flush(&snd) != 0) {
        px_sender_discard(&snd);
        px_client_fail(c, PX_CLOSE_SERVER_LOST, "08006", "could not send to the server");
        return;
    }
    px_client_process(c);
}

/* Whether the client's unnamed statement is a SET or RESET the proxy would
 * carry. */
static bool unnamed_is_set(const px_client_t *c)
{
    if (!c->unnamed)
        return false;
    const char *sql = (const char *)c->unnamed->rest;
    px_set_stmt_t st;
    return px_sqlscan_parse_set(sql, strnlen(sql, c->unnamed->rest_len), &st);
}

/* Whether a Bind (header at @p p, @p avail bytes here) names a statement,
 * i.e. must be seen whole to be renamed. True when the names are not all
 * here yet: then it is kept whole, which the message cap bounds. */
static bool bind_names_statement(const uint8_t *p, size_t avail)
{
    const uint8_t *b = p + PX_MSG_HDR_LEN, *e = p + avail;
    const uint8_t *z = b < e ? memchr(b, 0, (size_t)(e - b)) : NULL;
    if (!z || z + 1 >= e)
        return true;
    return z[1] != 0;
}

/* ---- query phase: one message --------------------------------------------- */

typedef enum msg_result {
    MSG_FORWARD = 0, /* send the message as it is (it may be streamed) */
    MSG_CONSUMED,    /* handled: rewritten, answered or dropped */
    MSG_FAILED,      /* the session was failed */
    MSG_BROKEN,      /* the server connection cannot be written */
} msg_result_t;

/*
 * The unnamed statement under transaction pooling: drivers such as lib/pq
 * parse it in one unit (Parse, Describe, Sync) and bind it in the next, which
 * may run on another server connection, where the unnamed statement is
 * another client's or none. The proxy keeps each client's unnamed statement;
 * a Bind or Describe of it on a connection where the client did not parse it
 * parses it there again first (unnamed_here below).
 */
static void forget_unnamed(px_client_t *c)
{
    free(c->unnamed);
    c->unnamed = NULL;
    c->unnamed_here = false;
}

bool px_client_remember_unnamed(px_client_t *c, const uint8_t *rest, size_t rest_len, bool here)
{
    forget_unnamed(c);
    c->unnamed_here = here;
    if (rest_len > PX_UNNAMED_KEEP_MAX)
        return true; /* not kept: bound elsewhere it is refused (26000), never another's */
    px_stmt_key_t none = {0, 0}; /* re-parsed as the unnamed statement, never by content */
    c->unnamed = px_stmt_new("", 0, rest, rest_len, none);
    return c->unnamed != NULL;
}

/* Make sure server connection @p s has client statement @p st prepared
 * under its content name, injecting a Parse (and a Close for an evicted
 * statement) ahead of what follows. */
static msg_result_t ensure_stmt(px_server_t *s, const px_stmt_t *st, px_sender_t *to_server)
{
    if (!s->stmts && !(s->stmts = px_stmt_set_new()))
        return MSG_BROKEN;
    if (px_stmt_set_has(s->stmts, st->key))
        return MSG_FORWARD;
    px_stmt_key_t evicted;
    bool had;
    px_stmt_set_add(s->stmts, st->key, &evicted, &had);
    if (had && !px_server_inject_close(s, to_server, evicted))
        return MSG_BROKEN;
    if (!px_server_inject_close(s, to_server, st->key) ||
        !px_server_inject_parse(s, to_server, st->key, st->rest, st->rest_len))
        return MSG_BROKEN;
    return MSG_FORWARD;
}

/*
 * A Bind of a client statement whose result shape the client knows, on a
 * connection that does not have it yet: prepare it here and learn its shape
 * before the Bind goes out, so a statement whose columns changed since the
 * client described it is refused (see handle_msg) instead of returning rows
 * the client would decode with its old description. 1: wait for the answer;
 * 0: go on; -1: the server connection is broken.
 */
static int shape_first(px_client_t *c, px_server_t *s, px_span_t body, px_sender_t *to_server)
{
    px_span_t portal, stmt;
    if (s->shape_wait)
        return 1;
    if (px_worker_cfg(c->io.w)->pool_mode != PX_POOL_MODE_TRANSACTION ||
        !px_codec_parse_bind_names(body, &portal, &stmt) || stmt.n == 0)
        return 0;
    const px_stmt_t *st = px_stmt_map_get(&c->stmts, (const char *)stmt.p, stmt.n);
    if (!st || !st->shape || (s->stmts && px_stmt_set_has(s->stmts, st->key)))
        return 0;
    if (ensure_stmt(s, st, to_server) != MSG_FORWARD ||
        !px_server_inject_describe(s, to_server, st->key))
        return -1;
    s->shape_wait = true;
    return 1;
}

/*
 * A Parse that starts a batch, of a name an earlier batch of the client is
 * still preparing: that Parse's fate decides what this one means (42P05, or
 * a statement of its own when the earlier batch failed and the name is
 * free), so it waits for the answer. Parsed as a taken name before then, its
 * text went out under the earlier text's server-side name, which the server
 * did not have: the statement ran unseen (an advisory lock, unpinned).
 * Inside one batch there is nothing to wait for: the earlier Parse either
 * succeeded or the batch is being skipped.
 */
static bool parse_waits(const px_client_t *c, const px_server_t *s, px_span_t body)
{
    px_span_t stmt, sql;
    int nparams;
    if (c->unsynced || s->fifo.count == 0 ||
        px_worker_cfg(c->io.w)->pool_mode != PX_POOL_MODE_TRANSACTION ||
        !px_codec_parse_parse(body, &stmt, &sql, &nparams) || stmt.n == 0)
        return false;
    const px_stmt_t *st = px_stmt_map_get(&c->stmts, (const char *)stmt.p, stmt.n);
    return st && !st->confirmed;
}

/* Queue a reply the proxy makes up: now if nothing is outstanding, else in
 * its place behind the replies still to come. */
static msg_result_t synth(px_server_t *s, px_req_kind_t kind, px_sender_t *to_client)
{
    if (!px_fifo_push(&s->fifo, kind, NULL))
        return MSG_BROKEN;
    if (s->fifo.count == 1 && !px_server_drain_synth(s, to_client))
        return MSG_BROKEN;
    return MSG_CONSUMED;
}

/* An error the proxy raises in an extended batch, in its place among the
 * replies; the rest of the batch is skipped up to Sync, as PostgreSQL does.
 * @p err is "sqlstate\0message\0routine" and its NUL, @p len bytes in all. */
static msg_result_t batch_error(px_client_t *c, px_server_t *s, px_sender_t *to_client,
                                const char *err, size_t len)
{
    free(c->synth_error);
    c->synth_error = malloc(len);
    if (c->synth_error)
        memcpy(c->synth_error, err, len);
    c->skip_till_sync = true;
    return synth(s, PX_REQ_SYNTH_ERROR, to_client);
}

/* A Bind or Describe of an unnamed statement the client does not have. */
static msg_result_t no_unnamed(px_client_t *c, px_server_t *s, px_sender_t *to_client)
{
    static const char e[] = "26000\0unnamed prepared statement does not exist\0exec_bind_message";
    return batch_error(c, s, to_client, e, sizeof(e));
}

/* A Bind or Describe of the unnamed statement on a connection where the
 * client did not parse it (another server connection, or a cached answer):
 * parse it here first, as the client last did, and forward the message. */
static msg_result_t unnamed_here(px_client_t *c, px_server_t *s, px_sender_t *to_server,
                                 px_sender_t *to_client)
{
    if (!c->unnamed)
        return no_unnamed(c, s, to_client);
    if (!px_server_inject_parse_unnamed(s, to_server, c->unnamed->rest, c->unnamed->rest_len))
        return MSG_BROKEN;
    c->unnamed_here = true;
    return MSG_FORWARD;
}

/* A client's Describe of its statement (@p key, named by @p name_hash) is
 * outstanding: its answer tells the client the statement's shape. */
static msg_result_t describe_pushed(px_server_t *s, const px_stmt_key_t *key, uint32_t name_hash)
{
    if (!px_fifo_push(&s->fifo, PX_REQ_DESCRIBE, key))
        return MSG_BROKEN;
    px_fifo_at(&s->fifo, s->fifo.count - 1)->name_hash = name_hash;
    return MSG_FORWARD;
}

/* Write @p type message: name replaced by the server-side name of @p key,
 * with @p before (kind byte / portal) and @p after copied around it. */
static msg_result_t rewrite(px_sender_t *to_server, uint8_t type, const uint8_t *before,
                            size_t before_len, px_stmt_key_t key, const uint8_t *after,
                            size_t after_len)
{
    char name[PX_STMT_NAME_LEN];
    px_stmt_name(key, name);
    size_t nl = strlen(name) + 1;
    size_t total = PX_MSG_HDR_LEN + before_len + nl + after_len;
    uint8_t *p = px_sender_alloc(to_server, total);
    if (!p)
        return MSG_BROKEN;
    px_wbuf_t wb = px_wbuf_make(p, total);
    px_wbuf_begin(&wb, type);
    px_wbuf_put_bytes(&wb, before, before_len);
    px_wbuf_put_bytes(&wb, name, nl);
    px_wbuf_put_bytes(&wb, after, after_len);
    px_wbuf_end(&wb);
    if (wb.failed || !px_sender_span(to_server, p, wb.len))
        return MSG_BROKEN;
    return MSG_CONSUMED;
}

/* An unnamed Parse with its query text replaced. */
static msg_result_t rewrite_parse_text(px_sender_t *to_server, const char *q, size_t qlen,
                                       const uint8_t *after, size_t after_len)
{
    size_t total = PX_MSG_HDR_LEN + 1 + qlen + 1 + after_len;
    uint8_t *p = px_sender_alloc(to_server, total);
    if (!p)
        return MSG_BROKEN;
    px_wbuf_t wb = px_wbuf_make(p, total);
    px_wbuf_begin(&wb, 'P');
    px_wbuf_put_byte(&wb, 0);
    px_wbuf_put_bytes(&wb, q, qlen);
    px_wbuf_put_byte(&wb, 0);
    px_wbuf_put_bytes(&wb, after, after_len);
    px_wbuf_end(&wb);
    if (wb.failed || !px_sender_span(to_server, p, wb.len))
        return MSG_BROKEN;
    return MSG_CONSUMED;
}

/* The statements of a simple Query one by one: split at ';' outside '...'
 * and "..." (dollar quotes are not followed), trimmed, empty ones skipped.
 * Once stmt_next() is false, a nonzero quote means one was left open. */
typedef struct stmt_iter {
    px_span_t sql;
    size_t pos;
    char quote;
} stmt_iter_t;

static bool stmt_next(stmt_iter_t *it, px_span_t *part)
{
    const char *t = (const char *)it->sql.p;
    size_t n = it->sql.n;
    while (it->pos <= n) {
        size_t start = it->pos, i = start;
        for (; i < n; i++) {
            char ch = t[i];
            if (it->quote) {
                if (ch == it->quote)
                    it->quote = 0;
            } else if (ch == '\'' || ch == '"') {
                it->quote = ch;
            } else if (ch == ';') {
                break;
            }
        }
        it->pos = i + 1;
        size_t a = start, b = i;
        while (a < b && isspace((unsigned char)t[a]))
            a++;
        while (b > a && isspace((unsigned char)t[b - 1]))
            b--;
        if (a < b) {
            *part = (px_span_t){it->sql.p + a, b - a};
            return true;
        }
    }
    return false;
}

/* "DEALLOCATE [PREPARE] name|ALL" as a whole query, for a statement the
 * proxy keeps: answered here, since the server knows it by another name. */
static bool is_dealloc(px_client_t *c, px_span_t sql, bool *all, char *name, size_t cap)
{
    const char *p = (const char *)sql.p, *e = p + sql.n;
    while (p < e && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    while (e > p &&
           (e[-1] == ' ' || e[-1] == ';' || e[-1] == '\n' || e[-1] == '\t' || e[-1] == '\r'))
        e--;
    if (e - p < 11 || (*p != 'd' && *p != 'D') || strncasecmp(p, "deallocate", 10) != 0 ||
        (p[10] != ' ' && p[10] != '\t'))
        return false;
    p += 11;
    while (p < e && (*p == ' ' || *p == '\t'))
        p++;
    if (e - p > 8 && strncasecmp(p, "prepare", 7) == 0 && (p[7] == ' ' || p[7] == '\t')) {
        p += 8;
        while (p < e && (*p == ' ' || *p == '\t'))
            p++;
    }
    size_t n = (size_t)(e - p);
    if (n == 0 || n >= cap)
        return false;
    for (size_t i = 0; i < n; i++)
        if (p[i] == ' ' || p[i] == ';' || p[i] == '\t')
            return false;
    if (n == 3 && strncasecmp(p, "all", 3) == 0) {
        *all = true;
        return true;
    }
    bool quoted = n >= 2 && p[0] == '"' && p[n - 1] == '"';
    size_t k = 0;
    for (size_t i = quoted ? 1 : 0; i < (quoted ? n - 1 : n); i++)
        name[k++] = quoted ? p[i] : (char)tolower((unsigned char)p[i]);
    name[k] = 0;
    *all = false;
    return true;
}

/* A DEALLOCATE the proxy handles: ALL, or a name the client has prepared
 * through the protocol. */
static bool is_own_dealloc(px_client_t *c, px_span_t sql, bool *all, char *name, size_t cap)
{
    return is_dealloc(c, sql, all, name, cap) &&
           (*all || px_stmt_map_get(&c->stmts, name, strlen(name)) != NULL);
}

/*
 * DEALLOCATE of the client's own statements among several statements of one
 * Query (psqlODBC: "SAVEPOINT s;DEALLOCATE \"_PLAN0x..\";RELEASE s"): those
 * names are forgotten here, so the client can Parse them again; the server,
 * which knows them by other names, answers that DEALLOCATE with 26000.
 */
static void forget_deallocated(px_client_t *c, px_span_t sql)
{
    stmt_iter_t it = {sql, 0, 0};
    px_span_t part;
    while (stmt_next(&it, &part)) {
        bool all;
        char name[128];
        if (is_dealloc(c, part, &all, name, sizeof(name)) && !all)
            px_stmt_map_del(&c->stmts, name, strlen(name));
    }
}

/* A DEALLOCATE of the client's statement @p st (its name @p name) that the
 * server is to run: make sure the server has the statement, forget it on
 * both sides, and write into @p q the DEALLOCATE under the server-side name. */
static msg_result_t dealloc_on_server(px_client_t *c, px_server_t *s, const px_stmt_t *st,
                                      const char *name, px_sender_t *to_server, char q[64],
                                      size_t *qlen)
{
    msg_result_t er = ensure_stmt(s, st, to_server);
    if (er != MSG_FORWARD)
        return er;
    char sname[PX_STMT_NAME_LEN];
    px_stmt_name(st->key, sname);
    *qlen = (size_t)snprintf(q, 64, "DEALLOCATE %s", sname);
    px_stmt_set_del(s->stmts, st->key);
    px_stmt_map_del(&c->stmts, name, strlen(name));
    return MSG_FORWARD;
}

/* A DEALLOCATE of the client's own statements pipelined behind requests
 * still outstanding (the transaction may have failed meanwhile), or inside a
 * transaction (where it counts as the transaction's first query): the server
 * answers it, under the server-side name (or ALL), in its own state. */
static msg_result_t dealloc_pipelined(px_client_t *c, px_server_t *s, bool all, const char *name,
                                      px_sender_t *to_server)
{
    char q[64] = "DEALLOCATE ALL";
    if (all) {
        px_stmt_map_clear(&c->stmts);
        px_stmt_set_clear(s->stmts);
    } else {
        const px_stmt_t *st = px_stmt_map_get(&c->stmts, name, strlen(name));
        size_t ql;
        msg_result_t er = st ? dealloc_on_server(c, s, st, name, to_server, q, &ql) : MSG_BROKEN;
        if (er != MSG_FORWARD)
            return er; /* (is_own_dealloc found it) */
    }
    return px_server_inject(s, to_server, q, PX_REQ_QUERY) ? MSG_CONSUMED : MSG_BROKEN;
}

/* A whole query the proxy answers without a server connection: DEALLOCATE
 * of the client's own protocol-level statements (they live under other
 * names on shared connections). */
static bool answer_locally(px_client_t *c, px_span_t body, px_sender_t *to_client)
{
    px_config_t *cfg = px_worker_cfg(c->io.w);
    px_span_t sql;
    bool all;
    char name[128];
    if (cfg->pool_mode != PX_POOL_MODE_TRANSACTION || c->tx_status != 'I' ||
        !px_codec_parse_query(body, &sql) || !is_own_dealloc(c, sql, &all, name, sizeof(name)) ||
        (all && c->pinned))
        return false;
    if (all)
        px_stmt_map_clear(&c->stmts);
    else
        px_stmt_map_del(&c->stmts, name, strlen(name));
    PX_STAT_INC(c->io.w, queries);
    px_wbuf_t wb = px_sender_wbuf(to_client);
    px_wbuf_begin(&wb, 'C');
    px_wbuf_put_cstr(&wb, all ? "DEALLOCATE ALL" : "DEALLOCATE");
    px_wbuf_end(&wb);
    px_build_ready(&wb, c->tx_status);
    return px_sender_commit(to_client, &wb);
}

/* ---- session settings carried between server connections ----------------------- */

/*
 * A session SET or RESET a client sends in transaction pooling is not a
 * reason to pin it: the proxy notes it, and once the server has run it
 * (CommandComplete "SET"/"RESET") and the transaction it ran in has ended
 * well (ReadyForQuery 'I' after autocommit or COMMIT), adds it to the
 * client's settings, which every server connection the client gets is given
 * as a diff. A ROLLBACK or an error drops what the transaction set, as the
 * server does. Savepoints (which can undo a SET without ending the
 * transaction), RESET of a startup setting and RESET ALL over startup
 * settings still pin.
 */
#define PX_SETS_MAX 8
struct px_client_sets {
    int n;         /* statements noted */
    int confirmed; /* ... that the server has run */
    struct {
        px_set_kind_t kind;
        char name[64];
        char *value; /* PX_PARAM_SQL + the value list as written */
        int wait;    /* ReadyForQuery messages due before its unit's own (pipelining) */
    } item[PX_SETS_MAX];
};

/* ReadyForQuery messages the client will see from its server connection
 * before that of the unit being sent now. */
static int readies_ahead(const px_client_t *c)
{
    const px_server_t *s = c->server;
    int n = 0;
    for (uint32_t i = 0; s && i < s->fifo.count; i++) {
        uint8_t k = px_fifo_at((px_fifo_t *)&s->fifo, i)->kind;
        n += k == PX_REQ_QUERY || k == PX_REQ_FUNC || k == PX_REQ_SYNC;
    }
    return n;
}

/* Forget the noted statements of the unit that just ended or failed (and of
 * its transaction's earlier units): wait == 0, a prefix of the list. */
static int sets_drop_current(struct px_client_sets *ps)
{
    int k = 0;
    while (k < ps->n && ps->item[k].wait == 0)
        free(ps->item[k++].value);
    memmove(&ps->item[0], &ps->item[k], sizeof(ps->item[0]) * (size_t)(ps->n - k));
    ps->n -= k;
    ps->confirmed = ps->confirmed > k ? ps->confirmed - k : 0;
    return k;
}

static void sets_clear(px_client_t *c)
{
    struct px_client_sets *ps = c->sets;
    if (!ps)
        return;
    for (int i = 0; i < ps->n; i++)
        free(ps->item[i].value);
    free(ps);
    c->sets = NULL;
}

/* Note @p st; false when it cannot be carried (then the caller pins). */
static bool sets_note(px_client_t *c, const px_set_stmt_t *st)
{
    struct px_client_sets *ps = c->sets;
    if (!ps && !(ps = c->sets = calloc(1, sizeof(*ps))))
        return false;
    if (ps->n >= PX_SETS_MAX || st->value_len > 4000)
        return false;
    ps->item[ps->n].kind = st->kind;
    strcpy(ps->item[ps->n].name, st->name);
    ps->item[ps->n].value = NULL;
    ps->item[ps->n].wait = readies_ahead(c);
    if (st->kind == PX_SET_VALUE) {
        char *v = malloc(st->value_len + 2);
        if (!v)
            return false;
        v[0] = PX_PARAM_SQL;
        memcpy(v + 1, st->value, st->value_len);
        v[st->value_len + 1] = 0;
        ps->item[ps->n].value = v;
    }
    ps->n++;
    return true;
}

/* Whether @p p (@p n bytes, trimmed) is a SHOW statement: harmless. */
static bool is_show(const char *p, size_t n)
{
    if (n < 5 || strncasecmp(p, "show", 4) != 0 || !isspace((unsigned char)p[4]))
        return false;
    for (size_t i = 5; i < n; i++)
        if (!isalnum((unsigned char)p[i]) && p[i] != '_' && p[i] != '.' && p[i] != '"' &&
            !isspace((unsigned char)p[i]))
            return false;
    return true;
}

static char *restore_sql(px_client_t *c, const px_set_stmt_t *set);

/* A statement of @p sql (split on ';') that is SET LOCAL: its change of a
 * reported setting is undone when the transaction ends. */
static bool has_set_local(px_span_t sql)
{
    stmt_iter_t it = {sql, 0, 0};
    px_span_t part;
    while (stmt_next(&it, &part)) {
        const char *p = (const char *)part.p, *e = p + part.n;
        while (p < e && isspace((unsigned char)*p))
            p++;
        if (e - p < 10 || strncasecmp(p, "set", 3) != 0 || !isspace((unsigned char)p[3]))
            continue;
        p += 4;
        while (p < e && isspace((unsigned char)*p))
            p++;
        if (e - p > 5 && strncasecmp(p, "local", 5) == 0 && isspace((unsigned char)p[5]))
            return true;
    }
    return false;
}

/* Transaction control: BEGIN, COMMIT, ROLLBACK, SAVEPOINT ... (first word). */
static bool is_txn_control(const char *p, size_t n)
{
    static const char *const words[] = {"begin",    "start", "commit",    "end",
                                        "rollback", "abort", "savepoint", "release"};
    while (n > 0 && isspace((unsigned char)*p))
        p++, n--;
    size_t w = 0;
    while (w < n && isalpha((unsigned char)p[w]))
        w++;
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
        if (strlen(words[i]) == w && strncasecmp(p, words[i], w) == 0)
            return true;
    return false;
}

/*
 * A Query of several statements, each a SET or RESET the proxy can carry, a
 * SHOW, or a statement that leaves no session state: what psqlODBC sends at
 * connect ("SET DateStyle = 'ISO';SET extra_float_digits = 2;show
 * transaction_isolation") and what pools send when a connection goes back
 * (asyncpg: "SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET
 * ALL;"). Every SET and RESET is noted, as for one; a RESET must be the last
 * of them, since the startup values it brings back are put back right after
 * the whole Query. False (nothing noted) when any statement is something
 * else, transaction control (its command tag would be counted among the
 * noted ones), or the text has a quote the split cannot follow.
 */
static bool note_set_list(px_client_t *c, px_span_t sql)
{
    px_set_stmt_t sets[PX_SETS_MAX];
    int nsets = 0;
    bool reset = false;
    if (!memchr(sql.p, ';', sql.n))
        return false;
    stmt_iter_t it = {sql, 0, 0};
    px_span_t part;
    while (stmt_next(&it, &part)) {
        const char *t = (const char *)part.p;
        if (is_show(t, part.n))
            continue;
        if (nsets < PX_SETS_MAX && px_sqlscan_parse_set(t, part.n, &sets[nsets])) {
            if (reset)
                return false;
            reset = sets[nsets].kind != PX_SET_VALUE;
            nsets++;
            continue;
        }
        if (is_txn_control(t, part.n) || px_sqlscan_session_state_full(t, part.n))
            return false;
    }
    if (it.quote || nsets == 0)
        return false;
    for (int i = 0; i < nsets; i++)
        if (!sets_note(c, &sets[i]))
            return false; /* the caller pins: what was noted is never applied */
    if (reset && c->tx_status != 'E' && !c->restore)
        c->restore = restore_sql(c, &sets[nsets - 1]);
    return true;
}

/* What in @p sql would leave session state on the server connection, or
 * NULL; a SET the proxy carries (@p set, when the text is one) is noted
 * instead. @p look is false when px_sqlscan_may_matter() ruled the text out. */
static const char *session_state(px_client_t *c, const px_set_stmt_t *set, const uint8_t *sql,
                                 size_t n, bool look)
{
    if (set)
        return sets_note(c, set) ? NULL : "SET";
    if (c->sets && c->sets->n > 0) {
        /* a savepoint could undo a noted SET without ending the transaction */
        px_classify_result_t r;
        px_classify((const char *)sql, n, &r);
        if ((r.flags & PX_CLS_F_HAS_TXN) &&
            (r.txn == PX_TXN_SAVEPOINT || r.txn == PX_TXN_ROLLBACK_TO || r.txn == PX_TXN_RELEASE)) {
            sets_clear(c);
            return "savepoint after a session SET";
        }
    }
    return look ? px_sqlscan_session_state_full((const char *)sql, n) : NULL;
}

/* The noted statements of the current unit (wait == 0) that the server
 * confirmed become the client's settings and leave the list; with
 * @p unit_ended the unit's unconfirmed ones go too (they failed or never
 * ran). False when out of memory. */
static bool sets_apply_done(px_client_t *c, bool unit_ended)
{
    struct px_client_sets *ps = c->sets;
    int done = 0;
    while (done < ps->n && ps->item[done].wait == 0)
        done++;
    bool ok = true;
    /* a SET is kept under PX_PARAM_SQL + name, beside the startup value of
     * the same name (which a RESET brings back) */
    for (int i = 0; i < ps->confirmed && i < done && ok && !c->pinned; i++) {
        char key[66];
        key[0] = PX_PARAM_SQL;
        snprintf(key + 1, sizeof(key) - 1, "%s", ps->item[i].name);
        switch (ps->item[i].kind) {
        case PX_SET_VALUE: {
            const char *v = ps->item[i].value;
            ok = px_params_set(&c->params, key, strlen(key), v, strlen(v));
            break;
        }
        case PX_SET_RESET:
            px_params_del(&c->params, key);
            break;
        case PX_SET_RESET_ALL: {
            /* drop every SET; the startup values stay (and were put back) */
            bool again = true;
            while (again) {
                again = false;
                const char *p = c->params.block, *e = p ? p + c->params.len : NULL;
                while (p && p < e) {
                    const char *v = p + strlen(p) + 1;
                    if (p[0] == PX_PARAM_SQL) {
                        char name[66];
                        snprintf(name, sizeof(name), "%s", p);
                        px_params_del(&c->params, name);
                        again = true;
                        break;
                    }
                    p = v + strlen(v) + 1;
                }
            }
            break;
        }
        default:
            break;
        }
    }
    if (unit_ended) {
        sets_drop_current(ps);
        return ok;
    }
    int k = ps->confirmed < done ? ps->confirmed : done;
    for (int i = 0; i < k; i++)
        free(ps->item[i].value);
    memmove(&ps->item[0], &ps->item[k], sizeof(ps->item[0]) * (size_t)(ps->n - k));
    ps->n -= k;
    ps->confirmed -= k;
    return ok;
}

/* Whether the current unit's own SET or RESET (or RESET ALL, DISCARD ALL) of
 * the setting @p name (any case) explains a report of it. */
static bool sets_pending_for(const px_client_t *c, px_span_t name)
{
    const struct px_client_sets *ps = c->sets;
    for (int i = ps ? ps->n - 1 : -1; i >= 0; i--)
        if (ps->item[i].wait == 0 &&
            (ps->item[i].kind == PX_SET_RESET_ALL ||
             (strlen(ps->item[i].name) == name.n &&
              strncasecmp(ps->item[i].name, (const char *)name.p, name.n) == 0)))
            return true;
    return false;
}

/* The reported settings a session can change (the others, server_version,
 * is_superuser, ..., it cannot, or SET ROLE / SESSION AUTHORIZATION pins). */
static bool reported_setting(px_span_t name)
{
    static const char *const names[] = {"client_encoding",
                                        "application_name",
                                        "DateStyle",
                                        "IntervalStyle",
                                        "TimeZone",
                                        "standard_conforming_strings",
                                        "default_transaction_read_only"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strlen(names[i]) == name.n && strncasecmp(names[i], (const char *)name.p, name.n) == 0)
            return true;
    return false;
}

/*
 * ParameterStatus from the server while the client runs. A SET of DateStyle
 * merges into the value in force ("SET datestyle TO dmy" after "sql" gives
 * "SQL, DMY"), so replaying the text as written elsewhere would lose a part:
 * the value the server reports is what is kept instead.
 */
void px_client_sets_on_param(px_client_t *c, px_span_t body)
{
    px_span_t name, value;
    if (c->pinned || px_worker_cfg(c->io.w)->pool_mode != PX_POOL_MODE_TRANSACTION ||
        !px_codec_parse_param_status(body, &name, &value))
        return;
    if (!(name.n == 9 && strncasecmp((const char *)name.p, "datestyle", 9) == 0)) {
        /* a change the proxy did not see made (set_config() in a function,
         * a procedure): the connection now differs from what the proxy
         * would replay, so it stays with this client (a SET LOCAL's report
         * is undone at the transaction's end) */
        if (reported_setting(name) && !sets_pending_for(c, name) && !c->set_local &&
            !c->sets_reverted)
            pin(c, "a setting changed where the proxy cannot see it (a function)");
        return;
    }
    char lit[200];
    size_t n = 0;
    lit[n++] = PX_PARAM_SQL;
    lit[n++] = '\'';
    for (size_t i = 0; i < value.n; i++) {
        if (n + 4 >= sizeof lit || value.p[i] == 0)
            return;
        if (value.p[i] == '\'')
            lit[n++] = '\'';
        lit[n++] = (char)value.p[i];
    }
    lit[n++] = '\'';
    lit[n] = '\0';
    struct px_client_sets *ps = c->sets;
    for (int i = ps ? ps->n - 1 : -1; i >= 0; i--) {
        if (ps->item[i].wait != 0 || strcmp(ps->item[i].name, "datestyle") != 0)
            continue;
        if (ps->item[i].kind == PX_SET_VALUE) {
            char *v = strdup(lit);
            if (v) {
                free(ps->item[i].value);
                ps->item[i].value = v;
            }
        }
        return; /* the unit's own SET or RESET decides */
    }
    /* already kept (its transaction committed before this report) */
    static const char key[] = {PX_PARAM_SQL, 'd', 'a', 't', 'e', 's', 't', 'y', 'l', 'e', 0};
    if (px_params_get(&c->params, key)) {
        if (!px_params_set(&c->params, key, strlen(key), lit, n))
            pin(c, "out of memory");
    } else if (!c->set_local && !c->sets_reverted) {
        pin(c, "a setting changed where the proxy cannot see it (a function)");
    }
}

void px_client_sets_on_command(px_client_t *c, px_span_t body)
{
    struct px_client_sets *ps = c->sets;
    px_span_t tag;
    if (!ps || !px_codec_parse_command_complete(body, &tag))
        return;
    if ((tag.n == 3 && memcmp(tag.p, "SET", 3) == 0) ||
        (tag.n == 5 && memcmp(tag.p, "RESET", 5) == 0) ||
        (tag.n == 11 && memcmp(tag.p, "DISCARD ALL", 11) == 0)) {
        if (ps->confirmed < ps->n)
            ps->confirmed++;
    } else if (tag.n == 8 && memcmp(tag.p, "ROLLBACK", 8) == 0) {
        sets_drop_current(ps);   /* the transaction's SETs are undone */
        c->sets_reverted = true; /* and reported again as they were */
    } else if (tag.n == 6 && memcmp(tag.p, "COMMIT", 6) == 0) {
        /* they hold now, whatever follows (COMMIT AND CHAIN opens another
         * transaction, whose ROLLBACK must not undo them) */
        if (!sets_apply_done(c, false))
            pin(c, "out of memory");
    }
}

void px_client_sets_ready_skipped(px_client_t *c)
{
    /* a Query, FunctionCall or Sync ahead of noted SETs will get no
     * ReadyForQuery (skipped after an error, or a Sync the server ignores
     * in COPY): one fewer to wait for */
    struct px_client_sets *ps = c->sets;
    for (int i = 0; ps && i < ps->n; i++)
        if (ps->item[i].wait > 0)
            ps->item[i].wait--;
}

void px_client_sets_on_error(px_client_t *c)
{
    c->sets_reverted = true; /* reported again as they were when it ends */
    /* the statement failed, or its transaction will roll back; units
     * pipelined behind it keep theirs */
    if (c->sets)
        sets_drop_current(c->sets);
}

void px_client_sets_on_ready(px_client_t *c, px_server_t *s, uint8_t status)
{
    struct px_client_sets *ps = c->sets;
    if (!ps)
        return;
    /* statements of units pipelined behind this one wait for their own */
    if (status == 'T' || status == 'E') {
        if (status == 'E')
            sets_drop_current(ps);
        for (int i = 0; i < ps->n; i++)
            if (ps->item[i].wait > 0)
                ps->item[i].wait--;
        return;
    }
    bool ok = sets_apply_done(c, true);
    for (int i = 0; i < ps->n; i++)
        ps->item[i].wait--;
    if (ps->n == 0)
        sets_clear(c);
    else if (s->fifo.count <= 1)
        /* noted SETs still waiting for a ReadyForQuery that will not come:
         * what the server ran is no longer known for sure */
        pin(c, "session settings out of step with the server");
    if (c->pinned)
        return;
    /* the server ran them (and the startup values a RESET undid were put
     * back right after it): it has the client's settings now */
    if (!ok || !px_params_copy(&s->applied, &c->params))
        pin(c, "out of memory");
}

/* Exactly DISCARD ALL (any case and spacing, an optional ';'): PostgreSQL
 * refuses it inside a transaction block, so then nothing is dropped. */
static bool is_discard_all(px_span_t sql)
{
    static const char want[] = "discardall";
    size_t k = 0;
    bool semi = false;
    for (size_t i = 0; i < sql.n; i++) {
        unsigned char ch = sql.p[i];
        if (ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r')
            continue;
        if (semi)
            return false;
        if (ch == ';' && k == sizeof(want) - 1) {
            semi = true;
            continue;
        }
        if (k >= sizeof(want) - 1 || (ch | 0x20) != (unsigned char)want[k])
            return false;
        k++;
    }
    return k == sizeof(want) - 1;
}

/* After a client's RESET of a startup setting (or RESET ALL), the server
 * would fall back to its own default: the statement that puts the client's
 * startup values back, sent right behind the client's. Returns a heap
 * string or NULL when nothing needs restoring. */
static char *restore_sql(px_client_t *c, const px_set_stmt_t *set)
{
    if (!set || (set->kind != PX_SET_RESET && set->kind != PX_SET_RESET_ALL))
        return NULL;
    const px_set_stmt_t st = *set;
    px_params_t want = {0};
    const char *p = c->params.block, *e = p ? p + c->params.len : NULL;
    while (p && p < e) {
        const char *v = p + strlen(p) + 1;
        if (p[0] != PX_PARAM_SQL && (st.kind == PX_SET_RESET_ALL || strcmp(p, st.name) == 0) &&
            !px_params_set(&want, p, strlen(p), v, strlen(v))) {
            px_params_free(&want);
            return NULL;
        }
        p = v + strlen(v) + 1;
    }
    char *out = NULL;
    if (want.count > 0 && (out = malloc(8192))) {
        px_params_t none = {0};
        if (px_params_diff_sql(&none, &want, out, 8192, NULL) == 0) {
            free(out);
            out = NULL;
        }
    }
    px_params_free(&want);
    return out;
}

/* ---- per-query digests ----------------------------------------------------------- */

static uint64_t tag_rows(px_span_t body)
{
    px_span_t tag;
    return px_codec_parse_command_complete(body, &tag) ? px_codec_tag_rows(tag) : 0;
}

void px_client_digest_done(px_client_t *c, px_server_t *s, const px_span_t *tag_body)
{
    uint64_t id = c->digest_id;
    c->digest_id = 0; /* one record per statement sent (a multi-statement Query: its first) */
    if (!id || !c->q_start_ns)
        return;
    double secs = (double)(px_reply_ns(c->io.w) - c->q_start_ns) / 1e9;
    px_digest_record(id, secs, tag_body ? tag_rows(*tag_body) : 0,
                     s->pool->is_primary ? PX_DIGEST_ROUTE_PRIMARY : PX_DIGEST_ROUTE_REPLICA, false,
                     tag_body == NULL);
}

/* ---- a replica read retried elsewhere ------------------------------------------ */

/*
 * A read-only unit in autocommit sent to a replica is kept, as the client
 * sent it, until the first byte of its reply reaches the client. If the
 * replica connection dies, or the replica answers with an error that says it
 * cannot serve (shutdown, crash, recovery conflict, connection failure)
 * before that, the unit is sent again, once, to the primary: the client
 * never notices. Units with a named Parse (their statement map would change
 * twice) or larger than PX_RETRY_MAX are not kept.
 */
#define PX_RETRY_MAX (64 * 1024)
struct px_retry {
    uint32_t len, cap;
    uint8_t buf[];
};

void px_client_retry_disarm(px_client_t *c)
{
    free(c->retry);
    c->retry = NULL;
}

static void retry_arm(px_client_t *c, px_route_verdict_t verdict)
{
    px_client_retry_disarm(c);
    if (c->retried) {
        c->retried = false; /* this unit had its one retry */
        return;
    }
    if (verdict != PX_ROUTE_REPLICA || c->tx_status != 'I' || c->pinned)
        return;
    c->retry = malloc(sizeof(*c->retry) + 4096);
    if (c->retry) {
        c->retry->len = 0;
        c->retry->cap = 4096;
    }
}

/* Keep a copy of the client's message at @p p (before it is handled). */
static void retry_keep(px_client_t *c, const px_msg_hdr_t *hdr, const uint8_t *p, size_t avail)
{
    struct px_retry *r = c->retry;
    uint32_t whole = PX_MSG_HDR_LEN + hdr->body_len;
    if (c->io.pass_left || avail < whole || r->len + whole > PX_RETRY_MAX ||
        (hdr->type == 'P' && p[PX_MSG_HDR_LEN] != 0) || hdr->type == 'X') {
        px_client_retry_disarm(c);
        return;
    }
    if (r->len + whole > r->cap) {
        uint32_t cap = r->cap * 2;
        while (cap < r->len + whole)
            cap *= 2;
        struct px_retry *nr = realloc(r, sizeof(*r) + cap);
        if (!nr) {
            px_client_retry_disarm(c);
            return;
        }
        r = c->retry = nr;
        r->cap = cap;
    }
    memcpy(r->buf + r->len, p, whole);
    r->len += whole;
}

bool px_client_retry_error(px_client_t *c, px_span_t body)
{
    px_error_fields_t ef;
    if (!c->retry || !px_codec_parse_error(body, &ef) || ef.sqlstate.n != 5)
        return false;
    const char *st = (const char *)ef.sqlstate.p;
    /* 57P01 admin shutdown, 57P02 crash shutdown, 57P03 cannot connect now,
     * 08xxx connection exceptions, 40001 conflict with recovery */
    if (memcmp(st, "57P0", 4) == 0 || memcmp(st, "08", 2) == 0 || memcmp(st, "40001", 5) == 0)
        return true;
    /* a replica that has not replayed DDL or a GRANT yet (made on the
     * primary directly, or by another instance): a missing table, column,
     * function, type or schema, or no privilege. The primary's answer is the
     * one PostgreSQL gives. */
    static const char lag[][6] = {"42P01", "42703", "42883", "42704", "3F000", "42501"};
    for (size_t i = 0; i < sizeof(lag) / sizeof(lag[0]); i++)
        if (memcmp(st, lag[i], 5) == 0)
            return true;
    return false;
}

bool px_client_retry(px_client_t *c, px_server_t *s, const char *why)
{
    struct px_retry *r = c->retry;
    px_config_t *cfg = px_worker_cfg(c->io.w);
    if (!r || c->state == PX_CLIENT_CLOSING || r->len == 0)
        return false;
    c->retry = NULL;
    /* the unit first, then whatever the client sent after it */
    px_iobuf_t *in = c->io.in;
    uint32_t rest = in ? in->wpos - in->rpos : 0;
    px_iobuf_t *nb = px_iobuf_get(c->io.w, r->len + rest);
    if (!nb) {
        free(r);
        return false;
    }
    memcpy(nb->data, r->buf, r->len);
    if (rest)
        memcpy(nb->data + r->len, in->data + in->rpos, rest);
    nb->rpos = 0;
    nb->wpos = r->len + rest;
    free(r);
    if (in)
        px_iobuf_put(c->io.w, in);
    c->io.in = nb;
    c->io.pass_left = 0;
    c->unsynced = false;
    c->batch_bound = false;
    c->skip_till_sync = false;
    c->in_copy_in = false;
    c->unit_done = false;
    c->cache_seen = true; /* a fill may be armed: it goes on with the new server */
    c->retried = true;
    c->avoid_replica = -1;
    for (int i = 0; i < cfg->n_replicas; i++)
        if (cfg->replicas[i].port == s->pool->port &&
            strcmp(cfg->replicas[i].host, s->pool->host) == 0)
            c->avoid_replica = (int8_t)i;
    CLOG(PX_LOG_INFO, c, "replica %s:%u failed before answering (%s): the read goes elsewhere",
         s->pool->host, s->pool->port, why);
    px_client_set_state(c, PX_CLIENT_IDLE);
    px_cacheflow_defer(c);
    return true;
}

static msg_result_t handle_msg(px_client_t *c, px_server_t *s, const px_msg_hdr_t *hdr,
                               px_span_t body, const uint8_t *msg, size_t avail,
                               px_sender_t *to_server, px_sender_t *to_client)
{
    px_worker_t *w = c->io.w;
    px_config_t *cfg = px_worker_cfg(w);
    bool txn_mode = cfg->pool_mode == PX_POOL_MODE_TRANSACTION;
    (void)msg;
    (void)avail;

    /* after an error in an extended-query batch the server skips everything
     * up to Sync: so does the proxy, without bookkeeping */
    if (c->skip_till_sync) {
        if (hdr->type != 'S')
            return MSG_CONSUMED;
        c->skip_till_sync = false;
    }
    /* after an error in an extended batch the server discards everything up
     * to Sync, a Query or FunctionCall too */
    if (s->ignore_till_sync && hdr->type != 'S' && hdr->type != 'H' && hdr->type != 'd' &&
        hdr->type != 'c' && hdr->type != 'f') {
        c->unsynced = true;
        return MSG_CONSUMED;
    }

    switch (hdr->type) {
    case 'Q': {
        px_span_t sql;
        if (!px_codec_parse_query(body, &sql)) {
            px_client_fail(c, PX_CLOSE_PROTOCOL_ERROR, "08P01", "malformed Query message");
            return MSG_FAILED;
        }
        if (c->batch_bound) {
            /* PostgreSQL 15 runs a Query between a Bind and its Sync, and a
             * backend can crash on what follows; no driver sends that */
            px_client_fail(c, PX_CLOSE_PROTOCOL_ERROR, "08P01",
                           "Query message inside an extended-query batch: send Sync first");
            return MSG_FAILED;
        }
        PX_STAT_INC(w, queries);
        c->copy_end_sent = false;
        forget_unnamed(c); /* a simple Query destroys the unnamed statement */
        c->digest_id = px_digest_id((const char *)sql.p, sql.n);
        px_set_stmt_t set_st;
        const px_set_stmt_t *set =
            px_sqlscan_parse_set((const char *)sql.p, sql.n, &set_st) ? &set_st : NULL;
        if (!set && txn_mode && c->tx_status == 'I' && is_discard_all(sql)) {
            /* what pools send when a connection goes back: its settings part
             * is RESET ALL (its statements part is below); inside a
             * transaction the server refuses it and the note goes */
            memset(&set_st, 0, sizeof(set_st));
            set_st.kind = PX_SET_RESET_ALL;
            set = &set_st;
        }
        if (c->tx_status != 'E' && !c->restore)
            c->restore = restore_sql(c, set);
        bool look = txn_mode && px_sqlscan_may_matter((const char *)sql.p, sql.n);
        if (look && has_set_local(sql))
            c->set_local = true;
        if (txn_mode) {
            bool all;
            char name[128];
            if (c->tx_status != 'E' && is_own_dealloc(c, sql, &all, name, sizeof(name)) &&
                !(all && c->pinned)) {
                /* the client's protocol-level statements live under other
                 * names on shared connections: forget them here */
                if (s->fifo.count > 0 || c->tx_status != 'I')
                    return dealloc_pipelined(c, s, all, name, to_server);
                if (all)
                    px_stmt_map_clear(&c->stmts);
                else
                    px_stmt_map_del(&c->stmts, name, strlen(name));
                return synth(s, all ? PX_REQ_SYNTH_DEALLOC_ALL : PX_REQ_SYNTH_DEALLOC, to_client);
            }
            const char *why = c->pinned || (!set && look && note_set_list(c, sql))
                                  ? NULL
                                  : session_state(c, set, sql.p, sql.n, look);
            if (why)
                pin(c, why);
            if (look && c->tx_status != 'E' &&
                px_sqlscan_drops_all_statements((const char *)sql.p, sql.n) &&
                !(c->tx_status == 'T' && is_discard_all(sql))) {
                /* DISCARD ALL / DEALLOCATE ALL on the server: from now on the
                 * proxy does not know which statements the connection has
                 * (every Parse it sends is preceded by a Close) */
                px_stmt_map_clear(&c->stmts);
                px_stmt_set_clear(s->stmts);
            } else if (look && c->tx_status != 'E' &&
                       px_sqlscan_drops_statements((const char *)sql.p, sql.n)) {
                forget_deallocated(c, sql);
            }
        }
        return px_fifo_push(&s->fifo, PX_REQ_QUERY, NULL) ? MSG_FORWARD : MSG_BROKEN;
    }
    case 'P': {
        px_span_t stmt, sql;
        int nparams;
        if (!px_codec_parse_parse(body, &stmt, &sql, &nparams)) {
            px_client_fail(c, PX_CLOSE_PROTOCOL_ERROR, "08P01", "malformed Parse message");
            return MSG_FAILED;
        }
        c->unsynced = true;
        c->digest_id = px_digest_id((const char *)sql.p, sql.n);
        px_set_stmt_t set_st;
        const px_set_stmt_t *set =
            px_sqlscan_parse_set((const char *)sql.p, sql.n, &set_st) ? &set_st : NULL;
        if (c->tx_status != 'E' && !c->restore)
            c->restore = restore_sql(c, set);
        bool look = txn_mode && px_sqlscan_may_matter_remembered((const char *)sql.p, sql.n);
        if (look && has_set_local(sql))
            c->set_local = true;
        if (!txn_mode || stmt.n == 0) {
            /* the client's unnamed statement from now on, here */
            if (stmt.n == 0 && !px_client_remember_unnamed(
                                   c, stmt.p + 1, (size_t)(body.p + body.n - stmt.p - 1), true))
                return MSG_BROKEN;
            if (txn_mode && !c->pinned) {
                const char *why = session_state(c, set, sql.p, sql.n, look);
                if (why)
                    pin(c, why);
            }
            if (stmt.n == 0)
                c->unnamed_fresh = true; /* a SET in it was noted just above */
            if (look && px_sqlscan_drops_statements((const char *)sql.p, sql.n)) {
                bool all;
                char name[128];
                const px_stmt_t *st;
                if (c->tx_status != 'E' && is_dealloc(c, sql, &all, name, sizeof(name)) && !all &&
                    (st = px_stmt_map_get(&c->stmts, name, strlen(name)))) {
                    /* DEALLOCATE of a client name: drop the server-side
                     * statement it maps to, under that name */
                    char q[64];
                    size_t ql;
                    const uint8_t *after = sql.p + sql.n + 1;
                    msg_result_t er = dealloc_on_server(c, s, st, name, to_server, q, &ql);
                    if (er != MSG_FORWARD)
                        return er;
                    msg_result_t r = rewrite_parse_text(to_server, q, ql, after,
                                                        (size_t)(body.p + body.n - after));
                    if (r == MSG_CONSUMED && !px_fifo_push(&s->fifo, PX_REQ_PARSE, NULL))
                        return MSG_BROKEN;
                    return r;
                }
                if (!(is_dealloc(c, sql, &all, name, sizeof(name)) && !all)) {
                    /* DEALLOCATE ALL, DISCARD ALL: the server forgets
                     * statements the proxy cannot tell apart; start over */
                    px_stmt_map_clear(&c->stmts);
                    px_stmt_set_clear(s->stmts);
                }
            }
            return px_fifo_push(&s->fifo, PX_REQ_PARSE, NULL) ? MSG_FORWARD : MSG_BROKEN;
        }
        /* a named statement: remember it, prepare it under its content name */
        const px_stmt_t *taken = px_stmt_map_get(&c->stmts, (const char *)stmt.p, stmt.n);
        if (taken && body.n == hdr->body_len) {
            /* the name is taken: PostgreSQL itself answers, by parsing the new
             * text under the existing statement's server-side name (which
             * ensure_stmt makes sure is there): the text's own error first,
             * else 42P05 (named back to the client's name on its way), and an
             * open transaction aborted as it would be */
            msg_result_t r = ensure_stmt(s, taken, to_server);
            if (r != MSG_FORWARD)
                return r;
            const uint8_t *rest = stmt.p + stmt.n + 1;
            r = rewrite(to_server, 'P', NULL, 0, taken->key, rest,
                        (size_t)(body.p + body.n - rest));
            if (r == MSG_CONSUMED && !px_fifo_push(&s->fifo, PX_REQ_PARSE, NULL))
                return MSG_BROKEN;
            return r;
        }
        if (taken) {
            /* as PostgreSQL: the name is taken; the rest of the batch is skipped */
            char emsg[200];
            int ml = snprintf(
                emsg, sizeof(emsg),
                "42P05%cprepared statement \"%.*s\" already exists%cStorePreparedStatement", 0,
                (int)(stmt.n > 100 ? 100 : stmt.n), (const char *)stmt.p, 0);
            return batch_error(c, s, to_client, emsg, (size_t)ml + 1);
        }
        if (!c->pinned) {
            /* a named statement can take session state too (advisory locks,
             * set_config) when it runs */
            const char *why = px_sqlscan_session_state((const char *)sql.p, sql.n);
            if (why)
                pin(c, why);
        }
        const uint8_t *rest = stmt.p + stmt.n + 1;
        size_t rest_len = (size_t)(body.p + body.n - rest);
        /* names resolve when a statement is parsed: clients with other
         * startup settings (search_path, ...) get their own statement */
        px_stmt_key_t key = px_stmt_key(rest, rest_len);
        key.lo ^= c->params.hash;
        c->stmts.max = (uint32_t)px_worker_cfg(c->io.w)->max_prepared_statements;
        if (!px_stmt_map_put(&c->stmts, (const char *)stmt.p, stmt.n, rest, rest_len, key)) {
            /* as an error of this Parse: the client may close some and go on */
            char emsg[200];
            int ml = snprintf(emsg, sizeof(emsg),
                              "54000%ctoo many prepared statements (at most %u per connection: "
                              "MAX_PREPARED_STATEMENTS)%cStorePreparedStatement",
                              0, c->stmts.max, 0);
            return batch_error(c, s, to_client, emsg, (size_t)ml + 1);
        }
        if (!s->stmts && !(s->stmts = px_stmt_set_new()))
            return MSG_BROKEN;
        /* an explicit Parse always reaches the server (Close first), so the
         * client sees PostgreSQL's own verdict on the statement as of now,
         * even where the connection holds an older plan of the same text */
        px_stmt_key_t evicted;
        bool had;
        px_stmt_set_add(s->stmts, key, &evicted, &had);
        px_stmt_set_note_shape(s->stmts, key, 0); /* prepared anew: its shape is news */
        if (had && !px_server_inject_close(s, to_server, evicted))
            return MSG_BROKEN;
        /* the server may still hold it (after DEALLOCATE of other names,
         * or a set cleared conservatively): closing first never fails */
        if (!px_server_inject_close(s, to_server, key))
            return MSG_BROKEN;
        msg_result_t r = rewrite(to_server, 'P', NULL, 0, key, rest, rest_len);
        if (r == MSG_CONSUMED && !px_fifo_push(&s->fifo, PX_REQ_PARSE, &key))
            return MSG_BROKEN;
        return r;
    }
    case 'B': {
        c->unsynced = true;
        c->batch_bound = true;
        PX_STAT_INC(w, queries);
        s->bound_valid = false;
        px_span_t portal, stmt;
        bool names = px_codec_parse_bind_names(body, &portal, &stmt);
        if (names && stmt.n == 0 && !c->unnamed_here) {
            msg_result_t r = unnamed_here(c, s, to_server, to_client);
            if (r != MSG_FORWARD)
                return r;
        }
        if (txn_mode && names && stmt.n == 0 && !c->pinned && !c->unnamed_fresh &&
            unnamed_is_set(c))
            /* a SET parsed in an earlier batch runs again: what it leaves
             * is not among the noted settings */
            pin(c, "SET bound from a statement parsed earlier");
        if (txn_mode && names && stmt.n > 0 && body.n == hdr->body_len) {
            const px_stmt_t *st = px_stmt_map_get(&c->stmts, (const char *)stmt.p, stmt.n);
            if (st) {
                msg_result_t r = ensure_stmt(s, st, to_server);
                if (r != MSG_FORWARD)
                    return r;
                uint64_t have = px_stmt_set_shape(s->stmts, st->key);
                if (st->shape && have && have != st->shape) {
                    /* the statement here returns other columns than the
                     * client was told (DDL since, and another client or
                     * another connection prepared it anew): what PostgreSQL
                     * says of the client's own statement in that case */
                    static const char e[] =
                        "0A000\0cached plan must not change result type\0RevalidateCachedQuery";
                    return batch_error(c, s, to_client, e, sizeof(e));
                }
                /* a Describe of this portal tells the client the shape too */
                s->bound_valid = true;
                s->bound_portal = px_stmt_name_hash((const char *)portal.p, portal.n);
                s->bound_name = px_stmt_name_hash(st->name, st->name_len);
                s->bound_key = st->key;
                const uint8_t *qz = memchr(st->rest, 0, st->rest_len);
                if (qz)
                    c->digest_id = px_digest_id((const char *)st->rest, (size_t)(qz - st->rest));
                const uint8_t *after = stmt.p + stmt.n + 1;
                r = rewrite(to_server, 'B', portal.p, portal.n + 1, st->key, after,
                            (size_t)(body.p + body.n - after));
                if (r == MSG_CONSUMED && !px_fifo_push(&s->fifo, PX_REQ_BIND, NULL))
                    return MSG_BROKEN;
                return r;
            }
        }
        return px_fifo_push(&s->fifo, PX_REQ_BIND, NULL) ? MSG_FORWARD : MSG_BROKEN;
    }
    case 'D':
    case 'C': {
        c->unsynced = true;
        uint8_t kind;
        px_span_t name;
        px_req_kind_t req = hdr->type == 'D' ? PX_REQ_DESCRIBE : PX_REQ_CLOSE;
        bool target = txn_mode && px_codec_parse_target(body, &kind, &name);
        if (target && hdr->type == 'D' && kind == 'P' && s->bound_valid &&
            s->bound_portal == px_stmt_name_hash((const char *)name.p, name.n))
            return describe_pushed(s, &s->bound_key, s->bound_name);
        if (target && kind == 'S' && name.n == 0 && hdr->type == 'C')
            forget_unnamed(c);
        if (target && kind == 'S' && name.n == 0 && hdr->type == 'D' && !c->unnamed_here) {
            msg_result_t r = unnamed_here(c, s, to_server, to_client);
            if (r != MSG_FORWARD)
                return r;
        }
        if (target && kind == 'S' && name.n > 0) {
            const px_stmt_t *st = px_stmt_map_get(&c->stmts, (const char *)name.p, name.n);
            if (hdr->type == 'C') {
                /* the server-side statement may serve other clients: keep it */
                px_stmt_map_del(&c->stmts, (const char *)name.p, name.n);
                return synth(s, PX_REQ_SYNTH_CLOSE, to_client);
            }
            if (st) {
                msg_result_t r = ensure_stmt(s, st, to_server);
                if (r != MSG_FORWARD)
                    return r;
                uint8_t k = 'S';
                r = rewrite(to_server, 'D', &k, 1, st->key, NULL, 0);
                if (r == MSG_CONSUMED &&
                    describe_pushed(s, &st->key, px_stmt_name_hash(st->name, st->name_len)) !=
                        MSG_FORWARD)
                    return MSG_BROKEN;
                return r;
            }
        }
        return px_fifo_push(&s->fifo, req, NULL) ? MSG_FORWARD : MSG_BROKEN;
    }
    case 'E':
        c->unsynced = true;
        c->exec_open = true;
        c->copy_end_sent = false;
        return px_fifo_push(&s->fifo, PX_REQ_EXECUTE, NULL) ? MSG_FORWARD : MSG_BROKEN;
    case 'S':
        if (c->in_copy_in && !c->copy_end_sent) {
            /* PostgreSQL ignores a Sync in the middle of COPY FROM STDIN
             * (unless the copy failed before it read it): queued marked,
             * settled when the copy ends (server.c) */
            if (!px_fifo_push(&s->fifo, PX_REQ_SYNC, NULL))
                return MSG_BROKEN;
            px_fifo_at(&s->fifo, s->fifo.count - 1)->in_copy = true;
            return MSG_FORWARD;
        }
        c->unsynced = false;
        c->unnamed_fresh = false;
        c->batch_bound = false;
        s->ignore_till_sync = false;
        if (!px_fifo_push(&s->fifo, PX_REQ_SYNC, NULL))
            return MSG_BROKEN;
        /* if that Execute turns out to be a COPY FROM STDIN, the server
         * ignores this Sync (see the CopyInResponse in server.c) */
        px_fifo_at(&s->fifo, s->fifo.count - 1)->after_exec = c->exec_open;
        return MSG_FORWARD;
    case 'F':
        if (c->batch_bound) {
            px_client_fail(c, PX_CLOSE_PROTOCOL_ERROR, "08P01",
                           "FunctionCall message inside an extended-query batch: send Sync first");
            return MSG_FAILED;
        }
        PX_STAT_INC(w, queries);
        if (txn_mode && !c->pinned && function_call_keeps_state(body))
            pin(c, "FunctionCall of a session-level function");
        return px_fifo_push(&s->fifo, PX_REQ_FUNC, NULL) ? MSG_FORWARD : MSG_BROKEN;
    case 'H':
        c->unsynced = true;
        return MSG_FORWARD;
    default: /* CopyData, CopyDone, CopyFail */
        if (hdr->type != 'd') {
            c->exec_open = false;
            c->copy_end_sent = true;
        }
        return MSG_FORWARD;
    }
}

/* Step over a message the proxy consumed or drops; when it is still arriving
 * (after an error, up to Sync, or a Flush with a body), the rest is dropped as
 * it comes instead of waiting for it whole. */
static void skip_msg(px_client_t *c, px_iobuf_t *in, size_t avail, uint32_t whole)
{
    if (avail >= whole) {
        in->rpos += whole;
        return;
    }
    in->rpos += (uint32_t)avail;
    c->io.pass_left = whole - (uint32_t)avail;
    c->io.pass_skip = true;
}

/*
 * Frame and forward what the client sent. Stops when the input runs out,
 * when the server's output is full (backpressure), or when the client has to
 * wait for a server connection.
 */
static void process_pass(px_client_t *c, px_sender_t *to_server, px_sender_t *to_client)
{
    px_worker_t *w = c->io.w;
    px_config_t *cfg = px_worker_cfg(w);
    px_server_t *s = c->server;
    px_sender_init(to_server, s ? &s->io : NULL);
    px_sender_init(to_client, &c->io);
    size_t forwarded = 0;

    while (c->state != PX_CLIENT_CLOSING) {
        px_iobuf_t *in = c->io.in;
        if (!in || in->rpos == in->wpos)
            break;
        const uint8_t *p = in->data + in->rpos;
        size_t avail = in->wpos - in->rpos;

        if (c->state == PX_CLIENT_STARTUP) {
            px_startup_t st;
            size_t used = 0;
            const char *err = NULL;
            px_codec_status_t rc = px_codec_read_startup(p, avail, &st, &used, &err);
            if (rc == PX_CODEC_NEED_MORE)
                break;
            if (rc == PX_CODEC_ERROR) {
                px_client_fail(c, PX_CLOSE_PROTOCOL_ERROR, "08P01", "%s",
                               err ? err : "invalid startup packet");
                return;
            }
            in->rpos += (uint32_t)used;
            if (st.kind == PX_STARTUP_SSL && w->shared->client_tls && !c->io.tls) {
                if (!send_raw(c, "S", 1) || !px_io_tls_accept(&c->io, w->shared->client_tls)) {
                    px_client_close(c, PX_CLOSE_CLIENT_WRITE_ERROR);
                    return;
                }
                px_io_tls_pump(&c->io);
                return;
            }
            if (st.kind == PX_STARTUP_SSL || st.kind == PX_STARTUP_GSSENC) {
                if (!send_raw(c, "N", 1)) {
                    px_client_close(c, PX_CLOSE_CLIENT_WRITE_ERROR);
                    return;
                }
                continue;
            }
            if (st.kind == PX_STARTUP_CANCEL) {
                px_shared_post_cancel(w->shared, st.cancel_pid, st.cancel_key);
                px_client_close(c, PX_CLOSE_CLIENT_EOF);
                return;
            }
            if (cfg->client_tls_require && !c->io.tls) {
                px_client_fail(c, PX_CLOSE_AUTH_FAILED, "28000",
                               "this proxy accepts TLS connections only (use sslmode=require)");
                return;
            }
            if (!handle_startup(c, &st))
                return;
            continue;
        }

        if (c->state == PX_CLIENT_WELCOME || c->state == PX_CLIENT_WAITING)
            break; /* keep the bytes until a server connection is linked */

        if (c->io.pass_left > 0) {
            /* the rest of a streamed message (CopyData, Bind, ...), or of
             * one being skipped */
            uint32_t n = avail < c->io.pass_left ? (uint32_t)avail : c->io.pass_left;
            if (!c->io.pass_skip && !px_sender_span(to_server, p, n))
                goto server_broken;
            in->rpos += n;
            c->io.pass_left -= n;
            if (!c->io.pass_skip)
                forwarded += n;
            else if (c->io.pass_left == 0)
                c->io.pass_skip = false;
            continue;
        }

        px_msg_hdr_t hdr;
        uint32_t cap = c->state == PX_CLIENT_AUTH ? PX_STARTUP_MAX_LEN : cfg->max_message_size;
        px_codec_status_t rc = px_codec_peek_header(p, avail, cap, &hdr);
        if (rc == PX_CODEC_NEED_MORE)
            break;
        if (rc == PX_CODEC_ERROR || !frontend_type_ok(hdr.type) ||
            (hdr.type == 'p' && c->state != PX_CLIENT_AUTH)) {
            /* a password message after login: PostgreSQL ends the session
             * with this FATAL; forwarded, it would end the server
             * connection's next client instead */
            c->pass_unsent = to_server->n > 0; /* as for handle_msg below */
            if (rc == PX_CODEC_ERROR)
                px_client_fail(c, PX_CLOSE_PROTOCOL_ERROR, "08P01",
                               "invalid message length (message type %d, limit %u bytes)", p[0],
                               cap); /* hdr is not filled in on an error */
            else
                px_client_fail(c, PX_CLOSE_PROTOCOL_ERROR, "08P01",
                               "invalid frontend message type %d", hdr.type);
            return;
        }
        uint32_t whole = PX_MSG_HDR_LEN + hdr.body_len;
        bool inspect = c->state == PX_CLIENT_AUTH || hdr.type == 'Q' || hdr.type == 'P' ||
                       (hdr.type == 'B' && cfg->cache_enabled) ||
                       (cfg->pool_mode == PX_POOL_MODE_TRANSACTION &&
                        (hdr.type == 'D' || hdr.type == 'C' ||
                         (hdr.type == 'B' && bind_names_statement(p, avail))));
        if (inspect && avail < whole) {
            /* making room moves the buffer's bytes: what is queued from it
             * goes out first (queued spans point into it) */
            if (s && to_server->n > 0 && px_sender_flush(to_server) != 0)
                goto server_broken;
            if (!px_iobuf_reserve(w, &c->io.in, whole)) {
                px_client_fail(c, PX_CLOSE_INTERNAL, "53200", "out of memory");
                return;
            }
            break;
        }
        /* only what is here: a streamed message's body may still be arriving */
        px_span_t body = {p + PX_MSG_HDR_LEN,
                          avail >= whole ? hdr.body_len : (uint32_t)(avail - PX_MSG_HDR_LEN)};

        if (c->state == PX_CLIENT_AUTH) {
            in->rpos += whole;
            handle_auth_msg(c, &hdr, body);
            continue;
        }
        if (hdr.type == 'X') {
            in->rpos = in->wpos;
            if (px_sender_flush(to_server) != 0) {
                /* the server is broken; the client is leaving anyway */
            }
            px_client_close(c, PX_CLOSE_CLIENT_TERMINATE);
            return;
        }

        if (!s && c->skip_till_sync) {
            /* the rest of a unit cancelled while it waited (cancel_waiting) */
            skip_msg(c, in, avail, whole);
            if (hdr.type == 'S') {
                c->skip_till_sync = false;
                px_wbuf_t wb = px_sender_wbuf(to_client);
                px_build_ready(&wb, c->tx_status);
                if (!px_sender_commit(to_client, &wb)) {
                    px_client_close(c, PX_CLOSE_CLIENT_WRITE_ERROR);
                    return;
                }
            }
            continue;
        }
        if (px_cacheflow_waiting(c))
            break; /* an identical fill is in flight: its end wakes this client */
        if (!c->cache_seen && (hdr.type == 'Q' || hdr.type == 'P' || hdr.type == 'B') &&
            (!s || s->fifo.count == 0) && cfg->cache_enabled) {
            /* the first message of a unit: the result cache may answer it */
            c->cache_seen = true;
            px_cacheflow_result_t cr = px_cacheflow_lookup(c, to_client);
            if (cr == PX_CACHEFLOW_FAILED) {
                px_client_close(c, PX_CLOSE_CLIENT_WRITE_ERROR);
                return;
            }
            if (cr == PX_CACHEFLOW_HIT) {
                c->cache_seen = false;
                continue;
            }
            if (cr == PX_CACHEFLOW_WAIT) {
                c->cache_seen = false; /* looked up again when woken */
                break;
            }
        }
        if (!s && hdr.type == 'H') {
            /* a Flush with nothing outstanding on any server (pg8000 sends
             * one after its password): what the proxy answered goes out at
             * the end of this pass; no server connection is taken for it */
            skip_msg(c, in, avail, whole);
            continue;
        }
        if (!s && hdr.type == 'Q' && answer_locally(c, body, to_client)) {
            in->rpos += whole;
            continue;
        }
        if (!s) {
            /* the first message of a transaction: get a server connection.
             * Answers queued so far (cache hits) go out first: the checkout
             * may go on with this client's input in another call. */
            if (to_client->n > 0 && px_sender_flush(to_client) != 0) {
                px_client_close(c, PX_CLOSE_CLIENT_WRITE_ERROR);
                return;
            }
            c->seq_want = reads_sequence_state(c, hdr.type, body);
            px_route_verdict_t verdict;
            px_pool_t *target = px_route_pick(c, &verdict);
            c->route = (uint8_t)verdict;
            c->unit_done = false;
            retry_arm(c, verdict);
            px_client_set_state(c, PX_CLIENT_WAITING);
            c->wait_start = px_now(w);
            if (!px_pool_checkout(target, c))
                break; /* waiting; px_client_on_server continues */
            return;    /* px_client_on_server already processed the rest */
        }
        if (c->unit_done)
            break; /* a replica got its unit; the next one is routed anew */
        if (px_io_blocked(&s->io) || px_io_blocked(&c->io) || px_fifo_full(&s->fifo)) {
            c->io.paused = true;
            break;
        }

        if (hdr.type == 'P' && avail >= whole && parse_waits(c, s, body)) {
            c->io.paused = true; /* resumed when the earlier Parse is answered */
            break;
        }
        if (hdr.type == 'B' && avail >= whole && !c->skip_till_sync && !s->ignore_till_sync) {
            int sw = shape_first(c, s, (px_span_t){p + PX_MSG_HDR_LEN, hdr.body_len}, to_server);
            if (sw < 0)
                goto server_broken;
            if (sw > 0) {
                c->io.paused = true; /* resumed when the shape is known */
                break;
            }
        }
        px_log_debug(NULL, "C-%u -> %c (%u bytes) fifo %u", c->id, hdr.type, whole, s->fifo.count);
        if (cfg->cache_enabled && avail >= whole)
            px_cacheflow_on_client_msg(c, &hdr, body);
        if (hdr.type == 'Q' || hdr.type == 'S')
            c->cache_seen = false; /* the unit ends: the next one is looked up */
        if (c->retry)
            retry_keep(c, &hdr, p, avail);
        /* a message refused in there closes the client with bytes of this
         * pass (the rest of a streamed message) not yet sent: the server
         * connection must not go back to the pool then */
        c->pass_unsent = to_server->n > 0;
        msg_result_t mr = handle_msg(c, s, &hdr, body, p, avail, to_server, to_client);
        c->pass_unsent = false;
        if (mr == MSG_FAILED)
            return;
        if (mr == MSG_BROKEN)
            goto server_broken;
        if (mr == MSG_CONSUMED) {
            skip_msg(c, in, avail, whole);
            continue;
        }
        /* forward the header and whatever part of the body is here */
        uint32_t n = avail < whole ? (uint32_t)avail : whole;
        if (!px_sender_span(to_server, p, n))
            goto server_broken;
        in->rpos += n;
        c->io.pass_left = whole - n;
        c->io.pass_skip = false;
        forwarded += n;
        if (c->restore && !c->io.pass_left && (hdr.type == 'S' || hdr.type == 'Q')) {
            /* right behind the RESET: the client's startup values again */
            bool ok = px_server_inject(s, to_server, c->restore, PX_REQ_SKIP_SET);
            free(c->restore);
            c->restore = NULL;
            if (!ok)
                goto server_broken;
        }
        if (c->route == PX_ROUTE_REPLICA && (hdr.type == 'S' || hdr.type == 'Q'))
            c->unit_done = true;
        if (!c->q_start_ns && (hdr.type == 'Q' || hdr.type == 'S' || hdr.type == 'F'))
            c->q_start_ns = uv_hrtime();
    }

    if (c->state == PX_CLIENT_CLOSING)
        return;
    if (to_client->n > 0 && px_sender_flush(to_client) != 0) {
        px_client_close(c, PX_CLOSE_CLIENT_WRITE_ERROR);
        return;
    }
    if (s && to_server->n > 0) {
        if (px_sender_flush(to_server) != 0)
            goto server_broken;
        PX_STAT_ADD(w, bytes_client_to_server, forwarded);
        if (px_io_blocked(&s->io))
            c->io.paused = true;
    }
    if (c->io.in) {
        if (c->io.in->rpos == c->io.in->wpos)
            px_io_release_in(&c->io);
        else if (c->io.in->wpos == c->io.in->cap)
            px_iobuf_compact(c->io.in);
    }
    if (c->io.paused)
        px_io_stop_read(&c->io);
    else if (px_io_start_read(&c->io) != 0)
        px_client_close(c, PX_CLOSE_CLIENT_READ_ERROR);
    return;

server_broken:
    px_client_fail(c, PX_CLOSE_SERVER_LOST, "08006", "server connection lost");
}

void px_client_process(px_client_t *c)
{
    px_sender_t to_server, to_client;
    process_pass(c, &to_server, &to_client);
    /* a pass that stopped on an error leaves what it queued: free it */
    px_sender_discard(&to_server);
    px_sender_discard(&to_client);
}

/* ---- cancel and timeouts ----------------------------------------------------- */

/*
 * A cancel for a client whose unit still waits for a server connection:
 * nothing of it ran, so it ends here as PostgreSQL ends a cancelled one, with
 * 57014 and ReadyForQuery; an extended unit's messages up to its Sync are
 * dropped (what has not arrived yet is skipped when it does). A first message
 * still arriving is left alone: the unit runs.
 */
static void cancel_waiting(px_client_t *c)
{
    px_iobuf_t *in = c->io.in;
    px_msg_hdr_t hdr;
    if (!in || c->io.pass_left ||
        px_codec_peek_header(in->data + in->rpos, in->wpos - in->rpos,
                             px_worker_cfg(c->io.w)->max_message_size, &hdr) != PX_CODEC_OK ||
        in->wpos - in->rpos < PX_MSG_HDR_LEN + hdr.body_len)
        return;
    px_pool_remove_waiter(c);
    px_client_retry_disarm(c);
    px_cacheflow_unit_dropped(c);
    bool simple = hdr.type == 'Q' || hdr.type == 'F';
    if (simple)
        in->rpos += PX_MSG_HDR_LEN + hdr.body_len;
    else
        c->skip_till_sync = true;
    px_sender_t snd;
    px_sender_init(&snd, &c->io);
    px_wbuf_t wb = px_sender_wbuf(&snd);
    px_build_error(&wb, "ERROR", "57014", "canceling statement due to user request");
    if (simple)
        px_build_ready(&wb, c->tx_status);
    if (!px_sender_commit(&snd, &wb) || px_sender_flush(&snd) != 0) {
        px_client_close(c, PX_CLOSE_CLIENT_WRITE_ERROR);
        return;
    }
    PX_STAT_INC(c->io.w, cancels_forwarded);
    CLOG(PX_LOG_DEBUG, c, "cancelled while waiting for a server connection");
    px_client_set_state(c, PX_CLIENT_IDLE);
    px_cacheflow_defer(c); /* what it sent after the unit goes on */
}

void px_worker_cancel(px_worker_t *w, uint32_t pid, uint32_t key)
{
    px_client_t *c = px_worker_slot_get(w, pid);
    if (!c || c->cancel_key != key || c->state == PX_CLIENT_CLOSING)
        return;
    /* only a running request is cancelled; an idle session has nothing to stop */
    if (c->server && c->server->fifo.count > 0) {
        PX_STAT_INC(w, cancels_forwarded);
        px_server_cancel_for_client(c->server);
    } else if (!c->server && c->state == PX_CLIENT_WAITING && !px_list_empty(&c->link)) {
        cancel_waiting(c);
    }
}

void px_client_check_timeouts(px_worker_t *w, uint64_t now)
{
    px_list_t *it = w->login_clients.next;
    while (it != &w->login_clients) {
        px_client_t *c = px_container_of(it, px_client_t, link);
        it = it->next;
        if (c->deadline && now >= c->deadline) {
            PX_STAT_INC(w, login_failures);
            px_client_fail(c, PX_CLOSE_LOGIN_TIMEOUT, "08P01",
                           "login timeout: startup and authentication not completed in time");
        }
    }
}
