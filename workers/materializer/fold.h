/* The fold: events applied in memory to the rows a batch touches
 * (rows.h), one handler per event type (handlers.c). */
#ifndef PRIME_MAT_FOLD_H
#define PRIME_MAT_FOLD_H

#include "prime/buf.h"
#include "prime/error.h"
#include "prime/event.h"
#include "rows.h"

typedef enum phase { COLLECT, APPLY } phase_t;

/* What a handler reports besides success. FOLD_NEED_ROWS: the event led to
 * a row COLLECT could not name (the project of a file, known once the file
 * is read); the fold reads the rows now tracked and calls it again. */
enum { FOLD_OK = 0, FOLD_MISSING_PARENT = 1, FOLD_REFUSED = 2, FOLD_NEED_ROWS = 3 };

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
    prime_error_t why;      /* for FOLD_MISSING_PARENT and FOLD_REFUSED */
    char waiting_for[96];   /* for FOLD_MISSING_PARENT: "table:id" */
    int snapshot_every;     /* an auto snapshot every N project versions (0: none) */
    /* Projects whose mix rows the batch must track (COLLECT of events that
     * may snapshot): a text[] literal of their ids, read by fold_track_mixes(). */
    prime_buf_t mix_projects;
    size_t nmix_projects;
    /* Besides changed rows, what the event just folded produced: */
    bool want_snapshot;
    snapshot_wanted_t snapshot;
    const row_t *rejected;  /* a change refused without a dead letter (a stale save), */
    table_id_t rejected_table;
    char rejected_why[200]; /* and why: an audit record's detail */
} fold_t;

/* COLLECT: track the rows the event needs (no other effect). APPLY: change
 * them; returns FOLD_OK or one of the outcomes above. */
typedef int (*handler_fn)(fold_t *f, const prime_event_t *ev, phase_t phase);

/* The handler of the event's type, or NULL when this worker does not
 * materialize it. */
handler_fn fold_handler_for(const prime_event_t *ev);

/* After COLLECT: tracks every mix row (audio_files, is_mix) of the projects
 * in mix_projects, so that a snapshot sees the mix as it is at its event. */
prime_errcode_t fold_track_mixes(fold_t *f, PGconn *conn, prime_error_t *err);

/* Frees the snapshot slot's copies. */
void fold_snapshot_clear(snapshot_wanted_t *w);

#endif
