/* OpenADR certificate fingerprints (see vtn/fingerprint.h). */
#include "vtn/fingerprint.h"

#include <ctype.h>
#include <errno.h>
#include <string.h>

#include <openssl/evp.h>

static const char hexdig[] = "0123456789ABCDEF";

static void format_tail(const unsigned char *tail, char out[VTN_FINGERPRINT_SIZE])
{
    char *o = out;
    for (int i = 0; i < VTN_FINGERPRINT_BYTES; i++) {
        if (i > 0)
            *o++ = ':';
        *o++ = hexdig[tail[i] >> 4];
        *o++ = hexdig[tail[i] & 0xf];
    }
    *o = '\0';
}

int vtn_fingerprint_der(const unsigned char *der, size_t n, char out[VTN_FINGERPRINT_SIZE])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;

    out[0] = '\0';
    if (der == NULL || n == 0)
        return -EINVAL;
    if (!EVP_Digest(der, n, md, &mdlen, EVP_sha256(), NULL) || mdlen != 32)
        return -EIO;
    format_tail(md + mdlen - VTN_FINGERPRINT_BYTES, out);
    return 0;
}

int vtn_fingerprint_x509(X509 *cert, char out[VTN_FINGERPRINT_SIZE])
{
    unsigned char *der = NULL;
    int n;
    int rc;

    out[0] = '\0';
    if (cert == NULL)
        return -EINVAL;
    n = i2d_X509(cert, &der);
    if (n <= 0)
        return -EIO;
    rc = vtn_fingerprint_der(der, (size_t)n, out);
    OPENSSL_free(der);
    return rc;
}

int vtn_fingerprint_normalize(const char *in, char *out, size_t outlen)
{
    char digits[65];
    size_t nd = 0;
    const char *eq;

    if (out == NULL || outlen < VTN_FINGERPRINT_NORM_SIZE) {
        if (out != NULL && outlen > 0)
            out[0] = '\0';
        return -ENOSPC;
    }
    out[0] = '\0';
    if (in == NULL)
        return -EINVAL;
    /* "SHA256 Fingerprint=AB:CD:..." as the openssl CLI prints it */
    eq = strrchr(in, '=');
    if (eq != NULL)
        in = eq + 1;
    for (const char *p = in; *p != '\0'; p++) {
        if (*p == ':' || *p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
            continue;
        if (!isxdigit((unsigned char)*p) || nd == sizeof(digits) - 1)
            return -EINVAL;
        digits[nd++] = (char)toupper((unsigned char)*p);
    }
    if (nd != 2 * VTN_FINGERPRINT_BYTES && nd != 64)
        return -EINVAL;
    memcpy(out, digits + nd - 2 * VTN_FINGERPRINT_BYTES, 2 * VTN_FINGERPRINT_BYTES);
    out[2 * VTN_FINGERPRINT_BYTES] = '\0';
    return 0;
}

int vtn_fingerprint_format(const char *in, char out[VTN_FINGERPRINT_SIZE])
{
    char norm[VTN_FINGERPRINT_NORM_SIZE];
    char *o = out;
    int rc = vtn_fingerprint_normalize(in, norm, sizeof(norm));

    out[0] = '\0';
    if (rc < 0)
        return rc;
    for (int i = 0; i < VTN_FINGERPRINT_BYTES; i++) {
        if (i > 0)
            *o++ = ':';
        *o++ = norm[2 * i];
        *o++ = norm[2 * i + 1];
    }
    *o = '\0';
    return 0;
}

int vtn_fingerprint_equal(const char *a, const char *b)
{
    char na[VTN_FINGERPRINT_NORM_SIZE], nb[VTN_FINGERPRINT_NORM_SIZE];

    if (vtn_fingerprint_normalize(a, na, sizeof(na)) < 0 ||
        vtn_fingerprint_normalize(b, nb, sizeof(nb)) < 0)
        return 0;
    return memcmp(na, nb, sizeof(na)) == 0;
}
