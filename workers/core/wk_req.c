/* Requests, their replies, and the batch runner that pipelines every
 * request's Redis commands of one round into a single write and read. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vtn/log.h"
#include "vtn/time.h"
#include "wk_internal.h"

/* ---- commands ---- */

/* Appends "<c><n>\r\n". */
static int resp_len(vtn_buf *b, char c, size_t n)
{
    char tmp[24];
    size_t i = sizeof tmp;
    tmp[--i] = '\n';
    tmp[--i] = '\r';
    do {
        tmp[--i] = (char)('0' + n % 10);
        n /= 10;
    } while (n);
    tmp[--i] = c;
    return vtn_buf_append(b, tmp + i, sizeof tmp - i);
}

/* A handle is the round's tag above WK_RH_BITS and the command's place + 1
 * below: a handle kept past its round reads nothing instead of another
 * command's reply. */
#define WK_RH_BITS 12
#define WK_RH_TAGS (1u << (30 - WK_RH_BITS))
_Static_assert(WK_ROUND_CMDS < (1 << WK_RH_BITS), "a round's commands fit in a handle");

/* Appends one command in RESP; on failure b is left as it was (never half a
 * command). RESP by hand: this runs for every command of every request,
 * and printf-style formatting showed up in profiles. */
static int resp_cmd(vtn_buf *b, int argc, const char **argv, const size_t *lens)
{
    size_t start = b->len;
    int rc = resp_len(b, '*', (size_t)argc);
    for (int i = 0; rc == 0 && i < argc; i++) {
        size_t n = lens ? lens[i] : strlen(argv[i]);
        rc = resp_len(b, '$', n);
        if (rc == 0)
            rc = vtn_buf_append(b, argv[i], n);
        if (rc == 0)
            rc = vtn_buf_append(b, "\r\n", 2);
    }
    if (rc < 0)
        b->len = start;
    return rc;
}

static wk_rh make_handle(const wk_req *q, int idx)
{
    return (wk_rh)(((q->round % WK_RH_TAGS) << WK_RH_BITS) | (unsigned)(idx + 1));
}

const redisReply *wk_rep(const wk_req *q, wk_rh h)
{
    if (h <= 0 || ((unsigned)h >> WK_RH_BITS) != q->rep_round % WK_RH_TAGS)
        return NULL;
    int idx = (h & ((1 << WK_RH_BITS) - 1)) - 1;
    return idx < q->nrep ? q->rep[idx] : NULL;
}

long long wk_rep_int(const wk_req *q, wk_rh h, long long def)
{
    const redisReply *r = wk_rep(q, h);
    return r && r->type == REDIS_REPLY_INTEGER ? r->integer : def;
}

wk_rh wk_cmd_argv(wk_req *q, int argc, const char **argv, const size_t *lens)
{
    if (q->ncmds >= WK_ROUND_CMDS)
        return -ENOBUFS;
    if (q->ncmds >= q->repcap) {
        int cap = q->repcap ? q->repcap * 4 : 8;
        if (cap > WK_ROUND_CMDS)
            cap = WK_ROUND_CMDS;
        redisReply **p = realloc(q->rep, (size_t)cap * sizeof *p);
        if (p == NULL)
            return -ENOMEM;
        for (int i = q->repcap; i < cap; i++)
            p[i] = NULL;
        q->rep = p;
        q->repcap = cap;
    }
    int rc = resp_cmd(&q->cmds, argc, argv, lens);
    if (rc < 0)
        return rc;
    return make_handle(q, q->ncmds++);
}

#define WK_ARGV_MAX 24

/* Appends a, then the rest of ap up to its NULL, after argv[0..argc); the
 * new count, or -E2BIG past WK_ARGV_MAX. */
static int gather_args(const char **argv, int argc, const char *a, va_list ap)
{
    for (; a != NULL; a = va_arg(ap, const char *)) {
        if (argc == WK_ARGV_MAX)
            return -E2BIG;
        argv[argc++] = a;
    }
    return argc;
}

wk_rh wk_cmd(wk_req *q, const char *a0, ...)
{
    const char *argv[WK_ARGV_MAX];
    va_list ap;
    va_start(ap, a0);
    int argc = gather_args(argv, 0, a0, ap);
    va_end(ap);
    return argc < 0 ? argc : wk_cmd_argv(q, argc, argv, NULL);
}

int wk_cmd_detached(wk_worker *w, const char *a0, ...)
{
    const char *argv[WK_ARGV_MAX];
    va_list ap;
    va_start(ap, a0);
    int argc = gather_args(argv, 0, a0, ap);
    va_end(ap);
    if (argc < 0)
        return argc;
    if (w->nafter >= WK_DETACHED_MAX)
        return -ENOBUFS;
    int rc = resp_cmd(&w->after, argc, argv, NULL);
    if (rc == 0)
        w->nafter++;
    return rc;
}

wk_rh wk_eval(wk_req *q, enum wk_script s, int nkeys, ...)
{
    const char *argv[WK_ARGV_MAX];
    char nk[16];
    snprintf(nk, sizeof nk, "%d", nkeys);
    argv[0] = "EVALSHA";
    argv[1] = q->w->redis.sha[s];
    argv[2] = nk;
    va_list ap;
    va_start(ap, nkeys);
    int argc = gather_args(argv, 3, va_arg(ap, const char *), ap);
    va_end(ap);
    return argc < 0 ? argc : wk_cmd_argv(q, argc, argv, NULL);
}

/* ---- replies ---- */

static void finish(wk_req *q, int status, const char *ctype, int mcode)
{
    q->status = status;
    q->ctype = ctype;
    q->mcode = mcode;
    q->done = 1;
    q->phase = WK_REQ_DONE;
}

void wk_reply(wk_req *q, int status, const char *ctype, const char *body, size_t len)
{
    vtn_buf_reset(&q->body);
    if (vtn_buf_append(&q->body, body, len) < 0) {
        vtn_buf_reset(&q->body);
        status = 500;
    }
    finish(q, status, ctype, status);
}

void wk_reply_body(wk_req *q, int status, const char *ctype)
{
    finish(q, status, ctype, status);
}

static void oadr_fallback(wk_req *q, int status)
{
    /* Only when even a small XML reply could not be written (out of memory). */
    static const char txt[] = "internal error";
    wk_reply(q, status, "text/plain", txt, sizeof txt - 1);
}

/* The requestID of an OpenADR reply: the VEN's (payload, or eiResponse of an
 * answer), else one of ours derived from the envelope id, so that it is never
 * empty (some VENs reject an empty one) and can be found in our logs. */
const char *wk_reply_request_id(wk_req *q)
{
    if (q->msg.request_id[0])
        return q->msg.request_id;
    if (q->msg.ei_response.request_id[0])
        return q->msg.ei_response.request_id;
    _Static_assert(sizeof q->msg.request_id >= 4 + sizeof q->rid, "room for rsp-<rid>");
    memcpy(q->msg.request_id, "rsp-", 4);
    memcpy(q->msg.request_id + 4, q->rid, sizeof q->rid); /* with its NUL */
    return q->msg.request_id;
}

void wk_reply_oadr_error(wk_req *q, int code, const char *fmt, ...)
{
    wk_worker *w = q->w;
    wk_reply_request_id(q); /* wk_write_error echoes m->request_id */
    q->msg.code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(q->msg.desc, sizeof q->msg.desc, fmt, ap);
    va_end(ap);
    vtn_buf_reset(&q->body);
    if (wk_write_error(&q->body, &q->msg, w->cfg.vtn_id, w->cfg.poll_freq_ms) < 0) {
        oadr_fallback(q, 500);
        return;
    }
    char d[300];
    vtn_info("oadr_refused", "req=%s type=%s code=%d ven=%s desc=%s", q->rid,
             wk_msg_name(q->msg.type), code, q->msg.ven_id[0] ? q->msg.ven_id : "-",
             vtn_log_quote(d, sizeof d, q->msg.desc, strlen(q->msg.desc)));
    finish(q, 200, "application/xml", code);
}

void wk_reply_oadr_response(wk_req *q, int code, const char *desc, const char *ven_id)
{
    vtn_buf_reset(&q->body);
    if (wk_write_response(&q->body, code, desc, wk_reply_request_id(q), ven_id) < 0) {
        oadr_fallback(q, 500);
        return;
    }
    finish(q, 200, "application/xml", code);
}

void wk_reply_no_room(wk_req *q)
{
    wk_reply_internal(q, "command buffer full");
}

void wk_reply_json(wk_req *q, int status, json_t *body)
{
    char *s = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (s == NULL) {
        wk_reply(q, 500, "application/json", "{\"error\":\"out of memory\"}", 25);
        return;
    }
    wk_reply(q, status, "application/json", s, strlen(s));
    free(s);
}

void wk_reply_json_error(wk_req *q, int status, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_t *o = json_pack("{s:s}", "error", msg);
    if (o == NULL) {
        wk_reply(q, 500, "application/json", "{\"error\":\"out of memory\"}", 25);
        return;
    }
    wk_reply_json(q, status, o);
}

void wk_reply_unavailable(wk_req *q, const char *why)
{
    snprintf(q->headers, sizeof q->headers, "Retry-After: %d\r\n", WK_RETRY_AFTER_S);
    if (q->env.kind == VTN_KIND_API) {
        wk_reply_json_error(q, 503, "%s", why);
        return;
    }
    vtn_buf_reset(&q->body);
    if (wk_write_response(&q->body, 503, why, wk_reply_request_id(q), NULL) < 0) {
        oadr_fallback(q, 503);
        return;
    }
    finish(q, 503, "application/xml", 503);
}

void wk_reply_storage_full(wk_req *q)
{
    static const char why[] = "VTN storage full, retry later";
    snprintf(q->headers, sizeof q->headers, "Retry-After: %d\r\n", WK_RETRY_AFTER_FULL_S);
    if (q->env.kind == VTN_KIND_API) {
        wk_reply_json_error(q, 503, "%s", why);
        return;
    }
    wk_reply_request_id(q); /* wk_write_error echoes m->request_id */
    q->msg.code = 503;
    snprintf(q->msg.desc, sizeof q->msg.desc, "%s", why);
    vtn_buf_reset(&q->body);
    if (wk_write_error(&q->body, &q->msg, q->w->cfg.vtn_id, q->w->cfg.poll_freq_ms) < 0) {
        vtn_buf_reset(&q->body);
        if (wk_write_response(&q->body, 503, why, wk_reply_request_id(q), NULL) < 0) {
            oadr_fallback(q, 503);
            return;
        }
    }
    finish(q, 503, "application/xml", 503);
}

void wk_reply_internal(wk_req *q, const char *what)
{
    char d[300];
    vtn_error("internal_error", "req=%s what=%s", q->rid,
              vtn_log_quote(d, sizeof d, what, strlen(what)));
    if (q->env.kind == VTN_KIND_API) {
        wk_reply_json_error(q, 500, "internal error: %s", what);
        return;
    }
    vtn_buf_reset(&q->body);
    if (wk_write_response(&q->body, 500, "internal error", wk_reply_request_id(q), NULL) < 0) {
        oadr_fallback(q, 500);
        return;
    }
    finish(q, 500, "application/xml", 500);
}

/* ---- reply helpers ---- */

int wk_rep_str(const redisReply *r, char *out, size_t outlen)
{
    out[0] = '\0';
    if (r == NULL || (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_STATUS))
        return 0;
    if ((size_t)r->len >= outlen)
        return 0; /* longer than anything we store: treat as absent */
    memcpy(out, r->str, (size_t)r->len);
    out[r->len] = '\0';
    return 1;
}

int wk_rep_elem(const redisReply *r, size_t i, char *out, size_t outlen)
{
    out[0] = '\0';
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || i >= r->elements)
        return 0;
    return wk_rep_str(r->element[i], out, outlen);
}

json_t *wk_script_outcome(wk_req *q, const redisReply *r)
{
    json_error_t e;
    json_t *a = r != NULL && r->type == REDIS_REPLY_STRING
                    ? json_loadb(r->str, (size_t)r->len, 0, &e)
                    : NULL;
    if (!json_is_string(json_array_get(a, 0))) {
        json_decref(a);
        wk_reply_internal(q, "unreadable script outcome");
        return NULL;
    }
    return a;
}

/* ---- requests ---- */

/* Replies are stored in order with nrep following (exchange), so none
 * lies at nrep or beyond: the loop stops there, not at repcap, which stays at
 * what the slot's largest round ever needed (up to WK_ROUND_CMDS). */
static void free_round(wk_req *q)
{
    for (int k = 0; k < q->nrep; k++) {
        if (q->rep[k]) {
            freeReplyObject(q->rep[k]);
            q->rep[k] = NULL;
        }
    }
    q->nrep = 0;
}

static void end_state(wk_req *q)
{
    if (q->h && q->h->fini)
        q->h->fini(q->st);
    q->h = NULL;
}

void wk_req_reset(wk_req *q)
{
    free_round(q);
    end_state(q);
    if (q->wipe_body && q->body.data)
        OPENSSL_cleanse(q->body.data, q->body.len);
    wk_msg_clear(&q->msg);
    if (q->cmds.cap > WK_CMD_BUF_KEEP)
        vtn_buf_free(&q->cmds);
    else
        vtn_buf_reset(&q->cmds);
    vtn_buf_reset(&q->body);
    q->ncmds = 0;
    q->round = q->rep_round = 0;
    q->done = 0;
    q->phase = WK_REQ_FREE;
    q->slow_fn = NULL;
    q->status = 0;
    q->ctype = NULL;
    q->headers[0] = '\0';
    q->wipe_body = 0;
    q->fp[0] = '\0';
    q->path_id[0] = '\0';
    q->query = (vtn_str){0};
    q->mtype = WK_MT_OTHER;
    q->mcode = 0;
    memset(&q->env, 0, sizeof q->env);
}

void wk_req_start(wk_req *q)
{
    const wk_handler *h = q->env.kind < WK_KINDS ? q->w->entry[q->env.kind] : NULL;
    if (h == NULL) {
        static const char msg[] = "request kind not handled by this worker";
        q->mtype = WK_MT_OTHER;
        vtn_warn("unknown_kind", "req=%s kind=%u", q->rid, q->env.kind);
        wk_reply(q, 501, "text/plain", msg, sizeof msg - 1);
        return;
    }
    wk_req_handle(q, h);
}

void wk_req_handle(wk_req *q, const wk_handler *h)
{
    end_state(q);
    memset(q->st, 0, h->state_size);
    q->h = h;
    q->phase = WK_REQ_RUNNING;
    if (h->init)
        h->init(q, q->st);
    h->step(q, q->st);
}

/* Redis refused a write for lack of memory (maxmemory with noeviction):
 * "-OOM ..." from the command, or the same error raised inside a script
 * ("... OOM command not allowed ..."). */
static int is_oom(const redisReply *r)
{
    return r && r->type == REDIS_REPLY_ERROR && r->str &&
           (strncmp(r->str, "OOM", 3) == 0 || strstr(r->str, "OOM command not allowed") != NULL);
}

/* Counts the refusal and logs it at most every WK_FULL_LOG_MS: under a full
 * Redis every write fails, and a line per request would bury the cause. */
static void storage_full(wk_req *q, const redisReply *r)
{
    wk_worker *w = q->w;
    atomic_fetch_add_explicit(&w->m.redis_oom, 1, memory_order_relaxed);
    w->full_unlogged++;
    int64_t now = vtn_now_ms();
    if (w->full_logged_ms == 0 || now - w->full_logged_ms >= WK_FULL_LOG_MS) {
        char d[300];
        vtn_error("redis_full",
                  "req=%s refused=%" PRIu64 " err=%s msg=\"Redis is at maxmemory: writes are "
                  "answered 503; free memory or raise maxmemory\"",
                  q->rid, w->full_unlogged, vtn_log_quote(d, sizeof d, r->str, (size_t)r->len));
        w->full_logged_ms = now;
        w->full_unlogged = 0;
    }
    wk_reply_storage_full(q);
}

/* The primary refused a write because fewer replicas than its
 * min-replicas-to-write acknowledge it (docs/deploy.md "Redis failover"):
 * nothing was written, and the VEN may retry once a replica is back. */
static int is_noreplicas(const redisReply *r)
{
    return r && r->type == REDIS_REPLY_ERROR && r->str && strncmp(r->str, "NOREPLICAS", 10) == 0;
}

void wk_req_step(wk_req *q)
{
    q->rep_round = q->round++;
    q->ncmds = 0;
    vtn_buf_reset(&q->cmds);
    for (int i = 0; i < q->nrep; i++) {
        const redisReply *r = q->rep[i];
        if (is_oom(r)) {
            storage_full(q, r);
            free_round(q);
            return;
        }
        if (is_noreplicas(r)) {
            wk_worker *w = q->w;
            int64_t now = vtn_now_ms();
            if (w->noreplicas_logged_ms == 0 || now - w->noreplicas_logged_ms >= WK_FULL_LOG_MS) {
                char d[300];
                w->noreplicas_logged_ms = now;
                vtn_warn("redis_noreplicas", "req=%s err=%s", q->rid,
                         vtn_log_quote(d, sizeof d, r->str, (size_t)r->len));
            }
            wk_reply_unavailable(q, "VTN storage unavailable, retry later");
            free_round(q);
            return;
        }
        if (r == NULL || r->type == REDIS_REPLY_ERROR) {
            char what[256];
            snprintf(what, sizeof what, "redis reply %d: %s", i, r && r->str ? r->str : "missing");
            wk_reply_internal(q, what);
            free_round(q);
            return;
        }
    }
    q->h->step(q, q->st);
    free_round(q);
}

static int is_noscript(const redisReply *r)
{
    return r && r->type == REDIS_REPLY_ERROR && r->len >= 8 && memcmp(r->str, "NOSCRIPT", 8) == 0;
}

/* Sends the round's commands of reqs[i] with sel[i] set and reads their
 * replies in order. 0, or -EIO when the connection failed (then no request
 * of this call has replies). */
static int exchange(wk_worker *w, wk_req **reqs, const unsigned char *sel, int n)
{
    redisContext *c = w->redis.c;
    int nafter = w->nafter;
    /* The detached commands go first and leave the buffer whatever happens:
     * they are best effort, and a failed round must not send them twice. */
    if (nafter && redisAppendFormattedCommand(c, w->after.data, w->after.len) != REDIS_OK) {
        vtn_buf_reset(&w->after);
        w->nafter = 0;
        wk_redis_fail(&w->redis, "append failed");
        return -EIO;
    }
    vtn_buf_reset(&w->after);
    w->nafter = 0;
    for (int k = 0; k < nafter; k++) {
        void *rep = NULL;
        if (redisGetReply(c, &rep) != REDIS_OK || rep == NULL) {
            wk_redis_fail(&w->redis, c->errstr[0] ? c->errstr : "no reply");
            return -EIO;
        }
        if (((redisReply *)rep)->type == REDIS_REPLY_ERROR)
            atomic_fetch_add_explicit(&w->m.redis_errors, 1, memory_order_relaxed);
        freeReplyObject(rep);
    }
    for (int i = 0; i < n; i++) {
        if (sel[i] &&
            redisAppendFormattedCommand(c, reqs[i]->cmds.data, reqs[i]->cmds.len) != REDIS_OK) {
            wk_redis_fail(&w->redis, "append failed");
            return -EIO;
        }
    }
    for (int i = 0; i < n; i++) {
        if (!sel[i])
            continue;
        for (int k = 0; k < reqs[i]->ncmds; k++) {
            void *rep = NULL;
            if (redisGetReply(c, &rep) != REDIS_OK || rep == NULL) {
                for (int j = 0; j < n; j++)
                    if (sel[j])
                        free_round(reqs[j]);
                wk_redis_fail(&w->redis, c->errstr[0] ? c->errstr : "no reply");
                return -EIO;
            }
            reqs[i]->rep[k] = rep;
            reqs[i]->nrep = k + 1;
        }
    }
    return 0;
}

int wk_round(wk_worker *w, wk_req **reqs, int n)
{
    unsigned char sel[WK_BATCH_MAX];
    int pending = 0;
    for (int i = 0; i < n; i++) {
        wk_req *q = reqs[i];
        sel[i] = 0;
        if (q->phase != WK_REQ_RUNNING)
            continue;
        if (q->ncmds == 0) {
            /* A step that neither finished, queued a command nor handed off work is a bug. */
            wk_reply_internal(q, "handler stalled");
            continue;
        }
        if (q->round >= WK_MAX_ROUNDS) {
            wk_reply_internal(q, "too many rounds");
            continue;
        }
        sel[i] = 1;
        pending++;
    }
    if (w->redis.c == NULL) { /* best effort: not kept for a later connection */
        vtn_buf_reset(&w->after);
        w->nafter = 0;
    }
    if (!pending) {
        /* Only detached writes: they go out on their own. */
        if (w->nafter && w->redis.c)
            exchange(w, reqs, sel, n);
        return 0;
    }
    if (w->redis.c == NULL || exchange(w, reqs, sel, n) < 0) {
        for (int i = 0; i < n; i++)
            if (sel[i])
                wk_reply_unavailable(reqs[i], "VTN storage unavailable, retry later");
        return pending;
    }
    /* READONLY: a failover made this server a replica. Nothing of the round was written
     * (a replica refuses every write), and what it read may be behind the new primary:
     * the round's requests get 503 and the connection goes, to find the primary again. */
    int readonly = 0;
    for (int i = 0; i < n && !readonly; i++)
        for (int k = 0; sel[i] && k < reqs[i]->nrep && !readonly; k++)
            readonly = vtn_redis_is_readonly(reqs[i]->rep[k]);
    if (readonly) {
        for (int i = 0; i < n; i++) {
            if (!sel[i])
                continue;
            free_round(reqs[i]);
            wk_reply_unavailable(reqs[i], "VTN storage unavailable, retry later");
        }
        wk_redis_fail(&w->redis, "READONLY: the server is a replica now (failover)");
        return pending;
    }
    /* NOSCRIPT: Redis lost the scripts (restart, SCRIPT FLUSH). Reload once and repeat
     * the round of the requests that hit it; rounds are safe to repeat. */
    unsigned char again[WK_BATCH_MAX];
    int nagain = 0;
    for (int i = 0; i < n; i++) {
        again[i] = 0;
        for (int k = 0; sel[i] && k < reqs[i]->nrep; k++)
            if (is_noscript(reqs[i]->rep[k]))
                again[i] = 1;
        if (again[i]) {
            free_round(reqs[i]);
            nagain++;
        }
    }
    if (nagain) {
        vtn_warn("redis_noscript", "requests=%d msg=\"reloading scripts\"", nagain);
        if (wk_redis_load_scripts(&w->redis) < 0 || w->redis.c == NULL ||
            exchange(w, reqs, again, n) < 0) {
            for (int i = 0; i < n; i++) {
                if (!sel[i])
                    continue;
                free_round(reqs[i]);
                wk_reply_unavailable(reqs[i], "VTN storage unavailable, retry later");
            }
            return pending;
        }
    }
    for (int i = 0; i < n; i++)
        if (sel[i])
            wk_req_step(reqs[i]);
    return pending;
}

void wk_batch_run(wk_worker *w, wk_req **reqs, int n)
{
    for (int guard = 0; guard <= WK_MAX_ROUNDS + 1; guard++) {
        wk_slow_collect(w);
        int waiting = 0;
        for (int i = 0; i < n; i++)
            waiting += reqs[i]->phase == WK_REQ_SLOW;
        if (wk_round(w, reqs, n) == 0 && !waiting)
            return;
        if (waiting)
            wk_slow_wait(w, 1000);
    }
}
