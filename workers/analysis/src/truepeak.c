/* True peak per channel with libebur128's oversampling, run only on the
 * blocks that could raise it: the shortcut, exact.
 *
 * libebur128 1.2.6 oversamples below 96 kHz by 4 and below 192 kHz by 2,
 * with a 49-tap Hann-windowed sinc split into polyphase filters; each
 * interpolated value is a sum of at most 12 (24) input samples weighted by
 * one phase's taps, so its magnitude is at most the phase's sum of |taps|
 * (1.8642 for 4x, 2.3069 for 2x, computed from that design) times the
 * largest input magnitude in its support. A block whose samples, with the
 * ones before it that the filter still holds, peak below (running true
 * peak / that bound) cannot raise the true peak and is not oversampled.
 * A block that is: the samples before it are fed first, in a call of
 * their own, so the filter holds what it would in a full run, and the
 * block's own maximum is libebur128's prev_true_peak. At 192 kHz and over
 * libebur128 does not oversample: the bound is 1. */
#include "analysis_int.h"

#include <ebur128.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define CONTEXT 64 /* frames kept from the previous block; the filters hold 12 or 24 */

struct true_peak {
    ebur128_state *st;
    int channels;
    double bound;
    float *context; /* the last `held` frames fed to add, interleaved */
    size_t held;
    double *max;    /* per channel, linear */
};

true_peak_t *true_peak_new(int channels, int sample_rate)
{
    true_peak_t *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->channels = channels;
    /* A hair over the exact sums, for rounding inside the filter. */
    t->bound = (sample_rate < 96000 ? 1.8642 : sample_rate < 192000 ? 2.3069 : 1.0) * 1.001;
    t->st = ebur128_init((unsigned)channels, (unsigned long)sample_rate, EBUR128_MODE_TRUE_PEAK);
    t->context = calloc((size_t)CONTEXT * (size_t)channels, sizeof(float));
    t->max = calloc((size_t)channels, sizeof(double));
    if (!t->st || !t->context || !t->max) {
        true_peak_free(t);
        return NULL;
    }
    return t;
}

static bool may_raise(const true_peak_t *t, const float *frames, size_t n)
{
    for (int c = 0; c < t->channels; c++) {
        float peak = 0;
        for (size_t i = 0; i < t->held; i++)
            peak = fmaxf(peak, fabsf(t->context[i * (size_t)t->channels + (size_t)c]));
        for (size_t i = 0; i < n; i++)
            peak = fmaxf(peak, fabsf(frames[i * (size_t)t->channels + (size_t)c]));
        if (t->bound * peak > t->max[c])
            return true;
    }
    return false;
}

void true_peak_add(true_peak_t *t, const float *frames, size_t n)
{
    size_t keep, ch = (size_t)t->channels;

    if (may_raise(t, frames, n)) {
        if (t->held)
            ebur128_add_frames_float(t->st, t->context, t->held);
        ebur128_add_frames_float(t->st, frames, n);
        for (int c = 0; c < t->channels; c++) {
            double v;
            if (ebur128_prev_true_peak(t->st, (unsigned)c, &v) == EBUR128_SUCCESS && v > t->max[c])
                t->max[c] = v;
        }
    }
    /* The last CONTEXT frames fed so far, for the next block. */
    if (n >= CONTEXT) {
        memcpy(t->context, frames + (n - CONTEXT) * ch, sizeof(float) * CONTEXT * ch);
        t->held = CONTEXT;
        return;
    }
    keep = t->held + n > CONTEXT ? CONTEXT - n : t->held;
    memmove(t->context, t->context + (t->held - keep) * ch, sizeof(float) * keep * ch);
    memcpy(t->context + keep * ch, frames, sizeof(float) * n * ch);
    t->held = keep + n;
}

void true_peak_finish(const true_peak_t *t, double *per_channel)
{
    memcpy(per_channel, t->max, sizeof(double) * (size_t)t->channels);
}

void true_peak_free(true_peak_t *t)
{
    if (!t)
        return;
    if (t->st)
        ebur128_destroy(&t->st);
    free(t->context);
    free(t->max);
    free(t);
}
