/* TLS client engine for pushes to VENs, on a socketless BIO (see push_tls.h). */
#include "push_tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "vtn/pki.h"
#include "vtn/tlsconf.h"

#define PUSH_VERIFY_DEPTH 5
#define PUSH_DEFAULT_TIMEOUT_MS 10000
#define PUSH_DEFAULT_PROTOCOLS "TLSv1.2" /* OpenADR 2.0b; TLS 1.3 only when asked for */
#define PUSH_HOST_MAX 253                /* longest DNS name */
#define PUSH_ERRLEN 512

struct gw_push_tls_ctx {
    char *cert, *ca, *protocols; /* owned copies of the settings */
    long long timeout_ms;
    vtn_tls_slot slot; /* the SSL_CTX for new connections */
};

struct gw_push_tls {
    SSL *ssl;
    vtn_tls_io io; /* the BIO's view of this call's input and output */
    unsigned done : 1, failed : 1, peer_closed : 1, shut : 1;
    unsigned verified : 1;       /* the VEN's chain and name verified */
    unsigned accepted : 1;       /* the VEN took our certificate (see peer_accepted) */
    unsigned cert_requested : 1; /* the VEN sent a CertificateRequest */
    unsigned cert_unfit : 1;     /* ... and none of ours fitted it: we sent none */
    int alert;                   /* first fatal alert the VEN sent, -1 none */
    char host[PUSH_HOST_MAX + 1];
    char fingerprint[VTN_FINGERPRINT_SIZE];
    char subject[160];
    char error[PUSH_ERRLEN];
};

static int conn_index = -1; /* SSL ex_data slot pointing back at the gw_push_tls */
static pthread_once_t conn_once = PTHREAD_ONCE_INIT;

static void conn_once_init(void)
{
    conn_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

static gw_push_tls *conn_of(const SSL *ssl)
{
    return ssl != NULL ? SSL_get_ex_data(ssl, conn_index) : NULL;
}

static int empty(const char *s)
{
    return s == NULL || s[0] == '\0';
}

/* "CN=ven-1,O=Utility" for logs; sanitized, truncated to outlen. */
static void name_string(X509_NAME *name, char *out, size_t outlen)
{
    BIO *b = BIO_new(BIO_s_mem());
    int n = 0;

    out[0] = '\0';
    if (b != NULL && X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) >= 0)
        n = BIO_read(b, out, (int)outlen - 1);
    BIO_free(b);
    if (n > 0)
        out[n] = '\0';
    else
        X509_NAME_oneline(name, out, (int)outlen);
    vtn_tls_sanitize(out);
}

/* -------------------------------------------------------------------------
 * Callbacks: why a handshake failed, and which of our certificates to send
 * ---------------------------------------------------------------------- */

/* Records the first verification failure with the certificate it concerns:
 * "hostname mismatch for ven.example (depth 0, subject CN=other)" tells an
 * operator far more than OpenSSL's "certificate verify failed". */
static int verify_cb(int ok, X509_STORE_CTX *xs)
{
    gw_push_tls *t;

    if (ok)
        return ok;
    t = conn_of(X509_STORE_CTX_get_ex_data(xs, SSL_get_ex_data_X509_STORE_CTX_idx()));
    if (t != NULL && t->error[0] == '\0') {
        char subj[160] = "?", what[PUSH_HOST_MAX + 16] = "";
        X509 *cur = X509_STORE_CTX_get_current_cert(xs);
        int e = X509_STORE_CTX_get_error(xs);
        if (cur != NULL)
            name_string(X509_get_subject_name(cur), subj, sizeof(subj));
        if (e == X509_V_ERR_HOSTNAME_MISMATCH || e == X509_V_ERR_IP_ADDRESS_MISMATCH)
            snprintf(what, sizeof(what), " for %s", t->host);
        snprintf(t->error, sizeof(t->error),
                 "VEN server certificate rejected: %s%s (depth %d, subject %s)",
                 X509_verify_cert_error_string(e), what, X509_STORE_CTX_get_error_depth(xs), subj);
        vtn_tls_sanitize(t->error);
    }
    return ok;
}

/* Around OpenSSL's chain verification: keeps who the VEN is (fingerprint,
 * subject) even when the handshake fails later or verification fails, so
 * an error can name the certificate. */
static int cert_verify_cb(X509_STORE_CTX *xs, void *arg)
{
    gw_push_tls *t = conn_of(X509_STORE_CTX_get_ex_data(xs, SSL_get_ex_data_X509_STORE_CTX_idx()));
    X509 *leaf = X509_STORE_CTX_get0_cert(xs);
    int ok;
    (void)arg;
    if (t != NULL && leaf != NULL) {
        if (vtn_fingerprint_x509(leaf, t->fingerprint) < 0)
            t->fingerprint[0] = '\0';
        name_string(X509_get_subject_name(leaf), t->subject, sizeof(t->subject));
    }
    ok = X509_verify_cert(xs);
    if (t != NULL && ok > 0)
        t->verified = 1;
    return ok;
}

static void info_cb(const SSL *ssl, int where, int ret)
{
    gw_push_tls *t;
    if (!(where & SSL_CB_ALERT) || !(where & SSL_CB_READ))
        return;
    t = conn_of(ssl);
    if (t != NULL && t->alert < 0 && (ret >> 8) == SSL3_AL_FATAL)
        t->alert = ret & 0xff;
}

/* 1 when the current certificate fits the VEN's CertificateRequest
 * (certificate types, signature algorithms) and, with want_ec, is ECC. */
static int current_fits(SSL *ssl, int want_ec)
{
    STACK_OF(X509) *chain = NULL;
    X509 *x = SSL_get_certificate(ssl);
    EVP_PKEY *k = SSL_get_privatekey(ssl);
    if (x == NULL || k == NULL || (want_ec && EVP_PKEY_get_base_id(k) != EVP_PKEY_EC))
        return 0;
    SSL_get0_chain_certs(ssl, &chain);
    return (SSL_check_chain(ssl, x, k, chain) & CERT_PKEY_VALID) != 0;
}

/* With an RSA and an ECC certificate, send one that fits the VEN's
 * CertificateRequest, ECC first (as the suites): under TLS 1.2 OpenSSL
 * would otherwise only consider the one loaded last. */
static int pick_cert_cb(SSL *ssl, void *arg)
{
    gw_push_tls *t = conn_of(ssl);
    (void)arg;
    if (t != NULL)
        t->cert_requested = 1;
    for (int want_ec = 1; want_ec >= 0; want_ec--) {
        for (int r = SSL_set_current_cert(ssl, SSL_CERT_SET_FIRST); r == 1;
             r = SSL_set_current_cert(ssl, SSL_CERT_SET_NEXT)) {
            if (current_fits(ssl, want_ec))
                return 1;
        }
    }
    ERR_clear_error();
    if (t != NULL)
        t->cert_unfit = 1;
    return 1; /* go on: the VEN's alert then says what it thinks */
}

/* A session ticket under TLS 1.3 comes after the VEN verified our
 * certificate: the first sign it accepted us. Not kept (no resumption yet). */
static int new_session_cb(SSL *ssl, SSL_SESSION *sess)
{
    gw_push_tls *t = conn_of(ssl);
    (void)sess;
    if (t != NULL)
        t->accepted = 1;
    return 0; /* we took no reference */
}

/* -------------------------------------------------------------------------
 * Context
 * ---------------------------------------------------------------------- */

static SSL_CTX *build_ssl_ctx(const void *arg, int *rc_out, char *err, size_t errlen)
{
    const gw_push_tls_ctx *c = arg;
    SSL_CTX *sc = NULL;
    int minv, maxv, n, rc = -EINVAL;

    if (empty(c->cert)) {
        snprintf(err, errlen, "VTN_PUSH_CERT: no client certificate configured");
        goto out;
    }
    if (empty(c->ca)) {
        snprintf(err, errlen, "VTN_PUSH_CA: no CA bundle configured");
        goto out;
    }
    if (vtn_tls_parse_protocols("VTN_PUSH_PROTOCOLS",
                                empty(c->protocols) ? PUSH_DEFAULT_PROTOCOLS : c->protocols, &minv,
                                &maxv, err, errlen) < 0)
        goto out;
    rc = -ENOMEM;
    ERR_clear_error();
    sc = SSL_CTX_new(TLS_client_method());
    if (sc == NULL) {
        vtn_pki_errstr(err, errlen, "SSL_CTX_new");
        goto out;
    }
    rc = -EINVAL;
    if (SSL_CTX_set_min_proto_version(sc, minv) != 1 ||
        SSL_CTX_set_max_proto_version(sc, maxv) != 1 ||
        SSL_CTX_set_cipher_list(sc, VTN_TLS12_CIPHERS) != 1) {
        vtn_pki_errstr(err, errlen, "TLS protocol/cipher setup");
        goto out;
    }
    SSL_CTX_set_options(sc, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    /* a connection waiting for the VEN's reply gives its record buffers back */
    SSL_CTX_set_mode(sc, SSL_MODE_RELEASE_BUFFERS);
    /* only to hear about tickets (new_session_cb); nothing is stored */
    SSL_CTX_set_session_cache_mode(sc, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(sc, new_session_cb);

    if ((n = vtn_tls_load_pairs(sc, "VTN_PUSH_CERT", c->cert, "push_client_certificate", err,
                                errlen)) <= 0) {
        if (n == 0)
            snprintf(err, errlen, "VTN_PUSH_CERT: no client certificate configured");
        rc = n < 0 ? n : -EINVAL;
        goto out;
    }
    if ((n = vtn_tls_load_cas(sc, "VTN_PUSH_CA", c->ca, "push_ca", NULL, err, errlen)) <= 0) {
        if (n == 0)
            snprintf(err, errlen, "VTN_PUSH_CA: no CA bundle configured");
        rc = n < 0 ? n : -EINVAL;
        goto out;
    }
    /* trusting the CA that issues the VENs' server certificates alone,
     * without its root and everything else under it, must work */
    X509_VERIFY_PARAM_set_flags(SSL_CTX_get0_param(sc), X509_V_FLAG_PARTIAL_CHAIN);
    SSL_CTX_set_verify(sc, SSL_VERIFY_PEER, verify_cb);
    SSL_CTX_set_cert_verify_callback(sc, cert_verify_cb, NULL);
    SSL_CTX_set_verify_depth(sc, PUSH_VERIFY_DEPTH);
    SSL_CTX_set_cert_cb(sc, pick_cert_cb, NULL);
    SSL_CTX_set_info_callback(sc, info_cb);
    rc = 0;
out:
    if (rc < 0) {
        SSL_CTX_free(sc);
        sc = NULL;
    }
    *rc_out = rc;
    return sc;
}

void gw_push_tls_ctx_free(gw_push_tls_ctx **pc)
{
    gw_push_tls_ctx *c;
    if (pc == NULL || *pc == NULL)
        return;
    c = *pc;
    vtn_tls_slot_destroy(&c->slot);
    free(c->cert);
    free(c->ca);
    free(c->protocols);
    free(c);
    *pc = NULL;
}

int gw_push_tls_ctx_new(const gw_push_tls_settings *s, gw_push_tls_ctx **out, char *err,
                        size_t errlen)
{
    gw_push_tls_ctx *c;
    int rc;

    *out = NULL;
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    pthread_once(&conn_once, conn_once_init);
    if (conn_index < 0) {
        snprintf(err, errlen, "SSL ex_data index");
        return -ENOMEM;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        return -ENOMEM;
    vtn_tls_slot_init(&c->slot);
    if (vtn_tls_dup_setting(&c->cert, s->cert) < 0 || vtn_tls_dup_setting(&c->ca, s->ca) < 0 ||
        vtn_tls_dup_setting(&c->protocols, s->protocols) < 0) {
        gw_push_tls_ctx_free(&c);
        return -ENOMEM;
    }
    c->timeout_ms = s->timeout_ms > 0 ? s->timeout_ms : PUSH_DEFAULT_TIMEOUT_MS;
    rc = vtn_tls_slot_build(&c->slot, build_ssl_ctx, c, err, errlen); /* generation 1 */
    if (rc < 0) {
        gw_push_tls_ctx_free(&c);
        return rc;
    }
    *out = c;
    return 0;
}

int gw_push_tls_ctx_reload(gw_push_tls_ctx *c, char *err, size_t errlen)
{
    return vtn_tls_slot_build(&c->slot, build_ssl_ctx, c, err, errlen);
}

long long gw_push_tls_ctx_timeout_ms(const gw_push_tls_ctx *c)
{
    return c->timeout_ms;
}

unsigned gw_push_tls_ctx_generation(const gw_push_tls_ctx *c)
{
    /* const but for the lock */
    return vtn_tls_slot_generation((vtn_tls_slot *)&c->slot);
}

/* -------------------------------------------------------------------------
 * Connection
 * ---------------------------------------------------------------------- */

static int is_ip_literal(const char *host)
{
    unsigned char a[16];
    return inet_pton(AF_INET, host, a) == 1 || inet_pton(AF_INET6, host, a) == 1;
}

int gw_push_tls_new(gw_push_tls_ctx *c, const char *host, gw_push_tls **out)
{
    gw_push_tls *t;
    int ok;

    *out = NULL;
    if (empty(host) || strlen(host) > PUSH_HOST_MAX)
        return -EINVAL;
    t = calloc(1, sizeof(*t));
    if (t == NULL)
        return -ENOMEM;
    t->alert = -1;
    strcpy(t->host, host);
    t->ssl = vtn_tls_conn_new(&c->slot, &t->io);
    if (t->ssl == NULL) {
        free(t);
        return -ENOMEM;
    }
    SSL_set_connect_state(t->ssl);
    SSL_set_ex_data(t->ssl, conn_index, t);
    if (is_ip_literal(host)) {
        /* no SNI for addresses (RFC 6066 3); the certificate must list the IP */
        ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), host);
    } else {
        SSL_set_hostflags(t->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        ok = SSL_set1_host(t->ssl, host) == 1 && SSL_set_tlsext_host_name(t->ssl, host) == 1;
    }
    if (ok != 1) {
        ERR_clear_error();
        gw_push_tls_free(&t);
        return -EINVAL;
    }
    *out = t;
    return 0;
}

void gw_push_tls_free(gw_push_tls **pt)
{
    if (pt == NULL || *pt == NULL)
        return;
    SSL_free((*pt)->ssl);
    free(*pt);
    *pt = NULL;
}

/* Alerts a TLS stack sends when it does not accept the peer's certificate. */
static int cert_alert(int a)
{
    switch (a) {
    case SSL_AD_BAD_CERTIFICATE:
    case SSL_AD_UNSUPPORTED_CERTIFICATE:
    case SSL_AD_CERTIFICATE_REVOKED:
    case SSL_AD_CERTIFICATE_EXPIRED:
    case SSL_AD_CERTIFICATE_UNKNOWN:
    case SSL_AD_UNKNOWN_CA:
    case SSL_AD_ACCESS_DENIED:
    case SSL_AD_CERTIFICATE_REQUIRED:
        return 1;
    default:
        return 0;
    }
}

/* Marks the connection failed with the most useful reason available. */
static int fail(gw_push_tls *t, int ssl_err, const char *when)
{
    int rc = -EPROTO;

    t->failed = 1;
    if (t->io.wire_rc < 0) {
        rc = t->io.wire_rc;
        snprintf(t->error, sizeof(t->error), "%s: output buffer full", when);
    } else if (t->error[0] == '\0') {
        unsigned long e = ERR_peek_error();
        const char *reason = e != 0 ? ERR_reason_error_string(e) : NULL;
        long vr = SSL_get_verify_result(t->ssl);
        if (t->alert >= 0) {
            const char *a = SSL_alert_desc_string_long(t->alert);
            if (t->cert_requested && t->cert_unfit)
                snprintf(t->error, sizeof(t->error),
                         "the VEN asked for a client certificate and none in VTN_PUSH_CERT fits "
                         "its request: TLS alert %s",
                         a);
            else if (t->cert_requested && cert_alert(t->alert))
                snprintf(t->error, sizeof(t->error),
                         "the VEN refused our client certificate: TLS alert %s", a);
            else
                snprintf(t->error, sizeof(t->error), "the VEN ended the %s: TLS alert %s", when, a);
        } else if (vr != X509_V_OK) {
            snprintf(t->error, sizeof(t->error), "VEN server certificate rejected: %s",
                     X509_verify_cert_error_string(vr));
        } else if (reason != NULL) {
            snprintf(t->error, sizeof(t->error), "%s: %s", when, reason);
        } else {
            snprintf(t->error, sizeof(t->error), "%s: SSL error %d", when, ssl_err);
        }
        vtn_tls_sanitize(t->error);
    }
    ERR_clear_error();
    vtn_tls_io_end(&t->io); /* any alert OpenSSL wrote is already in wire: send it, then close */
    return rc;
}

int gw_push_tls_feed(gw_push_tls *t, const char *in, size_t n, vtn_buf *plain, vtn_buf *wire)
{
    size_t had = plain->len;
    int rc, e = 0;

    if (t->failed)
        return -EPROTO;
    vtn_tls_io_begin(&t->io, in, n, wire);
    if (!t->done) {
        X509 *peer;
        rc = vtn_tls_handshake(t->ssl, &t->io, &e);
        if (rc == 0) {
            vtn_tls_io_end(&t->io);
            return 0;
        }
        if (rc < 0)
            return fail(t, e, "handshake");
        t->done = 1;
        peer = SSL_get0_peer_certificate(t->ssl);
        if (!t->verified || peer == NULL || t->fingerprint[0] == '\0')
            return fail(t, 0, "VEN server certificate not verified"); /* cannot happen */
        /* TLS 1.2: the VEN's Finished came after it checked our certificate */
        if (SSL_version(t->ssl) < TLS1_3_VERSION)
            t->accepted = 1;
    }
    rc = vtn_tls_read_all(t->ssl, &t->io, plain, &e);
    if (plain->len > had)
        t->accepted = 1; /* the VEN answered */
    if (rc == -EPROTO)
        return fail(t, e, "connection");
    vtn_tls_io_end(&t->io);
    if (rc < 0) {
        t->failed = 1;
        snprintf(t->error, sizeof(t->error), "plaintext buffer full");
        return rc;
    }
    if (rc == VTN_TLS_CLOSED) {
        t->peer_closed = 1;
        return GW_PUSH_TLS_EOF;
    }
    return 0;
}

int gw_push_tls_write(gw_push_tls *t, const char *p, size_t n, vtn_buf *wire)
{
    int e;

    if (t->failed)
        return -EPROTO;
    if (!t->done)
        return -EAGAIN;
    vtn_tls_io_begin(&t->io, NULL, 0, wire);
    if (vtn_tls_write_all(t->ssl, p, n, &e) < 0)
        return fail(t, e, "write");
    vtn_tls_io_end(&t->io);
    return 0;
}

int gw_push_tls_shutdown(gw_push_tls *t, vtn_buf *wire)
{
    if (!t->done || t->failed || t->shut)
        return 0;
    t->shut = 1;
    return vtn_tls_close_notify(t->ssl, &t->io, wire);
}

int gw_push_tls_handshake_done(const gw_push_tls *t)
{
    return t->done && !t->failed;
}

int gw_push_tls_peer_accepted(const gw_push_tls *t)
{
    return t->done && !t->failed && t->accepted;
}

int gw_push_tls_peer_verified(const gw_push_tls *t)
{
    return t->verified;
}

const char *gw_push_tls_fingerprint(const gw_push_tls *t)
{
    return t->fingerprint;
}

const char *gw_push_tls_subject(const gw_push_tls *t)
{
    return t->subject;
}

const char *gw_push_tls_error(const gw_push_tls *t)
{
    return t->error;
}

const char *gw_push_tls_version(const gw_push_tls *t)
{
    return t->done ? SSL_get_version(t->ssl) : "";
}

const char *gw_push_tls_cipher(const gw_push_tls *t)
{
    return t->done ? SSL_get_cipher_name(t->ssl) : "";
}
