/* vtn-bench fleet: scenarios of a whole fleet of VENs (docs/bench.md, "Fleet
 * simulator"). Each scenario is a set of options for the one client engine
 * (bn_client.c, BN_MODE_FLEET: every VEN on its own connection, living the
 * life of a real one); this file picks them, watches the run once a second
 * (progress line, timeline), and writes the summary and the JSON file that
 * `vtn-bench plan` reads (format: docs/bench.md, "The JSON file"). */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include "vtn/config.h"
#include "vtn/id.h"
#include "vtn/log.h"
#include "vtn/net.h"

#include "bn_internal.h"
#include "bn_pushsrv.h"

extern char **environ;

#ifdef BN_HAVE_SVG
/* bench/bn_svg.c: the picture of a run, drawn from its JSON file */
int bn_svg_from_json(const char *json_path, const char *svg_path, char *err, size_t errlen);
#endif

#define FL_FD_SPARE                                                                                \
    32 /* descriptors besides the VENs' connections: stdio, libuv, /proc, the API, Redis */

typedef struct fl_cfg {
    char *scenario;
    char *target;
    int allow_remote;
    long long vens;
    long long duration_ms;
    long long poll_interval_ms;
    char *poll_jitter;
    int closed_loop;
    char *opt_in_share;
    long long report_back_ms;
    long long intervals;
    char *push_share;
    char *push_cert, *push_key, *push_ca;
    long long push_max_conns;
    long long push_unreachable;
    int push_close;
    long long ramp;
    long long retry_base_ms;
    long long retry_cap_ms;
    long long timeout_ms;
    long long register_timeout_ms;
    int tls;
    char *cert;
    char *key;
    char *ca;
    int insecure;
    int tls13;
    int resume;
    char *resumption_share;
    long long cert_pool;
    char *mint_ca;
    char *connection;
    long long max_open;
    char *api;
    char *api_token;
    char *redis;
    long long events;
    long long follow_ms;
    char *pids;
    char *out;
    char *svg;
    char *restart_cmd;
    long long restart_at_ms;
    char *run_id;
} fl_cfg;

#define F(x) offsetof(fl_cfg, x)
static const vtn_cfg_item fl_items[] = {
    {"VTN_FLEET_SCENARIO", "--scenario", VTN_CFG_STR, F(scenario), "poll", 0, 0,
     "poll, register-storm, event-fanout, report-ingest, push or utility-day (docs/bench.md)"},
    {"VTN_FLEET_TARGET", "--target", VTN_CFG_ADDR, F(target), "127.0.0.1:8080", 0, 0,
     "the VTN's OpenADR listener (loopback only unless --allow-remote)"},
    {"VTN_FLEET_ALLOW_REMOTE", "--allow-remote", VTN_CFG_BOOL, F(allow_remote), "false", 0, 0,
     "allow a target, API or Redis that is not a loopback address"},
    {"VTN_FLEET_VENS", "--vens", VTN_CFG_INT, F(vens), "0", 0, 200000,
     "simulated VENs (with keep-alive connections one each); 0 = the scenario's default"},
    {"VTN_FLEET_DURATION", "--duration", VTN_CFG_MS, F(duration_ms), "0", 0, 86400000,
     "length of the measured phase (poll, report-ingest, push, utility-day); 0 = the scenario's "
     "default"},
    {"VTN_FLEET_POLL_INTERVAL", "--poll-interval", VTN_CFG_MS, F(poll_interval_ms), "0", 0,
     86400000, "each VEN polls this often (open loop); 0 = the scenario's default"},
    {"VTN_FLEET_POLL_JITTER", "--poll-jitter", VTN_CFG_STR, F(poll_jitter), "0.2", 0, 0,
     "each poll interval is drawn in [1 - j, 1 + j] times --poll-interval (0..0.9)"},
    {"VTN_FLEET_CLOSED_LOOP", "--closed-loop", VTN_CFG_BOOL, F(closed_loop), "false", 0, 0,
     "poll scenario: each VEN polls again as soon as its reply is in (saturation)"},
    {"VTN_FLEET_OPT_IN_SHARE", "--opt-in-share", VTN_CFG_STR, F(opt_in_share), "0.8", 0, 0,
     "share (0..1) of the answers to events that opt in; the rest opt out"},
    {"VTN_FLEET_REPORT_BACK", "--report-back", VTN_CFG_MS, F(report_back_ms), "0", 0, 86400000,
     "a VEN sends oadrUpdateReport this often once the VTN asked for its report; 0 = the "
     "reportBackDuration the VTN asked for (report-ingest: 1s)"},
    {"VTN_FLEET_INTERVALS", "--intervals", VTN_CFG_INT, F(intervals), "0", 0, 512,
     "intervals per oadrUpdateReport; 0 = the scenario's default (report-ingest 12, else 1)"},
    {"VTN_FLEET_PUSH_SHARE", "--push-share", VTN_CFG_STR, F(push_share), "0", 0, 0,
     "share (0..1) of the VENs in push mode, each with an HTTPS endpoint of its own (one TLS "
     "listener on 127.0.0.1, a path per VEN); push scenario: 0 = all of them. Only in the push, "
     "poll, register-storm and report-ingest scenarios"},
    {"VTN_FLEET_PUSH_CERT", "--push-cert", VTN_CFG_STR, F(push_cert), "", 0, 0,
     "the push VENs' server certificate (PEM, naming 127.0.0.1), from a CA the VTN's "
     "VTN_PUSH_CA trusts"},
    {"VTN_FLEET_PUSH_KEY", "--push-key", VTN_CFG_STR, F(push_key), "", 0, 0, "its key"},
    {"VTN_FLEET_PUSH_CA", "--push-ca", VTN_CFG_STR, F(push_ca), "", 0, 0,
     "CA bundle that verifies the VTN's push client certificate (VTN_PUSH_CERT)"},
    {"VTN_FLEET_PUSH_MAX_CONNS", "--push-max-conns", VTN_CFG_INT, F(push_max_conns), "0", 0, 200000,
     "connections the push endpoint holds at once (more are closed at accept); 0 = the push "
     "VENs + 64"},
    {"VTN_FLEET_PUSH_CLOSE", "--push-close", VTN_CFG_BOOL, F(push_close), "false", 0, 0,
     "the push VENs' endpoint closes each connection after its answer, so every push opens a "
     "connection and makes a full TLS handshake (default: keep-alive, as the VTN keeps them)"},
    {"VTN_FLEET_PUSH_UNREACHABLE", "--push-unreachable", VTN_CFG_INT, F(push_unreachable), "0", 0,
     200000,
     "push scenario: this many push VENs go away when the event is created (their endpoint "
     "closes every push unanswered); the coverage counts the others"},
    {"VTN_FLEET_RAMP", "--ramp", VTN_CFG_INT, F(ramp), "0", 0, 200000,
     "VENs connecting and registering at once; 0 = 256 (register-storm: all of them)"},
    {"VTN_FLEET_RETRY_BASE", "--retry-base", VTN_CFG_MS, F(retry_base_ms), "500ms", 1, 600000,
     "first backoff of a VEN after a failed registration or a lost connection; it doubles up "
     "to --retry-cap, each wait drawn in [d/2, d]"},
    {"VTN_FLEET_RETRY_CAP", "--retry-cap", VTN_CFG_MS, F(retry_cap_ms), "30s", 1, 3600000,
     "longest backoff"},
    {"VTN_FLEET_TIMEOUT", "--timeout", VTN_CFG_MS, F(timeout_ms), "10s", 10, 600000,
     "request, connect and handshake timeout"},
    {"VTN_FLEET_REGISTER_TIMEOUT", "--register-timeout", VTN_CFG_MS, F(register_timeout_ms), "120s",
     100, 3600000, "VENs not registered by then sit out (register-storm: the storm's deadline)"},
    {"VTN_FLEET_TLS", "--tls", VTN_CFG_BOOL, F(tls), "false", 0, 0,
     "mutual TLS to the target, one connection (and handshake) per VEN"},
    {"VTN_FLEET_CERT", "--cert", VTN_CFG_STR, F(cert), "", 0, 0,
     "client certificate; with %d VEN i presents the file with %d replaced by i (modulo "
     "--cert-pool)"},
    {"VTN_FLEET_KEY", "--key", VTN_CFG_STR, F(key), "", 0, 0, "its key; may hold %d like --cert"},
    {"VTN_FLEET_CA", "--ca", VTN_CFG_STR, F(ca), "", 0, 0,
     "CA bundle that verifies the VTN's server certificate"},
    {"VTN_FLEET_INSECURE", "--insecure", VTN_CFG_BOOL, F(insecure), "false", 0, 0,
     "do not verify the VTN's server certificate"},
    {"VTN_FLEET_TLS13", "--tls13", VTN_CFG_BOOL, F(tls13), "false", 0, 0,
     "TLS 1.3 only (default TLS 1.2, as OpenADR 2.0b)"},
    {"VTN_FLEET_RESUME", "--resume", VTN_CFG_BOOL, F(resume), "false", 0, 0,
     "a VEN that reconnects resumes its TLS session (--resumption-share 1)"},
    {"VTN_FLEET_RESUMPTION_SHARE", "--resumption-share", VTN_CFG_STR, F(resumption_share), "0", 0,
     0,
     "share (0..1) of the reconnects that resume the VEN's TLS session; the others make a "
     "full handshake"},
    {"VTN_FLEET_CERT_POOL", "--cert-pool", VTN_CFG_INT, F(cert_pool), "0", 0, 200000,
     "certificates the --cert pattern holds (0..K-1); 0 = one per VEN. With fewer than the "
     "VENs they share them, and the VTN sees one VEN per certificate"},
    {"VTN_FLEET_MINT_CA", "--mint-ca", VTN_CFG_STR, F(mint_ca), "", 0, 0,
     "CERT.pem,KEY.pem of a CA (e.g. the development PKI's ECC CA): every VEN gets a P-256 "
     "certificate of its own from it, made in memory at start (instead of --cert/--key)"},
    {"VTN_FLEET_CONNECTION", "--connection", VTN_CFG_STR, F(connection), "keep-alive", 0, 0,
     "keep-alive: each VEN holds its connection; per-poll: each VEN connects for each exchange "
     "(a poll and what it brings) and closes it, holding no descriptor in between"},
    {"VTN_FLEET_MAX_OPEN", "--max-open", VTN_CFG_INT, F(max_open), "1024", 1, 1000000,
     "per-poll: connections open at once at most; a VEN that would open one more waits"},
    {"VTN_FLEET_API", "--api", VTN_CFG_STR, F(api), "", 0, 0,
     "the VTN's management API (host:port): event-fanout and utility-day create events there"},
    {"VTN_FLEET_API_TOKEN", "--api-token", VTN_CFG_SECRET, F(api_token), "", 0, 0,
     "the API's bearer token"},
    {"VTN_FLEET_REDIS", "--redis", VTN_CFG_STR, F(redis), "", 0, 0,
     "the VTN's Redis (host:port): memory and keys before and after, per VEN"},
    {"VTN_FLEET_EVENTS", "--events", VTN_CFG_INT, F(events), "0", 0, BN_EVENTS_MAX,
     "events created at once (event-fanout 1, utility-day 2); 0 = the scenario's default"},
    {"VTN_FLEET_FOLLOW", "--follow", VTN_CFG_MS, F(follow_ms), "60s", 100, 3600000,
     "event-fanout: VENs without every event and answer by then are missing"},
    {"VTN_FLEET_PIDS", "--pids", VTN_CFG_STR, F(pids), "", 0, 0,
     "the VTN's processes: gateway=PID,worker=PID,scheduler=PID,redis=PID"},
    {"VTN_FLEET_OUT", "--out", VTN_CFG_STR, F(out), "", 0, 0,
     "write the run's JSON here (schema openvtn-bench/1)"},
    {"VTN_FLEET_SVG", "--svg", VTN_CFG_STR, F(svg), "", 0, 0,
     "draw the run's timeline here (needs --out and the SVG renderer)"},
    {"VTN_FLEET_RESTART_CMD", "--restart-cmd", VTN_CFG_STR, F(restart_cmd), "", 0, 0,
     "utility-day: a shell command that restarts the gateway, run in the middle of the run"},
    {"VTN_FLEET_RESTART_AT", "--restart-at", VTN_CFG_MS, F(restart_at_ms), "0", 0, 86400000,
     "when --restart-cmd runs, from the start of the measured phase; 0 = half of --duration"},
    {"VTN_FLEET_RUN", "--run", VTN_CFG_STR, F(run_id), "", 0, 0,
     "run id in venNames bench-<run>-<i> ([A-Za-z0-9_-], up to 24); default: random"},
};
#undef F
#define NFL (sizeof fl_items / sizeof fl_items[0])

/* ---- scenarios ------------------------------------------------------------ */

typedef struct fl_run fl_run;

typedef struct fl_scenario {
    const char *name;
    const char *measures;
    uint32_t vens;            /* default fleet */
    long long duration_ms;    /* measured phase (0: the scenario ends by itself) */
    long long interval_ms;    /* poll interval */
    long long report_back_ms; /* 0: what the VTN asks */
    uint32_t intervals;       /* per update */
    int storm;                /* the registrations are measured */
    uint32_t events;          /* events created (through the API: --api needed) */
    int built;                /* 0: named, not built yet */
    void (*result)(const fl_run *f, json_t *sr); /* its scenario_result */
} fl_scenario;

struct fl_run {
    const fl_cfg *cfg;
    const fl_scenario *sc;
    bn_opts *o;
    bn_result *res;
    json_t *timeline;
    uint64_t last_done, last_err;
    double last_t;
    uint64_t last_ticks[BN_MAX_PIDS];
    bn_proc_usage use0[BN_MAX_PIDS], use1[BN_MAX_PIDS];
    int have_use0, have_use1; /* utility-day: the steps done, the restart and how long the fleet
                               * took to be back */
    int day_next;
    bn_api api;
    pid_t restart_pid;
    int restart_status;
    double restart_t;        /* tick time the restart command started; -1 none */
    double back_s;           /* from then until every registered VEN was connected again */
    uint64_t err_before;     /* errors before the restart */
    int modified, cancelled; /* API calls that succeeded */
    char day_error[256];
    double measure_t0; /* tick time when the measured phase began */
    bn_result at0;     /* the counters when it began: ops count from there */
    int measuring;
    /* push VENs (bn_pushsrv.c): their endpoint, the pushes when the measured
     * phase began and ended, and the push scenario's event */
    bn_pushsrv *push;
    double push_share;
    bn_push_stats push0, push1;
    uint64_t last_pushes; /* at the last tick */
    int push_stage;       /* 0: waiting for every push VEN's venID, 1: the event was created */
    char push_ev[BN_EVENT_ID_MAX];
    double push_create_ms;
    uint32_t push_targeted;  /* push VENs in the event's group: those whose venID was known */
    long long push_recorded; /* the event's participation (optIn + optOut) at the end; -1 unread */
    char push_error[256];
};

static void res_poll(const fl_run *f, json_t *sr);
static void res_storm(const fl_run *f, json_t *sr);
static void res_fanout(const fl_run *f, json_t *sr);
static void res_ingest(const fl_run *f, json_t *sr);
static void res_day(const fl_run *f, json_t *sr);
static void res_push(const fl_run *f, json_t *sr);
static const fl_scenario scenarios[] = {
    {"poll", "steady polling: polls/s, latency, CPU per poll (open loop, or --closed-loop)", 200,
     10000, 1000, 0, 1, 0, 0, 1, res_poll},
    {"register-storm",
     "every VEN connects and registers at once (TLS handshakes included), retrying with "
     "backoff: time until all are in, 5xx refusals on the way",
     1000, 0, 60000, 0, 1, 1, 0, 1, res_storm},
    {"event-fanout",
     "one event to every VEN through the API: time until 50/99/100 % received and answered", 1000,
     0, 10000, 0, 1, 0, 1, 1, res_fanout},
    {"report-ingest",
     "every VEN sends oadrUpdateReport at its back-interval: updates and intervals stored/s", 200,
     10000, 10000, 1000, 12, 0, 0, 1, res_ingest},
    {"push",
     "push-mode VENs, each with an HTTPS endpoint of its own: one event for all of them through "
     "the API, time until 50/99/100 % received and answered it",
     1000, 30000, 10000, 0, 1, 0, 0, 1, res_push},
    {"utility-day",
     "a day compressed ten times: polls every 6 s (60 s), telemetry every 30 s (5 min), two "
     "events, one modified and one cancelled, a gateway restart in the middle (--restart-cmd)",
     2000, 180000, 6000, 30000, 5, 0, 2, 1, res_day},
};
#define NSCEN (sizeof scenarios / sizeof scenarios[0])

/* ---- counting ------------------------------------------------------------- */

static const bn_counts *all_counts(const bn_result *r, int i)
{
    const bn_counts *k[] = {&r->reg, &r->poll, &r->regrep, &r->created, &r->upd, &r->creport};
    return i < (int)(sizeof k / sizeof k[0]) ? k[i] : NULL;
}

static void totals(const bn_result *r, uint64_t *done, uint64_t *err)
{
    *done = *err = 0;
    for (int i = 0; all_counts(r, i); i++) {
        *done += all_counts(r, i)->done;
        *err += bn_counts_errors(all_counts(r, i));
    }
}

static double ticks_s(uint64_t t)
{
    long hz = sysconf(_SC_CLK_TCK);
    return (double)t / (double)(hz > 0 ? hz : 100);
}

/* ---- once a second -------------------------------------------------------- */

static void restart_poll(fl_run *f)
{
    int st;
    if (f->restart_pid > 0 && waitpid(f->restart_pid, &st, WNOHANG) == f->restart_pid) {
        f->restart_status = st;
        f->restart_pid = 0;
    }
}

/* utility-day's steps, at shares of --duration from the start of the
 * measured phase (the two events are created one poll interval + 1 s in). */
enum day_step { DAY_MODIFY, DAY_RESTART, DAY_CANCEL };
static const struct {
    double at;
    enum day_step what;
} day_steps[] = {{0.35, DAY_MODIFY}, {0.5, DAY_RESTART}, {0.75, DAY_CANCEL}};
#define NDAY (sizeof day_steps / sizeof day_steps[0])

/* One management API call that must answer `want`; the first failure is kept
 * in err. reply (NULL: not needed) gets the body. 0 or -1. */
static int fl_api(fl_run *f, const char *method, const char *path, json_t *body, int want,
                  vtn_buf *reply, char *err, size_t errlen)
{
    vtn_buf own;
    int st = 0;
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    if (reply == NULL)
        reply = &own;
    vtn_buf_init(reply, 1 << 20);
    int rc = bn_api_call(&f->api, method, path, text, text ? strlen(text) : 0, reply, &st);
    free(text);
    if (rc == 0 && st == want) {
        if (reply == &own)
            vtn_buf_free(&own);
        return 0;
    }
    if (!err[0])
        snprintf(err, errlen, "%s %s: %s %d %.*s", method, path, rc < 0 ? strerror(-rc) : "HTTP",
                 st, (int)(reply->len > 120 ? 120 : reply->len), reply->data ? reply->data : "");
    if (reply == &own)
        vtn_buf_free(&own);
    return -1;
}

static void day_api(fl_run *f, const char *method, const char *path, json_t *body, int *count)
{
    if (fl_api(f, method, path, body, 200, NULL, f->day_error, sizeof f->day_error) == 0)
        (*count)++;
}

/* The push scenario's event, once every push VEN has had its registration's
 * push (which told its venID) or half of the run passed (the others are then
 * not targeted, and the run says so): the run's
 * program, a group of the push VENs the pushes named, and one event for it
 * (bn_event_body, as event-fanout's), the endpoint watching from just before. */
static void push_event(fl_run *f)
{
    char path[256], name[64];
    vtn_buf reply;
    json_t *ev = bn_event_body(f->o, 0, 1);
    const char *gid = json_string_value(
        json_array_get(json_object_get(json_object_get(ev, "targets"), "groupID"), 0));
    snprintf(name, sizeof name, "bench %s", f->o->run_id);
    json_t *prog =
        json_pack("{s:s,s:O}", "name", name, "marketContext", json_object_get(ev, "marketContext"));
    json_t *ids = json_array();
    f->push_targeted = bn_pushsrv_ven_ids(f->push, ids);
    json_t *grp = json_pack("{s:o}", "venIDs", ids);
    snprintf(path, sizeof path, "/api/v1/groups/%s", gid ? gid : "");
    char *e = f->push_error;
    size_t el = sizeof f->push_error;
    if (fl_api(f, "POST", "/api/v1/programs", prog, 201, NULL, e, el) == 0 &&
        fl_api(f, "PUT", path, grp, 201, NULL, e, el) == 0) {
        uint64_t t0 = uv_hrtime();
        bn_pushsrv_watch(f->push, t0);
        if (fl_api(f, "POST", "/api/v1/events", ev, 201, &reply, e, el) == 0) {
            f->push_create_ms = (double)(uv_hrtime() - t0) / 1e6;
            json_t *r = json_loadb(reply.data, reply.len, 0, NULL);
            const char *id = json_string_value(json_object_get(r, "eventID"));
            snprintf(f->push_ev, sizeof f->push_ev, "%s", id ? id : "");
            json_decref(r);
        }
        vtn_buf_free(&reply);
    }
    json_decref(prog);
    json_decref(grp);
    json_decref(ev);
}

static void push_tick(fl_run *f, const bn_tick *t)
{
    bn_push_stats st;
    if (f->measure_t0 < 0 || f->push_stage != 0)
        return;
    bn_pushsrv_stats(f->push, &st);
    if (st.known < f->o->push_vens && t->t - f->measure_t0 < (double)f->o->duration_ns / 2e9)
        return;
    f->push_stage = 1;
    push_event(f);
}

/* After the run: what the VTN recorded of the push VENs' answers. */
static void push_participation(fl_run *f)
{
    char path[256];
    vtn_buf reply;
    f->push_recorded = -1;
    if (!f->push_ev[0])
        return;
    snprintf(path, sizeof path, "/api/v1/events/%s", f->push_ev);
    if (fl_api(f, "GET", path, NULL, 200, &reply, f->push_error, sizeof f->push_error) == 0) {
        json_t *r = json_loadb(reply.data, reply.len, 0, NULL);
        json_t *p = json_object_get(r, "participation");
        if (p)
            f->push_recorded = json_integer_value(json_object_get(p, "optIn")) +
                               json_integer_value(json_object_get(p, "optOut"));
        json_decref(r);
    }
    vtn_buf_free(&reply);
}

static void day_restart(fl_run *f, double t)
{
    char *argv[] = {"/bin/sh", "-c", f->cfg->restart_cmd, NULL};
    f->restart_t = t;
    f->err_before = f->last_err;
    if (posix_spawn(&f->restart_pid, "/bin/sh", NULL, NULL, argv, environ) != 0) {
        f->restart_pid = 0;
        snprintf(f->day_error, sizeof f->day_error, "--restart-cmd: cannot start /bin/sh");
    }
}

/* The next utility-day step when it is due. The API calls block the loop for
 * their round trip, as the events' creation does. */
static void day_tick(fl_run *f, const bn_tick *t)
{
    const bn_result *res = t->res;
    if (f->measure_t0 < 0 || f->day_next >= (int)NDAY || res->ev_created < f->o->events)
        return;
    double dur = f->cfg->restart_at_ms && day_steps[f->day_next].what == DAY_RESTART
                     ? (double)f->cfg->restart_at_ms / 1e3
                     : day_steps[f->day_next].at * (double)f->o->duration_ns / 1e9;
    if (t->t - f->measure_t0 < dur)
        return;
    char path[256];
    switch (day_steps[f->day_next++].what) {
    case DAY_MODIFY: {
        json_t *b = bn_event_body(f->o, 0, 2); /* the level goes from 1 to 2 */
        json_object_set_new(b, "modificationReason", json_string("vtn-bench utility-day"));
        snprintf(path, sizeof path, "/api/v1/events/%s", t->ev_ids[0]);
        day_api(f, "PUT", path, b, &f->modified);
        json_decref(b);
        break;
    }
    case DAY_RESTART:
        if (*f->cfg->restart_cmd)
            day_restart(f, t->t);
        break;
    case DAY_CANCEL:
        snprintf(path, sizeof path, "/api/v1/events/%s/cancel", t->ev_ids[f->o->events - 1]);
        day_api(f, "POST", path, NULL, &f->cancelled);
        break;
    }
}

static void fl_tick(void *arg, const bn_tick *t)
{
    fl_run *f = arg;
    bn_result *res = t->res;
    uint64_t done, err;
    totals(res, &done, &err);
    double dt = t->t - f->last_t;
    if (dt <= 0)
        dt = 1;
    json_t *cpu = json_object();
    for (int i = 0; i < f->o->nprocs; i++) {
        uint64_t now_ticks = 0;
        bn_proc *p = &f->o->procs[i];
        if (bn_proc_ticks(p->pid, &now_ticks) < 0)
            continue;
        double share = f->last_ticks[i] ? ticks_s(now_ticks - f->last_ticks[i]) / dt : 0;
        f->last_ticks[i] = now_ticks;
        json_t *prev = json_object_get(cpu, p->role);
        json_object_set_new(cpu, p->role, json_real((prev ? json_real_value(prev) : 0) + share));
    }
    double p50 = (double)bn_hist_quantile(res->tick_hist, 0.5) / 1e6;
    double p99 = (double)bn_hist_quantile(res->tick_hist, 0.99) / 1e6;
    const char *phase = f->restart_pid > 0 ? "restart" : t->phase;
    json_array_append_new(f->timeline,
                          json_pack("{s:f,s:s,s:I,s:I,s:f,s:f,s:I,s:I,s:o}", "t", t->t, "phase",
                                    phase, "requests", (json_int_t)(done - f->last_done), "errors",
                                    (json_int_t)(err - f->last_err), "p50_ms", p50, "p99_ms", p99,
                                    "connected", (json_int_t)t->connected, "registered",
                                    (json_int_t)t->registered, "cpu", cpu));
    char pushed[96] = "";
    if (f->push) { /* pushes answered in that second, and how far the push event got */
        bn_push_stats ps;
        bn_pushsrv_stats(f->push, &ps);
        json_object_set_new(json_array_get(f->timeline, json_array_size(f->timeline) - 1), "pushes",
                            json_integer((json_int_t)(ps.pushes - f->last_pushes)));
        snprintf(pushed, sizeof pushed, " pushes/s=%.0f push_received=%" PRIu32,
                 (double)(ps.pushes - f->last_pushes) / dt, ps.received);
        f->last_pushes = ps.pushes;
    }
    fprintf(stderr,
            "fleet %s t=%.0fs %s connected=%" PRIu32 " registered=%" PRIu32 "/%" PRIu32
            " req/s=%.0f errors=%" PRIu64 " p50=%.1fms p99=%.1fms%s\n",
            f->sc->name, t->t, phase, t->connected, t->registered, f->o->vens,
            (double)(done - f->last_done) / dt, err, p50, p99, pushed);
    bn_hist_init(res->tick_hist);
    f->last_done = done;
    f->last_err = err;
    f->last_t = t->t;
    if (f->measuring && f->measure_t0 < 0)
        f->measure_t0 = t->t;
    restart_poll(f);
    if (f->restart_t >= 0 && f->restart_pid == 0 && f->back_s < 0 && t->connected >= t->registered)
        f->back_s = t->t - f->restart_t;
    if (strcmp(t->phase, "done") == 0)
        return; /* the run's last sample: no step starts now */
    if (strcmp(f->sc->name, "utility-day") == 0)
        day_tick(f, t);
    if (f->push && strcmp(f->sc->name, "push") == 0)
        push_tick(f, t);
}

static void fl_measure(void *arg, int end)
{
    fl_run *f = arg;
    bn_proc_usage *u = end ? f->use1 : f->use0;
    for (int i = 0; i < f->o->nprocs; i++)
        if (bn_proc_usage_read(f->o->procs[i].pid, &u[i]) < 0)
            memset(&u[i], 0, sizeof u[i]);
    if (f->push)
        bn_pushsrv_stats(f->push, end ? &f->push1 : &f->push0);
    if (end) {
        f->have_use1 = 1;
    } else {
        f->have_use0 = 1;
        f->at0 = *f->res; /* counters only: its histogram pointers are not used */
    }
    f->measuring = !end;
}

/* ---- scenario results ----------------------------------------------------- */

static json_t *coverage_json(const uint64_t *cov)
{
    json_t *j = json_object();
    static const char *const names[3] = {"p50", "p99", "p100"};
    for (int i = 0; i < 3; i++)
        json_object_set_new(j, names[i],
                            cov[i] == BN_NEVER ? json_null() : json_real((double)cov[i] / 1e9));
    return j;
}

static void res_poll(const fl_run *f, json_t *sr)
{
    json_object_set_new(sr, "closed_loop", json_boolean(f->o->rate == 0));
    json_object_set_new(sr, "polls_ok", json_integer((json_int_t)f->res->poll.ok));
    json_object_set_new(
        sr, "polls_per_s",
        json_real(f->res->seconds > 0 ? (double)f->res->poll.ok / f->res->seconds : 0));
    json_object_set_new(sr, "queued_payloads", json_integer((json_int_t)f->res->poll.messages));
}

static void res_storm(const fl_run *f, json_t *sr)
{
    const bn_result *r = f->res;
    int all = r->registered == f->o->vens;
    json_object_set_new(sr, "all_in_s", all ? json_real(r->reg_seconds) : json_null());
    json_object_set_new(
        sr, "attempts",
        json_pack("{s:I,s:I,s:f}", "total", (json_int_t)r->reg_attempts, "max",
                  (json_int_t)r->reg_max_attempts, "mean",
                  r->registered ? (double)r->reg_attempts / (double)f->o->vens : 0.0));
    json_object_set_new(sr, "refused_5xx", json_integer((json_int_t)r->reg.status[5]));
    json_object_set_new(sr, "given_up", json_integer((json_int_t)r->reg_failed));
    /* a refused exchange request waits a backoff: of the order of the VENs */
    json_object_set_new(sr, "report_exchange",
                        json_pack("{s:I,s:I}", "sent", (json_int_t)r->regrep.sent, "refused_5xx",
                                  (json_int_t)r->regrep.status[5]));
}

static void res_fanout(const fl_run *f, json_t *sr)
{
    const bn_result *r = f->res;
    json_object_set_new(sr, "create_ms", r->ev_created ? json_real(r->create_ms[0]) : json_null());
    json_object_set_new(sr, "events", json_integer(r->ev_created));
    json_object_set_new(sr, "targeted", json_integer(r->targeted));
    json_object_set_new(sr, "received", json_integer(r->received));
    json_object_set_new(sr, "answered", json_integer(r->answered));
    json_object_set_new(sr, "received_s", coverage_json(r->cov_recv));
    json_object_set_new(sr, "answered_s", coverage_json(r->cov_ans));
    json_object_set_new(sr, "opted_out", json_integer((json_int_t)r->opted_out));
    json_object_set_new(sr, "missing", json_integer(r->late));
    if (r->setup_error[0])
        json_object_set_new(sr, "setup_error", json_string(r->setup_error));
}

static void res_day(const fl_run *f, json_t *sr)
{
    const bn_result *r = f->res;
    res_ingest(f, sr);
    json_object_set_new(sr, "events", json_integer(r->ev_created));
    json_object_set_new(sr, "modified", json_integer(f->modified));
    json_object_set_new(sr, "cancelled", json_integer(f->cancelled));
    json_object_set_new(sr, "event_deliveries", json_integer((json_int_t)r->deliveries));
    json_object_set_new(sr, "answers_ok", json_integer((json_int_t)r->created.ok));
    json_object_set_new(sr, "opted_out", json_integer((json_int_t)r->opted_out));
    json_object_set_new(sr, "received_s", coverage_json(r->cov_recv));
    if (f->day_error[0] || r->setup_error[0])
        json_object_set_new(sr, "setup_error",
                            json_string(f->day_error[0] ? f->day_error : r->setup_error));
    json_t *rs = json_object();
    json_object_set_new(rs, "done", json_boolean(f->restart_t >= 0));
    if (f->restart_t >= 0) {
        json_object_set_new(rs, "at_s", json_real(f->restart_t));
        json_object_set_new(rs, "exit_status",
                            f->restart_pid ? json_null()
                                           : json_integer(WIFEXITED(f->restart_status)
                                                              ? WEXITSTATUS(f->restart_status)
                                                              : 128 + WTERMSIG(f->restart_status)));
        json_object_set_new(rs, "all_back_s", f->back_s >= 0 ? json_real(f->back_s) : json_null());
        json_object_set_new(rs, "errors_before", json_integer((json_int_t)f->err_before));
    }
    json_object_set_new(sr, "restart", rs);
}

static void res_push(const fl_run *f, json_t *sr)
{
    const bn_push_stats *p = &f->push1;
    json_object_set_new(sr, "push_vens", json_integer(f->o->push_vens));
    json_object_set_new(sr, "unreachable", json_integer((json_int_t)f->cfg->push_unreachable));
    json_object_set_new(sr, "dropped", json_integer((json_int_t)p->dropped));
    json_object_set_new(sr, "ven_ids_known", json_integer(p->known));
    json_object_set_new(sr, "targeted", json_integer(f->push_targeted));
    json_object_set_new(sr, "event", f->push_ev[0] ? json_string(f->push_ev) : json_null());
    json_object_set_new(sr, "create_ms",
                        f->push_ev[0] ? json_real(f->push_create_ms) : json_null());
    json_object_set_new(sr, "received", json_integer(p->received));
    json_object_set_new(sr, "answered", json_integer(p->answered));
    json_object_set_new(sr, "received_s", coverage_json(p->cov_recv));
    json_object_set_new(sr, "answered_s", coverage_json(p->cov_ans));
    json_object_set_new(sr, "answers_recorded",
                        f->push_recorded >= 0 ? json_integer(f->push_recorded) : json_null());
    json_object_set_new(sr, "opted_out", json_integer((json_int_t)p->opted_out));
    json_object_set_new(sr, "pushes",
                        json_pack("{s:I,s:I,s:I,s:I,s:I}", "total", (json_int_t)p->pushes,
                                  "distribute_event", (json_int_t)p->distribute, "register_report",
                                  (json_int_t)p->register_report, "create_report",
                                  (json_int_t)p->create_report, "other", (json_int_t)p->other));
    json_object_set_new(
        sr, "connections",
        json_pack("{s:I,s:i}", "accepted", (json_int_t)p->conns, "max_open", (int)p->open_max));
    if (f->push_error[0])
        json_object_set_new(sr, "setup_error", json_string(f->push_error));
}

static void res_ingest(const fl_run *f, json_t *sr)
{
    const bn_result *r = f->res;
    double s = r->seconds > 0 ? r->seconds : 1;
    json_object_set_new(sr, "reports_set_up", json_integer(r->rep_ready));
    json_object_set_new(sr, "updates_ok", json_integer((json_int_t)r->upd.ok));
    json_object_set_new(sr, "intervals_ok", json_integer((json_int_t)r->intervals_ok));
    json_object_set_new(sr, "intervals_per_s", json_real((double)r->intervals_ok / s));
    json_object_set_new(sr, "intervals_per_update", json_integer(f->o->intervals));
}

/* ---- the JSON file -------------------------------------------------------- */

static json_t *op_json(uint64_t count, double seconds)
{
    return json_pack("{s:I,s:f}", "count", (json_int_t)count, "per_s",
                     seconds > 0 ? (double)count / seconds : 0.0);
}

static json_t *hist_json(const bn_hist *h)
{
    return json_pack("{s:I,s:f,s:f,s:f,s:f,s:f}", "count", (json_int_t)h->total, "p50",
                     bn_hist_quantile(h, 0.5) / 1e6, "p90", bn_hist_quantile(h, 0.9) / 1e6, "p99",
                     bn_hist_quantile(h, 0.99) / 1e6, "p999", bn_hist_quantile(h, 0.999) / 1e6,
                     "max", h->max / 1e6);
}

static void hist_add(bn_hist *into, const bn_hist *h)
{
    for (size_t i = 0; i < BN_HIST_N; i++)
        into->counts[i] += h->counts[i];
    if (h->total && (into->total == 0 || h->min < into->min))
        into->min = h->min;
    if (h->max > into->max)
        into->max = h->max;
    into->total += h->total;
    into->sum += h->sum;
}

static json_t *machine_json(void)
{
    char model[256] = "", line[512];
    long long mem_kb = 0;
    FILE *fp = fopen("/proc/cpuinfo", "r");
    while (fp && fgets(line, sizeof line, fp)) {
        char *colon = strchr(line, ':');
        if (strncmp(line, "model name", 10) == 0 && colon) {
            snprintf(model, sizeof model, "%s", colon + 2);
            model[strcspn(model, "\n")] = '\0';
            break;
        }
    }
    if (fp)
        fclose(fp);
    fp = fopen("/proc/meminfo", "r");
    while (fp && fgets(line, sizeof line, fp))
        if (sscanf(line, "MemTotal: %lld kB", &mem_kb) == 1)
            break;
    if (fp)
        fclose(fp);
    struct utsname u;
    if (uname(&u) < 0)
        snprintf(u.release, sizeof u.release, "unknown");
    return json_pack("{s:i,s:s,s:I,s:s}", "cpus", (int)sysconf(_SC_NPROCESSORS_ONLN), "cpu_model",
                     model, "mem_total_mib", (json_int_t)(mem_kb / 1024), "kernel", u.release);
}

/* used_memory and the keys of every database; -1 when unread. */
static void redis_read(const bn_opts *o, long long *mem, long long *keys)
{
    vtn_buf b;
    *mem = *keys = -1;
    if (!o->have_redis)
        return;
    vtn_buf_init(&b, 1 << 20);
    if (bn_redis_inline(&o->redis_addr, "INFO memory", &b) == 0)
        *mem = bn_info_field(b.data, b.len, "used_memory");
    if (bn_redis_inline(&o->redis_addr, "INFO keyspace", &b) == 0) {
        *keys = 0;
        for (const char *p = b.data; p && (p = strstr(p, "keys=")) != NULL; p += 5)
            *keys += atoll(p + 5);
    }
    vtn_buf_free(&b);
}

static json_t *processes_json(const fl_run *f)
{
    json_t *j = json_object();
    for (int i = 0; i < f->o->nprocs; i++) {
        const bn_proc *p = &f->o->procs[i];
        json_t *r = json_object_get(j, p->role);
        if (r == NULL) {
            r = json_pack("{s:[],s:f,s:f,s:f,s:I,s:I}", "pids", "cpu_s", 0.0, "cpu_user_s", 0.0,
                          "cpu_sys_s", 0.0, "peak_rss_kib", (json_int_t)0, "ctx_switches",
                          (json_int_t)0);
            json_object_set_new(j, p->role, r);
        }
        json_array_append_new(json_object_get(r, "pids"), json_integer(p->pid));
        const bn_proc_usage *a = &f->use0[i], *b = &f->use1[i];
        if (p->gone || b->utime < a->utime || b->stime < a->stime) {
            json_object_set_new(r, "gone", json_true()); /* exited (or restarted) in the run */
            continue;
        }
        double us = ticks_s(b->utime - a->utime), ss = ticks_s(b->stime - a->stime);
#define ADD(k, v) json_object_set_new(r, k, json_real(json_real_value(json_object_get(r, k)) + (v)))
        ADD("cpu_s", us + ss);
        ADD("cpu_user_s", us);
        ADD("cpu_sys_s", ss);
#undef ADD
        json_object_set_new(r, "peak_rss_kib",
                            json_integer(json_integer_value(json_object_get(r, "peak_rss_kib")) +
                                         (json_int_t)b->hwm_kb));
        json_object_set_new(r, "ctx_switches",
                            json_integer(json_integer_value(json_object_get(r, "ctx_switches")) +
                                         (json_int_t)(b->ctx - a->ctx)));
    }
    return j;
}

static int count_role(const bn_opts *o, const char *role)
{
    int n = 0;
    for (int i = 0; i < o->nprocs; i++)
        n += strcmp(o->procs[i].role, role) == 0;
    return n;
}

/* Errors by kind; push_* are the VTN's pushes the VENs' endpoint could not
 * take (a handshake, a request, a connection over the cap), absent without
 * push VENs. */
static json_t *errors_json(const fl_run *f, uint64_t *total)
{
    const bn_result *r = f->res;
    uint64_t x5 = 0, x4 = 0, oadr = 0, to = 0, conn = 0, tls = 0, io = 0, other = 0;
    for (int i = 0; all_counts(r, i); i++) {
        const bn_counts *k = all_counts(r, i);
        x5 += k->status[5];
        x4 += k->status[4];
        other += k->http - k->status[5] - k->status[4];
        oadr += k->oadr;
        to += k->timeouts;
        conn += k->conn;
        tls += k->tls;
        io += k->io;
    }
    *total = x5 + x4 + other + oadr + to + conn + tls + io;
    json_t *j =
        json_pack("{s:I,s:{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}}", "total", (json_int_t)*total,
                  "by_kind", "http_5xx", (json_int_t)x5, "http_4xx", (json_int_t)x4, "http_other",
                  (json_int_t)other, "oadr", (json_int_t)oadr, "timeout", (json_int_t)to, "connect",
                  (json_int_t)conn, "tls", (json_int_t)tls, "closed", (json_int_t)io);
    if (f->o->push_vens) { /* the endpoint is stopped by now: its last figures */
        const bn_push_stats *p = &f->push1;
        json_t *by = json_object_get(j, "by_kind");
        json_object_set_new(by, "push_tls", json_integer((json_int_t)p->err_tls));
        json_object_set_new(by, "push_request",
                            json_integer((json_int_t)(p->err_request + p->err_too_large)));
        json_object_set_new(by, "push_refused", json_integer((json_int_t)p->err_refused));
        *total += p->err_tls + p->err_request + p->err_too_large + p->err_refused;
        json_object_set_new(j, "total", json_integer((json_int_t)*total));
    }
    return j;
}

static const char *identity(const fl_cfg *cfg, uint32_t vens, char *buf, size_t len)
{
    if (!cfg->tls)
        return "none";
    /* minted certificates, like a %d pattern, are one per index */
    if (!*cfg->mint_ca && !bn_tls_path_is_pattern(cfg->cert))
        snprintf(buf, len, "pool:1");
    else if (cfg->cert_pool == 0 || (uint64_t)cfg->cert_pool >= vens)
        snprintf(buf, len, "own");
    else
        snprintf(buf, len, "pool:%lld", cfg->cert_pool);
    return buf;
}

static json_t *build_json(const fl_run *f, const char *started, long long mem0, long long keys0,
                          long long mem1, long long keys1, uint64_t *errs)
{
    const fl_cfg *cfg = f->cfg;
    const bn_opts *o = f->o;
    const bn_result *r = f->res;
    char idbuf[32];
    double secs = f->sc->storm ? r->reg_seconds : r->seconds;
    json_t *j = json_object();
    json_object_set_new(j, "schema", json_string("openvtn-bench/1"));
    json_object_set_new(j, "scenario", json_string(f->sc->name));
    json_object_set_new(j, "started_at", json_string(started));
    json_object_set_new(j, "duration_s", json_real(secs));
    json_object_set_new(j, "machine", machine_json());
    json_object_set_new(j, "target",
                        json_pack("{s:s,s:b,s:b}", "address", o->host, "tls", cfg->tls, "local",
                                  bn_addr_is_loopback(&o->addr)));
    json_object_set_new(
        j, "config",
        json_pack("{s:i,s:s,s:f,s:f,s:b,s:f,s:f,s:f,s:f,s:i,s:i,s:i,s:i}", "vens", (int)o->vens,
                  "identity", identity(cfg, o->vens, idbuf, sizeof idbuf), "poll_interval_s",
                  o->rate > 0 ? 1.0 / o->rate : 0.0, "poll_jitter", o->jitter, "closed_loop",
                  o->rate == 0, "resumption_share", o->resume_share, "opt_in_share",
                  o->opt_in_share, "report_back_s", (double)o->report_back_ns / 1e9, "push_share",
                  f->push_share, "workers", count_role(o, "worker"), "gateways",
                  count_role(o, "gateway") ? count_role(o, "gateway") : 1, "intervals",
                  (int)o->intervals, "ramp", (int)o->ramp));
    /* what was done in the measured phase, as the CPU in processes */
    const bn_result *a = &f->at0;
    uint64_t full = (r->handshakes - r->resumed) - (a->handshakes - a->resumed);
    json_t *ops = json_object();
    json_object_set_new(ops, "poll", op_json(r->poll.ok - a->poll.ok, secs));
    json_object_set_new(ops, "register", op_json(r->reg.ok - a->reg.ok, secs));
    json_object_set_new(ops, "handshake", op_json(full, secs));
    json_object_set_new(ops, "resumption", op_json(r->resumed - a->resumed, secs));
    json_object_set_new(ops, "register_report", op_json(r->rep_ready - a->rep_ready, secs));
    json_object_set_new(ops, "update_report", op_json(r->upd.ok - a->upd.ok, secs));
    json_object_set_new(ops, "report_interval", op_json(r->intervals_ok - a->intervals_ok, secs));
    json_object_set_new(ops, "event_delivery", op_json(r->deliveries - a->deliveries, secs));
    json_object_set_new(ops, "created_event", op_json(r->created.ok - a->created.ok, secs));
    json_object_set_new(ops, "push", op_json(f->push1.pushes - f->push0.pushes, secs));
    json_object_set_new(j, "ops", ops);
    bn_hist *all = calloc(1, sizeof *all);
    if (all) {
        bn_hist_init(all);
        if (f->sc->storm) {
            hist_add(all, r->reg_hist);
        } else {
            hist_add(all, r->poll_hist);
            hist_add(all, r->upd_hist);
        }
        json_object_set_new(j, "latency_ms", hist_json(all));
        free(all);
    }
    json_t *by = json_object();
    if (r->poll_hist->total)
        json_object_set_new(by, "poll", hist_json(r->poll_hist));
    if (r->reg_hist->total)
        json_object_set_new(by, "register", hist_json(r->reg_hist));
    if (r->upd_hist->total)
        json_object_set_new(by, "update_report", hist_json(r->upd_hist));
    json_object_set_new(j, "latency_by_op_ms", by);
    json_object_set_new(j, "errors", errors_json(f, errs));
    if (o->nprocs && f->have_use0 && f->have_use1 && bn_addr_is_loopback(&o->addr))
        json_object_set_new(j, "processes", processes_json(f));
    if (mem0 >= 0 && mem1 >= 0) {
        double n = r->registered ? (double)r->registered : 1;
        json_object_set_new(j, "redis",
                            json_pack("{s:I,s:I,s:I,s:I,s:f,s:f}", "used_memory_start",
                                      (json_int_t)mem0, "used_memory_end", (json_int_t)mem1,
                                      "keys_start", (json_int_t)keys0, "keys_end",
                                      (json_int_t)keys1, "bytes_per_ven", (double)(mem1 - mem0) / n,
                                      "keys_per_ven", (double)(keys1 - keys0) / n));
    }
    struct rusage ru;
    struct rlimit rl;
    getrusage(RUSAGE_SELF, &ru);
    getrlimit(RLIMIT_NOFILE, &rl);
    double self = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
                  (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
    json_t *bj =
        json_pack("{s:f,s:I,s:I,s:f,s:s,s:I}", "cpu_s", self, "peak_rss_kib",
                  (json_int_t)ru.ru_maxrss, "rlimit_nofile", (json_int_t)rl.rlim_cur,
                  "rss_kib_per_ven", o->vens ? (double)ru.ru_maxrss / o->vens : 0.0, "connection",
                  o->per_poll ? "per-poll" : "keep-alive", "peak_open", (json_int_t)r->peak_open);
    if (o->tls && bn_tls_ctx_mint_seconds(o->tls) > 0) {
        /* certificates minted at start (--mint-ca): how long, how many a second */
        double ms = bn_tls_ctx_mint_seconds(o->tls);
        uint32_t n = o->cert_pool ? o->cert_pool : o->vens;
        json_object_set_new(bj, "mint_s", json_real(ms));
        json_object_set_new(bj, "mint_per_s", json_real(n / ms));
    }
    if (o->per_poll)
        json_object_set_new(bj, "max_open", json_integer(o->max_open));
    json_object_set_new(j, "bench", bj);
    json_t *sr = json_object();
    json_object_set_new(sr, "vens", json_integer(o->vens));
    json_object_set_new(sr, "registered", json_integer(r->registered));
    json_object_set_new(sr, "reconnects", json_integer((json_int_t)r->reconnects));
    json_object_set_new(sr, "handshakes", json_integer((json_int_t)r->handshakes));
    json_object_set_new(sr, "registration_s", json_real(r->reg_seconds));
    json_object_set_new(sr, "interrupted", json_boolean(r->interrupted));
    f->sc->result(f, sr);
    json_object_set_new(j, "scenario_result", sr);
    json_object_set_new(j, "timeline", json_incref(f->timeline));
    return j;
}

/* ---- the summary for people ------------------------------------------------ */

static void print_summary(const fl_run *f, const json_t *j)
{
    const bn_result *r = f->res;
    const bn_opts *o = f->o;
    const json_t *cfg = json_object_get(j, "config");
    const json_t *lat = json_object_get(j, "latency_ms");
    const json_t *err = json_object_get(j, "errors");
    const json_t *sr = json_object_get(j, "scenario_result");
    printf("scenario         %s: %s\n", f->sc->name, f->sc->measures);
    printf("fleet            %" PRIu32 " VENs, %s, identity %s, %s\n", o->vens,
           f->cfg->tls ? "mutual TLS" : "plain HTTP",
           json_string_value(json_object_get(cfg, "identity")),
           o->rate > 0 ? "open loop" : "closed loop");
    if (o->rate > 0)
        printf("polling          every %.1f s ± %.0f %%\n", 1.0 / o->rate, o->jitter * 100);
    printf("registration     %" PRIu32 " registered, %" PRIu32 " gave up, %.2f s, %" PRIu64
           " attempts (max %" PRIu32 " by one VEN), %" PRIu64 " refused with 5xx\n",
           r->registered, r->reg_failed, r->reg_seconds, r->reg_attempts, r->reg_max_attempts,
           r->reg.status[5]);
    printf("measured phase   %.2f s\n", f->sc->storm ? r->reg_seconds : r->seconds);
    printf("TLS              %" PRIu64 " handshakes (%" PRIu64 " resumed)%s%s\n", r->handshakes,
           r->resumed, r->tls_desc[0] ? ", " : "", r->tls_desc);
    printf("requests         polls %" PRIu64 " OK, updates %" PRIu64 " OK (%" PRIu64
           " intervals), oadrCreatedEvent %" PRIu64 " OK, oadrCreatedReport %" PRIu64
           " OK, events received %" PRIu64 " (opted out %" PRIu64 ")\n",
           r->poll.ok, r->upd.ok, r->intervals_ok, r->created.ok, r->creport.ok, r->deliveries,
           r->opted_out);
    if (lat)
        printf("latency          p50 %.2f ms, p90 %.2f, p99 %.2f, p99.9 %.2f, max %.2f (%s)\n",
               json_real_value(json_object_get(lat, "p50")),
               json_real_value(json_object_get(lat, "p90")),
               json_real_value(json_object_get(lat, "p99")),
               json_real_value(json_object_get(lat, "p999")),
               json_real_value(json_object_get(lat, "max")),
               f->sc->storm ? "registrations" : "polls and updates");
    char *e = json_dumps(json_object_get(err, "by_kind"), JSON_COMPACT);
    printf("errors           %" JSON_INTEGER_FORMAT " %s\n",
           json_integer_value(json_object_get(err, "total")), e ? e : "");
    free(e);
    static const char *const kinds[] = {"registration",     "poll",
                                        "report exchange",  "oadrCreatedEvent",
                                        "oadrUpdateReport", "oadrCreatedReport"};
    for (int i = 0; all_counts(r, i); i++)
        if (bn_counts_errors(all_counts(r, i)))
            printf("  in %-12s %" PRIu64 " of %" PRIu64 " (HTTP %" PRIu64 ", responseCode %" PRIu64
                   ", timeouts %" PRIu64 ", connection %" PRIu64 ", I/O %" PRIu64 ", TLS %" PRIu64
                   ")\n",
                   kinds[i], bn_counts_errors(all_counts(r, i)), all_counts(r, i)->sent,
                   all_counts(r, i)->http, all_counts(r, i)->oadr, all_counts(r, i)->timeouts,
                   all_counts(r, i)->conn, all_counts(r, i)->io, all_counts(r, i)->tls);
    printf("reconnects       %" PRIu64 "\n", r->reconnects);
    if (f->o->push_vens) { /* the endpoint is stopped by now: its last figures */
        const bn_push_stats *p = &f->push1;
        printf("push             %" PRIu32 " push VENs (%" PRIu32 " venIDs told), %" PRIu64
               " pushes answered (oadrDistributeEvent %" PRIu64 ", oadrRegisterReport %" PRIu64
               ", oadrCreateReport %" PRIu64 ", other %" PRIu64 "), %" PRIu64
               " connections (at most %" PRIu32 " open)\n",
               o->push_vens, p->known, p->pushes, p->distribute, p->register_report,
               p->create_report, p->other, p->conns, p->open_max);
        if (f->push_ev[0]) {
            char cov[2][96];
            const uint64_t *c[2] = {p->cov_recv, p->cov_ans};
            for (int i = 0; i < 2; i++)
                snprintf(cov[i], sizeof cov[i], "p50 %.2f s, p99 %.2f s, p100 %.2f s",
                         c[i][0] == BN_NEVER ? -1 : (double)c[i][0] / 1e9,
                         c[i][1] == BN_NEVER ? -1 : (double)c[i][1] / 1e9,
                         c[i][2] == BN_NEVER ? -1 : (double)c[i][2] / 1e9);
            if (f->cfg->push_unreachable)
                printf("unreachable      %lld push VENs went away at the event (%" PRIu64
                       " pushes to them dropped); the figures below are the others'\n",
                       f->cfg->push_unreachable, p->dropped);
            printf("push event       targeted %" PRIu32 " push VENs (those whose venID a push "
                   "told by then)\n",
                   f->push_targeted);
            printf("push event       created in %.1f ms; received by %" PRIu32 " (%s), answered by "
                   "%" PRIu32 " (%s); the VTN recorded %lld answers (-1: never)\n",
                   f->push_create_ms, p->received, cov[0], p->answered, cov[1], f->push_recorded);
        }
    }
    const json_t *pr = json_object_get(j, "processes");
    if (pr) {
        const char *role;
        json_t *v;
        printf("VTN CPU          ");
        json_object_foreach((json_t *)pr, role, v)
        {
            if (json_is_true(json_object_get(v, "gone")))
                printf("%s exited or restarted (not measured)  ", role);
            else
                printf("%s %.2f s (peak RSS %" JSON_INTEGER_FORMAT " KiB)  ", role,
                       json_real_value(json_object_get(v, "cpu_s")),
                       json_integer_value(json_object_get(v, "peak_rss_kib")));
        }
        printf("\n");
    } else {
        printf("VTN CPU          not measured (the VTN is not local or --pids was not given)\n");
    }
    const json_t *rd = json_object_get(j, "redis");
    if (rd)
        printf("redis            %.0f bytes and %.2f keys per VEN\n",
               json_real_value(json_object_get(rd, "bytes_per_ven")),
               json_real_value(json_object_get(rd, "keys_per_ven")));
    const json_t *b = json_object_get(j, "bench");
    printf("bench            CPU %.2f s, peak RSS %" JSON_INTEGER_FORMAT
           " KiB (%.1f KiB per VEN), %s connections, at most %" JSON_INTEGER_FORMAT
           " open at once\n",
           json_real_value(json_object_get(b, "cpu_s")),
           json_integer_value(json_object_get(b, "peak_rss_kib")),
           json_real_value(json_object_get(b, "rss_kib_per_ven")),
           json_string_value(json_object_get(b, "connection")),
           json_integer_value(json_object_get(b, "peak_open")));
    if (json_object_get(b, "mint_s"))
        printf("certificates     minted in %.2f s (%.0f a second)\n",
               json_real_value(json_object_get(b, "mint_s")),
               json_real_value(json_object_get(b, "mint_per_s")));
    char *s = json_dumps(sr, JSON_COMPACT);
    printf("result           %s\n", s ? s : "");
    free(s);
}

/* ---- setting up ------------------------------------------------------------ */

static int parse_share(const char *name, const char *s, double max, double *out)
{
    char *end;
    errno = 0;
    *out = strtod(s, &end);
    if (*s == '\0' || *end != '\0' || errno || !isfinite(*out) || *out < 0 || *out > max) {
        fprintf(stderr, "vtn-bench fleet: %s: \"%s\" is not a number in [0, %g]\n", name, s, max);
        return -EINVAL;
    }
    return 0;
}

/* Raises the soft descriptor limit to what the fleet needs, up to the hard
 * one: keep-alive, one connection per VEN; per-poll, the connections open at
 * once, which --max-open bounds; plus extra (the push endpoint's
 * connections). */
static int fd_limit(const bn_opts *o, uint32_t extra)
{
    struct rlimit rl;
    uint32_t conns = o->per_poll && o->max_open < o->vens ? o->max_open : o->vens;
    rlim_t need = (rlim_t)conns + extra + FL_FD_SPARE;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return 0;
    if (rl.rlim_cur >= need)
        return 0;
    rlim_t want = rl.rlim_max;
    if (want != RLIM_INFINITY && want < need && o->per_poll) {
        fprintf(stderr,
                "vtn-bench fleet: --max-open %" PRIu32 " needs %llu file descriptors (one per "
                "open connection, plus %" PRIu32 "); the hard limit RLIMIT_NOFILE is %llu: lower "
                "--max-open or raise the limit (ulimit -Hn, LimitNOFILE=)\n",
                conns, (unsigned long long)need, extra + FL_FD_SPARE,
                (unsigned long long)rl.rlim_max);
        return -EMFILE;
    }
    if (want != RLIM_INFINITY && want < need) {
        fprintf(stderr,
                "vtn-bench fleet: %" PRIu32 " VENs need %llu file descriptors (one connection "
                "each, plus %" PRIu32 "); the hard limit RLIMIT_NOFILE is %llu: raise it "
                "(ulimit -Hn, LimitNOFILE=), run fewer VENs or use --connection per-poll\n",
                o->vens, (unsigned long long)need, extra + FL_FD_SPARE,
                (unsigned long long)rl.rlim_max);
        return -EMFILE;
    }
    rl.rlim_cur = want;
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
        fprintf(stderr, "vtn-bench fleet: cannot raise RLIMIT_NOFILE to %llu: %s\n",
                (unsigned long long)want, strerror(errno));
        return -EMFILE;
    }
    return 0;
}

static int loopback_or_allowed(const fl_cfg *cfg, const struct sockaddr_storage *a,
                               const char *what)
{
    if (cfg->allow_remote || bn_addr_is_loopback(a))
        return 0;
    fprintf(stderr,
            "vtn-bench fleet: %s is not a loopback address; a run against another host needs "
            "--allow-remote\n",
            what);
    return -EINVAL;
}

static int make_tls(const fl_cfg *cfg, bn_opts *o, bn_tls_ctx **tls)
{
    bn_tls_opts to;
    char err[512];
    memset(&to, 0, sizeof to);
    to.cert = cfg->cert;
    to.key = cfg->key;
    to.ca = cfg->ca;
    to.insecure = cfg->insecure;
    to.ciphers = BN_TLS_DEFAULT_CIPHERS;
    to.groups = "";
    to.tls13 = cfg->tls13;
    to.resume = o->resume_share > 0;
    to.mint_ca = cfg->mint_ca;
    bn_addr_ip(&o->addr, to.verify_ip, sizeof to.verify_ip);
    if (*cfg->mint_ca)
        fprintf(stderr, "vtn-bench fleet: minting the VENs' certificates\n");
    uint32_t ncerts = cfg->cert_pool > 0 && (uint64_t)cfg->cert_pool < o->vens
                          ? (uint32_t)cfg->cert_pool
                          : o->vens;
    if (bn_tls_ctx_new(&to, ncerts, tls, err, sizeof err) < 0) {
        fprintf(stderr, "vtn-bench fleet: %s\n", err);
        return -EINVAL;
    }
    o->tls = *tls;
    o->cert_pool = ncerts < o->vens ? ncerts : 0;
    return 0;
}

/* The options of the scenario for the engine. 0 or -EINVAL (message printed). */
static int setup(const fl_cfg *cfg, const fl_scenario *sc, bn_opts *o, double *push_share)
{
    double push;
    int is_push = strcmp(sc->name, "push") == 0;
    o->mode = BN_MODE_FLEET;
    vtn_addr_parse(cfg->target, &o->addr);
    if (loopback_or_allowed(cfg, &o->addr, cfg->target) < 0)
        return -EINVAL;
    vtn_addr_format((struct sockaddr *)&o->addr, o->host, sizeof o->host);
    o->vens = cfg->vens ? (uint32_t)cfg->vens : sc->vens;
    o->connections = o->vens;
    long long interval = cfg->poll_interval_ms ? cfg->poll_interval_ms : sc->interval_ms;
    o->rate = cfg->closed_loop ? 0 : 1000.0 / (double)interval;
    if (cfg->closed_loop && strcmp(sc->name, "poll") != 0) {
        fprintf(stderr, "vtn-bench fleet: --closed-loop belongs to the poll scenario\n");
        return -EINVAL;
    }
    if (parse_share("--resumption-share", cfg->resumption_share, 1, &o->resume_share) < 0)
        return -EINVAL;
    if (cfg->resume)
        o->resume_share = 1;
    if (parse_share("--poll-jitter", cfg->poll_jitter, 0.9, &o->jitter) < 0 ||
        parse_share("--opt-in-share", cfg->opt_in_share, 1, &o->opt_in_share) < 0 ||
        parse_share("--push-share", cfg->push_share, 1, &push) < 0)
        return -EINVAL;
    if (is_push && push == 0)
        push = 1;
    if (push > 0 && sc->events) {
        /* their events come by push, which the events' follow-up (by polls) does not see */
        fprintf(stderr, "vtn-bench fleet: --push-share: push VENs run in the push, poll, "
                        "register-storm and report-ingest scenarios only\n");
        return -EINVAL;
    }
    *push_share = push;
    if (push > 0 && cfg->cert_pool && cfg->cert_pool < (cfg->vens ? cfg->vens : sc->vens)) {
        /* the VENs of one certificate are one VEN to the VTN, with one transportAddress */
        fprintf(stderr, "vtn-bench fleet: --push-share needs a certificate per VEN (no "
                        "--cert-pool smaller than --vens) or plain HTTP\n");
        return -EINVAL;
    }
    if (cfg->push_unreachable &&
        (!is_push ||
         (double)cfg->push_unreachable >= push * (double)(cfg->vens ? cfg->vens : sc->vens))) {
        fprintf(stderr, "vtn-bench fleet: --push-unreachable: push scenario only, fewer than the "
                        "push VENs\n");
        return -EINVAL;
    }
    o->push_vens = (uint32_t)(push * (double)(cfg->vens ? cfg->vens : sc->vens) + 0.5);
    if (strcmp(cfg->connection, "per-poll") == 0) {
        o->per_poll = 1;
    } else if (strcmp(cfg->connection, "keep-alive") != 0) {
        fprintf(stderr, "vtn-bench fleet: --connection: keep-alive or per-poll, not \"%s\"\n",
                cfg->connection);
        return -EINVAL;
    }
    o->max_open = (uint32_t)cfg->max_open;
    if (o->per_poll && cfg->closed_loop) {
        fprintf(stderr, "vtn-bench fleet: --closed-loop polls without a pause: per-poll "
                        "connections need an interval\n");
        return -EINVAL;
    }
    o->answer = 1;
    o->fleet_reports = 1;
    long long back = cfg->report_back_ms ? cfg->report_back_ms : sc->report_back_ms;
    o->report_back_ns = (uint64_t)back * 1000000ull;
    o->intervals = cfg->intervals ? (uint32_t)cfg->intervals : sc->intervals;
    o->storm = sc->storm;
    o->ramp = cfg->ramp ? (uint32_t)cfg->ramp : sc->storm ? o->vens : 256;
    o->retry_base_ns = (uint64_t)cfg->retry_base_ms * 1000000ull;
    o->retry_cap_ns = (uint64_t)cfg->retry_cap_ms * 1000000ull;
    o->timeout_ns = (uint64_t)cfg->timeout_ms * 1000000ull;
    o->register_timeout_ns = (uint64_t)cfg->register_timeout_ms * 1000000ull;
    o->duration_ns = (uint64_t)(cfg->duration_ms ? cfg->duration_ms : sc->duration_ms) * 1000000ull;
    o->max_requests = UINT64_MAX;
    if (sc->events) {
        o->events = cfg->events ? (uint32_t)cfg->events : sc->events;
        o->groups = 1;
        o->settle_ns = (uint64_t)interval * 1000000ull + 1000000000ull;
        /* utility-day follows the events until its end */
        o->follow_ns = (uint64_t)cfg->follow_ms * 1000000ull;
        if (o->duration_ns && o->follow_ns > o->duration_ns)
            o->follow_ns = o->duration_ns;
        o->start_s = 3600;
        if (o->duration_ns && o->duration_ns <= o->settle_ns) {
            fprintf(stderr, "vtn-bench fleet: --duration must be longer than one poll interval "
                            "+ 1 s (the events are created then)\n");
            return -EINVAL;
        }
    }
    if (is_push) {
        o->groups = 1; /* the event targets group 0 (bn_event_body), the push VENs */
        o->start_s = 3600;
    }
    if (sc->events || is_push) {
        if (!*cfg->api || vtn_addr_parse(cfg->api, &o->api_addr) < 0 || !*cfg->api_token) {
            fprintf(stderr,
                    "vtn-bench fleet: --scenario %s needs --api host:port and "
                    "--api-token (the management API)\n",
                    sc->name);
            return -EINVAL;
        }
        if (loopback_or_allowed(cfg, &o->api_addr, cfg->api) < 0)
            return -EINVAL;
        vtn_addr_format((struct sockaddr *)&o->api_addr, o->api_host, sizeof o->api_host);
        o->api_token = cfg->api_token;
    }
    if (!*cfg->restart_cmd && strcmp(sc->name, "utility-day") == 0)
        fprintf(stderr, "vtn-bench fleet: utility-day without --restart-cmd: no gateway restart "
                        "in the middle\n");
    if (*cfg->restart_cmd && strcmp(sc->name, "utility-day") != 0) {
        fprintf(stderr, "vtn-bench fleet: --restart-cmd belongs to utility-day\n");
        return -EINVAL;
    }
    if (*cfg->redis) {
        if (vtn_addr_parse(cfg->redis, &o->redis_addr) < 0) {
            fprintf(stderr, "vtn-bench fleet: --redis: \"%s\" is not host:port\n", cfg->redis);
            return -EINVAL;
        }
        if (loopback_or_allowed(cfg, &o->redis_addr, cfg->redis) < 0)
            return -EINVAL;
        o->have_redis = 1;
    }
    if (!cfg->tls && (*cfg->cert || *cfg->key || *cfg->ca || cfg->insecure || cfg->tls13 ||
                      o->resume_share > 0 || cfg->cert_pool || *cfg->mint_ca)) {
        fprintf(stderr, "vtn-bench fleet: --cert, --key, --mint-ca, --ca, --insecure, --tls13, "
                        "--resume, --resumption-share and --cert-pool need --tls\n");
        return -EINVAL;
    }
    if (sc->storm && !cfg->tls)
        fprintf(stderr, "vtn-bench fleet: warning: register-storm without --tls leaves the "
                        "handshakes out\n");
    if (bn_run_id(cfg->run_id, o->run_id, sizeof o->run_id) < 0) {
        fprintf(stderr, "vtn-bench fleet: --run: \"%s\" must be 1-24 of [A-Za-z0-9_-]\n",
                cfg->run_id);
        return -EINVAL;
    }
    return 0;
}

static int write_json(const char *path, const json_t *j)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return -ENAMETOOLONG;
    if (json_dump_file(j, tmp, JSON_INDENT(1)) < 0)
        return -EIO;
    if (rename(tmp, path) < 0) {
        int e = -errno;
        unlink(tmp);
        return e;
    }
    return 0;
}

/* The SVG comes from the renderer that reads the JSON file (bn_svg.c), when
 * this build has it. */
static void draw_svg(const fl_cfg *cfg)
{
    if (!*cfg->svg)
        return;
#ifdef BN_HAVE_SVG
    char err[256];
    if (!*cfg->out) {
        fprintf(stderr, "vtn-bench fleet: --svg needs --out (the SVG is drawn from the JSON)\n");
        return;
    }
    if (bn_svg_from_json(cfg->out, cfg->svg, err, sizeof err) < 0)
        fprintf(stderr, "vtn-bench fleet: --svg: %s\n", err);
#else
    fprintf(stderr, "vtn-bench fleet: --svg: not built (this build has no SVG renderer)\n");
#endif
}

int bn_fleet_main(int argc, char **argv)
{
    fl_cfg cfg;
    bn_opts o;
    bn_proc procs[BN_MAX_PIDS];
    bn_tls_ctx *tls = NULL;
    char err[512];
    int status = 2;
    memset(&cfg, 0, sizeof cfg);
    memset(&o, 0, sizeof o);
    int rc = vtn_config_start(
        fl_items, NFL, &cfg, argc, argv, "vtn-bench fleet",
        "A fleet of simulated VENs, each on its own connection (and TLS handshake), living the "
        "life of a real\none: it registers (retrying with backoff), registers its report, polls "
        "at an interval with jitter,\nanswers events (optIn/optOut) and report requests, sends "
        "its updates and reconnects after a lost\nconnection. --scenario picks what is measured; "
        "--out writes the JSON file vtn-bench plan reads.");
    if (rc >= 0)
        return rc;
    const fl_scenario *sc = NULL;
    for (size_t i = 0; i < NSCEN; i++)
        if (strcmp(scenarios[i].name, cfg.scenario) == 0)
            sc = &scenarios[i];
    if (sc == NULL) {
        fprintf(stderr, "vtn-bench fleet: --scenario: \"%s\" is none of", cfg.scenario);
        for (size_t i = 0; i < NSCEN; i++)
            fprintf(stderr, " %s", scenarios[i].name);
        fprintf(stderr, "\n");
        goto out;
    }
    if (!sc->built) {
        fprintf(stderr, "vtn-bench fleet: --scenario %s: not built yet (%s)\n", sc->name,
                sc->measures);
        goto out;
    }
    double push_share = 0;
    if (setup(&cfg, sc, &o, &push_share) < 0)
        goto out;
    rc = bn_pids_parse(cfg.pids, procs, BN_MAX_PIDS, err, sizeof err);
    if (rc < 0) {
        fprintf(stderr, "vtn-bench fleet: %s\n", err);
        goto out;
    }
    o.procs = procs;
    o.nprocs = rc;
    if (o.vens == 0) {
        fprintf(stderr, "vtn-bench fleet: --vens must be at least 1\n");
        goto out;
    }
    status = 1;
    if (fd_limit(&o, 0) < 0)
        goto out;
    if (cfg.tls && make_tls(&cfg, &o, &tls) < 0)
        goto out;

    fl_run f;
    memset(&f, 0, sizeof f);
    f.cfg = &cfg;
    f.sc = sc;
    f.o = &o;
    f.timeline = json_array();
    f.measure_t0 = -1;
    f.restart_t = -1;
    f.back_s = -1;
    f.push_share = push_share;
    f.push_recorded = -1;
    if (o.push_vens) {
        bn_push_opts po = {cfg.push_cert,
                           cfg.push_key,
                           cfg.push_ca,
                           o.push_vens,
                           cfg.push_max_conns ? (uint32_t)cfg.push_max_conns : o.push_vens + 64,
                           o.opt_in_share,
                           cfg.push_close,
                           (uint32_t)cfg.push_unreachable};
        err[0] = '\0';
        if (fd_limit(&o, po.max_conns) < 0 || bn_pushsrv_start(&po, &f.push, err, sizeof err) < 0) {
            if (err[0])
                fprintf(stderr, "vtn-bench fleet: %s\n", err);
            json_decref(f.timeline);
            goto out;
        }
        o.push_url = bn_pushsrv_url(f.push);
    }
    if (o.events || f.push)
        bn_api_init(&f.api, &o.api_addr, o.api_host, o.api_token, o.timeout_ns / 1000000u);
    else
        f.api.fd = -1;
    o.tick = fl_tick;
    o.on_measure = fl_measure;
    o.tick_arg = &f;
    char started[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(started, sizeof started, "%Y-%m-%dT%H:%M:%SZ", &tm);
    long long mem0, keys0, mem1, keys1;
    redis_read(&o, &mem0, &keys0);
    fprintf(stderr,
            "vtn-bench fleet: %s, %" PRIu32 " VENs against %s (%s), run %s; %d processes "
            "watched\n",
            sc->name, o.vens, o.host, cfg.tls ? "TLS" : "plain HTTP", o.run_id, o.nprocs);

    /* The hard cap: whatever the target does, this process ends. */
    unsigned cap =
        (unsigned)((cfg.register_timeout_ms + cfg.timeout_ms * 2 +
                    (long long)(o.duration_ns / 1000000u) + (long long)(o.settle_ns / 1000000u) +
                    (long long)(o.follow_ns / 1000000u)) /
                       1000 +
                   60);
    bn_hard_cap(cap);
    bn_result res;
    f.res = &res;
    rc = bn_run(&o, &res);
    alarm(0);
    if (f.push && !f.have_use1)
        bn_pushsrv_stats(f.push, &f.push1); /* the run ended before its measured phase */
    if (f.push && strcmp(sc->name, "push") == 0)
        push_participation(&f);
    bn_pushsrv_stop(&f.push);
    if (rc < 0) {
        fprintf(stderr, "vtn-bench fleet: cannot start: %s\n", strerror(-rc));
        json_decref(f.timeline);
        goto out;
    }
    redis_read(&o, &mem1, &keys1);
    uint64_t errs = 0;
    json_t *j = build_json(&f, started, mem0, keys0, mem1, keys1, &errs);
    print_summary(&f, j);
    fflush(stdout);
    if (*cfg.out) {
        rc = write_json(cfg.out, j);
        if (rc < 0)
            fprintf(stderr, "vtn-bench fleet: --out %s: %s\n", cfg.out, strerror(-rc));
    }
    draw_svg(&cfg);
    /* A storm's refusals, timeouts and lost connections are what it measures
     * (it passes when every VEN got in), a restart's what utility-day shows;
     * anything else that failed is an error. */
    uint64_t expected = sc->storm ? errs : f.restart_t >= 0 ? errs - f.err_before : 0;
    int day = strcmp(sc->name, "utility-day") == 0;
    uint32_t reach_off = (uint32_t)cfg.push_unreachable; /* push VENs that went away on purpose */
    int ok =
        res.registered == o.vens && errs <= expected && !res.interrupted && rc == 0 &&
        !res.setup_error[0] && (!sc->events || res.late == 0) &&
        (strcmp(sc->name, "push") != 0 ||
         (f.push_targeted == o.push_vens && f.push1.received == o.push_vens - reach_off &&
          f.push1.answered == o.push_vens - reach_off && !f.push_error[0])) &&
        (!day ||
         (f.modified == 1 && f.cancelled == 1 && !f.day_error[0] &&
          (f.restart_t < 0 || (f.restart_pid == 0 && f.restart_status == 0 && f.back_s >= 0))));
    if (!ok)
        printf("WARNING          not every VEN registered, or requests failed: not a capacity "
               "measurement\n");
    status = ok ? 0 : 1;
    json_decref(j);
    json_decref(f.timeline);
    bn_result_free(&res);
    bn_api_close(&f.api);
    if (f.restart_pid > 0)
        waitpid(f.restart_pid, &f.restart_status, 0);
out:
    bn_tls_ctx_free(&tls);
    vtn_config_free(fl_items, NFL, &cfg);
    return status;
}
