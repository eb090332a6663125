/* What the two TLS engines share (see tls_engine.h). */
#include "tls_engine.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>

#include "vtn/pki.h"

static int conn_index = -1; /* SSL ex_data slot pointing back at the gw__tls_conn */
static pthread_once_t conn_once = PTHREAD_ONCE_INIT;

static void conn_once_init(void)
{
    conn_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

static void ex_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    const gw__tls_ex_dtor *d = argp;
    (void)parent;
    (void)ad;
    (void)idx;
    (void)argl;
    if (ptr != NULL)
        d->free_fn(ptr);
}

int gw__tls_ctx_ex_index(const gw__tls_ex_dtor *d)
{
    return SSL_CTX_get_ex_new_index(0, (void *)d, NULL, NULL, ex_free);
}

int gw__tls_conn_init(gw__tls_conn *c, const gw__tls_engine *eng, vtn_tls_slot *slot, char *error,
                      size_t error_len)
{
    pthread_once(&conn_once, conn_once_init);
    if (conn_index < 0)
        return -ENOMEM;
    c->eng = eng;
    c->error = error;
    c->error_len = error_len;
    c->error[0] = '\0';
    c->ssl = vtn_tls_conn_new(slot, &c->io);
    if (c->ssl == NULL)
        return -ENOMEM;
    SSL_set_ex_data(c->ssl, conn_index, c);
    return 0;
}

void gw__tls_conn_free(gw__tls_conn *c)
{
    SSL_free(c->ssl);
    c->ssl = NULL;
}

gw__tls_conn *gw__tls_conn_of(const SSL *ssl)
{
    return ssl != NULL && conn_index >= 0 ? SSL_get_ex_data(ssl, conn_index) : NULL;
}

gw__tls_conn *gw__tls_conn_of_store(X509_STORE_CTX *xs)
{
    return gw__tls_conn_of(X509_STORE_CTX_get_ex_data(xs, SSL_get_ex_data_X509_STORE_CTX_idx()));
}

int gw__tls_fail(gw__tls_conn *c, int ssl_err, const char *when)
{
    int rc = -EPROTO;

    c->failed = 1;
    if (c->io.wire_rc < 0) {
        rc = c->io.wire_rc;
        snprintf(c->error, c->error_len, "%s: output buffer full", when);
    } else if (c->error[0] == '\0') {
        if (c->eng->explain != NULL)
            c->eng->explain(c, when);
    }
    if (c->io.wire_rc >= 0 && c->error[0] == '\0') {
        unsigned long e = ERR_peek_error();
        const char *reason = e != 0 ? ERR_reason_error_string(e) : NULL;
        long vr = SSL_get_verify_result(c->ssl);
        if (vr != X509_V_OK)
            snprintf(c->error, c->error_len, "%s: %s", c->eng->rejected,
                     X509_verify_cert_error_string(vr));
        else if (reason != NULL)
            snprintf(c->error, c->error_len, "%s: %s", when, reason);
        else
            snprintf(c->error, c->error_len, "%s: SSL error %d", when, ssl_err);
    }
    vtn_tls_sanitize(c->error);
    ERR_clear_error();
    vtn_tls_io_end(&c->io); /* any alert OpenSSL wrote is already in wire: send it, then close */
    return rc;
}

int gw__tls_feed(gw__tls_conn *c, const char *in, size_t n, vtn_buf *plain, vtn_buf *wire)
{
    int rc, e = 0;

    if (c->failed)
        return -EPROTO;
    vtn_tls_io_begin(&c->io, in, n, wire);
    if (!c->done) {
        const char *why;
        rc = vtn_tls_handshake(c->ssl, &c->io, &e);
        if (rc == 0) {
            vtn_tls_io_end(&c->io);
            return 0;
        }
        if (rc < 0)
            return gw__tls_fail(c, e, "handshake");
        c->done = 1;
        if (c->eng->handshake_done != NULL && (why = c->eng->handshake_done(c)) != NULL)
            return gw__tls_fail(c, 0, why);
    }
    rc = vtn_tls_read_all(c->ssl, &c->io, plain, &e);
    if (rc == -EPROTO)
        return gw__tls_fail(c, e, c->eng->read_when);
    vtn_tls_io_end(&c->io);
    if (rc < 0) {
        c->failed = 1;
        snprintf(c->error, c->error_len, "plaintext buffer full");
        return rc;
    }
    if (rc == VTN_TLS_CLOSED) {
        c->peer_closed = 1;
        return 1;
    }
    return 0;
}

/* All of p[0..n) into the wire buffer; vtn_tls_io_begin must be active. */
static int write_all(gw__tls_conn *c, const char *p, size_t n)
{
    int e;
    if (vtn_tls_write_all(c->ssl, p, n, &e) < 0)
        return gw__tls_fail(c, e, "write");
    return 0;
}

int gw__tls_writev(gw__tls_conn *c, const gw_tls_iov *iov, int n, vtn_buf *wire)
{
    char rec[16384]; /* one record's plaintext, gathered from small pieces */
    size_t fill = 0;
    int rc;

    if (c->failed)
        return -EPROTO;
    if (!c->done)
        return -EAGAIN;
    vtn_tls_io_begin(&c->io, NULL, 0, wire);
    for (int i = 0; i < n; i++) {
        const char *p = iov[i].p;
        size_t len = iov[i].n;
        while (len > 0) {
            if (fill == 0 && len >= sizeof(rec)) {
                /* whole records straight from the caller's memory */
                size_t whole = len - len % sizeof(rec);
                if ((rc = write_all(c, p, whole)) < 0)
                    return rc;
                p += whole;
                len -= whole;
                continue;
            }
            size_t k = sizeof(rec) - fill < len ? sizeof(rec) - fill : len;
            memcpy(rec + fill, p, k);
            fill += k;
            p += k;
            len -= k;
            if (fill == sizeof(rec)) {
                if ((rc = write_all(c, rec, fill)) < 0)
                    return rc;
                fill = 0;
            }
        }
    }
    if (fill > 0 && (rc = write_all(c, rec, fill)) < 0)
        return rc;
    vtn_tls_io_end(&c->io);
    return 0;
}

int gw__tls_shutdown(gw__tls_conn *c, vtn_buf *wire)
{
    if (!c->done || c->failed || c->shut)
        return 0;
    c->shut = 1;
    return vtn_tls_close_notify(c->ssl, &c->io, wire);
}

const char *gw__tls_version(const gw__tls_conn *c)
{
    return c->done ? SSL_get_version(c->ssl) : "";
}

const char *gw__tls_cipher(const gw__tls_conn *c)
{
    return c->done ? SSL_get_cipher_name(c->ssl) : "";
}

SSL_CTX *gw__tls_ssl_ctx_new(const SSL_METHOD *m, const char *setting, const char *protocols,
                             int *rc, char *err, size_t errlen)
{
    SSL_CTX *sc;
    int minv, maxv;

    *rc = -EINVAL;
    if (vtn_tls_parse_protocols(setting, protocols, &minv, &maxv, err, errlen) < 0)
        return NULL;
    ERR_clear_error();
    sc = SSL_CTX_new(m);
    if (sc == NULL) {
        *rc = -ENOMEM;
        vtn_pki_errstr(err, errlen, "SSL_CTX_new");
        return NULL;
    }
    if (SSL_CTX_set_min_proto_version(sc, minv) != 1 ||
        SSL_CTX_set_max_proto_version(sc, maxv) != 1 ||
        SSL_CTX_set_cipher_list(sc, VTN_TLS12_CIPHERS) != 1) {
        vtn_pki_errstr(err, errlen, "TLS protocol/cipher setup");
        SSL_CTX_free(sc);
        return NULL;
    }
    SSL_CTX_set_options(sc, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    /* an idle connection gives its 2 x 16 KiB record buffers back */
    SSL_CTX_set_mode(sc, SSL_MODE_RELEASE_BUFFERS);
    return sc;
}

int gw__tls_load_pairs(SSL_CTX *sc, const char *setting, const char *list, const char *what,
                       const char *missing, char *err, size_t errlen)
{
    int n = vtn_tls_load_pairs(sc, setting, list, what, err, errlen);
    if (n > 0)
        return 0;
    if (n == 0) {
        snprintf(err, errlen, "%s: %s", setting, missing);
        return -EINVAL;
    }
    return n;
}
