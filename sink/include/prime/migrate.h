#ifndef PRIME_MIGRATE_H
#define PRIME_MIGRATE_H

#include <libpq-fe.h>
#include <stdio.h>

#include "prime/error.h"

/* The SQL migrations compiled into this build (schemas/sql/NNNN_name.sql),
 * applied in order. The first is the seed schema exactly as the
 * architecture document gives it; later ones only add.
 *
 * prime_migrate() holds a session advisory lock while it works, so two
 * processes can run it at once: the second waits, then finds nothing to do.
 * Each pending migration runs in its own transaction together with its row
 * in prime_pipeline.schema_migrations, so a failure leaves the database at
 * the last migration that succeeded. A migration that was applied and has
 * since changed, or a database with migrations this build does not know,
 * is an error: nothing is applied then. */

typedef enum prime_migrate_mode {
    PRIME_MIGRATE_APPLY,
    PRIME_MIGRATE_STATUS, /* report only */
} prime_migrate_mode_t;

/* How long a status waits for the migration lock by default. */
#define PRIME_MIGRATE_LOCK_TIMEOUT_MS 5000

/* Reports one line per migration applied (or, in STATUS mode, per
 * migration with its state) to log when it is not NULL. *applied, when
 * given, receives the number applied (STATUS: the number pending). */
prime_errcode_t prime_migrate(PGconn *conn, prime_migrate_mode_t mode, FILE *log, int *applied,
                              prime_error_t *err);

/* The same, waiting for the migration lock at most lock_timeout_ms (0: as
 * long as it takes; prime_migrate() waits so in APPLY mode and
 * PRIME_MIGRATE_LOCK_TIMEOUT_MS in STATUS mode); past it, an error saying
 * that another session holds the lock. Once no migration is pending, the
 * live schema of every table the migrations create (columns with their
 * types, NOT NULL and defaults, indexes, constraints, triggers) is compared
 * with what the migrations make: one line per difference to log
 * ("drift    public.users.email: expected text not null, found ..."), and
 * their number in *drift. STATUS mode writes nothing and takes the lock
 * shared, so a read-only user can run it. */
prime_errcode_t prime_migrate_with_timeout(PGconn *conn, prime_migrate_mode_t mode, int lock_timeout_ms, FILE *log,
                                           int *applied, int *drift, prime_error_t *err);

/* The live schema of every table of public and prime_pipeline, in the form
 * of schemas/sql/schema.expected (which this output, on a database fresh
 * from the migrations, is). */
prime_errcode_t prime_migrate_print_schema(PGconn *conn, FILE *out, prime_error_t *err);

#endif
