/* See testpki.h. */
#include "testpki.h"

#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <cmocka.h>

void testpki_mkdtemp(char *dir, size_t dirlen, const char *prefix)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, dirlen, "%s/%s-XXXXXX", tmp != NULL ? tmp : "/tmp", prefix);
    if (mkdtemp(dir) == NULL)
        fail_msg("mkdtemp %s failed", dir);
}

void testpki_rmdir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char p[1024];
    while (d != NULL && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
        unlink(p);
    }
    if (d != NULL)
        closedir(d);
    rmdir(dir);
}

X509 *testpki_ca(const char *pem, const char *cn, EVP_PKEY **key_out)
{
    char err[256];
    EVP_PKEY *k = vtn_pki_keygen(VTN_KEY_EC);
    assert_non_null(k);
    vtn_cert_spec spec = {.cn = cn, .key = k, .is_ca = 1, .days = 365};
    X509 *x = vtn_pki_issue(&spec, NULL, k, err, sizeof(err));
    if (x == NULL)
        fail_msg("CA %s: %s", cn, err);
    assert_int_equal(vtn_pki_write_cert(pem, x, 0), 0);
    *key_out = k;
    return x;
}

X509 *testpki_leaf(const char *cert_path, const char *key_path, const char *cn, vtn_key_type kt,
                   X509 *ca, EVP_PKEY *ca_key, const char *san, time_t not_before, time_t not_after,
                   int overwrite)
{
    char err[256];
    EVP_PKEY *k = vtn_pki_keygen(kt);
    assert_non_null(k);
    vtn_cert_spec spec = {.cn = cn, .key = k, .days = 30, .san = san};
    spec.not_before = not_before;
    spec.not_after = not_after;
    X509 *x = vtn_pki_issue(&spec, ca, ca_key, err, sizeof(err));
    if (x == NULL)
        fail_msg("issue %s: %s", cn, err);
    assert_int_equal(vtn_pki_write_cert(cert_path, x, overwrite), 0);
    assert_int_equal(vtn_pki_write_key(key_path, k, overwrite), 0);
    EVP_PKEY_free(k);
    return x;
}
