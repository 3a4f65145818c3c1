#include "prime/error.h"
#include "prime/utf8.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void prime_error_clear(prime_error_t *err)
{
    if (!err)
        return;
    err->code = PRIME_OK;
    err->retriable = false;
    err->field[0] = '\0';
    err->message[0] = '\0';
}

prime_errcode_t prime_error_set(prime_error_t *err, prime_errcode_t code,
                                const char *field, const char *fmt, ...)
{
    va_list ap;

    if (!err || err->code != PRIME_OK)
        return code;
    err->code = code;
    err->retriable = false;
    snprintf(err->field, sizeof(err->field), "%s", field ? field : "");
    va_start(ap, fmt);
    /* A message quoting an event's text may be cut: never inside a
     * character (it travels in events and headers that must be UTF-8). */
    if (vsnprintf(err->message, sizeof(err->message), fmt, ap) >= (int)sizeof(err->message))
        prime_utf8_cut(err->message, sizeof(err->message) - 1);
    va_end(ap);
    return code;
}

const char *prime_errcode_name(prime_errcode_t code)
{
    switch (code) {
    case PRIME_OK: return "ok";
    case PRIME_ERR_ARG: return "bad_argument";
    case PRIME_ERR_NOMEM: return "out_of_memory";
    case PRIME_ERR_SCHEMA: return "schema";
    case PRIME_ERR_UNKNOWN_TYPE: return "unknown_type";
    case PRIME_ERR_DECODE: return "decode";
    case PRIME_ERR_TOO_LARGE: return "too_large";
    case PRIME_ERR_INVALID: return "invalid";
    case PRIME_ERR_JSON: return "json";
    case PRIME_ERR_IO: return "io";
    case PRIME_ERR_DB: return "database";
    case PRIME_ERR_KAFKA: return "kafka";
    }
    return "unknown";
}

const char *prime_error_str(const prime_error_t *err, char *buf, unsigned long size)
{
    if (!err || err->code == PRIME_OK)
        snprintf(buf, size, "no error");
    else if (err->field[0])
        snprintf(buf, size, "%s: %s", err->field, err->message);
    else
        snprintf(buf, size, "%s", err->message);
    return buf;
}
