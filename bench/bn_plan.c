/* The capacity model (docs/capacity.md): reads run files of the bench result
 * contract, fits the CPU each VTN process spends per operation as a
 * function of the request rate, and sizes a fleet's gateways, workers and
 * Redis from it. */
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vtn/config.h"

#include "bn_internal.h"
#include "bn_plan.h"

const char *const bn_op_names[BN_OP_N] = {
    "poll",          "register",        "handshake",      "resumption",    "register_report",
    "update_report", "report_interval", "event_delivery", "created_event", "push"};
const char *const bn_role_names[BN_ROLE_N] = {"gateway", "worker", "redis"};
const char *const bn_kind_names[BN_KIND_N] = {"poll",       "registration",    "full handshake",
                                              "resumption", "report interval", "event delivery"};

/* The contract's op each kind is counted by. */
static const bn_op kind_op[BN_KIND_N] = {
    BN_OP_POLL,       BN_OP_REGISTER,        BN_OP_HANDSHAKE,
    BN_OP_RESUMPTION, BN_OP_REPORT_INTERVAL, BN_OP_EVENT_DELIVERY};

/* Which ops are requests or connections that wake a role on their own: a
 * handshake only reaches the gateway; intervals and deliveries ride inside
 * an update or a poll and wake nothing by themselves. */
static const unsigned char wakes[BN_OP_N][BN_ROLE_N] = {
    [BN_OP_POLL] = {1, 1, 1},
    [BN_OP_REGISTER] = {1, 1, 1},
    [BN_OP_HANDSHAKE] = {1, 0, 0},
    [BN_OP_RESUMPTION] = {1, 0, 0},
    [BN_OP_REGISTER_REPORT] = {1, 1, 1},
    [BN_OP_UPDATE_REPORT] = {1, 1, 1},
    [BN_OP_CREATED_EVENT] = {1, 1, 1},
    [BN_OP_PUSH] = {1, 1, 1},
};

/* A poll run feeds the curve when its other requests are under this share
 * of its polls (legacy poll runs carry a few report exchanges). */
#define POLL_ONLY_SHARE 0.02

/* ---- run files ---- */

static int bad(char *err, size_t errlen, const char *path, const char *what)
{
    snprintf(err, errlen, "%s: %s", path, what);
    return -EINVAL;
}

/* A JSON number (integer or real) >= 0 at o.key; 1 found, 0 absent, -1 not a number. */
static int num_at(json_t *o, const char *key, double *out)
{
    json_t *v = json_is_object(o) ? json_object_get(o, key) : NULL;
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_number(v))
        return -1;
    double d = json_number_value(v);
    if (!isfinite(d) || d < 0)
        return -1;
    *out = d;
    return 1;
}

static int load_ops(json_t *root, const char *path, bn_runfile *run, char *err, size_t errlen)
{
    json_t *ops = json_object_get(root, "ops");
    if (!json_is_object(ops))
        return bad(err, errlen, path, "\"ops\" missing or not an object");
    for (int i = 0; i < BN_OP_N; i++) {
        json_t *o = json_object_get(ops, bn_op_names[i]);
        char what[96];
        if (o == NULL)
            continue;
        double c = 0, r = 0;
        int hc = json_is_object(o) ? num_at(o, "count", &c) : -1;
        int hr = json_is_object(o) ? num_at(o, "per_s", &r) : -1;
        if (hc < 0 || hr < 0) {
            snprintf(what, sizeof what, "ops.%s: count and per_s must be numbers >= 0",
                     bn_op_names[i]);
            return bad(err, errlen, path, what);
        }
        /* The CPU figures are over duration_s, so the rates must be too: the
         * count is what counts, a per_s over another window (a setup phase)
         * is not used. */
        run->count[i] = hc ? c : r * run->duration_s;
        run->per_s[i] = run->count[i] / run->duration_s;
    }
    return 0;
}

static int load_processes(json_t *root, const char *path, bn_runfile *run, char *err, size_t errlen)
{
    json_t *procs = json_object_get(root, "processes");
    if (procs == NULL)
        return 0; /* not measured: the run can be drawn but not fitted */
    if (!json_is_object(procs))
        return bad(err, errlen, path, "\"processes\" is not an object");
    int have = 0;
    for (int r = 0; r < BN_ROLE_N; r++) {
        json_t *p = json_object_get(procs, bn_role_names[r]);
        if (p == NULL)
            continue;
        if (num_at(p, "cpu_s", &run->cpu_s[r]) != 1) {
            char what[96];
            snprintf(what, sizeof what, "processes.%s.cpu_s missing or not a number >= 0",
                     bn_role_names[r]);
            return bad(err, errlen, path, what);
        }
        have++;
    }
    run->has_cpu = have == BN_ROLE_N;
    return 0;
}

static void load_config(json_t *root, bn_runfile *run)
{
    json_t *cfg = json_object_get(root, "config");
    double v;
    run->pool[BN_ROLE_GATEWAY] = num_at(cfg, "gateways", &v) == 1 && v >= 1 ? (int)v : 1;
    run->pool[BN_ROLE_WORKER] = num_at(cfg, "workers", &v) == 1 && v >= 1 ? (int)v : 1;
    run->pool[BN_ROLE_REDIS] = 1;
    if (num_at(cfg, "vens", &v) == 1)
        run->vens = v;
    json_t *redis = json_object_get(root, "redis");
    if (num_at(redis, "used_memory_start", &run->mem_start) == 1 &&
        num_at(redis, "used_memory_end", &run->mem_end) == 1)
        run->has_mem = 1;
    run->bytes_per_ven = -1;
    if (num_at(redis, "bytes_per_ven", &v) == 1)
        run->bytes_per_ven = v;
}

int bn_runfile_load(const char *path, bn_runfile *run, char *err, size_t errlen)
{
    memset(run, 0, sizeof *run);
    snprintf(run->name, sizeof run->name, "%s", path);
    json_t *root = bn_json_load(path, err, errlen);
    if (root == NULL)
        return -EINVAL;
    int rc = -EINVAL;
    const char *schema = json_string_value(json_object_get(root, "schema"));
    const char *scen = json_string_value(json_object_get(root, "scenario"));
    if (!json_is_object(root)) {
        bad(err, errlen, path, "not a JSON object");
    } else if (schema == NULL || strcmp(schema, BN_RUN_SCHEMA) != 0) {
        bad(err, errlen, path, "\"schema\" is not \"" BN_RUN_SCHEMA "\"");
    } else if (scen == NULL || *scen == '\0' || strlen(scen) >= sizeof run->scenario) {
        bad(err, errlen, path, "\"scenario\" missing or not a short string");
    } else if (num_at(root, "duration_s", &run->duration_s) != 1 || run->duration_s <= 0) {
        bad(err, errlen, path, "\"duration_s\" missing or not a positive number");
    } else {
        snprintf(run->scenario, sizeof run->scenario, "%s", scen);
        load_config(root, run);
        if (load_ops(root, path, run, err, errlen) == 0 &&
            load_processes(root, path, run, err, errlen) == 0)
            rc = 0;
    }
    json_decref(root);
    return rc;
}

/* ---- the model ---- */

/* The curve at rate, interpolated linearly in log(rate)-log(cost) between
 * measured points; outside them the nearest point, *where -1 below, +1 above. */
static double curve_at(const bn_curve *c, double rate, int *where)
{
    *where = 0;
    if (c->n == 0 || rate <= 0)
        return 0;
    if (rate <= c->rate[0]) {
        *where = rate < c->rate[0] * 0.995 ? -1 : 0;
        return c->per_req[0];
    }
    if (rate >= c->rate[c->n - 1]) {
        *where = rate > c->rate[c->n - 1] * 1.005 ? 1 : 0;
        return c->per_req[c->n - 1];
    }
    int i = 0;
    while (i + 2 < c->n && rate >= c->rate[i + 1])
        i++;
    double t = log(rate / c->rate[i]) / log(c->rate[i + 1] / c->rate[i]);
    double a = c->per_req[i], b = c->per_req[i + 1];
    if (a <= 0 || b <= 0)
        return a + t * (b - a);
    return exp(log(a) + t * log(b / a));
}

/* The per-request wake-up cost at a rate: what a poll costs there above
 * its cost at the highest measured rate. */
static double wake_at(const bn_model *m, int r, double rate, int *where)
{
    double w = curve_at(&m->curve[r], rate, where) - m->cost[BN_KIND_POLL][r];
    return w > 0 ? w : 0;
}

static double wake_rate(const double per_s[BN_OP_N], int r)
{
    double s = 0;
    for (int o = 0; o < BN_OP_N; o++)
        if (wakes[o][r])
            s += per_s[o];
    return s;
}

void bn_plan_predict(const bn_model *m, const double per_s[BN_OP_N], const int replicas[BN_ROLE_N],
                     double cores[BN_ROLE_N], bn_range *range)
{
    memset(range, 0, sizeof *range);
    for (int r = 0; r < BN_ROLE_N; r++) {
        double c = 0;
        for (int k = 0; k < BN_KIND_N; k++)
            c += per_s[kind_op[k]] * m->cost[k][r];
        double req = wake_rate(per_s, r);
        int n = replicas && replicas[r] > 0 ? replicas[r] : m->pool[r];
        /* Each of n replicas sees req/n; the curve was measured with pool[r]. */
        double scale = (double)m->pool[r] / (double)n, eff = req * scale;
        int where = 0, w_o;
        double s = m->wake_own ? 0 : m->share[r];
        if (req > 0)
            c += s * req * wake_at(m, r, eff, &where);
        for (int o = 0; o < BN_OP_N && s < 1; o++)
            if (wakes[o][r] && per_s[o] > 0)
                c += (1 - s) * per_s[o] * wake_at(m, r, per_s[o] * scale, &w_o);
        range->rate[r] = eff;
        if (where < 0)
            range->below |= 1u << r;
        if (where > 0)
            range->above |= 1u << r;
        cores[r] = c;
    }
}

static void note(bn_model *m, const char *fmt, const char *a, const char *b)
{
    size_t len = strlen(m->notes);
    if (len + 1 < sizeof m->notes)
        snprintf(m->notes + len, sizeof m->notes - len, fmt, a, b);
}

/* Other operations per poll in a run (infinite without polls). */
static double others_per_poll(const bn_runfile *run)
{
    double others = 0;
    for (int o = 0; o < BN_OP_N; o++)
        if (o != BN_OP_POLL &&
            (wakes[o][BN_ROLE_GATEWAY] || o == BN_OP_REPORT_INTERVAL || o == BN_OP_EVENT_DELIVERY))
            others += run->per_s[o];
    return run->per_s[BN_OP_POLL] > 0 ? others / run->per_s[BN_OP_POLL] : INFINITY;
}

static int poll_only(const bn_runfile *run)
{
    return run->has_cpu && others_per_poll(run) <= POLL_ONLY_SHARE;
}

/* Runs at the same rate (within 2 %) are averaged into one point, so that
 * repeated calibrations weigh alike and the interpolation never divides by 0. */
#define SAME_RATE 0.02

static void curve_add(bn_curve *c, double rate, double per_req)
{
    for (int j = 0; j < c->n; j++) {
        if (fabs(rate - c->rate[j]) > SAME_RATE * c->rate[j])
            continue;
        double k = c->runs[j];
        c->rate[j] = (c->rate[j] * k + rate) / (k + 1);
        c->per_req[j] = (c->per_req[j] * k + per_req) / (k + 1);
        c->runs[j]++;
        return;
    }
    if (c->n == BN_CURVE_MAX)
        return;
    int i = c->n;
    while (i > 0 && c->rate[i - 1] > rate) {
        c->rate[i] = c->rate[i - 1];
        c->per_req[i] = c->per_req[i - 1];
        c->runs[i] = c->runs[i - 1];
        i--;
    }
    c->rate[i] = rate;
    c->per_req[i] = per_req;
    c->runs[i] = 1;
    c->n++;
}

/* Kinds of request a run mixes, each at least a tenth of its requests: a
 * run of one kind prices an operation, a run of several measures how far
 * they share wake-ups. */
#define MIX_SHARE 0.1

static int request_kinds(const bn_runfile *run)
{
    double req = wake_rate(run->per_s, BN_ROLE_WORKER);
    int kinds = 0;
    for (int o = 0; o < BN_OP_N; o++)
        kinds += wakes[o][BN_ROLE_WORKER] && req > 0 && run->per_s[o] >= MIX_SHARE * req;
    return kinds;
}

/* CPU seconds per second of role r in a run that the known costs do not explain. */
static double residual(const bn_model *m, const bn_runfile *run, int r)
{
    double left = run->cpu_s[r] / run->duration_s;
    for (int k = 0; k < BN_KIND_N; k++)
        if (m->fitted[k])
            left -= run->per_s[kind_op[k]] * m->cost[k][r];
    double req = wake_rate(run->per_s, r);
    int where;
    if (req > 0)
        left -= req * wake_at(m, r, req * (double)m->pool[r] / (double)run->pool[r], &where);
    return left;
}

int bn_plan_fit(const bn_runfile *runs, int n, bn_model *m, char *err, size_t errlen)
{
    unsigned char used[256] = {0};
    memset(m, 0, sizeof *m);
    m->bytes_per_ven = m->bytes_per_interval = -1;
    m->runs = n;
    for (int r = 0; r < BN_ROLE_N; r++)
        m->share[r] = 1;
    if (n > (int)sizeof used) {
        snprintf(err, errlen, "at most %zu runs", sizeof used);
        return -EINVAL;
    }
    for (int i = 0; i < n; i++) {
        if (!poll_only(&runs[i]))
            continue;
        if (m->fitted[BN_KIND_POLL] == 0)
            memcpy(m->pool, runs[i].pool, sizeof m->pool);
        else if (memcmp(m->pool, runs[i].pool, sizeof m->pool) != 0)
            note(m, "%s: other gateway/worker counts than the first poll run; %s\n", runs[i].name,
                 "its rate is scaled to them");
        double rate = runs[i].per_s[BN_OP_POLL];
        for (int r = 0; r < BN_ROLE_N; r++)
            curve_add(&m->curve[r], rate * (double)m->pool[r] / (double)runs[i].pool[r],
                      runs[i].cpu_s[r] / runs[i].duration_s / rate);
        m->fitted[BN_KIND_POLL]++;
        used[i] = 1;
    }
    if (m->fitted[BN_KIND_POLL] == 0) {
        int best = -1;
        for (int i = 0; i < n; i++)
            if (runs[i].has_cpu &&
                (best < 0 || others_per_poll(&runs[i]) < others_per_poll(&runs[best])))
                best = i;
        char why[400] = "";
        if (best >= 0 && isfinite(others_per_poll(&runs[best])))
            snprintf(why, sizeof why,
                     "; the closest, %s, has %.1f %% other operations per poll (registrations "
                     "in the measured phase count: a longer run dilutes them)",
                     runs[best].name, others_per_poll(&runs[best]) * 100);
        snprintf(err, errlen,
                 "no poll-only run with CPU figures (\"processes\"; other operations under %.0f "
                 "%% of the polls) among the %d runs: the model prices every operation against "
                 "the poll curve%s",
                 POLL_ONLY_SHARE * 100, n, why);
        return -EINVAL;
    }
    for (int r = 0; r < BN_ROLE_N; r++)
        m->cost[BN_KIND_POLL][r] = m->curve[r].per_req[m->curve[r].n - 1];

    /* Each pass prices the kinds that are the only unknown of some run. */
    for (int pass = 0; pass < BN_KIND_N; pass++) {
        double num[BN_KIND_N][BN_ROLE_N] = {{0}}, den[BN_KIND_N] = {0};
        int nruns[BN_KIND_N] = {0};
        for (int i = 0; i < n; i++) {
            int unknown = -1, nunknown = 0;
            if (used[i] || !runs[i].has_cpu)
                continue;
            for (int k = 0; k < BN_KIND_N; k++)
                if (!m->fitted[k] && runs[i].count[kind_op[k]] > 0) {
                    unknown = k;
                    nunknown++;
                }
            /* A fan-out run mixes kinds of request by nature (the polls that
             * carry the events, the answers, the VENs' updates): its
             * deliveries are what the priced ones, wake-ups shared at the
             * run's rate, leave unexplained, the oadrCreatedEvent's own cost
             * beyond its wake-up included. */
            if (nunknown != 1 || (request_kinds(&runs[i]) > 1 && unknown != BN_KIND_EVENT_DELIVERY))
                continue;
            for (int r = 0; r < BN_ROLE_N; r++)
                num[unknown][r] += residual(m, &runs[i], r) * runs[i].duration_s;
            den[unknown] += runs[i].count[kind_op[unknown]];
            nruns[unknown]++;
            used[i] = 1;
        }
        int progress = 0;
        for (int k = 0; k < BN_KIND_N; k++) {
            if (den[k] <= 0)
                continue;
            for (int r = 0; r < BN_ROLE_N; r++) {
                double c = num[k][r] / den[k];
                if (c < 0) {
                    note(m,
                         "%s on the %s: the runs cost less than the poll curve predicts; "
                         "priced at 0\n",
                         bn_kind_names[k], bn_role_names[r]);
                    c = 0;
                }
                m->cost[k][r] = c;
            }
            m->fitted[k] = nruns[k];
            progress = 1;
        }
        if (!progress)
            break;
    }

    /* The share of wake-ups: a run with several kinds of request, all
     * priced, measures M = S·A + (1 - S)·B, A its wake-ups shared at the
     * total rate, B each kind's at its own; least squares over the runs. */
    double sxy[BN_ROLE_N] = {0}, sxx[BN_ROLE_N] = {0};
    for (int i = 0; i < n; i++) {
        const bn_runfile *run = &runs[i];
        int unknown = 0;
        if (used[i] || !run->has_cpu || request_kinds(run) < 2)
            continue;
        for (int k = 0; k < BN_KIND_N; k++)
            unknown += !m->fitted[k] && run->count[kind_op[k]] > 0;
        if (unknown)
            continue;
        for (int r = 0; r < BN_ROLE_N; r++) {
            double scale = (double)m->pool[r] / (double)run->pool[r], b = 0;
            double a = residual(m, run, r); /* M - A: residual() shares every wake-up */
            int where;
            for (int o = 0; o < BN_OP_N; o++)
                if (wakes[o][r] && run->per_s[o] > 0)
                    b += run->per_s[o] * wake_at(m, r, run->per_s[o] * scale, &where);
            double req = wake_rate(run->per_s, r);
            double A = req > 0 ? req * wake_at(m, r, req * scale, &where) : 0;
            /* M - B = (M - A) + (A - B) = S (A - B) */
            sxy[r] += (a + A - b) * (A - b);
            sxx[r] += (A - b) * (A - b);
        }
        used[i] = 1;
        m->share_runs++;
    }
    for (int r = 0; r < BN_ROLE_N; r++) {
        double sh = sxx[r] > 0 ? sxy[r] / sxx[r] : 1;
        m->share[r] = sh < 0 ? 0 : sh > 1 ? 1 : sh;
    }

    /* Memory: bytes per VEN from the runs that say so and stored nothing
     * else per VEN, bytes per stored interval from the growth of runs that
     * only stored intervals. A run with events holds each event and each
     * VEN's delivery of it (and its registrations, made before the measured
     * phase, in its growth): it prices neither. */
    double bpv = 0, nbpv = 0, grow = 0, nint = 0;
    for (int i = 0; i < n; i++) {
        const bn_runfile *run = &runs[i];
        int events = run->count[BN_OP_EVENT_DELIVERY] > 0 || run->count[BN_OP_CREATED_EVENT] > 0 ||
                     run->count[BN_OP_PUSH] > 0;
        if (events)
            continue;
        if (run->bytes_per_ven > 0 && run->count[BN_OP_REPORT_INTERVAL] == 0) {
            /* weighed by VENs: a few VENs' growth is mostly noise */
            double w = run->vens > 0 ? run->vens : 1;
            bpv += run->bytes_per_ven * w;
            nbpv += w;
        }
        if (run->has_mem && run->count[BN_OP_REPORT_INTERVAL] > 0 &&
            run->count[BN_OP_REGISTER] == 0) {
            grow += run->mem_end - run->mem_start;
            nint += run->count[BN_OP_REPORT_INTERVAL];
        }
    }
    if (nbpv > 0)
        m->bytes_per_ven = bpv / nbpv;
    if (nint > 0)
        m->bytes_per_interval = grow > 0 ? grow / nint : 0;
    for (int i = 0; i < n; i++)
        if (!used[i]) {
            m->runs_unused++;
            note(m, "%s: not used for CPU (%s)\n", runs[i].name,
                 runs[i].has_cpu ? "nothing in it is left to price, or several operations at once"
                                 : "no \"processes\" CPU figures");
        }
    return 0;
}

/* ---- sizing a fleet ---- */

static void fleet_rates(const bn_fleet *f, double scale, double per_s[BN_OP_N])
{
    double vens = f->vens * scale, pollers = vens * (1 - f->push_share);
    memset(per_s, 0, sizeof(double) * BN_OP_N);
    per_s[BN_OP_POLL] = pollers / f->poll_interval_s;
    double conns = pollers / f->reconnect_interval_s;
    per_s[BN_OP_HANDSHAKE] = conns * (1 - f->resumption_share);
    per_s[BN_OP_RESUMPTION] = conns * f->resumption_share;
    per_s[BN_OP_REGISTER] = f->register_interval_s > 0 ? vens / f->register_interval_s : 0;
    if (f->report_interval_s > 0) {
        per_s[BN_OP_UPDATE_REPORT] = vens / f->report_interval_s;
        per_s[BN_OP_REPORT_INTERVAL] = per_s[BN_OP_UPDATE_REPORT] * f->intervals_per_report;
    }
    per_s[BN_OP_EVENT_DELIVERY] = vens * f->events_per_day / 86400.0;
    per_s[BN_OP_CREATED_EVENT] = pollers * f->events_per_day / 86400.0;
    per_s[BN_OP_PUSH] = (vens - pollers) * f->events_per_day / 86400.0;
}

static double redis_cores_at(const bn_model *m, const bn_fleet *f, double scale)
{
    double per_s[BN_OP_N], cores[BN_ROLE_N];
    bn_range range;
    fleet_rates(f, scale, per_s);
    bn_plan_predict(m, per_s, NULL, cores, &range);
    return cores[BN_ROLE_REDIS] * (1 + f->headroom);
}

/* The replicas of a scaled-out role: the fewest whose cores, with
 * headroom, hold what they need at their own (lower) rate each. */
static int replicas_for(const bn_model *m, const bn_fleet *f, const double per_s[BN_OP_N], int r,
                        double *need)
{
    int reps[BN_ROLE_N] = {0}, n = 1;
    double cores[BN_ROLE_N];
    bn_range range;
    for (int guard = 0; guard < 100000; guard++) {
        reps[r] = n;
        bn_plan_predict(m, per_s, reps, cores, &range);
        int want = (int)ceil(cores[r] * (1 + f->headroom) / f->cpu_per_replica - 1e-9);
        if (want <= n)
            break;
        n = want > n + 1 ? want : n + 1;
    }
    *need = cores[r];
    return n;
}

int bn_plan_fleet(const bn_model *m, const bn_fleet *f, bn_plan *p, char *err, size_t errlen)
{
    memset(p, 0, sizeof *p);
    if (!(f->vens > 0) || !(f->poll_interval_s > 0) || !(f->reconnect_interval_s > 0) ||
        !(f->cpu_per_replica > 0) || f->headroom < 0 || f->resumption_share < 0 ||
        f->resumption_share > 1 || f->push_share < 0 || f->push_share > 1 ||
        !(f->redis_max_gb > 0)) {
        snprintf(err, errlen,
                 "the fleet needs VENs > 0, intervals > 0, shares in [0, 1], "
                 "headroom >= 0, CPU per replica > 0 and Redis memory > 0");
        return -EINVAL;
    }
    fleet_rates(f, 1, p->per_s);
    for (int k = 0; k < BN_KIND_N; k++)
        if (p->per_s[kind_op[k]] > 0 && !m->fitted[k])
            p->missing |= 1u << k;
    double need;
    p->replicas[BN_ROLE_GATEWAY] = replicas_for(m, f, p->per_s, BN_ROLE_GATEWAY, &need);
    p->cores[BN_ROLE_GATEWAY] = need;
    p->replicas[BN_ROLE_WORKER] = replicas_for(m, f, p->per_s, BN_ROLE_WORKER, &need);
    p->cores[BN_ROLE_WORKER] = need;
    int reps[BN_ROLE_N] = {p->replicas[0], p->replicas[1], 1};
    double cores[BN_ROLE_N];
    bn_plan_predict(m, p->per_s, reps, cores, &p->range);
    p->cores[BN_ROLE_REDIS] = cores[BN_ROLE_REDIS];
    p->redis_cores = cores[BN_ROLE_REDIS] * (1 + f->headroom);
    p->replicas[BN_ROLE_REDIS] = (int)ceil(p->redis_cores - 1e-9);
    p->redis_cpu_over = p->redis_cores > 1.0;

    /* The upper bound: no wake-up shared between kinds. */
    bn_model own = *m;
    own.wake_own = 1;
    p->upper_replicas[BN_ROLE_GATEWAY] =
        replicas_for(&own, f, p->per_s, BN_ROLE_GATEWAY, &p->upper_cores[BN_ROLE_GATEWAY]);
    p->upper_replicas[BN_ROLE_WORKER] =
        replicas_for(&own, f, p->per_s, BN_ROLE_WORKER, &p->upper_cores[BN_ROLE_WORKER]);
    int own_reps[BN_ROLE_N] = {p->upper_replicas[0], p->upper_replicas[1], 1};
    bn_range own_range;
    bn_plan_predict(&own, p->per_s, own_reps, cores, &own_range);
    p->upper_cores[BN_ROLE_REDIS] = cores[BN_ROLE_REDIS];
    p->upper_replicas[BN_ROLE_REDIS] = (int)ceil(cores[BN_ROLE_REDIS] * (1 + f->headroom) - 1e-9);

    for (int r = 0; r < BN_ROLE_N; r++) {
        double req = wake_rate(p->per_s, r);
        int where;
        double w = wake_at(m, r, p->range.rate[r], &where);
        for (int k = 0; k < BN_KIND_N; k++)
            p->us_per_op[k][r] = (m->cost[k][r] + (wakes[kind_op[k]][r] && req > 0 ? w : 0)) * 1e6;
    }

    /* Telemetry kept: the stream is cut at MAXLEN entries (one per report)
     * and at the retention's age, whichever is shorter. */
    double entries = p->per_s[BN_OP_UPDATE_REPORT] * f->telemetry_retention_s;
    if (f->telemetry_retention_s <= 0 || entries > f->telemetry_maxlen)
        entries = f->telemetry_maxlen;
    if (p->per_s[BN_OP_UPDATE_REPORT] <= 0)
        entries = 0;
    p->redis_bytes =
        f->vens * (m->bytes_per_ven > 0 ? m->bytes_per_ven : 0) +
        entries * f->intervals_per_report * (m->bytes_per_interval > 0 ? m->bytes_per_interval : 0);
    p->redis_gb = p->redis_bytes * (1 + f->headroom) / 1e9;

    /* How far the fleet can grow before one Redis primary runs out. */
    double lo = 1e-6, hi = 1e6;
    if (redis_cores_at(m, f, hi) <= 1) {
        p->growth_cpu = INFINITY;
    } else {
        for (int i = 0; i < 200 && hi / lo > 1.0001; i++) {
            double mid = sqrt(lo * hi);
            if (redis_cores_at(m, f, mid) > 1)
                hi = mid;
            else
                lo = mid;
        }
        p->growth_cpu = lo;
    }
    p->growth_mem = p->redis_gb > 0 ? f->redis_max_gb / p->redis_gb : INFINITY;
    p->first = p->growth_cpu <= p->growth_mem ? "Redis CPU" : "Redis memory";
    return 0;
}

/* ---- the command ---- */

typedef struct plan_cfg {
    char *runs;
    char *check;
    char *vens;
    long long poll_ms, reconnect_ms, report_ms, register_ms, retention_ms;
    long long intervals, maxlen;
    char *resumption, *events, *push, *headroom, *cpu, *max_gb;
    int json;
} plan_cfg;

#define F(x) offsetof(plan_cfg, x)
static const vtn_cfg_item plan_items[] = {
    {"VTN_PLAN_RUNS", "--runs", VTN_CFG_STR, F(runs), "", 0, 0,
     "the measured runs: files and directories (their *.json), comma-separated, e.g. "
     "a.json,b.json or the directory bench/fit.sh wrote"},
    {"VTN_PLAN_CHECK", "--check", VTN_CFG_STR, F(check), "", 0, 0,
     "runs the model was not fitted on (a.json,b.json): print the CPU it predicts for each "
     "run's operations against what was measured, per process"},
    {"VTN_PLAN_VENS", "--vens", VTN_CFG_STR, F(vens), "0", 0, 0, "VENs in the fleet"},
    {"VTN_PLAN_POLL_INTERVAL", "--poll-interval", VTN_CFG_MS, F(poll_ms), "60s", 1, 86400000,
     "each VEN's poll interval"},
    {"VTN_PLAN_RECONNECT_INTERVAL", "--reconnect-interval", VTN_CFG_MS, F(reconnect_ms), "0", 0,
     86400000 * 30LL,
     "how often a VEN opens a new TLS connection; 0 = for every poll (VENs that poll every "
     "minute or more rarely seldom keep a connection open between polls)"},
    {"VTN_PLAN_RESUMPTION_SHARE", "--resumption-share", VTN_CFG_STR, F(resumption), "0.9", 0, 0,
     "share of new connections that resume a TLS session (the rest are full handshakes)"},
    {"VTN_PLAN_REPORT_INTERVAL", "--report-interval", VTN_CFG_MS, F(report_ms), "0", 0, 86400000,
     "each VEN's oadrUpdateReport interval; 0 = no telemetry"},
    {"VTN_PLAN_INTERVALS", "--intervals", VTN_CFG_INT, F(intervals), "12", 1, 10000,
     "intervals per oadrUpdateReport"},
    {"VTN_PLAN_REGISTER_INTERVAL", "--register-interval", VTN_CFG_MS, F(register_ms), "24h", 0,
     86400000 * 365LL, "how often a VEN registers again (restarts, re-registrations); 0 = never"},
    {"VTN_PLAN_EVENTS_PER_DAY", "--events-per-day", VTN_CFG_STR, F(events), "0", 0, 0,
     "events each VEN receives per day (each answered with oadrCreatedEvent)"},
    {"VTN_PLAN_PUSH_SHARE", "--push-share", VTN_CFG_STR, F(push), "0", 0, 0,
     "share of VENs in push mode (they do not poll)"},
    {"VTN_PLAN_HEADROOM", "--headroom", VTN_CFG_STR, F(headroom), "30%", 0, 0,
     "spare capacity on top of the need, e.g. 30% or 0.3"},
    {"VTN_PLAN_CPU_PER_REPLICA", "--cpu-per-replica", VTN_CFG_STR, F(cpu), "1", 0, 0,
     "CPU cores one gateway or worker replica gets"},
    {"VTN_PLAN_REDIS_MAX_GB", "--redis-max-gb", VTN_CFG_STR, F(max_gb), "25", 0, 0,
     "memory one Redis primary may use (GB = 10^9 bytes), for 'runs out first'"},
    {"VTN_PLAN_TELEMETRY_MAXLEN", "--telemetry-maxlen", VTN_CFG_INT, F(maxlen), "1000000", 1,
     1000000000000LL, "the VTN's VTN_TELEMETRY_MAXLEN (stream entries kept, one per report)"},
    {"VTN_PLAN_TELEMETRY_RETENTION", "--telemetry-retention", VTN_CFG_MS, F(retention_ms), "168h",
     0, 86400000 * 3650LL, "the VTN's VTN_TELEMETRY_RETENTION; 0 = no age bound"},
    {"VTN_PLAN_JSON", "--json", VTN_CFG_BOOL, F(json), "false", 0, 0,
     "also print the plan as one JSON object"},
};
#undef F
#define NPLAN (sizeof plan_items / sizeof plan_items[0])

/* A number in [lo, hi]; "30%" is 0.3 where percent is allowed. */
static int parse_share(const char *name, const char *s, int percent, double lo, double hi,
                       double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (percent && *end == '%') {
        v /= 100;
        end++;
    }
    if (*s == '\0' || *end != '\0' || errno || !isfinite(v) || v < lo || v > hi) {
        fprintf(stderr, "vtn-bench plan: %s: \"%s\" is not a number in [%g, %g]%s\n", name, s, lo,
                hi, percent ? " (or a percentage)" : "");
        return -EINVAL;
    }
    *out = v;
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

#define MAX_RUNS 256

/* The *.json files of a directory, sorted, appended to paths. */
static int list_dir(const char *dir, char **paths, int n, int max)
{
    DIR *d = opendir(dir);
    int first = n;
    struct dirent *e;
    if (d == NULL)
        return -1;
    while ((e = readdir(d)) != NULL && n < max) {
        size_t len = strlen(e->d_name);
        if (len < 6 || strcmp(e->d_name + len - 5, ".json") != 0)
            continue;
        size_t sz = strlen(dir) + len + 2;
        paths[n] = malloc(sz);
        if (paths[n] == NULL)
            break;
        snprintf(paths[n++], sz, "%s/%s", dir, e->d_name);
    }
    closedir(d);
    qsort(paths + first, (size_t)(n - first), sizeof *paths, cmp_str);
    return n;
}

/* The run files named by --runs: files and directories (their *.json), comma-separated. */
static int list_runs(const char *spec, char **paths, int max)
{
    int n = 0;
    const char *cur = spec, *item;
    size_t len;
    while (n < max && vtn_cfg_list_next(&cur, &item, &len)) {
        char *one = len ? strndup(item, len) : NULL;
        if (one == NULL)
            continue;
        int got = list_dir(one, paths, n, max);
        if (got >= 0) {
            n = got;
            free(one);
        } else {
            paths[n++] = one;
        }
    }
    return n;
}

static void print_model(const bn_model *m)
{
    printf("model            %d runs; poll curve from %d of them (%d gateway(s), %d worker(s) "
           "measured)\n",
           m->runs, m->fitted[BN_KIND_POLL], m->pool[BN_ROLE_GATEWAY], m->pool[BN_ROLE_WORKER]);
    printf("%-16s %10s %10s %10s %10s  (µs of CPU per poll)\n", "poll curve", "polls/s", "gateway",
           "workers", "redis");
    int n = m->curve[0].n; /* the roles' curves have the same points unless pools differed */
    for (int r = 1; r < BN_ROLE_N; r++)
        n = m->curve[r].n < n ? m->curve[r].n : n;
    for (int i = 0; i < n; i++)
        printf("%-16s %10.0f %10.1f %10.1f %10.1f%s\n", "", m->curve[0].rate[i],
               m->curve[0].per_req[i] * 1e6, m->curve[1].per_req[i] * 1e6,
               m->curve[2].per_req[i] * 1e6, m->curve[0].runs[i] > 1 ? "  (runs averaged)" : "");
    printf("%-16s %10s %10s %10s  (µs of CPU per operation, at saturation; runs)\n",
           "marginal cost", "gateway", "workers", "redis");
    for (int k = 0; k < BN_KIND_N; k++) {
        if (!m->fitted[k]) {
            printf("  %-14s not measured\n", bn_kind_names[k]);
            continue;
        }
        printf("  %-14s %10.1f %10.1f %10.1f  (%d)\n", bn_kind_names[k], m->cost[k][0] * 1e6,
               m->cost[k][1] * 1e6, m->cost[k][2] * 1e6, m->fitted[k]);
    }
    if (m->share_runs)
        printf("%-16s gateway %.2f, workers %.2f, redis %.2f (1 = all kinds of request at their "
               "total rate, 0 = each at its own; %d run(s) mixing kinds)\n",
               "wake-ups shared", m->share[0], m->share[1], m->share[2], m->share_runs);
    else
        printf("%-16s taken as 1 (all at the total rate): no run mixes kinds of request\n",
               "wake-ups shared");
    if (m->bytes_per_ven >= 0)
        printf("%-16s %.0f bytes per registered VEN\n", "redis memory", m->bytes_per_ven);
    if (m->bytes_per_interval >= 0)
        printf("%-16s %.1f bytes per stored report interval\n", "", m->bytes_per_interval);
    if (m->notes[0])
        printf("%s", m->notes);
}

static void print_range(const bn_model *m, const bn_range *g)
{
    for (int r = 0; r < BN_ROLE_N; r++) {
        const bn_curve *c = &m->curve[r];
        if (g->below & (1u << r))
            printf("EXTRAPOLATED: %s: %.1f requests/s per replica is below the measured %.0f; "
                   "the cost per request at %.0f/s is used, and a lower rate costs more per "
                   "request: the figure is an underestimate\n",
                   bn_role_names[r], g->rate[r], c->rate[0], c->rate[0]);
        if (g->above & (1u << r))
            printf("EXTRAPOLATED: %s: %.0f requests/s per replica is above the highest measured "
                   "%.0f; the cost per request at %.0f/s is used (CPU grows linearly beyond it)\n",
                   bn_role_names[r], g->rate[r], c->rate[c->n - 1], c->rate[c->n - 1]);
    }
}

static int run_check(const bn_model *m, const char *path, int json)
{
    bn_runfile run;
    char err[512];
    if (bn_runfile_load(path, &run, err, sizeof err) < 0) {
        fprintf(stderr, "vtn-bench plan: --check: %s\n", err);
        return 2;
    }
    if (!run.has_cpu) {
        fprintf(stderr, "vtn-bench plan: --check: %s has no \"processes\" CPU figures\n", path);
        return 2;
    }
    double cores[BN_ROLE_N], upper[BN_ROLE_N], total_p = 0, total_m = 0, total_u = 0, worst = 0;
    bn_range range, urange;
    bn_model own = *m;
    own.wake_own = 1;
    bn_plan_predict(m, run.per_s, run.pool, cores, &range);
    bn_plan_predict(&own, run.per_s, run.pool, upper, &urange);
    printf("check            %s (%s, %.1f s):", path, run.scenario, run.duration_s);
    for (int o = 0; o < BN_OP_N; o++)
        if (run.per_s[o] > 0)
            printf(" %s %.0f/s", bn_op_names[o], run.per_s[o]);
    printf("\n%-16s %12s %12s %10s %12s %10s\n", "CPU cores", "predicted", "measured", "error",
           "upper bound", "its error");
    json_t *jc = json ? json_object() : NULL;
    for (int r = 0; r <= BN_ROLE_N; r++) {
        double p = r < BN_ROLE_N ? cores[r] : total_p;
        double u = r < BN_ROLE_N ? upper[r] : total_u;
        double meas = r < BN_ROLE_N ? run.cpu_s[r] / run.duration_s : total_m;
        double e = meas > 0 ? (p - meas) / meas * 100 : 0;
        double eu = meas > 0 ? (u - meas) / meas * 100 : 0;
        if (r < BN_ROLE_N) {
            total_p += p;
            total_u += u;
            total_m += meas;
        }
        if (fabs(e) > worst)
            worst = fabs(e);
        const char *name = r < BN_ROLE_N ? bn_role_names[r] : "total";
        printf("  %-14s %12.3f %12.3f %+9.1f%% %12.3f %+9.1f%%\n", name, p, meas, e, u, eu);
        if (jc)
            json_object_set_new(jc, name,
                                json_pack("{s:f,s:f,s:f,s:f,s:f}", "predicted", p, "measured", meas,
                                          "error_pct", e, "upper_bound", u, "upper_bound_error_pct",
                                          eu));
    }
    for (int k = 0; k < BN_KIND_N; k++)
        if (run.count[kind_op[k]] > 0 && !m->fitted[k])
            printf("NOT PRICED: %s (no calibration run measured it)\n", bn_kind_names[k]);
    print_range(m, &range);
    printf("%-16s largest error %.1f%%: %s 20%%\n", "verdict", worst,
           worst <= 20 ? "within" : "NOT within");
    if (jc) {
        bn_print_json(
            json_pack("{s:s,s:o,s:f}", "check", path, "cores", jc, "largest_error_pct", worst));
    }
    return 0;
}

static void print_plan(const bn_model *m, const bn_fleet *f, const bn_plan *p)
{
    static const char *const what[BN_ROLE_N] = {"gateways", "workers", "redis"};
    printf("fleet            %.0f VENs, poll every %g s, new connection every %g s (%.0f%% "
           "resumed), report every %g s x %g intervals, re-register every %g s, %g events/day, "
           "%.0f%% push; headroom %.0f%%, %g core(s) per replica\n",
           f->vens, f->poll_interval_s, f->reconnect_interval_s, f->resumption_share * 100,
           f->report_interval_s, f->intervals_per_report, f->register_interval_s, f->events_per_day,
           f->push_share * 100, f->headroom * 100, f->cpu_per_replica);
    printf("%-16s", "rates");
    for (int o = 0; o < BN_OP_N; o++)
        if (p->per_s[o] > 0)
            printf(" %s %.1f/s", bn_op_names[o], p->per_s[o]);
    printf("\n%-16s %10s %10s %10s  (µs of CPU per operation at this fleet's rate)\n", "cost",
           "gateway", "worker", "redis");
    for (int k = 0; k < BN_KIND_N; k++)
        if (p->per_s[kind_op[k]] > 0 && m->fitted[k])
            printf("  %-14s %10.1f %10.1f %10.1f\n", bn_kind_names[k], p->us_per_op[k][0],
                   p->us_per_op[k][1], p->us_per_op[k][2]);
    for (int r = 0; r < 2; r++)
        printf("%-16s %d replica(s) of %g core(s): %.3f cores needed, %.3f with headroom "
               "(%.0f requests/s each)\n",
               what[r], p->replicas[r], f->cpu_per_replica, p->cores[r],
               p->cores[r] * (1 + f->headroom), wake_rate(p->per_s, r) / p->replicas[r]);
    printf("%-16s %.3f cores needed, %.3f with headroom%s\n", "redis CPU", p->cores[BN_ROLE_REDIS],
           p->redis_cores,
           p->redis_cpu_over ? ": MORE THAN ONE CORE - one Redis primary runs its commands on one "
                               "core, so this fleet exceeds it (shard the fleet over several "
                               "VTNs, or lower the rates)"
                             : " (one primary's single core holds it)");
    printf("%-16s if no wake-up were shared between kinds of request: gateways %d (%.3f "
           "cores), workers %d (%.3f), redis %.3f cores, with headroom %.3f\n",
           "upper bound", p->upper_replicas[0], p->upper_cores[0], p->upper_replicas[1],
           p->upper_cores[1], p->upper_cores[2], p->upper_cores[2] * (1 + f->headroom));
    printf("%-16s %.2f GB needed with headroom (%.0f bytes before it: VENs %s, telemetry %s)\n",
           "redis memory", p->redis_gb, p->redis_bytes,
           m->bytes_per_ven >= 0 ? "measured" : "NOT MEASURED",
           p->per_s[BN_OP_REPORT_INTERVAL] <= 0 ? "none"
           : m->bytes_per_interval >= 0         ? "measured"
                                                : "NOT MEASURED");
    char cpu[96], mem[96];
    if (isinf(p->growth_cpu))
        snprintf(cpu, sizeof cpu, "never (no Redis CPU measured)");
    else
        snprintf(cpu, sizeof cpu, "%.2f x this fleet (%.0f VENs)", p->growth_cpu,
                 p->growth_cpu * f->vens);
    if (isinf(p->growth_mem))
        snprintf(mem, sizeof mem, "never (no Redis memory measured)");
    else
        snprintf(mem, sizeof mem, "%.2f x (%.0f VENs)", p->growth_mem, p->growth_mem * f->vens);
    printf("%-16s %s: one Redis primary's core is full at %s, its %g GB at %s; gateways and "
           "workers scale out\n",
           "runs out first", p->first, cpu, f->redis_max_gb, mem);
    for (int k = 0; k < BN_KIND_N; k++)
        if (p->missing & (1u << k))
            printf("NOT PRICED: %s: the fleet has them but no run measured them; their CPU is "
                   "left out\n",
                   bn_kind_names[k]);
    if (p->per_s[BN_OP_PUSH] > 0)
        printf("NOTE: push deliveries are priced as event deliveries; the VTN's outgoing "
               "connections to push VENs are not measured\n");
    print_range(m, &p->range);
}

static json_t *plan_json(const bn_model *m, const bn_fleet *f, const bn_plan *p)
{
    json_t *rates = json_object(), *cost = json_object(), *missing = json_array();
    for (int o = 0; o < BN_OP_N; o++)
        json_object_set_new(rates, bn_op_names[o], json_real(p->per_s[o]));
    for (int k = 0; k < BN_KIND_N; k++) {
        if (!m->fitted[k]) {
            if (p->missing & (1u << k))
                json_array_append_new(missing, json_string(bn_kind_names[k]));
            continue;
        }
        json_object_set_new(cost, bn_op_names[kind_op[k]],
                            json_pack("{s:f,s:f,s:f}", "gateway_us", p->us_per_op[k][0],
                                      "worker_us", p->us_per_op[k][1], "redis_us",
                                      p->us_per_op[k][2]));
    }
    return json_pack(
        "{s:{s:f,s:f,s:f,s:f,s:f,s:f,s:f,s:f,s:f,s:f},s:o,s:o,"
        "s:{s:i,s:f,s:f},s:{s:i,s:f,s:f},s:{s:f,s:f,s:b,s:f,s:f},s:s,s:f,s:f,s:o,s:b,s:b}",
        "fleet", "vens", f->vens, "poll_interval_s", f->poll_interval_s, "reconnect_interval_s",
        f->reconnect_interval_s, "resumption_share", f->resumption_share, "report_interval_s",
        f->report_interval_s, "intervals_per_report", f->intervals_per_report, "events_per_day",
        f->events_per_day, "push_share", f->push_share, "headroom", f->headroom, "cpu_per_replica",
        f->cpu_per_replica, "rates_per_s", rates, "cost_per_op", cost, "gateways", "replicas",
        p->replicas[0], "cores", p->cores[0], "cores_with_headroom",
        p->cores[0] * (1 + f->headroom), "workers", "replicas", p->replicas[1], "cores",
        p->cores[1], "cores_with_headroom", p->cores[1] * (1 + f->headroom), "redis", "cores",
        p->cores[2], "cores_with_headroom", p->redis_cores, "exceeds_one_core", p->redis_cpu_over,
        "gb_with_headroom", p->redis_gb, "bytes", p->redis_bytes, "runs_out_first", p->first,
        "growth_redis_cpu", isinf(p->growth_cpu) ? -1.0 : p->growth_cpu, "growth_redis_memory",
        isinf(p->growth_mem) ? -1.0 : p->growth_mem, "not_priced", missing, "extrapolated_below",
        p->range.below != 0, "extrapolated_above", p->range.above != 0);
}

static int fleet_from_cfg(const plan_cfg *c, bn_fleet *f)
{
    memset(f, 0, sizeof *f);
    if (parse_share("--vens", c->vens, 0, 0, 1e9, &f->vens) < 0 ||
        parse_share("--resumption-share", c->resumption, 1, 0, 1, &f->resumption_share) < 0 ||
        parse_share("--events-per-day", c->events, 0, 0, 1e6, &f->events_per_day) < 0 ||
        parse_share("--push-share", c->push, 1, 0, 1, &f->push_share) < 0 ||
        parse_share("--headroom", c->headroom, 1, 0, 10, &f->headroom) < 0 ||
        parse_share("--cpu-per-replica", c->cpu, 0, 0.01, 1024, &f->cpu_per_replica) < 0 ||
        parse_share("--redis-max-gb", c->max_gb, 0, 0.001, 1e6, &f->redis_max_gb) < 0)
        return -EINVAL;
    f->poll_interval_s = (double)c->poll_ms / 1e3;
    f->reconnect_interval_s = c->reconnect_ms ? (double)c->reconnect_ms / 1e3 : f->poll_interval_s;
    f->report_interval_s = (double)c->report_ms / 1e3;
    f->intervals_per_report = (double)c->intervals;
    f->register_interval_s = (double)c->register_ms / 1e3;
    f->telemetry_maxlen = (double)c->maxlen;
    f->telemetry_retention_s = (double)c->retention_ms / 1e3;
    return 0;
}

int bn_plan_main(int argc, char **argv)
{
    plan_cfg cfg;
    char *paths[MAX_RUNS];
    bn_runfile *runs = NULL;
    bn_model *m = NULL;
    char err[1024];
    int n = 0, status = 2;
    memset(&cfg, 0, sizeof cfg);
    int rc = vtn_config_start(plan_items, NPLAN, &cfg, argc, argv, "vtn-bench plan",
                              "Fits the CPU and Redis memory each operation costs to measured "
                              "runs (--runs),\nthen sizes a fleet (--vens ...): gateway and "
                              "worker replicas, Redis CPU and memory,\nwith headroom, and what "
                              "runs out first. See docs/capacity.md.");
    if (rc >= 0)
        return rc;
    bn_fleet f;
    if (fleet_from_cfg(&cfg, &f) < 0)
        goto out;
    if (!*cfg.runs) {
        fprintf(stderr, "vtn-bench plan: --runs: name the measured runs (files or a directory)\n");
        goto out;
    }
    if (f.vens <= 0 && !*cfg.check) {
        fprintf(stderr, "vtn-bench plan: --vens: how many VENs the fleet has (or --check RUN)\n");
        goto out;
    }
    n = list_runs(cfg.runs, paths, MAX_RUNS);
    if (n == 0) {
        fprintf(stderr, "vtn-bench plan: --runs: no run files in \"%s\"\n", cfg.runs);
        goto out;
    }
    runs = calloc((size_t)n, sizeof *runs);
    m = calloc(1, sizeof *m);
    if (runs == NULL || m == NULL)
        goto out;
    for (int i = 0; i < n; i++)
        if (bn_runfile_load(paths[i], &runs[i], err, sizeof err) < 0) {
            fprintf(stderr, "vtn-bench plan: %s\n", err);
            goto out;
        }
    if (bn_plan_fit(runs, n, m, err, sizeof err) < 0) {
        fprintf(stderr, "vtn-bench plan: %s\n", err);
        goto out;
    }
    print_model(m);
    status = 0;
    const char *cur = cfg.check, *item;
    size_t len;
    while (status == 0 && vtn_cfg_list_next(&cur, &item, &len)) {
        char path[1024];
        if (len == 0 || len >= sizeof path)
            continue;
        memcpy(path, item, len);
        path[len] = '\0';
        status = run_check(m, path, cfg.json);
    }
    if (status == 0 && f.vens > 0) {
        bn_plan p;
        if (bn_plan_fleet(m, &f, &p, err, sizeof err) < 0) {
            fprintf(stderr, "vtn-bench plan: %s\n", err);
            status = 2;
            goto out;
        }
        print_plan(m, &f, &p);
        if (cfg.json) {
            bn_print_json(plan_json(m, &f, &p));
        }
    }
out:
    for (int i = 0; i < n; i++)
        free(paths[i]);
    free(runs);
    free(m);
    vtn_config_free(plan_items, NPLAN, &cfg);
    return status;
}
