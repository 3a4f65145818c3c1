/* The fold's machinery (fold.h): tracking rows, the outcomes a handler
 * returns, deletes that cascade, and reading event fields as column text.
 * The rules themselves are in handlers.c. */
#include "fold.h"
#include "prime/buf.h"
#include "prime/pg.h"
#include "prime/time.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void fold_init(fold_t *f, int snapshot_every)
{
    memset(f, 0, sizeof(*f));
    for (int t = 0; t < T_COUNT; t++)
        f->sets[t].table = (table_id_t)t;
    f->snapshot_every = snapshot_every;
}

void fold_clear(fold_t *f)
{
    for (int t = 0; t < T_COUNT; t++) {
        rows_clear(&f->sets[t]);
        f->sets[t].failed = false;
    }
    f->failed = false;
    f->nmix_projects = 0;
}

void fold_free(fold_t *f)
{
    for (int t = 0; t < T_COUNT; t++)
        rows_free(&f->sets[t]);
    fold_snapshot_clear(&f->snapshot);
    prime_buf_free(&f->mix_projects);
}

bool fold_failed(fold_t *f)
{
    bool failed = f->failed;
    for (int t = 0; t < T_COUNT; t++)
        failed |= f->sets[t].failed;
    if (failed && f->why.code != PRIME_ERR_NOMEM)
        fold_oom(f, "changing rows");
    return failed;
}

fold_result_t fold_oom(fold_t *f, const char *what)
{
    f->failed = true;
    prime_error_clear(&f->why);
    prime_error_set(&f->why, PRIME_ERR_NOMEM, NULL, "out of memory: %s", what);
    f->why.retriable = true;
    return FOLD_FAILED;
}

fold_result_t fold_refuse(fold_t *f, const char *field, const char *message)
{
    prime_error_clear(&f->why);
    prime_error_set(&f->why, PRIME_ERR_INVALID, field, "%s", message);
    return FOLD_REFUSED;
}

fold_result_t fold_missing(fold_t *f, table_id_t t, const char *id)
{
    snprintf(f->waiting_for, sizeof(f->waiting_for), "%s:%s", tables[t].name, id);
    prime_error_clear(&f->why);
    prime_error_set(&f->why, PRIME_ERR_INVALID, NULL, "unresolved: %s %s does not exist", tables[t].name, id);
    return FOLD_MISSING_PARENT;
}

fold_result_t fold_track(fold_t *f, table_id_t t, const char *id, const char *field, row_t **out)
{
    char message[160];

    if ((*out = rows_track(&f->sets[t], id)))
        return FOLD_OK;
    if (id && strlen(id) < sizeof((*out)->id))
        return fold_oom(f, "tracking a row");
    snprintf(message, sizeof(message), "%s: expected the id of a %s row, got %s", field, tables[t].name,
             id ? "a longer text" : "null");
    return fold_refuse(f, field, message);
}

/* The batch's rows that the seed's ON DELETE CASCADE removes with r in
 * the database, removed here too so that memory and database agree. They
 * are the delete's consequence, not changes of their own (not audited). */
static void drop_children(fold_t *f, table_id_t t, const row_t *r)
{
    for (size_t k = 0; k < ncascades; k++) {
        rowset_t *s;
        size_t c;
        if (cascades[k].parent != t)
            continue;
        s = &f->sets[cascades[k].child];
        c = cascades[k].column;
        for (size_t i = 0; i < s->n; i++)
            if (s->rows[i]->present && s->rows[i]->values[c] && !strcmp(s->rows[i]->values[c], r->id)) {
                row_drop(s, s->rows[i]);
                drop_children(f, cascades[k].child, s->rows[i]);
            }
    }
}

void fold_delete(fold_t *f, table_id_t t, row_t *r)
{
    row_delete(&f->sets[t], r);
    drop_children(f, t, r);
}

/* --- event fields as column text ---------------------------------------- */

/* --- reading event fields ---------------------------------------------- */

const char *fold_event_time(const prime_event_t *ev, char buf[PRIME_TIME_TEXT])
{
    int64_t micros = 0;
    prime_event_get_long(ev, "occurred_at", &micros, NULL, NULL);
    prime_time_format_rfc3339(micros, buf);
    return buf;
}

/* An array of strings as a PostgreSQL array literal (malloc'ed). */
static char *array_literal(const prime_event_t *ev, const char *field, size_t n)
{
    prime_buf_t b;
    const char *s;

    prime_buf_init(&b, 0);
    prime_pg_array_begin(&b);
    for (size_t k = 0; k < n; k++) {
        prime_event_get_array_string(ev, field, k, &s, NULL, NULL);
        prime_pg_array_add(&b, s);
    }
    prime_pg_array_end(&b);
    return prime_buf_steal(&b, NULL);
}

const char *fold_field_text(fold_t *f, const prime_event_t *ev, const char *field, char buf[FOLD_TEXT],
                            char **owned)
{
    const prime_event_type_t *type = prime_event_type(ev);
    int idx = prime_event_type_field_index(type, field);
    bool is_null = false, b;
    int32_t i;
    int64_t l;
    double d;
    size_t n;

    *owned = NULL;
    if (idx < 0)
        return NULL;
    switch (prime_event_type_field_kind(type, (size_t)idx)) {
    case PRIME_FIELD_STRING:
        return prime_event_string(ev, field);
    case PRIME_FIELD_INT:
        if (prime_event_get_int(ev, field, &i, &is_null, NULL) || is_null)
            return NULL;
        snprintf(buf, FOLD_TEXT, "%d", (int)i);
        return buf;
    case PRIME_FIELD_LONG:
        if (prime_event_get_long(ev, field, &l, &is_null, NULL) || is_null)
            return NULL;
        snprintf(buf, FOLD_TEXT, "%lld", (long long)l);
        return buf;
    case PRIME_FIELD_TIMESTAMP:
        if (prime_event_get_long(ev, field, &l, &is_null, NULL) || is_null)
            return NULL;
        prime_time_format_rfc3339(l, buf);
        return buf;
    case PRIME_FIELD_DOUBLE:
        if (prime_event_get_double(ev, field, &d, &is_null, NULL) || is_null)
            return NULL;
        snprintf(buf, FOLD_TEXT, "%.17g", d);
        return buf;
    case PRIME_FIELD_BOOLEAN:
        if (prime_event_get_bool(ev, field, &b, &is_null, NULL) || is_null)
            return NULL;
        return b ? "t" : "f";
    case PRIME_FIELD_STRING_ARRAY:
        if (prime_event_get_array_size(ev, field, &n, &is_null, NULL) || is_null)
            return NULL;
        if (!(*owned = array_literal(ev, field, n)))
            fold_oom(f, field);
        return *owned;
    }
    return NULL;
}

static bool is_cleared(const prime_event_t *ev, const char *column)
{
    size_t n = 0;
    const char *s;
    if (prime_event_type_field_index(prime_event_type(ev), "cleared_fields") < 0 ||
        prime_event_get_array_size(ev, "cleared_fields", &n, NULL, NULL))
        return false;
    for (size_t k = 0; k < n; k++)
        if (prime_event_get_array_string(ev, "cleared_fields", k, &s, NULL, NULL) == PRIME_OK && !strcmp(s, column))
            return true;
    return false;
}

void fold_set_if_given(fold_t *f, table_id_t t, row_t *r, const prime_event_t *ev, const char *field, size_t c)
{
    char buf[FOLD_TEXT], *owned;
    const char *v;

    if (is_cleared(ev, tables[t].columns[c].name)) {
        row_set(&f->sets[t], r, c, NULL);
        return;
    }
    if ((v = fold_field_text(f, ev, field, buf, &owned)))
        row_set(&f->sets[t], r, c, v);
    free(owned);
}

void fold_set_given(fold_t *f, table_id_t t, row_t *r, const prime_event_t *ev, const size_t *columns, size_t n)
{
    for (size_t i = 0; i < n; i++)
        fold_set_if_given(f, t, r, ev, tables[t].columns[columns[i]].name, columns[i]);
}

