/* One pass over a file: libsndfile decodes 100 ms at a time, and each
 * block goes to libebur128 (loudness, peaks), the DR meter and the
 * spectrum; momentary and short-term loudness are read after every block,
 * which gives their maxima and the curve to plot. */
#include "analysis_int.h"

#include <ebur128.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <sndfile.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_CHANNELS 64
#define MIN_RATE 1000
#define MAX_RATE 768000

struct prime_analyzer_s {
    spectrum_plan_t *plan;
    double max_seconds;
    prime_analysis_progress_fn progress;
    void *progress_ctx;
};

const char *prime_analysis_failure_name(prime_analysis_failure_t f)
{
    static const char *const names[] = {
        [PRIME_ANALYSIS_OK] = "ok",           [PRIME_ANALYSIS_MISSING] = "missing",
        [PRIME_ANALYSIS_UNREADABLE] = "unreadable", [PRIME_ANALYSIS_UNSUPPORTED] = "unsupported",
        [PRIME_ANALYSIS_CORRUPT] = "corrupt",   [PRIME_ANALYSIS_EMPTY] = "empty",
        [PRIME_ANALYSIS_TOO_LONG] = "too_long",
    };
    return (unsigned)f < sizeof(names) / sizeof(names[0]) ? names[f] : "unknown";
}

prime_analyzer_t *prime_analyzer_new(prime_error_t *err)
{
    prime_analyzer_t *a = calloc(1, sizeof(*a));
    if (!a || !(a->plan = spectrum_plan_new())) {
        free(a);
        prime_error_set(err, PRIME_ERR_NOMEM, NULL, "out of memory for the analyzer");
        return NULL;
    }
    a->max_seconds = 4 * 3600;
    return a;
}

void prime_analyzer_free(prime_analyzer_t *a)
{
    if (!a)
        return;
    spectrum_plan_free(a->plan);
    free(a);
}

void prime_analyzer_set_max_seconds(prime_analyzer_t *a, double seconds)
{
    a->max_seconds = seconds;
}

void prime_analyzer_set_progress(prime_analyzer_t *a, prime_analysis_progress_fn fn, void *ctx)
{
    a->progress = fn;
    a->progress_ctx = ctx;
}

void prime_analysis_free(prime_analysis_t *r)
{
    if (!r)
        return;
    free(r->sample_peak);
    free(r->true_peak);
    free(r->dr_channel);
    free(r->momentary);
    free(r->shortterm);
    free(r);
}

/* "PATH: DETAIL", with the failure's reason. */
static prime_errcode_t fail(prime_analysis_failure_t *failure, prime_analysis_failure_t why, prime_error_t *err,
                            const char *path, const char *detail)
{
    if (failure)
        *failure = why;
    return prime_error_set(err, why == PRIME_ANALYSIS_UNREADABLE || why == PRIME_ANALYSIS_MISSING ? PRIME_ERR_IO
                                                                                                 : PRIME_ERR_INVALID,
                           NULL, "%s: %s", path, detail);
}

/* The file's format and bit depth, from libsndfile's format word. */
static void describe_format(int format, prime_analysis_t *r)
{
    static const struct {
        int major;
        const char *name;
    } majors[] = {
        {SF_FORMAT_WAV, "wav"},   {SF_FORMAT_WAVEX, "wav"}, {SF_FORMAT_AIFF, "aiff"}, {SF_FORMAT_FLAC, "flac"},
        {SF_FORMAT_OGG, "ogg"},   {SF_FORMAT_W64, "w64"},   {SF_FORMAT_RF64, "rf64"}, {SF_FORMAT_CAF, "caf"},
        {SF_FORMAT_AU, "au"},
    };
    int sub = format & SF_FORMAT_SUBMASK;

    snprintf(r->format, sizeof(r->format), "other");
    for (size_t i = 0; i < sizeof(majors) / sizeof(majors[0]); i++)
        if ((format & SF_FORMAT_TYPEMASK) == majors[i].major)
            snprintf(r->format, sizeof(r->format), "%s", majors[i].name);
    if ((format & SF_FORMAT_TYPEMASK) == SF_FORMAT_OGG && sub == SF_FORMAT_OPUS)
        snprintf(r->format, sizeof(r->format), "opus");
    r->bit_depth = sub == SF_FORMAT_PCM_S8 || sub == SF_FORMAT_PCM_U8 ? 8
                   : sub == SF_FORMAT_PCM_16                            ? 16
                   : sub == SF_FORMAT_PCM_24                            ? 24
                   : sub == SF_FORMAT_PCM_32 || sub == SF_FORMAT_FLOAT  ? 32
                   : sub == SF_FORMAT_DOUBLE                            ? 64
                                                                        : 0;
}

/* libebur128's channel roles from the file's own channel map, when it has
 * one (LFE is not counted; surrounds are weighted): otherwise libebur128's
 * default order, L R C LFE Ls Rs. */
static void map_channels(SNDFILE *snd, ebur128_state *st, int channels)
{
    int *map = calloc((size_t)channels, sizeof(int));

    if (map && sf_command(snd, SFC_GET_CHANNEL_MAP_INFO, map, (int)(sizeof(int) * (size_t)channels)) == SF_TRUE) {
        for (int c = 0; c < channels; c++) {
            int role;
            switch (map[c]) {
            case SF_CHANNEL_MAP_MONO: role = EBUR128_CENTER; break;
            case SF_CHANNEL_MAP_LEFT: case SF_CHANNEL_MAP_FRONT_LEFT: role = EBUR128_LEFT; break;
            case SF_CHANNEL_MAP_RIGHT: case SF_CHANNEL_MAP_FRONT_RIGHT: role = EBUR128_RIGHT; break;
            case SF_CHANNEL_MAP_CENTER: case SF_CHANNEL_MAP_FRONT_CENTER: role = EBUR128_CENTER; break;
            case SF_CHANNEL_MAP_REAR_LEFT: case SF_CHANNEL_MAP_SIDE_LEFT: role = EBUR128_LEFT_SURROUND; break;
            case SF_CHANNEL_MAP_REAR_RIGHT: case SF_CHANNEL_MAP_SIDE_RIGHT: role = EBUR128_RIGHT_SURROUND; break;
            case SF_CHANNEL_MAP_LFE: role = EBUR128_UNUSED; break;
            default: role = -1; /* keep libebur128's default for this index */
            }
            if (role >= 0)
                ebur128_set_channel(st, (unsigned)c, role);
        }
    }
    free(map);
}

/* Whether libsndfile found the audio data shorter than the header
 * declares (a cut-off upload): its log then has a line like
 * "data : 384000 (should be 191978)". libsndfile reads what is there
 * without an error; the analysis of half a file is not the file's. */
static bool truncated(SNDFILE *snd, char *detail, size_t size)
{
    char log[8192];
    const char *line;

    sf_command(snd, SFC_GET_LOG_INFO, log, sizeof(log));
    for (line = log; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        long long declared, actual;
        if ((!strncmp(line, "data", 4) || !strncmp(line, "SSND", 4)) &&
            sscanf(line + 4, " : %lld (should be %lld)", &declared, &actual) == 2 && actual < declared) {
            snprintf(detail, size, "truncated: the header declares %lld bytes of audio, the file holds %lld", declared,
                     actual);
            return true;
        }
    }
    return false;
}

/* The momentary energies of the last 29 blocks of 100 ms, newest last. */
typedef struct recent {
    double energy[29];
    size_t n;
} recent_t;

/* Short-term loudness (3 s) costs libebur128 a pass over 3 s of samples,
 * ten times a second; the maximum needs it only where it may be a new
 * maximum, and the plotted curve once a second. NAN when skipped. With blocks of
 * exactly 100 ms, the 3 s window is 30 blocks, and the 400 ms momentary
 * windows ending now, 4, 8, ... 24 blocks ago cover 28 of them; the two
 * left over lie in the one ending 28 blocks ago. So 30 * E_3s <= 4 * (the
 * sum of those eight momentary energies): when that bound is below the
 * maximum so far, the short-term loudness cannot be a new maximum. */
static double shortterm_if_needed(ebur128_state *st, recent_t *recent, double momentary, double max_so_far,
                                  bool exact_blocks, bool for_curve)
{
    double e = isfinite(momentary) ? pow(10.0, (momentary + 0.691) / 10.0) : 0.0, sum = e, bound, s;

    for (size_t k = 4; k <= 28; k += 4)
        if (k <= recent->n)
            sum += recent->energy[recent->n - k];
    if (recent->n == 29)
        memmove(recent->energy, recent->energy + 1, sizeof(double) * 28), recent->n--;
    recent->energy[recent->n++] = e;
    bound = sum > 0 ? -0.691 + 10.0 * log10(4.0 * sum / 30.0) : -HUGE_VAL;
    if (exact_blocks && bound < max_so_far && !for_curve)
        return NAN;
    ebur128_loudness_shortterm(st, &s);
    return s;
}

static int append_curve(prime_analysis_t *r, size_t *cap, double momentary, double shortterm)
{
    if (r->ncurve == *cap) {
        size_t grown = *cap ? *cap * 2 : 1024;
        float *m = realloc(r->momentary, grown * sizeof(float));
        float *s = m ? realloc(r->shortterm, grown * sizeof(float)) : NULL;
        if (m)
            r->momentary = m;
        if (!s)
            return -1;
        r->shortterm = s;
        *cap = grown;
    }
    r->momentary[r->ncurve] = (float)momentary;
    r->shortterm[r->ncurve++] = (float)shortterm;
    return 0;
}

prime_errcode_t prime_analyze_file(prime_analyzer_t *a, const char *path, prime_analysis_t **out,
                                   prime_analysis_failure_t *failure, prime_error_t *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    prime_errcode_t rc;

    *out = NULL;
    if (fd < 0)
        return fail(failure, errno == ENOENT ? PRIME_ANALYSIS_MISSING : PRIME_ANALYSIS_UNREADABLE, err, path,
                    strerror(errno));
    rc = prime_analyze_fd(a, fd, path, out, failure, err);
    close(fd);
    return rc;
}

prime_errcode_t prime_analyze_fd(prime_analyzer_t *a, int fd, const char *path, prime_analysis_t **out,
                                 prime_analysis_failure_t *failure, prime_error_t *err)
{
    SF_INFO info = {0};
    SNDFILE *snd;
    struct stat st;
    ebur128_state *loud = NULL;
    true_peak_t *tp = NULL;
    dr_meter_t *dr = NULL;
    spectrum_t *spec = NULL;
    prime_analysis_t *r = NULL;
    float *buf = NULL;
    double sum2 = 0;
    size_t block, curve_cap = 0;
    recent_t recent = {.n = 0};
    bool exact_blocks;
    prime_errcode_t rc = PRIME_OK;
    char detail[256];

    *out = NULL;
    if (failure)
        *failure = PRIME_ANALYSIS_OK;
    if (fstat(fd, &st))
        return fail(failure, PRIME_ANALYSIS_UNREADABLE, err, path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return fail(failure, PRIME_ANALYSIS_UNREADABLE, err, path, "not a regular file");
    if (!(snd = sf_open_fd(fd, SFM_READ, &info, SF_FALSE))) {
        int e = sf_error(NULL);
        snprintf(detail, sizeof(detail), "%s", sf_strerror(NULL));
        return fail(failure,
                    e == SF_ERR_SYSTEM                  ? PRIME_ANALYSIS_UNREADABLE
                    : e == SF_ERR_UNRECOGNISED_FORMAT   ? PRIME_ANALYSIS_UNSUPPORTED
                    : e == SF_ERR_UNSUPPORTED_ENCODING  ? PRIME_ANALYSIS_UNSUPPORTED
                                                        : PRIME_ANALYSIS_CORRUPT,
                    err, path, detail);
    }
    if (info.channels < 1 || info.samplerate < 1) {
        sf_close(snd);
        return fail(failure, PRIME_ANALYSIS_CORRUPT, err, path, "no channels or no sample rate");
    }
    /* A header may claim anything; these bound what a file can make the
     * analyzer allocate (and are what libebur128 measures). */
    if (info.channels > MAX_CHANNELS || info.samplerate < MIN_RATE || info.samplerate > MAX_RATE) {
        snprintf(detail, sizeof(detail), "%d channels at %d Hz: at most %d channels, %d to %d Hz are analysed",
                 info.channels, info.samplerate, MAX_CHANNELS, MIN_RATE, MAX_RATE);
        sf_close(snd);
        return fail(failure, PRIME_ANALYSIS_UNSUPPORTED, err, path, detail);
    }
    if (truncated(snd, detail, sizeof(detail))) {
        sf_close(snd);
        return fail(failure, PRIME_ANALYSIS_CORRUPT, err, path, detail);
    }
    if (info.frames <= 0) {
        sf_close(snd);
        return fail(failure, PRIME_ANALYSIS_EMPTY, err, path, "no audio frames");
    }
    if ((double)info.frames / info.samplerate > a->max_seconds) {
        snprintf(detail, sizeof(detail), "%.0f seconds, the limit is %.0f", (double)info.frames / info.samplerate,
                 a->max_seconds);
        sf_close(snd);
        return fail(failure, PRIME_ANALYSIS_TOO_LONG, err, path, detail);
    }

    r = calloc(1, sizeof(*r));
    block = (size_t)info.samplerate / 10 ? (size_t)info.samplerate / 10 : 1;
    exact_blocks = info.samplerate % 10 == 0;
    if (r) {
        r->sample_rate = info.samplerate;
        r->channels = info.channels;
        describe_format(info.format, r);
        r->sample_peak = calloc((size_t)info.channels, sizeof(double));
        r->true_peak = calloc((size_t)info.channels, sizeof(double));
        r->dr_channel = calloc((size_t)info.channels, sizeof(double));
    }
    buf = malloc(block * (size_t)info.channels * sizeof(float));
    loud = ebur128_init((unsigned)info.channels, (unsigned long)info.samplerate,
                        EBUR128_MODE_I | EBUR128_MODE_LRA | EBUR128_MODE_S | EBUR128_MODE_SAMPLE_PEAK);
    tp = true_peak_new(info.channels, info.samplerate);
    dr = dr_meter_new(info.channels, info.samplerate);
    spec = spectrum_new(a->plan, info.channels, info.samplerate);
    if (!r || !r->sample_peak || !r->true_peak || !r->dr_channel || !buf || !loud || !tp || !dr || !spec) {
        rc = prime_error_set(err, PRIME_ERR_NOMEM, NULL, "%s: out of memory", path);
        goto out;
    }
    map_channels(snd, loud, info.channels);
    r->max_momentary = r->max_shortterm = -HUGE_VAL;

    for (;;) {
        sf_count_t got = sf_readf_float(snd, buf, (sf_count_t)block);
        double m, s;
        if (got <= 0)
            break;
        for (size_t i = 0; i < (size_t)got * (size_t)info.channels; i++) {
            /* Decoders of lossy formats may yield NaN on broken input. */
            if (!isfinite(buf[i]))
                buf[i] = 0;
            sum2 += (double)buf[i] * buf[i];
        }
        ebur128_add_frames_float(loud, buf, (size_t)got);
        true_peak_add(tp, buf, (size_t)got);
        dr_meter_add(dr, buf, (size_t)got);
        spectrum_add(spec, buf, (size_t)got);
        r->frames += got;
        ebur128_loudness_momentary(loud, &m);
        s = shortterm_if_needed(loud, &recent, m, r->max_shortterm, exact_blocks, r->ncurve % 10 == 0);
        if (m > r->max_momentary)
            r->max_momentary = m;
        if (s > r->max_shortterm)
            r->max_shortterm = s;
        if (append_curve(r, &curve_cap, m, s)) {
            rc = prime_error_set(err, PRIME_ERR_NOMEM, NULL, "%s: out of memory", path);
            goto out;
        }
        if (a->progress && r->ncurve % 50 == 0)
            a->progress((double)r->frames / (double)info.frames, a->progress_ctx);
    }
    if (sf_error(snd) || r->frames < info.frames) {
        snprintf(detail, sizeof(detail), "%s after %lld of %lld frames",
                 sf_error(snd) ? sf_strerror(snd) : "the data ends", (long long)r->frames, (long long)info.frames);
        rc = fail(failure, PRIME_ANALYSIS_CORRUPT, err, path, detail);
        goto out;
    }

    r->duration = (double)r->frames / info.samplerate;
    ebur128_loudness_global(loud, &r->integrated);
    if (ebur128_loudness_range(loud, &r->lra))
        r->lra = -HUGE_VAL;
    true_peak_finish(tp, r->true_peak);
    for (int c = 0; c < info.channels; c++) {
        ebur128_sample_peak(loud, (unsigned)c, &r->sample_peak[c]);
        /* As libebur128's own true peak: never below the sample peak. */
        if (r->sample_peak[c] > r->true_peak[c])
            r->true_peak[c] = r->sample_peak[c];
        if (r->sample_peak[c] > r->sample_peak_max)
            r->sample_peak_max = r->sample_peak[c];
        if (r->true_peak[c] > r->true_peak_max)
            r->true_peak_max = r->true_peak[c];
    }
    r->rms = sqrt(sum2 / ((double)r->frames * info.channels));
    r->dr = dr_meter_finish(dr, r->dr_channel);
    spectrum_finish(spec, r);
    if (a->progress)
        a->progress(1.0, a->progress_ctx);
    *out = r;
    r = NULL;
out:
    sf_close(snd);
    if (loud)
        ebur128_destroy(&loud);
    true_peak_free(tp);
    dr_meter_free(dr);
    spectrum_free(spec);
    free(buf);
    prime_analysis_free(r);
    return rc;
}

bool prime_analysis_integrated_lufs(const prime_analysis_t *r, double *value)
{
    if (!isfinite(r->integrated))
        return false;
    *value = r->integrated;
    return true;
}

bool prime_analysis_dr(const prime_analysis_t *r, double *value)
{
    if (!isfinite(r->dr))
        return false;
    *value = r->dr;
    return true;
}

double prime_analysis_duration(const prime_analysis_t *r)
{
    return r->duration;
}

int prime_analysis_sample_rate(const prime_analysis_t *r)
{
    return r->sample_rate;
}

int prime_analysis_channels(const prime_analysis_t *r)
{
    return r->channels;
}
