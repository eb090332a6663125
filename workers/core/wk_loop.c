/* The worker's loop: one DEALER per gateway (vtn/wire.h), heartbeats and
 * liveness, gateway discovery through Redis, and the requests in flight.
 *
 * Each turn takes what has arrived into free request slots (round-robin,
 * one message per gateway per pass so no gateway starves another; at most
 * WK_TAKE_MAX per turn), starts them, runs ONE pipelined Redis round for
 * every request that has commands queued, resumes those whose slow work is
 * done, and sends each reply the moment its request is finished: a poll
 * never waits behind a five-round registration or a key generation. The
 * work of a turn is bounded, and heartbeats are also sent between the
 * requests a turn starts, so a gateway never hears silence from a busy
 * worker. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vtn/hex.h"
#include "vtn/log.h"
#include "vtn/time.h"
#include "vtn/heartbeat.h"
#include "wk_internal.h"

#define WK_POLL_MS 100            /* loop wake-up when idle: timers are checked every pass */
#define WK_GW_BACKOFF_MIN_MS 1000 /* first re-connect after a silent gateway */
#define WK_GW_BACKOFF_MAX_MS 16000
#define WK_DISCOVERY_MS 1000
#define WK_TRIM_MS 10000
#define WK_DRAIN_QUIET_MS 200 /* draining ends after this long without a request */
#define WK_TAKE_MAX 64        /* requests taken per turn: bounded work between timers */
#define WK_HB_CHECK_MS 200    /* heartbeat check between the requests a turn starts */
#define WK_LOOP_STALL_MS 500  /* a pass this much past WK_POLL_MS: the loop itself stalled */
#define WK_STALL_LOG_MS 10000 /* one loop_stall line at most this often */

static int gw_live_count(const wk_worker *w)
{
    int n = 0;
    for (int i = 0; i < WK_MAX_GATEWAYS; i++)
        if (w->gw[i].used && w->gw[i].sock && w->gw[i].alive)
            n++;
    return n;
}

static void gw_update_gauges(wk_worker *w)
{
    int known = 0;
    for (int i = 0; i < WK_MAX_GATEWAYS; i++)
        if (w->gw[i].used)
            known++;
    atomic_store_explicit(&w->m.gateways_known, known, memory_order_relaxed);
    atomic_store_explicit(&w->m.gateways_live, gw_live_count(w), memory_order_relaxed);
}

static int gw_send(wk_worker *w, wk_gateway *g, int64_t now)
{
    if (!g->sock)
        return -ENOTCONN;
    /* DONTWAIT: a gateway that does not read must never block the loop; its frames are
     * dropped at the high-water mark and its liveness runs out. */
    if (zmq_send(g->sock, w->out.data, w->out.len, ZMQ_DONTWAIT) < 0)
        return -errno;
    g->last_send_ms = now;
    return 0;
}

static void gw_send_empty(wk_worker *w, wk_gateway *g, int type, int64_t now)
{
    vtn_buf_reset(&w->out);
    if (vtn_wire_encode_empty(&w->out, type) == 0)
        (void)gw_send(w, g, now);
}

static void gw_close_socket(wk_worker *w, wk_gateway *g, int say_disconnect, int linger_ms)
{
    if (!g->sock)
        return;
    if (say_disconnect)
        gw_send_empty(w, g, VTN_WIRE_DISCONNECT, vtn_now_ms());
    zmq_setsockopt(g->sock, ZMQ_LINGER, &linger_ms, sizeof linger_ms);
    zmq_close(g->sock);
    g->sock = NULL;
    g->alive = 0;
}

/* A new socket and a new session: the gateway sees a new worker identity,
 * so requests of the old session can never be answered on the new one. */
static void gw_open(wk_worker *w, wk_gateway *g, int64_t now)
{
    gw_close_socket(w, g, 0, 0);
    g->gen++;
    g->alive = 0;
    g->last_recv_ms = now;
    g->silent_since_ms = now;
    void *s = zmq_socket(w->zctx, ZMQ_DEALER);
    if (s == NULL) {
        vtn_error("gateway_socket", "endpoint=%s err=\"%s\"", g->endpoint, zmq_strerror(errno));
        return;
    }
    int zero = 0, ivl = 100, ivl_max = 1000;
    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(s, ZMQ_RECONNECT_IVL, &ivl, sizeof ivl);
    zmq_setsockopt(s, ZMQ_RECONNECT_IVL_MAX, &ivl_max, sizeof ivl_max);
    if (zmq_connect(s, g->endpoint) < 0) {
        vtn_error("gateway_connect", "endpoint=%s err=\"%s\"", g->endpoint, zmq_strerror(errno));
        zmq_close(s);
        return;
    }
    g->sock = s;
    /* READY is queued until the TCP connection is up (ZMQ_IMMEDIATE is off), so a gateway
     * that starts later still gets it. */
    vtn_ready rd = {(uint32_t)w->cfg.credits, vtn_str_c(w->cfg.name)};
    vtn_buf_reset(&w->out);
    if (vtn_wire_encode_ready(&w->out, &rd) == 0)
        (void)gw_send(w, g, now);
    vtn_info("gateway_connect", "endpoint=%s credits=%lld session=%u", g->endpoint, w->cfg.credits,
             g->gen);
}

static wk_gateway *gw_add(wk_worker *w, const char *ep, size_t n, int64_t now)
{
    for (int i = 0; i < WK_MAX_GATEWAYS; i++) {
        wk_gateway *g = &w->gw[i];
        if (g->used && strlen(g->endpoint) == n && memcmp(g->endpoint, ep, n) == 0)
            return g;
    }
    for (int i = 0; i < WK_MAX_GATEWAYS; i++) {
        wk_gateway *g = &w->gw[i];
        if (g->used)
            continue;
        memset(g, 0, sizeof *g);
        g->used = 1;
        memcpy(g->endpoint, ep, n);
        g->endpoint[n] = '\0';
        g->backoff_ms = WK_GW_BACKOFF_MIN_MS;
        gw_open(w, g, now);
        return g;
    }
    vtn_warn("gateway_limit", "max=%d msg=\"ignoring further gateways\"", WK_MAX_GATEWAYS);
    return NULL;
}

/* True while g heartbeats: its session is up and it spoke within the liveness window. */
/* Heard from within the liveness window (VTN_HEARTBEAT_LIVENESS beats). */
static int gw_recent(const wk_gateway *g, int64_t now)
{
    return now - g->last_recv_ms <= (int64_t)VTN_HEARTBEAT_LIVENESS * VTN_HEARTBEAT_MS;
}

static int gw_heard(const wk_gateway *g, int64_t now)
{
    return g->sock && g->alive && gw_recent(g, now);
}

static void gw_remove(wk_worker *w, wk_gateway *g)
{
    vtn_info("gateway_drop", "endpoint=%s reason=\"no longer advertised and silent\"", g->endpoint);
    gw_close_socket(w, g, 1, 0);
    g->used = 0;
}

static int endpoint_ok(const char *p, size_t n)
{
    return n > 6 && n < WK_ENDPOINT_MAX &&
           (strncmp(p, "tcp://", 6) == 0 || strncmp(p, "ipc://", 6) == 0);
}

/* Re-reads vtn:gateways: connect to new live endpoints, drop vanished ones
 * that are also silent. A gateway we hear from stays although its advert
 * is gone: a full Redis refuses the advert's ZADD, and dropping a working
 * gateway for that would turn a storage problem into a full outage. While
 * Redis is down the current set is kept; liveness still applies. */
static void discover(wk_worker *w, int64_t now)
{
    redisReply *rep = wk_redis_sync(&w->redis, "ZRANGEBYSCORE %s %lld +inf LIMIT 0 %d",
                                    VTN_KEY_GATEWAYS, (long long)now, WK_MAX_GATEWAYS);
    if (rep == NULL)
        return;
    if (rep->type != REDIS_REPLY_ARRAY) {
        vtn_warn("discovery", "err=\"unexpected reply to ZRANGEBYSCORE %s\"", VTN_KEY_GATEWAYS);
        freeReplyObject(rep);
        return;
    }
    for (int i = 0; i < WK_MAX_GATEWAYS; i++)
        w->gw[i].seen = 0;
    for (size_t i = 0; i < rep->elements; i++) {
        redisReply *e = rep->element[i];
        if (e->type != REDIS_REPLY_STRING || !endpoint_ok(e->str, (size_t)e->len)) {
            vtn_debug("discovery_skip", "reason=\"not a tcp:// or ipc:// endpoint\"");
            continue;
        }
        wk_gateway *g = gw_add(w, e->str, (size_t)e->len, now);
        if (g)
            g->seen = 1;
    }
    freeReplyObject(rep);
    for (int i = 0; i < WK_MAX_GATEWAYS; i++)
        if (w->gw[i].used && !w->gw[i].seen && !gw_heard(&w->gw[i], now))
            gw_remove(w, &w->gw[i]);
    if (now >= w->next_trim_ms) {
        w->next_trim_ms = now + WK_TRIM_MS;
        redisReply *t = wk_redis_sync(&w->redis, "ZREMRANGEBYSCORE %s -inf %lld", VTN_KEY_GATEWAYS,
                                      (long long)(now - VTN_TTL_GATEWAY_TRIM_MS));
        if (t)
            freeReplyObject(t);
    }
}

/* This worker's entry in vtn:procs (vtn/heartbeat.h): its requests, polls
 * and server errors (code 500 and up) from the metrics' counters. */
static void heartbeat(wk_worker *w, int64_t now)
{
    if (w->redis.c == NULL || !vtn_heartbeat_due(&w->hb, now))
        return;
    vtn_heartbeat_counts c = {0, 0, 0, w->nbusy};
    for (int t = 0; t < WK_MT__COUNT; t++)
        for (int k = 0; k < WK_NCODES; k++) {
            uint64_t n = atomic_load_explicit(&w->m.requests[t][k], memory_order_relaxed);
            c.requests += n;
            c.polls += t == WK_MSG_POLL ? n : 0;
            c.errors += wk_metrics_code_of(k) >= 500 ? n : 0;
        }
    if (vtn_heartbeat_send(w->redis.c, &w->hb, now, &c) == -EIO)
        wk_redis_fail(&w->redis, "heartbeat: no reply");
}

/* A pass that came WK_LOOP_STALL_MS after the idle wake-up means this loop
 * itself did not turn (slow work in a turn, a stopped process): what the
 * gateways sent meanwhile is still unread, so their silence during the stall
 * is ours, not theirs. Each gateway's silence is shortened by the stall
 * (the next pass reads what queued up); the stall is counted and logged at
 * most once per WK_STALL_LOG_MS. */
static void loop_check_lag(wk_worker *w, int64_t now)
{
    int64_t last = w->pass_ms;
    w->pass_ms = now;
    if (!last || now - last < WK_POLL_MS + WK_LOOP_STALL_MS)
        return;
    int64_t lag = now - last - WK_POLL_MS;
    for (int i = 0; i < WK_MAX_GATEWAYS; i++) {
        wk_gateway *g = &w->gw[i];
        if (g->used)
            g->last_recv_ms = g->last_recv_ms + lag < now ? g->last_recv_ms + lag : now;
    }
    atomic_fetch_add_explicit(&w->m.loop_stalls, 1, memory_order_relaxed);
    w->stalls_unlogged++;
    if ((uint64_t)lag > w->stall_lag_max)
        w->stall_lag_max = (uint64_t)lag;
    if (w->stall_logged_ms && now - w->stall_logged_ms < WK_STALL_LOG_MS)
        return;
    vtn_warn("loop_stall",
             "lag_ms=%lld stalls=%" PRIu64 " max_lag_ms=%" PRIu64
             " msg=\"this worker's own loop was late; gateway silence during it is not held "
             "against the gateway\"",
             (long long)lag, w->stalls_unlogged, w->stall_lag_max);
    w->stall_logged_ms = now;
    w->stalls_unlogged = 0;
    w->stall_lag_max = 0;
}

static void timers(wk_worker *w, int64_t now)
{
    loop_check_lag(w, now);
    wk_redis_watch_read(&w->redis, now);
    wk_redis_maintain(&w->redis, now);
    heartbeat(w, now);
    if (!w->static_gateways && now >= w->next_discovery_ms) {
        w->next_discovery_ms = now + WK_DISCOVERY_MS;
        discover(w, now);
    }
    for (int i = 0; i < WK_MAX_GATEWAYS; i++) {
        wk_gateway *g = &w->gw[i];
        if (!g->used)
            continue;
        if (!g->sock) {
            if (now >= g->next_reconnect_ms)
                gw_open(w, g, now);
            continue;
        }
        if (!gw_recent(g, now) && now >= g->next_reconnect_ms) {
            if (g->alive)
                vtn_warn("gateway_silent", "endpoint=%s silent_ms=%lld msg=\"reconnecting\"",
                         g->endpoint, (long long)(now - g->last_recv_ms));
            atomic_fetch_add_explicit(&w->m.gateway_reconnects, 1, memory_order_relaxed);
            gw_open(w, g, now);
            g->next_reconnect_ms = now + g->backoff_ms;
            g->backoff_ms *= 2;
            if (g->backoff_ms > WK_GW_BACKOFF_MAX_MS)
                g->backoff_ms = WK_GW_BACKOFF_MAX_MS;
            continue;
        }
        if (now - g->last_send_ms >= VTN_HEARTBEAT_MS)
            gw_send_empty(w, g, VTN_WIRE_HEARTBEAT, now);
    }
    gw_update_gauges(w);
    if (!w->ready_logged && w->redis.c && gw_live_count(w) > 0) {
        w->ready_logged = 1;
        vtn_info("ready", "name=%s gateways=%d", w->cfg.name, gw_live_count(w));
    }
}

/* ---- one batch ---- */

static void send_reply(wk_worker *w, wk_req *q, int64_t now)
{
    wk_gateway *g = &w->gw[q->gw];
    uint64_t ns = vtn_mono_ns() - q->t0_ns;
    wk_metrics_request(&w->m, q->mtype, q->mcode, ns);
    if (vtn_log_enabled(VTN_LOG_DEBUG))
        vtn_debug("reply", "req=%s type=%s code=%d status=%d us=%" PRIu64, q->rid,
                  wk_metrics_type_label(q->mtype), q->mcode, q->status, ns / 1000);
    if (!g->used || !g->sock || g->gen != q->gw_gen) {
        /* The session it came on is gone; the gateway retries or answers 503. */
        atomic_fetch_add_explicit(&w->m.replies_lost, 1, memory_order_relaxed);
        return;
    }
    vtn_reply r = {.id = q->env.id,
                   .status = (uint16_t)q->status,
                   .content_type = vtn_str_c(q->ctype ? q->ctype : "text/plain"),
                   .headers = vtn_str_c(q->headers),
                   .body = {q->body.data ? q->body.data : "", (uint32_t)q->body.len}};
    vtn_buf_reset(&w->out);
    int rc = vtn_wire_encode_reply(&w->out, &r);
    if (rc == 0)
        rc = gw_send(w, g, now);
    if (q->wipe_body)
        OPENSSL_cleanse(w->out.data, w->out.len); /* a generated private key */
    if (rc < 0) {
        atomic_fetch_add_explicit(&w->m.replies_lost, 1, memory_order_relaxed);
        vtn_warn("reply_lost", "req=%s endpoint=%s err=%d", q->rid, g->endpoint, rc);
    }
}

static void release(wk_req *q)
{
    wk_worker *w = q->w;
    if (w)
        wk_budget_release(w, q);
    if (w && q->phase != WK_REQ_FREE)
        w->nbusy--;
    wk_req_reset(q);
    if (q->has_zmsg) {
        zmq_msg_close(&q->zmsg);
        q->has_zmsg = 0;
    }
}

/* Takes one frame from g into slot q. 1: q holds a request to run; 0: the frame was
 * something else (or dropped); -1: nothing to read. */
static int take(wk_worker *w, wk_gateway *g, int gi, wk_req *q, int64_t now)
{
    zmq_msg_init(&q->zmsg);
    if (zmq_msg_recv(&q->zmsg, g->sock, ZMQ_DONTWAIT) < 0) {
        int e = errno;
        zmq_msg_close(&q->zmsg);
        if (e != EAGAIN && e != EINTR)
            vtn_warn("gateway_recv", "endpoint=%s err=\"%s\"", g->endpoint, zmq_strerror(e));
        return -1;
    }
    q->has_zmsg = 1;
    g->last_recv_ms = now;
    if (!g->alive) {
        g->alive = 1;
        vtn_info("gateway_up", "endpoint=%s session=%u", g->endpoint, g->gen);
    }
    g->backoff_ms = WK_GW_BACKOFF_MIN_MS;
    g->next_reconnect_ms = 0;
    const void *data = zmq_msg_data(&q->zmsg);
    size_t len = zmq_msg_size(&q->zmsg);
    int more = zmq_msg_more(&q->zmsg);
    int type = vtn_wire_type_of(data, len);
    if (more || type < 0) {
        atomic_fetch_add_explicit(&w->m.bad_frames, 1, memory_order_relaxed);
        vtn_warn("bad_frame", "endpoint=%s bytes=%zu", g->endpoint, len);
        while (more) { /* discard the rest of a multi-part message */
            zmq_msg_t x;
            zmq_msg_init(&x);
            if (zmq_msg_recv(&x, g->sock, ZMQ_DONTWAIT) < 0) {
                zmq_msg_close(&x);
                break;
            }
            more = zmq_msg_more(&x);
            zmq_msg_close(&x);
        }
        release(q);
        return 0;
    }
    if (type == VTN_WIRE_HEARTBEAT) {
        release(q);
        return 0;
    }
    if (type == VTN_WIRE_DISCONNECT) {
        vtn_info("gateway_disconnect", "endpoint=%s", g->endpoint);
        release(q);
        /* Reconnect a little later with a new session so a restarted gateway at the same
         * endpoint gets our READY. */
        gw_close_socket(w, g, 0, 0);
        g->next_reconnect_ms = now + WK_GW_BACKOFF_MIN_MS;
        return 0;
    }
    if (type != VTN_WIRE_REQUEST) {
        /* A type this worker does not handle comes from a newer gateway (vtn/wire.h upgrade
         * rules): not an error, and the gateway stays live. */
        atomic_fetch_add_explicit(&w->m.frames_ignored, 1, memory_order_relaxed);
        vtn_debug("frame_ignored", "endpoint=%s type=%d bytes=%zu", g->endpoint, type, len);
        release(q);
        return 0;
    }
    if (vtn_wire_decode_request(data, len, &q->env) < 0) {
        atomic_fetch_add_explicit(&w->m.bad_frames, 1, memory_order_relaxed);
        vtn_warn("bad_frame", "endpoint=%s type=%d bytes=%zu", g->endpoint, type, len);
        release(q);
        return 0;
    }
    q->w = w;
    q->gw = gi;
    q->gw_gen = g->gen;
    q->t0_ns = vtn_mono_ns();
    q->phase = WK_REQ_RUNNING;
    w->nbusy++;
    vtn_hex_u64(q->env.id, q->rid);
    if (q->env.deadline_ms > 0 && q->env.deadline_ms < now) {
        /* The gateway has answered (or will answer) this one itself; doing the work now
         * would only delay the requests behind it. A reply still goes back so the
         * gateway gets its credit back. */
        atomic_fetch_add_explicit(&w->m.dropped_deadline, 1, memory_order_relaxed);
        vtn_warn("deadline_drop", "req=%s late_ms=%lld", q->rid,
                 (long long)(now - q->env.deadline_ms));
        static const char msg[] = "deadline passed before a worker took the request";
        q->mtype = WK_MT_OTHER;
        wk_reply(q, 504, "text/plain", msg, sizeof msg - 1);
        send_reply(w, q, now);
        release(q);
        return 0;
    }
    if (wk_budget_admit(w, q, len) < 0) {
        /* Answered 503 or 413: never parsed, nothing held. */
        send_reply(w, q, now);
        release(q);
        return 0;
    }
    return 1;
}

/* Heartbeats only: what a gateway must hear even while this turn is busy. */
static void heartbeats(wk_worker *w, int64_t now)
{
    for (int i = 0; i < WK_MAX_GATEWAYS; i++) {
        wk_gateway *g = &w->gw[i];
        if (g->used && g->sock && now - g->last_send_ms >= VTN_HEARTBEAT_MS)
            gw_send_empty(w, g, VTN_WIRE_HEARTBEAT, now);
    }
}

static wk_req *free_slot(wk_worker *w)
{
    for (int i = 0; i < WK_BATCH_MAX; i++)
        if (w->slots[i].phase == WK_REQ_FREE && !w->slots[i].has_zmsg)
            return &w->slots[i];
    return NULL;
}

/* Sends the reply of every finished request and frees its slot. */
static void flush_done(wk_worker *w)
{
    int64_t now = vtn_now_ms();
    for (int i = 0; i < WK_BATCH_MAX; i++) {
        wk_req *q = &w->slots[i];
        if (q->phase == WK_REQ_DONE) {
            send_reply(w, q, now);
            release(q);
        }
    }
}

/* Takes up to WK_TAKE_MAX new requests into free slots and starts them.
 * Returns how many. */
static int take_new(wk_worker *w)
{
    int n = 0;
    int64_t now = vtn_now_ms(), hb_at = now + WK_HB_CHECK_MS;
    for (int progress = 1; progress && n < WK_TAKE_MAX;) {
        progress = 0;
        for (int i = 0; i < WK_MAX_GATEWAYS && n < WK_TAKE_MAX; i++) {
            wk_gateway *g = &w->gw[i];
            if (!g->used || !g->sock)
                continue;
            wk_req *q = free_slot(w);
            if (q == NULL)
                return n; /* every slot in flight: the gateways' credits hold the rest */
            int rc = take(w, g, i, q, now);
            if (rc < 0)
                continue;
            progress = 1;
            if (rc == 0)
                continue;
            n++;
            wk_req_start(q);
            if (q->phase == WK_REQ_DONE) {
                send_reply(w, q, vtn_now_ms());
                release(q);
            }
            now = vtn_now_ms();
            if (now >= hb_at) { /* a slow start must not silence us */
                heartbeats(w, now);
                hb_at = now + WK_HB_CHECK_MS;
            }
        }
    }
    return n;
}

/* One turn: new requests, finished slow work, one Redis round, replies.
 * Returns the number of requests taken. */
static int turn(wk_worker *w)
{
    int n = take_new(w);
    if (n)
        wk_metrics_batch(&w->m, n);
    wk_slow_collect(w);
    flush_done(w);
    wk_req *run[WK_BATCH_MAX];
    int nrun = 0;
    for (int i = 0; i < WK_BATCH_MAX; i++)
        if (w->slots[i].phase == WK_REQ_RUNNING)
            run[nrun++] = &w->slots[i];
    if (nrun || w->nafter)
        wk_round(w, run, nrun);
    flush_done(w);
    return n;
}

/* True when a request has commands for the next round: the loop must not sleep. */
static int round_pending(const wk_worker *w)
{
    if (w->nafter)
        return 1;
    for (int i = 0; i < WK_BATCH_MAX; i++)
        if (w->slots[i].phase == WK_REQ_RUNNING && w->slots[i].ncmds > 0)
            return 1;
    return 0;
}

static int poll_gateways(wk_worker *w, int timeout_ms)
{
    zmq_pollitem_t items[WK_MAX_GATEWAYS + 2];
    int n = 0;
    if (wk_slow_fd(w) >= 0) /* a finished job wakes the loop */
        items[n++] = (zmq_pollitem_t){.socket = NULL, .fd = wk_slow_fd(w), .events = ZMQ_POLLIN};
    int watch = wk_redis_watch_fd(&w->redis, vtn_now_ms());
    if (watch >= 0) /* a sentinel announcing a failover wakes the loop */
        items[n++] = (zmq_pollitem_t){.socket = NULL, .fd = watch, .events = ZMQ_POLLIN};
    for (int i = 0; i < WK_MAX_GATEWAYS; i++) {
        if (w->gw[i].used && w->gw[i].sock) {
            items[n].socket = w->gw[i].sock;
            items[n].fd = 0;
            items[n].events = ZMQ_POLLIN;
            items[n].revents = 0;
            n++;
        }
    }
    if (n == 0) {
        usleep((useconds_t)timeout_ms * 1000);
        return 0;
    }
    if (round_pending(w))
        timeout_ms = 0;
    int rc = zmq_poll(items, n, timeout_ms);
    if (rc < 0 && errno != EINTR)
        vtn_warn("zmq_poll", "err=\"%s\"", zmq_strerror(errno));
    return rc;
}

/* ---- life cycle ---- */

int wk_worker_init(wk_worker *w, int policy, volatile sig_atomic_t *stop, char *err, size_t errlen)
{
    w->policy = policy;
    w->stop = stop;
    w->mem_budget = (size_t)w->cfg.memory;
    vtn_buf_init(&w->out, WK_REPLY_MAX + 65536);
    vtn_buf_init(&w->after, WK_CMD_BUF_MAX); /* WK_DETACHED_MAX short writes fit */
    if (wk_redis_init(&w->redis, &w->cfg, &w->m, err, errlen) < 0)
        return -EINVAL;
    w->codec = wk_codec_new();
    if (w->codec == NULL) {
        snprintf(err, errlen, "cannot create the XML codec (schemas not compiled?)");
        return -ENOMEM;
    }
    atomic_store_explicit(&w->m.schemas_ok, 1, memory_order_relaxed);
    w->slots = calloc(WK_BATCH_MAX, sizeof *w->slots);
    if (w->slots == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    for (int i = 0; i < WK_BATCH_MAX; i++) {
        vtn_buf_init(&w->slots[i].cmds, WK_CMD_BUF_MAX);
        vtn_buf_init(&w->slots[i].body, WK_REPLY_MAX);
        w->slots[i].w = w;
    }
    w->zctx = zmq_ctx_new();
    if (w->zctx == NULL) {
        snprintf(err, errlen, "zmq_ctx_new: %s", zmq_strerror(errno));
        return -ENOMEM;
    }
    int64_t now = vtn_now_ms();
    const char *list = w->cfg.gateways, *p;
    size_t len;
    while (vtn_cfg_list_next(&list, &p, &len)) {
        if (len && endpoint_ok(p, len)) {
            w->static_gateways = 1;
            gw_add(w, p, len, now);
        }
    }
    if (wk_slow_start(w, err, errlen) < 0)
        return -ENOMEM;
    vtn_heartbeat_init(&w->hb, "worker", w->cfg.name ? w->cfg.name : "worker", now);
    wk_redis_maintain(&w->redis, now);
    gw_update_gauges(w);
    return 0;
}

int wk_worker_run(wk_worker *w)
{
    vtn_info("start", "name=%s gateways=%s policy=%s credits=%lld", w->cfg.name,
             w->static_gateways ? "static" : "discovered",
             w->policy == WK_POLICY_OPEN ? "open" : "provisioned", w->cfg.credits);
    while (!*w->stop) {
        poll_gateways(w, WK_POLL_MS);
        if (*w->stop)
            break;
        turn(w);
        timers(w, vtn_now_ms());
    }
    /* Drain: tell every gateway we are going, then answer what is already on its way. */
    atomic_store_explicit(&w->m.draining, 1, memory_order_relaxed);
    if (w->ops)
        vtn_ops_set_draining(w->ops);
    int64_t now = vtn_now_ms();
    for (int i = 0; i < WK_MAX_GATEWAYS; i++)
        if (w->gw[i].used && w->gw[i].sock)
            gw_send_empty(w, &w->gw[i], VTN_WIRE_DISCONNECT, now);
    int64_t end = now + w->cfg.drain_ms, quiet_since = now;
    int answered = 0;
    while ((now = vtn_now_ms()) < end && (now - quiet_since < WK_DRAIN_QUIET_MS || w->nbusy > 0)) {
        poll_gateways(w, 20);
        int n = turn(w);
        answered += n;
        if (n || w->nbusy)
            quiet_since = vtn_now_ms();
        wk_redis_maintain(&w->redis, vtn_now_ms());
    }
    for (int i = 0; i < WK_MAX_GATEWAYS; i++)
        if (w->gw[i].used)
            gw_close_socket(w, &w->gw[i], 0, 1000); /* linger: let the last replies go out */
    vtn_info("stopped", "drained=%d", answered);
    return 0;
}

void wk_worker_free(wk_worker *w)
{
    for (int i = 0; i < WK_MAX_GATEWAYS; i++)
        if (w->gw[i].used)
            gw_close_socket(w, &w->gw[i], 0, 0);
    if (w->zctx) {
        zmq_ctx_term(w->zctx);
        w->zctx = NULL;
    }
    wk_slow_stop(w); /* before the slots its jobs point into */
    if (w->slots) {
        for (int i = 0; i < WK_BATCH_MAX; i++) {
            release(&w->slots[i]);
            free(w->slots[i].rep);
            vtn_buf_free(&w->slots[i].cmds);
            vtn_buf_free(&w->slots[i].body);
        }
        free(w->slots);
        w->slots = NULL;
    }
    wk_codec_free(&w->codec);
    wk_evcache_free(&w->evcache);
    wk_redis_free(&w->redis);
    vtn_buf_free(&w->out);
    vtn_buf_free(&w->after);
}
