/* Worker metrics (Prometheus text on the ops listener) and readiness. The
 * loop thread writes relaxed atomics; the ops thread reads them. */
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
    int b = 0;
    while (b < WK_BATCH_BUCKETS && n > (1 << b))
        b++;
    atomic_fetch_add_explicit(&m->batch_buckets[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->batch_count, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->batch_sum, (uint64_t)n, memory_order_relaxed);
}

#define LOAD(x) atomic_load_explicit(&(x), memory_order_relaxed)

int wk_metrics_render(vtn_buf *out, void *ud)
{
    wk_worker *w = ud;
    wk_metrics *m = &w->m;
    char labels[160];
    int rc = 0;

    rc |= vtn_metric_header(out, "vtn_worker_requests_total", "counter",
                            "Requests answered, by payload type and code (OpenADR responseCode; "
                            "HTTP status for the management API and HTTP-level errors).");
    for (int t = 0; t < WK_MT__COUNT; t++) {
        for (int c = 0; c < WK_NCODES; c++) {
            uint64_t v = LOAD(m->requests[t][c]);
            if (v == 0)
                continue;
            int code = wk_metrics_code_of(c);
            if (code)
                snprintf(labels, sizeof labels, "type=\"%s\",code=\"%d\"", wk_metrics_type_label(t),
                         code);
            else
                snprintf(labels, sizeof labels, "type=\"%s\",code=\"other\"",
                         wk_metrics_type_label(t));
            rc |= vtn_metric_u64(out, "vtn_worker_requests_total", labels, v);
        }
    }
    rc |= vtn_metric_header(out, "vtn_worker_request_seconds", "histogram",
                            "Time from receiving a request to having its reply, by payload "
                            "type (includes the wait for the batch).");
    for (int t = 0; t < WK_MT__COUNT; t++) {
        if (LOAD(m->latency[t].count) == 0)
            continue;
        snprintf(labels, sizeof labels, "type=\"%s\"", wk_metrics_type_label(t));
        rc |= vtn_hist_render(out, "vtn_worker_request_seconds", labels, &m->latency[t]);
    }
    rc |= vtn_metric_header(out, "vtn_worker_batch_size", "histogram",
                            "Requests handled together in one loop iteration.");
    uint64_t cum = 0;
    for (int b = 0; b <= WK_BATCH_BUCKETS; b++) {
        cum += LOAD(m->batch_buckets[b]);
        if (b < WK_BATCH_BUCKETS)
            snprintf(labels, sizeof labels, "le=\"%d\"", 1 << b);
        else
            snprintf(labels, sizeof labels, "le=\"+Inf\"");
        rc |= vtn_metric_u64(out, "vtn_worker_batch_size_bucket", labels, cum);
    }
    rc |= vtn_metric_u64(out, "vtn_worker_batch_size_sum", "", LOAD(m->batch_sum));
    rc |= vtn_metric_u64(out, "vtn_worker_batch_size_count", "", LOAD(m->batch_count));

    struct {
        const char *name, *type, *help;
        uint64_t v;
    } simple[] = {
        {"vtn_worker_redis_up", "gauge", "1 while the Redis connection is up.",
         (uint64_t)LOAD(m->redis_up)},
        {"vtn_worker_redis_errors_total", "counter",
         "Redis connection failures (I/O errors, timeouts); each one drops the connection.",
         LOAD(m->redis_errors)},
        {"vtn_worker_redis_reconnects_total", "counter",
         "Successful Redis connections after the first.", LOAD(m->redis_reconnects)},
        {"vtn_worker_redis_script_loads_total", "counter",
         "Times the Lua scripts were loaded (each connect, each NOSCRIPT).",
         LOAD(m->redis_script_loads)},
        {"vtn_worker_gateways", "gauge", "Gateways this worker has a socket for.",
         (uint64_t)LOAD(m->gateways_known)},
        {"vtn_worker_gateways_live", "gauge", "Gateways heard from within the liveness window.",
         (uint64_t)LOAD(m->gateways_live)},
        {"vtn_worker_gateway_reconnects_total", "counter",
         "New sessions after a gateway went silent.", LOAD(m->gateway_reconnects)},
        {"vtn_worker_dropped_deadline_total", "counter",
         "Requests dropped because their deadline had passed on arrival.",
         LOAD(m->dropped_deadline)},
        {"vtn_worker_replies_lost_total", "counter",
         "Replies not sent because the gateway session was gone or its queue full.",
         LOAD(m->replies_lost)},
        {"vtn_worker_bad_frames_total", "counter", "ZeroMQ frames that were not valid envelopes.",
         LOAD(m->bad_frames)},
        {"vtn_worker_certificates_issued_total", "counter",
         "Certificates signed through POST /api/v1/certificates.", LOAD(m->certs_issued)},
        {"vtn_worker_certificates_revoked_total", "counter",
         "Certificates revoked through the API (first revocation only).", LOAD(m->certs_revoked)},
        {"vtn_worker_crls_signed_total", "counter", "CRLs signed for GET /api/v1/crl.",
         LOAD(m->crls_signed)},
        {"vtn_worker_over_budget_total", "counter",
         "Requests refused because the memory budget (VTN_WORKER_MEMORY) was in use.",
         LOAD(m->over_budget)},
        {"vtn_worker_redis_oom_total", "counter",
         "Requests answered 503 because Redis refused a write for lack of memory (maxmemory).",
         LOAD(m->redis_oom)},
        {"vtn_worker_draining", "gauge", "1 after SIGTERM while the worker drains.",
         (uint64_t)LOAD(m->draining)},
    };
    for (size_t i = 0; i < sizeof simple / sizeof simple[0]; i++) {
        rc |= vtn_metric_header(out, simple[i].name, simple[i].type, simple[i].help);
        rc |= vtn_metric_u64(out, simple[i].name, "", simple[i].v);
    }
    rc |= vtn_metrics_process(out);
    return rc ? -1 : 0;
}

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
