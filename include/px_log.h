/**
 * @file px_log.h
 * Levelled logging. The macros check the level before evaluating arguments,
 * so a disabled debug line costs one comparison. Every line is one event;
 * text or JSON (for Kubernetes). Never pass a password or secret.
 */
#ifndef PX_LOG_H
#define PX_LOG_H

#include <stdarg.h>
#include <stddef.h>
#include <time.h>

/** Longest line px_log_write emits, newline included; longer ones end in "...". */
#define PX_LOG_LINE_MAX 2048

enum {
    PX_LOG_ERROR = 0,
    PX_LOG_WARN = 1,
    PX_LOG_INFO = 2,
    PX_LOG_DEBUG = 3,
};

extern int px_log_level; /* current level; set by px_log_init / reload */

/** @p json: nonzero for one JSON object per line. Logs go to stderr. */
void px_log_init(int level, int json);

/** Parse "error|warn|info|debug"; returns -1 if unknown. */
int px_log_level_parse(const char *s);

/** Emit one line. @p tag is a short context like "C-12 127.0.0.1:5123" or NULL. */
void px_log_write(int level, const char *tag, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/**
 * Format one complete line (terminating '\n' included, then a NUL) into
 * @p buf without emitting it; px_log_write uses it, tests call it directly.
 * @p json selects the JSON object format, @p ts the timestamp (NULL: now),
 * @p tag may be NULL, @p msg is the already formatted message. Control
 * characters are escaped so the line stays one line; in JSON mode invalid
 * UTF-8 becomes U+FFFD so the object stays valid. A line that does not fit is
 * cut at a character boundary and ends in "...". Returns the line length, or
 * 0 if @p len is below 512.
 */
size_t px_log_format_line(char *buf, size_t len, int json, int level, const struct timespec *ts,
                          const char *tag, const char *msg);

/* The level is read with a relaxed atomic load: a reload may change it while
 * worker threads log. */
#define px_log(level, tag, ...)                                                                    \
    do {                                                                                           \
        if ((level) <= __atomic_load_n(&px_log_level, __ATOMIC_RELAXED))                           \
            px_log_write((level), (tag), __VA_ARGS__);                                             \
    } while (0)
#define px_log_error(tag, ...) px_log(PX_LOG_ERROR, tag, __VA_ARGS__)
#define px_log_warn(tag, ...)  px_log(PX_LOG_WARN, tag, __VA_ARGS__)
#define px_log_info(tag, ...)  px_log(PX_LOG_INFO, tag, __VA_ARGS__)
#define px_log_debug(tag, ...) px_log(PX_LOG_DEBUG, tag, __VA_ARGS__)

#endif
