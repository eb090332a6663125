/* TLS client engine for pushes to VENs, on a socketless BIO (see push_tls.h). */
#include "push_tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "tls_engine.h"
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

_Static_assert(GW_PUSH_TLS_EOF == 1, "gw__tls_feed returns 1 at close_notify");

struct gw_push_tls {
    gw__tls_conn c;              /* first: the engine's callbacks get it back from the SSL */
    unsigned verified : 1;       /* the VEN's chain and name verified */
    unsigned accepted : 1;       /* the VEN took our certificate (see peer_accepted) */
    unsigned cert_requested : 1; /* the VEN sent a CertificateRequest */
    unsigned cert_unfit : 1;     /* ... and none of ours fitted it: we sent none */
    int alert;                   /* first fatal alert the VEN sent, -1 none */
    char host[PUSH_HOST_MAX + 1];
    char subject[160];
    char error[PUSH_ERRLEN];
};

static gw_push_tls *conn_of(const SSL *ssl)
{
    return (gw_push_tls *)gw__tls_conn_of(ssl);
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
    t = (gw_push_tls *)gw__tls_conn_of_store(xs);
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
    gw_push_tls *t = (gw_push_tls *)gw__tls_conn_of_store(xs);
    X509 *leaf = X509_STORE_CTX_get0_cert(xs);
    int ok;
    (void)arg;
    if (t != NULL && leaf != NULL) {
        if (vtn_fingerprint_x509(leaf, t->c.fingerprint) < 0)
            t->c.fingerprint[0] = '\0';
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
    int n, rc = -EINVAL;

    if (empty(c->cert)) {
        snprintf(err, errlen, "VTN_PUSH_CERT: no client certificate configured");
        goto out;
    }
    if (empty(c->ca)) {
        snprintf(err, errlen, "VTN_PUSH_CA: no CA bundle configured");
        goto out;
    }
    sc = gw__tls_ssl_ctx_new(TLS_client_method(), "VTN_PUSH_PROTOCOLS",
                             empty(c->protocols) ? PUSH_DEFAULT_PROTOCOLS : c->protocols, &rc, err,
                             errlen);
    if (sc == NULL)
        goto out;
    rc = -EINVAL;
    /* only to hear about tickets (new_session_cb); nothing is stored */
    SSL_CTX_set_session_cache_mode(sc, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(sc, new_session_cb);

    if ((rc = gw__tls_load_pairs(sc, "VTN_PUSH_CERT", c->cert, "push_client_certificate",
                                 "no client certificate configured", err, errlen)) < 0)
        goto out;
    rc = -EINVAL;
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
    rc = gw_push_tls_ctx_reload(c, err, errlen); /* generation 1 */
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
    return vtn_tls_slot_generation(&c->slot);
}

/* -------------------------------------------------------------------------
 * Connection
 * ---------------------------------------------------------------------- */

static int is_ip_literal(const char *host)
{
    unsigned char a[16];
    return inet_pton(AF_INET, host, a) == 1 || inet_pton(AF_INET6, host, a) == 1;
}

static void push_explain(gw__tls_conn *c, const char *when);

/* The handshake completed: the VEN's chain and name were verified (the
 * handshake fails otherwise) and its fingerprint kept by cert_verify_cb. */
static const char *push_handshake_done(gw__tls_conn *c)
{
    gw_push_tls *t = (gw_push_tls *)c;
    if (!t->verified || SSL_get0_peer_certificate(c->ssl) == NULL || c->fingerprint[0] == '\0')
        return "VEN server certificate not verified"; /* cannot happen */
    /* TLS 1.2: the VEN's Finished came after it checked our certificate */
    if (SSL_version(c->ssl) < TLS1_3_VERSION)
        t->accepted = 1;
    return NULL;
}

static const gw__tls_engine push_engine = {
    .rejected = "VEN server certificate rejected",
    .read_when = "connection",
    .explain = push_explain,
    .handshake_done = push_handshake_done,
};

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
    if (gw__tls_conn_init(&t->c, &push_engine, &c->slot, t->error, sizeof(t->error)) < 0) {
        free(t);
        return -ENOMEM;
    }
    SSL_set_connect_state(t->c.ssl);
    if (is_ip_literal(host)) {
        /* no SNI for addresses (RFC 6066 3); the certificate must list the IP */
        ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->c.ssl), host);
    } else {
        SSL_set_hostflags(t->c.ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        ok = SSL_set1_host(t->c.ssl, host) == 1 && SSL_set_tlsext_host_name(t->c.ssl, host) == 1;
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
    gw__tls_conn_free(&(*pt)->c);
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

/* The VEN's fatal alert, when it sent one, says more than OpenSSL's error
 * queue: whether it refused our certificate. */
static void push_explain(gw__tls_conn *c, const char *when)
{
    gw_push_tls *t = (gw_push_tls *)c;
    const char *a;
    if (t->alert < 0)
        return;
    a = SSL_alert_desc_string_long(t->alert);
    if (t->cert_requested && t->cert_unfit)
        snprintf(t->error, sizeof(t->error),
                 "the VEN asked for a client certificate and none in VTN_PUSH_CERT fits "
                 "its request: TLS alert %s",
                 a);
    else if (t->cert_requested && cert_alert(t->alert))
        snprintf(t->error, sizeof(t->error), "the VEN refused our client certificate: TLS alert %s",
                 a);
    else
        snprintf(t->error, sizeof(t->error), "the VEN ended the %s: TLS alert %s", when, a);
}

int gw_push_tls_feed(gw_push_tls *t, const char *in, size_t n, vtn_buf *plain, vtn_buf *wire)
{
    size_t had = plain->len;
    int rc = gw__tls_feed(&t->c, in, n, plain, wire);
    if (plain->len > had)
        t->accepted = 1; /* the VEN answered */
    return rc;
}

int gw_push_tls_write(gw_push_tls *t, const char *p, size_t n, vtn_buf *wire)
{
    gw_tls_iov one = {p, n};
    return gw__tls_writev(&t->c, &one, 1, wire);
}

int gw_push_tls_shutdown(gw_push_tls *t, vtn_buf *wire)
{
    return gw__tls_shutdown(&t->c, wire);
}

int gw_push_tls_handshake_done(const gw_push_tls *t)
{
    return t->c.done && !t->c.failed;
}

int gw_push_tls_peer_accepted(const gw_push_tls *t)
{
    return t->c.done && !t->c.failed && t->accepted;
}

int gw_push_tls_peer_verified(const gw_push_tls *t)
{
    return t->verified;
}

const char *gw_push_tls_fingerprint(const gw_push_tls *t)
{
    return t->c.fingerprint;
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
    return gw__tls_version(&t->c);
}

const char *gw_push_tls_cipher(const gw_push_tls *t)
{
    return gw__tls_cipher(&t->c);
}
