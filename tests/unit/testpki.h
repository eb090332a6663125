/* Certificates for the TLS unit tests, made at test time in a temporary
 * directory (tests/unit/testpki.c). Failures end the test with cmocka's
 * fail_msg. */
#ifndef VTN_TESTPKI_H
#define VTN_TESTPKI_H

#include <stddef.h>
#include <time.h>

#include <openssl/x509.h>

#include "vtn/pki.h"

/* A new directory under $TMPDIR (or /tmp) named prefix-XXXXXX. */
void testpki_mkdtemp(char *dir, size_t dirlen, const char *prefix);
/* Removes the files in dir (no subdirectories are made) and dir. */
void testpki_rmdir(const char *dir);
/* A self-signed ECC CA written to pem; its key in *key_out. */
X509 *testpki_ca(const char *pem, const char *cn, EVP_PKEY **key_out);
/* A leaf of type kt signed by ca/ca_key, valid 30 days (or not_before ..
 * not_after when those are set), with subjectAltName san (NULL: none);
 * writes certificate and key (replacing files when overwrite). */
X509 *testpki_leaf(const char *cert_path, const char *key_path, const char *cn, vtn_key_type kt,
                   X509 *ca, EVP_PKEY *ca_key, const char *san, time_t not_before, time_t not_after,
                   int overwrite);

#endif
