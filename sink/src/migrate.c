#include "prime/migrate.h"
#include "prime/embedded.h"
#include "prime/pg.h"
#include "prime/buf.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

extern const prime_embedded_file_t prime_sql_migrations[];
extern const prime_embedded_file_t prime_sql_expected_schema[];

/* Any fixed 64-bit number: the key every prime-migrate locks. */
#define MIGRATE_LOCK_KEY "7254301906542813"

static const char bootstrap_sql[] =
    "CREATE SCHEMA IF NOT EXISTS prime_pipeline;"
    "CREATE TABLE IF NOT EXISTS prime_pipeline.schema_migrations ("
    "  version INTEGER PRIMARY KEY,"
    "  name TEXT NOT NULL,"
    "  sha256 TEXT NOT NULL,"
    "  applied_at TIMESTAMPTZ NOT NULL DEFAULT now())";

typedef struct applied {
    int version;
    char *sha256;
} applied_t;

static int version_of(const char *name)
{
    return atoi(name); /* "0002_pipeline.sql" -> 2; names are checked at build time by the test */
}

/* SHA-256 of a migration's text, by the server, so that no hashing library
 * is needed here and the stored value is the one the server can recompute. */
static char *server_sha256(PGconn *conn, const prime_embedded_file_t *m, prime_error_t *err)
{
    const char *params[1] = {(const char *)m->data};
    int lengths[1] = {(int)m->len}, formats[1] = {1};
    PGresult *res = PQexecParams(conn, "SELECT encode(sha256($1::bytea), 'hex')", 1, NULL, params, lengths,
                                 formats, 0);
    char *out = NULL;

    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        prime_pg_error(conn, res, "hashing a migration", NULL, err);
    else if (!(out = strdup(PQgetvalue(res, 0, 0))))
        prime_error_set(err, PRIME_ERR_NOMEM, NULL, "out of memory");
    PQclear(res);
    return out;
}

static prime_errcode_t apply_one(PGconn *conn, const prime_embedded_file_t *m, const char *sha,
                                 prime_error_t *err)
{
    char version[16];
    const char *params[3] = {version, m->name, sha};
    PGresult *res;
    prime_errcode_t rc;

    if ((rc = prime_pg_exec(conn, "BEGIN", "BEGIN", err)))
        return rc;
    if ((rc = prime_pg_exec(conn, (const char *)m->data, m->name, err)))
        goto rollback;
    snprintf(version, sizeof(version), "%d", version_of(m->name));
    res = PQexecParams(conn,
                       "INSERT INTO prime_pipeline.schema_migrations (version, name, sha256) VALUES ($1, $2, $3)",
                       3, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        rc = prime_pg_error(conn, res, "recording the migration", NULL, err);
    PQclear(res);
    if (rc)
        goto rollback;
    return prime_pg_exec(conn, "COMMIT", "COMMIT", err);
rollback:
    PQclear(PQexec(conn, "ROLLBACK"));
    return rc;
}

static prime_errcode_t run(PGconn *conn, prime_migrate_mode_t mode, FILE *log, int *count, prime_error_t *err)
{
    PGresult *res;
    applied_t *done = NULL;
    int ndone = 0, known = 0;
    prime_errcode_t rc = PRIME_OK;

    /* STATUS writes nothing (a read-only user runs it): no table, nothing applied. */
    if (mode == PRIME_MIGRATE_STATUS)
        res = PQexec(conn, "SELECT version, sha256 FROM prime_pipeline.schema_migrations "
                           "WHERE to_regclass('prime_pipeline.schema_migrations') IS NOT NULL ORDER BY version");
    else if ((rc = prime_pg_exec(conn, bootstrap_sql, "creating prime_pipeline.schema_migrations", err)))
        return rc;
    else
        res = PQexec(conn, "SELECT version, sha256 FROM prime_pipeline.schema_migrations ORDER BY version");
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        rc = prime_pg_error(conn, res, "reading prime_pipeline.schema_migrations", NULL, err);
        PQclear(res);
        return rc;
    }
    ndone = PQntuples(res);
    done = calloc((size_t)ndone + 1, sizeof(*done));
    for (int i = 0; done && i < ndone; i++) {
        done[i].version = atoi(PQgetvalue(res, i, 0));
        done[i].sha256 = strdup(PQgetvalue(res, i, 1));
    }
    PQclear(res);
    if (!done)
        return prime_error_set(err, PRIME_ERR_NOMEM, NULL, "out of memory");

    while (prime_sql_migrations[known].name)
        known++;
    for (int i = 0; i < ndone && !rc; i++) {
        bool found = false;
        for (int k = 0; k < known; k++)
            found |= version_of(prime_sql_migrations[k].name) == done[i].version;
        if (!found)
            rc = prime_error_set(err, PRIME_ERR_DB, NULL,
                                 "the database has migration %04d, which this build does not know: "
                                 "use the prime-migrate of a newer build", done[i].version);
    }

    for (int k = 0; k < known && !rc; k++) {
        const prime_embedded_file_t *m = &prime_sql_migrations[k];
        const applied_t *a = NULL;
        char *sha;

        for (int i = 0; i < ndone; i++)
            if (done[i].version == version_of(m->name))
                a = &done[i];
        if (!(sha = server_sha256(conn, m, err))) {
            rc = err ? err->code : PRIME_ERR_DB;
            break;
        }
        if (a && strcmp(a->sha256, sha)) {
            rc = prime_error_set(err, PRIME_ERR_DB, m->name,
                                 "this migration was applied and has changed since: migrations are "
                                 "never edited, add a new one instead");
        } else if (a) {
            if (mode == PRIME_MIGRATE_STATUS && log)
                fprintf(log, "applied  %s\n", m->name);
        } else if (mode == PRIME_MIGRATE_STATUS) {
            if (log)
                fprintf(log, "pending  %s\n", m->name);
            (*count)++;
        } else if (!(rc = apply_one(conn, m, sha, err))) {
            if (log)
                fprintf(log, "applied %s\n", m->name);
            (*count)++;
        }
        free(sha);
    }
    for (int i = 0; i < ndone; i++)
        free(done[i].sha256);
    free(done);
    return rc;
}

/* --- the live schema against the migrations' -------------------------------
 *
 * Every fact of a table (a column with its type, NOT NULL, default and
 * position among the live columns, since a column dropped and added again
 * comes last and COPY and row literals go by position; an index; a
 * constraint; a trigger) as one line "table<TAB>what<TAB>definition",
 * read from the catalogs (which any user may read) in one query. The facts
 * that the migrations give are schemas/sql/schema.expected, compiled in;
 * prime-migrate --print-schema on a fresh database writes it, and
 * test_migrate fails when it is out of date. */
#define SCHEMA_FACTS_SQL                                                                                          \
    "WITH t AS (SELECT c.oid, n.nspname || '.' || c.relname AS name FROM pg_class c "                            \
    "  JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p') AND CASE WHEN $1::text[] IS NULL " \
    "  THEN n.nspname IN ('public', 'prime_pipeline') ELSE n.nspname || '.' || c.relname = ANY ($1::text[]) END) " \
    "SELECT t.name, 'column ' || a.attname, format_type(a.atttypid, a.atttypmod) "                             \
    "  || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END || coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), '') " \
    "  || ', position ' || row_number() OVER (PARTITION BY t.oid ORDER BY a.attnum) "                             \
    "  FROM t JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum > 0 AND NOT a.attisdropped "               \
    "  LEFT JOIN pg_attrdef d ON d.adrelid = t.oid AND d.adnum = a.attnum "                                     \
    "UNION ALL SELECT t.name, 'index ' || i.relname, pg_get_indexdef(x.indexrelid) FROM t "                     \
    "  JOIN pg_index x ON x.indrelid = t.oid JOIN pg_class i ON i.oid = x.indexrelid "                         \
    "UNION ALL SELECT t.name, 'constraint ' || co.conname, pg_get_constraintdef(co.oid) FROM t "                \
    "  JOIN pg_constraint co ON co.conrelid = t.oid "                                                           \
    "UNION ALL SELECT t.name, 'trigger ' || tg.tgname, pg_get_triggerdef(tg.oid) FROM t "                      \
    "  JOIN pg_trigger tg ON tg.tgrelid = t.oid AND NOT tg.tgisinternal"

typedef struct fact {
    const char *table, *what, *def;
} fact_t;

static int cmp_fact(const void *x, const void *y)
{
    const fact_t *a = x, *b = y;
    int c = strcmp(a->table, b->table);
    return c ? c : strcmp(a->what, b->what);
}

/* The expected facts: the compiled-in file split in place (a copy), sorted. */
static fact_t *expected_facts(char **text, size_t *n)
{
    const prime_embedded_file_t *f = &prime_sql_expected_schema[0];
    size_t cap = 1;
    fact_t *facts;
    char *line, *save = NULL;

    *n = 0;
    if (!(*text = strdup((const char *)f->data)))
        return NULL;
    for (const char *p = *text; *p; p++)
        cap += *p == '\n';
    if (!(facts = calloc(cap, sizeof(*facts))))
        return NULL;
    for (line = strtok_r(*text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *what = strchr(line, '\t'), *def = what ? strchr(what + 1, '\t') : NULL;
        if (!def)
            continue;
        *what++ = '\0';
        *def++ = '\0';
        facts[(*n)++] = (fact_t){line, what, def};
    }
    qsort(facts, *n, sizeof(*facts), cmp_fact);
    return facts;
}

/* The live facts of tables (a text[] literal; NULL: every table of public
 * and prime_pipeline), sorted; pointers into *res. */
static fact_t *live_facts(PGconn *conn, const char *tables, PGresult **res, size_t *n, prime_error_t *err)
{
    const char *params[1] = {tables};
    fact_t *facts;

    *n = 0;
    *res = PQexecParams(conn, SCHEMA_FACTS_SQL, 1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(*res) != PGRES_TUPLES_OK) {
        prime_pg_error(conn, *res, "reading the live schema", SCHEMA_FACTS_SQL, err);
        return NULL;
    }
    if (!(facts = calloc((size_t)PQntuples(*res) + 1, sizeof(*facts)))) {
        prime_error_set(err, PRIME_ERR_NOMEM, NULL, "out of memory");
        return NULL;
    }
    for (int r = 0; r < PQntuples(*res); r++)
        facts[(*n)++] = (fact_t){PQgetvalue(*res, r, 0), PQgetvalue(*res, r, 1), PQgetvalue(*res, r, 2)};
    qsort(facts, *n, sizeof(*facts), cmp_fact);
    return facts;
}

/* "public.users.email" for a column, "public.users index users_pkey" else. */
static void fact_name(const fact_t *f, char *out, size_t size)
{
    if (!strncmp(f->what, "column ", 7))
        snprintf(out, size, "%s.%s", f->table, f->what + 7);
    else
        snprintf(out, size, "%s %s", f->table, f->what);
}

static bool has_table(const fact_t *facts, size_t n, const char *table)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(facts[i].table, table))
            return true;
    return false;
}

/* Compares the live schema of the tables the migrations create with what
 * they create; one line per difference to log, *drift the count. */
static prime_errcode_t check_schema(PGconn *conn, FILE *log, int *drift, prime_error_t *err)
{
    char *text = NULL, name[300];
    size_t nexp = 0, nlive = 0, i = 0, j = 0;
    fact_t *exp = expected_facts(&text, &nexp), *live = NULL;
    PGresult *res = NULL;
    prime_buf_t tables;
    prime_errcode_t rc = PRIME_OK;

    *drift = 0;
    prime_buf_init(&tables, 0);
    prime_pg_array_begin(&tables);
    for (size_t k = 0; exp && k < nexp; k++)
        if (!k || strcmp(exp[k].table, exp[k - 1].table))
            prime_pg_array_add(&tables, exp[k].table);
    prime_pg_array_end(&tables);
    if (!exp || tables.failed) {
        rc = prime_error_set(err, PRIME_ERR_NOMEM, NULL, "out of memory");
        goto out;
    }
    if (!(live = live_facts(conn, tables.data, &res, &nlive, err))) {
        rc = err ? err->code : PRIME_ERR_DB;
        goto out;
    }
    while (i < nexp || j < nlive) {
        int c = i == nexp ? 1 : j == nlive ? -1 : cmp_fact(&exp[i], &live[j]);
        if (c < 0 && !has_table(live, nlive, exp[i].table)) {
            const char *table = exp[i].table;
            if (log)
                fprintf(log, "drift    %s: table missing\n", table);
            (*drift)++;
            while (i < nexp && !strcmp(exp[i].table, table))
                i++;
            continue;
        }
        fact_name(c <= 0 ? &exp[i] : &live[j], name, sizeof(name));
        if (c < 0) {
            if (log)
                fprintf(log, "drift    %s: expected %s, found nothing\n", name, exp[i].def);
        } else if (c > 0) {
            if (log)
                fprintf(log, "drift    %s: not made by the migrations, found %s\n", name, live[j].def);
        } else if (strcmp(exp[i].def, live[j].def)) {
            if (log)
                fprintf(log, "drift    %s: expected %s, found %s\n", name, exp[i].def, live[j].def);
        }
        *drift += c != 0 || strcmp(exp[i].def, live[j].def);
        i += c <= 0;
        j += c >= 0;
    }
out:
    PQclear(res);
    free(live);
    free(exp);
    free(text);
    prime_buf_free(&tables);
    return rc;
}

prime_errcode_t prime_migrate_print_schema(PGconn *conn, FILE *out, prime_error_t *err)
{
    PGresult *res;
    size_t n;
    fact_t *facts = live_facts(conn, NULL, &res, &n, err);

    for (size_t i = 0; facts && i < n; i++)
        fprintf(out, "%s\t%s\t%s\n", facts[i].table, facts[i].what, facts[i].def);
    free(facts);
    PQclear(res);
    return facts ? PRIME_OK : (err ? err->code : PRIME_ERR_DB);
}

/* The migration lock, waited for at most lock_timeout_ms (0: as long as it
 * takes). PostgreSQL's lock_timeout bounds an advisory lock's wait too. A
 * status takes it shared (status runs do not wait for each other; a
 * migration in progress is waited for, so no half-applied state is read). */
static prime_errcode_t take_lock(PGconn *conn, prime_migrate_mode_t mode, int lock_timeout_ms, prime_error_t *err)
{
    char sql[160];
    prime_error_t why;
    prime_errcode_t rc;

    snprintf(sql, sizeof(sql), "SET lock_timeout = %d", lock_timeout_ms > 0 ? lock_timeout_ms : 0);
    if ((rc = prime_pg_exec(conn, sql, "setting lock_timeout", err)))
        return rc;
    prime_error_clear(&why);
    rc = prime_pg_exec(conn,
                       mode == PRIME_MIGRATE_STATUS ? "SELECT pg_advisory_lock_shared(" MIGRATE_LOCK_KEY ")"
                                                    : "SELECT pg_advisory_lock(" MIGRATE_LOCK_KEY ")",
                       "taking the migration lock", &why);
    PQclear(PQexec(conn, "RESET lock_timeout"));
    if (rc && strstr(why.message, "SQLSTATE 55P03"))
        return prime_error_set(err, PRIME_ERR_DB, NULL,
                               "the migration lock is held by another session (a prime-migrate running?): gave up "
                               "after %d ms; wait for it, or raise --lock-timeout", lock_timeout_ms);
    if (rc && err && !err->code)
        *err = why;
    return rc;
}

prime_errcode_t prime_migrate_with_timeout(PGconn *conn, prime_migrate_mode_t mode, int lock_timeout_ms, FILE *log,
                                           int *applied, int *drift, prime_error_t *err)
{
    int count = 0, differences = 0;
    prime_errcode_t rc;

    if ((rc = take_lock(conn, mode, lock_timeout_ms, err)))
        return rc;
    rc = run(conn, mode, log, &count, err);
    /* The schema is checked once every migration is in: before, it differs
     * by what is pending. */
    if (!rc && !(mode == PRIME_MIGRATE_STATUS && count)) {
        rc = check_schema(conn, log, &differences, err);
        if (!rc && log && mode == PRIME_MIGRATE_STATUS)
            fprintf(log, "schema   %s\n", differences ? "drifted from the migrations (lines above)" : "matches the migrations");
    }
    PQclear(PQexec(conn, mode == PRIME_MIGRATE_STATUS ? "SELECT pg_advisory_unlock_shared(" MIGRATE_LOCK_KEY ")"
                                                       : "SELECT pg_advisory_unlock(" MIGRATE_LOCK_KEY ")"));
    if (applied)
        *applied = count;
    if (drift)
        *drift = differences;
    return rc;
}

prime_errcode_t prime_migrate(PGconn *conn, prime_migrate_mode_t mode, FILE *log, int *applied,
                              prime_error_t *err)
{
    return prime_migrate_with_timeout(conn, mode, mode == PRIME_MIGRATE_STATUS ? PRIME_MIGRATE_LOCK_TIMEOUT_MS : 0, log,
                                      applied, NULL, err);
}
