/* Prometheus text exposition helpers. Counters and histograms are written by
 * one thread and read by the ops thread; fields are relaxed atomics. */
#ifndef VTN_METRICS_H
#define VTN_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
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

/* A histogram of counts (batch sizes, items) with power-of-two bounds
 * 1, 2, 4 .. 2^(VTN_IHIST_BUCKETS-1) and +Inf; sum and count are integers. */
#define VTN_IHIST_BUCKETS 10
typedef struct vtn_ihist {
    _Atomic uint64_t buckets[VTN_IHIST_BUCKETS + 1];
    _Atomic uint64_t count;
    _Atomic uint64_t sum;
} vtn_ihist;

void vtn_ihist_observe(vtn_ihist *h, uint64_t n);

/* ---- the registry ------------------------------------------------------
 *
 * Every metric of a process is one row of a table, declared once with its
 * name, type and help, and where its values live: an offset from one of the
 * base pointers given at render time (so one table serves every instance
 * of a struct, and the hot path keeps incrementing its own relaxed atomics).
 * A row may spread over up to two label dimensions (an array, or an array of
 * arrays, of cells); a row flagged VTN_METRIC_MORE adds samples from other
 * fields to the row above (tls_handshakes_total{result="ok"} and
 * {result="failed"} from two counters). vtn_metrics_render writes the whole
 * table in the Prometheus text format, one "# HELP"/"# TYPE" pair per
 * metric, samples in table order, dimensions outer first.
 *
 *   static const vtn_metric_dim route_dim = {"route", GW_ROUTE_COUNT, 0,
 *       sizeof(vtn_hist), route_label};
 *   static const vtn_metric table[] = {
 *       {"vtn_gateway_open_connections", VTN_METRIC_GAUGE, "Open client connections.",
 *        .offset = offsetof(gw_metrics, conns_open)},
 *       {"vtn_gateway_request_duration_seconds", VTN_METRIC_HISTOGRAM, "...",
 *        .cell = VTN_CELL_HIST, .offset = offsetof(gw_metrics, latency),
 *        .dim = {&route_dim}, .flags = VTN_METRIC_SKIP_ZERO},
 *   };
 *   vtn_metrics_render(out, table, 2, (const void *[]){m});
 */
enum vtn_metric_type { VTN_METRIC_COUNTER = 1, VTN_METRIC_GAUGE, VTN_METRIC_HISTOGRAM };

enum vtn_metric_cell {
    VTN_CELL_U64 = 0, /* _Atomic uint64_t */
    VTN_CELL_INT,     /* _Atomic int (flags such as "leader", "redis up") */
    VTN_CELL_HIST,    /* vtn_hist: latency in seconds */
    VTN_CELL_IHIST,   /* vtn_ihist: counts */
};

#define VTN_METRIC_SKIP_ZERO 1u /* leave out samples that are 0 (histograms: no observation) */
#define VTN_METRIC_MORE 2u      /* more samples of the row above: no HELP/TYPE of its own */

/* Spells the label value of index i, into tmp or as a constant; NULL leaves
 * index i out. */
typedef const char *(*vtn_metric_label_fn)(size_t i, char *tmp, size_t tmplen);

/* One label dimension: label name, how many indexes (count, or *count_ref
 * when only known at run time), bytes from the cell of index i to i+1. */
typedef struct vtn_metric_dim {
    const char *label;
    size_t count;
    const int *count_ref;
    size_t stride;
    vtn_metric_label_fn value;
} vtn_metric_dim;

typedef struct vtn_metric {
    const char *name;
    enum vtn_metric_type type;
    const char *help;
    enum vtn_metric_cell cell;
    int base;           /* index into the render call's bases */
    size_t offset;      /* of the (first) cell from that base */
    const char *labels; /* fixed labels before the dimensions' ('phase="idle"'), or NULL */
    const vtn_metric_dim *dim[2]; /* outer, inner; NULL when unused */
    unsigned flags;
} vtn_metric;

/* Appends every row of table to out. 0, -ENOBUFS or -ENOMEM (out may then
 * hold part of the text). */
int vtn_metrics_render(vtn_buf *out, const vtn_metric *table, size_t n, const void *const *bases);

/* Renderers append "# HELP", "# TYPE" (when help != NULL) and samples.
 * labels is "" or 'route="poll",status="200"'. */
int vtn_metric_header(vtn_buf *out, const char *name, const char *type, const char *help);
int vtn_metric_sample(vtn_buf *out, const char *name, const char *labels, double value);
int vtn_metric_u64(vtn_buf *out, const char *name, const char *labels, uint64_t value);
int vtn_hist_render(vtn_buf *out, const char *name, const char *labels, const vtn_hist *h);
int vtn_ihist_render(vtn_buf *out, const char *name, const char *labels, const vtn_ihist *h);
/* process_cpu_seconds_total, process_resident_memory_bytes, process_start_time_seconds. */
int vtn_metrics_process(vtn_buf *out);

#endif
