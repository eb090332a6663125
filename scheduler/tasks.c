/* The scheduler's task table. Each task is idempotent: running it twice, or
 * on a leader that has just been deposed, changes nothing a second time. */
#include <errno.h>
#include <stdio.h>

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

sc_task sc_tasks[] = {
    {.name = "prune_gateways", .interval_ms = 5000, .run = prune_gateways},
};
const int sc_ntasks = sizeof sc_tasks / sizeof sc_tasks[0];
