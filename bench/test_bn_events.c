/* Unit tests for the events mode's bookkeeping: reading an
 * oadrDistributeEvent, the coverage percentiles, Redis INFO fields. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bn_internal.h"

/* Two events the way the VTN writes them (abridged: the signals and
 * periods are not read), the second one saying never. */
static const char distribute[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    "<oadr:oadrPayload xmlns:oadr=\"http://openadr.org/oadr-2.0b/2012/07\" "
    "xmlns:ei=\"http://docs.oasis-open.org/ns/energyinterop/201110\" "
    "xmlns:pyld=\"http://docs.oasis-open.org/ns/energyinterop/201110/payloads\">"
    "<oadr:oadrSignedObject><oadr:oadrDistributeEvent ei:schemaVersion=\"2.0b\">"
    "<pyld:requestID>req-77</pyld:requestID><ei:vtnID>vtn-1</ei:vtnID>"
    "<oadr:oadrEvent><ei:eiEvent><ei:eventDescriptor><ei:eventID>evt-a</ei:eventID>"
    "<ei:modificationNumber>0</ei:modificationNumber><ei:priority>1</ei:priority>"
    "<!-- <ei:eventID>not-me</ei:eventID> -->"
    "</ei:eventDescriptor><ei:eiTarget><ei:groupID>g</ei:groupID></ei:eiTarget></ei:eiEvent>"
    "<oadr:oadrResponseRequired>always</oadr:oadrResponseRequired></oadr:oadrEvent>"
    "<oadr:oadrEvent><ei:eiEvent><ei:eventDescriptor><ei:eventID> evt-b </ei:eventID>"
    "<ei:modificationNumber>3</ei:modificationNumber></ei:eventDescriptor></ei:eiEvent>"
    "<oadr:oadrResponseRequired>never</oadr:oadrResponseRequired></oadr:oadrEvent>"
    "</oadr:oadrDistributeEvent></oadr:oadrSignedObject></oadr:oadrPayload>\n";

static void distribute_lists_events_in_order(void **state)
{
    (void)state;
    bn_dist_event ev[4];
    char rid[64];
    assert_int_equal(bn_distribute_parse(distribute, strlen(distribute), ev, 4, rid, sizeof rid),
                     2);
    assert_string_equal(rid, "req-77");
    assert_string_equal(ev[0].id, "evt-a");
    assert_int_equal(ev[0].mn, 0);
    assert_int_equal(ev[0].required, 1);
    assert_string_equal(ev[1].id, "evt-b"); /* trimmed */
    assert_int_equal(ev[1].mn, 3);
    assert_int_equal(ev[1].required, 0);
}

static void distribute_limits_and_damage(void **state)
{
    (void)state;
    bn_dist_event ev[2];
    char rid[64];
    /* more events than room */
    assert_int_equal(bn_distribute_parse(distribute, strlen(distribute), ev, 1, rid, sizeof rid),
                     -ENOBUFS);
    /* a requestID that does not fit */
    assert_int_equal(bn_distribute_parse(distribute, strlen(distribute), ev, 2, rid, 4), -ENOBUFS);
    /* an event without its modificationNumber */
    static const char no_mn[] =
        "<oadrDistributeEvent><requestID>r</requestID><oadrEvent><eiEvent><eventDescriptor>"
        "<eventID>x</eventID></eventDescriptor></eiEvent></oadrEvent></oadrDistributeEvent>";
    assert_int_equal(bn_distribute_parse(no_mn, strlen(no_mn), ev, 2, rid, sizeof rid), -EINVAL);
    /* an empty set (every event cancelled implicitly) */
    static const char empty[] =
        "<oadrDistributeEvent><requestID>r2</requestID><vtnID>v</vtnID></oadrDistributeEvent>";
    assert_int_equal(bn_distribute_parse(empty, strlen(empty), ev, 2, rid, sizeof rid), 0);
    assert_string_equal(rid, "r2");
    /* cut off inside the first event */
    size_t cut = (size_t)(strstr(distribute, "<ei:modificationNumber>0") - distribute);
    assert_int_equal(bn_distribute_parse(distribute, cut, ev, 2, rid, sizeof rid), -EINVAL);
}

static void coverage_percentiles(void **state)
{
    (void)state;
    uint64_t t[200];
    /* VEN i got there after (i + 1) ms, in no particular order */
    for (uint32_t i = 0; i < 200; i++)
        t[(i * 7) % 200] = (i + 1) * 1000000ull;
    assert_int_equal(bn_coverage_ns(t, 200, 0.5), 100 * 1000000ull);
    assert_int_equal(bn_coverage_ns(t, 200, 0.99), 198 * 1000000ull);
    assert_int_equal(bn_coverage_ns(t, 200, 1.0), 200 * 1000000ull);
    assert_int_equal(bn_coverage_ns(t, 200, 0.0), 1000000ull); /* at least the first */
    assert_int_equal(t[0], 1000000ull);                        /* the input is left alone */
    /* two never got there: 99 % (198 of 200) is reached, 100 % is not */
    t[5] = t[6] = BN_NEVER;
    assert_true(bn_coverage_ns(t, 200, 0.99) != BN_NEVER);
    assert_int_equal(bn_coverage_ns(t, 200, 1.0), BN_NEVER);
    /* 3 of 3: 99 % needs all three */
    uint64_t three[3] = {5, BN_NEVER, 1};
    assert_int_equal(bn_coverage_ns(three, 3, 0.5), 5);
    assert_int_equal(bn_coverage_ns(three, 3, 0.99), BN_NEVER);
    assert_int_equal(bn_coverage_ns(three, 0, 0.5), BN_NEVER);
}

static void info_fields(void **state)
{
    (void)state;
    static const char info[] = "$120\r\n# Memory\r\nused_memory_rss:5000\r\nused_memory:1857856\r\n"
                               "used_memory_human:1.77M\r\nmaxmemory:0\r\n";
    size_t n = strlen(info);
    assert_int_equal(bn_info_field(info, n, "used_memory"), 1857856);
    assert_int_equal(bn_info_field(info, n, "used_memory_rss"), 5000);
    assert_int_equal(bn_info_field(info, n, "maxmemory"), 0);
    assert_int_equal(bn_info_field(info, n, "used_mem"), -1);
    assert_int_equal(bn_info_field(info, n, "total"), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(distribute_lists_events_in_order),
        cmocka_unit_test(distribute_limits_and_damage),
        cmocka_unit_test(coverage_percentiles),
        cmocka_unit_test(info_fields),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
