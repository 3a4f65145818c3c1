/* prime-recall: Mixx Recall, learned from what users do (docs/recall.md).
 * The only writer of mixx_recall. Each batch: decode, take the event ids
 * in (an event published twice is applied once), look up the rows that
 * implicit signals need (projects, presets, audio files) in one query
 * each, lock the batch's (user, category) pairs in one order, read their
 * items in one query, fold the signals into them, recompute the touched
 * categories' confidences, and write them back in one statement (deletes
 * in another). The runtime commits the offsets in the same transaction. */
#include "context.h"
#include "item.h"
#include "show.h"
#include "signals.h"

#include "prime/buf.h"
#include "prime/log.h"
#include "prime/pg.h"
#include "prime/time.h"
#include "prime/worker.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Namespace of Mixx Recall row ids, as the materializer made them:
 * uuid5(NAMESPACE_URL, "https://prime.mixclub.studio/mixx_recall") of
 * owner, category and recall_key joined by newlines. */
#define RECALL_NAMESPACE "f599dc62-f662-5188-baed-487f0b1131f6"
/* The first key of the two-key advisory locks on (user, category): the
 * two-key space is apart from the one-key locks other workers take. */
#define RECALL_LOCK_CLASS "1919247724" /* "recl" */

typedef struct recall {
    prime_registry_t *reg;
    int64_t half_life_us;
    const char *materializer_group; /* whose progress an unknown owner waits for */
    int owner_wait_ms;              /* how long a new event of an unknown owner waits for the user */
} recall_t;

typedef struct batch {
    prime_event_t **events;
    const prime_record_t **records; /* each event's record */
    size_t n;
    PGresult *projects, *presets, *files, *owners, *rows; /* sorted by id */
    cJSON **parameters;             /* parsed presets' parameters, by presets row */
    recall_context_t *context;      /* the owners' projects, presets and files */
    signal_list_t signals;
    recall_item_t **items;
    size_t nitems;
} batch_t;

static void batch_free(batch_t *b)
{
    for (size_t i = 0; i < b->n; i++)
        prime_event_free(b->events[i]);
    free(b->events);
    free(b->records);
    if (b->presets && b->parameters)
        for (int i = 0; i < PQntuples(b->presets); i++)
            cJSON_Delete(b->parameters[i]);
    free(b->parameters);
    PQclear(b->projects);
    PQclear(b->presets);
    PQclear(b->files);
    PQclear(b->owners);
    PQclear(b->rows);
    signal_list_free(&b->signals);
    recall_context_free(b->context);
    for (size_t i = 0; i < b->nitems; i++)
        recall_item_free(b->items[i]);
    free(b->items);
}

static const char *type_of(const prime_event_t *ev)
{
    return prime_event_string(ev, "event_type");
}

/* Runs a query with one text-array parameter: the ids (field) of the
 * batch's events of type. *res is NULL when there are none. */
static prime_errcode_t lookup(PGconn *conn, batch_t *b, const char *type, const char *field, const char *sql,
                              const char *what, PGresult **res, prime_error_t *err)
{
    prime_buf_t ids;
    const char *params[1];
    size_t count = 0;

    *res = NULL;
    prime_buf_init(&ids, 0);
    prime_pg_array_begin(&ids);
    for (size_t i = 0; i < b->n; i++)
        if (!strcmp(type_of(b->events[i]), type)) {
            prime_pg_array_add(&ids, prime_event_string(b->events[i], field));
            count++;
        }
    prime_pg_array_end(&ids);
    if (!count) {
        prime_buf_free(&ids);
        return PRIME_OK;
    }
    params[0] = ids.data;
    *res = prime_pg_query(conn, sql, 1, params, what, err);
    prime_buf_free(&ids);
    return *res ? PRIME_OK : err->code;
}

/* Row of res (sorted by its first column, a uuid: byte order is the
 * canonical text's strcmp order) whose first column is id, or -1. */
static int find_row(const PGresult *res, const char *id)
{
    char canon[PRIME_UUID_TEXT];
    int lo = 0, hi = res ? PQntuples(res) : 0;

    prime_uuid_canonical(id, canon);
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2, c = strcmp(PQgetvalue(res, mid, 0), canon);
        if (!c)
            return mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

static const char *value_or_null(const PGresult *res, int r, int c)
{
    return PQgetisnull(res, r, c) ? NULL : PQgetvalue(res, r, c);
}

/* The materializer's rows, for what Recall's own context does not know:
 * projects, presets and files from before prime-recall ran (their
 * creation no longer in the topics), another user's preset whose creation
 * Recall has not read yet, a file uploaded on a topic Recall is behind on.
 * Only what does not change is taken from another user's row. One query
 * per kind of row. */
static prime_errcode_t load_context(PGconn *conn, batch_t *b, prime_error_t *err)
{
    prime_errcode_t rc;

    rc = lookup(conn, b, "project.saved", "project_id",
                "SELECT id::text, user_id::text, genre, bpm::float8, key, time_signature, sample_rate "
                "FROM studio_projects WHERE id = ANY($1::uuid[]) ORDER BY id",
                "reading the saved projects", &b->projects, err);
    if (!rc)
        rc = lookup(conn, b, "preset.used", "preset_id",
                    "SELECT id::text, plugin_type, parameters::text, user_id::text FROM plugin_presets "
                    "WHERE id = ANY($1::uuid[]) ORDER BY id",
                    "reading the used presets", &b->presets, err);
    if (!rc)
        rc = lookup(conn, b, "audio.analyzed", "file_id",
                    "SELECT id::text, is_mix FROM audio_files WHERE id = ANY($1::uuid[]) ORDER BY id",
                    "reading the analysed files", &b->files, err);
    if (rc)
        return rc;
    b->parameters = calloc((size_t)(b->presets ? PQntuples(b->presets) : 0) + 1, sizeof(*b->parameters));
    if (!b->parameters)
        return prime_error_set(err, PRIME_ERR_NOMEM, NULL, "out of memory");
    for (int r = 0; b->presets && r < PQntuples(b->presets); r++)
        b->parameters[r] = cJSON_Parse(PQgetvalue(b->presets, r, 2));
    return PRIME_OK;
}

/* What the events of these types tell Recall: signals, or context for
 * later ones (docs/recall.md). Other events are not taken in. */
static bool says_something(const prime_event_t *ev)
{
    static const char *const types[] = {
        "recall.used", "recall.set", "recall.forgotten", "project.created", "project.metadata_updated",
        "project.saved", "project.deleted", "preset.created", "preset.updated", "preset.deleted", "preset.used",
        "audio.file_uploaded", "audio.stem_uploaded", "audio.file_deleted", "audio.analyzed",
        "user.device_registered", "user.logged_in", "user.deleted"};
    const char *type = type_of(ev);

    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
        if (!strcmp(type, types[i]))
            return true;
    return false;
}

/* Whether ev needs its owner in prime_users: a signal writes a row of the
 * owner's (a foreign key), and context is created only for users who are
 * there, so that a deleted user's create read after the user.deleted (it
 * comes on another topic) does not bring back what that forgot, and a user
 * who never registers leaves nothing behind (test_recall_hostile). Deletes
 * and updates create nothing (an update of facts not kept is ignored): they
 * need no owner, nor does a system preset, the catalogue's, which the
 * materializer creates without its publisher's user row. */
static bool needs_owner(const prime_event_t *ev)
{
    static const char *const none[] = {"project.deleted", "preset.updated", "preset.deleted", "audio.file_deleted",
                                       "user.deleted"};
    const char *type = type_of(ev);
    bool system = false, null = true;

    for (size_t i = 0; i < sizeof(none) / sizeof(none[0]); i++)
        if (!strcmp(type, none[i]))
            return false;
    return strcmp(type, "preset.created") || prime_event_get_bool(ev, "is_system_preset", &system, &null, NULL) ||
           null || !system;
}

static void drop_silent(batch_t *b)
{
    size_t kept = 0;

    for (size_t i = 0; i < b->n; i++) {
        if (says_something(b->events[i])) {
            b->records[kept] = b->records[i];
            b->events[kept++] = b->events[i];
        } else {
            prime_event_free(b->events[i]);
        }
    }
    b->n = kept;
}

/* A project's settings from Recall's context (facts) or the
 * materializer's row r of b->projects. */
static void project_from_facts(signal_project_t *p, const char *owner, const cJSON *facts)
{
    const cJSON *bpm = cJSON_GetObjectItemCaseSensitive(facts, "bpm");
    const cJSON *rate = cJSON_GetObjectItemCaseSensitive(facts, "sample_rate");

    p->user = owner;
    p->genre = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(facts, "genre"));
    p->key = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(facts, "key"));
    p->time_signature = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(facts, "time_signature"));
    p->bpm = cJSON_IsNumber(bpm) ? bpm->valuedouble : 0;
    p->sample_rate = cJSON_IsNumber(rate) ? rate->valueint : 0;
}

static void project_from_row(signal_project_t *p, const PGresult *res, int r)
{
    p->user = PQgetvalue(res, r, 1);
    p->genre = value_or_null(res, r, 2);
    p->bpm = PQgetisnull(res, r, 3) ? 0 : atof(PQgetvalue(res, r, 3));
    p->key = value_or_null(res, r, 4);
    p->time_signature = value_or_null(res, r, 5);
    p->sample_rate = PQgetisnull(res, r, 6) ? 0 : atoi(PQgetvalue(res, r, 6));
}

/* The context one event's signals need: Recall's own first, else the
 * materializer's row. Returns false when the event needs context and
 * neither has it. */
static bool context_of(const batch_t *b, size_t i, signal_project_t *project, signal_preset_t *preset, int *is_mix)
{
    const prime_event_t *ev = b->events[i];
    const char *type = type_of(ev), *owner = prime_event_string(ev, "owner_user_id");
    const cJSON *facts;
    int r;

    if (!strcmp(type, "project.saved")) {
        const char *id = prime_event_string(ev, "project_id");
        if ((facts = recall_context_get(b->context, owner, CONTEXT_PROJECT, id)))
            project_from_facts(project, owner, facts);
        else if ((r = find_row(b->projects, id)) >= 0)
            project_from_row(project, b->projects, r);
        else
            return false;
    } else if (!strcmp(type, "preset.used")) {
        const char *id = prime_event_string(ev, "preset_id");
        /* The user's own preset: its parameters as they stand in the
         * user's stream. Another user's: only its plugin, which never
         * changes (its parameters change in a stream not ordered with
         * this use, so counting them would depend on timing). */
        if ((facts = recall_context_get(b->context, owner, CONTEXT_PRESET, id))) {
            preset->plugin = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(facts, "plugin"));
            preset->parameters = cJSON_GetObjectItemCaseSensitive(facts, "parameters");
        } else if ((r = find_row(b->presets, id)) >= 0) {
            /* The materializer's row before any claim in the context: it
             * names the preset's one owner (another user's preset.created
             * of the same id is refused there, but Recall's context learns
             * it under that user), and its plugin never changes. */
            char canon[PRIME_UUID_TEXT];
            prime_uuid_canonical(owner, canon);
            preset->plugin = PQgetvalue(b->presets, r, 1);
            if (!PQgetisnull(b->presets, r, 3) && !strcmp(PQgetvalue(b->presets, r, 3), canon))
                preset->parameters = b->parameters[r];
        } else if ((facts = recall_context_shared_preset(b->context, id))) {
            preset->plugin = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(facts, "plugin"));
        } else {
            return false;
        }
    } else if (!strcmp(type, "audio.analyzed")) {
        const char *id = prime_event_string(ev, "file_id");
        if ((facts = recall_context_get(b->context, owner, CONTEXT_FILE, id)))
            *is_mix = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(facts, "is_mix"));
        else if ((r = find_row(b->files, id)) >= 0)
            *is_mix = !strcmp(PQgetvalue(b->files, r, 1), "t");
        else
            return false;
    }
    return true;
}

/* The signals of every event of the batch, in the batch's order, each
 * with its context as it stands then; each event's own facts are learned
 * after its signals (a create gives its own, a delete forgets). */
static prime_errcode_t build_signals(batch_t *b, prime_error_t *err)
{
    size_t no_context = 0;

    signal_list_free(&b->signals);
    for (size_t i = 0; i < b->n; i++) {
        signal_project_t project = {0};
        signal_preset_t preset = {0};
        int is_mix = -1;
        if (!context_of(b, i, &project, &preset, &is_mix))
            no_context++;
        if (signals_of(&b->signals, i, b->events[i], &project, &preset, is_mix) < 0 ||
            !recall_context_learn(b->context, b->events[i]))
            return prime_error_set(err, PRIME_ERR_NOMEM, NULL, "out of memory");
    }
    /* Not lost in silence: neither Recall nor the materializer knows the
     * project, preset or file (created before both, or never). */
    if (no_context)
        prime_log(PRIME_LOG_WARN, "events whose project, preset or file is not known: no signal", "events=%zu",
                  no_context);
    return PRIME_OK;
}

static int cmp_text(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Takes the event ids of the batch's events in (prime_pipeline.
 * applied_events, under this worker's group) and keeps the events whose
 * id was new: an event published twice is applied once. */
static prime_errcode_t take_in(prime_worker_t *w, PGconn *conn, batch_t *b, prime_error_t *err)
{
    prime_buf_t ids;
    const char *params[2];
    PGresult *res;
    size_t kept = 0, fresh;
    char **found;

    if (!b->n)
        return PRIME_OK;
    prime_buf_init(&ids, 0);
    prime_pg_array_begin(&ids);
    for (size_t i = 0; i < b->n; i++)
        prime_pg_array_add(&ids, prime_event_string(b->events[i], "event_id"));
    prime_pg_array_end(&ids);
    params[0] = prime_worker_group(w);
    params[1] = ids.data;
    res = prime_pg_query(conn,
                         "INSERT INTO prime_pipeline.applied_events (group_id, event_id) "
                         "SELECT $1, unnest($2::uuid[]) ON CONFLICT DO NOTHING RETURNING event_id::text",
                         2, params, "recording event ids", err);
    prime_buf_free(&ids);
    if (!res)
        return err->code;
    fresh = (size_t)PQntuples(res);
    if (!(found = calloc(fresh + 1, sizeof(*found)))) {
        PQclear(res);
        return prime_error_set(err, PRIME_ERR_NOMEM, NULL, "out of memory");
    }
    bool *taken = calloc(fresh + 1, sizeof(*taken));
    if (!taken) {
        free(found);
        PQclear(res);
        return prime_error_set(err, PRIME_ERR_NOMEM, NULL, "out of memory");
    }
    for (size_t r = 0; r < fresh; r++)
        found[r] = PQgetvalue(res, (int)r, 0);
    qsort(found, fresh, sizeof(*found), cmp_text);
    /* An id comes back once: its first event in the batch takes it. */
    for (size_t i = 0; i < b->n; i++) {
        char canon[PRIME_UUID_TEXT], *key = canon, **hit;
        prime_uuid_canonical(prime_event_string(b->events[i], "event_id"), canon);
        hit = bsearch(&key, found, fresh, sizeof(*found), cmp_text);
        if (hit && !taken[hit - found]) {
            taken[hit - found] = true;
            b->records[kept] = b->records[i];
            b->events[kept++] = b->events[i];
        } else {
            prime_log(PRIME_LOG_INFO, "event published twice; applied once", "event_id=%s", canon);
            prime_event_free(b->events[i]);
        }
    }
    b->n = kept;
    free(taken);
    free(found);
    PQclear(res);
    return PRIME_OK;
}

/* The topic of the users' registrations, and the most partitions of it
 * looked at. */
#define USERS_TOPIC "prime.users"
#define USERS_MAX_PARTITIONS 1024

/* How many records of prime.users, up to its end as of now, the
 * materializer's group has not passed yet. A client registers before it
 * acts, so once it has passed them all, an owner still missing is not on
 * its way (never registered, refused, or deleted). */
static prime_errcode_t users_behind(prime_worker_t *w, const recall_t *r, PGconn *conn, long long *behind,
                                    bool *started, prime_error_t *err)
{
    static const char sql[] = "SELECT coalesce(sum(x.e - coalesce(c.next_offset, 0)), 0), "
                              "EXISTS (SELECT FROM prime_pipeline.consumer_offsets WHERE group_id = $1) "
                              "FROM unnest($2::int[], $3::bigint[]) AS x(p, e) "
                              "LEFT JOIN prime_pipeline.consumer_offsets c ON c.group_id = $1 AND c.topic = '" USERS_TOPIC
                              "' AND c.kafka_partition = x.p WHERE coalesce(c.next_offset, 0) < x.e";
    int64_t ends[USERS_MAX_PARTITIONS];
    prime_buf_t cols[2];
    const char *params[3];
    PGresult *res;
    prime_errcode_t rc;
    int n;

    *behind = 0;
    if ((rc = prime_worker_topic_ends(w, USERS_TOPIC, ends, USERS_MAX_PARTITIONS, &n, err)))
        return rc;
    prime_pg_arrays_begin(cols, 2);
    for (int p = 0; p < n; p++) {
        char num[32];
        snprintf(num, sizeof(num), "%d", p);
        prime_pg_array_add(&cols[0], num);
        snprintf(num, sizeof(num), "%lld", (long long)ends[p]);
        prime_pg_array_add(&cols[1], num);
    }
    params[0] = r->materializer_group;
    if (!prime_pg_arrays_end(cols, 2, params + 1)) {
        prime_pg_arrays_free(cols, 2);
        return prime_error_set(err, PRIME_ERR_NOMEM, NULL, "out of memory");
    }
    res = prime_pg_query(conn, sql, 3, params, "reading the materializer's offsets", err);
    prime_pg_arrays_free(cols, 2);
    if (!res)
        return err->code;
    *behind = atoll(PQgetvalue(res, 0, 0));
    *started = !strcmp(PQgetvalue(res, 0, 1), "t");
    PQclear(res);
    return PRIME_OK;
}

static prime_errcode_t refuse(prime_worker_t *w, batch_t *b, size_t i, const char *field, const char *message,
                              prime_error_t *err)
{
    prime_error_t why;

    prime_error_clear(&why);
    prime_error_set(&why, PRIME_ERR_INVALID, field, "%s", message);
    return prime_worker_dead_letter(w, b->records[i], &why, err);
}

/* Keeps the events whose owner is in prime_users (only those that may
 * give a signal need it: context needs no row). An owner not there while
 * prime-materializer is behind on prime.users is waited for (a retriable
 * error: the batch is tried again); one still not there once it has
 * caught up is dead-lettered before its id is taken in, so that prime-dlq
 * can replay it once the user exists (a row would break the foreign key).
 * A replay runs prime-recall after the materializer has finished: no
 * wait. */
/* Reads the batch's owners that are in prime_users (b->owners) and marks
 * the events that may give a signal whose owner is not; *any when one is. */
static prime_errcode_t read_owners(PGconn *conn, batch_t *b, bool *missing, bool *any, prime_error_t *err)
{
    prime_buf_t ids;
    const char *params[1];

    PQclear(b->owners);
    prime_buf_init(&ids, 0);
    prime_pg_array_begin(&ids);
    for (size_t i = 0; i < b->n; i++)
        prime_pg_array_add(&ids, prime_event_string(b->events[i], "owner_user_id"));
    prime_pg_array_end(&ids);
    params[0] = ids.data;
    b->owners = prime_pg_query(conn, "SELECT id::text FROM prime_users WHERE id = ANY($1::uuid[]) ORDER BY id", 1,
                               params, "reading the owners", err);
    prime_buf_free(&ids);
    if (!b->owners)
        return err->code;
    *any = false;
    for (size_t i = 0; i < b->n; i++)
        *any |= missing[i] = needs_owner(b->events[i]) &&
                             find_row(b->owners, prime_event_string(b->events[i], "owner_user_id")) < 0;
    return PRIME_OK;
}

static prime_errcode_t check_owners(prime_worker_t *w, recall_t *r, PGconn *conn, batch_t *b, prime_error_t *err)
{
    prime_errcode_t rc;
    size_t kept = 0;
    bool *missing, any = false;
    long long behind = 0;
    bool started = true;
    char text[400];

    if (!b->n)
        return PRIME_OK;
    if (!(missing = calloc(b->n + 1, sizeof(*missing))))
        return prime_error_set(err, PRIME_ERR_NOMEM, NULL, "out of memory");
    rc = read_owners(conn, b, missing, &any, err);
    /* A client's events may reach their topics before its registration
     * reaches prime.users (a producer sends to several partitions at
     * once): a new event waits a moment for it. */
    if (!rc && any && !prime_worker_replaying(w)) {
        struct timespec now;
        int64_t newest = -1, now_ms;
        clock_gettime(CLOCK_REALTIME, &now);
        now_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
        for (size_t i = 0; i < b->n; i++)
            if (missing[i] && prime_record_timestamp(b->records[i]) > newest)
                newest = prime_record_timestamp(b->records[i]);
        if (newest >= 0 && now_ms - newest < r->owner_wait_ms) {
            rc = prime_error_set(err, PRIME_ERR_DB, NULL,
                                 "events of users not in prime_users yet, %lld ms old: waiting up to %d ms for their "
                                 "registration",
                                 (long long)(now_ms - newest), r->owner_wait_ms);
            err->retriable = true;
        }
    }
    if (!rc && any && *r->materializer_group && !prime_worker_replaying(w)) {
        rc = users_behind(w, r, conn, &behind, &started, err);
        /* Read again: what the materializer committed up to the offsets
         * just read is seen by a later statement (READ COMMITTED). */
        if (!rc && !behind)
            rc = read_owners(conn, b, missing, &any, err);
    }
    if (!rc && behind) {
        /* A group that never stored an offset is waited for until it
         * does: a typo in --materializer-group waits for good, so say it. */
        rc = prime_error_set(err, PRIME_ERR_DB, NULL,
                             "events of users not in prime_users yet, and %s has %lld records of " USERS_TOPIC
                             " to apply: waiting for it%s%s%s",
                             r->materializer_group, behind, started ? "" : " (", started ? "" : r->materializer_group,
                             started ? "" : " has stored no offsets at all: not started yet, or "
                                            "--materializer-group names no group that runs)");
        err->retriable = true;
    }
    if (rc) {
        free(missing);
        return rc;
    }
    for (size_t i = 0; i < b->n; i++) {
        const char *owner = prime_event_string(b->events[i], "owner_user_id");
        const char *actor = prime_event_string(b->events[i], "actor_user_id");
        const char *type = type_of(b->events[i]);
        bool refused = false;
        /* A user's explicit preferences are theirs alone to set, use or
         * forget (docs/materializer.md, "Who may change what"). */
        if (rc) {
            /* kept, to be freed with the batch */
        } else if (!strncmp(type, "recall.", 7) && strcmp(actor ? actor : "", owner)) {
            snprintf(text, sizeof(text), "actor %s may not %s for user %s: not the user", actor ? actor : "-", type,
                     owner);
            rc = refuse(w, b, i, "actor_user_id", text, err);
            refused = true;
        } else if (missing[i]) {
            snprintf(text, sizeof(text), "user %s is not in prime_users (not registered, or deleted)", owner);
            rc = refuse(w, b, i, "owner_user_id", text, err);
            refused = true;
        }
        if (refused) {
            prime_event_free(b->events[i]);
            continue;
        }
        b->records[kept] = b->records[i];
        b->events[kept++] = b->events[i];
    }
    free(missing);
    b->n = kept;
    return rc;
}

/* Locks the batch's (user, category) pairs, in one order (the lock key's),
 * so that two instances never wait for each other in a cycle; then reads
 * every item of those categories. A category's confidences depend on all
 * its items, which is why the lock is on the category, not the row. */
static prime_errcode_t lock_and_read(PGconn *conn, batch_t *b, prime_error_t *err)
{
    prime_buf_t cols[2];
    const char *params[2];
    PGresult *res;
    prime_errcode_t rc = PRIME_OK;

    prime_pg_arrays_begin(cols, 2);
    for (size_t i = 0; i < b->signals.n; i++) {
        char canon[PRIME_UUID_TEXT];
        /* Canonical: an upper-case owner id must take the same lock. */
        prime_uuid_canonical(b->signals.items[i].user, canon);
        prime_pg_array_add(&cols[0], canon);
        prime_pg_array_add(&cols[1], b->signals.items[i].category);
    }
    if (!prime_pg_arrays_end(cols, 2, params)) {
        prime_pg_arrays_free(cols, 2);
        return prime_error_set(err, PRIME_ERR_NOMEM, NULL, "out of memory");
    }
    res = prime_pg_query(conn,
                         "SELECT count(pg_advisory_xact_lock(" RECALL_LOCK_CLASS ", h)) FROM "
                         "(SELECT DISTINCT hashtext(u || '/' || c) AS h FROM unnest($1::text[], $2::text[]) AS x(u, c) "
                         "ORDER BY 1) AS s",
                         2, params, "locking the categories", err);
    if (!res)
        rc = err->code;
    PQclear(res);
    if (!rc) {
        /* A row from before prime-recall has no state: it starts from its
         * usage count, without evidence. */
        b->rows = prime_pg_query(
            conn,
            "SELECT m.id::text, m.user_id::text, m.category, m.recall_key, coalesce(s.state, jsonb_build_object("
            "'uses', coalesce(m.usage_count, 0), "
            "'first', (extract(epoch FROM coalesce(m.created_at, now())) * 1000000)::bigint, "
            "'last', (extract(epoch FROM coalesce(m.last_used_at, now())) * 1000000)::bigint))::text "
            "FROM mixx_recall m LEFT JOIN prime_pipeline.recall_state s ON s.id = m.id WHERE (m.user_id, m.category) IN "
            "(SELECT DISTINCT u::uuid, c FROM unnest($1::text[], $2::text[]) AS x(u, c))",
            2, params, "reading the recall items", err);
        if (!b->rows)
            rc = err->code;
    }
    prime_pg_arrays_free(cols, 2);
    return rc;
}

static int cmp_key(const void *a, const void *b)
{
    const recall_item_t *x = *(recall_item_t *const *)a, *y = *(recall_item_t *const *)b;
    int c = strcmp(x->user, y->user);
    if (!c)
        c = strcmp(x->category, y->category);
    return c ? c : strcmp(x->key, y->key);
}

static int cmp_item(const void *a, const void *b)
{
    int c = cmp_key(a, b);
    if (!c) /* the row's item first: it is the one kept */
        c = (int)(*(recall_item_t *const *)b)->present - (int)(*(recall_item_t *const *)a)->present;
    return c;
}

static recall_item_t *find_item(batch_t *b, const char *user, const char *category, const char *key)
{
    recall_item_t probe = {.user = (char *)user, .category = (char *)category, .key = (char *)key};
    recall_item_t *p = &probe, **found = bsearch(&p, b->items, b->nitems, sizeof(*b->items), cmp_key);
    return found ? *found : NULL;
}

static recall_item_t *new_item(const char *user, const char *category, const char *key, const char *state,
                               bool present)
{
    char name[600], id[PRIME_UUID_TEXT], canon[PRIME_UUID_TEXT];
    int len;
    recall_item_t *it;

    prime_uuid_canonical(user, canon);
    len = snprintf(name, sizeof(name), "%s\n%s\n%s", canon, category, key);
    if (len < 0 || (size_t)len >= sizeof(name) || prime_uuid_v5(RECALL_NAMESPACE, name, (size_t)len, id))
        return NULL;
    if ((it = recall_item_new(id, canon, category, key, state)))
        it->present = present;
    return it;
}

/* The rows read and one item per signal's key, sorted, one per key. */
static prime_errcode_t gather_items(batch_t *b, prime_error_t *err)
{
    size_t rows = (size_t)PQntuples(b->rows), n = 0;

    b->items = calloc(rows + b->signals.n + 1, sizeof(*b->items));
    if (!b->items)
        return prime_error_set(err, PRIME_ERR_NOMEM, NULL, "out of memory");
    for (size_t r = 0; r < rows; r++) {
        recall_item_t *it = new_item(PQgetvalue(b->rows, (int)r, 1), PQgetvalue(b->rows, (int)r, 2),
                                     PQgetvalue(b->rows, (int)r, 3), PQgetvalue(b->rows, (int)r, 4), true);
        if (!it)
            return prime_error_set(err, PRIME_ERR_INVALID, "state", "prime_pipeline.recall_state of %s: not a JSON object",
                                   PQgetvalue(b->rows, (int)r, 0));
        snprintf(it->id, sizeof(it->id), "%s", PQgetvalue(b->rows, (int)r, 0));
        b->items[b->nitems++] = it;
    }
    for (size_t i = 0; i < b->signals.n; i++) {
        const signal_t *s = &b->signals.items[i];
        if (!(b->items[b->nitems] = new_item(s->user, s->category, s->key, NULL, false)))
            return prime_error_set(err, PRIME_ERR_NOMEM, NULL, "out of memory");
        b->nitems++;
    }
    qsort(b->items, b->nitems, sizeof(*b->items), cmp_item);
    for (size_t i = 0; i < b->nitems; i++) {
        if (n && !strcmp(b->items[n - 1]->user, b->items[i]->user) &&
            !strcmp(b->items[n - 1]->category, b->items[i]->category) &&
            !strcmp(b->items[n - 1]->key, b->items[i]->key)) {
            recall_item_free(b->items[i]);
            continue;
        }
        b->items[n++] = b->items[i];
    }
    b->nitems = n;
    return PRIME_OK;
}

static void fold(recall_t *rc, batch_t *b)
{
    char canon[PRIME_UUID_TEXT];

    for (size_t i = 0; i < b->signals.n; i++) {
        const signal_t *s = &b->signals.items[i];
        recall_item_t *it;
        prime_uuid_canonical(s->user, canon);
        if (!(it = find_item(b, canon, s->category, s->key)))
            continue; /* cannot happen: every signal's key was gathered */
        it->touched = true;
        switch (s->kind) {
        case SIGNAL_FORGET:
            recall_item_clear(it);
            it->gone = true;
            break;
        case SIGNAL_SET:
            it->gone = false;
            recall_item_pin(it, s->t_us, s->event_id, s->confidence, s->settings);
            break;
        case SIGNAL_USE:
            it->gone = false;
            recall_item_use(it, s->t_us, rc->half_life_us);
            recall_item_count_settings(it, s->settings);
            for (int m = 0; m < s->nmoments; m++)
                recall_item_moment(it, s->moment_name[m], s->moment[m]);
            for (int a = 0; a < s->nattrs; a++)
                recall_item_attr(it, s->attr_name[a], s->t_us, s->attr_value[a]);
            break;
        }
    }
}

/* Confidences of every category a signal touched, over all its items in
 * key order (the items are sorted by user, category, key). */
static prime_errcode_t score(recall_t *rc, batch_t *b, prime_error_t *err)
{
    for (size_t start = 0, end; start < b->nitems; start = end) {
        bool touched = false;
        for (end = start; end < b->nitems && !strcmp(b->items[end]->user, b->items[start]->user) &&
                          !strcmp(b->items[end]->category, b->items[start]->category);
             end++)
            touched |= b->items[end]->touched;
        if (!touched)
            continue;
        for (size_t i = start; i < end; i++)
            b->items[i]->touched = true; /* its confidence may move: written back */
        if (!recall_items_score(b->items + start, end - start, rc->half_life_us))
            return prime_error_set(err, PRIME_ERR_NOMEM, NULL, "out of memory");
    }
    return PRIME_OK;
}

/* The seed columns, then the state (prime_pipeline.recall_state), from
 * the same column arrays. created_at is the oldest use, which an older
 * use read later (another partition, another instance) moves back. */
#define UPSERT                                                                                                   \
    "INSERT INTO mixx_recall (id, user_id, category, recall_key, data, confidence, usage_count, last_used_at, "  \
    "created_at, updated_at) "                                                                                   \
    "SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::jsonb[], $6::numeric[], "          \
    "$7::int[], $8::timestamptz[], $9::timestamptz[], $10::timestamptz[]) "                                      \
    "ON CONFLICT (id) DO UPDATE SET data = EXCLUDED.data, confidence = EXCLUDED.confidence, "                    \
    "usage_count = EXCLUDED.usage_count, last_used_at = EXCLUDED.last_used_at, updated_at = EXCLUDED.updated_at, "   \
    "created_at = EXCLUDED.created_at"
#define UPSERT_STATE                                                                                             \
    "INSERT INTO prime_pipeline.recall_state (id, state) SELECT * FROM unnest($1::uuid[], $2::jsonb[]) "         \
    "ON CONFLICT (id) DO UPDATE SET state = EXCLUDED.state"

static prime_errcode_t write_back(PGconn *conn, batch_t *b, prime_error_t *err)
{
    prime_buf_t cols[11], gone;
    const char *params[11];
    size_t nup = 0, ngone = 0;
    prime_errcode_t rc = PRIME_OK;

    prime_pg_arrays_begin(cols, 11);
    prime_buf_init(&gone, 0);
    prime_pg_array_begin(&gone);
    for (size_t i = 0; i < b->nitems && !rc; i++) {
        recall_item_t *it = b->items[i];
        char num[32], when[3][PRIME_TIME_TEXT], *data, *state;
        int64_t uses;
        if (!it->touched)
            continue;
        if (it->gone) {
            if (it->present) {
                prime_pg_array_add(&gone, it->id);
                ngone++;
            }
            continue;
        }
        data = recall_item_data(it);
        state = recall_item_state_text(it);
        if (!data || !state) {
            free(data), free(state);
            rc = prime_error_set(err, PRIME_ERR_NOMEM, NULL, "out of memory");
            break;
        }
        prime_pg_array_add(&cols[0], it->id);
        prime_pg_array_add(&cols[1], it->user);
        prime_pg_array_add(&cols[2], it->category);
        prime_pg_array_add(&cols[3], it->key);
        prime_pg_array_add(&cols[4], data);
        snprintf(num, sizeof(num), "%.2f", it->confidence);
        prime_pg_array_add(&cols[5], num);
        uses = recall_item_uses(it);
        snprintf(num, sizeof(num), "%lld", (long long)(uses > INT_MAX ? INT_MAX : uses));
        prime_pg_array_add(&cols[6], num);
        prime_time_format_rfc3339(recall_item_last(it), when[0]);
        prime_time_format_rfc3339(recall_item_first(it), when[1]);
        prime_pg_array_add(&cols[7], when[0]);
        prime_pg_array_add(&cols[8], when[1]);
        prime_pg_array_add(&cols[9], when[0]);
        prime_pg_array_add(&cols[10], state);
        free(data), free(state);
        nup++;
    }
    prime_pg_array_end(&gone);
    if (!rc && !prime_pg_arrays_end(cols, 11, params))
        rc = prime_error_set(err, PRIME_ERR_NOMEM, NULL, "out of memory");
    if (!rc && ngone) {
        const char *p[1] = {gone.data};
        rc = prime_pg_exec_params(conn, "DELETE FROM mixx_recall WHERE id = ANY($1::uuid[])", 1, p,
                                  "deleting forgotten recall items", err);
    }
    if (!rc && nup)
        rc = prime_pg_exec_params(conn, UPSERT, 10, params, "writing recall items", err);
    if (!rc && nup) {
        const char *state_params[2] = {params[0], params[10]}; /* ids and states */
        rc = prime_pg_exec_params(conn, UPSERT_STATE, 2, state_params, "writing recall state", err);
    }
    prime_pg_arrays_free(cols, 11);
    prime_buf_free(&gone);
    return rc;
}

static prime_errcode_t apply(prime_worker_t *w, PGconn *conn, const prime_record_t *records, size_t n, void *ctx,
                             prime_error_t *err)
{
    recall_t *rc_ = ctx;
    batch_t b = {0};
    prime_errcode_t rc = PRIME_OK;
    size_t taken = 0;

    b.events = calloc(n + 1, sizeof(*b.events));
    b.records = calloc(n + 1, sizeof(*b.records));
    if (!b.records || !b.events) {
        free(b.records), free(b.events);
        return prime_error_set(err, PRIME_ERR_NOMEM, NULL, "out of memory");
    }
    for (size_t i = 0; i < n && !rc; i++) {
        prime_event_t *ev = NULL;
        if ((rc = prime_worker_decode(w, rc_->reg, &records[i], &ev, err)) || !ev)
            continue;
        b.records[b.n] = &records[i];
        b.events[b.n++] = ev;
    }
    /* Events that say nothing to Recall are not taken in; then the
     * owners, the ids, and the context (Recall's own, and the
     * materializer's rows for what it does not know). */
    drop_silent(&b);
    if (!rc)
        rc = check_owners(w, rc_, conn, &b, err);
    if (!rc)
        rc = take_in(w, conn, &b, err);
    if (!rc)
        rc = load_context(conn, &b, err);
    if (!rc && !(b.context = recall_context_new(3 * b.n)))
        rc = prime_error_set(err, PRIME_ERR_NOMEM, NULL, "out of memory");
    if (!rc)
        rc = recall_context_load(b.context, conn, b.events, b.n, err);
    if (!rc)
        rc = build_signals(&b, err);
    taken = b.n;
    if (!rc && b.signals.n)
        rc = lock_and_read(conn, &b, err);
    if (!rc && b.signals.n)
        rc = gather_items(&b, err);
    /* For tests: widens the window between reading a category and writing
     * it back, where two instances without the lock would lose updates. */
    if (!rc && b.signals.n && getenv("PRIME_RECALL_DELAY_MS"))
        usleep((useconds_t)atoi(getenv("PRIME_RECALL_DELAY_MS")) * 1000);
    if (!rc && b.signals.n) {
        fold(rc_, &b);
        rc = score(rc_, &b, err);
    }
    if (!rc && b.signals.n)
        rc = write_back(conn, &b, err);
    if (!rc)
        rc = recall_context_write(b.context, conn, err);
    if (!rc)
        prime_worker_count_applied(w, taken);
    batch_free(&b);
    return rc;
}

static const char *const default_topics[] = {"prime.recall", "prime.projects", "prime.presets", "prime.audio",
                                             "prime.analysis", "prime.users", NULL};

int main(int argc, char **argv)
{
    char **rest = calloc((size_t)argc + 1, sizeof(char *));
    int nrest = 0, rc;
    double days = 30;
    prime_worker_conf_t conf;
    recall_t r = {.materializer_group = "prime-materializer", .owner_wait_ms = 5000};
    prime_error_t err;

    if (argc > 1 && !strcmp(argv[1], "show")) {
        free(rest);
        return recall_show(argc - 1, argv + 1);
    }
    /* Its own options first; the rest are the runtime's. */
    for (int i = 0; rest && i < argc; i++) {
        if (i + 1 < argc && !strcmp(argv[i], "--half-life-days")) {
            char *end;
            days = strtod(argv[++i], &end);
            if (*end || end == argv[i] || !(days >= 0.001 && days <= 36500)) {
                fprintf(stderr, "prime-recall: --half-life-days: expected 0.001 to 36500, got '%s'\n", argv[i]);
                free(rest);
                return 2;
            }
        } else if (i + 1 < argc && !strcmp(argv[i], "--materializer-group")) {
            r.materializer_group = argv[++i];
        } else if (i + 1 < argc && !strcmp(argv[i], "--owner-wait-ms")) {
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (*end || end == argv[i] || v < 0 || v > 600000) {
                fprintf(stderr, "prime-recall: --owner-wait-ms: expected 0 to 600000, got '%s'\n", argv[i]);
                free(rest);
                return 2;
            }
            r.owner_wait_ms = (int)v;
        } else {
            rest[nrest++] = argv[i];
        }
    }
    if (!rest)
        return 1;
    rc = prime_worker_conf_parse(&conf, "recall", default_topics, nrest, rest);
    if (rc) {
        if (rc < 0) {
            puts("  --half-life-days D    a use weighs half as much D days (event time) later (default 30)");
            puts("  --materializer-group G  an unknown owner's events wait while G has prime.users\n"
                 "                        records to apply (default prime-materializer; \"\": never wait)");
            puts("  --owner-wait-ms MS    and while the newest of them is younger than MS (default 5000)");
            puts("prime-recall show USER [--category C] [--json] [--db CONNINFO]");
        }
        free(rest);
        return rc < 0 ? 0 : rc;
    }
    r.half_life_us = llround(days * 86400.0 * 1e6);
    prime_error_clear(&err);
    if (!(r.reg = prime_registry_new(&err))) {
        fprintf(stderr, "prime-recall: %s\n", err.message);
        free(rest);
        return 1;
    }
    rc = prime_worker_run(&conf, apply, &r);
    prime_registry_free(r.reg);
    free(rest);
    return rc;
}
