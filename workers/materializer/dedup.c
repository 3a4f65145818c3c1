/* Events published twice (same event_id) are applied once (batch.h). */
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

#define RECORD_EVENT_IDS                                                                                  \
    "INSERT INTO prime_pipeline.applied_events (group_id, event_id) "                                   \
    "SELECT $1, unnest($2::uuid[]) ON CONFLICT DO NOTHING"

prime_errcode_t dedup_skip(prime_worker_t *w, PGconn *conn, item_t *items, size_t *n, prime_error_t *err)
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
    if (ids.failed) {
        prime_buf_free(&ids);
        return prime_error_set(err, PRIME_ERR_NOMEM, NULL, "out of memory listing event ids");
    }
    params[0] = prime_worker_group(w);
    params[1] = ids.data;
    /* Usually every id is new: then the count says so, and no ids need to
     * come back. Otherwise the insert is undone and redone, returning the
     * new ones. */
    if ((rc = prime_pg_exec(conn, "SAVEPOINT dedup", "SAVEPOINT", err))) {
        prime_buf_free(&ids);
        return rc;
    }
    if (!(res = prime_pg_query(conn, RECORD_EVENT_IDS, 2, params, "recording event ids", err)))
        rc = err->code;
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
    if (!(res = prime_pg_query(conn, RECORD_EVENT_IDS " RETURNING event_id::text", 2, params, "recording event ids",
                               err))) {
        rc = err->code;
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
