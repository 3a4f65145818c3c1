#include "prime/buf.h"
#include "prime/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void prime_buf_init(prime_buf_t *b, size_t max)
{
    memset(b, 0, sizeof(*b));
    b->max = max;
}

void prime_buf_free(prime_buf_t *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

void prime_buf_reset(prime_buf_t *b)
{
    b->len = 0;
    b->failed = 0;
    if (b->data)
        b->data[0] = '\0';
}

static int buf_fail(prime_buf_t *b, int code)
{
    prime_buf_free(b);
    b->failed = code;
    return code;
}

static int buf_reserve(prime_buf_t *b, size_t extra)
{
    size_t need, cap;
    char *p;

    if (b->failed)
        return b->failed;
    if (extra > (size_t)-1 / 2 - b->len)
        return buf_fail(b, PRIME_ERR_TOO_LARGE);
    need = b->len + extra;
    if (b->max && need > b->max)
        return buf_fail(b, PRIME_ERR_TOO_LARGE);
    if (need + 1 <= b->cap)
        return 0;
    cap = b->cap ? b->cap : 256;
    while (cap < need + 1)
        cap *= 2;
    if (b->max && cap > b->max + 1)
        cap = b->max + 1;
    p = realloc(b->data, cap);
    if (!p)
        return buf_fail(b, PRIME_ERR_NOMEM);
    b->data = p;
    b->cap = cap;
    return 0;
}

int prime_buf_append(prime_buf_t *b, const void *data, size_t len)
{
    int rc = buf_reserve(b, len);
    if (rc)
        return rc;
    if (len)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
    return 0;
}

int prime_buf_puts(prime_buf_t *b, const char *s)
{
    return prime_buf_append(b, s, strlen(s));
}

int prime_buf_putc(prime_buf_t *b, char c)
{
    return prime_buf_append(b, &c, 1);
}

int prime_buf_printf(prime_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    int n, rc;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return buf_fail(b, PRIME_ERR_ARG);
    if ((rc = buf_reserve(b, (size_t)n)))
        return rc;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

char *prime_buf_steal(prime_buf_t *b, size_t *len)
{
    char *p;

    if (b->failed)
        return NULL;
    if (!b->data && prime_buf_append(b, "", 0))
        return NULL;
    p = b->data;
    if (len)
        *len = b->len;
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}
