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

/* The version of the analysis: the one place it is written. Every answer
 * carries it (audio.analyzed and audio.analysis_failed, and the analysis
 * JSON); the materializer never replaces an analysis by an older version's,
 * an answer's event_id is derived from it, and reprocessing selects files
 * analysed by an older one. A release that changes any figure (or which
 * files are refused) bumps it. 1.1.0: MP3 decoded to its end, files of
 * unknown length read, NaN/infinity refused, every channel weighted, window
 * maxima of short files null, DR never negative, the budget. */
#ifndef PRIME_ANALYZER_VERSION /* a build may name the next release (tests of reprocessing) */
#define PRIME_ANALYZER_VERSION "1.1.0"
#endif

/* Why a file could not be analysed: the reason of audio.analysis_failed. */
typedef enum prime_analysis_failure {
    PRIME_ANALYSIS_OK = 0,
    PRIME_ANALYSIS_MISSING,     /* no such file */
    PRIME_ANALYSIS_UNREADABLE,  /* exists, cannot be opened or read */
    PRIME_ANALYSIS_UNSUPPORTED, /* not a format libsndfile decodes */
    PRIME_ANALYSIS_CORRUPT,     /* a known format, broken inside */
    PRIME_ANALYSIS_EMPTY,       /* no audio frames */
    PRIME_ANALYSIS_TOO_LONG,    /* longer than the analyzer's limit */
    PRIME_ANALYSIS_OVER_BUDGET, /* more decoded samples or CPU time than a file may take */
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

/* A file's budget, so that no file holds a worker for long (a consumer
 * that does not poll within max.poll.interval.ms is evicted and its work
 * redone elsewhere): at most this many decoded samples (frames times
 * channels; default PRIME_ANALYSIS_MAX_SAMPLES), checked against the
 * header's length before reading and while reading; and at most this much
 * CPU time of the analysing thread (default PRIME_ANALYSIS_MAX_CPU_SECONDS),
 * checked after every block of 100 ms. Over either, the file is refused as
 * over_budget. The sample limit gives the same answer on every machine; the
 * CPU limit is the backstop for files that are costly per sample. */
#define PRIME_ANALYSIS_MAX_SAMPLES 2000000000LL
#define PRIME_ANALYSIS_MAX_CPU_SECONDS 120.0
void prime_analyzer_set_max_samples(prime_analyzer_t *a, long long samples);
void prime_analyzer_set_max_cpu_seconds(prime_analyzer_t *a, double seconds);

/* The three limits as the programs take them (prime-analyze and
 * prime-analyzer share the options and their checks). */
typedef struct prime_analysis_limits {
    double max_seconds;     /* --max-seconds, 0 < S <= 9999999 (audio_files.duration_seconds) */
    long long max_samples;  /* --max-samples, >= 1 */
    double max_cpu_seconds; /* --max-cpu-seconds, > 0 */
} prime_analysis_limits_t;

/* The defaults. */
void prime_analysis_limits_init(prime_analysis_limits_t *l);
/* When name is one of the options, its value is checked and stored and 1
 * returned (or, for a bad value, an error naming the option and -1);
 * otherwise 0. */
int prime_analysis_limits_option(prime_analysis_limits_t *l, const char *name, const char *value, prime_error_t *err);
void prime_analyzer_set_limits(prime_analyzer_t *a, const prime_analysis_limits_t *l);
/* The options' lines for a usage text. */
extern const char prime_analysis_limits_usage[];

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
