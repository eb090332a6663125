/* TLS settings shared by the gateway's two TLS engines: the OpenADR server
 * (gateway/tls.c) and the push client (gateway/push_tls.c). Parsing a
 * protocol list, loading "cert:key" pairs and CA bundles into an SSL_CTX,
 * with errors that name the setting and the file; the BIO that lets an
 * engine run without a socket (feed ciphertext in, collect ciphertext out);
 * the reloadable SSL_CTX and the steps that drive a connection over it. */
#ifndef VTN_TLSCONF_H
#define VTN_TLSCONF_H

#include <pthread.h>
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

/* Every certificate and CRL in one PEM file (free with
 * sk_X509_INFO_pop_free(infos, X509_INFO_free)); NULL with "SETTING: FILE:
 * why" in err when the file cannot be opened or read. */
STACK_OF(X509_INFO) *
    vtn_tls_read_pem_infos(const char *setting, const char *path, char *err, size_t errlen);

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

/* Points io at one call's input and output, and empties the thread's error
 * queue (shared by every connection) so a failure reports this call. */
void vtn_tls_io_begin(vtn_tls_io *io, const char *in, size_t n, vtn_buf *wire);

/* Ends the call: the BIO keeps no pointer into the caller's buffers
 * (wire_rc stays for the caller to read). */
void vtn_tls_io_end(vtn_tls_io *io);

/* An engine's current SSL_CTX. A reload replaces it whole; connections made
 * under the old one keep it (their SSL holds a reference). */
typedef struct vtn_tls_slot {
    pthread_mutex_t lock; /* guards ssl_ctx against a reload from another thread */
    SSL_CTX *ssl_ctx;
    unsigned generation; /* 1 for the first SSL_CTX, one more per reload */
} vtn_tls_slot;

void vtn_tls_slot_init(vtn_tls_slot *s);
/* Frees the SSL_CTX (for real when its last connection ends). */
void vtn_tls_slot_destroy(vtn_tls_slot *s);
/* Makes fresh (owned from now on) the SSL_CTX of new connections. */
void vtn_tls_slot_set(vtn_tls_slot *s, SSL_CTX *fresh);
/* Session ticket keys (VTN_TLS_TICKET_KEYS, vtnctl ticket-keys): one key a
 * line, 160 hex digits = 80 bytes (16 key name, 32 HMAC-SHA256, 32 AES-256). */
#define VTN_TLS_TICKET_KEY_LEN 80
/* One line of the key file: exactly 160 hex digits, blanks around them
 * allowed. 0, or -1 for anything else. */
int vtn_tls_ticket_key_parse(const char *line, unsigned char key[VTN_TLS_TICKET_KEY_LEN]);
/* A line that carries no key: blank, or a comment starting with '#'. */
int vtn_tls_ticket_key_skip(const char *line);

/* An engine's owned copy of one setting ("" for NULL); 0 or -ENOMEM. */
int vtn_tls_dup_setting(char **dst, const char *src);
/* An engine's SSL_CTX builder: a complete context from its settings (arg),
 * or NULL with a negative errno code in *rc and the reason in err. */
typedef SSL_CTX *vtn_tls_ctx_builder(const void *arg, int *rc, char *err, size_t errlen);
/* Start and reload: builds a context and, when that worked, makes it the
 * slot's (a new generation). 0, or the builder's error with the slot as it
 * was (a failed reload keeps the old configuration). */
int vtn_tls_slot_build(vtn_tls_slot *s, vtn_tls_ctx_builder *build, const void *arg, char *err,
                       size_t errlen);
unsigned vtn_tls_slot_generation(const vtn_tls_slot *s);

/* A connection on s's current SSL_CTX whose one BIO (owned by the SSL) is
 * on io; the caller sets its accept or connect state. NULL when out of
 * memory. */
SSL *vtn_tls_conn_new(vtn_tls_slot *s, vtn_tls_io *io);

/* Drives the handshake over io's input: 1 done, 0 waiting for more input,
 * -1 failed with the SSL_get_error code in *ssl_err (what OpenSSL wrote,
 * an alert too, is in io->wire either way). */
int vtn_tls_handshake(SSL *ssl, const vtn_tls_io *io, int *ssl_err);

#define VTN_TLS_CLOSED 1 /* the peer sent close_notify */

/* Decrypts all of io's input into plain: 0 when waiting for more input,
 * VTN_TLS_CLOSED, plain's vtn_buf error when it is full (-ENOBUFS,
 * -ENOMEM), or -EPROTO with the SSL_get_error code in *ssl_err. */
int vtn_tls_read_all(SSL *ssl, const vtn_tls_io *io, vtn_buf *plain, int *ssl_err);

/* Encrypts all of p[0..n) into io's wire: the BIO never blocks, so OpenSSL
 * never writes part of a chunk. 0, or -1 with the SSL_get_error code in
 * *ssl_err. */
int vtn_tls_write_all(SSL *ssl, const char *p, size_t n, int *ssl_err);

/* Writes our close_notify to wire without waiting for the peer's; 0 or the
 * vtn_buf error that stopped it. */
int vtn_tls_close_notify(SSL *ssl, vtn_tls_io *io, vtn_buf *wire);

/* Calls fn(item, arg) for every item of a comma-separated list, trimmed,
 * empty ones skipped. 0, the first negative value fn returned, or -ENOMEM. */
int vtn_tls_each(const char *list, int (*fn)(char *item, void *arg), void *arg);

/* Replaces what would break a one-line log (controls, non-ASCII, quotes,
 * backslashes) with '?', whatever a peer put in its certificate. */
void vtn_tls_sanitize(char *s);

#endif
