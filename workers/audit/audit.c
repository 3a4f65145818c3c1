/* prime-audit: the audit log (docs/audit.md).
 *
 *   prime-audit writer [worker options]   prime.audit -> prime_pipeline.audit_log
 *   prime-audit verify [--db CONNINFO] [--rows]
 *
 * The writer appends each audit record once (records relayed twice have
 * the same audit_id) and chains it: record_hash is SHA-256 of the record
 * before it in its partition (prev_hash) and of its own stored values, so
 * a record altered, removed or inserted behind the append-only trigger's
 * back breaks the chain. verify walks every chain and names the first
 * broken link; --rows also checks that every row of the tables is as its
 * latest audit record says (no change without its audit record). */
#include "prime/buf.h"
#include "prime/event.h"
#include "prime/log.h"
#include "prime/pg.h"
#include "prime/time.h"
#include "prime/uuid.h"
#include "prime/worker.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NIL_UUID "00000000-0000-0000-0000-000000000000"

/* --- the chain ------------------------------------------------------------- */

/* A record's values as audit_log stores them (NULL for SQL NULL). */
typedef struct stored {
    const char *audit_id, *entity_type, *entity_id, *operation, *actor_user_id, *device_id;
    int64_t occurred_at; /* microseconds since the epoch */
    const char **changed;
    size_t nchanged;
    const char *source_topic;
    int32_t source_partition;
    int64_t source_offset;
    const char *row_hash, *detail;
    int32_t audit_partition;
    int64_t audit_offset;
} stored_t;

static void feed(EVP_MD_CTX *md, const char *value)
{
    char len[24];
    if (!value) {
        EVP_DigestUpdate(md, "~\n", 2);
        return;
    }
    snprintf(len, sizeof(len), "%zu:", strlen(value));
    EVP_DigestUpdate(md, len, strlen(len));
    EVP_DigestUpdate(md, value, strlen(value));
    EVP_DigestUpdate(md, "\n", 1);
}

static void feed_int(EVP_MD_CTX *md, int64_t value)
{
    char text[24];
    snprintf(text, sizeof(text), "%" PRId64, value);
    feed(md, text);
}

/* record_hash: SHA-256 (hex) of prev_hash and every stored value, each
 * length-prefixed (NULL as "~"), so that no two records encode alike. */
static void chain_hash(const char *prev_hash, const stored_t *s, char out[65])
{
    static const char digits[] = "0123456789abcdef";
    unsigned char digest[32];
    unsigned int len = 0;
    EVP_MD_CTX *md = EVP_MD_CTX_new();

    EVP_DigestInit_ex(md, EVP_sha256(), NULL);
    feed(md, prev_hash);
    feed(md, s->audit_id);
    feed(md, s->entity_type);
    feed(md, s->entity_id);
    feed(md, s->operation);
    feed(md, s->actor_user_id);
    feed(md, s->device_id);
    feed_int(md, s->occurred_at);
    feed_int(md, (int64_t)s->nchanged);
    for (size_t i = 0; i < s->nchanged; i++)
        feed(md, s->changed[i]);
    feed(md, s->source_topic);
    feed_int(md, s->source_partition);
    feed_int(md, s->source_offset);
    feed(md, s->row_hash);
    feed(md, s->detail);
    feed_int(md, s->audit_partition);
    feed_int(md, s->audit_offset);
    EVP_DigestFinal_ex(md, digest, &len);
    EVP_MD_CTX_free(md);
    for (unsigned int i = 0; i < 32; i++) {
        out[2 * i] = digits[digest[i] >> 4];
        out[2 * i + 1] = digits[digest[i] & 15];
    }
    out[64] = '\0';
}

/* --- the writer ---------------------------------------------------------------- */

typedef struct entry {
    prime_event_t *ev;
    stored_t s;
    char audit_id[40], actor[40];
    const char **changed;
    char prev_hash[65], record_hash[65];
    bool has_prev, skip;
} entry_t;

typedef struct writer {
    prime_registry_t *reg;
} writer_t;

/* The stored values of an audit.recorded event. */
static bool entry_from_event(entry_t *e, prime_event_t *ev, const prime_record_t *r)
{
    size_t n = 0;
    int32_t part = 0;
    int64_t off = 0, when = 0;

    e->ev = ev;
    prime_uuid_canonical(prime_event_string(ev, "audit_id"), e->audit_id);
    prime_uuid_canonical(prime_event_string(ev, "actor_user_id"), e->actor);
    prime_event_get_array_size(ev, "changed_columns", &n, NULL, NULL);
    if (!(e->changed = calloc(n ? n : 1, sizeof(char *))))
        return false;
    for (size_t i = 0; i < n; i++)
        prime_event_get_array_string(ev, "changed_columns", i, &e->changed[i], NULL, NULL);
    prime_event_get_int(ev, "source_partition", &part, NULL, NULL);
    prime_event_get_long(ev, "source_offset", &off, NULL, NULL);
    prime_event_get_long(ev, "occurred_at", &when, NULL, NULL);
    e->s = (stored_t){
        .audit_id = e->audit_id,
        .entity_type = prime_event_string(ev, "entity_type"),
        .entity_id = prime_event_string(ev, "entity_id"),
        .operation = prime_event_string(ev, "operation"),
        .actor_user_id = strcmp(e->actor, NIL_UUID) ? e->actor : NULL, /* the nil UUID: not known */
        .device_id = prime_event_string(ev, "device_id"),
        .occurred_at = when,
        .changed = e->changed,
        .nchanged = n,
        .source_topic = prime_event_string(ev, "source_topic"),
        .source_partition = part,
        .source_offset = off,
        .row_hash = prime_event_string(ev, "row_hash"),
        .detail = prime_event_string(ev, "detail"),
        .audit_partition = r->partition,
        .audit_offset = r->offset,
    };
    return true;
}

/* qsort's comparator has no context argument; the writer's apply() runs
 * on the worker's one thread, so a file-static base is safe. */
static const entry_t *sort_base;

static int cmp_by_id(const void *x, const void *y)
{
    size_t a = *(const size_t *)x, b = *(const size_t *)y;
    int c = strcmp(sort_base[a].audit_id, sort_base[b].audit_id);
    return c ? c : (a < b ? -1 : a > b);
}

/* Within the batch, the first copy of an audit_id is the one stored. */
static bool mark_repeats(entry_t *e, size_t n)
{
    size_t *order = malloc((n ? n : 1) * sizeof(*order));
    if (!order)
        return false;
    for (size_t i = 0; i < n; i++)
        order[i] = i;
    sort_base = e;
    qsort(order, n, sizeof(*order), cmp_by_id);
    for (size_t i = 1; i < n; i++)
        if (!strcmp(e[order[i]].audit_id, e[order[i - 1]].audit_id))
            e[order[i]].skip = true;
    free(order);
    return true;
}

/* Marks entries whose audit_id is stored already or came earlier in the
 * batch (relayed twice after a crash: stored once). */
static prime_errcode_t mark_stored(PGconn *conn, entry_t *e, size_t n, prime_error_t *err)
{
    prime_buf_t ids;
    const char *params[1];
    PGresult *res;
    prime_errcode_t rc = PRIME_OK;

    prime_buf_init(&ids, 0);
    prime_pg_array_begin(&ids);
    for (size_t i = 0; i < n; i++)
        prime_pg_array_add(&ids, e[i].audit_id);
    prime_pg_array_end(&ids);
    params[0] = ids.data;
    res = PQexecParams(conn, "SELECT audit_id::text FROM prime_pipeline.audit_log WHERE audit_id = ANY($1::uuid[])", 1,
                       NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        rc = prime_pg_error(conn, res, "looking up audit ids", NULL, err);
    for (int r = 0; !rc && r < PQntuples(res); r++)
        for (size_t i = 0; i < n; i++)
            if (!strcmp(e[i].audit_id, PQgetvalue(res, r, 0)))
                e[i].skip = true;
    PQclear(res);
    prime_buf_free(&ids);
    if (!rc && !mark_repeats(e, n))
        rc = prime_error_set(err, PRIME_ERR_NOMEM, NULL, "out of memory");
    return rc;
}

/* The last link of a partition's chain, as the batch extends it. */
typedef struct head {
    int32_t partition;
    bool has_hash;
    char hash[65];
} head_t;

/* Chains the batch's entries: the last record_hash of each partition in
 * the batch (one query), then each entry's record_hash in order. */
static prime_errcode_t chain_heads(PGconn *conn, entry_t *e, size_t n, prime_error_t *err)
{
    prime_buf_t parts;
    const char *params[1];
    PGresult *res;
    prime_errcode_t rc = PRIME_OK;
    head_t *heads;
    int nheads;
    char p[16];

    prime_buf_init(&parts, 0);
    prime_pg_array_begin(&parts);
    for (size_t i = 0; i < n; i++) {
        snprintf(p, sizeof(p), "%d", (int)e[i].s.audit_partition);
        prime_pg_array_add(&parts, p);
    }
    prime_pg_array_end(&parts);
    params[0] = parts.data;
    res = PQexecParams(conn,
                       "SELECT p, (SELECT record_hash FROM prime_pipeline.audit_log WHERE audit_partition = p "
                       "ORDER BY audit_offset DESC LIMIT 1) FROM (SELECT DISTINCT unnest($1::int[])) AS x(p)",
                       1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        rc = prime_pg_error(conn, res, "reading the chains' last links", NULL, err);
    /* Each entry chains to the one before it in its partition: the head
     * from the database, then each entry stored before it here. */
    nheads = rc ? 0 : PQntuples(res);
    heads = calloc((size_t)nheads + 1, sizeof(*heads));
    if (!heads && !rc)
        rc = prime_error_set(err, PRIME_ERR_NOMEM, NULL, "out of memory");
    for (int r = 0; !rc && r < nheads; r++) {
        heads[r].partition = atoi(PQgetvalue(res, r, 0));
        heads[r].has_hash = !PQgetisnull(res, r, 1);
        snprintf(heads[r].hash, sizeof(heads[r].hash), "%s", PQgetvalue(res, r, 1));
    }
    for (size_t i = 0; !rc && i < n; i++) {
        head_t *h = NULL;
        if (e[i].skip)
            continue;
        for (int r = 0; r < nheads && !h; r++)
            if (heads[r].partition == e[i].s.audit_partition)
                h = &heads[r];
        if (!h) {
            rc = prime_error_set(err, PRIME_ERR_DB, NULL, "no chain head read for partition %d",
                                 (int)e[i].s.audit_partition);
            break;
        }
        e[i].has_prev = h->has_hash;
        memcpy(e[i].prev_hash, h->hash, sizeof(e[i].prev_hash));
        chain_hash(e[i].has_prev ? e[i].prev_hash : NULL, &e[i].s, e[i].record_hash);
        memcpy(h->hash, e[i].record_hash, sizeof(h->hash));
        h->has_hash = true;
    }
    free(heads);
    PQclear(res);
    prime_buf_free(&parts);
    return rc;
}

#define NCOLS 17
static const char *const insert_sql =
    "INSERT INTO prime_pipeline.audit_log (audit_id, entity_type, entity_id, operation, actor_user_id, device_id, "
    "occurred_at, changed_columns, source_topic, source_partition, source_offset, row_hash, detail, "
    "audit_partition, audit_offset, prev_hash, record_hash) "
    "SELECT a, et, ei, op, ac, dv, to_timestamp(oc::numeric / 1000000), cc::text[], st, sp, so, rh, dt, ap, ao, ph, rh2 "
    "FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::uuid[], $6::text[], $7::bigint[], $8::text[], "
    "$9::text[], $10::int[], $11::bigint[], $12::text[], $13::text[], $14::int[], $15::bigint[], $16::text[], "
    "$17::text[]) AS x(a, et, ei, op, ac, dv, oc, cc, st, sp, so, rh, dt, ap, ao, ph, rh2)";

static void add_or_null(prime_buf_t *b, const char *v)
{
    if (v)
        prime_pg_array_add(b, v);
    else
        prime_pg_array_add_null(b);
}

static void add_int(prime_buf_t *b, int64_t v)
{
    char text[24];
    snprintf(text, sizeof(text), "%" PRId64, v);
    prime_pg_array_add(b, text);
}

static prime_errcode_t insert_entries(PGconn *conn, const entry_t *e, size_t n, prime_error_t *err)
{
    prime_buf_t a[NCOLS];
    const char *params[NCOLS];
    size_t stored = 0;
    prime_errcode_t rc = PRIME_OK;

    prime_pg_arrays_begin(a, NCOLS);
    for (size_t i = 0; i < n; i++) {
        const stored_t *s = &e[i].s;
        prime_buf_t cc;
        if (e[i].skip)
            continue;
        prime_buf_init(&cc, 0);
        prime_pg_array_begin(&cc);
        for (size_t k = 0; k < s->nchanged; k++)
            prime_pg_array_add(&cc, s->changed[k]);
        prime_pg_array_end(&cc);
        prime_pg_array_add(&a[0], s->audit_id);
        prime_pg_array_add(&a[1], s->entity_type);
        prime_pg_array_add(&a[2], s->entity_id);
        prime_pg_array_add(&a[3], s->operation);
        add_or_null(&a[4], s->actor_user_id);
        add_or_null(&a[5], s->device_id);
        add_int(&a[6], s->occurred_at);
        prime_pg_array_add(&a[7], cc.data ? cc.data : "{}");
        prime_pg_array_add(&a[8], s->source_topic);
        add_int(&a[9], s->source_partition);
        add_int(&a[10], s->source_offset);
        add_or_null(&a[11], s->row_hash);
        add_or_null(&a[12], s->detail);
        add_int(&a[13], s->audit_partition);
        add_int(&a[14], s->audit_offset);
        add_or_null(&a[15], e[i].has_prev ? e[i].prev_hash : NULL);
        prime_pg_array_add(&a[16], e[i].record_hash);
        prime_buf_free(&cc);
        stored++;
    }
    if (!prime_pg_arrays_end(a, NCOLS, params))
        rc = prime_error_set(err, PRIME_ERR_NOMEM, NULL, "out of memory storing audit records");
    if (stored && !rc)
        rc = prime_pg_exec_params(conn, insert_sql, NCOLS, params, "appending to audit_log", err);
    prime_pg_arrays_free(a, NCOLS);
    return rc;
}

static prime_errcode_t write_batch(prime_worker_t *w, PGconn *conn, const prime_record_t *records, size_t n,
                                   void *ctx, prime_error_t *err)
{
    writer_t *wr = ctx;
    entry_t *e = calloc(n ? n : 1, sizeof(*e));
    size_t count = 0, twice = 0;
    prime_errcode_t rc = PRIME_OK;

    if (!e)
        return prime_error_set(err, PRIME_ERR_NOMEM, NULL, "out of memory");
    for (size_t i = 0; i < n && !rc; i++) {
        prime_event_t *ev;
        if ((rc = prime_worker_decode(w, wr->reg, &records[i], &ev, err)) || !ev)
            continue;
        if (strcmp(prime_event_type_name(prime_event_type(ev)), "audit.recorded")) {
            prime_error_t why;
            prime_error_clear(&why);
            prime_error_set(&why, PRIME_ERR_UNKNOWN_TYPE, "type", "%s is not an audit record",
                            prime_event_type_name(prime_event_type(ev)));
            prime_event_free(ev);
            rc = prime_worker_dead_letter(w, &records[i], &why, err);
            continue;
        }
        if (!entry_from_event(&e[count], ev, &records[i])) {
            prime_event_free(ev);
            rc = prime_error_set(err, PRIME_ERR_NOMEM, NULL, "out of memory");
            break;
        }
        count++;
    }
    if (!rc && count)
        rc = mark_stored(conn, e, count, err);
    if (!rc && count)
        rc = chain_heads(conn, e, count, err);
    if (!rc && count)
        rc = insert_entries(conn, e, count, err);
    for (size_t i = 0; i < count; i++) {
        twice += e[i].skip;
        prime_event_free(e[i].ev);
        free(e[i].changed);
    }
    if (!rc) {
        prime_worker_count_applied(w, count - twice);
        if (twice)
            prime_log(PRIME_LOG_INFO, "audit records relayed twice; stored once", "records=%zu", twice);
    }
    free(e);
    return rc;
}

static int run_writer(int argc, char **argv)
{
    static const char *const topics[] = {"prime.audit", NULL};
    prime_worker_conf_t conf;
    writer_t wr = {0};
    prime_error_t err;
    int rc = prime_worker_conf_parse(&conf, "audit-writer", topics, argc, argv);

    if (rc)
        return rc < 0 ? 0 : rc;
    prime_error_clear(&err);
    if (!(wr.reg = prime_registry_new(&err))) {
        fprintf(stderr, "prime-audit: %s\n", err.message);
        return 1;
    }
    rc = prime_worker_run(&conf, write_batch, &wr);
    prime_registry_free(wr.reg);
    return rc;
}

/* --- verify ------------------------------------------------------------------ */

static const char *value_or_null(const PGresult *res, int c)
{
    return PQgetisnull(res, 0, c) ? NULL : PQgetvalue(res, 0, c);
}

/* Walks every partition's chain in offset order (streamed, one row at a
 * time); prints the first broken link. Returns 0 intact, 1 broken, 2 on a
 * database error. */
static int verify_chains(PGconn *conn)
{
    PGresult *res;
    int32_t part = -1;
    int64_t last_offset = -1, records = 0, partitions = 0;
    char last_hash[65] = "";
    int broken = 0;

    if (!PQsendQuery(conn, "SELECT audit_partition, audit_offset, audit_id::text, entity_type, entity_id, operation, "
                           "actor_user_id::text, device_id, (extract(epoch FROM occurred_at) * 1000000)::bigint, "
                           "array_to_json(changed_columns)::text, source_topic, source_partition, source_offset, "
                           "row_hash, detail, prev_hash, record_hash "
                           "FROM prime_pipeline.audit_log ORDER BY audit_partition, audit_offset") ||
        !PQsetSingleRowMode(conn)) {
        fprintf(stderr, "prime-audit verify: %s", PQerrorMessage(conn));
        return 2;
    }
    while ((res = PQgetResult(conn))) {
        ExecStatusType st = PQresultStatus(res);
        if (st == PGRES_SINGLE_TUPLE && !broken) {
            cJSON *list = cJSON_Parse(PQgetvalue(res, 0, 9));
            size_t n = (size_t)cJSON_GetArraySize(list);
            const char **changed = calloc(n ? n : 1, sizeof(char *));
            const char *prev = value_or_null(res, 15), *stored_hash = PQgetvalue(res, 0, 16);
            char want[65];
            stored_t s = {
                .audit_id = PQgetvalue(res, 0, 2), .entity_type = PQgetvalue(res, 0, 3),
                .entity_id = PQgetvalue(res, 0, 4), .operation = PQgetvalue(res, 0, 5),
                .actor_user_id = value_or_null(res, 6), .device_id = value_or_null(res, 7),
                .occurred_at = strtoll(PQgetvalue(res, 0, 8), NULL, 10), .changed = changed, .nchanged = n,
                .source_topic = PQgetvalue(res, 0, 10), .source_partition = atoi(PQgetvalue(res, 0, 11)),
                .source_offset = strtoll(PQgetvalue(res, 0, 12), NULL, 10), .row_hash = value_or_null(res, 13),
                .detail = value_or_null(res, 14), .audit_partition = atoi(PQgetvalue(res, 0, 0)),
                .audit_offset = strtoll(PQgetvalue(res, 0, 1), NULL, 10),
            };
            for (size_t i = 0; changed && i < n; i++)
                changed[i] = cJSON_GetStringValue(cJSON_GetArrayItem(list, (int)i));
            if (s.audit_partition != part) {
                part = s.audit_partition;
                last_hash[0] = '\0';
                last_offset = -1;
                partitions++;
            }
            chain_hash(prev, &s, want);
            if (!changed) {
                fprintf(stderr, "prime-audit verify: out of memory\n");
                broken = 2;
            } else if (strcmp(want, stored_hash)) {
                printf("broken: partition %d offset %lld (audit_id %s): record_hash does not match the record's "
                       "values; the record was altered after it was written\n",
                       (int)part, (long long)s.audit_offset, s.audit_id);
                broken = 1;
            } else if (last_offset < 0 ? prev != NULL : (!prev || strcmp(prev, last_hash))) {
                if (last_offset < 0)
                    printf("broken: partition %d offset %lld (audit_id %s): prev_hash names a record before it, and "
                           "there is none; records before it were removed\n",
                           (int)part, (long long)s.audit_offset, s.audit_id);
                else
                    printf("broken: partition %d offset %lld (audit_id %s): prev_hash does not match the record "
                           "before it (offset %lld); a record between them was removed or altered\n",
                           (int)part, (long long)s.audit_offset, s.audit_id, (long long)last_offset);
                broken = 1;
            }
            snprintf(last_hash, sizeof(last_hash), "%s", stored_hash);
            last_offset = s.audit_offset;
            records++;
            free(changed);
            cJSON_Delete(list);
        } else if (st != PGRES_SINGLE_TUPLE && st != PGRES_TUPLES_OK) {
            fprintf(stderr, "prime-audit verify: %s", PQresultErrorMessage(res));
            broken = 2;
        }
        PQclear(res);
    }
    if (!broken)
        printf("audit_log: %lld records in %lld partitions; every link holds\n", (long long)records,
               (long long)partitions);
    return broken;
}

/* Every row of the tables as its latest audit record says: the same
 * row_hash() (tables[] must name the tables the pipeline audits).
 * mixx_recall is not one: prime-recall's rows are a function of the other
 * events (learned usage and confidence), rebuilt by a replay, and not
 * audited (docs/recall.md). */
static int verify_rows(PGconn *conn)
{
    static const char *const tables[] = {"prime_users", "studio_projects", "project_snapshots", "session_states",
                                         "audio_files", "plugin_presets", "collaboration_sessions",
                                         "auth_credentials", "auth_sessions"};
    int bad = 0;
    long long rows = 0;

    for (size_t t = 0; t < sizeof(tables) / sizeof(tables[0]); t++) {
        char sql[1024];
        PGresult *res;
        snprintf(sql, sizeof(sql),
                 "SELECT r.id::text, l.audit_partition, l.audit_offset, count(*) OVER () "
                 "FROM public.%s r LEFT JOIN LATERAL (SELECT audit_partition, audit_offset, row_hash "
                 "FROM prime_pipeline.audit_log a WHERE a.entity_type = '%s' AND a.entity_id = r.id::text "
                 "ORDER BY audit_partition DESC, audit_offset DESC LIMIT 1) l ON true "
                 "WHERE l.row_hash IS DISTINCT FROM prime_pipeline.row_hash(to_jsonb(r)) ORDER BY r.id",
                 tables[t], tables[t]);
        res = PQexec(conn, sql);
        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
            fprintf(stderr, "prime-audit verify: %s: %s", tables[t], PQresultErrorMessage(res));
            PQclear(res);
            return 2;
        }
        for (int r = 0; r < PQntuples(res) && r < 5; r++) {
            if (PQgetisnull(res, r, 1))
                printf("row without audit: %s %s has no audit record\n", tables[t], PQgetvalue(res, r, 0));
            else
                printf("row without audit: %s %s differs from its latest audit record (partition %s offset %s)\n",
                       tables[t], PQgetvalue(res, r, 0), PQgetvalue(res, r, 1), PQgetvalue(res, r, 2));
        }
        if (PQntuples(res)) {
            bad = 1;
            printf("%s: %s rows differ from their audit records\n", tables[t], PQgetvalue(res, 0, 3));
        }
        PQclear(res);
        res = PQexec(conn, strcat(strcpy(sql, "SELECT count(*) FROM public."), tables[t]));
        if (PQresultStatus(res) == PGRES_TUPLES_OK)
            rows += atoll(PQgetvalue(res, 0, 0));
        PQclear(res);
    }
    if (!bad)
        printf("tables: %lld rows, each as its latest audit record says\n", rows);
    return bad;
}

static int run_verify(int argc, char **argv)
{
    const char *db = getenv("PRIME_DB");
    bool rows = false;
    prime_error_t err;
    PGconn *conn;
    int rc;

    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--db") && i + 1 < argc) {
            db = argv[++i];
        } else if (!strcmp(argv[i], "--rows")) {
            rows = true;
        } else {
            fprintf(stderr, "prime-audit verify: unknown argument '%s'\nusage: prime-audit verify [--db CONNINFO] "
                            "[--rows]\n", argv[i]);
            return 2;
        }
    }
    prime_error_clear(&err);
    if (!(conn = prime_pg_connect(db, &err))) {
        fprintf(stderr, "prime-audit verify: %s\n", err.message);
        return 2;
    }
    rc = verify_chains(conn);
    if (rc != 2 && rows) {
        int r = verify_rows(conn);
        rc = r > rc ? r : rc;
    }
    PQfinish(conn);
    return rc;
}

static void usage(FILE *out)
{
    fputs("usage: prime-audit writer [worker options]        prime.audit into prime_pipeline.audit_log\n"
          "       prime-audit verify [--db CONNINFO] [--rows]  check every chain (and the tables' rows)\n"
          "verify exits 0 when everything holds, 1 at the first broken link (named), 2 on errors.\n"
          "prime-audit writer --help lists the worker options.\n",
          out);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "writer"))
        return run_writer(argc - 1, argv + 1);
    if (!strcmp(argv[1], "verify"))
        return run_verify(argc - 2, argv + 2);
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "prime-audit: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
