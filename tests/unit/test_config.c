/*
 * Unit tests for proxy/config.c: the value parsers, the INI reader, the
 * precedence of defaults < file < environment, the error messages (which
 * must name the key and never show a secret), print, diff and refcounting.
 * Each test builds its own files and environment arrays; nothing reads the
 * real environment.
 */
#include "px_config.h"

#include <CUnit/Basic.h>
#include <CUnit/CUnit.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SECRET_PW    "pw-Zq8Xv1-do-not-leak"
#define SECRET_TOKEN "tok-Kf3Lm9-do-not-leak"

/* A minimal valid environment: without AUTH_FILE these two are required. */
static char *base_env[] = {"POSTGRES_USER=app", "POSTGRES_PASSWORD=" SECRET_PW, NULL};

/* Writes @p text to a fresh temporary file; the caller unlinks @p path. */
static void write_ini(const char *text, char path[64])
{
    int fd;

    strcpy(path, "/tmp/px_test_config_XXXXXX");
    fd = mkstemp(path);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_FATAL(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    close(fd);
}

/* Loads @p text (NULL: no file) with @p env; err gets the reason on failure. */
static px_config_t *load_text(const char *text, char **env, char *err, size_t errlen)
{
    char path[64];
    px_config_t *cfg;

    err[0] = '\0';
    if (text == NULL)
        return px_config_load(NULL, env, err, errlen);
    write_ini(text, path);
    cfg = px_config_load(path, env, err, errlen);
    unlink(path);
    return cfg;
}

/* px_config_print into a heap string the caller frees. */
static char *print_to_string(const px_config_t *cfg)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);

    CU_ASSERT_FATAL(f != NULL);
    px_config_print(cfg, f);
    fclose(f);
    return buf;
}

/* The printed line for @p key, copied into @p line, or "" when absent. */
static void printed_line(const char *printed, const char *key, char *line, size_t len)
{
    size_t klen = strlen(key);
    const char *p = printed;

    line[0] = '\0';
    while (p != NULL && *p) {
        const char *nl = strchr(p, '\n');
        size_t n = nl != NULL ? (size_t)(nl - p) : strlen(p);
        if (n > klen && strncmp(p, key, klen) == 0 && p[klen] == ' ') {
            snprintf(line, len, "%.*s", (int)n, p);
            return;
        }
        p = nl != NULL ? nl + 1 : NULL;
    }
}

/* ---- parsers ------------------------------------------------------------ */

static void test_parse_size_accepts_units_case_insensitively(void)
{
    uint64_t v = 0;

    CU_ASSERT(px_config_parse_size("42", &v) && v == 42);
    CU_ASSERT(px_config_parse_size("0", &v) && v == 0);
    CU_ASSERT(px_config_parse_size("64k", &v) && v == 64 * 1024);
    CU_ASSERT(px_config_parse_size("64KB", &v) && v == 64 * 1024);
    CU_ASSERT(px_config_parse_size("256mb", &v) && v == 256ULL << 20);
    CU_ASSERT(px_config_parse_size("1MB", &v) && v == 1ULL << 20);
    CU_ASSERT(px_config_parse_size("1g", &v) && v == 1ULL << 30);
    CU_ASSERT(px_config_parse_size("2Tb", &v) && v == 2ULL << 40);
    CU_ASSERT(px_config_parse_size("100b", &v) && v == 100);
    CU_ASSERT(px_config_parse_size(" 8 mb ", &v) && v == 8ULL << 20);
}

static void test_parse_size_rejects_garbage_and_overflow(void)
{
    static const char *const bad[] = {"",
                                      "   ",
                                      "mb",
                                      "12x",
                                      "-1",
                                      "1.5mb",
                                      "1e3",
                                      "0x10",
                                      "1mbb",
                                      "1 m b",
                                      "k1",
                                      "18446744073709551616",
                                      "17179869184g"};
    uint64_t v;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CU_ASSERT_FALSE(px_config_parse_size(bad[i], &v));
}

static void test_parse_bool_accepts_all_spellings(void)
{
    static const char *const yes[] = {"true", "TRUE", "1", "yes", "Yes", "on", " on "};
    static const char *const no[] = {"false", "False", "0", "no", "NO", "off"};
    bool b;

    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        b = false;
        CU_ASSERT(px_config_parse_bool(yes[i], &b) && b);
    }
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
        b = true;
        CU_ASSERT(px_config_parse_bool(no[i], &b) && !b);
    }
    CU_ASSERT_FALSE(px_config_parse_bool("", &b));
    CU_ASSERT_FALSE(px_config_parse_bool("maybe", &b));
    CU_ASSERT_FALSE(px_config_parse_bool("2", &b));
    CU_ASSERT_FALSE(px_config_parse_bool("truee", &b));
}

static void test_parse_duration_accepts_units_and_fractions(void)
{
    double d = -1;

    CU_ASSERT(px_config_parse_duration("30", &d) && d == 30.0);
    CU_ASSERT(px_config_parse_duration("30s", &d) && d == 30.0);
    CU_ASSERT(px_config_parse_duration("500ms", &d) && d == 0.5);
    CU_ASSERT(px_config_parse_duration("2m", &d) && d == 120.0);
    CU_ASSERT(px_config_parse_duration("1h", &d) && d == 3600.0);
    CU_ASSERT(px_config_parse_duration("1d", &d) && d == 86400.0);
    CU_ASSERT(px_config_parse_duration("0.25", &d) && d == 0.25);
    CU_ASSERT(px_config_parse_duration("1.5 S", &d) && d == 1.5);
    CU_ASSERT(px_config_parse_duration(".5", &d) && d == 0.5);
    CU_ASSERT(px_config_parse_duration("0", &d) && d == 0.0);
}

static void test_parse_duration_rejects_garbage(void)
{
    static const char *const bad[] = {"",
                                      "s",
                                      "-1",
                                      "5x",
                                      "nan",
                                      "inf",
                                      "1..2",
                                      "1.2.3",
                                      "1e3",
                                      "0x10",
                                      "10 sec",
                                      ".",
                                      "1234567890123456"};
    double d;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CU_ASSERT_FALSE(px_config_parse_duration(bad[i], &d));
}

static void test_parse_hostport_accepts_names_ipv4_ipv6_and_default_port(void)
{
    px_hostport_t hp;

    CU_ASSERT_FATAL(px_config_parse_hostport("db.internal:6543", 5432, &hp));
    CU_ASSERT_STRING_EQUAL(hp.host, "db.internal");
    CU_ASSERT_EQUAL(hp.port, 6543);
    CU_ASSERT_FATAL(px_config_parse_hostport("10.0.0.1", 5432, &hp));
    CU_ASSERT_STRING_EQUAL(hp.host, "10.0.0.1");
    CU_ASSERT_EQUAL(hp.port, 5432);
    CU_ASSERT_FATAL(px_config_parse_hostport("[::1]:6432", 5432, &hp));
    CU_ASSERT_STRING_EQUAL(hp.host, "::1");
    CU_ASSERT_EQUAL(hp.port, 6432);
    CU_ASSERT_FATAL(px_config_parse_hostport("[fe80::1%eth0]", 5432, &hp));
    CU_ASSERT_STRING_EQUAL(hp.host, "fe80::1%eth0");
    CU_ASSERT_EQUAL(hp.port, 5432);
    CU_ASSERT_FATAL(px_config_parse_hostport("::1", 7000, &hp));
    CU_ASSERT_STRING_EQUAL(hp.host, "::1");
    CU_ASSERT_EQUAL(hp.port, 7000);
    CU_ASSERT_FATAL(px_config_parse_hostport("  localhost:0 ", 1, &hp));
    CU_ASSERT_STRING_EQUAL(hp.host, "localhost");
    CU_ASSERT_EQUAL(hp.port, 0);
}

static void test_parse_hostport_rejects_malformed(void)
{
    static const char *const bad[] = {
        "",       ":5432", "host:", "host:65536",  "host:abc", "host:-1",    "[::1",    "[]:1",
        "[::1]x", "a b:1", "h,x:1", "host:123456", "[::1]:",   "host:1:2:z", "ho/st:1", "[g::1]:5"};
    px_hostport_t hp;
    char longhost[300];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CU_ASSERT_FALSE(px_config_parse_hostport(bad[i], 5432, &hp));
    memset(longhost, 'a', 256);
    strcpy(longhost + 256, ":1");
    CU_ASSERT_FALSE(px_config_parse_hostport(longhost, 5432, &hp));
}

static void test_parse_hostport_list_tolerates_whitespace_and_bounds_count(void)
{
    px_hostport_t hp[4];
    int n = -1;

    CU_ASSERT_FATAL(px_config_parse_hostport_list(" r1:5433 , r2 ,[::1]:5 ", 5432, hp, 4, &n));
    CU_ASSERT_EQUAL_FATAL(n, 3);
    CU_ASSERT_STRING_EQUAL(hp[0].host, "r1");
    CU_ASSERT_EQUAL(hp[0].port, 5433);
    CU_ASSERT_STRING_EQUAL(hp[1].host, "r2");
    CU_ASSERT_EQUAL(hp[1].port, 5432);
    CU_ASSERT_STRING_EQUAL(hp[2].host, "::1");
    CU_ASSERT_EQUAL(hp[2].port, 5);
    CU_ASSERT(px_config_parse_hostport_list("   ", 5432, hp, 4, &n) && n == 0);
    CU_ASSERT(px_config_parse_hostport_list("a,b,c", 5432, NULL, 3, &n) && n == 3);
    CU_ASSERT_FALSE(px_config_parse_hostport_list("a,b,c,d,e", 5432, hp, 4, &n));
    CU_ASSERT_FALSE(px_config_parse_hostport_list("a,,b", 5432, hp, 4, &n));
    CU_ASSERT_FALSE(px_config_parse_hostport_list("a,b,", 5432, hp, 4, &n));
    CU_ASSERT_FALSE(px_config_parse_hostport_list("a:x,b", 5432, hp, 4, &n));
}

/* ---- loading ------------------------------------------------------------ */

static void test_load_without_file_gives_documented_defaults(void)
{
    char err[256];
    px_config_t *cfg = load_text(NULL, base_env, err, sizeof(err));
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);

    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_STRING_EQUAL(cfg->proxy_listen.host, "127.0.0.1");
    CU_ASSERT_EQUAL(cfg->proxy_listen.port, 6432);
    CU_ASSERT_STRING_EQUAL(cfg->admin_listen.host, "127.0.0.1");
    CU_ASSERT_EQUAL(cfg->admin_listen.port, 9930);
    CU_ASSERT_EQUAL(cfg->workers, cpus < 1 ? 1 : cpus > 64 ? 64 : cpus);
    CU_ASSERT_STRING_EQUAL(cfg->postgres_server, "127.0.0.1");
    CU_ASSERT_EQUAL(cfg->postgres_port, 5432);
    CU_ASSERT_PTR_NULL(cfg->postgres_db);
    CU_ASSERT_STRING_EQUAL(cfg->postgres_user, "app");
    CU_ASSERT_STRING_EQUAL(cfg->postgres_password, SECRET_PW);
    CU_ASSERT_EQUAL(cfg->n_replicas, 0);
    CU_ASSERT_PTR_NULL(cfg->redis_host);
    CU_ASSERT_EQUAL(cfg->redis_port, 6379);
    CU_ASSERT_PTR_NULL(cfg->redis_cluster_nodes);
    CU_ASSERT_TRUE(cfg->cache_enabled);
    CU_ASSERT_EQUAL(cfg->cache_default_ttl, 300);
    CU_ASSERT_EQUAL(cfg->cache_max_size, 256ULL << 20);
    CU_ASSERT_EQUAL(cfg->cache_max_entry_size, 1ULL << 20);
    CU_ASSERT_EQUAL(cfg->pool_mode, PX_POOL_MODE_TRANSACTION);
    CU_ASSERT_EQUAL(cfg->db_pool_size, 20);
    CU_ASSERT_EQUAL(cfg->db_max_overflow, 40);
    CU_ASSERT_EQUAL(cfg->db_pool_timeout, 30.0);
    CU_ASSERT_EQUAL(cfg->max_client_conn, 10000);
    CU_ASSERT_EQUAL(cfg->server_idle_check, 30.0);
    CU_ASSERT_EQUAL(cfg->server_idle_timeout, 600.0);
    CU_ASSERT_EQUAL(cfg->server_connect_timeout, 5.0);
    CU_ASSERT_EQUAL(cfg->client_login_timeout, 15.0);
    CU_ASSERT_EQUAL(cfg->max_message_size, 64u << 20);
    CU_ASSERT_EQUAL(cfg->read_replica_max_lag, 5.0);
    CU_ASSERT_PTR_NULL(cfg->admin_token);
    CU_ASSERT_EQUAL(cfg->auth_type, PX_AUTH_TYPE_SCRAM);
    CU_ASSERT_PTR_NULL(cfg->auth_file);
    CU_ASSERT_EQUAL(cfg->log_level, 2 /* info */);
    CU_ASSERT_EQUAL(cfg->log_format, PX_LOG_FORMAT_TEXT);
    CU_ASSERT_PTR_NULL(cfg->config_file);
    px_config_unref(cfg);
}

static void test_file_syntax_comments_sections_quotes_and_key_case(void)
{
    char err[256];
    px_config_t *cfg = load_text("\xef\xbb\xbf# leading comment\n"
                                 "; another comment\n"
                                 "\n"
                                 "[fastnext]\n"
                                 "db_pool_size = 7\n"
                                 "DB_MAX_OVERFLOW=3   # inline comment\n"
                                 "Cache_Max_Size = 64MB ; inline comment\n"
                                 "postgres_db = \"my db # not a comment\"  # comment\n"
                                 "AUTH_FILE = \"/etc/a \\\"q\\\" \\\\ b\"\n"
                                 "pool_mode = SESSION\r\n"
                                 "log_format=json\n"
                                 "  cache_enabled  =  off  \n"
                                 "postgres_read_replicas = r1:5433, r2\n"
                                 "redis_cluster_nodes = n1:7000 , [::1]:7001,n3\n"
                                 "cache_default_ttl = 5m\n"
                                 "server_connect_timeout = 250ms\n"
                                 "[other]  # sections are ignored\n"
                                 "proxy_listen = [::]:7432\n",
                                 base_env, err, sizeof(err));

    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_EQUAL(cfg->db_pool_size, 7);
    CU_ASSERT_EQUAL(cfg->db_max_overflow, 3);
    CU_ASSERT_EQUAL(cfg->cache_max_size, 64ULL << 20);
    CU_ASSERT_STRING_EQUAL(cfg->postgres_db, "my db # not a comment");
    CU_ASSERT_STRING_EQUAL(cfg->auth_file, "/etc/a \"q\" \\ b");
    CU_ASSERT_EQUAL(cfg->pool_mode, PX_POOL_MODE_SESSION);
    CU_ASSERT_EQUAL(cfg->log_format, PX_LOG_FORMAT_JSON);
    CU_ASSERT_FALSE(cfg->cache_enabled);
    CU_ASSERT_EQUAL_FATAL(cfg->n_replicas, 2);
    CU_ASSERT_STRING_EQUAL(cfg->replicas[0].host, "r1");
    CU_ASSERT_EQUAL(cfg->replicas[0].port, 5433);
    CU_ASSERT_STRING_EQUAL(cfg->replicas[1].host, "r2");
    CU_ASSERT_EQUAL(cfg->replicas[1].port, 5432);
    CU_ASSERT_STRING_EQUAL(cfg->redis_cluster_nodes, "n1:7000,[::1]:7001,n3:6379");
    CU_ASSERT_EQUAL(cfg->cache_default_ttl, 300);
    CU_ASSERT_EQUAL(cfg->server_connect_timeout, 0.25);
    CU_ASSERT_STRING_EQUAL(cfg->proxy_listen.host, "::");
    CU_ASSERT_EQUAL(cfg->proxy_listen.port, 7432);
    CU_ASSERT_PTR_NOT_NULL(cfg->config_file);
    px_config_unref(cfg);
}

static void test_env_overrides_file_and_empty_env_counts_as_unset(void)
{
    char err[256];
    char *env[] = {"POSTGRES_USER=app",
                   "POSTGRES_PASSWORD=" SECRET_PW,
                   "DB_POOL_SIZE=9",
                   "DB_MAX_OVERFLOW=",
                   "LOG_LEVEL=debug",
                   "NOT_A_KEY=whatever",
                   "db_max_overflow=999", /* env names are exact: ignored */
                   NULL};
    px_config_t *cfg = load_text("DB_POOL_SIZE = 5\n"
                                 "DB_MAX_OVERFLOW = 11\n"
                                 "MAX_CLIENT_CONN = 77\n",
                                 env, err, sizeof(err));
    char *printed, line[256];

    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_EQUAL(cfg->db_pool_size, 9);     /* env wins */
    CU_ASSERT_EQUAL(cfg->db_max_overflow, 11); /* empty env: file value stays */
    CU_ASSERT_EQUAL(cfg->max_client_conn, 77); /* file only */
    CU_ASSERT_EQUAL(cfg->log_level, 3);        /* env only */
    printed = print_to_string(cfg);
    printed_line(printed, "DB_POOL_SIZE", line, sizeof(line));
    CU_ASSERT_STRING_EQUAL(line, "DB_POOL_SIZE = 9  # env");
    printed_line(printed, "DB_MAX_OVERFLOW", line, sizeof(line));
    CU_ASSERT_STRING_EQUAL(line, "DB_MAX_OVERFLOW = 11  # file");
    printed_line(printed, "DB_POOL_TIMEOUT", line, sizeof(line));
    CU_ASSERT_STRING_EQUAL(line, "DB_POOL_TIMEOUT = 30  # default");
    free(printed);
    px_config_unref(cfg);
}

static void test_empty_file_value_resets_key_to_default(void)
{
    char err[256];
    px_config_t *cfg = load_text("DB_POOL_SIZE = 5\n"
                                 "DB_POOL_SIZE =\n"
                                 "POSTGRES_DB = x\n"
                                 "POSTGRES_DB = \"\"\n",
                                 base_env, err, sizeof(err));

    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_EQUAL(cfg->db_pool_size, 20);
    CU_ASSERT_PTR_NULL(cfg->postgres_db);
    px_config_unref(cfg);
}

static void test_later_file_line_wins_for_repeated_key(void)
{
    char err[256];
    px_config_t *cfg =
        load_text("DB_POOL_SIZE = 5\nDB_POOL_SIZE = 6\n", base_env, err, sizeof(err));

    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_EQUAL(cfg->db_pool_size, 6);
    px_config_unref(cfg);
}

static void test_unknown_key_error_names_key_and_line(void)
{
    char err[256];
    px_config_t *cfg = load_text("# comment\n"
                                 "DB_POOL_SIZE = 5\n"
                                 "\n"
                                 "db_pool_sise = 6\n",
                                 base_env, err, sizeof(err));

    CU_ASSERT_PTR_NULL(cfg);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, ":4: unknown key 'db_pool_sise'"));
}

static void test_malformed_lines_report_line_number(void)
{
    static const char *const files[] = {
        "DB_POOL_SIZE = 5\njust some words\n",       /* no '=' */
        "DB_POOL_SIZE = 5\n= 5\n",                   /* no key */
        "DB_POOL_SIZE = 5\nPOSTGRES_DB = \"open\n",  /* unterminated quote */
        "DB_POOL_SIZE = 5\nPOSTGRES_DB = \"a\" b\n", /* text after quote */
        "DB_POOL_SIZE = 5\n[fastnext\n",             /* bad section */
        "DB_POOL_SIZE = 5\nDB POOL = 1\n",           /* bad key */
    };
    char err[256];

    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        px_config_t *cfg = load_text(files[i], base_env, err, sizeof(err));
        CU_ASSERT_PTR_NULL(cfg);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, ":2: "));
        px_config_unref(cfg);
    }
}

static void test_missing_file_error_names_path(void)
{
    char err[256];
    px_config_t *cfg = px_config_load("/nonexistent/px.ini", base_env, err, sizeof(err));

    CU_ASSERT_PTR_NULL(cfg);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "/nonexistent/px.ini"));
}

/* Each case: one env assignment, and two fragments its error must contain. */
static void test_bad_values_are_rejected_naming_key_and_value(void)
{
    static const struct {
        const char *assign, *want1, *want2;
    } cases[] = {
        {"DB_POOL_SIZE=0", "DB_POOL_SIZE", "'0' is out of range 1..10000"},
        {"DB_POOL_SIZE=ten", "DB_POOL_SIZE", "'ten'"},
        {"DB_MAX_OVERFLOW=-1", "DB_MAX_OVERFLOW", "'-1' is out of range 0..10000"},
        {"WORKERS=65", "WORKERS", "'65'"},
        {"WORKERS=0", "WORKERS", "out of range 1..64"},
        {"POSTGRES_PORT=70000", "POSTGRES_PORT", "'70000'"},
        {"CACHE_ENABLED=maybe", "CACHE_ENABLED", "'maybe'"},
        {"CACHE_MAX_SIZE=12parsecs", "CACHE_MAX_SIZE", "'12parsecs'"},
        {"CACHE_MAX_SIZE=2tb", "CACHE_MAX_SIZE", "out of range 1kb..1tb"},
        {"CACHE_DEFAULT_TTL=1.5", "CACHE_DEFAULT_TTL", "whole number of seconds"},
        {"CACHE_DEFAULT_TTL=0", "CACHE_DEFAULT_TTL", "'0' is out of range"},
        {"DB_POOL_TIMEOUT=soon", "DB_POOL_TIMEOUT", "'soon'"},
        {"DB_POOL_TIMEOUT=2d", "DB_POOL_TIMEOUT", "out of range 0s..86400s"},
        {"POOL_MODE=statement", "POOL_MODE", "expected transaction|session"},
        {"AUTH_TYPE=password", "AUTH_TYPE", "expected scram-sha-256|md5|trust"},
        {"LOG_LEVEL=verbose", "LOG_LEVEL", "expected error|warn|info|debug"},
        {"LOG_FORMAT=xml", "LOG_FORMAT", "'xml'"},
        {"PROXY_LISTEN=host:port", "PROXY_LISTEN", "'host:port'"},
        {"POSTGRES_READ_REPLICAS=r1:0", "POSTGRES_READ_REPLICAS", "port 0 out of range"},
        {"POSTGRES_READ_REPLICAS=a,,b", "POSTGRES_READ_REPLICAS", "'a,,b'"},
        {"POSTGRES_READ_REPLICAS=a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q", "POSTGRES_READ_REPLICAS",
         "17 addresses, at most 16"},
        {"REDIS_CLUSTER_NODES=n1:7000,n2:bad", "REDIS_CLUSTER_NODES", "'n1:7000,n2:bad'"},
        {"MAX_MESSAGE_SIZE=512", "MAX_MESSAGE_SIZE", "out of range 1kb"},
    };
    char err[256];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *env[] = {"POSTGRES_USER=app", "POSTGRES_PASSWORD=" SECRET_PW, (char *)cases[i].assign,
                       NULL};
        px_config_t *cfg = load_text(NULL, env, err, sizeof(err));
        CU_ASSERT_PTR_NULL(cfg);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, "environment: "));
        CU_ASSERT_PTR_NOT_NULL(strstr(err, cases[i].want1));
        if (strstr(err, cases[i].want2) == NULL)
            fprintf(stderr, "\n  case %s: got \"%s\"\n", cases[i].assign, err);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, cases[i].want2));
        CU_ASSERT_PTR_NULL(strstr(err, SECRET_PW));
        px_config_unref(cfg);
    }
}

static void test_bad_value_in_file_reports_line(void)
{
    char err[256];
    px_config_t *cfg =
        load_text("\n\nDB_POOL_TIMEOUT = 3 fortnights\n", base_env, err, sizeof(err));

    CU_ASSERT_PTR_NULL(cfg);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, ":3: DB_POOL_TIMEOUT: invalid duration '3 fortnights'"));
}

static void test_cross_key_rules_are_enforced(void)
{
    char err[256];
    px_config_t *cfg;
    char *env_big_entry[] = {"POSTGRES_USER=app", "POSTGRES_PASSWORD=x", "CACHE_MAX_SIZE=1mb",
                             "CACHE_MAX_ENTRY_SIZE=2mb", NULL};
    char *env_no_user[] = {"POSTGRES_PASSWORD=x", NULL};
    char *env_no_password[] = {"POSTGRES_USER=app", NULL};
    char *env_md5_no_password[] = {"POSTGRES_USER=app", "AUTH_TYPE=md5", NULL};
    char *env_trust_no_password[] = {"POSTGRES_USER=app", "AUTH_TYPE=trust", NULL};
    char *env_auth_file[] = {"AUTH_FILE=/etc/userlist.txt", NULL};

    cfg = load_text(NULL, env_big_entry, err, sizeof(err));
    CU_ASSERT_PTR_NULL(cfg);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "CACHE_MAX_ENTRY_SIZE (2mb) must not exceed "
                                       "CACHE_MAX_SIZE (1mb)"));
    cfg = load_text(NULL, env_no_user, err, sizeof(err));
    CU_ASSERT_PTR_NULL(cfg);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "POSTGRES_USER must be set"));
    cfg = load_text(NULL, env_no_password, err, sizeof(err));
    CU_ASSERT_PTR_NULL(cfg);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "POSTGRES_PASSWORD must be set"));
    cfg = load_text(NULL, env_md5_no_password, err, sizeof(err));
    CU_ASSERT_PTR_NULL(cfg);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "AUTH_TYPE is md5"));

    cfg = load_text(NULL, env_trust_no_password, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL(cfg);
    px_config_unref(cfg);
    cfg = load_text(NULL, env_auth_file, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL(cfg);
    px_config_unref(cfg);
}

/* ---- secrets ------------------------------------------------------------ */

static void test_secrets_never_appear_in_errors(void)
{
    char err[512];
    px_config_t *cfg;
    /* a file whose broken line holds the secret, in each way a line can break */
    static const char *const files[] = {
        "POSTGRES_PASSWORD = \"" SECRET_PW "\n",
        "POSTGRES_PASSWORD = \"" SECRET_PW "\" trailing\n",
        SECRET_PW "\n",
        "POSTGRES_PASSWORD = " SECRET_PW "\nADMIN_TOKEN = " SECRET_TOKEN "\nDB_POOL_SIZE = 0\n",
        "POSTGRES_PASSWORD: " SECRET_PW "\n",
        "postgres_pass = " SECRET_PW "\n",
        "ADMIN_TOKEN = \"" SECRET_TOKEN "\\\"\n",
    };
    char *env_secrets_then_bad[] = {"POSTGRES_USER=app", "POSTGRES_PASSWORD=" SECRET_PW,
                                    "ADMIN_TOKEN=" SECRET_TOKEN, "LOG_LEVEL=verbose", NULL};
    char *env_secrets_cross_key[] = {"POSTGRES_PASSWORD=" SECRET_PW, "ADMIN_TOKEN=" SECRET_TOKEN,
                                     NULL};

    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        cfg = load_text(files[i], base_env, err, sizeof(err));
        CU_ASSERT_PTR_NULL(cfg);
        CU_ASSERT(err[0] != '\0');
        CU_ASSERT_PTR_NULL(strstr(err, "Zq8Xv1"));
        CU_ASSERT_PTR_NULL(strstr(err, "Kf3Lm9"));
        px_config_unref(cfg);
    }
    /* secrets set, then a failure on another key or on a cross-key rule */
    cfg = load_text(NULL, env_secrets_then_bad, err, sizeof(err));
    CU_ASSERT_PTR_NULL(cfg);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "LOG_LEVEL"));
    CU_ASSERT_PTR_NULL(strstr(err, "Zq8Xv1"));
    CU_ASSERT_PTR_NULL(strstr(err, "Kf3Lm9"));
    cfg = load_text(NULL, env_secrets_cross_key, err, sizeof(err));
    CU_ASSERT_PTR_NULL(cfg);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "POSTGRES_USER"));
    CU_ASSERT_PTR_NULL(strstr(err, "Zq8Xv1"));
    CU_ASSERT_PTR_NULL(strstr(err, "Kf3Lm9"));
}

static void test_print_masks_secrets_and_shows_sources(void)
{
    char err[256];
    char *env[] = {"POSTGRES_USER=app", "POSTGRES_PASSWORD=" SECRET_PW, "ADMIN_TOKEN=" SECRET_TOKEN,
                   NULL};
    px_config_t *cfg = load_text("DB_POOL_SIZE = 8\n", env, err, sizeof(err));
    px_config_t *nosecret;
    char *printed, line[256];
    char *env_trust[] = {"POSTGRES_USER=app", "AUTH_TYPE=trust", NULL};

    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    printed = print_to_string(cfg);
    CU_ASSERT_PTR_NULL(strstr(printed, "Zq8Xv1"));
    CU_ASSERT_PTR_NULL(strstr(printed, "Kf3Lm9"));
    printed_line(printed, "POSTGRES_PASSWORD", line, sizeof(line));
    CU_ASSERT_STRING_EQUAL(line, "POSTGRES_PASSWORD = ********  # env");
    printed_line(printed, "ADMIN_TOKEN", line, sizeof(line));
    CU_ASSERT_STRING_EQUAL(line, "ADMIN_TOKEN = ********  # env");
    printed_line(printed, "DB_POOL_SIZE", line, sizeof(line));
    CU_ASSERT_STRING_EQUAL(line, "DB_POOL_SIZE = 8  # file");
    printed_line(printed, "CACHE_MAX_SIZE", line, sizeof(line));
    CU_ASSERT_STRING_EQUAL(line, "CACHE_MAX_SIZE = 256mb  # default");
    printed_line(printed, "PROXY_LISTEN", line, sizeof(line));
    CU_ASSERT_STRING_EQUAL(line, "PROXY_LISTEN = 127.0.0.1:6432  # default");
    printed_line(printed, "AUTH_TYPE", line, sizeof(line));
    CU_ASSERT_STRING_EQUAL(line, "AUTH_TYPE = scram-sha-256  # default");
    free(printed);
    px_config_unref(cfg);

    nosecret = load_text(NULL, env_trust, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(nosecret);
    printed = print_to_string(nosecret);
    printed_line(printed, "POSTGRES_PASSWORD", line, sizeof(line));
    CU_ASSERT_STRING_EQUAL(line, "POSTGRES_PASSWORD =   # default");
    free(printed);
    px_config_unref(nosecret);
}

static void count_diff_cb(const char *key, bool reloadable, void *arg)
{
    int *counts = arg;

    counts[reloadable ? 0 : 1]++;
    if (strcmp(key, "PROXY_LISTEN") == 0 || strcmp(key, "POOL_MODE") == 0 ||
        strcmp(key, "WORKERS") == 0 || strcmp(key, "REDIS_HOST") == 0 ||
        strcmp(key, "POSTGRES_SERVER") == 0)
        CU_ASSERT_FALSE(reloadable);
    if (strcmp(key, "DB_POOL_SIZE") == 0 || strcmp(key, "LOG_LEVEL") == 0 ||
        strcmp(key, "POSTGRES_READ_REPLICAS") == 0 || strcmp(key, "ADMIN_TOKEN") == 0 ||
        strcmp(key, "CACHE_MAX_SIZE") == 0)
        CU_ASSERT_TRUE(reloadable);
}

static void test_printed_config_reloads_to_an_identical_snapshot(void)
{
    char err[256], path[64];
    char *env[] = {"POSTGRES_USER=app", "POSTGRES_PASSWORD=" SECRET_PW, "ADMIN_TOKEN=" SECRET_TOKEN,
                   NULL};
    px_config_t *a = load_text("POSTGRES_DB = \"odd # name; \"\n"
                               "POSTGRES_READ_REPLICAS = r1, [::1]:5433\n"
                               "REDIS_CLUSTER_NODES = n1:7000,n2\n"
                               "SERVER_CONNECT_TIMEOUT = 1500ms\n"
                               "CACHE_MAX_ENTRY_SIZE = 1000\n"
                               "PROXY_LISTEN = [::1]:0\n",
                               env, err, sizeof(err));
    px_config_t *b;
    char *printed;
    int counts[2] = {0, 0};

    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    printed = print_to_string(a);
    write_ini(printed, path);
    free(printed);
    /* secrets print masked, so the environment supplies them again */
    b = px_config_load(path, env, err, sizeof(err));
    unlink(path);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT_EQUAL(px_config_diff(a, b, count_diff_cb, counts), 0);
    CU_ASSERT_EQUAL(counts[0] + counts[1], 0);
    CU_ASSERT_STRING_EQUAL(b->postgres_db, "odd # name; ");
    px_config_unref(a);
    px_config_unref(b);
}

/* ---- diff, help, refcount ------------------------------------------------ */

static void test_diff_separates_reloadable_from_restart_keys(void)
{
    char err[256];
    char *env_a[] = {"POSTGRES_USER=app", "POSTGRES_PASSWORD=x", "WORKERS=2", NULL};
    char *env_b[] = {"POSTGRES_USER=app",
                     "POSTGRES_PASSWORD=x",
                     "CACHE_ENABLED=false",
                     "DB_POOL_SIZE=21",
                     "LOG_LEVEL=debug",
                     "POSTGRES_READ_REPLICAS=r1",
                     "ADMIN_TOKEN=t",
                     "CACHE_MAX_SIZE=512mb",
                     "PROXY_LISTEN=127.0.0.1:6433",
                     "POOL_MODE=session",
                     "WORKERS=3",
                     "REDIS_HOST=redis",
                     "POSTGRES_SERVER=db",
                     NULL};
    px_config_t *a = load_text(NULL, env_a, err, sizeof(err));
    px_config_t *a2 = load_text(NULL, env_a, err, sizeof(err));
    px_config_t *b = load_text(NULL, env_b, err, sizeof(err));
    int counts[2] = {0, 0};

    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT_EQUAL(px_config_diff(a, a2, count_diff_cb, counts), 0);
    CU_ASSERT_EQUAL(counts[0] + counts[1], 0);

    /* 6 reloadable and 5 restart-only keys differ */
    CU_ASSERT_EQUAL(px_config_diff(a, b, count_diff_cb, counts), 5);
    CU_ASSERT_EQUAL(counts[0], 6);
    CU_ASSERT_EQUAL(counts[1], 5);
    CU_ASSERT_EQUAL(px_config_diff(a, b, NULL, NULL), 5);
    px_config_unref(a);
    px_config_unref(a2);
    px_config_unref(b);
}

static void test_diff_reports_changed_secret_by_name_only(void)
{
    char err[256];
    char *env_a[] = {"POSTGRES_USER=app", "POSTGRES_PASSWORD=old", NULL};
    char *env_b[] = {"POSTGRES_USER=app", "POSTGRES_PASSWORD=new", NULL};
    px_config_t *a = load_text(NULL, env_a, err, sizeof(err));
    px_config_t *b = load_text(NULL, env_b, err, sizeof(err));
    int counts[2] = {0, 0};

    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT_EQUAL(px_config_diff(a, b, count_diff_cb, counts), 0);
    CU_ASSERT_EQUAL(counts[0], 1);
    px_config_unref(a);
    px_config_unref(b);
}

static void test_help_marks_every_restart_key(void)
{
    static const char *const restart[] = {"PROXY_LISTEN",    "ADMIN_LISTEN",        "WORKERS",
                                          "POSTGRES_SERVER", "POSTGRES_PORT",       "REDIS_HOST",
                                          "REDIS_PORT",      "REDIS_CLUSTER_NODES", "POOL_MODE"};
    static const char *const reload[] = {"DB_POOL_SIZE", "CACHE_MAX_SIZE",
                                         "LOG_LEVEL",    "ADMIN_TOKEN",
                                         "AUTH_FILE",    "POSTGRES_READ_REPLICAS"};
    char *buf = NULL, line[512], key[64];
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);

    CU_ASSERT_FATAL(f != NULL);
    px_config_help(f);
    fclose(f);
    for (size_t i = 0; i < sizeof(restart) / sizeof(restart[0]); i++) {
        snprintf(key, sizeof(key), "  %s", restart[i]);
        printed_line(buf, key, line, sizeof(line));
        CU_ASSERT_PTR_NOT_NULL(strstr(line, "restart required"));
    }
    for (size_t i = 0; i < sizeof(reload) / sizeof(reload[0]); i++) {
        snprintf(key, sizeof(key), "  %s", reload[i]);
        printed_line(buf, key, line, sizeof(line));
        CU_ASSERT(line[0] != '\0');
        CU_ASSERT_PTR_NULL(strstr(line, "restart required"));
    }
    free(buf);
}

static void test_ref_returns_same_snapshot_and_last_unref_frees(void)
{
    char err[256];
    px_config_t *cfg = load_text(NULL, base_env, err, sizeof(err));

    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_EQUAL(cfg->_refs, 1);
    CU_ASSERT_PTR_EQUAL(px_config_ref(cfg), cfg);
    CU_ASSERT_EQUAL(cfg->_refs, 2);
    px_config_unref(cfg);
    CU_ASSERT_EQUAL(cfg->_refs, 1);
    px_config_unref(cfg); /* frees; LeakSanitizer checks nothing is left */
    CU_ASSERT_PTR_NULL(px_config_ref(NULL));
    px_config_unref(NULL);
}

static void *ref_unref_thread(void *arg)
{
    px_config_t *cfg = arg;

    for (int i = 0; i < 20000; i++) {
        px_config_t *mine = px_config_ref(cfg);
        if (mine->db_pool_size != 20)
            return (void *)1;
        px_config_unref(mine);
    }
    return NULL;
}

static void test_refcount_survives_concurrent_ref_unref(void)
{
    char err[256];
    px_config_t *cfg = load_text(NULL, base_env, err, sizeof(err));
    pthread_t th[4];

    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    for (int i = 0; i < 4; i++)
        CU_ASSERT_FATAL(pthread_create(&th[i], NULL, ref_unref_thread, cfg) == 0);
    for (int i = 0; i < 4; i++) {
        void *rc;
        pthread_join(th[i], &rc);
        CU_ASSERT_PTR_NULL(rc);
    }
    CU_ASSERT_EQUAL(cfg->_refs, 1);
    px_config_unref(cfg);
}

int main(void)
{
    static const struct {
        const char *name;
        CU_TestFunc fn;
    } tests[] = {
#define T(fn) {#fn, fn}
        T(test_parse_size_accepts_units_case_insensitively),
        T(test_parse_size_rejects_garbage_and_overflow),
        T(test_parse_bool_accepts_all_spellings),
        T(test_parse_duration_accepts_units_and_fractions),
        T(test_parse_duration_rejects_garbage),
        T(test_parse_hostport_accepts_names_ipv4_ipv6_and_default_port),
        T(test_parse_hostport_rejects_malformed),
        T(test_parse_hostport_list_tolerates_whitespace_and_bounds_count),
        T(test_load_without_file_gives_documented_defaults),
        T(test_file_syntax_comments_sections_quotes_and_key_case),
        T(test_env_overrides_file_and_empty_env_counts_as_unset),
        T(test_empty_file_value_resets_key_to_default),
        T(test_later_file_line_wins_for_repeated_key),
        T(test_unknown_key_error_names_key_and_line),
        T(test_malformed_lines_report_line_number),
        T(test_missing_file_error_names_path),
        T(test_bad_values_are_rejected_naming_key_and_value),
        T(test_bad_value_in_file_reports_line),
        T(test_cross_key_rules_are_enforced),
        T(test_secrets_never_appear_in_errors),
        T(test_print_masks_secrets_and_shows_sources),
        T(test_printed_config_reloads_to_an_identical_snapshot),
        T(test_diff_separates_reloadable_from_restart_keys),
        T(test_diff_reports_changed_secret_by_name_only),
        T(test_help_marks_every_restart_key),
        T(test_ref_returns_same_snapshot_and_last_unref_frees),
        T(test_refcount_survives_concurrent_ref_unref),
#undef T
    };
    CU_pSuite suite;
    unsigned failed;

    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    suite = CU_add_suite("config", NULL, NULL);
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
