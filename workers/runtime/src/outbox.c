#include "outbox.h"
#include "producer.h"
#include "prime/log.h"
#include "prime/pg.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Order across the workers of a group. A writer holds the group's writer
 * lock shared for the rest of its transaction from the moment it writes to
 * the outbox. The relay takes it exclusively for an instant (the barrier):
 * every outbox row numbered up to the sequence's value read then belongs to
 * a transaction that has ended, so relaying up to that number never
 * overtakes a row still to be committed. Writers wait only for that instant,
 * never for Kafka. One relay per group at a time (the relay lock). */
#define WRITER_LOCK "hashtext('prime_pipeline.outbox ' || $1)"
#define RELAY_LOCK "hashtext('prime_pipeline.outbox relay ' || $1)"
/* A relay transaction takes at most 5000 rows (the LIMIT below) and --outbox-chunk-mb bytes. */
#define STOP_GRACE_MS 2000 /* after a stop is asked: time left to relay, then what is unconfirmed stays */
#define WAIT_MS 100        /* each wait for Kafka, between looks at the stop flag and the clock */

prime_errcode_t outbox_write(PGconn *conn, const char *group, const prime_emit_t *msgs, size_t n, prime_error_t *err)
{
    prime_buf_t arrays[4]; /* topic, key, value (bytea text), event type */
    const char *params[5];
    prime_errcode_t rc = PRIME_OK;

    if (!n)
        return PRIME_OK;
    prime_pg_arrays_begin(arrays, 4);
    for (size_t i = 0; i < n && !rc; i++) {
        size_t len;
        unsigned char *value = PQescapeByteaConn(conn, msgs[i].value, msgs[i].len, &len);
        if (!value) {
            rc = prime_error_set(err, PRIME_ERR_NOMEM, NULL, "out of memory writing the outbox");
            break;
        }
        prime_pg_array_add(&arrays[0], msgs[i].topic);
        prime_pg_array_add(&arrays[1], msgs[i].key);
        prime_pg_array_add(&arrays[2], (const char *)value);
        prime_pg_array_add(&arrays[3], msgs[i].event_type);
        PQfreemem(value);
    }
    if (!prime_pg_arrays_end(arrays, 4, params + 1) && !rc)
        rc = prime_error_set(err, PRIME_ERR_NOMEM, NULL, "out of memory writing the outbox");
    params[0] = group;
    if (!rc)
        rc = prime_pg_exec_params(conn,
                                  "WITH l AS (SELECT pg_advisory_xact_lock_shared(" WRITER_LOCK ")) "
                                  "INSERT INTO prime_pipeline.outbox (group_id, topic, record_key, record_value, "
                                  "event_type) SELECT $1, t, convert_to(k, 'UTF8'), v, e FROM l, "
                                  "unnest($2::text[], $3::text[], $4::bytea[], $5::text[]) WITH ORDINALITY "
                                  "AS x(t, k, v, e, ord) ORDER BY ord",
                                  5, params, "writing the outbox", err);
    prime_pg_arrays_free(arrays, 4);
    return rc;
}

struct outbox_relay {
    const prime_worker_conf_t *conf;
    metrics_t *metrics;
    producer_t *producer;  /* made anew after a fatal error (relay_renew) */
    PGconn *db;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool kicked;
    atomic_bool stopping;
    atomic_uint_fast64_t stop_by_ms; /* when stopping: the time after which nothing more is waited for */
    /* The chunk in flight; the delivery callback runs on the relay thread
     * (in rd_kafka_poll), so none of this needs a lock. */
    unsigned char *state; /* per row: 0 waiting, 1 confirmed, 2 refused; NULL between chunks */
    int nrows, waiting;
    bool stuck_logged;
    bool down;            /* the producer failed for good; nothing confirmed since (/healthz) */
    bool test_fatal;      /* PRIME_TEST_RELAY_FATAL: a fatal producer error raised at the first chunk */
    uint64_t backlog_at_ms; /* when the backlog was last measured */
};

enum { ROW_WAITING, ROW_CONFIRMED, ROW_REFUSED };

static bool give_up(outbox_relay_t *r)
{
    return atomic_load(&r->stopping) && metrics_now_ms() >= atomic_load(&r->stop_by_ms);
}

static void progress(outbox_relay_t *r)
{
    atomic_store(&r->metrics->relay_progress_ms, metrics_now_ms());
    if (r->down)
        metrics_set_relay_down(r->metrics, NULL);
    r->down = false;
    if (r->stuck_logged)
        prime_log(PRIME_LOG_INFO, "outbox relay moving again", NULL);
    r->stuck_logged = false;
}

/* One wait for Kafka (delivery reports are served here). Logs, once, a
 * relay that has gone --stall-seconds without progress. */
static void wait_kafka(outbox_relay_t *r)
{
    int64_t stuck;

    rd_kafka_poll(producer_kafka(r->producer), WAIT_MS);
    if (!r->stuck_logged && (stuck = metrics_relay_stuck_for(r->metrics))) {
        prime_log(PRIME_LOG_WARN, "outbox relay stuck: Kafka confirms nothing", "seconds=%lld unconfirmed=%d",
                  (long long)stuck, r->waiting);
        r->stuck_logged = true;
    }
}

/* Ends the chunk in flight: what Kafka has not confirmed is purged from the
 * producer (it stays in the outbox), and every delivery report is served
 * before the row states go. */
static void chunk_end(outbox_relay_t *r)
{
    if (r->waiting) {
        rd_kafka_t *rk = producer_kafka(r->producer);
        rd_kafka_purge(rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        for (int i = 0; i < 50 && rd_kafka_outq_len(rk) > 0; i++)
            rd_kafka_poll(rk, WAIT_MS);
    }
    free(r->state);
    r->state = NULL;
    r->nrows = r->waiting = 0;
}

/* The bytes in the group's outbox, at most once a second (the writers add
 * what they commit in between). */
static void measure_backlog(outbox_relay_t *r)
{
    const char *params[1] = {r->conf->group};
    PGresult *res;
    uint64_t now = metrics_now_ms();

    if (now - r->backlog_at_ms < 1000)
        return;
    r->backlog_at_ms = now;
    res = PQexecParams(r->db,
                       "SELECT coalesce(sum(octet_length(record_value) + octet_length(record_key)), 0) "
                       "FROM prime_pipeline.outbox WHERE group_id = $1",
                       1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) == PGRES_TUPLES_OK)
        atomic_store(&r->metrics->outbox_backlog, atoll(PQgetvalue(res, 0, 0)));
    PQclear(res);
}

/* seq is int8, big-endian in binary results. */
static void seq_text(const PGresult *res, int row, char out[24])
{
    const unsigned char *p = (const unsigned char *)PQgetvalue(res, row, 0);
    unsigned long long seq = 0;
    for (int b = 0; b < 8; b++)
        seq = seq << 8 | p[b];
    snprintf(out, 24, "%llu", seq);
}

/* One chunk: read up to --outbox-chunk-mb, send, wait for Kafka's
 * confirmations, delete the rows confirmed from the first on, commit.
 * Never blocks in librdkafka: a full producer queue is waited out by
 * serving delivery reports, and every wait looks at the stop flag. Returns
 * the rows relayed; 0 when there was nothing (or another worker relays);
 * -1 after a failure or an abandoned chunk (logged), the rest left for the
 * next try. */
static int relay_chunk(outbox_relay_t *r)
{
    PGconn *conn = r->db;
    const char *params[3] = {r->conf->group, NULL, NULL};
    PGresult *res = NULL;
    prime_error_t err;
    int rows = -1, confirmed = 0;
    char upto[24], last[24], chunk_bytes[24];
    static const char *const barrier[] = {
        "SELECT pg_advisory_lock(" WRITER_LOCK ")",
        "SELECT coalesce(pg_sequence_last_value(pg_get_serial_sequence('prime_pipeline.outbox', 'seq')::regclass), 0)",
        "SELECT pg_advisory_unlock(" WRITER_LOCK ")",
    };

    prime_error_clear(&err);
    for (int k = 0; k < 3; k++) {
        res = PQexecParams(conn, barrier[k], k == 1 ? 0 : 1, NULL, params, NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
            prime_pg_error(conn, res, "reading the outbox's committed end", NULL, &err);
            PQclear(res);
            if (k > 0) /* the session's lock must not outlive the failure */
                PQclear(PQexecParams(conn, barrier[2], 1, NULL, params, NULL, NULL, 0));
            res = NULL;
            goto fail;
        }
        if (k == 1)
            snprintf(upto, sizeof(upto), "%s", PQgetvalue(res, 0, 0));
        PQclear(res);
    }
    res = NULL;
    if (prime_pg_exec(conn, "BEGIN", "BEGIN", &err))
        goto fail;
    res = PQexecParams(conn, "SELECT pg_try_advisory_xact_lock(" RELAY_LOCK ")", 1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        prime_pg_error(conn, res, "locking the outbox", NULL, &err);
        goto fail;
    }
    if (strcmp(PQgetvalue(res, 0, 0), "t")) { /* another worker of the group is relaying */
        PQclear(res);
        prime_pg_exec(conn, "COMMIT", "COMMIT", &err);
        return 0;
    }
    PQclear(res);
    /* Rows in order while the bytes before each are under the chunk's
     * size: a row larger than a chunk goes alone. octet_length() reads the
     * size without fetching a TOASTed value. */
    snprintf(chunk_bytes, sizeof(chunk_bytes), "%lld", (long long)r->conf->outbox_chunk_mb << 20);
    params[1] = upto;
    params[2] = chunk_bytes;
    res = PQexecParams(conn,
                       "SELECT seq, topic, record_key, record_value, event_type FROM ("
                       "SELECT seq, topic, record_key, record_value, event_type, "
                       "sum(octet_length(record_value) + octet_length(record_key)) OVER (ORDER BY seq ROWS UNBOUNDED "
                       "PRECEDING) - octet_length(record_value) - octet_length(record_key) AS before "
                       "FROM prime_pipeline.outbox WHERE group_id = $1 AND seq <= $2 ORDER BY seq LIMIT 5000) c "
                       "WHERE before < $3::bigint ORDER BY seq",
                       3, NULL, params, NULL, NULL, 1 /* binary: the bytes as they are */);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        prime_pg_error(conn, res, "reading the outbox", NULL, &err);
        goto fail;
    }
    rows = PQntuples(res);
    if (!rows) {
        PQclear(res);
        prime_pg_exec(conn, "COMMIT", "COMMIT", &err);
        return 0;
    }
    if (!atomic_load(&r->metrics->relay_pending)) { /* work appears: the stall clock starts now */
        atomic_store(&r->metrics->relay_progress_ms, metrics_now_ms());
        atomic_store(&r->metrics->relay_pending, true);
    }
    if (!(r->state = calloc((size_t)rows, 1))) {
        prime_error_set(&err, PRIME_ERR_NOMEM, NULL, "out of memory relaying the outbox");
        goto fail;
    }
    r->nrows = rows;
    for (int i = 0; i < rows && !give_up(r); i++) {
        const char *type = PQgetvalue(res, i, 4);
        rd_kafka_resp_err_t kerr;
        char topic[256];
        snprintf(topic, sizeof(topic), "%.*s", PQgetlength(res, i, 1), PQgetvalue(res, i, 1));
        kerr = rd_kafka_producev(producer_kafka(r->producer), RD_KAFKA_V_TOPIC(topic),
                                 RD_KAFKA_V_KEY(PQgetvalue(res, i, 2), (size_t)PQgetlength(res, i, 2)),
                                 RD_KAFKA_V_VALUE(PQgetvalue(res, i, 3), (size_t)PQgetlength(res, i, 3)),
                                 RD_KAFKA_V_HEADER("prime.event_type", type, PQgetlength(res, i, 4)),
                                 RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_OPAQUE((void *)(intptr_t)i),
                                 RD_KAFKA_V_END);
        if (kerr == RD_KAFKA_RESP_ERR__QUEUE_FULL) { /* room comes as deliveries are confirmed */
            wait_kafka(r);
            i--;
            continue;
        }
        if (kerr) {
            prime_error_set(&err, PRIME_ERR_KAFKA, NULL, "cannot queue an outbox message: %s", rd_kafka_err2str(kerr));
            break;
        }
        r->waiting++;
    }
    if (r->test_fatal) { /* for tests: librdkafka's own way to raise a fatal producer error */
        rd_kafka_test_fatal_error(producer_kafka(r->producer), RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER,
                                  "raised by the test");
        r->test_fatal = false;
    }
    /* A producer that failed for good confirms nothing more: the chunk is
     * left for the next try, on a new producer (relay_all). */
    while (r->waiting && !give_up(r) && !err.message[0] && !producer_failed(r->producer))
        wait_kafka(r);
    while (confirmed < rows && r->state[confirmed] == ROW_CONFIRMED)
        confirmed++;
    if (!err.message[0] && confirmed < rows)
        prime_error_set(&err, PRIME_ERR_KAFKA, NULL, "%s: %d of %d outbox messages confirmed by Kafka, in order",
                        give_up(r) ? "stopping" : "refused", confirmed, rows);
    chunk_end(r);
    if (confirmed) {
        seq_text(res, confirmed - 1, last);
        params[1] = last;
        if (prime_pg_exec_params(conn, "DELETE FROM prime_pipeline.outbox WHERE group_id = $1 AND seq <= $2", 2,
                                 params, "emptying the outbox", &err) ||
            prime_pg_exec(conn, "COMMIT", "COMMIT", &err)) {
            /* relayed again next time: the same ids, collapsed by consumers */
            PQclear(res);
            res = NULL;
            goto fail;
        }
    }
    PQclear(res);
    res = NULL;
    if (confirmed < rows)
        goto fail;
    return rows;
fail:
    chunk_end(r);
    PQclear(res);
    if (PQtransactionStatus(conn) != PQTRANS_IDLE)
        prime_pg_exec(conn, "ROLLBACK", "ROLLBACK", NULL);
    {
        char safe[512];
        prime_log(PRIME_LOG_WARN, "outbox not relayed; will retry", "relayed=%d error=\"%s\"", confirmed,
                  prime_log_value(err.message, safe, sizeof(safe)));
    }
    return -1;
}

/* The relay's producer failed for good (a fatal error of an idempotent
 * producer: librdkafka refuses every message from then on, so before this
 * the relay only ever showed as stuck). It is made anew, as the dead-letter
 * producer is; the rows it held are still in the outbox (deleted only once
 * confirmed) and go again, at least once. /healthz reports the relay down
 * until Kafka confirms a row again. -1 when no producer can be made (tried
 * again in a second). */
static int relay_renew(outbox_relay_t *r)
{
    char why[sizeof(r->metrics->relay_down)];
    int rc = producer_renew(r->producer, why, sizeof(why));

    metrics_set_relay_down(r->metrics, why);
    r->down = true;
    return rc;
}

/* Relays chunks until the outbox is empty (or the stop's grace is over);
 * 0, or -1 when something was left for the next try (logged). */
static int relay_all(outbox_relay_t *r)
{
    int rows, total = 0;

    if (producer_failed(r->producer) && relay_renew(r))
        return -1;

    if (!r->db || PQstatus(r->db) != CONNECTION_OK) {
        prime_error_t err;
        PQfinish(r->db);
        prime_error_clear(&err);
        if (!(r->db = prime_pg_connect(r->conf->db, &err)))
            return -1; /* the worker logs the database's absence; retried in a second */
    }
    /* Until a chunk finds nothing: that is when nothing waits. */
    while ((rows = relay_chunk(r)) > 0) {
        total += rows;
        measure_backlog(r);
        if (give_up(r))
            break;
    }
    if (rows == 0) { /* nothing waits (or another worker of the group relays it) */
        atomic_store(&r->metrics->relay_pending, false);
        progress(r);
    }
    measure_backlog(r);
    if (total)
        prime_log(PRIME_LOG_DEBUG, "outbox relayed", "messages=%d", total);
    return rows < 0 ? -1 : 0;
}

static void *relay_main(void *arg)
{
    outbox_relay_t *r = arg;
    bool stopping = false;

    while (!stopping) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 1;
        pthread_mutex_lock(&r->lock);
        while (!r->kicked && !atomic_load(&r->stopping) && pthread_cond_timedwait(&r->wake, &r->lock, &until) == 0)
            ;
        r->kicked = false;
        stopping = atomic_load(&r->stopping);
        pthread_mutex_unlock(&r->lock);
        relay_all(r); /* once more after a stop is asked, within its grace */
    }
    return NULL;
}

static void on_delivery(const rd_kafka_message_t *m, void *opaque)
{
    outbox_relay_t *r = opaque;
    intptr_t i = (intptr_t)m->_private;
    if (!r->state || i < 0 || i >= r->nrows || r->state[i] != ROW_WAITING)
        return; /* a report of an abandoned chunk */
    r->waiting--;
    if (m->err) {
        r->state[i] = ROW_REFUSED;
        if (m->err != RD_KAFKA_RESP_ERR__PURGE_QUEUE && m->err != RD_KAFKA_RESP_ERR__PURGE_INFLIGHT)
            prime_log(PRIME_LOG_WARN, "outbox message not delivered", "error=\"%s\"", rd_kafka_err2str(m->err));
    } else {
        r->state[i] = ROW_CONFIRMED;
        progress(r);
    }
}

outbox_relay_t *outbox_relay_start(const prime_worker_conf_t *conf, metrics_t *metrics)
{
    outbox_relay_t *r = calloc(1, sizeof(*r));

    if (!r)
        return NULL;
    r->conf = conf;
    r->metrics = metrics;
    r->test_fatal = getenv("PRIME_TEST_RELAY_FATAL") != NULL;
    if (!(r->producer = producer_new(conf, "outbox", on_delivery, r, &metrics->relay_fatal_errors))) {
        free(r);
        return NULL;
    }
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->wake, NULL);
    atomic_store(&metrics->relay_progress_ms, metrics_now_ms());
    if (pthread_create(&r->thread, NULL, relay_main, r)) {
        prime_log(PRIME_LOG_ERROR, "cannot start the outbox relay", NULL);
        producer_free(r->producer);
        free(r);
        return NULL;
    }
    return r;
}

void outbox_relay_kick(outbox_relay_t *r)
{
    pthread_mutex_lock(&r->lock);
    r->kicked = true;
    pthread_cond_signal(&r->wake);
    pthread_mutex_unlock(&r->lock);
}

void outbox_relay_stop(outbox_relay_t *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->lock);
    atomic_store(&r->stop_by_ms, metrics_now_ms() + STOP_GRACE_MS);
    atomic_store(&r->stopping, true); /* the thread relays once more, within the grace, then returns */
    pthread_cond_signal(&r->wake);
    pthread_mutex_unlock(&r->lock);
    pthread_join(r->thread, NULL);
    rd_kafka_purge(producer_kafka(r->producer), RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT); /* nothing left, normally */
    rd_kafka_flush(producer_kafka(r->producer), 1000);
    producer_free(r->producer);
    PQfinish(r->db);
    pthread_mutex_destroy(&r->lock);
    pthread_cond_destroy(&r->wake);
    free(r);
}
