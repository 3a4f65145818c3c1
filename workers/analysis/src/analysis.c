/* One pass over a file: libsndfile decodes 100 ms at a time (libmpg123
 * for MPEG audio, see source_open), and each block goes to libebur128
 * (loudness, peaks), the DR meter and the spectrum; momentary and
 * short-term loudness are read after every block, which gives their maxima
 * and the curve to plot. The pass reads until the decoder has no more: a
 * header's length is checked against what is there, never trusted as the
 * end. */
#include "analysis_int.h"

#include <ebur128.h>
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <math.h>
#include <mpg123.h>
#include <sndfile.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_CHANNELS 64
#define MIN_RATE 1000
#define MAX_RATE 768000

struct prime_analyzer_s {
    spectrum_plan_t *plan;
    double max_seconds, max_cpu_seconds;
    long long max_samples;
    prime_analysis_progress_fn progress;
    void *progress_ctx;
};

const char *prime_analysis_failure_name(prime_analysis_failure_t f)
{
    static const char *const names[] = {
        [PRIME_ANALYSIS_OK] = "ok",           [PRIME_ANALYSIS_MISSING] = "missing",
        [PRIME_ANALYSIS_UNREADABLE] = "unreadable", [PRIME_ANALYSIS_UNSUPPORTED] = "unsupported",
        [PRIME_ANALYSIS_CORRUPT] = "corrupt",   [PRIME_ANALYSIS_EMPTY] = "empty",
        [PRIME_ANALYSIS_TOO_LONG] = "too_long",   [PRIME_ANALYSIS_OVER_BUDGET] = "over_budget",
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
    a->max_samples = PRIME_ANALYSIS_MAX_SAMPLES;
    a->max_cpu_seconds = PRIME_ANALYSIS_MAX_CPU_SECONDS;
    /* Once, before any thread decodes MPEG audio (a no-op in libmpg123
     * 1.27 and later, needed before). */
    mpg123_init();
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

void prime_analyzer_set_max_samples(prime_analyzer_t *a, long long samples)
{
    a->max_samples = samples;
}

void prime_analyzer_set_max_cpu_seconds(prime_analyzer_t *a, double seconds)
{
    a->max_cpu_seconds = seconds;
}

/* audio_files.duration_seconds is DECIMAL(10,3). */
#define MAX_SECONDS_LIMIT 9999999.0

const char prime_analysis_limits_usage[] =
    "  --max-seconds S       refuse files longer than S seconds (too_long; default 14400)\n"
    "  --max-samples N       refuse files that decode to more than N samples, frames x channels\n"
    "                        (over_budget; default 2000000000)\n"
    "  --max-cpu-seconds S   stop a file's analysis after S seconds of CPU time (over_budget; default 120)\n";

void prime_analysis_limits_init(prime_analysis_limits_t *l)
{
    l->max_seconds = 4 * 3600;
    l->max_samples = PRIME_ANALYSIS_MAX_SAMPLES;
    l->max_cpu_seconds = PRIME_ANALYSIS_MAX_CPU_SECONDS;
}

int prime_analysis_limits_option(prime_analysis_limits_t *l, const char *name, const char *value, prime_error_t *err)
{
    char *end = NULL;
    double v;

    if (strcmp(name, "--max-seconds") && strcmp(name, "--max-samples") && strcmp(name, "--max-cpu-seconds"))
        return 0;
    if (!value) {
        prime_error_set(err, PRIME_ERR_INVALID, name, "%s: a value is needed", name);
        return -1;
    }
    errno = 0;
    v = strtod(value, &end);
    if (!strcmp(name, "--max-samples")) {
        long long n = strtoll(value, &end, 10);
        if (errno || end == value || *end || n < 1) {
            prime_error_set(err, PRIME_ERR_INVALID, name, "%s: expected a whole number of samples >= 1, got '%s'",
                            name, value);
            return -1;
        }
        l->max_samples = n;
        return 1;
    }
    if (errno || end == value || *end || !(v > 0) ||
        (!strcmp(name, "--max-seconds") ? v > MAX_SECONDS_LIMIT : !isfinite(v))) {
        prime_error_set(err, PRIME_ERR_INVALID, name, "%s: expected seconds above 0%s, got '%s'", name,
                        !strcmp(name, "--max-seconds") ? " and at most 9999999 (audio_files.duration_seconds)" : "",
                        value);
        return -1;
    }
    if (!strcmp(name, "--max-seconds"))
        l->max_seconds = v;
    else
        l->max_cpu_seconds = v;
    return 1;
}

void prime_analyzer_set_limits(prime_analyzer_t *a, const prime_analysis_limits_t *l)
{
    a->max_seconds = l->max_seconds;
    a->max_samples = l->max_samples;
    a->max_cpu_seconds = l->max_cpu_seconds;
}

/* CPU time of the calling thread, in seconds. */
static double thread_cpu_seconds(void)
{
    struct timespec t;
    return clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t) ? 0.0 : (double)t.tv_sec + (double)t.tv_nsec / 1e9;
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
    if ((format & SF_FORMAT_TYPEMASK) == SF_FORMAT_MPEG)
        snprintf(r->format, sizeof(r->format), "%s", sub == SF_FORMAT_MPEG_LAYER_I    ? "mp1"
                                                     : sub == SF_FORMAT_MPEG_LAYER_II ? "mp2"
                                                                                      : "mp3");
    r->bit_depth = sub == SF_FORMAT_PCM_S8 || sub == SF_FORMAT_PCM_U8 ? 8
                   : sub == SF_FORMAT_PCM_16                            ? 16
                   : sub == SF_FORMAT_PCM_24                            ? 24
                   : sub == SF_FORMAT_PCM_32 || sub == SF_FORMAT_FLOAT  ? 32
                   : sub == SF_FORMAT_DOUBLE                            ? 64
                                                                        : 0;
}

/* BS.1770 channel weights: 0 for the LFE, 1.41 (+1.5 dB) for the
 * surrounds (side and back channels, as ffmpeg's ebur128 filter counts
 * them), 1 for the rest. */
typedef enum { WEIGHT_ONE, WEIGHT_SURROUND, WEIGHT_LFE } weight_t;

static weight_t weight_of_role(int role)
{
    switch (role) {
    case SF_CHANNEL_MAP_LFE: return WEIGHT_LFE;
    case SF_CHANNEL_MAP_REAR_LEFT: case SF_CHANNEL_MAP_REAR_RIGHT: case SF_CHANNEL_MAP_REAR_CENTER:
    case SF_CHANNEL_MAP_SIDE_LEFT: case SF_CHANNEL_MAP_SIDE_RIGHT: case SF_CHANNEL_MAP_TOP_REAR_LEFT:
    case SF_CHANNEL_MAP_TOP_REAR_RIGHT: case SF_CHANNEL_MAP_TOP_REAR_CENTER: return WEIGHT_SURROUND;
    default: return WEIGHT_ONE;
    }
}

/* A file without a channel map has the layout ffmpeg guesses for its
 * channel count (av_channel_layout_default: 2.1, 4.0, 5.0, 5.1, 6.1, 7.1),
 * so that both measure the same channels the same way; past 8 channels
 * there is no convention and every channel weighs 1. ('1': weight 1,
 * 's': surround, '0': LFE.) */
static weight_t weight_by_count(int channels, int c)
{
    static const char *const layouts[] = {"", "1", "11", "110", "111s", "111ss", "1110ss", "1110sss", "1110ssss"};
    if (channels >= (int)(sizeof(layouts) / sizeof(layouts[0])))
        return WEIGHT_ONE;
    return layouts[channels][c] == '0' ? WEIGHT_LFE : layouts[channels][c] == 's' ? WEIGHT_SURROUND : WEIGHT_ONE;
}

/* Every channel's weight in libebur128: from the file's own channel map
 * when it has one, otherwise from the channel count. (libebur128's own
 * default, L R C LFE Ls Rs, leaves channels 7 and on out.) */
static void map_channels(SNDFILE *snd, ebur128_state *st, int channels)
{
    int *map = snd ? calloc((size_t)channels, sizeof(int)) : NULL;
    bool mapped = map && sf_command(snd, SFC_GET_CHANNEL_MAP_INFO, map, (int)(sizeof(int) * (size_t)channels)) == SF_TRUE;

    for (int c = 0; c < channels; c++) {
        weight_t w = mapped ? weight_of_role(map[c]) : weight_by_count(channels, c);
        /* In libebur128 the role only chooses the weight. */
        ebur128_set_channel(st, (unsigned)c,
                            w == WEIGHT_LFE ? EBUR128_UNUSED : w == WEIGHT_SURROUND ? EBUR128_LEFT_SURROUND : EBUR128_CENTER);
    }
    free(map);
}

/* Whether libsndfile found the audio data shorter than the header
 * declares (a cut-off upload): its log then has a line like
 * "data : 384000 (should be 191978)". libsndfile reads what is there
 * without an error; the analysis of half a file is not the file's.
 * Two sizes say "unknown" rather than a length: 0xFFFFFFFF (what ffmpeg
 * and others write when the output is a pipe and the header cannot be
 * rewritten) and 0x7FFFF000 (sox's, for the same case); such a file is
 * read to its end. */
static bool truncated(SNDFILE *snd, char *detail, size_t size)
{
    char log[8192];
    const char *line;

    sf_command(snd, SFC_GET_LOG_INFO, log, sizeof(log));
    for (line = log; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        long long declared, actual;
        if ((!strncmp(line, "data", 4) || !strncmp(line, "SSND", 4)) &&
            sscanf(line + 4, " : %lld (should be %lld)", &declared, &actual) == 2 && actual < declared &&
            declared != 0xFFFFFFFFLL && declared != 0x7FFFF000LL) {
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
    if (exact_blocks && bound <= max_so_far && !for_curve) /* equal: not a new maximum (silence: -inf) */
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

/* Where the samples come from: libsndfile, or libmpg123 for MPEG audio.
 * libsndfile decodes MPEG with libmpg123 too, but ends its reads at the
 * length libmpg123 estimates from the file size and the first frame's bit
 * rate, which for a VBR file without a Xing header is wrong by any amount
 * (1.8 s of 5 s were analysed); here the decoder is read until it has no
 * more, with the flags libsndfile gives it. */
typedef struct source {
    SNDFILE *snd;         /* always opened first: it recognises the format */
    mpg123_handle *mpg;   /* for MPEG audio */
    int channels, rate, format;
    long long declared;   /* frames the header declares; -1 when unknown */
    char error[160];      /* why the last read failed */
} source_t;

static void source_close(source_t *src)
{
    if (src->mpg) {
        mpg123_close(src->mpg);
        mpg123_delete(src->mpg);
    }
    if (src->snd)
        sf_close(src->snd);
}

/* Opens fd with libsndfile, and MPEG audio again with libmpg123; on
 * failure the reason and *detail are set and nothing stays open. */
static prime_analysis_failure_t source_open(source_t *src, int fd, char *detail, size_t size)
{
    SF_INFO info = {0};
    long rate;
    int channels, encoding, e;

    *src = (source_t){.declared = -1};
    if (!(src->snd = sf_open_fd(fd, SFM_READ, &info, SF_FALSE))) {
        e = sf_error(NULL);
        snprintf(detail, size, "%s", sf_strerror(NULL));
        return e == SF_ERR_SYSTEM                   ? PRIME_ANALYSIS_UNREADABLE
               : e == SF_ERR_UNRECOGNISED_FORMAT    ? PRIME_ANALYSIS_UNSUPPORTED
               : e == SF_ERR_UNSUPPORTED_ENCODING   ? PRIME_ANALYSIS_UNSUPPORTED
                                                    : PRIME_ANALYSIS_CORRUPT;
    }
    src->channels = info.channels;
    src->rate = info.samplerate;
    src->format = info.format;
    /* SF_COUNT_MAX: libsndfile does not know (a FLAC whose header says 0
     * samples, as an encoder writing to a pipe leaves it). */
    src->declared = info.frames == SF_COUNT_MAX ? -1 : (long long)info.frames;
    if ((info.format & SF_FORMAT_TYPEMASK) != SF_FORMAT_MPEG)
        return PRIME_ANALYSIS_OK;

    src->declared = -1; /* an estimate: the decoder says where the end is */
    if (lseek(fd, 0, SEEK_SET) != 0 || !(src->mpg = mpg123_new(NULL, &e)) ||
        mpg123_param(src->mpg, MPG123_REMOVE_FLAGS, MPG123_AUTO_RESAMPLE, 0) != MPG123_OK ||
        mpg123_param(src->mpg, MPG123_ADD_FLAGS,
                     MPG123_QUIET | MPG123_FORCE_FLOAT | MPG123_GAPLESS | MPG123_NO_FRANKENSTEIN, 0) != MPG123_OK ||
        mpg123_open_fd(src->mpg, fd) != MPG123_OK ||
        mpg123_getformat(src->mpg, &rate, &channels, &encoding) != MPG123_OK) {
        snprintf(detail, size, "MPEG audio: %s", src->mpg ? mpg123_strerror(src->mpg) : "cannot start the decoder");
        source_close(src);
        *src = (source_t){.declared = -1};
        return PRIME_ANALYSIS_CORRUPT;
    }
    if (encoding != MPG123_ENC_FLOAT_32 || rate <= 0 || rate > MAX_RATE || channels < 1) {
        snprintf(detail, size, "MPEG audio: the decoder gives encoding %d, %d channels at %ld Hz", encoding, channels,
                 rate);
        source_close(src);
        *src = (source_t){.declared = -1};
        return PRIME_ANALYSIS_UNSUPPORTED;
    }
    src->rate = (int)rate;
    src->channels = channels;
    return PRIME_ANALYSIS_OK;
}

/* Up to n frames into buf: the number read, 0 at the end, -1 on an error
 * (src->error says which). */
static long long source_read(source_t *src, float *buf, size_t n)
{
    size_t want = n * (size_t)src->channels * sizeof(float), got = 0, done;
    int e = MPG123_OK;

    if (!src->mpg) {
        sf_count_t k = sf_readf_float(src->snd, buf, (sf_count_t)n);
        if (k <= 0 && sf_error(src->snd)) {
            snprintf(src->error, sizeof(src->error), "%s", sf_strerror(src->snd));
            return -1;
        }
        return k > 0 ? k : 0;
    }
    while (got < want && e == MPG123_OK) {
        done = 0;
        e = mpg123_read(src->mpg, (unsigned char *)buf + got, want - got, &done);
        got += done;
    }
    if (e != MPG123_OK && e != MPG123_DONE) {
        snprintf(src->error, sizeof(src->error), "MPEG audio: %s",
                 e == MPG123_NEW_FORMAT ? "the stream changes its format" : mpg123_strerror(src->mpg));
        return -1;
    }
    return (long long)(got / ((size_t)src->channels * sizeof(float)));
}

prime_errcode_t prime_analyze_file(prime_analyzer_t *a, const char *path, prime_analysis_t **out,
                                   prime_analysis_failure_t *failure, prime_error_t *err)
{
    /* O_NONBLOCK: opening a FIFO for reading would wait for a writer;
     * prime_analyze_fd refuses anything but a regular file. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
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
    source_t src;
    struct stat st;
    ebur128_state *loud = NULL;
    true_peak_t *tp = NULL;
    dr_meter_t *dr = NULL;
    spectrum_t *spec = NULL;
    prime_analysis_t *r = NULL;
    float *buf = NULL;
    double sum2 = 0;
    size_t block, curve_cap = 0;
    long long momentary_frames, shortterm_frames, max_frames, budget_frames;
    double cpu_start = thread_cpu_seconds();
    recent_t recent = {.n = 0};
    bool exact_blocks;
    prime_analysis_failure_t why;
    prime_errcode_t rc = PRIME_OK;
    char detail[256];

    *out = NULL;
    if (failure)
        *failure = PRIME_ANALYSIS_OK;
    if (fstat(fd, &st))
        return fail(failure, PRIME_ANALYSIS_UNREADABLE, err, path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return fail(failure, PRIME_ANALYSIS_UNREADABLE, err, path, "not a regular file");
    if ((why = source_open(&src, fd, detail, sizeof(detail))))
        return fail(failure, why, err, path, detail);
    if (src.channels < 1 || src.rate < 1) {
        source_close(&src);
        return fail(failure, PRIME_ANALYSIS_CORRUPT, err, path, "no channels or no sample rate");
    }
    /* A header may claim anything; these bound what a file can make the
     * analyzer allocate (and are what libebur128 measures). */
    if (src.channels > MAX_CHANNELS || src.rate < MIN_RATE || src.rate > MAX_RATE) {
        snprintf(detail, sizeof(detail), "%d channels at %d Hz: at most %d channels, %d to %d Hz are analysed",
                 src.channels, src.rate, MAX_CHANNELS, MIN_RATE, MAX_RATE);
        source_close(&src);
        return fail(failure, PRIME_ANALYSIS_UNSUPPORTED, err, path, detail);
    }
    if (!src.mpg && truncated(src.snd, detail, sizeof(detail))) {
        source_close(&src);
        return fail(failure, PRIME_ANALYSIS_CORRUPT, err, path, detail);
    }
    if (src.declared == 0) {
        source_close(&src);
        return fail(failure, PRIME_ANALYSIS_EMPTY, err, path, "no audio frames");
    }
    /* Checked before reading when the header says, and while reading in
     * any case (the length may be unknown). */
    max_frames = a->max_seconds * src.rate < 9e18 ? (long long)floor(a->max_seconds * src.rate) : LLONG_MAX;
    if (src.declared > max_frames) {
        snprintf(detail, sizeof(detail), "%.0f seconds, the limit is %.0f", (double)src.declared / src.rate,
                 a->max_seconds);
        source_close(&src);
        return fail(failure, PRIME_ANALYSIS_TOO_LONG, err, path, detail);
    }
    budget_frames = a->max_samples / src.channels;
    if (src.declared > budget_frames) {
        snprintf(detail, sizeof(detail), "%lld frames of %d channels: more than the budget of %lld decoded samples",
                 src.declared, src.channels, a->max_samples);
        source_close(&src);
        return fail(failure, PRIME_ANALYSIS_OVER_BUDGET, err, path, detail);
    }

    r = calloc(1, sizeof(*r));
    block = (size_t)src.rate / 10 ? (size_t)src.rate / 10 : 1;
    exact_blocks = src.rate % 10 == 0;
    /* The windows are full only from here on: before, libebur128 would
     * measure them padded with silence (ffmpeg gives no figure there). */
    momentary_frames = (long long)ceil(0.4 * src.rate);
    shortterm_frames = 3LL * src.rate;
    if (r) {
        r->sample_rate = src.rate;
        r->channels = src.channels;
        describe_format(src.format, r);
        r->sample_peak = calloc((size_t)src.channels, sizeof(double));
        r->true_peak = calloc((size_t)src.channels, sizeof(double));
        r->dr_channel = calloc((size_t)src.channels, sizeof(double));
    }
    buf = malloc(block * (size_t)src.channels * sizeof(float));
    loud = ebur128_init((unsigned)src.channels, (unsigned long)src.rate,
                        EBUR128_MODE_I | EBUR128_MODE_LRA | EBUR128_MODE_S | EBUR128_MODE_SAMPLE_PEAK);
    tp = true_peak_new(src.channels, src.rate);
    dr = dr_meter_new(src.channels, src.rate);
    spec = spectrum_new(a->plan, src.channels, src.rate);
    if (!r || !r->sample_peak || !r->true_peak || !r->dr_channel || !buf || !loud || !tp || !dr || !spec) {
        rc = prime_error_set(err, PRIME_ERR_NOMEM, NULL, "%s: out of memory", path);
        goto out;
    }
    map_channels(src.mpg ? NULL : src.snd, loud, src.channels);
    r->max_momentary = r->max_shortterm = -HUGE_VAL;

    for (;;) {
        long long got = source_read(&src, buf, block);
        double m, s;
        if (got < 0) {
            snprintf(detail, sizeof(detail), "%s after %lld frames", src.error, r->frames);
            rc = fail(failure, PRIME_ANALYSIS_CORRUPT, err, path, detail);
            goto out;
        }
        if (got == 0)
            break;
        if (r->frames + got > max_frames) {
            snprintf(detail, sizeof(detail), "longer than the limit of %.0f seconds", a->max_seconds);
            rc = fail(failure, PRIME_ANALYSIS_TOO_LONG, err, path, detail);
            goto out;
        }
        if (r->frames + got > budget_frames) {
            snprintf(detail, sizeof(detail), "more than the budget of %lld decoded samples (%d channels)",
                     a->max_samples, src.channels);
            rc = fail(failure, PRIME_ANALYSIS_OVER_BUDGET, err, path, detail);
            goto out;
        }
        if (thread_cpu_seconds() - cpu_start > a->max_cpu_seconds) {
            snprintf(detail, sizeof(detail), "more than the budget of %g CPU seconds, after %.1f s of audio",
                     a->max_cpu_seconds, (double)r->frames / src.rate);
            rc = fail(failure, PRIME_ANALYSIS_OVER_BUDGET, err, path, detail);
            goto out;
        }
        for (size_t i = 0; i < (size_t)got * (size_t)src.channels; i++) {
            /* NaN or infinity is no level: a float file holding them is
             * broken (as is a decoder that yields them), and any figure
             * made of them would be made up. */
            if (!isfinite(buf[i])) {
                snprintf(detail, sizeof(detail), "sample %lld of channel %zu is %s, not a level",
                         r->frames + (long long)(i / (size_t)src.channels) + 1, i % (size_t)src.channels + 1,
                         isnan(buf[i]) ? "NaN" : buf[i] > 0 ? "+infinity" : "-infinity");
                rc = fail(failure, PRIME_ANALYSIS_CORRUPT, err, path, detail);
                goto out;
            }
            sum2 += (double)buf[i] * buf[i];
        }
        ebur128_add_frames_float(loud, buf, (size_t)got);
        true_peak_add(tp, buf, (size_t)got);
        dr_meter_add(dr, buf, (size_t)got);
        spectrum_add(spec, buf, (size_t)got);
        r->frames += got;
        ebur128_loudness_momentary(loud, &m);
        s = shortterm_if_needed(loud, &recent, m, r->max_shortterm, exact_blocks, r->ncurve % 10 == 0);
        if (r->frames < momentary_frames)
            m = NAN;
        if (r->frames < shortterm_frames)
            s = NAN;
        if (m > r->max_momentary)
            r->max_momentary = m;
        if (s > r->max_shortterm)
            r->max_shortterm = s;
        if (append_curve(r, &curve_cap, m, s)) {
            rc = prime_error_set(err, PRIME_ERR_NOMEM, NULL, "%s: out of memory", path);
            goto out;
        }
        if (a->progress && r->ncurve % 50 == 0)
            a->progress(src.declared > 0 ? (double)r->frames / (double)src.declared : -1, a->progress_ctx);
    }
    if (r->frames == 0) {
        rc = fail(failure, PRIME_ANALYSIS_EMPTY, err, path, "no audio frames");
        goto out;
    }
    if (src.declared > 0 && r->frames < src.declared) {
        snprintf(detail, sizeof(detail), "the data ends after %lld of %lld frames", r->frames, src.declared);
        rc = fail(failure, PRIME_ANALYSIS_CORRUPT, err, path, detail);
        goto out;
    }

    r->duration = (double)r->frames / src.rate;
    ebur128_loudness_global(loud, &r->integrated);
    /* LRA is made of 3 s short-term blocks: a shorter file has none. */
    if (r->frames < shortterm_frames || ebur128_loudness_range(loud, &r->lra))
        r->lra = NAN;
    true_peak_finish(tp, r->true_peak);
    for (int c = 0; c < src.channels; c++) {
        ebur128_sample_peak(loud, (unsigned)c, &r->sample_peak[c]);
        /* As libebur128's own true peak: never below the sample peak. */
        if (r->sample_peak[c] > r->true_peak[c])
            r->true_peak[c] = r->sample_peak[c];
        if (r->sample_peak[c] > r->sample_peak_max)
            r->sample_peak_max = r->sample_peak[c];
        if (r->true_peak[c] > r->true_peak_max)
            r->true_peak_max = r->true_peak[c];
    }
    r->rms = sqrt(sum2 / ((double)r->frames * src.channels));
    r->dr = dr_meter_finish(dr, r->dr_channel);
    spectrum_finish(spec, r);
    if (a->progress)
        a->progress(1.0, a->progress_ctx);
    *out = r;
    r = NULL;
out:
    source_close(&src);
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
