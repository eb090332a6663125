/* Worker metrics (Prometheus text on the ops listener): one table of the
 * common registry (vtn/metrics.h) over wk_metrics, and readiness. The loop
 * thread writes relaxed atomics; the ops thread reads them. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "wk_internal.h"

/* Codes that get their own label value; anything else counts as "other". */
static const int codes[] = {200, 201, 202, 400, 401, 404, 405, 409, 415, 450, 451, 452,
                            453, 454, 460, 461, 462, 463, 469, 500, 501, 503, 504};
#define NKNOWN ((int)(sizeof codes / sizeof codes[0]))
_Static_assert(NKNOWN < WK_NCODES, "one slot must stay for other codes");

int wk_metrics_code_index(int code)
{
    for (int i = 0; i < NKNOWN; i++)
        if (codes[i] == code)
            return i;
    return WK_NCODES - 1;
}

int wk_metrics_code_of(int index)
{
    return index >= 0 && index < NKNOWN ? codes[index] : 0;
}

const char *wk_metrics_type_label(int t)
{
    if (t == WK_MT_API)
        return "api";
    if (t <= 0 || t >= WK_MSG__COUNT)
        return "other";
    return wk_msg_name((enum wk_msg_type)t);
}

void wk_metrics_request(wk_metrics *m, int type_index, int code, uint64_t ns)
{
    if (type_index < 0 || type_index >= WK_MT__COUNT)
        type_index = WK_MT_OTHER;
    atomic_fetch_add_explicit(&m->requests[type_index][wk_metrics_code_index(code)], 1,
                              memory_order_relaxed);
    vtn_hist_observe(&m->latency[type_index], ns);
}

void wk_metrics_batch(wk_metrics *m, int n)
{
    vtn_ihist_observe(&m->batch, (uint64_t)n);
}

static const char *type_label(size_t i, char *tmp, size_t tmplen)
{
    (void)tmp;
    (void)tmplen;
    return wk_metrics_type_label((int)i);
}

static const char *code_label(size_t i, char *tmp, size_t tmplen)
{
    int c = wk_metrics_code_of((int)i);
    if (!c)
        return "other";
    snprintf(tmp, tmplen, "%d", c);
    return tmp;
}

static const vtn_metric_dim request_type = {"type", WK_MT__COUNT, NULL,
                                            sizeof(_Atomic uint64_t) * WK_NCODES, type_label};
static const vtn_metric_dim request_code = {"code", WK_NCODES, NULL, sizeof(_Atomic uint64_t),
                                            code_label};
static const vtn_metric_dim latency_type = {"type", WK_MT__COUNT, NULL, sizeof(vtn_hist),
                                            type_label};

#define M "vtn_worker_"
#define IN_M(f) .offset = offsetof(wk_metrics, f)

static const vtn_metric wk_metric_table[] = {
    {M "requests_total", VTN_METRIC_COUNTER,
     "Requests answered, by payload type and code (OpenADR responseCode; HTTP status for the "
     "management API and HTTP-level errors).",
     IN_M(requests), .dim = {&request_type, &request_code}, .flags = VTN_METRIC_SKIP_ZERO},
    {M "request_seconds", VTN_METRIC_HISTOGRAM,
     "Time from receiving a request to having its reply, by payload type (includes the wait "
     "for the batch).",
     .cell = VTN_CELL_HIST, IN_M(latency), .dim = {&latency_type}, .flags = VTN_METRIC_SKIP_ZERO},
    {M "batch_size", VTN_METRIC_HISTOGRAM, "Requests handled together in one loop iteration.",
     .cell = VTN_CELL_IHIST, IN_M(batch)},
    {M "redis_up", VTN_METRIC_GAUGE, "1 while the Redis connection is up.", .cell = VTN_CELL_INT,
     IN_M(redis_up)},
    {M "redis_errors_total", VTN_METRIC_COUNTER,
     "Redis connection failures (I/O errors, timeouts, READONLY after a failover); each one "
     "drops the connection.",
     IN_M(redis_errors)},
    {M "redis_reconnects_total", VTN_METRIC_COUNTER,
     "Successful Redis connections after the first.", IN_M(redis_reconnects)},
    {M "redis_script_loads_total", VTN_METRIC_COUNTER,
     "Times the Lua scripts were loaded (each connect, each NOSCRIPT).", IN_M(redis_script_loads)},
    {M "gateways", VTN_METRIC_GAUGE, "Gateways this worker has a socket for.", .cell = VTN_CELL_INT,
     IN_M(gateways_known)},
    {M "gateways_live", VTN_METRIC_GAUGE, "Gateways heard from within the liveness window.",
     .cell = VTN_CELL_INT, IN_M(gateways_live)},
    {M "gateway_reconnects_total", VTN_METRIC_COUNTER, "New sessions after a gateway went silent.",
     IN_M(gateway_reconnects)},
    {M "loop_stalls_total", VTN_METRIC_COUNTER,
     "Passes of the worker's own loop that came 500 ms or more late (slow work in a turn, a "
     "stopped process); gateway silence during a stall is not held against the gateway.",
     IN_M(loop_stalls)},
    {M "dropped_deadline_total", VTN_METRIC_COUNTER,
     "Requests dropped because their deadline had passed on arrival.", IN_M(dropped_deadline)},
    {M "replies_lost_total", VTN_METRIC_COUNTER,
     "Replies not sent because the gateway session was gone or its queue full.",
     IN_M(replies_lost)},
    {M "bad_frames_total", VTN_METRIC_COUNTER, "ZeroMQ frames that were not valid envelopes.",
     IN_M(bad_frames)},
    {M "frames_ignored_total", VTN_METRIC_COUNTER,
     "ZeroMQ frames of a type this worker does not handle (from a newer gateway), ignored.",
     IN_M(frames_ignored)},
    {M "certificates_issued_total", VTN_METRIC_COUNTER,
     "Certificates signed through POST /api/v1/certificates.", IN_M(certs_issued)},
    {M "certificates_revoked_total", VTN_METRIC_COUNTER,
     "Certificates revoked through the API (first revocation only).", IN_M(certs_revoked)},
    {M "crls_signed_total", VTN_METRIC_COUNTER, "CRLs signed for GET /api/v1/crl.",
     IN_M(crls_signed)},
    {M "over_budget_total", VTN_METRIC_COUNTER,
     "Requests refused because the memory budget (VTN_WORKER_MEMORY) was in use.",
     IN_M(over_budget)},
    {M "redis_oom_total", VTN_METRIC_COUNTER,
     "Requests answered 503 because Redis refused a write for lack of memory (maxmemory).",
     IN_M(redis_oom)},
    {M "draining", VTN_METRIC_GAUGE, "1 after SIGTERM while the worker drains.",
     .cell = VTN_CELL_INT, IN_M(draining)},
};

int wk_metrics_render(vtn_buf *out, void *ud)
{
    const wk_worker *w = ud;
    int rc =
        vtn_metrics_render(out, wk_metric_table, sizeof wk_metric_table / sizeof wk_metric_table[0],
                           (const void *[]){&w->m});
    if (rc == 0)
        rc = vtn_metrics_process(out);
    return rc < 0 ? -1 : 0;
}

#define LOAD(x) atomic_load_explicit(&(x), memory_order_relaxed)

int wk_ready(void *ud, char *why, size_t whylen)
{
    wk_worker *w = ud;
    if (!LOAD(w->m.schemas_ok)) {
        snprintf(why, whylen, "schemas not compiled");
        return 0;
    }
    if (!LOAD(w->m.redis_up)) {
        snprintf(why, whylen, "redis not connected");
        return 0;
    }
    if (LOAD(w->m.gateways_live) == 0) {
        snprintf(why, whylen, "no gateway");
        return 0;
    }
    if (LOAD(w->m.draining)) {
        snprintf(why, whylen, "draining");
        return 0;
    }
    return 1;
}
