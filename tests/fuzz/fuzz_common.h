/*
 * Shared checks for the codec fuzz targets (header-only, included by each
 * fuzz_*.c): run every body parser on a message body and abort on any broken
 * invariant: a reported span outside the input, a parser that says yes to a
 * body it did not fully account for, or a builder that writes past its cap.
 */
#ifndef PX_FUZZ_COMMON_H
#define PX_FUZZ_COMMON_H

#include "px_codec.h"

#include <stdlib.h>
#include <string.h>

#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

/* An empty span may point anywhere (never NULL); a non-empty one lies inside [p, p + n). */
static inline void fuzz_span_inside(px_span_t s, const uint8_t *p, size_t n)
{
    FUZZ_CHECK(s.p != NULL);
    if (s.n == 0)
        return;
    FUZZ_CHECK(s.p >= p && s.n <= n && (size_t)(s.p - p) <= n - s.n);
}

/* A span that came out of a C-string reader: no NUL inside, NUL right after. */
static inline void fuzz_cstr_span(px_span_t s, const uint8_t *p, size_t n)
{
    fuzz_span_inside(s, p, n);
    if (s.n > 0) {
        FUZZ_CHECK(memchr(s.p, 0, s.n) == NULL);
        FUZZ_CHECK(s.p + s.n < p + n && s.p[s.n] == 0);
    }
}

/*
 * Copy a parsed string into a builder whose capacity is just right or one
 * short, and check the sticky flag and the canary after the cap.
 */
static inline void fuzz_builder_span(px_span_t s)
{
    static uint8_t buf[1 << 17];
    if (s.n + 16 > sizeof buf)
        return;
    for (size_t shortfall = 0; shortfall < 2; shortfall++) {
        size_t need = 5 + s.n + 1;
        size_t cap = need - shortfall;
        buf[cap] = 0xa5;
        px_wbuf_t w = px_wbuf_make(buf, cap);
        px_wbuf_begin(&w, 'Q');
        px_wbuf_put_span_cstr(&w, s);
        px_wbuf_end(&w);
        FUZZ_CHECK(w.len <= cap);
        FUZZ_CHECK(buf[cap] == 0xa5);
        FUZZ_CHECK(w.failed == (shortfall != 0));
        if (!w.failed) {
            px_msg_hdr_t h;
            px_span_t body;
            size_t used = 0;
            FUZZ_CHECK(px_codec_read_msg(buf, w.len, UINT32_MAX, &h, &body, &used) == PX_CODEC_OK);
            FUZZ_CHECK(used == w.len && h.type == 'Q');
            px_span_t back;
            FUZZ_CHECK(px_codec_parse_query(body, &back));
            FUZZ_CHECK(back.n == s.n && (s.n == 0 || memcmp(back.p, s.p, s.n) == 0));
        }
    }
}

/* Walk a body with the generic reader until it fails or ends. */
static inline void fuzz_reader_walk(px_span_t body)
{
    px_reader_t r = px_reader_make(body);
    unsigned steps = 0;
    while (!r.failed && r.off < r.n && steps++ < 4096) {
        size_t before = r.off;
        switch (px_reader_byte(&r) & 3) {
        case 0:
            (void)px_reader_int16(&r);
            break;
        case 1: {
            int32_t l = px_reader_int32(&r);
            px_span_t b = px_reader_bytes(&r, l < 0 ? 0 : (size_t)l);
            fuzz_span_inside(b, body.p, body.n);
            break;
        }
        case 2:
            fuzz_cstr_span(px_reader_cstr(&r), body.p, body.n);
            break;
        default:
            (void)px_reader_int32(&r);
            break;
        }
        FUZZ_CHECK(r.failed || r.off > before);
        FUZZ_CHECK(r.off <= r.n);
    }
    if (r.failed) {
        size_t off = r.off;
        FUZZ_CHECK(px_reader_byte(&r) == 0 && r.off == off); /* sticky */
        FUZZ_CHECK(!px_reader_done(&r));
    }
}

/* Every parse_* helper on one body; each answer is checked against the bytes. */
static inline void fuzz_all_parsers(px_span_t body)
{
    const uint8_t *p = body.p;
    size_t n = body.n;
    px_span_t a, b;
    int np;
    int32_t i32;
    uint32_t u1, u2;
    uint8_t k;
    px_error_fields_t f;

    if (px_codec_parse_error(body, &f)) {
        FUZZ_CHECK(n >= 1 && p[n - 1] == 0);
        fuzz_cstr_span(f.severity, p, n);
        fuzz_cstr_span(f.severity_nl, p, n);
        fuzz_cstr_span(f.sqlstate, p, n);
        fuzz_cstr_span(f.message, p, n);
        fuzz_cstr_span(f.detail, p, n);
        fuzz_cstr_span(f.hint, p, n);
    }
    if (px_codec_parse_ready(body, &k))
        FUZZ_CHECK(n == 1 && (k == 'I' || k == 'T' || k == 'E'));
    if (px_codec_parse_param_status(body, &a, &b)) {
        fuzz_cstr_span(a, p, n);
        fuzz_cstr_span(b, p, n);
        FUZZ_CHECK(a.n + b.n + 2 == n);
    }
    if (px_codec_parse_backend_key(body, &u1, &u2))
        FUZZ_CHECK(n == 8);
    if (px_codec_parse_auth(body, &i32, &a)) {
        FUZZ_CHECK(n >= 4 && a.n == n - 4);
        fuzz_span_inside(a, p, n);
        if (i32 == PX_AUTH_MD5)
            FUZZ_CHECK(a.n == 4);
        if (i32 == PX_AUTH_OK || i32 == PX_AUTH_CLEARTEXT)
            FUZZ_CHECK(a.n == 0);
    }
    if (px_codec_parse_query(body, &a)) {
        fuzz_cstr_span(a, p, n);
        FUZZ_CHECK(a.n + 1 == n);
        fuzz_builder_span(a);
    }
    if (px_codec_parse_command_complete(body, &a))
        FUZZ_CHECK(a.n + 1 == n);
    if (px_codec_parse_parse(body, &a, &b, &np)) {
        fuzz_cstr_span(a, p, n);
        fuzz_cstr_span(b, p, n);
        FUZZ_CHECK(np >= 0 && a.n + b.n + 2 + 2 + (size_t)np * 4 == n);
    }
    if (px_codec_parse_bind_names(body, &a, &b)) {
        fuzz_cstr_span(a, p, n);
        fuzz_cstr_span(b, p, n);
        FUZZ_CHECK(a.n + b.n + 2 <= n);
    }
    if (px_codec_parse_target(body, &k, &a)) {
        FUZZ_CHECK(k == 'S' || k == 'P');
        fuzz_cstr_span(a, p, n);
        FUZZ_CHECK(a.n + 2 == n);
    }
    if (px_codec_parse_execute(body, &a, &i32)) {
        fuzz_cstr_span(a, p, n);
        FUZZ_CHECK(a.n + 5 == n);
    }
    if (px_codec_parse_sasl_initial(body, &a, &b)) {
        fuzz_cstr_span(a, p, n);
        fuzz_span_inside(b, p, n);
        FUZZ_CHECK(a.n + 1 + 4 + b.n == n);
    }
    if (px_codec_parse_password(body, &a)) {
        fuzz_span_inside(a, p, n);
        FUZZ_CHECK(a.n == n || a.n + 1 == n);
    }
    fuzz_reader_walk(body);
}

/*
 * Walk a stream of typed messages. Returns how many bytes were consumed by
 * whole messages. Each message is also re-read one byte short (must be
 * NEED_MORE) and its header peeked (must agree).
 */
static inline size_t fuzz_walk_messages(const uint8_t *data, size_t size, uint32_t max_body,
                                        const char *(*name)(uint8_t))
{
    size_t off = 0;
    while (off < size) {
        const uint8_t *p = data + off;
        size_t n = size - off;
        px_msg_hdr_t h, ph;
        px_span_t body;
        size_t used = 0;
        px_codec_status_t st = px_codec_read_msg(p, n, max_body, &h, &body, &used);
        px_codec_status_t pst = px_codec_peek_header(p, n, max_body, &ph);
        FUZZ_CHECK(px_codec_status_to_str(st) != NULL);
        if (st == PX_CODEC_ERROR) {
            FUZZ_CHECK(pst == PX_CODEC_ERROR);
            break;
        }
        if (st == PX_CODEC_NEED_MORE) {
            FUZZ_CHECK(n < PX_MSG_HDR_LEN || (pst == PX_CODEC_OK && n < 5 + (size_t)ph.body_len));
            break;
        }
        FUZZ_CHECK(pst == PX_CODEC_OK && ph.type == h.type && ph.body_len == h.body_len);
        FUZZ_CHECK(h.body_len <= max_body);
        FUZZ_CHECK(used == 5 + (size_t)h.body_len && used <= n);
        FUZZ_CHECK(body.p == p + 5 && body.n == h.body_len);
        FUZZ_CHECK(name(h.type) != NULL);
        px_msg_hdr_t h2;
        px_span_t body2;
        size_t used2 = 0;
        FUZZ_CHECK(px_codec_read_msg(p, used - 1, max_body, &h2, &body2, &used2) ==
                   PX_CODEC_NEED_MORE);
        fuzz_all_parsers(body);
        off += used;
    }
    FUZZ_CHECK(off <= size);
    return off;
}

#endif
