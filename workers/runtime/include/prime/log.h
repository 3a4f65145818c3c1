#ifndef PRIME_LOG_H
#define PRIME_LOG_H

/* Structured logs for the workers: one line per event of note on stderr,
 *   ts=2026-11-25T17:33:06.123Z level=warn worker=materializer msg="..." k=v ...
 * (logfmt), so that a person reads them and a log pipeline parses them.
 * Thread-safe: each line is written with one call. */

typedef enum prime_log_level {
    PRIME_LOG_DEBUG,
    PRIME_LOG_INFO,
    PRIME_LOG_WARN,
    PRIME_LOG_ERROR,
} prime_log_level_t;

/* The worker name on every line, and the lowest level written (default
 * info; PRIME_LOG_LEVEL=debug|info|warn|error overrides). */
void prime_log_init(const char *worker);

/* msg is a plain sentence; fields_fmt, when not NULL, formats extra
 * key=value pairs ("topic=%s partition=%d"). */
void prime_log(prime_log_level_t level, const char *msg, const char *fields_fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* text made safe as a quoted logfmt value (quotes become ', control
 * characters spaces), in buf. For messages from other libraries. */
const char *prime_log_value(const char *text, char *buf, unsigned long size);

#endif
