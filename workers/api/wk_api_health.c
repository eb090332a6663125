/* GET /api/v1/health: Redis' memory, keys and replication, the scheduler's
 * leader, every process' heartbeat (vtn:procs, vtn/heartbeat.h) and the
 * fleet's totals, in one round; a second round removes the heartbeats
 * older than VTN_PROC_PRUNE_MS when there are any. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vtn/time.h"
#include "wk_api_internal.h"

#define HEALTH_PRUNE_MAX 100 /* stale heartbeats removed by one request */

enum health_stage { HEALTH_START = 0, HEALTH_READ, HEALTH_PRUNED };

typedef struct health_state {
    enum health_stage stage;
    wk_rh memory, replication, keys, procs, leader, epoch, online, vens;
    json_t *body; /* owned: the answer, sent after the prune */
} health_state;

static void health_fini(void *st)
{
    health_state *s = st;
    json_decref(s->body);
    s->body = NULL;
}

/* "name:value" of an INFO reply's line, as an integer (-1 when absent). */
static long long info_int(const redisReply *r, const char *name)
{
    char tag[64];
    snprintf(tag, sizeof tag, "\n%s:", name);
    if (r == NULL || r->type != REDIS_REPLY_STRING)
        return -1;
    const char *p = strstr(r->str, tag);
    return p ? atoll(p + strlen(tag)) : -1;
}

static json_t *info_str(const redisReply *r, const char *name)
{
    char tag[64];
    snprintf(tag, sizeof tag, "\n%s:", name);
    if (r == NULL || r->type != REDIS_REPLY_STRING)
        return json_null();
    const char *p = strstr(r->str, tag);
    if (p == NULL)
        return json_null();
    p += strlen(tag);
    size_t n = strcspn(p, "\r\n");
    return json_stringn(p, n);
}

static json_t *ms_time(json_t *ms)
{
    char ts[40];
    return json_is_integer(ms) ? json_string(vtn_time_format(json_integer_value(ms), ts, sizeof ts))
                               : json_null();
}

static int by_role_id(const void *a, const void *b)
{
    json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    int c = strcmp(json_string_value(json_object_get(x, "role")),
                   json_string_value(json_object_get(y, "role")));
    return c ? c
             : strcmp(json_string_value(json_object_get(x, "id")),
                      json_string_value(json_object_get(y, "id")));
}

/* The heartbeats as the API shows them, sorted by role and id, with the
 * totals of the live ones; stale fields (older than the prune age) go into
 * prune. */
static json_t *processes(const redisReply *h, int64_t now, json_t *totals, json_t *prune)
{
    json_t *list = json_array();
    double polls = 0, reqs = 0, errs = 0;
    for (size_t i = 0; list && h && h->type == REDIS_REPLY_ARRAY && i + 1 < h->elements; i += 2) {
        const redisReply *f = h->element[i], *v = h->element[i + 1];
        json_t *e = v->type == REDIS_REPLY_STRING ? json_loadb(v->str, v->len, 0, NULL) : NULL;
        json_int_t seen = json_integer_value(json_object_get(e, "lastSeen"));
        json_int_t every = json_integer_value(json_object_get(e, "interval"));
        if (!json_is_object(e) || !json_is_string(json_object_get(e, "role")) ||
            !json_is_string(json_object_get(e, "id")) || now - seen > VTN_PROC_PRUNE_MS) {
            if (f->type == REDIS_REPLY_STRING && json_array_size(prune) < HEALTH_PRUNE_MAX)
                json_array_append_new(prune, json_stringn(f->str, f->len));
            json_decref(e);
            continue;
        }
        if (every <= 0)
            every = VTN_PROC_HEARTBEAT_MS;
        int alive = now - seen < VTN_PROC_DEAD_BEATS * every;
        const char *role = json_string_value(json_object_get(e, "role"));
        double p = json_number_value(json_object_get(e, "pollsPerSecond"));
        double r = json_number_value(json_object_get(e, "requestsPerSecond"));
        double x = json_number_value(json_object_get(e, "errorsPerSecond"));
        if (alive && strcmp(role, "worker") == 0)
            polls += p, reqs += r; /* each request is a worker's once; gateways see them too */
        if (alive)
            errs += x;
        json_object_set_new(e, "startedAt", ms_time(json_object_get(e, "startedAt")));
        json_object_set_new(e, "lastSeen", ms_time(json_object_get(e, "lastSeen")));
        json_object_set_new(e, "alive", json_boolean(alive));
        json_object_del(e, "interval");
        json_array_append_new(list, e);
    }
    wk__api_sort_json(list, by_role_id); /* so the answer reads the same every time */
    json_object_set_new(totals, "pollsPerSecond", json_real(polls));
    json_object_set_new(totals, "requestsPerSecond", json_real(reqs));
    json_object_set_new(totals, "errorsPerSecond", json_real(errs));
    return list;
}

static void api_health(wk_req *q, void *st)
{
    health_state *s = st;
    char now_s[24], ts[40];
    int64_t now = vtn_now_ms();
    switch (s->stage) {
    case HEALTH_START: {
        snprintf(now_s, sizeof now_s, "%lld", (long long)now);
        int bad = (s->memory = wk_cmd(q, "INFO", "memory", NULL)) < 0;
        bad |= (s->replication = wk_cmd(q, "INFO", "replication", NULL)) < 0;
        bad |= (s->keys = wk_cmd(q, "DBSIZE", NULL)) < 0;
        bad |= (s->procs = wk_cmd(q, "HGETALL", VTN_KEY_PROCS, NULL)) < 0;
        bad |= (s->leader = wk_cmd(q, "GET", VTN_KEY_SCHED_LEADER, NULL)) < 0;
        bad |= (s->epoch = wk_cmd(q, "GET", VTN_KEY_SCHED_EPOCH, NULL)) < 0;
        bad |= (s->online = wk_cmd(q, "ZCOUNT", VTN_KEY_VENSONLINE, now_s, "+inf", NULL)) < 0;
        bad |= (s->vens = wk_cmd(q, "ZCARD", VTN_KEY_VENS, NULL)) < 0;
        if (bad)
            wk_reply_no_room(q);
        s->stage = HEALTH_READ;
        return;
    }
    case HEALTH_READ: {
        const redisReply *mem = wk_rep(q, s->memory), *rep = wk_rep(q, s->replication);
        char lead[200] = "", epoch[24] = "";
        wk_rep_str(wk_rep(q, s->leader), lead, sizeof lead);
        wk_rep_str(wk_rep(q, s->epoch), epoch, sizeof epoch);
        /* The lease's value is "<epoch> <instance>". */
        char *sp = strchr(lead, ' ');
        json_t *leader = sp && sp[1] ? json_string(sp + 1) : json_null();
        long long term = sp ? atoll(lead) : atoll(epoch);
        json_t *totals = json_object(), *prune = json_array();
        json_t *procs = totals && prune ? processes(wk_rep(q, s->procs), now, totals, prune) : NULL;
        long long maxmem = info_int(mem, "maxmemory");
        s->body =
            procs == NULL
                ? NULL
                : json_pack("{s:s, s:{s:I, s:I, s:I, s:o, s:I}, s:{s:o, s:o}, s:o, s:o}",
                            "generatedAt", vtn_time_format(now, ts, sizeof ts), "redis",
                            "usedMemory", (json_int_t)info_int(mem, "used_memory"), "maxMemory",
                            (json_int_t)(maxmem < 0 ? 0 : maxmem), "keys",
                            (json_int_t)wk_rep_int(q, s->keys, 0), "role", info_str(rep, "role"),
                            "connectedReplicas", (json_int_t)info_int(rep, "connected_slaves"),
                            "scheduler", "leader", leader, "term",
                            term > 0 ? json_integer(term) : json_null(), "processes", procs,
                            "totals", json_incref(totals));
        if (s->body == NULL) {
            json_decref(totals);
            json_decref(prune);
            wk_reply_internal(q, "out of memory");
            return;
        }
        json_object_set_new(totals, "vens", json_integer(wk_rep_int(q, s->vens, 0)));
        json_object_set_new(totals, "vensOnline", json_integer(wk_rep_int(q, s->online, 0)));
        json_decref(totals);
        s->stage = HEALTH_PRUNED;
        size_t n = json_array_size(prune);
        if (n) { /* gone for an hour: nobody will come back under that name */
            const char *argv[2 + HEALTH_PRUNE_MAX] = {"HDEL", VTN_KEY_PROCS};
            for (size_t i = 0; i < n; i++)
                argv[2 + i] = json_string_value(json_array_get(prune, i));
            wk_rh h = wk_cmd_argv(q, (int)n + 2, argv, NULL);
            json_decref(prune);
            if (h < 0)
                wk_reply_no_room(q);
            return;
        }
        json_decref(prune);
        api_health(q, st);
        return;
    }
    case HEALTH_PRUNED: {
        json_t *b = s->body;
        s->body = NULL;
        wk_reply_json(q, 200, b);
        return;
    }
    }
}

const wk_handler wk__api_health =
    WK_HANDLER("api.health", health_state, NULL, health_fini, api_health);
