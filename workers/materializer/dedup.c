/* Events published twice (same event_id) are applied once (batch.h).
 *
 * An event's id is taken in (prime_pipeline.applied_events) once the event
 * has been judged: applied, or refused by the rules on its merits. An event
 * that only waited (parked, expired) or that the database refused (a
 * constraint that may hold no longer) is not: once its cause is fixed, its
 * dead letter published again is applied, the usual remedy. */
#include "batch.h"
#include "prime/buf.h"
#include "prime/log.h"
#include "prime/pg.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* UUIDs as text: PostgreSQL prints them in lower case, events may not. */
static int cmp_uuid_text(const void *a, const void *b)
{
    return strcasecmp(*(const char *const *)a, *(const char *const *)b);
}

/* An item's id and position, sorted by id then position: the first of a run
 * of equal ids is the copy that is folded. */
typedef struct id_pos {
    const char *id;
    size_t pos;
} id_pos_t;

static int cmp_id_pos(const void *x, const void *y)
{
    const id_pos_t *a = x, *b = y;
    int c = strcasecmp(a->id, b->id);
    return c ? c : (a->pos > b->pos) - (a->pos < b->pos);
}

prime_errcode_t dedup_skip(prime_worker_t *w, PGconn *conn, item_t *items, size_t *n, prime_error_t *err)
{
    prime_buf_t ids;
    const char *params[2];
    PGresult *res = NULL;
    id_pos_t *order = NULL;
    char **taken = NULL;
    bool *twice = NULL;
    prime_errcode_t rc = PRIME_OK;
    size_t kept = 0, ntaken = 0;

    if (!*n)
        return PRIME_OK;
    prime_buf_init(&ids, 0);
    prime_pg_array_begin(&ids);
    for (size_t i = 0; i < *n; i++)
        prime_pg_array_add(&ids, prime_event_string(items[i].event, "event_id"));
    prime_pg_array_end(&ids);
    order = malloc(*n * sizeof(*order));
    twice = calloc(*n, sizeof(*twice));
    if (ids.failed || !order || !twice) {
        rc = prime_error_set(err, PRIME_ERR_NOMEM, NULL, "out of memory listing event ids");
        goto out;
    }
    params[0] = prime_worker_group(w);
    params[1] = ids.data;
    /* Usually none: one index probe an id, nothing comes back. */
    if (!(res = prime_pg_query(conn,
                               "SELECT event_id::text FROM prime_pipeline.applied_events "
                               "WHERE group_id = $1 AND event_id = ANY($2::uuid[])",
                               2, params, "looking up event ids", err))) {
        rc = err->code;
        goto out;
    }
    ntaken = (size_t)PQntuples(res);
    if (!(taken = calloc(ntaken + 1, sizeof(*taken)))) {
        rc = prime_error_set(err, PRIME_ERR_NOMEM, NULL, "out of memory listing event ids");
        goto out;
    }
    for (size_t r = 0; r < ntaken; r++)
        taken[r] = PQgetvalue(res, (int)r, 0);
    qsort(taken, ntaken, sizeof(*taken), cmp_uuid_text);
    /* Copies within these items: the first is folded, the others skipped
     * (whatever becomes of the first: applied, refused or parked, it holds
     * the id). */
    for (size_t i = 0; i < *n; i++)
        order[i] = (id_pos_t){prime_event_string(items[i].event, "event_id"), i};
    qsort(order, *n, sizeof(*order), cmp_id_pos);
    for (size_t i = 1; i < *n; i++)
        if (!strcasecmp(order[i - 1].id, order[i].id))
            twice[order[i].pos] = true;
    for (size_t i = 0; i < *n; i++) {
        const char *id = prime_event_string(items[i].event, "event_id");
        if (!twice[i] && !bsearch(&id, taken, ntaken, sizeof(*taken), cmp_uuid_text)) {
            items[kept++] = items[i];
            continue;
        }
        prime_log(PRIME_LOG_INFO, "event published twice; applied once", "event_id=%s topic=%s partition=%d offset=%lld",
                  id, items[i].record.topic, (int)items[i].record.partition, (long long)items[i].record.offset);
        prime_event_free(items[i].event);
    }
    *n = kept;
out:
    PQclear(res);
    free(taken);
    free(order);
    free(twice);
    prime_buf_free(&ids);
    return rc;
}

/* Judged: applied, or refused by the rules (for_good). */
static bool judged(const item_t *it)
{
    return it->state == APPLIED || (it->state == REFUSED && it->refused_for_good);
}

prime_errcode_t dedup_record(prime_worker_t *w, PGconn *conn, const item_t *items, size_t n, prime_error_t *err)
{
    prime_buf_t ids;
    const char *params[2];
    PGresult *res;
    size_t count = 0;
    prime_errcode_t rc = PRIME_OK;

    prime_buf_init(&ids, 0);
    prime_pg_array_begin(&ids);
    for (size_t i = 0; i < n; i++)
        if (judged(&items[i])) {
            prime_pg_array_add(&ids, prime_event_string(items[i].event, "event_id"));
            count++;
        }
    prime_pg_array_end(&ids);
    if (!count) {
        prime_buf_free(&ids);
        return PRIME_OK;
    }
    if (ids.failed) {
        prime_buf_free(&ids);
        return prime_error_set(err, PRIME_ERR_NOMEM, NULL, "out of memory listing event ids");
    }
    params[0] = prime_worker_group(w);
    params[1] = ids.data;
    if (!(res = prime_pg_query(conn,
                               "INSERT INTO prime_pipeline.applied_events (group_id, event_id) "
                               "SELECT $1, unnest($2::uuid[]) ON CONFLICT DO NOTHING",
                               2, params, "recording event ids", err))) {
        rc = err->code;
    } else if (strtoull(PQcmdTuples(res), NULL, 10) != count) {
        /* dedup_skip() found none of them; another transaction (a second
         * instance given a copy on another partition) took one in since.
         * This batch again will skip it. */
        rc = prime_error_set(err, PRIME_ERR_DB, NULL,
                             "an event of the batch was taken in by another transaction meanwhile; "
                             "the batch is applied again");
        err->retriable = true;
    }
    PQclear(res);
    prime_buf_free(&ids);
    return rc;
}
