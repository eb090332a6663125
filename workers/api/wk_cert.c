/* Certificates for /api/v1/certificates: the client CA (VTN_CA_DIR), the
 * validation of requests (CSR, key type, bounds) and the signing itself.
 * Pure functions over OpenSSL, no Redis: unit-tested in
 * tests/unit/test_wk_cert.c. The handlers are in wk_api_cert.c. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "vtn/fingerprint.h"
#include "vtn/log.h"
#include "wk_api_internal.h"

#define CLOCK_SKEW_S 300 /* notBefore this far back: a VEN's clock may lag (as vtnctl) */

/* ---- the CA ---- */

static time_t asn1_time(const ASN1_TIME *t)
{
    struct tm tm;
    if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
        return 0;
    return timegm(&tm);
}

int wk_ca_load(wk_ca *ca, const char *dir, char *err, size_t errlen)
{
    char cert_path[4096], key_path[4096], fp[VTN_FINGERPRINT_SIZE], e[512];
    memset(ca, 0, sizeof *ca);
    if ((size_t)snprintf(cert_path, sizeof cert_path, "%s/ca.pem", dir) >= sizeof cert_path ||
        (size_t)snprintf(key_path, sizeof key_path, "%s/ca.key", dir) >= sizeof key_path) {
        snprintf(err, errlen, "VTN_CA_DIR: path too long");
        return -ENAMETOOLONG;
    }
    ca->cert = vtn_pki_read_cert(cert_path, e, sizeof e);
    if (ca->cert == NULL) {
        snprintf(err, errlen, "VTN_CA_DIR: %s", e);
        return -EINVAL;
    }
    ca->key = vtn_pki_read_key(key_path, e, sizeof e);
    if (ca->key == NULL) {
        snprintf(err, errlen, "VTN_CA_DIR: %s", e);
        wk_ca_free(ca);
        return -EINVAL;
    }
    int rc = -EINVAL;
    if (X509_check_private_key(ca->cert, ca->key) != 1) {
        snprintf(err, errlen, "VTN_CA_DIR: %s does not match %s", key_path, cert_path);
        goto fail;
    }
    if (X509_check_ca(ca->cert) < 1) {
        snprintf(err, errlen, "VTN_CA_DIR: %s is not a CA certificate", cert_path);
        goto fail;
    }
    int base = EVP_PKEY_get_base_id(ca->key);
    if (base != EVP_PKEY_EC && base != EVP_PKEY_RSA) {
        snprintf(err, errlen, "VTN_CA_DIR: %s is neither an ECC nor an RSA key", key_path);
        goto fail;
    }
    if (vtn_fingerprint_x509(ca->cert, fp) < 0 ||
        vtn_fingerprint_normalize(fp, ca->id, sizeof ca->id) < 0) {
        snprintf(err, errlen, "VTN_CA_DIR: cannot compute the fingerprint of %s", cert_path);
        goto fail;
    }
    ca->not_after = asn1_time(X509_get0_notAfter(ca->cert));
    ERR_clear_error();
    return 0;
fail:
    ERR_clear_error();
    wk_ca_free(ca);
    return rc;
}

void wk_ca_free(wk_ca *ca)
{
    X509_free(ca->cert);
    EVP_PKEY_free(ca->key);
    ca->cert = NULL;
    ca->key = NULL;
}

/* ---- validation ---- */

int wk_cert_check_key(EVP_PKEY *k, char *err, size_t errlen)
{
    if (k == NULL) {
        snprintf(err, errlen, "the request carries no readable public key");
        return -EINVAL;
    }
    int base = EVP_PKEY_get_base_id(k);
    if (base == EVP_PKEY_EC) {
        char group[80] = "";
        size_t glen = 0;
        if (EVP_PKEY_get_group_name(k, group, sizeof group, &glen) != 1)
            snprintf(group, sizeof group, "an unnamed curve");
        ERR_clear_error();
        if (strcmp(group, "prime256v1") != 0) {
            snprintf(err, errlen,
                     "ECC keys must be on curve P-256 (prime256v1), as OpenADR 2.0b requires; "
                     "this one is on %s",
                     group);
            return -EINVAL;
        }
        return 0;
    }
    if (base == EVP_PKEY_RSA) {
        int bits = EVP_PKEY_get_bits(k);
        if (bits < 2048 || bits > WK_RSA_BITS_MAX) {
            snprintf(err, errlen, "RSA keys must have 2048 to %d bits; this one has %d",
                     WK_RSA_BITS_MAX, bits);
            return -EINVAL;
        }
        return 0;
    }
    const char *name = EVP_PKEY_get0_type_name(k);
    snprintf(err, errlen,
             "%s keys are not accepted: use ECC P-256 or RSA (2048 bits or more), the key "
             "types of OpenADR 2.0b's TLS suites",
             name ? name : "this kind of");
    return -EINVAL;
}

X509_REQ *wk_cert_parse_csr(const char *pem, size_t n, char *err, size_t errlen)
{
    if (n == 0 || n > WK_CSR_MAX) {
        snprintf(err, errlen, "csr must be a PEM certificate request of 1 to %d bytes", WK_CSR_MAX);
        return NULL;
    }
    ERR_clear_error();
    BIO *b = BIO_new_mem_buf(pem, (int)n);
    X509_REQ *r = b ? PEM_read_bio_X509_REQ(b, NULL, vtn_pki_no_passphrase, NULL) : NULL;
    BIO_free(b);
    ERR_clear_error();
    if (r == NULL) {
        snprintf(err, errlen,
                 "csr is not a PEM certificate request (-----BEGIN CERTIFICATE REQUEST-----)");
        return NULL;
    }
    /* The key first: a refused key type is the more useful answer. */
    EVP_PKEY *pub = X509_REQ_get0_pubkey(r);
    if (wk_cert_check_key(pub, err, errlen) < 0)
        goto fail;
    if (X509_REQ_verify(r, pub) != 1) {
        snprintf(err, errlen,
                 "the signature of the csr does not verify: it must be signed with the private "
                 "key of the public key it carries");
        goto fail;
    }
    ERR_clear_error();
    return r;
fail:
    ERR_clear_error();
    X509_REQ_free(r);
    return NULL;
}

int wk_cert_cn_valid(const char *s, size_t n)
{
    size_t chars = 0;
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f)
            return 0;
        if ((c & 0xc0) != 0x80) /* count UTF-8 lead bytes: characters, not bytes */
            chars++;
    }
    return chars <= WK_CN_MAX && n <= WK_CN_MAX * 4;
}

int wk_cert_serial_norm(const char *in, size_t n, char *out, size_t outlen)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c == ':')
            continue;
        if (!isxdigit(c))
            return -EINVAL;
        if (o == 0 && c == '0')
            continue; /* vtn_pki_serial_hex prints no leading zeros */
        if (o >= WK_SERIAL_MAX || o + 1 >= outlen)
            return -EINVAL;
        out[o++] = (char)toupper(c);
    }
    if (o == 0) {
        /* all zeros (or nothing): serial 0 is never issued, and "" is no serial */
        return -EINVAL;
    }
    out[o] = '\0';
    return 0;
}

void wk_cert_req_clear(wk_cert_req *r)
{
    X509_REQ_free(r->csr);
    memset(r, 0, sizeof *r);
}

struct issue_body {
    wk_cert_req *r;
    const char *csr;
    size_t csr_len;
    int has_key;
};

static int issue_field(void *ud, int i, json_t *v, char *err, size_t errlen)
{
    struct issue_body *b = ud;
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    switch (i) {
    case 0: /* venID */
        if (s == NULL || !wk_id_valid(s, n)) {
            snprintf(err, errlen,
                     "venID must be a string of 1 to %d letters, digits, '-', '_', '.', ':'",
                     WK_ID_MAX);
            return -EINVAL;
        }
        memcpy(b->r->ven, s, n + 1);
        return 0;
    case 1: /* csr */
        if (s == NULL) {
            snprintf(err, errlen, "csr must be a string (the PEM certificate request)");
            return -EINVAL;
        }
        b->csr = s;
        b->csr_len = n;
        return 0;
    case 2: { /* keyType */
        vtn_key_type kt;
        if (s == NULL || vtn_key_type_parse(s, &kt) < 0) {
            snprintf(err, errlen, "keyType must be \"ec\" (ECC P-256) or \"rsa\" (RSA 2048)");
            return -EINVAL;
        }
        b->r->key_type = (int)kt;
        b->has_key = 1;
        return 0;
    }
    case 3: /* commonName */
        if (s == NULL || !wk_cert_cn_valid(s, n)) {
            snprintf(err, errlen,
                     "commonName must be a string of 1 to %d characters without control "
                     "characters",
                     WK_CN_MAX);
            return -EINVAL;
        }
        memcpy(b->r->cn, s, n + 1);
        return 0;
    default: { /* days */
        json_int_t d = json_is_integer(v) ? json_integer_value(v) : -1;
        if (d < 1 || d > WK_CERT_DAYS_MAX) {
            snprintf(err, errlen, "days must be an integer from 1 to %d", WK_CERT_DAYS_MAX);
            return -EINVAL;
        }
        b->r->days = (int)d;
        return 0;
    }
    }
}

int wk_cert_parse_issue(const char *body, size_t n, wk_cert_req *r, char *err, size_t errlen)
{
    static const char *const names[] = {"venID", "csr", "keyType", "commonName", "days", NULL};
    memset(r, 0, sizeof *r);
    r->days = WK_CERT_DAYS_DEFAULT;
    if (n == 0) {
        snprintf(err, errlen, "a JSON object with venID and csr or keyType is required");
        return -EINVAL;
    }
    json_t *o = wk__api_json_object(body, n, "body must be a JSON object", err, errlen);
    if (o == NULL)
        return -EINVAL;
    struct issue_body b = {r, NULL, 0, 0};
    int rc = wk__api_json_fields(o, names, issue_field, &b, err, errlen);
    if (rc < 0)
        goto out;
    rc = -EINVAL;
    if (!r->ven[0]) {
        snprintf(err, errlen, "venID is required");
        goto out;
    }
    if ((b.csr != NULL) == b.has_key) {
        snprintf(err, errlen,
                 "give either csr (a PEM certificate request: the VEN keeps its key) or keyType "
                 "(\"ec\" or \"rsa\": the VTN generates the key)%s",
                 b.has_key ? ", not both" : "");
        goto out;
    }
    if (b.csr != NULL) {
        r->csr = wk_cert_parse_csr(b.csr, b.csr_len, err, errlen);
        if (r->csr == NULL)
            goto out;
    }
    rc = 0;
out:
    json_decref(o); /* b.csr pointed into it: parsed above */
    return rc;
}

/* ---- query strings and the revoke body ---- */

int wk_cert_parse_list_query(const char *q, size_t n, int *limit, char *cursor, size_t cursorlen,
                             char *ven, size_t venlen, char *err, size_t errlen)
{
    static const wk__api_filter by_ven = {"venID", wk_id_valid, WK_ID_MAX,
                                          "letters, digits, '-', '_', '.', ':'", NULL};
    return wk__api_parse_filtered_list(q, n, &by_ven, limit, cursor, cursorlen, ven, venlen, err,
                                       errlen);
}

static int days_value(const char *key, const char *val, void *out, char *err, size_t errlen)
{
    return wk__api_int_value(key, val, WK_CRL_DAYS_MAX, out, err, errlen);
}

int wk_cert_parse_crl_query(const char *q, size_t n, int *days, char *err, size_t errlen)
{
    *days = WK_CRL_DAYS_DEFAULT;
    return wk__api_parse_single(q, n, "days", days_value, days, err, errlen);
}

static int revoke_field(void *ud, int i, json_t *v, char *err, size_t errlen)
{
    (void)i; /* reason */
    if (!json_is_string(v) || vtn_crl_reason_parse(json_string_value(v), ud) < 0) {
        snprintf(err, errlen,
                 "reason must be one of unspecified, keyCompromise, affiliationChanged, "
                 "superseded, cessationOfOperation");
        return -EINVAL;
    }
    return 0;
}

int wk_cert_parse_revoke(const char *body, size_t n, int *reason, char *err, size_t errlen)
{
    static const char *const names[] = {"reason", NULL};
    *reason = VTN_CRL_UNSPECIFIED;
    if (n == 0)
        return 0;
    json_t *o = wk__api_json_object(body, n, "body must be a JSON object (or empty)", err, errlen);
    if (o == NULL)
        return -EINVAL;
    int rc = wk__api_json_fields(o, names, revoke_field, reason, err, errlen);
    json_decref(o);
    return rc;
}

/* ---- signing ---- */

/* PEM of a certificate or key into a malloc'd string. Keys go through a
 * secure-heap BIO, cleared when freed. */
static char *to_pem(X509 *x, EVP_PKEY *k)
{
    BIO *b = BIO_new(k ? BIO_s_secmem() : BIO_s_mem());
    char *out = NULL, *data = NULL;
    if (b == NULL)
        return NULL;
    int ok =
        k ? PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL) : PEM_write_bio_X509(b, x);
    long len = ok ? BIO_get_mem_data(b, &data) : 0;
    if (len > 0 && (out = malloc((size_t)len + 1)) != NULL) {
        memcpy(out, data, (size_t)len);
        out[len] = '\0';
    }
    BIO_free(b);
    return out;
}

void wk_cert_issued_clear(wk_cert_issued *c)
{
    free(c->pem);
    if (c->key_pem) {
        OPENSSL_cleanse(c->key_pem, strlen(c->key_pem));
        free(c->key_pem);
    }
    memset(c, 0, sizeof *c);
}

int wk_cert_sign(const wk_ca *ca, const wk_cert_req *r, const char *cn, time_t now,
                 wk_cert_issued *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (ca->cert == NULL) {
        snprintf(err, errlen, "certificate issuing disabled: set VTN_CA_DIR");
        return -ENOENT;
    }
    time_t nb = now - CLOCK_SKEW_S, na = now + (time_t)r->days * 86400;
    /* A certificate never outlives its CA: the chain would not verify past that. */
    if (ca->not_after && na > ca->not_after)
        na = ca->not_after;
    if (na <= now + 60) {
        snprintf(err, errlen, "the CA in VTN_CA_DIR expires or has expired; replace it");
        return -ESTALE;
    }
    EVP_PKEY *gen = NULL, *pub;
    if (r->key_type) {
        gen = vtn_pki_keygen((vtn_key_type)r->key_type);
        if (gen == NULL) {
            vtn_pki_errstr(err, errlen, "key generation");
            return -EIO;
        }
        pub = gen;
        out->key_type = r->key_type;
    } else {
        pub = X509_REQ_get0_pubkey(r->csr);
        out->key_type = EVP_PKEY_get_base_id(pub) == EVP_PKEY_RSA ? VTN_KEY_RSA : VTN_KEY_EC;
    }
    vtn_cert_spec spec = {.cn = cn, .key = pub, .not_before = nb, .not_after = na};
    X509 *x = vtn_pki_issue(&spec, ca->cert, ca->key, err, errlen);
    int rc = -EIO;
    char fp[VTN_FINGERPRINT_SIZE];
    if (x == NULL)
        goto out;
    if (vtn_pki_serial_hex(x, out->serial, sizeof out->serial) < 0 ||
        vtn_fingerprint_x509(x, fp) < 0 || vtn_fingerprint_normalize(fp, out->fp, sizeof out->fp)) {
        snprintf(err, errlen, "serial or fingerprint of the new certificate");
        goto out;
    }
    out->pem = to_pem(x, NULL);
    if (gen)
        out->key_pem = to_pem(NULL, gen);
    if (out->pem == NULL || (gen && out->key_pem == NULL)) {
        snprintf(err, errlen, "PEM encoding failed");
        goto out;
    }
    out->nb_ms = (int64_t)nb * 1000;
    out->na_ms = (int64_t)na * 1000;
    rc = 0;
out:
    ERR_clear_error();
    X509_free(x);
    EVP_PKEY_free(gen);
    if (rc < 0)
        wk_cert_issued_clear(out);
    return rc;
}
