#include "model.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int64_t sat_add(int64_t a, int64_t b)
{
    /* Both are in [0, RECALL_MASS_MAX]: the sum cannot overflow int64, and
     * min(max, a + b) commutes and associates. */
    int64_t s = a + b;
    return s > RECALL_MASS_MAX ? RECALL_MASS_MAX : s;
}

int64_t recall_bucket(int64_t t_us, int64_t h_us)
{
    int64_t q = t_us / h_us;
    return (t_us % h_us < 0) ? q - 1 : q;
}

void recall_evidence_init(recall_evidence_t *e)
{
    memset(e, 0, sizeof(*e));
}

/* Drops the buckets more than RECALL_SPAN below top. */
static void prune(recall_evidence_t *e)
{
    int keep = 0;
    while (keep < e->n && e->k[keep] < e->top - RECALL_SPAN)
        keep++;
    if (keep) {
        memmove(e->k, e->k + keep, (size_t)(e->n - keep) * sizeof(e->k[0]));
        memmove(e->mass, e->mass + keep, (size_t)(e->n - keep) * sizeof(e->mass[0]));
        e->n -= keep;
    }
}

static void add_mass(recall_evidence_t *e, int64_t k, int64_t mass)
{
    int i;

    if (e->n && k < e->top - RECALL_SPAN)
        return; /* too old to count, and would be pruned in any order */
    if (!e->n || k > e->top) {
        e->top = k;
        prune(e);
    }
    for (i = 0; i < e->n && e->k[i] < k; i++)
        ;
    if (i < e->n && e->k[i] == k) {
        e->mass[i] = sat_add(e->mass[i], mass);
        return;
    }
    memmove(e->k + i + 1, e->k + i, (size_t)(e->n - i) * sizeof(e->k[0]));
    memmove(e->mass + i + 1, e->mass + i, (size_t)(e->n - i) * sizeof(e->mass[0]));
    e->k[i] = k;
    e->mass[i] = mass;
    e->n++;
}

void recall_evidence_add(recall_evidence_t *e, int64_t t_us, int64_t h_us)
{
    int64_t k = recall_bucket(t_us, h_us);
    double frac = (double)(t_us - k * h_us) / (double)h_us; /* [0, 1) */
    add_mass(e, k, (int64_t)llround(ldexp(exp2(frac), RECALL_MASS_UNIT_LOG2)));
}

double recall_evidence_weight(const recall_evidence_t *e, int64_t at_us, int64_t h_us)
{
    int64_t kt = recall_bucket(at_us, h_us);
    double into = (double)(at_us - kt * h_us) / (double)h_us, sum = 0;

    for (int i = 0; i < e->n; i++) {
        int64_t shift = e->k[i] - kt;
        if (shift < -1000)
            continue; /* below a double's range: weighs nothing */
        sum += ldexp((double)e->mass[i], (int)shift - RECALL_MASS_UNIT_LOG2);
    }
    return sum * exp2(-into);
}

void recall_evidence_format(const recall_evidence_t *e, char *out, size_t size)
{
    size_t used = 0;

    if (size)
        out[0] = '\0';
    for (int i = 0; i < e->n && used < size; i++) {
        int w = snprintf(out + used, size - used, "%s%" PRId64 ":%" PRId64, i ? "," : "", e->k[i], e->mass[i]);
        if (w < 0)
            break;
        used += (size_t)w;
    }
}

bool recall_evidence_parse(recall_evidence_t *e, const char *text)
{
    const char *p = text;

    recall_evidence_init(e);
    while (p && *p) {
        char *end;
        long long k, mass;
        k = strtoll(p, &end, 10);
        if (end == p || *end != ':')
            return false;
        p = end + 1;
        mass = strtoll(p, &end, 10);
        if (end == p || mass < 0 || mass > RECALL_MASS_MAX || (e->n && k <= e->k[e->n - 1]) || e->n > RECALL_SPAN)
            return false;
        e->k[e->n] = k;
        e->mass[e->n++] = mass;
        e->top = k;
        if (*end == ',')
            end++;
        else if (*end)
            return false;
        p = end;
    }
    return true;
}

double recall_hundredths_down(double x)
{
    double h;

    if (!(x > 0))
        return 0;
    h = floor(x * 100.0 * (1.0 + 1e-12));
    if (h > 100)
        h = 100;
    return h / 100.0;
}

void recall_confidence(const double *weight, const double *pin, size_t n, double *out)
{
    double pinned = 0, total = 0, scale = 1, rest;

    for (size_t i = 0; i < n; i++) {
        if (pin[i] >= 0)
            pinned += pin[i] > 1 ? 1 : pin[i];
        else
            total += weight[i] > 0 ? weight[i] : 0;
    }
    if (pinned > 1) {
        scale = 1 / pinned;
        pinned = 1;
    }
    rest = 1 - pinned;
    for (size_t i = 0; i < n; i++) {
        double c;
        if (pin[i] >= 0)
            c = (pin[i] > 1 ? 1 : pin[i]) * scale;
        else
            c = weight[i] > 0 ? rest * weight[i] / (total + RECALL_PRIOR) : 0;
        out[i] = recall_hundredths_down(c);
    }
}

void recall_moments_add(recall_moments_t *m, double value)
{
    int64_t v = llround(value * 1000.0), sq;

    if (!isfinite(value) || fabs(value) > 1e9)
        return;
    sq = v * v; /* |v| <= 10^12: the square fits */
    if (m->n < RECALL_MASS_MAX)
        m->n++;
    if (m->sum > -RECALL_MASS_MAX && m->sum < RECALL_MASS_MAX)
        m->sum += v;
    if (m->sumsq < RECALL_MASS_MAX)
        m->sumsq = sq > RECALL_MASS_MAX - m->sumsq ? RECALL_MASS_MAX : m->sumsq + sq;
}

double recall_moments_mean(const recall_moments_t *m)
{
    return m->n ? (double)m->sum / (double)m->n / 1000.0 : 0;
}

double recall_moments_spread(const recall_moments_t *m)
{
    double n = (double)m->n, mean, var;

    if (m->n < 2)
        return 0;
    mean = (double)m->sum / n;
    var = (double)m->sumsq / n - mean * mean;
    return var > 0 ? sqrt(var) / 1000.0 : 0;
}
