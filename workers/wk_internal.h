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

/* A handler step: called first with (NULL, 0), then with the replies of the
 * commands it queued in the previous step, in order. It either queues more
 * commands (wk_cmd*, wk_eval) for the next round, or finishes the request
 * with one of the wk_reply_* functions. Every round's commands must be safe
 * to send twice (a NOSCRIPT reload repeats the round). */
typedef void (*wk_step_fn)(wk_req *q, redisReply **rep, int n);

/* Scratch state of the handlers; reset for every request. */
typedef struct wk_hstate {
    int stage;
    int src; /* how the target VEN was found (registration) */
    int isnew;
    int at[8];                /* reply positions of optional commands, -1 = none */
    char ven[WK_ID_MAX + 1];  /* target venID */
    char reg[WK_ID_MAX + 1];  /* registrationID answered */
    char new_ven[VTN_ID_MAX]; /* ids claimed by this request (vtn:req:<rid>) */
    char new_reg[VTN_ID_MAX];
    char fp[WK_FP_MAX + 1];         /* normalised fingerprint (envelope or API) */
    char name[WK_NAME_MAX + 1];     /* venName (payload or API) */
    char fp_owner[WK_ID_MAX + 1];   /* venID in vtn:venfp:<fp>, "" none */
    char name_owner[WK_ID_MAX + 1]; /* venID in vtn:venname:<name>, "" none */
    char old_name[WK_NAME_MAX + 1]; /* name to release after a rename */
    int fp_owner_dangling, name_owner_dangling;
    int claim_fp, claim_name, claim_reg;
    char result[32]; /* script outcome */
    /* management API */
    int api_route;
    int limit;
    int force;
    char cursor[WK_ID_MAX + 1];
    json_t *json;               /* owned: request body, then the list */
    struct wk_cert_state *cert; /* owned: the certificates API's scratch (wk_api_cert.c) */
    int wipe_body;              /* the reply holds a private key: cleared once sent */
} wk_hstate;

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
    wk_step_fn step;
    int done;
    /* Redis commands queued in the current round (RESP, ready to send). */
    vtn_buf cmds;
    int ncmds;
    redisReply **rep; /* replies of the round, grown up to WK_ROUND_CMDS */
    int repcap;
    /* The reply. */
    int status;
    const char *ctype;
    char headers[192];
    vtn_buf body;
    /* OpenADR request, filled by the codec. */
    wk_msg msg;
    wk_hstate s;
};

/* Command builders: append one command to the round. 0, or -ENOBUFS when
 * the round is full (the handler then answers 500). */
int wk_cmd_argv(wk_req *q, int argc, const char **argv, const size_t *lens);
int wk_cmd(wk_req *q, const char *a0, ...) __attribute__((sentinel));
/* EVALSHA <sha of s> nkeys keys... args... ; list ends with NULL. */
int wk_eval(wk_req *q, enum wk_script s, int nkeys, ...) __attribute__((sentinel));

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
void wk_reply_json(wk_req *q, int status, json_t *body); /* steals body */
void wk_reply_json_error(wk_req *q, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The requestID an OpenADR reply echoes: the VEN's, or "rsp-<envelope id>"
 * when the VEN sent none (stored in q->msg.request_id). */
const char *wk_reply_request_id(wk_req *q);
/* Marks the buffer as the final reply (XML the handler wrote to q->body). */
void wk_reply_body(wk_req *q, int status, const char *ctype);

/* Reply helpers for handlers. */
int wk_rep_is_err(const redisReply *r);
int wk_rep_str(const redisReply *r, char *out, size_t outlen); /* 1 string copied, 0 nil/other */
/* Element i of an array reply as a string; 0 when nil/out of range. */
int wk_rep_elem(const redisReply *r, size_t i, char *out, size_t outlen);
/* Queues EXISTS of the record of an index's owner when there is one and it
 * is not ven (ven owning it is a retry of this request): an owner without a
 * record is dangling and may be replaced. *at gets the reply's place in the
 * round (*next, then incremented), or -1 when nothing was queued. 0 or the
 * wk_cmd error. */
int wk_cmd_owner_exists(wk_req *q, const char *owner, const char *ven, int *at, int *next);
/* Replies of a round contain a Redis error: answers 500 and returns 1. */
int wk_check_reps(wk_req *q, redisReply **rep, int n);
/* A Lua script's outcome, a JSON array whose first element is a string (the
 * outcome's kind): the array, which the caller json_decref()s; or NULL after
 * answering 500 "unreadable script outcome". */
json_t *wk_script_outcome(wk_req *q, const redisReply *r);

/* ---- routing (wk_route.c) ---- */
typedef struct wk_route {
    enum wk_msg_type type;
    wk_step_fn step; /* NULL: answered by the generic "not supported" step */
} wk_route;
extern const wk_route wk_routes[];
extern const size_t wk_nroutes;
const wk_route *wk_route_find(enum wk_msg_type t);
/* Starts a request: decodes, routes, runs the first step. */
void wk_req_start(wk_req *q);

/* The registered-VEN check every OpenADR handler makes: queues
 * HMGET ven:{venID} r fp; wk_ven_check consumes that reply and answers 463
 * (returning 0) when the VEN is not registered or the envelope's certificate
 * is not the one bound to it. */
int wk_ven_check_plan(wk_req *q, const char *ven_id);
int wk_ven_check(wk_req *q, const redisReply *h, const char *ven_id);

/* ---- handlers ---- */
void wk_h_query_registration(wk_req *q, redisReply **rep, int n);
void wk_h_create_registration(wk_req *q, redisReply **rep, int n);
void wk_h_cancel_registration(wk_req *q, redisReply **rep, int n);
void wk_h_canceled_registration(wk_req *q, redisReply **rep, int n);
void wk_h_response(wk_req *q, redisReply **rep, int n);
void wk_h_poll(wk_req *q, redisReply **rep, int n);
void wk_h_unsupported(wk_req *q, redisReply **rep, int n);
void wk_h_api(wk_req *q, redisReply **rep, int n);

/* Queues compare-and-delete of the indexes of a VEN whose registration
 * ended (reg only) or whose record was deleted (all = 1). */
int wk_queue_index_cleanup(wk_req *q, const char *ven, const char *name, const char *fp,
                           const char *reg, int all);

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
};
/* Splits path into route + id (venID or serial as given; out, WK_ID_MAX+1)
 * + query (pointer into path, may be NULL). Returns the route, WK_API_NONE
 * for unknown paths. */
int wk_api_route_of(const char *path, size_t len, char *ven_id, const char **query,
                    size_t *query_len);
/* Allowed methods for a route, e.g. "GET, POST". */
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
 * page saying there is a next. 0 or the wk_cmd error. */
int wk_cmd_page(wk_req *q, const char *key, const char *cursor, int limit);
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
/* Frees a request's certificate scratch (wk_req_reset calls it). */
void wk_cert_state_free(struct wk_cert_state **st);
/* Step of every /api/v1/certificates and /api/v1/crl request (wk_api_cert.c):
 * wk_h_api routes here after the token and method checks. */
void wk_h_api_cert(wk_req *q, int route, const char *id, const char *query, size_t qlen);

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
    wk_ca ca;      /* VTN_CA_DIR, for /api/v1/certificates */
    wk_req *slots; /* WK_BATCH_MAX */
    vtn_buf out;   /* wire frame being encoded */
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
/* Runs the handlers of a batch to completion (exposed for the fuzz target,
 * which calls it with Redis down). */
void wk_batch_run(wk_worker *w, wk_req **reqs, int n);
void wk_req_reset(wk_req *q);

#endif
