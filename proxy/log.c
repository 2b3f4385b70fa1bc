/*
 * Levelled logging to stderr, as text or one JSON object per line. Each event
 * is formatted into one bounded stack buffer and handed to a single write(2),
 * so lines from different worker threads never interleave (PX_LOG_LINE_MAX is
 * below PIPE_BUF, so even a pipe gets each line whole) and logging needs no
 * lock and no allocation.
 *
 * Invariant: every emitted line is at most PX_LOG_LINE_MAX bytes, ends with
 * its only '\n', is cut only at a character boundary, and in JSON mode is
 * one valid JSON object in valid UTF-8.
 */
#include "px_log.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

int px_log_level = PX_LOG_INFO; /* read by the px_log macros with relaxed atomics */
static int px_log_json;         /* nonzero: JSON lines; set by px_log_init */

/* Tags longer than this (after escaping) are cut; they are short ids. */
#define PX_LOG_TAG_MAX 256
/* px_log_format_line needs room for the timestamp, level, tag and a tail. */
#define PX_LOG_LINE_MIN 512

_Static_assert(PX_LOG_LINE_MAX >= PX_LOG_LINE_MIN, "PX_LOG_LINE_MAX too small");

static const char *const px_log_names_lower[] = {"error", "warn", "info", "debug"};
static const char *const px_log_names_upper[] = {"ERROR", "WARN", "INFO", "DEBUG"};

void px_log_init(int level, int json)
{
    if (level < PX_LOG_ERROR)
        level = PX_LOG_ERROR;
    if (level > PX_LOG_DEBUG)
        level = PX_LOG_DEBUG;
    __atomic_store_n(&px_log_level, level, __ATOMIC_RELAXED);
    __atomic_store_n(&px_log_json, json ? 1 : 0, __ATOMIC_RELAXED);
}

int px_log_level_parse(const char *s)
{
    if (s == NULL)
        return -1;
    for (int i = PX_LOG_ERROR; i <= PX_LOG_DEBUG; i++)
        if (strcasecmp(s, px_log_names_lower[i]) == 0)
            return i;
    return -1;
}

/* An append-only view of the output buffer; `cap` excludes the final NUL. */
typedef struct px_log_buf {
    char *p;    /* the caller's buffer */
    size_t cap; /* bytes usable for text */
    size_t n;   /* bytes written */
} px_log_buf_t;

/* Appends @p k bytes if they fit while leaving @p reserve bytes free. */
static bool px_log_put(px_log_buf_t *b, const char *s, size_t k, size_t reserve)
{
    if (b->n + k + reserve > b->cap)
        return false;
    memcpy(b->p + b->n, s, k);
    b->n += k;
    return true;
}

static void px_log_puts(px_log_buf_t *b, const char *s)
{
    (void)px_log_put(b, s, strlen(s), 0);
}

/* Length of the well-formed UTF-8 sequence at @p s (at most @p n bytes), or 0
 * if it is malformed: a stray continuation byte, an overlong form, a
 * surrogate, a value above U+10FFFF, or a sequence cut short. */
static size_t px_log_utf8_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len;
    unsigned lo = 0x80, hi = 0xbf;

    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        len = 2;
    else if (c >= 0xe0 && c <= 0xef)
        len = 3;
    else if (c >= 0xf0 && c <= 0xf4)
        len = 4;
    else
        return 0;
    if (len > n)
        return 0;
    if (c == 0xe0)
        lo = 0xa0; /* overlong */
    else if (c == 0xed)
        hi = 0x9f; /* surrogates */
    else if (c == 0xf0)
        lo = 0x90; /* overlong */
    else if (c == 0xf4)
        hi = 0x8f; /* above U+10FFFF */
    if (s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xbf)
            return 0;
    return len;
}

/*
 * Appends @p s escaped, one whole character at a time, leaving @p reserve
 * bytes free. JSON: RFC 8259 escapes, invalid UTF-8 as U+FFFD. Text: newlines
 * and other control bytes as \n, \r, \xNN (tabs kept), invalid UTF-8 as
 * \xNN, so one event stays one line. Returns false if it had to stop early.
 */
static bool px_log_put_escaped(px_log_buf_t *b, const char *s, int json, size_t reserve)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t n = strlen(s);

    for (size_t i = 0; i < n;) {
        unsigned c = u[i];
        char esc[8];
        const char *out = esc;
        size_t k;

        if (c >= 0x80) {
            k = px_log_utf8_len(u + i, n - i);
            if (k > 0) {
                if (!px_log_put(b, s + i, k, reserve))
                    return false;
                i += k;
                continue;
            }
            out = json ? "\\ufffd" : esc;
            if (!json)
                snprintf(esc, sizeof(esc), "\\x%02x", c);
        } else if (json && (c == '"' || c == '\\')) {
            esc[0] = '\\';
            esc[1] = (char)c;
            esc[2] = '\0';
        } else if (c == '\n') {
            out = "\\n";
        } else if (c == '\r') {
            out = "\\r";
        } else if (c == '\t') {
            out = json ? "\\t" : "\t";
        } else if (c < 0x20 || (!json && c == 0x7f)) {
            snprintf(esc, sizeof(esc), json ? "\\u%04x" : "\\x%02x", c);
        } else {
            esc[0] = (char)c;
            esc[1] = '\0';
        }
        if (!px_log_put(b, out, strlen(out), reserve))
            return false;
        i++;
    }
    return true;
}

size_t px_log_format_line(char *buf, size_t len, int json, int level, const struct timespec *ts,
                          const char *tag, const char *msg)
{
    px_log_buf_t b = {.p = buf, .cap = len - 1, .n = 0};
    struct timespec now;
    struct tm tm;
    time_t sec;
    char tsbuf[64], tagbuf[PX_LOG_TAG_MAX];
    int lv = level < PX_LOG_ERROR ? PX_LOG_ERROR : level > PX_LOG_DEBUG ? PX_LOG_DEBUG : level;
    /* what must still fit after a cut message: the marker and the line end */
    const char *tail_cut = json ? "...\"}\n" : "...\n";
    const char *tail_ok = json ? "\"}\n" : "\n";

    if (buf == NULL || len < PX_LOG_LINE_MIN) {
        if (buf != NULL && len > 0)
            buf[0] = '\0';
        return 0;
    }
    if (ts == NULL) {
        clock_gettime(CLOCK_REALTIME, &now);
        ts = &now;
    }
    sec = ts->tv_sec;
    gmtime_r(&sec, &tm);
    snprintf(tsbuf, sizeof(tsbuf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             (int)(ts->tv_nsec / 1000000) % 1000);

    /* The tag is escaped on its own, bounded, so the message always gets room. */
    if (tag != NULL) {
        px_log_buf_t tb = {.p = tagbuf, .cap = sizeof(tagbuf) - 1, .n = 0};
        if (!px_log_put_escaped(&tb, tag, json, 3))
            px_log_puts(&tb, "...");
        tagbuf[tb.n] = '\0';
    }
    if (json) {
        px_log_puts(&b, "{\"ts\":\"");
        px_log_puts(&b, tsbuf);
        px_log_puts(&b, "\",\"level\":\"");
        px_log_puts(&b, px_log_names_lower[lv]);
        if (tag != NULL) {
            px_log_puts(&b, "\",\"tag\":\"");
            px_log_puts(&b, tagbuf);
        }
        px_log_puts(&b, "\",\"msg\":\"");
    } else {
        px_log_puts(&b, tsbuf);
        px_log_puts(&b, " ");
        px_log_puts(&b, px_log_names_upper[lv]);
        px_log_puts(&b, " ");
        if (tag != NULL) {
            px_log_puts(&b, "[");
            px_log_puts(&b, tagbuf);
            px_log_puts(&b, "] ");
        }
    }
    if (px_log_put_escaped(&b, msg != NULL ? msg : "", json, strlen(tail_cut)))
        px_log_puts(&b, tail_ok);
    else
        px_log_puts(&b, tail_cut);
    buf[b.n] = '\0';
    return b.n;
}

void px_log_write(int level, const char *tag, const char *fmt, ...)
{
    char msg[PX_LOG_LINE_MAX], line[PX_LOG_LINE_MAX];
    int saved_errno = errno, n;
    size_t len;
    ssize_t w;
    va_list ap;

    if (level > __atomic_load_n(&px_log_level, __ATOMIC_RELAXED))
        return;
    va_start(ap, fmt);
    n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (n < 0)
        snprintf(msg, sizeof(msg), "(unformattable log message: %s)", fmt);
    else if ((size_t)n >= sizeof(msg))
        memcpy(msg + sizeof(msg) - 4, "...", 4); /* the line formatter may cut it further */
    len = px_log_format_line(line, sizeof(line), __atomic_load_n(&px_log_json, __ATOMIC_RELAXED),
                             level, NULL, tag, msg);
    do {
        w = write(STDERR_FILENO, line, len);
    } while (w < 0 && errno == EINTR);
    errno = saved_errno;
}
