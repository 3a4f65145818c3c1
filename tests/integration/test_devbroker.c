/* The dev broker as any Kafka client sees it: every event type produced to
 * its topic, keyed by owner, read back by a real consumer group (join,
 * assignment, fetch, commit) and decoded to the events that were sent. */
#include "prime/event.h"
#include "../support/prime_test.h"

#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SEEDS 3
#define ORDERED 50

static prime_registry_t *reg;
static const char *brokers;

typedef struct sent {
    char *json;
    char owner[40];
    const char *topic;
    int seen;
} sent_t;

static int suite_init(void)
{
    brokers = prime_test_env("PRIME_TEST_BROKERS");
    reg = prime_registry_new(NULL);
    return reg ? 0 : 1;
}

static int suite_cleanup(void)
{
    prime_registry_free(reg);
    return 0;
}

static rd_kafka_t *new_client(rd_kafka_type_t type, const char *group)
{
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *rk;

    rd_kafka_conf_set(conf, "bootstrap.servers", brokers, errstr, sizeof(errstr));
    if (type == RD_KAFKA_PRODUCER) {
        rd_kafka_conf_set(conf, "enable.idempotence", "true", errstr, sizeof(errstr));
    } else {
        rd_kafka_conf_set(conf, "group.id", group, errstr, sizeof(errstr));
        rd_kafka_conf_set(conf, "auto.offset.reset", "earliest", errstr, sizeof(errstr));
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr, sizeof(errstr));
        rd_kafka_conf_set(conf, "partition.assignment.strategy", "cooperative-sticky", errstr, sizeof(errstr));
    }
    rk = rd_kafka_new(type, conf, errstr, sizeof(errstr));
    if (!rk)
        fprintf(stderr, "rd_kafka_new: %s\n", errstr);
    return rk;
}

static void produce_event(rd_kafka_t *p, const prime_event_t *ev, const char *owner)
{
    void *bytes;
    size_t len;
    const char *type = prime_event_type_name(prime_event_type(ev));
    rd_kafka_resp_err_t e;

    CU_ASSERT_EQUAL_FATAL(prime_event_encode(ev, &bytes, &len, NULL), PRIME_OK);
    e = rd_kafka_producev(p, RD_KAFKA_V_TOPIC(prime_event_type_topic(prime_event_type(ev))),
                          RD_KAFKA_V_KEY(owner, strlen(owner)), RD_KAFKA_V_VALUE(bytes, len),
                          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_FREE),
                          RD_KAFKA_V_HEADER("prime.event_type", type, (ssize_t)strlen(type)), RD_KAFKA_V_END);
    CU_ASSERT_EQUAL(e, RD_KAFKA_RESP_ERR_NO_ERROR);
    if (e)
        free(bytes);
}

static void test_every_type_through_a_consumer_group(void)
{
    size_t ntypes = prime_registry_count(reg), nsent = ntypes * SEEDS + ORDERED, received = 0;
    sent_t *sent = calloc(nsent, sizeof(*sent));
    const char *topics[32];
    int ntopics = 0;
    rd_kafka_t *p = new_client(RD_KAFKA_PRODUCER, NULL), *c;
    rd_kafka_topic_partition_list_t *subs;
    char group[64], ordered_owner[40] = "";
    int32_t ordered_partition = -1;
    int next_ordered = 0;
    time_t deadline;

    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    for (size_t i = 0; i < ntypes; i++) {
        const prime_event_type_t *t = prime_registry_at(reg, i);
        for (int s = 0; s < SEEDS; s++) {
            sent_t *x = &sent[i * SEEDS + (size_t)s];
            prime_event_t *ev = prime_event_example(reg, prime_event_type_name(t), (uint64_t)s * 7 + 1, NULL);
            const char *owner;
            prime_event_get_string(ev, "owner_user_id", &owner, NULL, NULL);
            snprintf(x->owner, sizeof(x->owner), "%s", owner);
            x->json = prime_event_to_json(ev, NULL);
            x->topic = prime_event_type_topic(t);
            produce_event(p, ev, owner);
            prime_event_free(ev);
        }
        int known = 0;
        for (int k = 0; k < ntopics; k++)
            known |= !strcmp(topics[k], prime_event_type_topic(t));
        if (!known)
            topics[ntopics++] = prime_event_type_topic(t);
    }
    /* One owner's history: ORDERED heartbeats that must come back in order. */
    for (int s = 0; s < ORDERED; s++) {
        sent_t *x = &sent[ntypes * SEEDS + (size_t)s];
        prime_event_t *ev = prime_event_example(reg, "session.heartbeat", 1000 + (uint64_t)s, NULL);
        if (!ordered_owner[0]) {
            const char *owner;
            prime_event_get_string(ev, "owner_user_id", &owner, NULL, NULL);
            snprintf(ordered_owner, sizeof(ordered_owner), "%s", owner);
        }
        prime_event_set_string(ev, "owner_user_id", ordered_owner, strlen(ordered_owner), NULL);
        snprintf(x->owner, sizeof(x->owner), "%s", ordered_owner);
        x->json = prime_event_to_json(ev, NULL);
        x->topic = "prime.sessions";
        produce_event(p, ev, ordered_owner);
        prime_event_free(ev);
    }
    CU_ASSERT_EQUAL(rd_kafka_flush(p, 30000), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_destroy(p);

    snprintf(group, sizeof(group), "prime-test-%d", (int)getpid());
    c = new_client(RD_KAFKA_CONSUMER, group);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    rd_kafka_poll_set_consumer(c);
    subs = rd_kafka_topic_partition_list_new(ntopics);
    for (int k = 0; k < ntopics; k++)
        rd_kafka_topic_partition_list_add(subs, topics[k], RD_KAFKA_PARTITION_UA);
    CU_ASSERT_EQUAL_FATAL(rd_kafka_subscribe(c, subs), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_topic_partition_list_destroy(subs);

    deadline = time(NULL) + 60;
    while (received < nsent && time(NULL) < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 200);
        prime_event_t *ev = NULL;
        char *json;
        int matched = 0;

        if (!m)
            continue;
        if (m->err) {
            if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                fprintf(stderr, "consume: %s\n", rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            continue;
        }
        CU_ASSERT_EQUAL_FATAL(prime_event_decode(reg, m->payload, m->len, &ev, NULL), PRIME_OK);
        json = prime_event_to_json(ev, NULL);
        for (size_t i = 0; i < nsent && !matched; i++) {
            if (sent[i].seen || strcmp(sent[i].json, json))
                continue;
            matched = 1;
            sent[i].seen = 1;
            CU_ASSERT_STRING_EQUAL(rd_kafka_topic_name(m->rkt), sent[i].topic);
            CU_ASSERT(m->key_len == strlen(sent[i].owner) && !memcmp(m->key, sent[i].owner, m->key_len));
            if (i >= ntypes * SEEDS) {
                /* One key, one partition, production order. */
                if (ordered_partition < 0)
                    ordered_partition = m->partition;
                CU_ASSERT_EQUAL(m->partition, ordered_partition);
                CU_ASSERT_EQUAL((int)(i - ntypes * SEEDS), next_ordered);
                next_ordered++;
            }
        }
        CU_ASSERT(matched);
        received++;
        free(json);
        prime_event_free(ev);
        rd_kafka_message_destroy(m);
    }
    CU_ASSERT_EQUAL(received, nsent);
    CU_ASSERT_EQUAL(next_ordered, ORDERED);

    /* The group's offsets are stored by the broker and read back. */
    CU_ASSERT_EQUAL(rd_kafka_commit(c, NULL, 0), RD_KAFKA_RESP_ERR_NO_ERROR);
    {
        rd_kafka_topic_partition_list_t *assigned = NULL;
        int64_t total = 0;
        CU_ASSERT_EQUAL_FATAL(rd_kafka_assignment(c, &assigned), RD_KAFKA_RESP_ERR_NO_ERROR);
        CU_ASSERT_EQUAL(rd_kafka_committed(c, assigned, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
        for (int i = 0; i < assigned->cnt; i++)
            if (assigned->elems[i].offset > 0)
                total += assigned->elems[i].offset;
        CU_ASSERT_EQUAL(total, (int64_t)nsent);
        rd_kafka_topic_partition_list_destroy(assigned);
    }
    rd_kafka_consumer_close(c);
    rd_kafka_destroy(c);
    for (size_t i = 0; i < nsent; i++)
        free(sent[i].json);
    free(sent);
}

int main(void)
{
    static const prime_test_t tests[] = {
        {"every event type round-trips through a consumer group", test_every_type_through_a_consumer_group},
        {NULL, NULL},
    };
    return prime_test_run("devbroker", suite_init, suite_cleanup, tests);
}
