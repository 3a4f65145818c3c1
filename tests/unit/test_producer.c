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

#define MAX_REPORTS 6000

/* One delivery report: which event, and what the producer said of it. */
typedef struct report {
    char event_id[37];
    prime_delivery_status_t status;
} report_t;

typedef struct deliveries {
    int ok, failed, unknown;
    char last_error[512];
    char last_type[64];
    int32_t last_partition;
    void *last_opaque;
    report_t *reports; /* when set, every report is kept here (MAX_REPORTS) */
    int nreports;
} deliveries_t;

static void on_delivery(const prime_delivery_t *d, void *opaque)
{
    deliveries_t *x = opaque;
    CU_ASSERT_EQUAL(d->error != NULL, d->status != PRIME_DELIVERED);
    if (d->status == PRIME_DELIVERY_UNKNOWN) {
        x->unknown++;
        CU_ASSERT_FALSE(d->error->retriable);
    } else if (d->error) {
        x->failed++;
        snprintf(x->last_error, sizeof(x->last_error), "%s", d->error->message);
    } else {
        x->ok++;
    }
    if (x->reports && x->nreports < MAX_REPORTS) {
        snprintf(x->reports[x->nreports].event_id, 37, "%s", d->event_id);
        x->reports[x->nreports++].status = d->status;
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

static prime_producer_t *new_producer_closing(deliveries_t *d, const char *timeout_ms, const char *close_ms)
{
    prime_producer_conf_t *conf = prime_producer_conf_new();
    prime_error_t err;
    prime_producer_t *p;

    prime_error_clear(&err);
    CU_ASSERT_EQUAL(prime_producer_conf_set(conf, "bootstrap.servers", bootstraps, &err), PRIME_OK);
    CU_ASSERT_EQUAL(prime_producer_conf_set(conf, "message.timeout.ms", timeout_ms, &err), PRIME_OK);
    CU_ASSERT_EQUAL(prime_producer_conf_set(conf, "linger.ms", "1", &err), PRIME_OK);
    if (close_ms)
        CU_ASSERT_EQUAL(prime_producer_conf_set(conf, "prime.close.timeout.ms", close_ms, &err), PRIME_OK);
    prime_producer_conf_set(conf, "log_level", "0", &err);
    prime_producer_conf_set_delivery_cb(conf, on_delivery, d);
    p = prime_producer_new(conf, &err);
    if (!p)
        fprintf(stderr, "producer: %s\n", err.message);
    return p;
}

static prime_producer_t *new_producer(deliveries_t *d, const char *timeout_ms)
{
    return new_producer_closing(d, timeout_ms, NULL);
}

static int64_t mono_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

static int cmp_ids(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* The event_ids of every message now on topic, sorted (37 bytes each):
 * a consumer reads every partition from the beginning to its end. */
static char *ids_on_broker(const prime_registry_t *reg, const char *topic, int *count)
{
    char errstr[256];
    rd_kafka_conf_t *cconf = rd_kafka_conf_new();
    rd_kafka_t *c;
    const rd_kafka_metadata_t *md = NULL;
    rd_kafka_topic_t *rkt;
    rd_kafka_topic_partition_list_t *parts;
    int npart, eofs = 0, n = 0, cap = 1024;
    char *ids = malloc((size_t)cap * 37);
    time_t deadline = time(NULL) + 30;

    rd_kafka_conf_set(cconf, "bootstrap.servers", bootstraps, errstr, sizeof(errstr));
    rd_kafka_conf_set(cconf, "group.id", "ids_on_broker", errstr, sizeof(errstr));
    rd_kafka_conf_set(cconf, "enable.partition.eof", "true", errstr, sizeof(errstr));
    rd_kafka_conf_set(cconf, "log_level", "0", errstr, sizeof(errstr));
    c = rd_kafka_new(RD_KAFKA_CONSUMER, cconf, errstr, sizeof(errstr));
    rkt = rd_kafka_topic_new(c, topic, NULL);
    CU_ASSERT_EQUAL_FATAL(rd_kafka_metadata(c, 0, rkt, &md, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
    npart = md->topics[0].partition_cnt;
    parts = rd_kafka_topic_partition_list_new(npart);
    for (int i = 0; i < npart; i++)
        rd_kafka_topic_partition_list_add(parts, topic, i)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_assign(c, parts);
    rd_kafka_topic_partition_list_destroy(parts);
    while (eofs < npart && time(NULL) < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 200);
        prime_event_t *ev = NULL;
        if (!m)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            eofs++;
        } else if (!m->err && prime_event_decode(reg, m->payload, m->len, &ev, NULL) == PRIME_OK) {
            if (n == cap)
                ids = realloc(ids, (size_t)(cap *= 2) * 37);
            snprintf(ids + (size_t)n++ * 37, 37, "%s", prime_event_string(ev, "event_id"));
            prime_event_free(ev);
        }
        rd_kafka_message_destroy(m);
    }
    CU_ASSERT_EQUAL(eofs, npart);
    rd_kafka_consumer_close(c);
    rd_kafka_destroy(c);
    qsort(ids, (size_t)n, 37, cmp_ids);
    *count = n;
    return ids;
}

/* Every report against what the broker holds: an event on the broker is
 * never reported as not delivered, a delivered one is on the broker.
 * Returns how many messages the topic holds. */
static int check_reports_against_broker(const prime_registry_t *reg, const char *topic, const deliveries_t *d)
{
    int n, wrong_failed = 0, missing_delivered = 0;
    char *ids = ids_on_broker(reg, topic, &n);

    for (int i = 0; i < d->nreports; i++) {
        int there = bsearch(d->reports[i].event_id, ids, (size_t)n, 37, cmp_ids) != NULL;
        wrong_failed += there && d->reports[i].status == PRIME_NOT_DELIVERED;
        missing_delivered += !there && d->reports[i].status == PRIME_DELIVERED;
    }
    if (wrong_failed || missing_delivered)
        fprintf(stderr, "%d on the broker reported not delivered, %d reported delivered not on the broker\n",
                wrong_failed, missing_delivered);
    CU_ASSERT_EQUAL(wrong_failed, 0);
    CU_ASSERT_EQUAL(missing_delivered, 0);
    free(ids);
    return n;
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
    CU_ASSERT_EQUAL(strlen(m.event_id), 36);
    CU_ASSERT_EQUAL(m.event_id[14], '7'); /* UUIDv7 */
    CU_ASSERT(llabs(m.occurred_at - (int64_t)time(NULL) * 1000000) < 60 * 1000000LL);
    CU_ASSERT_STRING_EQUAL(m.topic, "prime.projects");
    CU_ASSERT_STRING_EQUAL(m.event_type, "project.opened");
    {
        prime_event_t *sent = NULL; /* what is encoded carries them */
        CU_ASSERT_EQUAL_FATAL(prime_event_decode(prime_producer_registry(p), m.value, m.len, &sent, NULL), PRIME_OK);
        CU_ASSERT_STRING_EQUAL(prime_event_string(sent, "event_id"), m.event_id);
        prime_event_get_long(sent, "occurred_at", &when, NULL, NULL);
        CU_ASSERT_EQUAL(when, m.occurred_at);
        prime_event_free(sent);
    }
    free(m.value);
    /* ... and the caller's event is left as it was given. */
    prime_event_get_string(ev, "event_id", &id, &len, NULL);
    CU_ASSERT_EQUAL(len, 0);
    prime_event_get_long(ev, "occurred_at", &when, NULL, NULL);
    CU_ASSERT_EQUAL(when, 0);

    /* A caller's event_id (a client retry) is kept as it is. */
    prime_event_set_string(ev, "event_id", "8d2f1c3e-5b7a-4c19-9e0d-2a6b4f8c1d7e", 36, NULL);
    prime_event_set_long(ev, "occurred_at", 1795608000000000, NULL);
    CU_ASSERT_EQUAL_FATAL(prime_producer_prepare(p, ev, &m, NULL), PRIME_OK);
    CU_ASSERT_STRING_EQUAL(m.event_id, "8d2f1c3e-5b7a-4c19-9e0d-2a6b4f8c1d7e");
    CU_ASSERT_EQUAL(m.occurred_at, 1795608000000000);
    prime_event_get_string(ev, "event_id", &id, &len, NULL);
    CU_ASSERT_STRING_EQUAL(id, "8d2f1c3e-5b7a-4c19-9e0d-2a6b4f8c1d7e");
    free(m.value);
    prime_event_free(ev);
    prime_producer_free(p);
}

/* message.max.bytes below prime.max.message.bytes: an event librdkafka
 * could never send is refused at validation, with the limit named. */
static void test_message_limit_follows_kafka(void)
{
    deliveries_t d = {0};
    prime_producer_conf_t *conf = prime_producer_conf_new();
    prime_producer_t *p;
    prime_event_t *ev;
    prime_error_t err;
    char big[3000];

    prime_producer_conf_set(conf, "bootstrap.servers", bootstraps, NULL);
    CU_ASSERT_EQUAL(prime_producer_conf_set(conf, "message.max.bytes", "2000", NULL), PRIME_OK);
    prime_producer_conf_set_delivery_cb(conf, on_delivery, &d);
    p = prime_producer_new(conf, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT_EQUAL(prime_producer_max_message_bytes(p), 2000);
    ev = prime_event_example(prime_producer_registry(p), "project.saved", 0, NULL);
    memset(big, ' ', sizeof(big));
    big[0] = '{';
    big[sizeof(big) - 1] = '}';
    prime_event_set_string(ev, "project_data", big, sizeof(big), NULL);
    prime_error_clear(&err);
    CU_ASSERT_EQUAL(prime_producer_publish(p, ev, NULL, &err), PRIME_ERR_TOO_LARGE);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "2000"));
    CU_ASSERT_EQUAL(prime_producer_outstanding(p), 0);
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
    report_t reports[1];
    deliveries_t d = {.reports = reports};
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
        int64_t when = 0;
        CU_ASSERT_EQUAL_FATAL(prime_event_decode(prime_producer_registry(p), m->payload, m->len, &back, NULL), PRIME_OK);
        /* The generated envelope is the one the report named; the rest is ev. */
        CU_ASSERT_STRING_EQUAL(prime_event_string(back, "event_id"), reports[0].event_id);
        prime_event_set_string(ev, "event_id", reports[0].event_id, 36, NULL);
        prime_event_get_long(back, "occurred_at", &when, NULL, NULL);
        prime_event_set_long(ev, "occurred_at", when, NULL);
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

/* One event object, published, changed, published again: two events, each
 * with its own id, both on the broker (issue 16: the second kept the
 * first's event_id and was dropped downstream as a duplicate). */
static void test_reused_event_is_a_new_event(void)
{
    report_t reports[2];
    deliveries_t d = {.reports = reports};
    prime_producer_t *p = new_producer(&d, "10000");
    prime_event_t *ev = client_event(p);

    CU_ASSERT_EQUAL(prime_producer_publish(p, ev, NULL, NULL), PRIME_OK);
    CU_ASSERT_STRING_EQUAL(prime_event_string(ev, "event_id"), "");
    prime_event_set_string(ev, "device_id", "desk-2", 6, NULL);
    CU_ASSERT_EQUAL(prime_producer_publish(p, ev, NULL, NULL), PRIME_OK);
    CU_ASSERT_EQUAL(prime_producer_flush(p, 10000, NULL), PRIME_OK);
    CU_ASSERT_EQUAL_FATAL(d.nreports, 2);
    CU_ASSERT_EQUAL(d.ok, 2);
    CU_ASSERT_EQUAL(strlen(reports[0].event_id), 36);
    CU_ASSERT_STRING_NOT_EQUAL(reports[0].event_id, reports[1].event_id);
    check_reports_against_broker(prime_producer_registry(p), "prime.projects", &d);
    prime_event_free(ev);
    prime_producer_free(p);
}

/* Every public function, given NULL where it takes a pointer: an error
 * (or NULL, or -1, as the header says), never a crash. */
static void test_null_arguments(void)
{
    deliveries_t d = {0};
    prime_producer_t *p = new_producer(&d, "10000");
    prime_event_t *ev = client_event(p);
    prime_producer_conf_t *conf = prime_producer_conf_new();
    prime_message_t m;
    prime_error_t err;

    prime_error_clear(&err);
    CU_ASSERT_EQUAL(prime_producer_conf_set(NULL, "linger.ms", "1", &err), PRIME_ERR_ARG);
    CU_ASSERT_EQUAL(prime_producer_conf_set(conf, NULL, "1", NULL), PRIME_ERR_ARG);
    CU_ASSERT_EQUAL(prime_producer_conf_set(conf, "linger.ms", NULL, NULL), PRIME_ERR_ARG);
    CU_ASSERT_EQUAL(prime_producer_conf_set_delivery_cb(NULL, on_delivery, &d), PRIME_ERR_ARG);
    CU_ASSERT_EQUAL(prime_producer_conf_set_delivery_cb(conf, NULL, NULL), PRIME_OK);
    prime_producer_conf_free(NULL);
    prime_producer_conf_free(conf);
    prime_error_clear(&err);
    CU_ASSERT_PTR_NULL(prime_producer_new(NULL, &err));
    CU_ASSERT_EQUAL(err.code, PRIME_ERR_ARG);
    prime_producer_free(NULL);
    CU_ASSERT_PTR_NULL(prime_producer_registry(NULL));
    prime_error_clear(&err);
    CU_ASSERT_PTR_NULL(prime_producer_event_new(NULL, "project.opened", &err));
    CU_ASSERT_EQUAL(err.code, PRIME_ERR_ARG);
    prime_error_clear(&err);
    CU_ASSERT_PTR_NULL(prime_producer_event_new(p, NULL, &err));
    CU_ASSERT_EQUAL(err.code, PRIME_ERR_ARG);
    CU_ASSERT_EQUAL(prime_producer_publish(NULL, ev, NULL, NULL), PRIME_ERR_ARG);
    prime_error_clear(&err);
    CU_ASSERT_EQUAL(prime_producer_publish(p, NULL, NULL, &err), PRIME_ERR_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "required"));
    CU_ASSERT_EQUAL(prime_producer_try_publish(NULL, ev, NULL, 0, NULL), PRIME_ERR_ARG);
    CU_ASSERT_EQUAL(prime_producer_try_publish(p, NULL, NULL, 0, NULL), PRIME_ERR_ARG);
    CU_ASSERT_EQUAL(prime_producer_prepare(NULL, ev, &m, NULL), PRIME_ERR_ARG);
    CU_ASSERT_EQUAL(prime_producer_prepare(p, NULL, &m, NULL), PRIME_ERR_ARG);
    CU_ASSERT_EQUAL(prime_producer_prepare(p, ev, NULL, NULL), PRIME_ERR_ARG);
    CU_ASSERT_EQUAL(prime_producer_poll(NULL, 0), -1);
    CU_ASSERT_EQUAL(prime_producer_flush(NULL, 0, NULL), PRIME_ERR_ARG);
    CU_ASSERT_EQUAL(prime_producer_outstanding(NULL), -1);
    CU_ASSERT_EQUAL(d.ok + d.failed + d.unknown, 0);
    prime_event_free(ev);
    prime_producer_free(p);
}

/* A full local queue and a broker that is gone: try_publish returns within
 * its bound with a retriable "queue full", queues nothing, reports nothing
 * for it; a UI thread never freezes. */
static void test_try_publish_is_bounded(void)
{
    deliveries_t d = {0};
    prime_producer_conf_t *conf = prime_producer_conf_new();
    prime_producer_t *p;
    prime_event_t *ev;
    prime_error_t err;
    int64_t t0, took;

    rd_kafka_mock_broker_set_down(mock, 1);
    prime_producer_conf_set(conf, "bootstrap.servers", bootstraps, NULL);
    prime_producer_conf_set(conf, "message.timeout.ms", "60000", NULL);
    prime_producer_conf_set(conf, "prime.close.timeout.ms", "0", NULL);
    prime_producer_conf_set(conf, "log_level", "0", NULL);
    CU_ASSERT_EQUAL(prime_producer_conf_set(conf, "queue.buffering.max.messages", "2", NULL), PRIME_OK);
    prime_producer_conf_set_delivery_cb(conf, on_delivery, &d);
    p = prime_producer_new(conf, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    ev = client_event(p);
    CU_ASSERT_EQUAL(prime_producer_try_publish(p, ev, NULL, 0, NULL), PRIME_OK);
    CU_ASSERT_EQUAL(prime_producer_try_publish(p, ev, NULL, 0, NULL), PRIME_OK);

    t0 = mono_ms();
    prime_error_clear(&err);
    CU_ASSERT_EQUAL(prime_producer_try_publish(p, ev, NULL, 300, &err), PRIME_ERR_KAFKA);
    took = mono_ms() - t0;
    CU_ASSERT(err.retriable);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "local queue full"));
    CU_ASSERT(took >= 290 && took < 1500);

    t0 = mono_ms();
    prime_error_clear(&err);
    CU_ASSERT_EQUAL(prime_producer_try_publish(p, ev, NULL, 0, &err), PRIME_ERR_KAFKA);
    CU_ASSERT(mono_ms() - t0 < 200);
    CU_ASSERT(err.retriable);
    CU_ASSERT_EQUAL(prime_producer_outstanding(p), 2);
    prime_event_free(ev);
    prime_producer_free(p);
    CU_ASSERT_EQUAL(d.failed, 2); /* the two queued; the refused ones are never reported */
    rd_kafka_mock_broker_set_up(mock, 1);
}

/* Broker down: nothing was ever sent, so free reports each event as not
 * delivered (safe to publish again), none as unknown, after waiting no
 * longer than prime.close.timeout.ms. */
static void test_free_reports_what_was_purged(void)
{
    report_t reports[2];
    deliveries_t d = {.reports = reports};
    prime_producer_t *p;
    prime_event_t *ev;
    struct timespec t0, t1;

    rd_kafka_mock_broker_set_down(mock, 1);
    p = new_producer_closing(&d, "60000", "300");
    ev = client_event(p);
    CU_ASSERT_EQUAL(prime_producer_publish(p, ev, NULL, NULL), PRIME_OK);
    prime_event_set_string(ev, "event_id", "", 0, NULL);
    CU_ASSERT_EQUAL(prime_producer_publish(p, ev, NULL, NULL), PRIME_OK);
    prime_event_free(ev); /* before its producer's registry goes */
    clock_gettime(CLOCK_MONOTONIC, &t0);
    prime_producer_free(p); /* without flush: the two are reported, not lost */
    clock_gettime(CLOCK_MONOTONIC, &t1);
    CU_ASSERT_EQUAL(d.failed, 2);
    CU_ASSERT_EQUAL(d.unknown, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.last_error, "urge"));
    CU_ASSERT((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000 < 3000);
    rd_kafka_mock_broker_set_up(mock, 1);
    p = new_producer(&d, "10000");
    check_reports_against_broker(prime_producer_registry(p), "prime.projects", &d);
    prime_producer_free(p);
}

/* Publish many, free at once: free waits for what is on its way, so every
 * event the broker has is reported delivered (issue 16: 10 of 20,000 were
 * purged in flight and reported failed, and a retry made duplicates). */
static void test_free_delivers_what_is_on_its_way(void)
{
    deliveries_t d = {.reports = calloc(MAX_REPORTS, sizeof(report_t))};
    prime_producer_t *p = new_producer(&d, "30000");
    prime_event_t *ev = prime_event_example(prime_producer_registry(p), "preset.created", 0, NULL);
    const int n = 5000;

    CU_ASSERT_PTR_NOT_NULL_FATAL(ev);
    for (int i = 0; i < n; i++) {
        prime_event_set_string(ev, "event_id", "", 0, NULL);
        CU_ASSERT_EQUAL(prime_producer_publish(p, ev, NULL, NULL), PRIME_OK);
    }
    prime_event_free(ev);
    prime_producer_free(p);
    CU_ASSERT_EQUAL(d.nreports, n);
    CU_ASSERT_EQUAL(d.ok, n);
    CU_ASSERT_EQUAL(d.failed, 0);
    p = new_producer(&d, "10000");
    check_reports_against_broker(prime_producer_registry(p), "prime.presets", &d);
    prime_producer_free(p);
    free(d.reports);
}

/* Sent, and the answer is slower than prime.close.timeout.ms: free purges
 * them in flight. The broker has them, so they are reported unknown (with
 * their event_id), never as not delivered. */
static void test_free_reports_in_flight_as_unknown(void)
{
    deliveries_t d = {.reports = calloc(MAX_REPORTS, sizeof(report_t))};
    prime_producer_t *p = new_producer_closing(&d, "30000", "500");
    prime_event_t *ev = prime_event_example(prime_producer_registry(p), "session.joined", 0, NULL);
    const int n = 20;
    char topic[64];

    CU_ASSERT_PTR_NOT_NULL_FATAL(ev);
    /* Connected first, so that the slow answers are to the produce requests. */
    CU_ASSERT_EQUAL(prime_producer_publish(p, ev, NULL, NULL), PRIME_OK);
    CU_ASSERT_EQUAL(prime_producer_flush(p, 10000, NULL), PRIME_OK);
    CU_ASSERT_EQUAL(d.ok, 1);
    rd_kafka_mock_broker_set_rtt(mock, 1, 4000);
    for (int i = 0; i < n; i++) {
        prime_event_set_string(ev, "event_id", "", 0, NULL);
        CU_ASSERT_EQUAL(prime_producer_publish(p, ev, NULL, NULL), PRIME_OK);
    }
    snprintf(topic, sizeof(topic), "%s", prime_event_type_topic(prime_event_type(ev)));
    prime_event_free(ev);
    prime_producer_free(p);
    rd_kafka_mock_broker_set_rtt(mock, 1, 0);
    CU_ASSERT_EQUAL(d.nreports, n + 1);
    CU_ASSERT_EQUAL(d.failed, 0);
    CU_ASSERT_EQUAL(d.unknown, n);
    p = new_producer(&d, "10000");
    CU_ASSERT_EQUAL(check_reports_against_broker(prime_producer_registry(p), topic, &d), n + 1);
    prime_producer_free(p);
    free(d.reports);
}

int main(void)
{
    static const prime_test_t tests[] = {
        {"configuration errors name the setting", test_conf_errors},
        {"event_id and occurred_at are filled; a given event_id is kept", test_fills_envelope_and_keeps_given_id},
        {"an invalid event is refused and never queued", test_invalid_event_is_not_queued},
        {"the message limit follows message.max.bytes", test_message_limit_follows_kafka},
        {"the message key is the owner id in canonical form", test_key_is_the_canonical_owner},
        {"delivered with the owner as key and type/fingerprint headers", test_delivers_with_key_and_headers},
        {"a broker that is down ends in failed deliveries, not a hang", test_broker_down_fails_delivery},
        {"a reused event object is published as a new event", test_reused_event_is_a_new_event},
        {"NULL arguments are errors, not crashes", test_null_arguments},
        {"try_publish on a full queue returns within its bound", test_try_publish_is_bounded},
        {"freeing with events never sent reports them as not delivered", test_free_reports_what_was_purged},
        {"freeing right after publishing delivers what is on its way", test_free_delivers_what_is_on_its_way},
        {"events purged in flight are reported unknown, never not delivered", test_free_reports_in_flight_as_unknown},
        {NULL, NULL},
    };
    return prime_test_run("producer", suite_init, suite_cleanup, tests);
}
