/* The analysis library on signals made here: EBU Tech 3341 (integrated
 * loudness) and Tech 3342 (loudness range) test cases, channel weighting,
 * the DR figure against its definition, spectral figures of a sine and of
 * white noise, edge signals (silence, DC, clipping, one sample) that must
 * give defined results, and each failure reason. */
#include "prime/analysis.h"

#include <cjson/cJSON.h>
#include <ebur128.h>
#include <math.h>
#include <sndfile.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../support/prime_test.h"

static char dir[] = "/tmp/prime-analysis-XXXXXX";
static prime_analyzer_t *analyzer;

/* A segment of a test signal: a sine (or noise, or a constant) on the
 * channels in mask, for seconds. */
typedef struct segment {
    double seconds, dbfs, hz; /* hz 0: constant at the level; hz < 0: white noise */
    unsigned mask;            /* channels carrying it; 0: all */
} segment_t;

static uint64_t noise_state = 0x9e3779b97f4a7c15ULL;
static double noise(void)
{
    noise_state = noise_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(noise_state >> 11) / 9007199254740992.0 * 2.0 - 1.0;
}

/* Writes the segments, one after the other, to dir/name; returns the path. */
static const char *make_file(const char *name, int rate, int channels, int format, const segment_t *seg, int nseg)
{
    static char path[256];
    SF_INFO info = {.samplerate = rate, .channels = channels, .format = format};
    SNDFILE *snd;
    double phase = 0;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    snd = sf_open(path, SFM_WRITE, &info);
    CU_ASSERT_PTR_NOT_NULL_FATAL(snd);
    for (int s = 0; s < nseg; s++) {
        long n = lround(seg[s].seconds * rate);
        double amp = seg[s].dbfs <= -200 ? 0 : pow(10, seg[s].dbfs / 20);
        float *frame = calloc((size_t)channels, sizeof(float));
        for (long i = 0; i < n; i++) {
            double v = seg[s].hz > 0 ? amp * sin(phase) : seg[s].hz < 0 ? amp * noise() : amp;
            v = v > 1 ? 1 : v < -1 ? -1 : v; /* clipped, as a converter would */
            phase += 2 * M_PI * seg[s].hz / rate;
            for (int c = 0; c < channels; c++)
                frame[c] = !seg[s].mask || (seg[s].mask >> c & 1) ? (float)v : 0.0f;
            sf_writef_float(snd, frame, 1);
        }
        free(frame);
    }
    sf_close(snd);
    return path;
}

static prime_analysis_t *analyze(const char *path)
{
    prime_analysis_t *r = NULL;
    prime_error_t err;
    prime_error_clear(&err);
    if (prime_analyze_file(analyzer, path, &r, NULL, &err))
        fprintf(stderr, "analysis failed: %s\n", err.message);
    CU_ASSERT_PTR_NOT_NULL(r);
    return r;
}

/* The analysis as parsed JSON, checked to hold no NaN or infinity. */
static cJSON *as_json(const prime_analysis_t *r)
{
    char *text = prime_analysis_to_json(r);
    cJSON *json;
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    CU_ASSERT_PTR_NULL(strstr(text, "nan"));
    CU_ASSERT_PTR_NULL(strstr(text, "inf"));
    json = cJSON_Parse(text);
    CU_ASSERT_PTR_NOT_NULL(json);
    free(text);
    return json;
}

static double number_at(const cJSON *json, const char *section, const char *name)
{
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(json, section);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(s ? s : json, name);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static bool is_null_at(const cJSON *json, const char *section, const char *name)
{
    return cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(json, section), name));
}

#define ASSERT_NEAR(actual, expected, tolerance)                                                                 \
    do {                                                                                                         \
        double a_ = (actual), e_ = (expected);                                                                   \
        if (!(fabs(a_ - e_) <= (tolerance)))                                                                     \
            fprintf(stderr, "\n  %s:%d: %s = %.4f, expected %.4f +- %.4f\n", __FILE__, __LINE__, #actual, a_, e_, \
                    (double)(tolerance));                                                                        \
        CU_ASSERT(fabs(a_ - e_) <= (tolerance));                                                                 \
    } while (0)

/* --- EBU Tech 3341 and 3342 ---------------------------------------------- */

static double integrated_of(const char *name, const segment_t *seg, int nseg)
{
    prime_analysis_t *r = analyze(make_file(name, 48000, 2, SF_FORMAT_WAV | SF_FORMAT_PCM_24, seg, nseg));
    double lufs = NAN;
    if (r)
        prime_analysis_integrated_lufs(r, &lufs);
    prime_analysis_free(r);
    return lufs;
}

static void test_tech3341(void)
{
    const segment_t case1[] = {{20, -23, 1000, 0}};
    const segment_t case2[] = {{20, -33, 1000, 0}};
    const segment_t case3[] = {{10, -36, 1000, 0}, {60, -23, 1000, 0}, {10, -36, 1000, 0}};
    const segment_t case4[] = {{10, -72, 1000, 0}, {10, -36, 1000, 0}, {60, -23, 1000, 0}, {10, -36, 1000, 0},
                               {10, -72, 1000, 0}};
    const segment_t case5[] = {{20.1, -26, 1000, 0}, {20.1, -20, 1000, 0}, {20.1, -26, 1000, 0}};

    ASSERT_NEAR(integrated_of("3341-1.wav", case1, 1), -23.0, 0.1);
    ASSERT_NEAR(integrated_of("3341-2.wav", case2, 1), -33.0, 0.1);
    ASSERT_NEAR(integrated_of("3341-3.wav", case3, 3), -23.0, 0.1);
    ASSERT_NEAR(integrated_of("3341-4.wav", case4, 5), -23.0, 0.1);
    ASSERT_NEAR(integrated_of("3341-5.wav", case5, 3), -23.0, 0.1);
}

static double lra_of(const char *name, const segment_t *seg, int nseg)
{
    prime_analysis_t *r = analyze(make_file(name, 48000, 2, SF_FORMAT_WAV | SF_FORMAT_FLOAT, seg, nseg));
    cJSON *json = r ? as_json(r) : NULL;
    double lra = json ? number_at(json, "loudness", "loudness_range_lu") : NAN;
    cJSON_Delete(json);
    prime_analysis_free(r);
    return lra;
}

static void test_tech3342(void)
{
    const segment_t case1[] = {{20, -20, 1000, 0}, {20, -30, 1000, 0}};
    const segment_t case2[] = {{20, -20, 1000, 0}, {20, -15, 1000, 0}};
    const segment_t case3[] = {{20, -40, 1000, 0}, {20, -20, 1000, 0}};

    ASSERT_NEAR(lra_of("3342-1.wav", case1, 2), 10.0, 1.0);
    ASSERT_NEAR(lra_of("3342-2.wav", case2, 2), 5.0, 1.0);
    ASSERT_NEAR(lra_of("3342-3.wav", case3, 2), 20.0, 1.0);
}

/* Mono counts once; in 5.1 the LFE (fourth channel) is left out and a
 * surround channel weighs +1.5 dB (BS.1770). */
static void test_channel_weighting(void)
{
    const segment_t left[] = {{10, -20, 1000, 1u << 0}}, surround[] = {{10, -20, 1000, 1u << 4}};
    const segment_t lfe[] = {{10, -20, 60, 1u << 3}}, mono[] = {{10, -20, 1000, 0}};
    prime_analysis_t *r;
    double l = NAN, s = NAN, m = NAN, x;

    r = analyze(make_file("51-left.wav", 48000, 6, SF_FORMAT_WAV | SF_FORMAT_FLOAT, left, 1));
    prime_analysis_integrated_lufs(r, &l);
    prime_analysis_free(r);
    r = analyze(make_file("51-surround.wav", 48000, 6, SF_FORMAT_WAV | SF_FORMAT_FLOAT, surround, 1));
    prime_analysis_integrated_lufs(r, &s);
    prime_analysis_free(r);
    ASSERT_NEAR(s - l, 1.5, 0.05);
    r = analyze(make_file("51-lfe.wav", 48000, 6, SF_FORMAT_WAV | SF_FORMAT_FLOAT, lfe, 1));
    CU_ASSERT_FALSE(prime_analysis_integrated_lufs(r, &x)); /* nothing counted: no loudness */
    prime_analysis_free(r);
    r = analyze(make_file("mono.wav", 48000, 1, SF_FORMAT_WAV | SF_FORMAT_FLOAT, mono, 1));
    prime_analysis_integrated_lufs(r, &m);
    prime_analysis_free(r);
    ASSERT_NEAR(m, l, 0.05); /* one channel at the same level, counted once */
}

/* The maximum short-term loudness skips libebur128's 3 s query where a
 * bound says it cannot be a new maximum: it must equal querying every
 * 100 ms, done here directly with libebur128. */
static void test_max_shortterm_exact(void)
{
    const segment_t seg[] = {{6, -30, 1000, 0}, {4, -20, -1, 0}, {7, -26, 300, 0}, {3, -18, -1, 0}, {8, -40, 50, 0}};
    const char *path = make_file("shortterm.wav", 48000, 2, SF_FORMAT_WAV | SF_FORMAT_FLOAT, seg, 5);
    SF_INFO info = {0};
    SNDFILE *snd = sf_open(path, SFM_READ, &info);
    ebur128_state *st = ebur128_init(2, 48000, EBUR128_MODE_S);
    float buf[4800 * 2];
    double max = -HUGE_VAL, s;
    sf_count_t got;
    prime_analysis_t *r;
    cJSON *json;

    CU_ASSERT_PTR_NOT_NULL_FATAL(snd);
    while ((got = sf_readf_float(snd, buf, 4800)) > 0) {
        ebur128_add_frames_float(st, buf, (size_t)got);
        ebur128_loudness_shortterm(st, &s);
        if (s > max)
            max = s;
    }
    sf_close(snd);
    ebur128_destroy(&st);
    r = analyze(path);
    json = as_json(r);
    ASSERT_NEAR(number_at(json, "loudness", "max_short_term_lufs"), max, 0.005);
    cJSON_Delete(json);
    prime_analysis_free(r);
}

/* The true peak oversamples only blocks that could raise it: per channel
 * it must equal libebur128's own true peak over every sample. Signals with
 * intersample peaks (a quarter-rate sine at 45 degrees peaks 3 dB over its
 * samples), quiet stretches between, and a new maximum late; at 48 kHz
 * (4x oversampling), 88.2 kHz (2x) and 192 kHz (none). */
static void test_true_peak_exact(void)
{
    const int rates[] = {48000, 88200, 192000};
    for (int k = 0; k < 3; k++) {
        int rate = rates[k];
        /* A sine sets the peak at -6 dB; noise and silence; then a
         * quarter-rate sine at 45 degrees (the one-sample segment turns the
         * phase by 45 degrees) whose samples stay at -7 dB while its true
         * peak is -4 dB: a block that must be oversampled though its
         * samples are below the running peak. */
        const segment_t seg[] = {{2, -6, 997, 0},         {3, -20, -1, 0}, {1.0 / rate, -300, rate / 8.0, 0},
                                 {1, -4, rate / 4.0, 1u << 1}, {2, -40, -1, 0}, {0.2, -12, 997, 0}};
        char name[32];
        const char *path;
        SF_INFO info = {0};
        SNDFILE *snd;
        ebur128_state *st = ebur128_init(2, (unsigned long)rate, EBUR128_MODE_TRUE_PEAK);
        float buf[4096 * 2];
        sf_count_t got;
        prime_analysis_t *r;
        cJSON *json, *channels;

        snprintf(name, sizeof(name), "tp-%d.wav", rate);
        path = make_file(name, rate, 2, SF_FORMAT_WAV | SF_FORMAT_FLOAT, seg, 6);
        snd = sf_open(path, SFM_READ, &info);
        CU_ASSERT_PTR_NOT_NULL_FATAL(snd);
        while ((got = sf_readf_float(snd, buf, 4096)) > 0)
            ebur128_add_frames_float(st, buf, (size_t)got);
        sf_close(snd);
        r = analyze(path);
        json = as_json(r);
        channels = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(json, "loudness"), "channels");
        for (int c = 0; c < 2; c++) {
            double full;
            ebur128_true_peak(st, (unsigned)c, &full);
            ASSERT_NEAR(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(channels, c), "true_peak_dbtp")->valuedouble,
                        20 * log10(full), 0.005);
        }
        cJSON_Delete(json);
        prime_analysis_free(r);
        ebur128_destroy(&st);
    }
}

/* --- dynamics -------------------------------------------------------------- */

/* Ten 3-second blocks of sines at known levels: the loudest 20 % are the
 * two loudest blocks. With a click of -3 dBFS in two quiet blocks, the
 * second-highest peak is a click's: DR is that peak over the top blocks'
 * RMS. Without them, the second peak (the second-loudest block's, -14
 * dBFS) is below that RMS: the formula gives -1.11 dB, and DR reads 0
 * (never negative). */
static void test_dr_definition(void)
{
    const double levels[10] = {-30, -28, -26, -24, -22, -20, -18, -16, -14, -12};
    segment_t seg[14];
    int n = 0;
    prime_analysis_t *r;
    double dr = NAN, rms_top, second_peak;

    for (int i = 0; i < 10; i++)
        seg[i] = (segment_t){3.0, levels[i], 997, 0};
    r = analyze(make_file("dr.wav", 44100, 2, SF_FORMAT_WAV | SF_FORMAT_FLOAT, seg, 10));
    CU_ASSERT_TRUE(prime_analysis_dr(r, &dr));
    CU_ASSERT_EQUAL(dr, 0.0);
    prime_analysis_free(r);

    for (int i = 0; i < 10; i++) {
        if (i == 2 || i == 4) { /* a one-sample click in the middle of the block */
            seg[n++] = (segment_t){1.5, levels[i], 997, 0};
            seg[n++] = (segment_t){1.0 / 44100, -3, 0, 0};
            seg[n++] = (segment_t){1.5 - 1.0 / 44100, levels[i], 997, 0};
        } else {
            seg[n++] = (segment_t){3.0, levels[i], 997, 0};
        }
    }
    r = analyze(make_file("dr-clicks.wav", 44100, 2, SF_FORMAT_WAV | SF_FORMAT_FLOAT, seg, n));
    CU_ASSERT_TRUE(prime_analysis_dr(r, &dr));
    /* A sine's RMS with the meter's +3 dB is its peak. */
    rms_top = sqrt((pow(10, -12 / 10.0) + pow(10, -14 / 10.0)) / 2);
    second_peak = pow(10, -3 / 20.0);
    ASSERT_NEAR(dr, 20 * log10(second_peak / rms_top), 0.02);
    prime_analysis_free(r);
}

/* --- spectrum --------------------------------------------------------------- */

static void test_spectrum_of_sine_and_noise(void)
{
    const segment_t sine[] = {{10, -6, 1000, 0}}, white[] = {{10, -12, -1, 0}};
    prime_analysis_t *r = analyze(make_file("sine.wav", 48000, 2, SF_FORMAT_WAV | SF_FORMAT_FLOAT, sine, 1));
    cJSON *json = as_json(r), *third;

    ASSERT_NEAR(number_at(json, "spectrum", "centroid_hz"), 1000, 5);
    ASSERT_NEAR(number_at(json, "spectrum", "rolloff_85_hz"), 1000, 6);
    CU_ASSERT(number_at(json, "spectrum", "flatness") < 0.001);
    third = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(json, "spectrum"), "third_octave_db");
    ASSERT_NEAR(cJSON_GetObjectItemCaseSensitive(third, "1000")->valuedouble, -6.0, 0.1);
    ASSERT_NEAR(number_at(cJSON_GetObjectItemCaseSensitive(json, "spectrum"), "band_energy", "mid"), 1.0, 0.001);
    cJSON_Delete(json);
    prime_analysis_free(r);

    r = analyze(make_file("noise.wav", 48000, 1, SF_FORMAT_WAV | SF_FORMAT_FLOAT, white, 1));
    json = as_json(r);
    /* Flat from 20 Hz to 20 kHz: the centroid halfway, 85 % of the energy
     * below 85 % of the way, flatness near 1. */
    ASSERT_NEAR(number_at(json, "spectrum", "centroid_hz"), 10010, 150);
    ASSERT_NEAR(number_at(json, "spectrum", "rolloff_85_hz"), 20 + 0.85 * 19980, 250);
    CU_ASSERT(number_at(json, "spectrum", "flatness") > 0.9);
    cJSON_Delete(json);
    prime_analysis_free(r);
}

/* --- edge signals ------------------------------------------------------------- */

static void test_edge_signals(void)
{
    const segment_t silence[] = {{5, -300, 0, 0}}, dc[] = {{5, -6.0206, 0, 0}}, clipped[] = {{5, 6, 440, 0}},
                    one[] = {{1.0 / 48000, -6, 0, 0}};
    prime_analysis_t *r;
    cJSON *json;

    r = analyze(make_file("silence.wav", 48000, 2, SF_FORMAT_WAV | SF_FORMAT_PCM_16, silence, 1));
    json = as_json(r);
    CU_ASSERT_TRUE(is_null_at(json, "loudness", "integrated_lufs"));
    CU_ASSERT_TRUE(is_null_at(json, "loudness", "sample_peak_dbfs"));
    CU_ASSERT_TRUE(is_null_at(json, "dynamics", "dr"));
    CU_ASSERT_TRUE(is_null_at(json, "spectrum", "centroid_hz"));
    cJSON_Delete(json);
    prime_analysis_free(r);

    /* DC at half scale: the K-weighting's high-pass leaves only the onset of
     * the step, in the first 400 ms block (ffmpeg's ebur128 gives the same
     * -32.3 LUFS for this file); the peak is there. */
    r = analyze(make_file("dc.wav", 48000, 1, SF_FORMAT_WAV | SF_FORMAT_FLOAT, dc, 1));
    json = as_json(r);
    ASSERT_NEAR(number_at(json, "loudness", "integrated_lufs"), -32.3, 0.1);
    ASSERT_NEAR(number_at(json, "loudness", "sample_peak_dbfs"), -6.02, 0.01);
    cJSON_Delete(json);
    prime_analysis_free(r);

    /* +6 dBFS into 16-bit PCM: clipped at full scale; the true peak of
     * a clipped wave may exceed it, and must be a number. */
    r = analyze(make_file("clipped.wav", 48000, 2, SF_FORMAT_WAV | SF_FORMAT_PCM_16, clipped, 1));
    json = as_json(r);
    ASSERT_NEAR(number_at(json, "loudness", "sample_peak_dbfs"), 0.0, 0.01);
    CU_ASSERT(number_at(json, "loudness", "true_peak_dbtp") >= -0.01);
    cJSON_Delete(json);
    prime_analysis_free(r);

    r = analyze(make_file("one.wav", 48000, 1, SF_FORMAT_WAV | SF_FORMAT_FLOAT, one, 1));
    json = as_json(r);
    CU_ASSERT_EQUAL(number_at(json, NULL, "frames"), 1);
    CU_ASSERT_TRUE(is_null_at(json, "loudness", "integrated_lufs"));
    cJSON_Delete(json);
    prime_analysis_free(r);
}

/* --- failures ------------------------------------------------------------------ */

static prime_analysis_failure_t failure_of(const char *path, char *message, size_t size)
{
    prime_analysis_t *r = NULL;
    prime_analysis_failure_t why = PRIME_ANALYSIS_OK;
    prime_error_t err;
    prime_error_clear(&err);
    CU_ASSERT_NOT_EQUAL(prime_analyze_file(analyzer, path, &r, &why, &err), PRIME_OK);
    CU_ASSERT_PTR_NULL(r);
    snprintf(message, size, "%s", err.message);
    return why;
}

static void write_bytes(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fwrite(data, 1, len, f);
    fclose(f);
}

static void test_failures(void)
{
    const segment_t tone[] = {{2, -20, 440, 0}};
    char path[300], message[512], wav[300], *bytes;
    long size;
    FILE *f;

    snprintf(path, sizeof(path), "%s/none.wav", dir);
    CU_ASSERT_EQUAL(failure_of(path, message, sizeof(message)), PRIME_ANALYSIS_MISSING);
    CU_ASSERT_PTR_NOT_NULL(strstr(message, "none.wav"));

    CU_ASSERT_EQUAL(failure_of(dir, message, sizeof(message)), PRIME_ANALYSIS_UNREADABLE);

    snprintf(path, sizeof(path), "%s/garbage.wav", dir);
    write_bytes(path, "this is not audio at all, just text that goes on and on", 56);
    CU_ASSERT_EQUAL(failure_of(path, message, sizeof(message)), PRIME_ANALYSIS_UNSUPPORTED);

    /* A WAV cut short: the header promises more frames than there are. */
    snprintf(wav, sizeof(wav), "%s", make_file("whole.wav", 48000, 2, SF_FORMAT_WAV | SF_FORMAT_PCM_16, tone, 1));
    f = fopen(wav, "rb");
    fseek(f, 0, SEEK_END);
    size = ftell(f);
    rewind(f);
    bytes = malloc((size_t)size);
    CU_ASSERT_EQUAL(fread(bytes, 1, (size_t)size, f), (size_t)size);
    fclose(f);
    snprintf(path, sizeof(path), "%s/truncated.wav", dir);
    write_bytes(path, bytes, (size_t)size / 2);
    CU_ASSERT_EQUAL(failure_of(path, message, sizeof(message)), PRIME_ANALYSIS_CORRUPT);
    CU_ASSERT_PTR_NOT_NULL(strstr(message, "truncated"));
    free(bytes);

    make_file("empty.wav", 48000, 2, SF_FORMAT_WAV | SF_FORMAT_PCM_16, tone, 0);
    snprintf(path, sizeof(path), "%s/empty.wav", dir);
    CU_ASSERT_EQUAL(failure_of(path, message, sizeof(message)), PRIME_ANALYSIS_EMPTY);

    prime_analyzer_set_max_seconds(analyzer, 1.0);
    CU_ASSERT_EQUAL(failure_of(wav, message, sizeof(message)), PRIME_ANALYSIS_TOO_LONG);
    prime_analyzer_set_max_seconds(analyzer, 4 * 3600);
}

/* The FLAC at path with its header's total samples set to 0 ("unknown",
 * as an encoder writing to a pipe leaves it): STREAMINFO starts at byte 8,
 * and its 36-bit sample count at bit 4 of byte 13 of it. */
static void unknown_flac_length(const char *path)
{
    FILE *f = fopen(path, "r+b");
    unsigned char b[5];
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL(fseek(f, 8 + 13, SEEK_SET), 0);
    CU_ASSERT_EQUAL(fread(b, 1, 5, f), 5);
    b[0] &= 0xF0;
    memset(b + 1, 0, 4);
    CU_ASSERT_EQUAL(fseek(f, 8 + 13, SEEK_SET), 0);
    CU_ASSERT_EQUAL(fwrite(b, 1, 5, f), 5);
    fclose(f);
}

/* A file's budget: decoded samples, refused before reading when the header
 * says the length and while reading when it does not; CPU time; and a FIFO
 * refused at once (opening it used to wait for a writer). */
static void test_budget(void)
{
    const segment_t tone[] = {{2, -20, 440, 0}};
    char path[300], message[512], flac[300];
    prime_analysis_t *r;

    snprintf(path, sizeof(path), "%s", make_file("budget.wav", 48000, 2, SF_FORMAT_WAV | SF_FORMAT_PCM_16, tone, 1));
    prime_analyzer_set_max_samples(analyzer, 2 * 48000 * 2 - 1);
    CU_ASSERT_EQUAL(failure_of(path, message, sizeof(message)), PRIME_ANALYSIS_OVER_BUDGET);
    CU_ASSERT_PTR_NOT_NULL(strstr(message, "budget of 191999 decoded samples"));
    prime_analyzer_set_max_samples(analyzer, 2 * 48000 * 2);
    r = analyze(path);
    prime_analysis_free(r);

    /* Unknown length: read until the budget is spent. */
    snprintf(flac, sizeof(flac), "%s", make_file("budget.flac", 48000, 2, SF_FORMAT_FLAC | SF_FORMAT_PCM_16, tone, 1));
    unknown_flac_length(flac);
    r = analyze(flac); /* within the budget: all of it */
    CU_ASSERT_EQUAL(r ? prime_analysis_duration(r) : 0, 2.0);
    prime_analysis_free(r);
    prime_analyzer_set_max_samples(analyzer, 48000 * 2);
    CU_ASSERT_EQUAL(failure_of(flac, message, sizeof(message)), PRIME_ANALYSIS_OVER_BUDGET);
    prime_analyzer_set_max_samples(analyzer, PRIME_ANALYSIS_MAX_SAMPLES);

    prime_analyzer_set_max_cpu_seconds(analyzer, 1e-9);
    CU_ASSERT_EQUAL(failure_of(path, message, sizeof(message)), PRIME_ANALYSIS_OVER_BUDGET);
    CU_ASSERT_PTR_NOT_NULL(strstr(message, "CPU seconds"));
    prime_analyzer_set_max_cpu_seconds(analyzer, PRIME_ANALYSIS_MAX_CPU_SECONDS);

    snprintf(path, sizeof(path), "%s/fifo.wav", dir);
    CU_ASSERT_EQUAL_FATAL(mkfifo(path, 0600), 0);
    alarm(20); /* waiting for a writer would end the test here */
    CU_ASSERT_EQUAL(failure_of(path, message, sizeof(message)), PRIME_ANALYSIS_UNREADABLE);
    alarm(0);
    CU_ASSERT_PTR_NOT_NULL(strstr(message, "not a regular file"));
}

/* Other formats libsndfile writes: FLAC and Ogg/Vorbis, another rate. */
static void test_formats(void)
{
    const segment_t tone[] = {{20, -23, 1000, 0}};
    prime_analysis_t *r;
    double lufs = NAN;
    cJSON *json;

    r = analyze(make_file("tone.flac", 44100, 2, SF_FORMAT_FLAC | SF_FORMAT_PCM_16, tone, 1));
    json = as_json(r);
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItemCaseSensitive(json, "format")->valuestring, "flac");
    CU_ASSERT_EQUAL(number_at(json, NULL, "bit_depth"), 16);
    prime_analysis_integrated_lufs(r, &lufs);
    ASSERT_NEAR(lufs, -23.0, 0.1);
    cJSON_Delete(json);
    prime_analysis_free(r);

    r = analyze(make_file("tone.ogg", 44100, 2, SF_FORMAT_OGG | SF_FORMAT_VORBIS, tone, 1));
    json = as_json(r);
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItemCaseSensitive(json, "format")->valuestring, "ogg");
    CU_ASSERT_TRUE(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(json, "bit_depth")));
    prime_analysis_integrated_lufs(r, &lufs);
    ASSERT_NEAR(lufs, -23.0, 0.3); /* lossy */
    cJSON_Delete(json);
    prime_analysis_free(r);
}

static int setup(void)
{
    prime_error_t err;
    prime_error_clear(&err);
    if (!mkdtemp(dir) || !(analyzer = prime_analyzer_new(&err)))
        return 1;
    return 0;
}

static int teardown(void)
{
    char cmd[300];
    prime_analyzer_free(analyzer);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) ? 1 : 0;
}

int main(void)
{
    static const prime_test_t tests[] = {
        {"EBU Tech 3341 cases 1-5: integrated loudness -23.0 (and -33.0) +- 0.1 LU", test_tech3341},
        {"EBU Tech 3342 cases 1-3: loudness range 10, 5, 20 +- 1 LU", test_tech3342},
        {"channel weighting: mono once, 5.1 LFE left out, surrounds +1.5 dB", test_channel_weighting},
        {"maximum short-term loudness equals querying every 100 ms", test_max_shortterm_exact},
        {"true peak, oversampling only where it can rise, equals libebur128's over every sample", test_true_peak_exact},
        {"DR: second-highest peak against the loudest 20 % of 3 s blocks", test_dr_definition},
        {"spectrum: a sine's centroid, rolloff, level; white noise flat", test_spectrum_of_sine_and_noise},
        {"silence, DC, clipping and one sample give defined results", test_edge_signals},
        {"missing, unreadable, unsupported, corrupt, empty and too long files", test_failures},
        {"FLAC and Ogg/Vorbis at 44.1 kHz", test_formats},
        {"budget: decoded samples (known and unknown length), CPU time; a FIFO refused at once", test_budget},
        {NULL, NULL},
    };
    return prime_test_run("analysis", setup, teardown, tests);
}
