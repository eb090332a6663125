/* TLS settings shared by the gateway's two TLS engines: the OpenADR server
 * (gateway/tls.c) and the push client (gateway/push_tls.c). Parsing a
 * protocol list, loading "cert:key" pairs and CA bundles into an SSL_CTX,
 * with errors that name the setting and the file, and the BIO that lets an
 * engine run without a socket (feed ciphertext in, collect ciphertext out). */
#ifndef VTN_TLSCONF_H
#define VTN_TLSCONF_H

#include <stddef.h>

#include <openssl/ssl.h>

#include "vtn/buf.h"

/* The two OpenADR 2.0b TLS 1.2 suites (profile section 10), ECC first so a
 * peer offering both gets forward secrecy. TLS 1.3 keeps OpenSSL's suites. */
#define VTN_TLS12_CIPHERS "ECDHE-ECDSA-AES128-SHA256:AES128-SHA256"

/* "TLSv1.2", "TLSv1.3" or both (comma or space separated, any case) into
 * OpenSSL version numbers; NULL/"" = TLS 1.2 and 1.3. Anything older is
 * refused. 0 or -EINVAL with a message starting with setting. */
int vtn_tls_parse_protocols(const char *setting, const char *s, int *minv, int *maxv, char *err,
                            size_t errlen);

/* Loads "cert.pem:key.pem,cert2.pem:key2.pem" into sc: at most one RSA and
 * one ECC pair; a certificate file may carry intermediates after the leaf;
 * "both.pem" without ":" holds chain and key. what names the certificate in
 * the tls_expired warning logged for an expired one ("server_certificate").
 * Returns the number of pairs loaded (0 for an empty list), or -EINVAL with
 * "SETTING: FILE: why" in err (missing file, no certificate, key not
 * matching, second pair of one key type, other key types), -ENOMEM. */
int vtn_tls_load_pairs(SSL_CTX *sc, const char *setting, const char *list, const char *what,
                       char *err, size_t errlen);

/* Adds every certificate of the PEM bundles in list (comma-separated) to
 * sc's trust store, and its subject to names when names is not NULL (for a
 * server's CertificateRequest). Only CA certificates: a leaf would become a
 * trust anchor of its own under X509_V_FLAG_PARTIAL_CHAIN, so it is refused.
 * Returns the number of certificates added (0 for an empty list), or -EINVAL
 * with "SETTING: FILE: why" in err (missing file, no certificate in it, a
 * leaf), -ENOMEM. */
int vtn_tls_load_cas(SSL_CTX *sc, const char *setting, const char *list, const char *what,
                     STACK_OF(X509_NAME) * names, char *err, size_t errlen);

/* Where an engine's BIO reads and writes during one call: OpenSSL reads
 * straight from the bytes being fed and writes straight into the caller's
 * buffer, so an idle connection holds no BIO buffers (memory BIOs keep their
 * largest size forever) and nothing is copied twice. Set in and wire for
 * the duration of one call and clear them after; a read with nothing left
 * is "retry later", never end of file. wire NULL during a write or a full
 * wire buffer makes the write fail with wire_rc set (-EIO / -ENOBUFS). */
typedef struct vtn_tls_io {
    const char *in; /* ciphertext not yet consumed by OpenSSL */
    size_t in_len;
    vtn_buf *wire; /* where OpenSSL's output goes during this call */
    int wire_rc;   /* the vtn_buf error that stopped a write */
} vtn_tls_io;

/* A BIO on io (which must outlive it); NULL when out of memory. */
BIO *vtn_tls_bio_new(vtn_tls_io *io);

/* Replaces what would break a one-line log (controls, non-ASCII, quotes,
 * backslashes) with '?', whatever a peer put in its certificate. */
void vtn_tls_sanitize(char *s);

#endif
