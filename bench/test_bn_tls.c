/* Unit tests for vtn-bench's TLS client (bn_tls.c) against an in-process
 * OpenSSL server over memory BIOs, with a PKI made at test time: the client
 * verifies the server certificate by IP, presents the certificate a %d
 * pattern selects, resumes with --resume, and reports failures. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "vtn/pki.h"

#include "bn_internal.h"

typedef struct pki {
    char dir[256];
    char ca[300], other_ca[300]; /* PEM files */
    char mint_ca[620];           /* "ca.pem,ca.key" */
    char cert_pattern[300], key_pattern[300];
    X509 *ca_cert, *server_cert;
    EVP_PKEY *server_key;
} pki;

static pki P;

static void path(char *out, size_t len, const char *name)
{
    snprintf(out, len, "%s/%s", P.dir, name);
}

static X509 *issue(const char *cn, EVP_PKEY *key, X509 *ca, EVP_PKEY *ca_key, int is_ca,
                   const char *san)
{
    char err[256];
    vtn_cert_spec spec;
    memset(&spec, 0, sizeof spec);
    spec.cn = cn;
    spec.key = key;
    spec.is_ca = is_ca;
    spec.san = san;
    spec.days = 2;
    X509 *x = vtn_pki_issue(&spec, ca, ca_key, err, sizeof err);
    if (x == NULL)
        fprintf(stderr, "issue %s: %s\n", cn, err);
    return x;
}

static int setup_pki(void **state)
{
    (void)state;
    const char *tmp = getenv("TMPDIR");
    snprintf(P.dir, sizeof P.dir, "%s/bn-tls-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (mkdtemp(P.dir) == NULL)
        return -1;
    EVP_PKEY *ca_key = vtn_pki_keygen(VTN_KEY_EC);
    P.ca_cert = issue("bench test CA", ca_key, NULL, ca_key, 1, NULL);
    P.server_key = vtn_pki_keygen(VTN_KEY_EC);
    P.server_cert = issue("localhost", P.server_key, P.ca_cert, ca_key, 0, "IP:127.0.0.1");
    EVP_PKEY *other_key = vtn_pki_keygen(VTN_KEY_EC);
    X509 *other = issue("another CA", other_key, NULL, other_key, 1, NULL);
    if (!P.ca_cert || !P.server_cert || !other)
        return -1;
    path(P.ca, sizeof P.ca, "ca.pem");
    path(P.other_ca, sizeof P.other_ca, "other-ca.pem");
    if (vtn_pki_write_cert(P.ca, P.ca_cert, 0) || vtn_pki_write_cert(P.other_ca, other, 0))
        return -1;
    char ca_key_path[300];
    path(ca_key_path, sizeof ca_key_path, "ca.key");
    if (vtn_pki_write_key(ca_key_path, ca_key, 0))
        return -1;
    snprintf(P.mint_ca, sizeof P.mint_ca, "%s,%s", P.ca, ca_key_path);
    /* ven-0 and ven-1, with their own keys */
    for (int i = 0; i < 2; i++) {
        char cn[32], f[300];
        snprintf(cn, sizeof cn, "ven-%d", i);
        EVP_PKEY *k = vtn_pki_keygen(VTN_KEY_EC);
        X509 *x = issue(cn, k, P.ca_cert, ca_key, 0, NULL);
        snprintf(f, sizeof f, "%s/ven-%d.pem", P.dir, i);
        int rc = x ? vtn_pki_write_cert(f, x, 0) : -1;
        snprintf(f, sizeof f, "%s/ven-%d.key", P.dir, i);
        rc |= vtn_pki_write_key(f, k, 0);
        X509_free(x);
        EVP_PKEY_free(k);
        if (rc)
            return -1;
    }
    path(P.cert_pattern, sizeof P.cert_pattern, "ven-%d.pem");
    path(P.key_pattern, sizeof P.key_pattern, "ven-%d.key");
    X509_free(other);
    EVP_PKEY_free(other_key);
    EVP_PKEY_free(ca_key);
    return 0;
}

static int teardown_pki(void **state)
{
    (void)state;
    const char *files[] = {"ca.pem",    "ca.key",    "other-ca.pem", "ven-0.pem",
                           "ven-0.key", "ven-1.pem", "ven-1.key"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char f[300];
        path(f, sizeof f, files[i]);
        unlink(f);
    }
    rmdir(P.dir);
    X509_free(P.ca_cert);
    X509_free(P.server_cert);
    EVP_PKEY_free(P.server_key);
    return 0;
}

/* The VTN side: client certificate required, the OpenADR ECC suite, tickets. */
static SSL_CTX *server_ctx(int tls13)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    assert_non_null(ctx);
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_max_proto_version(ctx, tls13 ? TLS1_3_VERSION : TLS1_2_VERSION);
    assert_int_equal(SSL_CTX_set_cipher_list(ctx, "ECDHE-ECDSA-AES128-SHA256"), 1);
    assert_int_equal(SSL_CTX_use_certificate(ctx, P.server_cert), 1);
    assert_int_equal(SSL_CTX_use_PrivateKey(ctx, P.server_key), 1);
    assert_int_equal(X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx), P.ca_cert), 1);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"bn", 2);
    return ctx;
}

typedef struct server {
    SSL *ssl;
    BIO *rbio, *wbio;
} server;

static void server_new(server *s, SSL_CTX *ctx)
{
    s->ssl = SSL_new(ctx);
    s->rbio = BIO_new(BIO_s_mem());
    s->wbio = BIO_new(BIO_s_mem());
    BIO_set_mem_eof_return(s->rbio, -1);
    SSL_set_bio(s->ssl, s->rbio, s->wbio);
    SSL_set_accept_state(s->ssl);
}

/* Moves bytes both ways and lets the server's handshake go on, as the
 * socket would. Application data stays for the test to read. */
static void pump(bn_tls *c, server *s)
{
    const char *p;
    size_t n = bn_tls_wire(c, &p);
    if (n) {
        assert_int_equal(BIO_write(s->rbio, p, (int)n), (int)n);
        bn_tls_wire_clear(c);
    }
    if (!SSL_is_init_finished(s->ssl))
        (void)SSL_do_handshake(s->ssl);
    ERR_clear_error();
    char *d;
    long m = BIO_get_mem_data(s->wbio, &d);
    if (m > 0) {
        assert_int_equal(bn_tls_feed(c, d, (size_t)m), 0);
        (void)BIO_reset(s->wbio);
    }
}

/* Runs the handshake to its end; returns bn_tls_handshake's last answer. */
static int handshake(bn_tls *c, server *s)
{
    int rc = 0;
    for (int i = 0; i < 20 && rc == 0; i++) {
        rc = bn_tls_handshake(c);
        pump(c, s);
    }
    if (rc < 0)
        return rc;
    /* TLS 1.3: the server finishes after our Finished and then sends a ticket */
    for (int i = 0; i < 3; i++) {
        char buf[64];
        pump(c, s);
        (void)bn_tls_read(c, buf, sizeof buf);
    }
    return rc;
}

static void default_opts(bn_tls_opts *o)
{
    memset(o, 0, sizeof *o);
    o->cert = P.cert_pattern;
    o->key = P.key_pattern;
    o->ca = P.ca;
    snprintf(o->verify_ip, sizeof o->verify_ip, "127.0.0.1");
}

static void pattern_expands_first_placeholder(void **state)
{
    (void)state;
    char out[64];
    assert_int_equal(bn_tls_path_expand("pki/vens/bench-%d.pem", 42, out, sizeof out), 0);
    assert_string_equal(out, "pki/vens/bench-42.pem");
    assert_int_equal(bn_tls_path_expand("ven.pem", 7, out, sizeof out), 0);
    assert_string_equal(out, "ven.pem");
    assert_int_equal(bn_tls_path_expand("a-%d-%d", 3, out, sizeof out), 0);
    assert_string_equal(out, "a-3-%d");
    assert_int_equal(bn_tls_path_expand("0123456789-%d", 123456, out, 12), -ENAMETOOLONG);
    assert_true(bn_tls_path_is_pattern("x-%d.pem"));
    assert_false(bn_tls_path_is_pattern("x.pem"));
    assert_false(bn_tls_path_is_pattern(NULL));
}

/* Mutual TLS 1.2 with the OpenADR ECC suite: the certificate of index i goes
 * out, data flows both ways, close_notify ends the stream. */
static void mutual_tls12_with_pattern_certificates(void **state)
{
    (void)state;
    char err[256];
    bn_tls_opts o;
    default_opts(&o);
    bn_tls_ctx *ctx = NULL;
    assert_int_equal(bn_tls_ctx_new(&o, 2, &ctx, err, sizeof err), 0);
    SSL_CTX *sctx = server_ctx(0);
    for (uint32_t i = 0; i < 3; i++) {
        server s;
        bn_tls *c = NULL;
        server_new(&s, sctx);
        assert_int_equal(bn_tls_new(ctx, i, NULL, &c), 0);
        assert_int_equal(handshake(c, &s), 1);
        assert_false(bn_tls_is_tls13(c));
        assert_false(bn_tls_resumed(c));
        char desc[160], want[16];
        bn_tls_describe(c, desc, sizeof desc);
        assert_non_null(strstr(desc, "TLSv1.2 ECDHE-ECDSA-AES128-SHA256"));
        assert_non_null(strstr(desc, "server key ECC"));
        /* index 2 wraps to certificate 0: two were loaded */
        X509 *peer = SSL_get0_peer_certificate(s.ssl);
        assert_non_null(peer);
        char cn[32] = "";
        X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, cn, sizeof cn);
        snprintf(want, sizeof want, "ven-%u", (unsigned)(i % 2));
        assert_string_equal(cn, want);

        assert_int_equal(bn_tls_write(c, "ping", 4), 0);
        pump(c, &s);
        char buf[16];
        assert_int_equal(SSL_read(s.ssl, buf, sizeof buf), 4);
        assert_memory_equal(buf, "ping", 4);
        assert_int_equal(SSL_write(s.ssl, "pong!", 5), 5);
        pump(c, &s);
        assert_int_equal(bn_tls_read(c, buf, sizeof buf), 5);
        assert_memory_equal(buf, "pong!", 5);
        assert_int_equal(bn_tls_read(c, buf, sizeof buf), 0); /* nothing more yet */
        /* a one-byte record is one byte, not the end of the connection */
        assert_int_equal(SSL_write(s.ssl, "!", 1), 1);
        pump(c, &s);
        assert_int_equal(bn_tls_read(c, buf, sizeof buf), 1);
        assert_int_equal(buf[0], '!');
        (void)SSL_shutdown(s.ssl);
        pump(c, &s);
        assert_int_equal(bn_tls_read(c, buf, sizeof buf), BN_TLS_CLOSED);
        bn_tls_free(&c);
        assert_null(c);
        SSL_free(s.ssl);
    }
    SSL_CTX_free(sctx);
    bn_tls_ctx_free(&ctx);
    assert_null(ctx);
}

/* With --resume the second connection on a slot resumes from the ticket of
 * the first, in TLS 1.2 and 1.3; without it, every handshake is full. */
static void resume_with_tickets(void **state)
{
    (void)state;
    char err[256];
    for (int tls13 = 0; tls13 <= 1; tls13++) {
        for (int resume = 0; resume <= 1; resume++) {
            bn_tls_opts o;
            default_opts(&o);
            o.tls13 = tls13;
            o.resume = resume;
            bn_tls_ctx *ctx = NULL;
            assert_int_equal(bn_tls_ctx_new(&o, 2, &ctx, err, sizeof err), 0);
            SSL_CTX *sctx = server_ctx(1);
            bn_tls_session *slot = NULL;
            for (int round = 0; round < 3; round++) {
                server s;
                bn_tls *c = NULL;
                server_new(&s, sctx);
                assert_int_equal(bn_tls_new(ctx, 1, &slot, &c), 0);
                assert_int_equal(handshake(c, &s), 1);
                assert_int_equal(bn_tls_is_tls13(c), tls13);
                int resumed = resume && round > 0;
                assert_int_equal(bn_tls_resumed(c), resumed);
                /* the server issued a ticket, except on a resumed TLS 1.2 session, where
                 * the old ticket stays good */
                assert_int_equal(bn_tls_sessions(c) >= 1, tls13 || !resumed);
                assert_int_equal(SSL_session_reused(s.ssl), resumed);
                /* a VEN ends its connection with close_notify */
                bn_tls_shutdown(c);
                bn_tls_free(&c);
                SSL_free(s.ssl);
            }
            if (resume)
                assert_non_null(slot);
            else
                assert_null(slot);
            bn_tls_session_free(&slot);
            assert_null(slot);
            SSL_CTX_free(sctx);
            bn_tls_ctx_free(&ctx);
        }
    }
}

/* A gateway restart: the connection ends without our close_notify (the
 * server hung up, with or without its own), and a new server that shares the
 * ticket keys (VTN_TLS_TICKET_KEYS) must still resume the VEN's session. */
static void resume_after_unclean_end_and_restart(void **state)
{
    (void)state;
    char err[256];
    unsigned char keys[80];
    memset(keys, 0x5a, sizeof keys);
    for (int tls13 = 0; tls13 <= 1; tls13++) {
        for (int server_notify = 0; server_notify <= 1; server_notify++) {
            bn_tls_opts o;
            default_opts(&o);
            o.tls13 = tls13;
            o.resume = 1;
            bn_tls_ctx *ctx = NULL;
            assert_int_equal(bn_tls_ctx_new(&o, 2, &ctx, err, sizeof err), 0);
            bn_tls_session *slot = NULL;
            for (int round = 0; round < 3; round++) {
                SSL_CTX *sctx = server_ctx(1); /* a new gateway process each round */
                assert_int_equal(SSL_CTX_set_tlsext_ticket_keys(sctx, keys, sizeof keys), 1);
                server s;
                bn_tls *c = NULL;
                server_new(&s, sctx);
                assert_int_equal(bn_tls_new(ctx, 1, &slot, &c), 0);
                assert_int_equal(handshake(c, &s), 1);
                assert_int_equal(bn_tls_resumed(c), round > 0);
                if (server_notify) {
                    char buf[16];
                    (void)SSL_shutdown(s.ssl);
                    pump(c, &s);
                    assert_int_equal(bn_tls_read(c, buf, sizeof buf), BN_TLS_CLOSED);
                }
                bn_tls_free(&c); /* no close_notify of ours: the socket is gone */
                SSL_free(s.ssl);
                SSL_CTX_free(sctx);
            }
            bn_tls_session_free(&slot);
            bn_tls_ctx_free(&ctx);
        }
    }
}

/* --mint-ca: every index gets a certificate of its own from the CA, with the
 * VEN profile, and the server accepts it as it accepts vtnctl's. */
static void minted_certificates_are_own_and_accepted(void **state)
{
    (void)state;
    char err[256];
    bn_tls_opts o;
    default_opts(&o);
    o.cert = o.key = NULL;
    o.mint_ca = P.mint_ca;
    bn_tls_ctx *ctx = NULL;
    assert_int_equal(bn_tls_ctx_new(&o, 3, &ctx, err, sizeof err), 0);
    assert_true(bn_tls_ctx_mint_seconds(ctx) > 0);
    SSL_CTX *sctx = server_ctx(0);
    unsigned char fp[3][EVP_MAX_MD_SIZE];
    for (uint32_t i = 0; i < 3; i++) {
        server s;
        bn_tls *c = NULL;
        server_new(&s, sctx);
        assert_int_equal(bn_tls_new(ctx, i, NULL, &c), 0);
        assert_int_equal(handshake(c, &s), 1);
        assert_int_equal(SSL_get_verify_result(s.ssl), X509_V_OK);
        X509 *peer = SSL_get0_peer_certificate(s.ssl);
        assert_non_null(peer);
        char cn[32] = "", want[32];
        X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, cn, sizeof cn);
        snprintf(want, sizeof want, "bench-ven-%u", (unsigned)i);
        assert_string_equal(cn, want);
        assert_true(vtn_pki_issued_by(peer, P.ca_cert));
        assert_true(X509_get_extended_key_usage(peer) & XKU_SSL_CLIENT);
        assert_false(X509_check_ca(peer));
        EVP_PKEY *pk = X509_get0_pubkey(peer);
        assert_int_equal(EVP_PKEY_get_base_id(pk), EVP_PKEY_EC);
        assert_int_equal(EVP_PKEY_get_bits(pk), 256);
        unsigned n = 0;
        assert_int_equal(X509_digest(peer, EVP_sha256(), fp[i], &n), 1);
        for (uint32_t j = 0; j < i; j++)
            assert_memory_not_equal(fp[i], fp[j], n);
        bn_tls_free(&c);
        SSL_free(s.ssl);
    }
    SSL_CTX_free(sctx);
    bn_tls_ctx_free(&ctx);

    /* the CA's files as one flag, and not with --cert */
    o.mint_ca = P.ca;
    assert_int_equal(bn_tls_ctx_new(&o, 1, &ctx, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "CERT.pem,KEY.pem"));
    char bad[700];
    snprintf(bad, sizeof bad, "%s,%s", P.ca, P.ca); /* a certificate for the key */
    o.mint_ca = bad;
    assert_int_equal(bn_tls_ctx_new(&o, 1, &ctx, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "--mint-ca"));
    default_opts(&o);
    o.mint_ca = P.mint_ca;
    assert_int_equal(bn_tls_ctx_new(&o, 1, &ctx, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "not with --cert"));
    assert_null(ctx);
}

static int failed_handshake(const bn_tls_opts *o, char *reason, size_t len)
{
    char err[256];
    bn_tls_ctx *ctx = NULL;
    assert_int_equal(bn_tls_ctx_new(o, 1, &ctx, err, sizeof err), 0);
    SSL_CTX *sctx = server_ctx(0);
    server s;
    bn_tls *c = NULL;
    server_new(&s, sctx);
    assert_int_equal(bn_tls_new(ctx, 0, NULL, &c), 0);
    int rc = handshake(c, &s);
    snprintf(reason, len, "%s", bn_tls_error(c));
    bn_tls_free(&c);
    SSL_free(s.ssl);
    SSL_CTX_free(sctx);
    bn_tls_ctx_free(&ctx);
    return rc;
}

/* The server certificate must come from --ca and name the target's address;
 * --insecure skips the check. */
static void server_certificate_is_verified(void **state)
{
    (void)state;
    char reason[256];
    bn_tls_opts o;
    default_opts(&o);
    snprintf(o.verify_ip, sizeof o.verify_ip, "127.0.0.2");
    assert_int_equal(failed_handshake(&o, reason, sizeof reason), -EPROTO);
    assert_non_null(strstr(reason, "server certificate"));
    assert_non_null(strstr(reason, "IP address mismatch"));

    default_opts(&o);
    o.ca = P.other_ca;
    assert_int_equal(failed_handshake(&o, reason, sizeof reason), -EPROTO);
    assert_non_null(strstr(reason, "server certificate"));

    o.insecure = 1;
    assert_int_equal(failed_handshake(&o, reason, sizeof reason), 1);
    assert_string_equal(reason, "");
}

/* A server that wants a client certificate refuses a client without one, and
 * a TLS 1.3-only client cannot talk to a TLS 1.2 server. */
static void refused_handshakes_report_a_reason(void **state)
{
    (void)state;
    char reason[256];
    bn_tls_opts o;
    default_opts(&o);
    o.cert = o.key = NULL;
    assert_int_equal(failed_handshake(&o, reason, sizeof reason), -EPROTO);
    assert_non_null(strstr(reason, "handshake"));
    assert_non_null(strstr(reason, "alert"));

    default_opts(&o);
    o.tls13 = 1;
    assert_int_equal(failed_handshake(&o, reason, sizeof reason), -EPROTO);
    assert_true(strlen(reason) > strlen("handshake: "));
}

static void bad_settings_name_the_flag(void **state)
{
    (void)state;
    char err[256];
    bn_tls_ctx *ctx = NULL;
    bn_tls_opts o;

    default_opts(&o);
    o.ca = NULL;
    assert_int_equal(bn_tls_ctx_new(&o, 1, &ctx, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "--ca"));
    assert_null(ctx);

    default_opts(&o);
    o.key = NULL;
    assert_int_equal(bn_tls_ctx_new(&o, 1, &ctx, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "--cert and --key"));

    default_opts(&o);
    assert_int_equal(bn_tls_ctx_new(&o, 3, &ctx, err, sizeof err), -EINVAL); /* no ven-2.pem */
    assert_non_null(strstr(err, "ven-2.pem"));

    default_opts(&o);
    o.key = P.ca; /* a certificate, not a key */
    o.cert = P.ca;
    assert_int_equal(bn_tls_ctx_new(&o, 1, &ctx, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "--key"));

    default_opts(&o);
    o.ciphers = "NO-SUCH-SUITE";
    assert_int_equal(bn_tls_ctx_new(&o, 1, &ctx, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "--ciphers"));

    default_opts(&o);
    o.no_tickets = 1;
    o.tls13 = 1; /* a TLS 1.3 client cannot stop the server's tickets */
    assert_int_equal(bn_tls_ctx_new(&o, 1, &ctx, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "--no-tickets"));

    default_opts(&o);
    o.groups = "P-999";
    assert_int_equal(bn_tls_ctx_new(&o, 1, &ctx, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "--groups"));
    assert_null(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pattern_expands_first_placeholder),
        cmocka_unit_test(mutual_tls12_with_pattern_certificates),
        cmocka_unit_test(resume_with_tickets),
        cmocka_unit_test(resume_after_unclean_end_and_restart),
        cmocka_unit_test(minted_certificates_are_own_and_accepted),
        cmocka_unit_test(server_certificate_is_verified),
        cmocka_unit_test(refused_handshakes_report_a_reason),
        cmocka_unit_test(bad_settings_name_the_flag),
    };
    return cmocka_run_group_tests(tests, setup_pki, teardown_pki);
}
