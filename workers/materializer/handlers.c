/* How each event type changes rows (docs/materializer.md, "Rules the fold
 * applies"): every handler runs twice, COLLECT to name the rows it needs,
 * APPLY to change them in memory. */
#include "fold.h"
#include "prime/buf.h"
#include "prime/log.h"
#include "prime/pg.h"
#include "prime/time.h"
#include "prime/uuid.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* --- reading event fields ---------------------------------------------- */

/* The event's time as timestamptz text: every timestamp column the event
 * writes is this, never the time of apply. */
static const char *event_time(const prime_event_t *ev, char buf[PRIME_TIME_TEXT])
{
    int64_t micros = 0;
    prime_event_get_long(ev, "occurred_at", &micros, NULL, NULL);
    prime_time_format_rfc3339(micros, buf);
    return buf;
}

/* An array of strings as a PostgreSQL array literal (malloc'ed). */
static char *array_literal(const prime_event_t *ev, const char *field, size_t n)
{
    prime_buf_t b;
    const char *s;

    prime_buf_init(&b, 0);
    prime_pg_array_begin(&b);
    for (size_t k = 0; k < n; k++) {
        prime_event_get_array_string(ev, field, k, &s, NULL, NULL);
        prime_pg_array_add(&b, s);
    }
    prime_pg_array_end(&b);
    return prime_buf_steal(&b, NULL);
}

/* A field's value as PostgreSQL text input, or NULL when the field is null
 * or not there. Arrays are malloc'ed into *owned (free it); other values
 * live in the event or in buf. */
static const char *field_text(const prime_event_t *ev, const char *field, char buf[PRIME_TIME_TEXT + 8],
                              char **owned)
{
    const prime_event_type_t *type = prime_event_type(ev);
    int idx = prime_event_type_field_index(type, field);
    bool is_null = false, b;
    int32_t i;
    int64_t l;
    double d;
    size_t n;

    *owned = NULL;
    if (idx < 0)
        return NULL;
    switch (prime_event_type_field_kind(type, (size_t)idx)) {
    case PRIME_FIELD_STRING:
        return prime_event_string(ev, field);
    case PRIME_FIELD_INT:
        if (prime_event_get_int(ev, field, &i, &is_null, NULL) || is_null)
            return NULL;
        snprintf(buf, PRIME_TIME_TEXT + 8, "%d", (int)i);
        return buf;
    case PRIME_FIELD_LONG:
        if (prime_event_get_long(ev, field, &l, &is_null, NULL) || is_null)
            return NULL;
        snprintf(buf, PRIME_TIME_TEXT + 8, "%lld", (long long)l);
        return buf;
    case PRIME_FIELD_TIMESTAMP:
        if (prime_event_get_long(ev, field, &l, &is_null, NULL) || is_null)
            return NULL;
        prime_time_format_rfc3339(l, buf);
        return buf;
    case PRIME_FIELD_DOUBLE:
        if (prime_event_get_double(ev, field, &d, &is_null, NULL) || is_null)
            return NULL;
        snprintf(buf, PRIME_TIME_TEXT + 8, "%.17g", d);
        return buf;
    case PRIME_FIELD_BOOLEAN:
        if (prime_event_get_bool(ev, field, &b, &is_null, NULL) || is_null)
            return NULL;
        return b ? "t" : "f";
    case PRIME_FIELD_STRING_ARRAY:
        if (prime_event_get_array_size(ev, field, &n, &is_null, NULL) || is_null)
            return NULL;
        return *owned = array_literal(ev, field, n);
    }
    return NULL;
}

static bool is_cleared(const prime_event_t *ev, const char *column)
{
    size_t n = 0;
    const char *s;
    if (prime_event_type_field_index(prime_event_type(ev), "cleared_fields") < 0 ||
        prime_event_get_array_size(ev, "cleared_fields", &n, NULL, NULL))
        return false;
    for (size_t k = 0; k < n; k++)
        if (prime_event_get_array_string(ev, "cleared_fields", k, &s, NULL, NULL) == PRIME_OK && !strcmp(s, column))
            return true;
    return false;
}

/* Column <- field when the field is set; NULL when it is in cleared_fields. */
static void set_if_given(fold_t *f, table_id_t t, row_t *r, const prime_event_t *ev, const char *field,
                         const char *column)
{
    char buf[PRIME_TIME_TEXT + 8], *owned;
    const char *v;

    if (is_cleared(ev, column)) {
        row_set(&f->sets[t], r, column_index(t, column), NULL);
        return;
    }
    if ((v = field_text(ev, field, buf, &owned)))
        row_set(&f->sets[t], r, column_index(t, column), v);
    free(owned);
}

/* set_if_given for fields named as their columns, up to a NULL. */
static void set_given(fold_t *f, table_id_t t, row_t *r, const prime_event_t *ev, const char *const *fields)
{
    for (int i = 0; fields[i]; i++)
        set_if_given(f, t, r, ev, fields[i], fields[i]);
}

static int refuse(fold_t *f, const char *field, const char *message)
{
    prime_error_clear(&f->why);
    prime_error_set(&f->why, PRIME_ERR_INVALID, field, "%s", message);
    return FOLD_REFUSED;
}

static int missing(fold_t *f, const char *table, const char *id)
{
    snprintf(f->waiting_for, sizeof(f->waiting_for), "%s:%s", table, id);
    prime_error_clear(&f->why);
    prime_error_set(&f->why, PRIME_ERR_INVALID, NULL, "unresolved: %s %s does not exist", table, id);
    return FOLD_MISSING_PARENT;
}

/* The batch's rows that the seed's ON DELETE CASCADE removes with r in
 * the database, removed here too so that memory and database agree. They
 * are the delete's consequence, not changes of their own (not audited). */
static void drop_children(fold_t *f, table_id_t t, const row_t *r)
{
    for (size_t k = 0; k < ncascades; k++) {
        rowset_t *s;
        size_t c;
        if (cascades[k].parent != t)
            continue;
        s = &f->sets[cascades[k].child];
        c = column_index(cascades[k].child, cascades[k].column);
        for (size_t i = 0; i < s->n; i++)
            if (s->rows[i]->present && s->rows[i]->values[c] && !strcmp(s->rows[i]->values[c], r->id)) {
                row_drop(s, s->rows[i]);
                drop_children(f, cascades[k].child, s->rows[i]);
            }
    }
}

static void delete_cascading(fold_t *f, table_id_t t, row_t *r)
{
    row_delete(&f->sets[t], r);
    drop_children(f, t, r);
}

/* The row of table t whose id is the event's id_field, for an event that
 * changes it: it must exist (else the event waits for it) and belong to the
 * event's owner (else the event is refused: the key, and so the order, is
 * the owner's). */
static int owned_row(fold_t *f, const prime_event_t *ev, phase_t phase, table_id_t t, const char *id_field,
                     row_t **out)
{
    row_t *r = rows_track(&f->sets[t], prime_event_string(ev, id_field));
    const char *owner = prime_event_string(ev, "owner_user_id");
    const char *row_owner;

    *out = r;
    if (phase == COLLECT)
        return FOLD_OK;
    if (!r->present)
        return missing(f, tables[t].name, r->id);
    row_owner = r->values[column_index(t, "user_id")];
    if (strcmp(row_owner, owner)) {
        char message[200];
        snprintf(message, sizeof(message), "the %s row belongs to %s, the event names %s", tables[t].name, row_owner,
                 owner);
        return refuse(f, "owner_user_id", message);
    }
    return FOLD_OK;
}

/* --- prime_users ------------------------------------------------------------- */

static row_t *user_row(fold_t *f, const prime_event_t *ev)
{
    return rows_track(&f->sets[T_PRIME_USERS], prime_event_string(ev, "owner_user_id"));
}

static int user_registered(fold_t *f, const prime_event_t *ev, phase_t phase)
{
    static const char *const fields[] = {"email", "username", "display_name", "avatar_url", "bio", "preferred_genres",
                                         "default_bpm", "default_key", "preferred_lufs_target", "email_verified", NULL};
    row_t *r = user_row(f, ev);
    char when[40];

    if (phase == COLLECT)
        return FOLD_OK;
    if (r->present) /* the same user registered again: the first registration stands */
        return refuse(f, "owner_user_id", "the user is already registered");
    row_create(&f->sets[T_PRIME_USERS], r, event_time(ev, when));
    set_given(f, T_PRIME_USERS, r, ev, fields);
    set_if_given(f, T_PRIME_USERS, r, ev, "device_id", "last_active_device_id");
    return FOLD_OK;
}

static int user_profile_updated(fold_t *f, const prime_event_t *ev, phase_t phase)
{
    static const char *const fields[] = {"email", "username", "display_name", "avatar_url", "bio", "preferred_genres",
                                         "default_bpm", "default_key", "preferred_lufs_target", NULL};
    row_t *r = user_row(f, ev);
    char when[40];

    if (phase == COLLECT)
        return FOLD_OK;
    if (!r->present)
        return missing(f, "prime_users", r->id);
    set_given(f, T_PRIME_USERS, r, ev, fields);
    row_set(&f->sets[T_PRIME_USERS], r, column_index(T_PRIME_USERS, "updated_at"), event_time(ev, when));
    return FOLD_OK;
}

static int user_device_registered(fold_t *f, const prime_event_t *ev, phase_t phase)
{
    row_t *r = user_row(f, ev);
    size_t devices_col = column_index(T_PRIME_USERS, "devices");
    const char *device = prime_event_string(ev, "registered_device_id");
    cJSON *list, *entry, *item;
    char when[40], *printed;

    if (phase == COLLECT)
        return FOLD_OK;
    if (!r->present)
        return missing(f, "prime_users", r->id);
    list = cJSON_Parse(r->values[devices_col] ? r->values[devices_col] : "[]");
    if (!cJSON_IsArray(list)) {
        cJSON_Delete(list);
        list = cJSON_CreateArray();
    }
    /* One entry per device: a re-registration replaces it where it stood. */
    for (int i = 0; (item = cJSON_GetArrayItem(list, i)); i++) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(item, "device_id");
        if (cJSON_IsString(id) && !strcmp(id->valuestring, device)) {
            cJSON_DeleteItemFromArray(list, i);
            break;
        }
    }
    entry = cJSON_CreateObject();
    cJSON_AddStringToObject(entry, "device_id", device);
    cJSON_AddStringToObject(entry, "name", prime_event_string(ev, "device_name"));
    cJSON_AddStringToObject(entry, "type", prime_event_string(ev, "device_type"));
    if (prime_event_string(ev, "platform"))
        cJSON_AddStringToObject(entry, "platform", prime_event_string(ev, "platform"));
    if (prime_event_string(ev, "app_version"))
        cJSON_AddStringToObject(entry, "app_version", prime_event_string(ev, "app_version"));
    cJSON_AddStringToObject(entry, "registered_at", event_time(ev, when));
    cJSON_AddItemToArray(list, entry);
    printed = cJSON_PrintUnformatted(list);
    row_set(&f->sets[T_PRIME_USERS], r, devices_col, printed);
    row_set(&f->sets[T_PRIME_USERS], r, column_index(T_PRIME_USERS, "last_active_device_id"), device);
    row_set(&f->sets[T_PRIME_USERS], r, column_index(T_PRIME_USERS, "updated_at"), when);
    cJSON_free(printed);
    cJSON_Delete(list);
    return FOLD_OK;
}

static int user_logged_in(fold_t *f, const prime_event_t *ev, phase_t phase)
{
    row_t *r = user_row(f, ev), *credential = NULL;
    char when[PRIME_TIME_TEXT];
    int rc;

    /* The credential used, when named: on prime.auth, so it may come later. */
    if (prime_event_string(ev, "credential_id") &&
        (rc = owned_row(f, ev, phase, T_AUTH_CREDENTIALS, "credential_id", &credential)))
        return rc;
    if (phase == COLLECT)
        return FOLD_OK;
    if (!r->present)
        return missing(f, "prime_users", r->id);
    event_time(ev, when);
    row_set(&f->sets[T_PRIME_USERS], r, column_index(T_PRIME_USERS, "last_login_at"), when);
    set_if_given(f, T_PRIME_USERS, r, ev, "device_id", "last_active_device_id");
    if (credential)
        row_set(&f->sets[T_AUTH_CREDENTIALS], credential, column_index(T_AUTH_CREDENTIALS, "last_login_at"), when);
    return FOLD_OK;
}

static int user_deleted(fold_t *f, const prime_event_t *ev, phase_t phase)
{
    row_t *r = user_row(f, ev);

    if (phase == COLLECT)
        return FOLD_OK;
    if (!r->present)
        return missing(f, "prime_users", r->id);
    delete_cascading(f, T_PRIME_USERS, r);
    return FOLD_OK;
}

/* --- studio_projects --------------------------------------------------------- */

/* The project row, its owner checked (the key, and so the order, is the
 * owner's). */
static int project_row(fold_t *f, const prime_event_t *ev, phase_t phase, row_t **out)
{
    return owned_row(f, ev, phase, T_STUDIO_PROJECTS, "project_id", out);
}

static void touch(fold_t *f, row_t *r, const prime_event_t *ev)
{
    char when[40];
    row_set(&f->sets[T_STUDIO_PROJECTS], r, column_index(T_STUDIO_PROJECTS, "updated_at"), event_time(ev, when));
}

static void set_project_data(fold_t *f, row_t *r, const char *json, const char *when)
{
    char size[24];
    snprintf(size, sizeof(size), "%zu", strlen(json));
    row_set(&f->sets[T_STUDIO_PROJECTS], r, column_index(T_STUDIO_PROJECTS, "project_data"), json);
    row_set(&f->sets[T_STUDIO_PROJECTS], r, column_index(T_STUDIO_PROJECTS, "project_size_bytes"), size);
    row_set(&f->sets[T_STUDIO_PROJECTS], r, column_index(T_STUDIO_PROJECTS, "last_saved_at"), when);
}

static const char *const project_metadata[] = {
    "name", "description", "bpm", "key", "time_signature", "sample_rate", "bit_depth", "target_lufs", "tags", "genre",
    "mood", "audio_files_storage_path", "stems_storage_path", "snapshots_storage_path", NULL,
};

static int project_created(fold_t *f, const prime_event_t *ev, phase_t phase)
{
    row_t *user = user_row(f, ev);
    row_t *r = rows_track(&f->sets[T_STUDIO_PROJECTS], prime_event_string(ev, "project_id"));
    char when[40];

    if (phase == COLLECT)
        return FOLD_OK;
    if (!user->present)
        return missing(f, "prime_users", user->id);
    if (r->present)
        return refuse(f, "project_id", "the project exists already");
    row_create(&f->sets[T_STUDIO_PROJECTS], r, event_time(ev, when));
    row_set(&f->sets[T_STUDIO_PROJECTS], r, column_index(T_STUDIO_PROJECTS, "user_id"), user->id);
    set_given(f, T_STUDIO_PROJECTS, r, ev, project_metadata);
    /* Creating a project saves its first version. */
    set_project_data(f, r, prime_event_string(ev, "project_data"), when);
    return FOLD_OK;
}

void fold_snapshot_clear(snapshot_wanted_t *w)
{
    free(w->project_data);
    free(w->audio_analysis);
    free(w->musical_context);
    memset(w, 0, sizeof(*w));
}

/* COLLECT of an event that may snapshot project_id: its mix rows are needed. */
static void need_mixes(fold_t *f, const char *project_id)
{
    if (!f->nmix_projects++) {
        prime_buf_reset(&f->mix_projects);
        prime_pg_array_begin(&f->mix_projects);
    }
    prime_pg_array_add(&f->mix_projects, project_id);
}

prime_errcode_t fold_track_mixes(fold_t *f, PGconn *conn, prime_error_t *err)
{
    const char *params[1];
    PGresult *res;
    prime_errcode_t rc = PRIME_OK;

    if (!f->nmix_projects)
        return PRIME_OK;
    f->nmix_projects = 0;
    prime_pg_array_end(&f->mix_projects);
    if (f->mix_projects.failed)
        return prime_error_set(err, PRIME_ERR_NOMEM, NULL, "out of memory");
    params[0] = f->mix_projects.data;
    res = PQexecParams(conn, "SELECT id::text FROM public.audio_files WHERE project_id = ANY($1::uuid[]) AND is_mix", 1,
                       NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        rc = prime_pg_error(conn, res, "finding the projects' mixes", NULL, err);
    for (int r = 0; !rc && r < PQntuples(res); r++)
        if (!rows_track(&f->sets[T_AUDIO_FILES], PQgetvalue(res, r, 0)))
            rc = prime_error_set(err, PRIME_ERR_NOMEM, NULL, "out of memory");
    PQclear(res);
    return rc;
}

/* The latest analysed mix of the project, as the fold has it now (every
 * mix row of the project is tracked: fold_track_mixes). */
static const row_t *latest_mix(fold_t *f, const char *project_id)
{
    const rowset_t *s = &f->sets[T_AUDIO_FILES];
    size_t project = column_index(T_AUDIO_FILES, "project_id"), mix = column_index(T_AUDIO_FILES, "is_mix"),
           analysis = column_index(T_AUDIO_FILES, "audio_analysis"), uploaded = column_index(T_AUDIO_FILES, "uploaded_at");
    const row_t *best = NULL;
    int64_t best_at = 0;

    for (size_t i = 0; i < s->n; i++) {
        const row_t *r = s->rows[i];
        int64_t at = 0;
        if (!r->present || !r->values[project] || strcasecmp(r->values[project], project_id) || !r->values[mix] ||
            strcmp(r->values[mix], "t") || !r->values[analysis])
            continue;
        prime_time_parse_rfc3339(r->values[uploaded], &at);
        if (!best || at > best_at || (at == best_at && strcmp(r->id, best->id) > 0)) {
            best = r;
            best_at = at;
        }
    }
    return best;
}

/* Asks for a snapshot.created of project row r as it is now, with its
 * mix's analysis as it is now. */
static void want_snapshot(fold_t *f, const row_t *r, const char *type, const prime_event_t *request)
{
    snapshot_wanted_t *w = &f->snapshot;
    const char *data = r->values[column_index(T_STUDIO_PROJECTS, "project_data")];
    const row_t *mix = latest_mix(f, r->id);
    const char *analysis = mix ? mix->values[column_index(T_AUDIO_FILES, "audio_analysis")] : NULL;
    const char *context = mix ? mix->values[column_index(T_AUDIO_FILES, "musical_context")] : NULL;

    fold_snapshot_clear(w);
    snprintf(w->project_id, sizeof(w->project_id), "%s", r->id);
    snprintf(w->owner, sizeof(w->owner), "%s", r->values[column_index(T_STUDIO_PROJECTS, "user_id")]);
    w->type = type;
    w->name = request ? prime_event_string(request, "snapshot_name") : NULL;
    w->description = request ? prime_event_string(request, "description") : NULL;
    w->version = atoi(r->values[column_index(T_STUDIO_PROJECTS, "project_version")]);
    w->project_data = strdup(data ? data : "{}");
    w->audio_analysis = analysis ? strdup(analysis) : NULL;
    w->musical_context = context ? strdup(context) : NULL;
    f->want_snapshot = w->project_data && (!analysis || w->audio_analysis) && (!context || w->musical_context);
}

/* A new version of the project: its project_data, version base + 1, and
 * the auto snapshot when the version reaches the policy's multiple. */
static void save_version(fold_t *f, row_t *r, const prime_event_t *ev, int base, const char *project_data)
{
    char when[40], next[16];

    snprintf(next, sizeof(next), "%d", base + 1);
    row_set(&f->sets[T_STUDIO_PROJECTS], r, column_index(T_STUDIO_PROJECTS, "project_version"), next);
    set_project_data(f, r, project_data, event_time(ev, when));
    touch(f, r, ev);
    if (f->snapshot_every > 0 && (base + 1) % f->snapshot_every == 0)
        want_snapshot(f, r, "auto", NULL);
}

static int project_saved(fold_t *f, const prime_event_t *ev, phase_t phase)
{
    row_t *r;
    int rc = project_row(f, ev, phase, &r);
    size_t version_col = column_index(T_STUDIO_PROJECTS, "project_version");
    int32_t base = 0;

    if (phase == COLLECT && f->snapshot_every > 0)
        need_mixes(f, r->id);
    if (rc || phase == COLLECT)
        return rc;
    prime_event_get_int(ev, "base_version", &base, NULL, NULL);
    if (atoi(r->values[version_col]) != base) {
        /* Optimistic locking: a save based on an older version is not
         * applied; it is logged and audited as rejected. */
        prime_log(PRIME_LOG_WARN, "stale save rejected", "project=%s base_version=%d current_version=%s event_id=%s",
                  r->id, (int)base, r->values[version_col], prime_event_string(ev, "event_id"));
        f->rejected = r;
        f->rejected_table = T_STUDIO_PROJECTS;
        snprintf(f->rejected_why, sizeof(f->rejected_why),
                 "stale save: based on version %d, the project is at version %s", (int)base, r->values[version_col]);
        return FOLD_OK;
    }
    save_version(f, r, ev, base, prime_event_string(ev, "project_data"));
    return FOLD_OK;
}

static int project_metadata_updated(fold_t *f, const prime_event_t *ev, phase_t phase)
{
    row_t *r;
    int rc = project_row(f, ev, phase, &r);

    if (rc || phase == COLLECT)
        return rc;
    set_given(f, T_STUDIO_PROJECTS, r, ev, project_metadata);
    touch(f, r, ev);
    return FOLD_OK;
}

static int project_opened(fold_t *f, const prime_event_t *ev, phase_t phase)
{
    row_t *r;
    int rc = project_row(f, ev, phase, &r);
    char when[40];

    if (rc || phase == COLLECT)
        return rc;
    row_set(&f->sets[T_STUDIO_PROJECTS], r, column_index(T_STUDIO_PROJECTS, "last_opened_at"), event_time(ev, when));
    return FOLD_OK;
}

static int project_collaborators_changed(fold_t *f, const prime_event_t *ev, phase_t phase)
{
    row_t *r;
    int rc = project_row(f, ev, phase, &r);
    cJSON *list;

    if (rc || phase == COLLECT)
        return rc;
    list = cJSON_Parse(prime_event_string(ev, "collaborators"));
    row_set(&f->sets[T_STUDIO_PROJECTS], r, column_index(T_STUDIO_PROJECTS, "collaborators"),
            prime_event_string(ev, "collaborators"));
    row_set(&f->sets[T_STUDIO_PROJECTS], r, column_index(T_STUDIO_PROJECTS, "is_collaborative"),
            cJSON_GetArraySize(list) > 0 ? "t" : "f");
    cJSON_Delete(list);
    touch(f, r, ev);
    return FOLD_OK;
}

static int project_deleted(fold_t *f, const prime_event_t *ev, phase_t phase)
{
    row_t *r;
    int rc = project_row(f, ev, phase, &r);

    if (rc || phase == COLLECT)
        return rc;
    delete_cascading(f, T_STUDIO_PROJECTS, r);
    return FOLD_OK;
}

/* The project as it is now becomes a snapshot (derived.c emits
 * snapshot.created; the snapshot writer stores it). */
static int project_snapshot_requested(fold_t *f, const prime_event_t *ev, phase_t phase)
{
    row_t *r;
    int rc = project_row(f, ev, phase, &r);

    if (phase == COLLECT)
        need_mixes(f, r->id);
    if (rc || phase == COLLECT)
        return rc;
    want_snapshot(f, r, prime_event_string(ev, "snapshot_type"), ev);
    return FOLD_OK;
}

/* A new save with the snapshot's project_data: the version moves forward.
 * The snapshot is written by the snapshot writer (another consumer group):
 * until it is there, the event waits (parked, unparked when it appears). */
static int project_restored(fold_t *f, const prime_event_t *ev, phase_t phase)
{
    row_t *r;
    int rc = project_row(f, ev, phase, &r);
    row_t *snap = rows_track(&f->sets[T_PROJECT_SNAPSHOTS], prime_event_string(ev, "snapshot_id"));
    const char *of;

    if (phase == COLLECT && f->snapshot_every > 0)
        need_mixes(f, r->id);
    if (rc || phase == COLLECT)
        return rc;
    if (!snap->present)
        return missing(f, "project_snapshots", snap->id);
    of = snap->values[column_index(T_PROJECT_SNAPSHOTS, "project_id")];
    if (strcasecmp(of, r->id)) {
        char message[160];
        snprintf(message, sizeof(message), "snapshot %s is of project %s, not %s", snap->id, of, r->id);
        return refuse(f, "snapshot_id", message);
    }
    save_version(f, r, ev, atoi(r->values[column_index(T_STUDIO_PROJECTS, "project_version")]),
                 snap->values[column_index(T_PROJECT_SNAPSHOTS, "project_data")]);
    return FOLD_OK;
}

/* --- project_snapshots (the snapshot writer) ------------------------------ */

/* Stores a snapshot once: a snapshot emitted again has the same id (UUIDv5
 * of project, version and type) and changes nothing. */
static int snapshot_created(fold_t *f, const prime_event_t *ev, phase_t phase)
{
    static const char *const given[] = {"project_id", "snapshot_type", "snapshot_name", "description",
                                        "project_data", "project_version", "audio_analysis", "musical_context", NULL};
    row_t *project;
    int rc = project_row(f, ev, phase, &project);
    row_t *actor = rows_track(&f->sets[T_PRIME_USERS], prime_event_string(ev, "actor_user_id"));
    row_t *r = rows_track(&f->sets[T_PROJECT_SNAPSHOTS], prime_event_string(ev, "snapshot_id"));
    char when[40];

    if (rc || phase == COLLECT)
        return rc;
    if (!actor->present) /* created_by references it */
        return missing(f, "prime_users", actor->id);
    if (r->present)
        return FOLD_OK;
    row_create(&f->sets[T_PROJECT_SNAPSHOTS], r, event_time(ev, when));
    row_set(&f->sets[T_PROJECT_SNAPSHOTS], r, column_index(T_PROJECT_SNAPSHOTS, "user_id"),
            prime_event_string(ev, "owner_user_id"));
    row_set(&f->sets[T_PROJECT_SNAPSHOTS], r, column_index(T_PROJECT_SNAPSHOTS, "created_by"), actor->id);
    set_given(f, T_PROJECT_SNAPSHOTS, r, ev, given);
    return FOLD_OK;
}

/* --- session_states ---------------------------------------------------------- */

static int session_row(fold_t *f, const prime_event_t *ev, phase_t phase, row_t **out)
{
    return owned_row(f, ev, phase, T_SESSION_STATES, "session_id", out);
}

static void set_presence(fold_t *f, row_t *r, const prime_event_t *ev)
{
    set_if_given(f, T_SESSION_STATES, r, ev, "cursor_position", "cursor_position");
    set_if_given(f, T_SESSION_STATES, r, ev, "view_state", "view_state");
    set_if_given(f, T_SESSION_STATES, r, ev, "active_tool", "active_tool");
}

static int session_joined(fold_t *f, const prime_event_t *ev, phase_t phase)
{
    row_t *user = user_row(f, ev);
    row_t *project = rows_track(&f->sets[T_STUDIO_PROJECTS], prime_event_string(ev, "project_id"));
    row_t *r = rows_track(&f->sets[T_SESSION_STATES], prime_event_string(ev, "session_id"));
    rowset_t *s = &f->sets[T_SESSION_STATES];
    char when[PRIME_TIME_TEXT];

    if (phase == COLLECT)
        return FOLD_OK;
    if (!user->present)
        return missing(f, "prime_users", user->id);
    if (!project->present)
        return missing(f, "studio_projects", project->id);
    if (r->present)
        return refuse(f, "session_id", "the session exists already");
    row_create(s, r, event_time(ev, when));
    row_set(s, r, column_index(T_SESSION_STATES, "project_id"), project->id);
    row_set(s, r, column_index(T_SESSION_STATES, "user_id"), user->id);
    row_set(s, r, column_index(T_SESSION_STATES, "device_id"), prime_event_string(ev, "device_id"));
    row_set(s, r, column_index(T_SESSION_STATES, "session_token"), prime_event_string(ev, "session_token_hash"));
    set_presence(f, r, ev);
    return FOLD_OK;
}

static int session_heartbeat(fold_t *f, const prime_event_t *ev, phase_t phase)
{
    row_t *r;
    int rc = session_row(f, ev, phase, &r);
    char when[PRIME_TIME_TEXT];

    if (rc || phase == COLLECT)
        return rc;
    event_time(ev, when);
    row_set(&f->sets[T_SESSION_STATES], r, column_index(T_SESSION_STATES, "last_heartbeat"), when);
    row_set(&f->sets[T_SESSION_STATES], r, column_index(T_SESSION_STATES, "updated_at"), when);
    set_presence(f, r, ev);
    return FOLD_OK;
}

static int session_left(fold_t *f, const prime_event_t *ev, phase_t phase)
{
    row_t *r;
    int rc = session_row(f, ev, phase, &r);
    char when[PRIME_TIME_TEXT];

    if (rc || phase == COLLECT)
        return rc;
    row_set(&f->sets[T_SESSION_STATES], r, column_index(T_SESSION_STATES, "is_active"), "f");
    row_set(&f->sets[T_SESSION_STATES], r, column_index(T_SESSION_STATES, "updated_at"), event_time(ev, when));
    return FOLD_OK;
}

/* --- audio_files ------------------------------------------------------------- */

static const char *const audio_columns[] = {
    "project_id", "filename", "original_filename", "file_path", "file_size_bytes", "mime_type", "duration_seconds",
    "sample_rate", "bit_depth", "channels", "format", "musical_context", "tags", "stem_type", "parent_file_id",
    "is_mix", NULL,
};

/* An upload: the owner must be registered, and the project and the parent
 * file (for a stem) written, before the file row is. The project may be
 * another user's: collaborators upload to it. */
static int audio_inserted(fold_t *f, const prime_event_t *ev, phase_t phase, bool stem)
{
    row_t *user = user_row(f, ev), *project = NULL, *parent = NULL;
    row_t *r = rows_track(&f->sets[T_AUDIO_FILES], prime_event_string(ev, "file_id"));
    rowset_t *s = &f->sets[T_AUDIO_FILES];
    char when[PRIME_TIME_TEXT];

    if (prime_event_string(ev, "project_id"))
        project = rows_track(&f->sets[T_STUDIO_PROJECTS], prime_event_string(ev, "project_id"));
    if (stem && prime_event_string(ev, "parent_file_id"))
        parent = rows_track(s, prime_event_string(ev, "parent_file_id"));
    if (phase == COLLECT)
        return FOLD_OK;
    if (!user->present)
        return missing(f, "prime_users", user->id);
    if (project && !project->present)
        return missing(f, "studio_projects", project->id);
    if (parent && !parent->present)
        return missing(f, "audio_files", parent->id);
    if (r->present)
        return refuse(f, "file_id", "the file exists already");
    row_create(s, r, event_time(ev, when));
    row_set(s, r, column_index(T_AUDIO_FILES, "user_id"), user->id);
    set_given(f, T_AUDIO_FILES, r, ev, audio_columns);
    row_set(s, r, column_index(T_AUDIO_FILES, "is_stem"), stem ? "t" : "f");
    return FOLD_OK;
}

static int audio_file_uploaded(fold_t *f, const prime_event_t *ev, phase_t phase)
{
    return audio_inserted(f, ev, phase, false);
}

static int audio_stem_uploaded(fold_t *f, const prime_event_t *ev, phase_t phase)
{
    return audio_inserted(f, ev, phase, true);
}

static int audio_file_deleted(fold_t *f, const prime_event_t *ev, phase_t phase)
{
    row_t *r;
    int rc = owned_row(f, ev, phase, T_AUDIO_FILES, "file_id", &r);

    if (rc || phase == COLLECT)
        return rc;
    delete_cascading(f, T_AUDIO_FILES, r);
    return FOLD_OK;
}

/* Compares analyzer versions part by part ("1.10.0" > "1.9.2"): numbers
 * as numbers, anything else as text. */
static int version_cmp(const char *a, const char *b)
{
    while (*a || *b) {
        if (isdigit((unsigned char)*a) && isdigit((unsigned char)*b)) {
            char *ea, *eb;
            unsigned long long x = strtoull(a, &ea, 10), y = strtoull(b, &eb, 10);
            if (x != y)
                return x < y ? -1 : 1;
            a = ea;
            b = eb;
        } else {
            if (*a != *b)
                return (unsigned char)*a < (unsigned char)*b ? -1 : 1;
            a++;
            b++;
        }
    }
    return 0;
}

/* The analysis of a file: stored in audio_files.audio_analysis with its
 * analyzer_version, unless a newer version's analysis is there already; for
 * a project's mix, its integrated loudness and DR go to the project. */
static int audio_analyzed(fold_t *f, const prime_event_t *ev, phase_t phase)
{
    static const char *const measured[] = {"duration_seconds", "sample_rate", "channels", "musical_context", NULL};
    row_t *r, *project = NULL;
    int rc = owned_row(f, ev, phase, T_AUDIO_FILES, "file_id", &r);
    size_t analysis_col = column_index(T_AUDIO_FILES, "audio_analysis");
    const char *version = prime_event_string(ev, "analyzer_version"), *project_id;
    cJSON *analysis, *stored = NULL, *stored_version;
    char *printed, lufs[PRIME_TIME_TEXT + 8], dr[PRIME_TIME_TEXT + 8], *unused;

    if (rc || phase == COLLECT)
        return rc;
    if (r->values[analysis_col] && (stored = cJSON_Parse(r->values[analysis_col]))) {
        stored_version = cJSON_GetObjectItemCaseSensitive(stored, "analyzer_version");
        if (cJSON_IsString(stored_version) && version_cmp(stored_version->valuestring, version) > 0) {
            prime_log(PRIME_LOG_INFO, "older analysis not stored", "file=%s stored_version=%s event_version=%s", r->id,
                      stored_version->valuestring, version);
            cJSON_Delete(stored);
            return FOLD_OK;
        }
    }
    cJSON_Delete(stored);
    project_id = r->values[column_index(T_AUDIO_FILES, "project_id")];
    if (project_id && !strcmp(r->values[column_index(T_AUDIO_FILES, "is_mix")], "t")) {
        /* Which project is known only now that the file row is read. */
        project = rows_track(&f->sets[T_STUDIO_PROJECTS], project_id);
        if (!project->loaded)
            return FOLD_NEED_ROWS;
    }
    analysis = cJSON_Parse(prime_event_string(ev, "audio_analysis"));
    if (!cJSON_IsObject(analysis)) {
        cJSON_Delete(analysis);
        return refuse(f, "audio_analysis", "is not a JSON object");
    }
    cJSON_DeleteItemFromObjectCaseSensitive(analysis, "analyzer_version");
    cJSON_AddStringToObject(analysis, "analyzer_version", version);
    printed = cJSON_PrintUnformatted(analysis);
    row_set(&f->sets[T_AUDIO_FILES], r, analysis_col, printed);
    cJSON_free(printed);
    cJSON_Delete(analysis);
    set_given(f, T_AUDIO_FILES, r, ev, measured);
    if (project && project->present) {
        /* NULL when the mix has no defined figure (silence); the columns'
         * DECIMAL(5,2) rounds, half away from zero. */
        rowset_t *s = &f->sets[T_STUDIO_PROJECTS];
        row_set(s, project, column_index(T_STUDIO_PROJECTS, "current_lufs"),
                field_text(ev, "integrated_lufs", lufs, &unused));
        row_set(s, project, column_index(T_STUDIO_PROJECTS, "dynamic_range"), field_text(ev, "dynamic_range", dr, &unused));
    }
    return FOLD_OK;
}

/* Events the analyzer acts on, or that only record what it did: no row
 * changes here. */
static int no_row_change(fold_t *f, const prime_event_t *ev, phase_t phase)
{
    (void)f;
    (void)ev;
    (void)phase;
    return FOLD_OK;
}

/* --- plugin_presets ------------------------------------------------------------ */

static const char *const preset_columns[] = {
    "name", "description", "plugin_type", "parameters", "is_public", "is_system_preset", "tags", NULL,
};

/* A system preset has no user (user_id NULL): the studio's own catalogue,
 * changed by whoever publishes it. Another user's preset may be used when
 * it is public, and changed never. */
static int preset_row(fold_t *f, const prime_event_t *ev, phase_t phase, bool using, row_t **out)
{
    row_t *r = rows_track(&f->sets[T_PLUGIN_PRESETS], prime_event_string(ev, "preset_id"));
    const char *row_owner;

    *out = r;
    if (phase == COLLECT)
        return FOLD_OK;
    if (!r->present)
        return missing(f, "plugin_presets", r->id);
    row_owner = r->values[column_index(T_PLUGIN_PRESETS, "user_id")];
    if (!row_owner || !strcmp(row_owner, prime_event_string(ev, "owner_user_id")))
        return FOLD_OK;
    if (using && !strcmp(r->values[column_index(T_PLUGIN_PRESETS, "is_public")], "t"))
        return FOLD_OK;
    return refuse(f, "owner_user_id", using ? "the preset is another user's and not public"
                                            : "the preset is another user's");
}

static int preset_created(fold_t *f, const prime_event_t *ev, phase_t phase)
{
    row_t *user = user_row(f, ev);
    row_t *r = rows_track(&f->sets[T_PLUGIN_PRESETS], prime_event_string(ev, "preset_id"));
    bool system = false;
    char when[PRIME_TIME_TEXT];

    if (phase == COLLECT)
        return FOLD_OK;
    prime_event_get_bool(ev, "is_system_preset", &system, NULL, NULL);
    if (!system && !user->present)
        return missing(f, "prime_users", user->id);
    if (r->present)
        return refuse(f, "preset_id", "the preset exists already");
    row_create(&f->sets[T_PLUGIN_PRESETS], r, event_time(ev, when));
    row_set(&f->sets[T_PLUGIN_PRESETS], r, column_index(T_PLUGIN_PRESETS, "user_id"), system ? NULL : user->id);
    set_given(f, T_PLUGIN_PRESETS, r, ev, preset_columns);
    return FOLD_OK;
}

static int preset_updated(fold_t *f, const prime_event_t *ev, phase_t phase)
{
    static const char *const changeable[] = {"name", "description", "parameters", "is_public", "tags", NULL};
    row_t *r;
    int rc = preset_row(f, ev, phase, false, &r);
    char when[PRIME_TIME_TEXT];

    if (rc || phase == COLLECT)
        return rc;
    set_given(f, T_PLUGIN_PRESETS, r, ev, changeable);
    row_set(&f->sets[T_PLUGIN_PRESETS], r, column_index(T_PLUGIN_PRESETS, "updated_at"), event_time(ev, when));
    return FOLD_OK;
}

/* Uses come from every user of a public preset, in several partitions:
 * adding and keeping the latest time give the same row in any order. */
static int preset_used(fold_t *f, const prime_event_t *ev, phase_t phase)
{
    row_t *r;
    int rc = preset_row(f, ev, phase, true, &r);
    size_t count_col = column_index(T_PLUGIN_PRESETS, "usage_count"), used_col = column_index(T_PLUGIN_PRESETS, "last_used_at");
    char when[PRIME_TIME_TEXT], count[24];
    int64_t micros = 0, last;

    if (rc || phase == COLLECT)
        return rc;
    snprintf(count, sizeof(count), "%lld", atoll(r->values[count_col]) + 1);
    row_set(&f->sets[T_PLUGIN_PRESETS], r, count_col, count);
    prime_event_get_long(ev, "occurred_at", &micros, NULL, NULL);
    if (!r->values[used_col] || prime_time_parse_rfc3339(r->values[used_col], &last) || last < micros)
        row_set(&f->sets[T_PLUGIN_PRESETS], r, used_col, event_time(ev, when));
    return FOLD_OK;
}

static int preset_deleted(fold_t *f, const prime_event_t *ev, phase_t phase)
{
    row_t *r;
    int rc = preset_row(f, ev, phase, false, &r);

    if (rc || phase == COLLECT)
        return rc;
    delete_cascading(f, T_PLUGIN_PRESETS, r);
    return FOLD_OK;
}

/* --- collaboration_sessions -------------------------------------------------- */

/* One participant entry; permissions as given (JSON) or null. */
static cJSON *participant(const char *user_id, const char *role, const char *joined_at, const char *permissions)
{
    cJSON *p = cJSON_CreateObject(), *perm = permissions ? cJSON_Parse(permissions) : NULL;
    cJSON_AddStringToObject(p, "user_id", user_id);
    cJSON_AddStringToObject(p, "role", role);
    cJSON_AddStringToObject(p, "joined_at", joined_at);
    cJSON_AddItemToObject(p, "permissions", perm ? perm : cJSON_CreateNull());
    return p;
}

/* The participants list without user_id's entry, plus entry when given. */
static void edit_participants(fold_t *f, row_t *r, const char *user_id, cJSON *entry)
{
    size_t c = column_index(T_COLLABORATION_SESSIONS, "participants");
    cJSON *list = cJSON_Parse(r->values[c] ? r->values[c] : "[]"), *item;
    char *printed;

    if (!cJSON_IsArray(list)) {
        cJSON_Delete(list);
        list = cJSON_CreateArray();
    }
    for (int i = 0; (item = cJSON_GetArrayItem(list, i));) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(item, "user_id");
        if (cJSON_IsString(id) && !strcmp(id->valuestring, user_id))
            cJSON_DeleteItemFromArray(list, i);
        else
            i++;
    }
    if (entry)
        cJSON_AddItemToArray(list, entry);
    printed = cJSON_PrintUnformatted(list);
    row_set(&f->sets[T_COLLABORATION_SESSIONS], r, c, printed);
    cJSON_free(printed);
    cJSON_Delete(list);
}

/* The session of a collab event: its events are the project owner's (the
 * key), which the project row says; an ended session takes no more. */
static int collab_row(fold_t *f, const prime_event_t *ev, phase_t phase, bool ending, row_t **out)
{
    row_t *r = rows_track(&f->sets[T_COLLABORATION_SESSIONS], prime_event_string(ev, "collab_session_id")), *project;
    const char *project_owner;

    *out = r;
    if (phase == COLLECT)
        return FOLD_OK;
    if (!r->present)
        return missing(f, "collaboration_sessions", r->id);
    project = rows_track(&f->sets[T_STUDIO_PROJECTS], r->values[column_index(T_COLLABORATION_SESSIONS, "project_id")]);
    if (!project->loaded)
        return FOLD_NEED_ROWS;
    project_owner = project->present ? project->values[column_index(T_STUDIO_PROJECTS, "user_id")] : NULL;
    if (project_owner && strcmp(project_owner, prime_event_string(ev, "owner_user_id")))
        return refuse(f, "owner_user_id", "collaboration events are keyed by the project's owner");
    if (!ending && r->values[column_index(T_COLLABORATION_SESSIONS, "ended_at")])
        return refuse(f, "collab_session_id", "the collaboration session has ended");
    return FOLD_OK;
}

static int collab_started(fold_t *f, const prime_event_t *ev, phase_t phase)
{
    row_t *project, *starter = rows_track(&f->sets[T_PRIME_USERS], prime_event_string(ev, "actor_user_id"));
    row_t *r = rows_track(&f->sets[T_COLLABORATION_SESSIONS], prime_event_string(ev, "collab_session_id"));
    rowset_t *s = &f->sets[T_COLLABORATION_SESSIONS];
    int rc = owned_row(f, ev, phase, T_STUDIO_PROJECTS, "project_id", &project);
    char when[PRIME_TIME_TEXT];

    if (rc || phase == COLLECT)
        return rc;
    if (!starter->present) /* started_by references prime_users */
        return missing(f, "prime_users", starter->id);
    if (r->present)
        return refuse(f, "collab_session_id", "the collaboration session exists already");
    row_create(s, r, event_time(ev, when));
    row_set(s, r, column_index(T_COLLABORATION_SESSIONS, "project_id"), project->id);
    row_set(s, r, column_index(T_COLLABORATION_SESSIONS, "started_by"), starter->id);
    set_if_given(f, T_COLLABORATION_SESSIONS, r, ev, "session_name", "session_name");
    set_if_given(f, T_COLLABORATION_SESSIONS, r, ev, "notes", "notes");
    edit_participants(f, r, starter->id, participant(starter->id, "host", when, NULL));
    return FOLD_OK;
}

static int collab_participant_joined(fold_t *f, const prime_event_t *ev, phase_t phase)
{
    row_t *r;
    int rc = collab_row(f, ev, phase, false, &r);
    char when[PRIME_TIME_TEXT];

    if (rc || phase == COLLECT)
        return rc;
    edit_participants(f, r, prime_event_string(ev, "user_id"),
                      participant(prime_event_string(ev, "user_id"), prime_event_string(ev, "role"), event_time(ev, when),
                                  prime_event_string(ev, "permissions")));
    return FOLD_OK;
}

static int collab_participant_left(fold_t *f, const prime_event_t *ev, phase_t phase)
{
    row_t *r;
    int rc = collab_row(f, ev, phase, false, &r);

    if (rc || phase == COLLECT)
        return rc;
    edit_participants(f, r, prime_event_string(ev, "user_id"), NULL);
    return FOLD_OK;
}

static int collab_ended(fold_t *f, const prime_event_t *ev, phase_t phase)
{
    row_t *r;
    int rc = collab_row(f, ev, phase, true, &r);
    rowset_t *s = &f->sets[T_COLLABORATION_SESSIONS];
    char when[PRIME_TIME_TEXT];

    if (rc || phase == COLLECT)
        return rc;
    if (r->values[column_index(T_COLLABORATION_SESSIONS, "ended_at")])
        return FOLD_OK; /* ended already: the first end stands */
    row_set(s, r, column_index(T_COLLABORATION_SESSIONS, "is_active"), "f");
    row_set(s, r, column_index(T_COLLABORATION_SESSIONS, "ended_at"), event_time(ev, when));
    set_if_given(f, T_COLLABORATION_SESSIONS, r, ev, "notes", "notes");
    return FOLD_OK;
}

/* --- auth_credentials and auth_sessions --------------------------------------- */

/* Auth events carry hashes only (the validator refuses plaintext); the
 * *_hash fields land in the seed's token columns. */
static int auth_credential_created(fold_t *f, const prime_event_t *ev, phase_t phase)
{
    static const char *const columns[] = {"credential_type", "email", "password_hash", "salt", "oauth_provider",
                                          "oauth_id", "oauth_data", "verification_expires_at", NULL};
    row_t *user = user_row(f, ev);
    row_t *r = rows_track(&f->sets[T_AUTH_CREDENTIALS], prime_event_string(ev, "credential_id"));
    rowset_t *s = &f->sets[T_AUTH_CREDENTIALS];
    char when[PRIME_TIME_TEXT];

    if (phase == COLLECT)
        return FOLD_OK;
    if (!user->present)
        return missing(f, "prime_users", user->id);
    if (r->present)
        return refuse(f, "credential_id", "the credential exists already");
    row_create(s, r, event_time(ev, when));
    row_set(s, r, column_index(T_AUTH_CREDENTIALS, "user_id"), user->id);
    set_given(f, T_AUTH_CREDENTIALS, r, ev, columns);
    set_if_given(f, T_AUTH_CREDENTIALS, r, ev, "verification_token_hash", "verification_token");
    return FOLD_OK;
}

static void credential_touch(fold_t *f, row_t *r, const prime_event_t *ev)
{
    char when[PRIME_TIME_TEXT];
    row_set(&f->sets[T_AUTH_CREDENTIALS], r, column_index(T_AUTH_CREDENTIALS, "updated_at"), event_time(ev, when));
}

static int auth_credential_verified(fold_t *f, const prime_event_t *ev, phase_t phase)
{
    row_t *user = user_row(f, ev), *r;
    rowset_t *s = &f->sets[T_AUTH_CREDENTIALS];
    int rc = owned_row(f, ev, phase, T_AUTH_CREDENTIALS, "credential_id", &r);

    if (rc || phase == COLLECT)
        return rc;
    row_set(s, r, column_index(T_AUTH_CREDENTIALS, "email_verified"), "t");
    row_set(s, r, column_index(T_AUTH_CREDENTIALS, "verification_token"), NULL);
    row_set(s, r, column_index(T_AUTH_CREDENTIALS, "verification_expires_at"), NULL);
    credential_touch(f, r, ev);
    if (user->present)
        row_set(&f->sets[T_PRIME_USERS], user, column_index(T_PRIME_USERS, "email_verified"), "t");
    return FOLD_OK;
}

static int auth_password_changed(fold_t *f, const prime_event_t *ev, phase_t phase)
{
    row_t *r;
    rowset_t *s = &f->sets[T_AUTH_CREDENTIALS];
    int rc = owned_row(f, ev, phase, T_AUTH_CREDENTIALS, "credential_id", &r);

    if (rc || phase == COLLECT)
        return rc;
    row_set(s, r, column_index(T_AUTH_CREDENTIALS, "password_hash"), prime_event_string(ev, "password_hash"));
    /* A NULL salt: the hash carries its own. */
    row_set(s, r, column_index(T_AUTH_CREDENTIALS, "salt"), prime_event_string(ev, "salt"));
    row_set(s, r, column_index(T_AUTH_CREDENTIALS, "reset_token"), NULL);
    row_set(s, r, column_index(T_AUTH_CREDENTIALS, "reset_expires_at"), NULL);
    credential_touch(f, r, ev);
    return FOLD_OK;
}

static int auth_reset_requested(fold_t *f, const prime_event_t *ev, phase_t phase)
{
    row_t *r;
    int rc = owned_row(f, ev, phase, T_AUTH_CREDENTIALS, "credential_id", &r);

    if (rc || phase == COLLECT)
        return rc;
    set_if_given(f, T_AUTH_CREDENTIALS, r, ev, "reset_token_hash", "reset_token");
    set_if_given(f, T_AUTH_CREDENTIALS, r, ev, "reset_expires_at", "reset_expires_at");
    credential_touch(f, r, ev);
    return FOLD_OK;
}

static const char *const auth_token_columns[] = {
    "access_token_hash", "refresh_token_hash", "access_token_expires_at", "refresh_token_expires_at", NULL,
};

static int auth_session_started(fold_t *f, const prime_event_t *ev, phase_t phase)
{
    static const char *const columns[] = {"device_id", "device_name", "device_type", "ip_address", "user_agent", NULL};
    row_t *user = user_row(f, ev);
    row_t *r = rows_track(&f->sets[T_AUTH_SESSIONS], prime_event_string(ev, "session_id"));
    rowset_t *s = &f->sets[T_AUTH_SESSIONS];
    char when[PRIME_TIME_TEXT];

    if (phase == COLLECT)
        return FOLD_OK;
    if (!user->present)
        return missing(f, "prime_users", user->id);
    if (r->present)
        return refuse(f, "session_id", "the session exists already");
    row_create(s, r, event_time(ev, when));
    row_set(s, r, column_index(T_AUTH_SESSIONS, "user_id"), user->id);
    set_if_given(f, T_AUTH_SESSIONS, r, ev, "session_token_hash", "session_token");
    set_given(f, T_AUTH_SESSIONS, r, ev, columns);
    set_given(f, T_AUTH_SESSIONS, r, ev, auth_token_columns);
    return FOLD_OK;
}

static int auth_session_refreshed(fold_t *f, const prime_event_t *ev, phase_t phase)
{
    row_t *r;
    int rc = owned_row(f, ev, phase, T_AUTH_SESSIONS, "session_id", &r);
    char when[PRIME_TIME_TEXT];

    if (rc || phase == COLLECT)
        return rc;
    if (!strcmp(r->values[column_index(T_AUTH_SESSIONS, "is_revoked")], "t"))
        return refuse(f, "session_id", "the session is revoked");
    set_given(f, T_AUTH_SESSIONS, r, ev, auth_token_columns);
    row_set(&f->sets[T_AUTH_SESSIONS], r, column_index(T_AUTH_SESSIONS, "last_activity_at"), event_time(ev, when));
    return FOLD_OK;
}

static int auth_session_revoked(fold_t *f, const prime_event_t *ev, phase_t phase)
{
    row_t *r;
    int rc = owned_row(f, ev, phase, T_AUTH_SESSIONS, "session_id", &r);

    if (rc || phase == COLLECT)
        return rc;
    row_set(&f->sets[T_AUTH_SESSIONS], r, column_index(T_AUTH_SESSIONS, "is_revoked"), "t");
    return FOLD_OK;
}

static const struct {
    const char *type;
    handler_fn fn;
} handlers[] = {
    {"user.registered", user_registered},
    {"user.profile_updated", user_profile_updated},
    {"user.device_registered", user_device_registered},
    {"user.logged_in", user_logged_in},
    {"user.deleted", user_deleted},
    {"project.created", project_created},
    {"project.saved", project_saved},
    {"project.metadata_updated", project_metadata_updated},
    {"project.opened", project_opened},
    {"project.collaborators_changed", project_collaborators_changed},
    {"project.deleted", project_deleted},
    {"project.snapshot_requested", project_snapshot_requested},
    {"project.restored", project_restored},
    {"snapshot.created", snapshot_created},
    {"session.joined", session_joined},
    {"session.heartbeat", session_heartbeat},
    {"session.left", session_left},
    {"recall.set", no_row_change}, /* mixx_recall is prime-recall's (docs/recall.md) */
    {"recall.used", no_row_change},
    {"recall.forgotten", no_row_change},
    {"audio.file_uploaded", audio_file_uploaded},
    {"audio.stem_uploaded", audio_stem_uploaded},
    {"audio.file_deleted", audio_file_deleted},
    {"audio.analyzed", audio_analyzed},
    {"audio.analysis_requested", no_row_change},
    {"audio.analysis_failed", no_row_change},
    {"preset.created", preset_created},
    {"preset.updated", preset_updated},
    {"preset.used", preset_used},
    {"preset.deleted", preset_deleted},
    {"collab.started", collab_started},
    {"collab.participant_joined", collab_participant_joined},
    {"collab.participant_left", collab_participant_left},
    {"collab.ended", collab_ended},
    {"auth.credential_created", auth_credential_created},
    {"auth.credential_verified", auth_credential_verified},
    {"auth.password_changed", auth_password_changed},
    {"auth.reset_requested", auth_reset_requested},
    {"auth.session_started", auth_session_started},
    {"auth.session_refreshed", auth_session_refreshed},
    {"auth.session_revoked", auth_session_revoked},
};

handler_fn fold_handler_for(const prime_event_t *ev)
{
    const char *type = prime_event_type_name(prime_event_type(ev));
    for (size_t i = 0; i < sizeof(handlers) / sizeof(handlers[0]); i++)
        if (!strcmp(handlers[i].type, type))
            return handlers[i].fn;
    return NULL;
}

