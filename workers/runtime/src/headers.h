/* Internal to the worker runtime: a record's Kafka headers, packed into
 * one byte string when it is fetched (prime_record_t.headers), so that the
 * record and every copy of it carry them, and unpacked for its dead letter. */
#ifndef PRIME_HEADERS_H
#define PRIME_HEADERS_H

#include <librdkafka/rdkafka.h>

#include "prime/worker.h"

/* The bytes headers_pack_into() writes for h (NULL: none, 0). */
size_t headers_packed_size(const rd_kafka_headers_t *h);

/* Writes h packed to out, which has headers_packed_size(h) bytes. */
void headers_pack_into(const rd_kafka_headers_t *h, unsigned char *out);

/* A new set of the headers packed in r->headers; empty when none. NULL
 * when out of memory. */
rd_kafka_headers_t *headers_of(const prime_record_t *r);

#endif
