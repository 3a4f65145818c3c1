/* Internal to the worker runtime: the one place a Kafka client's
 * configuration gets the worker's cluster settings. */
#ifndef PRIME_KAFKA_CONF_H
#define PRIME_KAFKA_CONF_H

#include <librdkafka/rdkafka.h>

#include "prime/worker.h"

/* Sets bootstrap.servers and every -X property on kc (call it after the
 * client's own defaults). Returns 0, or -1 having logged the key librdkafka
 * refused; kc is still the caller's either way. */
int worker_kafka_conf_apply(const prime_worker_conf_t *conf, rd_kafka_conf_t *kc);

#endif
