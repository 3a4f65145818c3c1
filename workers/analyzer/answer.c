/* The answer to one analysis request, checked against its schema before it
 * is published: an answer the schema refuses would be refused again on
 * every restart (the request is not recorded as answered until its answer
 * is delivered), stopping the analyzer for good. */
#include "answer.h"

#include "prime/buf.h"
#include "prime/uuid.h"
#include "prime/utf8.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static prime_errcode_t set_text(prime_event_t *ev, const char *field, const char *value, prime_error_t *err)
{
    return prime_event_set_string(ev, field, value, strlen(value), err);
}

/* The event for a as it stands, not validated. */
static prime_event_t *build(const prime_registry_t *reg, const answer_t *a, prime_error_t *err)
{
    prime_event_t *ev = prime_event_new(reg, a->reason ? "audio.analysis_failed" : "audio.analyzed", err);
    char id[PRIME_UUID_TEXT], name[128];
    prime_errcode_t rc = ev ? PRIME_OK : err->code;
    int len = snprintf(name, sizeof(name), "%s\n%s", a->request_id, PRIME_ANALYZER_VERSION);

    if (!rc && (len >= (int)sizeof(name) || prime_uuid_v5(ANSWER_NAMESPACE, name, (size_t)len, id)))
        rc = prime_error_set(err, PRIME_ERR_INVALID, "event_id", "cannot derive the answer's id");
    if (!rc)
        rc = set_text(ev, "event_id", id, err);
    if (!rc) { /* when it is answered, as the producer would set it (validated here, before publishing) */
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        rc = prime_event_set_long(ev, "occurred_at", (int64_t)now.tv_sec * 1000000 + now.tv_nsec / 1000, err);
    }
    if (!rc)
        rc = set_text(ev, "actor_user_id", a->owner, err);
    if (!rc)
        rc = set_text(ev, "owner_user_id", a->owner, err);
    if (!rc)
        rc = set_text(ev, "file_id", a->file_id, err);
    if (!rc)
        rc = set_text(ev, "request_event_id", a->request_id, err);
    if (!rc)
        rc = set_text(ev, "analyzer_version", PRIME_ANALYZER_VERSION, err);
    if (!rc && a->reason) {
        rc = set_text(ev, "reason", a->reason, err);
        if (!rc)
            rc = set_text(ev, "message", a->message, err);
    } else if (!rc) {
        char *json = prime_analysis_to_json(a->analysis);
        double v;
        rc = json ? set_text(ev, "audio_analysis", json, err)
                  : prime_error_set(err, PRIME_ERR_NOMEM, NULL, "out of memory");
        free(json);
        if (!rc)
            rc = prime_event_set_double(ev, "duration_seconds", prime_analysis_duration(a->analysis), err);
        if (!rc)
            rc = prime_event_set_int(ev, "sample_rate", prime_analysis_sample_rate(a->analysis), err);
        if (!rc)
            rc = prime_event_set_int(ev, "channels", prime_analysis_channels(a->analysis), err);
        /* Null when the figure does not exist (silence); any value there
         * is, the schema judges. */
        if (!rc && prime_analysis_integrated_lufs(a->analysis, &v))
            rc = prime_event_set_double(ev, "integrated_lufs", v, err);
        if (!rc && prime_analysis_dr(a->analysis, &v))
            rc = prime_event_set_double(ev, "dynamic_range", v, err);
    }
    if (rc) {
        prime_event_free(ev);
        return NULL;
    }
    return ev;
}

prime_event_t *answer_event(const prime_registry_t *reg, answer_t *a, prime_error_t *err)
{
    prime_event_t *ev;
    prime_error_t invalid;
    prime_buf_t text;

    /* The message quotes the request's path: cut to the buffer, it must
     * still be whole characters. */
    prime_utf8_cut(a->message, sizeof(a->message) - 1);
    for (int attempt = 0; attempt < 2; attempt++) {
        prime_error_clear(&invalid);
        if (!(ev = build(reg, a, &invalid))) {
            if (invalid.code == PRIME_ERR_NOMEM || a->reason) {
                prime_error_set(err, invalid.code, invalid.field, "%s", invalid.message);
                return NULL;
            }
        } else if (!prime_event_validate(ev, &invalid)) {
            return ev;
        }
        prime_event_free(ev);
        if (a->reason) /* a failure's answer that does not fit: nothing left to send */
            break;
        a->reason = "out_of_range";
        prime_buf_init(&text, 0);
        prime_buf_printf(&text, "the analysis does not fit audio.analyzed: %s%s%s", invalid.field,
                         invalid.field[0] ? ": " : "", invalid.message);
        memcpy(a->message, text.data ? text.data : "", text.len < sizeof(a->message) ? text.len + 1 : sizeof(a->message) - 1);
        a->message[sizeof(a->message) - 1] = '\0';
        prime_buf_free(&text);
        prime_utf8_cut(a->message, sizeof(a->message) - 1);
    }
    prime_error_set(err, PRIME_ERR_INVALID, invalid.field, "the answer to request %s does not fit its schema: %s",
                    a->request_id, invalid.message);
    return NULL;
}
