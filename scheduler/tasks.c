/* The scheduler's task table. Each task is idempotent: running it twice, or
 * on a leader that has just been deposed, changes nothing a second time. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sc_internal.h"
#include "vtn/log.h"
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

/* Report requests the API made for a future time whose sendAt is due in
 * vtn:reports:send, VTN_REPORTS_SEND_BATCH per run: the repdue script
 * queues each one's oadrCreateReport for the VEN's next poll (the venq `Q`
 * entry an immediate request gets). Each is first put in the overdue
 * check index, then sent, then taken out of the send index: a run cut
 * short anywhere is finished by the next one, and the script queues a
 * request once (it records queuedAt). */
static int report_requests(redisContext *c, uint64_t epoch, int64_t now_ms);

/* Report requests whose next look is due in vtn:reports:check,
 * VTN_REPORTS_CHECK_BATCH per run: one not overdue goes back at its
 * deadline; one overdue is added to vtn:reports:overdue, then marked in
 * its record, and looked at again one back-interval later; one no longer
 * watched (gone, cancelled, completed) leaves both indexes. The overdue
 * set is written before the record, and an update (worker) writes the
 * record before removing it from the set, so every interleaving ends with
 * the two agreeing. Reads the set's size for the gauge on every run. */
static int report_overdue(redisContext *c, uint64_t epoch, int64_t now_ms);

sc_task sc_tasks[] = {
    {.name = "prune_gateways", .interval_ms = 5000, .run = prune_gateways},
    {.name = "expire_events", .interval_ms = 1000, .run = expire_events},
    {.name = "event_transitions", .interval_ms = 0, .run = event_transitions},
    {.name = "report_requests", .interval_ms = 0, .run = report_requests},
    {.name = "report_overdue", .interval_ms = 0, .run = report_overdue},
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

long long sc_report_overdue_factor = 3;
sc_report_stats sc_reports;
static char repdue_sha[VTN_SCRIPT_SHA_SIZE];

/* One command whose reply only says it ran: 0 or <0. */
static int sc_cmd(redisContext *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    if (r == NULL)
        return -EIO;
    int rc = r->type == REDIS_REPLY_ERROR ? -EPROTO : 0;
    freeReplyObject(r);
    return rc;
}

/* A repdue answer: its verdict and the numbers after it. */
typedef struct due_answer {
    char verdict[16];
    long long at, back; /* a time (deadline, sendAt) and a back-interval, ms */
} due_answer;

/* Runs repdue op on the request named by member "<venID>|<reportRequestID>".
 * 0 with the answer, -EINVAL for a member that names no request (the
 * caller drops it), -EIO or -EPROTO. */
static int repdue(redisContext *c, const char *op, const char *member, int64_t now_ms,
                  due_answer *a)
{
    const char *bar = strchr(member, VTN_QUEUE_SEP);
    char ven[VTN_KEY_MAX], k[3][VTN_KEY_MAX], now[24], factor[24];
    if (bar == NULL || bar == member || (size_t)(bar - member) >= sizeof ven || !bar[1])
        return -EINVAL;
    memcpy(ven, member, (size_t)(bar - member));
    ven[bar - member] = '\0';
    snprintf(now, sizeof now, "%lld", (long long)now_ms);
    snprintf(factor, sizeof factor, "%lld", sc_report_overdue_factor);
    int send = strcmp(op, "send") == 0;
    const char *argv[7];
    int nk = 0;
    if (send) {
        argv[nk++] = vtn_key_build(k[0], VTN_KEY_VEN, ven, NULL);
        argv[nk++] = vtn_key_build(k[1], VTN_KEY_VENRR, ven, NULL);
        argv[nk++] = vtn_key_build(k[2], VTN_KEY_VENQ, ven, NULL);
    } else {
        argv[nk++] = vtn_key_build(k[0], VTN_KEY_VENRR, ven, NULL);
    }
    int argc = nk;
    argv[argc++] = op;
    argv[argc++] = bar + 1;
    argv[argc++] = now;
    if (!send)
        argv[argc++] = factor;
    redisReply *r = vtn_script_eval(c, "repdue", repdue_sha, nk, argc, argv);
    if (r == NULL)
        return -EIO;
    int rc = -EPROTO;
    memset(a, 0, sizeof *a);
    if (r->type == REDIS_REPLY_ARRAY && r->elements >= 1 &&
        r->element[0]->type == REDIS_REPLY_STRING) {
        snprintf(a->verdict, sizeof a->verdict, "%s", r->element[0]->str);
        if (r->elements >= 2 && r->element[1]->type == REDIS_REPLY_INTEGER)
            a->at = r->element[1]->integer;
        if (r->elements >= 3 && r->element[2]->type == REDIS_REPLY_INTEGER)
            a->back = r->element[2]->integer;
        rc = 0;
    } else if (r->type == REDIS_REPLY_ERROR) {
        vtn_warn("task", "script=repdue op=%s member=%s err=\"%s\"", op, member, r->str);
    }
    freeReplyObject(r);
    return rc;
}

/* One due member of an index: 1 when the task acted on it (counted), 0
 * when not, -EINVAL for a member that names no request, or <0. */
typedef int (*sc_due_fn)(redisContext *c, const char *member, int64_t now_ms);

/* Runs fn on the due members of index key, at most batch, oldest first,
 * with the task's lag noted. A member that names no request leaves the
 * index; one whose script failed (a record it cannot read) comes back
 * VTN_REPORTS_RETRY_MS later, so it does not hold the others up. Returns
 * the members fn acted on, or <0 (the caller's run stops there). */
static int each_due(redisContext *c, sc_task *self, const char *key, int batch, int64_t now_ms,
                    sc_due_fn fn)
{
    redisReply *r = redisCommand(c, "ZRANGEBYSCORE %s -inf %lld WITHSCORES LIMIT 0 %d", key,
                                 (long long)now_ms, batch);
    if (r == NULL)
        return -EIO;
    if (r->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(r);
        return -EPROTO;
    }
    note_lag(self, now_ms, r->elements >= 2 ? r->element[1] : NULL);
    int n = 0, rc = 0;
    for (size_t i = 0; i + 1 < r->elements && rc >= 0; i += 2) {
        const char *m = r->element[i]->str;
        rc = fn(c, m, now_ms);
        if (rc == -EINVAL)
            rc = sc_cmd(c, "ZREM %s %s", key, m);
        else if (rc == -EPROTO && !c->err)
            rc = sc_cmd(c, "ZADD %s XX %lld %s", key, (long long)now_ms + VTN_REPORTS_RETRY_MS, m);
        else if (rc > 0)
            n++;
    }
    freeReplyObject(r);
    return rc < 0 ? rc : n;
}

static int send_one(redisContext *c, const char *m, int64_t now_ms)
{
    const char *send = VTN_KEY_REPORTS_SEND;
    due_answer a;
    /* Watched from now on (a request not sent after all leaves at its first check). */
    int rc = sc_cmd(c, "ZADD %s NX %lld %s", VTN_KEY_REPORTS_CHECK, (long long)now_ms, m);
    if (rc == 0)
        rc = repdue(c, "send", m, now_ms, &a);
    if (rc < 0)
        return rc;
    if (strcmp(a.verdict, "later") == 0)
        return sc_cmd(c, "ZADD %s XX %lld %s", send, a.at, m);
    if (strcmp(a.verdict, "409q") == 0) {
        vtn_warn("report_send", "member=%s msg=\"queue full, retrying\" retry_ms=%d", m,
                 VTN_REPORTS_RETRY_MS);
        return sc_cmd(c, "ZADD %s XX %lld %s", send, (long long)now_ms + VTN_REPORTS_RETRY_MS, m);
    }
    int sent = strcmp(a.verdict, "sent") == 0;
    if (sent)
        vtn_info("report_send", "member=%s msg=\"oadrCreateReport queued\"", m);
    rc = sc_cmd(c, "ZREM %s %s", send, m); /* sent, done or gone */
    return rc < 0 ? rc : sent;
}

static int report_requests(redisContext *c, uint64_t epoch, int64_t now_ms)
{
    (void)epoch;
    return each_due(c, &sc_tasks[3], VTN_KEY_REPORTS_SEND, VTN_REPORTS_SEND_BATCH, now_ms,
                    send_one);
}

/* After a check: where the request goes in the two indexes. */
static int overdue_apply(redisContext *c, const char *m, const due_answer *a, int64_t now_ms)
{
    const char *check = VTN_KEY_REPORTS_CHECK, *overdue = VTN_KEY_REPORTS_OVERDUE;
    if (strcmp(a->verdict, "ok") == 0) {
        int rc = sc_cmd(c, "ZREM %s %s", overdue, m);
        return rc < 0 ? rc : sc_cmd(c, "ZADD %s %lld %s", check, a->at, m);
    }
    if (strcmp(a->verdict, "late") == 0 || strcmp(a->verdict, "marked") == 0)
        return sc_cmd(c, "ZADD %s %lld %s", check, (long long)now_ms + a->back, m);
    int rc = sc_cmd(c, "ZREM %s %s", overdue, m); /* drop */
    return rc < 0 ? rc : sc_cmd(c, "ZREM %s %s", check, m);
}

static int check_one(redisContext *c, const char *m, int64_t now_ms)
{
    due_answer a;
    int rc = repdue(c, "check", m, now_ms, &a);
    if (rc == 0 && strcmp(a.verdict, "late") == 0) {
        /* The set first, then the record: see report_overdue. */
        rc = sc_cmd(c, "ZADD %s NX %lld %s", VTN_KEY_REPORTS_OVERDUE, a.at, m);
        if (rc == 0)
            rc = repdue(c, "mark", m, now_ms, &a);
        if (rc == 0 && strcmp(a.verdict, "marked") == 0) {
            sc_reports.marked++;
            vtn_info("report_overdue", "member=%s deadline=%lld", m, a.at);
        }
    }
    if (rc < 0)
        return rc;
    rc = overdue_apply(c, m, &a, now_ms);
    return rc < 0 ? rc : 1;
}

static int report_overdue(redisContext *c, uint64_t epoch, int64_t now_ms)
{
    (void)epoch;
    int n = each_due(c, &sc_tasks[4], VTN_KEY_REPORTS_CHECK, VTN_REPORTS_CHECK_BATCH, now_ms,
                     check_one);
    if (n < 0)
        return n;
    redisReply *z = redisCommand(c, "ZCARD %s", VTN_KEY_REPORTS_OVERDUE);
    if (z == NULL)
        return -EIO;
    if (z->type == REDIS_REPLY_INTEGER)
        sc_reports.overdue = (uint64_t)z->integer;
    freeReplyObject(z);
    return n;
}

const int sc_ntasks = sizeof sc_tasks / sizeof sc_tasks[0];
