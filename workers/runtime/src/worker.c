/* The consumer loop with offsets in PostgreSQL (see prime/worker.h for the
 * contract). The state that matters for correctness is small: for each
 * assigned partition, the next offset as the database has it ("stored").
 * A batch commits only if every partition it touches still has that stored
 * value, and after any doubt the consumer is moved back to what the
 * database says. */
#include "prime/worker.h"
#include "prime/buf.h"
#include "prime/log.h"
#include "metrics.h"
#include "outbox.h"
#include "replay.h"
#include "kafka_conf.h"
#include "prime/pg.h"

#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NO_ROW (-1) /* no stored offset for the partition yet */

/* A fetched record, copied out of librdkafka's message: a message pins the
 * whole fetch response it came in (up to a megabyte), so holding messages
 * in queues would hold megabytes per partition. Key and value follow. */
typedef struct held {
    prime_record_t record;        /* record.internal points back here */
    rd_kafka_headers_t *headers;  /* the original headers, detached; or NULL */
    int64_t timestamp;            /* Kafka timestamp (ms), -1 when none */
} held_t;

typedef struct partition_state {
    char *topic;
    int32_t partition;
    int64_t stored;     /* next offset in consumer_offsets, or NO_ROW */
    int64_t batch_next; /* next offset after this batch's records, or -1 when untouched */
    /* Fetched records not yet in a batch, in offset order (a ring). */
    held_t **queue;
    size_t qhead, qlen, qcap;
    int64_t received_next; /* offset after the last record received, or -1 */
    int64_t head_ts;       /* Kafka timestamp of the queue's first record */
    int64_t last_ts;       /* of the last record received; INT64_MIN before any */
    bool paused;
    bool at_end;           /* replay mode: paused at its end offset for good */
} partition_state_t;

struct prime_worker_s {
    const prime_worker_conf_t *conf;
    prime_apply_fn apply;
    void *ctx;
    rd_kafka_t *consumer;
    rd_kafka_t *dlq;
    PGconn *db;
    held_t **batch;
    prime_record_t *records;
    size_t n, cap;
    partition_state_t *parts;
    size_t nparts;
    size_t last_part;       /* where the previous record's partition was found */
    size_t queued;          /* records in the partitions' queues */
    int dlq_failed;
    char dlq_error[256];
    int batches_done;
    int fatal;
    outbox_relay_t *relay;  /* sends the outbox's derived events (its own thread) */
    bool emitted;           /* the batch wrote to the outbox */
    metrics_t metrics;
    replay_ends_t *replay;  /* replay mode (--replay-until): the end offsets; else NULL */
    uint64_t replay_dead_letters, replay_missing; /* replay mode: dead letters not sent, records missing */
    double replay_queried;  /* replay mode: when the broker was last asked for first offsets */
    bool replay_reached;    /* replay mode: every partition at its end (not stopped by a signal) */
};

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec / 1e9;
}

/* --- records ------------------------------------------------------------ */

static void held_free(held_t *h)
{
    if (h && h->headers)
        rd_kafka_headers_destroy(h->headers);
    free(h);
}

/* A copy of m's record (topic is the partition's own name); NULL when out
 * of memory. m stays the caller's. */
static held_t *held_new(rd_kafka_message_t *m, const char *topic)
{
    held_t *h = malloc(sizeof(*h) + m->key_len + m->len);
    unsigned char *bytes = (unsigned char *)(h + 1);

    if (!h)
        return NULL;
    if (m->key_len)
        memcpy(bytes, m->key, m->key_len);
    if (m->len)
        memcpy(bytes + m->key_len, m->payload, m->len);
    h->headers = NULL;
    rd_kafka_message_detach_headers(m, &h->headers);
    h->timestamp = rd_kafka_message_timestamp(m, NULL);
    h->record = (prime_record_t){
        .topic = topic, .partition = m->partition, .offset = m->offset, .key = m->key ? bytes : NULL,
        .key_len = m->key_len, .value = bytes + m->key_len, .len = m->len, .internal = h,
    };
    return h;
}

/* --- partitions ------------------------------------------------------- */

static partition_state_t *find_part(prime_worker_t *w, const char *topic, int32_t partition)
{
    partition_state_t *last = w->last_part < w->nparts ? &w->parts[w->last_part] : NULL;

    /* Records come in runs from one partition. */
    if (last && last->partition == partition && !strcmp(last->topic, topic))
        return last;
    for (size_t i = 0; i < w->nparts; i++)
        if (w->parts[i].partition == partition && !strcmp(w->parts[i].topic, topic)) {
            w->last_part = i;
            return &w->parts[i];
        }
    return NULL;
}

static partition_state_t *add_part(prime_worker_t *w, const char *topic, int32_t partition)
{
    partition_state_t *p = find_part(w, topic, partition), *grown;

    if (p)
        return p;
    if (!(grown = realloc(w->parts, (w->nparts + 1) * sizeof(*grown))))
        return NULL;
    w->parts = grown;
    p = &w->parts[w->nparts++];
    p->topic = strdup(topic);
    p->partition = partition;
    p->stored = NO_ROW;
    p->batch_next = -1;
    p->queue = NULL;
    p->qhead = p->qlen = p->qcap = 0;
    p->received_next = -1;
    p->last_ts = INT64_MIN;
    p->paused = false;
    p->at_end = false;
    return p;
}

static void queue_clear(prime_worker_t *w, partition_state_t *p)
{
    for (size_t i = 0; i < p->qlen; i++)
        held_free(p->queue[(p->qhead + i) % p->qcap]);
    w->queued -= p->qlen;
    p->qhead = p->qlen = 0;
    p->received_next = -1;
    p->last_ts = INT64_MIN;
}

static void remove_part(prime_worker_t *w, const char *topic, int32_t partition)
{
    partition_state_t *p = find_part(w, topic, partition);
    if (!p)
        return;
    queue_clear(w, p);
    free(p->queue);
    free(p->topic);
    *p = w->parts[--w->nparts];
}

/* --- database ----------------------------------------------------------- */

static void db_close(prime_worker_t *w)
{
    if (w->db)
        PQfinish(w->db);
    w->db = NULL;
    atomic_store(&w->metrics.db_up, false);
}

/* Connects, with backoff, until it works or a stop is requested. */
static int db_connect(prime_worker_t *w)
{
    int delay_ms = 100, attempt = 0;
    char safe[512];

    while (!w->db && !stop_requested) {
        prime_error_t err;
        prime_error_clear(&err);
        if ((w->db = prime_pg_connect(w->conf->db, &err)))
            break;
        if (attempt++ % 10 == 0)
            prime_log(PRIME_LOG_WARN, "database unreachable, retrying", "error=\"%s\" retry_in_ms=%d",
                      prime_log_value(err.message, safe, sizeof(safe)), delay_ms);
        usleep((useconds_t)delay_ms * 1000);
        delay_ms = delay_ms < 5000 ? delay_ms * 2 : 5000;
    }
    if (w->db) {
        atomic_store(&w->metrics.db_up, true);
        if (attempt > 0)
            prime_log(PRIME_LOG_INFO, "database reachable again", "attempts=%d", attempt + 1);
    }
    return w->db ? 0 : -1;
}

/* Reads the stored next offsets of the group into the partition table. */
static int read_stored_offsets(prime_worker_t *w)
{
    const char *params[1] = {w->conf->group};
    PGresult *res;

    if (db_connect(w))
        return -1;
    res = PQexecParams(w->db,
                       "SELECT topic, kafka_partition, next_offset FROM prime_pipeline.consumer_offsets "
                       "WHERE group_id = $1",
                       1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        char safe[512];
        prime_log(PRIME_LOG_WARN, "cannot read stored offsets", "error=\"%s\"",
                  prime_log_value(PQresultErrorMessage(res), safe, sizeof(safe)));
        PQclear(res);
        db_close(w);
        return -1;
    }
    for (size_t i = 0; i < w->nparts; i++)
        w->parts[i].stored = NO_ROW;
    for (int r = 0; r < PQntuples(res); r++) {
        partition_state_t *p = find_part(w, PQgetvalue(res, r, 0), atoi(PQgetvalue(res, r, 1)));
        if (p)
            p->stored = atoll(PQgetvalue(res, r, 2));
    }
    PQclear(res);
    return 0;
}

/* Points list's offsets at the stored ones (earliest where none). */
static void set_start_offsets(prime_worker_t *w, rd_kafka_topic_partition_list_t *list)
{
    for (int i = 0; i < list->cnt; i++) {
        partition_state_t *p = find_part(w, list->elems[i].topic, list->elems[i].partition);
        list->elems[i].offset = p && p->stored != NO_ROW ? p->stored : RD_KAFKA_OFFSET_BEGINNING;
    }
}

/* --- batches -------------------------------------------------------------- */

static void batch_drop(prime_worker_t *w)
{
    for (size_t i = 0; i < w->n; i++)
        held_free(w->batch[i]);
    w->n = 0;
    for (size_t i = 0; i < w->nparts; i++)
        w->parts[i].batch_next = -1;
}

/* After a failure whose outcome is not known: the database is the truth.
 * Drop the batch, reconnect, and move every assigned partition back to its
 * stored offset. */
static void queues_clear(prime_worker_t *w);

static void resync(prime_worker_t *w, const char *why)
{
    rd_kafka_topic_partition_list_t *list;
    rd_kafka_error_t *error;

    atomic_fetch_add(&w->metrics.retries, 1);
    char safe[512];

    prime_log(PRIME_LOG_WARN, "batch abandoned; resuming from the stored offsets", "reason=\"%s\" records=%zu",
              prime_log_value(why, safe, sizeof(safe)), w->n);
    batch_drop(w);
    queues_clear(w);
    db_close(w);
    while (!stop_requested && read_stored_offsets(w))
        usleep(200 * 1000);
    if (stop_requested)
        return;
    list = rd_kafka_topic_partition_list_new((int)w->nparts);
    for (size_t i = 0; i < w->nparts; i++)
        rd_kafka_topic_partition_list_add(list, w->parts[i].topic, w->parts[i].partition);
    set_start_offsets(w, list);
    if ((error = rd_kafka_seek_partitions(w->consumer, list, 10000))) {
        prime_log(PRIME_LOG_ERROR, "cannot seek to the stored offsets", "error=\"%s\"", rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
        w->fatal = 1;
        stop_requested = 1;
    }
    rd_kafka_topic_partition_list_destroy(list);
}

/* Runs one offsets statement whose row count must be expected. */
static int offsets_statement(prime_worker_t *w, const char *sql, int nparams, const char *const params[5],
                             size_t expected, const char **why)
{
    PGresult *res = PQexecParams(w->db, sql, nparams, NULL, params, NULL, NULL, 0);
    int rc = 0;

    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        *why = "storing offsets failed";
        rc = -1;
    } else if (strtoull(PQcmdTuples(res), NULL, 10) != expected) {
        *why = "the stored offset moved: another worker committed this partition";
        rc = -1;
    }
    PQclear(res);
    return rc;
}

/* The batch's partitions move from their stored offset to batch_next, on
 * the condition that the stored offset is still what this worker read:
 * two statements (partitions seen before, partitions new to the group),
 * each of which must touch every row it names. */
static int store_offsets(prime_worker_t *w, const char **why)
{
    /* [0]: partitions with a stored row (updated), [1]: new ones (inserted) */
    prime_buf_t topics[2], parts[2], nexts[2], expected;
    size_t count[2] = {0, 0};
    int rc = 0;

    prime_buf_init(&expected, 0);
    prime_pg_array_begin(&expected);
    for (int k = 0; k < 2; k++) {
        prime_buf_init(&topics[k], 0);
        prime_buf_init(&parts[k], 0);
        prime_buf_init(&nexts[k], 0);
        prime_pg_array_begin(&topics[k]);
        prime_pg_array_begin(&parts[k]);
        prime_pg_array_begin(&nexts[k]);
    }
    for (size_t i = 0; i < w->nparts; i++) {
        const partition_state_t *p = &w->parts[i];
        int k = p->stored == NO_ROW;
        char part[16], next[24], stored[24];
        if (p->batch_next < 0)
            continue;
        snprintf(part, sizeof(part), "%d", (int)p->partition);
        snprintf(next, sizeof(next), "%lld", (long long)p->batch_next);
        snprintf(stored, sizeof(stored), "%lld", (long long)p->stored);
        prime_pg_array_add(&topics[k], p->topic);
        prime_pg_array_add(&parts[k], part);
        prime_pg_array_add(&nexts[k], next);
        if (!k)
            prime_pg_array_add(&expected, stored);
        count[k]++;
    }
    prime_pg_array_end(&expected);
    for (int k = 0; k < 2; k++) {
        const char *params[5];
        prime_pg_array_end(&topics[k]);
        prime_pg_array_end(&parts[k]);
        prime_pg_array_end(&nexts[k]);
        params[0] = w->conf->group;
        params[1] = topics[k].data;
        params[2] = parts[k].data;
        params[3] = nexts[k].data;
        params[4] = expected.data;
        if (rc || !count[k])
            continue;
        if (topics[k].failed || parts[k].failed || nexts[k].failed || expected.failed) {
            *why = "out of memory storing offsets";
            rc = -1;
        } else if (k == 0) {
            rc = offsets_statement(w,
                                   "UPDATE prime_pipeline.consumer_offsets o SET next_offset = x.next "
                                   "FROM unnest($2::text[], $3::int[], $4::bigint[], $5::bigint[]) AS x(topic, part, next, expected) "
                                   "WHERE o.group_id = $1 AND o.topic = x.topic AND o.kafka_partition = x.part "
                                   "AND o.next_offset = x.expected",
                                   5, params, count[k], why);
        } else {
            rc = offsets_statement(w,
                                   "INSERT INTO prime_pipeline.consumer_offsets (group_id, topic, kafka_partition, next_offset) "
                                   "SELECT $1, topic, part, next FROM unnest($2::text[], $3::int[], $4::bigint[]) "
                                   "AS x(topic, part, next) ON CONFLICT (group_id, topic, kafka_partition) DO NOTHING",
                                   4, params, count[k], why);
        }
    }
    for (int k = 0; k < 2; k++) {
        prime_buf_free(&topics[k]);
        prime_buf_free(&parts[k]);
        prime_buf_free(&nexts[k]);
    }
    prime_buf_free(&expected);
    return rc;
}

/* Applies and commits the batch, or abandons it (resync). With an empty
 * batch and housekeeping set, apply() still runs (n == 0). */
static void batch_run(prime_worker_t *w, bool housekeeping)
{
    prime_error_t err;
    prime_errcode_t rc;
    const char *why = NULL;
    double t0 = now_s();
    size_t n = w->n;

    if (n == 0 && !housekeeping)
        return;
    if (db_connect(w))
        return; /* stopping */
    prime_error_clear(&err);
    w->dlq_failed = 0;
    if (prime_pg_exec(w->db, "BEGIN", "BEGIN", NULL)) {
        resync(w, "BEGIN failed");
        return;
    }
    rc = w->apply(w, w->db, w->records, n, w->ctx, &err);
    if (rc) {
        prime_pg_exec(w->db, "ROLLBACK", "ROLLBACK", NULL);
        if (err.retriable || PQstatus(w->db) != CONNECTION_OK) {
            resync(w, err.message);
        } else {
            char safe[512];
            prime_log(PRIME_LOG_ERROR, "batch cannot be applied; stopping", "error=\"%s\" field=%s",
                      prime_log_value(err.message, safe, sizeof(safe)), err.field[0] ? err.field : "-");
            w->fatal = 1;
            stop_requested = 1;
            batch_drop(w);
        }
        return;
    }
    if (store_offsets(w, &why)) {
        prime_pg_exec(w->db, "ROLLBACK", "ROLLBACK", NULL);
        resync(w, why);
        return;
    }
    /* Dead letters are delivered before the commit: never lost. */
    if (w->dlq && rd_kafka_flush(w->dlq, 30000) != RD_KAFKA_RESP_ERR_NO_ERROR)
        w->dlq_failed++;
    if (w->dlq_failed) {
        prime_pg_exec(w->db, "ROLLBACK", "ROLLBACK", NULL);
        resync(w, "dead letters not delivered");
        return;
    }
    if (prime_pg_exec(w->db, "COMMIT", "COMMIT", NULL)) {
        resync(w, "COMMIT failed (its outcome is read back from the database)");
        return;
    }
    for (size_t i = 0; i < w->nparts; i++)
        if (w->parts[i].batch_next >= 0)
            w->parts[i].stored = w->parts[i].batch_next;
    /* Derived events of the committed batch go out now, not at the
     * relay's next second. */
    if (w->emitted && w->relay)
        outbox_relay_kick(w->relay);
    w->emitted = false;
    if (n == 0)
        return; /* housekeeping: not a batch */
    atomic_fetch_add(&w->metrics.records, n);
    metrics_observe_batch(&w->metrics, now_s() - t0);
    prime_log(PRIME_LOG_DEBUG, "batch committed", "records=%zu seconds=%.3f", n, now_s() - t0);
    batch_drop(w);
    w->batches_done++;
}

static void batch_commit(prime_worker_t *w)
{
    batch_run(w, false);
}

static void update_lag(prime_worker_t *w)
{
    const char *topics[METRICS_MAX_PARTITIONS];
    int32_t parts[METRICS_MAX_PARTITIONS];
    int64_t lags[METRICS_MAX_PARTITIONS];
    int n = 0;

    for (size_t i = 0; i < w->nparts && n < METRICS_MAX_PARTITIONS; i++) {
        int64_t lo, hi;
        if (rd_kafka_get_watermark_offsets(w->consumer, w->parts[i].topic, w->parts[i].partition, &lo, &hi))
            continue;
        topics[n] = w->parts[i].topic;
        parts[n] = w->parts[i].partition;
        lags[n++] = hi - (w->parts[i].stored == NO_ROW ? lo : w->parts[i].stored);
    }
    metrics_set_lag(&w->metrics, n, topics, parts, lags);
}

/* --- rebalancing ----------------------------------------------------------- */

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *list, void *opaque)
{
    prime_worker_t *w = opaque;
    int cooperative = !strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE");
    rd_kafka_error_t *error = NULL;

    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        for (int i = 0; i < list->cnt; i++)
            add_part(w, list->elems[i].topic, list->elems[i].partition);
        while (!stop_requested && read_stored_offsets(w))
            usleep(200 * 1000);
        set_start_offsets(w, list);
        for (int i = 0; i < list->cnt; i++)
            prime_log(PRIME_LOG_INFO, "partition assigned", "topic=%s partition=%d offset=%lld", list->elems[i].topic,
                      (int)list->elems[i].partition, (long long)list->elems[i].offset);
        if (cooperative)
            error = rd_kafka_incremental_assign(rk, list);
        else
            rd_kafka_assign(rk, list);
    } else {
        /* The batch in flight holds records of these partitions: finish it
         * while they are still ours. */
        batch_commit(w);
        for (int i = 0; i < list->cnt; i++) {
            prime_log(PRIME_LOG_INFO, "partition revoked", "topic=%s partition=%d", list->elems[i].topic,
                      (int)list->elems[i].partition);
            remove_part(w, list->elems[i].topic, list->elems[i].partition);
        }
        if (cooperative)
            error = rd_kafka_incremental_unassign(rk, list);
        else
            rd_kafka_assign(rk, NULL);
    }
    if (error) {
        prime_log(PRIME_LOG_ERROR, "rebalance failed", "error=\"%s\"", rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
    }
}

/* --- replay mode (--replay-until) ------------------------------------------
 *
 * prime-replay runs the workers' own programs on a fresh database with the
 * end offsets taken at its start. Each partition is applied up to its end
 * and paused there; the worker exits 0 once every partition the file names
 * for its topics has its stored offset at the end. Nothing is sent: the
 * derived events are in their topics already (prime_worker_emit writes
 * nothing), and dead letters are logged and counted, not produced. A gap in
 * a partition's offsets (compaction, deleted records) would make the copy
 * silently differ: it stops the worker unless --allow-gaps. */

static void set_paused(prime_worker_t *w, partition_state_t *p, bool pause);

static int replay_start(prime_worker_t *w)
{
    prime_error_t err;
    char safe[512];

    if (!w->conf->replay_until)
        return 0;
    prime_error_clear(&err);
    if (!(w->replay = replay_ends_load(w->conf, &err))) {
        prime_log(PRIME_LOG_ERROR, "cannot read the replay's end offsets", "field=%s error=\"%s\"", err.field,
                  prime_log_value(err.message, safe, sizeof(safe)));
        w->fatal = 1;
        return -1;
    }
    prime_log(PRIME_LOG_INFO, "replay mode: emitting nothing, stopping at the end offsets", "file=%s partitions=%zu",
              w->conf->replay_until, replay_ends_count(w->replay));
    return 0;
}

/* For each fetched record: 1 when it is not for a batch (at or past its
 * partition's end, which is then paused for good; or after a refused gap,
 * which stops the worker), 0 when it is. */
static int replay_filter(prime_worker_t *w, partition_state_t *p, const rd_kafka_message_t *m)
{
    int64_t end = replay_end_of(w->replay, p->topic, p->partition);
    int64_t expected = p->received_next >= 0 ? p->received_next : p->stored != NO_ROW ? p->stored : 0;
    int64_t upto = m->offset < end ? m->offset : end; /* the gap is what is missing below the end */

    if (upto > expected) {
        if (!w->conf->allow_gaps) {
            prime_log(PRIME_LOG_ERROR,
                      "replay refused: records are missing from the topic (compaction or deletion), the copy would "
                      "silently differ; prime-replay --allow-gaps goes on without them",
                      "topic=%s partition=%d missing_from=%lld missing_to=%lld", p->topic, (int)p->partition,
                      (long long)expected, (long long)upto - 1);
            w->fatal = 1;
            stop_requested = 1;
            return 1;
        }
        prime_log(PRIME_LOG_WARN, "replay: records missing from the topic, going on without them (--allow-gaps)",
                  "topic=%s partition=%d missing_from=%lld missing_to=%lld", p->topic, (int)p->partition,
                  (long long)expected, (long long)upto - 1);
        w->replay_missing += (uint64_t)(upto - expected);
        p->received_next = upto; /* logged once */
    }
    if (m->offset < end)
        return 0;
    if (!p->at_end) {
        p->at_end = true;
        if (!p->paused)
            set_paused(w, p, true);
    }
    return 1;
}

/* Whether every partition the file names is at its end: its stored offset
 * there, or nothing to apply (its end at or below its first offset). */
static bool replay_done(prime_worker_t *w)
{
    /* The broker is asked (a round trip a partition) once a second at most,
     * and only about partitions that gave nothing yet. */
    bool ask = now_s() - w->replay_queried >= 1.0;

    if (ask)
        w->replay_queried = now_s();
    for (size_t i = 0; i < replay_ends_count(w->replay); i++) {
        const char *topic;
        int32_t partition;
        int64_t end, lo, hi;
        partition_state_t *p;

        replay_ends_get(w->replay, i, &topic, &partition, &end);
        if (end <= 0)
            continue;
        if (!(p = find_part(w, topic, partition)))
            return false; /* not assigned yet */
        if (p->stored != NO_ROW && p->stored >= end)
            continue;
        /* Nothing received yet: its history may start at or past the end. */
        if (ask && p->stored == NO_ROW && p->received_next < 0 &&
            !rd_kafka_query_watermark_offsets(w->consumer, topic, partition, &lo, &hi, 1000) && lo >= end)
            continue;
        return false;
    }
    return true;
}

static prime_errcode_t replay_dead_letter(prime_worker_t *w, const prime_record_t *r, const prime_error_t *why,
                                          prime_error_t *err)
{
    char safe[512];

    w->replay_dead_letters++;
    atomic_fetch_add(&w->metrics.dead_letters, 1);
    prime_log(PRIME_LOG_WARN, "dead letter (replay: not sent to prime.dlq)",
              "topic=%s partition=%d offset=%lld class=%s field=%s error=\"%s\"", r->topic, (int)r->partition,
              (long long)r->offset, prime_errcode_name(why->code), why->field[0] ? why->field : "-",
              prime_log_value(why->message, safe, sizeof(safe)));
    if (w->conf->on_dead_letter)
        return w->conf->on_dead_letter(w, w->db, r, why, w->ctx, err);
    return PRIME_OK;
}

static void replay_finish(prime_worker_t *w)
{
    if (!w->replay)
        return;
    prime_log(w->fatal ? PRIME_LOG_ERROR : PRIME_LOG_INFO, "replay finished",
              "complete=%s dead_letters_not_sent=%llu records_missing=%llu", w->replay_reached && !w->fatal ? "yes" : "no",
              (unsigned long long)w->replay_dead_letters, (unsigned long long)w->replay_missing);
    replay_ends_free(w->replay);
    w->replay = NULL;
}

/* --- dead letters ---------------------------------------------------------- */

static void on_dlq_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    prime_worker_t *w = opaque;
    (void)rk;
    if (m->err) {
        w->dlq_failed++;
        snprintf(w->dlq_error, sizeof(w->dlq_error), "%s", rd_kafka_err2str(m->err));
        prime_log(PRIME_LOG_WARN, "dead letter not delivered", "error=\"%s\"", w->dlq_error);
    }
}

prime_errcode_t prime_worker_dead_letter(prime_worker_t *w, const prime_record_t *r, const prime_error_t *why,
                                         prime_error_t *err)
{
    const held_t *orig = r->internal;
    rd_kafka_headers_t *hdrs;
    char part[16], offset[24];
    rd_kafka_resp_err_t kerr;

    if (w->replay)
        return replay_dead_letter(w, r, why, err);
    if (orig && orig->headers)
        hdrs = rd_kafka_headers_copy(orig->headers);
    else
        hdrs = rd_kafka_headers_new(8);
    snprintf(part, sizeof(part), "%d", (int)r->partition);
    snprintf(offset, sizeof(offset), "%lld", (long long)r->offset);
    rd_kafka_header_add(hdrs, "prime.error.class", -1, prime_errcode_name(why->code), -1);
    rd_kafka_header_add(hdrs, "prime.error.field", -1, why->field, -1);
    rd_kafka_header_add(hdrs, "prime.error.message", -1, why->message, -1);
    rd_kafka_header_add(hdrs, "prime.source.topic", -1, r->topic, -1);
    rd_kafka_header_add(hdrs, "prime.source.partition", -1, part, -1);
    rd_kafka_header_add(hdrs, "prime.source.offset", -1, offset, -1);
    rd_kafka_header_add(hdrs, "prime.worker", -1, w->conf->name, -1);
    kerr = rd_kafka_producev(w->dlq, RD_KAFKA_V_TOPIC("prime.dlq"), RD_KAFKA_V_KEY(r->key, r->key_len),
                             RD_KAFKA_V_VALUE((void *)r->value, r->len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                             RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_END);
    if (kerr) {
        rd_kafka_headers_destroy(hdrs);
        w->dlq_failed++;
        return prime_error_set(err, PRIME_ERR_KAFKA, NULL, "cannot queue a dead letter: %s", rd_kafka_err2str(kerr));
    }
    atomic_fetch_add(&w->metrics.dead_letters, 1);
    char safe[512];
    prime_log(PRIME_LOG_WARN, "dead-lettered", "topic=%s partition=%d offset=%lld class=%s field=%s error=\"%s\"",
              r->topic, (int)r->partition, (long long)r->offset, prime_errcode_name(why->code),
              why->field[0] ? why->field : "-", prime_log_value(why->message, safe, sizeof(safe)));
    if (w->conf->on_dead_letter)
        return w->conf->on_dead_letter(w, w->db, r, why, w->ctx, err);
    return PRIME_OK;
}

int64_t prime_record_timestamp(const prime_record_t *r)
{
    const held_t *h = r->internal;
    return h ? h->timestamp : -1;
}

prime_errcode_t prime_worker_emit(prime_worker_t *w, PGconn *conn, const prime_emit_t *msgs, size_t n,
                                  prime_error_t *err)
{
    if (!n || w->replay)
        return PRIME_OK; /* a replay reads the derived events from their topics: none is made again */
    w->emitted = true;
    return outbox_write(conn, w->conf->group, msgs, n, err);
}

prime_errcode_t prime_worker_decode(prime_worker_t *w, const prime_registry_t *reg, const prime_record_t *r,
                                    prime_event_t **ev, prime_error_t *err)
{
    prime_error_t why;

    prime_error_clear(&why);
    *ev = NULL;
    if (prime_event_decode(reg, r->value, r->len, ev, &why) || prime_event_validate(*ev, &why)) {
        prime_event_free(*ev);
        *ev = NULL;
        return prime_worker_dead_letter(w, r, &why, err);
    }
    return PRIME_OK;
}

int prime_worker_replaying(const prime_worker_t *w)
{
    return w->replay != NULL;
}

const char *prime_worker_group(const prime_worker_t *w)
{
    return w->conf->group;
}

void prime_worker_count_applied(prime_worker_t *w, size_t n)
{
    atomic_fetch_add(&w->metrics.applied, n);
}

/* --- the loop ----------------------------------------------------------------- */

static rd_kafka_t *new_client(prime_worker_t *w, rd_kafka_type_t type)
{
    const prime_worker_conf_t *c = w->conf;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char errstr[512];
    rd_kafka_t *rk;
    static const char *const consumer_defaults[][2] = {
        {"enable.auto.commit", "false"},
        {"enable.auto.offset.store", "false"},
        {"auto.offset.reset", "earliest"},
        {"partition.assignment.strategy", "cooperative-sticky"},
        {"isolation.level", "read_committed"},
        /* The worker queues records itself (merging partitions by time);
         * librdkafka's own prefetch need not be its default 64 MB. */
        {"queued.max.messages.kbytes", "16384"},
    };

    if (type == RD_KAFKA_CONSUMER) {
        rd_kafka_conf_set(conf, "group.id", c->group, errstr, sizeof(errstr));
        for (size_t i = 0; i < sizeof(consumer_defaults) / sizeof(consumer_defaults[0]); i++)
            rd_kafka_conf_set(conf, consumer_defaults[i][0], consumer_defaults[i][1], errstr, sizeof(errstr));
        rd_kafka_conf_set_rebalance_cb(conf, on_rebalance);
    } else {
        rd_kafka_conf_set(conf, "enable.idempotence", "true", errstr, sizeof(errstr));
        rd_kafka_conf_set(conf, "linger.ms", "5", errstr, sizeof(errstr));
        rd_kafka_conf_set_dr_msg_cb(conf, on_dlq_delivery);
    }
    if (worker_kafka_conf_apply(c, conf)) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_conf_set_opaque(conf, w);
    if (!(rk = rd_kafka_new(type, conf, errstr, sizeof(errstr)))) {
        prime_log(PRIME_LOG_ERROR, "cannot create a Kafka client", "error=\"%s\"", errstr);
        rd_kafka_conf_destroy(conf);
    }
    return rk;
}

/* --- merging partitions by time ------------------------------------------
 *
 * Records are queued per partition as they are fetched, and batches take
 * them oldest Kafka timestamp first across partitions (each partition in
 * offset order), as Kafka Streams does. librdkafka hands out a backlog a
 * topic at a time; taken in that order, a replay would see every heartbeat
 * before the registration of its user and park them all. A batch does not
 * go past a partition that is empty but not caught up (it may hold older
 * records) for longer than a second (or --linger-ms). A partition with
 * 1000 records queued (or its share of four batches) is paused until half
 * of them are taken: that bounds the queues. Smaller thresholds made a
 * drain crawl, each resume waiting for a fetch. */

static size_t pause_at(const prime_worker_t *w)
{
    size_t n = w->nparts ? (size_t)w->conf->batch_max * 4 / w->nparts : 1000;
    return n < 1000 ? 1000 : n;
}

static void set_paused(prime_worker_t *w, partition_state_t *p, bool pause)
{
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(list, p->topic, p->partition);
    if (pause)
        rd_kafka_pause_partitions(w->consumer, list);
    else
        rd_kafka_resume_partitions(w->consumer, list);
    rd_kafka_topic_partition_list_destroy(list);
    p->paused = pause;
}

/* Every queue emptied (the consumer is about to seek back). */
static void queues_clear(prime_worker_t *w)
{
    for (size_t i = 0; i < w->nparts; i++) {
        queue_clear(w, &w->parts[i]);
        w->parts[i].at_end = false; /* sought back: it reaches its end again */
        if (w->parts[i].paused)
            set_paused(w, &w->parts[i], false);
    }
}

/* A fetched record into its partition's queue; m is consumed. */
static int receive(prime_worker_t *w, rd_kafka_message_t *m)
{
    partition_state_t *p = find_part(w, rd_kafka_topic_name(m->rkt), m->partition);
    held_t *h;

    if (!p || (p->stored != NO_ROW && m->offset < p->stored) || (p->received_next >= 0 && m->offset < p->received_next)) {
        /* Not ours any more, or from before a seek back: not for a batch. */
        rd_kafka_message_destroy(m);
        return 0;
    }
    if (w->replay && replay_filter(w, p, m)) {
        rd_kafka_message_destroy(m);
        return 0;
    }
    h = held_new(m, p->topic);
    rd_kafka_message_destroy(m);
    if (!h)
        return -1;
    if (p->qlen == p->qcap) {
        size_t cap = p->qcap ? p->qcap * 2 : 64;
        held_t **q = malloc(cap * sizeof(*q));
        if (!q) {
            held_free(h);
            return -1;
        }
        for (size_t i = 0; i < p->qlen; i++)
            q[i] = p->queue[(p->qhead + i) % p->qcap];
        free(p->queue);
        p->queue = q;
        p->qhead = 0;
        p->qcap = cap;
    }
    if (!p->qlen)
        p->head_ts = h->timestamp;
    p->queue[(p->qhead + p->qlen++) % p->qcap] = h;
    p->received_next = h->record.offset + 1;
    p->last_ts = h->timestamp;
    w->queued++;
    if (!p->paused && p->qlen >= pause_at(w))
        set_paused(w, p, true);
    return 0;
}

/* Whether the partition has nothing older to give: all of it received. */
static bool caught_up(prime_worker_t *w, const partition_state_t *p)
{
    int64_t lo, hi, next = p->received_next;

    if (rd_kafka_get_watermark_offsets(w->consumer, p->topic, p->partition, &lo, &hi) || hi < 0)
        return false;
    if (next < 0)
        next = p->stored != NO_ROW ? p->stored : lo;
    if (w->replay && next >= replay_end_of(w->replay, p->topic, p->partition))
        return true; /* all it will give is received: the live topic grows past the end */
    return next >= hi;
}

/* The first record of p's queue joins the batch. */
static int take(prime_worker_t *w, partition_state_t *p)
{
    held_t *h = p->queue[p->qhead];

    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 1024;
        held_t **b = realloc(w->batch, cap * sizeof(*b));
        prime_record_t *r = b ? realloc(w->records, cap * sizeof(*r)) : NULL;
        if (b)
            w->batch = b;
        if (!r)
            return -1;
        w->records = r;
        w->cap = cap;
    }
    p->qhead = (p->qhead + 1) % p->qcap;
    p->qlen--;
    w->queued--;
    if (p->qlen)
        p->head_ts = p->queue[p->qhead]->timestamp;
    if (p->paused && !p->at_end && p->qlen < pause_at(w) / 2)
        set_paused(w, p, false);
    w->batch[w->n] = h;
    w->records[w->n] = h->record;
    w->n++;
    p->batch_next = h->record.offset + 1;
    return 0;
}

/* How far in time the batch may go without overtaking a partition that is
 * empty but not caught up: its next records are no older than its last. */
static int64_t horizon_of(prime_worker_t *w, const partition_state_t *p, int64_t horizon)
{
    if (p->qlen || p->last_ts >= horizon || caught_up(w, p))
        return horizon;
    return p->last_ts;
}

/* Moves queued records into the batch, oldest first, until it is full or
 * the next one would overtake a partition still fetching (unless force).
 * Returns 1 when it stopped for such a partition, -1 out of memory. */
static int fill_batch(prime_worker_t *w, bool force)
{
    int64_t horizon = INT64_MAX;

    for (size_t i = 0; i < w->nparts && !force; i++)
        horizon = horizon_of(w, &w->parts[i], horizon);
    while (w->queued && w->n < (size_t)w->conf->batch_max) {
        partition_state_t *best = NULL;
        for (size_t i = 0; i < w->nparts; i++)
            if (w->parts[i].qlen && (!best || w->parts[i].head_ts < best->head_ts))
                best = &w->parts[i];
        if (!force && best->head_ts > horizon)
            return 1;
        if (take(w, best))
            return -1;
        if (!force)
            horizon = horizon_of(w, best, horizon);
    }
    return 0;
}

int prime_worker_run(const prime_worker_conf_t *conf, prime_apply_fn apply, void *ctx)
{
    prime_worker_t w = {.conf = conf, .apply = apply, .ctx = ctx};
    rd_kafka_topic_partition_list_t *subs;
    metrics_server_t *server = NULL;
    struct sigaction sa = {.sa_handler = on_signal};
    double batch_started = 0, last_lag = 0, last_activity = now_s(), blocked_since = 0;
    /* How long a partition still fetching may hold the merge back before
     * it is overtaken (its events may then wait in parking instead). */
    const double patience = conf->linger_ms > 1000 ? conf->linger_ms / 1000.0 : 1.0;
    rd_kafka_resp_err_t kerr;

    prime_log_init(conf->name);
    metrics_init(&w.metrics, conf->name);
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    stop_requested = 0;

    if (conf->metrics_port && !(server = metrics_server_start(&w.metrics, conf->metrics_port)))
        return 1;
    if (replay_start(&w))
        goto out;
    if (db_connect(&w))
        goto out;
    /* A replay sends nothing: no dead-letter producer, no outbox relay. */
    if (!(w.consumer = new_client(&w, RD_KAFKA_CONSUMER)) ||
        (!w.replay && (!(w.dlq = new_client(&w, RD_KAFKA_PRODUCER)) || !(w.relay = outbox_relay_start(conf))))) {
        w.fatal = 1;
        goto out;
    }
    rd_kafka_poll_set_consumer(w.consumer);
    subs = rd_kafka_topic_partition_list_new(conf->ntopics);
    for (int i = 0; i < conf->ntopics; i++)
        rd_kafka_topic_partition_list_add(subs, conf->topics[i], RD_KAFKA_PARTITION_UA);
    kerr = rd_kafka_subscribe(w.consumer, subs);
    rd_kafka_topic_partition_list_destroy(subs);
    if (kerr) {
        prime_log(PRIME_LOG_ERROR, "cannot subscribe", "error=\"%s\"", rd_kafka_err2str(kerr));
        w.fatal = 1;
        goto out;
    }
    prime_log(PRIME_LOG_INFO, "started", "group=%s topics=%d batch_max=%d linger_ms=%d", conf->group, conf->ntopics,
              conf->batch_max, conf->linger_ms);
    atomic_store(&w.metrics.consuming, true);

    while (!stop_requested) {
        double now = now_s();
        int wait_ms = w.n || w.queued ? (int)((batch_started + conf->linger_ms / 1000.0 - now) * 1000) : 100;
        rd_kafka_message_t *m = rd_kafka_consumer_poll(w.consumer, wait_ms > 0 ? (wait_ms < 100 ? wait_ms : 100) : 0);
        int got = 0, filled;

        /* What has arrived, up to a batch's worth, then into the batch. */
        while (m && got >= 0 && got < conf->batch_max) {
            if (m->err) {
                if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                    prime_log(PRIME_LOG_WARN, "consumer error", "error=\"%s\"", rd_kafka_message_errstr(m));
                rd_kafka_message_destroy(m);
            } else {
                if (!w.n && !w.queued)
                    batch_started = now_s();
                got = receive(&w, m) ? -1 : got + 1;
            }
            m = got >= 0 && got < conf->batch_max ? rd_kafka_consumer_poll(w.consumer, 0) : NULL;
        }
        if (got > 0)
            last_activity = now_s();
        filled = got < 0 ? -1 : fill_batch(&w, blocked_since && now_s() - blocked_since >= patience);
        if (filled == 1 && !blocked_since)
            blocked_since = now_s();
        else if (filled == 0)
            blocked_since = 0;
        if (filled < 0) {
            prime_log(PRIME_LOG_ERROR, "out of memory for the batch", NULL);
            w.fatal = 1;
            break;
        }
        if (w.dlq)
            rd_kafka_poll(w.dlq, 0);
        if (w.n && (w.n >= (size_t)conf->batch_max || now_s() - batch_started >= conf->linger_ms / 1000.0)) {
            batch_commit(&w);
            batch_started = now_s(); /* what is still queued starts the next batch's wait */
        }
        if (w.n == 0 && w.nparts && now_s() - last_activity >= 1.0) {
            batch_run(&w, true); /* idle: housekeeping */
            last_activity = now_s();
        }
        if (now_s() - last_lag > 1) {
            update_lag(&w);
            last_lag = now_s();
        }
        if (conf->max_batches && w.batches_done >= conf->max_batches)
            break;
        if (w.replay && !w.n && replay_done(&w)) {
            batch_run(&w, true); /* a last housekeeping pass: what waited for another worker's rows */
            w.replay_reached = true;
            break;
        }
    }
    if (!w.fatal)
        batch_commit(&w); /* the batch in flight, whole or not at all */
out:
    atomic_store(&w.metrics.consuming, false);
    if (w.consumer) {
        rd_kafka_consumer_close(w.consumer); /* revokes: commits what is left */
        rd_kafka_destroy(w.consumer);
    }
    batch_drop(&w);
    for (size_t i = 0; i < w.nparts; i++) {
        queue_clear(&w, &w.parts[i]);
        free(w.parts[i].queue);
    }
    outbox_relay_stop(w.relay);
    if (w.dlq) {
        rd_kafka_flush(w.dlq, 10000);
        rd_kafka_destroy(w.dlq);
    }
    db_close(&w);
    metrics_server_stop(server);
    for (size_t i = 0; i < w.nparts; i++)
        free(w.parts[i].topic);
    free(w.parts);
    free(w.batch);
    free(w.records);
    replay_finish(&w);
    prime_log(w.fatal ? PRIME_LOG_ERROR : PRIME_LOG_INFO, w.fatal ? "stopped after an error" : "stopped",
              "batches=%llu records=%llu", (unsigned long long)atomic_load(&w.metrics.batches),
              (unsigned long long)atomic_load(&w.metrics.records));
    return w.fatal ? 1 : 0;
}
