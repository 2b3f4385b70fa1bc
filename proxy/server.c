/*
 * Server connections: one px_server_t per connection to PostgreSQL, with an
 * explicit state (px_server_state_t, written only by px_server_set_state)
 * tied to one list of its pool. A server logs in as the pool's user with the
 * pool's credentials (password, md5 hash or SCRAM keys), then serves clients
 * lent to it by the pool.
 *
 * Replies are matched to requests through the outstanding-request FIFO: each
 * ReadyForQuery pops one entry, whose action says whether the replies up to
 * it go to the client (FORWARD) or were for a request the proxy injected
 * (SKIP). Only the messages that change the proxy's view (ReadyForQuery,
 * ErrorResponse, ParameterStatus and the login messages) are looked into
 * whole; the rest stream through as spans of the input buffer.
 */
#include <fcntl.h>
#include <netdb.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "px.h"
#include "px_metrics.h"
#include "px_tls.h"

static const char *const server_state_names[] = {
    "connecting", "login", "idle", "active", "checking", "resetting", "closing",
};

const char *px_server_state_to_str(px_server_state_t st)
{
    return (unsigned)st < sizeof(server_state_names) / sizeof(server_state_names[0])
               ? server_state_names[st]
               : "?";
}

#define SLOG(level, s, ...)                                                                        \
    do {                                                                                           \
        if ((level) <= __atomic_load_n(&px_log_level, __ATOMIC_RELAXED)) {                         \
            char tag_[160];                                                                        \
            snprintf(tag_, sizeof(tag_), "S-%u %s/%s", (s)->id, (s)->pool->database,               \
                     (s)->pool->user);                                                             \
            px_log_write((level), tag_, __VA_ARGS__);                                              \
        }                                                                                          \
    } while (0)

/* The pool list that matches a state. */
static px_list_t *state_list(px_server_t *s, px_server_state_t st, _Atomic int **counter)
{
    px_pool_t *p = s->pool;
    switch (st) {
    case PX_SERVER_IDLE:
        *counter = &p->n_idle;
        return &p->idle;
    case PX_SERVER_ACTIVE:
        *counter = &p->n_active;
        return &p->active;
    case PX_SERVER_CLOSING:
        *counter = NULL;
        return NULL;
    default:
        *counter = &p->n_pending;
        return &p->pending;
    }
}

void px_server_set_state(px_server_t *s, px_server_state_t st)
{
    px_server_state_t old = s->state;
    if (old == st)
        return;
    _Atomic int *cnt;
    px_list_t *l = state_list(s, old, &cnt);
    if (l) {
        px_list_del(&s->link);
        PX_OWN_ADD(cnt, -1); /* pool counters: the owning worker writes, the admin reads */
    }
    s->state = st;
    l = state_list(s, st, &cnt);
    if (l) {
        if (st == PX_SERVER_IDLE)
            px_list_prepend(l, &s->link); /* most recently used first */
        else
            px_list_append(l, &s->link);
        PX_OWN_ADD(cnt, 1);
    }
    px_log_debug(NULL, "S-%u state %s -> %s", s->id, px_server_state_to_str(old),
                 px_server_state_to_str(st));
}

struct px_cancel_conn {
    uv_tcp_t tcp;
    uv_timer_t timer; /* gives up after PX_CANCEL_TIMEOUT_MS */
    int open_handles;
    uv_connect_t req;
    uv_write_t wreq;
    px_server_t *server; /* whose backend it cancels; NULL once that is gone */
    uint8_t pkt[16];
    uint8_t rbuf[64];
};

static void server_free_cb(uv_handle_t *h)
{
    px_server_t *s = (px_server_t *)h->data;
    px_worker_t *w = s->io.w;
    if (s->cancel)
        s->cancel->server = NULL;
    px_iobuf_put(w, s->io.in);
    if (!s->io.wreq)
        px_iobuf_put(w, s->io.out);
    px_params_free(&s->applied);
    px_tls_free(s->io.tls);
    px_fifo_free(&s->fifo);
    px_stmt_set_free(s->stmts);
    if (s->scram) {
        OPENSSL_cleanse(s->scram, sizeof(*s->scram));
        free(s->scram);
    }
    free(s);
}

void px_server_close(px_server_t *s, const char *why)
{
    if (s->state == PX_SERVER_CLOSING)
        return;
    px_worker_t *w = s->io.w;
    px_server_state_t old = s->state;
    SLOG(old == PX_SERVER_ACTIVE || old == PX_SERVER_LOGIN ? PX_LOG_INFO : PX_LOG_DEBUG, s,
         "closing server connection (%s): %s", px_server_state_to_str(old), why);
    px_client_t *c = s->client;
    px_server_set_state(s, PX_SERVER_CLOSING);
    PX_STAT_INC(w, servers_closed);
    if (c) {
        s->client = NULL;
        c->server = NULL;
        if (px_client_retry(c, s, why)) {
            /* the unit goes elsewhere */
        } else if (s->said_fatal) {
            /* the server told the client why it ends (as PostgreSQL, which
             * then closes): no second error after it */
            px_client_close(c, PX_CLOSE_SERVER_LOST);
        } else {
            px_client_fail(c, PX_CLOSE_SERVER_LOST, "08006", "server connection lost: %s", why);
        }
    }
    if (old == PX_SERVER_CONNECTING || old == PX_SERVER_LOGIN) {
        if (s->welcome_pending || s->pool->n_idle + s->pool->n_active == 0)
            px_pool_login_failed(s->pool,
                                 s->pool->last_sqlstate[0] ? s->pool->last_sqlstate : "08006",
                                 s->pool->last_error[0] ? s->pool->last_error : why);
    }
    px_pool_server_gone(s);
    if (uv_is_closing((uv_handle_t *)&s->io.tcp))
        return;
    px_io_close(&s->io, server_free_cb);
}

/* ---- connect and login ------------------------------------------------------- */

static int resolve(const char *host, uint16_t port, struct sockaddr_storage *out)
{
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    char ports[8];
    snprintf(ports, sizeof(ports), "%u", port);
    int rc = getaddrinfo(host, ports, &hints, &res);
    if (rc != 0 || !res)
        return -1;
    memcpy(out, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    return 0;
}

static void login_fail(px_server_t *s, const char *sqlstate, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void login_fail(px_server_t *s, const char *sqlstate, const char *fmt, ...)
{
    px_pool_t *p = s->pool;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->last_error, sizeof(p->last_error), fmt, ap);
    va_end(ap);
    snprintf(p->last_sqlstate, sizeof(p->last_sqlstate), "%s", sqlstate);
    p->last_error_at = px_now(s->io.w);
    SLOG(PX_LOG_WARN, s, "server login failed: %s", p->last_error);
    s->welcome_pending = true; /* make px_server_close fail the waiters */
    px_server_close(s, p->last_error);
}

static void connect_cb(uv_connect_t *req, int status)
{
    px_server_t *s = (px_server_t *)req->data;
    if (status == UV_ECANCELED || s->state == PX_SERVER_CLOSING)
        return;
    if (status < 0) {
        login_fail(s, "08006", "could not connect to server %s:%u: %s", s->pool->host,
                   s->pool->port, uv_strerror(status));
        return;
    }
    uv_tcp_nodelay(&s->io.tcp, 1);
    uv_tcp_keepalive(&s->io.tcp, 1, 60);
    px_server_set_state(s, PX_SERVER_LOGIN);
    if (s->io.w->shared->server_tls) {
        /* SERVER_TLS_MODE: ask for TLS first, the startup follows the handshake */
        uint8_t pkt[8];
        px_wbuf_t wb = px_wbuf_make(pkt, sizeof(pkt));
        px_wbuf_put_int32(&wb, 8);
        px_wbuf_put_int32(&wb, (int32_t)PX_PROTO_SSL_REQUEST);
        px_sender_t snd;
        px_sender_init(&snd, &s->io);
        s->tls_asked = true;
        if (!px_sender_span(&snd, pkt, sizeof(pkt)) || px_sender_flush(&snd) != 0 ||
            px_io_start_read(&s->io) != 0)
            login_fail(s, "08006", "could not send SSLRequest");
        return;
    }
    if (!px_server_tls_ready(s))
        return;
}

bool px_server_tls_ready(px_server_t *s)
{
    const char *pairs[] = {"user", s->pool->user, "database", s->pool->database, NULL};
    px_sender_t snd;
    px_sender_init(&snd, &s->io);
    px_wbuf_t wb = px_sender_wbuf(&snd);
    px_build_startup(&wb, pairs);
    if (!px_sender_commit(&snd, &wb) || px_sender_flush(&snd) != 0 ||
        px_io_start_read(&s->io) != 0) {
        login_fail(s, "08006", "could not send the startup packet");
        return false;
    }
    return true;
}

/* The one-byte answer to our SSLRequest. */
static bool tls_answer(px_server_t *s)
{
    px_iobuf_t *in = s->io.in;
    uint8_t a = in->data[in->rpos++];
    s->tls_asked = false;
    int mode = px_worker_cfg(s->io.w)->server_tls_mode;
    if (a == 'S') {
        if (!px_io_tls_connect(&s->io, s->io.w->shared->server_tls, s->pool->host)) {
            login_fail(s, "08006", "could not start TLS with the server");
            return false;
        }
        px_io_tls_pump(&s->io);
        return false; /* the pump goes on from here */
    }
    if (a == 'N' && mode == PX_SERVER_TLS_PREFER)
        return px_server_tls_ready(s);
    login_fail(s, "08006",
               a == 'N' ? "the server does not support TLS (SERVER_TLS_MODE requires it)"
                        : "unexpected answer to SSLRequest from the server");
    return false;
}

px_server_t *px_server_open(px_pool_t *pool)
{
    px_worker_t *w = pool->w;
    px_config_t *cfg = px_worker_cfg(w);
    px_server_t *s = calloc(1, sizeof(*s));
    if (s)
        s->serial = px_serial_next();
    if (!s)
        return NULL;
    px_io_init(&s->io, w, PX_IO_SERVER);
    s->pool = pool;
    s->id = ++w->next_server_id;
    s->tx_status = 'I';
    px_fifo_init(&s->fifo);
    px_list_init(&s->link);
    if (uv_tcp_init(&w->loop, &s->io.tcp) != 0) {
        free(s);
        return NULL;
    }
    s->io.tcp.data = s;
    s->connect_req.data = s;
    s->state = PX_SERVER_CONNECTING;
    px_list_append(&pool->pending, &s->link);
    pool->n_pending++;
    pool->n_local++;
    PX_STAT_INC(w, servers_opened);
    s->deadline = px_now(w) + (uint64_t)(cfg->server_connect_timeout * 1000.0);
    struct sockaddr_storage addr;
    int rc = resolve(pool->host, pool->port, &addr);
    if (rc == 0)
        rc = uv_tcp_connect(&s->connect_req, &s->io.tcp, (struct sockaddr *)&addr, connect_cb);
    if (rc != 0) {
        login_fail(s, "08006", "could not connect to server %s:%u: %s", pool->host, pool->port,
                   rc == -1 ? "host not found" : uv_strerror(rc));
        return NULL;
    }
    SLOG(PX_LOG_DEBUG, s, "connecting to %s:%u", pool->host, pool->port);
    return s;
}

static bool send_auth_reply(px_server_t *s, px_wbuf_t *wb, px_sender_t *snd)
{
    return px_sender_commit(snd, wb) && px_sender_flush(snd) == 0;
}

/* One login message from the server; false when the connection was failed. */
static bool login_msg(px_server_t *s, const px_msg_hdr_t *hdr, px_span_t body)
{
    px_pool_t *pool = s->pool;
    px_pool_creds_t *cr = &pool->creds;
    px_sender_t snd;
    px_sender_init(&snd, &s->io);
    px_wbuf_t wb = px_sender_wbuf(&snd);
    switch (hdr->type) {
    case 'R': {
        int32_t code;
        px_span_t data;
        if (!px_codec_parse_auth(body, &code, &data)) {
            login_fail(s, "08P01", "malformed authentication request from server");
            return false;
        }
        switch (code) {
        case PX_AUTH_OK:
            return true;
        case PX_AUTH_CLEARTEXT:
            if (cr->kind != PX_SECRET_PLAIN) {
                login_fail(
                    s, "28P01",
                    "server asked for a cleartext password, but the proxy has none for user \"%s\"",
                    pool->user);
                return false;
            }
            px_build_password(&wb, cr->secret);
            break;
        case PX_AUTH_MD5: {
            if (data.n != 4 || (cr->kind != PX_SECRET_PLAIN && cr->kind != PX_SECRET_MD5)) {
                login_fail(s, "28P01",
                           "server asked for md5, but the proxy has no password or md5 hash for "
                           "user \"%s\"",
                           pool->user);
                return false;
            }
            char h[36], out[36];
            if (cr->kind == PX_SECRET_PLAIN)
                px_md5_hash_password(cr->secret, pool->user, h);
            else
                memcpy(h, cr->secret, 36);
            px_md5_salted(h, data.p, out);
            px_build_password(&wb, out);
            OPENSSL_cleanse(h, sizeof(h));
            break;
        }
        case PX_AUTH_SASL: {
            if (cr->kind != PX_SECRET_PLAIN && !(cr->kind == PX_SECRET_SCRAM && cr->have_keys)) {
                login_fail(s, "28P01",
                           "server asked for SCRAM, but the proxy has no password or SCRAM keys "
                           "for user \"%s\"",
                           pool->user);
                return false;
            }
            if (!s->scram && !(s->scram = calloc(1, sizeof(*s->scram)))) {
                login_fail(s, "53200", "out of memory");
                return false;
            }
            if (cr->kind == PX_SECRET_PLAIN)
                px_scram_client_init_password(s->scram, cr->secret);
            else
                px_scram_client_init_keys(s->scram, cr->client_key, cr->server_key);
            char first[256];
            size_t n = px_scram_client_first(s->scram, first, sizeof(first));
            if (n == 0) {
                login_fail(s, "58000", "could not start SCRAM authentication");
                return false;
            }
            px_build_sasl_initial(&wb, "SCRAM-SHA-256", first, n);
            break;
        }
        case PX_AUTH_SASL_CONTINUE: {
            if (!s->scram) {
                login_fail(s, "08P01", "unexpected SASL continue from server");
                return false;
            }
            char out[512];
            size_t used = 0;
            if (px_scram_client_final(s->scram, (const char *)data.p, data.n, out, sizeof(out),
                                      &used) != PX_SCRAM_OK) {
                login_fail(s, "08P01", "malformed SCRAM message from server");
                return false;
            }
            px_build_sasl_response(&wb, out, used);
            break;
        }
        case PX_AUTH_SASL_FINAL:
            if (!s->scram ||
                px_scram_client_verify(s->scram, (const char *)data.p, data.n) != PX_SCRAM_OK) {
                login_fail(s, "08P01", "server's SCRAM signature did not verify");
                return false;
            }
            return true;
        default:
            login_fail(s, "28000", "unsupported authentication method %d requested by server",
                       code);
            return false;
        }
        if (!send_auth_reply(s, &wb, &snd)) {
            login_fail(s, "08006", "could not send to server");
            return false;
        }
        return true;
    }
    case 'E': {
        px_error_fields_t ef;
        if (!px_codec_parse_error(body, &ef)) {
            login_fail(s, "08P01", "malformed error from server");
            return false;
        }
        char st[6] = "08006";
        if (ef.sqlstate.n == 5)
            memcpy(st, ef.sqlstate.p, 5);
        login_fail(s, st, "%.*s", (int)ef.message.n, (const char *)ef.message.p);
        return false;
    }
    case 'S': {
        px_span_t name, value;
        if (!px_codec_parse_param_status(body, &name, &value)) {
            login_fail(s, "08P01", "malformed ParameterStatus from server");
            return false;
        }
        if (!pool->have_welcome) {
            /* remember it for the welcome of later clients */
            for (int i = 0; i < pool->n_welcome; i++) {
                if (strlen(pool->welcome[i].name) == name.n &&
                    memcmp(pool->welcome[i].name, name.p, name.n) == 0) {
                    char *v = strndup((const char *)value.p, value.n);
                    if (v) {
                        free(pool->welcome[i].value);
                        pool->welcome[i].value = v;
                    }
                    return true;
                }
            }
            px_welcome_param_t *nw =
                realloc(pool->welcome, sizeof(*nw) * (size_t)(pool->n_welcome + 1));
            if (!nw)
                return true;
            pool->welcome = nw;
            nw[pool->n_welcome].name = strndup((const char *)name.p, name.n);
            nw[pool->n_welcome].value = strndup((const char *)value.p, value.n);
            if (nw[pool->n_welcome].name && nw[pool->n_welcome].value)
                pool->n_welcome++;
        }
        return true;
    }
    case 'K':
        if (!px_codec_parse_backend_key(body, &s->be_pid, &s->be_key)) {
            login_fail(s, "08P01", "malformed BackendKeyData from server");
            return false;
        }
        return true;
    case 'N':
    case 'v':
        return true;
    case 'Z': {
        uint8_t st;
        if (!px_codec_parse_ready(body, &st)) {
            login_fail(s, "08P01", "malformed ReadyForQuery from server");
            return false;
        }
        if (s->scram) {
            OPENSSL_cleanse(s->scram, sizeof(*s->scram));
            free(s->scram);
            s->scram = NULL;
        }
        s->tx_status = st;
        s->welcome_pending = false;
        pool->last_error[0] = 0;
        pool->last_sqlstate[0] = 0;
        SLOG(PX_LOG_DEBUG, s, "logged in, backend pid %u", s->be_pid);
        px_pool_server_ready(s);
        return true;
    }
    default:
        login_fail(s, "08P01", "unexpected message type %d from server during login", hdr->type);
        return false;
    }
}

/* ---- the request/reply cycle ------------------------------------------------ */

bool px_server_inject(px_server_t *s, px_sender_t *snd, const char *sql, px_req_kind_t kind)
{
    size_t n = strlen(sql);
    void *p = px_sender_alloc(snd, n + 6);
    if (!p)
        return false;
    px_wbuf_t wb = px_wbuf_make(p, n + 6);
    px_build_query(&wb, sql);
    if (wb.failed || !px_sender_span(snd, p, wb.len))
        return false;
    return px_fifo_push(&s->fifo, kind, NULL);
}

/* Write a Parse of statement @p name (NUL-terminated, "" for the unnamed
 * one) with @p rest after it; its ParseComplete is swallowed. */
static bool inject_parse(px_server_t *s, px_sender_t *snd, const char *name,
                         const px_stmt_key_t *key, const uint8_t *rest, size_t rest_len)
{
    size_t nl = strlen(name) + 1;
    size_t total = PX_MSG_HDR_LEN + nl + rest_len;
    uint8_t *p = px_sender_alloc(snd, total);
    if (!p)
        return false;
    px_wbuf_t wb = px_wbuf_make(p, total);
    px_wbuf_begin(&wb, 'P');
    px_wbuf_put_bytes(&wb, name, nl);
    px_wbuf_put_bytes(&wb, rest, rest_len);
    px_wbuf_end(&wb);
    if (wb.failed || !px_sender_span(snd, p, wb.len))
        return false;
    return px_fifo_push(&s->fifo, PX_REQ_SKIP_PARSE, key);
}

bool px_server_inject_parse(px_server_t *s, px_sender_t *snd, px_stmt_key_t key,
                            const uint8_t *rest, size_t rest_len)
{
    char name[PX_STMT_NAME_LEN];
    px_stmt_name(key, name);
    return inject_parse(s, snd, name, &key, rest, rest_len);
}

bool px_server_inject_parse_unnamed(px_server_t *s, px_sender_t *snd, const uint8_t *rest,
                                    size_t rest_len)
{
    return inject_parse(s, snd, "", NULL, rest, rest_len);
}

bool px_server_inject_close(px_server_t *s, px_sender_t *snd, px_stmt_key_t key)
{
    char name[PX_STMT_NAME_LEN];
    px_stmt_name(key, name);
    size_t total = PX_MSG_HDR_LEN + 1 + strlen(name) + 1;
    uint8_t *p = px_sender_alloc(snd, total);
    if (!p)
        return false;
    px_wbuf_t wb = px_wbuf_make(p, total);
    px_wbuf_begin(&wb, 'C');
    px_wbuf_put_byte(&wb, 'S');
    px_wbuf_put_cstr(&wb, name);
    px_wbuf_end(&wb);
    if (wb.failed || !px_sender_span(snd, p, wb.len))
        return false;
    return px_fifo_push(&s->fifo, PX_REQ_SKIP_CLOSE, NULL);
}

bool px_server_inject_describe(px_server_t *s, px_sender_t *snd, px_stmt_key_t key)
{
    char name[PX_STMT_NAME_LEN];
    px_stmt_name(key, name);
    size_t total = PX_MSG_HDR_LEN + 1 + strlen(name) + 1 + PX_MSG_HDR_LEN;
    uint8_t *p = px_sender_alloc(snd, total);
    if (!p)
        return false;
    px_wbuf_t wb = px_wbuf_make(p, total);
    px_wbuf_begin(&wb, 'D');
    px_wbuf_put_byte(&wb, 'S');
    px_wbuf_put_cstr(&wb, name);
    px_wbuf_end(&wb);
    px_wbuf_begin(&wb, 'H'); /* the answer comes now, not at the next Sync */
    px_wbuf_end(&wb);
    if (wb.failed || !px_sender_span(snd, p, wb.len))
        return false;
    return px_fifo_push(&s->fifo, PX_REQ_SKIP_DESCRIBE, &key);
}

void px_server_resume(px_server_t *s)
{
    if (s->state == PX_SERVER_CLOSING)
        return;
    if (s->io.paused) {
        s->io.paused = false;
        px_server_process(s);
    }
}

/* Messages from a server no client is using: notices and parameter changes
 * are fine, anything else means the connection is no longer usable. */
static bool idle_msg(px_server_t *s, const px_msg_hdr_t *hdr, px_span_t body)
{
    if (hdr->type == 'N' || hdr->type == 'S' || hdr->type == 'A')
        return true;
    if (hdr->type == 'E') {
        px_error_fields_t ef;
        if (px_codec_parse_error(body, &ef))
            SLOG(PX_LOG_INFO, s, "server error on an unused connection: %.*s", (int)ef.message.n,
                 (const char *)ef.message.p);
    }
    px_server_close(s, "unexpected message from server");
    return false;
}

static bool req_is_client(uint8_t kind)
{
    return kind <= PX_REQ_EXECUTE;
}

static void cancel_when_client_runs(px_server_t *s);

/* Whether Syncs sent while the server took COPY data sit right behind the
 * copy's request. */
static bool copy_syncs_queued(px_server_t *s)
{
    return s->fifo.count > 1 && px_fifo_at(&s->fifo, 1)->kind == PX_REQ_SYNC &&
           px_fifo_at(&s->fifo, 1)->in_copy;
}

static bool req_is_synth(uint8_t kind)
{
    return kind >= PX_REQ_SYNTH_PARSE;
}

/* Replies that end a request of this kind. */
static bool req_ends(uint8_t kind, uint8_t type)
{
    switch (kind) {
    case PX_REQ_QUERY:
    case PX_REQ_FUNC:
    case PX_REQ_SYNC:
    case PX_REQ_SKIP_QUERY:
    case PX_REQ_SKIP_SET:
        return type == 'Z';
    case PX_REQ_PARSE:
    case PX_REQ_SKIP_PARSE:
        return type == '1';
    case PX_REQ_BIND:
        return type == '2';
    case PX_REQ_CLOSE:
    case PX_REQ_SKIP_CLOSE:
        return type == '3';
    case PX_REQ_DESCRIBE:
    case PX_REQ_SKIP_DESCRIBE:
        return type == 'T' || type == 'n';
    case PX_REQ_EXECUTE:
        return type == 'C' || type == 's' || type == 'I';
    default:
        return false;
    }
}

/* Extended-query requests: an error makes the server skip them up to Sync. */
static bool req_is_extended(uint8_t kind)
{
    return kind == PX_REQ_PARSE || kind == PX_REQ_BIND || kind == PX_REQ_CLOSE ||
           kind == PX_REQ_DESCRIBE || kind == PX_REQ_EXECUTE || kind == PX_REQ_SKIP_PARSE ||
           kind == PX_REQ_SKIP_CLOSE || kind == PX_REQ_SKIP_DESCRIBE ||
           kind == PX_REQ_SYNTH_PARSE || kind == PX_REQ_SYNTH_CLOSE || kind == PX_REQ_SYNTH_ERROR;
}

/*
 * Answer the requests the proxy answers itself while they are at the head
 * of the FIFO, so their replies keep their place in the stream.
 */
bool px_server_drain_synth(px_server_t *s, px_sender_t *to_client)
{
    px_req_t *r;
    while ((r = px_fifo_peek(&s->fifo)) && req_is_synth(r->kind)) {
        uint8_t kind = r->kind;
        px_stmt_key_t key = r->key;
        bool has_key = r->has_key;
        px_fifo_pop(&s->fifo);
        if (!to_client || !to_client->dst)
            continue;
        if (s->client && s->client->retry)
            px_client_retry_disarm(s->client);
        px_wbuf_t wb = px_sender_wbuf(to_client);
        if (kind == PX_REQ_SYNTH_PARSE) {
            if (has_key && s->client)
                px_stmt_map_confirm(&s->client->stmts, key);
            px_wbuf_begin(&wb, '1');
            px_wbuf_end(&wb);
        } else if (kind == PX_REQ_SYNTH_ERROR) {
            px_client_t *c = s->client;
            /* "sqlstate\0message\0routine" (the routine drivers look at to re-prepare) */
            const char *e = c && c->synth_error ? c->synth_error : "XX000\0internal error\0";
            const char *msg = e + strlen(e) + 1;
            px_build_error_routine(&wb, "ERROR", e, msg, msg + strlen(msg) + 1);
        } else if (kind == PX_REQ_SYNTH_CLOSE) {
            px_wbuf_begin(&wb, '3');
            px_wbuf_end(&wb);
        } else {
            px_wbuf_begin(&wb, 'C');
            px_wbuf_put_cstr(&wb,
                             kind == PX_REQ_SYNTH_DEALLOC_ALL ? "DEALLOCATE ALL" : "DEALLOCATE");
            px_wbuf_end(&wb);
            px_build_ready(&wb, s->tx_status);
        }
        if (!px_sender_commit(to_client, &wb))
            return false;
    }
    return true;
}

/* An ErrorResponse for the client, with the names of server-side statements
 * (fx_...) replaced by the client's own names for them, as PostgreSQL would
 * have named them ("prepared statement \"q1\" requires 1 parameters"). */
static bool forward_error(px_client_t *c, px_sender_t *to_client, const uint8_t *msg, uint32_t len)
{
    const uint8_t *hit = c ? memmem(msg, len, "fx_", 3) : NULL;
    if (!hit || (!c->stmts.count && !c->stmts.dropped))
        return px_sender_span(to_client, msg, len);
    /* each 35-byte name becomes one of at most 64 bytes: under twice the size */
    size_t cap = (size_t)len * 2 + 64;
    uint8_t *out = malloc(cap);
    if (!out)
        return px_sender_span(to_client, msg, len);
    size_t w = 0;
    for (uint32_t i = 0; i < len;) {
        px_stmt_key_t key;
        const px_stmt_t *st;
        if (i >= PX_MSG_HDR_LEN && i + 35 <= len && msg[i] == 'f' &&
            px_stmt_name_parse((const char *)msg + i, len - i, &key) &&
            (st = px_stmt_map_by_key(&c->stmts, key)) && st->name_len <= 64) {
            memcpy(out + w, st->name, st->name_len);
            w += st->name_len;
            i += 35;
            continue;
        }
        out[w++] = msg[i++];
    }
    uint32_t body = (uint32_t)(w - 1);
    out[1] = (uint8_t)(body >> 24);
    out[2] = (uint8_t)(body >> 16);
    out[3] = (uint8_t)(body >> 8);
    out[4] = (uint8_t)body;
    uint8_t *p = px_sender_alloc(to_client, w);
    bool ok = p && (memcpy(p, out, w), px_sender_span(to_client, p, w));
    free(out);
    return ok;
}

/* An error ended an extended-query request: the server now skips every
 * message up to the next Sync, so drop their entries (the statements they
 * would have created do not exist). */
static void error_skip_to_sync(px_server_t *s)
{
    px_req_t *r;
    bool found_sync = false;
    while ((r = px_fifo_peek(&s->fifo))) {
        /* a Query or FunctionCall pipelined before the Sync is discarded too
         * (and a DEALLOCATE the proxy would answer is not answered) */
        if (!req_is_extended(r->kind) && r->kind != PX_REQ_QUERY && r->kind != PX_REQ_FUNC &&
            r->kind != PX_REQ_SYNTH_DEALLOC && r->kind != PX_REQ_SYNTH_DEALLOC_ALL) {
            found_sync = r->kind == PX_REQ_SYNC;
            break;
        }
        if (r->has_key && s->stmts && (r->kind == PX_REQ_PARSE || r->kind == PX_REQ_SKIP_PARSE))
            px_stmt_set_del(s->stmts, r->key);
        if (r->has_key && s->client && (r->kind == PX_REQ_PARSE || r->kind == PX_REQ_SYNTH_PARSE))
            px_stmt_map_drop_unconfirmed(&s->client->stmts, r->key);
        if (r->kind == PX_REQ_SKIP_DESCRIBE)
            s->shape_wait = false; /* the waiting Bind goes on (and meets the error) */
        if ((r->kind == PX_REQ_QUERY || r->kind == PX_REQ_FUNC) && s->client)
            px_client_sets_ready_skipped(s->client); /* it gets no ReadyForQuery */
        px_fifo_pop(&s->fifo);
    }
    if (!found_sync)
        s->ignore_till_sync = true;
}

/* Write what is queued for the client; once reply bytes reach it, the read
 * can no longer be retried elsewhere. */
static bool reply_flush(px_client_t *c, px_sender_t *to_client)
{
    if (c->retry)
        px_client_retry_disarm(c);
    return px_sender_flush(to_client) == 0;
}

void px_server_process(px_server_t *s)
{
    px_worker_t *w = s->io.w;
    px_config_t *cfg = px_worker_cfg(w);
    px_client_t *c = s->client;
    px_sender_t to_client;
    px_sender_init(&to_client, c ? &c->io : NULL);
    bool release = false;
    size_t forwarded = 0;
    w->reply_ns = 0; /* one clock read for every statement this reply ends */

    while (s->state != PX_SERVER_CLOSING) {
        px_iobuf_t *in = s->io.in;
        if (!in || in->rpos == in->wpos)
            break;
        const uint8_t *p = in->data + in->rpos;
        size_t avail = in->wpos - in->rpos;

        if (s->tls_asked) {
            if (!tls_answer(s))
                return;
            continue;
        }
        if (c && px_io_blocked(&c->io)) {
            s->io.paused = true;
            break;
        }
        if (s->io.pass_left > 0) {
            uint32_t n = avail < s->io.pass_left ? (uint32_t)avail : s->io.pass_left;
            if (!s->io.pass_skip && c) {
                if (!px_sender_span(&to_client, p, n))
                    goto client_broken;
                forwarded += n;
                if (px_cacheflow_filling(c))
                    px_cacheflow_capture_more(c, p, n);
            }
            in->rpos += n;
            s->io.pass_left -= n;
            continue;
        }
        px_msg_hdr_t hdr;
        /* MAX_MESSAGE_SIZE caps what clients send; PostgreSQL's own messages
         * go up to its 1 GB allocation limit (a DataRow of a big value) and
         * stream through, only the few the proxy reads are held whole */
        px_codec_status_t rc = px_codec_peek_header(p, avail, PX_SERVER_MAX_MESSAGE, &hdr);
        if (rc == PX_CODEC_NEED_MORE)
            break;
        if (rc == PX_CODEC_ERROR) {
            px_server_close(s, "invalid message length from server");
            return;
        }
        uint32_t whole = PX_MSG_HDR_LEN + hdr.body_len;
        bool login = s->state == PX_SERVER_LOGIN;
        bool inspect = login || hdr.type == 'Z' || hdr.type == 'E' || hdr.type == 'T' ||
                       hdr.type == 'S' || !c || (hdr.type == 'C' && (c->sets || c->digest_id)) ||
                       (hdr.type == 'N' && c->retry);
        if (inspect && avail < whole) {
            /* making room moves the buffer's bytes: what is queued from it
             * goes out first (queued spans point into it) */
            if (c && to_client.n > 0 && !reply_flush(c, &to_client))
                goto client_broken;
            if (!px_iobuf_reserve(w, &s->io.in, whole)) {
                px_server_close(s, "out of memory");
                return;
            }
            break;
        }
        px_span_t body = {p + PX_MSG_HDR_LEN, hdr.body_len};
        if (login) {
            in->rpos += whole;
            if (!login_msg(s, &hdr, body))
                return;
            continue;
        }
        if (!px_server_drain_synth(s, c ? &to_client : NULL))
            goto client_broken;
        px_req_t *req = px_fifo_peek(&s->fifo);
        uint8_t kind = req ? req->kind : PX_REQ_QUERY;
        bool forward = c && (!req || req_is_client(kind));
        if (!req && !c) {
            /* nobody asked: an unsolicited message on an unused connection */
            in->rpos += whole;
            if (!idle_msg(s, &hdr, body))
                return;
            continue;
        }
        bool pop = req && req_ends(kind, hdr.type);
        px_log_debug(NULL, "S-%u <- %c head %d pop %d fifo %u", s->id, hdr.type, req ? kind : -1,
                     pop, s->fifo.count);
        switch (hdr.type) {
        case 'Z': {
            uint8_t st;
            if (!px_codec_parse_ready(body, &st)) {
                px_server_close(s, "malformed ReadyForQuery from server");
                return;
            }
            s->tx_status = st;
            if (req && !pop) {
                /* ReadyForQuery while extended requests are outstanding: the
                 * two sides no longer agree; never lend this connection again */
                SLOG(PX_LOG_ERROR, s, "protocol out of sync: ReadyForQuery with %s outstanding",
                     "an extended-query request");
                if (c)
                    px_client_fail(c, PX_CLOSE_INTERNAL, "08P01",
                                   "protocol out of sync with the server");
                px_server_close(s, "protocol out of sync");
                return;
            }
            if (c && forward) {
                if (st == 'I')
                    c->set_local = c->sets_reverted = false;
                if (c->sets)
                    px_client_sets_on_ready(c, s, st);
                px_cacheflow_on_ready(c, s, st);
                c->tx_status = st;
                c->in_copy_in = false;
                if (st == 'I')
                    PX_STAT_INC(w, transactions);
                if (c->q_start_ns) {
                    uint64_t t = px_reply_ns(w);
                    px_metrics_observe_query(
                        w->index,
                        s->pool->is_primary ? PX_METRICS_ROUTE_PRIMARY : PX_METRICS_ROUTE_REPLICA,
                        PX_METRICS_CACHE_BYPASS, (double)(t - c->q_start_ns) / 1e9);
                    c->q_start_ns = s->fifo.count > 1 ? t : 0; /* pipelined: next one starts */
                }
            }
            break;
        }
        case 'S':
            if (c && forward)
                px_client_sets_on_param(c, body);
            break;
        case 'C':
            while (copy_syncs_queued(s)) {
                /* the copy completed: it ignored every Sync sent inside it */
                px_fifo_remove_at(&s->fifo, 1);
                if (c)
                    px_client_sets_ready_skipped(c);
            }
            if (c && forward && c->sets)
                px_client_sets_on_command(c, body);
            if (c && forward && c->digest_id)
                px_client_digest_done(c, s, &body);
            break;
        case 'E':
            if (copy_syncs_queued(s)) {
                /* the copy failed: a Sync it read before failing was
                 * ignored, one after is answered; which is unknown */
                if (c)
                    px_client_fail(c, PX_CLOSE_PROTOCOL_ERROR, "08P01",
                                   "COPY failed with a Sync sent in the middle of its data");
                px_server_close(s, "COPY failed with a Sync sent inside it");
                return;
            }
            if (c && forward) {
                px_error_fields_t ef;
                if (px_codec_parse_error(body, &ef)) {
                    px_span_t sev = ef.severity_nl.n ? ef.severity_nl : ef.severity;
                    if (sev.n == 5 &&
                        (memcmp(sev.p, "FATAL", 5) == 0 || memcmp(sev.p, "PANIC", 5) == 0))
                        s->said_fatal = true;
                }
            }
            if (c && forward && c->retry && to_client.flushes == 0 &&
                px_client_retry_error(c, body)) {
                /* a replica refused or lost the read before any of its reply
                 * reached the client (what this pass queued is taken back):
                 * the unit goes elsewhere and this connection goes away */
                px_sender_discard(&to_client);
                in->rpos += whole;
                px_server_close(s, "replica error before the first reply byte");
                return;
            }
            if (c && forward)
                c->copy_end_sent = true; /* a failed copy takes no more data */
            if (c && forward && c->sets)
                px_client_sets_on_error(c);
            if (c && forward && c->digest_id)
                px_client_digest_done(c, s, NULL);
            if (kind == PX_REQ_SKIP_SET)
                /* the whole statement rolled back: what the connection holds
                 * is no longer what the proxy noted */
                s->params_unknown = true;
            if (kind == PX_REQ_SKIP_SET && c) {
                /* a startup setting of this client the server refused: tell
                 * the client as a warning rather than failing its query */
                px_error_fields_t ef;
                if (px_codec_parse_error(body, &ef)) {
                    char msg[300];
                    snprintf(msg, sizeof(msg), "could not apply a session setting: %.*s",
                             (int)ef.message.n, (const char *)ef.message.p);
                    px_wbuf_t wb = px_sender_wbuf(&to_client);
                    px_build_notice(&wb, "WARNING", "01000", msg);
                    if (!px_sender_commit(&to_client, &wb))
                        goto client_broken;
                }
            } else if (kind == PX_REQ_SKIP_PARSE && c) {
                forward = true; /* the client's statement no longer prepares: say why */
            } else if (!forward && req) {
                SLOG(PX_LOG_WARN, s, "error from a proxy-issued request");
                if (s->state == PX_SERVER_RESETTING || s->state == PX_SERVER_CHECKING) {
                    /* a reset that did not run (a late cancel hit it) leaves
                     * the last client's state: never lend this connection */
                    px_server_close(s, "reset or check failed");
                    return;
                }
            }
            if (req && req_is_extended(kind)) {
                /* forward or drop this message first, then skip to Sync */
                uint32_t n = whole;
                if (forward && !forward_error(c, &to_client, p, n))
                    goto client_broken;
                if (forward && px_cacheflow_filling(c))
                    px_cacheflow_capture(c, hdr.type, p, n);
                forwarded += forward ? n : 0;
                in->rpos += n;
                error_skip_to_sync(s);
                continue;
            }
            break;
        case 'N':
            if (c && forward && c->retry && to_client.flushes == 0) {
                /* a replica shutting down says so (57P01, 57P02) and closes:
                 * an immediate shutdown flushes what the backend had buffered
                 * (a RowDescription) with it. Nothing reached the client yet:
                 * take this pass's bytes back and send the read elsewhere */
                px_error_fields_t ef;
                if (px_codec_parse_error(body, &ef) && ef.sqlstate.n == 5 &&
                    ef.sqlstate.p[0] == '5' && ef.sqlstate.p[1] == '7') {
                    px_sender_discard(&to_client);
                    in->rpos += whole;
                    px_server_close(s, "replica shutting down before the first reply byte");
                    return;
                }
            }
            break;
        case 'G':
        case 'W':
            if (c && forward)
                c->in_copy_in = true;
            if (c && req && req->kind == PX_REQ_EXECUTE) {
                /* COPY FROM STDIN through the extended protocol: the server
                 * ignores Syncs sent before the copy ends (pg8000 and libpq
                 * pipeline one behind the Execute); the Sync after CopyDone
                 * or CopyFail is the one it answers */
                bool dropped = false;
                while (s->fifo.count > 1 && px_fifo_at(&s->fifo, 1)->kind == PX_REQ_SYNC &&
                       px_fifo_at(&s->fifo, 1)->after_exec) {
                    px_fifo_remove_at(&s->fifo, 1);
                    px_client_sets_ready_skipped(c); /* that Sync gets no ReadyForQuery */
                    dropped = true;
                }
                if (dropped)
                    c->unsynced = true;
            }
            break;
        default:
            break;
        }
        uint32_t n = avail < whole ? (uint32_t)avail : whole;
        if (forward) {
            if (!px_sender_span(&to_client, p, n))
                goto client_broken;
            forwarded += n;
            if (px_cacheflow_filling(c))
                px_cacheflow_capture(c, hdr.type, p, n);
        }
        in->rpos += n;
        s->io.pass_left = whole - n;
        s->io.pass_skip = !forward;
        if (pop) {
            if (kind == PX_REQ_PARSE && req->has_key && c)
                px_stmt_map_confirm(&c->stmts, req->key);
            if ((kind == PX_REQ_DESCRIBE || kind == PX_REQ_SKIP_DESCRIBE) && req->has_key) {
                /* the statement's shape on this connection, and what the
                 * client now believes it is */
                uint64_t shape = px_stmt_shape(hdr.type == 'T' ? body.p : NULL, body.n);
                px_stmt_set_note_shape(s->stmts, req->key, shape);
                if (kind == PX_REQ_DESCRIBE && c)
                    px_stmt_map_set_shape(&c->stmts, req->name_hash, req->key, shape);
                if (kind == PX_REQ_SKIP_DESCRIBE)
                    s->shape_wait = false;
            }
            px_fifo_pop(&s->fifo);
            if (!px_server_drain_synth(s, c ? &to_client : NULL))
                goto client_broken;
            if (s->cancel_deferred)
                cancel_when_client_runs(s);
        }
        if (hdr.type == 'Z' && s->fifo.count == 0) {
            if (s->state == PX_SERVER_CHECKING || s->state == PX_SERVER_RESETTING) {
                if (s->tx_status != 'I') {
                    px_server_close(s, "server connection not idle after reset");
                    return;
                }
                px_pool_server_ready(s);
                return;
            }
            if (c && s->tx_status == 'I' && !c->unsynced && !c->pinned &&
                !(c->io.pass_left > 0 && !c->io.pass_skip) &&
                cfg->pool_mode == PX_POOL_MODE_TRANSACTION) {
                release = true;
                break;
            }
        }
    }

    if (s->state == PX_SERVER_CLOSING)
        return;
    if (c && to_client.n > 0) {
        if (!reply_flush(c, &to_client))
            goto client_broken;
        PX_STAT_ADD(w, bytes_server_to_client, forwarded);
        if (px_io_blocked(&c->io))
            s->io.paused = true;
    }
    if (s->io.in) {
        if (s->io.in->rpos == s->io.in->wpos)
            px_io_release_in(&s->io);
        else if (s->io.in->wpos == s->io.in->cap)
            px_iobuf_compact(s->io.in);
    }
    if (release) {
        /* the transaction is over: the connection goes back to the pool and
         * the client goes on with whatever it already sent */
        c->server = NULL;
        s->client = NULL;
        s->ignore_till_sync = false;
        s->shape_wait = false;
        if ((px_route_verdict_t)c->route == PX_ROUTE_PRIMARY) {
            /* a transaction that may have written may have called nextval(),
             * perhaps in a column default: the sequence state here is its
             * client's now, or mixed when another's was here before it */
            s->seq_owner =
                s->seq_owner == 0 || s->seq_owner == c->serial ? c->serial : PX_SEQ_MIXED;
            c->wr_server = s->serial;
        }
        px_route_done(c, s->pool, (px_route_verdict_t)c->route);
        c->unit_done = false;
        px_client_set_state(c, PX_CLIENT_IDLE);
        s->io.paused = false;
        if (px_io_start_read(&s->io) != 0) {
            px_server_close(s, "server read error");
        } else {
            px_pool_release(s);
        }
        if (c->state == PX_CLIENT_IDLE && w->draining) {
            px_client_fail(c, PX_CLOSE_SHUTDOWN, "57P01",
                           "terminating connection because the proxy is shutting down");
            return;
        }
        if (c->state == PX_CLIENT_IDLE) {
            c->io.paused = false;
            px_client_process(c);
        }
        return;
    }
    if (s->io.paused)
        px_io_stop_read(&s->io);
    else if (px_io_start_read(&s->io) != 0)
        px_server_close(s, "server read error");
    else if (c && c->io.paused && !px_io_blocked(&s->io) && !px_fifo_full(&s->fifo))
        px_client_resume(c);
    return;

client_broken:
    /* the client's socket failed: drop the client, keep or close the server */
    if (c)
        px_client_close(c, PX_CLOSE_CLIENT_WRITE_ERROR);
}

/* ---- cancel ------------------------------------------------------------------ */

typedef struct px_cancel_conn px_cancel_conn_t;

#define PX_CANCEL_TIMEOUT_MS 5000

/* Both handles closed: the postmaster has handled the request (or it failed
 * or timed out), and a connection held back from the pool meanwhile may
 * serve other clients again. */
static void cancel_close_cb(uv_handle_t *h)
{
    px_cancel_conn_t *cc = h->type == UV_TIMER ? px_container_of(h, px_cancel_conn_t, timer)
                                               : px_container_of(h, px_cancel_conn_t, tcp);
    if (--cc->open_handles > 0)
        return;
    px_server_t *s = cc->server;
    free(cc);
    if (!s)
        return;
    s->cancel = NULL;
    if (s->cancel_hold && s->state != PX_SERVER_CLOSING) {
        s->cancel_hold = false;
        px_pool_release(s);
    }
}

static void cancel_done(px_cancel_conn_t *cc)
{
    if (!uv_is_closing((uv_handle_t *)&cc->tcp)) {
        uv_close((uv_handle_t *)&cc->tcp, cancel_close_cb);
        uv_close((uv_handle_t *)&cc->timer, cancel_close_cb);
    }
}

static void cancel_timeout_cb(uv_timer_t *t)
{
    cancel_done(px_container_of(t, px_cancel_conn_t, timer));
}

static void cancel_alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    (void)hint;
    px_cancel_conn_t *cc = px_container_of(h, px_cancel_conn_t, tcp);
    *b = uv_buf_init((char *)cc->rbuf, sizeof(cc->rbuf));
}

/* As libpq's PQcancel: the postmaster closes the connection once it has
 * signalled the backend. */
static void cancel_read_cb(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    (void)b;
    if (n < 0)
        cancel_done(px_container_of(st, px_cancel_conn_t, tcp));
}

static void cancel_write_cb(uv_write_t *req, int status)
{
    px_cancel_conn_t *cc = px_container_of(req, px_cancel_conn_t, wreq);
    if (status < 0 || uv_read_start((uv_stream_t *)&cc->tcp, cancel_alloc_cb, cancel_read_cb) != 0)
        cancel_done(cc);
}

static void cancel_connect_cb(uv_connect_t *req, int status)
{
    px_cancel_conn_t *cc = px_container_of(req, px_cancel_conn_t, req);
    if (status < 0) {
        cancel_done(cc);
        return;
    }
    uv_buf_t b = uv_buf_init((char *)cc->pkt, sizeof(cc->pkt));
    if (uv_write(&cc->wreq, (uv_stream_t *)&cc->tcp, &b, 1, cancel_write_cb) != 0)
        cancel_done(cc);
}

/* Open a new connection to the server and send CancelRequest for this
 * connection's backend; fire and forget, like libpq's PQcancel. */
void px_server_send_cancel(px_server_t *s)
{
    if (!s->be_pid || s->cancel)
        return; /* one in flight is enough */
    px_worker_t *w = s->io.w;
    px_cancel_conn_t *cc = calloc(1, sizeof(*cc));
    if (!cc)
        return;
    px_wbuf_t wb = px_wbuf_make(cc->pkt, sizeof(cc->pkt));
    px_build_cancel_request(&wb, s->be_pid, s->be_key);
    struct sockaddr_storage addr;
    if (wb.failed || resolve(s->pool->host, s->pool->port, &addr) != 0 ||
        uv_tcp_init(&w->loop, &cc->tcp) != 0) {
        free(cc);
        return;
    }
    uv_timer_init(&w->loop, &cc->timer);
    /* handle data: the shutdown walk tells sessions apart by it */
    cc->tcp.data = cc->timer.data = NULL;
    cc->open_handles = 2;
    cc->server = s;
    s->cancel = cc;
    uv_timer_start(&cc->timer, cancel_timeout_cb, PX_CANCEL_TIMEOUT_MS, 0);
    if (uv_tcp_connect(&cc->req, &cc->tcp, (struct sockaddr *)&addr, cancel_connect_cb) != 0)
        cancel_done(cc);
    SLOG(PX_LOG_DEBUG, s, "cancel sent for backend %u", s->be_pid);
}

/* Whether the request at the head of the queue is a statement the proxy
 * sent ahead of the client's as a Query of its own (settings, RESET ALL,
 * DISCARD SEQUENCES): its ReadyForQuery comes as soon as it is done. An
 * injected Parse or Describe says nothing: PostgreSQL holds their replies
 * until the client's Sync, long after the client's Execute started. */
static bool head_is_injected_query(const px_server_t *s)
{
    const px_req_t *r = px_fifo_peek((px_fifo_t *)&s->fifo);
    return r && (r->kind == PX_REQ_SKIP_SET || r->kind == PX_REQ_SKIP_QUERY);
}

/* Send a deferred cancel once the proxy's own statements ahead of the
 * client's are done; forget it when nothing of the client's is left. */
static void cancel_when_client_runs(px_server_t *s)
{
    if (s->client && head_is_injected_query(s))
        return;
    s->cancel_deferred = false;
    if (s->client && s->fifo.count > 0)
        px_server_send_cancel(s);
}

/*
 * A client's CancelRequest. PostgreSQL cancels whatever its backend runs:
 * while the statements the proxy put ahead of the client's (its settings)
 * still run, the cancel waits for them, or a cancelled RESET would leave
 * the last client's settings in force.
 */
void px_server_cancel_for_client(px_server_t *s)
{
    if (head_is_injected_query(s)) {
        s->cancel_deferred = true;
        return;
    }
    px_server_send_cancel(s);
}

void px_server_check_timeouts(px_pool_t *pool, uint64_t now)
{
    px_list_t *it = pool->pending.next;
    while (it != &pool->pending) {
        px_server_t *s = px_container_of(it, px_server_t, link);
        it = it->next;
        if (s->deadline && now >= s->deadline) {
            if (s->state == PX_SERVER_CONNECTING || s->state == PX_SERVER_LOGIN)
                login_fail(s, "08006", "timeout while connecting to the server");
            else
                px_server_close(s, "server did not answer a check or reset in time");
        }
    }
}

/* ---- moving idle connections between workers -------------------------- */

bool px_server_handoff(px_server_t *s, int target)
{
    px_worker_t *w = s->io.w;
    px_pool_t *pool = s->pool;
    if (s->state == PX_SERVER_CLOSING || s->state == PX_SERVER_CONNECTING)
        return false;
    if (s->client || s->io.out || s->fifo.count || s->io.pass_left || s->ignore_till_sync ||
        s->tls_asked || (s->io.in && s->io.in->rpos != s->io.in->wpos) || s->tx_status != 'I')
        return false;
    /* a TLS session moves too (its engine works on memory buffers, not the
     * socket), when it sits between records with nothing buffered either way */
    if (s->io.tls && (!px_tls_is_done(s->io.tls) || px_tls_read_pending(s->io.tls) ||
                      px_tls_out_pending(s->io.tls) > 0))
        return false;
    uv_os_fd_t fd;
    if (uv_fileno((uv_handle_t *)&s->io.tcp, &fd) != 0)
        return false;
    int nfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (nfd < 0)
        return false;
    px_handoff_t h = {nfd,      pool->budget, s->be_pid, s->be_key,    s->applied,
                      s->stmts, s->io.tls,    s->serial, s->seq_owner, s->params_unknown};
    if (!px_shared_post_handoff(w->shared, target, &h)) {
        close(nfd);
        return false;
    }
    memset(&s->applied, 0, sizeof(s->applied)); /* moved with the message */
    s->stmts = NULL;
    s->io.tls = NULL;
    SLOG(PX_LOG_DEBUG, s, "handed to worker %d", target);
    /* retire this end without giving back budget: the connection lives on */
    px_server_set_state(s, PX_SERVER_CLOSING);
    pool->n_local--;
    px_io_close(&s->io, server_free_cb);
    return true;
}

void px_server_adopt(px_worker_t *w, px_handoff_t *h)
{
    px_pool_budget_t *b = h->budget;
    const char *database = b->key;
    const char *user = b->key + strlen(b->key) + 1;
    px_pool_t *pool =
        w->stopping ? NULL : px_pool_get(w, database, user, b->host, b->port, b->is_primary);
    px_server_t *s = pool ? calloc(1, sizeof(*s)) : NULL;
    if (s)
        s->serial = px_serial_next();
    if (!s)
        goto fail;
    px_io_init(&s->io, w, PX_IO_SERVER);
    s->pool = pool;
    s->id = ++w->next_server_id;
    s->tx_status = 'I';
    s->be_pid = h->be_pid;
    s->be_key = h->be_key;
    px_fifo_init(&s->fifo);
    px_list_init(&s->link);
    if (uv_tcp_init(&w->loop, &s->io.tcp) != 0) {
        free(s);
        goto fail;
    }
    s->io.tcp.data = s;
    if (uv_tcp_open(&s->io.tcp, h->fd) != 0) {
        s->state = PX_SERVER_CLOSING;
        px_io_close(&s->io, server_free_cb);
        goto fail;
    }
    s->applied = h->applied;
    s->serial = h->serial; /* the same connection: its sequence state goes with it */
    s->seq_owner = h->seq_owner;
    s->params_unknown = h->params_unknown;
    s->stmts = h->stmts;
    h->stmts = NULL;
    s->io.tls = h->tls;
    h->tls = NULL;
    s->state = PX_SERVER_CHECKING; /* pending until placed */
    px_list_append(&pool->pending, &s->link);
    pool->n_pending++;
    pool->n_local++;
    s->last_used = px_now(w);
    if (px_io_start_read(&s->io) != 0) {
        px_server_close(s, "server read error");
        return;
    }
    SLOG(PX_LOG_DEBUG, s, "adopted from another worker, backend pid %u", s->be_pid);
    px_pool_server_ready(s);
    return;
fail:
    close(h->fd);
    px_params_free(&h->applied);
    px_stmt_set_free(h->stmts);
    px_tls_free(h->tls);
    atomic_fetch_sub(&b->open, 1);
}
