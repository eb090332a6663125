#include "vtn/metrics.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Upper bounds in nanoseconds: 100us, 250us, 500us, 1ms, 2.5ms, 5ms, 10ms, 25ms, 50ms,
 * 100ms, 250ms, 1s, 2.5s, 10s. */
static const uint64_t bounds_ns[VTN_HIST_BUCKETS] = {
    100000,   250000,   500000,    1000000,   2500000,    5000000,     10000000,
    25000000, 50000000, 100000000, 250000000, 1000000000, 2500000000u, 10000000000ull};

void vtn_hist_observe(vtn_hist *h, uint64_t ns)
{
    int i = 0;
    while (i < VTN_HIST_BUCKETS && ns > bounds_ns[i])
        i++;
    atomic_fetch_add_explicit(&h->buckets[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_ns, ns, memory_order_relaxed);
}

int vtn_metric_header(vtn_buf *out, const char *name, const char *type, const char *help)
{
    return vtn_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

int vtn_metric_sample(vtn_buf *out, const char *name, const char *labels, double value)
{
    if (labels && *labels)
        return vtn_buf_printf(out, "%s{%s} %.17g\n", name, labels, value);
    return vtn_buf_printf(out, "%s %.17g\n", name, value);
}

int vtn_metric_u64(vtn_buf *out, const char *name, const char *labels, uint64_t value)
{
    if (labels && *labels)
        return vtn_buf_printf(out, "%s{%s} %llu\n", name, labels, (unsigned long long)value);
    return vtn_buf_printf(out, "%s %llu\n", name, (unsigned long long)value);
}

int vtn_hist_render(vtn_buf *out, const char *name, const char *labels, const vtn_hist *h)
{
    const char *sep = labels && *labels ? "," : "";
    const char *lb = labels ? labels : "";
    uint64_t cum = 0;
    int rc = 0;
    for (int i = 0; i <= VTN_HIST_BUCKETS && rc == 0; i++) {
        cum += atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
        if (i < VTN_HIST_BUCKETS)
            rc = vtn_buf_printf(out, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, lb, sep,
                                (double)bounds_ns[i] / 1e9, (unsigned long long)cum);
        else
            rc = vtn_buf_printf(out, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, lb, sep,
                                (unsigned long long)cum);
    }
    if (rc == 0)
        rc = vtn_buf_printf(out, "%s_sum%s%s%s %.9f\n", name, *lb ? "{" : "", lb, *lb ? "}" : "",
                            (double)atomic_load_explicit(&h->sum_ns, memory_order_relaxed) / 1e9);
    if (rc == 0)
        rc = vtn_buf_printf(
            out, "%s_count%s%s%s %llu\n", name, *lb ? "{" : "", lb, *lb ? "}" : "",
            (unsigned long long)atomic_load_explicit(&h->count, memory_order_relaxed));
    return rc;
}

void vtn_ihist_observe(vtn_ihist *h, uint64_t n)
{
    int b = 0;
    while (b < VTN_IHIST_BUCKETS && n > (1ull << b))
        b++;
    atomic_fetch_add_explicit(&h->buckets[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum, n, memory_order_relaxed);
}

int vtn_ihist_render(vtn_buf *out, const char *name, const char *labels, const vtn_ihist *h)
{
    const char *lb = labels ? labels : "";
    const char *sep = *lb ? "," : "";
    uint64_t cum = 0;
    int rc = 0;
    for (int b = 0; b <= VTN_IHIST_BUCKETS && rc == 0; b++) {
        cum += atomic_load_explicit(&h->buckets[b], memory_order_relaxed);
        if (b < VTN_IHIST_BUCKETS)
            rc = vtn_buf_printf(out, "%s_bucket{%s%sle=\"%llu\"} %llu\n", name, lb, sep, 1ull << b,
                                (unsigned long long)cum);
        else
            rc = vtn_buf_printf(out, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, lb, sep,
                                (unsigned long long)cum);
    }
    if (rc == 0)
        rc =
            vtn_buf_printf(out, "%s_sum%s%s%s %llu\n", name, *lb ? "{" : "", lb, *lb ? "}" : "",
                           (unsigned long long)atomic_load_explicit(&h->sum, memory_order_relaxed));
    if (rc == 0)
        rc = vtn_buf_printf(
            out, "%s_count%s%s%s %llu\n", name, *lb ? "{" : "", lb, *lb ? "}" : "",
            (unsigned long long)atomic_load_explicit(&h->count, memory_order_relaxed));
    return rc;
}

/* ---- the registry ------------------------------------------------------- */

static const char *const type_names[] = {
    [VTN_METRIC_COUNTER] = "counter",
    [VTN_METRIC_GAUGE] = "gauge",
    [VTN_METRIC_HISTOGRAM] = "histogram",
};

static size_t dim_count(const vtn_metric_dim *d)
{
    if (d == NULL)
        return 1;
    if (d->count_ref)
        return *d->count_ref > 0 ? (size_t)*d->count_ref : 0;
    return d->count;
}

static int cell_is_zero(const vtn_metric *m, const void *p)
{
    switch (m->cell) {
    case VTN_CELL_HIST:
        return atomic_load_explicit(&((const vtn_hist *)p)->count, memory_order_relaxed) == 0;
    case VTN_CELL_IHIST:
        return atomic_load_explicit(&((const vtn_ihist *)p)->count, memory_order_relaxed) == 0;
    case VTN_CELL_INT:
        return atomic_load_explicit((const _Atomic int *)p, memory_order_relaxed) == 0;
    default:
        return atomic_load_explicit((const _Atomic uint64_t *)p, memory_order_relaxed) == 0;
    }
}

/* Writes one sample (or one histogram) of row m from the cell at p. */
static int render_cell(vtn_buf *out, const vtn_metric *m, const void *p, const char *labels)
{
    switch (m->cell) {
    case VTN_CELL_HIST:
        return vtn_hist_render(out, m->name, labels, p);
    case VTN_CELL_IHIST:
        return vtn_ihist_render(out, m->name, labels, p);
    case VTN_CELL_INT:
        return vtn_metric_u64(
            out, m->name, labels,
            (uint64_t)atomic_load_explicit((const _Atomic int *)p, memory_order_relaxed));
    default:
        return vtn_metric_u64(
            out, m->name, labels,
            atomic_load_explicit((const _Atomic uint64_t *)p, memory_order_relaxed));
    }
}

/* Appends 'label="value"' to a label string, after a comma unless first. */
static int add_label(char *lb, size_t lblen, size_t *off, const char *label, const char *value)
{
    int w = snprintf(lb + *off, lblen - *off, "%s%s=\"%s\"", *off ? "," : "", label, value);
    if (w < 0 || (size_t)w >= lblen - *off)
        return -ENOBUFS;
    *off += (size_t)w;
    return 0;
}

/* One sample of row m at dimension indexes (i, j); an index whose label
 * function gives NULL is left out. */
static int render_sample(vtn_buf *out, const vtn_metric *m, const char *base, size_t i, size_t j)
{
    const size_t at[2] = {i, j};
    const char *p = base + m->offset;
    for (int k = 0; k < 2; k++)
        if (m->dim[k])
            p += at[k] * m->dim[k]->stride;
    if ((m->flags & VTN_METRIC_SKIP_ZERO) && cell_is_zero(m, p))
        return 0;
    char lb[256], tmp[64];
    size_t off = 0;
    lb[0] = '\0';
    if (m->labels && *m->labels) {
        int w = snprintf(lb, sizeof lb, "%s", m->labels);
        if (w < 0 || (size_t)w >= sizeof lb)
            return -ENOBUFS;
        off = (size_t)w;
    }
    for (int k = 0; k < 2; k++) {
        if (m->dim[k] == NULL)
            continue;
        const char *v = m->dim[k]->value(at[k], tmp, sizeof tmp);
        if (v == NULL)
            return 0;
        if (add_label(lb, sizeof lb, &off, m->dim[k]->label, v) < 0)
            return -ENOBUFS;
    }
    return render_cell(out, m, p, lb);
}

static int render_row(vtn_buf *out, const vtn_metric *m, const char *base)
{
    int rc = (m->flags & VTN_METRIC_MORE)
                 ? 0
                 : vtn_metric_header(out, m->name, type_names[m->type], m->help);
    size_t n0 = dim_count(m->dim[0]), n1 = dim_count(m->dim[1]);
    for (size_t i = 0; i < n0 && rc == 0; i++)
        for (size_t j = 0; j < n1 && rc == 0; j++)
            rc = render_sample(out, m, base, i, j);
    return rc;
}

int vtn_metrics_render(vtn_buf *out, const vtn_metric *table, size_t n, const void *const *bases)
{
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = render_row(out, &table[i], bases[table[i].base]);
    return rc;
}

int vtn_metrics_process(vtn_buf *out)
{
    struct timespec cpu;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu);
    long rss_pages = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        long size;
        if (fscanf(f, "%ld %ld", &size, &rss_pages) != 2)
            rss_pages = 0;
        fclose(f);
    }
    static double start_time; /* first call approximates the start; set early by vtn_ops_start */
    if (start_time == 0) {
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        start_time = (double)now.tv_sec;
    }
    int rc = vtn_metric_header(out, "process_cpu_seconds_total", "counter",
                               "User and system CPU time spent in seconds.");
    if (rc == 0)
        rc = vtn_metric_sample(out, "process_cpu_seconds_total", "",
                               (double)cpu.tv_sec + (double)cpu.tv_nsec / 1e9);
    if (rc == 0)
        rc = vtn_metric_header(out, "process_resident_memory_bytes", "gauge",
                               "Resident memory size in bytes.");
    if (rc == 0)
        rc = vtn_metric_u64(out, "process_resident_memory_bytes", "",
                            (uint64_t)rss_pages * (uint64_t)sysconf(_SC_PAGESIZE));
    if (rc == 0)
        rc = vtn_metric_header(out, "process_start_time_seconds", "gauge",
                               "Start time of the process since the Unix epoch in seconds.");
    if (rc == 0)
        rc = vtn_metric_sample(out, "process_start_time_seconds", "", start_time);
    return rc;
}
