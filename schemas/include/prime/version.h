#ifndef PRIME_VERSION_H
#define PRIME_VERSION_H

/* Compares version texts part by part ("1.10.0" > "1.9.2"): runs of digits
 * as numbers, anything else byte by byte. Returns <0, 0 or >0. The
 * analyzer's version decides which analysis of a file is kept and which
 * files are reprocessed, so every reader compares versions this one way. */
int prime_version_cmp(const char *a, const char *b);

#endif
