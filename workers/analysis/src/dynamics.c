/* The "DR" figure of the TT Dynamic Range Meter (Pleasurize Music
 * Foundation), as docs/analysis.md defines it: per channel, the signal in
 * 3-second blocks (the last, shorter block counts too, as in ffmpeg's
 * drmeter); each block's RMS with the meter's +3 dB (sqrt(2 * mean of
 * squares), so a full-scale sine reads 0 dB) and its peak; the loudest 20 %
 * of the blocks by RMS (at least one) combined as the root of their mean
 * square; the second-highest block peak; DR = 20 log10(second peak / that
 * RMS), never below 0. The file's DR is the mean of its channels'. */
#include "analysis_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct block {
    double rms, peak;
} block_t;

struct dr_meter {
    int channels;
    size_t block_frames, in_block;
    double *sum2, *peak; /* the current block, per channel */
    block_t *blocks;     /* [nblocks][channels] */
    size_t nblocks, cap;
    bool failed;
};

dr_meter_t *dr_meter_new(int channels, int sample_rate)
{
    dr_meter_t *m = calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    m->channels = channels;
    m->block_frames = (size_t)sample_rate * 3;
    m->sum2 = calloc((size_t)channels, sizeof(double));
    m->peak = calloc((size_t)channels, sizeof(double));
    if (!m->sum2 || !m->peak) {
        dr_meter_free(m);
        return NULL;
    }
    return m;
}

static void close_block(dr_meter_t *m)
{
    if (!m->in_block)
        return;
    if (m->nblocks == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 64;
        block_t *grown = realloc(m->blocks, cap * (size_t)m->channels * sizeof(*grown));
        if (!grown) {
            m->failed = true;
            return;
        }
        m->blocks = grown;
        m->cap = cap;
    }
    for (int c = 0; c < m->channels; c++) {
        block_t *b = &m->blocks[m->nblocks * (size_t)m->channels + (size_t)c];
        b->rms = sqrt(2.0 * m->sum2[c] / (double)m->in_block);
        b->peak = m->peak[c];
        m->sum2[c] = m->peak[c] = 0;
    }
    m->nblocks++;
    m->in_block = 0;
}

void dr_meter_add(dr_meter_t *m, const float *frames, size_t n)
{
    for (size_t i = 0; i < n;) {
        size_t take = m->block_frames - m->in_block;
        if (take > n - i)
            take = n - i;
        for (int c = 0; c < m->channels; c++) {
            double s2 = 0, pk = m->peak[c];
            for (size_t k = 0; k < take; k++) {
                double x = frames[(i + k) * (size_t)m->channels + (size_t)c];
                s2 += x * x;
                if (fabs(x) > pk)
                    pk = fabs(x);
            }
            m->sum2[c] += s2;
            m->peak[c] = pk;
        }
        m->in_block += take;
        i += take;
        if (m->in_block == m->block_frames)
            close_block(m);
    }
}

static int by_rms_desc(const void *a, const void *b)
{
    double x = ((const block_t *)a)->rms, y = ((const block_t *)b)->rms;
    return x < y ? 1 : x > y ? -1 : 0;
}

static int by_peak_desc(const void *a, const void *b)
{
    double x = ((const block_t *)a)->peak, y = ((const block_t *)b)->peak;
    return x < y ? 1 : x > y ? -1 : 0;
}

double dr_meter_finish(dr_meter_t *m, double *dr)
{
    block_t *column;
    double total = 0;
    int counted = 0;

    close_block(m);
    column = m->nblocks && !m->failed ? malloc(m->nblocks * sizeof(*column)) : NULL;
    for (int c = 0; c < m->channels; c++) {
        size_t top;
        double sum2 = 0, second;
        dr[c] = NAN;
        if (!column)
            continue;
        for (size_t b = 0; b < m->nblocks; b++)
            column[b] = m->blocks[b * (size_t)m->channels + (size_t)c];
        qsort(column, m->nblocks, sizeof(*column), by_peak_desc);
        second = column[m->nblocks > 1 ? 1 : 0].peak;
        qsort(column, m->nblocks, sizeof(*column), by_rms_desc);
        top = (size_t)ceil(0.2 * (double)m->nblocks);
        for (size_t b = 0; b < top; b++)
            sum2 += column[b].rms * column[b].rms;
        if (sum2 > 0 && second > 0) {
            /* The scale starts at 0: a channel whose second peak is not
             * above the RMS of its loudest blocks (a square wave: with the
             * meter's +3 dB its RMS is 3 dB over its peak) has no dynamic
             * range. */
            dr[c] = fmax(0.0, 20.0 * log10(second / sqrt(sum2 / (double)top)));
            total += dr[c];
            counted++;
        }
    }
    free(column);
    return counted ? total / counted : NAN;
}

void dr_meter_free(dr_meter_t *m)
{
    if (!m)
        return;
    free(m->sum2);
    free(m->peak);
    free(m->blocks);
    free(m);
}
