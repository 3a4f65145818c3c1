#ifndef PRIME_RECALL_SIGNALS_H
#define PRIME_RECALL_SIGNALS_H

/* What an event tells Mixx Recall: signals, each about one item (user,
 * category, recall_key). Explicit ones come from recall.* events; implicit
 * ones are derived from projects, presets, analyses and devices
 * (docs/recall.md has the table). */

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "prime/event.h"

typedef enum { SIGNAL_USE, SIGNAL_SET, SIGNAL_FORGET } signal_kind_t;

#define SIGNAL_MAX_MOMENTS 2
#define SIGNAL_MAX_ATTRS 4

typedef struct signal {
    size_t event;            /* the batch's event it came from */
    signal_kind_t kind;
    const char *user, *category;
    char key[216];
    int64_t t_us;            /* the event's occurred_at */
    const char *event_id;
    const cJSON *settings;   /* USE: settings in use (counted); SET: data */
    double confidence;       /* SET */
    int nmoments, nattrs;
    const char *moment_name[SIGNAL_MAX_MOMENTS];
    double moment[SIGNAL_MAX_MOMENTS];
    const char *attr_name[SIGNAL_MAX_ATTRS], *attr_value[SIGNAL_MAX_ATTRS];
} signal_t;

/* What an event needs from rows of other tables, looked up for the whole
 * batch in one query each (by signals_context_*). NULL when not known. */
typedef struct signal_project {
    const char *user, *genre, *key, *time_signature;
    double bpm;              /* 0: none */
    int sample_rate;         /* 0: none */
} signal_project_t;

typedef struct signal_preset {
    const char *plugin;
    const cJSON *parameters;
} signal_preset_t;

typedef struct signal_list {
    signal_t *items;
    size_t n, cap;
    cJSON **owned;           /* JSON parsed for signals, freed with the list */
    size_t nowned, capowned;
} signal_list_t;

void signal_list_free(signal_list_t *l);

/* The signals of one event, appended to l. project, preset and is_mix are
 * its context (zeroed / -1 when not known): Recall's own, or the
 * materializer's row (recall.c). Implicit signals count only when the
 * event's actor is its owner. Returns the
 * number appended, or -1 when out of memory. */
int signals_of(signal_list_t *l, size_t index, const prime_event_t *ev, const signal_project_t *project,
               const signal_preset_t *preset, int is_mix);

#endif
