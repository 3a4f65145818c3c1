/* The end offsets of a replay, read from the file prime-replay writes. */
#include "replay.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct replay_end {
    char *topic;
    int32_t partition;
    int64_t end;
} replay_end_t;

struct replay_ends {
    replay_end_t *items;
    size_t n;
};

void replay_ends_free(replay_ends_t *e)
{
    if (!e)
        return;
    for (size_t i = 0; i < e->n; i++)
        free(e->items[i].topic);
    free(e->items);
    free(e);
}

static bool consumed(const prime_worker_conf_t *conf, const char *topic)
{
    for (int i = 0; i < conf->ntopics; i++)
        if (!strcmp(conf->topics[i], topic))
            return true;
    return false;
}

replay_ends_t *replay_ends_load(const prime_worker_conf_t *conf, prime_error_t *err)
{
    FILE *f = fopen(conf->replay_until, "r");
    replay_ends_t *e = calloc(1, sizeof(*e));
    char line[512];
    int lineno = 0;

    if (!f || !e) {
        prime_error_set(err, f ? PRIME_ERR_NOMEM : PRIME_ERR_IO, "--replay-until", "%s: %s", conf->replay_until,
                        f ? "out of memory" : strerror(errno));
        goto fail;
    }
    while (fgets(line, sizeof(line), f)) {
        char topic[256], extra;
        int partition;
        long long end;
        lineno++;
        if (line[0] == '\n' || line[0] == '#')
            continue;
        if (sscanf(line, "%255s %d %lld %c", topic, &partition, &end, &extra) != 3 || partition < 0 || end < 0) {
            prime_error_set(err, PRIME_ERR_INVALID, "--replay-until",
                            "%s line %d: expected \"topic partition offset\" (partition and offset at least 0)",
                            conf->replay_until, lineno);
            goto fail;
        }
        if (!consumed(conf, topic))
            continue;
        replay_end_t *grown = realloc(e->items, (e->n + 1) * sizeof(*grown));
        if (!grown || !(topic[0] && (grown[e->n].topic = strdup(topic)))) {
            if (grown)
                e->items = grown;
            prime_error_set(err, PRIME_ERR_NOMEM, "--replay-until", "out of memory reading %s", conf->replay_until);
            goto fail;
        }
        e->items = grown;
        e->items[e->n].partition = partition;
        e->items[e->n++].end = end;
    }
    if (ferror(f)) {
        prime_error_set(err, PRIME_ERR_IO, "--replay-until", "%s: cannot read it", conf->replay_until);
        goto fail;
    }
    fclose(f);
    return e;
fail:
    if (f)
        fclose(f);
    replay_ends_free(e);
    return NULL;
}

int64_t replay_end_of(const replay_ends_t *e, const char *topic, int32_t partition)
{
    for (size_t i = 0; i < e->n; i++)
        if (e->items[i].partition == partition && !strcmp(e->items[i].topic, topic))
            return e->items[i].end;
    return -1;
}

size_t replay_ends_count(const replay_ends_t *e)
{
    return e->n;
}

void replay_ends_get(const replay_ends_t *e, size_t i, const char **topic, int32_t *partition, int64_t *end)
{
    *topic = e->items[i].topic;
    *partition = e->items[i].partition;
    *end = e->items[i].end;
}
