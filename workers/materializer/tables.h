/* The seed tables as the materializer sees them (defined in tables.def):
 * an id per table, a constant per column, each column's name and the
 * value a new row gets when no event sets it. */
#ifndef PRIME_MAT_TABLES_H
#define PRIME_MAT_TABLES_H

#include <stddef.h>

#include "tables.def"

#define DEFAULT_NULL NULL
/* A marker, compared by address: the creating event's occurred_at. */
extern const char default_event_time[];
#define DEFAULT_EVENT_TIME default_event_time

typedef struct column {
    const char *name;
    const char *fresh; /* value of a new row: text, DEFAULT_NULL or DEFAULT_EVENT_TIME */
} column_t;

typedef struct table {
    const char *name;
    const column_t *columns;
    size_t ncolumns;
} table_t;

#define PRIME_TABLE_ID(id, name) id,
typedef enum table_id { PRIME_TABLES(PRIME_TABLE_ID) T_COUNT } table_id_t;
#undef PRIME_TABLE_ID

/* C_<table>_<column>: the column's position in its table (and in a row's
 * values). A name that is not a column of the table does not compile. */
#define PRIME_COLUMN_ID(t, column, fresh) C_##t##_##column,
#define PRIME_TABLE_COLUMN_IDS(id, name) enum { COLUMNS_##name(PRIME_COLUMN_ID, name) C_##name##_COUNT_ };
PRIME_TABLES(PRIME_TABLE_COLUMN_IDS)
#undef PRIME_TABLE_COLUMN_IDS
#undef PRIME_COLUMN_ID

/* Written in this order (parents before children), deleted in reverse. */
extern const table_t tables[T_COUNT];

/* The seed's ON DELETE CASCADE foreign keys: deleting a parent row deletes
 * the child rows whose column (of the child) names it. */
typedef struct cascade {
    table_id_t parent, child;
    size_t column;
} cascade_t;

extern const cascade_t cascades[];
extern const size_t ncascades;

#endif
