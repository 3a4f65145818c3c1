/* Fuzz target: the analyzer's file handling. The input is written to a
 * file and analysed; it must be analysed with finite JSON or refused with a
 * reason and a message, never crash or leak. Seeds: short WAV, AIFF, FLAC,
 * Ogg/Vorbis and MP3 files made with libsndfile. */
#include "fuzz.h"
#include "prime/analysis.h"

#include <math.h>
#include <sndfile.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char path[64];
static prime_analyzer_t *analyzer;

static void setup(void)
{
    if (analyzer)
        return;
    snprintf(path, sizeof(path), "/tmp/prime-fuzz-analysis-%d", (int)getpid());
    analyzer = prime_analyzer_new(NULL);
    /* Headers may claim anything; a long claim is refused before reading. */
    prime_analyzer_set_max_seconds(analyzer, 600);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    prime_analysis_t *r = NULL;
    prime_analysis_failure_t why;
    prime_error_t err;
    FILE *f;

    setup();
    if (!(f = fopen(path, "wb")))
        abort();
    if (size && fwrite(data, 1, size, f) != size)
        abort();
    fclose(f);
    prime_error_clear(&err);
    if (prime_analyze_file(analyzer, path, &r, &why, &err) == PRIME_OK) {
        char *json = prime_analysis_to_json(r), *svg = prime_analysis_to_svg(r, "fuzz");
        if (!json || !svg || strstr(json, "nan") || strstr(json, "inf")) {
            fprintf(stderr, "analysis output not finite JSON: %s\n", json ? json : "(none)");
            abort();
        }
        free(json);
        free(svg);
        prime_analysis_free(r);
    } else if (why == PRIME_ANALYSIS_OK || !err.message[0] || r) {
        fprintf(stderr, "a failure without its reason: %d '%s'\n", (int)why, err.message);
        abort(); /* a failure must say which and why */
    }
    unlink(path);
    return 0;
}

static void seed_file(int format, void (*add)(const uint8_t *, size_t))
{
    SF_INFO info = {.samplerate = 8000, .channels = 2, .format = format};
    SNDFILE *snd;
    float frame[2];
    FILE *f;
    long size;
    uint8_t *bytes;

    setup();
    if (!(snd = sf_open(path, SFM_WRITE, &info)))
        return;
    for (int i = 0; i < 800; i++) {
        frame[0] = frame[1] = (float)(0.5 * sin(i * 0.3));
        sf_writef_float(snd, frame, 1);
    }
    sf_close(snd);
    if (!(f = fopen(path, "rb")))
        return;
    fseek(f, 0, SEEK_END);
    size = ftell(f);
    rewind(f);
    bytes = malloc((size_t)size);
    if (bytes && fread(bytes, 1, (size_t)size, f) == (size_t)size)
        add(bytes, (size_t)size);
    free(bytes);
    fclose(f);
    unlink(path);
}

void fuzz_seeds(void (*add)(const uint8_t *data, size_t size))
{
    seed_file(SF_FORMAT_WAV | SF_FORMAT_PCM_16, add);
    seed_file(SF_FORMAT_AIFF | SF_FORMAT_PCM_24, add);
    seed_file(SF_FORMAT_FLAC | SF_FORMAT_PCM_16, add);
    seed_file(SF_FORMAT_OGG | SF_FORMAT_VORBIS, add);
    seed_file(SF_FORMAT_WAV | SF_FORMAT_FLOAT, add);
    seed_file(SF_FORMAT_MPEG | SF_FORMAT_MPEG_LAYER_III, add); /* decoded by libmpg123 directly */
}
