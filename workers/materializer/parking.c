/* Parking (batch.h): an event whose parent row is missing waits in
 * prime_pipeline.parked_events, in the batch's transaction, and is folded
 * again once that parent exists, whoever wrote it; after
 * --park-max-seconds it is dead-lettered. A stream parks at most
 * --park-max-per-stream events; parked events are taken out in chunks
 * bounded by count and bytes. */
#include "batch.h"
#include "prime/buf.h"
#include "prime/log.h"
#include "prime/pg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Parked events taken out at once: a stream with a million parked events
 * is read a chunk at a time, never whole. A chunk holds at least one event,
 * however large. */
#define PARK_CHUNK_EVENTS 1000
#define PARK_CHUNK_BYTES (16u << 20)

/* A stream (topic and key) for a message: the key as text when it is short
 * printable ASCII (an owner's id), else as hex. */
static void stream_name(const prime_record_t *r, char *buf, size_t size)
{
    const unsigned char *k = r->key;
    bool text = r->key_len && r->key_len <= 64;
    char *hex;

    for (size_t i = 0; text && i < r->key_len; i++)
        text = k[i] >= 0x20 && k[i] < 0x7f;
    if (text) {
        snprintf(buf, size, "%s/%.*s", r->topic, (int)r->key_len, (const char *)k);
        return;
    }
    hex = stream_hex(k, r->key_len > 32 ? 32 : r->key_len);
    snprintf(buf, size, "%s/hex:%s%s", r->topic, hex ? hex : "?", r->key_len > 32 ? "..." : "");
    free(hex);
}

/* The bound on a stream's parked events: the WAITING items that came from
 * Kafka beyond it are dead-lettered instead (REFUSED, not judged: once the
 * stream drains, their dead letters can be published again). Items taken
 * from parking were within it when they were parked, and go back. */
static prime_errcode_t bound_streams(prime_worker_t *w, PGconn *conn, const materializer_t *m, item_t *items,
                                     size_t n, prime_error_t *err)
{
    prime_buf_t topics, keys;
    const char *params[3];
    long *head = malloc((n ? n : 1) * sizeof(*head)), *count = calloc(n ? n : 1, sizeof(*count));
    size_t nheads = 0;
    PGresult *res = NULL;
    prime_errcode_t rc = PRIME_OK;

    prime_buf_init(&topics, 0);
    prime_buf_init(&keys, 0);
    if (!head || !count || (rc = stream_link(items, n, err))) {
        rc = rc ? rc : prime_error_set(err, PRIME_ERR_NOMEM, NULL, "out of memory counting parked streams");
        goto out;
    }
    /* head[i]: the first newcomer waiting in item i's stream (-1 for the others). */
    prime_pg_array_begin(&topics);
    prime_pg_array_begin(&keys);
    for (size_t i = 0; i < n; i++) {
        long p = items[i].prev;
        head[i] = -1;
        if (items[i].state != WAITING || items[i].from_parking)
            continue;
        while (p >= 0 && head[p] < 0)
            p = items[p].prev;
        if (p >= 0) {
            head[i] = head[p];
            continue;
        }
        head[i] = (long)i;
        {
            char *hex = stream_hex(items[i].record.key, items[i].record.key_len);
            if (!hex) {
                rc = prime_error_set(err, PRIME_ERR_NOMEM, NULL, "out of memory counting parked streams");
                goto out;
            }
            prime_pg_array_add(&topics, items[i].record.topic);
            prime_pg_array_add(&keys, hex);
            free(hex);
        }
        nheads++;
    }
    prime_pg_array_end(&topics);
    prime_pg_array_end(&keys);
    if (!nheads)
        goto out;
    if (topics.failed || keys.failed) {
        rc = prime_error_set(err, PRIME_ERR_NOMEM, NULL, "out of memory counting parked streams");
        goto out;
    }
    params[0] = prime_worker_group(w);
    params[1] = topics.data;
    params[2] = keys.data;
    res = prime_pg_query(conn,
                         "SELECT x.ord, (SELECT count(*) FROM prime_pipeline.parked_events p WHERE p.group_id = $1 "
                         "AND p.source_topic = x.topic AND p.record_key = decode(x.key, 'hex')) "
                         "FROM unnest($2::text[], $3::text[]) WITH ORDINALITY AS x(topic, key, ord)",
                         3, params, "counting parked streams", err);
    if (!res) {
        rc = err->code;
        goto out;
    }
    /* Rows come in heads' order (ordinality): the k-th head is the k-th item with head[i] == i. */
    for (size_t i = 0, k = 0; i < n && k < (size_t)PQntuples(res); i++)
        if (head[i] == (long)i)
            count[i] = atol(PQgetvalue(res, (int)k++, 1));
    for (size_t i = 0; i < n && !rc; i++) {
        prime_error_t why;
        char stream[160];
        if (head[i] < 0)
            continue;
        if (count[head[i]] < m->park_max_per_stream) {
            count[head[i]]++;
            continue;
        }
        stream_name(&items[i].record, stream, sizeof(stream));
        prime_error_clear(&why);
        prime_error_set(&why, PRIME_ERR_TOO_LARGE, NULL, "stream %s has %ld events parked waiting for %s", stream,
                        count[head[i]], items[i].waiting_for);
        items[i].state = REFUSED;
        items[i].refused_for_good = false;
        rc = prime_worker_dead_letter(w, &items[i].record, &why, err);
    }
out:
    PQclear(res);
    prime_buf_free(&topics);
    prime_buf_free(&keys);
    free(head);
    free(count);
    return rc;
}

/* One statement for all of them (arrays of their coordinates, keys, bytes
 * and headers as hex). */
prime_errcode_t parking_park(prime_worker_t *w, PGconn *conn, const materializer_t *m, item_t *items, size_t n,
                             prime_error_t *err)
{
    prime_buf_t arrays[7]; /* topic, partition, offset, waiting_for, key hex, value hex, headers hex */
    prime_buf_t headers;
    const char *params[8];
    size_t parked = 0;
    prime_errcode_t rc = bound_streams(w, conn, m, items, n, err);

    prime_buf_init(&headers, 0);
    prime_pg_arrays_begin(arrays, 7);
    for (size_t i = 0; i < n && !rc; i++) {
        char *key, *value, *hdrs = NULL, part[16], offset[24];
        if (items[i].state != WAITING)
            continue;
        prime_buf_reset(&headers);
        if ((rc = prime_record_headers_pack(&items[i].record, &headers, err)))
            break;
        key = stream_hex(items[i].record.key, items[i].record.key_len);
        value = stream_hex(items[i].record.value, items[i].record.len);
        if (headers.len)
            hdrs = stream_hex(headers.data, headers.len);
        if (!key || !value || (headers.len && !hdrs)) { /* never an empty key or value in parking */
            free(key);
            free(value);
            free(hdrs);
            rc = prime_error_set(err, PRIME_ERR_NOMEM, NULL, "out of memory parking events");
            break;
        }
        snprintf(part, sizeof(part), "%d", (int)items[i].record.partition);
        snprintf(offset, sizeof(offset), "%lld", (long long)items[i].record.offset);
        prime_pg_array_add(&arrays[0], items[i].record.topic);
        prime_pg_array_add(&arrays[1], part);
        prime_pg_array_add(&arrays[2], offset);
        prime_pg_array_add(&arrays[3], items[i].waiting_for);
        prime_pg_array_add(&arrays[4], key);
        prime_pg_array_add(&arrays[5], value);
        if (hdrs)
            prime_pg_array_add(&arrays[6], hdrs);
        else
            prime_pg_array_add_null(&arrays[6]);
        free(key);
        free(value);
        free(hdrs);
        prime_log(PRIME_LOG_DEBUG, "parked until its parent is written", "topic=%s partition=%d offset=%lld waiting_for=%s",
                  items[i].record.topic, (int)items[i].record.partition, (long long)items[i].record.offset,
                  items[i].waiting_for);
        parked++;
    }
    if (!rc && !prime_pg_arrays_end(arrays, 7, params + 1))
        rc = prime_error_set(err, PRIME_ERR_NOMEM, NULL, "out of memory parking events");
    params[0] = prime_worker_group(w);
    if (parked && !rc) {
        rc = prime_pg_exec_params(conn,
                                  "INSERT INTO prime_pipeline.parked_events (group_id, source_topic, source_partition, "
                                  "source_offset, waiting_for, record_key, record_value, record_headers, reason) "
                                  "SELECT $1, t, p, o, wf, decode(k, 'hex'), decode(v, 'hex'), decode(h, 'hex'), "
                                  "'parent row not written yet' FROM unnest($2::text[], $3::int[], $4::bigint[], "
                                  "$5::text[], $6::text[], $7::text[], $8::text[]) AS x(t, p, o, wf, k, v, h) "
                                  "ON CONFLICT (group_id, source_topic, source_partition, source_offset) "
                                  "DO UPDATE SET waiting_for = EXCLUDED.waiting_for",
                                  8, params, "parking events", err);
        if (!rc)
            prime_log(PRIME_LOG_INFO, "parked until their parents are written", "events=%zu", parked);
    }
    prime_pg_arrays_free(arrays, 7);
    prime_buf_free(&headers);
    return rc;
}

/* Parked events taken out of parking (a chunk), as items (or records only),
 * in source order. */
typedef struct parked {
    item_t *items;
    size_t n;
    size_t rows;  /* rows taken out, the undecodable (dead-lettered) included */
    char **owned; /* topics, keys, values and headers the items point at */
    size_t nowned;
} parked_t;

/* Where the next chunk starts: after this source position. */
typedef struct park_cursor {
    char topic[256];
    char partition[16];
    char offset[24];
} park_cursor_t;

static const park_cursor_t cursor_start = {"", "-1", "-1"};

static void parked_free(parked_t *p)
{
    for (size_t i = 0; i < p->n; i++)
        prime_event_free(p->items[i].event);
    for (size_t i = 0; i < p->nowned; i++)
        free(p->owned[i]);
    free(p->items);
    free(p->owned);
    memset(p, 0, sizeof(*p));
}

/* Source order: topic, partition, offset. */
static int cmp_source(const void *x, const void *y)
{
    const item_t *a = x, *b = y;
    int c = strcmp(a->record.topic, b->record.topic);
    if (c)
        return c;
    if (a->record.partition != b->record.partition)
        return a->record.partition < b->record.partition ? -1 : 1;
    return a->record.offset < b->record.offset ? -1 : a->record.offset > b->record.offset;
}

/* The next chunk of parked events chosen by where ($1 the group, $6 arg
 * when given), of the partitions this instance owns ($5), after *cur in
 * source order, at most PARK_CHUNK_EVENTS and PARK_CHUNK_BYTES (at least
 * one); taken out of parking, in source order; decoded into items (decode),
 * or records only. *cur moves past the chunk. */
static prime_errcode_t take_parked(prime_worker_t *w, PGconn *conn, const prime_registry_t *reg, const char *where,
                                   const char *arg, park_cursor_t *cur, parked_t *out, bool decode,
                                   prime_error_t *err)
{
    prime_buf_t sql;
    char *owned = batch_owned_partitions(w);
    const char *params[6] = {prime_worker_group(w), cur->topic, cur->partition, cur->offset, owned, arg};
    PGresult *res;
    prime_errcode_t rc = PRIME_OK;
    int rows;

    memset(out, 0, sizeof(*out));
    prime_buf_init(&sql, 0);
    /* The running sum of sizes keeps the chunk a prefix in source order;
     * every row carries the chunk's last position (the cursor), in the
     * database's order of topics. */
    prime_buf_printf(&sql,
                     "WITH chunk AS (SELECT t, pa, o FROM (SELECT source_topic AS t, source_partition AS pa, "
                     "source_offset AS o, sum(s) OVER (ORDER BY source_topic, source_partition, source_offset) - s "
                     "AS before FROM (SELECT source_topic, source_partition, source_offset, "
                     "octet_length(record_value) + coalesce(octet_length(record_key), 0) "
                     "+ coalesce(octet_length(record_headers), 0) AS s FROM prime_pipeline.parked_events "
                     "WHERE group_id = $1 AND (source_topic, source_partition, source_offset) > ($2, $3::int, $4::bigint) "
                     "AND source_topic || ':' || source_partition = ANY($5::text[]) "
                     "AND %s) sized ORDER BY source_topic, source_partition, source_offset LIMIT %d) c "
                     "WHERE before < %u), "
                     "gone AS (DELETE FROM prime_pipeline.parked_events p USING chunk "
                     "WHERE p.group_id = $1 AND p.source_topic = chunk.t AND p.source_partition = chunk.pa "
                     "AND p.source_offset = chunk.o RETURNING p.source_topic, p.source_partition, p.source_offset, "
                     "p.record_key, p.record_value, p.waiting_for, p.record_headers) "
                     "SELECT g.*, l.t, l.pa, l.o FROM gone g CROSS JOIN "
                     "(SELECT t, pa, o FROM chunk ORDER BY t DESC, pa DESC, o DESC LIMIT 1) l",
                     where, PARK_CHUNK_EVENTS, PARK_CHUNK_BYTES);
    if (sql.failed || !owned) {
        prime_buf_free(&sql);
        free(owned);
        return prime_error_set(err, PRIME_ERR_NOMEM, NULL, "out of memory taking parked events");
    }
    res = prime_pg_query(conn, sql.data, arg ? 6 : 5, params, "taking parked events", err);
    prime_buf_free(&sql);
    free(owned);
    if (!res)
        return err->code;
    rows = PQntuples(res);
    out->rows = (size_t)rows;
    if (rows) { /* the chunk's last position: where the next one starts */
        snprintf(cur->topic, sizeof(cur->topic), "%s", PQgetvalue(res, 0, 7));
        snprintf(cur->partition, sizeof(cur->partition), "%s", PQgetvalue(res, 0, 8));
        snprintf(cur->offset, sizeof(cur->offset), "%s", PQgetvalue(res, 0, 9));
    }
    out->items = calloc((size_t)rows + 1, sizeof(*out->items));
    out->owned = calloc((size_t)rows * 4 + 1, sizeof(char *));
    if (!out->items || !out->owned)
        rc = prime_error_set(err, PRIME_ERR_NOMEM, NULL, "out of memory taking parked events");
    /* Source order keeps each owner's events in the order they were made. */
    for (int i = 0; i < rows && !rc; i++) {
        size_t klen = 0, vlen = 0, hlen = 0;
        unsigned char *key = PQunescapeBytea((const unsigned char *)PQgetvalue(res, i, 3), &klen);
        unsigned char *value = PQunescapeBytea((const unsigned char *)PQgetvalue(res, i, 4), &vlen);
        unsigned char *headers =
            PQgetisnull(res, i, 6) ? NULL : PQunescapeBytea((const unsigned char *)PQgetvalue(res, i, 6), &hlen);
        char *topic = strdup(PQgetvalue(res, i, 0));
        prime_record_t r = {.topic = topic, .partition = atoi(PQgetvalue(res, i, 1)),
                            .offset = atoll(PQgetvalue(res, i, 2)), .key = key, .key_len = klen, .value = value,
                            .len = vlen, .headers = headers, .headers_len = hlen};
        bool usable = false;
        out->owned[out->nowned++] = topic;
        out->owned[out->nowned++] = (char *)key;
        out->owned[out->nowned++] = (char *)value;
        out->owned[out->nowned++] = (char *)headers;
        if (!topic || !key || !value || (!headers && !PQgetisnull(res, i, 6))) {
            rc = prime_error_set(err, PRIME_ERR_NOMEM, NULL, "out of memory taking parked events");
            break;
        }
        if (!decode) {
            out->items[out->n].record = r;
            snprintf(out->items[out->n++].waiting_for, sizeof(out->items[0].waiting_for), "%s", PQgetvalue(res, i, 5));
            continue;
        }
        rc = batch_make_item(w, reg, &r, &out->items[out->n], &usable, err);
        if (usable)
            out->items[out->n++].from_parking = true;
    }
    PQclear(res);
    /* RETURNING has no ORDER BY: sort by source coordinates. */
    if (!rc && out->n > 1)
        qsort(out->items, out->n, sizeof(*out->items), cmp_source);
    return rc;
}

/* waiting_for is "table:id". */
char *parking_condition_sql(void)
{
    prime_buf_t b;
    prime_buf_init(&b, 0);
    prime_buf_puts(&b, "(false");
    for (int t = 0; t < T_COUNT; t++)
        prime_buf_printf(&b,
                         " OR (starts_with(waiting_for, '%s:') AND EXISTS (SELECT 1 FROM public.%s r "
                         "WHERE r.id::text = lower(substr(waiting_for, %zu))))",
                         tables[t].name, tables[t].name, strlen(tables[t].name) + 2);
    prime_buf_putc(&b, ')');
    return prime_buf_steal(&b, NULL);
}

/* Whoever wrote the parent: this batch, or another consumer group, as the
 * snapshot writer writes the snapshot a restore waits for. A round goes
 * through the parked events whose parent exists, a chunk at a time in
 * source order; events applied may create rows others wait for (an earlier
 * chunk's, too), hence another round while one applies something. A chunk's
 * event whose stream still has an event parked before it (one an earlier
 * chunk parked again) waits behind it (stream_find_parked). */
prime_errcode_t parking_unpark(prime_worker_t *w, PGconn *conn, materializer_t *m, size_t *applied, prime_error_t *err)
{
    prime_errcode_t rc = PRIME_OK;
    size_t before;

    do {
        park_cursor_t cur = cursor_start;
        before = *applied;
        for (;;) {
            parked_t p;
            rc = take_parked(w, conn, m->reg, m->parent_exists, NULL, &cur, &p, true, err);
            /* A copy published again while the first waited: one applies. */
            if (!rc)
                rc = dedup_skip(w, conn, p.items, &p.n, err);
            if (!rc && p.n) {
                prime_log(PRIME_LOG_INFO, "unparking events whose parent was written", "events=%zu", p.n);
                rc = batch_materialize(w, conn, m, p.items, p.n, applied, err);
                if (!rc)
                    rc = parking_park(w, conn, m, p.items, p.n, err);
            }
            if (rc || !p.rows) {
                parked_free(&p);
                break;
            }
            parked_free(&p);
        }
    } while (!rc && *applied > before);
    return rc;
}

/* The bounded wait: dead letters, with the reason. A chunk a call (a batch,
 * or the idle housekeeping once a second): what a batch dead-letters stays
 * bounded. Not in a replay: when to expire is the wall clock's choice, and a
 * replay must give the same rows every time. The parked events stay parked
 * (the rows they would have written are not written, as when the live run
 * dead-lettered them). */
prime_errcode_t parking_expire(prime_worker_t *w, PGconn *conn, materializer_t *m, prime_error_t *err)
{
    char interval[32];
    parked_t expired = {0};
    park_cursor_t cur = cursor_start;
    prime_errcode_t rc;

    if (prime_worker_replaying(w))
        return PRIME_OK;

    snprintf(interval, sizeof(interval), "%d seconds", m->park_max_seconds);
    rc = take_parked(w, conn, m->reg, "parked_at < now() - $6::interval", interval, &cur, &expired, false, err);
    for (size_t i = 0; !rc && i < expired.n; i++) {
        prime_error_t why;
        prime_error_clear(&why);
        prime_error_set(&why, PRIME_ERR_INVALID, NULL, "unresolved: %s was not written within %d seconds",
                        expired.items[i].waiting_for, m->park_max_seconds);
        rc = prime_worker_dead_letter(w, &expired.items[i].record, &why, err);
    }
    parked_free(&expired);
    return rc;
}
