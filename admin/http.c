/*
 * A small HTTP/1.1 server for the admin port, on a thread and libuv loop of
 * its own so nothing it does can delay a worker. http_parser does the
 * parsing; this file bounds it and drives the connections.
 *
 * Invariants:
 *  - Requests on one connection are answered strictly in order: the parser
 *    pauses after each complete request, the handler answers synchronously,
 *    and only then are the next pipelined bytes parsed.
 *  - Memory per connection is bounded: a request never exceeds
 *    max_header_bytes + max_body_bytes (else 413/414/431 and close), input is
 *    read only while nothing is left unparsed, and parsing pauses while more
 *    than out_high_water bytes of responses wait to be written.
 *  - Time per connection is bounded: a started request must complete within
 *    request_timeout_ms (else 408), idle keep-alive connections close after
 *    idle_timeout_ms, a write that makes no progress for write_timeout_ms
 *    drops the connection, and a lingering close ends after PX_HTTP_LINGER_MS.
 *  - A connection is freed only in its handle's close callback; every other
 *    callback checks for PX_HTTP_CONN_CLOSING first.
 */
#include "px_admin.h"

#include <errno.h>
#include <http_parser.h>
#include <netdb.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <uv.h>

#include "px_log.h"

/* ==== requests ============================================================== */

const char *px_http_method_to_str(px_http_method_t m)
{
    switch (m) {
    case PX_HTTP_GET:
        return "GET";
    case PX_HTTP_HEAD:
        return "HEAD";
    case PX_HTTP_POST:
        return "POST";
    case PX_HTTP_PUT:
        return "PUT";
    case PX_HTTP_DELETE:
        return "DELETE";
    case PX_HTTP_PATCH:
        return "PATCH";
    case PX_HTTP_OPTIONS:
        return "OPTIONS";
    default:
        return "OTHER";
    }
}

static px_http_method_t px_http_method_from(unsigned m)
{
    switch (m) {
    case HTTP_GET:
        return PX_HTTP_GET;
    case HTTP_HEAD:
        return PX_HTTP_HEAD;
    case HTTP_POST:
        return PX_HTTP_POST;
    case HTTP_PUT:
        return PX_HTTP_PUT;
    case HTTP_DELETE:
        return PX_HTTP_DELETE;
    case HTTP_PATCH:
        return PX_HTTP_PATCH;
    case HTTP_OPTIONS:
        return PX_HTTP_OPTIONS;
    default:
        return PX_HTTP_OTHER;
    }
}

const char *px_http_header(const px_http_request_t *req, const char *name)
{
    for (int i = 0; i < req->n_headers; i++)
        if (strcasecmp(req->headers[i].name, name) == 0)
            return req->headers[i].value;
    return NULL;
}

static int px_http_hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decode [s, s+n) (percent and '+') into out; -1 when malformed or too long. */
static int px_http_decode(const char *s, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            if (i + 2 >= n)
                return -1;
            int hi = px_http_hexval(s[i + 1]), lo = px_http_hexval(s[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            c = hi * 16 + lo;
            i += 2;
        }
        if (o + 1 >= cap)
            return -1;
        out[o++] = (char)c;
    }
    if (cap == 0)
        return -1;
    out[o] = '\0';
    return (int)o;
}

int px_http_query_param(const px_http_request_t *req, const char *name, char *out, size_t cap)
{
    const char *q = req->query ? req->query : "";
    char key[128];
    while (*q) {
        const char *end = strchr(q, '&');
        size_t len = end ? (size_t)(end - q) : strlen(q);
        const char *eq = memchr(q, '=', len);
        size_t klen = eq ? (size_t)(eq - q) : len;
        if (px_http_decode(q, klen, key, sizeof(key)) >= 0 && strcmp(key, name) == 0) {
            if (!eq)
                return px_http_decode("", 0, out, cap);
            return px_http_decode(eq + 1, len - klen - 1, out, cap);
        }
        q += len;
        if (*q == '&')
            q++;
    }
    return -1;
}

/* ==== the request parser ===================================================== */

typedef enum px_http_last {
    PX_HTTP_LAST_NONE = 0, /* nothing of the headers yet */
    PX_HTTP_LAST_FIELD,    /* inside a header name */
    PX_HTTP_LAST_VALUE,    /* inside a header value */
} px_http_last_t;

struct px_http_parser {
    http_parser hp;        /* http_parser's state; hp.data points back here */
    size_t max_header;     /* request line + header bytes allowed */
    size_t max_body;       /* body bytes allowed */
    px_http_request_t req; /* the request being assembled / complete */
    char *arena;           /* URL, header names and values, path, query; NUL-terminated */
    size_t arena_len, arena_cap;
    size_t header_bytes; /* counted against max_header */
    size_t name_off[PX_HTTP_MAX_HEADERS], value_off[PX_HTTP_MAX_HEADERS];
    px_http_last_t last; /* which header part the last callback extended */
    bool url_done;       /* the URL's NUL is written */
    char *body;          /* owned; grows up to max_body */
    size_t body_len, body_cap;
    bool in_request;    /* message begun, not complete */
    bool complete;      /* a complete request is waiting for px_http_parser_next */
    bool want_continue; /* "Expect: 100-continue" not answered yet */
    bool errored;       /* sticky: the connection must close */
    int error_status;   /* HTTP status for the error */
    char error[160];    /* why, for the JSON body */
};

static int px_http_fail(px_http_parser_t *p, int status, const char *msg)
{
    if (!p->error_status) {
        p->error_status = status;
        snprintf(p->error, sizeof(p->error), "%s", msg);
    }
    return -1;
}

/* Append to the arena; the arena is sized so that within the header limit
 * this cannot fail, but check anyway. */
static bool px_http_arena_put(px_http_parser_t *p, const char *s, size_t n)
{
    if (p->arena_len + n > p->arena_cap)
        return false;
    memcpy(p->arena + p->arena_len, s, n);
    p->arena_len += n;
    return true;
}

static int px_http_on_message_begin(http_parser *hp)
{
    px_http_parser_t *p = hp->data;
    p->arena_len = 0;
    p->header_bytes = 0;
    p->last = PX_HTTP_LAST_NONE;
    p->url_done = false;
    p->body_len = 0;
    p->want_continue = false;
    memset(&p->req, 0, sizeof(p->req));
    p->in_request = true;
    return 0;
}

static int px_http_count(px_http_parser_t *p, size_t n, int status, const char *msg)
{
    p->header_bytes += n;
    if (p->header_bytes > p->max_header)
        return px_http_fail(p, status, msg);
    return 0;
}

static int px_http_on_url(http_parser *hp, const char *at, size_t n)
{
    px_http_parser_t *p = hp->data;
    if (px_http_count(p, n, 414, "request target too long") != 0)
        return -1;
    if (!px_http_arena_put(p, at, n))
        return px_http_fail(p, 414, "request target too long");
    return 0;
}

static bool px_http_end_url(px_http_parser_t *p)
{
    if (p->url_done)
        return true;
    p->url_done = true;
    return px_http_arena_put(p, "", 1);
}

static int px_http_on_header_field(http_parser *hp, const char *at, size_t n)
{
    px_http_parser_t *p = hp->data;
    if (px_http_count(p, n + 4, 431, "request headers too large") != 0) /* + ": " CRLF */
        return -1;
    if (!px_http_end_url(p))
        return px_http_fail(p, 431, "request headers too large");
    if (p->last != PX_HTTP_LAST_FIELD) {
        if (p->last == PX_HTTP_LAST_VALUE && !px_http_arena_put(p, "", 1))
            return px_http_fail(p, 431, "request headers too large");
        if (p->req.n_headers == PX_HTTP_MAX_HEADERS)
            return px_http_fail(p, 431, "too many request headers");
        p->name_off[p->req.n_headers++] = p->arena_len;
        p->last = PX_HTTP_LAST_FIELD;
    }
    if (!px_http_arena_put(p, at, n))
        return px_http_fail(p, 431, "request headers too large");
    return 0;
}

static int px_http_on_header_value(http_parser *hp, const char *at, size_t n)
{
    px_http_parser_t *p = hp->data;
    if (px_http_count(p, n, 431, "request headers too large") != 0)
        return -1;
    if (p->req.n_headers == 0)
        return px_http_fail(p, 400, "header value without a name");
    if (p->last != PX_HTTP_LAST_VALUE) {
        if (!px_http_arena_put(p, "", 1))
            return px_http_fail(p, 431, "request headers too large");
        p->value_off[p->req.n_headers - 1] = p->arena_len;
        p->last = PX_HTTP_LAST_VALUE;
    }
    if (!px_http_arena_put(p, at, n))
        return px_http_fail(p, 431, "request headers too large");
    return 0;
}

/* Split the target into path and query (copied after the headers). */
static bool px_http_split_target(px_http_parser_t *p)
{
    const char *t = p->req.target;
    if (strncasecmp(t, "http://", 7) == 0 || strncasecmp(t, "https://", 8) == 0) {
        /* absolute-form: drop scheme and authority */
        const char *s = strstr(t, "//") + 2;
        const char *slash = strchr(s, '/');
        t = slash ? slash : "/";
    }
    size_t plen = strcspn(t, "?#");
    size_t off = p->arena_len;
    if (!px_http_arena_put(p, t, plen) || !px_http_arena_put(p, "", 1))
        return false;
    p->req.path = p->arena + off;
    const char *q = t + plen;
    if (*q == '?') {
        q++;
        size_t qlen = strcspn(q, "#");
        off = p->arena_len;
        if (!px_http_arena_put(p, q, qlen) || !px_http_arena_put(p, "", 1))
            return false;
        p->req.query = p->arena + off;
    } else {
        p->req.query = "";
    }
    return true;
}

/* Trim blanks around a NUL-terminated header value in place. */
static const char *px_http_trim(char *v)
{
    while (*v == ' ' || *v == '\t')
        v++;
    size_t n = strlen(v);
    while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
        v[--n] = '\0';
    return v;
}

static int px_http_on_headers_complete(http_parser *hp)
{
    px_http_parser_t *p = hp->data;
    if (!px_http_end_url(p))
        return px_http_fail(p, 431, "request headers too large");
    if (p->last == PX_HTTP_LAST_VALUE && !px_http_arena_put(p, "", 1))
        return px_http_fail(p, 431, "request headers too large");
    if (p->last == PX_HTTP_LAST_FIELD) /* a name without a value: http_parser forbids it */
        return px_http_fail(p, 400, "malformed header line");
    px_http_request_t *r = &p->req;
    r->target = p->arena;
    for (int i = 0; i < r->n_headers; i++) {
        r->headers[i].name = p->arena + p->name_off[i];
        r->headers[i].value = px_http_trim(p->arena + p->value_off[i]);
    }
    if (!px_http_split_target(p))
        return px_http_fail(p, 414, "request target too long");
    r->method = px_http_method_from(hp->method);
    r->method_name = http_method_str((enum http_method)hp->method);
    r->http_major = hp->http_major;
    r->http_minor = hp->http_minor;
    r->keep_alive = http_should_keep_alive(hp) != 0;

    bool has_length = (hp->flags & F_CONTENTLENGTH) != 0;
    bool chunked = (hp->flags & F_CHUNKED) != 0;
    if (has_length && hp->content_length > p->max_body)
        return px_http_fail(p, 413, "request body too large");
    const char *expect = px_http_header(r, "Expect");
    if (expect && (chunked || (has_length && hp->content_length > 0))) {
        if (strcasecmp(expect, "100-continue") != 0)
            return px_http_fail(p, 417, "unsupported Expect header");
        if (hp->http_major == 1 && hp->http_minor >= 1)
            p->want_continue = true;
    }
    return 0;
}

static int px_http_on_body(http_parser *hp, const char *at, size_t n)
{
    px_http_parser_t *p = hp->data;
    if (n > p->max_body || p->body_len > p->max_body - n)
        return px_http_fail(p, 413, "request body too large");
    if (p->body_len + n + 1 > p->body_cap) {
        size_t cap = p->body_cap ? p->body_cap : 1024;
        while (cap < p->body_len + n + 1)
            cap *= 2;
        char *b = realloc(p->body, cap);
        if (!b)
            return px_http_fail(p, 413, "request body too large (out of memory)");
        p->body = b;
        p->body_cap = cap;
    }
    memcpy(p->body + p->body_len, at, n);
    p->body_len += n;
    p->body[p->body_len] = '\0';
    return 0;
}

static int px_http_on_message_complete(http_parser *hp)
{
    px_http_parser_t *p = hp->data;
    p->req.body = p->body_len ? p->body : NULL;
    p->req.body_len = p->body_len;
    p->req.keep_alive = p->req.keep_alive && http_should_keep_alive(hp) != 0;
    p->want_continue = false;
    p->in_request = false;
    p->complete = true;
    http_parser_pause(hp, 1); /* one request at a time: the caller answers it first */
    return 0;
}

static const http_parser_settings px_http_settings = {
    .on_message_begin = px_http_on_message_begin,
    .on_url = px_http_on_url,
    .on_header_field = px_http_on_header_field,
    .on_header_value = px_http_on_header_value,
    .on_headers_complete = px_http_on_headers_complete,
    .on_body = px_http_on_body,
    .on_message_complete = px_http_on_message_complete,
};

px_http_parser_t *px_http_parser_new(size_t max_header_bytes, size_t max_body_bytes)
{
    px_http_parser_t *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->max_header = max_header_bytes ? max_header_bytes : PX_HTTP_MAX_HEADER_BYTES;
    p->max_body = max_body_bytes ? max_body_bytes : PX_HTTP_MAX_BODY_BYTES;
    /* the URL and headers, their NULs, then a copy of path and query */
    p->arena_cap = 2 * p->max_header + 2 * PX_HTTP_MAX_HEADERS + 8;
    p->arena = malloc(p->arena_cap);
    if (!p->arena) {
        free(p);
        return NULL;
    }
    http_parser_init(&p->hp, HTTP_REQUEST);
    p->hp.data = p;
    return p;
}

void px_http_parser_free(px_http_parser_t *p)
{
    if (!p)
        return;
    free(p->arena);
    free(p->body);
    free(p);
}

px_http_feed_t px_http_parser_feed(px_http_parser_t *p, const char *data, size_t len,
                                   size_t *consumed)
{
    *consumed = 0;
    if (p->errored)
        return PX_HTTP_FEED_ERROR;
    if (p->complete)
        return PX_HTTP_FEED_REQUEST;
    if (len == 0)
        return PX_HTTP_FEED_MORE; /* a zero length would mean EOF to http_parser */
    size_t n = http_parser_execute(&p->hp, &px_http_settings, data, len);
    enum http_errno e = HTTP_PARSER_ERRNO(&p->hp);
    *consumed = n;
    if (p->complete) {
        if (p->hp.upgrade)
            p->req.keep_alive = false; /* we speak nothing else: answer and close */
        return PX_HTTP_FEED_REQUEST;
    }
    if (e != HPE_OK || n != len) {
        p->errored = true;
        if (!p->error_status) {
            if (e == HPE_HEADER_OVERFLOW)
                px_http_fail(p, 431, "request headers too large");
            else if (e == HPE_INVALID_METHOD)
                px_http_fail(p, 501, "method not implemented");
            else if (e == HPE_INVALID_VERSION)
                px_http_fail(p, 400, "invalid HTTP version");
            else
                px_http_fail(p, 400, e != HPE_OK ? http_errno_description(e) : "bad request");
        }
        return PX_HTTP_FEED_ERROR;
    }
    return PX_HTTP_FEED_MORE;
}

const px_http_request_t *px_http_parser_request(const px_http_parser_t *p)
{
    return p->complete ? &p->req : NULL;
}

void px_http_parser_next(px_http_parser_t *p)
{
    if (!p->complete)
        return;
    p->complete = false;
    /* keep the body buffer small between requests */
    if (p->body_cap > 16384) {
        free(p->body);
        p->body = NULL;
        p->body_cap = 0;
    }
    p->body_len = 0;
    http_parser_pause(&p->hp, 0);
}

int px_http_parser_error_status(const px_http_parser_t *p)
{
    return p->error_status ? p->error_status : 400;
}

const char *px_http_parser_error(const px_http_parser_t *p)
{
    return p->error[0] ? p->error : "bad request";
}

bool px_http_parser_in_request(const px_http_parser_t *p)
{
    return p->in_request;
}

bool px_http_parser_take_continue(px_http_parser_t *p)
{
    bool v = p->want_continue;
    p->want_continue = false;
    return v;
}

/* ==== responses ================================================================ */

const char *px_http_status_text(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 415:
        return "Unsupported Media Type";
    case 417:
        return "Expectation Failed";
    case 422:
        return "Unprocessable Content";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Unknown";
    }
}

bool px_http_response_header(px_http_response_t *r, const char *name, const char *value)
{
    if (strpbrk(name, "\r\n:") || strpbrk(value, "\r\n"))
        return false;
    size_t room = sizeof(r->headers) - r->headers_len;
    int n = snprintf(r->headers + r->headers_len, room, "%s: %s\r\n", name, value);
    if (n < 0 || (size_t)n >= room) {
        r->headers[r->headers_len] = '\0';
        return false;
    }
    r->headers_len += (size_t)n;
    return true;
}

void px_http_response_error(px_http_response_t *r, int status, const char *message)
{
    r->status = status;
    r->content_type = "application/json";
    px_metrics_buf_reset(&r->body, 1 << 20);
    px_json_t j;
    px_json_init(&j, &r->body);
    px_json_obj(&j);
    px_json_kv_str(&j, "error", message);
    px_json_obj_end(&j);
    px_metrics_buf_append(&r->body, "\n", 1);
}

size_t px_http_format_head(char *out, size_t cap, int status, const char *content_type,
                           size_t content_length, bool keep_alive, const char *extra,
                           size_t extra_len)
{
    char date[64];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    int n;
    if (status == 204 || (status >= 100 && status < 200))
        n = snprintf(out, cap, "HTTP/1.1 %d %s\r\nDate: %s\r\nConnection: %s\r\n", status,
                     px_http_status_text(status), date, keep_alive ? "keep-alive" : "close");
    else
        n = snprintf(out, cap,
                     "HTTP/1.1 %d %s\r\nDate: %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Cache-Control: no-store\r\nConnection: %s\r\n",
                     status, px_http_status_text(status), date,
                     content_type ? content_type : "application/json", content_length,
                     keep_alive ? "keep-alive" : "close");
    if (n < 0 || (size_t)n >= cap || extra_len + 2 >= cap - (size_t)n)
        return 0;
    memcpy(out + n, extra, extra_len);
    n += (int)extra_len;
    memcpy(out + n, "\r\n", 3);
    return (size_t)n + 2;
}

/* ==== JSON ======================================================================== */

#define PX_JSON_MAX_DEPTH 32

void px_json_init(px_json_t *j, px_metrics_buf_t *b)
{
    memset(j, 0, sizeof(*j));
    j->b = b;
}

/* Before a value or key: the comma, unless it follows a key or opens a level. */
static void px_json_pre(px_json_t *j)
{
    if (j->after_key) {
        j->after_key = false;
        return;
    }
    uint64_t bit = 1ull << j->depth;
    if (j->filled & bit)
        px_metrics_buf_append(j->b, ",", 1);
    j->filled |= bit;
}

static void px_json_open(px_json_t *j, char c)
{
    px_json_pre(j);
    px_metrics_buf_append(j->b, &c, 1);
    if (j->depth >= PX_JSON_MAX_DEPTH) {
        j->b->failed = true;
        return;
    }
    j->depth++;
    j->filled &= ~(1ull << j->depth);
}

static void px_json_close(px_json_t *j, char c)
{
    px_metrics_buf_append(j->b, &c, 1);
    if (j->depth > 0)
        j->depth--;
    j->after_key = false;
}

void px_json_obj(px_json_t *j)
{
    px_json_open(j, '{');
}
void px_json_obj_end(px_json_t *j)
{
    px_json_close(j, '}');
}
void px_json_arr(px_json_t *j)
{
    px_json_open(j, '[');
}
void px_json_arr_end(px_json_t *j)
{
    px_json_close(j, ']');
}

static void px_json_escape(px_metrics_buf_t *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    px_metrics_buf_append(b, "\"", 1);
    size_t run = 0; /* bytes copied verbatim, flushed in one append */
    while (n > 0) {
        unsigned c = p[run];
        size_t k = px_metrics_utf8_len(p + run, n);
        const char *esc = NULL;
        char u[7];
        if (k == 0) {
            esc = "\\ufffd";
            k = 1;
        } else if (c == '"') {
            esc = "\\\"";
        } else if (c == '\\') {
            esc = "\\\\";
        } else if (c == '\n') {
            esc = "\\n";
        } else if (c == '\r') {
            esc = "\\r";
        } else if (c == '\t') {
            esc = "\\t";
        } else if (c == '\b') {
            esc = "\\b";
        } else if (c == '\f') {
            esc = "\\f";
        } else if (c < 0x20 || c == 0x7f) {
            u[0] = '\\', u[1] = 'u', u[2] = '0', u[3] = '0', u[4] = hex[c >> 4], u[5] = hex[c & 15],
            u[6] = '\0';
            esc = u;
        }
        if (esc) {
            px_metrics_buf_append(b, p, run);
            px_metrics_buf_puts(b, esc);
            p += run + k;
            run = 0;
        } else {
            run += k;
        }
        n -= k;
    }
    px_metrics_buf_append(b, p, run);
    px_metrics_buf_append(b, "\"", 1);
}

void px_json_key(px_json_t *j, const char *key)
{
    px_json_pre(j);
    px_json_escape(j->b, key, strlen(key));
    px_metrics_buf_append(j->b, ":", 1);
    j->after_key = true;
}

void px_json_strn(px_json_t *j, const char *s, size_t n)
{
    px_json_pre(j);
    px_json_escape(j->b, s, n);
}

void px_json_str(px_json_t *j, const char *s)
{
    if (!s) {
        px_json_null(j);
        return;
    }
    px_json_strn(j, s, strlen(s));
}

void px_json_int(px_json_t *j, int64_t v)
{
    px_json_pre(j);
    px_metrics_buf_printf(j->b, "%lld", (long long)v);
}

void px_json_uint(px_json_t *j, uint64_t v)
{
    px_json_pre(j);
    px_metrics_buf_printf(j->b, "%llu", (unsigned long long)v);
}

void px_json_double(px_json_t *j, double v)
{
    if (v != v || v - v != 0) { /* NaN or infinite: JSON has neither */
        px_json_null(j);
        return;
    }
    px_json_pre(j);
    char num[40];
    int n = px_metrics_format_double(num, sizeof(num), v);
    px_metrics_buf_append(j->b, num, n > 0 ? (size_t)n : 0);
}

void px_json_bool(px_json_t *j, bool v)
{
    px_json_pre(j);
    px_metrics_buf_puts(j->b, v ? "true" : "false");
}

void px_json_null(px_json_t *j)
{
    px_json_pre(j);
    px_metrics_buf_puts(j->b, "null");
}

void px_json_kv_str(px_json_t *j, const char *key, const char *s)
{
    px_json_key(j, key);
    px_json_str(j, s);
}
void px_json_kv_int(px_json_t *j, const char *key, int64_t v)
{
    px_json_key(j, key);
    px_json_int(j, v);
}
void px_json_kv_uint(px_json_t *j, const char *key, uint64_t v)
{
    px_json_key(j, key);
    px_json_uint(j, v);
}
void px_json_kv_double(px_json_t *j, const char *key, double v)
{
    px_json_key(j, key);
    px_json_double(j, v);
}
void px_json_kv_bool(px_json_t *j, const char *key, bool v)
{
    px_json_key(j, key);
    px_json_bool(j, v);
}

/* ==== auth and routing ================================================================ */

bool px_http_bearer_ok(const char *authorization, const char *expected)
{
    if (!authorization || !expected || !*expected)
        return false;
    const char *a = authorization;
    while (*a == ' ' || *a == '\t')
        a++;
    if (strncasecmp(a, "Bearer", 6) != 0 || (a[6] != ' ' && a[6] != '\t'))
        return false;
    a += 6;
    while (*a == ' ' || *a == '\t')
        a++;
    size_t n = strlen(a);
    while (n > 0 && (a[n - 1] == ' ' || a[n - 1] == '\t'))
        n--;
    /* compare fixed-size digests so neither the content nor the length leaks */
    unsigned char got[SHA256_DIGEST_LENGTH], want[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)a, n, got);
    SHA256((const unsigned char *)expected, strlen(expected), want);
    return n > 0 && CRYPTO_memcmp(got, want, sizeof(got)) == 0;
}

static const px_http_method_t px_http_allow_order[] = {
    PX_HTTP_GET,    PX_HTTP_HEAD,  PX_HTTP_POST,    PX_HTTP_PUT,
    PX_HTTP_DELETE, PX_HTTP_PATCH, PX_HTTP_OPTIONS,
};

void px_http_dispatch(const px_http_route_t *routes, size_t n_routes, const px_http_request_t *req,
                      px_http_response_t *resp, void *arg)
{
    unsigned allowed = 0;
    const px_http_route_t *hit = NULL;
    for (size_t i = 0; i < n_routes; i++) {
        const px_http_route_t *r = &routes[i];
        if (strcmp(r->path, req->path) != 0)
            continue;
        unsigned m = r->methods;
        if (m & PX_HTTP_M(PX_HTTP_GET))
            m |= PX_HTTP_M(PX_HTTP_HEAD);
        allowed |= m;
        if (!hit && req->method != PX_HTTP_OTHER && (m & PX_HTTP_M(req->method)))
            hit = r;
    }
    if (!allowed) {
        px_http_response_error(resp, 404, "not found");
        return;
    }
    if (hit) {
        hit->fn(req, resp, arg);
        return;
    }
    allowed |= PX_HTTP_M(PX_HTTP_OPTIONS);
    char allow[96] = "";
    size_t n = 0;
    for (size_t i = 0; i < sizeof(px_http_allow_order) / sizeof(px_http_allow_order[0]); i++) {
        px_http_method_t m = px_http_allow_order[i];
        if (allowed & PX_HTTP_M(m))
            n += (size_t)snprintf(allow + n, sizeof(allow) - n, "%s%s", n ? ", " : "",
                                  px_http_method_to_str(m));
    }
    if (req->method == PX_HTTP_OPTIONS) {
        resp->status = 204;
        px_metrics_buf_reset(&resp->body, 1 << 20);
    } else {
        px_http_response_error(resp, 405, "method not allowed");
    }
    (void)px_http_response_header(resp, "Allow", allow);
}

/* ==== the server ======================================================================= */

#define PX_HTTP_INBUF     4096  /* one read; the parser copies what it keeps */
#define PX_HTTP_LINGER_MS 2000  /* after our FIN, how long to drain the peer's input */
#define PX_HTTP_KEEP_OUT  65536 /* output buffer kept between responses */

typedef enum px_http_conn_state {
    PX_HTTP_CONN_OPEN = 0, /* reading and answering requests */
    PX_HTTP_CONN_PAUSED,   /* output above high water: input kept, reads stopped */
    PX_HTTP_CONN_DRAINING, /* the last response is queued: write it, then shut down */
    PX_HTTP_CONN_LINGER,   /* FIN sent: discard input until EOF or the linger timeout */
    PX_HTTP_CONN_CLOSING,  /* uv_close called; freed in its close callback */
} px_http_conn_state_t;

typedef struct px_http_conn px_http_conn_t;

struct px_http_conn {
    uv_tcp_t tcp;                /* the socket; its close callback frees the conn */
    uv_write_t wreq;             /* the one write in flight */
    uv_shutdown_t sreq;          /* the FIN at the end */
    px_http_server_t *srv;       /* owner */
    px_http_conn_t *prev, *next; /* srv->conns */
    px_http_parser_t *parser;    /* owned */
    px_http_conn_state_t state;  /* see px_http_conn_state_t */
    px_metrics_buf_t out;        /* responses not yet handed to libuv */
    px_metrics_buf_t inflight;   /* bytes of the write in flight */
    bool writing;                /* wreq is in flight */
    bool reading;                /* uv_read_start is in effect */
    bool eof;                    /* the peer finished sending */
    uint64_t last_active;        /* loop ms of the last read or completed write */
    uint64_t req_start;          /* loop ms when the current request began, 0 = none */
    uint64_t write_start;        /* loop ms when the write in flight started */
    uint64_t linger_start;       /* loop ms when LINGER began */
    size_t inpos, inlen;         /* unparsed input is in[inpos, inlen) */
    char in[PX_HTTP_INBUF];
};

struct px_http_server {
    uv_loop_t loop;
    uv_tcp_t listener;
    uv_timer_t sweep; /* timeouts, on_tick */
    uv_async_t stop;  /* px_http_server_stop → stop_cb */
    pthread_t thread;
    bool thread_started;
    px_http_server_opts_t o; /* with defaults filled in */
    char name[32];
    uint16_t port;
    px_http_conn_t *conns; /* every open connection */
    int n_conns;
    bool stopping;
    px_http_response_t resp;   /* scratch for the request being answered */
    _Atomic uint64_t requests; /* answered, for tests and stats */
};

static void px_http_conn_pump(px_http_conn_t *c);

static void px_http_conn_close_cb(uv_handle_t *h)
{
    px_http_conn_t *c = h->data;
    px_http_server_t *srv = c->srv;
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    srv->n_conns--;
    px_http_parser_free(c->parser);
    px_metrics_buf_free(&c->out);
    px_metrics_buf_free(&c->inflight);
    free(c);
}

static void px_http_conn_close(px_http_conn_t *c)
{
    if (c->state == PX_HTTP_CONN_CLOSING)
        return;
    c->state = PX_HTTP_CONN_CLOSING;
    uv_close((uv_handle_t *)&c->tcp, px_http_conn_close_cb);
}

static void px_http_write_cb(uv_write_t *req, int status)
{
    px_http_conn_t *c = req->data;
    c->writing = false;
    px_metrics_buf_reset(&c->inflight, PX_HTTP_KEEP_OUT);
    if (c->state == PX_HTTP_CONN_CLOSING)
        return;
    if (status < 0) {
        px_http_conn_close(c);
        return;
    }
    c->last_active = uv_now(&c->srv->loop);
    px_http_conn_pump(c);
}

/* Hand queued output to the socket: synchronously if it takes it all, else
 * one uv_write for the rest. */
static void px_http_conn_flush(px_http_conn_t *c)
{
    while (!c->writing && c->out.len > 0 && c->state != PX_HTTP_CONN_CLOSING) {
        px_metrics_buf_t t = c->inflight;
        c->inflight = c->out;
        c->out = t;
        c->out.len = 0;
        uv_buf_t buf = uv_buf_init(c->inflight.p, (unsigned)c->inflight.len);
        int n = uv_try_write((uv_stream_t *)&c->tcp, &buf, 1);
        if (n == (int)c->inflight.len) {
            px_metrics_buf_reset(&c->inflight, PX_HTTP_KEEP_OUT);
            c->last_active = uv_now(&c->srv->loop);
            continue;
        }
        if (n < 0 && n != UV_EAGAIN) {
            px_http_conn_close(c);
            return;
        }
        if (n < 0)
            n = 0;
        buf = uv_buf_init(c->inflight.p + n, (unsigned)(c->inflight.len - (size_t)n));
        c->wreq.data = c;
        int rc = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &buf, 1, px_http_write_cb);
        if (rc != 0) {
            px_http_conn_close(c);
            return;
        }
        c->writing = true;
        c->write_start = uv_now(&c->srv->loop);
    }
}

/* Queue one response; the connection closes after it when @p keep_alive is false. */
static void px_http_conn_respond(px_http_conn_t *c, const px_http_request_t *req,
                                 px_http_response_t *r, bool keep_alive)
{
    char head[1024];
    bool head_only = req && req->method == PX_HTTP_HEAD;
    size_t body_len = r->status == 204 ? 0 : r->body.len;
    size_t n = px_http_format_head(head, sizeof(head), r->status, r->content_type, body_len,
                                   keep_alive, r->headers, r->headers_len);
    if (n == 0) {
        /* the extra headers did not fit: drop them rather than the response */
        n = px_http_format_head(head, sizeof(head), r->status, r->content_type, body_len,
                                keep_alive, "", 0);
    }
    px_metrics_buf_append(&c->out, head, n);
    if (!head_only && body_len)
        px_metrics_buf_append(&c->out, r->body.p, body_len);
    if (c->out.failed) {
        px_http_conn_close(c);
        return;
    }
    if (!keep_alive)
        c->state = PX_HTTP_CONN_DRAINING;
}

static void px_http_response_reset(px_http_response_t *r)
{
    r->status = 200;
    r->content_type = "application/json";
    px_metrics_buf_reset(&r->body, 1 << 20);
    r->headers_len = 0;
    r->headers[0] = '\0';
    r->close = false;
}

static void px_http_conn_answer(px_http_conn_t *c, const px_http_request_t *req)
{
    px_http_server_t *srv = c->srv;
    px_http_response_t *r = &srv->resp;
    px_http_response_reset(r);
    srv->o.handler(req, r, srv->o.arg);
    if (r->body.failed) {
        px_http_response_reset(r);
        px_http_response_error(r, 500, "response too large");
    }
    bool keep = req->keep_alive && !r->close && !srv->stopping;
    atomic_fetch_add_explicit(&srv->requests, 1, memory_order_relaxed);
    px_log_debug(srv->name, "%s %s -> %d (%zu bytes)", req->method_name, req->target, r->status,
                 r->body.len);
    px_http_conn_respond(c, req, r, keep);
}

/* Answer an unparseable or refused request and close. */
static void px_http_conn_fail(px_http_conn_t *c, int status, const char *message)
{
    px_http_response_t *r = &c->srv->resp;
    px_http_response_reset(r);
    px_http_response_error(r, status, message);
    px_log_debug(c->srv->name, "request refused: %d %s", status, message);
    px_http_conn_respond(c, NULL, r, false);
}

/* Parse and answer what input there is, as far as the state allows. */
static void px_http_conn_parse(px_http_conn_t *c)
{
    uint64_t now = uv_now(&c->srv->loop);
    while (c->state == PX_HTTP_CONN_OPEN && c->inpos < c->inlen) {
        size_t used = 0;
        px_http_feed_t rc =
            px_http_parser_feed(c->parser, c->in + c->inpos, c->inlen - c->inpos, &used);
        c->inpos += used;
        if (rc == PX_HTTP_FEED_MORE) {
            if (px_http_parser_in_request(c->parser) && !c->req_start)
                c->req_start = now;
            if (px_http_parser_take_continue(c->parser))
                px_metrics_buf_puts(&c->out, "HTTP/1.1 100 Continue\r\n\r\n");
            break;
        }
        if (rc == PX_HTTP_FEED_ERROR) {
            px_http_conn_fail(c, px_http_parser_error_status(c->parser),
                              px_http_parser_error(c->parser));
            break;
        }
        c->req_start = 0;
        px_http_conn_answer(c, px_http_parser_request(c->parser));
        px_http_parser_next(c->parser);
        if (c->state == PX_HTTP_CONN_OPEN && c->out.len >= c->srv->o.out_high_water)
            c->state = PX_HTTP_CONN_PAUSED;
    }
    if (c->inpos == c->inlen) {
        c->inpos = c->inlen = 0;
    } else if (c->inpos > 0) {
        memmove(c->in, c->in + c->inpos, c->inlen - c->inpos);
        c->inlen -= c->inpos;
        c->inpos = 0;
    }
    /* the peer is done sending and everything it sent is answered (a partial
     * request can never complete): finish writing and close */
    if (c->state == PX_HTTP_CONN_OPEN && c->eof && c->inlen == 0)
        c->state = PX_HTTP_CONN_DRAINING;
}

static void px_http_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    px_http_conn_t *c = h->data;
    (void)suggested;
    if (c->state == PX_HTTP_CONN_LINGER) {
        *buf = uv_buf_init(c->in, sizeof(c->in)); /* discarded */
        return;
    }
    *buf = uv_buf_init(c->in + c->inlen, (unsigned)(sizeof(c->in) - c->inlen));
}

static void px_http_shutdown_cb(uv_shutdown_t *req, int status)
{
    px_http_conn_t *c = req->data;
    if (c->state == PX_HTTP_CONN_CLOSING)
        return;
    if (status < 0)
        px_http_conn_close(c);
}

static void px_http_read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    px_http_conn_t *c = stream->data;
    (void)buf;
    if (c->state == PX_HTTP_CONN_CLOSING || nread == 0)
        return;
    if (nread < 0) {
        if (nread != UV_EOF || c->state == PX_HTTP_CONN_LINGER) {
            px_http_conn_close(c);
            return;
        }
        c->eof = true;
        px_http_conn_pump(c);
        return;
    }
    if (c->state == PX_HTTP_CONN_LINGER)
        return;
    c->last_active = uv_now(&c->srv->loop);
    c->inlen += (size_t)nread;
    px_http_conn_pump(c);
}

static void px_http_conn_reading(px_http_conn_t *c)
{
    bool want = !c->eof && (c->state == PX_HTTP_CONN_OPEN || c->state == PX_HTTP_CONN_LINGER);
    if (want && !c->reading) {
        if (uv_read_start((uv_stream_t *)&c->tcp, px_http_alloc_cb, px_http_read_cb) != 0) {
            px_http_conn_close(c);
            return;
        }
        c->reading = true;
    } else if (!want && c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
    }
}

/* The one driver of a connection: parse, answer, write, and move through the
 * states until it has to wait for the network. */
static void px_http_conn_pump(px_http_conn_t *c)
{
    for (;;) {
        if (c->state == PX_HTTP_CONN_CLOSING)
            return;
        px_http_conn_parse(c);
        px_http_conn_flush(c);
        if (c->state == PX_HTTP_CONN_CLOSING)
            return;
        if (c->writing)
            break;
        if (c->state == PX_HTTP_CONN_PAUSED) {
            c->state = PX_HTTP_CONN_OPEN; /* output drained: parse the rest */
            continue;
        }
        if (c->state == PX_HTTP_CONN_DRAINING) {
            if (c->eof) {
                px_http_conn_close(c);
                return;
            }
            /* FIN, then drain what the peer still sends so our last
             * response is not destroyed by a reset */
            c->sreq.data = c;
            if (uv_shutdown(&c->sreq, (uv_stream_t *)&c->tcp, px_http_shutdown_cb) != 0) {
                px_http_conn_close(c);
                return;
            }
            c->state = PX_HTTP_CONN_LINGER;
            c->linger_start = uv_now(&c->srv->loop);
        }
        break;
    }
    px_http_conn_reading(c);
}

static void px_http_reject_close_cb(uv_handle_t *h)
{
    free(h);
}

static void px_http_connection_cb(uv_stream_t *listener, int status)
{
    px_http_server_t *srv = listener->data;
    if (status < 0) {
        px_log_warn(srv->name, "accept failed: %s", uv_strerror(status));
        return;
    }
    if (srv->stopping)
        return;
    if (srv->n_conns >= srv->o.max_conns) {
        /* accept, say why, close: the backlog must not fill with us silent */
        uv_tcp_t *t = malloc(sizeof(*t));
        if (!t)
            return;
        uv_tcp_init(&srv->loop, t);
        if (uv_accept(listener, (uv_stream_t *)t) == 0) {
            static const char body[] = "{\"error\":\"too many admin connections\"}\n";
            static const char extra[] = "Retry-After: 1\r\n";
            char msg[512];
            size_t n = px_http_format_head(msg, sizeof(msg) - sizeof(body), 503, NULL,
                                           sizeof(body) - 1, false, extra, sizeof(extra) - 1);
            memcpy(msg + n, body, sizeof(body) - 1);
            uv_buf_t b = uv_buf_init(msg, (unsigned)(n + sizeof(body) - 1));
            (void)uv_try_write((uv_stream_t *)t, &b, 1);
        }
        uv_close((uv_handle_t *)t, px_http_reject_close_cb);
        px_log_warn(srv->name, "connection refused: %d connections open", srv->n_conns);
        return;
    }
    px_http_conn_t *c = calloc(1, sizeof(*c));
    if (!c)
        return;
    c->srv = srv;
    c->parser = px_http_parser_new(srv->o.max_header_bytes, srv->o.max_body_bytes);
    px_metrics_buf_init(&c->out, SIZE_MAX / 2);
    px_metrics_buf_init(&c->inflight, SIZE_MAX / 2);
    uv_tcp_init(&srv->loop, &c->tcp);
    c->tcp.data = c;
    c->next = srv->conns;
    if (srv->conns)
        srv->conns->prev = c;
    srv->conns = c;
    srv->n_conns++;
    if (!c->parser || uv_accept(listener, (uv_stream_t *)&c->tcp) != 0) {
        px_http_conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    c->last_active = uv_now(&srv->loop);
    px_http_conn_pump(c);
}

static void px_http_sweep_cb(uv_timer_t *t)
{
    px_http_server_t *srv = t->data;
    uint64_t now = uv_now(&srv->loop);
    const px_http_server_opts_t *o = &srv->o;
    for (px_http_conn_t *c = srv->conns, *next; c; c = next) {
        next = c->next; /* a closed conn stays linked until its close callback */
        switch (c->state) {
        case PX_HTTP_CONN_OPEN:
            if (c->writing && now - c->write_start >= o->write_timeout_ms) {
                px_http_conn_close(c);
            } else if (c->req_start && now - c->req_start >= o->request_timeout_ms) {
                px_http_conn_fail(c, 408, "request not received in time");
                px_http_conn_pump(c);
            } else if (!c->req_start && !c->writing && c->out.len == 0 &&
                       now - c->last_active >= o->idle_timeout_ms) {
                px_http_conn_close(c);
            }
            break;
        case PX_HTTP_CONN_PAUSED:
        case PX_HTTP_CONN_DRAINING:
            if (c->writing && now - c->write_start >= o->write_timeout_ms)
                px_http_conn_close(c);
            break;
        case PX_HTTP_CONN_LINGER:
            if (now - c->linger_start >= PX_HTTP_LINGER_MS)
                px_http_conn_close(c);
            break;
        case PX_HTTP_CONN_CLOSING:
            break;
        }
    }
    if (o->on_tick)
        o->on_tick(o->arg);
}

static void px_http_stop_cb(uv_async_t *a)
{
    px_http_server_t *srv = a->data;
    srv->stopping = true;
    uv_close((uv_handle_t *)&srv->listener, NULL);
    uv_close((uv_handle_t *)&srv->sweep, NULL);
    uv_close((uv_handle_t *)&srv->stop, NULL);
    for (px_http_conn_t *c = srv->conns; c; c = c->next)
        px_http_conn_close(c);
}

static void *px_http_thread(void *arg)
{
    px_http_server_t *srv = arg;
    uv_run(&srv->loop, UV_RUN_DEFAULT);
    return NULL;
}

/* Resolve host:port; IP literals first, then getaddrinfo (startup only). */
static int px_http_resolve(const char *host, uint16_t port, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    if (!host || !*host)
        host = "0.0.0.0";
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)ss) == 0)
        return 0;
    if (uv_ip6_addr(host, port, (struct sockaddr_in6 *)ss) == 0)
        return 0;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    int rc = getaddrinfo(host, NULL, &hints, &res);
    if (rc != 0 || !res)
        return UV_EINVAL;
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    if (ss->ss_family == AF_INET)
        ((struct sockaddr_in *)ss)->sin_port = htons(port);
    else
        ((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
    freeaddrinfo(res);
    return 0;
}

static void px_http_fill_defaults(px_http_server_opts_t *o)
{
    if (o->max_conns <= 0)
        o->max_conns = 256;
    if (!o->max_header_bytes)
        o->max_header_bytes = PX_HTTP_MAX_HEADER_BYTES;
    if (!o->max_body_bytes)
        o->max_body_bytes = PX_HTTP_MAX_BODY_BYTES;
    if (!o->request_timeout_ms)
        o->request_timeout_ms = 10000;
    if (!o->idle_timeout_ms)
        o->idle_timeout_ms = 75000;
    if (!o->write_timeout_ms)
        o->write_timeout_ms = 10000;
    if (!o->sweep_ms)
        o->sweep_ms = 1000;
    if (!o->out_high_water)
        o->out_high_water = 256 * 1024;
    if (!o->max_response_bytes)
        o->max_response_bytes = 32u << 20;
}

px_http_server_t *px_http_server_start(const px_http_server_opts_t *opts, int *err)
{
    int rc;
    *err = 0;
    if (!opts->handler) {
        *err = UV_EINVAL;
        return NULL;
    }
    px_http_server_t *srv = calloc(1, sizeof(*srv));
    if (!srv) {
        *err = UV_ENOMEM;
        return NULL;
    }
    srv->o = *opts;
    px_http_fill_defaults(&srv->o);
    snprintf(srv->name, sizeof(srv->name), "%s", opts->name ? opts->name : "http");
    srv->o.name = srv->name;
    srv->o.host = NULL; /* not kept */
    px_metrics_buf_init(&srv->resp.body, srv->o.max_response_bytes);

    struct sockaddr_storage ss;
    rc = uv_loop_init(&srv->loop);
    if (rc != 0) {
        free(srv);
        *err = rc;
        return NULL;
    }
    uv_tcp_init(&srv->loop, &srv->listener);
    uv_timer_init(&srv->loop, &srv->sweep);
    uv_async_init(&srv->loop, &srv->stop, px_http_stop_cb);
    srv->listener.data = srv->sweep.data = srv->stop.data = srv;

    rc = px_http_resolve(opts->host, opts->port, &ss);
    if (rc == 0)
        rc = uv_tcp_bind(&srv->listener, (const struct sockaddr *)&ss, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&srv->listener, 128, px_http_connection_cb);
    if (rc == 0) {
        struct sockaddr_storage bound;
        int len = sizeof(bound);
        rc = uv_tcp_getsockname(&srv->listener, (struct sockaddr *)&bound, &len);
        if (rc == 0)
            srv->port =
                ntohs(bound.ss_family == AF_INET ? ((struct sockaddr_in *)&bound)->sin_port
                                                 : ((struct sockaddr_in6 *)&bound)->sin6_port);
    }
    if (rc == 0)
        rc = uv_timer_start(&srv->sweep, px_http_sweep_cb, srv->o.sweep_ms, srv->o.sweep_ms);
    if (rc == 0) {
        /* the server thread takes no process signals: they belong to main */
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        rc = -pthread_create(&srv->thread, NULL, px_http_thread, srv);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (rc == 0) {
            srv->thread_started = true;
            char tname[16];
            snprintf(tname, sizeof(tname), "px-%.12s", srv->name);
            pthread_setname_np(srv->thread, tname);
        }
    }
    if (rc != 0) {
        px_http_stop_cb(&srv->stop);
        uv_run(&srv->loop, UV_RUN_DEFAULT);
        uv_loop_close(&srv->loop);
        px_metrics_buf_free(&srv->resp.body);
        free(srv);
        *err = rc;
        return NULL;
    }
    return srv;
}

uint16_t px_http_server_port(const px_http_server_t *srv)
{
    return srv ? srv->port : 0;
}

uint64_t px_http_server_requests(const px_http_server_t *srv)
{
    return srv ? atomic_load_explicit(&((px_http_server_t *)srv)->requests, memory_order_relaxed)
               : 0;
}

void px_http_server_stop(px_http_server_t *srv)
{
    if (!srv)
        return;
    uv_async_send(&srv->stop);
    if (srv->thread_started)
        pthread_join(srv->thread, NULL);
    if (uv_loop_close(&srv->loop) != 0)
        px_log_warn(srv->name, "loop closed with handles still open");
    px_metrics_buf_free(&srv->resp.body);
    free(srv);
}
