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

/* is_mix is added by migration 0005: the project's mix, whose analysis
 * sets studio_projects.current_lufs and dynamic_range. */
static const column_t audio_files[] = {
    {"id", DEFAULT_NULL},
    {"project_id", DEFAULT_NULL},
    {"user_id", DEFAULT_NULL},
    {"filename", DEFAULT_NULL},
    {"original_filename", DEFAULT_NULL},
    {"file_path", DEFAULT_NULL},
    {"file_size_bytes", DEFAULT_NULL},
    {"mime_type", DEFAULT_NULL},
    {"duration_seconds", DEFAULT_NULL},
    {"sample_rate", DEFAULT_NULL},
    {"bit_depth", DEFAULT_NULL},
    {"channels", DEFAULT_NULL},
    {"format", DEFAULT_NULL},
    {"audio_analysis", DEFAULT_NULL},
    {"musical_context", DEFAULT_NULL},
    {"is_stem", "f"},
    {"stem_type", DEFAULT_NULL},
    {"parent_file_id", DEFAULT_NULL},
    {"tags", "{}"},
    {"created_at", DEFAULT_EVENT_TIME},
    {"uploaded_at", DEFAULT_EVENT_TIME},
    {"is_mix", "f"},
};

static const column_t plugin_presets[] = {
    {"id", DEFAULT_NULL},
    {"user_id", DEFAULT_NULL},
    {"name", DEFAULT_NULL},
    {"description", DEFAULT_NULL},
    {"plugin_type", DEFAULT_NULL},
    {"parameters", DEFAULT_NULL},
    {"is_public", "f"},
    {"is_system_preset", "f"},
    {"usage_count", "0"},
    {"last_used_at", DEFAULT_NULL},
    {"tags", "{}"},
    {"created_at", DEFAULT_EVENT_TIME},
    {"updated_at", DEFAULT_EVENT_TIME},
};

static const column_t collaboration_sessions[] = {
    {"id", DEFAULT_NULL},
    {"project_id", DEFAULT_NULL},
    {"session_name", DEFAULT_NULL},
    {"started_by", DEFAULT_NULL},
    {"participants", DEFAULT_NULL},
    {"is_active", "t"},
    {"started_at", DEFAULT_EVENT_TIME},
    {"ended_at", DEFAULT_NULL},
    {"notes", DEFAULT_NULL},
    {"created_at", DEFAULT_EVENT_TIME},
};

static const column_t auth_credentials[] = {
    {"id", DEFAULT_NULL},
    {"user_id", DEFAULT_NULL},
    {"credential_type", DEFAULT_NULL},
    {"email", DEFAULT_NULL},
    {"password_hash", DEFAULT_NULL},
    {"salt", DEFAULT_NULL},
    {"oauth_provider", DEFAULT_NULL},
    {"oauth_id", DEFAULT_NULL},
    {"oauth_data", DEFAULT_NULL},
    {"email_verified", "f"},
    {"verification_token", DEFAULT_NULL},
    {"verification_expires_at", DEFAULT_NULL},
    {"reset_token", DEFAULT_NULL},
    {"reset_expires_at", DEFAULT_NULL},
    {"created_at", DEFAULT_EVENT_TIME},
    {"updated_at", DEFAULT_EVENT_TIME},
    {"last_login_at", DEFAULT_NULL},
};

static const column_t auth_sessions[] = {
    {"id", DEFAULT_NULL},
    {"user_id", DEFAULT_NULL},
    {"session_token", DEFAULT_NULL},
    {"device_id", DEFAULT_NULL},
    {"device_name", DEFAULT_NULL},
    {"device_type", DEFAULT_NULL},
    {"access_token_hash", DEFAULT_NULL},
    {"refresh_token_hash", DEFAULT_NULL},
    {"access_token_expires_at", DEFAULT_NULL},
    {"refresh_token_expires_at", DEFAULT_NULL},
    {"ip_address", DEFAULT_NULL},
    {"user_agent", DEFAULT_NULL},
    {"is_revoked", "f"},
    {"last_activity_at", DEFAULT_EVENT_TIME},
    {"created_at", DEFAULT_EVENT_TIME},
};

/* Written by the snapshot writer (from prime.snapshots); the materializer
 * reads it to restore a project. */
static const column_t project_snapshots[] = {
    {"id", DEFAULT_NULL},
    {"project_id", DEFAULT_NULL},
    {"user_id", DEFAULT_NULL},
    {"snapshot_name", DEFAULT_NULL},
    {"description", DEFAULT_NULL},
    {"snapshot_type", "auto"},
    {"project_data", DEFAULT_NULL},
    {"project_version", DEFAULT_NULL},
    {"audio_analysis", DEFAULT_NULL},
    {"musical_context", DEFAULT_NULL},
    {"created_at", DEFAULT_EVENT_TIME},
    {"created_by", DEFAULT_NULL},
};

#define TABLE(name) {#name, name, sizeof(name) / sizeof(name[0])}

const table_t tables[T_COUNT] = {
    [T_PRIME_USERS] = TABLE(prime_users),
    [T_STUDIO_PROJECTS] = TABLE(studio_projects),
    [T_SESSION_STATES] = TABLE(session_states),
    [T_MIXX_RECALL] = TABLE(mixx_recall),
    [T_AUDIO_FILES] = TABLE(audio_files),
    [T_PLUGIN_PRESETS] = TABLE(plugin_presets),
    [T_COLLABORATION_SESSIONS] = TABLE(collaboration_sessions),
    [T_AUTH_CREDENTIALS] = TABLE(auth_credentials),
    [T_AUTH_SESSIONS] = TABLE(auth_sessions),
    [T_PROJECT_SNAPSHOTS] = TABLE(project_snapshots),
};

/* audio_files.parent_file_id and collaboration_sessions.started_by have
 * no ON DELETE action in the seed: the database refuses such a delete,
 * and the event doing it is dead-lettered with its message. */
const cascade_t cascades[] = {
    {T_PRIME_USERS, T_STUDIO_PROJECTS, "user_id"},
    {T_PRIME_USERS, T_MIXX_RECALL, "user_id"},
    {T_PRIME_USERS, T_SESSION_STATES, "user_id"},
    {T_PRIME_USERS, T_AUDIO_FILES, "user_id"},
    {T_PRIME_USERS, T_PLUGIN_PRESETS, "user_id"},
    {T_PRIME_USERS, T_AUTH_CREDENTIALS, "user_id"},
    {T_PRIME_USERS, T_AUTH_SESSIONS, "user_id"},
    {T_PRIME_USERS, T_PROJECT_SNAPSHOTS, "user_id"},
    {T_STUDIO_PROJECTS, T_SESSION_STATES, "project_id"},
    {T_STUDIO_PROJECTS, T_AUDIO_FILES, "project_id"},
    {T_STUDIO_PROJECTS, T_COLLABORATION_SESSIONS, "project_id"},
    {T_STUDIO_PROJECTS, T_PROJECT_SNAPSHOTS, "project_id"},
};
const size_t ncascades = sizeof(cascades) / sizeof(cascades[0]);

size_t column_index(table_id_t t, const char *name)
{
    for (size_t i = 0; i < tables[t].ncolumns; i++)
        if (!strcmp(tables[t].columns[i].name, name))
            return i;
    fprintf(stderr, "materializer: %s has no column %s\n", tables[t].name, name);
    abort();
}
