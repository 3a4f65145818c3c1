/* prime-analyzer: uploads and analysis requests -> audio.analyzed or
 * audio.analysis_failed on prime.analysis (docs/analysis.md).
 *
 * Per batch: decode the requests (audio.file_uploaded, audio.stem_uploaded,
 * audio.analysis_requested; the topic's other events are not for it), drop
 * those already answered (prime_pipeline.analysis_requests), analyse the
 * rest on --threads threads, publish the answers in request order and wait
 * for their delivery, then record the requests as answered in the batch's
 * transaction. An answer's event_id is UUIDv5 of the request's, so an
 * answer published again after a crash is the same event and collapses
 * downstream.
 *
 * Files are opened beneath PRIME_STORAGE_ROOT (--storage-root) with
 * openat2(RESOLVE_BENEATH): an absolute path, "..", or a symlink that leads
 * outside the root is refused as path_rejected. (The validator refuses the
 * first two in events already.) */
#define _GNU_SOURCE
#include "answer.h"
#include "prime/analysis.h"
#include "prime/buf.h"
#include "prime/event.h"
#include "prime/log.h"
#include "prime/pg.h"
#include "prime/producer.h"
#include "prime/worker.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

typedef struct job {
    prime_event_t *request;
    const char *file_path;
    prime_analysis_t *analysis;
    answer_t answer; /* the outcome */
} job_t;

typedef struct analyzer {
    prime_registry_t *reg;
    prime_producer_t *producer;
    const char *root;
    int root_fd;
    int threads;
    prime_analyzer_t **analyzers; /* one per thread */
    atomic_int undelivered;
    char delivery_error[sizeof(((prime_error_t *)0)->message)];
} analyzer_t;

typedef struct pool {
    analyzer_t *a;
    job_t *jobs;
    size_t n;
    atomic_size_t next;
} pool_t;

/* The file under the storage root, never outside it. */
static int open_beneath(const analyzer_t *a, const char *path, const char **reason, char *message, size_t size)
{
    /* O_NONBLOCK: opening a FIFO (or a device) for reading would wait for
     * a writer and hold the worker; prime_analyze_fd refuses anything but
     * a regular file before reading. */
    struct open_how how = {.flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY,
                           .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS};
    /* The kernel refuses, atomically, an absolute path, a ".." or a
     * symbolic link that leads out of the root (EXDEV). */
    int fd = (int)syscall(SYS_openat2, a->root_fd, path, &how, sizeof(how));

    if (fd >= 0)
        return fd;
    *reason = errno == EXDEV || errno == ELOOP ? "path_rejected" : errno == ENOENT ? "missing" : "unreadable";
    snprintf(message, size, "%s: %s", path, errno == EXDEV ? "leads outside the storage root" : strerror(errno));
    return -1;
}

static void analyse(analyzer_t *a, prime_analyzer_t *analyzer, job_t *j)
{
    prime_analysis_failure_t why = PRIME_ANALYSIS_OK;
    prime_error_t err;
    int fd = open_beneath(a, j->file_path, &j->answer.reason, j->answer.message, sizeof(j->answer.message));

    if (fd < 0)
        return;
    prime_error_clear(&err);
    if (prime_analyze_fd(analyzer, fd, j->file_path, &j->analysis, &why, &err)) {
        j->answer.reason = why == PRIME_ANALYSIS_OK ? "unreadable" : prime_analysis_failure_name(why);
        snprintf(j->answer.message, sizeof(j->answer.message), "%s", err.message);
    }
    j->answer.analysis = j->analysis;
    close(fd);
}

static void *work(void *arg)
{
    pool_t *p = ((void **)arg)[0];
    prime_analyzer_t *analyzer = ((void **)arg)[1];
    size_t i;
    while ((i = atomic_fetch_add(&p->next, 1)) < p->n)
        analyse(p->a, analyzer, &p->jobs[i]);
    return NULL;
}

/* Every job analysed, on up to a->threads threads. */
static void run_jobs(analyzer_t *a, job_t *jobs, size_t n)
{
    pool_t pool = {.a = a, .jobs = jobs, .n = n};
    pthread_t tid[64];
    void *args[64][2];
    int started = 0;

    atomic_init(&pool.next, 0);
    for (int t = 1; t < a->threads && (size_t)t < n && t < 64; t++) {
        args[t][0] = &pool;
        args[t][1] = a->analyzers[t];
        if (pthread_create(&tid[t], NULL, work, args[t]) == 0)
            started = t;
        else
            break;
    }
    args[0][0] = &pool;
    args[0][1] = a->analyzers[0];
    work(args[0]); /* this thread works too */
    for (int t = 1; t <= started; t++)
        pthread_join(tid[t], NULL);
}

static void on_delivery(const prime_delivery_t *d, void *opaque)
{
    analyzer_t *a = opaque;
    if (d->error) {
        atomic_fetch_add(&a->undelivered, 1);
        snprintf(a->delivery_error, sizeof(a->delivery_error), "%s", d->error->message);
    }
}

/* The answer to one request (answer.c: it fits its schema, or it is an
 * analysis_failed saying why not), published. */
static prime_errcode_t answer(analyzer_t *a, job_t *j, prime_error_t *err)
{
    prime_event_t *ev = answer_event(prime_producer_registry(a->producer), &j->answer, err);
    prime_errcode_t rc = ev ? prime_producer_publish(a->producer, ev, NULL, err) : err->code;

    prime_event_free(ev);
    return rc;
}

/* Drops the jobs whose request was answered before (or comes twice in
 * this batch). */
static prime_errcode_t drop_answered(prime_worker_t *w, PGconn *conn, job_t *jobs, size_t *n, prime_error_t *err)
{
    prime_buf_t ids;
    const char *params[2];
    PGresult *res;
    prime_errcode_t rc = PRIME_OK;
    size_t kept = 0;

    prime_buf_init(&ids, 0);
    prime_pg_array_begin(&ids);
    for (size_t i = 0; i < *n; i++)
        prime_pg_array_add(&ids, jobs[i].answer.request_id);
    prime_pg_array_end(&ids);
    params[0] = prime_worker_group(w);
    params[1] = ids.data;
    /* The first job of each request not answered yet, by position. */
    res = PQexecParams(conn,
                       "SELECT min(x.ord) FROM unnest($2::uuid[]) WITH ORDINALITY AS x(id, ord) "
                       "WHERE NOT EXISTS (SELECT 1 FROM prime_pipeline.analysis_requests a "
                       "WHERE a.group_id = $1 AND a.request_event_id = x.id) GROUP BY x.id ORDER BY 1",
                       2, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        rc = prime_pg_error(conn, res, "reading answered requests", NULL, err);
    for (size_t i = 0, next = 0; !rc && i < *n; i++) {
        if (next < (size_t)PQntuples(res) && strtoull(PQgetvalue(res, (int)next, 0), NULL, 10) == i + 1) {
            next++;
            jobs[kept++] = jobs[i];
            continue;
        }
        prime_log(PRIME_LOG_INFO, "request answered before; not analysed again", "request=%s file=%s",
                  jobs[i].answer.request_id, jobs[i].answer.file_id);
        prime_event_free(jobs[i].request);
    }
    if (!rc)
        *n = kept;
    PQclear(res);
    prime_buf_free(&ids);
    return rc;
}

static prime_errcode_t record_answered(prime_worker_t *w, PGconn *conn, const job_t *jobs, size_t n,
                                       prime_error_t *err)
{
    prime_buf_t columns[3]; /* request ids, file ids, outcomes */
    const char *params[4];
    prime_errcode_t rc = PRIME_OK;

    if (!n)
        return PRIME_OK;
    prime_pg_arrays_begin(columns, 3);
    for (size_t i = 0; i < n; i++) {
        prime_pg_array_add(&columns[0], jobs[i].answer.request_id);
        prime_pg_array_add(&columns[1], jobs[i].answer.file_id);
        prime_pg_array_add(&columns[2], jobs[i].answer.reason ? jobs[i].answer.reason : "analyzed");
    }
    params[0] = prime_worker_group(w);
    if (!prime_pg_arrays_end(columns, 3, params + 1))
        rc = prime_error_set(err, PRIME_ERR_NOMEM, NULL, "out of memory recording answered requests");
    if (!rc)
        rc = prime_pg_exec_params(conn,
                                  "INSERT INTO prime_pipeline.analysis_requests (group_id, request_event_id, file_id, "
                                  "outcome) SELECT $1, r, f, o FROM unnest($2::uuid[], $3::uuid[], $4::text[]) "
                                  "AS x(r, f, o) ON CONFLICT DO NOTHING",
                                  4, params, "recording answered requests", err);
    prime_pg_arrays_free(columns, 3);
    return rc;
}

static prime_errcode_t apply(prime_worker_t *w, PGconn *conn, const prime_record_t *records, size_t n, void *ctx,
                             prime_error_t *err)
{
    analyzer_t *a = ctx;
    job_t *jobs = calloc(n ? n : 1, sizeof(*jobs));
    size_t count = 0;
    prime_errcode_t rc = PRIME_OK;

    if (!jobs)
        return prime_error_set(err, PRIME_ERR_NOMEM, NULL, "out of memory");
    for (size_t i = 0; i < n && !rc; i++) {
        prime_event_t *ev;
        const char *type;
        if ((rc = prime_worker_decode(w, a->reg, &records[i], &ev, err)) || !ev)
            continue;
        type = prime_event_type_name(prime_event_type(ev));
        if (strcmp(type, "audio.file_uploaded") && strcmp(type, "audio.stem_uploaded") &&
            strcmp(type, "audio.analysis_requested")) {
            prime_event_free(ev); /* the topic's other events are the materializer's */
            continue;
        }
        jobs[count++] = (job_t){.request = ev,
                                .file_path = prime_event_string(ev, "file_path"),
                                .answer = {.request_id = prime_event_string(ev, "event_id"),
                                           .file_id = prime_event_string(ev, "file_id"),
                                           .owner = prime_event_string(ev, "owner_user_id")}};
    }
    if (!rc && count)
        rc = drop_answered(w, conn, jobs, &count, err);
    if (!rc && count) {
        run_jobs(a, jobs, count);
        atomic_store(&a->undelivered, 0);
        for (size_t i = 0; i < count && !rc; i++) {
            rc = answer(a, &jobs[i], err);
            prime_log(PRIME_LOG_INFO, jobs[i].answer.reason ? "analysis failed" : "analysed",
                      "file=%s request=%s reason=%s", jobs[i].answer.file_id, jobs[i].answer.request_id,
                      jobs[i].answer.reason ? jobs[i].answer.reason : "-");
        }
        /* Delivered before the requests are recorded as answered. */
        if (!rc && prime_producer_flush(a->producer, 30000, err))
            rc = err->code;
        if (!rc && atomic_load(&a->undelivered)) {
            rc = prime_error_set(err, PRIME_ERR_KAFKA, NULL, "answers not delivered: %s", a->delivery_error);
            err->retriable = true;
        }
        if (!rc)
            rc = record_answered(w, conn, jobs, count, err);
        if (!rc)
            prime_worker_count_applied(w, count);
    }
    for (size_t i = 0; i < count; i++) {
        prime_analysis_free(jobs[i].analysis);
        prime_event_free(jobs[i].request);
    }
    free(jobs);
    return rc;
}

/* The results producer reaches Kafka as the consumer does (-X: TLS, SASL). */
typedef struct {
    prime_producer_conf_t *conf;
    prime_error_t *err;
} producer_props_t;

static int set_producer_prop(void *target, const char *key, const char *value)
{
    producer_props_t *p = target;
    return prime_producer_conf_set(p->conf, key, value, p->err) ? -1 : 0;
}

int main(int argc, char **argv)
{
    static const char *const topics[] = {"prime.audio", NULL};
    char **rest = calloc((size_t)argc + 1, sizeof(char *));
    int nrest = 0, rc;
    prime_worker_conf_t conf;
    analyzer_t a = {.root = getenv("PRIME_STORAGE_ROOT"), .threads = (int)sysconf(_SC_NPROCESSORS_ONLN)};
    prime_analysis_limits_t limits;
    prime_producer_conf_t *pconf;
    prime_error_t err;
    int known;

    prime_analysis_limits_init(&limits);
    prime_error_clear(&err);
    /* Its own options first; the rest are the runtime's. */
    for (int i = 0; rest && i < argc; i++) {
        if (i + 1 < argc && !strcmp(argv[i], "--storage-root")) {
            a.root = argv[++i];
        } else if (i + 1 < argc && !strcmp(argv[i], "--threads")) {
            char *end;
            long t = strtol(argv[++i], &end, 10);
            if (*end || t < 1 || t > 64) {
                fprintf(stderr, "prime-analyzer: --threads: expected 1 to 64, got '%s'\n", argv[i]);
                return 2;
            }
            a.threads = (int)t;
        } else if ((known = prime_analysis_limits_option(&limits, argv[i], i + 1 < argc ? argv[i + 1] : NULL, &err))) {
            if (known < 0) {
                fprintf(stderr, "prime-analyzer: %s\n", err.message);
                return 2;
            }
            i++;
        } else {
            rest[nrest++] = argv[i];
        }
    }
    if (!rest)
        return 1;
    if ((rc = prime_worker_conf_parse(&conf, "analyzer", topics, nrest, rest))) {
        if (rc < 0) {
            fputs("  --storage-root DIR    where file paths point (default $PRIME_STORAGE_ROOT)\n"
                  "  --threads N           files analysed at once (default: one per core)\n",
                  stdout);
            fputs(prime_analysis_limits_usage, stdout);
        }
        return rc < 0 ? 0 : rc;
    }
    if (!a.root || (a.root_fd = open(a.root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        fprintf(stderr, "prime-analyzer: storage root %s: %s\n", a.root ? a.root : "(unset)",
                a.root ? strerror(errno) : "give --storage-root or set PRIME_STORAGE_ROOT");
        return 2;
    }
    if (a.threads < 1)
        a.threads = 1;
    if (a.threads > 64)
        a.threads = 64;
    /* A batch is analysed before its answers go out and its offsets are
     * committed, and the consumer is not polled meanwhile: a batch sized in
     * records (10,000) would hold answers back for hours and outlast
     * max.poll.interval.ms (5 min) with long files, getting the member
     * evicted and the work done twice. Two files a thread bounds a batch by
     * twice the per-file CPU budget. --batch-max still overrides it. */
    bool batch_given = false;
    for (int i = 0; i < nrest; i++)
        batch_given |= !strcmp(rest[i], "--batch-max");
    if (!batch_given)
        conf.batch_max = 2 * a.threads;
    prime_error_clear(&err);
    a.analyzers = calloc((size_t)a.threads, sizeof(*a.analyzers));
    for (int t = 0; a.analyzers && t < a.threads; t++)
        if (!(a.analyzers[t] = prime_analyzer_new(&err)))
            break;
        else
            prime_analyzer_set_limits(a.analyzers[t], &limits);
    pconf = prime_producer_conf_new();
    if (!a.analyzers || !a.analyzers[a.threads - 1] || !(a.reg = prime_registry_new(&err)) || !pconf ||
        prime_worker_conf_each_kafka_prop(&conf, set_producer_prop, &(producer_props_t){pconf, &err})) {
        fprintf(stderr, "prime-analyzer: %s\n", err.message[0] ? err.message : "out of memory");
        return 1;
    }
    prime_producer_conf_set_delivery_cb(pconf, on_delivery, &a);
    if (!(a.producer = prime_producer_new(pconf, &err))) {
        fprintf(stderr, "prime-analyzer: %s\n", err.message);
        return 1;
    }
    rc = prime_worker_run(&conf, apply, &a);
    prime_producer_flush(a.producer, 10000, NULL);
    prime_producer_free(a.producer);
    for (int t = 0; t < a.threads; t++)
        prime_analyzer_free(a.analyzers[t]);
    free(a.analyzers);
    prime_registry_free(a.reg);
    close(a.root_fd);
    free(rest);
    return rc;
}
