/* prime-codec: look at the event schemas and at single messages.
 *
 *   prime-codec list                     event types, topics, fingerprints
 *   prime-codec example TYPE [SEED]      a valid event as a JSON line
 *   prime-codec schema|canonical TYPE    the .avsc text, or its canonical form
 *   prime-codec encode [FILE]            one JSON event -> single-object bytes
 *   prime-codec decode [FILE]            single-object bytes -> one JSON line
 *   prime-codec sample COUNT [SEED]      COUNT valid events of every type, as JSON lines
 *   prime-codec doc                      docs/events.md, from the schemas
 *   prime-codec check                    every schema version loads and is read by
 *                                        the next and the newest (run by the build)
 *
 * Uses only the public API of libprime_schemas. Exit status: 0 success,
 * 1 bad input (the message says where), 2 bad usage. */
#include "prime/cli.h"
#include "prime/event.h"

#include <jansson.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *out)
{
    fputs("usage: prime-codec list\n"
          "       prime-codec example TYPE [SEED]\n"
          "       prime-codec schema TYPE | canonical TYPE\n"
          "       prime-codec encode [FILE]   (one JSON event in, binary message out)\n"
          "       prime-codec decode [FILE]   (one binary message in, one JSON line out)\n"
          "       prime-codec sample COUNT [SEED]  (mixed valid events as JSON lines)\n"
          "       prime-codec doc             (the event reference in Markdown)\n"
          "       prime-codec check           (every schema version readable by the next and the newest)\n",
          out);
}

static int fail(const char *what, const prime_error_t *err)
{
    char buf[768];
    fprintf(stderr, "prime-codec: %s: %s\n", what, prime_error_str(err, buf, sizeof(buf)));
    return 1;
}

/* Reads all of FILE (or stdin for NULL or "-"), up to limit bytes. */
static char *slurp(const char *path, size_t limit, size_t *len)
{
    FILE *in = (!path || !strcmp(path, "-")) ? stdin : fopen(path, "rb");
    char *buf = NULL;
    size_t cap = 0, n = 0, got;

    if (!in) {
        fprintf(stderr, "prime-codec: %s: %s\n", path, strerror(errno));
        return NULL;
    }
    do {
        if (n == cap) {
            char *grown;
            cap = cap ? cap * 2 : 65536;
            if (cap > limit + 1)
                cap = limit + 1;
            if (!(grown = realloc(buf, cap + 1)))
                break;
            buf = grown;
        }
        got = fread(buf + n, 1, cap - n, in);
        n += got;
    } while (got > 0 && n <= limit);
    if (in != stdin)
        fclose(in);
    if (!buf || n > limit) {
        fprintf(stderr, "prime-codec: input is over %zu bytes\n", limit);
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* A field's Avro type in a few words: "uuid", "timestamp", "string?", ... */
static void type_words(json_t *type, char *out, size_t size)
{
    const char *opt = "";
    const char *t, *logical;

    if (json_is_array(type)) {
        type = json_array_get(type, 1);
        opt = " or null";
    }
    t = json_is_string(type) ? json_string_value(type) : json_string_value(json_object_get(type, "type"));
    logical = json_is_object(type) ? json_string_value(json_object_get(type, "logicalType")) : NULL;
    if (logical && !strcmp(logical, "timestamp-micros"))
        t = "timestamp";
    else if (logical)
        t = logical;
    else if (t && !strcmp(t, "array"))
        t = "array of string";
    snprintf(out, size, "%s%s", t ? t : "?", opt);
}

/* The rule column: prime.check, prime.one_of, size limits. */
static void rule_words(json_t *field, char *out, size_t size)
{
    json_t *check = json_object_get(field, "prime.check"), *one_of = json_object_get(field, "prime.one_of");
    json_t *max = json_object_get(field, "prime.max_length"), *items = json_object_get(field, "prime.max_items");
    size_t i, n = 0;
    json_t *v;

    out[0] = '\0';
    if (check)
        n += (size_t)snprintf(out + n, size - n, "%s", json_string_value(check));
    if (one_of) {
        n += (size_t)snprintf(out + n, size - n, "%sone of", n ? "; " : "");
        json_array_foreach(one_of, i, v) n += (size_t)snprintf(out + n, size - n, "%s `%s`", i ? "," : "", json_string_value(v));
    }
    if (max && n < size)
        n += (size_t)snprintf(out + n, size - n, "%s&le; %lld bytes", n ? "; " : "", (long long)json_integer_value(max));
    if (items && n < size)
        n += (size_t)snprintf(out + n, size - n, "%s&le; %lld items", n ? "; " : "", (long long)json_integer_value(items));
    if ((v = json_object_get(field, "prime.max")) && n < size)
        snprintf(out + n, size - n, "%s&le; %.15g (its column)", n ? "; " : "", json_number_value(v));
}

static void print_fields(json_t *fields, size_t from, size_t to)
{
    size_t i;
    json_t *f;
    char type[64], rule[512];

    puts("| field | type | rule | column or meaning |\n|---|---|---|---|");
    json_array_foreach(fields, i, f) {
        const char *check = json_string_value(json_object_get(f, "prime.check"));
        if (i < from || i >= to)
            continue;
        type_words(json_object_get(f, "type"), type, sizeof(type));
        if (check && !strncmp(check, "json", 4)) /* JSON text in an Avro string */
            snprintf(type, sizeof(type), "JSON%s", strstr(type, " or null") ? " or null" : "");
        rule_words(f, rule, sizeof(rule));
        printf("| `%s` | %s | %s | %s |\n", json_string_value(json_object_get(f, "name")), type, rule,
               json_string_value(json_object_get(f, "doc")));
    }
}

/* docs/events.md: written from the schemas so that it cannot drift from
 * them (a test compares the two). */
static void print_doc(const prime_registry_t *reg)
{
    const prime_event_type_t *t;
    json_t *first = json_loads(prime_event_type_schema_json(prime_registry_at(reg, 0)), 0, NULL);

    puts("# Prime events\n\n"
         "Generated by `prime-codec doc` from `schemas/avro/<type>/v<N>.avsc` (each type's newest version); do not "
         "edit by hand.\n\n"
         "Every event is an Avro record in namespace `studio.prime.events`, sent as Avro single-object encoding "
         "(`C3 01`, the CRC-64-AVRO fingerprint of the writer schema's Parsing Canonical Form, little-endian, then "
         "the binary body). The Kafka message key is `owner_user_id`, so one user's history is in one partition, in "
         "order. Rules are checked by `prime_event_validate()`; a JSON line for `prime-codec encode` (and later "
         "`prime-publish`) names the type in `\"type\"` and the fields by name, timestamps as RFC 3339 or integer "
         "microseconds, JSON-valued fields as JSON, which is kept as written (what PostgreSQL's `jsonb` refuses, "
         "such as `\\u0000` or a number past `numeric`'s range, is refused).\n\n"
         "Events are facts about the past: they carry ids chosen by the client (or derived with UUIDv5) and the time "
         "the change happened, and every column the pipeline writes comes from them.\n\n"
         "## The envelope (first seven fields of every event)\n");
    print_fields(json_object_get(first, "fields"), 0, PRIME_ENVELOPE_FIELDS);
    json_decref(first);
    for (size_t i = 0; (t = prime_registry_at(reg, i)); i++) {
        json_t *schema = json_loads(prime_event_type_schema_json(t), 0, NULL);
        json_t *req = json_object_get(schema, "prime.requires");
        printf("\n## %s\n\nTopic `%s`, key `owner_user_id`, record `%s`, fingerprint `%016llx`.%s\n\n%s\n\n",
               prime_event_type_name(t), prime_event_type_topic(t), json_string_value(json_object_get(schema, "name")),
               (unsigned long long)prime_event_type_fingerprint(t),
               json_array_size(req) ? " The envelope's `device_id` is required." : "",
               json_string_value(json_object_get(schema, "doc")));
        print_fields(json_object_get(schema, "fields"), PRIME_ENVELOPE_FIELDS, (size_t)-1);
        json_decref(schema);
    }
}

static const prime_event_type_t *need_type(const prime_registry_t *reg, const char *name)
{
    const prime_event_type_t *t = name ? prime_registry_find(reg, name) : NULL;
    if (!t)
        fprintf(stderr, "prime-codec: unknown event type '%s' (see prime-codec list)\n", name ? name : "");
    return t;
}

int main(int argc, char **argv)
{
    prime_error_t err;
    prime_registry_t *reg;
    const prime_event_type_t *t;
    prime_event_t *ev = NULL;
    const char *cmd = argc > 1 ? argv[1] : NULL;
    int rc = 0;

    prime_error_clear(&err);
    if (!cmd || !strcmp(cmd, "-h") || !strcmp(cmd, "--help")) {
        usage(cmd ? stdout : stderr);
        return cmd ? 0 : 2;
    }
    if (!(reg = prime_registry_new(&err)))
        return fail("loading schemas", &err);

    if (!strcmp(cmd, "check")) {
        /* prime_registry_new() refused any incompatible version above. */
        printf("prime-codec: %zu event types, %zu schema versions, each readable by the next and the newest\n",
               prime_registry_count(reg), prime_registry_writer_count(reg));
    } else if (!strcmp(cmd, "list")) {
        for (size_t i = 0; (t = prime_registry_at(reg, i)); i++)
            printf("%-30s %-16s %016" PRIx64 "\n", prime_event_type_name(t), prime_event_type_topic(t),
                   prime_event_type_fingerprint(t));
    } else if (!strcmp(cmd, "sample")) {
        /* Every type in turn, each line from its own seed: input for
         * benchmarks and load tests. */
        unsigned long long count = argc > 2 ? strtoull(argv[2], NULL, 10) : 0;
        uint64_t seed = argc > 3 ? strtoull(argv[3], NULL, 10) : 1;
        size_t ntypes = prime_registry_count(reg);
        for (unsigned long long i = 0; i < count && !rc; i++) {
            const char *type = prime_event_type_name(prime_registry_at(reg, i % ntypes));
            char *json;
            if (!(ev = prime_event_example(reg, type, seed + i, &err)) || !(json = prime_event_to_json(ev, &err))) {
                rc = fail("sample", &err);
                break;
            }
            fputs(json, stdout);
            putchar('\n');
            free(json);
            prime_event_free(ev);
            ev = NULL;
        }
    } else if (!strcmp(cmd, "doc")) {
        print_doc(reg);
    } else if (!strcmp(cmd, "schema") || !strcmp(cmd, "canonical")) {
        if (!(t = need_type(reg, argc > 2 ? argv[2] : NULL)))
            rc = 2;
        else
            printf("%s\n", cmd[0] == 's' ? prime_event_type_schema_json(t) : prime_event_type_canonical_form(t));
    } else if (!strcmp(cmd, "example")) {
        uint64_t seed = argc > 3 ? strtoull(argv[3], NULL, 10) : 0;
        char *json;
        if (!need_type(reg, argc > 2 ? argv[2] : NULL))
            rc = 2;
        else if (!(ev = prime_event_example(reg, argv[2], seed, &err)) || !(json = prime_event_to_json(ev, &err)))
            rc = fail("example", &err);
        else {
            printf("%s\n", json);
            free(json);
        }
    } else if (!strcmp(cmd, "encode")) {
        size_t len, out_len;
        void *out;
        char *text = slurp(argc > 2 ? argv[2] : NULL, prime_registry_limits(reg)->max_message_bytes * 4, &len);
        if (!text)
            rc = 1;
        else if (prime_event_from_json(reg, text, len, &ev, &err) || prime_event_validate(ev, &err) ||
                 prime_event_encode(ev, &out, &out_len, &err))
            rc = fail("encode", &err);
        else {
            fwrite(out, 1, out_len, stdout);
            free(out);
        }
        free(text);
    } else if (!strcmp(cmd, "decode")) {
        size_t len;
        char *json, *bytes = slurp(argc > 2 ? argv[2] : NULL, prime_registry_limits(reg)->max_message_bytes, &len);
        if (!bytes)
            rc = 1;
        else if (prime_event_decode(reg, bytes, len, &ev, &err) || !(json = prime_event_to_json(ev, &err)))
            rc = fail("decode", &err);
        else {
            printf("%s\n", json);
            free(json);
            if (prime_event_validate(ev, &err))
                rc = fail("decoded event is invalid", &err);
        }
        free(bytes);
    } else {
        usage(stderr);
        rc = 2;
    }
    prime_event_free(ev);
    prime_registry_free(reg);
    return prime_cli_finish("prime-codec", rc);
}
