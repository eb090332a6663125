/* Gateway internals shared between the files of gateway/ (and its unit
 * tests). Layers, bottom up:
 *
 *   http.c    gw_http: one HTTP/1.1 connection's parser state, limits and
 *             response framing; no sockets (feed bytes in, get bytes out
 *             through a callback), so tests and the fuzzer drive it directly.
 *   route.c   gw_route: path/method/content type -> route or HTTP error.
 *   pool.c    gw_pool: the worker pool (Paranoid Pirate with credits); no
 *             sockets either, frames go out through a callback.
 *   broker.c  gw_broker: the ZeroMQ ROUTER inside the libuv loop.
 *   conn.c    gw_conn: libuv TCP connections, timers, listeners.
 *   server.c  gw_server: ties it together, signals and drain.
 * Calls go one way only (server.c -> conn.c -> http.c ...); a lower layer
 * reaches a higher one through a callback it was given (gw_http_cbs,
 * gw_pool_ops, gw_server.on_conn_gone). tests/unit/check_no_cycles.py
 * checks it.
 *   ui.c      gw_ui: the console's static files under /ui/ (held in memory).
 *   metrics.c, advertise.c (Redis discovery thread), config.c, main.c. */
#ifndef GW_INTERNAL_H
#define GW_INTERNAL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <llhttp.h>
#include <uv.h>

#include "vtn/buf.h"
#include "vtn/config.h"
#include "vtn/fingerprint.h"
#include "vtn/metrics.h"
#include "vtn/ops.h"
#include "vtn/wire.h"

/* ---- small helpers ---------------------------------------------------- */

#define gw_container_of(p, T, m) ((T *)(void *)((char *)(p)-offsetof(T, m)))

/* Intrusive circular doubly linked list (an empty head points at itself). */
typedef struct gw_list {
    struct gw_list *next, *prev;
} gw_list;

static inline void gw_list_init(gw_list *l)
{
    l->next = l->prev = l;
}
static inline int gw_list_empty(const gw_list *l)
{
    return l->next == l;
}
static inline void gw_list_insert_(gw_list *n, gw_list *prev, gw_list *next)
{
    n->prev = prev;
    n->next = next;
    prev->next = n;
    next->prev = n;
}
static inline void gw_list_add_tail(gw_list *head, gw_list *n)
{
    gw_list_insert_(n, head->prev, head);
}
static inline void gw_list_add_head(gw_list *head, gw_list *n)
{
    gw_list_insert_(n, head, head->next);
}
/* Safe on a node that is not in any list (after gw_list_init). */
static inline void gw_list_del(gw_list *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    gw_list_init(n);
}

/* Buckets for a hash table of about n entries: a power of two from 64 up
 * to max (a power of two), so a mask replaces the modulo. */
static inline size_t gw_table_size(size_t n, size_t max)
{
    size_t b = 64;
    while (b < n && b < max)
        b <<= 1;
    return b;
}

/* Counters are written by the loop thread only and read by the ops thread:
 * a relaxed load + store is enough and avoids a locked instruction. */
#define GW_INC(x) GW_ADD(x, 1)
#define GW_ADD(x, v)                                                                               \
    atomic_store_explicit(&(x), atomic_load_explicit(&(x), memory_order_relaxed) + (v),            \
                          memory_order_relaxed)
#define GW_SET(x, v) atomic_store_explicit(&(x), (v), memory_order_relaxed)
#define GW_GET(x) atomic_load_explicit(&(x), memory_order_relaxed)

/* ---- configuration (config.c) ---------------------------------------- */

typedef struct gw_config {
    char *oadr_listen;
    char *api_listen;
    char *ops_listen;
    char *zmq_bind;
    char *zmq_advertise;
    char *redis_url;
    char *redis_sentinels;
    char *redis_sentinel_master;
    char *redis_sentinel_password;
    long long max_header_bytes;
    long long max_body_bytes;
    long long api_max_body_bytes;
    long long max_url; /* OpenADR listener */
    long long api_max_url;
    long long body_budget; /* 0 = sized from the machine's memory at start */
    char *api_token;       /* VTN_API_TOKEN; empty = the gateway does not check it */
    long long header_timeout_ms;
    long long idle_timeout_ms;
    long long max_connections; /* OpenADR listener */
    long long api_max_connections;
    long long max_conns_per_ip; /* 0 = no per-address cap */
    char *conn_exempt;          /* IPs/CIDRs the per-address cap ignores */
    long long read_timeout_ms;  /* first byte of a request to its complete body */
    long long request_timeout_ms;
    long long max_pending;
    long long retry_after_s;
    /* TLS on the OpenADR listener (gateway/tls.h; docs/tls.md) */
    char *tls_certs;
    char *tls_client_ca;
    char *tls_crl;
    char *tls_protocols;
    long long tls_handshake_timeout_ms;
    char *tls_resumption;
    long long tls_session_cache;
    char *tls_ticket_keys;
    /* TLS client for pushes to VENs (gateway/push_tls.h) */
    char *push_cert;
    char *push_ca;
    char *push_protocols;
    long long push_timeout_ms;
    /* push delivery (push.c) */
    long long push_concurrency; /* jobs (VENs) at once; 0 = this gateway delivers none */
    long long push_max_attempts;
    long long push_retry_ms, push_retry_max_ms;
    long long push_lease_ms;
    long long push_recheck_ms;
    int push_allow_http;
    /* trusted-proxy mode (proxy.c) */
    char *trusted_proxies;
    char *proxy_cert_header;
    char *proxy_fp_header;
    /* the operator console's files (ui.c) */
    char *ui_dir;           /* VTN_UI_DIR; empty = no console */
    long long ui_max_bytes; /* all of its files together */
} gw_config;

extern const vtn_cfg_item gw__config_items[];
extern const size_t gw__config_nitems;
/* Checks settings that depend on each other (TLS files without
 * certificates, TLS together with proxy mode, header names, the proxy list's
 * syntax). 0 or -EINVAL with a message naming the variable. */
int gw__config_check(const gw_config *cfg, char *err, size_t errlen);
/* vtn-gateway --push-check URL (push_check.c): exit status 0 (both
 * certificates accepted), 1 (refused, reason on stderr), 2 (usage). */
int gw_push_check(const gw_config *cfg, const char *url);

/* ---- HTTP/1.1 connection layer (http.c) ------------------------------- */

#define GW_READ_BUF (64 * 1024) /* one socket read */
#define GW_IN_HIGH (64 * 1024)  /* stop reading once this much input waits unparsed */
#define GW_IN_MAX (GW_IN_HIGH + GW_READ_BUF + 1024)

enum gw_http_state {
    GW_HTTP_IDLE,  /* between requests, nothing of the next one received */
    GW_HTTP_HEAD,  /* part of a request line / header received */
    GW_HTTP_BODY,  /* header complete, body being received */
    GW_HTTP_WAIT,  /* request handed to on_request, parser paused */
    GW_HTTP_FLUSH, /* response queued but not yet written; parser paused */
    GW_HTTP_DEAD   /* closing: an error was answered or the peer is done */
};

#define GW_KEEP_BUF (256 * 1024) /* a request buffer bigger than this is freed once answered */
#define GW_HNAME_MAX 64          /* longest header name matched by name (longer ones are "other") */
#define GW_XHDR_N 2              /* extra headers captured by name (the proxy identity headers) */

/* Request-body bytes buffered across every connection (VTN_BODY_BUDGET).
 * A body reserves its declared length when its header is complete (a
 * chunked one, each chunk's size at the chunk header) and gives it back once
 * answered, so the total never passes max. Loop thread only; `used` and
 * `refused` are read by the ops thread. */
#define GW_SMALL_BODY (16 * 1024) /* bodies up to this may use the budget's last quarter */

typedef struct gw_budget {
    size_t max;
    _Atomic uint64_t used, refused;
} gw_budget;

typedef struct gw_http_limits {
    size_t max_header;       /* request line + header bytes (431 beyond) */
    size_t max_body;         /* body bytes, chunked or not (413 beyond) */
    size_t max_url;          /* request target bytes (414 beyond); 0 = only max_header */
    gw_budget *budget;       /* shared by all connections; NULL = none */
    const char *retry_after; /* header line for the 503 of the budget; NULL = none */
    /* Header names captured into req.xhdr[i], lower-case; length 0 = none.
     * The trusted-proxy headers: their value reaches the connection, a
     * second copy in one request is a 400. */
    char xhdr_name[GW_XHDR_N][GW_HNAME_MAX];
    size_t xhdr_len[GW_XHDR_N];
} gw_http_limits;

typedef struct gw_http_req {
    uint8_t method; /* llhttp_method_t */
    uint8_t http_major, http_minor;
    uint8_t keep_alive; /* llhttp_should_keep_alive after the message */
    vtn_buf url;        /* request target as received */
    vtn_buf ctype;      /* Content-Type value */
    vtn_buf auth;       /* Authorization value */
    vtn_buf body;
    vtn_buf xhdr[GW_XHDR_N];     /* values of the captured headers (bounded by max_header) */
    uint8_t has_xhdr[GW_XHDR_N]; /* the header was present (even with an empty value) */
} gw_http_req;

typedef struct gw_iov {
    const char *p;
    size_t n;
} gw_iov;

typedef struct gw_http gw_http;

typedef struct gw_http_cbs {
    /* A complete request; the parser stays paused until gw_http_respond().
     * May respond synchronously. */
    void (*on_request)(gw_http *h, gw_http_req *req);
    /* Bytes for the peer, in order. 0 when all of it was written, 1 when
     * (some of) it was queued (the layer then waits for gw_http_resume()
     * before parsing the next request), <0 when the connection is broken. */
    int (*send)(gw_http *h, const gw_iov *iov, int n);
    /* Optional: the header is complete, no body byte read yet. 0 goes on;
     * an HTTP status refuses the request (answered with *why and the
     * header lines *extra, may stay NULL; then the connection closes). */
    int (*on_head)(gw_http *h, const gw_http_req *req, const char **why, const char **extra);
} gw_http_cbs;

struct gw_http {
    llhttp_t parser;
    const gw_http_limits *lim;
    const gw_http_cbs *cbs;
    gw_http_req req;
    vtn_buf in;        /* input received while paused (bounded: GW_IN_MAX) */
    size_t in_off;     /* parsed prefix of in */
    vtn_buf head;      /* response head being formatted (reused) */
    size_t head_bytes; /* of the request being parsed */
    uint64_t body_bytes;
    uint64_t begun; /* requests begun on this connection (timer bookkeeping) */
    int state;      /* enum gw_http_state */
    int err_status; /* status our callbacks chose before failing the parse */
    const char *err_reason;
    const char *err_extra;    /* header lines for that answer, or NULL */
    size_t reserved;          /* bytes of lim->budget held by the current request */
    int hdr;                  /* which header value is being received */
    size_t hname_len;         /* bytes of the current header name seen so far */
    char hname[GW_HNAME_MAX]; /* its first bytes, lower-cased (long names are "other") */
    char expect[16];
    size_t expect_len;
    char te[24]; /* the Transfer-Encoding value being received (longer: not chunked) */
    size_t te_len;
    char why[80];            /* a formatted err_reason */
    unsigned in_field : 1;   /* on_header_field seen since the last value */
    unsigned in_process : 1; /* re-entrancy guard for the parse loop */
    unsigned closing : 1;    /* next response says Connection: close */
    unsigned upgrade : 1;    /* Upgrade/CONNECT: we answer, then close */
    unsigned seen_ctype : 1, seen_auth : 1, seen_host : 1;
    unsigned te_other : 1;   /* a Transfer-Encoding coding other than chunked */
    unsigned sent_close : 1; /* a response saying Connection: close went out */
    int error_status;        /* the error this layer answered itself (400, 408, ...) */
};

void gw_http_init(gw_http *h, const gw_http_limits *lim, const gw_http_cbs *cbs);
void gw_http_free(gw_http *h);
/* New plaintext bytes from the peer. Returns 1 when the caller should stop
 * reading for now (too much unparsed input buffered), else 0. */
int gw_http_feed(gw_http *h, const char *p, size_t n);
/* The answer to the request passed to on_request (state WAIT). extra: header
 * lines each ending in CRLF (may be NULL). 0 or <0 (not waiting, send error). */
int gw_http_respond(gw_http *h, int status, const char *ctype, size_t ctype_len, const char *extra,
                    size_t extra_len, const char *body, size_t body_len);
/* Same, with a short text/plain body (gateway-generated answers). */
int gw_http_respond_text(gw_http *h, int status, const char *extra, const char *text);
/* The output queued by send() has been written: continue parsing. */
void gw_http_resume(gw_http *h);
/* A timer fired: a partly received request gets 408; the connection ends. */
void gw_http_timeout(gw_http *h);
/* Responses from now on carry Connection: close (drain, peer half-close). */
void gw_http_set_closing(gw_http *h);
/* Unparsed bytes waiting in the input buffer. */
static inline size_t gw_http_buffered(const gw_http *h)
{
    return h->in.len - h->in_off;
}
const char *gw__status_text(int status);

/* ---- routing (route.c) ----------------------------------------------- */

enum gw_listener_kind { GW_LISTEN_OADR = 0, GW_LISTEN_API = 1 };

enum gw_route_id {
    GW_ROUTE_REGISTER = 0, /* EiRegisterParty */
    GW_ROUTE_EVENT,        /* EiEvent */
    GW_ROUTE_REPORT,       /* EiReport */
    GW_ROUTE_OPT,          /* EiOpt */
    GW_ROUTE_POLL,         /* OadrPoll */
    GW_ROUTE_API,          /* /api/v1/... */
    GW_ROUTE_UI,           /* /ui and /ui/...: the console's files (ui.c) */
    GW_ROUTE_OTHER,        /* anything answered by the gateway itself */
    GW_ROUTE_COUNT
};

typedef struct gw_route_result {
    int status;        /* 0: forward to a worker; else the HTTP error */
    int route;         /* enum gw_route_id (metrics label) */
    int kind;          /* enum vtn_req_kind when status == 0 */
    const char *extra; /* header lines for the error (Allow), or NULL */
    const char *text;  /* error body */
    const char *path;  /* origin-form target to forward (absolute-form stripped) */
    size_t path_len;
} gw_route_result;

void gw_route(int listener_kind, int method, const char *url, size_t url_len, const char *ctype,
              size_t ctype_len, gw_route_result *out);
const char *gw_route_name(int route);

/* ---- the console's static files (ui.c) -------------------------------- */

#define GW_UI_PATH_MAX 512 /* longest decoded path under /ui/ that can name a file or page */

typedef struct gw_ui_file {
    char *path; /* relative to VTN_UI_DIR, '/'-separated: "assets/index-3f9a.js" */
    char *data;
    size_t len;
    const char *ctype;   /* from the name's extension */
    const char *headers; /* Cache-Control and the security headers, CRLF lines */
} gw_ui_file;

typedef struct gw_ui {
    gw_ui_file *files; /* sorted by path */
    size_t n;
    size_t bytes;
    const gw_ui_file *index; /* index.html; NULL = no console */
} gw_ui;

/* Reads every plain file under dir (symbolic links, dot files and odd names
 * are left out) into memory, at most max_bytes in all. 0, or <0 with err
 * saying why (no such directory, no index.html, too big); ui is then empty. */
int gw_ui_load(gw_ui *ui, const char *dir, size_t max_bytes, char *err, size_t errlen);
void gw_ui_free(gw_ui *ui);
const char *gw_ui_content_type(const char *name);

typedef struct gw_ui_answer {
    int status;             /* 200 (file set), 301, 404 or 405 (text set) */
    const gw_ui_file *file; /* the body (HEAD: its length only) */
    const char *ctype;      /* of file */
    const char *extra;      /* header lines: the file's, Allow or Location */
    const char *text;       /* error body */
} gw_ui_answer;

/* The answer to method on path ("/ui" or "/ui/...", query allowed), from
 * memory only. ui may be NULL or empty (no console installed). */
void gw_ui_answer_for(const gw_ui *ui, int method, const char *path, size_t n, gw_ui_answer *out);

/* ---- worker pool (pool.c) --------------------------------------------- */

#define GW_MAX_WORKERS 1024
#define GW_MAX_CREDITS 4096 /* per worker; READY asking for more is clamped */
#define GW_MAX_IDENT 255    /* ZeroMQ routing ids are at most 255 bytes */
#define GW_RETRY_MIN_MS 100 /* a retry needs at least this much deadline left */
#define GW_WORKER_HASH 64

enum gw_req_state { GW_REQ_IDLE = 0, GW_REQ_PENDING, GW_REQ_INFLIGHT, GW_REQ_FAILING };

enum gw_unavail_reason {
    GW_UNAVAIL_NO_WORKER = 0, /* no live worker */
    GW_UNAVAIL_QUEUE_FULL,    /* pending queue at VTN_MAX_PENDING */
    GW_UNAVAIL_WORKER_LOST,   /* its worker died and no retry was possible */
    GW_UNAVAIL_DEADLINE,      /* waited for a credit until its deadline */
    GW_UNAVAIL_STALLED,       /* its worker went silent while connected: a suspected poison
                                 request, never retried */
    GW_UNAVAIL_COUNT
};

struct gw_worker;

/* One request between the HTTP layer and a worker. Embedded in the
 * connection (one request in flight per connection: pipelined requests are
 * answered in order, so the next is parsed only after this one's reply). */
typedef struct gw_req {
    uint64_t id;
    uint64_t deadline; /* loop clock ms */
    uint64_t start_ns; /* for the latency histogram */
    uint8_t attempt;
    uint8_t route;
    uint8_t state; /* enum gw_req_state */
    uint16_t fail_status;
    uint8_t fail_reason;
    uint8_t push;             /* a push job's (push.c), not a connection's */
    struct gw_worker *worker; /* when INFLIGHT */
    gw_list link;             /* worker->inflight, pool->pending or pool->failing */
    gw_list age;              /* pool->by_age while PENDING or INFLIGHT */
    struct gw_req *hnext;     /* id hash chain */
    vtn_buf env;              /* the encoded vtn_request */
} gw_req;

typedef struct gw_worker {
    uint8_t ident[GW_MAX_IDENT];
    uint8_t ident_len;
    char name[64];
    uint64_t last_seen;   /* loop ms of its last message */
    uint64_t last_sent;   /* loop ms of our last heartbeat */
    uint32_t credits;     /* requests it will take now */
    uint32_t outstanding; /* sent and not answered (including abandoned ones) */
    gw_list lru;          /* in pool->lru while credits > 0 */
    gw_list all;          /* pool->workers */
    gw_list inflight;     /* gw_req.link */
    struct gw_worker *hnext;
} gw_worker;

typedef struct gw_pool_ops {
    /* One frame to the worker with this routing id: 0, -EHOSTUNREACH when the
     * peer is gone, another <0 on failure. */
    int (*send)(void *ud, const uint8_t *ident, size_t ident_len, const void *frame, size_t n);
    /* The worker's reply to r; rep points into the frame (valid during the call). */
    void (*done)(void *ud, gw_req *r, const vtn_reply *rep);
    /* The gateway answers r itself: 503 (reason in r->fail_reason) or 504. */
    void (*fail)(void *ud, gw_req *r, int status);
} gw_pool_ops;

typedef struct gw_pool_stats {
    _Atomic uint64_t live_workers, inflight, pending;
    _Atomic uint64_t retries, dropped_replies, timeouts, worker_deaths, protocol_errors;
    _Atomic uint64_t poison_suspects; /* requests held by a worker that went silent */
    _Atomic uint64_t unknown_frames;  /* frame types of a newer worker, ignored */
    _Atomic uint64_t loop_stalls;     /* ticks that came GW_LOOP_STALL_MS or more late */
    _Atomic uint64_t loop_lag_max_ms; /* the largest such lag since start */
    _Atomic uint64_t unavailable[GW_UNAVAIL_COUNT];
} gw_pool_stats;

typedef struct gw_pool {
    const gw_pool_ops *ops;
    void *ud;
    uint64_t timeout_ms;
    size_t max_pending;
    size_t npending, nworkers;
    gw_list workers; /* every known worker */
    gw_list lru;     /* workers with credits, least recently used first */
    gw_list pending; /* requests waiting for a credit, oldest first */
    gw_list by_age;  /* pending and in-flight requests, oldest (earliest deadline) first */
    gw_list failing; /* answered by the gateway at the end of the current call */
    gw_worker *whash[GW_WORKER_HASH];
    gw_req **rhash;
    size_t rmask;
    vtn_buf scratch; /* frames the pool builds itself (heartbeats, retries) */
    int flushing;
    int stall_grace;  /* the next tick judges nothing: the loop was just stalled */
    int stall_graced; /* the last tick was such a tick (never two in a row) */
    gw_pool_stats stats;
} gw_pool;

/* max_requests sizes the id table (the connection limit). 0 or -ENOMEM. */
int gw_pool_init(gw_pool *p, const gw_pool_ops *ops, void *ud, uint64_t timeout_ms,
                 size_t max_pending, size_t max_requests);
void gw_pool_free(gw_pool *p);
/* r->id and r->env (the encoded request, attempt 0) are set. Returns 0 when
 * the request was sent or queued (done or fail follows later), or 503 when
 * it is refused now (r->fail_reason says why). */
int gw_pool_submit(gw_pool *p, gw_req *r, uint64_t now);
/* The client went away: forget r (a later reply is dropped). */
void gw_pool_cancel(gw_pool *p, gw_req *r);
/* One message from a worker (routing id + frame). */
void gw_pool_on_message(gw_pool *p, const uint8_t *ident, size_t ident_len, const void *frame,
                        size_t n, uint64_t now);
/* Heartbeats, liveness and deadlines; call every ~100 ms. */
void gw_pool_tick(gw_pool *p, uint64_t now);
/* Only the heartbeats that are due (no liveness, no deadlines): for a loop
 * turn that runs long, between the tick's turns. */
void gw_pool_heartbeat(gw_pool *p, uint64_t now);
/* A tick at least this late means the gateway's own loop stalled. */
#define GW_LOOP_STALL_MS 500
/* The gateway's own loop was lag_ms late (busy or stopped): nothing from the
 * workers was read meanwhile, so their silence during it is no evidence.
 * Every worker's silence is shortened by lag_ms, the stall is counted, and
 * the next gw_pool_tick judges nothing (unless the tick before it was
 * already spared), so what queued up during the stall is read first. */
void gw_pool_loop_stalled(gw_pool *p, uint64_t lag_ms, uint64_t now);
/* DISCONNECT to every known worker (clean shutdown). */
void gw_pool_disconnect_all(gw_pool *p);

/* ---- metrics (metrics.c) ---------------------------------------------- */

#define GW_STATUS_MAX 600

typedef struct gw_metrics {
    _Atomic uint64_t requests[GW_ROUTE_COUNT][GW_STATUS_MAX];
    vtn_hist latency[GW_ROUTE_COUNT];
    _Atomic uint64_t conns_open, conns_accepted, conns_rejected;
    _Atomic uint64_t timeouts_header, timeouts_idle;
    /* TLS on the OpenADR listener */
    _Atomic uint64_t tls_hs_ok, tls_hs_failed, tls_hs_timeout, tls_resumed;
    _Atomic uint64_t tls_reload_ok, tls_reload_failed, tls_generation;
    _Atomic uint64_t proxy_refused;         /* requests refused by the trusted-proxy rules (403) */
    _Atomic uint64_t conns_per_ip_rejected; /* VTN_MAX_CONNECTIONS_PER_IP reached */
    _Atomic uint64_t conns_shed_fresh, conns_shed_idle; /* closed to make room for a new one */
    _Atomic uint64_t api_conns_open;
    _Atomic uint64_t api_unauthorized; /* API requests refused before their body (401) */
    /* push delivery (push.c) */
    _Atomic uint64_t push_delivered, push_retries, push_undelivered, push_refused_http;
    _Atomic uint64_t push_inflight, push_conns_opened, push_conns_reused;
    const gw_budget *budget; /* the server's body budget, rendered with these */
} gw_metrics;

void gw_metrics_count(gw_metrics *m, int route, int status, uint64_t ns);
int gw_metrics_render(vtn_buf *out, const gw_metrics *m, const gw_pool_stats *ps);

/* ---- push delivery (push.c) --------------------------------------------- */

/* A push VEN's URL: "https://host[:port][/path]" (http:// too; the caller
 * decides whether it may be used). host without IPv6 brackets; path without
 * its trailing '/', query and fragment. */
typedef struct gw_push_url {
    char host[256];
    char port[8];
    char path[512];
    int https;
} gw_push_url;
/* 0, or -EINVAL with the reason (naming the URL) in err. */
int gw_push_url_parse(const char *url, gw_push_url *out, char *err, size_t errlen);

typedef struct gw_push gw_push;
struct gw_server;
/* Starts delivering push jobs when this gateway can (VTN_REDIS_URL set,
 * VTN_PUSH_CONCURRENCY > 0, push TLS configured or VTN_PUSH_ALLOW_HTTP);
 * *out stays NULL otherwise. 0 or <0 with err. */
int gw_push_start(struct gw_server *s, gw_push **out, char *err, size_t errlen);
/* Drain: no new jobs. */
void gw_push_drain(gw_push *p);
/* Closes every handle it holds (leases end on their own); frees once the
 * loop ran the close callbacks. */
void gw_push_close(gw_push **p);
/* The pool's reply to, or failure of, a request with r->push set. */
void gw__push_req_done(gw_push *p, gw_req *r, const vtn_reply *rep);
void gw__push_req_fail(gw_push *p, gw_req *r, int status);

/* ---- Redis advertisement (advertise.c) --------------------------------- */

typedef struct gw_advert gw_advert;
/* Starts the helper thread (ZADD every second) advertising to the Redis of
 * cfg (URL or sentinels); it also writes the gateway's heartbeat (vtn:procs,
 * vtn/heartbeat.h) from m and ps, read with relaxed loads. 0, -EINVAL (a
 * bad setting, err says which), or another <0; failures to reach Redis are
 * logged by the thread, never fatal. */
int gw_advert_start(const gw_config *cfg, const char *endpoint, const gw_metrics *m,
                    const gw_pool_stats *ps, gw_advert **out, char *err, size_t errlen);
/* Whether cfg names a Redis to advertise to (VTN_REDIS_URL or VTN_REDIS_SENTINELS). */
int gw_advert_wanted(const gw_config *cfg);
/* ZREM (best effort) and join. */
void gw_advert_stop(gw_advert **a);

/* ---- trusted proxies (proxy.c) ----------------------------------------- */

#define GW_PROXIES_MAX 256

typedef struct gw_cidr {
    uint8_t family; /* AF_INET or AF_INET6 */
    uint8_t bits;   /* prefix length */
    uint8_t addr[16];
} gw_cidr;

typedef struct gw_proxies {
    gw_cidr *v;
    size_t n;
} gw_proxies;

/* "10.0.0.5, 10.1.0.0/16, ::1, fd00::/8": IPs or CIDRs, comma-separated
 * (spaces ignored; at most GW_PROXIES_MAX). A CIDR with host bits set is
 * refused (it usually hides a typo). 0, -EINVAL with err naming the entry,
 * -ENOMEM. An empty list gives n == 0. */
int gw_proxies_parse(const char *list, gw_proxies *out, char *err, size_t errlen);
void gw_proxies_free(gw_proxies *p);
/* The same for any list of IPs/CIDRs; var names the setting in err. */
int gw_cidrs_parse(const char *var, const char *list, gw_proxies *out, char *err, size_t errlen);
/* 1 when sa (IPv4, IPv6 or IPv4-mapped IPv6) is in one of the entries. */
int gw_proxies_match(const gw_proxies *p, const struct sockaddr *sa);
/* The OpenADR fingerprint of a URL-encoded PEM certificate (nginx's
 * $ssl_client_escaped_cert). 0 or -EINVAL (bad escape, no certificate). */
int gw_proxy_cert_fingerprint(const char *v, size_t n, char out[VTN_FINGERPRINT_SIZE]);
/* A fingerprint header in any form vtn_fingerprint_normalize accepts, in
 * colon form. 0 or -EINVAL. */
int gw_proxy_fp_header(const char *v, size_t n, char out[VTN_FINGERPRINT_SIZE]);
/* 0 when s is a usable header name (an RFC 9110 token of at most
 * GW_HNAME_MAX - 1 characters); lower-cases it into out. */
int gw_header_name_check(const char *s, char out[GW_HNAME_MAX], size_t *len);

/* ---- connections per peer address (peers.c) ---------------------------- */

typedef struct gw_addr {
    uint8_t family; /* AF_INET (IPv4-mapped IPv6 included) or AF_INET6 */
    uint8_t addr[16];
} gw_addr;

typedef struct gw_peer gw_peer;

typedef struct gw_peers {
    gw_peer **b;
    size_t mask;
    size_t npeers; /* addresses with at least one open connection */
    uint32_t seed;
} gw_peers;

/* The counting key of a peer address. 0 or -EAFNOSUPPORT. */
int gw_addr_key(const struct sockaddr *sa, gw_addr *out);
/* max_conns sizes the table. 0 or -ENOMEM. */
int gw_peers_init(gw_peers *t, size_t max_conns, uint32_t seed);
void gw_peers_free(gw_peers *t);
/* One more connection from a: 0, -EMFILE when a already has max (max > 0),
 * -ENOMEM. Every 0 is paired with one gw_peers_release. */
int gw_peers_acquire(gw_peers *t, const gw_addr *a, uint32_t max);
void gw_peers_release(gw_peers *t, const gw_addr *a);
uint32_t gw_peers_count(const gw_peers *t, const gw_addr *a);

/* ---- the server (broker.c, conn.c, server.c) -------------------------- */

typedef struct gw_server gw_server;
typedef struct gw_tls gw_tls; /* gateway/tls.h (TLS engine); NULL = plain */

typedef struct gw_broker {
    void *ctx, *sock;
    uv_poll_t poll;
    uv_prepare_t prepare;
    int dirty; /* a ZeroMQ call ran since ZMQ_EVENTS was last checked */
    unsigned has_poll : 1, has_prepare : 1;
    char endpoint[256];
    gw_server *srv;
} gw_broker;

int gw__broker_init(gw_broker *b, gw_server *s, const char *bind, char *err, size_t errlen);
int gw__broker_send(void *ud, const uint8_t *ident, size_t ident_len, const void *frame, size_t n);
void gw__broker_close(gw_broker *b); /* closes the libuv handles */
void gw__broker_term(gw_broker *b);  /* after the loop ended: socket and context */
/* Receives everything the workers sent (what the poll handle does). */
void gw__broker_drain(gw_broker *b);

struct gw_tls_ctx;
struct gw_push_tls_ctx;

/* A token bucket for warn lines a peer can trigger at will (failed
 * handshakes, refused proxy headers), so a scan cannot flood the log:
 * GW_RATELOG_BURST lines at once, then one per GW_RATELOG_EVERY_MS; lines
 * left out are counted and the count goes into the next line. */
#define GW_RATELOG_BURST 10
#define GW_RATELOG_EVERY_MS 1000

typedef struct gw_ratelog {
    uint32_t tokens;
    uint64_t refill_ms;  /* loop ms the tokens were last topped up (0 = never) */
    uint64_t suppressed; /* lines left out since the last one written */
} gw_ratelog;

/* 1 when a line may be written now (then *suppressed gets the count left
 * out before it, and the count restarts), else 0 (counted). */
int gw__ratelog_allow(gw_ratelog *r, uint64_t now_ms, uint64_t *suppressed);

typedef struct gw_listener {
    uv_tcp_t tcp;
    gw_server *srv;
    struct gw_tls_ctx *tls_ctx; /* TLS for accepted connections; NULL = plain HTTP */
    int kind;                   /* enum gw_listener_kind */
    int open;
    char addr[64];
} gw_listener;

/* Which connections go first when a listener is full (conn.c): those that
 * have not proven anything yet (TLS handshake not done, or on a plain
 * listener no complete request yet), oldest first; then idle keep-alive
 * connections, idle longest first. A connection with a request in flight or
 * being read after its first is never shed. */
enum gw_shed_tier { GW_SHED_NONE = 0, GW_SHED_FRESH, GW_SHED_IDLE };

typedef struct gw_conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    gw_server *srv;
    int kind;                /* enum gw_listener_kind */
    gw_tls *tls;             /* TLS engine between the socket and the HTTP layer; NULL = plain */
    unsigned hs_done : 1;    /* TLS handshake completed (counted and logged once) */
    unsigned hs_bytes : 1;   /* the peer sent something before the handshake ended */
    unsigned from_proxy : 1; /* the peer's address is in VTN_TRUSTED_PROXIES */
    unsigned counted : 1;    /* holds one count of srv->peers under peer */
    unsigned served : 1;     /* a complete request arrived (the peer speaks HTTP to us) */
    uint8_t shed_tier;       /* enum gw_shed_tier: which srv list shed is in */
    gw_list shed;            /* srv->fresh[kind] or srv->idle[kind] */
    uint64_t read_start;     /* loop ms of the current request's first byte */
    gw_addr peer;
    gw_http http;
    gw_req req;
    vtn_buf wq;      /* bytes being written by wreq (not touched until it completes) */
    vtn_buf wq_next; /* bytes queued behind it */
    uv_write_t wreq;
    uv_shutdown_t sreq;
    size_t lingered; /* bytes discarded while lingering */
    gw_list link;    /* srv->conns */
    uint64_t timer_seq;
    uint8_t timer_mode;
    uint8_t nclose; /* handles still to close before the memory is freed */
    unsigned writing : 1, closing : 1, reading : 1, eof : 1, lingering : 1;
    char remote[64];
} gw_conn;

struct gw_server {
    uv_loop_t *loop;
    const gw_config *cfg;
    gw_http_limits limits;     /* OpenADR listener */
    gw_http_limits api_limits; /* API listener */
    gw_budget budget;          /* request bodies buffered, both listeners */
    size_t api_token_len;
    gw_listener listeners[2];
    gw_broker broker;
    gw_pool pool;
    gw_metrics *metrics;
    vtn_ops *ops;
    gw_advert *advert;
    uv_signal_t sigterm, sigint;
    uv_timer_t tick;
    uint64_t tick_last;                           /* loop ms of the last tick (0 = none yet) */
    uint64_t stall_logged_at;                     /* loop ms of the last loop_stall line */
    uint64_t stalls_unlogged, stall_lag_unlogged; /* stalls since that line, their max lag */
    uint64_t workers_heard_at; /* loop ms the workers were last read and sent heartbeats */
    uv_timer_t drain;
    uint64_t drain_deadline;
    /* Called by conn.c after a connection closed while draining; set by
     * server.c, so the connection layer never calls up into the server. */
    void (*on_conn_gone)(gw_server *s);
    gw_list conns;
    size_t nconns;             /* both listeners */
    size_t nconns_kind[2];     /* per listener (enum gw_listener_kind) */
    size_t max_conns_kind[2];  /* VTN_MAX_CONNECTIONS, VTN_API_MAX_CONNECTIONS */
    gw_list fresh[2], idle[2]; /* shedding order per listener (enum gw_shed_tier) */
    gw_peers peers;            /* open connections per address */
    gw_proxies conn_exempt;    /* VTN_MAX_CONNECTIONS_PER_IP_EXEMPT */
    uint64_t id_base, id_seq;
    int draining, stopped;
    char retry_after[48];             /* "Retry-After: N\r\n" */
    struct gw_tls_ctx *tls_ctx;       /* the OpenADR listener's TLS (NULL = plain HTTP) */
    struct gw_push_tls_ctx *push_ctx; /* TLS for pushes to VENs (NULL = not configured) */
    gw_push *push;                    /* push delivery (NULL = this gateway delivers none) */
    uv_signal_t sighup;               /* reloads tls_ctx and push_ctx */
    uv_work_t reload_work;            /* the reload runs on libuv's thread pool */
    int reloading, reload_again;      /* one reload at a time; a SIGHUP meanwhile queues one more */
    int reload_rc, push_reload_rc;
    char reload_err[512], push_reload_err[512];
    gw_proxies proxies;          /* VTN_TRUSTED_PROXIES; n == 0: proxy mode off */
    int xhdr_cert, xhdr_fp;      /* index into limits.xhdr_* of the proxy headers, -1 = unset */
    gw_ratelog hslog;            /* failed TLS handshakes */
    gw_ratelog pxlog;            /* requests refused by the trusted-proxy rules */
    char rbuf[GW_READ_BUF];      /* shared: only used between alloc_cb and read_cb */
    vtn_buf tls_plain, tls_wire; /* scratch for the TLS engine */
    gw_ui ui;                    /* the console's files (empty: not installed) */
};

int gw__listener_start(gw_server *s, gw_listener *l, int kind, const char *addr, char *err,
                       size_t errlen);
void gw__listener_close(gw_listener *l);
/* Drain: idle connections close now, busy ones after their response. */
void gw__conns_drain(gw_server *s);
void gw__conns_close_all(gw_server *s);
void gw__conn_req_done(void *ud, gw_req *r, const vtn_reply *rep);
void gw__conn_req_fail(void *ud, gw_req *r, int status);
/* From the tick: says how many log lines the rate limits left out, when no
 * later line said it. */
void gw__conn_ratelog_flush(gw_server *s);

int gw_server_init(gw_server *s, uv_loop_t *loop, const gw_config *cfg, char *err, size_t errlen);
int gw_server_run(gw_server *s); /* until drained after SIGTERM/SIGINT */
void gw_server_free(gw_server *s);

#endif
