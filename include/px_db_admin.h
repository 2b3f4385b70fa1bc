/**
 * @file px_db_admin.h
 * The database endpoints of the admin port (SPEC §6), plugged in with
 * px_admin_set_handler():
 *
 *  - GET /api/v1/database/slow-queries[?limit=N&order=total|mean|p95|calls]
 *    the slowest digests the proxy measured (px_digest.h), each joined with
 *    pg_stat_statements on the primary when that extension is installed.
 *  - GET /api/v1/database/index-recommendations[?limit=N]
 *    B-tree / GIN index suggestions from the plans (EXPLAIN, never ANALYZE,
 *    in a read-only transaction) of the slowest SELECT / UPDATE / DELETE
 *    digests, with HypoPG's cost estimate where that extension is installed.
 *  - GET /api/v1/routing/explain?sql=...
 *    what the classifier, the router and the result cache would do with a
 *    statement, and why.
 *
 * The first two talk to the primary over one libpq connection of their own
 * (POSTGRES_SERVER/PORT as POSTGRES_USER, its password from
 * POSTGRES_PASSWORD or the auth file, database POSTGRES_DB or the user's),
 * reused between requests and reopened after a failure; every wait on it is
 * bounded (connect 2 s, statements 2 s on the server and 3 s on the client),
 * and a request stops starting new work after PX_DB_ADMIN_BUDGET_MS. The
 * session is read-only (default_transaction_read_only) on top of the
 * explicit read-only transactions.
 */
#ifndef PX_DB_ADMIN_H
#define PX_DB_ADMIN_H

struct px_shared;

/** Total time one index-recommendations request may spend on the primary. */
#define PX_DB_ADMIN_BUDGET_MS 8000

/**
 * Register the three handlers with the admin port. Call once at start-up
 * (before or after px_admin_start); @p sh must outlive the process.
 */
void px_db_admin_register(struct px_shared *sh);

/** Close the connection to the primary (shutdown, tests). Admin thread or after it stopped. */
void px_db_admin_shutdown(void);

#endif
