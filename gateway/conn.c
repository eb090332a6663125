/* Client connections on libuv: accept, read, write, timers, close.
 *
 * One gw_conn holds the socket, the timer, the TLS engine (when the listener
 * has one), the HTTP layer, the write queue and the request in flight. Socket
 * bytes enter through conn_on_wire_bytes() and leave through conn_send(),
 * the two places a TLS layer sits. The object is freed only in the close
 * callback of its last handle, and a closing connection first takes its
 * request out of the worker pool, so a late worker reply finds nothing to
 * write to (it is dropped and counted). */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "gw_internal.h"
#include "tls.h"
#include "vtn/auth.h"
#include "vtn/fingerprint.h"
#include "vtn/log.h"
#include "vtn/net.h"
#include "vtn/time.h"

#define WQ_MAX (((size_t)64 << 20) + ((size_t)2 << 20)) /* one worker reply + head */
#define LINGER_MS 2000 /* after an error answer, read and discard before closing */
#define LINGER_MAX ((size_t)8 << 20)

enum { T_NONE = 0, T_HANDSHAKE, T_IDLE, T_HEAD, T_BODY, T_FLUSH, T_LINGER };

static void conn_after_io(gw_conn *c, int from_read);
static void conn_close(gw_conn *c);
static void conn_on_timer(uv_timer_t *t);
static void conn_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void conn_on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf);

/* ---- output --------------------------------------------------------------- */

static void conn_on_write(uv_write_t *req, int status);

/* Reads from the socket unless already reading (a failure to start leaves
 * the flag clear, so the next event tries again). */
static void conn_read_start(gw_conn *c)
{
    if (!c->reading && uv_read_start((uv_stream_t *)&c->tcp, conn_alloc, conn_on_read) == 0)
        c->reading = 1;
}

static void conn_flush(gw_conn *c)
{
    if (c->writing || c->wq_next.len == 0 || c->closing)
        return;
    vtn_buf t = c->wq;
    c->wq = c->wq_next;
    c->wq_next = t;
    uv_buf_t b = uv_buf_init(c->wq.data, (unsigned)c->wq.len);
    c->wreq.data = c;
    if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, conn_on_write) != 0) {
        vtn_buf_reset(&c->wq);
        conn_close(c);
        return;
    }
    c->writing = 1;
}

/* Writes to the socket now when nothing is queued (one writev for head and
 * body); whatever the kernel does not take is copied to the queue. 0 all
 * written, 1 queued, <0 broken. */
static int conn_write_raw(gw_conn *c, const gw_iov *iov, int n)
{
    if (c->closing)
        return -EPIPE;
    size_t total = 0, skip = 0;
    for (int i = 0; i < n; i++)
        total += iov[i].n;
    if (!c->writing && c->wq_next.len == 0) {
        uv_buf_t b[4];
        int nb = 0;
        for (int i = 0; i < n && nb < 4; i++)
            if (iov[i].n)
                b[nb++] = uv_buf_init((char *)iov[i].p, (unsigned)iov[i].n);
        int r = nb ? uv_try_write((uv_stream_t *)&c->tcp, b, (unsigned)nb) : 0;
        if (r == UV_EAGAIN || r == UV_ENOSYS)
            r = 0;
        else if (r < 0)
            return r;
        skip = (size_t)r;
        if (skip >= total)
            return 0;
    }
    for (int i = 0; i < n; i++) {
        if (skip >= iov[i].n) {
            skip -= iov[i].n;
            continue;
        }
        if (vtn_buf_append(&c->wq_next, iov[i].p + skip, iov[i].n - skip))
            return -ENOBUFS;
        skip = 0;
    }
    conn_flush(c);
    return 1;
}

/* Everything for the peer passes here (the TLS layer encrypts it). */
static int conn_send(gw_conn *c, const gw_iov *iov, int n)
{
    if (c->tls) {
        /* head and body in one record: one MAC and record header instead of
         * two, and the reply still leaves in one segment */
        gw_tls_iov tv[4];
        int k = 0;
        for (int i = 0; i < n && k < 4; i++)
            tv[k++] = (gw_tls_iov){iov[i].p, iov[i].n};
        vtn_buf *wire = &c->srv->tls_wire;
        vtn_buf_reset(wire);
        int rc = gw_tls_writev(c->tls, tv, k, wire);
        if (rc < 0)
            return rc;
        gw_iov w = {wire->data, wire->len};
        return conn_write_raw(c, &w, 1);
    }
    return conn_write_raw(c, iov, n);
}

static void conn_on_write(uv_write_t *req, int status)
{
    gw_conn *c = req->data;
    c->writing = 0;
    if (c->closing)
        return;
    if (status < 0) {
        conn_close(c);
        return;
    }
    /* A big reply should not pin its buffer to a keep-alive connection. */
    if (c->wq.cap > 256 * 1024) {
        vtn_buf_free(&c->wq);
        vtn_buf_init(&c->wq, WQ_MAX);
    } else {
        vtn_buf_reset(&c->wq);
    }
    if (c->wq_next.len) {
        conn_flush(c);
        return;
    }
    gw_http_resume(&c->http);
    conn_after_io(c, 0);
}

/* ---- close ------------------------------------------------------------------ */

static void conn_on_closed(uv_handle_t *h)
{
    gw_conn *c = h->data;
    if (--c->nclose)
        return;
    gw_http_free(&c->http);
    vtn_buf_free(&c->req.env);
    vtn_buf_free(&c->wq);
    vtn_buf_free(&c->wq_next);
    if (c->tls)
        gw_tls_free(&c->tls);
    free(c);
}

static void conn_close(gw_conn *c)
{
    if (c->closing)
        return;
    gw_server *s = c->srv;
    if (c->tls && c->hs_done && !c->eof && !c->lingering && !c->writing && !c->wq_next.len) {
        /* say goodbye in TLS (idle timeout, drain) so the client can tell
         * our close from a truncation; best effort, never queued */
        vtn_buf *wire = &s->tls_wire;
        vtn_buf_reset(wire);
        if (gw_tls_shutdown(c->tls, wire) == 0 && wire->len) {
            uv_buf_t b = uv_buf_init(wire->data, (unsigned)wire->len);
            (void)uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
        }
    }
    c->closing = 1;
    gw_pool_cancel(&s->pool, &c->req);
    if (c->http.error_status)
        gw_metrics_count(s->metrics, GW_ROUTE_OTHER, c->http.error_status, 0);
    gw_list_del(&c->link);
    gw_list_del(&c->shed);
    c->shed_tier = GW_SHED_NONE;
    if (c->counted)
        gw_peers_release(&s->peers, &c->peer);
    c->counted = 0;
    s->nconns--;
    s->nconns_kind[c->kind]--;
    GW_SET(s->metrics->conns_open, s->nconns);
    GW_SET(s->metrics->api_conns_open, s->nconns_kind[GW_LISTEN_API]);
    c->nclose = 2;
    uv_close((uv_handle_t *)&c->tcp, conn_on_closed);
    uv_close((uv_handle_t *)&c->timer, conn_on_closed);
    if (s->draining && s->on_conn_gone)
        s->on_conn_gone(s);
}

static void conn_on_shutdown(uv_shutdown_t *req, int status)
{
    gw_conn *c = req->data;
    if (status < 0 && !c->closing)
        conn_close(c);
}

static void conn_timer_start(gw_conn *c, int mode, uint64_t ms)
{
    c->timer_mode = (uint8_t)mode;
    uv_timer_start(&c->timer, conn_on_timer, ms, 0);
}

/* After an error answer the client may still be sending (a 413 body, the
 * rest of a pipeline); closing with unread data would reset the connection
 * and could destroy the answer before the client reads it. So shut down our
 * side, read and discard for a while, then close. */
static void conn_linger(gw_conn *c)
{
    if (c->lingering || c->closing)
        return;
    c->lingering = 1;
    if (c->tls) {
        vtn_buf *wire = &c->srv->tls_wire;
        vtn_buf_reset(wire);
        if (gw_tls_shutdown(c->tls, wire) == 0 && wire->len) {
            gw_iov w = {wire->data, wire->len};
            (void)conn_write_raw(c, &w, 1);
        }
    }
    c->sreq.data = c;
    if (c->eof || uv_shutdown(&c->sreq, (uv_stream_t *)&c->tcp, conn_on_shutdown) != 0) {
        conn_close(c);
        return;
    }
    conn_read_start(c);
    conn_timer_start(c, T_LINGER, LINGER_MS);
}

/* ---- state after every event ------------------------------------------------ */

static int conn_shed_tier(const gw_conn *c)
{
    if (c->tls ? !c->hs_done : !c->served)
        return GW_SHED_FRESH;
    if (c->http.state == GW_HTTP_IDLE && !c->writing && !c->wq_next.len)
        return GW_SHED_IDLE;
    return GW_SHED_NONE;
}

/* Keeps c in the list of its tier; a connection entering a list goes to its
 * tail, so each list is in order of how long its members have been there. */
static void conn_shed_update(gw_conn *c)
{
    int tier = conn_shed_tier(c);
    if (tier == c->shed_tier)
        return;
    gw_list_del(&c->shed);
    c->shed_tier = (uint8_t)tier;
    if (tier == GW_SHED_FRESH)
        gw_list_add_tail(&c->srv->fresh[c->kind], &c->shed);
    else if (tier == GW_SHED_IDLE)
        gw_list_add_tail(&c->srv->idle[c->kind], &c->shed);
}

/* A reading timer: its own limit, cut short by VTN_READ_TIMEOUT counted
 * from the request's first byte. */
static uint64_t conn_read_timer(const gw_conn *c, long long limit_ms)
{
    uint64_t now = uv_now(c->srv->loop);
    uint64_t end = c->read_start + (uint64_t)c->srv->cfg->read_timeout_ms;
    uint64_t left = end > now ? end - now : 1;
    return left < (uint64_t)limit_ms ? left : (uint64_t)limit_ms;
}

static void conn_after_io(gw_conn *c, int from_read)
{
    if (c->closing || c->lingering)
        return;
    gw_server *s = c->srv;
    gw_http *h = &c->http;
    int pending_out = c->writing || c->wq_next.len;

    conn_shed_update(c);
    if (h->state == GW_HTTP_DEAD) {
        if (pending_out) { /* conn_on_write comes back here, unless the client stopped reading */
            if (c->timer_mode != T_FLUSH)
                conn_timer_start(c, T_FLUSH, (uint64_t)s->cfg->idle_timeout_ms);
            return;
        }
        if (h->sent_close)
            conn_linger(c);
        else
            conn_close(c);
        return;
    }
    if (c->eof) { /* the TLS peer sent close_notify */
        conn_close(c);
        return;
    }

    if (c->tls && !c->hs_done) {
        /* from accept to the end of the handshake only the handshake timer
         * runs; the header timeout starts when HTTP can start */
        conn_read_start(c);
        if (c->timer_mode != T_HANDSHAKE)
            conn_timer_start(c, T_HANDSHAKE, (uint64_t)s->cfg->tls_handshake_timeout_ms);
        return;
    }

    if (s->draining && h->state == GW_HTTP_IDLE && !pending_out) {
        conn_close(c); /* between requests: nothing more to do for this client */
        return;
    }

    int want_read = gw_http_buffered(h) < GW_IN_HIGH;
    if (want_read) {
        conn_read_start(c);
    } else if (c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = 0;
    }

    const gw_config *cfg = s->cfg;
    switch (h->state) {
    case GW_HTTP_IDLE:
        /* before the first request the header timeout applies (a connection
         * that sends nothing is not a keep-alive client) */
        if (c->timer_mode != T_IDLE || c->timer_seq != h->begun) {
            conn_timer_start(c, T_IDLE,
                             (uint64_t)(h->begun ? cfg->idle_timeout_ms : cfg->header_timeout_ms));
            c->timer_seq = h->begun;
        }
        break;
    case GW_HTTP_HEAD:
        if (c->timer_mode != T_HEAD || c->timer_seq != h->begun) {
            c->read_start = uv_now(s->loop);
            conn_timer_start(c, T_HEAD, conn_read_timer(c, cfg->header_timeout_ms));
            c->timer_seq = h->begun;
        }
        break;
    case GW_HTTP_BODY:
        if (c->timer_seq != h->begun) { /* head and body arrived in one read */
            c->read_start = uv_now(s->loop);
            c->timer_seq = h->begun;
        }
        if (c->timer_mode != T_BODY || from_read)
            conn_timer_start(c, T_BODY, conn_read_timer(c, cfg->idle_timeout_ms));
        break;
    case GW_HTTP_FLUSH:
        if (c->timer_mode != T_FLUSH || c->timer_seq != h->begun) {
            conn_timer_start(c, T_FLUSH, (uint64_t)cfg->idle_timeout_ms);
            c->timer_seq = h->begun;
        }
        break;
    default: /* WAIT: the pool enforces the request deadline */
        if (c->timer_mode != T_NONE) {
            uv_timer_stop(&c->timer);
            c->timer_mode = T_NONE;
        }
        break;
    }
}

/* ---- TLS handshake bookkeeping --------------------------------------------- */

int gw__ratelog_allow(gw_ratelog *r, uint64_t now_ms, uint64_t *suppressed)
{
    if (r->refill_ms == 0) {
        r->tokens = GW_RATELOG_BURST;
        r->refill_ms = now_ms;
    }
    uint64_t add = (now_ms - r->refill_ms) / GW_RATELOG_EVERY_MS;
    if (add) {
        uint64_t t = r->tokens + add;
        r->tokens = t > GW_RATELOG_BURST ? GW_RATELOG_BURST : (uint32_t)t;
        r->refill_ms += add * GW_RATELOG_EVERY_MS;
    }
    if (r->tokens == 0) {
        r->suppressed++;
        return 0;
    }
    r->tokens--;
    *suppressed = r->suppressed;
    r->suppressed = 0;
    return 1;
}

void gw__conn_ratelog_flush(gw_server *s)
{
    uint64_t now = uv_now(s->loop), n;
    if (s->hslog.suppressed && s->hslog.refill_ms &&
        now - s->hslog.refill_ms >= GW_RATELOG_EVERY_MS) {
        uint64_t left = s->hslog.suppressed;
        s->hslog.suppressed = 0; /* this line says it; not counted as left out */
        if (gw__ratelog_allow(&s->hslog, now, &n))
            vtn_warn("tls_handshake_failed", "suppressed=%" PRIu64 " msg=\"log lines left out\"",
                     left);
        else
            s->hslog.suppressed = left;
    }
    if (s->pxlog.suppressed && s->pxlog.refill_ms &&
        now - s->pxlog.refill_ms >= GW_RATELOG_EVERY_MS) {
        uint64_t left = s->pxlog.suppressed;
        s->pxlog.suppressed = 0;
        if (gw__ratelog_allow(&s->pxlog, now, &n))
            vtn_warn("proxy_refused", "suppressed=%" PRIu64 " msg=\"log lines left out\"", left);
        else
            s->pxlog.suppressed = left;
    }
}

/* A handshake that did not complete: one warn line (rate-limited) with the
 * reason, which is what an operator needs to help a VEN that cannot connect. */
static void conn_hs_failed(gw_conn *c, const char *reason)
{
    gw_server *s = c->srv;
    uint64_t left;
    if (!gw__ratelog_allow(&s->hslog, uv_now(s->loop), &left))
        return;
    char q[400];
    vtn_log_quote(q, sizeof q, reason, strlen(reason));
    if (left)
        vtn_warn("tls_handshake_failed", "remote=%s reason=%s suppressed=%" PRIu64, c->remote, q,
                 left);
    else
        vtn_warn("tls_handshake_failed", "remote=%s reason=%s", c->remote, q);
}

static void conn_hs_done(gw_conn *c)
{
    gw_metrics *m = c->srv->metrics;
    c->hs_done = 1;
    GW_INC(m->tls_hs_ok);
    int resumed = gw_tls_resumed(c->tls);
    if (resumed)
        GW_INC(m->tls_resumed);
    vtn_debug("tls_handshake", "remote=%s version=%s cipher=%s resumed=%d fingerprint=%s",
              c->remote, gw_tls_version(c->tls), gw_tls_cipher(c->tls), resumed,
              gw_tls_fingerprint(c->tls));
}

static void conn_on_timer(uv_timer_t *t)
{
    gw_conn *c = t->data;
    gw_metrics *m = c->srv->metrics;
    int mode = c->timer_mode;
    c->timer_mode = T_NONE;
    if (c->closing)
        return;
    if (mode == T_LINGER) {
        conn_close(c);
        return;
    }
    if (mode == T_HANDSHAKE) {
        GW_INC(m->tls_hs_timeout);
        conn_hs_failed(c, "handshake timeout");
        conn_close(c);
        return;
    }
    if (mode == T_FLUSH) { /* the client does not read what we write */
        GW_INC(m->timeouts_idle);
        conn_close(c);
        return;
    }
    if (c->http.state == GW_HTTP_HEAD || c->http.state == GW_HTTP_BODY ||
        (c->http.state == GW_HTTP_IDLE && c->http.begun == 0))
        GW_INC(m->timeouts_header);
    else
        GW_INC(m->timeouts_idle);
    gw_http_timeout(&c->http);
    conn_after_io(c, 0);
}

/* ---- input ------------------------------------------------------------------ */

/* A storm of TLS handshakes (each costs a signature, and libuv hands over
 * up to 1024 ready sockets per poll, again while batches stay full) can
 * hold this loop in one turn for seconds, the tick with the heartbeats
 * waiting behind it. As a worker does between the requests it starts, every
 * GW_LOOP_STALL_MS of such a turn the gateway reads what the workers sent and
 * sends the heartbeats due, so neither side hears silence from a busy
 * gateway. Called before a handshake step, where this connection has no
 * request a worker could answer and touches no shared scratch buffer yet. */
static void conn_keep_workers_heard(gw_server *s)
{
    uv_update_time(s->loop);
    uint64_t now = uv_now(s->loop);
    if (now < s->workers_heard_at + GW_LOOP_STALL_MS)
        return;
    s->workers_heard_at = now;
    gw__broker_drain(&s->broker);
    gw_pool_heartbeat(&s->pool, now);
}

/* Everything from the peer enters here (the TLS layer decrypts it). */
static void conn_on_wire_bytes(gw_conn *c, const char *p, size_t n)
{
    if (c->tls) {
        gw_server *s = c->srv;
        if (!c->hs_done)
            conn_keep_workers_heard(s);
        vtn_buf_reset(&s->tls_plain);
        vtn_buf_reset(&s->tls_wire);
        if (n)
            c->hs_bytes = 1;
        int rc = gw_tls_feed(c->tls, p, n, &s->tls_plain, &s->tls_wire);
        if (!c->hs_done && gw_tls_handshake_done(c->tls))
            conn_hs_done(c);
        if (s->tls_wire.len) {
            gw_iov w = {s->tls_wire.data, s->tls_wire.len};
            if (conn_write_raw(c, &w, 1) < 0)
                rc = -EPIPE;
        }
        if (rc < 0) {
            if (!c->hs_done) {
                GW_INC(s->metrics->tls_hs_failed);
                conn_hs_failed(c, rc == -EPROTO ? gw_tls_error(c->tls) : "connection lost");
            } else if (rc == -EPROTO) {
                char q[400];
                const char *e = gw_tls_error(c->tls);
                vtn_info("tls_error", "remote=%s reason=%s", c->remote,
                         vtn_log_quote(q, sizeof q, e, strlen(e)));
            }
            conn_close(c);
            return;
        }
        if (s->tls_plain.len)
            (void)gw_http_feed(&c->http, s->tls_plain.data, s->tls_plain.len);
        if (rc == GW_TLS_EOF)
            c->eof = 1;
        return;
    }
    (void)gw_http_feed(&c->http, p, n);
}

static void conn_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    gw_conn *c = h->data;
    /* One buffer for all connections: libuv calls read_cb right after
     * alloc_cb, and the HTTP layer copies what it keeps. */
    *buf = uv_buf_init(c->srv->rbuf, sizeof c->srv->rbuf);
}

static void conn_on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    gw_conn *c = st->data;
    if (c->closing)
        return;
    if (nread > 0) {
        if (c->lingering) {
            c->lingered += (size_t)nread;
            if (c->lingered > LINGER_MAX)
                conn_close(c);
            return;
        }
        conn_on_wire_bytes(c, buf->base, (size_t)nread);
        conn_after_io(c, 1);
        return;
    }
    if (nread == 0)
        return;
    /* EOF or an error. Like nginx without proxy_ignore_client_abort, a
     * client that stops sending has gone away: close now and cancel its
     * request (a half-closing client that still waits for answers is not
     * an HTTP/1.1 client we need to serve). */
    c->eof = 1;
    if (c->tls && !c->hs_done && c->hs_bytes) {
        /* a peer that connects and leaves without a byte is a port probe,
         * not a handshake */
        GW_INC(c->srv->metrics->tls_hs_failed);
        conn_hs_failed(c, "connection closed during the handshake");
    }
    conn_close(c);
}

/* ---- requests ---------------------------------------------------------------- */

/* The largest envelope: a body, a header's worth of fields, framing. */
static size_t conn_env_max(const gw_config *cfg)
{
    return (size_t)cfg->max_body_bytes + 3 * (size_t)cfg->max_header_bytes + 4096;
}

/* The request is answered: its envelope (a copy of the body) goes too when
 * big, before the answer lets the next pipelined request in. */
static void conn_req_finished(gw_conn *c)
{
    if (c->req.env.cap > GW_KEEP_BUF) {
        vtn_buf_free(&c->req.env);
        vtn_buf_init(&c->req.env, conn_env_max(c->srv->cfg));
    } else {
        vtn_buf_reset(&c->req.env);
    }
}

static void conn_respond(gw_conn *c, int status, const char *ctype, size_t ctlen, const char *extra,
                         size_t extra_len, const char *body, size_t blen)
{
    gw_metrics_count(c->srv->metrics, c->req.route, status, uv_hrtime() - c->req.start_ns);
    conn_req_finished(c);
    (void)gw_http_respond(&c->http, status, ctype, ctlen, extra, extra_len, body, blen);
}

static void conn_respond_text(gw_conn *c, int status, const char *extra, const char *text)
{
    gw_metrics_count(c->srv->metrics, c->req.route, status, uv_hrtime() - c->req.start_ns);
    conn_req_finished(c);
    (void)gw_http_respond_text(&c->http, status, extra, text);
}

static vtn_str bstr(const vtn_buf *b)
{
    vtn_str s = {b->len ? b->data : "", (uint32_t)b->len};
    return s;
}

static const char *unavail_text(int reason)
{
    switch (reason) {
    case GW_UNAVAIL_QUEUE_FULL:
        return "server busy: request queue full";
    case GW_UNAVAIL_WORKER_LOST:
        return "worker lost while handling the request";
    case GW_UNAVAIL_DEADLINE:
        return "no worker became free in time";
    case GW_UNAVAIL_STALLED:
        return "worker stalled while handling the request; not retried";
    default:
        return "no worker available";
    }
}

/* A request that the trusted-proxy rules refuse: logged (rate-limited),
 * answered, and the connection closed after the answer. */
static int conn_refuse(gw_conn *c, int status, const char *why)
{
    gw_server *s = c->srv;
    uint64_t left;
    GW_INC(s->metrics->proxy_refused);
    if (gw__ratelog_allow(&s->pxlog, uv_now(s->loop), &left))
        vtn_warn("proxy_refused", "remote=%s status=%d reason=\"%s\" suppressed=%" PRIu64,
                 c->remote, status, why, left);
    gw_http_set_closing(&c->http);
    conn_respond_text(c, status, NULL, why);
    return status;
}

/* The client certificate fingerprint for the envelope: from the TLS session,
 * or from a trusted proxy's header. Returns 0 (fp set, maybe "") or the
 * status the request was answered with. The headers are refused (403) from
 * any peer that is not a configured proxy, whatever the mode, so a VEN can
 * never claim another VEN's certificate by writing a header. */
static int conn_identity(gw_conn *c, const gw_http_req *q, char fp[VTN_FINGERPRINT_SIZE])
{
    gw_server *s = c->srv;
    int has_cert = s->xhdr_cert >= 0 && q->has_xhdr[s->xhdr_cert];
    int has_fp = s->xhdr_fp >= 0 && q->has_xhdr[s->xhdr_fp];
    fp[0] = '\0';
    if (!c->from_proxy) {
        if (has_cert || has_fp)
            return conn_refuse(c, 403,
                               "client identity headers are accepted only from a trusted proxy");
        if (s->proxies.n)
            return conn_refuse(c, 403, "this listener serves only the trusted proxies");
        if (c->tls)
            snprintf(fp, VTN_FINGERPRINT_SIZE, "%s", gw_tls_fingerprint(c->tls));
        return 0;
    }
    if (has_cert) {
        const vtn_buf *v = &q->xhdr[s->xhdr_cert];
        if (gw_proxy_cert_fingerprint(v->len ? v->data : "", v->len, fp) != 0)
            return conn_refuse(c, 400,
                               "the proxy's client certificate header holds no certificate");
    }
    if (has_fp) {
        const vtn_buf *v = &q->xhdr[s->xhdr_fp];
        char f2[VTN_FINGERPRINT_SIZE];
        if (gw_proxy_fp_header(v->len ? v->data : "", v->len, f2) != 0)
            return conn_refuse(c, 400,
                               "the proxy's client fingerprint header is not a fingerprint");
        if (has_cert && !vtn_fingerprint_equal(fp, f2))
            return conn_refuse(c, 400, "the proxy's certificate and fingerprint headers disagree");
        memcpy(fp, f2, VTN_FINGERPRINT_SIZE);
    }
    if (!has_cert && !has_fp)
        return conn_refuse(c, 403, "no client certificate from the proxy");
    return 0;
}

/* A file of the console, from memory (ui.c). */
static void conn_ui(gw_conn *c, const gw_http_req *q, const gw_route_result *rr)
{
    gw_ui_answer a;
    gw_ui_answer_for(&c->srv->ui, q->method, rr->path, rr->path_len, &a);
    if (!a.file) {
        conn_respond_text(c, a.status, a.extra, a.text);
        return;
    }
    conn_respond(c, a.status, a.ctype, strlen(a.ctype), a.extra, strlen(a.extra), a.file->data,
                 a.file->len);
}

static void conn_on_request(gw_http *h, gw_http_req *q)
{
    gw_conn *c = gw_container_of(h, gw_conn, http);
    gw_server *s = c->srv;
    gw_req *r = &c->req;
    r->start_ns = uv_hrtime();
    c->served = 1;

    gw_route_result rr;
    gw_route(c->kind, q->method, q->url.data ? q->url.data : "", q->url.len,
             q->ctype.data ? q->ctype.data : "", q->ctype.len, &rr);
    r->route = (uint8_t)rr.route;
    char fp[VTN_FINGERPRINT_SIZE] = "";
    /* identity first: a forged header is refused whatever the path */
    if (c->kind == GW_LISTEN_OADR && conn_identity(c, q, fp) != 0)
        return;
    if (rr.status) {
        conn_respond_text(c, rr.status, rr.extra, rr.text);
        return;
    }
    if (rr.route == GW_ROUTE_UI) {
        conn_ui(c, q, &rr);
        return;
    }
    r->id = s->id_base + ++s->id_seq;
    vtn_request vr = {0};
    vr.id = r->id;
    vr.kind = (uint8_t)rr.kind;
    vr.attempt = 0;
    vr.deadline_ms = vtn_now_ms() + s->cfg->request_timeout_ms;
    vr.fingerprint = vtn_str_c(fp);
    vr.remote = vtn_str_c(c->remote);
    vr.method = vtn_str_c(llhttp_method_name((llhttp_method_t)q->method));
    vr.path.p = rr.path;
    vr.path.n = (uint32_t)rr.path_len;
    vr.content_type = bstr(&q->ctype);
    vr.authorization = rr.kind == VTN_KIND_API ? bstr(&q->auth) : vtn_str_c("");
    vr.body = bstr(&q->body);
    vtn_buf_reset(&r->env);
    if (vtn_wire_encode_request(&r->env, &vr) != 0) {
        conn_respond_text(c, 500, NULL, "internal error: request too large to forward");
        return;
    }
    vtn_debug("request", "req=%016" PRIx64 " route=%s remote=%s fp=%s", r->id,
              gw_route_name(rr.route), c->remote, fp[0] ? fp : "-");
    int st = gw_pool_submit(&s->pool, r, uv_now(s->loop));
    if (st)
        conn_respond_text(c, st, s->retry_after, unavail_text(r->fail_reason));
}

/* Header lines from a worker must be whole CRLF lines and must not end the
 * head early; anything else is dropped rather than sent. */
static int headers_ok(vtn_str hs)
{
    if (hs.n == 0)
        return 1;
    if (hs.n < 2 || hs.p[hs.n - 2] != '\r' || hs.p[hs.n - 1] != '\n')
        return 0;
    for (uint32_t i = 0; i < hs.n; i++) {
        if (hs.p[i] == '\n' && (i == 0 || hs.p[i - 1] != '\r'))
            return 0;
        if (hs.p[i] == '\r' && (i + 1 >= hs.n || hs.p[i + 1] != '\n'))
            return 0;
        if (hs.p[i] == '\n' && i + 2 < hs.n && hs.p[i + 1] == '\r')
            return 0; /* empty line */
    }
    return hs.p[0] != '\r';
}

void gw__conn_req_done(void *ud, gw_req *r, const vtn_reply *rep)
{
    (void)ud;
    gw_conn *c = gw_container_of(r, gw_conn, req);
    int status = rep->status >= 100 && rep->status <= 599 ? rep->status : 502;
    vtn_str hs = rep->headers;
    if (!headers_ok(hs)) {
        vtn_warn("reply_headers_dropped", "req=%016" PRIx64, r->id);
        hs.n = 0;
    }
    conn_respond(c, status, rep->content_type.p, rep->content_type.n, hs.p, hs.n, rep->body.p,
                 rep->body.n);
    conn_after_io(c, 0);
}

void gw__conn_req_fail(void *ud, gw_req *r, int status)
{
    gw_server *s = ud;
    gw_conn *c = gw_container_of(r, gw_conn, req);
    if (status == 503 && r->fail_reason == GW_UNAVAIL_STALLED) {
        /* what an operator needs to find the request and its sender */
        char q[300];
        const vtn_buf *u = &c->http.req.url;
        vtn_log_quote(q, sizeof q, u->len ? u->data : "", u->len);
        vtn_warn("poison_suspect",
                 "req=%016" PRIx64 " remote=%s path=%s size=%zu msg=\"its worker went silent "
                 "holding it; answered 503, not retried\"",
                 r->id, c->remote, q, c->http.req.body.len);
    }
    if (status == 503)
        conn_respond_text(c, 503, s->retry_after, unavail_text(r->fail_reason));
    else
        conn_respond_text(c, status, NULL, "worker did not answer in time");
    conn_after_io(c, 0);
}

static int conn_http_send(gw_http *h, const gw_iov *iov, int n)
{
    return conn_send(gw_container_of(h, gw_conn, http), iov, n);
}

/* Before any body byte: a management request without the token is refused
 * here, so an anonymous client cannot make the gateway buffer its body.
 * The console's static files need no token (they hold no data; the console
 * asks for the token and sends it with every /api/v1 request). */
static int conn_on_head(gw_http *h, const gw_http_req *q, const char **why, const char **extra)
{
    gw_conn *c = gw_container_of(h, gw_conn, http);
    gw_server *s = c->srv;
    if (c->kind != GW_LISTEN_API)
        return 0;
    gw_route_result rr;
    gw_route(c->kind, q->method, q->url.data ? q->url.data : "", q->url.len, "", 0, &rr);
    if (rr.route == GW_ROUTE_UI) {
        if (q->method == HTTP_GET || q->method == HTTP_HEAD)
            return 0;
        *why = "method not allowed: the console's files take GET and HEAD";
        *extra = "Allow: GET, HEAD\r\n";
        return 405; /* before the body: no token, so no buffering for anyone */
    }
    if (!s->api_token_len)
        return 0;
    if (vtn_bearer_ok(q->auth.data, q->auth.len, s->cfg->api_token, s->api_token_len))
        return 0;
    GW_INC(s->metrics->api_unauthorized);
    *why = "missing or wrong bearer token";
    *extra = "WWW-Authenticate: Bearer realm=\"openvtn\"\r\n";
    return 401;
}

static const gw_http_cbs http_cbs = {
    .on_request = conn_on_request,
    .send = conn_http_send,
    .on_head = conn_on_head,
};

/* ---- accept ------------------------------------------------------------------ */

static void rejected_closed(uv_handle_t *h)
{
    free(h);
}

/* Over a connection limit: say 503 in one write and close. On a TLS listener
 * just close: a 503 would need a full handshake first, which is the work an
 * overloaded gateway must not take on. */
static void reject_write(gw_server *s, uv_stream_t *t, int tls, const char *why)
{
    if (!tls) {
        char msg[320];
        int n = snprintf(msg, sizeof msg,
                         "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
                         "Content-Length: %zu\r\n%sConnection: close\r\n\r\n%s\n",
                         strlen(why) + 1, s->retry_after, why);
        uv_buf_t b = uv_buf_init(msg, (unsigned)n);
        (void)uv_try_write(t, &b, 1);
    }
    GW_INC(s->metrics->conns_rejected);
}

/* No gw_conn for it (draining, out of memory): accept into a bare handle. */
static void conn_reject(gw_server *s, uv_stream_t *server, int tls, const char *why)
{
    uv_tcp_t *t = malloc(sizeof *t);
    if (!t)
        return;
    uv_tcp_init(s->loop, t);
    if (uv_accept(server, (uv_stream_t *)t) == 0)
        reject_write(s, (uv_stream_t *)t, tls, why);
    uv_close((uv_handle_t *)t, rejected_closed);
}

/* Accepted into c, then refused by a limit: c was never opened. */
static void conn_refuse_accepted(gw_server *s, gw_conn *c, int tls, const char *why)
{
    reject_write(s, (uv_stream_t *)&c->tcp, tls, why);
    c->nclose = 1;
    uv_close((uv_handle_t *)&c->tcp, conn_on_closed);
}

/* The listener is full: close the least useful connection of this listener
 * to make room (enum gw_shed_tier). 1 when one was closed. */
static int conn_shed_one(gw_server *s, int kind)
{
    gw_list *l = !gw_list_empty(&s->fresh[kind]) ? &s->fresh[kind] : &s->idle[kind];
    if (gw_list_empty(l))
        return 0;
    gw_conn *v = gw_container_of(l->next, gw_conn, shed);
    if (v->shed_tier == GW_SHED_FRESH)
        GW_INC(s->metrics->conns_shed_fresh);
    else
        GW_INC(s->metrics->conns_shed_idle);
    vtn_debug("conn_shed", "remote=%s tier=%s", v->remote,
              v->shed_tier == GW_SHED_FRESH ? "fresh" : "idle");
    conn_close(v);
    return 1;
}

/* Whether a new connection from ss may open: 0, or the reason it may not.
 * On 0 the caller owns one count of *key when *counted is set. */
static const char *conn_admit(gw_server *s, int kind, const struct sockaddr *sa, gw_addr *key,
                              int *counted)
{
    *counted = 0;
    if (sa && s->cfg->max_conns_per_ip > 0 && gw_addr_key(sa, key) == 0 &&
        !gw_proxies_match(&s->proxies, sa) && !gw_proxies_match(&s->conn_exempt, sa)) {
        int rc = gw_peers_acquire(&s->peers, key, (uint32_t)s->cfg->max_conns_per_ip);
        if (rc == -EMFILE) {
            GW_INC(s->metrics->conns_per_ip_rejected);
            return "too many connections from your address";
        }
        if (rc != 0)
            return "too many connections";
        *counted = 1;
    }
    if (s->nconns_kind[kind] >= s->max_conns_kind[kind] && !conn_shed_one(s, kind)) {
        if (*counted)
            gw_peers_release(&s->peers, key);
        *counted = 0;
        return "too many connections";
    }
    return NULL;
}

static void on_connection(uv_stream_t *server, int status)
{
    gw_listener *l = server->data;
    gw_server *s = l->srv;
    if (status < 0) {
        vtn_warn("accept_failed", "kind=%s error=%s", l->kind == GW_LISTEN_OADR ? "oadr" : "api",
                 uv_err_name(status));
        return;
    }
    if (s->draining) {
        conn_reject(s, server, l->tls_ctx != NULL, "server draining");
        return;
    }
    gw_conn *c = calloc(1, sizeof *c);
    if (!c) {
        conn_reject(s, server, l->tls_ctx != NULL, "too many connections");
        return;
    }
    uv_tcp_init(s->loop, &c->tcp);
    c->tcp.data = c;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        c->nclose = 1;
        uv_close((uv_handle_t *)&c->tcp, conn_on_closed);
        return;
    }
    /* the limits need the peer's address, so they are checked after accept */
    struct sockaddr_storage ss;
    int len = sizeof ss, has_addr;
    has_addr = uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0;
    int counted;
    const char *why =
        conn_admit(s, l->kind, has_addr ? (struct sockaddr *)&ss : NULL, &c->peer, &counted);
    if (why) {
        conn_refuse_accepted(s, c, l->tls_ctx != NULL, why);
        return;
    }
    c->counted = (unsigned)counted;
    if (l->tls_ctx && gw_tls_new(l->tls_ctx, &c->tls) != 0) {
        if (c->counted)
            gw_peers_release(&s->peers, &c->peer);
        c->nclose = 1;
        uv_close((uv_handle_t *)&c->tcp, conn_on_closed);
        return;
    }
    uv_timer_init(s->loop, &c->timer);
    c->timer.data = c;
    c->srv = s;
    c->kind = l->kind;
    uv_tcp_nodelay(&c->tcp, 1);
    if (has_addr) {
        vtn_addr_format((struct sockaddr *)&ss, c->remote, sizeof c->remote);
        c->from_proxy = s->proxies.n && gw_proxies_match(&s->proxies, (struct sockaddr *)&ss);
    } else {
        strcpy(c->remote, "unknown");
    }
    gw_http_init(&c->http, c->kind == GW_LISTEN_API ? &s->api_limits : &s->limits, &http_cbs);
    vtn_buf_init(&c->req.env, conn_env_max(s->cfg));
    vtn_buf_init(&c->wq, WQ_MAX);
    vtn_buf_init(&c->wq_next, WQ_MAX);
    gw_list_init(&c->req.link);
    gw_list_init(&c->req.age);
    gw_list_init(&c->shed);
    gw_list_add_tail(&s->conns, &c->link);
    s->nconns++;
    s->nconns_kind[c->kind]++;
    GW_SET(s->metrics->conns_open, s->nconns);
    GW_SET(s->metrics->api_conns_open, s->nconns_kind[GW_LISTEN_API]);
    GW_INC(s->metrics->conns_accepted);
    conn_read_start(c);
    c->timer_mode = T_NONE;
    c->timer_seq = (uint64_t)-1;
    conn_after_io(c, 0);
}

int gw__listener_start(gw_server *s, gw_listener *l, int kind, const char *addr, char *err,
                       size_t errlen)
{
    struct sockaddr_storage ss;
    l->srv = s;
    l->kind = kind;
    const char *kn = kind == GW_LISTEN_OADR ? "oadr" : "api";
    if (vtn_addr_parse(addr, &ss) != 0) {
        snprintf(err, errlen, "%s listener: \"%s\" is not host:port", kn, addr);
        return -EINVAL;
    }
    uv_tcp_init(s->loop, &l->tcp);
    l->tcp.data = l;
    l->open = 1;
    int rc = uv_tcp_bind(&l->tcp, (struct sockaddr *)&ss, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&l->tcp, 1024, on_connection);
    if (rc != 0) {
        snprintf(err, errlen, "%s listener %s: %s", kn, addr, uv_strerror(rc));
        return rc;
    }
    int len = sizeof ss;
    uv_tcp_getsockname(&l->tcp, (struct sockaddr *)&ss, &len);
    vtn_addr_format((struct sockaddr *)&ss, l->addr, sizeof l->addr);
    vtn_info("listen", "kind=%s addr=%s", kn, l->addr);
    return 0;
}

void gw__listener_close(gw_listener *l)
{
    if (l->open && !uv_is_closing((uv_handle_t *)&l->tcp))
        uv_close((uv_handle_t *)&l->tcp, NULL);
    l->open = 0;
}

void gw__conns_drain(gw_server *s)
{
    for (gw_list *it = s->conns.next, *next; it != &s->conns; it = next) {
        next = it->next;
        gw_conn *c = gw_container_of(it, gw_conn, link);
        gw_http_set_closing(&c->http);
        if (c->http.state == GW_HTTP_IDLE && !c->writing && !c->wq_next.len)
            conn_close(c);
    }
}

void gw__conns_close_all(gw_server *s)
{
    while (!gw_list_empty(&s->conns))
        conn_close(gw_container_of(s->conns.next, gw_conn, link));
}
