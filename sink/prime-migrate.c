/* prime-migrate: brings a PostgreSQL database to this build's schema.
 *
 *   prime-migrate [--db CONNINFO] [--status]
 *
 * The database is named by --db (a libpq connection string or URI) or by
 * the standard PG* environment variables. Prints one line per migration
 * applied; safe to run again and from several processes at once. Exit
 * status: 0 success, 1 failure (the message says which migration and line),
 * 2 bad usage. */
#include "prime/migrate.h"
#include "prime/pg.h"

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    const char *conninfo = NULL;
    prime_migrate_mode_t mode = PRIME_MIGRATE_APPLY;
    prime_error_t err;
    PGconn *conn;
    char msg[768];
    int count = 0;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--db") && i + 1 < argc) {
            conninfo = argv[++i];
        } else if (!strncmp(argv[i], "--db=", 5)) {
            conninfo = argv[i] + 5;
        } else if (!strcmp(argv[i], "--status")) {
            mode = PRIME_MIGRATE_STATUS;
        } else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            puts("usage: prime-migrate [--db CONNINFO] [--status]");
            return 0;
        } else {
            fprintf(stderr, "prime-migrate: unknown argument '%s'\nusage: prime-migrate [--db CONNINFO] [--status]\n",
                    argv[i]);
            return 2;
        }
    }
    prime_error_clear(&err);
    if (!(conn = prime_pg_connect(conninfo, &err))) {
        fprintf(stderr, "prime-migrate: %s\n", prime_error_str(&err, msg, sizeof(msg)));
        return 1;
    }
    if (prime_migrate(conn, mode, stdout, &count, &err)) {
        fprintf(stderr, "prime-migrate: %s\n", prime_error_str(&err, msg, sizeof(msg)));
        PQfinish(conn);
        return 1;
    }
    if (mode == PRIME_MIGRATE_STATUS)
        printf("%d pending\n", count);
    else if (count == 0)
        printf("up to date\n");
    PQfinish(conn);
    return 0;
}
