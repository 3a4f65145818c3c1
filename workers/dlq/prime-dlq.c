/* prime-dlq: the operator's view of prime.dlq, and the way back.
 *
 *   prime-dlq [-b BROKERS] [-X key=value]... list   [FILTER...]
 *   prime-dlq [-b BROKERS] [-X key=value]... show   PARTITION:OFFSET
 *   prime-dlq [-b BROKERS] [-X key=value]... replay [FILTER...] [--dry-run]
 *
 *   FILTER: --source TOPIC, --reason CLASS, --worker NAME, --field FIELD,
 *           --since RFC3339, --offset PARTITION:OFFSET (repeatable; replay
 *           needs at least one filter, or --all)
 *
 * list groups the dead letters by worker, reason (the error class) and
 * field, with counts and one message of each group. show prints one with
 * its headers and its event decoded (secret fields withheld). replay sends
 * the selected ones back to their source topic with their original key,
 * value and headers (those the dead-lettering added removed, and
 * prime.replay.of naming the dead letter): once their cause is fixed (the
 * parent row created, a migration applied) the workers apply them. Events
 * are applied once whatever the number of replays: the workers collapse a
 * repeated event_id.
 *
 * prime.dlq is read from its earliest offset up to its end as of the start,
 * without a consumer group: nothing is committed, nothing moves for the
 * live pipeline. Exit status: 0 done, 1 a failure (broker, a replay not
 * delivered), 2 bad usage. */
#include "prime/error.h"
#include "prime/event.h"
#include "prime/registry.h"
#include "prime/time.h"

#include <cjson/cJSON.h>
#include <librdkafka/rdkafka.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DLQ_TOPIC "prime.dlq"
#define MAX_X 64
#define MAX_OFFSETS 256
#define MAX_GROUPS 1024
#define TIMEOUT_MS 10000

static const char usage[] =
    "usage: prime-dlq [-b BROKERS] [-X key=value]... list [FILTER...]\n"
    "       prime-dlq [-b BROKERS] [-X key=value]... show PARTITION:OFFSET\n"
    "       prime-dlq [-b BROKERS] [-X key=value]... replay (FILTER... | --all) [--dry-run]\n"
    "  FILTER: --source TOPIC  --reason CLASS  --worker NAME  --field FIELD  --since RFC3339\n"
    "          --offset PARTITION:OFFSET (repeatable)\n";

/* Headers the dead-lettering adds; a replay takes them off again. */
static const char *const dlq_headers[] = {"prime.error.class",      "prime.error.field",  "prime.error.message",
                                          "prime.source.topic",     "prime.source.partition",
                                          "prime.source.offset",    "prime.worker",       NULL};

typedef struct coord {
    int32_t partition;
    int64_t offset;
} coord_t;

typedef struct options {
    const char *brokers;
    const char *x_keys[MAX_X], *x_values[MAX_X];
    int nx;
    const char *command;
    const char *source, *reason, *worker, *field;
    int64_t since_ms; /* -1: any time */
    coord_t offsets[MAX_OFFSETS];
    int noffsets;
    bool all, dry_run;
} options_t;

/* A header's value as text (NULL when absent). */
static const char *header(rd_kafka_headers_t *h, const char *name, char *buf, size_t size)
{
    const void *v;
    size_t len;
    if (!h || rd_kafka_header_get_last(h, name, &v, &len) != RD_KAFKA_RESP_ERR_NO_ERROR || !v)
        return NULL;
    snprintf(buf, size, "%.*s", (int)len, (const char *)v);
    return buf;
}

static bool parse_coord(const char *s, coord_t *c)
{
    char *end;
    long long p = strtoll(s, &end, 10);
    if (end == s || *end != ':' || p < 0 || p > INT32_MAX)
        return false;
    s = end + 1;
    long long o = strtoll(s, &end, 10);
    if (end == s || *end || o < 0)
        return false;
    c->partition = (int32_t)p;
    c->offset = o;
    return true;
}

static bool selected(const options_t *o, const rd_kafka_message_t *m)
{
    rd_kafka_headers_t *h = NULL;
    char buf[512];
    const char *v;

    if (o->noffsets) {
        bool hit = false;
        for (int i = 0; i < o->noffsets && !hit; i++)
            hit = o->offsets[i].partition == m->partition && o->offsets[i].offset == m->offset;
        if (!hit)
            return false;
    }
    if (o->since_ms >= 0 && rd_kafka_message_timestamp(m, NULL) < o->since_ms)
        return false;
    rd_kafka_message_headers(m, &h);
    struct {
        const char *want, *name;
    } checks[] = {{o->source, "prime.source.topic"},
                  {o->reason, "prime.error.class"},
                  {o->worker, "prime.worker"},
                  {o->field, "prime.error.field"}};
    for (size_t i = 0; i < sizeof(checks) / sizeof(checks[0]); i++)
        if (checks[i].want && (!(v = header(h, checks[i].name, buf, sizeof(buf))) || strcmp(v, checks[i].want)))
            return false;
    return true;
}

typedef struct replay replay_t;
static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque);

/* A consumer (no group: nothing committed), or an idempotent producer that
 * reports deliveries to replay; -X properties on top. */
static rd_kafka_t *client_new(const options_t *o, rd_kafka_type_t type, replay_t *replay)
{
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *rk;

    if (o->brokers && rd_kafka_conf_set(conf, "bootstrap.servers", o->brokers, errstr, sizeof(errstr)))
        goto bad;
    if (type == RD_KAFKA_CONSUMER) {
        /* assign() wants a group id, though it joins no group: nothing is
         * committed under it (auto commit off). */
        if (rd_kafka_conf_set(conf, "group.id", "prime-dlq", errstr, sizeof(errstr)) ||
            rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr, sizeof(errstr)) ||
            rd_kafka_conf_set(conf, "enable.partition.eof", "true", errstr, sizeof(errstr)))
            goto bad;
    } else {
        if (rd_kafka_conf_set(conf, "enable.idempotence", "true", errstr, sizeof(errstr)))
            goto bad;
        rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
        rd_kafka_conf_set_opaque(conf, replay);
    }
    for (int i = 0; i < o->nx; i++)
        if (rd_kafka_conf_set(conf, o->x_keys[i], o->x_values[i], errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK)
            goto bad;
    if (!(rk = rd_kafka_new(type, conf, errstr, sizeof(errstr)))) {
        fprintf(stderr, "prime-dlq: cannot create a Kafka client: %s\n", errstr);
        return NULL;
    }
    return rk;
bad:
    fprintf(stderr, "prime-dlq: %s\n", errstr);
    rd_kafka_conf_destroy(conf);
    return NULL;
}

typedef void (*visit_fn)(const rd_kafka_message_t *m, void *ctx);

/* Calls visit for each selected dead letter, prime.dlq read from the start
 * to its end as of now, partition by partition. Returns 0, or 1 after a
 * broker error (printed). */
static int scan(const options_t *o, visit_fn visit, void *ctx)
{
    rd_kafka_t *rk = client_new(o, RD_KAFKA_CONSUMER, NULL);
    const rd_kafka_metadata_t *md = NULL;
    rd_kafka_topic_t *rkt;
    rd_kafka_resp_err_t kerr;
    int rc = 1;

    if (!rk)
        return 1;
    rkt = rd_kafka_topic_new(rk, DLQ_TOPIC, NULL);
    if ((kerr = rd_kafka_metadata(rk, 0, rkt, &md, TIMEOUT_MS))) {
        fprintf(stderr, "prime-dlq: cannot read the metadata of %s: %s\n", DLQ_TOPIC, rd_kafka_err2str(kerr));
        goto out;
    }
    if (md->topic_cnt != 1 || md->topics[0].err) {
        fprintf(stderr, "prime-dlq: %s: %s\n", DLQ_TOPIC,
                md->topic_cnt ? rd_kafka_err2str(md->topics[0].err) : "no such topic");
        goto out;
    }
    for (int p = 0; p < md->topics[0].partition_cnt; p++) {
        int32_t part = md->topics[0].partitions[p].id;
        int64_t low, high;
        if ((kerr = rd_kafka_query_watermark_offsets(rk, DLQ_TOPIC, part, &low, &high, TIMEOUT_MS))) {
            fprintf(stderr, "prime-dlq: %s [%d]: cannot read its offsets: %s\n", DLQ_TOPIC, part,
                    rd_kafka_err2str(kerr));
            goto out;
        }
        if (low >= high)
            continue;
        rd_kafka_topic_partition_list_t *tp = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(tp, DLQ_TOPIC, part)->offset = low;
        kerr = rd_kafka_assign(rk, tp);
        rd_kafka_topic_partition_list_destroy(tp);
        if (kerr) {
            fprintf(stderr, "prime-dlq: cannot read %s [%d]: %s\n", DLQ_TOPIC, part, rd_kafka_err2str(kerr));
            goto out;
        }
        for (int64_t next = low; next < high;) {
            rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, TIMEOUT_MS);
            if (!m) {
                fprintf(stderr, "prime-dlq: %s [%d]: no record at offset %lld within %d s\n", DLQ_TOPIC, part,
                        (long long)next, TIMEOUT_MS / 1000);
                goto out;
            }
            if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                next = high; /* compacted or deleted records: nothing more below the end */
            } else if (m->err) {
                fprintf(stderr, "prime-dlq: %s [%d]: %s\n", DLQ_TOPIC, part, rd_kafka_message_errstr(m));
                rd_kafka_message_destroy(m);
                goto out;
            } else {
                next = m->offset + 1;
                if (m->offset < high && selected(o, m))
                    visit(m, ctx);
            }
            rd_kafka_message_destroy(m);
        }
    }
    rc = 0;
out:
    if (md)
        rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return rc;
}

/* --- list --------------------------------------------------------------------------------- */

typedef struct group {
    char worker[64], reason[64], field[128], example[512], source[128];
    long count;
    int64_t first_ms, last_ms;
} group_t;

typedef struct listing {
    group_t *groups;
    int ngroups;
    long total, other;
} listing_t;

static void list_visit(const rd_kafka_message_t *m, void *ctx)
{
    listing_t *l = ctx;
    rd_kafka_headers_t *h = NULL;
    char w[64], r[64], f[128], msg[512], src[128];
    int64_t ts = rd_kafka_message_timestamp(m, NULL);
    group_t *g = NULL;

    rd_kafka_message_headers(m, &h);
    const char *worker = header(h, "prime.worker", w, sizeof(w));
    const char *reason = header(h, "prime.error.class", r, sizeof(r));
    const char *field = header(h, "prime.error.field", f, sizeof(f));
    const char *source = header(h, "prime.source.topic", src, sizeof(src));
    worker = worker ? worker : "?";
    reason = reason ? reason : "?";
    field = field && *field ? field : "-";
    l->total++;
    for (int i = 0; i < l->ngroups && !g; i++)
        if (!strcmp(l->groups[i].worker, worker) && !strcmp(l->groups[i].reason, reason) &&
            !strcmp(l->groups[i].field, field))
            g = &l->groups[i];
    if (!g) {
        if (l->ngroups == MAX_GROUPS) {
            l->other++;
            return;
        }
        g = &l->groups[l->ngroups++];
        snprintf(g->worker, sizeof(g->worker), "%s", worker);
        snprintf(g->reason, sizeof(g->reason), "%s", reason);
        snprintf(g->field, sizeof(g->field), "%s", field);
        snprintf(g->example, sizeof(g->example), "%s",
                 header(h, "prime.error.message", msg, sizeof(msg)) ? msg : "");
        snprintf(g->source, sizeof(g->source), "%s", source ? source : "?");
        g->first_ms = ts;
    }
    g->count++;
    g->last_ms = ts;
}

static int by_count(const void *a, const void *b)
{
    long ca = ((const group_t *)a)->count, cb = ((const group_t *)b)->count;
    return ca < cb ? 1 : ca > cb ? -1 : 0;
}

/* Control characters in what a client sent never reach the terminal. */
static void print_safe(const char *s)
{
    for (; *s; s++)
        putchar((unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s);
}

static int cmd_list(const options_t *o)
{
    listing_t l = {calloc(MAX_GROUPS, sizeof(group_t)), 0, 0, 0};
    int rc;

    if (!l.groups) {
        fputs("prime-dlq: out of memory\n", stderr);
        return 1;
    }
    rc = scan(o, list_visit, &l);
    qsort(l.groups, (size_t)l.ngroups, sizeof(group_t), by_count);
    printf("%8s  %-14s %-10s %-24s %-16s %s\n", "count", "worker", "reason", "field", "source", "example");
    for (int i = 0; i < l.ngroups; i++) {
        const group_t *g = &l.groups[i];
        printf("%8ld  %-14s %-10s %-24s %-16s ", g->count, g->worker, g->reason, g->field, g->source);
        print_safe(g->example);
        putchar('\n');
    }
    if (l.other)
        printf("%8ld  (in groups past the first %d)\n", l.other, MAX_GROUPS);
    printf("prime-dlq: %ld dead letters in %d groups\n", l.total, l.ngroups);
    free(l.groups);
    return rc;
}

/* --- show --------------------------------------------------------------------------------- */

typedef struct shown {
    prime_registry_t *reg;
    bool found;
} shown_t;

/* The event as JSON with every secret field (a password or token hash)
 * replaced, or NULL when it does not decode (the reason printed). */
static char *event_json_redacted(prime_registry_t *reg, const rd_kafka_message_t *m)
{
    prime_event_t *ev = NULL;
    prime_error_t err;
    char msg[768], *json, *out = NULL;
    cJSON *doc;

    prime_error_clear(&err);
    if (prime_event_decode(reg, m->payload, m->len, &ev, &err)) {
        printf("event: does not decode: %s\n", prime_error_str(&err, msg, sizeof(msg)));
        return NULL;
    }
    json = prime_event_to_json(ev, &err);
    if (json && (doc = cJSON_Parse(json))) {
        const prime_event_type_t *t = prime_event_type(ev);
        for (size_t i = 0; i < prime_event_type_field_count(t); i++)
            if (prime_event_type_field_is_secret(t, i) &&
                cJSON_GetObjectItemCaseSensitive(doc, prime_event_type_field_name(t, i)))
                cJSON_ReplaceItemInObjectCaseSensitive(doc, prime_event_type_field_name(t, i),
                                                       cJSON_CreateString("(secret, not shown)"));
        out = cJSON_Print(doc);
        cJSON_Delete(doc);
    }
    free(json);
    prime_event_free(ev);
    return out;
}

static void show_visit(const rd_kafka_message_t *m, void *ctx)
{
    shown_t *s = ctx;
    rd_kafka_headers_t *h = NULL;
    const char *name;
    const void *v;
    size_t len;
    char *json;

    s->found = true;
    printf("dead letter: %s [%d] at offset %lld, %zu bytes, key ", DLQ_TOPIC, m->partition, (long long)m->offset,
           m->len);
    printf("%.*s\n", (int)m->key_len, m->key ? (const char *)m->key : "");
    rd_kafka_message_headers(m, &h);
    for (size_t i = 0; h && !rd_kafka_header_get_all(h, i, &name, &v, &len); i++) {
        char buf[1024];
        snprintf(buf, sizeof(buf), "%.*s", (int)len, v ? (const char *)v : "");
        printf("  %s: ", name);
        print_safe(buf);
        putchar('\n');
    }
    if ((json = event_json_redacted(s->reg, m))) {
        printf("event: %s\n", json);
        free(json);
    }
}

static int cmd_show(options_t *o)
{
    prime_error_t err;
    char msg[512];
    shown_t s = {NULL, false};
    int rc;

    prime_error_clear(&err);
    if (!(s.reg = prime_registry_new(&err))) {
        fprintf(stderr, "prime-dlq: %s\n", prime_error_str(&err, msg, sizeof(msg)));
        return 1;
    }
    rc = scan(o, show_visit, &s);
    prime_registry_free(s.reg);
    if (!rc && !s.found) {
        fprintf(stderr, "prime-dlq: no dead letter at %s [%d] offset %lld\n", DLQ_TOPIC, o->offsets[0].partition,
                (long long)o->offsets[0].offset);
        return 1;
    }
    return rc;
}

/* --- replay ------------------------------------------------------------------------------- */

struct replay {
    const options_t *o;
    rd_kafka_t *producer;
    long selected, queued, skipped, delivered, failed;
};

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    replay_t *r = opaque;
    (void)rk;
    if (m->err) {
        r->failed++;
        fprintf(stderr, "prime-dlq: a replay to %s was not delivered: %s\n", rd_kafka_topic_name(m->rkt),
                rd_kafka_err2str(m->err));
    } else {
        r->delivered++;
    }
}

static void replay_visit(const rd_kafka_message_t *m, void *ctx)
{
    replay_t *r = ctx;
    rd_kafka_headers_t *orig = NULL, *h;
    char source[256], origin[96];
    rd_kafka_resp_err_t kerr;

    r->selected++;
    rd_kafka_message_headers(m, &orig);
    if (!header(orig, "prime.source.topic", source, sizeof(source)) || !*source) {
        fprintf(stderr, "prime-dlq: %s [%d] at %lld names no source topic: skipped\n", DLQ_TOPIC, m->partition,
                (long long)m->offset);
        r->skipped++;
        return;
    }
    if (r->o->dry_run) {
        printf("would replay %s [%d] at %lld to %s\n", DLQ_TOPIC, m->partition, (long long)m->offset, source);
        return;
    }
    h = orig ? rd_kafka_headers_copy(orig) : rd_kafka_headers_new(1);
    for (int i = 0; dlq_headers[i]; i++)
        rd_kafka_header_remove(h, dlq_headers[i]);
    rd_kafka_header_remove(h, "prime.replay.of");
    snprintf(origin, sizeof(origin), "%s:%d:%lld", DLQ_TOPIC, m->partition, (long long)m->offset);
    rd_kafka_header_add(h, "prime.replay.of", -1, origin, -1);
    do {
        kerr = rd_kafka_producev(r->producer, RD_KAFKA_V_TOPIC(source), RD_KAFKA_V_KEY(m->key, m->key_len),
                                 RD_KAFKA_V_VALUE(m->payload, m->len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                 RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_END);
        if (kerr == RD_KAFKA_RESP_ERR__QUEUE_FULL)
            rd_kafka_poll(r->producer, 100);
    } while (kerr == RD_KAFKA_RESP_ERR__QUEUE_FULL);
    if (kerr) {
        rd_kafka_headers_destroy(h);
        fprintf(stderr, "prime-dlq: cannot replay %s to %s: %s\n", origin, source, rd_kafka_err2str(kerr));
        r->failed++;
        return;
    }
    r->queued++;
    rd_kafka_poll(r->producer, 0);
}

static int cmd_replay(const options_t *o)
{
    replay_t r = {o, NULL, 0, 0, 0, 0, 0};
    int rc;

    if (!o->dry_run && !(r.producer = client_new(o, RD_KAFKA_PRODUCER, &r)))
        return 1;
    rc = scan(o, replay_visit, &r);
    if (r.producer) {
        rd_kafka_resp_err_t kerr = rd_kafka_flush(r.producer, 30000);
        if (kerr)
            fprintf(stderr, "prime-dlq: %ld replays not confirmed within 30 s: %s\n",
                    r.queued - r.delivered - r.failed, rd_kafka_err2str(kerr));
        rd_kafka_destroy(r.producer);
        if (r.delivered != r.queued)
            rc = 1;
    }
    if (o->dry_run)
        printf("prime-dlq: %ld selected, %ld would be replayed, %ld without a source topic\n", r.selected,
               r.selected - r.skipped, r.skipped);
    else
        printf("prime-dlq: %ld selected, %ld replayed and delivered, %ld failed, %ld without a source topic\n",
               r.selected, r.delivered, r.selected - r.skipped - r.delivered, r.skipped);
    return rc || r.failed ? 1 : 0;
}

/* --- main --------------------------------------------------------------------------------- */

__attribute__((format(printf, 1, 2))) static int bad_usage(const char *fmt, ...)
{
    va_list ap;
    fputs("prime-dlq: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fputs(usage, stderr);
    return 2;
}

int main(int argc, char **argv)
{
    options_t o;
    int i;

    memset(&o, 0, sizeof(o));
    o.brokers = getenv("PRIME_BROKERS");
    o.since_ms = -1;
    for (i = 1; i < argc && !o.command; i++) {
        if (!strcmp(argv[i], "-b") && i + 1 < argc) {
            o.brokers = argv[++i];
        } else if (!strcmp(argv[i], "-X") && i + 1 < argc) {
            char *eq = strchr(argv[++i], '=');
            if (!eq || eq == argv[i])
                return bad_usage("-X: expected key=value, got '%s'", argv[i]);
            if (o.nx == MAX_X)
                return bad_usage("-X: at most %d properties", MAX_X);
            *eq = '\0';
            o.x_keys[o.nx] = argv[i];
            o.x_values[o.nx++] = eq + 1;
        } else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fputs(usage, stdout);
            return 0;
        } else if (!strcmp(argv[i], "list") || !strcmp(argv[i], "show") || !strcmp(argv[i], "replay")) {
            o.command = argv[i];
        } else {
            return bad_usage("expected list, show or replay, got '%s'", argv[i]);
        }
    }
    if (!o.command)
        return bad_usage("expected a command: list, show or replay");
    for (; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(o.command, "show")) {
            if (o.noffsets || !parse_coord(a, &o.offsets[0]))
                return bad_usage("show: expected one PARTITION:OFFSET, got '%s'", a);
            o.noffsets = 1;
            continue;
        }
        if (!strcmp(a, "--dry-run") && !strcmp(o.command, "replay")) {
            o.dry_run = true;
        } else if (!strcmp(a, "--all") && !strcmp(o.command, "replay")) {
            o.all = true;
        } else if (!v && a[0] == '-') {
            return bad_usage("%s: expected a value", a);
        } else if (!strcmp(a, "--source")) {
            o.source = argv[++i];
        } else if (!strcmp(a, "--reason")) {
            o.reason = argv[++i];
        } else if (!strcmp(a, "--worker")) {
            o.worker = argv[++i];
        } else if (!strcmp(a, "--field")) {
            o.field = argv[++i];
        } else if (!strcmp(a, "--since")) {
            int64_t micros;
            if (prime_time_parse_rfc3339(v, &micros))
                return bad_usage("--since: expected an RFC 3339 time such as 2026-11-30T12:00:00Z, got '%s'", v);
            o.since_ms = micros / 1000;
            i++;
        } else if (!strcmp(a, "--offset")) {
            if (o.noffsets == MAX_OFFSETS)
                return bad_usage("--offset: at most %d", MAX_OFFSETS);
            if (!parse_coord(v, &o.offsets[o.noffsets++]))
                return bad_usage("--offset: expected PARTITION:OFFSET, got '%s'", v);
            i++;
        } else {
            return bad_usage("unknown argument '%s'", a);
        }
    }
    if (!o.brokers)
        return bad_usage("no brokers: give -b BROKERS or set PRIME_BROKERS");
    if (!strcmp(o.command, "show")) {
        if (!o.noffsets)
            return bad_usage("show: expected PARTITION:OFFSET");
        return cmd_show(&o);
    }
    if (!strcmp(o.command, "replay")) {
        bool filtered = o.source || o.reason || o.worker || o.field || o.since_ms >= 0 || o.noffsets;
        if (!filtered && !o.all)
            return bad_usage("replay: name what to replay (--source, --reason, --worker, --field, --since, "
                             "--offset) or say --all");
        return cmd_replay(&o);
    }
    return cmd_list(&o);
}
