#ifndef PRIME_ERROR_H
#define PRIME_ERROR_H

#include <stdbool.h>

/* Errors are values: every fallible call returns a prime_errcode_t (0 on
 * success) and, when given a prime_error_t, fills it with the code, the path
 * of the field at fault (empty when none) and a message a person can act on.
 * The first, most specific error wins: a call never overwrites an error that
 * a deeper call already set. */

typedef enum prime_errcode {
    PRIME_OK = 0,
    PRIME_ERR_ARG,          /* the caller broke a contract (NULL, bad option) */
    PRIME_ERR_NOMEM,
    PRIME_ERR_SCHEMA,       /* a schema itself is unusable */
    PRIME_ERR_UNKNOWN_TYPE, /* event type or schema fingerprint not known */
    PRIME_ERR_DECODE,       /* bytes are not a well-formed message */
    PRIME_ERR_TOO_LARGE,    /* over a configured size limit */
    PRIME_ERR_INVALID,      /* well-formed but a value breaks a rule */
    PRIME_ERR_JSON,         /* JSON text does not parse */
    PRIME_ERR_IO,
    PRIME_ERR_DB,
    PRIME_ERR_KAFKA,
} prime_errcode_t;

typedef struct prime_error {
    prime_errcode_t code;
    bool retriable;         /* trying the same call again later may succeed */
    char field[128];        /* e.g. "tags[3]"; "" when not about one field */
    char message[512];
} prime_error_t;

/* Resets err to "no error". Accepts NULL. */
void prime_error_clear(prime_error_t *err);

/* Sets err (when err is not NULL and holds no error yet) and returns code,
 * so that `return prime_error_set(err, ...)` reads naturally. field may be
 * NULL. */
prime_errcode_t prime_error_set(prime_error_t *err, prime_errcode_t code,
                                const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Stable lower-case name of a code, e.g. "invalid", for logs and headers. */
const char *prime_errcode_name(prime_errcode_t code);

/* Writes "field: message" (or just the message) into buf. Returns buf. */
const char *prime_error_str(const prime_error_t *err, char *buf, unsigned long size);

#endif
