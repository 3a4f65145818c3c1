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
#include "prime/cli.h"
#include "prime/buf.h"
#include "prime/producer.h"
#include "prime/time.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdint.h>
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
    int rejects_failed;  /* a write to it failed: the run cannot say nothing was lost */
    size_t max_line;
    unsigned long long lines, sent, delivered, rejected, failed, unknown;
    int progress;
    struct timespec last_progress;
} run_t;

/* Where a line came from; travels with its message until delivery. */
typedef struct origin {
    const char *source;
    unsigned long long line;
    char *text; /* kept only with --rejects, to save an undelivered line */
    size_t len;
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

/* Length of the UTF-8 character at p that is safe to show as it is, or 0
 * for a byte to escape: not UTF-8 (a cut character, a stray byte), or a C1
 * control character, which terminals obey like ESC. */
static size_t shown_char_len(const unsigned char *p, size_t left)
{
    unsigned c = p[0], need;
    uint32_t cp;

    if (c < 0x80)
        return c >= 0x20 && c != 0x7F; /* C0 controls and DEL are escaped */
    if (c >= 0xC2 && c <= 0xDF)
        need = 1, cp = c & 0x1F;
    else if (c >= 0xE0 && c <= 0xEF)
        need = 2, cp = c & 0x0F;
    else if (c >= 0xF0 && c <= 0xF4)
        need = 3, cp = c & 0x07;
    else
        return 0;
    if (left <= need)
        return 0;
    for (unsigned i = 1; i <= need; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3F);
    }
    if ((need == 1 && cp <= 0x9F) || (need == 2 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
        (need == 3 && (cp < 0x10000 || cp > 0x10FFFF)))
        return 0;
    return need + 1;
}

/* s as text safe to echo to a terminal or to put in a JSON string: error
 * messages quote what the client sent (member names, excerpts of a line),
 * which may hold escape sequences or bytes that are not UTF-8. Those bytes
 * become \xNN; the rest is kept. Returns a NUL-terminated string in b. */
static const char *shown(prime_buf_t *b, const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;

    prime_buf_reset(b);
    for (size_t i = 0; i < len;) {
        size_t n = shown_char_len(p + i, len - i);
        if (n) {
            prime_buf_append(b, p + i, n);
            i += n;
        } else {
            prime_buf_printf(b, "\\x%02X", p[i++]);
        }
    }
    return b->failed ? "(out of memory)" : b->data ? b->data : "";
}

static const char *shown_str(prime_buf_t *b, const char *s)
{
    return shown(b, s, strlen(s));
}

/* The start of a rejects record, everything but the input: source, line
 * and the error, each made valid UTF-8 (shown()). NULL when out of memory. */
static json_t *reject_record(const char *source, unsigned long long line, const prime_error_t *err)
{
    prime_buf_t b;
    json_t *o = json_object(), *e = json_object();

    prime_buf_init(&b, 0);
    if (o && e) {
        json_object_set_new(o, "source", json_string(shown_str(&b, source)));
        json_object_set_new(o, "line", json_integer((json_int_t)line));
        json_object_set_new(e, "code", json_string(prime_errcode_name(err->code)));
        json_object_set_new(e, "field", json_string(shown_str(&b, err->field)));
        json_object_set_new(e, "message", json_string(shown_str(&b, err->message)));
        json_object_set_new(o, "error", e);
        e = NULL;
    }
    prime_buf_free(&b);
    json_decref(e);
    return o;
}

static void write_json_line(run_t *r, json_t *o)
{
    if (json_dumpf(o, r->rejects, JSON_COMPACT) || fputc('\n', r->rejects) == EOF)
        r->rejects_failed = 1;
}

/* Appends a rejected line to --rejects, byte for byte: as "input" when it
 * is UTF-8 (JSON holds any such text exactly, NUL included), else as
 * "input_base64". */
static void write_reject(run_t *r, const char *source, unsigned long long line, const char *text, size_t len,
                         const prime_error_t *err, const prime_delivery_t *d)
{
    json_t *o, *input;

    if (!r->rejects)
        return;
    if (!(o = reject_record(source, line, err))) {
        r->rejects_failed = 1;
        return;
    }
    if (d) /* undelivered: the id it was sent with, to publish it again with */
        json_object_set_new(o, "event_id", json_string(d->event_id));
    if ((input = json_stringn(text, len))) {
        json_object_set_new(o, "input", input);
    } else {
        size_t cap = 4 * ((len + 2) / 3) + 1;
        unsigned char *b64 = malloc(cap);
        if (b64) {
            EVP_EncodeBlock(b64, (const unsigned char *)text, (int)len);
            json_object_set_new(o, "input_base64", json_string((const char *)b64));
            free(b64);
        } else {
            r->rejects_failed = 1;
        }
    }
    write_json_line(r, o);
    json_decref(o);
}

static void report(run_t *r, const char *source, unsigned long long line, const prime_error_t *err)
{
    prime_buf_t a, b, c;

    if (r->opt->quiet)
        return;
    if (r->progress)
        fputs("\r\033[K", stderr);
    prime_buf_init(&a, 0);
    prime_buf_init(&b, 0);
    prime_buf_init(&c, 0);
    fprintf(stderr, "%s:%llu: %s%s%s\n", shown_str(&a, source), line, shown_str(&b, err->field),
            err->field[0] ? ": " : "", shown_str(&c, err->message));
    prime_buf_free(&a);
    prime_buf_free(&b);
    prime_buf_free(&c);
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
            write_reject(r, o->source, o->line, o->text, o->len, d->error, d);
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
            prime_buf_t name;
            prime_buf_init(&name, 0);
            prime_time_format_rfc3339(m.occurred_at, at);
            printf("%s:%llu: %s -> %s key=%.*s event_id=%s%s occurred_at=%s%s %zu bytes\n", shown_str(&name, source), line,
                   m.event_type, m.topic, (int)m.key_len, m.key, m.event_id, gen_id ? " (generated)" : "", at,
                   gen_time ? " (generated)" : "", m.len);
            prime_buf_free(&name);
            free(m.value);
            r->sent++;
        }
    } else if (!rc) {
        if (!(o = calloc(1, sizeof(*o))) || (r->rejects && !(o->text = malloc(len ? len : 1)))) {
            rc = prime_error_set(&err, PRIME_ERR_NOMEM, NULL, "out of memory");
        } else {
            if (o->text)
                memcpy(o->text, text, o->len = len); /* bytes, NUL included */
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
        write_reject(r, source, line, text, len, &err, NULL);
        return r->opt->strict;
    }
    return 0;
}

/* Lines from a file descriptor, never holding more than one line under
 * the limit: a longer one comes in pieces and is refused without being
 * read whole (a 100 MB line cost 200 MB of memory when it was). */
typedef struct reader {
    int fd;
    size_t pos, end;
    char chunk[65536];
} reader_t;

/* The next piece of the current line (without its '\n'): 1 with *last set
 * when the piece ends the line, 0 at the end of the input, -1 on a read
 * error (errno). */
static int next_piece(reader_t *rd, const char **data, size_t *len, int *last)
{
    const char *start, *nl;

    if (rd->pos == rd->end) {
        ssize_t n;
        do
            n = read(rd->fd, rd->chunk, sizeof(rd->chunk));
        while (n < 0 && errno == EINTR);
        if (n <= 0)
            return n < 0 ? -1 : 0;
        rd->pos = 0;
        rd->end = (size_t)n;
    }
    start = rd->chunk + rd->pos;
    nl = memchr(start, '\n', rd->end - rd->pos);
    *data = start;
    *last = nl != NULL;
    *len = nl ? (size_t)(nl - start) : rd->end - rd->pos;
    rd->pos += *len + (nl != NULL);
    return 1;
}

/* Base64 of a line too long to hold, streamed into its rejects record. */
typedef struct spill {
    FILE *out;
    unsigned char carry[3];
    size_t ncarry;
} spill_t;

static void spill_bytes(spill_t *sp, const char *data, size_t len)
{
    unsigned char b64[4 * 1024 + 1];

    while (len > 0) {
        size_t n = 0;
        while (sp->ncarry < 3 && len > 0) {
            sp->carry[sp->ncarry++] = (unsigned char)*data++;
            len--;
        }
        if (sp->ncarry < 3)
            return;
        /* Whole groups of three straight from data, the carry first. */
        EVP_EncodeBlock(b64, sp->carry, 3);
        fwrite(b64, 1, 4, sp->out);
        sp->ncarry = 0;
        n = len / 3 * 3;
        if (n > 3 * 1024)
            n = 3 * 1024;
        if (n) {
            int out = EVP_EncodeBlock(b64, (const unsigned char *)data, (int)n);
            fwrite(b64, 1, (size_t)out, sp->out);
            data += n;
            len -= n;
        }
    }
}

/* A line over the limit: reported by its length, kept in --rejects (as
 * base64, streamed) without ever being held whole. begin is what was read
 * of it before it passed the limit. Returns 1 to stop (--strict). */
static int refuse_long_line(run_t *r, reader_t *rd, const char *source, unsigned long long lineno, const char *begin,
                            size_t begin_len, const char *piece, size_t piece_len, int last, int *read_error)
{
    prime_error_t err;
    spill_t sp = {.out = r->rejects};
    size_t total = begin_len + piece_len;
    int rc = 1;

    prime_error_clear(&err);
    prime_error_set(&err, PRIME_ERR_TOO_LARGE, NULL,
                    "line is over the %zu-byte limit (4 times the %zu-byte largest message: "
                    "-X message.max.bytes or prime.max.message.bytes)",
                    r->max_line, r->max_line / 4);
    if (r->rejects) {
        json_t *o = reject_record(source, lineno, &err);
        char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
        if (text) { /* the record, its closing brace left open for the input */
            fwrite(text, 1, strlen(text) - 1, r->rejects);
            fputs(",\"input_base64\":\"", r->rejects);
        } else {
            r->rejects_failed = 1;
            sp.out = NULL;
        }
        free(text);
        json_decref(o);
    }
    if (sp.out) {
        spill_bytes(&sp, begin, begin_len);
        spill_bytes(&sp, piece, piece_len);
    }
    while (!last && (rc = next_piece(rd, &piece, &piece_len, &last)) == 1) {
        total += piece_len;
        if (sp.out)
            spill_bytes(&sp, piece, piece_len);
    }
    *read_error = rc < 0;
    if (sp.out) {
        unsigned char b64[5];
        if (sp.ncarry) {
            EVP_EncodeBlock(b64, sp.carry, (int)sp.ncarry);
            fwrite(b64, 1, 4, sp.out);
        }
        if (fprintf(sp.out, "\",\"input_bytes\":%zu}\n", total) < 0)
            r->rejects_failed = 1;
    }
    r->rejected++;
    prime_error_clear(&err);
    prime_error_set(&err, PRIME_ERR_TOO_LARGE, NULL, "line is %zu bytes, over the %zu-byte limit (4 times the "
                    "%zu-byte largest message: -X message.max.bytes or prime.max.message.bytes)",
                    total, r->max_line, r->max_line / 4);
    report(r, source, lineno, &err);
    return r->opt->strict;
}

static int publish_stream(run_t *r, int fd, const char *source)
{
    reader_t *rd = malloc(sizeof(*rd));
    prime_buf_t line;
    unsigned long long lineno = 0;
    int stop = 0, rc = 0, read_error = 0;
    prime_buf_t name;

    if (!rd) {
        fprintf(stderr, "prime-publish: out of memory\n");
        r->rejected++;
        return 1;
    }
    rd->fd = fd;
    rd->pos = rd->end = 0;
    prime_buf_init(&line, 0);
    while (!stop && !read_error) {
        const char *piece;
        size_t piece_len, len;
        int last = 0, any = 0;

        prime_buf_reset(&line);
        while ((rc = next_piece(rd, &piece, &piece_len, &last)) == 1) {
            any = 1;
            if (line.len + piece_len > r->max_line)
                break;
            if (prime_buf_append(&line, piece, piece_len))
                break;
            if (last)
                break;
        }
        if (rc < 0) {
            read_error = 1;
            break;
        }
        if (!any)
            break; /* end of input */
        lineno++;
        if (line.failed) {
            fprintf(stderr, "prime-publish: out of memory\n");
            r->rejected++;
            stop = 1;
            break;
        }
        if (rc == 1 && line.len + piece_len > r->max_line) {
            r->lines++;
            stop = refuse_long_line(r, rd, source, lineno, line.data ? line.data : "", line.len, piece, piece_len,
                                    last, &read_error);
            continue;
        }
        len = line.len;
        while (len && line.data[len - 1] == '\r')
            len--;
        if (strspn(line.data ? line.data : "", " \t") >= len)
            continue; /* blank lines separate nothing and carry nothing */
        r->lines++;
        stop = handle_line(r, source, lineno, line.data, len);
        show_progress(r, 0);
    }
    if (read_error) {
        prime_buf_init(&name, 0);
        fprintf(stderr, "prime-publish: reading %s: %s\n", shown_str(&name, source), strerror(errno));
        prime_buf_free(&name);
        stop = 1;
        r->rejected++;
    }
    prime_buf_free(&line);
    free(rd);
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

static int reads_stdin(const options_t *o)
{
    if (o->ninputs == 0)
        return 1;
    for (int i = 0; i < o->ninputs; i++)
        if (!strcmp(o->inputs[i], "-"))
            return 1;
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

static int run(int argc, char **argv)
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
    /* Before anything opens a file: with standard input closed, the first
     * descriptor opened (a librdkafka socket) would become "stdin". */
    if (reads_stdin(&opt) && fcntl(STDIN_FILENO, F_GETFD) < 0 && errno == EBADF) {
        fprintf(stderr, "prime-publish: standard input is closed: give the events as FILE arguments, or "
                        "redirect them into it\n");
        return 2;
    }
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

    /* A JSON line is longer than its encoding (escapes, whitespace), so
     * the line limit is a multiple of the message limit, and follows it. */
    run.max_line = 4 * prime_producer_max_message_bytes(run.producer);
    if (opt.ninputs == 0)
        stop = publish_stream(&run, STDIN_FILENO, "stdin");
    for (int i = 0; i < opt.ninputs && !stop; i++) {
        int fd = strcmp(opt.inputs[i], "-") ? open(opt.inputs[i], O_RDONLY | O_CLOEXEC) : STDIN_FILENO;
        if (fd < 0) {
            prime_buf_t name;
            prime_buf_init(&name, 0);
            fprintf(stderr, "prime-publish: %s: %s\n", shown_str(&name, opt.inputs[i]), strerror(errno));
            prime_buf_free(&name);
            run.rejected++;
            stop = opt.strict;
            continue;
        }
        stop = publish_stream(&run, fd, opt.inputs[i]);
        if (fd != STDIN_FILENO)
            close(fd);
    }

    /* Every queued event ends delivered or failed: message.timeout.ms bounds
     * each one, so this loop ends. */
    while (prime_producer_outstanding(run.producer) > 0) {
        prime_producer_flush(run.producer, 500, NULL);
        show_progress(&run, 0);
    }
    show_progress(&run, 1);
    prime_producer_free(run.producer);
    if (run.rejects && (fclose(run.rejects) != 0 || run.rejects_failed)) {
        fprintf(stderr, "prime-publish: %s: could not write every rejected line: %s\n", opt.rejects_path,
                strerror(errno));
        run.rejected++;
    }

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

int main(int argc, char **argv)
{
    return prime_cli_finish("prime-publish", run(argc, argv));
}
