/* The OpenADR 2.0b certificate fingerprint: SHA-256 over the certificate's
 * DER encoding, last 10 bytes, upper-case hex pairs joined by colons, e.g.
 * "09:71:9E:0E:51:C0:8F:05:56:C9" (as OpenADR test tools and OpenLEADR
 * compute it). It is the VEN's identity: the gateway puts it in the envelope,
 * workers bind it to the VEN. Compare fingerprints with
 * vtn_fingerprint_equal (no colons, case-insensitive), never with strcmp. */
#ifndef VTN_FINGERPRINT_H
#define VTN_FINGERPRINT_H

#include <stddef.h>

#include <openssl/x509.h>

#define VTN_FINGERPRINT_BYTES 10
#define VTN_FINGERPRINT_SIZE 30      /* 10 "XX" pairs + 9 colons + NUL */
#define VTN_FINGERPRINT_NORM_SIZE 21 /* 20 hex digits + NUL */

/* Writes the colon form of der[0..n) into out. 0, -EINVAL (empty input),
 * -EIO (digest failure). */
int vtn_fingerprint_der(const unsigned char *der, size_t n, char out[VTN_FINGERPRINT_SIZE]);
/* Same for a parsed certificate (re-encoded to DER; the encoding OpenSSL keeps
 * from parsing, so it matches the bytes on the wire). */
int vtn_fingerprint_x509(X509 *cert, char out[VTN_FINGERPRINT_SIZE]);

/* Canonical form for storage and indexes: 20 upper-case hex digits, no
 * separators. Accepts colons, spaces and either case; also accepts a full
 * SHA-256 fingerprint (64 hex digits, as `openssl x509 -fingerprint -sha256`
 * prints after "SHA256 Fingerprint=") and keeps its last 10 bytes, so an
 * operator can paste either. 0, or -EINVAL (not hex, wrong length) and
 * -ENOSPC (outlen < VTN_FINGERPRINT_NORM_SIZE); out is "" on error. */
int vtn_fingerprint_normalize(const char *in, char *out, size_t outlen);
/* The colon form of a fingerprint given in any form normalize accepts. */
int vtn_fingerprint_format(const char *in, char out[VTN_FINGERPRINT_SIZE]);
/* 1 when a and b name the same certificate (compared in normalized form), 0
 * otherwise, including when either is empty or malformed. */
int vtn_fingerprint_equal(const char *a, const char *b);

#endif
