/*
 * Unit tests for proxy/codec.c: framing, startup packets, body parsers and
 * builders, fed with message bytes built by hand here (a tiny local encoder
 * that shares no code with the codec), so a bug in the codec's builders
 * cannot hide a matching bug in its readers.
 */
#include "px_codec.h"

#include <CUnit/Basic.h>
#include <stdio.h>
#include <string.h>

/* ---- a hand encoder, independent of the codec --------------------------- */

typedef struct tb {
    uint8_t b[16384];
    size_t n;
    size_t start; /* offset of the length field of the open message */
} tb_t;

static void tb_reset(tb_t *t)
{
    t->n = 0;
    t->start = 0;
}

static void tb_u8(tb_t *t, unsigned v)
{
    t->b[t->n++] = (uint8_t)v;
}

static void tb_i16(tb_t *t, int v)
{
    tb_u8(t, ((unsigned)v >> 8) & 0xff);
    tb_u8(t, (unsigned)v & 0xff);
}

static void tb_u32(tb_t *t, uint32_t v)
{
    tb_u8(t, v >> 24);
    tb_u8(t, (v >> 16) & 0xff);
    tb_u8(t, (v >> 8) & 0xff);
    tb_u8(t, v & 0xff);
}

static void tb_i32(tb_t *t, int32_t v)
{
    tb_u32(t, (uint32_t)v);
}

static void tb_raw(tb_t *t, const void *p, size_t n)
{
    memcpy(t->b + t->n, p, n);
    t->n += n;
}

static void tb_str(tb_t *t, const char *s)
{
    tb_raw(t, s, strlen(s) + 1);
}

/* type 0: an untyped startup-phase packet */
static void tb_begin(tb_t *t, uint8_t type)
{
    if (type != 0)
        tb_u8(t, type);
    t->start = t->n;
    tb_u32(t, 0);
}

static void tb_end(tb_t *t)
{
    uint32_t len = (uint32_t)(t->n - t->start);
    t->b[t->start] = (uint8_t)(len >> 24);
    t->b[t->start + 1] = (uint8_t)(len >> 16);
    t->b[t->start + 2] = (uint8_t)(len >> 8);
    t->b[t->start + 3] = (uint8_t)len;
}

static bool span_is(px_span_t s, const char *lit)
{
    size_t l = strlen(lit);
    return s.n == l && (l == 0 || memcmp(s.p, lit, l) == 0);
}

static bool span_inside(px_span_t s, const uint8_t *p, size_t n)
{
    return s.n == 0 || (s.p >= p && s.p + s.n <= p + n);
}

#define MAXB (1u << 20)

/* Read the single message in t; assert it is whole and of the given type. */
static px_span_t read_one(const tb_t *t, uint8_t type)
{
    px_msg_hdr_t h;
    px_span_t body = {NULL, 0};
    size_t used = 0;
    px_codec_status_t st = px_codec_read_msg(t->b, t->n, MAXB, &h, &body, &used);
    CU_ASSERT_EQUAL_FATAL(st, PX_CODEC_OK);
    CU_ASSERT_EQUAL(h.type, type);
    CU_ASSERT_EQUAL(used, t->n);
    CU_ASSERT_EQUAL(h.body_len, t->n - 5);
    CU_ASSERT_PTR_EQUAL(body.p, t->b + 5);
    CU_ASSERT_EQUAL(body.n, t->n - 5);
    return body;
}

static px_span_t span_of(const void *p, size_t n)
{
    px_span_t s = {(const uint8_t *)p, n};
    return s;
}

/* ======================= framing ========================================= */

static void test_header_needs_five_bytes(void)
{
    const uint8_t b[5] = {'Q', 0, 0, 0, 9};
    px_msg_hdr_t h;
    for (size_t n = 0; n < 5; n++)
        CU_ASSERT_EQUAL(px_codec_peek_header(b, n, MAXB, &h), PX_CODEC_NEED_MORE);
    CU_ASSERT_EQUAL(px_codec_peek_header(b, 5, MAXB, &h), PX_CODEC_OK);
    CU_ASSERT_EQUAL(h.type, 'Q');
    CU_ASSERT_EQUAL(h.body_len, 5);
}

static void test_header_length_four_is_empty_body(void)
{
    const uint8_t b[5] = {'S', 0, 0, 0, 4};
    px_msg_hdr_t h;
    px_span_t body;
    size_t used = 99;
    CU_ASSERT_EQUAL(px_codec_read_msg(b, 5, MAXB, &h, &body, &used), PX_CODEC_OK);
    CU_ASSERT_EQUAL(h.body_len, 0);
    CU_ASSERT_EQUAL(body.n, 0);
    CU_ASSERT_EQUAL(used, 5);
}

static void test_absurd_length_rejected_before_body(void)
{
    /* only the 5 header bytes are present: the verdict must not wait for a body */
    const uint32_t lens[] = {0x7fffffffu, 0x80000000u, 0xffffffffu, 0xfffffffcu, 3, 2, 1, 0};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        uint8_t b[5] = {'Q', (uint8_t)(lens[i] >> 24), (uint8_t)(lens[i] >> 16),
                        (uint8_t)(lens[i] >> 8), (uint8_t)lens[i]};
        px_msg_hdr_t h;
        px_span_t body;
        size_t used = 0;
        CU_ASSERT_EQUAL(px_codec_peek_header(b, 5, MAXB, &h), PX_CODEC_ERROR);
        CU_ASSERT_EQUAL(px_codec_read_msg(b, 5, MAXB, &h, &body, &used), PX_CODEC_ERROR);
    }
}

static void test_negative_length_rejected_even_with_unlimited_cap(void)
{
    const uint8_t b[5] = {'D', 0xff, 0xff, 0xff, 0xff};
    const uint8_t c[5] = {'D', 0x80, 0x00, 0x00, 0x04};
    px_msg_hdr_t h;
    CU_ASSERT_EQUAL(px_codec_peek_header(b, 5, UINT32_MAX, &h), PX_CODEC_ERROR);
    CU_ASSERT_EQUAL(px_codec_peek_header(c, 5, UINT32_MAX, &h), PX_CODEC_ERROR);
}

static void test_body_at_cap_ok_one_over_cap_error(void)
{
    const uint8_t at[5] = {'d', 0, 0, 0x01, 0x04};   /* body 256 */
    const uint8_t over[5] = {'d', 0, 0, 0x01, 0x05}; /* body 257 */
    px_msg_hdr_t h;
    CU_ASSERT_EQUAL(px_codec_peek_header(at, 5, 256, &h), PX_CODEC_OK);
    CU_ASSERT_EQUAL(h.body_len, 256);
    CU_ASSERT_EQUAL(px_codec_peek_header(over, 5, 256, &h), PX_CODEC_ERROR);
    const uint8_t empty_only[5] = {'H', 0, 0, 0, 4};
    CU_ASSERT_EQUAL(px_codec_peek_header(empty_only, 5, 0, &h), PX_CODEC_OK);
    CU_ASSERT_EQUAL(px_codec_peek_header(at, 5, 0, &h), PX_CODEC_ERROR);
}

static void test_truncated_body_needs_more(void)
{
    tb_t t;
    tb_reset(&t);
    tb_begin(&t, 'Q');
    tb_str(&t, "SELECT 1");
    tb_end(&t);
    px_msg_hdr_t h;
    px_span_t body;
    size_t used = 0;
    CU_ASSERT_EQUAL(px_codec_read_msg(t.b, t.n - 1, MAXB, &h, &body, &used), PX_CODEC_NEED_MORE);
    CU_ASSERT_EQUAL(px_codec_read_msg(t.b, 5, MAXB, &h, &body, &used), PX_CODEC_NEED_MORE);
    CU_ASSERT_EQUAL(px_codec_peek_header(t.b, 5, MAXB, &h), PX_CODEC_OK);
    CU_ASSERT_EQUAL(h.body_len, 9);
}

static void test_split_message_needs_more_at_every_byte_boundary(void)
{
    tb_t t;
    tb_reset(&t);
    tb_begin(&t, 'P');
    tb_str(&t, "stmt");
    tb_str(&t, "SELECT $1::int, $2::text");
    tb_i16(&t, 2);
    tb_i32(&t, 23);
    tb_i32(&t, 25);
    tb_end(&t);
    for (size_t k = 0; k < t.n; k++) {
        px_msg_hdr_t h;
        px_span_t body;
        size_t used = 0;
        CU_ASSERT_EQUAL(px_codec_read_msg(t.b, k, MAXB, &h, &body, &used), PX_CODEC_NEED_MORE);
    }
    px_span_t body = read_one(&t, 'P');
    px_span_t stmt, sql;
    int np = -1;
    CU_ASSERT_TRUE(px_codec_parse_parse(body, &stmt, &sql, &np));
    CU_ASSERT_EQUAL(np, 2);
}

/* Deliver a stream in chunks of every size 1..9 into an accumulator, as a
 * socket would, and check the same messages come out in order. */
static void test_stream_fed_in_chunks_yields_same_messages(void)
{
    tb_t t;
    tb_reset(&t);
    tb_begin(&t, 'Q');
    tb_str(&t, "BEGIN; SELECT 1; COMMIT");
    tb_end(&t);
    tb_begin(&t, 'H');
    tb_end(&t);
    tb_begin(&t, 'd');
    tb_raw(&t, "1\t2\n", 4);
    tb_end(&t);
    tb_begin(&t, 'X');
    tb_end(&t);
    const uint8_t want[] = {'Q', 'H', 'd', 'X'};
    for (size_t chunk = 1; chunk <= 9; chunk++) {
        uint8_t acc[256];
        size_t have = 0, fed = 0, got = 0;
        while (fed < t.n || have > 0) {
            size_t step = t.n - fed < chunk ? t.n - fed : chunk;
            memcpy(acc + have, t.b + fed, step);
            have += step;
            fed += step;
            for (;;) {
                px_msg_hdr_t h;
                px_span_t body;
                size_t used = 0;
                px_codec_status_t st = px_codec_read_msg(acc, have, MAXB, &h, &body, &used);
                CU_ASSERT_NOT_EQUAL_FATAL(st, PX_CODEC_ERROR);
                if (st == PX_CODEC_NEED_MORE)
                    break;
                CU_ASSERT_TRUE_FATAL(got < sizeof want);
                CU_ASSERT_EQUAL(h.type, want[got]);
                got++;
                memmove(acc, acc + used, have - used);
                have -= used;
            }
            if (fed == t.n && have > 0) {
                CU_FAIL("leftover bytes at end of stream");
                break;
            }
        }
        CU_ASSERT_EQUAL(got, sizeof want);
    }
}

static void test_many_backend_messages_consumed_in_sequence(void)
{
    tb_t t;
    tb_reset(&t);
    /* RowDescription with one int4 column */
    tb_begin(&t, 'T');
    tb_i16(&t, 1);
    tb_str(&t, "n");
    tb_i32(&t, 0);
    tb_i16(&t, 0);
    tb_i32(&t, 23);
    tb_i16(&t, 4);
    tb_i32(&t, -1);
    tb_i16(&t, 0);
    tb_end(&t);
    for (int i = 0; i < 3; i++) {
        tb_begin(&t, 'D');
        tb_i16(&t, 1);
        tb_i32(&t, 1);
        tb_u8(&t, (unsigned)('1' + i));
        tb_end(&t);
    }
    tb_begin(&t, 'C');
    tb_str(&t, "SELECT 3");
    tb_end(&t);
    tb_begin(&t, 'Z');
    tb_u8(&t, 'I');
    tb_end(&t);

    const uint8_t want[] = {'T', 'D', 'D', 'D', 'C', 'Z'};
    size_t off = 0, i = 0;
    while (off < t.n) {
        px_msg_hdr_t h;
        px_span_t body;
        size_t used = 0;
        CU_ASSERT_EQUAL_FATAL(px_codec_read_msg(t.b + off, t.n - off, MAXB, &h, &body, &used),
                              PX_CODEC_OK);
        CU_ASSERT_TRUE_FATAL(i < sizeof want);
        CU_ASSERT_EQUAL(h.type, want[i]);
        CU_ASSERT_TRUE(used <= t.n - off);
        if (h.type == 'C') {
            px_span_t tag;
            CU_ASSERT_TRUE(px_codec_parse_command_complete(body, &tag));
            CU_ASSERT_TRUE(span_is(tag, "SELECT 3"));
        }
        off += used;
        i++;
    }
    CU_ASSERT_EQUAL(i, sizeof want);
    CU_ASSERT_EQUAL(off, t.n);
}

static void test_garbage_after_good_message_errors_only_there(void)
{
    tb_t t;
    tb_reset(&t);
    tb_begin(&t, 'S');
    tb_end(&t);
    const uint8_t junk[] = {'G', 'E', 'T', ' ', '/'}; /* "GET /" as a length: huge */
    tb_raw(&t, junk, sizeof junk);
    px_msg_hdr_t h;
    px_span_t body;
    size_t used = 0;
    CU_ASSERT_EQUAL(px_codec_read_msg(t.b, t.n, MAXB, &h, &body, &used), PX_CODEC_OK);
    CU_ASSERT_EQUAL(used, 5);
    CU_ASSERT_EQUAL(px_codec_read_msg(t.b + used, t.n - used, MAXB, &h, &body, &used),
                    PX_CODEC_ERROR);
}

/* ======================= readers ========================================= */

static void test_reader_decodes_big_endian_and_sign(void)
{
    const uint8_t b[] = {0xfe, 0xff, 0xfe, 0xff, 0xff, 0xff, 0x00, 0x01, 0x02, 0x03, 0x41, 0};
    px_reader_t r = px_reader_make(span_of(b, sizeof b));
    CU_ASSERT_EQUAL(px_reader_byte(&r), 0xfe);
    CU_ASSERT_EQUAL(px_reader_byte(&r), 0xff);
    CU_ASSERT_EQUAL(px_reader_int16(&r), -257);
    CU_ASSERT_EQUAL(px_reader_int16(&r), -1);
    CU_ASSERT_EQUAL(px_reader_int32(&r), 0x00010203);
    px_span_t s = px_reader_cstr(&r);
    CU_ASSERT_TRUE(span_is(s, "A"));
    CU_ASSERT_TRUE(px_reader_done(&r));
}

static void test_reader_failure_is_sticky(void)
{
    const uint8_t b[] = {1, 2, 3};
    px_reader_t r = px_reader_make(span_of(b, sizeof b));
    CU_ASSERT_EQUAL(px_reader_int32(&r), 0);
    CU_ASSERT_TRUE(r.failed);
    /* bytes are there, but the cursor has failed: still nothing */
    CU_ASSERT_EQUAL(px_reader_byte(&r), 0);
    CU_ASSERT_EQUAL(px_reader_int16(&r), 0);
    CU_ASSERT_EQUAL(px_reader_cstr(&r).n, 0);
    CU_ASSERT_EQUAL(px_reader_bytes(&r, 1).n, 0);
    CU_ASSERT_FALSE(px_reader_done(&r));
    CU_ASSERT_EQUAL(r.off, 0);
}

static void test_reader_cstr_without_nul_fails(void)
{
    const uint8_t b[] = {'a', 'b', 'c'};
    px_reader_t r = px_reader_make(span_of(b, sizeof b));
    px_span_t s = px_reader_cstr(&r);
    CU_ASSERT_EQUAL(s.n, 0);
    CU_ASSERT_PTR_NOT_NULL(s.p);
    CU_ASSERT_TRUE(r.failed);
    px_reader_t e = px_reader_make(span_of(b, 0));
    (void)px_reader_cstr(&e);
    CU_ASSERT_TRUE(e.failed);
}

static void test_reader_bytes_past_end_fails(void)
{
    const uint8_t b[] = {1, 2, 3, 4};
    px_reader_t r = px_reader_make(span_of(b, sizeof b));
    px_span_t s = px_reader_bytes(&r, 3);
    CU_ASSERT_EQUAL(s.n, 3);
    CU_ASSERT_PTR_EQUAL(s.p, b);
    CU_ASSERT_FALSE(px_reader_done(&r));
    (void)px_reader_bytes(&r, 2);
    CU_ASSERT_TRUE(r.failed);
    px_reader_t r2 = px_reader_make(span_of(b, sizeof b));
    (void)px_reader_bytes(&r2, SIZE_MAX);
    CU_ASSERT_TRUE(r2.failed);
}

/* ======================= frontend messages =============================== */

static void test_query_body_is_sql_and_one_nul(void)
{
    tb_t t;
    tb_reset(&t);
    tb_begin(&t, 'Q');
    tb_str(&t, "SELECT 1; SELECT 2");
    tb_end(&t);
    px_span_t body = read_one(&t, 'Q');
    px_span_t sql;
    CU_ASSERT_TRUE(px_codec_parse_query(body, &sql));
    CU_ASSERT_TRUE(span_is(sql, "SELECT 1; SELECT 2"));
    CU_ASSERT_STRING_EQUAL(px_codec_frontend_name('Q'), "Query");

    const uint8_t empty[] = {0};
    CU_ASSERT_TRUE(px_codec_parse_query(span_of(empty, 1), &sql));
    CU_ASSERT_EQUAL(sql.n, 0);
}

static void test_query_rejects_missing_nul_trailing_and_embedded_nul(void)
{
    px_span_t sql;
    CU_ASSERT_FALSE(px_codec_parse_query(span_of("SELECT 1", 8), &sql));
    CU_ASSERT_FALSE(px_codec_parse_query(span_of("SELECT 1\0\0", 10), &sql));
    CU_ASSERT_FALSE(px_codec_parse_query(span_of("SEL\0ECT 1\0", 10), &sql));
    CU_ASSERT_FALSE(px_codec_parse_query(span_of("", 0), &sql));
}

static void test_parse_reads_name_sql_and_param_types(void)
{
    tb_t t;
    tb_reset(&t);
    tb_begin(&t, 'P');
    tb_str(&t, "s1");
    tb_str(&t, "SELECT $1");
    tb_i16(&t, 1);
    tb_i32(&t, 23);
    tb_end(&t);
    px_span_t body = read_one(&t, 'P');
    px_span_t stmt, sql;
    int np = -1;
    CU_ASSERT_TRUE(px_codec_parse_parse(body, &stmt, &sql, &np));
    CU_ASSERT_TRUE(span_is(stmt, "s1"));
    CU_ASSERT_TRUE(span_is(sql, "SELECT $1"));
    CU_ASSERT_EQUAL(np, 1);
    CU_ASSERT_STRING_EQUAL(px_codec_frontend_name('P'), "Parse");

    tb_reset(&t);
    tb_begin(&t, 'P');
    tb_str(&t, "");
    tb_str(&t, "SELECT 1");
    tb_i16(&t, 0);
    tb_end(&t);
    body = read_one(&t, 'P');
    CU_ASSERT_TRUE(px_codec_parse_parse(body, &stmt, &sql, &np));
    CU_ASSERT_EQUAL(stmt.n, 0);
    CU_ASSERT_EQUAL(np, 0);
}

static void test_parse_rejects_bad_param_count(void)
{
    px_span_t stmt, sql;
    int np;
    tb_t t;
    /* says 2 types, carries 1 */
    tb_reset(&t);
    tb_str(&t, "s");
    tb_str(&t, "SELECT $1, $2");
    tb_i16(&t, 2);
    tb_i32(&t, 23);
    CU_ASSERT_FALSE(px_codec_parse_parse(span_of(t.b, t.n), &stmt, &sql, &np));
    /* negative count */
    tb_reset(&t);
    tb_str(&t, "s");
    tb_str(&t, "SELECT 1");
    tb_i16(&t, -1);
    CU_ASSERT_FALSE(px_codec_parse_parse(span_of(t.b, t.n), &stmt, &sql, &np));
    /* missing count */
    tb_reset(&t);
    tb_str(&t, "s");
    tb_str(&t, "SELECT 1");
    CU_ASSERT_FALSE(px_codec_parse_parse(span_of(t.b, t.n), &stmt, &sql, &np));
    /* trailing byte */
    tb_reset(&t);
    tb_str(&t, "s");
    tb_str(&t, "SELECT 1");
    tb_i16(&t, 0);
    tb_u8(&t, 0);
    CU_ASSERT_FALSE(px_codec_parse_parse(span_of(t.b, t.n), &stmt, &sql, &np));
}

static void test_bind_reads_portal_and_statement_names(void)
{
    tb_t t;
    tb_reset(&t);
    tb_begin(&t, 'B');
    tb_str(&t, "p1");
    tb_str(&t, "s1");
    tb_i16(&t, 1); /* formats */
    tb_i16(&t, 0);
    tb_i16(&t, 1); /* params */
    tb_i32(&t, 2);
    tb_raw(&t, "42", 2);
    tb_i16(&t, 0); /* result formats */
    tb_end(&t);
    px_span_t body = read_one(&t, 'B');
    px_span_t portal, stmt;
    CU_ASSERT_TRUE(px_codec_parse_bind_names(body, &portal, &stmt));
    CU_ASSERT_TRUE(span_is(portal, "p1"));
    CU_ASSERT_TRUE(span_is(stmt, "s1"));
    CU_ASSERT_STRING_EQUAL(px_codec_frontend_name('B'), "Bind");

    /* the rest is not validated: junk after the names is fine */
    CU_ASSERT_TRUE(px_codec_parse_bind_names(span_of("\0s\0\xff", 4), &portal, &stmt));
    CU_ASSERT_EQUAL(portal.n, 0);
    CU_ASSERT_TRUE(span_is(stmt, "s"));
    /* but both names must be there */
    CU_ASSERT_FALSE(px_codec_parse_bind_names(span_of("p1\0s1", 5), &portal, &stmt));
    CU_ASSERT_FALSE(px_codec_parse_bind_names(span_of("p1\0", 3), &portal, &stmt));
}

static void test_describe_and_close_take_s_or_p_and_a_name(void)
{
    tb_t t;
    uint8_t kind = 0;
    px_span_t name;
    tb_reset(&t);
    tb_begin(&t, 'D');
    tb_u8(&t, 'S');
    tb_str(&t, "s1");
    tb_end(&t);
    CU_ASSERT_TRUE(px_codec_parse_target(read_one(&t, 'D'), &kind, &name));
    CU_ASSERT_EQUAL(kind, 'S');
    CU_ASSERT_TRUE(span_is(name, "s1"));
    CU_ASSERT_STRING_EQUAL(px_codec_frontend_name('D'), "Describe");

    tb_reset(&t);
    tb_begin(&t, 'C');
    tb_u8(&t, 'P');
    tb_str(&t, "");
    tb_end(&t);
    CU_ASSERT_TRUE(px_codec_parse_target(read_one(&t, 'C'), &kind, &name));
    CU_ASSERT_EQUAL(kind, 'P');
    CU_ASSERT_EQUAL(name.n, 0);
    CU_ASSERT_STRING_EQUAL(px_codec_frontend_name('C'), "Close");

    CU_ASSERT_FALSE(px_codec_parse_target(span_of("Xs1\0", 4), &kind, &name));
    CU_ASSERT_FALSE(px_codec_parse_target(span_of("Ss1", 3), &kind, &name));
    CU_ASSERT_FALSE(px_codec_parse_target(span_of("Ss1\0\0", 5), &kind, &name));
    CU_ASSERT_FALSE(px_codec_parse_target(span_of("", 0), &kind, &name));
}

static void test_execute_reads_portal_and_row_limit(void)
{
    tb_t t;
    tb_reset(&t);
    tb_begin(&t, 'E');
    tb_str(&t, "p1");
    tb_i32(&t, 100);
    tb_end(&t);
    px_span_t portal;
    int32_t rows = -5;
    CU_ASSERT_TRUE(px_codec_parse_execute(read_one(&t, 'E'), &portal, &rows));
    CU_ASSERT_TRUE(span_is(portal, "p1"));
    CU_ASSERT_EQUAL(rows, 100);
    CU_ASSERT_STRING_EQUAL(px_codec_frontend_name('E'), "Execute");
    CU_ASSERT_FALSE(px_codec_parse_execute(span_of("p1\0\0\0", 5), &portal, &rows));
    CU_ASSERT_FALSE(px_codec_parse_execute(span_of("p1\0\0\0\0\0\0", 8), &portal, &rows));
}

static void test_sync_flush_terminate_copydone_have_empty_bodies(void)
{
    const struct {
        uint8_t type;
        const char *name;
    } cases[] = {{'S', "Sync"}, {'H', "Flush"}, {'X', "Terminate"}, {'c', "CopyDone"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tb_t t;
        tb_reset(&t);
        tb_begin(&t, cases[i].type);
        tb_end(&t);
        CU_ASSERT_EQUAL(t.n, 5);
        px_span_t body = read_one(&t, cases[i].type);
        CU_ASSERT_EQUAL(body.n, 0);
        CU_ASSERT_STRING_EQUAL(px_codec_frontend_name(cases[i].type), cases[i].name);
    }
}

static void test_copy_data_and_copy_fail_bodies(void)
{
    tb_t t;
    tb_reset(&t);
    tb_begin(&t, 'd');
    tb_raw(&t, "1\tfoo\n2\tbar\n", 12);
    tb_end(&t);
    px_span_t body = read_one(&t, 'd');
    CU_ASSERT_EQUAL(body.n, 12);
    CU_ASSERT_STRING_EQUAL(px_codec_frontend_name('d'), "CopyData");
    CU_ASSERT_STRING_EQUAL(px_codec_backend_name('d'), "CopyData");

    tb_reset(&t);
    tb_begin(&t, 'f');
    tb_str(&t, "client gave up");
    tb_end(&t);
    body = read_one(&t, 'f');
    px_reader_t r = px_reader_make(body);
    CU_ASSERT_TRUE(span_is(px_reader_cstr(&r), "client gave up"));
    CU_ASSERT_TRUE(px_reader_done(&r));
    CU_ASSERT_STRING_EQUAL(px_codec_frontend_name('f'), "CopyFail");
}

static void test_function_call_body_walks_to_the_end(void)
{
    tb_t t;
    tb_reset(&t);
    tb_begin(&t, 'F');
    tb_i32(&t, 1598); /* function oid */
    tb_i16(&t, 1);    /* arg format codes */
    tb_i16(&t, 1);
    tb_i16(&t, 2); /* args */
    tb_i32(&t, 4);
    tb_i32(&t, 7);
    tb_i32(&t, -1); /* NULL */
    tb_i16(&t, 1);  /* result format */
    tb_end(&t);
    px_span_t body = read_one(&t, 'F');
    px_reader_t r = px_reader_make(body);
    CU_ASSERT_EQUAL(px_reader_int32(&r), 1598);
    int nf = px_reader_int16(&r);
    for (int i = 0; i < nf; i++)
        (void)px_reader_int16(&r);
    int na = px_reader_int16(&r);
    CU_ASSERT_EQUAL(na, 2);
    for (int i = 0; i < na; i++) {
        int32_t l = px_reader_int32(&r);
        if (l > 0)
            (void)px_reader_bytes(&r, (size_t)l);
    }
    CU_ASSERT_EQUAL(px_reader_int16(&r), 1);
    CU_ASSERT_TRUE(px_reader_done(&r));
    CU_ASSERT_STRING_EQUAL(px_codec_frontend_name('F'), "FunctionCall");
}

static void test_password_message_is_one_cstr(void)
{
    tb_t t;
    tb_reset(&t);
    tb_begin(&t, 'p');
    tb_str(&t, "md5a3556571e93b0d20722ba62be61e8c2d");
    tb_end(&t);
    px_span_t pw;
    CU_ASSERT_TRUE(px_codec_parse_password(read_one(&t, 'p'), &pw));
    CU_ASSERT_TRUE(span_is(pw, "md5a3556571e93b0d20722ba62be61e8c2d"));
    CU_ASSERT_STRING_EQUAL(px_codec_frontend_name('p'), "PasswordMessage");
    CU_ASSERT_FALSE(px_codec_parse_password(span_of("se\0cret\0", 8), &pw));
    CU_ASSERT_TRUE(px_codec_parse_password(span_of("\0", 1), &pw));
    CU_ASSERT_EQUAL(pw.n, 0);
}

static void test_sasl_response_data_is_whole_body(void)
{
    const char *fin = "c=biws,r=abcdef,p=Zm9vYmFy";
    tb_t t;
    tb_reset(&t);
    tb_begin(&t, 'p');
    tb_raw(&t, fin, strlen(fin));
    tb_end(&t);
    px_span_t data;
    CU_ASSERT_TRUE(px_codec_parse_password(read_one(&t, 'p'), &data));
    CU_ASSERT_TRUE(span_is(data, fin));
}

static void test_sasl_initial_response_reads_mechanism_and_data(void)
{
    const char *first = "n,,n=,r=rOprNGfwEbeRWgbNEkqO";
    tb_t t;
    tb_reset(&t);
    tb_begin(&t, 'p');
    tb_str(&t, "SCRAM-SHA-256");
    tb_i32(&t, (int32_t)strlen(first));
    tb_raw(&t, first, strlen(first));
    tb_end(&t);
    px_span_t mech, data;
    CU_ASSERT_TRUE(px_codec_parse_sasl_initial(read_one(&t, 'p'), &mech, &data));
    CU_ASSERT_TRUE(span_is(mech, "SCRAM-SHA-256"));
    CU_ASSERT_TRUE(span_is(data, first));
}

static void test_sasl_initial_minus_one_means_no_data(void)
{
    tb_t t;
    px_span_t mech, data;
    tb_reset(&t);
    tb_str(&t, "SCRAM-SHA-256");
    tb_i32(&t, -1);
    CU_ASSERT_TRUE(px_codec_parse_sasl_initial(span_of(t.b, t.n), &mech, &data));
    CU_ASSERT_EQUAL(data.n, 0);
    /* -1 with bytes after it */
    tb_u8(&t, 'x');
    CU_ASSERT_FALSE(px_codec_parse_sasl_initial(span_of(t.b, t.n), &mech, &data));
}

static void test_sasl_initial_rejects_bad_lengths(void)
{
    tb_t t;
    px_span_t mech, data;
    tb_reset(&t);
    tb_str(&t, "SCRAM-SHA-256");
    tb_i32(&t, -2);
    CU_ASSERT_FALSE(px_codec_parse_sasl_initial(span_of(t.b, t.n), &mech, &data));
    tb_reset(&t);
    tb_str(&t, "SCRAM-SHA-256");
    tb_i32(&t, 10);
    tb_raw(&t, "short", 5);
    CU_ASSERT_FALSE(px_codec_parse_sasl_initial(span_of(t.b, t.n), &mech, &data));
    tb_reset(&t);
    tb_str(&t, "SCRAM-SHA-256");
    tb_i32(&t, 2);
    tb_raw(&t, "long", 4);
    CU_ASSERT_FALSE(px_codec_parse_sasl_initial(span_of(t.b, t.n), &mech, &data));
    tb_reset(&t);
    tb_str(&t, "SCRAM-SHA-256");
    CU_ASSERT_FALSE(px_codec_parse_sasl_initial(span_of(t.b, t.n), &mech, &data));
    tb_reset(&t);
    tb_str(&t, "SCRAM-SHA-256");
    tb_i32(&t, INT32_MAX);
    CU_ASSERT_FALSE(px_codec_parse_sasl_initial(span_of(t.b, t.n), &mech, &data));
}

/* ======================= startup packets ================================= */

static px_codec_status_t startup(const tb_t *t, px_startup_t *st, size_t *used, const char **err)
{
    *err = NULL;
    return px_codec_read_startup(t->b, t->n, st, used, err);
}

static void test_ssl_request_is_exactly_eight_bytes(void)
{
    const uint8_t b[8] = {0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f};
    px_startup_t st;
    size_t used = 0;
    const char *err = NULL;
    CU_ASSERT_EQUAL(px_codec_read_startup(b, 8, &st, &used, &err), PX_CODEC_OK);
    CU_ASSERT_EQUAL(st.kind, PX_STARTUP_SSL);
    CU_ASSERT_EQUAL(st.code, PX_PROTO_SSL_REQUEST);
    CU_ASSERT_EQUAL(used, 8);
    tb_t t;
    tb_reset(&t);
    tb_begin(&t, 0);
    tb_u32(&t, PX_PROTO_SSL_REQUEST);
    tb_u32(&t, 0);
    tb_end(&t);
    /* refused from the first 8 bytes, without waiting for the rest */
    CU_ASSERT_EQUAL(px_codec_read_startup(t.b, 8, &st, &used, &err), PX_CODEC_ERROR);
    CU_ASSERT_PTR_NOT_NULL(err);
}

static void test_gssenc_request_is_exactly_eight_bytes(void)
{
    tb_t t;
    px_startup_t st;
    size_t used = 0;
    const char *err;
    tb_reset(&t);
    tb_begin(&t, 0);
    tb_u32(&t, PX_PROTO_GSSENC);
    tb_end(&t);
    CU_ASSERT_EQUAL(startup(&t, &st, &used, &err), PX_CODEC_OK);
    CU_ASSERT_EQUAL(st.kind, PX_STARTUP_GSSENC);
    CU_ASSERT_EQUAL(used, 8);
    tb_u8(&t, 0);
    tb_end(&t);
    CU_ASSERT_EQUAL(startup(&t, &st, &used, &err), PX_CODEC_ERROR);
}

static void test_cancel_request_is_exactly_sixteen_bytes(void)
{
    tb_t t;
    px_startup_t st;
    size_t used = 0;
    const char *err;
    tb_reset(&t);
    tb_begin(&t, 0);
    tb_u32(&t, PX_PROTO_CANCEL);
    tb_u32(&t, 4242);
    tb_u32(&t, 0xdeadbeef);
    tb_end(&t);
    CU_ASSERT_EQUAL(startup(&t, &st, &used, &err), PX_CODEC_OK);
    CU_ASSERT_EQUAL(st.kind, PX_STARTUP_CANCEL);
    CU_ASSERT_EQUAL(st.cancel_pid, 4242);
    CU_ASSERT_EQUAL(st.cancel_key, 0xdeadbeef);
    CU_ASSERT_EQUAL(used, 16);
    for (size_t k = 0; k < 16; k++)
        CU_ASSERT_EQUAL(px_codec_read_startup(t.b, k, &st, &used, &err), PX_CODEC_NEED_MORE);

    tb_reset(&t);
    tb_begin(&t, 0);
    tb_u32(&t, PX_PROTO_CANCEL);
    tb_u32(&t, 4242);
    tb_end(&t);
    CU_ASSERT_EQUAL(startup(&t, &st, &used, &err), PX_CODEC_ERROR);
    tb_reset(&t);
    tb_begin(&t, 0);
    tb_u32(&t, PX_PROTO_CANCEL);
    tb_u32(&t, 4242);
    tb_u32(&t, 1);
    tb_u32(&t, 2);
    tb_end(&t);
    CU_ASSERT_EQUAL(startup(&t, &st, &used, &err), PX_CODEC_ERROR);
}

static void build_startup_v3(tb_t *t, uint32_t code, const char *const *pairs)
{
    tb_reset(t);
    tb_begin(t, 0);
    tb_u32(t, code);
    for (size_t i = 0; pairs[i] != NULL; i += 2) {
        tb_str(t, pairs[i]);
        tb_str(t, pairs[i + 1]);
    }
    tb_u8(t, 0);
    tb_end(t);
}

static void test_startup_message_reads_user_database_appname_options(void)
{
    const char *pairs[] = {"user", "alice",   "database",           "shop", "application_name",
                           "psql", "options", "-c search_path=app", NULL};
    tb_t t;
    build_startup_v3(&t, PX_PROTO_V3, pairs);
    px_startup_t st;
    size_t used = 0;
    const char *err;
    CU_ASSERT_EQUAL_FATAL(startup(&t, &st, &used, &err), PX_CODEC_OK);
    CU_ASSERT_EQUAL(used, t.n);
    CU_ASSERT_EQUAL(st.kind, PX_STARTUP_MESSAGE);
    CU_ASSERT_EQUAL(st.code, PX_PROTO_V3);
    CU_ASSERT_EQUAL(st.proto_minor, 0);
    CU_ASSERT_EQUAL_FATAL(st.n_params, 4);
    CU_ASSERT_EQUAL(st.user_idx, 0);
    CU_ASSERT_EQUAL(st.database_idx, 1);
    CU_ASSERT_TRUE(span_is(st.params[st.user_idx].value, "alice"));
    CU_ASSERT_TRUE(span_is(st.params[st.database_idx].value, "shop"));
    CU_ASSERT_TRUE(span_is(st.params[2].name, "application_name"));
    CU_ASSERT_TRUE(span_is(st.params[2].value, "psql"));
    CU_ASSERT_TRUE(span_is(st.params[3].name, "options"));
    CU_ASSERT_TRUE(span_is(st.params[3].value, "-c search_path=app"));
    for (int i = 0; i < st.n_params; i++) {
        CU_ASSERT_TRUE(span_inside(st.params[i].name, t.b, t.n));
        CU_ASSERT_TRUE(span_inside(st.params[i].value, t.b, t.n));
    }
}

static void test_startup_without_database_has_database_idx_minus_one(void)
{
    const char *pairs[] = {"user", "bob", NULL};
    tb_t t;
    build_startup_v3(&t, PX_PROTO_V3, pairs);
    px_startup_t st;
    size_t used;
    const char *err;
    CU_ASSERT_EQUAL(startup(&t, &st, &used, &err), PX_CODEC_OK);
    CU_ASSERT_EQUAL(st.database_idx, -1);
    CU_ASSERT_EQUAL(st.user_idx, 0);
}

static void test_startup_any_minor_version_accepted_and_reported(void)
{
    const char *pairs[] = {"user", "bob", "_pq_.compression", "on", NULL};
    tb_t t;
    build_startup_v3(&t, 0x00030002u, pairs);
    px_startup_t st;
    size_t used;
    const char *err;
    CU_ASSERT_EQUAL(startup(&t, &st, &used, &err), PX_CODEC_OK);
    CU_ASSERT_EQUAL(st.proto_minor, 2);
    CU_ASSERT_EQUAL(st.code, 0x00030002u);
    build_startup_v3(&t, 0x0003ffffu, pairs);
    CU_ASSERT_EQUAL(startup(&t, &st, &used, &err), PX_CODEC_OK);
    CU_ASSERT_EQUAL(st.proto_minor, 0xffff);
}

static void test_startup_protocol_2_rejected_with_reason(void)
{
    const char *pairs[] = {"user", "bob", NULL};
    tb_t t;
    build_startup_v3(&t, 0x00020000u, pairs);
    px_startup_t st;
    size_t used;
    const char *err = NULL;
    CU_ASSERT_EQUAL(startup(&t, &st, &used, &err), PX_CODEC_ERROR);
    CU_ASSERT_PTR_NOT_NULL_FATAL(err);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "2.0"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "3.0"));
    /* decided from the first 8 bytes */
    CU_ASSERT_EQUAL(px_codec_read_startup(t.b, 8, &st, &used, &err), PX_CODEC_ERROR);
    /* other unknown codes too, and err may be NULL */
    build_startup_v3(&t, 0x00040000u, pairs);
    CU_ASSERT_EQUAL(px_codec_read_startup(t.b, t.n, &st, &used, NULL), PX_CODEC_ERROR);
    build_startup_v3(&t, 80877105u, pairs);
    CU_ASSERT_EQUAL(startup(&t, &st, &used, &err), PX_CODEC_ERROR);
}

static void test_startup_length_7_rejected(void)
{
    const uint8_t b[8] = {0, 0, 0, 7, 0, 3, 0, 0};
    px_startup_t st;
    size_t used;
    const char *err = NULL;
    CU_ASSERT_EQUAL(px_codec_read_startup(b, 4, &st, &used, &err), PX_CODEC_ERROR);
    CU_ASSERT_PTR_NOT_NULL(err);
    CU_ASSERT_EQUAL(px_codec_read_startup(b, 8, &st, &used, &err), PX_CODEC_ERROR);
}

static void test_startup_length_10001_rejected_before_body(void)
{
    const uint8_t b[8] = {0, 0, 0x27, 0x11, 0, 3, 0, 0}; /* 10001 */
    const uint8_t neg[4] = {0xff, 0xff, 0xff, 0xf0};
    px_startup_t st;
    size_t used;
    const char *err = NULL;
    CU_ASSERT_EQUAL(px_codec_read_startup(b, 4, &st, &used, &err), PX_CODEC_ERROR);
    CU_ASSERT_EQUAL(px_codec_read_startup(b, 8, &st, &used, &err), PX_CODEC_ERROR);
    CU_ASSERT_EQUAL(px_codec_read_startup(neg, 4, &st, &used, &err), PX_CODEC_ERROR);
    for (size_t k = 0; k < 4; k++)
        CU_ASSERT_EQUAL(px_codec_read_startup(b, k, &st, &used, &err), PX_CODEC_NEED_MORE);
}

static void test_startup_length_10000_accepted(void)
{
    static tb_t t;
    tb_reset(&t);
    tb_begin(&t, 0);
    tb_u32(&t, PX_PROTO_V3);
    tb_str(&t, "user");
    tb_str(&t, "bob");
    tb_str(&t, "options");
    while (t.n < 10000 - 2)
        tb_u8(&t, 'x');
    tb_u8(&t, 0);
    tb_u8(&t, 0);
    tb_end(&t);
    CU_ASSERT_EQUAL_FATAL(t.n, 10000);
    px_startup_t st;
    size_t used;
    const char *err;
    CU_ASSERT_EQUAL(startup(&t, &st, &used, &err), PX_CODEC_OK);
    CU_ASSERT_EQUAL(used, 10000);
}

static void test_startup_needs_more_until_whole_packet(void)
{
    const char *pairs[] = {"user", "bob", "database", "db", NULL};
    tb_t t;
    build_startup_v3(&t, PX_PROTO_V3, pairs);
    px_startup_t st;
    size_t used;
    const char *err;
    for (size_t k = 0; k < t.n; k++)
        CU_ASSERT_EQUAL(px_codec_read_startup(t.b, k, &st, &used, &err), PX_CODEC_NEED_MORE);
    /* a following message in the same buffer is not consumed */
    size_t n = t.n;
    tb_begin(&t, 'Q');
    tb_str(&t, "SELECT 1");
    tb_end(&t);
    CU_ASSERT_EQUAL(startup(&t, &st, &used, &err), PX_CODEC_OK);
    CU_ASSERT_EQUAL(used, n);
}

static void test_startup_missing_final_nul_rejected(void)
{
    tb_t t;
    tb_reset(&t);
    tb_begin(&t, 0);
    tb_u32(&t, PX_PROTO_V3);
    tb_str(&t, "user");
    tb_str(&t, "bob");
    tb_end(&t);
    px_startup_t st;
    size_t used;
    const char *err = NULL;
    CU_ASSERT_EQUAL(startup(&t, &st, &used, &err), PX_CODEC_ERROR);
    CU_ASSERT_PTR_NOT_NULL(err);
    /* the value's NUL missing as well */
    tb_reset(&t);
    tb_begin(&t, 0);
    tb_u32(&t, PX_PROTO_V3);
    tb_str(&t, "user");
    tb_raw(&t, "bob", 3);
    tb_end(&t);
    CU_ASSERT_EQUAL(startup(&t, &st, &used, &err), PX_CODEC_ERROR);
    /* a name without a value */
    tb_reset(&t);
    tb_begin(&t, 0);
    tb_u32(&t, PX_PROTO_V3);
    tb_str(&t, "user");
    tb_end(&t);
    CU_ASSERT_EQUAL(startup(&t, &st, &used, &err), PX_CODEC_ERROR);
    /* nothing at all after the code */
    tb_reset(&t);
    tb_begin(&t, 0);
    tb_u32(&t, PX_PROTO_V3);
    tb_end(&t);
    CU_ASSERT_EQUAL(startup(&t, &st, &used, &err), PX_CODEC_ERROR);
}

static void test_startup_bytes_after_terminator_rejected(void)
{
    tb_t t;
    tb_reset(&t);
    tb_begin(&t, 0);
    tb_u32(&t, PX_PROTO_V3);
    tb_str(&t, "user");
    tb_str(&t, "bob");
    tb_u8(&t, 0);
    tb_u8(&t, 0);
    tb_end(&t);
    px_startup_t st;
    size_t used;
    const char *err;
    CU_ASSERT_EQUAL(startup(&t, &st, &used, &err), PX_CODEC_ERROR);
}

static void test_startup_missing_user_rejected(void)
{
    const char *pairs[] = {"database", "db", "application_name", "x", NULL};
    tb_t t;
    build_startup_v3(&t, PX_PROTO_V3, pairs);
    px_startup_t st;
    size_t used;
    const char *err = NULL;
    CU_ASSERT_EQUAL(startup(&t, &st, &used, &err), PX_CODEC_ERROR);
    CU_ASSERT_PTR_NOT_NULL_FATAL(err);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "user"));
    /* "User" is not "user" */
    const char *pairs2[] = {"User", "bob", NULL};
    build_startup_v3(&t, PX_PROTO_V3, pairs2);
    CU_ASSERT_EQUAL(startup(&t, &st, &used, &err), PX_CODEC_ERROR);
}

static void test_startup_empty_param_name_rejected(void)
{
    tb_t t;
    tb_reset(&t);
    tb_begin(&t, 0);
    tb_u32(&t, PX_PROTO_V3);
    tb_str(&t, "user");
    tb_str(&t, "bob");
    tb_str(&t, "");
    tb_str(&t, "value");
    tb_u8(&t, 0);
    tb_end(&t);
    px_startup_t st;
    size_t used;
    const char *err;
    CU_ASSERT_EQUAL(startup(&t, &st, &used, &err), PX_CODEC_ERROR);
}

static void test_startup_64_params_ok_65_rejected(void)
{
    char names[65][16];
    const char *pairs[2 * 65 + 1];
    for (int i = 0; i < 65; i++) {
        snprintf(names[i], sizeof names[i], i == 0 ? "user" : "p%d", i);
        pairs[2 * i] = names[i];
        pairs[2 * i + 1] = "v";
    }
    pairs[2 * 64] = NULL;
    tb_t t;
    build_startup_v3(&t, PX_PROTO_V3, pairs);
    px_startup_t st;
    size_t used;
    const char *err = NULL;
    CU_ASSERT_EQUAL(startup(&t, &st, &used, &err), PX_CODEC_OK);
    CU_ASSERT_EQUAL(st.n_params, PX_STARTUP_MAX_PARAMS);
    pairs[2 * 64] = names[64];
    pairs[2 * 65] = NULL;
    build_startup_v3(&t, PX_PROTO_V3, pairs);
    CU_ASSERT_EQUAL(startup(&t, &st, &used, &err), PX_CODEC_ERROR);
    CU_ASSERT_PTR_NOT_NULL(err);
}

static void test_startup_repeated_user_keeps_last_like_postgres(void)
{
    const char *pairs[] = {"user", "first", "user", "second", NULL};
    tb_t t;
    build_startup_v3(&t, PX_PROTO_V3, pairs);
    px_startup_t st;
    size_t used;
    const char *err;
    CU_ASSERT_EQUAL_FATAL(startup(&t, &st, &used, &err), PX_CODEC_OK);
    CU_ASSERT_TRUE(span_is(st.params[st.user_idx].value, "second"));
}

static void test_startup_empty_user_value_is_present(void)
{
    const char *pairs[] = {"user", "", NULL};
    tb_t t;
    build_startup_v3(&t, PX_PROTO_V3, pairs);
    px_startup_t st;
    size_t used;
    const char *err;
    CU_ASSERT_EQUAL(startup(&t, &st, &used, &err), PX_CODEC_OK);
    CU_ASSERT_EQUAL(st.params[st.user_idx].value.n, 0);
}

/* ======================= backend messages ================================ */

static void auth_msg(tb_t *t, int32_t code, const void *data, size_t n)
{
    tb_reset(t);
    tb_begin(t, 'R');
    tb_i32(t, code);
    tb_raw(t, data, n);
    tb_end(t);
}

static void test_authentication_ok_cleartext_md5_variants(void)
{
    tb_t t;
    int32_t code = -1;
    px_span_t data;
    auth_msg(&t, PX_AUTH_OK, "", 0);
    CU_ASSERT_TRUE(px_codec_parse_auth(read_one(&t, 'R'), &code, &data));
    CU_ASSERT_EQUAL(code, PX_AUTH_OK);
    CU_ASSERT_EQUAL(data.n, 0);
    CU_ASSERT_STRING_EQUAL(px_codec_backend_name('R'), "Authentication");

    auth_msg(&t, PX_AUTH_CLEARTEXT, "", 0);
    CU_ASSERT_TRUE(px_codec_parse_auth(read_one(&t, 'R'), &code, &data));
    CU_ASSERT_EQUAL(code, PX_AUTH_CLEARTEXT);

    auth_msg(&t, PX_AUTH_MD5, "\x01\x02\x03\x04", 4);
    CU_ASSERT_TRUE(px_codec_parse_auth(read_one(&t, 'R'), &code, &data));
    CU_ASSERT_EQUAL(code, PX_AUTH_MD5);
    CU_ASSERT_EQUAL(data.n, 4);
    CU_ASSERT_EQUAL(memcmp(data.p, "\x01\x02\x03\x04", 4), 0);
}

static void test_authentication_rejects_wrong_sizes(void)
{
    tb_t t;
    int32_t code;
    px_span_t data;
    auth_msg(&t, PX_AUTH_MD5, "\x01\x02\x03", 3);
    CU_ASSERT_FALSE(px_codec_parse_auth(read_one(&t, 'R'), &code, &data));
    auth_msg(&t, PX_AUTH_OK, "x", 1);
    CU_ASSERT_FALSE(px_codec_parse_auth(read_one(&t, 'R'), &code, &data));
    CU_ASSERT_FALSE(px_codec_parse_auth(span_of("\0\0\0", 3), &code, &data));
    CU_ASSERT_FALSE(px_codec_parse_auth(span_of("", 0), &code, &data));
}

static void test_authentication_sasl_continue_final(void)
{
    tb_t t;
    int32_t code;
    px_span_t data;
    auth_msg(&t, PX_AUTH_SASL, "SCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0\0", 34);
    CU_ASSERT_TRUE(px_codec_parse_auth(read_one(&t, 'R'), &code, &data));
    CU_ASSERT_EQUAL(code, PX_AUTH_SASL);
    px_reader_t r = px_reader_make(data);
    CU_ASSERT_TRUE(span_is(px_reader_cstr(&r), "SCRAM-SHA-256-PLUS"));
    CU_ASSERT_TRUE(span_is(px_reader_cstr(&r), "SCRAM-SHA-256"));
    CU_ASSERT_EQUAL(px_reader_cstr(&r).n, 0);
    CU_ASSERT_TRUE(px_reader_done(&r));

    /* mechanism list without its empty terminator, or empty */
    auth_msg(&t, PX_AUTH_SASL, "SCRAM-SHA-256\0", 14);
    CU_ASSERT_FALSE(px_codec_parse_auth(read_one(&t, 'R'), &code, &data));
    auth_msg(&t, PX_AUTH_SASL, "\0", 1);
    CU_ASSERT_FALSE(px_codec_parse_auth(read_one(&t, 'R'), &code, &data));

    const char *sf = "r=abc,s=c2FsdA==,i=4096";
    auth_msg(&t, PX_AUTH_SASL_CONTINUE, sf, strlen(sf));
    CU_ASSERT_TRUE(px_codec_parse_auth(read_one(&t, 'R'), &code, &data));
    CU_ASSERT_EQUAL(code, PX_AUTH_SASL_CONTINUE);
    CU_ASSERT_TRUE(span_is(data, sf));

    auth_msg(&t, PX_AUTH_SASL_FINAL, "v=c2lnbmF0dXJl", 14);
    CU_ASSERT_TRUE(px_codec_parse_auth(read_one(&t, 'R'), &code, &data));
    CU_ASSERT_EQUAL(code, PX_AUTH_SASL_FINAL);
    CU_ASSERT_TRUE(span_is(data, "v=c2lnbmF0dXJl"));
}

static void test_parameter_status_reads_name_and_value(void)
{
    tb_t t;
    tb_reset(&t);
    tb_begin(&t, 'S');
    tb_str(&t, "server_version");
    tb_str(&t, "16.2");
    tb_end(&t);
    px_span_t name, value;
    CU_ASSERT_TRUE(px_codec_parse_param_status(read_one(&t, 'S'), &name, &value));
    CU_ASSERT_TRUE(span_is(name, "server_version"));
    CU_ASSERT_TRUE(span_is(value, "16.2"));
    CU_ASSERT_STRING_EQUAL(px_codec_backend_name('S'), "ParameterStatus");
    CU_ASSERT_FALSE(px_codec_parse_param_status(span_of("a\0b", 3), &name, &value));
    CU_ASSERT_FALSE(px_codec_parse_param_status(span_of("a\0b\0c", 5), &name, &value));
}

static void test_backend_key_data_is_exactly_eight_bytes(void)
{
    tb_t t;
    tb_reset(&t);
    tb_begin(&t, 'K');
    tb_u32(&t, 31337);
    tb_u32(&t, 0x80000001u);
    tb_end(&t);
    uint32_t pid = 0, key = 0;
    CU_ASSERT_TRUE(px_codec_parse_backend_key(read_one(&t, 'K'), &pid, &key));
    CU_ASSERT_EQUAL(pid, 31337);
    CU_ASSERT_EQUAL(key, 0x80000001u);
    CU_ASSERT_STRING_EQUAL(px_codec_backend_name('K'), "BackendKeyData");
    CU_ASSERT_FALSE(px_codec_parse_backend_key(span_of(t.b + 5, 7), &pid, &key));
    CU_ASSERT_FALSE(px_codec_parse_backend_key(span_of("123456789", 9), &pid, &key));
}

static void test_ready_for_query_is_one_byte_of_ite(void)
{
    const uint8_t ok[] = {'I', 'T', 'E'};
    for (size_t i = 0; i < 3; i++) {
        tb_t t;
        tb_reset(&t);
        tb_begin(&t, 'Z');
        tb_u8(&t, ok[i]);
        tb_end(&t);
        uint8_t s = 0;
        CU_ASSERT_TRUE(px_codec_parse_ready(read_one(&t, 'Z'), &s));
        CU_ASSERT_EQUAL(s, ok[i]);
    }
    uint8_t s;
    CU_ASSERT_FALSE(px_codec_parse_ready(span_of("X", 1), &s));
    CU_ASSERT_FALSE(px_codec_parse_ready(span_of("II", 2), &s));
    CU_ASSERT_FALSE(px_codec_parse_ready(span_of("", 0), &s));
    CU_ASSERT_STRING_EQUAL(px_codec_backend_name('Z'), "ReadyForQuery");
}

static void test_row_description_and_data_row_walk(void)
{
    tb_t t;
    tb_reset(&t);
    tb_begin(&t, 'T');
    tb_i16(&t, 2);
    const char *cols[] = {"id", "name"};
    for (int i = 0; i < 2; i++) {
        tb_str(&t, cols[i]);
        tb_i32(&t, 16384);
        tb_i16(&t, (int)(i + 1));
        tb_i32(&t, i == 0 ? 23 : 25);
        tb_i16(&t, i == 0 ? 4 : -1);
        tb_i32(&t, -1);
        tb_i16(&t, 0);
    }
    tb_end(&t);
    px_reader_t r = px_reader_make(read_one(&t, 'T'));
    int nf = px_reader_int16(&r);
    CU_ASSERT_EQUAL(nf, 2);
    for (int i = 0; i < nf; i++) {
        CU_ASSERT_TRUE(span_is(px_reader_cstr(&r), cols[i]));
        (void)px_reader_int32(&r);
        CU_ASSERT_EQUAL(px_reader_int16(&r), i + 1);
        (void)px_reader_int32(&r);
        (void)px_reader_int16(&r);
        CU_ASSERT_EQUAL(px_reader_int32(&r), -1);
        CU_ASSERT_EQUAL(px_reader_int16(&r), 0);
    }
    CU_ASSERT_TRUE(px_reader_done(&r));
    CU_ASSERT_STRING_EQUAL(px_codec_backend_name('T'), "RowDescription");

    tb_reset(&t);
    tb_begin(&t, 'D');
    tb_i16(&t, 2);
    tb_i32(&t, 2);
    tb_raw(&t, "42", 2);
    tb_i32(&t, -1);
    tb_end(&t);
    r = px_reader_make(read_one(&t, 'D'));
    CU_ASSERT_EQUAL(px_reader_int16(&r), 2);
    int32_t l = px_reader_int32(&r);
    CU_ASSERT_TRUE(span_is(px_reader_bytes(&r, (size_t)l), "42"));
    CU_ASSERT_EQUAL(px_reader_int32(&r), -1);
    CU_ASSERT_TRUE(px_reader_done(&r));
    CU_ASSERT_STRING_EQUAL(px_codec_backend_name('D'), "DataRow");
}

static void test_command_complete_reads_tag(void)
{
    tb_t t;
    tb_reset(&t);
    tb_begin(&t, 'C');
    tb_str(&t, "INSERT 0 5");
    tb_end(&t);
    px_span_t tag;
    CU_ASSERT_TRUE(px_codec_parse_command_complete(read_one(&t, 'C'), &tag));
    CU_ASSERT_TRUE(span_is(tag, "INSERT 0 5"));
    CU_ASSERT_STRING_EQUAL(px_codec_backend_name('C'), "CommandComplete");
    CU_ASSERT_FALSE(px_codec_parse_command_complete(span_of("INSERT", 6), &tag));
}

static void test_error_response_reads_all_known_fields(void)
{
    tb_t t;
    tb_reset(&t);
    tb_begin(&t, 'E');
    tb_u8(&t, 'S');
    tb_str(&t, "ERREUR");
    tb_u8(&t, 'V');
    tb_str(&t, "ERROR");
    tb_u8(&t, 'C');
    tb_str(&t, "42P01");
    tb_u8(&t, 'M');
    tb_str(&t, "relation \"x\" does not exist");
    tb_u8(&t, 'D');
    tb_str(&t, "some detail");
    tb_u8(&t, 'H');
    tb_str(&t, "some hint");
    tb_u8(&t, 'P'); /* position: not decoded, skipped */
    tb_str(&t, "15");
    tb_u8(&t, 'R');
    tb_str(&t, "parserOpenTable");
    tb_u8(&t, 0);
    tb_end(&t);
    px_error_fields_t f;
    CU_ASSERT_TRUE(px_codec_parse_error(read_one(&t, 'E'), &f));
    CU_ASSERT_TRUE(span_is(f.severity, "ERREUR"));
    CU_ASSERT_TRUE(span_is(f.severity_nl, "ERROR"));
    CU_ASSERT_TRUE(span_is(f.sqlstate, "42P01"));
    CU_ASSERT_TRUE(span_is(f.message, "relation \"x\" does not exist"));
    CU_ASSERT_TRUE(span_is(f.detail, "some detail"));
    CU_ASSERT_TRUE(span_is(f.hint, "some hint"));
    CU_ASSERT_STRING_EQUAL(px_codec_backend_name('E'), "ErrorResponse");
}

static void test_error_response_unset_fields_are_empty(void)
{
    px_error_fields_t f;
    CU_ASSERT_TRUE(px_codec_parse_error(span_of("\0", 1), &f));
    CU_ASSERT_EQUAL(f.severity.n, 0);
    CU_ASSERT_PTR_NOT_NULL(f.severity.p);
    CU_ASSERT_EQUAL(f.message.n, 0);
    CU_ASSERT_EQUAL(f.hint.n, 0);
}

static void test_error_response_rejects_missing_terminators(void)
{
    px_error_fields_t f;
    CU_ASSERT_FALSE(px_codec_parse_error(span_of("", 0), &f));
    CU_ASSERT_FALSE(px_codec_parse_error(span_of("SERROR\0", 7), &f));
    CU_ASSERT_FALSE(px_codec_parse_error(span_of("SERROR", 6), &f));
    CU_ASSERT_FALSE(px_codec_parse_error(span_of("SERROR\0\0x", 9), &f));
    CU_ASSERT_FALSE(px_codec_parse_error(span_of("S", 1), &f));
}

static void test_notice_response_parses_like_error(void)
{
    tb_t t;
    tb_reset(&t);
    tb_begin(&t, 'N');
    tb_u8(&t, 'S');
    tb_str(&t, "NOTICE");
    tb_u8(&t, 'V');
    tb_str(&t, "NOTICE");
    tb_u8(&t, 'C');
    tb_str(&t, "00000");
    tb_u8(&t, 'M');
    tb_str(&t, "table \"x\" does not exist, skipping");
    tb_u8(&t, 0);
    tb_end(&t);
    px_error_fields_t f;
    CU_ASSERT_TRUE(px_codec_parse_error(read_one(&t, 'N'), &f));
    CU_ASSERT_TRUE(span_is(f.sqlstate, "00000"));
    CU_ASSERT_STRING_EQUAL(px_codec_backend_name('N'), "NoticeResponse");
}

static void test_notification_response_walk(void)
{
    tb_t t;
    tb_reset(&t);
    tb_begin(&t, 'A');
    tb_i32(&t, 777);
    tb_str(&t, "jobs");
    tb_str(&t, "{\"id\":1}");
    tb_end(&t);
    px_reader_t r = px_reader_make(read_one(&t, 'A'));
    CU_ASSERT_EQUAL(px_reader_int32(&r), 777);
    CU_ASSERT_TRUE(span_is(px_reader_cstr(&r), "jobs"));
    CU_ASSERT_TRUE(span_is(px_reader_cstr(&r), "{\"id\":1}"));
    CU_ASSERT_TRUE(px_reader_done(&r));
    CU_ASSERT_STRING_EQUAL(px_codec_backend_name('A'), "NotificationResponse");
}

static void test_copy_in_out_both_responses_walk(void)
{
    const struct {
        uint8_t type;
        const char *name;
    } cases[] = {{'G', "CopyInResponse"}, {'H', "CopyOutResponse"}, {'W', "CopyBothResponse"}};
    for (size_t i = 0; i < 3; i++) {
        tb_t t;
        tb_reset(&t);
        tb_begin(&t, cases[i].type);
        tb_u8(&t, 0);
        tb_i16(&t, 3);
        tb_i16(&t, 0);
        tb_i16(&t, 0);
        tb_i16(&t, 0);
        tb_end(&t);
        px_reader_t r = px_reader_make(read_one(&t, cases[i].type));
        CU_ASSERT_EQUAL(px_reader_byte(&r), 0);
        int n = px_reader_int16(&r);
        CU_ASSERT_EQUAL(n, 3);
        for (int k = 0; k < n; k++)
            CU_ASSERT_EQUAL(px_reader_int16(&r), 0);
        CU_ASSERT_TRUE(px_reader_done(&r));
        CU_ASSERT_STRING_EQUAL(px_codec_backend_name(cases[i].type), cases[i].name);
    }
}

static void test_empty_backend_messages_have_empty_bodies(void)
{
    const struct {
        uint8_t type;
        const char *name;
    } cases[] = {{'1', "ParseComplete"}, {'2', "BindComplete"},    {'3', "CloseComplete"},
                 {'n', "NoData"},        {'s', "PortalSuspended"}, {'I', "EmptyQueryResponse"},
                 {'c', "CopyDone"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tb_t t;
        tb_reset(&t);
        tb_begin(&t, cases[i].type);
        tb_end(&t);
        CU_ASSERT_EQUAL(read_one(&t, cases[i].type).n, 0);
        CU_ASSERT_STRING_EQUAL(px_codec_backend_name(cases[i].type), cases[i].name);
    }
}

static void test_parameter_description_walk(void)
{
    tb_t t;
    tb_reset(&t);
    tb_begin(&t, 't');
    tb_i16(&t, 2);
    tb_i32(&t, 23);
    tb_i32(&t, 25);
    tb_end(&t);
    px_reader_t r = px_reader_make(read_one(&t, 't'));
    CU_ASSERT_EQUAL(px_reader_int16(&r), 2);
    CU_ASSERT_EQUAL(px_reader_int32(&r), 23);
    CU_ASSERT_EQUAL(px_reader_int32(&r), 25);
    CU_ASSERT_TRUE(px_reader_done(&r));
    CU_ASSERT_STRING_EQUAL(px_codec_backend_name('t'), "ParameterDescription");
}

static void test_negotiate_protocol_version_walk(void)
{
    tb_t t;
    tb_reset(&t);
    tb_begin(&t, 'v');
    tb_i32(&t, 0);
    tb_i32(&t, 1);
    tb_str(&t, "_pq_.compression");
    tb_end(&t);
    px_reader_t r = px_reader_make(read_one(&t, 'v'));
    CU_ASSERT_EQUAL(px_reader_int32(&r), 0);
    CU_ASSERT_EQUAL(px_reader_int32(&r), 1);
    CU_ASSERT_TRUE(span_is(px_reader_cstr(&r), "_pq_.compression"));
    CU_ASSERT_TRUE(px_reader_done(&r));
    CU_ASSERT_STRING_EQUAL(px_codec_backend_name('v'), "NegotiateProtocolVersion");
}

static void test_function_call_response_walk(void)
{
    tb_t t;
    tb_reset(&t);
    tb_begin(&t, 'V');
    tb_i32(&t, 4);
    tb_i32(&t, 99);
    tb_end(&t);
    px_reader_t r = px_reader_make(read_one(&t, 'V'));
    int32_t l = px_reader_int32(&r);
    CU_ASSERT_EQUAL(l, 4);
    CU_ASSERT_EQUAL(px_reader_bytes(&r, (size_t)l).n, 4);
    CU_ASSERT_TRUE(px_reader_done(&r));
    CU_ASSERT_STRING_EQUAL(px_codec_backend_name('V'), "FunctionCallResponse");
}

static void test_unknown_types_are_named_question_mark(void)
{
    CU_ASSERT_STRING_EQUAL(px_codec_frontend_name('z'), "?");
    CU_ASSERT_STRING_EQUAL(px_codec_frontend_name(0), "?");
    CU_ASSERT_STRING_EQUAL(px_codec_frontend_name('T'), "?");
    CU_ASSERT_STRING_EQUAL(px_codec_backend_name('z'), "?");
    CU_ASSERT_STRING_EQUAL(px_codec_backend_name(0xff), "?");
    CU_ASSERT_STRING_EQUAL(px_codec_backend_name('Q'), "?");
    CU_ASSERT_STRING_EQUAL(px_codec_status_to_str(PX_CODEC_OK), "ok");
    CU_ASSERT_STRING_EQUAL(px_codec_status_to_str(PX_CODEC_NEED_MORE), "need more");
    CU_ASSERT_STRING_EQUAL(px_codec_status_to_str(PX_CODEC_ERROR), "error");
}

static void test_truncated_bodies_fail_every_parser(void)
{
    /* each well-formed body loses its last byte: every parser says no */
    tb_t t;
    px_span_t a, b;
    int np;
    uint8_t k;
    int32_t i32;
    uint32_t u1, u2;
    px_error_fields_t f;

    tb_reset(&t);
    tb_str(&t, "s");
    tb_str(&t, "SELECT $1");
    tb_i16(&t, 1);
    tb_i32(&t, 23);
    for (size_t n = 0; n < t.n; n++)
        CU_ASSERT_FALSE(px_codec_parse_parse(span_of(t.b, n), &a, &b, &np));
    tb_reset(&t);
    tb_u8(&t, 'S');
    tb_str(&t, "s1");
    for (size_t n = 0; n < t.n; n++)
        CU_ASSERT_FALSE(px_codec_parse_target(span_of(t.b, n), &k, &a));
    tb_reset(&t);
    tb_str(&t, "p");
    tb_i32(&t, 0);
    for (size_t n = 0; n < t.n; n++)
        CU_ASSERT_FALSE(px_codec_parse_execute(span_of(t.b, n), &a, &i32));
    tb_reset(&t);
    tb_u8(&t, 'S');
    tb_str(&t, "ERROR");
    tb_u8(&t, 0);
    for (size_t n = 0; n < t.n; n++)
        CU_ASSERT_FALSE(px_codec_parse_error(span_of(t.b, n), &f));
    tb_reset(&t);
    tb_str(&t, "SCRAM-SHA-256");
    tb_i32(&t, 3);
    tb_raw(&t, "abc", 3);
    for (size_t n = 0; n < t.n; n++)
        CU_ASSERT_FALSE(px_codec_parse_sasl_initial(span_of(t.b, n), &a, &b));
    tb_reset(&t);
    tb_str(&t, "a");
    tb_str(&t, "b");
    for (size_t n = 0; n < t.n; n++)
        CU_ASSERT_FALSE(px_codec_parse_param_status(span_of(t.b, n), &a, &b));
    for (size_t n = 0; n < 8; n++)
        CU_ASSERT_FALSE(px_codec_parse_backend_key(span_of("12345678", n), &u1, &u2));
    tb_reset(&t);
    tb_i32(&t, PX_AUTH_MD5);
    tb_raw(&t, "salt", 4);
    for (size_t n = 0; n < t.n; n++)
        CU_ASSERT_FALSE(px_codec_parse_auth(span_of(t.b, n), &i32, &a));
}

/* ======================= builders ======================================== */

static void test_wbuf_begin_end_patch_length(void)
{
    uint8_t buf[32];
    px_wbuf_t w = px_wbuf_make(buf, sizeof buf);
    px_build_sync(&w);
    CU_ASSERT_FALSE(w.failed);
    CU_ASSERT_EQUAL(w.len, 5);
    CU_ASSERT_EQUAL(memcmp(buf, "S\0\0\0\4", 5), 0);
    px_wbuf_begin(&w, 'Q');
    px_wbuf_put_cstr(&w, "x");
    px_wbuf_end(&w);
    CU_ASSERT_EQUAL(memcmp(buf + 5, "Q\0\0\0\6x\0", 7), 0);
    px_wbuf_begin(&w, 0);
    px_wbuf_put_int32(&w, 1);
    px_wbuf_put_int16(&w, -2);
    px_wbuf_end(&w);
    CU_ASSERT_EQUAL(memcmp(buf + 12, "\0\0\0\12\0\0\0\1\xff\xfe", 10), 0);
    CU_ASSERT_FALSE(w.failed);
}

static void test_build_error_round_trips(void)
{
    uint8_t buf[256];
    px_wbuf_t w = px_wbuf_make(buf, sizeof buf);
    px_build_error(&w, "FATAL", "08P01", "invalid message length");
    CU_ASSERT_FALSE_FATAL(w.failed);
    px_msg_hdr_t h;
    px_span_t body;
    size_t used;
    CU_ASSERT_EQUAL_FATAL(px_codec_read_msg(buf, w.len, MAXB, &h, &body, &used), PX_CODEC_OK);
    CU_ASSERT_EQUAL(h.type, 'E');
    CU_ASSERT_EQUAL(used, w.len);
    px_error_fields_t f;
    CU_ASSERT_TRUE_FATAL(px_codec_parse_error(body, &f));
    CU_ASSERT_TRUE(span_is(f.severity, "FATAL"));
    CU_ASSERT_TRUE(span_is(f.severity_nl, "FATAL"));
    CU_ASSERT_TRUE(span_is(f.sqlstate, "08P01"));
    CU_ASSERT_TRUE(span_is(f.message, "invalid message length"));
    CU_ASSERT_EQUAL(f.detail.n, 0);
    /* exact layout: S V C M fields then the terminator */
    const char want[] = "SFATAL\0VFATAL\0C08P01\0Minvalid message length\0";
    CU_ASSERT_EQUAL(body.n, sizeof want);
    CU_ASSERT_EQUAL(memcmp(body.p, want, sizeof want), 0);

    w = px_wbuf_make(buf, sizeof buf);
    px_build_notice(&w, "WARNING", "01000", "careful");
    CU_ASSERT_EQUAL_FATAL(px_codec_read_msg(buf, w.len, MAXB, &h, &body, &used), PX_CODEC_OK);
    CU_ASSERT_EQUAL(h.type, 'N');
    CU_ASSERT_TRUE(px_codec_parse_error(body, &f));
    CU_ASSERT_TRUE(span_is(f.message, "careful"));
}

static px_span_t built_one(const uint8_t *buf, const px_wbuf_t *w, uint8_t type)
{
    px_msg_hdr_t h;
    px_span_t body = {NULL, 0};
    size_t used = 0;
    CU_ASSERT_FALSE(w->failed);
    CU_ASSERT_EQUAL(px_codec_read_msg(buf, w->len, MAXB, &h, &body, &used), PX_CODEC_OK);
    CU_ASSERT_EQUAL(h.type, type);
    CU_ASSERT_EQUAL(used, w->len);
    return body;
}

static void test_build_auth_messages_round_trip(void)
{
    uint8_t buf[256];
    int32_t code;
    px_span_t data;
    px_wbuf_t w = px_wbuf_make(buf, sizeof buf);
    px_build_auth(&w, PX_AUTH_MD5, "\xaa\xbb\xcc\xdd", 4);
    CU_ASSERT_TRUE(px_codec_parse_auth(built_one(buf, &w, 'R'), &code, &data));
    CU_ASSERT_EQUAL(code, PX_AUTH_MD5);
    CU_ASSERT_EQUAL(memcmp(data.p, "\xaa\xbb\xcc\xdd", 4), 0);

    w = px_wbuf_make(buf, sizeof buf);
    px_build_auth(&w, PX_AUTH_OK, NULL, 0);
    CU_ASSERT_TRUE(px_codec_parse_auth(built_one(buf, &w, 'R'), &code, &data));
    CU_ASSERT_EQUAL(code, PX_AUTH_OK);
    CU_ASSERT_EQUAL(w.len, 9);

    w = px_wbuf_make(buf, sizeof buf);
    px_build_auth_sasl(&w);
    CU_ASSERT_TRUE(px_codec_parse_auth(built_one(buf, &w, 'R'), &code, &data));
    CU_ASSERT_EQUAL(code, PX_AUTH_SASL);
    CU_ASSERT_EQUAL(data.n, 15);
    CU_ASSERT_EQUAL(memcmp(data.p, "SCRAM-SHA-256\0\0", 15), 0);

    w = px_wbuf_make(buf, sizeof buf);
    px_build_auth(&w, PX_AUTH_SASL_FINAL, "v=abc", 5);
    CU_ASSERT_TRUE(px_codec_parse_auth(built_one(buf, &w, 'R'), &code, &data));
    CU_ASSERT_TRUE(span_is(data, "v=abc"));
}

static void test_build_session_messages_round_trip(void)
{
    uint8_t buf[256];
    px_span_t a, b;
    px_wbuf_t w = px_wbuf_make(buf, sizeof buf);
    px_build_param_status(&w, "client_encoding", "UTF8");
    CU_ASSERT_TRUE(px_codec_parse_param_status(built_one(buf, &w, 'S'), &a, &b));
    CU_ASSERT_TRUE(span_is(a, "client_encoding"));
    CU_ASSERT_TRUE(span_is(b, "UTF8"));

    uint32_t pid, key;
    w = px_wbuf_make(buf, sizeof buf);
    px_build_backend_key(&w, 0xfffffffeu, 7);
    CU_ASSERT_TRUE(px_codec_parse_backend_key(built_one(buf, &w, 'K'), &pid, &key));
    CU_ASSERT_EQUAL(pid, 0xfffffffeu);
    CU_ASSERT_EQUAL(key, 7);

    uint8_t s;
    w = px_wbuf_make(buf, sizeof buf);
    px_build_ready(&w, 'T');
    CU_ASSERT_TRUE(px_codec_parse_ready(built_one(buf, &w, 'Z'), &s));
    CU_ASSERT_EQUAL(s, 'T');

    w = px_wbuf_make(buf, sizeof buf);
    px_build_query(&w, "SELECT pg_is_in_recovery()");
    CU_ASSERT_TRUE(px_codec_parse_query(built_one(buf, &w, 'Q'), &a));
    CU_ASSERT_TRUE(span_is(a, "SELECT pg_is_in_recovery()"));

    w = px_wbuf_make(buf, sizeof buf);
    px_build_terminate(&w);
    CU_ASSERT_EQUAL(built_one(buf, &w, 'X').n, 0);

    w = px_wbuf_make(buf, sizeof buf);
    px_build_password(&w, "hunter2");
    CU_ASSERT_TRUE(px_codec_parse_password(built_one(buf, &w, 'p'), &a));
    CU_ASSERT_TRUE(span_is(a, "hunter2"));
}

static void test_build_sasl_messages_round_trip(void)
{
    uint8_t buf[256];
    px_span_t mech, data;
    px_wbuf_t w = px_wbuf_make(buf, sizeof buf);
    px_build_sasl_initial(&w, "SCRAM-SHA-256", "n,,n=,r=abc", 11);
    CU_ASSERT_TRUE(px_codec_parse_sasl_initial(built_one(buf, &w, 'p'), &mech, &data));
    CU_ASSERT_TRUE(span_is(mech, "SCRAM-SHA-256"));
    CU_ASSERT_TRUE(span_is(data, "n,,n=,r=abc"));

    w = px_wbuf_make(buf, sizeof buf);
    px_build_sasl_initial(&w, "SCRAM-SHA-256", NULL, 0);
    px_span_t body = built_one(buf, &w, 'p');
    CU_ASSERT_TRUE(px_codec_parse_sasl_initial(body, &mech, &data));
    CU_ASSERT_EQUAL(data.n, 0);
    CU_ASSERT_EQUAL(memcmp(body.p + body.n - 4, "\xff\xff\xff\xff", 4), 0);

    w = px_wbuf_make(buf, sizeof buf);
    px_build_sasl_response(&w, "c=biws,r=abc,p=xyz", 18);
    CU_ASSERT_TRUE(px_codec_parse_password(built_one(buf, &w, 'p'), &data));
    CU_ASSERT_TRUE(span_is(data, "c=biws,r=abc,p=xyz"));
}

static void test_build_cancel_request_round_trips(void)
{
    uint8_t buf[32];
    px_wbuf_t w = px_wbuf_make(buf, sizeof buf);
    px_build_cancel_request(&w, 1234, 0xcafef00d);
    CU_ASSERT_FALSE(w.failed);
    CU_ASSERT_EQUAL(w.len, 16);
    px_startup_t st;
    size_t used;
    const char *err;
    CU_ASSERT_EQUAL_FATAL(px_codec_read_startup(buf, w.len, &st, &used, &err), PX_CODEC_OK);
    CU_ASSERT_EQUAL(st.kind, PX_STARTUP_CANCEL);
    CU_ASSERT_EQUAL(st.cancel_pid, 1234);
    CU_ASSERT_EQUAL(st.cancel_key, 0xcafef00d);
}

static void test_build_startup_round_trips(void)
{
    uint8_t buf[256];
    const char *pairs[] = {"user",     "app", "database", "appdb", "application_name",
                           "fastnext", NULL};
    px_wbuf_t w = px_wbuf_make(buf, sizeof buf);
    px_build_startup(&w, pairs);
    CU_ASSERT_FALSE_FATAL(w.failed);
    CU_ASSERT_EQUAL(memcmp(buf + 4, "\0\3\0\0", 4), 0);
    CU_ASSERT_EQUAL(buf[w.len - 1], 0);
    px_startup_t st;
    size_t used;
    const char *err;
    CU_ASSERT_EQUAL_FATAL(px_codec_read_startup(buf, w.len, &st, &used, &err), PX_CODEC_OK);
    CU_ASSERT_EQUAL(used, w.len);
    CU_ASSERT_EQUAL(st.n_params, 3);
    CU_ASSERT_TRUE(span_is(st.params[st.user_idx].value, "app"));
    CU_ASSERT_TRUE(span_is(st.params[st.database_idx].value, "appdb"));
    CU_ASSERT_TRUE(span_is(st.params[2].value, "fastnext"));
}

static void test_build_negotiate_version_layout(void)
{
    uint8_t buf[128];
    px_span_t unknown[2] = {span_of("_pq_.a", 6), span_of("_pq_.bb", 7)};
    px_wbuf_t w = px_wbuf_make(buf, sizeof buf);
    px_build_negotiate_version(&w, 0, unknown, 2);
    px_reader_t r = px_reader_make(built_one(buf, &w, 'v'));
    CU_ASSERT_EQUAL(px_reader_int32(&r), 0);
    CU_ASSERT_EQUAL(px_reader_int32(&r), 2);
    CU_ASSERT_TRUE(span_is(px_reader_cstr(&r), "_pq_.a"));
    CU_ASSERT_TRUE(span_is(px_reader_cstr(&r), "_pq_.bb"));
    CU_ASSERT_TRUE(px_reader_done(&r));

    w = px_wbuf_make(buf, sizeof buf);
    px_build_negotiate_version(&w, 0, NULL, 0);
    CU_ASSERT_EQUAL(built_one(buf, &w, 'v').n, 8);
}

/* Every capacity below the needed size fails, writes nothing past cap and
 * leaves len <= cap; the needed size itself succeeds. */
static void test_wbuf_overflow_sets_failed_and_never_writes_past_cap(void)
{
    uint8_t ref[256];
    px_wbuf_t rw = px_wbuf_make(ref, sizeof ref);
    px_build_error(&rw, "ERROR", "53300", "too many clients");
    px_build_ready(&rw, 'I');
    CU_ASSERT_FALSE_FATAL(rw.failed);
    size_t need = rw.len;

    for (size_t cap = 0; cap <= need; cap++) {
        uint8_t buf[512];
        memset(buf, 0xa5, sizeof buf);
        px_wbuf_t w = px_wbuf_make(buf, cap);
        px_build_error(&w, "ERROR", "53300", "too many clients");
        px_build_ready(&w, 'I');
        CU_ASSERT_TRUE(w.len <= cap);
        CU_ASSERT_EQUAL(w.failed, cap < need);
        for (size_t i = cap; i < sizeof buf; i++) {
            if (buf[i] != 0xa5) {
                CU_FAIL("byte written past cap");
                break;
            }
        }
    }
}

static void test_wbuf_failure_is_sticky(void)
{
    uint8_t buf[8];
    memset(buf, 0, sizeof buf);
    px_wbuf_t w = px_wbuf_make(buf, 4);
    px_wbuf_put_bytes(&w, "abcde", 5);
    CU_ASSERT_TRUE(w.failed);
    CU_ASSERT_EQUAL(w.len, 0);
    px_wbuf_put_byte(&w, 'x'); /* would fit, but the buffer has failed */
    CU_ASSERT_EQUAL(w.len, 0);
    CU_ASSERT_EQUAL(buf[0], 0);
    px_wbuf_end(&w);
    CU_ASSERT_TRUE(w.failed);
}

static void test_wbuf_empty_and_null_inputs_are_safe(void)
{
    uint8_t buf[16];
    px_wbuf_t w = px_wbuf_make(buf, sizeof buf);
    px_wbuf_put_bytes(&w, NULL, 0);
    px_span_t empty = {NULL, 0};
    px_wbuf_put_span_cstr(&w, empty);
    px_wbuf_put_cstr(&w, NULL);
    CU_ASSERT_FALSE(w.failed);
    CU_ASSERT_EQUAL(w.len, 2);
    px_wbuf_t z = px_wbuf_make(NULL, 0);
    px_build_sync(&z);
    CU_ASSERT_TRUE(z.failed);
    CU_ASSERT_EQUAL(z.len, 0);
}

/* ======================= runner ========================================== */

typedef struct test_entry {
    const char *name;
    CU_TestFunc fn;
} test_entry_t;

#define T(fn)                                                                                      \
    {                                                                                              \
#fn, fn                                                                                    \
    }

static const test_entry_t framing_tests[] = {
    T(test_header_needs_five_bytes),
    T(test_header_length_four_is_empty_body),
    T(test_absurd_length_rejected_before_body),
    T(test_negative_length_rejected_even_with_unlimited_cap),
    T(test_body_at_cap_ok_one_over_cap_error),
    T(test_truncated_body_needs_more),
    T(test_split_message_needs_more_at_every_byte_boundary),
    T(test_stream_fed_in_chunks_yields_same_messages),
    T(test_many_backend_messages_consumed_in_sequence),
    T(test_garbage_after_good_message_errors_only_there),
    T(test_reader_decodes_big_endian_and_sign),
    T(test_reader_failure_is_sticky),
    T(test_reader_cstr_without_nul_fails),
    T(test_reader_bytes_past_end_fails),
    T(test_truncated_bodies_fail_every_parser),
    T(test_unknown_types_are_named_question_mark),
};

static const test_entry_t frontend_tests[] = {
    T(test_query_body_is_sql_and_one_nul),
    T(test_query_rejects_missing_nul_trailing_and_embedded_nul),
    T(test_parse_reads_name_sql_and_param_types),
    T(test_parse_rejects_bad_param_count),
    T(test_bind_reads_portal_and_statement_names),
    T(test_describe_and_close_take_s_or_p_and_a_name),
    T(test_execute_reads_portal_and_row_limit),
    T(test_sync_flush_terminate_copydone_have_empty_bodies),
    T(test_copy_data_and_copy_fail_bodies),
    T(test_function_call_body_walks_to_the_end),
    T(test_password_message_is_one_cstr),
    T(test_sasl_response_data_is_whole_body),
    T(test_sasl_initial_response_reads_mechanism_and_data),
    T(test_sasl_initial_minus_one_means_no_data),
    T(test_sasl_initial_rejects_bad_lengths),
};

static const test_entry_t startup_tests[] = {
    T(test_ssl_request_is_exactly_eight_bytes),
    T(test_gssenc_request_is_exactly_eight_bytes),
    T(test_cancel_request_is_exactly_sixteen_bytes),
    T(test_startup_message_reads_user_database_appname_options),
    T(test_startup_without_database_has_database_idx_minus_one),
    T(test_startup_any_minor_version_accepted_and_reported),
    T(test_startup_protocol_2_rejected_with_reason),
    T(test_startup_length_7_rejected),
    T(test_startup_length_10001_rejected_before_body),
    T(test_startup_length_10000_accepted),
    T(test_startup_needs_more_until_whole_packet),
    T(test_startup_missing_final_nul_rejected),
    T(test_startup_bytes_after_terminator_rejected),
    T(test_startup_missing_user_rejected),
    T(test_startup_empty_param_name_rejected),
    T(test_startup_64_params_ok_65_rejected),
    T(test_startup_repeated_user_keeps_last_like_postgres),
    T(test_startup_empty_user_value_is_present),
};

static const test_entry_t backend_tests[] = {
    T(test_authentication_ok_cleartext_md5_variants),
    T(test_authentication_rejects_wrong_sizes),
    T(test_authentication_sasl_continue_final),
    T(test_parameter_status_reads_name_and_value),
    T(test_backend_key_data_is_exactly_eight_bytes),
    T(test_ready_for_query_is_one_byte_of_ite),
    T(test_row_description_and_data_row_walk),
    T(test_command_complete_reads_tag),
    T(test_error_response_reads_all_known_fields),
    T(test_error_response_unset_fields_are_empty),
    T(test_error_response_rejects_missing_terminators),
    T(test_notice_response_parses_like_error),
    T(test_notification_response_walk),
    T(test_copy_in_out_both_responses_walk),
    T(test_empty_backend_messages_have_empty_bodies),
    T(test_parameter_description_walk),
    T(test_negotiate_protocol_version_walk),
    T(test_function_call_response_walk),
};

static const test_entry_t builder_tests[] = {
    T(test_wbuf_begin_end_patch_length),
    T(test_build_error_round_trips),
    T(test_build_auth_messages_round_trip),
    T(test_build_session_messages_round_trip),
    T(test_build_sasl_messages_round_trip),
    T(test_build_cancel_request_round_trips),
    T(test_build_startup_round_trips),
    T(test_build_negotiate_version_layout),
    T(test_wbuf_overflow_sets_failed_and_never_writes_past_cap),
    T(test_wbuf_failure_is_sticky),
    T(test_wbuf_empty_and_null_inputs_are_safe),
};

static bool add_suite(const char *name, const test_entry_t *tests, size_t n)
{
    CU_pSuite s = CU_add_suite(name, NULL, NULL);
    if (s == NULL)
        return false;
    for (size_t i = 0; i < n; i++)
        if (CU_add_test(s, tests[i].name, tests[i].fn) == NULL)
            return false;
    return true;
}

#define ADD_SUITE(name, arr) add_suite(name, arr, sizeof arr / sizeof arr[0])

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    if (!ADD_SUITE("codec/framing", framing_tests) ||
        !ADD_SUITE("codec/frontend", frontend_tests) ||
        !ADD_SUITE("codec/startup", startup_tests) || !ADD_SUITE("codec/backend", backend_tests) ||
        !ADD_SUITE("codec/builders", builder_tests)) {
        CU_cleanup_registry();
        return 2;
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
    CU_cleanup_registry();
    return failed == 0 ? 0 : 1;
}
