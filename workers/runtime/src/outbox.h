/* Internal to the worker runtime: derived events through
 * prime_pipeline.outbox (migration 0008). prime_worker_emit() writes them
 * in the batch's transaction; after the commit, outbox_relay() sends them
 * to Kafka in the order they were written and deletes each row once Kafka
 * has confirmed it. */
#ifndef PRIME_OUTBOX_H
#define PRIME_OUTBOX_H

#include <librdkafka/rdkafka.h>
#include <libpq-fe.h>
#include <stddef.h>

#include "prime/error.h"
#include "prime/worker.h"

/* Writes msgs to the outbox under group, in conn's open transaction, in
 * one statement. */
prime_errcode_t outbox_write(PGconn *conn, const char *group, const prime_emit_t *msgs, size_t n, prime_error_t *err);

/* Relays what the outbox holds for group through producer, a transaction
 * per chunk, until it is empty. *undelivered is the producer's count of
 * refused messages (its delivery callback adds to it). Returns 0 when the
 * outbox is empty, -1 when something was left for the next try (logged). */
int outbox_relay(PGconn *conn, const char *group, rd_kafka_t *producer, int *undelivered);

#endif
