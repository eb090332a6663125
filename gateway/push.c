/* Push mode: the gateway delivers what push-mode VENs would get on a poll
 * (docs/gateway.md, "Push mode"; the Redis side in common/lua/pushclaim.lua
 * and pushdone.lua).
 *
 * One job per push VEN, not per message. The job is due in the ZSET
 * vtn:push:due; a gateway leases it with the pushclaim script, so one
 * gateway at a time works for a VEN, and a gateway that dies leaves it to
 * another once the lease ends. A job runs polls on the VEN's behalf: the
 * gateway asks a worker (a REQUEST tagged VTN_WIRE_EXT_PUSH_VEN) what the
 * VEN's poll returns now; a message is POSTed to the VEN's transportAddress
 * + its service, the VEN's answer from the HTTP response goes to a worker
 * as the VEN's own request, and the next poll follows, until the poll
 * answers oadrResponse. Since a poll computes the VEN's current event set,
 * a newer modification replaces an undelivered older one by itself.
 *
 * Everything runs on the gateway's loop: hiredis async on libuv, sockets
 * through libuv, TLS through the push client engine (push_tls.h), so a
 * VEN that does not answer only holds its own job. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <hiredis/adapters/libuv.h>
#include <hiredis/async.h>

#include "gw_internal.h"
#include "push_tls.h"
#include "vtn/id.h"
#include "vtn/keys.h"
#include "vtn/log.h"
#include "vtn/redis.h"
#include "vtn/scripts.h"
#include "vtn/time.h"

#define PUSH_CLAIM_MS 100        /* how often free slots are offered to due jobs */
#define PUSH_RECONNECT_MS 1000   /* Redis down: next connection attempt */
#define PUSH_MSGS_PER_RUN 16     /* messages one job delivers before it yields */
#define PUSH_IDLE_MS 60000       /* an idle connection to a VEN is kept this long */
#define PUSH_IDLE_BUCKETS 256    /* idle connections by venID */
#define PUSH_IDLE_MAX 4096       /* idle connections kept at most (file descriptors) */
#define PUSH_ID_MAX 128          /* bytes of a venID (the codec's cap) */
#define PUSH_BODY_MAX (4u << 20) /* bytes of a VEN's answer we read */
#define PUSH_OADR_PATH "/OpenADR2/Simple/2.0b/"
#define PUSH_REMOTE "push"

/* What a message is pushed to: the service that the profile maps it to. */
static const struct {
    const char *element;
    const char *service; /* NULL: nothing to deliver */
} push_services[] = {
    {"oadrResponse", NULL},
    {"oadrDistributeEvent", "EiEvent"},
    {"oadrCreateReport", "EiReport"},
    {"oadrCancelReport", "EiReport"},
    {"oadrRegisterReport", "EiReport"},
    {"oadrCancelPartyRegistration", "EiRegisterParty"},
    {"oadrRequestReregistration", "EiRegisterParty"},
};

enum job_stage { J_RENEW = 0, J_POLL, J_POST, J_ANSWER, J_DONE };

typedef struct push_conn push_conn;

typedef struct push_job {
    gw_push *p;
    gw_list link; /* p->jobs */
    gw_req req;   /* req.push = 1: the pool hands its reply to gw__push_req_done */
    enum job_stage stage;
    char ven[PUSH_ID_MAX + 1];
    char url[512]; /* transportAddress */
    gw_push_url u; /* the transportAddress parsed */
    unsigned attempts;
    uint64_t rid; /* the poll whose message is being delivered (kept across retries) */
    long long since;
    int nmsg;       /* messages delivered in this run */
    int sent_event; /* an oadrDistributeEvent went out in this run */
    const char *service;
    const char *element;
    vtn_buf msg; /* the message being pushed */
    push_conn *conn;
} push_job;

enum conn_state { C_RESOLVE = 0, C_CONNECT, C_OPEN, C_IDLE, C_CLOSING };

struct push_conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_getaddrinfo_t gai;
    uv_connect_t creq;
    gw_push *p;
    push_job *job;
    gw_list link; /* an idle bucket */
    enum conn_state state;
    char ven[PUSH_ID_MAX + 1];
    char url[512];
    gw_push_tls *tls;
    llhttp_t parser;
    llhttp_settings_t settings;
    vtn_buf body;
    int status, complete, keep, got_bytes, reused, sent;
    int nclose;
    vtn_buf req; /* the request, until the handshake is done */
};

typedef struct push_write {
    uv_write_t w;
    size_t n;
    char data[];
} push_write;

struct gw_push {
    gw_server *s;
    gw_pool *pool;
    gw_metrics *m;
    const gw_config *cfg;
    vtn_redis_target target;
    redisAsyncContext *rc;
    struct push_find *finding; /* a sentinel discovery running, or NULL */
    int connected, claiming, closing, draining;
    uv_timer_t tick;
    int64_t next_connect;
    char owner[40];
    char *claim_src, *done_src;
    size_t claim_len, done_len;
    gw_list jobs;
    size_t njobs, max_jobs;
    gw_list idle[PUSH_IDLE_BUCKETS];
    size_t nidle;
    char rbuf[GW_READ_BUF];
    vtn_buf plain, wire, scratch;
};

/* ---- small helpers --------------------------------------------------------- */

static size_t idle_bucket(const char *ven)
{
    return (size_t)(vtn_fnv1a64(0xcbf29ce484222325ull, ven) & (PUSH_IDLE_BUCKETS - 1));
}

int gw_push_url_parse(const char *url, gw_push_url *out, char *err, size_t errlen)
{
    const char *a, *end, *h, *he, *colon = NULL;
    memset(out, 0, sizeof *out);
    if (strncasecmp(url, "https://", 8) == 0) {
        out->https = 1;
        a = url + 8;
    } else if (strncasecmp(url, "http://", 7) == 0) {
        a = url + 7;
    } else {
        snprintf(err, errlen, "\"%.300s\" is not an https:// URL", url);
        return -EINVAL;
    }
    end = a + strcspn(a, "/?#");
    if (memchr(a, '@', (size_t)(end - a)) != NULL) {
        snprintf(err, errlen, "user information in the URL is not supported");
        return -EINVAL;
    }
    if (*a == '[') {
        h = a + 1;
        he = memchr(h, ']', (size_t)(end - h));
        if (he == NULL) {
            snprintf(err, errlen, "\"%.300s\": missing ']'", url);
            return -EINVAL;
        }
        if (he + 1 < end) {
            if (he[1] != ':') {
                snprintf(err, errlen, "\"%.300s\": bad host", url);
                return -EINVAL;
            }
            colon = he + 1;
        }
    } else {
        h = a;
        colon = memchr(a, ':', (size_t)(end - a));
        he = colon != NULL ? colon : end;
    }
    size_t hn = (size_t)(he - h);
    if (hn == 0 || hn >= sizeof out->host) {
        snprintf(err, errlen, "\"%.300s\": no host or host too long", url);
        return -EINVAL;
    }
    memcpy(out->host, h, hn);
    out->host[hn] = '\0';
    snprintf(out->port, sizeof out->port, "%s", out->https ? "443" : "80");
    if (colon != NULL) {
        const char *pp = colon + 1;
        size_t pn = (size_t)(end - pp);
        long v = 0;
        if (pn == 0 || pn > 5 || strspn(pp, "0123456789") < pn) {
            snprintf(err, errlen, "\"%.300s\": bad port", url);
            return -EINVAL;
        }
        for (size_t i = 0; i < pn; i++)
            v = v * 10 + (pp[i] - '0');
        if (v < 1 || v > 65535) {
            snprintf(err, errlen, "\"%.300s\": port out of range", url);
            return -EINVAL;
        }
        snprintf(out->port, sizeof out->port, "%ld", v);
    }
    size_t bn = strcspn(end, "?#");
    while (bn > 0 && end[bn - 1] == '/')
        bn--;
    if (bn >= sizeof out->path) {
        snprintf(err, errlen, "\"%.300s\": path too long", url);
        return -EINVAL;
    }
    memcpy(out->path, end, bn);
    out->path[bn] = '\0';
    return 0;
}

/* The payload element of a worker's XML reply: the first element inside
 * oadrSignedObject, its prefix dropped. "" when there is none. */
static void payload_element(const char *b, size_t n, char *out, size_t outlen)
{
    out[0] = '\0';
    const char *so = NULL;
    for (size_t i = 0; i + 16 <= n; i++)
        if (memcmp(b + i, "oadrSignedObject", 16) == 0) {
            so = b + i + 16;
            break;
        }
    if (so == NULL)
        return;
    const char *e = b + n, *lt = memchr(so, '<', (size_t)(e - so));
    if (lt == NULL)
        return;
    const char *name = lt + 1, *q = name;
    while (q < e && *q != ' ' && *q != '>' && *q != '/' && *q != '\n' && *q != '\t') {
        if (*q == ':')
            name = q + 1;
        q++;
    }
    size_t len = (size_t)(q - name);
    if (len >= outlen)
        return;
    memcpy(out, name, len);
    out[len] = '\0';
}

static const char *service_of(const char *element, int *known)
{
    for (size_t i = 0; i < sizeof push_services / sizeof push_services[0]; i++)
        if (strcmp(push_services[i].element, element) == 0) {
            *known = 1;
            return push_services[i].service;
        }
    *known = 0;
    return NULL;
}

/* ---- Redis ----------------------------------------------------------------- */

static void job_step(push_job *j);
static void job_fail(push_job *j, const char *why);
static void job_free(push_job *j);
static void push_claim(gw_push *p);
static void push_free(gw_push *p);

static void on_connect(const redisAsyncContext *c, int status)
{
    gw_push *p = c->data;
    if (status != REDIS_OK) {
        vtn_warn("push_redis", "msg=\"cannot connect to Redis: %s\"", c->errstr);
        p->rc = NULL; /* hiredis frees the context after this callback */
        return;
    }
    p->connected = 1;
}

static void on_disconnect(const redisAsyncContext *c, int status)
{
    gw_push *p = c->data;
    if (status != REDIS_OK && !p->closing)
        vtn_warn("push_redis", "msg=\"Redis connection lost: %s\"", c->errstr);
    p->rc = NULL;
    p->connected = 0;
    p->claiming = 0;
}

/* Attaches an async connection to the loop; host NULL: the target's own
 * address (VTN_REDIS_URL). AUTH and SELECT are queued before any script. */
static void redis_attach(gw_push *p, const char *host, int port)
{
    redisAsyncContext *c = host ? redisAsyncConnect(host, port)
                           : p->target.unix_path[0]
                               ? redisAsyncConnectUnix(p->target.unix_path)
                               : redisAsyncConnect(p->target.host, p->target.port);
    if (c == NULL)
        return;
    if (c->err) {
        redisAsyncFree(c);
        return;
    }
    c->data = p;
    if (redisLibuvAttach(c, p->s->loop) != REDIS_OK) {
        redisAsyncFree(c);
        return;
    }
    redisAsyncSetConnectCallback(c, on_connect);
    redisAsyncSetDisconnectCallback(c, on_disconnect);
    if (p->target.password[0])
        redisAsyncCommand(c, NULL, NULL, "AUTH %s", p->target.password);
    if (p->target.db)
        redisAsyncCommand(c, NULL, NULL, "SELECT %d", p->target.db);
    p->rc = c;
}

/* With sentinels, the primary is found the way every process finds it
 * (vtn_redis_connect: ask each sentinel, check ROLE), which blocks for up
 * to a timeout per sentinel: that runs on libuv's thread pool, never on the
 * loop that serves VENs, and the async connection then goes to the address
 * found. A push_find outlives a gw_push that closes meanwhile (p NULL). */
typedef struct push_find {
    uv_work_t work;
    gw_push *p;
    vtn_redis_target target;
    char host[256];
    int port;
    char err[512];
} push_find;

static void find_work(uv_work_t *w)
{
    push_find *f = w->data;
    redisContext *c =
        vtn_redis_connect(&f->target, VTN_REDIS_SENTINEL_TIMEOUT_MS, f->err, sizeof f->err);
    if (c == NULL)
        return;
    if (c->connection_type == REDIS_CONN_TCP && c->tcp.host) {
        snprintf(f->host, sizeof f->host, "%s", c->tcp.host);
        f->port = c->tcp.port;
    }
    redisFree(c);
}

static void find_done(uv_work_t *w, int status)
{
    push_find *f = w->data;
    gw_push *p = f->p;
    if (p != NULL) {
        p->finding = NULL;
        if (status == 0 && f->host[0] && !p->closing && p->rc == NULL)
            redis_attach(p, f->host, f->port);
        else if (!f->host[0])
            vtn_warn("push_redis", "msg=\"no Redis primary: %s\"", f->err[0] ? f->err : "?");
    }
    free(f);
}

static void redis_connect(gw_push *p)
{
    if (p->target.nsentinels == 0) {
        redis_attach(p, NULL, 0);
        return;
    }
    if (p->finding != NULL)
        return;
    push_find *f = calloc(1, sizeof *f);
    if (f == NULL)
        return;
    f->p = p;
    f->target = p->target;
    f->work.data = f;
    if (uv_queue_work(p->s->loop, &f->work, find_work, find_done) != 0) {
        free(f);
        return;
    }
    p->finding = f;
}

/* EVAL of a script's full text (constants line + file): no SCRIPT LOAD to
 * keep in step with a Redis restart; Redis caches the compiled script. */
static int push_eval(gw_push *p, redisCallbackFn *cb, void *ud, const char *src, size_t srclen,
                     int nkeys, const char **args, int nargs)
{
    const char *argv[24];
    size_t lens[24];
    char nk[8];
    if (p->rc == NULL || !p->connected || nargs + 3 > 24)
        return -ENOTCONN;
    snprintf(nk, sizeof nk, "%d", nkeys);
    argv[0] = "EVAL";
    argv[1] = src;
    argv[2] = nk;
    lens[0] = 4;
    lens[1] = srclen;
    lens[2] = strlen(nk);
    for (int i = 0; i < nargs; i++) {
        argv[3 + i] = args[i];
        lens[3 + i] = strlen(args[i]);
    }
    return redisAsyncCommandArgv(p->rc, cb, ud, nargs + 3, argv, lens) == REDIS_OK ? 0 : -EIO;
}

/* The pushdone script for j: what ("renew", "ok", "retry", "giveup"). */
static int job_report(push_job *j, const char *what, long long next, const char *reason,
                      redisCallbackFn *cb)
{
    char vk[VTN_KEY_MAX], now[24], nx[24], rid[24];
    snprintf(now, sizeof now, "%lld", (long long)vtn_now_ms());
    snprintf(nx, sizeof nx, "%lld", next);
    snprintf(rid, sizeof rid, "%016" PRIx64, j->rid);
    const char *args[] = {VTN_KEY_PUSHDUE,
                          VTN_KEY_PUSHJOBS,
                          VTN_KEY_PUSHDIRTY,
                          vtn_key_build(vk, VTN_KEY_VEN, j->ven, NULL),
                          j->ven,
                          j->p->owner,
                          what,
                          now,
                          nx,
                          rid,
                          reason ? reason : ""};
    return push_eval(j->p, cb, j, j->p->done_src, j->p->done_len, 4, args,
                     (int)(sizeof args / sizeof args[0]));
}

/* ---- connections to VENs ----------------------------------------------------- */

static void conn_closed(uv_handle_t *h)
{
    push_conn *c = h->data;
    if (--c->nclose == 0) {
        gw_push_tls_free(&c->tls);
        vtn_buf_free(&c->body);
        vtn_buf_free(&c->req);
        free(c);
    }
}

static void conn_close(push_conn *c)
{
    if (c->state == C_CLOSING)
        return;
    if (c->state == C_IDLE) {
        gw_list_del(&c->link);
        c->p->nidle--;
    }
    int resolving = c->state == C_RESOLVE && c->gai.loop != NULL;
    c->state = C_CLOSING;
    if (c->job) {
        c->job->conn = NULL;
        c->job = NULL;
    }
    /* A lookup on the thread pool calls back even when cancelled: the
     * memory stays until then too. */
    c->nclose = 2 + resolving;
    if (resolving)
        (void)uv_cancel((uv_req_t *)&c->gai);
    uv_close((uv_handle_t *)&c->timer, conn_closed);
    uv_close((uv_handle_t *)&c->tcp, conn_closed);
}

/* The connection failed for its job: a reused idle connection the VEN
 * closed before answering gets one fresh connection. */
static void conn_fail(push_conn *c, const char *why)
{
    push_job *j = c->job;
    int again = c->reused && !c->got_bytes;
    conn_close(c);
    if (j == NULL)
        return;
    if (again) {
        j->stage = J_POST;
        job_step(j); /* a new connection */
        return;
    }
    job_fail(j, why);
}

static void write_done(uv_write_t *w, int status)
{
    (void)status; /* a failed write shows as a read error or the timeout */
    free(w->data);
}

static int conn_write(push_conn *c, const char *d, size_t n)
{
    if (n == 0)
        return 0;
    push_write *w = malloc(sizeof *w + n);
    if (w == NULL)
        return -ENOMEM;
    memcpy(w->data, d, n);
    w->n = n;
    w->w.data = w;
    uv_buf_t b = uv_buf_init(w->data, (unsigned)n);
    int rc = uv_write(&w->w, (uv_stream_t *)&c->tcp, &b, 1, write_done);
    if (rc != 0)
        free(w);
    return rc;
}

/* Sends the request once the connection (and TLS) is up. */
static int conn_send_request(push_conn *c)
{
    if (c->sent || c->req.len == 0)
        return 0;
    if (c->tls == NULL) {
        c->sent = 1;
        return conn_write(c, c->req.data, c->req.len);
    }
    if (!gw_push_tls_handshake_done(c->tls))
        return 0;
    gw_push *p = c->p;
    vtn_buf_reset(&p->wire);
    if (gw_push_tls_write(c->tls, c->req.data, c->req.len, &p->wire) != 0)
        return -EPROTO;
    c->sent = 1;
    return conn_write(c, p->wire.data, p->wire.len);
}

static int on_status(llhttp_t *h, const char *at, size_t n)
{
    (void)at;
    (void)n;
    push_conn *c = h->data;
    c->status = h->status_code;
    return 0;
}

static int on_body(llhttp_t *h, const char *at, size_t n)
{
    push_conn *c = h->data;
    return vtn_buf_append(&c->body, at, n) == 0 ? 0 : -1;
}

static int on_complete(llhttp_t *h)
{
    push_conn *c = h->data;
    c->status = h->status_code;
    c->keep = llhttp_should_keep_alive(h);
    c->complete = 1;
    return HPE_PAUSED;
}

static void job_answer(push_job *j, push_conn *c);

static void idle_timeout(uv_timer_t *t)
{
    conn_close(t->data);
}

/* The VEN answered: the job goes on; the connection waits for the VEN's
 * next message when the VEN keeps it alive. */
static void conn_response(push_conn *c)
{
    push_job *j = c->job;
    uv_timer_stop(&c->timer);
    j->conn = NULL;
    c->job = NULL;
    job_answer(j, c); /* reads c->status and c->body */
    if (!c->keep || c->p->closing || c->state == C_CLOSING || c->p->nidle >= PUSH_IDLE_MAX) {
        conn_close(c);
        return;
    }
    gw_push *p = c->p;
    c->state = C_IDLE;
    gw_list_add_tail(&p->idle[idle_bucket(c->ven)], &c->link);
    p->nidle++;
    uv_timer_start(&c->timer, idle_timeout, PUSH_IDLE_MS, 0);
}

static void conn_plain(push_conn *c, const char *d, size_t n)
{
    if (c->state == C_IDLE || c->job == NULL) {
        conn_close(c); /* nothing asked: a VEN does not speak first */
        return;
    }
    llhttp_errno_t e = llhttp_execute(&c->parser, d, n);
    if (c->complete) {
        conn_response(c);
        return;
    }
    if (e != HPE_OK)
        conn_fail(c, "the VEN's HTTP response is malformed");
}

static void conn_alloc(uv_handle_t *h, size_t sz, uv_buf_t *b)
{
    (void)sz;
    push_conn *c = h->data;
    *b = uv_buf_init(c->p->rbuf, sizeof c->p->rbuf);
}

static void conn_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    push_conn *c = st->data;
    if (n == 0 || c->state == C_CLOSING)
        return;
    if (n < 0) {
        if (c->state == C_IDLE)
            conn_close(c);
        else if (c->job && !c->complete && c->tls == NULL && n == UV_EOF &&
                 llhttp_message_needs_eof(&c->parser)) {
            if (llhttp_finish(&c->parser) == HPE_OK && c->complete)
                conn_response(c);
            else
                conn_fail(c, "the VEN closed the connection before its answer ended");
        } else
            conn_fail(c, "the VEN closed the connection before answering");
        return;
    }
    c->got_bytes = c->got_bytes || c->sent;
    if (c->tls == NULL) {
        conn_plain(c, b->base, (size_t)n);
        return;
    }
    gw_push *p = c->p;
    vtn_buf_reset(&p->plain);
    vtn_buf_reset(&p->wire);
    int rc = gw_push_tls_feed(c->tls, b->base, (size_t)n, &p->plain, &p->wire);
    if (p->wire.len)
        (void)conn_write(c, p->wire.data, p->wire.len);
    if (rc < 0) {
        char why[300];
        snprintf(why, sizeof why, "TLS: %s", gw_push_tls_error(c->tls));
        conn_fail(c, why);
        return;
    }
    if (conn_send_request(c) != 0) {
        conn_fail(c, "cannot send the request");
        return;
    }
    if (p->plain.len) {
        /* plain is scratch shared by every connection: copy out first */
        vtn_buf_reset(&p->scratch);
        if (vtn_buf_append(&p->scratch, p->plain.data, p->plain.len) != 0) {
            conn_fail(c, "answer too large");
            return;
        }
        conn_plain(c, p->scratch.data, p->scratch.len);
        return;
    }
    if (rc == GW_PUSH_TLS_EOF)
        conn_fail(c, "the VEN closed the TLS connection before answering");
}

static void conn_timeout(uv_timer_t *t)
{
    push_conn *c = t->data;
    char why[64];
    snprintf(why, sizeof why, "no answer within %lld ms", c->p->cfg->push_timeout_ms);
    c->reused = 0; /* a timeout is not a stale connection: no second try */
    conn_fail(c, why);
}

static void conn_connected(uv_connect_t *r, int status)
{
    push_conn *c = r->data;
    if (c->state == C_CLOSING)
        return;
    if (status != 0) {
        char why[128];
        snprintf(why, sizeof why, "connect: %s", uv_strerror(status));
        conn_fail(c, why);
        return;
    }
    c->state = C_OPEN;
    uv_read_start((uv_stream_t *)&c->tcp, conn_alloc, conn_read);
    if (c->tls) {
        gw_push *p = c->p;
        vtn_buf_reset(&p->plain);
        vtn_buf_reset(&p->wire);
        if (gw_push_tls_feed(c->tls, NULL, 0, &p->plain, &p->wire) < 0 ||
            conn_write(c, p->wire.data, p->wire.len) != 0) {
            conn_fail(c, "cannot start TLS");
            return;
        }
        return;
    }
    if (conn_send_request(c) != 0)
        conn_fail(c, "cannot send the request");
}

static void conn_resolved(uv_getaddrinfo_t *g, int status, struct addrinfo *res)
{
    push_conn *c = g->data;
    c->gai.loop = NULL;
    if (c->state == C_CLOSING) {
        uv_freeaddrinfo(res);
        conn_closed((uv_handle_t *)&c->tcp);
        return;
    }
    if (status != 0 || res == NULL) {
        char why[300];
        snprintf(why, sizeof why, "cannot resolve the VEN's host: %s", uv_strerror(status));
        uv_freeaddrinfo(res);
        conn_fail(c, why);
        return;
    }
    c->state = C_CONNECT;
    c->creq.data = c;
    int rc = uv_tcp_connect(&c->creq, &c->tcp, res->ai_addr, conn_connected);
    uv_freeaddrinfo(res);
    if (rc != 0) {
        char why[128];
        snprintf(why, sizeof why, "connect: %s", uv_strerror(rc));
        conn_fail(c, why);
    }
}

static void conn_reset_exchange(push_conn *c)
{
    llhttp_init(&c->parser, HTTP_RESPONSE, &c->settings);
    c->parser.data = c;
    vtn_buf_reset(&c->body);
    c->status = c->complete = c->keep = c->got_bytes = c->sent = 0;
}

/* An idle connection to the same VEN at the same address, or a new one. */
static push_conn *conn_get(gw_push *p, push_job *j)
{
    gw_list *b = &p->idle[idle_bucket(j->ven)];
    for (gw_list *l = b->next; l != b; l = l->next) {
        push_conn *c = gw_container_of(l, push_conn, link);
        if (strcmp(c->ven, j->ven) == 0 && strcmp(c->url, j->url) == 0) {
            gw_list_del(&c->link);
            p->nidle--;
            uv_timer_stop(&c->timer);
            c->state = C_OPEN;
            c->reused = 1;
            GW_INC(p->m->push_conns_reused);
            return c;
        }
    }
    push_conn *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    c->p = p;
    snprintf(c->ven, sizeof c->ven, "%s", j->ven);
    snprintf(c->url, sizeof c->url, "%s", j->url);
    vtn_buf_init(&c->body, PUSH_BODY_MAX);
    vtn_buf_init(&c->req, PUSH_BODY_MAX + 4096);
    llhttp_settings_init(&c->settings);
    c->settings.on_status = on_status;
    c->settings.on_body = on_body;
    c->settings.on_message_complete = on_complete;
    uv_tcp_init(p->s->loop, &c->tcp);
    uv_timer_init(p->s->loop, &c->timer);
    c->tcp.data = c;
    c->timer.data = c;
    c->gai.data = c;
    if (j->u.https &&
        (p->s->push_ctx == NULL || gw_push_tls_new(p->s->push_ctx, j->u.host, &c->tls))) {
        c->state = C_OPEN; /* closed at once by the caller */
        conn_close(c);
        return NULL;
    }
    c->state = C_RESOLVE;
    GW_INC(p->m->push_conns_opened);
    return c;
}

/* ---- jobs ------------------------------------------------------------------------ */

static void job_submit(push_job *j, const char *service, const char *body, size_t n, int poll)
{
    gw_push *p = j->p;
    gw_req *r = &j->req;
    gw_server *s = p->s;
    char path[64];
    snprintf(path, sizeof path, PUSH_OADR_PATH "%s", service);
    r->id = poll && j->rid ? j->rid : s->id_base + ++s->id_seq;
    r->start_ns = uv_hrtime();
    r->push = 1;
    vtn_request vr = {0};
    vr.id = r->id;
    vr.kind = VTN_KIND_OADR;
    vr.deadline_ms = vtn_now_ms() + p->cfg->request_timeout_ms;
    vr.fingerprint = vtn_str_c("");
    vr.remote = vtn_str_c(PUSH_REMOTE);
    vr.method = vtn_str_c("POST");
    vr.path = vtn_str_c(path);
    vr.content_type = vtn_str_c("application/xml");
    vr.body.p = body;
    vr.body.n = (uint32_t)n;
    vtn_buf_reset(&p->scratch);
    if (vtn_wire_ext_put(&p->scratch, VTN_WIRE_EXT_PUSH_VEN, vtn_str_c(j->ven)) != 0) {
        job_fail(j, "out of memory");
        return;
    }
    vr.ext.p = p->scratch.data;
    vr.ext.n = (uint32_t)p->scratch.len;
    vtn_buf_reset(&r->env);
    if (vtn_wire_encode_request(&r->env, &vr) != 0) {
        job_fail(j, "cannot encode the request to a worker");
        return;
    }
    if (gw_pool_submit(p->pool, r, uv_now(s->loop)) != 0)
        job_fail(j, "no worker available");
}

/* The poll on the VEN's behalf: an oadrPoll with its venID. */
static void job_poll(push_job *j)
{
    gw_push *p = j->p;
    vtn_buf b;
    vtn_buf_init(&b, 4096);
    int rc = vtn_buf_appends(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                                 "<oadr:oadrPayload xmlns:oadr=\"http://openadr.org/oadr-2.0b/"
                                 "2012/07\" xmlns:ei=\"http://docs.oasis-open.org/ns/"
                                 "energyinterop/201110\"><oadr:oadrSignedObject><oadr:oadrPoll "
                                 "ei:schemaVersion=\"2.0b\"><ei:venID>");
    rc = rc ? rc : vtn_buf_append_xml(&b, j->ven, strlen(j->ven));
    rc = rc ? rc
            : vtn_buf_appends(&b, "</ei:venID></oadr:oadrPoll></oadr:oadrSignedObject>"
                                  "</oadr:oadrPayload>\n");
    (void)p;
    j->stage = J_POLL;
    if (rc != 0)
        job_fail(j, "out of memory");
    else
        job_submit(j, "OadrPoll", b.data, b.len, 1);
    vtn_buf_free(&b);
}

static void on_renewed(redisAsyncContext *c, void *r, void *ud)
{
    (void)c;
    push_job *j = ud;
    redisReply *rep = r;
    if (j->p->closing) {
        job_free(j);
        return;
    }
    if (rep == NULL || rep->type != REDIS_REPLY_INTEGER) {
        job_fail(j, "Redis did not take the lease renewal");
        return;
    }
    if (rep->integer != 1) {
        /* Our lease ended and another gateway has the job now. */
        vtn_warn("push_lease_lost", "ven=%s", j->ven);
        job_free(j);
        return;
    }
    job_poll(j);
}

/* Renews the lease and records the rid of the poll about to run, so that
 * a gateway taking over after us gets the same queued message back. */
static void job_renew(push_job *j)
{
    gw_push *p = j->p;
    if (j->rid == 0)
        j->rid = p->s->id_base + ++p->s->id_seq;
    j->stage = J_RENEW;
    if (job_report(j, "renew", vtn_now_ms() + p->cfg->push_lease_ms, NULL, on_renewed) != 0)
        job_fail(j, "Redis unavailable");
}

static void on_reported(redisAsyncContext *c, void *r, void *ud)
{
    (void)c;
    (void)r;
    job_free(ud);
}

static void job_finish(push_job *j, const char *what, long long next, const char *reason)
{
    j->stage = J_DONE;
    if (job_report(j, what, next, reason, on_reported) != 0)
        job_free(j); /* the lease ends on its own */
}

static long long backoff_ms(const gw_push *p, unsigned attempts)
{
    long long d = p->cfg->push_retry_ms;
    for (unsigned i = 0; i < attempts && d < p->cfg->push_retry_max_ms; i++)
        d *= 2;
    if (d > p->cfg->push_retry_max_ms)
        d = p->cfg->push_retry_max_ms;
    uint64_t r = 0;
    (void)vtn_random64(&r);
    /* full jitter in [d/2, d): gateways retrying many VENs do not move in step */
    return d / 2 + (long long)(r % (uint64_t)(d / 2 + 1));
}

static void job_fail(push_job *j, const char *why)
{
    gw_push *p = j->p;
    char q[400];
    if (j->conn)
        conn_close(j->conn);
    if (p->closing) {
        job_free(j);
        return;
    }
    vtn_log_quote(q, sizeof q, why, strlen(why));
    if (j->attempts + 1 >= (unsigned)p->cfg->push_max_attempts) {
        GW_INC(p->m->push_undelivered);
        vtn_warn("push_undelivered", "ven=%s url=%s attempts=%u error=%s", j->ven, j->url,
                 j->attempts + 1, q);
        job_finish(j, "giveup", vtn_now_ms() + p->cfg->push_recheck_ms, why);
        return;
    }
    GW_INC(p->m->push_retries);
    long long d = backoff_ms(p, j->attempts);
    vtn_info("push_retry", "ven=%s url=%s attempt=%u retry_in_ms=%lld error=%s", j->ven, j->url,
             j->attempts + 1, d, q);
    job_finish(j, "retry", vtn_now_ms() + d, why);
}

/* The POST of j->msg to the VEN on a connection of its own. */
static void job_post(push_job *j)
{
    gw_push *p = j->p;
    push_conn *c = conn_get(p, j);
    if (c == NULL) {
        job_fail(j, j->u.https && p->s->push_ctx == NULL ? "push TLS not configured"
                                                         : "cannot start a connection");
        return;
    }
    j->conn = c;
    c->job = j;
    conn_reset_exchange(c);
    vtn_buf_reset(&c->req);
    /* transportAddress + "/" + the service; a transportAddress without a
     * path gets the profile's, /OpenADR2/Simple/2.0b. */
    int v6 = strchr(j->u.host, ':') != NULL;
    int rc = vtn_buf_printf(&c->req,
                            "POST %s/%s HTTP/1.1\r\nHost: %s%s%s:%s\r\n"
                            "Content-Type: application/xml\r\nContent-Length: %zu\r\n"
                            "User-Agent: openvtn\r\n\r\n",
                            j->u.path[0] ? j->u.path : "/OpenADR2/Simple/2.0b", j->service,
                            v6 ? "[" : "", j->u.host, v6 ? "]" : "", j->u.port, j->msg.len);
    rc = rc ? rc : vtn_buf_append(&c->req, j->msg.data, j->msg.len);
    if (rc != 0) {
        job_fail(j, "message too large");
        return;
    }
    uv_timer_start(&c->timer, conn_timeout, (uint64_t)p->cfg->push_timeout_ms, 0);
    if (c->state == C_OPEN) { /* reused */
        if (conn_send_request(c) != 0)
            conn_fail(c, "cannot send the request");
        return;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    rc = uv_getaddrinfo(p->s->loop, &c->gai, conn_resolved, j->u.host, j->u.port, &hints);
    if (rc != 0) {
        c->gai.loop = NULL; /* no callback will come */
        char why[128];
        snprintf(why, sizeof why, "cannot resolve the VEN's host: %s", uv_strerror(rc));
        conn_fail(c, why);
    }
}

/* The VEN's HTTP response to the message: its body is the VEN's answer,
 * handled by a worker as if the VEN had sent it. */
static void job_answer(push_job *j, push_conn *c)
{
    gw_push *p = j->p;
    if (c->status != 200) {
        char why[64];
        snprintf(why, sizeof why, "the VEN answered HTTP %d", c->status);
        job_fail(j, why);
        return;
    }
    j->nmsg++;
    if (strcmp(j->element, "oadrDistributeEvent") == 0)
        j->sent_event = 1;
    GW_INC(p->m->push_delivered);
    vtn_info("push_delivered", "ven=%s message=%s reused=%d answer_bytes=%zu", j->ven, j->element,
             c->reused, c->body.len);
    j->rid = 0; /* delivered: the next poll is a new one */
    j->attempts = 0;
    if (c->body.len == 0) {
        job_renew(j);
        return;
    }
    j->stage = J_ANSWER;
    job_submit(j, j->service, c->body.data, c->body.len, 0);
}

/* A worker answered the poll (J_POLL) or took the VEN's answer (J_ANSWER). */
static void job_worker_reply(push_job *j, const vtn_reply *rep)
{
    gw_push *p = j->p;
    if (j->stage == J_ANSWER) {
        if (rep->status >= 500) {
            job_fail(j, "a worker could not take the VEN's answer");
            return;
        }
        if (j->nmsg >= PUSH_MSGS_PER_RUN) {
            job_finish(j, "ok", vtn_now_ms(), NULL); /* more later; others go first */
            return;
        }
        job_renew(j);
        return;
    }
    if (rep->status != 200) {
        char why[64];
        snprintf(why, sizeof why, "the worker answered the poll with HTTP %u", rep->status);
        job_fail(j, why);
        return;
    }
    char el[64];
    int known;
    payload_element(rep->body.p, rep->body.n, el, sizeof el);
    const char *svc = service_of(el, &known);
    if (svc == NULL || (j->sent_event && strcmp(el, "oadrDistributeEvent") == 0)) {
        /* Nothing (more) to deliver; a distribute sent again in the same run
         * (an event that awaits an answer the VEN gave otherwise) waits for
         * the next change or recheck. */
        if (!known)
            vtn_warn("push_unknown_message", "ven=%s element=%s", j->ven, el[0] ? el : "-");
        job_finish(j, "ok", vtn_now_ms() + p->cfg->push_recheck_ms, NULL);
        return;
    }
    for (size_t i = 0; i < sizeof push_services / sizeof push_services[0]; i++)
        if (strcmp(push_services[i].element, el) == 0)
            j->element = push_services[i].element;
    j->service = svc;
    vtn_buf_reset(&j->msg);
    if (vtn_buf_append(&j->msg, rep->body.p, rep->body.n) != 0) {
        job_fail(j, "message too large");
        return;
    }
    j->stage = J_POST;
    job_post(j);
}

static void job_step(push_job *j)
{
    if (j->stage == J_POST)
        job_post(j);
}

void gw__push_req_done(gw_push *p, gw_req *r, const vtn_reply *rep)
{
    (void)p;
    job_worker_reply(gw_container_of(r, push_job, req), rep);
}

void gw__push_req_fail(gw_push *p, gw_req *r, int status)
{
    (void)p;
    job_fail(gw_container_of(r, push_job, req),
             status == 503 ? "no worker available" : "the worker did not answer in time");
}

static void job_free(push_job *j)
{
    gw_push *p = j->p;
    if (j->conn)
        conn_close(j->conn);
    if (j->stage == J_POLL || j->stage == J_ANSWER)
        gw_pool_cancel(p->pool, &j->req);
    gw_list_del(&j->link);
    p->njobs--;
    GW_SET(p->m->push_inflight, p->njobs);
    vtn_buf_free(&j->req.env);
    vtn_buf_free(&j->msg);
    free(j);
    if (!p->closing && !p->draining && !p->claiming)
        push_claim(p);
}

/* A job the claim script gave us: venID, transportAddress, attempts, rid, since. */
static void job_start(gw_push *p, const redisReply *e)
{
    if (e->type != REDIS_REPLY_ARRAY || e->elements != 5 ||
        e->element[0]->type != REDIS_REPLY_STRING || e->element[1]->type != REDIS_REPLY_STRING)
        return;
    push_job *j = calloc(1, sizeof *j);
    if (j == NULL)
        return; /* its lease ends and it comes back */
    j->p = p;
    gw_list_add_tail(&p->jobs, &j->link);
    p->njobs++;
    GW_SET(p->m->push_inflight, p->njobs);
    vtn_buf_init(&j->req.env, PUSH_BODY_MAX + 65536);
    vtn_buf_init(&j->msg, PUSH_BODY_MAX);
    snprintf(j->ven, sizeof j->ven, "%.*s", (int)e->element[0]->len, e->element[0]->str);
    snprintf(j->url, sizeof j->url, "%.*s", (int)e->element[1]->len, e->element[1]->str);
    j->attempts = (unsigned)e->element[2]->integer;
    if (e->element[3]->type == REDIS_REPLY_STRING && e->element[3]->len == 16)
        j->rid = strtoull(e->element[3]->str, NULL, 16);
    j->since = e->element[4]->integer;
    char err[400];
    if (gw_push_url_parse(j->url, &j->u, err, sizeof err) != 0) {
        job_fail(j, err);
        return;
    }
    if (!j->u.https && !p->cfg->push_allow_http) {
        GW_INC(p->m->push_refused_http);
        vtn_error("push_refused",
                  "ven=%s url=%s msg=\"plain HTTP transportAddress refused; set "
                  "VTN_PUSH_ALLOW_HTTP=1 for development only\"",
                  j->ven, j->url);
        j->attempts = (unsigned)p->cfg->push_max_attempts - 1; /* no point in retrying */
        job_fail(j, "plain HTTP transportAddress refused (VTN_PUSH_ALLOW_HTTP is off)");
        return;
    }
    job_renew(j);
}

static void on_claimed(redisAsyncContext *c, void *r, void *ud)
{
    (void)c;
    gw_push *p = ud;
    redisReply *rep = r;
    p->claiming = 0;
    if (p->closing || rep == NULL)
        return;
    if (rep->type == REDIS_REPLY_ERROR) {
        vtn_warn("push_claim_failed", "error=\"%.200s\"", rep->str);
        /* A failover made this server a replica: find the primary again. */
        if (vtn_redis_is_readonly(rep) && p->rc != NULL)
            redisAsyncDisconnect(p->rc);
        return;
    }
    if (rep->type != REDIS_REPLY_ARRAY)
        return;
    for (size_t i = 0; i < rep->elements; i++)
        job_start(p, rep->element[i]);
}

static void push_claim(gw_push *p)
{
    if (p->claiming || p->draining || p->njobs >= p->max_jobs || !p->connected ||
        GW_GET(p->pool->stats.live_workers) == 0)
        return;
    char now[24], lease[24], max[24];
    snprintf(now, sizeof now, "%lld", (long long)vtn_now_ms());
    snprintf(lease, sizeof lease, "%lld", p->cfg->push_lease_ms);
    snprintf(max, sizeof max, "%zu", p->max_jobs - p->njobs);
    const char *args[] = {VTN_KEY_PUSHDUE,
                          VTN_KEY_PUSHJOBS,
                          VTN_KEY_PUSHDIRTY,
                          VTN_KEY_PUSHVER,
                          VTN_KEY_EVENTSVER,
                          VTN_KEY_PUSHMARKS,
                          now,
                          lease,
                          p->owner,
                          max};
    if (push_eval(p, on_claimed, p, p->claim_src, p->claim_len, 6, args,
                  (int)(sizeof args / sizeof args[0])) == 0)
        p->claiming = 1;
}

static void push_tick(uv_timer_t *t)
{
    gw_push *p = t->data;
    if (p->rc == NULL && !p->closing) {
        int64_t now = (int64_t)uv_now(p->s->loop);
        if (now >= p->next_connect) {
            p->next_connect = now + PUSH_RECONNECT_MS;
            redis_connect(p);
        }
        return;
    }
    push_claim(p);
}

static int load_script(const char *name, char **src, size_t *len, char *err, size_t errlen)
{
    const vtn_script_file *f = vtn_script_find(name);
    if (f == NULL || vtn_script_source(f, src, len) != 0) {
        snprintf(err, errlen, "cannot build the %s script", name);
        return -ENOMEM;
    }
    return 0;
}

int gw_push_start(gw_server *s, gw_push **out, char *err, size_t errlen)
{
    const gw_config *cfg = s->cfg;
    *out = NULL;
    if (cfg->push_concurrency <= 0 || !gw_advert_wanted(cfg))
        return 0;
    if (s->push_ctx == NULL && !cfg->push_allow_http)
        return 0; /* this gateway cannot push: leave the jobs to one that can */
    gw_push *p = calloc(1, sizeof *p);
    if (p == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    p->s = s;
    p->pool = &s->pool;
    p->m = s->metrics;
    p->cfg = cfg;
    p->max_jobs = (size_t)cfg->push_concurrency;
    gw_list_init(&p->jobs);
    for (size_t i = 0; i < PUSH_IDLE_BUCKETS; i++)
        gw_list_init(&p->idle[i]);
    vtn_buf_init(&p->plain, GW_IN_MAX + GW_READ_BUF + 64 * 1024);
    vtn_buf_init(&p->wire, ((size_t)8 << 20));
    vtn_buf_init(&p->scratch, ((size_t)8 << 20));
    snprintf(p->owner, sizeof p->owner, "gw-%016" PRIx64, s->id_base);
    if (vtn_redis_target_init(&p->target, cfg->redis_url, cfg->redis_sentinels,
                              cfg->redis_sentinel_master, cfg->redis_sentinel_password, err,
                              errlen) < 0) {
        push_free(p);
        return -EINVAL;
    }
    int rc = load_script("pushclaim", &p->claim_src, &p->claim_len, err, errlen);
    if (rc == 0)
        rc = load_script("pushdone", &p->done_src, &p->done_len, err, errlen);
    if (rc != 0) {
        push_free(p);
        return rc;
    }
    uv_timer_init(s->loop, &p->tick);
    p->tick.data = p;
    redis_connect(p);
    uv_timer_start(&p->tick, push_tick, PUSH_CLAIM_MS, PUSH_CLAIM_MS);
    vtn_info("push",
             "owner=%s concurrency=%lld lease_ms=%lld timeout_ms=%lld max_attempts=%lld "
             "recheck_ms=%lld tls=%d allow_http=%d",
             p->owner, cfg->push_concurrency, cfg->push_lease_ms, cfg->push_timeout_ms,
             cfg->push_max_attempts, cfg->push_recheck_ms, s->push_ctx != NULL,
             cfg->push_allow_http);
    *out = p;
    return 0;
}

void gw_push_drain(gw_push *p)
{
    if (p)
        p->draining = 1; /* no new jobs; the ones running finish or their lease ends */
}

static void push_free(gw_push *p)
{
    if (p->finding != NULL)
        p->finding->p = NULL; /* its find_done frees it */
    vtn_buf_free(&p->plain);
    vtn_buf_free(&p->wire);
    vtn_buf_free(&p->scratch);
    free(p->claim_src);
    free(p->done_src);
    free(p);
}

static void tick_closed(uv_handle_t *h)
{
    push_free(h->data);
}

/* Stops everything: Redis callbacks then see no reply, jobs and
 * connections go, their leases end on their own. The memory goes once the
 * loop closed the timer. */
void gw_push_close(gw_push **pp)
{
    gw_push *p = *pp;
    *pp = NULL;
    if (p == NULL)
        return;
    p->closing = 1;
    if (p->rc) {
        redisAsyncContext *c = p->rc;
        p->rc = NULL;
        redisAsyncFree(c); /* pending callbacks run with no reply: jobs in J_RENEW/J_DONE go */
    }
    while (!gw_list_empty(&p->jobs))
        job_free(gw_container_of(p->jobs.next, push_job, link));
    for (size_t i = 0; i < PUSH_IDLE_BUCKETS; i++)
        while (!gw_list_empty(&p->idle[i]))
            conn_close(gw_container_of(p->idle[i].next, push_conn, link));
    uv_close((uv_handle_t *)&p->tick, tick_closed);
}
