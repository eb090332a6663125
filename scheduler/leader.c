#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sc_internal.h"
#include "vtn/log.h"
#include "vtn/time.h"

/* Take the lease if free, with a new epoch, or renew it if it is ours.
 * Returns the epoch when we hold the lease, 0 otherwise. One script, so the
 * check and the write cannot interleave with a rival's.
 *
 * A new epoch is max(INCR of the counter, Redis' clock in ms): the counter
 * alone would restart at 1 after Redis lost its data, and a task that
 * fences its writes with the epoch would then let a deposed leader's
 * writes win. Taken from the clock, an epoch is about the ms of its
 * takeover, so it keeps growing across a data loss as long as Redis' clock
 * does not step back past the last takeover (docs/architecture.md). */
static const char *acquire_lua =
    "local cur = redis.call('GET', KEYS[1])\n"
    "if cur then\n"
    "  local e, who = string.match(cur, '^(%d+) (.+)$')\n"
    "  if who == ARGV[1] then\n"
    "    redis.call('PEXPIRE', KEYS[1], ARGV[2])\n"
    "    return tonumber(e)\n"
    "  end\n"
    "  return 0\n"
    "end\n"
    "local e = redis.call('INCR', KEYS[2])\n"
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "if now > e then\n"
    "  e = now\n"
    "  redis.call('SET', KEYS[2], string.format('%.0f', e))\n"
    "end\n"
    "redis.call('SET', KEYS[1], string.format('%.0f', e) .. ' ' .. ARGV[1], 'PX', ARGV[2])\n"
    "return e\n";

static const char *release_lua = "local cur = redis.call('GET', KEYS[1])\n"
                                 "if cur and cur == ARGV[1] then\n"
                                 "  return redis.call('DEL', KEYS[1])\n"
                                 "end\n"
                                 "return 0\n";

int sc_leader_step(sc_leader *l, redisContext *c)
{
    redisReply *r = redisCommand(c, "EVAL %s 2 %s %s %s %lld", acquire_lua, SC_LEADER_KEY,
                                 SC_EPOCH_KEY, l->instance, l->lease_ms);
    if (r == NULL) {
        l->epoch = 0;
        return -EIO;
    }
    int rc;
    if (r->type == REDIS_REPLY_INTEGER) {
        uint64_t e = (uint64_t)r->integer;
        if (e && e != l->epoch)
            vtn_info("leader", "epoch=%llu instance=%s msg=\"took leadership\"",
                     (unsigned long long)e, l->instance);
        else if (!e && l->epoch)
            vtn_warn("leader", "epoch=%llu instance=%s msg=\"lost leadership\"",
                     (unsigned long long)l->epoch, l->instance);
        l->epoch = e;
        if (e)
            l->renewed_ms = (int64_t)(vtn_mono_ns() / 1000000);
        rc = e ? 1 : 0;
    } else {
        vtn_error("leader", "msg=\"unexpected reply\" type=%d err=\"%s\"", r->type,
                  r->type == REDIS_REPLY_ERROR ? r->str : "");
        l->epoch = 0;
        rc = -EPROTO;
    }
    freeReplyObject(r);
    return rc;
}

void sc_leader_release(sc_leader *l, redisContext *c)
{
    if (l->epoch == 0 || c == NULL)
        return;
    char val[128];
    snprintf(val, sizeof val, "%llu %s", (unsigned long long)l->epoch, l->instance);
    redisReply *r = redisCommand(c, "EVAL %s 1 %s %s", release_lua, SC_LEADER_KEY, val);
    if (r)
        freeReplyObject(r);
    vtn_info("leader", "epoch=%llu msg=\"released leadership\"", (unsigned long long)l->epoch);
    l->epoch = 0;
}
