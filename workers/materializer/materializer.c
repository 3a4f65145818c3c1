/* prime-materializer: client events -> the seed tables (docs/materializer.md).
 *
 * Per batch: decode and validate every record (dead-lettering what fails),
 * collect the rows the events touch, read them in one query per table, fold
 * the events over them in order, write each table once (COPY + upsert,
 * then deletes). When the database refuses the set-based write (a unique
 * constraint the fold cannot see, say), the batch is redone event by event
 * under savepoints and only the offender is dead-lettered.
 *
 * An event whose parent row is missing is parked (prime_pipeline.
 * parked_events, in the same transaction) and folded again once that
 * parent exists, whoever wrote it; after --park-max-seconds it is
 * dead-lettered.
 *
 * An event published twice (same event_id) is applied once: the ids of
 * the events taken in are kept (prime_pipeline.applied_events) in the
 * batch's transaction. */
#include "prime/buf.h"
#include "prime/event.h"
#include "prime/log.h"
#include "prime/pg.h"
#include "prime/time.h"
#include "prime/uuid.h"
#include "prime/worker.h"
#include "derived.h"
#include "fold.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Derived records held before they go to the outbox: a batch of 10,000
 * events held them all (with a copy of each changed row), and the peak
 * memory of a drain rose by about 50 MB. */
#define DERIVED_CHUNK 1000

typedef struct materializer {
    prime_registry_t *reg;
    fold_t fold;
    derived_t *derived;   /* audit records and snapshots of the changes */
    int park_max_seconds;
    char *parent_exists;  /* SQL: parked events whose parent row exists now */
} materializer_t;

/* --- a batch ------------------------------------------------------------------ */

typedef enum item_state { PENDING, APPLIED, REFUSED, WAITING } item_state_t;

typedef struct item {
    prime_record_t record;
    prime_event_t *event;
    handler_fn fn;
    item_state_t state;
    char waiting_for[96];
    bool from_parking;
    long prev;              /* the previous item of the same stream (topic, key), or -1 */
    char blocked_by[96];    /* set when the stream has events in parking */
} item_t;

/* Copies a "table:id" key between items (never the same item). */
static void copy_key(char dst[96], const char *src)
{
    size_t n = strlen(src);
    if (n > 95)
        n = 95;
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
static void link_streams(item_t *items, size_t n)
{
    long *order = malloc((n ? n : 1) * sizeof(*order));
    for (size_t i = 0; i < n; i++) {
        items[i].prev = -1;
        if (order)
            order[i] = (long)i;
    }
    if (!order)
        return;
    sort_base = items;
    qsort(order, n, sizeof(*order), cmp_stream);
    for (size_t i = 1; i < n; i++)
        if (same_stream(&items[order[i - 1]], &items[order[i]]))
            items[order[i]].prev = order[i - 1];
    free(order);
}

/* UUIDs as text: PostgreSQL prints them in lower case, events may not. */
static int cmp_uuid_text(const void *a, const void *b)
{
    return strcasecmp(*(const char *const *)a, *(const char *const *)b);
}

static char *hex_of(const void *data, size_t len)
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
 * waits behind the last parked one (blocked_by is what that one waits for). */
static prime_errcode_t find_parked_streams(prime_worker_t *w, PGconn *conn, item_t *items, size_t n,
                                           prime_error_t *err)
{
    prime_buf_t topics, keys;
    const char *params[3];
    PGresult *res;
    size_t *heads = malloc((n ? n : 1) * sizeof(*heads)), nheads = 0;
    prime_errcode_t rc = PRIME_OK;

    if (!heads)
        return prime_error_set(err, PRIME_ERR_NOMEM, NULL, "out of memory");
    prime_buf_init(&topics, 0);
    prime_buf_init(&keys, 0);
    prime_pg_array_begin(&topics);
    prime_pg_array_begin(&keys);
    for (size_t i = 0; i < n; i++) {
        char *hex;
        items[i].blocked_by[0] = '\0';
        /* The first item of each stream that came from Kafka. */
        if (items[i].prev >= 0 || items[i].from_parking || !(hex = hex_of(items[i].record.key, items[i].record.key_len)))
            continue;
        prime_pg_array_add(&topics, items[i].record.topic);
        prime_pg_array_add(&keys, hex);
        heads[nheads++] = i;
        free(hex);
    }
    prime_pg_array_end(&topics);
    prime_pg_array_end(&keys);
    if (nheads) {
        /* For each stream head (by position), what its stream's last parked event waits for. */
        params[0] = prime_worker_group(w);
        params[1] = topics.data;
        params[2] = keys.data;
        res = PQexecParams(conn,
                           "SELECT DISTINCT ON (x.ord) x.ord, p.waiting_for "
                           "FROM unnest($2::text[], $3::text[]) WITH ORDINALITY AS x(topic, key, ord) "
                           "JOIN prime_pipeline.parked_events p ON p.group_id = $1 AND p.source_topic = x.topic "
                           "AND p.record_key = decode(x.key, 'hex') "
                           "ORDER BY x.ord, p.source_partition DESC, p.source_offset DESC",
                           3, NULL, params, NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_TUPLES_OK)
            rc = prime_pg_error(conn, res, "looking for parked streams", NULL, err);
        for (int r = 0; !rc && r < PQntuples(res); r++) {
            item_t *head = &items[heads[strtoull(PQgetvalue(res, r, 0), NULL, 10) - 1]];
            snprintf(head->blocked_by, sizeof(head->blocked_by), "%s", PQgetvalue(res, r, 1));
        }
        PQclear(res);
    }
    prime_buf_free(&topics);
    prime_buf_free(&keys);
    free(heads);
    return rc;
}

/* Whether item i may be folded now: nothing of its stream waits before it. */
static bool stream_clear(const item_t *items, size_t i)
{
    if (items[i].blocked_by[0])
        return false;
    return items[i].prev < 0 || items[items[i].prev].state == APPLIED || items[items[i].prev].state == REFUSED;
}

/* Folds items over the rows and writes them; refused events are
 * dead-lettered, events whose parent is missing (or whose stream has an
 * earlier event waiting) are left WAITING. Database errors are returned. */
static prime_errcode_t materialize(prime_worker_t *w, PGconn *conn, materializer_t *m, item_t *items, size_t n,
                                   size_t *applied, prime_error_t *err)
{
    fold_t *f = &m->fold;
    prime_errcode_t rc = PRIME_OK;
    int progress = 1;

    derived_clear(m->derived); /* what a failed pass left */
    for (int t = 0; t < T_COUNT; t++)
        f->sets[t].table = (table_id_t)t;
    link_streams(items, n);
    rc = find_parked_streams(w, conn, items, n, err);
    f->nmix_projects = 0;
    for (size_t i = 0; i < n; i++) {
        items[i].state = PENDING;
        items[i].waiting_for[0] = '\0';
        items[i].fn(f, items[i].event, COLLECT);
    }
    if (!rc)
        rc = fold_track_mixes(f, conn, err);
    for (int t = 0; t < T_COUNT && !rc; t++)
        rc = rows_load(&f->sets[t], conn, err);
    /* In order; an event whose parent is missing waits for the rest of the
     * batch, where its parent may be (another topic, a later record). */
    while (!rc && progress) {
        bool need_rows = false;
        progress = 0;
        for (size_t i = 0; i < n && !rc; i++) {
            int r;
            if (items[i].state != PENDING || !stream_clear(items, i))
                continue;
            r = items[i].fn(f, items[i].event, APPLY);
            /* Its changed rows, refused save or wanted snapshot become
             * audit records and snapshot.created (when applied). */
            rc = derived_take(m->derived, f, &items[i].record, items[i].event, r, err);
            if (!rc && derived_pending(m->derived) >= DERIVED_CHUNK)
                rc = derived_emit(m->derived, w, conn, err);
            if (rc)
                break;
            if (r == FOLD_NEED_ROWS) {
                need_rows = true;
                continue;
            }
            if (r == FOLD_MISSING_PARENT) {
                snprintf(items[i].waiting_for, sizeof(items[i].waiting_for), "%s", f->waiting_for);
                continue;
            }
            progress = 1;
            if (r == FOLD_REFUSED) {
                items[i].state = REFUSED;
                rc = prime_worker_dead_letter(w, &items[i].record, &f->why, err);
            } else {
                items[i].state = APPLIED;
                (*applied)++;
            }
        }
        /* Rows found only by folding (a file's project): read, then go on. */
        for (int t = 0; t < T_COUNT && !rc && need_rows; t++)
            rc = rows_load(&f->sets[t], conn, err);
        progress |= need_rows;
    }
    /* What is left waits: for its parent, or behind the event before it in
     * its stream (and then for the same row, so they come out together). */
    for (size_t i = 0; i < n && !rc; i++) {
        if (items[i].state != PENDING)
            continue;
        items[i].state = WAITING;
        if (items[i].waiting_for[0])
            continue;
        copy_key(items[i].waiting_for, items[i].blocked_by[0] ? items[i].blocked_by : items[items[i].prev].waiting_for);
    }
    for (int t = 0; t < T_COUNT && !rc; t++)
        rc = rows_write(&f->sets[t], conn, err);
    for (int t = T_COUNT - 1; t >= 0 && !rc; t--)
        rc = rows_delete(&f->sets[t], conn, err);
    /* In the same transaction (and savepoint) as the writes. */
    if (!rc)
        rc = derived_emit(m->derived, w, conn, err);
    for (int t = 0; t < T_COUNT; t++)
        rows_clear(&f->sets[t]);
    return rc;
}

/* materialize(), and when the database refuses the set-based writes (a
 * constraint the fold cannot see), again event by event under savepoints,
 * dead-lettering only the events it refuses. */
static prime_errcode_t materialize_or_isolate(prime_worker_t *w, PGconn *conn, materializer_t *m, item_t *items,
                                              size_t n, size_t *applied, prime_error_t *err)
{
    prime_errcode_t rc;
    size_t applied_before = *applied, dead_before = prime_worker_dead_letter_mark(w);
    char msg[768];

    if ((rc = prime_pg_exec(conn, "SAVEPOINT pass", "SAVEPOINT", err)))
        return rc;
    rc = materialize(w, conn, m, items, n, applied, err);
    if (!rc || err->retriable || PQstatus(conn) != CONNECTION_OK)
        return rc;
    prime_log(PRIME_LOG_WARN, "batch refused by the database; applying event by event", "error=\"%s\"",
              prime_log_value(err->message, msg, sizeof(msg)));
    prime_error_clear(err);
    if ((rc = prime_pg_exec(conn, "ROLLBACK TO SAVEPOINT pass", "ROLLBACK TO SAVEPOINT", err)))
        return rc;
    /* The pass's dead letters go with its rows: the events it refused are
     * refused again below, and dead-lettered once. */
    prime_worker_dead_letter_rewind(w, dead_before);
    *applied = applied_before;
    link_streams(items, n);
    for (size_t i = 0; i < n && !rc; i++) {
        prime_error_t why;
        long prev = items[i].prev;
        size_t dead_mark = prime_worker_dead_letter_mark(w);
        prime_error_clear(&why);
        if (prev >= 0 && items[prev].state == WAITING) {
            /* Behind a waiting event of its stream: waits with it. */
            items[i].state = WAITING;
            copy_key(items[i].waiting_for, items[prev].waiting_for);
            continue;
        }
        if ((rc = prime_pg_exec(conn, "SAVEPOINT one", "SAVEPOINT", err)))
            break;
        if (materialize(w, conn, m, &items[i], 1, applied, &why) == PRIME_OK) {
            rc = prime_pg_exec(conn, "RELEASE SAVEPOINT one", "RELEASE", err);
        } else if (why.retriable || PQstatus(conn) != CONNECTION_OK) {
            *err = why;
            rc = why.code;
        } else if (!(rc = prime_pg_exec(conn, "ROLLBACK TO SAVEPOINT one", "ROLLBACK TO SAVEPOINT", err))) {
            prime_worker_dead_letter_rewind(w, dead_mark);
            items[i].state = REFUSED;
            rc = prime_worker_dead_letter(w, &items[i].record, &why, err);
        }
    }
    return rc;
}

/* Items from records: decoded and validated, or dead-lettered. */
static prime_errcode_t make_item(prime_worker_t *w, const prime_registry_t *reg, const prime_record_t *r,
                                 item_t *out, bool *usable, prime_error_t *err)
{
    prime_error_t why;
    prime_event_t *ev;
    handler_fn fn;
    prime_errcode_t rc;

    *usable = false;
    if ((rc = prime_worker_decode(w, reg, r, &ev, err)) || !ev)
        return rc;
    if (!(fn = fold_handler_for(ev))) {
        prime_error_clear(&why);
        prime_error_set(&why, PRIME_ERR_UNKNOWN_TYPE, "type", "%s is not materialized by this worker",
                        prime_event_type_name(prime_event_type(ev)));
        prime_event_free(ev);
        return prime_worker_dead_letter(w, r, &why, err);
    }
    *out = (item_t){.record = *r, .event = ev, .fn = fn};
    *usable = true;
    return PRIME_OK;
}

/* Parks the WAITING items, in the batch's transaction: one statement for
 * all of them (arrays of their coordinates, keys and bytes as hex). */
static prime_errcode_t park(prime_worker_t *w, PGconn *conn, item_t *items, size_t n, prime_error_t *err)
{
    prime_buf_t arrays[6]; /* topic, partition, offset, waiting_for, key hex, value hex */
    const char *params[7];
    size_t parked = 0;
    prime_errcode_t rc = PRIME_OK;

    prime_pg_arrays_begin(arrays, 6);
    for (size_t i = 0; i < n; i++) {
        char *key, *value, part[16], offset[24];
        if (items[i].state != WAITING)
            continue;
        key = hex_of(items[i].record.key, items[i].record.key_len);
        value = hex_of(items[i].record.value, items[i].record.len);
        snprintf(part, sizeof(part), "%d", (int)items[i].record.partition);
        snprintf(offset, sizeof(offset), "%lld", (long long)items[i].record.offset);
        prime_pg_array_add(&arrays[0], items[i].record.topic);
        prime_pg_array_add(&arrays[1], part);
        prime_pg_array_add(&arrays[2], offset);
        prime_pg_array_add(&arrays[3], items[i].waiting_for);
        prime_pg_array_add(&arrays[4], key ? key : "");
        prime_pg_array_add(&arrays[5], value ? value : "");
        free(key);
        free(value);
        prime_log(PRIME_LOG_DEBUG, "parked until its parent is written", "topic=%s partition=%d offset=%lld waiting_for=%s",
                  items[i].record.topic, (int)items[i].record.partition, (long long)items[i].record.offset,
                  items[i].waiting_for);
        parked++;
    }
    if (!prime_pg_arrays_end(arrays, 6, params + 1))
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
    if (sql.failed)
        return prime_error_set(err, PRIME_ERR_NOMEM, NULL, "out of memory");
    res = PQexecParams(conn, sql.data, arg ? 2 : 1, NULL, params, NULL, NULL, 0);
    prime_buf_free(&sql);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        rc = prime_pg_error(conn, res, "taking parked events", NULL, err);
        PQclear(res);
        return rc;
    }
    rows = PQntuples(res);
    out->items = calloc((size_t)rows + 1, sizeof(*out->items));
    out->owned = calloc((size_t)rows * 3 + 1, sizeof(char *));
    /* Source order keeps each owner's events in the order they were made. */
    for (int i = 0; i < rows && !rc; i++) {
        size_t klen = 0, vlen = 0;
        unsigned char *key = PQunescapeBytea((const unsigned char *)PQgetvalue(res, i, 3), &klen);
        unsigned char *value = PQunescapeBytea((const unsigned char *)PQgetvalue(res, i, 4), &vlen);
        char *topic = strdup(PQgetvalue(res, i, 0));
        prime_record_t r = {.topic = topic, .partition = atoi(PQgetvalue(res, i, 1)),
                            .offset = atoll(PQgetvalue(res, i, 2)), .key = key, .key_len = klen, .value = value,
                            .len = vlen, .internal = NULL};
        bool usable = false;
        out->owned[out->nowned++] = topic;
        out->owned[out->nowned++] = (char *)key;
        out->owned[out->nowned++] = (char *)value;
        if (!decode) {
            out->items[out->n].record = r;
            snprintf(out->items[out->n++].waiting_for, sizeof(out->items[0].waiting_for), "%s", PQgetvalue(res, i, 5));
            continue;
        }
        rc = make_item(w, reg, &r, &out->items[out->n], &usable, err);
        if (usable)
            out->items[out->n++].from_parking = true;
    }
    PQclear(res);
    /* RETURNING has no ORDER BY: sort by source coordinates. */
    if (!rc && out->n > 1)
        qsort(out->items, out->n, sizeof(*out->items), cmp_source);
    return rc;
}

/* Takes the items' event ids in (prime_pipeline.applied_events, in the
 * batch's transaction) and drops the items whose id was taken in before,
 * by an earlier batch or earlier in this one: a second publication of an
 * event is skipped, logged, and changes nothing. */
#define RECORD_EVENT_IDS                                                                                  \
    "INSERT INTO prime_pipeline.applied_events (group_id, event_id) "                                   \
    "SELECT $1, unnest($2::uuid[]) ON CONFLICT DO NOTHING"

static prime_errcode_t skip_duplicates(prime_worker_t *w, PGconn *conn, item_t *items, size_t *n, prime_error_t *err)
{
    prime_buf_t ids;
    const char *params[2];
    PGresult *res;
    prime_errcode_t rc = PRIME_OK;
    size_t kept = 0;
    bool all_new = false;

    if (!*n)
        return PRIME_OK;
    prime_buf_init(&ids, 0);
    prime_pg_array_begin(&ids);
    for (size_t i = 0; i < *n; i++)
        prime_pg_array_add(&ids, prime_event_string(items[i].event, "event_id"));
    prime_pg_array_end(&ids);
    params[0] = prime_worker_group(w);
    params[1] = ids.data;
    /* Usually every id is new: then the count says so, and no ids need to
     * come back. Otherwise the insert is undone and redone, returning the
     * new ones. */
    if ((rc = prime_pg_exec(conn, "SAVEPOINT dedup", "SAVEPOINT", err))) {
        prime_buf_free(&ids);
        return rc;
    }
    res = PQexecParams(conn, RECORD_EVENT_IDS, 2, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        rc = prime_pg_error(conn, res, "recording event ids", NULL, err);
    else
        all_new = strtoull(PQcmdTuples(res), NULL, 10) == *n;
    PQclear(res);
    if (!rc)
        rc = all_new ? prime_pg_exec(conn, "RELEASE SAVEPOINT dedup", "RELEASE", err)
                     : prime_pg_exec(conn, "ROLLBACK TO SAVEPOINT dedup", "ROLLBACK TO SAVEPOINT", err);
    if (rc || all_new) {
        prime_buf_free(&ids);
        return rc;
    }
    res = PQexecParams(conn, RECORD_EVENT_IDS " RETURNING event_id::text", 2, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        rc = prime_pg_error(conn, res, "recording event ids", NULL, err);
    } else {
        /* New ids, sorted, to look up; an id's first item in the batch is
         * the one taken in. */
        size_t fresh = (size_t)PQntuples(res);
        char **found = calloc(fresh + 1, sizeof(*found));
        bool *taken = calloc(fresh + 1, sizeof(*taken));
        if (!found || !taken)
            rc = prime_error_set(err, PRIME_ERR_NOMEM, NULL, "out of memory");
        for (size_t r = 0; !rc && r < fresh; r++)
            found[r] = PQgetvalue(res, (int)r, 0);
        if (!rc)
            qsort(found, fresh, sizeof(*found), cmp_uuid_text);
        for (size_t i = 0; i < *n && !rc; i++) {
            const char *id = prime_event_string(items[i].event, "event_id");
            char **hit = bsearch(&id, found, fresh, sizeof(*found), cmp_uuid_text);
            if (hit && !taken[hit - found]) {
                taken[hit - found] = true; /* later items with this id are duplicates */
                items[kept++] = items[i];
                continue;
            }
            prime_log(PRIME_LOG_INFO, "event published twice; applied once", "event_id=%s topic=%s partition=%d offset=%lld",
                      id, items[i].record.topic, (int)items[i].record.partition, (long long)items[i].record.offset);
            prime_event_free(items[i].event);
        }
        if (!rc)
            *n = kept;
        free(found);
        free(taken);
    }
    PQclear(res);
    prime_buf_free(&ids);
    return rc;
}

/* The condition on parked_events that a parent row exists now, whoever
 * wrote it: waiting_for is "table:id". */
static char *parent_exists_sql(void)
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

/* Takes the parked events whose parent row exists now (whoever wrote it:
 * this batch, or another consumer group, as the snapshot writer writes the
 * snapshot a restore waits for), folds them, parks again what still waits.
 * Events applied may create rows others wait for, so this repeats while it
 * applies something. */
static prime_errcode_t unpark(prime_worker_t *w, PGconn *conn, materializer_t *m, size_t *applied, prime_error_t *err)
{
    prime_errcode_t rc = PRIME_OK;
    size_t before;

    do {
        parked_t p;
        before = *applied;
        rc = take_parked(w, conn, m->reg, m->parent_exists, NULL, &p, true, err);
        if (!rc && p.n) {
            prime_log(PRIME_LOG_INFO, "unparking events whose parent was written", "events=%zu", p.n);
            rc = materialize_or_isolate(w, conn, m, p.items, p.n, applied, err);
            if (!rc)
                rc = park(w, conn, p.items, p.n, err);
        }
        parked_free(&p);
    } while (!rc && *applied > before);
    return rc;
}

static prime_errcode_t apply(prime_worker_t *w, PGconn *conn, const prime_record_t *records, size_t n, void *ctx,
                             prime_error_t *err)
{
    materializer_t *m = ctx;
    item_t *items = calloc(n ? n : 1, sizeof(*items));
    size_t count = 0, applied = 0;
    prime_errcode_t rc = PRIME_OK;
    char interval[32];
    parked_t expired = {0};

    if (!items)
        return prime_error_set(err, PRIME_ERR_NOMEM, NULL, "out of memory");
    for (size_t i = 0; i < n && !rc; i++) {
        bool usable;
        rc = make_item(w, m->reg, &records[i], &items[count], &usable, err);
        count += usable;
    }
    if (!rc)
        rc = skip_duplicates(w, conn, items, &count, err);
    if (!rc)
        rc = materialize_or_isolate(w, conn, m, items, count, &applied, err);
    if (!rc)
        rc = park(w, conn, items, count, err);
    if (!rc)
        rc = unpark(w, conn, m, &applied, err);
    /* The bounded wait: dead letters, with the reason. */
    snprintf(interval, sizeof(interval), "%d seconds", m->park_max_seconds);
    if (!rc)
        rc = take_parked(w, conn, m->reg, "parked_at < now() - $2::interval", interval, &expired, false, err);
    for (size_t i = 0; !rc && i < expired.n; i++) {
        prime_error_t why;
        prime_error_clear(&why);
        prime_error_set(&why, PRIME_ERR_INVALID, NULL, "unresolved: %s was not written within %d seconds",
                        expired.items[i].waiting_for, m->park_max_seconds);
        rc = prime_worker_dead_letter(w, &expired.items[i].record, &why, err);
    }
    parked_free(&expired);
    if (!rc)
        prime_worker_count_applied(w, applied);
    for (size_t i = 0; i < count; i++)
        prime_event_free(items[i].event);
    free(items);
    return rc;
}

static prime_errcode_t on_dead_letter(prime_worker_t *w, PGconn *conn, const prime_record_t *r,
                                      const prime_error_t *why, void *ctx, prime_error_t *err)
{
    materializer_t *m = ctx;
    return derived_dead_letter(m->derived, w, conn, r, why, err);
}

/* One program, two consumer groups: prime-materializer (client topics and
 * the analyzer's answers into the seed tables) and prime-snapshot-writer
 * (prime.snapshots into project_snapshots), built from this file with
 * PRIME_SNAPSHOT_WRITER set. Same fold, same exactly-once machinery. */
#ifdef PRIME_SNAPSHOT_WRITER
#define WORKER_NAME "snapshot-writer"
static const char *const default_topics[] = {"prime.snapshots", NULL};
#else
#define WORKER_NAME "materializer"
static const char *const default_topics[] = {"prime.users",    "prime.auth",     "prime.projects", "prime.audio",
                                             "prime.recall",   "prime.sessions", "prime.presets",  "prime.collab",
                                             "prime.analysis", NULL};
#endif

int main(int argc, char **argv)
{
    char **rest = calloc((size_t)argc + 1, sizeof(char *));
    int nrest = 0, rc;
    prime_worker_conf_t conf;
    materializer_t m = {.fold.snapshot_every = 10};
    prime_error_t err;

    /* Its own options first; the rest are the runtime's. */
    for (int i = 0; rest && i < argc; i++) {
        if (i + 1 < argc && !strcmp(argv[i], "--snapshot-every")) {
            char *end;
            long every = strtol(argv[++i], &end, 10);
            if (*end || end == argv[i] || every < 0 || every > 1000000) {
                fprintf(stderr, "prime-" WORKER_NAME ": --snapshot-every: expected 0 to 1000000, got '%s'\n", argv[i]);
                free(rest);
                return 2;
            }
            m.fold.snapshot_every = (int)every;
        } else {
            rest[nrest++] = argv[i];
        }
    }
    if (!rest)
        return 1;
    rc = prime_worker_conf_parse(&conf, WORKER_NAME, default_topics, nrest, rest);
    if (rc) {
        if (rc < 0)
            puts("  --snapshot-every N    an auto snapshot every N project versions (default 10; 0: none)");
        free(rest);
        return rc < 0 ? 0 : rc;
    }
    prime_error_clear(&err);
    if (!(m.reg = prime_registry_new(&err)) || !(m.derived = derived_new(m.reg))) {
        fprintf(stderr, "prime-" WORKER_NAME ": %s\n", m.reg ? "out of memory" : err.message);
        prime_registry_free(m.reg);
        free(rest);
        return 1;
    }
    m.park_max_seconds = conf.park_max_seconds;
    if (!(m.parent_exists = parent_exists_sql())) {
        fprintf(stderr, "prime-" WORKER_NAME ": out of memory\n");
        return 1;
    }
    conf.on_dead_letter = on_dead_letter;
    rc = prime_worker_run(&conf, apply, &m);
    for (int t = 0; t < T_COUNT; t++)
        rows_free(&m.fold.sets[t]);
    fold_snapshot_clear(&m.fold.snapshot);
    prime_buf_free(&m.fold.mix_projects);
    derived_free(m.derived);
    prime_registry_free(m.reg);
    free(m.parent_exists);
    free(rest);
    return rc;
}
