/* Scheduler internals: leadership and the task table. */
#ifndef SC_INTERNAL_H
#define SC_INTERNAL_H

#include <stdatomic.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include "vtn/keys.h"

#define SC_LEADER_KEY VTN_KEY_SCHED_LEADER /* STRING "<epoch> <instance>", PX lease */
#define SC_EPOCH_KEY VTN_KEY_SCHED_EPOCH   /* STRING counter: the fencing token source */

typedef struct sc_leader {
    char instance[64];  /* this process: host:pid:random */
    long long lease_ms; /* how long a lease lasts without renewal */
    uint64_t epoch;     /* fencing token of the current term; 0 when not leader */
    int64_t renewed_ms; /* monotonic ms of the last successful renewal */
} sc_leader;

/* Tries to take or keep leadership. Returns 1 leader, 0 standby, <0 on a
 * Redis error (the caller reconnects; leadership is then considered lost). */
int sc_leader_step(sc_leader *l, redisContext *c);
/* Gives the lease up if still ours (clean shutdown, so a standby takes over at once). */
void sc_leader_release(sc_leader *l, redisContext *c);

typedef struct sc_stats {
    _Atomic uint64_t runs;
    _Atomic uint64_t errors;
    _Atomic uint64_t items;      /* items the task acted on */
    _Atomic uint64_t lag_ms;     /* how late its oldest due item was at its last run (0: none) */
    _Atomic uint64_t lag_max_ms; /* the worst lag_ms since the process started */
} sc_stats;

/* A task runs on the leader only, every interval_ms; it must be safe to run
 * twice (a deposed leader may finish one last run). epoch is the fencing
 * token that guards its writes. Returns items acted on or <0. */
typedef struct sc_task {
    const char *name;
    long long interval_ms;
    int (*run)(redisContext *c, uint64_t epoch, int64_t now_ms);
    sc_stats stats;
    int64_t next_ms;
} sc_task;

/* How long an ended event stays before expire_events removes it
 * (VTN_EVENT_RETENTION). */
extern long long sc_event_retention_ms;

/* A report request is overdue when no update came within this many of its
 * back-intervals (VTN_REPORT_OVERDUE_FACTOR). */
extern long long sc_report_overdue_factor;

/* What the report_overdue task saw, for /metrics: the requests overdue now
 * (vtn:reports:overdue, read by the leader's last run; 0 on a standby) and
 * the requests this process marked overdue. */
typedef struct sc_report_stats {
    _Atomic uint64_t overdue;
    _Atomic uint64_t marked;
} sc_report_stats;
extern sc_report_stats sc_reports;

extern sc_task sc_tasks[];
extern const int sc_ntasks;

#endif
