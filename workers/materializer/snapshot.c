/* Snapshots as the fold asks for them (fold.h): the project row as it is at
 * the event, with the analysis of its latest mix as it is then. derived.c
 * turns the request into a snapshot.created. */
#include "fold.h"
#include "prime/pg.h"
#include "prime/time.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void fold_snapshot_clear(snapshot_wanted_t *w)
{
    free(w->project_data);
    free(w->audio_analysis);
    free(w->musical_context);
    memset(w, 0, sizeof(*w));
}

void fold_need_mixes(fold_t *f, const char *project_id)
{
    if (!f->nmix_projects++) {
        prime_buf_reset(&f->mix_projects);
        prime_pg_array_begin(&f->mix_projects);
    }
    prime_pg_array_add(&f->mix_projects, project_id);
}

/* The latest analysed mix of the project, as the fold has it now (every
 * mix row of the project is tracked: store_track_mixes). */
static const row_t *latest_mix(fold_t *f, const char *project_id)
{
    const rowset_t *s = &f->sets[T_AUDIO_FILES];
    size_t project = C_audio_files_project_id, mix = C_audio_files_is_mix,
           analysis = C_audio_files_audio_analysis, uploaded = C_audio_files_uploaded_at;
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

void fold_want_snapshot(fold_t *f, const row_t *r, const char *type, const prime_event_t *request)
{
    snapshot_wanted_t *w = &f->snapshot;
    const char *data = r->values[C_studio_projects_project_data];
    const row_t *mix = latest_mix(f, r->id);
    const char *analysis = mix ? mix->values[C_audio_files_audio_analysis] : NULL;
    const char *context = mix ? mix->values[C_audio_files_musical_context] : NULL;

    fold_snapshot_clear(w);
    snprintf(w->project_id, sizeof(w->project_id), "%s", r->id);
    snprintf(w->owner, sizeof(w->owner), "%s", r->values[C_studio_projects_user_id]);
    w->type = type;
    w->name = request ? prime_event_string(request, "snapshot_name") : NULL;
    w->description = request ? prime_event_string(request, "description") : NULL;
    w->version = atoi(r->values[C_studio_projects_project_version]);
    w->project_data = strdup(data ? data : "{}");
    w->audio_analysis = analysis ? strdup(analysis) : NULL;
    w->musical_context = context ? strdup(context) : NULL;
    f->want_snapshot = w->project_data && (!analysis || w->audio_analysis) && (!context || w->musical_context);
    if (!f->want_snapshot) /* a snapshot is never dropped quietly */
        fold_oom(f, "copying a snapshot");
}
