/* prime-migrate: brings a PostgreSQL database to this build's schema.
 *
 *   prime-migrate [--db CONNINFO] [--status] [--lock-timeout MS] [--print-schema]
 *
 * The database is named by --db (a libpq connection string or URI) or by
 * the standard PG* environment variables. Prints one line per migration
 * applied; safe to run again and from several processes at once. Then (and
 * with --status, which writes nothing and needs no more than read access)
 * the live schema of every table the migrations create is compared with
 * what they create, one "drift" line per difference. Exit status: 0
 * success, 1 failure (the message says which migration and line) or a
 * schema that drifted, 2 bad usage. */
#include "prime/migrate.h"
#include "prime/pg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define USAGE "usage: prime-migrate [--db CONNINFO] [--status] [--lock-timeout MS] [--print-schema]\n"

int main(int argc, char **argv)
{
    const char *conninfo = NULL;
    prime_migrate_mode_t mode = PRIME_MIGRATE_APPLY;
    int lock_timeout_ms = -1, print_schema = 0;
    prime_error_t err;
    PGconn *conn;
    char msg[768];
    int count = 0, drift = 0, rc = 0;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--db") && i + 1 < argc) {
            conninfo = argv[++i];
        } else if (!strncmp(argv[i], "--db=", 5)) {
            conninfo = argv[i] + 5;
        } else if (!strcmp(argv[i], "--status")) {
            mode = PRIME_MIGRATE_STATUS;
        } else if (!strcmp(argv[i], "--print-schema")) {
            print_schema = 1;
        } else if (!strcmp(argv[i], "--lock-timeout") && i + 1 < argc) {
            char *end;
            long ms = strtol(argv[++i], &end, 10);
            if (*end || end == argv[i] || ms < 0 || ms > 86400000) {
                fprintf(stderr, "prime-migrate: --lock-timeout: expected milliseconds from 0 (no limit) to 86400000, "
                                "got '%s'\n", argv[i]);
                return 2;
            }
            lock_timeout_ms = (int)ms;
        } else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fputs(USAGE "  --status          what is applied and pending, and where the schema drifted; writes nothing\n"
                        "  --lock-timeout MS longest wait for the migration lock (default: 5000 with --status, else\n"
                        "                    no limit)\n"
                        "  --print-schema    the live schema as schemas/sql/schema.expected holds it\n", stdout);
            return 0;
        } else {
            fprintf(stderr, "prime-migrate: unknown argument '%s'\n" USAGE, argv[i]);
            return 2;
        }
    }
    if (lock_timeout_ms < 0)
        lock_timeout_ms = mode == PRIME_MIGRATE_STATUS ? PRIME_MIGRATE_LOCK_TIMEOUT_MS : 0;
    prime_error_clear(&err);
    if (!(conn = prime_pg_connect(conninfo, &err))) {
        fprintf(stderr, "prime-migrate: %s\n", prime_error_str(&err, msg, sizeof(msg)));
        return 1;
    }
    if (print_schema) {
        rc = prime_migrate_print_schema(conn, stdout, &err) ? 1 : 0;
    } else if (prime_migrate_with_timeout(conn, mode, lock_timeout_ms, stdout, &count, &drift, &err)) {
        rc = 1;
    } else if (mode == PRIME_MIGRATE_STATUS) {
        printf("%d pending\n", count);
        rc = drift ? 1 : 0;
    } else if (drift) {
        printf("migrations applied, but the schema drifted from them in %d places (lines above)\n", drift);
        rc = 1;
    } else if (count == 0) {
        printf("up to date\n");
    }
    if (rc && err.code)
        fprintf(stderr, "prime-migrate: %s\n", prime_error_str(&err, msg, sizeof(msg)));
    PQfinish(conn);
    return rc;
}
