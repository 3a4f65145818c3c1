#ifndef PRIME_RECALL_MODEL_H
#define PRIME_RECALL_MODEL_H

/* Mixx Recall's arithmetic, with no server and no JSON: how uses become a
 * decayed weight, weights a confidence, and values an average. Every
 * function is a pure function of its inputs, and the state it keeps is
 * exact integers, so the same events give the same numbers whatever the
 * order and the batches they came in (docs/recall.md, "The model"). */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Half-lives kept below the newest: older evidence weighs less than 2^-40
 * of a fresh use and is dropped. */
#define RECALL_SPAN 40
/* One use, in bucket mass units: 2^40 (so a bucket holds 2^22 uses a
 * half-life before it saturates at RECALL_MASS_MAX). */
#define RECALL_MASS_UNIT_LOG2 40
#define RECALL_MASS_MAX ((int64_t)1 << 62)
/* Shrinkage: the weight of evidence a category is assumed to lack, in
 * fresh uses. One use alone gives 1 / (1 + 1) = 0.50. */
#define RECALL_PRIOR 1.0

/* The uses of one item. Time is cut into half-lives since the Unix epoch
 * (bucket k holds the uses in [k*H, (k+1)*H)); a use at t adds
 * 2^((t - k*H)/H) units, rounded, to its bucket. Sums of integers commute,
 * the newest bucket is a max, and a bucket is kept only while it is within
 * RECALL_SPAN of the newest, so the state is the same function of the set
 * of uses in every order. */
typedef struct recall_evidence {
    int64_t top;                 /* newest bucket; meaningless when n == 0 */
    int n;                       /* buckets held, ascending by k */
    int64_t k[RECALL_SPAN + 1];
    int64_t mass[RECALL_SPAN + 1];
} recall_evidence_t;

void recall_evidence_init(recall_evidence_t *e);
/* A use at t_us (microseconds since the epoch) with half-life h_us > 0. */
void recall_evidence_add(recall_evidence_t *e, int64_t t_us, int64_t h_us);
/* The decayed weight at at_us, in fresh uses (a use at at_us weighs 1).
 * Summed from the oldest bucket up: one order, one result. */
double recall_evidence_weight(const recall_evidence_t *e, int64_t at_us, int64_t h_us);
/* Text form "k:mass,k:mass" (ascending); "" when empty. parse returns
 * false for anything it did not print. */
void recall_evidence_format(const recall_evidence_t *e, char *out, size_t size);
bool recall_evidence_parse(recall_evidence_t *e, const char *text);
#define RECALL_EVIDENCE_TEXT ((RECALL_SPAN + 1) * 42)

/* Confidences of one category's items. weight[i] is item i's decayed
 * weight at the category's newest event; pin[i] is the confidence a
 * recall.set gave it, or negative when it is not pinned. Pinned items keep
 * their confidence (scaled down together when they add up to more than
 * 1); the others share what is left in proportion to their weight, over
 * the category's total plus RECALL_PRIOR. Rounded down to hundredths (the
 * column is DECIMAL(3,2)), so a category never adds up to more than 1. */
void recall_confidence(const double *weight, const double *pin, size_t n, double *out);
/* x in [0, 1] rounded down to hundredths, forgiving the last bits of a
 * product that should have been exact (0.29999999999 is 0.30). */
double recall_hundredths_down(double x);

/* A running mean and spread of a value, as exact integer sums of the value
 * in thousandths: order-free. Saturating: past 2^62 the sums stop growing
 * (n past about 10^8 uses of one item). */
typedef struct recall_moments {
    int64_t n, sum, sumsq;
} recall_moments_t;

void recall_moments_add(recall_moments_t *m, double value);
double recall_moments_mean(const recall_moments_t *m);
/* Population standard deviation; 0 for fewer than two values. */
double recall_moments_spread(const recall_moments_t *m);

/* Floor division of time by the half-life (correct for negative t). */
int64_t recall_bucket(int64_t t_us, int64_t h_us);

#endif
