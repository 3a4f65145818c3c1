/* Text cut to a size without breaking UTF-8: a message built from an
 * event's text (a path, a name) and cut to fit a buffer or a field's
 * limit must still be valid UTF-8, or the event that carries it is
 * refused. */
#ifndef PRIME_UTF8_H
#define PRIME_UTF8_H

#include <stddef.h>

/* Cuts the NUL-terminated s to at most max bytes without splitting a
 * UTF-8 sequence, and drops a sequence left incomplete at its end (by an
 * earlier cut, such as snprintf's). Returns the new length. */
size_t prime_utf8_cut(char *s, size_t max);

#endif
