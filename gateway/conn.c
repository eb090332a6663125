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
#include "vtn/log.h"
#include "vtn/net.h"
#include "vtn/time.h"

#define WQ_MAX (((size_t)64 << 20) + ((size_t)2 << 20)) /* one worker reply + head */
#define LINGER_MS 2000 /* after an error answer, read and discard before closing */
#define LINGER_MAX ((size_t)8 << 20)

enum { T_NONE = 0, T_IDLE, T_HEAD, T_BODY, T_FLUSH, T_LINGER };

static void conn_after_io(gw_conn *c, int from_read);
static void conn_close(gw_conn *c);
static void conn_on_timer(uv_timer_t *t);
static void conn_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void conn_on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf);

/* ---- output --------------------------------------------------------------- */

static void conn_on_write(uv_write_t *req, int status);

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
        vtn_buf *wire = &c->srv->tls_wire;
        vtn_buf_reset(wire);
        for (int i = 0; i < n; i++) {
            int rc = gw_tls_write(c->tls, iov[i].p, iov[i].n, wire);
            if (rc < 0)
                return rc;
        }
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
    c->closing = 1;
    gw_server *s = c->srv;
    gw_pool_cancel(&s->pool, &c->req);
    if (c->http.error_status)
        gw_metrics_count(s->metrics, GW_ROUTE_OTHER, c->http.error_status, 0);
    gw_list_del(&c->link);
    s->nconns--;
    GW_SET(s->metrics->conns_open, s->nconns);
    c->nclose = 2;
    uv_close((uv_handle_t *)&c->tcp, conn_on_closed);
    uv_close((uv_handle_t *)&c->timer, conn_on_closed);
    if (s->draining)
        gw__server_conn_gone(s);
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
    if (!c->reading && uv_read_start((uv_stream_t *)&c->tcp, conn_alloc, conn_on_read) == 0)
        c->reading = 1;
    conn_timer_start(c, T_LINGER, LINGER_MS);
}

/* ---- state after every event ------------------------------------------------ */

static void conn_after_io(gw_conn *c, int from_read)
{
    if (c->closing || c->lingering)
        return;
    gw_server *s = c->srv;
    gw_http *h = &c->http;
    int pending_out = c->writing || c->wq_next.len;

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

    if (s->draining && h->state == GW_HTTP_IDLE && !pending_out) {
        conn_close(c); /* between requests: nothing more to do for this client */
        return;
    }

    int want_read = gw_http_buffered(h) < GW_IN_HIGH;
    if (want_read && !c->reading) {
        if (uv_read_start((uv_stream_t *)&c->tcp, conn_alloc, conn_on_read) == 0)
            c->reading = 1;
    } else if (!want_read && c->reading) {
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
            conn_timer_start(c, T_HEAD, (uint64_t)cfg->header_timeout_ms);
            c->timer_seq = h->begun;
        }
        break;
    case GW_HTTP_BODY:
        if (c->timer_mode != T_BODY || from_read)
            conn_timer_start(c, T_BODY, (uint64_t)cfg->idle_timeout_ms);
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

/* Everything from the peer enters here (the TLS layer decrypts it). */
static void conn_on_wire_bytes(gw_conn *c, const char *p, size_t n)
{
    if (c->tls) {
        gw_server *s = c->srv;
        vtn_buf_reset(&s->tls_plain);
        vtn_buf_reset(&s->tls_wire);
        int rc = gw_tls_feed(c->tls, p, n, &s->tls_plain, &s->tls_wire);
        if (s->tls_wire.len) {
            gw_iov w = {s->tls_wire.data, s->tls_wire.len};
            if (conn_write_raw(c, &w, 1) < 0)
                rc = -EPIPE;
        }
        if (rc < 0) {
            if (rc == -EPROTO)
                vtn_info("tls_failed", "remote=%s reason=\"%s\"", c->remote, gw_tls_error(c->tls));
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
    conn_close(c);
}

/* ---- requests ---------------------------------------------------------------- */

static void conn_respond(gw_conn *c, int status, const char *ctype, size_t ctlen, const char *extra,
                         size_t extra_len, const char *body, size_t blen)
{
    gw_metrics_count(c->srv->metrics, c->req.route, status, uv_hrtime() - c->req.start_ns);
    (void)gw_http_respond(&c->http, status, ctype, ctlen, extra, extra_len, body, blen);
}

static void conn_respond_text(gw_conn *c, int status, const char *extra, const char *text)
{
    gw_metrics_count(c->srv->metrics, c->req.route, status, uv_hrtime() - c->req.start_ns);
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
    default:
        return "no worker available";
    }
}

static void conn_on_request(gw_http *h, gw_http_req *q)
{
    gw_conn *c = gw_container_of(h, gw_conn, http);
    gw_server *s = c->srv;
    gw_req *r = &c->req;
    r->start_ns = uv_hrtime();

    gw_route_result rr;
    gw_route(c->kind, q->method, q->url.data ? q->url.data : "", q->url.len,
             q->ctype.data ? q->ctype.data : "", q->ctype.len, &rr);
    r->route = (uint8_t)rr.route;
    if (rr.status) {
        conn_respond_text(c, rr.status, rr.extra, rr.text);
        return;
    }
    r->id = s->id_base + ++s->id_seq;
    vtn_request vr = {0};
    vr.id = r->id;
    vr.kind = (uint8_t)rr.kind;
    vr.attempt = 0;
    vr.deadline_ms = vtn_now_ms() + s->cfg->request_timeout_ms;
    vr.fingerprint = vtn_str_c(c->tls ? gw_tls_fingerprint(c->tls) : "");
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
    vtn_debug("request", "req=%016" PRIx64 " route=%s remote=%s", r->id, gw_route_name(rr.route),
              c->remote);
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

static const gw_http_cbs http_cbs = {
    .on_request = conn_on_request,
    .send = conn_http_send,
};

/* ---- accept ------------------------------------------------------------------ */

static void rejected_closed(uv_handle_t *h)
{
    free(h);
}

/* Over the connection limit: accept, say 503 in one write, close. */
static void conn_reject(gw_server *s, uv_stream_t *server)
{
    uv_tcp_t *t = malloc(sizeof *t);
    if (!t)
        return;
    uv_tcp_init(s->loop, t);
    if (uv_accept(server, (uv_stream_t *)t) == 0) {
        char msg[256];
        static const char body[] = "too many connections\n";
        int n = snprintf(msg, sizeof msg,
                         "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
                         "Content-Length: %zu\r\n%sConnection: close\r\n\r\n%s",
                         sizeof body - 1, s->retry_after, body);
        uv_buf_t b = uv_buf_init(msg, (unsigned)n);
        (void)uv_try_write((uv_stream_t *)t, &b, 1);
        GW_INC(s->metrics->conns_rejected);
    }
    uv_close((uv_handle_t *)t, rejected_closed);
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
    if (s->draining || s->nconns >= (size_t)s->cfg->max_connections) {
        conn_reject(s, server);
        return;
    }
    gw_conn *c = calloc(1, sizeof *c);
    if (!c) {
        conn_reject(s, server);
        return;
    }
    uv_tcp_init(s->loop, &c->tcp);
    c->tcp.data = c;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        c->nclose = 1;
        uv_close((uv_handle_t *)&c->tcp, conn_on_closed);
        return;
    }
    if (l->tls_ctx && gw_tls_new(l->tls_ctx, &c->tls) != 0) {
        c->nclose = 1;
        uv_close((uv_handle_t *)&c->tcp, conn_on_closed);
        return;
    }
    uv_timer_init(s->loop, &c->timer);
    c->timer.data = c;
    c->srv = s;
    c->kind = l->kind;
    uv_tcp_nodelay(&c->tcp, 1);
    struct sockaddr_storage ss;
    int len = sizeof ss;
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0)
        vtn_addr_format((struct sockaddr *)&ss, c->remote, sizeof c->remote);
    else
        strcpy(c->remote, "unknown");
    gw_http_init(&c->http, &s->limits, &http_cbs);
    vtn_buf_init(&c->req.env,
                 (size_t)s->cfg->max_body_bytes + 3 * (size_t)s->cfg->max_header_bytes + 4096);
    vtn_buf_init(&c->wq, WQ_MAX);
    vtn_buf_init(&c->wq_next, WQ_MAX);
    gw_list_init(&c->req.link);
    gw_list_init(&c->req.age);
    gw_list_add_tail(&s->conns, &c->link);
    s->nconns++;
    GW_SET(s->metrics->conns_open, s->nconns);
    GW_INC(s->metrics->conns_accepted);
    if (uv_read_start((uv_stream_t *)&c->tcp, conn_alloc, conn_on_read) == 0)
        c->reading = 1;
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
