/* The database side of a batch's rows (rows.h): read them in one query
 * per table, write them with one COPY and one upsert per table, delete
 * what the fold removed. The fold itself runs no SQL. */
#include "store.h"
#include "prime/buf.h"
#include "prime/pg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Runs the statement built in sql; out of memory building it is the error. */
static prime_errcode_t exec_built(PGconn *conn, const prime_buf_t *sql, const char *what, prime_error_t *err)
{
    if (sql->failed)
        return prime_error_set(err, PRIME_ERR_NOMEM, NULL, "out of memory building SQL: %s", what);
    return prime_pg_exec(conn, sql->data, what, err);
}

/* *ids: '{id1,id2}' of the rows that need loading, or NULL when none do. */
static prime_errcode_t unloaded_ids(rowset_t *s, char **ids, prime_error_t *err)
{
    prime_buf_t b;
    int any = 0;

    *ids = NULL;
    prime_buf_init(&b, 0);
    prime_pg_array_begin(&b);
    for (size_t i = 0; i < s->n; i++)
        if (!s->rows[i]->loaded) {
            prime_pg_array_add(&b, s->rows[i]->id);
            any = 1;
        }
    prime_pg_array_end(&b);
    if (any && !b.failed)
        *ids = prime_buf_steal(&b, NULL);
    prime_buf_free(&b);
    if (any && !*ids)
        return prime_error_set(err, PRIME_ERR_NOMEM, NULL, "out of memory naming the rows of %s to read",
                               tables[s->table].name);
    return PRIME_OK;
}

/* Values come back in the types' text output, as COPY takes them in
 * (booleans as t and f: a ::text cast would give true and false).
 *
 * Rows are read FOR UPDATE, in id order (and tables in their order): with
 * several instances in a group, two batches that touch one row (a public
 * preset used from two partitions, a project saved on one and its mix
 * analysed on another) take turns, the second reading what the first
 * committed, so that the write-back of whole rows loses nothing. The order
 * makes a deadlock rare; one (SQLSTATE 40P01) is retriable: the batch is
 * consumed again. */
prime_errcode_t store_load(rowset_t *s, PGconn *conn, prime_error_t *err)
{
    const table_t *t = &tables[s->table];
    char *ids;
    const char *params[1];
    prime_buf_t sql;
    PGresult *res = NULL;
    prime_errcode_t rc = unloaded_ids(s, &ids, err);

    if (rc || !ids)
        return rc;
    params[0] = ids;
    prime_buf_init(&sql, 0);
    prime_buf_puts(&sql, "SELECT ");
    for (size_t c = 0; c < t->ncolumns; c++)
        prime_buf_printf(&sql, "%s%s", c ? ", " : "", t->columns[c].name);
    prime_buf_printf(&sql, " FROM public.%s WHERE id = ANY($1::uuid[]) ORDER BY id FOR UPDATE", t->name);
    if (sql.failed) {
        rc = prime_error_set(err, PRIME_ERR_NOMEM, NULL, "out of memory reading %s", t->name);
        goto out;
    }
    if (!(res = prime_pg_query(conn, sql.data, 1, params, t->name, err))) {
        rc = err->code;
        goto out;
    }
    for (int i = 0; i < PQntuples(res) && !rc; i++) {
        row_t *r = rows_find(s, PQgetvalue(res, i, 0));
        if (!r)
            continue;
        for (size_t c = 0; c < t->ncolumns; c++) {
            free(r->values[c]);
            r->values[c] = PQgetisnull(res, i, (int)c) ? NULL : strdup(PQgetvalue(res, i, (int)c));
            if (!PQgetisnull(res, i, (int)c) && !r->values[c])
                rc = prime_error_set(err, PRIME_ERR_NOMEM, NULL, "out of memory reading %s", t->name);
        }
        r->in_database = r->present = true;
    }
    for (size_t i = 0; i < s->n && !rc; i++)
        s->rows[i]->loaded = true;
    PQclear(res);
out:
    prime_buf_free(&sql);
    free(ids);
    return rc;
}

/* COPY text format: backslash escapes, \N for NULL. */
static void copy_value(prime_buf_t *b, const char *v)
{
    if (!v) {
        prime_buf_puts(b, "\\N");
        return;
    }
    for (; *v; v++) {
        switch (*v) {
        case '\\': prime_buf_puts(b, "\\\\"); break;
        case '\n': prime_buf_puts(b, "\\n"); break;
        case '\r': prime_buf_puts(b, "\\r"); break;
        case '\t': prime_buf_puts(b, "\\t"); break;
        default: prime_buf_putc(b, *v);
        }
    }
}

/* Runs sql with $1 the ids of the dirty rows that were not in the database
 * when read (created by this batch); *count gets its row count (unless
 * NULL). */
static prime_errcode_t with_new_ids(PGconn *conn, rowset_t *s, const prime_buf_t *sql, size_t *count,
                                    prime_error_t *err)
{
    prime_buf_t ids;
    const char *params[1];
    PGresult *res;
    prime_errcode_t rc = PRIME_OK;

    prime_buf_init(&ids, 0);
    prime_pg_array_begin(&ids);
    for (size_t i = 0; i < s->n; i++)
        if (s->rows[i]->present && s->rows[i]->dirty && !s->rows[i]->in_database)
            prime_pg_array_add(&ids, s->rows[i]->id);
    prime_pg_array_end(&ids);
    params[0] = ids.data;
    if (ids.failed || sql->failed)
        rc = prime_error_set(err, PRIME_ERR_NOMEM, NULL, "out of memory writing %s", tables[s->table].name);
    else if (!(res = prime_pg_query(conn, sql->data, 1, params, tables[s->table].name, err)))
        rc = err->code;
    else {
        if (count)
            *count = strtoull(PQcmdTuples(res), NULL, 10);
        PQclear(res);
    }
    prime_buf_free(&ids);
    return rc;
}

/* The rows this batch creates, inserted; one that exists already (another
 * instance created it after this batch read) makes the batch retriable. */
static prime_errcode_t insert_new(PGconn *conn, rowset_t *s, const prime_buf_t *sql, prime_error_t *err)
{
    size_t created = 0, inserted = 0;
    prime_errcode_t rc;

    for (size_t i = 0; i < s->n; i++)
        created += s->rows[i]->present && s->rows[i]->dirty && !s->rows[i]->in_database;
    if (!created)
        return PRIME_OK;
    if ((rc = with_new_ids(conn, s, sql, &inserted, err)))
        return rc;
    if (inserted == created)
        return PRIME_OK;
    prime_error_set(err, PRIME_ERR_DB, NULL,
                    "%s: %zu of the %zu rows this batch creates were created meanwhile by another instance; "
                    "the batch again", tables[s->table].name, created - inserted, created);
    err->retriable = true;
    return PRIME_ERR_DB;
}

prime_errcode_t store_write(rowset_t *s, PGconn *conn, prime_error_t *err)
{
    const table_t *t = &tables[s->table];
    prime_buf_t sql, data;
    PGresult *res;
    size_t dirty = 0;
    prime_errcode_t rc = PRIME_OK;

    for (size_t i = 0; i < s->n; i++)
        dirty += s->rows[i]->present && s->rows[i]->dirty;
    if (!dirty)
        return PRIME_OK;
    prime_buf_init(&sql, 0);
    prime_buf_init(&data, 0);
    /* A staging table per session, emptied at each commit. */
    prime_buf_printf(&sql,
                     "CREATE TEMP TABLE IF NOT EXISTS stage_%s (LIKE public.%s INCLUDING DEFAULTS) "
                     "ON COMMIT DELETE ROWS",
                     t->name, t->name);
    if ((rc = exec_built(conn, &sql, "creating the staging table", err)))
        goto out;
    prime_buf_reset(&sql);
    prime_buf_printf(&sql, "COPY stage_%s (", t->name);
    for (size_t c = 0; c < t->ncolumns; c++)
        prime_buf_printf(&sql, "%s%s", c ? ", " : "", t->columns[c].name);
    prime_buf_puts(&sql, ") FROM STDIN");
    for (size_t i = 0; i < s->n; i++) {
        const row_t *r = s->rows[i];
        if (!r->present || !r->dirty)
            continue;
        for (size_t c = 0; c < t->ncolumns; c++) {
            if (c)
                prime_buf_putc(&data, '\t');
            copy_value(&data, r->values[c]);
        }
        prime_buf_putc(&data, '\n');
    }
    if (data.failed || sql.failed) {
        rc = prime_error_set(err, PRIME_ERR_NOMEM, NULL, "out of memory building COPY data");
        goto out;
    }
    /* COPY FROM STDIN is the one statement not run by prime_pg_exec() or
     * prime_pg_query(): the protocol sends the data between its start and
     * its result. */
    res = PQexec(conn, sql.data);
    if (PQresultStatus(res) != PGRES_COPY_IN) {
        rc = prime_pg_error(conn, res, "COPY into the staging table", NULL, err);
        PQclear(res);
        goto out;
    }
    PQclear(res);
    if (PQputCopyData(conn, data.data, (int)data.len) != 1 || PQputCopyEnd(conn, NULL) != 1) {
        rc = prime_pg_error(conn, NULL, "COPY data", NULL, err);
        goto out;
    }
    res = PQgetResult(conn);
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        rc = prime_pg_error(conn, res, t->name, NULL, err);
    PQclear(res);
    while ((res = PQgetResult(conn)))
        PQclear(res);
    if (rc)
        goto out;

    /* Rows read under their lock are written back; rows that were not
     * there are inserted, and must still not be: another instance may have
     * created one since (two creates of one id on two partitions). Then the
     * batch is consumed again and sees it, as one instance would have. */
    prime_buf_reset(&sql);
    prime_buf_printf(&sql, "INSERT INTO public.%s SELECT * FROM stage_%s WHERE id = ANY($1::uuid[]) "
                     "ON CONFLICT (id) DO NOTHING", t->name, t->name);
    if ((rc = insert_new(conn, s, &sql, err)))
        goto out;
    prime_buf_reset(&sql);
    prime_buf_printf(&sql, "INSERT INTO public.%s SELECT * FROM stage_%s WHERE id <> ALL($1::uuid[]) "
                     "ON CONFLICT (id) DO UPDATE SET ", t->name, t->name);
    for (size_t c = 1; c < t->ncolumns; c++)
        prime_buf_printf(&sql, "%s%s = EXCLUDED.%s", c > 1 ? ", " : "", t->columns[c].name, t->columns[c].name);
    if ((rc = with_new_ids(conn, s, &sql, NULL, err)))
        goto out;
    prime_buf_reset(&sql);
    prime_buf_printf(&sql, "TRUNCATE stage_%s", t->name);
    rc = exec_built(conn, &sql, "emptying the staging table", err);
out:
    prime_buf_free(&sql);
    prime_buf_free(&data);
    return rc;
}

static prime_errcode_t delete_where(PGconn *conn, table_id_t t, size_t column, const char *ids, prime_error_t *err)
{
    prime_buf_t sql;
    const char *params[1] = {ids};
    prime_errcode_t rc;

    prime_buf_init(&sql, 0);
    prime_buf_printf(&sql, "DELETE FROM public.%s WHERE %s = ANY($1::uuid[])", tables[t].name,
                     tables[t].columns[column].name);
    rc = sql.failed ? prime_error_set(err, PRIME_ERR_NOMEM, NULL, "out of memory building SQL: %s", tables[t].name)
                    : prime_pg_exec_params(conn, sql.data, 1, params, tables[t].name, err);
    prime_buf_free(&sql);
    return rc;
}

static bool has_children(table_id_t t)
{
    for (size_t k = 0; k < ncascades; k++)
        if (cascades[k].parent == t)
            return true;
    return false;
}

prime_errcode_t store_delete(rowset_t *s, PGconn *conn, prime_error_t *err)
{
    prime_buf_t ids;
    int any = 0;
    prime_errcode_t rc = PRIME_OK;

    prime_buf_init(&ids, 0);
    prime_pg_array_begin(&ids);
    for (size_t i = 0; i < s->n; i++)
        if (s->rows[i]->in_database && !s->rows[i]->present) {
            prime_pg_array_add(&ids, s->rows[i]->id);
            any = 1;
        }
    prime_pg_array_end(&ids);
    if (ids.failed)
        rc = prime_error_set(err, PRIME_ERR_NOMEM, NULL, "out of memory naming the rows of %s to delete",
                             tables[s->table].name);
    /* Children that are parents themselves go first, by their own
     * statement: PostgreSQL checks a NO ACTION key (collaboration_sessions.
     * started_by) before the ON DELETE CASCADE from prime_users through
     * studio_projects has removed the rows that name the user, and would
     * refuse a user who only started sessions on their own projects. */
    for (size_t k = 0; any && !rc && k < ncascades; k++)
        if (cascades[k].parent == s->table && has_children(cascades[k].child))
            rc = delete_where(conn, cascades[k].child, cascades[k].column, ids.data, err);
    if (any && !rc)
        rc = delete_where(conn, s->table, 0, ids.data, err); /* id */
    prime_buf_free(&ids);
    return rc;
}

prime_errcode_t store_track_mixes(fold_t *f, PGconn *conn, prime_error_t *err)
{
    const char *params[1];
    PGresult *res;
    prime_errcode_t rc = PRIME_OK;

    if (!f->nmix_projects)
        return PRIME_OK;
    f->nmix_projects = 0;
    prime_pg_array_end(&f->mix_projects);
    if (f->mix_projects.failed)
        return prime_error_set(err, PRIME_ERR_NOMEM, NULL, "out of memory naming the projects whose mixes to read");
    params[0] = f->mix_projects.data;
    if (!(res = prime_pg_query(conn, "SELECT id::text FROM public.audio_files WHERE project_id = ANY($1::uuid[]) AND is_mix",
                               1, params, "finding the projects' mixes", err)))
        return err->code;
    for (int r = 0; !rc && r < PQntuples(res); r++)
        if (!rows_track(&f->sets[T_AUDIO_FILES], PQgetvalue(res, r, 0)))
            rc = prime_error_set(err, PRIME_ERR_NOMEM, NULL, "out of memory tracking the projects' mixes");
    PQclear(res);
    return rc;
}
