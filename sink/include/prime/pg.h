#ifndef PRIME_PG_H
#define PRIME_PG_H

#include <libpq-fe.h>
#include <stdbool.h>

#include "prime/buf.h"
#include "prime/error.h"

/* Opens a connection. conninfo is a libpq connection string or URI; NULL or
 * "" means the standard PG* environment variables. On failure returns NULL
 * with err set (code PRIME_ERR_DB, retriable: the server may come back). */
PGconn *prime_pg_connect(const char *conninfo, prime_error_t *err);

/* Fills err from a failed result (or the connection when res is NULL):
 * what failed, the server's message, the line of sql it points at (when
 * the server gives a position in sql) and the SQLSTATE. The message never
 * holds a value of a row: DETAIL and CONTEXT are left out, and a data
 * error's quoted values are withheld (only the key's column names, the
 * table, column and constraint are kept). Environment faults (see
 * prime_pg_sqlstate_retriable) are marked retriable. Returns PRIME_ERR_DB. */
prime_errcode_t prime_pg_error(PGconn *conn, const PGresult *res, const char *what, const char *sql,
                               prime_error_t *err);

/* Whether an error with this SQLSTATE is the environment's fault (a lost
 * connection, a missing column or table, a permission, a full disk, a
 * deadlock: retrying after the cause is fixed succeeds) rather than the
 * data's (a value out of range, a unique or check violation: the event is
 * at fault and retrying cannot help). NULL (no SQLSTATE) is retriable. */
bool prime_pg_sqlstate_retriable(const char *sqlstate);

/* Runs a command that returns no rows; PRIME_OK or the error as above. */
prime_errcode_t prime_pg_exec(PGconn *conn, const char *sql, const char *what, prime_error_t *err);
/* The same with text parameters ($1 ... $nparams). */
prime_errcode_t prime_pg_exec_params(PGconn *conn, const char *sql, int nparams, const char *const *params,
                                     const char *what, prime_error_t *err);

/* Runs a statement with text parameters and returns its result (rows, or
 * a command's: PQcmdTuples), which the caller PQclear()s; or NULL with err
 * set as above. The one way to run SQL whose result is read. */
PGresult *prime_pg_query(PGconn *conn, const char *sql, int nparams, const char *const *params, const char *what,
                         prime_error_t *err);

/* A PostgreSQL array literal, {"a","b"}, built item by item into b: the
 * way a batch's ids, keys and offsets go to the server as one parameter.
 * Items are quoted (a backslash before " and \), so any text is safe, and
 * PostgreSQL reads quoted items for arrays of every type (uuid[], int[],
 * bigint[], text[]); the same text is COPY's form of a TEXT[] value. */
void prime_pg_array_begin(prime_buf_t *b);
/* One item in double quotes, a backslash before " and \: the quoting that
 * array and composite (row) literals share. */
void prime_pg_quote(prime_buf_t *b, const char *item);
void prime_pg_array_add(prime_buf_t *b, const char *item);
/* An SQL NULL item (unquoted NULL). */
void prime_pg_array_add_null(prime_buf_t *b);
void prime_pg_array_end(prime_buf_t *b);

/* n such literals side by side, one per column: a batch's rows as the
 * parameters of one "... FROM unnest($2::text[], $3::int[], ...)". _end
 * points params[0..n-1] at them and returns false when one ran out of
 * memory. */
void prime_pg_arrays_begin(prime_buf_t *columns, size_t n);
bool prime_pg_arrays_end(prime_buf_t *columns, size_t n, const char **params);
void prime_pg_arrays_free(prime_buf_t *columns, size_t n);

#endif
