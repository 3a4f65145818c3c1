#include "prime/worker.h"
#include "kafka_conf.h"
#include "prime/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *out, const char *name, const prime_worker_option_t *options)
{
    fprintf(out,
            "usage: prime-%s [-b BROKERS] [-X key=value]... [--db CONNINFO] [--group GROUP] [--topics T1,T2]\n"
            "                [--batch-max N] [--linger-ms MS] [--metrics-port PORT]\n"
            "  -b BROKERS        Kafka bootstrap servers (default: $PRIME_BROKERS)\n"
            "  -X key=value      a librdkafka property, for every Kafka client (TLS, SASL)\n"
            "  --db CONNINFO     PostgreSQL connection string (default: $PRIME_DB, else the PG* variables)\n"
            "  --group GROUP     consumer group (default: prime-%s)\n"
            "  --topics T1,T2    topics to consume (default: the worker's own)\n"
            "  --batch-max N     records per transaction (default 10000)\n"
            "  --linger-ms MS    longest wait to fill a batch (default 100)\n"
            "  --metrics-port P  serve /metrics and /healthz on 127.0.0.1:P (default: off)\n"
            "  --memory-max-mb MB    records fetched, not yet committed, held at most (default 128)\n"
            "  --outbox-chunk-mb MB  outbox bytes relayed per transaction (default 8)\n"
            "  --outbox-max-mb MB    outbox backlog beyond which batches wait for the relay (default 256)\n"
            "  --stall-seconds S     relay without progress this long: /healthz 503 (default 30)\n"
            "  --replay-until FILE  replay mode: stop at the offsets in FILE (\"topic partition offset\" a line),\n"
            "                    emit nothing, exit 0 when there (prime-replay runs it so)\n"
            "  --allow-gaps      replay mode: log a gap in a partition's offsets and go on (default: stop)\n",
            name, name);
    for (size_t k = 0; options && options[k].flag; k++)
        fprintf(out, "  %s N  %s\n", options[k].flag, options[k].help);
    fprintf(out, "SIGTERM or SIGINT stops it cleanly.\n");
}

static int number(const char *flag, const char *v, int lo, int hi, int *out)
{
    char *end;
    long n;

    errno = 0;
    n = v ? strtol(v, &end, 10) : 0;
    if (!v || errno || *end || end == v || n < lo || n > hi) {
        fprintf(stderr, "%s: expected an integer from %d to %d, got '%s'\n", flag, lo, hi, v ? v : "");
        return -1;
    }
    *out = (int)n;
    return 0;
}

int prime_worker_conf_parse(prime_worker_conf_t *conf, const char *name, const char *const *default_topics,
                            int argc, char **argv)
{
    return prime_worker_conf_parse_options(conf, name, default_topics, NULL, argc, argv);
}

/* The worker's option named a, or NULL. */
static const prime_worker_option_t *option_named(const prime_worker_option_t *options, const char *a)
{
    for (size_t k = 0; options && options[k].flag; k++)
        if (!strcmp(options[k].flag, a))
            return &options[k];
    return NULL;
}

int prime_worker_conf_parse_options(prime_worker_conf_t *conf, const char *name, const char *const *default_topics,
                                    const prime_worker_option_t *options, int argc, char **argv)
{
    const prime_worker_option_t *own;

    static char group[128];

    memset(conf, 0, sizeof(*conf));
    conf->name = name;
    conf->brokers = getenv("PRIME_BROKERS");
    conf->db = getenv("PRIME_DB");
    snprintf(group, sizeof(group), "prime-%s", name);
    conf->group = group;
    conf->batch_max = 10000;
    conf->linger_ms = 100;
    conf->memory_max_mb = 128;
    conf->outbox_chunk_mb = 8;
    conf->outbox_max_mb = 256;
    conf->stall_seconds = 30;
    for (int i = 0; default_topics && default_topics[i] && i < PRIME_WORKER_MAX_TOPICS; i++)
        conf->topics[conf->ntopics++] = default_topics[i];

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout, name, options);
            return -1;
        } else if (!strcmp(a, "-b") && v) {
            conf->brokers = v;
        } else if (!strcmp(a, "--db") && v) {
            conf->db = v;
        } else if (!strcmp(a, "--group") && v) {
            conf->group = v;
        } else if (!strcmp(a, "-X") && v) {
            char *eq = strchr(v, '=');
            if (!eq || eq == v || conf->nx == PRIME_WORKER_MAX_X) {
                fprintf(stderr, "prime-%s: -X expects key=value, got '%s'\n", name, v);
                return 2;
            }
            *eq = '\0';
            conf->x_keys[conf->nx] = v;
            conf->x_values[conf->nx++] = eq + 1;
        } else if (!strcmp(a, "--topics") && v) {
            conf->ntopics = 0;
            for (char *t = strtok(v, ","); t; t = strtok(NULL, ","))
                if (conf->ntopics < PRIME_WORKER_MAX_TOPICS)
                    conf->topics[conf->ntopics++] = t;
        } else if (!strcmp(a, "--batch-max") && v) {
            if (number(a, v, 1, 1000000, &conf->batch_max))
                return 2;
        } else if (!strcmp(a, "--linger-ms") && v) {
            if (number(a, v, 0, 600000, &conf->linger_ms))
                return 2;
        } else if (!strcmp(a, "--metrics-port") && v) {
            if (number(a, v, 0, 65535, &conf->metrics_port))
                return 2;
        } else if ((own = option_named(options, a)) && v) {
            if (number(a, v, own->min, own->max, own->value))
                return 2;
        } else if (!strcmp(a, "--memory-max-mb") && v) {
            if (number(a, v, 8, 1048576, &conf->memory_max_mb))
                return 2;
        } else if (!strcmp(a, "--outbox-chunk-mb") && v) {
            if (number(a, v, 1, 1024, &conf->outbox_chunk_mb))
                return 2;
        } else if (!strcmp(a, "--outbox-max-mb") && v) {
            if (number(a, v, 1, 1048576, &conf->outbox_max_mb))
                return 2;
        } else if (!strcmp(a, "--stall-seconds") && v) {
            if (number(a, v, 1, 86400, &conf->stall_seconds))
                return 2;
        } else if (!strcmp(a, "--allow-gaps")) {
            conf->allow_gaps = 1;
            continue; /* takes no value */
        } else if (!strcmp(a, "--replay-until") && v) {
            conf->replay_until = v;
        } else if (!strcmp(a, "--max-batches") && v) {
            if (number(a, v, 0, 1000000000, &conf->max_batches))
                return 2;
        } else {
            fprintf(stderr, "prime-%s: unknown or incomplete argument '%s'\n", name, a);
            usage(stderr, name, options);
            return 2;
        }
        i++;
    }
    if (!conf->brokers || !*conf->brokers) {
        fprintf(stderr, "prime-%s: no brokers: give -b BROKERS or set PRIME_BROKERS\n", name);
        return 2;
    }
    if (conf->allow_gaps && !conf->replay_until) {
        fprintf(stderr, "prime-%s: --allow-gaps is for a replay (--replay-until FILE)\n", name);
        return 2;
    }
    if (conf->ntopics == 0) {
        fprintf(stderr, "prime-%s: no topics to consume (--topics)\n", name);
        return 2;
    }
    return 0;
}

int prime_worker_conf_each_kafka_prop(const prime_worker_conf_t *conf, prime_kafka_prop_fn set, void *target)
{
    int rc = set(target, "bootstrap.servers", conf->brokers);
    for (int i = 0; !rc && i < conf->nx; i++)
        rc = set(target, conf->x_keys[i], conf->x_values[i]);
    return rc;
}

static int set_rd_kafka_conf(void *target, const char *key, const char *value)
{
    char errstr[512];
    if (rd_kafka_conf_set(target, key, value, errstr, sizeof(errstr)) == RD_KAFKA_CONF_OK)
        return 0;
    /* The key only: a refused sasl.password must not reach the log. */
    prime_log(PRIME_LOG_ERROR, "bad Kafka property", "key=%s error=\"%s\"", key,
              strstr(key, "password") || strstr(key, "secret") ? "refused" : errstr);
    return -1;
}

int worker_kafka_conf_apply(const prime_worker_conf_t *conf, rd_kafka_conf_t *kc)
{
    return prime_worker_conf_each_kafka_prop(conf, set_rd_kafka_conf, kc);
}
