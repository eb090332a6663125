/* The gateway process: listeners, worker broker, pool, ops thread, Redis
 * advertisement, signals and the drain on SIGTERM/SIGINT. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw_internal.h"
#include "vtn/id.h"
#include "vtn/log.h"

#define TICK_MS 100 /* heartbeats, liveness and deadlines */

static const gw_pool_ops pool_ops = {
    .send = gw__broker_send,
    .done = gw__conn_req_done,
    .fail = gw__conn_req_fail,
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

static void on_tick(uv_timer_t *t)
{
    gw_server *s = t->data;
    gw_pool_tick(&s->pool, uv_now(s->loop));
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

void gw__server_conn_gone(gw_server *s)
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
    gw__conns_drain(s);
    /* In-flight requests end by their deadline at the latest (504). */
    uv_timer_start(&s->drain, on_drain_timer, (uint64_t)s->cfg->request_timeout_ms + 500, 0);
    gw__server_conn_gone(s);
}

static int is_wildcard(const char *ep)
{
    return strstr(ep, "://0.0.0.0:") || strstr(ep, "://*:") || strstr(ep, "://[::]:");
}

int gw_server_init(gw_server *s, uv_loop_t *loop, const gw_config *cfg, char *err, size_t errlen)
{
    memset(s, 0, sizeof *s);
    s->loop = loop;
    s->cfg = cfg;
    s->limits.max_header = (size_t)cfg->max_header_bytes;
    s->limits.max_body = (size_t)cfg->max_body_bytes;
    gw_list_init(&s->conns);
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
    int rc = gw_pool_init(&s->pool, &pool_ops, s, (uint64_t)cfg->request_timeout_ms,
                          (size_t)cfg->max_pending, (size_t)cfg->max_connections);
    if (rc) {
        snprintf(err, errlen, "out of memory");
        return rc;
    }
    uv_timer_init(loop, &s->tick);
    s->tick.data = s;
    uv_timer_init(loop, &s->drain);
    s->drain.data = s;
    uv_signal_init(loop, &s->sigterm);
    s->sigterm.data = s;
    uv_signal_init(loop, &s->sigint);
    s->sigint.data = s;

    if ((rc = gw__broker_init(&s->broker, s, cfg->zmq_bind, err, errlen)) != 0)
        return rc;
    vtn_info("listen", "kind=zmq addr=%s", s->broker.endpoint);
    if ((rc = gw__listener_start(s, &s->listeners[0], GW_LISTEN_OADR, cfg->oadr_listen, err,
                                 errlen)) != 0)
        return rc;
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
    if (cfg->redis_url && *cfg->redis_url) {
        if ((rc = gw_advert_start(cfg->redis_url, adv, &s->advert)) != 0) {
            snprintf(err, errlen, "VTN_REDIS_URL \"%s\": %s", cfg->redis_url,
                     rc == -EINVAL ? "not a redis:// or redis+unix:// URL" : strerror(-rc));
            return rc;
        }
        vtn_info("advertise", "endpoint=%s key=%s", adv, "vtn:gateways");
    } else {
        vtn_info("advertise",
                 "endpoint=%s key=none msg=\"VTN_REDIS_URL empty: workers need "
                 "VTN_GATEWAYS\"",
                 adv);
    }

    uv_signal_start(&s->sigterm, on_signal, SIGTERM);
    uv_signal_start(&s->sigint, on_signal, SIGINT);
    uv_timer_start(&s->tick, on_tick, TICK_MS, TICK_MS);
    vtn_info("started", "max_connections=%lld request_timeout_ms=%lld max_pending=%lld",
             cfg->max_connections, cfg->request_timeout_ms, cfg->max_pending);
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
}
