#include "tables.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char default_event_time[] = "(event time)";

static const column_t prime_users[] = {
    {"id", DEFAULT_NULL},
    {"email", DEFAULT_NULL},
    {"email_verified", "f"},
    {"username", DEFAULT_NULL},
    {"display_name", DEFAULT_NULL},
    {"avatar_url", DEFAULT_NULL},
    {"bio", DEFAULT_NULL},
    {"preferred_genres", "{}"},
    {"default_bpm", DEFAULT_NULL},
    {"default_key", DEFAULT_NULL},
    {"preferred_lufs_target", DEFAULT_NULL},
    {"devices", "[]"},
    {"last_active_device_id", DEFAULT_NULL},
    {"created_at", DEFAULT_EVENT_TIME},
    {"updated_at", DEFAULT_EVENT_TIME},
    {"last_login_at", DEFAULT_NULL},
};

static const column_t studio_projects[] = {
    {"id", DEFAULT_NULL},
    {"user_id", DEFAULT_NULL},
    {"name", DEFAULT_NULL},
    {"description", DEFAULT_NULL},
    {"bpm", DEFAULT_NULL},
    {"key", DEFAULT_NULL},
    {"time_signature", "4/4"},
    {"sample_rate", "44100"},
    {"bit_depth", "24"},
    {"target_lufs", DEFAULT_NULL},
    {"current_lufs", DEFAULT_NULL},
    {"dynamic_range", DEFAULT_NULL},
    {"project_data", DEFAULT_NULL},
    {"project_version", "1"},
    {"project_size_bytes", DEFAULT_NULL},
    {"is_collaborative", "f"},
    {"collaborators", "[]"},
    {"audio_files_storage_path", DEFAULT_NULL},
    {"stems_storage_path", DEFAULT_NULL},
    {"snapshots_storage_path", DEFAULT_NULL},
    {"tags", "{}"},
    {"genre", DEFAULT_NULL},
    {"mood", DEFAULT_NULL},
    {"created_at", DEFAULT_EVENT_TIME},
    {"updated_at", DEFAULT_EVENT_TIME},
    {"last_opened_at", DEFAULT_NULL},
    {"last_saved_at", DEFAULT_NULL},
};

static const column_t session_states[] = {
    {"id", DEFAULT_NULL},
    {"project_id", DEFAULT_NULL},
    {"user_id", DEFAULT_NULL},
    {"device_id", DEFAULT_NULL},
    {"session_token", DEFAULT_NULL},
    {"cursor_position", DEFAULT_NULL},
    {"view_state", DEFAULT_NULL},
    {"active_tool", DEFAULT_NULL},
    {"is_active", "t"},
    {"last_heartbeat", DEFAULT_EVENT_TIME},
    {"created_at", DEFAULT_EVENT_TIME},
    {"updated_at", DEFAULT_EVENT_TIME},
};

/* recall_key is added by migration 0004 (the natural key). */
static const column_t mixx_recall[] = {
    {"id", DEFAULT_NULL},
    {"user_id", DEFAULT_NULL},
    {"category", DEFAULT_NULL},
    {"data", DEFAULT_NULL},
    {"confidence", "1.0"},
    {"usage_count", "1"},
    {"last_used_at", DEFAULT_EVENT_TIME},
    {"created_at", DEFAULT_EVENT_TIME},
    {"updated_at", DEFAULT_EVENT_TIME},
    {"recall_key", DEFAULT_NULL},
};

#define TABLE(name) {#name, name, sizeof(name) / sizeof(name[0])}

const table_t tables[T_COUNT] = {
    [T_PRIME_USERS] = TABLE(prime_users),
    [T_STUDIO_PROJECTS] = TABLE(studio_projects),
    [T_SESSION_STATES] = TABLE(session_states),
    [T_MIXX_RECALL] = TABLE(mixx_recall),
};

size_t column_index(table_id_t t, const char *name)
{
    for (size_t i = 0; i < tables[t].ncolumns; i++)
        if (!strcmp(tables[t].columns[i].name, name))
            return i;
    fprintf(stderr, "materializer: %s has no column %s\n", tables[t].name, name);
    abort();
}
