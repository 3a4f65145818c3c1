/* A batch, as the materializer applies it (docs/materializer.md, "How an
 * event becomes a row"): records become items (batch.c), events published
 * twice are skipped (dedup.c), items are folded in stream order
 * (stream.c) over the rows they touch (fold.h, store.h), and what waits
 * for a missing parent is parked and unparked (parking.c). Everything runs
 * in the runtime's transaction for the batch, on its one thread. */
#ifndef PRIME_MAT_BATCH_H
#define PRIME_MAT_BATCH_H

#include "derived.h"
#include "fold.h"
#include "prime/event.h"
#include "prime/worker.h"

typedef struct materializer {
    prime_registry_t *reg;
    fold_t fold;
    derived_t *derived;   /* audit records and snapshots of the changes */
    int park_max_seconds; /* --park-max-seconds */
    int park_max_per_stream; /* --park-max-per-stream */
    char *parent_exists;  /* SQL: parked events whose parent row exists now (parking_condition_sql) */
} materializer_t;

typedef enum item_state { PENDING, APPLIED, REFUSED, WAITING } item_state_t;

/* "table:id" of the row an item waits for. */
#define WAITING_FOR_MAX 96

typedef struct item {
    prime_record_t record;
    prime_event_t *event;
    handler_fn fn;
    item_state_t state;
    char waiting_for[WAITING_FOR_MAX];
    bool from_parking;
    bool refused_for_good;              /* REFUSED by the rules (not by the database): judged */
    long prev;                          /* the previous item of the same stream (topic, key), or -1 */
    char blocked_by[WAITING_FOR_MAX];   /* set when the stream has events in parking */
} item_t;

/* The worker's apply() (prime/worker.h); ctx is the materializer_t. */
prime_errcode_t batch_apply(prime_worker_t *w, PGconn *conn, const prime_record_t *records, size_t n, void *ctx,
                            prime_error_t *err);

/* *out from r: decoded, validated and with its handler (*usable), or
 * dead-lettered (not usable). Errors are the dead letter's. */
prime_errcode_t batch_make_item(prime_worker_t *w, const prime_registry_t *reg, const prime_record_t *r, item_t *out,
                                bool *usable, prime_error_t *err);

/* Folds items over the rows and writes them, in a savepoint; when the
 * database refuses the set-based write (a constraint the fold cannot see),
 * again event by event, dead-lettering only the events it refuses. The
 * refused are dead-lettered once the pass that stands has decided (once
 * per commit), and the judged are taken in (dedup_record). Items left
 * WAITING are for the caller to park. *applied counts the applied. */
prime_errcode_t batch_materialize(prime_worker_t *w, PGconn *conn, materializer_t *m, item_t *items, size_t n,
                                  size_t *applied, prime_error_t *err);

/* The partitions assigned to this instance now, as a text[] literal of
 * "topic:partition" (malloc'ed; NULL when out of memory): parked events of
 * other partitions are their owners' to take out (parking.c). */
char *batch_owned_partitions(const prime_worker_t *w);

/* --- stream order (stream.c) ---------------------------------------------- */

/* Sets prev of every item: the item before it in its stream (one key in one
 * topic, what Kafka orders). PRIME_ERR_NOMEM (retriable) when out of
 * memory: the order is never dropped. */
prime_errcode_t stream_link(item_t *items, size_t n, prime_error_t *err);
/* Sets blocked_by of the first item of each stream that has events in
 * parking already: it waits behind the last parked one. */
prime_errcode_t stream_find_parked(prime_worker_t *w, PGconn *conn, item_t *items, size_t n, prime_error_t *err);
/* Whether item i may be folded now: nothing of its stream waits before it. */
bool stream_clear(const item_t *items, size_t i);
/* Copies a "table:id" key between items (never the same item). */
void stream_copy_key(char dst[WAITING_FOR_MAX], const char *src);
/* data as lower-case hex text (malloc'ed; NULL when out of memory). */
char *stream_hex(const void *data, size_t len);

/* --- events published twice (dedup.c) ------------------------------------ */

/* Drops the items whose event id was taken in before (by an earlier batch,
 * prime_pipeline.applied_events) and the later copies of an id within these
 * items: a second publication of an event is skipped, logged, and changes
 * nothing. */
prime_errcode_t dedup_skip(prime_worker_t *w, PGconn *conn, item_t *items, size_t *n, prime_error_t *err);
/* Takes in the ids of the items judged (APPLIED, or REFUSED by the rules),
 * in the batch's transaction. Not those that wait, nor those the database
 * refused: their dead letters, published again once the cause is fixed,
 * apply. A retriable error when another transaction took one in since
 * dedup_skip(). */
prime_errcode_t dedup_record(prime_worker_t *w, PGconn *conn, const item_t *items, size_t n, prime_error_t *err);

/* --- parking (parking.c) -------------------------------------------------- */

/* Parks the WAITING items (prime_pipeline.parked_events, with their
 * headers), one statement; those from Kafka beyond m->park_max_per_stream
 * parked in their stream are dead-lettered instead. */
prime_errcode_t parking_park(prime_worker_t *w, PGconn *conn, const materializer_t *m, item_t *items, size_t n,
                             prime_error_t *err);
/* Takes the parked events whose parent row exists now, in chunks, folds
 * them, parks again what still waits; repeats while it applies something. */
prime_errcode_t parking_unpark(prime_worker_t *w, PGconn *conn, materializer_t *m, size_t *applied,
                               prime_error_t *err);
/* Dead-letters the parked events older than m->park_max_seconds, with the
 * row they waited for and the headers they came with; a chunk a call. */
prime_errcode_t parking_expire(prime_worker_t *w, PGconn *conn, materializer_t *m, prime_error_t *err);
/* The SQL condition on parked_events that the parent row exists now
 * (malloc'ed; NULL when out of memory). */
char *parking_condition_sql(void);

#endif
