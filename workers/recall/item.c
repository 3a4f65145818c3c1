#include "item.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Bounds on what one item remembers of settings: a hostile client cannot
 * grow a row without limit. Values past them are not counted. */
#define MAX_SETTINGS 64
#define MAX_VALUES 32
#define MAX_VALUE_TEXT 200

recall_item_t *recall_item_new(const char *id, const char *user, const char *category, const char *key,
                               const char *state)
{
    recall_item_t *it = calloc(1, sizeof(*it));

    if (!it)
        return NULL;
    snprintf(it->id, sizeof(it->id), "%s", id);
    it->user = strdup(user);
    it->category = strdup(category);
    it->key = strdup(key);
    it->state = state ? cJSON_Parse(state) : cJSON_CreateObject();
    if (!it->user || !it->category || !it->key || !cJSON_IsObject(it->state)) {
        recall_item_free(it);
        return NULL;
    }
    it->confidence = 0;
    return it;
}

void recall_item_free(recall_item_t *it)
{
    if (!it)
        return;
    free(it->user);
    free(it->category);
    free(it->key);
    cJSON_Delete(it->state);
    free(it);
}

void recall_item_clear(recall_item_t *it)
{
    cJSON *empty = cJSON_CreateObject();
    if (!empty)
        return;
    cJSON_Delete(it->state);
    it->state = empty;
}

static double number(const cJSON *o, const char *name, double dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsNumber(v) ? v->valuedouble : dflt;
}

static void set_number(cJSON *o, const char *name, double value)
{
    cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    if (cJSON_IsNumber(v))
        cJSON_SetNumberValue(v, value);
    else {
        cJSON_DeleteItemFromObjectCaseSensitive(o, name);
        cJSON_AddNumberToObject(o, name, value);
    }
}

static void set_string(cJSON *o, const char *name, const char *value)
{
    cJSON_DeleteItemFromObjectCaseSensitive(o, name);
    cJSON_AddStringToObject(o, name, value);
}

static cJSON *member_object(cJSON *o, const char *name)
{
    cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    if (cJSON_IsObject(v))
        return v;
    cJSON_DeleteItemFromObjectCaseSensitive(o, name);
    return cJSON_AddObjectToObject(o, name);
}

/* first and last are minima and maxima of event times: order-free. */
static void seen_at(recall_item_t *it, int64_t t_us)
{
    double first = number(it->state, "first", 0), last = number(it->state, "last", 0);
    if (!cJSON_GetObjectItemCaseSensitive(it->state, "first") || (double)t_us < first)
        set_number(it->state, "first", (double)t_us);
    if (!cJSON_GetObjectItemCaseSensitive(it->state, "last") || (double)t_us > last)
        set_number(it->state, "last", (double)t_us);
}

void recall_item_evidence(const recall_item_t *it, recall_evidence_t *e)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(it->state, "evidence");
    if (!cJSON_IsString(v) || !recall_evidence_parse(e, v->valuestring))
        recall_evidence_init(e);
}

void recall_item_use(recall_item_t *it, int64_t t_us, int64_t h_us)
{
    recall_evidence_t e;
    char text[RECALL_EVIDENCE_TEXT];

    recall_item_evidence(it, &e);
    recall_evidence_add(&e, t_us, h_us);
    recall_evidence_format(&e, text, sizeof(text));
    set_string(it->state, "evidence", text);
    set_number(it->state, "uses", number(it->state, "uses", 0) + 1);
    seen_at(it, t_us);
}

void recall_item_count_settings(recall_item_t *it, const cJSON *settings)
{
    cJSON *all;

    if (!cJSON_IsObject(settings) || !(all = member_object(it->state, "settings")))
        return;
    for (const cJSON *m = settings->child; m; m = m->next) {
        cJSON *counts = cJSON_GetObjectItemCaseSensitive(all, m->string);
        char *text;
        if (!counts) {
            if (cJSON_GetArraySize(all) >= MAX_SETTINGS || strlen(m->string) > MAX_VALUE_TEXT)
                continue;
            counts = cJSON_AddObjectToObject(all, m->string);
        }
        if (!cJSON_IsObject(counts) || !(text = cJSON_PrintUnformatted(m)))
            continue;
        if (strlen(text) <= MAX_VALUE_TEXT) {
            cJSON *c = cJSON_GetObjectItemCaseSensitive(counts, text);
            if (c)
                cJSON_SetNumberValue(c, c->valuedouble + 1);
            else if (cJSON_GetArraySize(counts) < MAX_VALUES)
                cJSON_AddNumberToObject(counts, text, 1);
        }
        cJSON_free(text);
    }
}

void recall_item_moment(recall_item_t *it, const char *name, double value)
{
    cJSON *all = member_object(it->state, "moments");
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(all, name);
    recall_moments_t m = {0, 0, 0};
    char text[80];

    if (!all)
        return;
    if (cJSON_IsString(v))
        sscanf(v->valuestring, "%" SCNd64 ",%" SCNd64 ",%" SCNd64, &m.n, &m.sum, &m.sumsq);
    recall_moments_add(&m, value);
    snprintf(text, sizeof(text), "%" PRId64 ",%" PRId64 ",%" PRId64, m.n, m.sum, m.sumsq);
    set_string(all, name, text);
}

void recall_item_attr(recall_item_t *it, const char *name, int64_t t_us, const char *value)
{
    cJSON *all = member_object(it->state, "attributes"), *old, *pair;

    if (!all || !value)
        return;
    old = cJSON_GetObjectItemCaseSensitive(all, name);
    if (cJSON_GetArraySize(old) == 2) {
        double t = number(old, "t", 0);
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(old, "v");
        if ((double)t_us < t || ((double)t_us == t && cJSON_IsString(v) && strcmp(value, v->valuestring) <= 0))
            return;
    }
    cJSON_DeleteItemFromObjectCaseSensitive(all, name);
    if ((pair = cJSON_AddObjectToObject(all, name))) {
        cJSON_AddNumberToObject(pair, "t", (double)t_us);
        cJSON_AddStringToObject(pair, "v", value);
    }
}

void recall_item_pin(recall_item_t *it, int64_t t_us, const char *event_id, double confidence, const cJSON *data)
{
    cJSON *pin = cJSON_GetObjectItemCaseSensitive(it->state, "pin");

    if (cJSON_IsObject(pin)) {
        double t = number(pin, "t", 0);
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(pin, "event_id");
        if ((double)t_us < t ||
            ((double)t_us == t && cJSON_IsString(id) && strcmp(event_id, id->valuestring) <= 0))
            return;
    }
    cJSON_DeleteItemFromObjectCaseSensitive(it->state, "pin");
    if (!(pin = cJSON_AddObjectToObject(it->state, "pin")))
        return;
    cJSON_AddNumberToObject(pin, "t", (double)t_us);
    cJSON_AddStringToObject(pin, "event_id", event_id);
    cJSON_AddNumberToObject(pin, "confidence", confidence < 0 ? 0 : confidence > 1 ? 1 : confidence);
    cJSON_AddItemToObject(pin, "data", data ? cJSON_Duplicate(data, 1) : cJSON_CreateObject());
    seen_at(it, t_us);
}

int64_t recall_item_uses(const recall_item_t *it)
{
    return (int64_t)number(it->state, "uses", 0);
}

int64_t recall_item_last(const recall_item_t *it)
{
    return (int64_t)number(it->state, "last", 0);
}

int64_t recall_item_first(const recall_item_t *it)
{
    return (int64_t)number(it->state, "first", 0);
}

double recall_item_pinned(const recall_item_t *it)
{
    const cJSON *pin = cJSON_GetObjectItemCaseSensitive(it->state, "pin");
    return cJSON_IsObject(pin) ? number(pin, "confidence", 1) : -1;
}

bool recall_items_score(recall_item_t *const *items, size_t n, int64_t h_us)
{
    double *weight = calloc(n + 1, sizeof(double)), *pin = calloc(n + 1, sizeof(double)),
           *out = calloc(n + 1, sizeof(double));
    int64_t now = INT64_MIN;
    size_t k = 0;

    if (!weight || !pin || !out) {
        free(weight), free(pin), free(out);
        return false;
    }
    for (size_t i = 0; i < n; i++)
        if (!items[i]->gone && recall_item_last(items[i]) > now)
            now = recall_item_last(items[i]);
    for (size_t i = 0; i < n; i++) {
        recall_evidence_t e;
        if (items[i]->gone)
            continue;
        recall_item_evidence(items[i], &e);
        weight[k] = recall_evidence_weight(&e, now, h_us);
        pin[k++] = recall_item_pinned(items[i]);
    }
    recall_confidence(weight, pin, k, out);
    k = 0;
    for (size_t i = 0; i < n; i++)
        items[i]->confidence = items[i]->gone ? 0 : out[k++];
    free(weight), free(pin), free(out);
    return true;
}

static double hundredths(double x)
{
    return (double)llround(x * 100.0) / 100.0;
}

/* The most used value of one setting: the highest count, then the
 * smallest text, so a tie is broken the same way every time. */
static cJSON *most_used(const cJSON *counts)
{
    const cJSON *best = NULL;
    for (const cJSON *c = counts->child; c; c = c->next)
        if (!best || c->valuedouble > best->valuedouble ||
            (c->valuedouble == best->valuedouble && strcmp(c->string, best->string) < 0))
            best = c;
    return best ? cJSON_Parse(best->string) : NULL;
}

char *recall_item_data(const recall_item_t *it)
{
    cJSON *d = cJSON_CreateObject(), *all;
    const cJSON *pin = cJSON_GetObjectItemCaseSensitive(it->state, "pin");
    char *text;

    if (!d)
        return NULL;
    cJSON_AddStringToObject(d, "item", it->key);
    cJSON_AddNumberToObject(d, "usage_count", (double)recall_item_uses(it));
    all = cJSON_GetObjectItemCaseSensitive(it->state, "moments");
    for (const cJSON *m = all ? all->child : NULL; m; m = m->next) {
        recall_moments_t mo = {0, 0, 0};
        char name[300];
        if (!cJSON_IsString(m) ||
            sscanf(m->valuestring, "%" SCNd64 ",%" SCNd64 ",%" SCNd64, &mo.n, &mo.sum, &mo.sumsq) != 3)
            continue;
        cJSON_AddNumberToObject(d, m->string, hundredths(recall_moments_mean(&mo)));
        snprintf(name, sizeof(name), "%s_spread", m->string);
        cJSON_AddNumberToObject(d, name, hundredths(recall_moments_spread(&mo)));
    }
    all = cJSON_GetObjectItemCaseSensitive(it->state, "settings");
    if (cJSON_IsObject(all) && all->child) {
        cJSON *common = cJSON_AddObjectToObject(d, "common_settings");
        for (const cJSON *s = all->child; common && s; s = s->next) {
            cJSON *v = most_used(s);
            if (v)
                cJSON_AddItemToObject(common, s->string, v);
        }
    }
    all = cJSON_GetObjectItemCaseSensitive(it->state, "attributes");
    for (const cJSON *a = all ? all->child : NULL; a; a = a->next) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(a, "v");
        if (cJSON_IsString(v))
            cJSON_AddStringToObject(d, a->string, v->valuestring);
    }
    if (cJSON_IsObject(pin)) {
        const cJSON *data = cJSON_GetObjectItemCaseSensitive(pin, "data");
        cJSON_AddTrueToObject(d, "pinned");
        /* What the user said explicitly comes over what was learned. */
        for (const cJSON *m = cJSON_IsObject(data) ? data->child : NULL; m; m = m->next) {
            cJSON_DeleteItemFromObjectCaseSensitive(d, m->string);
            cJSON_AddItemToObject(d, m->string, cJSON_Duplicate(m, 1));
        }
    }
    text = cJSON_PrintUnformatted(d);
    cJSON_Delete(d);
    return text;
}

char *recall_item_state_text(const recall_item_t *it)
{
    return cJSON_PrintUnformatted(it->state);
}
