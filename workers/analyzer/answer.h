/* The analyzer's answer to one request, as an event that fits its schema
 * (answer.c). */
#ifndef PRIME_ANALYZER_ANSWER_H
#define PRIME_ANALYZER_ANSWER_H

#include "prime/analysis.h"
#include "prime/event.h"

/* Namespace of answer ids: uuid5(NAMESPACE_URL,
 * "https://prime.mixclub.studio/analysis"); the name is the request's
 * event_id and the analyzer version. */
#define ANSWER_NAMESPACE "b13dcfbd-8599-5dfc-902c-ca7bed8dc884"

typedef struct answer {
    const char *request_id, *file_id, *owner; /* from the request (validated) */
    const prime_analysis_t *analysis;         /* NULL when the analysis failed */
    const char *reason;                       /* the failure's reason; NULL when analysed */
    char message[512];                        /* the failure's message */
} answer_t;

/* The event answering the request: audio.analyzed when there is an
 * analysis, audio.analysis_failed otherwise, validated against its schema.
 * An analysis that does not fit audio.analyzed (a figure outside its
 * field's range) is answered as audio.analysis_failed, reason
 * out_of_range, with the validation's message; a = reason and message then
 * say what was answered. Every answer carries PRIME_ANALYZER_VERSION.
 * NULL (with err) only when no answer can be built: out of memory, or a
 * request whose ids do not fit (a program error: requests are validated
 * when decoded). The caller frees the event. */
prime_event_t *answer_event(const prime_registry_t *reg, answer_t *a, prime_error_t *err);

#endif
