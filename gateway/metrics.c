/* The gateway's Prometheus metrics. Written by the loop thread, rendered by
 * the ops thread (vtn/ops.h) from relaxed atomics. */
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

static const char *unavail_label(int r)
{
    switch (r) {
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

static int counter(vtn_buf *out, const char *name, const char *help, uint64_t v)
{
    int rc = vtn_metric_header(out, name, "counter", help);
    return rc ? rc : vtn_metric_u64(out, name, "", v);
}

static int gauge(vtn_buf *out, const char *name, const char *help, uint64_t v)
{
    int rc = vtn_metric_header(out, name, "gauge", help);
    return rc ? rc : vtn_metric_u64(out, name, "", v);
}

int gw_metrics_render(vtn_buf *out, const gw_metrics *m, const gw_pool_stats *ps)
{
    char lb[96];
    int rc = vtn_metric_header(out, M "requests_total", "counter",
                               "HTTP requests answered, by route and status.");
    for (int r = 0; r < GW_ROUTE_COUNT && rc == 0; r++) {
        for (int st = 0; st < GW_STATUS_MAX && rc == 0; st++) {
            uint64_t v = GW_GET(m->requests[r][st]);
            if (!v)
                continue;
            snprintf(lb, sizeof lb, "route=\"%s\",status=\"%d\"", gw_route_name(r), st);
            rc = vtn_metric_u64(out, M "requests_total", lb, v);
        }
    }
    if (rc == 0)
        rc = vtn_metric_header(out, M "request_duration_seconds", "histogram",
                               "Time from a complete request to its response, by route.");
    for (int r = 0; r < GW_ROUTE_COUNT && rc == 0; r++) {
        if (!GW_GET(m->latency[r].count))
            continue;
        snprintf(lb, sizeof lb, "route=\"%s\"", gw_route_name(r));
        rc = vtn_hist_render(out, M "request_duration_seconds", lb, &m->latency[r]);
    }
    if (rc == 0)
        rc = gauge(out, M "inflight_requests", "Requests sent to a worker and not yet answered.",
                   GW_GET(ps->inflight));
    if (rc == 0)
        rc = gauge(out, M "pending_requests", "Requests waiting for a worker credit.",
                   GW_GET(ps->pending));
    if (rc == 0)
        rc = gauge(out, M "live_workers", "Workers that sent READY and are heartbeating.",
                   GW_GET(ps->live_workers));
    if (rc == 0)
        rc = gauge(out, M "open_connections", "Open client connections (OpenADR and API).",
                   GW_GET(m->conns_open));
    if (rc == 0)
        rc = counter(out, M "connections_accepted_total", "Client connections accepted.",
                     GW_GET(m->conns_accepted));
    if (rc == 0)
        rc = gauge(out, M "api_open_connections",
                   "Open connections on the management API listener (also in "
                   "open_connections).",
                   GW_GET(m->api_conns_open));
    if (rc == 0)
        rc = counter(out, M "connections_rejected_total",
                     "Connections refused at accept (a connection limit, or draining): 503 and "
                     "close on plain HTTP, close on TLS.",
                     GW_GET(m->conns_rejected));
    if (rc == 0)
        rc = counter(out, M "connections_per_ip_rejected_total",
                     "Connections refused because their address had VTN_MAX_CONNECTIONS_PER_IP "
                     "open (also in connections_rejected_total).",
                     GW_GET(m->conns_per_ip_rejected));
    if (rc == 0 && m->budget)
        rc = gauge(out, M "body_budget_bytes",
                   "VTN_BODY_BUDGET: request body bytes that may be "
                   "buffered across all connections.",
                   m->budget->max);
    if (rc == 0 && m->budget)
        rc = gauge(out, M "body_budget_used_bytes",
                   "Request body bytes reserved now (bodies being received or in flight).",
                   GW_GET(m->budget->used));
    if (rc == 0 && m->budget)
        rc = counter(out, M "body_budget_refused_total",
                     "Requests refused with 503 because their body would pass VTN_BODY_BUDGET.",
                     GW_GET(m->budget->refused));
    if (rc == 0)
        rc = counter(out, M "api_unauthorized_total",
                     "Management API requests refused (401) by the gateway before their body, "
                     "for a missing or wrong bearer token.",
                     GW_GET(m->api_unauthorized));
    if (rc == 0)
        rc = vtn_metric_header(out, M "connections_shed_total", "counter",
                               "Connections closed to make room for a new one on a full "
                               "listener: fresh (not authenticated yet) or idle (keep-alive).");
    if (rc == 0)
        rc = vtn_metric_u64(out, M "connections_shed_total", "tier=\"fresh\"",
                            GW_GET(m->conns_shed_fresh));
    if (rc == 0)
        rc = vtn_metric_u64(out, M "connections_shed_total", "tier=\"idle\"",
                            GW_GET(m->conns_shed_idle));
    if (rc == 0)
        rc = vtn_metric_header(out, M "client_timeouts_total", "counter",
                               "Connections closed by a timer: header (408 or silent before the "
                               "first request) or idle.");
    if (rc == 0)
        rc = vtn_metric_u64(out, M "client_timeouts_total", "phase=\"header\"",
                            GW_GET(m->timeouts_header));
    if (rc == 0)
        rc = vtn_metric_u64(out, M "client_timeouts_total", "phase=\"idle\"",
                            GW_GET(m->timeouts_idle));
    if (rc == 0)
        rc = counter(out, M "retries_total", "Requests re-sent to another worker (attempt=1).",
                     GW_GET(ps->retries));
    if (rc == 0)
        rc = counter(out, M "poison_suspects_total",
                     "Requests held by a worker that went silent while still connected: answered "
                     "503 and not retried, so one request stalls at most one worker.",
                     GW_GET(ps->poison_suspects));
    if (rc == 0)
        rc = vtn_metric_header(out, M "unavailable_total", "counter",
                               "503 answers made by the gateway, by reason.");
    for (int r = 0; r < GW_UNAVAIL_COUNT && rc == 0; r++) {
        snprintf(lb, sizeof lb, "reason=\"%s\"", unavail_label(r));
        rc = vtn_metric_u64(out, M "unavailable_total", lb, GW_GET(ps->unavailable[r]));
    }
    if (rc == 0)
        rc =
            counter(out, M "worker_timeouts_total",
                    "504 answers: no reply from the worker by the deadline.", GW_GET(ps->timeouts));
    if (rc == 0)
        rc = counter(out, M "dropped_replies_total",
                     "Worker replies for unknown, answered or abandoned requests.",
                     GW_GET(ps->dropped_replies));
    if (rc == 0)
        rc = counter(out, M "worker_deaths_total",
                     "Workers declared dead (silent, unreachable or disconnected).",
                     GW_GET(ps->worker_deaths));
    if (rc == 0)
        rc = counter(out, M "protocol_errors_total", "Malformed messages from workers.",
                     GW_GET(ps->protocol_errors));
    if (rc == 0)
        rc = vtn_metric_header(out, M "tls_handshakes_total", "counter",
                               "TLS handshakes on the OpenADR listener: ok, failed (refused "
                               "certificate, protocol error, peer left) or timeout.");
    if (rc == 0)
        rc = vtn_metric_u64(out, M "tls_handshakes_total", "result=\"ok\"", GW_GET(m->tls_hs_ok));
    if (rc == 0)
        rc = vtn_metric_u64(out, M "tls_handshakes_total", "result=\"failed\"",
                            GW_GET(m->tls_hs_failed));
    if (rc == 0)
        rc = vtn_metric_u64(out, M "tls_handshakes_total", "result=\"timeout\"",
                            GW_GET(m->tls_hs_timeout));
    if (rc == 0)
        rc = counter(out, M "tls_resumed_total",
                     "Completed TLS handshakes that resumed a session (ticket or session cache).",
                     GW_GET(m->tls_resumed));
    if (rc == 0)
        rc = gauge(out, M "tls_config_generation",
                   "How many times the TLS configuration was loaded (1 at start, +1 per good "
                   "reload); 0 without TLS.",
                   GW_GET(m->tls_generation));
    if (rc == 0)
        rc = vtn_metric_header(out, M "tls_reloads_total", "counter",
                               "TLS reloads on SIGHUP; a failed one keeps the old configuration.");
    if (rc == 0)
        rc = vtn_metric_u64(out, M "tls_reloads_total", "result=\"ok\"", GW_GET(m->tls_reload_ok));
    if (rc == 0)
        rc = vtn_metric_u64(out, M "tls_reloads_total", "result=\"failed\"",
                            GW_GET(m->tls_reload_failed));
    if (rc == 0)
        rc = counter(out, M "proxy_refused_total",
                     "OpenADR requests refused by the trusted-proxy rules (identity header from "
                     "an untrusted address, no or a bad identity from the proxy).",
                     GW_GET(m->proxy_refused));
    return rc;
}
