/* Prometheus text exposition of the worker's counters, over libmicrohttpd. */
#include "metrics.h"
#include "prime/buf.h"
#include "prime/log.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const double bucket_bounds[METRICS_BUCKETS] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 1e300};

struct metrics_server {
    struct MHD_Daemon *daemon;
};

void metrics_init(metrics_t *m, const char *worker)
{
    memset(m, 0, sizeof(*m));
    m->worker = worker;
    pthread_mutex_init(&m->lock, NULL);
}

uint64_t metrics_now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

int64_t metrics_relay_stuck_for(metrics_t *m)
{
    uint64_t since;

    if (!atomic_load(&m->relay_pending))
        return 0;
    since = (metrics_now_ms() - atomic_load(&m->relay_progress_ms)) / 1000;
    return since > (uint64_t)m->stall_seconds ? (int64_t)since : 0;
}

void metrics_observe_batch(metrics_t *m, double seconds)
{
    for (int i = 0; i < METRICS_BUCKETS; i++)
        if (seconds <= bucket_bounds[i])
            atomic_fetch_add(&m->latency_bucket[i], 1);
    atomic_fetch_add(&m->latency_us_sum, (uint_fast64_t)(seconds * 1e6));
    atomic_fetch_add(&m->batches, 1);
}

void metrics_set_fault(metrics_t *m, const char *why)
{
    pthread_mutex_lock(&m->lock);
    snprintf(m->fault, sizeof(m->fault), "%s", why ? why : "");
    pthread_mutex_unlock(&m->lock);
}

void metrics_set_relay_down(metrics_t *m, const char *why)
{
    pthread_mutex_lock(&m->lock);
    snprintf(m->relay_down, sizeof(m->relay_down), "%s", why ? why : "");
    pthread_mutex_unlock(&m->lock);
}

void metrics_set_lag(metrics_t *m, int n, const char *const *topics, const int32_t *partitions, const int64_t *lags)
{
    pthread_mutex_lock(&m->lock);
    m->nlag = n < METRICS_MAX_PARTITIONS ? n : METRICS_MAX_PARTITIONS;
    for (int i = 0; i < m->nlag; i++) {
        snprintf(m->lag[i].topic, sizeof(m->lag[i].topic), "%s", topics[i]);
        m->lag[i].partition = partitions[i];
        m->lag[i].lag = lags[i];
    }
    pthread_mutex_unlock(&m->lock);
}

/* One Prometheus counter of the worker, with its help and type lines. */
static void counter(prime_buf_t *b, const char *name, const char *help, const char *worker, uint_fast64_t value)
{
    prime_buf_printf(b, "# HELP %s %s\n# TYPE %s counter\n%s{worker=\"%s\"} %llu\n", name, help, name, name, worker,
                     (unsigned long long)value);
}

static void render(metrics_t *m, prime_buf_t *b)
{
    const char *w = m->worker;
    uint_fast64_t count = atomic_load(&m->batches);

    counter(b, "prime_events_applied_total", "Events applied to the database.", w, atomic_load(&m->applied));
    counter(b, "prime_records_consumed_total", "Records consumed and committed, dead letters included.", w,
            atomic_load(&m->records));
    counter(b, "prime_dead_letters_total", "Records sent to prime.dlq.", w, atomic_load(&m->dead_letters));
    counter(b, "prime_records_skipped_total",
            "Records passed over unapplied: the stored offset was past the log's end, or retention deleted them.", w,
            atomic_load(&m->skipped));
    counter(b, "prime_retries_total", "Batches abandoned and consumed again after a database failure.", w,
            atomic_load(&m->retries));
    prime_buf_printf(b, "# HELP prime_producer_fatal_errors_total Idempotent producers that failed for good "
                        "(rd_kafka_fatal_error) and were made anew.\n# TYPE prime_producer_fatal_errors_total counter\n"
                        "prime_producer_fatal_errors_total{worker=\"%s\",producer=\"dead-letter\"} %llu\n"
                        "prime_producer_fatal_errors_total{worker=\"%s\",producer=\"outbox\"} %llu\n",
                     w, (unsigned long long)atomic_load(&m->dlq_fatal_errors), w,
                     (unsigned long long)atomic_load(&m->relay_fatal_errors));
    prime_buf_printf(b, "# HELP prime_batch_seconds Time to apply and commit one batch.\n"
                        "# TYPE prime_batch_seconds histogram\n");
    for (int i = 0; i < METRICS_BUCKETS; i++) {
        if (i == METRICS_BUCKETS - 1)
            prime_buf_printf(b, "prime_batch_seconds_bucket{worker=\"%s\",le=\"+Inf\"} %llu\n", w,
                             (unsigned long long)atomic_load(&m->latency_bucket[i]));
        else
            prime_buf_printf(b, "prime_batch_seconds_bucket{worker=\"%s\",le=\"%g\"} %llu\n", w, bucket_bounds[i],
                             (unsigned long long)atomic_load(&m->latency_bucket[i]));
    }
    prime_buf_printf(b, "prime_batch_seconds_sum{worker=\"%s\"} %.6f\nprime_batch_seconds_count{worker=\"%s\"} %llu\n", w,
                     (double)atomic_load(&m->latency_us_sum) / 1e6, w, (unsigned long long)count);
    prime_buf_printf(b, "# HELP prime_consumer_lag Records in the partition not yet committed by this worker.\n"
                        "# TYPE prime_consumer_lag gauge\n");
    pthread_mutex_lock(&m->lock);
    for (int i = 0; i < m->nlag; i++)
        prime_buf_printf(b, "prime_consumer_lag{worker=\"%s\",topic=\"%s\",partition=\"%d\"} %lld\n", w, m->lag[i].topic,
                         (int)m->lag[i].partition, (long long)m->lag[i].lag);
    pthread_mutex_unlock(&m->lock);
    prime_buf_printf(b, "# HELP prime_outbox_backlog_bytes Bytes of derived events in the group's outbox, not yet relayed.\n"
                        "# TYPE prime_outbox_backlog_bytes gauge\nprime_outbox_backlog_bytes{worker=\"%s\"} %lld\n",
                     w, (long long)atomic_load(&m->outbox_backlog));
    prime_buf_printf(b, "# HELP prime_outbox_relay_stuck_seconds Seconds the relay has gone without progress, rows waiting "
                        "(0 until --stall-seconds).\n# TYPE prime_outbox_relay_stuck_seconds gauge\n"
                        "prime_outbox_relay_stuck_seconds{worker=\"%s\"} %lld\n",
                     w, (long long)metrics_relay_stuck_for(m));
    pthread_mutex_lock(&m->lock);
    int fault = m->fault[0] != '\0';
    pthread_mutex_unlock(&m->lock);
    prime_buf_printf(b, "# HELP prime_up 1 when the database is reachable, the consumer is running and no "
                        "environment fault holds the batches.\n"
                        "# TYPE prime_up gauge\nprime_up{worker=\"%s\"} %d\n",
                     w, atomic_load(&m->db_up) && atomic_load(&m->consuming) && !fault);
}

/* 503 with the first reason that applies; 200 otherwise, saying so when
 * batches are waiting for the relay (flow control, not a fault). */
static void health(metrics_t *m, prime_buf_t *b, unsigned *status)
{
    int64_t stuck = metrics_relay_stuck_for(m);

    char fault[sizeof(m->fault)], relay_down[sizeof(m->relay_down)];

    /* A fault first: each retry reconnects, and "unreachable" for that
     * instant would hide why. */
    pthread_mutex_lock(&m->lock);
    memcpy(fault, m->fault, sizeof(fault));
    memcpy(relay_down, m->relay_down, sizeof(relay_down));
    pthread_mutex_unlock(&m->lock);
    *status = MHD_HTTP_SERVICE_UNAVAILABLE;
    if (fault[0])
        prime_buf_printf(b, "environment fault, retrying: %s\n", fault);
    else if (!atomic_load(&m->db_up))
        prime_buf_puts(b, "database unreachable\n");
    else if (!atomic_load(&m->consuming))
        prime_buf_puts(b, "consumer not running\n");
    else if (relay_down[0])
        prime_buf_printf(b, "outbox relay down: its producer failed for good (%s); made anew, nothing confirmed "
                            "since\n", relay_down);
    else if (stuck)
        prime_buf_printf(b, "outbox relay stuck: nothing confirmed by Kafka for %lld s, %lld bytes waiting\n",
                         (long long)stuck, (long long)atomic_load(&m->outbox_backlog));
    else {
        *status = MHD_HTTP_OK;
        if (atomic_load(&m->writers_waiting))
            prime_buf_printf(b, "ok; batches waiting for the outbox relay: backlog %lld bytes over %lld\n",
                             (long long)atomic_load(&m->outbox_backlog), (long long)m->outbox_max);
        else
            prime_buf_puts(b, "ok\n");
    }
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                              const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
    metrics_t *m = cls;
    struct MHD_Response *resp;
    prime_buf_t body;
    unsigned status = MHD_HTTP_OK;
    enum MHD_Result ret;

    (void)version;
    (void)upload_data;
    (void)upload_data_size;
    (void)con_cls;
    prime_buf_init(&body, 1 << 20);
    if (strcmp(method, "GET")) {
        status = MHD_HTTP_METHOD_NOT_ALLOWED;
        prime_buf_puts(&body, "GET only\n");
    } else if (!strcmp(url, "/metrics")) {
        render(m, &body);
    } else if (!strcmp(url, "/healthz")) {
        health(m, &body, &status);
    } else {
        status = MHD_HTTP_NOT_FOUND;
        prime_buf_puts(&body, "not found: try /metrics or /healthz\n");
    }
    if (body.failed) {
        prime_buf_free(&body);
        return MHD_NO;
    }
    resp = MHD_create_response_from_buffer(body.len, body.data, MHD_RESPMEM_MUST_COPY);
    MHD_add_response_header(resp, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
    ret = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    prime_buf_free(&body);
    return ret;
}

metrics_server_t *metrics_server_start(metrics_t *m, int port)
{
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                               .sin_addr = {.s_addr = htonl(INADDR_LOOPBACK)}};
    metrics_server_t *s = calloc(1, sizeof(*s));

    if (!s)
        return NULL;
    s->daemon = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, (uint16_t)port, NULL, NULL, handle, m,
                                 MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr, MHD_OPTION_END);
    if (!s->daemon) {
        prime_log(PRIME_LOG_ERROR, "cannot serve metrics", "port=%d", port);
        free(s);
        return NULL;
    }
    prime_log(PRIME_LOG_INFO, "serving /metrics and /healthz", "address=127.0.0.1:%d", port);
    return s;
}

void metrics_server_stop(metrics_server_t *s)
{
    if (!s)
        return;
    MHD_stop_daemon(s->daemon);
    free(s);
}
