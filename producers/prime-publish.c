/* prime-publish: newline-delimited JSON events -> Kafka, through
 * libprime_producer's public API alone.
 *
 *   prime-publish [-b BROKERS] [-X key=value]... [--dry-run] [--strict]
 *                 [--rejects FILE] [--quiet] [FILE...]
 *   prime-publish --list-types
 *   prime-publish --example TYPE
 *
 * Each line is one JSON object: "type" names the event type, the other
 * members are its fields (docs/events.md). A bad line is reported with its
 * file, line number, field and what was expected, and skipped (or, with
 * --strict, ends the run); --rejects keeps every bad or undelivered line
 * with its error, so nothing is lost. Exit status: 0 when every line was
 * sent and delivered, 1 when any was rejected, undelivered or of unknown
 * delivery, 2 on bad usage. */
#include "prime/producer.h"
#include "prime/time.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_X 64

typedef struct options {
    const char *brokers;
    const char *x_keys[MAX_X], *x_values[MAX_X]; /* point into argv */
    int nx;
    int dry_run, strict, quiet;
    const char *rejects_path;
    char **inputs;
    int ninputs;
} options_t;

typedef struct run {
    const options_t *opt;
    prime_producer_t *producer;
    FILE *rejects;
    unsigned long long lines, sent, delivered, rejected, failed, unknown;
    int progress;
    struct timespec last_progress;
} run_t;

/* Where a line came from; travels with its message until delivery. */
typedef struct origin {
    const char *source;
    unsigned long long line;
    char *text; /* kept only with --rejects, to save an undelivered line */
} origin_t;

static void usage(FILE *out)
{
    fputs("usage: prime-publish [-b BROKERS] [-X key=value]... [--dry-run] [--strict] [--rejects FILE]\n"
          "                     [--quiet] [FILE...]\n"
          "       prime-publish --list-types | --example TYPE\n"
          "Reads one JSON event per line from the FILEs (or standard input) and publishes each to its topic.\n"
          "  -b BROKERS       bootstrap servers (default: $PRIME_BROKERS)\n"
          "  -X key=value     a librdkafka property, or prime.max.json.bytes / prime.max.message.bytes\n"
          "                   (the size limits; defaults 524288 and 1000000)\n"
          "  --dry-run        validate and show what would be sent (with the event_id and occurred_at it\n"
          "                   generates for a line without them); send nothing\n"
          "  --strict         stop at the first bad line (default: report it, skip it, go on)\n"
          "  --rejects FILE   append each bad or undelivered line to FILE with its error (JSON lines)\n"
          "  --quiet          no per-line errors on stderr (the summary stays)\n"
          "Exit status: 0 all sent and delivered, 1 something rejected or undelivered, 2 bad usage.\n",
          out);
}

static void write_reject(run_t *r, const char *source, unsigned long long line, const char *text, size_t len,
                         const prime_error_t *err)
{
    json_t *o;

    if (!r->rejects)
        return;
    o = json_pack("{s:s, s:I, s:{s:s, s:s, s:s}, s:s%}", "source", source, "line", (json_int_t)line, "error",
                  "code", prime_errcode_name(err->code), "field", err->field, "message", err->message, "input",
                  text, len);
    if (!o) /* the line is not UTF-8: keep it as bytes-with-escapes */
        o = json_pack("{s:s, s:I, s:{s:s, s:s, s:s}, s:s}", "source", source, "line", (json_int_t)line, "error",
                      "code", prime_errcode_name(err->code), "field", err->field, "message", err->message,
                      "input", "(not valid UTF-8; see the source line)");
    if (o) {
        json_dumpf(o, r->rejects, JSON_COMPACT);
        fputc('\n', r->rejects);
        json_decref(o);
    }
}

static void report(run_t *r, const char *source, unsigned long long line, const prime_error_t *err)
{
    char msg[800];
    if (!r->opt->quiet) {
        if (r->progress)
            fputs("\r\033[K", stderr);
        fprintf(stderr, "%s:%llu: %s\n", source, line, prime_error_str(err, msg, sizeof(msg)));
    }
}

static void on_delivery(const prime_delivery_t *d, void *opaque)
{
    run_t *r = opaque;
    origin_t *o = d->opaque;

    if (!d->error) {
        r->delivered++;
    } else {
        if (d->status == PRIME_DELIVERY_UNKNOWN)
            r->unknown++; /* the message names the event_id to publish it again with */
        else
            r->failed++;
        report(r, o->source, o->line, d->error);
        if (o->text)
            write_reject(r, o->source, o->line, o->text, strlen(o->text), d->error);
    }
    free(o->text);
    free(o);
}

static void show_progress(run_t *r, int final)
{
    struct timespec now;

    if (!r->progress)
        return;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (!final && (now.tv_sec - r->last_progress.tv_sec) * 1000 + (now.tv_nsec - r->last_progress.tv_nsec) / 1000000 < 250)
        return;
    r->last_progress = now;
    fprintf(stderr, "\r\033[K  %llu lines: %llu sent, %llu delivered, %llu rejected%s", r->lines, r->sent,
            r->delivered, r->rejected, final ? "\r\033[K" : "");
}

/* One line: parse, prepare or publish. Returns 0 to go on, 1 to stop. */
static int handle_line(run_t *r, const char *source, unsigned long long line, const char *text, size_t len)
{
    const prime_registry_t *reg = prime_producer_registry(r->producer);
    prime_event_t *ev = NULL;
    prime_error_t err;
    prime_errcode_t rc;
    origin_t *o = NULL;

    prime_error_clear(&err);
    rc = prime_event_from_json(reg, text, len, &ev, &err);
    if (!rc && r->opt->dry_run) {
        prime_message_t m;
        /* What the line leaves out, the library generates; a real run
         * generates them again, so they are marked as such. */
        int gen_id = !*prime_event_string(ev, "event_id"), gen_time = 0;
        int64_t when = 0;
        prime_event_get_long(ev, "occurred_at", &when, NULL, NULL);
        gen_time = when == 0;
        if (!(rc = prime_producer_prepare(r->producer, ev, &m, &err))) {
            char at[PRIME_TIME_TEXT];
            prime_time_format_rfc3339(m.occurred_at, at);
            printf("%s:%llu: %s -> %s key=%.*s event_id=%s%s occurred_at=%s%s %zu bytes\n", source, line,
                   m.event_type, m.topic, (int)m.key_len, m.key, m.event_id, gen_id ? " (generated)" : "", at,
                   gen_time ? " (generated)" : "", m.len);
            free(m.value);
            r->sent++;
        }
    } else if (!rc) {
        if (!(o = calloc(1, sizeof(*o))) || (r->rejects && !(o->text = strndup(text, len)))) {
            rc = prime_error_set(&err, PRIME_ERR_NOMEM, NULL, "out of memory");
        } else {
            o->source = source;
            o->line = line;
            rc = prime_producer_publish(r->producer, ev, o, &err);
        }
        if (rc) {
            if (o)
                free(o->text);
            free(o);
        } else {
            r->sent++;
        }
    }
    prime_event_free(ev);
    if (rc) {
        r->rejected++;
        report(r, source, line, &err);
        write_reject(r, source, line, text, len, &err);
        return r->opt->strict;
    }
    return 0;
}

static int publish_stream(run_t *r, FILE *in, const char *source)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    unsigned long long lineno = 0;
    size_t max_line = 4 * PRIME_DEFAULT_MAX_MESSAGE_BYTES + 65536;
    int stop = 0;

    while (!stop && (n = getline(&line, &cap, in)) >= 0) {
        size_t len = (size_t)n;
        lineno++;
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            len--;
        if (strspn(line, " \t") == len)
            continue; /* blank lines separate nothing and carry nothing */
        r->lines++;
        if (len > max_line) {
            prime_error_t err;
            prime_error_clear(&err);
            prime_error_set(&err, PRIME_ERR_TOO_LARGE, NULL, "line is %zu bytes, over the %zu-byte limit", len,
                            max_line);
            r->rejected++;
            report(r, source, lineno, &err);
            write_reject(r, source, lineno, line, len, &err);
            stop = r->opt->strict;
            continue;
        }
        stop = handle_line(r, source, lineno, line, len);
        show_progress(r, 0);
    }
    if (ferror(in)) {
        fprintf(stderr, "prime-publish: reading %s: %s\n", source, strerror(errno));
        stop = 1;
        r->rejected++;
    }
    free(line);
    return stop;
}

/* Fills o; the inputs and -X settings point into argv. Returns 0, or the
 * exit status for bad usage. */
static int parse_args(int argc, char **argv, options_t *o)
{
    memset(o, 0, sizeof(*o));
    o->brokers = getenv("PRIME_BROKERS");

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-b") && v) {
            o->brokers = v;
            i++;
        } else if (!strcmp(a, "-X") && v) {
            char *eq = strchr(argv[i + 1], '=');
            if (!eq || eq == v || o->nx == MAX_X) {
                fprintf(stderr, "prime-publish: -X expects key=value, got '%s'\n", v);
                return 2;
            }
            *eq = '\0'; /* argv is ours to write */
            o->x_keys[o->nx] = argv[i + 1];
            o->x_values[o->nx++] = eq + 1;
            i++;
        } else if (!strcmp(a, "--dry-run")) {
            o->dry_run = 1;
        } else if (!strcmp(a, "--strict")) {
            o->strict = 1;
        } else if (!strcmp(a, "--quiet")) {
            o->quiet = 1;
        } else if (!strcmp(a, "--rejects") && v) {
            o->rejects_path = v;
            i++;
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            exit(0);
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "prime-publish: unknown or incomplete option '%s'\n", a);
            usage(stderr);
            return 2;
        } else {
            /* Inputs are gathered, in order, at the front of argv: each
             * write lands on an entry already read. */
            argv[o->ninputs++] = argv[i];
        }
    }
    o->inputs = argv;
    return 0;
}

/* --list-types and --example need the schemas only. */
static int info_command(int argc, char **argv)
{
    prime_registry_t *reg;
    prime_error_t err;
    int rc = 0;

    if (argc < 2 || (strcmp(argv[1], "--list-types") && strcmp(argv[1], "--example")))
        return -1;
    prime_error_clear(&err);
    if (!(reg = prime_registry_new(&err))) {
        fprintf(stderr, "prime-publish: %s\n", err.message);
        return 1;
    }
    if (!strcmp(argv[1], "--list-types")) {
        const prime_event_type_t *t;
        for (size_t i = 0; (t = prime_registry_at(reg, i)); i++)
            puts(prime_event_type_name(t));
    } else if (argc < 3) {
        fprintf(stderr, "prime-publish: --example needs an event type (see --list-types)\n");
        rc = 2;
    } else {
        prime_event_t *ev = prime_event_example(reg, argv[2], 0, &err);
        char *json = ev ? prime_event_to_json(ev, &err) : NULL;
        if (!json) {
            fprintf(stderr, "prime-publish: %s (see --list-types)\n", err.message);
            rc = 2;
        } else {
            puts(json);
        }
        free(json);
        prime_event_free(ev);
    }
    prime_registry_free(reg);
    return rc;
}

int main(int argc, char **argv)
{
    options_t opt;
    run_t run = {0};
    prime_producer_conf_t *conf;
    prime_error_t err;
    char msg[800], unknown_note[96];
    int stop = 0, rc, have_timeout = 0;

    if ((rc = info_command(argc, argv)) >= 0)
        return rc;
    if ((rc = parse_args(argc, argv, &opt)))
        return rc;
    if (!opt.dry_run && (!opt.brokers || !*opt.brokers)) {
        fprintf(stderr, "prime-publish: no brokers: give -b BROKERS or set PRIME_BROKERS\n");
        return 2;
    }
    prime_error_clear(&err);
    conf = prime_producer_conf_new();
    if (!opt.dry_run && prime_producer_conf_set(conf, "bootstrap.servers", opt.brokers, &err))
        goto conf_error;
    if (opt.dry_run) /* no broker is wanted, so librdkafka's notice that none is set is noise */
        prime_producer_conf_set(conf, "log_level", "4", NULL);
    for (int i = 0; i < opt.nx; i++) {
        have_timeout |= !strcmp(opt.x_keys[i], "message.timeout.ms");
        if (prime_producer_conf_set(conf, opt.x_keys[i], opt.x_values[i], &err))
            goto conf_error;
    }
    /* A command line should not wait librdkafka's default five minutes to
     * say that a broker is gone. */
    if (!have_timeout)
        prime_producer_conf_set(conf, "message.timeout.ms", "30000", NULL);
    prime_producer_conf_set_delivery_cb(conf, on_delivery, &run);
    if (!(run.producer = prime_producer_new(conf, &err))) {
        fprintf(stderr, "prime-publish: %s\n", prime_error_str(&err, msg, sizeof(msg)));
        return 1;
    }
    run.opt = &opt;
    run.progress = !opt.quiet && isatty(STDERR_FILENO);
    if (opt.rejects_path && !(run.rejects = fopen(opt.rejects_path, "a"))) {
        fprintf(stderr, "prime-publish: %s: %s\n", opt.rejects_path, strerror(errno));
        prime_producer_free(run.producer);
        return 1;
    }

    if (opt.ninputs == 0)
        stop = publish_stream(&run, stdin, "stdin");
    for (int i = 0; i < opt.ninputs && !stop; i++) {
        FILE *in = strcmp(opt.inputs[i], "-") ? fopen(opt.inputs[i], "r") : stdin;
        if (!in) {
            fprintf(stderr, "prime-publish: %s: %s\n", opt.inputs[i], strerror(errno));
            run.rejected++;
            stop = opt.strict;
            continue;
        }
        stop = publish_stream(&run, in, opt.inputs[i]);
        if (in != stdin)
            fclose(in);
    }

    /* Every queued event ends delivered or failed: message.timeout.ms bounds
     * each one, so this loop ends. */
    while (prime_producer_outstanding(run.producer) > 0) {
        prime_producer_flush(run.producer, 500, NULL);
        show_progress(&run, 0);
    }
    show_progress(&run, 1);
    prime_producer_free(run.producer);
    if (run.rejects && fclose(run.rejects) != 0)
        fprintf(stderr, "prime-publish: %s: %s\n", opt.rejects_path, strerror(errno));

    snprintf(unknown_note, sizeof(unknown_note), ", %llu delivery unknown (the broker may have them)", run.unknown);
    if (opt.dry_run)
        fprintf(stderr, "prime-publish: %llu line%s: %llu valid (dry run, nothing sent), %llu rejected%s\n", run.lines, run.lines == 1 ? "" : "s",
                run.sent, run.rejected, stop && opt.strict ? " (stopped at the first bad line)" : "");
    else
        fprintf(stderr, "prime-publish: %llu line%s: %llu sent and delivered, %llu rejected, %llu failed delivery%s%s\n",
                run.lines, run.lines == 1 ? "" : "s", run.delivered, run.rejected, run.failed,
                run.unknown ? unknown_note : "", stop && opt.strict ? " (stopped at the first bad line)" : "");
    return run.rejected || run.failed || run.unknown ? 1 : 0;

conf_error:
    fprintf(stderr, "prime-publish: %s\n", prime_error_str(&err, msg, sizeof(msg)));
    prime_producer_conf_free(conf);
    return 2;
}
