/* Internal to the worker runtime: a record's Kafka headers, kept with it
 * when a worker stores the record (prime_record_headers_pack) and given
 * back to its dead letter. */
#ifndef PRIME_HEADERS_H
#define PRIME_HEADERS_H

#include <librdkafka/rdkafka.h>

#include "prime/worker.h"

/* The headers of a consumed record (worker.c); NULL when r was not
 * consumed or came without headers. */
const rd_kafka_headers_t *worker_record_headers(const prime_record_t *r);

/* A new set of the headers r came with: a copy of the consumed record's,
 * or those packed in r->headers; empty when none. NULL when out of memory. */
rd_kafka_headers_t *headers_of(const prime_record_t *r);

#endif
