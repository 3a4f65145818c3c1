/* The seed tables as the materializer sees them: columns in seed order,
 * each with the value a new row gets when no event sets it. The seed's
 * DEFAULTs are written out here because rows are written whole (COPY), and
 * because NOW() and gen_random_uuid() would make rows depend on when they
 * were applied: timestamps come from events instead (DEFAULT_EVENT_TIME). */
#ifndef PRIME_MAT_TABLES_H
#define PRIME_MAT_TABLES_H

#include <stddef.h>

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

typedef enum table_id {
    T_PRIME_USERS,
    T_STUDIO_PROJECTS,
    T_SESSION_STATES,
    T_MIXX_RECALL,
    T_AUDIO_FILES,
    T_PLUGIN_PRESETS,
    T_COLLABORATION_SESSIONS,
    T_AUTH_CREDENTIALS,
    T_AUTH_SESSIONS,
    T_PROJECT_SNAPSHOTS,
    T_COUNT,
} table_id_t;

/* Written in this order (parents before children), deleted in reverse. */
extern const table_t tables[T_COUNT];

/* The seed's ON DELETE CASCADE foreign keys: deleting a parent row deletes
 * the child rows whose column names it. */
typedef struct cascade {
    table_id_t parent, child;
    const char *column;
} cascade_t;

extern const cascade_t cascades[];
extern const size_t ncascades;

/* Index of a column of table t; aborts on a name that is not there (a
 * programming error that the tests hit first). */
size_t column_index(table_id_t t, const char *name);

#endif
