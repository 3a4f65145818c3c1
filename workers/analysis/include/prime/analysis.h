/* Audio analysis for mixes and stems (docs/analysis.md): loudness
 * (libebur128), dynamics (PLR, crest factor, the TT DR figure) and the
 * long-term spectrum (FFTW), in one pass over the decoded audio
 * (libsndfile).
 *
 *   prime_analyzer_t *a = prime_analyzer_new(&err);
 *   prime_analysis_t *r = NULL;
 *   if (prime_analyze_file(a, "mix.wav", &r, &err) == PRIME_OK) {
 *       char *json = prime_analysis_to_json(r);
 *       ...
 *   }
 *   prime_analysis_free(r);
 *   prime_analyzer_free(a);
 *
 * An analyzer holds the FFT plan and buffers, reused from file to file; it
 * is used by one thread at a time (make one per thread). */
#ifndef PRIME_ANALYSIS_H
#define PRIME_ANALYSIS_H

#include <stdbool.h>
#include <stddef.h>

#include "prime/error.h"

#define PRIME_ANALYZER_VERSION "1.0.0"

/* Why a file could not be analysed: the reason of audio.analysis_failed. */
typedef enum prime_analysis_failure {
    PRIME_ANALYSIS_OK = 0,
    PRIME_ANALYSIS_MISSING,     /* no such file */
    PRIME_ANALYSIS_UNREADABLE,  /* exists, cannot be opened or read */
    PRIME_ANALYSIS_UNSUPPORTED, /* not a format libsndfile decodes */
    PRIME_ANALYSIS_CORRUPT,     /* a known format, broken inside */
    PRIME_ANALYSIS_EMPTY,       /* no audio frames */
    PRIME_ANALYSIS_TOO_LONG,    /* longer than the analyzer's limit */
} prime_analysis_failure_t;

/* "missing", "unreadable", ...: the event's reason values. */
const char *prime_analysis_failure_name(prime_analysis_failure_t f);

typedef struct prime_analyzer_s prime_analyzer_t;
typedef struct prime_analysis_s prime_analysis_t;

prime_analyzer_t *prime_analyzer_new(prime_error_t *err);
void prime_analyzer_free(prime_analyzer_t *a);

/* Files longer than this many seconds are refused as too long (default 4
 * hours: a loudness history and a spectrum stay small, but a file of days
 * is a mistake or an attack). */
void prime_analyzer_set_max_seconds(prime_analyzer_t *a, double seconds);

/* Called during analysis with the fraction done (0..1), or -1 while the
 * length is not known (a header that does not say), for a progress line;
 * NULL for none. */
typedef void (*prime_analysis_progress_fn)(double fraction, void *ctx);
void prime_analyzer_set_progress(prime_analyzer_t *a, prime_analysis_progress_fn fn, void *ctx);

/* Analyses one file. On failure returns an error whose message says what
 * went wrong, and *failure (when given) says which reason it is. */
prime_errcode_t prime_analyze_file(prime_analyzer_t *a, const char *path, prime_analysis_t **out,
                                   prime_analysis_failure_t *failure, prime_error_t *err);

/* The same for an open file (read from its current position: the start);
 * name is for messages. The caller keeps and closes fd. */
prime_errcode_t prime_analyze_fd(prime_analyzer_t *a, int fd, const char *name, prime_analysis_t **out,
                                 prime_analysis_failure_t *failure, prime_error_t *err);

void prime_analysis_free(prime_analysis_t *r);

/* The analysis as one JSON object (malloc'ed text; audio_files.
 * audio_analysis). Figures that do not exist for the signal (the loudness
 * of silence) are null, never NaN or infinity. */
char *prime_analysis_to_json(const prime_analysis_t *r);

/* The figures the events and tables carry directly. *value is set and true
 * returned only when the figure exists. */
bool prime_analysis_integrated_lufs(const prime_analysis_t *r, double *value);
bool prime_analysis_dr(const prime_analysis_t *r, double *value);
double prime_analysis_duration(const prime_analysis_t *r);
int prime_analysis_sample_rate(const prime_analysis_t *r);
int prime_analysis_channels(const prime_analysis_t *r);

/* An SVG drawing of the loudness over time (momentary and short-term) and
 * of the 1/3-octave spectrum (malloc'ed text). */
char *prime_analysis_to_svg(const prime_analysis_t *r, const char *title);

#endif
