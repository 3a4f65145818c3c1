#include "prime/producer.h"
#include "prime/uuid.h"

#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEFAULT_CLOSE_TIMEOUT_MS 10000

struct prime_producer_conf_s {
    rd_kafka_conf_t *rk_conf;
    prime_limits_t limits;
    int close_timeout_ms;
    prime_delivery_cb_t cb;
    void *cb_opaque;
};

struct prime_producer_s {
    rd_kafka_t *rk;
    prime_registry_t *reg;
    int close_timeout_ms;
    prime_delivery_cb_t cb;
    void *cb_opaque;
};

/* What travels with each message until its delivery report: the caller's
 * opaque, and the envelope, so that a report can name the event. */
typedef struct in_flight {
    void *opaque;
    int64_t occurred_at;
    char event_id[PRIME_UUID_TEXT];
} in_flight_t;

prime_producer_conf_t *prime_producer_conf_new(void)
{
    prime_producer_conf_t *conf = calloc(1, sizeof(*conf));
    char errstr[256];

    if (!conf || !(conf->rk_conf = rd_kafka_conf_new())) {
        free(conf);
        return NULL;
    }
    conf->limits.max_message_bytes = PRIME_DEFAULT_MAX_MESSAGE_BYTES;
    conf->limits.max_json_bytes = PRIME_DEFAULT_MAX_JSON_BYTES;
    conf->close_timeout_ms = DEFAULT_CLOSE_TIMEOUT_MS;
    /* The pipeline's conventions; the caller may tune all but idempotence. */
    rd_kafka_conf_set(conf->rk_conf, "enable.idempotence", "true", errstr, sizeof(errstr));
    rd_kafka_conf_set(conf->rk_conf, "compression.type", "lz4", errstr, sizeof(errstr));
    rd_kafka_conf_set(conf->rk_conf, "linger.ms", "20", errstr, sizeof(errstr));
    return conf;
}

void prime_producer_conf_free(prime_producer_conf_t *conf)
{
    if (!conf)
        return;
    if (conf->rk_conf)
        rd_kafka_conf_destroy(conf->rk_conf);
    free(conf);
}

static prime_errcode_t set_size(size_t *out, const char *key, const char *value, prime_error_t *err)
{
    char *end;
    unsigned long long v = strtoull(value, &end, 10);

    if (!*value || *end || v == 0 || v > 100000000ULL)
        return prime_error_set(err, PRIME_ERR_ARG, key, "expected a byte count from 1 to 100000000, got '%s'",
                               value);
    *out = (size_t)v;
    return PRIME_OK;
}

prime_errcode_t prime_producer_conf_set(prime_producer_conf_t *conf, const char *key, const char *value,
                                        prime_error_t *err)
{
    char errstr[512];

    if (!conf || !key || !value)
        return prime_error_set(err, PRIME_ERR_ARG, key, "conf, key and value are required");
    if (!strcmp(key, "prime.max.message.bytes"))
        return set_size(&conf->limits.max_message_bytes, key, value, err);
    if (!strcmp(key, "prime.max.json.bytes"))
        return set_size(&conf->limits.max_json_bytes, key, value, err);
    if (!strcmp(key, "prime.close.timeout.ms")) {
        char *end;
        long v = strtol(value, &end, 10);
        if (!*value || *end || v < 0 || v > 3600000)
            return prime_error_set(err, PRIME_ERR_ARG, key, "expected milliseconds from 0 to 3600000, got '%s'",
                                   value);
        conf->close_timeout_ms = (int)v;
        return PRIME_OK;
    }
    if (!strncmp(key, "prime.", 6))
        return prime_error_set(err, PRIME_ERR_ARG, key,
                               "unknown setting (prime.max.message.bytes, prime.max.json.bytes, "
                               "prime.close.timeout.ms)");
    if (!strcmp(key, "enable.idempotence") && strcmp(value, "true"))
        return prime_error_set(err, PRIME_ERR_ARG, key,
                               "the pipeline needs the idempotent producer: it cannot be turned off");
    if (rd_kafka_conf_set(conf->rk_conf, key, value, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK)
        return prime_error_set(err, PRIME_ERR_ARG, key, "%s", errstr);
    return PRIME_OK;
}

prime_errcode_t prime_producer_conf_set_delivery_cb(prime_producer_conf_t *conf, prime_delivery_cb_t cb,
                                                   void *cb_opaque)
{
    if (!conf)
        return PRIME_ERR_ARG;
    conf->cb = cb;
    conf->cb_opaque = cb_opaque;
    return PRIME_OK;
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *rk_opaque)
{
    prime_producer_t *p = rk_opaque;
    in_flight_t *f = m->_private;
    prime_delivery_t d;
    prime_error_t err;
    const void *type = NULL;
    size_t type_len = 0;
    rd_kafka_headers_t *hdrs = NULL;
    char type_buf[128] = "";

    (void)rk;
    if (!p->cb)
        goto out;
    if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        rd_kafka_header_get_last(hdrs, "prime.event_type", &type, &type_len) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        type_len < sizeof(type_buf)) {
        memcpy(type_buf, type, type_len);
        type_buf[type_len] = '\0';
    }
    d.event_type = type_buf;
    d.topic = rd_kafka_topic_name(m->rkt);
    d.opaque = f->opaque;
    d.event_id = f->event_id;
    d.occurred_at = f->occurred_at;
    d.partition = m->err ? -1 : m->partition;
    d.offset = m->err ? -1 : m->offset;
    d.error = NULL;
    d.status = PRIME_DELIVERED;
    if (m->err) {
        prime_error_clear(&err);
        /* librdkafka knows whether the message ever left: one that was sent
         * and got no answer (purged or timed out in flight) may be on the
         * broker, and reporting it as failed would invite a duplicate. */
        if (rd_kafka_message_status(m) == RD_KAFKA_MSG_STATUS_NOT_PERSISTED) {
            d.status = PRIME_NOT_DELIVERED;
            prime_error_set(&err, PRIME_ERR_KAFKA, NULL, "not delivered to %s: %s", d.topic,
                            rd_kafka_err2str(m->err));
            err.retriable = m->err != RD_KAFKA_RESP_ERR__FATAL;
        } else {
            d.status = PRIME_DELIVERY_UNKNOWN;
            prime_error_set(&err, PRIME_ERR_KAFKA, NULL,
                            "delivery to %s unknown: %s after it was sent; the broker may have it, publish it "
                            "again only with event_id %s",
                            d.topic, rd_kafka_err2str(m->err), f->event_id);
        }
        d.error = &err;
    }
    p->cb(&d, p->cb_opaque);
out:
    free(f);
}

prime_producer_t *prime_producer_new(prime_producer_conf_t *conf, prime_error_t *err)
{
    prime_producer_t *p;
    char errstr[512];

    if (!conf) {
        prime_error_set(err, PRIME_ERR_ARG, NULL, "no configuration");
        return NULL;
    }
    if (!(p = calloc(1, sizeof(*p)))) {
        prime_producer_conf_free(conf);
        prime_error_set(err, PRIME_ERR_NOMEM, NULL, "out of memory");
        return NULL;
    }
    if (!(p->reg = prime_registry_new(err))) {
        prime_producer_conf_free(conf);
        free(p);
        return NULL;
    }
    {
        /* An event over librdkafka's message.max.bytes could never be sent:
         * refuse it at validation, with the limit named, like any other. */
        char v[32];
        size_t n = sizeof(v);
        unsigned long long kafka_max;
        if (rd_kafka_conf_get(conf->rk_conf, "message.max.bytes", v, &n) == RD_KAFKA_CONF_OK &&
            (kafka_max = strtoull(v, NULL, 10)) > 0 && kafka_max < conf->limits.max_message_bytes)
            conf->limits.max_message_bytes = (size_t)kafka_max;
    }
    prime_registry_set_limits(p->reg, &conf->limits);
    p->cb = conf->cb;
    p->cb_opaque = conf->cb_opaque;
    p->close_timeout_ms = conf->close_timeout_ms;
    rd_kafka_conf_set_dr_msg_cb(conf->rk_conf, on_delivery);
    rd_kafka_conf_set_opaque(conf->rk_conf, p);
    /* rd_kafka_new() takes the rd_kafka_conf_t on success only. */
    p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf->rk_conf, errstr, sizeof(errstr));
    if (!p->rk) {
        prime_error_set(err, PRIME_ERR_KAFKA, NULL, "cannot create the Kafka producer: %s", errstr);
        prime_producer_conf_free(conf);
        prime_registry_free(p->reg);
        free(p);
        return NULL;
    }
    conf->rk_conf = NULL;
    prime_producer_conf_free(conf);
    return p;
}

void prime_producer_free(prime_producer_t *p)
{
    if (!p)
        return;
    /* What is on its way gets its chance to be delivered first: purging
     * at once would cut off requests the broker is already answering. */
    if (p->close_timeout_ms > 0)
        rd_kafka_flush(p->rk, p->close_timeout_ms);
    /* Nothing leaves silently: what is left is purged, and each purged
     * event is reported, as not delivered or unknown (on_delivery). */
    rd_kafka_purge(p->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    rd_kafka_flush(p->rk, 5000);
    rd_kafka_destroy(p->rk);
    prime_registry_free(p->reg);
    free(p);
}

const prime_registry_t *prime_producer_registry(const prime_producer_t *p)
{
    return p ? p->reg : NULL;
}

prime_event_t *prime_producer_event_new(prime_producer_t *p, const char *type, prime_error_t *err)
{
    if (!p || !type) {
        prime_error_set(err, PRIME_ERR_ARG, p ? "type" : NULL, "a producer and an event type are required");
        return NULL;
    }
    return prime_event_new(p->reg, type, err);
}

enum { FILLED_ID = 1, FILLED_TIME = 2 };

/* event_id and occurred_at into out, generated when the caller left them
 * unset; generated ones are set in ev for validation and encoding, and
 * *filled says which, for restore_envelope(). */
static prime_errcode_t fill_envelope(prime_event_t *ev, prime_message_t *out, int *filled, prime_error_t *err)
{
    const char *id;
    size_t len;
    prime_errcode_t rc;

    *filled = 0;
    if ((rc = prime_event_get_string(ev, "event_id", &id, &len, err)))
        return rc;
    if (len == 0) {
        if (prime_uuid_v7(out->event_id))
            return prime_error_set(err, PRIME_ERR_IO, "event_id", "no randomness available for a UUID");
        if ((rc = prime_event_set_string(ev, "event_id", out->event_id, 36, err)))
            return rc;
        *filled |= FILLED_ID;
    } else {
        snprintf(out->event_id, sizeof(out->event_id), "%.*s", (int)len, id);
    }
    if ((rc = prime_event_get_long(ev, "occurred_at", &out->occurred_at, NULL, err)))
        return rc;
    if (out->occurred_at == 0) {
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        out->occurred_at = (int64_t)now.tv_sec * 1000000 + now.tv_nsec / 1000;
        if ((rc = prime_event_set_long(ev, "occurred_at", out->occurred_at, err)))
            return rc;
        *filled |= FILLED_TIME;
    }
    return PRIME_OK;
}

/* The caller's event as it was given: a value generated for one publish
 * must not follow the object into the next (issue 16: a reused event kept
 * its first event_id, and the next publish was dropped as a duplicate). */
static void restore_envelope(prime_event_t *ev, int filled)
{
    if (filled & FILLED_ID)
        prime_event_set_string(ev, "event_id", "", 0, NULL);
    if (filled & FILLED_TIME)
        prime_event_set_long(ev, "occurred_at", 0, NULL);
}

prime_errcode_t prime_producer_prepare(prime_producer_t *p, prime_event_t *ev, prime_message_t *out,
                                       prime_error_t *err)
{
    const prime_event_type_t *t;
    prime_errcode_t rc;
    int filled = 0;

    if (!out)
        return prime_error_set(err, PRIME_ERR_ARG, NULL, "no message to prepare into");
    memset(out, 0, sizeof(*out));
    if (!p || !ev)
        return prime_error_set(err, PRIME_ERR_ARG, NULL, "a producer and an event are required");
    t = prime_event_type(ev);
    if (!(rc = fill_envelope(ev, out, &filled, err)) && !(rc = prime_event_validate(ev, err)) &&
        !(rc = prime_event_get_string(ev, "owner_user_id", &out->key, &out->key_len, err)))
        rc = prime_event_encode(ev, &out->value, &out->len, err);
    restore_envelope(ev, filled);
    if (rc)
        return rc;
    out->event_type = prime_event_type_name(t);
    out->topic = prime_event_type_topic(t);
    return PRIME_OK;
}

static int64_t now_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

prime_errcode_t prime_producer_try_publish(prime_producer_t *p, prime_event_t *ev, void *opaque, int timeout_ms,
                                           prime_error_t *err)
{
    prime_message_t m;
    char fingerprint[17];
    prime_errcode_t rc;
    rd_kafka_resp_err_t kerr;
    in_flight_t *f;
    int64_t deadline = timeout_ms >= 0 ? now_ms() + timeout_ms : 0;

    if ((rc = prime_producer_prepare(p, ev, &m, err)))
        return rc;
    if (!(f = malloc(sizeof(*f)))) {
        free(m.value);
        return prime_error_set(err, PRIME_ERR_NOMEM, NULL, "out of memory");
    }
    f->opaque = opaque;
    memcpy(f->event_id, m.event_id, sizeof(f->event_id));
    f->occurred_at = m.occurred_at;
    snprintf(fingerprint, sizeof(fingerprint), "%016llx",
             (unsigned long long)prime_event_type_fingerprint(prime_event_type(ev)));
    for (;;) {
        int64_t left;
        kerr = rd_kafka_producev(p->rk, RD_KAFKA_V_TOPIC(m.topic), RD_KAFKA_V_KEY(m.key, m.key_len),
                                 RD_KAFKA_V_VALUE(m.value, m.len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_FREE),
                                 RD_KAFKA_V_OPAQUE(f),
                                 RD_KAFKA_V_HEADER("prime.event_type", m.event_type, (ssize_t)strlen(m.event_type)),
                                 RD_KAFKA_V_HEADER("prime.fingerprint", fingerprint, 16), RD_KAFKA_V_END);
        if (kerr != RD_KAFKA_RESP_ERR__QUEUE_FULL)
            break;
        /* Back-pressure: the local queue is full until deliveries drain it;
         * serving them here is what makes room. */
        left = timeout_ms < 0 ? 50 : deadline - now_ms();
        if (left <= 0)
            break;
        rd_kafka_poll(p->rk, left < 50 ? (int)left : 50);
    }
    if (kerr) {
        free(m.value);
        free(f);
        if (kerr == RD_KAFKA_RESP_ERR__QUEUE_FULL)
            rc = prime_error_set(err, PRIME_ERR_KAFKA, NULL,
                                 "local queue full (%d events waiting for the broker): %s was not queued; "
                                 "poll, then publish it again",
                                 rd_kafka_outq_len(p->rk), m.event_type);
        else
            rc = prime_error_set(err, PRIME_ERR_KAFKA, NULL, "cannot queue %s for %s: %s", m.event_type, m.topic,
                                 rd_kafka_err2str(kerr));
        if (err)
            err->retriable = kerr != RD_KAFKA_RESP_ERR__FATAL;
        return rc;
    }
    rd_kafka_poll(p->rk, 0);
    return PRIME_OK;
}

prime_errcode_t prime_producer_publish(prime_producer_t *p, prime_event_t *ev, void *opaque, prime_error_t *err)
{
    return prime_producer_try_publish(p, ev, opaque, -1, err);
}

int prime_producer_poll(prime_producer_t *p, int timeout_ms)
{
    return p ? rd_kafka_poll(p->rk, timeout_ms) : -1;
}

prime_errcode_t prime_producer_flush(prime_producer_t *p, int timeout_ms, prime_error_t *err)
{
    rd_kafka_resp_err_t kerr;
    prime_errcode_t rc;

    if (!p)
        return prime_error_set(err, PRIME_ERR_ARG, NULL, "no producer to flush");
    if (!(kerr = rd_kafka_flush(p->rk, timeout_ms)))
        return PRIME_OK;
    rc = prime_error_set(err, PRIME_ERR_KAFKA, NULL, "%d events still outstanding after %d ms: %s",
                         rd_kafka_outq_len(p->rk), timeout_ms, rd_kafka_err2str(kerr));
    if (err)
        err->retriable = true;
    return rc;
}

size_t prime_producer_max_message_bytes(const prime_producer_t *p)
{
    return p ? prime_registry_limits(p->reg)->max_message_bytes : 0;
}

int prime_producer_outstanding(const prime_producer_t *p)
{
    return p ? rd_kafka_outq_len(p->rk) : -1;
}
