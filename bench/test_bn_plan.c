/* The capacity model and the run picture on fixture run files whose costs
 * are known (testdata/plan: a poll curve of 220/70/20 µs per poll on the
 * gateway at 100/1,000/10,000 polls/s, registrations of 50/150/80 µs,
 * handshakes of 500 µs on the gateway only, report intervals of 2/10/5 µs,
 * 700 bytes per VEN, 60 bytes per stored interval). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bn_plan.h"

#define PLAN BN_TESTDATA "/plan/"
#define US(x) ((x)*1e-6)

static const char *const fixtures[] = {"poll-100.json", "poll-1000.json", "poll-10000.json",
                                       "register.json", "handshake.json", "reports.json"};
#define NFIX (sizeof fixtures / sizeof fixtures[0])

static void load_all(bn_runfile *runs, size_t n)
{
    char path[512], err[512];
    for (size_t i = 0; i < n; i++) {
        snprintf(path, sizeof path, PLAN "%s", fixtures[i]);
        int rc = bn_runfile_load(path, &runs[i], err, sizeof err);
        if (rc != 0)
            fail_msg("%s", err);
    }
}

static void fit_all(bn_model *m)
{
    bn_runfile runs[NFIX];
    char err[512];
    load_all(runs, NFIX);
    assert_int_equal(bn_plan_fit(runs, (int)NFIX, m, err, sizeof err), 0);
}

static void test_fit_gives_back_known_costs(void **state)
{
    (void)state;
    bn_model m;
    fit_all(&m);
    assert_int_equal(m.fitted[BN_KIND_POLL], 3);
    assert_int_equal(m.curve[BN_ROLE_GATEWAY].n, 3);
    assert_int_equal(m.pool[BN_ROLE_WORKER], 2);
    /* the poll's own cost is its cost at the highest rate */
    assert_float_equal(m.cost[BN_KIND_POLL][BN_ROLE_GATEWAY], US(20), 1e-9);
    assert_float_equal(m.cost[BN_KIND_POLL][BN_ROLE_WORKER], US(40), 1e-9);
    assert_float_equal(m.cost[BN_KIND_POLL][BN_ROLE_REDIS], US(10), 1e-9);
    /* the others come back once the wake-ups at their rate are taken off */
    assert_int_equal(m.fitted[BN_KIND_REGISTER], 1);
    assert_float_equal(m.cost[BN_KIND_REGISTER][BN_ROLE_GATEWAY], US(50), 1e-9);
    assert_float_equal(m.cost[BN_KIND_REGISTER][BN_ROLE_WORKER], US(150), 1e-9);
    assert_float_equal(m.cost[BN_KIND_REGISTER][BN_ROLE_REDIS], US(80), 1e-9);
    assert_float_equal(m.cost[BN_KIND_HANDSHAKE][BN_ROLE_GATEWAY], US(500), 1e-9);
    assert_float_equal(m.cost[BN_KIND_HANDSHAKE][BN_ROLE_WORKER], 0, 1e-12);
    assert_float_equal(m.cost[BN_KIND_REPORT_INTERVAL][BN_ROLE_GATEWAY], US(2), 1e-9);
    assert_float_equal(m.cost[BN_KIND_REPORT_INTERVAL][BN_ROLE_WORKER], US(10), 1e-9);
    assert_float_equal(m.cost[BN_KIND_REPORT_INTERVAL][BN_ROLE_REDIS], US(5), 1e-9);
    assert_int_equal(m.fitted[BN_KIND_RESUMPTION], 0);
    assert_int_equal(m.fitted[BN_KIND_EVENT_DELIVERY], 0);
    assert_float_equal(m.bytes_per_ven, 700, 1e-6);
    assert_float_equal(m.bytes_per_interval, 60, 1e-6);
    assert_int_equal(m.runs_unused, 0);
}

static void test_repeated_rates_are_averaged(void **state)
{
    (void)state;
    bn_runfile runs[3];
    bn_model m;
    char err[256];
    load_all(runs, 2); /* poll-100, poll-1000 */
    runs[2] = runs[1];
    runs[2].per_s[BN_OP_POLL] *= 1.01;          /* "the same rate", within 2 % */
    runs[2].cpu_s[BN_ROLE_GATEWAY] *= 1.01 * 2; /* twice the CPU per poll */
    assert_int_equal(bn_plan_fit(runs, 3, &m, err, sizeof err), 0);
    assert_int_equal(m.curve[BN_ROLE_GATEWAY].n, 2);
    assert_int_equal(m.curve[BN_ROLE_GATEWAY].runs[1], 2);
    assert_float_equal(m.curve[BN_ROLE_GATEWAY].rate[1], 1005, 1e-6);
    assert_float_equal(m.curve[BN_ROLE_GATEWAY].per_req[1], US(105), 1e-9);
    assert_float_equal(m.cost[BN_KIND_POLL][BN_ROLE_WORKER], US((100 + 100 / 1.01) / 2), 1e-9);
}

/* A run of polls and updates together whose gateway shares half its
 * wake-ups gives the share back; the other roles share them all. */
static void test_share_of_wake_ups(void **state)
{
    (void)state;
    bn_runfile runs[NFIX + 1];
    bn_model m0, m;
    char err[256];
    double per_s[BN_OP_N] = {0}, shared[BN_ROLE_N], own[BN_ROLE_N];
    bn_range g;
    load_all(runs, NFIX);
    assert_int_equal(bn_plan_fit(runs, (int)NFIX, &m0, err, sizeof err), 0);
    assert_int_equal(m0.share_runs, 0);
    assert_float_equal(m0.share[BN_ROLE_GATEWAY], 1, 0);
    per_s[BN_OP_POLL] = 900;
    per_s[BN_OP_UPDATE_REPORT] = 100;
    per_s[BN_OP_REPORT_INTERVAL] = 1200;
    bn_plan_predict(&m0, per_s, NULL, shared, &g);
    m0.wake_own = 1;
    bn_plan_predict(&m0, per_s, NULL, own, &g);
    assert_true(own[BN_ROLE_GATEWAY] > shared[BN_ROLE_GATEWAY]);

    bn_runfile *mix = &runs[NFIX];
    *mix = runs[NFIX - 1]; /* reports.json: 10 s, two workers */
    snprintf(mix->name, sizeof mix->name, "mix");
    for (int o = 0; o < BN_OP_N; o++) {
        mix->per_s[o] = per_s[o];
        mix->count[o] = per_s[o] * mix->duration_s;
    }
    mix->has_mem = 0;
    mix->cpu_s[BN_ROLE_GATEWAY] = (shared[0] + own[0]) / 2 * mix->duration_s;
    mix->cpu_s[BN_ROLE_WORKER] = shared[1] * mix->duration_s;
    mix->cpu_s[BN_ROLE_REDIS] = own[2] * mix->duration_s * 2; /* more than no sharing: 0 */
    assert_int_equal(bn_plan_fit(runs, (int)NFIX + 1, &m, err, sizeof err), 0);
    assert_int_equal(m.share_runs, 1);
    assert_int_equal(m.runs_unused, 0);
    assert_float_equal(m.share[BN_ROLE_GATEWAY], 0.5, 1e-9);
    assert_float_equal(m.share[BN_ROLE_WORKER], 1, 1e-9);
    assert_float_equal(m.share[BN_ROLE_REDIS], 0, 0);
    /* the mix run priced nothing: the interval's cost is still reports.json's */
    assert_float_equal(m.cost[BN_KIND_REPORT_INTERVAL][BN_ROLE_WORKER], US(10), 1e-9);
    double cores[BN_ROLE_N];
    bn_plan_predict(&m, per_s, NULL, cores, &g);
    assert_float_equal(cores[BN_ROLE_GATEWAY], mix->cpu_s[BN_ROLE_GATEWAY] / 10, 1e-9);
}

/* A fan-out run (polls, the VENs' updates, the events delivered and
 * answered, several kinds at once) prices an event delivery at what the
 * priced operations leave; its Redis growth, events and registrations in
 * it, prices neither a VEN nor an interval. */
static void test_fanout_prices_event_delivery(void **state)
{
    (void)state;
    bn_runfile runs[NFIX + 1];
    bn_model m0, m;
    char err[256];
    const double deliver[BN_ROLE_N] = {US(30), US(300), US(200)};
    double per_s[BN_OP_N] = {0}, known[BN_ROLE_N], cores[BN_ROLE_N];
    bn_range g;
    load_all(runs, NFIX);
    assert_int_equal(bn_plan_fit(runs, (int)NFIX, &m0, err, sizeof err), 0);
    per_s[BN_OP_POLL] = 1000;
    per_s[BN_OP_UPDATE_REPORT] = 100;
    per_s[BN_OP_REPORT_INTERVAL] = 100;
    per_s[BN_OP_EVENT_DELIVERY] = 200; /* each answered with an oadrCreatedEvent */
    per_s[BN_OP_CREATED_EVENT] = 200;
    bn_plan_predict(&m0, per_s, NULL, known, &g);

    bn_runfile *fan = &runs[NFIX];
    *fan = runs[NFIX - 1]; /* reports.json: 10 s, two workers */
    snprintf(fan->name, sizeof fan->name, "fanout");
    snprintf(fan->scenario, sizeof fan->scenario, "event-fanout");
    for (int o = 0; o < BN_OP_N; o++) {
        fan->per_s[o] = per_s[o];
        fan->count[o] = per_s[o] * fan->duration_s;
    }
    for (int r = 0; r < BN_ROLE_N; r++)
        fan->cpu_s[r] = (known[r] + per_s[BN_OP_EVENT_DELIVERY] * deliver[r]) * fan->duration_s;
    fan->vens = 10000;
    fan->bytes_per_ven = 5000;
    fan->mem_end = fan->mem_start + 50e6;
    assert_int_equal(bn_plan_fit(runs, (int)NFIX + 1, &m, err, sizeof err), 0);
    assert_int_equal(m.runs_unused, 0);
    assert_int_equal(m.fitted[BN_KIND_EVENT_DELIVERY], 1);
    for (int r = 0; r < BN_ROLE_N; r++)
        assert_float_equal(m.cost[BN_KIND_EVENT_DELIVERY][r], deliver[r], 1e-9);
    /* the rest is priced as before, and the memory comes from the runs meant for it */
    assert_float_equal(m.cost[BN_KIND_REPORT_INTERVAL][BN_ROLE_WORKER], US(10), 1e-9);
    assert_float_equal(m.bytes_per_ven, 700, 1e-6);
    assert_float_equal(m.bytes_per_interval, 60, 1e-6);
    bn_plan_predict(&m, per_s, NULL, cores, &g);
    for (int r = 0; r < BN_ROLE_N; r++)
        assert_float_equal(cores[r], fan->cpu_s[r] / fan->duration_s, 1e-9);
}

static void test_predict_interpolates_in_log_space(void **state)
{
    (void)state;
    bn_model m;
    double per_s[BN_OP_N] = {0}, cores[BN_ROLE_N];
    bn_range g;
    fit_all(&m);
    /* halfway between 100 and 1,000 polls/s in log space: the geometric mean of the costs */
    per_s[BN_OP_POLL] = sqrt(100.0 * 1000.0);
    bn_plan_predict(&m, per_s, NULL, cores, &g);
    assert_float_equal(cores[BN_ROLE_GATEWAY], per_s[BN_OP_POLL] * US(sqrt(220.0 * 70)), 1e-9);
    assert_float_equal(cores[BN_ROLE_WORKER], per_s[BN_OP_POLL] * US(sqrt(300.0 * 100)), 1e-9);
    assert_int_equal(g.below | g.above, 0);
    /* at a measured point, exactly what was measured */
    per_s[BN_OP_POLL] = 1000;
    bn_plan_predict(&m, per_s, NULL, cores, &g);
    assert_float_equal(cores[BN_ROLE_GATEWAY], 0.07, 1e-9);
    assert_float_equal(cores[BN_ROLE_REDIS], 0.02, 1e-9);
    /* a mix: the polls' and the intervals' costs add, the wake-ups are shared by all requests */
    memset(per_s, 0, sizeof per_s);
    per_s[BN_OP_POLL] = 900;
    per_s[BN_OP_UPDATE_REPORT] = 100;
    per_s[BN_OP_REPORT_INTERVAL] = 1200;
    bn_plan_predict(&m, per_s, NULL, cores, &g);
    assert_float_equal(cores[BN_ROLE_GATEWAY], 900 * US(20) + 1200 * US(2) + 1000 * US(50), 1e-9);
    /* the upper bound: each kind pays the wake-ups of its own rate (100 updates/s: 200 µs) */
    m.wake_own = 1;
    bn_plan_predict(&m, per_s, NULL, cores, &g);
    double at900 = US(exp(log(220.0) + log(900 / 100.0) / log(10.0) * log(70 / 220.0)));
    assert_float_equal(cores[BN_ROLE_GATEWAY], 900 * at900 + 1200 * US(2) + 100 * US(200), 1e-9);
}

static void test_refuses_silent_extrapolation(void **state)
{
    (void)state;
    bn_model m;
    double per_s[BN_OP_N] = {0}, cores[BN_ROLE_N];
    bn_range g;
    fit_all(&m);
    per_s[BN_OP_POLL] = 10; /* below the lowest measured 100/s */
    bn_plan_predict(&m, per_s, NULL, cores, &g);
    assert_true(g.below & (1u << BN_ROLE_GATEWAY));
    assert_float_equal(g.rate[BN_ROLE_GATEWAY], 10, 1e-9);
    assert_float_equal(cores[BN_ROLE_GATEWAY], 10 * US(220), 1e-12);
    per_s[BN_OP_POLL] = 50000; /* above the highest */
    bn_plan_predict(&m, per_s, NULL, cores, &g);
    assert_true(g.above & (1u << BN_ROLE_REDIS));
    assert_int_equal(g.below, 0);
    assert_float_equal(cores[BN_ROLE_REDIS], 50000 * US(10), 1e-9);
}

static bn_fleet base_fleet(void)
{
    bn_fleet f;
    memset(&f, 0, sizeof f);
    f.vens = 1000000;
    f.poll_interval_s = 10;
    f.reconnect_interval_s = 1e12; /* connections that live forever */
    f.intervals_per_report = 12;
    f.headroom = 0.3;
    f.cpu_per_replica = 1;
    f.redis_max_gb = 25;
    f.telemetry_maxlen = 1e6;
    f.telemetry_retention_s = 7 * 86400;
    return f;
}

static void test_replica_arithmetic(void **state)
{
    (void)state;
    bn_model m;
    bn_plan p;
    char err[256];
    fit_all(&m);
    /* 100,000 polls/s at saturation cost: gateway 2.0 cores, workers 4.0, Redis 1.0 */
    bn_fleet f = base_fleet();
    assert_int_equal(bn_plan_fleet(&m, &f, &p, err, sizeof err), 0);
    assert_float_equal(p.per_s[BN_OP_POLL], 100000, 1e-6);
    assert_float_equal(p.cores[BN_ROLE_GATEWAY], 2.0, 1e-6);
    assert_int_equal(p.replicas[BN_ROLE_GATEWAY], 3); /* 2.6 with headroom */
    assert_int_equal(p.replicas[BN_ROLE_WORKER], 6);  /* 5.2 */
    assert_float_equal(p.redis_cores, 1.3, 1e-6);
    assert_true(p.redis_cpu_over); /* more than one primary's single core */
    assert_string_equal(p.first, "Redis CPU");
    assert_float_equal(p.growth_cpu, 1 / 1.3, 1e-3);
    assert_true(p.range.above != 0);
    assert_float_equal(p.redis_bytes, 1e6 * 700, 1);
    /* polls alone: nothing to share, the upper bound is the plan */
    assert_int_equal(p.upper_replicas[BN_ROLE_WORKER], 6);
    assert_float_equal(p.upper_cores[BN_ROLE_REDIS], p.cores[BN_ROLE_REDIS], 1e-6);

    /* Replicas share the rate: each sees less and so pays more per poll.
     * 1,000 polls/s on 0.05-core gateways: 1 needs 0.091 cores, 2 at 500/s
     * each 0.129, 3 at 333/s 0.157, 4 at 250/s 0.181 <= 0.2. */
    f.vens = 10000;
    f.cpu_per_replica = 0.05;
    assert_int_equal(bn_plan_fleet(&m, &f, &p, err, sizeof err), 0);
    assert_int_equal(p.replicas[BN_ROLE_GATEWAY], 4);
    assert_float_equal(p.range.rate[BN_ROLE_GATEWAY], 250, 1e-9);
    assert_true(p.cores[BN_ROLE_GATEWAY] * 1.3 <= 4 * 0.05);
    assert_true(p.cores[BN_ROLE_GATEWAY] > 0.07); /* more than one gateway at 1,000/s */
    assert_false(p.redis_cpu_over);

    /* telemetry: a report every 300 s, 12 intervals, kept up to MAXLEN entries */
    f = base_fleet();
    f.vens = 100000;
    f.poll_interval_s = 60;
    f.report_interval_s = 300;
    assert_int_equal(bn_plan_fleet(&m, &f, &p, err, sizeof err), 0);
    assert_float_equal(p.per_s[BN_OP_REPORT_INTERVAL], 4000, 1e-6);
    assert_float_equal(p.redis_bytes, 100000 * 700.0 + 1e6 * 12 * 60, 1);
    assert_float_equal(p.redis_gb, p.redis_bytes * 1.3 / 1e9, 1e-9);
    assert_int_equal(p.missing, 0);
    /* a fleet with events nobody measured says so */
    f.events_per_day = 4;
    assert_int_equal(bn_plan_fleet(&m, &f, &p, err, sizeof err), 0);
    assert_true(p.missing & (1u << BN_KIND_EVENT_DELIVERY));
    /* an impossible fleet is refused */
    f.push_share = 1.5;
    assert_int_equal(bn_plan_fleet(&m, &f, &p, err, sizeof err), -EINVAL);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void expect_load_error(const char *text, const char *want)
{
    char path[] = "/tmp/bn_plan_badXXXXXX";
    char err[512] = "";
    bn_runfile run;
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    write_file(path, text);
    assert_int_equal(bn_runfile_load(path, &run, err, sizeof err), -EINVAL);
    unlink(path);
    if (strstr(err, want) == NULL)
        fail_msg("error \"%s\" does not say \"%s\"", err, want);
}

#define HEAD "{\"schema\":\"openvtn-bench/1\",\"scenario\":\"poll\","

static void test_bad_run_files(void **state)
{
    (void)state;
    char err[512];
    bn_runfile run;
    expect_load_error("{\"schema\": \"openvtn-bench/1\",\n \"scenario\": ", "not JSON (line 2");
    expect_load_error("[1, 2]", "not a JSON object");
    expect_load_error("{\"schema\":\"openvtn-bench/2\"}", "\"schema\" is not");
    expect_load_error(HEAD "\"ops\":{}}", "\"duration_s\" missing");
    expect_load_error(HEAD "\"duration_s\":-3,\"ops\":{}}", "\"duration_s\" missing");
    expect_load_error(HEAD "\"duration_s\":3}", "\"ops\" missing");
    expect_load_error(HEAD "\"duration_s\":3,\"ops\":{\"poll\":{\"count\":-1}}}",
                      "ops.poll: count and per_s must be numbers >= 0");
    expect_load_error(HEAD "\"duration_s\":3,\"ops\":{\"poll\":{\"count\":\"9\"}}}", "ops.poll");
    expect_load_error(HEAD "\"duration_s\":3,\"ops\":{},\"processes\":{\"redis\":{}}}",
                      "processes.redis.cpu_s missing");
    assert_int_equal(bn_runfile_load("/nonexistent/run.json", &run, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "/nonexistent/run.json"));

    /* runs without a poll curve cannot price anything */
    bn_runfile runs[2];
    bn_model m;
    load_all(runs, 1);
    runs[0].per_s[BN_OP_REGISTER] = runs[0].per_s[BN_OP_POLL];
    runs[0].count[BN_OP_REGISTER] = runs[0].count[BN_OP_POLL];
    assert_int_equal(bn_plan_fit(runs, 1, &m, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "no poll-only run with CPU figures"));
}

/* The number of "x,y" pairs in a polyline's points. */
static int count_points(const char *pts)
{
    int n = 0;
    for (const char *p = pts; *p; p++)
        if (*p == ',')
            n++;
    return n;
}

static xmlNode *find_id(xmlNode *n, const char *id)
{
    for (; n; n = n->next) {
        if (n->type != XML_ELEMENT_NODE)
            continue;
        xmlChar *v = xmlGetProp(n, (const xmlChar *)"id");
        int hit = v && strcmp((const char *)v, id) == 0;
        xmlFree(v);
        if (hit)
            return n;
        xmlNode *c = find_id(n->children, id);
        if (c)
            return c;
    }
    return NULL;
}

static int points_of(xmlDoc *doc, const char *id)
{
    xmlNode *n = find_id(xmlDocGetRootElement(doc), id);
    if (n == NULL)
        fail_msg("no element with id %s", id);
    xmlChar *pts = xmlGetProp(n, (const xmlChar *)"points");
    assert_non_null(pts);
    int c = count_points((const char *)pts);
    xmlFree(pts);
    return c;
}

static void test_svg_of_fixture(void **state)
{
    (void)state;
    char out[] = "/tmp/bn_svg_XXXXXX", err[512];
    int fd = mkstemp(out);
    assert_true(fd >= 0);
    close(fd);
    int rc = bn_svg_from_json(BN_TESTDATA "/svg/run.json", out, err, sizeof err);
    if (rc != 0)
        fail_msg("%s", err);
    xmlDoc *doc = xmlReadFile(out, NULL, XML_PARSE_NONET | XML_PARSE_NOERROR);
    unlink(out);
    assert_non_null(doc);
    xmlNode *root = xmlDocGetRootElement(doc);
    assert_string_equal((const char *)root->name, "svg");
    assert_non_null(find_id(root, "panel-throughput"));
    assert_non_null(find_id(root, "panel-latency"));
    assert_non_null(find_id(root, "panel-errors"));
    /* 12 samples; the first second had no request, so no latency */
    assert_int_equal(points_of(doc, "throughput"), 12);
    assert_int_equal(points_of(doc, "errors"), 12);
    assert_int_equal(points_of(doc, "latency-p50"), 11);
    assert_int_equal(points_of(doc, "latency-p99"), 11);
    /* three phases in a row, setup / measure / restart / measure: four bands */
    int bands = 0;
    for (xmlNode *n = find_id(root, "phases")->children; n; n = n->next)
        if (n->type == XML_ELEMENT_NODE && strcmp((const char *)n->name, "rect") == 0)
            bands++;
    assert_int_equal(bands, 4);
    /* the title names the scenario (escaped in the file), the VENs and the date */
    xmlChar *title = xmlNodeGetContent(find_id(root, "title"));
    assert_non_null(strstr((const char *)title, "poll <utility & co>"));
    assert_non_null(strstr((const char *)title, "1000 VENs"));
    assert_non_null(strstr((const char *)title, "2026-12-03T08:00:00Z"));
    xmlFree(title);
    xmlFreeDoc(doc);
}

static void test_svg_of_broken_json(void **state)
{
    (void)state;
    char err[512] = "";
    const char *out = "/tmp/bn_svg_never_written.svg";
    unlink(out);
    assert_int_equal(bn_svg_from_json(BN_TESTDATA "/svg/broken.json", out, err, sizeof err),
                     -EINVAL);
    assert_non_null(strstr(err, "broken.json: not JSON (line "));
    assert_int_equal(access(out, F_OK), -1); /* nothing half-written */
    /* a run file without a timeline says what is missing */
    assert_int_equal(bn_svg_from_json(BN_TESTDATA "/plan/poll-100.json", out, err, sizeof err),
                     -EINVAL);
    assert_non_null(strstr(err, "\"timeline\" missing"));
    assert_int_equal(access(out, F_OK), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fit_gives_back_known_costs),
        cmocka_unit_test(test_repeated_rates_are_averaged),
        cmocka_unit_test(test_share_of_wake_ups),
        cmocka_unit_test(test_fanout_prices_event_delivery),
        cmocka_unit_test(test_predict_interpolates_in_log_space),
        cmocka_unit_test(test_refuses_silent_extrapolation),
        cmocka_unit_test(test_replica_arithmetic),
        cmocka_unit_test(test_bad_run_files),
        cmocka_unit_test(test_svg_of_fixture),
        cmocka_unit_test(test_svg_of_broken_json),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    xmlCleanupParser();
    return rc;
}
