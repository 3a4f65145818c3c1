#include "prime/pg.h"

#include <stdlib.h>
#include <string.h>

PGconn *prime_pg_connect(const char *conninfo, prime_error_t *err)
{
    PGconn *conn = PQconnectdb(conninfo ? conninfo : "");

    if (!conn) {
        prime_error_set(err, PRIME_ERR_NOMEM, NULL, "out of memory");
        return NULL;
    }
    if (PQstatus(conn) != CONNECTION_OK) {
        char msg[400];
        size_t n;
        /* libpq's message ends in a newline; keep the error on one line. */
        snprintf(msg, sizeof(msg), "%s", PQerrorMessage(conn));
        n = strlen(msg);
        while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
            msg[--n] = '\0';
        prime_error_set(err, PRIME_ERR_DB, NULL, "cannot connect to PostgreSQL: %s", msg);
        if (err)
            err->retriable = true;
        PQfinish(conn);
        return NULL;
    }
    /* Timestamps and text go in and out in one fixed form whatever the
     * server's defaults, so that what we write is a function of the events. */
    if (prime_pg_exec(conn, "SET TIME ZONE 'UTC'; SET client_encoding = 'UTF8'; SET client_min_messages = warning",
                      "setting the session's time zone and encoding", err)) {
        /* Timestamps in another zone would be wrong values: no connection
         * rather than that (retriable: the server may be restarting). */
        if (err)
            err->retriable = true;
        PQfinish(conn);
        return NULL;
    }
    return conn;
}

/* 1-based line of sql holding the 1-based character position pos. */
static int line_of(const char *sql, long pos)
{
    int line = 1;
    for (long i = 0; sql && sql[i] && i < pos - 1; i++)
        if (sql[i] == '\n')
            line++;
    return line;
}

prime_errcode_t prime_pg_error(PGconn *conn, const PGresult *res, const char *what, const char *sql,
                               prime_error_t *err)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    const char *detail = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL) : NULL;
    const char *position = res ? PQresultErrorField(res, PG_DIAG_STATEMENT_POSITION) : NULL;
    char where[48] = "";
    prime_errcode_t code;

    if (!primary) {
        primary = PQerrorMessage(conn);
        if (!primary || !*primary)
            primary = "unknown error";
    }
    if (position && sql)
        snprintf(where, sizeof(where), " (line %d)", line_of(sql, atol(position)));
    code = prime_error_set(err, PRIME_ERR_DB, NULL, "%s%s: %s%s%s%s [SQLSTATE %s]", what, where, primary,
                           detail ? " (" : "", detail ? detail : "", detail ? ")" : "",
                           state ? state : "none");
    /* Class 08 (connection exception), 57P (operator intervention, e.g. a
     * shutdown) and 40 (serialization, deadlock) can succeed on retry. */
    if (err && err->code == PRIME_ERR_DB &&
        (PQstatus(conn) != CONNECTION_OK ||
         (state && (!strncmp(state, "08", 2) || !strncmp(state, "57P", 3) || !strncmp(state, "40", 2)))))
        err->retriable = true;
    return code;
}

prime_errcode_t prime_pg_exec(PGconn *conn, const char *sql, const char *what, prime_error_t *err)
{
    PGresult *res = PQexec(conn, sql);
    prime_errcode_t rc = PRIME_OK;

    if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK)
        rc = prime_pg_error(conn, res, what, sql, err);
    PQclear(res);
    return rc;
}

void prime_pg_array_begin(prime_buf_t *b)
{
    prime_buf_putc(b, '{');
}

prime_errcode_t prime_pg_exec_params(PGconn *conn, const char *sql, int nparams, const char *const *params,
                                     const char *what, prime_error_t *err)
{
    PGresult *res = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
    prime_errcode_t rc = PRIME_OK;

    if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK)
        rc = prime_pg_error(conn, res, what, sql, err);
    PQclear(res);
    return rc;
}

PGresult *prime_pg_query(PGconn *conn, const char *sql, int nparams, const char *const *params, const char *what,
                         prime_error_t *err)
{
    PGresult *res = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);

    if (PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK)
        return res;
    prime_pg_error(conn, res, what, sql, err);
    PQclear(res);
    return NULL;
}

void prime_pg_quote(prime_buf_t *b, const char *item)
{
    prime_buf_putc(b, '"');
    for (; item && *item; item++) {
        if (*item == '"' || *item == '\\')
            prime_buf_putc(b, '\\');
        prime_buf_putc(b, *item);
    }
    prime_buf_putc(b, '"');
}

void prime_pg_array_add(prime_buf_t *b, const char *item)
{
    if (b->len && b->data[b->len - 1] != '{')
        prime_buf_putc(b, ',');
    prime_pg_quote(b, item);
}

void prime_pg_array_add_null(prime_buf_t *b)
{
    if (b->len && b->data[b->len - 1] != '{')
        prime_buf_putc(b, ',');
    prime_buf_puts(b, "NULL");
}

void prime_pg_array_end(prime_buf_t *b)
{
    prime_buf_putc(b, '}');
}

void prime_pg_arrays_begin(prime_buf_t *columns, size_t n)
{
    for (size_t c = 0; c < n; c++) {
        prime_buf_init(&columns[c], 0);
        prime_pg_array_begin(&columns[c]);
    }
}

bool prime_pg_arrays_end(prime_buf_t *columns, size_t n, const char **params)
{
    bool ok = true;
    for (size_t c = 0; c < n; c++) {
        prime_pg_array_end(&columns[c]);
        params[c] = columns[c].data;
        ok &= !columns[c].failed;
    }
    return ok;
}

void prime_pg_arrays_free(prime_buf_t *columns, size_t n)
{
    for (size_t c = 0; c < n; c++)
        prime_buf_free(&columns[c]);
}
