/* Keys, certificates and CRLs for the VTN's own PKI (see vtn/pki.h). */
#include "vtn/pki.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#define CLOCK_SKEW_S 300 /* not_before this far in the past: a VEN's clock may lag */

const char *vtn_pki_errstr(char *err, size_t errlen, const char *what)
{
    size_t off;
    unsigned long e;
    int first = 1;

    if (err == NULL || errlen == 0) {
        ERR_clear_error();
        return err;
    }
    off = (size_t)snprintf(err, errlen, "%s", what != NULL ? what : "openssl");
    while ((e = ERR_get_error()) != 0) {
        char one[256];
        const char *r = ERR_reason_error_string(e);
        if (r == NULL) {
            ERR_error_string_n(e, one, sizeof(one));
            r = one;
        }
        if (off < errlen)
            off += (size_t)snprintf(err + off, errlen - off, "%s%s", first ? ": " : "; ", r);
        first = 0;
    }
    return err;
}

static void seterr(char *err, size_t errlen, const char *fmt, const char *a, const char *b)
{
    if (err != NULL && errlen > 0)
        snprintf(err, errlen, fmt, a, b);
}

int vtn_key_type_parse(const char *s, vtn_key_type *out)
{
    if (s == NULL)
        return -EINVAL;
    if (strcasecmp(s, "ec") == 0 || strcasecmp(s, "ecc") == 0 || strcasecmp(s, "p256") == 0 ||
        strcasecmp(s, "p-256") == 0) {
        *out = VTN_KEY_EC;
        return 0;
    }
    if (strcasecmp(s, "rsa") == 0) {
        *out = VTN_KEY_RSA;
        return 0;
    }
    return -EINVAL;
}

EVP_PKEY *vtn_pki_keygen(vtn_key_type type)
{
    if (type == VTN_KEY_EC)
        return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    if (type == VTN_KEY_RSA)
        return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    return NULL;
}

static int add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
    int ok;
    if (ext == NULL)
        return 0;
    ok = X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    return ok;
}

/* 127 random bits: positive, unique without a counter, and not guessable
 * (CA/B forum asks for at least 64 bits of randomness). */
static int random_serial(X509 *x)
{
    unsigned char raw[16];
    BIGNUM *bn;
    int ok;

    if (RAND_bytes(raw, sizeof(raw)) != 1)
        return 0;
    raw[0] &= 0x7f;
    raw[0] |= 0x40; /* fixed length: no leading zero byte */
    bn = BN_bin2bn(raw, sizeof(raw), NULL);
    if (bn == NULL)
        return 0;
    ok = BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL;
    BN_free(bn);
    return ok;
}

X509 *vtn_pki_issue(const vtn_cert_spec *spec, X509 *issuer, EVP_PKEY *issuer_key, char *err,
                    size_t errlen)
{
    X509 *x = NULL;
    X509_NAME *name = NULL;
    X509V3_CTX v3;
    time_t nb, na;
    const char *what = "building the certificate";

    ERR_clear_error();
    if (spec == NULL || spec->key == NULL || issuer_key == NULL ||
        (spec->subject == NULL && (spec->cn == NULL || spec->cn[0] == '\0'))) {
        seterr(err, errlen, "%s%s", "certificate: a subject (CN) and keys are required", "");
        return NULL;
    }
    nb = spec->not_before != 0 ? spec->not_before : time(NULL) - CLOCK_SKEW_S;
    na = spec->not_after != 0 ? spec->not_after : nb + CLOCK_SKEW_S + spec->days * 86400L;
    if (na <= nb) {
        seterr(err, errlen, "%s%s", "certificate: validity ends before it starts", "");
        return NULL;
    }

    x = X509_new();
    if (x == NULL || !X509_set_version(x, 2) || !random_serial(x))
        goto fail;
    if (X509_time_adj_ex(X509_getm_notBefore(x), 0, 0, &nb) == NULL ||
        X509_time_adj_ex(X509_getm_notAfter(x), 0, 0, &na) == NULL)
        goto fail;
    if (spec->subject != NULL) {
        if (!X509_set_subject_name(x, spec->subject))
            goto fail;
    } else {
        name = X509_NAME_new();
        if (name == NULL ||
            !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)spec->cn,
                                        -1, -1, 0) ||
            !X509_set_subject_name(x, name))
            goto fail;
    }
    if (!X509_set_issuer_name(x, issuer != NULL ? X509_get_subject_name(issuer)
                                                : X509_get_subject_name(x)) ||
        !X509_set_pubkey(x, spec->key))
        goto fail;

    X509V3_set_ctx(&v3, issuer != NULL ? issuer : x, x, NULL, NULL, 0);
    what = "adding extensions";
    if (spec->is_ca) {
        if (!add_ext(x, &v3, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") ||
            !add_ext(x, &v3, NID_key_usage, "critical,keyCertSign,cRLSign") ||
            !add_ext(x, &v3, NID_subject_key_identifier, "hash"))
            goto fail;
    } else {
        int rsa = EVP_PKEY_get_base_id(spec->key) == EVP_PKEY_RSA;
        if (!add_ext(x, &v3, NID_basic_constraints, "critical,CA:FALSE") ||
            !add_ext(x, &v3, NID_key_usage,
                     rsa ? "critical,digitalSignature,keyEncipherment"
                         : "critical,digitalSignature") ||
            !add_ext(x, &v3, NID_ext_key_usage, "clientAuth,serverAuth") ||
            !add_ext(x, &v3, NID_subject_key_identifier, "hash"))
            goto fail;
    }
    /* after the SKI, so a self-signed certificate can point at its own key */
    if (!add_ext(x, &v3, NID_authority_key_identifier, "keyid:always"))
        goto fail;
    if (spec->san != NULL && spec->san[0] != '\0') {
        what = "subjectAltName (expected e.g. DNS:localhost,IP:127.0.0.1)";
        if (!add_ext(x, &v3, NID_subject_alt_name, spec->san))
            goto fail;
    }
    what = "signing the certificate";
    if (X509_sign(x, issuer_key, EVP_sha256()) <= 0)
        goto fail;
    X509_NAME_free(name);
    return x;

fail:
    vtn_pki_errstr(err, errlen, what);
    X509_NAME_free(name);
    X509_free(x);
    return NULL;
}

static const struct {
    const char *name;
    int code;
} reasons[] = {
    {"unspecified", VTN_CRL_UNSPECIFIED},
    {"keyCompromise", VTN_CRL_KEY_COMPROMISE},
    {"affiliationChanged", VTN_CRL_AFFILIATION_CHANGED},
    {"superseded", VTN_CRL_SUPERSEDED},
    {"cessationOfOperation", VTN_CRL_CESSATION_OF_OPERATION},
};

int vtn_crl_reason_parse(const char *s, int *out)
{
    for (size_t i = 0; s != NULL && i < sizeof(reasons) / sizeof(reasons[0]); i++) {
        if (strcasecmp(s, reasons[i].name) == 0) {
            *out = reasons[i].code;
            return 0;
        }
    }
    return -EINVAL;
}

const char *vtn_crl_reason_name(int reason)
{
    for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++) {
        if (reasons[i].code == reason)
            return reasons[i].name;
    }
    return "unspecified";
}

static int add_revoked(X509_CRL *crl, const vtn_revoked *r)
{
    X509_REVOKED *rev = X509_REVOKED_new();
    BIGNUM *bn = NULL;
    ASN1_INTEGER *serial = NULL;
    ASN1_TIME *when = NULL;
    ASN1_ENUMERATED *code = NULL;
    int ok = 0;

    if (rev == NULL || r->serial_hex == NULL ||
        (size_t)BN_hex2bn(&bn, r->serial_hex) != strlen(r->serial_hex) || bn == NULL)
        goto out; /* a serial with trailing garbage is not this serial */
    serial = BN_to_ASN1_INTEGER(bn, NULL);
    when = ASN1_TIME_set(NULL, r->when);
    if (serial == NULL || when == NULL || !X509_REVOKED_set_serialNumber(rev, serial) ||
        !X509_REVOKED_set_revocationDate(rev, when))
        goto out;
    if (r->reason != VTN_CRL_UNSPECIFIED) {
        code = ASN1_ENUMERATED_new();
        if (code == NULL || !ASN1_ENUMERATED_set(code, r->reason) ||
            !X509_REVOKED_add1_ext_i2d(rev, NID_crl_reason, code, 0, 0))
            goto out;
    }
    if (!X509_CRL_add0_revoked(crl, rev))
        goto out;
    rev = NULL;
    ok = 1;
out:
    X509_REVOKED_free(rev);
    BN_free(bn);
    ASN1_INTEGER_free(serial);
    ASN1_TIME_free(when);
    ASN1_ENUMERATED_free(code);
    return ok;
}

X509_CRL *vtn_pki_crl(X509 *ca, EVP_PKEY *ca_key, const vtn_revoked *revoked, size_t n,
                      long long number, long days, char *err, size_t errlen)
{
    X509_CRL *crl = NULL;
    ASN1_TIME *t = NULL;
    ASN1_INTEGER *num = NULL;
    X509_EXTENSION *aki = NULL;
    X509V3_CTX v3;
    time_t now = time(NULL);
    const char *what = "building the CRL";

    ERR_clear_error();
    if (ca == NULL || ca_key == NULL || days <= 0) {
        seterr(err, errlen, "%s%s", "CRL: a CA and a positive validity are required", "");
        return NULL;
    }
    crl = X509_CRL_new();
    if (crl == NULL || !X509_CRL_set_version(crl, 1) ||
        !X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca)))
        goto fail;
    t = ASN1_TIME_set(NULL, now);
    if (t == NULL || !X509_CRL_set1_lastUpdate(crl, t))
        goto fail;
    if (ASN1_TIME_adj(t, now, (int)days, 0) == NULL || !X509_CRL_set1_nextUpdate(crl, t))
        goto fail;
    for (size_t i = 0; i < n; i++) {
        if (!add_revoked(crl, &revoked[i])) {
            what = "adding a revoked serial (bad serial in the index?)";
            goto fail;
        }
    }
    num = ASN1_INTEGER_new();
    if (num == NULL || !ASN1_INTEGER_set_int64(num, number) ||
        !X509_CRL_add1_ext_i2d(crl, NID_crl_number, num, 0, 0))
        goto fail;
    X509V3_set_ctx(&v3, ca, NULL, NULL, crl, 0);
    aki = X509V3_EXT_conf_nid(NULL, &v3, NID_authority_key_identifier, "keyid:always");
    if (aki == NULL || !X509_CRL_add_ext(crl, aki, -1))
        goto fail;
    what = "signing the CRL";
    if (!X509_CRL_sort(crl) || X509_CRL_sign(crl, ca_key, EVP_sha256()) <= 0)
        goto fail;
    ASN1_TIME_free(t);
    ASN1_INTEGER_free(num);
    X509_EXTENSION_free(aki);
    return crl;

fail:
    vtn_pki_errstr(err, errlen, what);
    ASN1_TIME_free(t);
    ASN1_INTEGER_free(num);
    X509_EXTENSION_free(aki);
    X509_CRL_free(crl);
    return NULL;
}

int vtn_pki_serial_hex(X509 *cert, char *out, size_t outlen)
{
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
    char *hex;
    int rc = 0;

    if (outlen > 0)
        out[0] = '\0';
    if (bn == NULL)
        return -EIO;
    hex = BN_bn2hex(bn);
    BN_free(bn);
    if (hex == NULL)
        return -EIO;
    if (strlen(hex) >= outlen)
        rc = -ENOSPC;
    else
        memcpy(out, hex, strlen(hex) + 1);
    OPENSSL_free(hex);
    return rc;
}

int vtn_pki_issued_by(X509 *cert, X509 *issuer)
{
    EVP_PKEY *pub = X509_get0_pubkey(issuer);
    int ok;

    if (pub == NULL ||
        X509_NAME_cmp(X509_get_issuer_name(cert), X509_get_subject_name(issuer)) != 0)
        return 0;
    ok = X509_verify(cert, pub) == 1;
    ERR_clear_error();
    return ok;
}

/* Encrypted keys are refused instead of prompting on the terminal: the
 * gateway and vtnctl run unattended. */
int vtn_pki_no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

static FILE *open_read(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        seterr(err, errlen, "%s: %s", path, strerror(errno));
    ERR_clear_error();
    return f;
}

static void read_failed(const char *path, const char *what, char *err, size_t errlen)
{
    char w[512];
    snprintf(w, sizeof(w), "%s: no %s found", path, what);
    vtn_pki_errstr(err, errlen, w);
}

X509 *vtn_pki_read_cert(const char *path, char *err, size_t errlen)
{
    FILE *f = open_read(path, err, errlen);
    X509 *x;
    if (f == NULL)
        return NULL;
    x = PEM_read_X509(f, NULL, vtn_pki_no_passphrase, NULL);
    fclose(f);
    if (x == NULL)
        read_failed(path, "PEM certificate", err, errlen);
    return x;
}

EVP_PKEY *vtn_pki_read_key(const char *path, char *err, size_t errlen)
{
    FILE *f = open_read(path, err, errlen);
    EVP_PKEY *k;
    if (f == NULL)
        return NULL;
    k = PEM_read_PrivateKey(f, NULL, vtn_pki_no_passphrase, NULL);
    fclose(f);
    if (k == NULL)
        read_failed(path, "unencrypted PEM private key", err, errlen);
    return k;
}

X509_REQ *vtn_pki_read_csr(const char *path, char *err, size_t errlen)
{
    FILE *f = open_read(path, err, errlen);
    X509_REQ *r;
    if (f == NULL)
        return NULL;
    r = PEM_read_X509_REQ(f, NULL, vtn_pki_no_passphrase, NULL);
    fclose(f);
    if (r == NULL)
        read_failed(path, "PEM certificate request", err, errlen);
    return r;
}

enum pem_kind { PEM_KEY, PEM_CERT, PEM_CRL, SECRET_TEXT };

static int write_pem(const char *path, enum pem_kind kind, void *obj, int overwrite)
{
    static atomic_uint counter; /* unique temporary names across threads */
    char tmp[4096];
    FILE *f;
    int fd, ok, rc = 0;

    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.%ld.%u", path, (long)getpid(),
                         atomic_fetch_add(&counter, 1)) >= sizeof(tmp))
        return -ENAMETOOLONG;
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
              kind == PEM_KEY || kind == SECRET_TEXT ? 0600 : 0644);
    if (fd < 0)
        return -errno;
    f = fdopen(fd, "w");
    if (f == NULL) {
        rc = -errno;
        close(fd);
        unlink(tmp);
        return rc;
    }
    if (kind == PEM_KEY)
        ok = PEM_write_PrivateKey(f, obj, NULL, NULL, 0, NULL, NULL);
    else if (kind == PEM_CERT)
        ok = PEM_write_X509(f, obj);
    else if (kind == SECRET_TEXT)
        ok = fputs(obj, f) >= 0;
    else
        ok = PEM_write_X509_CRL(f, obj);
    if (!ok)
        rc = -EIO;
    if (fflush(f) != 0 || fsync(fileno(f)) != 0)
        rc = rc < 0 ? rc : -errno;
    if (fclose(f) != 0 && rc == 0)
        rc = -errno;
    if (rc == 0) {
        /* link(2) fails on an existing path, which makes "no overwrite" atomic */
        if (overwrite ? rename(tmp, path) != 0 : link(tmp, path) != 0)
            rc = -errno;
    }
    unlink(tmp);
    return rc;
}

int vtn_pki_write_key(const char *path, EVP_PKEY *key, int overwrite)
{
    return write_pem(path, PEM_KEY, key, overwrite);
}

int vtn_pki_write_cert(const char *path, X509 *cert, int overwrite)
{
    return write_pem(path, PEM_CERT, cert, overwrite);
}

int vtn_pki_write_crl(const char *path, X509_CRL *crl, int overwrite)
{
    return write_pem(path, PEM_CRL, crl, overwrite);
}

int vtn_pki_write_secret(const char *path, const char *text)
{
    return write_pem(path, SECRET_TEXT, (void *)text, 1);
}
