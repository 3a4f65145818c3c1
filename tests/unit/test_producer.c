/* libprime_producer against librdkafka's mock cluster, in process, so that
 * the test can take the broker down (rd_kafka_mock_broker_set_down). */
#include "prime/producer.h"
#include "../support/prime_test.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static rd_kafka_t *mock_rk;
static rd_kafka_mock_cluster_t *mock;
static char bootstraps[256];

typedef struct deliveries {
    int ok, failed;
    char last_error[512];
    char last_type[64];
    int32_t last_partition;
    void *last_opaque;
} deliveries_t;

static void on_delivery(const prime_delivery_t *d, void *opaque)
{
    deliveries_t *x = opaque;
    if (d->error) {
        x->failed++;
        snprintf(x->last_error, sizeof(x->last_error), "%s", d->error->message);
    } else {
        x->ok++;
    }
    snprintf(x->last_type, sizeof(x->last_type), "%s", d->event_type);
    x->last_partition = d->partition;
    x->last_opaque = d->opaque;
}

static int suite_init(void)
{
    char errstr[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "0", errstr, sizeof(errstr));
    mock_rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!mock_rk || !(mock = rd_kafka_mock_cluster_new(mock_rk, 1)))
        return 1;
    snprintf(bootstraps, sizeof(bootstraps), "%s", rd_kafka_mock_cluster_bootstraps(mock));
    return 0;
}

static int suite_cleanup(void)
{
    rd_kafka_mock_cluster_destroy(mock);
    rd_kafka_destroy(mock_rk);
    return 0;
}

static prime_producer_t *new_producer(deliveries_t *d, const char *timeout_ms)
{
    prime_producer_conf_t *conf = prime_producer_conf_new();
    prime_error_t err;
    prime_producer_t *p;

    prime_error_clear(&err);
    CU_ASSERT_EQUAL(prime_producer_conf_set(conf, "bootstrap.servers", bootstraps, &err), PRIME_OK);
    CU_ASSERT_EQUAL(prime_producer_conf_set(conf, "message.timeout.ms", timeout_ms, &err), PRIME_OK);
    CU_ASSERT_EQUAL(prime_producer_conf_set(conf, "linger.ms", "1", &err), PRIME_OK);
    prime_producer_conf_set(conf, "log_level", "0", &err);
    prime_producer_conf_set_delivery_cb(conf, on_delivery, d);
    p = prime_producer_new(conf, &err);
    if (!p)
        fprintf(stderr, "producer: %s\n", err.message);
    return p;
}

/* A valid event minus event_id and occurred_at, as a client would build it. */
static prime_event_t *client_event(prime_producer_t *p)
{
    prime_event_t *ev = prime_event_example(prime_producer_registry(p), "project.opened", 0, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ev);
    prime_event_set_string(ev, "event_id", "", 0, NULL);
    prime_event_set_long(ev, "occurred_at", 0, NULL);
    return ev;
}

static void test_conf_errors(void)
{
    prime_producer_conf_t *conf = prime_producer_conf_new();
    prime_error_t err;

    prime_error_clear(&err);
    CU_ASSERT_EQUAL(prime_producer_conf_set(conf, "enable.idempotence", "false", &err), PRIME_ERR_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "cannot be turned off"));
    prime_error_clear(&err);
    CU_ASSERT_EQUAL(prime_producer_conf_set(conf, "no.such.property", "1", &err), PRIME_ERR_ARG);
    CU_ASSERT_STRING_EQUAL(err.field, "no.such.property");
    prime_error_clear(&err);
    CU_ASSERT_EQUAL(prime_producer_conf_set(conf, "prime.max.json.bytes", "lots", &err), PRIME_ERR_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "expected a byte count"));
    prime_error_clear(&err);
    CU_ASSERT_EQUAL(prime_producer_conf_set(conf, "prime.unknown", "1", &err), PRIME_ERR_ARG);
    CU_ASSERT_EQUAL(prime_producer_conf_set(conf, "compression.type", "zstd", NULL), PRIME_OK);
    CU_ASSERT_EQUAL(prime_producer_conf_set(conf, "prime.max.json.bytes", "4096", NULL), PRIME_OK);
    prime_producer_conf_free(conf);
}

static void test_fills_envelope_and_keeps_given_id(void)
{
    deliveries_t d = {0};
    prime_producer_t *p = new_producer(&d, "10000");
    prime_event_t *ev = client_event(p);
    prime_message_t m;
    const char *id;
    size_t len;
    int64_t when = 0;

    CU_ASSERT_EQUAL_FATAL(prime_producer_prepare(p, ev, &m, NULL), PRIME_OK);
    prime_event_get_string(ev, "event_id", &id, &len, NULL);
    CU_ASSERT_EQUAL(len, 36);
    CU_ASSERT_EQUAL(id[14], '7'); /* UUIDv7 */
    prime_event_get_long(ev, "occurred_at", &when, NULL, NULL);
    CU_ASSERT(llabs(when - (int64_t)time(NULL) * 1000000) < 60 * 1000000LL);
    CU_ASSERT_STRING_EQUAL(m.topic, "prime.projects");
    CU_ASSERT_STRING_EQUAL(m.event_type, "project.opened");
    free(m.value);

    /* A caller's event_id (a client retry) is kept as it is. */
    prime_event_set_string(ev, "event_id", "8d2f1c3e-5b7a-4c19-9e0d-2a6b4f8c1d7e", 36, NULL);
    CU_ASSERT_EQUAL_FATAL(prime_producer_prepare(p, ev, &m, NULL), PRIME_OK);
    prime_event_get_string(ev, "event_id", &id, &len, NULL);
    CU_ASSERT_STRING_EQUAL(id, "8d2f1c3e-5b7a-4c19-9e0d-2a6b4f8c1d7e");
    free(m.value);
    prime_event_free(ev);
    prime_producer_free(p);
}

/* Issue 12: two spellings of one owner must not land on two partitions:
 * the key is the owner id in its canonical (lower-case) form. */
static void test_key_is_the_canonical_owner(void)
{
    deliveries_t d = {0};
    prime_producer_t *p = new_producer(&d, "10000");
    prime_event_t *ev = client_event(p);
    prime_message_t m;

    CU_ASSERT_EQUAL(prime_event_set_string(ev, "owner_user_id", "8D2F1C3E-5B7A-4C19-9E0D-2A6B4F8C1D7E", 36, NULL),
                    PRIME_OK);
    CU_ASSERT_EQUAL_FATAL(prime_producer_prepare(p, ev, &m, NULL), PRIME_OK);
    CU_ASSERT_EQUAL(m.key_len, 36);
    CU_ASSERT_NSTRING_EQUAL(m.key, "8d2f1c3e-5b7a-4c19-9e0d-2a6b4f8c1d7e", 36);
    free(m.value);
    prime_event_free(ev);
    prime_producer_free(p);
}

static void test_invalid_event_is_not_queued(void)
{
    deliveries_t d = {0};
    prime_producer_t *p = new_producer(&d, "10000");
    prime_event_t *ev = client_event(p);
    prime_error_t err;

    prime_event_set_string(ev, "project_id", "nope", 4, NULL);
    prime_error_clear(&err);
    CU_ASSERT_EQUAL(prime_producer_publish(p, ev, NULL, &err), PRIME_ERR_INVALID);
    CU_ASSERT_STRING_EQUAL(err.field, "project_id");
    CU_ASSERT_EQUAL(prime_producer_outstanding(p), 0);
    CU_ASSERT_EQUAL(prime_producer_flush(p, 1000, NULL), PRIME_OK);
    CU_ASSERT_EQUAL(d.ok + d.failed, 0); /* no callback for what was never queued */
    prime_event_free(ev);
    prime_producer_free(p);
}

static void test_delivers_with_key_and_headers(void)
{
    deliveries_t d = {0};
    prime_producer_t *p = new_producer(&d, "10000");
    prime_event_t *ev = client_event(p);
    int marker = 42;
    char errstr[256], group[64];
    rd_kafka_conf_t *cconf = rd_kafka_conf_new();
    rd_kafka_t *c;
    rd_kafka_topic_partition_list_t *parts;
    rd_kafka_message_t *m = NULL;
    const char *owner;
    time_t deadline;

    CU_ASSERT_EQUAL_FATAL(prime_producer_publish(p, ev, &marker, NULL), PRIME_OK);
    CU_ASSERT_EQUAL(prime_producer_flush(p, 10000, NULL), PRIME_OK);
    CU_ASSERT_EQUAL(d.ok, 1);
    CU_ASSERT_EQUAL(d.failed, 0);
    CU_ASSERT_PTR_EQUAL(d.last_opaque, &marker);
    CU_ASSERT_STRING_EQUAL(d.last_type, "project.opened");

    snprintf(group, sizeof(group), "t%ld", (long)time(NULL));
    rd_kafka_conf_set(cconf, "bootstrap.servers", bootstraps, errstr, sizeof(errstr));
    rd_kafka_conf_set(cconf, "group.id", group, errstr, sizeof(errstr));
    c = rd_kafka_new(RD_KAFKA_CONSUMER, cconf, errstr, sizeof(errstr));
    parts = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(parts, "prime.projects", d.last_partition)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_assign(c, parts);
    rd_kafka_topic_partition_list_destroy(parts);
    deadline = time(NULL) + 20;
    while (!m && time(NULL) < deadline) {
        m = rd_kafka_consumer_poll(c, 200);
        if (m && m->err) {
            rd_kafka_message_destroy(m);
            m = NULL;
        }
    }
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    prime_event_get_string(ev, "owner_user_id", &owner, NULL, NULL);
    CU_ASSERT(m->key_len == 36 && !memcmp(m->key, owner, 36));
    {
        rd_kafka_headers_t *h = NULL;
        const void *v;
        size_t n;
        char fp[17];
        snprintf(fp, sizeof(fp), "%016llx",
                 (unsigned long long)prime_event_type_fingerprint(prime_event_type(ev)));
        CU_ASSERT_EQUAL_FATAL(rd_kafka_message_headers(m, &h), RD_KAFKA_RESP_ERR_NO_ERROR);
        CU_ASSERT_EQUAL(rd_kafka_header_get_last(h, "prime.event_type", &v, &n), RD_KAFKA_RESP_ERR_NO_ERROR);
        CU_ASSERT(n == 14 && !memcmp(v, "project.opened", 14));
        CU_ASSERT_EQUAL(rd_kafka_header_get_last(h, "prime.fingerprint", &v, &n), RD_KAFKA_RESP_ERR_NO_ERROR);
        CU_ASSERT(n == 16 && !memcmp(v, fp, 16));
    }
    {
        prime_event_t *back = NULL;
        char *a, *b;
        CU_ASSERT_EQUAL_FATAL(prime_event_decode(prime_producer_registry(p), m->payload, m->len, &back, NULL), PRIME_OK);
        a = prime_event_to_json(ev, NULL);
        b = prime_event_to_json(back, NULL);
        CU_ASSERT_STRING_EQUAL(a, b);
        free(a);
        free(b);
        prime_event_free(back);
    }
    rd_kafka_message_destroy(m);
    rd_kafka_consumer_close(c);
    rd_kafka_destroy(c);
    prime_event_free(ev);
    prime_producer_free(p);
}

static void test_broker_down_fails_delivery(void)
{
    deliveries_t d = {0};
    prime_producer_t *p;
    prime_event_t *ev;
    time_t start = time(NULL);

    rd_kafka_mock_broker_set_down(mock, 1);
    p = new_producer(&d, "2000");
    ev = client_event(p);
    for (int i = 0; i < 5; i++) {
        prime_event_set_string(ev, "event_id", "", 0, NULL);
        CU_ASSERT_EQUAL(prime_producer_publish(p, ev, NULL, NULL), PRIME_OK);
    }
    /* message.timeout.ms bounds each event: flush ends with every one failed. */
    while (prime_producer_outstanding(p) > 0 && time(NULL) - start < 30)
        prime_producer_flush(p, 500, NULL);
    CU_ASSERT_EQUAL(d.failed, 5);
    CU_ASSERT_EQUAL(d.ok, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.last_error, "not delivered to prime.projects"));
    CU_ASSERT(time(NULL) - start < 30);
    rd_kafka_mock_broker_set_up(mock, 1);
    prime_event_free(ev);
    prime_producer_free(p);
}

static void test_free_reports_what_was_purged(void)
{
    deliveries_t d = {0};
    prime_producer_t *p;
    prime_event_t *ev;

    rd_kafka_mock_broker_set_down(mock, 1);
    p = new_producer(&d, "60000");
    ev = client_event(p);
    CU_ASSERT_EQUAL(prime_producer_publish(p, ev, NULL, NULL), PRIME_OK);
    CU_ASSERT_EQUAL(prime_producer_publish(p, ev, NULL, NULL), PRIME_OK);
    prime_producer_free(p); /* without flush: the two are reported, not lost */
    CU_ASSERT_EQUAL(d.failed, 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.last_error, "urge"));
    rd_kafka_mock_broker_set_up(mock, 1);
    prime_event_free(ev);
}

int main(void)
{
    static const prime_test_t tests[] = {
        {"configuration errors name the setting", test_conf_errors},
        {"event_id and occurred_at are filled; a given event_id is kept", test_fills_envelope_and_keeps_given_id},
        {"an invalid event is refused and never queued", test_invalid_event_is_not_queued},
        {"the message key is the owner id in canonical form", test_key_is_the_canonical_owner},
        {"delivered with the owner as key and type/fingerprint headers", test_delivers_with_key_and_headers},
        {"a broker that is down ends in failed deliveries, not a hang", test_broker_down_fails_delivery},
        {"freeing with events queued reports them as not delivered", test_free_reports_what_was_purged},
        {NULL, NULL},
    };
    return prime_test_run("producer", suite_init, suite_cleanup, tests);
}
