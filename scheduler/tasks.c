/* The scheduler's task table. Each task is idempotent: running it twice, or
 * on a leader that has just been deposed, changes nothing a second time. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "sc_internal.h"
#include "vtn/redis.h"
#include "vtn/scripts.h"

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

/* Participation shards unlinked per command: a bounded command whatever
 * VTN_EVENT_VENS_SHARDS is. */
#define SC_UNLINK_BATCH 128

/* One ended event's keys, and its members of the event lists, in one
 * MULTI: no reader sees the event half removed, and evsent or evopt (which
 * write a shard only while the record exists) cannot bring a shard back. */
static int expire_event(redisContext *c, const char *id)
{
    char k[VTN_KEY_MAX];
    char(*shards)[VTN_KEY_MAX] = malloc(SC_UNLINK_BATCH * sizeof *shards);
    const char *argv[1 + SC_UNLINK_BATCH];
    if (shards == NULL)
        return -ENOMEM;
    int n = 0;
    redisAppendCommand(c, "MULTI");
    redisAppendCommand(c, "DEL %s", vtn_key_build(k, VTN_KEY_EVENT, id, NULL));
    redisAppendCommand(c, "ZREM %s %s", VTN_KEY_EVENTS, id);
    redisAppendCommand(c, "ZREM %s %s", VTN_KEY_EVENTSEND, id);
    redisAppendCommand(c, "ZREM %s %s", VTN_KEY_EVENTSDUE, id);
    n += 5;
    argv[0] = "UNLINK";
    for (unsigned s = 0; s < VTN_EVENT_VENS_SHARDS; s += SC_UNLINK_BATCH) {
        int argc = 1;
        for (unsigned i = s; i < s + SC_UNLINK_BATCH && i < VTN_EVENT_VENS_SHARDS; i++)
            argv[argc++] = vtn_key_eventvens(shards[i - s], id, i);
        redisAppendCommandArgv(c, argc, argv, NULL);
        n++;
    }
    free(shards);
    redisAppendCommand(c, "EXEC");
    n++;
    int rc = 0;
    for (int i = 0; i < n; i++) {
        redisReply *r = NULL;
        if (redisGetReply(c, (void **)&r) != REDIS_OK || r == NULL)
            return -EIO;
        if (r->type == REDIS_REPLY_ERROR || (i == n - 1 && r->type != REDIS_REPLY_ARRAY))
            rc = -EPROTO;
        for (size_t j = 0; r->type == REDIS_REPLY_ARRAY && j < r->elements; j++)
            if (r->element[j]->type == REDIS_REPLY_ERROR)
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

/* Events whose next status transition (near, start or end) is due in
 * vtn:events:due, VTN_EVENTS_DUE_BATCH per run: the evdue script moves each
 * to its next transition (or out of the index) and bumps vtn:events:ver
 * once for the batch, so every VEN's next poll computes its set again and
 * gets the current eventStatus, or the event gone at its end. A constant
 * number of writes whatever the number of VENs. Safe to repeat: an event
 * moved on is no longer due, and a deposed leader's last run at most bumps
 * the version once more. Runs on every tick: its lag is at most one tick
 * when the batch keeps up. */
static int event_transitions(redisContext *c, uint64_t epoch, int64_t now_ms);

sc_task sc_tasks[] = {
    {.name = "prune_gateways", .interval_ms = 5000, .run = prune_gateways},
    {.name = "expire_events", .interval_ms = 1000, .run = expire_events},
    {.name = "event_transitions", .interval_ms = 0, .run = event_transitions},
};

/* The oldest due item's lateness, ms, as the task's lag gauges show it. */
static void note_lag(sc_task *t, long long due, const redisReply *score)
{
    long long lag = score ? due - atoll(score->str) : 0;
    t->stats.lag_ms = lag > 0 ? (uint64_t)lag : 0;
    if (t->stats.lag_ms > t->stats.lag_max_ms)
        t->stats.lag_max_ms = t->stats.lag_ms;
}

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
    note_lag(self, due, r->elements >= 2 ? r->element[1] : NULL); /* the oldest first */
    for (size_t i = 0; i + 1 < r->elements && rc == 0; i += 2) {
        rc = expire_event(c, r->element[i]->str);
        n += rc == 0;
    }
    freeReplyObject(r);
    return rc < 0 ? rc : n;
}
static char evdue_sha[VTN_SCRIPT_SHA_SIZE];

static int event_transitions(redisContext *c, uint64_t epoch, int64_t now_ms)
{
    (void)epoch;
    sc_task *self = &sc_tasks[2];
    redisReply *r = redisCommand(c, "ZRANGEBYSCORE %s -inf %lld WITHSCORES LIMIT 0 %d",
                                 VTN_KEY_EVENTSDUE, (long long)now_ms, VTN_EVENTS_DUE_BATCH);
    if (r == NULL)
        return -EIO;
    if (r->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(r);
        return -EPROTO;
    }
    size_t n = r->elements / 2;
    note_lag(self, now_ms, n ? r->element[1] : NULL);
    if (n == 0) {
        freeReplyObject(r);
        return 0;
    }
    /* KEYS: the index, the version, each event's record; ARGV: now, the ids. */
    char now[24];
    snprintf(now, sizeof now, "%lld", (long long)now_ms);
    const char **argv = calloc(2 * n + 3, sizeof *argv);
    char(*keys)[VTN_KEY_MAX] = calloc(n, sizeof *keys);
    int rc = -ENOMEM;
    if (argv && keys) {
        argv[0] = VTN_KEY_EVENTSDUE;
        argv[1] = VTN_KEY_EVENTSVER;
        argv[n + 2] = now;
        for (size_t i = 0; i < n; i++) {
            argv[i + 2] = vtn_key_build(keys[i], VTN_KEY_EVENT, r->element[2 * i]->str, NULL);
            argv[n + 3 + i] = r->element[2 * i]->str;
        }
        redisReply *done =
            vtn_script_eval(c, "evdue", evdue_sha, (int)n + 2, (int)(2 * n + 3), argv);
        if (done == NULL)
            rc = -EIO;
        else
            rc = done->type == REDIS_REPLY_INTEGER ? (int)done->integer : -EPROTO;
        if (done)
            freeReplyObject(done);
    }
    free(argv);
    free(keys);
    freeReplyObject(r);
    return rc;
}

const int sc_ntasks = sizeof sc_tasks / sizeof sc_tasks[0];
