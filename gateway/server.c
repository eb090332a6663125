/* The gateway process: listeners, worker broker, pool, ops thread, Redis
 * advertisement, signals and the drain on SIGTERM/SIGINT. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw_internal.h"
#include "push_tls.h"
#include "tls.h"
#include "vtn/id.h"
#include "vtn/log.h"

#define TICK_MS 100 /* heartbeats, liveness and deadlines */

/* A worker's reply goes to the connection that asked, or to the push job. */
static void server_req_done(void *ud, gw_req *r, const vtn_reply *rep)
{
    gw_server *s = ud;
    if (r->push)
        gw__push_req_done(s->push, r, rep);
    else
        gw__conn_req_done(ud, r, rep);
}

static void server_req_fail(void *ud, gw_req *r, int status)
{
    gw_server *s = ud;
    if (r->push)
        gw__push_req_fail(s->push, r, status);
    else
        gw__conn_req_fail(ud, r, status);
}

static const gw_pool_ops pool_ops = {
    .send = gw__broker_send,
    .done = server_req_done,
    .fail = server_req_fail,
};

static int ops_metrics(vtn_buf *out, void *ud)
{
    gw_server *s = ud;
    return gw_metrics_render(out, s->metrics, &s->pool.stats);
}

static int ops_ready(void *ud, char *why, size_t whylen)
{
    gw_server *s = ud;
    if (GW_GET(s->pool.stats.live_workers) >= 1)
        return 1;
    snprintf(why, whylen, "no live worker");
    return 0;
}

#define STALL_LOG_MS 10000 /* one loop_stall line at most this often */

/* The tick is due every TICK_MS; coming GW_LOOP_STALL_MS later than that
 * means this loop itself did not turn (a burst of TLS handshakes on a busy
 * machine, a stopped process), so no worker could be heard meanwhile. */
static void tick_check_lag(gw_server *s, uint64_t now)
{
    uint64_t last = s->tick_last;
    s->tick_last = now;
    if (!last || now < last + TICK_MS + GW_LOOP_STALL_MS)
        return;
    uint64_t lag = now - last - TICK_MS;
    gw_pool_loop_stalled(&s->pool, lag, now);
    s->stalls_unlogged++;
    if (lag > s->stall_lag_unlogged)
        s->stall_lag_unlogged = lag;
    if (s->stall_logged_at && now - s->stall_logged_at < STALL_LOG_MS)
        return;
    vtn_warn("loop_stall",
             "lag_ms=%" PRIu64 " stalls=%" PRIu64 " max_lag_ms=%" PRIu64
             " msg=\"the gateway's own event loop was late (busy or stopped); worker silence "
             "during it is not held against the workers, and requests they hold are not "
             "treated as poison\"",
             lag, s->stalls_unlogged, s->stall_lag_unlogged);
    s->stall_logged_at = now;
    s->stalls_unlogged = 0;
    s->stall_lag_unlogged = 0;
}

static void on_tick(uv_timer_t *t)
{
    gw_server *s = t->data;
    uint64_t now = uv_now(s->loop);
    tick_check_lag(s, now);
    s->workers_heard_at = now;
    gw_pool_tick(&s->pool, now);
    gw__conn_ratelog_flush(s);
}

/* ---- SIGHUP: reload certificates, keys, CA bundles and CRLs ------------- */

static void reload_start(gw_server *s);

/* On libuv's thread pool: reading files and parsing a long CRL must not
 * stall the connections on the loop. gw_tls_ctx_reload swaps the SSL_CTX
 * under its own lock; connections keep the one they started with. */
static void reload_work(uv_work_t *w)
{
    gw_server *s = w->data;
    if (s->tls_ctx)
        s->reload_rc = gw_tls_ctx_reload(s->tls_ctx, s->reload_err, sizeof s->reload_err);
    if (s->push_ctx)
        s->push_reload_rc =
            gw_push_tls_ctx_reload(s->push_ctx, s->push_reload_err, sizeof s->push_reload_err);
}

/* The push client's files (VTN_PUSH_CERT, VTN_PUSH_CA), logged like the
 * listener's; pushes that already started keep their SSL_CTX. */
static void push_reload_done(gw_server *s, int status)
{
    unsigned gen = gw_push_tls_ctx_generation(s->push_ctx);
    if (status == 0 && s->push_reload_rc == 0) {
        vtn_info("push_tls_reloaded", "generation=%u", gen);
    } else {
        char q[600];
        const char *e = status ? uv_strerror(status) : s->push_reload_err;
        vtn_error("push_tls_reload_failed", "generation=%u kept=1 error=%s", gen,
                  vtn_log_quote(q, sizeof q, e, strlen(e)));
    }
}

/* The listener's files, logged and counted as before the push client existed. */
static void tls_reload_done(gw_server *s, int status)
{
    unsigned gen = gw_tls_ctx_generation(s->tls_ctx);
    if (status == 0 && s->reload_rc == 0) {
        GW_INC(s->metrics->tls_reload_ok);
        GW_SET(s->metrics->tls_generation, gen);
        vtn_info("tls_reloaded", "generation=%u", gen);
    } else {
        char q[600];
        const char *e = status ? uv_strerror(status) : s->reload_err;
        GW_INC(s->metrics->tls_reload_failed);
        vtn_error("tls_reload_failed", "generation=%u kept=1 error=%s", gen,
                  vtn_log_quote(q, sizeof q, e, strlen(e)));
    }
}

static void reload_done(uv_work_t *w, int status)
{
    gw_server *s = w->data;
    s->reloading = 0;
    if (s->tls_ctx)
        tls_reload_done(s, status);
    if (s->push_ctx)
        push_reload_done(s, status);
    if (s->reload_again && !s->stopped) {
        s->reload_again = 0;
        reload_start(s);
    }
}

static void reload_start(gw_server *s)
{
    s->reloading = 1;
    s->reload_work.data = s;
    if (uv_queue_work(s->loop, &s->reload_work, reload_work, reload_done) != 0) {
        s->reloading = 0;
        vtn_error("tls_reload_failed", "error=\"cannot queue the reload\"");
    }
}

static void on_sighup(uv_signal_t *h, int signum)
{
    (void)signum;
    gw_server *s = h->data;
    if (!s->tls_ctx && !s->push_ctx) {
        vtn_info("reload", "msg=\"SIGHUP: no TLS configured, nothing to reload\"");
        return;
    }
    if (s->reloading) { /* files may have changed again after the running reload read them */
        s->reload_again = 1;
        return;
    }
    vtn_info("reload", "msg=\"SIGHUP: reloading TLS certificates, keys, CAs and CRLs\"");
    reload_start(s);
}

/* The TLS client for pushes to VENs: loaded at start like the listener's
 * files, so a missing or bad file stops the start instead of the first
 * push (push.c uses it). */
static int server_push_init(gw_server *s, const gw_config *cfg, char *err, size_t errlen)
{
    if (!cfg->push_cert || !*cfg->push_cert)
        return 0; /* gw__config_check made sure VTN_PUSH_CA is empty too */
    gw_push_tls_settings ps = {
        .cert = cfg->push_cert,
        .ca = cfg->push_ca,
        .protocols = cfg->push_protocols,
        .timeout_ms = cfg->push_timeout_ms,
    };
    int rc = gw_push_tls_ctx_new(&ps, &s->push_ctx, err, errlen);
    if (rc != 0)
        return rc;
    vtn_info("push_tls", "generation=%u protocols=%s timeout_ms=%lld",
             gw_push_tls_ctx_generation(s->push_ctx),
             ps.protocols && *ps.protocols ? ps.protocols : "TLSv1.2", cfg->push_timeout_ms);
    return 0;
}

/* One trusted-proxy identity header (name may be empty: not used) as the
 * next captured header *nx of the HTTP layer; its index goes to *idx. */
static int server_xhdr(gw_server *s, const char *var, const char *name, int *nx, int *idx,
                       char *err, size_t errlen)
{
    if (!name || !*name)
        return 0;
    if (gw_header_name_check(name, s->limits.xhdr_name[*nx], &s->limits.xhdr_len[*nx]) != 0) {
        snprintf(err, errlen, "%s: \"%s\" is not a header name", var, name);
        return -EINVAL;
    }
    *idx = (*nx)++;
    return 0;
}

/* TLS, the trusted proxies and the identity headers, from the settings
 * gw__config_check accepted. */
static int server_identity_init(gw_server *s, const gw_config *cfg, char *err, size_t errlen)
{
    int nx = 0, rc;
    s->xhdr_cert = s->xhdr_fp = -1;
    if ((rc = server_xhdr(s, "VTN_PROXY_CERT_HEADER", cfg->proxy_cert_header, &nx, &s->xhdr_cert,
                          err, errlen)) != 0 ||
        (rc = server_xhdr(s, "VTN_PROXY_FINGERPRINT_HEADER", cfg->proxy_fp_header, &nx, &s->xhdr_fp,
                          err, errlen)) != 0)
        return rc;
    if ((rc = gw_proxies_parse(cfg->trusted_proxies, &s->proxies, err, errlen)) != 0)
        return rc;
    if ((rc = server_push_init(s, cfg, err, errlen)) != 0)
        return rc;
    if (!cfg->tls_certs || !*cfg->tls_certs)
        return 0;
    gw_tls_settings ts = {
        .certs = cfg->tls_certs,
        .client_ca = cfg->tls_client_ca,
        .crl = cfg->tls_crl,
        /* the engine's own default would be 1.2 and 1.3; the gateway's is
         * OpenADR 2.0b's TLS 1.2 */
        .protocols = cfg->tls_protocols && *cfg->tls_protocols ? cfg->tls_protocols : "TLSv1.2",
        .handshake_timeout_ms = cfg->tls_handshake_timeout_ms,
        .resumption = cfg->tls_resumption,
        .session_cache_size = cfg->tls_session_cache,
        .ticket_keys = cfg->tls_ticket_keys,
    };
    if ((rc = gw_tls_ctx_new(&ts, &s->tls_ctx, err, errlen)) != 0)
        return rc;
    GW_SET(s->metrics->tls_generation, gw_tls_ctx_generation(s->tls_ctx));
    vtn_info("tls",
             "generation=%u protocols=%s crl=%s handshake_timeout_ms=%lld resumption=%s "
             "ticket_keys=%s",
             gw_tls_ctx_generation(s->tls_ctx), ts.protocols,
             cfg->tls_crl && *cfg->tls_crl ? "on" : "off", cfg->tls_handshake_timeout_ms,
             ts.resumption && *ts.resumption ? ts.resumption : "tickets",
             ts.ticket_keys && *ts.ticket_keys ? "file" : "process");
    return 0;
}

static void close_handle(uv_handle_t *h)
{
    if (h->type != UV_UNKNOWN_HANDLE && !uv_is_closing(h))
        uv_close(h, NULL);
}

/* Ends the loop: every connection closed (requests cancelled), DISCONNECT to
 * workers, every handle closed. */
static void server_finish(gw_server *s)
{
    if (s->stopped)
        return;
    s->stopped = 1;
    gw_push_close(&s->push);
    gw__conns_close_all(s);
    gw_pool_disconnect_all(&s->pool);
    gw__listener_close(&s->listeners[0]);
    gw__listener_close(&s->listeners[1]);
    close_handle((uv_handle_t *)&s->tick);
    close_handle((uv_handle_t *)&s->drain);
    /* Signal handles stay (unreferenced) until the process is done, so a
     * second signal during the last clean-up is not fatal. */
    uv_unref((uv_handle_t *)&s->sigterm);
    uv_unref((uv_handle_t *)&s->sigint);
    uv_unref((uv_handle_t *)&s->sighup);
    gw__broker_close(&s->broker);
    vtn_info("stopping", "workers_told=%" PRIu64, (uint64_t)GW_GET(s->pool.stats.live_workers));
}

static void on_drain_timer(uv_timer_t *t)
{
    gw_server *s = t->data;
    if (s->nconns)
        vtn_warn("drain_timeout", "connections_closed=%zu", s->nconns);
    server_finish(s);
}

static void server_conn_gone(gw_server *s)
{
    /* Finish from the top of the loop, not from inside a connection's callback. */
    if (s->draining && !s->stopped && s->nconns == 0)
        uv_timer_start(&s->drain, on_drain_timer, 0, 0);
}

static void on_signal(uv_signal_t *h, int signum)
{
    gw_server *s = h->data;
    if (s->stopped)
        return; /* already on the way out */
    if (s->draining) {
        vtn_warn("shutdown_now", "signal=%d", signum);
        server_finish(s);
        return;
    }
    s->draining = 1;
    vtn_info("draining", "signal=%d connections=%zu inflight=%" PRIu64 " pending=%" PRIu64, signum,
             s->nconns, (uint64_t)GW_GET(s->pool.stats.inflight),
             (uint64_t)GW_GET(s->pool.stats.pending));
    vtn_ops_set_draining(s->ops);
    gw__listener_close(&s->listeners[0]);
    gw__listener_close(&s->listeners[1]);
    gw_push_drain(s->push);
    gw__conns_drain(s);
    /* In-flight requests end by their deadline at the latest (504). */
    uv_timer_start(&s->drain, on_drain_timer, (uint64_t)s->cfg->request_timeout_ms + 500, 0);
    server_conn_gone(s);
}

/* VTN_BODY_BUDGET, or from the machine: 1/16 of its memory (or of the
 * cgroup's limit) between 64 MiB and 2 GiB, never under one full body. */
static size_t server_body_budget(const gw_config *cfg)
{
    uint64_t b = (uint64_t)cfg->body_budget;
    if (b == 0) {
        uint64_t mem = uv_get_total_memory(), lim = uv_get_constrained_memory();
        if (lim && lim < mem)
            mem = lim;
        b = mem / 16;
        if (b < ((uint64_t)64 << 20))
            b = (uint64_t)64 << 20;
        if (b > ((uint64_t)2 << 30))
            b = (uint64_t)2 << 30;
    }
    if (b < (uint64_t)cfg->max_body_bytes)
        b = (uint64_t)cfg->max_body_bytes;
    return (size_t)b;
}

static int is_wildcard(const char *ep)
{
    return strstr(ep, "://0.0.0.0:") || strstr(ep, "://*:") || strstr(ep, "://[::]:");
}

/* The console is optional: without its files the gateway serves the API
 * and says so once, here, with where it looked. */
static void server_ui_load(gw_server *s, const gw_config *cfg)
{
    char why[512], line[600], q[700];
    if (gw_ui_load(&s->ui, cfg->ui_dir, (size_t)cfg->ui_max_bytes, why, sizeof why) == 0) {
        vtn_info("ui", "url=http://%s/ui/ files=%zu bytes=%zu", s->listeners[1].addr, s->ui.n,
                 s->ui.bytes);
        return;
    }
    snprintf(line, sizeof line, "the console is not available: %s", why);
    vtn_warn("ui", "msg=%s", vtn_log_quote(q, sizeof q, line, strlen(line)));
}

int gw_server_init(gw_server *s, uv_loop_t *loop, const gw_config *cfg, char *err, size_t errlen)
{
    memset(s, 0, sizeof *s);
    s->loop = loop;
    s->cfg = cfg;
    s->limits.max_header = (size_t)cfg->max_header_bytes;
    s->limits.max_body = (size_t)cfg->max_body_bytes;
    s->budget.max = server_body_budget(cfg);
    s->limits.budget = &s->budget;
    s->limits.retry_after = s->retry_after;
    s->limits.max_url = (size_t)cfg->max_url;
    s->api_limits = s->limits;
    s->api_limits.max_body = (size_t)cfg->api_max_body_bytes;
    s->api_limits.max_url = (size_t)cfg->api_max_url;
    s->api_token_len = cfg->api_token ? strlen(cfg->api_token) : 0;
    s->on_conn_gone = server_conn_gone;
    gw_list_init(&s->conns);
    for (int k = 0; k < 2; k++) {
        gw_list_init(&s->fresh[k]);
        gw_list_init(&s->idle[k]);
    }
    s->max_conns_kind[GW_LISTEN_OADR] = (size_t)cfg->max_connections;
    s->max_conns_kind[GW_LISTEN_API] = (size_t)cfg->api_max_connections;
    snprintf(s->retry_after, sizeof s->retry_after, "Retry-After: %lld\r\n", cfg->retry_after_s);
    vtn_buf_init(&s->tls_plain, GW_IN_MAX + GW_READ_BUF + 64 * 1024);
    vtn_buf_init(&s->tls_wire, ((size_t)66 << 20) + 64 * 1024);
    /* Ids are unique across gateways: a random start, then a counter. */
    if (vtn_random64(&s->id_base) != 0) {
        snprintf(err, errlen, "no random numbers from the kernel");
        return -EIO;
    }
    s->metrics = calloc(1, sizeof *s->metrics);
    if (!s->metrics) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    s->metrics->budget = &s->budget;
    size_t max_conns = (size_t)cfg->max_connections + (size_t)cfg->api_max_connections;
    int rc = gw_pool_init(&s->pool, &pool_ops, s, (uint64_t)cfg->request_timeout_ms,
                          (size_t)cfg->max_pending, max_conns + (size_t)cfg->push_concurrency);
    if (rc == 0)
        rc = gw_peers_init(&s->peers, max_conns, (uint32_t)s->id_base);
    if (rc) {
        snprintf(err, errlen, "out of memory");
        return rc;
    }
    if ((rc = gw_cidrs_parse("VTN_MAX_CONNECTIONS_PER_IP_EXEMPT", cfg->conn_exempt, &s->conn_exempt,
                             err, errlen)) != 0)
        return rc;
    uv_timer_init(loop, &s->tick);
    s->tick.data = s;
    uv_timer_init(loop, &s->drain);
    s->drain.data = s;
    uv_signal_init(loop, &s->sigterm);
    s->sigterm.data = s;
    uv_signal_init(loop, &s->sigint);
    s->sigint.data = s;
    uv_signal_init(loop, &s->sighup);
    s->sighup.data = s;
    if ((rc = server_identity_init(s, cfg, err, errlen)) != 0)
        return rc;

    if ((rc = gw__broker_init(&s->broker, s, cfg->zmq_bind, err, errlen)) != 0)
        return rc;
    vtn_info("listen", "kind=zmq addr=%s", s->broker.endpoint);
    if ((rc = gw__listener_start(s, &s->listeners[0], GW_LISTEN_OADR, cfg->oadr_listen, err,
                                 errlen)) != 0)
        return rc;
    s->listeners[0].tls_ctx = s->tls_ctx; /* the API listener stays plain HTTP */
    vtn_info("oadr_mode", "mode=%s", s->tls_ctx ? "tls" : s->proxies.n ? "trusted-proxy" : "plain");
    if ((rc = gw__listener_start(s, &s->listeners[1], GW_LISTEN_API, cfg->api_listen, err,
                                 errlen)) != 0)
        return rc;
    if ((rc = vtn_ops_start(cfg->ops_listen, ops_metrics, ops_ready, s, &s->ops, err, errlen)) != 0)
        return rc;

    const char *adv =
        cfg->zmq_advertise && *cfg->zmq_advertise ? cfg->zmq_advertise : s->broker.endpoint;
    if (adv == s->broker.endpoint && is_wildcard(adv))
        vtn_warn("advertise_wildcard",
                 "endpoint=%s msg=\"workers cannot connect to a wildcard address; set "
                 "VTN_ZMQ_ADVERTISE\"",
                 adv);
    if (gw_advert_wanted(cfg)) {
        if ((rc = gw_advert_start(cfg, adv, s->metrics, &s->pool.stats, &s->advert, err, errlen)) !=
            0) {
            if (rc != -EINVAL)
                snprintf(err, errlen, "Redis advert: %s", strerror(-rc));
            return rc;
        }
        vtn_info("advertise", "endpoint=%s key=%s", adv, "vtn:gateways");
    } else {
        vtn_info("advertise",
                 "endpoint=%s key=none msg=\"VTN_REDIS_URL empty: workers need "
                 "VTN_GATEWAYS\"",
                 adv);
    }

    if ((rc = gw_push_start(s, &s->push, err, errlen)) != 0)
        return rc;
    server_ui_load(s, cfg);

    uv_signal_start(&s->sigterm, on_signal, SIGTERM);
    uv_signal_start(&s->sigint, on_signal, SIGINT);
    uv_signal_start(&s->sighup, on_sighup, SIGHUP);
    uv_timer_start(&s->tick, on_tick, TICK_MS, TICK_MS);
    if (!s->api_token_len)
        vtn_warn("config", "var=VTN_API_TOKEN msg=\"unset: management API bodies are read "
                           "before a worker checks the token\"");
    vtn_info("started",
             "max_connections=%lld api_max_connections=%lld max_connections_per_ip=%lld "
             "read_timeout_ms=%lld body_budget=%zu request_timeout_ms=%lld max_pending=%lld",
             cfg->max_connections, cfg->api_max_connections, cfg->max_conns_per_ip,
             cfg->read_timeout_ms, s->budget.max, cfg->request_timeout_ms, cfg->max_pending);
    return 0;
}

int gw_server_run(gw_server *s)
{
    uv_run(s->loop, UV_RUN_DEFAULT);
    return 0;
}

static void walk_close(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

void gw_server_free(gw_server *s)
{
    if (!s->stopped) {
        /* start-up failed part way: close what exists and let the loop settle */
        s->stopped = 1;
        uv_walk(s->loop, walk_close, NULL);
        uv_run(s->loop, UV_RUN_DEFAULT);
    }
    gw__broker_term(&s->broker); /* lingers briefly so the DISCONNECTs leave */
    gw_advert_stop(&s->advert);  /* ZREM */
    vtn_ops_stop(&s->ops);
    uv_walk(s->loop, walk_close, NULL); /* the signal handles */
    uv_run(s->loop, UV_RUN_DEFAULT);
    gw_pool_free(&s->pool);
    free(s->metrics);
    s->metrics = NULL;
    vtn_buf_free(&s->tls_plain);
    vtn_buf_free(&s->tls_wire);
    gw_tls_ctx_free(&s->tls_ctx); /* SSL_CTXs still used by connections went with them */
    gw_push_tls_ctx_free(&s->push_ctx);
    gw_proxies_free(&s->proxies);
    gw_proxies_free(&s->conn_exempt);
    gw_peers_free(&s->peers);
    gw_ui_free(&s->ui);
}
