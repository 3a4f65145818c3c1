/* The structure of a message body, checked before avro-c reads it.
 *
 * avro-c trusts the lengths and counts it reads: it allocates a string from
 * its claimed length, and grows an array by doubling for every item a block
 * claims, before it knows whether the items are there. An item of an array
 * of strings costs one byte on the wire and about a hundred in avro-c (a
 * 48-byte slot, doubled, plus the string and its wrapper), and when a
 * growth is refused avro-c leaves the array's storage NULL with its old
 * count, so freeing the value crashes (issue 16). So every length, count,
 * union branch and boolean is checked here against the bytes that are left,
 * and every array against its schema's item limit, before avro-c allocates
 * anything: after this walk avro-c's reads cannot run out of input, and no
 * value costs more than a bounded multiple of its message. */
#include "schemas_int.h"

#include <stdint.h>

typedef struct scan {
    const unsigned char *p, *end;
    const char *type;  /* event type name, for messages */
    prime_error_t *err;
} scan_t;

static prime_errcode_t malformed(scan_t *s, const char *field, const char *what)
{
    return prime_error_set(s->err, PRIME_ERR_DECODE, field, "malformed or truncated %s body: %s: %s", s->type,
                           field, what);
}

/* A zig-zag varint as avro-c reads it: at most 10 bytes. */
static int read_long(scan_t *s, int64_t *out)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        if (s->p == s->end)
            return -1;
        v |= (uint64_t)(*s->p & 0x7f) << shift;
        if (!(*s->p++ & 0x80)) {
            *out = (int64_t)((v >> 1) ^ (~(v & 1) + 1));
            return 0;
        }
    }
    return -1;
}

static size_t left(const scan_t *s)
{
    return (size_t)(s->end - s->p);
}

/* A string's length, checked against what is left, and the string skipped. */
static prime_errcode_t scan_string(scan_t *s, const char *field)
{
    int64_t n;

    if (read_long(s, &n))
        return malformed(s, field, "string length cut short or longer than 10 bytes");
    if (n < 0 || (uint64_t)n > left(s))
        return prime_error_set(s->err, PRIME_ERR_DECODE, field,
                               "malformed or truncated %s body: %s: string of %lld bytes, %zu left", s->type, field,
                               (long long)n, left(s));
    s->p += n;
    return PRIME_OK;
}

/* Blocks of strings: each block's count (and, when negative, its byte size)
 * is checked before its items are; every item takes at least one byte. */
static prime_errcode_t scan_array(scan_t *s, const field_desc_t *f)
{
    size_t items = 0;
    int64_t count, size;
    prime_errcode_t rc;

    for (;;) {
        const unsigned char *start;
        if (read_long(s, &count))
            return malformed(s, f->name, "array block count cut short or longer than 10 bytes");
        if (count == 0)
            return PRIME_OK;
        size = -1;
        if (count < 0) {
            if (count == INT64_MIN)
                return malformed(s, f->name, "array block count out of range");
            count = -count;
            if (read_long(s, &size) || size < 0 || (uint64_t)size > left(s))
                return malformed(s, f->name, "array block size missing or past the end of the message");
        }
        if ((uint64_t)count > left(s))
            return prime_error_set(s->err, PRIME_ERR_DECODE, f->name,
                                   "malformed or truncated %s body: %s: a block of %lld items, %zu bytes left",
                                   s->type, f->name, (long long)count, left(s));
        if ((uint64_t)count > f->max_items - items)
            return prime_error_set(s->err, PRIME_ERR_DECODE, f->name,
                                   "%s body: %s holds more than the %zu items its schema allows", s->type,
                                   f->name, f->max_items);
        items += (size_t)count;
        start = s->p;
        for (int64_t i = 0; i < count; i++)
            if ((rc = scan_string(s, f->name)))
                return rc;
        if (size >= 0 && s->p - start != size)
            return malformed(s, f->name, "array block size does not match its items");
    }
}

static prime_errcode_t scan_field(scan_t *s, const field_desc_t *f)
{
    int64_t v;

    if (f->nullable) {
        if (read_long(s, &v) || (v != 0 && v != 1))
            return malformed(s, f->name, "union branch missing or not 0 (null) or 1 (value)");
        if (v == 0)
            return PRIME_OK;
    }
    switch (f->kind) {
    case KIND_STRING:
        return scan_string(s, f->name);
    case KIND_STRING_ARRAY:
        return scan_array(s, f);
    case KIND_INT:
        if (read_long(s, &v) || v < INT32_MIN || v > INT32_MAX)
            return malformed(s, f->name, "int cut short or out of range");
        return PRIME_OK;
    case KIND_LONG:
        if (read_long(s, &v))
            return malformed(s, f->name, "long cut short or longer than 10 bytes");
        return PRIME_OK;
    case KIND_DOUBLE:
        if (left(s) < 8)
            return malformed(s, f->name, "double cut short");
        s->p += 8;
        return PRIME_OK;
    case KIND_BOOLEAN:
        if (!left(s) || *s->p > 1)
            return malformed(s, f->name, "boolean missing or not 0 or 1");
        s->p++;
        return PRIME_OK;
    }
    return malformed(s, f->name, "field of an unknown kind");
}

prime_errcode_t body_scan(const char *type, const field_desc_t *fields, size_t nfields, const void *body,
                          size_t len, prime_error_t *err)
{
    scan_t s = {.p = body, .end = (const unsigned char *)body + len, .type = type, .err = err};
    prime_errcode_t rc;

    for (size_t i = 0; i < nfields; i++)
        if ((rc = scan_field(&s, &fields[i])))
            return rc;
    if (s.p != s.end)
        return prime_error_set(err, PRIME_ERR_DECODE, NULL, "%s body is followed by trailing bytes", type);
    return PRIME_OK;
}
