/*
 * Statement classification: read-only / write / transaction / session /
 * unknown, with the real PostgreSQL grammar (libpg_query), for routing and
 * caching (SPEC §4, §5). Pure functions over (pointer, length): no sockets,
 * loops or logging.
 *
 * Pipeline for one text:
 *  1. lex_key(): one lexical pass that builds the cache key (comments dropped,
 *     whitespace collapsed, literals replaced by one byte naming their kind
 *     when every statement starts with SELECT/WITH/VALUES/TABLE/INSERT/
 *     UPDATE/DELETE/MERGE), collects the fastnext: hints from comments and
 *     estimates how deep the parse tree can get.
 *  2. The thread's cache, keyed by that key: a hit is a memcpy.
 *  3. On a miss: pg_query_parse() (JSON output — measured 4-5x faster than
 *     its protobuf output plus protobuf-c unpacking), jtok_parse() into a flat
 *     token array, and walk() over the tree, then the verdict is cached.
 *  4. keys_fill(): the values of the key predicates, read from this text's
 *     literals (the lexer records where each one is) as the verdict's key
 *     templates say: a verdict shared by "id = 1" and "id = 2" holds "the
 *     first literal", never a value.
 *
 * Invariants:
 *  - Only the bytes [sql, sql + len) are read; the parser gets a private
 *    NUL-terminated copy. A NUL inside the text makes it UNKNOWN (the server
 *    would read a different statement than we parsed).
 *  - Anything not proven read-only is not READ. Unparseable, too long, too
 *    deep, unknown statement types and functions of unknown volatility go to
 *    the primary.
 *  - A literal value never changes a verdict for the statement kinds whose
 *    literals are normalized away (checked per statement; EXPLAIN, SET and
 *    the rest keep their literals in the key), so sharing one cache entry
 *    between "... = 1" and "... = 2" is exact, not a heuristic.
 *  - libpg_query's output recursion can overflow the stack on left-deep
 *    operator chains (SELECT 1+1+...+1 with ~10^4 terms), which bison does
 *    not bound. The lexer bounds nesting plus chain length (max_depth) before
 *    the parser ever sees the text; the JSON tokenizer is iterative and the
 *    walker has its own depth limit.
 *  - Verdicts depend on the volatility table: each cache entry records the
 *    catalog generation it was computed under and is recomputed when a new
 *    table is published.
 *  - A key template depends only on the shape of the text (the cache key),
 *    never on a literal's value, and keys_fill() runs on cached and fresh
 *    verdicts alike, so both give the same keys for the same text.
 *    (libpg_query's JSON drops the value of negative integer constants — it
 *    prints "ival":{} — so values always come from the text, not the tree.)
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem */
#endif
#include <ctype.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include <pg_query.h>

#include "px_classify.h"
#include "sqlscan.h"

/* ---- limits and configuration ------------------------------------------------ */

#define CLS_DEFAULT_ENTRIES   65536u
#define CLS_DEFAULT_BYTES     (16u << 20)
#define CLS_DEFAULT_MAX_TEXT  (128u << 10)
#define CLS_DEFAULT_MAX_DEPTH 1000u
#define CLS_JSON_MAX_DEPTH    8192u      /* JSON container nesting the tokenizer accepts */
#define CLS_WALK_MAX_DEPTH    6000u      /* walker recursion limit (JSON levels) */
#define CLS_MAX_TOKENS        (8u << 20) /* JSON tokens per parse */
#define CLS_MAX_SCOPE         256u       /* CTE names visible at once */
#define CLS_NAME_MAX          256u       /* unescaped identifier buffer */
#define CLS_MAX_LITS          256u       /* literal positions the lexer records per text */
#define CLS_KEY_MAX_DEPTH     64u        /* nested AND levels searched for key predicates */

static pthread_mutex_t g_cfg_lock = PTHREAD_MUTEX_INITIALIZER;
static px_classify_config_t g_cfg = {CLS_DEFAULT_ENTRIES, CLS_DEFAULT_BYTES, CLS_DEFAULT_MAX_TEXT,
                                     CLS_DEFAULT_MAX_DEPTH};
static _Atomic uint32_t g_max_text = CLS_DEFAULT_MAX_TEXT;
static _Atomic uint32_t g_max_depth = CLS_DEFAULT_MAX_DEPTH;

static uint64_t g_seed; /* hash seed, set once in cls_init() */

/* ---- hashing ---------------------------------------------------------------- */

static inline uint64_t cls_mix(uint64_t a, uint64_t b)
{
    __uint128_t r = (__uint128_t)a * b;
    return (uint64_t)r ^ (uint64_t)(r >> 64);
}

static inline uint64_t cls_load64(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

/* A wyhash-style 64-bit hash: 16 bytes per multiply. Seeded per process. */
static uint64_t cls_hash(const void *data, size_t n)
{
    const unsigned char *p = data;
    const uint64_t k0 = 0xa0761d6478bd642full, k1 = 0xe7037ed1a0b428dbull,
                   k2 = 0x8ebc6af09c88c6e3ull;
    uint64_t h = g_seed ^ cls_mix(n ^ k0, k1);
    while (n >= 16) {
        h = cls_mix(cls_load64(p) ^ k1, cls_load64(p + 8) ^ h);
        p += 16;
        n -= 16;
    }
    uint64_t a = 0, b = 0;
    if (n >= 8) {
        a = cls_load64(p);
        b = cls_load64(p + n - 8);
    } else if (n > 0) {
        a = ((uint64_t)p[0] << 16) | ((uint64_t)p[n >> 1] << 8) | p[n - 1];
        b = n;
    }
    return cls_mix(a ^ k2 ^ h, b ^ k1);
}

/* ---- built-in function lists ---------------------------------------------------- */

typedef enum fn_cat {
    FN_NONE = 0, /* not in any list */
    FN_SAFE,     /* read-only, cacheable: trusted when no catalog says otherwise */
    FN_NOCACHE,  /* read-only but its value changes (time, randomness, session, server) */
    FN_WRITE,    /* side effects, or session state that lives on the primary */
    FN_PIN,      /* side effects that outlive the transaction (session locks, set_config) */
} fn_cat_t;

typedef struct fn_entry {
    const char *name;
    uint8_t cat;
} fn_entry_t;

static fn_entry_t g_fns[] = {
    /* side effects → primary */
    {"nextval", FN_WRITE},
    {"setval", FN_WRITE},
    {"currval", FN_WRITE}, /* reads the session's own nextval: that ran on the primary */
    {"lastval", FN_WRITE},
    {"setseed", FN_WRITE},
    {"txid_current", FN_WRITE},
    {"pg_current_xact_id", FN_WRITE},
    {"pg_notify", FN_WRITE},
    {"pg_current_wal_lsn", FN_WRITE}, /* fails during recovery */
    {"pg_current_wal_insert_lsn", FN_WRITE},
    {"pg_current_wal_flush_lsn", FN_WRITE},
    {"pg_switch_wal", FN_WRITE},
    {"pg_create_restore_point", FN_WRITE},
    {"pg_backup_start", FN_WRITE},
    {"pg_backup_stop", FN_WRITE},
    {"pg_start_backup", FN_WRITE},
    {"pg_stop_backup", FN_WRITE},
    {"pg_reload_conf", FN_WRITE},
    {"pg_rotate_logfile", FN_WRITE},
    {"pg_terminate_backend", FN_WRITE},
    {"pg_cancel_backend", FN_WRITE},
    {"pg_promote", FN_WRITE},
    {"pg_wal_replay_pause", FN_WRITE},
    {"pg_wal_replay_resume", FN_WRITE},
    {"pg_logical_emit_message", FN_WRITE},
    {"pg_create_physical_replication_slot", FN_WRITE},
    {"pg_create_logical_replication_slot", FN_WRITE},
    {"pg_drop_replication_slot", FN_WRITE},
    {"pg_copy_physical_replication_slot", FN_WRITE},
    {"pg_copy_logical_replication_slot", FN_WRITE},
    {"pg_replication_slot_advance", FN_WRITE},
    {"pg_logical_slot_get_changes", FN_WRITE},
    {"pg_logical_slot_get_binary_changes", FN_WRITE},
    {"pg_stat_statements_reset", FN_WRITE},
    {"pg_file_write", FN_WRITE},
    {"pg_file_rename", FN_WRITE},
    {"pg_file_unlink", FN_WRITE},
    {"pg_file_sync", FN_WRITE},
    {"pg_import_system_collations", FN_WRITE},
    {"pg_export_snapshot", FN_WRITE},
    {"pg_log_backend_memory_contexts", FN_WRITE},
    {"pg_advisory_xact_lock", FN_WRITE},
    {"pg_advisory_xact_lock_shared", FN_WRITE},
    {"pg_try_advisory_xact_lock", FN_WRITE},
    {"pg_try_advisory_xact_lock_shared", FN_WRITE},
    {"pg_advisory_unlock", FN_WRITE},
    {"pg_advisory_unlock_shared", FN_WRITE},
    {"pg_advisory_unlock_all", FN_WRITE},
    {"loread", FN_WRITE},
    {"lowrite", FN_WRITE},
    {"pg_advisory_lock", FN_PIN},
    {"pg_advisory_lock_shared", FN_PIN},
    {"pg_try_advisory_lock", FN_PIN},
    {"pg_try_advisory_lock_shared", FN_PIN},
    {"set_config", FN_PIN}, /* is_local is a literal: normalized away, so always pin */
    /* read-only, value changes: replica yes, cache no */
    {"now", FN_NOCACHE},
    {"statement_timestamp", FN_NOCACHE},
    {"transaction_timestamp", FN_NOCACHE},
    {"clock_timestamp", FN_NOCACHE},
    {"timeofday", FN_NOCACHE},
    {"age", FN_NOCACHE}, /* age(ts) is relative to today */
    {"random", FN_NOCACHE},
    {"random_normal", FN_NOCACHE},
    {"gen_random_uuid", FN_NOCACHE},
    {"uuid_generate_v1", FN_NOCACHE},
    {"uuid_generate_v1mc", FN_NOCACHE},
    {"uuid_generate_v4", FN_NOCACHE},
    {"pg_sleep", FN_NOCACHE}, /* not a write; slow, but harmless on a replica */
    {"pg_sleep_for", FN_NOCACHE},
    {"pg_sleep_until", FN_NOCACHE},
    {"current_setting", FN_NOCACHE},
    {"current_schema", FN_NOCACHE},
    {"current_schemas", FN_NOCACHE},
    {"current_user", FN_NOCACHE},
    {"session_user", FN_NOCACHE},
    {"current_query", FN_NOCACHE},
    {"pg_backend_pid", FN_NOCACHE},
    {"pg_blocking_pids", FN_NOCACHE},
    {"pg_safe_snapshot_blocking_pids", FN_NOCACHE},
    {"inet_client_addr", FN_NOCACHE},
    {"inet_client_port", FN_NOCACHE},
    {"inet_server_addr", FN_NOCACHE},
    {"inet_server_port", FN_NOCACHE},
    {"pg_is_in_recovery", FN_NOCACHE},
    {"pg_is_wal_replay_paused", FN_NOCACHE},
    {"pg_get_wal_replay_pause_state", FN_NOCACHE},
    {"pg_last_wal_receive_lsn", FN_NOCACHE},
    {"pg_last_wal_replay_lsn", FN_NOCACHE},
    {"pg_last_xact_replay_timestamp", FN_NOCACHE},
    {"txid_current_if_assigned", FN_NOCACHE},
    {"pg_current_xact_id_if_assigned", FN_NOCACHE},
    {"txid_current_snapshot", FN_NOCACHE},
    {"pg_current_snapshot", FN_NOCACHE},
    {"txid_status", FN_NOCACHE},
    {"pg_xact_status", FN_NOCACHE},
    {"pg_postmaster_start_time", FN_NOCACHE},
    {"pg_conf_load_time", FN_NOCACHE},
    {"version", FN_NOCACHE},
    {"pg_my_temp_schema", FN_NOCACHE},
    {"pg_trigger_depth", FN_NOCACHE},
    {"pg_relation_size", FN_NOCACHE},
    {"pg_total_relation_size", FN_NOCACHE},
    {"pg_table_size", FN_NOCACHE},
    {"pg_indexes_size", FN_NOCACHE},
    {"pg_database_size", FN_NOCACHE},
    {"pg_tablespace_size", FN_NOCACHE},
    {"pg_ls_dir", FN_NOCACHE},
    {"pg_read_file", FN_NOCACHE},
    {"pg_read_binary_file", FN_NOCACHE},
    {"pg_stat_file", FN_NOCACHE},
    {"pg_control_checkpoint", FN_NOCACHE},
    {"pg_control_system", FN_NOCACHE},
    {"pg_control_recovery", FN_NOCACHE},
    /* common read-only functions, trusted before a catalog is published */
    {"count", FN_SAFE},
    {"sum", FN_SAFE},
    {"avg", FN_SAFE},
    {"min", FN_SAFE},
    {"max", FN_SAFE},
    {"array_agg", FN_SAFE},
    {"string_agg", FN_SAFE},
    {"json_agg", FN_SAFE},
    {"jsonb_agg", FN_SAFE},
    {"json_object_agg", FN_SAFE},
    {"jsonb_object_agg", FN_SAFE},
    {"bool_and", FN_SAFE},
    {"bool_or", FN_SAFE},
    {"every", FN_SAFE},
    {"bit_and", FN_SAFE},
    {"bit_or", FN_SAFE},
    {"stddev", FN_SAFE},
    {"stddev_pop", FN_SAFE},
    {"stddev_samp", FN_SAFE},
    {"variance", FN_SAFE},
    {"var_pop", FN_SAFE},
    {"var_samp", FN_SAFE},
    {"corr", FN_SAFE},
    {"percentile_cont", FN_SAFE},
    {"percentile_disc", FN_SAFE},
    {"mode", FN_SAFE},
    {"row_number", FN_SAFE},
    {"rank", FN_SAFE},
    {"dense_rank", FN_SAFE},
    {"percent_rank", FN_SAFE},
    {"cume_dist", FN_SAFE},
    {"ntile", FN_SAFE},
    {"lag", FN_SAFE},
    {"lead", FN_SAFE},
    {"first_value", FN_SAFE},
    {"last_value", FN_SAFE},
    {"nth_value", FN_SAFE},
    {"lower", FN_SAFE},
    {"upper", FN_SAFE},
    {"initcap", FN_SAFE},
    {"length", FN_SAFE},
    {"char_length", FN_SAFE},
    {"character_length", FN_SAFE},
    {"octet_length", FN_SAFE},
    {"bit_length", FN_SAFE},
    {"substring", FN_SAFE},
    {"substr", FN_SAFE},
    {"position", FN_SAFE},
    {"strpos", FN_SAFE},
    {"btrim", FN_SAFE},
    {"ltrim", FN_SAFE},
    {"rtrim", FN_SAFE},
    {"lpad", FN_SAFE},
    {"rpad", FN_SAFE},
    {"left", FN_SAFE},
    {"right", FN_SAFE},
    {"concat", FN_SAFE},
    {"concat_ws", FN_SAFE},
    {"replace", FN_SAFE},
    {"translate", FN_SAFE},
    {"split_part", FN_SAFE},
    {"repeat", FN_SAFE},
    {"reverse", FN_SAFE},
    {"overlay", FN_SAFE},
    {"regexp_replace", FN_SAFE},
    {"regexp_match", FN_SAFE},
    {"regexp_matches", FN_SAFE},
    {"regexp_split_to_array", FN_SAFE},
    {"regexp_split_to_table", FN_SAFE},
    {"starts_with", FN_SAFE},
    {"format", FN_SAFE},
    {"quote_ident", FN_SAFE},
    {"quote_literal", FN_SAFE},
    {"quote_nullable", FN_SAFE},
    {"md5", FN_SAFE},
    {"sha256", FN_SAFE},
    {"encode", FN_SAFE},
    {"decode", FN_SAFE},
    {"to_hex", FN_SAFE},
    {"ascii", FN_SAFE},
    {"chr", FN_SAFE},
    {"like_escape", FN_SAFE},
    {"similar_to_escape", FN_SAFE},
    {"pg_collation_for", FN_SAFE},
    {"normalize", FN_SAFE},
    {"is_normalized", FN_SAFE},
    {"abs", FN_SAFE},
    {"ceil", FN_SAFE},
    {"ceiling", FN_SAFE},
    {"floor", FN_SAFE},
    {"round", FN_SAFE},
    {"trunc", FN_SAFE},
    {"sign", FN_SAFE},
    {"mod", FN_SAFE},
    {"div", FN_SAFE},
    {"power", FN_SAFE},
    {"sqrt", FN_SAFE},
    {"exp", FN_SAFE},
    {"ln", FN_SAFE},
    {"log", FN_SAFE},
    {"width_bucket", FN_SAFE},
    {"date_trunc", FN_SAFE},
    {"date_part", FN_SAFE},
    {"date_bin", FN_SAFE},
    {"extract", FN_SAFE},
    {"timezone", FN_SAFE},
    {"overlaps", FN_SAFE},
    {"to_char", FN_SAFE},
    {"to_date", FN_SAFE},
    {"to_timestamp", FN_SAFE},
    {"to_number", FN_SAFE},
    {"make_date", FN_SAFE},
    {"make_time", FN_SAFE},
    {"make_timestamp", FN_SAFE},
    {"make_timestamptz", FN_SAFE},
    {"make_interval", FN_SAFE},
    {"justify_days", FN_SAFE},
    {"justify_hours", FN_SAFE},
    {"justify_interval", FN_SAFE},
    {"isfinite", FN_SAFE},
    {"array_length", FN_SAFE},
    {"array_upper", FN_SAFE},
    {"array_lower", FN_SAFE},
    {"array_dims", FN_SAFE},
    {"array_ndims", FN_SAFE},
    {"array_position", FN_SAFE},
    {"array_positions", FN_SAFE},
    {"array_remove", FN_SAFE},
    {"array_replace", FN_SAFE},
    {"array_append", FN_SAFE},
    {"array_prepend", FN_SAFE},
    {"array_cat", FN_SAFE},
    {"array_to_string", FN_SAFE},
    {"string_to_array", FN_SAFE},
    {"cardinality", FN_SAFE},
    {"unnest", FN_SAFE},
    {"generate_series", FN_SAFE},
    {"generate_subscripts", FN_SAFE},
    {"num_nonnulls", FN_SAFE},
    {"num_nulls", FN_SAFE},
    {"json_build_object", FN_SAFE},
    {"jsonb_build_object", FN_SAFE},
    {"json_build_array", FN_SAFE},
    {"jsonb_build_array", FN_SAFE},
    {"to_json", FN_SAFE},
    {"to_jsonb", FN_SAFE},
    {"row_to_json", FN_SAFE},
    {"array_to_json", FN_SAFE},
    {"json_array_length", FN_SAFE},
    {"jsonb_array_length", FN_SAFE},
    {"json_extract_path", FN_SAFE},
    {"jsonb_extract_path", FN_SAFE},
    {"json_extract_path_text", FN_SAFE},
    {"jsonb_extract_path_text", FN_SAFE},
    {"json_array_elements", FN_SAFE},
    {"jsonb_array_elements", FN_SAFE},
    {"json_array_elements_text", FN_SAFE},
    {"jsonb_array_elements_text", FN_SAFE},
    {"json_each", FN_SAFE},
    {"jsonb_each", FN_SAFE},
    {"json_each_text", FN_SAFE},
    {"jsonb_each_text", FN_SAFE},
    {"json_object_keys", FN_SAFE},
    {"jsonb_object_keys", FN_SAFE},
    {"jsonb_set", FN_SAFE},
    {"jsonb_insert", FN_SAFE},
    {"jsonb_strip_nulls", FN_SAFE},
    {"jsonb_pretty", FN_SAFE},
    {"json_typeof", FN_SAFE},
    {"jsonb_typeof", FN_SAFE},
    {"jsonb_path_query", FN_SAFE},
    {"jsonb_path_query_array", FN_SAFE},
    {"jsonb_path_query_first", FN_SAFE},
    {"jsonb_path_exists", FN_SAFE},
    {"jsonb_path_match", FN_SAFE},
    {"to_tsvector", FN_SAFE},
    {"to_tsquery", FN_SAFE},
    {"plainto_tsquery", FN_SAFE},
    {"phraseto_tsquery", FN_SAFE},
    {"websearch_to_tsquery", FN_SAFE},
    {"ts_rank", FN_SAFE},
    {"ts_rank_cd", FN_SAFE},
    {"ts_headline", FN_SAFE},
    {"setweight", FN_SAFE},
    {"current_database", FN_SAFE},
    {"pg_typeof", FN_SAFE},
    {"format_type", FN_SAFE},
    {"pg_get_userbyid", FN_SAFE},
    {"obj_description", FN_SAFE},
    {"col_description", FN_SAFE},
    {"pg_get_constraintdef", FN_SAFE},
    {"pg_get_indexdef", FN_SAFE},
    {"pg_get_viewdef", FN_SAFE},
    {"pg_get_expr", FN_SAFE},
    {"pg_table_is_visible", FN_SAFE},
    {"has_table_privilege", FN_SAFE},
    {"has_schema_privilege", FN_SAFE},
    {"has_database_privilege", FN_SAFE},
    {"has_column_privilege", FN_SAFE},
    {"has_function_privilege", FN_SAFE},
    {"pg_has_role", FN_SAFE},
    {"to_regclass", FN_SAFE},
    {"to_regtype", FN_SAFE},
    {"to_regproc", FN_SAFE},
    {"pg_size_pretty", FN_SAFE},
    {"pg_wal_lsn_diff", FN_SAFE},
};

/* Name prefixes: whole families of functions. */
static const struct {
    const char *prefix;
    uint8_t cat;
} g_fn_prefixes[] = {
    {"lo_", FN_WRITE},                    /* large objects */
    {"dblink", FN_WRITE},                 /* remote statements: anything goes */
    {"pg_stat_reset", FN_WRITE},          /* before pg_stat_ below */
    {"pg_replication_origin_", FN_WRITE}, /* session setup and progress */
    {"binary_upgrade_", FN_WRITE},
    {"pg_stat_get_", FN_NOCACHE},
    {"pg_ls_", FN_NOCACHE},
};

static int fn_entry_cmp(const void *a, const void *b)
{
    return strcmp(((const fn_entry_t *)a)->name, ((const fn_entry_t *)b)->name);
}

static fn_cat_t fn_builtin(const char *name)
{
    fn_entry_t key = {name, 0};
    const fn_entry_t *e =
        bsearch(&key, g_fns, sizeof g_fns / sizeof g_fns[0], sizeof g_fns[0], fn_entry_cmp);
    if (e != NULL)
        return (fn_cat_t)e->cat;
    for (size_t i = 0; i < sizeof g_fn_prefixes / sizeof g_fn_prefixes[0]; i++)
        if (strncmp(name, g_fn_prefixes[i].prefix, strlen(g_fn_prefixes[i].prefix)) == 0)
            return (fn_cat_t)g_fn_prefixes[i].cat;
    return FN_NONE;
}

/* ---- character classes -------------------------------------------------------- */

enum {
    C_OTHER = 0,
    C_SPACE,
    C_IDENT, /* identifier start: letters, '_', bytes >= 0x80 */
    C_DIGIT,
    C_DOT,
    C_QUOTE,  /* ' */
    C_DQUOTE, /* " */
    C_DOLLAR,
    C_OP, /* operator characters, ':' included (::) */
    C_OPEN,
    C_CLOSE,
    C_COMMA,
    C_SEMI,
    C_CTRL,
};

static uint8_t g_cclass[256];
static uint8_t g_identc[256]; /* identifier continuation: letters, digits, '_', '$', >= 0x80 */

static pthread_once_t g_init_once = PTHREAD_ONCE_INIT;

static void cls_init(void)
{
    for (int c = 0; c < 256; c++) {
        uint8_t k = C_OTHER;
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f')
            k = C_SPACE; /* PostgreSQL 15's scanner: \v is not whitespace */
        else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c >= 0x80)
            k = C_IDENT;
        else if (c >= '0' && c <= '9')
            k = C_DIGIT;
        else if (c == '.')
            k = C_DOT;
        else if (c == '\'')
            k = C_QUOTE;
        else if (c == '"')
            k = C_DQUOTE;
        else if (c == '$')
            k = C_DOLLAR;
        else if (c != 0 && strchr("+-*/<>=~!@#%^&|`?:", c) != NULL)
            k = C_OP;
        else if (c == '(' || c == '[')
            k = C_OPEN;
        else if (c == ')' || c == ']')
            k = C_CLOSE;
        else if (c == ',')
            k = C_COMMA;
        else if (c == ';')
            k = C_SEMI;
        else if (c < 0x20 || c == 0x7f)
            k = C_CTRL;
        g_cclass[c] = k;
        g_identc[c] = (uint8_t)(k == C_IDENT || k == C_DIGIT || c == '$');
    }
    qsort(g_fns, sizeof g_fns / sizeof g_fns[0], sizeof g_fns[0], fn_entry_cmp);
    uint64_t seed = 0;
    if (getrandom(&seed, sizeof seed, GRND_NONBLOCK) != (ssize_t)sizeof seed) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        seed = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ull ^ (uint64_t)(uintptr_t)&seed;
    }
    g_seed = seed;
}

/* ---- lexer: cache key, hints, depth estimate ------------------------------------ */

/* Placeholder bytes for normalized literals. They cannot occur in a key
 * otherwise: control characters outside literals disable normalization. */
#define PH_INT    '\x01'
#define PH_FLOAT  '\x02'
#define PH_STRING '\x03'
#define PH_BITS   '\x04'
#define PH_TIME   '\x05' /* 'now', 'today', 'tomorrow', 'yesterday': not cacheable */

enum { LEX_OK = 0, LEX_RESTART, LEX_DEEP };
enum { LVL_PAREN = 0, LVL_CASE = 1 };

typedef struct lvl_save {
    uint32_t chain, setop;
    uint8_t kind;
} lvl_save_t;

/* Where a literal is: the token [start, ...) and its content [cs, ce) (the
 * digits of a number, the text between the quotes of a string). */
typedef struct lit {
    uint32_t start, cs, ce;
    uint8_t ph; /* PH_* */
} lit_t;

typedef struct lex {
    const unsigned char *s;
    size_t n;
    char *out;        /* key being built; capacity >= n */
    size_t o;         /* bytes in out */
    bool normalize;   /* replace literals by placeholders */
    bool need_space;  /* whitespace or a comment since the last token */
    bool stmt_start;  /* the next word starts a statement */
    bool last_op;     /* the previous token was an operator character */
    bool unsafe;      /* a character that forbids normalization was seen */
    bool bad;         /* an unterminated literal or comment: key = raw text */
    uint32_t hints;   /* PX_CLS_F_HINT_* */
    int32_t ttl;      /* from fastnext:cache ttl=N, -1 none */
    uint32_t lvl;     /* open parentheses / brackets / CASEs */
    uint32_t chain;   /* operators since the last separator at this level */
    uint32_t setop;   /* UNION/INTERSECT/EXCEPT/JOIN at this level */
    uint32_t above;   /* sum of chain + setop over the enclosing levels */
    uint32_t max_lvl; /* capacity of stack */
    uint32_t limit;   /* max_depth */
    uint8_t top_kind; /* LVL_* of the current level */
    lvl_save_t *stack;
    lit_t *lits;    /* the first CLS_MAX_LITS literals, in text order */
    uint32_t nlits; /* literals seen (may exceed CLS_MAX_LITS) */
} lex_t;

static inline bool lex_deep(const lex_t *L)
{
    return L->lvl + L->above + L->chain + L->setop > L->limit;
}

/* Whitespace (or a comment) before a token becomes one space in the key,
 * except next to ( ) [ ] , ; where no two tokens can merge: "id = 1 ;" and
 * "id = 1;" share a key. Keeping the space everywhere else keeps the key
 * injective: equal keys mean equal token sequences. */
static inline bool lex_punct(unsigned char c)
{
    return c == '(' || c == ')' || c == '[' || c == ']' || c == ',' || c == ';';
}

static inline void lex_sep(lex_t *L, unsigned char next)
{
    if (L->need_space) {
        if (L->o > 1 && !lex_punct((unsigned char)L->out[L->o - 1]) && !lex_punct(next))
            L->out[L->o++] = ' ';
        L->need_space = false;
    }
}

static inline void lex_emit(lex_t *L, const unsigned char *p, size_t k)
{
    lex_sep(L, p[0]);
    memcpy(L->out + L->o, p, k);
    L->o += k;
}

static inline void lex_emit_c(lex_t *L, unsigned char c)
{
    lex_sep(L, c);
    L->out[L->o++] = (char)c;
}

static int lex_push(lex_t *L, uint8_t kind)
{
    if (L->lvl >= L->max_lvl)
        return LEX_DEEP;
    L->stack[L->lvl] = (lvl_save_t){L->chain, L->setop, L->top_kind};
    L->above += L->chain + L->setop;
    L->lvl++;
    L->chain = L->setop = 0;
    L->top_kind = kind;
    return lex_deep(L) ? LEX_DEEP : LEX_OK;
}

static void lex_pop(lex_t *L)
{
    if (L->lvl == 0) {
        L->chain = 0;
        return;
    }
    L->lvl--;
    lvl_save_t sv = L->stack[L->lvl];
    L->above -= sv.chain + sv.setop;
    L->chain = sv.chain;
    L->setop = sv.setop;
    L->top_kind = sv.kind;
}

static bool ci_eq(const unsigned char *p, size_t n, const char *lit)
{
    size_t k = strlen(lit);
    if (n != k)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((p[i] | 0x20) != (unsigned char)lit[i])
            return false;
    return true;
}

/* Parse the directives after each "fastnext:" in one comment body. */
static void lex_hints(lex_t *L, const unsigned char *p, size_t n)
{
    for (size_t i = 0; i + 9 <= n; i++) {
        if ((p[i] | 0x20) != 'f' || strncasecmp((const char *)p + i, "fastnext:", 9) != 0)
            continue;
        size_t j = i + 9;
        while (j < n && (p[j] == ' ' || p[j] == '\t'))
            j++; /* "fastnext: primary" too (pgbench reads ":primary" as a variable) */
        size_t w = j;
        while (w < n && (isalpha(p[w]) || p[w] == '_'))
            w++;
        if (w < n && (isalnum(p[w]) || p[w] == '_'))
            continue;
        const unsigned char *word = p + j;
        size_t wl = w - j;
        if (ci_eq(word, wl, "primary")) {
            L->hints |= PX_CLS_F_HINT_PRIMARY;
        } else if (ci_eq(word, wl, "replica")) {
            L->hints |= PX_CLS_F_HINT_REPLICA;
        } else if (ci_eq(word, wl, "nocache")) {
            L->hints |= PX_CLS_F_HINT_NOCACHE;
        } else if (ci_eq(word, wl, "cache")) {
            L->hints |= PX_CLS_F_HINT_CACHE;
            size_t k = w;
            while (k < n && isspace(p[k]))
                k++;
            if (k + 3 <= n && strncasecmp((const char *)p + k, "ttl", 3) == 0) {
                k += 3;
                while (k < n && isspace(p[k]))
                    k++;
                if (k < n && p[k] == '=') {
                    k++;
                    while (k < n && isspace(p[k]))
                        k++;
                    int64_t v = 0;
                    size_t d = k;
                    while (d < n && isdigit(p[d]) && v <= 315360000) /* cap: ten years */
                        v = v * 10 + (p[d++] - '0');
                    if (d > k)
                        L->ttl = (int32_t)(v > 315360000 ? 315360000 : v);
                }
            }
        }
        i = w > i ? w - 1 : i;
    }
}

static inline bool lex_time_literal(const unsigned char *p, size_t n)
{
    while (n > 0 && (*p == ' ' || *p == '\t'))
        p++, n--;
    while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
        n--;
    return ci_eq(p, n, "now") || ci_eq(p, n, "today") || ci_eq(p, n, "tomorrow") ||
           ci_eq(p, n, "yesterday");
}

/* End of a '...' literal whose content starts at @p k (index after the
 * closing quote), or SIZE_MAX when unterminated. */
static size_t lex_squote_end(const unsigned char *s, size_t n, size_t k, bool backslash)
{
    for (;;) {
        if (k >= n)
            return SIZE_MAX;
        if (!backslash) {
            const unsigned char *q = memchr(s + k, '\'', n - k);
            if (q == NULL)
                return SIZE_MAX;
            k = (size_t)(q - s);
        }
        unsigned char c = s[k];
        if (c == '\\' && backslash) {
            k += 2;
        } else if (c == '\'') {
            if (k + 1 < n && s[k + 1] == '\'')
                k += 2;
            else
                return k + 1;
        } else {
            k++;
        }
    }
}

/* A literal token [start, end) with content [cs, ce). */
static void lex_literal(lex_t *L, size_t start, size_t end, size_t cs, size_t ce, char ph)
{
    if (ce >= cs && ce - cs <= 16 && ph == PH_STRING && lex_time_literal(L->s + cs, ce - cs))
        ph = PH_TIME;
    if (L->nlits < CLS_MAX_LITS)
        L->lits[L->nlits] = (lit_t){(uint32_t)start, (uint32_t)cs, (uint32_t)ce, (uint8_t)ph};
    L->nlits++;
    if (L->normalize)
        lex_emit_c(L, (unsigned char)ph);
    else
        lex_emit(L, L->s + start, end - start);
    L->last_op = false;
}

typedef enum kw_class {
    KW_OTHER = 0, /* any other word: ends an operator chain */
    KW_CHAIN,     /* binary/prefix keyword operators that build left-deep trees */
    KW_SETOP,     /* UNION, INTERSECT, EXCEPT, JOIN */
    KW_CASE,
    KW_END,
} kw_class_t;

static kw_class_t lex_kw(const unsigned char *p, size_t n)
{
    if (n < 2 || n > 9)
        return KW_OTHER;
    switch (p[0] | 0x20) {
    case 'a':
        return ci_eq(p, n, "at") ? KW_CHAIN : KW_OTHER;
    case 'b':
        return ci_eq(p, n, "between") ? KW_CHAIN : KW_OTHER;
    case 'c':
        return ci_eq(p, n, "case") ? KW_CASE : ci_eq(p, n, "collate") ? KW_CHAIN : KW_OTHER;
    case 'e':
        return ci_eq(p, n, "end") ? KW_END : ci_eq(p, n, "except") ? KW_SETOP : KW_OTHER;
    case 'i':
        if (ci_eq(p, n, "intersect"))
            return KW_SETOP;
        return (ci_eq(p, n, "is") || ci_eq(p, n, "in") || ci_eq(p, n, "ilike") ||
                ci_eq(p, n, "isnull"))
                   ? KW_CHAIN
                   : KW_OTHER;
    case 'j':
        return ci_eq(p, n, "join") ? KW_SETOP : KW_OTHER;
    case 'l':
        return ci_eq(p, n, "like") ? KW_CHAIN : KW_OTHER;
    case 'n':
        return (ci_eq(p, n, "not") || ci_eq(p, n, "notnull")) ? KW_CHAIN : KW_OTHER;
    case 'o':
        return (ci_eq(p, n, "operator") || ci_eq(p, n, "overlaps")) ? KW_CHAIN : KW_OTHER;
    case 's':
        return ci_eq(p, n, "similar") ? KW_CHAIN : KW_OTHER;
    case 'u':
        return ci_eq(p, n, "union") ? KW_SETOP : KW_OTHER;
    default:
        return KW_OTHER;
    }
}

/* Statements whose literals never change the verdict. */
static bool lex_normalizable(const unsigned char *p, size_t n)
{
    return ci_eq(p, n, "select") || ci_eq(p, n, "with") || ci_eq(p, n, "values") ||
           ci_eq(p, n, "table") || ci_eq(p, n, "insert") || ci_eq(p, n, "update") ||
           ci_eq(p, n, "delete") || ci_eq(p, n, "merge");
}

/* A token that is not a word ends the "statement start" state; in normalize
 * mode a statement that starts with anything but a normalizable keyword
 * forces a verbatim pass. */
static inline int lex_not_word(lex_t *L)
{
    if (L->stmt_start) {
        L->stmt_start = false;
        if (L->normalize)
            return LEX_RESTART;
    }
    return LEX_OK;
}

static int lex_word(lex_t *L, size_t i, size_t j)
{
    const unsigned char *p = L->s + i;
    size_t n = j - i;
    if (L->stmt_start) {
        L->stmt_start = false;
        if (L->normalize && !lex_normalizable(p, n))
            return LEX_RESTART;
    }
    switch (lex_kw(p, n)) {
    case KW_CHAIN:
        L->chain++;
        break;
    case KW_SETOP:
        L->setop++;
        break;
    case KW_CASE: {
        lex_emit(L, p, n);
        L->last_op = false;
        return lex_push(L, LVL_CASE);
    }
    case KW_END:
        if (L->lvl > 0 && L->top_kind == LVL_CASE)
            lex_pop(L);
        else
            L->chain = 0;
        break;
    default:
        L->chain = 0;
        break;
    }
    lex_emit(L, p, n);
    L->last_op = false;
    return lex_deep(L) ? LEX_DEEP : LEX_OK;
}

/* Skip a comment starting at @p i; returns the index after it, or SIZE_MAX
 * when a block comment is unterminated. Hints are collected on the way. */
static size_t lex_comment(lex_t *L, size_t i)
{
    const unsigned char *s = L->s;
    size_t n = L->n, k;
    if (s[i] == '-') {
        k = i + 2;
        while (k < n && s[k] != '\n' && s[k] != '\r')
            k++;
        lex_hints(L, s + i + 2, k - i - 2);
        return k;
    }
    int depth = 1;
    k = i + 2;
    while (k < n && depth > 0) {
        if (s[k] == '*' && k + 1 < n && s[k + 1] == '/') {
            depth--;
            k += 2;
        } else if (s[k] == '/' && k + 1 < n && s[k + 1] == '*') {
            depth++;
            k += 2;
        } else {
            k++;
        }
    }
    if (depth > 0)
        return SIZE_MAX;
    lex_hints(L, s + i + 2, k - i - 4);
    return k;
}

static int lex_run(lex_t *L)
{
    const unsigned char *s = L->s;
    size_t n = L->n, i = 0;
    int rc;
    while (i < n) {
        unsigned char c = s[i];
        switch (g_cclass[c]) {
        case C_SPACE:
            i++;
            L->need_space = true;
            continue;
        case C_IDENT: {
            if (i + 1 < n && s[i + 1] == '\'') {
                unsigned char lc = c | 0x20;
                if (lc == 'e' || lc == 'n' || lc == 'b' || lc == 'x') {
                    if ((rc = lex_not_word(L)) != LEX_OK)
                        return rc;
                    size_t e = lex_squote_end(s, n, i + 2, lc == 'e');
                    if (e == SIZE_MAX) {
                        L->bad = true;
                        return LEX_OK;
                    }
                    lex_literal(L, i, e, i + 2, e - 1,
                                (lc == 'b' || lc == 'x') ? PH_BITS : PH_STRING);
                    i = e;
                    continue;
                }
            }
            if ((c | 0x20) == 'u' && i + 2 < n && s[i + 1] == '&' &&
                (s[i + 2] == '\'' || s[i + 2] == '"')) {
                if ((rc = lex_not_word(L)) != LEX_OK)
                    return rc;
                size_t e;
                if (s[i + 2] == '\'') {
                    e = lex_squote_end(s, n, i + 3, false);
                    if (e == SIZE_MAX) {
                        L->bad = true;
                        return LEX_OK;
                    }
                    lex_literal(L, i, e, i + 3, e - 1, PH_STRING);
                } else {
                    e = i + 3;
                    for (;;) {
                        const unsigned char *q = e < n ? memchr(s + e, '"', n - e) : NULL;
                        if (q == NULL) {
                            L->bad = true;
                            return LEX_OK;
                        }
                        e = (size_t)(q - s) + 1;
                        if (e < n && s[e] == '"')
                            e++;
                        else
                            break;
                    }
                    lex_emit(L, s + i, e - i);
                    L->last_op = false;
                }
                i = e;
                continue;
            }
            size_t j = i + 1;
            while (j < n && g_identc[s[j]])
                j++;
            if ((rc = lex_word(L, i, j)) != LEX_OK)
                return rc;
            i = j;
            continue;
        }
        case C_DOT:
            if (!(i + 1 < n && g_cclass[s[i + 1]] == C_DIGIT)) {
                if ((rc = lex_not_word(L)) != LEX_OK)
                    return rc;
                lex_emit_c(L, c);
                L->last_op = false;
                i++;
                continue;
            }
            __attribute__((fallthrough)); /* a number like .5 */
        case C_DIGIT: {
            if ((rc = lex_not_word(L)) != LEX_OK)
                return rc;
            size_t j = i;
            bool fl = false;
            while (j < n && g_cclass[s[j]] == C_DIGIT)
                j++;
            if (j < n && s[j] == '.' && !(j + 1 < n && s[j + 1] == '.')) {
                fl = true;
                j++;
                while (j < n && g_cclass[s[j]] == C_DIGIT)
                    j++;
            }
            if (j < n && (s[j] | 0x20) == 'e') {
                size_t k = j + 1;
                if (k < n && (s[k] == '+' || s[k] == '-'))
                    k++;
                if (k < n && g_cclass[s[k]] == C_DIGIT) {
                    fl = true;
                    j = k;
                    while (j < n && g_cclass[s[j]] == C_DIGIT)
                        j++;
                }
            }
            lex_literal(L, i, j, i, j, fl ? PH_FLOAT : PH_INT);
            i = j;
            continue;
        }
        case C_QUOTE: {
            if ((rc = lex_not_word(L)) != LEX_OK)
                return rc;
            size_t e = lex_squote_end(s, n, i + 1, false);
            if (e == SIZE_MAX) {
                L->bad = true;
                return LEX_OK;
            }
            lex_literal(L, i, e, i + 1, e - 1, PH_STRING);
            i = e;
            continue;
        }
        case C_DQUOTE: {
            if ((rc = lex_not_word(L)) != LEX_OK)
                return rc;
            size_t e = i + 1;
            for (;;) {
                const unsigned char *q = e < n ? memchr(s + e, '"', n - e) : NULL;
                if (q == NULL) {
                    L->bad = true;
                    return LEX_OK;
                }
                e = (size_t)(q - s) + 1;
                if (e < n && s[e] == '"')
                    e++;
                else
                    break;
            }
            lex_emit(L, s + i, e - i);
            L->last_op = false;
            L->chain = 0;
            i = e;
            continue;
        }
        case C_DOLLAR: {
            if ((rc = lex_not_word(L)) != LEX_OK)
                return rc;
            size_t j = i + 1;
            if (j < n && g_cclass[s[j]] == C_DIGIT) { /* $n parameter */
                while (j < n && g_cclass[s[j]] == C_DIGIT)
                    j++;
                lex_emit(L, s + i, j - i);
                L->last_op = false;
                i = j;
                continue;
            }
            if (j < n && g_cclass[s[j]] == C_IDENT)
                while (j < n && g_identc[s[j]] && s[j] != '$')
                    j++;
            if (j < n && s[j] == '$') { /* $tag$ ... $tag$ */
                size_t tl = j - i + 1;
                const unsigned char *close =
                    j + 1 <= n ? memmem(s + j + 1, n - j - 1, s + i, tl) : NULL;
                if (close == NULL) {
                    L->bad = true;
                    return LEX_OK;
                }
                size_t ce = (size_t)(close - s), e = ce + tl;
                lex_literal(L, i, e, j + 1, ce, PH_STRING);
                i = e;
                continue;
            }
            lex_emit_c(L, c);
            L->last_op = false;
            i++;
            continue;
        }
        case C_OP:
            if (i + 1 < n && ((c == '-' && s[i + 1] == '-') || (c == '/' && s[i + 1] == '*'))) {
                size_t e = lex_comment(L, i);
                if (e == SIZE_MAX) {
                    L->bad = true;
                    return LEX_OK;
                }
                L->need_space = true;
                i = e;
                continue;
            }
            if ((rc = lex_not_word(L)) != LEX_OK)
                return rc;
            lex_emit_c(L, c);
            if (!L->last_op) {
                L->chain++;
                L->last_op = true;
                if (lex_deep(L))
                    return LEX_DEEP;
            }
            i++;
            continue;
        case C_OPEN:
            lex_emit_c(L, c);
            L->last_op = false;
            i++;
            if ((rc = lex_push(L, LVL_PAREN)) != LEX_OK)
                return rc;
            continue;
        case C_CLOSE:
            if ((rc = lex_not_word(L)) != LEX_OK)
                return rc;
            lex_emit_c(L, c);
            L->last_op = false;
            lex_pop(L);
            i++;
            continue;
        case C_COMMA:
            if ((rc = lex_not_word(L)) != LEX_OK)
                return rc;
            lex_emit_c(L, c);
            L->last_op = false;
            L->chain = 0;
            i++;
            continue;
        case C_SEMI:
            lex_emit_c(L, c);
            L->last_op = false;
            L->chain = L->setop = 0;
            if (L->lvl == 0)
                L->stmt_start = true;
            i++;
            continue;
        case C_CTRL:
            L->unsafe = true;
            if (L->normalize)
                return LEX_RESTART;
            __attribute__((fallthrough));
        default:
            if ((rc = lex_not_word(L)) != LEX_OK)
                return rc;
            lex_emit_c(L, c);
            L->last_op = false;
            i++;
            continue;
        }
    }
    return LEX_OK;
}

typedef struct lexinfo {
    size_t key_len;
    bool exact;     /* key is the raw text */
    bool deep;      /* over max_depth: do not parse */
    uint32_t hints; /* PX_CLS_F_HINT_* */
    int32_t ttl;
    uint32_t nlits; /* literals recorded in the lits array (<= CLS_MAX_LITS) */
} lexinfo_t;

/* Build the key of @p s into @p out (capacity >= n + 1). Its first byte says
 * how it was built ('N' normalized, 'V' literals verbatim, 'X' the raw text),
 * so keys built differently never compare equal. The positions of the first
 * CLS_MAX_LITS literals go to @p lits. */
static void lex_key(const char *s, size_t n, char *out, lvl_save_t *stack, uint32_t limit,
                    lit_t *lits, lexinfo_t *li)
{
    lex_t L;
    li->deep = false;
    for (int pass = 0; pass < 2; pass++) {
        memset(&L, 0, sizeof L);
        L.s = (const unsigned char *)s;
        L.n = n;
        L.out = out;
        L.out[0] = pass == 0 ? 'N' : 'V';
        L.o = 1;
        L.normalize = pass == 0;
        L.stmt_start = true;
        L.ttl = -1;
        L.stack = stack;
        L.lits = lits;
        L.max_lvl = limit;
        L.limit = limit;
        int rc = lex_run(&L);
        if (rc == LEX_RESTART)
            continue;
        li->deep = rc == LEX_DEEP;
        break;
    }
    li->hints = L.hints;
    li->ttl = L.ttl;
    li->nlits = L.nlits < CLS_MAX_LITS ? L.nlits : CLS_MAX_LITS;
    li->exact = L.bad || li->deep;
    if (li->exact) {
        out[0] = 'X';
        memcpy(out + 1, s, n);
        li->key_len = n + 1;
    } else {
        li->key_len = L.o;
    }
}

/* ---- JSON tokens ------------------------------------------------------------------ */

enum { J_OBJ = 1, J_ARR, J_STR, J_PRIM };

typedef struct jtok {
    uint32_t start; /* offset of the content (strings: after the quote) */
    uint32_t len;   /* content bytes (strings: still escaped) */
    uint32_t next;  /* index of the first token after this subtree */
    uint32_t count; /* direct children (objects: keys and values) */
    uint8_t type;
    uint8_t esc; /* string contains backslash escapes */
} jtok_t;

typedef struct jbuf {
    jtok_t *t;
    uint32_t n, cap;
    uint32_t *stack;
    uint32_t stack_cap;
} jbuf_t;

static bool jbuf_push(jbuf_t *b, jtok_t tok)
{
    if (b->n == b->cap) {
        if (b->cap >= CLS_MAX_TOKENS)
            return false;
        uint32_t ncap = b->cap ? b->cap * 2 : 1024;
        jtok_t *nt = realloc(b->t, (size_t)ncap * sizeof *nt);
        if (nt == NULL)
            return false;
        b->t = nt;
        b->cap = ncap;
    }
    b->t[b->n++] = tok;
    return true;
}

/* Tokenize libpg_query's JSON without recursion. False on malformed input,
 * nesting over CLS_JSON_MAX_DEPTH, or too many tokens. */
static bool jtok_parse(jbuf_t *b, const char *js, size_t n)
{
    uint32_t sp = 0;
    size_t i = 0;
    b->n = 0;
    if (n >= UINT32_MAX)
        return false;
    /* Token 0 is a placeholder so that index 0 can mean "absent"; the root is 1. */
    if (!jbuf_push(b, (jtok_t){0, 0, 1, 0, J_PRIM, 0}))
        return false;
    while (i < n) {
        char c = js[i];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == ',' || c == ':') {
            i++;
            continue;
        }
        if (c == '}' || c == ']') {
            if (sp == 0)
                return false;
            uint32_t open = b->stack[--sp];
            if (b->t[open].type != (c == '}' ? J_OBJ : J_ARR))
                return false;
            b->t[open].next = b->n;
            i++;
            continue;
        }
        if (sp == 0 && b->n > 1)
            return false; /* a second root */
        if (sp > 0)
            b->t[b->stack[sp - 1]].count++;
        jtok_t tok = {(uint32_t)i, 0, b->n + 1, 0, 0, 0};
        if (c == '{' || c == '[') {
            tok.type = c == '{' ? J_OBJ : J_ARR;
            if (sp == b->stack_cap) {
                if (b->stack_cap >= CLS_JSON_MAX_DEPTH)
                    return false;
                uint32_t ncap = b->stack_cap ? b->stack_cap * 2 : 256;
                uint32_t *ns = realloc(b->stack, (size_t)ncap * sizeof *ns);
                if (ns == NULL)
                    return false;
                b->stack = ns;
                b->stack_cap = ncap;
            }
            b->stack[sp++] = b->n;
            i++;
        } else if (c == '"') {
            size_t k = i + 1;
            tok.type = J_STR;
            tok.start = (uint32_t)k;
            for (;;) {
                if (k >= n)
                    return false;
                if (js[k] == '\\') {
                    tok.esc = 1;
                    k += 2;
                } else if (js[k] == '"') {
                    break;
                } else {
                    k++;
                }
            }
            tok.len = (uint32_t)(k - tok.start);
            i = k + 1;
        } else {
            size_t k = i;
            while (k < n && js[k] != ',' && js[k] != '}' && js[k] != ']' && js[k] != ':' &&
                   js[k] != ' ')
                k++;
            tok.type = J_PRIM;
            tok.len = (uint32_t)(k - i);
            i = k;
        }
        if (!jbuf_push(b, tok))
            return false;
    }
    return sp == 0 && b->n > 1 && b->t[1].type == J_OBJ;
}

/* ---- volatility table --------------------------------------------------------------- */

typedef struct vslot {
    uint64_t h;
    char *name;      /* owned; NULL = empty slot */
    char vol;        /* the most volatile of the functions of this name */
    bool outside_pg; /* one of them lives outside pg_catalog (or in no known schema) */
} vslot_t;

struct px_classify_vol {
    _Atomic int refs; /* the publisher's reference plus threads using it */
    uint32_t mask;    /* slots - 1 */
    uint32_t n;       /* names stored */
    vslot_t *slots;
};

static pthread_mutex_t g_vol_lock = PTHREAD_MUTEX_INITIALIZER;
static px_classify_vol_t *g_vol;       /* guarded by g_vol_lock */
static _Atomic uint64_t g_vol_gen = 1; /* bumped on every publish */

px_classify_vol_t *px_classify_vol_new(void)
{
    pthread_once(&g_init_once, cls_init);
    px_classify_vol_t *v = calloc(1, sizeof *v);
    if (v == NULL)
        return NULL;
    v->slots = calloc(1024, sizeof *v->slots);
    if (v->slots == NULL) {
        free(v);
        return NULL;
    }
    v->mask = 1023;
    atomic_init(&v->refs, 1);
    return v;
}

void px_classify_vol_free(px_classify_vol_t *v)
{
    if (v == NULL)
        return;
    for (uint32_t i = 0; i <= v->mask; i++)
        free(v->slots[i].name);
    free(v->slots);
    free(v);
}

static void vol_unref(px_classify_vol_t *v)
{
    if (v != NULL && atomic_fetch_sub_explicit(&v->refs, 1, memory_order_acq_rel) == 1)
        px_classify_vol_free(v);
}

static inline int vol_rank(char c)
{
    return c == 'i' ? 0 : c == 's' ? 1 : 2;
}

static const vslot_t *vol_find(const px_classify_vol_t *v, const char *name, size_t len)
{
    uint64_t h = cls_hash(name, len);
    for (uint32_t i = (uint32_t)h & v->mask;; i = (i + 1) & v->mask) {
        const vslot_t *sl = &v->slots[i];
        if (sl->name == NULL)
            return NULL;
        if (sl->h == h && strncmp(sl->name, name, len) == 0 && sl->name[len] == '\0')
            return sl;
    }
}

static bool vol_put(px_classify_vol_t *v, const char *name, size_t len, char vol, bool outside)
{
    if ((v->n + 1) * 2 > v->mask + 1) {
        uint32_t ncap = (v->mask + 1) * 2;
        vslot_t *ns = calloc(ncap, sizeof *ns);
        if (ns == NULL)
            return false;
        for (uint32_t i = 0; i <= v->mask; i++) {
            if (v->slots[i].name == NULL)
                continue;
            uint32_t j = (uint32_t)v->slots[i].h & (ncap - 1);
            while (ns[j].name != NULL)
                j = (j + 1) & (ncap - 1);
            ns[j] = v->slots[i];
        }
        free(v->slots);
        v->slots = ns;
        v->mask = ncap - 1;
    }
    uint64_t h = cls_hash(name, len);
    uint32_t i = (uint32_t)h & v->mask;
    for (;; i = (i + 1) & v->mask) {
        vslot_t *sl = &v->slots[i];
        if (sl->name == NULL)
            break;
        if (sl->h == h && strncmp(sl->name, name, len) == 0 && sl->name[len] == '\0') {
            if (vol_rank(vol) > vol_rank(sl->vol))
                sl->vol = vol;
            sl->outside_pg |= outside;
            return true;
        }
    }
    char *copy = malloc(len + 1);
    if (copy == NULL)
        return false;
    memcpy(copy, name, len);
    copy[len] = '\0';
    v->slots[i] = (vslot_t){h, copy, vol, outside};
    v->n++;
    return true;
}

bool px_classify_vol_add(px_classify_vol_t *v, const char *schema, const char *name,
                         char provolatile)
{
    if (v == NULL || name == NULL)
        return false;
    char vol = (provolatile == 'i' || provolatile == 's') ? provolatile : 'v';
    bool outside = schema == NULL || strcmp(schema, "pg_catalog") != 0;
    size_t nl = strlen(name);
    if (!vol_put(v, name, nl, vol, outside))
        return false;
    if (schema != NULL && schema[0] != '\0') {
        size_t sl = strlen(schema);
        char buf[2 * CLS_NAME_MAX];
        if (sl + 1 + nl >= sizeof buf)
            return true; /* longer than any PostgreSQL identifier pair */
        memcpy(buf, schema, sl);
        buf[sl] = '.';
        memcpy(buf + sl + 1, name, nl);
        if (!vol_put(v, buf, sl + 1 + nl, vol, outside))
            return false;
    }
    return true;
}

size_t px_classify_vol_size(const px_classify_vol_t *v)
{
    return v ? v->n : 0;
}

void px_classify_set_volatility(px_classify_vol_t *v)
{
    pthread_once(&g_init_once, cls_init);
    pthread_mutex_lock(&g_vol_lock);
    px_classify_vol_t *old = g_vol;
    g_vol = v;
    atomic_fetch_add_explicit(&g_vol_gen, 1, memory_order_release);
    pthread_mutex_unlock(&g_vol_lock);
    vol_unref(old);
}

bool px_classify_have_volatility(void)
{
    pthread_mutex_lock(&g_vol_lock);
    bool have = g_vol != NULL;
    pthread_mutex_unlock(&g_vol_lock);
    return have;
}

/* ---- tree walk --------------------------------------------------------------------- */

/* A key predicate's value, as the cached verdict remembers it: which literal
 * of the text (or nothing, for a parameter) and how to read it. */
enum { KT_PARAM = 0, KT_INT, KT_STR };

typedef struct keytpl {
    uint16_t lit; /* ordinal of the literal among the lexer's (< CLS_MAX_LITS) */
    uint8_t kind; /* KT_*: KT_INT digits (PH_INT), KT_STR '-?[0-9]+' content (PH_STRING) */
    uint8_t neg;  /* KT_INT: negated an odd number of times ("-5", "-(-(-5))") */
} keytpl_t;

typedef struct walk {
    const char *js;               /* libpg_query's JSON */
    const jtok_t *t;              /* its tokens */
    uint32_t nt;                  /* token count */
    const px_classify_vol_t *vol; /* catalog volatility, or NULL */
    px_classify_result_t *res;    /* relations go here */
    const char *sql;              /* the text parsed (locations index it) */
    const lit_t *lits;            /* its literals, from the lexer */
    uint32_t nlits;               /* entries in lits */
    keytpl_t *tpl;                /* key templates, parallel to res->keys */
    /* findings of the current top-level statement */
    bool dml;         /* INSERT/UPDATE/DELETE/MERGE anywhere, writable CTEs included */
    bool into;        /* SELECT ... INTO */
    bool locking;     /* FOR UPDATE / SHARE ... at any level */
    bool side_effect; /* a known side-effecting function */
    bool vol_write;   /* a volatile function not known to be read-only */
    bool unverified;  /* a function of unknown volatility */
    bool standby;     /* reads a setting a hot standby answers differently */
    bool nocache;     /* time/session-dependent function, CURRENT_*, 'now', system catalogs */
    bool pin;         /* leaves session state behind */
    bool temp_ref;    /* names a pg_temp relation: exists in one session only */
    bool user_func;   /* calls a function that is not a PostgreSQL built-in */
    bool nested;      /* a subquery, sublink, join, CTE or function in FROM somewhere */
    bool deep;        /* walk or scope limit hit */
    uint8_t relmode;  /* PX_REL_READ, or PX_REL_WRITE inside DDL and COPY FROM */
    uint32_t nscope;  /* CTE names visible here */
    uint32_t scope[CLS_MAX_SCOPE]; /* their ctename tokens */
} walk_t;

enum { OBJ_DML = 1, OBJ_INTO = 2 };

static inline bool jis(const walk_t *w, uint32_t k, const char *lit, size_t litlen)
{
    const jtok_t *t = &w->t[k];
    return t->type == J_STR && t->len == litlen && memcmp(w->js + t->start, lit, litlen) == 0;
}
#define JIS(w, k, lit) jis((w), (k), lit, sizeof(lit) - 1)

/* Value of key @p lit in object @p obj, or 0 (token 0 is a placeholder, never a value). */
static uint32_t jget(const walk_t *w, uint32_t obj, const char *lit, size_t litlen)
{
    if (obj == 0 || obj >= w->nt || w->t[obj].type != J_OBJ)
        return 0;
    uint32_t k = obj + 1;
    for (uint32_t c = 0; c + 1 < w->t[obj].count && k + 1 < w->nt; c += 2) {
        if (jis(w, k, lit, litlen))
            return k + 1;
        k = w->t[k + 1].next;
    }
    return 0;
}
#define JGET(w, o, lit) jget((w), (o), lit, sizeof(lit) - 1)

static inline bool jtrue(const walk_t *w, uint32_t v)
{
    return v != 0 && w->t[v].type == J_PRIM && w->t[v].len == 4 &&
           memcmp(w->js + w->t[v].start, "true", 4) == 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)(c | 0x20);
    return (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
}

/* Unescape string token @p k into @p buf; returns its length or -1. */
static int jstr(const walk_t *w, uint32_t k, char *buf, size_t cap)
{
    if (k == 0 || w->t[k].type != J_STR)
        return -1;
    const char *p = w->js + w->t[k].start;
    size_t n = w->t[k].len, o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned c = (unsigned char)p[i];
        if (c == '\\' && i + 1 < n) {
            c = (unsigned char)p[++i];
            switch (c) {
            case 'b':
                c = '\b';
                break;
            case 'f':
                c = '\f';
                break;
            case 'n':
                c = '\n';
                break;
            case 'r':
                c = '\r';
                break;
            case 't':
                c = '\t';
                break;
            case 'u': {
                if (i + 4 >= n)
                    return -1;
                unsigned cp = 0;
                for (int d = 1; d <= 4; d++) {
                    int x = hexval(p[i + d]);
                    if (x < 0)
                        return -1;
                    cp = cp * 16 + (unsigned)x;
                }
                i += 4;
                if (o + 4 >= cap)
                    return -1;
                if (cp < 0x80) {
                    buf[o++] = (char)cp;
                } else if (cp < 0x800) {
                    buf[o++] = (char)(0xc0 | (cp >> 6));
                    buf[o++] = (char)(0x80 | (cp & 0x3f));
                } else {
                    buf[o++] = (char)(0xe0 | (cp >> 12));
                    buf[o++] = (char)(0x80 | ((cp >> 6) & 0x3f));
                    buf[o++] = (char)(0x80 | (cp & 0x3f));
                }
                continue;
            }
            default:
                break;
            }
        }
        if (o + 1 >= cap)
            return -1;
        buf[o++] = (char)c;
    }
    buf[o] = '\0';
    return (int)o;
}

static void rel_add(px_classify_result_t *r, const char *name, size_t len, uint8_t flag)
{
    for (unsigned i = 0; i < r->n_rels; i++) {
        if (strcmp(r->rels + r->rel_off[i], name) == 0) {
            r->rel_flags[i] |= flag;
            return;
        }
    }
    if (r->n_rels >= PX_CLASSIFY_MAX_RELS || r->rels_len + len + 1 > PX_CLASSIFY_RELS_BYTES) {
        r->flags |= PX_CLS_F_RELS_TRUNCATED;
        return;
    }
    r->rel_off[r->n_rels] = r->rels_len;
    r->rel_flags[r->n_rels] = flag;
    memcpy(r->rels + r->rels_len, name, len + 1);
    r->rels_len = (uint16_t)(r->rels_len + len + 1);
    r->n_rels++;
}

static bool in_scope(const walk_t *w, uint32_t rel)
{
    const jtok_t *a = &w->t[rel];
    for (uint32_t i = w->nscope; i-- > 0;) {
        const jtok_t *b = &w->t[w->scope[i]];
        if (b->type == J_STR && b->len == a->len &&
            memcmp(w->js + b->start, w->js + a->start, a->len) == 0)
            return true;
    }
    return false;
}

#define CLS_RELNAME_MAX (3 * CLS_NAME_MAX + 3)

/* The name of RangeVar object @p obj as rels[] lists it ("cat.sch.rel") into
 * @p name (CLS_RELNAME_MAX bytes); its length, or -1. */
static int rangevar_name(const walk_t *w, uint32_t obj, char *name)
{
    uint32_t parts[3] = {JGET(w, obj, "catalogname"), JGET(w, obj, "schemaname"),
                         JGET(w, obj, "relname")};
    size_t o = 0;
    if (parts[2] == 0)
        return -1;
    for (int i = 0; i < 3; i++) {
        if (parts[i] == 0)
            continue;
        if (o > 0)
            name[o++] = '.';
        int l = jstr(w, parts[i], name + o, CLS_NAME_MAX);
        if (l < 0)
            return -1;
        o += (size_t)l;
    }
    return (int)o;
}

/* A RangeVar object (wrapped or a typed field). */
static void on_rangevar(walk_t *w, uint32_t obj, uint8_t mode)
{
    uint32_t rel = JGET(w, obj, "relname"), sch = JGET(w, obj, "schemaname"),
             cat = JGET(w, obj, "catalogname"), per = JGET(w, obj, "relpersistence");
    if (per != 0 && w->t[per].type == J_STR && w->t[per].len == 1 && w->js[w->t[per].start] == 't')
        w->pin = true; /* CREATE TEMP ..., SELECT INTO TEMP */
    if (rel == 0)
        return;
    if (sch == 0 && cat == 0 && in_scope(w, rel))
        return; /* a CTE, not a relation */
    char name[CLS_RELNAME_MAX];
    int nl = rangevar_name(w, obj, name);
    if (nl < 0) {
        w->res->flags |= PX_CLS_F_RELS_TRUNCATED;
        return;
    }
    size_t o = (size_t)nl;
    if (sch != 0 ? (JIS(w, sch, "pg_catalog") || JIS(w, sch, "information_schema"))
                 : (w->t[rel].len >= 3 && memcmp(w->js + w->t[rel].start, "pg_", 3) == 0))
        w->nocache = true; /* system catalogs and views: no tag ever invalidates them */
    if (sch != 0 && w->t[sch].len >= 7 && memcmp(w->js + w->t[sch].start, "pg_temp", 7) == 0)
        w->temp_ref = w->nocache = true;
    rel_add(w->res, name, o, mode);
}

static const vslot_t *judge_vol(const walk_t *w, const char *schema, const char *name)
{
    if (w->vol == NULL)
        return NULL;
    if (schema == NULL)
        return vol_find(w->vol, name, strlen(name));
    char buf[2 * CLS_NAME_MAX + 2];
    size_t sl = strlen(schema), nl = strlen(name);
    if (sl + nl + 1 >= sizeof buf)
        return NULL;
    memcpy(buf, schema, sl);
    buf[sl] = '.';
    memcpy(buf + sl + 1, name, nl);
    return vol_find(w->vol, buf, sl + 1 + nl);
}

/* The rules of px_classify_vol_t's comment, in that order; and whether the
 * function is a built-in (PX_CLS_F_USER_FUNC's rule). */
static void judge_function(walk_t *w, const char *schema, const char *name)
{
    bool builtin_ns = schema == NULL || strcmp(schema, "pg_catalog") == 0;
    fn_cat_t cat = builtin_ns ? fn_builtin(name) : FN_NONE;
    const vslot_t *sl = judge_vol(w, schema, name);
    if (!builtin_ns)
        w->user_func = true;
    else if (cat == FN_NONE && (sl == NULL || (schema == NULL && sl->outside_pg)))
        w->user_func = true; /* pg_catalog.f: found as "pg_catalog.f" means it lives there */
    if (cat == FN_WRITE || cat == FN_PIN) {
        w->side_effect = true;
        if (cat == FN_PIN)
            w->pin = true;
        return;
    }
    if (sl == NULL && schema != NULL && builtin_ns)
        sl = judge_vol(w, NULL, name);
    char vol = sl != NULL ? sl->vol : 0;
    if (vol == 'v') {
        if (cat == FN_NOCACHE)
            w->nocache = true;
        else
            w->vol_write = true;
        return;
    }
    if (vol == 's' || vol == 'i') {
        if (cat == FN_NOCACHE)
            w->nocache = true;
        return;
    }
    if (cat == FN_NOCACHE)
        w->nocache = true;
    else if (cat != FN_SAFE)
        w->unverified = true;
}

/* Name part @p elem of a funcname list: {"String":{"sval":"..."}}. */
static int name_part(const walk_t *w, uint32_t elem, char *buf, size_t cap)
{
    return jstr(w, JGET(w, JGET(w, elem, "String"), "sval"), buf, cap);
}

static void on_funccall(walk_t *w, uint32_t fc)
{
    uint32_t names = JGET(w, fc, "funcname");
    if (names == 0 || w->t[names].type != J_ARR || w->t[names].count == 0) {
        w->unverified = w->user_func = true;
        return;
    }
    uint32_t prev = 0, last = 0, k = names + 1;
    for (uint32_t c = 0; c < w->t[names].count && k < w->nt; c++) {
        prev = last;
        last = k;
        k = w->t[k].next;
    }
    char name[CLS_NAME_MAX], schema[CLS_NAME_MAX];
    if (name_part(w, last, name, sizeof name) < 0) {
        w->unverified = w->user_func = true;
        return;
    }
    bool has_schema = prev != 0;
    if (has_schema && name_part(w, prev, schema, sizeof schema) < 0) {
        w->unverified = w->user_func = true;
        return;
    }
    judge_function(w, has_schema ? schema : NULL, name);
    if (strcmp(name, "current_setting") == 0 &&
        (!has_schema || strcmp(schema, "pg_catalog") == 0)) {
        /* a literal name is looked at in the text (reads_standby_setting);
         * any other may name a setting a standby answers differently */
        uint32_t args = JGET(w, fc, "args");
        if (args == 0 || w->t[args].type != J_ARR || w->t[args].count == 0 ||
            JGET(w, args + 1, "A_Const") == 0)
            w->standby = true;
    }
}

/* {"A_Const":{"sval":{"sval":"now"}}}: the special datetime inputs. */
static void on_aconst(walk_t *w, uint32_t ac)
{
    uint32_t s = JGET(w, JGET(w, ac, "sval"), "sval");
    if (s != 0 && w->t[s].len <= 16 &&
        lex_time_literal((const unsigned char *)w->js + w->t[s].start, w->t[s].len))
        w->nocache = true;
}

static void walk(walk_t *w, uint32_t i, unsigned depth);
static void walk_obj(walk_t *w, uint32_t i, unsigned depth, unsigned ofl);

static void push_cte(walk_t *w, uint32_t elem)
{
    uint32_t name = JGET(w, JGET(w, elem, "CommonTableExpr"), "ctename");
    if (name == 0)
        return;
    if (w->nscope >= CLS_MAX_SCOPE) {
        w->deep = true;
        return;
    }
    w->scope[w->nscope++] = name;
}

/* A WITH clause: each CTE body sees the earlier CTEs (all of them when
 * RECURSIVE); the statement body, walked by the caller, sees all. */
static void walk_with(walk_t *w, uint32_t wc, unsigned depth)
{
    bool recursive = jtrue(w, JGET(w, wc, "recursive"));
    uint32_t ctes = JGET(w, wc, "ctes");
    if (ctes == 0 || w->t[ctes].type != J_ARR)
        return;
    uint32_t k = ctes + 1;
    if (recursive)
        for (uint32_t c = 0; c < w->t[ctes].count && k < w->nt; c++, k = w->t[k].next)
            push_cte(w, k);
    k = ctes + 1;
    for (uint32_t c = 0; c < w->t[ctes].count && k < w->nt; c++, k = w->t[k].next) {
        uint32_t cte = JGET(w, k, "CommonTableExpr");
        if (cte != 0)
            walk_obj(w, cte, depth + 1, 0);
        else
            walk(w, k, depth + 1);
        if (!recursive)
            push_cte(w, k);
    }
}

static inline bool keq(const char *key, size_t kl, const char *lit, size_t ll)
{
    return kl == ll && memcmp(key, lit, ll) == 0;
}
#define KEQ(lit) keq(key, kl, lit, sizeof(lit) - 1)

static void dispatch(walk_t *w, uint32_t k, uint32_t v, unsigned depth, unsigned ofl)
{
    const jtok_t *kt = &w->t[k];
    const jtok_t *vt = &w->t[v];
    if (vt->type != J_OBJ && vt->type != J_ARR)
        return;
    if (kt->type != J_STR) {
        walk(w, v, depth + 1);
        return;
    }
    const char *key = w->js + kt->start;
    size_t kl = kt->len;
    if (KEQ("SubLink") || KEQ("RangeSubselect") || KEQ("RangeFunction") || KEQ("JoinExpr") ||
        KEQ("CommonTableExpr") || KEQ("RangeTableFunc") || KEQ("RangeTableSample"))
        w->nested = true; /* no key predicates for a SELECT (see keys_extract) */
    if (KEQ("FuncCall") || (KEQ("funccall") && vt->type == J_OBJ)) {
        on_funccall(w, v); /* funccall: CALL's procedure, a FuncCall without the wrapper */
    } else if (KEQ("SQLValueFunction")) {
        w->nocache = true; /* CURRENT_TIMESTAMP, CURRENT_USER, ... */
        return;
    } else if (KEQ("A_Const")) {
        on_aconst(w, v);
        return;
    } else if (KEQ("InsertStmt") || KEQ("UpdateStmt") || KEQ("DeleteStmt") || KEQ("MergeStmt")) {
        w->dml = true;
        if (vt->type == J_OBJ) {
            walk_obj(w, v, depth + 1, OBJ_DML);
            return;
        }
    } else if (KEQ("LockingClause")) {
        w->locking = true;
    } else if (KEQ("lockingClause")) {
        if (vt->count > 0)
            w->locking = true;
    } else if (KEQ("intoClause")) {
        w->into = true;
        if (vt->type == J_OBJ) {
            walk_obj(w, v, depth + 1, OBJ_INTO);
            return;
        }
    } else if (KEQ("relation") && (ofl & OBJ_DML) && vt->type == J_OBJ) {
        on_rangevar(w, v, PX_REL_WRITE);
        return;
    } else if (KEQ("rel") && (ofl & OBJ_INTO) && vt->type == J_OBJ) {
        on_rangevar(w, v, PX_REL_WRITE);
        return;
    }
    walk(w, v, depth + 1);
}

static void walk_obj(walk_t *w, uint32_t i, unsigned depth, unsigned ofl)
{
    if (depth > CLS_WALK_MAX_DEPTH) {
        w->deep = true;
        return;
    }
    const jtok_t *o = &w->t[i];
    uint32_t with = 0, relname = 0, k = i + 1;
    for (uint32_t c = 0; c + 1 < o->count && k + 1 < w->nt; c += 2) {
        if (JIS(w, k, "withClause"))
            with = k + 1;
        else if (JIS(w, k, "relname"))
            relname = k + 1;
        k = w->t[k + 1].next;
    }
    if (relname != 0) {
        on_rangevar(w, i, w->relmode);
        return;
    }
    uint32_t mark = w->nscope;
    if (with != 0 && w->t[with].type == J_OBJ)
        walk_with(w, with, depth + 1);
    k = i + 1;
    for (uint32_t c = 0; c + 1 < o->count && k + 1 < w->nt; c += 2) {
        if (k + 1 != with)
            dispatch(w, k, k + 1, depth, ofl);
        k = w->t[k + 1].next;
    }
    w->nscope = mark;
}

static void walk(walk_t *w, uint32_t i, unsigned depth)
{
    if (depth > CLS_WALK_MAX_DEPTH) {
        w->deep = true;
        return;
    }
    const jtok_t *t = &w->t[i];
    if (t->type == J_OBJ) {
        walk_obj(w, i, depth, 0);
    } else if (t->type == J_ARR) {
        uint32_t k = i + 1;
        for (uint32_t c = 0; c < t->count && k < w->nt; c++, k = w->t[k].next)
            walk(w, k, depth + 1);
    }
}

/* ---- statements ----------------------------------------------------------------------- */

typedef struct stmtinfo {
    px_txn_kind_t txn;
    px_session_kind_t session;
    int read_only;    /* -1 unspecified, 0 READ WRITE, 1 READ ONLY */
    bool select;      /* a SelectStmt */
    bool dml_stmt;    /* an InsertStmt, UpdateStmt, DeleteStmt or MergeStmt */
    bool copy;        /* a CopyStmt */
    bool inner_write; /* PREPARE / DECLARE of a statement that is not read-only */
} stmtinfo_t;

static px_class_t read_verdict(const walk_t *w)
{
    if (w->dml || w->into || w->locking || w->side_effect || w->vol_write)
        return PX_CLASS_WRITE;
    if (w->unverified || w->deep || w->temp_ref)
        return PX_CLASS_UNKNOWN;
    return PX_CLASS_READ;
}

/* The truth value of an A_Const object (ival, boolval, or on/true/yes/1). */
static bool aconst_truthy(const walk_t *w, uint32_t ac)
{
    uint32_t x;
    if ((x = JGET(w, ac, "ival")) != 0) {
        uint32_t v = JGET(w, x, "ival");
        return v != 0 && w->t[v].type == J_PRIM &&
               !(w->t[v].len == 1 && w->js[w->t[v].start] == '0');
    }
    if ((x = JGET(w, ac, "boolval")) != 0)
        return jtrue(w, JGET(w, x, "boolval"));
    if ((x = JGET(w, ac, "sval")) != 0) {
        char buf[16];
        int l = jstr(w, JGET(w, x, "sval"), buf, sizeof buf);
        return l > 0 && (strcasecmp(buf, "on") == 0 || strcasecmp(buf, "true") == 0 ||
                         strcasecmp(buf, "yes") == 0 || strcmp(buf, "1") == 0 ||
                         strcasecmp(buf, "t") == 0 || strcasecmp(buf, "y") == 0);
    }
    return false;
}

/* transaction_read_only among a list of DefElem nodes: -1 absent, else 0/1. */
static int defelems_read_only(const walk_t *w, uint32_t arr)
{
    int ro = -1;
    if (arr == 0 || w->t[arr].type != J_ARR)
        return ro;
    uint32_t k = arr + 1;
    for (uint32_t c = 0; c < w->t[arr].count && k < w->nt; c++, k = w->t[k].next) {
        uint32_t de = JGET(w, k, "DefElem");
        if (de != 0 && JIS(w, JGET(w, de, "defname"), "transaction_read_only"))
            ro = aconst_truthy(w, JGET(w, JGET(w, de, "arg"), "A_Const"));
    }
    return ro;
}

static px_txn_kind_t txn_kind(const walk_t *w, uint32_t v)
{
    static const struct {
        const char *name;
        px_txn_kind_t kind;
    } map[] = {
        {"TRANS_STMT_BEGIN", PX_TXN_BEGIN},
        {"TRANS_STMT_START", PX_TXN_BEGIN},
        {"TRANS_STMT_COMMIT", PX_TXN_COMMIT},
        {"TRANS_STMT_ROLLBACK", PX_TXN_ROLLBACK},
        {"TRANS_STMT_SAVEPOINT", PX_TXN_SAVEPOINT},
        {"TRANS_STMT_RELEASE", PX_TXN_RELEASE},
        {"TRANS_STMT_ROLLBACK_TO", PX_TXN_ROLLBACK_TO},
        {"TRANS_STMT_PREPARE", PX_TXN_PREPARE},
        {"TRANS_STMT_COMMIT_PREPARED", PX_TXN_COMMIT_PREPARED},
        {"TRANS_STMT_ROLLBACK_PREPARED", PX_TXN_ROLLBACK_PREPARED},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (jis(w, v, map[i].name, strlen(map[i].name)))
            return map[i].kind;
    return PX_TXN_NONE;
}

/* DROP TABLE/VIEW/...: the names are lists of strings, not RangeVars. */
static void on_drop(walk_t *w, uint32_t body)
{
    uint32_t type = JGET(w, body, "removeType"), objs = JGET(w, body, "objects");
    if (!(JIS(w, type, "OBJECT_TABLE") || JIS(w, type, "OBJECT_VIEW") ||
          JIS(w, type, "OBJECT_MATVIEW") || JIS(w, type, "OBJECT_FOREIGN_TABLE")) ||
        objs == 0 || w->t[objs].type != J_ARR)
        return;
    uint32_t k = objs + 1;
    for (uint32_t c = 0; c < w->t[objs].count && k < w->nt; c++, k = w->t[k].next) {
        uint32_t items = JGET(w, JGET(w, k, "List"), "items");
        if (items == 0 || w->t[items].type != J_ARR)
            continue;
        char name[3 * CLS_NAME_MAX + 3];
        size_t o = 0;
        uint32_t e = items + 1;
        bool ok = true;
        for (uint32_t d = 0; d < w->t[items].count && e < w->nt && ok; d++, e = w->t[e].next) {
            if (o > 0)
                name[o++] = '.';
            int l = o + CLS_NAME_MAX < sizeof name ? name_part(w, e, name + o, CLS_NAME_MAX) : -1;
            ok = l >= 0;
            o += ok ? (size_t)l : 0;
        }
        if (ok && o > 0)
            rel_add(w->res, name, o, PX_REL_WRITE);
        else
            w->res->flags |= PX_CLS_F_RELS_TRUNCATED;
    }
}

static px_class_t node_class(walk_t *w, uint32_t node, unsigned depth, stmtinfo_t *si);

static px_class_t inner_class(walk_t *w, uint32_t node, unsigned depth)
{
    stmtinfo_t in = {.read_only = -1};
    return node_class(w, node, depth + 1, &in);
}

static px_class_t set_class(walk_t *w, uint32_t body, stmtinfo_t *si)
{
    uint32_t name = JGET(w, body, "name"), args = JGET(w, body, "args"),
             kind = JGET(w, body, "kind");
    if (JIS(w, name, "TRANSACTION")) {
        si->txn = PX_TXN_SET;
        si->read_only = defelems_read_only(w, args);
        return PX_CLASS_TXN;
    }
    if (JIS(w, name, "transaction_read_only") || JIS(w, name, "transaction_isolation") ||
        JIS(w, name, "transaction_deferrable")) {
        si->txn = PX_TXN_SET;
        if (JIS(w, name, "transaction_read_only") && args != 0 && w->t[args].type == J_ARR &&
            w->t[args].count > 0)
            si->read_only = aconst_truthy(w, JGET(w, args + 1, "A_Const"));
        return PX_CLASS_TXN;
    }
    if (JIS(w, kind, "VAR_RESET"))
        si->session = PX_SESSION_RESET;
    else if (JIS(w, kind, "VAR_RESET_ALL"))
        si->session = PX_SESSION_RESET_ALL;
    else if (jtrue(w, JGET(w, body, "is_local")))
        si->session = PX_SESSION_SET_LOCAL;
    else
        si->session = PX_SESSION_SET;
    return PX_CLASS_SESSION;
}

/* Classify statement node @p node: {"SelectStmt": {...}} and the like. */
static px_class_t node_class(walk_t *w, uint32_t node, unsigned depth, stmtinfo_t *si)
{
    if (node == 0 || w->t[node].type != J_OBJ || w->t[node].count < 2 || depth > 64)
        return PX_CLASS_UNKNOWN;
    uint32_t k = node + 1, body = node + 2;
    if (w->t[k].type != J_STR)
        return PX_CLASS_UNKNOWN;
    const char *key = w->js + w->t[k].start;
    size_t kl = w->t[k].len;
    px_class_t c;

    if (KEQ("SelectStmt")) {
        si->select = true;
        walk(w, body, depth);
        return read_verdict(w);
    }
    if (KEQ("InsertStmt") || KEQ("UpdateStmt") || KEQ("DeleteStmt") || KEQ("MergeStmt")) {
        w->dml = si->dml_stmt = true;
        if (w->t[body].type == J_OBJ)
            walk_obj(w, body, depth, OBJ_DML);
        return PX_CLASS_WRITE;
    }
    if (KEQ("ExplainStmt")) {
        /* EXPLAIN [ANALYZE] of a read is a read; of anything else, the primary
         * (with ANALYZE it executes; without, it is only a plan, but sending
         * it to the primary is never wrong). */
        c = inner_class(w, JGET(w, body, "query"), depth);
        return c == PX_CLASS_READ      ? PX_CLASS_READ
               : c == PX_CLASS_UNKNOWN ? PX_CLASS_UNKNOWN
                                       : PX_CLASS_WRITE;
    }
    if (KEQ("VariableShowStmt")) {
        /* settings a standby answers differently: whoever asks wants to know
         * whether the connection can write (libpq's target_session_attrs,
         * pgjdbc's targetServerType), and through the proxy it can */
        char name[64];
        int n = jstr(w, JGET(w, body, "name"), name, sizeof(name));
        if (n > 0 && (strcasecmp(name, "transaction_read_only") == 0 ||
                      strcasecmp(name, "in_hot_standby") == 0 ||
                      strcasecmp(name, "default_transaction_read_only") == 0))
            w->standby = true;
        return PX_CLASS_READ;
    }
    if (KEQ("CopyStmt")) {
        si->copy = true;
        if (jtrue(w, JGET(w, body, "is_from"))) {
            w->relmode = PX_REL_WRITE;
            walk(w, body, depth);
            return PX_CLASS_WRITE;
        }
        c = PX_CLASS_READ;
        uint32_t q = JGET(w, body, "query");
        if (q != 0) {
            c = inner_class(w, q, depth);
            if (c != PX_CLASS_READ && c != PX_CLASS_UNKNOWN)
                c = PX_CLASS_WRITE;
        }
        uint32_t rel = JGET(w, body, "relation");
        if (rel != 0 && w->t[rel].type == J_OBJ)
            on_rangevar(w, rel, PX_REL_READ);
        /* COPY ... TO 'file' / PROGRAM acts on the server host: primary. */
        if (jtrue(w, JGET(w, body, "is_program")) || JGET(w, body, "filename") != 0)
            return PX_CLASS_WRITE;
        return c;
    }
    if (KEQ("TransactionStmt")) {
        si->txn = txn_kind(w, JGET(w, body, "kind"));
        si->read_only = defelems_read_only(w, JGET(w, body, "options"));
        return PX_CLASS_TXN;
    }
    if (KEQ("VariableSetStmt"))
        return set_class(w, body, si);
    if (KEQ("DiscardStmt")) {
        si->session = PX_SESSION_DISCARD;
        return PX_CLASS_SESSION;
    }
    if (KEQ("ListenStmt")) {
        si->session = PX_SESSION_LISTEN;
        w->pin = true;
        return PX_CLASS_SESSION;
    }
    if (KEQ("UnlistenStmt")) {
        si->session = PX_SESSION_UNLISTEN;
        return PX_CLASS_SESSION;
    }
    if (KEQ("PrepareStmt")) {
        si->session = PX_SESSION_PREPARE;
        w->pin = true;
        if (inner_class(w, JGET(w, body, "query"), depth) != PX_CLASS_READ)
            si->inner_write = true;
        return PX_CLASS_SESSION;
    }
    if (KEQ("ExecuteStmt")) {
        si->session = PX_SESSION_EXECUTE;
        return PX_CLASS_SESSION;
    }
    if (KEQ("DeallocateStmt")) {
        si->session = PX_SESSION_DEALLOCATE;
        return PX_CLASS_SESSION;
    }
    if (KEQ("DeclareCursorStmt")) {
        si->session = PX_SESSION_DECLARE_CURSOR;
        uint32_t opts = JGET(w, body, "options");
        if (opts != 0 && w->t[opts].type == J_PRIM) {
            long o = strtol(w->js + w->t[opts].start, NULL, 10);
            if (o & 0x0020) /* CURSOR_OPT_HOLD */
                w->pin = true;
        }
        if (inner_class(w, JGET(w, body, "query"), depth) != PX_CLASS_READ)
            si->inner_write = true;
        return PX_CLASS_SESSION;
    }
    if (KEQ("FetchStmt")) {
        si->session = PX_SESSION_FETCH;
        return PX_CLASS_SESSION;
    }
    if (KEQ("ClosePortalStmt")) {
        si->session = PX_SESSION_CLOSE_CURSOR;
        return PX_CLASS_SESSION;
    }
    if (KEQ("LoadStmt")) {
        si->session = PX_SESSION_LOAD;
        w->pin = true;
        return PX_CLASS_SESSION;
    }
    /* DDL, utility, CALL, DO, NOTIFY, LOCK, VACUUM, ...: every relation named
     * is (as far as caching is concerned) written. */
    if (KEQ("DropStmt"))
        on_drop(w, body);
    w->relmode = PX_REL_WRITE;
    walk(w, body, depth);
    return PX_CLASS_WRITE;
}

/* ---- key predicates -------------------------------------------------------------------- */

/* The decimal digits [p, p + n) as an int64, negated when @p neg; false when
 * empty, not all digits, or out of range. */
static bool digits_i64(const char *p, size_t n, bool neg, int64_t *out)
{
    uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX, v = 0;
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned d = (unsigned)((unsigned char)p[i] - '0');
        if (d > 9 || v > (limit - d) / 10)
            return false;
        v = v * 10 + d;
    }
    if (!neg)
        *out = (int64_t)v;
    else
        *out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
    return true;
}

/* The value key template @p t stands for in text @p sql, whose literals are
 * @p lits. False when that literal is not a strict integer in int64 range. */
static bool lit_value(const char *sql, const lit_t *lits, uint32_t nlits, const keytpl_t *t,
                      int64_t *out)
{
    if (t->lit >= nlits)
        return false;
    const lit_t *l = &lits[t->lit];
    const char *p = sql + l->cs;
    size_t n = l->ce - l->cs;
    if (t->kind == KT_INT)
        return l->ph == PH_INT && digits_i64(p, n, t->neg != 0, out);
    /* U&'...' UESCAPE '-' can make "-0035" mean "5": only strings whose
     * content is what they say. */
    if (t->kind != KT_STR || l->ph != PH_STRING || (sql[l->start] | 0x20) == 'u')
        return false;
    bool neg = n > 0 && p[0] == '-';
    return digits_i64(p + neg, n - neg, neg, out);
}

/* The number in JSON primitive @p k. */
static bool jint(const walk_t *w, uint32_t k, int64_t *out)
{
    if (k == 0 || w->t[k].type != J_PRIM)
        return false;
    const char *p = w->js + w->t[k].start;
    size_t n = w->t[k].len;
    bool neg = n > 0 && p[0] == '-';
    return digits_i64(p + neg, n - neg, neg, out);
}

/* Index of the first literal at or after byte @p loc (nlits if none). */
static uint32_t lit_at(const walk_t *w, uint32_t loc)
{
    uint32_t lo = 0, hi = w->nlits;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (w->lits[mid].start < loc)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* The parser reports a negated constant ("-5", "- (-5)") at its first '-'
 * sign; between there and the digits only signs, parentheses, whitespace and
 * comments can stand. 1 for an odd number of signs, 0 for even, -1 if the
 * text is anything else. */
static int neg_parity(const char *s, size_t i, size_t to)
{
    unsigned minus = 0;
    while (i < to) {
        unsigned char c = (unsigned char)s[i];
        if (c == '-' && i + 1 < to && s[i + 1] == '-') {
            while (i < to && s[i] != '\n' && s[i] != '\r')
                i++;
        } else if (c == '/' && i + 1 < to && s[i + 1] == '*') {
            int depth = 1;
            for (i += 2; i < to && depth > 0;) {
                if (s[i] == '*' && i + 1 < to && s[i + 1] == '/') {
                    depth--;
                    i += 2;
                } else if (s[i] == '/' && i + 1 < to && s[i + 1] == '*') {
                    depth++;
                    i += 2;
                } else {
                    i++;
                }
            }
            if (depth > 0)
                return -1;
        } else if (c == '-') {
            minus++;
            i++;
        } else if (c == '(' || g_cclass[c] == C_SPACE) {
            i++;
        } else {
            return -1;
        }
    }
    return minus > 0 ? (int)(minus & 1) : -1;
}

/* TypeName object @p tn is smallint / integer / bigint / int2 / int4 / int8
 * (optionally pg_catalog-qualified), no array, no modifier. */
static bool int_typename(const walk_t *w, uint32_t tn)
{
    if (tn == 0 || w->t[tn].type != J_OBJ)
        return false;
    uint32_t names = 0, k = tn + 1;
    for (uint32_t c = 0; c + 1 < w->t[tn].count && k + 1 < w->nt; c += 2) {
        int64_t mod;
        if (JIS(w, k, "names"))
            names = k + 1;
        else if (JIS(w, k, "typemod")) {
            if (!jint(w, k + 1, &mod) || mod != -1)
                return false;
        } else if (!JIS(w, k, "location"))
            return false; /* arrayBounds, typmods, setof, pct_type, ... */
        k = w->t[k + 1].next;
    }
    if (names == 0 || w->t[names].type != J_ARR || w->t[names].count < 1 || w->t[names].count > 2)
        return false;
    char buf[16];
    uint32_t e = names + 1;
    if (w->t[names].count == 2) {
        if (name_part(w, e, buf, sizeof buf) < 0 || strcmp(buf, "pg_catalog") != 0)
            return false;
        e = w->t[e].next;
    }
    if (e >= w->nt || name_part(w, e, buf, sizeof buf) < 0)
        return false;
    return strcmp(buf, "int2") == 0 || strcmp(buf, "int4") == 0 || strcmp(buf, "int8") == 0;
}

/* Whether expression node @p node is a value (px_classify_key_t's "V"): a
 * parameter, or a literal whose template goes to @p t. */
static bool key_value(const walk_t *w, uint32_t node, keytpl_t *t, uint16_t *param)
{
    uint32_t tc = JGET(w, node, "TypeCast");
    if (tc != 0) {
        if (!int_typename(w, JGET(w, tc, "typeName")))
            return false;
        node = JGET(w, tc, "arg");
    }
    int64_t num;
    uint32_t pr = JGET(w, node, "ParamRef");
    if (pr != 0) {
        if (!jint(w, JGET(w, pr, "number"), &num) || num < 1 || num > UINT16_MAX)
            return false;
        *t = (keytpl_t){0, KT_PARAM, 0};
        *param = (uint16_t)num;
        return true;
    }
    uint32_t ac = JGET(w, node, "A_Const");
    int64_t loc;
    if (ac == 0 || !jint(w, JGET(w, ac, "location"), &loc) || loc < 0 || loc > UINT32_MAX)
        return false;
    uint32_t o = lit_at(w, (uint32_t)loc);
    if (o >= w->nlits)
        return false;
    const lit_t *l = &w->lits[o];
    uint32_t iv = JGET(w, ac, "ival"), fv = JGET(w, ac, "fval");
    if (JGET(w, ac, "sval") != 0) {
        if (l->start != (uint32_t)loc || l->ph != PH_STRING)
            return false;
        *t = (keytpl_t){(uint16_t)o, KT_STR, 0};
        return true;
    }
    if ((iv == 0 && fv == 0) || l->ph != PH_INT)
        return false;
    int neg = l->start == (uint32_t)loc ? 0 : neg_parity(w->sql, (size_t)loc, l->start);
    if (neg < 0)
        return false;
    *t = (keytpl_t){(uint16_t)o, KT_INT, (uint8_t)neg};
    /* Cross-check the lexer against the parser. The JSON prints a negative
     * Integer as "ival":{} (as it does 0), so only its sign is comparable. */
    size_t dl = l->ce - l->cs;
    if (iv != 0) {
        int64_t want = 0, got;
        uint32_t v = JGET(w, iv, "ival");
        if (!lit_value(w->sql, w->lits, w->nlits, t, &got) || (v != 0 && !jint(w, v, &want)))
            return false;
        return v != 0 ? got == want : got <= 0;
    }
    uint32_t f = JGET(w, fv, "fval");
    return f != 0 && w->t[f].type == J_STR && w->t[f].len == dl + (size_t)neg &&
           (!neg || w->js[w->t[f].start] == '-') &&
           memcmp(w->js + w->t[f].start + neg, w->sql + l->cs, dl) == 0;
}

typedef struct keyx {
    walk_t *w;
    uint8_t rel;             /* the target's index in rels[] */
    bool overflow;           /* more keys or column-name bytes than fit */
    uint32_t set_list;       /* UPDATE: its targetList (no key on these columns) */
    char qual[CLS_NAME_MAX]; /* what a two-part column reference must start with */
} keyx_t;

/* Find RangeVar @p rv among the relations: its index and qualifier. */
static bool key_target(keyx_t *x, uint32_t rv)
{
    walk_t *w = x->w;
    const px_classify_result_t *r = w->res;
    char name[CLS_RELNAME_MAX];
    uint32_t alias = JGET(w, rv, "alias");
    if (rv == 0 || w->t[rv].type != J_OBJ || JGET(w, alias, "colnames") != 0)
        return false; /* FROM t AS x(a, b) renames the columns */
    int nl = rangevar_name(w, rv, name);
    if (nl < 0)
        return false;
    for (unsigned i = 0; i < r->n_rels; i++) {
        if (strcmp(px_classify_rel(r, i), name) == 0) {
            x->rel = (uint8_t)i;
            uint32_t q = alias != 0 ? JGET(w, alias, "aliasname") : JGET(w, rv, "relname");
            return jstr(w, q, x->qual, sizeof x->qual) >= 0;
        }
    }
    return false;
}

/* The column of ColumnRef node @p node, `col` or `qual.col`, into @p buf. */
static int key_column(const keyx_t *x, uint32_t node, char *buf, size_t cap)
{
    const walk_t *w = x->w;
    uint32_t f = JGET(w, JGET(w, node, "ColumnRef"), "fields");
    if (f == 0 || w->t[f].type != J_ARR || w->t[f].count < 1 || w->t[f].count > 2)
        return -1;
    uint32_t e = f + 1;
    if (w->t[f].count == 2) {
        char q[CLS_NAME_MAX];
        if (name_part(w, e, q, sizeof q) < 0 || strcmp(q, x->qual) != 0)
            return -1;
        e = w->t[e].next;
    }
    return e < w->nt ? name_part(w, e, buf, cap) : -1; /* A_Star is not a column */
}

/* Whether UPDATE target list @p list assigns column @p col. */
static bool key_assigned(const walk_t *w, uint32_t list, const char *col)
{
    if (w->t[list].type != J_ARR)
        return true;
    uint32_t k = list + 1;
    for (uint32_t c = 0; c < w->t[list].count && k < w->nt; c++, k = w->t[k].next) {
        char name[CLS_NAME_MAX];
        int l = jstr(w, JGET(w, JGET(w, k, "ResTarget"), "name"), name, sizeof name);
        if (l < 0 || strcmp(name, col) == 0)
            return true;
    }
    return false;
}

static void key_add(keyx_t *x, const char *col, size_t cl, uint16_t row, const keytpl_t *t,
                    uint16_t param)
{
    px_classify_result_t *r = x->w->res;
    if (r->n_keys >= PX_CLASSIFY_MAX_KEYS) {
        x->overflow = true;
        return;
    }
    uint32_t off = 0;
    while (off < r->cols_len) {
        size_t l = strlen(r->cols + off);
        if (l == cl && memcmp(r->cols + off, col, cl) == 0)
            break;
        off += (uint32_t)l + 1;
    }
    if (off >= r->cols_len) {
        if (r->cols_len + cl + 1 > PX_CLASSIFY_COLS_BYTES) {
            x->overflow = true;
            return;
        }
        off = r->cols_len;
        memcpy(r->cols + off, col, cl + 1);
        r->cols_len = (uint16_t)(off + cl + 1);
    }
    r->keys[r->n_keys] =
        (px_classify_key_t){x->rel, t->kind == KT_PARAM, param, row, (uint16_t)off, 0};
    x->w->tpl[r->n_keys] = *t;
    r->n_keys++;
}

/* `col = V` / `V = col` in the top-level AND conjuncts of @p expr. */
static void key_conjuncts(keyx_t *x, uint32_t expr, unsigned depth)
{
    walk_t *w = x->w;
    if (expr == 0 || depth > CLS_KEY_MAX_DEPTH || x->overflow)
        return;
    uint32_t b = JGET(w, expr, "BoolExpr");
    if (b != 0) {
        uint32_t args = JGET(w, b, "args");
        if (!JIS(w, JGET(w, b, "boolop"), "AND_EXPR") || args == 0 || w->t[args].type != J_ARR)
            return; /* OR, NOT: no key */
        uint32_t k = args + 1;
        for (uint32_t c = 0; c < w->t[args].count && k < w->nt; c++, k = w->t[k].next)
            key_conjuncts(x, k, depth + 1);
        return;
    }
    uint32_t a = JGET(w, expr, "A_Expr"), op = JGET(w, a, "name");
    char opname[4], col[CLS_NAME_MAX];
    if (a == 0 || !JIS(w, JGET(w, a, "kind"), "AEXPR_OP") || op == 0 || w->t[op].type != J_ARR ||
        w->t[op].count != 1 || name_part(w, op + 1, opname, sizeof opname) != 1 || opname[0] != '=')
        return;
    uint32_t l = JGET(w, a, "lexpr"), rx = JGET(w, a, "rexpr");
    keytpl_t t;
    uint16_t param = 0;
    int cl = key_column(x, l, col, sizeof col);
    if (cl < 0 || !key_value(w, rx, &t, &param)) {
        cl = key_column(x, rx, col, sizeof col);
        if (cl < 0 || !key_value(w, l, &t, &param))
            return;
    }
    if (x->set_list != 0 && key_assigned(w, x->set_list, col))
        return;
    key_add(x, col, (size_t)cl, 0, &t, param);
}

/* A SelectStmt body that reads its one FROM item and nothing else; that item. */
static uint32_t select_simple(const walk_t *w, uint32_t body)
{
    uint32_t from = 0, k = body + 1;
    for (uint32_t c = 0; c + 1 < w->t[body].count && k + 1 < w->nt; c += 2) {
        const char *key = w->js + w->t[k].start;
        size_t kl = w->t[k].type == J_STR ? w->t[k].len : 0;
        if (KEQ("fromClause"))
            from = k + 1;
        else if (KEQ("op")) {
            if (!JIS(w, k + 1, "SETOP_NONE"))
                return 0;
        } else if (!(KEQ("targetList") || KEQ("whereClause") || KEQ("groupClause") ||
                     KEQ("groupDistinct") || KEQ("havingClause") || KEQ("windowClause") ||
                     KEQ("sortClause") || KEQ("limitOffset") || KEQ("limitCount") ||
                     KEQ("limitOption") || KEQ("distinctClause") || KEQ("lockingClause")))
            return 0; /* withClause, intoClause, valuesLists, larg/rarg, ... */
        k = w->t[k + 1].next;
    }
    if (from == 0 || w->t[from].type != J_ARR || w->t[from].count != 1)
        return 0;
    return JGET(w, from + 1, "RangeVar");
}

/* INSERT INTO rel (cols) VALUES (...), ...: one key per value cell. */
static uint16_t keys_insert(keyx_t *x, uint32_t body)
{
    walk_t *w = x->w;
    uint32_t occ = JGET(w, body, "onConflictClause"), cols = JGET(w, body, "cols");
    uint32_t sel = JGET(w, JGET(w, body, "selectStmt"), "SelectStmt"), vals = 0;
    if (JGET(w, body, "withClause") != 0 ||
        (occ != 0 && !JIS(w, JGET(w, occ, "action"), "ONCONFLICT_NOTHING")) || cols == 0 ||
        w->t[cols].type != J_ARR || w->t[cols].count == 0 || sel == 0)
        return 0;
    uint32_t k = sel + 1;
    for (uint32_t c = 0; c + 1 < w->t[sel].count && k + 1 < w->nt; c += 2) {
        if (JIS(w, k, "valuesLists"))
            vals = k + 1;
        else if (!(JIS(w, k, "limitOption") || (JIS(w, k, "op") && JIS(w, k + 1, "SETOP_NONE"))))
            return 0;
        k = w->t[k + 1].next;
    }
    if (vals == 0 || w->t[vals].type != J_ARR || w->t[vals].count == 0 ||
        w->t[vals].count > UINT16_MAX || !key_target(x, JGET(w, body, "relation")))
        return 0;
    uint32_t e = vals + 1, ncols = w->t[cols].count;
    for (uint32_t row = 0; row < w->t[vals].count && e < w->nt; row++, e = w->t[e].next) {
        uint32_t items = JGET(w, JGET(w, e, "List"), "items");
        if (items == 0 || w->t[items].type != J_ARR || w->t[items].count != ncols)
            return 0;
        uint32_t c = cols + 1, v = items + 1;
        for (uint32_t i = 0; i < ncols && c < w->nt && v < w->nt && !x->overflow;
             i++, c = w->t[c].next, v = w->t[v].next) {
            uint32_t rt = JGET(w, c, "ResTarget");
            char col[CLS_NAME_MAX];
            keytpl_t t;
            uint16_t param = 0;
            int cl = jstr(w, JGET(w, rt, "name"), col, sizeof col);
            if (cl >= 0 && JGET(w, rt, "indirection") == 0 && key_value(w, v, &t, &param))
                key_add(x, col, (size_t)cl, (uint16_t)row, &t, param);
        }
    }
    return x->overflow ? 0 : (uint16_t)w->t[vals].count;
}

/* The key predicates of the text's only statement @p stmt ({"SelectStmt":
 * {...}} and the like), as px_classify_key_t's comment says. */
static void keys_extract(walk_t *w, uint32_t stmt)
{
    px_classify_result_t *r = w->res;
    keyx_t x = {.w = w};
    uint16_t rows = 0;
    if (stmt == 0 || w->t[stmt].type != J_OBJ || w->t[stmt].count < 2 || w->deep ||
        (r->flags & PX_CLS_F_RELS_TRUNCATED) || w->t[stmt + 1].type != J_STR ||
        w->t[stmt + 2].type != J_OBJ)
        return;
    const char *key = w->js + w->t[stmt + 1].start;
    size_t kl = w->t[stmt + 1].len;
    uint32_t body = stmt + 2, rv = 0;
    if (KEQ("SelectStmt")) {
        if (!w->nested && r->n_rels == 1)
            rv = select_simple(w, body);
    } else if (KEQ("UpdateStmt") || KEQ("DeleteStmt")) {
        if (JGET(w, body, "withClause") == 0 && JGET(w, body, "fromClause") == 0 &&
            JGET(w, body, "usingClause") == 0)
            rv = JGET(w, body, "relation");
        if (KEQ("UpdateStmt")) {
            x.set_list = JGET(w, body, "targetList");
            if (x.set_list == 0)
                rv = 0;
        }
    } else if (KEQ("InsertStmt")) {
        rows = keys_insert(&x, body);
    }
    if (rv != 0 && key_target(&x, rv)) {
        key_conjuncts(&x, JGET(w, body, "whereClause"), 0);
        rows = x.overflow ? 0 : 1;
    }
    r->key_rows = rows;
    if (rows == 0)
        r->n_keys = r->cols_len = 0;
}

/* Give every literal key of @p r its value in text @p sql, dropping those
 * whose literal is not a strict integer in int64 range in this text. */
static void keys_fill(px_classify_result_t *r, const keytpl_t *tpl, const char *sql,
                      const lit_t *lits, uint32_t nlits)
{
    unsigned o = 0;
    for (unsigned i = 0; i < r->n_keys; i++) {
        px_classify_key_t k = r->keys[i];
        if (!k.is_param && !lit_value(sql, lits, nlits, &tpl[i], &k.value))
            continue;
        r->keys[o++] = k;
    }
    r->n_keys = (uint16_t)o;
}

static void result_init(px_classify_result_t *r)
{
    r->cls = PX_CLASS_UNKNOWN;
    r->txn = PX_TXN_NONE;
    r->session = PX_SESSION_NONE;
    r->flags = 0;
    r->cache_ttl = -1;
    r->n_stmts = 0;
    r->n_rels = 0;
    r->rels_len = 0;
    r->key_rows = 0;
    r->n_keys = 0;
    r->cols_len = 0;
}

/* The verdict on a parse tree (@p js is libpg_query's JSON) of text @p sql,
 * whose literals the lexer found at @p lits; key templates go to @p tpl.
 * False when the JSON cannot be tokenized (too big or too deep). */
static bool classify_json(jbuf_t *jb, const px_classify_vol_t *vol, const char *js, size_t jn,
                          const char *sql, const lit_t *lits, uint32_t nlits, keytpl_t *tpl,
                          px_classify_result_t *res)
{
    if (!jtok_parse(jb, js, jn))
        return false;
    walk_t w;
    memset(&w, 0, offsetof(walk_t, scope));
    w.js = js;
    w.t = jb->t;
    w.nt = jb->n;
    w.vol = vol;
    w.res = res;
    w.sql = sql;
    w.lits = lits;
    w.nlits = nlits;
    w.tpl = tpl;

    unsigned n = 0;
    bool all_read = true, any_unknown = false, any_write = false, any_txn = false;
    bool single_select = false, nocache = false, all_dml = true;
    uint32_t first = 0;
    uint32_t stmts = JGET(&w, 1, "stmts");
    if (stmts != 0 && w.t[stmts].type == J_ARR) {
        uint32_t k = stmts + 1;
        for (uint32_t c = 0; c < w.t[stmts].count && k < w.nt; c++, k = w.t[k].next) {
            memset(&w.dml, 0, offsetof(walk_t, scope) - offsetof(walk_t, dml));
            w.relmode = PX_REL_READ;
            stmtinfo_t si = {.read_only = -1};
            uint32_t node = JGET(&w, k, "stmt");
            px_class_t cl = node_class(&w, node, 2, &si);
            if (w.deep) {
                cl = PX_CLASS_UNKNOWN;
                res->flags |= PX_CLS_F_TOO_COMPLEX;
            }
            if (n == 0)
                first = node;
            n++;
            /* PX_CLS_F_DML: a read (not COPY) or a plain DML statement, with no
             * function call that may write behind the tables' backs. */
            if (!(si.dml_stmt || si.select || cl == PX_CLASS_READ) || si.copy ||
                (cl != PX_CLASS_READ && cl != PX_CLASS_WRITE) || w.into || w.side_effect ||
                w.vol_write || w.unverified || w.deep)
                all_dml = false;
            if (w.user_func)
                res->flags |= PX_CLS_F_USER_FUNC;
            single_select = n == 1 && si.select;
            nocache |= w.nocache;
            if (w.locking)
                res->flags |= PX_CLS_F_LOCKING;
            if (w.side_effect)
                res->flags |= PX_CLS_F_SIDE_EFFECT;
            if (w.standby)
                res->flags |= PX_CLS_F_STANDBY;
            if (w.vol_write || w.nocache)
                res->flags |= PX_CLS_F_VOLATILE;
            if (w.pin)
                res->flags |= PX_CLS_F_PIN;
            if (w.unverified)
                res->flags |= PX_CLS_F_UNVERIFIED;
            if (si.copy)
                res->flags |= PX_CLS_F_COPY;
            if (cl == PX_CLASS_WRITE || si.inner_write || w.dml || w.into)
                res->flags |= PX_CLS_F_HAS_WRITE;
            if (cl != PX_CLASS_READ)
                all_read = false;
            switch (cl) {
            case PX_CLASS_UNKNOWN:
                any_unknown = true;
                break;
            case PX_CLASS_WRITE:
                any_write = true;
                break;
            case PX_CLASS_TXN:
                any_txn = true;
                res->flags |= PX_CLS_F_HAS_TXN;
                res->txn = si.txn;
                if (si.txn == PX_TXN_BEGIN || si.txn == PX_TXN_SET) {
                    if (si.read_only == 1)
                        res->flags |= PX_CLS_F_READ_ONLY;
                    else if (si.read_only == 0 || si.txn == PX_TXN_BEGIN)
                        res->flags &= ~PX_CLS_F_READ_ONLY;
                }
                break;
            case PX_CLASS_SESSION:
                res->flags |= PX_CLS_F_HAS_SESSION;
                res->session = si.session;
                break;
            default:
                break;
            }
        }
    }
    res->n_stmts = (uint16_t)(n > UINT16_MAX ? UINT16_MAX : n);
    if (n == 0)
        res->cls = PX_CLASS_UNKNOWN;
    else if (all_read)
        res->cls = PX_CLASS_READ;
    else if (any_unknown)
        res->cls = PX_CLASS_UNKNOWN;
    else if (any_write)
        res->cls = PX_CLASS_WRITE;
    else if (any_txn)
        res->cls = PX_CLASS_TXN;
    else
        res->cls = PX_CLASS_SESSION;
    if (n == 1 && single_select)
        res->flags |= PX_CLS_F_SELECT;
    if (n == 1 && single_select && res->cls == PX_CLASS_READ && !nocache &&
        !(res->flags & (PX_CLS_F_RELS_TRUNCATED | PX_CLS_F_USER_FUNC)))
        res->flags |= PX_CLS_F_CACHEABLE;
    if (n > 0 && all_dml)
        res->flags |= PX_CLS_F_DML;
    if (n == 1)
        keys_extract(&w, first); /* w still holds the statement's findings */
    return true;
}

/* ---- per-thread verdict cache ------------------------------------------------------- */

/* One cached verdict: the header, then res_len bytes of a packed
 * px_classify_result_t (verdict_pack()), then the key. */
typedef struct centry {
    uint64_t hash;
    uint64_t gen; /* volatility generation it was computed under */
    uint32_t key_len;
    uint32_t res_len;
    uint32_t charge; /* bytes counted against the budget */
    uint32_t ring;   /* its index in the clock ring */
    uint8_t ref;     /* CLOCK reference bit: used since the hand last passed */
} centry_t;

#define CE_RES(e) ((char *)((e) + 1))
#define CE_KEY(e) (CE_RES(e) + (e)->res_len)

typedef struct cslot {
    uint64_t hash;
    centry_t *e; /* NULL = empty */
} cslot_t;

/* Open addressing (linear probing, backward-shift deletion) at most half
 * full, plus a CLOCK ring for eviction: entries start unreferenced, a hit
 * marks them, the hand evicts the first unmarked one it meets. */
typedef struct ccache {
    cslot_t *slots;
    uint32_t mask;
    centry_t **ring; /* cap entries */
    uint32_t *freeidx;
    uint32_t nfree;
    uint32_t cap;  /* max entries */
    uint32_t used; /* ring positions handed out */
    uint32_t hand;
    uint32_t count;
    uint64_t bytes, max_bytes;
} ccache_t;

typedef struct cls_tls {
    struct cls_tls *prev, *next; /* registry, for px_classify_stats */
    ccache_t cache;
    bool have_cache;
    char *keybuf; /* key being built */
    size_t keycap;
    char *textbuf; /* NUL-terminated copy for the parser */
    size_t textcap;
    lvl_save_t *stack; /* lexer nesting stack */
    uint32_t stack_cap;
    lit_t lits[CLS_MAX_LITS]; /* where the current text's literals are */
    jbuf_t jb;
    px_classify_vol_t *vol; /* reference held on the table in use */
    uint64_t vol_gen;       /* generation of vol */
    /* counters: written only by the owning thread, read by px_classify_stats */
    _Atomic uint64_t calls, hits, parses, parse_errors, too_complex, evictions, entries, bytes;
} cls_tls_t;

#define CNT_ADD(T, f, d)                                                                           \
    atomic_store_explicit(&(T)->f, atomic_load_explicit(&(T)->f, memory_order_relaxed) + (d),      \
                          memory_order_relaxed)
#define CNT_INC(T, f) CNT_ADD(T, f, 1)

static bool cache_init(ccache_t *c, uint32_t cap, uint64_t max_bytes)
{
    if (cap == 0 || cap > (1u << 26) || max_bytes == 0)
        return false;
    uint32_t slots = 16;
    while (slots < cap * 2)
        slots <<= 1;
    c->slots = calloc(slots, sizeof *c->slots);
    c->ring = calloc(cap, sizeof *c->ring);
    c->freeidx = malloc((size_t)cap * sizeof *c->freeidx);
    if (c->slots == NULL || c->ring == NULL || c->freeidx == NULL) {
        free(c->slots);
        free(c->ring);
        free(c->freeidx);
        memset(c, 0, sizeof *c);
        return false;
    }
    c->mask = slots - 1;
    c->cap = cap;
    c->max_bytes = max_bytes;
    return true;
}

static void cache_free(ccache_t *c)
{
    for (uint32_t i = 0; i < c->used; i++)
        free(c->ring[i]);
    free(c->slots);
    free(c->ring);
    free(c->freeidx);
    memset(c, 0, sizeof *c);
}

static centry_t *cache_find(const ccache_t *c, uint64_t h, const char *key, uint32_t kl)
{
    for (uint32_t i = (uint32_t)h & c->mask;; i = (i + 1) & c->mask) {
        const cslot_t *s = &c->slots[i];
        if (s->e == NULL)
            return NULL;
        if (s->hash == h && s->e->key_len == kl && memcmp(CE_KEY(s->e), key, kl) == 0)
            return s->e;
    }
}

static void cache_remove(cls_tls_t *T, centry_t *e)
{
    ccache_t *c = &T->cache;
    uint32_t i = (uint32_t)e->hash & c->mask;
    while (c->slots[i].e != e)
        i = (i + 1) & c->mask;
    c->slots[i].e = NULL;
    for (uint32_t j = i;;) {
        j = (j + 1) & c->mask;
        if (c->slots[j].e == NULL)
            break;
        uint32_t home = (uint32_t)c->slots[j].hash & c->mask;
        bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
        if (!stays) {
            c->slots[i] = c->slots[j];
            c->slots[j].e = NULL;
            i = j;
        }
    }
    c->ring[e->ring] = NULL;
    c->freeidx[c->nfree++] = e->ring;
    c->count--;
    c->bytes -= e->charge;
    CNT_ADD(T, entries, (uint64_t)-1);
    CNT_ADD(T, bytes, -(uint64_t)e->charge);
    free(e);
}

static bool cache_evict_one(cls_tls_t *T)
{
    ccache_t *c = &T->cache;
    if (c->count == 0)
        return false;
    for (uint64_t steps = 0; steps < 2ull * c->used + 2; steps++) {
        uint32_t idx = c->hand;
        c->hand = c->hand + 1 >= c->used ? 0 : c->hand + 1;
        centry_t *e = c->ring[idx];
        if (e == NULL)
            continue;
        if (e->ref) {
            e->ref = 0;
            continue;
        }
        cache_remove(T, e);
        CNT_INC(T, evictions);
        return true;
    }
    return false;
}

/* A verdict as a cache entry holds it: the fields before keys[], then the
 * n_keys keys and their templates, cols_len bytes of cols[] and rels_len
 * bytes of rels[] — only what is used, so that a hit copies little. */
#define VERDICT_HEAD offsetof(px_classify_result_t, keys)

static size_t verdict_size(const px_classify_result_t *r)
{
    return VERDICT_HEAD + (size_t)r->n_keys * (sizeof(px_classify_key_t) + sizeof(keytpl_t)) +
           r->cols_len + r->rels_len;
}

static void verdict_pack(char *dst, const px_classify_result_t *r, const keytpl_t *tpl)
{
    memcpy(dst, r, VERDICT_HEAD);
    dst += VERDICT_HEAD;
    memcpy(dst, r->keys, r->n_keys * sizeof r->keys[0]);
    dst += r->n_keys * sizeof r->keys[0];
    memcpy(dst, tpl, r->n_keys * sizeof tpl[0]);
    dst += r->n_keys * sizeof tpl[0];
    memcpy(dst, r->cols, r->cols_len);
    memcpy(dst + r->cols_len, r->rels, r->rels_len);
}

/* The hit path: most verdicts (BEGIN, COMMIT, SET ...) have no keys and no
 * relations, and then this is one fixed-size copy. */
static void verdict_unpack(px_classify_result_t *r, keytpl_t *tpl, const char *src)
{
    memcpy(r, src, VERDICT_HEAD);
    src += VERDICT_HEAD;
    if (r->n_keys > 0) {
        for (unsigned i = 0; i < r->n_keys; i++, src += sizeof r->keys[0])
            memcpy(&r->keys[i], src, sizeof r->keys[0]); /* inlined fixed-size copies */
        for (unsigned i = 0; i < r->n_keys; i++, src += sizeof tpl[0])
            memcpy(&tpl[i], src, sizeof tpl[0]);
        memcpy(r->cols, src, r->cols_len);
        src += r->cols_len;
    }
    if (r->rels_len > 0)
        memcpy(r->rels, src, r->rels_len);
}

static void cache_put(cls_tls_t *T, uint64_t h, const char *key, uint32_t kl,
                      const px_classify_result_t *res, const keytpl_t *tpl, uint64_t gen)
{
    ccache_t *c = &T->cache;
    size_t res_len = verdict_size(res);
    size_t charge = sizeof(centry_t) + res_len + kl + sizeof(cslot_t) * 2 + sizeof(void *);
    if (charge > c->max_bytes / 4)
        return;
    centry_t *old = cache_find(c, h, key, kl);
    if (old != NULL)
        cache_remove(T, old); /* a stale generation */
    while (c->count >= c->cap || c->bytes + charge > c->max_bytes)
        if (!cache_evict_one(T))
            return;
    centry_t *e = malloc(sizeof(centry_t) + res_len + kl);
    if (e == NULL)
        return;
    *e = (centry_t){h, gen, kl, (uint32_t)res_len, (uint32_t)charge, 0, 0};
    verdict_pack(CE_RES(e), res, tpl);
    memcpy(CE_KEY(e), key, kl);
    uint32_t idx = c->nfree > 0 ? c->freeidx[--c->nfree] : c->used++;
    c->ring[idx] = e;
    e->ring = idx;
    uint32_t i = (uint32_t)h & c->mask;
    while (c->slots[i].e != NULL)
        i = (i + 1) & c->mask;
    c->slots[i] = (cslot_t){h, e};
    c->count++;
    c->bytes += charge;
    CNT_INC(T, entries);
    CNT_ADD(T, bytes, charge);
}

/* ---- thread state, registry ---------------------------------------------------------- */

static pthread_mutex_t g_reg_lock = PTHREAD_MUTEX_INITIALIZER;
static cls_tls_t *g_reg;              /* live thread states */
static px_classify_stats_t g_retired; /* counters of threads that went away */
static pthread_key_t g_tls_key;
static pthread_once_t g_key_once = PTHREAD_ONCE_INIT;
static _Thread_local cls_tls_t *t_tls;

static void tls_free(cls_tls_t *T)
{
    pthread_mutex_lock(&g_reg_lock);
    if (T->prev != NULL)
        T->prev->next = T->next;
    else
        g_reg = T->next;
    if (T->next != NULL)
        T->next->prev = T->prev;
    g_retired.calls += atomic_load(&T->calls);
    g_retired.hits += atomic_load(&T->hits);
    g_retired.parses += atomic_load(&T->parses);
    g_retired.parse_errors += atomic_load(&T->parse_errors);
    g_retired.too_complex += atomic_load(&T->too_complex);
    g_retired.evictions += atomic_load(&T->evictions);
    pthread_mutex_unlock(&g_reg_lock);
    if (T->have_cache)
        cache_free(&T->cache);
    free(T->keybuf);
    free(T->textbuf);
    free(T->stack);
    free(T->jb.t);
    free(T->jb.stack);
    vol_unref(T->vol);
    free(T);
}

static void tls_destructor(void *p)
{
    if (p != NULL)
        tls_free(p);
    t_tls = NULL;
}

static void key_init(void)
{
    (void)pthread_key_create(&g_tls_key, tls_destructor);
}

static cls_tls_t *tls_get(void)
{
    if (t_tls != NULL)
        return t_tls;
    pthread_once(&g_key_once, key_init);
    cls_tls_t *T = calloc(1, sizeof *T);
    if (T == NULL)
        return NULL;
    pthread_mutex_lock(&g_cfg_lock);
    uint32_t entries = g_cfg.cache_entries;
    uint64_t bytes = g_cfg.cache_bytes;
    pthread_mutex_unlock(&g_cfg_lock);
    T->have_cache = cache_init(&T->cache, entries, bytes);
    pthread_mutex_lock(&g_reg_lock);
    T->next = g_reg;
    if (g_reg != NULL)
        g_reg->prev = T;
    g_reg = T;
    pthread_mutex_unlock(&g_reg_lock);
    (void)pthread_setspecific(g_tls_key, T);
    t_tls = T;
    return T;
}

void px_classify_thread_exit(void)
{
    cls_tls_t *T = t_tls;
    if (T == NULL)
        return;
    (void)pthread_setspecific(g_tls_key, NULL);
    t_tls = NULL;
    tls_free(T);
}

static bool grow(char **buf, size_t *cap, size_t need)
{
    if (*cap >= need)
        return true;
    size_t ncap = *cap ? *cap : 1024;
    while (ncap < need)
        ncap *= 2;
    char *nb = realloc(*buf, ncap);
    if (nb == NULL)
        return false;
    *buf = nb;
    *cap = ncap;
    return true;
}

/* Take a reference on the current volatility table if it changed. */
static void vol_refresh(cls_tls_t *T)
{
    if (atomic_load_explicit(&g_vol_gen, memory_order_acquire) == T->vol_gen)
        return;
    pthread_mutex_lock(&g_vol_lock);
    px_classify_vol_t *v = g_vol;
    if (v != NULL)
        atomic_fetch_add_explicit(&v->refs, 1, memory_order_relaxed);
    uint64_t gen = atomic_load_explicit(&g_vol_gen, memory_order_relaxed);
    pthread_mutex_unlock(&g_vol_lock);
    vol_unref(T->vol);
    T->vol = v;
    T->vol_gen = gen;
}

/* ---- public API ------------------------------------------------------------------------ */

/* current_setting() of a setting a hot standby answers differently. The
 * setting's name is a literal, normalized away from the cached verdict, so
 * the text itself is looked at (only when it calls such functions at all). */
static bool reads_standby_setting(const char *sql, size_t len)
{
    return px_sqlscan_mentions(sql, len, "current_setting") &&
           (px_sqlscan_mentions(sql, len, "transaction_read_only") ||
            px_sqlscan_mentions(sql, len, "in_hot_standby"));
}

/* Apply the hints to a verdict (cached verdicts are stored without them). */
static void finalize(px_classify_result_t *r, const char *sql, size_t len, uint32_t hints,
                     int32_t ttl)
{
    uint32_t f = r->flags & ~(PX_CLS_F_REPLICA_OK | PX_CLS_F_HINT_PRIMARY | PX_CLS_F_HINT_REPLICA |
                              PX_CLS_F_HINT_CACHE | PX_CLS_F_HINT_NOCACHE);
    f |= hints;
    if ((f & PX_CLS_F_VOLATILE) && reads_standby_setting(sql, len))
        f |= PX_CLS_F_STANDBY;
    bool replica = r->cls == PX_CLASS_READ && !(f & PX_CLS_F_STANDBY);
    if (hints & PX_CLS_F_HINT_PRIMARY)
        replica = false;
    else if ((hints & PX_CLS_F_HINT_REPLICA) &&
             (r->cls == PX_CLASS_READ || r->cls == PX_CLASS_WRITE || r->cls == PX_CLASS_UNKNOWN))
        replica = true;
    if (replica)
        f |= PX_CLS_F_REPLICA_OK;
    if (hints & PX_CLS_F_HINT_NOCACHE)
        f &= ~PX_CLS_F_CACHEABLE;
    else if ((hints & PX_CLS_F_HINT_CACHE) && r->cls == PX_CLASS_READ && (f & PX_CLS_F_SELECT))
        f |= PX_CLS_F_CACHEABLE;
    r->flags = f;
    r->cache_ttl = (hints & PX_CLS_F_HINT_CACHE) && !(hints & PX_CLS_F_HINT_NOCACHE) ? ttl : -1;
}

/* Parse the text and walk its tree into @p out (key templates into @p tpl). */
static void parse_text(cls_tls_t *T, const char *sql, size_t len, const lexinfo_t *li,
                       keytpl_t *tpl, px_classify_result_t *out)
{
    if (!grow(&T->textbuf, &T->textcap, len + 1)) {
        out->flags |= PX_CLS_F_TOO_COMPLEX;
        return;
    }
    memcpy(T->textbuf, sql, len);
    T->textbuf[len] = '\0';
    vol_refresh(T);
    CNT_INC(T, parses);
    PgQueryParseResult pr = pg_query_parse(T->textbuf);
    if (pr.error != NULL || pr.parse_tree == NULL) {
        out->flags |= PX_CLS_F_PARSE_ERROR;
        CNT_INC(T, parse_errors);
    } else if (!classify_json(&T->jb, T->vol, pr.parse_tree, strlen(pr.parse_tree), sql, T->lits,
                              li->nlits, tpl, out)) {
        result_init(out);
        out->flags |= PX_CLS_F_TOO_COMPLEX;
        CNT_INC(T, too_complex);
    }
    pg_query_free_parse_result(pr);
    if (T->jb.cap > 65536) { /* do not keep a huge token array for one huge text */
        free(T->jb.t);
        T->jb.t = NULL;
        T->jb.cap = 0;
    }
}

static void classify_impl(const char *sql, size_t len, px_classify_result_t *out, bool use_cache)
{
    pthread_once(&g_init_once, cls_init);
    result_init(out);
    cls_tls_t *T = tls_get();
    uint32_t max_text = atomic_load_explicit(&g_max_text, memory_order_relaxed);
    uint32_t max_depth = atomic_load_explicit(&g_max_depth, memory_order_relaxed);
    if (T == NULL) {
        out->flags |= PX_CLS_F_TOO_COMPLEX;
        finalize(out, NULL, 0, 0, -1);
        return;
    }
    CNT_INC(T, calls);
    if ((sql == NULL && len > 0) || len > max_text || (len > 0 && memchr(sql, '\0', len) != NULL) ||
        !grow(&T->keybuf, &T->keycap, len + 1)) {
        out->flags |= PX_CLS_F_TOO_COMPLEX;
        CNT_INC(T, too_complex);
        finalize(out, NULL, 0, 0, -1);
        return;
    }
    if (T->stack_cap < max_depth + 1) {
        lvl_save_t *ns = realloc(T->stack, (size_t)(max_depth + 1) * sizeof *ns);
        if (ns == NULL) {
            out->flags |= PX_CLS_F_TOO_COMPLEX;
            finalize(out, NULL, 0, 0, -1);
            return;
        }
        T->stack = ns;
        T->stack_cap = max_depth + 1;
    }
    lexinfo_t li;
    const char *text = len > 0 ? sql : "";
    keytpl_t tpl[PX_CLASSIFY_MAX_KEYS];
    lex_key(text, len, T->keybuf, T->stack, max_depth, T->lits, &li);

    bool cache = use_cache && T->have_cache && li.key_len <= UINT32_MAX;
    uint64_t h = 0;
    if (cache) {
        h = cls_hash(T->keybuf, li.key_len);
        centry_t *e = cache_find(&T->cache, h, T->keybuf, (uint32_t)li.key_len);
        if (e != NULL && e->gen == atomic_load_explicit(&g_vol_gen, memory_order_acquire)) {
            verdict_unpack(out, tpl, CE_RES(e));
            e->ref = 1;
            CNT_INC(T, hits);
            if (out->n_keys > 0)
                keys_fill(out, tpl, text, T->lits, li.nlits);
            finalize(out, text, len, li.hints, li.ttl);
            out->flags |= PX_CLS_F_CACHED;
            return;
        }
    }
    uint64_t gen;
    if (li.deep) {
        out->flags |= PX_CLS_F_TOO_COMPLEX;
        CNT_INC(T, too_complex);
        gen = atomic_load_explicit(&g_vol_gen, memory_order_acquire);
    } else {
        parse_text(T, text, len, &li, tpl, out);
        gen = T->vol_gen;
    }
    /* A normalized key stands for many texts. One whose literal the parser
     * rejects (a bad escape, say) must not make its valid siblings UNKNOWN;
     * the reverse is harmless (the server rejects the bad text wherever it
     * goes), so only parse errors are kept out. */
    if (cache && !((out->flags & PX_CLS_F_PARSE_ERROR) && T->keybuf[0] == 'N'))
        cache_put(T, h, T->keybuf, (uint32_t)li.key_len, out, tpl, gen);
    if (out->n_keys > 0)
        keys_fill(out, tpl, text, T->lits, li.nlits); /* after caching: the cache keeps templates */
    finalize(out, text, len, li.hints, li.ttl);
}

void px_classify(const char *sql, size_t len, px_classify_result_t *out)
{
    classify_impl(sql, len, out, true);
}

void px_classify_uncached(const char *sql, size_t len, px_classify_result_t *out)
{
    classify_impl(sql, len, out, false);
}

void px_classify_config_defaults(px_classify_config_t *cfg)
{
    cfg->cache_entries = CLS_DEFAULT_ENTRIES;
    cfg->cache_bytes = CLS_DEFAULT_BYTES;
    cfg->max_text = CLS_DEFAULT_MAX_TEXT;
    cfg->max_depth = CLS_DEFAULT_MAX_DEPTH;
}

void px_classify_configure(const px_classify_config_t *cfg)
{
    pthread_mutex_lock(&g_cfg_lock);
    g_cfg.cache_entries = cfg->cache_entries;
    g_cfg.cache_bytes = cfg->cache_bytes ? cfg->cache_bytes : CLS_DEFAULT_BYTES;
    if (cfg->max_text != 0)
        g_cfg.max_text = cfg->max_text;
    if (cfg->max_depth != 0)
        g_cfg.max_depth = cfg->max_depth > 100000 ? 100000 : cfg->max_depth;
    atomic_store(&g_max_text, g_cfg.max_text);
    atomic_store(&g_max_depth, g_cfg.max_depth);
    pthread_mutex_unlock(&g_cfg_lock);
}

void px_classify_stats(px_classify_stats_t *out)
{
    pthread_mutex_lock(&g_reg_lock);
    *out = g_retired;
    out->entries = out->bytes = 0;
    for (cls_tls_t *T = g_reg; T != NULL; T = T->next) {
        out->calls += atomic_load_explicit(&T->calls, memory_order_relaxed);
        out->hits += atomic_load_explicit(&T->hits, memory_order_relaxed);
        out->parses += atomic_load_explicit(&T->parses, memory_order_relaxed);
        out->parse_errors += atomic_load_explicit(&T->parse_errors, memory_order_relaxed);
        out->too_complex += atomic_load_explicit(&T->too_complex, memory_order_relaxed);
        out->evictions += atomic_load_explicit(&T->evictions, memory_order_relaxed);
        out->entries += atomic_load_explicit(&T->entries, memory_order_relaxed);
        out->bytes += atomic_load_explicit(&T->bytes, memory_order_relaxed);
    }
    pthread_mutex_unlock(&g_reg_lock);
}

const char *px_class_to_str(px_class_t c)
{
    switch (c) {
    case PX_CLASS_UNKNOWN:
        return "unknown";
    case PX_CLASS_READ:
        return "read";
    case PX_CLASS_WRITE:
        return "write";
    case PX_CLASS_TXN:
        return "txn";
    case PX_CLASS_SESSION:
        return "session";
    }
    return "?";
}

const char *px_txn_kind_to_str(px_txn_kind_t k)
{
    static const char *const names[] = {
        "none",
        "begin",
        "commit",
        "rollback",
        "savepoint",
        "release",
        "rollback_to",
        "prepare",
        "commit_prepared",
        "rollback_prepared",
        "set_transaction",
    };
    return (unsigned)k < sizeof names / sizeof names[0] ? names[k] : "?";
}

const char *px_session_kind_to_str(px_session_kind_t k)
{
    static const char *const names[] = {
        "none",   "set",          "set_local", "reset",   "reset_all",  "discard",
        "listen", "unlisten",     "prepare",   "execute", "deallocate", "declare_cursor",
        "fetch",  "close_cursor", "load",
    };
    return (unsigned)k < sizeof names / sizeof names[0] ? names[k] : "?";
}
