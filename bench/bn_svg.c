/* The picture of a run (`vtn-bench svg RUN.json OUT.svg`): its timeline as
 * three panels sharing the time axis - throughput, latency p50/p99, errors
 * per second - with the phases shaded. Plain SVG 1.1 text: no scripts, no
 * external fonts or references, so it opens anywhere. */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bn_plan.h"

#define SVG_W 960
#define PANEL_H 170
#define PANEL_GAP 46
#define LEFT 78
#define RIGHT 24
#define TOP 78
#define BOTTOM 44
#define MAX_SAMPLES 1000000 /* a day at one sample a second, with room */

typedef struct sample {
    double t, rate, errors, p50, p99; /* p50/p99 NAN when the second had none */
    const char *phase;
} sample;

/* One panel: its vertical placement and value range. */
typedef struct panel {
    const char *id, *title, *unit;
    double y0, ymax; /* top edge in pixels; the value at its top */
} panel;

typedef struct axis {
    double t0, t1;
} axis;

static double px_x(const axis *a, double t)
{
    double span = a->t1 > a->t0 ? a->t1 - a->t0 : 1;
    return LEFT + (t - a->t0) / span * (SVG_W - LEFT - RIGHT);
}

static double px_y(const panel *p, double v)
{
    return p->y0 + PANEL_H - (p->ymax > 0 ? v / p->ymax : 0) * PANEL_H;
}

/* A tick step of 1, 2 or 5 x 10^k giving about n ticks over span. */
static double nice_step(double span, int n)
{
    if (!(span > 0))
        return 1;
    double raw = span / n, mag = pow(10, floor(log10(raw))), f = raw / mag;
    return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
}

/* The panel's top value: the series' maximum rounded up to a tick. */
static double nice_max(double v)
{
    if (!(v > 0))
        return 1;
    double step = nice_step(v, 4);
    return ceil(v / step - 1e-9) * step;
}

static void put_escaped(FILE *out, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '<':
            fputs("&lt;", out);
            break;
        case '>':
            fputs("&gt;", out);
            break;
        case '&':
            fputs("&amp;", out);
            break;
        case '"':
            fputs("&quot;", out);
            break;
        default:
            /* control characters are not allowed in XML 1.0 */
            fputc((unsigned char)*s < 0x20 ? ' ' : *s, out);
        }
    }
}

static void draw_frame(FILE *out, const panel *p, const axis *a, int last)
{
    fprintf(out, "<g id=\"panel-%s\" class=\"panel\">\n", p->id);
    fprintf(out,
            "<rect x=\"%d\" y=\"%.1f\" width=\"%d\" height=\"%d\" fill=\"none\" "
            "stroke=\"#888\"/>\n",
            LEFT, p->y0, SVG_W - LEFT - RIGHT, PANEL_H);
    fprintf(out, "<text x=\"%d\" y=\"%.1f\" font-size=\"13\" font-weight=\"bold\">%s (%s)</text>\n",
            LEFT, p->y0 - 8, p->title, p->unit);
    double step = nice_step(p->ymax, 4);
    for (double v = 0; v <= p->ymax * 1.0001; v += step) {
        double y = px_y(p, v);
        fprintf(out,
                "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#ddd\"/>"
                "<text x=\"%d\" y=\"%.1f\" font-size=\"11\" text-anchor=\"end\">%g</text>\n",
                LEFT, y, SVG_W - RIGHT, y, LEFT - 6, y + 4, v);
    }
    double tstep = nice_step(a->t1 - a->t0, 8);
    for (double t = ceil(a->t0 / tstep) * tstep; t <= a->t1 + 1e-9; t += tstep) {
        double x = px_x(a, t), yb = p->y0 + PANEL_H;
        fprintf(out, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#888\"/>", x,
                yb, x, yb + 4);
        if (last)
            fprintf(out,
                    "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" "
                    "text-anchor=\"middle\">%g</text>",
                    x, yb + 17, t);
        fputc('\n', out);
    }
    if (last)
        fprintf(out,
                "<text x=\"%d\" y=\"%.1f\" font-size=\"12\" text-anchor=\"middle\">time (s)"
                "</text>\n",
                LEFT + (SVG_W - LEFT - RIGHT) / 2, p->y0 + PANEL_H + 34);
}

/* A series as one polyline; offset picks the field of sample. NAN points are left out. */
static void draw_series(FILE *out, const char *id, const char *color, const panel *p, const axis *a,
                        const sample *s, size_t n, size_t offset)
{
    fprintf(out,
            "<polyline id=\"%s\" class=\"series\" fill=\"none\" stroke=\"%s\" "
            "stroke-width=\"1.5\" points=\"",
            id, color);
    for (size_t i = 0; i < n; i++) {
        double v = *(const double *)((const char *)&s[i] + offset);
        if (!isnan(v))
            fprintf(out, "%s%.1f,%.1f", i ? " " : "", px_x(a, s[i].t), px_y(p, v));
    }
    fprintf(out, "\"/>\n");
}

static void draw_phases(FILE *out, const axis *a, const sample *s, size_t n, double y0, double y1)
{
    static const char *const fills[] = {"#eef3fb", "#fbf3e6", "#eef8ee", "#f6eef8"};
    size_t start = 0;
    int k = 0;
    fprintf(out, "<g id=\"phases\">\n");
    for (size_t i = 1; i <= n; i++) {
        if (i < n && strcmp(s[i].phase, s[start].phase) == 0)
            continue;
        /* a sample covers the second before its t */
        double x0 = px_x(a, start ? s[start - 1].t : a->t0), x1 = px_x(a, s[i - 1].t);
        fprintf(out,
                "<rect class=\"phase\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
                "fill=\"%s\"/><text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" fill=\"#555\">",
                x0, y0, x1 - x0 > 0 ? x1 - x0 : 1, y1 - y0, fills[k++ % 4], x0 + 3, y0 - 24);
        put_escaped(out, s[start].phase);
        fprintf(out, "</text>\n");
        start = i;
    }
    fprintf(out, "</g>\n");
}

static int load_timeline(json_t *root, sample **out, size_t *nout, char *err, size_t errlen,
                         const char *path)
{
    json_t *tl = json_object_get(root, "timeline");
    if (!json_is_array(tl) || json_array_size(tl) == 0) {
        snprintf(err, errlen, "%s: \"timeline\" missing, empty or not an array", path);
        return -EINVAL;
    }
    size_t n = json_array_size(tl);
    if (n > MAX_SAMPLES) {
        snprintf(err, errlen, "%s: \"timeline\" has %zu samples, at most %d", path, n, MAX_SAMPLES);
        return -EINVAL;
    }
    sample *s = calloc(n, sizeof *s);
    if (s == NULL) {
        snprintf(err, errlen, "%s: out of memory", path);
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(tl, i);
        json_t *t = json_object_get(e, "t"), *rq = json_object_get(e, "requests");
        json_t *er = json_object_get(e, "errors"), *ph = json_object_get(e, "phase");
        json_t *p50 = json_object_get(e, "p50_ms"), *p99 = json_object_get(e, "p99_ms");
        const char *why = NULL;
        if (!json_is_object(e))
            why = "not an object";
        else if (!json_is_number(t) || !isfinite(json_number_value(t)))
            why = "\"t\" is not a number";
        else if (i && json_number_value(t) <= s[i - 1].t)
            why = "\"t\" does not grow";
        else if (!json_is_number(rq) || json_number_value(rq) < 0)
            why = "\"requests\" is not a number >= 0";
        else if (er && (!json_is_number(er) || json_number_value(er) < 0))
            why = "\"errors\" is not a number >= 0";
        else if ((p50 && !json_is_null(p50) && !json_is_number(p50)) ||
                 (p99 && !json_is_null(p99) && !json_is_number(p99)))
            why = "\"p50_ms\"/\"p99_ms\" are not numbers";
        if (why) {
            snprintf(err, errlen, "%s: timeline[%zu]: %s", path, i, why);
            free(s);
            return -EINVAL;
        }
        s[i].t = json_number_value(t);
        double dt = i ? s[i].t - s[i - 1].t : 1.0; /* one sample a second by the contract */
        s[i].rate = json_number_value(rq) / dt;
        s[i].errors = er ? json_number_value(er) / dt : 0;
        s[i].p50 = json_is_number(p50) ? json_number_value(p50) : NAN;
        s[i].p99 = json_is_number(p99) ? json_number_value(p99) : NAN;
        s[i].phase = json_is_string(ph) ? json_string_value(ph) : "";
    }
    *out = s;
    *nout = n;
    return 0;
}

static void write_svg(FILE *out, json_t *root, const sample *s, size_t n)
{
    const char *scen = json_string_value(json_object_get(root, "scenario"));
    const char *when = json_string_value(json_object_get(root, "started_at"));
    json_t *vens = json_object_get(json_object_get(root, "config"), "vens");
    double mrate = 0, merr = 0, mlat = 0;
    for (size_t i = 0; i < n; i++) {
        mrate = fmax(mrate, s[i].rate);
        merr = fmax(merr, s[i].errors);
        if (!isnan(s[i].p99))
            mlat = fmax(mlat, s[i].p99);
        if (!isnan(s[i].p50))
            mlat = fmax(mlat, s[i].p50);
    }
    axis a = {s[0].t - (n > 1 ? s[1].t - s[0].t : 1), s[n - 1].t};
    panel p[3] = {
        {"throughput", "throughput", "requests/s", TOP, nice_max(mrate)},
        {"latency", "latency p50 and p99", "ms", TOP + PANEL_H + PANEL_GAP, nice_max(mlat)},
        {"errors", "errors", "per second", TOP + 2 * (PANEL_H + PANEL_GAP), nice_max(merr)},
    };
    int height = TOP + 3 * PANEL_H + 2 * PANEL_GAP + BOTTOM;
    fprintf(out,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"%d\" "
            "height=\"%d\" viewBox=\"0 0 %d %d\" font-family=\"sans-serif\">\n"
            "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
            "<text id=\"title\" x=\"%d\" y=\"24\" font-size=\"16\" font-weight=\"bold\">"
            "vtn-bench ",
            SVG_W, height, SVG_W, height, LEFT);
    put_escaped(out, scen ? scen : "run");
    if (json_is_number(vens))
        fprintf(out, ", %.0f VENs", json_number_value(vens));
    if (when) {
        fputs(", ", out);
        put_escaped(out, when);
    }
    fprintf(out, "</text>\n");
    draw_phases(out, &a, s, n, p[0].y0, p[2].y0 + PANEL_H);
    for (int i = 0; i < 3; i++)
        draw_frame(out, &p[i], &a, i == 2);
    draw_series(out, "throughput", "#1f5fbf", &p[0], &a, s, n, offsetof(sample, rate));
    fprintf(out, "</g>\n");
    draw_series(out, "latency-p50", "#2a9d3a", &p[1], &a, s, n, offsetof(sample, p50));
    draw_series(out, "latency-p99", "#d9822b", &p[1], &a, s, n, offsetof(sample, p99));
    fprintf(out,
            "<text x=\"%d\" y=\"%.1f\" font-size=\"11\" text-anchor=\"end\"><tspan "
            "fill=\"#2a9d3a\">p50</tspan> <tspan fill=\"#d9822b\">p99</tspan></text>\n</g>\n",
            SVG_W - RIGHT, p[1].y0 - 8);
    draw_series(out, "errors", "#c0392b", &p[2], &a, s, n, offsetof(sample, errors));
    fprintf(out, "</g>\n</svg>\n");
}

json_t *bn_json_load(const char *path, char *err, size_t errlen)
{
    json_error_t je;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (root != NULL)
        return root;
    if (je.line < 1) /* jansson could not open or read it */
        snprintf(err, errlen, "%s: %s", path, je.text);
    else
        snprintf(err, errlen, "%s: not JSON (line %d, column %d: %s)", path, je.line, je.column,
                 je.text);
    return NULL;
}

int bn_svg_from_json(const char *json_path, const char *svg_path, char *err, size_t errlen)
{
    json_t *root = bn_json_load(json_path, err, errlen);
    if (root == NULL)
        return -EINVAL;
    const char *schema = json_string_value(json_object_get(root, "schema"));
    sample *s = NULL;
    size_t n = 0;
    int rc = -EINVAL;
    if (!json_is_object(root) || schema == NULL || strcmp(schema, BN_RUN_SCHEMA) != 0) {
        snprintf(err, errlen, "%s: not a run file (\"schema\" is not \"" BN_RUN_SCHEMA "\")",
                 json_path);
    } else if ((rc = load_timeline(root, &s, &n, err, errlen, json_path)) == 0) {
        FILE *out = fopen(svg_path, "w");
        if (out == NULL) {
            rc = -errno;
            snprintf(err, errlen, "%s: %s", svg_path, strerror(errno));
        } else {
            write_svg(out, root, s, n);
            if (ferror(out) | (fclose(out) != 0)) {
                rc = -EIO;
                snprintf(err, errlen, "%s: write failed", svg_path);
                remove(svg_path);
            }
        }
    }
    free(s);
    json_decref(root);
    return rc;
}

int bn_svg_main(int argc, char **argv)
{
    char err[512];
    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        printf("usage: vtn-bench svg RUN.json OUT.svg\n"
               "Draws a run's timeline: throughput, latency p50/p99 and errors per second over "
               "time, phases shaded.\n");
        return 0;
    }
    if (argc != 3) {
        fprintf(stderr, "usage: vtn-bench svg RUN.json OUT.svg\n");
        return 2;
    }
    if (bn_svg_from_json(argv[1], argv[2], err, sizeof err) < 0) {
        fprintf(stderr, "vtn-bench svg: %s\n", err);
        return 1;
    }
    return 0;
}
