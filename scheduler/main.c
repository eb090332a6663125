/* vtn-scheduler: emits what is due. One leader at a time holds a Redis lease
 * with a fencing token; standbys retry every tick and take over when the
 * lease lapses. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sc_internal.h"
#include "vtn/config.h"
#include "vtn/id.h"
#include "vtn/log.h"
#include "vtn/metrics.h"
#include "vtn/ops.h"
#include "vtn/heartbeat.h"
#include "vtn/redis.h"
#include "vtn/time.h"

typedef struct sc_config {
    char *redis_url;
    char *redis_sentinels;
    char *redis_sentinel_master;
    char *redis_sentinel_password;
    char *ops_listen;
    long long tick_ms;
    long long lease_ms;
    long long event_retention_ms;
    long long report_overdue_factor;
} sc_config;

static const vtn_cfg_item sc_config_items[] = {
    {"VTN_REDIS_URL", "--redis-url", VTN_CFG_STR, offsetof(sc_config, redis_url),
     VTN_REDIS_URL_DEFAULT, 0, 0, "Redis holding all VTN state (redis://[:pw@]host:port/db)"},
    VTN_REDIS_SENTINEL_CFG_ITEMS(sc_config),
    {"VTN_OPS_LISTEN", "--ops-listen", VTN_CFG_ADDR, offsetof(sc_config, ops_listen),
     "127.0.0.1:9102", 0, 0, "health and metrics listener (/healthz /readyz /metrics)"},
    {"VTN_SCHEDULER_TICK", "--tick", VTN_CFG_MS, offsetof(sc_config, tick_ms), "500ms", 50, 10000,
     "how often the scheduler looks for due work and renews its lease"},
    {"VTN_SCHEDULER_LEASE", "--lease", VTN_CFG_MS, offsetof(sc_config, lease_ms), "5s", 1000, 60000,
     "leader lease; a standby takes over this long after the leader stops renewing"},
    {"VTN_EVENT_RETENTION", "--event-retention", VTN_CFG_MS,
     offsetof(sc_config, event_retention_ms), "168h", 0, 3650LL * 86400 * 1000,
     "how long an event stays after its end (cancelled ones too) before removal"},
    {"VTN_REPORT_OVERDUE_FACTOR", "--report-overdue-factor", VTN_CFG_INT,
     offsetof(sc_config, report_overdue_factor), "3", 1, 1000,
     "a report request is overdue when no oadrUpdateReport came within this many of its "
     "reportBackDurations (from the later of its start and its last update)"},
};
#define SC_NITEMS (sizeof sc_config_items / sizeof sc_config_items[0])

static volatile sig_atomic_t stop_requested;
/* What /metrics and /readyz read: written by the main loop, read by the ops
 * thread. */
static struct sc_status {
    _Atomic int leader;
    _Atomic int redis_up;
    _Atomic uint64_t epoch;
    _Atomic uint64_t redis_errors;
} status;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static const char *task_label(size_t i, char *tmp, size_t tmplen)
{
    (void)tmp;
    (void)tmplen;
    return sc_tasks[i].name;
}

static const char *outcome_label(size_t i, char *tmp, size_t tmplen)
{
    (void)tmp;
    (void)tmplen;
    return i == 0 ? "ok" : "error";
}

_Static_assert(offsetof(sc_stats, errors) > offsetof(sc_stats, runs), "outcome dimension order");
static const vtn_metric_dim task_dim = {"task", 0, &sc_ntasks, sizeof(sc_task), task_label};
static const vtn_metric_dim outcome_dim = {
    "outcome", 2, NULL, offsetof(sc_stats, errors) - offsetof(sc_stats, runs), outcome_label};

enum { SC_STATUS, SC_TASKS, SC_REPORTS }; /* the bases: status, sc_tasks, sc_reports */

static const vtn_metric sc_metric_table[] = {
    {"vtn_scheduler_leader", VTN_METRIC_GAUGE, "1 when this instance holds the scheduler lease",
     .cell = VTN_CELL_INT, .base = SC_STATUS, .offset = offsetof(struct sc_status, leader)},
    {"vtn_scheduler_epoch", VTN_METRIC_GAUGE,
     "fencing token of the current leadership term (0 standby)", .base = SC_STATUS,
     .offset = offsetof(struct sc_status, epoch)},
    {"vtn_scheduler_redis_errors_total", VTN_METRIC_COUNTER,
     "Redis errors (each one drops the connection and leadership)", .base = SC_STATUS,
     .offset = offsetof(struct sc_status, redis_errors)},
    {"vtn_scheduler_task_runs_total", VTN_METRIC_COUNTER, "task runs by task and outcome",
     .base = SC_TASKS, .offset = offsetof(sc_task, stats.runs), .dim = {&task_dim, &outcome_dim}},
    {"vtn_scheduler_task_items_total", VTN_METRIC_COUNTER, "items each task acted on",
     .base = SC_TASKS, .offset = offsetof(sc_task, stats.items), .dim = {&task_dim}},
    {"vtn_scheduler_task_lag_ms", VTN_METRIC_GAUGE,
     "how far behind its due time the oldest item of a task's last run was, ms", .base = SC_TASKS,
     .offset = offsetof(sc_task, stats.lag_ms), .dim = {&task_dim}},
    {"vtn_scheduler_task_lag_max_ms", VTN_METRIC_GAUGE,
     "the worst vtn_scheduler_task_lag_ms of a task since the process started, ms",
     .base = SC_TASKS, .offset = offsetof(sc_task, stats.lag_max_ms), .dim = {&task_dim}},
    {"vtn_report_requests_overdue", VTN_METRIC_GAUGE,
     "report requests overdue now (vtn:reports:overdue; the leader's last run, 0 on a standby)",
     .base = SC_REPORTS, .offset = offsetof(sc_report_stats, overdue)},
    {"vtn_report_requests_overdue_total", VTN_METRIC_COUNTER,
     "report requests this process marked overdue", .base = SC_REPORTS,
     .offset = offsetof(sc_report_stats, marked)},
};

static int render_metrics(vtn_buf *out, void *ud)
{
    (void)ud;
    const void *bases[] = {
        [SC_STATUS] = &status, [SC_TASKS] = sc_tasks, [SC_REPORTS] = &sc_reports};
    return vtn_metrics_render(out, sc_metric_table,
                              sizeof sc_metric_table / sizeof sc_metric_table[0], bases);
}

static int ready(void *ud, char *why, size_t n)
{
    (void)ud;
    if (!status.redis_up) {
        snprintf(why, n, "no Redis connection");
        return 0;
    }
    return 1; /* a standby is ready too: it is what takes over */
}

static void sleep_ms(long long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR && !stop_requested)
        ;
}

/* Sleeps ms, or less when the sentinels announce a failover: 1 then, so
 * the loop drops its connection and asks them for the new primary. */
static int wait_tick(vtn_redis_watch *watch, long long ms)
{
    long long now = vtn_now_ms(), end = now + ms;
    int fd = vtn_redis_watch_fd(watch, now);
    if (fd < 0) {
        sleep_ms(ms);
        return 0;
    }
    while (!stop_requested && (now = vtn_now_ms()) < end) {
        if (fd < 0) { /* the sentinel went away: the subscription is made again later */
            sleep_ms(end - now);
            break;
        }
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, (int)(end - now)) > 0) {
            if (vtn_redis_watch_read(watch, vtn_now_ms()))
                return 1;
            fd = vtn_redis_watch_fd(watch, vtn_now_ms());
        }
    }
    return 0;
}

static void drop_redis(redisContext **c)
{
    if (*c)
        redisFree(*c);
    *c = NULL;
    status.redis_up = 0;
    status.leader = 0;
    status.epoch = 0;
    sc_reports.overdue = 0; /* the leader's figure, gone with the connection */
}

int main(int argc, char **argv)
{
    vtn_log_init("scheduler");
    sc_config cfg = {0};
    char err[512];
    int st =
        vtn_config_start(sc_config_items, SC_NITEMS, &cfg, argc, argv, "vtn-scheduler",
                         "openvtn scheduler: one leader at a time (a Redis lease with a "
                         "fencing token) runs the due work: gateway adverts, event transitions and "
                         "retention, report requests sent at their time, overdue reports.");
    if (st >= 0)
        return st;
    vtn_config_log(sc_config_items, SC_NITEMS, &cfg);
    sc_event_retention_ms = cfg.event_retention_ms;
    sc_report_overdue_factor = cfg.report_overdue_factor;
    vtn_redis_target target;
    if (vtn_redis_target_init(&target, cfg.redis_url, cfg.redis_sentinels,
                              cfg.redis_sentinel_master, cfg.redis_sentinel_password, err,
                              sizeof err) < 0) {
        fprintf(stderr, "vtn-scheduler: %s\n", err);
        vtn_config_free(sc_config_items, SC_NITEMS, &cfg);
        return 2;
    }
    if (cfg.tick_ms * 2 >= cfg.lease_ms) {
        fprintf(stderr, "vtn-scheduler: VTN_SCHEDULER_LEASE must be more than twice "
                        "VTN_SCHEDULER_TICK, or the lease lapses between renewals\n");
        return 2;
    }

    sc_leader leader = {.lease_ms = cfg.lease_ms};
    char host[32] = "host", rnd[VTN_ID_MAX];
    gethostname(host, sizeof host - 1);
    vtn_id_new("sc", rnd, sizeof rnd);
    snprintf(leader.instance, sizeof leader.instance, "%s:%d:%s", host, (int)getpid(), rnd + 3);

    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    vtn_ops *ops = NULL;
    int rc;
    if ((rc = vtn_ops_start(cfg.ops_listen, render_metrics, ready, NULL, &ops, err, sizeof err)) <
        0) {
        vtn_error("ops", "msg=\"%s\"", err);
        fprintf(stderr, "vtn-scheduler: %s\n", err);
        return 1;
    }

    redisContext *c = NULL;
    long long backoff = 100;
    vtn_redis_watch *watch = vtn_redis_watch_new(&target); /* NULL without sentinels */
    vtn_info("start", "instance=%s tasks=%d", leader.instance, sc_ntasks);
    vtn_heartbeat hb; /* its entry in vtn:procs: task runs as requests, failed ones as errors */
    vtn_heartbeat_init(&hb, "scheduler", leader.instance, vtn_now_ms());
    while (!stop_requested) {
        if (c == NULL) {
            c = vtn_redis_connect(&target, 2000, err, sizeof err);
            if (c == NULL) {
                char q[600];
                status.redis_up = 0;
                vtn_warn("redis", "msg=%s retry_ms=%lld",
                         vtn_log_quote(q, sizeof q, err, strlen(err)), backoff);
                if (wait_tick(watch, backoff))
                    backoff = 100; /* a new primary is known: ask at once */
                else
                    backoff = backoff * 2 > 5000 ? 5000 : backoff * 2;
                continue;
            }
            backoff = 100;
            status.redis_up = 1;
            char where[300];
            vtn_info("redis", "msg=connected at=%s", vtn_redis_where(c, where, sizeof where));
        }
        rc = sc_leader_step(&leader, c);
        if (rc < 0) {
            /* An I/O error, or an error answer: READONLY after a failover made this server a
             * replica. Either way connect again (to the primary the sentinels name). */
            status.redis_errors++;
            vtn_warn("redis", "msg=\"%s\"", c->err ? c->errstr : "leader step failed");
            drop_redis(&c);
            continue;
        }
        status.leader = rc == 1;
        status.epoch = leader.epoch;
        if (!status.leader)
            sc_reports.overdue = 0; /* the leader's figure; a standby does not add to a sum */
        int64_t now = vtn_now_ms();
        for (int i = 0; status.leader && i < sc_ntasks; i++) {
            sc_task *t = &sc_tasks[i];
            if (now < t->next_ms)
                continue;
            t->next_ms = now + t->interval_ms;
            int n = t->run(c, leader.epoch, now);
            if (n < 0) {
                t->stats.errors++;
                vtn_warn("task", "task=%s rc=%d", t->name, n);
                if (c->err)
                    break; /* the context is unusable; reconnect on the next tick */
            } else {
                t->stats.runs++;
                t->stats.items += (uint64_t)n;
                if (n > 0)
                    vtn_info("task", "task=%s items=%d epoch=%llu", t->name, n,
                             (unsigned long long)leader.epoch);
            }
        }
        if (c && !c->err && vtn_heartbeat_due(&hb, now)) {
            vtn_heartbeat_counts hc = {0, 0, 0, 0};
            for (int i = 0; i < sc_ntasks; i++) {
                hc.requests += sc_tasks[i].stats.runs + sc_tasks[i].stats.errors;
                hc.errors += sc_tasks[i].stats.errors;
            }
            (void)vtn_heartbeat_send(c, &hb, now, &hc); /* an I/O error shows in c->err */
        }
        if (c && c->err) {
            drop_redis(&c);
            continue;
        }
        if (wait_tick(watch, cfg.tick_ms)) {
            vtn_warn("redis", "msg=\"+switch-master: reconnecting to the new primary\"");
            drop_redis(&c);
        }
    }
    vtn_ops_set_draining(ops);
    vtn_info("stop", "msg=\"signal received\"");
    sc_leader_release(&leader, c);
    if (c)
        redisFree(c);
    vtn_redis_watch_free(&watch);
    vtn_ops_stop(&ops);
    vtn_config_free(sc_config_items, SC_NITEMS, &cfg);
    return 0;
}
