#include "prime/migrate.h"
#include "prime/embedded.h"
#include "prime/pg.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

extern const prime_embedded_file_t prime_sql_migrations[];

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

    if ((rc = prime_pg_exec(conn, bootstrap_sql, "creating prime_pipeline.schema_migrations", err)))
        return rc;
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

prime_errcode_t prime_migrate(PGconn *conn, prime_migrate_mode_t mode, FILE *log, int *applied,
                              prime_error_t *err)
{
    int count = 0;
    prime_errcode_t rc;

    if ((rc = prime_pg_exec(conn, "SELECT pg_advisory_lock(" MIGRATE_LOCK_KEY ")", "taking the migration lock",
                            err)))
        return rc;
    rc = run(conn, mode, log, &count, err);
    PQclear(PQexec(conn, "SELECT pg_advisory_unlock(" MIGRATE_LOCK_KEY ")"));
    if (applied)
        *applied = count;
    return rc;
}
