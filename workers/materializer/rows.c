#include "rows.h"
#include "prime/buf.h"
#include "prime/pg.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* FNV-1a over the id text. */
static size_t id_hash(const char *id)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *id; id++)
        h = (h ^ (unsigned char)*id) * 1099511628211ULL;
    return (size_t)h;
}

static size_t *slot_of(const rowset_t *s, const char *id)
{
    size_t mask = s->nslots - 1, i = id_hash(id) & mask;
    while (s->index[i] && strcmp(s->rows[s->index[i] - 1]->id, id))
        i = (i + 1) & mask;
    return &s->index[i];
}

row_t *rows_find(rowset_t *s, const char *id)
{
    size_t *slot;
    if (!s->nslots)
        return NULL;
    slot = slot_of(s, id);
    return *slot ? s->rows[*slot - 1] : NULL;
}

/* Keeps the index at most half full. */
static bool grow_index(rowset_t *s)
{
    size_t nslots = s->nslots ? s->nslots * 2 : 256;
    size_t *index = calloc(nslots, sizeof(*index));
    if (!index)
        return false;
    free(s->index);
    s->index = index;
    s->nslots = nslots;
    for (size_t i = 0; i < s->n; i++)
        *slot_of(s, s->rows[i]->id) = i + 1;
    return true;
}

row_t *rows_track(rowset_t *s, const char *id)
{
    row_t *r = rows_find(s, id);

    if (r)
        return r;
    if (!id || strlen(id) >= sizeof(r->id))
        return NULL;
    if ((s->n + 1) * 2 > s->nslots && !grow_index(s))
        return NULL;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        row_t **grown = realloc(s->rows, cap * sizeof(*grown));
        if (!grown)
            return NULL;
        s->rows = grown;
        s->cap = cap;
    }
    if (!(r = calloc(1, sizeof(*r))) || !(r->values = calloc(tables[s->table].ncolumns, sizeof(char *)))) {
        free(r);
        return NULL;
    }
    snprintf(r->id, sizeof(r->id), "%s", id);
    s->rows[s->n++] = r;
    *slot_of(s, id) = s->n;
    return r;
}

/* Notes that the event being folded changes r. */
static void touch(rowset_t *s, row_t *r)
{
    if (r->touched)
        return;
    if (s->ntouched == s->touched_cap) {
        size_t cap = s->touched_cap ? s->touched_cap * 2 : 16;
        row_t **grown = realloc(s->touched, cap * sizeof(*grown));
        if (!grown) {
            s->touch_failed = true;
            return;
        }
        s->touched = grown;
        s->touched_cap = cap;
    }
    s->touched[s->ntouched++] = r;
    r->touched = true;
    r->present_before = r->present;
    r->changed = 0;
}

void row_set(rowset_t *s, row_t *r, size_t c, const char *value)
{
    char *old = r->values[c];
    if (!old != !value || (old && strcmp(old, value))) {
        touch(s, r);
        r->changed |= UINT64_C(1) << c;
    }
    free(old);
    r->values[c] = value ? strdup(value) : NULL;
    r->dirty = true;
}

void row_create(rowset_t *s, row_t *r, const char *event_time)
{
    const table_t *t = &tables[s->table];

    touch(s, r);
    for (size_t c = 0; c < t->ncolumns; c++) {
        const char *fresh = t->columns[c].fresh;
        row_set(s, r, c, fresh == DEFAULT_EVENT_TIME ? event_time : fresh);
    }
    row_set(s, r, 0, r->id);
    r->present = true;
}

void row_drop(rowset_t *s, row_t *r)
{
    (void)s;
    r->present = false;
    r->dirty = false;
}

void row_delete(rowset_t *s, row_t *r)
{
    touch(s, r);
    row_drop(s, r);
}

void rows_untouch(rowset_t *s)
{
    for (size_t i = 0; i < s->ntouched; i++) {
        s->touched[i]->touched = false;
        s->touched[i]->changed = 0;
    }
    s->ntouched = 0;
}

char *row_literal(const rowset_t *s, const row_t *r)
{
    prime_buf_t b;

    prime_buf_init(&b, 0);
    prime_buf_putc(&b, '(');
    for (size_t c = 0; c < tables[s->table].ncolumns; c++) {
        const char *v = r->values[c];
        if (c)
            prime_buf_putc(&b, ',');
        if (v) /* else nothing between the commas: NULL */
            prime_pg_quote(&b, v);
    }
    prime_buf_putc(&b, ')');
    if (b.failed) {
        prime_buf_free(&b);
        return NULL;
    }
    return prime_buf_steal(&b, NULL);
}

/* '{id1,id2}' of the rows that need loading; NULL when none do. */
static char *unloaded_ids(rowset_t *s)
{
    prime_buf_t b;
    int any = 0;

    prime_buf_init(&b, 0);
    prime_pg_array_begin(&b);
    for (size_t i = 0; i < s->n; i++)
        if (!s->rows[i]->loaded) {
            prime_pg_array_add(&b, s->rows[i]->id);
            any = 1;
        }
    prime_pg_array_end(&b);
    if (!any) {
        prime_buf_free(&b);
        return NULL;
    }
    return prime_buf_steal(&b, NULL);
}

/* Values come back in the types' text output, as COPY takes them in
 * (booleans as t and f: a ::text cast would give true and false). */
prime_errcode_t rows_load(rowset_t *s, PGconn *conn, prime_error_t *err)
{
    const table_t *t = &tables[s->table];
    char *ids = unloaded_ids(s);
    const char *params[1] = {ids};
    prime_buf_t sql;
    PGresult *res;
    prime_errcode_t rc = PRIME_OK;

    if (!ids)
        return PRIME_OK;
    prime_buf_init(&sql, 0);
    prime_buf_puts(&sql, "SELECT ");
    for (size_t c = 0; c < t->ncolumns; c++)
        prime_buf_printf(&sql, "%s%s", c ? ", " : "", t->columns[c].name);
    prime_buf_printf(&sql, " FROM public.%s WHERE id = ANY($1::uuid[])", t->name);
    res = PQexecParams(conn, sql.data, 1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        rc = prime_pg_error(conn, res, t->name, NULL, err);
    } else {
        for (int i = 0; i < PQntuples(res); i++) {
            row_t *r = rows_find(s, PQgetvalue(res, i, 0));
            if (!r)
                continue;
            for (size_t c = 0; c < t->ncolumns; c++) {
                free(r->values[c]);
                r->values[c] = PQgetisnull(res, i, (int)c) ? NULL : strdup(PQgetvalue(res, i, (int)c));
            }
            r->in_database = r->present = true;
        }
        for (size_t i = 0; i < s->n; i++)
            s->rows[i]->loaded = true;
    }
    PQclear(res);
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

prime_errcode_t rows_write(rowset_t *s, PGconn *conn, prime_error_t *err)
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
    if ((rc = prime_pg_exec(conn, sql.data, "creating the staging table", err)))
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
    if (data.failed) {
        rc = prime_error_set(err, PRIME_ERR_NOMEM, NULL, "out of memory building COPY data");
        goto out;
    }
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

    prime_buf_reset(&sql);
    prime_buf_printf(&sql, "INSERT INTO public.%s SELECT * FROM stage_%s ON CONFLICT (id) DO UPDATE SET ", t->name,
                     t->name);
    for (size_t c = 1; c < t->ncolumns; c++)
        prime_buf_printf(&sql, "%s%s = EXCLUDED.%s", c > 1 ? ", " : "", t->columns[c].name, t->columns[c].name);
    if ((rc = prime_pg_exec(conn, sql.data, t->name, err)))
        goto out;
    prime_buf_reset(&sql);
    prime_buf_printf(&sql, "TRUNCATE stage_%s", t->name);
    rc = prime_pg_exec(conn, sql.data, "emptying the staging table", err);
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
    rc = prime_pg_exec_params(conn, sql.data, 1, params, tables[t].name, err);
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

prime_errcode_t rows_delete(rowset_t *s, PGconn *conn, prime_error_t *err)
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

void rows_clear(rowset_t *s)
{
    for (size_t i = 0; i < s->n; i++) {
        for (size_t c = 0; c < tables[s->table].ncolumns; c++)
            free(s->rows[i]->values[c]);
        free(s->rows[i]->values);
        free(s->rows[i]);
    }
    if (s->n)
        memset(s->index, 0, s->nslots * sizeof(*s->index));
    s->n = 0;
    s->ntouched = 0;
}

void rows_free(rowset_t *s)
{
    rows_clear(s);
    free(s->rows);
    free(s->index);
    free(s->touched);
    memset(s, 0, sizeof(*s));
}
