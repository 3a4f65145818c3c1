#ifndef PRIME_REGISTRY_H
#define PRIME_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "prime/error.h"

/* The event schemas of the pipeline, compiled into every binary from
 * schemas/avro/<type>/v<N>.avsc (every released version of each type). The
 * newest version of each event type is its schema; each is an Avro record in
 * namespace studio.prime.events whose first seven fields are the envelope
 * (event_id, event_type, occurred_at, actor_user_id, owner_user_id,
 * device_id, trace_id). Custom attributes in the schemas (prime.topic,
 * prime.check, prime.one_of, prime.max_length, prime.max_items, prime.max,
 * prime.requires) carry the rules that prime_event_validate() enforces;
 * prime.column names the column a field is stored in.
 *
 * A registry is immutable after prime_registry_add_writer_schema() calls
 * made before it is shared, and may then be used from any thread. */
typedef struct prime_registry_s prime_registry_t;
typedef struct prime_event_type_s prime_event_type_t;

/* Number of envelope fields at the head of every event record. */
#define PRIME_ENVELOPE_FIELDS 7

typedef struct prime_limits {
    size_t max_message_bytes; /* an encoded event, framing included */
    size_t max_json_bytes;    /* one JSON-valued field (project_data, ...) */
} prime_limits_t;

/* Defaults: 1,000,000-byte messages (under Kafka's default
 * message.max.bytes) and 524,288-byte JSON documents. */
#define PRIME_DEFAULT_MAX_MESSAGE_BYTES 1000000u
#define PRIME_DEFAULT_MAX_JSON_BYTES 524288u

/* Loads every embedded schema: each event type's newest version is its
 * current schema, and every older version is readable too (a message keeps
 * the fingerprint of the version it was written with; it is read with the
 * newest by Avro schema resolution). Returns NULL with err set if a schema is
 * unusable or a version cannot be read by the next one or by the newest
 * (a build defect: the build runs `prime-codec check`; the message names
 * the file). */
prime_registry_t *prime_registry_new(prime_error_t *err);

/* The same from a table of schema files named "<event type>/v<N>.avsc",
 * versions from v1 without gaps (as cmake's prime_embed() makes them), for
 * tools and tests. */
struct prime_embedded_file;
prime_registry_t *prime_registry_new_from(const struct prime_embedded_file *files, prime_error_t *err);
void prime_registry_free(prime_registry_t *reg);

/* Makes an older version of an event schema (JSON text) readable: messages
 * written with it decode into the current schema of the same
 * prime.event_type, by Avro schema resolution. Fails if the two are not
 * compatible. prime_registry_new() does this for every released version. */
prime_errcode_t prime_registry_add_writer_schema(prime_registry_t *reg, const char *json,
                                                 size_t len, prime_error_t *err);

/* The writer schemas the registry reads (every version of every type, in
 * fingerprint order): their number, and the JSON text of the i-th (NULL
 * past the end). For tools and fuzzers that build messages. */
size_t prime_registry_writer_count(const prime_registry_t *reg);
const char *prime_registry_writer_schema_json(const prime_registry_t *reg, size_t i);

void prime_registry_set_limits(prime_registry_t *reg, const prime_limits_t *limits);
const prime_limits_t *prime_registry_limits(const prime_registry_t *reg);

size_t prime_registry_count(const prime_registry_t *reg);
/* Event types in name order; NULL past the end. */
const prime_event_type_t *prime_registry_at(const prime_registry_t *reg, size_t i);
/* By name ("project.saved"); NULL when unknown. */
const prime_event_type_t *prime_registry_find(const prime_registry_t *reg, const char *name);

const char *prime_event_type_name(const prime_event_type_t *t);   /* "project.saved" */
const char *prime_event_type_topic(const prime_event_type_t *t);  /* "prime.projects" */
const char *prime_event_type_schema_json(const prime_event_type_t *t);
const char *prime_event_type_canonical_form(const prime_event_type_t *t);
uint64_t prime_event_type_fingerprint(const prime_event_type_t *t); /* CRC-64-AVRO of the PCF */

/* Fields of the event record, envelope included, in schema order. */
size_t prime_event_type_field_count(const prime_event_type_t *t);
const char *prime_event_type_field_name(const prime_event_type_t *t, size_t i);
/* Index of a field by name, or -1. */
int prime_event_type_field_index(const prime_event_type_t *t, const char *field);

/* What a field holds (a nullable field: its non-null type); says which
 * prime_event_get_* reads it. Timestamps are longs (microseconds). */
typedef enum prime_field_kind {
    PRIME_FIELD_STRING,
    PRIME_FIELD_INT,
    PRIME_FIELD_LONG,
    PRIME_FIELD_TIMESTAMP,
    PRIME_FIELD_DOUBLE,
    PRIME_FIELD_BOOLEAN,
    PRIME_FIELD_STRING_ARRAY,
} prime_field_kind_t;

prime_field_kind_t prime_event_type_field_kind(const prime_event_type_t *t, size_t i);

/* Whether a field holds a secret (a password or token hash, "prime.check":
 * "secret_hash"): a value for its column, never for a log or a terminal. */
bool prime_event_type_field_is_secret(const prime_event_type_t *t, size_t i);

/* Where a field is stored, from its prime.column attribute: "table.column"
 * ("prime_pipeline.table.column" outside public), or NULL when undeclared. */
const char *prime_event_type_field_column(const prime_event_type_t *t, size_t i);
/* The numbers validation accepts for field i: every value it accepts is in
 * [*min, *max] (an open side is -/+HUGE_VAL; a rule with a set, such as
 * sample rates, gives the set's ends). false when the field is not a
 * number. Tests hold these against the columns. */
bool prime_event_type_field_range(const prime_event_type_t *t, size_t i, double *min, double *max);
/* The longest text (bytes) validation accepts in field i, or in each item
 * of an array; 0 for fields that are not text. */
size_t prime_event_type_field_max_length(const prime_event_type_t *t, size_t i);

#endif
