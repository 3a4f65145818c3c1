/* The database side of a batch's rows: the only place the fold's rows meet
 * SQL. Each function runs in the batch's transaction and returns the
 * database's error (prime_pg_error) or PRIME_ERR_NOMEM. */
#ifndef PRIME_MAT_STORE_H
#define PRIME_MAT_STORE_H

#include <libpq-fe.h>

#include "fold.h"
#include "prime/error.h"
#include "rows.h"

/* Reads every tracked, not yet loaded row of s in one query; every tracked
 * row is loaded after (present when the database has it). */
prime_errcode_t store_load(rowset_t *s, PGconn *conn, prime_error_t *err);
/* Writes dirty present rows (COPY into a staging table, one upsert). */
prime_errcode_t store_write(rowset_t *s, PGconn *conn, prime_error_t *err);
/* Deletes rows that were in the database and are gone now. */
prime_errcode_t store_delete(rowset_t *s, PGconn *conn, prime_error_t *err);

/* After COLLECT: tracks every mix row (audio_files, is_mix) of the projects
 * COLLECT named (fold_need_mixes), so that a snapshot sees the mix as it is
 * at its event. */
prime_errcode_t store_track_mixes(fold_t *f, PGconn *conn, prime_error_t *err);

#endif
