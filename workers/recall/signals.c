#include "signals.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void signal_list_free(signal_list_t *l)
{
    for (size_t i = 0; i < l->nowned; i++)
        cJSON_Delete(l->owned[i]);
    free(l->owned);
    free(l->items);
    memset(l, 0, sizeof(*l));
}

static cJSON *keep_json(signal_list_t *l, const char *text)
{
    cJSON *j;

    if (!text || !(j = cJSON_Parse(text)))
        return NULL;
    if (l->nowned == l->capowned) {
        size_t cap = l->capowned ? l->capowned * 2 : 64;
        cJSON **more = realloc(l->owned, cap * sizeof(*more));
        if (!more) {
            cJSON_Delete(j);
            return NULL;
        }
        l->owned = more;
        l->capowned = cap;
    }
    return l->owned[l->nowned++] = j;
}

/* A new signal about (category, key) from event index; NULL when out of
 * memory or the key does not fit. */
static signal_t *add(signal_list_t *l, size_t index, const prime_event_t *ev, signal_kind_t kind,
                     const char *category, const char *key)
{
    signal_t *s;
    int64_t t = 0;
    int len;

    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 256;
        signal_t *more = realloc(l->items, cap * sizeof(*more));
        if (!more)
            return NULL;
        l->items = more;
        l->cap = cap;
    }
    s = &l->items[l->n];
    memset(s, 0, sizeof(*s));
    len = snprintf(s->key, sizeof(s->key), "%s", key);
    if (len < 0 || (size_t)len >= sizeof(s->key) || !*key)
        return NULL;
    prime_event_get_long(ev, "occurred_at", &t, NULL, NULL);
    s->event = index;
    s->kind = kind;
    s->user = prime_event_string(ev, "owner_user_id");
    s->category = category;
    s->t_us = t;
    s->event_id = prime_event_string(ev, "event_id");
    s->confidence = 1;
    l->n++;
    return s;
}

static bool number(const prime_event_t *ev, const char *field, double *out)
{
    bool null = true;
    return prime_event_get_double(ev, field, out, &null, NULL) == PRIME_OK && !null && isfinite(*out);
}

/* A project's musical choices: genre, tempo (bands of ten BPM, with the
 * exact BPM's mean and spread), key, time signature, sample rate. */
static int project_signals(signal_list_t *l, size_t index, const prime_event_t *ev, const char *genre,
                           double bpm, const char *key, const char *time_signature, int sample_rate)
{
    char text[64];
    signal_t *s;
    int n = 0;

    if (genre && (s = add(l, index, ev, SIGNAL_USE, "genre", genre)))
        n++;
    if (bpm > 0) {
        int lo = (int)floor(bpm / 10) * 10;
        snprintf(text, sizeof(text), "%d-%d", lo, lo + 9);
        if ((s = add(l, index, ev, SIGNAL_USE, "tempo", text))) {
            s->moment_name[0] = "bpm";
            s->moment[0] = bpm;
            s->nmoments = 1;
            n++;
        }
    }
    if (key && add(l, index, ev, SIGNAL_USE, "key", key))
        n++;
    if (time_signature && add(l, index, ev, SIGNAL_USE, "time_signature", time_signature))
        n++;
    if (sample_rate > 0) {
        snprintf(text, sizeof(text), "%d", sample_rate);
        if (add(l, index, ev, SIGNAL_USE, "sample_rate", text))
            n++;
    }
    return n;
}

static int project_event(signal_list_t *l, size_t index, const prime_event_t *ev)
{
    double bpm = 0;
    int32_t rate = 0;
    bool null = true;

    if (!number(ev, "bpm", &bpm))
        bpm = 0;
    if (prime_event_get_int(ev, "sample_rate", &rate, &null, NULL) || null)
        rate = 0;
    return project_signals(l, index, ev, prime_event_string(ev, "genre"), bpm, prime_event_string(ev, "key"),
                           prime_event_string(ev, "time_signature"), rate);
}

int signals_of(signal_list_t *l, size_t index, const prime_event_t *ev, const signal_project_t *project,
               const signal_preset_t *preset, int is_mix)
{
    const char *type = prime_event_string(ev, "event_type"), *owner = prime_event_string(ev, "owner_user_id");
    const char *actor = prime_event_string(ev, "actor_user_id");
    signal_t *s;
    char key[216];

    if (!type || !owner)
        return 0;
    if (!strcmp(type, "recall.used")) {
        if (!(s = add(l, index, ev, SIGNAL_USE, prime_event_string(ev, "category"),
                      prime_event_string(ev, "recall_key"))))
            return 0;
        s->settings = keep_json(l, prime_event_string(ev, "data"));
        return 1;
    }
    if (!strcmp(type, "recall.set")) {
        double c;
        if (!(s = add(l, index, ev, SIGNAL_SET, prime_event_string(ev, "category"),
                      prime_event_string(ev, "recall_key"))))
            return 0;
        s->settings = keep_json(l, prime_event_string(ev, "data"));
        if (number(ev, "confidence", &c))
            s->confidence = c < 0 ? 0 : c > 1 ? 1 : c;
        return 1;
    }
    if (!strcmp(type, "recall.forgotten"))
        return add(l, index, ev, SIGNAL_FORGET, prime_event_string(ev, "category"),
                   prime_event_string(ev, "recall_key")) ? 1 : 0;
    /* What users do: an implicit signal counts for the user who did it.
     * An editor's save of the owner's project, say, is not the owner's
     * habit (the materializer refuses the rest from anyone but the owner).
     * An analysis is the pipeline's: its actor is its cause's. */
    if (strcmp(type, "audio.analyzed") && strcmp(actor ? actor : "", owner))
        return 0;
    if (!strcmp(type, "project.created") || !strcmp(type, "project.metadata_updated"))
        return project_event(l, index, ev);
    if (!strcmp(type, "project.saved")) {
        /* The save confirms the project's settings as they stand; only the
         * owner's own project speaks for the owner. */
        if (!project || !project->user || strcmp(project->user, owner))
            return 0;
        return project_signals(l, index, ev, project->genre, project->bpm, project->key, project->time_signature,
                               project->sample_rate);
    }
    if (!strcmp(type, "preset.used")) {
        if (!preset || !preset->plugin || !(s = add(l, index, ev, SIGNAL_USE, "plugin", preset->plugin)))
            return 0;
        s->settings = preset->parameters;
        return 1;
    }
    if (!strcmp(type, "audio.analyzed")) {
        double lufs;
        const cJSON *analysis, *lra;
        if (is_mix != 1 || !number(ev, "integrated_lufs", &lufs) ||
            !(s = add(l, index, ev, SIGNAL_USE, "mixing", "loudness")))
            return 0;
        s->moment_name[s->nmoments] = "integrated_lufs";
        s->moment[s->nmoments++] = lufs;
        analysis = keep_json(l, prime_event_string(ev, "audio_analysis"));
        lra = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(analysis, "loudness"),
                                               "loudness_range_lu");
        if (cJSON_IsNumber(lra) && isfinite(lra->valuedouble)) {
            s->moment_name[s->nmoments] = "loudness_range_lu";
            s->moment[s->nmoments++] = lra->valuedouble;
        }
        return 1;
    }
    if (!strcmp(type, "user.device_registered")) {
        static const char *const attrs[] = {"device_name", "device_type", "platform", "app_version"};
        snprintf(key, sizeof(key), "device:%s", prime_event_string(ev, "registered_device_id"));
        if (!(s = add(l, index, ev, SIGNAL_USE, "workflow", key)))
            return 0;
        for (size_t i = 0; i < sizeof(attrs) / sizeof(attrs[0]); i++)
            if (prime_event_string(ev, attrs[i])) {
                s->attr_name[s->nattrs] = attrs[i];
                s->attr_value[s->nattrs++] = prime_event_string(ev, attrs[i]);
            }
        return 1;
    }
    if (!strcmp(type, "user.logged_in") && prime_event_string(ev, "device_id")) {
        snprintf(key, sizeof(key), "device:%s", prime_event_string(ev, "device_id"));
        return add(l, index, ev, SIGNAL_USE, "workflow", key) ? 1 : 0;
    }
    return 0;
}
