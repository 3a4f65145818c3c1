#ifndef PRIME_RECALL_ITEM_H
#define PRIME_RECALL_ITEM_H

/* One Mixx Recall item (a row of mixx_recall: user, category, recall_key)
 * and what it has learned, kept in prime_pipeline.recall_state. Every
 * change is order-free (counts, exact sums, maxima), so the state after a
 * set of signals does not depend on the batches they came in. */

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "model.h"
#include "prime/uuid.h"

typedef struct recall_item {
    char id[PRIME_UUID_TEXT];
    char *user, *category, *key;
    bool present;  /* the row exists in the database */
    bool gone;     /* forgotten: the row is deleted */
    bool touched;  /* its category changed this batch: written back */
    cJSON *state;  /* the prime_pipeline.recall_state object (docs/recall.md) */
    double confidence;
} recall_item_t;

/* A new item (state from its recall_state text, or empty when NULL).
 * NULL when out of memory or the text is not a JSON object. */
recall_item_t *recall_item_new(const char *id, const char *user, const char *category, const char *key,
                               const char *state);
void recall_item_free(recall_item_t *it);
/* Forgets everything it learned (recall.forgotten): an empty state. */
void recall_item_clear(recall_item_t *it);

/* A use at t_us: counted, weighed (half-life h_us), first and last seen. */
void recall_item_use(recall_item_t *it, int64_t t_us, int64_t h_us);
/* Counts each top-level member's value of settings (a JSON object):
 * the most used value of each becomes data.common_settings. */
void recall_item_count_settings(recall_item_t *it, const cJSON *settings);
/* A value of a running mean and spread: data.NAME and data.NAME_spread. */
void recall_item_moment(recall_item_t *it, const char *name, double value);
/* An attribute whose latest value (by event time, then text) wins. */
void recall_item_attr(recall_item_t *it, const char *name, int64_t t_us, const char *value);
/* recall.set: pinned at confidence (0..1) with data, unless a later set
 * (by event time, then event id) already pinned it. */
void recall_item_pin(recall_item_t *it, int64_t t_us, const char *event_id, double confidence, const cJSON *data);

int64_t recall_item_uses(const recall_item_t *it);
int64_t recall_item_last(const recall_item_t *it);   /* newest use or pin, 0 if none */
int64_t recall_item_first(const recall_item_t *it);  /* oldest use or pin, 0 if none */
/* The pinned confidence, or -1. */
double recall_item_pinned(const recall_item_t *it);
void recall_item_evidence(const recall_item_t *it, recall_evidence_t *e);

/* Scores one category: its items' confidences (recall_confidence) from
 * their weights at the category's newest use or pin, items in the order
 * given (callers sort them by key). Items that are gone are skipped.
 * Returns false when out of memory. */
bool recall_items_score(recall_item_t *const *items, size_t n, int64_t h_us);

/* The data column: the item and its aggregates (malloc'ed JSON text). */
char *recall_item_data(const recall_item_t *it);
/* The text for prime_pipeline.recall_state (malloc'ed JSON). */
char *recall_item_state_text(const recall_item_t *it);

#endif
