/* A record's Kafka headers as one byte string and back (headers.h,
 * prime/worker.h). Each header: its name, a NUL, the value's length as 4
 * bytes big-endian (0xffffffff: a null value), the value. */
#include "headers.h"
#include "prime/buf.h"

#include <stdint.h>
#include <string.h>
#include <sys/types.h>

#define NULL_VALUE 0xffffffffu

size_t headers_packed_size(const rd_kafka_headers_t *h)
{
    const char *name;
    const void *value;
    size_t len, size = 0;

    for (size_t i = 0; h && !rd_kafka_header_get_all(h, i, &name, &value, &len); i++)
        size += strlen(name) + 1 + 4 + (value ? len : 0);
    return size;
}

void headers_pack_into(const rd_kafka_headers_t *h, unsigned char *out)
{
    const char *name;
    const void *value;
    size_t len;

    for (size_t i = 0; h && !rd_kafka_header_get_all(h, i, &name, &value, &len); i++) {
        uint32_t n = value ? (uint32_t)len : NULL_VALUE;
        size_t name_len = strlen(name) + 1;
        memcpy(out, name, name_len);
        out += name_len;
        *out++ = (unsigned char)(n >> 24);
        *out++ = (unsigned char)(n >> 16);
        *out++ = (unsigned char)(n >> 8);
        *out++ = (unsigned char)n;
        if (value && len) {
            memcpy(out, value, len);
            out += len;
        }
    }
}

prime_errcode_t prime_record_headers_pack(const prime_record_t *r, prime_buf_t *out, prime_error_t *err)
{
    if (r->headers && r->headers_len)
        prime_buf_append(out, r->headers, r->headers_len);
    if (out->failed)
        return prime_error_set(err, PRIME_ERR_NOMEM, NULL, "out of memory packing a record's headers");
    return PRIME_OK;
}

/* Unpacks what prime_record_headers_pack() wrote; a cut or malformed
 * string (it came back from a table) ends the list where it stops making
 * sense: the dead letter goes out with the headers read so far. */
static void unpack(rd_kafka_headers_t *h, const unsigned char *p, size_t len)
{
    const unsigned char *end = p + len;

    while (p < end) {
        const unsigned char *nul = memchr(p, '\0', (size_t)(end - p));
        uint32_t n;
        if (!nul || end - nul < 5)
            return;
        n = (uint32_t)nul[1] << 24 | (uint32_t)nul[2] << 16 | (uint32_t)nul[3] << 8 | nul[4];
        if (n != NULL_VALUE && n > (size_t)(end - nul - 5))
            return;
        rd_kafka_header_add(h, (const char *)p, -1, n == NULL_VALUE ? NULL : nul + 5,
                            n == NULL_VALUE ? 0 : (ssize_t)n);
        p = nul + 5 + (n == NULL_VALUE ? 0 : n);
    }
}

rd_kafka_headers_t *headers_of(const prime_record_t *r)
{
    rd_kafka_headers_t *h = rd_kafka_headers_new(8);

    if (h && r->headers && r->headers_len)
        unpack(h, r->headers, r->headers_len);
    return h;
}
