#ifndef PRIME_BUF_H
#define PRIME_BUF_H

#include <stdarg.h>
#include <stddef.h>

/* A growable byte buffer with a size cap. Appends that would pass the cap, or
 * that fail to allocate, free the contents and leave the buffer failed:
 * every later append fails too, so a caller may append many times and check
 * once. The data is always NUL-terminated (not counted in len). */
typedef struct prime_buf {
    char *data;
    size_t len;
    size_t cap;
    size_t max;     /* largest len allowed; 0 means no cap */
    int failed;     /* 0, or PRIME_ERR_NOMEM / PRIME_ERR_TOO_LARGE */
} prime_buf_t;

void prime_buf_init(prime_buf_t *b, size_t max);
void prime_buf_free(prime_buf_t *b);
/* Empties the buffer, keeping its memory. Clears a failure. */
void prime_buf_reset(prime_buf_t *b);
int prime_buf_append(prime_buf_t *b, const void *data, size_t len);
int prime_buf_puts(prime_buf_t *b, const char *s);
int prime_buf_putc(prime_buf_t *b, char c);
int prime_buf_printf(prime_buf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Hands the data to the caller (free() it) and resets the buffer. Returns
 * NULL if the buffer failed. */
char *prime_buf_steal(prime_buf_t *b, size_t *len);

#endif
