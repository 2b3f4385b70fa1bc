/**
 * @file px_config.h
 * Configuration: a declarative table of keys read from an INI file and the
 * environment (the environment wins). A loaded configuration is an immutable
 * snapshot; reload builds and validates a whole new snapshot, then publishes
 * it. Sessions keep the snapshot they started with (refcounted).
 */
#ifndef PX_CONFIG_H
#define PX_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define PX_MUSTCHECK __attribute__((warn_unused_result))

#define PX_MAX_REPLICAS 16

/** Upper bound on the number of keys in the config table (sizes _source[]). */
#define PX_CONFIG_MAX_KEYS 64

typedef enum px_pool_mode {
    PX_POOL_MODE_TRANSACTION = 0,
    PX_POOL_MODE_SESSION,
} px_pool_mode_t;

typedef enum px_auth_type {
    PX_AUTH_TYPE_SCRAM = 0, /* scram-sha-256 */
    PX_AUTH_TYPE_MD5,       /* md5 */
    PX_AUTH_TYPE_TRUST,     /* trust */
} px_auth_type_t;

/** sslmode towards PostgreSQL, as libpq spells it. */
typedef enum px_server_tls_mode {
    PX_SERVER_TLS_DISABLE = 0,
    PX_SERVER_TLS_PREFER,
    PX_SERVER_TLS_REQUIRE,
    PX_SERVER_TLS_VERIFY_CA,
    PX_SERVER_TLS_VERIFY_FULL,
} px_server_tls_mode_t;

typedef enum px_log_format {
    PX_LOG_FORMAT_TEXT = 0,
    PX_LOG_FORMAT_JSON,
} px_log_format_t;

typedef struct px_hostport {
    char host[256];
    uint16_t port;
} px_hostport_t;

/** One immutable configuration snapshot. Strings are owned by the snapshot. */
typedef struct px_config {
    /* listeners */
    px_hostport_t proxy_listen;  /* PROXY_LISTEN [127.0.0.1:6432] */
    px_hostport_t admin_listen;  /* ADMIN_LISTEN [127.0.0.1:9930] */
    int workers;                 /* WORKERS [online cores], 1..64 */
    int max_prepared_statements; /* MAX_PREPARED_STATEMENTS [10000]: named statements per client */
    int worker_fill_clients;     /* WORKER_FILL_CLIENTS [32]: clients per worker before spreading */

    /* backends */
    char *postgres_server;                   /* POSTGRES_SERVER [127.0.0.1] */
    uint16_t postgres_port;                  /* POSTGRES_PORT [5432] */
    char *postgres_db;                       /* POSTGRES_DB [NULL: client's database] */
    char *postgres_user;                     /* POSTGRES_USER [NULL] */
    char *postgres_password;                 /* POSTGRES_PASSWORD [NULL], secret */
    px_hostport_t replicas[PX_MAX_REPLICAS]; /* POSTGRES_READ_REPLICAS host:port,... */
    int n_replicas;

    /* redis */
    char *redis_host;          /* REDIS_HOST [NULL] */
    uint16_t redis_port;       /* REDIS_PORT [6379] */
    char *redis_cluster_nodes; /* REDIS_CLUSTER_NODES [NULL], validated, normalized "h:p,h:p" */

    /* cache */
    bool cache_enabled;            /* CACHE_ENABLED [true] */
    uint32_t cache_default_ttl;    /* CACHE_DEFAULT_TTL seconds [300] */
    uint64_t cache_max_size;       /* CACHE_MAX_SIZE bytes [256mb] */
    uint64_t cache_max_entry_size; /* CACHE_MAX_ENTRY_SIZE bytes [1mb] */
    char *cache_warm_file;         /* CACHE_WARM_FILE [NULL]: queries run at start */
    bool cache_wal_invalidation;   /* CACHE_WAL_INVALIDATION [true]: logical decoding stream */

    /* pooling */
    px_pool_mode_t pool_mode;      /* POOL_MODE [transaction] */
    int db_pool_size;              /* DB_POOL_SIZE [20] */
    int db_max_overflow;           /* DB_MAX_OVERFLOW [40] */
    double db_pool_timeout;        /* DB_POOL_TIMEOUT seconds [30] */
    int max_client_conn;           /* MAX_CLIENT_CONN [10000] */
    double server_idle_check;      /* SERVER_CHECK_DELAY seconds [30]: pre-ping idlers older */
    double server_idle_timeout;    /* SERVER_IDLE_TIMEOUT seconds [600]: close overflow idlers */
    double server_connect_timeout; /* SERVER_CONNECT_TIMEOUT seconds [5] */
    double drain_timeout;          /* DRAIN_TIMEOUT seconds [30]: SIGTERM lets transactions end */
    double client_login_timeout;   /* CLIENT_LOGIN_TIMEOUT seconds [15]: startup+auth deadline */
    uint32_t max_message_size;     /* MAX_MESSAGE_SIZE bytes [64mb]: cap on a declared length */

    /* routing */
    double read_replica_max_lag; /* READ_REPLICA_MAX_LAG seconds [5] */

    /* admin and auth */
    char *admin_token;        /* ADMIN_TOKEN [NULL], secret */
    px_auth_type_t auth_type; /* AUTH_TYPE [scram-sha-256] */
    char *auth_file;          /* AUTH_FILE [NULL] */
    char *client_tls_cert;    /* CLIENT_TLS_CERT [NULL]: PEM certificate offered to clients */
    char *client_tls_key;     /* CLIENT_TLS_KEY [NULL]: its private key */
    bool client_tls_require;  /* CLIENT_TLS_REQUIRE [false]: refuse clients without TLS */
    int server_tls_mode;      /* SERVER_TLS_MODE [disable]: px_server_tls_mode_t */
    char *server_tls_ca;      /* SERVER_TLS_CA [NULL]: CA file for verify-ca / verify-full */

    /* logging */
    int log_level;              /* LOG_LEVEL [info]: error|warn|info|debug */
    px_log_format_t log_format; /* LOG_FORMAT [text]: text|json */

    char *config_file;                   /* the INI file this snapshot was read from, or NULL */
    int _refs;                           /* snapshot refcount, see px_config_ref/unref */
    uint8_t _source[PX_CONFIG_MAX_KEYS]; /* px_config_source_t per table row, for print */
} px_config_t;

/** Where a key's value came from, for --check-config. */
typedef enum px_config_source {
    PX_CONFIG_SOURCE_DEFAULT = 0,
    PX_CONFIG_SOURCE_FILE,
    PX_CONFIG_SOURCE_ENV,
} px_config_source_t;

/**
 * Build a snapshot from defaults, then the INI file @p path (may be NULL),
 * then the environment (@p envp, NULL-terminated "KEY=VALUE" strings; pass
 * `environ` in production, a fixed array in tests).
 * On failure returns NULL and writes a one-line reason to @p err (never a
 * secret's value).
 */
px_config_t *px_config_load(const char *path, char *const *envp, char *err,
                            size_t errlen) PX_MUSTCHECK;

/** Take / drop a reference to a snapshot; the last unref frees it. */
px_config_t *px_config_ref(px_config_t *cfg);
void px_config_unref(px_config_t *cfg);

/**
 * Print the effective configuration, one `KEY = value  # source` line per key,
 * secrets masked as `********` (unset secrets print as empty).
 */
/**
 * The application's database, where the proxy's own connections (health
 * prober, catalog, change stream, admin queries) go: POSTGRES_DB, else the
 * database named after POSTGRES_USER (as libpq defaults), else postgres.
 */
const char *px_config_app_db(const px_config_t *cfg);
void px_config_print(const px_config_t *cfg, FILE *out);

/**
 * Compare two snapshots key by key. For each key whose value differs, calls
 * @p cb with the key name and whether it can change without a restart.
 * Returns the number of differing keys that need a restart.
 */
typedef void (*px_config_diff_cb)(const char *key, bool reloadable, void *arg);
int px_config_diff(const px_config_t *old_cfg, const px_config_t *new_cfg, px_config_diff_cb cb,
                   void *arg);

/** Parse helpers, exposed for unit tests. Return false on a malformed value. */
bool px_config_parse_size(const char *s, uint64_t *out) PX_MUSTCHECK; /* 256mb, 1k, 42 */
bool px_config_parse_bool(const char *s, bool *out) PX_MUSTCHECK;
bool px_config_parse_duration(const char *s, double *out) PX_MUSTCHECK; /* 30, 30s, 500ms, 2m */
bool px_config_parse_hostport(const char *s, uint16_t default_port,
                              px_hostport_t *out) PX_MUSTCHECK;

/**
 * Parse a comma-separated "host:port,host:port" list (whitespace around items
 * tolerated; an empty or all-blank string is an empty list). Stores up to
 * @p max items into @p out (which may be NULL to only validate and count) and
 * the count into @p n. Returns false on an empty item, a malformed item or
 * more than @p max items. Ports are 0..65535 here; each key checks its own
 * range. Used for POSTGRES_READ_REPLICAS and to split REDIS_CLUSTER_NODES.
 */
bool px_config_parse_hostport_list(const char *s, uint16_t default_port, px_hostport_t *out,
                                   int max, int *n) PX_MUSTCHECK;

/**
 * Print every key with its default, its bounds and whether it can change on
 * reload, one line each (for `--help`).
 */
void px_config_help(FILE *out);

#endif
