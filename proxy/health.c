/*
 * Cluster health: a prober thread of its own (never a worker loop) that
 * checks the primary and every replica about once a second and publishes
 * what it saw for the router and the admin port.
 *
 * Each round re-reads the configuration (the replica list and
 * READ_REPLICA_MAX_LAG can change on reload), then drives one libpq
 * connection per member with the asynchronous API and poll(): connect (kept
 * between rounds, re-made after a failure), then one probe query
 *   pg_is_in_recovery(), replay LSN (current WAL LSN on a primary),
 *   receive LSN, now() - pg_last_xact_replay_timestamp().
 * All members are probed at the same time and each has its own deadline
 * (connect 2 s, query 2 s, with statement_timeout below that on the server),
 * so a dead or hung member costs one deadline, never the round.
 *
 * Replica lag: while the primary answers, a replica's lag is how long ago
 * the primary first reported an LSN the replica has not replayed yet (the
 * prober keeps a short history of the primary's LSN changes), 0 once it has
 * replayed everything the primary had. That needs neither replay timestamps
 * (which make an idle cluster look seconds behind after one write) nor a
 * working WAL receiver (a replica whose stream broke keeps replay == receive
 * and would look current). When the primary does not answer, the usual
 * formula: 0 when replay == receive LSN, else now() - last replayed commit.
 *
 * On the primary's connection the prober also loads function volatility
 * (pg_proc.provolatile) for the classifier, at the first round and then every
 * PX_HEALTH_CATALOG_PERIOD_S, publishing only when it changed.
 *
 * Invariants: readers never wait for the prober — the snapshot lock is held
 * only for a memcpy, and the router's hot fields are atomics. Only the
 * prober thread touches connections and the working copies. The password is
 * copied for libpq and wiped when dropped; it is never logged (libpq's error
 * messages do not contain it).
 */
#include <errno.h>
#include <libpq-fe.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "px.h"
#include "px_cache.h"
#include "px_classify.h"
#include "px_health.h"
#include "px_log.h"

#define HC_MIN_GAP_MS         100   /* pokes cannot start rounds closer than this */
#define HC_POLL_SLICE_MS      100   /* longest poll(), so stop stays responsive */
#define HC_CATALOG_TIMEOUT_MS 10000 /* the volatility query */
#define HC_CATALOG_RETRY_S    10    /* after a failed volatility load */
#define HC_HISTORY            1024  /* primary LSN changes remembered */

static const char HC_PROBE_SQL[] =
    "SELECT pg_catalog.pg_is_in_recovery(), "
    "CASE WHEN pg_catalog.pg_is_in_recovery() THEN pg_catalog.pg_last_wal_replay_lsn() "
    "ELSE pg_catalog.pg_current_wal_lsn() END, "
    "pg_catalog.pg_last_wal_receive_lsn(), "
    "EXTRACT(EPOCH FROM pg_catalog.now() - pg_catalog.pg_last_xact_replay_timestamp())";

/* Three results: function volatility (3 columns), view definitions (2) and,
 * for the result cache, one row per relation and each relation it reads
 * (6): its name, kind, one-column integer primary key, whether writes to it
 * reach other tables (triggers, rules, cascading foreign keys), and each
 * relation its data comes from (itself, or a view's relations at any depth),
 * tables replaced by their inheritance root, with that relation's kind. */
static const char HC_CATALOG_SQL[] =
    "SELECT n.nspname, p.proname, p.provolatile FROM pg_catalog.pg_proc p "
    "JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace;"
    /* views the cache must not serve: a function in them that is not immutable,
     * a system relation, FOR UPDATE/SHARE. Read from the stored rule itself:
     * pg_get_viewdef() would lock every view's tables (a client's LOCK ...
     * NOWAIT then failed, and a lock wait could deadlock with the load) */
    "SELECT c.relname, EXISTS (SELECT 1 FROM pg_catalog.regexp_matches("
    "w.ev_action::pg_catalog.text, ':(?:funcid|opfuncid|aggfnoid|winfnoid) ([0-9]+)', 'g') m"
    " JOIN pg_catalog.pg_proc p ON p.oid = m[1]::pg_catalog.oid WHERE p.provolatile <> 'i')"
    " OR EXISTS (SELECT 1 FROM pg_catalog.regexp_matches(w.ev_action::pg_catalog.text,"
    " ':relid ([0-9]+)', 'g') m WHERE m[1]::pg_catalog.oid < 16384)"
    " OR w.ev_action::pg_catalog.text ~ ':rowMarks \\(' "
    "FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
    "JOIN pg_catalog.pg_rewrite w ON w.ev_class = c.oid AND w.rulename = '_RETURN' "
    "WHERE c.relkind = 'v' AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
    "AND n.nspname !~ '^pg_(toast|temp)';"
    "WITH RECURSIVE rels AS ("
    " SELECT c.oid, c.relname, c.relkind FROM pg_catalog.pg_class c"
    " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
    " WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')"
    " AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
    " AND n.nspname !~ '^pg_(toast|temp)'),"
    "up(oid, anc) AS (SELECT oid, oid FROM rels UNION"
    " SELECT up.oid, i.inhparent FROM up JOIN pg_catalog.pg_inherits i ON i.inhrelid = up.anc),"
    "roots AS (SELECT up.oid, up.anc FROM up WHERE NOT EXISTS"
    " (SELECT 1 FROM pg_catalog.pg_inherits i WHERE i.inhrelid = up.anc)),"
    "dep(oid, ref) AS (SELECT oid, oid FROM rels UNION"
    " SELECT dep.oid, d.refobjid FROM dep"
    " JOIN pg_catalog.pg_class rc ON rc.oid = dep.ref AND rc.relkind = 'v'"
    " JOIN pg_catalog.pg_rewrite w ON w.ev_class = dep.ref"
    " JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass"
    " AND d.objid = w.oid AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass"
    " AND d.refobjid <> dep.ref) "
    "SELECT r.relname, r.relkind,"
    " (SELECT a.attname FROM pg_catalog.pg_index x JOIN pg_catalog.pg_attribute a"
    "  ON a.attrelid = x.indrelid AND a.attnum = x.indkey[0]"
    "  WHERE x.indrelid = r.oid AND x.indisprimary AND x.indnatts = 1"
    "  AND a.atttypid IN (20, 21, 23) AND r.relkind = 'r' AND NOT EXISTS"
    "  (SELECT 1 FROM pg_catalog.pg_inherits i WHERE i.inhrelid = r.oid OR i.inhparent = r.oid)),"
    " (EXISTS (SELECT 1 FROM pg_catalog.pg_trigger t WHERE t.tgrelid = r.oid AND NOT "
    "t.tgisinternal)"
    "  OR EXISTS (SELECT 1 FROM pg_catalog.pg_rewrite w WHERE w.ev_class = r.oid"
    "  AND w.rulename <> '_RETURN')"
    "  OR EXISTS (SELECT 1 FROM pg_catalog.pg_constraint k WHERE k.contype = 'f'"
    "  AND k.confrelid = r.oid AND (k.confdeltype IN ('c', 'n', 'd')"
    "  OR k.confupdtype IN ('c', 'n', 'd')))),"
    " COALESCE(bc.relname, dc.relname), dc.relkind "
    "FROM rels r JOIN dep ON dep.oid = r.oid"
    " JOIN pg_catalog.pg_class dc ON dc.oid = dep.ref"
    " LEFT JOIN roots ON roots.oid = dep.ref"
    " LEFT JOIN pg_catalog.pg_class bc ON bc.oid = roots.anc";

typedef enum hc_step {
    HC_CONNECTING = 0, /* PQconnectPoll until CONNECTION_OK */
    HC_PROBING,        /* the probe query is in flight */
    HC_CATALOG,        /* the volatility query is in flight (primary only) */
    HC_DONE,           /* finished for this round */
} hc_step_t;

typedef struct hc_member {
    px_member_status_t st;          /* working copy, published after each round */
    PGconn *conn;                   /* kept between rounds; NULL when disconnected */
    hc_step_t step;                 /* where this round is */
    PostgresPollingStatusType want; /* while connecting: what PQconnectPoll waits for */
    bool flushing;                  /* a query is not fully sent yet */
    bool result_ok;                 /* the query in flight produced its rows */
    bool reused;                    /* this round's probe runs on last round's connection */
    char err[160];                  /* first error result of the query in flight */
    uint64_t started;               /* monotonic ms the probe started */
    uint64_t deadline;              /* monotonic ms this step gives up */
    uint64_t receive_lsn;           /* pg_last_wal_receive_lsn(), 0 unknown */
    double replay_age;              /* now() - pg_last_xact_replay_timestamp(), -1 unknown */
    bool was_up, was_usable;        /* for logging transitions */
    bool was_promoted;
} hc_member_t;

typedef struct hc_prober {
    px_shared_t *sh;
    hc_member_t m[PX_HEALTH_MAX_MEMBERS];
    int n;
    char *db, *user, *password; /* copies of the config's; password wiped on free */
    double max_lag;
    uint64_t hist_t[HC_HISTORY];   /* monotonic ms the primary first reported ... */
    uint64_t hist_lsn[HC_HISTORY]; /* ... this LSN (increasing) */
    unsigned hist_head, hist_n;    /* ring: oldest at head */
    uint64_t catalog_next;         /* monotonic ms of the next volatility load */
    uint64_t catalog_digest;       /* of the rows last published */
    bool catalog_published;
    uint64_t catalog_ddl_seq; /* px_cache_ddl_seq() when the load in flight started */
    char **bad_views;         /* views the cache must not serve, from the last load */
    int n_bad_views;
    bool cache_catalog_logged;
} hc_prober_t;

/* Control, guarded by g_lock. */
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cond;
static pthread_t g_thread;
static bool g_running; /* a prober thread exists (until joined) */
static bool g_poke;    /* a round was asked for */
static _Atomic bool g_stop;
static _Atomic bool g_catalog_req;

/* Published state. */
static pthread_mutex_t g_snap_lock = PTHREAD_MUTEX_INITIALIZER;
static px_member_status_t g_snap[PX_HEALTH_MAX_MEMBERS]; /* guarded by g_snap_lock */
static int g_n_snap;                                     /* 0 until the first round */
static _Atomic bool g_primary_up = true;
static _Atomic uint64_t g_primary_lsn;
static _Atomic uint32_t g_usable;
static _Atomic uint64_t g_generation;
static _Atomic uint64_t g_member_lsn[PX_HEALTH_MAX_MEMBERS];

/* ---- small helpers ------------------------------------------------------------ */

static uint64_t hc_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t hc_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* "16/B374D848" → 0x16B374D848; 0 when NULL or malformed. */
static uint64_t hc_parse_lsn(const char *s)
{
    if (s == NULL || *s == '\0')
        return 0;
    char *end;
    unsigned long long hi = strtoull(s, &end, 16);
    if (*end != '/')
        return 0;
    unsigned long long lo = strtoull(end + 1, &end, 16);
    if (*end != '\0')
        return 0;
    return ((uint64_t)hi << 32) | (lo & 0xffffffffu);
}

/* Record why a member is unusable: one line, bounded, no control characters. */
static void hc_set_error(hc_member_t *m, const char *what, const char *detail)
{
    char *e = m->st.last_error;
    size_t cap = sizeof m->st.last_error;
    snprintf(e, cap, "%s%s%s", what, detail && *detail ? ": " : "", detail ? detail : "");
    for (char *p = e; *p; p++)
        if ((unsigned char)*p < 0x20)
            *p = ' ';
    size_t l = strlen(e);
    while (l > 0 && e[l - 1] == ' ')
        e[--l] = '\0';
}

static void hc_disconnect(hc_member_t *m)
{
    if (m->conn != NULL)
        PQfinish(m->conn);
    m->conn = NULL;
}

static void hc_free_secret(char **s)
{
    if (*s != NULL) {
        explicit_bzero(*s, strlen(*s));
        free(*s);
        *s = NULL;
    }
}

static void hc_copy(char *dst, size_t cap, const char *src)
{
    size_t l = strnlen(src, cap - 1);
    memcpy(dst, src, l);
    dst[l] = '\0';
}

static bool hc_streq(const char *a, const char *b)
{
    return (a == NULL || b == NULL) ? a == b : strcmp(a, b) == 0;
}

/* ---- configuration ------------------------------------------------------------- */

/* Copy what the prober needs from the current snapshot, then line the
 * members up with it: a member whose address or role changed starts over. */
static void hc_read_config(hc_prober_t *P)
{
    px_hostport_t want[PX_HEALTH_MAX_MEMBERS];
    px_member_role_t roles[PX_HEALTH_MAX_MEMBERS];
    int n = 0;
    char *db = NULL, *user = NULL, *pw = NULL;
    bool oom = false;
    double max_lag = 5;

    pthread_mutex_lock(&P->sh->lock);
    const px_config_t *cfg = P->sh->cfg;
    if (cfg != NULL) {
        hc_copy(want[0].host, sizeof want[0].host,
                cfg->postgres_server ? cfg->postgres_server : "127.0.0.1");
        want[0].port = cfg->postgres_port;
        roles[0] = PX_MEMBER_PRIMARY;
        n = 1;
        for (int i = 0; i < cfg->n_replicas && n < PX_HEALTH_MAX_MEMBERS; i++) {
            want[n] = cfg->replicas[i];
            roles[n++] = PX_MEMBER_REPLICA;
        }
        /* the application's database, where its functions' volatility lives */
        db = strdup(px_config_app_db(cfg));
        if (cfg->postgres_user != NULL)
            oom |= (user = strdup(cfg->postgres_user)) == NULL;
        if (cfg->postgres_password != NULL)
            oom |= (pw = strdup(cfg->postgres_password)) == NULL;
        oom |= db == NULL;
        max_lag = cfg->read_replica_max_lag;
    }
    pthread_mutex_unlock(&P->sh->lock);
    if (!oom && user && !pw)
        oom |= !px_shared_plain_password(P->sh, user, &pw);

    if (oom || n == 0) {
        free(db);
        free(user);
        hc_free_secret(&pw);
        return; /* keep the previous settings */
    }
    P->max_lag = max_lag;
    if (!hc_streq(db, P->db) || !hc_streq(user, P->user) || !hc_streq(pw, P->password)) {
        for (int i = 0; i < P->n; i++)
            hc_disconnect(&P->m[i]);
        free(P->db);
        free(P->user);
        hc_free_secret(&P->password);
        P->db = db;
        P->user = user;
        P->password = pw;
    } else {
        free(db);
        free(user);
        hc_free_secret(&pw);
    }
    for (int i = 0; i < PX_HEALTH_MAX_MEMBERS; i++) {
        hc_member_t *m = &P->m[i];
        if (i >= n) {
            hc_disconnect(m);
            memset(m, 0, sizeof *m);
            continue;
        }
        if (i < P->n && strcmp(m->st.host, want[i].host) == 0 && m->st.port == want[i].port &&
            m->st.role == roles[i])
            continue;
        hc_disconnect(m);
        memset(m, 0, sizeof *m);
        hc_copy(m->st.host, sizeof m->st.host, want[i].host);
        m->st.port = want[i].port;
        m->st.role = roles[i];
        m->replay_age = -1;
        if (i == 0) {
            P->hist_n = P->hist_head = 0; /* another primary: its LSNs are another story */
            P->catalog_next = 0;
        }
    }
    P->n = n;
}

/* ---- one member's state machine ------------------------------------------------ */

/* The server answered but would not let the probe in: it is reachable. */
static bool hc_login_refused(const char *detail)
{
    return detail && (strstr(detail, "password") || strstr(detail, "authentication") ||
                      strstr(detail, "pg_hba.conf") || strstr(detail, "does not exist"));
}

static void hc_fail(hc_member_t *m, const char *what, const char *detail)
{
    hc_set_error(m, what, detail);
    m->st.probe_ms = (double)(hc_now_ms() - m->started);
    m->st.up = false;
    m->st.reachable = hc_login_refused(detail);
    m->st.failures++;
    m->step = HC_DONE;
    hc_disconnect(m);
}

static void hc_connect(hc_prober_t *P, hc_member_t *m, uint64_t now);

/* The connection broke. A connection kept from the last round may simply
 * have been closed by a server restart since: retry once with a new one
 * before calling the member down. */
static void hc_conn_lost(hc_prober_t *P, hc_member_t *m, const char *what, uint64_t now)
{
    if (m->step == HC_CATALOG) { /* the member answered its probe: it stays up */
        px_log_warn("health", "loading function volatility failed: %s",
                    m->conn ? PQerrorMessage(m->conn) : "no connection");
        P->catalog_next = now + HC_CATALOG_RETRY_S * 1000u;
        hc_disconnect(m);
        m->step = HC_DONE;
        return;
    }
    if (m->reused && m->step == HC_PROBING) {
        m->reused = false;
        hc_connect(P, m, now);
        return;
    }
    hc_fail(m, what, m->conn ? PQerrorMessage(m->conn) : NULL);
}

static void hc_send(hc_prober_t *P, hc_member_t *m, const char *sql, hc_step_t step, uint64_t now,
                    uint64_t timeout_ms)
{
    m->step = step;
    m->result_ok = false;
    m->err[0] = '\0';
    m->deadline = now + timeout_ms;
    if (!PQsendQuery(m->conn, sql)) {
        hc_conn_lost(P, m, "send failed", now);
        return;
    }
    int f = PQflush(m->conn);
    if (f < 0) {
        hc_conn_lost(P, m, "send failed", now);
        return;
    }
    m->flushing = f == 1;
}

static void hc_start(hc_prober_t *P, hc_member_t *m, uint64_t now)
{
    m->started = now;
    m->st.probes++;
    m->reused = m->conn != NULL && PQstatus(m->conn) == CONNECTION_OK && !PQisBusy(m->conn);
    if (m->reused)
        hc_send(P, m, HC_PROBE_SQL, HC_PROBING, now, PX_HEALTH_QUERY_TIMEOUT_MS);
    else
        hc_connect(P, m, now);
}

static void hc_connect(hc_prober_t *P, hc_member_t *m, uint64_t now)
{
    hc_disconnect(m);
    char port[8], timeout[8];
    snprintf(port, sizeof port, "%u", (unsigned)m->st.port);
    snprintf(timeout, sizeof timeout, "%d", PX_HEALTH_CONNECT_TIMEOUT_S);
    const char *kw[16], *val[16];
    int k = 0;
#define HC_KV(key, v) (kw[k] = (key), val[k] = (v), k++)
    HC_KV("host", m->st.host);
    HC_KV("port", port);
    HC_KV("dbname", P->db);
    if (P->user != NULL)
        HC_KV("user", P->user);
    if (P->password != NULL)
        HC_KV("password", P->password);
    HC_KV("connect_timeout", timeout);
    HC_KV("application_name", "fastnext-proxy health");
    HC_KV("options", "-c statement_timeout=1500 -c lock_timeout=1000");
    HC_KV("keepalives", "1");
    HC_KV("keepalives_idle", "5");
    HC_KV("keepalives_interval", "2");
    HC_KV("keepalives_count", "2");
    HC_KV("tcp_user_timeout", "5000");
    HC_KV("gssencmode", "disable");
#undef HC_KV
    kw[k] = val[k] = NULL;
    m->conn = PQconnectStartParams(kw, val, 0);
    m->step = HC_CONNECTING;
    m->want = PGRES_POLLING_WRITING;
    m->flushing = false;
    m->deadline = now + PX_HEALTH_CONNECT_TIMEOUT_S * 1000u;
    if (m->conn == NULL)
        hc_fail(m, "connect failed", "out of memory");
    else if (PQstatus(m->conn) == CONNECTION_BAD)
        hc_fail(m, "connect failed", PQerrorMessage(m->conn));
}

static void hc_probe_rows(hc_member_t *m, const PGresult *r)
{
    if (PQntuples(r) != 1 || PQnfields(r) < 4) {
        hc_set_error(m, "probe returned an unexpected result", NULL);
        return;
    }
    m->st.in_recovery = PQgetvalue(r, 0, 0)[0] == 't';
    m->st.lsn = PQgetisnull(r, 0, 1) ? 0 : hc_parse_lsn(PQgetvalue(r, 0, 1));
    m->receive_lsn = PQgetisnull(r, 0, 2) ? 0 : hc_parse_lsn(PQgetvalue(r, 0, 2));
    m->replay_age = PQgetisnull(r, 0, 3) ? -1 : strtod(PQgetvalue(r, 0, 3), NULL);
    m->result_ok = true;
}

/* An order-independent digest of the catalog rows, to publish only changes. */
static uint64_t hc_row_hash(const char *a, const char *b, char c)
{
    uint64_t h = 1469598103934665603ull;
    for (const char *p = a; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    h = (h ^ '.') * 1099511628211ull;
    for (const char *p = b; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    h = (h ^ (unsigned char)c) * 1099511628211ull;
    h ^= h >> 29;
    return h * 0xbf58476d1ce4e5b9ull;
}

/* View definitions: those the cache must not serve (volatile or
 * time-dependent functions, catalog reads, user functions inside). */
static void hc_view_rows(hc_prober_t *P, const PGresult *r)
{
    for (int i = 0; i < P->n_bad_views; i++)
        free(P->bad_views[i]);
    free(P->bad_views);
    P->bad_views = NULL;
    P->n_bad_views = 0;
    int rows = PQntuples(r);
    if (rows <= 0)
        return;
    P->bad_views = calloc((size_t)rows, sizeof(char *));
    if (!P->bad_views)
        return;
    for (int i = 0; i < rows; i++) {
        if (PQgetvalue(r, i, 1)[0] != 't')
            continue;
        char *name = strdup(PQgetvalue(r, i, 0));
        if (name)
            P->bad_views[P->n_bad_views++] = name;
    }
}

static bool hc_bad_view(const hc_prober_t *P, const char *name)
{
    for (int i = 0; i < P->n_bad_views; i++)
        if (strcmp(P->bad_views[i], name) == 0)
            return true;
    return false;
}

/* The result cache's relation catalog (see HC_CATALOG_SQL). */
static void hc_relation_rows(hc_prober_t *P, const PGresult *r)
{
    px_cache_catalog_t *cat = px_cache_catalog_new();
    if (!cat)
        return;
    px_cache_catalog_set_db(cat, P->db);
    px_cache_catalog_set_ddl_seq(cat, P->catalog_ddl_seq);
    int rows = PQntuples(r);
    for (int i = 0; i < rows; i++) {
        const char *name = PQgetvalue(r, i, 0);
        char kind = PQgetvalue(r, i, 1)[0];
        const char *pk = PQgetisnull(r, i, 2) ? NULL : PQgetvalue(r, i, 2);
        bool side = PQgetvalue(r, i, 3)[0] == 't';
        const char *base = PQgetvalue(r, i, 4);
        char base_kind = PQgetvalue(r, i, 5)[0];
        unsigned flags = PX_CACHE_REL_CACHEABLE;
        if (pk)
            flags |= PX_CACHE_REL_INT_PK;
        if (side)
            flags |= PX_CACHE_REL_SIDE;
        if (kind == 'v')
            flags |= PX_CACHE_REL_VIEW;
        /* foreign tables change without writes here; sequences, functions'
         * relations and the like are not tracked */
        if (kind == 'f' ||
            (base_kind != 'r' && base_kind != 'p' && base_kind != 'm' && base_kind != 'v'))
            flags &= ~PX_CACHE_REL_CACHEABLE;
        if ((kind == 'v' && hc_bad_view(P, name)) || (base_kind == 'v' && hc_bad_view(P, base)))
            flags &= ~PX_CACHE_REL_CACHEABLE;
        /* a view's own row names the view: only its tables are tags */
        if (!px_cache_catalog_add(cat, name, flags, pk, base_kind == 'v' ? NULL : base)) {
            px_cache_catalog_free(cat);
            return;
        }
    }
    size_t n = px_cache_catalog_size(cat);
    px_cache_catalog_publish(cat);
    if (!P->cache_catalog_logged) {
        P->cache_catalog_logged = true;
        px_log_info("health", "loaded %zu relations for the result cache", n);
    }
}

static void hc_catalog_rows(hc_prober_t *P, const PGresult *r)
{
    int rows = PQntuples(r);
    if (PQnfields(r) == 2) {
        hc_view_rows(P, r);
        return;
    }
    if (PQnfields(r) == 6) {
        hc_relation_rows(P, r);
        return;
    }
    if (PQnfields(r) < 3 || rows <= 0)
        return;
    uint64_t digest = (uint64_t)rows;
    for (int i = 0; i < rows; i++)
        digest += hc_row_hash(PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), PQgetvalue(r, i, 2)[0]);
    if (P->catalog_published && digest == P->catalog_digest)
        return;
    px_classify_vol_t *v = px_classify_vol_new();
    if (v == NULL)
        return;
    for (int i = 0; i < rows; i++) {
        if (!px_classify_vol_add(v, PQgetvalue(r, i, 0), PQgetvalue(r, i, 1),
                                 PQgetvalue(r, i, 2)[0])) {
            px_classify_vol_free(v);
            return;
        }
    }
    px_classify_set_volatility(v);
    P->catalog_published = true;
    P->catalog_digest = digest;
    px_log_info("health", "loaded the volatility of %d functions from the primary", rows);
}

/* Drive a member whose socket is ready (or whose query may have finished). */
static void hc_advance(hc_prober_t *P, hc_member_t *m, uint64_t now)
{
    if (m->step == HC_CONNECTING) {
        PostgresPollingStatusType ps = PQconnectPoll(m->conn);
        if (ps == PGRES_POLLING_OK) {
            if (PQsetnonblocking(m->conn, 1) != 0)
                hc_fail(m, "connect failed", PQerrorMessage(m->conn));
            else
                hc_send(P, m, HC_PROBE_SQL, HC_PROBING, now, PX_HEALTH_QUERY_TIMEOUT_MS);
        } else if (ps == PGRES_POLLING_FAILED) {
            hc_fail(m, "connect failed", PQerrorMessage(m->conn));
        } else {
            m->want = ps;
        }
        return;
    }
    if (m->step != HC_PROBING && m->step != HC_CATALOG)
        return;
    if (m->flushing) {
        int f = PQflush(m->conn);
        if (f < 0) {
            hc_conn_lost(P, m, "send failed", now);
            return;
        }
        m->flushing = f == 1;
        if (m->flushing)
            return;
    }
    if (!PQconsumeInput(m->conn)) {
        hc_conn_lost(P, m, "probe failed", now);
        return;
    }
    for (;;) {
        if (PQisBusy(m->conn))
            return; /* the rest has not arrived yet */
        PGresult *r = PQgetResult(m->conn);
        if (r == NULL)
            break; /* the query is complete */
        if (PQresultStatus(r) == PGRES_TUPLES_OK) {
            if (m->step == HC_PROBING)
                hc_probe_rows(m, r);
            else
                hc_catalog_rows(P, r);
        } else if (m->err[0] == '\0') {
            snprintf(m->err, sizeof m->err, "%s", PQresultErrorMessage(r));
        }
        PQclear(r);
    }
    if (m->step == HC_CATALOG) {
        if (m->err[0] != '\0') {
            px_log_warn("health", "loading function volatility failed: %s", m->err);
            P->catalog_next = now + HC_CATALOG_RETRY_S * 1000u;
        }
        m->step = HC_DONE;
        return;
    }
    if (!m->result_ok) {
        hc_set_error(m, "probe failed", m->err[0] ? m->err : "no result");
        m->st.probe_ms = (double)(now - m->started);
        m->st.up = false;
        m->st.reachable = false;
        m->st.failures++;
        m->step = HC_DONE;
        return;
    }
    m->st.up = true;
    m->st.reachable = true;
    m->st.last_error[0] = '\0';
    m->st.probe_ms = (double)(now - m->started);
    m->st.last_ok_unix_ms = hc_wall_ms();
    m->step = HC_DONE;
    if (m == &P->m[0]) {
        bool asked = atomic_exchange(&g_catalog_req, false);
        if (asked || P->catalog_next == 0 || now >= P->catalog_next) {
            P->catalog_next = now + PX_HEALTH_CATALOG_PERIOD_S * 1000u;
            P->catalog_ddl_seq = px_cache_ddl_seq(); /* DDL before now is in what it reads */
            hc_send(P, m, HC_CATALOG_SQL, HC_CATALOG, now, HC_CATALOG_TIMEOUT_MS);
        }
    }
}

/* ---- a round --------------------------------------------------------------------- */

static void hc_round(hc_prober_t *P)
{
    uint64_t now = hc_now_ms();
    for (int i = 0; i < P->n; i++)
        hc_start(P, &P->m[i], now);
    while (!atomic_load(&g_stop)) {
        struct pollfd fds[PX_HEALTH_MAX_MEMBERS];
        int idx[PX_HEALTH_MAX_MEMBERS], nf = 0;
        uint64_t next = UINT64_MAX;
        now = hc_now_ms();
        for (int i = 0; i < P->n; i++) {
            hc_member_t *m = &P->m[i];
            if (m->step == HC_DONE)
                continue;
            if (now >= m->deadline) {
                if (m->step == HC_CATALOG) {
                    px_log_warn("health", "loading function volatility timed out");
                    P->catalog_next = now + HC_CATALOG_RETRY_S * 1000u;
                    hc_disconnect(m); /* the member itself answered its probe */
                    m->step = HC_DONE;
                } else {
                    char d[64];
                    snprintf(d, sizeof d, "no answer within %llu ms",
                             (unsigned long long)(now - m->started));
                    hc_fail(m, m->step == HC_CONNECTING ? "connect timed out" : "probe timed out",
                            d);
                }
                continue;
            }
            int fd = PQsocket(m->conn);
            if (fd < 0) {
                hc_fail(m, "connection lost", PQerrorMessage(m->conn));
                continue;
            }
            short ev = POLLIN;
            if (m->step == HC_CONNECTING)
                ev = m->want == PGRES_POLLING_READING ? POLLIN : POLLOUT;
            else if (m->flushing)
                ev = POLLIN | POLLOUT;
            fds[nf] = (struct pollfd){fd, ev, 0};
            idx[nf++] = i;
            if (m->deadline < next)
                next = m->deadline;
        }
        if (nf == 0)
            break;
        uint64_t wait = next > now ? next - now : 0;
        if (wait > HC_POLL_SLICE_MS)
            wait = HC_POLL_SLICE_MS;
        int rc = poll(fds, (nfds_t)nf, (int)wait);
        if (rc < 0 && errno != EINTR)
            break;
        now = hc_now_ms();
        for (int f = 0; f < nf && rc > 0; f++)
            if (fds[f].revents != 0)
                hc_advance(P, &P->m[idx[f]], now);
    }
}

/* Time of the first primary LSN the replica at @p lsn has not replayed. */
static uint64_t hc_first_after(const hc_prober_t *P, uint64_t lsn, uint64_t now)
{
    for (unsigned k = 0; k < P->hist_n; k++) {
        unsigned i = (P->hist_head + k) % HC_HISTORY;
        if (P->hist_lsn[i] > lsn)
            return P->hist_t[i];
    }
    return now;
}

static void hc_derive(hc_prober_t *P, uint64_t now)
{
    hc_member_t *pm = &P->m[0];
    bool have_p = P->n > 0 && pm->st.up && !pm->st.in_recovery && pm->st.lsn != 0;
    uint64_t plsn = have_p ? pm->st.lsn : 0;
    if (have_p) {
        unsigned last = (P->hist_head + P->hist_n + HC_HISTORY - 1) % HC_HISTORY;
        if (P->hist_n == 0 || plsn > P->hist_lsn[last]) {
            unsigned slot = (P->hist_head + P->hist_n) % HC_HISTORY;
            if (P->hist_n == HC_HISTORY)
                P->hist_head = (P->hist_head + 1) % HC_HISTORY;
            else
                P->hist_n++;
            P->hist_t[slot] = now;
            P->hist_lsn[slot] = plsn;
        }
    }
    if (P->n > 0) {
        pm->st.usable_for_reads = false;
        pm->st.promoted = false;
        pm->st.lag_seconds = 0;
        pm->st.lag_bytes = 0;
    }
    for (int i = 1; i < P->n; i++) {
        px_member_status_t *st = &P->m[i].st;
        hc_member_t *m = &P->m[i];
        st->usable_for_reads = false;
        if (!st->up)
            continue;
        st->promoted = !st->in_recovery;
        if (!st->in_recovery) {
            st->lag_seconds = 0;
            st->lag_bytes = 0;
            continue;
        }
        uint64_t r = st->lsn;
        st->lag_bytes = plsn > r ? plsn - r : 0;
        if (have_p)
            st->lag_seconds = r >= plsn ? 0 : (double)(now - hc_first_after(P, r, now)) / 1000.0;
        else if (m->receive_lsn == 0 || m->receive_lsn <= r)
            st->lag_seconds = 0;
        else
            st->lag_seconds = m->replay_age > 0 ? m->replay_age : 0;
        st->usable_for_reads = st->lag_seconds <= P->max_lag;
    }
}

static void hc_log_transitions(hc_prober_t *P)
{
    for (int i = 0; i < P->n; i++) {
        hc_member_t *m = &P->m[i];
        const char *role = m->st.role == PX_MEMBER_PRIMARY ? "primary" : "replica";
        if ((m->was_up || m->st.probes == 1) && !m->st.up)
            px_log_warn("health", "%s %s:%u is down: %s", role, m->st.host, m->st.port,
                        m->st.last_error);
        else if (!m->was_up && m->st.up)
            px_log_info("health", "%s %s:%u is up", role, m->st.host, m->st.port);
        if (m->st.role == PX_MEMBER_REPLICA && m->st.up && m->was_usable != m->st.usable_for_reads)
            px_log_info("health", "replica %s:%u %s reads (lag %.1f s, %llu bytes)", m->st.host,
                        m->st.port, m->st.usable_for_reads ? "takes" : "takes no more",
                        m->st.lag_seconds, (unsigned long long)m->st.lag_bytes);
        if (m->st.up && m->st.promoted && !m->was_promoted)
            px_log_warn("health", "replica %s:%u is no longer in recovery: promoted", m->st.host,
                        m->st.port);
        m->was_up = m->st.up;
        m->was_usable = m->st.usable_for_reads;
        m->was_promoted = m->st.up && m->st.promoted;
    }
}

static void hc_publish(hc_prober_t *P)
{
    uint32_t usable = 0;
    pthread_mutex_lock(&g_snap_lock);
    for (int i = 0; i < P->n; i++)
        g_snap[i] = P->m[i].st;
    g_n_snap = P->n;
    pthread_mutex_unlock(&g_snap_lock);
    for (int i = 0; i < PX_HEALTH_MAX_MEMBERS; i++) {
        const px_member_status_t *st = &P->m[i].st;
        bool live = i < P->n && st->up;
        atomic_store(&g_member_lsn[i], live ? st->lsn : 0);
        if (i > 0 && i < P->n && st->usable_for_reads)
            usable |= 1u << (i - 1);
    }
    const px_member_status_t *p = &P->m[0].st;
    atomic_store(&g_usable, usable);
    atomic_store(&g_primary_lsn, P->n > 0 && p->up && !p->in_recovery ? p->lsn : 0);
    /* readiness: the primary answers, even when the probe cannot log in */
    atomic_store(&g_primary_up, P->n > 0 && (p->up || p->reachable));
    atomic_fetch_add(&g_generation, 1);
}

/* ---- the thread -------------------------------------------------------------------- */

static void *hc_main(void *arg)
{
    hc_prober_t *P = calloc(1, sizeof *P);
    if (P == NULL) {
        px_log_error("health", "out of memory: no health checks");
        return NULL;
    }
    P->sh = arg;
    uint64_t next = 0, last_start = 0;
    for (;;) {
        pthread_mutex_lock(&g_lock);
        for (;;) {
            if (atomic_load(&g_stop))
                break;
            uint64_t now = hc_now_ms();
            uint64_t wake = next;
            if (g_poke && last_start + HC_MIN_GAP_MS < wake)
                wake = last_start + HC_MIN_GAP_MS;
            if (now >= wake)
                break;
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            uint64_t ns = (uint64_t)ts.tv_nsec + (wake - now) * 1000000u;
            ts.tv_sec += (time_t)(ns / 1000000000u);
            ts.tv_nsec = (long)(ns % 1000000000u);
            pthread_cond_timedwait(&g_cond, &g_lock, &ts);
        }
        g_poke = false;
        pthread_mutex_unlock(&g_lock);
        if (atomic_load(&g_stop))
            break;
        last_start = hc_now_ms();
        next = last_start + PX_HEALTH_PERIOD_MS;
        hc_read_config(P);
        hc_round(P);
        if (atomic_load(&g_stop))
            break;
        hc_derive(P, hc_now_ms());
        hc_log_transitions(P);
        hc_publish(P);
    }
    for (int i = 0; i < PX_HEALTH_MAX_MEMBERS; i++)
        hc_disconnect(&P->m[i]);
    free(P->db);
    free(P->user);
    hc_free_secret(&P->password);
    for (int i = 0; i < P->n_bad_views; i++)
        free(P->bad_views[i]);
    free(P->bad_views);
    free(P);
    return NULL;
}

int px_health_start(struct px_shared *sh)
{
    if (sh == NULL)
        return -EINVAL;
    pthread_mutex_lock(&g_lock);
    if (g_running) {
        pthread_mutex_unlock(&g_lock);
        return -EALREADY;
    }
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&g_cond, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_lock(&g_snap_lock);
    g_n_snap = 0;
    pthread_mutex_unlock(&g_snap_lock);
    atomic_store(&g_primary_up, true);
    atomic_store(&g_primary_lsn, 0);
    atomic_store(&g_usable, 0);
    atomic_store(&g_generation, 0);
    for (int i = 0; i < PX_HEALTH_MAX_MEMBERS; i++)
        atomic_store(&g_member_lsn[i], 0);
    atomic_store(&g_stop, false);
    g_poke = false;
    int rc = pthread_create(&g_thread, NULL, hc_main, sh);
    if (rc != 0) {
        pthread_cond_destroy(&g_cond);
        pthread_mutex_unlock(&g_lock);
        return -rc;
    }
    g_running = true;
    pthread_mutex_unlock(&g_lock);
    return 0;
}

void px_health_stop(void)
{
    pthread_mutex_lock(&g_lock);
    if (!g_running) {
        pthread_mutex_unlock(&g_lock);
        return;
    }
    atomic_store(&g_stop, true);
    pthread_cond_signal(&g_cond);
    pthread_t th = g_thread;
    pthread_mutex_unlock(&g_lock);
    pthread_join(th, NULL);
    pthread_mutex_lock(&g_lock);
    g_running = false;
    pthread_cond_destroy(&g_cond);
    pthread_mutex_unlock(&g_lock);
}

int px_health_members(px_member_status_t *out, int max)
{
    if (out == NULL || max <= 0)
        return 0;
    pthread_mutex_lock(&g_snap_lock);
    int n = g_n_snap < max ? g_n_snap : max;
    memcpy(out, g_snap, (size_t)n * sizeof *out);
    pthread_mutex_unlock(&g_snap_lock);
    return n;
}

bool px_health_primary_up(void)
{
    return atomic_load_explicit(&g_primary_up, memory_order_relaxed);
}

uint64_t px_health_primary_lsn(void)
{
    return atomic_load_explicit(&g_primary_lsn, memory_order_relaxed);
}

void px_health_poke(void)
{
    pthread_mutex_lock(&g_lock);
    if (g_running) {
        g_poke = true;
        pthread_cond_signal(&g_cond);
    }
    pthread_mutex_unlock(&g_lock);
}

uint32_t px_health_usable_mask(void)
{
    return atomic_load_explicit(&g_usable, memory_order_relaxed);
}

uint64_t px_health_member_lsn(int idx)
{
    if (idx < 0 || idx >= PX_HEALTH_MAX_MEMBERS)
        return 0;
    return atomic_load_explicit(&g_member_lsn[idx], memory_order_relaxed);
}

uint64_t px_health_generation(void)
{
    return atomic_load_explicit(&g_generation, memory_order_acquire);
}

void px_health_refresh_catalog(void)
{
    atomic_store(&g_catalog_req, true);
    px_health_poke();
}
