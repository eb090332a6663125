/* Worker discovery: a helper thread with its own hiredis connection keeps
 * this gateway's ZeroMQ endpoint in the ZSET vtn:gateways, scored with an
 * expiry 5 s ahead, refreshed every second; workers connect to every member
 * whose score is in the future (and prune members long expired, see
 * docs/redis-keys.md). The thread ZREMs its own member on clean shutdown. Redis being down or
 * refusing the write (a full Redis answers -OOM) is logged at the start of the outage, again
 * every ADVERT_REMIND attempts with the count, and on recovery; never fatal: the gateway
 * keeps serving, and workers keep a gateway they hear from although its advert expired. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gw_internal.h"
#include "vtn/log.h"
#include "vtn/redis.h"
#include "vtn/time.h"

#define ADVERT_EVERY_MS 1000
#define ADVERT_REMIND 60 /* failed attempts between two advertise_failed lines: a minute */

struct gw_advert {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;
    vtn_redis_target target;
    char endpoint[256];
    unsigned long failures; /* failed attempts in the current outage (advert thread only) */
};

/* Logs a failed attempt: the first of an outage, then every ADVERT_REMIND. */
static void advert_failed(gw_advert *a, const char *why, size_t len)
{
    if (a->failures++ % ADVERT_REMIND == 0) {
        char q[300];
        vtn_warn("advertise_failed", "endpoint=%s failures=%lu error=%s", a->endpoint, a->failures,
                 vtn_log_quote(q, sizeof q, why, len));
    }
}

static int advertise(gw_advert *a, redisContext **ctx, int *failing)
{
    char err[256];
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
        redisFree(*ctx); /* after an error a hiredis context cannot be reused */
        *ctx = NULL;
        return -EIO;
    }
    int refused = r->type == REDIS_REPLY_ERROR; /* e.g. -OOM: Redis is at maxmemory */
    if (refused)
        advert_failed(a, r->str, r->len);
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
    return 0;
}

static void *advert_main(void *arg)
{
    gw_advert *a = arg;
    redisContext *ctx = NULL;
    int failing = -1; /* -1: first round, so the first success is logged */
    pthread_mutex_lock(&a->mu);
    while (!a->stop) {
        pthread_mutex_unlock(&a->mu);
        (void)advertise(a, &ctx, &failing);
        pthread_mutex_lock(&a->mu);
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_nsec += (long)ADVERT_EVERY_MS * 1000000L;
        until.tv_sec += until.tv_nsec / 1000000000L;
        until.tv_nsec %= 1000000000L;
        while (!a->stop && pthread_cond_timedwait(&a->cv, &a->mu, &until) != ETIMEDOUT) {
        }
    }
    pthread_mutex_unlock(&a->mu);
    char err[256];
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

int gw_advert_start(const char *redis_url, const char *endpoint, gw_advert **out)
{
    *out = NULL;
    gw_advert *a = calloc(1, sizeof *a);
    if (!a)
        return -ENOMEM;
    if (vtn_redis_url_parse(redis_url, &a->target) != 0 || strlen(endpoint) >= sizeof a->endpoint) {
        free(a);
        return -EINVAL;
    }
    strcpy(a->endpoint, endpoint);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&a->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&a->mu, NULL);
    int rc = pthread_create(&a->thread, NULL, advert_main, a);
    if (rc != 0) {
        pthread_cond_destroy(&a->cv);
        pthread_mutex_destroy(&a->mu);
        free(a);
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
    pthread_mutex_lock(&a->mu);
    a->stop = 1;
    pthread_cond_signal(&a->cv);
    pthread_mutex_unlock(&a->mu);
    pthread_join(a->thread, NULL);
    pthread_cond_destroy(&a->cv);
    pthread_mutex_destroy(&a->mu);
    free(a);
    *pa = NULL;
}
