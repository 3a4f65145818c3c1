/* The fold: a batch's events applied in order to the rows they touch, in
 * memory (rows.h). It runs no SQL: store.h reads the rows before and
 * writes them after; batch.c drives both.
 *
 * The contract of a handler (one per event type, handlers.c):
 *
 *   COLLECT  is called once for every event of the batch, before any row
 *            is read. It names the rows the event needs (fold_track(), or
 *            fold_need_mixes() for a snapshot) and changes nothing. It
 *            returns FOLD_OK, or FOLD_FAILED (out of memory) or
 *            FOLD_REFUSED (an id that cannot be a row's) for the event.
 *   APPLY    is called once the rows named are read (loaded: present or
 *            known absent), events in their order. It checks the event's
 *            rules against the rows as the events before it left them and
 *            changes them (row_set, row_create, fold_delete), or returns
 *            without a change:
 *              FOLD_OK              applied (or nothing to change)
 *              FOLD_MISSING_PARENT  a row it needs is not there yet:
 *                                   waiting_for names it ("table:id"); the
 *                                   event waits (parked), no change made
 *              FOLD_REFUSED         it can never apply: why says so; the
 *                                   event is dead-lettered, no change made
 *              FOLD_NEED_ROWS       it needs a row COLLECT could not name
 *                                   (a file's project, known once the file
 *                                   is read): now tracked; the rows are read
 *                                   and APPLY is called again. No change made
 *              FOLD_FAILED          out of memory: why says so; the batch
 *                                   fails (retriable), nothing is written
 *            A handler returns anything but FOLD_OK before its first change:
 *            so an event either applies whole or not at all.
 *
 * Out of memory inside row_set() and friends (a value that could not be
 * copied) is not returned by them: it marks the fold failed
 * (fold_failed()), and the driver fails the batch after the handler
 * returns; a wrong value is never written. */
#ifndef PRIME_MAT_FOLD_H
#define PRIME_MAT_FOLD_H

#include "prime/buf.h"
#include "prime/error.h"
#include "prime/event.h"
#include "prime/time.h"
#include "rows.h"

typedef enum phase { COLLECT, APPLY } phase_t;

typedef enum fold_result {
    FOLD_OK = 0,
    FOLD_MISSING_PARENT,
    FOLD_REFUSED,
    FOLD_NEED_ROWS,
    FOLD_FAILED,
} fold_result_t;

/* A snapshot.created the event just folded asks for (derived.c emits it):
 * the project as it is now. */
typedef struct snapshot_wanted {
    char project_id[40];
    char owner[40];           /* the project's owner: the key and user_id */
    const char *type;         /* "auto", "manual" or "milestone" */
    const char *name;         /* the request's, or NULL (point into the event) */
    const char *description;
    int version;
    char *project_data;       /* a copy: later events change the row */
    char *audio_analysis;     /* of the project's mix as it is now, or NULL (copies) */
    char *musical_context;
} snapshot_wanted_t;

typedef struct fold {
    rowset_t sets[T_COUNT];
    prime_error_t why;      /* for FOLD_MISSING_PARENT, FOLD_REFUSED and FOLD_FAILED */
    char waiting_for[96];   /* for FOLD_MISSING_PARENT: "table:id" */
    int snapshot_every;     /* an auto snapshot every N project versions (0: none) */
    bool failed;            /* out of memory outside the row sets (see fold_failed) */
    /* Projects whose mix rows the batch must track (COLLECT of events that
     * may snapshot): a text[] literal of their ids, read by
     * store_track_mixes(). */
    prime_buf_t mix_projects;
    size_t nmix_projects;
    /* Besides changed rows, what the event just folded produced: */
    bool want_snapshot;
    snapshot_wanted_t snapshot;
    const row_t *rejected;  /* a change refused without a dead letter (a stale save), */
    table_id_t rejected_table;
    char rejected_why[200]; /* and why: an audit record's detail */
} fold_t;

/* One event's rules, called in both phases (the contract above). */
typedef fold_result_t (*handler_fn)(fold_t *f, const prime_event_t *ev, phase_t phase);

/* Prepares f (every set names its table); snapshot_every as given. */
void fold_init(fold_t *f, int snapshot_every);
/* Frees what f holds. */
void fold_free(fold_t *f);
/* Forgets every row (between passes). */
void fold_clear(fold_t *f);

/* The handler of the event's type, or NULL when this worker does not
 * materialize it (handlers.c). */
handler_fn fold_handler_for(const prime_event_t *ev);

/* Whether out of memory struck while the last handler changed rows (a
 * value not copied, a changed row not noted): the batch must fail. Sets
 * f->why when it did. */
bool fold_failed(fold_t *f);

/* Frees the snapshot slot's copies. */
void fold_snapshot_clear(snapshot_wanted_t *w);

/* --- for handlers (fold.c, snapshot.c) ---------------------------------- */

/* *out: the row of table t with this id, tracked from now on. FOLD_OK;
 * FOLD_REFUSED when id is NULL or cannot be a row id (field names the
 * event's field); FOLD_FAILED when out of memory. */
fold_result_t fold_track(fold_t *f, table_id_t t, const char *id, const char *field, row_t **out);
/* FOLD_REFUSED with why = message about field. */
fold_result_t fold_refuse(fold_t *f, const char *field, const char *message);
/* FOLD_MISSING_PARENT: the row id of table t is not there (yet). */
fold_result_t fold_missing(fold_t *f, table_id_t t, const char *id);
/* FOLD_FAILED: out of memory doing what. */
fold_result_t fold_oom(fold_t *f, const char *what);

/* Deletes r and, as the seed's ON DELETE CASCADE does in the database, the
 * batch's rows that name it (not audited: the delete's consequence). */
void fold_delete(fold_t *f, table_id_t t, row_t *r);

/* COLLECT of an event that may snapshot project_id: its mix rows are
 * needed (store_track_mixes() tracks them before the rows are read). */
void fold_need_mixes(fold_t *f, const char *project_id);
/* Asks for a snapshot.created of project row r as it is now, with its
 * mix's analysis as it is now; request is the project.snapshot_requested,
 * or NULL for an auto snapshot. */
void fold_want_snapshot(fold_t *f, const row_t *r, const char *type, const prime_event_t *request);

/* Text buffers for fold_field_text() and fold_event_time(). */
#define FOLD_TEXT (PRIME_TIME_TEXT + 8)

/* The event's time (occurred_at) as timestamptz text in buf: every
 * timestamp column an event writes is this, never the time of apply. */
const char *fold_event_time(const prime_event_t *ev, char buf[PRIME_TIME_TEXT]);
/* A field's value as PostgreSQL text input, or NULL when the field is null
 * or not there (or out of memory: then the fold is marked failed). Arrays
 * are malloc'ed into *owned (free it); other values live in the event or
 * in buf. */
const char *fold_field_text(fold_t *f, const prime_event_t *ev, const char *field, char buf[FOLD_TEXT],
                            char **owned);
/* Column c of table t <- the event's field when it is set; NULL when the
 * column is in the event's cleared_fields. */
void fold_set_if_given(fold_t *f, table_id_t t, row_t *r, const prime_event_t *ev, const char *field, size_t c);
/* fold_set_if_given for n columns whose event fields have their names. */
void fold_set_given(fold_t *f, table_id_t t, row_t *r, const prime_event_t *ev, const size_t *columns, size_t n);
#define FOLD_SET_GIVEN(f, t, r, ev, columns) \
    fold_set_given(f, t, r, ev, columns, sizeof(columns) / sizeof(columns[0]))

#endif
