/* prime-analyze FILE...: the audio analysis of each file as one line of
 * JSON on stdout (docs/analysis.md); --plot FILE.svg draws the loudness
 * curve and the spectrum (of the last file). Exit status 1 when a file
 * could not be analysed (its reason on stderr), 2 for a usage error. */
#include "prime/cli.h"
#include "prime/analysis.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage(FILE *out)
{
    fputs("usage: prime-analyze [--plot FILE.svg] [--max-seconds S] [--max-samples N] [--max-cpu-seconds S] FILE...\n"
          "       prime-analyze --version   the analyzer version every analysis carries\n"
          "  prints one JSON object per file: loudness (EBU R 128), dynamics (PLR, crest factor, DR),\n"
          "  spectrum (centroid, rolloff, flatness, bands, 1/3 octaves)\n"
          "  --plot FILE.svg       draw the loudness over time and the spectrum (of the last FILE)\n",
          out);
    fputs(prime_analysis_limits_usage, out);
}

typedef struct progress {
    const char *path;
    int shown;
} progress_t;

static void show_progress(double fraction, void *ctx)
{
    progress_t *p = ctx;
    if (fraction < 0) /* the length is not known before the end */
        fprintf(stderr, "\r%s: reading", p->path);
    else
        fprintf(stderr, "\r%s: %3.0f%%", p->path, fraction * 100);
    p->shown = 1;
}

static int run(int argc, char **argv)
{
    const char *plot = NULL;
    prime_analysis_limits_t limits;
    prime_error_t err;
    prime_analyzer_t *a;
    int first = 1, failed = 0, known;

    prime_analysis_limits_init(&limits);
    prime_error_clear(&err);
    for (; first < argc && argv[first][0] == '-' && argv[first][1]; first++) {
        if (!strcmp(argv[first], "--help") || !strcmp(argv[first], "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[first], "--version")) {
            puts(PRIME_ANALYZER_VERSION); /* what every analysis and answer carries */
            return 0;
        } else if (!strcmp(argv[first], "--plot") && first + 1 < argc) {
            plot = argv[++first];
        } else if ((known = prime_analysis_limits_option(&limits, argv[first], first + 1 < argc ? argv[first + 1] : NULL,
                                                          &err))) {
            if (known < 0) {
                fprintf(stderr, "prime-analyze: %s\n", err.message);
                return 2;
            }
            first++;
        } else if (!strcmp(argv[first], "--")) {
            first++;
            break;
        } else {
            fprintf(stderr, "prime-analyze: unknown option '%s'\n", argv[first]);
            usage(stderr);
            return 2;
        }
    }
    if (first >= argc) {
        usage(stderr);
        return 2;
    }
    prime_error_clear(&err);
    if (!(a = prime_analyzer_new(&err))) {
        fprintf(stderr, "prime-analyze: %s\n", err.message);
        return 1;
    }
    prime_analyzer_set_limits(a, &limits);
    for (int i = first; i < argc; i++) {
        prime_analysis_t *r = NULL;
        prime_analysis_failure_t why;
        progress_t progress = {argv[i], 0};
        char *json;

        prime_analyzer_set_progress(a, isatty(STDERR_FILENO) ? show_progress : NULL, &progress);
        prime_error_clear(&err);
        if (prime_analyze_file(a, argv[i], &r, &why, &err)) {
            fprintf(stderr, "%sprime-analyze: %s (%s)\n", progress.shown ? "\n" : "", err.message,
                    prime_analysis_failure_name(why));
            failed = 1;
            continue;
        }
        if (progress.shown)
            fputs("\r\033[K", stderr);
        json = prime_analysis_to_json(r);
        printf("{\"file\":\"");
        for (const char *p = argv[i]; *p; p++)
            printf(*p == '"' || *p == '\\' ? "\\%c" : (unsigned char)*p < 0x20 ? "?" : "%c", *p);
        printf("\",\"analysis\":%s}\n", json ? json : "null");
        free(json);
        if (plot && i == argc - 1) {
            char *svg = prime_analysis_to_svg(r, argv[i]);
            FILE *f = fopen(plot, "w");
            if (!f || !svg || fputs(svg, f) < 0 || fclose(f)) {
                fprintf(stderr, "prime-analyze: cannot write %s\n", plot);
                failed = 1;
            }
            free(svg);
        }
        prime_analysis_free(r);
    }
    prime_analyzer_free(a);
    return failed;
}

int main(int argc, char **argv)
{
    return prime_cli_finish("prime-analyze", run(argc, argv));
}
