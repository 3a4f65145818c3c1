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
#include "metrics.h"

/* Writes msgs to the outbox under group, in conn's open transaction, in
 * one statement. */
prime_errcode_t outbox_write(PGconn *conn, const char *group, const prime_emit_t *msgs, size_t n, prime_error_t *err);

/* The relay runs on a thread of its own, with its own connection and
 * producer, so that a batch does not wait for Kafka to confirm the previous
 * batch's derived events. It relays when kicked (after a commit that wrote
 * to the outbox) and once a second (what a crash left, what failed), in
 * transactions of at most --outbox-chunk-mb, and never blocks in
 * librdkafka: it is the thread that serves the delivery reports. */
typedef struct outbox_relay outbox_relay_t;

/* Starts the relay for conf's group; NULL (logged) when the producer cannot
 * be made. It keeps metrics' relay_* fields and outbox_backlog (measured
 * once a second) up to date; metrics must outlive it. */
outbox_relay_t *outbox_relay_start(const prime_worker_conf_t *conf, metrics_t *metrics);
/* Asks for a relay now. */
void outbox_relay_kick(outbox_relay_t *r);
/* Relays what is committed for up to two seconds more, then stops the
 * thread and frees r; what Kafka has not confirmed by then stays in the
 * outbox for the next start. Returns within a few seconds whatever Kafka
 * does. */
void outbox_relay_stop(outbox_relay_t *r);

#endif
