/* prime-topics: creates Prime's topics on a real Kafka cluster (the local
 * broker of scripts/kafka-up, the compose deployment's topic-init job, or
 * any cluster an operator points it at).
 *
 *   prime-topics [-b BROKERS] [-X key=value]... [--partitions N]
 *                [--replication-factor N] [--config key=value]... [--wait S]
 *
 * The topics are the ones the event schemas name plus prime.dlq: the same
 * list prime-devbroker creates, from the same registry. Every topic is kept
 * forever (retention.ms=-1, retention.bytes=-1) because the topics are the
 * record the database is rebuilt from (docs/operations.md says why none is
 * compacted). A topic that exists already is left as it is, so the command
 * can run at every deployment. It waits up to --wait seconds for the
 * cluster to answer and to have enough brokers for the replication factor,
 * then exits 0 when every topic exists, 1 when one could not be created. */
#include "prime/time.h"
#include "prime/registry.h"

#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_TOPICS 64
#define MAX_KV 64

static void usage(FILE *out)
{
    fputs("usage: prime-topics [-b BROKERS] [-X key=value]... [--partitions N] [--replication-factor N]\n"
          "                    [--config key=value]... [--wait S]\n"
          "  -b BROKERS              bootstrap servers (default: $PRIME_BROKERS)\n"
          "  -X key=value            a librdkafka property (security.protocol, sasl.*, ssl.*)\n"
          "  --partitions N          partitions per topic (default 4)\n"
          "  --replication-factor N  replicas per partition (default 1)\n"
          "  --config key=value      a topic property for every topic (e.g. min.insync.replicas=2)\n"
          "  --wait S                longest wait for the cluster (default 60)\n",
          out);
}

static int parse_int(const char *s, int lo, int hi, const char *what, int *out)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || *end || !*s || v < lo || v > hi) {
        fprintf(stderr, "prime-topics: %s: expected an integer from %d to %d, got '%s'\n", what, lo, hi, s);
        return -1;
    }
    *out = (int)v;
    return 0;
}

/* "key=value" split in place; NULL value when there is no '=' or no key. */
static int split_kv(char *s, const char *flag, const char **k, const char **v)
{
    char *eq = strchr(s, '=');
    if (!eq || eq == s) {
        fprintf(stderr, "prime-topics: %s expects key=value, got '%s'\n", flag, s);
        return -1;
    }
    *eq = '\0';
    *k = s;
    *v = eq + 1;
    return 0;
}

/* Brokers in the cluster, or -1 while it does not answer. */
static int count_brokers(rd_kafka_t *rk)
{
    const struct rd_kafka_metadata *md;
    int n;
    if (rd_kafka_metadata(rk, 0, NULL, &md, 5000) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return -1;
    n = md->broker_cnt;
    rd_kafka_metadata_destroy(md);
    return n;
}

/* Creates the topics still marked in todo[]; clears the mark of each that
 * exists afterwards. Returns how many failed for good (not retriable). */
static int create(rd_kafka_t *rk, const char **topics, int *todo, int ntopics, int partitions, int rf,
                  const char **ck, const char **cv, int nc)
{
    rd_kafka_NewTopic_t *nt[MAX_TOPICS];
    int idx[MAX_TOPICS], n = 0, fatal = 0;
    char errstr[512];
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *opt = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_event_t *ev;

    rd_kafka_AdminOptions_set_operation_timeout(opt, 30000, errstr, sizeof(errstr));
    rd_kafka_AdminOptions_set_request_timeout(opt, 35000, errstr, sizeof(errstr));
    for (int i = 0; i < ntopics; i++) {
        if (!todo[i])
            continue;
        nt[n] = rd_kafka_NewTopic_new(topics[i], partitions, rf, errstr, sizeof(errstr));
        if (!nt[n]) {
            fprintf(stderr, "prime-topics: %s: %s\n", topics[i], errstr);
            return ntopics;
        }
        rd_kafka_NewTopic_set_config(nt[n], "retention.ms", "-1");
        rd_kafka_NewTopic_set_config(nt[n], "retention.bytes", "-1");
        for (int c = 0; c < nc; c++)
            rd_kafka_NewTopic_set_config(nt[n], ck[c], cv[c]);
        idx[n++] = i;
    }
    rd_kafka_CreateTopics(rk, nt, (size_t)n, opt, q);
    ev = rd_kafka_queue_poll(q, 60000);
    if (!ev || rd_kafka_event_error(ev)) {
        fprintf(stderr, "prime-topics: creating topics: %s (will retry)\n",
                ev ? rd_kafka_event_error_string(ev) : "no answer");
    } else {
        size_t cnt;
        const rd_kafka_topic_result_t **res =
            rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &cnt);
        for (size_t r = 0; r < cnt; r++) {
            const char *name = rd_kafka_topic_result_name(res[r]);
            rd_kafka_resp_err_t e = rd_kafka_topic_result_error(res[r]);
            for (int k = 0; k < n; k++) {
                if (strcmp(topics[idx[k]], name))
                    continue;
                if (e == RD_KAFKA_RESP_ERR_NO_ERROR || e == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
                    printf("%s %s\n", name, e ? "exists" : "created");
                    todo[idx[k]] = 0;
                } else if (e == RD_KAFKA_RESP_ERR_INVALID_REPLICATION_FACTOR ||
                           e == RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT || e == RD_KAFKA_RESP_ERR__TIMED_OUT ||
                           e == RD_KAFKA_RESP_ERR_NOT_CONTROLLER || e == RD_KAFKA_RESP_ERR__TRANSPORT) {
                    /* Brokers still joining: worth another try. */
                } else {
                    fprintf(stderr, "prime-topics: %s: %s\n", name, rd_kafka_topic_result_error_string(res[r]));
                    todo[idx[k]] = 0;
                    fatal++;
                }
            }
        }
    }
    if (ev)
        rd_kafka_event_destroy(ev);
    rd_kafka_NewTopic_destroy_array(nt, (size_t)n);
    rd_kafka_AdminOptions_destroy(opt);
    rd_kafka_queue_destroy(q);
    return fatal;
}

int main(int argc, char **argv)
{
    const char *brokers = getenv("PRIME_BROKERS"), *topics[MAX_TOPICS];
    const char *xk[MAX_KV], *xv[MAX_KV], *ck[MAX_KV], *cv[MAX_KV];
    int partitions = 4, rf = 1, wait_s = 60, nx = 0, nc = 0, ntopics = 0, todo[MAX_TOPICS], left, fatal = 0;
    char errstr[512];
    rd_kafka_conf_t *conf;
    rd_kafka_t *rk;
    prime_registry_t *reg;
    prime_error_t err;
    double deadline;

    for (int i = 1; i < argc; i++) {
        char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!v) {
            fprintf(stderr, "prime-topics: unknown or incomplete argument '%s'\n", a);
            usage(stderr);
            return 2;
        } else if (!strcmp(a, "-b")) {
            brokers = v;
        } else if (!strcmp(a, "-X") || !strcmp(a, "--config")) {
            int is_x = a[1] == 'X';
            if ((is_x ? nx : nc) == MAX_KV) {
                fprintf(stderr, "prime-topics: too many %s\n", a);
                return 2;
            }
            if (is_x ? split_kv(v, a, &xk[nx], &xv[nx]) : split_kv(v, a, &ck[nc], &cv[nc]))
                return 2;
            is_x ? nx++ : nc++;
        } else if (!strcmp(a, "--partitions")) {
            if (parse_int(v, 1, 10000, a, &partitions))
                return 2;
        } else if (!strcmp(a, "--replication-factor")) {
            if (parse_int(v, 1, 32, a, &rf))
                return 2;
        } else if (!strcmp(a, "--wait")) {
            if (parse_int(v, 1, 3600, a, &wait_s))
                return 2;
        } else {
            fprintf(stderr, "prime-topics: unknown argument '%s'\n", a);
            usage(stderr);
            return 2;
        }
        i++;
    }
    if (!brokers || !*brokers) {
        fprintf(stderr, "prime-topics: no brokers: give -b BROKERS or set PRIME_BROKERS\n");
        return 2;
    }

    prime_error_clear(&err);
    if (!(reg = prime_registry_new(&err))) {
        fprintf(stderr, "prime-topics: loading schemas: %s\n", err.message);
        return 1;
    }
    for (size_t i = 0; i < prime_registry_count(reg); i++) {
        const char *t = prime_event_type_topic(prime_registry_at(reg, i));
        int seen = 0;
        for (int k = 0; k < ntopics; k++)
            seen |= !strcmp(topics[k], t);
        if (!seen && ntopics < MAX_TOPICS - 1)
            topics[ntopics++] = t;
    }
    topics[ntopics++] = "prime.dlq";

    conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", brokers, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "prime-topics: -b: %s\n", errstr);
        return 2;
    }
    for (int i = 0; i < nx; i++)
        if (rd_kafka_conf_set(conf, xk[i], xv[i], errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK) {
            fprintf(stderr, "prime-topics: -X %s: %s\n", xk[i], errstr);
            return 2;
        }
    /* rd_kafka_new() takes ownership of conf on success. */
    if (!(rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr)))) {
        fprintf(stderr, "prime-topics: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        return 1;
    }

    deadline = prime_time_monotonic() + wait_s;
    for (int i = 0; i < ntopics; i++)
        todo[i] = 1;
    left = ntopics;
    while (left > 0 && prime_time_monotonic() < deadline) {
        int nb = count_brokers(rk);
        if (nb < rf) {
            /* Not answering yet, or brokers still joining. */
            usleep(200000);
            continue;
        }
        fatal += create(rk, topics, todo, ntopics, partitions, rf, ck, cv, nc);
        left = 0;
        for (int i = 0; i < ntopics; i++)
            left += todo[i];
    }
    if (left > 0)
        fprintf(stderr, "prime-topics: %d topic(s) not created within %d s: is the cluster at %s up, with %d broker(s)?\n",
                left, wait_s, brokers, rf);
    rd_kafka_destroy(rk);
    prime_registry_free(reg);
    return left > 0 || fatal > 0 ? 1 : 0;
}
