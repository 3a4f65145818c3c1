#ifndef PRIME_RECALL_CONTEXT_H
#define PRIME_RECALL_CONTEXT_H

/* What prime-recall knows of a user's projects, presets and files
 * (prime_pipeline.recall_context, migration 0011), learned from the user's
 * own events: project.created and metadata_updated give a project's
 * settings, preset.created and updated a preset's plugin and parameters,
 * audio.file_uploaded whether a file is a mix; the deletes forget them.
 * One user's events of one topic come in order, so a save, a use or an
 * analysis finds the facts as they were when it happened, whatever the
 * batches and whether prime-materializer is ahead or behind: a replay
 * gives the same signals (docs/recall.md, "Context").
 *
 * Loaded per batch in one query, changed in memory in the batch's order,
 * written back in one statement per kind of change. */

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "prime/error.h"
#include "prime/event.h"

typedef struct recall_context recall_context_t;

typedef enum { CONTEXT_PROJECT, CONTEXT_PRESET, CONTEXT_FILE } context_kind_t;

/* Context for at most capacity facts (the batch's events give the bound). */
recall_context_t *recall_context_new(size_t capacity);
void recall_context_free(recall_context_t *c);

/* The facts an event reads or changes: its kind and the id it names, or
 * false when the event type has none. */
bool recall_context_ref(const prime_event_t *ev, context_kind_t *kind, const char **ref);

/* Reads the stored facts of every (owner, kind, ref) the events name, and
 * every user's facts of the presets they name (a shared preset is used by
 * others). */
prime_errcode_t recall_context_load(recall_context_t *c, PGconn *conn, prime_event_t *const *events, size_t n,
                                    prime_error_t *err);

/* The facts of (user, kind, ref) as they stand, or NULL. */
const cJSON *recall_context_get(const recall_context_t *c, const char *user, context_kind_t kind, const char *ref);

/* A shared (public or system) preset's facts kept under any user, the
 * smallest user id first when there are several; NULL when none. */
const cJSON *recall_context_shared_preset(const recall_context_t *c, const char *ref);

/* Learns what ev says of its owner's context (nothing for an event that
 * changes none, or whose actor is not its owner: the materializer refuses
 * those). false when out of memory. */
bool recall_context_learn(recall_context_t *c, const prime_event_t *ev);

/* Writes the changed facts back (deletes, then upserts). */
prime_errcode_t recall_context_write(recall_context_t *c, PGconn *conn, prime_error_t *err);

#endif
