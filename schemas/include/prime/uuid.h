#ifndef PRIME_UUID_H
#define PRIME_UUID_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A UUID in its canonical text form, lower case: 36 characters + NUL. */
#define PRIME_UUID_TEXT 37

/* A new UUIDv7 (RFC 9562): 48 bits of Unix time in milliseconds, then 74
 * random bits from getrandom(). Ids made later sort later, which keeps
 * B-tree inserts of new rows at the right edge. Returns 0, or -1 if the
 * system has no randomness to give. Thread-safe. */
int prime_uuid_v7(char out[PRIME_UUID_TEXT]);

/* UUIDv5 (RFC 9562): SHA-1 of the namespace UUID and name, for ids that
 * must be the same every time they are derived (replays). namespace is
 * canonical text. Returns 0, or -1 for a namespace that is not a UUID. */
int prime_uuid_v5(const char *namespace_uuid, const void *name, size_t len, char out[PRIME_UUID_TEXT]);

/* True when s (len bytes) is UUID text: 8-4-4-4-12 hex digits, either case. */
bool prime_uuid_valid(const char *s, size_t len);

/* The UUID text in canonical form (lower case, as PostgreSQL prints it):
 * events may carry upper-case hex. Copies at most 36 characters; NULL
 * gives "". */
void prime_uuid_canonical(const char *uuid, char out[PRIME_UUID_TEXT]);

#endif
