/* Parking (batch.h): an event whose parent row is missing waits in
 * prime_pipeline.parked_events, in the batch's transaction, and is folded
 * again once that parent exists, whoever wrote it; after
 * --park-max-seconds it is dead-lettered. */
#include "batch.h"
#include "prime/buf.h"
#include "prime/log.h"
#include "prime/pg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One statement for all of them (arrays of their coordinates, keys and
 * bytes as hex). */
prime_errcode_t parking_park(prime_worker_t *w, PGconn *conn, item_t *items, size_t n, prime_error_t *err)
{
    prime_buf_t arrays[6]; /* topic, partition, offset, waiting_for, key hex, value hex */
    const char *params[7];
    size_t parked = 0;
    prime_errcode_t rc = PRIME_OK;

    prime_pg_arrays_begin(arrays, 6);
    for (size_t i = 0; i < n && !rc; i++) {
        char *key, *value, part[16], offset[24];
        if (items[i].state != WAITING)
            continue;
        key = stream_hex(items[i].record.key, items[i].record.key_len);
        value = stream_hex(items[i].record.value, items[i].record.len);
        if (!key || !value) { /* never an empty key or value in parking */
            free(key);
            free(value);
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
        free(key);
        free(value);
        prime_log(PRIME_LOG_DEBUG, "parked until its parent is written", "topic=%s partition=%d offset=%lld waiting_for=%s",
                  items[i].record.topic, (int)items[i].record.partition, (long long)items[i].record.offset,
                  items[i].waiting_for);
        parked++;
    }
    if (!rc && !prime_pg_arrays_end(arrays, 6, params + 1))
        rc = prime_error_set(err, PRIME_ERR_NOMEM, NULL, "out of memory parking events");
    params[0] = prime_worker_group(w);
    if (parked && !rc) {
        rc = prime_pg_exec_params(conn,
                                  "INSERT INTO prime_pipeline.parked_events (group_id, source_topic, source_partition, "
                                  "source_offset, waiting_for, record_key, record_value, reason) "
                                  "SELECT $1, t, p, o, wf, decode(k, 'hex'), decode(v, 'hex'), "
                                  "'parent row not written yet' FROM unnest($2::text[], $3::int[], $4::bigint[], "
                                  "$5::text[], $6::text[], $7::text[]) AS x(t, p, o, wf, k, v) "
                                  "ON CONFLICT (group_id, source_topic, source_partition, source_offset) "
                                  "DO UPDATE SET waiting_for = EXCLUDED.waiting_for",
                                  7, params, "parking events", err);
        if (!rc)
            prime_log(PRIME_LOG_INFO, "parked until their parents are written", "events=%zu", parked);
    }
    prime_pg_arrays_free(arrays, 6);
    return rc;
}

/* Parked events, oldest first by source coordinates, chosen by sql
 * ($1 group, $2 a text array or an interval), taken out of parking. */
typedef struct parked {
    item_t *items;
    size_t n;
    char **owned; /* topics, keys and values the items point at */
    size_t nowned;
} parked_t;

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

/* Parked events chosen by where ($1 the group, $2 arg when given), taken
 * out of parking, in source order; decoded into items (decode), or records
 * only. */
static prime_errcode_t take_parked(prime_worker_t *w, PGconn *conn, const prime_registry_t *reg, const char *where,
                                   const char *arg, parked_t *out, bool decode, prime_error_t *err)
{
    prime_buf_t sql;
    const char *params[2] = {prime_worker_group(w), arg};
    PGresult *res;
    prime_errcode_t rc = PRIME_OK;
    int rows;

    memset(out, 0, sizeof(*out));
    prime_buf_init(&sql, 0);
    prime_buf_printf(&sql,
                     "DELETE FROM prime_pipeline.parked_events WHERE group_id = $1 AND %s "
                     "RETURNING source_topic, source_partition, source_offset, record_key, record_value, waiting_for",
                     where);
    if (sql.failed) {
        prime_buf_free(&sql);
        return prime_error_set(err, PRIME_ERR_NOMEM, NULL, "out of memory taking parked events");
    }
    res = prime_pg_query(conn, sql.data, arg ? 2 : 1, params, "taking parked events", err);
    prime_buf_free(&sql);
    if (!res)
        return err->code;
    rows = PQntuples(res);
    out->items = calloc((size_t)rows + 1, sizeof(*out->items));
    out->owned = calloc((size_t)rows * 3 + 1, sizeof(char *));
    if (!out->items || !out->owned)
        rc = prime_error_set(err, PRIME_ERR_NOMEM, NULL, "out of memory taking parked events");
    /* Source order keeps each owner's events in the order they were made. */
    for (int i = 0; i < rows && !rc; i++) {
        size_t klen = 0, vlen = 0;
        unsigned char *key = PQunescapeBytea((const unsigned char *)PQgetvalue(res, i, 3), &klen);
        unsigned char *value = PQunescapeBytea((const unsigned char *)PQgetvalue(res, i, 4), &vlen);
        char *topic = strdup(PQgetvalue(res, i, 0));
        prime_record_t r = {.topic = topic, .partition = atoi(PQgetvalue(res, i, 1)),
                            .offset = atoll(PQgetvalue(res, i, 2)), .key = key, .key_len = klen, .value = value,
                            .len = vlen};
        bool usable = false;
        out->owned[out->nowned++] = topic;
        out->owned[out->nowned++] = (char *)key;
        out->owned[out->nowned++] = (char *)value;
        if (!topic || !key || !value) {
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
 * snapshot writer writes the snapshot a restore waits for. Events applied
 * may create rows others wait for, hence the repeat. */
prime_errcode_t parking_unpark(prime_worker_t *w, PGconn *conn, materializer_t *m, size_t *applied, prime_error_t *err)
{
    prime_errcode_t rc = PRIME_OK;
    size_t before;

    do {
        parked_t p;
        before = *applied;
        rc = take_parked(w, conn, m->reg, m->parent_exists, NULL, &p, true, err);
        if (!rc && p.n) {
            prime_log(PRIME_LOG_INFO, "unparking events whose parent was written", "events=%zu", p.n);
            rc = batch_materialize(w, conn, m, p.items, p.n, applied, err);
            if (!rc)
                rc = parking_park(w, conn, p.items, p.n, err);
        }
        parked_free(&p);
    } while (!rc && *applied > before);
    return rc;
}

/* The bounded wait: dead letters, with the reason. Not in a replay: when
 * to expire is the wall clock's choice, and a replay must give the same rows
 * every time. The parked events stay parked (the rows they would have
 * written are not written, as when the live run dead-lettered them). */
prime_errcode_t parking_expire(prime_worker_t *w, PGconn *conn, materializer_t *m, prime_error_t *err)
{
    char interval[32];
    parked_t expired = {0};
    prime_errcode_t rc;

    if (prime_worker_replaying(w))
        return PRIME_OK;

    snprintf(interval, sizeof(interval), "%d seconds", m->park_max_seconds);
    rc = take_parked(w, conn, m->reg, "parked_at < now() - $2::interval", interval, &expired, false, err);
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
