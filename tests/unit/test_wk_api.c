/* The worker's management API parsing: routes, methods, bearer token, query
 * strings, provisioning bodies, pagination cursors, fingerprints. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "wk_api.h"

static int route(const char *path, char *ven, const char **q, size_t *qn)
{
    return wk_api_route_of(path, strlen(path), ven, q, qn);
}

static void test_routes(void **state)
{
    (void)state;
    char ven[WK_ID_MAX + 1];
    const char *q;
    size_t qn;
    assert_int_equal(route("/api/v1/vens", ven, &q, &qn), WK_API_VENS);
    assert_null(q);
    assert_int_equal(route("/api/v1/health", ven, &q, &qn), WK_API_HEALTH);
    assert_int_equal(route("/api/v1/health/", ven, &q, &qn), WK_API_HEALTH);
    assert_int_equal(route("/api/v1/healthz", ven, &q, &qn), WK_API_NONE);
    assert_string_equal(wk_api_allow(WK_API_HEALTH), "GET");
    assert_int_equal(route("/api/v1/vens/", ven, &q, &qn), WK_API_VENS);
    assert_int_equal(route("/api/v1/vens?limit=5&name=x", ven, &q, &qn), WK_API_VENS);
    assert_non_null(q);
    assert_int_equal(qn, strlen("limit=5&name=x"));
    assert_memory_equal(q, "limit=5&name=x", qn);

    assert_int_equal(route("/api/v1/vens/ven-0123456789abcdef0123", ven, &q, &qn), WK_API_VEN);
    assert_string_equal(ven, "ven-0123456789abcdef0123");
    assert_int_equal(route("/api/v1/vens/ven-1/", ven, &q, &qn), WK_API_VEN);
    assert_string_equal(ven, "ven-1");
    assert_int_equal(route("/api/v1/vens/ven-1?force=true", ven, &q, &qn), WK_API_VEN);
    assert_int_equal(qn, strlen("force=true"));
    assert_int_equal(route("/api/v1/vens/ven-1/reregister", ven, &q, &qn), WK_API_REREGISTER);
    assert_string_equal(ven, "ven-1");
    assert_int_equal(route("/api/v1/vens/ven-1/reregister/", ven, &q, &qn), WK_API_REREGISTER);

    /* Unknown paths are 404s, including ids with characters a venID never has. */
    assert_int_equal(route("/api/v1/venz", ven, &q, &qn), WK_API_NONE);
    assert_int_equal(route("/api/v1/vensx", ven, &q, &qn), WK_API_NONE);
    assert_int_equal(route("/api/v1", ven, &q, &qn), WK_API_NONE);
    assert_int_equal(route("/api/v2/vens", ven, &q, &qn), WK_API_NONE);
    assert_int_equal(route("/api/v1/vens/ven-1/other", ven, &q, &qn), WK_API_NONE);
    assert_int_equal(route("/api/v1/vens/ven-1/reregister/x", ven, &q, &qn), WK_API_NONE);
    assert_int_equal(route("/api/v1/vens/ven%201", ven, &q, &qn), WK_API_NONE);
    assert_int_equal(route("/api/v1/vens/{x}", ven, &q, &qn), WK_API_NONE);
    assert_int_equal(route("/api/v1/vens//reregister", ven, &q, &qn), WK_API_NONE);
    char longid[300] = "/api/v1/vens/";
    memset(longid + strlen(longid), 'a', 200);
    longid[13 + 200] = '\0';
    assert_int_equal(route(longid, ven, &q, &qn), WK_API_NONE);

    assert_string_equal(wk_api_allow(WK_API_VENS), "GET, POST");
    assert_string_equal(wk_api_allow(WK_API_VEN), "GET, DELETE");
    assert_string_equal(wk_api_allow(WK_API_REREGISTER), "POST");
}

static void test_report_routes(void **state)
{
    (void)state;
    char ven[WK_ID_MAX + 1], rr[WK_ID_MAX + 1];
    const char *q;
    size_t qn;
    assert_int_equal(route("/api/v1/vens/ven-1/reports", ven, &q, &qn), WK_API_VEN_REPORTS);
    assert_string_equal(ven, "ven-1");
    assert_int_equal(route("/api/v1/vens/ven-1/reports/", ven, &q, &qn), WK_API_VEN_REPORTS);
    assert_int_equal(route("/api/v1/vens/ven-2/reports/rr-x-0", ven, &q, &qn), WK_API_VEN_REPORT);
    assert_string_equal(ven, "ven-2");
    assert_int_equal(route("/api/v1/vens/ven-2/reports/rr-x-0/", ven, &q, &qn), WK_API_VEN_REPORT);
    assert_int_equal(wk_api_report_request_id("/api/v1/vens/ven-2/reports/rr-x-0/",
                                              strlen("/api/v1/vens/ven-2/reports/rr-x-0/"), rr),
                     0);
    assert_string_equal(rr, "rr-x-0");
    const char *p = "/api/v1/vens/ven-2/reports/rr-y?z=1";
    assert_int_equal(wk_api_report_request_id(p, strlen(p), rr), 0);
    assert_string_equal(rr, "rr-y");
    /* The other actions of a VEN still route; anything deeper is a 404. */
    assert_int_equal(route("/api/v1/vens/ven-1/targets", ven, &q, &qn), WK_API_VEN_TARGETS);
    assert_int_equal(route("/api/v1/vens/ven-1", ven, &q, &qn), WK_API_VEN);
    assert_int_equal(route("/api/v1/vens/ven-1/reports/rr/x", ven, &q, &qn), WK_API_NONE);
    assert_int_equal(route("/api/v1/vens/ven-1/reports/rr%20x", ven, &q, &qn), WK_API_NONE);
    assert_int_equal(route("/api/v1/vens/ven-1/reportsx", ven, &q, &qn), WK_API_NONE);
    assert_int_equal(route("/api/v1/vens//reports/rr", ven, &q, &qn), WK_API_NONE);
    assert_int_equal(route("/api/v1/reports?venID=v&format=csv", ven, &q, &qn), WK_API_REPORTS);
    assert_int_equal(qn, strlen("venID=v&format=csv"));
    assert_int_equal(route("/api/v1/reports/", ven, &q, &qn), WK_API_REPORTS);
    assert_int_equal(route("/api/v1/reports/x", ven, &q, &qn), WK_API_NONE);
    assert_string_equal(wk_api_allow(WK_API_VEN_REPORTS), "GET, POST");
    assert_string_equal(wk_api_allow(WK_API_VEN_REPORT), "DELETE");
    assert_string_equal(wk_api_allow(WK_API_REPORTS), "GET");
}

/* GET /api/v1/vens/{venID}/opts (docs/opt.md). */
static void test_opts_route(void **state)
{
    (void)state;
    char ven[WK_ID_MAX + 1];
    const char *q;
    size_t qn;
    assert_int_equal(route("/api/v1/vens/ven-1/opts", ven, &q, &qn), WK_API_VEN_OPTS);
    assert_string_equal(ven, "ven-1");
    assert_int_equal(route("/api/v1/vens/ven-3/opts/", ven, &q, &qn), WK_API_VEN_OPTS);
    assert_string_equal(ven, "ven-3");
    assert_int_equal(route("/api/v1/vens/ven-1/optsx", ven, &q, &qn), WK_API_NONE);
    assert_int_equal(route("/api/v1/vens/ven-1/opts/o-1", ven, &q, &qn), WK_API_NONE);
    assert_int_equal(route("/api/v1/vens//opts", ven, &q, &qn), WK_API_NONE);
    assert_int_equal(route("/api/v1/vens/ven-1/targets", ven, &q, &qn), WK_API_VEN_TARGETS);
    assert_string_equal(wk_api_allow(WK_API_VEN_OPTS), "GET");
}

static void test_report_request_state(void **state)
{
    (void)state;
    json_t *r = json_pack("{s:s, s:s}", "state", "active", "reportBackDuration", "PT1M");
    assert_string_equal(wk_report_request_state(r, 1), "active"); /* ongoing: never completes */
    json_object_set_new(r, "endsAt", json_integer(3600000));
    assert_string_equal(wk_report_request_state(r, 3600000), "active"); /* one back-interval late */
    assert_string_equal(wk_report_request_state(r, 3659999), "active");
    assert_string_equal(wk_report_request_state(r, 3660000), "completed");
    json_object_set_new(r, "state", json_string("cancelling"));
    assert_string_equal(wk_report_request_state(r, 9999999), "cancelling");
    json_object_set_new(r, "state", json_string("cancelled"));
    assert_string_equal(wk_report_request_state(r, 9999999), "cancelled");
    json_object_del(r, "state");
    assert_null(wk_report_request_state(r, 1));
    json_decref(r);

    json_t *d = json_pack("[{s:s, s:s}, {s:s, s:s}, {s:s}]", "rID", "a", "minPeriod", "PT1M", "rID",
                          "b", "minPeriod", "PT15S", "rID", "c");
    assert_string_equal(wk_report_shortest_period(d, NULL), "PT15S");
    json_t *only = json_pack("[s, s]", "a", "c");
    assert_string_equal(wk_report_shortest_period(d, only), "PT1M");
    json_t *none = json_pack("[s]", "c");
    assert_null(wk_report_shortest_period(d, none));
    json_decref(only);
    json_decref(none);
    json_decref(d);
}

static void test_policy_routes(void **state)
{
    (void)state;
    char id[WK_ID_MAX + 1];
    const char *q;
    size_t qn;
    assert_int_equal(route("/api/v1/report-policies/default", id, &q, &qn), WK_API_POLICY_DEFAULT);
    assert_int_equal(route("/api/v1/report-policies/default/", id, &q, &qn), WK_API_POLICY_DEFAULT);
    assert_int_equal(route("/api/v1/report-policies/other", id, &q, &qn), WK_API_NONE);
    assert_int_equal(route("/api/v1/programs/prg-1/report-policy", id, &q, &qn),
                     WK_API_PROGRAM_POLICY);
    assert_string_equal(id, "prg-1");
    assert_int_equal(route("/api/v1/programs/prg-1/vens", id, &q, &qn), WK_API_PROGRAM_VENS);
    assert_int_equal(route("/api/v1/vens/ven-2/report-policy/", id, &q, &qn), WK_API_VEN_POLICY);
    assert_string_equal(id, "ven-2");
    assert_int_equal(route("/api/v1/vens/ven-2/opts", id, &q, &qn), WK_API_VEN_OPTS);
    assert_int_equal(route("/api/v1/vens/ven-2/report-policyx", id, &q, &qn), WK_API_NONE);
    assert_string_equal(wk_api_allow(WK_API_VEN_POLICY), "GET, PUT, DELETE");
}

static int policy_ok(const char *js, const char *want_err)
{
    char err[256] = "";
    json_t *p = json_loads(js, 0, NULL);
    int rc = wk_report_policy_check(p, err, sizeof err);
    json_decref(p);
    if (want_err)
        return rc == -EINVAL && strstr(err, want_err) != NULL;
    return rc == 0;
}

static void test_policy_check(void **state)
{
    (void)state;
    assert_true(
        policy_ok("{\"deliverIn\":\"poll\",\"rules\":[{\"reportNames\":[\"TELEMETRY_USAGE\"],"
                  "\"reportTypes\":[\"usage\"],\"granularity\":\"PT1M\","
                  "\"reportBackDuration\":\"PT5M\",\"duration\":\"P1D\"}]}",
                  NULL));
    assert_true(policy_ok("{\"rules\":[{\"reportNames\":[\"A\"]}]}", "deliverIn"));
    assert_true(
        policy_ok("{\"deliverIn\":\"push\",\"rules\":[{\"reportNames\":[\"A\"]}]}", "deliverIn"));
    assert_true(policy_ok("{\"deliverIn\":\"poll\"}", "rules must"));
    assert_true(policy_ok("{\"deliverIn\":\"poll\",\"rules\":[{}]}", "rules[0].reportNames"));
    assert_true(policy_ok("{\"deliverIn\":\"poll\",\"rules\":[{\"reportNames\":[\"A\"],"
                          "\"reportTypes\":[]}]}",
                          "rules[0].reportTypes"));
    assert_true(policy_ok("{\"deliverIn\":\"poll\",\"rules\":[{\"reportNames\":[\"A\"],"
                          "\"duration\":\"P1M\"}]}",
                          "rules[0].duration"));
    assert_true(policy_ok("{\"deliverIn\":\"poll\",\"rules\":[{\"reportNames\":[\"A\"],"
                          "\"granularity\":\"PT0S\"}]}",
                          "rules[0].granularity"));
    assert_true(policy_ok("{\"deliverIn\":\"poll\",\"rules\":[],\"x\":1}", "unknown field 'x'"));
}

static void test_policy_choose(void **state)
{
    (void)state;
    char src[64];
    const char *usage =
        "{\"deliverIn\":\"poll\",\"rules\":[{\"reportNames\":[\"TELEMETRY_USAGE\"]}]}";
    const char *status =
        "{\"deliverIn\":\"registered\",\"rules\":[{\"reportNames\":[\"TELEMETRY_STATUS\"]}]}";
    json_t *stored = json_pack("{s:s, s:s, s:s, s:s}", "p:prg-b", status, "p:prg-a", usage,
                               "p:prg-0", "not json", "default", status);
    json_t *targets = json_pack("[s, s, s, s]", "g:grp-1", "p:prg-b", "p:prg-0", "p:prg-a");
    /* The VEN's own first. */
    json_t *p = wk_report_policy_choose(status, stored, targets, "poll", src, sizeof src);
    assert_string_equal(src, "ven");
    assert_string_equal(json_string_value(json_object_get(p, "deliverIn")), "registered");
    json_decref(p);
    /* Then the program sorting first among those with a (valid) policy. */
    p = wk_report_policy_choose(NULL, stored, targets, "poll", src, sizeof src);
    assert_string_equal(src, "program prg-a");
    assert_string_equal(json_string_value(json_object_get(p, "deliverIn")), "poll");
    json_decref(p);
    /* A broken VEN policy is skipped like a missing one. */
    p = wk_report_policy_choose("{\"deliverIn\":\"x\"}", stored, targets, "poll", src, sizeof src);
    assert_string_equal(src, "program prg-a");
    json_decref(p);
    /* Enrolled in no program with one: the default, then the built-in. */
    json_t *none = json_pack("[s]", "p:prg-c");
    p = wk_report_policy_choose(NULL, stored, none, "poll", src, sizeof src);
    assert_string_equal(src, "default");
    json_decref(p);
    json_object_del(stored, "default");
    p = wk_report_policy_choose(NULL, stored, none, "registered", src, sizeof src);
    assert_string_equal(src, "built-in");
    assert_string_equal(json_string_value(json_object_get(p, "deliverIn")), "registered");
    json_decref(p);
    json_decref(none);
    json_decref(targets);
    json_decref(stored);
}

static void test_policy_requests(void **state)
{
    (void)state;
    json_t *reports = json_loads(
        "[{\"reportSpecifierID\":\"s-u\",\"reportName\":\"METADATA_TELEMETRY_USAGE\","
        "\"descriptions\":[{\"rID\":\"a\",\"reportType\":\"usage\",\"minPeriod\":\"PT1M\"},"
        "{\"rID\":\"b\",\"reportType\":\"demand\",\"minPeriod\":\"PT15S\"}]},"
        "{\"reportSpecifierID\":\"s-s\",\"reportName\":\"TELEMETRY_STATUS\","
        "\"descriptions\":[{\"rID\":\"st\",\"reportType\":\"x-resourceStatus\"}]},"
        "{\"reportSpecifierID\":\"s-h\",\"reportName\":\"METADATA_HISTORY_USAGE\","
        "\"descriptions\":[{\"rID\":\"h\",\"reportType\":\"usage\"}]}]",
        0, NULL);
    /* The built-in policy: usage and status at the VEN's rates, as before. */
    json_t *p = wk_report_policy_builtin("poll");
    json_t *r = wk_report_policy_requests(p, reports, "0123456789abcdef", 5000);
    assert_int_equal(json_array_size(r), 2);
    json_t *u = json_array_get(r, 0), *st = json_array_get(r, 1);
    assert_string_equal(json_string_value(json_object_get(u, "reportRequestID")),
                        "rr-0123456789abcdef-0");
    assert_string_equal(json_string_value(json_object_get(u, "granularity")), "PT15S");
    assert_int_equal(json_array_size(json_object_get(u, "rIDs")), 2);
    assert_string_equal(json_string_value(json_object_get(st, "granularity")), "PT1M");
    assert_string_equal(json_string_value(json_object_get(st, "via")), "poll");
    assert_null(json_object_get(u, "endsAt"));
    json_decref(r);
    json_decref(p);
    /* reportTypes filter the rIDs; a report left without one is not asked;
     * the first matching rule that leaves an rID wins; a reportBackDuration
     * below the VEN's period is raised; a duration is a window from now. */
    p = json_loads("{\"deliverIn\":\"registered\",\"rules\":["
                   "{\"reportNames\":[\"TELEMETRY_USAGE\",\"TELEMETRY_STATUS\"],"
                   "\"reportTypes\":[\"usage\"],\"reportBackDuration\":\"PT10S\","
                   "\"duration\":\"PT1H\"},"
                   "{\"reportNames\":[\"METADATA_TELEMETRY_STATUS\"],\"granularity\":\"PT5M\"}]}",
                   0, NULL);
    r = wk_report_policy_requests(p, reports, "0123456789abcdef", 7500);
    assert_int_equal(json_array_size(r), 2);
    u = json_array_get(r, 0);
    st = json_array_get(r, 1);
    assert_int_equal(json_array_size(json_object_get(u, "rIDs")), 1);
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(json_object_get(u, "rIDs"), 0), "rID")),
        "a");
    assert_string_equal(json_string_value(json_object_get(u, "reportBackDuration")), "PT1M");
    assert_string_equal(json_string_value(json_object_get(u, "reportBackDurationAsked")), "PT10S");
    assert_string_equal(json_string_value(json_object_get(u, "duration")), "PT1H");
    assert_int_equal(json_integer_value(json_object_get(u, "endsAt")), 7000 + 3600000);
    assert_string_equal(json_string_value(json_object_get(u, "via")), "registered");
    assert_string_equal(json_string_value(json_object_get(st, "reportSpecifierID")), "s-s");
    assert_string_equal(json_string_value(json_object_get(st, "granularity")), "PT5M");
    assert_string_equal(json_string_value(json_object_get(st, "reportRequestID")),
                        "rr-0123456789abcdef-1");
    json_decref(r);
    json_decref(p);
    json_decref(reports);
}

static int auth(const char *h, const char *token)
{
    return wk_api_auth_ok(h, strlen(h), token);
}

static void test_auth(void **state)
{
    (void)state;
    assert_true(auth("Bearer s3cret", "s3cret"));
    assert_true(auth("bearer s3cret", "s3cret"));
    assert_true(auth("Bearer   s3cret  ", "s3cret"));
    assert_false(auth("Bearer s3cre", "s3cret"));
    assert_false(auth("Bearer s3crett", "s3cret"));
    assert_false(auth("Bearer S3cret", "s3cret"));
    assert_false(auth("Basic s3cret", "s3cret"));
    assert_false(auth("s3cret", "s3cret"));
    assert_false(auth("", "s3cret"));
    assert_false(auth("Bearer ", "s3cret"));
    /* An empty configured token never matches (the API is disabled then). */
    assert_false(auth("Bearer ", ""));
    assert_false(auth("Bearer x", ""));
}

static int list(const char *q, int *limit, char *cursor, char *name, char *err)
{
    return wk_api_parse_list_query(q, q ? strlen(q) : 0, limit, cursor, WK_ID_MAX + 1, name,
                                   WK_NAME_MAX + 1, err, 256);
}

static void test_list_query(void **state)
{
    (void)state;
    int limit;
    char cursor[WK_ID_MAX + 1], name[WK_NAME_MAX + 1], err[256], enc[2 * WK_ID_MAX + 1];
    assert_int_equal(list(NULL, &limit, cursor, name, err), 0);
    assert_int_equal(limit, WK_API_LIMIT_DEFAULT);
    assert_string_equal(cursor, "");
    assert_string_equal(name, "");

    assert_int_equal(list("limit=7", &limit, cursor, name, err), 0);
    assert_int_equal(limit, 7);
    assert_int_equal(list("limit=1000", &limit, cursor, name, err), 0);
    assert_int_equal(limit, 1000);
    assert_int_equal(list("limit=1001", &limit, cursor, name, err), -EINVAL);
    assert_non_null(strstr(err, "limit"));
    assert_int_equal(list("limit=0", &limit, cursor, name, err), -EINVAL);
    assert_int_equal(list("limit=-1", &limit, cursor, name, err), -EINVAL);
    assert_int_equal(list("limit=5x", &limit, cursor, name, err), -EINVAL);
    assert_int_equal(list("limit=", &limit, cursor, name, err), -EINVAL);
    assert_int_equal(list("limit=1&limit=2", &limit, cursor, name, err), -EINVAL);
    assert_non_null(strstr(err, "twice"));

    /* Names are percent-decoded, '+' is a space. */
    assert_int_equal(list("name=Building+7%20%26%20Annex", &limit, cursor, name, err), 0);
    assert_string_equal(name, "Building 7 & Annex");
    assert_int_equal(list("name=", &limit, cursor, name, err), -EINVAL);
    assert_int_equal(list("name=a%0Ab", &limit, cursor, name, err), -EINVAL);
    assert_int_equal(list("name=%zz", &limit, cursor, name, err), -EINVAL);
    assert_int_equal(list("name=%4", &limit, cursor, name, err), -EINVAL);
    assert_int_equal(list("name=a%00b", &limit, cursor, name, err), -EINVAL);

    /* A cursor is what a previous page returned. */
    assert_int_equal(wk_cursor_encode("ven-00aa", enc, sizeof enc), 0);
    char q[600];
    snprintf(q, sizeof q, "cursor=%s&limit=2", enc);
    assert_int_equal(list(q, &limit, cursor, name, err), 0);
    assert_string_equal(cursor, "ven-00aa");
    assert_int_equal(limit, 2);
    assert_int_equal(list("cursor=zz", &limit, cursor, name, err), -EINVAL);
    assert_non_null(strstr(err, "cursor"));
    snprintf(q, sizeof q, "cursor=%s&name=x", enc);
    assert_int_equal(list(q, &limit, cursor, name, err), -EINVAL);

    assert_int_equal(list("sort=name", &limit, cursor, name, err), -EINVAL);
    assert_non_null(strstr(err, "unknown query parameter 'sort'"));
    /* Empty pieces between '&' are ignored. */
    assert_int_equal(list("&&limit=3&", &limit, cursor, name, err), 0);
    assert_int_equal(limit, 3);
}

/* The fleet list's filters: each parsed, each bad value refused naming its
 * parameter, and combined. */
static void test_ven_list_filters(void **state)
{
    (void)state;
    wk_ven_list_query l;
    char err[256];
    const char *q = "q=Meter+North&program=prg-1&group=g.1&state=online&limit=5";
    assert_int_equal(wk_api_parse_ven_list(q, strlen(q), &l, err, sizeof err), 0);
    assert_string_equal(l.q, "Meter North");
    assert_string_equal(l.program, "prg-1");
    assert_string_equal(l.group, "g.1");
    assert_int_equal(l.state, WK_VS_ONLINE);
    assert_int_equal(l.limit, 5);
    static const struct {
        const char *state;
        int want;
    } states[] = {
        {"provisioned", WK_VS_PROVISIONED}, {"registered", WK_VS_REGISTERED},
        {"online", WK_VS_ONLINE},           {"offline", WK_VS_OFFLINE},
        {"overdue", WK_VS_OVERDUE},         {"push_undeliverable", WK_VS_PUSH_UNDELIVERABLE}};
    for (size_t i = 0; i < sizeof states / sizeof states[0]; i++) {
        char qs[64];
        snprintf(qs, sizeof qs, "state=%s", states[i].state);
        assert_int_equal(wk_api_parse_ven_list(qs, strlen(qs), &l, err, sizeof err), 0);
        assert_int_equal(l.state, states[i].want);
    }
    assert_int_equal(wk_api_parse_ven_list(NULL, 0, &l, err, sizeof err), 0);
    assert_int_equal(l.state, WK_VS_ANY);
    static const struct {
        const char *q, *names;
    } bad[] = {
        {"state=asleep", "state must be one of"},
        {"state=Online", "state must be one of"},
        {"state=online&state=offline", "'state' given twice"},
        {"group=a%20b", "group must be"},
        {"group=", "group must be"},
        {"program=a/b", "program must be"},
        {"q=", "q must be"},
        {"q=a%01b", "q must be"},
        {"q=a&q=b", "'q' given twice"},
        {"sort=name", "unknown query parameter 'sort'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (wk_api_parse_ven_list(bad[i].q, strlen(bad[i].q), &l, err, sizeof err) != -EINVAL)
            fail_msg("%s accepted", bad[i].q);
        if (strstr(err, bad[i].names) == NULL)
            fail_msg("%s: %s does not say %s", bad[i].q, err, bad[i].names);
    }
}

static void test_delete_query(void **state)
{
    (void)state;
    int force;
    char err[256];
    assert_int_equal(wk_api_parse_delete_query(NULL, 0, &force, err, sizeof err), 0);
    assert_int_equal(force, 0);
    assert_int_equal(wk_api_parse_delete_query("force=true", 10, &force, err, sizeof err), 0);
    assert_int_equal(force, 1);
    assert_int_equal(wk_api_parse_delete_query("force=0", 7, &force, err, sizeof err), 0);
    assert_int_equal(force, 0);
    assert_int_equal(wk_api_parse_delete_query("force=maybe", 11, &force, err, sizeof err),
                     -EINVAL);
    assert_int_equal(wk_api_parse_delete_query("purge=1", 7, &force, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "purge"));
}

static int prov(const char *body, char *name, char *fp, char *err)
{
    return wk_api_parse_provision(body, strlen(body), name, WK_NAME_MAX + 1, fp, WK_FP_MAX + 1, err,
                                  512);
}

static void test_provision_body(void **state)
{
    (void)state;
    char name[WK_NAME_MAX + 1], fp[WK_FP_MAX + 1], err[512];
    assert_int_equal(prov("{\"venName\":\"meter-1\"}", name, fp, err), 0);
    assert_string_equal(name, "meter-1");
    assert_string_equal(fp, "");
    assert_int_equal(prov("{\"fingerprint\":\"09:71:9e:0e:51:c0:8f:05:56:c9\"}", name, fp, err), 0);
    assert_string_equal(name, "");
    assert_string_equal(fp, "09719E0E51C08F0556C9");
    assert_int_equal(
        prov("{\"venName\":\"a\",\"fingerprint\":\"09719E0E51C08F0556C9\"}", name, fp, err), 0);
    assert_string_equal(name, "a");
    assert_string_equal(fp, "09719E0E51C08F0556C9");

    assert_int_equal(prov("", name, fp, err), -EINVAL);
    assert_int_equal(prov("{}", name, fp, err), -EINVAL);
    assert_non_null(strstr(err, "venName and/or fingerprint"));
    assert_int_equal(prov("[]", name, fp, err), -EINVAL);
    assert_non_null(strstr(err, "object"));
    assert_int_equal(prov("{\"venName\":", name, fp, err), -EINVAL);
    assert_non_null(strstr(err, "not valid JSON"));
    assert_int_equal(prov("{\"venName\":\"\"}", name, fp, err), -EINVAL);
    assert_int_equal(prov("{\"venName\":42}", name, fp, err), -EINVAL);
    assert_int_equal(prov("{\"venName\":\"a\\u0001b\"}", name, fp, err), -EINVAL);
    assert_int_equal(prov("{\"venName\":\"a\",\"venName\":\"b\"}", name, fp, err), -EINVAL);
    assert_int_equal(prov("{\"fingerprint\":\"xyz\"}", name, fp, err), -EINVAL);
    assert_non_null(strstr(err, "fingerprint"));
    assert_int_equal(prov("{\"fingerprint\":\"09:71\"}", name, fp, err), -EINVAL);
    assert_int_equal(prov("{\"venName\":\"a\",\"group\":\"g\"}", name, fp, err), -EINVAL);
    assert_non_null(strstr(err, "unknown field 'group'"));

    char big[400];
    memset(big, 'n', sizeof big);
    snprintf(big, sizeof big, "{\"venName\":\"%0*d\"}", WK_NAME_MAX + 1, 0);
    assert_int_equal(prov(big, name, fp, err), -EINVAL);
    snprintf(big, sizeof big, "{\"venName\":\"%0*d\"}", WK_NAME_MAX, 0);
    assert_int_equal(prov(big, name, fp, err), 0);
    assert_int_equal(strlen(name), WK_NAME_MAX);
}

static void test_cursor(void **state)
{
    (void)state;
    char enc[2 * WK_ID_MAX + 1], dec[WK_ID_MAX + 1];
    assert_int_equal(wk_cursor_encode("ven-3f9a", enc, sizeof enc), 0);
    assert_string_equal(enc, "76656e2d33663961");
    assert_int_equal(wk_cursor_decode(enc, dec, sizeof dec), 0);
    assert_string_equal(dec, "ven-3f9a");
    assert_int_equal(wk_cursor_decode("76656E2D33663961", dec, sizeof dec), 0);
    assert_string_equal(dec, "ven-3f9a");
    /* Odd length, not hex, empty, or decoding to something that is no venID. */
    assert_int_equal(wk_cursor_decode("7", dec, sizeof dec), -EINVAL);
    assert_int_equal(wk_cursor_decode("zz", dec, sizeof dec), -EINVAL);
    assert_int_equal(wk_cursor_decode("", dec, sizeof dec), -EINVAL);
    assert_int_equal(wk_cursor_decode("2f2f", dec, sizeof dec), -EINVAL); /* "//" */
    assert_int_equal(wk_cursor_decode("7b7d", dec, sizeof dec), -EINVAL); /* "{}" */
    char small[4];
    assert_int_equal(wk_cursor_encode("ven-1", small, sizeof small), -ENOBUFS);
}

static void test_fingerprint_and_keys(void **state)
{
    (void)state;
    char fp[WK_FP_MAX + 1], pretty[40], k[VTN_KEY_MAX];
    const char *in = "09:71:9e:0e:51:c0:8f:05:56:c9";
    assert_int_equal(wk_fp_normalize(in, strlen(in), fp, sizeof fp), 0);
    assert_string_equal(fp, "09719E0E51C08F0556C9");
    wk_fp_pretty(fp, pretty, sizeof pretty);
    assert_string_equal(pretty, "09:71:9E:0E:51:C0:8F:05:56:C9");
    assert_int_equal(wk_fp_normalize("nothex", 6, fp, sizeof fp), -EINVAL);
    assert_int_equal(wk_fp_normalize("", 0, fp, sizeof fp), -EINVAL);
    /* A NUL inside the envelope's bytes is not silently cut. */
    assert_int_equal(wk_fp_normalize("09719E0E51\0C08F0556C9", 21, fp, sizeof fp), -EINVAL);

    /* Every per-VEN key carries the VEN's hash tag. */
    assert_string_equal(wk_key_ven(k, "ven-1"), "ven:{ven-1}");
    assert_string_equal(wk_key_venq(k, "ven-1"), "venq:{ven-1}");
    assert_string_equal(wk_key_venpm(k, "ven-1"), "venpm:{ven-1}");
    assert_string_equal(wk_key_venreq(k, "ven-1", "00000000000000ff"),
                        "venreq:{ven-1}:00000000000000ff");
    assert_string_equal(wk_key_name(k, "a b"), "vtn:venname:a b");
    assert_string_equal(wk_key_fp(k, "09719E0E51C08F0556C9"), "vtn:venfp:09719E0E51C08F0556C9");
    assert_string_equal(wk_key_reg(k, "reg-1"), "vtn:venreg:reg-1");
    assert_string_equal(wk_key_req(k, "00000000000000ff"), "vtn:req:00000000000000ff");

    assert_true(wk_id_valid("ven-0123", 8));
    assert_false(wk_id_valid("ven 0123", 8));
    assert_false(wk_id_valid("", 0));
    assert_false(wk_id_valid("a{b}", 4));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_routes),
        cmocka_unit_test(test_report_routes),
        cmocka_unit_test(test_opts_route),
        cmocka_unit_test(test_report_request_state),
        cmocka_unit_test(test_auth),
        cmocka_unit_test(test_list_query),
        cmocka_unit_test(test_ven_list_filters),
        cmocka_unit_test(test_delete_query),
        cmocka_unit_test(test_provision_body),
        cmocka_unit_test(test_cursor),
        cmocka_unit_test(test_fingerprint_and_keys),
        cmocka_unit_test(test_policy_routes),
        cmocka_unit_test(test_policy_check),
        cmocka_unit_test(test_policy_choose),
        cmocka_unit_test(test_policy_requests),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
