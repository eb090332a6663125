#include "vtn/metrics.h"

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
