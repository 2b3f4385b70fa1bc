/*
 * Unit tests for admin/http.c. First the pure parts: the incremental request
 * parser (one request at a time, pipelining, any split of the bytes, limits
 * with their status codes, keep-alive rules, Expect: 100-continue), query
 * decoding, response heads, the JSON writer's escaping and commas, the bearer
 * check and the router's 404/405/OPTIONS. Then the server on a real loop on
 * loopback: keep-alive, pipelined answers in order, HEAD, oversized requests,
 * the connection cap, the request and idle timeouts, and a stop with
 * connections still open (ASan/LSan see every allocation released).
 */
#include "px_admin.h"

#include <CUnit/Basic.h>
#include <CUnit/CUnit.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* ==== the parser ============================================================ */

/* Feed all of @p s at once; expects exactly one request. */
static px_http_parser_t *parse_one(const char *s, px_http_feed_t *rc, size_t *used)
{
    px_http_parser_t *p = px_http_parser_new(0, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    *rc = px_http_parser_feed(p, s, strlen(s), used);
    return p;
}

static void test_parser_reads_a_simple_get(void)
{
    px_http_feed_t rc;
    size_t used;
    const char *s = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
    px_http_parser_t *p = parse_one(s, &rc, &used);
    CU_ASSERT_EQUAL(rc, PX_HTTP_FEED_REQUEST);
    CU_ASSERT_EQUAL(used, strlen(s));
    const px_http_request_t *r = px_http_parser_request(p);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_EQUAL(r->method, PX_HTTP_GET);
    CU_ASSERT_STRING_EQUAL(r->method_name, "GET");
    CU_ASSERT_STRING_EQUAL(r->target, "/metrics");
    CU_ASSERT_STRING_EQUAL(r->path, "/metrics");
    CU_ASSERT_STRING_EQUAL(r->query, "");
    CU_ASSERT_EQUAL(r->http_major, 1);
    CU_ASSERT_EQUAL(r->http_minor, 1);
    CU_ASSERT(r->keep_alive);
    CU_ASSERT_PTR_NULL(r->body);
    CU_ASSERT_EQUAL(r->body_len, 0);
    CU_ASSERT_FALSE(px_http_parser_in_request(p));
    px_http_parser_free(p);
}

static void test_parser_headers_are_case_insensitive_and_trimmed(void)
{
    px_http_feed_t rc;
    size_t used;
    px_http_parser_t *p = parse_one("GET / HTTP/1.1\r\nAuthorization:   Bearer abc  \r\n"
                                    "X-Empty:\r\nhost: h\r\n\r\n",
                                    &rc, &used);
    CU_ASSERT_EQUAL_FATAL(rc, PX_HTTP_FEED_REQUEST);
    const px_http_request_t *r = px_http_parser_request(p);
    CU_ASSERT_EQUAL(r->n_headers, 3);
    CU_ASSERT_STRING_EQUAL(px_http_header(r, "authorization"), "Bearer abc");
    CU_ASSERT_STRING_EQUAL(px_http_header(r, "HOST"), "h");
    CU_ASSERT_STRING_EQUAL(px_http_header(r, "x-empty"), "");
    CU_ASSERT_PTR_NULL(px_http_header(r, "Cookie"));
    px_http_parser_free(p);
}

static void test_parser_splits_path_query_and_absolute_form(void)
{
    px_http_feed_t rc;
    size_t used;
    px_http_parser_t *p = parse_one(
        "GET /api/v1/routing/explain?sql=SELECT+1&x=%41#frag HTTP/1.1\r\n\r\n", &rc, &used);
    CU_ASSERT_EQUAL_FATAL(rc, PX_HTTP_FEED_REQUEST);
    const px_http_request_t *r = px_http_parser_request(p);
    CU_ASSERT_STRING_EQUAL(r->path, "/api/v1/routing/explain");
    CU_ASSERT_STRING_EQUAL(r->query, "sql=SELECT+1&x=%41");
    px_http_parser_free(p);

    p = parse_one("GET http://admin:9930/metrics?a=1 HTTP/1.1\r\n\r\n", &rc, &used);
    CU_ASSERT_EQUAL_FATAL(rc, PX_HTTP_FEED_REQUEST);
    r = px_http_parser_request(p);
    CU_ASSERT_STRING_EQUAL(r->path, "/metrics");
    CU_ASSERT_STRING_EQUAL(r->query, "a=1");
    px_http_parser_free(p);
}

static void test_query_params_are_percent_and_plus_decoded(void)
{
    px_http_feed_t rc;
    size_t used;
    px_http_parser_t *p =
        parse_one("GET /e?sql=SELECT+%2A+FROM+t%3B&flag&bad=%zz&e= HTTP/1.1\r\n\r\n", &rc, &used);
    CU_ASSERT_EQUAL_FATAL(rc, PX_HTTP_FEED_REQUEST);
    const px_http_request_t *r = px_http_parser_request(p);
    char out[64];
    CU_ASSERT_EQUAL(px_http_query_param(r, "sql", out, sizeof(out)), 16);
    CU_ASSERT_STRING_EQUAL(out, "SELECT * FROM t;");
    CU_ASSERT_EQUAL(px_http_query_param(r, "flag", out, sizeof(out)), 0);
    CU_ASSERT_STRING_EQUAL(out, "");
    CU_ASSERT_EQUAL(px_http_query_param(r, "e", out, sizeof(out)), 0);
    CU_ASSERT_EQUAL(px_http_query_param(r, "bad", out, sizeof(out)), -1);
    CU_ASSERT_EQUAL(px_http_query_param(r, "missing", out, sizeof(out)), -1);
    CU_ASSERT_EQUAL(px_http_query_param(r, "sql", out, 5), -1); /* too long */
    px_http_parser_free(p);
}

static void test_parser_reads_content_length_body(void)
{
    px_http_feed_t rc;
    size_t used;
    px_http_parser_t *p = parse_one("POST /api/v1/cache/invalidate HTTP/1.1\r\n"
                                    "Content-Type: application/json\r\nContent-Length: 16\r\n\r\n"
                                    "{\"tags\":[\"t1\"]}\n",
                                    &rc, &used);
    CU_ASSERT_EQUAL_FATAL(rc, PX_HTTP_FEED_REQUEST);
    const px_http_request_t *r = px_http_parser_request(p);
    CU_ASSERT_EQUAL(r->method, PX_HTTP_POST);
    CU_ASSERT_EQUAL(r->body_len, 16);
    CU_ASSERT_NSTRING_EQUAL(r->body, "{\"tags\":[\"t1\"]}\n", 16);
    px_http_parser_free(p);
}

static void test_parser_reads_chunked_body(void)
{
    px_http_feed_t rc;
    size_t used;
    px_http_parser_t *p = parse_one("POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                                    "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
                                    &rc, &used);
    CU_ASSERT_EQUAL_FATAL(rc, PX_HTTP_FEED_REQUEST);
    const px_http_request_t *r = px_http_parser_request(p);
    CU_ASSERT_EQUAL(r->body_len, 11);
    CU_ASSERT_NSTRING_EQUAL(r->body, "hello world", 11);
    px_http_parser_free(p);
}

/* Three pipelined requests: the parser stops after each, in order. */
static const char pipelined[] = "GET /a HTTP/1.1\r\n\r\n"
                                "POST /b HTTP/1.1\r\nContent-Length: 3\r\n\r\nxyz"
                                "DELETE /c?q=1 HTTP/1.1\r\nConnection: close\r\n\r\n";

static int collect(px_http_parser_t *p, const char *data, size_t len, char seen[][32], int *n)
{
    size_t off = 0;
    while (off < len) {
        size_t used = 0;
        px_http_feed_t rc = px_http_parser_feed(p, data + off, len - off, &used);
        off += used;
        if (rc == PX_HTTP_FEED_ERROR)
            return -1;
        if (rc == PX_HTTP_FEED_MORE) {
            CU_ASSERT_EQUAL(off, len);
            break;
        }
        const px_http_request_t *r = px_http_parser_request(p);
        snprintf(seen[*n], 32, "%s %s %.*s %d", r->method_name, r->path, (int)r->body_len,
                 r->body ? r->body : "", r->keep_alive);
        (*n)++;
        px_http_parser_next(p);
    }
    return 0;
}

static void test_pipelined_requests_come_out_one_at_a_time_in_order(void)
{
    px_http_parser_t *p = px_http_parser_new(0, 0);
    char seen[8][32];
    int n = 0;
    CU_ASSERT_EQUAL(collect(p, pipelined, sizeof(pipelined) - 1, seen, &n), 0);
    CU_ASSERT_EQUAL_FATAL(n, 3);
    CU_ASSERT_STRING_EQUAL(seen[0], "GET /a  1");
    CU_ASSERT_STRING_EQUAL(seen[1], "POST /b xyz 1");
    CU_ASSERT_STRING_EQUAL(seen[2], "DELETE /c  0");
    px_http_parser_free(p);
}

static void test_any_split_of_the_bytes_gives_the_same_requests(void)
{
    size_t len = sizeof(pipelined) - 1;
    for (size_t cut = 1; cut < len; cut++) {
        px_http_parser_t *p = px_http_parser_new(0, 0);
        char seen[8][32];
        int n = 0;
        CU_ASSERT_EQUAL(collect(p, pipelined, cut, seen, &n), 0);
        CU_ASSERT_EQUAL(collect(p, pipelined + cut, len - cut, seen, &n), 0);
        CU_ASSERT_EQUAL(n, 3);
        if (n == 3) {
            CU_ASSERT_STRING_EQUAL(seen[1], "POST /b xyz 1");
            CU_ASSERT_STRING_EQUAL(seen[2], "DELETE /c  0");
        }
        px_http_parser_free(p);
    }
    /* and byte by byte */
    px_http_parser_t *p = px_http_parser_new(0, 0);
    char seen[8][32];
    int n = 0;
    for (size_t i = 0; i < len; i++) {
        CU_ASSERT_EQUAL(collect(p, pipelined + i, 1, seen, &n), 0);
        if (i + 1 < 19) /* the first request line and blank line are 19 bytes */
            CU_ASSERT(n == 0);
    }
    CU_ASSERT_EQUAL(n, 3);
    px_http_parser_free(p);
}

static void test_a_started_request_is_reported_in_progress(void)
{
    px_http_parser_t *p = px_http_parser_new(0, 0);
    size_t used;
    CU_ASSERT_FALSE(px_http_parser_in_request(p));
    CU_ASSERT_EQUAL(px_http_parser_feed(p, "GET /x HT", 9, &used), PX_HTTP_FEED_MORE);
    CU_ASSERT_EQUAL(used, 9);
    CU_ASSERT(px_http_parser_in_request(p));
    CU_ASSERT_EQUAL(px_http_parser_feed(p, "TP/1.1\r\n\r\n", 10, &used), PX_HTTP_FEED_REQUEST);
    CU_ASSERT_FALSE(px_http_parser_in_request(p));
    /* a request not yet released blocks further input */
    CU_ASSERT_EQUAL(px_http_parser_feed(p, "GET", 3, &used), PX_HTTP_FEED_REQUEST);
    CU_ASSERT_EQUAL(used, 0);
    px_http_parser_next(p);
    CU_ASSERT_EQUAL(px_http_parser_feed(p, "GET", 3, &used), PX_HTTP_FEED_MORE);
    CU_ASSERT_EQUAL(used, 3);
    px_http_parser_free(p);
}

static int error_status_of(const char *s, size_t max_header, size_t max_body)
{
    px_http_parser_t *p = px_http_parser_new(max_header, max_body);
    size_t used;
    px_http_feed_t rc = px_http_parser_feed(p, s, strlen(s), &used);
    int st = rc == PX_HTTP_FEED_ERROR  ? px_http_parser_error_status(p)
             : rc == PX_HTTP_FEED_MORE ? -1
                                       : 0;
    if (rc == PX_HTTP_FEED_ERROR) {
        CU_ASSERT(strlen(px_http_parser_error(p)) > 0);
        /* errors are sticky */
        CU_ASSERT_EQUAL(px_http_parser_feed(p, "GET / HTTP/1.1\r\n\r\n", 18, &used),
                        PX_HTTP_FEED_ERROR);
    }
    px_http_parser_free(p);
    return st;
}

static void test_limits_answer_413_414_431_and_malformed_400_501(void)
{
    char big[2048];
    /* headers over the limit */
    snprintf(big, sizeof(big), "GET / HTTP/1.1\r\nX-Big: %0900d\r\n\r\n", 0);
    CU_ASSERT_EQUAL(error_status_of(big, 512, 0), 431);
    /* the request target alone over the limit */
    char url[1024];
    memset(url, 'a', sizeof(url) - 1);
    url[sizeof(url) - 1] = '\0';
    snprintf(big, sizeof(big), "GET /%s HTTP/1.1\r\n\r\n", url);
    CU_ASSERT_EQUAL(error_status_of(big, 512, 0), 414);
    /* too many header lines */
    char many[8192] = "GET / HTTP/1.1\r\n";
    for (int i = 0; i <= PX_HTTP_MAX_HEADERS; i++)
        snprintf(many + strlen(many), sizeof(many) - strlen(many), "H%d: v\r\n", i);
    strcat(many, "\r\n");
    CU_ASSERT_EQUAL(error_status_of(many, 0, 0), 431);
    /* a declared body over the limit is refused before it arrives */
    CU_ASSERT_EQUAL(error_status_of("POST / HTTP/1.1\r\nContent-Length: 100000\r\n\r\n", 0, 0),
                    413);
    /* a chunked body that grows over the limit */
    CU_ASSERT_EQUAL(error_status_of("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                                    "20\r\n0123456789abcdef0123456789abcdef\r\n",
                                    0, 16),
                    413);
    CU_ASSERT_EQUAL(error_status_of("\x16\x03\x01\x02\x00garbage\r\n\r\n", 0, 0), 501);
    CU_ASSERT_EQUAL(error_status_of("GET / HTTP/1.1\r\nBad Header\r\n\r\n", 0, 0), 400);
    CU_ASSERT_EQUAL(error_status_of("GET / HTTP/9.9x\r\n\r\n", 0, 0), 400);
    CU_ASSERT_EQUAL(error_status_of("POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: "
                                    "4\r\n\r\nabc",
                                    0, 0),
                    400);
    CU_ASSERT_EQUAL(
        error_status_of("POST / HTTP/1.1\r\nExpect: magic\r\nContent-Length: 3\r\n\r\n", 0, 0),
        417);
    /* exactly at the limits is fine */
    CU_ASSERT_EQUAL(error_status_of("POST / HTTP/1.1\r\nContent-Length: 16\r\n\r\n"
                                    "0123456789abcdef",
                                    0, 16),
                    0);
}

static bool keep_alive_of(const char *s)
{
    px_http_feed_t rc;
    size_t used;
    px_http_parser_t *p = parse_one(s, &rc, &used);
    CU_ASSERT_EQUAL(rc, PX_HTTP_FEED_REQUEST);
    bool k = rc == PX_HTTP_FEED_REQUEST && px_http_parser_request(p)->keep_alive;
    px_http_parser_free(p);
    return k;
}

static void test_keep_alive_follows_version_and_connection_header(void)
{
    CU_ASSERT(keep_alive_of("GET / HTTP/1.1\r\n\r\n"));
    CU_ASSERT_FALSE(keep_alive_of("GET / HTTP/1.1\r\nConnection: close\r\n\r\n"));
    CU_ASSERT_FALSE(keep_alive_of("GET / HTTP/1.0\r\n\r\n"));
    CU_ASSERT(keep_alive_of("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
    /* we speak nothing but HTTP/1.1: an upgrade request is answered, then closed */
    CU_ASSERT_FALSE(keep_alive_of("GET / HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"));
}

static void test_expect_continue_is_signalled_once(void)
{
    px_http_parser_t *p = px_http_parser_new(0, 0);
    size_t used;
    const char *h = "POST /x HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n";
    CU_ASSERT_EQUAL(px_http_parser_feed(p, h, strlen(h), &used), PX_HTTP_FEED_MORE);
    CU_ASSERT(px_http_parser_take_continue(p));
    CU_ASSERT_FALSE(px_http_parser_take_continue(p));
    CU_ASSERT_EQUAL(px_http_parser_feed(p, "ok", 2, &used), PX_HTTP_FEED_REQUEST);
    CU_ASSERT_FALSE(px_http_parser_take_continue(p));
    px_http_parser_free(p);
}

/* ==== responses, JSON, auth, routing ========================================= */

static void test_response_head_has_status_length_type_and_connection(void)
{
    char out[1024];
    size_t n = px_http_format_head(out, sizeof(out), 404, "application/json", 23, true,
                                   "Allow: GET\r\n", 12);
    CU_ASSERT(n > 0);
    CU_ASSERT_EQUAL(n, strlen(out));
    CU_ASSERT_NSTRING_EQUAL(out, "HTTP/1.1 404 Not Found\r\nDate: ", 30);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\r\nContent-Type: application/json\r\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\r\nContent-Length: 23\r\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\r\nConnection: keep-alive\r\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\r\nAllow: GET\r\n\r\n"));
    CU_ASSERT_STRING_EQUAL(out + n - 4, "\r\n\r\n");

    n = px_http_format_head(out, sizeof(out), 204, NULL, 0, false, "", 0);
    CU_ASSERT_PTR_NULL(strstr(out, "Content-Length")); /* never on a 204 */
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "Connection: close\r\n\r\n"));
    CU_ASSERT_EQUAL(px_http_format_head(out, 40, 200, NULL, 0, true, "", 0), 0); /* too small */
    CU_ASSERT_STRING_EQUAL(px_http_status_text(431), "Request Header Fields Too Large");
    CU_ASSERT_STRING_EQUAL(px_http_status_text(413), "Content Too Large");
}

static void test_response_header_refuses_crlf_injection(void)
{
    px_http_response_t r;
    memset(&r, 0, sizeof(r));
    CU_ASSERT(px_http_response_header(&r, "Allow", "GET, HEAD"));
    CU_ASSERT_FALSE(px_http_response_header(&r, "X", "a\r\nSet-Cookie: x"));
    CU_ASSERT_FALSE(px_http_response_header(&r, "X\r\nY", "a"));
    CU_ASSERT_STRING_EQUAL(r.headers, "Allow: GET, HEAD\r\n");
    char big[600];
    memset(big, 'v', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    CU_ASSERT_FALSE(px_http_response_header(&r, "Big", big));
    CU_ASSERT_STRING_EQUAL(r.headers, "Allow: GET, HEAD\r\n");
}

static void test_json_writer_places_commas_and_escapes_strings(void)
{
    px_metrics_buf_t b;
    px_metrics_buf_init(&b, 1 << 16);
    px_json_t j;
    px_json_init(&j, &b);
    px_json_obj(&j);
    px_json_kv_str(&j, "s", "q\"b\\n\n\t\x01\x7f");
    px_json_kv_int(&j, "i", -5);
    px_json_kv_uint(&j, "u", 18446744073709551615ull);
    px_json_kv_double(&j, "d", 0.125);
    px_json_kv_double(&j, "nan", 0.0 / 0.0);
    px_json_kv_bool(&j, "t", true);
    px_json_kv_str(&j, "n", NULL);
    px_json_key(&j, "a");
    px_json_arr(&j);
    px_json_int(&j, 1);
    px_json_obj(&j);
    px_json_obj_end(&j);
    px_json_arr(&j);
    px_json_arr_end(&j);
    px_json_str(&j, "x");
    px_json_arr_end(&j);
    px_json_obj_end(&j);
    CU_ASSERT_FALSE(b.failed);
    CU_ASSERT_EQUAL(j.depth, 0);
    CU_ASSERT_STRING_EQUAL(b.p, "{\"s\":\"q\\\"b\\\\n\\n\\t\\u0001\\u007f\",\"i\":-5,"
                                "\"u\":18446744073709551615,\"d\":0.125,\"nan\":null,\"t\":true,"
                                "\"n\":null,\"a\":[1,{},[],\"x\"]}");
    px_metrics_buf_free(&b);
}

static void test_json_strings_stay_valid_for_any_bytes(void)
{
    px_metrics_buf_t b;
    px_metrics_buf_init(&b, 1 << 16);
    px_json_t j;
    px_json_init(&j, &b);
    px_json_str(&j, "caf\xc3\xa9 \xff\xfe \xe2\x82 \xf0\x9f\x98\x80");
    CU_ASSERT_STRING_EQUAL(b.p, "\"caf\xc3\xa9 \\ufffd\\ufffd \\ufffd\\ufffd \xf0\x9f\x98\x80\"");
    px_metrics_buf_reset(&b, 1 << 16);
    px_json_init(&j, &b);
    px_json_strn(&j, "a\0b", 3);
    CU_ASSERT_STRING_EQUAL(b.p, "\"a\\u0000b\"");
    px_metrics_buf_free(&b);
}

static void test_json_nesting_beyond_the_limit_fails_the_buffer(void)
{
    px_metrics_buf_t b;
    px_metrics_buf_init(&b, 1 << 16);
    px_json_t j;
    px_json_init(&j, &b);
    for (int i = 0; i < 40; i++)
        px_json_arr(&j);
    CU_ASSERT(b.failed);
    px_metrics_buf_free(&b);
}

static void test_bearer_check_needs_scheme_and_exact_token(void)
{
    CU_ASSERT(px_http_bearer_ok("Bearer s3cret", "s3cret"));
    CU_ASSERT(px_http_bearer_ok("bearer   s3cret  ", "s3cret"));
    CU_ASSERT_FALSE(px_http_bearer_ok("Bearer s3cre", "s3cret"));
    CU_ASSERT_FALSE(px_http_bearer_ok("Bearer s3cret2", "s3cret"));
    CU_ASSERT_FALSE(px_http_bearer_ok("Basic czNjcmV0", "s3cret"));
    CU_ASSERT_FALSE(px_http_bearer_ok("Bearers3cret", "s3cret"));
    CU_ASSERT_FALSE(px_http_bearer_ok("s3cret", "s3cret"));
    CU_ASSERT_FALSE(px_http_bearer_ok("Bearer ", "s3cret"));
    CU_ASSERT_FALSE(px_http_bearer_ok(NULL, "s3cret"));
    CU_ASSERT_FALSE(px_http_bearer_ok("Bearer ", ""));
    CU_ASSERT_FALSE(px_http_bearer_ok("Bearer x", NULL));
}

static int routed;

static void route_fn(const px_http_request_t *req, px_http_response_t *resp, void *arg)
{
    routed = *(int *)arg;
    resp->status = req->method == PX_HTTP_DELETE ? 202 : 200;
}

static void dispatch(const char *raw, px_http_response_t *resp)
{
    static const px_http_route_t routes[] = {
        {"/a", PX_HTTP_M(PX_HTTP_GET), route_fn},
        {"/b", PX_HTTP_M(PX_HTTP_POST), route_fn},
        {"/b", PX_HTTP_M(PX_HTTP_DELETE), route_fn},
    };
    px_http_feed_t rc;
    size_t used;
    px_http_parser_t *p = parse_one(raw, &rc, &used);
    CU_ASSERT_EQUAL_FATAL(rc, PX_HTTP_FEED_REQUEST);
    memset(resp, 0, sizeof(*resp));
    px_metrics_buf_init(&resp->body, 1 << 16);
    resp->status = 200;
    int marker = 7;
    routed = 0;
    px_http_dispatch(routes, 3, px_http_parser_request(p), resp, &marker);
    px_http_parser_free(p);
}

static void test_router_answers_404_405_options_and_calls_the_route(void)
{
    px_http_response_t r;
    dispatch("GET /a HTTP/1.1\r\n\r\n", &r);
    CU_ASSERT_EQUAL(routed, 7);
    CU_ASSERT_EQUAL(r.status, 200);
    px_metrics_buf_free(&r.body);

    dispatch("HEAD /a HTTP/1.1\r\n\r\n", &r); /* GET implies HEAD */
    CU_ASSERT_EQUAL(routed, 7);
    px_metrics_buf_free(&r.body);

    dispatch("DELETE /b HTTP/1.1\r\n\r\n", &r); /* second route on the same path */
    CU_ASSERT_EQUAL(r.status, 202);
    px_metrics_buf_free(&r.body);

    dispatch("GET /nope HTTP/1.1\r\n\r\n", &r);
    CU_ASSERT_EQUAL(routed, 0);
    CU_ASSERT_EQUAL(r.status, 404);
    CU_ASSERT_STRING_EQUAL(r.body.p, "{\"error\":\"not found\"}\n");
    px_metrics_buf_free(&r.body);

    dispatch("GET /a/ HTTP/1.1\r\n\r\n", &r); /* exact paths only */
    CU_ASSERT_EQUAL(r.status, 404);
    px_metrics_buf_free(&r.body);

    dispatch("PUT /b HTTP/1.1\r\nContent-Length: 0\r\n\r\n", &r);
    CU_ASSERT_EQUAL(routed, 0);
    CU_ASSERT_EQUAL(r.status, 405);
    CU_ASSERT_STRING_EQUAL(r.body.p, "{\"error\":\"method not allowed\"}\n");
    CU_ASSERT_STRING_EQUAL(r.headers, "Allow: POST, DELETE, OPTIONS\r\n");
    px_metrics_buf_free(&r.body);

    dispatch("OPTIONS /a HTTP/1.1\r\n\r\n", &r);
    CU_ASSERT_EQUAL(r.status, 204);
    CU_ASSERT_STRING_EQUAL(r.headers, "Allow: GET, HEAD, OPTIONS\r\n");
    px_metrics_buf_free(&r.body);
}

/* ==== the server on a real loop ================================================ */

static void echo_handler(const px_http_request_t *req, px_http_response_t *resp, void *arg)
{
    (void)arg;
    if (strcmp(req->path, "/big") == 0) {
        for (int i = 0; i < 20000; i++)
            px_metrics_buf_puts(&resp->body, "0123456789");
        return;
    }
    if (strcmp(req->path, "/close") == 0)
        resp->close = true;
    px_json_t j;
    px_json_init(&j, &resp->body);
    px_json_obj(&j);
    px_json_kv_str(&j, "method", req->method_name);
    px_json_kv_str(&j, "path", req->path);
    px_json_kv_uint(&j, "body", req->body_len);
    px_json_obj_end(&j);
}

static px_http_server_t *start_server(int max_conns, uint32_t req_timeout, uint32_t idle_timeout)
{
    px_http_server_opts_t o = {
        .host = "127.0.0.1",
        .port = 0,
        .max_conns = max_conns,
        .request_timeout_ms = req_timeout,
        .idle_timeout_ms = idle_timeout,
        .sweep_ms = 50,
        .handler = echo_handler,
        .name = "test",
    };
    int err = 0;
    px_http_server_t *srv = px_http_server_start(&o, &err);
    CU_ASSERT_PTR_NOT_NULL(srv);
    CU_ASSERT_EQUAL(err, 0);
    CU_ASSERT(px_http_server_port(srv) > 0);
    return srv;
}

static int dial(px_http_server_t *srv)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(px_http_server_port(srv))};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CU_ASSERT_EQUAL(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return fd;
}

static void send_all(int fd, const char *s, size_t n)
{
    while (n > 0) {
        ssize_t k = send(fd, s, n, MSG_NOSIGNAL);
        if (k <= 0)
            return;
        s += k;
        n -= (size_t)k;
    }
}

typedef struct reply {
    int status;
    char body[512];
    size_t body_len;
    bool closes;
    bool has_allow;
} reply_t;

/* Read exactly @p n responses (Content-Length framed, 1xx skipped); returns how
 * many were read before EOF/timeout. *@p eof says whether the peer closed
 * right after (checked only when @p want_eof). */
static int read_replies(int fd, reply_t *out, int n, bool head_only, bool want_eof, bool *eof)
{
    /* bytes past the last response stay buffered for the next call on the same fd */
    static char buf[1 << 20];
    static size_t len;
    static int last_fd = -1;
    if (fd != last_fd) {
        len = 0;
        last_fd = fd;
    }
    int got = 0;
    for (;;) {
        /* parse whatever complete responses are buffered */
        for (;;) {
            char *end = memmem(buf, len, "\r\n\r\n", 4);
            if (!end || got == n)
                break;
            size_t hlen = (size_t)(end - buf) + 4;
            int status = atoi(buf + 9);
            const char *cl = memmem(buf, hlen, "Content-Length: ", 16);
            size_t blen = cl ? strtoul(cl + 16, NULL, 10) : 0;
            if (head_only || status < 200)
                blen = 0;
            if (len < hlen + blen)
                break;
            if (status >= 200) {
                reply_t *r = &out[got++];
                memset(r, 0, sizeof(*r));
                r->status = status;
                r->closes = memmem(buf, hlen, "Connection: close", 17) != NULL;
                r->has_allow = memmem(buf, hlen, "Allow: ", 7) != NULL;
                r->body_len = blen;
                memcpy(r->body, buf + hlen,
                       blen < sizeof(r->body) - 1 ? blen : sizeof(r->body) - 1);
            }
            memmove(buf, buf + hlen + blen, len - hlen - blen);
            len -= hlen + blen;
        }
        if (got == n && !want_eof)
            return got;
        ssize_t k = recv(fd, buf + len, sizeof(buf) - len, 0);
        if (k <= 0) {
            if (eof)
                *eof = k == 0 || errno == ECONNRESET;
            return got;
        }
        len += (size_t)k;
    }
}

static void test_server_keeps_the_connection_alive_across_requests(void)
{
    px_http_server_t *srv = start_server(0, 0, 0);
    int fd = dial(srv);
    for (int i = 0; i < 3; i++) {
        const char *q = "GET /one HTTP/1.1\r\nHost: t\r\n\r\n";
        send_all(fd, q, strlen(q));
        reply_t r;
        CU_ASSERT_EQUAL(read_replies(fd, &r, 1, false, false, NULL), 1);
        CU_ASSERT_EQUAL(r.status, 200);
        CU_ASSERT_FALSE(r.closes);
        CU_ASSERT_STRING_EQUAL(r.body, "{\"method\":\"GET\",\"path\":\"/one\",\"body\":0}");
    }
    close(fd);
    CU_ASSERT_EQUAL(px_http_server_requests(srv), 3);
    px_http_server_stop(srv);
}

static void test_server_answers_pipelined_requests_in_order_then_closes(void)
{
    px_http_server_t *srv = start_server(0, 0, 0);
    int fd = dial(srv);
    send_all(fd, pipelined, sizeof(pipelined) - 1);
    reply_t r[3];
    bool eof = false;
    CU_ASSERT_EQUAL(read_replies(fd, r, 3, false, true, &eof), 3);
    CU_ASSERT_STRING_EQUAL(r[0].body, "{\"method\":\"GET\",\"path\":\"/a\",\"body\":0}");
    CU_ASSERT_STRING_EQUAL(r[1].body, "{\"method\":\"POST\",\"path\":\"/b\",\"body\":3}");
    CU_ASSERT_STRING_EQUAL(r[2].body, "{\"method\":\"DELETE\",\"path\":\"/c\",\"body\":0}");
    CU_ASSERT(r[2].closes);
    CU_ASSERT(eof); /* Connection: close is honoured */
    close(fd);
    px_http_server_stop(srv);
}

static void test_server_streams_many_large_pipelined_responses_with_backpressure(void)
{
    px_http_server_t *srv = start_server(0, 0, 0);
    int fd = dial(srv);
    /* 40 x 200 kB responses: more than the high-water mark, read only after
     * everything was sent */
    char req[40 * 24];
    size_t n = 0;
    for (int i = 0; i < 40; i++)
        n += (size_t)snprintf(req + n, sizeof(req) - n, "GET /big HTTP/1.1\r\n\r\n");
    send_all(fd, req, n);
    usleep(100 * 1000);
    int got = 0;
    for (int i = 0; i < 40; i++) {
        reply_t r;
        if (read_replies(fd, &r, 1, false, false, NULL) != 1)
            break;
        CU_ASSERT_EQUAL(r.body_len, 200000);
        got++;
    }
    CU_ASSERT_EQUAL(got, 40);
    close(fd);
    px_http_server_stop(srv);
}

static void test_server_head_sends_headers_only(void)
{
    px_http_server_t *srv = start_server(0, 0, 0);
    int fd = dial(srv);
    const char *q = "HEAD /x HTTP/1.1\r\n\r\nGET /y HTTP/1.1\r\n\r\n";
    send_all(fd, q, strlen(q));
    reply_t r[2];
    CU_ASSERT_EQUAL(read_replies(fd, r, 1, true, false, NULL), 1);
    CU_ASSERT_EQUAL(r[0].status, 200);
    /* the next bytes are the GET's response, not a HEAD body */
    CU_ASSERT_EQUAL(read_replies(fd, &r[1], 1, false, false, NULL), 1);
    CU_ASSERT_STRING_EQUAL(r[1].body, "{\"method\":\"GET\",\"path\":\"/y\",\"body\":0}");
    close(fd);
    px_http_server_stop(srv);
}

static void test_server_refuses_oversized_and_malformed_requests_and_closes(void)
{
    px_http_server_t *srv = start_server(0, 0, 0);
    static char big[20000];
    int n = snprintf(big, sizeof(big), "GET / HTTP/1.1\r\nX-Big: ");
    memset(big + n, 'b', 12000);
    strcpy(big + n + 12000, "\r\n\r\n");
    struct {
        const char *req;
        int status;
    } cases[] = {
        {big, 431},
        {"POST /x HTTP/1.1\r\nContent-Length: 999999\r\n\r\n", 413},
        {"NOT HTTP AT ALL\r\n\r\n", 501},
        {"GET / HTTP/1.1\r\nBad Header\r\n\r\n", 400},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int fd = dial(srv);
        send_all(fd, cases[i].req, strlen(cases[i].req));
        reply_t r;
        bool eof = false;
        CU_ASSERT_EQUAL(read_replies(fd, &r, 1, false, true, &eof), 1);
        CU_ASSERT_EQUAL(r.status, cases[i].status);
        if (r.status != cases[i].status)
            fprintf(stderr, "case %zu: got %d\n", i, r.status);
        CU_ASSERT(r.closes);
        CU_ASSERT(eof);
        CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "\"error\":"));
        close(fd);
    }
    px_http_server_stop(srv);
}

static void test_server_sends_100_continue_before_the_body(void)
{
    px_http_server_t *srv = start_server(0, 0, 0);
    int fd = dial(srv);
    const char *h = "POST /p HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n";
    send_all(fd, h, strlen(h));
    char buf[256];
    ssize_t k = recv(fd, buf, sizeof(buf) - 1, 0);
    CU_ASSERT(k > 0);
    buf[k > 0 ? k : 0] = '\0';
    CU_ASSERT_STRING_EQUAL(buf, "HTTP/1.1 100 Continue\r\n\r\n");
    send_all(fd, "body", 4);
    reply_t r;
    CU_ASSERT_EQUAL(read_replies(fd, &r, 1, false, false, NULL), 1);
    CU_ASSERT_STRING_EQUAL(r.body, "{\"method\":\"POST\",\"path\":\"/p\",\"body\":4}");
    close(fd);
    px_http_server_stop(srv);
}

static void test_server_caps_connections_with_a_503(void)
{
    px_http_server_t *srv = start_server(2, 0, 0);
    int a = dial(srv), b = dial(srv);
    /* make sure both were accepted before the third arrives */
    const char *q = "GET /x HTTP/1.1\r\n\r\n";
    reply_t r;
    send_all(a, q, strlen(q));
    CU_ASSERT_EQUAL(read_replies(a, &r, 1, false, false, NULL), 1);
    send_all(b, q, strlen(q));
    CU_ASSERT_EQUAL(read_replies(b, &r, 1, false, false, NULL), 1);
    int c = dial(srv);
    bool eof = false;
    CU_ASSERT_EQUAL(read_replies(c, &r, 1, false, true, &eof), 1);
    CU_ASSERT_EQUAL(r.status, 503);
    CU_ASSERT(eof);
    close(c);
    close(a);
    /* a slot frees up once the server sees the close */
    usleep(200 * 1000);
    c = dial(srv);
    send_all(c, q, strlen(q));
    CU_ASSERT_EQUAL(read_replies(c, &r, 1, false, false, NULL), 1);
    CU_ASSERT_EQUAL(r.status, 200);
    close(c);
    close(b);
    px_http_server_stop(srv);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_server_times_out_slow_requests_with_408_and_idle_connections(void)
{
    px_http_server_t *srv = start_server(0, 300, 400);
    /* slow loris: a request that never completes */
    int fd = dial(srv);
    send_all(fd, "GET /slow HTTP/1.1\r\nX-A: 1\r\n", 28);
    double t0 = now_s();
    reply_t r;
    bool eof = false;
    CU_ASSERT_EQUAL(read_replies(fd, &r, 1, false, true, &eof), 1);
    double took = now_s() - t0;
    CU_ASSERT_EQUAL(r.status, 408);
    CU_ASSERT(eof);
    CU_ASSERT(took >= 0.25 && took < 2.0);
    close(fd);

    /* an idle keep-alive connection is closed after the idle timeout */
    fd = dial(srv);
    const char *q = "GET /x HTTP/1.1\r\n\r\n";
    send_all(fd, q, strlen(q));
    CU_ASSERT_EQUAL(read_replies(fd, &r, 1, false, false, NULL), 1);
    t0 = now_s();
    char c;
    ssize_t k = recv(fd, &c, 1, 0);
    took = now_s() - t0;
    CU_ASSERT_EQUAL(k, 0);
    CU_ASSERT(took >= 0.3 && took < 2.0);
    close(fd);
    px_http_server_stop(srv);
}

static void test_server_answers_what_arrived_before_the_client_half_closed(void)
{
    px_http_server_t *srv = start_server(0, 0, 0);
    int fd = dial(srv);
    const char *q = "GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\nGET /3 HTTP/1.1\r\n";
    send_all(fd, q, strlen(q));
    shutdown(fd, SHUT_WR);
    reply_t r[3];
    bool eof = false;
    CU_ASSERT_EQUAL(read_replies(fd, r, 3, false, true, &eof), 2); /* the third is partial */
    CU_ASSERT(eof);
    CU_ASSERT_STRING_EQUAL(r[1].body, "{\"method\":\"GET\",\"path\":\"/2\",\"body\":0}");
    close(fd);
    px_http_server_stop(srv);
}

static void test_server_stops_with_connections_open(void)
{
    px_http_server_t *srv = start_server(0, 0, 0);
    int a = dial(srv), b = dial(srv);
    send_all(b, "GET /half", 9);
    usleep(50 * 1000);
    px_http_server_stop(srv);
    char c;
    CU_ASSERT(recv(a, &c, 1, 0) <= 0);
    close(a);
    close(b);
}

static void test_server_start_reports_a_port_in_use(void)
{
    px_http_server_t *srv = start_server(0, 0, 0);
    px_http_server_opts_t o = {
        .host = "127.0.0.1",
        .port = px_http_server_port(srv),
        .handler = echo_handler,
    };
    int err = 0;
    px_http_server_t *second = px_http_server_start(&o, &err);
    CU_ASSERT_PTR_NULL(second);
    CU_ASSERT_EQUAL(err, -EADDRINUSE);
    o.host = "not an address..";
    o.port = 0;
    second = px_http_server_start(&o, &err);
    CU_ASSERT_PTR_NULL(second);
    CU_ASSERT(err < 0);
    px_http_server_stop(srv);
    px_http_server_stop(NULL);
}

int main(void)
{
    static const struct {
        const char *name;
        CU_TestFunc fn;
    } tests[] = {
#define T(fn) {#fn, fn}
        T(test_parser_reads_a_simple_get),
        T(test_parser_headers_are_case_insensitive_and_trimmed),
        T(test_parser_splits_path_query_and_absolute_form),
        T(test_query_params_are_percent_and_plus_decoded),
        T(test_parser_reads_content_length_body),
        T(test_parser_reads_chunked_body),
        T(test_pipelined_requests_come_out_one_at_a_time_in_order),
        T(test_any_split_of_the_bytes_gives_the_same_requests),
        T(test_a_started_request_is_reported_in_progress),
        T(test_limits_answer_413_414_431_and_malformed_400_501),
        T(test_keep_alive_follows_version_and_connection_header),
        T(test_expect_continue_is_signalled_once),
        T(test_response_head_has_status_length_type_and_connection),
        T(test_response_header_refuses_crlf_injection),
        T(test_json_writer_places_commas_and_escapes_strings),
        T(test_json_strings_stay_valid_for_any_bytes),
        T(test_json_nesting_beyond_the_limit_fails_the_buffer),
        T(test_bearer_check_needs_scheme_and_exact_token),
        T(test_router_answers_404_405_options_and_calls_the_route),
        T(test_server_keeps_the_connection_alive_across_requests),
        T(test_server_answers_pipelined_requests_in_order_then_closes),
        T(test_server_streams_many_large_pipelined_responses_with_backpressure),
        T(test_server_head_sends_headers_only),
        T(test_server_refuses_oversized_and_malformed_requests_and_closes),
        T(test_server_sends_100_continue_before_the_body),
        T(test_server_caps_connections_with_a_503),
        T(test_server_times_out_slow_requests_with_408_and_idle_connections),
        T(test_server_answers_what_arrived_before_the_client_half_closed),
        T(test_server_stops_with_connections_open),
        T(test_server_start_reports_a_port_in_use),
#undef T
    };
    CU_pSuite suite;
    unsigned failed;

    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    suite = CU_add_suite("admin_http", NULL, NULL);
    if (suite == NULL)
        return 2;
    for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++)
        if (CU_add_test(suite, tests[i].name, tests[i].fn) == NULL)
            return 2;
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    failed = CU_get_number_of_tests_failed() + CU_get_number_of_failures();
    CU_cleanup_registry();
    return failed == 0 ? 0 : 1;
}
