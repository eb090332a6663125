/* Internals of vtn-worker shared between its files (not outside workers/).
 *
 * The worker is one thread with one loop: it drains a bounded batch of
 * requests from every gateway's DEALER socket, runs every request's handler
 * as a small state machine whose Redis commands of one round are pipelined
 * together with those of every other request in the batch, and sends all
 * replies when the batch is done. docs/worker.md explains the design. */
#ifndef WK_INTERNAL_H
#define WK_INTERNAL_H

#include <signal.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdint.h>

#include <hiredis/hiredis.h>
#include <jansson.h>
#include <zmq.h>

#include "oadr_xml.h"
#include "vtn/buf.h"
#include "vtn/config.h"
#include "vtn/id.h"
#include "vtn/metrics.h"
#include "vtn/ops.h"
#include "vtn/pki.h"
#include "vtn/redis.h"
#include "vtn/wire.h"

/* ---- limits ---- */
#define WK_BATCH_MAX 256           /* requests handled per loop iteration, across gateways */
#define WK_MAX_GATEWAYS 64         /* gateway sockets at once */
#define WK_ENDPOINT_MAX 256        /* bytes of a ZeroMQ endpoint */
#define WK_ROUND_CMDS 1100         /* Redis commands one request may queue per round (API list) */
#define WK_MAX_ROUNDS 8            /* pipeline rounds per batch; a handler needs at most 5 */
#define WK_CMD_BUF_MAX (256 << 10) /* bytes of one request's commands in one round */
#define WK_REPLY_MAX (4 << 20)     /* bytes of one reply body */
#define WK_QUEUE_MAX 64            /* entries in venq:{venID} */
#define WK_FP_MAX 20               /* hex digits of a normalised fingerprint (vtn/fingerprint.h) */
#define WK_MEMO_TTL_S 300          /* lifetime of vtn:req:*, venreq:*, venpm:* */
#define WK_RETRY_AFTER_S 2         /* Retry-After on 503 while Redis is down */
#define WK_API_LIMIT_DEFAULT 100
#define WK_API_LIMIT_MAX 1000

/* OpenADR 2.0b response codes the handlers use (besides the codec's). */
#define WK_OADR_NOT_ALLOWED 451
#define WK_OADR_INVALID_ID 452
#define WK_OADR_NOT_REGISTERED 463 /* not registered or not authorised */
#define WK_OADR_OTHER 469

enum wk_policy { WK_POLICY_OPEN = 0, WK_POLICY_PROVISIONED = 1 };

typedef struct wk_config {
    char *gateways;
    char *redis_url;
    char *ops_listen;
    char *vtn_id;
    char *api_token;
    long long poll_freq_ms;
    char *registration_policy;
    long long credits;
    char *name;
    long long redis_timeout_ms;
    long long drain_ms;
    char *ca_dir;
    long long memory; /* VTN_WORKER_MEMORY */
} wk_config;

extern const vtn_cfg_item wk_cfg_items[];
extern const size_t wk_cfg_nitems;
/* Checks what the table cannot (policy word, VTN id, gateway list). 0 or
 * -EINVAL with a message. */
int wk_config_check(const wk_config *cfg, int *policy, char *err, size_t errlen);

/* ---- Lua scripts (wk_scripts.c) ---- */
enum wk_script {
    WK_SCRIPT_CLAIM = 0,
    WK_SCRIPT_CAD,
    WK_SCRIPT_REGISTER,
    WK_SCRIPT_PROVISION,
    WK_SCRIPT_POP,
    WK_SCRIPT_VENCANCEL,
    WK_SCRIPT_CANCELED,
    WK_SCRIPT_APIDELETE,
    WK_SCRIPT_REREG,
    WK_SCRIPT_CERTBIND,
    WK_SCRIPT_CERTUNBIND,
    WK_SCRIPT_CERTREVOKE,
    WK_SCRIPT_CRL,
    WK_SCRIPT__COUNT
};
extern const char *const wk_script_src[WK_SCRIPT__COUNT];
extern const char *const wk_script_name[WK_SCRIPT__COUNT];

/* ---- metrics (wk_metrics.c) ---- */
#define WK_MT_API WK_MSG__COUNT         /* metrics "type" index for management API requests */
#define WK_MT_OTHER (WK_MSG__COUNT + 1) /* push replies and anything else */
#define WK_MT__COUNT (WK_MSG__COUNT + 2)
#define WK_NCODES 24
#define WK_BATCH_BUCKETS 10

typedef struct wk_metrics {
    _Atomic uint64_t requests[WK_MT__COUNT][WK_NCODES];
    vtn_hist latency[WK_MT__COUNT];
    _Atomic uint64_t batch_buckets[WK_BATCH_BUCKETS + 1]; /* 1,2,4..512,+Inf */
    _Atomic uint64_t batch_count, batch_sum;
    _Atomic uint64_t redis_errors, redis_reconnects, redis_script_loads;
    _Atomic uint64_t dropped_deadline, replies_lost, bad_frames;
    _Atomic uint64_t gateway_reconnects;
    _Atomic uint64_t certs_issued, certs_revoked, crls_signed;
    _Atomic uint64_t over_budget; /* requests refused by the memory budget */
    _Atomic int redis_up, gateways_live, gateways_known, schemas_ok, draining;
} wk_metrics;

/* The code index used as a label; unknown codes share the last slot. */
int wk_metrics_code_index(int code);
int wk_metrics_code_of(int index); /* inverse; 0 for "other" */
void wk_metrics_request(wk_metrics *m, int type_index, int code, uint64_t ns);
void wk_metrics_batch(wk_metrics *m, int n);
int wk_metrics_render(vtn_buf *out, void *ud);    /* vtn_ops_metrics_fn; ud = wk_worker */
int wk_ready(void *ud, char *why, size_t whylen); /* vtn_ops_ready_fn */
const char *wk_metrics_type_label(int type_index);

/* ---- Redis connection (wk_redis.c) ---- */
typedef struct wk_redis {
    vtn_redis_target target;
    int timeout_ms;
    redisContext *c;                /* NULL while down */
    char sha[WK_SCRIPT__COUNT][41]; /* filled by SCRIPT LOAD at connect */
    int64_t next_attempt_ms;
    int backoff_ms;
    int ever_connected;
    wk_metrics *m;
} wk_redis;

int wk_redis_init(wk_redis *r, const char *url, int timeout_ms, wk_metrics *m, char *err,
                  size_t errlen);
/* Connects (and loads the scripts) when down and the back-off allows. */
void wk_redis_maintain(wk_redis *r, int64_t now_ms);
/* After an I/O error or timeout: the context cannot be reused. */
void wk_redis_fail(wk_redis *r, const char *why);
int wk_redis_load_scripts(wk_redis *r);
void wk_redis_close(wk_redis *r);
/* One synchronous command outside a batch (discovery). NULL when down or on
 * an I/O error (then the connection is failed). Caller frees the reply. */
redisReply *wk_redis_sync(wk_redis *r, const char *fmt, ...);

/* ---- requests and handlers ---- */
typedef struct wk_worker wk_worker;
typedef struct wk_req wk_req;

/* A reply handle: what a command builder returns, to read that command's
 * reply back in the next step with wk_rep(). 0 is "no command" (a state
 * starts zeroed), so an optional lookup needs no flag of its own. */
typedef int wk_rh;

/* A handler step: called first when the handler takes the request, then
 * with the replies of the commands it queued (read with wk_rep), or when
 * the slow work it handed off is done. Each call queues more commands
 * (wk_cmd*, wk_eval), hands work to the slow-work thread (wk_slow_run), or
 * finishes the request with one of the wk_reply_* functions. st is the
 * handler's own state (wk_handler.state_size bytes, zeroed, then init).
 * Every round's commands must be safe to send twice (a NOSCRIPT reload
 * repeats the round). A round whose replies hold a Redis error never
 * reaches the step: the request is answered 500 with the error. */
typedef void (*wk_step_fn)(wk_req *q, void *st);

/* What a route runs: its step and its own state type (nginx's module ctx,
 * h2o's derived handler struct). The state lives in the request slot
 * (WK_STATE_MAX bytes, pooled with the slot: no allocation per request). */
typedef struct wk_handler {
    const char *name;
    size_t state_size;
    void (*init)(wk_req *q, void *st); /* NULL: the zeroed state is the start */
    void (*fini)(void *st);            /* NULL: the state owns nothing */
    wk_step_fn step;
} wk_handler;

#define WK_STATE_MAX 2048
/* A handler row for state type T; refuses at compile time a state that
 * does not fit in a slot. */
#define WK_HANDLER(name, T, init, fini, step)                                                      \
    {                                                                                              \
        name, sizeof(T) + 0 * sizeof(char[sizeof(T) <= WK_STATE_MAX ? 1 : -1]), init, fini, step   \
    }

/* Where a request stands in the worker's pipeline. */
enum wk_req_phase {
    WK_REQ_FREE = 0, /* slot unused */
    WK_REQ_RUNNING,  /* its step runs, or it has commands for the next round */
    WK_REQ_SLOW,     /* waits for the slow-work thread */
    WK_REQ_DONE,     /* answered: the reply leaves at once */
};

struct wk_req {
    wk_worker *w;
    zmq_msg_t zmsg; /* the frame the envelope points into (owned while has_zmsg) */
    int has_zmsg;
    int gw;          /* gateway slot */
    uint32_t gw_gen; /* that slot's socket generation at receipt */
    vtn_request env;
    char rid[17]; /* env.id as 16 hex digits */
    uint64_t t0_ns;
    int mtype; /* metrics type index */
    int mcode; /* metrics code: responseCode or HTTP status */
    int done;
    enum wk_req_phase phase;
    size_t cost; /* bytes charged to the worker's memory budget (wk_budget_*) */
    /* The handler and its state. */
    const wk_handler *h;
    _Alignas(max_align_t) unsigned char st[WK_STATE_MAX];
    /* Redis commands queued in the current round (RESP, ready to send). */
    vtn_buf cmds;
    int ncmds;
    unsigned round;     /* tag of the handles of commands being queued */
    unsigned rep_round; /* tag of the replies in rep (round - 1 once a round ran) */
    int nrep;
    redisReply **rep; /* replies of the round, grown up to WK_ROUND_CMDS */
    int repcap;
    /* Slow work (wk_slow_run): what runs on the helper thread. */
    void (*slow_fn)(wk_req *q, void *st);
    /* The reply. */
    int status;
    const char *ctype;
    char headers[192];
    vtn_buf body;
    int wipe_body; /* the reply holds a private key: cleared once sent */
    /* From the envelope: the client certificate's fingerprint, normalised
     * ("" without TLS), the identity every VEN check compares. */
    char fp[WK_FP_MAX + 1];
    /* OpenADR request, filled by the codec. */
    wk_msg msg;
    /* Management API request, filled by its route table: the path's {id}
     * (venID or serial as given) and the query string (into env.path). */
    char path_id[WK_ID_MAX + 1];
    vtn_str query;
};

/* Command builders: append one command to the round. A reply handle (> 0)
 * for wk_rep in the next step, or -ENOBUFS when the round is full (the
 * handler then answers 500). */
wk_rh wk_cmd_argv(wk_req *q, int argc, const char **argv, const size_t *lens);
wk_rh wk_cmd(wk_req *q, const char *a0, ...) __attribute__((sentinel));
/* EVALSHA <sha of s> nkeys keys... args... ; list ends with NULL. */
wk_rh wk_eval(wk_req *q, enum wk_script s, int nkeys, ...) __attribute__((sentinel));
/* The reply of the command h was returned for, in the step right after its
 * round; NULL for 0, a handle of another round or one out of range. */
const redisReply *wk_rep(const wk_req *q, wk_rh h);
/* Integer reply of h, or def when it is none. */
long long wk_rep_int(const wk_req *q, wk_rh h, long long def);

/* Takes the request with handler h: ends the previous handler's state
 * (fini), zeroes and inits h's, and runs h's first step. */
void wk_req_handle(wk_req *q, const wk_handler *h);
/* Runs q's step on the replies in q->rep[0..nrep) (the batch runner, and
 * tests replaying a round): a Redis error in them answers 500 instead.
 * The replies are freed afterwards. */
void wk_req_step(wk_req *q);
/* Hands fn(q, st) to the slow-work thread (key generation, signing, large
 * parses): the step runs again on the loop's thread when fn is done. fn
 * may touch only q's state, q->msg, q->env and q->body. Without the thread
 * (unit tests) fn runs at once, inline. 0, or -EAGAIN when the job queue is
 * full (the caller answers 503). */
int wk_slow_run(wk_req *q, void (*fn)(wk_req *q, void *st));

/* Finishing a request. */
void wk_reply(wk_req *q, int status, const char *ctype, const char *body, size_t len);
/* An OpenADR error reply of the message's reply type (m->reply) with code
 * and description; HTTP 200 as OpenADR wants. */
void wk_reply_oadr_error(wk_req *q, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* oadrResponse with code (and venID when not NULL). */
void wk_reply_oadr_response(wk_req *q, int code, const char *desc, const char *ven_id);
/* HTTP 503 + Retry-After; an oadrResponse or JSON body by request kind. */
void wk_reply_unavailable(wk_req *q, const char *why);
/* HTTP 500: a bug or a Redis error reply; logged. */
void wk_reply_internal(wk_req *q, const char *what);
/* "command buffer full": a round the handler could not queue. */
void wk_reply_no_room(wk_req *q);
void wk_reply_json(wk_req *q, int status, json_t *body); /* steals body */
void wk_reply_json_error(wk_req *q, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The requestID an OpenADR reply echoes: the VEN's, or "rsp-<envelope id>"
 * when the VEN sent none (stored in q->msg.request_id). */
const char *wk_reply_request_id(wk_req *q);
/* Marks the buffer as the final reply (XML the handler wrote to q->body). */
void wk_reply_body(wk_req *q, int status, const char *ctype);

/* Reply helpers for handlers. */
int wk_rep_str(const redisReply *r, char *out, size_t outlen); /* 1 string copied, 0 nil/other */
/* Element i of an array reply as a string; 0 when nil/out of range. */
int wk_rep_elem(const redisReply *r, size_t i, char *out, size_t outlen);
/* A Lua script's outcome, a JSON array whose first element is a string (the
 * outcome's kind): the array, which the caller json_decref()s; or NULL after
 * answering 500 "unreadable script outcome". */
json_t *wk_script_outcome(wk_req *q, const redisReply *r);

/* ---- routing (wk_route.c) ---- */
typedef struct wk_route {
    enum wk_msg_type type;
    const wk_handler *handler; /* NULL: answered by the generic "not supported" handler */
} wk_route;
extern const wk_route wk_routes[];
extern const size_t wk_nroutes;
const wk_route *wk_route_find(enum wk_msg_type t);
/* Starts a request: decodes, routes, runs the first step. */
void wk_req_start(wk_req *q);

/* ---- VEN records and their indexes ---- */
/* The registered-VEN check every OpenADR handler makes: wk_ven_check_plan
 * queues HMGET ven:{venID} r fp and returns its handle; wk_ven_check reads
 * that reply and answers 463 (returning 0) when the VEN is not registered
 * or the envelope's certificate is not the one bound to it. */
wk_rh wk_ven_check_plan(wk_req *q, const char *ven_id);
int wk_ven_check(wk_req *q, wk_rh h, const char *ven_id);
/* Queues EXISTS of the record of an index's owner when there is one and it
 * is not ven (ven owning it is a retry of this request): an owner without a
 * record is dangling and may be replaced. The handle, 0 when nothing was
 * queued, or the wk_cmd error. */
wk_rh wk_ven_owner_exists(wk_req *q, const char *owner, const char *ven);
/* Queues compare-and-delete of the indexes of a VEN whose registration
 * ended (reg only) or whose record was deleted (all = 1). 0 or <0. */
int wk_ven_index_cleanup(wk_req *q, const char *ven, const char *name, const char *fp,
                         const char *reg, int all);

/* ---- handlers ---- */
extern const wk_handler wk_h_query_registration;
extern const wk_handler wk_h_create_registration;
extern const wk_handler wk_h_cancel_registration;
extern const wk_handler wk_h_canceled_registration;
extern const wk_handler wk_h_response;
extern const wk_handler wk_h_poll;
extern const wk_handler wk_h_unsupported;
extern const wk_handler wk_h_api;

/* The venq entry kinds wk_render_queued delivers; the pop script drops others. */
#define WK_QUEUE_KINDS "CR"
/* Renders a venq entry as the XML the VEN gets on its poll. 0, -EINVAL for
 * an unknown kind, or a buffer error. */
int wk_render_queued(vtn_buf *b, const char *entry, size_t len, const char *ven_id);

/* ---- keys and small helpers (wk_keys.c) ---- */
/* "ven:{<id>}" etc.; out must hold WK_KEY_MAX bytes. */
#define WK_KEY_MAX 400
const char *wk_key_ven(char *out, const char *ven_id);
const char *wk_key_venq(char *out, const char *ven_id);
const char *wk_key_venpm(char *out, const char *ven_id);
const char *wk_key_venreq(char *out, const char *ven_id, const char *rid);
const char *wk_key_name(char *out, const char *name);
const char *wk_key_fp(char *out, const char *fp);
const char *wk_key_reg(char *out, const char *reg_id);
const char *wk_key_req(char *out, const char *rid);
#define WK_KEY_VENS "vtn:vens"
/* Certificates issued through the API (docs/redis-keys.md). */
const char *wk_key_cert(char *out, const char *serial);
const char *wk_key_vencerts(char *out, const char *ven_id);
const char *wk_key_certreq(char *out, const char *rid);
const char *wk_key_revokedfp(char *out, const char *fp);
const char *wk_key_ca_revoked(char *out, const char *ca_id);
const char *wk_key_ca_crlnumber(char *out, const char *ca_id);
#define WK_KEY_CERTS "vtn:certs"

/* Fingerprint "09:71:9e:..." (or a full SHA-256 one) -> "09719E..." with
 * vtn_fingerprint_normalize. 0 or -EINVAL. */
int wk_fp_normalize(const char *in, size_t n, char *out, size_t outlen);
/* "09719E..." -> "09:71:9E:...". */
void wk_fp_pretty(const char *fp, char *out, size_t outlen);
/* An ID we accept in a URL path or a cursor: 1..WK_ID_MAX of [A-Za-z0-9._:-]. */
int wk_id_valid(const char *s, size_t n);
/* Opaque pagination cursor: hex of the last venID of a page. */
int wk_cursor_encode(const char *ven_id, char *out, size_t outlen);
int wk_cursor_decode(const char *cursor, char *out, size_t outlen);

/* ---- management API parsing (wk_api.c), exposed for tests ---- */
enum wk_api_route {
    WK_API_NONE = 0,
    WK_API_VENS,        /* /api/v1/vens */
    WK_API_VEN,         /* /api/v1/vens/{venID} */
    WK_API_REREGISTER,  /* /api/v1/vens/{venID}/reregister */
    WK_API_CERTS,       /* /api/v1/certificates */
    WK_API_CERT,        /* /api/v1/certificates/{serial} */
    WK_API_CERT_REVOKE, /* /api/v1/certificates/{serial}/revoke */
    WK_API_CRL,         /* /api/v1/crl */
    WK_API__COUNT
};
/* Splits path into route + id (venID or serial as given; out, WK_ID_MAX+1)
 * + query (pointer into path, may be NULL). Returns the route, WK_API_NONE
 * for unknown paths. */
int wk_api_route_of(const char *path, size_t len, char *ven_id, const char **query,
                    size_t *query_len);
/* The handlers of the certificate routes (wk_api_cert.c). */
extern const wk_handler wk_api_cert_list, wk_api_cert_issue, wk_api_cert_get, wk_api_cert_revoke,
    wk_api_crl;
/* The members of a page (a ZRANGEBYLEX array, or one string of an index
 * lookup) as a JSON array of strings; NULL when out of memory. */
json_t *wk_api_members(const redisReply *r);
/* Allowed methods for a route, from the route table, e.g. "GET, POST". */
const char *wk_api_allow(int route);
/* Constant-time check of "Bearer <token>". 1 ok, 0 not. */
int wk_api_auth_ok(const char *header, size_t len, const char *token);
/* Parses the list query (limit, cursor, name); 0 or -EINVAL with a message. */
int wk_api_parse_list_query(const char *q, size_t n, int *limit, char *cursor, size_t cursorlen,
                            char *name, size_t namelen, char *err, size_t errlen);
/* Parses the DELETE query (force); 0 or -EINVAL. */
int wk_api_parse_delete_query(const char *q, size_t n, int *force, char *err, size_t errlen);
/* Validates a provisioning body; fills name/fp (normalised). 0 or -EINVAL. */
int wk_api_parse_provision(const char *body, size_t n, char *name, size_t namelen, char *fp,
                           size_t fplen, char *err, size_t errlen);
/* Shared by the API's files: query-string walker (percent-decoded key and
 * value per parameter), Content-Type check, a field of an HGETALL reply,
 * and the "command buffer full" answer. */
typedef int (*wk_api_param_fn)(void *ud, const char *key, const char *val, char *err,
                               size_t errlen);
int wk_api_each_param(const char *q, size_t n, wk_api_param_fn fn, void *ud, char *err,
                      size_t errlen);
/* Every list's paging parameters. wk_api_page_param handles "limit" and
 * "cursor": 1 when key was one of them, 0 when it is another parameter (the
 * caller's), -EINVAL with a message. wk_api_param_once refuses a parameter
 * given twice. */
typedef struct wk_api_page {
    int *limit;
    char *cursor;
    size_t cursorlen;
    int seen_limit, seen_cursor;
} wk_api_page;
int wk_api_page_param(wk_api_page *p, const char *key, const char *val, char *err, size_t errlen);
/* Queues the page of a list kept in a sorted set of equal scores: up to
 * limit + 1 members after cursor ("" = from the start), the one past the
 * page saying there is a next. Its reply handle, or the wk_cmd error. */
wk_rh wk_cmd_page(wk_req *q, const char *key, const char *cursor, int limit);
/* next_cursor of a page read with wk_cmd_page (members: what it returned,
 * shown: how many of them were looked up): the last shown member encoded,
 * or JSON null on the last page. */
json_t *wk_api_next_cursor(json_t *members, int limit, int shown);
/* A list's one filter parameter besides limit and cursor: its key, the
 * check of its value, the longest value and what it may contain (for the
 * message), and why it cannot go with a cursor (NULL: it can). */
typedef struct wk_api_filter {
    const char *key;
    int (*valid)(const char *s, size_t n);
    int max;
    const char *chars;
    const char *not_with_cursor;
} wk_api_filter;
/* Parses limit, cursor and f's parameter (into val); 0 or -EINVAL with a
 * message. */
int wk_api_parse_filtered_list(const char *q, size_t n, const wk_api_filter *f, int *limit,
                               char *cursor, size_t cursorlen, char *val, size_t vallen, char *err,
                               size_t errlen);
int wk_api_param_once(const char *key, int *seen, char *err, size_t errlen);
int wk_api_json_ctype(vtn_str ct);
/* A request body that must be a JSON object (duplicate keys refused): the
 * object, or NULL with "body is not valid JSON: ..." or not_object in err. */
json_t *wk_api_json_object(const char *body, size_t n, const char *not_object, char *err,
                           size_t errlen);
const redisReply *wk_api_hfield(const redisReply *h, const char *f);

/* ---- certificates (wk_cert.c: CA, validation, signing; wk_api_cert.c: handlers) ---- */
#define WK_CERT_DAYS_DEFAULT 825 /* as vtnctl; the CA/B forum's old maximum */
#define WK_CERT_DAYS_MAX 3650
#define WK_CRL_DAYS_DEFAULT 30
#define WK_CRL_DAYS_MAX 365
#define WK_CRL_MAX 50000     /* unexpired revoked certificates in one CRL (~3.5 MB PEM) */
#define WK_CSR_MAX 16384     /* bytes of a CSR in PEM */
#define WK_CN_MAX 64         /* characters of a commonName (RFC 5280 ub-common-name) */
#define WK_SERIAL_MAX 40     /* hex digits of a serial number (RFC 5280: at most 20 octets) */
#define WK_RSA_BITS_MAX 8192 /* bigger keys only cost verification time */

/* The client CA the API signs with (VTN_CA_DIR), loaded once at start. */
typedef struct wk_ca {
    X509 *cert; /* NULL: issuing disabled */
    EVP_PKEY *key;
    char id[WK_FP_MAX + 1]; /* normalised fingerprint of ca.pem: names its Redis keys */
    time_t not_after;
} wk_ca;
/* Reads dir/ca.pem and dir/ca.key; checks they match and the certificate is
 * a CA with an ECC or RSA key. 0, or <0 with the reason in err. */
int wk_ca_load(wk_ca *ca, const char *dir, char *err, size_t errlen);
void wk_ca_free(wk_ca *ca);

/* A validated POST /api/v1/certificates body. */
typedef struct wk_cert_req {
    char ven[WK_ID_MAX + 1];
    char cn[WK_CN_MAX * 4 + 1]; /* "" = the VEN's venName, else its venID */
    int days;
    int key_type;  /* 0: from the CSR; VTN_KEY_EC or VTN_KEY_RSA: generate a key */
    X509_REQ *csr; /* owned; signature verified, key checked */
} wk_cert_req;
/* 0, or -EINVAL with the reason in err (a 400). Frees nothing on error:
 * call wk_cert_req_clear either way. */
int wk_cert_parse_issue(const char *body, size_t n, wk_cert_req *r, char *err, size_t errlen);
void wk_cert_req_clear(wk_cert_req *r);
/* PEM CSR -> X509_REQ whose key is allowed and whose signature verifies.
 * NULL with the reason in err. */
X509_REQ *wk_cert_parse_csr(const char *pem, size_t n, char *err, size_t errlen);
/* ECC P-256 or RSA 2048..WK_RSA_BITS_MAX: 0, else -EINVAL with the reason. */
int wk_cert_check_key(EVP_PKEY *k, char *err, size_t errlen);
/* A usable commonName: 1..WK_CN_MAX characters of UTF-8, no control characters. */
int wk_cert_cn_valid(const char *s, size_t n);
/* Serial as given in a path (hex, any case, optional colons) -> upper-case
 * hex without leading zeros, as vtn_pki_serial_hex prints it. 0 or -EINVAL. */
int wk_cert_serial_norm(const char *in, size_t n, char *out, size_t outlen);
/* Query of GET /api/v1/certificates (limit, cursor, venID); 0 or -EINVAL. */
int wk_cert_parse_list_query(const char *q, size_t n, int *limit, char *cursor, size_t cursorlen,
                             char *ven, size_t venlen, char *err, size_t errlen);
/* Query of GET /api/v1/crl (days); 0 or -EINVAL. */
int wk_cert_parse_crl_query(const char *q, size_t n, int *days, char *err, size_t errlen);
/* Body of POST .../revoke: empty, or {"reason": "..."}; 0 or -EINVAL. */
int wk_cert_parse_revoke(const char *body, size_t n, int *reason, char *err, size_t errlen);

/* A certificate signed by wk_cert_sign. */
typedef struct wk_cert_issued {
    char serial[WK_SERIAL_MAX + 1];
    char fp[WK_FP_MAX + 1];
    int64_t nb_ms, na_ms;
    int key_type;  /* VTN_KEY_EC or VTN_KEY_RSA */
    char *pem;     /* owned */
    char *key_pem; /* owned, generated key only; wiped when freed */
} wk_cert_issued;
/* Signs r's CSR key (or a key generated for it) for cn, valid from now - 5
 * min for r->days, never past the CA's own notAfter. 0; -ESTALE when the CA
 * has expired; other <0 with err. */
int wk_cert_sign(const wk_ca *ca, const wk_cert_req *r, const char *cn, time_t now,
                 wk_cert_issued *out, char *err, size_t errlen);
void wk_cert_issued_clear(wk_cert_issued *c);

/* ---- gateways and the loop (wk_loop.c) ---- */
typedef struct wk_gateway {
    int used;
    char endpoint[WK_ENDPOINT_MAX];
    void *sock;
    uint32_t gen;
    int alive; /* heard from since the socket was created */
    int seen;  /* discovery mark */
    int64_t last_recv_ms;
    int64_t last_send_ms;
    int64_t silent_since_ms; /* start of the current liveness window */
    int backoff_ms;
    int64_t next_reconnect_ms;
} wk_gateway;

struct wk_worker {
    wk_config cfg;
    int policy;
    void *zctx;
    wk_gateway gw[WK_MAX_GATEWAYS];
    int static_gateways; /* VTN_GATEWAYS given: no discovery */
    wk_redis redis;
    wk_codec *codec;
    wk_ca ca;             /* VTN_CA_DIR, for /api/v1/certificates */
    wk_req *slots;        /* WK_BATCH_MAX, in flight across loop turns */
    int nbusy;            /* slots not WK_REQ_FREE */
    struct wk_slow *slow; /* the slow-work thread; NULL: jobs run inline (tests) */
    size_t mem_budget;    /* VTN_WORKER_MEMORY */
    size_t mem_used;      /* charged by the requests in flight */
    vtn_buf out;          /* wire frame being encoded */
    wk_metrics m;
    vtn_ops *ops;
    int ready_logged;
    int64_t next_discovery_ms;
    int64_t next_trim_ms;
    volatile sig_atomic_t *stop;
};

/* Creates the worker from a loaded config (does not start ops). 0 or <0 with err. */
int wk_worker_init(wk_worker *w, int policy, volatile sig_atomic_t *stop, char *err, size_t errlen);
/* Runs until *stop, then drains and says DISCONNECT. */
int wk_worker_run(wk_worker *w);
void wk_worker_free(wk_worker *w);
/* Runs the handlers of a batch to completion, slow work included (unit
 * tests; the loop runs one round per turn instead). */
void wk_batch_run(wk_worker *w, wk_req **reqs, int n);
/* One pipelined Redis round for every request of reqs that has commands
 * queued: their steps run on the replies (or they get 503 when Redis is
 * down). The number of requests that took part. */
int wk_round(wk_worker *w, wk_req **reqs, int n);
void wk_req_reset(wk_req *q);

/* ---- the slow-work thread (wk_slow.c) ---- */
#define WK_SLOW_QUEUE 64 /* jobs queued or running at once; more get 503 */
typedef struct wk_slow wk_slow;
int wk_slow_start(wk_worker *w, char *err, size_t errlen);
void wk_slow_stop(wk_worker *w);
/* The eventfd the loop polls: readable when a job is done; -1 without the thread. */
int wk_slow_fd(const wk_worker *w);
/* Runs the next step of every request whose slow work is done; how many. */
int wk_slow_collect(wk_worker *w);
/* Waits until a job is done or timeout_ms pass (wk_batch_run). */
void wk_slow_wait(wk_worker *w, int timeout_ms);
/* The codec of the calling thread: the helper's own on the helper thread. */
wk_codec *wk_slow_codec(wk_worker *w);

/* ---- the memory budget (wk_budget.c) ---- */
#define WK_MEMORY_DEFAULT (512LL << 20)
/* A parsed document costs about this many times its text (libxml2's tree:
 * 4 MiB of small elements made a 130 MB tree). */
#define WK_PARSE_FACTOR 32
/* What a request will cost the worker while in flight: its frame, and for
 * an OpenADR body the tree its parse builds. */
size_t wk_budget_cost(const wk_req *q, size_t frame_len);
/* Charges q's cost to the budget: 0, or answers 413 (can never fit) or 503
 * with Retry-After (not now) and returns -ENOMEM. */
int wk_budget_admit(wk_worker *w, wk_req *q, size_t frame_len);
/* Gives q's charge back (when its slot is released). */
void wk_budget_release(wk_worker *w, wk_req *q);

#endif
