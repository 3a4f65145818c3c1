/* Internal to the worker runtime: replay mode (--replay-until FILE), as
 * prime-replay runs the workers. The file names, one a line, "topic
 * partition offset": the offset each partition stops at (not applied). */
#ifndef PRIME_REPLAY_H
#define PRIME_REPLAY_H

#include <stdint.h>

#include "prime/error.h"
#include "prime/worker.h"

typedef struct replay_ends replay_ends_t;

/* The file's lines for the topics conf consumes (the others are other
 * workers'). NULL with err set (the line and what was expected) when the
 * file cannot be read or a line is not "topic partition offset". */
replay_ends_t *replay_ends_load(const prime_worker_conf_t *conf, prime_error_t *err);
void replay_ends_free(replay_ends_t *e);

/* The offset the partition stops at, or -1 when the file does not name it
 * (then nothing of it is applied: it did not exist when the replay began). */
int64_t replay_end_of(const replay_ends_t *e, const char *topic, int32_t partition);

/* How many partitions the file names for this worker, and the i-th. */
size_t replay_ends_count(const replay_ends_t *e);
void replay_ends_get(const replay_ends_t *e, size_t i, const char **topic, int32_t *partition, int64_t *end);

#endif
