/* Internal to the worker runtime: the counters /metrics shows. */
#ifndef PRIME_METRICS_H
#define PRIME_METRICS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define METRICS_BUCKETS 11
#define METRICS_MAX_PARTITIONS 256

typedef struct metrics {
    const char *worker;
    atomic_uint_fast64_t applied, batches, dead_letters, retries, records;
    atomic_uint_fast64_t skipped; /* records passed over: stored offset past the log, or lost to retention */
    atomic_uint_fast64_t latency_bucket[METRICS_BUCKETS]; /* cumulative counts, Prometheus style */
    atomic_uint_fast64_t latency_us_sum;
    atomic_bool db_up, consuming;
    /* The outbox relay (outbox.c) and the bounds /healthz judges by. */
    atomic_bool relay_pending;              /* rows the relay has yet to see confirmed */
    atomic_uint_fast64_t relay_progress_ms; /* monotonic ms of its last progress */
    atomic_int_fast64_t outbox_backlog;     /* bytes in the group's outbox: measured, plus written since */
    atomic_bool writers_waiting;            /* batches wait for the relay (backlog over outbox_max) */
    int64_t outbox_max;                     /* bytes */
    int stall_seconds;
    /* Idempotent producers that failed for good and were made anew (producer.c). */
    atomic_uint_fast64_t dlq_fatal_errors, relay_fatal_errors;
    pthread_mutex_t lock; /* guards the lag table */
    struct {
        char topic[128];
        int32_t partition;
        int64_t lag;
    } lag[METRICS_MAX_PARTITIONS];
    int nlag;
    char fault[256]; /* an environment fault the worker waits on ("" when none); under lock */
    char relay_down[256]; /* the relay's producer failed for good, nothing confirmed since ("" when not); under lock */
} metrics_t;

typedef struct metrics_server metrics_server_t;

void metrics_init(metrics_t *m, const char *worker);
void metrics_observe_batch(metrics_t *m, double seconds);
/* Milliseconds of CLOCK_MONOTONIC, the clock of relay_progress_ms. */
uint64_t metrics_now_ms(void);
/* Seconds the relay has gone without progress while rows wait; 0 when it
 * is not stuck (no more than stall_seconds). */
int64_t metrics_relay_stuck_for(metrics_t *m);
/* Sets (why) or clears (NULL) the environment fault /healthz reports. */
void metrics_set_fault(metrics_t *m, const char *why);
/* Sets (why) or clears (NULL) the relay's failed producer /healthz reports. */
void metrics_set_relay_down(metrics_t *m, const char *why);
/* Replaces the lag table. */
void metrics_set_lag(metrics_t *m, int n, const char *const *topics, const int32_t *partitions, const int64_t *lags);
/* Serves /metrics and /healthz on 127.0.0.1:port from a thread of its own;
 * NULL (and a logged error) if the port cannot be had. */
metrics_server_t *metrics_server_start(metrics_t *m, int port);
void metrics_server_stop(metrics_server_t *s);

#endif
