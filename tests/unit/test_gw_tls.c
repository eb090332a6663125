/* The gateway's TLS engine, driven by a real OpenSSL client over memory BIOs
 * in this process: the OpenADR handshake matrix (ECC-only, RSA-only, TLS 1.3,
 * no certificate, wrong CA, expired, revoked), the fingerprint a worker will
 * see, resumption, reload with open connections, and configuration errors.
 * Every certificate and key is generated at test time in a temporary
 * directory (vtn/pki.h) and removed afterwards. */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

#include "testpki.h"
#include "tls.h"
#include "vtn/buf.h"
#include "vtn/fingerprint.h"
#include "vtn/pki.h"

#define BUF_MAX (1 << 20)

static struct pki {
    char dir[256];
    X509 *ca; /* the trusted client CA, also issues the server certificates */
    EVP_PKEY *ca_key;
    X509 *ven_ec; /* good VEN certificates, ECC and RSA */
    X509 *ven_rsa;
    X509 *revoked; /* issued by ca, on its CRL */
    char ca_pem[300], other_ca_pem[300], crl_pem[300], bad_crl_pem[300];
    char srv_ec[300], srv_ec_key[300], srv_rsa[300], srv_rsa_key[300];
    char ven_ec_pem[300], ven_ec_key[300], ven_rsa_pem[300], ven_rsa_key[300];
    char other_pem[300], other_key[300], expired_pem[300], expired_key[300];
    char revoked_pem[300], revoked_key[300];
    char certs_both[1300];
} P;

static void path(char *out, const char *name)
{
    snprintf(out, 300, "%s/%s", P.dir, name);
}

/* Issues a leaf certificate for localhost signed by ca/ca_key. */
static X509 *issue(const char *cert_path, const char *key_path, const char *cn, vtn_key_type kt,
                   X509 *ca, EVP_PKEY *ca_key, time_t not_before, time_t not_after, int overwrite)
{
    return testpki_leaf(cert_path, key_path, cn, kt, ca, ca_key, "DNS:localhost,IP:127.0.0.1",
                        not_before, not_after, overwrite);
}

static int setup_pki(void **state)
{
    (void)state;
    char err[256], serial[80];
    time_t now = time(NULL);
    EVP_PKEY *other_key;

    testpki_mkdtemp(P.dir, sizeof(P.dir), "vtn-test-tls");
    path(P.ca_pem, "ca.pem");
    path(P.other_ca_pem, "other-ca.pem");
    path(P.crl_pem, "crl.pem");
    path(P.bad_crl_pem, "not-a-crl.pem");
    path(P.srv_ec, "srv-ec.pem");
    path(P.srv_ec_key, "srv-ec.key");
    path(P.srv_rsa, "srv-rsa.pem");
    path(P.srv_rsa_key, "srv-rsa.key");
    path(P.ven_ec_pem, "ven-ec.pem");
    path(P.ven_ec_key, "ven-ec.key");
    path(P.ven_rsa_pem, "ven-rsa.pem");
    path(P.ven_rsa_key, "ven-rsa.key");
    path(P.other_pem, "other.pem");
    path(P.other_key, "other.key");
    path(P.expired_pem, "expired.pem");
    path(P.expired_key, "expired.key");
    path(P.revoked_pem, "revoked.pem");
    path(P.revoked_key, "revoked.key");
    snprintf(P.certs_both, sizeof(P.certs_both), "%s:%s, %s:%s", P.srv_rsa, P.srv_rsa_key, P.srv_ec,
             P.srv_ec_key);

    P.ca = testpki_ca(P.ca_pem, "openvtn test client CA", &P.ca_key);
    X509 *other_ca = testpki_ca(P.other_ca_pem, "some other CA", &other_key);

    X509_free(issue(P.srv_ec, P.srv_ec_key, "localhost", VTN_KEY_EC, P.ca, P.ca_key, 0, 0, 0));
    X509_free(issue(P.srv_rsa, P.srv_rsa_key, "localhost", VTN_KEY_RSA, P.ca, P.ca_key, 0, 0, 0));
    P.ven_ec = issue(P.ven_ec_pem, P.ven_ec_key, "ven-ecc", VTN_KEY_EC, P.ca, P.ca_key, 0, 0, 0);
    P.ven_rsa =
        issue(P.ven_rsa_pem, P.ven_rsa_key, "ven-rsa", VTN_KEY_RSA, P.ca, P.ca_key, 0, 0, 0);
    X509_free(
        issue(P.other_pem, P.other_key, "ven-other-ca", VTN_KEY_EC, other_ca, other_key, 0, 0, 0));
    X509_free(issue(P.expired_pem, P.expired_key, "ven-expired", VTN_KEY_EC, P.ca, P.ca_key,
                    now - 10 * 86400, now - 86400, 0));
    P.revoked =
        issue(P.revoked_pem, P.revoked_key, "ven-revoked", VTN_KEY_EC, P.ca, P.ca_key, 0, 0, 0);

    assert_int_equal(vtn_pki_serial_hex(P.revoked, serial, sizeof(serial)), 0);
    vtn_revoked r = {.serial_hex = serial, .when = now - 60, .reason = VTN_CRL_KEY_COMPROMISE};
    X509_CRL *crl = vtn_pki_crl(P.ca, P.ca_key, &r, 1, 1, 30, err, sizeof(err));
    if (crl == NULL)
        fail_msg("crl: %s", err);
    assert_int_equal(vtn_pki_write_crl(P.crl_pem, crl, 0), 0);
    X509_CRL_free(crl);
    assert_int_equal(vtn_pki_write_cert(P.bad_crl_pem, other_ca, 0), 0);

    X509_free(other_ca);
    EVP_PKEY_free(other_key);
    return 0;
}

static int teardown_pki(void **state)
{
    (void)state;
    testpki_rmdir(P.dir);
    X509_free(P.ca);
    EVP_PKEY_free(P.ca_key);
    X509_free(P.ven_ec);
    X509_free(P.ven_rsa);
    X509_free(P.revoked);
    return 0;
}

/* ------------------------------------------------------------------------
 * A VEN: an OpenSSL client on memory BIOs, pumped against the engine
 * --------------------------------------------------------------------- */

typedef struct client {
    SSL_CTX *ctx;
    SSL *ssl;
    BIO *rbio, *wbio;
} client;

typedef struct server {
    gw_tls *tls;
    vtn_buf plain, wire;
    int rc; /* last gw_tls_feed result */
} server;

static void client_init(client *c, const char *ciphers12, int minv, int maxv, const char *cert,
                        const char *key, SSL_SESSION *resume)
{
    c->ctx = SSL_CTX_new(TLS_client_method());
    assert_non_null(c->ctx);
    assert_int_equal(SSL_CTX_set_min_proto_version(c->ctx, minv), 1);
    assert_int_equal(SSL_CTX_set_max_proto_version(c->ctx, maxv), 1);
    if (ciphers12 != NULL)
        assert_int_equal(SSL_CTX_set_cipher_list(c->ctx, ciphers12), 1);
    /* the VEN checks the VTN too, so the served chain is part of the test */
    assert_int_equal(SSL_CTX_load_verify_locations(c->ctx, P.ca_pem, NULL), 1);
    SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
    if (cert != NULL) {
        assert_int_equal(SSL_CTX_use_certificate_chain_file(c->ctx, cert), 1);
        assert_int_equal(SSL_CTX_use_PrivateKey_file(c->ctx, key, SSL_FILETYPE_PEM), 1);
    }
    c->ssl = SSL_new(c->ctx);
    assert_non_null(c->ssl);
    assert_int_equal(SSL_set1_host(c->ssl, "localhost"), 1);
    c->rbio = BIO_new(BIO_s_mem());
    c->wbio = BIO_new(BIO_s_mem());
    BIO_set_mem_eof_return(c->rbio, -1);
    SSL_set_bio(c->ssl, c->rbio, c->wbio);
    SSL_set_connect_state(c->ssl);
    if (resume != NULL)
        assert_int_equal(SSL_set_session(c->ssl, resume), 1);
}

static void client_free(client *c)
{
    SSL_free(c->ssl);
    SSL_CTX_free(c->ctx);
}

static void server_init(server *s, gw_tls_ctx *ctx)
{
    assert_int_equal(gw_tls_new(ctx, &s->tls), 0);
    vtn_buf_init(&s->plain, BUF_MAX);
    vtn_buf_init(&s->wire, BUF_MAX);
    s->rc = 0;
}

static void server_free(server *s)
{
    gw_tls_free(&s->tls);
    assert_null(s->tls);
    vtn_buf_free(&s->plain);
    vtn_buf_free(&s->wire);
}

/* Moves bytes both ways until nothing moves; returns 1 when something moved. */
static int pump_once(client *c, server *s)
{
    char buf[65536];
    int moved = 0, n;

    while ((n = BIO_read(c->wbio, buf, sizeof(buf))) > 0) {
        moved = 1;
        if (s->rc >= 0)
            s->rc = gw_tls_feed(s->tls, buf, (size_t)n, &s->plain, &s->wire);
    }
    if (s->wire.len > 0) {
        moved = 1;
        assert_int_equal(BIO_write(c->rbio, s->wire.data, (int)s->wire.len), (int)s->wire.len);
        vtn_buf_reset(&s->wire);
    }
    return moved;
}

/* Runs the handshake as far as it goes; returns 1 when the client finished
 * its side (in TLS 1.3 that happens before the server checked the client
 * certificate, so callers also look at the server). */
static int handshake(client *c, server *s)
{
    int client_done = 0;
    for (int round = 0; round < 50; round++) {
        if (!client_done) {
            int r = SSL_do_handshake(c->ssl);
            if (r == 1)
                client_done = 1;
            else if (SSL_get_error(c->ssl, r) != SSL_ERROR_WANT_READ)
                break;
        }
        if (!pump_once(c, s) && client_done)
            break;
    }
    ERR_clear_error();
    /* TLS 1.3: let the client see the server's verdict (alert or tickets) */
    if (client_done) {
        char b[16];
        int r = SSL_read(c->ssl, b, sizeof(b));
        if (r <= 0 && SSL_get_error(c->ssl, r) != SSL_ERROR_WANT_READ)
            client_done = 0;
        ERR_clear_error();
    }
    return client_done;
}

/* Request from the VEN, reply from the VTN: application data both ways. */
static void exchange(client *c, server *s, const char *req, const char *rep)
{
    char got[256];
    vtn_buf_reset(&s->plain);
    assert_int_equal(SSL_write(c->ssl, req, (int)strlen(req)), (int)strlen(req));
    pump_once(c, s);
    assert_int_equal(s->rc, 0);
    assert_int_equal(s->plain.len, strlen(req));
    assert_memory_equal(s->plain.data, req, strlen(req));

    assert_int_equal(gw_tls_write(s->tls, rep, strlen(rep), &s->wire), 0);
    pump_once(c, s);
    int n = SSL_read(c->ssl, got, sizeof(got));
    assert_int_equal(n, (int)strlen(rep));
    assert_memory_equal(got, rep, strlen(rep));
}

static gw_tls_ctx *ctx_resuming(const char *certs, const char *crl, const char *protocols,
                                const char *resumption)
{
    char err[512];
    gw_tls_ctx *ctx = NULL;
    gw_tls_settings st = {.certs = certs,
                          .client_ca = P.ca_pem,
                          .crl = crl,
                          .protocols = protocols,
                          .handshake_timeout_ms = 5000,
                          .resumption = resumption};
    int rc = gw_tls_ctx_new(&st, &ctx, err, sizeof(err));
    if (rc != 0)
        fail_msg("gw_tls_ctx_new: %d %s", rc, err);
    return ctx;
}

static gw_tls_ctx *ctx_with(const char *certs, const char *crl, const char *protocols)
{
    return ctx_resuming(certs, crl, protocols, NULL);
}

static int peer_key_type(client *c)
{
    X509 *x = SSL_get0_peer_certificate(c->ssl);
    assert_non_null(x);
    return EVP_PKEY_get_base_id(X509_get0_pubkey(x));
}

static void expect_connects(gw_tls_ctx *ctx, const char *ciphers12, int minv, int maxv,
                            const char *cert, const char *key, X509 *ven, const char *want_version)
{
    client c;
    server s;
    char want_fp[VTN_FINGERPRINT_SIZE];

    client_init(&c, ciphers12, minv, maxv, cert, key, NULL);
    server_init(&s, ctx);
    assert_string_equal(gw_tls_fingerprint(s.tls), "");
    assert_true(handshake(&c, &s));
    assert_int_equal(s.rc, 0);
    assert_true(gw_tls_handshake_done(s.tls));
    assert_string_equal(gw_tls_error(s.tls), "");
    assert_string_equal(gw_tls_version(s.tls), want_version);
    assert_string_equal(SSL_get_version(c.ssl), want_version);
    assert_null(SSL_get_current_compression(c.ssl));
    assert_int_equal(vtn_fingerprint_x509(ven, want_fp), 0);
    assert_string_equal(gw_tls_fingerprint(s.tls), want_fp);
    exchange(&c, &s, "POST /OpenADR2/Simple/2.0b/OadrPoll HTTP/1.1\r\n\r\n",
             "HTTP/1.1 200 OK\r\n\r\n");
    server_free(&s);
    client_free(&c);
}

/* Returns the engine's error for a refused handshake. */
static void expect_refused(gw_tls_ctx *ctx, const char *ciphers12, int minv, int maxv,
                           const char *cert, const char *key, const char *why)
{
    client c;
    server s;

    client_init(&c, ciphers12, minv, maxv, cert, key, NULL);
    server_init(&s, ctx);
    int client_ok = handshake(&c, &s);
    assert_int_equal(s.rc, -EPROTO);
    assert_false(gw_tls_handshake_done(s.tls));
    assert_false(client_ok); /* the alert reached the VEN */
    assert_string_equal(gw_tls_fingerprint(s.tls), "");
    if (strstr(gw_tls_error(s.tls), why) == NULL)
        fail_msg("error \"%s\" does not mention \"%s\"", gw_tls_error(s.tls), why);
    /* a failed session stays failed */
    assert_int_equal(gw_tls_feed(s.tls, "x", 1, &s.plain, &s.wire), -EPROTO);
    assert_int_equal(gw_tls_write(s.tls, "x", 1, &s.wire), -EPROTO);
    server_free(&s);
    client_free(&c);
}

/* ------------------------------------------------------------------------
 * The handshake matrix
 * --------------------------------------------------------------------- */

static void ecc_only_client_gets_the_ecc_certificate(void **state)
{
    (void)state;
    gw_tls_ctx *ctx = ctx_with(P.certs_both, NULL, "TLSv1.2");
    client c;
    server s;

    expect_connects(ctx, "ECDHE-ECDSA-AES128-SHA256", TLS1_2_VERSION, TLS1_2_VERSION, P.ven_ec_pem,
                    P.ven_ec_key, P.ven_ec, "TLSv1.2");
    client_init(&c, "ECDHE-ECDSA-AES128-SHA256", TLS1_2_VERSION, TLS1_2_VERSION, P.ven_ec_pem,
                P.ven_ec_key, NULL);
    server_init(&s, ctx);
    assert_true(handshake(&c, &s));
    assert_string_equal(gw_tls_cipher(s.tls), "ECDHE-ECDSA-AES128-SHA256");
    assert_int_equal(peer_key_type(&c), EVP_PKEY_EC);
    server_free(&s);
    client_free(&c);
    gw_tls_ctx_free(&ctx);
    assert_null(ctx);
}

static void rsa_only_client_gets_the_rsa_certificate(void **state)
{
    (void)state;
    gw_tls_ctx *ctx = ctx_with(P.certs_both, NULL, "TLSv1.2");
    client c;
    server s;

    expect_connects(ctx, "AES128-SHA256", TLS1_2_VERSION, TLS1_2_VERSION, P.ven_rsa_pem,
                    P.ven_rsa_key, P.ven_rsa, "TLSv1.2");
    client_init(&c, "AES128-SHA256", TLS1_2_VERSION, TLS1_2_VERSION, P.ven_rsa_pem, P.ven_rsa_key,
                NULL);
    server_init(&s, ctx);
    assert_true(handshake(&c, &s));
    assert_string_equal(gw_tls_cipher(s.tls), "AES128-SHA256");
    assert_int_equal(peer_key_type(&c), EVP_PKEY_RSA);
    server_free(&s);
    client_free(&c);
    gw_tls_ctx_free(&ctx);
}

static void client_offering_both_suites_gets_forward_secrecy(void **state)
{
    (void)state;
    gw_tls_ctx *ctx = ctx_with(P.certs_both, NULL, NULL);
    client c;
    server s;

    /* the client prefers RSA key transport; the server's order wins */
    client_init(&c, "AES128-SHA256:ECDHE-ECDSA-AES128-SHA256", TLS1_2_VERSION, TLS1_2_VERSION,
                P.ven_rsa_pem, P.ven_rsa_key, NULL);
    server_init(&s, ctx);
    assert_true(handshake(&c, &s));
    assert_string_equal(gw_tls_cipher(s.tls), "ECDHE-ECDSA-AES128-SHA256");
    server_free(&s);
    client_free(&c);
    gw_tls_ctx_free(&ctx);
}

static void ecc_only_client_fails_without_an_ecc_certificate(void **state)
{
    (void)state;
    char certs[1300];
    snprintf(certs, sizeof(certs), "%s:%s", P.srv_rsa, P.srv_rsa_key);
    gw_tls_ctx *ctx = ctx_with(certs, NULL, "TLSv1.2");
    /* why both certificates are needed at once */
    expect_refused(ctx, "ECDHE-ECDSA-AES128-SHA256", TLS1_2_VERSION, TLS1_2_VERSION, P.ven_ec_pem,
                   P.ven_ec_key, "no shared cipher");
    gw_tls_ctx_free(&ctx);
}

static void other_tls12_suites_are_refused(void **state)
{
    (void)state;
    gw_tls_ctx *ctx = ctx_with(P.certs_both, NULL, NULL);
    expect_refused(ctx, "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384:AES128-SHA",
                   TLS1_2_VERSION, TLS1_2_VERSION, P.ven_ec_pem, P.ven_ec_key, "no shared cipher");
    gw_tls_ctx_free(&ctx);
}

static void tls13_client_connects_when_enabled(void **state)
{
    (void)state;
    gw_tls_ctx *ctx = ctx_with(P.certs_both, NULL, "TLSv1.2,TLSv1.3");
    expect_connects(ctx, NULL, TLS1_3_VERSION, TLS1_3_VERSION, P.ven_ec_pem, P.ven_ec_key, P.ven_ec,
                    "TLSv1.3");
    expect_connects(ctx, NULL, TLS1_3_VERSION, TLS1_3_VERSION, P.ven_rsa_pem, P.ven_rsa_key,
                    P.ven_rsa, "TLSv1.3");
    /* and TLS 1.2 VENs still get the OpenADR suites next to it */
    expect_connects(ctx, "AES128-SHA256", TLS1_2_VERSION, TLS1_2_VERSION, P.ven_rsa_pem,
                    P.ven_rsa_key, P.ven_rsa, "TLSv1.2");
    gw_tls_ctx_free(&ctx);
}

static void tls13_client_refused_when_not_enabled(void **state)
{
    (void)state;
    gw_tls_ctx *ctx = ctx_with(P.certs_both, NULL, "TLSv1.2");
    expect_refused(ctx, NULL, TLS1_3_VERSION, TLS1_3_VERSION, P.ven_ec_pem, P.ven_ec_key,
                   "unsupported protocol");
    gw_tls_ctx_free(&ctx);
}

static void tls12_client_refused_when_only_tls13(void **state)
{
    (void)state;
    gw_tls_ctx *ctx = ctx_with(P.certs_both, NULL, "TLSv1.3");
    expect_refused(ctx, "ECDHE-ECDSA-AES128-SHA256", TLS1_2_VERSION, TLS1_2_VERSION, P.ven_ec_pem,
                   P.ven_ec_key, "unsupported protocol");
    gw_tls_ctx_free(&ctx);
}

static const int versions[] = {TLS1_2_VERSION, TLS1_3_VERSION};

static void no_client_certificate_is_refused(void **state)
{
    (void)state;
    gw_tls_ctx *ctx = ctx_with(P.certs_both, NULL, "TLSv1.2,TLSv1.3");
    for (size_t i = 0; i < 2; i++)
        expect_refused(ctx, NULL, versions[i], versions[i], NULL, NULL,
                       "did not return a certificate");
    gw_tls_ctx_free(&ctx);
}

static void certificate_from_another_ca_is_refused(void **state)
{
    (void)state;
    gw_tls_ctx *ctx = ctx_with(P.certs_both, NULL, "TLSv1.2,TLSv1.3");
    for (size_t i = 0; i < 2; i++)
        expect_refused(ctx, NULL, versions[i], versions[i], P.other_pem, P.other_key,
                       "unable to get local issuer certificate");
    gw_tls_ctx_free(&ctx);
}

static void expired_certificate_is_refused(void **state)
{
    (void)state;
    gw_tls_ctx *ctx = ctx_with(P.certs_both, NULL, "TLSv1.2,TLSv1.3");
    for (size_t i = 0; i < 2; i++)
        expect_refused(ctx, NULL, versions[i], versions[i], P.expired_pem, P.expired_key,
                       "certificate has expired");
    gw_tls_ctx_free(&ctx);
}

static void revoked_certificate_is_refused_with_a_crl(void **state)
{
    (void)state;
    gw_tls_ctx *ctx = ctx_with(P.certs_both, NULL, "TLSv1.2,TLSv1.3");
    /* without the CRL the same certificate is fine: the CRL is what refuses it */
    expect_connects(ctx, NULL, TLS1_2_VERSION, TLS1_3_VERSION, P.revoked_pem, P.revoked_key,
                    P.revoked, "TLSv1.3");
    gw_tls_ctx_free(&ctx);

    ctx = ctx_with(P.certs_both, P.crl_pem, "TLSv1.2,TLSv1.3");
    for (size_t i = 0; i < 2; i++)
        expect_refused(ctx, NULL, versions[i], versions[i], P.revoked_pem, P.revoked_key,
                       "certificate revoked");
    /* a VEN that is not on the CRL still connects */
    expect_connects(ctx, NULL, TLS1_2_VERSION, TLS1_2_VERSION, P.ven_ec_pem, P.ven_ec_key, P.ven_ec,
                    "TLSv1.2");
    gw_tls_ctx_free(&ctx);
}

/* Writes a CRL of P.ca revoking nothing, valid from not_before to
 * not_after (re-signed after the times are set). */
static void write_crl_of_ca(const char *file, time_t not_before, time_t not_after)
{
    char err[256];
    X509_CRL *crl = vtn_pki_crl(P.ca, P.ca_key, NULL, 0, 7, 30, err, sizeof(err));
    if (crl == NULL)
        fail_msg("crl: %s", err);
    ASN1_TIME *a = ASN1_TIME_set(NULL, not_before), *b = ASN1_TIME_set(NULL, not_after);
    assert_int_equal(X509_CRL_set1_lastUpdate(crl, a), 1);
    assert_int_equal(X509_CRL_set1_nextUpdate(crl, b), 1);
    assert_true(X509_CRL_sign(crl, P.ca_key, EVP_sha256()) > 0);
    assert_int_equal(vtn_pki_write_crl(file, crl, 1), 0);
    ASN1_TIME_free(a);
    ASN1_TIME_free(b);
    X509_CRL_free(crl);
}

/* The gateway checks CRLs itself (gateway/tls.c): the same answers as
 * OpenSSL's own CRL check for every state a CRL can be in. */
static void crl_out_of_its_validity_refuses_every_ven_of_its_ca(void **state)
{
    (void)state;
    char file[300];
    time_t now = time(NULL);
    path(file, "crl-dated.pem");

    write_crl_of_ca(file, now - 2 * 86400, now - 86400);
    gw_tls_ctx *ctx = ctx_with(P.certs_both, file, "TLSv1.2,TLSv1.3");
    expect_refused(ctx, NULL, TLS1_2_VERSION, TLS1_2_VERSION, P.ven_ec_pem, P.ven_ec_key,
                   "CRL has expired");
    gw_tls_ctx_free(&ctx);

    write_crl_of_ca(file, now + 86400, now + 2 * 86400);
    ctx = ctx_with(P.certs_both, file, "TLSv1.2,TLSv1.3");
    expect_refused(ctx, NULL, TLS1_2_VERSION, TLS1_2_VERSION, P.ven_ec_pem, P.ven_ec_key,
                   "CRL is not yet valid");
    gw_tls_ctx_free(&ctx);

    /* and once it is current again, the same VEN connects */
    write_crl_of_ca(file, now - 60, now + 86400);
    ctx = ctx_with(P.certs_both, file, "TLSv1.2,TLSv1.3");
    expect_connects(ctx, NULL, TLS1_2_VERSION, TLS1_2_VERSION, P.ven_ec_pem, P.ven_ec_key, P.ven_ec,
                    "TLSv1.2");
    gw_tls_ctx_free(&ctx);
}

static void ven_of_a_ca_without_a_crl_is_refused_when_crls_are_checked(void **state)
{
    (void)state;
    char cas[700], err[512];
    gw_tls_ctx *ctx = NULL;
    snprintf(cas, sizeof(cas), "%s,%s", P.ca_pem, P.other_ca_pem);
    gw_tls_settings st = {
        .certs = P.certs_both, .client_ca = cas, .crl = P.crl_pem, .protocols = "TLSv1.2"};
    assert_int_equal(gw_tls_ctx_new(&st, &ctx, err, sizeof(err)), 0);
    /* both CAs are trusted, only the first has a CRL */
    expect_refused(ctx, NULL, TLS1_2_VERSION, TLS1_2_VERSION, P.other_pem, P.other_key,
                   "unable to get certificate CRL");
    expect_connects(ctx, NULL, TLS1_2_VERSION, TLS1_2_VERSION, P.ven_ec_pem, P.ven_ec_key, P.ven_ec,
                    "TLSv1.2");
    gw_tls_ctx_free(&ctx);
}

/* ------------------------------------------------------------------------
 * Resumption, reload, end of stream
 * --------------------------------------------------------------------- */

/* Connects, exchanges a request (which delivers the TLS 1.3 ticket) and
 * returns the session for the next connection. */
static SSL_SESSION *connect_for_session(gw_tls_ctx *ctx, int version, SSL_SESSION *resume,
                                        int *resumed)
{
    client c;
    server s;
    char want_fp[VTN_FINGERPRINT_SIZE];

    client_init(&c, NULL, version, version, P.ven_ec_pem, P.ven_ec_key, resume);
    server_init(&s, ctx);
    assert_true(handshake(&c, &s));
    assert_int_equal(s.rc, 0);
    exchange(&c, &s, "ping", "pong");
    *resumed = gw_tls_resumed(s.tls);
    assert_int_equal(*resumed, SSL_session_reused(c.ssl));
    /* the identity survives resumption: it comes from the ticket */
    assert_int_equal(vtn_fingerprint_x509(P.ven_ec, want_fp), 0);
    assert_string_equal(gw_tls_fingerprint(s.tls), want_fp);
    /* a clean close: OpenSSL clients drop the session of a connection that
     * ended without close_notify */
    SSL_shutdown(c.ssl);
    SSL_SESSION *sess = SSL_get1_session(c.ssl);
    assert_non_null(sess);
    server_free(&s);
    client_free(&c);
    return sess;
}

static void reconnecting_ven_resumes_from_a_ticket(void **state)
{
    (void)state;
    gw_tls_ctx *ctx = ctx_with(P.certs_both, NULL, "TLSv1.2,TLSv1.3");
    for (size_t i = 0; i < 2; i++) {
        int resumed;
        SSL_SESSION *first = connect_for_session(ctx, versions[i], NULL, &resumed);
        assert_false(resumed);
        assert_true(SSL_SESSION_has_ticket(first));
        SSL_SESSION *second = connect_for_session(ctx, versions[i], first, &resumed);
        assert_true(resumed);
        SSL_SESSION_free(first);
        SSL_SESSION_free(second);
    }
    gw_tls_ctx_free(&ctx);
}

static void reconnecting_ven_resumes_from_the_session_cache(void **state)
{
    (void)state;
    gw_tls_ctx *ctx = ctx_resuming(P.certs_both, NULL, "TLSv1.2,TLSv1.3", "cache");
    int resumed;

    for (size_t i = 0; i < 2; i++) {
        SSL_SESSION *first = connect_for_session(ctx, versions[i], NULL, &resumed);
        assert_false(resumed);
        if (versions[i] == TLS1_2_VERSION) {
            /* TLS 1.2: a session ID, no ticket carrying the session */
            unsigned int idlen = 0;
            SSL_SESSION_get_id(first, &idlen);
            assert_false(SSL_SESSION_has_ticket(first));
            assert_true(idlen > 0);
        }
        SSL_SESSION *second = connect_for_session(ctx, versions[i], first, &resumed);
        assert_true(resumed);
        SSL_SESSION_free(first);
        SSL_SESSION_free(second);
    }

    /* a reload starts an empty cache: nothing from before it resumes */
    SSL_SESSION *before = connect_for_session(ctx, TLS1_2_VERSION, NULL, &resumed);
    char err[512];
    assert_int_equal(gw_tls_ctx_reload(ctx, err, sizeof(err)), 0);
    SSL_SESSION *after = connect_for_session(ctx, TLS1_2_VERSION, before, &resumed);
    assert_false(resumed);
    SSL_SESSION_free(before);
    SSL_SESSION_free(after);
    gw_tls_ctx_free(&ctx);
}

/* Writes n fresh ticket keys (160 hex digits each) to file, first line
 * first; keys[i] (161 bytes each) receives them for reuse. */
static void write_ticket_keys(const char *file, char keys[][161], size_t n, int fresh)
{
    FILE *f = fopen(file, "w");
    assert_non_null(f);
    fputs("# ticket keys for the test\n\n", f);
    for (size_t i = 0; i < n; i++) {
        if (fresh) {
            unsigned char raw[80];
            assert_int_equal(RAND_bytes(raw, sizeof(raw)), 1);
            for (size_t j = 0; j < sizeof(raw); j++)
                snprintf(keys[i] + 2 * j, 3, "%02x", raw[j]);
        }
        fprintf(f, "%s\n", keys[i]);
    }
    fclose(f);
    assert_int_equal(chmod(file, 0600), 0); /* else the gateway warns */
}

static gw_tls_ctx *ctx_keys(const char *keys, const char *crl)
{
    char err[512];
    gw_tls_ctx *ctx = NULL;
    gw_tls_settings st = {.certs = P.certs_both,
                          .client_ca = P.ca_pem,
                          .crl = crl,
                          .protocols = "TLSv1.2,TLSv1.3",
                          .ticket_keys = keys};
    int rc = gw_tls_ctx_new(&st, &ctx, err, sizeof(err));
    if (rc != 0)
        fail_msg("gw_tls_ctx_new: %d %s", rc, err);
    return ctx;
}

static void ticket_keys_from_a_file_resume_on_every_gateway(void **state)
{
    (void)state;
    char file[300], rotated[300], keys[2][161];
    int resumed;
    path(file, "ticket-keys");
    path(rotated, "ticket-keys-rotated");
    write_ticket_keys(file, keys, 1, 1);

    gw_tls_ctx *a = ctx_keys(file, NULL), *b = ctx_keys(file, NULL), *own = ctx_keys(NULL, NULL);
    for (size_t i = 0; i < 2; i++) {
        /* a ticket from gateway a resumes on gateway b, not on one with its own key */
        SSL_SESSION *first = connect_for_session(a, versions[i], NULL, &resumed);
        SSL_SESSION *again = connect_for_session(b, versions[i], first, &resumed);
        assert_true(resumed);
        SSL_SESSION *elsewhere = connect_for_session(own, versions[i], first, &resumed);
        assert_false(resumed);
        SSL_SESSION_free(first);
        SSL_SESSION_free(again);
        SSL_SESSION_free(elsewhere);
    }
    /* and after a reload, since the keys come from the file again */
    SSL_SESSION *before = connect_for_session(a, TLS1_2_VERSION, NULL, &resumed);
    char err[512];
    assert_int_equal(gw_tls_ctx_reload(a, err, sizeof(err)), 0);
    SSL_SESSION *after = connect_for_session(a, TLS1_2_VERSION, before, &resumed);
    assert_true(resumed);
    SSL_SESSION_free(after);

    /* rotation: a new key first, the old one second; old tickets still
     * resume, new tickets are under the new key, which the old gateway
     * does not have */
    memcpy(keys[1], keys[0], sizeof(keys[0]));
    {
        unsigned char raw[80];
        assert_int_equal(RAND_bytes(raw, sizeof(raw)), 1);
        for (size_t j = 0; j < sizeof(raw); j++)
            snprintf(keys[0] + 2 * j, 3, "%02x", raw[j]);
    }
    write_ticket_keys(rotated, keys, 2, 0);
    gw_tls_ctx *r = ctx_keys(rotated, NULL);
    SSL_SESSION *renewed = connect_for_session(r, TLS1_2_VERSION, before, &resumed);
    assert_true(resumed);
    SSL_SESSION *fresh = connect_for_session(r, TLS1_2_VERSION, NULL, &resumed);
    SSL_SESSION *back = connect_for_session(b, TLS1_2_VERSION, fresh, &resumed);
    assert_false(resumed);
    SSL_SESSION_free(before);
    SSL_SESSION_free(renewed);
    SSL_SESSION_free(fresh);
    SSL_SESSION_free(back);
    gw_tls_ctx_free(&a);
    gw_tls_ctx_free(&b);
    gw_tls_ctx_free(&own);
    gw_tls_ctx_free(&r);
}

static void ticket_of_a_revoked_certificate_does_not_resume(void **state)
{
    (void)state;
    char file[300], keys[1][161];
    int resumed;
    path(file, "ticket-keys-revocation");
    write_ticket_keys(file, keys, 1, 1);

    /* the session begins while the certificate is not on any CRL ... */
    gw_tls_ctx *before = ctx_keys(file, NULL);
    gw_tls_ctx *with_crl = ctx_keys(file, P.crl_pem);
    for (size_t i = 0; i < 2; i++) {
        client c;
        server s;
        client_init(&c, NULL, versions[i], versions[i], P.revoked_pem, P.revoked_key, NULL);
        server_init(&s, before);
        assert_true(handshake(&c, &s));
        exchange(&c, &s, "ping", "pong");
        SSL_shutdown(c.ssl);
        SSL_SESSION *sess = SSL_get1_session(c.ssl);
        server_free(&s);
        client_free(&c);

        /* ... a gateway with the same keys and the CRL that lists it takes
         * the ticket (same keys) but not the session: the full handshake
         * refuses the certificate */
        client_init(&c, NULL, versions[i], versions[i], P.revoked_pem, P.revoked_key, sess);
        server_init(&s, with_crl);
        int client_ok = handshake(&c, &s);
        assert_int_equal(s.rc, -EPROTO);
        assert_false(client_ok && versions[i] == TLS1_2_VERSION);
        assert_false(gw_tls_resumed(s.tls));
        if (strstr(gw_tls_error(s.tls), "certificate revoked") == NULL)
            fail_msg("error \"%s\" does not say revoked", gw_tls_error(s.tls));
        server_free(&s);
        client_free(&c);

        /* a VEN that is not revoked resumes there */
        SSL_SESSION *good = connect_for_session(before, versions[i], NULL, &resumed);
        SSL_SESSION *again = connect_for_session(with_crl, versions[i], good, &resumed);
        assert_true(resumed);
        SSL_SESSION_free(good);
        SSL_SESSION_free(again);
        SSL_SESSION_free(sess);
    }
    gw_tls_ctx_free(&before);
    gw_tls_ctx_free(&with_crl);
}

static void resumption_off_always_runs_the_full_handshake(void **state)
{
    (void)state;
    gw_tls_ctx *ctx = ctx_resuming(P.certs_both, NULL, "TLSv1.2,TLSv1.3", "off");
    for (size_t i = 0; i < 2; i++) {
        int resumed;
        SSL_SESSION *first = connect_for_session(ctx, versions[i], NULL, &resumed);
        assert_false(SSL_SESSION_has_ticket(first));
        SSL_SESSION *second = connect_for_session(ctx, versions[i], first, &resumed);
        assert_false(resumed);
        SSL_SESSION_free(first);
        SSL_SESSION_free(second);
    }
    gw_tls_ctx_free(&ctx);
}

static void reload_serves_the_new_certificate_and_keeps_open_connections(void **state)
{
    (void)state;
    char certs[1300], ec[300], ec_key[300], err[512];
    path(ec, "reload-ec.pem");
    path(ec_key, "reload-ec.key");
    snprintf(certs, sizeof(certs), "%s:%s", ec, ec_key);
    X509_free(issue(ec, ec_key, "localhost", VTN_KEY_EC, P.ca, P.ca_key, 0, 0, 1));
    gw_tls_ctx *ctx = ctx_with(certs, NULL, "TLSv1.2");
    assert_int_equal(gw_tls_ctx_generation(ctx), 1);

    /* A: open before the reload */
    client a;
    server sa;
    client_init(&a, "ECDHE-ECDSA-AES128-SHA256", TLS1_2_VERSION, TLS1_2_VERSION, P.ven_ec_pem,
                P.ven_ec_key, NULL);
    server_init(&sa, ctx);
    assert_true(handshake(&a, &sa));
    X509 *before = X509_dup(SSL_get0_peer_certificate(a.ssl));
    int resumed;
    SSL_SESSION *old_session = connect_for_session(ctx, TLS1_2_VERSION, NULL, &resumed);

    /* the operator replaces the files and sends SIGHUP */
    X509 *fresh = issue(ec, ec_key, "localhost", VTN_KEY_EC, P.ca, P.ca_key, 0, 0, 1);
    assert_int_equal(gw_tls_ctx_reload(ctx, err, sizeof(err)), 0);
    assert_int_equal(gw_tls_ctx_generation(ctx), 2);

    /* B: new connections get the new certificate */
    client b;
    server sb;
    client_init(&b, "ECDHE-ECDSA-AES128-SHA256", TLS1_2_VERSION, TLS1_2_VERSION, P.ven_ec_pem,
                P.ven_ec_key, NULL);
    server_init(&sb, ctx);
    assert_true(handshake(&b, &sb));
    assert_int_equal(X509_cmp(SSL_get0_peer_certificate(b.ssl), fresh), 0);
    assert_int_not_equal(X509_cmp(before, fresh), 0);
    exchange(&b, &sb, "after", "reload");

    /* A still works both ways, with the configuration it started with */
    exchange(&a, &sa, "still", "here");

    /* tickets from before the reload do not resume any more */
    SSL_SESSION *again = connect_for_session(ctx, TLS1_2_VERSION, old_session, &resumed);
    assert_false(resumed);

    SSL_SESSION_free(old_session);
    SSL_SESSION_free(again);
    X509_free(before);
    X509_free(fresh);
    server_free(&sb);
    client_free(&b);
    gw_tls_ctx_free(&ctx);
    /* connections may outlive the context they came from */
    exchange(&a, &sa, "ctx", "gone");
    server_free(&sa);
    client_free(&a);
}

static void failed_reload_keeps_the_old_configuration(void **state)
{
    (void)state;
    char certs[1300], ec[300], ec_key[300], err[512];
    path(ec, "broken-ec.pem");
    path(ec_key, "broken-ec.key");
    snprintf(certs, sizeof(certs), "%s:%s", ec, ec_key);
    X509 *good = issue(ec, ec_key, "localhost", VTN_KEY_EC, P.ca, P.ca_key, 0, 0, 1);
    gw_tls_ctx *ctx = ctx_with(certs, NULL, "TLSv1.2");

    /* a new certificate arrives, but its key went elsewhere */
    char unused_key[300];
    path(unused_key, "broken-next.key");
    X509 *next = issue(ec, unused_key, "localhost", VTN_KEY_EC, P.ca, P.ca_key, 0, 0, 1);
    assert_int_equal(gw_tls_ctx_reload(ctx, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "does not match"));
    assert_non_null(strstr(err, ec_key));
    assert_int_equal(gw_tls_ctx_generation(ctx), 1);

    client c;
    server s;
    client_init(&c, "ECDHE-ECDSA-AES128-SHA256", TLS1_2_VERSION, TLS1_2_VERSION, P.ven_ec_pem,
                P.ven_ec_key, NULL);
    server_init(&s, ctx);
    assert_true(handshake(&c, &s));
    assert_int_equal(X509_cmp(SSL_get0_peer_certificate(c.ssl), good), 0);
    server_free(&s);
    client_free(&c);
    X509_free(good);
    X509_free(next);
    gw_tls_ctx_free(&ctx);
}

static void close_notify_both_ways(void **state)
{
    (void)state;
    gw_tls_ctx *ctx = ctx_with(P.certs_both, NULL, NULL);
    for (size_t i = 0; i < 2; i++) {
        client c;
        server s;
        char b[16];
        client_init(&c, NULL, versions[i], versions[i], P.ven_ec_pem, P.ven_ec_key, NULL);
        server_init(&s, ctx);
        assert_true(handshake(&c, &s));

        /* the gateway closes: the VEN sees a clean end of stream */
        assert_int_equal(gw_tls_shutdown(s.tls, &s.wire), 0);
        assert_true(s.wire.len > 0);
        pump_once(&c, &s);
        int r = SSL_read(c.ssl, b, sizeof(b));
        assert_int_equal(SSL_get_error(c.ssl, r), SSL_ERROR_ZERO_RETURN);
        server_free(&s);
        client_free(&c);

        /* the VEN closes after a request: data, then GW_TLS_EOF */
        client_init(&c, NULL, versions[i], versions[i], P.ven_ec_pem, P.ven_ec_key, NULL);
        server_init(&s, ctx);
        assert_true(handshake(&c, &s));
        assert_int_equal(SSL_write(c.ssl, "last", 4), 4);
        SSL_shutdown(c.ssl);
        pump_once(&c, &s);
        assert_int_equal(s.rc, GW_TLS_EOF);
        assert_int_equal(s.plain.len, 4);
        assert_memory_equal(s.plain.data, "last", 4);
        server_free(&s);
        client_free(&c);
    }
    gw_tls_ctx_free(&ctx);
}

static void renegotiation_is_refused(void **state)
{
    (void)state;
    gw_tls_ctx *ctx = ctx_with(P.certs_both, NULL, "TLSv1.2");
    client c;
    server s;
    client_init(&c, NULL, TLS1_2_VERSION, TLS1_2_VERSION, P.ven_ec_pem, P.ven_ec_key, NULL);
    server_init(&s, ctx);
    assert_true(handshake(&c, &s));

    /* the VEN asks for a second handshake on the open connection (OpenSSL 3
     * refuses client renegotiation by default too; this pins the behaviour) */
    assert_int_equal(SSL_renegotiate(c.ssl), 1);
    assert_int_equal(SSL_get_error(c.ssl, SSL_do_handshake(c.ssl)), SSL_ERROR_WANT_READ);
    pump_once(&c, &s);
    assert_int_equal(s.rc, 0); /* the gateway answered with a no_renegotiation alert */
    char b[16];
    ERR_clear_error();
    int r = SSL_read(c.ssl, b, sizeof(b));
    assert_int_equal(SSL_get_error(c.ssl, r), SSL_ERROR_SSL);
    assert_int_equal(ERR_GET_REASON(ERR_peek_error()), SSL_R_NO_RENEGOTIATION);
    ERR_clear_error();
    server_free(&s);
    client_free(&c);
    gw_tls_ctx_free(&ctx);
}

static void plain_http_on_the_tls_port_fails_cleanly(void **state)
{
    (void)state;
    gw_tls_ctx *ctx = ctx_with(P.certs_both, NULL, NULL);
    server s;
    const char *req = "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n";
    server_init(&s, ctx);
    assert_int_equal(gw_tls_write(s.tls, "x", 1, &s.wire), -EAGAIN);
    assert_int_equal(gw_tls_shutdown(s.tls, &s.wire), 0);
    assert_int_equal(s.wire.len, 0);
    assert_int_equal(gw_tls_feed(s.tls, req, strlen(req), &s.plain, &s.wire), -EPROTO);
    assert_string_not_equal(gw_tls_error(s.tls), "");
    assert_int_equal(s.plain.len, 0);
    server_free(&s);
    gw_tls_ctx_free(&ctx);
}

static void plaintext_past_the_cap_is_an_error(void **state)
{
    (void)state;
    gw_tls_ctx *ctx = ctx_with(P.certs_both, NULL, NULL);
    client c;
    server s;
    static char big[8192];
    client_init(&c, NULL, TLS1_2_VERSION, TLS1_3_VERSION, P.ven_ec_pem, P.ven_ec_key, NULL);
    server_init(&s, ctx);
    assert_true(handshake(&c, &s));
    s.plain.max = 4096;
    memset(big, 'a', sizeof(big));
    assert_int_equal(SSL_write(c.ssl, big, sizeof(big)), (int)sizeof(big));
    pump_once(&c, &s);
    assert_int_equal(s.rc, -ENOBUFS);
    assert_int_equal(gw_tls_feed(s.tls, "", 0, &s.plain, &s.wire), -EPROTO);
    server_free(&s);
    client_free(&c);
    gw_tls_ctx_free(&ctx);
}

/* ------------------------------------------------------------------------
 * Configuration errors name the setting and the file
 * --------------------------------------------------------------------- */

static void expect_config_error(const char *certs, const char *client_ca, const char *crl,
                                const char *protocols, const char *want1, const char *want2)
{
    char err[512] = "";
    gw_tls_ctx *ctx = (gw_tls_ctx *)1;
    gw_tls_settings st = {
        .certs = certs, .client_ca = client_ca, .crl = crl, .protocols = protocols};
    assert_int_equal(gw_tls_ctx_new(&st, &ctx, err, sizeof(err)), -EINVAL);
    assert_null(ctx);
    if (strstr(err, want1) == NULL || (want2 != NULL && strstr(err, want2) == NULL))
        fail_msg("error \"%s\" does not mention \"%s\" / \"%s\"", err, want1,
                 want2 != NULL ? want2 : "");
}

static void configuration_errors_are_explained(void **state)
{
    (void)state;
    char certs[1300], missing[300];
    path(missing, "missing.pem");

    expect_config_error("", P.ca_pem, NULL, NULL, "VTN_TLS_CERTS", NULL);
    snprintf(certs, sizeof(certs), "%s:%s", missing, P.srv_ec_key);
    expect_config_error(certs, P.ca_pem, NULL, NULL, "VTN_TLS_CERTS", missing);
    snprintf(certs, sizeof(certs), "%s:%s", P.srv_ec, P.srv_rsa_key);
    expect_config_error(certs, P.ca_pem, NULL, NULL, "does not match", P.srv_ec);
    snprintf(certs, sizeof(certs), "%s:%s,%s:%s", P.srv_ec, P.srv_ec_key, P.srv_ec, P.srv_ec_key);
    expect_config_error(certs, P.ca_pem, NULL, NULL, "second ECC certificate", NULL);
    expect_config_error(P.certs_both, "", NULL, NULL, "VTN_TLS_CLIENT_CA is required", NULL);
    expect_config_error(P.certs_both, missing, NULL, NULL, "VTN_TLS_CLIENT_CA", missing);
    expect_config_error(P.certs_both, P.ven_ec_pem, NULL, NULL, "not a CA certificate",
                        P.ven_ec_pem);
    expect_config_error(P.certs_both, P.ca_pem, P.bad_crl_pem, NULL, "VTN_TLS_CRL", "no PEM CRL");
    expect_config_error(P.certs_both, P.ca_pem, " , ", NULL, "VTN_TLS_CRL", "no CRL file");
    {
        /* a CRL whose signer is not a trusted client CA, and one CA's CRL twice */
        char other_crl[300], twice[700], e[256];
        EVP_PKEY *k = vtn_pki_keygen(VTN_KEY_EC);
        vtn_cert_spec spec = {.cn = "openvtn test client CA", .key = k, .is_ca = 1, .days = 30};
        X509 *impostor = vtn_pki_issue(&spec, NULL, k, e, sizeof(e));
        assert_non_null(impostor);
        X509_CRL *crl = vtn_pki_crl(impostor, k, NULL, 0, 1, 30, e, sizeof(e));
        assert_non_null(crl);
        path(other_crl, "impostor-crl.pem");
        assert_int_equal(vtn_pki_write_crl(other_crl, crl, 1), 0);
        /* same issuer name as the trusted CA, another key */
        expect_config_error(P.certs_both, P.ca_pem, other_crl, NULL, other_crl,
                            "not signed by any CA in VTN_TLS_CLIENT_CA");
        snprintf(twice, sizeof(twice), "%s,%s", P.crl_pem, P.crl_pem);
        expect_config_error(P.certs_both, P.ca_pem, twice, NULL, "a second CRL",
                            "openvtn test client CA");
        X509_CRL_free(crl);
        X509_free(impostor);
        EVP_PKEY_free(k);
    }
    expect_config_error(P.certs_both, P.ca_pem, NULL, "TLSv1.1", "VTN_TLS_PROTOCOLS", "TLSv1.1");
    expect_config_error(P.certs_both, P.ca_pem, NULL, " , ", "VTN_TLS_PROTOCOLS", NULL);
    {
        gw_tls_settings bad = {.certs = P.certs_both, .client_ca = P.ca_pem, .resumption = "ids"};
        gw_tls_ctx *none = (gw_tls_ctx *)1;
        char e[512] = "";
        assert_int_equal(gw_tls_ctx_new(&bad, &none, e, sizeof(e)), -EINVAL);
        assert_null(none);
        assert_non_null(strstr(e, "VTN_TLS_RESUMPTION"));
        assert_non_null(strstr(e, "\"ids\""));
    }
    {
        /* ticket key files: missing, not a key, empty, with the cache */
        char keys[300], bad[300], none[300], e[512];
        FILE *f;
        path(keys, "missing-ticket-keys");
        path(bad, "bad-ticket-keys");
        path(none, "empty-ticket-keys");
        assert_non_null(f = fopen(bad, "w"));
        fputs("# comment\n0123456789abcdef\n", f);
        fclose(f);
        assert_non_null(f = fopen(none, "w"));
        fputs("# nothing but a comment\n", f);
        fclose(f);
        const char *files[] = {keys, bad, none};
        const char *why[] = {"No such file", "line 2 is not a key", "no key"};
        for (size_t i = 0; i < 3; i++) {
            gw_tls_settings st = {
                .certs = P.certs_both, .client_ca = P.ca_pem, .ticket_keys = files[i]};
            gw_tls_ctx *x = (gw_tls_ctx *)1;
            assert_int_equal(gw_tls_ctx_new(&st, &x, e, sizeof(e)), -EINVAL);
            assert_null(x);
            if (strstr(e, "VTN_TLS_TICKET_KEYS") == NULL || strstr(e, files[i]) == NULL ||
                strstr(e, why[i]) == NULL)
                fail_msg("error \"%s\" does not name the file or say \"%s\"", e, why[i]);
        }
        gw_tls_settings st = {.certs = P.certs_both,
                              .client_ca = P.ca_pem,
                              .resumption = "cache",
                              .ticket_keys = bad};
        gw_tls_ctx *x = (gw_tls_ctx *)1;
        assert_int_equal(gw_tls_ctx_new(&st, &x, e, sizeof(e)), -EINVAL);
        assert_non_null(strstr(e, "VTN_TLS_RESUMPTION is cache"));
    }

    /* several bundles and CRLs in comma lists are fine, and so is spacing */
    char cas[1300], crls[1300];
    snprintf(cas, sizeof(cas), "%s , %s", P.ca_pem, P.other_ca_pem);
    snprintf(crls, sizeof(crls), " %s ", P.crl_pem);
    char err[512];
    gw_tls_ctx *ctx = NULL;
    gw_tls_settings st = {
        .certs = P.certs_both, .client_ca = cas, .crl = crls, .protocols = "tlsv1.3, TLSv1.2"};
    assert_int_equal(gw_tls_ctx_new(&st, &ctx, err, sizeof(err)), 0);
    assert_int_equal(gw_tls_ctx_handshake_timeout_ms(ctx), 10000); /* the default */
    gw_tls_ctx_free(&ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ecc_only_client_gets_the_ecc_certificate),
        cmocka_unit_test(rsa_only_client_gets_the_rsa_certificate),
        cmocka_unit_test(client_offering_both_suites_gets_forward_secrecy),
        cmocka_unit_test(ecc_only_client_fails_without_an_ecc_certificate),
        cmocka_unit_test(other_tls12_suites_are_refused),
        cmocka_unit_test(tls13_client_connects_when_enabled),
        cmocka_unit_test(tls13_client_refused_when_not_enabled),
        cmocka_unit_test(tls12_client_refused_when_only_tls13),
        cmocka_unit_test(no_client_certificate_is_refused),
        cmocka_unit_test(certificate_from_another_ca_is_refused),
        cmocka_unit_test(expired_certificate_is_refused),
        cmocka_unit_test(revoked_certificate_is_refused_with_a_crl),
        cmocka_unit_test(crl_out_of_its_validity_refuses_every_ven_of_its_ca),
        cmocka_unit_test(ven_of_a_ca_without_a_crl_is_refused_when_crls_are_checked),
        cmocka_unit_test(reconnecting_ven_resumes_from_a_ticket),
        cmocka_unit_test(reconnecting_ven_resumes_from_the_session_cache),
        cmocka_unit_test(resumption_off_always_runs_the_full_handshake),
        cmocka_unit_test(ticket_keys_from_a_file_resume_on_every_gateway),
        cmocka_unit_test(ticket_of_a_revoked_certificate_does_not_resume),
        cmocka_unit_test(reload_serves_the_new_certificate_and_keeps_open_connections),
        cmocka_unit_test(failed_reload_keeps_the_old_configuration),
        cmocka_unit_test(close_notify_both_ways),
        cmocka_unit_test(renegotiation_is_refused),
        cmocka_unit_test(plain_http_on_the_tls_port_fails_cleanly),
        cmocka_unit_test(plaintext_past_the_cap_is_an_error),
        cmocka_unit_test(configuration_errors_are_explained),
    };
    return cmocka_run_group_tests(tests, setup_pki, teardown_pki);
}
