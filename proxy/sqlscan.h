/*
 * A light lexical scan of SQL text, for what the proxy must notice before a
 * full parse is available: statements that leave state on the server
 * connection beyond the transaction (session SET, LISTEN, PREPARE, temporary
 * tables, WITH HOLD cursors, session advisory locks, ...).
 */
#ifndef PX_SQLSCAN_H
#define PX_SQLSCAN_H

#include <stdbool.h>
#include <stddef.h>

/**
 * If any statement in @p sql leaves session state behind, return a short
 * static description of it ("SET", "LISTEN", ...); otherwise NULL.
 * Comments, quoted identifiers, string and dollar-quoted literals are
 * skipped; the scan never reads outside [sql, sql + len).
 */
const char *px_sqlscan_session_state(const char *sql, size_t len);

/**
 * A quick pass that rules out what the proxy looks for: false means
 * px_sqlscan_session_state() would return NULL and
 * px_sqlscan_drops_statements() false for the same text. True only means the
 * full scans must look (a needle word appears somewhere).
 */
bool px_sqlscan_may_matter(const char *sql, size_t len);

/** px_sqlscan_may_matter() remembered per thread for recent short texts (for Parse texts, which
 * repeat). */
bool px_sqlscan_may_matter_remembered(const char *sql, size_t len);

/** px_sqlscan_session_state() without the quick pass (what the pass must never hide). */
const char *px_sqlscan_session_state_full(const char *sql, size_t len);

/**
 * Case-insensitive: does @p word (lower case) occur anywhere in the text,
 * comments and literals included? A cheap pass that lets almost every
 * statement skip a closer look.
 */
bool px_sqlscan_mentions(const char *sql, size_t len, const char *word);

/**
 * Whether any statement in @p sql starts with DEALLOCATE or DISCARD ALL
 * (which may remove prepared statements from the connection).
 */
bool px_sqlscan_drops_statements(const char *sql, size_t len);

/**
 * Whether any statement in @p sql is DEALLOCATE [PREPARE] ALL or DISCARD ALL
 * (which remove every prepared statement of the connection).
 */
bool px_sqlscan_drops_all_statements(const char *sql, size_t len);

/** A session setting statement the proxy can carry to other server connections. */
typedef enum px_set_kind {
    PX_SET_NONE = 0,
    PX_SET_VALUE, /* SET [SESSION] name {= | TO} value-list (also TIME ZONE '...', SCHEMA '...') */
    PX_SET_RESET, /* RESET name, SET name TO DEFAULT, SET TIME ZONE LOCAL | DEFAULT */
    PX_SET_RESET_ALL, /* RESET ALL */
} px_set_kind_t;

typedef struct px_set_stmt {
    px_set_kind_t kind;
    char name[64];     /* folded as PostgreSQL folds it ("search_path", "myapp.tenant") */
    const char *value; /* PX_SET_VALUE: the value list as written, within the text */
    size_t value_len;
} px_set_stmt_t;

/**
 * Whether @p sql is exactly one session SET / RESET the proxy can replay on
 * another server connection by sending "SET name = <value as written>". Not:
 * SET LOCAL, SET ROLE, SET SESSION AUTHORIZATION, SET TRANSACTION, SET
 * CONSTRAINTS, SET NAMES, values with comments, backslashes, dollar quotes or
 * E'' strings, several statements. Anything it refuses keeps pinning.
 */
bool px_sqlscan_parse_set(const char *sql, size_t len, px_set_stmt_t *out);

#endif
