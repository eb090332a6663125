/* Heartbeats of the processes into vtn:procs (vtn/heartbeat.h). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "vtn/heartbeat.h"
#include "vtn/keys.h"

void vtn_heartbeat_init(vtn_heartbeat *hb, const char *role, const char *id, int64_t now_ms)
{
    memset(hb, 0, sizeof *hb);
    snprintf(hb->role, sizeof hb->role, "%s", role);
    snprintf(hb->id, sizeof hb->id, "%s", id);
    if (gethostname(hb->host, sizeof hb->host) < 0)
        hb->host[0] = '\0';
    hb->host[sizeof hb->host - 1] = '\0';
    hb->pid = (long)getpid();
    hb->started_ms = now_ms;
}

int vtn_heartbeat_due(const vtn_heartbeat *hb, int64_t now_ms)
{
    return hb->last_ms == 0 || now_ms - hb->last_ms >= VTN_PROC_HEARTBEAT_MS;
}

/* s as the inside of a JSON string (ids and host names: printable ASCII in
 * practice; anything else escaped). */
static size_t json_chars(char *out, size_t outlen, const char *s)
{
    size_t o = 0;
    for (; *s && o + 7 < outlen; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            o += (size_t)snprintf(out + o, outlen - o, "\\%c", c);
        else if (c < 0x20 || c >= 0x7f)
            o += (size_t)snprintf(out + o, outlen - o, "\\u%04x", c);
        else
            out[o++] = (char)c;
    }
    out[o] = '\0';
    return o;
}

static double rate(uint64_t now, uint64_t before, int64_t ms)
{
    return ms > 0 && now >= before ? (double)(now - before) * 1000.0 / (double)ms : 0.0;
}

int vtn_heartbeat_render(vtn_heartbeat *hb, int64_t now_ms, const vtn_heartbeat_counts *c,
                         char *field, size_t fieldlen, char *value, size_t valuelen)
{
    char id[sizeof hb->id * 6], host[sizeof hb->host * 6];
    int64_t span = hb->last_ms ? now_ms - hb->last_ms : 0;
    json_chars(id, sizeof id, hb->id);
    json_chars(host, sizeof host, hb->host);
    int n = snprintf(field, fieldlen, "%s:%s", hb->role, hb->id);
    if (n < 0 || (size_t)n >= fieldlen)
        return -ENOBUFS;
    n = snprintf(value, valuelen,
                 "{\"role\":\"%s\",\"id\":\"%s\",\"host\":\"%s\",\"pid\":%ld,\"version\":\"%s\","
                 "\"startedAt\":%lld,\"lastSeen\":%lld,\"interval\":%d,"
                 "\"requestsPerSecond\":%.2f,\"pollsPerSecond\":%.2f,\"errorsPerSecond\":%.2f,"
                 "\"inFlight\":%ld}",
                 hb->role, id, host, hb->pid, VTN_VERSION, (long long)hb->started_ms,
                 (long long)now_ms, VTN_PROC_HEARTBEAT_MS,
                 rate(c->requests, hb->last_requests, span), rate(c->polls, hb->last_polls, span),
                 rate(c->errors, hb->last_errors, span), c->in_flight);
    if (n < 0 || (size_t)n >= valuelen)
        return -ENOBUFS;
    hb->last_ms = now_ms;
    hb->last_requests = c->requests;
    hb->last_polls = c->polls;
    hb->last_errors = c->errors;
    return 0;
}

int vtn_heartbeat_send(redisContext *c, vtn_heartbeat *hb, int64_t now_ms,
                       const vtn_heartbeat_counts *counts)
{
    char field[200], value[1400];
    if (vtn_heartbeat_render(hb, now_ms, counts, field, sizeof field, value, sizeof value) < 0)
        return -ENOBUFS;
    redisReply *r = redisCommand(c, "HSET %s %s %s", VTN_KEY_PROCS, field, value);
    if (r == NULL)
        return -EIO;
    int rc = r->type == REDIS_REPLY_ERROR ? -EAGAIN : 0;
    freeReplyObject(r);
    return rc;
}
