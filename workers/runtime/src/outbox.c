#include "outbox.h"
#include "kafka_conf.h"
#include "prime/log.h"
#include "prime/pg.h"

#include <pthread.h>
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
#define RELAY_CHUNK 5000 /* rows a relay transaction takes; the LIMIT below */

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
    rd_kafka_t *producer;
    PGconn *db;
    int undelivered; /* messages Kafka refused in this chunk (delivery callback) */
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool kicked, stopping;
};

/* One chunk: read, send, wait for Kafka's confirmation, delete, commit.
 * Returns the rows relayed, or -1. */
static int relay_chunk(PGconn *conn, const char *group, rd_kafka_t *producer, int *undelivered)
{
    const char *params[2] = {group, NULL};
    PGresult *res = NULL;
    prime_error_t err;
    int rows = -1;
    char last[24];

    char upto[24];
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
    params[1] = upto;
    res = PQexecParams(conn,
                       "SELECT seq, topic, record_key, record_value, event_type FROM prime_pipeline.outbox "
                       "WHERE group_id = $1 AND seq <= $2 ORDER BY seq LIMIT 5000",
                       2, NULL, params, NULL, NULL, 1 /* binary: the bytes as they are */);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        prime_pg_error(conn, res, "reading the outbox", NULL, &err);
        goto fail;
    }
    *undelivered = 0;
    for (int i = 0; i < PQntuples(res); i++) {
        const char *type = PQgetvalue(res, i, 4);
        rd_kafka_resp_err_t kerr;
        char topic[256];
        snprintf(topic, sizeof(topic), "%.*s", PQgetlength(res, i, 1), PQgetvalue(res, i, 1));
        kerr = rd_kafka_producev(producer, RD_KAFKA_V_TOPIC(topic),
                                 RD_KAFKA_V_KEY(PQgetvalue(res, i, 2), (size_t)PQgetlength(res, i, 2)),
                                 RD_KAFKA_V_VALUE(PQgetvalue(res, i, 3), (size_t)PQgetlength(res, i, 3)),
                                 RD_KAFKA_V_HEADER("prime.event_type", type, PQgetlength(res, i, 4)),
                                 RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY | RD_KAFKA_MSG_F_BLOCK), RD_KAFKA_V_END);
        if (kerr) {
            prime_error_set(&err, PRIME_ERR_KAFKA, NULL, "cannot queue an outbox message: %s", rd_kafka_err2str(kerr));
            goto fail;
        }
    }
    rows = PQntuples(res);
    if (rows) {
        /* seq is int8, big-endian in binary results. */
        const unsigned char *p = (const unsigned char *)PQgetvalue(res, rows - 1, 0);
        unsigned long long seq = 0;
        for (int b = 0; b < 8; b++)
            seq = seq << 8 | p[b];
        snprintf(last, sizeof(last), "%llu", seq);
    }
    PQclear(res);
    res = NULL;
    if (!rows) {
        prime_pg_exec(conn, "COMMIT", "COMMIT", &err);
        return 0;
    }
    if (rd_kafka_flush(producer, 30000) != RD_KAFKA_RESP_ERR_NO_ERROR || *undelivered) {
        prime_error_set(&err, PRIME_ERR_KAFKA, NULL, "outbox messages not confirmed by Kafka");
        rows = -1;
        goto fail;
    }
    params[1] = last;
    if (prime_pg_exec_params(conn, "DELETE FROM prime_pipeline.outbox WHERE group_id = $1 AND seq <= $2", 2, params,
                             "emptying the outbox", &err)) {
        rows = -1;
        goto fail;
    }
    if (prime_pg_exec(conn, "COMMIT", "COMMIT", &err))
        return -1; /* relayed again next time: the same ids, collapsed by consumers */
    return rows;
fail:
    PQclear(res);
    prime_pg_exec(conn, "ROLLBACK", "ROLLBACK", NULL);
    {
        char safe[512];
        prime_log(PRIME_LOG_WARN, "outbox not relayed; will retry", "error=\"%s\"",
                  prime_log_value(err.message, safe, sizeof(safe)));
    }
    return -1;
}

/* Relays chunks until the outbox is empty; 0, or -1 when something was
 * left for the next try (logged). */
static int relay_all(outbox_relay_t *r)
{
    int rows, total = 0;

    if (!r->db || PQstatus(r->db) != CONNECTION_OK) {
        prime_error_t err;
        PQfinish(r->db);
        prime_error_clear(&err);
        if (!(r->db = prime_pg_connect(r->conf->db, &err)))
            return -1; /* the worker logs the database's absence; retried in a second */
    }
    while ((rows = relay_chunk(r->db, r->conf->group, r->producer, &r->undelivered)) > 0) {
        total += rows;
        if (rows < RELAY_CHUNK)
            break;
    }
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
        while (!r->kicked && !r->stopping && pthread_cond_timedwait(&r->wake, &r->lock, &until) == 0)
            ;
        r->kicked = false;
        stopping = r->stopping;
        pthread_mutex_unlock(&r->lock);
        relay_all(r);
    }
    return NULL;
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    outbox_relay_t *r = opaque;
    (void)rk;
    if (m->err) {
        r->undelivered++;
        prime_log(PRIME_LOG_WARN, "outbox message not delivered", "error=\"%s\"", rd_kafka_err2str(m->err));
    }
}

outbox_relay_t *outbox_relay_start(const prime_worker_conf_t *conf)
{
    outbox_relay_t *r = calloc(1, sizeof(*r));
    rd_kafka_conf_t *kconf;
    char errstr[512];

    if (!r)
        return NULL;
    r->conf = conf;
    kconf = rd_kafka_conf_new();
    rd_kafka_conf_set(kconf, "enable.idempotence", "true", errstr, sizeof(errstr));
    rd_kafka_conf_set(kconf, "linger.ms", "5", errstr, sizeof(errstr));
    if (worker_kafka_conf_apply(conf, kconf)) {
        rd_kafka_conf_destroy(kconf);
        free(r);
        return NULL;
    }
    rd_kafka_conf_set_dr_msg_cb(kconf, on_delivery);
    rd_kafka_conf_set_opaque(kconf, r);
    if (!(r->producer = rd_kafka_new(RD_KAFKA_PRODUCER, kconf, errstr, sizeof(errstr)))) {
        prime_log(PRIME_LOG_ERROR, "cannot create the outbox producer", "error=\"%s\"", errstr);
        rd_kafka_conf_destroy(kconf);
        free(r);
        return NULL;
    }
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->wake, NULL);
    if (pthread_create(&r->thread, NULL, relay_main, r)) {
        prime_log(PRIME_LOG_ERROR, "cannot start the outbox relay", NULL);
        rd_kafka_destroy(r->producer);
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
    r->stopping = true; /* the thread relays once more, then returns */
    pthread_cond_signal(&r->wake);
    pthread_mutex_unlock(&r->lock);
    pthread_join(r->thread, NULL);
    rd_kafka_flush(r->producer, 10000);
    rd_kafka_destroy(r->producer);
    PQfinish(r->db);
    pthread_mutex_destroy(&r->lock);
    pthread_cond_destroy(&r->wake);
    free(r);
}
