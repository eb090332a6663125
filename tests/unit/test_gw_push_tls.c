/* The push client's TLS engine (gateway/push_tls.h) against the gateway's
 * own server engine (gateway/tls.h) playing a push-mode VEN's HTTPS
 * endpoint, entirely in memory: the handshake both ways (each side sees the
 * other's fingerprint), TLS 1.2 suites and TLS 1.3, and the reasons a push
 * fails (VEN certificate from an untrusted CA, expired, hostname or IP
 * mismatch; the VEN refusing our certificate), reload, and settings errors
 * that name the file. Certificates are made at test time (vtn/pki.h) in a
 * temporary directory, removed afterwards. */
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
#include <unistd.h>

#include <cmocka.h>

#include <openssl/ssl.h>

#include "push_tls.h"
#include "testpki.h"
#include "tls.h"
#include "vtn/buf.h"
#include "vtn/fingerprint.h"
#include "vtn/pki.h"

#define BUF_MAX (1 << 20)
#define PLEN 300

static struct pki {
    char dir[256];
    /* the VTN's CA and its push client certificates */
    char vtn_ca[PLEN], vtn_ec[PLEN], vtn_ec_key[PLEN], vtn_rsa[PLEN], vtn_rsa_key[PLEN];
    char vtn_both[PLEN]; /* certificate and key in one file */
    /* the CA of VEN server certificates, and a VEN's (localhost, 127.0.0.1) */
    char ven_ca[PLEN], ven_ec[PLEN], ven_ec_key[PLEN], ven_rsa[PLEN], ven_rsa_key[PLEN];
    char ven_expired[PLEN], ven_expired_key[PLEN];
    /* a CA nobody trusts, and a client certificate from it */
    char other_ca[PLEN], rogue[PLEN], rogue_key[PLEN];
    char not_pem[PLEN], switch_ca[PLEN];
    char fp_vtn_ec[VTN_FINGERPRINT_SIZE], fp_vtn_rsa[VTN_FINGERPRINT_SIZE];
    char fp_ven_ec[VTN_FINGERPRINT_SIZE], fp_ven_rsa[VTN_FINGERPRINT_SIZE];
} P;

static void path(char *out, const char *name)
{
    snprintf(out, PLEN, "%s/%s", P.dir, name);
}

static void write_file(const char *p, const char *text)
{
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static char *read_all(const char *p)
{
    FILE *f = fopen(p, "r");
    static char buf[3][16384];
    static int i;
    char *b = buf[i++ % 3];
    size_t n;
    assert_non_null(f);
    n = fread(b, 1, sizeof(buf[0]) - 1, f);
    b[n] = '\0';
    fclose(f);
    return b;
}

static void copy_file(const char *from, const char *to)
{
    char tmp[PLEN + 8];
    snprintf(tmp, sizeof(tmp), "%s.tmp", to);
    write_file(tmp, read_all(from));
    assert_int_equal(rename(tmp, to), 0); /* a reload never sees half a file */
}

/* A leaf signed by ca/ca_key; writes cert and key, returns the fingerprint. */
static void issue(const char *cert_path, const char *key_path, const char *cn, vtn_key_type kt,
                  X509 *ca, EVP_PKEY *ca_key, const char *san, time_t nb, time_t na,
                  char fp[VTN_FINGERPRINT_SIZE])
{
    char ignored[VTN_FINGERPRINT_SIZE];
    X509 *x = testpki_leaf(cert_path, key_path, cn, kt, ca, ca_key, san, nb, na, 0);
    assert_int_equal(vtn_fingerprint_x509(x, fp != NULL ? fp : ignored), 0);
    X509_free(x);
}

static int setup_pki(void **state)
{
    (void)state;
    const char *san = "DNS:localhost,IP:127.0.0.1";
    time_t now = time(NULL);
    EVP_PKEY *vtn_k, *ven_k, *other_k;
    char both[40000];

    testpki_mkdtemp(P.dir, sizeof(P.dir), "vtn-test-push");
    path(P.vtn_ca, "vtn-ca.pem");
    path(P.vtn_ec, "vtn-ec.pem");
    path(P.vtn_ec_key, "vtn-ec.key");
    path(P.vtn_rsa, "vtn-rsa.pem");
    path(P.vtn_rsa_key, "vtn-rsa.key");
    path(P.vtn_both, "vtn-both.pem");
    path(P.ven_ca, "ven-ca.pem");
    path(P.ven_ec, "ven-ec.pem");
    path(P.ven_ec_key, "ven-ec.key");
    path(P.ven_rsa, "ven-rsa.pem");
    path(P.ven_rsa_key, "ven-rsa.key");
    path(P.ven_expired, "ven-expired.pem");
    path(P.ven_expired_key, "ven-expired.key");
    path(P.other_ca, "other-ca.pem");
    path(P.rogue, "rogue.pem");
    path(P.rogue_key, "rogue.key");
    path(P.not_pem, "not-pem.txt");
    path(P.switch_ca, "switch-ca.pem");

    X509 *vtn_ca = testpki_ca(P.vtn_ca, "VTN push CA", &vtn_k);
    X509 *ven_ca = testpki_ca(P.ven_ca, "VEN server CA", &ven_k);
    X509 *other_ca = testpki_ca(P.other_ca, "some other CA", &other_k);
    issue(P.vtn_ec, P.vtn_ec_key, "vtn-push-ecc", VTN_KEY_EC, vtn_ca, vtn_k, NULL, 0, 0,
          P.fp_vtn_ec);
    issue(P.vtn_rsa, P.vtn_rsa_key, "vtn-push-rsa", VTN_KEY_RSA, vtn_ca, vtn_k, NULL, 0, 0,
          P.fp_vtn_rsa);
    issue(P.ven_ec, P.ven_ec_key, "ven-1", VTN_KEY_EC, ven_ca, ven_k, san, 0, 0, P.fp_ven_ec);
    issue(P.ven_rsa, P.ven_rsa_key, "ven-1-rsa", VTN_KEY_RSA, ven_ca, ven_k, san, 0, 0,
          P.fp_ven_rsa);
    issue(P.ven_expired, P.ven_expired_key, "ven-expired", VTN_KEY_EC, ven_ca, ven_k, san,
          now - 10 * 86400, now - 86400, NULL);
    issue(P.rogue, P.rogue_key, "vtn-rogue", VTN_KEY_EC, other_ca, other_k, NULL, 0, 0, NULL);
    snprintf(both, sizeof(both), "%s%s", read_all(P.vtn_ec), read_all(P.vtn_ec_key));
    write_file(P.vtn_both, both);
    write_file(P.not_pem, "this is not PEM\n");
    X509_free(vtn_ca);
    X509_free(ven_ca);
    X509_free(other_ca);
    EVP_PKEY_free(vtn_k);
    EVP_PKEY_free(ven_k);
    EVP_PKEY_free(other_k);
    return 0;
}

static int teardown_pki(void **state)
{
    (void)state;
    testpki_rmdir(P.dir);
    return 0;
}

/* ------------------------------------------------------------------------
 * The VTN pushing (gw_push_tls) to a VEN (the gateway's server engine)
 * --------------------------------------------------------------------- */

static gw_push_tls_ctx *push_ctx(const char *cert, const char *ca, const char *protocols)
{
    char err[512];
    gw_push_tls_ctx *ctx = NULL;
    gw_push_tls_settings s = {.cert = cert, .ca = ca, .protocols = protocols, .timeout_ms = 0};
    int rc = gw_push_tls_ctx_new(&s, &ctx, err, sizeof(err));
    if (rc != 0)
        fail_msg("gw_push_tls_ctx_new: %d %s", rc, err);
    assert_int_equal(gw_push_tls_ctx_timeout_ms(ctx), 10000); /* the default */
    return ctx;
}

/* A VEN's HTTPS endpoint that trusts client_ca. */
static gw_tls_ctx *ven_ctx(const char *certs, const char *client_ca, const char *protocols)
{
    char err[512];
    gw_tls_ctx *ctx = NULL;
    gw_tls_settings s = {.certs = certs, .client_ca = client_ca, .protocols = protocols};
    int rc = gw_tls_ctx_new(&s, &ctx, err, sizeof(err));
    if (rc != 0)
        fail_msg("gw_tls_ctx_new: %d %s", rc, err);
    return ctx;
}

typedef struct push_link {
    gw_push_tls *vtn;
    gw_tls *ven;
    vtn_buf vtn_plain, vtn_wire, ven_plain, ven_wire;
    int vtn_rc, ven_rc;
} push_link;

static void pump(push_link *l)
{
    for (int round = 0; round < 50; round++) {
        int moved = 0;
        if (l->vtn_wire.len > 0) {
            moved = 1;
            if (l->ven_rc >= 0)
                l->ven_rc = gw_tls_feed(l->ven, l->vtn_wire.data, l->vtn_wire.len, &l->ven_plain,
                                        &l->ven_wire);
            vtn_buf_reset(&l->vtn_wire);
        }
        if (l->ven_wire.len > 0) {
            moved = 1;
            if (l->vtn_rc >= 0)
                l->vtn_rc = gw_push_tls_feed(l->vtn, l->ven_wire.data, l->ven_wire.len,
                                             &l->vtn_plain, &l->vtn_wire);
            vtn_buf_reset(&l->ven_wire);
        }
        if (!moved)
            break;
    }
}

/* Starts a push to host and runs the handshake as far as it goes. */
static void connect_link(push_link *l, gw_push_tls_ctx *pc, gw_tls_ctx *vc, const char *host)
{
    memset(l, 0, sizeof(*l));
    assert_int_equal(gw_push_tls_new(pc, host, &l->vtn), 0);
    assert_int_equal(gw_tls_new(vc, &l->ven), 0);
    vtn_buf_init(&l->vtn_plain, BUF_MAX);
    vtn_buf_init(&l->vtn_wire, BUF_MAX);
    vtn_buf_init(&l->ven_plain, BUF_MAX);
    vtn_buf_init(&l->ven_wire, BUF_MAX);
    l->vtn_rc = gw_push_tls_feed(l->vtn, NULL, 0, &l->vtn_plain, &l->vtn_wire);
    assert_int_equal(l->vtn_rc, 0);
    assert_true(l->vtn_wire.len > 0); /* the ClientHello */
    assert_false(gw_push_tls_handshake_done(l->vtn));
    pump(l);
}

static void link_free(push_link *l)
{
    gw_push_tls_free(&l->vtn);
    assert_null(l->vtn);
    gw_tls_free(&l->ven);
    vtn_buf_free(&l->vtn_plain);
    vtn_buf_free(&l->vtn_wire);
    vtn_buf_free(&l->ven_plain);
    vtn_buf_free(&l->ven_wire);
}

static void expect_ok(push_link *l, const char *want_vtn_fp, const char *want_ven_fp)
{
    if (l->vtn_rc != 0 || l->ven_rc != 0)
        fail_msg("push failed: vtn %d \"%s\", ven %d \"%s\"", l->vtn_rc, gw_push_tls_error(l->vtn),
                 l->ven_rc, gw_tls_error(l->ven));
    assert_true(gw_push_tls_handshake_done(l->vtn));
    assert_true(gw_push_tls_peer_verified(l->vtn));
    assert_true(gw_push_tls_peer_accepted(l->vtn));
    assert_true(gw_tls_handshake_done(l->ven));
    assert_string_equal(gw_push_tls_error(l->vtn), "");
    /* each side knows the other by its OpenADR fingerprint */
    assert_true(vtn_fingerprint_equal(gw_tls_fingerprint(l->ven), want_vtn_fp));
    assert_true(vtn_fingerprint_equal(gw_push_tls_fingerprint(l->vtn), want_ven_fp));
}

/* A push request and the VEN's answer, then close_notify. */
static void exchange(push_link *l)
{
    const char *req = "POST /OpenADR2/Simple/2.0b/EiEvent HTTP/1.1\r\nHost: localhost\r\n\r\n";
    const char *rep = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";

    assert_int_equal(gw_push_tls_write(l->vtn, req, strlen(req), &l->vtn_wire), 0);
    pump(l);
    assert_int_equal(l->ven_rc, 0);
    assert_int_equal(l->ven_plain.len, strlen(req));
    assert_memory_equal(l->ven_plain.data, req, strlen(req));
    assert_int_equal(gw_tls_write(l->ven, rep, strlen(rep), &l->ven_wire), 0);
    pump(l);
    assert_int_equal(l->vtn_rc, 0);
    assert_int_equal(l->vtn_plain.len, strlen(rep));
    assert_memory_equal(l->vtn_plain.data, rep, strlen(rep));
    assert_int_equal(gw_push_tls_shutdown(l->vtn, &l->vtn_wire), 0);
    pump(l);
    assert_int_equal(l->ven_rc, GW_TLS_EOF);
}

static void push_over_tls12_with_ecc(void **state)
{
    (void)state;
    char theirs[2 * PLEN + 2];
    snprintf(theirs, sizeof(theirs), "%s:%s", P.ven_ec, P.ven_ec_key);
    gw_push_tls_ctx *pc = push_ctx(P.vtn_both, P.ven_ca, NULL); /* cert and key in one file */
    gw_tls_ctx *vc = ven_ctx(theirs, P.vtn_ca, NULL);
    push_link l;

    connect_link(&l, pc, vc, "localhost");
    expect_ok(&l, P.fp_vtn_ec, P.fp_ven_ec);
    assert_string_equal(gw_push_tls_version(l.vtn), "TLSv1.2"); /* the default */
    assert_string_equal(gw_push_tls_cipher(l.vtn), "ECDHE-ECDSA-AES128-SHA256");
    assert_string_equal(gw_push_tls_subject(l.vtn), "CN=ven-1");
    exchange(&l);
    link_free(&l);
    gw_push_tls_ctx_free(&pc);
    assert_null(pc);
    gw_tls_ctx_free(&vc);
}

static void push_to_an_rsa_ven_with_both_of_our_certificates(void **state)
{
    (void)state;
    char mine[4 * PLEN], theirs[2 * PLEN + 2];
    snprintf(mine, sizeof(mine), "%s:%s,%s:%s", P.vtn_rsa, P.vtn_rsa_key, P.vtn_ec, P.vtn_ec_key);
    snprintf(theirs, sizeof(theirs), "%s:%s", P.ven_rsa, P.ven_rsa_key);
    gw_push_tls_ctx *pc = push_ctx(mine, P.ven_ca, "TLSv1.2");
    gw_tls_ctx *vc = ven_ctx(theirs, P.vtn_ca, "TLSv1.2");
    push_link l;

    connect_link(&l, pc, vc, "localhost");
    /* a VEN that accepts either gets the ECC one */
    expect_ok(&l, P.fp_vtn_ec, P.fp_ven_rsa);
    assert_string_equal(gw_push_tls_cipher(l.vtn), "AES128-SHA256"); /* RSA server key */
    exchange(&l);
    link_free(&l);

    /* the RSA one alone works too */
    gw_push_tls_ctx_free(&pc);
    snprintf(mine, sizeof(mine), "%s:%s", P.vtn_rsa, P.vtn_rsa_key);
    pc = push_ctx(mine, P.ven_ca, "TLSv1.2");
    connect_link(&l, pc, vc, "localhost");
    expect_ok(&l, P.fp_vtn_rsa, P.fp_ven_rsa);
    link_free(&l);
    gw_push_tls_ctx_free(&pc);
    gw_tls_ctx_free(&vc);
}

static void push_over_tls13_when_enabled(void **state)
{
    (void)state;
    char mine[2 * PLEN + 2], theirs[2 * PLEN + 2];
    snprintf(mine, sizeof(mine), "%s:%s", P.vtn_ec, P.vtn_ec_key);
    snprintf(theirs, sizeof(theirs), "%s:%s", P.ven_ec, P.ven_ec_key);
    gw_push_tls_ctx *pc = push_ctx(mine, P.ven_ca, "TLSv1.2,TLSv1.3");
    gw_tls_ctx *vc = ven_ctx(theirs, P.vtn_ca, "TLSv1.2,TLSv1.3");
    gw_tls_ctx *vc12 = ven_ctx(theirs, P.vtn_ca, "TLSv1.2");
    gw_push_tls_ctx *pc12 = push_ctx(mine, P.ven_ca, "TLSv1.2");
    push_link l;

    connect_link(&l, pc, vc, "localhost");
    /* accepted: the VEN's session ticket came after it checked our certificate */
    expect_ok(&l, P.fp_vtn_ec, P.fp_ven_ec);
    assert_string_equal(gw_push_tls_version(l.vtn), "TLSv1.3");
    exchange(&l);
    link_free(&l);

    /* TLS 1.3 enabled, a TLS 1.2 VEN: 1.2 */
    connect_link(&l, pc, vc12, "localhost");
    expect_ok(&l, P.fp_vtn_ec, P.fp_ven_ec);
    assert_string_equal(gw_push_tls_version(l.vtn), "TLSv1.2");
    link_free(&l);

    /* the default offers TLS 1.2 only, even to a VEN that could do 1.3 */
    connect_link(&l, pc12, vc, "localhost");
    expect_ok(&l, P.fp_vtn_ec, P.fp_ven_ec);
    assert_string_equal(gw_push_tls_version(l.vtn), "TLSv1.2");
    link_free(&l);
    gw_push_tls_ctx_free(&pc);
    gw_push_tls_ctx_free(&pc12);
    gw_tls_ctx_free(&vc);
    gw_tls_ctx_free(&vc12);
}

static void expect_refused(gw_push_tls_ctx *pc, gw_tls_ctx *vc, const char *host,
                           const char *want_error)
{
    push_link l;
    connect_link(&l, pc, vc, host);
    assert_int_equal(l.vtn_rc, -EPROTO);
    assert_false(gw_push_tls_handshake_done(l.vtn));
    assert_false(gw_push_tls_peer_accepted(l.vtn));
    if (strstr(gw_push_tls_error(l.vtn), want_error) == NULL)
        fail_msg("expected \"%s\" in \"%s\"", want_error, gw_push_tls_error(l.vtn));
    /* later calls fail too */
    assert_int_equal(gw_push_tls_feed(l.vtn, NULL, 0, &l.vtn_plain, &l.vtn_wire), -EPROTO);
    assert_int_equal(gw_push_tls_write(l.vtn, "x", 1, &l.vtn_wire), -EPROTO);
    link_free(&l);
}

static void ven_certificate_problems_are_named(void **state)
{
    (void)state;
    char mine[2 * PLEN + 2], theirs[2 * PLEN + 2], expired[2 * PLEN + 2];
    snprintf(mine, sizeof(mine), "%s:%s", P.vtn_ec, P.vtn_ec_key);
    snprintf(theirs, sizeof(theirs), "%s:%s", P.ven_ec, P.ven_ec_key);
    snprintf(expired, sizeof(expired), "%s:%s", P.ven_expired, P.ven_expired_key);
    gw_push_tls_ctx *pc = push_ctx(mine, P.ven_ca, "TLSv1.2,TLSv1.3");
    gw_push_tls_ctx *wrong_ca = push_ctx(mine, P.other_ca, NULL);
    gw_tls_ctx *vc = ven_ctx(theirs, P.vtn_ca, NULL);
    gw_tls_ctx *vc_expired = ven_ctx(expired, P.vtn_ca, NULL);
    push_link l;

    expect_refused(wrong_ca, vc, "localhost",
                   "VEN server certificate rejected: unable to get local issuer certificate "
                   "(depth 0, subject CN=ven-1)");
    expect_refused(pc, vc, "ven.example",
                   "VEN server certificate rejected: hostname mismatch for ven.example (depth 0, "
                   "subject CN=ven-1)");
    expect_refused(pc, vc, "127.0.0.2",
                   "VEN server certificate rejected: IP address mismatch for 127.0.0.2");
    expect_refused(pc, vc_expired, "localhost",
                   "VEN server certificate rejected: certificate has expired (depth 0, subject "
                   "CN=ven-expired)");

    /* a rejected certificate is still named, never trusted */
    connect_link(&l, wrong_ca, vc, "localhost");
    assert_false(gw_push_tls_peer_verified(l.vtn));
    assert_true(vtn_fingerprint_equal(gw_push_tls_fingerprint(l.vtn), P.fp_ven_ec));
    link_free(&l);

    /* an IP literal in the certificate's subjectAltName matches (no SNI sent) */
    connect_link(&l, pc, vc, "127.0.0.1");
    expect_ok(&l, P.fp_vtn_ec, P.fp_ven_ec);
    link_free(&l);

    gw_push_tls_ctx_free(&pc);
    gw_push_tls_ctx_free(&wrong_ca);
    gw_tls_ctx_free(&vc);
    gw_tls_ctx_free(&vc_expired);
}

static void ven_refusing_our_certificate_is_named(void **state)
{
    (void)state;
    static const char *const protos[] = {"TLSv1.2", "TLSv1.3"};
    char rogue[2 * PLEN + 2], theirs[2 * PLEN + 2];
    snprintf(rogue, sizeof(rogue), "%s:%s", P.rogue, P.rogue_key);
    snprintf(theirs, sizeof(theirs), "%s:%s", P.ven_ec, P.ven_ec_key);

    for (int i = 0; i < 2; i++) {
        gw_push_tls_ctx *pc = push_ctx(rogue, P.ven_ca, protos[i]);
        gw_tls_ctx *vc = ven_ctx(theirs, P.vtn_ca, protos[i]);
        push_link l;
        connect_link(&l, pc, vc, "localhost");
        assert_int_equal(l.vtn_rc, -EPROTO);
        assert_string_equal(gw_push_tls_error(l.vtn),
                            "the VEN refused our client certificate: TLS alert unknown CA");
        /* we had verified the VEN; it is the VEN that said no */
        assert_true(gw_push_tls_peer_verified(l.vtn));
        assert_false(gw_push_tls_peer_accepted(l.vtn));
        assert_non_null(strstr(gw_tls_error(l.ven), "client certificate rejected"));
        link_free(&l);
        gw_push_tls_ctx_free(&pc);
        gw_tls_ctx_free(&vc);
    }
}

static void reload_takes_new_files_and_keeps_the_old_on_error(void **state)
{
    (void)state;
    char mine[2 * PLEN + 2], theirs[2 * PLEN + 2], err[512];
    snprintf(mine, sizeof(mine), "%s:%s", P.vtn_ec, P.vtn_ec_key);
    snprintf(theirs, sizeof(theirs), "%s:%s", P.ven_ec, P.ven_ec_key);
    copy_file(P.other_ca, P.switch_ca);
    gw_push_tls_ctx *pc = push_ctx(mine, P.switch_ca, NULL);
    gw_tls_ctx *vc = ven_ctx(theirs, P.vtn_ca, NULL);
    push_link l, open_one;

    assert_int_equal(gw_push_tls_ctx_generation(pc), 1);
    expect_refused(pc, vc, "localhost", "unable to get local issuer certificate");

    /* a connection started before the reload keeps its configuration */
    memset(&open_one, 0, sizeof(open_one));
    assert_int_equal(gw_push_tls_new(pc, "localhost", &open_one.vtn), 0);

    copy_file(P.ven_ca, P.switch_ca);
    assert_int_equal(gw_push_tls_ctx_reload(pc, err, sizeof(err)), 0);
    assert_int_equal(gw_push_tls_ctx_generation(pc), 2);
    connect_link(&l, pc, vc, "localhost");
    expect_ok(&l, P.fp_vtn_ec, P.fp_ven_ec);
    link_free(&l);

    assert_int_equal(gw_tls_new(vc, &open_one.ven), 0);
    vtn_buf_init(&open_one.vtn_plain, BUF_MAX);
    vtn_buf_init(&open_one.vtn_wire, BUF_MAX);
    vtn_buf_init(&open_one.ven_plain, BUF_MAX);
    vtn_buf_init(&open_one.ven_wire, BUF_MAX);
    open_one.vtn_rc =
        gw_push_tls_feed(open_one.vtn, NULL, 0, &open_one.vtn_plain, &open_one.vtn_wire);
    pump(&open_one);
    assert_int_equal(open_one.vtn_rc, -EPROTO); /* still the old CA */
    link_free(&open_one);

    copy_file(P.not_pem, P.switch_ca);
    assert_int_equal(gw_push_tls_ctx_reload(pc, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "VTN_PUSH_CA: "));
    assert_non_null(strstr(err, P.switch_ca));
    assert_int_equal(gw_push_tls_ctx_generation(pc), 2);
    connect_link(&l, pc, vc, "localhost"); /* the good configuration stayed */
    expect_ok(&l, P.fp_vtn_ec, P.fp_ven_ec);
    link_free(&l);
    gw_push_tls_ctx_free(&pc);
    gw_tls_ctx_free(&vc);
}

static void expect_config_error(const char *cert, const char *ca, const char *protocols,
                                const char *want)
{
    char err[512] = "";
    gw_push_tls_ctx *ctx = (gw_push_tls_ctx *)&err; /* must be reset to NULL */
    gw_push_tls_settings s = {.cert = cert, .ca = ca, .protocols = protocols};
    assert_int_equal(gw_push_tls_ctx_new(&s, &ctx, err, sizeof(err)), -EINVAL);
    assert_null(ctx);
    if (strstr(err, want) == NULL)
        fail_msg("expected \"%s\" in \"%s\"", want, err);
}

static void settings_errors_name_the_file(void **state)
{
    (void)state;
    char mine[2 * PLEN + 2], missing[PLEN + 20], v[4 * PLEN];
    snprintf(mine, sizeof(mine), "%s:%s", P.vtn_ec, P.vtn_ec_key);
    snprintf(missing, sizeof(missing), "%s/no-such.pem", P.dir);

    snprintf(v, sizeof(v), "%s:%s", missing, P.vtn_ec_key);
    char want[3 * PLEN];
    snprintf(want, sizeof(want), "VTN_PUSH_CERT: %s: No such file or directory", missing);
    expect_config_error(v, P.ven_ca, NULL, want);
    snprintf(want, sizeof(want), "VTN_PUSH_CA: %s: No such file or directory", missing);
    expect_config_error(mine, missing, NULL, want);

    snprintf(v, sizeof(v), "%s:%s", P.vtn_ec, P.vtn_rsa_key);
    snprintf(want, sizeof(want),
             "VTN_PUSH_CERT: the key in %s does not match the certificate in %s", P.vtn_rsa_key,
             P.vtn_ec);
    expect_config_error(v, P.ven_ca, NULL, want);

    snprintf(want, sizeof(want), "VTN_PUSH_CA: %s: no PEM certificate", P.not_pem);
    expect_config_error(mine, P.not_pem, NULL, want);
    snprintf(want, sizeof(want), "VTN_PUSH_CA: %s: /CN=ven-1 is not a CA certificate", P.ven_ec);
    expect_config_error(mine, P.ven_ec, NULL, want);

    expect_config_error(mine, P.ven_ca, "TLSv1.1",
                        "VTN_PUSH_PROTOCOLS: \"TLSv1.1\" is not allowed");
    expect_config_error(mine, P.ven_ca, ",", "VTN_PUSH_PROTOCOLS: no protocol given");
    expect_config_error("", P.ven_ca, NULL, "VTN_PUSH_CERT: no client certificate configured");
    expect_config_error(mine, " , ", NULL, "VTN_PUSH_CA: no CA bundle configured");

    snprintf(v, sizeof(v), "%s:%s,%s:%s", P.vtn_ec, P.vtn_ec_key, P.rogue, P.rogue_key);
    expect_config_error(v, P.ven_ca, NULL, "is a second ECC certificate");

    /* a host is required */
    gw_push_tls_ctx *pc = push_ctx(mine, P.ven_ca, NULL);
    gw_push_tls *t = NULL;
    assert_int_equal(gw_push_tls_new(pc, "", &t), -EINVAL);
    assert_null(t);
    gw_push_tls_ctx_free(&pc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(push_over_tls12_with_ecc),
        cmocka_unit_test(push_to_an_rsa_ven_with_both_of_our_certificates),
        cmocka_unit_test(push_over_tls13_when_enabled),
        cmocka_unit_test(ven_certificate_problems_are_named),
        cmocka_unit_test(ven_refusing_our_certificate_is_named),
        cmocka_unit_test(reload_takes_new_files_and_keeps_the_old_on_error),
        cmocka_unit_test(settings_errors_name_the_file),
    };
    return cmocka_run_group_tests(tests, setup_pki, teardown_pki);
}
