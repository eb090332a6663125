/* Session ticket keys from a file, shared by every gateway
 * (VTN_TLS_TICKET_KEYS; the format is described in tls_tickets.c). Internal
 * to the TLS engine (gateway/tls.c). */
#ifndef GW_TLS_TICKETS_H
#define GW_TLS_TICKETS_H

#include <stddef.h>

#include <openssl/ssl.h>

/* Reads the key file and makes sc encrypt and decrypt its tickets with
 * those keys; sc owns them from then on. 0, or -EINVAL with
 * "VTN_TLS_TICKET_KEYS: FILE: why" in err (missing, no key, a line that is
 * not 160 hex digits, more than 8 keys, a repeated key name), -ENOMEM.
 * Warns (tls_ticket_keys_readable) when group or others may read it. */
int gw__tls_ticket_keys_load(SSL_CTX *sc, const char *path, char *err, size_t errlen);
/* The number of keys sc uses; 0 when it makes its own. */
size_t gw__tls_ticket_keys_count(SSL_CTX *sc);

#endif
