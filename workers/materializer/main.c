/* prime-materializer: client events -> the seed tables (docs/materializer.md),
 * and prime-snapshot-writer: prime.snapshots -> project_snapshots. This
 * file is the program: its options, and the runtime (prime/worker.h)
 * running batch_apply() (batch.h) on every batch. */
#include "batch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Every dead letter, the runtime's own (undecodable, invalid) included,
 * gets its audit record, in the batch's transaction. */
static prime_errcode_t on_dead_letter(prime_worker_t *w, PGconn *conn, const prime_record_t *r,
                                      const prime_error_t *why, void *ctx, prime_error_t *err)
{
    materializer_t *m = ctx;
    return derived_dead_letter(m->derived, w, conn, r, why, err);
}

/* One program, two consumer groups: prime-materializer (client topics and
 * the analyzer's answers into the seed tables) and prime-snapshot-writer
 * (prime.snapshots into project_snapshots), built from this file with
 * PRIME_SNAPSHOT_WRITER set. Same fold, same exactly-once machinery. */
#ifdef PRIME_SNAPSHOT_WRITER
#define WORKER_NAME "snapshot-writer"
static const char *const default_topics[] = {"prime.snapshots", NULL};
#else
#define WORKER_NAME "materializer"
static const char *const default_topics[] = {"prime.users",    "prime.auth",     "prime.projects", "prime.audio",
                                             "prime.recall",   "prime.sessions", "prime.presets",  "prime.collab",
                                             "prime.analysis", NULL};
#endif

int main(int argc, char **argv)
{
    materializer_t m = {.park_max_seconds = 3600, .park_max_per_stream = 10000};
    int snapshot_every = 10, rc;
    const prime_worker_option_t options[] = {
        {"--snapshot-every", "an auto snapshot every N project versions (default 10; 0: none)", &snapshot_every, 0,
         1000000},
        {"--park-max-seconds", "longest wait for a missing parent row, in seconds (default 3600)",
         &m.park_max_seconds, 1, 100000000},
        {"--park-max-per-stream",
         "most events parked in one stream (topic and key); more are dead-lettered (default 10000)",
         &m.park_max_per_stream, 1, 100000000},
        {NULL, NULL, NULL, 0, 0},
    };
    prime_worker_conf_t conf;
    prime_error_t err;

    rc = prime_worker_conf_parse_options(&conf, WORKER_NAME, default_topics, options, argc, argv);
    if (rc)
        return rc < 0 ? 0 : rc;
    fold_init(&m.fold, snapshot_every);
    prime_error_clear(&err);
    if (!(m.reg = prime_registry_new(&err)) || !(m.derived = derived_new(m.reg)) ||
        !(m.parent_exists = parking_condition_sql())) {
        fprintf(stderr, "prime-" WORKER_NAME ": %s\n", m.reg ? "out of memory" : err.message);
        derived_free(m.derived);
        prime_registry_free(m.reg);
        return 1;
    }
    rc = prime_worker_run_hooks(&conf, &(const prime_worker_hooks_t){.apply = batch_apply, .dead_letter = on_dead_letter},
                                &m);
    fold_free(&m.fold);
    derived_free(m.derived);
    prime_registry_free(m.reg);
    free(m.parent_exists);
    return rc;
}
