/* TLS settings and the socketless BIO shared by the gateway's engines (see
 * vtn/tlsconf.h). */
#include "vtn/tlsconf.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "vtn/hex.h"
#include "vtn/log.h"
#include "vtn/pki.h"

#define WHYLEN 320

static char *trim(char *s)
{
    char *e;
    while (isspace((unsigned char)*s))
        s++;
    e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

static int empty(const char *s)
{
    return s == NULL || s[0] == '\0';
}

int vtn_tls_each(const char *list, int (*fn)(char *item, void *arg), void *arg)
{
    char *copy, *save = NULL, *tok;
    int rc = 0;

    copy = strdup(list != NULL ? list : "");
    if (copy == NULL)
        return -ENOMEM;
    for (tok = strtok_r(copy, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
        char *item = trim(tok);
        if (empty(item))
            continue;
        if ((rc = fn(item, arg)) < 0)
            break;
    }
    free(copy);
    return rc < 0 ? rc : 0;
}

void vtn_tls_sanitize(char *s)
{
    for (; *s != '\0'; s++) {
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e || *s == '"' || *s == '\\')
            *s = '?';
    }
}

int vtn_tls_parse_protocols(const char *setting, const char *s, int *minv, int *maxv, char *err,
                            size_t errlen)
{
    char buf[256], *save = NULL, *tok;

    *minv = TLS1_2_VERSION;
    *maxv = TLS1_3_VERSION;
    if (empty(s))
        return 0;
    if (strlen(s) >= sizeof(buf)) {
        snprintf(err, errlen, "%s: too long", setting);
        return -EINVAL;
    }
    strcpy(buf, s);
    *minv = 0;
    *maxv = 0;
    for (tok = strtok_r(buf, ", ", &save); tok != NULL; tok = strtok_r(NULL, ", ", &save)) {
        int v;
        if (strcasecmp(tok, "TLSv1.2") == 0) {
            v = TLS1_2_VERSION;
        } else if (strcasecmp(tok, "TLSv1.3") == 0) {
            v = TLS1_3_VERSION;
        } else {
            snprintf(err, errlen,
                     "%s: \"%s\" is not allowed (use TLSv1.2 and/or TLSv1.3; OpenADR 2.0b "
                     "requires TLS 1.2)",
                     setting, tok);
            return -EINVAL;
        }
        if (*minv == 0 || v < *minv)
            *minv = v;
        if (v > *maxv)
            *maxv = v;
    }
    if (*minv == 0) {
        snprintf(err, errlen, "%s: no protocol given", setting);
        return -EINVAL;
    }
    return 0;
}

static void warn_expired(const char *what, const char *path, const ASN1_TIME *not_after)
{
    if (not_after != NULL && X509_cmp_current_time(not_after) < 0)
        vtn_warn("tls_expired", "what=%s file=%s", what, path);
}

struct pairs {
    SSL_CTX *sc;
    const char *setting, *what;
    int seen_rsa, seen_ec;
    char *err;
    size_t errlen;
};

/* One "cert.pem:key.pem" (or "both.pem") pair into p->sc. */
static int load_pair(char *pair, void *arg)
{
    struct pairs *p = arg;
    SSL_CTX *sc = p->sc;
    const char *setting = p->setting;
    char *err = p->err;
    size_t errlen = p->errlen;
    char *colon = strchr(pair, ':');
    const char *cert_path = pair, *key_path = pair;
    char why[WHYLEN];
    X509 *leaf = NULL, *extra = NULL;
    EVP_PKEY *key = NULL;
    FILE *f = NULL;
    int rc = -EINVAL;

    if (colon != NULL) {
        *colon = '\0';
        cert_path = trim(pair);
        key_path = trim(colon + 1);
    }
    if (empty(cert_path) || empty(key_path)) {
        snprintf(err, errlen, "%s: expected cert.pem:key.pem, got \"%s\"", setting, pair);
        return -EINVAL;
    }
    f = fopen(cert_path, "r");
    if (f == NULL) {
        snprintf(err, errlen, "%s: %s: %s", setting, cert_path, strerror(errno));
        return -EINVAL;
    }
    ERR_clear_error();
    leaf = PEM_read_X509(f, NULL, NULL, NULL);
    if (leaf == NULL) {
        snprintf(err, errlen, "%s: %s: no PEM certificate", setting, cert_path);
        goto out;
    }
    if (SSL_CTX_use_certificate(sc, leaf) != 1) {
        snprintf(why, sizeof(why), "%s: %s", setting, cert_path);
        vtn_pki_errstr(err, errlen, why);
        goto out;
    }
    /* intermediates after the leaf go to this certificate's own chain */
    while ((extra = PEM_read_X509(f, NULL, NULL, NULL)) != NULL) {
        if (SSL_CTX_add0_chain_cert(sc, extra) != 1) {
            X509_free(extra);
            snprintf(why, sizeof(why), "%s: %s: chain", setting, cert_path);
            vtn_pki_errstr(err, errlen, why);
            goto out;
        }
    }
    ERR_clear_error(); /* the loop ends on "no start line" */

    key = vtn_pki_read_key(key_path, why, sizeof(why));
    if (key == NULL) {
        snprintf(err, errlen, "%s: %s", setting, why);
        goto out;
    }
    if (SSL_CTX_use_PrivateKey(sc, key) != 1 || SSL_CTX_check_private_key(sc) != 1) {
        ERR_clear_error();
        snprintf(err, errlen, "%s: the key in %s does not match the certificate in %s", setting,
                 key_path, cert_path);
        goto out;
    }
    switch (EVP_PKEY_get_base_id(key)) {
    case EVP_PKEY_RSA:
        if (p->seen_rsa++) {
            snprintf(err, errlen, "%s: %s is a second RSA certificate (one per key type)", setting,
                     cert_path);
            goto out;
        }
        break;
    case EVP_PKEY_EC:
        if (p->seen_ec++) {
            snprintf(err, errlen, "%s: %s is a second ECC certificate (one per key type)", setting,
                     cert_path);
            goto out;
        }
        break;
    default:
        snprintf(err, errlen, "%s: %s: neither an RSA nor an ECC key (OpenADR uses those)", setting,
                 cert_path);
        goto out;
    }
    warn_expired(p->what, cert_path, X509_get0_notAfter(leaf));
    rc = 0;
out:
    if (f != NULL)
        fclose(f);
    X509_free(leaf);
    EVP_PKEY_free(key);
    return rc;
}

int vtn_tls_load_pairs(SSL_CTX *sc, const char *setting, const char *list, const char *what,
                       char *err, size_t errlen)
{
    struct pairs p = {sc, setting, what, 0, 0, err, errlen};
    int rc = vtn_tls_each(list, load_pair, &p);
    return rc < 0 ? rc : p.seen_rsa + p.seen_ec;
}

STACK_OF(X509_INFO) *
    vtn_tls_read_pem_infos(const char *setting, const char *path, char *err, size_t errlen)
{
    STACK_OF(X509_INFO) * infos;
    FILE *f = fopen(path, "r");

    if (f == NULL) {
        snprintf(err, errlen, "%s: %s: %s", setting, path, strerror(errno));
        return NULL;
    }
    ERR_clear_error();
    infos = PEM_X509_INFO_read(f, NULL, NULL, NULL);
    fclose(f);
    if (infos == NULL) {
        char why[WHYLEN];
        snprintf(why, sizeof(why), "%s: %s", setting, path);
        vtn_pki_errstr(err, errlen, why);
    }
    return infos;
}

struct bundles {
    X509_STORE *store;
    const char *setting, *what;
    STACK_OF(X509_NAME) * names;
    int total;
    char *err;
    size_t errlen;
};

/* The certificates of one bundle into b->store; 0, or -EINVAL/-ENOMEM. */
static int load_bundle(char *path, void *arg)
{
    struct bundles *b = arg;
    const char *setting = b->setting;
    char *err = b->err;
    size_t errlen = b->errlen;
    STACK_OF(X509_INFO) *infos = vtn_tls_read_pem_infos(setting, path, err, errlen);
    int n = 0, rc = -EINVAL;

    if (infos == NULL)
        return -EINVAL;
    for (int i = 0; i < sk_X509_INFO_num(infos); i++) {
        X509 *x = sk_X509_INFO_value(infos, i)->x509;
        X509_NAME *name;
        if (x == NULL)
            continue;
        if (X509_check_ca(x) < 1) {
            char subj[160];
            X509_NAME_oneline(X509_get_subject_name(x), subj, sizeof(subj));
            vtn_tls_sanitize(subj);
            snprintf(err, errlen, "%s: %s: %s is not a CA certificate", setting, path, subj);
            goto out;
        }
        if (X509_STORE_add_cert(b->store, x) != 1) {
            vtn_pki_errstr(err, errlen, setting);
            goto out;
        }
        if (b->names != NULL) {
            if ((name = X509_NAME_dup(X509_get_subject_name(x))) == NULL ||
                !sk_X509_NAME_push(b->names, name)) {
                X509_NAME_free(name);
                rc = -ENOMEM;
                goto out;
            }
        }
        warn_expired(b->what, path, X509_get0_notAfter(x));
        n++;
    }
    if (n == 0) {
        snprintf(err, errlen, "%s: %s: no PEM certificate", setting, path);
        goto out;
    }
    b->total += n;
    rc = 0;
out:
    sk_X509_INFO_pop_free(infos, X509_INFO_free);
    return rc;
}

int vtn_tls_load_cas(SSL_CTX *sc, const char *setting, const char *list, const char *what,
                     STACK_OF(X509_NAME) * names, char *err, size_t errlen)
{
    struct bundles b = {SSL_CTX_get_cert_store(sc), setting, what, names, 0, err, errlen};
    int rc = vtn_tls_each(list, load_bundle, &b);
    return rc < 0 ? rc : b.total;
}

/* -------------------------------------------------------------------------
 * The engines' BIO
 * ---------------------------------------------------------------------- */

static BIO_METHOD *io_method;
static pthread_once_t io_once = PTHREAD_ONCE_INIT;

static int io_write(BIO *b, const char *p, int n)
{
    vtn_tls_io *io = BIO_get_data(b);
    int rc;

    BIO_clear_retry_flags(b);
    if (io->wire == NULL) {
        io->wire_rc = -EIO; /* OpenSSL wrote outside a call of the engine: a bug */
        return -1;
    }
    rc = vtn_buf_append(io->wire, p, (size_t)n);
    if (rc < 0) {
        io->wire_rc = rc;
        return -1;
    }
    return n;
}

static int io_read(BIO *b, char *p, int n)
{
    vtn_tls_io *io = BIO_get_data(b);
    size_t k;

    BIO_clear_retry_flags(b);
    if (io->in_len == 0) {
        BIO_set_retry_read(b); /* "wait for more", never end of file */
        return -1;
    }
    k = io->in_len < (size_t)n ? io->in_len : (size_t)n;
    memcpy(p, io->in, k);
    io->in += k;
    io->in_len -= k;
    return (int)k;
}

static long io_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    vtn_tls_io *io = BIO_get_data(b);
    (void)num;
    (void)ptr;
    switch (cmd) {
    case BIO_CTRL_FLUSH:
        return 1; /* every write already went to wire */
    case BIO_CTRL_PENDING:
        return io != NULL ? (long)(io->in_len > LONG_MAX ? LONG_MAX : io->in_len) : 0;
    default:
        return 0;
    }
}

static int io_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

static void io_method_init(void)
{
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "vtn_tls_io");
    if (m == NULL || !BIO_meth_set_write(m, io_write) || !BIO_meth_set_read(m, io_read) ||
        !BIO_meth_set_ctrl(m, io_ctrl) || !BIO_meth_set_create(m, io_create)) {
        BIO_meth_free(m);
        return;
    }
    io_method = m;
}

BIO *vtn_tls_bio_new(vtn_tls_io *io)
{
    BIO *b;
    pthread_once(&io_once, io_method_init);
    if (io_method == NULL)
        return NULL;
    b = BIO_new(io_method);
    if (b != NULL)
        BIO_set_data(b, io);
    return b;
}

void vtn_tls_io_begin(vtn_tls_io *io, const char *in, size_t n, vtn_buf *wire)
{
    io->in = in;
    io->in_len = n;
    io->wire = wire;
    io->wire_rc = 0;
    ERR_clear_error(); /* the queue is per thread and shared by every connection */
}

void vtn_tls_io_end(vtn_tls_io *io)
{
    io->in = NULL;
    io->in_len = 0;
    io->wire = NULL;
}

/* -------------------------------------------------------------------------
 * The engines' SSL_CTX and connections
 * ---------------------------------------------------------------------- */

void vtn_tls_slot_init(vtn_tls_slot *s)
{
    pthread_mutex_init(&s->lock, NULL);
    s->ssl_ctx = NULL;
    s->generation = 0;
}

void vtn_tls_slot_destroy(vtn_tls_slot *s)
{
    SSL_CTX_free(s->ssl_ctx);
    s->ssl_ctx = NULL;
    pthread_mutex_destroy(&s->lock);
}

void vtn_tls_slot_set(vtn_tls_slot *s, SSL_CTX *fresh)
{
    SSL_CTX *old;
    pthread_mutex_lock(&s->lock);
    old = s->ssl_ctx;
    s->ssl_ctx = fresh;
    s->generation++;
    pthread_mutex_unlock(&s->lock);
    SSL_CTX_free(old); /* freed for real when its last connection ends */
}

int vtn_tls_ticket_key_parse(const char *line, unsigned char key[VTN_TLS_TICKET_KEY_LEN])
{
    const char *end;

    while (isspace((unsigned char)*line))
        line++;
    for (end = line; *end != '\0' && !isspace((unsigned char)*end); end++)
        ;
    if (vtn_hex_decode(line, (size_t)(end - line), key, VTN_TLS_TICKET_KEY_LEN) !=
        VTN_TLS_TICKET_KEY_LEN)
        return -1;
    while (isspace((unsigned char)*end))
        end++;
    return *end == '\0' ? 0 : -1;
}

int vtn_tls_ticket_key_skip(const char *line)
{
    while (isspace((unsigned char)*line))
        line++;
    return *line == '\0' || *line == '#';
}

int vtn_tls_dup_setting(char **dst, const char *src)
{
    *dst = strdup(src != NULL ? src : "");
    return *dst != NULL ? 0 : -ENOMEM;
}

int vtn_tls_slot_build(vtn_tls_slot *s, vtn_tls_ctx_builder *build, const void *arg, char *err,
                       size_t errlen)
{
    SSL_CTX *fresh;
    int rc = -EINVAL;

    if (err != NULL && errlen > 0)
        err[0] = '\0';
    fresh = build(arg, &rc, err, errlen);
    if (fresh == NULL)
        return rc < 0 ? rc : -EINVAL;
    vtn_tls_slot_set(s, fresh);
    return 0;
}

unsigned vtn_tls_slot_generation(const vtn_tls_slot *s)
{
    pthread_mutex_t *lock = (pthread_mutex_t *)&s->lock; /* const but for the lock */
    unsigned g;
    pthread_mutex_lock(lock);
    g = s->generation;
    pthread_mutex_unlock(lock);
    return g;
}

SSL *vtn_tls_conn_new(vtn_tls_slot *s, vtn_tls_io *io)
{
    SSL *ssl;
    BIO *bio;

    pthread_mutex_lock(&s->lock);
    ssl = SSL_new(s->ssl_ctx); /* takes its own reference on the SSL_CTX */
    pthread_mutex_unlock(&s->lock);
    bio = vtn_tls_bio_new(io);
    if (ssl == NULL || bio == NULL) {
        BIO_free(bio);
        SSL_free(ssl);
        ERR_clear_error();
        return NULL;
    }
    SSL_set_bio(ssl, bio, bio); /* one BIO both ways; the SSL owns it now */
    return ssl;
}

int vtn_tls_handshake(SSL *ssl, const vtn_tls_io *io, int *ssl_err)
{
    int r = SSL_do_handshake(ssl);
    if (r == 1)
        return 1;
    *ssl_err = SSL_get_error(ssl, r);
    return *ssl_err == SSL_ERROR_WANT_READ && io->wire_rc == 0 ? 0 : -1;
}

int vtn_tls_read_all(SSL *ssl, const vtn_tls_io *io, vtn_buf *plain, int *ssl_err)
{
    char tmp[16384]; /* one TLS record of plaintext at most */

    for (;;) {
        int r = SSL_read(ssl, tmp, sizeof(tmp));
        if (r > 0) {
            int rc = vtn_buf_append(plain, tmp, (size_t)r);
            if (rc < 0)
                return rc;
            continue;
        }
        *ssl_err = SSL_get_error(ssl, r);
        if (*ssl_err == SSL_ERROR_WANT_READ && io->wire_rc == 0)
            return 0;
        if (*ssl_err == SSL_ERROR_ZERO_RETURN)
            return VTN_TLS_CLOSED;
        return -EPROTO;
    }
}

int vtn_tls_write_all(SSL *ssl, const char *p, size_t n, int *ssl_err)
{
    while (n > 0) {
        int chunk = n > INT_MAX ? INT_MAX : (int)n;
        int r = SSL_write(ssl, p, chunk);
        if (r <= 0) {
            *ssl_err = SSL_get_error(ssl, r);
            return -1;
        }
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

int vtn_tls_close_notify(SSL *ssl, vtn_tls_io *io, vtn_buf *wire)
{
    int rc;
    vtn_tls_io_begin(io, NULL, 0, wire);
    SSL_shutdown(ssl); /* 0: our close_notify is out; we do not wait for theirs */
    rc = io->wire_rc;
    ERR_clear_error();
    vtn_tls_io_end(io);
    return rc;
}
