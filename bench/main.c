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
} bn_cfg;

#define F(x) offsetof(bn_cfg, x)
static const vtn_cfg_item cfg_items[] = {
    {"VTN_BENCH_TARGET", "--target", VTN_CFG_ADDR, F(target), "127.0.0.1:8080", 0, 0,
     "the VTN's OpenADR listener (loopback only unless --allow-remote)"},
    {"VTN_BENCH_MODE", "--mode", VTN_CFG_STR, F(mode), "poll", 0, 0,
     "poll: register every VEN, then measure oadrPoll; register: measure registrations only; "
     "handshake: new TLS connections in a closed loop (needs --tls); idle: open --connections "
     "connections (TLS with --tls), one poll each, hold them idle and read the VTN's memory"},
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
     "idle mode: connections connecting and handshaking at once"},
    {"VTN_BENCH_OPEN_TIMEOUT", "--open-timeout", VTN_CFG_MS, F(open_timeout_ms), "120s", 100,
     3600000, "idle mode: connections not idle by then are given up and the memory is read"},
};
#undef F
#define NCFG (sizeof cfg_items / sizeof cfg_items[0])

static void on_alarm(int sig)
{
    static const char msg[] = "vtn-bench: hard wall-clock limit reached, exiting\n";
    (void)sig;
    ssize_t w = write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)w;
    _exit(3);
}

static const char *fmt_ms(char *out, size_t len, uint64_t ns)
{
    snprintf(out, len, "%.3f ms", (double)ns / 1e6);
    return out;
}

static uint64_t errors_of(const bn_counts *k)
{
    return k->http + k->oadr + k->timeouts + k->conn + k->io + k->tls;
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
           label, errors_of(k), k->http, k->oadr, k->timeouts, k->conn, k->io);
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

static void print_json(json_t *j)
{
    char *s = j ? json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(6)) : NULL;
    if (s)
        printf("%s\n", s);
    free(s);
    json_decref(j);
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
    if (errors_of(k))
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
    print_json(json_pack(
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
    print_json(json_pack(
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

static void report(const bn_cfg *cfg, const bn_opts *o, const bn_result *res)
{
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
    if (poll && errors_of(&res->reg))
        print_counts_line("  reg. errors", &res->reg);
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
        if (errors_of(&res->rereg))
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
    if (errors_of(k) * 1000 > k->done)
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
    if (j && poll)
        json_object_set(j, "reregistration", rereg);
    json_decref(rereg);
    char *s = j ? json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(6)) : NULL;
    if (s)
        printf("%s\n", s);
    free(s);
    json_decref(j);
}

static int valid_run_id(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 24)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!(s[i] >= 'a' && s[i] <= 'z') && !(s[i] >= 'A' && s[i] <= 'Z') &&
            !(s[i] >= '0' && s[i] <= '9') && s[i] != '-' && s[i] != '_')
            return 0;
    return 1;
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

int main(int argc, char **argv)
{
    bn_cfg cfg;
    bn_opts o;
    bn_proc procs[BN_MAX_PIDS];
    char err[512];
    memset(&cfg, 0, sizeof cfg);
    memset(&o, 0, sizeof o);
    vtn_log_init("bench");
    int rc = vtn_config_start(cfg_items, NCFG, &cfg, argc, argv, "vtn-bench",
                              "Simulates N VENs over keep-alive HTTP connections: each registers "
                              "(oadrCreatePartyRegistration),\nthen polls (oadrPoll) for a bounded "
                              "time. Prints requests/s, latency percentiles, errors\nand the CPU "
                              "each VTN process used per poll (from /proc, with --pids).\nWith "
                              "--tls over mutual TLS; --mode handshake measures new TLS "
                              "connections per second\nand CPU per handshake, --mode idle the "
                              "VTN's memory per idle TLS connection.");
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
    } else {
        fprintf(stderr,
                "vtn-bench: VTN_BENCH_MODE: \"%s\" is not poll, register, handshake or idle\n",
                cfg.mode);
        goto out;
    }
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
    if (*cfg.run_id) {
        if (!valid_run_id(cfg.run_id)) {
            fprintf(stderr, "vtn-bench: VTN_BENCH_RUN: \"%s\" must be 1-24 of [A-Za-z0-9_-]\n",
                    cfg.run_id);
            goto out;
        }
        snprintf(o.run_id, sizeof o.run_id, "%s", cfg.run_id);
    } else {
        uint64_t r = 0;
        if (vtn_random64(&r) < 0)
            r = (uint64_t)getpid() * 2654435761u;
        snprintf(o.run_id, sizeof o.run_id, "%08x", (unsigned)(r & 0xffffffffu));
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
    if (cfg.connections)
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
        const void *ip = o.addr.ss_family == AF_INET6
                             ? (const void *)&((struct sockaddr_in6 *)&o.addr)->sin6_addr
                             : (const void *)&((struct sockaddr_in *)&o.addr)->sin_addr;
        inet_ntop(o.addr.ss_family, ip, to.verify_ip, sizeof to.verify_ip);
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
    unsigned cap = (unsigned)((cfg.register_timeout_ms + cfg.timeout_ms +
                               (o.mode != BN_MODE_REGISTER ? cfg.duration_ms : 0) +
                               (o.mode == BN_MODE_IDLE ? cfg.open_timeout_ms + 1000 : 0)) /
                                  1000 +
                              30);
    signal(SIGALRM, on_alarm);
    signal(SIGPIPE, SIG_IGN);
    alarm(cap);

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
        status = (res.hs.ok == 0 || errors_of(&res.hs) > 0 || res.reg_failed > 0 ||
                  errors_of(&res.poll) > 0)
                     ? 1
                     : 0;
    } else if (o.mode == BN_MODE_IDLE) {
        status = (res.idle_ok == 0 || res.idle_failed || res.idle_lost || res.reg_failed ||
                  errors_of(&res.poll) > 0)
                     ? 1
                     : 0;
    } else {
        const bn_counts *k = o.mode == BN_MODE_POLL ? &res.poll : &res.reg;
        status = (res.registered == 0 || errors_of(k) > 0 || res.reg_failed > 0) ? 1 : 0;
    }
    bn_result_free(&res);
out:
    bn_tls_ctx_free(&tls);
    vtn_config_free(cfg_items, NCFG, &cfg);
    return status;
}
