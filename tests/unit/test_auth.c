/* vtn/auth.h: which Authorization values carry the bearer token. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "vtn/auth.h"

static int ok(const char *h, const char *token)
{
    return vtn_bearer_ok(h, strlen(h), token, strlen(token));
}

static void accepted(void **state)
{
    (void)state;
    assert_true(ok("Bearer s3cret", "s3cret"));
    assert_true(ok("bearer s3cret", "s3cret")); /* the scheme in any case */
    assert_true(ok("BEARER s3cret", "s3cret"));
    assert_true(ok("Bearer   s3cret  ", "s3cret")); /* spaces around the token */
    assert_true(ok("Bearer s3cret\t", "s3cret"));
}

static void refused(void **state)
{
    (void)state;
    assert_false(ok("Bearer s3cre", "s3cret"));   /* a prefix of the token */
    assert_false(ok("Bearer s3crett", "s3cret")); /* the token and more */
    assert_false(ok("Bearer S3cret", "s3cret"));  /* the token is case-sensitive */
    assert_false(ok("Bearer s3cXet", "s3cret"));
    assert_false(ok("Basic s3cret", "s3cret"));
    assert_false(ok("Bearers3cret", "s3cret"));
    assert_false(ok("Bearer ", "s3cret"));
    assert_false(ok("Bearer", "s3cret"));
    assert_false(ok("", "s3cret"));
    assert_false(ok("Bearer s3 cret", "s3cret"));
    assert_false(vtn_bearer_ok(NULL, 0, "s3cret", 6)); /* no Authorization header */
    /* an empty token matches nothing, not even an empty one */
    assert_false(ok("Bearer ", ""));
    assert_false(ok("Bearer x", ""));
    /* only the given length of the header counts */
    assert_false(vtn_bearer_ok("Bearer s3cretX", 12, "s3cret", 6));
    assert_true(vtn_bearer_ok("Bearer s3cretX", 13, "s3cret", 6));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(accepted),
        cmocka_unit_test(refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
