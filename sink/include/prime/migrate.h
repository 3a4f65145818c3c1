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

/* Reports one line per migration applied (or, in STATUS mode, per
 * migration with its state) to log when it is not NULL. *applied, when
 * given, receives the number applied (STATUS: the number pending). */
prime_errcode_t prime_migrate(PGconn *conn, prime_migrate_mode_t mode, FILE *log, int *applied,
                              prime_error_t *err);

#endif
