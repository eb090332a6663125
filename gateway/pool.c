/* The worker pool: Paranoid Pirate with credits (see vtn/wire.h).
 *
 * A worker announces itself with READY and a number of credits (requests it
 * takes at once); every REPLY gives one credit back. Workers holding credits
 * sit in an LRU queue: a request goes to the head worker, which moves to the
 * tail (or leaves the queue at zero credits), so load rotates over workers
 * and no worker gets more than it asked for. Requests that find no credit
 * wait in a bounded FIFO. Any message from a worker proves it alive.
 *
 * The poison-request rule: how a worker died decides what happens to its
 * requests. A worker whose connection is gone (ZeroMQ no longer knows its
 * routing id: EHOSTUNREACH under ZMQ_ROUTER_MANDATORY; it sent DISCONNECT;
 * a new READY from the same identity) crashed or restarted: each of its
 * requests is retried once on another worker if the deadline allows
 * (attempt = 1), else answered 503. A worker still connected but silent for
 * VTN_HEARTBEAT_LIVENESS intervals while holding requests is stuck, most
 * likely on one of them: those requests are answered 503 and never sent to
 * another worker (counted as poison suspects), so one request can stall at
 * most the one worker it reached.
 *
 * No sockets: frames leave through ops->send, results through ops->done and
 * ops->fail. Answers the gateway makes itself are collected in `failing` and
 * delivered when the pool's state is consistent again (at the end of the
 * public call), because a callback may submit the connection's next request
 * straight back into the pool. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "gw_internal.h"
#include "vtn/log.h"

static uint32_t ident_hash(const uint8_t *p, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 16777619u;
    return h;
}

static gw_worker *worker_find(gw_pool *p, const uint8_t *ident, size_t n)
{
    for (gw_worker *w = p->whash[ident_hash(ident, n) % GW_WORKER_HASH]; w; w = w->hnext)
        if (w->ident_len == n && memcmp(w->ident, ident, n) == 0)
            return w;
    return NULL;
}

/* ---- request id table --------------------------------------------------- */

static void rhash_add(gw_pool *p, gw_req *r)
{
    gw_req **b = &p->rhash[r->id & p->rmask];
    r->hnext = *b;
    *b = r;
}

static void rhash_del(gw_pool *p, gw_req *r)
{
    for (gw_req **b = &p->rhash[r->id & p->rmask]; *b; b = &(*b)->hnext) {
        if (*b == r) {
            *b = r->hnext;
            r->hnext = NULL;
            return;
        }
    }
}

static gw_req *rhash_find(gw_pool *p, uint64_t id)
{
    for (gw_req *r = p->rhash[id & p->rmask]; r; r = r->hnext)
        if (r->id == id)
            return r;
    return NULL;
}

/* ---- request states ----------------------------------------------------- */

/* Takes r out of whatever the pool keeps it in; state becomes IDLE. */
static void req_detach(gw_pool *p, gw_req *r)
{
    switch (r->state) {
    case GW_REQ_PENDING:
        p->npending--;
        GW_SET(p->stats.pending, p->npending);
        break;
    case GW_REQ_INFLIGHT:
        GW_SET(p->stats.inflight, GW_GET(p->stats.inflight) - 1);
        break;
    case GW_REQ_FAILING:
        gw_list_del(&r->link);
        r->state = GW_REQ_IDLE;
        return;
    default:
        return;
    }
    gw_list_del(&r->link);
    gw_list_del(&r->age);
    rhash_del(p, r);
    r->worker = NULL;
    r->state = GW_REQ_IDLE;
}

static void req_fail(gw_pool *p, gw_req *r, int status, int reason)
{
    req_detach(p, r);
    r->fail_status = (uint16_t)status;
    r->fail_reason = (uint8_t)reason;
    if (status == 503)
        GW_INC(p->stats.unavailable[reason]);
    else
        GW_INC(p->stats.timeouts);
    r->state = GW_REQ_FAILING;
    gw_list_add_tail(&p->failing, &r->link);
}

static void req_pend(gw_pool *p, gw_req *r, int front)
{
    r->state = GW_REQ_PENDING;
    if (front)
        gw_list_add_head(&p->pending, &r->link);
    else
        gw_list_add_tail(&p->pending, &r->link);
    p->npending++;
    GW_SET(p->stats.pending, p->npending);
}

static void flush_failing(gw_pool *p)
{
    if (p->flushing)
        return;
    p->flushing = 1;
    while (!gw_list_empty(&p->failing)) {
        gw_req *r = gw_container_of(p->failing.next, gw_req, link);
        gw_list_del(&r->link);
        r->state = GW_REQ_IDLE;
        p->ops->fail(p->ud, r, r->fail_status);
    }
    p->flushing = 0;
}

/* ---- workers ------------------------------------------------------------ */

static int send_empty(gw_pool *p, gw_worker *w, int type)
{
    vtn_buf_reset(&p->scratch);
    if (vtn_wire_encode_empty(&p->scratch, type))
        return -ENOMEM;
    return p->ops->send(p->ud, w->ident, w->ident_len, p->scratch.data, p->scratch.len);
}

/* Re-encodes r with attempt = 1. */
static int req_mark_retry(gw_pool *p, gw_req *r)
{
    vtn_request q;
    if (vtn_wire_decode_request(r->env.data, r->env.len, &q))
        return -EPROTO;
    q.attempt = 1;
    vtn_buf_reset(&p->scratch);
    if (vtn_wire_encode_request(&p->scratch, &q))
        return -ENOMEM;
    vtn_buf tmp = r->env;
    r->env = p->scratch;
    p->scratch = tmp;
    r->attempt = 1;
    return 0;
}

/* The worker went silent holding its requests: any of them may be what
 * stalled it, so none goes to another worker. */
static void worker_fail_stalled(gw_pool *p, gw_worker *w)
{
    while (!gw_list_empty(&w->inflight)) {
        gw_req *r = gw_container_of(w->inflight.next, gw_req, link);
        GW_INC(p->stats.poison_suspects);
        req_fail(p, r, 503, GW_UNAVAIL_STALLED);
    }
    w->outstanding = 0;
}

/* The worker's requests are lost with it (death, DISCONNECT or a new READY
 * from the same identity): retry each once, oldest first, ahead of new
 * requests; the rest get 503. */
static void worker_requeue(gw_pool *p, gw_worker *w, uint64_t now, int can_retry)
{
    gw_list retry;
    gw_list_init(&retry);
    while (!gw_list_empty(&w->inflight)) {
        gw_req *r = gw_container_of(w->inflight.next, gw_req, link);
        if (can_retry && r->attempt == 0 && r->deadline > now + GW_RETRY_MIN_MS &&
            req_mark_retry(p, r) == 0) {
            gw_list_del(&r->link);
            r->worker = NULL;
            GW_SET(p->stats.inflight, GW_GET(p->stats.inflight) - 1);
            r->state = GW_REQ_PENDING;
            gw_list_add_tail(&retry, &r->link);
            p->npending++;
            GW_INC(p->stats.retries);
            vtn_debug("retry", "req=%016" PRIx64 " worker=%s", r->id, w->name);
        } else {
            req_fail(p, r, 503, GW_UNAVAIL_WORKER_LOST);
        }
    }
    if (!gw_list_empty(&retry)) {
        /* splice retry in front of pending */
        gw_list *first = retry.next, *last = retry.prev, *head = &p->pending;
        last->next = head->next;
        head->next->prev = last;
        head->next = first;
        first->prev = head;
        GW_SET(p->stats.pending, p->npending);
    }
    w->outstanding = 0;
}

/* How a worker was found dead; only SILENT means it is still connected. */
enum worker_death { DEATH_UNREACHABLE, DEATH_SEND_FAILED, DEATH_DISCONNECT, DEATH_SILENT };
static const char *const death_name[] = {"unreachable", "send_failed", "disconnect", "silent"};

static void worker_dead(gw_pool *p, gw_worker *w, uint64_t now, enum worker_death why)
{
    vtn_warn("worker_dead", "worker=%s reason=%s inflight_lost=%u retry=%s", w->name,
             death_name[why], (unsigned)w->outstanding, why == DEATH_SILENT ? "no" : "once");
    if (why == DEATH_SILENT)
        worker_fail_stalled(p, w);
    else
        worker_requeue(p, w, now, p->nworkers > 1); /* a retry needs another worker */
    gw_list_del(&w->lru);
    gw_list_del(&w->all);
    for (gw_worker **b = &p->whash[ident_hash(w->ident, w->ident_len) % GW_WORKER_HASH]; *b;
         b = &(*b)->hnext) {
        if (*b == w) {
            *b = w->hnext;
            break;
        }
    }
    free(w);
    p->nworkers--;
    GW_SET(p->stats.live_workers, p->nworkers);
    GW_INC(p->stats.worker_deaths);
    if (p->nworkers == 0) {
        /* Nobody will take them: answer now rather than at the deadline. */
        while (!gw_list_empty(&p->pending)) {
            gw_req *r = gw_container_of(p->pending.next, gw_req, link);
            req_fail(p, r, 503, GW_UNAVAIL_NO_WORKER);
        }
    }
}

/* Sends r to the least recently used worker with a credit. 0, or -EAGAIN
 * when no worker can take it (workers whose socket is gone die on the way). */
static int dispatch(gw_pool *p, gw_req *r, uint64_t now)
{
    while (!gw_list_empty(&p->lru)) {
        gw_worker *w = gw_container_of(p->lru.next, gw_worker, lru);
        int rc = p->ops->send(p->ud, w->ident, w->ident_len, r->env.data, r->env.len);
        if (rc != 0) {
            worker_dead(p, w, now, rc == -EHOSTUNREACH ? DEATH_UNREACHABLE : DEATH_SEND_FAILED);
            continue;
        }
        w->credits--;
        w->outstanding++;
        gw_list_del(&w->lru);
        if (w->credits)
            gw_list_add_tail(&p->lru, &w->lru);
        r->worker = w;
        r->state = GW_REQ_INFLIGHT;
        gw_list_add_tail(&w->inflight, &r->link);
        GW_INC(p->stats.inflight);
        return 0;
    }
    return -EAGAIN;
}

/* Hands waiting requests to workers while credits last. */
static void pump(gw_pool *p, uint64_t now)
{
    while (!gw_list_empty(&p->pending) && !gw_list_empty(&p->lru)) {
        gw_req *r = gw_container_of(p->pending.next, gw_req, link);
        gw_list_del(&r->link);
        p->npending--;
        if (dispatch(p, r, now) != 0) {
            if (p->nworkers == 0) {
                r->state = GW_REQ_IDLE; /* not in pending any more */
                gw_list_del(&r->age);
                rhash_del(p, r);
                r->fail_status = 503;
                r->fail_reason = GW_UNAVAIL_NO_WORKER;
                GW_INC(p->stats.unavailable[GW_UNAVAIL_NO_WORKER]);
                r->state = GW_REQ_FAILING;
                gw_list_add_tail(&p->failing, &r->link);
            } else {
                gw_list_add_head(&p->pending, &r->link);
                p->npending++;
            }
            break;
        }
    }
    GW_SET(p->stats.pending, p->npending);
}

/* ---- public -------------------------------------------------------------- */

int gw_pool_init(gw_pool *p, const gw_pool_ops *ops, void *ud, uint64_t timeout_ms,
                 size_t max_pending, size_t max_requests)
{
    memset(p, 0, sizeof *p);
    p->ops = ops;
    p->ud = ud;
    p->timeout_ms = timeout_ms;
    p->max_pending = max_pending;
    gw_list_init(&p->workers);
    gw_list_init(&p->lru);
    gw_list_init(&p->pending);
    gw_list_init(&p->by_age);
    gw_list_init(&p->failing);
    size_t n = gw_table_size(max_requests, (size_t)1 << 24);
    p->rhash = calloc(n, sizeof *p->rhash);
    if (!p->rhash)
        return -ENOMEM;
    p->rmask = n - 1;
    vtn_buf_init(&p->scratch, (size_t)1 << 30);
    return 0;
}

void gw_pool_free(gw_pool *p)
{
    while (!gw_list_empty(&p->workers)) {
        gw_worker *w = gw_container_of(p->workers.next, gw_worker, all);
        gw_list_del(&w->all);
        free(w);
    }
    free(p->rhash);
    p->rhash = NULL;
    vtn_buf_free(&p->scratch);
}

int gw_pool_submit(gw_pool *p, gw_req *r, uint64_t now)
{
    r->attempt = 0;
    r->worker = NULL;
    r->hnext = NULL;
    gw_list_init(&r->link);
    gw_list_init(&r->age);
    if (p->nworkers == 0) {
        r->fail_reason = GW_UNAVAIL_NO_WORKER;
        GW_INC(p->stats.unavailable[GW_UNAVAIL_NO_WORKER]);
        return 503;
    }
    int queue = !gw_list_empty(&p->pending) || gw_list_empty(&p->lru);
    if (queue && p->npending >= p->max_pending) {
        r->fail_reason = GW_UNAVAIL_QUEUE_FULL;
        GW_INC(p->stats.unavailable[GW_UNAVAIL_QUEUE_FULL]);
        return 503;
    }
    r->deadline = now + p->timeout_ms;
    rhash_add(p, r);
    gw_list_add_tail(&p->by_age, &r->age);
    if (queue || dispatch(p, r, now) != 0) {
        if (p->nworkers == 0) {
            gw_list_del(&r->age);
            rhash_del(p, r);
            r->state = GW_REQ_IDLE;
            r->fail_reason = GW_UNAVAIL_NO_WORKER;
            GW_INC(p->stats.unavailable[GW_UNAVAIL_NO_WORKER]);
            flush_failing(p);
            return 503;
        }
        req_pend(p, r, 0);
    }
    pump(p, now);
    flush_failing(p);
    return 0;
}

void gw_pool_cancel(gw_pool *p, gw_req *r)
{
    /* An in-flight request keeps its worker's credit until the worker
     * answers (outstanding stays counted); the answer is then dropped. */
    req_detach(p, r);
}

static gw_worker *worker_new(gw_pool *p, const uint8_t *ident, size_t n, uint64_t now)
{
    if (p->nworkers >= GW_MAX_WORKERS || n == 0 || n > GW_MAX_IDENT)
        return NULL;
    gw_worker *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    memcpy(w->ident, ident, n);
    w->ident_len = (uint8_t)n;
    w->last_seen = now;
    w->last_sent = now;
    gw_list_init(&w->lru);
    gw_list_init(&w->inflight);
    gw_list_add_tail(&p->workers, &w->all);
    uint32_t b = ident_hash(ident, n) % GW_WORKER_HASH;
    w->hnext = p->whash[b];
    p->whash[b] = w;
    p->nworkers++;
    GW_SET(p->stats.live_workers, p->nworkers);
    return w;
}

static void on_ready(gw_pool *p, gw_worker *w, const uint8_t *ident, size_t ident_len,
                     const void *frame, size_t n, uint64_t now)
{
    vtn_ready rd;
    if (vtn_wire_decode_ready(frame, n, &rd)) {
        GW_INC(p->stats.protocol_errors);
        return;
    }
    int fresh = 0;
    if (!w) {
        w = worker_new(p, ident, ident_len, now);
        if (!w) {
            vtn_warn("worker_refused", "reason=%s",
                     p->nworkers >= GW_MAX_WORKERS ? "too_many" : "bad_identity");
            return;
        }
        fresh = 1;
    } else {
        /* A new session from the same identity: what it had is gone. */
        worker_requeue(p, w, now, 1);
    }
    size_t nl = rd.name.n < sizeof w->name - 1 ? rd.name.n : sizeof w->name - 1;
    for (size_t i = 0; i < nl; i++) {
        char c = rd.name.p[i];
        w->name[i] = (c > ' ' && c < 127 && c != '"' && c != '\\') ? c : '_';
    }
    w->name[nl] = 0;
    if (!nl)
        strcpy(w->name, "unnamed");
    w->credits = rd.credits > GW_MAX_CREDITS ? GW_MAX_CREDITS : rd.credits;
    w->outstanding = 0;
    w->last_seen = now;
    gw_list_del(&w->lru);
    if (w->credits)
        gw_list_add_tail(&p->lru, &w->lru);
    vtn_info("worker_ready", "worker=%s credits=%u new=%d live=%zu", w->name, (unsigned)w->credits,
             fresh, p->nworkers);
}

/* DISCONNECT to a worker we declared dead or never met, so it starts over
 * with READY. */
static void send_disconnect(gw_pool *p, const uint8_t *ident, size_t ident_len)
{
    if (!ident_len || ident_len > GW_MAX_IDENT)
        return;
    vtn_buf_reset(&p->scratch);
    if (vtn_wire_encode_empty(&p->scratch, VTN_WIRE_DISCONNECT) == 0)
        (void)p->ops->send(p->ud, ident, ident_len, p->scratch.data, p->scratch.len);
}

void gw_pool_on_message(gw_pool *p, const uint8_t *ident, size_t ident_len, const void *frame,
                        size_t n, uint64_t now)
{
    int type = vtn_wire_type_of(frame, n);
    if (type < 0) {
        GW_INC(p->stats.protocol_errors);
        return;
    }
    gw_worker *w = worker_find(p, ident, ident_len);
    gw_req *r = NULL;
    vtn_reply rep = {0};
    switch (type) {
    case VTN_WIRE_READY:
        on_ready(p, w, ident, ident_len, frame, n, now);
        break;
    case VTN_WIRE_HEARTBEAT:
        if (w) {
            w->last_seen = now;
            break;
        }
        /* A worker we declared dead (or never met): make it start over. */
        send_disconnect(p, ident, ident_len);
        break;
    case VTN_WIRE_REPLY:
        if (vtn_wire_decode_reply(frame, n, &rep)) {
            GW_INC(p->stats.protocol_errors);
            break;
        }
        if (w) {
            w->last_seen = now;
            if (w->outstanding) {
                w->outstanding--;
                if (w->credits++ == 0)
                    gw_list_add_tail(&p->lru, &w->lru);
            }
        } else {
            send_disconnect(p, ident, ident_len);
        }
        /* A late answer from the first worker after a retry still answers
         * the request; whichever comes second is dropped. */
        r = rhash_find(p, rep.id);
        if (r)
            req_detach(p, r);
        else
            GW_INC(p->stats.dropped_replies);
        break;
    case VTN_WIRE_DISCONNECT:
        if (w)
            worker_dead(p, w, now, DEATH_DISCONNECT);
        break;
    case VTN_WIRE_REQUEST: /* only the gateway sends requests */
        GW_INC(p->stats.protocol_errors);
        break;
    default:
        /* A type this gateway does not know (or has no use for yet, PUSH) is
         * a frame from a newer worker: ignored, as vtn/wire.h's upgrade rules
         * say, so gateways and workers can be upgraded one at a time. */
        GW_INC(p->stats.unknown_frames);
        vtn_debug("worker_frame_ignored", "worker=%s type=%d minor=%d", w ? w->name : "unknown",
                  type, vtn_wire_minor_of(frame, n));
        break;
    }
    pump(p, now);
    flush_failing(p);
    if (r)
        p->ops->done(p->ud, r, &rep);
}

/* HEARTBEAT to every worker due one; a worker ZeroMQ no longer knows dies. */
static void send_heartbeats(gw_pool *p, uint64_t now)
{
    for (gw_list *it = p->workers.next, *next; it != &p->workers; it = next) {
        next = it->next;
        gw_worker *w = gw_container_of(it, gw_worker, all);
        if (now < w->last_sent + VTN_HEARTBEAT_MS)
            continue;
        w->last_sent = now;
        if (send_empty(p, w, VTN_WIRE_HEARTBEAT) == -EHOSTUNREACH)
            worker_dead(p, w, now, DEATH_UNREACHABLE);
    }
}

void gw_pool_heartbeat(gw_pool *p, uint64_t now)
{
    send_heartbeats(p, now);
    pump(p, now);
    flush_failing(p);
}

void gw_pool_loop_stalled(gw_pool *p, uint64_t lag_ms, uint64_t now)
{
    GW_INC(p->stats.loop_stalls);
    if (lag_ms > GW_GET(p->stats.loop_lag_max_ms))
        GW_SET(p->stats.loop_lag_max_ms, lag_ms);
    for (gw_list *it = p->workers.next; it != &p->workers; it = it->next) {
        gw_worker *w = gw_container_of(it, gw_worker, all);
        w->last_seen = w->last_seen + lag_ms < now ? w->last_seen + lag_ms : now;
    }
    /* The workers' heartbeats and replies of the stall are still unread
     * (libuv runs timers before it polls): one tick of grace lets them in
     * before a deadline or a failed send is held against anyone. Not two
     * in a row, so a loop late on every turn still enforces deadlines. */
    p->stall_grace = !p->stall_graced;
}

void gw_pool_tick(gw_pool *p, uint64_t now)
{
    const uint64_t dead_after = (uint64_t)VTN_HEARTBEAT_MS * VTN_HEARTBEAT_LIVENESS;
    p->stall_graced = p->stall_grace;
    p->stall_grace = 0;
    if (p->stall_graced)
        return;
    for (gw_list *it = p->workers.next, *next; it != &p->workers; it = next) {
        next = it->next;
        gw_worker *w = gw_container_of(it, gw_worker, all);
        if (now > w->last_seen + dead_after)
            worker_dead(p, w, now, DEATH_SILENT);
    }
    send_heartbeats(p, now);
    /* by_age is in deadline order: every request gets the same timeout and
     * a retry keeps its place. */
    while (!gw_list_empty(&p->by_age)) {
        gw_req *r = gw_container_of(p->by_age.next, gw_req, age);
        if (r->deadline > now)
            break;
        if (r->state == GW_REQ_INFLIGHT)
            req_fail(p, r, 504, 0);
        else
            req_fail(p, r, 503, GW_UNAVAIL_DEADLINE);
    }
    pump(p, now);
    flush_failing(p);
}

void gw_pool_disconnect_all(gw_pool *p)
{
    for (gw_list *it = p->workers.next; it != &p->workers; it = it->next)
        (void)send_empty(p, gw_container_of(it, gw_worker, all), VTN_WIRE_DISCONNECT);
}
