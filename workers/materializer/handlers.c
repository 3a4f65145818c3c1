/* How each event type changes rows (docs/materializer.md, "Rules the fold
 * applies"): the rules only, one function per event type, grouped by table.
 * Every handler runs twice, COLLECT to name the rows it needs, APPLY to
 * change them in memory (the contract is in fold.h). */
#include "fold.h"
#include "prime/jsontext.h"
#include "prime/log.h"
#include "prime/time.h"
#include "prime/uuid.h"
#include "prime/version.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* fold_track of the row of table t that the event's field names. */
static fold_result_t track(fold_t *f, table_id_t t, const prime_event_t *ev, const char *field, row_t **out)
{
    return fold_track(f, t, prime_event_string(ev, field), field, out);
}

/* Who may publish an event (DESIGN.md 3.7: an event changes only what its
 * actor may change; docs/materializer.md, "Who may change what"). */
typedef enum who {
    BY_OWNER,    /* the actor is the event's owner (and so the row's) */
    BY_EDITOR,   /* the actor is the project's owner or an editing collaborator */
    BY_PIPELINE, /* derived by the pipeline (snapshot.created, audio.analyzed): its actor is the cause's */
} who_t;

static const char *actor_of(const prime_event_t *ev)
{
    const char *actor = prime_event_string(ev, "actor_user_id");
    return actor ? actor : "";
}

/* FOLD_REFUSED, on the event's merits (a replay is refused again): the
 * actor may not do this to what. */
static fold_result_t refuse_actor(fold_t *f, const prime_event_t *ev, const char *what, const char *because)
{
    char message[240];
    snprintf(message, sizeof(message), "actor %s may not %s %s: %s", actor_of(ev),
             prime_event_type_name(prime_event_type(ev)), what, because);
    return fold_refuse(f, "actor_user_id", message);
}

/* BY_OWNER: the actor is the event's owner, the user themself. */
static fold_result_t actor_is_owner(fold_t *f, const prime_event_t *ev, const char *what)
{
    const char *owner = prime_event_string(ev, "owner_user_id");
    if (owner && !strcasecmp(actor_of(ev), owner))
        return FOLD_OK;
    return refuse_actor(f, ev, what, "not its owner");
}

/* Collaborator roles that edit a project (studio_projects.collaborators[].role;
 * any other role, viewer or commenter, only looks). */
static bool editing_role(const char *role)
{
    return role && (!strcmp(role, "owner") || !strcmp(role, "admin") || !strcmp(role, "editor"));
}

/* BY_EDITOR on project row p (present): the actor is its owner, or in its
 * collaborators with an editing role (ids there are canonical: the
 * materializer stores them so). */
static fold_result_t actor_may_edit(fold_t *f, const prime_event_t *ev, const row_t *p)
{
    const char *actor = actor_of(ev), *list_text = p->values[C_studio_projects_collaborators];
    cJSON *list, *item;
    bool editor = false;
    char what[64];

    if (!strcasecmp(actor, p->values[C_studio_projects_user_id]))
        return FOLD_OK;
    /* The stored list is jsonb's: NULL here is out of memory, not a refusal. */
    if (!(list = prime_json_parse(list_text ? list_text : "[]")))
        return fold_oom(f, "reading the collaborators");
    cJSON_ArrayForEach(item, list)
    {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(item, "user_id");
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(item, "role");
        if (cJSON_IsString(id) && !strcasecmp(id->valuestring, actor) && editing_role(cJSON_GetStringValue(role)))
            editor = true;
    }
    cJSON_Delete(list);
    if (editor)
        return FOLD_OK;
    snprintf(what, sizeof(what), "on project %s", p->id);
    return refuse_actor(f, ev, what, "not its owner nor an editor");
}

/* The row of table t whose id is the event's id_field, for an event that
 * changes it: it must exist (else the event waits for it) and belong to the
 * event's owner (else the event is refused: the key, and so the order, is
 * the owner's), and the actor must be one who may change it (who). */
static fold_result_t owned_row(fold_t *f, const prime_event_t *ev, phase_t phase, table_id_t t, size_t owner_col,
                               const char *id_field, who_t who, row_t **out)
{
    const char *owner = prime_event_string(ev, "owner_user_id");
    const char *row_owner;
    row_t *r;
    fold_result_t rc = track(f, t, ev, id_field, out);

    if (rc || phase == COLLECT)
        return rc;
    r = *out;
    if (!r->present)
        return fold_missing(f, t, r->id);
    row_owner = r->values[owner_col];
    if (strcmp(row_owner, owner)) {
        char message[200];
        snprintf(message, sizeof(message), "the %s row belongs to %s, the event names %s", tables[t].name, row_owner,
                 owner);
        return fold_refuse(f, "owner_user_id", message);
    }
    if (who == BY_OWNER)
        return actor_is_owner(f, ev, tables[t].name);
    if (who == BY_EDITOR && t == T_STUDIO_PROJECTS)
        return actor_may_edit(f, ev, r);
    return FOLD_OK;
}

/* Column c of table t <- json, printed; frees json. Out of memory (json
 * NULL, or not printed) fails the fold: a list is never written as NULL. */
static void set_json(fold_t *f, table_id_t t, row_t *r, size_t c, cJSON *json)
{
    char *printed = json ? cJSON_PrintUnformatted(json) : NULL;

    if (printed)
        row_set(&f->sets[t], r, c, printed);
    else
        fold_oom(f, "printing JSON");
    cJSON_free(printed);
    cJSON_Delete(json);
}

/* --- prime_users ------------------------------------------------------------- */

/* The event's owner's row. */
static fold_result_t user_row(fold_t *f, const prime_event_t *ev, row_t **out)
{
    fold_result_t rc = actor_is_owner(f, ev, "for user");
    return rc ? rc : track(f, T_PRIME_USERS, ev, "owner_user_id", out);
}

static fold_result_t user_registered(fold_t *f, const prime_event_t *ev, phase_t phase)
{
    static const size_t fields[] = {
        C_prime_users_email, C_prime_users_username, C_prime_users_display_name, C_prime_users_avatar_url,
        C_prime_users_bio, C_prime_users_preferred_genres, C_prime_users_default_bpm, C_prime_users_default_key,
        C_prime_users_preferred_lufs_target, C_prime_users_email_verified,
    };
    row_t *r;
    fold_result_t rc = user_row(f, ev, &r);
    char when[40];

    if (rc || phase == COLLECT)
        return rc;
    if (r->present) /* the same user registered again: the first registration stands */
        return fold_refuse(f, "owner_user_id", "the user is already registered");
    row_create(&f->sets[T_PRIME_USERS], r, fold_event_time(ev, when));
    FOLD_SET_GIVEN(f, T_PRIME_USERS, r, ev, fields);
    fold_set_if_given(f, T_PRIME_USERS, r, ev, "device_id", C_prime_users_last_active_device_id);
    return FOLD_OK;
}

static fold_result_t user_profile_updated(fold_t *f, const prime_event_t *ev, phase_t phase)
{
    static const size_t fields[] = {
        C_prime_users_email, C_prime_users_username, C_prime_users_display_name, C_prime_users_avatar_url,
        C_prime_users_bio, C_prime_users_preferred_genres, C_prime_users_default_bpm, C_prime_users_default_key,
        C_prime_users_preferred_lufs_target,
    };
    row_t *r;
    fold_result_t rc = user_row(f, ev, &r);
    char when[40];

    if (rc || phase == COLLECT)
        return rc;
    if (!r->present)
        return fold_missing(f, T_PRIME_USERS, r->id);
    FOLD_SET_GIVEN(f, T_PRIME_USERS, r, ev, fields);
    row_set(&f->sets[T_PRIME_USERS], r, C_prime_users_updated_at, fold_event_time(ev, when));
    return FOLD_OK;
}

static fold_result_t user_device_registered(fold_t *f, const prime_event_t *ev, phase_t phase)
{
    row_t *r;
    fold_result_t rc = user_row(f, ev, &r);
    size_t devices_col = C_prime_users_devices;
    const char *device = prime_event_string(ev, "registered_device_id");
    cJSON *list, *entry, *item;
    char when[40];

    if (rc || phase == COLLECT)
        return rc;
    if (!r->present)
        return fold_missing(f, T_PRIME_USERS, r->id);
    list = prime_json_parse(r->values[devices_col] ? r->values[devices_col] : "[]");
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
    cJSON_AddStringToObject(entry, "registered_at", fold_event_time(ev, when));
    if (!cJSON_AddItemToArray(list, entry)) {
        cJSON_Delete(entry);
        cJSON_Delete(list);
        return fold_oom(f, "adding a device");
    }
    set_json(f, T_PRIME_USERS, r, devices_col, list);
    row_set(&f->sets[T_PRIME_USERS], r, C_prime_users_last_active_device_id, device);
    row_set(&f->sets[T_PRIME_USERS], r, C_prime_users_updated_at, when);
    return FOLD_OK;
}

static fold_result_t user_logged_in(fold_t *f, const prime_event_t *ev, phase_t phase)
{
    row_t *r, *credential = NULL;
    char when[PRIME_TIME_TEXT];
    fold_result_t rc;

    if ((rc = user_row(f, ev, &r)))
        return rc;
    /* The credential used, when named: on prime.auth, so it may come later. */
    if (prime_event_string(ev, "credential_id") &&
        (rc = owned_row(f, ev, phase, T_AUTH_CREDENTIALS, C_auth_credentials_user_id, "credential_id", BY_OWNER,
                        &credential)))
        return rc;
    if (phase == COLLECT)
        return FOLD_OK;
    if (!r->present)
        return fold_missing(f, T_PRIME_USERS, r->id);
    fold_event_time(ev, when);
    row_set(&f->sets[T_PRIME_USERS], r, C_prime_users_last_login_at, when);
    fold_set_if_given(f, T_PRIME_USERS, r, ev, "device_id", C_prime_users_last_active_device_id);
    if (credential)
        row_set(&f->sets[T_AUTH_CREDENTIALS], credential, C_auth_credentials_last_login_at, when);
    return FOLD_OK;
}

static fold_result_t user_deleted(fold_t *f, const prime_event_t *ev, phase_t phase)
{
    row_t *r;
    fold_result_t rc = user_row(f, ev, &r);

    if (rc || phase == COLLECT)
        return rc;
    if (!r->present)
        return fold_missing(f, T_PRIME_USERS, r->id);
    fold_delete(f, T_PRIME_USERS, r);
    return FOLD_OK;
}

/* --- studio_projects --------------------------------------------------------- */

/* The project row, its owner checked (the key, and so the order, is the
 * owner's). */
static fold_result_t project_row(fold_t *f, const prime_event_t *ev, phase_t phase, who_t who, row_t **out)
{
    return owned_row(f, ev, phase, T_STUDIO_PROJECTS, C_studio_projects_user_id, "project_id", who, out);
}

static void project_touch(fold_t *f, row_t *r, const prime_event_t *ev)
{
    char when[40];
    row_set(&f->sets[T_STUDIO_PROJECTS], r, C_studio_projects_updated_at, fold_event_time(ev, when));
}

static void set_project_data(fold_t *f, row_t *r, const char *json, const char *when)
{
    char size[24];
    snprintf(size, sizeof(size), "%zu", strlen(json));
    row_set(&f->sets[T_STUDIO_PROJECTS], r, C_studio_projects_project_data, json);
    row_set(&f->sets[T_STUDIO_PROJECTS], r, C_studio_projects_project_size_bytes, size);
    row_set(&f->sets[T_STUDIO_PROJECTS], r, C_studio_projects_last_saved_at, when);
}

static const size_t project_metadata[] = {
    C_studio_projects_name, C_studio_projects_description, C_studio_projects_bpm, C_studio_projects_key,
    C_studio_projects_time_signature, C_studio_projects_sample_rate, C_studio_projects_bit_depth,
    C_studio_projects_target_lufs, C_studio_projects_tags, C_studio_projects_genre, C_studio_projects_mood,
    C_studio_projects_audio_files_storage_path, C_studio_projects_stems_storage_path,
    C_studio_projects_snapshots_storage_path,
};

static fold_result_t project_created(fold_t *f, const prime_event_t *ev, phase_t phase)
{
    row_t *user, *r;
    char when[40];
    fold_result_t rc;

    if ((rc = user_row(f, ev, &user)) || (rc = track(f, T_STUDIO_PROJECTS, ev, "project_id", &r)) || phase == COLLECT)
        return rc;
    if (!user->present)
        return fold_missing(f, T_PRIME_USERS, user->id);
    if (r->present)
        return fold_refuse(f, "project_id", "the project exists already");
    row_create(&f->sets[T_STUDIO_PROJECTS], r, fold_event_time(ev, when));
    row_set(&f->sets[T_STUDIO_PROJECTS], r, C_studio_projects_user_id, user->id);
    FOLD_SET_GIVEN(f, T_STUDIO_PROJECTS, r, ev, project_metadata);
    /* Creating a project saves its first version. */
    set_project_data(f, r, prime_event_string(ev, "project_data"), when);
    return FOLD_OK;
}

/* A new version of the project: its project_data, version base + 1, and
 * the auto snapshot when the version reaches the policy's multiple. */
static void save_version(fold_t *f, row_t *r, const prime_event_t *ev, int base, const char *project_data)
{
    char when[40], next[16];

    snprintf(next, sizeof(next), "%d", base + 1);
    row_set(&f->sets[T_STUDIO_PROJECTS], r, C_studio_projects_project_version, next);
    set_project_data(f, r, project_data, fold_event_time(ev, when));
    project_touch(f, r, ev);
    if (f->snapshot_every > 0 && (base + 1) % f->snapshot_every == 0)
        fold_want_snapshot(f, r, "auto", NULL);
}

static fold_result_t project_saved(fold_t *f, const prime_event_t *ev, phase_t phase)
{
    row_t *r;
    fold_result_t rc = project_row(f, ev, phase, BY_EDITOR, &r);
    size_t version_col = C_studio_projects_project_version;
    int32_t base = 0;

    if (rc)
        return rc;
    if (phase == COLLECT) {
        if (f->snapshot_every > 0)
            fold_need_mixes(f, r->id);
        return FOLD_OK;
    }
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

static fold_result_t project_metadata_updated(fold_t *f, const prime_event_t *ev, phase_t phase)
{
    row_t *r;
    fold_result_t rc = project_row(f, ev, phase, BY_OWNER, &r);

    if (rc || phase == COLLECT)
        return rc;
    FOLD_SET_GIVEN(f, T_STUDIO_PROJECTS, r, ev, project_metadata);
    project_touch(f, r, ev);
    return FOLD_OK;
}

static fold_result_t project_opened(fold_t *f, const prime_event_t *ev, phase_t phase)
{
    row_t *r;
    fold_result_t rc = project_row(f, ev, phase, BY_EDITOR, &r);
    char when[40];

    if (rc || phase == COLLECT)
        return rc;
    row_set(&f->sets[T_STUDIO_PROJECTS], r, C_studio_projects_last_opened_at, fold_event_time(ev, when));
    return FOLD_OK;
}

static fold_result_t project_collaborators_changed(fold_t *f, const prime_event_t *ev, phase_t phase)
{
    row_t *r;
    fold_result_t rc = project_row(f, ev, phase, BY_OWNER, &r);
    cJSON *list, *item;
    int i = 0;

    if (rc || phase == COLLECT)
        return rc;
    list = prime_json_parse(prime_event_string(ev, "collaborators"));
    if (!cJSON_IsArray(list)) {
        cJSON_Delete(list);
        return fold_refuse(f, "collaborators", "is not a JSON array of {user_id, role, permissions}");
    }
    /* Each collaborator's id in its one spelling (DESIGN.md 3.7): the
     * editor check and a lookup by the canonical id find it. */
    cJSON_ArrayForEach(item, list)
    {
        cJSON *id = cJSON_GetObjectItemCaseSensitive(item, "user_id");
        char canonical[PRIME_UUID_TEXT];
        if (!cJSON_IsString(id) || !prime_uuid_valid(id->valuestring, strlen(id->valuestring))) {
            char message[120];
            snprintf(message, sizeof(message), "collaborators[%d].user_id is not a UUID", i);
            cJSON_Delete(list);
            return fold_refuse(f, "collaborators", message);
        }
        prime_uuid_canonical(id->valuestring, canonical);
        if (!cJSON_SetValuestring(id, canonical)) {
            cJSON_Delete(list);
            return fold_oom(f, "a collaborator's id");
        }
        i++;
    }
    row_set(&f->sets[T_STUDIO_PROJECTS], r, C_studio_projects_is_collaborative, i > 0 ? "t" : "f");
    set_json(f, T_STUDIO_PROJECTS, r, C_studio_projects_collaborators, list);
    project_touch(f, r, ev);
    return FOLD_OK;
}

static fold_result_t project_deleted(fold_t *f, const prime_event_t *ev, phase_t phase)
{
    row_t *r;
    fold_result_t rc = project_row(f, ev, phase, BY_OWNER, &r);

    if (rc || phase == COLLECT)
        return rc;
    fold_delete(f, T_STUDIO_PROJECTS, r);
    return FOLD_OK;
}

/* The project as it is now becomes a snapshot (derived.c emits
 * snapshot.created; the snapshot writer stores it). */
static fold_result_t project_snapshot_requested(fold_t *f, const prime_event_t *ev, phase_t phase)
{
    row_t *r;
    fold_result_t rc = project_row(f, ev, phase, BY_OWNER, &r);

    if (rc)
        return rc;
    if (phase == COLLECT) {
        fold_need_mixes(f, r->id);
        return FOLD_OK;
    }
    fold_want_snapshot(f, r, prime_event_string(ev, "snapshot_type"), ev);
    return FOLD_OK;
}

/* A new save with the snapshot's project_data: the version moves forward.
 * The snapshot is written by the snapshot writer (another consumer group):
 * until it is there, the event waits (parked, unparked when it appears). */
static fold_result_t project_restored(fold_t *f, const prime_event_t *ev, phase_t phase)
{
    row_t *r, *snap;
    fold_result_t rc;
    const char *of;

    if ((rc = track(f, T_PROJECT_SNAPSHOTS, ev, "snapshot_id", &snap)) || (rc = project_row(f, ev, phase, BY_OWNER, &r)))
        return rc;
    if (phase == COLLECT) {
        if (f->snapshot_every > 0)
            fold_need_mixes(f, r->id);
        return FOLD_OK;
    }
    if (!snap->present)
        return fold_missing(f, T_PROJECT_SNAPSHOTS, snap->id);
    of = snap->values[C_project_snapshots_project_id];
    if (strcasecmp(of, r->id)) {
        char message[160];
        snprintf(message, sizeof(message), "snapshot %s is of project %s, not %s", snap->id, of, r->id);
        return fold_refuse(f, "snapshot_id", message);
    }
    save_version(f, r, ev, atoi(r->values[C_studio_projects_project_version]),
                 snap->values[C_project_snapshots_project_data]);
    return FOLD_OK;
}

/* --- project_snapshots (the snapshot writer) ------------------------------ */

/* Stores a snapshot once: a snapshot emitted again has the same id (UUIDv5
 * of project, version and type) and changes nothing. */
static fold_result_t snapshot_created(fold_t *f, const prime_event_t *ev, phase_t phase)
{
    static const size_t given[] = {
        C_project_snapshots_project_id, C_project_snapshots_snapshot_type, C_project_snapshots_snapshot_name,
        C_project_snapshots_description, C_project_snapshots_project_data, C_project_snapshots_project_version,
        C_project_snapshots_audio_analysis, C_project_snapshots_musical_context,
    };
    row_t *project, *actor, *r;
    char when[40];
    fold_result_t rc;

    if ((rc = track(f, T_PRIME_USERS, ev, "actor_user_id", &actor)) ||
        (rc = track(f, T_PROJECT_SNAPSHOTS, ev, "snapshot_id", &r)) || (rc = project_row(f, ev, phase, BY_PIPELINE, &project)) ||
        phase == COLLECT)
        return rc;
    if (!actor->present) /* created_by references it */
        return fold_missing(f, T_PRIME_USERS, actor->id);
    if (r->present)
        return FOLD_OK;
    row_create(&f->sets[T_PROJECT_SNAPSHOTS], r, fold_event_time(ev, when));
    row_set(&f->sets[T_PROJECT_SNAPSHOTS], r, C_project_snapshots_user_id,
            prime_event_string(ev, "owner_user_id"));
    row_set(&f->sets[T_PROJECT_SNAPSHOTS], r, C_project_snapshots_created_by, actor->id);
    FOLD_SET_GIVEN(f, T_PROJECT_SNAPSHOTS, r, ev, given);
    return FOLD_OK;
}

/* --- session_states ---------------------------------------------------------- */

static fold_result_t session_row(fold_t *f, const prime_event_t *ev, phase_t phase, row_t **out)
{
    return owned_row(f, ev, phase, T_SESSION_STATES, C_session_states_user_id, "session_id", BY_OWNER, out);
}

static void set_presence(fold_t *f, row_t *r, const prime_event_t *ev)
{
    fold_set_if_given(f, T_SESSION_STATES, r, ev, "cursor_position", C_session_states_cursor_position);
    fold_set_if_given(f, T_SESSION_STATES, r, ev, "view_state", C_session_states_view_state);
    fold_set_if_given(f, T_SESSION_STATES, r, ev, "active_tool", C_session_states_active_tool);
}

static fold_result_t session_joined(fold_t *f, const prime_event_t *ev, phase_t phase)
{
    row_t *user, *project, *r;
    rowset_t *s = &f->sets[T_SESSION_STATES];
    char when[PRIME_TIME_TEXT];
    fold_result_t rc;

    if ((rc = user_row(f, ev, &user)) || (rc = track(f, T_STUDIO_PROJECTS, ev, "project_id", &project)) ||
        (rc = track(f, T_SESSION_STATES, ev, "session_id", &r)) || phase == COLLECT)
        return rc;
    if (!user->present)
        return fold_missing(f, T_PRIME_USERS, user->id);
    if (!project->present)
        return fold_missing(f, T_STUDIO_PROJECTS, project->id);
    if ((rc = actor_may_edit(f, ev, project)))
        return rc;
    if (r->present)
        return fold_refuse(f, "session_id", "the session exists already");
    row_create(s, r, fold_event_time(ev, when));
    row_set(s, r, C_session_states_project_id, project->id);
    row_set(s, r, C_session_states_user_id, user->id);
    row_set(s, r, C_session_states_device_id, prime_event_string(ev, "device_id"));
    row_set(s, r, C_session_states_session_token, prime_event_string(ev, "session_token_hash"));
    set_presence(f, r, ev);
    return FOLD_OK;
}

static fold_result_t session_heartbeat(fold_t *f, const prime_event_t *ev, phase_t phase)
{
    row_t *r;
    fold_result_t rc = session_row(f, ev, phase, &r);
    char when[PRIME_TIME_TEXT];

    if (rc || phase == COLLECT)
        return rc;
    fold_event_time(ev, when);
    row_set(&f->sets[T_SESSION_STATES], r, C_session_states_last_heartbeat, when);
    row_set(&f->sets[T_SESSION_STATES], r, C_session_states_updated_at, when);
    set_presence(f, r, ev);
    return FOLD_OK;
}

static fold_result_t session_left(fold_t *f, const prime_event_t *ev, phase_t phase)
{
    row_t *r;
    fold_result_t rc = session_row(f, ev, phase, &r);
    char when[PRIME_TIME_TEXT];

    if (rc || phase == COLLECT)
        return rc;
    row_set(&f->sets[T_SESSION_STATES], r, C_session_states_is_active, "f");
    row_set(&f->sets[T_SESSION_STATES], r, C_session_states_updated_at, fold_event_time(ev, when));
    return FOLD_OK;
}

/* --- audio_files ------------------------------------------------------------- */

static const size_t audio_columns[] = {
    C_audio_files_project_id, C_audio_files_filename, C_audio_files_original_filename, C_audio_files_file_path,
    C_audio_files_file_size_bytes, C_audio_files_mime_type, C_audio_files_duration_seconds, C_audio_files_sample_rate,
    C_audio_files_bit_depth, C_audio_files_channels, C_audio_files_format, C_audio_files_musical_context,
    C_audio_files_tags, C_audio_files_stem_type, C_audio_files_parent_file_id, C_audio_files_is_mix,
};

/* An upload: the owner must be registered, and the project and the parent
 * file (for a stem) written, before the file row is. The project may be
 * another user's: its editors upload to it. */
static fold_result_t audio_inserted(fold_t *f, const prime_event_t *ev, phase_t phase, bool stem)
{
    row_t *user, *r, *project = NULL, *parent = NULL;
    rowset_t *s = &f->sets[T_AUDIO_FILES];
    char when[PRIME_TIME_TEXT];
    fold_result_t rc;

    if ((rc = user_row(f, ev, &user)) || (rc = track(f, T_AUDIO_FILES, ev, "file_id", &r)))
        return rc;
    if (prime_event_string(ev, "project_id") && (rc = track(f, T_STUDIO_PROJECTS, ev, "project_id", &project)))
        return rc;
    if (stem && prime_event_string(ev, "parent_file_id") && (rc = track(f, T_AUDIO_FILES, ev, "parent_file_id", &parent)))
        return rc;
    if (phase == COLLECT)
        return FOLD_OK;
    if (!user->present)
        return fold_missing(f, T_PRIME_USERS, user->id);
    if (project && !project->present)
        return fold_missing(f, T_STUDIO_PROJECTS, project->id);
    if (project && (rc = actor_may_edit(f, ev, project)))
        return rc;
    if (parent && !parent->present)
        return fold_missing(f, T_AUDIO_FILES, parent->id);
    if (r->present)
        return fold_refuse(f, "file_id", "the file exists already");
    row_create(s, r, fold_event_time(ev, when));
    row_set(s, r, C_audio_files_user_id, user->id);
    FOLD_SET_GIVEN(f, T_AUDIO_FILES, r, ev, audio_columns);
    row_set(s, r, C_audio_files_is_stem, stem ? "t" : "f");
    return FOLD_OK;
}

static fold_result_t audio_file_uploaded(fold_t *f, const prime_event_t *ev, phase_t phase)
{
    return audio_inserted(f, ev, phase, false);
}

static fold_result_t audio_stem_uploaded(fold_t *f, const prime_event_t *ev, phase_t phase)
{
    return audio_inserted(f, ev, phase, true);
}

static fold_result_t audio_file_deleted(fold_t *f, const prime_event_t *ev, phase_t phase)
{
    row_t *r;
    fold_result_t rc = owned_row(f, ev, phase, T_AUDIO_FILES, C_audio_files_user_id, "file_id", BY_OWNER, &r);

    if (rc || phase == COLLECT)
        return rc;
    fold_delete(f, T_AUDIO_FILES, r);
    return FOLD_OK;
}

/* The analysis of a file: stored in audio_files.audio_analysis with its
 * analyzer_version, unless a newer version's analysis is there already; for
 * a project's mix, its integrated loudness and DR go to the project. */
static fold_result_t audio_analyzed(fold_t *f, const prime_event_t *ev, phase_t phase)
{
    static const size_t measured[] = {
        C_audio_files_duration_seconds, C_audio_files_sample_rate, C_audio_files_channels,
        C_audio_files_musical_context,
    };
    row_t *r, *project = NULL;
    fold_result_t rc = owned_row(f, ev, phase, T_AUDIO_FILES, C_audio_files_user_id, "file_id", BY_PIPELINE, &r);
    size_t analysis_col = C_audio_files_audio_analysis;
    const char *version = prime_event_string(ev, "analyzer_version"), *project_id;
    cJSON *analysis, *stored = NULL, *stored_version;
    char lufs[PRIME_TIME_TEXT + 8], dr[PRIME_TIME_TEXT + 8], *unused;

    if (rc || phase == COLLECT)
        return rc;
    if (r->values[analysis_col] && (stored = prime_json_parse(r->values[analysis_col]))) {
        stored_version = cJSON_GetObjectItemCaseSensitive(stored, "analyzer_version");
        if (cJSON_IsString(stored_version) && prime_version_cmp(stored_version->valuestring, version) > 0) {
            prime_log(PRIME_LOG_INFO, "older analysis not stored", "file=%s stored_version=%s event_version=%s", r->id,
                      stored_version->valuestring, version);
            cJSON_Delete(stored);
            return FOLD_OK;
        }
    }
    cJSON_Delete(stored);
    project_id = r->values[C_audio_files_project_id];
    if (project_id && !strcmp(r->values[C_audio_files_is_mix], "t")) {
        /* Which project is known only now that the file row is read. */
        if ((rc = fold_track(f, T_STUDIO_PROJECTS, project_id, "file_id", &project)))
            return rc;
        if (!project->loaded)
            return FOLD_NEED_ROWS;
    }
    analysis = prime_json_parse(prime_event_string(ev, "audio_analysis"));
    if (!cJSON_IsObject(analysis)) {
        cJSON_Delete(analysis);
        return fold_refuse(f, "audio_analysis", "is not a JSON object");
    }
    cJSON_DeleteItemFromObjectCaseSensitive(analysis, "analyzer_version");
    cJSON_AddStringToObject(analysis, "analyzer_version", version);
    set_json(f, T_AUDIO_FILES, r, analysis_col, analysis);
    FOLD_SET_GIVEN(f, T_AUDIO_FILES, r, ev, measured);
    if (project && project->present) {
        /* NULL when the mix has no defined figure (silence); the columns'
         * DECIMAL(5,2) rounds, half away from zero. */
        rowset_t *s = &f->sets[T_STUDIO_PROJECTS];
        row_set(s, project, C_studio_projects_current_lufs,
                fold_field_text(f, ev, "integrated_lufs", lufs, &unused));
        row_set(s, project, C_studio_projects_dynamic_range, fold_field_text(f, ev, "dynamic_range", dr, &unused));
    }
    return FOLD_OK;
}

/* Events the analyzer acts on, or that only record what it did: no row
 * changes here. */
static fold_result_t no_row_change(fold_t *f, const prime_event_t *ev, phase_t phase)
{
    (void)f;
    (void)ev;
    (void)phase;
    return FOLD_OK;
}

/* --- plugin_presets ------------------------------------------------------------ */

static const size_t preset_columns[] = {
    C_plugin_presets_name, C_plugin_presets_description, C_plugin_presets_plugin_type, C_plugin_presets_parameters,
    C_plugin_presets_is_public, C_plugin_presets_is_system_preset, C_plugin_presets_tags,
};

/* A system preset has no user (user_id NULL): the studio's own catalogue,
 * changed by whoever publishes it. Another user's preset may be used when
 * it is public, and changed never. */
static fold_result_t preset_row(fold_t *f, const prime_event_t *ev, phase_t phase, bool using, row_t **out)
{
    row_t *r;
    const char *row_owner;
    fold_result_t rc = actor_is_owner(f, ev, "for user");

    if (!rc)
        rc = track(f, T_PLUGIN_PRESETS, ev, "preset_id", out);
    if (rc || phase == COLLECT)
        return rc;
    r = *out;
    if (!r->present)
        return fold_missing(f, T_PLUGIN_PRESETS, r->id);
    row_owner = r->values[C_plugin_presets_user_id];
    if (!row_owner || !strcmp(row_owner, prime_event_string(ev, "owner_user_id")))
        return FOLD_OK;
    if (using && !strcmp(r->values[C_plugin_presets_is_public], "t"))
        return FOLD_OK;
    return fold_refuse(f, "owner_user_id", using ? "the preset is another user's and not public"
                                            : "the preset is another user's");
}

static fold_result_t preset_created(fold_t *f, const prime_event_t *ev, phase_t phase)
{
    row_t *user, *r;
    bool system = false;
    char when[PRIME_TIME_TEXT];
    fold_result_t rc;

    if ((rc = user_row(f, ev, &user)) || (rc = track(f, T_PLUGIN_PRESETS, ev, "preset_id", &r)) || phase == COLLECT)
        return rc;
    prime_event_get_bool(ev, "is_system_preset", &system, NULL, NULL);
    if (!system && !user->present)
        return fold_missing(f, T_PRIME_USERS, user->id);
    if (r->present)
        return fold_refuse(f, "preset_id", "the preset exists already");
    row_create(&f->sets[T_PLUGIN_PRESETS], r, fold_event_time(ev, when));
    row_set(&f->sets[T_PLUGIN_PRESETS], r, C_plugin_presets_user_id, system ? NULL : user->id);
    FOLD_SET_GIVEN(f, T_PLUGIN_PRESETS, r, ev, preset_columns);
    return FOLD_OK;
}

static fold_result_t preset_updated(fold_t *f, const prime_event_t *ev, phase_t phase)
{
    static const size_t changeable[] = {
        C_plugin_presets_name, C_plugin_presets_description, C_plugin_presets_parameters, C_plugin_presets_is_public,
        C_plugin_presets_tags,
    };
    row_t *r;
    fold_result_t rc = preset_row(f, ev, phase, false, &r);
    char when[PRIME_TIME_TEXT];

    if (rc || phase == COLLECT)
        return rc;
    FOLD_SET_GIVEN(f, T_PLUGIN_PRESETS, r, ev, changeable);
    row_set(&f->sets[T_PLUGIN_PRESETS], r, C_plugin_presets_updated_at, fold_event_time(ev, when));
    return FOLD_OK;
}

/* Uses come from every user of a public preset, in several partitions:
 * adding and keeping the latest time give the same row in any order. */
static fold_result_t preset_used(fold_t *f, const prime_event_t *ev, phase_t phase)
{
    row_t *r;
    fold_result_t rc = preset_row(f, ev, phase, true, &r);
    size_t count_col = C_plugin_presets_usage_count, used_col = C_plugin_presets_last_used_at;
    char when[PRIME_TIME_TEXT], count[24];
    int64_t micros = 0, last;

    if (rc || phase == COLLECT)
        return rc;
    snprintf(count, sizeof(count), "%lld", atoll(r->values[count_col]) + 1);
    row_set(&f->sets[T_PLUGIN_PRESETS], r, count_col, count);
    prime_event_get_long(ev, "occurred_at", &micros, NULL, NULL);
    if (!r->values[used_col] || prime_time_parse_rfc3339(r->values[used_col], &last) || last < micros)
        row_set(&f->sets[T_PLUGIN_PRESETS], r, used_col, fold_event_time(ev, when));
    return FOLD_OK;
}

static fold_result_t preset_deleted(fold_t *f, const prime_event_t *ev, phase_t phase)
{
    row_t *r;
    fold_result_t rc = preset_row(f, ev, phase, false, &r);

    if (rc || phase == COLLECT)
        return rc;
    fold_delete(f, T_PLUGIN_PRESETS, r);
    return FOLD_OK;
}

/* --- collaboration_sessions -------------------------------------------------- */

/* One participant entry; permissions as given (JSON) or null. NULL when
 * out of memory (the fold is then failed). */
static cJSON *participant(fold_t *f, const char *user_id, const char *role, const char *joined_at,
                          const char *permissions)
{
    cJSON *p = cJSON_CreateObject(), *perm = permissions ? prime_json_parse(permissions) : NULL;
    if (!p) {
        cJSON_Delete(perm);
        fold_oom(f, "a participant");
        return NULL;
    }
    cJSON_AddStringToObject(p, "user_id", user_id);
    cJSON_AddStringToObject(p, "role", role);
    cJSON_AddStringToObject(p, "joined_at", joined_at);
    cJSON_AddItemToObject(p, "permissions", perm ? perm : cJSON_CreateNull());
    return p;
}

/* The participants list without user_id's entry, plus entry when given. */
static void edit_participants(fold_t *f, row_t *r, const char *user_id, cJSON *entry)
{
    size_t c = C_collaboration_sessions_participants;
    cJSON *list = prime_json_parse(r->values[c] ? r->values[c] : "[]"), *item;

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
    if (entry && !cJSON_AddItemToArray(list, entry)) {
        cJSON_Delete(entry);
        cJSON_Delete(list);
        fold_oom(f, "adding a participant");
        return;
    }
    set_json(f, T_COLLABORATION_SESSIONS, r, c, list);
}

/* The session of a collab event: its events are the project owner's (the
 * key), which the project row says; an ended session takes no more. Its
 * actor is the project's owner or editor, or (self) the participant who
 * joins or leaves: a participant's role is the session's, it gives no right
 * on the project. */
static fold_result_t collab_row(fold_t *f, const prime_event_t *ev, phase_t phase, bool ending, bool self,
                                row_t **out)
{
    row_t *r, *project;
    const char *project_owner;
    fold_result_t rc = track(f, T_COLLABORATION_SESSIONS, ev, "collab_session_id", out);

    if (rc || phase == COLLECT)
        return rc;
    r = *out;
    if (!r->present)
        return fold_missing(f, T_COLLABORATION_SESSIONS, r->id);
    if ((rc = fold_track(f, T_STUDIO_PROJECTS, r->values[C_collaboration_sessions_project_id], "collab_session_id",
                         &project)))
        return rc;
    if (!project->loaded)
        return FOLD_NEED_ROWS;
    project_owner = project->present ? project->values[C_studio_projects_user_id] : NULL;
    if (project_owner && strcmp(project_owner, prime_event_string(ev, "owner_user_id")))
        return fold_refuse(f, "owner_user_id", "collaboration events are keyed by the project's owner");
    if (project->present && !(self && !strcasecmp(actor_of(ev), prime_event_string(ev, "user_id"))) &&
        (rc = actor_may_edit(f, ev, project)))
        return rc;
    if (!ending && r->values[C_collaboration_sessions_ended_at])
        return fold_refuse(f, "collab_session_id", "the collaboration session has ended");
    return FOLD_OK;
}

static fold_result_t collab_started(fold_t *f, const prime_event_t *ev, phase_t phase)
{
    row_t *project, *starter, *r;
    rowset_t *s = &f->sets[T_COLLABORATION_SESSIONS];
    char when[PRIME_TIME_TEXT];
    fold_result_t rc;

    if ((rc = track(f, T_PRIME_USERS, ev, "actor_user_id", &starter)) ||
        (rc = track(f, T_COLLABORATION_SESSIONS, ev, "collab_session_id", &r)) ||
        (rc = owned_row(f, ev, phase, T_STUDIO_PROJECTS, C_studio_projects_user_id, "project_id", BY_EDITOR, &project)) ||
        phase == COLLECT)
        return rc;
    if (!starter->present) /* started_by references prime_users */
        return fold_missing(f, T_PRIME_USERS, starter->id);
    if (r->present)
        return fold_refuse(f, "collab_session_id", "the collaboration session exists already");
    row_create(s, r, fold_event_time(ev, when));
    row_set(s, r, C_collaboration_sessions_project_id, project->id);
    row_set(s, r, C_collaboration_sessions_started_by, starter->id);
    fold_set_if_given(f, T_COLLABORATION_SESSIONS, r, ev, "session_name", C_collaboration_sessions_session_name);
    fold_set_if_given(f, T_COLLABORATION_SESSIONS, r, ev, "notes", C_collaboration_sessions_notes);
    edit_participants(f, r, starter->id, participant(f, starter->id, "host", when, NULL));
    return FOLD_OK;
}

static fold_result_t collab_participant_joined(fold_t *f, const prime_event_t *ev, phase_t phase)
{
    row_t *r;
    fold_result_t rc = collab_row(f, ev, phase, false, true, &r);
    char when[PRIME_TIME_TEXT];

    if (rc || phase == COLLECT)
        return rc;
    edit_participants(f, r, prime_event_string(ev, "user_id"),
                      participant(f, prime_event_string(ev, "user_id"), prime_event_string(ev, "role"),
                                  fold_event_time(ev, when), prime_event_string(ev, "permissions")));
    return FOLD_OK;
}

static fold_result_t collab_participant_left(fold_t *f, const prime_event_t *ev, phase_t phase)
{
    row_t *r;
    fold_result_t rc = collab_row(f, ev, phase, false, true, &r);

    if (rc || phase == COLLECT)
        return rc;
    edit_participants(f, r, prime_event_string(ev, "user_id"), NULL);
    return FOLD_OK;
}

static fold_result_t collab_ended(fold_t *f, const prime_event_t *ev, phase_t phase)
{
    row_t *r;
    fold_result_t rc = collab_row(f, ev, phase, true, false, &r);
    rowset_t *s = &f->sets[T_COLLABORATION_SESSIONS];
    char when[PRIME_TIME_TEXT];

    if (rc || phase == COLLECT)
        return rc;
    if (r->values[C_collaboration_sessions_ended_at])
        return FOLD_OK; /* ended already: the first end stands */
    row_set(s, r, C_collaboration_sessions_is_active, "f");
    row_set(s, r, C_collaboration_sessions_ended_at, fold_event_time(ev, when));
    fold_set_if_given(f, T_COLLABORATION_SESSIONS, r, ev, "notes", C_collaboration_sessions_notes);
    return FOLD_OK;
}

/* --- auth_credentials and auth_sessions --------------------------------------- */

/* Auth events carry hashes only (the validator refuses plaintext); the
 * *_hash fields land in the seed's token columns. */
static fold_result_t auth_credential_created(fold_t *f, const prime_event_t *ev, phase_t phase)
{
    static const size_t columns[] = {
        C_auth_credentials_credential_type, C_auth_credentials_email, C_auth_credentials_password_hash,
        C_auth_credentials_salt, C_auth_credentials_oauth_provider, C_auth_credentials_oauth_id,
        C_auth_credentials_oauth_data, C_auth_credentials_verification_expires_at,
    };
    row_t *user, *r;
    rowset_t *s = &f->sets[T_AUTH_CREDENTIALS];
    char when[PRIME_TIME_TEXT];
    fold_result_t rc;

    if ((rc = user_row(f, ev, &user)) || (rc = track(f, T_AUTH_CREDENTIALS, ev, "credential_id", &r)) || phase == COLLECT)
        return rc;
    if (!user->present)
        return fold_missing(f, T_PRIME_USERS, user->id);
    if (r->present)
        return fold_refuse(f, "credential_id", "the credential exists already");
    row_create(s, r, fold_event_time(ev, when));
    row_set(s, r, C_auth_credentials_user_id, user->id);
    FOLD_SET_GIVEN(f, T_AUTH_CREDENTIALS, r, ev, columns);
    fold_set_if_given(f, T_AUTH_CREDENTIALS, r, ev, "verification_token_hash", C_auth_credentials_verification_token);
    return FOLD_OK;
}

static void credential_touch(fold_t *f, row_t *r, const prime_event_t *ev)
{
    char when[PRIME_TIME_TEXT];
    row_set(&f->sets[T_AUTH_CREDENTIALS], r, C_auth_credentials_updated_at, fold_event_time(ev, when));
}

static fold_result_t auth_credential_verified(fold_t *f, const prime_event_t *ev, phase_t phase)
{
    row_t *user, *r;
    rowset_t *s = &f->sets[T_AUTH_CREDENTIALS];
    fold_result_t rc;

    if ((rc = user_row(f, ev, &user)) ||
        (rc = owned_row(f, ev, phase, T_AUTH_CREDENTIALS, C_auth_credentials_user_id, "credential_id", BY_OWNER, &r)) ||
        phase == COLLECT)
        return rc;
    row_set(s, r, C_auth_credentials_email_verified, "t");
    row_set(s, r, C_auth_credentials_verification_token, NULL);
    row_set(s, r, C_auth_credentials_verification_expires_at, NULL);
    credential_touch(f, r, ev);
    if (user->present)
        row_set(&f->sets[T_PRIME_USERS], user, C_prime_users_email_verified, "t");
    return FOLD_OK;
}

static fold_result_t auth_password_changed(fold_t *f, const prime_event_t *ev, phase_t phase)
{
    row_t *r;
    rowset_t *s = &f->sets[T_AUTH_CREDENTIALS];
    fold_result_t rc = owned_row(f, ev, phase, T_AUTH_CREDENTIALS, C_auth_credentials_user_id, "credential_id", BY_OWNER, &r);

    if (rc || phase == COLLECT)
        return rc;
    row_set(s, r, C_auth_credentials_password_hash, prime_event_string(ev, "password_hash"));
    /* A NULL salt: the hash carries its own. */
    row_set(s, r, C_auth_credentials_salt, prime_event_string(ev, "salt"));
    row_set(s, r, C_auth_credentials_reset_token, NULL);
    row_set(s, r, C_auth_credentials_reset_expires_at, NULL);
    credential_touch(f, r, ev);
    return FOLD_OK;
}

static fold_result_t auth_reset_requested(fold_t *f, const prime_event_t *ev, phase_t phase)
{
    row_t *r;
    fold_result_t rc = owned_row(f, ev, phase, T_AUTH_CREDENTIALS, C_auth_credentials_user_id, "credential_id", BY_OWNER, &r);

    if (rc || phase == COLLECT)
        return rc;
    fold_set_if_given(f, T_AUTH_CREDENTIALS, r, ev, "reset_token_hash", C_auth_credentials_reset_token);
    fold_set_if_given(f, T_AUTH_CREDENTIALS, r, ev, "reset_expires_at", C_auth_credentials_reset_expires_at);
    credential_touch(f, r, ev);
    return FOLD_OK;
}

static const size_t auth_token_columns[] = {
    C_auth_sessions_access_token_hash, C_auth_sessions_refresh_token_hash, C_auth_sessions_access_token_expires_at,
    C_auth_sessions_refresh_token_expires_at,
};

static fold_result_t auth_session_started(fold_t *f, const prime_event_t *ev, phase_t phase)
{
    static const size_t columns[] = {
        C_auth_sessions_device_id, C_auth_sessions_device_name, C_auth_sessions_device_type,
        C_auth_sessions_ip_address, C_auth_sessions_user_agent,
    };
    row_t *user, *r;
    rowset_t *s = &f->sets[T_AUTH_SESSIONS];
    char when[PRIME_TIME_TEXT];
    fold_result_t rc;

    if ((rc = user_row(f, ev, &user)) || (rc = track(f, T_AUTH_SESSIONS, ev, "session_id", &r)) || phase == COLLECT)
        return rc;
    if (!user->present)
        return fold_missing(f, T_PRIME_USERS, user->id);
    if (r->present)
        return fold_refuse(f, "session_id", "the session exists already");
    row_create(s, r, fold_event_time(ev, when));
    row_set(s, r, C_auth_sessions_user_id, user->id);
    fold_set_if_given(f, T_AUTH_SESSIONS, r, ev, "session_token_hash", C_auth_sessions_session_token);
    FOLD_SET_GIVEN(f, T_AUTH_SESSIONS, r, ev, columns);
    FOLD_SET_GIVEN(f, T_AUTH_SESSIONS, r, ev, auth_token_columns);
    return FOLD_OK;
}

static fold_result_t auth_session_refreshed(fold_t *f, const prime_event_t *ev, phase_t phase)
{
    row_t *r;
    fold_result_t rc = owned_row(f, ev, phase, T_AUTH_SESSIONS, C_auth_sessions_user_id, "session_id", BY_OWNER, &r);
    char when[PRIME_TIME_TEXT];

    if (rc || phase == COLLECT)
        return rc;
    if (!strcmp(r->values[C_auth_sessions_is_revoked], "t"))
        return fold_refuse(f, "session_id", "the session is revoked");
    FOLD_SET_GIVEN(f, T_AUTH_SESSIONS, r, ev, auth_token_columns);
    row_set(&f->sets[T_AUTH_SESSIONS], r, C_auth_sessions_last_activity_at, fold_event_time(ev, when));
    return FOLD_OK;
}

static fold_result_t auth_session_revoked(fold_t *f, const prime_event_t *ev, phase_t phase)
{
    row_t *r;
    fold_result_t rc = owned_row(f, ev, phase, T_AUTH_SESSIONS, C_auth_sessions_user_id, "session_id", BY_OWNER, &r);

    if (rc || phase == COLLECT)
        return rc;
    row_set(&f->sets[T_AUTH_SESSIONS], r, C_auth_sessions_is_revoked, "t");
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

