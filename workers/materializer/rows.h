/* The rows a batch touches, in memory, as PostgreSQL text values: read
 * once (store.h), folded over by the events in order, written once. No SQL
 * here. */
#ifndef PRIME_MAT_ROWS_H
#define PRIME_MAT_ROWS_H

#include <stdbool.h>
#include <stdint.h>

#include "prime/error.h"
#include "tables.h"

typedef struct row {
    char id[40];
    char **values;     /* tables[t].ncolumns values; NULL is SQL NULL */
    bool in_database;  /* present when the batch began */
    bool present;      /* present now, as folded */
    bool dirty;        /* to be written */
    bool loaded;       /* read from the database (or known absent) */
    /* What the event being folded did to the row (rows_untouch() resets). */
    bool touched;
    bool present_before; /* present before the event */
    uint64_t changed;    /* bit c: column c changed value */
} row_t;

/* Rows are allocated one by one, so a row_t * stays valid until
 * rows_clear(); an open-addressing index over ids finds them. */
typedef struct rowset {
    table_id_t table;
    row_t **rows;
    size_t n, cap;
    size_t *index;   /* slots: 1 + position in rows, 0 empty */
    size_t nslots;   /* a power of two, at least twice n */
    row_t **touched; /* rows the event being folded changed, in order */
    size_t ntouched, touched_cap;
    bool failed;     /* out of memory changing rows (a value not copied, a change
                      * not noted): the batch must fail (fold_failed) */
} rowset_t;

/* The row with this id, tracked from now on (not yet loaded); NULL when id
 * is NULL or too long for a row id, or when out of memory (fold_track()
 * tells which). */
row_t *rows_track(rowset_t *s, const char *id);
/* The tracked row with this id, or NULL. */
row_t *rows_find(rowset_t *s, const char *id);
/* Forgets every row (the set stays usable). */
void rows_clear(rowset_t *s);
/* Frees what the set holds. */
void rows_free(rowset_t *s);

/* Sets column c of r to value (copied; NULL for SQL NULL) and marks r dirty.
 * Out of memory marks s failed (the batch must fail). */
void row_set(rowset_t *s, row_t *r, size_t c, const char *value);
/* A row that did not exist: every column its fresh value, timestamps the
 * event's time (RFC 3339 text). */
void row_create(rowset_t *s, row_t *r, const char *event_time);
/* Marks the row removed by the event (store_delete() deletes it from the
 * database; fold_delete() removes the rows that cascade with it). */
void row_delete(rowset_t *s, row_t *r);
/* Removes a row as the database's ON DELETE CASCADE does: a consequence of
 * another row's delete, not a change of its own event (not touched). */
void row_drop(rowset_t *s, row_t *r);

/* Forgets what the last event touched. */
void rows_untouch(rowset_t *s);
/* The row as a PostgreSQL composite literal, (v1,"v2",...) in column order,
 * for "literal::table" (malloc'ed; NULL when out of memory). */
char *row_literal(const rowset_t *s, const row_t *r);

#endif
