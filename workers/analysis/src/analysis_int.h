/* Internal to the analysis library: the result, and the three measures
 * that a pass feeds block by block. */
#ifndef PRIME_ANALYSIS_INT_H
#define PRIME_ANALYSIS_INT_H

#include <fftw3.h>
#include <stdbool.h>
#include <stddef.h>

#include "prime/analysis.h"

#define BAND_COUNT 6     /* sub, low, low-mid, mid, high-mid, high */
#define THIRD_OCTAVES 31 /* ISO 266 centres, 20 Hz .. 20 kHz */

struct prime_analysis_s {
    /* the file */
    char format[16];
    int sample_rate, channels, bit_depth; /* bit_depth 0: not PCM (lossy, float...) */
    long long frames;
    double duration;
    /* loudness (LUFS, LU); -HUGE_VAL where the signal has none */
    double integrated, lra, max_momentary, max_shortterm;
    double *sample_peak, *true_peak; /* per channel, linear */
    double sample_peak_max, true_peak_max;
    /* loudness every 100 ms for the plot; short-term NAN where not measured
     * (it is measured at least once a second) */
    float *momentary, *shortterm;
    size_t ncurve;
    /* dynamics */
    double rms;        /* of all channels together, linear */
    double *dr_channel; /* per channel, dB; NAN when silent */
    double dr;          /* mean of the channels; NAN when undefined */
    /* spectrum (of the channels' mean) */
    bool spectrum_defined;
    double centroid, rolloff, flatness;
    double bands[BAND_COUNT];          /* share of energy, 0..1 */
    double third_octave[THIRD_OCTAVES]; /* dB re a full-scale sine; -HUGE_VAL when none */
};

/* The TT Dynamic Range Meter's figure (dynamics.c). */
typedef struct dr_meter dr_meter_t;
dr_meter_t *dr_meter_new(int channels, int sample_rate);
void dr_meter_add(dr_meter_t *m, const float *frames, size_t n);
/* Per channel figures into dr[channels]; returns their mean (NAN when no
 * channel has one). */
double dr_meter_finish(dr_meter_t *m, double *dr);
void dr_meter_free(dr_meter_t *m);

/* The long-term average spectrum (spectrum.c). The FFT plan belongs to the
 * analyzer and is reused; spectrum_t is one file's accumulation. */
typedef struct spectrum_plan spectrum_plan_t;
spectrum_plan_t *spectrum_plan_new(void);
void spectrum_plan_free(spectrum_plan_t *p);

typedef struct spectrum spectrum_t;
spectrum_t *spectrum_new(spectrum_plan_t *plan, int channels, int sample_rate);
void spectrum_add(spectrum_t *s, const float *frames, size_t n);
void spectrum_finish(spectrum_t *s, prime_analysis_t *out);
void spectrum_free(spectrum_t *s);

extern const double third_octave_centres[THIRD_OCTAVES];

/* The true peak, oversampling only blocks that could raise it (truepeak.c). */
typedef struct true_peak true_peak_t;
true_peak_t *true_peak_new(int channels, int sample_rate);
void true_peak_add(true_peak_t *t, const float *frames, size_t n);
/* Per channel (linear) into per_channel[channels]. */
void true_peak_finish(const true_peak_t *t, double *per_channel);
void true_peak_free(true_peak_t *t);

#endif
