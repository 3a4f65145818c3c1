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
#include "headers.h"
#include "producer.h"
#include "prime/pg.h"
#include "prime/time.h"

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
 * in queues would hold megabytes per partition. Key, value and the packed
 * headers follow; the record says all there is to say about it, so that a
 * copy apply() makes of it (to park it, say) says as much. */
typedef struct held {
    prime_record_t record;
} held_t;

/* A dead letter of the batch, held until the batch commits: a batch (or a
 * savepoint of it) that is rolled back takes its dead letters back, so a
 * record refused in a pass that is then redone is dead-lettered once. */
typedef struct dead_letter {
    char *topic;
    int32_t partition;
    int64_t offset;
    void *key, *value;            /* copies; key NULL when the record had none */
    size_t key_len, len;
    rd_kafka_headers_t *headers;  /* the original's plus prime.error.* and prime.source.* */
    prime_error_t why;
} dead_letter_t;

typedef struct partition_state {
    char *topic;
    int32_t partition;
    int64_t stored;     /* next offset in consumer_offsets, or NO_ROW */
    int64_t batch_next; /* next offset after this batch's records, or -1 when untouched */
    /* Fetched records not yet in a batch, in offset order (a ring). */
    held_t **queue;
    size_t qhead, qlen, qcap;
    size_t qbytes;         /* their bytes (held_size) */
    int64_t received_next; /* offset after the last record received, or -1 */
    int64_t head_ts;       /* Kafka timestamp of the queue's first record */
    int64_t last_ts;       /* of the last record received; INT64_MIN before any */
    bool paused;
    bool gap_noted;        /* a stored offset past the log's end was logged */
    bool past_end;         /* the stored offset is past the log's end */
    int64_t gap_checked;   /* the stored offset the log's ends were last checked against */
    int64_t skipped_next;  /* after the last record passed over before the stored offset */
    bool at_end;           /* replay mode: paused at its end offset for good */
} partition_state_t;

struct prime_worker_s {
    const prime_worker_conf_t *conf;
    prime_worker_hooks_t hooks;
    void *ctx;
    rd_kafka_t *consumer;
    producer_t *dlq;       /* dead letters; NULL in replay mode */
    PGconn *db;
    held_t **batch;
    prime_record_t *records;
    size_t n, cap;
    partition_state_t *parts;
    size_t nparts;
    size_t last_part;       /* where the previous record's partition was found */
    size_t queued;          /* records in the partitions' queues */
    size_t batch_bytes;     /* held_size() of the batch's records */
    size_t emitted_bytes;   /* written to the outbox by the batch */
    int dlq_failed;
    char dlq_error[256];
    dead_letter_t *dead;    /* the batch's dead letters, sent before it commits */
    size_t ndead, deadcap;
    /* An environment fault (the database's schema, permissions, resources;
     * the broker): batches wait retry_at, the wait doubling to a cap. */
    bool faulted, fault_idle; /* fault_idle: it began in housekeeping */
    int backoff_ms, fault_retries;
    double retry_at, faulted_since;
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

/* --- records ------------------------------------------------------------ */

static void held_free(held_t *h)
{
    free(h);
}

/* A copy of m's record (topic is the partition's own name); NULL when out
 * of memory. m stays the caller's. */
static held_t *held_new(rd_kafka_message_t *m, const char *topic)
{
    rd_kafka_headers_t *headers = NULL;
    size_t hlen;
    held_t *h;
    unsigned char *bytes;
    int64_t ts;

    if (rd_kafka_message_headers(m, &headers))
        headers = NULL; /* none */
    hlen = headers_packed_size(headers);
    if (!(h = malloc(sizeof(*h) + m->key_len + m->len + hlen)))
        return NULL;
    bytes = (unsigned char *)(h + 1);
    if (m->key_len)
        memcpy(bytes, m->key, m->key_len);
    if (m->len)
        memcpy(bytes + m->key_len, m->payload, m->len);
    headers_pack_into(headers, bytes + m->key_len + m->len);
    ts = rd_kafka_message_timestamp(m, NULL);
    h->record = (prime_record_t){
        .topic = topic, .partition = m->partition, .offset = m->offset, .key = m->key ? bytes : NULL,
        .key_len = m->key_len, .value = bytes + m->key_len, .len = m->len,
        .headers = hlen ? bytes + m->key_len + m->len : NULL, .headers_len = hlen, .timestamp = ts > 0 ? ts : 0,
    };
    return h;
}

/* What a held record costs in memory. */
static size_t held_size(const held_t *h)
{
    return sizeof(*h) + h->record.key_len + h->record.len + h->record.headers_len;
}

/* Its Kafka timestamp (ms), -1 when none. */
static int64_t held_ts(const held_t *h)
{
    return prime_record_timestamp(&h->record);
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
    p->qbytes = 0;
    p->received_next = -1;
    p->last_ts = INT64_MIN;
    p->paused = false;
    p->gap_noted = false;
    p->skipped_next = 0;
    p->past_end = false;
    p->gap_checked = NO_ROW;
    p->at_end = false;
    return p;
}

static void queue_clear(prime_worker_t *w, partition_state_t *p)
{
    for (size_t i = 0; i < p->qlen; i++)
        held_free(p->queue[(p->qhead + i) % p->qcap]);
    w->queued -= p->qlen;
    p->qhead = p->qlen = 0;
    p->qbytes = 0;
    p->received_next = -1;
    p->last_ts = INT64_MIN;
}

static void set_paused(prime_worker_t *w, partition_state_t *p, bool pause);

static void remove_part(prime_worker_t *w, const char *topic, int32_t partition)
{
    partition_state_t *p = find_part(w, topic, partition);
    if (!p)
        return;
    if (p->paused) /* librdkafka keeps a partition's pause across a revocation: not ours to leave behind */
        set_paused(w, p, false);
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
        prime_error_t err;
        /* Through prime_pg_error: no DETAIL or CONTEXT text in a log. */
        prime_error_clear(&err);
        prime_pg_error(w->db, res, "reading stored offsets", NULL, &err);
        prime_log(PRIME_LOG_WARN, "cannot read stored offsets", "error=\"%s\"",
                  prime_log_value(err.message, safe, sizeof(safe)));
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

static void dead_free_from(prime_worker_t *w, size_t mark);

static void batch_drop(prime_worker_t *w)
{
    dead_free_from(w, 0);
    for (size_t i = 0; i < w->n; i++)
        held_free(w->batch[i]);
    w->n = 0;
    w->batch_bytes = 0;
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

    /* In a fault, its start and its end are logged (fault()), not each retry. */
    prime_log(w->faulted ? PRIME_LOG_DEBUG : PRIME_LOG_WARN, "batch abandoned; resuming from the stored offsets",
              "reason=\"%s\" records=%zu", prime_log_value(why, safe, sizeof(safe)), w->n);
    batch_drop(w);
    queues_clear(w);
    db_close(w);
    while (!stop_requested && read_stored_offsets(w))
        usleep(200 * 1000);
    if (stop_requested || !w->nparts)
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
        rc = -2; /* the database's fault */
    } else if (strtoull(PQcmdTuples(res), NULL, 10) != expected) {
        *why = "the stored offset moved: another worker committed this partition";
        rc = -1; /* fenced: no fault, the other worker goes on */
    }
    PQclear(res);
    return rc;
}

/* The fence of the assigned partitions the group has never committed (no
 * row) and the commit does not move: none may have got a row since this
 * worker read them. A row is inserted and deleted again in the transaction:
 * a conflict (another worker committed the partition) refuses the commit,
 * and a worker committing the partition meanwhile waits for this
 * transaction, then inserts its row. Without it, a zombie's housekeeping
 * (n == 0) passed the fence whenever its successor's first commits were of
 * partitions new to the group, and expired the successor's parked events. */
static int fence_absent(prime_worker_t *w, const char **why)
{
    prime_buf_t topics, parts;
    const char *params[5] = {w->conf->group, NULL, NULL, NULL, NULL};
    size_t count = 0;
    int rc = 0;

    prime_buf_init(&topics, 0);
    prime_buf_init(&parts, 0);
    prime_pg_array_begin(&topics);
    prime_pg_array_begin(&parts);
    for (size_t i = 0; i < w->nparts; i++) {
        char part[16];
        if (w->parts[i].batch_next >= 0 || w->parts[i].stored != NO_ROW)
            continue;
        snprintf(part, sizeof(part), "%d", (int)w->parts[i].partition);
        prime_pg_array_add(&topics, w->parts[i].topic);
        prime_pg_array_add(&parts, part);
        count++;
    }
    prime_pg_array_end(&topics);
    prime_pg_array_end(&parts);
    params[1] = topics.data;
    params[2] = parts.data;
    if (count && (topics.failed || parts.failed)) {
        *why = "out of memory storing offsets";
        rc = -2;
    } else if (count) {
        rc = offsets_statement(w,
                               "INSERT INTO prime_pipeline.consumer_offsets (group_id, topic, kafka_partition, next_offset) "
                               "SELECT $1, topic, part, 0 FROM unnest($2::text[], $3::int[]) AS x(topic, part) "
                               "ON CONFLICT (group_id, topic, kafka_partition) DO NOTHING",
                               3, params, count, why);
        if (!rc)
            rc = offsets_statement(w,
                                   "DELETE FROM prime_pipeline.consumer_offsets o USING unnest($2::text[], $3::int[]) "
                                   "AS x(topic, part) WHERE o.group_id = $1 AND o.topic = x.topic "
                                   "AND o.kafka_partition = x.part",
                                   3, params, count, why);
    }
    prime_buf_free(&topics);
    prime_buf_free(&parts);
    return rc;
}

/* The batch's partitions move from their stored offset to batch_next, on
 * the condition that the stored offset is still what this worker read:
 * two statements (partitions seen before, partitions new to the group),
 * each of which must touch every row it names; then the fence of the
 * assigned partitions that have no row and stay so (fence_absent). */
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
            rc = -2;
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
    return rc ? rc : fence_absent(w, why);
}

/* Whether another worker has committed one of the batch's partitions
 * since this worker read its offset. */
static bool offsets_moved(prime_worker_t *w)
{
    const char *params[1] = {w->conf->group};
    PGresult *res = PQexecParams(w->db,
                                 "SELECT topic, kafka_partition, next_offset FROM prime_pipeline.consumer_offsets "
                                 "WHERE group_id = $1",
                                 1, NULL, params, NULL, NULL, 0);
    bool moved = false;

    for (int r = 0; PQresultStatus(res) == PGRES_TUPLES_OK && r < PQntuples(res) && !moved; r++) {
        const partition_state_t *p = find_part(w, PQgetvalue(res, r, 0), atoi(PQgetvalue(res, r, 1)));
        moved = p && p->batch_next >= 0 && p->stored != atoll(PQgetvalue(res, r, 2));
    }
    PQclear(res);
    return moved;
}

/* Whether err is the environment's fault (the database's schema,
 * permissions or resources, a lost connection, memory): waiting mends it,
 * and no record is to blame. Otherwise a record is (or the program). */
static bool environment_fault(const prime_worker_t *w, const prime_error_t *err)
{
    return err->retriable || err->code == PRIME_ERR_NOMEM || !w->db || PQstatus(w->db) != CONNECTION_OK;
}

#define FAULT_BACKOFF_MAX_MS 30000

/* The batch cannot go on because of the environment: it is tried again
 * after a wait that doubles from 100 ms to 30 s. Nothing is dead-lettered
 * and nothing committed. When its transaction is known to be rolled back,
 * the batch is kept for the retry (the stored offsets did not move);
 * otherwise (a COMMIT whose outcome is unknown) it is dropped and the
 * consumer sought back to what the database says (resync). The fault is
 * logged when it begins and when it ends, not at each retry, and /healthz
 * reports it. */
static void fault(prime_worker_t *w, const char *why, bool rolled_back)
{
    char safe[512];

    prime_log_value(why, safe, sizeof(safe));
    if (!w->faulted) {
        w->faulted = true;
        w->fault_idle = !w->n;
        w->faulted_since = prime_time_monotonic();
        w->backoff_ms = 100;
        w->fault_retries = 0;
        prime_log(PRIME_LOG_WARN, "environment fault: the batch waits and is retried, nothing is dead-lettered",
                  "error=\"%s\"", safe);
    } else {
        w->backoff_ms = w->backoff_ms < FAULT_BACKOFF_MAX_MS / 2 ? w->backoff_ms * 2 : FAULT_BACKOFF_MAX_MS;
    }
    w->fault_retries++;
    w->retry_at = prime_time_monotonic() + w->backoff_ms / 1000.0;
    metrics_set_fault(&w->metrics, safe);
    if (!rolled_back) {
        resync(w, why);
        return;
    }
    atomic_fetch_add(&w->metrics.retries, 1);
    dead_free_from(w, 0); /* apply() queues them again */
    if (w->db && PQstatus(w->db) != CONNECTION_OK)
        db_close(w); /* made again by the retry */
}

/* After a commit: a batch of records clears any fault; housekeeping only
 * one that housekeeping met (it does not prove that records can be
 * applied). */
static void fault_cleared(prime_worker_t *w, size_t n)
{
    if (!w->faulted || (!n && !w->fault_idle))
        return;
    prime_log(PRIME_LOG_INFO, "environment fault cleared", "retries=%d seconds=%.1f", w->fault_retries,
              prime_time_monotonic() - w->faulted_since);
    w->faulted = false;
    w->retry_at = 0;
    metrics_set_fault(&w->metrics, NULL);
}

/* apply() refused the batch and the environment is not to blame: one of
 * its records is (an answer that does not fit its schema, a value the
 * database refuses). In a new transaction, each record is applied alone
 * under a savepoint, in order; a record refused alone is dead-lettered
 * with apply()'s reason, what it did taken back (its rows and its dead
 * letters), and the others go on. Returns PRIME_OK, or the error that
 * stopped it (an environment fault, or a dead letter that failed). */
static prime_errcode_t isolate(prime_worker_t *w, prime_error_t *err)
{
    prime_errcode_t rc = prime_pg_exec(w->db, "BEGIN", "BEGIN", err);

    for (size_t i = 0; i < w->n && !rc; i++) {
        size_t mark = w->ndead;
        prime_error_t why;

        prime_error_clear(&why);
        if ((rc = prime_pg_exec(w->db, "SAVEPOINT prime_record", "SAVEPOINT", err)))
            break;
        if (w->hooks.apply(w, w->db, &w->records[i], 1, w->ctx, &why) == PRIME_OK) {
            rc = prime_pg_exec(w->db, "RELEASE SAVEPOINT prime_record", "RELEASE SAVEPOINT", err);
            continue;
        }
        if (environment_fault(w, &why)) {
            *err = why;
            return why.code;
        }
        dead_free_from(w, mark);
        if (!(rc = prime_pg_exec(w->db, "ROLLBACK TO SAVEPOINT prime_record", "ROLLBACK TO SAVEPOINT", err)))
            rc = prime_worker_dead_letter(w, &w->records[i], &why, err);
    }
    return rc;
}

/* apply() failed: the environment's fault waits (fault()); a record's is
 * isolated and dead-lettered (isolate()). Returns 0 when the batch may go
 * on to commit, -1 when it was abandoned. Only an error no record explains
 * (apply() failing with no records, a dead letter that cannot be written)
 * stops the worker: the program is wrong. */
static int apply_failed(prime_worker_t *w, prime_error_t *err)
{
    char safe[512];

    prime_pg_exec(w->db, "ROLLBACK", "ROLLBACK", NULL);
    dead_free_from(w, 0);
    if (!environment_fault(w, err) && offsets_moved(w)) {
        /* A zombie (stopped past its session, its partitions committed by
         * another worker since): its apply failed on what the other wrote.
         * No record is to blame: re-read, as the fence would. */
        resync(w, "the stored offset moved: another worker committed this partition");
        return -1;
    }
    if (!environment_fault(w, err) && w->n > 0) {
        prime_log(PRIME_LOG_WARN, "batch refused; applying its records one by one", "error=\"%s\" records=%zu",
                  prime_log_value(err->message, safe, sizeof(safe)), w->n);
        prime_error_clear(err);
        if (isolate(w, err) == PRIME_OK)
            return 0;
        prime_pg_exec(w->db, "ROLLBACK", "ROLLBACK", NULL);
        dead_free_from(w, 0);
    }
    if (environment_fault(w, err)) {
        fault(w, err->message, true);
    } else {
        prime_log(PRIME_LOG_ERROR, "batch cannot be applied; stopping", "error=\"%s\" field=%s",
                  prime_log_value(err->message, safe, sizeof(safe)), err->field[0] ? err->field : "-");
        w->fatal = 1;
        stop_requested = 1;
        batch_drop(w);
    }
    return -1;
}

static void dead_send(prime_worker_t *w);

/* Applies and commits the batch, or abandons it (resync). With an empty
 * batch and housekeeping set, apply() still runs (n == 0). */
static void batch_run(prime_worker_t *w, bool housekeeping)
{
    prime_error_t err;
    const char *why = NULL;
    double t0 = prime_time_monotonic();
    size_t n = w->n;
    int stored;

    if (n == 0 && !housekeeping)
        return;
    if (db_connect(w))
        return; /* stopping */
    prime_error_clear(&err);
    w->dlq_failed = 0;
    w->emitted_bytes = 0;
    if (prime_pg_exec(w->db, "BEGIN", "BEGIN", &err)) {
        fault(w, err.message, true);
        return;
    }
    if (w->hooks.apply(w, w->db, w->records, n, w->ctx, &err) && apply_failed(w, &err))
        return;
    /* Every assigned partition is fenced, not only the batch's: apply()
     * may have touched what belongs to any of them (parked events). */
    for (size_t i = 0; i < w->nparts; i++)
        if (w->parts[i].batch_next < 0 && w->parts[i].stored != NO_ROW)
            w->parts[i].batch_next = w->parts[i].stored;
    if ((stored = store_offsets(w, &why))) {
        prime_pg_exec(w->db, "ROLLBACK", "ROLLBACK", NULL);
        if (stored == -2)
            fault(w, why, true);
        else
            resync(w, why);
        return;
    }
    /* Dead letters are delivered before the commit: never lost. */
    dead_send(w);
    if (w->dlq && rd_kafka_flush(producer_kafka(w->dlq), 30000) != RD_KAFKA_RESP_ERR_NO_ERROR)
        w->dlq_failed++;
    dead_free_from(w, 0);
    if (w->dlq_failed) {
        prime_pg_exec(w->db, "ROLLBACK", "ROLLBACK", NULL);
        fault(w, "dead letters not delivered", true);
        return;
    }
    if (prime_pg_exec(w->db, "COMMIT", "COMMIT", NULL)) {
        fault(w, "COMMIT failed (its outcome is read back from the database)", false);
        return;
    }
    fault_cleared(w, n);
    for (size_t i = 0; i < w->nparts; i++)
        if (w->parts[i].batch_next >= 0)
            w->parts[i].stored = w->parts[i].batch_next;
    /* Derived events of the committed batch go out now, not at the
     * relay's next second. */
    if (w->emitted && w->relay)
        outbox_relay_kick(w->relay);
    w->emitted = false;
    atomic_fetch_add(&w->metrics.outbox_backlog, (int_fast64_t)w->emitted_bytes); /* until the relay measures it */
    if (n == 0) {
        batch_drop(w); /* the fence's marks */
        return;        /* housekeeping: not a batch */
    }
    atomic_fetch_add(&w->metrics.records, n);
    metrics_observe_batch(&w->metrics, prime_time_monotonic() - t0);
    prime_log(PRIME_LOG_DEBUG, "batch committed", "records=%zu seconds=%.3f", n, prime_time_monotonic() - t0);
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
        /* Partitions lost while paused (a session timeout) come back
         * paused in librdkafka but not in our state: start them fetching. */
        rd_kafka_resume_partitions(rk, list);
    } else {
        /* The batch in flight holds records of these partitions: finish it
         * while they are still ours. */
        batch_commit(w);
        /* A batch kept for a retry (an environment fault) holds records
         * of these partitions: given up, and the rest sought back. */
        if (w->n)
            resync(w, "partitions revoked while the batch waits");
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
    bool ask = prime_time_monotonic() - w->replay_queried >= 1.0;

    if (ask)
        w->replay_queried = prime_time_monotonic();
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
    if (w->hooks.dead_letter)
        return w->hooks.dead_letter(w, w->db, r, why, w->ctx, err);
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

static void on_dlq_delivery(const rd_kafka_message_t *m, void *opaque)
{
    prime_worker_t *w = opaque;
    if (m->err) {
        w->dlq_failed++;
        snprintf(w->dlq_error, sizeof(w->dlq_error), "%s", rd_kafka_err2str(m->err));
        prime_log(PRIME_LOG_WARN, "dead letter not delivered", "error=\"%s\"", w->dlq_error);
    }
}

static void dead_free_from(prime_worker_t *w, size_t mark)
{
    for (size_t i = mark; i < w->ndead; i++) {
        free(w->dead[i].topic);
        free(w->dead[i].key);
        free(w->dead[i].value);
        if (w->dead[i].headers)
            rd_kafka_headers_destroy(w->dead[i].headers);
    }
    if (mark < w->ndead)
        w->ndead = mark;
}

size_t prime_worker_dead_letter_mark(const prime_worker_t *w)
{
    return w->ndead;
}

void prime_worker_dead_letter_rewind(prime_worker_t *w, size_t mark)
{
    dead_free_from(w, mark);
}

/* The batch's dead letters to the producer; the flush before the commit
 * confirms them. */
static void dead_send(prime_worker_t *w)
{
    char safe[512];

    for (size_t i = 0; i < w->ndead && !w->dlq_failed; i++) {
        dead_letter_t *d = &w->dead[i];
        rd_kafka_resp_err_t kerr =
            rd_kafka_producev(producer_kafka(w->dlq), RD_KAFKA_V_TOPIC("prime.dlq"), RD_KAFKA_V_KEY(d->key, d->key_len),
                              RD_KAFKA_V_VALUE(d->value, d->len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                              RD_KAFKA_V_HEADERS(d->headers), RD_KAFKA_V_END);
        if (kerr) {
            w->dlq_failed++;
            snprintf(w->dlq_error, sizeof(w->dlq_error), "%s", rd_kafka_err2str(kerr));
            prime_log(PRIME_LOG_WARN, "cannot queue a dead letter", "error=\"%s\"", w->dlq_error);
            break;
        }
        d->headers = NULL; /* the producer's now */
        atomic_fetch_add(&w->metrics.dead_letters, 1);
        prime_log(PRIME_LOG_WARN, "dead-lettered", "topic=%s partition=%d offset=%lld class=%s field=%s error=\"%s\"",
                  d->topic, (int)d->partition, (long long)d->offset, prime_errcode_name(d->why.code),
                  d->why.field[0] ? d->why.field : "-", prime_log_value(d->why.message, safe, sizeof(safe)));
    }
}

prime_errcode_t prime_worker_dead_letter(prime_worker_t *w, const prime_record_t *r, const prime_error_t *why,
                                         prime_error_t *err)
{
    dead_letter_t *d;
    char part[16], offset[24];

    if (w->replay)
        return replay_dead_letter(w, r, why, err);
    if (w->ndead == w->deadcap) {
        size_t cap = w->deadcap ? w->deadcap * 2 : 16;
        dead_letter_t *grown = realloc(w->dead, cap * sizeof(*grown));
        if (!grown)
            return prime_error_set(err, PRIME_ERR_NOMEM, NULL, "out of memory for a dead letter");
        w->dead = grown;
        w->deadcap = cap;
    }
    d = &w->dead[w->ndead];
    *d = (dead_letter_t){.partition = r->partition, .offset = r->offset, .key_len = r->key_len, .len = r->len,
                         .why = *why};
    d->topic = strdup(r->topic);
    d->key = r->key ? malloc(r->key_len ? r->key_len : 1) : NULL;
    d->value = malloc(r->len ? r->len : 1);
    d->headers = headers_of(r);
    w->ndead++;
    if (!d->topic || (r->key && !d->key) || !d->value || !d->headers) {
        dead_free_from(w, w->ndead - 1);
        return prime_error_set(err, PRIME_ERR_NOMEM, NULL, "out of memory for a dead letter");
    }
    if (r->key_len)
        memcpy(d->key, r->key, r->key_len);
    if (r->len)
        memcpy(d->value, r->value, r->len);
    snprintf(part, sizeof(part), "%d", (int)r->partition);
    snprintf(offset, sizeof(offset), "%lld", (long long)r->offset);
    rd_kafka_header_add(d->headers, "prime.error.class", -1, prime_errcode_name(why->code), -1);
    rd_kafka_header_add(d->headers, "prime.error.field", -1, why->field, -1);
    rd_kafka_header_add(d->headers, "prime.error.message", -1, why->message, -1);
    rd_kafka_header_add(d->headers, "prime.source.topic", -1, r->topic, -1);
    rd_kafka_header_add(d->headers, "prime.source.partition", -1, part, -1);
    rd_kafka_header_add(d->headers, "prime.source.offset", -1, offset, -1);
    rd_kafka_header_add(d->headers, "prime.worker", -1, w->conf->name, -1);
    if (w->hooks.dead_letter)
        return w->hooks.dead_letter(w, w->db, r, why, w->ctx, err);
    return PRIME_OK;
}

int64_t prime_record_timestamp(const prime_record_t *r)
{
    return r->timestamp > 0 ? r->timestamp : -1;
}

prime_errcode_t prime_worker_emit(prime_worker_t *w, PGconn *conn, const prime_emit_t *msgs, size_t n,
                                  prime_error_t *err)
{
    if (!n || w->replay)
        return PRIME_OK; /* a replay reads the derived events from their topics: none is made again */
    w->emitted = true;
    for (size_t i = 0; i < n; i++)
        w->emitted_bytes += msgs[i].len + strlen(msgs[i].key);
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

prime_errcode_t prime_worker_topic_ends(prime_worker_t *w, const char *topic, int64_t *ends, int max, int *n,
                                        prime_error_t *err)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *t;
    rd_kafka_resp_err_t e;
    prime_errcode_t rc = PRIME_OK;

    *n = 0;
    if (!(t = rd_kafka_topic_new(w->consumer, topic, NULL)))
        return prime_error_set(err, PRIME_ERR_NOMEM, NULL, "out of memory");
    e = rd_kafka_metadata(w->consumer, 0, t, &md, 5000);
    if (!e && (md->topic_cnt != 1 || md->topics[0].err))
        e = md->topic_cnt == 1 ? md->topics[0].err : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC;
    for (int i = 0; !e && i < md->topics[0].partition_cnt; i++) {
        int32_t p = md->topics[0].partitions[i].id;
        int64_t low, high;
        if (p < 0 || p >= max)
            continue;
        if ((e = rd_kafka_query_watermark_offsets(w->consumer, topic, p, &low, &high, 5000)))
            break;
        ends[p] = high;
        if (p + 1 > *n)
            *n = p + 1;
    }
    if (e) {
        rc = prime_error_set(err, PRIME_ERR_KAFKA, NULL, "reading the end offsets of %s: %s", topic, rd_kafka_err2str(e));
        err->retriable = true;
    }
    if (md)
        rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(t);
    return rc;
}

bool prime_worker_partition(const prime_worker_t *w, size_t i, const char **topic, int32_t *partition)
{
    if (i >= w->nparts)
        return false;
    *topic = w->parts[i].topic;
    *partition = w->parts[i].partition;
    return true;
}

void prime_worker_count_applied(prime_worker_t *w, size_t n)
{
    atomic_fetch_add(&w->metrics.applied, n);
}

/* --- the loop ----------------------------------------------------------------- */

static rd_kafka_t *new_consumer(prime_worker_t *w)
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
    };
    char prefetch_kb[24], fetch_bytes[24];

    rd_kafka_conf_set(conf, "group.id", c->group, errstr, sizeof(errstr));
    for (size_t i = 0; i < sizeof(consumer_defaults) / sizeof(consumer_defaults[0]); i++)
        rd_kafka_conf_set(conf, consumer_defaults[i][0], consumer_defaults[i][1], errstr, sizeof(errstr));
    /* librdkafka's prefetch is an eighth of --memory-max-mb (the
     * worker queues records itself, merging partitions by time), and
     * one fetch no more than that (nor than librdkafka's default). */
    snprintf(prefetch_kb, sizeof(prefetch_kb), "%lld", (long long)c->memory_max_mb * 1024 / 8);
    snprintf(fetch_bytes, sizeof(fetch_bytes), "%lld",
             ((long long)c->memory_max_mb << 17) < 52428800 ? (long long)c->memory_max_mb << 17 : 52428800LL);
    rd_kafka_conf_set(conf, "queued.max.messages.kbytes", prefetch_kb, errstr, sizeof(errstr));
    rd_kafka_conf_set(conf, "fetch.max.bytes", fetch_bytes, errstr, sizeof(errstr));
    rd_kafka_conf_set_rebalance_cb(conf, on_rebalance);
    if (worker_kafka_conf_apply(c, conf)) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_conf_set_opaque(conf, w);
    if (!(rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr)))) {
        prime_log(PRIME_LOG_ERROR, "cannot create a Kafka client", "error=\"%s\"", errstr);
        rd_kafka_conf_destroy(conf);
    }
    return rk;
}

/* The dead-letter producer failed for good (a fatal error of an idempotent
 * producer: its sequence is broken, and librdkafka refuses to go on). What
 * it held was not confirmed, so the batch is abandoned as in any fault and
 * comes again, its dead letters with it; a new producer (a new producer id)
 * sends them. A dead letter may then appear twice, as after a crash, never
 * not at all. Returns -1 when no new producer can be made. */
static int dlq_renew(prime_worker_t *w)
{
    fault(w, "the dead-letter producer failed for good", true);
    return producer_renew(w->dlq, NULL, 0);
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
 * 1000 records queued (or its share of four batches), or its share of the
 * queues' bytes, is paused until half of them are taken: that bounds the
 * queues. Smaller thresholds made a drain crawl, each resume waiting for a
 * fetch.
 *
 * Bytes: --memory-max-mb is split an eighth for librdkafka's prefetch
 * (new_client), three eighths for the partitions' queues, half for the
 * batch; a record larger than a share still goes, alone. */

static size_t pause_at(const prime_worker_t *w)
{
    size_t n = w->nparts ? (size_t)w->conf->batch_max * 4 / w->nparts : 1000;
    return n < 1000 ? 1000 : n;
}

static size_t memory_max(const prime_worker_t *w)
{
    return (size_t)w->conf->memory_max_mb << 20;
}

/* A partition's share of the queues' bytes. */
static size_t pause_bytes(const prime_worker_t *w)
{
    return memory_max(w) / 8 * 3 / (w->nparts ? w->nparts : 1);
}

static bool batch_full(const prime_worker_t *w)
{
    return w->n >= (size_t)w->conf->batch_max || w->batch_bytes >= memory_max(w) / 2;
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

/* The first record of a partition since it was assigned (or sought back)
 * is not at its stored offset, and the log says why: its end is before the
 * stored offset (the topic was recreated, say: librdkafka started over at
 * the beginning, auto.offset.reset, and the records before the stored
 * offset are passed over), or its start is past it (records deleted by
 * retention before they were applied). Either is logged once per
 * partition and counted in prime_records_skipped_total; a record that
 * merely precedes a seek back is neither. */
static void note_gap(prime_worker_t *w, partition_state_t *p, int64_t offset)
{
    int64_t lo = -1, hi = -1, skipped = 0;

    if (offset == p->stored)
        return;
    /* The log's ends, once per stored offset (a query waits for the broker). */
    if (p->gap_checked != p->stored) {
        p->gap_checked = p->stored;
        if (rd_kafka_get_watermark_offsets(w->consumer, p->topic, p->partition, &lo, &hi) || lo < 0 || hi < 0)
            rd_kafka_query_watermark_offsets(w->consumer, p->topic, p->partition, &lo, &hi, 2000);
        p->past_end = hi >= 0 && hi < p->stored;
        if (p->past_end && !p->gap_noted)
            prime_log(PRIME_LOG_WARN, "stored offset is past the end of the log (topic recreated?): its records are "
                      "passed over until the stored offset", "topic=%s partition=%d stored=%lld log_end=%lld",
                      p->topic, (int)p->partition, (long long)p->stored, (long long)hi);
        p->gap_noted |= p->past_end;
        if (offset > p->stored && lo > p->stored) {
            skipped = lo - p->stored;
            prime_log(PRIME_LOG_WARN, "records deleted from the log before they were applied (retention)",
                      "topic=%s partition=%d stored=%lld log_start=%lld lost=%lld", p->topic, (int)p->partition,
                      (long long)p->stored, (long long)lo, (long long)skipped);
        }
    }
    if (offset < p->stored && p->past_end && offset >= p->skipped_next) {
        skipped = 1; /* counted the first time it comes, not after a seek back */
        p->skipped_next = offset + 1;
    }
    if (skipped)
        atomic_fetch_add(&w->metrics.skipped, (uint_fast64_t)skipped);
}

/* A fetched record into its partition's queue; m is consumed. */
static int receive(prime_worker_t *w, rd_kafka_message_t *m)
{
    partition_state_t *p = find_part(w, rd_kafka_topic_name(m->rkt), m->partition);
    held_t *h;

    if (p && p->stored != NO_ROW && p->received_next < 0)
        note_gap(w, p, m->offset);
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
        p->head_ts = held_ts(h);
    p->queue[(p->qhead + p->qlen++) % p->qcap] = h;
    p->qbytes += held_size(h);
    p->received_next = h->record.offset + 1;
    p->last_ts = held_ts(h);
    w->queued++;
    if (!p->paused && (p->qlen >= pause_at(w) || p->qbytes >= pause_bytes(w)))
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
    p->qbytes -= held_size(h);
    w->queued--;
    w->batch_bytes += held_size(h);
    if (p->qlen)
        p->head_ts = held_ts(p->queue[p->qhead]);
    if (p->paused && !p->at_end && p->qlen < pause_at(w) / 2 && p->qbytes < pause_bytes(w) / 2)
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
    while (w->queued && !batch_full(w)) {
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

/* Whether batches must wait for the outbox relay: from when the group's
 * outbox holds more than --outbox-max-mb until it is down to half that
 * (the relay measures it once a second; commits add what they wrote).
 * Records then stay queued, and the queues' bounds pause the partitions. */
static bool outbox_backpressure(prime_worker_t *w)
{
    int64_t backlog = atomic_load(&w->metrics.outbox_backlog), max = w->metrics.outbox_max;
    bool waiting = atomic_load(&w->metrics.writers_waiting);

    if (!waiting && backlog > max) {
        prime_log(PRIME_LOG_WARN, "batches wait for the outbox relay", "backlog_bytes=%lld max_bytes=%lld",
                  (long long)backlog, (long long)max);
        atomic_store(&w->metrics.writers_waiting, true);
    } else if (waiting && backlog <= max / 2) {
        prime_log(PRIME_LOG_INFO, "outbox relay caught up; batches resume", "backlog_bytes=%lld", (long long)backlog);
        atomic_store(&w->metrics.writers_waiting, false);
    }
    return atomic_load(&w->metrics.writers_waiting);
}

int prime_worker_run(const prime_worker_conf_t *conf, prime_apply_fn apply, void *ctx)
{
    const prime_worker_hooks_t hooks = {.apply = apply};

    return prime_worker_run_hooks(conf, &hooks, ctx);
}

int prime_worker_run_hooks(const prime_worker_conf_t *conf, const prime_worker_hooks_t *hooks, void *ctx)
{
    prime_worker_t w = {.conf = conf, .hooks = *hooks, .ctx = ctx};
    rd_kafka_topic_partition_list_t *subs;
    metrics_server_t *server = NULL;
    struct sigaction sa = {.sa_handler = on_signal};
    double batch_started = 0, last_lag = 0, last_activity = prime_time_monotonic(), blocked_since = 0;
    /* How long a partition still fetching may hold the merge back before
     * it is overtaken (its events may then wait in parking instead). */
    const double patience = conf->linger_ms > 1000 ? conf->linger_ms / 1000.0 : 1.0;
    rd_kafka_resp_err_t kerr;
    bool outbox_waiting = false;

    prime_log_init(conf->name);
    metrics_init(&w.metrics, conf->name);
    w.metrics.outbox_max = (int64_t)conf->outbox_max_mb << 20;
    w.metrics.stall_seconds = conf->stall_seconds;
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
    if (!(w.consumer = new_consumer(&w)) ||
        (!w.replay && (!(w.dlq = producer_new(conf, "dead-letter", on_dlq_delivery, &w, &w.metrics.dlq_fatal_errors)) ||
                       !(w.relay = outbox_relay_start(conf, &w.metrics))))) {
        w.fatal = 1;
        goto out;
    }
    /* For tests: librdkafka's own way to raise a fatal producer error. */
    if (getenv("PRIME_TEST_DLQ_FATAL"))
        rd_kafka_test_fatal_error(producer_kafka(w.dlq), RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER, "raised by the test");
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
        double now = prime_time_monotonic();
        int wait_ms = w.n || w.queued ? (int)((batch_started + conf->linger_ms / 1000.0 - now) * 1000) : 100;
        rd_kafka_message_t *m = rd_kafka_consumer_poll(w.consumer, wait_ms > 0 ? (wait_ms < 100 ? wait_ms : 100) : 0);
        int got = 0, filled;
        bool waiting;

        /* What has arrived, up to a batch's worth, then into the batch. */
        while (m && got >= 0 && got < conf->batch_max) {
            if (m->err) {
                if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                    prime_log(PRIME_LOG_WARN, "consumer error", "error=\"%s\"", rd_kafka_message_errstr(m));
                rd_kafka_message_destroy(m);
            } else {
                if (!w.n && !w.queued)
                    batch_started = prime_time_monotonic();
                got = receive(&w, m) ? -1 : got + 1;
            }
            m = got >= 0 && got < conf->batch_max ? rd_kafka_consumer_poll(w.consumer, 0) : NULL;
        }
        if (got > 0)
            last_activity = prime_time_monotonic();
        outbox_waiting = outbox_backpressure(&w);
        filled = got < 0 ? -1 : outbox_waiting ? 0 : fill_batch(&w, blocked_since && prime_time_monotonic() - blocked_since >= patience);
        if (filled == 1 && !blocked_since)
            blocked_since = prime_time_monotonic();
        else if (filled == 0)
            blocked_since = 0;
        if (filled < 0) {
            prime_log(PRIME_LOG_ERROR, "out of memory for the batch", NULL);
            w.fatal = 1;
            break;
        }
        if (w.dlq)
            rd_kafka_poll(producer_kafka(w.dlq), 0);
        if (w.dlq && producer_failed(w.dlq) && dlq_renew(&w)) {
            w.fatal = 1;
            break;
        }
        waiting = prime_time_monotonic() < w.retry_at; /* an environment fault: batches wait (fault()) */
        if (!waiting && w.n && (batch_full(&w) || prime_time_monotonic() - batch_started >= conf->linger_ms / 1000.0)) {
            batch_commit(&w);
            batch_started = prime_time_monotonic(); /* what is still queued starts the next batch's wait */
        }
        if (!waiting && w.n == 0 && w.nparts && !outbox_waiting && prime_time_monotonic() - last_activity >= 1.0) {
            batch_run(&w, true); /* idle: housekeeping */
            last_activity = prime_time_monotonic();
        }
        if (prime_time_monotonic() - last_lag > 1) {
            update_lag(&w);
            last_lag = prime_time_monotonic();
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
        rd_kafka_flush(producer_kafka(w.dlq), 10000);
        producer_free(w.dlq);
    }
    db_close(&w);
    metrics_server_stop(server);
    for (size_t i = 0; i < w.nparts; i++)
        free(w.parts[i].topic);
    free(w.parts);
    free(w.batch);
    free(w.records);
    replay_finish(&w);
    free(w.dead);
    prime_log(w.fatal ? PRIME_LOG_ERROR : PRIME_LOG_INFO, w.fatal ? "stopped after an error" : "stopped",
              "batches=%llu records=%llu", (unsigned long long)atomic_load(&w.metrics.batches),
              (unsigned long long)atomic_load(&w.metrics.records));
    return w.fatal ? 1 : 0;
}
