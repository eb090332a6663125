/* The gateway's TLS client engine for pushes to VENs (OpenADR 2.0b push
 * mode: the VTN connects to the VEN's HTTPS endpoint). OpenSSL on a
 * socketless BIO, independent of libuv, like the server engine (tls.h): the
 * caller feeds the bytes it read from its socket into gw_push_tls_feed and
 * gets back the VEN's plaintext plus bytes to write; requests go through
 * gw_push_tls_write. The engine never touches a socket or a timer: the
 * caller runs VTN_PUSH_TIMEOUT (gw_push_tls_ctx_timeout_ms) and closes on a
 * negative return.
 *
 * Policy (OpenADR 2.0b, profile sections 9.2 and 10):
 * - TLS 1.2 with exactly ECDHE-ECDSA-AES128-SHA256 and AES128-SHA256 (the
 *   server engine's suites); TLS 1.3 with OpenSSL's suites when enabled.
 * - The VTN's client certificate: one RSA and/or one ECC pair; with both,
 *   the ECC one is sent when the VEN's CertificateRequest allows it, else
 *   the RSA one.
 * - The VEN's server certificate chain is verified against the push CA
 *   bundles only (never the system's CAs; partial chains allowed, so a
 *   bundle may hold just the CA issuing the VENs' server certificates), and
 *   its name against the host: DNS names with SSL_set1_host (no partial
 *   wildcards), IP literals against the certificate's IP addresses. SNI is
 *   sent for names, not for IP literals (RFC 6066).
 * - No renegotiation, no compression; record buffers released when idle.
 *
 * Threads: a gw_push_tls is used by one thread at a time.
 * gw_push_tls_ctx_new/_reload/_free and gw_push_tls_new may be called from
 * different threads. */
#ifndef GW_PUSH_TLS_H
#define GW_PUSH_TLS_H

#include <stddef.h>

#include "vtn/buf.h"
#include "vtn/fingerprint.h"

typedef struct gw_push_tls_settings {
    /* VTN_PUSH_CERT: "cert.pem:key.pem" or "both.pem"; may list one RSA and
     * one ECC pair, comma-separated (a cert file may carry intermediates) */
    const char *cert;
    const char *ca; /* VTN_PUSH_CA: PEM bundle(s) of CAs for VEN server certificates */
    /* VTN_PUSH_PROTOCOLS: "TLSv1.2", "TLSv1.3" or "TLSv1.2,TLSv1.3"; NULL/"" =
     * "TLSv1.2" (OpenADR 2.0b). */
    const char *protocols;
    long long timeout_ms; /* VTN_PUSH_TIMEOUT, kept for the caller; <= 0 = 10 s */
} gw_push_tls_settings;

typedef struct gw_push_tls_ctx gw_push_tls_ctx;
typedef struct gw_push_tls gw_push_tls;

#define GW_PUSH_TLS_EOF 1 /* gw_push_tls_feed: the VEN sent close_notify */

/* Copies the settings and loads every file once. 0, or -EINVAL with a
 * message naming the setting and file in err (no certificate or CA
 * configured, missing file, key not matching its certificate, a bundle
 * without a CA certificate or with a leaf in it, an unknown protocol),
 * -ENOMEM. */
int gw_push_tls_ctx_new(const gw_push_tls_settings *s, gw_push_tls_ctx **out, char *err,
                        size_t errlen);
/* SIGHUP: re-reads the same files into a new SSL_CTX used for new
 * connections; open ones keep theirs (OpenSSL reference-counts it). On error
 * (same codes as _new) the old configuration stays in use. */
int gw_push_tls_ctx_reload(gw_push_tls_ctx *ctx, char *err, size_t errlen);
/* Connections created from ctx may outlive it. */
void gw_push_tls_ctx_free(gw_push_tls_ctx **ctx);
long long gw_push_tls_ctx_timeout_ms(const gw_push_tls_ctx *ctx);
/* How many times the configuration was loaded (1 after new, +1 per good reload). */
unsigned gw_push_tls_ctx_generation(const gw_push_tls_ctx *ctx);

/* A client-side session towards host (a DNS name or an IP literal, IPv6
 * without brackets; what the VEN's certificate must name). 0, -EINVAL (empty
 * or over 253 bytes), -ENOMEM. */
int gw_push_tls_new(gw_push_tls_ctx *ctx, const char *host, gw_push_tls **out);
void gw_push_tls_free(gw_push_tls **t);

/* Ciphertext from the VEN in (n may be 0: the first call makes the
 * ClientHello); the VEN's decrypted data is appended to plain, bytes to send
 * to wire. Returns 0 (send wire, then wait for more unless
 * gw_push_tls_handshake_done and nothing more is expected); GW_PUSH_TLS_EOF
 * when the VEN sent close_notify; -EPROTO when the handshake or the
 * connection failed (gw_push_tls_error says why; wire may hold an alert:
 * send it, then close); -ENOBUFS when plain or wire hit their cap; -ENOMEM.
 * After a negative return every later call fails. plain receives at most one
 * 16 KiB record per record fed. */
int gw_push_tls_feed(gw_push_tls *t, const char *in, size_t n, vtn_buf *plain, vtn_buf *wire);
/* Encrypts p[0..n) into wire (one record per 16 KiB). 0, -EAGAIN before the
 * handshake completed, -EPROTO after a failure, -ENOBUFS, -ENOMEM. */
int gw_push_tls_write(gw_push_tls *t, const char *p, size_t n, vtn_buf *wire);
/* Appends close_notify to wire (nothing before the handshake or after a
 * failure). 0 or -ENOBUFS/-ENOMEM. */
int gw_push_tls_shutdown(gw_push_tls *t, vtn_buf *wire);

/* Our side of the handshake completed: the VEN's certificate verified. */
int gw_push_tls_handshake_done(const gw_push_tls *t);
/* 1 once we know the VEN accepted our certificate: at the end of a TLS 1.2
 * handshake; under TLS 1.3 the VEN checks it after our side is done, so only
 * once something (a session ticket, data) arrived after the handshake. */
int gw_push_tls_peer_accepted(const gw_push_tls *t);
/* The VEN's certificate chain and name verified (also when the handshake
 * failed later, e.g. because the VEN refused our certificate). */
int gw_push_tls_peer_verified(const gw_push_tls *t);
/* The VEN server certificate's OpenADR fingerprint and subject (RFC 2253,
 * "CN=ven-1,O=..."), "" until it arrived; also set when it was rejected,
 * so an error can name it. Trust them only with gw_push_tls_peer_verified. */
const char *gw_push_tls_fingerprint(const gw_push_tls *t);
const char *gw_push_tls_subject(const gw_push_tls *t);
/* Why the handshake or the connection failed, one line for the logs
 * (printable ASCII, may contain spaces), "" when nothing failed, e.g.
 * "VEN server certificate rejected: hostname mismatch for ven.example
 * (depth 0, subject CN=other)" or "the VEN refused our client certificate:
 * TLS alert unknown CA". */
const char *gw_push_tls_error(const gw_push_tls *t);
/* "TLSv1.2" and the OpenSSL suite name, "" before the handshake. */
const char *gw_push_tls_version(const gw_push_tls *t);
const char *gw_push_tls_cipher(const gw_push_tls *t);

#endif
