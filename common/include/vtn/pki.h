/* Building blocks of the VTN's own PKI: keys, CA and leaf certificates, CRLs,
 * and safe PEM files. Used by vtnctl (tools/), the TLS tests, and later the
 * management API's /api/v1/certificates; the bookkeeping of a CA directory
 * (index of serials, CRL number) belongs to vtnctl, not here.
 *
 * Profile (OpenADR 2.0b uses RSA 2048 and ECC P-256 with SHA-256):
 *   CA:   basicConstraints critical CA:TRUE pathlen:0, keyUsage critical
 *         keyCertSign+cRLSign, SKI; self-signed.
 *   leaf: basicConstraints critical CA:FALSE, keyUsage critical
 *         digitalSignature (+keyEncipherment for RSA keys: the AES128-SHA256
 *         suite uses RSA key transport), extendedKeyUsage clientAuth and
 *         serverAuth (a VEN's certificate also serves a push VEN's HTTPS
 *         endpoint, the VTN's also authenticates its push deliveries), SKI,
 *         AKI, optional subjectAltName.
 * Serial numbers are 127 random bits; signatures SHA-256. */
#ifndef VTN_PKI_H
#define VTN_PKI_H

#include <stddef.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

typedef enum vtn_key_type { VTN_KEY_EC = 1, VTN_KEY_RSA = 2 } vtn_key_type;

/* "ec" (also "ecc", "p256") or "rsa"; 0 or -EINVAL. */
int vtn_key_type_parse(const char *s, vtn_key_type *out);
/* A fresh ECC P-256 or RSA 2048 key; NULL on failure. The caller frees it. */
EVP_PKEY *vtn_pki_keygen(vtn_key_type type);

typedef struct vtn_cert_spec {
    const char *cn;               /* subject CN, used when subject is NULL */
    const X509_NAME *subject;     /* full subject (e.g. from a CSR), or NULL */
    EVP_PKEY *key;                /* the subject's public key */
    int is_ca;                    /* issue a CA certificate (self-signed when issuer NULL) */
    const char *san;              /* "DNS:localhost,IP:127.0.0.1", or NULL for none */
    time_t not_before, not_after; /* 0: now - 5 min (clock skew) / not_before + days */
    long days;                    /* validity when not_after is 0 */
} vtn_cert_spec;

/* Issues a certificate for spec, signed by issuer/issuer_key; with issuer
 * NULL it is self-signed with issuer_key (which must then be spec->key's
 * private half). NULL on failure, with the reason in err. */
X509 *vtn_pki_issue(const vtn_cert_spec *spec, X509 *issuer, EVP_PKEY *issuer_key, char *err,
                    size_t errlen);

/* CRL reason codes (RFC 5280 5.3.1). */
enum vtn_crl_reason {
    VTN_CRL_UNSPECIFIED = 0,
    VTN_CRL_KEY_COMPROMISE = 1,
    VTN_CRL_AFFILIATION_CHANGED = 3,
    VTN_CRL_SUPERSEDED = 4,
    VTN_CRL_CESSATION_OF_OPERATION = 5,
};
/* "unspecified", "keyCompromise", "affiliationChanged", "superseded",
 * "cessationOfOperation"; 0 or -EINVAL. */
int vtn_crl_reason_parse(const char *s, int *out);
const char *vtn_crl_reason_name(int reason);

typedef struct vtn_revoked {
    const char *serial_hex; /* as vtn_pki_serial_hex prints it */
    time_t when;
    int reason; /* enum vtn_crl_reason */
} vtn_revoked;

/* A v2 CRL of the revoked serials, with crlNumber and AKI, valid from now
 * for days, signed by ca/ca_key. NULL on failure, with the reason in err. */
X509_CRL *vtn_pki_crl(X509 *ca, EVP_PKEY *ca_key, const vtn_revoked *revoked, size_t n,
                      long long number, long days, char *err, size_t errlen);

/* Upper-case hex of the serial number; 0 or -ENOSPC/-EIO. */
int vtn_pki_serial_hex(X509 *cert, char *out, size_t outlen);
/* 1 when cert was signed by issuer's key and names it as issuer. */
int vtn_pki_issued_by(X509 *cert, X509 *issuer);

/* Readers: the first PEM object of that kind in path; NULL with err set. */
X509 *vtn_pki_read_cert(const char *path, char *err, size_t errlen);
EVP_PKEY *vtn_pki_read_key(const char *path, char *err, size_t errlen);
X509_REQ *vtn_pki_read_csr(const char *path, char *err, size_t errlen);
/* OpenSSL's passphrase callback for every PEM read: encrypted PEM is refused
 * instead of prompting on a terminal (everything here runs unattended). */
int vtn_pki_no_passphrase(char *buf, int size, int rwflag, void *u);

/* Writers go through a temporary file in the same directory and rename(2),
 * so a reader (a gateway reloading on SIGHUP) never sees half a file. Keys
 * are written unencrypted with mode 0600, the rest 0644. Without overwrite an
 * existing path fails with -EEXIST. 0 or a negative errno. */
int vtn_pki_write_key(const char *path, EVP_PKEY *key, int overwrite);
int vtn_pki_write_cert(const char *path, X509 *cert, int overwrite);
int vtn_pki_write_crl(const char *path, X509_CRL *crl, int overwrite);
/* Text that is secret (ticket keys), mode 0600, replacing path. */
int vtn_pki_write_secret(const char *path, const char *text);

/* The current OpenSSL error queue as one line into err (then cleared),
 * prefixed with what; returns err. */
const char *vtn_pki_errstr(char *err, size_t errlen, const char *what);

#endif
