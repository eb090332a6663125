/* vtn/keys.h: the builder fills a pattern's parts in order, keeps a VEN's
 * keys on its hash tag, and cuts (never overflows) a key longer than
 * VTN_KEY_MAX. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "vtn/keys.h"

static void per_ven_keys(void **state)
{
    (void)state;
    char k[VTN_KEY_MAX];
    assert_string_equal(vtn_key_build(k, VTN_KEY_VEN, "ven-1", NULL), "ven:{ven-1}");
    assert_string_equal(vtn_key_build(k, VTN_KEY_VENQ, "ven-1", NULL), "venq:{ven-1}");
    assert_string_equal(vtn_key_build(k, VTN_KEY_VENPM, "ven-1", NULL), "venpm:{ven-1}");
    assert_string_equal(vtn_key_build(k, VTN_KEY_VENREQ, "ven-1", "00000000000000ff"),
                        "venreq:{ven-1}:00000000000000ff");
    assert_string_equal(vtn_key_build(k, VTN_KEY_VENCERTS, "ven-1", NULL), "vencerts:{ven-1}");
}

static void global_keys(void **state)
{
    (void)state;
    char k[VTN_KEY_MAX];
    assert_string_equal(vtn_key_build(k, VTN_KEY_VENNAME, "a b<c>", NULL),
                        "vtn:venname:a b<c>"); /* taken as is */
    assert_string_equal(vtn_key_build(k, VTN_KEY_VENFP, "09719E0E51C08F0556C9", NULL),
                        "vtn:venfp:09719E0E51C08F0556C9");
    assert_string_equal(vtn_key_build(k, VTN_KEY_VENREG, "reg-1", NULL), "vtn:venreg:reg-1");
    assert_string_equal(vtn_key_build(k, VTN_KEY_REQ, "0a", NULL), "vtn:req:0a");
    assert_string_equal(vtn_key_build(k, VTN_KEY_CERT, "1F", NULL), "vtn:cert:1F");
    assert_string_equal(vtn_key_build(k, VTN_KEY_CERTREQ, "0a", NULL), "vtn:certreq:0a");
    assert_string_equal(vtn_key_build(k, VTN_KEY_REVOKEDFP, "AB", NULL), "vtn:revokedfp:AB");
    assert_string_equal(vtn_key_build(k, VTN_KEY_CA_REVOKED, "CA1", NULL), "vtn:ca:{CA1}:revoked");
    assert_string_equal(vtn_key_build(k, VTN_KEY_CA_CRLNUMBER, "CA1", NULL),
                        "vtn:ca:{CA1}:crlnumber");
    assert_string_equal(vtn_key_build(k, VTN_KEY_VENS, NULL, NULL), VTN_KEY_VENS);
}

static void missing_part_leaves_it_empty(void **state)
{
    (void)state;
    char k[VTN_KEY_MAX];
    assert_string_equal(vtn_key_build(k, VTN_KEY_VENREQ, "ven-1", NULL), "venreq:{ven-1}:");
}

static void long_value_is_cut(void **state)
{
    (void)state;
    char v[2 * VTN_KEY_MAX], k[VTN_KEY_MAX + 8];
    memset(v, 'x', sizeof v - 1);
    v[sizeof v - 1] = '\0';
    memset(k, '#', sizeof k);
    vtn_key_build(k, VTN_KEY_VEN, v, NULL);
    assert_int_equal(strlen(k), VTN_KEY_MAX - 1);
    assert_memory_equal(k, "ven:{xxx", 8);
    assert_int_equal(k[VTN_KEY_MAX], '#'); /* nothing written past the cap */
}

/* The participation shard is FNV-1a 32 (its published vectors, masked)
 * and keeps 100,000 VENs of an event in shards that Redis stores as
 * listpacks (at most 128 fields each). */
static void event_vens_shards(void **state)
{
    (void)state;
    char k[VTN_KEY_MAX];
    assert_int_equal(vtn_event_vens_shard(""), 0x811c9dc5u & (VTN_EVENT_VENS_SHARDS - 1));
    assert_int_equal(vtn_event_vens_shard("a"), 0xe40c292cu & (VTN_EVENT_VENS_SHARDS - 1));
    assert_int_equal(vtn_event_vens_shard("foobar"), 0xbf9cf968u & (VTN_EVENT_VENS_SHARDS - 1));
    assert_string_equal(vtn_key_eventvens(k, "evt-1", 1023), "vtn:event:evt-1:vens:1023");
    static unsigned count[VTN_EVENT_VENS_SHARDS];
    unsigned most = 0, used = 0;
    for (int i = 0; i < 100000; i++) {
        char ven[32];
        snprintf(ven, sizeof ven, "ven-%08d", i);
        unsigned s = vtn_event_vens_shard(ven);
        assert_true(s < VTN_EVENT_VENS_SHARDS);
        used += count[s] == 0;
        if (++count[s] > most)
            most = count[s];
    }
    assert_int_equal(used, VTN_EVENT_VENS_SHARDS);
    assert_true(most <= 128);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(per_ven_keys),
        cmocka_unit_test(global_keys),
        cmocka_unit_test(missing_part_leaves_it_empty),
        cmocka_unit_test(long_value_is_cut),
        cmocka_unit_test(event_vens_shards),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
