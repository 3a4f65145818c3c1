/* The long-term average spectrum: the mean of the channels, in Hann
 * windows of 16384 samples (3 Hz bins at 48 kHz, so the 20 Hz band has
 * some) overlapping by half, power averaged over the
 * file (the last window zero-padded). From it: centroid, 85 % rolloff and
 * flatness over 20 Hz .. 20 kHz (or Nyquist), each band's share of the
 * energy, and the 1/3-octave levels in dB relative to a full-scale sine
 * (a sine of amplitude 1 inside a band reads 0 dB). */
#include "analysis_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define FFT_SIZE 16384
#define HOP (FFT_SIZE / 2)
#define BINS (FFT_SIZE / 2 + 1)

/* Exact centres 1000 * 10^(n/10), n = -17 .. 13 (ISO 266's nominal 20, 25,
 * 31.5, ... 20000 Hz are their rounded names). */
const double third_octave_centres[THIRD_OCTAVES] = {
    19.95, 25.12, 31.62, 39.81, 50.12, 63.10, 79.43, 100.0, 125.9, 158.5, 199.5,
    251.2, 316.2, 398.1, 501.2, 631.0, 794.3, 1000.0, 1259, 1585, 1995, 2512,
    3162, 3981, 5012, 6310, 7943, 10000, 12589, 15849, 19953,
};

static const double band_edges[BAND_COUNT + 1] = {20, 60, 250, 500, 2000, 6000, 20000};

struct spectrum_plan {
    double *in;
    fftw_complex *out;
    double window[FFT_SIZE];
    double window_power; /* sum of the window's squares */
    fftw_plan plan;
};

struct spectrum {
    spectrum_plan_t *plan;
    int channels, sample_rate;
    double frame[FFT_SIZE]; /* the mono signal of the window being filled */
    size_t filled;
    double power[BINS];
    size_t windows;
};

spectrum_plan_t *spectrum_plan_new(void)
{
    spectrum_plan_t *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->in = fftw_malloc(sizeof(double) * FFT_SIZE);
    p->out = fftw_malloc(sizeof(fftw_complex) * BINS);
    if (!p->in || !p->out) {
        spectrum_plan_free(p);
        return NULL;
    }
    /* Made once per analyzer and reused for every window of every file. */
    p->plan = fftw_plan_dft_r2c_1d(FFT_SIZE, p->in, p->out, FFTW_ESTIMATE);
    for (int i = 0; i < FFT_SIZE; i++) {
        p->window[i] = 0.5 - 0.5 * cos(2.0 * M_PI * i / FFT_SIZE);
        p->window_power += p->window[i] * p->window[i];
    }
    if (!p->plan) {
        spectrum_plan_free(p);
        return NULL;
    }
    return p;
}

void spectrum_plan_free(spectrum_plan_t *p)
{
    if (!p)
        return;
    if (p->plan)
        fftw_destroy_plan(p->plan);
    fftw_free(p->in);
    fftw_free(p->out);
    free(p);
}

spectrum_t *spectrum_new(spectrum_plan_t *plan, int channels, int sample_rate)
{
    spectrum_t *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->plan = plan;
    s->channels = channels;
    s->sample_rate = sample_rate;
    return s;
}

static void transform(spectrum_t *s)
{
    spectrum_plan_t *p = s->plan;
    for (int i = 0; i < FFT_SIZE; i++)
        p->in[i] = s->frame[i] * p->window[i];
    fftw_execute(p->plan);
    for (int k = 0; k < BINS; k++)
        s->power[k] += p->out[k][0] * p->out[k][0] + p->out[k][1] * p->out[k][1];
    s->windows++;
    /* Half a window overlaps the next one. */
    memmove(s->frame, s->frame + HOP, sizeof(double) * (FFT_SIZE - HOP));
    s->filled = FFT_SIZE - HOP;
}

void spectrum_add(spectrum_t *s, const float *frames, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        double sum = 0;
        for (int c = 0; c < s->channels; c++)
            sum += frames[i * (size_t)s->channels + (size_t)c];
        s->frame[s->filled++] = sum / s->channels;
        if (s->filled == FFT_SIZE)
            transform(s);
    }
}

/* Mean square of the signal per bin: one-sided, window removed. */
static double bin_power(const spectrum_t *s, int k)
{
    double scale = 2.0 / ((double)FFT_SIZE * s->plan->window_power * (double)s->windows);
    return s->power[k] * scale;
}

void spectrum_finish(spectrum_t *s, prime_analysis_t *out)
{
    double nyquist = s->sample_rate / 2.0, hz = (double)s->sample_rate / FFT_SIZE;
    double top = nyquist < 20000 ? nyquist : 20000, total = 0, weighted = 0, log_sum = 0;
    int lo = (int)ceil(20.0 / hz), hi = (int)floor(top / hz), nbins;

    /* What is left of the signal: zero-padded, unless the last window
     * already covered it. */
    if (s->filled > (s->windows ? (size_t)(FFT_SIZE - HOP) : 0)) {
        memset(s->frame + s->filled, 0, sizeof(double) * (FFT_SIZE - s->filled));
        transform(s);
    }
    out->spectrum_defined = false;
    for (int b = 0; b < THIRD_OCTAVES; b++)
        out->third_octave[b] = -HUGE_VAL;
    if (!s->windows || hi < lo)
        return;
    for (int k = lo; k <= hi; k++) {
        double p = bin_power(s, k);
        total += p;
        weighted += p * k * hz;
        log_sum += log(p + 1e-30);
    }
    nbins = hi - lo + 1;
    if (total <= 0)
        return;
    out->spectrum_defined = true;
    out->centroid = weighted / total;
    out->flatness = exp(log_sum / nbins) / (total / nbins);
    out->rolloff = top;
    for (double cum = 0; lo <= hi; lo++) {
        cum += bin_power(s, lo);
        if (cum >= 0.85 * total) {
            out->rolloff = lo * hz;
            break;
        }
    }
    for (int b = 0; b < BAND_COUNT; b++) {
        double share = 0;
        for (int k = (int)ceil(band_edges[b] / hz); k * hz < band_edges[b + 1] && k * hz <= top; k++)
            share += bin_power(s, k);
        out->bands[b] = share / total;
    }
    for (int b = 0; b < THIRD_OCTAVES; b++) {
        double f_lo = third_octave_centres[b] * pow(10, -0.05), f_hi = third_octave_centres[b] * pow(10, 0.05);
        double p = 0;
        if (f_lo >= nyquist)
            continue;
        for (int k = (int)ceil(f_lo / hz); k * hz < f_hi && k < BINS; k++)
            p += bin_power(s, k);
        out->third_octave[b] = p > 0 ? 10.0 * log10(2.0 * p) : -HUGE_VAL;
    }
}

void spectrum_free(spectrum_t *s)
{
    free(s);
}
