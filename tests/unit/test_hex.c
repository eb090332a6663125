/* vtn/hex.h: digits of both cases, and decoding that refuses odd counts,
 * non-digits and too little room. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "vtn/hex.h"

static void digits(void **state)
{
    (void)state;
    assert_int_equal(vtn_hexval('0'), 0);
    assert_int_equal(vtn_hexval('9'), 9);
    assert_int_equal(vtn_hexval('a'), 10);
    assert_int_equal(vtn_hexval('F'), 15);
    assert_int_equal(vtn_hexval('g'), -1);
    assert_int_equal(vtn_hexval('G'), -1);
    assert_int_equal(vtn_hexval(' '), -1);
    assert_int_equal(vtn_hexval(0xc1), -1); /* 'A' | 0x80 */
}

static void decoding(void **state)
{
    (void)state;
    unsigned char out[4];
    assert_int_equal(vtn_hex_decode("00fFa5", 6, out, sizeof out), 3);
    assert_memory_equal(out, "\x00\xff\xa5", 3);
    assert_int_equal(vtn_hex_decode("", 0, out, sizeof out), 0);
    assert_int_equal(vtn_hex_decode("abc", 3, out, sizeof out), -1);  /* odd */
    assert_int_equal(vtn_hex_decode("0x12", 4, out, sizeof out), -1); /* not a digit */
    assert_int_equal(vtn_hex_decode("0102030405", 10, out, 4), -1);   /* no room */
    assert_int_equal(vtn_hex_decode("01020304", 8, out, 4), 4);
}

/* The same digits as printf's %016 PRIx64, which it replaces on the hot path. */
static void u64_as_printf_writes_it(void **state)
{
    (void)state;
    const uint64_t v[] = {0, 1, 0xabcdef, 0x0123456789abcdefULL, UINT64_MAX};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        char got[17], want[17];
        memset(got, 'x', sizeof got);
        vtn_hex_u64(v[i], got);
        snprintf(want, sizeof want, "%016" PRIx64, v[i]);
        assert_string_equal(got, want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(digits),
        cmocka_unit_test(decoding),
        cmocka_unit_test(u64_as_printf_writes_it),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
