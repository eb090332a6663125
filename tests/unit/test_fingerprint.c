/* The OpenADR certificate fingerprint, checked against a fixed certificate
 * whose fingerprint was computed independently with the openssl CLI (see
 * tests/data/tls/README.md), plus the normalized forms used to store and
 * compare fingerprints. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/pem.h>

#include "vtn/fingerprint.h"

/* `openssl x509 -fingerprint -sha256` of tests/data/tls/fingerprint-test.pem
 * is 8F:26:...:F8:B2:30:DA:67:3F:10:C4:E0:53:23:89; these are its last 10
 * bytes, taken by hand. */
#define FIXED_FP "30:DA:67:3F:10:C4:E0:53:23:89"
#define FIXED_FULL                                                                                 \
    "8F:26:10:C0:EC:4C:55:0D:18:F4:48:1B:EF:CF:7E:CE:19:4B:D8:DA:F8:B2:30:DA:67:3F:10:C4:E0:53:"   \
    "23:89"

static size_t read_file(const char *name, unsigned char *buf, size_t cap)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/tls/%s", VTN_TEST_DATA, name);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    size_t n = fread(buf, 1, cap, f);
    fclose(f);
    assert_true(n > 0 && n < cap);
    return n;
}

static void der_file_matches_openssl_cli(void **state)
{
    (void)state;
    unsigned char der[4096];
    char fp[VTN_FINGERPRINT_SIZE];
    size_t n = read_file("fingerprint-test.der", der, sizeof(der));

    assert_int_equal(vtn_fingerprint_der(der, n, fp), 0);
    assert_string_equal(fp, FIXED_FP);
    assert_int_equal(strlen(fp), VTN_FINGERPRINT_SIZE - 1);
}

static void parsed_pem_matches_openssl_cli(void **state)
{
    (void)state;
    char path[512];
    char fp[VTN_FINGERPRINT_SIZE];
    snprintf(path, sizeof(path), "%s/tls/fingerprint-test.pem", VTN_TEST_DATA);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    assert_non_null(x);

    assert_int_equal(vtn_fingerprint_x509(x, fp), 0);
    assert_string_equal(fp, FIXED_FP);
    X509_free(x);
}

static void one_changed_byte_changes_the_fingerprint(void **state)
{
    (void)state;
    unsigned char der[4096];
    char fp[VTN_FINGERPRINT_SIZE];
    size_t n = read_file("fingerprint-test.der", der, sizeof(der));

    der[n / 2] ^= 0x01;
    assert_int_equal(vtn_fingerprint_der(der, n, fp), 0);
    assert_string_not_equal(fp, FIXED_FP);
}

static void empty_input_is_refused(void **state)
{
    (void)state;
    char fp[VTN_FINGERPRINT_SIZE] = "x";
    assert_int_equal(vtn_fingerprint_der((const unsigned char *)"", 0, fp), -EINVAL);
    assert_string_equal(fp, "");
    assert_int_equal(vtn_fingerprint_x509(NULL, fp), -EINVAL);
}

static void normalize_strips_colons_and_upcases(void **state)
{
    (void)state;
    char out[VTN_FINGERPRINT_NORM_SIZE];

    assert_int_equal(vtn_fingerprint_normalize("30:da:67:3f:10:c4:e0:53:23:89", out, sizeof(out)),
                     0);
    assert_string_equal(out, "30DA673F10C4E0532389");
    assert_int_equal(vtn_fingerprint_normalize("30DA673F10C4E0532389", out, sizeof(out)), 0);
    assert_string_equal(out, "30DA673F10C4E0532389");
    /* what the openssl CLI prints: the full SHA-256 keeps its last 10 bytes */
    assert_int_equal(vtn_fingerprint_normalize("sha256 Fingerprint=" FIXED_FULL, out, sizeof(out)),
                     0);
    assert_string_equal(out, "30DA673F10C4E0532389");
}

static void normalize_refuses_what_is_not_a_fingerprint(void **state)
{
    (void)state;
    char out[VTN_FINGERPRINT_NORM_SIZE];

    assert_int_equal(vtn_fingerprint_normalize("", out, sizeof(out)), -EINVAL);
    assert_int_equal(vtn_fingerprint_normalize("30:DA:67:3F:10:C4:E0:53:23", out, sizeof(out)),
                     -EINVAL); /* 9 bytes */
    assert_int_equal(vtn_fingerprint_normalize("30:DA:67:3F:10:C4:E0:53:23:8G", out, sizeof(out)),
                     -EINVAL);
    assert_string_equal(out, "");
    assert_int_equal(vtn_fingerprint_normalize(FIXED_FP, out, 20), -ENOSPC);
}

static void format_restores_the_colon_form(void **state)
{
    (void)state;
    char out[VTN_FINGERPRINT_SIZE];
    assert_int_equal(vtn_fingerprint_format("30da673f10c4e0532389", out), 0);
    assert_string_equal(out, FIXED_FP);
}

static void equal_ignores_colons_and_case(void **state)
{
    (void)state;
    assert_true(vtn_fingerprint_equal(FIXED_FP, "30da673f10c4e0532389"));
    assert_true(vtn_fingerprint_equal("30:da:67:3f:10:c4:e0:53:23:89", FIXED_FP));
    assert_true(vtn_fingerprint_equal(FIXED_FULL, FIXED_FP));
    assert_false(vtn_fingerprint_equal(FIXED_FP, "30:DA:67:3F:10:C4:E0:53:23:88"));
    assert_false(vtn_fingerprint_equal(FIXED_FP, ""));
    assert_false(vtn_fingerprint_equal("", ""));
    assert_false(vtn_fingerprint_equal(NULL, FIXED_FP));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(der_file_matches_openssl_cli),
        cmocka_unit_test(parsed_pem_matches_openssl_cli),
        cmocka_unit_test(one_changed_byte_changes_the_fingerprint),
        cmocka_unit_test(empty_input_is_refused),
        cmocka_unit_test(normalize_strips_colons_and_upcases),
        cmocka_unit_test(normalize_refuses_what_is_not_a_fingerprint),
        cmocka_unit_test(format_restores_the_colon_form),
        cmocka_unit_test(equal_ignores_colons_and_case),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
