/* The worker's Redis connection: one blocking hiredis context used for
 * pipelined batches and a few synchronous commands between batches. After
 * any I/O error, timeout or READONLY answer (a failover made the server a
 * replica) the context is freed ("cannot be reused") and a new one is made
 * with exponential back-off, asking the sentinels again where they are
 * configured; meanwhile requests that need Redis are answered 503 with
 * Retry-After, so nothing waits on a dead server. With sentinels, the loop
 * also polls a +switch-master subscription, so a failover announced by the
 * sentinels moves the worker at once, before any error. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "vtn/log.h"
#include "vtn/scripts.h"
#include "vtn/time.h"
#include "wk_internal.h"

#define WK_REDIS_BACKOFF_MIN_MS 100
#define WK_REDIS_BACKOFF_MAX_MS 5000

int wk_redis_init(wk_redis *r, const wk_config *cfg, wk_metrics *m, char *err, size_t errlen)
{
    memset(r, 0, sizeof *r);
    int rc = vtn_redis_target_init(&r->target, cfg->redis_url, cfg->redis_sentinels,
                                   cfg->redis_sentinel_master, cfg->redis_sentinel_password, err,
                                   errlen);
    if (rc < 0)
        return rc;
    r->timeout_ms = (int)cfg->redis_timeout_ms;
    r->backoff_ms = WK_REDIS_BACKOFF_MIN_MS;
    r->m = m;
    r->watch = vtn_redis_watch_new(&r->target);
    return 0;
}

void wk_redis_free(wk_redis *r)
{
    wk_redis_close(r);
    vtn_redis_watch_free(&r->watch);
}

int wk_redis_watch_fd(wk_redis *r, int64_t now_ms)
{
    return vtn_redis_watch_fd(r->watch, now_ms);
}

void wk_redis_watch_read(wk_redis *r, int64_t now_ms)
{
    if (vtn_redis_watch_read(r->watch, now_ms) != 1)
        return;
    if (r->c)
        wk_redis_fail(r, "+switch-master: the sentinels name a new primary");
    r->backoff_ms = WK_REDIS_BACKOFF_MIN_MS;
    r->next_attempt_ms = now_ms; /* the sentinels know the new primary already */
}

void wk_redis_close(wk_redis *r)
{
    if (r->c) {
        redisFree(r->c);
        r->c = NULL;
    }
    atomic_store_explicit(&r->m->redis_up, 0, memory_order_relaxed);
}

void wk_redis_fail(wk_redis *r, const char *why)
{
    atomic_fetch_add_explicit(&r->m->redis_errors, 1, memory_order_relaxed);
    if (r->c) {
        char q[256];
        vtn_error("redis_down", "err=%s backoff_ms=%d",
                  vtn_log_quote(q, sizeof q, why, strlen(why)), r->backoff_ms);
    }
    wk_redis_close(r);
    /* Try again soon; maintain() doubles the back-off on each failed attempt. */
    r->next_attempt_ms = vtn_now_ms() + r->backoff_ms;
}

int wk_redis_load_scripts(wk_redis *r)
{
    for (int i = 0; i < WK_SCRIPT__COUNT; i++) {
        if (!r->c)
            return -ENOTCONN;
        char err[256];
        int rc = vtn_script_load(r->c, wk_script_name[i], r->sha[i], err, sizeof err);
        if (rc == -EIO) {
            wk_redis_fail(r, err);
            return -EIO;
        }
        if (rc < 0) {
            char q[300];
            vtn_error("redis_script", "script=%s err=%s", wk_script_name[i],
                      vtn_log_quote(q, sizeof q, err, strlen(err)));
            return -EPROTO;
        }
    }
    atomic_fetch_add_explicit(&r->m->redis_script_loads, 1, memory_order_relaxed);
    return 0;
}

void wk_redis_maintain(wk_redis *r, int64_t now_ms)
{
    if (r->c || now_ms < r->next_attempt_ms)
        return;
    char err[1024];
    redisContext *c = vtn_redis_connect(&r->target, r->timeout_ms, err, sizeof err);
    if (c == NULL) {
        char q[600];
        /* Log the first failure of a streak and then only when the back-off tops out, so a
         * long outage does not flood the log. */
        if (r->backoff_ms == WK_REDIS_BACKOFF_MIN_MS || r->backoff_ms == WK_REDIS_BACKOFF_MAX_MS)
            vtn_warn("redis_connect_failed", "host=%s port=%d err=%s next_ms=%d",
                     r->target.nsentinels ? "(sentinels)" : r->target.host, r->target.port,
                     vtn_log_quote(q, sizeof q, err, strlen(err)), r->backoff_ms);
        r->next_attempt_ms = now_ms + r->backoff_ms;
        r->backoff_ms *= 2;
        if (r->backoff_ms > WK_REDIS_BACKOFF_MAX_MS)
            r->backoff_ms = WK_REDIS_BACKOFF_MAX_MS;
        return;
    }
    r->c = c;
    if (wk_redis_load_scripts(r) < 0) {
        wk_redis_close(r);
        r->next_attempt_ms = now_ms + r->backoff_ms;
        return;
    }
    if (r->ever_connected)
        atomic_fetch_add_explicit(&r->m->redis_reconnects, 1, memory_order_relaxed);
    r->ever_connected = 1;
    r->backoff_ms = WK_REDIS_BACKOFF_MIN_MS;
    atomic_store_explicit(&r->m->redis_up, 1, memory_order_relaxed);
    char where[300];
    vtn_info("redis_connected", "at=%s db=%d scripts=%d via=%s",
             vtn_redis_where(c, where, sizeof where), r->target.db, WK_SCRIPT__COUNT,
             r->target.nsentinels ? "sentinels" : "url");
}

redisReply *wk_redis_sync(wk_redis *r, const char *fmt, ...)
{
    if (!r->c)
        return NULL;
    va_list ap;
    va_start(ap, fmt);
    redisReply *rep = redisvCommand(r->c, fmt, ap);
    va_end(ap);
    if (rep == NULL) {
        wk_redis_fail(r, r->c->errstr[0] ? r->c->errstr : "command failed");
    } else if (vtn_redis_is_readonly(rep)) {
        wk_redis_fail(r, rep->str);
        freeReplyObject(rep);
        rep = NULL;
    }
    return rep;
}
