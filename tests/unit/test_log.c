/*
 * Unit tests for proxy/log.c: exact text and JSON line formats, JSON string
 * escaping, the one-line guarantee, truncation at character boundaries, level
 * parsing, and level filtering both in the macros (arguments not evaluated)
 * and in what reaches stderr (captured through a temporary file).
 */
#include "px_log.h"

#include <CUnit/Basic.h>
#include <CUnit/CUnit.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* 2026-11-27T05:30:00.123Z */
static const struct timespec fixed_ts = {.tv_sec = 1795757400, .tv_nsec = 123456789};

static const char *fmt_line(char *buf, size_t len, int json, int level, const char *tag,
                            const char *msg)
{
    size_t n = px_log_format_line(buf, len, json, level, &fixed_ts, tag, msg);

    CU_ASSERT_EQUAL(n, strlen(buf));
    return buf;
}

/* True if @p s is one line: exactly one '\n', at the end. */
static bool one_line(const char *s)
{
    const char *nl = strchr(s, '\n');

    return nl != NULL && nl[1] == '\0';
}

/* Minimal JSON string-literal checker for what the formatter may emit: every
 * byte is printable or UTF-8 >= 0x80, and escapes are well formed. Returns the
 * position after the closing quote, or NULL. */
static const char *skip_json_string(const char *p)
{
    if (*p++ != '"')
        return NULL;
    for (; *p != '"'; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '\0' || c < 0x20)
            return NULL;
        if (c == '\\') {
            p++;
            if (*p == 'u') {
                for (int i = 1; i <= 4; i++)
                    if (strchr("0123456789abcdefABCDEF", p[i]) == NULL || p[i] == '\0')
                        return NULL;
                p += 4;
            } else if (strchr("\"\\/bfnrt", *p) == NULL || *p == '\0') {
                return NULL;
            }
        }
    }
    return p + 1;
}

/* Checks the JSON line is {"k":"v",...}\n with string values only. */
static bool valid_json_line(const char *s)
{
    const char *p = s;

    if (*p++ != '{')
        return false;
    for (;;) {
        if ((p = skip_json_string(p)) == NULL || *p++ != ':')
            return false;
        if ((p = skip_json_string(p)) == NULL)
            return false;
        if (*p == ',') {
            p++;
            continue;
        }
        return strcmp(p, "}\n") == 0;
    }
}

static void test_text_line_has_timestamp_level_tag_and_message(void)
{
    char buf[PX_LOG_LINE_MAX];

    CU_ASSERT_STRING_EQUAL(
        fmt_line(buf, sizeof(buf), 0, PX_LOG_INFO, "C-12 127.0.0.1:5123", "client connected"),
        "2026-11-27T05:30:00.123Z INFO [C-12 127.0.0.1:5123] client connected\n");
    CU_ASSERT_STRING_EQUAL(fmt_line(buf, sizeof(buf), 0, PX_LOG_WARN, NULL, "no tag"),
                           "2026-11-27T05:30:00.123Z WARN no tag\n");
    CU_ASSERT_STRING_EQUAL(fmt_line(buf, sizeof(buf), 0, PX_LOG_ERROR, "x", ""),
                           "2026-11-27T05:30:00.123Z ERROR [x] \n");
    CU_ASSERT_STRING_EQUAL(fmt_line(buf, sizeof(buf), 0, PX_LOG_DEBUG, "x", "d"),
                           "2026-11-27T05:30:00.123Z DEBUG [x] d\n");
}

static void test_json_line_has_ts_level_tag_and_msg_fields(void)
{
    char buf[PX_LOG_LINE_MAX];

    CU_ASSERT_STRING_EQUAL(fmt_line(buf, sizeof(buf), 1, PX_LOG_INFO, "C-12", "hello"),
                           "{\"ts\":\"2026-11-27T05:30:00.123Z\",\"level\":\"info\","
                           "\"tag\":\"C-12\",\"msg\":\"hello\"}\n");
    CU_ASSERT_STRING_EQUAL(fmt_line(buf, sizeof(buf), 1, PX_LOG_ERROR, NULL, "bye"),
                           "{\"ts\":\"2026-11-27T05:30:00.123Z\",\"level\":\"error\","
                           "\"msg\":\"bye\"}\n");
    CU_ASSERT(valid_json_line(buf));
}

static void test_json_escapes_quotes_backslashes_and_control_chars(void)
{
    char buf[PX_LOG_LINE_MAX];

    fmt_line(buf, sizeof(buf), 1, PX_LOG_INFO, "t\"ag", "q\"b\\n\nr\rt\tb\bf\fc\x01\x1f\x7f end");
    CU_ASSERT_STRING_EQUAL(buf, "{\"ts\":\"2026-11-27T05:30:00.123Z\",\"level\":\"info\","
                                "\"tag\":\"t\\\"ag\",\"msg\":\"q\\\"b\\\\n\\nr\\rt\\tb\\u0008f"
                                "\\u000cc\\u0001\\u001f\x7f end\"}\n");
    CU_ASSERT(valid_json_line(buf));
    CU_ASSERT(one_line(buf));
}

static void test_json_keeps_valid_utf8_and_replaces_invalid_bytes(void)
{
    char buf[PX_LOG_LINE_MAX];

    /* é, €, 😀 pass through; a stray continuation byte, an overlong '/', a
     * surrogate and a cut-off sequence become U+FFFD */
    fmt_line(buf, sizeof(buf), 1, PX_LOG_INFO, NULL,
             "\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \x80 \xc0\xaf \xed\xa0\x80 \xe2\x82");
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "\"msg\":\"\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 "
                                       "\\ufffd \\ufffd\\ufffd \\ufffd\\ufffd\\ufffd "
                                       "\\ufffd\\ufffd\"}\n"));
    CU_ASSERT(valid_json_line(buf));
}

static void test_text_escapes_newlines_so_one_event_is_one_line(void)
{
    char buf[PX_LOG_LINE_MAX];

    fmt_line(buf, sizeof(buf), 0, PX_LOG_INFO, "a\nb",
             "user said \"hi\"\n2026-01-01T00:00:00.000Z ERROR forged\r\x1b[31m\ttab");
    CU_ASSERT(one_line(buf));
    CU_ASSERT_STRING_EQUAL(buf, "2026-11-27T05:30:00.123Z INFO [a\\nb] user said \"hi\"\\n"
                                "2026-01-01T00:00:00.000Z ERROR forged\\r\\x1b[31m\ttab\n");
}

static void test_long_text_message_is_cut_with_ellipsis(void)
{
    char buf[PX_LOG_LINE_MAX], msg[5000];
    size_t n;

    memset(msg, 'x', sizeof(msg) - 1);
    msg[sizeof(msg) - 1] = '\0';
    n = px_log_format_line(buf, sizeof(buf), 0, PX_LOG_INFO, &fixed_ts, "t", msg);
    CU_ASSERT_EQUAL(n, sizeof(buf) - 1);
    CU_ASSERT(one_line(buf));
    CU_ASSERT_STRING_EQUAL(buf + n - 4, "...\n");
}

static void test_long_json_message_is_cut_at_char_boundary_and_stays_valid(void)
{
    char buf[PX_LOG_LINE_MAX], msg[5000];
    size_t n;

    /* every escape and every multibyte character must be kept whole */
    for (size_t i = 0; i + 3 < sizeof(msg); i += 3)
        memcpy(msg + i, i % 2 ? "\xe2\x82\xac" : "\"\x01\\", 3);
    msg[sizeof(msg) - 2] = '\0';
    n = px_log_format_line(buf, sizeof(buf), 1, PX_LOG_DEBUG, &fixed_ts, "t", msg);
    CU_ASSERT(n <= sizeof(buf) - 1);
    CU_ASSERT(n > sizeof(buf) - 12);
    CU_ASSERT(one_line(buf));
    CU_ASSERT_STRING_EQUAL(buf + n - 6, "...\"}\n");
    CU_ASSERT(valid_json_line(buf));
}

static void test_long_tag_is_cut_and_line_keeps_its_message(void)
{
    char buf[PX_LOG_LINE_MAX], tag[1000];

    memset(tag, '\x01', sizeof(tag) - 1); /* escapes to six bytes each */
    tag[sizeof(tag) - 1] = '\0';
    fmt_line(buf, sizeof(buf), 1, PX_LOG_INFO, tag, "the message");
    CU_ASSERT(valid_json_line(buf));
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "...\",\"msg\":\"the message\"}\n"));
}

static void test_format_refuses_too_small_buffer(void)
{
    char buf[100];

    CU_ASSERT_EQUAL(px_log_format_line(buf, sizeof(buf), 0, PX_LOG_INFO, &fixed_ts, NULL, "m"), 0);
    CU_ASSERT_STRING_EQUAL(buf, "");
}

static void test_level_parse_accepts_names_case_insensitively(void)
{
    CU_ASSERT_EQUAL(px_log_level_parse("error"), PX_LOG_ERROR);
    CU_ASSERT_EQUAL(px_log_level_parse("warn"), PX_LOG_WARN);
    CU_ASSERT_EQUAL(px_log_level_parse("INFO"), PX_LOG_INFO);
    CU_ASSERT_EQUAL(px_log_level_parse("Debug"), PX_LOG_DEBUG);
    CU_ASSERT_EQUAL(px_log_level_parse("verbose"), -1);
    CU_ASSERT_EQUAL(px_log_level_parse(""), -1);
    CU_ASSERT_EQUAL(px_log_level_parse(NULL), -1);
}

static int evaluated;

static int count_evaluation(void)
{
    return ++evaluated;
}

static void test_disabled_level_does_not_evaluate_arguments(void)
{
    px_log_init(PX_LOG_ERROR, 0);
    evaluated = 0;
    px_log_debug(NULL, "%d", count_evaluation());
    px_log_info(NULL, "%d", count_evaluation());
    px_log_warn(NULL, "%d", count_evaluation());
    CU_ASSERT_EQUAL(evaluated, 0);
    px_log_init(PX_LOG_INFO, 0);
}

/* Runs @p emit with stderr redirected into a temporary file; returns what was
 * written (caller frees). */
static char *capture_stderr(void (*emit)(void))
{
    FILE *tmp = tmpfile();
    int saved = dup(STDERR_FILENO);
    char *out;
    long len;

    CU_ASSERT_FATAL(tmp != NULL && saved >= 0);
    fflush(stderr);
    CU_ASSERT_FATAL(dup2(fileno(tmp), STDERR_FILENO) >= 0);
    emit();
    dup2(saved, STDERR_FILENO);
    close(saved);
    len = lseek(fileno(tmp), 0, SEEK_END);
    CU_ASSERT_FATAL(len >= 0);
    out = calloc(1, (size_t)len + 1);
    CU_ASSERT_FATAL(out != NULL);
    CU_ASSERT_FATAL(pread(fileno(tmp), out, (size_t)len, 0) == len);
    fclose(tmp);
    return out;
}

static void emit_at_warn_level(void)
{
    px_log_init(PX_LOG_WARN, 0);
    px_log_debug("T", "debug %d", 1);
    px_log_info("T", "info %d", 2);
    px_log_write(PX_LOG_INFO, "T", "direct info %d", 3); /* filtered here too */
    px_log_warn("T", "warn %d", 4);
    px_log_error("T", "error %d", 5);
    px_log_init(PX_LOG_INFO, 0);
}

static void test_level_filter_decides_what_reaches_stderr(void)
{
    char *out = capture_stderr(emit_at_warn_level);
    char *first_nl = strchr(out, '\n');

    CU_ASSERT_PTR_NULL(strstr(out, "debug 1"));
    CU_ASSERT_PTR_NULL(strstr(out, "info 2"));
    CU_ASSERT_PTR_NULL(strstr(out, "direct info 3"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, " WARN [T] warn 4\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, " ERROR [T] error 5\n"));
    /* exactly two lines */
    CU_ASSERT_FATAL(first_nl != NULL);
    CU_ASSERT(one_line(first_nl + 1));
    free(out);
}

static void emit_json_with_errno_set(void)
{
    px_log_init(PX_LOG_DEBUG, 1);
    errno = ENOENT;
    px_log_debug("S-3", "path \"%s\" missing", "/tmp/x");
    CU_ASSERT_EQUAL(errno, ENOENT); /* logging must not clobber errno */
    px_log_init(PX_LOG_INFO, 0);
}

static void test_json_mode_writes_one_valid_object_and_keeps_errno(void)
{
    char *out = capture_stderr(emit_json_with_errno_set);

    CU_ASSERT(one_line(out));
    CU_ASSERT(valid_json_line(out));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"level\":\"debug\",\"tag\":\"S-3\","
                                       "\"msg\":\"path \\\"/tmp/x\\\" missing\"}\n"));
    free(out);
}

static void emit_oversized(void)
{
    char big[3 * PX_LOG_LINE_MAX];

    memset(big, 'y', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    px_log_error(NULL, "%s", big);
}

static void test_oversized_write_is_one_bounded_line(void)
{
    char *out = capture_stderr(emit_oversized);
    size_t n = strlen(out);

    CU_ASSERT(n <= PX_LOG_LINE_MAX);
    CU_ASSERT(one_line(out));
    CU_ASSERT_STRING_EQUAL(out + n - 4, "...\n");
    free(out);
}

int main(void)
{
    static const struct {
        const char *name;
        CU_TestFunc fn;
    } tests[] = {
#define T(fn) {#fn, fn}
        T(test_text_line_has_timestamp_level_tag_and_message),
        T(test_json_line_has_ts_level_tag_and_msg_fields),
        T(test_json_escapes_quotes_backslashes_and_control_chars),
        T(test_json_keeps_valid_utf8_and_replaces_invalid_bytes),
        T(test_text_escapes_newlines_so_one_event_is_one_line),
        T(test_long_text_message_is_cut_with_ellipsis),
        T(test_long_json_message_is_cut_at_char_boundary_and_stays_valid),
        T(test_long_tag_is_cut_and_line_keeps_its_message),
        T(test_format_refuses_too_small_buffer),
        T(test_level_parse_accepts_names_case_insensitively),
        T(test_disabled_level_does_not_evaluate_arguments),
        T(test_level_filter_decides_what_reaches_stderr),
        T(test_json_mode_writes_one_valid_object_and_keeps_errno),
        T(test_oversized_write_is_one_bounded_line),
#undef T
    };
    CU_pSuite suite;
    unsigned failed;

    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    suite = CU_add_suite("log", NULL, NULL);
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
