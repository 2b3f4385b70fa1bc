/*
 * fastnext-proxy entry point: read the configuration, start the workers, and
 * turn signals into actions on the main thread's own loop: SIGHUP reloads
 * (validate a whole new snapshot, publish it, log every changed key that
 * needs a restart), SIGINT/SIGTERM stop every worker and exit 0.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "px.h"
#include "px_admin.h"
#include "px_cache.h"
#include "px_db_admin.h"
#include "px_cdc.h"
#include "px_health.h"
#include "px_tls.h"

extern char **environ;

static px_shared_t g_shared;
static const char *g_config_path;

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: fastnext-proxy [--config FILE] [--check-config] [--help] [--version]\n"
            "\n"
            "A PostgreSQL wire-protocol proxy: transaction pooling, read/write routing\n"
            "and a result cache, in front of a PostgreSQL primary and its replicas.\n"
            "\n"
            "  -c, --config FILE   read settings from an INI file (the environment overrides it)\n"
            "      --check-config  validate the configuration, print it (secrets masked), exit\n"
            "  -h, --help          show this help\n"
            "  -V, --version       show the version\n"
            "\n"
            "Settings (environment variables or INI keys): PROXY_LISTEN, ADMIN_LISTEN, WORKERS,\n"
            "POSTGRES_SERVER, POSTGRES_PORT, POSTGRES_DB, POSTGRES_USER, POSTGRES_PASSWORD,\n"
            "POSTGRES_READ_REPLICAS, REDIS_HOST, REDIS_PORT, REDIS_CLUSTER_NODES, CACHE_*,\n"
            "POOL_MODE, DB_POOL_SIZE, DB_MAX_OVERFLOW, DB_POOL_TIMEOUT, MAX_CLIENT_CONN,\n"
            "AUTH_TYPE, AUTH_FILE, ADMIN_TOKEN, LOG_LEVEL, LOG_FORMAT. See README.md.\n");
}

static void diff_cb(const char *key, bool reloadable, void *arg)
{
    (void)arg;
    if (reloadable)
        px_log_info(NULL, "reload: %s changed", key);
    else
        px_log_warn(NULL, "reload: %s changed but needs a restart; keeping the old value", key);
}

static void apply_cache_config(const px_config_t *cfg)
{
    px_cache_config_t cc = {
        .enabled = cfg->cache_enabled,
        .max_bytes = cfg->cache_max_size,
        .max_entry = cfg->cache_max_entry_size,
        .default_ttl = cfg->cache_default_ttl,
    };
    px_cache_configure(&cc);
}

static void reload(void)
{
    char err[512];
    px_config_t *cfg = px_config_load(g_config_path, environ, err, sizeof(err));
    if (!cfg) {
        px_log_error(NULL, "reload failed, keeping the running configuration: %s", err);
        return;
    }
    px_authfile_t *af = NULL;
    if (cfg->auth_file) {
        af = px_authfile_load(cfg->auth_file, err, sizeof(err));
        if (!af) {
            px_log_error(NULL, "reload failed, keeping the running configuration: %s", err);
            px_config_unref(cfg);
            return;
        }
    }
    px_shared_t *sh = &g_shared;
    pthread_mutex_lock(&sh->lock);
    px_config_t *old = sh->cfg;
    int restart = px_config_diff(old, cfg, diff_cb, NULL);
    (void)restart;
    /* keys that need a restart keep their running values */
    cfg->proxy_listen = old->proxy_listen;
    cfg->admin_listen = old->admin_listen;
    cfg->workers = old->workers;
    cfg->pool_mode = old->pool_mode;
    char *tmp;
    tmp = cfg->postgres_server;
    cfg->postgres_server = old->postgres_server ? strdup(old->postgres_server) : NULL;
    free(tmp);
    cfg->postgres_port = old->postgres_port;
    sh->cfg = cfg;
    px_authfile_t *old_af = sh->authfile;
    sh->authfile = af;
    pthread_mutex_unlock(&sh->lock);
    px_authfile_free(old_af);
    px_config_unref(old);
    px_log_init(cfg->log_level, cfg->log_format == PX_LOG_FORMAT_JSON);
    for (int i = 0; i < sh->n_workers; i++) {
        px_worker_t *w = &sh->workers[i];
        pthread_mutex_lock(&w->inbox_lock);
        w->reload_requested = true;
        pthread_mutex_unlock(&w->inbox_lock);
        uv_async_send(&w->wakeup);
    }
    apply_cache_config(cfg);
    px_log_info(NULL, "configuration reloaded");
}

static uv_timer_t g_exit_timer;

/* The main loop ends once every worker's loop has. */
static void exit_timer_cb(uv_timer_t *t)
{
    if (atomic_load(&g_shared.workers_done) >= g_shared.n_workers)
        uv_stop(t->loop);
}

static void signal_cb(uv_signal_t *h, int signum)
{
    if (signum == SIGHUP) {
        reload();
        return;
    }
    px_shared_t *sh = &g_shared;
    bool again = atomic_exchange(&sh->draining, true);
    if (!again)
        px_log_info(NULL,
                    "received %s: draining (readiness 503, no new clients, transactions may "
                    "finish for up to %g s)",
                    signum == SIGINT ? "SIGINT" : "SIGTERM", sh->cfg->drain_timeout);
    else
        px_log_info(NULL, "received %s again: shutting down now",
                    signum == SIGINT ? "SIGINT" : "SIGTERM");
    for (int i = 0; i < sh->n_workers; i++) {
        px_worker_t *w = &sh->workers[i];
        pthread_mutex_lock(&w->inbox_lock);
        if (again)
            w->stop_requested = true;
        else
            w->drain_requested = true;
        pthread_mutex_unlock(&w->inbox_lock);
        uv_async_send(&w->wakeup);
    }
    if (!uv_is_active((uv_handle_t *)&g_exit_timer))
        uv_timer_start(&g_exit_timer, exit_timer_cb, 50, 50);
    (void)h;
}

static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* A start that failed once threads run: end at once, without running exit
 * handlers under their feet. */
static _Noreturn void start_failed(const char *why)
{
    fprintf(stderr, "fastnext-proxy: %s\n", why);
    fflush(NULL);
    _exit(1);
}

int main(int argc, char **argv)
{
    bool check = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--version") == 0 || strcmp(a, "-V") == 0) {
            printf("fastnext-proxy %s\n", PX_VERSION);
            return 0;
        } else if (strcmp(a, "--check-config") == 0) {
            check = true;
        } else if ((strcmp(a, "--config") == 0 || strcmp(a, "-c") == 0) && i + 1 < argc) {
            g_config_path = argv[++i];
        } else if (strncmp(a, "--config=", 9) == 0) {
            g_config_path = a + 9;
        } else {
            fprintf(stderr, "fastnext-proxy: unknown argument '%s'\n", a);
            usage(stderr);
            return 1;
        }
    }
    char err[512];
    px_config_t *cfg = px_config_load(g_config_path, environ, err, sizeof(err));
    if (!cfg) {
        fprintf(stderr, "fastnext-proxy: invalid configuration: %s\n", err);
        return 1;
    }
    px_authfile_t *af = NULL;
    if (cfg->auth_file) {
        af = px_authfile_load(cfg->auth_file, err, sizeof(err));
        if (!af) {
            fprintf(stderr, "fastnext-proxy: invalid configuration: AUTH_FILE: %s\n", err);
            px_config_unref(cfg);
            return 1;
        }
    }
    if (check) {
        px_config_print(cfg, stdout);
        if (af)
            printf("# auth file: %zu users\n", px_authfile_count(af));
        px_authfile_free(af);
        px_config_unref(cfg);
        return 0;
    }
    px_log_init(cfg->log_level, cfg->log_format == PX_LOG_FORMAT_JSON);
    signal(SIGPIPE, SIG_IGN);
    raise_nofile();

    px_shared_t *sh = &g_shared;
    pthread_mutex_init(&sh->lock, NULL);
    if (cfg->client_tls_cert || cfg->client_tls_key) {
        if (!cfg->client_tls_cert || !cfg->client_tls_key) {
            fprintf(stderr, "fastnext-proxy: invalid configuration: CLIENT_TLS_CERT and "
                            "CLIENT_TLS_KEY go together\n");
            return 1;
        }
        sh->client_tls =
            px_tls_ctx_server(cfg->client_tls_cert, cfg->client_tls_key, NULL, err, sizeof(err));
        if (!sh->client_tls) {
            fprintf(stderr, "fastnext-proxy: invalid configuration: client TLS: %s\n", err);
            return 1;
        }
    } else if (cfg->client_tls_require) {
        fprintf(stderr, "fastnext-proxy: invalid configuration: CLIENT_TLS_REQUIRE needs "
                        "CLIENT_TLS_CERT and CLIENT_TLS_KEY\n");
        return 1;
    }
    if (cfg->server_tls_mode != PX_SERVER_TLS_DISABLE) {
        px_tls_verify_t v = cfg->server_tls_mode == PX_SERVER_TLS_VERIFY_FULL ? PX_TLS_VERIFY_FULL
                            : cfg->server_tls_mode == PX_SERVER_TLS_VERIFY_CA ? PX_TLS_VERIFY_CA
                                                                              : PX_TLS_VERIFY_NONE;
        sh->server_tls = px_tls_ctx_client(v, cfg->server_tls_ca, err, sizeof(err));
        if (!sh->server_tls) {
            fprintf(stderr, "fastnext-proxy: invalid configuration: server TLS: %s\n", err);
            return 1;
        }
    }
    sh->cfg = cfg;
    sh->authfile = af;
    if (!px_cache_init()) {
        fprintf(stderr, "fastnext-proxy: out of memory (result cache)\n");
        return 1;
    }
    apply_cache_config(cfg);
    px_cachesync_init(cfg);
    px_cache_admin_register(sh);
    px_db_admin_register(sh);
    sh->n_workers = cfg->workers;
    sh->workers = calloc((size_t)sh->n_workers, sizeof(px_worker_t));
    if (!sh->workers) {
        fprintf(stderr, "fastnext-proxy: out of memory\n");
        return 1;
    }
    for (int i = 0; i < sh->n_workers; i++) {
        px_worker_t *w = &sh->workers[i];
        w->index = i;
        w->shared = sh;
        w->cfg = px_config_ref(cfg);
        if (px_worker_init(w) != 0) {
            fprintf(stderr, "fastnext-proxy: could not start worker %d\n", i);
            return 1;
        }
    }
    /* the admin port first: when it cannot listen, no other thread runs yet
     * and the process ends cleanly */
    int arc = px_admin_start(sh);
    if (arc != 0) {
        fprintf(stderr, "fastnext-proxy: cannot start the admin port on %s:%u: %s\n",
                cfg->admin_listen.host, cfg->admin_listen.port, uv_strerror(arc));
        return 1;
    }
    if (px_health_start(sh) != 0)
        start_failed("could not start the health checker");
    if (px_cdc_start(sh) != 0)
        start_failed("could not start the cache invalidation stream");
    /* threads only once every worker can be posted to: the first to run
     * accepts at once and may hand a client to any other */
    for (int i = 0; i < sh->n_workers; i++)
        if (px_worker_run(&sh->workers[i]) != 0)
            start_failed("could not start a worker thread");
    if (cfg->cache_enabled && cfg->cache_warm_file)
        px_cache_warm_file(cfg->cache_warm_file);
    px_log_info(NULL, "fastnext-proxy %s listening on %s:%u, %d workers, %s pooling, server %s:%u",
                PX_VERSION, cfg->proxy_listen.host, cfg->proxy_listen.port, sh->n_workers,
                cfg->pool_mode == PX_POOL_MODE_SESSION ? "session" : "transaction",
                cfg->postgres_server, cfg->postgres_port);

    uv_loop_t *loop = uv_default_loop();
    uv_timer_init(loop, &g_exit_timer);
    uv_signal_t sigs[3];
    int signums[3] = {SIGINT, SIGTERM, SIGHUP};
    for (int i = 0; i < 3; i++) {
        uv_signal_init(loop, &sigs[i]);
        uv_signal_start(&sigs[i], signal_cb, signums[i]);
    }
    uv_run(loop, UV_RUN_DEFAULT);
    px_admin_stop();
    for (int i = 0; i < sh->n_workers; i++)
        pthread_join(sh->workers[i].thread, NULL);
    px_cdc_stop();
    px_health_stop();
    for (int i = 0; i < 3; i++)
        uv_close((uv_handle_t *)&sigs[i], NULL);
    uv_close((uv_handle_t *)&g_exit_timer, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    uv_loop_close(loop);
    px_log_info(NULL, "stopped");
    return 0;
}
