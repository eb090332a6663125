/* vtn-bench's TLS client: OpenSSL over two memory BIOs. The libuv client keeps
 * doing every socket read and write; this layer only turns ciphertext into
 * plaintext and back, so a poll over TLS goes through exactly the same
 * connection, timer and HTTP code as a plain one. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "vtn/pki.h"

#include "bn_internal.h"

typedef struct bn_tls_cert {
    X509 *leaf;
    EVP_PKEY *key;
    STACK_OF(X509) * chain; /* intermediates after the leaf, may be NULL */
} bn_tls_cert;

struct bn_tls_ctx {
    SSL_CTX *ctx;
    int resume;
    bn_tls_cert *certs; /* one per index when the paths hold %d; NULL: the SSL_CTX has it */
    uint32_t ncerts;
    double mint_s; /* --mint-ca: seconds spent making them */
    char ip[64];   /* the address the server certificate must name; "" with --insecure */
};

struct bn_tls {
    SSL *ssl;
    BIO *rbio, *wbio; /* owned by ssl */
    bn_tls_ctx *ctx;
    bn_tls_session **slot; /* where new sessions go (--resume) */
    unsigned sessions;     /* sessions/tickets the server issued on this connection */
    char error[256];
};

/* The OpenSSL error queue (and a failed certificate check) as one line. */
static void set_error(char *out, size_t len, const char *what, long verify)
{
    char e[200] = "";
    unsigned long code = ERR_peek_last_error();
    if (code)
        ERR_error_string_n(code, e, sizeof e);
    ERR_clear_error();
    if (verify != X509_V_OK)
        snprintf(out, len, "%s: server certificate: %s", what,
                 X509_verify_cert_error_string(verify));
    else
        snprintf(out, len, "%s: %s", what, e[0] ? e : "connection closed by the peer");
}

int bn_tls_path_expand(const char *pattern, uint32_t index, char *out, size_t outlen)
{
    const char *p = strstr(pattern, "%d");
    int n;
    if (p == NULL)
        n = snprintf(out, outlen, "%s", pattern);
    else
        n = snprintf(out, outlen, "%.*s%u%s", (int)(p - pattern), pattern, (unsigned)index, p + 2);
    return n < 0 || (size_t)n >= outlen ? -ENAMETOOLONG : 0;
}

int bn_tls_path_is_pattern(const char *path)
{
    return path != NULL && strstr(path, "%d") != NULL;
}

static void free_cert(bn_tls_cert *c)
{
    X509_free(c->leaf);
    EVP_PKEY_free(c->key);
    sk_X509_pop_free(c->chain, X509_free);
    memset(c, 0, sizeof *c);
}

static int load_cert(const char *cert_path, const char *key_path, bn_tls_cert *out, char *err,
                     size_t errlen)
{
    memset(out, 0, sizeof *out);
    BIO *b = BIO_new_file(cert_path, "r");
    if (b == NULL) {
        ERR_clear_error();
        snprintf(err, errlen, "--cert: cannot read %s", cert_path);
        return -EINVAL;
    }
    out->leaf = PEM_read_bio_X509(b, NULL, NULL, NULL);
    X509 *x;
    while (out->leaf && (x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
        if ((out->chain == NULL && (out->chain = sk_X509_new_null()) == NULL) ||
            !sk_X509_push(out->chain, x)) {
            X509_free(x);
            break;
        }
    }
    BIO_free(b);
    ERR_clear_error(); /* the end of the file ends the loop with an error */
    if (out->leaf == NULL) {
        free_cert(out);
        snprintf(err, errlen, "--cert: no certificate in %s", cert_path);
        return -EINVAL;
    }
    b = BIO_new_file(key_path, "r");
    if (b) {
        out->key = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
        BIO_free(b);
    }
    if (out->key == NULL || X509_check_private_key(out->leaf, out->key) != 1) {
        ERR_clear_error();
        snprintf(err, errlen, "--key: %s is %s", key_path,
                 out->key ? "not the key of the certificate" : "not a readable PEM private key");
        free_cert(out);
        return -EINVAL;
    }
    return 0;
}

/* --mint-ca "CERT.pem,KEY.pem": a fresh P-256 key and a certificate per
 * index, issued in memory by that CA with vtnctl's VEN profile (vtn_pki_issue:
 * CA:FALSE, digitalSignature, clientAuth+serverAuth, SKI/AKI, CN bench-ven-<i>,
 * 127-bit random serial), so every VEN has a fingerprint of its own however
 * many there are, and no file is written. */
static int mint_certs(bn_tls_ctx *c, const char *mint_ca, uint32_t n, char *err, size_t errlen)
{
    char cert_path[1024], e[512];
    const char *comma = strchr(mint_ca, ',');
    if (comma == NULL || comma == mint_ca || comma[1] == '\0' ||
        (size_t)(comma - mint_ca) >= sizeof cert_path) {
        snprintf(err, errlen,
                 "--mint-ca: CERT.pem,KEY.pem (the CA that issues the VENs' "
                 "certificates), not \"%s\"",
                 mint_ca);
        return -EINVAL;
    }
    snprintf(cert_path, sizeof cert_path, "%.*s", (int)(comma - mint_ca), mint_ca);
    X509 *ca = vtn_pki_read_cert(cert_path, e, sizeof e);
    EVP_PKEY *ca_key = ca ? vtn_pki_read_key(comma + 1, e, sizeof e) : NULL;
    int rc = -EINVAL;
    if (ca_key == NULL) {
        snprintf(err, errlen, "--mint-ca: %s", e);
        goto out;
    }
    if (X509_check_private_key(ca, ca_key) != 1) {
        snprintf(err, errlen, "--mint-ca: %s is not the key of %s", comma + 1, cert_path);
        goto out;
    }
    c->certs = calloc(n ? n : 1, sizeof *c->certs);
    if (c->certs == NULL) {
        snprintf(err, errlen, "out of memory for %u certificates", (unsigned)n);
        rc = -ENOMEM;
        goto out;
    }
    c->ncerts = n ? n : 1;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (uint32_t i = 0; i < c->ncerts; i++) {
        char cn[48];
        snprintf(cn, sizeof cn, "bench-ven-%u", (unsigned)i);
        vtn_cert_spec spec = {.cn = cn, .days = 2};
        spec.key = c->certs[i].key = vtn_pki_keygen(VTN_KEY_EC);
        if (spec.key == NULL) {
            vtn_pki_errstr(err, errlen, "--mint-ca: key generation");
            goto out;
        }
        c->certs[i].leaf = vtn_pki_issue(&spec, ca, ca_key, e, sizeof e);
        if (c->certs[i].leaf == NULL) {
            snprintf(err, errlen, "--mint-ca: %s", e);
            goto out;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    c->mint_s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    rc = 0;
out:
    ERR_clear_error();
    X509_free(ca);
    EVP_PKEY_free(ca_key);
    return rc;
}

double bn_tls_ctx_mint_seconds(const bn_tls_ctx *c)
{
    return c->mint_s;
}

static int on_new_session(SSL *ssl, SSL_SESSION *sess)
{
    bn_tls *t = SSL_get_app_data(ssl);
    if (t == NULL)
        return 0;
    t->sessions++;
    if (!t->ctx->resume || t->slot == NULL)
        return 0; /* OpenSSL keeps and frees it */
    if (*t->slot)
        SSL_SESSION_free(*t->slot);
    *t->slot = sess;
    return 1; /* ours now */
}

void bn_tls_ctx_free(bn_tls_ctx **pctx)
{
    bn_tls_ctx *c = *pctx;
    if (c == NULL)
        return;
    for (uint32_t i = 0; c->certs && i < c->ncerts; i++)
        free_cert(&c->certs[i]);
    free(c->certs);
    SSL_CTX_free(c->ctx);
    free(c);
    *pctx = NULL;
}

int bn_tls_ctx_new(const bn_tls_opts *o, uint32_t ncerts, bn_tls_ctx **out, char *err,
                   size_t errlen)
{
    bn_tls_ctx *c = calloc(1, sizeof *c);
    *out = NULL;
    if (c == NULL)
        return -ENOMEM;
    c->resume = o->resume;
    c->ctx = SSL_CTX_new(TLS_client_method());
    if (c->ctx == NULL)
        goto ossl;
    SSL_CTX_set_min_proto_version(c->ctx, o->tls13 ? TLS1_3_VERSION : TLS1_2_VERSION);
    SSL_CTX_set_max_proto_version(c->ctx, o->tls13 ? TLS1_3_VERSION : TLS1_2_VERSION);
    /* Idle connections give their record buffers back, as the gateway's do: 10,000
     * idle connections in --mode idle must not cost the bench 340 MB. */
    SSL_CTX_set_mode(c->ctx, SSL_MODE_RELEASE_BUFFERS);
    const char *ciphers = o->ciphers && *o->ciphers ? o->ciphers : BN_TLS_DEFAULT_CIPHERS;
    if (o->tls13 && strncmp(ciphers, "TLS_", 4) == 0) {
        if (SSL_CTX_set_ciphersuites(c->ctx, ciphers) != 1) {
            snprintf(err, errlen, "--ciphers: no TLS 1.3 suite in \"%s\"", ciphers);
            goto fail;
        }
    } else if (!o->tls13 && SSL_CTX_set_cipher_list(c->ctx, ciphers) != 1) {
        snprintf(err, errlen, "--ciphers: no TLS 1.2 suite in \"%s\"", ciphers);
        goto fail;
    }
    if (o->groups && *o->groups && SSL_CTX_set1_groups_list(c->ctx, o->groups) != 1) {
        snprintf(err, errlen, "--groups: \"%s\" is not a list of groups (e.g. P-256:X25519)",
                 o->groups);
        goto fail;
    }
    if (o->insecure) {
        SSL_CTX_set_verify(c->ctx, SSL_VERIFY_NONE, NULL);
    } else {
        if (o->ca == NULL || *o->ca == '\0') {
            snprintf(err, errlen,
                     "--ca: the CA that issued the VTN's server certificate is needed to verify "
                     "it (or --insecure)");
            goto fail;
        }
        if (SSL_CTX_load_verify_locations(c->ctx, o->ca, NULL) != 1) {
            snprintf(err, errlen, "--ca: no CA certificate in %s", o->ca);
            goto fail;
        }
        SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
        snprintf(c->ip, sizeof c->ip, "%s", o->verify_ip);
    }
    if (o->no_tickets) {
        if (o->tls13 || o->resume) {
            snprintf(err, errlen, "--no-tickets: TLS 1.2 only, and not with --resume");
            goto fail;
        }
        SSL_CTX_set_options(c->ctx, SSL_OP_NO_TICKET);
    }
    /* Sessions are always announced to on_new_session: it counts the tickets a TLS
     * 1.3 server sends after the handshake, and keeps them with --resume. */
    SSL_CTX_set_session_cache_mode(c->ctx,
                                   SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(c->ctx, on_new_session);

    int has_cert = o->cert && *o->cert;
    if (has_cert != (o->key && *o->key)) {
        snprintf(err, errlen, "--cert and --key go together");
        goto fail;
    }
    if (o->mint_ca && *o->mint_ca) {
        if (has_cert) {
            snprintf(err, errlen, "--mint-ca makes the VENs' certificates: not with --cert/--key");
            goto fail;
        }
        if (mint_certs(c, o->mint_ca, ncerts, err, errlen) < 0)
            goto fail;
    } else if (has_cert && (bn_tls_path_is_pattern(o->cert) || bn_tls_path_is_pattern(o->key))) {
        if (ncerts == 0)
            ncerts = 1;
        c->certs = calloc(ncerts, sizeof *c->certs);
        if (c->certs == NULL) {
            snprintf(err, errlen, "out of memory for %u certificates", (unsigned)ncerts);
            goto fail;
        }
        c->ncerts = ncerts;
        for (uint32_t i = 0; i < ncerts; i++) {
            char cp[1024], kp[1024];
            if (bn_tls_path_expand(o->cert, i, cp, sizeof cp) < 0 ||
                bn_tls_path_expand(o->key, i, kp, sizeof kp) < 0) {
                snprintf(err, errlen, "--cert/--key: path too long");
                goto fail;
            }
            if (load_cert(cp, kp, &c->certs[i], err, errlen) < 0)
                goto fail;
        }
    } else if (has_cert) {
        bn_tls_cert one;
        if (load_cert(o->cert, o->key, &one, err, errlen) < 0)
            goto fail;
        int ok = SSL_CTX_use_certificate(c->ctx, one.leaf) == 1 &&
                 SSL_CTX_use_PrivateKey(c->ctx, one.key) == 1 &&
                 (one.chain == NULL || SSL_CTX_set1_chain(c->ctx, one.chain) == 1);
        free_cert(&one);
        if (!ok)
            goto ossl;
    }
    *out = c;
    return 0;
ossl:
    set_error(err, errlen, "TLS setup", X509_V_OK);
fail:
    ERR_clear_error();
    bn_tls_ctx_free(&c);
    return -EINVAL;
}

int bn_tls_new(bn_tls_ctx *ctx, uint32_t cert_index, bn_tls_session **slot, bn_tls **out)
{
    bn_tls *t = calloc(1, sizeof *t);
    *out = NULL;
    if (t == NULL)
        return -ENOMEM;
    t->ctx = ctx;
    t->slot = slot;
    t->ssl = SSL_new(ctx->ctx);
    t->rbio = BIO_new(BIO_s_mem());
    t->wbio = BIO_new(BIO_s_mem());
    if (t->ssl == NULL || t->rbio == NULL || t->wbio == NULL) {
        BIO_free(t->rbio);
        BIO_free(t->wbio);
        goto fail;
    }
    /* An empty read BIO means "wait for the socket", not end of stream. */
    BIO_set_mem_eof_return(t->rbio, -1);
    SSL_set_bio(t->ssl, t->rbio, t->wbio);
    SSL_set_connect_state(t->ssl);
    SSL_set_app_data(t->ssl, t);
    if (ctx->ip[0] && X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), ctx->ip) != 1)
        goto fail;
    if (ctx->certs) {
        const bn_tls_cert *c = &ctx->certs[cert_index % ctx->ncerts];
        if (SSL_use_certificate(t->ssl, c->leaf) != 1 || SSL_use_PrivateKey(t->ssl, c->key) != 1 ||
            (c->chain && SSL_set1_chain(t->ssl, c->chain) != 1))
            goto fail;
    }
    if (ctx->resume && slot && *slot && SSL_set_session(t->ssl, *slot) != 1)
        goto fail;
    *out = t;
    return 0;
fail:
    ERR_clear_error();
    SSL_free(t->ssl);
    free(t);
    return -ENOMEM;
}

void bn_tls_free(bn_tls **pt)
{
    bn_tls *t = *pt;
    if (t == NULL)
        return;
    /* A connection that ends without our close_notify (the server hung up, a
     * gateway restart) would have SSL_free mark its session not resumable
     * (ssl_clear_bad_session), and the VEN would then make a full handshake
     * although the server, or the next gateway with the same ticket keys,
     * resumes it. A completed handshake leaves a good session: keep it. A TLS
     * error has already dropped the session (OpenSSL does on a fatal alert). */
    if (SSL_is_init_finished(t->ssl))
        SSL_set_shutdown(t->ssl, SSL_get_shutdown(t->ssl) | SSL_SENT_SHUTDOWN);
    SSL_free(t->ssl);
    free(t);
    *pt = NULL;
}

int bn_tls_feed(bn_tls *t, const char *p, size_t n)
{
    if (n && BIO_write(t->rbio, p, (int)n) != (int)n) {
        ERR_clear_error();
        snprintf(t->error, sizeof t->error, "out of memory for received data");
        return -ENOMEM;
    }
    return 0;
}

int bn_tls_handshake(bn_tls *t)
{
    if (SSL_is_init_finished(t->ssl))
        return 1;
    ERR_clear_error();
    int rc = SSL_do_handshake(t->ssl);
    if (rc == 1)
        return 1;
    int e = SSL_get_error(t->ssl, rc);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return 0;
    set_error(t->error, sizeof t->error, "handshake", SSL_get_verify_result(t->ssl));
    return -EPROTO;
}

int bn_tls_read(bn_tls *t, char *out, size_t cap)
{
    ERR_clear_error();
    int n = SSL_read(t->ssl, out, (int)cap);
    if (n > 0)
        return n;
    int e = SSL_get_error(t->ssl, n);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return 0;
    if (e == SSL_ERROR_ZERO_RETURN)
        return BN_TLS_CLOSED;
    set_error(t->error, sizeof t->error, "read", X509_V_OK);
    return -EPROTO;
}

int bn_tls_write(bn_tls *t, const char *p, size_t n)
{
    ERR_clear_error();
    /* A memory BIO never blocks, so SSL_write takes all of it or fails. */
    if (n == 0 || SSL_write(t->ssl, p, (int)n) == (int)n)
        return 0;
    set_error(t->error, sizeof t->error, "write", X509_V_OK);
    return -EPROTO;
}

void bn_tls_shutdown(bn_tls *t)
{
    if (SSL_is_init_finished(t->ssl))
        (void)SSL_shutdown(t->ssl);
    ERR_clear_error();
}

size_t bn_tls_wire(bn_tls *t, const char **p)
{
    char *d = NULL;
    long n = BIO_get_mem_data(t->wbio, &d);
    *p = d;
    return n > 0 ? (size_t)n : 0;
}

void bn_tls_wire_clear(bn_tls *t)
{
    (void)BIO_reset(t->wbio);
}

int bn_tls_resumed(const bn_tls *t)
{
    return SSL_session_reused(t->ssl);
}

unsigned bn_tls_sessions(const bn_tls *t)
{
    return t->sessions;
}

int bn_tls_is_tls13(const bn_tls *t)
{
    return SSL_version(t->ssl) == TLS1_3_VERSION;
}

const char *bn_tls_error(const bn_tls *t)
{
    return t->error;
}

void bn_tls_describe(const bn_tls *t, char *out, size_t len)
{
    const char *group = "-";
    int nid = SSL_get_negotiated_group(t->ssl);
    if (nid > 0) {
        const char *g = SSL_group_to_name(t->ssl, nid);
        group = g ? g : OBJ_nid2sn(nid & ~TLSEXT_nid_unknown);
    }
    X509 *peer = SSL_get0_peer_certificate(t->ssl);
    EVP_PKEY *pk = peer ? X509_get0_pubkey(peer) : NULL;
    snprintf(out, len, "%s %s, key exchange %s, server key %s", SSL_get_version(t->ssl),
             SSL_get_cipher_name(t->ssl), group ? group : "-",
             pk ? (EVP_PKEY_get_base_id(pk) == EVP_PKEY_EC ? "ECC" : "RSA") : "-");
}

void bn_tls_session_free(bn_tls_session **s)
{
    if (*s)
        SSL_SESSION_free(*s);
    *s = NULL;
}
