/*
 * Configuration. Every key is one row of px_config_keys[]: its name, type,
 * where it lives in px_config_t, default, bounds, whether a reload may change
 * it, and a help line. Loading starts from the defaults, applies the INI file
 * line by line, then the environment, parsing and range-checking each value as
 * it arrives, and finally runs the cross-key checks. The result is an
 * immutable snapshot shared by refcount; a reload builds a whole new one.
 *
 * Invariants: a snapshot that px_config_load returns is fully validated and is
 * never written again, so any thread may read it without locks; and a secret's
 * value is never copied into an error message or printed output.
 */
#include "px_config.h"
#include "px_log.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

typedef enum px_config_type {
    PX_CONFIG_T_STRING = 0,    /* char *, NULL when unset */
    PX_CONFIG_T_SECRET,        /* char *, never echoed or printed */
    PX_CONFIG_T_INT,           /* decimal integer into an int, uint16_t or uint32_t */
    PX_CONFIG_T_BOOL,          /* bool */
    PX_CONFIG_T_SIZE,          /* bytes with an optional k/m/g/t suffix, uint32_t or uint64_t */
    PX_CONFIG_T_DURATION,      /* double seconds; 500ms, 30s, 2m, 1h */
    PX_CONFIG_T_SECONDS,       /* a duration in whole seconds, into an integer */
    PX_CONFIG_T_HOSTPORT,      /* px_hostport_t */
    PX_CONFIG_T_HOSTPORT_LIST, /* px_hostport_t[] plus the int at count_offset */
    PX_CONFIG_T_HOSTPORT_STR,  /* host:port list validated, kept as a normalized char * */
    PX_CONFIG_T_ENUM,          /* index into names[], stored as an integer */
} px_config_type_t;

typedef struct px_config_key {
    const char *name;                      /* env name; INI keys match it case-insensitively */
    px_config_type_t type;                 /* how the value is parsed, stored and compared */
    size_t offset;                         /* offsetof the field in px_config_t */
    size_t size;                           /* sizeof the field */
    size_t count_offset;                   /* HOSTPORT_LIST: offsetof the item count */
    const char *def;                       /* default as it would be written; NULL: unset */
    void (*def_fn)(char *buf, size_t len); /* computed default, used instead of def */
    double min, max;                       /* numbers: inclusive bounds; hostports: ports */
    uint16_t default_port;                 /* hostports: the port when none is written */
    int max_items;                         /* lists: most items accepted */
    const char *const *names;              /* ENUM: accepted names, NULL-terminated */
    bool reloadable;                       /* may change on SIGHUP without a restart */
    const char *help;                      /* one line for --help */
} px_config_key_t;

#define PX_FIELD(m) .offset = offsetof(px_config_t, m), .size = sizeof(((px_config_t *)0)->m)

#define PX_KB  1024.0
#define PX_MB  (1024.0 * 1024.0)
#define PX_GB  (1024.0 * 1024.0 * 1024.0)
#define PX_TB  (1024.0 * 1024.0 * 1024.0 * 1024.0)
#define PX_DAY 86400.0

static const char *const px_pool_mode_names[] = {"transaction", "session", NULL};
static const char *const px_auth_type_names[] = {"scram-sha-256", "md5", "trust", NULL};
static const char *const px_log_level_names[] = {"error", "warn", "info", "debug", NULL};
static const char *const px_log_format_names[] = {"text", "json", NULL};
static const char *const px_server_tls_names[] = {"disable",   "prefer",      "require",
                                                  "verify-ca", "verify-full", NULL};

/* Enum rows store the index of the name, so the names must follow the enums. */
_Static_assert(PX_POOL_MODE_SESSION == 1, "px_pool_mode_names order");
_Static_assert(PX_AUTH_TYPE_MD5 == 1 && PX_AUTH_TYPE_TRUST == 2, "px_auth_type_names order");
_Static_assert(PX_LOG_ERROR == 0 && PX_LOG_WARN == 1 && PX_LOG_INFO == 2 && PX_LOG_DEBUG == 3,
               "px_log_level_names order");
_Static_assert(PX_LOG_FORMAT_JSON == 1, "px_log_format_names order");

static void px_config_default_workers(char *buf, size_t len)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);

    if (n < 1)
        n = 1;
    if (n > 64)
        n = 64;
    snprintf(buf, len, "%ld", n);
}

static const px_config_key_t px_config_keys[] = {
    /* listeners */
    {.name = "PROXY_LISTEN",
     .type = PX_CONFIG_T_HOSTPORT,
     PX_FIELD(proxy_listen),
     .def = "127.0.0.1:6432",
     .min = 0,
     .max = 65535,
     .default_port = 6432,
     .help = "client listener host:port (port 0: any free port); restart required"},
    {.name = "ADMIN_LISTEN",
     .type = PX_CONFIG_T_HOSTPORT,
     PX_FIELD(admin_listen),
     .def = "127.0.0.1:9930",
     .min = 0,
     .max = 65535,
     .default_port = 9930,
     .help = "admin HTTP listener host:port (port 0: any free port); restart required"},
    {.name = "WORKERS",
     .type = PX_CONFIG_T_INT,
     PX_FIELD(workers),
     .def_fn = px_config_default_workers,
     .min = 1,
     .max = 64,
     .help = "worker threads, each with its own loop; restart required"},
    {.name = "WORKER_FILL_CLIENTS",
     .type = PX_CONFIG_T_INT,
     PX_FIELD(worker_fill_clients),
     .def = "32",
     .min = 0,
     .max = 1000000,
     .reloadable = true,
     .help = "new clients go to the first worker with fewer clients than this, then to the "
             "least busy (fewer wake-ups per query at low concurrency); 0: where the kernel "
             "puts them"},

    /* backends */
    {.name = "POSTGRES_SERVER",
     .type = PX_CONFIG_T_STRING,
     PX_FIELD(postgres_server),
     .def = "127.0.0.1",
     .help = "primary PostgreSQL host; restart required"},
    {.name = "POSTGRES_PORT",
     .type = PX_CONFIG_T_INT,
     PX_FIELD(postgres_port),
     .def = "5432",
     .min = 1,
     .max = 65535,
     .help = "primary PostgreSQL port; restart required"},
    {.name = "POSTGRES_DB",
     .type = PX_CONFIG_T_STRING,
     PX_FIELD(postgres_db),
     .help = "server database for every client (unset: the client's own); restart required"},
    {.name = "POSTGRES_USER",
     .type = PX_CONFIG_T_STRING,
     PX_FIELD(postgres_user),
     .reloadable = true,
     .help = "the one client user accepted when AUTH_FILE is unset"},
    {.name = "POSTGRES_PASSWORD",
     .type = PX_CONFIG_T_SECRET,
     PX_FIELD(postgres_password),
     .reloadable = true,
     .help = "password of POSTGRES_USER (secret)"},
    {.name = "POSTGRES_READ_REPLICAS",
     .type = PX_CONFIG_T_HOSTPORT_LIST,
     PX_FIELD(replicas),
     .count_offset = offsetof(px_config_t, n_replicas),
     .min = 1,
     .max = 65535,
     .default_port = 5432,
     .max_items = PX_MAX_REPLICAS,
     .reloadable = true,
     .help = "streaming replicas for reads, host:port,host:port (at most 16)"},

    /* redis */
    {.name = "REDIS_HOST",
     .type = PX_CONFIG_T_STRING,
     PX_FIELD(redis_host),
     .help = "Redis host for the L2 cache (unset: in-process cache only); restart required"},
    {.name = "REDIS_PORT",
     .type = PX_CONFIG_T_INT,
     PX_FIELD(redis_port),
     .def = "6379",
     .min = 1,
     .max = 65535,
     .help = "Redis port; restart required"},
    {.name = "REDIS_CLUSTER_NODES",
     .type = PX_CONFIG_T_HOSTPORT_STR,
     PX_FIELD(redis_cluster_nodes),
     .min = 1,
     .max = 65535,
     .default_port = 6379,
     .max_items = 64,
     .help = "Redis Cluster seed nodes, host:port,host:port; restart required"},

    /* cache */
    {.name = "CACHE_ENABLED",
     .type = PX_CONFIG_T_BOOL,
     PX_FIELD(cache_enabled),
     .def = "true",
     .reloadable = true,
     .help = "cache read results"},
    {.name = "CACHE_DEFAULT_TTL",
     .type = PX_CONFIG_T_SECONDS,
     PX_FIELD(cache_default_ttl),
     .def = "300",
     .min = 1,
     .max = 30 * PX_DAY,
     .reloadable = true,
     .help = "lifetime of a cached result in whole seconds (300, 5m)"},
    {.name = "CACHE_MAX_SIZE",
     .type = PX_CONFIG_T_SIZE,
     PX_FIELD(cache_max_size),
     .def = "256mb",
     .min = PX_KB,
     .max = PX_TB,
     .reloadable = true,
     .help = "in-process (L1) cache bytes"},
    {.name = "CACHE_MAX_ENTRY_SIZE",
     .type = PX_CONFIG_T_SIZE,
     PX_FIELD(cache_max_entry_size),
     .def = "1mb",
     .min = 1,
     .max = PX_GB,
     .reloadable = true,
     .help = "largest result cached, at most CACHE_MAX_SIZE"},
    {.name = "CACHE_WAL_INVALIDATION",
     .type = PX_CONFIG_T_BOOL,
     PX_FIELD(cache_wal_invalidation),
     .def = "true",
     .reloadable = true,
     .help = "follow the primary's logical decoding stream (wal_level=logical, a REPLICATION "
             "role) so writes that bypass the proxy invalidate the cache too"},
    {.name = "CACHE_WARM_FILE",
     .type = PX_CONFIG_T_STRING,
     PX_FIELD(cache_warm_file),
     .reloadable = true,
     .help = "queries (one per line) run through the proxy at start to fill the cache"},

    /* pooling */
    {.name = "POOL_MODE",
     .type = PX_CONFIG_T_ENUM,
     PX_FIELD(pool_mode),
     .def = "transaction",
     .names = px_pool_mode_names,
     .help = "transaction|session; restart required"},
    {.name = "DB_POOL_SIZE",
     .type = PX_CONFIG_T_INT,
     PX_FIELD(db_pool_size),
     .def = "20",
     .min = 1,
     .max = 10000,
     .reloadable = true,
     .help = "server connections kept per (database, user, backend)"},
    {.name = "DB_MAX_OVERFLOW",
     .type = PX_CONFIG_T_INT,
     PX_FIELD(db_max_overflow),
     .def = "40",
     .min = 0,
     .max = 10000,
     .reloadable = true,
     .help = "extra server connections under load, closed when idle"},
    {.name = "DB_POOL_TIMEOUT",
     .type = PX_CONFIG_T_DURATION,
     PX_FIELD(db_pool_timeout),
     .def = "30",
     .min = 0,
     .max = PX_DAY,
     .reloadable = true,
     .help = "longest a client waits for a server connection"},
    {.name = "MAX_CLIENT_CONN",
     .type = PX_CONFIG_T_INT,
     PX_FIELD(max_client_conn),
     .def = "10000",
     .min = 1,
     .max = 1000000,
     .reloadable = true,
     .help = "client connections accepted in total"},
    {.name = "MAX_PREPARED_STATEMENTS",
     .type = PX_CONFIG_T_INT,
     PX_FIELD(max_prepared_statements),
     .def = "10000",
     .min = 1,
     .max = 10000000,
     .reloadable = true,
     .help = "named prepared statements one client may keep (transaction pooling); a Parse "
             "past that gets 54000 and the connection goes on"},
    {.name = "SERVER_CHECK_DELAY",
     .type = PX_CONFIG_T_DURATION,
     PX_FIELD(server_idle_check),
     .def = "30",
     .min = 0,
     .max = PX_DAY,
     .reloadable = true,
     .help = "pre-ping a server connection idle longer than this before use"},
    {.name = "SERVER_IDLE_TIMEOUT",
     .type = PX_CONFIG_T_DURATION,
     PX_FIELD(server_idle_timeout),
     .def = "600",
     .min = 1,
     .max = PX_DAY,
     .reloadable = true,
     .help = "close overflow server connections idle longer than this"},
    {.name = "SERVER_CONNECT_TIMEOUT",
     .type = PX_CONFIG_T_DURATION,
     PX_FIELD(server_connect_timeout),
     .def = "5",
     .min = 0.001,
     .max = 600,
     .reloadable = true,
     .help = "deadline for connecting and logging in to a server"},
    {.name = "DRAIN_TIMEOUT",
     .type = PX_CONFIG_T_DURATION,
     PX_FIELD(drain_timeout),
     .def = "30",
     .min = 0,
     .max = 3600,
     .reloadable = true,
     .help = "on SIGTERM, how long running transactions may take to finish before their "
             "clients are disconnected"},
    {.name = "CLIENT_LOGIN_TIMEOUT",
     .type = PX_CONFIG_T_DURATION,
     PX_FIELD(client_login_timeout),
     .def = "15",
     .min = 0.001,
     .max = 3600,
     .reloadable = true,
     .help = "deadline for a client's startup and authentication"},
    {.name = "MAX_MESSAGE_SIZE",
     .type = PX_CONFIG_T_SIZE,
     PX_FIELD(max_message_size),
     .def = "64mb",
     .min = PX_KB,
     .max = 2147483647.0,
     .reloadable = true,
     .help = "largest protocol message accepted (declared length)"},

    /* routing */
    {.name = "READ_REPLICA_MAX_LAG",
     .type = PX_CONFIG_T_DURATION,
     PX_FIELD(read_replica_max_lag),
     .def = "5",
     .min = 0,
     .max = PX_DAY,
     .reloadable = true,
     .help = "a replica lagging more than this takes no reads"},

    /* admin and auth */
    {.name = "ADMIN_TOKEN",
     .type = PX_CONFIG_T_SECRET,
     PX_FIELD(admin_token),
     .reloadable = true,
     .help = "bearer token for mutating admin endpoints (secret)"},
    {.name = "AUTH_TYPE",
     .type = PX_CONFIG_T_ENUM,
     PX_FIELD(auth_type),
     .def = "scram-sha-256",
     .names = px_auth_type_names,
     .reloadable = true,
     .help = "client authentication: scram-sha-256|md5|trust"},
    {.name = "AUTH_FILE",
     .type = PX_CONFIG_T_STRING,
     PX_FIELD(auth_file),
     .reloadable = true,
     .help = "userlist.txt with one \"user\" \"secret\" per line"},
    {.name = "CLIENT_TLS_CERT",
     .type = PX_CONFIG_T_STRING,
     PX_FIELD(client_tls_cert),
     .reloadable = false,
     .help = "PEM certificate (chain) offered to clients that ask for TLS (restart required)"},
    {.name = "CLIENT_TLS_KEY",
     .type = PX_CONFIG_T_STRING,
     PX_FIELD(client_tls_key),
     .reloadable = false,
     .help = "private key of CLIENT_TLS_CERT (restart required)"},
    {.name = "SERVER_TLS_MODE",
     .type = PX_CONFIG_T_ENUM,
     PX_FIELD(server_tls_mode),
     .def = "disable",
     .names = px_server_tls_names,
     .reloadable = false,
     .help = "TLS towards PostgreSQL: disable|prefer|require|verify-ca|verify-full "
             "(restart required)"},
    {.name = "SERVER_TLS_CA",
     .type = PX_CONFIG_T_STRING,
     PX_FIELD(server_tls_ca),
     .reloadable = false,
     .help = "CA file that signs the servers' certificates (restart required)"},
    {.name = "CLIENT_TLS_REQUIRE",
     .type = PX_CONFIG_T_BOOL,
     PX_FIELD(client_tls_require),
     .def = "false",
     .reloadable = true,
     .help = "refuse clients that do not use TLS"},

    /* logging */
    {.name = "LOG_LEVEL",
     .type = PX_CONFIG_T_ENUM,
     PX_FIELD(log_level),
     .def = "info",
     .names = px_log_level_names,
     .reloadable = true,
     .help = "error|warn|info|debug"},
    {.name = "LOG_FORMAT",
     .type = PX_CONFIG_T_ENUM,
     PX_FIELD(log_format),
     .def = "text",
     .names = px_log_format_names,
     .reloadable = true,
     .help = "text|json"},
};

#define PX_CONFIG_NKEYS (sizeof(px_config_keys) / sizeof(px_config_keys[0]))
_Static_assert(sizeof(px_config_keys) / sizeof(px_config_keys[0]) <= PX_CONFIG_MAX_KEYS,
               "raise PX_CONFIG_MAX_KEYS");

static const char *const px_config_source_names[] = {"default", "file", "env"};

/* ---- small helpers ---------------------------------------------------- */

static bool px_config_is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

static bool px_config_is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool px_config_is_alnum(char c)
{
    return px_config_is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool px_config_is_hex(char c)
{
    return px_config_is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static char px_config_lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* Returns the start of @p s without surrounding whitespace; its length in *n. */
static const char *px_config_trim(const char *s, size_t *n)
{
    const char *e = s + strlen(s);

    while (*s && px_config_is_ws(*s))
        s++;
    while (e > s && px_config_is_ws(e[-1]))
        e--;
    *n = (size_t)(e - s);
    return s;
}

/* Case-insensitive match of the n bytes at @p s against the whole of @p word. */
static bool px_config_word_eq(const char *s, size_t n, const char *word)
{
    return strlen(word) == n && strncasecmp(s, word, n) == 0;
}

static void px_config_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void px_config_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static void *px_config_field(const px_config_t *cfg, const px_config_key_t *k)
{
    return (char *)cfg + k->offset;
}

/* Integer fields are stored and read through their exact size; every value the
 * table admits is non-negative and fits the field, so signedness is moot. */
static void px_config_store_uint(void *p, size_t size, uint64_t v)
{
    switch (size) {
    case 1: {
        uint8_t x = (uint8_t)v;
        memcpy(p, &x, 1);
        break;
    }
    case 2: {
        uint16_t x = (uint16_t)v;
        memcpy(p, &x, 2);
        break;
    }
    case 4: {
        uint32_t x = (uint32_t)v;
        memcpy(p, &x, 4);
        break;
    }
    default:
        memcpy(p, &v, 8);
        break;
    }
}

static uint64_t px_config_load_uint(const void *p, size_t size)
{
    switch (size) {
    case 1: {
        uint8_t x;
        memcpy(&x, p, 1);
        return x;
    }
    case 2: {
        uint16_t x;
        memcpy(&x, p, 2);
        return x;
    }
    case 4: {
        uint32_t x;
        memcpy(&x, p, 4);
        return x;
    }
    default: {
        uint64_t x;
        memcpy(&x, p, 8);
        return x;
    }
    }
}

static void px_config_free_string(char **pp, bool secret)
{
    if (*pp != NULL && secret)
        explicit_bzero(*pp, strlen(*pp));
    free(*pp);
    *pp = NULL;
}

/*
 * Renders a user-supplied value for an error message: quoted, printable ASCII
 * only, cut at 64 bytes. A secret is never rendered at all.
 */
static const char *px_config_shown(const px_config_key_t *k, const char *val, char *buf, size_t len)
{
    size_t j = 0;

    if (k->type == PX_CONFIG_T_SECRET)
        return "(value hidden)";
    buf[j++] = '\'';
    for (; *val && j + 6 < len && j < 66; val++)
        buf[j++] = (*val >= 0x20 && *val < 0x7f) ? *val : '?';
    if (*val) {
        memcpy(buf + j, "...", 3);
        j += 3;
    }
    buf[j++] = '\'';
    buf[j] = '\0';
    return buf;
}

/* ---- value parsers ---------------------------------------------------- */

bool px_config_parse_size(const char *s, uint64_t *out)
{
    size_t n;
    const char *p = px_config_trim(s, &n), *e = p + n;
    uint64_t v = 0, mul = 1;

    if (p == e || !px_config_is_digit(*p))
        return false;
    for (; p < e && px_config_is_digit(*p); p++) {
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    while (p < e && px_config_is_ws(*p))
        p++;
    if (p < e) {
        size_t rest = (size_t)(e - p);
        switch (px_config_lower(*p)) {
        case 'b':
            if (rest != 1)
                return false;
            break;
        case 'k':
            mul = 1ULL << 10;
            break;
        case 'm':
            mul = 1ULL << 20;
            break;
        case 'g':
            mul = 1ULL << 30;
            break;
        case 't':
            mul = 1ULL << 40;
            break;
        default:
            return false;
        }
        if (mul > 1 && !(rest == 1 || (rest == 2 && px_config_lower(p[1]) == 'b')))
            return false;
    }
    if (v > UINT64_MAX / mul)
        return false;
    *out = v * mul;
    return true;
}

bool px_config_parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"true", "1", "yes", "on"};
    static const char *const no[] = {"false", "0", "no", "off"};
    size_t n;
    const char *p = px_config_trim(s, &n);

    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (px_config_word_eq(p, n, yes[i])) {
            *out = true;
            return true;
        }
        if (px_config_word_eq(p, n, no[i])) {
            *out = false;
            return true;
        }
    }
    return false;
}

/*
 * Durations are digits with an optional fraction and unit (ms, s, m, min, h,
 * d; none means seconds). Parsed by hand: strtod would also take "inf",
 * "nan", hex floats and the locale's decimal point.
 */
bool px_config_parse_duration(const char *s, double *out)
{
    size_t n;
    const char *p = px_config_trim(s, &n), *e = p + n;
    uint64_t mant = 0;
    int digits = 0, frac = 0;
    double v;

    for (; p < e && px_config_is_digit(*p); p++, digits++) {
        if (digits >= 15)
            return false;
        mant = mant * 10 + (uint64_t)(*p - '0');
    }
    if (p < e && *p == '.') {
        p++;
        for (; p < e && px_config_is_digit(*p); p++, digits++, frac++) {
            if (digits >= 15)
                return false;
            mant = mant * 10 + (uint64_t)(*p - '0');
        }
    }
    if (digits == 0)
        return false;
    v = (double)mant;
    for (int i = 0; i < frac; i++)
        v /= 10.0;
    while (p < e && px_config_is_ws(*p))
        p++;
    n = (size_t)(e - p);
    if (n == 0 || px_config_word_eq(p, n, "s"))
        ;
    else if (px_config_word_eq(p, n, "ms"))
        v /= 1000.0;
    else if (px_config_word_eq(p, n, "m") || px_config_word_eq(p, n, "min"))
        v *= 60.0;
    else if (px_config_word_eq(p, n, "h"))
        v *= 3600.0;
    else if (px_config_word_eq(p, n, "d"))
        v *= PX_DAY;
    else
        return false;
    *out = v;
    return true;
}

/* Host names: letters, digits, '.', '-', '_'. IPv6: hex, ':', '.', then an
 * optional %zone of letters, digits, '.', '-', '_'. */
static bool px_config_valid_host(const char *b, const char *e, bool ipv6)
{
    bool zone = false;

    if (e <= b || (size_t)(e - b) > 255)
        return false;
    for (; b < e; b++) {
        char c = *b;
        if (ipv6 && !zone && c == '%') {
            zone = true;
            continue;
        }
        if (ipv6 && !zone) {
            if (!(px_config_is_hex(c) || c == ':' || c == '.'))
                return false;
        } else if (!(px_config_is_alnum(c) || c == '.' || c == '-' || c == '_')) {
            return false;
        }
    }
    return true;
}

bool px_config_parse_hostport(const char *s, uint16_t default_port, px_hostport_t *out)
{
    size_t n;
    const char *p = px_config_trim(s, &n), *e = p + n;
    const char *hb, *he, *pb = NULL;
    bool ipv6 = false;
    unsigned port = default_port;

    if (p == e)
        return false;
    if (*p == '[') {
        const char *rb = memchr(p, ']', n);
        if (rb == NULL)
            return false;
        hb = p + 1;
        he = rb;
        ipv6 = true;
        if (rb + 1 < e) {
            if (rb[1] != ':')
                return false;
            pb = rb + 2;
        }
    } else {
        const char *colon = memchr(p, ':', n);
        hb = p;
        if (colon != NULL && memchr(colon + 1, ':', (size_t)(e - colon - 1)) != NULL) {
            he = e; /* bare IPv6 address, default port */
            ipv6 = true;
        } else if (colon != NULL) {
            he = colon;
            pb = colon + 1;
        } else {
            he = e;
        }
    }
    if (!px_config_valid_host(hb, he, ipv6))
        return false;
    if (pb != NULL) {
        if (pb == e || e - pb > 5)
            return false;
        port = 0;
        for (const char *q = pb; q < e; q++) {
            if (!px_config_is_digit(*q))
                return false;
            port = port * 10 + (unsigned)(*q - '0');
        }
        if (port > 65535)
            return false;
    }
    memcpy(out->host, hb, (size_t)(he - hb));
    out->host[he - hb] = '\0';
    out->port = (uint16_t)port;
    return true;
}

bool px_config_parse_hostport_list(const char *s, uint16_t default_port, px_hostport_t *out,
                                   int max, int *n)
{
    size_t len;
    const char *p = px_config_trim(s, &len), *e = p + len;
    int count = 0;

    *n = 0;
    if (len == 0)
        return true;
    for (;;) {
        const char *comma = memchr(p, ',', (size_t)(e - p));
        const char *end = comma != NULL ? comma : e;
        char item[300];
        px_hostport_t hp;

        if ((size_t)(end - p) >= sizeof(item) || count >= max)
            return false;
        memcpy(item, p, (size_t)(end - p));
        item[end - p] = '\0';
        if (!px_config_parse_hostport(item, default_port, &hp))
            return false;
        if (out != NULL)
            out[count] = hp;
        count++;
        if (comma == NULL)
            break;
        p = comma + 1;
    }
    *n = count;
    return true;
}

/* Integers for INT rows: an optional '-' (so "-1" reads as out of range, not
 * as garbage) and decimal digits. */
static bool px_config_parse_int(const char *s, int64_t *out)
{
    size_t n;
    const char *p = px_config_trim(s, &n), *e = p + n;
    bool neg = false;
    int64_t v = 0;

    if (p < e && *p == '-') {
        neg = true;
        p++;
    }
    if (p == e)
        return false;
    for (; p < e; p++) {
        if (!px_config_is_digit(*p) || v > (INT64_MAX - 9) / 10)
            return false;
        v = v * 10 + (*p - '0');
    }
    *out = neg ? -v : v;
    return true;
}

/* ---- formatting values ------------------------------------------------ */

/* Sizes print with the largest unit that divides them exactly: 256mb. */
static void px_config_format_size(uint64_t v, char *buf, size_t len)
{
    static const char *const units[] = {"tb", "gb", "mb", "kb"};
    static const int shifts[] = {40, 30, 20, 10};

    for (int i = 0; i < 4; i++) {
        uint64_t unit = 1ULL << shifts[i];
        if (v != 0 && v % unit == 0) {
            snprintf(buf, len, "%llu%s", (unsigned long long)(v / unit), units[i]);
            return;
        }
    }
    snprintf(buf, len, "%llu", (unsigned long long)v);
}

static void px_config_format_hostport(const px_hostport_t *hp, char *buf, size_t len)
{
    if (strchr(hp->host, ':') != NULL)
        snprintf(buf, len, "[%s]:%u", hp->host, (unsigned)hp->port);
    else
        snprintf(buf, len, "%s:%u", hp->host, (unsigned)hp->port);
}

/* A bound for a range error, in the unit the key is written in. */
static void px_config_format_bound(const px_config_key_t *k, double v, char *buf, size_t len)
{
    if (k->type == PX_CONFIG_T_SIZE)
        px_config_format_size((uint64_t)v, buf, len);
    else if (k->type == PX_CONFIG_T_DURATION || k->type == PX_CONFIG_T_SECONDS)
        snprintf(buf, len, "%.15gs", v);
    else
        snprintf(buf, len, "%.0f", v);
}

static bool px_config_range_err(const px_config_key_t *k, const char *where, const char *val,
                                char *err, size_t errlen)
{
    char shown[80], lo[32], hi[32];

    px_config_format_bound(k, k->min, lo, sizeof(lo));
    px_config_format_bound(k, k->max, hi, sizeof(hi));
    px_config_err(err, errlen, "%s: %s: %s is out of range %s..%s", where, k->name,
                  px_config_shown(k, val, shown, sizeof(shown)), lo, hi);
    return false;
}

/* ---- applying values -------------------------------------------------- */

/*
 * Parses @p val for key @p k, checks its bounds and stores it in @p cfg,
 * replacing (and freeing) whatever the field held. @p where names the source
 * for error messages ("file.ini:12", "environment", "default").
 */
static bool px_config_apply(px_config_t *cfg, const px_config_key_t *k, const char *val,
                            const char *where, char *err, size_t errlen)
{
    void *field = px_config_field(cfg, k);
    char shown[80];

    switch (k->type) {
    case PX_CONFIG_T_STRING:
    case PX_CONFIG_T_SECRET: {
        char *copy = strdup(val);
        if (copy == NULL) {
            px_config_err(err, errlen, "%s: %s: out of memory", where, k->name);
            return false;
        }
        px_config_free_string(field, k->type == PX_CONFIG_T_SECRET);
        memcpy(field, &copy, sizeof(copy));
        return true;
    }
    case PX_CONFIG_T_INT: {
        int64_t v;
        if (!px_config_parse_int(val, &v)) {
            px_config_err(err, errlen, "%s: %s: invalid integer %s", where, k->name,
                          px_config_shown(k, val, shown, sizeof(shown)));
            return false;
        }
        if ((double)v < k->min || (double)v > k->max)
            return px_config_range_err(k, where, val, err, errlen);
        px_config_store_uint(field, k->size, (uint64_t)v);
        return true;
    }
    case PX_CONFIG_T_BOOL: {
        bool v;
        if (!px_config_parse_bool(val, &v)) {
            px_config_err(err, errlen, "%s: %s: invalid boolean %s (expected true|false)", where,
                          k->name, px_config_shown(k, val, shown, sizeof(shown)));
            return false;
        }
        memcpy(field, &v, sizeof(v));
        return true;
    }
    case PX_CONFIG_T_SIZE: {
        uint64_t v;
        if (!px_config_parse_size(val, &v)) {
            px_config_err(err, errlen, "%s: %s: invalid size %s (expected e.g. 64k, 256mb, 1g)",
                          where, k->name, px_config_shown(k, val, shown, sizeof(shown)));
            return false;
        }
        if ((double)v < k->min || (double)v > k->max)
            return px_config_range_err(k, where, val, err, errlen);
        px_config_store_uint(field, k->size, v);
        return true;
    }
    case PX_CONFIG_T_DURATION:
    case PX_CONFIG_T_SECONDS: {
        double v;
        if (!px_config_parse_duration(val, &v)) {
            px_config_err(err, errlen,
                          "%s: %s: invalid duration %s (expected e.g. 500ms, 30s, 2m, 1h)", where,
                          k->name, px_config_shown(k, val, shown, sizeof(shown)));
            return false;
        }
        if (v < k->min || v > k->max)
            return px_config_range_err(k, where, val, err, errlen);
        if (k->type == PX_CONFIG_T_DURATION) {
            memcpy(field, &v, sizeof(v));
        } else {
            if (v != (double)(uint64_t)v) {
                px_config_err(err, errlen, "%s: %s: %s is not a whole number of seconds", where,
                              k->name, px_config_shown(k, val, shown, sizeof(shown)));
                return false;
            }
            px_config_store_uint(field, k->size, (uint64_t)v);
        }
        return true;
    }
    case PX_CONFIG_T_HOSTPORT: {
        px_hostport_t hp;
        if (!px_config_parse_hostport(val, k->default_port, &hp)) {
            px_config_err(err, errlen, "%s: %s: invalid address %s (expected host:port)", where,
                          k->name, px_config_shown(k, val, shown, sizeof(shown)));
            return false;
        }
        if (hp.port < k->min || hp.port > k->max) {
            px_config_err(err, errlen, "%s: %s: port %u out of range %.0f..%.0f in %s", where,
                          k->name, (unsigned)hp.port, k->min, k->max,
                          px_config_shown(k, val, shown, sizeof(shown)));
            return false;
        }
        memcpy(field, &hp, sizeof(hp));
        return true;
    }
    case PX_CONFIG_T_HOSTPORT_LIST:
    case PX_CONFIG_T_HOSTPORT_STR: {
        int n = 0;
        px_hostport_t *items;
        if (!px_config_parse_hostport_list(val, k->default_port, NULL, INT_MAX, &n)) {
            px_config_err(err, errlen, "%s: %s: invalid address list %s (expected host:port,...)",
                          where, k->name, px_config_shown(k, val, shown, sizeof(shown)));
            return false;
        }
        if (n > k->max_items) {
            px_config_err(err, errlen, "%s: %s: %d addresses, at most %d allowed", where, k->name,
                          n, k->max_items);
            return false;
        }
        items = calloc((size_t)(n > 0 ? n : 1), sizeof(*items));
        if (items == NULL) {
            px_config_err(err, errlen, "%s: %s: out of memory", where, k->name);
            return false;
        }
        if (!px_config_parse_hostport_list(val, k->default_port, items, n, &n)) {
            free(items); /* unreachable: the first pass accepted it */
            return false;
        }
        for (int i = 0; i < n; i++) {
            if (items[i].port < k->min || items[i].port > k->max) {
                px_config_err(err, errlen, "%s: %s: port %u out of range %.0f..%.0f in %s", where,
                              k->name, (unsigned)items[i].port, k->min, k->max,
                              px_config_shown(k, val, shown, sizeof(shown)));
                free(items);
                return false;
            }
        }
        if (k->type == PX_CONFIG_T_HOSTPORT_LIST) {
            memset(field, 0, k->size);
            memcpy(field, items, (size_t)n * sizeof(*items));
            memcpy((char *)cfg + k->count_offset, &n, sizeof(n));
        } else {
            /* normalized: "host:port,[v6]:port", no whitespace */
            size_t cap = (size_t)n * (sizeof(items[0].host) + 10) + 1, used = 0;
            char *str = malloc(cap), *old;
            if (str == NULL) {
                free(items);
                px_config_err(err, errlen, "%s: %s: out of memory", where, k->name);
                return false;
            }
            str[0] = '\0';
            for (int i = 0; i < n; i++) {
                if (i > 0)
                    str[used++] = ',';
                px_config_format_hostport(&items[i], str + used, cap - used);
                used += strlen(str + used);
            }
            memcpy(&old, field, sizeof(old));
            free(old);
            memcpy(field, &str, sizeof(str));
        }
        free(items);
        return true;
    }
    case PX_CONFIG_T_ENUM: {
        size_t n;
        const char *p = px_config_trim(val, &n);
        char expected[96] = "";
        for (int i = 0; k->names[i] != NULL; i++) {
            if (px_config_word_eq(p, n, k->names[i])) {
                px_config_store_uint(field, k->size, (uint64_t)i);
                return true;
            }
            if (i > 0)
                strncat(expected, "|", sizeof(expected) - strlen(expected) - 1);
            strncat(expected, k->names[i], sizeof(expected) - strlen(expected) - 1);
        }
        px_config_err(err, errlen, "%s: %s: invalid value %s (expected %s)", where, k->name,
                      px_config_shown(k, val, shown, sizeof(shown)), expected);
        return false;
    }
    }
    return false;
}

/* Resets key @p k to its default (an unset string, an empty list, or the
 * default text parsed like any other value). */
static bool px_config_apply_default(px_config_t *cfg, const px_config_key_t *k, char *err,
                                    size_t errlen)
{
    char buf[64];
    const char *def = k->def;
    void *field = px_config_field(cfg, k);

    if (k->def_fn != NULL) {
        k->def_fn(buf, sizeof(buf));
        def = buf;
    }
    if (def != NULL)
        return px_config_apply(cfg, k, def, "default", err, errlen);
    switch (k->type) {
    case PX_CONFIG_T_STRING:
    case PX_CONFIG_T_SECRET:
    case PX_CONFIG_T_HOSTPORT_STR:
        px_config_free_string(field, k->type == PX_CONFIG_T_SECRET);
        break;
    case PX_CONFIG_T_HOSTPORT_LIST:
        memset(field, 0, k->size);
        memset((char *)cfg + k->count_offset, 0, sizeof(int));
        break;
    default:
        memset(field, 0, k->size);
        break;
    }
    return true;
}

/* Sets a key from one source. An empty value means "not set here": the key
 * falls back to its default. */
static bool px_config_set(px_config_t *cfg, const px_config_key_t *k, const char *val,
                          px_config_source_t src, const char *where, char *err, size_t errlen)
{
    size_t idx = (size_t)(k - px_config_keys);

    if (val[0] == '\0') {
        cfg->_source[idx] = PX_CONFIG_SOURCE_DEFAULT;
        return px_config_apply_default(cfg, k, err, errlen);
    }
    cfg->_source[idx] = (uint8_t)src;
    return px_config_apply(cfg, k, val, where, err, errlen);
}

static const px_config_key_t *px_config_find(const char *name)
{
    for (size_t i = 0; i < PX_CONFIG_NKEYS; i++)
        if (strcasecmp(px_config_keys[i].name, name) == 0)
            return &px_config_keys[i];
    return NULL;
}

/* ---- the INI file ----------------------------------------------------- */

/*
 * One line of the file, modified in place. Accepts blank lines, `#` and `;`
 * comments, `[section]` headers (ignored) and `key = value`. An unquoted
 * value ends at a `#` or `;` that follows whitespace; a double-quoted value
 * is taken literally except for \" and \\. Error messages quote the line
 * number and at most the key, never the value.
 */
static bool px_config_parse_line(px_config_t *cfg, char *line, const char *path, unsigned lineno,
                                 char *err, size_t errlen)
{
    char *p = line, *eq, *kend, *v;
    const px_config_key_t *k;
    char where[512];

    while (px_config_is_ws(*p))
        p++;
    if (*p == '\0' || *p == '#' || *p == ';')
        return true;
    if (*p == '[') {
        char *rb = strchr(p, ']');
        if (rb == NULL) {
            px_config_err(err, errlen, "%s:%u: malformed section header (missing ']')", path,
                          lineno);
            return false;
        }
        for (rb++; px_config_is_ws(*rb); rb++)
            ;
        if (*rb != '\0' && *rb != '#' && *rb != ';') {
            px_config_err(err, errlen, "%s:%u: unexpected text after section header", path, lineno);
            return false;
        }
        return true;
    }
    eq = strchr(p, '=');
    if (eq == NULL) {
        px_config_err(err, errlen, "%s:%u: expected 'key = value'", path, lineno);
        return false;
    }
    for (kend = eq; kend > p && px_config_is_ws(kend[-1]); kend--)
        ;
    *kend = '\0';
    if (kend == p) {
        px_config_err(err, errlen, "%s:%u: missing key before '='", path, lineno);
        return false;
    }
    for (char *q = p; q < kend; q++) {
        if (!(px_config_is_alnum(*q) || *q == '_' || *q == '-' || *q == '.')) {
            px_config_err(err, errlen, "%s:%u: malformed key", path, lineno);
            return false;
        }
    }
    k = px_config_find(p);
    if (k == NULL) {
        px_config_err(err, errlen, "%s:%u: unknown key '%.64s'", path, lineno, p);
        return false;
    }
    for (v = eq + 1; px_config_is_ws(*v); v++)
        ;
    if (*v == '"') {
        char *r = v + 1, *w = v;
        for (;;) {
            if (*r == '\0') {
                px_config_err(err, errlen, "%s:%u: %s: unterminated quoted value", path, lineno,
                              k->name);
                return false;
            }
            if (*r == '\\' && (r[1] == '"' || r[1] == '\\')) {
                *w++ = r[1];
                r += 2;
            } else if (*r == '"') {
                break;
            } else {
                *w++ = *r++;
            }
        }
        *w = '\0';
        for (r++; px_config_is_ws(*r); r++)
            ;
        if (*r != '\0' && *r != '#' && *r != ';') {
            px_config_err(err, errlen, "%s:%u: %s: unexpected text after quoted value", path,
                          lineno, k->name);
            return false;
        }
    } else {
        char *q;
        for (q = v; *q; q++) {
            if ((*q == '#' || *q == ';') && (q == v || px_config_is_ws(q[-1]))) {
                *q = '\0';
                break;
            }
        }
        while (q > v && px_config_is_ws(q[-1]))
            *--q = '\0';
    }
    snprintf(where, sizeof(where), "%.480s:%u", path, lineno);
    return px_config_set(cfg, k, v, PX_CONFIG_SOURCE_FILE, where, err, errlen);
}

static bool px_config_read_file(px_config_t *cfg, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "re");
    char *line = NULL;
    size_t cap = 0;
    unsigned lineno = 0;
    bool ok = true;

    if (f == NULL) {
        char eb[128];
        px_config_err(err, errlen, "cannot open config file %s: %s", path,
                      strerror_r(errno, eb, sizeof(eb)));
        return false;
    }
    while (getline(&line, &cap, f) >= 0) {
        char *p = line;
        lineno++;
        if (lineno == 1 && memcmp(p, "\xef\xbb\xbf", 3) == 0)
            p += 3; /* UTF-8 byte order mark */
        if (!px_config_parse_line(cfg, p, path, lineno, err, errlen)) {
            ok = false;
            break;
        }
    }
    if (ok && ferror(f)) {
        px_config_err(err, errlen, "%s: read error", path);
        ok = false;
    }
    if (line != NULL)
        explicit_bzero(line, cap); /* it may have held a secret */
    free(line);
    fclose(f);
    return ok;
}

/* ---- snapshot lifecycle ----------------------------------------------- */

static void px_config_free(px_config_t *cfg)
{
    for (size_t i = 0; i < PX_CONFIG_NKEYS; i++) {
        const px_config_key_t *k = &px_config_keys[i];
        if (k->type == PX_CONFIG_T_STRING || k->type == PX_CONFIG_T_SECRET ||
            k->type == PX_CONFIG_T_HOSTPORT_STR)
            px_config_free_string(px_config_field(cfg, k), k->type == PX_CONFIG_T_SECRET);
    }
    free(cfg->config_file);
    free(cfg);
}

static const char *px_config_env(char *const *envp, const char *name)
{
    size_t n = strlen(name);

    for (; envp != NULL && *envp != NULL; envp++)
        if (strncmp(*envp, name, n) == 0 && (*envp)[n] == '=')
            return *envp + n + 1;
    return NULL;
}

/* Rules that involve more than one key; bounds on single keys live in the
 * table. */
static bool px_config_validate(const px_config_t *cfg, char *err, size_t errlen)
{
    char a[32], b[32];

    if (cfg->db_pool_size < 1) {
        px_config_err(err, errlen, "DB_POOL_SIZE must be at least 1");
        return false;
    }
    if (cfg->db_max_overflow < 0) {
        px_config_err(err, errlen, "DB_MAX_OVERFLOW must not be negative");
        return false;
    }
    if (cfg->cache_max_entry_size > cfg->cache_max_size) {
        px_config_format_size(cfg->cache_max_entry_size, a, sizeof(a));
        px_config_format_size(cfg->cache_max_size, b, sizeof(b));
        px_config_err(err, errlen, "CACHE_MAX_ENTRY_SIZE (%s) must not exceed CACHE_MAX_SIZE (%s)",
                      a, b);
        return false;
    }
    if (cfg->max_message_size < 1024) {
        px_config_err(err, errlen, "MAX_MESSAGE_SIZE must be at least 1kb");
        return false;
    }
    if (cfg->auth_file == NULL) {
        if (cfg->postgres_user == NULL) {
            px_config_err(err, errlen,
                          "POSTGRES_USER must be set when AUTH_FILE is not (without an auth "
                          "file the proxy accepts only POSTGRES_USER)");
            return false;
        }
        if (cfg->auth_type != PX_AUTH_TYPE_TRUST && cfg->postgres_password == NULL) {
            px_config_err(err, errlen,
                          "POSTGRES_PASSWORD must be set when AUTH_FILE is not and AUTH_TYPE is "
                          "%s",
                          px_auth_type_names[cfg->auth_type]);
            return false;
        }
    }
    return true;
}

px_config_t *px_config_load(const char *path, char *const *envp, char *err, size_t errlen)
{
    px_config_t *cfg = calloc(1, sizeof(*cfg));

    if (cfg == NULL) {
        px_config_err(err, errlen, "out of memory");
        return NULL;
    }
    cfg->_refs = 1;
    for (size_t i = 0; i < PX_CONFIG_NKEYS; i++)
        if (!px_config_apply_default(cfg, &px_config_keys[i], err, errlen))
            goto fail;
    if (path != NULL) {
        cfg->config_file = strdup(path);
        if (cfg->config_file == NULL) {
            px_config_err(err, errlen, "out of memory");
            goto fail;
        }
        if (!px_config_read_file(cfg, path, err, errlen))
            goto fail;
    }
    for (size_t i = 0; i < PX_CONFIG_NKEYS; i++) {
        const px_config_key_t *k = &px_config_keys[i];
        const char *v = px_config_env(envp, k->name);
        if (v == NULL || v[0] == '\0')
            continue; /* an empty variable counts as unset */
        if (!px_config_set(cfg, k, v, PX_CONFIG_SOURCE_ENV, "environment", err, errlen))
            goto fail;
    }
    if (!px_config_validate(cfg, err, errlen))
        goto fail;
    return cfg;

fail:
    px_config_free(cfg);
    return NULL;
}

px_config_t *px_config_ref(px_config_t *cfg)
{
    if (cfg != NULL)
        __atomic_add_fetch(&cfg->_refs, 1, __ATOMIC_RELAXED);
    return cfg;
}

void px_config_unref(px_config_t *cfg)
{
    if (cfg != NULL && __atomic_sub_fetch(&cfg->_refs, 1, __ATOMIC_ACQ_REL) == 0)
        px_config_free(cfg);
}

/* ---- print, help, diff ------------------------------------------------ */

/* Strings print bare unless the INI reader would change them; then quoted. */
static void px_config_print_string(FILE *out, const char *s)
{
    size_t n = strlen(s);
    bool quote = n > 0 && (px_config_is_ws(s[0]) || px_config_is_ws(s[n - 1]) || s[0] == '"' ||
                           strpbrk(s, "#;") != NULL);

    if (quote)
        fputc('"', out);
    for (; *s; s++) {
        if (quote && (*s == '"' || *s == '\\'))
            fputc('\\', out);
        fputc((unsigned char)*s < 0x20 ? '?' : *s, out);
    }
    if (quote)
        fputc('"', out);
}

static void px_config_print_value(FILE *out, const px_config_t *cfg, const px_config_key_t *k)
{
    const void *field = px_config_field(cfg, k);
    char buf[300];

    switch (k->type) {
    case PX_CONFIG_T_STRING:
    case PX_CONFIG_T_HOSTPORT_STR: {
        const char *s;
        memcpy(&s, field, sizeof(s));
        if (s != NULL)
            px_config_print_string(out, s);
        break;
    }
    case PX_CONFIG_T_SECRET: {
        const char *s;
        memcpy(&s, field, sizeof(s));
        if (s != NULL)
            fputs("********", out);
        break;
    }
    case PX_CONFIG_T_INT:
    case PX_CONFIG_T_SECONDS:
        fprintf(out, "%llu", (unsigned long long)px_config_load_uint(field, k->size));
        break;
    case PX_CONFIG_T_BOOL: {
        bool b;
        memcpy(&b, field, sizeof(b));
        fputs(b ? "true" : "false", out);
        break;
    }
    case PX_CONFIG_T_SIZE:
        px_config_format_size(px_config_load_uint(field, k->size), buf, sizeof(buf));
        fputs(buf, out);
        break;
    case PX_CONFIG_T_DURATION: {
        double d;
        memcpy(&d, field, sizeof(d));
        fprintf(out, "%.15g", d);
        break;
    }
    case PX_CONFIG_T_HOSTPORT:
        px_config_format_hostport(field, buf, sizeof(buf));
        fputs(buf, out);
        break;
    case PX_CONFIG_T_HOSTPORT_LIST: {
        const px_hostport_t *items = field;
        int n;
        memcpy(&n, (const char *)cfg + k->count_offset, sizeof(n));
        for (int i = 0; i < n; i++) {
            px_config_format_hostport(&items[i], buf, sizeof(buf));
            fprintf(out, "%s%s", i > 0 ? "," : "", buf);
        }
        break;
    }
    case PX_CONFIG_T_ENUM:
        fputs(k->names[px_config_load_uint(field, k->size)], out);
        break;
    }
}

void px_config_print(const px_config_t *cfg, FILE *out)
{
    for (size_t i = 0; i < PX_CONFIG_NKEYS; i++) {
        unsigned src = cfg->_source[i];
        fprintf(out, "%s = ", px_config_keys[i].name);
        px_config_print_value(out, cfg, &px_config_keys[i]);
        fprintf(out, "  # %s\n", px_config_source_names[src <= 2 ? src : 0]);
    }
}

void px_config_help(FILE *out)
{
    for (size_t i = 0; i < PX_CONFIG_NKEYS; i++) {
        const px_config_key_t *k = &px_config_keys[i];
        const char *def = k->def_fn != NULL ? "online cores" : k->def != NULL ? k->def : "unset";
        fprintf(out, "  %-24s %s [%s]\n", k->name, k->help, def);
    }
}

static bool px_config_str_eq(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    return strcmp(a, b) == 0;
}

static bool px_config_hostport_eq(const px_hostport_t *a, const px_hostport_t *b)
{
    return a->port == b->port && strcmp(a->host, b->host) == 0;
}

static bool px_config_key_eq(const px_config_t *a, const px_config_t *b, const px_config_key_t *k)
{
    const void *fa = px_config_field(a, k), *fb = px_config_field(b, k);

    switch (k->type) {
    case PX_CONFIG_T_STRING:
    case PX_CONFIG_T_SECRET:
    case PX_CONFIG_T_HOSTPORT_STR: {
        const char *sa, *sb;
        memcpy(&sa, fa, sizeof(sa));
        memcpy(&sb, fb, sizeof(sb));
        return px_config_str_eq(sa, sb);
    }
    case PX_CONFIG_T_BOOL:
        return *(const bool *)fa == *(const bool *)fb;
    case PX_CONFIG_T_DURATION: {
        double da, db;
        memcpy(&da, fa, sizeof(da));
        memcpy(&db, fb, sizeof(db));
        return da == db;
    }
    case PX_CONFIG_T_HOSTPORT:
        return px_config_hostport_eq(fa, fb);
    case PX_CONFIG_T_HOSTPORT_LIST: {
        int na, nb;
        memcpy(&na, (const char *)a + k->count_offset, sizeof(na));
        memcpy(&nb, (const char *)b + k->count_offset, sizeof(nb));
        if (na != nb)
            return false;
        for (int i = 0; i < na; i++)
            if (!px_config_hostport_eq((const px_hostport_t *)fa + i,
                                       (const px_hostport_t *)fb + i))
                return false;
        return true;
    }
    case PX_CONFIG_T_INT:
    case PX_CONFIG_T_SIZE:
    case PX_CONFIG_T_SECONDS:
    case PX_CONFIG_T_ENUM:
        return px_config_load_uint(fa, k->size) == px_config_load_uint(fb, k->size);
    }
    return false;
}

int px_config_diff(const px_config_t *old_cfg, const px_config_t *new_cfg, px_config_diff_cb cb,
                   void *arg)
{
    int restart = 0;

    for (size_t i = 0; i < PX_CONFIG_NKEYS; i++) {
        const px_config_key_t *k = &px_config_keys[i];
        if (px_config_key_eq(old_cfg, new_cfg, k))
            continue;
        if (!k->reloadable)
            restart++;
        if (cb != NULL)
            cb(k->name, k->reloadable, arg);
    }
    return restart;
}

const char *px_config_app_db(const px_config_t *cfg)
{
    return cfg->postgres_db && *cfg->postgres_db       ? cfg->postgres_db
           : cfg->postgres_user && *cfg->postgres_user ? cfg->postgres_user
                                                       : "postgres";
}
