/* prime-devbroker: librdkafka's mock Kafka cluster served on loopback, for
 * development, the demo and the tests. Any Kafka client can use it (kcat,
 * confluent-kafka, our workers). State is in memory and gone at exit.
 *
 *   prime-devbroker [--port P] [--brokers N] [--partitions N] [--topic T]...
 *                   [--bootstrap-file F]
 *
 * Creates every topic the event schemas name plus prime.dlq, prints the
 * bootstrap address as the first line of stdout (and to --bootstrap-file,
 * written when the cluster is ready), and runs until SIGTERM or SIGINT.
 *
 * Like any mock cluster it is not a store: each partition keeps its latest
 * 5 MB or 100,000 batches (librdkafka's fixed limits) and drops older ones,
 * as retention would. Reading back a large topic from the beginning needs
 * more partitions, or a consumer that keeps up with the producer. */
#define _GNU_SOURCE
#include "prime/registry.h"

#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_TOPICS 64

/* The mock cluster binds each broker's listener to 127.0.0.1 port 0 and has
 * no option for a fixed port. While next_fixed_port is set (only during
 * rd_kafka_mock_cluster_new(), which creates the listeners synchronously),
 * such binds get consecutive fixed ports instead. Every other bind passes
 * through untouched. */
static int next_fixed_port;

__attribute__((visibility("default"))) int bind(int fd, const struct sockaddr *addr, socklen_t len)
{
    static int (*real_bind)(int, const struct sockaddr *, socklen_t);
    struct sockaddr_in sin;

    if (!real_bind)
        real_bind = (int (*)(int, const struct sockaddr *, socklen_t))dlsym(RTLD_NEXT, "bind");
    if (next_fixed_port && addr && addr->sa_family == AF_INET && len >= (socklen_t)sizeof(sin)) {
        memcpy(&sin, addr, sizeof(sin));
        if (sin.sin_port == 0 && sin.sin_addr.s_addr == htonl(INADDR_LOOPBACK)) {
            sin.sin_port = htons((uint16_t)next_fixed_port++);
            return real_bind(fd, (const struct sockaddr *)&sin, sizeof(sin));
        }
    }
    return real_bind(fd, addr, len);
}

/* librdkafka 2.0's mock cluster aborts in its own cleanup when a listener
 * cannot bind, so a taken port is found here first and reported. */
static int port_free(int port)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                              .sin_addr = {.s_addr = htonl(INADDR_LOOPBACK)}};
    int on = 1, ok, fd = socket(AF_INET, SOCK_STREAM, 0);

    if (fd < 0)
        return 0;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)); /* as the mock does */
    ok = bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0;
    close(fd);
    return ok;
}

static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    if (level <= 4) /* warnings and worse */
        fprintf(stderr, "prime-devbroker: %s: %s\n", fac, buf);
}

static void usage(FILE *out)
{
    fputs("usage: prime-devbroker [--port P] [--brokers N] [--partitions N] [--topic T]... "
          "[--bootstrap-file F]\n"
          "  --port P          first broker's port on 127.0.0.1 (0: any free port; default 0)\n"
          "  --brokers N       brokers in the cluster (default 1)\n"
          "  --partitions N    partitions per topic (default 4)\n"
          "  --topic T         an extra topic to create (repeatable)\n"
          "  --bootstrap-file F  write the bootstrap address to F once ready\n",
          out);
}

static int parse_int(const char *s, int lo, int hi, const char *what, int *out)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || *end || !*s || v < lo || v > hi) {
        fprintf(stderr, "prime-devbroker: %s: expected an integer from %d to %d, got '%s'\n", what, lo, hi, s);
        return -1;
    }
    *out = (int)v;
    return 0;
}

int main(int argc, char **argv)
{
    int port = 0, brokers = 1, partitions = 4, ntopics = 0, sig;
    const char *topics[MAX_TOPICS], *bootstrap_file = NULL, *bootstraps;
    char errstr[512];
    rd_kafka_conf_t *conf;
    rd_kafka_t *rk;
    rd_kafka_mock_cluster_t *mcluster;
    prime_registry_t *reg;
    prime_error_t err;
    sigset_t sigs;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--port") && v) {
            if (parse_int(v, 0, 65535, "--port", &port))
                return 2;
            i++;
        } else if (!strcmp(a, "--brokers") && v) {
            if (parse_int(v, 1, 16, "--brokers", &brokers))
                return 2;
            i++;
        } else if (!strcmp(a, "--partitions") && v) {
            if (parse_int(v, 1, 1024, "--partitions", &partitions))
                return 2;
            i++;
        } else if (!strcmp(a, "--topic") && v) {
            if (ntopics == MAX_TOPICS - 16) {
                fprintf(stderr, "prime-devbroker: too many --topic\n");
                return 2;
            }
            topics[ntopics++] = v;
            i++;
        } else if (!strcmp(a, "--bootstrap-file") && v) {
            bootstrap_file = v;
            i++;
        } else {
            fprintf(stderr, "prime-devbroker: unknown or incomplete argument '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (port && port + brokers - 1 > 65535) {
        fprintf(stderr, "prime-devbroker: --port %d leaves no room for %d brokers\n", port, brokers);
        return 2;
    }

    for (int i = 0; port && i < brokers; i++)
        if (!port_free(port + i)) {
            fprintf(stderr, "prime-devbroker: cannot start the mock cluster: port %d on 127.0.0.1 is in use\n",
                    port + i);
            return 1;
        }

    prime_error_clear(&err);
    if (!(reg = prime_registry_new(&err))) {
        fprintf(stderr, "prime-devbroker: loading schemas: %s\n", err.message);
        return 1;
    }

    /* Signals are taken with sigwait() below; block them before librdkafka
     * starts its threads so that none of those threads receives them. */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);

    conf = rd_kafka_conf_new();
    rd_kafka_conf_set_log_cb(conf, log_cb);
    if (rd_kafka_conf_set(conf, "log.connection.close", "false", errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "prime-devbroker: %s\n", errstr);
        return 1;
    }
    /* rd_kafka_new() takes ownership of conf. */
    if (!(rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr)))) {
        fprintf(stderr, "prime-devbroker: %s\n", errstr);
        return 1;
    }
    next_fixed_port = port;
    mcluster = rd_kafka_mock_cluster_new(rk, brokers);
    next_fixed_port = 0;
    if (!mcluster) {
        fprintf(stderr, "prime-devbroker: cannot start the mock cluster%s%d%s\n", port ? " (is port " : "",
                port, port ? " or a following one in use?)" : "");
        rd_kafka_destroy(rk);
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
    for (int i = 0; i < ntopics; i++) {
        rd_kafka_resp_err_t e = rd_kafka_mock_topic_create(mcluster, topics[i], partitions, brokers < 3 ? brokers : 3);
        if (e && e != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
            fprintf(stderr, "prime-devbroker: creating %s: %s\n", topics[i], rd_kafka_err2str(e));
            return 1;
        }
    }

    bootstraps = rd_kafka_mock_cluster_bootstraps(mcluster);
    printf("%s\n", bootstraps);
    fflush(stdout);
    if (bootstrap_file) {
        char tmp[4096];
        FILE *f;
        snprintf(tmp, sizeof(tmp), "%s.tmp", bootstrap_file);
        /* Written then renamed, so a reader never sees half an address. */
        if (!(f = fopen(tmp, "w")) || fprintf(f, "%s\n", bootstraps) < 0 || fclose(f) != 0 ||
            rename(tmp, bootstrap_file) != 0) {
            fprintf(stderr, "prime-devbroker: writing %s: %s\n", bootstrap_file, strerror(errno));
            return 1;
        }
    }
    fprintf(stderr, "prime-devbroker: %d broker(s) at %s, %d topics of %d partitions; SIGTERM stops it\n",
            brokers, bootstraps, ntopics, partitions);
    /* librdkafka's mock keeps at most 5 MB or 100,000 batches a partition
     * and drops the oldest past that, and 2.0 offers no setting for it. */
    fprintf(stderr, "prime-devbroker: in memory; each partition keeps its latest 5 MB (or 100000 batches), "
                    "older batches are dropped as by retention\n");

    do {
        if (sigwait(&sigs, &sig) != 0)
            break;
    } while (sig != SIGINT && sig != SIGTERM);

    rd_kafka_mock_cluster_destroy(mcluster);
    rd_kafka_destroy(rk);
    prime_registry_free(reg);
    if (bootstrap_file)
        remove(bootstrap_file);
    fprintf(stderr, "prime-devbroker: stopped\n");
    return 0;
}
