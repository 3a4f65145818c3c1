/* A batch of the materializer (batch.h): from records to rows.
 *
 * Per batch: decode and validate every record (dead-lettering what fails),
 * collect the rows the events touch, read them in one query per table, fold
 * the events over them in order, write each table once (COPY + upsert,
 * then deletes). When the database refuses the set-based write (a unique
 * constraint the fold cannot see, say), the batch is redone event by event
 * under savepoints and only the offender is dead-lettered. */
#include "batch.h"
#include "prime/buf.h"
#include "prime/log.h"
#include "prime/pg.h"
#include "store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Derived records held before they go to the outbox: a batch of 10,000
 * events held them all (with a copy of each changed row), and the peak
 * memory of a drain rose by about 50 MB. */
#define DERIVED_CHUNK 1000

/* The events a pass refused, with why: dead-lettered only once the pass
 * that stands has decided. The set-based pass may be undone and redone
 * event by event, where the same event may be refused again (or apply, the
 * offender before it gone): a dead letter sent at once would be sent twice,
 * or for an event that then applied. */
typedef struct refusal {
    item_t *item;
    prime_error_t why;
} refusal_t;

typedef struct refusals {
    refusal_t *v;
    size_t n, cap;
} refusals_t;

static prime_errcode_t refuse(refusals_t *l, item_t *it, bool for_good, const prime_error_t *why,
                              prime_error_t *err)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 16;
        refusal_t *grown = realloc(l->v, cap * sizeof(*grown));
        if (!grown)
            return prime_error_set(err, PRIME_ERR_NOMEM, NULL, "out of memory noting a refused event");
        l->v = grown;
        l->cap = cap;
    }
    it->state = REFUSED;
    it->refused_for_good = for_good;
    l->v[l->n++] = (refusal_t){.item = it, .why = *why};
    return PRIME_OK;
}

/* Folds items over the rows and writes them; refused events are noted in
 * refused (for the caller to dead-letter), events whose parent is missing (or whose stream has an
 * earlier event waiting) are left WAITING. Database errors are returned. */
static prime_errcode_t materialize(prime_worker_t *w, PGconn *conn, materializer_t *m, item_t *items, size_t n,
                                   size_t *applied, refusals_t *refused, prime_error_t *err)
{
    fold_t *f = &m->fold;
    prime_errcode_t rc = PRIME_OK;
    int progress = 1;

    derived_clear(m->derived); /* what a failed pass left */
    fold_clear(f);
    rc = stream_link(items, n, err);
    if (!rc)
        rc = stream_find_parked(w, conn, items, n, err);
    /* COLLECT: every event names its rows; then they are read, one query a
     * table. An event refused here (an id that cannot be a row's) is
     * refused; out of memory fails the batch. */
    for (size_t i = 0; i < n && !rc; i++) {
        fold_result_t r;
        items[i].state = PENDING;
        items[i].waiting_for[0] = '\0';
        items[i].refused_for_good = false;
        r = items[i].fn(f, items[i].event, COLLECT);
        if (r == FOLD_REFUSED) {
            rc = refuse(refused, &items[i], true, &f->why, err);
        } else if (r != FOLD_OK || fold_failed(f)) {
            fold_failed(f);
            rc = prime_error_set(err, PRIME_ERR_NOMEM, NULL, "%s", f->why.message);
        }
    }
    if (!rc)
        rc = store_track_mixes(f, conn, err);
    for (int t = 0; t < T_COUNT && !rc; t++)
        rc = store_load(&f->sets[t], conn, err);
    /* In order; an event whose parent is missing waits for the rest of the
     * batch, where its parent may be (another topic, a later record). */
    while (!rc && progress) {
        bool need_rows = false;
        progress = 0;
        for (size_t i = 0; i < n && !rc; i++) {
            fold_result_t r;
            if (items[i].state != PENDING || !stream_clear(items, i))
                continue;
            r = items[i].fn(f, items[i].event, APPLY);
            if (r == FOLD_FAILED || fold_failed(f)) {
                fold_failed(f);
                rc = prime_error_set(err, PRIME_ERR_NOMEM, NULL, "%s", f->why.message);
                break;
            }
            /* Its changed rows, refused save or wanted snapshot become
             * audit records and snapshot.created (when applied). */
            rc = derived_take(m->derived, f, &items[i].record, items[i].event, r, err);
            if (!rc && derived_pending(m->derived) >= DERIVED_CHUNK)
                rc = derived_emit(m->derived, w, conn, err);
            if (rc)
                break;
            if (r == FOLD_NEED_ROWS) {
                need_rows = true;
                continue;
            }
            if (r == FOLD_MISSING_PARENT) {
                snprintf(items[i].waiting_for, sizeof(items[i].waiting_for), "%s", f->waiting_for);
                continue;
            }
            progress = 1;
            if (r == FOLD_REFUSED) {
                rc = refuse(refused, &items[i], true, &f->why, err);
            } else {
                items[i].state = APPLIED;
                (*applied)++;
            }
        }
        /* Rows found only by folding (a file's project): read, then go on. */
        for (int t = 0; t < T_COUNT && !rc && need_rows; t++)
            rc = store_load(&f->sets[t], conn, err);
        progress |= need_rows;
    }
    /* What is left waits: for its parent, or behind the event before it in
     * its stream (and then for the same row, so they come out together). */
    for (size_t i = 0; i < n && !rc; i++) {
        if (items[i].state != PENDING)
            continue;
        items[i].state = WAITING;
        if (items[i].waiting_for[0])
            continue;
        stream_copy_key(items[i].waiting_for,
                        items[i].blocked_by[0] ? items[i].blocked_by : items[items[i].prev].waiting_for);
    }
    for (int t = 0; t < T_COUNT && !rc; t++)
        rc = store_write(&f->sets[t], conn, err);
    for (int t = T_COUNT - 1; t >= 0 && !rc; t--)
        rc = store_delete(&f->sets[t], conn, err);
    /* In the same transaction (and savepoint) as the writes. */
    if (!rc)
        rc = derived_emit(m->derived, w, conn, err);
    fold_clear(f);
    /* Out of memory is never a reason to dead-letter: the batch is
     * consumed again (and the worker restarted, if it persists). */
    if (rc == PRIME_ERR_NOMEM)
        err->retriable = true;
    return rc;
}

/* materialize() in a savepoint; event by event when the database refuses.
 * Then the refused are dead-lettered, once, and the judged taken in. */
prime_errcode_t batch_materialize(prime_worker_t *w, PGconn *conn, materializer_t *m, item_t *items, size_t n,
                                  size_t *applied, prime_error_t *err)
{
    prime_errcode_t rc;
    size_t applied_before = *applied;
    refusals_t refused = {0};
    char msg[768];

    if ((rc = prime_pg_exec(conn, "SAVEPOINT pass", "SAVEPOINT", err)))
        return rc;
    rc = materialize(w, conn, m, items, n, applied, &refused, err);
    if (!rc)
        goto decided;
    if (err->retriable || PQstatus(conn) != CONNECTION_OK)
        goto out;
    prime_log(PRIME_LOG_WARN, "batch refused by the database; applying event by event", "error=\"%s\"",
              prime_log_value(err->message, msg, sizeof(msg)));
    prime_error_clear(err);
    refused.n = 0; /* the set-based pass is undone: its refusals too */
    if ((rc = prime_pg_exec(conn, "ROLLBACK TO SAVEPOINT pass", "ROLLBACK TO SAVEPOINT", err)))
        goto out;
    *applied = applied_before;
    if ((rc = stream_link(items, n, err)))
        goto out;
    for (size_t i = 0; i < n && !rc; i++) {
        prime_error_t why;
        long prev = items[i].prev;
        size_t mark = refused.n, applied_mark = *applied;
        prime_error_clear(&why);
        if (prev >= 0 && items[prev].state == WAITING) {
            /* Behind a waiting event of its stream: waits with it. */
            items[i].state = WAITING;
            stream_copy_key(items[i].waiting_for, items[prev].waiting_for);
            continue;
        }
        if ((rc = prime_pg_exec(conn, "SAVEPOINT one", "SAVEPOINT", err)))
            break;
        if (materialize(w, conn, m, &items[i], 1, applied, &refused, &why) == PRIME_OK) {
            rc = prime_pg_exec(conn, "RELEASE SAVEPOINT one", "RELEASE", err);
        } else if (why.retriable || PQstatus(conn) != CONNECTION_OK) {
            *err = why;
            rc = why.code;
        } else if (!(rc = prime_pg_exec(conn, "ROLLBACK TO SAVEPOINT one", "ROLLBACK TO SAVEPOINT", err))) {
            /* The database's refusal: a constraint that may hold no longer
             * (a parent row missing, a child still there), not judged. */
            refused.n = mark;
            *applied = applied_mark;
            rc = refuse(&refused, &items[i], false, &why, err);
        }
    }
    if (rc)
        goto out;
decided:
    for (size_t k = 0; k < refused.n && !rc; k++)
        rc = prime_worker_dead_letter(w, &refused.v[k].item->record, &refused.v[k].why, err);
    if (!rc)
        rc = dedup_record(w, conn, items, n, err);
out:
    free(refused.v);
    return rc;
}

prime_errcode_t batch_make_item(prime_worker_t *w, const prime_registry_t *reg, const prime_record_t *r, item_t *out,
                                bool *usable, prime_error_t *err)
{
    prime_error_t why;
    prime_event_t *ev;
    handler_fn fn;
    prime_errcode_t rc;

    *usable = false;
    if ((rc = prime_worker_decode(w, reg, r, &ev, err)) || !ev)
        return rc;
    if (!(fn = fold_handler_for(ev))) {
        prime_error_clear(&why);
        prime_error_set(&why, PRIME_ERR_UNKNOWN_TYPE, "type", "%s is not materialized by this worker",
                        prime_event_type_name(prime_event_type(ev)));
        prime_event_free(ev);
        return prime_worker_dead_letter(w, r, &why, err);
    }
    *out = (item_t){.record = *r, .event = ev, .fn = fn};
    *usable = true;
    return PRIME_OK;
}

char *batch_owned_partitions(const prime_worker_t *w)
{
    prime_buf_t b;
    const char *topic;
    int32_t partition;
    char item[300];

    prime_buf_init(&b, 0);
    prime_pg_array_begin(&b);
    for (size_t i = 0; prime_worker_partition(w, i, &topic, &partition); i++) {
        snprintf(item, sizeof(item), "%s:%d", topic, (int)partition);
        prime_pg_array_add(&b, item);
    }
    prime_pg_array_end(&b);
    return prime_buf_steal(&b, NULL);
}

/* Per batch: items from records, duplicates skipped, folded and written,
 * what waits parked, what now can unparked, what waited too long
 * dead-lettered. */
prime_errcode_t batch_apply(prime_worker_t *w, PGconn *conn, const prime_record_t *records, size_t n, void *ctx,
                            prime_error_t *err)
{
    materializer_t *m = ctx;
    item_t *items = calloc(n ? n : 1, sizeof(*items));
    size_t count = 0, applied = 0;
    prime_errcode_t rc = PRIME_OK;

    if (!items)
        return prime_error_set(err, PRIME_ERR_NOMEM, NULL, "out of memory for a batch of %zu records", n);
    for (size_t i = 0; i < n && !rc; i++) {
        bool usable;
        rc = batch_make_item(w, m->reg, &records[i], &items[count], &usable, err);
        count += usable;
    }
    if (!rc)
        rc = dedup_skip(w, conn, items, &count, err);
    if (!rc)
        rc = batch_materialize(w, conn, m, items, count, &applied, err);
    if (!rc)
        rc = parking_park(w, conn, m, items, count, err);
    if (!rc)
        rc = parking_unpark(w, conn, m, &applied, err);
    if (!rc)
        rc = parking_expire(w, conn, m, err);
    if (!rc)
        prime_worker_count_applied(w, applied);
    if (rc == PRIME_ERR_NOMEM) /* never a dead letter, never a wrong value: the batch again */
        err->retriable = true;
    for (size_t i = 0; i < count; i++)
        prime_event_free(items[i].event);
    free(items);
    return rc;
}
