#include "derived.h"
#include "prime/buf.h"
#include "prime/pg.h"
#include "prime/uuid.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* uuid5(NAMESPACE_URL, "https://prime.mixclub.studio/audit_log") and
 * ".../project_snapshots": audit ids from the source coordinates and the
 * row, snapshot ids from project, version and type. */
#define AUDIT_NAMESPACE "3ba5216b-3439-5d9f-b51f-d160e536a722"
#define SNAPSHOT_NAMESPACE "a3e83a1e-1208-578c-9f96-dac03b1527bf"
#define NIL_UUID "00000000-0000-0000-0000-000000000000"
#define DETAIL_MAX 2000 /* audit.recorded's prime.max_length for detail */

typedef struct audit {
    const prime_record_t *rec;
    const prime_event_t *ev;
    table_id_t table;
    char entity_id[40];
    const char *operation;
    uint64_t changed;   /* columns written, bit per column */
    char *literal;      /* the row after the change; NULL: gone */
    char row_hash[65];
    char *detail;
} audit_t;

typedef struct snapshot {
    const prime_record_t *rec;
    const prime_event_t *ev;
    snapshot_wanted_t want;
} snapshot_t;

struct derived {
    const prime_registry_t *reg;
    audit_t *audits;
    size_t naudits, audits_cap;
    snapshot_t *snaps;
    size_t nsnaps, snaps_cap;
};

derived_t *derived_new(const prime_registry_t *reg)
{
    derived_t *d = calloc(1, sizeof(*d));
    if (d)
        d->reg = reg;
    return d;
}

size_t derived_pending(const derived_t *d)
{
    return d->naudits + d->nsnaps;
}

void derived_clear(derived_t *d)
{
    for (size_t i = 0; i < d->naudits; i++) {
        free(d->audits[i].literal);
        free(d->audits[i].detail);
    }
    for (size_t i = 0; i < d->nsnaps; i++)
        fold_snapshot_clear(&d->snaps[i].want);
    d->naudits = d->nsnaps = 0;
}

void derived_free(derived_t *d)
{
    if (!d)
        return;
    derived_clear(d);
    free(d->audits);
    free(d->snaps);
    free(d);
}

static audit_t *add_audit(derived_t *d, const prime_record_t *rec, const prime_event_t *ev, table_id_t t,
                          const char *id, const char *operation)
{
    audit_t *a;
    if (d->naudits == d->audits_cap) {
        size_t cap = d->audits_cap ? d->audits_cap * 2 : 64;
        audit_t *grown = realloc(d->audits, cap * sizeof(*grown));
        if (!grown)
            return NULL;
        d->audits = grown;
        d->audits_cap = cap;
    }
    a = &d->audits[d->naudits++];
    *a = (audit_t){.rec = rec, .ev = ev, .table = t, .operation = operation};
    prime_uuid_canonical(id, a->entity_id);
    return a;
}

/* The audit record of one row the event touched; none when nothing in it
 * changed (an update to the same values, a row made and gone at once). */
static prime_errcode_t take_row(derived_t *d, const rowset_t *s, const row_t *r, const prime_record_t *rec,
                                const prime_event_t *ev, prime_error_t *err)
{
    const char *op;
    uint64_t changed = r->changed;
    audit_t *a;

    if (r->present_before && r->present) {
        if (!changed)
            return PRIME_OK;
        op = "update";
    } else if (r->present) {
        op = "insert"; /* it writes every column it gives a value */
        for (size_t c = 0; c < tables[s->table].ncolumns; c++)
            if (r->values[c])
                changed |= UINT64_C(1) << c;
    } else if (r->present_before) {
        op = "delete";
        changed = 0;
    } else {
        return PRIME_OK;
    }
    if (!(a = add_audit(d, rec, ev, s->table, r->id, op)) || (r->present && !(a->literal = row_literal(s, r))))
        return prime_error_set(err, PRIME_ERR_NOMEM, NULL, "out of memory for audit records");
    a->changed = changed;
    return PRIME_OK;
}

static void forget(fold_t *f)
{
    for (int t = 0; t < T_COUNT; t++)
        rows_untouch(&f->sets[t]);
    fold_snapshot_clear(&f->snapshot);
    f->want_snapshot = false;
    f->rejected = NULL;
}

prime_errcode_t derived_take(derived_t *d, fold_t *f, const prime_record_t *rec, const prime_event_t *ev,
                             fold_result_t outcome, prime_error_t *err)
{
    prime_errcode_t rc = PRIME_OK;

    if (fold_failed(f))
        rc = prime_error_set(err, PRIME_ERR_NOMEM, NULL, "%s", f->why.message);
    if (outcome != FOLD_OK || rc) {
        forget(f);
        return rc;
    }
    for (int t = 0; t < T_COUNT && !rc; t++)
        for (size_t i = 0; i < f->sets[t].ntouched && !rc; i++)
            rc = take_row(d, &f->sets[t], f->sets[t].touched[i], rec, ev, err);
    if (!rc && f->rejected) {
        audit_t *a = add_audit(d, rec, ev, f->rejected_table, f->rejected->id, "rejected");
        if (!a || !(a->literal = row_literal(&f->sets[f->rejected_table], f->rejected)) ||
            !(a->detail = strdup(f->rejected_why)))
            rc = prime_error_set(err, PRIME_ERR_NOMEM, NULL, "out of memory for audit records");
    }
    if (!rc && f->want_snapshot) {
        if (d->nsnaps == d->snaps_cap) {
            size_t cap = d->snaps_cap ? d->snaps_cap * 2 : 16;
            snapshot_t *grown = realloc(d->snaps, cap * sizeof(*grown));
            if (!grown)
                rc = prime_error_set(err, PRIME_ERR_NOMEM, NULL, "out of memory for snapshots");
            else {
                d->snaps = grown;
                d->snaps_cap = cap;
            }
        }
        if (!rc) {
            d->snaps[d->nsnaps++] = (snapshot_t){.rec = rec, .ev = ev, .want = f->snapshot};
            memset(&f->snapshot, 0, sizeof(f->snapshot)); /* its copies moved */
        }
    }
    forget(f);
    return rc;
}

/* --- hashing rows ---------------------------------------------------------- */

/* row_hash() of table t's pending rows, one query. */
static prime_errcode_t hash_rows(derived_t *d, PGconn *conn, table_id_t t, prime_error_t *err)
{
    prime_buf_t rows, sql;
    const char *params[1];
    PGresult *res;
    size_t n = 0, k = 0;
    prime_errcode_t rc = PRIME_OK;

    prime_buf_init(&rows, 0);
    prime_buf_init(&sql, 0);
    prime_pg_array_begin(&rows);
    for (size_t i = 0; i < d->naudits; i++)
        if (d->audits[i].table == t && d->audits[i].literal) {
            prime_pg_array_add(&rows, d->audits[i].literal);
            n++;
        }
    prime_pg_array_end(&rows);
    prime_buf_printf(&sql,
                     "SELECT prime_pipeline.row_hash(to_jsonb(x.r::public.%s)) "
                     "FROM unnest($1::text[]) WITH ORDINALITY AS x(r, ord) ORDER BY ord",
                     tables[t].name);
    if (rows.failed || sql.failed)
        rc = prime_error_set(err, PRIME_ERR_NOMEM, NULL, "out of memory hashing rows");
    if (n && !rc) {
        params[0] = rows.data;
        if (!(res = prime_pg_query(conn, sql.data, 1, params, "hashing audited rows", err)))
            rc = err->code;
        else if ((size_t)PQntuples(res) != n)
            rc = prime_error_set(err, PRIME_ERR_DB, NULL, "hashing audited rows: %d hashes for %zu rows",
                                 PQntuples(res), n);
        for (size_t i = 0; i < d->naudits && !rc; i++)
            if (d->audits[i].table == t && d->audits[i].literal)
                snprintf(d->audits[i].row_hash, sizeof(d->audits[i].row_hash), "%s", PQgetvalue(res, (int)k++, 0));
        PQclear(res);
    }
    prime_buf_free(&rows);
    prime_buf_free(&sql);
    return rc;
}

/* --- encoding ---------------------------------------------------------------- */

/* A string field; NULL sets a nullable field to null. */
static prime_errcode_t set_text(prime_event_t *ev, const char *field, const char *value, prime_error_t *err)
{
    return value ? prime_event_set_string(ev, field, value, strlen(value), err) : prime_event_set_null(ev, field, err);
}

/* The envelope of a derived event: its cause's time, actor, owner, device
 * and trace (ev), or unknowns for a record that could not be read. */
static prime_errcode_t set_envelope(prime_event_t *out, const char *event_id, const prime_event_t *ev,
                                    int64_t fallback_micros, const char *owner, prime_error_t *err)
{
    int64_t when = fallback_micros;
    prime_errcode_t rc;

    if (ev)
        prime_event_get_long(ev, "occurred_at", &when, NULL, NULL);
    rc = set_text(out, "event_id", event_id, err);
    if (!rc)
        rc = prime_event_set_long(out, "occurred_at", when, err);
    if (!rc)
        rc = set_text(out, "actor_user_id", ev ? prime_event_string(ev, "actor_user_id") : NIL_UUID, err);
    if (!rc)
        rc = set_text(out, "owner_user_id", owner ? owner : ev ? prime_event_string(ev, "owner_user_id") : NIL_UUID, err);
    if (!rc)
        rc = set_text(out, "device_id", ev ? prime_event_string(ev, "device_id") : NULL, err);
    if (!rc)
        rc = set_text(out, "trace_id", ev ? prime_event_string(ev, "trace_id") : NULL, err);
    return rc;
}

/* An outbox message being built: the encoded event and its key. */
typedef struct message {
    prime_emit_t emit;
    char key[256];
    void *bytes;
} message_t;

/* Validates and encodes out into m (out is freed). A derived event that
 * fails its own schema's rules is an error of the event that caused it. */
static prime_errcode_t finish(prime_event_t *out, prime_errcode_t rc, const char *topic, message_t *m,
                              prime_error_t *err)
{
    if (!rc)
        rc = prime_event_validate(out, err);
    if (!rc)
        rc = prime_event_encode(out, &m->bytes, &m->emit.len, err);
    if (!rc) {
        m->emit.topic = topic;
        m->emit.key = m->key;
        m->emit.event_type = prime_event_type_name(prime_event_type(out));
        m->emit.value = m->bytes;
    }
    prime_event_free(out);
    return rc;
}

typedef struct audit_fields {
    const prime_record_t *rec;
    const prime_event_t *ev;  /* the cause, or NULL when unreadable */
    const char *entity_type, *entity_id, *operation;
    const char *const *changed;
    size_t nchanged;
    const char *row_hash, *detail;
} audit_fields_t;

static prime_errcode_t encode_audit(derived_t *d, const audit_fields_t *a, message_t *m, prime_error_t *err)
{
    char name[512], id[PRIME_UUID_TEXT], part[16], offset[24];
    int len = snprintf(name, sizeof(name), "%s\n%d\n%lld\n%s\n%s", a->rec->topic, (int)a->rec->partition,
                       (long long)a->rec->offset, a->entity_type, a->entity_id);
    int64_t ts = prime_record_timestamp(a->rec);
    prime_event_t *out = prime_event_new(d->reg, "audit.recorded", err);
    prime_errcode_t rc;

    if (!out)
        return err->code;
    prime_uuid_v5(AUDIT_NAMESPACE, name, (size_t)len < sizeof(name) ? (size_t)len : sizeof(name) - 1, id);
    snprintf(part, sizeof(part), "%d", (int)a->rec->partition);
    snprintf(offset, sizeof(offset), "%lld", (long long)a->rec->offset);
    rc = set_envelope(out, id, a->ev, ts > 0 ? ts * 1000 : 0, NULL, err);
    if (!rc)
        rc = set_text(out, "audit_id", id, err);
    if (!rc)
        rc = set_text(out, "entity_type", a->entity_type, err);
    if (!rc)
        rc = set_text(out, "entity_id", a->entity_id, err);
    if (!rc)
        rc = set_text(out, "operation", a->operation, err);
    for (size_t c = 0; c < a->nchanged && !rc; c++)
        rc = prime_event_append_string(out, "changed_columns", a->changed[c], strlen(a->changed[c]), err);
    if (!rc)
        rc = set_text(out, "source_topic", a->rec->topic, err);
    if (!rc)
        rc = prime_event_set_int(out, "source_partition", a->rec->partition, err);
    if (!rc)
        rc = prime_event_set_long(out, "source_offset", a->rec->offset, err);
    if (!rc)
        rc = set_text(out, "row_hash", a->row_hash, err);
    if (!rc)
        rc = set_text(out, "detail", a->detail, err);
    /* Keyed by entity: an entity's history is one partition, in order. */
    snprintf(m->key, sizeof(m->key), "%s:%s", a->entity_type, a->entity_id);
    return finish(out, rc, "prime.audit", m, err);
}

static prime_errcode_t encode_row_audit(derived_t *d, const audit_t *a, message_t *m, prime_error_t *err)
{
    const char *changed[64];
    size_t n = 0;
    audit_fields_t f = {.rec = a->rec, .ev = a->ev, .entity_type = tables[a->table].name, .entity_id = a->entity_id,
                        .operation = a->operation, .changed = changed, .row_hash = a->literal ? a->row_hash : NULL,
                        .detail = a->detail};

    for (size_t c = 0; c < tables[a->table].ncolumns && c < 64; c++)
        if (a->changed & (UINT64_C(1) << c))
            changed[n++] = tables[a->table].columns[c].name;
    f.nchanged = n;
    return encode_audit(d, &f, m, err);
}

static prime_errcode_t encode_snapshot(derived_t *d, const snapshot_t *s, message_t *m, prime_error_t *err)
{
    char name[128], id[PRIME_UUID_TEXT], project[40];
    prime_event_t *out = prime_event_new(d->reg, "snapshot.created", err);
    prime_errcode_t rc;
    int len;

    if (!out)
        return err->code;
    prime_uuid_canonical(s->want.project_id, project);
    len = snprintf(name, sizeof(name), "%s\n%d\n%s", project, s->want.version, s->want.type);
    prime_uuid_v5(SNAPSHOT_NAMESPACE, name, (size_t)len, id);
    rc = set_envelope(out, id, s->ev, 0, s->want.owner, err);
    if (!rc)
        rc = set_text(out, "snapshot_id", id, err);
    if (!rc)
        rc = set_text(out, "project_id", project, err);
    if (!rc)
        rc = set_text(out, "snapshot_type", s->want.type, err);
    if (!rc)
        rc = set_text(out, "snapshot_name", s->want.name, err);
    if (!rc)
        rc = set_text(out, "description", s->want.description, err);
    if (!rc)
        rc = set_text(out, "project_data", s->want.project_data, err);
    if (!rc)
        rc = prime_event_set_int(out, "project_version", s->want.version, err);
    if (!rc)
        rc = set_text(out, "audio_analysis", s->want.audio_analysis, err);
    if (!rc)
        rc = set_text(out, "musical_context", s->want.musical_context, err);
    prime_uuid_canonical(s->want.owner, m->key);
    return finish(out, rc, "prime.snapshots", m, err);
}

/* Writes n built messages to the outbox and frees them. */
static prime_errcode_t write_messages(prime_worker_t *w, PGconn *conn, message_t *msgs, size_t n, prime_errcode_t rc,
                                      prime_error_t *err)
{
    prime_emit_t *emits = calloc(n ? n : 1, sizeof(*emits));
    if (!emits && !rc)
        rc = prime_error_set(err, PRIME_ERR_NOMEM, NULL, "out of memory for derived events");
    for (size_t i = 0; i < n && emits; i++)
        emits[i] = msgs[i].emit;
    if (!rc)
        rc = prime_worker_emit(w, conn, emits, n, err);
    for (size_t i = 0; i < n; i++)
        free(msgs[i].bytes);
    free(emits);
    return rc;
}

prime_errcode_t derived_emit(derived_t *d, prime_worker_t *w, PGconn *conn, prime_error_t *err)
{
    size_t total = d->naudits + d->nsnaps, n = 0;
    message_t *msgs;
    prime_errcode_t rc = PRIME_OK;

    if (!total)
        return PRIME_OK;
    for (int t = 0; t < T_COUNT && !rc; t++)
        rc = hash_rows(d, conn, (table_id_t)t, err);
    if (rc) {
        derived_clear(d);
        return rc;
    }
    if (!(msgs = calloc(total, sizeof(*msgs)))) {
        derived_clear(d);
        return prime_error_set(err, PRIME_ERR_NOMEM, NULL, "out of memory for derived events");
    }
    /* Audit records in the order of the changes, then snapshots. */
    for (size_t i = 0; i < d->naudits && !rc; i++)
        if (!(rc = encode_row_audit(d, &d->audits[i], &msgs[n], err)))
            n++;
    for (size_t i = 0; i < d->nsnaps && !rc; i++)
        if (!(rc = encode_snapshot(d, &d->snaps[i], &msgs[n], err)))
            n++;
    rc = write_messages(w, conn, msgs, n, rc, err);
    free(msgs);
    derived_clear(d);
    return rc;
}

/* Cuts s to at most max bytes without splitting a UTF-8 sequence. */
static void cut_utf8(char *s, size_t max)
{
    size_t n = strlen(s);
    if (n <= max)
        return;
    while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80)
        max--;
    s[max] = '\0';
}

prime_errcode_t derived_dead_letter(derived_t *d, prime_worker_t *w, PGconn *conn, const prime_record_t *r,
                                    const prime_error_t *why, prime_error_t *err)
{
    prime_event_t *ev = NULL;
    prime_error_t ignored;
    char entity[200], detail[DETAIL_MAX + 1];
    message_t m = {0};
    prime_errcode_t rc;

    /* The cause's envelope when the record can be read and is valid;
     * unknowns (the nil UUID, no device) when not. */
    prime_error_clear(&ignored);
    if (prime_event_decode(d->reg, r->value, r->len, &ev, &ignored) || prime_event_validate(ev, &ignored)) {
        prime_event_free(ev);
        ev = NULL;
    }
    if (ev)
        prime_uuid_canonical(prime_event_string(ev, "event_id"), entity);
    else
        snprintf(entity, sizeof(entity), "%s/%d/%lld", r->topic, (int)r->partition, (long long)r->offset);
    snprintf(detail, sizeof(detail), "%s%s%s: %s", prime_errcode_name(why->code), why->field[0] ? " " : "", why->field,
             why->message);
    cut_utf8(detail, DETAIL_MAX);
    rc = encode_audit(d,
                      &(audit_fields_t){.rec = r, .ev = ev, .entity_type = "event", .entity_id = entity,
                                        .operation = "dead_lettered", .detail = detail},
                      &m, err);
    if (rc && rc != PRIME_ERR_NOMEM) {
        /* The message may hold what the audit record refuses (bytes that
         * are not UTF-8, say): the error class alone, then. */
        prime_error_clear(err);
        snprintf(detail, sizeof(detail), "%s (the message is in the dead letter's headers)",
                 prime_errcode_name(why->code));
        rc = encode_audit(d,
                          &(audit_fields_t){.rec = r, .ev = ev, .entity_type = "event", .entity_id = entity,
                                            .operation = "dead_lettered", .detail = detail},
                          &m, err);
    }
    prime_event_free(ev);
    return write_messages(w, conn, &m, rc ? 0 : 1, rc, err);
}
