/* prime-verify: are two Prime databases the same, table by table?
 *
 *   prime-verify [--diff[=N]] [--table NAME]... DB_A DB_B
 *
 * DB_A and DB_B are libpq connection strings or URIs. For every table the
 * pipeline materializes (the base tables of schema public, and
 * prime_pipeline.audit_log) it compares the columns (names and types), the
 * row counts and an order-independent checksum of every column of every
 * row; --diff then walks the differing tables in primary-key order and
 * shows the first N (default 10) rows that differ, naming the columns.
 * Values of secret columns (those prime_pipeline.row_hash leaves out) are
 * compared but never printed.
 *
 * Each side is read in one REPEATABLE READ, READ ONLY transaction, so a
 * database that the live pipeline is writing is compared as of one
 * instant, and a read-only role is enough.
 *
 * Exit status: 0 equal, 1 different, 2 error (bad usage, a database that
 * cannot be read). */
#include "prime/pg.h"

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { EXIT_EQUAL = 0, EXIT_DIFFER = 1, EXIT_ERROR = 2 };
#define MAX_TABLES 64
#define SHOWN_VALUE 60 /* characters of a value --diff prints */

static const char usage[] = "usage: prime-verify [--diff[=N]] [--table NAME]... DB_A DB_B\n";

typedef struct side {
    const char *label; /* "A" or "B" */
    PGconn *conn;
} side_t;

typedef struct table {
    char *schema, *name;
    char *qualified;   /* quoted "schema"."name" */
    char *row_expr;    /* ROW("c1", "c2", ...) over the columns both sides have, by name */
    char *key_expr;    /* ROW(primary key columns)::text, or NULL when there is no key */
    char **columns;    /* the common columns, by name */
    bool *secret;      /* per column: a password or token hash, never printed */
    int ncolumns;
    bool in_a, in_b;
} table_t;

/* Output of both servers in one form: what ROW(...)::text gives must not
 * depend on either server's settings. */
static const char session_setup[] = "SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'postgres'; "
                                    "SET extra_float_digits = 3; SET bytea_output = 'hex'; "
                                    "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY";

static void fail_db(const side_t *s, const PGresult *res, const char *what)
{
    prime_error_t err;
    char msg[768];
    prime_error_clear(&err);
    prime_pg_error(s->conn, res, what, NULL, &err);
    fprintf(stderr, "prime-verify: database %s: %s\n", s->label, prime_error_str(&err, msg, sizeof(msg)));
}

/* A query's result, or NULL with the error printed. */
static PGresult *query(const side_t *s, const char *sql, int nparams, const char *const *params, const char *what)
{
    PGresult *res = PQexecParams(s->conn, sql, nparams, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK && PQresultStatus(res) != PGRES_COMMAND_OK) {
        fail_db(s, res, what);
        PQclear(res);
        return NULL;
    }
    return res;
}

static char *xstrdup(const char *s)
{
    char *d = strdup(s);
    if (!d) {
        fputs("prime-verify: out of memory\n", stderr);
        exit(EXIT_ERROR);
    }
    return d;
}

static char *quote_ident(const side_t *s, const char *name)
{
    char *q = PQescapeIdentifier(s->conn, name, strlen(name));
    char *d;
    if (!q) {
        fputs("prime-verify: out of memory\n", stderr);
        exit(EXIT_ERROR);
    }
    d = xstrdup(q);
    PQfreemem(q);
    return d;
}

static char *buf_take(prime_buf_t *b)
{
    char *s = prime_buf_steal(b, NULL);
    if (!s) {
        fputs("prime-verify: out of memory\n", stderr);
        exit(EXIT_ERROR);
    }
    return s;
}

static const char tables_sql[] =
    "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition "
    "  AND (n.nspname = 'public' OR (n.nspname = 'prime_pipeline' AND c.relname IN ('audit_log', 'recall_state', "
    "'recall_context'))) "
    "ORDER BY 1, 2";

static table_t *find_table(table_t *t, int n, const char *schema, const char *name)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(t[i].schema, schema) && !strcmp(t[i].name, name))
            return &t[i];
    return NULL;
}

/* The tables either side has (or those named by --table). Returns the count,
 * or -1 after an error. */
static int list_tables(const side_t sides[2], const char *const *only, int nonly, table_t *t)
{
    int n = 0;
    for (int k = 0; k < 2; k++) {
        PGresult *res = query(&sides[k], tables_sql, 0, NULL, "listing the tables");
        if (!res)
            return -1;
        for (int r = 0; r < PQntuples(res); r++) {
            const char *schema = PQgetvalue(res, r, 0), *name = PQgetvalue(res, r, 1);
            table_t *e = find_table(t, n, schema, name);
            /* prime-recall's own tables only when named: a database
             * prime-recall never ran on has none of their rows. */
            bool wanted = nonly == 0 && (strcmp(schema, "prime_pipeline") || !strcmp(name, "audit_log"));
            for (int i = 0; i < nonly && !wanted; i++)
                wanted = !strcmp(only[i], name) ||
                         (!strncmp(only[i], schema, strlen(schema)) && only[i][strlen(schema)] == '.' &&
                          !strcmp(only[i] + strlen(schema) + 1, name));
            if (!wanted)
                continue;
            if (!e) {
                if (n == MAX_TABLES) {
                    fprintf(stderr, "prime-verify: more than %d tables; name them with --table\n", MAX_TABLES);
                    PQclear(res);
                    return -1;
                }
                e = &t[n++];
                memset(e, 0, sizeof(*e));
                e->schema = xstrdup(schema);
                e->name = xstrdup(name);
            }
            if (k == 0)
                e->in_a = true;
            else
                e->in_b = true;
        }
        PQclear(res);
    }
    for (int i = 0; i < nonly; i++) {
        bool found = false;
        for (int j = 0; j < n && !found; j++)
            found = !strcmp(only[i], t[j].name) ||
                    (strlen(only[i]) == strlen(t[j].schema) + 1 + strlen(t[j].name) &&
                     !strncmp(only[i], t[j].schema, strlen(t[j].schema)) &&
                     !strcmp(only[i] + strlen(t[j].schema) + 1, t[j].name));
        if (!found) {
            fprintf(stderr, "prime-verify: --table %s: no such table in either database\n", only[i]);
            return -1;
        }
    }
    return n;
}

static const char columns_sql[] =
    "SELECT a.attname, format_type(a.atttypid, a.atttypmod), "
    "       coalesce((SELECT k.n FROM pg_index i, unnest(i.indkey) WITH ORDINALITY k(attnum, n) "
    "                 WHERE i.indrelid = c.oid AND i.indisprimary AND k.attnum = a.attnum), 0), "
    /* A secret column is one the audit's row hash leaves out: one list, in
     * migration 0008. */
    "       prime_pipeline.row_hash(jsonb_build_object(a.attname, 1)) = prime_pipeline.row_hash('{}') "
    "FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped "
    "ORDER BY a.attname COLLATE \"C\"";

/* Compares the two sides' columns (printing each difference) and builds the
 * row and key expressions over the columns they share. Returns false when
 * the columns differ, and -1 through *error on a database error. */
static bool compare_columns(const side_t sides[2], table_t *t, bool *error)
{
    const char *params[2] = {t->schema, t->name};
    PGresult *res[2];
    bool same = true;
    int i = 0, j = 0, nkey = 0;
    prime_buf_t row, key;
    const char *key_cols[32];

    for (int k = 0; k < 2; k++)
        if (!(res[k] = query(&sides[k], columns_sql, 2, params, "reading the columns"))) {
            if (k)
                PQclear(res[0]);
            *error = true;
            return false;
        }
    t->columns = calloc((size_t)PQntuples(res[0]) + 1, sizeof(char *));
    t->secret = calloc((size_t)PQntuples(res[0]) + 1, sizeof(bool));
    if (!t->columns || !t->secret) {
        fputs("prime-verify: out of memory\n", stderr);
        exit(EXIT_ERROR);
    }
    prime_buf_init(&row, 0);
    prime_buf_init(&key, 0);
    prime_buf_puts(&row, "ROW(");
    /* Both lists are sorted by name in byte order: a merge. */
    while (i < PQntuples(res[0]) || j < PQntuples(res[1])) {
        int cmp = i == PQntuples(res[0])   ? 1
                  : j == PQntuples(res[1]) ? -1
                                           : strcmp(PQgetvalue(res[0], i, 0), PQgetvalue(res[1], j, 0));
        if (cmp < 0) {
            printf("%s.%s: column %s only in A\n", t->schema, t->name, PQgetvalue(res[0], i++, 0));
            same = false;
        } else if (cmp > 0) {
            printf("%s.%s: column %s only in B\n", t->schema, t->name, PQgetvalue(res[1], j++, 0));
            same = false;
        } else {
            const char *name = PQgetvalue(res[0], i, 0);
            char *q;
            if (strcmp(PQgetvalue(res[0], i, 1), PQgetvalue(res[1], j, 1))) {
                printf("%s.%s: column %s is %s in A, %s in B\n", t->schema, t->name, name, PQgetvalue(res[0], i, 1),
                       PQgetvalue(res[1], j, 1));
                same = false;
            }
            q = quote_ident(&sides[0], name);
            prime_buf_printf(&row, "%s%s", t->ncolumns ? ", " : "", q);
            t->secret[t->ncolumns] = !strcmp(PQgetvalue(res[0], i, 3), "t");
            t->columns[t->ncolumns++] = xstrdup(name);
            int pos = atoi(PQgetvalue(res[0], i, 2));
            if (pos > 0 && pos <= 32 && pos == atoi(PQgetvalue(res[1], j, 2)))
                key_cols[pos - 1] = t->columns[t->ncolumns - 1], nkey = pos > nkey ? pos : nkey;
            free(q);
            i++, j++;
        }
    }
    prime_buf_putc(&row, ')');
    t->row_expr = buf_take(&row);
    if (nkey) {
        prime_buf_puts(&key, "ROW(");
        for (int k = 0; k < nkey; k++) {
            char *q = quote_ident(&sides[0], key_cols[k] ? key_cols[k] : "?");
            prime_buf_printf(&key, "%s%s", k ? ", " : "", q);
            free(q);
        }
        prime_buf_puts(&key, ")::text");
        t->key_expr = buf_take(&key);
    } else {
        prime_buf_free(&key);
    }
    PQclear(res[0]);
    PQclear(res[1]);
    return same;
}

/* Row count and checksum: the sum of each row's MD5 (two 64-bit halves, as
 * numeric so the sum cannot overflow) is the same whatever the order of the
 * rows, and changes with any value of any column. */
static bool table_summary(const side_t *s, const table_t *t, char *count, char *sum, size_t size)
{
    prime_buf_t sql;
    PGresult *res;
    char *text;

    prime_buf_init(&sql, 0);
    prime_buf_printf(&sql,
                     "SELECT count(*), coalesce(sum(('x' || left(h, 16))::bit(64)::bigint::numeric), 0) || '/' || "
                     "coalesce(sum(('x' || right(h, 16))::bit(64)::bigint::numeric), 0) "
                     "FROM (SELECT md5(%s::text) AS h FROM %s t) r",
                     t->row_expr, t->qualified);
    text = buf_take(&sql);
    res = query(s, text, 0, NULL, "summing the rows");
    free(text);
    if (!res)
        return false;
    snprintf(count, size, "%s", PQgetvalue(res, 0, 0));
    snprintf(sum, size, "%s", PQgetvalue(res, 0, 1));
    PQclear(res);
    return true;
}

/* Prints one value for --diff: quoted, cut, secret columns withheld. */
static void show_value(bool secret, const PGresult *res, int col)
{
    if (PQgetisnull(res, 0, col)) {
        fputs("NULL", stdout);
    } else if (secret) {
        fputs("(secret, not shown)", stdout);
    } else {
        const char *v = PQgetvalue(res, 0, col);
        int n = (int)strlen(v);
        putchar('"');
        for (int i = 0; i < n && i < SHOWN_VALUE; i++)
            putchar((unsigned char)v[i] < 0x20 ? '?' : v[i]);
        fputs(n > SHOWN_VALUE ? "\"..." : "\"", stdout);
    }
}

/* One row that differs: the columns whose values differ, side by side. */
static bool show_row_difference(const side_t sides[2], const table_t *t, const char *key)
{
    prime_buf_t sql;
    PGresult *res[2];
    char *text;

    prime_buf_init(&sql, 0);
    prime_buf_puts(&sql, "SELECT ");
    for (int c = 0; c < t->ncolumns; c++) {
        char *q = quote_ident(&sides[0], t->columns[c]);
        prime_buf_printf(&sql, "%s%s::text", c ? ", " : "", q);
        free(q);
    }
    prime_buf_printf(&sql, " FROM %s t WHERE %s COLLATE \"C\" = $1", t->qualified, t->key_expr);
    text = buf_take(&sql);
    res[0] = query(&sides[0], text, 1, &key, "reading a row");
    res[1] = res[0] ? query(&sides[1], text, 1, &key, "reading a row") : NULL;
    free(text);
    if (!res[0] || !res[1]) {
        PQclear(res[0]);
        return false;
    }
    printf("%s.%s %s: differs in", t->schema, t->name, key);
    for (int c = 0; c < t->ncolumns; c++) {
        bool na = PQgetisnull(res[0], 0, c), nb = PQgetisnull(res[1], 0, c);
        if (na == nb && (na || !strcmp(PQgetvalue(res[0], 0, c), PQgetvalue(res[1], 0, c))))
            continue;
        printf("\n  %s: A ", t->columns[c]);
        show_value(t->secret[c], res[0], c);
        fputs(", B ", stdout);
        show_value(t->secret[c], res[1], c);
    }
    putchar('\n');
    PQclear(res[0]);
    PQclear(res[1]);
    return true;
}

/* --diff: both sides' (key, row hash) in the same key order, merged; the
 * first `limit` keys that are on one side only or hash differently. */
static bool show_differences(const side_t sides[2], const table_t *t, int limit)
{
    prime_buf_t sql;
    PGresult *res[2];
    char *text;
    int i = 0, j = 0, shown = 0;
    bool ok = true;

    if (!t->key_expr) {
        printf("%s.%s: no primary key, rows not listed\n", t->schema, t->name);
        return true;
    }
    prime_buf_init(&sql, 0);
    /* COLLATE "C": byte order on both servers, which strcmp() follows. */
    prime_buf_printf(&sql, "SELECT %s COLLATE \"C\" AS k, md5(%s::text) FROM %s t ORDER BY k", t->key_expr,
                     t->row_expr, t->qualified);
    text = buf_take(&sql);
    res[0] = query(&sides[0], text, 0, NULL, "listing the rows");
    res[1] = res[0] ? query(&sides[1], text, 0, NULL, "listing the rows") : NULL;
    free(text);
    if (!res[0] || !res[1]) {
        PQclear(res[0]);
        return false;
    }
    while (ok && shown < limit && (i < PQntuples(res[0]) || j < PQntuples(res[1]))) {
        int cmp = i == PQntuples(res[0])   ? 1
                  : j == PQntuples(res[1]) ? -1
                                           : strcmp(PQgetvalue(res[0], i, 0), PQgetvalue(res[1], j, 0));
        if (cmp < 0) {
            printf("%s.%s %s: only in A\n", t->schema, t->name, PQgetvalue(res[0], i++, 0));
            shown++;
        } else if (cmp > 0) {
            printf("%s.%s %s: only in B\n", t->schema, t->name, PQgetvalue(res[1], j++, 0));
            shown++;
        } else {
            if (strcmp(PQgetvalue(res[0], i, 1), PQgetvalue(res[1], j, 1))) {
                ok = show_row_difference(sides, t, PQgetvalue(res[0], i, 0));
                shown++;
            }
            i++, j++;
        }
    }
    PQclear(res[0]);
    PQclear(res[1]);
    return ok;
}

static void table_free(table_t *t)
{
    for (int c = 0; c < t->ncolumns; c++)
        free(t->columns[c]);
    free(t->columns);
    free(t->secret);
    free(t->schema);
    free(t->name);
    free(t->qualified);
    free(t->row_expr);
    free(t->key_expr);
}

/* Compares one table; prints its line. Returns EXIT_EQUAL, EXIT_DIFFER or
 * EXIT_ERROR. */
static int verify_table(const side_t sides[2], table_t *t, int diff_limit)
{
    char count[2][32], sum[2][96];
    bool error = false, same_columns;
    char *qs, *qn;

    if (!t->in_a || !t->in_b) {
        printf("%s.%s: table only in %s\n", t->schema, t->name, t->in_a ? "A" : "B");
        return EXIT_DIFFER;
    }
    qs = quote_ident(&sides[0], t->schema);
    qn = quote_ident(&sides[0], t->name);
    prime_buf_t q;
    prime_buf_init(&q, 0);
    prime_buf_printf(&q, "%s.%s", qs, qn);
    t->qualified = buf_take(&q);
    free(qs);
    free(qn);

    same_columns = compare_columns(sides, t, &error);
    if (error)
        return EXIT_ERROR;
    for (int k = 0; k < 2; k++)
        if (!table_summary(&sides[k], t, count[k], sum[k], sizeof(count[k])))
            return EXIT_ERROR;
    bool same = same_columns && !strcmp(count[0], count[1]) && !strcmp(sum[0], sum[1]);
    char label[200];
    snprintf(label, sizeof(label), "%s%s%s", strcmp(t->schema, "public") ? t->schema : "",
             strcmp(t->schema, "public") ? "." : "", t->name);
    printf("%-32s A %9s rows  B %9s rows  %s\n", label, count[0], count[1], same ? "equal" : "DIFFERENT");
    if (!same && diff_limit > 0 && !show_differences(sides, t, diff_limit))
        return EXIT_ERROR;
    return same ? EXIT_EQUAL : EXIT_DIFFER;
}

int main(int argc, char **argv)
{
    const char *only[MAX_TABLES], *dbs[2] = {NULL, NULL};
    int nonly = 0, ndbs = 0, diff_limit = 0, status = EXIT_EQUAL, ntables;
    side_t sides[2] = {{"A", NULL}, {"B", NULL}};
    static table_t tables[MAX_TABLES];

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--diff")) {
            diff_limit = 10;
        } else if (!strncmp(argv[i], "--diff=", 7)) {
            char *end;
            long n = strtol(argv[i] + 7, &end, 10);
            if (*end || n < 1 || n > 1000000) {
                fprintf(stderr, "prime-verify: --diff: expected a number of rows from 1 to 1000000, got '%s'\n%s",
                        argv[i] + 7, usage);
                return EXIT_ERROR;
            }
            diff_limit = (int)n;
        } else if (!strcmp(argv[i], "--table") && i + 1 < argc) {
            if (nonly == MAX_TABLES) {
                fprintf(stderr, "prime-verify: at most %d --table options\n", MAX_TABLES);
                return EXIT_ERROR;
            }
            only[nonly++] = argv[++i];
        } else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fputs(usage, stdout);
            return EXIT_EQUAL;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "prime-verify: unknown option '%s'\n%s", argv[i], usage);
            return EXIT_ERROR;
        } else if (ndbs < 2) {
            dbs[ndbs++] = argv[i];
        } else {
            fprintf(stderr, "prime-verify: expected two databases, got a third: '%s'\n%s", argv[i], usage);
            return EXIT_ERROR;
        }
    }
    if (ndbs != 2) {
        fprintf(stderr, "prime-verify: expected two databases (libpq connection strings), got %d\n%s", ndbs, usage);
        return EXIT_ERROR;
    }
    for (int k = 0; k < 2; k++) {
        prime_error_t err;
        char msg[768];
        prime_error_clear(&err);
        if (!(sides[k].conn = prime_pg_connect(dbs[k], &err))) {
            fprintf(stderr, "prime-verify: database %s: %s\n", sides[k].label, prime_error_str(&err, msg, sizeof(msg)));
            status = EXIT_ERROR;
            goto out;
        }
        if (prime_pg_exec(sides[k].conn, session_setup, "starting a read-only transaction", &err)) {
            fprintf(stderr, "prime-verify: database %s: %s\n", sides[k].label, prime_error_str(&err, msg, sizeof(msg)));
            status = EXIT_ERROR;
            goto out;
        }
    }
    if ((ntables = list_tables(sides, only, nonly, tables)) < 0) {
        status = EXIT_ERROR;
        goto out;
    }
    for (int i = 0; i < ntables && status != EXIT_ERROR; i++) {
        int rc = verify_table(sides, &tables[i], diff_limit);
        if (rc > status)
            status = rc;
    }
    for (int i = 0; i < ntables; i++)
        table_free(&tables[i]);
    if (status != EXIT_ERROR)
        printf("prime-verify: %d tables, %s\n", ntables, status == EXIT_EQUAL ? "equal" : "DIFFERENT");
out:
    for (int k = 0; k < 2; k++)
        PQfinish(sides[k].conn);
    return status;
}
