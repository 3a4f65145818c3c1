#ifndef PRIME_FINGERPRINT_H
#define PRIME_FINGERPRINT_H

#include <stddef.h>
#include <stdint.h>

#include "prime/error.h"

/* The Avro specification's Parsing Canonical Form of the schema in
 * schema_json: the form whose bytes identify a schema regardless of
 * formatting, docs, defaults, logical types and custom attributes.
 * Returns a malloc'ed NUL-terminated string, or NULL with err set. */
char *prime_avro_canonical_form(const char *schema_json, size_t len, prime_error_t *err);

/* CRC-64-AVRO (the Rabin fingerprint of the specification) of data. */
uint64_t prime_avro_crc64(const void *data, size_t len);

#endif
