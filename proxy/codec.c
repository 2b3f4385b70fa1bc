/*
 * PostgreSQL v3 wire-protocol codec: framing, body readers and message
 * builders as pure functions over caller-owned byte spans. Nothing here
 * touches a socket, a loop, the allocator or mutable global state, so every
 * function is safe to call from any worker thread and is fully unit-testable
 * and fuzzable.
 *
 * Invariant: no function reads outside [p, p + n) of the span it was given or
 * writes outside [w->p, w->p + w->cap) of the buffer it was given. Declared
 * lengths are checked against the caller's cap as soon as the header is seen,
 * before the caller could allocate or wait for a body; readers and builders
 * carry a sticky failure flag so a caller checks once at the end.
 */
#include "px_codec.h"

#include <string.h>

/* What an empty span points at, so a span is never NULL (memcmp-safe). */
static const uint8_t px__empty[1] = {0};

static px_span_t px__span_empty(void)
{
    px_span_t s = {px__empty, 0};
    return s;
}

static uint32_t px__get_be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

const char *px_codec_status_to_str(px_codec_status_t st)
{
    switch (st) {
    case PX_CODEC_OK:
        return "ok";
    case PX_CODEC_NEED_MORE:
        return "need more";
    case PX_CODEC_ERROR:
        return "error";
    }
    return "unknown";
}

/* ---- framing ------------------------------------------------------------ */

px_codec_status_t px_codec_peek_header(const uint8_t *p, size_t n, uint32_t max_body,
                                       px_msg_hdr_t *out)
{
    if (n < PX_MSG_HDR_LEN)
        return PX_CODEC_NEED_MORE;
    /* The length is a signed int32 on the wire: anything below 4 (including
     * every "negative" value) is malformed whatever the caller's cap is. */
    uint32_t len = px__get_be32(p + 1);
    if (len < 4 || len > (uint32_t)INT32_MAX)
        return PX_CODEC_ERROR;
    uint32_t body = len - 4;
    if (body > max_body)
        return PX_CODEC_ERROR;
    out->type = p[0];
    out->body_len = body;
    return PX_CODEC_OK;
}

px_codec_status_t px_codec_read_msg(const uint8_t *p, size_t n, uint32_t max_body,
                                    px_msg_hdr_t *hdr, px_span_t *body, size_t *consumed)
{
    px_msg_hdr_t h;
    px_codec_status_t st = px_codec_peek_header(p, n, max_body, &h);
    if (st != PX_CODEC_OK)
        return st;
    if (n - PX_MSG_HDR_LEN < h.body_len)
        return PX_CODEC_NEED_MORE;
    *hdr = h;
    body->p = p + PX_MSG_HDR_LEN;
    body->n = h.body_len;
    *consumed = PX_MSG_HDR_LEN + (size_t)h.body_len;
    return PX_CODEC_OK;
}

/* ---- startup phase ------------------------------------------------------ */

static px_codec_status_t px__startup_fail(const char **err, const char *reason)
{
    if (err != NULL)
        *err = reason;
    return PX_CODEC_ERROR;
}

/* Static reasons for a wrong protocol major version, as PostgreSQL words it. */
static const char *px__proto_reason(uint32_t code)
{
    switch (code >> 16) {
    case 1:
        return "unsupported frontend protocol 1.0: server supports 3.0 to 3.0";
    case 2:
        return "unsupported frontend protocol 2.0: server supports 3.0 to 3.0";
    case 4:
        return "unsupported frontend protocol 4.x: server supports 3.0 to 3.0";
    default:
        return "unsupported frontend protocol: server supports 3.0 to 3.0";
    }
}

/*
 * Check the code against the declared length as soon as both are known (8
 * bytes), so a bad request is refused without waiting for the rest of it.
 */
static px_codec_status_t px__startup_check_code(uint32_t code, uint32_t len, const char **err)
{
    switch (code) {
    case PX_PROTO_SSL_REQUEST:
        return len == 8 ? PX_CODEC_OK : px__startup_fail(err, "invalid length of SSLRequest");
    case PX_PROTO_GSSENC:
        return len == 8 ? PX_CODEC_OK : px__startup_fail(err, "invalid length of GSSENCRequest");
    case PX_PROTO_CANCEL:
        return len == 16 ? PX_CODEC_OK : px__startup_fail(err, "invalid length of CancelRequest");
    default:
        break;
    }
    if ((code >> 16) != 3)
        return px__startup_fail(err, px__proto_reason(code));
    return PX_CODEC_OK;
}

static bool px__span_eq(px_span_t s, const char *lit)
{
    size_t l = strlen(lit);
    return s.n == l && memcmp(s.p, lit, l) == 0;
}

/*
 * Parse the name\0value\0...\0 list of a StartupMessage in [p, p + len).
 * The list must end with a single NUL that is the packet's last byte. A
 * repeated "user"/"database" keeps the last one, as PostgreSQL does.
 */
static px_codec_status_t px__startup_params(const uint8_t *p, size_t len, px_startup_t *out,
                                            const char **err)
{
    size_t pos = 8;
    for (;;) {
        if (pos >= len)
            return px__startup_fail(err, "invalid startup packet layout: expected terminator "
                                         "as last byte");
        if (p[pos] == 0) {
            if (pos != len - 1)
                return px__startup_fail(err, "invalid startup packet layout: expected "
                                             "terminator as last byte");
            break;
        }
        const uint8_t *name = p + pos;
        const uint8_t *nul = memchr(name, 0, len - pos);
        if (nul == NULL)
            return px__startup_fail(err, "invalid startup packet layout: missing terminator");
        size_t name_len = (size_t)(nul - name);
        pos += name_len + 1;
        if (pos >= len)
            return px__startup_fail(err, "invalid startup packet layout: missing value");
        const uint8_t *value = p + pos;
        nul = memchr(value, 0, len - pos);
        if (nul == NULL)
            return px__startup_fail(err, "invalid startup packet layout: missing terminator");
        size_t value_len = (size_t)(nul - value);
        pos += value_len + 1;

        if (out->n_params >= PX_STARTUP_MAX_PARAMS)
            return px__startup_fail(err, "too many parameters in startup packet");
        px_startup_param_t *prm = &out->params[out->n_params];
        prm->name.p = name;
        prm->name.n = name_len;
        prm->value.p = value;
        prm->value.n = value_len;
        if (px__span_eq(prm->name, "user"))
            out->user_idx = out->n_params;
        else if (px__span_eq(prm->name, "database"))
            out->database_idx = out->n_params;
        out->n_params++;
    }
    if (out->user_idx < 0)
        return px__startup_fail(err, "no PostgreSQL user name specified in startup packet");
    return PX_CODEC_OK;
}

px_codec_status_t px_codec_read_startup(const uint8_t *p, size_t n, px_startup_t *out,
                                        size_t *consumed, const char **err)
{
    if (n < 4)
        return PX_CODEC_NEED_MORE;
    uint32_t len = px__get_be32(p);
    if (len < 8 || len > PX_STARTUP_MAX_LEN)
        return px__startup_fail(err, "invalid length of startup packet");
    if (n < 8)
        return PX_CODEC_NEED_MORE;
    uint32_t code = px__get_be32(p + 4);
    if (px__startup_check_code(code, len, err) != PX_CODEC_OK)
        return PX_CODEC_ERROR;
    if (n < len)
        return PX_CODEC_NEED_MORE;

    out->code = code;
    out->proto_minor = 0;
    out->cancel_pid = 0;
    out->cancel_key = 0;
    out->n_params = 0;
    out->user_idx = -1;
    out->database_idx = -1;
    switch (code) {
    case PX_PROTO_SSL_REQUEST:
        out->kind = PX_STARTUP_SSL;
        break;
    case PX_PROTO_GSSENC:
        out->kind = PX_STARTUP_GSSENC;
        break;
    case PX_PROTO_CANCEL:
        out->kind = PX_STARTUP_CANCEL;
        out->cancel_pid = px__get_be32(p + 8);
        out->cancel_key = px__get_be32(p + 12);
        break;
    default:
        out->kind = PX_STARTUP_MESSAGE;
        out->proto_minor = (uint16_t)(code & 0xffffu);
        if (px__startup_params(p, len, out, err) != PX_CODEC_OK)
            return PX_CODEC_ERROR;
        break;
    }
    *consumed = len;
    return PX_CODEC_OK;
}

/* ---- body readers ------------------------------------------------------- */

/* True (and the cursor failed) unless @p want more bytes are left. */
static bool px__reader_short(px_reader_t *r, size_t want)
{
    if (r->failed || r->n - r->off < want) {
        r->failed = true;
        return true;
    }
    return false;
}

uint8_t px_reader_byte(px_reader_t *r)
{
    if (px__reader_short(r, 1))
        return 0;
    return r->p[r->off++];
}

int16_t px_reader_int16(px_reader_t *r)
{
    if (px__reader_short(r, 2))
        return 0;
    const uint8_t *q = r->p + r->off;
    r->off += 2;
    return (int16_t)(uint16_t)(((unsigned)q[0] << 8) | q[1]);
}

int32_t px_reader_int32(px_reader_t *r)
{
    if (px__reader_short(r, 4))
        return 0;
    uint32_t v = px__get_be32(r->p + r->off);
    r->off += 4;
    return (int32_t)v;
}

px_span_t px_reader_cstr(px_reader_t *r)
{
    if (px__reader_short(r, 1))
        return px__span_empty();
    const uint8_t *s = r->p + r->off;
    const uint8_t *nul = memchr(s, 0, r->n - r->off);
    if (nul == NULL) {
        r->failed = true;
        return px__span_empty();
    }
    px_span_t out = {s, (size_t)(nul - s)};
    r->off += out.n + 1;
    return out;
}

px_span_t px_reader_bytes(px_reader_t *r, size_t len)
{
    if (px__reader_short(r, len))
        return px__span_empty();
    if (len == 0)
        return px__span_empty();
    px_span_t out = {r->p + r->off, len};
    r->off += len;
    return out;
}

bool px_reader_done(const px_reader_t *r)
{
    return !r->failed && r->off == r->n;
}

/* ---- message bodies ----------------------------------------------------- */

bool px_codec_parse_error(px_span_t body, px_error_fields_t *out)
{
    px_reader_t r = px_reader_make(body);
    out->severity = px__span_empty();
    out->severity_nl = px__span_empty();
    out->sqlstate = px__span_empty();
    out->message = px__span_empty();
    out->detail = px__span_empty();
    out->hint = px__span_empty();
    for (;;) {
        uint8_t code = px_reader_byte(&r);
        if (r.failed || code == 0)
            break;
        px_span_t v = px_reader_cstr(&r);
        switch (code) {
        case 'S':
            out->severity = v;
            break;
        case 'V':
            out->severity_nl = v;
            break;
        case 'C':
            out->sqlstate = v;
            break;
        case 'M':
            out->message = v;
            break;
        case 'D':
            out->detail = v;
            break;
        case 'H':
            out->hint = v;
            break;
        default:
            break; /* other fields are skipped, as the protocol asks */
        }
    }
    return px_reader_done(&r);
}

bool px_codec_parse_ready(px_span_t body, uint8_t *status)
{
    if (body.n != 1)
        return false;
    uint8_t s = body.p[0];
    if (s != 'I' && s != 'T' && s != 'E')
        return false;
    *status = s;
    return true;
}

bool px_codec_parse_param_status(px_span_t body, px_span_t *name, px_span_t *value)
{
    px_reader_t r = px_reader_make(body);
    px_span_t nm = px_reader_cstr(&r);
    px_span_t val = px_reader_cstr(&r);
    if (!px_reader_done(&r))
        return false;
    *name = nm;
    *value = val;
    return true;
}

bool px_codec_parse_backend_key(px_span_t body, uint32_t *pid, uint32_t *key)
{
    if (body.n != 8)
        return false;
    *pid = px__get_be32(body.p);
    *key = px__get_be32(body.p + 4);
    return true;
}

/* AuthenticationSASL data: one or more mechanism names, then an empty one. */
static bool px__sasl_mechs_ok(px_span_t data)
{
    px_reader_t r = px_reader_make(data);
    int count = 0;
    for (;;) {
        px_span_t m = px_reader_cstr(&r);
        if (r.failed)
            return false;
        if (m.n == 0)
            break;
        count++;
    }
    return count > 0 && px_reader_done(&r);
}

/*
 * The fixed-size requests are checked for their exact size (Ok and
 * CleartextPassword carry nothing, MD5Password a 4-byte salt, SASL a mechanism
 * list); the data of the others is returned as is.
 */
bool px_codec_parse_auth(px_span_t body, int32_t *code, px_span_t *data)
{
    px_reader_t r = px_reader_make(body);
    int32_t c = px_reader_int32(&r);
    if (r.failed)
        return false;
    px_span_t d = px_reader_bytes(&r, r.n - r.off);
    if (!px_reader_done(&r))
        return false;
    switch (c) {
    case PX_AUTH_OK:
    case PX_AUTH_CLEARTEXT:
        if (d.n != 0)
            return false;
        break;
    case PX_AUTH_MD5:
        if (d.n != 4)
            return false;
        break;
    case PX_AUTH_SASL:
        if (!px__sasl_mechs_ok(d))
            return false;
        break;
    default:
        break;
    }
    *code = c;
    *data = d;
    return true;
}

bool px_codec_parse_query(px_span_t body, px_span_t *sql)
{
    px_reader_t r = px_reader_make(body);
    px_span_t s = px_reader_cstr(&r);
    if (!px_reader_done(&r))
        return false;
    *sql = s;
    return true;
}

bool px_codec_parse_parse(px_span_t body, px_span_t *stmt, px_span_t *sql, int *n_param_types)
{
    px_reader_t r = px_reader_make(body);
    px_span_t st = px_reader_cstr(&r);
    px_span_t q = px_reader_cstr(&r);
    int16_t np = px_reader_int16(&r);
    if (r.failed || np < 0)
        return false;
    (void)px_reader_bytes(&r, (size_t)np * 4u);
    if (!px_reader_done(&r))
        return false;
    *stmt = st;
    *sql = q;
    *n_param_types = np;
    return true;
}

bool px_codec_parse_bind_names(px_span_t body, px_span_t *portal, px_span_t *stmt)
{
    px_reader_t r = px_reader_make(body);
    px_span_t po = px_reader_cstr(&r);
    px_span_t st = px_reader_cstr(&r);
    if (r.failed)
        return false;
    *portal = po;
    *stmt = st;
    return true;
}

bool px_codec_parse_target(px_span_t body, uint8_t *kind, px_span_t *name)
{
    px_reader_t r = px_reader_make(body);
    uint8_t k = px_reader_byte(&r);
    px_span_t nm = px_reader_cstr(&r);
    if (!px_reader_done(&r) || (k != 'S' && k != 'P'))
        return false;
    *kind = k;
    *name = nm;
    return true;
}

bool px_codec_parse_execute(px_span_t body, px_span_t *portal, int32_t *max_rows)
{
    px_reader_t r = px_reader_make(body);
    px_span_t po = px_reader_cstr(&r);
    int32_t mr = px_reader_int32(&r);
    if (!px_reader_done(&r))
        return false;
    *portal = po;
    *max_rows = mr;
    return true;
}

bool px_codec_parse_command_complete(px_span_t body, px_span_t *tag)
{
    return px_codec_parse_query(body, tag);
}

uint64_t px_codec_tag_rows(px_span_t tag)
{
    size_t i = tag.n;
    while (i > 0 && tag.p[i - 1] >= '0' && tag.p[i - 1] <= '9')
        i--;
    if (i == tag.n || i == 0 || tag.p[i - 1] != ' ')
        return 0;
    uint64_t v = 0;
    for (; i < tag.n && v < UINT64_MAX / 10; i++)
        v = v * 10 + (uint64_t)(tag.p[i] - '0');
    return v;
}

bool px_codec_parse_sasl_initial(px_span_t body, px_span_t *mechanism, px_span_t *data)
{
    px_reader_t r = px_reader_make(body);
    px_span_t mech = px_reader_cstr(&r);
    int32_t len = px_reader_int32(&r);
    if (r.failed || len < -1)
        return false;
    px_span_t d = px__span_empty();
    if (len >= 0)
        d = px_reader_bytes(&r, (size_t)len);
    if (!px_reader_done(&r))
        return false;
    *mechanism = mech;
    *data = d;
    return true;
}

/*
 * A PasswordMessage body is one NUL-terminated string; a SASLResponse body
 * (same type byte) is raw data with no terminator. A body that is exactly one
 * C string yields the string, a body with no NUL at all yields the whole body,
 * and a NUL anywhere but the last byte is malformed.
 */
bool px_codec_parse_password(px_span_t body, px_span_t *password)
{
    if (body.n == 0) {
        *password = px__span_empty();
        return true;
    }
    const uint8_t *nul = memchr(body.p, 0, body.n);
    if (nul == NULL) {
        *password = body;
        return true;
    }
    if (nul != body.p + body.n - 1)
        return false;
    password->p = body.p;
    password->n = body.n - 1;
    return true;
}

/* ---- builders ----------------------------------------------------------- */

void px_wbuf_put_bytes(px_wbuf_t *w, const void *p, size_t n)
{
    if (w->failed)
        return;
    if (n > w->cap - w->len) {
        w->failed = true;
        return;
    }
    if (n > 0) {
        memcpy(w->p + w->len, p, n);
        w->len += n;
    }
}

void px_wbuf_put_byte(px_wbuf_t *w, uint8_t v)
{
    px_wbuf_put_bytes(w, &v, 1);
}

void px_wbuf_put_int16(px_wbuf_t *w, int16_t v)
{
    uint16_t u = (uint16_t)v;
    uint8_t b[2] = {(uint8_t)(u >> 8), (uint8_t)u};
    px_wbuf_put_bytes(w, b, sizeof b);
}

void px_wbuf_put_int32(px_wbuf_t *w, int32_t v)
{
    uint32_t u = (uint32_t)v;
    uint8_t b[4] = {(uint8_t)(u >> 24), (uint8_t)(u >> 16), (uint8_t)(u >> 8), (uint8_t)u};
    px_wbuf_put_bytes(w, b, sizeof b);
}

void px_wbuf_put_cstr(px_wbuf_t *w, const char *s)
{
    if (s == NULL)
        s = ""; /* a missing string is written empty rather than crashing */
    px_wbuf_put_bytes(w, s, strlen(s) + 1);
}

void px_wbuf_put_span_cstr(px_wbuf_t *w, px_span_t s)
{
    px_wbuf_put_bytes(w, s.p, s.n);
    px_wbuf_put_byte(w, 0);
}

void px_wbuf_begin(px_wbuf_t *w, uint8_t type)
{
    if (type != 0)
        px_wbuf_put_byte(w, type);
    w->_msg_start = w->len;
    px_wbuf_put_int32(w, 0); /* patched by px_wbuf_end */
}

void px_wbuf_end(px_wbuf_t *w)
{
    if (w->failed)
        return;
    if (w->_msg_start > w->len || w->len - w->_msg_start < 4 ||
        w->len - w->_msg_start > (size_t)INT32_MAX) {
        w->failed = true;
        return;
    }
    uint32_t len = (uint32_t)(w->len - w->_msg_start);
    uint8_t *q = w->p + w->_msg_start;
    q[0] = (uint8_t)(len >> 24);
    q[1] = (uint8_t)(len >> 16);
    q[2] = (uint8_t)(len >> 8);
    q[3] = (uint8_t)len;
}

static void px__build_err_notice(px_wbuf_t *w, uint8_t type, const char *severity,
                                 const char *sqlstate, const char *message, const char *routine)
{
    px_wbuf_begin(w, type);
    px_wbuf_put_byte(w, 'S');
    px_wbuf_put_cstr(w, severity);
    px_wbuf_put_byte(w, 'V');
    px_wbuf_put_cstr(w, severity);
    px_wbuf_put_byte(w, 'C');
    px_wbuf_put_cstr(w, sqlstate);
    px_wbuf_put_byte(w, 'M');
    px_wbuf_put_cstr(w, message);
    if (routine && *routine) {
        px_wbuf_put_byte(w, 'R');
        px_wbuf_put_cstr(w, routine);
    }
    px_wbuf_put_byte(w, 0);
    px_wbuf_end(w);
}

void px_build_error(px_wbuf_t *w, const char *severity, const char *sqlstate, const char *message)
{
    px__build_err_notice(w, 'E', severity, sqlstate, message, NULL);
}

void px_build_error_routine(px_wbuf_t *w, const char *severity, const char *sqlstate,
                            const char *message, const char *routine)
{
    px__build_err_notice(w, 'E', severity, sqlstate, message, routine);
}

void px_build_notice(px_wbuf_t *w, const char *severity, const char *sqlstate, const char *message)
{
    px__build_err_notice(w, 'N', severity, sqlstate, message, NULL);
}

void px_build_auth(px_wbuf_t *w, int32_t code, const void *data, size_t len)
{
    px_wbuf_begin(w, 'R');
    px_wbuf_put_int32(w, code);
    px_wbuf_put_bytes(w, data, len);
    px_wbuf_end(w);
}

void px_build_auth_sasl(px_wbuf_t *w)
{
    px_wbuf_begin(w, 'R');
    px_wbuf_put_int32(w, PX_AUTH_SASL);
    px_wbuf_put_cstr(w, "SCRAM-SHA-256");
    px_wbuf_put_byte(w, 0);
    px_wbuf_end(w);
}

void px_build_param_status(px_wbuf_t *w, const char *name, const char *value)
{
    px_wbuf_begin(w, 'S');
    px_wbuf_put_cstr(w, name);
    px_wbuf_put_cstr(w, value);
    px_wbuf_end(w);
}

void px_build_backend_key(px_wbuf_t *w, uint32_t pid, uint32_t key)
{
    px_wbuf_begin(w, 'K');
    px_wbuf_put_int32(w, (int32_t)pid);
    px_wbuf_put_int32(w, (int32_t)key);
    px_wbuf_end(w);
}

void px_build_ready(px_wbuf_t *w, uint8_t status)
{
    px_wbuf_begin(w, 'Z');
    px_wbuf_put_byte(w, status);
    px_wbuf_end(w);
}

void px_build_query(px_wbuf_t *w, const char *sql)
{
    px_wbuf_begin(w, 'Q');
    px_wbuf_put_cstr(w, sql);
    px_wbuf_end(w);
}

void px_build_sync(px_wbuf_t *w)
{
    px_wbuf_begin(w, 'S');
    px_wbuf_end(w);
}

void px_build_terminate(px_wbuf_t *w)
{
    px_wbuf_begin(w, 'X');
    px_wbuf_end(w);
}

void px_build_password(px_wbuf_t *w, const char *password)
{
    px_wbuf_begin(w, 'p');
    px_wbuf_put_cstr(w, password);
    px_wbuf_end(w);
}

/* @p data NULL means "no initial response" (length -1 on the wire). */
void px_build_sasl_initial(px_wbuf_t *w, const char *mechanism, const void *data, size_t len)
{
    px_wbuf_begin(w, 'p');
    px_wbuf_put_cstr(w, mechanism);
    if (data == NULL) {
        px_wbuf_put_int32(w, -1);
    } else if (len > (size_t)INT32_MAX) {
        w->failed = true;
    } else {
        px_wbuf_put_int32(w, (int32_t)len);
        px_wbuf_put_bytes(w, data, len);
    }
    px_wbuf_end(w);
}

void px_build_sasl_response(px_wbuf_t *w, const void *data, size_t len)
{
    px_wbuf_begin(w, 'p');
    px_wbuf_put_bytes(w, data, len);
    px_wbuf_end(w);
}

void px_build_cancel_request(px_wbuf_t *w, uint32_t pid, uint32_t key)
{
    px_wbuf_begin(w, 0);
    px_wbuf_put_int32(w, (int32_t)PX_PROTO_CANCEL);
    px_wbuf_put_int32(w, (int32_t)pid);
    px_wbuf_put_int32(w, (int32_t)key);
    px_wbuf_end(w);
}

void px_build_negotiate_version(px_wbuf_t *w, uint16_t newest_minor, const px_span_t *unknown,
                                int n_unknown)
{
    if (n_unknown < 0)
        n_unknown = 0;
    px_wbuf_begin(w, 'v');
    px_wbuf_put_int32(w, (int32_t)newest_minor);
    px_wbuf_put_int32(w, n_unknown);
    for (int i = 0; i < n_unknown; i++)
        px_wbuf_put_span_cstr(w, unknown[i]);
    px_wbuf_end(w);
}

void px_build_startup(px_wbuf_t *w, const char *const *pairs)
{
    px_wbuf_begin(w, 0);
    px_wbuf_put_int32(w, (int32_t)PX_PROTO_V3);
    for (size_t i = 0; pairs != NULL && pairs[i] != NULL && pairs[i + 1] != NULL; i += 2) {
        px_wbuf_put_cstr(w, pairs[i]);
        px_wbuf_put_cstr(w, pairs[i + 1]);
    }
    px_wbuf_put_byte(w, 0);
    px_wbuf_end(w);
}

/* ---- names for logs ----------------------------------------------------- */

const char *px_codec_frontend_name(uint8_t type)
{
    switch (type) {
    case 'B':
        return "Bind";
    case 'C':
        return "Close";
    case 'c':
        return "CopyDone";
    case 'd':
        return "CopyData";
    case 'D':
        return "Describe";
    case 'E':
        return "Execute";
    case 'F':
        return "FunctionCall";
    case 'f':
        return "CopyFail";
    case 'H':
        return "Flush";
    case 'P':
        return "Parse";
    case 'p':
        return "PasswordMessage";
    case 'Q':
        return "Query";
    case 'S':
        return "Sync";
    case 'X':
        return "Terminate";
    default:
        return "?";
    }
}

const char *px_codec_backend_name(uint8_t type)
{
    switch (type) {
    case 'R':
        return "Authentication";
    case 'K':
        return "BackendKeyData";
    case '2':
        return "BindComplete";
    case '3':
        return "CloseComplete";
    case 'C':
        return "CommandComplete";
    case 'd':
        return "CopyData";
    case 'c':
        return "CopyDone";
    case 'G':
        return "CopyInResponse";
    case 'H':
        return "CopyOutResponse";
    case 'W':
        return "CopyBothResponse";
    case 'D':
        return "DataRow";
    case 'I':
        return "EmptyQueryResponse";
    case 'E':
        return "ErrorResponse";
    case 'V':
        return "FunctionCallResponse";
    case 'v':
        return "NegotiateProtocolVersion";
    case 'n':
        return "NoData";
    case 'N':
        return "NoticeResponse";
    case 'A':
        return "NotificationResponse";
    case 't':
        return "ParameterDescription";
    case 'S':
        return "ParameterStatus";
    case '1':
        return "ParseComplete";
    case 's':
        return "PortalSuspended";
    case 'Z':
        return "ReadyForQuery";
    case 'T':
        return "RowDescription";
    default:
        return "?";
    }
}
