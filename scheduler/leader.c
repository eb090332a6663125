#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sc_internal.h"
#include "vtn/log.h"
#include "vtn/scripts.h"
#include "vtn/time.h"

/* The lease scripts (common/lua/leader_*.lua), loaded on first use and
 * again after a NOSCRIPT by vtn_script_eval. */
static char acquire_sha[VTN_SCRIPT_SHA_SIZE], release_sha[VTN_SCRIPT_SHA_SIZE];

int sc_leader_step(sc_leader *l, redisContext *c)
{
    char lease[24];
    snprintf(lease, sizeof lease, "%lld", l->lease_ms);
    const char *argv[] = {SC_LEADER_KEY, SC_EPOCH_KEY, l->instance, lease};
    redisReply *r = vtn_script_eval(c, "leader_acquire", acquire_sha, 2, 4, argv);
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
    const char *argv[] = {SC_LEADER_KEY, val};
    redisReply *r = vtn_script_eval(c, "leader_release", release_sha, 1, 2, argv);
    if (r)
        freeReplyObject(r);
    vtn_info("leader", "epoch=%llu msg=\"released leadership\"", (unsigned long long)l->epoch);
    l->epoch = 0;
}
