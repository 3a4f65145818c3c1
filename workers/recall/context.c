#define _GNU_SOURCE /* hsearch_r */
#include "context.h"

#include <search.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prime/buf.h"
#include "prime/pg.h"
#include "prime/uuid.h"

static const char *const kind_names[] = {"project", "preset", "file"};

typedef struct fact {
    char user[PRIME_UUID_TEXT], ref[PRIME_UUID_TEXT];
    context_kind_t kind;
    char key[2 * PRIME_UUID_TEXT + 4]; /* "user\nkind\nref": the hash key */
    cJSON *facts;                       /* NULL: not known, or forgotten */
    bool stored;                        /* a row exists in recall_context */
    bool dirty;                         /* changed this batch */
} fact_t;

struct recall_context {
    fact_t *facts;
    size_t n, cap;
    struct hsearch_data index;
    char (*wiped)[PRIME_UUID_TEXT]; /* users deleted this batch */
    size_t nwiped;
};

recall_context_t *recall_context_new(size_t capacity)
{
    recall_context_t *c = calloc(1, sizeof(*c));

    if (!c)
        return NULL;
    c->cap = capacity + 1;
    c->facts = calloc(c->cap, sizeof(*c->facts));
    c->wiped = calloc(c->cap, sizeof(*c->wiped));
    /* Twice the entries: hsearch's open addressing stays fast. */
    if (!c->facts || !c->wiped || !hcreate_r(c->cap * 2, &c->index)) {
        free(c->facts);
        free(c->wiped);
        free(c);
        return NULL;
    }
    return c;
}

void recall_context_free(recall_context_t *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++)
        cJSON_Delete(c->facts[i].facts);
    hdestroy_r(&c->index);
    free(c->facts);
    free(c->wiped);
    free(c);
}

bool recall_context_ref(const prime_event_t *ev, context_kind_t *kind, const char **ref)
{
    static const struct {
        const char *type, *field;
        context_kind_t kind;
    } refs[] = {
        {"project.created", "project_id", CONTEXT_PROJECT},    {"project.metadata_updated", "project_id", CONTEXT_PROJECT},
        {"project.deleted", "project_id", CONTEXT_PROJECT},    {"project.saved", "project_id", CONTEXT_PROJECT},
        {"preset.created", "preset_id", CONTEXT_PRESET},       {"preset.updated", "preset_id", CONTEXT_PRESET},
        {"preset.deleted", "preset_id", CONTEXT_PRESET},       {"preset.used", "preset_id", CONTEXT_PRESET},
        {"audio.file_uploaded", "file_id", CONTEXT_FILE},      {"audio.stem_uploaded", "file_id", CONTEXT_FILE},
        {"audio.file_deleted", "file_id", CONTEXT_FILE},       {"audio.analyzed", "file_id", CONTEXT_FILE},
    };
    const char *type = prime_event_string(ev, "event_type");

    for (size_t i = 0; type && i < sizeof(refs) / sizeof(refs[0]); i++)
        if (!strcmp(type, refs[i].type)) {
            *kind = refs[i].kind;
            *ref = prime_event_string(ev, refs[i].field);
            return *ref != NULL;
        }
    return false;
}

/* The entry of (user, kind, ref); with add, made (unknown facts) when it
 * is not there. NULL when it is not there (or out of room). */
static fact_t *find(const recall_context_t *c_, const char *user, context_kind_t kind, const char *ref, bool add)
{
    recall_context_t *c = (recall_context_t *)c_;
    fact_t probe = {.kind = kind};
    ENTRY e, *found = NULL;

    if (!user || !ref)
        return NULL;
    prime_uuid_canonical(user, probe.user);
    prime_uuid_canonical(ref, probe.ref);
    snprintf(probe.key, sizeof(probe.key), "%s\n%d\n%s", probe.user, (int)kind, probe.ref);
    e.key = probe.key;
    e.data = NULL;
    if (hsearch_r(e, FIND, &found, &c->index) && found)
        return found->data;
    if (!add || c->n == c->cap)
        return NULL;
    c->facts[c->n] = probe;
    e.key = c->facts[c->n].key;
    e.data = &c->facts[c->n];
    if (!hsearch_r(e, ENTER, &found, &c->index))
        return NULL;
    return &c->facts[c->n++];
}

prime_errcode_t recall_context_load(recall_context_t *c, PGconn *conn, prime_event_t *const *events, size_t n,
                                    prime_error_t *err)
{
    /* The owner's rows of the ids named, and of each preset named, the
     * shared one of the smallest user id (another user's preset in use):
     * at most two rows per event. */
    static const char sql[] =
        "WITH named AS (SELECT DISTINCT u::uuid AS u, k, r::uuid AS r FROM unnest($1::text[], $2::text[], $3::text[]) "
        "AS x(u, k, r)) "
        "SELECT c.user_id::text, c.kind, c.ref_id::text, c.facts::text FROM prime_pipeline.recall_context c "
        "JOIN named ON (c.user_id, c.kind, c.ref_id) = (named.u, named.k, named.r) "
        "UNION SELECT * FROM (SELECT DISTINCT ON (c.ref_id) c.user_id::text, c.kind, c.ref_id::text, c.facts::text "
        "FROM prime_pipeline.recall_context c WHERE c.kind = 'preset' AND c.facts->>'shared' = 'true' "
        "AND c.ref_id IN (SELECT r FROM named WHERE k = 'preset') ORDER BY c.ref_id, c.user_id) AS shared";
    prime_buf_t cols[3];
    const char *params[3];
    PGresult *res = NULL;
    prime_errcode_t rc = PRIME_OK;
    size_t named = 0;

    prime_pg_arrays_begin(cols, 3);
    for (size_t i = 0; i < n; i++) {
        const char *owner = prime_event_string(events[i], "owner_user_id"), *ref;
        context_kind_t kind;
        if (!recall_context_ref(events[i], &kind, &ref) || !owner)
            continue;
        prime_pg_array_add(&cols[0], owner);
        prime_pg_array_add(&cols[1], kind_names[kind]);
        prime_pg_array_add(&cols[2], ref);
        named++;
    }
    if (!prime_pg_arrays_end(cols, 3, params))
        rc = prime_error_set(err, PRIME_ERR_NOMEM, NULL, "out of memory");
    else if (named && !(res = prime_pg_query(conn, sql, 3, params, "reading prime-recall's context", err)))
        rc = err->code;
    prime_pg_arrays_free(cols, 3);
    for (int r = 0; !rc && res && r < PQntuples(res); r++) {
        const char *kind_name = PQgetvalue(res, r, 1);
        context_kind_t kind = CONTEXT_PROJECT;
        fact_t *f;
        while (kind < CONTEXT_FILE && strcmp(kind_names[kind], kind_name))
            kind++;
        if (!(f = find(c, PQgetvalue(res, r, 0), kind, PQgetvalue(res, r, 2), true))) {
            rc = prime_error_set(err, PRIME_ERR_NOMEM, NULL, "out of memory");
            break;
        }
        f->stored = true;
        if (!(f->facts = cJSON_Parse(PQgetvalue(res, r, 3))))
            rc = prime_error_set(err, PRIME_ERR_NOMEM, NULL, "out of memory");
    }
    PQclear(res);
    return rc;
}

const cJSON *recall_context_get(const recall_context_t *c, const char *user, context_kind_t kind, const char *ref)
{
    const fact_t *f = find(c, user, kind, ref, false);
    return f ? f->facts : NULL;
}

const cJSON *recall_context_shared_preset(const recall_context_t *c, const char *ref)
{
    char canon[PRIME_UUID_TEXT];
    const fact_t *best = NULL;

    if (!ref)
        return NULL;
    prime_uuid_canonical(ref, canon);
    /* Rare (a use of another user's preset whose facts are not the
     * user's own): a scan of the batch's facts. */
    for (size_t i = 0; i < c->n; i++) {
        const fact_t *f = &c->facts[i];
        if (f->kind == CONTEXT_PRESET && f->facts && !strcmp(f->ref, canon) &&
            cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(f->facts, "shared")) &&
            (!best || strcmp(f->user, best->user) < 0))
            best = f;
    }
    return best ? best->facts : NULL;
}

static bool set_string(cJSON *o, const char *name, const char *value)
{
    cJSON_DeleteItemFromObjectCaseSensitive(o, name);
    return !value || cJSON_AddStringToObject(o, name, value);
}

/* The event's value of field into o[field] when it has one; a field named
 * in cleared_fields is removed. */
static bool take_field(cJSON *o, const prime_event_t *ev, const char *field)
{
    const prime_event_type_t *type = prime_event_type(ev);
    const char *s;
    double d;
    int32_t i;
    bool null = true, ok = true;
    size_t ncleared = 0;

    if (prime_event_type_field_index(type, "cleared_fields") >= 0 &&
        !prime_event_get_array_size(ev, "cleared_fields", &ncleared, NULL, NULL))
        for (size_t k = 0; k < ncleared; k++)
            if (!prime_event_get_array_string(ev, "cleared_fields", k, &s, NULL, NULL) && s && !strcmp(s, field)) {
                cJSON_DeleteItemFromObjectCaseSensitive(o, field);
                return true;
            }
    if (!strcmp(field, "bpm")) {
        if (!prime_event_get_double(ev, field, &d, &null, NULL) && !null) {
            cJSON_DeleteItemFromObjectCaseSensitive(o, field);
            ok = cJSON_AddNumberToObject(o, field, d) != NULL;
        }
    } else if (!strcmp(field, "sample_rate")) {
        if (!prime_event_get_int(ev, field, &i, &null, NULL) && !null) {
            cJSON_DeleteItemFromObjectCaseSensitive(o, field);
            ok = cJSON_AddNumberToObject(o, field, i) != NULL;
        }
    } else if ((s = prime_event_string(ev, field))) {
        ok = set_string(o, field, s);
    }
    return ok;
}

static bool event_bool(const prime_event_t *ev, const char *field)
{
    bool v = false, null = true;
    return prime_event_type_field_index(prime_event_type(ev), field) >= 0 &&
           !prime_event_get_bool(ev, field, &v, &null, NULL) && !null && v;
}

typedef struct member {
    cJSON *item;
    size_t index; /* as written: the later of two equal names wins */
} member_t;

/* jsonb's order of an object's members: shorter names first, then byte by
 * byte; equal names as written. */
static int cmp_member(const void *a, const void *b)
{
    const member_t *x = a, *y = b;
    size_t lx = strlen(x->item->string), ly = strlen(y->item->string);
    int c = lx != ly ? (lx < ly ? -1 : 1) : memcmp(x->item->string, y->item->string, lx);
    return c ? c : (x->index < y->index ? -1 : 1);
}

/* Makes a parsed document what jsonb gives back for it: each object's
 * members in jsonb's order, a name given twice keeping its last value. A
 * use in the batch of its preset's create then counts the same settings as
 * a use in a later batch, which reads the facts back from recall_context
 * (test_recall_context). false when out of memory. */
static bool as_jsonb(cJSON *j)
{
    member_t *m;
    size_t n = 0, kept = 0;

    if (!cJSON_IsObject(j) && !cJSON_IsArray(j))
        return true;
    for (cJSON *c = j->child; c; c = c->next, n++)
        if (!as_jsonb(c))
            return false;
    if (!cJSON_IsObject(j) || n < 2)
        return true;
    if (!(m = malloc(n * sizeof(*m))))
        return false;
    n = 0;
    for (cJSON *c = j->child; c; c = c->next, n++)
        m[n] = (member_t){c, n};
    qsort(m, n, sizeof(*m), cmp_member);
    for (size_t i = 0; i < n; i++) {
        m[i].item->next = m[i].item->prev = NULL;
        if (i + 1 < n && !strcmp(m[i].item->string, m[i + 1].item->string))
            cJSON_Delete(m[i].item); /* a later one of the same name follows */
        else
            m[kept++] = m[i];
    }
    j->child = m[0].item;
    for (size_t i = 0; i < kept; i++) {
        m[i].item->next = i + 1 < kept ? m[i + 1].item : NULL;
        m[i].item->prev = i ? m[i - 1].item : m[kept - 1].item; /* cJSON: the first's prev is the last */
    }
    free(m);
    return true;
}

/* A preset's facts from preset.created (o empty) or preset.updated. */
static bool learn_preset(cJSON *o, const prime_event_t *ev, bool created)
{
    const char *text = prime_event_string(ev, "parameters");
    bool null = true, shared = false;

    if (created && !set_string(o, "plugin", prime_event_string(ev, "plugin_type")))
        return false;
    if (text) {
        cJSON *parameters = cJSON_Parse(text);
        cJSON_DeleteItemFromObjectCaseSensitive(o, "parameters");
        if (parameters && !as_jsonb(parameters)) {
            cJSON_Delete(parameters);
            return false;
        }
        if (parameters)
            cJSON_AddItemToObject(o, "parameters", parameters);
    }
    if (created) {
        shared = event_bool(ev, "is_public") || event_bool(ev, "is_system_preset");
    } else if (prime_event_get_bool(ev, "is_public", &shared, &null, NULL) || null) {
        return true; /* visibility unchanged */
    } else {
        /* A system preset stays shared whatever is_public says. */
        shared = shared || cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "system"));
    }
    if (created && event_bool(ev, "is_system_preset"))
        cJSON_AddTrueToObject(o, "system");
    cJSON_DeleteItemFromObjectCaseSensitive(o, "shared");
    return cJSON_AddBoolToObject(o, "shared", shared) != NULL;
}

static void forget_user(recall_context_t *c, const char *user)
{
    char canon[PRIME_UUID_TEXT];

    prime_uuid_canonical(user, canon);
    for (size_t i = 0; i < c->n; i++)
        if (!strcmp(c->facts[i].user, canon)) {
            cJSON_Delete(c->facts[i].facts);
            c->facts[i].facts = NULL;
            c->facts[i].stored = false; /* the user's rows go in one statement */
            c->facts[i].dirty = false;
        }
    if (c->nwiped < c->cap)
        memcpy(c->wiped[c->nwiped++], canon, sizeof(canon));
}

bool recall_context_learn(recall_context_t *c, const prime_event_t *ev)
{
    static const char *const project_fields[] = {"genre", "bpm", "key", "time_signature", "sample_rate"};
    const char *type = prime_event_string(ev, "event_type"), *owner = prime_event_string(ev, "owner_user_id"),
               *actor = prime_event_string(ev, "actor_user_id"), *ref;
    context_kind_t kind;
    fact_t *f;
    cJSON *o;
    bool ok = true;

    /* The materializer refuses these from anyone but the owner (docs/
     * materializer.md, "Who may change what"): so does Recall. */
    if (!type || !owner || !actor || strcmp(owner, actor))
        return true;
    if (!strcmp(type, "user.deleted")) {
        forget_user(c, owner);
        return true;
    }
    if (!recall_context_ref(ev, &kind, &ref) || !strcmp(type, "project.saved") ||
        !strcmp(type, "preset.used") || !strcmp(type, "audio.analyzed"))
        return true;
    if (!(f = find(c, owner, kind, ref, true)))
        return false;
    if (!strcmp(type, "project.deleted") || !strcmp(type, "preset.deleted") || !strcmp(type, "audio.file_deleted")) {
        cJSON_Delete(f->facts);
        f->facts = NULL;
        f->dirty = true;
        return true;
    }
    /* An update of what Recall never saw created (before it ran) is left
     * to the materializer's row, read when a save or a use needs it. */
    if ((!strcmp(type, "project.metadata_updated") || !strcmp(type, "preset.updated")) && !f->facts)
        return true;
    if (!strcmp(type, "project.created") || !strcmp(type, "preset.created") || !strcmp(type, "audio.file_uploaded") ||
        !strcmp(type, "audio.stem_uploaded")) {
        cJSON_Delete(f->facts);
        if (!(f->facts = cJSON_CreateObject()))
            return false;
    }
    o = f->facts;
    f->dirty = true;
    if (kind == CONTEXT_PROJECT)
        for (size_t i = 0; ok && i < sizeof(project_fields) / sizeof(project_fields[0]); i++)
            ok = take_field(o, ev, project_fields[i]);
    else if (kind == CONTEXT_PRESET)
        ok = learn_preset(o, ev, !strcmp(type, "preset.created"));
    else
        ok = cJSON_AddBoolToObject(o, "is_mix", event_bool(ev, "is_mix")) != NULL;
    return ok;
}

prime_errcode_t recall_context_write(recall_context_t *c, PGconn *conn, prime_error_t *err)
{
    prime_buf_t wiped, gone[3], up[4];
    const char *p_wiped[1], *p_gone[3], *p_up[4];
    size_t ngone = 0, nup = 0;
    prime_errcode_t rc = PRIME_OK;

    prime_buf_init(&wiped, 0);
    prime_pg_array_begin(&wiped);
    for (size_t i = 0; i < c->nwiped; i++)
        prime_pg_array_add(&wiped, c->wiped[i]);
    prime_pg_array_end(&wiped);
    p_wiped[0] = wiped.data;
    prime_pg_arrays_begin(gone, 3);
    prime_pg_arrays_begin(up, 4);
    for (size_t i = 0; i < c->n && !rc; i++) {
        fact_t *f = &c->facts[i];
        char *text;
        if (!f->dirty)
            continue;
        if (!f->facts) {
            if (f->stored) {
                prime_pg_array_add(&gone[0], f->user);
                prime_pg_array_add(&gone[1], kind_names[f->kind]);
                prime_pg_array_add(&gone[2], f->ref);
                ngone++;
            }
            continue;
        }
        if (!(text = cJSON_PrintUnformatted(f->facts))) {
            rc = prime_error_set(err, PRIME_ERR_NOMEM, NULL, "out of memory");
            break;
        }
        prime_pg_array_add(&up[0], f->user);
        prime_pg_array_add(&up[1], kind_names[f->kind]);
        prime_pg_array_add(&up[2], f->ref);
        prime_pg_array_add(&up[3], text);
        free(text);
        nup++;
    }
    if (!rc && (!prime_pg_arrays_end(gone, 3, p_gone) || !prime_pg_arrays_end(up, 4, p_up)))
        rc = prime_error_set(err, PRIME_ERR_NOMEM, NULL, "out of memory");
    /* The users deleted first: facts learned after their delete, in the
     * same batch, are upserted after it. */
    if (!rc && c->nwiped)
        rc = prime_pg_exec_params(conn, "DELETE FROM prime_pipeline.recall_context WHERE user_id = ANY($1::uuid[])", 1,
                                  p_wiped, "forgetting deleted users' context", err);
    if (!rc && ngone)
        rc = prime_pg_exec_params(conn,
                                  "DELETE FROM prime_pipeline.recall_context WHERE (user_id, kind, ref_id) IN "
                                  "(SELECT * FROM unnest($1::uuid[], $2::text[], $3::uuid[]))",
                                  3, p_gone, "forgetting deleted projects, presets and files", err);
    if (!rc && nup)
        rc = prime_pg_exec_params(conn,
                                  "INSERT INTO prime_pipeline.recall_context (user_id, kind, ref_id, facts) "
                                  "SELECT * FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::jsonb[]) "
                                  "ON CONFLICT (user_id, kind, ref_id) DO UPDATE SET facts = EXCLUDED.facts",
                                  4, p_up, "writing prime-recall's context", err);
    prime_buf_free(&wiped);
    prime_pg_arrays_free(gone, 3);
    prime_pg_arrays_free(up, 4);
    return rc;
}
