/* The gateway's TLS server engine: OpenSSL on an in-memory BIO (no socket),
 * independent of libuv. A connection feeds the bytes it read from the socket into
 * gw_tls_feed and gets back plaintext for the HTTP parser plus bytes to write
 * to the socket; replies go through gw_tls_write. The engine never touches a
 * socket or a timer: the connection arms the handshake timer
 * (gw_tls_ctx_handshake_timeout_ms) and closes on a negative return.
 *
 * Policy (OpenADR 2.0b, profile sections 9.2 and 10):
 * - TLS 1.2 with exactly ECDHE-ECDSA-AES128-SHA256 and AES128-SHA256 (server
 *   preference in that order); TLS 1.3 with OpenSSL's default suites when
 *   enabled in protocols.
 * - One RSA and one ECC server certificate in the same SSL_CTX, so a VEN that
 *   offers only one of the two suites still connects.
 * - Client certificate required and verified against the client CA bundles
 *   only (never the system's CAs); CRL checked for the client's certificate
 *   when a CRL is configured (then every client CA that issues VEN
 *   certificates needs a CRL in it, or its VENs are refused).
 * - Session tickets on (a reconnecting VEN resumes without a full handshake),
 *   no server-side session cache, no renegotiation, no compression.
 *
 * Threads: a gw_tls is used by one thread at a time. gw_tls_ctx_new/_reload/
 * _free and gw_tls_new may be called from different threads. */
#ifndef GW_TLS_H
#define GW_TLS_H

#include <stddef.h>

#include "vtn/buf.h"
#include "vtn/fingerprint.h"

typedef struct gw_tls_settings {
    /* "cert.pem:key.pem,cert2.pem:key2.pem" (VTN_TLS_CERTS): at most one
     * RSA and one ECC pair; a cert file may carry intermediates after the
     * leaf; "both.pem" without ":" means key and chain in one file. */
    const char *certs;
    const char *client_ca; /* VTN_TLS_CLIENT_CA: one or more PEM bundles, comma list */
    const char *crl;       /* VTN_TLS_CRL: one or more PEM CRL files, comma list; NULL/"" = none */
    /* VTN_TLS_PROTOCOLS: "TLSv1.2", "TLSv1.3" or "TLSv1.2,TLSv1.3"; NULL/"" =
     * "TLSv1.2,TLSv1.3". Anything older is refused. */
    const char *protocols;
    long long handshake_timeout_ms; /* kept for the connection's timer; <= 0 = 10 s */
    /* VTN_TLS_RESUMPTION: how a reconnecting VEN skips the full handshake.
     * "tickets" (NULL/""): stateless session tickets, nothing kept in the
     * gateway. "cache": session IDs (TLS 1.3: stateful tickets) in a cache of
     * session_cache_size sessions in this gateway; cheaper per handshake on
     * OpenSSL 3.0, where issuing a ticket decodes the client certificate once
     * more. "off": no resumption. */
    const char *resumption;
    long long session_cache_size; /* VTN_TLS_SESSION_CACHE; <= 0 = 10,000 */
    /* VTN_TLS_TICKET_KEYS: a file of ticket keys shared by every gateway
     * (format in tls_tickets.c), so any gateway resumes any ticket, also
     * after a restart or a reload; NULL/"" = a random key per SSL_CTX. Only
     * with tickets. Either way a ticket resumes only while its certificate
     * is unexpired and not revoked by the current CRLs. */
    const char *ticket_keys;
} gw_tls_settings;

typedef struct gw_tls_ctx gw_tls_ctx;
typedef struct gw_tls gw_tls;

#define GW_TLS_EOF 1 /* gw_tls_feed: the peer sent close_notify (a clean end of stream) */

/* Copies the settings and loads every file once. 0, or -EINVAL with a
 * message naming the setting and file in err (missing file, key not matching
 * its certificate, two certificates of one key type, a bundle without a CA
 * certificate, a CRL file without a CRL, an unknown protocol), -ENOMEM. */
int gw_tls_ctx_new(const gw_tls_settings *s, gw_tls_ctx **out, char *err, size_t errlen);
/* SIGHUP: re-reads the same files into a new SSL_CTX used for new
 * connections; open connections keep the SSL_CTX they started with (OpenSSL
 * reference-counts it). On error (same codes as gw_tls_ctx_new) the old
 * configuration stays in use. Sessions from before the reload no longer
 * resume (new ticket keys, a new empty cache), so a newly revoked
 * certificate cannot come back through resumption. */
int gw_tls_ctx_reload(gw_tls_ctx *ctx, char *err, size_t errlen);
/* Connections created from ctx may outlive it. */
void gw_tls_ctx_free(gw_tls_ctx **ctx);
long long gw_tls_ctx_handshake_timeout_ms(const gw_tls_ctx *ctx);
/* How many times the configuration was loaded (1 after new, +1 per good reload). */
unsigned gw_tls_ctx_generation(const gw_tls_ctx *ctx);

/* A server-side TLS session for one accepted connection. 0 or -ENOMEM. */
int gw_tls_new(gw_tls_ctx *ctx, gw_tls **out);
void gw_tls_free(gw_tls **t);

/* Ciphertext in (n may be 0 to just flush); decrypted application data is
 * appended to plain, bytes to send to wire. Returns 0; GW_TLS_EOF when the
 * peer sent close_notify (plain holds what came before it); -EPROTO on a
 * failed handshake or a TLS protocol error (see gw_tls_error; wire may hold
 * an alert: send it, then close); -ENOBUFS when plain or wire hit their cap
 * (what did not fit is lost: close); -ENOMEM. After a negative return every
 * later call fails. plain receives at most n bytes plus one record held
 * back from earlier feeds (16 KiB), so a cap of the caller's input limit +
 * n + 16 KiB never overflows. */
int gw_tls_feed(gw_tls *t, const char *in, size_t n, vtn_buf *plain, vtn_buf *wire);
/* Encrypts p[0..n) into wire: n plus at most 100 bytes per 16 KiB record.
 * Every call makes at least one record, so give headers and a small body in
 * one call (or use gw_tls_writev). 0, -EAGAIN before the handshake
 * completed, -EPROTO after a failure, -ENOBUFS, -ENOMEM. */
int gw_tls_write(gw_tls *t, const char *p, size_t n, vtn_buf *wire);

typedef struct gw_tls_iov {
    const char *p;
    size_t n;
} gw_tls_iov;
/* Same for several pieces, packed into as few records as their total size
 * allows: a response head and a small body leave as one record (one MAC,
 * one header, one TCP segment), not one record per piece. */
int gw_tls_writev(gw_tls *t, const gw_tls_iov *iov, int n, vtn_buf *wire);
/* Appends a close_notify alert to wire (nothing before the handshake
 * completed or after a failure). 0 or -ENOBUFS/-ENOMEM. */
int gw_tls_shutdown(gw_tls *t, vtn_buf *wire);

int gw_tls_handshake_done(const gw_tls *t);
/* The client certificate's OpenADR fingerprint ("09:71:9E:..."), "" until
 * the handshake is done; also set on a resumed session. */
const char *gw_tls_fingerprint(const gw_tls *t);
/* Why the handshake or the connection failed, one line for the logs
 * (printable ASCII, may contain spaces: quote it); "" when nothing failed. */
const char *gw_tls_error(const gw_tls *t);
/* For logs and metrics, "" before the handshake: "TLSv1.2", the OpenSSL
 * suite name, and whether the session was resumed from a ticket. */
const char *gw_tls_version(const gw_tls *t);
const char *gw_tls_cipher(const gw_tls *t);
int gw_tls_resumed(const gw_tls *t);

#endif
