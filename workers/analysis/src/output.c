/* The analysis as JSON (audio_files.audio_analysis) and as an SVG picture.
 * Figures that the signal does not have (the loudness of silence, the DR of
 * a silent channel) are null: JSON has no NaN or infinity. */
#include "analysis_int.h"
#include "prime/buf.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static const char *const band_names[BAND_COUNT] = {"sub", "low", "low_mid", "mid", "high_mid", "high"};
/* ISO 266 nominal names of the 1/3-octave centres. */
static const char *const third_octave_names[THIRD_OCTAVES] = {
    "20", "25", "31.5", "40", "50", "63", "80", "100", "125", "160", "200", "250", "315", "400", "500", "630",
    "800", "1000", "1250", "1600", "2000", "2500", "3150", "4000", "5000", "6300", "8000", "10000", "12500",
    "16000", "20000",
};

/* A number rounded to `decimals`, or null when it does not exist. */
static void add_number(cJSON *obj, const char *name, double v, int decimals)
{
    double scale = pow(10, decimals);
    if (isfinite(v))
        cJSON_AddNumberToObject(obj, name, round(v * scale) / scale);
    else
        cJSON_AddNullToObject(obj, name);
}

static double db(double linear)
{
    return linear > 0 ? 20.0 * log10(linear) : -HUGE_VAL;
}

/* The same, and when the figure does not exist, why: in the object's
 * "null_reasons", under the figure's name. */
static void add_figure(cJSON *obj, const char *name, double v, int decimals, const char *why)
{
    cJSON *reasons;
    add_number(obj, name, v, decimals);
    if (isfinite(v) || !why)
        return;
    if (!(reasons = cJSON_GetObjectItemCaseSensitive(obj, "null_reasons")))
        reasons = cJSON_AddObjectToObject(obj, "null_reasons");
    cJSON_AddStringToObject(reasons, name, why);
}

/* Why a loudness figure over a window of `seconds` is missing: the file is
 * shorter than the window (libebur128 would measure it padded with
 * silence; ffmpeg gives none), or the signal is silent there. */
static const char *window_reason(const prime_analysis_t *r, double seconds, const char *shorter, const char *silent)
{
    return (double)r->frames < ceil(seconds * r->sample_rate) ? shorter : silent;
}

char *prime_analysis_to_json(const prime_analysis_t *r)
{
    cJSON *root = cJSON_CreateObject(), *loud, *dyn, *spec, *list, *obj;
    char *text;

    cJSON_AddStringToObject(root, "analyzer_version", PRIME_ANALYZER_VERSION);
    cJSON_AddStringToObject(root, "format", r->format);
    cJSON_AddNumberToObject(root, "sample_rate", r->sample_rate);
    cJSON_AddNumberToObject(root, "channels", r->channels);
    if (r->bit_depth)
        cJSON_AddNumberToObject(root, "bit_depth", r->bit_depth);
    else
        cJSON_AddNullToObject(root, "bit_depth");
    cJSON_AddNumberToObject(root, "frames", (double)r->frames);
    add_number(root, "duration_seconds", r->duration, 3);

    loud = cJSON_AddObjectToObject(root, "loudness");
    add_figure(loud, "integrated_lufs", r->integrated, 2,
               window_reason(r, 0.4, "shorter than one 400 ms gating block",
                             "silent: no 400 ms block above the absolute gate of -70 LUFS"));
    add_figure(loud, "loudness_range_lu", r->lra, 2,
               window_reason(r, 3, "shorter than the 3 s short-term window", "no short-term block above the gates"));
    add_figure(loud, "max_momentary_lufs", r->max_momentary, 2,
               window_reason(r, 0.4, "shorter than the 400 ms momentary window", "silent"));
    add_figure(loud, "max_short_term_lufs", r->max_shortterm, 2,
               window_reason(r, 3, "shorter than the 3 s short-term window", "silent"));
    add_figure(loud, "sample_peak_dbfs", db(r->sample_peak_max), 2, "silent");
    add_figure(loud, "true_peak_dbtp", db(r->true_peak_max), 2, "silent");
    list = cJSON_AddArrayToObject(loud, "channels");
    for (int c = 0; c < r->channels; c++) {
        obj = cJSON_CreateObject();
        add_number(obj, "sample_peak_dbfs", db(r->sample_peak[c]), 2);
        add_number(obj, "true_peak_dbtp", db(r->true_peak[c]), 2);
        cJSON_AddItemToArray(list, obj);
    }

    dyn = cJSON_AddObjectToObject(root, "dynamics");
    add_figure(dyn, "plr_lu", db(r->true_peak_max) - r->integrated, 2, "no integrated loudness");
    add_figure(dyn, "crest_factor_db", db(r->sample_peak_max) - db(r->rms), 2, "silent");
    add_figure(dyn, "rms_dbfs", db(r->rms), 2, "silent");
    add_figure(dyn, "dr", r->dr, 2, "silent");
    add_figure(dyn, "dr_rounded", round(r->dr), 0, "silent");
    list = cJSON_AddArrayToObject(dyn, "dr_channels");
    for (int c = 0; c < r->channels; c++)
        cJSON_AddItemToArray(list, isfinite(r->dr_channel[c]) ? cJSON_CreateNumber(round(r->dr_channel[c] * 100) / 100)
                                                             : cJSON_CreateNull());

    spec = cJSON_AddObjectToObject(root, "spectrum");
    if (!r->spectrum_defined)
        cJSON_AddStringToObject(cJSON_AddObjectToObject(spec, "null_reasons"), "spectrum", "silent");
    add_number(spec, "centroid_hz", r->spectrum_defined ? r->centroid : NAN, 1);
    add_number(spec, "rolloff_85_hz", r->spectrum_defined ? r->rolloff : NAN, 1);
    add_number(spec, "flatness", r->spectrum_defined ? r->flatness : NAN, 4);
    obj = cJSON_AddObjectToObject(spec, "band_energy");
    for (int b = 0; b < BAND_COUNT; b++)
        add_number(obj, band_names[b], r->spectrum_defined ? r->bands[b] : NAN, 4);
    obj = cJSON_AddObjectToObject(spec, "third_octave_db");
    for (int b = 0; b < THIRD_OCTAVES; b++)
        add_number(obj, third_octave_names[b], r->third_octave[b], 2);

    text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return text;
}

/* --- the picture ------------------------------------------------------------ */

#define W 900
#define H 620
#define LEFT 60
#define PLOT_W (W - LEFT - 20)
#define CURVE_TOP 50
#define CURVE_H 250
#define SPEC_TOP 370
#define SPEC_H 200

/* y of a loudness in the curve panel, -60 .. 0 LUFS. */
static double curve_y(double lufs)
{
    if (!isfinite(lufs) || lufs < -60)
        lufs = -60;
    if (lufs > 0)
        lufs = 0;
    return CURVE_TOP + CURVE_H * (-lufs / 60.0);
}

static void polyline(prime_buf_t *b, const float *v, size_t n, const char *colour)
{
    prime_buf_printf(b, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.2\" points=\"", colour);
    for (size_t i = 0; i < n; i++)
        if (!isnan(v[i])) /* not measured there */
            prime_buf_printf(b, "%.1f,%.1f ", LEFT + PLOT_W * (n > 1 ? (double)i / (double)(n - 1) : 0.0),
                             curve_y(v[i]));
    prime_buf_puts(b, "\"/>\n");
}

static void escaped(prime_buf_t *b, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '<': prime_buf_puts(b, "&lt;"); break;
        case '>': prime_buf_puts(b, "&gt;"); break;
        case '&': prime_buf_puts(b, "&amp;"); break;
        case '"': prime_buf_puts(b, "&quot;"); break;
        default: prime_buf_putc(b, *s);
        }
    }
}

char *prime_analysis_to_svg(const prime_analysis_t *r, const char *title)
{
    prime_buf_t b;
    double bar = (double)PLOT_W / THIRD_OCTAVES;

    prime_buf_init(&b, 0);
    prime_buf_printf(&b, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
                         "font-family=\"sans-serif\" font-size=\"11\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
                     W, H);
    prime_buf_puts(&b, "<text x=\"60\" y=\"22\" font-size=\"14\">");
    escaped(&b, title);
    prime_buf_printf(&b, " (%.1f s, integrated ", r->duration);
    if (isfinite(r->integrated))
        prime_buf_printf(&b, "%.1f LUFS", r->integrated);
    else
        prime_buf_puts(&b, "none");
    prime_buf_puts(&b, ")</text>\n");

    /* Loudness over time: momentary and short-term, every 100 ms. */
    prime_buf_printf(&b, "<text x=\"%d\" y=\"%d\">Loudness (LUFS): momentary (grey), short-term (blue)</text>\n", LEFT,
                     CURVE_TOP - 8);
    for (int l = 0; l >= -60; l -= 10)
        prime_buf_printf(&b, "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>"
                             "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%d</text>\n",
                         LEFT, LEFT + PLOT_W, curve_y(l), curve_y(l), LEFT - 6, curve_y(l) + 4, l);
    if (isfinite(r->integrated))
        prime_buf_printf(&b, "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#c00\" stroke-dasharray=\"4 3\"/>\n",
                         LEFT, LEFT + PLOT_W, curve_y(r->integrated), curve_y(r->integrated));
    polyline(&b, r->momentary, r->ncurve, "#999");
    polyline(&b, r->shortterm, r->ncurve, "#1f5fbf");
    prime_buf_printf(&b, "<text x=\"%d\" y=\"%d\">0 s</text><text x=\"%d\" y=\"%d\" text-anchor=\"end\">%.1f s</text>\n",
                     LEFT, CURVE_TOP + CURVE_H + 14, LEFT + PLOT_W, CURVE_TOP + CURVE_H + 14, r->duration);

    /* The 1/3-octave spectrum, -100 .. 0 dB re a full-scale sine. */
    prime_buf_printf(&b, "<text x=\"%d\" y=\"%d\">Long-term spectrum, 1/3 octaves (dB re full-scale sine)</text>\n",
                     LEFT, SPEC_TOP - 8);
    for (int l = 0; l >= -100; l -= 20) {
        double y = SPEC_TOP + SPEC_H * (-l / 100.0);
        prime_buf_printf(&b, "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>"
                             "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%d</text>\n",
                         LEFT, LEFT + PLOT_W, y, y, LEFT - 6, y + 4, l);
    }
    for (int i = 0; i < THIRD_OCTAVES; i++) {
        double level = r->third_octave[i], h;
        if (!isfinite(level))
            continue;
        level = level < -100 ? -100 : level > 0 ? 0 : level;
        h = SPEC_H * (1 + level / 100.0);
        prime_buf_printf(&b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#1f5fbf\"/>\n",
                         LEFT + i * bar + 1, SPEC_TOP + SPEC_H - h, bar - 2, h);
        if (i % 3 == 0)
            prime_buf_printf(&b, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%s</text>\n", LEFT + (i + 0.5) * bar,
                             SPEC_TOP + SPEC_H + 14, third_octave_names[i]);
    }
    prime_buf_puts(&b, "</svg>\n");
    return prime_buf_steal(&b, NULL);
}
