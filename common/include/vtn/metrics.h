/* Prometheus text exposition helpers. Counters and histograms are written by
 * one thread and read by the ops thread; fields are relaxed atomics. */
#ifndef VTN_METRICS_H
#define VTN_METRICS_H

#include <stdatomic.h>
#include <stdint.h>

#include "vtn/buf.h"

#define VTN_HIST_BUCKETS 14

/* Latency histogram in seconds with fixed buckets 100us .. 10s. */
typedef struct vtn_hist {
    _Atomic uint64_t buckets[VTN_HIST_BUCKETS + 1]; /* last one is +Inf */
    _Atomic uint64_t count;
    _Atomic uint64_t sum_ns;
} vtn_hist;

void vtn_hist_observe(vtn_hist *h, uint64_t ns);

/* Renderers append "# HELP", "# TYPE" (when help != NULL) and samples.
 * labels is "" or 'route="poll",status="200"'. */
int vtn_metric_header(vtn_buf *out, const char *name, const char *type, const char *help);
int vtn_metric_sample(vtn_buf *out, const char *name, const char *labels, double value);
int vtn_metric_u64(vtn_buf *out, const char *name, const char *labels, uint64_t value);
int vtn_hist_render(vtn_buf *out, const char *name, const char *labels, const vtn_hist *h);
/* process_cpu_seconds_total, process_resident_memory_bytes, process_start_time_seconds. */
int vtn_metrics_process(vtn_buf *out);

#endif
