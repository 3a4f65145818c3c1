/* prime-bench-upsert: the materialize benchmark's per-event baseline.
 *
 *   prime-bench-upsert --rows CONNINFO --db CONNINFO --touches FILE [--batch N]
 *
 * What a Kafka Connect JDBC sink does with a stream of row changes: one
 * INSERT ... ON CONFLICT (id) DO UPDATE per record, as a prepared
 * statement, N records (default 3000) a transaction, sent pipelined (as
 * JDBC's executeBatch does) so that round trips do not dominate. The rows
 * are the materialized database's final rows (read from --rows), and each
 * line "table<TAB>id" of --touches is one event's row, written to --db in
 * event order: same statements, same sizes, one per event.
 *
 * Prints "upserts=N seconds=S". */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_TABLES 16

typedef struct table_rows {
    char name[64];
    PGresult *rows;  /* SELECT * of the table, as text */
    int *sorted;     /* row numbers sorted by id, for bsearch */
    int ncols;
    char stmt[80];
} table_rows_t;

static table_rows_t tables[MAX_TABLES];
static int ntables;
static const PGresult *sort_rows;

static void die(const char *what, PGconn *conn)
{
    fprintf(stderr, "prime-bench-upsert: %s%s%s\n", what, conn ? ": " : "", conn ? PQerrorMessage(conn) : "");
    exit(1);
}

static int cmp_row(const void *a, const void *b)
{
    return strcmp(PQgetvalue(sort_rows, *(const int *)a, 0), PQgetvalue(sort_rows, *(const int *)b, 0));
}

static const char *search_id;
static int cmp_key(const void *key, const void *b)
{
    (void)key;
    return strcmp(search_id, PQgetvalue(sort_rows, *(const int *)b, 0));
}

/* The table's rows from the source, and an upsert prepared on the target. */
static table_rows_t *load_table(PGconn *src, PGconn *dst, const char *name)
{
    table_rows_t *t;
    char sql[4096];
    size_t len;
    PGresult *res;

    for (int i = 0; i < ntables; i++)
        if (!strcmp(tables[i].name, name))
            return &tables[i];
    if (ntables == MAX_TABLES || strlen(name) >= sizeof(t->name))
        die("too many tables, or a name too long", NULL);
    t = &tables[ntables];
    snprintf(t->name, sizeof(t->name), "%s", name);
    snprintf(sql, sizeof(sql), "SELECT * FROM public.%s", name);
    t->rows = PQexec(src, sql);
    if (PQresultStatus(t->rows) != PGRES_TUPLES_OK)
        die(sql, src);
    t->ncols = PQnfields(t->rows);
    t->sorted = malloc(sizeof(int) * (size_t)(PQntuples(t->rows) + 1));
    for (int r = 0; r < PQntuples(t->rows); r++)
        t->sorted[r] = r;
    sort_rows = t->rows;
    qsort(t->sorted, (size_t)PQntuples(t->rows), sizeof(int), cmp_row);

    len = (size_t)snprintf(sql, sizeof(sql), "INSERT INTO public.%s (", name);
    for (int c = 0; c < t->ncols; c++)
        len += (size_t)snprintf(sql + len, sizeof(sql) - len, "%s%s", c ? ", " : "", PQfname(t->rows, c));
    len += (size_t)snprintf(sql + len, sizeof(sql) - len, ") VALUES (");
    for (int c = 0; c < t->ncols; c++)
        len += (size_t)snprintf(sql + len, sizeof(sql) - len, "%s$%d", c ? ", " : "", c + 1);
    len += (size_t)snprintf(sql + len, sizeof(sql) - len, ") ON CONFLICT (id) DO UPDATE SET ");
    for (int c = 1; c < t->ncols; c++)
        len += (size_t)snprintf(sql + len, sizeof(sql) - len, "%s%s = EXCLUDED.%s", c > 1 ? ", " : "",
                                PQfname(t->rows, c), PQfname(t->rows, c));
    if (len >= sizeof(sql))
        die("statement too long", NULL);
    snprintf(t->stmt, sizeof(t->stmt), "upsert_%s", name);
    res = PQprepare(dst, t->stmt, sql, 0, NULL);
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        die(sql, dst);
    PQclear(res);
    ntables++;
    return t;
}

/* Reads results up to the pipeline's sync point; exits on an error. */
static void drain(PGconn *dst)
{
    for (;;) {
        PGresult *res = PQgetResult(dst);
        if (!res)
            continue; /* end of one query's results */
        ExecStatusType st = PQresultStatus(res);
        if (st == PGRES_PIPELINE_SYNC) {
            PQclear(res);
            return;
        }
        if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
            die("upsert", dst);
        PQclear(res);
    }
}

int main(int argc, char **argv)
{
    const char *rows_db = NULL, *db = NULL, *touches = NULL;
    long batch = 3000, n = 0;
    char line[256];
    struct timespec t0, t1;
    PGconn *src, *dst;
    FILE *in;

    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--rows"))
            rows_db = argv[i + 1];
        else if (!strcmp(argv[i], "--db"))
            db = argv[i + 1];
        else if (!strcmp(argv[i], "--touches"))
            touches = argv[i + 1];
        else if (!strcmp(argv[i], "--batch"))
            batch = atol(argv[i + 1]);
    }
    if (!rows_db || !db || !touches || batch < 1) {
        fputs("usage: prime-bench-upsert --rows CONNINFO --db CONNINFO --touches FILE [--batch N]\n", stderr);
        return 2;
    }
    src = PQconnectdb(rows_db);
    dst = PQconnectdb(db);
    if (PQstatus(src) != CONNECTION_OK)
        die("--rows", src);
    if (PQstatus(dst) != CONNECTION_OK)
        die("--db", dst);
    if (!(in = fopen(touches, "r")))
        die(touches, NULL);

    /* Statements prepared and rows read before the clock starts. */
    while (fgets(line, sizeof(line), in)) {
        char *tab = strchr(line, '\t');
        if (tab) {
            *tab = '\0';
            load_table(src, dst, line);
        }
    }
    rewind(in);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (!PQenterPipelineMode(dst))
        die("pipeline mode", dst);
    PQsendQueryParams(dst, "BEGIN", 0, NULL, NULL, NULL, NULL, 0);
    while (fgets(line, sizeof(line), in)) {
        char *tab = strchr(line, '\t'), *id;
        const char *params[64];
        table_rows_t *t;
        int *hit;

        if (!tab)
            continue;
        *tab = '\0';
        id = tab + 1;
        id[strcspn(id, "\n")] = '\0';
        t = load_table(src, dst, line);
        sort_rows = t->rows;
        search_id = id;
        hit = bsearch(id, t->sorted, (size_t)PQntuples(t->rows), sizeof(int), cmp_key);
        if (!hit)
            continue; /* a row the stream deleted: nothing to write */
        for (int c = 0; c < t->ncols && c < 64; c++)
            params[c] = PQgetisnull(t->rows, *hit, c) ? NULL : PQgetvalue(t->rows, *hit, c);
        if (!PQsendQueryPrepared(dst, t->stmt, t->ncols, params, NULL, NULL, 0))
            die("send", dst);
        if (++n % batch == 0) {
            PQsendQueryParams(dst, "COMMIT", 0, NULL, NULL, NULL, NULL, 0);
            PQpipelineSync(dst);
            drain(dst);
            PQsendQueryParams(dst, "BEGIN", 0, NULL, NULL, NULL, NULL, 0);
        }
    }
    PQsendQueryParams(dst, "COMMIT", 0, NULL, NULL, NULL, NULL, 0);
    PQpipelineSync(dst);
    drain(dst);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("upserts=%ld seconds=%.3f\n", n, (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
    fclose(in);
    for (int i = 0; i < ntables; i++) {
        PQclear(tables[i].rows);
        free(tables[i].sorted);
    }
    PQfinish(src);
    PQfinish(dst);
    return 0;
}
