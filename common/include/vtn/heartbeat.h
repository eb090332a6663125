/* A process' heartbeat in Redis (docs/redis-keys.md, vtn:procs): every
 * gateway, worker and scheduler writes one small JSON entry, one HSET every
 * VTN_PROC_HEARTBEAT_MS, with its identity and the rates of its requests,
 * polls and errors over its last interval (from the counters it keeps for
 * /metrics). GET /api/v1/health reads them; an entry not refreshed for
 * VTN_PROC_DEAD_BEATS intervals reads alive: false. */
#ifndef VTN_HEARTBEAT_H
#define VTN_HEARTBEAT_H

#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

typedef struct vtn_heartbeat {
    char role[16];  /* "gateway", "worker", "scheduler" */
    char id[160];   /* unique among the processes of the role */
    char host[128]; /* gethostname() */
    long pid;
    int64_t started_ms;
    int64_t last_ms; /* the previous beat (0: none yet) */
    uint64_t last_requests, last_polls, last_errors;
} vtn_heartbeat;

/* The counters a beat reports: totals since the process started. */
typedef struct vtn_heartbeat_counts {
    uint64_t requests, polls, errors;
    long in_flight;
} vtn_heartbeat_counts;

void vtn_heartbeat_init(vtn_heartbeat *hb, const char *role, const char *id, int64_t now_ms);
/* 1 when the next beat is due at now_ms. */
int vtn_heartbeat_due(const vtn_heartbeat *hb, int64_t now_ms);
/* The entry's field ("<role>:<id>") and JSON value for now_ms; the rates
 * are over the time since the previous call (0 on the first). 0, or
 * -ENOBUFS when they do not fit. */
int vtn_heartbeat_render(vtn_heartbeat *hb, int64_t now_ms, const vtn_heartbeat_counts *c,
                         char *field, size_t fieldlen, char *value, size_t valuelen);
/* Renders and sends the beat on c (blocking HSET). 0; -EIO when the
 * connection failed (the caller drops it: hiredis cannot reuse it);
 * -EAGAIN when Redis refused the write (full: it is retried next beat). */
int vtn_heartbeat_send(redisContext *c, vtn_heartbeat *hb, int64_t now_ms,
                       const vtn_heartbeat_counts *counts);

#endif
