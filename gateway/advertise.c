/* Worker discovery: a helper thread with its own hiredis connection keeps
 * this gateway's ZeroMQ endpoint in the ZSET vtn:gateways, scored with an
 * expiry 5 s ahead, refreshed every second; workers connect to every member
 * whose score is in the future (and prune members long expired, see
 * docs/redis-keys.md). The thread ZREMs its own member on clean shutdown. Redis being down or
 * refusing the write (a full Redis answers -OOM) is logged at the start of the outage, again
 * every ADVERT_REMIND attempts with the count, and on recovery; never fatal: the gateway
 * keeps serving, and workers keep a gateway they hear from although its advert expired.
 *
 * Failover: an I/O error or a READONLY answer (the server became a replica) drops the
 * connection, and the next attempt connects again, through the sentinels when they are
 * configured. With sentinels the thread also waits on a +switch-master subscription, so a
 * failover the sentinels announce moves the advert at once. The libuv loop's only Redis
 * client is push mode's (push.c), which never blocks the loop. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gw_internal.h"
#include "vtn/heartbeat.h"
#include "vtn/log.h"
#include "vtn/redis.h"
#include "vtn/time.h"

#define ADVERT_EVERY_MS 1000
#define ADVERT_REMIND 60 /* failed attempts between two advertise_failed lines: a minute */

struct gw_advert {
    pthread_t thread;
    int wake[2]; /* gw_advert_stop writes a byte: the thread's poll returns */
    vtn_redis_target target;
    vtn_redis_watch *watch; /* +switch-master; NULL without sentinels */
    char endpoint[256];
    unsigned long failures; /* failed attempts in the current outage (advert thread only) */
    const gw_metrics *m;    /* the heartbeat's counters (the loop's, read relaxed) */
    const gw_pool_stats *ps;
    vtn_heartbeat hb;
};

/* The gateway's entry in vtn:procs: its requests, those to OadrPoll, the
 * answers of 500 and up, the requests a worker has now. Best effort: a
 * failure shows in the next advert. */
static void beat(gw_advert *a, redisContext *ctx, long long now)
{
    if (!a->m || !vtn_heartbeat_due(&a->hb, now))
        return;
    vtn_heartbeat_counts c = {0, 0, 0, 0};
    for (int r = 0; r < GW_ROUTE_COUNT; r++)
        for (int st = 0; st < GW_STATUS_MAX; st++) {
            uint64_t n = atomic_load_explicit(&a->m->requests[r][st], memory_order_relaxed);
            c.requests += n;
            c.polls += r == GW_ROUTE_POLL ? n : 0;
            c.errors += st >= 500 ? n : 0;
        }
    c.in_flight = (long)atomic_load_explicit(&a->ps->inflight, memory_order_relaxed);
    (void)vtn_heartbeat_send(ctx, &a->hb, now, &c);
}

/* Logs a failed attempt: the first of an outage, then every ADVERT_REMIND. */
static void advert_failed(gw_advert *a, const char *why, size_t len)
{
    if (a->failures++ % ADVERT_REMIND == 0) {
        char q[300];
        vtn_warn("advertise_failed", "endpoint=%s failures=%lu error=%s", a->endpoint, a->failures,
                 vtn_log_quote(q, sizeof q, why, len));
    }
}

static void drop(redisContext **ctx)
{
    redisFree(*ctx); /* after an error a hiredis context cannot be reused */
    *ctx = NULL;
}

static int advertise(gw_advert *a, redisContext **ctx, int *failing)
{
    char err[1024];
    if (!*ctx) {
        *ctx = vtn_redis_connect(&a->target, 1000, err, sizeof err);
        if (!*ctx) {
            advert_failed(a, err, strlen(err));
            *failing = 1;
            return -EIO;
        }
    }
    long long now = (long long)vtn_now_ms();
    redisReply *r = redisCommand(*ctx, "ZADD %s %lld %s", VTN_KEY_GATEWAYS,
                                 now + VTN_TTL_GATEWAY_MS, a->endpoint);
    if (!r) {
        advert_failed(a, (*ctx)->errstr, strlen((*ctx)->errstr));
        *failing = 1;
        drop(ctx);
        return -EIO;
    }
    int refused = r->type == REDIS_REPLY_ERROR; /* e.g. -OOM: Redis is at maxmemory */
    if (refused)
        advert_failed(a, r->str, r->len);
    if (vtn_redis_is_readonly(r))
        drop(ctx); /* a replica now: find the primary on the next attempt */
    freeReplyObject(r);
    if (refused) {
        *failing = 1;
        return -EIO;
    }
    if (*failing)
        vtn_info("advertise_ok", "endpoint=%s key=%s failed_attempts=%lu", a->endpoint,
                 VTN_KEY_GATEWAYS, a->failures);
    a->failures = 0;
    *failing = 0;
    beat(a, *ctx, now);
    return 0;
}

/* Waits ADVERT_EVERY_MS. 1 when stopped; 0 otherwise, after dropping ctx
 * when the sentinels announced a failover (the advert then goes at once to
 * the new primary, not after the old one's timeout). */
static int wait_next(gw_advert *a, redisContext **ctx)
{
    long long now = (long long)vtn_now_ms(), end = now + ADVERT_EVERY_MS;
    while (now < end) {
        struct pollfd p[2] = {{.fd = a->wake[0], .events = POLLIN},
                              {.fd = vtn_redis_watch_fd(a->watch, now), .events = POLLIN}};
        int n = poll(p, p[1].fd >= 0 ? 2 : 1, (int)(end - now));
        if (n > 0 && p[0].revents)
            return 1;
        if (n > 0 && p[1].revents && vtn_redis_watch_read(a->watch, (long long)vtn_now_ms())) {
            if (*ctx)
                drop(ctx);
            return 0;
        }
        now = (long long)vtn_now_ms();
    }
    return 0;
}

static void *advert_main(void *arg)
{
    gw_advert *a = arg;
    redisContext *ctx = NULL;
    int failing = -1; /* -1: first round, so the first success is logged */
    do
        (void)advertise(a, &ctx, &failing);
    while (!wait_next(a, &ctx));
    char err[1024];
    if (!ctx)
        ctx = vtn_redis_connect(&a->target, 1000, err, sizeof err);
    if (ctx) {
        redisReply *r = redisCommand(ctx, "ZREM %s %s", VTN_KEY_GATEWAYS, a->endpoint);
        if (r)
            freeReplyObject(r);
        redisFree(ctx);
        vtn_info("advertise_removed", "endpoint=%s", a->endpoint);
    }
    return NULL;
}

int gw_advert_wanted(const gw_config *cfg)
{
    return (cfg->redis_url && *cfg->redis_url) || (cfg->redis_sentinels && *cfg->redis_sentinels);
}

static void advert_free(gw_advert *a)
{
    vtn_redis_watch_free(&a->watch);
    close(a->wake[0]);
    close(a->wake[1]);
    free(a);
}

int gw_advert_start(const gw_config *cfg, const char *endpoint, const gw_metrics *m,
                    const gw_pool_stats *ps, gw_advert **out, char *err, size_t errlen)
{
    *out = NULL;
    gw_advert *a = calloc(1, sizeof *a);
    if (!a)
        return -ENOMEM;
    if (vtn_redis_target_init(&a->target, cfg->redis_url, cfg->redis_sentinels,
                              cfg->redis_sentinel_master, cfg->redis_sentinel_password, err,
                              errlen) < 0 ||
        strlen(endpoint) >= sizeof a->endpoint) {
        if (strlen(endpoint) >= sizeof a->endpoint)
            snprintf(err, errlen, "advertised endpoint longer than %zu bytes",
                     sizeof a->endpoint - 1);
        free(a);
        return -EINVAL;
    }
    strcpy(a->endpoint, endpoint);
    a->m = m;
    a->ps = ps;
    vtn_heartbeat_init(&a->hb, "gateway", endpoint, vtn_now_ms());
    if (pipe2(a->wake, O_CLOEXEC) < 0) {
        int e = errno;
        free(a);
        return -e;
    }
    a->watch = vtn_redis_watch_new(&a->target);
    int rc = pthread_create(&a->thread, NULL, advert_main, a);
    if (rc != 0) {
        advert_free(a);
        return -rc;
    }
    *out = a;
    return 0;
}

void gw_advert_stop(gw_advert **pa)
{
    gw_advert *a = *pa;
    if (!a)
        return;
    char b = 1;
    while (write(a->wake[1], &b, 1) < 0 && errno == EINTR) {
    }
    pthread_join(a->thread, NULL);
    advert_free(a);
    *pa = NULL;
}
