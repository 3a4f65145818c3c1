/* The events a batch's changes derive (docs/audit.md): an audit.recorded
 * on prime.audit for every row an event changed, every stale save refused
 * and every dead letter, and the snapshot.created the fold asks for on
 * prime.snapshots. They go through the runtime's outbox, in the batch's
 * transaction. */
#ifndef PRIME_MAT_DERIVED_H
#define PRIME_MAT_DERIVED_H

#include "prime/event.h"
#include "prime/worker.h"
#include "fold.h"

typedef struct derived derived_t;

derived_t *derived_new(const prime_registry_t *reg);
void derived_free(derived_t *d);

/* After ev (from rec) was folded with outcome (FOLD_*): its changes (rows
 * touched, a stale save refused, a snapshot wanted) become pending records
 * when it was applied, and are forgotten otherwise; the fold's marks are
 * reset either way. rec and ev must live until derived_emit(). */
prime_errcode_t derived_take(derived_t *d, fold_t *f, const prime_record_t *rec, const prime_event_t *ev,
                             fold_result_t outcome, prime_error_t *err);

/* Hashes the rows of the pending records (PostgreSQL's row_hash() of the
 * rows as they were after each change, sent as literals), encodes every
 * record and writes them to the outbox; then forgets them. */
prime_errcode_t derived_emit(derived_t *d, prime_worker_t *w, PGconn *conn, prime_error_t *err);

/* How many records are pending: derived_emit() may run at any point of a
 * pass (row hashes come from the rows as they were, not from the tables),
 * so a large batch emits in chunks and bounds this. */
size_t derived_pending(const derived_t *d);

/* Forgets pending records (their pass is being redone). */
void derived_clear(derived_t *d);

/* The audit record of a dead letter, written to the outbox now (for
 * the dead_letter hook, prime_worker_hooks_t). */
prime_errcode_t derived_dead_letter(derived_t *d, prime_worker_t *w, PGconn *conn, const prime_record_t *r,
                                    const prime_error_t *why, prime_error_t *err);

#endif
