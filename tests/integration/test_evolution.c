/* A schema upgrade as it happens in production (issue 16 item 2): events
 * published by today's producer (every type at v1) sit in the topic; then a
 * consumer built with a v2 of project.created that adds an optional field
 * reads them from the beginning. Every one must decode and validate, the
 * new field null and the rest as published. A consumer that knew only the
 * newest version (what every program had before) refuses them all as
 * "unknown writer schema fingerprint". Runs under tests/with-stack --broker. */
#include "prime/embedded.h"
#include "prime/event.h"
#include "prime/producer.h"
#include "../support/prime_test.h"

#include <librdkafka/rdkafka.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define EVENTS 30

static prime_registry_t *shipped, *upgraded, *newest_only;
static prime_embedded_file_t files[128];
static char *texts[128];

/* project.created as shipped, plus an optional studio_notes. */
static char *created_v2(void)
{
    json_t *j = json_loads(prime_event_type_schema_json(prime_registry_find(shipped, "project.created")), 0, NULL);
    char *text;

    json_array_append_new(json_object_get(j, "fields"),
                          json_pack("{s:s, s:[s,s], s:n}", "name", "studio_notes", "type", "null", "string", "default"));
    text = json_dumps(j, JSON_INDENT(2));
    json_decref(j);
    return text;
}

static int suite_init(void)
{
    size_t n = 0;
    prime_error_t err;
    char name[128];

    prime_error_clear(&err);
    if (!(shipped = prime_registry_new(&err)))
        return 1;
    /* The shipped schemas as files, every type's v1, then project.created/v2. */
    for (size_t i = 0; i < prime_registry_count(shipped) && n + 2 < 128; i++, n++) {
        const prime_event_type_t *t = prime_registry_at(shipped, i);
        snprintf(name, sizeof(name), "%s/v1.avsc", prime_event_type_name(t));
        texts[n] = strdup(name);
        files[n] = (prime_embedded_file_t){texts[n], (const unsigned char *)prime_event_type_schema_json(t),
                                           strlen(prime_event_type_schema_json(t))};
    }
    texts[n] = created_v2();
    files[n] = (prime_embedded_file_t){"project.created/v2.avsc", (const unsigned char *)texts[n], strlen(texts[n])};
    if (!(upgraded = prime_registry_new_from(files, &err))) {
        fprintf(stderr, "upgraded registry: %s\n", err.message);
        return 1;
    }
    /* The same types with only their newest text (as the only version):
     * the old behaviour. */
    for (size_t i = 0; files[i].name; i++)
        if (!strcmp(files[i].name, "project.created/v1.avsc"))
            files[i].data = (const unsigned char *)texts[n], files[i].len = strlen(texts[n]);
    files[n] = (prime_embedded_file_t){0};
    if (!(newest_only = prime_registry_new_from(files, &err))) {
        fprintf(stderr, "newest-only registry: %s\n", err.message);
        return 1;
    }
    return 0;
}

static int suite_cleanup(void)
{
    prime_registry_free(shipped);
    prime_registry_free(upgraded);
    prime_registry_free(newest_only);
    for (size_t i = 0; i < 128; i++)
        free(texts[i]);
    return 0;
}

static void on_delivery(const prime_delivery_t *d, void *opaque)
{
    int *delivered = opaque;
    CU_ASSERT_PTR_NULL(d->error);
    if (!d->error)
        (*delivered)++;
}

static void test_old_events_read_by_an_upgraded_consumer(void)
{
    const char *brokers = prime_test_env("PRIME_TEST_BROKERS");
    prime_producer_conf_t *conf = prime_producer_conf_new();
    prime_producer_t *p;
    rd_kafka_conf_t *cconf = rd_kafka_conf_new();
    rd_kafka_topic_partition_list_t *subs;
    rd_kafka_t *c;
    char *published[EVENTS], errstr[512], group[64];
    int delivered = 0, read = 0, unknown_to_newest_only = 0;
    prime_error_t err;
    time_t deadline;

    /* Old events: published by today's producer, written with v1. */
    prime_error_clear(&err);
    CU_ASSERT_EQUAL_FATAL(prime_producer_conf_set(conf, "bootstrap.servers", brokers, &err), PRIME_OK);
    prime_producer_conf_set_delivery_cb(conf, on_delivery, &delivered);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p = prime_producer_new(conf, &err));
    for (int i = 0; i < EVENTS; i++) {
        prime_event_t *ev = prime_event_example(shipped, "project.created", (uint64_t)i + 1, NULL);
        CU_ASSERT_EQUAL_FATAL(prime_producer_publish(p, ev, NULL, &err), PRIME_OK);
        published[i] = prime_event_to_json(ev, NULL); /* event_id and occurred_at as sent */
        prime_event_free(ev);
    }
    CU_ASSERT_EQUAL(prime_producer_flush(p, 30000, &err), PRIME_OK);
    prime_producer_free(p);
    CU_ASSERT_EQUAL_FATAL(delivered, EVENTS);

    /* The upgraded consumer reads the topic from the beginning. */
    snprintf(group, sizeof(group), "evolution-%d", (int)getpid());
    rd_kafka_conf_set(cconf, "bootstrap.servers", brokers, errstr, sizeof(errstr));
    rd_kafka_conf_set(cconf, "group.id", group, errstr, sizeof(errstr));
    rd_kafka_conf_set(cconf, "auto.offset.reset", "earliest", errstr, sizeof(errstr));
    CU_ASSERT_PTR_NOT_NULL_FATAL(c = rd_kafka_new(RD_KAFKA_CONSUMER, cconf, errstr, sizeof(errstr)));
    rd_kafka_poll_set_consumer(c);
    subs = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(subs, "prime.projects", RD_KAFKA_PARTITION_UA);
    CU_ASSERT_EQUAL_FATAL(rd_kafka_subscribe(c, subs), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_topic_partition_list_destroy(subs);
    deadline = time(NULL) + 60;
    while (read < EVENTS && time(NULL) < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 500);
        prime_event_t *ev = NULL, *old = NULL;
        char *json;
        if (!m)
            continue;
        if (m->err) {
            rd_kafka_message_destroy(m);
            continue;
        }
        prime_error_clear(&err);
        if (prime_event_decode(newest_only, m->payload, m->len, &old, &err) == PRIME_ERR_UNKNOWN_TYPE)
            unknown_to_newest_only++;
        prime_event_free(old);
        prime_error_clear(&err);
        CU_ASSERT_EQUAL(prime_event_decode(upgraded, m->payload, m->len, &ev, &err), PRIME_OK);
        if (!ev) {
            fprintf(stderr, "decode: %s\n", err.message);
            rd_kafka_message_destroy(m);
            read++;
            continue;
        }
        CU_ASSERT_EQUAL(prime_event_validate(ev, &err), PRIME_OK);
        CU_ASSERT_PTR_NULL(prime_event_string(ev, "studio_notes"));
        json = prime_event_to_json(ev, NULL);
        /* As published, with the new field at the end. */
        for (int i = 0; i < EVENTS; i++) {
            size_t len = strlen(published[i]) - 1; /* without its closing brace */
            if (published[i][0] && !strncmp(json, published[i], len) && !strcmp(json + len, ",\"studio_notes\":null}")) {
                published[i][0] = '\0'; /* matched once */
                break;
            }
        }
        free(json);
        prime_event_free(ev);
        rd_kafka_message_destroy(m);
        read++;
    }
    rd_kafka_consumer_close(c);
    rd_kafka_destroy(c);
    CU_ASSERT_EQUAL(read, EVENTS);
    CU_ASSERT_EQUAL(unknown_to_newest_only, EVENTS); /* what happened before every version was kept */
    for (int i = 0; i < EVENTS; i++) {
        if (published[i][0])
            fprintf(stderr, "not read back as published: %s\n", published[i]);
        CU_ASSERT_EQUAL(published[i][0], '\0');
        free(published[i]);
    }
}

int main(void)
{
    static const prime_test_t tests[] = {
        {"events written with v1 are read by a consumer built with v2", test_old_events_read_by_an_upgraded_consumer},
        {NULL, NULL},
    };
    return prime_test_run("evolution", suite_init, suite_cleanup, tests);
}
