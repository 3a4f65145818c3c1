/* Stream order (batch.h): a stream is what Kafka orders, one key (the
 * owner) in one topic. Once an event of a stream waits, the stream's later
 * events wait behind it, in this batch and across batches (parking). */
#include "batch.h"
#include "prime/buf.h"
#include "prime/pg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void stream_copy_key(char dst[WAITING_FOR_MAX], const char *src)
{
    size_t n = strlen(src);
    if (n > WAITING_FOR_MAX - 1)
        n = WAITING_FOR_MAX - 1;
    memmove(dst, src, n);
    dst[n] = '\0';
}

/* A stream is what Kafka orders: one key (the owner) in one topic. Once an
 * event of a stream waits, the stream's later events wait behind it, so
 * that they apply in the order they were made (a recall.forgotten must not
 * overtake the parked recall.set it follows). */
static int same_stream(const item_t *a, const item_t *b)
{
    return a->record.key_len == b->record.key_len && !strcmp(a->record.topic, b->record.topic) &&
           !memcmp(a->record.key, b->record.key, a->record.key_len);
}

/* qsort's comparator has no context argument; apply() runs on the worker's
 * one thread (prime/worker.h), so a file-static one is safe here. */
static const item_t *sort_base;

static int cmp_stream(const void *x, const void *y)
{
    const item_t *a = &sort_base[*(const long *)x], *b = &sort_base[*(const long *)y];
    int c = strcmp(a->record.topic, b->record.topic);
    if (!c)
        c = a->record.key_len < b->record.key_len ? -1 : a->record.key_len > b->record.key_len;
    if (!c)
        c = memcmp(a->record.key, b->record.key, a->record.key_len);
    if (!c)
        c = *(const long *)x < *(const long *)y ? -1 : 1;
    return c;
}

/* prev of every item, by sorting indexes by (stream, position). */
prime_errcode_t stream_link(item_t *items, size_t n, prime_error_t *err)
{
    long *order = malloc((n ? n : 1) * sizeof(*order));

    if (!order) {
        prime_error_set(err, PRIME_ERR_NOMEM, NULL, "out of memory ordering the batch's streams");
        err->retriable = true;
        return PRIME_ERR_NOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        items[i].prev = -1;
        order[i] = (long)i;
    }
    sort_base = items;
    qsort(order, n, sizeof(*order), cmp_stream);
    for (size_t i = 1; i < n; i++)
        if (same_stream(&items[order[i - 1]], &items[order[i]]))
            items[order[i]].prev = order[i - 1];
    free(order);
    return PRIME_OK;
}

char *stream_hex(const void *data, size_t len)
{
    static const char digits[] = "0123456789abcdef";
    const unsigned char *p = data;
    char *out = malloc(2 * len + 1);
    for (size_t i = 0; out && i < len; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    if (out)
        out[2 * len] = '\0';
    return out;
}

/* Streams of these items with events already parked: their first item here
 * waits behind the last parked one (blocked_by is what that one waits for).
 * For an item from Kafka every parked event of its stream is earlier; for
 * one taken from parking (a chunk), only those parked before it in source
 * order (an earlier chunk's event parked again). */
prime_errcode_t stream_find_parked(prime_worker_t *w, PGconn *conn, item_t *items, size_t n, prime_error_t *err)
{
    prime_buf_t cols[4]; /* topic, key hex, partition and offset (NULL for items from Kafka) */
    const char *params[5];
    PGresult *res;
    size_t *heads = malloc((n ? n : 1) * sizeof(*heads)), nheads = 0;
    prime_errcode_t rc = PRIME_OK;

    if (!heads)
        return prime_error_set(err, PRIME_ERR_NOMEM, NULL, "out of memory");
    prime_pg_arrays_begin(cols, 4);
    for (size_t i = 0; i < n; i++) {
        char *hex, part[16], offset[24];
        items[i].blocked_by[0] = '\0';
        /* The first item of each stream. */
        if (items[i].prev >= 0)
            continue;
        if (!(hex = stream_hex(items[i].record.key, items[i].record.key_len))) {
            rc = prime_error_set(err, PRIME_ERR_NOMEM, NULL, "out of memory looking for parked streams");
            break;
        }
        prime_pg_array_add(&cols[0], items[i].record.topic);
        prime_pg_array_add(&cols[1], hex);
        if (items[i].from_parking) {
            snprintf(part, sizeof(part), "%d", (int)items[i].record.partition);
            snprintf(offset, sizeof(offset), "%lld", (long long)items[i].record.offset);
            prime_pg_array_add(&cols[2], part);
            prime_pg_array_add(&cols[3], offset);
        } else {
            prime_pg_array_add_null(&cols[2]);
            prime_pg_array_add_null(&cols[3]);
        }
        heads[nheads++] = i;
        free(hex);
    }
    if (!prime_pg_arrays_end(cols, 4, params + 1) && !rc)
        rc = prime_error_set(err, PRIME_ERR_NOMEM, NULL, "out of memory looking for parked streams");
    if (!rc && nheads) {
        /* For each stream head (by position), what its stream's last parked event (before it) waits for. */
        params[0] = prime_worker_group(w);
        res = prime_pg_query(conn,
                             "SELECT DISTINCT ON (x.ord) x.ord, p.waiting_for "
                             "FROM unnest($2::text[], $3::text[], $4::int[], $5::bigint[]) WITH ORDINALITY "
                             "AS x(topic, key, part, off, ord) "
                             "JOIN prime_pipeline.parked_events p ON p.group_id = $1 AND p.source_topic = x.topic "
                             "AND p.record_key = decode(x.key, 'hex') "
                             "AND (x.part IS NULL OR (p.source_partition, p.source_offset) < (x.part, x.off)) "
                             "ORDER BY x.ord, p.source_partition DESC, p.source_offset DESC",
                             5, params, "looking for parked streams", err);
        if (!res)
            rc = err->code;
        for (int r = 0; !rc && r < PQntuples(res); r++) {
            item_t *head = &items[heads[strtoull(PQgetvalue(res, r, 0), NULL, 10) - 1]];
            snprintf(head->blocked_by, sizeof(head->blocked_by), "%s", PQgetvalue(res, r, 1));
        }
        PQclear(res);
    }
    prime_pg_arrays_free(cols, 4);
    free(heads);
    return rc;
}

/* Whether item i may be folded now: nothing of its stream waits before it. */
bool stream_clear(const item_t *items, size_t i)
{
    if (items[i].blocked_by[0])
        return false;
    return items[i].prev < 0 || items[items[i].prev].state == APPLIED || items[items[i].prev].state == REFUSED;
}
