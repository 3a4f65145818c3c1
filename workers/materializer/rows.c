#include "rows.h"
#include "prime/buf.h"
#include "prime/pg.h" /* prime_pg_quote: row literals */

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
static void note_change(rowset_t *s, row_t *r)
{
    if (r->touched)
        return;
    if (s->ntouched == s->touched_cap) {
        size_t cap = s->touched_cap ? s->touched_cap * 2 : 16;
        row_t **grown = realloc(s->touched, cap * sizeof(*grown));
        if (!grown) {
            s->failed = true;
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
        note_change(s, r);
        r->changed |= UINT64_C(1) << c;
    }
    free(old);
    r->values[c] = value ? strdup(value) : NULL;
    if (value && !r->values[c])
        s->failed = true; /* never NULL for a value: the batch fails */
    r->dirty = true;
}

void row_create(rowset_t *s, row_t *r, const char *event_time)
{
    const table_t *t = &tables[s->table];

    note_change(s, r);
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
    note_change(s, r);
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
