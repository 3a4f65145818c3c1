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

/* Who is at fault when PostgreSQL refuses a statement, by SQLSTATE class
 * (the first two characters; https://www.postgresql.org/docs/current/errcodes-appendix.html).
 * "retry": the environment is at fault (the server, its schema, its
 * permissions, its configuration, its resources): the same statement can
 * succeed once an operator or time fixes it, so the worker waits and
 * retries, and dead-letters nothing. Not "retry": the data is at fault,
 * the same statement with the same values fails every time, so the event
 * is dead-lettered. */
static const struct sqlstate_class {
    const char prefix[4];
    bool retry;
} sqlstate_classes[] = {
    {"08", true},  /* connection exception: the server went away */
    {"0A", true},  /* feature not supported: the server is older than the SQL */
    {"0B", true},  /* invalid transaction initiation: the program's state, not the event */
    {"0F", true},  /* locator exception */
    {"0L", true},  /* invalid grantor */
    {"0P", true},  /* invalid role specification */
    {"20", false}, /* case not found (PL/pgSQL CASE over a value) */
    {"21", false}, /* cardinality violation: two rows of the batch for one key (isolated one by one) */
    {"22", false}, /* data exception: a value out of range, malformed, too long */
    {"23", false}, /* integrity constraint violation: the event clashes with a row (unique, check, foreign key) */
    {"24", true},  /* invalid cursor state: the program's state */
    {"25", true},  /* invalid transaction state: read-only transaction (a replica), aborted transaction */
    {"26", true},  /* invalid SQL statement name */
    {"27", false}, /* triggered data change violation: a trigger refused the change of this row */
    {"28", true},  /* invalid authorization: password, role or pg_hba changed */
    {"2B", true},  /* dependent privilege descriptors still exist */
    {"2D", true},  /* invalid transaction termination */
    {"2F", true},  /* SQL routine exception: a function in the database */
    {"34", true},  /* invalid cursor name */
    {"38", true},  /* external routine exception */
    {"39", true},  /* external routine invocation exception */
    {"3B", true},  /* savepoint exception: the program's state */
    {"3D", true},  /* invalid catalog name: the database does not exist */
    {"3F", true},  /* invalid schema name: a schema dropped or renamed */
    {"40", true},  /* transaction rollback: serialization failure, deadlock */
    {"42", true},  /* syntax error or access rule violation: undefined column, table or function (schema drift),
                      insufficient privilege, type mismatch with the live schema: nothing in the event fixes it */
    {"44", false}, /* WITH CHECK OPTION violation: the row does not fit the view */
    {"53", true},  /* insufficient resources: disk full, out of memory, too many connections */
    {"54", false}, /* program limit exceeded: a value too large for an index row, too many columns */
    {"55", true},  /* object not in prerequisite state: lock not available, object in use */
    {"57", true},  /* operator intervention: shutdown, cancel, statement timeout */
    {"58", true},  /* system error: I/O error, file missing on the server */
    {"72", true},  /* snapshot failure */
    {"F0", true},  /* configuration file error */
    {"HV", true},  /* foreign data wrapper error: a remote server */
    {"P0", false}, /* PL/pgSQL raise_exception: a trigger refused this row */
    {"XX", true},  /* internal error, data corrupted, index corrupted: the server's state */
};

bool prime_pg_sqlstate_retriable(const char *sqlstate)
{
    if (!sqlstate || strlen(sqlstate) != 5)
        return true; /* no SQLSTATE: libpq lost the server */
    for (size_t i = 0; i < sizeof(sqlstate_classes) / sizeof(sqlstate_classes[0]); i++)
        if (!strncmp(sqlstate, sqlstate_classes[i].prefix, 2))
            return sqlstate_classes[i].retry;
    /* A class this build does not know is a server newer than it: waiting
     * loses nothing and shows on /healthz; dead-lettering could lose every
     * event. */
    return true;
}

/* Whether a quoted word of a message is one of the objects the server
 * named in the error's fields (a table, column, constraint, type): those
 * are the schema's, not the data's. */
static bool names_object(const PGresult *res, const char *word, size_t len)
{
    static const int fields[] = {PG_DIAG_SCHEMA_NAME, PG_DIAG_TABLE_NAME, PG_DIAG_COLUMN_NAME,
                                 PG_DIAG_DATATYPE_NAME, PG_DIAG_CONSTRAINT_NAME};
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        const char *f = PQresultErrorField(res, fields[i]);
        if (f && strlen(f) == len && !memcmp(f, word, len))
            return true;
    }
    return false;
}

/* The primary message of a data error without the values it quotes
 * ("invalid input syntax for type uuid: \"...\"", "value \"...\" is out of
 * range"): everything from the first quoted word that is not a named object
 * on is replaced, since a value may itself hold quotes. */
static void without_values(const PGresult *res, const char *primary, char *out, size_t size)
{
    const char *p = primary;

    while ((p = strchr(p, '"'))) {
        const char *end = strchr(p + 1, '"');
        if (!end || !names_object(res, p + 1, (size_t)(end - p - 1)))
            break;
        p = end + 1;
    }
    snprintf(out, size, "%.*s%s", (int)(p ? p - primary : (long)strlen(primary)), primary, p ? "(value withheld)" : "");
}

/* The key columns of a unique or foreign key violation, from its DETAIL
 * "Key (col, ...)=(values) ...": the columns only, never the values. */
static void key_columns(const char *detail, char *out, size_t size)
{
    const char *end = detail && !strncmp(detail, "Key (", 5) ? strstr(detail, ")=(") : NULL;

    *out = '\0';
    if (end)
        snprintf(out, size, "; key (%.*s)", (int)(end - detail - 5), detail + 5);
}

/* Secrets and personal data must not leave the database through its error
 * texts (docs/workers.md): the message kept here goes to logs, dead-letter
 * headers and audit records. So DETAIL (which copies the row: "Key
 * (session_token)=(...)", "Failing row contains (...)"), CONTEXT (which
 * quotes COPY lines) and HINT are never copied, and a data error's primary
 * message keeps the objects it names but not the values it quotes. What is
 * kept names the table, column and constraint: enough for an operator. */
prime_errcode_t prime_pg_error(PGconn *conn, const PGresult *res, const char *what, const char *sql,
                               prime_error_t *err)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    const char *position = res ? PQresultErrorField(res, PG_DIAG_STATEMENT_POSITION) : NULL;
    const char *table = res ? PQresultErrorField(res, PG_DIAG_TABLE_NAME) : NULL;
    const char *column = res ? PQresultErrorField(res, PG_DIAG_COLUMN_NAME) : NULL;
    bool retriable = PQstatus(conn) != CONNECTION_OK || prime_pg_sqlstate_retriable(state);
    char where[48] = "", text[400], key[160] = "", object[200] = "";
    prime_errcode_t code;

    if (!primary) {
        primary = PQerrorMessage(conn);
        if (!primary || !*primary)
            primary = "unknown error";
    }
    if (position && sql)
        snprintf(where, sizeof(where), " (line %d)", line_of(sql, atol(position)));
    if (retriable) {
        snprintf(text, sizeof(text), "%s", primary);
    } else {
        without_values(res, primary, text, sizeof(text));
        key_columns(res ? PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL) : NULL, key, sizeof(key));
    }
    if (table && column)
        snprintf(object, sizeof(object), "; column %s.%s", table, column);
    /* libpq's own messages (no result) end in a newline. */
    for (size_t n = strlen(text); n && (text[n - 1] == '\n' || text[n - 1] == ' '); n--)
        text[n - 1] = '\0';
    code = prime_error_set(err, PRIME_ERR_DB, NULL, "%s%s: %s%s%s [SQLSTATE %s]", what, where, text, key, object,
                           state ? state : "none");
    if (err && err->code == PRIME_ERR_DB && retriable)
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
