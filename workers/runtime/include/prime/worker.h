#ifndef PRIME_WORKER_H
#define PRIME_WORKER_H

/* The runtime every Prime worker shares: configuration, the consumer loop
 * with offsets kept in PostgreSQL, dead letters, metrics, clean shutdown.
 * A worker supplies one function, apply(), that turns a batch of records
 * into rows; the runtime does the rest:
 *
 *   - Offsets live in prime_pipeline.consumer_offsets. On assignment the
 *     runtime reads them and starts there (earliest when there are none);
 *     auto commit and auto offset store are off.
 *   - Each batch is one transaction: BEGIN, apply(), the batch's partitions'
 *     next offsets, COMMIT. So a crash at any instant loses nothing and
 *     applies nothing twice.
 *   - The offset update is conditional on the value this worker last saw,
 *     so a worker that lost its partitions in a rebalance cannot commit a
 *     batch another worker already applied (its transaction rolls back).
 *   - On any failure of the database (down, restarting, a commit whose
 *     outcome is unknown) the batch in memory is dropped, the connection is
 *     made again with backoff, and the consumer seeks to the stored offsets:
 *     the database is the truth. The worker does not exit for that.
 *   - Dead letters go to prime.dlq with the original key, value and headers
 *     plus prime.error.* headers, and are confirmed delivered before the
 *     batch commits: a crash may repeat a dead letter, never lose one.
 *   - Derived events (prime_worker_emit) go through an outbox table written
 *     in the batch's transaction and are relayed to Kafka after the commit
 *     (docs/audit.md): none is lost, none describes a batch that did not
 *     commit; a crash may relay one twice, with the same event id.
 *   - SIGTERM and SIGINT: the batch in flight is committed or abandoned
 *     whole, the consumer leaves the group, the worker returns 0.
 *
 * Single-threaded: apply() runs on the thread that called
 * prime_worker_run(). */

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "prime/buf.h"
#include "prime/error.h"
#include "prime/event.h"

#define PRIME_WORKER_MAX_X 64
#define PRIME_WORKER_MAX_TOPICS 32

typedef struct prime_worker_s prime_worker_t;
typedef struct prime_record prime_record_t;

typedef struct prime_worker_conf {
    const char *name;          /* "materializer": logs, metrics, default group */
    const char *brokers;       /* -b, else $PRIME_BROKERS */
    const char *db;            /* --db, else $PRIME_DB, else the PG* environment */
    const char *group;         /* --group, else "prime-<name>" */
    const char *topics[PRIME_WORKER_MAX_TOPICS]; /* --topics a,b (replaces the worker's defaults) */
    int ntopics;
    const char *x_keys[PRIME_WORKER_MAX_X], *x_values[PRIME_WORKER_MAX_X]; /* -X key=value */
    int nx;
    int batch_max;             /* --batch-max: records per batch (default 2000) */
    int linger_ms;             /* --linger-ms: longest wait to fill a batch (default 100) */
    int metrics_port;          /* --metrics-port: /metrics and /healthz on 127.0.0.1 (0: off) */
    int max_batches;           /* --max-batches: stop after this many committed batches (0: never; for tests) */
    /* Memory and the outbox, in bytes rather than records (docs/workers.md): */
    int memory_max_mb;         /* --memory-max-mb: records fetched but not yet committed, librdkafka's prefetch included (default 128) */
    int outbox_chunk_mb;       /* --outbox-chunk-mb: outbox bytes the relay sends per transaction (default 8) */
    int outbox_max_mb;         /* --outbox-max-mb: outbox backlog beyond which batches wait for the relay (default 256) */
    int stall_seconds;         /* --stall-seconds: a relay without progress this long, work waiting, is unhealthy (default 30) */
    /* Replay mode (prime-replay; docs/workers.md): stop at the end offsets
     * the file names ("topic partition offset" a line) and exit 0 when every
     * partition is there; emit nothing (no outbox rows, no relay, dead
     * letters logged and counted, not sent); a gap in a partition's offsets
     * stops the worker unless allow_gaps. NULL: the live mode. */
    const char *replay_until;  /* --replay-until FILE */
    int allow_gaps;            /* --allow-gaps */
} prime_worker_conf_t;

/* Fills conf from the command line and environment; default_topics (NULL
 * terminated) are used when --topics is not given. argv strings are kept
 * and may be modified. Returns 0, or an exit status (2: bad usage, with a
 * message on stderr; -1 means --help was printed and the program should
 * exit 0). */
int prime_worker_conf_parse(prime_worker_conf_t *conf, const char *name, const char *const *default_topics,
                            int argc, char **argv);

/* A worker's own option: "FLAG N", an integer from min to max, stored in
 * *value (which holds the default until then). Parsed with the runtime's
 * options, refused the same way, listed by --help after them. */
typedef struct prime_worker_option {
    const char *flag;   /* "--snapshot-every" */
    const char *help;   /* one line for --help: what N means, the default */
    int *value;
    int min, max;
} prime_worker_option_t;

/* prime_worker_conf_parse() with the worker's own options: an array ended
 * by an entry whose flag is NULL (options NULL: none). */
int prime_worker_conf_parse_options(prime_worker_conf_t *conf, const char *name, const char *const *default_topics,
                                    const prime_worker_option_t *options, int argc, char **argv);

/* Calls set(target, key, value) with bootstrap.servers and then with each
 * -X property in command-line order, so that every Kafka client a worker
 * makes (its consumer, its dead-letter and outbox producers, a producer of
 * its own) reaches the cluster the same way: TLS, SASL. Called after a
 * client's own defaults, so -X overrides them. Stops at the first non-zero
 * return of set and returns it; 0 when every property was taken. */
typedef int (*prime_kafka_prop_fn)(void *target, const char *key, const char *value);
int prime_worker_conf_each_kafka_prop(const prime_worker_conf_t *conf, prime_kafka_prop_fn set, void *target);

/* One consumed record, as apply() sees it: plain data, which a worker may
 * copy (the copy says all the record does). Its bytes are valid during
 * apply() only. A worker may also make one itself, such as a record kept in
 * a table and read back, to dead-letter it: the fields it does not know
 * stay zero. */
struct prime_record {
    const char *topic;
    int32_t partition;
    int64_t offset;
    const void *key;
    size_t key_len;
    const void *value;
    size_t len;
    const void *headers;       /* its Kafka headers as one byte string */
    size_t headers_len;        /* (prime_record_headers_pack(); NULL, 0: none) */
    int64_t timestamp;         /* its Kafka timestamp (ms since the epoch); 0: unknown */
};

/* Appends r's Kafka headers to out as one byte string, which a record made
 * from it carries back in headers (say, a record kept in a table and read
 * back): its dead letter then has the headers the original came with.
 * Appends nothing when r has none. PRIME_ERR_NOMEM when out of memory. */
prime_errcode_t prime_record_headers_pack(const prime_record_t *r, prime_buf_t *out, prime_error_t *err);

/* The record's Kafka timestamp (ms since the epoch), or -1 when unknown
 * (a record that did not come from the consumer). */
int64_t prime_record_timestamp(const prime_record_t *r);

/* Turns records (in consumption order; one partition's records in offset
 * order) into rows on conn, inside the transaction the runtime opened. Must
 * not commit or roll back. When no records have arrived for a second, it is
 * also called with n == 0, in a transaction of its own, for housekeeping
 * (expiring what waited too long, say). PRIME_OK commits the batch with its offsets. An
 * environment fault (err->retriable, as prime_pg_error() sets it for a lost
 * connection, a missing column, a permission; or PRIME_ERR_NOMEM) rolls the
 * batch back, and it is retried after a growing wait (100 ms to 30 s) while
 * /healthz reports the fault: nothing is dead-lettered. Any other error
 * means a record is at fault: the batch is rolled back and applied again
 * one record at a time (each under a savepoint), and the record that fails
 * alone is dead-lettered with err as its reason while the others commit.
 * Only a failure with no record to blame (n == 0) stops the worker, exit
 * status 1. An event that can never be applied is best dead-lettered by
 * apply() itself (prime_worker_dead_letter), which saves the retry. */
typedef prime_errcode_t (*prime_apply_fn)(prime_worker_t *w, PGconn *conn, const prime_record_t *records, size_t n,
                                          void *ctx, prime_error_t *err);

/* Sends r to prime.dlq, keyed like the original, with headers
 * prime.error.class, prime.error.field, prime.error.message,
 * prime.source.topic, prime.source.partition, prime.source.offset and
 * prime.worker added to the original's. It is sent when the batch
 * commits, delivery confirmed before the commit; a batch rolled back sends
 * none (see prime_worker_dead_letter_mark). */
prime_errcode_t prime_worker_dead_letter(prime_worker_t *w, const prime_record_t *r, const prime_error_t *why,
                                         prime_error_t *err);

/* Dead letters are held until the batch commits. A worker that redoes
 * part of a batch under a savepoint takes the mark before and rewinds to
 * it after ROLLBACK TO SAVEPOINT: the dead letters queued since are
 * dropped with the rows, so a record refused in both passes is
 * dead-lettered once. */
size_t prime_worker_dead_letter_mark(const prime_worker_t *w);
void prime_worker_dead_letter_rewind(prime_worker_t *w, size_t mark);

/* The record's event, decoded and validated; *ev is NULL when it is not
 * (undecodable or invalid), and the record has then been dead-lettered
 * with the codec's error. Errors are the dead letter's. */
prime_errcode_t prime_worker_decode(prime_worker_t *w, const prime_registry_t *reg, const prime_record_t *r,
                                    prime_event_t **ev, prime_error_t *err);

/* A derived event for prime_worker_emit(). */
typedef struct prime_emit {
    const char *topic;
    const char *key;        /* the Kafka key (text) */
    const char *event_type; /* the prime.event_type header */
    const void *value;      /* the encoded event (single-object encoding) */
    size_t len;
} prime_emit_t;

/* Queues derived events for Kafka, in conn's (the batch's) transaction, in
 * one statement: they are sent, in this order, after the batch commits,
 * and not at all if it does not (a rollback to a savepoint takes them back
 * too). */
prime_errcode_t prime_worker_emit(prime_worker_t *w, PGconn *conn, const prime_emit_t *msgs, size_t n,
                                  prime_error_t *err);

/* The consumer group, as offsets (and parked events) are stored under it. */
const char *prime_worker_group(const prime_worker_t *w);

/* The end offset (high watermark) of each partition of topic, as the
 * broker has it now: ends[p] for p < *n (partitions past max are left
 * out; a partition the broker did not list keeps its value). For a worker
 * that must know whether another group has read a topic to its end. A
 * broker that does not answer within 5 s is a retriable error. */
prime_errcode_t prime_worker_topic_ends(prime_worker_t *w, const char *topic, int64_t *ends, int max, int *n,
                                        prime_error_t *err);

/* The i-th partition assigned to this worker now (i from 0; false past the
 * last), for apply() to touch, beyond its records, only what belongs to
 * them (parked events). Each commit, housekeeping included, is fenced on
 * every assigned partition's stored offset, so that a worker that lost one
 * in a rebalance cannot commit what it did with it. */
bool prime_worker_partition(const prime_worker_t *w, size_t i, const char **topic, int32_t *partition);
/* Whether the worker runs in replay mode (--replay-until): what depends on
 * the wall clock (expiring what waited too long) must not happen then, for
 * a replay to give the same rows every time. */
int prime_worker_replaying(const prime_worker_t *w);

/* Counts an event the worker applied (for the events_applied metric). */
void prime_worker_count_applied(prime_worker_t *w, size_t n);

/* Called for every dead letter, the runtime's own (undecodable, invalid)
 * included, on conn in the batch's transaction, after it is queued (to
 * audit it, say); in replay mode too, where the dead letter itself is only
 * logged. An error fails the batch as apply()'s would. */
typedef prime_errcode_t (*prime_dead_letter_fn)(prime_worker_t *w, PGconn *conn, const prime_record_t *r,
                                                const prime_error_t *why, void *ctx, prime_error_t *err);

/* What a worker hands the runtime: apply, and the optional hooks (NULL:
 * none). Each gets prime_worker_run_hooks()'s ctx. */
typedef struct prime_worker_hooks {
    prime_apply_fn apply;
    prime_dead_letter_fn dead_letter;
} prime_worker_hooks_t;

/* Runs until SIGTERM/SIGINT (or conf->max_batches). Returns the process
 * exit status: 0 after a clean stop, 1 after an error that retrying cannot
 * fix (logged). */
int prime_worker_run(const prime_worker_conf_t *conf, prime_apply_fn apply, void *ctx);

/* prime_worker_run() with hooks beside apply(). */
int prime_worker_run_hooks(const prime_worker_conf_t *conf, const prime_worker_hooks_t *hooks, void *ctx);

#endif
