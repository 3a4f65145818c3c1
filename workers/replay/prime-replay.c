/* prime-replay: rebuilds a database from the topics.
 *
 *   prime-replay [-b BROKERS] [-X key=value]... --db TARGET [--force] [--until RFC3339]
 *                [--allow-gaps] [--batch-max N]
 *
 * Creates the target database when it does not exist and migrates it;
 * refuses one that holds rows unless --force (which also resumes an
 * interrupted replay: its workers' offsets are in the target). Takes every
 * state topic's end offsets at the start (or, with --until, the first
 * offsets after that time: point-in-time recovery), then runs the live
 * workers' programs on the target (the materializer, the snapshot writer,
 * the audit writer, and prime-recall where it is built) in replay mode:
 * groups of their own, stopping at those offsets, emitting nothing (the
 * derived events are in their topics already and are read, not made again;
 * dead letters are counted, not sent). Exits when they are done.
 *
 * A topic whose history is truncated (earliest offset above 0) is refused,
 * since the result would silently differ; --allow-gaps goes on and says what
 * is missing. Progress (events, events/s, each topic's position, ETA) goes
 * to stderr while it runs, a summary at the end.
 *
 * Exit status: 0 done; 1 a failure (a worker failed, a broker or database
 * error, a gap refused); 2 bad usage. */
#include "prime/migrate.h"
#include "prime/pg.h"
#include "prime/time.h"

#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_X 64
#define MAX_PARTITIONS 4096
#define TIMEOUT_MS 10000

/* The topics that carry state: every client topic and the derived ones the
 * workers read (prime.dlq is not state). */
static const char *const state_topics[] = {"prime.users",    "prime.auth",     "prime.projects", "prime.audio",
                                           "prime.recall",   "prime.sessions", "prime.presets",  "prime.collab",
                                           "prime.analysis", "prime.snapshots", "prime.audit",   NULL};

/* The workers a replay runs: program, its first arguments, its group. */
typedef struct worker_spec {
    const char *program;
    const char *subcommand; /* "writer" for prime-audit, else NULL */
    const char *group;
    bool optional;          /* run only when built */
    bool after;             /* runs once the others are done: it needs their rows (prime-recall writes
                             * rows of the users the materializer wrote) */
    const char *const *options; /* more options of its own (NULL-terminated), or NULL */
} worker_spec_t;

/* prime-recall's own: whose offsets it reads (in a replay it waits for
 * nothing: the materializer has run to its end; docs/recall.md, "Owners"). */
static const char *const recall_options[] = {"--materializer-group", "prime-replay-materializer", NULL};

static const worker_spec_t workers[] = {
    {"prime-materializer", NULL, "prime-replay-materializer", false, false, NULL},
    {"prime-snapshot-writer", NULL, "prime-replay-snapshot-writer", false, false, NULL},
    {"prime-audit", "writer", "prime-replay-audit", false, false, NULL},
    {"prime-recall", NULL, "prime-replay-recall", true, true, recall_options},
};
#define NWORKERS (sizeof(workers) / sizeof(workers[0]))

typedef struct end_offset {
    const char *topic;
    int32_t partition;
    int64_t low, end; /* the first offset kept, the offset to stop at */
} end_offset_t;

typedef struct options {
    const char *brokers, *db;
    const char *x_keys[MAX_X], *x_values[MAX_X]; /* x_keys: the whole "key=value", as the workers take it */
    int nx;
    bool force, allow_gaps;
    int64_t until_ms; /* -1: the end as of the start */
    const char *batch_max;
} options_t;

static const char usage[] =
    "usage: prime-replay [-b BROKERS] [-X key=value]... --db TARGET [--force] [--until RFC3339] [--allow-gaps]\n"
    "                    [--batch-max N]\n";

static volatile sig_atomic_t stopping;
static void on_signal(int sig)
{
    (void)sig;
    stopping = 1;
}

static int bad_usage(const char *what, const char *got)
{
    fprintf(stderr, "prime-replay: %s%s%s%s\n%s", what, got ? ", got '" : "", got ? got : "", got ? "'" : "", usage);
    return 2;
}

static int parse(options_t *o, int argc, char **argv)
{
    memset(o, 0, sizeof(*o));
    o->brokers = getenv("PRIME_BROKERS");
    o->until_ms = -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool takes_value = !strcmp(a, "-b") || !strcmp(a, "-X") || !strcmp(a, "--db") || !strcmp(a, "--until") ||
                           !strcmp(a, "--batch-max");
        if (takes_value && !v)
            return bad_usage("expected a value after the option", a);
        if (takes_value)
            i++;
        if (!strcmp(a, "-b")) {
            o->brokers = v;
        } else if (!strcmp(a, "--db")) {
            o->db = v;
        } else if (!strcmp(a, "-X")) {
            char *eq = strchr(argv[i], '=');
            if (!eq || eq == argv[i] || o->nx == MAX_X)
                return bad_usage("-X: expected key=value (at most 64)", argv[i]);
            o->x_keys[o->nx] = argv[i];
            o->x_values[o->nx++] = eq + 1;
        } else if (!strcmp(a, "--until")) {
            int64_t micros;
            if (prime_time_parse_rfc3339(v, &micros))
                return bad_usage("--until: expected an RFC 3339 time such as 2026-11-30T12:00:00Z", v);
            o->until_ms = micros / 1000;
        } else if (!strcmp(a, "--batch-max")) {
            o->batch_max = v;
        } else if (!strcmp(a, "--force")) {
            o->force = true;
        } else if (!strcmp(a, "--allow-gaps")) {
            o->allow_gaps = true;
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage, stdout);
            return -1;
        } else {
            return bad_usage("unknown argument", a);
        }
    }
    if (!o->db)
        return bad_usage("--db: name the target database (a libpq connection string)", NULL);
    if (!o->brokers)
        return bad_usage("no brokers: give -b BROKERS or set PRIME_BROKERS", NULL);
    return 0;
}

/* --- the target --------------------------------------------------------------------------- */

/* conninfo with its dbname replaced (libpq takes the last of a repeated
 * keyword); for a URI, the maintenance connection is not attempted. */
static PGconn *connect_target(const options_t *o, prime_error_t *err)
{
    PGconn *conn = prime_pg_connect(o->db, err);
    PQconninfoOption *opts;
    const char *dbname = NULL;
    char msg[768];

    if (conn)
        return conn;
    /* It may not exist yet: create it from the server's maintenance
     * database, then connect again. */
    if (!(opts = PQconninfoParse(o->db, NULL)))
        return NULL;
    for (PQconninfoOption *p = opts; p->keyword; p++)
        if (!strcmp(p->keyword, "dbname") && p->val && *p->val)
            dbname = p->val;
    if (!dbname || !strstr(err->message, "does not exist")) {
        PQconninfoFree(opts);
        return NULL;
    }
    prime_buf_t admin;
    prime_buf_init(&admin, 0);
    prime_buf_printf(&admin, "%s dbname=postgres", o->db);
    prime_error_t admin_err;
    prime_error_clear(&admin_err);
    PGconn *maint = admin.failed ? NULL : prime_pg_connect(admin.data, &admin_err);
    prime_buf_free(&admin);
    if (maint) {
        char *ident = PQescapeIdentifier(maint, dbname, strlen(dbname));
        prime_buf_t sql;
        prime_buf_init(&sql, 0);
        prime_buf_printf(&sql, "CREATE DATABASE %s", ident ? ident : "\"\"");
        PQfreemem(ident);
        prime_error_clear(&admin_err);
        if (!sql.failed && !prime_pg_exec(maint, sql.data, "creating the target database", &admin_err))
            fprintf(stderr, "prime-replay: created database %s\n", dbname);
        else
            fprintf(stderr, "prime-replay: %s\n", prime_error_str(&admin_err, msg, sizeof(msg)));
        prime_buf_free(&sql);
        PQfinish(maint);
        prime_error_clear(err);
        conn = prime_pg_connect(o->db, err);
    }
    PQconninfoFree(opts);
    return conn;
}

/* Rows in the tables a replay writes, 0 when the target is empty. */
static long target_rows(PGconn *conn, prime_error_t *err)
{
    static const char sql[] =
        "SELECT (SELECT count(*) FROM prime_users) + (SELECT count(*) FROM studio_projects) "
        "     + (SELECT count(*) FROM audio_files) + (SELECT count(*) FROM project_snapshots) "
        "     + (SELECT count(*) FROM prime_pipeline.audit_log) + (SELECT count(*) FROM prime_pipeline.consumer_offsets)";
    PGresult *res = PQexec(conn, sql);
    long n = -1;
    if (PQresultStatus(res) == PGRES_TUPLES_OK)
        n = atol(PQgetvalue(res, 0, 0));
    else
        prime_pg_error(conn, res, "counting the target's rows", sql, err);
    PQclear(res);
    return n;
}

/* --- the topics --------------------------------------------------------------------------- */

static rd_kafka_t *consumer_new(const options_t *o)
{
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *rk;

    if (rd_kafka_conf_set(conf, "bootstrap.servers", o->brokers, errstr, sizeof(errstr)))
        goto bad;
    for (int i = 0; i < o->nx; i++) {
        char key[256];
        snprintf(key, sizeof(key), "%.*s", (int)(strchr(o->x_keys[i], '=') - o->x_keys[i]), o->x_keys[i]);
        if (rd_kafka_conf_set(conf, key, o->x_values[i], errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK)
            goto bad;
    }
    if ((rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr))))
        return rk;
    fprintf(stderr, "prime-replay: cannot create a Kafka client: %s\n", errstr);
    return NULL;
bad:
    fprintf(stderr, "prime-replay: %s\n", errstr);
    rd_kafka_conf_destroy(conf);
    return NULL;
}

/* Every state topic's partitions with their first offset and the offset to
 * stop at. Returns the count, or -1 after an error (printed). */
static int end_offsets(const options_t *o, end_offset_t *ends)
{
    rd_kafka_t *rk = consumer_new(o);
    int n = 0;

    if (!rk)
        return -1;
    for (int t = 0; state_topics[t]; t++) {
        const rd_kafka_metadata_t *md;
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, state_topics[t], NULL);
        rd_kafka_resp_err_t kerr = rd_kafka_metadata(rk, 0, rkt, &md, TIMEOUT_MS);
        rd_kafka_topic_destroy(rkt);
        if (kerr) {
            fprintf(stderr, "prime-replay: %s: cannot read its metadata: %s\n", state_topics[t], rd_kafka_err2str(kerr));
            goto fail;
        }
        if (md->topic_cnt != 1 || md->topics[0].err) {
            /* A topic nobody ever wrote is empty, not an error. */
            rd_kafka_metadata_destroy(md);
            continue;
        }
        rd_kafka_topic_partition_list_t *times = rd_kafka_topic_partition_list_new(md->topics[0].partition_cnt);
        for (int p = 0; p < md->topics[0].partition_cnt && n < MAX_PARTITIONS; p++) {
            end_offset_t *e = &ends[n++];
            int64_t low, high;
            e->topic = state_topics[t];
            e->partition = md->topics[0].partitions[p].id;
            if ((kerr = rd_kafka_query_watermark_offsets(rk, e->topic, e->partition, &low, &high, TIMEOUT_MS))) {
                fprintf(stderr, "prime-replay: %s [%d]: cannot read its offsets: %s\n", e->topic, e->partition,
                        rd_kafka_err2str(kerr));
                rd_kafka_topic_partition_list_destroy(times);
                rd_kafka_metadata_destroy(md);
                goto fail;
            }
            e->low = low;
            e->end = high;
            if (o->until_ms >= 0)
                rd_kafka_topic_partition_list_add(times, e->topic, e->partition)->offset = o->until_ms + 1;
        }
        rd_kafka_metadata_destroy(md);
        /* --until: the first offset whose timestamp is after the time; -1
         * (none is) keeps the end. */
        if (times->cnt && (kerr = rd_kafka_offsets_for_times(rk, times, TIMEOUT_MS))) {
            fprintf(stderr, "prime-replay: %s: cannot find the offsets of --until: %s\n", state_topics[t],
                    rd_kafka_err2str(kerr));
            rd_kafka_topic_partition_list_destroy(times);
            goto fail;
        }
        for (int i = 0; i < times->cnt; i++)
            for (int k = 0; k < n; k++)
                if (ends[k].topic == state_topics[t] && ends[k].partition == times->elems[i].partition &&
                    times->elems[i].offset >= 0 && times->elems[i].offset < ends[k].end)
                    ends[k].end = times->elems[i].offset;
        rd_kafka_topic_partition_list_destroy(times);
    }
    rd_kafka_destroy(rk);
    return n;
fail:
    rd_kafka_destroy(rk);
    return -1;
}

/* --- the workers -------------------------------------------------------------------------- */

/* The directory this program is in: the workers are built and installed
 * beside it. */
static void own_dir(char *dir, size_t size)
{
    ssize_t len = readlink("/proc/self/exe", dir, size - 1);
    dir[len > 0 ? len : 0] = '\0';
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    else
        dir[0] = '\0';
}

/* The path of a worker program: beside this one, else on PATH. NULL when
 * neither has it. */
static bool find_program(const char *name, char *path, size_t size)
{
    char dir[PATH_MAX];
    const char *env = getenv("PATH");

    own_dir(dir, sizeof(dir));
    snprintf(path, size, "%s/%s", dir, name);
    if (*dir && access(path, X_OK) == 0)
        return true;
    while (env && *env) {
        const char *colon = strchr(env, ':');
        int len = colon ? (int)(colon - env) : (int)strlen(env);
        snprintf(path, size, "%.*s/%s", len, env, name);
        if (len && access(path, X_OK) == 0)
            return true;
        env = colon ? colon + 1 : NULL;
    }
    return false;
}

static pid_t start_worker(const options_t *o, const worker_spec_t *spec, const char *path, const char *stop_file)
{
    const char *argv[32 + 2 * MAX_X];
    int argc = 0;
    pid_t pid;

    argv[argc++] = path;
    if (spec->subcommand)
        argv[argc++] = spec->subcommand;
    argv[argc++] = "--db";
    argv[argc++] = o->db;
    argv[argc++] = "-b";
    argv[argc++] = o->brokers;
    argv[argc++] = "--group";
    argv[argc++] = spec->group;
    argv[argc++] = "--replay-until";
    argv[argc++] = stop_file;
    if (o->allow_gaps)
        argv[argc++] = "--allow-gaps";
    for (int i = 0; spec->options && spec->options[i]; i++)
        argv[argc++] = spec->options[i];
    if (o->batch_max) {
        argv[argc++] = "--batch-max";
        argv[argc++] = o->batch_max;
    }
    for (int i = 0; i < o->nx; i++) {
        argv[argc++] = "-X";
        argv[argc++] = o->x_keys[i];
    }
    argv[argc] = NULL;
    if ((pid = fork()) == 0) {
        execv(path, (char *const *)argv);
        fprintf(stderr, "prime-replay: cannot run %s: %s\n", path, strerror(errno));
        _exit(127);
    }
    return pid;
}

/* Starts the chosen workers; returns how many run. */
static int start_workers(const options_t *o, const bool *chosen, pid_t *pids, const char *stop_file, int *failed)
{
    int running = 0;

    for (size_t w = 0; w < NWORKERS; w++) {
        char path[PATH_MAX];
        if (!chosen[w])
            continue;
        if (!find_program(workers[w].program, path, sizeof(path))) {
            if (workers[w].optional)
                continue;
            fprintf(stderr, "prime-replay: %s is not beside prime-replay nor on PATH\n", workers[w].program);
            stopping = 1;
            (*failed)++;
            break;
        }
        if ((pids[w] = start_worker(o, &workers[w], path, stop_file)) > 0)
            running++;
    }
    return running;
}

/* Events left parked in the target, and which workers parked them (chosen);
 * -1 on a database error. */
static long parked_events(PGconn *conn, bool *chosen)
{
    static const char sql[] = "SELECT group_id, count(*) FROM prime_pipeline.parked_events "
                              "WHERE group_id LIKE 'prime-replay-%' GROUP BY 1";
    PGresult *res = PQexec(conn, sql);
    long total = 0;

    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        fprintf(stderr, "prime-replay: counting the parked events: %s", PQresultErrorMessage(res));
        PQclear(res);
        return -1;
    }
    for (size_t w = 0; w < NWORKERS; w++)
        chosen[w] = false;
    for (int r = 0; r < PQntuples(res); r++) {
        total += atol(PQgetvalue(res, r, 1));
        for (size_t w = 0; w < NWORKERS; w++)
            if (!strcmp(workers[w].group, PQgetvalue(res, r, 0)))
                chosen[w] = true;
    }
    PQclear(res);
    return total;
}

/* Where the workers are: the target's stored offsets, summed per topic. */
static int64_t progress(PGconn *conn, const end_offset_t *ends, int n, bool print, double started, int64_t total)
{
    static const char sql[] = "SELECT topic, kafka_partition, max(next_offset) FROM prime_pipeline.consumer_offsets "
                              "WHERE group_id LIKE 'prime-replay-%' GROUP BY 1, 2";
    PGresult *res = PQexec(conn, sql);
    int64_t done = 0;
    char line[2048] = "";
    size_t used = 0;

    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        PQclear(res);
        return -1;
    }
    for (int t = 0; state_topics[t]; t++) {
        int64_t at = 0, end = 0;
        for (int k = 0; k < n; k++) {
            if (strcmp(ends[k].topic, state_topics[t]))
                continue;
            int64_t pos = ends[k].low;
            for (int r = 0; r < PQntuples(res); r++)
                if (!strcmp(PQgetvalue(res, r, 0), ends[k].topic) && atoi(PQgetvalue(res, r, 1)) == ends[k].partition)
                    pos = atoll(PQgetvalue(res, r, 2));
            at += (pos < ends[k].end ? pos : ends[k].end) - ends[k].low;
            end += ends[k].end - ends[k].low;
        }
        done += at;
        if (end && used < sizeof(line))
            used += (size_t)snprintf(line + used, sizeof(line) - used, " %s %lld/%lld", state_topics[t] + 6,
                                     (long long)at, (long long)end);
    }
    PQclear(res);
    if (print) {
        double elapsed = prime_time_monotonic() - started, rate = elapsed > 0 ? (double)done / elapsed : 0;
        char eta[32] = "-";
        if (rate > 0 && done < total)
            snprintf(eta, sizeof(eta), "%.0f s", (double)(total - done) / rate);
        fprintf(stderr, "prime-replay: %lld/%lld events, %.0f events/s, ETA %s;%s\n", (long long)done,
                (long long)total, rate, eta, line);
    }
    return done;
}

int main(int argc, char **argv)
{
    options_t o;
    prime_error_t err;
    char msg[768], stop_file[] = "/tmp/prime-replay-XXXXXX";
    static end_offset_t ends[MAX_PARTITIONS];
    pid_t pids[NWORKERS] = {0};
    int rc = parse(&o, argc, argv), n, fd = -1, running = 0, failed = 0;
    int64_t total = 0, truncated = 0;
    PGconn *conn = NULL;
    double started;
    FILE *f;

    if (rc)
        return rc < 0 ? 0 : rc;
    prime_error_clear(&err);
    if (!(conn = connect_target(&o, &err)) || prime_migrate(conn, PRIME_MIGRATE_APPLY, NULL, NULL, &err)) {
        fprintf(stderr, "prime-replay: target: %s\n", prime_error_str(&err, msg, sizeof(msg)));
        PQfinish(conn);
        return 1;
    }
    long rows = target_rows(conn, &err);
    if (rows < 0) {
        fprintf(stderr, "prime-replay: target: %s\n", prime_error_str(&err, msg, sizeof(msg)));
        rc = 1;
        goto out;
    }
    if (rows > 0 && !o.force) {
        fprintf(stderr, "prime-replay: the target holds %ld rows; give --force to replay into it anyway (an "
                        "interrupted replay resumes where it stopped)\n", rows);
        rc = 1;
        goto out;
    }
    if ((n = end_offsets(&o, ends)) < 0) {
        rc = 1;
        goto out;
    }
    for (int k = 0; k < n; k++) {
        if (ends[k].low > 0) {
            truncated += ends[k].low;
            fprintf(stderr, "prime-replay: %s [%d]: its history starts at offset %lld: %lld records are gone%s\n",
                    ends[k].topic, ends[k].partition, (long long)ends[k].low, (long long)ends[k].low,
                    o.allow_gaps ? " (--allow-gaps: going on without them)" : "");
        }
        total += ends[k].end > ends[k].low ? ends[k].end - ends[k].low : 0;
    }
    if (truncated && !o.allow_gaps) {
        fprintf(stderr, "prime-replay: refused: the topics' history is truncated, so the database would silently "
                        "differ; --allow-gaps replays what is left\n");
        rc = 1;
        goto out;
    }
    /* The offsets to stop at, for the workers: "topic partition offset". */
    if ((fd = mkstemp(stop_file)) < 0 || !(f = fdopen(fd, "w"))) {
        fprintf(stderr, "prime-replay: cannot write %s: %s\n", stop_file, strerror(errno));
        rc = 1;
        goto out;
    }
    for (int k = 0; k < n; k++)
        fprintf(f, "%s %d %lld\n", ends[k].topic, ends[k].partition, (long long)ends[k].end);
    if (fclose(f)) {
        fprintf(stderr, "prime-replay: cannot write %s: %s\n", stop_file, strerror(errno));
        rc = 1;
        goto out;
    }
    fprintf(stderr, "prime-replay: %lld events in %d partitions to replay%s\n", (long long)total, n,
            o.until_ms >= 0 ? " (up to --until)" : "");

    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    started = prime_time_monotonic();
    /* Every worker at once, as live. The workers wait on each other's rows:
     * the snapshot writer parks a snapshot until the materializer has written
     * its project, the materializer a restore until the snapshot writer has
     * stored its snapshot. Live, each takes them up at its next batch; here a
     * worker may reach its end offsets with events parked and stop (after one
     * last pass over them). So while events stay parked and their number goes
     * down, the workers that parked them run again: each such run finds its
     * offsets at the end and only makes that pass. */
    bool chosen[NWORKERS];
    long parked = -1, parked_left = 0;
    double last = prime_time_monotonic();
    /* Two phases: the workers that read each other's rows, then those that
     * only read what the first phase wrote (worker_spec_t.after). */
    for (int phase = 0; phase < 2 && !failed && !stopping; phase++) {
        long parked_before = -1;
        parked = -1;
        for (size_t w = 0; w < NWORKERS; w++)
            chosen[w] = workers[w].after == (phase == 1);
        running = start_workers(&o, chosen, pids, stop_file, &failed);
        while (running || (!failed && !stopping && (parked = parked_events(conn, chosen)) > 0 &&
                           (parked_before < 0 || parked < parked_before))) {
            if (!running) {
                fprintf(stderr, "prime-replay: %ld events parked; their workers again, to take them up\n", parked);
                parked_before = parked;
                running = start_workers(&o, chosen, pids, stop_file, &failed);
                continue;
            }
            int wstatus;
            pid_t pid = waitpid(-1, &wstatus, WNOHANG);
            if (pid > 0) {
                for (size_t w = 0; w < NWORKERS; w++)
                    if (pids[w] == pid) {
                        running--;
                        pids[w] = -pid;
                        if (!WIFEXITED(wstatus) || WEXITSTATUS(wstatus)) {
                            fprintf(stderr, "prime-replay: %s failed (%s %d)\n", workers[w].program,
                                    WIFEXITED(wstatus) ? "exit status" : "signal",
                                    WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : WTERMSIG(wstatus));
                            failed++;
                            stopping = 1;
                        }
                    }
                continue;
            }
            if (stopping)
                for (size_t w = 0; w < NWORKERS; w++)
                    if (pids[w] > 0)
                        kill(pids[w], SIGTERM);
            if (prime_time_monotonic() - last >= 2) {
                progress(conn, ends, n, true, started, total);
                last = prime_time_monotonic();
            }
            usleep(100 * 1000); /* a child's exit, checked ten times a second */
        }
        if (parked > 0)
            parked_left += parked;
    }
    parked = parked_left;
    int64_t done = progress(conn, ends, n, false, started, total);
    double elapsed = prime_time_monotonic() - started;
    if (failed || done != total) {
        fprintf(stderr, "prime-replay: incomplete: %lld of %lld events replayed%s\n", (long long)done,
                (long long)total, failed ? "; a worker failed (its log is above)" : "");
        rc = 1;
    } else {
        printf("prime-replay: %lld events replayed in %.1f s (%.0f events/s)\n", (long long)done, elapsed,
               elapsed > 0 ? (double)done / elapsed : 0);
        if (truncated)
            printf("prime-replay: %lld records were gone from the topics and are not in the target\n",
                   (long long)truncated);
        if (parked > 0)
            printf("prime-replay: %ld events stay parked in prime_pipeline.parked_events: what they wait for was "
                   "never written (the live run dead-lettered them after --park-max-seconds)\n", parked);
    }
out:
    if (fd >= 0)
        unlink(stop_file);
    PQfinish(conn);
    return rc;
}
