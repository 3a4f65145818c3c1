#ifndef PRIME_EVENT_H
#define PRIME_EVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "prime/error.h"
#include "prime/registry.h"

/* One event: a value of its type's current schema. Built field by field,
 * from JSON, or by decoding a message; then validated and encoded.
 * An event is used by one thread at a time. */
typedef struct prime_event_s prime_event_t;

/* A new event of the named type with every field empty: nullable fields
 * null, arrays empty, event_type set. NULL with err set if the type is not
 * known. */
prime_event_t *prime_event_new(const prime_registry_t *reg, const char *type, prime_error_t *err);
void prime_event_free(prime_event_t *ev);
const prime_event_type_t *prime_event_type(const prime_event_t *ev);

/* Setters by field name. They check the field exists and has that Avro
 * type (a nullable field takes its non-null type); value rules are checked
 * by prime_event_validate(). set_null is for nullable fields;
 * append_string adds to an array of strings. */
prime_errcode_t prime_event_set_string(prime_event_t *ev, const char *field, const char *value,
                                       size_t len, prime_error_t *err);
prime_errcode_t prime_event_set_long(prime_event_t *ev, const char *field, int64_t value, prime_error_t *err);
prime_errcode_t prime_event_set_int(prime_event_t *ev, const char *field, int32_t value, prime_error_t *err);
prime_errcode_t prime_event_set_double(prime_event_t *ev, const char *field, double value, prime_error_t *err);
prime_errcode_t prime_event_set_bool(prime_event_t *ev, const char *field, bool value, prime_error_t *err);
prime_errcode_t prime_event_set_null(prime_event_t *ev, const char *field, prime_error_t *err);
prime_errcode_t prime_event_append_string(prime_event_t *ev, const char *field, const char *value,
                                          size_t len, prime_error_t *err);

/* Getters by field name. For a null value, *is_null is set (when given) and
 * the value is left alone; get_string gives NULL then. Strings stay owned
 * by the event. */
prime_errcode_t prime_event_get_string(const prime_event_t *ev, const char *field, const char **value,
                                       size_t *len, prime_error_t *err);
prime_errcode_t prime_event_get_long(const prime_event_t *ev, const char *field, int64_t *value,
                                     bool *is_null, prime_error_t *err);
prime_errcode_t prime_event_get_int(const prime_event_t *ev, const char *field, int32_t *value,
                                    bool *is_null, prime_error_t *err);
prime_errcode_t prime_event_get_double(const prime_event_t *ev, const char *field, double *value,
                                       bool *is_null, prime_error_t *err);
prime_errcode_t prime_event_get_bool(const prime_event_t *ev, const char *field, bool *value,
                                     bool *is_null, prime_error_t *err);
/* A string field's value, or NULL when it is null or not a string field:
 * prime_event_get_string for callers that only read. */
const char *prime_event_string(const prime_event_t *ev, const char *field);
/* Array of strings: *count elements; element i with get_array_string. */
prime_errcode_t prime_event_get_array_size(const prime_event_t *ev, const char *field, size_t *count,
                                           bool *is_null, prime_error_t *err);
prime_errcode_t prime_event_get_array_string(const prime_event_t *ev, const char *field, size_t i,
                                             const char **value, size_t *len, prime_error_t *err);

/* Checks every rule of the schema: required values present, UUID syntax,
 * ranges (BPM 20-999, LUFS -70..+5, ...), time signatures, musical keys,
 * sample rates, JSON fields that parse, hashes that look like hashes, size
 * limits, valid UTF-8. The error names the first field at fault. */
prime_errcode_t prime_event_validate(const prime_event_t *ev, prime_error_t *err);

/* Builds an event from one JSON object: "type" names the event type, the
 * other members are fields by name. Timestamps are RFC 3339 strings or
 * integer microseconds; JSON-valued fields may be given as JSON or as a
 * string holding JSON; omitted nullable fields are null; an omitted
 * event_id or occurred_at is left unset (empty, 0), for the producer to
 * generate (prime_producer_publish) or validation to refuse. Unknown members
 * are errors, and a plaintext secret (password, token, ...) gets its own
 * message. Does not validate values: call prime_event_validate(). */
prime_errcode_t prime_event_from_json(const prime_registry_t *reg, const char *text, size_t len,
                                      prime_event_t **out, prime_error_t *err);

/* The event as one line of JSON in the form prime_event_from_json() reads:
 * "type" first, then every field in schema order. Returns malloc'ed text. */
char *prime_event_to_json(const prime_event_t *ev, prime_error_t *err);

/* Avro single-object encoding: C3 01, the writer schema's CRC-64-AVRO
 * fingerprint (8 bytes, little-endian), then the Avro binary body.
 * *out is malloc'ed; the caller frees it. Fails with PRIME_ERR_TOO_LARGE
 * past the registry's max_message_bytes. */
prime_errcode_t prime_event_encode(const prime_event_t *ev, void **out, size_t *len, prime_error_t *err);

/* Decodes a single-object encoded message written with any schema the
 * registry knows (current or added with add_writer_schema), into the
 * current schema of its type. Errors: PRIME_ERR_TOO_LARGE, PRIME_ERR_DECODE
 * (truncated, bad marker, malformed body, trailing bytes, an array over its
 * schema's max_items; the error names the field) and PRIME_ERR_UNKNOWN_TYPE
 * (fingerprint not known). Does not validate otherwise. */
prime_errcode_t prime_event_decode(const prime_registry_t *reg, const void *data, size_t len,
                                   prime_event_t **out, prime_error_t *err);

/* The fingerprint in a message's header, without decoding the body.
 * PRIME_ERR_DECODE if data is not single-object encoded. */
prime_errcode_t prime_message_fingerprint(const void *data, size_t len, uint64_t *fingerprint,
                                          prime_error_t *err);

/* A valid event of the type, its values derived from seed alone: seed 0
 * sets every field (the example in the docs and `prime-codec example`);
 * other seeds vary the values and leave some nullable fields null, which
 * the round-trip tests use to cover the schemas' value space. */
prime_event_t *prime_event_example(const prime_registry_t *reg, const char *type, uint64_t seed,
                                   prime_error_t *err);

#endif
