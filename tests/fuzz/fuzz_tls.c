/* libFuzzer target: arbitrary bytes from a "VEN" into the gateway's TLS
 * server engine (gw_tls), as the connection would feed them, no sockets.
 * The first input byte picks how the rest is cut into reads and how small
 * the plaintext and wire buffers are. Besides crashes and sanitizer reports
 * it aborts when the engine breaks a promise: a return code outside the
 * documented ones, a failure that does not stay failed, a failure without
 * a reason, or buffers past their caps. The seeds are ClientHellos of a
 * TLS 1.2 and a TLS 1.3 client (tests/fuzz/corpus/tls). */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tls.h"
#include "vtn/buf.h"
#include "vtn/pki.h"

static gw_tls_ctx *ctx;

/* A throwaway PKI: one ECC CA that issues the server certificate and is the
 * client CA, in a temporary directory removed again once loaded. */
static void make_ctx(void)
{
    const char *tmp = getenv("TMPDIR");
    char dir[512], ca_pem[600], crt[600], key[600], certs[1300], err[256];
    EVP_PKEY *ca_key = vtn_pki_keygen(VTN_KEY_EC), *k = vtn_pki_keygen(VTN_KEY_EC);
    snprintf(dir, sizeof(dir), "%s/vtn-fuzz-tls-XXXXXX", tmp != NULL ? tmp : "/tmp");
    if (mkdtemp(dir) == NULL || ca_key == NULL || k == NULL)
        abort();
    snprintf(ca_pem, sizeof(ca_pem), "%s/ca.pem", dir);
    snprintf(crt, sizeof(crt), "%s/srv.pem", dir);
    snprintf(key, sizeof(key), "%s/srv.key", dir);
    snprintf(certs, sizeof(certs), "%s:%s", crt, key);
    vtn_cert_spec cs = {.cn = "fuzz CA", .key = ca_key, .is_ca = 1, .days = 30};
    X509 *ca = vtn_pki_issue(&cs, NULL, ca_key, err, sizeof(err));
    vtn_cert_spec ss = {.cn = "localhost", .key = k, .days = 30, .san = "DNS:localhost"};
    X509 *srv = ca != NULL ? vtn_pki_issue(&ss, ca, ca_key, err, sizeof(err)) : NULL;
    if (srv == NULL || vtn_pki_write_cert(ca_pem, ca, 0) < 0 ||
        vtn_pki_write_cert(crt, srv, 0) < 0 || vtn_pki_write_key(key, k, 0) < 0)
        abort();
    gw_tls_settings st = {.certs = certs, .client_ca = ca_pem, .protocols = "TLSv1.2,TLSv1.3"};
    if (gw_tls_ctx_new(&st, &ctx, err, sizeof(err)) != 0) {
        fprintf(stderr, "fuzz_tls: %s\n", err);
        abort();
    }
    unlink(ca_pem);
    unlink(crt);
    unlink(key);
    rmdir(dir);
    X509_free(ca);
    X509_free(srv);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(k);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    make_ctx();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gw_tls *t;
    vtn_buf plain, wire;
    size_t plain_cap, wire_cap, chunk;
    int failed = 0, eof = 0;

    if (size < 1)
        return 0;
    /* bits 0-2: read size 1..128 or everything; 3: a small plaintext cap;
     * 4: a small wire cap */
    chunk = (data[0] & 7) == 7 ? size : (size_t)1 << (data[0] & 7);
    plain_cap = data[0] & 0x08 ? 64 : 1 << 20;
    wire_cap = data[0] & 0x10 ? 512 : 1 << 20;
    data++;
    size--;
    if (gw_tls_new(ctx, &t) != 0)
        abort();
    vtn_buf_init(&plain, plain_cap);
    vtn_buf_init(&wire, wire_cap);
    for (size_t off = 0; off < size && !failed && !eof;) {
        size_t n = size - off < chunk ? size - off : chunk;
        int rc = gw_tls_feed(t, (const char *)data + off, n, &plain, &wire);
        off += n;
        switch (rc) {
        case 0:
            break;
        case GW_TLS_EOF:
            eof = 1;
            break;
        case -EPROTO:
        case -ENOBUFS:
            failed = 1;
            if (gw_tls_error(t)[0] == '\0')
                abort(); /* a failure always says why */
            /* and stays failed */
            if (gw_tls_feed(t, "x", 1, &plain, &wire) != -EPROTO)
                abort();
            break;
        default:
            abort();
        }
        if (plain.len > plain_cap || wire.len > wire_cap)
            abort();
        vtn_buf_reset(&wire); /* "sent" */
    }
    /* random bytes do not complete a mutual-TLS handshake */
    if (gw_tls_handshake_done(t) && gw_tls_fingerprint(t)[0] == '\0')
        abort();
    gw_tls_free(&t);
    vtn_buf_free(&plain);
    vtn_buf_free(&wire);
    return 0;
}
