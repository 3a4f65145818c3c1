/* prime-reprocess: analyse audio files again, in batch, and follow the
 * answers.
 *
 *   prime-reprocess [-b BROKERS] [-X key=value]... [--db CONNINFO] SELECTION...
 *                   [--rate N] [--run LABEL] [--timeout S] [--dry-run]
 *   SELECTION: --all | --user ID | --project ID | --stems-only
 *              | --older-than-version V | --failed   (all given must hold)
 *
 * It selects files from audio_files, publishes one audio.analysis_requested
 * per file (at most --rate a second), then follows the analyzer's answers
 * (prime_pipeline.analysis_requests, written with each answer) until every
 * request is answered or --timeout passes: a progress bar on a terminal, a
 * line every 5 s otherwise, and a summary with failures grouped by reason.
 *
 * Resumable: a request's event_id is derived from the file and the run
 * label (default: this release's analyzer version), so a second run finds
 * the requests already answered and sends nothing for them, and a request
 * sent again before its answer is analysed once (the analyzer collapses a
 * repeated request id).
 *
 * Exit status: 0 every file analysed; 1 a file failed or is still pending
 * (or a broker or database error); 2 bad usage. */
#include "prime/time.h"
#include "prime/analysis.h"
#include "prime/pg.h"
#include "prime/producer.h"
#include "prime/uuid.h"
#include "prime/version.h"

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Namespace of request ids: uuid5(NAMESPACE_URL,
 * "https://prime.mixclub.studio/reprocess"); the name is the file id and the
 * run label. */
#define REQUEST_NAMESPACE "53e52c5a-d05d-543f-a2df-fdc6f0b3389f"
#define MAX_X 64
#define MAX_REASONS 32

static const char usage[] =
    "usage: prime-reprocess [-b BROKERS] [-X key=value]... [--db CONNINFO] SELECTION... [--rate N]\n"
    "                       [--run LABEL] [--timeout S] [--dry-run]\n"
    "  SELECTION (every one given must hold):\n"
    "    --all                     every file\n"
    "    --user ID                 the files of one user\n"
    "    --project ID              the files of one project\n"
    "    --stems-only              stems only\n"
    "    --older-than-version V    files never analysed, or analysed by a version older than V\n"
    "    --failed                  files with no analysis whose analysis failed, and files whose request\n"
    "                              of this run (--run) failed; retry them under a new --run label\n"
    "  --rate N       requests a second (default 100)\n"
    "  --run LABEL    names this reprocessing; the same label resumes it (default: the analyzer version)\n"
    "  --timeout S    stop following the answers after S seconds (default: wait for all)\n"
    "  --dry-run      list what would be sent; send nothing\n";

typedef struct options {
    const char *brokers, *db;
    const char *x_keys[MAX_X], *x_values[MAX_X];
    int nx;
    bool all, stems_only, failed, dry_run;
    char user[PRIME_UUID_TEXT], project[PRIME_UUID_TEXT];
    const char *older_than, *run;
    double rate;
    double timeout;
} options_t;

typedef struct file {
    char *id, *owner, *path, *version;
    char request_id[PRIME_UUID_TEXT];
    char *outcome; /* NULL while pending; "analyzed" or the failure's reason */
} file_t;

static volatile sig_atomic_t stopping;
static void on_signal(int sig)
{
    (void)sig;
    stopping = 1;
}

static int bad_usage(const char *what, const char *got)
{
    fprintf(stderr, "prime-reprocess: %s%s%s%s\n(prime-reprocess --help lists the options)\n", what,
            got ? ", got '" : "", got ? got : "", got ? "'" : "");
    return 2;
}

/* A UUID option in canonical form, or false when it is not a UUID. */
static bool uuid_option(const char *v, char out[PRIME_UUID_TEXT])
{
    static const char shape[] = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";
    if (strlen(v) != 36)
        return false;
    for (int i = 0; i < 36; i++)
        if (shape[i] == '-' ? v[i] != '-' : !strchr("0123456789abcdefABCDEF", v[i]))
            return false;
    prime_uuid_canonical(v, out);
    return true;
}

/* A version as the analyzer writes them: numbers joined by dots ("1.1.0").
 * Anything else ("v1.1.0") compares below every real version, part by
 * part, and would select every file. */
static bool version_text(const char *v)
{
    bool digit = false;
    for (; *v; v++) {
        if (*v >= '0' && *v <= '9')
            digit = true;
        else if (*v == '.' && digit)
            digit = false;
        else
            return false;
    }
    return digit;
}

static int parse(options_t *o, int argc, char **argv)
{
    memset(o, 0, sizeof(*o));
    o->brokers = getenv("PRIME_BROKERS");
    o->db = getenv("PRIME_DB");
    o->rate = 100;
    o->run = PRIME_ANALYZER_VERSION;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool takes_value = !strcmp(a, "-b") || !strcmp(a, "-X") || !strcmp(a, "--db") || !strcmp(a, "--user") ||
                           !strcmp(a, "--project") || !strcmp(a, "--older-than-version") || !strcmp(a, "--rate") ||
                           !strcmp(a, "--run") || !strcmp(a, "--timeout");
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
            *eq = '\0';
            o->x_keys[o->nx] = argv[i];
            o->x_values[o->nx++] = eq + 1;
        } else if (!strcmp(a, "--all")) {
            o->all = true;
        } else if (!strcmp(a, "--stems-only")) {
            o->stems_only = true;
        } else if (!strcmp(a, "--failed")) {
            o->failed = true;
        } else if (!strcmp(a, "--dry-run")) {
            o->dry_run = true;
        } else if (!strcmp(a, "--user")) {
            if (!uuid_option(v, o->user))
                return bad_usage("--user: expected a user id (a UUID)", v);
        } else if (!strcmp(a, "--project")) {
            if (!uuid_option(v, o->project))
                return bad_usage("--project: expected a project id (a UUID)", v);
        } else if (!strcmp(a, "--older-than-version")) {
            if (!version_text(v))
                return bad_usage("--older-than-version: expected a version such as 1.1.0 (numbers joined by dots)", v);
            o->older_than = v;
        } else if (!strcmp(a, "--run")) {
            if (!*v)
                return bad_usage("--run: expected a label", v);
            o->run = v;
        } else if (!strcmp(a, "--rate") || !strcmp(a, "--timeout")) {
            char *end;
            double d = strtod(v, &end);
            if (*end || end == v || !(d > 0) || d > 1e6)
                return bad_usage(!strcmp(a, "--rate") ? "--rate: expected requests a second, above 0"
                                                      : "--timeout: expected seconds, above 0",
                                 v);
            *(!strcmp(a, "--rate") ? &o->rate : &o->timeout) = d;
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage, stdout);
            return -1;
        } else {
            return bad_usage("unknown argument", a);
        }
    }
    if (!o->all && !*o->user && !*o->project && !o->stems_only && !o->older_than && !o->failed)
        return bad_usage("say which files: --all, --user, --project, --stems-only, --older-than-version or --failed",
                         NULL);
    if (!o->dry_run && !o->brokers)
        return bad_usage("no brokers: give -b BROKERS or set PRIME_BROKERS", NULL);
    return 0;
}

static const char select_sql[] =
    "SELECT a.id::text, a.user_id::text, a.file_path, coalesce(a.audio_analysis->>'analyzer_version', '') "
    "FROM audio_files a "
    "WHERE ($1 = '' OR a.user_id = $1::uuid) AND ($2 = '' OR a.project_id = $2::uuid) "
    "  AND ($3 = 'f' OR a.is_stem) "
    "  AND ($4 = 'f' OR EXISTS (SELECT 1 FROM prime_pipeline.analysis_requests r "
    "                           WHERE r.file_id = a.id AND r.outcome <> 'analyzed')) "
    "ORDER BY a.id";

/* The files the options select, with their request ids. Returns the count,
 * or -1 after a database error (printed). */
static long select_files(const options_t *o, PGconn *conn, file_t **out)
{
    const char *params[4] = {o->user, o->project, o->stems_only ? "t" : "f", o->failed ? "t" : "f"};
    PGresult *res = PQexecParams(conn, select_sql, 4, NULL, params, NULL, NULL, 0);
    prime_error_t err;
    char msg[768];
    long n = 0;

    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        prime_error_clear(&err);
        prime_pg_error(conn, res, "selecting the files", select_sql, &err);
        fprintf(stderr, "prime-reprocess: %s\n", prime_error_str(&err, msg, sizeof(msg)));
        PQclear(res);
        return -1;
    }
    *out = calloc((size_t)PQntuples(res) + 1, sizeof(file_t));
    for (int i = 0; *out && i < PQntuples(res); i++) {
        const char *version = PQgetvalue(res, i, 3);
        file_t *f = &(*out)[n];
        char name[256];
        int len;
        /* Older: never analysed, or by an older version (compared as the
         * materializer compares them). */
        if (o->older_than && *version && prime_version_cmp(version, o->older_than) >= 0)
            continue;
        f->id = strdup(PQgetvalue(res, i, 0));
        f->owner = strdup(PQgetvalue(res, i, 1));
        f->path = strdup(PQgetvalue(res, i, 2));
        f->version = strdup(version);
        len = snprintf(name, sizeof(name), "%s\n%s", f->id, o->run);
        if (!f->id || !f->owner || !f->path || !f->version ||
            prime_uuid_v5(REQUEST_NAMESPACE, name, (size_t)len, f->request_id)) {
            PQclear(res);
            fputs("prime-reprocess: out of memory\n", stderr);
            return -1;
        }
        n++;
    }
    PQclear(res);
    if (!*out) {
        fputs("prime-reprocess: out of memory\n", stderr);
        return -1;
    }
    return n;
}

/* Reads the answers to the requests still pending. Returns the number of
 * newly answered, or -1 after a database error (printed). */
static long read_answers(PGconn *conn, file_t *files, long n)
{
    prime_buf_t ids;
    const char *params[1];
    PGresult *res;
    long fresh = 0;

    prime_buf_init(&ids, 0);
    prime_pg_array_begin(&ids);
    for (long i = 0; i < n; i++)
        if (!files[i].outcome)
            prime_pg_array_add(&ids, files[i].request_id);
    prime_pg_array_end(&ids);
    if (ids.failed) {
        fputs("prime-reprocess: out of memory\n", stderr);
        return -1;
    }
    params[0] = ids.data;
    static const char sql[] = "SELECT DISTINCT ON (request_event_id) request_event_id::text, outcome "
                              "FROM prime_pipeline.analysis_requests WHERE request_event_id = ANY($1::uuid[]) "
                              "ORDER BY request_event_id, outcome";
    res = PQexecParams(conn, sql, 1, NULL, params, NULL, NULL, 0);
    prime_buf_free(&ids);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        prime_error_t err;
        char msg[768];
        prime_error_clear(&err);
        prime_pg_error(conn, res, "reading the answers", sql, &err);
        fprintf(stderr, "prime-reprocess: %s\n", prime_error_str(&err, msg, sizeof(msg)));
        PQclear(res);
        return -1;
    }
    /* Files are few enough (one request each) for a scan per answer to be
     * noise beside the analysis; answers come in a trickle. */
    for (int r = 0; r < PQntuples(res); r++)
        for (long i = 0; i < n; i++)
            if (!files[i].outcome && !strcmp(files[i].request_id, PQgetvalue(res, r, 0))) {
                if (!(files[i].outcome = strdup(PQgetvalue(res, r, 1))))
                    fresh = -1;
                else if (fresh >= 0)
                    fresh++;
                break;
            }
    PQclear(res);
    return fresh;
}

/* --failed, once this run's answers are known: a file failed when it has
 * no analysis at all, or when this run's request for it failed (a file
 * analysed before and failing now keeps its old analysis). */
static long keep_failed(file_t *files, long n)
{
    long kept = 0;
    for (long i = 0; i < n; i++) {
        bool failed_now = files[i].outcome && strcmp(files[i].outcome, "analyzed");
        if (!*files[i].version || failed_now) {
            files[kept++] = files[i];
        } else {
            free(files[i].id);
            free(files[i].owner);
            free(files[i].path);
            free(files[i].version);
            free(files[i].outcome);
        }
    }
    return kept;
}

typedef struct tally {
    long done, failed, pending;
} tally_t;

static tally_t count(const file_t *files, long n)
{
    tally_t t = {0, 0, 0};
    for (long i = 0; i < n; i++) {
        if (!files[i].outcome)
            t.pending++;
        else if (!strcmp(files[i].outcome, "analyzed"))
            t.done++;
        else
            t.failed++;
    }
    return t;
}

static void progress(const file_t *files, long n, long answered_before, double started, bool tty, bool last)
{
    tally_t t = count(files, n);
    double elapsed = prime_time_monotonic() - started;
    long answered_now = t.done + t.failed - answered_before;
    double rate = elapsed > 0 ? (double)answered_now / elapsed : 0;
    char eta[32] = "-";

    if (rate > 0 && t.pending)
        snprintf(eta, sizeof(eta), "%.0f s", (double)t.pending / rate);
    if (tty) {
        int width = 30, filled = n ? (int)((t.done + t.failed) * width / n) : width;
        fprintf(stderr, "\r[%.*s%*s] %ld/%ld done %ld failed %ld pending %.1f files/s ETA %s \033[K",
                filled, "##############################", width - filled, "", t.done + t.failed, n, t.failed,
                t.pending, rate, eta);
        if (last)
            fputc('\n', stderr);
    } else {
        fprintf(stderr, "prime-reprocess: %ld done, %ld failed, %ld pending, %.1f files/s, ETA %s\n", t.done,
                t.failed, t.pending, rate, eta);
    }
}

typedef struct sender {
    long delivered, undelivered;
} sender_t;

static void on_delivery(const prime_delivery_t *d, void *opaque)
{
    sender_t *s = opaque;
    if (!d->error) {
        s->delivered++;
    } else {
        char msg[600];
        s->undelivered++;
        fprintf(stderr, "prime-reprocess: a request was not delivered: %s\n",
                d->error ? prime_error_str(d->error, msg, sizeof(msg)) : "unknown");
    }
}

/* Publishes one request per pending file, at most o->rate a second.
 * Returns 0, or 1 after an error (printed). */
static int send_requests(const options_t *o, file_t *files, long n, sender_t *s)
{
    prime_producer_conf_t *conf = prime_producer_conf_new();
    prime_producer_t *p;
    prime_error_t err;
    char msg[768];
    double start = prime_time_monotonic();
    long sent = 0;
    int rc = 0;

    prime_error_clear(&err);
    if (!conf || prime_producer_conf_set(conf, "bootstrap.servers", o->brokers, &err)) {
        prime_producer_conf_free(conf);
        goto fail;
    }
    for (int i = 0; i < o->nx; i++)
        if (prime_producer_conf_set(conf, o->x_keys[i], o->x_values[i], &err)) {
            prime_producer_conf_free(conf);
            goto fail;
        }
    prime_producer_conf_set_delivery_cb(conf, on_delivery, s);
    if (!(p = prime_producer_new(conf, &err)))
        goto fail;
    for (long i = 0; i < n && !rc && !stopping; i++) {
        prime_event_t *ev;
        static const char reason_prefix[] = "reprocess ";
        char reason[256];
        if (files[i].outcome)
            continue;
        /* Pace: request k leaves no earlier than k / rate seconds in. */
        double due = start + (double)sent / o->rate;
        while (!stopping && prime_time_monotonic() < due)
            prime_producer_poll(p, (int)((due - prime_time_monotonic()) * 1000) + 1);
        snprintf(reason, sizeof(reason), "%s%s", reason_prefix, o->run);
        if (!(ev = prime_producer_event_new(p, "audio.analysis_requested", &err)) ||
            prime_event_set_string(ev, "event_id", files[i].request_id, 36, &err) ||
            prime_event_set_string(ev, "actor_user_id", files[i].owner, strlen(files[i].owner), &err) ||
            prime_event_set_string(ev, "owner_user_id", files[i].owner, strlen(files[i].owner), &err) ||
            prime_event_set_string(ev, "device_id", "prime-reprocess", 15, &err) ||
            prime_event_set_string(ev, "file_id", files[i].id, strlen(files[i].id), &err) ||
            prime_event_set_string(ev, "file_path", files[i].path, strlen(files[i].path), &err) ||
            prime_event_set_string(ev, "reason", reason, strlen(reason), &err) ||
            prime_producer_publish(p, ev, NULL, &err)) {
            fprintf(stderr, "prime-reprocess: file %s: %s\n", files[i].id, prime_error_str(&err, msg, sizeof(msg)));
            rc = 1;
        }
        prime_event_free(ev);
        sent++;
    }
    if (prime_producer_flush(p, 30000, &err)) {
        fprintf(stderr, "prime-reprocess: %s\n", prime_error_str(&err, msg, sizeof(msg)));
        rc = 1;
    }
    prime_producer_free(p);
    return rc || s->undelivered ? 1 : 0;
fail:
    fprintf(stderr, "prime-reprocess: %s\n", prime_error_str(&err, msg, sizeof(msg)));
    return 1;
}

static void summary(const file_t *files, long n, long answered_before, double started)
{
    tally_t t = count(files, n);
    struct reason {
        const char *reason;
        long count;
    } reasons[MAX_REASONS];
    int nreasons = 0;
    double elapsed = prime_time_monotonic() - started;

    printf("prime-reprocess: %ld selected, %ld answered in an earlier run, %ld sent; %ld analysed, %ld failed, "
           "%ld pending after %.1f s (%.1f files/s)\n",
           n, answered_before, n - answered_before, t.done, t.failed, t.pending, elapsed,
           elapsed > 0 ? (double)(t.done + t.failed - answered_before) / elapsed : 0);
    for (long i = 0; i < n; i++) {
        int k = 0;
        if (!files[i].outcome || !strcmp(files[i].outcome, "analyzed"))
            continue;
        while (k < nreasons && strcmp(reasons[k].reason, files[i].outcome))
            k++;
        if (k == nreasons && nreasons < MAX_REASONS)
            reasons[nreasons++] = (struct reason){files[i].outcome, 0};
        if (k < nreasons)
            reasons[k].count++;
    }
    for (int k = 0; k < nreasons; k++)
        printf("  failed: %-20s %ld\n", reasons[k].reason, reasons[k].count);
    for (long i = 0, shown = 0; i < n && shown < 20; i++)
        if (files[i].outcome && strcmp(files[i].outcome, "analyzed"))
            printf("    %s %s (%s)\n", files[i].id, files[i].path, files[i].outcome), shown++;
}

int main(int argc, char **argv)
{
    options_t o;
    prime_error_t err;
    char msg[768];
    PGconn *conn;
    file_t *files = NULL;
    long n, answered_before;
    int rc = parse(&o, argc, argv);
    double started;
    bool tty = isatty(STDERR_FILENO);

    if (rc)
        return rc < 0 ? 0 : rc;
    prime_error_clear(&err);
    if (!(conn = prime_pg_connect(o.db, &err))) {
        fprintf(stderr, "prime-reprocess: %s\n", prime_error_str(&err, msg, sizeof(msg)));
        return 1;
    }
    if ((n = select_files(&o, conn, &files)) < 0 || (answered_before = read_answers(conn, files, n)) < 0) {
        rc = 1;
        goto out;
    }
    if (o.failed) {
        n = keep_failed(files, n);
        answered_before = n - count(files, n).pending;
    }
    if (o.dry_run) {
        for (long i = 0; i < n; i++)
            if (!files[i].outcome)
                printf("would request %s %s (analysed by: %s)\n", files[i].id, files[i].path,
                       *files[i].version ? files[i].version : "none");
        printf("prime-reprocess: %ld selected, %ld answered in an earlier run, %ld would be sent\n", n,
               answered_before, n - answered_before);
        goto out;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    started = prime_time_monotonic();
    sender_t sender = {0, 0};
    if (answered_before < n && send_requests(&o, files, n, &sender)) {
        rc = 1;
        goto out;
    }
    /* Follow the answers: poll the table the analyzer writes with each. */
    double last_line = 0;
    while (!stopping && count(files, n).pending) {
        if (o.timeout > 0 && prime_time_monotonic() - started > o.timeout)
            break;
        if (read_answers(conn, files, n) < 0) {
            rc = 1;
            goto out;
        }
        if (tty || prime_time_monotonic() - last_line >= 5) {
            progress(files, n, answered_before, started, tty, false);
            last_line = prime_time_monotonic();
        }
        if (count(files, n).pending)
            usleep(200 * 1000); /* the analyzer's pace, not a condition: we poll its table */
    }
    progress(files, n, answered_before, started, tty, true);
    summary(files, n, answered_before, started);
    {
        tally_t t = count(files, n);
        rc = t.failed || t.pending ? 1 : 0;
        if (t.pending)
            fprintf(stderr, "prime-reprocess: %ld requests still pending%s; run again with the same selection to "
                            "follow them\n",
                    t.pending, stopping ? " (stopped)" : " at --timeout");
    }
out:
    for (long i = 0; files && i < n; i++) {
        free(files[i].id);
        free(files[i].owner);
        free(files[i].path);
        free(files[i].version);
        free(files[i].outcome);
    }
    free(files);
    PQfinish(conn);
    return rc;
}
