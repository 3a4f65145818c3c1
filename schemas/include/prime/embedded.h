#ifndef PRIME_EMBEDDED_H
#define PRIME_EMBEDDED_H

#include <stddef.h>

/* A file compiled into the binary by cmake's prime_embed(). `data` is
 * NUL-terminated (the terminator is not counted in `len`), so text files can
 * be used as C strings. Tables end with an entry whose name is NULL. */
typedef struct prime_embedded_file {
    const char *name;
    const unsigned char *data;
    size_t len;
} prime_embedded_file_t;

#endif
