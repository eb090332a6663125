/* The push-mode VENs' HTTPS endpoint (bn_pushsrv.h, docs/bench.md "Push
 * mode"). OpenSSL over two memory BIOs per connection, as the client does
 * (bn_tls.c), libuv for the sockets, llhttp for the VTN's requests. A VEN
 * answers each push in the HTTP response, as gateway/push.c expects: an
 * oadrDistributeEvent with oadrCreatedEvent, an oadrRegisterReport with
 * oadrRegisteredReport, an oadrCreateReport with oadrCreatedReport, anything
 * else with an empty 200. Bounded: connections (max_conns), request head and
 * body (PS_HEAD_MAX, PS_BODY_MAX), loopback only. */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <llhttp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <uv.h>

#include "vtn/log.h"

#include "bn_internal.h"
#include "bn_pushsrv.h"

#define PS_HEAD_MAX 512        /* bytes of a request's URL */
#define PS_BODY_MAX (1u << 20) /* bytes of a pushed message */
#define PS_ID_MAX 132          /* a venID (the VTN's are up to 128 bytes) */
#define PS_EVENTS_MAX 64       /* oadrEvents in one pushed oadrDistributeEvent */

typedef struct ps_ven {
    char ven_id[PS_ID_MAX];   /* from its first push that names it; "" unknown */
    uint64_t recv_ns, ans_ns; /* the watched event arrived, its answer was written; 0 not yet */
} ps_ven;

typedef struct ps_conn {
    uv_tcp_t tcp;
    uv_shutdown_t shut; /* close_each: the answer is written, then the connection ends */
    struct bn_pushsrv *s;
    SSL *ssl;
    BIO *rbio, *wbio; /* ciphertext in (from the socket), out (to the socket) */
    llhttp_t parser;
    vtn_buf url, body, out;
    int too_large, closing;
    int ending; /* the last answer is on its way: nothing more is read */
} ps_conn;

typedef struct ps_write {
    uv_write_t w;
    char data[];
} ps_write;

struct bn_pushsrv {
    bn_push_opts o;
    uv_loop_t loop;
    uv_tcp_t lsn;
    uv_async_t stop;
    pthread_t thread;
    pthread_mutex_t mu; /* guards vens, st and the watch: the fleet's thread reads them */
    SSL_CTX *ctx;
    llhttp_settings_t settings;
    char url[96];
    ps_ven *vens;
    bn_push_stats st;
    int watching;
    uint64_t watch_t0;
    uint64_t rng;
    bn_dist_event ev[PS_EVENTS_MAX];
    char pbuf[16384];
};

/* ---- writing ---------------------------------------------------------------- */

static void on_written(uv_write_t *w, int status)
{
    (void)status; /* a failed write shows as the VTN's timeout */
    free(w);
}

static void conn_closed(uv_handle_t *h)
{
    ps_conn *c = h->data;
    SSL_free(c->ssl); /* frees both BIOs */
    vtn_buf_free(&c->url);
    vtn_buf_free(&c->body);
    vtn_buf_free(&c->out);
    free(c);
}

static void conn_close(ps_conn *c)
{
    if (c->closing)
        return;
    c->closing = 1;
    pthread_mutex_lock(&c->s->mu);
    c->s->st.open--;
    pthread_mutex_unlock(&c->s->mu);
    uv_close((uv_handle_t *)&c->tcp, conn_closed);
}

/* Whatever OpenSSL has for the wire goes out. 0 or <0. */
static int flush_wire(ps_conn *c)
{
    char *p;
    long n = BIO_get_mem_data(c->wbio, &p);
    if (n <= 0)
        return 0;
    ps_write *w = malloc(sizeof *w + (size_t)n);
    if (w == NULL)
        return -ENOMEM;
    memcpy(w->data, p, (size_t)n);
    (void)BIO_reset(c->wbio);
    uv_buf_t b = uv_buf_init(w->data, (unsigned)n);
    if (uv_write(&w->w, (uv_stream_t *)&c->tcp, &b, 1, on_written) != 0) {
        free(w);
        return -EIO;
    }
    return 0;
}

static void on_shut(uv_shutdown_t *r, int status)
{
    (void)status;
    conn_close(r->data);
}

static int respond(ps_conn *c, int status, const char *reason, const char *body, size_t len)
{
    int last = status != 200 || c->s->o.close_each;
    vtn_buf_reset(&c->out);
    int rc = vtn_buf_printf(&c->out,
                            "HTTP/1.1 %d %s\r\nContent-Type: application/xml\r\n"
                            "Content-Length: %zu\r\n%s\r\n",
                            status, reason, len, last ? "Connection: close\r\n" : "");
    if (rc == 0 && len)
        rc = vtn_buf_append(&c->out, body, len);
    if (rc != 0 || SSL_write(c->ssl, c->out.data, (int)c->out.len) <= 0) {
        if (last)
            conn_close(c);
        return -EIO;
    }
    if (last)
        SSL_shutdown(c->ssl); /* close_notify after the answer */
    rc = flush_wire(c);
    if (rc < 0 && last)
        conn_close(c);
    if (rc == 0 && last) {
        /* the writes queued go out first; then the connection ends (uv_close
         * right away would cancel them) */
        c->shut.data = c;
        c->ending = 1;
        uv_read_stop((uv_stream_t *)&c->tcp);
        if (uv_shutdown(&c->shut, (uv_stream_t *)&c->tcp, on_shut) != 0)
            conn_close(c);
    }
    return rc;
}

/* bn_oadr.c builds a VEN's messages as whole requests (the pull VENs POST
 * them); a push VEN sends the same document as its response's body. */
static const char *body_of(const vtn_buf *req, size_t *len)
{
    const char *p = memmem(req->data, req->len, "\r\n\r\n", 4);
    if (p == NULL) {
        *len = 0;
        return "";
    }
    *len = req->len - (size_t)(p + 4 - req->data);
    return p + 4;
}

/* ---- one pushed message ------------------------------------------------------ */

/* VEN index from "/ven/<i>/<service>"; -1 when the path names none. */
static long ven_of_path(const bn_pushsrv *s, const char *url)
{
    char *end;
    if (strncmp(url, "/ven/", 5) != 0)
        return -1;
    unsigned long v = strtoul(url + 5, &end, 10);
    if (end == url + 5 || *end != '/' || v >= s->o.vens)
        return -1;
    return (long)v;
}

static int opt_out(bn_pushsrv *s)
{
    s->rng ^= s->rng << 13;
    s->rng ^= s->rng >> 7;
    s->rng ^= s->rng << 17;
    return (double)(s->rng >> 11) / 9007199254740992.0 >= s->o.opt_in_share;
}

/* The VEN's answer to a distribute, into ans; the watched event's arrival is
 * noted. 0, or <0 when the message is not one. */
static int on_distribute(bn_pushsrv *s, long v, const vtn_buf *b, const char *ven_id, vtn_buf *ans,
                         uint64_t now)
{
    char rid[128];
    int n = bn_distribute_parse(b->data, b->len, s->ev, PS_EVENTS_MAX, rid, sizeof rid);
    if (n < 0)
        return n;
    int k = 0, outs = 0;
    for (int i = 0; i < n; i++) {
        if (!s->ev[i].required)
            continue;
        s->ev[k] = s->ev[i];
        s->ev[k].opt_out = opt_out(s);
        outs += s->ev[k].opt_out;
        k++;
    }
    pthread_mutex_lock(&s->mu);
    s->st.distribute++;
    if (s->watching && n > 0 && s->vens[v].recv_ns == 0)
        s->vens[v].recv_ns = now;
    if (k) {
        s->st.created_event++;
        s->st.opted_out += (uint64_t)outs;
    }
    pthread_mutex_unlock(&s->mu);
    vtn_buf_reset(ans);
    if (k == 0)
        return 0; /* nothing asks for an answer: an empty 200 */
    return bn_request_created_event(ans, "127.0.0.1", ven_id, rid, s->ev, k);
}

static void on_request(ps_conn *c)
{
    bn_pushsrv *s = c->s;
    uint64_t now = uv_hrtime();
    char payload[64], rid[128], rr[BN_EVENT_ID_MAX], vid[PS_ID_MAX];
    vtn_buf ans;
    vtn_buf_init(&ans, PS_BODY_MAX);
    if (vtn_buf_append(&c->url, "", 1) != 0) /* NUL-terminated */
        goto bad;
    long v = ven_of_path(s, c->url.data);
    if (v < 0 || bn_xml_payload(c->body.data, c->body.len, payload, sizeof payload) < 0)
        goto bad;
    pthread_mutex_lock(&s->mu);
    if (s->watching && (uint32_t)v < s->o.unreachable) {
        s->st.dropped++; /* it went away: the VTN sees its connection close unanswered */
        pthread_mutex_unlock(&s->mu);
        vtn_buf_free(&ans);
        conn_close(c);
        return;
    }
    if (!s->vens[v].ven_id[0] &&
        bn_xml_text(c->body.data, c->body.len, "venID", vid, sizeof vid) > 0) {
        snprintf(s->vens[v].ven_id, sizeof s->vens[v].ven_id, "%s", vid);
        s->st.known++;
    }
    snprintf(vid, sizeof vid, "%s", s->vens[v].ven_id);
    pthread_mutex_unlock(&s->mu);
    int rc = 0, counted = 0;
    uint64_t *other = NULL;
    if (strcmp(payload, "oadrDistributeEvent") == 0) {
        rc = on_distribute(s, v, &c->body, vid, &ans, now);
        counted = 1;
    } else if (strcmp(payload, "oadrRegisterReport") == 0) {
        rc = bn_xml_text(c->body.data, c->body.len, "requestID", rid, sizeof rid) < 0
                 ? -EINVAL
                 : bn_request_registered_report(&ans, "127.0.0.1", vid, rid);
        other = &s->st.register_report;
    } else if (strcmp(payload, "oadrCreateReport") == 0) {
        rc = bn_xml_text(c->body.data, c->body.len, "requestID", rid, sizeof rid) < 0 ||
                     bn_xml_text(c->body.data, c->body.len, "reportRequestID", rr, sizeof rr) < 0
                 ? -EINVAL
                 : bn_request_created_report(&ans, "127.0.0.1", vid, rid, rr);
        other = &s->st.create_report;
    } else {
        other = &s->st.other;
    }
    if (rc < 0)
        goto bad;
    size_t len = 0;
    const char *body = ans.len ? body_of(&ans, &len) : "";
    /* counted as the answer leaves: whoever reads the figures once the VTN
     * has the answer finds it counted */
    pthread_mutex_lock(&s->mu);
    s->st.pushes++;
    if (other)
        (*other)++;
    if (counted && len && s->vens[v].recv_ns && s->vens[v].ans_ns == 0)
        s->vens[v].ans_ns = uv_hrtime();
    pthread_mutex_unlock(&s->mu);
    if (respond(c, 200, "OK", body, len) < 0)
        conn_close(c); /* the VTN sees it closed unanswered, and retries */
    vtn_buf_free(&ans);
    return;
bad:
    vtn_buf_free(&ans);
    pthread_mutex_lock(&s->mu);
    s->st.err_request++;
    pthread_mutex_unlock(&s->mu);
    vtn_warn("push_endpoint_bad_request", "url=%.*s bytes=%zu", (int)c->url.len, c->url.data,
             c->body.len);
    respond(c, 400, "Bad Request", "", 0); /* and the connection ends */
}

/* ---- llhttp ------------------------------------------------------------------- */

static int on_message_begin(llhttp_t *p)
{
    ps_conn *c = p->data;
    vtn_buf_reset(&c->url);
    vtn_buf_reset(&c->body);
    c->too_large = 0;
    return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t n)
{
    ps_conn *c = p->data;
    return vtn_buf_append(&c->url, at, n) == 0 ? 0 : -1;
}

static int on_body(llhttp_t *p, const char *at, size_t n)
{
    ps_conn *c = p->data;
    if (c->too_large || vtn_buf_append(&c->body, at, n) != 0) {
        c->too_large = 1; /* read on to the end, then 413 */
        vtn_buf_reset(&c->body);
    }
    return 0;
}

static int on_message_complete(llhttp_t *p)
{
    ps_conn *c = p->data;
    if (c->too_large) {
        pthread_mutex_lock(&c->s->mu);
        c->s->st.err_too_large++;
        pthread_mutex_unlock(&c->s->mu);
        respond(c, 413, "Payload Too Large", "", 0); /* and the connection ends */
        return HPE_PAUSED;
    }
    on_request(c);
    return c->closing || c->ending ? HPE_PAUSED : 0;
}

/* ---- reading ------------------------------------------------------------------ */

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    (void)hint;
    ps_conn *c = h->data;
    static __thread char rbuf[65536]; /* one loop thread: used right after this call */
    (void)c;
    *b = uv_buf_init(rbuf, sizeof rbuf);
}

static void tls_error(ps_conn *c)
{
    bn_pushsrv *s = c->s;
    char why[160];
    ERR_error_string_n(ERR_peek_last_error(), why, sizeof why);
    ERR_clear_error();
    pthread_mutex_lock(&s->mu);
    uint64_t n = ++s->st.err_tls;
    pthread_mutex_unlock(&s->mu);
    if (n <= 5)
        vtn_warn("push_endpoint_tls_failed", "reason=%s", why);
    flush_wire(c); /* the alert */
    conn_close(c);
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    ps_conn *c = st->data;
    if (c->closing || c->ending)
        return;
    if (n < 0) {
        conn_close(c);
        return;
    }
    if (n == 0)
        return;
    BIO_write(c->rbio, b->base, (int)n);
    for (;;) {
        int r = SSL_read(c->ssl, c->s->pbuf, sizeof c->s->pbuf);
        if (r <= 0) {
            int e = SSL_get_error(c->ssl, r);
            if (e == SSL_ERROR_WANT_READ) {
                if (flush_wire(c) < 0) /* the handshake's messages */
                    conn_close(c);
                return;
            }
            if (e == SSL_ERROR_ZERO_RETURN) { /* close_notify */
                conn_close(c);
                return;
            }
            tls_error(c);
            return;
        }
        enum llhttp_errno pe = llhttp_execute(&c->parser, c->s->pbuf, (size_t)r);
        if (c->closing || c->ending)
            return;
        if (pe != HPE_OK) {
            pthread_mutex_lock(&c->s->mu);
            c->s->st.err_request++;
            pthread_mutex_unlock(&c->s->mu);
            respond(c, 400, "Bad Request", "", 0); /* and the connection ends */
            return;
        }
    }
}

static void on_conn(uv_stream_t *l, int status)
{
    bn_pushsrv *s = l->data;
    if (status < 0)
        return;
    ps_conn *c = calloc(1, sizeof *c);
    if (c == NULL)
        return;
    c->s = s;
    uv_tcp_init(&s->loop, &c->tcp);
    c->tcp.data = c;
    if (uv_accept(l, (uv_stream_t *)&c->tcp) != 0) {
        c->closing = 1;
        uv_close((uv_handle_t *)&c->tcp, conn_closed);
        return;
    }
    pthread_mutex_lock(&s->mu);
    int full = s->st.open >= s->o.max_conns;
    if (full) {
        s->st.err_refused++;
    } else {
        s->st.conns++;
        if (++s->st.open > s->st.open_max)
            s->st.open_max = s->st.open;
    }
    pthread_mutex_unlock(&s->mu);
    c->ssl = SSL_new(s->ctx);
    c->rbio = BIO_new(BIO_s_mem());
    c->wbio = BIO_new(BIO_s_mem());
    if (full || !c->ssl || !c->rbio || !c->wbio) {
        if (c->ssl && c->rbio && c->wbio)
            SSL_set_bio(c->ssl, c->rbio, c->wbio);
        else {
            BIO_free(c->rbio);
            BIO_free(c->wbio);
        }
        if (!full) {
            pthread_mutex_lock(&s->mu);
            s->st.open--;
            pthread_mutex_unlock(&s->mu);
        }
        c->closing = 1;
        uv_close((uv_handle_t *)&c->tcp, conn_closed);
        return;
    }
    SSL_set_bio(c->ssl, c->rbio, c->wbio);
    SSL_set_accept_state(c->ssl);
    vtn_buf_init(&c->url, PS_HEAD_MAX);
    vtn_buf_init(&c->body, PS_BODY_MAX);
    vtn_buf_init(&c->out, PS_BODY_MAX + 512);
    llhttp_init(&c->parser, HTTP_REQUEST, &s->settings);
    c->parser.data = c;
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

/* ---- the thread ----------------------------------------------------------------- */

static void close_any(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (uv_is_closing(h))
        return;
    if (h->type == UV_TCP && h->data && h->data != arg) {
        conn_close(h->data); /* a VEN connection */
        return;
    }
    uv_close(h, NULL);
}

static void on_stop(uv_async_t *a)
{
    bn_pushsrv *s = a->data;
    uv_walk(&s->loop, close_any, s);
}

static void *run(void *arg)
{
    bn_pushsrv *s = arg;
    uv_run(&s->loop, UV_RUN_DEFAULT);
    return NULL;
}

static int fail(char *err, size_t errlen, const char *what, const char *path)
{
    char why[160];
    ERR_error_string_n(ERR_get_error(), why, sizeof why);
    ERR_clear_error();
    snprintf(err, errlen, "push endpoint: %s %s: %s", what, path, why);
    return -EINVAL;
}

static int make_ctx(bn_pushsrv *s, char *err, size_t errlen)
{
    const bn_push_opts *o = &s->o;
    s->ctx = SSL_CTX_new(TLS_server_method());
    if (s->ctx == NULL)
        return -ENOMEM;
    /* as a 2.0b VEN: TLS 1.2 (1.3 too when the VTN's push client asks for it) */
    SSL_CTX_set_min_proto_version(s->ctx, TLS1_2_VERSION);
    if (SSL_CTX_use_certificate_chain_file(s->ctx, o->cert) != 1)
        return fail(err, errlen, "certificate", o->cert);
    if (SSL_CTX_use_PrivateKey_file(s->ctx, o->key, SSL_FILETYPE_PEM) != 1)
        return fail(err, errlen, "key", o->key);
    if (SSL_CTX_load_verify_locations(s->ctx, o->client_ca, NULL) != 1)
        return fail(err, errlen, "client CA", o->client_ca);
    SSL_CTX_set_verify(s->ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    SSL_CTX_set_session_id_context(s->ctx, (const unsigned char *)"bn-push", 7);
    return 0;
}

int bn_pushsrv_start(const bn_push_opts *o, bn_pushsrv **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!o->cert || !*o->cert || !o->key || !*o->key || !o->client_ca || !*o->client_ca) {
        snprintf(err, errlen, "push VENs need --push-cert, --push-key and --push-ca");
        return -EINVAL;
    }
    bn_pushsrv *s = calloc(1, sizeof *s);
    if (s == NULL)
        return -ENOMEM;
    s->o = *o;
    s->rng = 0x9e3779b97f4a7c15ull ^ uv_hrtime();
    s->vens = calloc(o->vens ? o->vens : 1, sizeof *s->vens);
    if (s->vens == NULL || make_ctx(s, err, errlen) < 0) {
        if (s->vens && !err[0])
            snprintf(err, errlen, "push endpoint: out of memory");
        SSL_CTX_free(s->ctx);
        free(s->vens);
        free(s);
        return -EINVAL;
    }
    pthread_mutex_init(&s->mu, NULL);
    llhttp_settings_init(&s->settings);
    s->settings.on_message_begin = on_message_begin;
    s->settings.on_url = on_url;
    s->settings.on_body = on_body;
    s->settings.on_message_complete = on_message_complete;
    uv_loop_init(&s->loop);
    uv_tcp_init(&s->loop, &s->lsn);
    s->lsn.data = s;
    uv_async_init(&s->loop, &s->stop, on_stop);
    s->stop.data = s;
    struct sockaddr_in a;
    struct sockaddr_storage got;
    int glen = sizeof got;
    uv_ip4_addr("127.0.0.1", 0, &a);
    int rc = uv_tcp_bind(&s->lsn, (const struct sockaddr *)&a, 0);
    rc = rc ? rc : uv_listen((uv_stream_t *)&s->lsn, 4096, on_conn);
    rc = rc ? rc : uv_tcp_getsockname(&s->lsn, (struct sockaddr *)&got, &glen);
    if (rc == 0)
        snprintf(s->url, sizeof s->url, "https://127.0.0.1:%u/ven/%%u",
                 (unsigned)ntohs(((struct sockaddr_in *)&got)->sin_port));
    if (rc == 0 && pthread_create(&s->thread, NULL, run, s) != 0)
        rc = UV_EAGAIN;
    if (rc != 0) {
        snprintf(err, errlen, "push endpoint: cannot listen on 127.0.0.1: %s", uv_strerror(rc));
        uv_close((uv_handle_t *)&s->lsn, NULL);
        uv_close((uv_handle_t *)&s->stop, NULL);
        uv_run(&s->loop, UV_RUN_DEFAULT);
        uv_loop_close(&s->loop);
        SSL_CTX_free(s->ctx);
        pthread_mutex_destroy(&s->mu);
        free(s->vens);
        free(s);
        return -EIO;
    }
    *out = s;
    return 0;
}

const char *bn_pushsrv_url(const bn_pushsrv *s)
{
    return s->url;
}

void bn_pushsrv_watch(bn_pushsrv *s, uint64_t t0_ns)
{
    pthread_mutex_lock(&s->mu);
    s->watching = 1;
    s->watch_t0 = t0_ns;
    for (uint32_t v = 0; v < s->o.vens; v++)
        s->vens[v].recv_ns = s->vens[v].ans_ns = 0;
    pthread_mutex_unlock(&s->mu);
}

void bn_pushsrv_stats(bn_pushsrv *s, bn_push_stats *st)
{
    uint64_t *recv = calloc(s->o.vens ? s->o.vens : 1, sizeof *recv);
    uint64_t *ans = calloc(s->o.vens ? s->o.vens : 1, sizeof *ans);
    pthread_mutex_lock(&s->mu);
    *st = s->st;
    st->received = st->answered = 0;
    uint32_t dead = s->o.unreachable < s->o.vens ? s->o.unreachable : s->o.vens;
    uint32_t n = s->o.vens - dead;
    for (uint32_t v = dead; recv && ans && v < s->o.vens; v++) {
        const ps_ven *p = &s->vens[v];
        recv[v - dead] = p->recv_ns ? p->recv_ns - s->watch_t0 : BN_NEVER;
        ans[v - dead] = p->ans_ns ? p->ans_ns - s->watch_t0 : BN_NEVER;
        st->received += p->recv_ns != 0;
        st->answered += p->ans_ns != 0;
    }
    pthread_mutex_unlock(&s->mu);
    static const double q[3] = {0.5, 0.99, 1.0};
    for (int i = 0; i < 3; i++) {
        st->cov_recv[i] = recv && ans && n ? bn_coverage_ns(recv, n, q[i]) : BN_NEVER;
        st->cov_ans[i] = recv && ans && n ? bn_coverage_ns(ans, n, q[i]) : BN_NEVER;
    }
    free(recv);
    free(ans);
}

uint32_t bn_pushsrv_ven_ids(bn_pushsrv *s, json_t *arr)
{
    uint32_t n = 0;
    pthread_mutex_lock(&s->mu);
    for (uint32_t v = 0; v < s->o.vens; v++)
        if (s->vens[v].ven_id[0]) {
            json_array_append_new(arr, json_string(s->vens[v].ven_id));
            n++;
        }
    pthread_mutex_unlock(&s->mu);
    return n;
}

void bn_pushsrv_stop(bn_pushsrv **sp)
{
    bn_pushsrv *s = *sp;
    if (s == NULL)
        return;
    uv_async_send(&s->stop);
    pthread_join(s->thread, NULL);
    uv_loop_close(&s->loop);
    SSL_CTX_free(s->ctx);
    pthread_mutex_destroy(&s->mu);
    free(s->vens);
    free(s);
    *sp = NULL;
}
