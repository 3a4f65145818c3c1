/* The analyzer's answers (workers/analyzer/answer.c) against their schema,
 * on files that used to make an answer the schema refused (issue 12 item
 * 2), which stopped the analyzer on every restart: a 12 kHz file, a float
 * file above full scale, a full-scale square; an analysis that does not fit
 * becomes analysis_failed (out_of_range) with the validation's message; a
 * message quoting a long multibyte path is cut between characters. Every
 * answer carries the analyzer version. */
#include "answer.h"
#include "prime/registry.h"
#include "prime/utf8.h"

#include <math.h>
#include <sndfile.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../support/prime_test.h"

static char dir[] = "/tmp/prime-answer-XXXXXX";
static prime_registry_t *reg;
static prime_analyzer_t *analyzer;

#define REQUEST "0b0e0c0d-0000-4000-8000-000000000001"
#define FILE_ID "0b0e0c0d-0000-4000-8000-000000000002"
#define OWNER "0b0e0c0d-0000-4000-8000-000000000003"

/* A file of `seconds` at `rate`: a 997 Hz sine of amplitude amp (float,
 * so it may be above full scale), or a square when square is set. */
static prime_analysis_t *analysis_of(const char *name, int rate, int channels, double amp, bool square, double seconds)
{
    char path[300];
    SF_INFO info = {.samplerate = rate, .channels = channels, .format = SF_FORMAT_WAV | SF_FORMAT_FLOAT};
    SNDFILE *snd;
    float *frame = calloc((size_t)channels, sizeof(float));
    prime_analysis_t *r = NULL;
    prime_error_t err;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    snd = sf_open(path, SFM_WRITE, &info);
    CU_ASSERT_PTR_NOT_NULL_FATAL(snd);
    for (long i = 0; i < lround(seconds * rate); i++) {
        double v = sin(2 * M_PI * 997 * (double)i / rate);
        for (int c = 0; c < channels; c++)
            frame[c] = (float)(amp * (square ? (v >= 0 ? 1 : -1) : v));
        sf_writef_float(snd, frame, 1);
    }
    sf_close(snd);
    free(frame);
    prime_error_clear(&err);
    CU_ASSERT_EQUAL(prime_analyze_file(analyzer, path, &r, NULL, &err), PRIME_OK);
    return r;
}

/* The event answering an analysis (or a failure), and its type. */
static prime_event_t *answer_for(const prime_registry_t *with, answer_t *a)
{
    prime_error_t err;
    prime_event_t *ev;
    a->request_id = REQUEST;
    a->file_id = FILE_ID;
    a->owner = OWNER;
    prime_error_clear(&err);
    ev = answer_event(with, a, &err);
    if (!ev)
        fprintf(stderr, "\n  no answer: %s\n", err.message);
    CU_ASSERT_PTR_NOT_NULL(ev);
    if (ev) {
        prime_error_clear(&err);
        CU_ASSERT_EQUAL(prime_event_validate(ev, &err), PRIME_OK);
        CU_ASSERT_STRING_EQUAL(prime_event_string(ev, "analyzer_version"), PRIME_ANALYZER_VERSION);
    }
    return ev;
}

static void test_analyzed_fits(void)
{
    struct {
        const char *name;
        int rate, channels;
        double amp;
        bool square;
    } cases[] = {
        {"12k.wav", 12000, 2, 0.5, false},    /* not a standard rate: measured as it is */
        {"7350.wav", 7350, 1, 0.5, false},
        {"1k.wav", 1000, 1, 0.5, false},      /* the lowest rate analysed */
        {"hot.wav", 48000, 2, 8.0, false},     /* +18 dBFS: +18.06 LUFS */
        {"square.wav", 48000, 8, 1.0, true},   /* full-scale square in 8 channels: DR 0, crest 0 */
        {"square64.wav", 8000, 64, 1.0, true}, /* the most channels analysed */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        prime_analysis_t *r = analysis_of(cases[i].name, cases[i].rate, cases[i].channels, cases[i].amp,
                                          cases[i].square, 4);
        answer_t a = {.analysis = r};
        prime_event_t *ev = r ? answer_for(reg, &a) : NULL;
        if (ev) {
            if (a.reason)
                fprintf(stderr, "\n  %s: %s: %s\n", cases[i].name, a.reason, a.message);
            CU_ASSERT_PTR_NULL(a.reason);
            CU_ASSERT_STRING_EQUAL(prime_event_type_name(prime_event_type(ev)), "audio.analyzed");
        }
        prime_event_free(ev);
        prime_analysis_free(r);
    }
}

/* With a registry whose JSON limit the analysis is over, the answer is
 * analysis_failed, out_of_range, saying which field and why. */
static void test_out_of_range(void)
{
    prime_error_t err;
    prime_registry_t *small;
    prime_limits_t limits;
    prime_analysis_t *r = analysis_of("small.wav", 48000, 2, 0.5, false, 1);
    answer_t a = {.analysis = r};
    prime_event_t *ev;

    prime_error_clear(&err);
    small = prime_registry_new(&err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(small);
    limits = *prime_registry_limits(small);
    limits.max_json_bytes = 200;
    prime_registry_set_limits(small, &limits);
    ev = answer_for(small, &a);
    CU_ASSERT_STRING_EQUAL(a.reason, "out_of_range");
    CU_ASSERT_PTR_NOT_NULL(strstr(a.message, "does not fit audio.analyzed: audio_analysis"));
    CU_ASSERT_PTR_NOT_NULL(strstr(a.message, "max_json_bytes"));
    if (ev) {
        CU_ASSERT_STRING_EQUAL(prime_event_type_name(prime_event_type(ev)), "audio.analysis_failed");
        CU_ASSERT_STRING_EQUAL(prime_event_string(ev, "reason"), "out_of_range");
    }
    prime_event_free(ev);
    prime_analysis_free(r);
    prime_registry_free(small);
}

/* A failure's message quoting a long path of three-byte characters, cut
 * by snprintf to the buffer inside a character: the answer is whole
 * characters and fits. */
static void test_multibyte_message(void)
{
    answer_t a = {.reason = "missing"};
    char text[1200] = "u1/";
    prime_event_t *ev;

    for (int i = 0; i < 300; i++)
        strcat(text, "\xe9\x9f\xb3"); /* U+97F3 */
    strcat(text, ".wav: No such file or directory");
    /* As snprintf cuts it to the buffer: 511 bytes, 3 + 169 characters and
     * one byte of the next. */
    memcpy(a.message, text, sizeof(a.message) - 1);
    a.message[sizeof(a.message) - 1] = '\0';
    CU_ASSERT_EQUAL((strlen(a.message) - 3) % 3, 1);
    ev = answer_for(reg, &a);
    CU_ASSERT_STRING_EQUAL(a.reason, "missing");
    CU_ASSERT_EQUAL((strlen(a.message) - 3) % 3, 0); /* "u1/" then whole characters */
    prime_event_free(ev);
}

static void test_utf8_cut(void)
{
    char s[32];
    snprintf(s, sizeof(s), "ab\xc3\xa9\xe9\x9f\xb3");
    CU_ASSERT_EQUAL(prime_utf8_cut(s, 8), 7); /* fits */
    CU_ASSERT_EQUAL(prime_utf8_cut(s, 6), 4); /* inside the three-byte character */
    CU_ASSERT_STRING_EQUAL(s, "ab\xc3\xa9");
    CU_ASSERT_EQUAL(prime_utf8_cut(s, 3), 2); /* inside the two-byte one */
    snprintf(s, sizeof(s), "ab\xe9\x9f"); /* left incomplete by an earlier cut */
    CU_ASSERT_EQUAL(prime_utf8_cut(s, 31), 2);
}

static int setup(void)
{
    prime_error_t err;
    prime_error_clear(&err);
    return !mkdtemp(dir) || !(reg = prime_registry_new(&err)) || !(analyzer = prime_analyzer_new(&err));
}

static int teardown(void)
{
    char cmd[300];
    prime_analyzer_free(analyzer);
    prime_registry_free(reg);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) ? 1 : 0;
}

int main(void)
{
    static const prime_test_t tests[] = {
        {"analyses of odd rates, hot floats, full-scale squares fit audio.analyzed", test_analyzed_fits},
        {"an analysis that does not fit is answered out_of_range with the reason", test_out_of_range},
        {"a message with a long multibyte path is cut between characters", test_multibyte_message},
        {"prime_utf8_cut: never inside a character", test_utf8_cut},
        {NULL, NULL},
    };
    return prime_test_run("answer", setup, teardown, tests);
}
