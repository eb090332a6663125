/* vtn/keys.h: the builders fill the patterns' parts in order, keep a VEN's
 * keys on its hash tag, and cut (never overflow) a key longer than
 * VTN_KEY_MAX. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "vtn/keys.h"

static void per_ven_keys(void **state)
{
    (void)state;
    char k[VTN_KEY_MAX];
    assert_string_equal(vtn_key_ven(k, "ven-1"), "ven:{ven-1}");
    assert_string_equal(vtn_key_venq(k, "ven-1"), "venq:{ven-1}");
    assert_string_equal(vtn_key_venpm(k, "ven-1"), "venpm:{ven-1}");
    assert_string_equal(vtn_key_venreq(k, "ven-1", "00000000000000ff"),
                        "venreq:{ven-1}:00000000000000ff");
    assert_string_equal(vtn_key_vencerts(k, "ven-1"), "vencerts:{ven-1}");
}

static void global_keys(void **state)
{
    (void)state;
    char k[VTN_KEY_MAX];
    assert_string_equal(vtn_key_venname(k, "a b<c>"), "vtn:venname:a b<c>"); /* taken as is */
    assert_string_equal(vtn_key_venfp(k, "09719E0E51C08F0556C9"), "vtn:venfp:09719E0E51C08F0556C9");
    assert_string_equal(vtn_key_venreg(k, "reg-1"), "vtn:venreg:reg-1");
    assert_string_equal(vtn_key_req(k, "0a"), "vtn:req:0a");
    assert_string_equal(vtn_key_cert(k, "1F"), "vtn:cert:1F");
    assert_string_equal(vtn_key_certreq(k, "0a"), "vtn:certreq:0a");
    assert_string_equal(vtn_key_revokedfp(k, "AB"), "vtn:revokedfp:AB");
    assert_string_equal(vtn_key_ca_revoked(k, "CA1"), "vtn:ca:{CA1}:revoked");
    assert_string_equal(vtn_key_ca_crlnumber(k, "CA1"), "vtn:ca:{CA1}:crlnumber");
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
    vtn_key_ven(k, v);
    assert_int_equal(strlen(k), VTN_KEY_MAX - 1);
    assert_memory_equal(k, "ven:{xxx", 8);
    assert_int_equal(k[VTN_KEY_MAX], '#'); /* nothing written past the cap */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(per_ven_keys),
        cmocka_unit_test(global_keys),
        cmocka_unit_test(missing_part_leaves_it_empty),
        cmocka_unit_test(long_value_is_cut),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
