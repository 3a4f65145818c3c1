#include "tables.h"

const char default_event_time[] = "(event time)";

#define PRIME_COLUMN(t, column, fresh) {#column, fresh},
#define PRIME_TABLE_COLUMNS(id, name) static const column_t name##_columns[] = {COLUMNS_##name(PRIME_COLUMN, name)};
PRIME_TABLES(PRIME_TABLE_COLUMNS)

#define PRIME_TABLE(id, name) [id] = {#name, name##_columns, sizeof(name##_columns) / sizeof(name##_columns[0])},
const table_t tables[T_COUNT] = {PRIME_TABLES(PRIME_TABLE)};

/* audio_files.parent_file_id and collaboration_sessions.started_by have
 * no ON DELETE action in the seed: the database refuses such a delete,
 * and the event doing it is dead-lettered with its message. */
const cascade_t cascades[] = {
    {T_PRIME_USERS, T_STUDIO_PROJECTS, C_studio_projects_user_id},
    {T_PRIME_USERS, T_MIXX_RECALL, C_mixx_recall_user_id},
    {T_PRIME_USERS, T_SESSION_STATES, C_session_states_user_id},
    {T_PRIME_USERS, T_AUDIO_FILES, C_audio_files_user_id},
    {T_PRIME_USERS, T_PLUGIN_PRESETS, C_plugin_presets_user_id},
    {T_PRIME_USERS, T_AUTH_CREDENTIALS, C_auth_credentials_user_id},
    {T_PRIME_USERS, T_AUTH_SESSIONS, C_auth_sessions_user_id},
    {T_PRIME_USERS, T_PROJECT_SNAPSHOTS, C_project_snapshots_user_id},
    {T_STUDIO_PROJECTS, T_SESSION_STATES, C_session_states_project_id},
    {T_STUDIO_PROJECTS, T_AUDIO_FILES, C_audio_files_project_id},
    {T_STUDIO_PROJECTS, T_COLLABORATION_SESSIONS, C_collaboration_sessions_project_id},
    {T_STUDIO_PROJECTS, T_PROJECT_SNAPSHOTS, C_project_snapshots_project_id},
};
const size_t ncascades = sizeof(cascades) / sizeof(cascades[0]);
