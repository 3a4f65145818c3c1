#include "producer.h"
#include "kafka_conf.h"
#include "prime/log.h"

#include <stdio.h>
#include <stdlib.h>

struct producer {
    const prime_worker_conf_t *conf;
    const char *name;
    producer_delivery_fn on_delivery;
    void *opaque;
    atomic_uint_fast64_t *fatal_count;
    rd_kafka_t *rk;
    bool counted; /* the current client's failure is counted (a renewal that failed is tried again) */
};

static void delivered(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    producer_t *p = opaque;
    (void)rk;
    p->on_delivery(m, p->opaque);
}

/* librdkafka's errors: informational, it retries, except a fatal one,
 * which the owner finds with producer_failed() and logs when it renews. */
static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    producer_t *p = opaque;
    char safe[512];
    (void)rk;
    if (err != RD_KAFKA_RESP_ERR__FATAL)
        prime_log(PRIME_LOG_WARN, "producer error", "producer=%s error=\"%s: %s\"", p->name, rd_kafka_err2name(err),
                  prime_log_value(reason, safe, sizeof(safe)));
}

static rd_kafka_t *client_new(producer_t *p)
{
    rd_kafka_conf_t *kc = rd_kafka_conf_new();
    char errstr[512];
    rd_kafka_t *rk;

    rd_kafka_conf_set(kc, "enable.idempotence", "true", errstr, sizeof(errstr));
    rd_kafka_conf_set(kc, "linger.ms", "5", errstr, sizeof(errstr));
    if (worker_kafka_conf_apply(p->conf, kc)) {
        rd_kafka_conf_destroy(kc);
        return NULL;
    }
    rd_kafka_conf_set_dr_msg_cb(kc, delivered);
    rd_kafka_conf_set_error_cb(kc, on_error);
    rd_kafka_conf_set_opaque(kc, p);
    if (!(rk = rd_kafka_new(RD_KAFKA_PRODUCER, kc, errstr, sizeof(errstr)))) {
        prime_log(PRIME_LOG_ERROR, "cannot create a Kafka producer", "producer=%s error=\"%s\"", p->name, errstr);
        rd_kafka_conf_destroy(kc);
    }
    return rk;
}

producer_t *producer_new(const prime_worker_conf_t *conf, const char *name, producer_delivery_fn on_delivery,
                         void *opaque, atomic_uint_fast64_t *fatal_count)
{
    producer_t *p = calloc(1, sizeof(*p));

    if (!p)
        return NULL;
    *p = (producer_t){.conf = conf, .name = name, .on_delivery = on_delivery, .opaque = opaque,
                      .fatal_count = fatal_count};
    if (!(p->rk = client_new(p))) {
        free(p);
        return NULL;
    }
    return p;
}

rd_kafka_t *producer_kafka(const producer_t *p)
{
    return p->rk;
}

bool producer_failed(const producer_t *p)
{
    return rd_kafka_fatal_error(p->rk, NULL, 0) != RD_KAFKA_RESP_ERR_NO_ERROR;
}

int producer_renew(producer_t *p, char *why, size_t why_size)
{
    char reason[512], safe[512], msg[96];
    rd_kafka_resp_err_t code = rd_kafka_fatal_error(p->rk, reason, sizeof(reason));
    rd_kafka_t *fresh;

    if (!code)
        return 0;
    prime_log_value(reason, safe, sizeof(safe));
    if (why)
        snprintf(why, why_size, "%s: %s", rd_kafka_err2name(code), safe);
    if (!p->counted) {
        snprintf(msg, sizeof(msg), "%s producer failed for good; replacing it", p->name);
        prime_log(PRIME_LOG_ERROR, msg, "error=\"%s: %s\"", rd_kafka_err2name(code), safe);
        atomic_fetch_add(p->fatal_count, 1);
        p->counted = true;
    }
    if (!(fresh = client_new(p)))
        return -1;
    rd_kafka_purge(p->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    rd_kafka_destroy(p->rk);
    p->rk = fresh;
    p->counted = false;
    return 0;
}

void producer_free(producer_t *p)
{
    if (!p)
        return;
    rd_kafka_destroy(p->rk);
    free(p);
}
