/* The scheduler's task table. Each task is idempotent: running it twice, or
 * on a leader that has just been deposed, changes nothing a second time. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "sc_internal.h"
#include "vtn/redis.h"

/* Gateways advertise themselves in vtn:gateways with their expiry as score;
 * a gateway that died without ZREM stays listed until this prunes it.
 * Workers already skip expired members, so this only bounds the set. */
static int prune_gateways(redisContext *c, uint64_t epoch, int64_t now_ms)
{
    (void)epoch;
    redisReply *r =
        redisCommand(c, "ZREMRANGEBYSCORE %s -inf (%lld", VTN_KEY_GATEWAYS, (long long)now_ms);
    if (r == NULL)
        return -EIO;
    int rc = r->type == REDIS_REPLY_INTEGER ? (int)r->integer : -EPROTO;
    freeReplyObject(r);
    return rc;
}

long long sc_event_retention_ms = 7LL * 86400 * 1000;

/* One ended event's keys, and its members of the event lists. */
static int expire_event(redisContext *c, const char *id)
{
    char k1[VTN_KEY_MAX], k2[VTN_KEY_MAX];
    vtn_key_build(k1, VTN_KEY_EVENT, id, NULL);
    vtn_key_build(k2, VTN_KEY_EVENTVENS, id, NULL);
    redisAppendCommand(c, "DEL %s %s", k1, k2);
    redisAppendCommand(c, "ZREM %s %s", VTN_KEY_EVENTS, id);
    redisAppendCommand(c, "ZREM %s %s", VTN_KEY_EVENTSEND, id);
    int rc = 0;
    for (int i = 0; i < 3; i++) {
        redisReply *r = NULL;
        if (redisGetReply(c, (void **)&r) != REDIS_OK || r == NULL)
            return -EIO;
        if (r->type == REDIS_REPLY_ERROR)
            rc = -EPROTO;
        freeReplyObject(r);
    }
    return rc;
}

/* Events whose end is more than the retention ago (vtn:events:end) are
 * removed with what VENs answered, VTN_EVENTS_EXPIRE_BATCH per run. They
 * left every VEN's set when they ended (a poll drops ended events), so no
 * VEN needs telling and the version is not bumped. Safe to repeat: a
 * removed event is no longer listed. The lag metric says how far behind
 * its due time the oldest one was. */
static int expire_events(redisContext *c, uint64_t epoch, int64_t now_ms);

sc_task sc_tasks[] = {
    {.name = "prune_gateways", .interval_ms = 5000, .run = prune_gateways},
    {.name = "expire_events", .interval_ms = 1000, .run = expire_events},
};

static int expire_events(redisContext *c, uint64_t epoch, int64_t now_ms)
{
    (void)epoch;
    sc_task *self = &sc_tasks[1];
    long long due = (long long)now_ms - sc_event_retention_ms;
    redisReply *r = redisCommand(c, "ZRANGEBYSCORE %s -inf %lld WITHSCORES LIMIT 0 %d",
                                 VTN_KEY_EVENTSEND, due, VTN_EVENTS_EXPIRE_BATCH);
    if (r == NULL)
        return -EIO;
    if (r->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(r);
        return -EPROTO;
    }
    int n = 0, rc = 0;
    self->stats.lag_ms = 0;
    for (size_t i = 0; i + 1 < r->elements && rc == 0; i += 2) {
        if (i == 0) /* the oldest first */
            self->stats.lag_ms = (uint64_t)(due - atoll(r->element[1]->str));
        rc = expire_event(c, r->element[i]->str);
        n += rc == 0;
    }
    freeReplyObject(r);
    return rc < 0 ? rc : n;
}
const int sc_ntasks = sizeof sc_tasks / sizeof sc_tasks[0];
