/* What the gateway's two TLS engines share: the server engine of the
 * OpenADR listener (tls.c) and the client engine for pushes to VENs
 * (push_tls.c). Both run OpenSSL on a socketless BIO (vtn/tlsconf.h); they
 * differ in the side of the handshake, how the peer's certificate is
 * checked and how a failure is explained, which each engine gives as a
 * gw__tls_engine. Internal to gateway/. */
#ifndef GW_TLS_ENGINE_H
#define GW_TLS_ENGINE_H

#include <stddef.h>

#include <openssl/ssl.h>

#include "tls.h"
#include "vtn/buf.h"
#include "vtn/fingerprint.h"
#include "vtn/tlsconf.h"

typedef struct gw__tls_conn gw__tls_conn;

typedef struct gw__tls_engine {
    const char *rejected;  /* error prefix for a refused peer certificate */
    const char *read_when; /* names a failure after the handshake */
    /* Optional: writes a reason better than OpenSSL's into c->error before
     * the generic ones are tried (the push engine's alert analysis). */
    void (*explain)(gw__tls_conn *c, const char *when);
    /* Optional: the handshake just completed. NULL goes on; a reason fails
     * the connection. */
    const char *(*handshake_done)(gw__tls_conn *c);
} gw__tls_engine;

/* The part of a connection both engines have, first in their structs. */
struct gw__tls_conn {
    SSL *ssl;
    vtn_tls_io io; /* the BIO's view of this call's input and output */
    const gw__tls_engine *eng;
    unsigned done : 1, failed : 1, peer_closed : 1, shut : 1;
    char fingerprint[VTN_FINGERPRINT_SIZE];
    char *error; /* the engine's buffer: the first reason it failed */
    size_t error_len;
};

/* An SSL for c from slot's current SSL_CTX, pointing back at c
 * (gw__tls_conn_of). 0 or -ENOMEM. */
int gw__tls_conn_init(gw__tls_conn *c, const gw__tls_engine *eng, vtn_tls_slot *slot, char *error,
                      size_t error_len);
void gw__tls_conn_free(gw__tls_conn *c);
/* The connection of an SSL, or of the SSL a verification runs for; NULL
 * for one not made by gw__tls_conn_init. */
gw__tls_conn *gw__tls_conn_of(const SSL *ssl);
gw__tls_conn *gw__tls_conn_of_store(X509_STORE_CTX *xs);

/* Marks c failed with the most useful reason available; -EPROTO, or the
 * wire buffer's error. when names the step ("handshake", "write"). */
int gw__tls_fail(gw__tls_conn *c, int ssl_err, const char *when);
/* Wire bytes in, plaintext out (see gw_tls_feed): 0, 1 at close_notify
 * (GW_TLS_EOF, GW_PUSH_TLS_EOF), <0 failed. */
int gw__tls_feed(gw__tls_conn *c, const char *in, size_t n, vtn_buf *plain, vtn_buf *wire);
/* Plaintext pieces into as few full records as they fill. */
int gw__tls_writev(gw__tls_conn *c, const gw_tls_iov *iov, int n, vtn_buf *wire);
int gw__tls_shutdown(gw__tls_conn *c, vtn_buf *wire);
const char *gw__tls_version(const gw__tls_conn *c);
const char *gw__tls_cipher(const gw__tls_conn *c);

/* An SSL_CTX of method m with the protocols of the setting (default
 * "TLSv1.2,TLSv1.3" when protocols is empty), OpenADR's TLS 1.2 suites, no
 * renegotiation or compression, and record buffers released when idle.
 * NULL with *rc and err set. */
SSL_CTX *gw__tls_ssl_ctx_new(const SSL_METHOD *m, const char *setting, const char *protocols,
                             int *rc, char *err, size_t errlen);
/* vtn_tls_load_pairs where at least one pair is required: 0, or <0 with
 * "<setting>: <missing>" when the list names none. */
int gw__tls_load_pairs(SSL_CTX *sc, const char *setting, const char *list, const char *what,
                       const char *missing, char *err, size_t errlen);

/* An SSL_CTX ex_data index whose data goes to free_fn with the SSL_CTX,
 * that is when the last connection made under a replaced configuration
 * ends (CRL sets, ticket keys); -1 when OpenSSL has none. d must stay. */
typedef struct gw__tls_ex_dtor {
    void (*free_fn)(void *ptr); /* never called with NULL */
} gw__tls_ex_dtor;
int gw__tls_ctx_ex_index(const gw__tls_ex_dtor *d);

#endif
