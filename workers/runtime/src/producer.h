/* Internal to the worker runtime: the idempotent producers a worker makes
 * besides its consumer (dead letters, the outbox relay), and their
 * replacement when one fails for good. */
#ifndef PRIME_PRODUCER_H
#define PRIME_PRODUCER_H

#include <librdkafka/rdkafka.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "prime/worker.h"

/* Delivery reports, on the thread that polls the producer. */
typedef void (*producer_delivery_fn)(const rd_kafka_message_t *m, void *opaque);

typedef struct producer producer_t;

/* An idempotent producer with the worker's cluster settings (-X): name
 * ("dead-letter", "outbox") for its log lines, on_delivery called with
 * opaque, fatal_count counted up at each replacement (a /metrics counter).
 * NULL, logged, when librdkafka refuses it. */
producer_t *producer_new(const prime_worker_conf_t *conf, const char *name, producer_delivery_fn on_delivery,
                         void *opaque, atomic_uint_fast64_t *fatal_count);
/* The current client (it changes at each producer_renew()). */
rd_kafka_t *producer_kafka(const producer_t *p);
/* Whether it failed for good: an idempotent producer whose sequence broke
 * (rd_kafka_fatal_error()); librdkafka refuses every message from then on.
 * Any thread may ask. */
bool producer_failed(const producer_t *p);
/* After producer_failed(): logs librdkafka's reason (into why, when not
 * NULL, for /healthz), counts it, purges what the client held (nothing it
 * held is confirmed: the caller sends it again) and makes a new client, a
 * new producer id. 0, or -1 (logged) when no new client can be made: the
 * failed one stays, and a later call tries again. */
int producer_renew(producer_t *p, char *why, size_t why_size);
/* Destroys the client (flush first what should go out) and frees p. */
void producer_free(producer_t *p);

#endif
