/* vtn/metrics.h: the metrics registry renders a table of rows over the
 * caller's own counters in the Prometheus text format. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "vtn/metrics.h"

typedef struct sample_stats {
    _Atomic uint64_t hits[2][3]; /* by kind, by outcome */
    _Atomic uint64_t open;
    _Atomic uint64_t ok, failed;
    _Atomic int up;
    vtn_hist latency[2];
    vtn_ihist batch;
} sample_stats;

typedef struct sample_item {
    const char *name;
    _Atomic uint64_t runs;
} sample_item;

static const char *kind_label(size_t i, char *tmp, size_t tmplen)
{
    (void)tmp;
    (void)tmplen;
    return i == 0 ? "poll" : "register";
}

static const char *outcome_label(size_t i, char *tmp, size_t tmplen)
{
    if (i == 2)
        return NULL; /* an index the table leaves out */
    snprintf(tmp, tmplen, "%zu", i * 100 + 200);
    return tmp;
}

static sample_item items[] = {{"a", 0}, {"b", 0}};
static const int nitems = 2;

static const char *item_label(size_t i, char *tmp, size_t tmplen)
{
    (void)tmp;
    (void)tmplen;
    return items[i].name;
}

static const vtn_metric_dim kind_dim = {"kind", 2, NULL, sizeof(_Atomic uint64_t) * 3, kind_label};
static const vtn_metric_dim outcome_dim = {"code", 3, NULL, sizeof(_Atomic uint64_t),
                                           outcome_label};
static const vtn_metric_dim latency_dim = {"kind", 2, NULL, sizeof(vtn_hist), kind_label};
static const vtn_metric_dim item_dim = {"item", 0, &nitems, sizeof(sample_item), item_label};

static const vtn_metric table[] = {
    {"t_hits_total", VTN_METRIC_COUNTER, "Hits.", .offset = offsetof(sample_stats, hits),
     .dim = {&kind_dim, &outcome_dim}, .flags = VTN_METRIC_SKIP_ZERO},
    {"t_open", VTN_METRIC_GAUGE, "Open.", .offset = offsetof(sample_stats, open)},
    {"t_up", VTN_METRIC_GAUGE, "Up.", .cell = VTN_CELL_INT, .offset = offsetof(sample_stats, up)},
    {"t_results_total", VTN_METRIC_COUNTER, "Results.", .offset = offsetof(sample_stats, ok),
     .labels = "result=\"ok\""},
    {"t_results_total", .offset = offsetof(sample_stats, failed), .labels = "result=\"failed\"",
     .flags = VTN_METRIC_MORE},
    {"t_seconds", VTN_METRIC_HISTOGRAM, "Latency.", .cell = VTN_CELL_HIST,
     .offset = offsetof(sample_stats, latency), .dim = {&latency_dim},
     .flags = VTN_METRIC_SKIP_ZERO},
    {"t_batch", VTN_METRIC_HISTOGRAM, "Batch.", .cell = VTN_CELL_IHIST,
     .offset = offsetof(sample_stats, batch)},
    {"t_runs_total", VTN_METRIC_COUNTER, "Runs.", .base = 1, .offset = offsetof(sample_item, runs),
     .labels = "x=\"1\"", .dim = {&item_dim}},
};

static void table_renders_every_row(void **state)
{
    (void)state;
    static sample_stats st;
    st.hits[0][0] = 5;
    st.hits[1][1] = 7;
    st.hits[1][2] = 9; /* left out by its label function */
    st.open = 3;
    st.up = 1;
    st.failed = 2;
    vtn_hist_observe(&st.latency[1], 2000000); /* 2 ms */
    vtn_ihist_observe(&st.batch, 1);
    vtn_ihist_observe(&st.batch, 3);
    vtn_ihist_observe(&st.batch, 5000);
    items[1].runs = 4;

    vtn_buf b;
    vtn_buf_init(&b, 1 << 20);
    const void *bases[] = {&st, items};
    assert_int_equal(vtn_metrics_render(&b, table, sizeof table / sizeof table[0], bases), 0);
    const char *want = "# HELP t_hits_total Hits.\n# TYPE t_hits_total counter\n"
                       "t_hits_total{kind=\"poll\",code=\"200\"} 5\n"
                       "t_hits_total{kind=\"register\",code=\"300\"} 7\n"
                       "# HELP t_open Open.\n# TYPE t_open gauge\nt_open 3\n"
                       "# HELP t_up Up.\n# TYPE t_up gauge\nt_up 1\n"
                       "# HELP t_results_total Results.\n# TYPE t_results_total counter\n"
                       "t_results_total{result=\"ok\"} 0\n"
                       "t_results_total{result=\"failed\"} 2\n"
                       "# HELP t_seconds Latency.\n# TYPE t_seconds histogram\n"
                       "t_seconds_bucket{kind=\"register\",le=\"0.0001\"} 0\n"
                       "t_seconds_bucket{kind=\"register\",le=\"0.00025\"} 0\n"
                       "t_seconds_bucket{kind=\"register\",le=\"0.0005\"} 0\n"
                       "t_seconds_bucket{kind=\"register\",le=\"0.001\"} 0\n"
                       "t_seconds_bucket{kind=\"register\",le=\"0.0025\"} 1\n"
                       "t_seconds_bucket{kind=\"register\",le=\"0.005\"} 1\n"
                       "t_seconds_bucket{kind=\"register\",le=\"0.01\"} 1\n"
                       "t_seconds_bucket{kind=\"register\",le=\"0.025\"} 1\n"
                       "t_seconds_bucket{kind=\"register\",le=\"0.05\"} 1\n"
                       "t_seconds_bucket{kind=\"register\",le=\"0.1\"} 1\n"
                       "t_seconds_bucket{kind=\"register\",le=\"0.25\"} 1\n"
                       "t_seconds_bucket{kind=\"register\",le=\"1\"} 1\n"
                       "t_seconds_bucket{kind=\"register\",le=\"2.5\"} 1\n"
                       "t_seconds_bucket{kind=\"register\",le=\"10\"} 1\n"
                       "t_seconds_bucket{kind=\"register\",le=\"+Inf\"} 1\n"
                       "t_seconds_sum{kind=\"register\"} 0.002000000\n"
                       "t_seconds_count{kind=\"register\"} 1\n"
                       "# HELP t_batch Batch.\n# TYPE t_batch histogram\n"
                       "t_batch_bucket{le=\"1\"} 1\n"
                       "t_batch_bucket{le=\"2\"} 1\n"
                       "t_batch_bucket{le=\"4\"} 2\n"
                       "t_batch_bucket{le=\"8\"} 2\n"
                       "t_batch_bucket{le=\"16\"} 2\n"
                       "t_batch_bucket{le=\"32\"} 2\n"
                       "t_batch_bucket{le=\"64\"} 2\n"
                       "t_batch_bucket{le=\"128\"} 2\n"
                       "t_batch_bucket{le=\"256\"} 2\n"
                       "t_batch_bucket{le=\"512\"} 2\n"
                       "t_batch_bucket{le=\"+Inf\"} 3\n"
                       "t_batch_sum 5004\n"
                       "t_batch_count 3\n"
                       "# HELP t_runs_total Runs.\n# TYPE t_runs_total counter\n"
                       "t_runs_total{x=\"1\",item=\"a\"} 0\n"
                       "t_runs_total{x=\"1\",item=\"b\"} 4\n";
    assert_string_equal(b.data, want);
    vtn_buf_free(&b);
}

/* A scrape that does not fit its buffer fails instead of cutting a line. */
static void render_respects_the_cap(void **state)
{
    (void)state;
    static sample_stats st;
    vtn_buf b;
    vtn_buf_init(&b, 64);
    const void *bases[] = {&st, items};
    assert_int_not_equal(vtn_metrics_render(&b, table, sizeof table / sizeof table[0], bases), 0);
    vtn_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(table_renders_every_row),
        cmocka_unit_test(render_respects_the_cap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
