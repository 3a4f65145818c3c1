/* prime-codec: look at the event schemas and at single messages.
 *
 *   prime-codec list                     event types, topics, fingerprints
 *   prime-codec example TYPE [SEED]      a valid event as a JSON line
 *   prime-codec schema|canonical TYPE    the .avsc text, or its canonical form
 *   prime-codec encode [FILE]            one JSON event -> single-object bytes
 *   prime-codec decode [FILE]            single-object bytes -> one JSON line
 *
 * Uses only the public API of libprime_schemas. Exit status: 0 success,
 * 1 bad input (the message says where), 2 bad usage. */
#include "prime/event.h"

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
          "       prime-codec decode [FILE]   (one binary message in, one JSON line out)\n",
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

    if (!strcmp(cmd, "list")) {
        for (size_t i = 0; (t = prime_registry_at(reg, i)); i++)
            printf("%-30s %-16s %016" PRIx64 "\n", prime_event_type_name(t), prime_event_type_topic(t),
                   prime_event_type_fingerprint(t));
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
    if (fflush(stdout) != 0)
        rc = 1;
    return rc;
}
