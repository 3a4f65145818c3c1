/* Internal to the worker runtime: what every Kafka client of a worker
 * shares. */
#ifndef PRIME_WORKER_CONF_INTERNAL_H
#define PRIME_WORKER_CONF_INTERNAL_H

#include <librdkafka/rdkafka.h>

#include "prime/worker.h"

/* Sets bootstrap.servers and then the -X properties on kconf, for the
 * consumer and both producers alike (a real cluster's security settings
 * are needed by all three; librdkafka ignores, with a CONFWARN line, a
 * property that does not apply to a client's type). Returns 0, or -1 with
 * the bad property logged. */
int worker_kafka_conf(rd_kafka_conf_t *kconf, const prime_worker_conf_t *c, const char *client);

#endif
