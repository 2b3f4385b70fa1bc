/*
 * Socket plumbing shared by client sessions and server connections.
 *
 * Writes go out synchronously first (uv_try_write over an iovec of spans);
 * only what the socket did not take is copied into the destination's `out`
 * buffer and handed to one uv_write. While a destination has bytes in flight
 * its sources stop reading (backpressure), and they resume from the write
 * callback. So a connection never holds more than one read's worth of
 * unsent data, whatever the size of the result streaming through it.
 */
#include <stdlib.h>
#include <string.h>

#include "px.h"
#include "px_tls.h"

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf);

void px_io_init(px_io_t *io, px_worker_t *w, px_io_kind_t kind)
{
    memset(io, 0, sizeof(*io));
    io->w = w;
    io->kind = (uint8_t)kind;
}

static void read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);

int px_io_start_read(px_io_t *io)
{
    if (io->reading || io->closing)
        return 0;
    int rc = uv_read_start((uv_stream_t *)&io->tcp, alloc_cb, read_cb);
    if (rc == 0)
        io->reading = true;
    return rc;
}

void px_io_stop_read(px_io_t *io)
{
    if (!io->reading || io->closing)
        return;
    uv_read_stop((uv_stream_t *)&io->tcp);
    io->reading = false;
}

void px_io_release_in(px_io_t *io)
{
    if (io->in && io->in->rpos == io->in->wpos) {
        px_iobuf_put(io->w, io->in);
        io->in = NULL;
    }
}

/* Ciphertext lands here and goes straight into the TLS engine: one read
 * at a time per worker thread. */
static _Thread_local uint8_t tls_cipher[16384];
static void io_fail(px_io_t *io, px_close_reason_t why, const char *what);

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    px_io_t *io = (px_io_t *)h->data;
    (void)suggested;
    if (io->tls) {
        size_t room = px_tls_in_room(io->tls);
        buf->base = (char *)tls_cipher;
        buf->len = room < sizeof(tls_cipher) ? room : sizeof(tls_cipher);
        return;
    }
    if (!io->in) {
        io->in = px_iobuf_get(io->w, PX_IOBUF_SIZE);
        if (!io->in) {
            buf->base = NULL;
            buf->len = 0;
            return;
        }
    }
    px_iobuf_t *b = io->in;
    if (b->wpos == b->cap && b->rpos > 0)
        px_iobuf_compact(b);
    buf->base = (char *)b->data + b->wpos;
    buf->len = b->cap - b->wpos;
}

static void read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    px_io_t *io = (px_io_t *)stream->data;
    (void)buf;
    if (io->closing)
        return;
    if (io->tls && nread > 0) {
        size_t taken = 0;
        if (px_tls_feed(io->tls, (const uint8_t *)buf->base, (size_t)nread, &taken) ==
                PX_TLS_ERROR ||
            taken != (size_t)nread) {
            px_log_info(NULL, "TLS error: %s", px_tls_error(io->tls));
            io_fail(io, PX_CLOSE_PROTOCOL_ERROR, "TLS error on the server connection");
            return;
        }
        px_io_tls_pump(io);
        return;
    }
    if (nread > 0) {
        io->in->wpos += (uint32_t)nread;
    } else if (nread == 0) {
        return; /* EAGAIN */
    } else if (nread == UV_ENOBUFS) {
        /* buffer full: processing will make room or grow it */
        px_io_stop_read(io);
    }
    if (io->kind == PX_IO_CLIENT) {
        px_client_t *c = (px_client_t *)io;
        if (nread < 0 && nread != UV_ENOBUFS) {
            px_client_close(c, nread == UV_EOF ? PX_CLOSE_CLIENT_EOF : PX_CLOSE_CLIENT_READ_ERROR);
            return;
        }
        px_client_process(c);
    } else {
        px_server_t *s = (px_server_t *)io;
        if (nread < 0 && nread != UV_ENOBUFS) {
            px_server_close(s,
                            nread == UV_EOF ? "server closed the connection" : "server read error");
            return;
        }
        px_server_process(s);
    }
}

void px_sender_init(px_sender_t *s, px_io_t *dst)
{
    s->dst = dst;
    s->n = 0;
    s->bytes = 0;
    s->scratch_used = 0;
    s->n_heap = 0;
    s->flushes = 0;
}

static void sender_reset(px_sender_t *s)
{
    s->scratch_used = 0;
    for (int i = 0; i < s->n_heap; i++)
        free(s->heap[i]);
    s->n_heap = 0;
}

void *px_sender_alloc(px_sender_t *s, size_t n)
{
    /* room for the span that will follow, so no flush invalidates this */
    if (s->n >= PX_SENDER_IOV - 1 && px_sender_flush(s) != 0)
        return NULL;
    if (n <= sizeof(s->scratch) - s->scratch_used) {
        void *p = s->scratch + s->scratch_used;
        s->scratch_used += n;
        return p;
    }
    if (s->n_heap == (int)(sizeof(s->heap) / sizeof(s->heap[0])) && px_sender_flush(s) != 0)
        return NULL;
    void *p = malloc(n);
    if (p)
        s->heap[s->n_heap++] = p;
    return p;
}

bool px_sender_span(px_sender_t *s, const void *p, size_t n)
{
    if (n == 0)
        return true;
    if (s->n > 0) {
        uv_buf_t *last = &s->iov[s->n - 1];
        if (last->base + last->len == (const char *)p) {
            last->len += n;
            s->bytes += n;
            return true;
        }
    }
    if (s->n == PX_SENDER_IOV) {
        if (px_sender_flush(s) != 0)
            return false;
    }
    s->iov[s->n].base = (char *)p;
    s->iov[s->n].len = n;
    s->n++;
    s->bytes += n;
    return true;
}

px_wbuf_t px_sender_wbuf(px_sender_t *s)
{
    if (s->n >= PX_SENDER_IOV - 1 && px_sender_flush(s) != 0)
        return px_wbuf_make(s->scratch, 0); /* fails on first use */
    return px_wbuf_make(s->scratch + s->scratch_used, sizeof(s->scratch) - s->scratch_used);
}

bool px_sender_commit(px_sender_t *s, px_wbuf_t *wb)
{
    if (wb->failed)
        return false;
    uint8_t *p = wb->p;
    s->scratch_used += wb->len;
    return px_sender_span(s, p, wb->len);
}

static int start_write(px_io_t *io);

static void write_cb(uv_write_t *req, int status)
{
    px_io_t *io = (px_io_t *)req->data;
    px_worker_wreq_put(io->w, req);
    io->wreq = NULL;
    bool retired = io->out_retired != NULL;
    px_iobuf_put(io->w, io->out_retired);
    io->out_retired = NULL;
    if (io->closing || status == UV_ECANCELED) {
        px_iobuf_put(io->w, io->out);
        io->out = NULL;
        return;
    }
    if (status < 0) {
        if (io->kind == PX_IO_CLIENT)
            px_client_close((px_client_t *)io, PX_CLOSE_CLIENT_WRITE_ERROR);
        else
            px_server_close((px_server_t *)io, "server write error");
        return;
    }
    if (!retired)
        io->out->rpos += io->out_inflight; /* else the write read the retired buffer */
    io->out_inflight = 0;
    if (io->out->rpos < io->out->wpos) {
        /* more was appended while the write was in flight */
        int rc = start_write(io);
        if (rc < 0) {
            if (io->kind == PX_IO_CLIENT)
                px_client_close((px_client_t *)io, PX_CLOSE_CLIENT_WRITE_ERROR);
            else
                px_server_close((px_server_t *)io, "server write error");
        }
        return;
    }
    px_iobuf_put(io->w, io->out);
    io->out = NULL;
    /* drained: let whoever was waiting on this destination go on */
    if (io->kind == PX_IO_CLIENT) {
        px_client_t *c = (px_client_t *)io;
        if (c->server)
            px_server_resume(c->server);
        if (!c->io.closing)
            px_client_resume(c);
    } else {
        px_server_t *s = (px_server_t *)io;
        if (s->client)
            px_client_resume(s->client);
    }
}

static int start_write(px_io_t *io)
{
    io->wreq = px_worker_wreq_get(io->w);
    if (!io->wreq)
        return UV_ENOMEM;
    io->wreq->data = io;
    io->out_inflight = io->out->wpos - io->out->rpos;
    uv_buf_t b = uv_buf_init((char *)io->out->data + io->out->rpos, io->out_inflight);
    int rc = uv_write(io->wreq, (uv_stream_t *)&io->tcp, &b, 1, write_cb);
    if (rc < 0) {
        px_worker_wreq_put(io->w, io->wreq);
        io->wreq = NULL;
        io->out_inflight = 0;
    }
    return rc;
}

/* Slack kept in a fresh output buffer so small replies can be appended while
 * a write is in flight without growing it. */
#define PX_OUT_SLACK 8192
/* Most bytes a destination may hold unsent: one maximal message and change. */
#define PX_OUT_HARD_CAP (80u * 1024 * 1024)

static int tls_flush_out(px_io_t *io);

void px_sender_discard(px_sender_t *s)
{
    s->n = 0;
    s->bytes = 0;
    sender_reset(s);
}

int px_sender_flush(px_sender_t *s)
{
    px_io_t *io = s->dst;
    if (s->n == 0)
        return 0;
    s->flushes++;
    if (io->tls && !io->closing) {
        /* encrypt everything queued, then send the ciphertext */
        px_tls_result_t r = px_tls_writev(io->tls, (const struct iovec *)s->iov, s->n);
        s->n = 0;
        s->bytes = 0;
        sender_reset(s);
        if (r != PX_TLS_OK)
            return UV_EPROTO;
        return tls_flush_out(io);
    }
    int n = s->n;
    uv_buf_t *iov = s->iov;
    size_t total = s->bytes;
    s->n = 0;
    s->bytes = 0;
    if (io->closing) {
        sender_reset(s);
        return UV_ECANCELED;
    }
    size_t done = 0;
    if (!io->out) {
        int rc = uv_try_write((uv_stream_t *)&io->tcp, iov, (unsigned)n);
        if (rc >= 0)
            done = (size_t)rc;
        else if (rc != UV_EAGAIN) {
            sender_reset(s);
            return rc;
        }
        if (done == total) {
            sender_reset(s);
            return 0;
        }
    }
    /* keep the rest, after whatever is already waiting */
    size_t rest = total - done;
    if (!io->out) {
        io->out = px_iobuf_get(io->w, (uint32_t)(rest + PX_OUT_SLACK));
        if (!io->out) {
            sender_reset(s);
            return UV_ENOMEM;
        }
    } else if (io->out->cap - io->out->wpos < rest) {
        /* one large message after the destination filled up: move what is
         * not yet in flight to a bigger buffer; the old one stays alive for
         * the write that reads it. Beyond the hard cap a source is ignoring
         * backpressure. */
        uint32_t keep_from = io->out->rpos + (io->out_retired ? 0 : io->out_inflight);
        size_t pending = io->out->wpos - keep_from;
        if (io->out_retired || pending + rest > PX_OUT_HARD_CAP) {
            sender_reset(s);
            return UV_ENOBUFS;
        }
        px_iobuf_t *nb = px_iobuf_get(io->w, (uint32_t)(pending + rest + PX_OUT_SLACK));
        if (!nb) {
            sender_reset(s);
            return UV_ENOMEM;
        }
        memcpy(nb->data, io->out->data + keep_from, pending);
        nb->wpos = (uint32_t)pending;
        if (io->wreq)
            io->out_retired = io->out;
        else
            px_iobuf_put(io->w, io->out);
        io->out = nb;
    }
    size_t skip = done;
    for (int i = 0; i < n; i++) {
        size_t len = iov[i].len;
        const char *p = iov[i].base;
        if (skip >= len) {
            skip -= len;
            continue;
        }
        p += skip;
        len -= skip;
        skip = 0;
        memcpy(io->out->data + io->out->wpos, p, len);
        io->out->wpos += (uint32_t)len;
    }
    sender_reset(s);
    if (!io->wreq)
        return start_write(io);
    return 0;
}

void px_io_close(px_io_t *io, uv_close_cb cb)
{
    if (io->closing)
        return;
    io->closing = true;
    io->reading = false;
    uv_close((uv_handle_t *)&io->tcp, cb);
}

/* ---- TLS (client connections) ------------------------------------------- */

/* Send the ciphertext the engine has produced (handshake, records, alerts). */
static int tls_flush_out(px_io_t *io)
{
    const uint8_t *p;
    size_t n = px_tls_peek_out(io->tls, &p);
    if (n == 0)
        return 0;
    px_sender_t raw;
    px_sender_init(&raw, io);
    struct px_tls *t = io->tls;
    io->tls = NULL; /* these bytes are ciphertext already */
    int rc = px_sender_span(&raw, p, n) ? px_sender_flush(&raw) : UV_ENOMEM;
    io->tls = t;
    px_tls_consume_out(t, n);
    return rc;
}

bool px_io_tls_accept(px_io_t *io, struct px_tls_ctx *ctx)
{
    char err[160];
    io->tls = px_tls_new(ctx, NULL, err, sizeof(err));
    if (!io->tls) {
        px_log_warn(NULL, "TLS session failed: %s", err);
        return false;
    }
    /* anything the client sent after SSLRequest belongs to the handshake */
    if (io->in && io->in->rpos < io->in->wpos) {
        size_t taken = 0;
        size_t n = io->in->wpos - io->in->rpos;
        if (px_tls_feed(io->tls, io->in->data + io->in->rpos, n, &taken) != PX_TLS_OK || taken != n)
            return false;
        io->in->rpos = io->in->wpos;
    }
    return true;
}

static void io_fail(px_io_t *io, px_close_reason_t why, const char *what)
{
    if (io->kind == PX_IO_CLIENT)
        px_client_close((px_client_t *)io, why);
    else
        px_server_close((px_server_t *)io, what);
}

bool px_io_tls_connect(px_io_t *io, struct px_tls_ctx *ctx, const char *host)
{
    char err[160];
    io->tls = px_tls_new(ctx, host, err, sizeof(err));
    if (!io->tls) {
        px_log_warn(NULL, "TLS session failed: %s", err);
        return false;
    }
    /* nothing may follow the server's 'S' before its handshake (CVE-2021-23222) */
    if (io->in && io->in->rpos < io->in->wpos)
        return false;
    return true;
}

void px_io_tls_pump(px_io_t *io)
{
    if (io->pumping || io->closing)
        return;
    io->pumping = true;
    for (int rounds = 0; rounds < 64 && !io->closing; rounds++) {
        if (!px_tls_is_done(io->tls)) {
            px_tls_result_t r = px_tls_handshake(io->tls);
            if (tls_flush_out(io) != 0 || r == PX_TLS_ERROR) {
                if (r == PX_TLS_ERROR)
                    px_log_info(NULL, "TLS handshake failed: %s", px_tls_error(io->tls));
                io->pumping = false;
                io_fail(io, PX_CLOSE_PROTOCOL_ERROR, "TLS handshake with the server failed");
                return;
            }
            if (r != PX_TLS_OK)
                break; /* needs more from the peer */
            if (io->kind == PX_IO_SERVER && !px_server_tls_ready((px_server_t *)io)) {
                io->pumping = false;
                return;
            }
        }
        if (!io->in && !(io->in = px_iobuf_get(io->w, PX_IOBUF_SIZE)))
            break;
        px_iobuf_t *b = io->in;
        if (b->wpos == b->cap)
            px_iobuf_compact(b);
        size_t got = 0;
        px_tls_result_t r = PX_TLS_WANT;
        if (b->wpos < b->cap)
            r = px_tls_read(io->tls, b->data + b->wpos, b->cap - b->wpos, &got);
        b->wpos += (uint32_t)got;
        if (tls_flush_out(io) != 0 || r == PX_TLS_ERROR || r == PX_TLS_CLOSED) {
            io->pumping = false;
            io_fail(io, r == PX_TLS_CLOSED ? PX_CLOSE_CLIENT_EOF : PX_CLOSE_CLIENT_READ_ERROR,
                    "TLS session with the server ended");
            return;
        }
        if (got == 0) {
            if (b->rpos == b->wpos)
                px_io_release_in(io);
            break;
        }
        if (io->kind == PX_IO_CLIENT)
            px_client_process((px_client_t *)io);
        else
            px_server_process((px_server_t *)io);
        if (io->closing || io->paused || !px_tls_read_pending(io->tls))
            break;
    }
    io->pumping = false;
    if (!io->closing && !io->paused && px_tls_in_room(io->tls) > 0 && px_io_start_read(io) != 0)
        io_fail(io, PX_CLOSE_CLIENT_READ_ERROR, "server read error");
}
