#ifndef PRIME_TIME_H
#define PRIME_TIME_H

#include <stdint.h>

/* Event times are microseconds since 1970-01-01T00:00:00Z (Avro
 * timestamp-micros). In text they are RFC 3339; printed always in UTC with
 * six fractional digits, a form PostgreSQL's timestamptz reads as is. */

#define PRIME_TIME_TEXT 40

/* Accepts YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM|+HH|-HH), so
 * PostgreSQL's timestamptz text too; returns 0, or -1
 * for anything else (including digits past microseconds that are not 0). */
int prime_time_parse_rfc3339(const char *s, int64_t *micros);
void prime_time_format_rfc3339(int64_t micros, char out[PRIME_TIME_TEXT]);

/* Seconds on the monotonic clock: for deadlines and durations, which a
 * change of the wall clock must not move. */
double prime_time_monotonic(void);

#endif
