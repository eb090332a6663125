/* The gateway's Prometheus metrics: one table (vtn/metrics.h) over the
 * counters of gw_metrics and gw_pool_stats. Written by the loop thread,
 * rendered by the ops thread (vtn/ops.h) from relaxed atomics. */
#include <stddef.h>
#include <stdio.h>

#include "gw_internal.h"

#define M "vtn_gateway_"

void gw_metrics_count(gw_metrics *m, int route, int status, uint64_t ns)
{
    if (route < 0 || route >= GW_ROUTE_COUNT)
        route = GW_ROUTE_OTHER;
    if (status < 0 || status >= GW_STATUS_MAX)
        status = 0;
    GW_INC(m->requests[route][status]);
    if (ns) /* 0: answered by the HTTP layer before routing; no latency to speak of */
        vtn_hist_observe(&m->latency[route], ns);
}

static const char *route_label(size_t i, char *tmp, size_t tmplen)
{
    (void)tmp;
    (void)tmplen;
    return gw_route_name((int)i);
}

static const char *status_label(size_t i, char *tmp, size_t tmplen)
{
    snprintf(tmp, tmplen, "%zu", i);
    return tmp;
}

static const char *unavail_label(size_t i, char *tmp, size_t tmplen)
{
    (void)tmp;
    (void)tmplen;
    switch (i) {
    case GW_UNAVAIL_NO_WORKER:
        return "no_worker";
    case GW_UNAVAIL_QUEUE_FULL:
        return "queue_full";
    case GW_UNAVAIL_WORKER_LOST:
        return "worker_lost";
    case GW_UNAVAIL_STALLED:
        return "worker_stalled";
    default:
        return "deadline";
    }
}

static const vtn_metric_dim request_route = {"route", GW_ROUTE_COUNT, NULL,
                                             sizeof(_Atomic uint64_t) * GW_STATUS_MAX, route_label};
static const vtn_metric_dim request_status = {"status", GW_STATUS_MAX, NULL,
                                              sizeof(_Atomic uint64_t), status_label};
static const vtn_metric_dim latency_route = {"route", GW_ROUTE_COUNT, NULL, sizeof(vtn_hist),
                                             route_label};
static const vtn_metric_dim unavail_reason = {"reason", GW_UNAVAIL_COUNT, NULL,
                                              sizeof(_Atomic uint64_t), unavail_label};

enum { GW_M, GW_PS }; /* the bases: gw_metrics, gw_pool_stats */
#define IN_M(f) .base = GW_M, .offset = offsetof(gw_metrics, f)
#define IN_PS(f) .base = GW_PS, .offset = offsetof(gw_pool_stats, f)

static const vtn_metric gw_metric_table[] = {
    {M "requests_total", VTN_METRIC_COUNTER, "HTTP requests answered, by route and status.",
     IN_M(requests), .dim = {&request_route, &request_status}, .flags = VTN_METRIC_SKIP_ZERO},
    {M "request_duration_seconds", VTN_METRIC_HISTOGRAM,
     "Time from a complete request to its response, by route.", .cell = VTN_CELL_HIST,
     IN_M(latency), .dim = {&latency_route}, .flags = VTN_METRIC_SKIP_ZERO},
    {M "inflight_requests", VTN_METRIC_GAUGE, "Requests sent to a worker and not yet answered.",
     IN_PS(inflight)},
    {M "pending_requests", VTN_METRIC_GAUGE, "Requests waiting for a worker credit.",
     IN_PS(pending)},
    {M "live_workers", VTN_METRIC_GAUGE, "Workers that sent READY and are heartbeating.",
     IN_PS(live_workers)},
    {M "open_connections", VTN_METRIC_GAUGE, "Open client connections (OpenADR and API).",
     IN_M(conns_open)},
    {M "api_open_connections", VTN_METRIC_GAUGE,
     "Open connections on the management API listener (also in open_connections).",
     IN_M(api_conns_open)},
    {M "connections_accepted_total", VTN_METRIC_COUNTER, "Client connections accepted.",
     IN_M(conns_accepted)},
    {M "connections_rejected_total", VTN_METRIC_COUNTER,
     "Connections refused at accept (a connection limit, or draining): 503 and close on plain "
     "HTTP, close on TLS.",
     IN_M(conns_rejected)},
    {M "connections_per_ip_rejected_total", VTN_METRIC_COUNTER,
     "Connections refused because their address had VTN_MAX_CONNECTIONS_PER_IP open (also in "
     "connections_rejected_total).",
     IN_M(conns_per_ip_rejected)},
    {M "api_unauthorized_total", VTN_METRIC_COUNTER,
     "Management API requests refused (401) by the gateway before their body, for a missing or "
     "wrong bearer token.",
     IN_M(api_unauthorized)},
    {M "connections_shed_total", VTN_METRIC_COUNTER,
     "Connections closed to make room for a new one on a full listener: fresh (not "
     "authenticated yet) or idle (keep-alive).",
     IN_M(conns_shed_fresh), .labels = "tier=\"fresh\""},
    {M "connections_shed_total", IN_M(conns_shed_idle), .labels = "tier=\"idle\"",
     .flags = VTN_METRIC_MORE},
    {M "client_timeouts_total", VTN_METRIC_COUNTER,
     "Connections closed by a timer: header (408 or silent before the first request) or idle.",
     IN_M(timeouts_header), .labels = "phase=\"header\""},
    {M "client_timeouts_total", IN_M(timeouts_idle), .labels = "phase=\"idle\"",
     .flags = VTN_METRIC_MORE},
    {M "retries_total", VTN_METRIC_COUNTER, "Requests re-sent to another worker (attempt=1).",
     IN_PS(retries)},
    {M "unavailable_total", VTN_METRIC_COUNTER, "503 answers made by the gateway, by reason.",
     IN_PS(unavailable), .dim = {&unavail_reason}},
    {M "worker_timeouts_total", VTN_METRIC_COUNTER,
     "504 answers: no reply from the worker by the deadline.", IN_PS(timeouts)},
    {M "dropped_replies_total", VTN_METRIC_COUNTER,
     "Worker replies for unknown, answered or abandoned requests.", IN_PS(dropped_replies)},
    {M "worker_deaths_total", VTN_METRIC_COUNTER,
     "Workers declared dead (silent, unreachable or disconnected).", IN_PS(worker_deaths)},
    {M "protocol_errors_total", VTN_METRIC_COUNTER, "Malformed messages from workers.",
     IN_PS(protocol_errors)},
    {M "unknown_frames_total", VTN_METRIC_COUNTER,
     "Frames of a type this gateway does not handle (from a newer worker), ignored.",
     IN_PS(unknown_frames)},
    {M "poison_suspects_total", VTN_METRIC_COUNTER,
     "Requests held by a worker that went silent while still connected: answered 503 and not "
     "retried, so one request stalls at most one worker.",
     IN_PS(poison_suspects)},
    {M "loop_stalls_total", VTN_METRIC_COUNTER,
     "Times the gateway's own event loop came 500 ms or more late to its 100 ms tick (busy, "
     "e.g. with TLS handshakes, or stopped); worker silence during a stall is not held against "
     "the workers.",
     IN_PS(loop_stalls)},
    {M "loop_lag_max_ms", VTN_METRIC_GAUGE,
     "The largest lag of the gateway's event loop (ms past its tick) counted as a stall since "
     "start.",
     IN_PS(loop_lag_max_ms)},
    {M "tls_handshakes_total", VTN_METRIC_COUNTER,
     "TLS handshakes on the OpenADR listener: ok, failed (refused certificate, protocol error, "
     "peer left) or timeout.",
     IN_M(tls_hs_ok), .labels = "result=\"ok\""},
    {M "tls_handshakes_total", IN_M(tls_hs_failed), .labels = "result=\"failed\"",
     .flags = VTN_METRIC_MORE},
    {M "tls_handshakes_total", IN_M(tls_hs_timeout), .labels = "result=\"timeout\"",
     .flags = VTN_METRIC_MORE},
    {M "tls_resumed_total", VTN_METRIC_COUNTER,
     "Completed TLS handshakes that resumed a session (ticket or session cache).",
     IN_M(tls_resumed)},
    {M "tls_config_generation", VTN_METRIC_GAUGE,
     "How many times the TLS configuration was loaded (1 at start, +1 per good reload); 0 "
     "without TLS.",
     IN_M(tls_generation)},
    {M "tls_reloads_total", VTN_METRIC_COUNTER,
     "TLS reloads on SIGHUP; a failed one keeps the old configuration.", IN_M(tls_reload_ok),
     .labels = "result=\"ok\""},
    {M "tls_reloads_total", IN_M(tls_reload_failed), .labels = "result=\"failed\"",
     .flags = VTN_METRIC_MORE},
    {M "push_deliveries_total", VTN_METRIC_COUNTER,
     "Push mode: messages a push VEN answered with HTTP 200 (delivered), failed deliveries "
     "that will be retried (retry), and VENs marked undelivered after VTN_PUSH_MAX_ATTEMPTS "
     "(undelivered).",
     IN_M(push_delivered), .labels = "result=\"delivered\""},
    {M "push_deliveries_total", IN_M(push_retries), .labels = "result=\"retry\"",
     .flags = VTN_METRIC_MORE},
    {M "push_deliveries_total", IN_M(push_undelivered), .labels = "result=\"undelivered\"",
     .flags = VTN_METRIC_MORE},
    {M "push_refused_total", VTN_METRIC_COUNTER,
     "Push jobs refused: a plain http:// transportAddress without VTN_PUSH_ALLOW_HTTP.",
     IN_M(push_refused_http)},
    {M "push_inflight_jobs", VTN_METRIC_GAUGE, "Push jobs (one VEN each) this gateway holds now.",
     IN_M(push_inflight)},
    {M "push_connections_total", VTN_METRIC_COUNTER,
     "Connections to push VENs: opened (TCP + TLS handshake) or reused (keep-alive).",
     IN_M(push_conns_opened), .labels = "kind=\"opened\""},
    {M "push_connections_total", IN_M(push_conns_reused), .labels = "kind=\"reused\"",
     .flags = VTN_METRIC_MORE},
    {M "proxy_refused_total", VTN_METRIC_COUNTER,
     "OpenADR requests refused by the trusted-proxy rules (identity header from an untrusted "
     "address, no or a bad identity from the proxy).",
     IN_M(proxy_refused)},
};

int gw_metrics_render(vtn_buf *out, const gw_metrics *m, const gw_pool_stats *ps)
{
    const void *bases[] = {[GW_M] = m, [GW_PS] = ps};
    int rc = vtn_metrics_render(out, gw_metric_table,
                                sizeof gw_metric_table / sizeof gw_metric_table[0], bases);
    /* The body budget is the server's, not a gw_metrics field (and its size is
     * a plain size_t fixed at start), so its three rows follow the table. */
    const gw_budget *b = m->budget;
    if (rc == 0 && b)
        rc = vtn_metric_header(out, M "body_budget_bytes", "gauge",
                               "VTN_BODY_BUDGET: request body bytes that may be buffered across "
                               "all connections.");
    if (rc == 0 && b)
        rc = vtn_metric_u64(out, M "body_budget_bytes", "", b->max);
    if (rc == 0 && b)
        rc = vtn_metric_header(out, M "body_budget_used_bytes", "gauge",
                               "Request body bytes reserved now (bodies being received or in "
                               "flight).");
    if (rc == 0 && b)
        rc = vtn_metric_u64(out, M "body_budget_used_bytes", "", GW_GET(b->used));
    if (rc == 0 && b)
        rc = vtn_metric_header(out, M "body_budget_refused_total", "counter",
                               "Requests refused with 503 because their body would pass "
                               "VTN_BODY_BUDGET.");
    if (rc == 0 && b)
        rc = vtn_metric_u64(out, M "body_budget_refused_total", "", GW_GET(b->refused));
    return rc;
}
