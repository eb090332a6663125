/* vtn-bench: a fleet of simulated VENs against one VTN, with the latency and
 * the CPU time each VTN process spends per request. See docs/bench.md. */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <unistd.h>

#include "vtn/config.h"
#include "vtn/id.h"
#include "vtn/log.h"
#include "vtn/net.h"

#include "bn_internal.h"
#include "bn_plan.h"

typedef struct bn_cfg {
    char *target;
    char *mode;
    long long vens;
    long long connections;
    long long duration_ms;
    long long max_requests;
    char *rate;
    long long register_share;
    long long timeout_ms;
    long long register_timeout_ms;
    char *run_id;
    char *pids;
    int json;
    int allow_remote;
    int tls;
    char *cert;
    char *key;
    char *ca;
    int insecure;
    char *ciphers;
    char *groups;
    int tls13;
    int resume;
    int no_tickets;
    int hs_poll;
    long long ramp;
    long long open_timeout_ms;
    char *api;
    char *api_token;
    char *redis;
    long long ven_groups;
    long long events;
    int spread;
    int no_answer;
    char *response_required;
    long long settle_ms;
    long long follow_ms;
    long long measure_ms;
    long long event_start_ms;
    long long intervals;
} bn_cfg;

#define F(x) offsetof(bn_cfg, x)
static const vtn_cfg_item cfg_items[] = {
    {"VTN_BENCH_TARGET", "--target", VTN_CFG_ADDR, F(target), "127.0.0.1:8080", 0, 0,
     "the VTN's OpenADR listener (loopback only unless --allow-remote)"},
    {"VTN_BENCH_MODE", "--mode", VTN_CFG_STR, F(mode), "poll", 0, 0,
     "poll: register every VEN, then measure oadrPoll; register: measure registrations only; "
     "handshake: new TLS connections in a closed loop (needs --tls); idle: open --connections "
     "connections (TLS with --tls), one poll each, hold them idle and read the VTN's memory; "
     "events: event fan-out through the API (docs/bench.md); reports: report ingestion, "
     "oadrUpdateReport with --intervals intervals at --rate per VEN, counted by a consumer"},
    {"VTN_BENCH_VENS", "--vens", VTN_CFG_INT, F(vens), "0", 0, 100000,
     "number of simulated VENs (venName bench-<run>-<i>); 0 = 200 in poll and register mode, 1 "
     "in idle mode and in handshake mode with --hs-poll, none in handshake mode without"},
    {"VTN_BENCH_CONNECTIONS", "--connections", VTN_CFG_INT, F(connections), "0", 0, 20000,
     "keep-alive connections the VENs share; 0 = one per VEN in poll mode, 64 in register mode; "
     "handshake mode: connections handshaking at once (0 = 16); idle mode: connections to hold "
     "(0 = 1000)"},
    {"VTN_BENCH_DURATION", "--duration", VTN_CFG_MS, F(duration_ms), "10s", 100, 3600000,
     "length of the poll or handshake phase; idle mode: how long the connections are held"},
    {"VTN_BENCH_MAX_REQUESTS", "--max-requests", VTN_CFG_INT, F(max_requests), "10000000", 1,
     1000000000,
     "the poll phase also ends after this many polls, the handshake phase after "
     "this many handshakes"},
    {"VTN_BENCH_RATE", "--rate", VTN_CFG_STR, F(rate), "0", 0, 0,
     "polls per second per VEN (open loop, e.g. 0.1 or 20); 0 = closed loop: next poll when the "
     "reply arrives"},
    {"VTN_BENCH_REGISTER_SHARE", "--register-share", VTN_CFG_INT, F(register_share), "0", 0, 90,
     "poll mode: percent of the measured requests sent as re-registrations of the VEN "
     "(oadrCreatePartyRegistration, several Redis rounds each) instead of polls; the poll "
     "figures stay those of the polls alone"},
    {"VTN_BENCH_TIMEOUT", "--timeout", VTN_CFG_MS, F(timeout_ms), "10s", 10, 600000,
     "request and connect timeout"},
    {"VTN_BENCH_REGISTER_TIMEOUT", "--register-timeout", VTN_CFG_MS, F(register_timeout_ms), "120s",
     100, 3600000, "the registration phase ends after this; unregistered VENs sit out"},
    {"VTN_BENCH_RUN", "--run", VTN_CFG_STR, F(run_id), "", 0, 0,
     "run id in venNames ([A-Za-z0-9_-], up to 24); default: random"},
    {"VTN_BENCH_PIDS", "--pids", VTN_CFG_STR, F(pids), "", 0, 0,
     "processes to charge CPU to: gateway=PID,worker=PID,worker=PID,redis=PID"},
    {"VTN_BENCH_JSON", "--json", VTN_CFG_BOOL, F(json), "false", 0, 0,
     "also print the results as one JSON line at the end"},
    {"VTN_BENCH_ALLOW_REMOTE", "--allow-remote", VTN_CFG_BOOL, F(allow_remote), "false", 0, 0,
     "allow a target that is not a loopback address"},
    {"VTN_BENCH_TLS", "--tls", VTN_CFG_BOOL, F(tls), "false", 0, 0,
     "speak TLS to the target (mutual TLS with --cert/--key)"},
    {"VTN_BENCH_CERT", "--cert", VTN_CFG_STR, F(cert), "", 0, 0,
     "client certificate (PEM, intermediates after the leaf); a path with %d is a pattern: VEN "
     "i (handshake and idle mode) or connection i (poll and register mode) presents the file "
     "with %d replaced by i"},
    {"VTN_BENCH_KEY", "--key", VTN_CFG_STR, F(key), "", 0, 0,
     "its private key (PEM); may hold %d like --cert"},
    {"VTN_BENCH_CA", "--ca", VTN_CFG_STR, F(ca), "", 0, 0,
     "CA bundle (PEM) that verifies the VTN's server certificate, which must name the target's "
     "IP address"},
    {"VTN_BENCH_INSECURE", "--insecure", VTN_CFG_BOOL, F(insecure), "false", 0, 0,
     "do not verify the VTN's server certificate (instead of --ca)"},
    {"VTN_BENCH_CIPHERS", "--ciphers", VTN_CFG_STR, F(ciphers), BN_TLS_DEFAULT_CIPHERS, 0, 0,
     "TLS 1.2 cipher list (OpenSSL syntax; the ECC OpenADR suite by default, AES128-SHA256 is "
     "the RSA one); with --tls13 a TLS_... suite list, else OpenSSL's TLS 1.3 default"},
    {"VTN_BENCH_GROUPS", "--groups", VTN_CFG_STR, F(groups), "", 0, 0,
     "key exchange groups offered, e.g. P-256 or X25519:P-256; empty = OpenSSL's default"},
    {"VTN_BENCH_TLS13", "--tls13", VTN_CFG_BOOL, F(tls13), "false", 0, 0,
     "TLS 1.3 only (default: TLS 1.2 only, as OpenADR 2.0b)"},
    {"VTN_BENCH_RESUME", "--resume", VTN_CFG_BOOL, F(resume), "false", 0, 0,
     "keep the session ticket of each connection and resume with it when it reconnects"},
    {"VTN_BENCH_NO_TICKETS", "--no-tickets", VTN_CFG_BOOL, F(no_tickets), "false", 0, 0,
     "TLS 1.2: do not ask for session tickets, so the VTN issues none (shows what issuing "
     "them costs)"},
    {"VTN_BENCH_HS_POLL", "--hs-poll", VTN_CFG_BOOL, F(hs_poll), "false", 0, 0,
     "handshake mode: send one oadrPoll on each connection before closing it"},
    {"VTN_BENCH_RAMP", "--ramp", VTN_CFG_INT, F(ramp), "64", 1, 20000,
     "idle mode: connections connecting and handshaking at once; events mode: VENs connecting "
     "and registering at once"},
    {"VTN_BENCH_OPEN_TIMEOUT", "--open-timeout", VTN_CFG_MS, F(open_timeout_ms), "120s", 100,
     3600000, "idle mode: connections not idle by then are given up and the memory is read"},
    {"VTN_BENCH_API", "--api", VTN_CFG_STR, F(api), "", 0, 0,
     "events mode: the VTN's management API listener (host:port, loopback unless --allow-remote)"},
    {"VTN_BENCH_API_TOKEN", "--api-token", VTN_CFG_SECRET, F(api_token), "", 0, 0,
     "events mode: the API's bearer token (the VTN's VTN_API_TOKEN)"},
    {"VTN_BENCH_REDIS", "--redis", VTN_CFG_STR, F(redis), "", 0, 0,
     "events mode: the VTN's Redis (host:port); its INFO memory is read before the events are "
     "created and once every VEN has them, for the bytes per VEN per event; reports mode "
     "(required): memory and stream length around the updates, and the consumer's reads"},
    {"VTN_BENCH_VEN_GROUPS", "--ven-groups", VTN_CFG_INT, F(ven_groups), "1", 1, 10000,
     "events mode: groups the VENs are put in (VEN i in group i % G), each with one PUT "
     "/api/v1/groups/{groupID}"},
    {"VTN_BENCH_EVENTS", "--events", VTN_CFG_INT, F(events), "1", 1, BN_EVENTS_MAX,
     "events mode: events created through the API once the polls run steadily"},
    {"VTN_BENCH_SPREAD", "--spread", VTN_CFG_BOOL, F(spread), "false", 0, 0,
     "events mode: event j targets group j % G only (default: every event targets every group)"},
    {"VTN_BENCH_NO_ANSWER", "--no-answer", VTN_CFG_BOOL, F(no_answer), "false", 0, 0,
     "events mode: VENs never send oadrCreatedEvent (default: they opt in to each event that "
     "asks for an answer, at once)"},
    {"VTN_BENCH_RESPONSE_REQUIRED", "--response-required", VTN_CFG_STR, F(response_required),
     "always", 0, 0, "events mode: responseRequired of the events, always or never"},
    {"VTN_BENCH_SETTLE", "--settle", VTN_CFG_MS, F(settle_ms), "0", 0, 3600000,
     "events mode: polling before the events are created; 0 = one poll interval + 1 s"},
    {"VTN_BENCH_FOLLOW", "--follow", VTN_CFG_MS, F(follow_ms), "60s", 100, 3600000,
     "events mode: deadline after the creation; VENs without every event (answer) by then are "
     "reported missing"},
    {"VTN_BENCH_MEASURE", "--measure", VTN_CFG_MS, F(measure_ms), "0", 0, 3600000,
     "events mode: once every VEN has everything, closed-loop polls for this long, with the CPU "
     "per poll as in --mode poll; 0 = none"},
    {"VTN_BENCH_EVENT_START", "--event-start", VTN_CFG_MS, F(event_start_ms), "1h", 0, 86400000,
     "events mode: the events' dtstart, from now (they last an hour)"},
    {"VTN_BENCH_INTERVALS", "--intervals", VTN_CFG_INT, F(intervals), "12", 1, 512,
     "reports mode: intervals (one value each) per oadrUpdateReport"},
};
#undef F
#define NCFG (sizeof cfg_items / sizeof cfg_items[0])

static const char *fmt_ms(char *out, size_t len, uint64_t ns)
{
    snprintf(out, len, "%.3f ms", (double)ns / 1e6);
    return out;
}

/* CPU per request by role, in µs; roles in order of first appearance. */
typedef struct role_sum {
    char role[BN_ROLE_MAX];
    int n, gone;
    uint64_t ticks;
} role_sum;

static int sum_roles(const bn_opts *o, role_sum *out)
{
    int n = 0;
    for (int i = 0; i < o->nprocs; i++) {
        const bn_proc *p = &o->procs[i];
        int j;
        for (j = 0; j < n; j++)
            if (strcmp(out[j].role, p->role) == 0)
                break;
        if (j == n) {
            memset(&out[n], 0, sizeof out[n]);
            snprintf(out[n].role, sizeof out[n].role, "%s", p->role);
            n++;
        }
        out[j].n++;
        if (p->gone)
            out[j].gone = 1;
        else
            out[j].ticks += p->ticks1 - p->ticks0;
    }
    return n;
}

static void print_counts_line(const char *label, const bn_counts *k)
{
    printf("%-16s %" PRIu64 " (HTTP status %" PRIu64 ", responseCode %" PRIu64 ", timeouts %" PRIu64
           ", connection %" PRIu64 ", I/O %" PRIu64 ")\n",
           label, bn_counts_errors(k), k->http, k->oadr, k->timeouts, k->conn, k->io);
    if (k->tls)
        printf("%-16s %" PRIu64 "\n", "  TLS errors", k->tls);
    if (k->http)
        printf("%-16s 2xx %" PRIu64 ", 3xx %" PRIu64 ", 4xx %" PRIu64 ", 5xx %" PRIu64 "\n",
               "  by status", k->status[2], k->status[3], k->status[4], k->status[5]);
}

static json_t *json_latency(const bn_hist *h)
{
    return json_pack("{s:f,s:f,s:f,s:f,s:f,s:f}", "p50", bn_hist_quantile(h, 0.50) / 1e3, "p90",
                     bn_hist_quantile(h, 0.90) / 1e3, "p99", bn_hist_quantile(h, 0.99) / 1e3, "max",
                     h->max / 1e3, "mean", bn_hist_mean(h) / 1e3, "min", h->min / 1e3);
}

static json_t *json_counts(const bn_counts *k)
{
    return json_pack(
        "{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "sent", (json_int_t)k->sent, "done",
        (json_int_t)k->done, "ok", (json_int_t)k->ok, "http", (json_int_t)k->http, "response_code",
        (json_int_t)k->oadr, "timeout", (json_int_t)k->timeouts, "connection", (json_int_t)k->conn,
        "io", (json_int_t)k->io, "tls", (json_int_t)k->tls, "messages", (json_int_t)k->messages);
}

static double us_per_tick(void)
{
    long hz = sysconf(_SC_CLK_TCK);
    return 1e6 / (double)(hz > 0 ? hz : 100);
}

/* "CPU per <what>" and "CPU use" lines; returns the ticks of every role. */
static double print_cpu(const bn_opts *o, const char *what, uint64_t denom, double secs,
                        json_t *jcpu)
{
    role_sum roles[BN_MAX_PIDS];
    int nroles = sum_roles(o, roles);
    double total_us = 0, total_ticks = 0, upt = us_per_tick();
    if (denom == 0)
        denom = 1;
    if (nroles == 0)
        return 0;
    printf("CPU per %s: ", what);
    for (int i = 0; i < nroles; i++) {
        double us = (double)roles[i].ticks * upt / (double)denom;
        total_us += us;
        total_ticks += (double)roles[i].ticks;
        printf("%s%s%s %.1f µs%s", i ? ", " : "", roles[i].role, roles[i].n > 1 ? "s" : "", us,
               roles[i].gone ? " (a process exited!)" : "");
        if (jcpu)
            json_object_set_new(jcpu, roles[i].role, json_real(us));
    }
    printf(", total %.1f µs\n", total_us);
    if (jcpu)
        json_object_set_new(jcpu, "total", json_real(total_us));
    printf("%-16s", "CPU use");
    for (int i = 0; i < nroles; i++)
        printf("%s %s%s %.0f%%", i ? "," : "", roles[i].role, roles[i].n > 1 ? "s" : "",
               (double)roles[i].ticks * upt / 1e6 / secs * 100);
    printf(" of one core\n");
    return total_ticks;
}

/* The "load" line; returns the share (0..ncpu) left to other processes. */
static double print_load(const bn_opts *o, const bn_result *res, double secs, double vtn_ticks)
{
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    double self_pct = (double)res->self_cpu_us / 1e6 / secs * 100;
    double mach_pct =
        res->mach_total ? (double)res->mach_busy / (double)res->mach_total * 100 * (double)ncpu : 0;
    double other_pct = mach_pct - self_pct - vtn_ticks * us_per_tick() / 1e6 / secs * 100;
    printf("%-16s vtn-bench %.0f%% of one core; machine %.0f%% busy (%ld CPUs = %ld%%)", "load",
           self_pct, mach_pct, ncpu, ncpu * 100);
    if (o->nprocs > 0)
        printf("; other processes and the kernel %.0f%%", other_pct > 0 ? other_pct : 0);
    printf("\n");
    return other_pct > 0 ? other_pct / 100 : 0;
}

static void print_hs_errors(const bn_counts *k)
{
    printf("%-16s %" PRIu64 " (connection %" PRIu64 ", TLS %" PRIu64 ", timeouts %" PRIu64
           ", I/O %" PRIu64 ")\n",
           "errors", k->conn + k->tls + k->timeouts + k->io, k->conn, k->tls, k->timeouts, k->io);
}

static void print_polls_short(const bn_result *res)
{
    char a[32], b[32], c[32];
    const bn_counts *k = &res->poll;
    printf("%-16s %" PRIu64 " answered, %" PRIu64 " OK (p50 %s, p99 %s, max %s)\n", "polls",
           k->done, k->ok, fmt_ms(a, sizeof a, bn_hist_quantile(res->poll_hist, 0.5)),
           fmt_ms(b, sizeof b, bn_hist_quantile(res->poll_hist, 0.99)),
           fmt_ms(c, sizeof c, res->poll_hist->max));
    if (bn_counts_errors(k))
        print_counts_line("  poll errors", k);
}

static json_t *json_tls(const bn_cfg *cfg, const bn_result *res)
{
    return json_pack("{s:s,s:b,s:b,s:b,s:s}", "negotiated", res->tls_desc, "tls13", cfg->tls13,
                     "resume", cfg->resume, "no_tickets", cfg->no_tickets, "groups", cfg->groups);
}

static void report_handshake(const bn_cfg *cfg, const bn_opts *o, const bn_result *res)
{
    char a[32], b[32], c[32], d[32], e[32];
    const bn_counts *k = &res->hs;
    const bn_hist *h = res->hs_hist;
    double secs = res->seconds > 0 ? res->seconds : 1e-9;
    printf("vtn-bench        mode=handshake target=%s run=%s%s\n", cfg->target, o->run_id,
           res->interrupted ? " (interrupted)" : "");
    printf("%-16s %s; %s%s\n", "TLS", res->tls_desc[0] ? res->tls_desc : "no handshake completed",
           cfg->resume ? "resuming sessions (--resume)" : "full handshakes",
           cfg->no_tickets ? ", no session tickets (--no-tickets)" : "");
    printf("%-16s %" PRIu32 " in a closed loop: connect, handshake%s, close_notify, close\n",
           "connections", o->connections, o->hs_poll ? ", one oadrPoll" : "");
    if (o->vens)
        printf("%-16s %" PRIu32 " registered, %" PRIu32 " failed in %.3f s\n", "VENs",
               res->registered, res->reg_failed, res->reg_seconds);
    printf("%-16s %.3f s (handshake phase)\n", "duration", res->seconds);
    printf("%-16s %" PRIu64 " completed (%.1f/s), %" PRIu64 " of them resumed; %" PRIu64
           " started\n",
           "handshakes", k->ok, (double)k->ok / secs, res->hs_resumed, k->sent);
    printf("%-16s p50 %s  p90 %s  p99 %s  max %s  (mean %s; TCP connect + TLS handshake)\n",
           "handshake time", fmt_ms(a, sizeof a, bn_hist_quantile(h, 0.50)),
           fmt_ms(b, sizeof b, bn_hist_quantile(h, 0.90)),
           fmt_ms(c, sizeof c, bn_hist_quantile(h, 0.99)), fmt_ms(d, sizeof d, h->max),
           fmt_ms(e, sizeof e, (uint64_t)bn_hist_mean(h)));
    print_hs_errors(k);
    if (o->hs_poll)
        print_polls_short(res);
    json_t *jcpu = cfg->json ? json_object() : NULL;
    double ticks = print_cpu(o, "handshake", k->ok, secs, jcpu);
    role_sum roles[BN_MAX_PIDS];
    int nroles = sum_roles(o, roles);
    json_t *jper = cfg->json ? json_object() : NULL;
    if (nroles > 0) {
        /* The capacity of one core of each process; roles that hardly took part
         * (under 0.1 s of CPU, e.g. workers without --hs-poll) are left out. */
        printf("%-16s", "per CPU-second");
        int shown = 0;
        for (int i = 0; i < nroles; i++) {
            double cpu_s = (double)roles[i].ticks * us_per_tick() / 1e6;
            if (cpu_s < 0.1)
                continue;
            double per = (double)k->ok / cpu_s;
            printf("%s %s%s %.0f", shown++ ? "," : "", roles[i].role, roles[i].n > 1 ? "s" : "",
                   per);
            if (jper)
                json_object_set_new(jper, roles[i].role, json_real(per));
        }
        printf("%s handshakes per CPU-second of the process\n", shown ? "" : " -");
    }
    double other = print_load(o, res, secs, ticks);
    uint64_t errs = k->conn + k->tls + k->timeouts + k->io;
    if (errs * 1000 > k->sent)
        printf("WARNING: more than 0.1%% of handshakes failed; the figures above are not a "
               "capacity measurement\n");
    if (!cfg->json) {
        json_decref(jcpu);
        json_decref(jper);
        return;
    }
    bn_print_json(json_pack(
        "{s:s,s:s,s:s,s:I,s:I,s:b,s:f,s:o,s:{s:I,s:I,s:I,s:f,s:o,s:o},s:{s:o,s:o},s:o,s:o,s:f,s:f,"
        "s:I,s:b}",
        "mode", "handshake", "target", cfg->target, "run", o->run_id, "connections",
        (json_int_t)o->connections, "vens", (json_int_t)o->vens, "hs_poll", o->hs_poll,
        "duration_s", res->seconds, "tls", json_tls(cfg, res), "handshakes", "ok",
        (json_int_t)k->ok, "resumed", (json_int_t)res->hs_resumed, "started", (json_int_t)k->sent,
        "per_s", (double)k->ok / secs, "counts", json_counts(k), "latency_us", json_latency(h),
        "polls", "counts", json_counts(&res->poll), "latency_us", json_latency(res->poll_hist),
        "cpu_us_per_handshake", jcpu, "handshakes_per_cpu_s", jper, "cpu_share_bench",
        (double)res->self_cpu_us / 1e6 / secs, "other_busy_share", other, "cpus",
        (json_int_t)sysconf(_SC_NPROCESSORS_ONLN), "interrupted", res->interrupted));
}

static void report_idle(const bn_cfg *cfg, const bn_opts *o, const bn_result *res)
{
    char a[32], b[32], c[32], d[48];
    const bn_counts *k = &res->hs;
    const bn_hist *h = res->hs_hist;
    double secs = res->seconds > 0 ? res->seconds : 1e-9;
    printf("vtn-bench        mode=idle target=%s run=%s%s\n", cfg->target, o->run_id,
           res->interrupted ? " (interrupted)" : "");
    if (o->tls)
        printf("%-16s %s\n", "TLS", res->tls_desc[0] ? res->tls_desc : "no handshake completed");
    else
        printf("%-16s plain HTTP (no --tls)\n", "TLS");
    printf("%-16s %" PRIu32 " requested, %" PRIu32 " idle, %" PRIu32
           " failed; opened in %.3f s with at most %" PRIu32 " opening at once\n",
           "connections", o->connections, res->idle_ok, res->idle_failed, res->open_seconds,
           o->ramp);
    if (o->tls)
        printf("%-16s %" PRIu64 " completed, %" PRIu64 " started (p50 %s, p99 %s, max %s; "
               "connect + handshake)\n",
               "handshakes", k->ok, k->sent, fmt_ms(a, sizeof a, bn_hist_quantile(h, 0.5)),
               fmt_ms(b, sizeof b, bn_hist_quantile(h, 0.99)), fmt_ms(c, sizeof c, h->max));
    else
        printf("%-16s %" PRIu64 " started\n", "connects", k->sent);
    print_hs_errors(k);
    print_polls_short(res);
    printf("%-16s %.3f s with %" PRIu32 " idle connections open; %" PRIu32
           " closed by the server\n",
           "held", res->seconds, res->idle_open, res->idle_lost);

    /* memory by role, summed over the role's processes */
    json_t *jmem = cfg->json ? json_object() : NULL;
    uint32_t n = res->idle_open ? res->idle_open : 1;
    for (int i = 0; i < o->nprocs; i++) {
        const bn_proc *p = &o->procs[i];
        int first = 1;
        for (int j = 0; j < i; j++)
            if (strcmp(o->procs[j].role, p->role) == 0)
                first = 0;
        if (!first)
            continue;
        int64_t rss[3] = {0}, anon[3] = {0};
        int gone = 0;
        for (int j = i; j < o->nprocs; j++) {
            if (strcmp(o->procs[j].role, p->role) != 0)
                continue;
            gone |= o->procs[j].gone;
            for (int m = 0; m < 3; m++) {
                rss[m] += (int64_t)o->procs[j].rss[m];
                anon[m] += (int64_t)o->procs[j].anon[m];
            }
        }
        double per = (double)(rss[1] - rss[0]) / n, per_anon = (double)(anon[1] - anon[0]) / n;
        snprintf(d, sizeof d, "memory %s", p->role);
        if (rss[1] == 0) {
            printf("%-16s not read: the run ended before every connection was idle\n", d);
            continue;
        }
        printf("%-16s VmRSS %" PRId64 " -> %" PRId64 " KiB (+%" PRId64 ") = %.2f KiB per idle "
               "connection; RssAnon +%" PRId64 " KiB = %.2f KiB each; end of hold %" PRId64
               " KiB%s\n",
               d, rss[0], rss[1], rss[1] - rss[0], per, anon[1] - anon[0], per_anon, rss[2],
               gone ? " (a process exited!)" : "");
        if (jmem)
            json_object_set_new(
                jmem, p->role,
                json_pack("{s:[I,I,I],s:[I,I,I],s:f,s:f}", "rss_kib", (json_int_t)rss[0],
                          (json_int_t)rss[1], (json_int_t)rss[2], "rss_anon_kib",
                          (json_int_t)anon[0], (json_int_t)anon[1], (json_int_t)anon[2],
                          "kib_per_connection", per, "anon_kib_per_connection", per_anon));
    }
    double ticks = 0;
    role_sum roles[BN_MAX_PIDS];
    int nroles = sum_roles(o, roles);
    json_t *jidle = cfg->json ? json_object() : NULL;
    if (nroles > 0) {
        printf("%-16s", "CPU while idle");
        for (int i = 0; i < nroles; i++) {
            double share = (double)roles[i].ticks * us_per_tick() / 1e6 / secs;
            ticks += (double)roles[i].ticks;
            printf("%s %s%s %.1f%%", i ? "," : "", roles[i].role, roles[i].n > 1 ? "s" : "",
                   share * 100);
            if (jidle)
                json_object_set_new(jidle, roles[i].role, json_real(share));
        }
        printf(" of one core\n");
    }
    double other = print_load(o, res, secs, ticks);
    if (!cfg->json) {
        json_decref(jmem);
        json_decref(jidle);
        return;
    }
    bn_print_json(json_pack(
        "{s:s,s:s,s:s,s:I,s:I,s:o,s:{s:I,s:I,s:I,s:I,s:f},s:{s:o,s:o},s:{s:o,s:o},s:f,s:o,s:o,"
        "s:f,s:f,s:I,s:b}",
        "mode", "idle", "target", cfg->target, "run", o->run_id, "connections",
        (json_int_t)o->connections, "ramp", (json_int_t)o->ramp, "tls", json_tls(cfg, res), "idle",
        "ok", (json_int_t)res->idle_ok, "failed", (json_int_t)res->idle_failed, "open",
        (json_int_t)res->idle_open, "lost", (json_int_t)res->idle_lost, "open_seconds",
        res->open_seconds, "handshakes", "counts", json_counts(k), "latency_us", json_latency(h),
        "polls", "counts", json_counts(&res->poll), "latency_us", json_latency(res->poll_hist),
        "hold_s", res->seconds, "memory", jmem, "cpu_share_while_idle", jidle, "cpu_share_bench",
        (double)res->self_cpu_us / 1e6 / secs, "other_busy_share", other, "cpus",
        (json_int_t)sysconf(_SC_NPROCESSORS_ONLN), "interrupted", res->interrupted));
}

/* "50 % 1.234 s, 99 % ..., 100 % ..." of a coverage; "-" where not reached. */
static void print_coverage(const char *label, const uint64_t *cov, uint32_t n, uint32_t of,
                           json_t *j)
{
    static const char *const names[3] = {"50%", "99%", "100%"};
    printf("%-16s", label);
    for (int i = 0; i < 3; i++) {
        if (cov[i] == BN_NEVER)
            printf("%s %s -", i ? "," : "", names[i]);
        else
            printf("%s %s %.3f s", i ? "," : "", names[i], (double)cov[i] / 1e9);
        if (j)
            json_object_set_new(j, names[i],
                                cov[i] == BN_NEVER ? json_null() : json_real((double)cov[i] / 1e9));
    }
    printf(" (%" PRIu32 " of %" PRIu32 " VENs)\n", n, of);
}

static uint64_t events_errors(const bn_result *res)
{
    return bn_counts_errors(&res->reg) + bn_counts_errors(&res->regrep) +
           bn_counts_errors(&res->warm) + bn_counts_errors(&res->poll) +
           bn_counts_errors(&res->created) + res->reg_failed + (res->setup_error[0] ? 1 : 0) +
           res->late;
}

static void report_events(const bn_cfg *cfg, const bn_opts *o, const bn_result *res)
{
    char a[32], b[32], c[32];
    int answers = o->answer && !o->rr_never;
    printf("vtn-bench        mode=events target=%s api=%s run=%s%s\n", cfg->target, cfg->api,
           o->run_id, res->interrupted ? " (interrupted)" : "");
    printf("%-16s %" PRIu32 " over %" PRIu32 " keep-alive connections (%s), each polling every "
           "%.3g s from a random phase\n",
           "VENs", o->vens, o->vens, o->tls ? "TLS" : "plain HTTP", 1.0 / o->rate);
    printf("%-16s %" PRIu32 " registered, %" PRIu32 " failed in %.3f s\n", "registration",
           res->registered, res->reg_failed, res->reg_seconds);
    printf("%-16s %" PRIu32 " of %" PRIu32 " made in %.3f s (PUT /api/v1/groups/{groupID}, up to "
           "%" PRIu32 " venIDs each)\n",
           "groups", res->groups_made, o->groups, res->groups_seconds,
           (o->vens + o->groups - 1) / o->groups);
    json_t *jcreate = json_array();
    double cmax = 0, csum = 0;
    for (uint32_t j = 0; j < res->ev_created; j++) {
        json_array_append_new(jcreate, json_real(res->create_ms[j]));
        csum += res->create_ms[j];
        if (res->create_ms[j] > cmax)
            cmax = res->create_ms[j];
    }
    printf("%-16s %" PRIu32 " of %" PRIu32 " created (POST /api/v1/events, responseRequired %s, "
           "%s)",
           "events", res->ev_created, o->events, o->rr_never ? "never" : "always",
           o->spread ? "event j for group j % groups" : "each for every group");
    if (res->ev_created)
        printf(": API round trip first %.2f ms, mean %.2f ms, max %.2f ms", res->create_ms[0],
               csum / res->ev_created, cmax);
    printf("\n");
    if (res->setup_error[0])
        printf("%-16s %s\n", "setup failed", res->setup_error);
    json_t *jrecv = json_object(), *jans = json_object();
    print_coverage("received", res->cov_recv, res->received, res->targeted, jrecv);
    if (answers)
        print_coverage("answered", res->cov_ans, res->answered, res->targeted, jans);
    else
        printf("%-16s not expected (%s)\n", "answered",
               o->rr_never ? "responseRequired never" : "--no-answer");
    printf("%-16s times from sending the first POST /api/v1/events to the reply that completed "
           "the VEN's set (all its events; all its oadrCreatedEvent answered with 200)\n",
           "");
    if (res->nmissing) {
        printf("%-16s %" PRIu32 " at the %s after %.3f s: VEN", "missing", res->late,
               res->follow_timed_out ? "deadline" : "end of the run", (double)o->follow_ns / 1e9);
        for (uint32_t i = 0; i < res->nmissing; i++)
            printf("%s %" PRIu32, i ? "," : "", res->missing[i]);
        printf("%s (indexes; venName bench-%s-<index>)\n", res->late > res->nmissing ? ", ..." : "",
               o->run_id);
    }
    printf("%-16s %" PRIu64 " answered, %" PRIu64 " OK, %" PRIu64 " carried a distribute\n",
           "polls", res->warm.done, res->warm.ok, res->warm.messages);
    printf("%-16s %" PRIu64 " sent, %" PRIu64 " OK\n", "oadrCreatedEvent", res->created.sent,
           res->created.ok);
    if (res->foreign)
        printf("%-16s %" PRIu64 " distributed events the bench did not create\n", "foreign",
               res->foreign);
    print_counts_line("errors", &res->warm);
    if (bn_counts_errors(&res->created))
        print_counts_line("  created errors", &res->created);
    if (bn_counts_errors(&res->reg))
        print_counts_line("  reg. errors", &res->reg);
    if (bn_counts_errors(&res->regrep))
        print_counts_line("  report errors", &res->regrep);
    double mem_per = -1;
    if (res->mem_before >= 0 && res->mem_after >= 0) {
        uint64_t pairs = 0;
        /* VEN-event pairs: every targeted VEN times the events targeting it */
        pairs = (uint64_t)res->targeted *
                (o->spread ? (o->events + o->groups - 1) / o->groups : o->events);
        mem_per = (double)(res->mem_after - res->mem_before) / (double)(pairs ? pairs : 1);
        printf("%-16s used_memory %lld -> %lld bytes (+%lld) = %.1f bytes per VEN per event "
               "(%" PRIu64 " pairs)\n",
               "redis memory", res->mem_before, res->mem_after, res->mem_after - res->mem_before,
               mem_per, pairs);
    }
    json_t *jcpu = json_object();
    double secs = res->seconds > 0 ? res->seconds : 1e-9;
    if (o->measure_ns && res->seconds > 0) {
        const bn_counts *k = &res->poll;
        printf("%-16s %.3f s closed loop: %" PRIu64 " answered, %" PRIu64 " OK (%.1f/s), %" PRIu64
               " carried a distribute; p50 %s, p99 %s, max %s\n",
               "measured polls", res->seconds, k->done, k->ok, (double)k->done / secs, k->messages,
               fmt_ms(a, sizeof a, bn_hist_quantile(res->poll_hist, 0.5)),
               fmt_ms(b, sizeof b, bn_hist_quantile(res->poll_hist, 0.99)),
               fmt_ms(c, sizeof c, res->poll_hist->max));
        if (bn_counts_errors(k))
            print_counts_line("  poll errors", k);
        double ticks = print_cpu(o, "poll", k->ok, secs, jcpu);
        print_load(o, res, secs, ticks);
    }
    if (events_errors(res))
        printf("WARNING: %" PRIu64 " errors or missing VENs: the figures above are not a clean "
               "measurement\n",
               events_errors(res));
    if (!cfg->json) {
        json_decref(jcreate);
        json_decref(jrecv);
        json_decref(jans);
        json_decref(jcpu);
        return;
    }
    bn_print_json(json_pack(
        "{s:s,s:s,s:s,s:I,s:f,s:s,s:I,s:I,s:I,s:o,s:I,s:I,s:I,s:o,s:o,s:I,s:o,s:o,s:o,s:o,s:I,"
        "s:f,s:I,s:I,s:o,s:f,s:I,s:b}",
        "mode", "events", "target", cfg->target, "run", o->run_id, "vens", (json_int_t)o->vens,
        "interval_s", 1.0 / o->rate, "transport", o->tls ? "tls" : "http", "registered",
        (json_int_t)res->registered, "groups", (json_int_t)res->groups_made, "events",
        (json_int_t)res->ev_created, "create_ms", jcreate, "targeted", (json_int_t)res->targeted,
        "received", (json_int_t)res->received, "answered", (json_int_t)res->answered, "received_s",
        jrecv, "answered_s", jans, "errors", (json_int_t)events_errors(res), "polls",
        json_counts(&res->warm), "created", json_counts(&res->created), "measured_polls",
        json_counts(&res->poll), "cpu_us_per_poll", jcpu, "mem_before", (json_int_t)res->mem_before,
        "mem_per_ven_event", mem_per, "mem_after", (json_int_t)res->mem_after, "missing",
        (json_int_t)res->late, "setup_error", json_string(res->setup_error), "measured_s",
        res->seconds, "follow_timed_out", (json_int_t)res->follow_timed_out, "interrupted",
        res->interrupted));
}

/* Anything that makes a reports run no clean measurement: a failed request,
 * a VEN not set up, a consumer that could not read, an interval lost or doubled. */
static uint64_t reports_failed(const bn_result *res)
{
    const bn_rep_tally *t = &res->tally;
    return bn_counts_errors(&res->reg) + bn_counts_errors(&res->regrep) +
           bn_counts_errors(&res->poll) + res->reg_failed + (res->registered - res->rep_ready) +
           !res->tally_done + (res->rep_error[0] != 0) + t->lost + t->doubled + t->foreign +
           (t->pending != 0) + (res->registered == 0);
}

static void report_reports(const bn_cfg *cfg, const bn_opts *o, const bn_result *res)
{
    char a[32], b[32], c[32], d[32];
    const bn_counts *k = &res->poll;
    const bn_hist *h = res->poll_hist;
    const bn_rep_tally *t = &res->tally;
    double secs = res->seconds > 0 ? res->seconds : 1e-9;
    printf("vtn-bench        mode=reports target=%s run=%s%s\n", cfg->target, o->run_id,
           res->interrupted ? " (interrupted)" : "");
    if (o->rate > 0)
        printf("%-16s %" PRIu32 " over %" PRIu32 " keep-alive connections, each sending an "
               "oadrUpdateReport of %" PRIu32 " intervals every %.3g s (open loop)\n",
               "VENs", o->vens, o->vens, o->intervals, 1.0 / o->rate);
    else
        printf("%-16s %" PRIu32 " over %" PRIu32 " keep-alive connections, each sending an "
               "oadrUpdateReport of %" PRIu32 " intervals as soon as the last is answered "
               "(closed loop)\n",
               "VENs", o->vens, o->vens, o->intervals);
    printf("%-16s %" PRIu32 " registered, %" PRIu32 " failed in %.3f s; %" PRIu32
           " with their report requested and created\n",
           "registration", res->registered, res->reg_failed, res->reg_seconds, res->rep_ready);
    printf("%-16s %" PRIu64 " answered, %" PRIu64 " OK (oadrRegisterReport exchange, then the "
           "VEN's oadrRegisterReport, the poll for oadrCreateReport, oadrCreatedReport)\n",
           "report setup", res->regrep.done, res->regrep.ok);
    if (bn_counts_errors(&res->reg))
        print_counts_line("  reg. errors", &res->reg);
    if (bn_counts_errors(&res->regrep))
        print_counts_line("  setup errors", &res->regrep);
    printf("%-16s %.3f s (updates phase)\n", "duration", res->seconds);
    printf("%-16s %" PRIu64 " sent, %" PRIu64 " answered, %" PRIu64 " OK (%.1f/s)\n", "updates",
           k->sent, k->done, k->ok, (double)k->ok / secs);
    printf("%-16s p50 %s  p90 %s  p99 %s  max %s  (oadrUpdateReport, OK replies)\n", "latency",
           fmt_ms(a, sizeof a, bn_hist_quantile(h, 0.50)),
           fmt_ms(b, sizeof b, bn_hist_quantile(h, 0.90)),
           fmt_ms(c, sizeof c, bn_hist_quantile(h, 0.99)), fmt_ms(d, sizeof d, h->max));
    print_counts_line("errors", k);
    double per_s = (double)t->stored / secs;
    if (res->tally_done) {
        printf("%-16s %" PRIu64 " of %" PRIu64 " intervals answered 200 found in the stream "
               "= %.0f intervals stored/s\n",
               "stored", t->stored, t->confirmed, per_s);
        printf("%-16s %" PRIu64 " entries (%" PRIu64 " intervals) read (XREADGROUP) and "
               "acknowledged (XACK), %lld left pending; lost %" PRIu64 ", doubled %" PRIu64
               ", foreign or altered %" PRIu64 ", stored without a 200 %" PRIu64 "\n",
               "consumer", t->entries, t->values, t->pending, t->lost, t->doubled, t->foreign,
               t->unconfirmed);
    } else {
        printf("%-16s failed: %s\n", "consumer", res->rep_error);
    }
    /* every interval the consumer found is in Redis now (nothing is trimmed
     * during a run), whether or not its update got a 200 */
    uint64_t in_stream = t->stored + t->unconfirmed + t->doubled;
    double mem_per = -1;
    if (res->mem_before >= 0 && res->mem_after >= 0 && in_stream > 0) {
        mem_per = (double)(res->mem_after - res->mem_before) / (double)in_stream;
        printf("%-16s used_memory %lld -> %lld bytes (+%lld), stream %lld -> %lld entries, "
               "%" PRIu64 " intervals: %.1f bytes per stored interval\n",
               "redis memory", res->mem_before, res->mem_after, res->mem_after - res->mem_before,
               res->xlen_before, res->xlen_after, in_stream, mem_per);
    }
    json_t *jcpu = cfg->json ? json_object() : NULL;
    double ticks = print_cpu(o, "interval", t->stored, secs, jcpu);
    double other = print_load(o, res, secs, ticks);
    uint64_t bad = reports_failed(res);
    if (bad)
        printf("WARNING: %" PRIu64 " errors, VENs not set up, or intervals lost, doubled or "
               "altered: the figures above are not a clean measurement\n",
               bad);
    if (!cfg->json)
        return;
    bn_print_json(json_pack(
        "{s:s,s:s,s:s,s:I,s:I,s:f,s:f,s:I,s:I,s:f,s:o,s:o,s:o,s:f,s:{s:I,s:I,s:I,s:I,s:I,s:I,s:I,"
        "s:I,s:I,s:b},s:I,s:I,s:I,s:I,s:f,s:o,s:f,s:f,s:I,s:s,s:b}",
        "mode", "reports", "target", cfg->target, "run", o->run_id, "vens", (json_int_t)o->vens,
        "intervals_per_update", (json_int_t)o->intervals, "rate", o->rate, "duration_s",
        res->seconds, "registered", (json_int_t)res->registered, "ready",
        (json_int_t)res->rep_ready, "updates_per_s", (double)k->ok / secs, "updates",
        json_counts(k), "setup", json_counts(&res->regrep), "latency_us", json_latency(h),
        "intervals_stored_per_s", per_s, "consumer", "entries", (json_int_t)t->entries, "values",
        (json_int_t)t->values, "confirmed", (json_int_t)t->confirmed, "stored",
        (json_int_t)t->stored, "lost", (json_int_t)t->lost, "doubled", (json_int_t)t->doubled,
        "foreign", (json_int_t)t->foreign, "unconfirmed", (json_int_t)t->unconfirmed, "pending",
        (json_int_t)t->pending, "done", res->tally_done, "mem_before", (json_int_t)res->mem_before,
        "mem_after", (json_int_t)res->mem_after, "xlen_before", (json_int_t)res->xlen_before,
        "xlen_after", (json_int_t)res->xlen_after, "mem_per_interval", mem_per,
        "cpu_us_per_interval", jcpu, "cpu_share_bench", (double)res->self_cpu_us / 1e6 / secs,
        "other_busy_share", other, "errors", (json_int_t)bad, "error", res->rep_error,
        "interrupted", res->interrupted));
}

static void report(const bn_cfg *cfg, const bn_opts *o, const bn_result *res)
{
    if (o->mode == BN_MODE_REPORTS) {
        report_reports(cfg, o, res);
        return;
    }
    if (o->mode == BN_MODE_EVENTS) {
        report_events(cfg, o, res);
        return;
    }
    if (o->mode == BN_MODE_HANDSHAKE) {
        report_handshake(cfg, o, res);
        return;
    }
    if (o->mode == BN_MODE_IDLE) {
        report_idle(cfg, o, res);
        return;
    }
    char a[32], b[32], c[32], d[32], e[32];
    int poll = o->mode == BN_MODE_POLL;
    const bn_counts *k = poll ? &res->poll : &res->reg;
    const bn_hist *h = poll ? res->poll_hist : res->reg_hist;
    const char *what = poll ? "poll" : "registration";
    long hz = sysconf(_SC_CLK_TCK);
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    double us_per_tick = 1e6 / (double)(hz > 0 ? hz : 100);
    double secs = res->seconds > 0 ? res->seconds : 1e-9;
    uint32_t nconns = o->connections < o->vens ? o->connections : o->vens;

    printf("vtn-bench        mode=%s target=%s run=%s%s\n", cfg->mode, cfg->target, o->run_id,
           res->interrupted ? " (interrupted)" : "");
    if (o->rate > 0)
        printf("%-16s %" PRIu32 " over %" PRIu32 " keep-alive connections, open loop at %g "
               "polls/s per VEN\n",
               "VENs", o->vens, nconns, o->rate);
    else
        printf("%-16s %" PRIu32 " over %" PRIu32 " keep-alive connections, closed loop\n", "VENs",
               o->vens, nconns);
    printf("%-16s %" PRIu32 " registered, %" PRIu32 " failed in %.3f s (p50 %s, p99 %s, "
           "max %s)\n",
           "registration", res->registered, res->reg_failed, res->reg_seconds,
           fmt_ms(a, sizeof a, bn_hist_quantile(res->reg_hist, 0.5)),
           fmt_ms(b, sizeof b, bn_hist_quantile(res->reg_hist, 0.99)),
           fmt_ms(c, sizeof c, res->reg_hist->max));
    if (poll && bn_counts_errors(&res->reg))
        print_counts_line("  reg. errors", &res->reg);
    printf("%-16s %" PRIu64 " answered, %" PRIu64 " OK (the poll for the VTN's oadrRegisterReport "
           "and oadrRegisteredReport after each registration)\n",
           "report exchange", res->regrep.done, res->regrep.ok);
    if (bn_counts_errors(&res->regrep))
        print_counts_line("  report errors", &res->regrep);
    if (o->tls)
        printf("%-16s %s\n", "TLS", res->tls_desc[0] ? res->tls_desc : "no handshake completed");
    printf("%-16s %.3f s (%s phase)\n", "duration", res->seconds, what);
    printf("%-16s %" PRIu64 " answered, %" PRIu64 " OK (%.1f requests/s)\n",
           poll ? "polls" : "registrations", k->done, k->ok, (double)k->done / secs);
    printf("%-16s p50 %s  p90 %s  p99 %s  max %s  (mean %s, OK replies only)\n", "latency",
           fmt_ms(a, sizeof a, bn_hist_quantile(h, 0.50)),
           fmt_ms(b, sizeof b, bn_hist_quantile(h, 0.90)),
           fmt_ms(c, sizeof c, bn_hist_quantile(h, 0.99)), fmt_ms(d, sizeof d, h->max),
           fmt_ms(e, sizeof e, (uint64_t)bn_hist_mean(h)));
    print_counts_line("errors", k);
    if (poll)
        printf("%-16s %" PRIu64 "\n", "queued payloads", k->messages);
    if (poll && o->rereg_pct) {
        printf("%-16s %" PRIu64 " answered, %" PRIu64 " OK (%u%% of requests; p50 %s, p99 %s, "
               "max %s)\n",
               "re-registration", res->rereg.done, res->rereg.ok, (unsigned)o->rereg_pct,
               fmt_ms(a, sizeof a, bn_hist_quantile(res->rereg_hist, 0.5)),
               fmt_ms(b, sizeof b, bn_hist_quantile(res->rereg_hist, 0.99)),
               fmt_ms(c, sizeof c, res->rereg_hist->max));
        if (bn_counts_errors(&res->rereg))
            print_counts_line("  rereg. errors", &res->rereg);
    }

    role_sum roles[BN_MAX_PIDS];
    int nroles = sum_roles(o, roles);
    double total_us = 0, total_ticks = 0;
    uint64_t denom = k->ok + (poll ? res->rereg.ok : 0);
    if (denom == 0)
        denom = 1;
    if (nroles > 0) {
        printf("CPU per %s: ", poll && o->rereg_pct ? "request (poll or re-registration)" : what);
        for (int i = 0; i < nroles; i++) {
            double us = (double)roles[i].ticks * us_per_tick / (double)denom;
            total_us += us;
            total_ticks += (double)roles[i].ticks;
            printf("%s%s%s %.1f µs%s", i ? ", " : "", roles[i].role, roles[i].n > 1 ? "s" : "", us,
                   roles[i].gone ? " (a process exited!)" : "");
        }
        printf(", total %.1f µs\n", total_us);
        printf("%-16s", "CPU use");
        for (int i = 0; i < nroles; i++)
            printf("%s %s%s %.0f%%", i ? "," : "", roles[i].role, roles[i].n > 1 ? "s" : "",
                   (double)roles[i].ticks * us_per_tick / 1e6 / secs * 100);
        printf(" of one core\n");
    }
    double self_pct = (double)res->self_cpu_us / 1e6 / secs * 100;
    double mach_pct =
        res->mach_total ? (double)res->mach_busy / (double)res->mach_total * 100 * (double)ncpu : 0;
    double other_pct = mach_pct - self_pct - total_ticks * us_per_tick / 1e6 / secs * 100;
    printf("%-16s vtn-bench %.0f%% of one core; machine %.0f%% busy (%ld CPUs = %ld%%)", "load",
           self_pct, mach_pct, ncpu, ncpu * 100);
    if (nroles > 0)
        printf("; other processes and the kernel %.0f%%", other_pct > 0 ? other_pct : 0);
    printf("\n");
    if (bn_counts_errors(k) * 1000 > k->done)
        printf("WARNING: more than 0.1%% of requests failed; the figures above are not a "
               "capacity measurement\n");

    if (!cfg->json)
        return;
    json_t *cpu = json_object();
    for (int i = 0; i < nroles; i++)
        json_object_set_new(cpu, roles[i].role,
                            json_real((double)roles[i].ticks * us_per_tick / (double)denom));
    json_object_set_new(cpu, "total", json_real(total_us));
    json_t *rereg =
        json_pack("{s:I,s:o,s:o}", "percent", (json_int_t)o->rereg_pct, "counts",
                  json_counts(&res->rereg), "latency_us", json_latency(res->rereg_hist));
    json_t *j = json_pack(
        "{s:s,s:s,s:s,s:I,s:I,s:f,s:f,s:{s:I,s:I,s:f,s:o,s:o},s:f,s:o,s:o,s:f,s:o,s:f,s:f,s:I,"
        "s:b}",
        "mode", cfg->mode, "target", cfg->target, "run", o->run_id, "vens", (json_int_t)o->vens,
        "connections", (json_int_t)nconns, "rate", o->rate, "duration_s", res->seconds,
        "registration", "registered", (json_int_t)res->registered, "failed",
        (json_int_t)res->reg_failed, "seconds", res->reg_seconds, "latency_us",
        json_latency(res->reg_hist), "counts", json_counts(&res->reg), "requests_per_s",
        (double)k->done / secs, "counts", json_counts(k), "latency_us", json_latency(h),
        "cpu_share_bench", self_pct / 100, "cpu_us_per_request", cpu, "machine_busy_share",
        mach_pct / 100, "other_busy_share", (other_pct > 0 ? other_pct : 0) / 100, "cpus",
        (json_int_t)ncpu, "interrupted", res->interrupted);
    if (j)
        json_object_set_new(j, "report_exchange", json_counts(&res->regrep));
    if (j && poll)
        json_object_set(j, "reregistration", rereg);
    json_decref(rereg);
    char *s = j ? json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(6)) : NULL;
    if (s)
        printf("%s\n", s);
    free(s);
    json_decref(j);
}

/* Each connection is a descriptor; raise the soft limit when there is room. */
static int check_fd_limit(uint32_t conns, char *err, size_t errlen)
{
    struct rlimit rl;
    rlim_t need = (rlim_t)conns + 64;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= need)
        return 0;
    if (rl.rlim_max >= need) {
        rl.rlim_cur = need;
        if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
            return 0;
    }
    snprintf(err, errlen, "%u connections need %llu file descriptors; the limit is %llu", conns,
             (unsigned long long)need, (unsigned long long)rl.rlim_max);
    return -EMFILE;
}

/* The events mode's own settings: the API (and Redis) to reach, the groups
 * and events to make. 0 or -EINVAL with a message. */
static int setup_events(const bn_cfg *cfg, bn_opts *o)
{
    if (!*cfg->api || vtn_addr_parse(cfg->api, &o->api_addr) < 0) {
        fprintf(stderr, "vtn-bench: --mode events needs --api host:port (the management API)\n");
        return -EINVAL;
    }
    if (*cfg->redis && vtn_addr_parse(cfg->redis, &o->redis_addr) < 0) {
        fprintf(stderr, "vtn-bench: --redis: \"%s\" is not host:port\n", cfg->redis);
        return -EINVAL;
    }
    o->have_redis = *cfg->redis != '\0';
    if (!cfg->allow_remote && (!bn_addr_is_loopback(&o->api_addr) ||
                               (o->have_redis && !bn_addr_is_loopback(&o->redis_addr)))) {
        fprintf(stderr, "vtn-bench: --api and --redis must be loopback addresses unless "
                        "--allow-remote\n");
        return -EINVAL;
    }
    if (strcmp(cfg->response_required, "always") != 0 &&
        strcmp(cfg->response_required, "never") != 0) {
        fprintf(stderr, "vtn-bench: --response-required: always or never\n");
        return -EINVAL;
    }
    vtn_addr_format((struct sockaddr *)&o->api_addr, o->api_host, sizeof o->api_host);
    o->api_token = cfg->api_token;
    o->groups = (uint32_t)cfg->ven_groups;
    o->events = (uint32_t)cfg->events;
    o->spread = cfg->spread;
    o->answer = !cfg->no_answer;
    o->rr_never = strcmp(cfg->response_required, "never") == 0;
    o->settle_ns = (uint64_t)cfg->settle_ms * 1000000ull;
    o->follow_ns = (uint64_t)cfg->follow_ms * 1000000ull;
    o->measure_ns = (uint64_t)cfg->measure_ms * 1000000ull;
    o->start_s = cfg->event_start_ms / 1000;
    return 0;
}

/* The reports mode's settings: its Redis (required, for the consumer). */
static int setup_reports(const bn_cfg *cfg, bn_opts *o)
{
    if (!*cfg->redis || vtn_addr_parse(cfg->redis, &o->redis_addr) < 0) {
        fprintf(stderr, "vtn-bench: --mode reports needs --redis host:port (the VTN's Redis, "
                        "read by the consumer)\n");
        return -EINVAL;
    }
    if (!cfg->allow_remote && !bn_addr_is_loopback(&o->redis_addr)) {
        fprintf(stderr, "vtn-bench: --redis must be a loopback address unless --allow-remote\n");
        return -EINVAL;
    }
    o->have_redis = 1;
    o->intervals = (uint32_t)cfg->intervals;
    return 0;
}

int main(int argc, char **argv)
{
    bn_cfg cfg;
    bn_opts o;
    bn_proc procs[BN_MAX_PIDS];
    char err[512];
    /* Subcommands that read run files instead of running a fleet. */
    if (argc > 1 && strcmp(argv[1], "plan") == 0)
        return bn_plan_main(argc - 1, argv + 1);
    if (argc > 1 && strcmp(argv[1], "svg") == 0)
        return bn_svg_main(argc - 1, argv + 1);
    memset(&cfg, 0, sizeof cfg);
    memset(&o, 0, sizeof o);
    vtn_log_init("bench");
    if (argc > 1 && strcmp(argv[1], "fleet") == 0)
        return bn_fleet_main(argc - 1, argv + 1); /* the fleet simulator: its own options */
    int rc =
        vtn_config_start(cfg_items, NCFG, &cfg, argc, argv, "vtn-bench",
                         "Simulates N VENs over keep-alive HTTP connections: each registers "
                         "(oadrCreatePartyRegistration),\nthen polls (oadrPoll) for a bounded "
                         "time. Prints requests/s, latency percentiles, errors\nand the CPU "
                         "each VTN process used per poll (from /proc, with --pids).\nWith "
                         "--tls over mutual TLS; --mode handshake measures new TLS "
                         "connections per second\nand CPU per handshake, --mode idle the "
                         "VTN's memory per idle TLS connection.\n`vtn-bench fleet "
                         "--scenario NAME` runs the fleet simulator (vtn-bench fleet --help).");
    if (rc >= 0)
        return rc;
    int status = 2;
    bn_tls_ctx *tls = NULL;
    if (strcmp(cfg.mode, "poll") == 0) {
        o.mode = BN_MODE_POLL;
    } else if (strcmp(cfg.mode, "register") == 0) {
        o.mode = BN_MODE_REGISTER;
    } else if (strcmp(cfg.mode, "handshake") == 0) {
        o.mode = BN_MODE_HANDSHAKE;
    } else if (strcmp(cfg.mode, "idle") == 0) {
        o.mode = BN_MODE_IDLE;
    } else if (strcmp(cfg.mode, "events") == 0) {
        o.mode = BN_MODE_EVENTS;
    } else if (strcmp(cfg.mode, "reports") == 0) {
        o.mode = BN_MODE_REPORTS;
    } else {
        fprintf(stderr,
                "vtn-bench: VTN_BENCH_MODE: \"%s\" is not poll, register, handshake, idle, "
                "events or reports\n",
                cfg.mode);
        goto out;
    }
    if (o.mode == BN_MODE_EVENTS && setup_events(&cfg, &o) < 0)
        goto out;
    if (o.mode == BN_MODE_REPORTS && setup_reports(&cfg, &o) < 0)
        goto out;
    int measured = o.mode == BN_MODE_HANDSHAKE || o.mode == BN_MODE_IDLE;
    if (o.mode == BN_MODE_HANDSHAKE && !cfg.tls) {
        fprintf(stderr, "vtn-bench: --mode handshake measures TLS handshakes: add --tls\n");
        goto out;
    }
    if (!cfg.tls &&
        (*cfg.cert || *cfg.key || *cfg.ca || cfg.insecure || cfg.tls13 || cfg.resume ||
         cfg.no_tickets || *cfg.groups || strcmp(cfg.ciphers, BN_TLS_DEFAULT_CIPHERS))) {
        fprintf(stderr, "vtn-bench: --cert, --key, --ca, --insecure, --ciphers, --groups, --tls13, "
                        "--resume and --no-tickets need --tls\n");
        goto out;
    }
    if (cfg.hs_poll && o.mode != BN_MODE_HANDSHAKE) {
        fprintf(stderr, "vtn-bench: --hs-poll belongs to --mode handshake\n");
        goto out;
    }
    vtn_addr_parse(cfg.target, &o.addr);
    if (!bn_addr_is_loopback(&o.addr) && !cfg.allow_remote) {
        fprintf(stderr,
                "vtn-bench: %s is not a loopback address; a load run against another host "
                "needs --allow-remote\n",
                cfg.target);
        goto out;
    }
    vtn_addr_format((struct sockaddr *)&o.addr, o.host, sizeof o.host);
    char *end;
    errno = 0;
    o.rereg_pct = (uint32_t)cfg.register_share;
    o.rate = strtod(cfg.rate, &end);
    if (*cfg.rate == '\0' || *end != '\0' || errno || !isfinite(o.rate) || o.rate < 0 ||
        o.rate > 10000) {
        fprintf(stderr, "vtn-bench: VTN_BENCH_RATE: \"%s\" is not a number in [0, 10000]\n",
                cfg.rate);
        goto out;
    }
    if (bn_run_id(cfg.run_id, o.run_id, sizeof o.run_id) < 0) {
        fprintf(stderr, "vtn-bench: VTN_BENCH_RUN: \"%s\" must be 1-24 of [A-Za-z0-9_-]\n",
                cfg.run_id);
        goto out;
    }
    rc = bn_pids_parse(cfg.pids, procs, BN_MAX_PIDS, err, sizeof err);
    if (rc < 0) {
        fprintf(stderr, "vtn-bench: %s\n", err);
        goto out;
    }
    o.procs = procs;
    o.nprocs = rc;
    for (int i = 0; i < o.nprocs; i++) {
        uint64_t t;
        if (bn_proc_ticks(procs[i].pid, &t) < 0) {
            fprintf(stderr, "vtn-bench: --pids: process %d (%s) is not readable in /proc\n",
                    (int)procs[i].pid, procs[i].role);
            goto out;
        }
    }
    o.hs_poll = cfg.hs_poll;
    o.ramp = (uint32_t)cfg.ramp;
    o.open_timeout_ns = (uint64_t)cfg.open_timeout_ms * 1000000ull;
    if (cfg.vens)
        o.vens = (uint32_t)cfg.vens;
    else if (o.mode == BN_MODE_IDLE || (o.mode == BN_MODE_HANDSHAKE && o.hs_poll))
        o.vens = 1;
    else
        o.vens = o.mode == BN_MODE_HANDSHAKE ? 0 : 200;
    if (o.mode == BN_MODE_EVENTS) {
        if (o.rate <= 0)
            o.rate = 0.1; /* every 10 s */
        if (cfg.settle_ms == 0)
            o.settle_ns = (uint64_t)(1e9 / o.rate) + 1000000000ull;
        if (o.groups > o.vens) {
            fprintf(stderr, "vtn-bench: --ven-groups must not exceed --vens\n");
            goto out;
        }
    }
    if (o.mode == BN_MODE_EVENTS || o.mode == BN_MODE_REPORTS)
        o.connections = o.vens; /* each VEN its own schedule and connection */
    else if (cfg.connections)
        o.connections = (uint32_t)cfg.connections;
    else
        o.connections = o.mode == BN_MODE_POLL        ? o.vens
                        : o.mode == BN_MODE_REGISTER  ? 64
                        : o.mode == BN_MODE_HANDSHAKE ? 16
                                                      : 1000;
    if (measured && o.vens > o.connections) {
        fprintf(stderr,
                "vtn-bench: --mode %s: --vens (%" PRIu32 ") must not exceed --connections "
                "(%" PRIu32 ")\n",
                cfg.mode, o.vens, o.connections);
        goto out;
    }
    if (o.mode == BN_MODE_HANDSHAKE && o.hs_poll && o.vens == 0) {
        fprintf(stderr, "vtn-bench: --hs-poll needs at least one VEN (--vens)\n");
        goto out;
    }
    uint32_t nconns =
        measured ? o.connections + o.vens : (o.connections < o.vens ? o.connections : o.vens);
    if (cfg.tls) {
        bn_tls_opts to;
        memset(&to, 0, sizeof to);
        to.cert = cfg.cert;
        to.key = cfg.key;
        to.ca = cfg.ca;
        to.insecure = cfg.insecure;
        to.ciphers = cfg.ciphers;
        to.groups = cfg.groups;
        to.tls13 = cfg.tls13;
        to.resume = cfg.resume;
        to.no_tickets = cfg.no_tickets;
        bn_addr_ip(&o.addr, to.verify_ip, sizeof to.verify_ip);
        /* A %d pattern expands to one certificate per VEN in handshake and idle
         * mode (per connection with no VEN), per connection in the others. */
        uint32_t ncerts = measured ? (o.vens ? o.vens : o.connections) : nconns;
        if (bn_tls_ctx_new(&to, ncerts, &tls, err, sizeof err) < 0) {
            fprintf(stderr, "vtn-bench: %s\n", err);
            goto out;
        }
        o.tls = tls;
        int pattern = bn_tls_path_is_pattern(cfg.cert);
        if (!measured && o.vens > 1 && (!pattern || nconns < o.vens))
            fprintf(stderr,
                    "vtn-bench: warning: VENs that share a connection%s present one certificate; "
                    "the VTN binds a certificate to one VEN, so they register as that VEN "
                    "(for distinct VENs: --cert/--key with %%d and one connection per VEN)\n",
                    pattern ? "" : " or a --cert");
    }
    o.duration_ns = (uint64_t)cfg.duration_ms * 1000000ull;
    o.timeout_ns = (uint64_t)cfg.timeout_ms * 1000000ull;
    o.register_timeout_ns = (uint64_t)cfg.register_timeout_ms * 1000000ull;
    o.max_requests = (uint64_t)cfg.max_requests;
    if (check_fd_limit(nconns, err, sizeof err) < 0) {
        fprintf(stderr, "vtn-bench: %s\n", err);
        goto out;
    }

    /* The hard cap: whatever happens to the target, this process ends. */
    unsigned cap =
        (unsigned)((cfg.register_timeout_ms + cfg.timeout_ms +
                    (o.mode != BN_MODE_REGISTER ? cfg.duration_ms : 0) +
                    (o.mode == BN_MODE_IDLE ? cfg.open_timeout_ms + 1000 : 0) +
                    (o.mode == BN_MODE_EVENTS ? (long long)(o.settle_ns / 1000000u) +
                                                    cfg.follow_ms + cfg.measure_ms + 60000
                                              : 0)) /
                       1000 +
                   30);
    bn_hard_cap(cap);

    bn_result res;
    rc = bn_run(&o, &res);
    alarm(0);
    if (rc < 0) {
        fprintf(stderr, "vtn-bench: cannot start: %s\n", strerror(-rc));
        goto out;
    }
    report(&cfg, &o, &res);
    fflush(stdout);
    if (o.mode == BN_MODE_HANDSHAKE) {
        status = (res.hs.ok == 0 || bn_counts_errors(&res.hs) > 0 || res.reg_failed > 0 ||
                  bn_counts_errors(&res.poll) > 0)
                     ? 1
                     : 0;
    } else if (o.mode == BN_MODE_IDLE) {
        status = (res.idle_ok == 0 || res.idle_failed || res.idle_lost || res.reg_failed ||
                  bn_counts_errors(&res.poll) > 0)
                     ? 1
                     : 0;
    } else if (o.mode == BN_MODE_EVENTS) {
        status = res.registered == 0 || res.ev_created < o.events || events_errors(&res) ? 1 : 0;
    } else if (o.mode == BN_MODE_REPORTS) {
        status = reports_failed(&res) ? 1 : 0;
    } else {
        const bn_counts *k = o.mode == BN_MODE_POLL ? &res.poll : &res.reg;
        status = (res.registered == 0 || bn_counts_errors(k) > 0 || res.reg_failed > 0) ? 1 : 0;
    }
    bn_result_free(&res);
out:
    bn_tls_ctx_free(&tls);
    vtn_config_free(cfg_items, NCFG, &cfg);
    return status;
}
