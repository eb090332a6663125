/* EiOpt's pure parts (core/wk_opts.c): an opt schedule's components as
 * times, with the refusals a VEN gets, and the opt a VEN's schedules give
 * one event (docs/opt.md, "Precedence"). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "wk_internal.h"

static json_t *comps(const char *json)
{
    json_t *a = json_loads(json, 0, NULL);
    assert_non_null(a);
    return a;
}

static void test_intervals(void **state)
{
    (void)state;
    json_t *a = comps("[{\"dtstart\":\"2030-01-01T00:00:00Z\",\"duration\":\"PT4H\"},"
                      "{\"dtstart\":\"2030-01-02T00:00:00Z\",\"duration\":\"P1D\"}]");
    json_t *out = NULL;
    int64_t end = 0;
    char err[256] = "";
    assert_int_equal(wk_opt_intervals(a, &out, &end, err, sizeof err), 0);
    char *s = json_dumps(out, JSON_COMPACT);
    assert_string_equal(s, "[[1893456000000,1893470400000],[1893542400000,1893628800000]]");
    assert_int_equal(end, 1893628800000LL);
    free(s);
    json_decref(out);
    json_decref(a);
}

/* Each refusal names the component (from 1) and what is wrong with it. */
static void test_interval_refusals(void **state)
{
    (void)state;
    static const struct {
        const char *json, *says;
    } bad[] = {
        {"[{\"dtstart\":\"2030-01-01T00:00:00\",\"duration\":\"PT1H\"}]",
         "component 1: dtstart 2030-01-01T00:00:00 is not a UTC date-time"},
        {"[{\"dtstart\":\"2030-01-01T00:00:00Z\",\"duration\":\"PT1H\"},"
         "{\"dtstart\":\"2030-01-01T00:00:00Z\",\"duration\":\"PT0S\"}]",
         "component 2: duration PT0S is not a positive duration"},
        {"[{\"dtstart\":\"2030-01-01T00:00:00Z\",\"duration\":\"P1Y\"}]",
         "component 1: duration P1Y"},
        {"[{\"dtstart\":\"2030-01-01T00:00:00Z\",\"duration\":\"P400D\"}]",
         "component 1: duration P400D"},
        {"[{\"dtstart\":\"2030-02-30T00:00:00Z\",\"duration\":\"PT1H\"}]",
         "component 1: dtstart 2030-02-30T00:00:00Z"},
        {"[{\"duration\":\"PT1H\"}]", "component 1: dtstart (none)"},
        {"[{\"dtstart\":\"2030-01-01T00:00:00Z\"}]", "component 1: duration (none)"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *a = comps(bad[i].json), *out = (json_t *)1;
        int64_t end = 0;
        char err[256] = "";
        assert_int_equal(wk_opt_intervals(a, &out, &end, err, sizeof err), -EINVAL);
        assert_null(out);
        if (strstr(err, bad[i].says) == NULL)
            fail_msg("%s: %s", bad[i].json, err);
        json_decref(a);
    }
}

/* A VEN's schedules as vtn:opts:sched members; the event runs [100, 200). */
static const char *from(const char *members, const char *mc, const char **id)
{
    json_t *s = comps(members);
    *id = NULL;
    const char *opt = wk_opt_from_schedules(s, mc, 100, 200, id);
    static char idbuf[32];
    snprintf(idbuf, sizeof idbuf, "%s", *id ? *id : "");
    *id = idbuf;
    json_decref(s);
    return opt;
}

static void test_schedules(void **state)
{
    (void)state;
    const char *id;
    /* optIn needs one component over the whole period ... */
    assert_string_equal(from("[{\"o\":\"a\",\"t\":\"i\",\"c\":[[100,200]]}]", NULL, &id), "optIn");
    assert_string_equal(id, "a");
    assert_null(from("[{\"o\":\"a\",\"t\":\"i\",\"c\":[[100,150],[150,200]]}]", NULL, &id));
    assert_null(from("[{\"o\":\"a\",\"t\":\"i\",\"c\":[[101,300]]}]", NULL, &id));
    /* ... optOut any overlap, and it wins over optIn. */
    assert_string_equal(from("[{\"o\":\"b\",\"t\":\"o\",\"c\":[[199,300]]}]", NULL, &id), "optOut");
    assert_null(from("[{\"o\":\"b\",\"t\":\"o\",\"c\":[[200,300],[0,100]]}]", NULL, &id));
    assert_string_equal(from("[{\"o\":\"a\",\"t\":\"i\",\"c\":[[0,300]]},"
                             "{\"o\":\"b\",\"t\":\"o\",\"c\":[[150,160]]}]",
                             NULL, &id),
                        "optOut");
    assert_string_equal(id, "b");
    /* A marketContext must be the event's; none applies to every one. */
    assert_null(
        from("[{\"o\":\"a\",\"t\":\"i\",\"mc\":\"http://x\",\"c\":[[0,300]]}]", "http://y", &id));
    assert_null(from("[{\"o\":\"a\",\"t\":\"i\",\"mc\":\"http://x\",\"c\":[[0,300]]}]", NULL, &id));
    assert_string_equal(
        from("[{\"o\":\"a\",\"t\":\"i\",\"mc\":\"http://x\",\"c\":[[0,300]]}]", "http://x", &id),
        "optIn");
    assert_string_equal(from("[{\"o\":\"a\",\"t\":\"i\",\"c\":[[0,300]]}]", "http://x", &id),
                        "optIn");
    /* Nothing, or nothing readable. */
    assert_null(from("[]", NULL, &id));
    assert_null(from("[{\"o\":\"a\",\"c\":[[0,300]]}]", NULL, &id));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_intervals),
        cmocka_unit_test(test_interval_refusals),
        cmocka_unit_test(test_schedules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
