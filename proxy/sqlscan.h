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
 * Whether any statement in @p sql starts with DEALLOCATE or DISCARD ALL
 * (which may remove prepared statements from the connection).
 */
bool px_sqlscan_drops_statements(const char *sql, size_t len);

#endif
