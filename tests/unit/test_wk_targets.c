/* What events target VENs by (oadr/wk_oadr_event.c's wk_event_applies,
 * api/wk_api_members.c's parsers, api/wk_event.c's program-wide events and
 * targetsMustMatch): which event reaches which VEN, the membership bodies
 * and their limits, and the routes of the new resources. */
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
#include "wk_oadr.h"

/* A VEN's ventargets members, as the poll turns them into an object. */
static json_t *attrs(const char *const *members)
{
    json_t *o = json_object();
    for (size_t i = 0; members[i]; i++)
        json_object_set_new(o, members[i], json_true());
    return o;
}

static json_t *event(const char *program, const char *targets)
{
    json_error_t je;
    json_t *t = json_loads(targets, 0, &je);
    assert_non_null(t);
    return json_pack("{s:s,s:o}", "programID", program, "targets", t);
}

static void test_applies_each_kind(void **state)
{
    (void)state;
    static const char *const mine[] = {"g:north", "p:prg-1", "r:meter-7", "y:acme", NULL};
    json_t *a = attrs(mine);
    static const struct {
        const char *targets;
        int applies;
    } cases[] = {
        {"{\"venID\":[\"ven-1\"]}", 1},
        {"{\"venID\":[\"ven-2\"]}", 0},
        {"{\"groupID\":[\"south\",\"north\"]}", 1},
        {"{\"groupID\":[\"south\"]}", 0},
        {"{\"resourceID\":[\"meter-7\"]}", 1},
        {"{\"resourceID\":[\"meter-8\"]}", 0},
        {"{\"partyID\":[\"acme\"]}", 1},
        {"{\"partyID\":[\"other\"]}", 0},
        /* an id of one kind does not match another kind's */
        {"{\"groupID\":[\"acme\"],\"partyID\":[\"north\"]}", 0},
        {"{\"resourceID\":[\"prg-1\"]}", 0},
        /* explicit targets do not need the program's enrollment ... */
        {"{\"venID\":[\"ven-2\"],\"resourceID\":[\"meter-7\"]}", 1},
        /* ... and, when they name others, the enrollment does not add the VEN */
        {"{\"groupID\":[\"south\"]}", 0},
        /* no targets (or empty lists): the program's enrolled VENs */
        {"{}", 1},
        {"{\"venID\":[],\"groupID\":[]}", 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *ev = event("prg-1", cases[i].targets);
        if (wk_event_applies(ev, "ven-1", a) != cases[i].applies)
            fail_msg("%s: expected %d", cases[i].targets, cases[i].applies);
        json_decref(ev);
    }
    /* a program-wide event of another program */
    json_t *ev = event("prg-2", "{}");
    assert_false(wk_event_applies(ev, "ven-1", a));
    json_decref(ev);
    json_decref(a);
}

static void test_applies_not_enrolled(void **state)
{
    (void)state;
    static const char *const none[] = {NULL};
    json_t *a = attrs(none);
    json_t *ev = event("prg-1", "{}");
    assert_false(wk_event_applies(ev, "ven-1", a)); /* a VEN not enrolled gets nothing */
    json_decref(ev);
    ev = event("", "{}"); /* a record without its program reaches nobody */
    assert_false(wk_event_applies(ev, "ven-1", a));
    json_decref(ev);
    json_decref(a);
}

static const char *ven_list(size_t n, size_t idlen)
{
    static char buf[1 << 20];
    size_t o = (size_t)snprintf(buf, sizeof buf, "{\"venIDs\":[");
    for (size_t i = 0; i < n; i++)
        o += (size_t)snprintf(buf + o, sizeof buf - o, "%s\"%0*zu\"", i ? "," : "", (int)idlen, i);
    snprintf(buf + o, sizeof buf - o, "]}");
    return buf;
}

static void test_members_limits(void **state)
{
    (void)state;
    wk_members_in m;
    char err[512];
    const char *b = ven_list(WK_MEMBERS_MAX, 64); /* exactly the limit, the longest ids */
    assert_int_equal(wk_api_parse_members(b, strlen(b), 0, 0, "/x/vens", &m, err, sizeof err), 0);
    assert_int_equal(json_array_size(m.add), WK_MEMBERS_MAX);
    assert_null(m.remove);
    wk_members_in_clear(&m);
    b = ven_list(WK_MEMBERS_MAX + 1, 8);
    assert_int_equal(
        wk_api_parse_members(b, strlen(b), 0, 0, "/api/v1/programs/p/vens", &m, err, sizeof err),
        -E2BIG);
    assert_non_null(strstr(err, "at most 10000 per request"));
    assert_non_null(strstr(err, "POST /api/v1/programs/p/vens"));
    assert_null(m.add);
}

static void test_members_bodies(void **state)
{
    (void)state;
    wk_members_in m;
    char err[512];
    const char *b = "{\"add\":[\"a\",\"b\"],\"remove\":[\"c\"]}";
    assert_int_equal(wk_api_parse_members(b, strlen(b), 1, 0, "/x", &m, err, sizeof err), 0);
    assert_int_equal(json_array_size(m.add), 2);
    assert_int_equal(json_array_size(m.remove), 1);
    wk_members_in_clear(&m);
    b = "{\"remove\":[\"c\"]}"; /* one of the two is enough */
    assert_int_equal(wk_api_parse_members(b, strlen(b), 1, 0, "/x", &m, err, sizeof err), 0);
    assert_int_equal(json_array_size(m.add), 0);
    wk_members_in_clear(&m);
    static const struct {
        const char *body;
        int batch, named;
        const char *says;
    } bad[] = {
        {"{}", 1, 0, "give add, remove or both"},
        {"{\"add\":\"a\"}", 1, 0, "add must be an array"},
        {"{\"add\":[\"a b\"]}", 1, 0, "add[0] must be"},
        {"{\"venIDs\":[\"a\"]}", 1, 0, "unknown field 'venIDs'"},
        {"{\"name\":\"x\",\"venIDs\":[]}", 0, 0, "unknown field 'name'"},
        {"{\"add\":[]}", 0, 1, "unknown field 'add'"},
        {"[]", 0, 0, "body must be a JSON object {venIDs}"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        assert_int_equal(wk_api_parse_members(bad[i].body, strlen(bad[i].body), bad[i].batch,
                                              bad[i].named, "/x", &m, err, sizeof err),
                         -EINVAL);
        if (strstr(err, bad[i].says) == NULL)
            fail_msg("%s -> '%s'", bad[i].body, err);
    }
}

static void test_ven_targets_body(void **state)
{
    (void)state;
    json_t *r = NULL, *p = NULL;
    char err[512], body[16384];
    const char *b = "{\"resourceID\":[\"meter-7\"]}";
    assert_int_equal(wk_api_parse_ven_targets(b, strlen(b), &r, &p, err, sizeof err), 0);
    assert_int_equal(json_array_size(r), 1);
    assert_int_equal(json_array_size(p), 0); /* absent: none */
    json_decref(r);
    json_decref(p);
    size_t o = (size_t)snprintf(body, sizeof body, "{\"partyID\":[");
    for (int i = 0; i <= WK_VEN_TARGET_IDS_MAX; i++)
        o += (size_t)snprintf(body + o, sizeof body - o, "%s\"p%d\"", i ? "," : "", i);
    snprintf(body + o, sizeof body - o, "]}");
    assert_int_equal(wk_api_parse_ven_targets(body, strlen(body), &r, &p, err, sizeof err),
                     -EINVAL);
    assert_non_null(strstr(err, "partyID has 101 entries: at most 100"));
    assert_null(r);
    b = "{\"resourceID\":[\"x\"],\"groupID\":[\"g\"]}";
    assert_int_equal(wk_api_parse_ven_targets(b, strlen(b), &r, &p, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "unknown field 'groupID'"));
    char id65[80];
    memset(id65, 'a', 65);
    id65[65] = '\0';
    snprintf(body, sizeof body, "{\"resourceID\":[\"%s\"]}", id65);
    assert_int_equal(wk_api_parse_ven_targets(body, strlen(body), &r, &p, err, sizeof err),
                     -EINVAL);
    assert_non_null(strstr(err, "resourceID[0] must be 1 to 64"));
}

static void test_program_wide_event(void **state)
{
    (void)state;
    static const char base[] =
        "{\"marketContext\":\"http://u.example/cpp\",\"dtstart\":\"2026-12-03T14:00:00Z\","
        "\"duration\":\"PT1H\",\"signals\":[{\"signalName\":\"SIMPLE\",\"signalType\":\"level\","
        "\"intervals\":[{\"duration\":\"PT1H\",\"value\":1}]}]%s}";
    char body[1024], err[512];
    wk_event_in e;
    snprintf(body, sizeof body, base, ""); /* no targets at all */
    assert_int_equal(wk_event_parse(body, strlen(body), &e, err, sizeof err), 0);
    assert_true(json_is_object(json_object_get(e.body, "targets")));
    assert_int_equal(json_object_size(json_object_get(e.body, "targets")), 0);
    assert_false(e.must_match);
    wk_event_in_clear(&e);
    snprintf(body, sizeof body, base, ",\"targets\":{},\"targetsMustMatch\":true");
    assert_int_equal(wk_event_parse(body, strlen(body), &e, err, sizeof err), 0);
    assert_true(e.must_match);
    assert_null(json_object_get(e.body, "targetsMustMatch")); /* a check, not kept */
    wk_event_in_clear(&e);
}

static void test_member_routes(void **state)
{
    (void)state;
    char id[WK_ID_MAX + 1];
    const char *q;
    size_t qn;
    static const struct {
        const char *path;
        int route;
        const char *allow;
    } rows[] = {
        {"/api/v1/programs/prg-1/vens", WK_API_PROGRAM_VENS, "GET, PUT, POST"},
        {"/api/v1/programs/prg-1", WK_API_PROGRAM, "GET, DELETE"},
        {"/api/v1/groups/north/vens/", WK_API_GROUP_VENS, "POST"},
        {"/api/v1/vens/ven-1/targets", WK_API_VEN_TARGETS, "GET, PUT"},
        {"/api/v1/vens/ven-1/reregister", WK_API_REREGISTER, "POST"},
        {"/api/v1/vens/ven-1/other", WK_API_NONE, ""},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        int r = wk_api_route_of(rows[i].path, strlen(rows[i].path), id, &q, &qn);
        if (r != rows[i].route)
            fail_msg("%s -> route %d", rows[i].path, r);
        assert_string_equal(wk_api_allow(r), rows[i].allow);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_applies_each_kind), cmocka_unit_test(test_applies_not_enrolled),
        cmocka_unit_test(test_members_limits),    cmocka_unit_test(test_members_bodies),
        cmocka_unit_test(test_ven_targets_body),  cmocka_unit_test(test_program_wide_event),
        cmocka_unit_test(test_member_routes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
