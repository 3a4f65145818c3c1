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
 * parked_events, in the same transaction) and folded again when a batch
 * writes that parent; after --park-max-seconds it is dead-lettered.
 *
 * So far it materializes prime_users, studio_projects, session_states and
 * mixx_recall. */
#include "prime/buf.h"
#include "prime/event.h"
#include "prime/log.h"
#include "prime/pg.h"
#include "prime/time.h"
#include "prime/uuid.h"
#include "prime/worker.h"
#include "rows.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum phase { COLLECT, APPLY } phase_t;

/* What a handler reports besides success. */
enum { FOLD_OK = 0, FOLD_MISSING_PARENT = 1, FOLD_REFUSED = 2 };

typedef struct fold {
    rowset_t sets[T_COUNT];
    prime_error_t why;      /* for FOLD_MISSING_PARENT and FOLD_REFUSED */
    char waiting_for[96];   /* for FOLD_MISSING_PARENT: "table:id" */
} fold_t;

typedef int (*handler_fn)(fold_t *f, const prime_event_t *ev, phase_t phase);

typedef struct materializer {
    prime_registry_t *reg;
    fold_t fold;
    int park_max_seconds;
} materializer_t;

/* --- reading event fields ---------------------------------------------- */

static const char *text(const prime_event_t *ev, const char *field)
{
    const char *v = NULL;
    prime_event_get_string(ev, field, &v, NULL, NULL);
    return v;
}

/* The event's time as timestamptz text: every timestamp column the event
 * writes is this, never the time of apply. */
static const char *event_time(const prime_event_t *ev, char buf[PRIME_TIME_TEXT])
{
    int64_t micros = 0;
    prime_event_get_long(ev, "occurred_at", &micros, NULL, NULL);
    prime_time_format_rfc3339(micros, buf);
    return buf;
}

/* Number fields as PostgreSQL text, or NULL when the field is null. */
static const char *number(const prime_event_t *ev, const char *field, char buf[40])
{
    double d;
    int32_t i;
    bool is_null = true;

    /* A field that is not there, or not a number, is NULL: the getters say so. */
    if (prime_event_get_int(ev, field, &i, &is_null, NULL) == PRIME_OK) {
        if (is_null)
            return NULL;
        snprintf(buf, 40, "%d", (int)i);
        return buf;
    }
    if (prime_event_get_double(ev, field, &d, &is_null, NULL) == PRIME_OK && !is_null) {
        snprintf(buf, 40, "%.17g", d);
        return buf;
    }
    return NULL;
}

/* An array of strings as a PostgreSQL array literal, or NULL when null. */
static char *array_literal(const prime_event_t *ev, const char *field)
{
    size_t n = 0, len;
    bool is_null = false;
    const char *s;
    char *out, *p;
    size_t cap = 3;

    if (prime_event_get_array_size(ev, field, &n, &is_null, NULL) || is_null)
        return NULL;
    for (size_t k = 0; k < n; k++) {
        prime_event_get_array_string(ev, field, k, &s, &len, NULL);
        cap += 2 * len + 3;
    }
    p = out = malloc(cap);
    *p++ = '{';
    for (size_t k = 0; k < n; k++) {
        prime_event_get_array_string(ev, field, k, &s, &len, NULL);
        if (k)
            *p++ = ',';
        *p++ = '"';
        for (size_t j = 0; j < len; j++) {
            if (s[j] == '"' || s[j] == '\\')
                *p++ = '\\';
            *p++ = s[j];
        }
        *p++ = '"';
    }
    *p++ = '}';
    *p = '\0';
    return out;
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
    const prime_event_type_t *type = prime_event_type(ev);
    int idx = prime_event_type_field_index(type, field);
    char buf[PRIME_TIME_TEXT];
    const char *v = NULL;
    char *owned = NULL;

    if (idx < 0)
        return;
    if (is_cleared(ev, column)) {
        row_set(&f->sets[t], r, column_index(t, column), NULL);
        return;
    }
    if ((v = text(ev, field)) == NULL && (v = number(ev, field, buf)) == NULL && (v = owned = array_literal(ev, field)) == NULL) {
        bool b, is_null = true;
        if (prime_event_get_bool(ev, field, &b, &is_null, NULL) == PRIME_OK && !is_null)
            v = b ? "t" : "f";
    }
    if (v)
        row_set(&f->sets[t], r, column_index(t, column), v);
    free(owned);
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

/* The database cascades a deleted parent to its children (the seed's
 * ON DELETE CASCADE); the batch's own child rows go too, so memory and
 * database agree. */
static void drop_children(fold_t *f, table_id_t child, const char *column, const char *parent_id)
{
    rowset_t *s = &f->sets[child];
    size_t c = column_index(child, column);
    for (size_t i = 0; i < s->n; i++)
        if (s->rows[i].present && s->rows[i].values[c] && !strcmp(s->rows[i].values[c], parent_id))
            row_delete(s, &s->rows[i]);
}

/* The row of table t whose id is the event's id_field, for an event that
 * changes it: it must exist (else the event waits for it) and belong to the
 * event's owner (else the event is refused: the key, and so the order, is
 * the owner's). */
static int owned_row(fold_t *f, const prime_event_t *ev, phase_t phase, table_id_t t, const char *id_field,
                     row_t **out)
{
    row_t *r = rows_track(&f->sets[t], text(ev, id_field));
    const char *owner = text(ev, "owner_user_id");
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
    return rows_track(&f->sets[T_PRIME_USERS], text(ev, "owner_user_id"));
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
    for (int i = 0; fields[i]; i++)
        set_if_given(f, T_PRIME_USERS, r, ev, fields[i], fields[i]);
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
    for (int i = 0; fields[i]; i++)
        set_if_given(f, T_PRIME_USERS, r, ev, fields[i], fields[i]);
    row_set(&f->sets[T_PRIME_USERS], r, column_index(T_PRIME_USERS, "updated_at"), event_time(ev, when));
    return FOLD_OK;
}

static int user_device_registered(fold_t *f, const prime_event_t *ev, phase_t phase)
{
    row_t *r = user_row(f, ev);
    size_t devices_col = column_index(T_PRIME_USERS, "devices");
    const char *device = text(ev, "registered_device_id");
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
    cJSON_AddStringToObject(entry, "name", text(ev, "device_name"));
    cJSON_AddStringToObject(entry, "type", text(ev, "device_type"));
    if (text(ev, "platform"))
        cJSON_AddStringToObject(entry, "platform", text(ev, "platform"));
    if (text(ev, "app_version"))
        cJSON_AddStringToObject(entry, "app_version", text(ev, "app_version"));
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
    row_t *r = user_row(f, ev);
    char when[40];

    if (phase == COLLECT)
        return FOLD_OK;
    if (!r->present)
        return missing(f, "prime_users", r->id);
    row_set(&f->sets[T_PRIME_USERS], r, column_index(T_PRIME_USERS, "last_login_at"), event_time(ev, when));
    set_if_given(f, T_PRIME_USERS, r, ev, "device_id", "last_active_device_id");
    return FOLD_OK;
}

static int user_deleted(fold_t *f, const prime_event_t *ev, phase_t phase)
{
    row_t *r = user_row(f, ev);

    if (phase == COLLECT)
        return FOLD_OK;
    if (!r->present)
        return missing(f, "prime_users", r->id);
    row_delete(&f->sets[T_PRIME_USERS], r);
    drop_children(f, T_STUDIO_PROJECTS, "user_id", r->id);
    drop_children(f, T_SESSION_STATES, "user_id", r->id);
    drop_children(f, T_MIXX_RECALL, "user_id", r->id);
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
    row_t *r = rows_track(&f->sets[T_STUDIO_PROJECTS], text(ev, "project_id"));
    char when[40];

    if (phase == COLLECT)
        return FOLD_OK;
    if (!user->present)
        return missing(f, "prime_users", user->id);
    if (r->present)
        return refuse(f, "project_id", "the project exists already");
    row_create(&f->sets[T_STUDIO_PROJECTS], r, event_time(ev, when));
    row_set(&f->sets[T_STUDIO_PROJECTS], r, column_index(T_STUDIO_PROJECTS, "user_id"), user->id);
    for (int i = 0; project_metadata[i]; i++)
        set_if_given(f, T_STUDIO_PROJECTS, r, ev, project_metadata[i], project_metadata[i]);
    /* Creating a project saves its first version. */
    set_project_data(f, r, text(ev, "project_data"), when);
    return FOLD_OK;
}

static int project_saved(fold_t *f, const prime_event_t *ev, phase_t phase)
{
    row_t *r;
    int rc = project_row(f, ev, phase, &r);
    size_t version_col = column_index(T_STUDIO_PROJECTS, "project_version");
    int32_t base = 0;
    char when[40], next[16];

    if (rc || phase == COLLECT)
        return rc;
    prime_event_get_int(ev, "base_version", &base, NULL, NULL);
    if (atoi(r->values[version_col]) != base) {
        /* Optimistic locking: a save based on an older version is not
         * applied. The conflict is logged (and audited with issue 5). */
        prime_log(PRIME_LOG_WARN, "stale save rejected", "project=%s base_version=%d current_version=%s event_id=%s",
                  r->id, (int)base, r->values[version_col], text(ev, "event_id"));
        return FOLD_OK;
    }
    snprintf(next, sizeof(next), "%d", (int)base + 1);
    row_set(&f->sets[T_STUDIO_PROJECTS], r, version_col, next);
    set_project_data(f, r, text(ev, "project_data"), event_time(ev, when));
    touch(f, r, ev);
    return FOLD_OK;
}

static int project_metadata_updated(fold_t *f, const prime_event_t *ev, phase_t phase)
{
    row_t *r;
    int rc = project_row(f, ev, phase, &r);

    if (rc || phase == COLLECT)
        return rc;
    for (int i = 0; project_metadata[i]; i++)
        set_if_given(f, T_STUDIO_PROJECTS, r, ev, project_metadata[i], project_metadata[i]);
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
    list = cJSON_Parse(text(ev, "collaborators"));
    row_set(&f->sets[T_STUDIO_PROJECTS], r, column_index(T_STUDIO_PROJECTS, "collaborators"), text(ev, "collaborators"));
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
    row_delete(&f->sets[T_STUDIO_PROJECTS], r);
    drop_children(f, T_SESSION_STATES, "project_id", r->id);
    return FOLD_OK;
}

/* snapshot.created is emitted for it with issue 5; no row changes here. */
static int project_snapshot_requested(fold_t *f, const prime_event_t *ev, phase_t phase)
{
    row_t *r;
    return project_row(f, ev, phase, &r);
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
    row_t *project = rows_track(&f->sets[T_STUDIO_PROJECTS], text(ev, "project_id"));
    row_t *r = rows_track(&f->sets[T_SESSION_STATES], text(ev, "session_id"));
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
    row_set(s, r, column_index(T_SESSION_STATES, "device_id"), text(ev, "device_id"));
    row_set(s, r, column_index(T_SESSION_STATES, "session_token"), text(ev, "session_token_hash"));
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

/* --- mixx_recall --------------------------------------------------------------- */

/* Namespace of Mixx Recall row ids: uuid5(NAMESPACE_URL,
 * "https://prime.mixclub.studio/mixx_recall"). The name is owner, category
 * and recall_key joined by newlines, none of which may hold one. */
#define RECALL_NAMESPACE "f599dc62-f662-5188-baed-487f0b1131f6"

static row_t *recall_row(fold_t *f, const prime_event_t *ev)
{
    char name[512], id[PRIME_UUID_TEXT];
    int len = snprintf(name, sizeof(name), "%s\n%s\n%s", text(ev, "owner_user_id"), text(ev, "category"),
                       text(ev, "recall_key"));
    if (len < 0 || (size_t)len >= sizeof(name) || prime_uuid_v5(RECALL_NAMESPACE, name, (size_t)len, id))
        return NULL;
    return rows_track(&f->sets[T_MIXX_RECALL], id);
}

/* Data merged shallowly: the event's top-level members replace the row's. */
static void merge_data(fold_t *f, row_t *r, const char *update)
{
    size_t c = column_index(T_MIXX_RECALL, "data");
    cJSON *base = cJSON_Parse(r->values[c] ? r->values[c] : "{}"), *add = cJSON_Parse(update), *m;
    char *printed;

    if (!cJSON_IsObject(base)) {
        cJSON_Delete(base);
        base = cJSON_CreateObject();
    }
    for (m = add ? add->child : NULL; m; m = m->next) {
        if (cJSON_GetObjectItemCaseSensitive(base, m->string))
            cJSON_ReplaceItemInObjectCaseSensitive(base, m->string, cJSON_Duplicate(m, 1));
        else
            cJSON_AddItemToObject(base, m->string, cJSON_Duplicate(m, 1));
    }
    printed = cJSON_PrintUnformatted(base);
    row_set(&f->sets[T_MIXX_RECALL], r, c, printed);
    cJSON_free(printed);
    cJSON_Delete(base);
    cJSON_Delete(add);
}

static row_t *recall_create(fold_t *f, row_t *r, const prime_event_t *ev, const char *when)
{
    rowset_t *s = &f->sets[T_MIXX_RECALL];
    row_create(s, r, when);
    row_set(s, r, column_index(T_MIXX_RECALL, "user_id"), text(ev, "owner_user_id"));
    row_set(s, r, column_index(T_MIXX_RECALL, "category"), text(ev, "category"));
    row_set(s, r, column_index(T_MIXX_RECALL, "recall_key"), text(ev, "recall_key"));
    row_set(s, r, column_index(T_MIXX_RECALL, "data"), "{}");
    return r;
}

static int recall_set(fold_t *f, const prime_event_t *ev, phase_t phase)
{
    row_t *user = user_row(f, ev), *r = recall_row(f, ev);
    rowset_t *s = &f->sets[T_MIXX_RECALL];
    char when[PRIME_TIME_TEXT];

    if (phase == COLLECT)
        return FOLD_OK;
    if (!r)
        return refuse(f, "recall_key", "category and recall_key are too long together");
    if (!user->present)
        return missing(f, "prime_users", user->id);
    event_time(ev, when);
    if (!r->present)
        recall_create(f, r, ev, when);
    row_set(s, r, column_index(T_MIXX_RECALL, "data"), text(ev, "data"));
    set_if_given(f, T_MIXX_RECALL, r, ev, "confidence", "confidence");
    row_set(s, r, column_index(T_MIXX_RECALL, "updated_at"), when);
    return FOLD_OK;
}

/* A use counts, refreshes last_used_at, merges the settings in use, and
 * moves confidence a tenth of the way to 1 (two decimals, as the column). */
static int recall_used(fold_t *f, const prime_event_t *ev, phase_t phase)
{
    row_t *user = user_row(f, ev), *r = recall_row(f, ev);
    rowset_t *s = &f->sets[T_MIXX_RECALL];
    size_t count_col = column_index(T_MIXX_RECALL, "usage_count"), conf_col = column_index(T_MIXX_RECALL, "confidence");
    char when[PRIME_TIME_TEXT], buf[32];

    if (phase == COLLECT)
        return FOLD_OK;
    if (!r)
        return refuse(f, "recall_key", "category and recall_key are too long together");
    if (!user->present)
        return missing(f, "prime_users", user->id);
    event_time(ev, when);
    if (!r->present) {
        recall_create(f, r, ev, when); /* the first use creates the preference, used once */
    } else {
        double c = r->values[conf_col] ? atof(r->values[conf_col]) : 1.0;
        snprintf(buf, sizeof(buf), "%lld", atoll(r->values[count_col]) + 1);
        row_set(s, r, count_col, buf);
        snprintf(buf, sizeof(buf), "%.2f", (double)(long long)((c + (1.0 - c) * 0.1) * 100.0 + 0.5) / 100.0);
        row_set(s, r, conf_col, buf);
    }
    if (text(ev, "data"))
        merge_data(f, r, text(ev, "data"));
    row_set(s, r, column_index(T_MIXX_RECALL, "last_used_at"), when);
    row_set(s, r, column_index(T_MIXX_RECALL, "updated_at"), when);
    return FOLD_OK;
}

/* Forgetting what is not there is already done: one owner's events are in
 * order, so it was never set or was forgotten before. */
static int recall_forgotten(fold_t *f, const prime_event_t *ev, phase_t phase)
{
    row_t *r = recall_row(f, ev);

    if (phase == COLLECT || !r || !r->present)
        return FOLD_OK;
    row_delete(&f->sets[T_MIXX_RECALL], r);
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
    {"session.joined", session_joined},
    {"session.heartbeat", session_heartbeat},
    {"session.left", session_left},
    {"recall.set", recall_set},
    {"recall.used", recall_used},
    {"recall.forgotten", recall_forgotten},
};

static handler_fn handler_for(const prime_event_t *ev)
{
    const char *type = prime_event_type_name(prime_event_type(ev));
    for (size_t i = 0; i < sizeof(handlers) / sizeof(handlers[0]); i++)
        if (!strcmp(handlers[i].type, type))
            return handlers[i].fn;
    return NULL;
}

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

/* "table:id" of rows a pass created: what parked events may wait for. */
typedef struct keys {
    char **key;
    size_t n, cap;
} keys_t;

static void keys_add(keys_t *k, const char *table, const char *id)
{
    char buf[128];
    if (k->n == k->cap) {
        size_t cap = k->cap ? k->cap * 2 : 32;
        char **grown = realloc(k->key, cap * sizeof(*grown));
        if (!grown)
            return; /* only delays unparking until the parent is written again */
        k->key = grown;
        k->cap = cap;
    }
    snprintf(buf, sizeof(buf), "%s:%s", table, id);
    k->key[k->n++] = strdup(buf);
}

static void keys_clear(keys_t *k)
{
    for (size_t i = 0; i < k->n; i++)
        free(k->key[i]);
    k->n = 0;
}

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
    prime_buf_t keys;
    const char *params[2];
    PGresult *res;
    int any = 0;
    prime_errcode_t rc = PRIME_OK;

    prime_buf_init(&keys, 0);
    prime_buf_putc(&keys, '{');
    for (size_t i = 0; i < n; i++) {
        char *hex;
        items[i].blocked_by[0] = '\0';
        if (items[i].prev >= 0 || items[i].from_parking || !(hex = hex_of(items[i].record.key, items[i].record.key_len)))
            continue;
        prime_buf_printf(&keys, "%s\"%s\"", any ? "," : "", hex);
        any = 1;
        free(hex);
    }
    prime_buf_putc(&keys, '}');
    if (!any) {
        prime_buf_free(&keys);
        return PRIME_OK;
    }
    params[0] = prime_worker_group(w);
    params[1] = keys.data;
    res = PQexecParams(conn,
                       "SELECT DISTINCT ON (source_topic, record_key) source_topic, encode(record_key, 'hex'), waiting_for "
                       "FROM prime_pipeline.parked_events WHERE group_id = $1 AND encode(record_key, 'hex') = ANY($2::text[]) "
                       "ORDER BY source_topic, record_key, source_partition DESC, source_offset DESC",
                       2, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        rc = prime_pg_error(conn, res, "looking for parked streams", NULL, err);
    for (int r = 0; !rc && r < PQntuples(res); r++)
        for (size_t i = 0; i < n; i++) {
            char *hex;
            if (items[i].prev >= 0 || items[i].from_parking || strcmp(items[i].record.topic, PQgetvalue(res, r, 0)))
                continue;
            if ((hex = hex_of(items[i].record.key, items[i].record.key_len)) && !strcmp(hex, PQgetvalue(res, r, 1)))
                snprintf(items[i].blocked_by, sizeof(items[i].blocked_by), "%s", PQgetvalue(res, r, 2));
            free(hex);
        }
    PQclear(res);
    prime_buf_free(&keys);
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
 * earlier event waiting) are left WAITING, rows created are added to
 * created. Database errors are returned. */
static prime_errcode_t materialize(prime_worker_t *w, PGconn *conn, fold_t *f, item_t *items, size_t n,
                                   size_t *applied, keys_t *created, prime_error_t *err)
{
    prime_errcode_t rc = PRIME_OK;
    int progress = 1;

    for (int t = 0; t < T_COUNT; t++)
        f->sets[t].table = (table_id_t)t;
    link_streams(items, n);
    rc = find_parked_streams(w, conn, items, n, err);
    for (size_t i = 0; i < n; i++) {
        items[i].state = PENDING;
        items[i].waiting_for[0] = '\0';
        items[i].fn(f, items[i].event, COLLECT);
    }
    for (int t = 0; t < T_COUNT && !rc; t++)
        rc = rows_load(&f->sets[t], conn, err);
    /* In order; an event whose parent is missing waits for the rest of the
     * batch, where its parent may be (another topic, a later record). */
    while (!rc && progress) {
        progress = 0;
        for (size_t i = 0; i < n && !rc; i++) {
            int r;
            if (items[i].state != PENDING || !stream_clear(items, i))
                continue;
            r = items[i].fn(f, items[i].event, APPLY);
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
    for (int t = 0; t < T_COUNT && !rc; t++) {
        rc = rows_write(&f->sets[t], conn, err);
        for (size_t i = 0; i < f->sets[t].n && !rc; i++)
            if (f->sets[t].rows[i].present && !f->sets[t].rows[i].in_database)
                keys_add(created, tables[t].name, f->sets[t].rows[i].id);
    }
    for (int t = T_COUNT - 1; t >= 0 && !rc; t--)
        rc = rows_delete(&f->sets[t], conn, err);
    for (int t = 0; t < T_COUNT; t++)
        rows_clear(&f->sets[t]);
    return rc;
}

/* materialize(), and when the database refuses the set-based writes (a
 * constraint the fold cannot see), again event by event under savepoints,
 * dead-lettering only the events it refuses. */
static prime_errcode_t materialize_or_isolate(prime_worker_t *w, PGconn *conn, fold_t *f, item_t *items, size_t n,
                                              size_t *applied, keys_t *created, prime_error_t *err)
{
    prime_errcode_t rc;
    size_t applied_before = *applied, created_before = created->n;
    char msg[768];

    if ((rc = prime_pg_exec(conn, "SAVEPOINT pass", "SAVEPOINT", err)))
        return rc;
    rc = materialize(w, conn, f, items, n, applied, created, err);
    if (!rc || err->retriable || PQstatus(conn) != CONNECTION_OK)
        return rc;
    prime_log(PRIME_LOG_WARN, "batch refused by the database; applying event by event", "error=\"%s\"",
              prime_log_value(err->message, msg, sizeof(msg)));
    prime_error_clear(err);
    if ((rc = prime_pg_exec(conn, "ROLLBACK TO SAVEPOINT pass", "ROLLBACK TO SAVEPOINT", err)))
        return rc;
    *applied = applied_before;
    while (created->n > created_before)
        free(created->key[--created->n]);
    link_streams(items, n);
    for (size_t i = 0; i < n && !rc; i++) {
        prime_error_t why;
        long prev = items[i].prev;
        prime_error_clear(&why);
        if (prev >= 0 && items[prev].state == WAITING) {
            /* Behind a waiting event of its stream: waits with it. */
            items[i].state = WAITING;
            copy_key(items[i].waiting_for, items[prev].waiting_for);
            continue;
        }
        if ((rc = prime_pg_exec(conn, "SAVEPOINT one", "SAVEPOINT", err)))
            break;
        if (materialize(w, conn, f, &items[i], 1, applied, created, &why) == PRIME_OK) {
            rc = prime_pg_exec(conn, "RELEASE SAVEPOINT one", "RELEASE", err);
        } else if (why.retriable || PQstatus(conn) != CONNECTION_OK) {
            *err = why;
            rc = why.code;
        } else if (!(rc = prime_pg_exec(conn, "ROLLBACK TO SAVEPOINT one", "ROLLBACK TO SAVEPOINT", err))) {
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
    prime_event_t *ev = NULL;
    handler_fn fn;

    *usable = false;
    prime_error_clear(&why);
    if (prime_event_decode(reg, r->value, r->len, &ev, &why) || prime_event_validate(ev, &why)) {
        prime_event_free(ev);
        return prime_worker_dead_letter(w, r, &why, err);
    }
    if (!(fn = handler_for(ev))) {
        prime_error_set(&why, PRIME_ERR_UNKNOWN_TYPE, "type", "%s is not materialized by this worker",
                        prime_event_type_name(prime_event_type(ev)));
        prime_event_free(ev);
        return prime_worker_dead_letter(w, r, &why, err);
    }
    *out = (item_t){.record = *r, .event = ev, .fn = fn};
    *usable = true;
    return PRIME_OK;
}

/* Parks the WAITING items, in the batch's transaction. */
static prime_errcode_t park(prime_worker_t *w, PGconn *conn, item_t *items, size_t n, prime_error_t *err)
{
    for (size_t i = 0; i < n; i++) {
        char part[16], offset[24];
        const char *params[8];
        int lengths[8] = {0}, formats[8] = {0};
        PGresult *res;
        prime_errcode_t rc = PRIME_OK;

        if (items[i].state != WAITING)
            continue;
        snprintf(part, sizeof(part), "%d", (int)items[i].record.partition);
        snprintf(offset, sizeof(offset), "%lld", (long long)items[i].record.offset);
        params[0] = prime_worker_group(w);
        params[1] = items[i].record.topic;
        params[2] = part;
        params[3] = offset;
        params[4] = items[i].waiting_for;
        params[5] = items[i].record.key;
        lengths[5] = (int)items[i].record.key_len;
        formats[5] = 1;
        params[6] = items[i].record.value;
        lengths[6] = (int)items[i].record.len;
        formats[6] = 1;
        params[7] = "parent row not written yet";
        res = PQexecParams(conn,
                           "INSERT INTO prime_pipeline.parked_events (group_id, source_topic, source_partition, "
                           "source_offset, waiting_for, record_key, record_value, reason) "
                           "VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (group_id, source_topic, "
                           "source_partition, source_offset) DO UPDATE SET waiting_for = EXCLUDED.waiting_for",
                           8, NULL, params, lengths, formats, 0);
        if (PQresultStatus(res) != PGRES_COMMAND_OK)
            rc = prime_pg_error(conn, res, "parking an event", NULL, err);
        PQclear(res);
        if (rc)
            return rc;
        prime_log(PRIME_LOG_INFO, "parked until its parent is written", "topic=%s partition=%d offset=%lld waiting_for=%s",
                  items[i].record.topic, (int)items[i].record.partition, (long long)items[i].record.offset,
                  items[i].waiting_for);
    }
    return PRIME_OK;
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

static prime_errcode_t take_parked(prime_worker_t *w, PGconn *conn, const prime_registry_t *reg, const char *where,
                                   const char *arg, parked_t *out, bool decode, prime_error_t *err)
{
    char sql[512];
    const char *params[2] = {prime_worker_group(w), arg};
    PGresult *res;
    prime_errcode_t rc = PRIME_OK;
    int rows;

    memset(out, 0, sizeof(*out));
    snprintf(sql, sizeof(sql),
             "DELETE FROM prime_pipeline.parked_events WHERE group_id = $1 AND %s "
             "RETURNING source_topic, source_partition, source_offset, record_key, record_value, waiting_for",
             where);
    res = PQexecParams(conn, sql, 2, NULL, params, NULL, NULL, 0);
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
    if (!rc && out->n > 1) {
        /* RETURNING has no ORDER BY: sort by source coordinates. */
        for (size_t i = 1; i < out->n; i++)
            for (size_t j = i; j > 0; j--) {
                item_t *a = &out->items[j - 1], *b = &out->items[j];
                int c = strcmp(a->record.topic, b->record.topic);
                if (c < 0 || (c == 0 && (a->record.partition < b->record.partition ||
                                         (a->record.partition == b->record.partition && a->record.offset < b->record.offset))))
                    break;
                item_t tmp = *a;
                *a = *b;
                *b = tmp;
            }
    }
    return rc;
}

static char *keys_literal(const keys_t *k)
{
    size_t len = 3;
    char *out, *p;
    for (size_t i = 0; i < k->n; i++)
        len += strlen(k->key[i]) + 3;
    p = out = malloc(len);
    *p++ = '{';
    for (size_t i = 0; i < k->n; i++)
        p += sprintf(p, "%s\"%s\"", i ? "," : "", k->key[i]);
    *p++ = '}';
    *p = '\0';
    return out;
}

static prime_errcode_t apply(prime_worker_t *w, PGconn *conn, const prime_record_t *records, size_t n, void *ctx,
                             prime_error_t *err)
{
    materializer_t *m = ctx;
    item_t *items = calloc(n ? n : 1, sizeof(*items));
    keys_t created = {0}, next = {0};
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
        rc = materialize_or_isolate(w, conn, &m->fold, items, count, &applied, &created, err);
    if (!rc)
        rc = park(w, conn, items, count, err);
    /* Rows this batch created may be what parked events wait for; those
     * events may create rows others wait for, and so on. */
    while (!rc && created.n) {
        char *wanted = keys_literal(&created);
        parked_t p;
        rc = take_parked(w, conn, m->reg, "waiting_for = ANY($2::text[])", wanted, &p, true, err);
        free(wanted);
        if (!rc && p.n) {
            prime_log(PRIME_LOG_INFO, "unparking events whose parent was written", "events=%zu", p.n);
            rc = materialize_or_isolate(w, conn, &m->fold, p.items, p.n, &applied, &next, err);
            if (!rc)
                rc = park(w, conn, p.items, p.n, err);
        }
        parked_free(&p);
        keys_clear(&created);
        { keys_t swap = created; created = next; next = swap; }
    }
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
    keys_clear(&created);
    keys_clear(&next);
    free(created.key);
    free(next.key);
    for (size_t i = 0; i < count; i++)
        prime_event_free(items[i].event);
    free(items);
    return rc;
}

int main(int argc, char **argv)
{
    static const char *const topics[] = {"prime.users", "prime.projects", "prime.sessions", "prime.recall", NULL};
    prime_worker_conf_t conf;
    materializer_t m = {0};
    prime_error_t err;
    int rc = prime_worker_conf_parse(&conf, "materializer", topics, argc, argv);

    if (rc)
        return rc < 0 ? 0 : rc;
    prime_error_clear(&err);
    if (!(m.reg = prime_registry_new(&err))) {
        fprintf(stderr, "prime-materializer: %s\n", err.message);
        return 1;
    }
    m.park_max_seconds = conf.park_max_seconds;
    rc = prime_worker_run(&conf, apply, &m);
    for (int t = 0; t < T_COUNT; t++)
        free(m.fold.sets[t].rows);
    prime_registry_free(m.reg);
    return rc;
}
