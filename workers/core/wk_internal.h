/* The worker's core room: the loop, requests and their Redis rounds,
 * replies, the slow-work thread, the memory budget, config, metrics, and
 * the Redis connection, keys and scripts. The door every other room of
 * workers/ goes through (codec below it; ven, oadr and api above it; main.c
 * wires them). Nothing here calls into the rooms above: each request kind
 * starts with the handler main.c puts in wk_worker.entry.
 *
 * One loop: each turn takes new requests from every gateway's DEALER
 * socket, runs one pipelined Redis round for every request in flight, and
 * sends each reply as soon as its request is finished. docs/worker.md
 * explains the design. */
#ifndef WK_INTERNAL_H
#define WK_INTERNAL_H

#include <signal.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdint.h>

#include <hiredis/hiredis.h>
#include <jansson.h>
#include <zmq.h>

#include "wk_codec.h"
#include "vtn/buf.h"
#include "vtn/config.h"
#include "vtn/heartbeat.h"
#include "vtn/id.h"
#include "vtn/keys.h"
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
#define WK_CMD_BUF_MAX (256 << 12) /* bytes of one request's commands in one round, 1 MiB */
#define WK_REPLY_MAX (4 << 20)     /* bytes of one reply body */
#define WK_SERIAL_MAX 40           /* hex digits of a certificate serial (RFC 5280: 20 octets) */
#define WK_FP_MAX 20               /* hex digits of a normalised fingerprint (vtn/fingerprint.h) */
#define WK_RETRY_AFTER_S 2         /* Retry-After on 503 while Redis is down */
#define WK_RETRY_AFTER_FULL_S                                                                      \
    30                       /* Retry-After on 503 while Redis is full: an operator must act       \
                              */
#define WK_FULL_LOG_MS 10000 /* at most one redis_full log line per this long */
#define WK_API_LIMIT_DEFAULT 100
/* WK_CMD_BUF_MAX takes a PUT of 10,000 members (WK_MEMBERS_MAX) of 64-byte
 * venIDs, ~0.8 MB; a slot frees a command buffer bigger than this when its
 * request ends, so a rare big round does not stay in memory. */
#define WK_CMD_BUF_KEEP (64 << 10)
#define WK_API_LIMIT_MAX 1000

/* OpenADR 2.0b response codes the handlers use (besides the codec's). */
#define WK_OADR_OUT_OF_SEQUENCE 450
#define WK_OADR_NOT_ALLOWED 451
#define WK_OADR_INVALID_ID 452
#define WK_OADR_NOT_REGISTERED 463 /* not registered or not authorised */
#define WK_OADR_OTHER 469

enum wk_policy { WK_POLICY_OPEN = 0, WK_POLICY_PROVISIONED = 1 };

typedef struct wk_config {
    char *gateways;
    char *redis_url;
    char *redis_sentinels;         /* VTN_REDIS_SENTINELS */
    char *redis_sentinel_master;   /* VTN_REDIS_SENTINEL_MASTER */
    char *redis_sentinel_password; /* VTN_REDIS_SENTINEL_PASSWORD */
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
    long long memory;            /* VTN_WORKER_MEMORY */
    char *report_request_in;     /* VTN_REPORT_REQUEST_IN: "poll" or "registered" */
    long long telemetry_maxlen;  /* VTN_TELEMETRY_MAXLEN */
    long long telemetry_keep_ms; /* VTN_TELEMETRY_RETENTION */
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
    WK_SCRIPT_PROGRAM,
    WK_SCRIPT_EVENT,
    WK_SCRIPT_EVSENT,
    WK_SCRIPT_MEMBERS,
    WK_SCRIPT_PROGRAMDEL,
    WK_SCRIPT_VENTARGETS,
    WK_SCRIPT_EVOPT,
    WK_SCRIPT_REPREG,
    WK_SCRIPT_REPSTATE,
    WK_SCRIPT_TELEMETRY,
    WK_SCRIPT_REPAPI,
    WK_SCRIPT_OPTCREATE,
    WK_SCRIPT_OPTCANCEL,
    WK_SCRIPT_REPPOLICY,
    WK_SCRIPT_LASTPOLL,
    WK_SCRIPT__COUNT
};
extern const char *const wk_script_name[WK_SCRIPT__COUNT];

/* ---- metrics (wk_metrics.c) ---- */
#define WK_MT_API WK_MSG__COUNT         /* metrics "type" index for management API requests */
#define WK_MT_OTHER (WK_MSG__COUNT + 1) /* push replies and anything else */
#define WK_MT__COUNT (WK_MSG__COUNT + 2)
#define WK_NCODES 24

typedef struct wk_metrics {
    _Atomic uint64_t requests[WK_MT__COUNT][WK_NCODES];
    vtn_hist latency[WK_MT__COUNT];
    vtn_ihist batch; /* new requests per loop turn: 1, 2, 4 .. 512, +Inf */
    _Atomic uint64_t redis_errors, redis_reconnects, redis_script_loads;
    _Atomic uint64_t dropped_deadline, replies_lost, bad_frames;
    _Atomic uint64_t frames_ignored; /* frame types of a newer gateway (vtn/wire.h) */
    _Atomic uint64_t gateway_reconnects;
    _Atomic uint64_t loop_stalls; /* passes of the loop WK_LOOP_STALL_MS late (wk_loop.c) */
    _Atomic uint64_t certs_issued, certs_revoked, crls_signed;
    _Atomic uint64_t over_budget; /* requests refused by the memory budget */
    _Atomic uint64_t redis_oom;   /* requests refused because Redis refused a write (OOM) */
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
    vtn_redis_watch *watch; /* +switch-master; NULL without sentinels */
} wk_redis;

/* The URL or sentinels of cfg (vtn_redis_target_init). */
int wk_redis_init(wk_redis *r, const wk_config *cfg, wk_metrics *m, char *err, size_t errlen);
/* The +switch-master subscription's descriptor for the loop's poll, or -1. */
int wk_redis_watch_fd(wk_redis *r, int64_t now_ms);
/* After the descriptor polled readable: a failover drops the connection
 * and connects at once to the new primary. */
void wk_redis_watch_read(wk_redis *r, int64_t now_ms);
/* Frees the connection and the subscription (at exit). */
void wk_redis_free(wk_redis *r);
/* Connects (and loads the scripts) when down and the back-off allows. */
void wk_redis_maintain(wk_redis *r, int64_t now_ms);
/* After an I/O error or timeout: the context cannot be reused. */
void wk_redis_fail(wk_redis *r, const char *why);
int wk_redis_load_scripts(wk_redis *r);
void wk_redis_close(wk_redis *r);
/* One synchronous command outside a batch (discovery). NULL when down or on
 * an I/O error or a READONLY answer (then the connection is failed). Caller
 * frees the reply. */
redisReply *wk_redis_sync(wk_redis *r, const char *fmt, ...);

/* ---- requests and handlers ---- */
#define WK_KINDS 4 /* vtn_request.kind values: VTN_KIND_OADR .. VTN_KIND_PUSH_REPLY */
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
/* A command whose reply nobody reads: a best-effort write (a VEN's last
 * poll) that must not cost its request a round. It leaves with the worker's
 * next round, ahead of the requests' commands, and its reply is dropped (an
 * error reply counts in redis_errors); lost if Redis is down then. 0, or
 * -ENOBUFS past WK_DETACHED_MAX waiting. */
#define WK_DETACHED_MAX 4096
int wk_cmd_detached(wk_worker *w, const char *a0, ...) __attribute__((sentinel));
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
/* HTTP 503 + Retry-After (WK_RETRY_AFTER_FULL_S) because Redis refused a
 * write for lack of memory: JSON for the API, the message's own reply type
 * with code 503 and the reason for OpenADR. */
void wk_reply_storage_full(wk_req *q);
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

/* ---- keys and small helpers (wk_keys.c) ---- */
/* Key names of the data model (vtn/keys.h, docs/redis-keys.md): "ven:{<id>}"
 * etc.; out must hold VTN_KEY_MAX bytes; each returns out. */
#define wk_key_ven(out, ven_id) vtn_key_build(out, VTN_KEY_VEN, ven_id, NULL)
#define wk_key_venq(out, ven_id) vtn_key_build(out, VTN_KEY_VENQ, ven_id, NULL)
#define wk_key_venpm(out, ven_id) vtn_key_build(out, VTN_KEY_VENPM, ven_id, NULL)
#define wk_key_venreq(out, ven_id, rid) vtn_key_build(out, VTN_KEY_VENREQ, ven_id, rid)
#define wk_key_name(out, name) vtn_key_build(out, VTN_KEY_VENNAME, name, NULL)
#define wk_key_fp(out, fp) vtn_key_build(out, VTN_KEY_VENFP, fp, NULL)
#define wk_key_reg(out, reg_id) vtn_key_build(out, VTN_KEY_VENREG, reg_id, NULL)
#define wk_key_req(out, rid) vtn_key_build(out, VTN_KEY_REQ, rid, NULL)
/* Certificates issued through the API. */
#define wk_key_cert(out, serial) vtn_key_build(out, VTN_KEY_CERT, serial, NULL)
#define wk_key_vencerts(out, ven_id) vtn_key_build(out, VTN_KEY_VENCERTS, ven_id, NULL)
#define wk_key_certreq(out, rid) vtn_key_build(out, VTN_KEY_CERTREQ, rid, NULL)
#define wk_key_revokedfp(out, fp) vtn_key_build(out, VTN_KEY_REVOKEDFP, fp, NULL)
#define wk_key_ca_revoked(out, ca_id) vtn_key_build(out, VTN_KEY_CA_REVOKED, ca_id, NULL)
#define wk_key_ca_crlnumber(out, ca_id) vtn_key_build(out, VTN_KEY_CA_CRLNUMBER, ca_id, NULL)
#define wk_key_program(out, id) vtn_key_build(out, VTN_KEY_PROGRAM, id, NULL)
#define wk_key_group(out, id) vtn_key_build(out, VTN_KEY_GROUP, id, NULL)
#define wk_key_event(out, id) vtn_key_build(out, VTN_KEY_EVENT, id, NULL)
/* Reports (docs/reports.md). */
#define wk_key_venreports(out, ven_id) vtn_key_build(out, VTN_KEY_VENREPORTS, ven_id, NULL)
#define wk_key_venrr(out, ven_id) vtn_key_build(out, VTN_KEY_VENRR, ven_id, NULL)
#define wk_key_venasked(out, ven_id) vtn_key_build(out, VTN_KEY_VENASKED, ven_id, NULL)
#define wk_key_venopts(out, ven_id) vtn_key_build(out, VTN_KEY_VENOPTS, ven_id, NULL)

/* Fingerprint "09:71:9e:..." (or a full SHA-256 one) -> "09719E..." with
 * vtn_fingerprint_normalize. 0 or -EINVAL. */
int wk_fp_normalize(const char *in, size_t n, char *out, size_t outlen);
/* "09719E..." -> "09:71:9E:...". */
void wk_fp_pretty(const char *fp, char *out, size_t outlen);
/* An ID we accept in a URL path or a cursor: 1..WK_ID_MAX of [A-Za-z0-9._:-]. */
int wk_id_valid(const char *s, size_t n);
/* The lp field of a VEN record, "<last poll ms> <poll frequency ms>" (n
 * bytes), into *ms and *freq; each 0 when absent or not digits. By hand,
 * not strtoll: every poll reads it. */
void wk_last_poll_parse(const char *s, size_t n, long long *ms, long long *freq);
/* Opaque pagination cursor: hex of the last venID of a page. */
int wk_cursor_encode(const char *ven_id, char *out, size_t outlen);
int wk_cursor_decode(const char *cursor, char *out, size_t outlen);

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
    struct wk_ca *ca;           /* VTN_CA_DIR, for /api/v1/certificates (api room); NULL: none */
    struct wk_evcache *evcache; /* event views (wk_event_view); made on first use */
    /* The handler each request kind (vtn_request.kind) starts with: main.c
     * wires the rooms (oadr, api) in; a kind without one gets 501. */
    const wk_handler *entry[WK_KINDS];
    wk_req *slots;        /* WK_BATCH_MAX, in flight across loop turns */
    int nbusy;            /* slots not WK_REQ_FREE */
    struct wk_slow *slow; /* the slow-work thread; NULL: jobs run inline (tests) */
    size_t mem_budget;    /* VTN_WORKER_MEMORY */
    size_t mem_used;      /* charged by the requests in flight */
    vtn_buf out;          /* wire frame being encoded */
    vtn_buf after;        /* detached commands for the next round (wk_cmd_detached) */
    vtn_heartbeat hb;     /* this worker's entry in vtn:procs */
    int nafter;
    wk_metrics m;
    vtn_ops *ops;
    int ready_logged;
    int64_t full_logged_ms;       /* last redis_full log line (rate limit) */
    uint64_t full_unlogged;       /* refusals since that line */
    int64_t noreplicas_logged_ms; /* last redis_noreplicas log line (same rate limit) */
    int64_t next_discovery_ms;
    int64_t next_trim_ms;
    int64_t pass_ms;                         /* when the loop's timers last ran (0 = never) */
    int64_t stall_logged_ms;                 /* the last loop_stall line */
    uint64_t stalls_unlogged, stall_lag_max; /* stalls since that line, their largest lag */
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
/* Starts a request with the entry handler of its kind (501 without one). */
void wk_req_start(wk_req *q);

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

/* ---- event records (wk_events.c; docs/redis-keys.md, vtn:event:<eventID>) ---- */
/* A field of an HGETALL reply (NULL when absent), as a string into out
 * ("" when absent), or as an integer (0 when absent). */
const redisReply *wk_hfield(const redisReply *h, const char *f);
/* An HGETALL reply with no fields: the hash does not exist (or h is no hash). */
int wk_hash_empty(const redisReply *h);
const char *wk_hfield_str(const redisReply *h, const char *f, char *out, size_t outlen);
long long wk_hfield_int(const redisReply *h, const char *f);
/* The ids of an array reply (or of one string reply) as a JSON array of
 * strings (ids over WK_ID_MAX skipped); NULL when out of memory. */
json_t *wk_rep_strings(const redisReply *r);
/* ISO 8601 duration -> ms: P[nW] or P[nD][T[nH][nM][nS]]; years and
 * months (no fixed length) and fractions (not in the 2.0b pattern) are
 * refused. 0 or -EINVAL. */
int wk_duration_parse(const char *s, int64_t *ms);
/* "2026-12-03T14:00:00[.fff]Z" -> ms since the epoch. 0 or -EINVAL. */
int wk_datetime_parse(const char *s, int64_t *ms);
/* A report request record's state as read at now (wk_reports.c): its
 * recorded "state", except that a request with an end ("endsAt", ms) is
 * "completed" once the end plus one reportBackDuration has passed, unless
 * it was cancelled or is being cancelled. NULL when the record has none. */
const char *wk_report_request_state(json_t *rec, int64_t now);
/* The shortest oadrMinPeriod among a report's descriptions (descs, as in
 * venreports), as the VEN spelled it, counting only the rIDs in rids (a
 * JSON array of strings; NULL: all). NULL when none has one. */
const char *wk_report_shortest_period(json_t *descs, json_t *rids);
/* A request's member in the scheduler's indexes (vtn:reports:send, :check,
 * :overdue): "<venID>|<reportRequestID>" into out, WK_REPORT_MEMBER_MAX bytes. */
#define WK_REPORT_MEMBER_MAX (2 * WK_ID_MAX + 2)
const char *wk_report_index_member(char *out, const char *ven_id, const char *rr);
/* A one-shot request's window into its record: dtstart (start_ms to the
 * second, as a UTC date-time), duration as given, endsAt (ms). 0 or -ENOMEM. */
int wk_report_set_window(json_t *rec, int64_t start_ms, const char *duration, int64_t duration_ms);
/* Report request policies (docs/reports.md, "The request policy"): what
 * the VTN requests when a VEN registers its reports. A policy is a JSON
 * object {deliverIn: "poll"|"registered", rules: [{reportNames,
 * reportTypes?, granularity?, reportBackDuration?, duration?}]}. */
#define WK_POLICY_RULES_MAX 8
#define WK_POLICY_NAMES_MAX 16 /* reportNames or reportTypes of one rule */
#define WK_POLICY_NAME_MAX 64
#define WK_POLICY_DURATION_MAX 31
#define WK_POLICY_DEFAULT_FIELD "default" /* its field in VTN_KEY_REPORTPOLICIES */
/* 0, or -EINVAL with the message naming the field in err. */
int wk_report_policy_check(json_t *p, char *err, size_t errlen);
/* Today's fixed policy: TELEMETRY_USAGE and TELEMETRY_STATUS at the VEN's
 * rates, delivered as deliver_in says (VTN_REPORT_REQUEST_IN). */
json_t *wk_report_policy_builtin(const char *deliver_in);
/* The policy for a VEN (new reference): its own (ven_policy, the JSON of
 * its record's field, or NULL), else that of the program it is enrolled in
 * (targets: its ventargets members, JSON strings) whose programID sorts
 * first among those with one in stored (the VTN_KEY_REPORTPOLICIES hash as
 * a JSON object), else stored's default, else the built-in one. A stored
 * policy that fails the check is skipped. source says which ("ven",
 * "program <id>", "default", "built-in"). NULL when out of memory. */
json_t *wk_report_policy_choose(const char *ven_policy, json_t *stored, json_t *targets,
                                const char *deliver_in, char *source, size_t sourcelen);
/* The request records (as in venrr, "via" the policy's deliverIn) the
 * policy makes of a VEN's registered reports: for each report, the first
 * rule naming it (with or without METADATA_) that leaves it an rID after
 * its reportTypes filter. Unset rates are the shortest oadrMinPeriod the
 * VEN offers for those rIDs (PT1M when none); a reportBackDuration shorter
 * than that is raised to it (the record keeps reportBackDurationAsked); a
 * duration makes a one-shot window from now. reportRequestIDs are
 * rr-<rid>-<n>. NULL when out of memory. */
json_t *wk_report_policy_requests(json_t *policy, json_t *reports, const char *rid, int64_t now);
enum wk_event_status {
    WK_EVENT_FAR = 0,
    WK_EVENT_NEAR,
    WK_EVENT_ACTIVE,
    WK_EVENT_COMPLETED,
    WK_EVENT_CANCELLED,
    WK_EVENT__STATUSES
};
/* The status at now: cancelled, completed (now >= end), active (now >=
 * start), near (within near_ms of the start), else far. */
int wk_event_status(int64_t now, int cancelled, int64_t start, int64_t end, int64_t near_ms);
/* The near window of an event body: rampUp, else notification; -1 without. */
int64_t wk_event_near_ms(json_t *body);
const char *wk_event_status_name(int status);
int wk_event_status_of(const char *name); /* -EINVAL for an unknown name */
/* The JSON of the record h (HGETALL of vtn:event:<id>) as the API shows it
 * (docs/openapi.yaml, Event) with its status at now (also in *status when
 * not NULL); NULL for a missing or unreadable record. */
json_t *wk_event_json(const char *id, const redisReply *h, int64_t now, int *status);
/* ---- the event view cache (wk_evcache.c) ---- */

#define WK_EVCACHE_ENTRIES 256      /* events whose view a worker keeps */
#define WK_EVCACHE_BYTES (4u << 20) /* their records and views, about */
typedef struct wk_evcache wk_evcache;
typedef struct wk_evcache_stats {
    uint64_t hits, misses, evictions;
    int entries;
    size_t bytes;
} wk_evcache_stats;
/* At most max_entries entries and max_bytes bytes. 0, -EINVAL, -ENOMEM. */
int wk_evcache_new(wk_evcache **c, int max_entries, size_t max_bytes);
void wk_evcache_free(wk_evcache **c);
/* The view kept for event id when h (its HGETALL reply) is the record it was
 * built from and its status at now is the same (also in *status); a new
 * reference, to be used read-only. NULL: a miss. */
json_t *wk_evcache_get(wk_evcache *c, const char *id, const redisReply *h, int64_t now,
                       int *status);
/* Keeps view (takes a reference of its own) as the view of record h at
 * status, replacing the event's older entry and evicting the least recently
 * used ones past the bounds. 0; -E2BIG for a record over an eighth of the
 * bytes (not kept); -EINVAL, -ENOMEM. */
int wk_evcache_put(wk_evcache *c, const char *id, const redisReply *h, int status, json_t *view);
wk_evcache_stats wk_evcache_stats_of(const wk_evcache *c);
/* wk_event_json through the worker's cache: the same JSON, shared, so the
 * caller only reads it (and decrefs it). */
json_t *wk_event_view(wk_worker *w, const char *id, const redisReply *h, int64_t now, int *status);

/* ---- EiOpt (wk_opts.c, docs/opt.md) ---- */
/* The components of an oadrCreateOpt's vavailability (wk_msg.opt's
 * "availability": [{dtstart, duration}]) as a new array of [start ms, end
 * ms] in *out, and the latest end in *last_end. -EINVAL with the reason in
 * err (a dtstart that is not a UTC date-time, a duration that is not
 * positive or over a year), -ENOMEM; *out is NULL then. */
int wk_opt_intervals(json_t *availability, json_t **out, int64_t *last_end, char *err,
                     size_t errlen);
/* The opt a VEN's schedules give an event active over [start, end) in
 * market_context (NULL: none): schedules are vtn:opts:sched members
 * ({"o": optID, "t": "i"|"o", "mc", "c": [[start, end], ...]}); one applies
 * when it names no marketContext or the event's. An optOut schedule
 * applies when a component overlaps the period, an optIn schedule when one
 * component holds all of it; optOut wins over optIn. "optIn", "optOut" or
 * NULL (none applies); *opt_id the schedule's optID (borrowed). Pure. */
const char *wk_opt_from_schedules(json_t *schedules, const char *market_context, int64_t start,
                                  int64_t end, const char **opt_id);

/* 1 when the JSON array list holds the string s (an id in an event's targets). */
int wk_json_list_has(json_t *list, const char *s);

#endif
