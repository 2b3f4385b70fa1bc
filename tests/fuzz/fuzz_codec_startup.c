/*
 * libFuzzer target: what a client sends on a fresh connection. Startup
 * packets are read until a StartupMessage (SSLRequest/GSSENCRequest may come
 * first, as with a declined TLS request), then the rest is walked as regular
 * frontend messages. Every accepted StartupMessage is rebuilt with
 * px_build_startup and must read back identically.
 */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool span_eq(px_span_t a, px_span_t b)
{
    return a.n == b.n && (a.n == 0 || memcmp(a.p, b.p, a.n) == 0);
}

static void check_startup(const uint8_t *p, size_t n, const px_startup_t *st, size_t used)
{
    FUZZ_CHECK(used >= 8 && used <= n && used <= PX_STARTUP_MAX_LEN);
    switch (st->kind) {
    case PX_STARTUP_SSL:
        FUZZ_CHECK(used == 8 && st->code == PX_PROTO_SSL_REQUEST);
        return;
    case PX_STARTUP_GSSENC:
        FUZZ_CHECK(used == 8 && st->code == PX_PROTO_GSSENC);
        return;
    case PX_STARTUP_CANCEL:
        FUZZ_CHECK(used == 16 && st->code == PX_PROTO_CANCEL);
        return;
    case PX_STARTUP_MESSAGE:
        break;
    default:
        FUZZ_CHECK(0);
    }
    FUZZ_CHECK((st->code >> 16) == 3 && st->proto_minor == (st->code & 0xffff));
    FUZZ_CHECK(st->n_params >= 1 && st->n_params <= PX_STARTUP_MAX_PARAMS);
    FUZZ_CHECK(st->user_idx >= 0 && st->user_idx < st->n_params);
    FUZZ_CHECK(st->database_idx >= -1 && st->database_idx < st->n_params);
    FUZZ_CHECK(p[used - 1] == 0);
    size_t total = 8 + 1;
    for (int i = 0; i < st->n_params; i++) {
        FUZZ_CHECK(st->params[i].name.n > 0);
        fuzz_cstr_span(st->params[i].name, p, used);
        fuzz_cstr_span(st->params[i].value, p, used);
        total += st->params[i].name.n + st->params[i].value.n + 2;
    }
    FUZZ_CHECK(total == used); /* every byte accounted for */

    /* rebuild from NUL-terminated copies and read it back */
    static char text[PX_STARTUP_MAX_LEN + 2];
    static const char *pairs[2 * PX_STARTUP_MAX_PARAMS + 1];
    size_t off = 0;
    int k = 0;
    for (int i = 0; i < st->n_params; i++) {
        const px_span_t *s2[2] = {&st->params[i].name, &st->params[i].value};
        for (int j = 0; j < 2; j++) {
            memcpy(text + off, s2[j]->p, s2[j]->n);
            text[off + s2[j]->n] = 0;
            pairs[k++] = text + off;
            off += s2[j]->n + 1;
        }
    }
    pairs[k] = NULL;
    static uint8_t out[PX_STARTUP_MAX_LEN + 16];
    px_wbuf_t w = px_wbuf_make(out, sizeof out);
    px_build_startup(&w, pairs);
    FUZZ_CHECK(!w.failed && w.len == used - 8 + 8);
    static px_startup_t back;
    size_t used2 = 0;
    const char *err = NULL;
    FUZZ_CHECK(px_codec_read_startup(out, w.len, &back, &used2, &err) == PX_CODEC_OK);
    FUZZ_CHECK(used2 == used && back.n_params == st->n_params && back.user_idx == st->user_idx &&
               back.database_idx == st->database_idx);
    for (int i = 0; i < st->n_params; i++) {
        FUZZ_CHECK(span_eq(back.params[i].name, st->params[i].name));
        FUZZ_CHECK(span_eq(back.params[i].value, st->params[i].value));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static px_startup_t st;
    size_t off = 0;
    for (int round = 0; round < 4 && off < size; round++) {
        const uint8_t *p = data + off;
        size_t n = size - off;
        size_t used = 0;
        const char *err = NULL;
        px_codec_status_t rc = px_codec_read_startup(p, n, &st, &used, &err);
        if (rc == PX_CODEC_ERROR) {
            FUZZ_CHECK(err != NULL && err[0] != 0);
            return 0;
        }
        if (rc == PX_CODEC_NEED_MORE)
            return 0;
        check_startup(p, n, &st, used);
        /* a packet one byte short is never anything but NEED_MORE */
        static px_startup_t tmp;
        size_t u2 = 0;
        FUZZ_CHECK(px_codec_read_startup(p, used - 1, &tmp, &u2, NULL) == PX_CODEC_NEED_MORE);
        off += used;
        if (st.kind == PX_STARTUP_MESSAGE) {
            (void)fuzz_walk_messages(data + off, size - off, 1u << 20, px_codec_frontend_name);
            return 0;
        }
        if (st.kind == PX_STARTUP_CANCEL)
            return 0;
    }
    return 0;
}
