/**
 * @file px_admin.h
 * The admin HTTP port (SPEC §6): health probes, replication status,
 * Prometheus metrics, pools, the effective configuration, cache control.
 *
 * Two layers:
 *  - admin/http.c: a small HTTP/1.1 server on a thread and libuv loop of its
 *    own (http_parser underneath): keep-alive, pipelined requests answered in
 *    order, bounded request size and time, bounded connections, plus the JSON
 *    writer, the bearer-token check and a table router. Generic; knows no
 *    endpoint.
 *  - admin/admin.c: the endpoints. They only read: counters, pool gauges,
 *    health snapshots and the config snapshot. Admin work never runs on a
 *    worker loop.
 */
#ifndef PX_ADMIN_H
#define PX_ADMIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "px_metrics.h"

struct px_shared;

/* ==== HTTP requests ======================================================== */

typedef enum px_http_method {
    PX_HTTP_OTHER = 0,
    PX_HTTP_GET,
    PX_HTTP_HEAD,
    PX_HTTP_POST,
    PX_HTTP_PUT,
    PX_HTTP_DELETE,
    PX_HTTP_PATCH,
    PX_HTTP_OPTIONS,
} px_http_method_t;

/** Bit of a method in a route's method mask. */
#define PX_HTTP_M(m) (1u << (m))

const char *px_http_method_to_str(px_http_method_t m);

/** Defaults for the request limits (bytes). */
#define PX_HTTP_MAX_HEADER_BYTES 8192 /* request line + headers; over: 414 / 431 */
#define PX_HTTP_MAX_BODY_BYTES   8192 /* body; over: 413 */
#define PX_HTTP_MAX_HEADERS      64   /* header lines; over: 431 */

typedef struct px_http_header {
    const char *name;  /* as received, NUL-terminated */
    const char *value; /* leading/trailing blanks trimmed by the parser */
} px_http_header_t;

/** One parsed request. Every pointer stays valid until px_http_parser_next. */
typedef struct px_http_request {
    px_http_method_t method;
    const char *method_name; /* "GET", "BREW", ... */
    const char *target;      /* the raw request-target */
    const char *path;        /* target without scheme://authority, query, fragment */
    const char *query;       /* after '?', "" when none; still percent-encoded */
    px_http_header_t headers[PX_HTTP_MAX_HEADERS];
    int n_headers;
    const char *body; /* NULL when there is none */
    size_t body_len;
    unsigned http_major, http_minor;
    bool keep_alive; /* HTTP/1.1 default, or Connection: keep-alive on 1.0 */
} px_http_request_t;

/** Header value by name (case-insensitive), or NULL. */
const char *px_http_header(const px_http_request_t *req, const char *name);

/**
 * Decode query parameter @p name (percent- and '+'-decoded) into @p out (NUL
 * terminated). Returns the decoded length, or -1 when absent, malformed, or
 * longer than @p cap - 1.
 */
int px_http_query_param(const px_http_request_t *req, const char *name, char *out, size_t cap);

/* ---- incremental request parser ------------------------------------------- */

typedef struct px_http_parser px_http_parser_t;

typedef enum px_http_feed {
    PX_HTTP_FEED_MORE = 0, /* every byte consumed; no complete request yet */
    PX_HTTP_FEED_REQUEST,  /* a request is complete: px_http_parser_request */
    PX_HTTP_FEED_ERROR,    /* malformed or over a limit: px_http_parser_error_status */
} px_http_feed_t;

/** A parser with the given limits (0: the PX_HTTP_MAX_* defaults); NULL on no memory. */
px_http_parser_t *px_http_parser_new(size_t max_header_bytes, size_t max_body_bytes);
void px_http_parser_free(px_http_parser_t *p);

/**
 * Feed bytes. Stops right after the first complete request (pipelined bytes
 * after it are left unconsumed: *@p consumed says how many were used) and
 * returns PX_HTTP_FEED_REQUEST; the caller answers it, calls
 * px_http_parser_next, and feeds the rest. After PX_HTTP_FEED_ERROR the
 * connection must be closed (after sending the error status).
 */
px_http_feed_t px_http_parser_feed(px_http_parser_t *p, const char *data, size_t len,
                                   size_t *consumed);
/** The complete request after PX_HTTP_FEED_REQUEST. */
const px_http_request_t *px_http_parser_request(const px_http_parser_t *p);
/** Done with the request: release it and accept the next one. */
void px_http_parser_next(px_http_parser_t *p);
/** After PX_HTTP_FEED_ERROR: the status to answer (400, 413, 414, 431, 501) and why. */
int px_http_parser_error_status(const px_http_parser_t *p);
const char *px_http_parser_error(const px_http_parser_t *p);
/** Whether part of a request has been received (for the request deadline). */
bool px_http_parser_in_request(const px_http_parser_t *p);
/** True once per request that asked for "Expect: 100-continue" and may send its body. */
bool px_http_parser_take_continue(px_http_parser_t *p);

/* ==== HTTP responses ====================================================== */

typedef struct px_http_response {
    int status;               /* 200 unless set */
    const char *content_type; /* a literal; default application/json */
    px_metrics_buf_t body;    /* owned by the server, reused between requests */
    char headers[512];        /* extra "Name: value\r\n" lines */
    size_t headers_len;
    bool close; /* close the connection after this response */
} px_http_response_t;

/** Add a header line; refused (false) if it contains CR/LF or does not fit. */
bool px_http_response_header(px_http_response_t *r, const char *name, const char *value);
/** Set @p status and a JSON body {"error": @p message}. */
void px_http_response_error(px_http_response_t *r, int status, const char *message);

const char *px_http_status_text(int status);

/**
 * Format the status line and headers of a response (Date, Content-Type,
 * Content-Length, Connection, then @p extra verbatim) into @p out.
 * Returns the length, or 0 if it does not fit.
 */
size_t px_http_format_head(char *out, size_t cap, int status, const char *content_type,
                           size_t content_length, bool keep_alive, const char *extra,
                           size_t extra_len);

/* ==== JSON writer ========================================================= */

/**
 * Writes JSON into a px_metrics_buf_t, placing commas itself. Strings are
 * escaped (quotes, backslash, control characters as \\u00XX) and invalid
 * UTF-8 becomes U+FFFD, so any C string yields valid JSON. Non-finite numbers
 * are written as null. Nesting deeper than 32 sets the buffer's failed flag.
 */
typedef struct px_json {
    px_metrics_buf_t *b;
    uint32_t depth;  /* open containers */
    uint64_t filled; /* bit per depth: something was written at that level */
    bool after_key;  /* a key was written; its value comes next */
} px_json_t;

void px_json_init(px_json_t *j, px_metrics_buf_t *b);
void px_json_obj(px_json_t *j);
void px_json_obj_end(px_json_t *j);
void px_json_arr(px_json_t *j);
void px_json_arr_end(px_json_t *j);
void px_json_key(px_json_t *j, const char *key);
void px_json_str(px_json_t *j, const char *s); /* NULL: null */
void px_json_strn(px_json_t *j, const char *s, size_t n);
void px_json_int(px_json_t *j, int64_t v);
void px_json_uint(px_json_t *j, uint64_t v);
void px_json_double(px_json_t *j, double v);
void px_json_bool(px_json_t *j, bool v);
void px_json_null(px_json_t *j);
/** Shorthands: key then value. */
void px_json_kv_str(px_json_t *j, const char *key, const char *s);
void px_json_kv_int(px_json_t *j, const char *key, int64_t v);
void px_json_kv_uint(px_json_t *j, const char *key, uint64_t v);
void px_json_kv_double(px_json_t *j, const char *key, double v);
void px_json_kv_bool(px_json_t *j, const char *key, bool v);

/* ==== auth and routing ==================================================== */

/**
 * Whether @p authorization (an Authorization header value, may be NULL) is
 * "Bearer <expected>". The token comparison takes the same time whatever the
 * input (digests compared with CRYPTO_memcmp), so it leaks neither the
 * position of a mismatch nor the token's length. An empty @p expected never
 * matches.
 */
bool px_http_bearer_ok(const char *authorization, const char *expected);

typedef void (*px_http_handler_fn)(const px_http_request_t *req, px_http_response_t *resp,
                                   void *arg);

typedef struct px_http_route {
    const char *path;      /* exact match on the request's path */
    unsigned methods;      /* PX_HTTP_M() mask; GET implies HEAD */
    px_http_handler_fn fn; /* called with the dispatcher's arg */
} px_http_route_t;

/**
 * Find the route for @p req: unknown path → 404 JSON; known path, other
 * method → 405 JSON with an Allow header; OPTIONS → 204 with Allow; else call
 * the route's function. Several routes may share a path with different methods.
 */
void px_http_dispatch(const px_http_route_t *routes, size_t n_routes, const px_http_request_t *req,
                      px_http_response_t *resp, void *arg);

/* ==== the server ========================================================== */

typedef struct px_http_server px_http_server_t;

typedef struct px_http_server_opts {
    const char *host;            /* IP literal or name; "" or NULL: 0.0.0.0 */
    uint16_t port;               /* 0: any free port (see px_http_server_port) */
    int max_conns;               /* [256] over it: 503 and close */
    size_t max_header_bytes;     /* [PX_HTTP_MAX_HEADER_BYTES] */
    size_t max_body_bytes;       /* [PX_HTTP_MAX_BODY_BYTES] */
    uint32_t request_timeout_ms; /* [10000] a started request must be complete by then: 408 */
    uint32_t idle_timeout_ms;    /* [75000] idle keep-alive connections closed after */
    uint32_t write_timeout_ms;   /* [10000] a reader that stalls our writes is dropped */
    uint32_t sweep_ms;           /* [1000] timeout check interval */
    size_t out_high_water;       /* [256 KB] pending output above it pauses request parsing */
    size_t max_response_bytes;   /* [32 MB] a bigger response body becomes a 500 */
    px_http_handler_fn handler;  /* answers each request, on the server thread */
    void *arg;
    void (*on_tick)(void *arg); /* optional, every sweep_ms on the server thread */
    const char *name;           /* for logs, e.g. "admin" */
} px_http_server_opts_t;

/**
 * Bind and listen, then start the server's thread. Binding happens before
 * this returns, so a bad address or a port in use is reported here: returns
 * NULL and sets *@p err to a negative libuv/errno code.
 */
px_http_server_t *px_http_server_start(const px_http_server_opts_t *opts, int *err);
/** The bound port (useful with port 0). */
uint16_t px_http_server_port(const px_http_server_t *srv);
/** Requests answered so far (relaxed; any thread). */
uint64_t px_http_server_requests(const px_http_server_t *srv);
/** Close every connection, stop the loop, join the thread and free. NULL is a no-op. */
void px_http_server_stop(px_http_server_t *srv);

/* ==== the admin port ======================================================= */

/**
 * Start the admin server on cfg->admin_listen (read under sh->lock). Call
 * once, after the workers started. Returns 0 or a negative errno-style code
 * (the caller logs it and decides whether to exit).
 */
int px_admin_start(struct px_shared *sh);
/** Stop and join the admin thread; safe when it never started. */
void px_admin_stop(void);
/** The bound admin port, 0 when not running. */
uint16_t px_admin_port(void);

/**
 * The result cache's hooks into the admin port. Until a module registers
 * them, /api/v1/cache/stats reports the cache as unavailable and the mutating
 * cache endpoints answer 501 (after the auth check). Each function runs on the
 * admin thread, concurrently with the workers, so it must be thread-safe.
 *
 * Functions that answer a request write a complete JSON value with @p out and
 * return the HTTP status; they get the raw request body (JSON, unparsed; the
 * cache module owns its schema) — admin.c has already checked the token.
 */
typedef struct px_admin_cache_ops {
    /** Members of the stats object (hit_ratio, total_hits, ..., "levels": {...}). */
    void (*stats)(px_json_t *out, void *arg);
    int (*invalidate)(const char *body, size_t len, px_json_t *out, void *arg);
    int (*clear)(px_json_t *out, void *arg);
    int (*warm)(const char *body, size_t len, px_json_t *out, void *arg);
    /** Optional: extra Prometheus families (fastnext_cache_*) for /metrics. */
    void (*metrics)(px_metrics_buf_t *out, void *arg);
    void *arg;
} px_admin_cache_ops_t;

/** Register (or with NULL, remove) the cache hooks; @p ops must outlive the process. */
void px_admin_set_cache_ops(const px_admin_cache_ops_t *ops);

/** Endpoints that other modules fill in later; until then they answer 501. */
typedef enum px_admin_endpoint {
    PX_ADMIN_EP_SLOW_QUERIES = 0,      /* GET /api/v1/database/slow-queries */
    PX_ADMIN_EP_INDEX_RECOMMENDATIONS, /* GET /api/v1/database/index-recommendations */
    PX_ADMIN_EP_ROUTING_EXPLAIN,       /* GET /api/v1/routing/explain?sql=... */
    PX_ADMIN_EP_COUNT,
} px_admin_endpoint_t;

/**
 * Plug a handler into @p ep (NULL removes it). The handler runs on the admin
 * thread; @p arg is passed through.
 */
void px_admin_set_handler(px_admin_endpoint_t ep, px_http_handler_fn fn, void *arg);

#endif
