/* The fold without servers: handlers (workers/materializer/handlers.c) run
 * against rows set up in memory, as batch.c runs them (COLLECT, the rows
 * read, APPLY, again on FOLD_NEED_ROWS), and the tests assert the rows'
 * values each event type's rules give: create, update, stale save, owner
 * check, cascade, parking decision, snapshots, refused ids. No PostgreSQL,
 * no broker. */
#include "fold.h"
#include "prime/time.h"
#include "../support/prime_test.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ALICE "0a11ce00-0000-4000-8000-000000000001"
#define BOB "0b0b0000-0000-4000-8000-000000000002"
#define PROJECT "9e0e0000-0000-4000-8000-000000000003"
#define SESSION "5e550000-0000-4000-8000-000000000004"
#define MIX "313c0000-0000-4000-8000-000000000005"
#define FILE2 "f11e0000-0000-4000-8000-000000000006"
#define CAROL "0ca20100-0000-4000-8000-000000000007"
#define COLLAB "c0ab0000-0000-4000-8000-000000000008"

/* strdup() of the fold's code fails when this reaches 0 (counting down;
 * negative: never): test_fold links with -Wl,--wrap=strdup. */
static int strdup_fails_in = -1;
char *__real_strdup(const char *s);
char *__wrap_strdup(const char *s);
char *__wrap_strdup(const char *s)
{
    if (strdup_fails_in >= 0 && strdup_fails_in-- == 0)
        return NULL;
    return __real_strdup(s);
}

static prime_registry_t *reg;
static fold_t fold; /* the batch's */
static fold_t db;   /* the rows "in the database" when the batch begins */
static int need_rows; /* how often the last event asked for rows COLLECT could not name */
static prime_event_t *events[64];
static size_t nevents;

static int suite_init(void)
{
    prime_error_t err;
    prime_error_clear(&err);
    if (!(reg = prime_registry_new(&err))) {
        fprintf(stderr, "registry: %s\n", err.message);
        return 1;
    }
    return 0;
}

static int suite_cleanup(void)
{
    prime_registry_free(reg);
    return 0;
}

/* A fresh fold (an auto snapshot every 10 versions) before each test; the
 * events of the last test freed. */
static void fresh(int snapshot_every)
{
    fold_free(&fold);
    fold_init(&fold, snapshot_every);
    fold_free(&db);
    fold_init(&db, snapshot_every);
    for (size_t i = 0; i < nevents; i++)
        prime_event_free(events[i]);
    nevents = 0;
}

/* ev, published by actor (not its owner: a collaborator, or an intruder). */
static prime_event_t *as_actor(prime_event_t *ev, const char *actor)
{
    prime_error_t err;
    prime_error_clear(&err);
    CU_ASSERT_EQUAL(prime_event_set_string(ev, "actor_user_id", actor, strlen(actor), &err), PRIME_OK);
    return ev;
}

/* An event of the type (prime-codec's example) owned by owner, at second
 * `at` of the day, with the string fields given as "field", "value", ...,
 * NULL. */
static prime_event_t *event(const char *type, const char *owner, int at, ...)
{
    prime_error_t err;
    prime_event_t *ev;
    va_list ap;
    const char *field;

    prime_error_clear(&err);
    ev = prime_event_example(reg, type, 0, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ev);
    events[nevents++] = ev;
    CU_ASSERT_EQUAL(prime_event_set_string(ev, "owner_user_id", owner, strlen(owner), &err), PRIME_OK);
    /* The actor is the owner unless a test says otherwise (as_actor()). */
    CU_ASSERT_EQUAL(prime_event_set_string(ev, "actor_user_id", owner, strlen(owner), &err), PRIME_OK);
    CU_ASSERT_EQUAL(prime_event_set_long(ev, "occurred_at", (INT64_C(1764547200) + at) * 1000000, &err), PRIME_OK);
    va_start(ap, at);
    while ((field = va_arg(ap, const char *))) {
        const char *value = va_arg(ap, const char *);
        if (prime_event_set_string(ev, field, value, strlen(value), &err))
            fprintf(stderr, "%s.%s: %s\n", type, field, err.message);
        CU_ASSERT_EQUAL(err.code, PRIME_OK);
    }
    va_end(ap);
    return ev;
}

/* What store_load() does: every tracked row not yet read is read from
 * source (present there: its values; else absent). */
static void load(fold_t *f, fold_t *source)
{
    for (int t = 0; t < T_COUNT; t++)
        for (size_t i = 0; i < f->sets[t].n; i++) {
            row_t *r = f->sets[t].rows[i], *in = source ? rows_find(&source->sets[t], r->id) : NULL;
            if (r->loaded)
                continue;
            r->loaded = true;
            if (!in || !in->present)
                continue;
            for (size_t c = 0; c < tables[t].ncolumns; c++)
                r->values[c] = in->values[c] ? strdup(in->values[c]) : NULL;
            r->in_database = r->present = true;
        }
}

/* The event folded as batch.c folds it; the fold's per-event marks are
 * forgotten after (as derived_take() does), the snapshot asked for kept in
 * fold.want_snapshot / fold.snapshot until the next event. */
static fold_result_t fold_into(fold_t *f, fold_t *source, prime_event_t *ev)
{
    handler_fn fn = fold_handler_for(ev);
    fold_result_t r;

    CU_ASSERT_PTR_NOT_NULL_FATAL(fn);
    fold_snapshot_clear(&f->snapshot);
    f->want_snapshot = false;
    f->rejected = NULL;
    need_rows = 0;
    r = fn(f, ev, COLLECT);
    if (r != FOLD_OK)
        return r;
    load(f, source);
    while ((r = fn(f, ev, APPLY)) == FOLD_NEED_ROWS) {
        need_rows++;
        load(f, source);
    }
    CU_ASSERT_FALSE(fold_failed(f));
    for (int t = 0; t < T_COUNT; t++)
        rows_untouch(&f->sets[t]);
    return r;
}

/* ev folded in the batch, over the rows of db. */
static fold_result_t apply(prime_event_t *ev)
{
    return fold_into(&fold, &db, ev);
}

/* ev folded into db: rows there before the batch. */
static fold_result_t before(prime_event_t *ev)
{
    return fold_into(&db, NULL, ev);
}

/* The row of table t with this id as folded, or NULL when not present. */
static row_t *row(table_id_t t, const char *id)
{
    row_t *r = rows_find(&fold.sets[t], id);
    return r && r->present ? r : NULL;
}

static const char *value(table_id_t t, const char *id, size_t c)
{
    row_t *r = row(t, id);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    return r->values[c];
}

#define CU_ASSERT_VALUE(t, id, c, expected)                                                                      \
    do {                                                                                                          \
        const char *v_ = value(t, id, c);                                                                         \
        if (!v_ || strcmp(v_, expected))                                                                          \
            fprintf(stderr, "%s.%s: got %s, expected %s\n", tables[t].name, tables[t].columns[c].name,            \
                    v_ ? v_ : "NULL", expected);                                                                  \
        CU_ASSERT_STRING_EQUAL(v_ ? v_ : "NULL", expected);                                                       \
    } while (0)

/* The time `at` seconds into the test day, as the rows hold it. */
static const char *at_text(int at, char buf[PRIME_TIME_TEXT])
{
    prime_time_format_rfc3339((INT64_C(1764547200) + at) * 1000000, buf);
    return buf;
}

/* Alice registered, her project created (version 1). */
static void alice_with_project(void)
{
    CU_ASSERT_EQUAL(apply(event("user.registered", ALICE, 0, "email", "alice@example.com", NULL)), FOLD_OK);
    CU_ASSERT_EQUAL(apply(event("project.created", ALICE, 10, "project_id", PROJECT, NULL)), FOLD_OK);
}

static void test_create(void)
{
    char when[PRIME_TIME_TEXT];

    fresh(10);
    alice_with_project();
    /* The event's fields, the table's fresh values for the rest, times the event's. */
    CU_ASSERT_VALUE(T_PRIME_USERS, ALICE, C_prime_users_email, "alice@example.com");
    CU_ASSERT_VALUE(T_PRIME_USERS, ALICE, C_prime_users_devices, "[]");
    CU_ASSERT_VALUE(T_PRIME_USERS, ALICE, C_prime_users_created_at, at_text(0, when));
    CU_ASSERT_VALUE(T_PRIME_USERS, ALICE, C_prime_users_preferred_genres, "{\"tag-451\",\"tag-452\"}");
    CU_ASSERT_PTR_NULL(value(T_PRIME_USERS, ALICE, C_prime_users_last_login_at));
    CU_ASSERT_VALUE(T_STUDIO_PROJECTS, PROJECT, C_studio_projects_user_id, ALICE);
    CU_ASSERT_VALUE(T_STUDIO_PROJECTS, PROJECT, C_studio_projects_project_version, "1");
    CU_ASSERT_VALUE(T_STUDIO_PROJECTS, PROJECT, C_studio_projects_is_collaborative, "f");
    CU_ASSERT_VALUE(T_STUDIO_PROJECTS, PROJECT, C_studio_projects_updated_at, at_text(10, when));
    CU_ASSERT_VALUE(T_STUDIO_PROJECTS, PROJECT, C_studio_projects_last_saved_at, at_text(10, when));
    /* A second registration of the same user: refused, the first stands. */
    CU_ASSERT_EQUAL(apply(event("user.registered", ALICE, 20, "email", "other@example.com", NULL)), FOLD_REFUSED);
    CU_ASSERT_STRING_EQUAL(fold.why.field, "owner_user_id");
    CU_ASSERT_VALUE(T_PRIME_USERS, ALICE, C_prime_users_email, "alice@example.com");
}

static void test_update(void)
{
    char when[PRIME_TIME_TEXT];

    fresh(10);
    alice_with_project();
    CU_ASSERT_EQUAL(apply(event("project.metadata_updated", ALICE, 30, "project_id", PROJECT, "name", "Night Drive",
                                NULL)),
                    FOLD_OK);
    CU_ASSERT_VALUE(T_STUDIO_PROJECTS, PROJECT, C_studio_projects_name, "Night Drive");
    CU_ASSERT_VALUE(T_STUDIO_PROJECTS, PROJECT, C_studio_projects_updated_at, at_text(30, when));
    CU_ASSERT_VALUE(T_STUDIO_PROJECTS, PROJECT, C_studio_projects_created_at, at_text(10, when));
    CU_ASSERT_EQUAL(apply(event("user.device_registered", ALICE, 40, "registered_device_id", "studio-mac", NULL)),
                    FOLD_OK);
    CU_ASSERT_VALUE(T_PRIME_USERS, ALICE, C_prime_users_last_active_device_id, "studio-mac");
    CU_ASSERT_PTR_NOT_NULL(strstr(value(T_PRIME_USERS, ALICE, C_prime_users_devices), "\"device_id\":\"studio-mac\""));
}

static void test_save_and_stale_save(void)
{
    prime_event_t *save;
    prime_error_t err;

    fresh(10);
    alice_with_project();
    prime_error_clear(&err);
    save = event("project.saved", ALICE, 50, "project_id", PROJECT, "project_data", "{\"v\":2}", NULL);
    prime_event_set_int(save, "base_version", 1, &err);
    CU_ASSERT_EQUAL(apply(save), FOLD_OK);
    CU_ASSERT_PTR_NULL(fold.rejected);
    CU_ASSERT_VALUE(T_STUDIO_PROJECTS, PROJECT, C_studio_projects_project_version, "2");
    CU_ASSERT_VALUE(T_STUDIO_PROJECTS, PROJECT, C_studio_projects_project_data, "{\"v\":2}");
    CU_ASSERT_VALUE(T_STUDIO_PROJECTS, PROJECT, C_studio_projects_project_size_bytes, "7");
    /* Based on version 1 again: stale, not applied, audited as rejected. */
    save = event("project.saved", ALICE, 60, "project_id", PROJECT, "project_data", "{\"v\":\"stale\"}", NULL);
    prime_event_set_int(save, "base_version", 1, &err);
    CU_ASSERT_EQUAL(apply(save), FOLD_OK);
    CU_ASSERT_PTR_NOT_NULL(fold.rejected);
    CU_ASSERT_EQUAL(fold.rejected_table, T_STUDIO_PROJECTS);
    CU_ASSERT_STRING_EQUAL(fold.rejected_why, "stale save: based on version 1, the project is at version 2");
    CU_ASSERT_VALUE(T_STUDIO_PROJECTS, PROJECT, C_studio_projects_project_version, "2");
    CU_ASSERT_VALUE(T_STUDIO_PROJECTS, PROJECT, C_studio_projects_project_data, "{\"v\":2}");
}

static void test_owner_check(void)
{
    prime_event_t *save;
    prime_error_t err;

    fresh(10);
    alice_with_project();
    CU_ASSERT_EQUAL(apply(event("user.registered", BOB, 1, NULL)), FOLD_OK);
    prime_error_clear(&err);
    save = event("project.saved", BOB, 50, "project_id", PROJECT, NULL);
    prime_event_set_int(save, "base_version", 1, &err);
    CU_ASSERT_EQUAL(apply(save), FOLD_REFUSED);
    CU_ASSERT_STRING_EQUAL(fold.why.field, "owner_user_id");
    CU_ASSERT_PTR_NOT_NULL(strstr(fold.why.message, "belongs to " ALICE));
    CU_ASSERT_VALUE(T_STUDIO_PROJECTS, PROJECT, C_studio_projects_project_version, "1");
    CU_ASSERT_EQUAL(apply(event("project.deleted", BOB, 60, "project_id", PROJECT, NULL)), FOLD_REFUSED);
    CU_ASSERT_PTR_NOT_NULL(row(T_STUDIO_PROJECTS, PROJECT));
    /* Bob may upload to Alice's project once he is its editor, not delete her file. */
    CU_ASSERT_EQUAL(apply(event("audio.file_uploaded", BOB, 70, "file_id", FILE2, "project_id", PROJECT, NULL)),
                    FOLD_REFUSED);
    CU_ASSERT_PTR_NOT_NULL(strstr(fold.why.message, "not its owner nor an editor"));
    CU_ASSERT_EQUAL(apply(event("project.collaborators_changed", ALICE, 65, "project_id", PROJECT, "collaborators",
                                "[{\"user_id\":\"" BOB "\",\"role\":\"editor\"}]", NULL)),
                    FOLD_OK);
    CU_ASSERT_EQUAL(apply(event("audio.file_uploaded", BOB, 70, "file_id", FILE2, "project_id", PROJECT, NULL)),
                    FOLD_OK);
    CU_ASSERT_VALUE(T_AUDIO_FILES, FILE2, C_audio_files_user_id, BOB);
    CU_ASSERT_EQUAL(apply(event("audio.file_deleted", ALICE, 80, "file_id", FILE2, NULL)), FOLD_REFUSED);
    CU_ASSERT_PTR_NOT_NULL(row(T_AUDIO_FILES, FILE2));
}

/* Alice's project.saved at second `at` based on version base, published by actor. */
static prime_event_t *save_by(const char *actor, int at, int base)
{
    prime_error_t err;
    prime_event_t *ev = as_actor(event("project.saved", ALICE, at, "project_id", PROJECT, NULL), actor);
    prime_error_clear(&err);
    CU_ASSERT_EQUAL(prime_event_set_int(ev, "base_version", base, &err), PRIME_OK);
    return ev;
}

#define COLLABORATORS(role) "[{\"user_id\":\"" BOB "\",\"role\":\"" role "\",\"permissions\":[\"edit\"]}]"

/* DESIGN.md 3.7: an event changes only what its actor may change
 * (docs/materializer.md, "Who may change what"). */
static void test_actor_rules(void)
{
    fresh(10);
    alice_with_project();
    CU_ASSERT_EQUAL(apply(event("user.registered", BOB, 1, NULL)), FOLD_OK);
    /* Bob, naming Alice as owner, may not make himself her project's owner-collaborator... */
    CU_ASSERT_EQUAL(apply(as_actor(event("project.collaborators_changed", ALICE, 20, "project_id", PROJECT,
                                         "collaborators", COLLABORATORS("owner"), NULL),
                                   BOB)),
                    FOLD_REFUSED);
    CU_ASSERT_STRING_EQUAL(fold.why.field, "actor_user_id");
    CU_ASSERT_STRING_EQUAL(fold.why.message, "actor " BOB " may not project.collaborators_changed studio_projects: "
                                             "not its owner");
    CU_ASSERT_VALUE(T_STUDIO_PROJECTS, PROJECT, C_studio_projects_collaborators, "[]");
    /* ...nor save it, nor rename, delete, snapshot it, nor touch her user row, recall or presets. */
    CU_ASSERT_EQUAL(apply(save_by(BOB, 21, 1)), FOLD_REFUSED);
    CU_ASSERT_STRING_EQUAL(fold.why.message, "actor " BOB " may not project.saved on project " PROJECT
                                             ": not its owner nor an editor");
    CU_ASSERT_VALUE(T_STUDIO_PROJECTS, PROJECT, C_studio_projects_project_version, "1");
    CU_ASSERT_EQUAL(apply(as_actor(event("project.metadata_updated", ALICE, 22, "project_id", PROJECT, "name", "X",
                                         NULL),
                                   BOB)),
                    FOLD_REFUSED);
    CU_ASSERT_EQUAL(apply(as_actor(event("project.deleted", ALICE, 23, "project_id", PROJECT, NULL), BOB)),
                    FOLD_REFUSED);
    CU_ASSERT_EQUAL(apply(as_actor(event("project.snapshot_requested", ALICE, 23, "project_id", PROJECT, NULL), BOB)),
                    FOLD_REFUSED);
    CU_ASSERT_EQUAL(apply(as_actor(event("user.profile_updated", ALICE, 24, "display_name", "Bobbed", NULL), BOB)),
                    FOLD_REFUSED);
    CU_ASSERT_EQUAL(apply(as_actor(event("user.deleted", ALICE, 24, NULL), BOB)), FOLD_REFUSED);
    CU_ASSERT_EQUAL(apply(as_actor(event("preset.created", ALICE, 24, NULL), BOB)), FOLD_REFUSED);
    CU_ASSERT_PTR_NOT_NULL(row(T_PRIME_USERS, ALICE));
    CU_ASSERT_PTR_NOT_NULL(row(T_STUDIO_PROJECTS, PROJECT));
    /* A viewer only looks: still no save, no session on it. */
    CU_ASSERT_EQUAL(apply(event("project.collaborators_changed", ALICE, 30, "project_id", PROJECT, "collaborators",
                                COLLABORATORS("viewer"), NULL)),
                    FOLD_OK);
    CU_ASSERT_EQUAL(apply(save_by(BOB, 31, 1)), FOLD_REFUSED);
    CU_ASSERT_EQUAL(apply(event("session.joined", BOB, 32, "session_id", SESSION, "project_id", PROJECT, NULL)),
                    FOLD_REFUSED);
    /* An editor saves, opens, joins a session and uploads; the owner's own
     * rules (collaborators, delete) stay hers. */
    CU_ASSERT_EQUAL(apply(event("project.collaborators_changed", ALICE, 40, "project_id", PROJECT, "collaborators",
                                COLLABORATORS("editor"), NULL)),
                    FOLD_OK);
    CU_ASSERT_EQUAL(apply(save_by(BOB, 41, 1)), FOLD_OK);
    CU_ASSERT_VALUE(T_STUDIO_PROJECTS, PROJECT, C_studio_projects_project_version, "2");
    CU_ASSERT_EQUAL(apply(as_actor(event("project.opened", ALICE, 42, "project_id", PROJECT, NULL), BOB)), FOLD_OK);
    CU_ASSERT_EQUAL(apply(event("session.joined", BOB, 43, "session_id", SESSION, "project_id", PROJECT, NULL)),
                    FOLD_OK);
    CU_ASSERT_EQUAL(apply(event("audio.file_uploaded", BOB, 44, "file_id", FILE2, "project_id", PROJECT, NULL)),
                    FOLD_OK);
    CU_ASSERT_EQUAL(apply(as_actor(event("project.collaborators_changed", ALICE, 45, "project_id", PROJECT,
                                         "collaborators", "[]", NULL),
                                   BOB)),
                    FOLD_REFUSED);
    CU_ASSERT_EQUAL(apply(as_actor(event("project.deleted", ALICE, 46, "project_id", PROJECT, NULL), BOB)),
                    FOLD_REFUSED);
    /* A collaboration session: a participant joins and leaves themself;
     * a stranger neither adds another nor ends it. */
    CU_ASSERT_EQUAL(apply(event("user.registered", CAROL, 47, NULL)), FOLD_OK);
    CU_ASSERT_EQUAL(apply(event("collab.started", ALICE, 48, "collab_session_id", COLLAB, "project_id", PROJECT, NULL)),
                    FOLD_OK);
    CU_ASSERT_EQUAL(apply(as_actor(event("collab.participant_joined", ALICE, 49, "collab_session_id", COLLAB,
                                         "user_id", CAROL, NULL),
                                   CAROL)),
                    FOLD_OK);
    CU_ASSERT_EQUAL(apply(as_actor(event("collab.participant_joined", ALICE, 49, "collab_session_id", COLLAB,
                                         "user_id", BOB, NULL),
                                   CAROL)),
                    FOLD_REFUSED);
    CU_ASSERT_EQUAL(apply(as_actor(event("collab.ended", ALICE, 49, "collab_session_id", COLLAB, NULL), CAROL)),
                    FOLD_REFUSED);
    CU_ASSERT_EQUAL(apply(as_actor(event("collab.participant_left", ALICE, 49, "collab_session_id", COLLAB,
                                         "user_id", CAROL, NULL),
                                   CAROL)),
                    FOLD_OK);
    CU_ASSERT_EQUAL(apply(as_actor(event("collab.ended", ALICE, 49, "collab_session_id", COLLAB, NULL), BOB)),
                    FOLD_OK);
    /* Derived events carry their cause's actor (or the nil UUID): the
     * pipeline's, not checked as a client's. */
    CU_ASSERT_EQUAL(apply(as_actor(event("audio.analyzed", BOB, 50, "file_id", FILE2, NULL),
                                   "00000000-0000-0000-0000-000000000000")),
                    FOLD_OK);
}

/* Ids inside collaborators are stored in their one spelling; one that is not a UUID is refused. */
static void test_collaborator_ids(void)
{
    fresh(10);
    alice_with_project();
    CU_ASSERT_EQUAL(apply(event("user.registered", BOB, 1, NULL)), FOLD_OK);
    CU_ASSERT_EQUAL(apply(event("project.collaborators_changed", ALICE, 20, "project_id", PROJECT, "collaborators",
                                "[{\"user_id\":\"0B0B0000-0000-4000-8000-000000000002\",\"role\":\"editor\"}]",
                                NULL)),
                    FOLD_OK);
    CU_ASSERT_VALUE(T_STUDIO_PROJECTS, PROJECT, C_studio_projects_collaborators,
                    "[{\"user_id\":\"" BOB "\",\"role\":\"editor\"}]");
    CU_ASSERT_VALUE(T_STUDIO_PROJECTS, PROJECT, C_studio_projects_is_collaborative, "t");
    /* Bob, named in upper case, is the editor: his save applies. */
    CU_ASSERT_EQUAL(apply(save_by(BOB, 21, 1)), FOLD_OK);
    CU_ASSERT_EQUAL(apply(event("project.collaborators_changed", ALICE, 30, "project_id", PROJECT, "collaborators",
                                "[{\"user_id\":\"" BOB "\",\"role\":\"editor\"},{\"user_id\":\"bob\"}]", NULL)),
                    FOLD_REFUSED);
    CU_ASSERT_STRING_EQUAL(fold.why.field, "collaborators");
    CU_ASSERT_STRING_EQUAL(fold.why.message, "collaborators[1].user_id is not a UUID");
    CU_ASSERT_EQUAL(apply(event("project.collaborators_changed", ALICE, 31, "project_id", PROJECT, "collaborators",
                                "[{\"role\":\"editor\"}]", NULL)),
                    FOLD_REFUSED);
    CU_ASSERT_VALUE(T_STUDIO_PROJECTS, PROJECT, C_studio_projects_collaborators,
                    "[{\"user_id\":\"" BOB "\",\"role\":\"editor\"}]");
}

static void test_cascade(void)
{
    fresh(10);
    alice_with_project();
    CU_ASSERT_EQUAL(apply(event("session.joined", ALICE, 20, "session_id", SESSION, "project_id", PROJECT, NULL)),
                    FOLD_OK);
    CU_ASSERT_EQUAL(apply(event("audio.file_uploaded", ALICE, 30, "file_id", MIX, "project_id", PROJECT, NULL)),
                    FOLD_OK);
    CU_ASSERT_VALUE(T_SESSION_STATES, SESSION, C_session_states_is_active, "t");
    /* Deleting the user takes her project, and with it its session and file,
     * as the seed's ON DELETE CASCADE does in the database. */
    CU_ASSERT_EQUAL(apply(event("user.deleted", ALICE, 40, NULL)), FOLD_OK);
    CU_ASSERT_PTR_NULL(row(T_PRIME_USERS, ALICE));
    CU_ASSERT_PTR_NULL(row(T_STUDIO_PROJECTS, PROJECT));
    CU_ASSERT_PTR_NULL(row(T_SESSION_STATES, SESSION));
    CU_ASSERT_PTR_NULL(row(T_AUDIO_FILES, MIX));
    /* Only the deleted row is the event's change; the rest are not dirty. */
    CU_ASSERT_FALSE(rows_find(&fold.sets[T_STUDIO_PROJECTS], PROJECT)->dirty);
}

static void test_parking_decision(void)
{
    char expected[96];

    fresh(10);
    /* Bob is not registered: his project waits for his row. */
    CU_ASSERT_EQUAL(apply(event("project.created", BOB, 10, "project_id", PROJECT, NULL)), FOLD_MISSING_PARENT);
    snprintf(expected, sizeof(expected), "prime_users:%s", BOB);
    CU_ASSERT_STRING_EQUAL(fold.waiting_for, expected);
    CU_ASSERT_PTR_NULL(row(T_STUDIO_PROJECTS, PROJECT));
    /* Registered (a later record, or another topic): the same event applies. */
    CU_ASSERT_EQUAL(apply(event("user.registered", BOB, 11, NULL)), FOLD_OK);
    CU_ASSERT_EQUAL(apply(events[0]), FOLD_OK);
    CU_ASSERT_PTR_NOT_NULL(row(T_STUDIO_PROJECTS, PROJECT));
    /* A session on a project not written yet waits for the project. */
    CU_ASSERT_EQUAL(apply(event("session.joined", BOB, 20, "session_id", SESSION, "project_id", MIX, NULL)),
                    FOLD_MISSING_PARENT);
    snprintf(expected, sizeof(expected), "studio_projects:%s", MIX);
    CU_ASSERT_STRING_EQUAL(fold.waiting_for, expected);
    CU_ASSERT_PTR_NULL(row(T_SESSION_STATES, SESSION));
}

/* A mix's analysis needs the project row, known only once the file row is
 * read: FOLD_NEED_ROWS, then the project's loudness. */
static void test_analysis_of_a_mix(void)
{
    fresh(10);
    /* In the database: Alice, her project, its mix. */
    CU_ASSERT_EQUAL(before(event("user.registered", ALICE, 0, NULL)), FOLD_OK);
    CU_ASSERT_EQUAL(before(event("project.created", ALICE, 10, "project_id", PROJECT, NULL)), FOLD_OK);
    CU_ASSERT_EQUAL(before(event("audio.file_uploaded", ALICE, 30, "file_id", MIX, "project_id", PROJECT, NULL)),
                    FOLD_OK);
    CU_ASSERT_STRING_EQUAL(rows_find(&db.sets[T_AUDIO_FILES], MIX)->values[C_audio_files_is_mix], "t");
    /* The batch: the analysis names the file only. */
    CU_ASSERT_EQUAL(apply(event("audio.analyzed", ALICE, 40, "file_id", MIX, "analyzer_version", "1.2.0", NULL)),
                    FOLD_OK);
    CU_ASSERT_EQUAL(need_rows, 1);
    CU_ASSERT_VALUE(T_STUDIO_PROJECTS, PROJECT, C_studio_projects_current_lufs, "-23");
    CU_ASSERT_PTR_NOT_NULL(strstr(value(T_AUDIO_FILES, MIX, C_audio_files_audio_analysis),
                                  "\"analyzer_version\":\"1.2.0\""));
    /* An older analyzer's result does not replace a newer one's. */
    CU_ASSERT_EQUAL(apply(event("audio.analyzed", ALICE, 50, "file_id", MIX, "analyzer_version", "1.10.0", NULL)),
                    FOLD_OK);
    CU_ASSERT_EQUAL(apply(event("audio.analyzed", ALICE, 60, "file_id", MIX, "analyzer_version", "1.9.9", NULL)),
                    FOLD_OK);
    CU_ASSERT_PTR_NOT_NULL(strstr(value(T_AUDIO_FILES, MIX, C_audio_files_audio_analysis),
                                  "\"analyzer_version\":\"1.10.0\""));
}

static void test_auto_snapshot(void)
{
    prime_event_t *save;
    prime_error_t err;

    fresh(2);
    alice_with_project();
    prime_error_clear(&err);
    save = event("project.saved", ALICE, 50, "project_id", PROJECT, "project_data", "{\"v\":2}", NULL);
    prime_event_set_int(save, "base_version", 1, &err);
    CU_ASSERT_EQUAL(apply(save), FOLD_OK);
    /* Version 2, a multiple of 2: the project as it is now. */
    CU_ASSERT_TRUE(fold.want_snapshot);
    CU_ASSERT_STRING_EQUAL(fold.snapshot.type, "auto");
    CU_ASSERT_EQUAL(fold.snapshot.version, 2);
    CU_ASSERT_STRING_EQUAL(fold.snapshot.project_data, "{\"v\":2}");
    CU_ASSERT_STRING_EQUAL(fold.snapshot.owner, ALICE);
    save = event("project.saved", ALICE, 60, "project_id", PROJECT, NULL);
    prime_event_set_int(save, "base_version", 2, &err);
    CU_ASSERT_EQUAL(apply(save), FOLD_OK);
    CU_ASSERT_FALSE(fold.want_snapshot);
}

/* mixx_recall is prime-recall's (docs/recall.md): the materializer takes
 * recall events in and changes no row for them. */
static void test_recall_is_not_the_materializers(void)
{
    fresh(10);
    CU_ASSERT_EQUAL(apply(event("user.registered", ALICE, 0, NULL)), FOLD_OK);
    CU_ASSERT_EQUAL(apply(event("recall.set", ALICE, 10, "category", "reverb", "recall_key", "vocal", "data",
                                "{\"decay\":1.2}", NULL)),
                    FOLD_OK);
    CU_ASSERT_EQUAL(apply(event("recall.used", ALICE, 20, "category", "reverb", "recall_key", "vocal", "data",
                                "{\"mix\":0.3}", NULL)),
                    FOLD_OK);
    CU_ASSERT_EQUAL(fold.sets[T_MIXX_RECALL].n, 0);
}

/* An id that cannot be a row's is refused in COLLECT, with the field. */
static void test_refused_ids(void)
{
    row_t *r = NULL;
    char long_id[64];

    fresh(10);
    CU_ASSERT_EQUAL(fold_track(&fold, T_PRIME_USERS, NULL, "owner_user_id", &r), FOLD_REFUSED);
    CU_ASSERT_PTR_NULL(r);
    CU_ASSERT_STRING_EQUAL(fold.why.field, "owner_user_id");
    memset(long_id, 'a', sizeof(long_id) - 1);
    long_id[sizeof(long_id) - 1] = '\0';
    CU_ASSERT_EQUAL(fold_track(&fold, T_PRIME_USERS, long_id, "owner_user_id", &r), FOLD_REFUSED);
    CU_ASSERT_EQUAL(fold_track(&fold, T_PRIME_USERS, ALICE, "owner_user_id", &r), FOLD_OK);
    CU_ASSERT_PTR_NOT_NULL(r);
    CU_ASSERT_FALSE(fold_failed(&fold));
}

/* A value that cannot be copied fails the fold (the batch fails, retriable):
 * before, it became SQL NULL in the row, quietly. */
static void test_out_of_memory_fails(void)
{
    handler_fn fn;
    prime_event_t *ev;
    row_t *r;

    fresh(10);
    alice_with_project();
    ev = event("project.metadata_updated", ALICE, 30, "project_id", PROJECT, "name", "Night Drive", NULL);
    fn = fold_handler_for(ev);
    CU_ASSERT_EQUAL(fn(&fold, ev, COLLECT), FOLD_OK);
    strdup_fails_in = 0;
    CU_ASSERT_EQUAL(fn(&fold, ev, APPLY), FOLD_OK);
    strdup_fails_in = -1;
    CU_ASSERT_TRUE(fold_failed(&fold));
    CU_ASSERT_EQUAL(fold.why.code, PRIME_ERR_NOMEM);
    CU_ASSERT_TRUE(fold.why.retriable);
    /* The batch is then dropped whole (batch.c): nothing of it is written. */
    fold_clear(&fold);
    CU_ASSERT_FALSE(fold_failed(&fold));
    CU_ASSERT_PTR_NULL(rows_find(&fold.sets[T_STUDIO_PROJECTS], PROJECT));
    /* A snapshot that cannot be copied is not dropped quietly either. */
    fresh(1);
    CU_ASSERT_EQUAL(apply(event("user.registered", ALICE, 0, NULL)), FOLD_OK);
    CU_ASSERT_EQUAL(apply(event("project.created", ALICE, 10, "project_id", PROJECT, NULL)), FOLD_OK);
    r = rows_find(&fold.sets[T_STUDIO_PROJECTS], PROJECT);
    strdup_fails_in = 0;
    fold_want_snapshot(&fold, r, "manual", NULL);
    strdup_fails_in = -1;
    CU_ASSERT_FALSE(fold.want_snapshot);
    CU_ASSERT_TRUE(fold_failed(&fold));
}

/* Every event type of the registry has its handler. */
static void test_every_type_has_a_handler(void)
{
    static const char *const types[] = {
        "user.registered", "user.profile_updated", "user.device_registered", "user.logged_in", "user.deleted",
        "project.created", "project.saved", "project.metadata_updated", "project.opened",
        "project.collaborators_changed", "project.deleted", "project.snapshot_requested", "project.restored",
        "snapshot.created", "session.joined", "session.heartbeat", "session.left", "recall.set", "recall.used",
        "recall.forgotten", "audio.file_uploaded", "audio.stem_uploaded", "audio.file_deleted", "audio.analyzed",
        "audio.analysis_requested", "audio.analysis_failed", "preset.created", "preset.updated", "preset.used",
        "preset.deleted", "collab.started", "collab.participant_joined", "collab.participant_left", "collab.ended",
        "auth.credential_created", "auth.credential_verified", "auth.password_changed", "auth.reset_requested",
        "auth.session_started", "auth.session_refreshed", "auth.session_revoked",
    };
    fresh(10);
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        prime_event_t *ev = event(types[i], ALICE, 0, NULL);
        if (!fold_handler_for(ev))
            fprintf(stderr, "no handler for %s\n", types[i]);
        CU_ASSERT_PTR_NOT_NULL(fold_handler_for(ev));
    }
}

int main(void)
{
    static const prime_test_t tests[] = {
        {"create: the event's fields, fresh values, the event's time", test_create},
        {"update: changed columns and updated_at", test_update},
        {"save, and a stale save not applied but rejected", test_save_and_stale_save},
        {"owner check: another owner's row is refused", test_owner_check},
        {"actor rules: an event changes only what its actor may change", test_actor_rules},
        {"collaborators' ids canonical, a non-UUID refused", test_collaborator_ids},
        {"cascade: a user's delete removes her project's rows", test_cascade},
        {"parking decision: a missing parent is waited for", test_parking_decision},
        {"a mix's analysis reads its project (FOLD_NEED_ROWS)", test_analysis_of_a_mix},
        {"an auto snapshot every N versions", test_auto_snapshot},
        {"recall events change no row of the materializer's", test_recall_is_not_the_materializers},
        {"ids that cannot be a row's are refused", test_refused_ids},
        {"out of memory fails the fold, never a NULL value", test_out_of_memory_fails},
        {"every event type has a handler", test_every_type_has_a_handler},
        {NULL, NULL},
    };
    int rc = prime_test_run("fold", suite_init, suite_cleanup, tests);
    fresh(0);
    fold_free(&fold);
    fold_free(&db);
    return rc;
}
