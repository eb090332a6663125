/* Events as the API takes them (api/wk_event.c, api/wk_api_events.c's
 * parsers): ISO 8601 durations and date-times, the event body's validation
 * and the field each refusal names, the status at a given time, the list
 * filters, program bodies and the routes. */
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

static int64_t dur(const char *s)
{
    int64_t ms = -42;
    return wk_duration_parse(s, &ms) < 0 ? -1 : ms;
}

static void test_durations(void **state)
{
    (void)state;
    assert_int_equal(dur("PT1H"), 3600000);
    assert_int_equal(dur("PT1H30M"), 5400000);
    assert_int_equal(dur("P1DT2H"), 93600000);
    assert_int_equal(dur("P2W"), 1209600000);
    assert_int_equal(dur("PT0.5S"), -1); /* no fractions in the 2.0b pattern */
    assert_int_equal(dur("PT90S"), 90000);
    assert_int_equal(dur("PT0S"), 0);
    assert_int_equal(dur("P1M"), -1);    /* months: no fixed length */
    assert_int_equal(dur("P1Y"), -1);    /* years too */
    assert_int_equal(dur("PT1M1H"), -1); /* out of order */
    assert_int_equal(dur("P1H"), -1);    /* hours need the T */
    assert_int_equal(dur("PT"), -1);
    assert_int_equal(dur("P"), -1);
    assert_int_equal(dur("1H"), -1);
    assert_int_equal(dur("-PT1H"), -1);
    assert_int_equal(dur("PT9999999999S"), -1);
}

static int64_t when(const char *s)
{
    int64_t ms = -42;
    return wk_datetime_parse(s, &ms) < 0 ? -1 : ms;
}

static void test_datetimes(void **state)
{
    (void)state;
    assert_int_equal(when("1970-01-01T00:00:00Z"), 0);
    assert_int_equal(when("2026-12-03T14:00:00Z"), 1796306400000LL);
    assert_int_equal(when("2026-12-03T14:00:00.25Z"), 1796306400250LL);
    assert_int_equal(when("2024-02-29T00:00:00Z"), 1709164800000LL);
    assert_int_equal(when("2026-02-29T00:00:00Z"), -1); /* not a leap year */
    assert_int_equal(when("2026-12-03T14:00:00"), -1);  /* UTC only */
    assert_int_equal(when("2026-12-03T14:00:00+01:00"), -1);
    assert_int_equal(when("2026-13-03T14:00:00Z"), -1);
    assert_int_equal(when("2026-12-03 14:00:00Z"), -1);
    assert_int_equal(when("2026-12-03T24:00:00Z"), -1);
    assert_int_equal(when("tomorrow"), -1);
}

static const char *good =
    "{\"marketContext\":\"http://u.example/cpp\",\"dtstart\":\"2026-12-03T14:00:00Z\","
    "\"duration\":\"PT1H\",\"rampUp\":\"PT10M\",\"signals\":[{\"signalName\":\"SIMPLE\","
    "\"signalType\":\"level\",\"intervals\":[{\"duration\":\"PT30M\",\"value\":1},"
    "{\"uid\":\"1\",\"duration\":\"PT30M\",\"value\":3}]}],"
    "\"targets\":{\"venID\":[\"ven-1\"]},\"modificationReason\":\"why\"}";

static void test_event_body(void **state)
{
    (void)state;
    wk_event_in e;
    char err[512];
    assert_int_equal(wk_event_parse(good, strlen(good), &e, err, sizeof err), 0);
    assert_string_equal(e.mc, "http://u.example/cpp");
    assert_string_equal(e.reason, "why");
    assert_int_equal(e.start_ms, 1796306400000LL);
    assert_int_equal(e.end_ms, 1796306400000LL + 3600000);
    /* defaults filled, the reason kept beside the body, a signalID given */
    assert_int_equal(json_integer_value(json_object_get(e.body, "priority")), 0);
    assert_true(json_is_false(json_object_get(e.body, "testEvent")));
    assert_string_equal(json_string_value(json_object_get(e.body, "responseRequired")), "always");
    assert_null(json_object_get(e.body, "modificationReason"));
    json_t *sig = json_array_get(json_object_get(e.body, "signals"), 0);
    assert_string_equal(json_string_value(json_object_get(sig, "signalID")), "0");
    assert_int_equal(wk_event_near_ms(e.body), 600000);
    wk_event_in_clear(&e);
}

/* good with the text `from` replaced by `to`: the message names `field`. */
static void refused(const char *from, const char *to, const char *field)
{
    char body[2048], err[512];
    const char *at = strstr(good, from);
    assert_non_null(at);
    snprintf(body, sizeof body, "%.*s%s%s", (int)(at - good), good, to, at + strlen(from));
    wk_event_in e;
    err[0] = '\0';
    int rc = wk_event_parse(body, strlen(body), &e, err, sizeof err);
    wk_event_in_clear(&e);
    if (rc != -EINVAL || strstr(err, field) == NULL)
        fail_msg("%s -> rc %d, message '%s' should name %s", to, rc, err, field);
}

static void test_event_refusals(void **state)
{
    (void)state;
    refused("\"value\":3", "\"value\":4", "signals[0].intervals[1].value must be 0, 1, 2 or 3");
    refused("\"value\":1", "\"value\":\"1\"", "signals[0].intervals[0].value must be a number");
    refused("\"duration\":\"PT1H\"", "\"duration\":\"PT2H\"",
            "signals[0].intervals: their durations add up to 3600 s, the event's duration is "
            "7200 s");
    refused("\"duration\":\"PT1H\"", "\"duration\":\"PT0S\"", "duration must be longer");
    refused("\"duration\":\"PT1H\"", "\"duration\":\"P1M\"", "duration must be an ISO 8601");
    refused("\"signalType\":\"level\"", "\"signalType\":\"price\"",
            "signals[0].signalType must be level for a SIMPLE signal");
    refused("\"signalType\":\"level\"", "\"signalType\":\"loud\"", "signals[0].signalType");
    refused("\"signalName\":\"SIMPLE\"", "\"signalName\":\"LOUD\"", "signals[0].signalName");
    refused("\"uid\":\"1\"", "\"uid\":\"a b\"", "signals[0].intervals[1].uid");
    refused("\"marketContext\":\"http://u.example/cpp\"", "\"marketContext\":\"cpp\"",
            "marketContext");
    refused("\"dtstart\":\"2026-12-03T14:00:00Z\"", "\"dtstart\":\"2026-12-03\"", "dtstart");
    refused("\"rampUp\":\"PT10M\"", "\"rampUp\":10", "rampUp");
    refused("\"rampUp\":\"PT10M\"", "\"ramp\":\"PT10M\"", "unknown field 'ramp'");
    refused("\"targets\":{", "\"targetsMustMatch\":1,\"targets\":{", "targetsMustMatch must be");
    refused("{\"venID\":[\"ven-1\"]}", "{\"venID\":[\"a b\"]}", "targets.venID[0]");
    refused("{\"venID\":[\"ven-1\"]}", "{\"group\":[\"g\"]}", "targets: unknown field 'group'");
    refused("\"modificationReason\":\"why\"", "\"modificationReason\":\"\"", "modificationReason");
    refused("\"signals\":[", "\"priority\":-1,\"signals\":[", "priority");
    refused("\"signals\":[", "\"testEvent\":\"yes\",\"signals\":[", "testEvent");
    refused("\"signals\":[", "\"responseRequired\":\"maybe\",\"signals\":[", "responseRequired");
    refused("\"signals\":[", "\"vtnComment\":\"\",\"signals\":[", "vtnComment");
    refused("\"signalName\":\"SIMPLE\",",
            "\"signalName\":\"SIMPLE\",\"itemBase\":{\"itemDescription\":\"RealPower\","
            "\"itemUnits\":\"W\",\"siScaleCode\":\"huge\"},",
            "signals[0].itemBase.siScaleCode");
    refused("\"signalName\":\"SIMPLE\",", "\"signalName\":\"SIMPLE\",\"currentValue\":7,",
            "signals[0].currentValue must be 0, 1, 2 or 3");
    char err[256];
    wk_event_in e;
    assert_int_equal(wk_event_parse("[1]", 3, &e, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "JSON object"));
    wk_event_in_clear(&e);
    assert_int_equal(wk_event_parse("{", 1, &e, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "not valid JSON"));
    wk_event_in_clear(&e);
}

static void test_cancel_body(void **state)
{
    (void)state;
    char reason[WK_REASON_MAX + 1], err[256];
    assert_int_equal(wk_event_parse_cancel("", 0, reason, sizeof reason, err, sizeof err), 0);
    assert_string_equal(reason, "");
    const char *b = "{\"modificationReason\":\"storm\"}";
    assert_int_equal(wk_event_parse_cancel(b, strlen(b), reason, sizeof reason, err, sizeof err),
                     0);
    assert_string_equal(reason, "storm");
    b = "{\"reason\":\"storm\"}";
    assert_int_equal(wk_event_parse_cancel(b, strlen(b), reason, sizeof reason, err, sizeof err),
                     -EINVAL);
    assert_non_null(strstr(err, "unknown field 'reason'"));
}

static void test_status(void **state)
{
    (void)state;
    const int64_t start = 1000000, end = 2000000;
    assert_int_equal(wk_event_status(0, 0, start, end, -1), WK_EVENT_FAR);
    assert_int_equal(wk_event_status(start - 1, 0, start, end, -1), WK_EVENT_FAR);
    assert_int_equal(wk_event_status(start - 100, 0, start, end, 100), WK_EVENT_NEAR);
    assert_int_equal(wk_event_status(start - 101, 0, start, end, 100), WK_EVENT_FAR);
    assert_int_equal(wk_event_status(start, 0, start, end, 100), WK_EVENT_ACTIVE);
    assert_int_equal(wk_event_status(end - 1, 0, start, end, 100), WK_EVENT_ACTIVE);
    assert_int_equal(wk_event_status(end, 0, start, end, 100), WK_EVENT_COMPLETED);
    assert_int_equal(wk_event_status(start, 1, start, end, 100), WK_EVENT_CANCELLED);
    assert_string_equal(wk_event_status_name(WK_EVENT_NEAR), "near");
    assert_int_equal(wk_event_status_of("completed"), WK_EVENT_COMPLETED);
    assert_int_equal(wk_event_status_of("done"), -EINVAL);
}

static void test_list_query(void **state)
{
    (void)state;
    int limit;
    char cursor[WK_ID_MAX + 1], err[256];
    wk_event_filter f;
    const char *q = "status=near&status=active&target=g-1&programID=prg-1&limit=5"
                    "&from=2026-12-03T00:00:00Z&to=2026-12-04T00:00:00Z";
    assert_int_equal(
        wk_api_parse_event_list(q, strlen(q), &limit, cursor, sizeof cursor, &f, err, sizeof err),
        0);
    assert_int_equal(limit, 5);
    assert_string_equal(f.target, "g-1");
    assert_string_equal(f.program, "prg-1");
    assert_int_equal(f.status_mask, (1u << WK_EVENT_NEAR) | (1u << WK_EVENT_ACTIVE));
    assert_int_equal(f.to_ms - f.from_ms, 86400000);
    json_t *ev = json_pack("{s:s,s:{s:[s]}}", "programID", "prg-1", "targets", "groupID", "g-1");
    int64_t day = f.from_ms;
    assert_true(wk_event_matches(&f, ev, WK_EVENT_NEAR, day + 10, day + 20));
    assert_false(wk_event_matches(&f, ev, WK_EVENT_FAR, day + 10, day + 20));
    assert_false(wk_event_matches(&f, ev, WK_EVENT_NEAR, day - 20, day)); /* before the window */
    assert_false(wk_event_matches(&f, ev, WK_EVENT_NEAR, f.to_ms, f.to_ms + 1));
    json_decref(ev);
    static const char *const bad[][2] = {
        {"status=soon", "status must be"},
        {"from=today", "from must be"},
        {"to=2026-12-01T00:00:00Z&from=2026-12-02T00:00:00Z", "to must be later"},
        {"target=a%20b", "target must be"},
        {"programID=a&programID=b", "programID must be given once"},
        {"colour=red", "unknown query parameter 'colour'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        assert_int_equal(wk_api_parse_event_list(bad[i][0], strlen(bad[i][0]), &limit, cursor,
                                                 sizeof cursor, &f, err, sizeof err),
                         -EINVAL);
        if (strstr(err, bad[i][1]) == NULL)
            fail_msg("%s -> '%s'", bad[i][0], err);
    }
}

static void test_program_body(void **state)
{
    (void)state;
    char name[WK_NAME_MAX + 1], mc[WK_MC_MAX + 1], err[256];
    const char *b = "{\"marketContext\":\"http://u.example/cpp\"}";
    assert_int_equal(wk_api_parse_program(b, strlen(b), name, mc, err, sizeof err), 0);
    assert_string_equal(name, "http://u.example/cpp"); /* named by its URI by default */
    b = "{\"name\":\"CPP\"}";
    assert_int_equal(wk_api_parse_program(b, strlen(b), name, mc, err, sizeof err), -EINVAL);
    assert_string_equal(err, "marketContext is required");
    b = "{\"name\":\"CPP\",\"marketContext\":\"http://u.example/a b\"}";
    assert_int_equal(wk_api_parse_program(b, strlen(b), name, mc, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "marketContext must be a URI"));
}

static void test_group_body(void **state)
{
    (void)state;
    char name[WK_NAME_MAX + 1], err[256];
    json_t *vens = NULL;
    const char *b = "{\"name\":\"North\",\"venIDs\":[\"ven-1\",\"ven-2\"]}";
    assert_int_equal(wk_api_parse_group(b, strlen(b), name, &vens, err, sizeof err), 0);
    assert_string_equal(name, "North");
    assert_int_equal(json_array_size(vens), 2);
    json_decref(vens);
    b = "{\"venIDs\":[]}"; /* an empty group is a group */
    assert_int_equal(wk_api_parse_group(b, strlen(b), name, &vens, err, sizeof err), 0);
    assert_string_equal(name, "");
    json_decref(vens);
    static const char *const bad[][2] = {
        {"{\"name\":\"x\"}", "venIDs must be an array"},
        {"{\"venIDs\":[\"ven-1\",\"a b\"]}", "venIDs[1] must be"},
        {"{\"venIDs\":[1]}", "venIDs[0] must be"},
        {"{\"venIDs\":[],\"name\":\"\"}", "name must be"},
        {"{\"venIDs\":[],\"members\":[]}", "unknown field 'members'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        vens = NULL;
        assert_int_equal(
            wk_api_parse_group(bad[i][0], strlen(bad[i][0]), name, &vens, err, sizeof err),
            -EINVAL);
        assert_null(vens);
        if (strstr(err, bad[i][1]) == NULL)
            fail_msg("%s -> '%s'", bad[i][0], err);
    }
}

static void test_participation_query(void **state)
{
    (void)state;
    int csv = -1;
    char err[256];
    assert_int_equal(wk_api_parse_participation_query(NULL, 0, &csv, err, sizeof err), 0);
    assert_int_equal(csv, 0);
    assert_int_equal(wk_api_parse_participation_query("format=csv", 10, &csv, err, sizeof err), 0);
    assert_int_equal(csv, 1);
    assert_int_equal(wk_api_parse_participation_query("format=xml", 10, &csv, err, sizeof err),
                     -EINVAL);
    assert_string_equal(err, "format must be json or csv");
}

static void test_routes(void **state)
{
    (void)state;
    char id[WK_ID_MAX + 1];
    const char *q;
    size_t qn;
    const char *p = "/api/v1/events?status=active";
    assert_int_equal(wk_api_route_of(p, strlen(p), id, &q, &qn), WK_API_EVENTS);
    assert_int_equal(qn, strlen("status=active"));
    p = "/api/v1/events/evt-1";
    assert_int_equal(wk_api_route_of(p, strlen(p), id, &q, &qn), WK_API_EVENT);
    assert_string_equal(id, "evt-1");
    p = "/api/v1/events/evt-1/cancel";
    assert_int_equal(wk_api_route_of(p, strlen(p), id, &q, &qn), WK_API_EVENT_CANCEL);
    p = "/api/v1/events/evt-1/other";
    assert_int_equal(wk_api_route_of(p, strlen(p), id, &q, &qn), WK_API_NONE);
    p = "/api/v1/programs/prg-1";
    assert_int_equal(wk_api_route_of(p, strlen(p), id, &q, &qn), WK_API_PROGRAM);
    p = "/api/v1/programs/prg-1/x";
    assert_int_equal(wk_api_route_of(p, strlen(p), id, &q, &qn), WK_API_NONE);
    p = "/api/v1/groups/north";
    assert_int_equal(wk_api_route_of(p, strlen(p), id, &q, &qn), WK_API_GROUP);
    assert_string_equal(id, "north");
    p = "/api/v1/groups";
    assert_int_equal(wk_api_route_of(p, strlen(p), id, &q, &qn), WK_API_GROUPS);
    assert_string_equal(wk_api_allow(WK_API_GROUP), "GET, PUT, DELETE");
    p = "/api/v1/events/evt-1/vens";
    assert_int_equal(wk_api_route_of(p, strlen(p), id, &q, &qn), WK_API_EVENT_VENS);
    assert_string_equal(id, "evt-1");
    assert_string_equal(wk_api_allow(WK_API_EVENT), "GET, PUT");
    assert_string_equal(wk_api_allow(WK_API_EVENTS), "GET, POST");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_durations),   cmocka_unit_test(test_datetimes),
        cmocka_unit_test(test_event_body),  cmocka_unit_test(test_event_refusals),
        cmocka_unit_test(test_cancel_body), cmocka_unit_test(test_status),
        cmocka_unit_test(test_list_query),  cmocka_unit_test(test_program_body),
        cmocka_unit_test(test_group_body),  cmocka_unit_test(test_participation_query),
        cmocka_unit_test(test_routes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
