/* How replies leave the TLS engine: gw_tls_writev packs a response head and
 * body into as few records as their size allows (one for a small reply, full
 * 16 KiB records otherwise) and the client reads back exactly the bytes, in
 * order. A real OpenSSL client on memory BIOs, certificates made at test
 * time in a temporary directory. */
#include <dirent.h>
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

#include "tls.h"
#include "vtn/buf.h"
#include "vtn/pki.h"

#define REC 16384
#define BIG (4 * REC + 1000)

static char dir[256], ca_pem[300], srv_pem[300], srv_key[300], ven_pem[300], ven_key[300];
static gw_tls_ctx *ctx;
static char *pattern; /* BIG bytes the client must read back */

static void issue(const char *pem, const char *key, const char *cn, X509 *ca, EVP_PKEY *ca_key)
{
    char err[256];
    EVP_PKEY *k = vtn_pki_keygen(VTN_KEY_EC);
    assert_non_null(k);
    vtn_cert_spec spec = {.cn = cn, .key = k, .days = 2, .san = "DNS:localhost"};
    X509 *x = vtn_pki_issue(&spec, ca, ca_key, err, sizeof err);
    if (x == NULL)
        fail_msg("issue %s: %s", cn, err);
    assert_int_equal(vtn_pki_write_cert(pem, x, 0), 0);
    assert_int_equal(vtn_pki_write_key(key, k, 0), 0);
    X509_free(x);
    EVP_PKEY_free(k);
}

static int setup(void **state)
{
    (void)state;
    const char *tmp = getenv("TMPDIR");
    char err[512];
    snprintf(dir, sizeof dir, "%s/vtn-test-tlsrec-XXXXXX", tmp ? tmp : "/tmp");
    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(ca_pem, sizeof ca_pem, "%s/ca.pem", dir);
    snprintf(srv_pem, sizeof srv_pem, "%s/srv.pem", dir);
    snprintf(srv_key, sizeof srv_key, "%s/srv.key", dir);
    snprintf(ven_pem, sizeof ven_pem, "%s/ven.pem", dir);
    snprintf(ven_key, sizeof ven_key, "%s/ven.key", dir);
    EVP_PKEY *ca_key = vtn_pki_keygen(VTN_KEY_EC);
    vtn_cert_spec spec = {.cn = "records test CA", .key = ca_key, .is_ca = 1, .days = 2};
    X509 *ca = vtn_pki_issue(&spec, NULL, ca_key, err, sizeof err);
    if (ca == NULL)
        return -1;
    assert_int_equal(vtn_pki_write_cert(ca_pem, ca, 0), 0);
    issue(srv_pem, srv_key, "localhost", ca, ca_key);
    issue(ven_pem, ven_key, "ven", ca, ca_key);
    X509_free(ca);
    EVP_PKEY_free(ca_key);

    char certs[700];
    snprintf(certs, sizeof certs, "%s:%s", srv_pem, srv_key);
    gw_tls_settings st = {.certs = certs, .client_ca = ca_pem, .protocols = "TLSv1.2,TLSv1.3"};
    if (gw_tls_ctx_new(&st, &ctx, err, sizeof err) != 0) {
        fprintf(stderr, "gw_tls_ctx_new: %s\n", err);
        return -1;
    }
    pattern = malloc(BIG);
    for (size_t i = 0; i < BIG; i++)
        pattern[i] = (char)('a' + (i * 7 + i / 251) % 26);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    gw_tls_ctx_free(&ctx);
    free(pattern);
    DIR *d = opendir(dir);
    struct dirent *e;
    char p[600];
    while (d && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        unlink(p);
    }
    if (d)
        closedir(d);
    rmdir(dir);
    return 0;
}

typedef struct pair {
    SSL_CTX *cctx;
    SSL *ssl;
    BIO *rbio, *wbio;
    gw_tls *tls;
    vtn_buf plain, wire;
} pair;

/* A client of the given version, handshaken with a fresh engine. */
static void connect_pair(pair *p, int version)
{
    memset(p, 0, sizeof *p);
    p->cctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_min_proto_version(p->cctx, version);
    SSL_CTX_set_max_proto_version(p->cctx, version);
    assert_int_equal(SSL_CTX_load_verify_locations(p->cctx, ca_pem, NULL), 1);
    SSL_CTX_set_verify(p->cctx, SSL_VERIFY_PEER, NULL);
    assert_int_equal(SSL_CTX_use_certificate_file(p->cctx, ven_pem, SSL_FILETYPE_PEM), 1);
    assert_int_equal(SSL_CTX_use_PrivateKey_file(p->cctx, ven_key, SSL_FILETYPE_PEM), 1);
    p->ssl = SSL_new(p->cctx);
    p->rbio = BIO_new(BIO_s_mem());
    p->wbio = BIO_new(BIO_s_mem());
    BIO_set_mem_eof_return(p->rbio, -1);
    SSL_set_bio(p->ssl, p->rbio, p->wbio);
    SSL_set_connect_state(p->ssl);
    assert_int_equal(gw_tls_new(ctx, &p->tls), 0);
    vtn_buf_init(&p->plain, 1 << 20);
    vtn_buf_init(&p->wire, 1 << 20);

    /* before the handshake there is nothing to encrypt with */
    gw_tls_iov early = {"x", 1};
    assert_int_equal(gw_tls_writev(p->tls, &early, 1, &p->wire), -EAGAIN);

    char buf[65536];
    for (int round = 0; round < 20 && !gw_tls_handshake_done(p->tls); round++) {
        SSL_do_handshake(p->ssl);
        int n;
        while ((n = BIO_read(p->wbio, buf, sizeof buf)) > 0)
            assert_true(gw_tls_feed(p->tls, buf, (size_t)n, &p->plain, &p->wire) >= 0);
        if (p->wire.len) {
            BIO_write(p->rbio, p->wire.data, (int)p->wire.len);
            vtn_buf_reset(&p->wire);
        }
    }
    assert_true(gw_tls_handshake_done(p->tls));
    assert_int_equal(SSL_do_handshake(p->ssl), 1);
    ERR_clear_error();
}

static void pair_free(pair *p)
{
    SSL_free(p->ssl);
    SSL_CTX_free(p->cctx);
    gw_tls_free(&p->tls);
    vtn_buf_free(&p->plain);
    vtn_buf_free(&p->wire);
}

/* Application-data records in wire, and their plaintext sizes checked
 * against the expected total. */
static int count_records(const vtn_buf *w)
{
    size_t off = 0;
    int n = 0;
    while (off + 5 <= w->len) {
        const unsigned char *h = (const unsigned char *)w->data + off;
        assert_int_equal(h[0], 23); /* application_data (TLS 1.3 wraps everything in it) */
        off += 5 + ((size_t)h[3] << 8 | h[4]);
        n++;
    }
    assert_int_equal(off, w->len); /* whole records only */
    return n;
}

/* The client reads everything in wire; it must be want[0..n). */
static void client_reads(pair *p, const char *want, size_t n)
{
    static char got[BIG + 1];
    size_t have = 0;
    BIO_write(p->rbio, p->wire.data, (int)p->wire.len);
    vtn_buf_reset(&p->wire);
    for (;;) {
        int r = SSL_read(p->ssl, got + have, (int)(sizeof got - have));
        if (r <= 0)
            break;
        have += (size_t)r;
    }
    ERR_clear_error();
    assert_int_equal(have, n);
    assert_memory_equal(got, want, n);
}

static void run_version(int version)
{
    pair p;
    connect_pair(&p, version);

    /* head + small body: one record */
    gw_tls_iov small[2] = {{pattern, 150}, {pattern + 150, 600}};
    assert_int_equal(gw_tls_writev(p.tls, small, 2, &p.wire), 0);
    assert_int_equal(count_records(&p.wire), 1);
    client_reads(&p, pattern, 750);

    /* head + big body: full records, the last one partial */
    gw_tls_iov big[2] = {{pattern, 200}, {pattern + 200, BIG - 200}};
    assert_int_equal(gw_tls_writev(p.tls, big, 2, &p.wire), 0);
    assert_int_equal(count_records(&p.wire), (BIG + REC - 1) / REC);
    client_reads(&p, pattern, BIG);

    /* a long first piece goes out whole, its tail joins the next pieces */
    gw_tls_iov mixed[4] = {
        {pattern, REC + 3000}, {pattern + REC + 3000, 0}, {pattern + REC + 3000, 10}, {NULL, 0}};
    assert_int_equal(gw_tls_writev(p.tls, mixed, 4, &p.wire), 0);
    assert_int_equal(count_records(&p.wire), 2);
    client_reads(&p, pattern, REC + 3010);

    /* exactly one full record from many pieces */
    gw_tls_iov pieces[4] = {{pattern, 1}, {pattern + 1, REC - 2}, {pattern + REC - 1, 1}};
    assert_int_equal(gw_tls_writev(p.tls, pieces, 3, &p.wire), 0);
    assert_int_equal(count_records(&p.wire), 1);
    client_reads(&p, pattern, REC);

    /* nothing to send makes no record; gw_tls_write still makes one */
    assert_int_equal(gw_tls_writev(p.tls, pieces, 0, &p.wire), 0);
    assert_int_equal(p.wire.len, 0);
    assert_int_equal(gw_tls_write(p.tls, pattern, 33, &p.wire), 0);
    assert_int_equal(count_records(&p.wire), 1);
    client_reads(&p, pattern, 33);

    /* a wire buffer too small for the reply: -ENOBUFS, and the engine is failed */
    vtn_buf tiny;
    vtn_buf_init(&tiny, 100);
    assert_int_equal(gw_tls_writev(p.tls, small, 2, &tiny), -ENOBUFS);
    assert_int_equal(gw_tls_writev(p.tls, small, 2, &p.wire), -EPROTO);
    vtn_buf_free(&tiny);
    pair_free(&p);
}

static void tls12_records(void **state)
{
    (void)state;
    run_version(TLS1_2_VERSION);
}

static void tls13_records(void **state)
{
    (void)state;
    run_version(TLS1_3_VERSION);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(tls12_records),
        cmocka_unit_test(tls13_records),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
