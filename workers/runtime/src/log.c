#include "prime/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static char worker_name[64] = "prime";
static prime_log_level_t min_level = PRIME_LOG_INFO;

void prime_log_init(const char *worker)
{
    const char *env = getenv("PRIME_LOG_LEVEL");

    snprintf(worker_name, sizeof(worker_name), "%s", worker ? worker : "prime");
    if (env && !strcmp(env, "debug"))
        min_level = PRIME_LOG_DEBUG;
    else if (env && !strcmp(env, "warn"))
        min_level = PRIME_LOG_WARN;
    else if (env && !strcmp(env, "error"))
        min_level = PRIME_LOG_ERROR;
}

void prime_log(prime_log_level_t level, const char *msg, const char *fields_fmt, ...)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};
    char line[2048], when[32];
    struct timespec now;
    struct tm tm;
    size_t n;
    va_list ap;

    if (level < min_level)
        return;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    n = (size_t)snprintf(line, sizeof(line), "ts=%s.%03ldZ level=%s worker=%s msg=\"", when, now.tv_nsec / 1000000,
                         names[level], worker_name);
    /* The message is quoted; a quote or newline in it would break the line. */
    for (const char *p = msg; *p && n < sizeof(line) - 8; p++)
        line[n++] = (*p == '"' || *p == '\n') ? '\'' : *p;
    line[n++] = '"';
    if (fields_fmt && n < sizeof(line) - 2) {
        line[n++] = ' ';
        va_start(ap, fields_fmt);
        vsnprintf(line + n, sizeof(line) - n - 1, fields_fmt, ap);
        va_end(ap);
        n = strlen(line);
    }
    if (n > sizeof(line) - 2)
        n = sizeof(line) - 2;
    /* One event, one line, whatever the fields hold. */
    for (size_t i = 0; i < n; i++)
        if (line[i] == '\n' || line[i] == '\r' || line[i] == '\t')
            line[i] = ' ';
    line[n++] = '\n';
    fwrite(line, 1, n, stderr);
}

const char *prime_log_value(const char *text, char *buf, unsigned long size)
{
    size_t i = 0;

    for (; text && *text && i + 1 < size; text++)
        buf[i++] = *text == '"' ? '\'' : ((unsigned char)*text < 0x20 ? ' ' : *text);
    while (i > 0 && buf[i - 1] == ' ')
        i--;
    buf[i] = '\0';
    return buf;
}
