/* TLS server engine on an in-memory BIO (see tls.h). */
#include "tls.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "vtn/log.h"
#include "vtn/pki.h"

/* The two OpenADR 2.0b suites, ECC first so a client offering both gets
 * forward secrecy. TLS 1.3 suites stay OpenSSL's defaults. */
#define GW_TLS12_CIPHERS "ECDHE-ECDSA-AES128-SHA256:AES128-SHA256"
#define GW_TLS_SESSION_CONTEXT "openvtn-oadr"
/* ticket lifetime: a VEN reconnecting within 2 h resumes */
#define GW_TLS_SESSION_LIFETIME_S 7200
#define GW_TLS_VERIFY_DEPTH 5
#define GW_TLS_DEFAULT_HANDSHAKE_MS 10000
#define GW_TLS_DEFAULT_SESSION_CACHE 10000
#define GW_TLS_ERRLEN 256

struct gw_tls_ctx {
    char *certs, *client_ca, *crl, *protocols; /* owned copies of the settings */
    long long handshake_timeout_ms;
    enum { GW_RESUME_TICKETS, GW_RESUME_CACHE, GW_RESUME_OFF } resumption;
    long session_cache_size;
    pthread_mutex_t lock; /* guards ssl_ctx against a reload from another thread */
    SSL_CTX *ssl_ctx;     /* for new connections; SSL objects hold their own reference */
    unsigned generation;
};

/* The connection's BIO reads straight from the bytes being fed and writes
 * straight into the caller's wire buffer, so an idle connection holds no
 * BIO buffers (memory BIOs keep their largest size forever) and nothing is
 * copied twice. in/wire are set only for the duration of one call. */
struct gw_tls {
    SSL *ssl;
    const char *in; /* ciphertext not yet consumed by OpenSSL */
    size_t in_len;
    vtn_buf *wire; /* where OpenSSL's output goes during this call */
    int wire_rc;   /* the vtn_buf error that stopped a write */
    unsigned done : 1, failed : 1, peer_closed : 1, shut : 1;
    char fingerprint[VTN_FINGERPRINT_SIZE];
    char error[GW_TLS_ERRLEN];
};

static int conn_index = -1;    /* SSL ex_data slot pointing back at the gw_tls */
static int crl_set_index = -1; /* SSL_CTX ex_data slot owning its gw_crl_set */
static BIO_METHOD *conn_bio_method;
static pthread_once_t conn_once = PTHREAD_ONCE_INIT;

static void conn_bio_init(void);
static void sanitize(char *s);
static void crl_set_ex_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
                            void *argp);

static void conn_once_init(void)
{
    conn_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    crl_set_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, crl_set_ex_free);
    conn_bio_init();
}

/* -------------------------------------------------------------------------
 * Settings parsing
 * ---------------------------------------------------------------------- */

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

static int parse_protocols(const char *s, int *minv, int *maxv, char *err, size_t errlen)
{
    char buf[256], *save = NULL, *tok;

    *minv = TLS1_2_VERSION;
    *maxv = TLS1_3_VERSION;
    if (empty(s))
        return 0;
    if (strlen(s) >= sizeof(buf)) {
        snprintf(err, errlen, "VTN_TLS_PROTOCOLS: too long");
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
                     "VTN_TLS_PROTOCOLS: \"%s\" is not allowed (use TLSv1.2 and/or TLSv1.3; "
                     "OpenADR 2.0b requires TLS 1.2)",
                     tok);
            return -EINVAL;
        }
        if (*minv == 0 || v < *minv)
            *minv = v;
        if (v > *maxv)
            *maxv = v;
    }
    if (*minv == 0) {
        snprintf(err, errlen, "VTN_TLS_PROTOCOLS: no protocol given");
        return -EINVAL;
    }
    return 0;
}

static const char *key_type_name(EVP_PKEY *k)
{
    switch (EVP_PKEY_get_base_id(k)) {
    case EVP_PKEY_RSA:
        return "RSA";
    case EVP_PKEY_EC:
        return "ECC";
    default:
        return "other";
    }
}

static void warn_validity(const char *what, const char *path, const ASN1_TIME *not_after)
{
    if (not_after != NULL && X509_cmp_current_time(not_after) < 0)
        vtn_warn("tls_expired", "what=%s file=%s", what, path);
}

/* One "cert.pem:key.pem" (or "both.pem") pair into the context. */
static int load_pair(SSL_CTX *sc, char *pair, int *seen_rsa, int *seen_ec, char *err, size_t errlen)
{
    char *colon = strchr(pair, ':');
    const char *cert_path = pair, *key_path = pair;
    char why[GW_TLS_ERRLEN + 64];
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
        snprintf(err, errlen, "VTN_TLS_CERTS: expected cert.pem:key.pem, got \"%s\"", pair);
        return -EINVAL;
    }
    f = fopen(cert_path, "r");
    if (f == NULL) {
        snprintf(err, errlen, "VTN_TLS_CERTS: %s: %s", cert_path, strerror(errno));
        return -EINVAL;
    }
    ERR_clear_error();
    leaf = PEM_read_X509(f, NULL, NULL, NULL);
    if (leaf == NULL) {
        snprintf(err, errlen, "VTN_TLS_CERTS: %s: no PEM certificate", cert_path);
        goto out;
    }
    if (SSL_CTX_use_certificate(sc, leaf) != 1) {
        snprintf(why, sizeof(why), "VTN_TLS_CERTS: %s", cert_path);
        vtn_pki_errstr(err, errlen, why);
        goto out;
    }
    /* intermediates after the leaf go to this certificate's own chain */
    while ((extra = PEM_read_X509(f, NULL, NULL, NULL)) != NULL) {
        if (SSL_CTX_add0_chain_cert(sc, extra) != 1) {
            X509_free(extra);
            snprintf(why, sizeof(why), "VTN_TLS_CERTS: %s: chain", cert_path);
            vtn_pki_errstr(err, errlen, why);
            goto out;
        }
    }
    ERR_clear_error(); /* the loop ends on "no start line" */

    key = vtn_pki_read_key(key_path, why, sizeof(why));
    if (key == NULL) {
        snprintf(err, errlen, "VTN_TLS_CERTS: %s", why);
        goto out;
    }
    if (SSL_CTX_use_PrivateKey(sc, key) != 1 || SSL_CTX_check_private_key(sc) != 1) {
        ERR_clear_error();
        snprintf(err, errlen, "VTN_TLS_CERTS: the key in %s does not match the certificate in %s",
                 key_path, cert_path);
        goto out;
    }
    switch (EVP_PKEY_get_base_id(key)) {
    case EVP_PKEY_RSA:
        if ((*seen_rsa)++) {
            snprintf(err, errlen,
                     "VTN_TLS_CERTS: %s is a second RSA certificate (one per key type)", cert_path);
            goto out;
        }
        break;
    case EVP_PKEY_EC:
        if ((*seen_ec)++) {
            snprintf(err, errlen,
                     "VTN_TLS_CERTS: %s is a second ECC certificate (one per key type)", cert_path);
            goto out;
        }
        break;
    default:
        snprintf(err, errlen, "VTN_TLS_CERTS: %s: %s key (OpenADR uses RSA or ECC)", cert_path,
                 key_type_name(key));
        goto out;
    }
    warn_validity("server_certificate", cert_path, X509_get0_notAfter(leaf));
    rc = 0;
out:
    if (f != NULL)
        fclose(f);
    X509_free(leaf);
    EVP_PKEY_free(key);
    return rc;
}

/* Reads every certificate and CRL in one PEM file. */
static STACK_OF(X509_INFO) *
    read_pem_infos(const char *setting, const char *path, char *err, size_t errlen)
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
        char why[GW_TLS_ERRLEN];
        snprintf(why, sizeof(why), "%s: %s", setting, path);
        vtn_pki_errstr(err, errlen, why);
    }
    return infos;
}

static int load_client_cas(SSL_CTX *sc, char *list, char *err, size_t errlen)
{
    X509_STORE *store = SSL_CTX_get_cert_store(sc);
    STACK_OF(X509_NAME) *names = sk_X509_NAME_new_null();
    char *save = NULL, *tok;
    int total = 0, rc = -EINVAL;

    if (names == NULL)
        return -ENOMEM;
    for (tok = strtok_r(list, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
        const char *path = trim(tok);
        STACK_OF(X509_INFO) * infos;
        int n = 0;

        if (empty(path))
            continue;
        infos = read_pem_infos("VTN_TLS_CLIENT_CA", path, err, errlen);
        if (infos == NULL)
            goto out;
        for (int i = 0; i < sk_X509_INFO_num(infos); i++) {
            X509 *x = sk_X509_INFO_value(infos, i)->x509;
            X509_NAME *name;
            if (x == NULL)
                continue;
            /* A leaf here would become a trust anchor of its own (partial
             * chains are allowed); say so instead of trusting it silently. */
            if (X509_check_ca(x) < 1) {
                char subj[160];
                X509_NAME_oneline(X509_get_subject_name(x), subj, sizeof(subj));
                snprintf(err, errlen, "VTN_TLS_CLIENT_CA: %s: %s is not a CA certificate", path,
                         subj);
                sk_X509_INFO_pop_free(infos, X509_INFO_free);
                goto out;
            }
            if (X509_STORE_add_cert(store, x) != 1 ||
                (name = X509_NAME_dup(X509_get_subject_name(x))) == NULL ||
                !sk_X509_NAME_push(names, name)) {
                vtn_pki_errstr(err, errlen, "VTN_TLS_CLIENT_CA");
                sk_X509_INFO_pop_free(infos, X509_INFO_free);
                goto out;
            }
            warn_validity("client_ca", path, X509_get0_notAfter(x));
            n++;
        }
        sk_X509_INFO_pop_free(infos, X509_INFO_free);
        if (n == 0) {
            snprintf(err, errlen, "VTN_TLS_CLIENT_CA: %s: no PEM certificate", path);
            goto out;
        }
        total += n;
    }
    if (total == 0) {
        snprintf(err, errlen,
                 "VTN_TLS_CLIENT_CA is required with VTN_TLS_CERTS: OpenADR 2.0b needs client "
                 "certificates");
        goto out;
    }
    /* the names go into the CertificateRequest so a VEN can pick its certificate */
    SSL_CTX_set_client_CA_list(sc, names);
    names = NULL;
    rc = 0;
out:
    sk_X509_NAME_pop_free(names, X509_NAME_free);
    return rc;
}

/* -------------------------------------------------------------------------
 * Revocation
 *
 * The gateway checks CRLs itself rather than with X509_V_FLAG_CRL_CHECK:
 * OpenSSL would verify the CRL's signature again in every handshake, an
 * ECDSA or RSA verification that is a tenth of a new handshake's CPU. Here
 * each CRL is verified once, when it is loaded, against the client CA that
 * signed it, and a handshake only looks the VEN's serial number up in the
 * CRL of the CA that verified its certificate (a binary search). The rules
 * are OpenSSL's for a leaf: no valid CRL of its issuer, no connection.
 * ---------------------------------------------------------------------- */

#define GW_TLS_MAX_CRLS 64

typedef struct gw_crl {
    X509 *issuer; /* the client CA whose key signed the CRL */
    X509_CRL *crl;
    time_t this_update, next_update; /* next_update 0: the CRL gives none */
} gw_crl;

typedef struct gw_crl_set {
    size_t n;
    gw_crl crl[GW_TLS_MAX_CRLS];
} gw_crl_set;

static void crl_set_free(gw_crl_set *set)
{
    if (set == NULL)
        return;
    for (size_t i = 0; i < set->n; i++) {
        X509_free(set->crl[i].issuer);
        X509_CRL_free(set->crl[i].crl);
    }
    free(set);
}

/* Frees the set with the SSL_CTX, that is when the last connection made
 * under a replaced configuration ends. */
static void crl_set_ex_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
                            void *argp)
{
    (void)parent;
    (void)ad;
    (void)idx;
    (void)argl;
    (void)argp;
    crl_set_free(ptr);
}

static int asn1_time_to_time_t(const ASN1_TIME *a, time_t *out)
{
    struct tm tm;
    if (a == NULL || ASN1_TIME_to_tm(a, &tm) != 1)
        return -1;
    *out = timegm(&tm);
    return 0;
}

static void crl_issuer_name(const X509_CRL *crl, char *out, size_t outlen)
{
    X509_NAME_oneline(X509_CRL_get_issuer(crl), out, (int)outlen);
    sanitize(out);
}

/* What this gateway cannot honour is refused at load, not ignored. */
static int crl_check_supported(X509_CRL *crl, const char *path, char *err, size_t errlen)
{
    ISSUING_DIST_POINT *idp;
    int crit = -1;

    if (X509_CRL_get_ext_by_NID(crl, NID_delta_crl, -1) >= 0) {
        snprintf(err, errlen, "VTN_TLS_CRL: %s: delta CRLs are not supported; give full CRLs",
                 path);
        return -EINVAL;
    }
    for (int i = 0; i < X509_CRL_get_ext_count(crl); i++) {
        X509_EXTENSION *ext = X509_CRL_get_ext(crl, i);
        int nid = OBJ_obj2nid(X509_EXTENSION_get_object(ext));
        if (X509_EXTENSION_get_critical(ext) && nid != NID_issuing_distribution_point &&
            nid != NID_crl_number && nid != NID_authority_key_identifier) {
            snprintf(err, errlen, "VTN_TLS_CRL: %s: unsupported critical CRL extension %s", path,
                     nid != NID_undef ? OBJ_nid2sn(nid) : "(unknown)");
            return -EINVAL;
        }
    }
    idp = X509_CRL_get_ext_d2i(crl, NID_issuing_distribution_point, &crit, NULL);
    if (idp == NULL && crit != -1) {
        snprintf(err, errlen, "VTN_TLS_CRL: %s: unreadable issuing distribution point", path);
        return -EINVAL;
    }
    if (idp != NULL) {
        int partial =
            idp->indirectCRL || idp->onlysomereasons != NULL || idp->onlyCA || idp->onlyattr;
        ISSUING_DIST_POINT_free(idp);
        if (partial) {
            snprintf(err, errlen,
                     "VTN_TLS_CRL: %s: an indirect or partial CRL (issuing distribution point "
                     "limits it); give the CA's full CRL",
                     path);
            return -EINVAL;
        }
    }
    return 0;
}

/* Binds one CRL to the client CA that signed it, verifying the signature. */
static int crl_bind(gw_crl_set *set, X509_STORE *store, X509_CRL *crl, const char *path, char *err,
                    size_t errlen)
{
    STACK_OF(X509_OBJECT) * objs;
    X509 *issuer = NULL;
    gw_crl *e;
    char name[200];

    if (set->n == GW_TLS_MAX_CRLS) {
        snprintf(err, errlen, "VTN_TLS_CRL: more than %d CRLs", GW_TLS_MAX_CRLS);
        return -EINVAL;
    }
    if (crl_check_supported(crl, path, err, errlen) < 0)
        return -EINVAL;
    crl_issuer_name(crl, name, sizeof(name));
    objs = X509_STORE_get0_objects(store);
    for (int i = 0; i < sk_X509_OBJECT_num(objs) && issuer == NULL; i++) {
        X509 *ca = X509_OBJECT_get0_X509(sk_X509_OBJECT_value(objs, i));
        EVP_PKEY *key;
        if (ca == NULL || X509_NAME_cmp(X509_get_subject_name(ca), X509_CRL_get_issuer(crl)) != 0)
            continue;
        key = X509_get0_pubkey(ca);
        if (key != NULL && X509_CRL_verify(crl, key) == 1)
            issuer = ca;
        ERR_clear_error();
    }
    if (issuer == NULL) {
        snprintf(err, errlen,
                 "VTN_TLS_CRL: %s: the CRL of %s is not signed by any CA in VTN_TLS_CLIENT_CA",
                 path, name);
        return -EINVAL;
    }
    for (size_t i = 0; i < set->n; i++) {
        if (X509_cmp(set->crl[i].issuer, issuer) == 0) {
            snprintf(err, errlen, "VTN_TLS_CRL: %s: a second CRL of %s (give one per CA)", path,
                     name);
            return -EINVAL;
        }
    }
    e = &set->crl[set->n];
    memset(e, 0, sizeof(*e));
    if (asn1_time_to_time_t(X509_CRL_get0_lastUpdate(crl), &e->this_update) < 0 ||
        (X509_CRL_get0_nextUpdate(crl) != NULL &&
         asn1_time_to_time_t(X509_CRL_get0_nextUpdate(crl), &e->next_update) < 0)) {
        snprintf(err, errlen, "VTN_TLS_CRL: %s: unreadable thisUpdate/nextUpdate", path);
        return -EINVAL;
    }
    if (!X509_up_ref(issuer) || !X509_CRL_up_ref(crl)) {
        snprintf(err, errlen, "VTN_TLS_CRL: out of memory");
        return -ENOMEM;
    }
    e->issuer = issuer;
    e->crl = crl;
    set->n++;
    /* OpenSSL sorts the revoked list on the first lookup, under a lock; do
     * it here, before any handshake shares the CRL */
    {
        X509_REVOKED *rev;
        ASN1_INTEGER *zero = ASN1_INTEGER_new();
        if (zero != NULL)
            (void)X509_CRL_get0_by_serial(crl, &rev, zero);
        ASN1_INTEGER_free(zero);
    }
    /* an expired CRL refuses every VEN of that CA, like OpenSSL does */
    if (e->next_update != 0 && e->next_update < time(NULL))
        vtn_warn("tls_expired", "what=crl file=%s issuer=\"%s\"", path, name);
    return 0;
}

static int load_crls(SSL_CTX *sc, char *list, char *err, size_t errlen)
{
    X509_STORE *store = SSL_CTX_get_cert_store(sc);
    gw_crl_set *set = calloc(1, sizeof(*set));
    char *save = NULL, *tok;

    if (set == NULL)
        return -ENOMEM;
    for (tok = strtok_r(list, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
        const char *path = trim(tok);
        STACK_OF(X509_INFO) * infos;
        int n = 0, rc = 0;

        if (empty(path))
            continue;
        infos = read_pem_infos("VTN_TLS_CRL", path, err, errlen);
        if (infos == NULL) {
            crl_set_free(set);
            return -EINVAL;
        }
        for (int i = 0; i < sk_X509_INFO_num(infos) && rc == 0; i++) {
            X509_CRL *crl = sk_X509_INFO_value(infos, i)->crl;
            if (crl == NULL)
                continue;
            rc = crl_bind(set, store, crl, path, err, errlen);
            n++;
        }
        sk_X509_INFO_pop_free(infos, X509_INFO_free);
        if (rc < 0) {
            crl_set_free(set);
            return rc;
        }
        if (n == 0) {
            snprintf(err, errlen, "VTN_TLS_CRL: %s: no PEM CRL", path);
            crl_set_free(set);
            return -EINVAL;
        }
    }
    if (set->n == 0) {
        /* CRL checking without a CRL would refuse every VEN */
        snprintf(err, errlen, "VTN_TLS_CRL: set, but names no CRL file");
        crl_set_free(set);
        return -EINVAL;
    }
    if (SSL_CTX_set_ex_data(sc, crl_set_index, set) != 1) {
        crl_set_free(set);
        return -ENOMEM;
    }
    return 0;
}

/* X509_V_OK, or the X509_V_ERR_* that refuses the certificate. */
static int crl_status(const gw_crl_set *set, X509 *leaf, X509 *issuer, time_t now)
{
    const gw_crl *e = NULL;
    X509_REVOKED *rev;

    for (size_t i = 0; i < set->n && e == NULL; i++) {
        if (set->crl[i].issuer == issuer || X509_cmp(set->crl[i].issuer, issuer) == 0)
            e = &set->crl[i];
    }
    if (e == NULL)
        return X509_V_ERR_UNABLE_TO_GET_CRL;
    if (now < e->this_update)
        return X509_V_ERR_CRL_NOT_YET_VALID;
    if (e->next_update != 0 && now > e->next_update)
        return X509_V_ERR_CRL_HAS_EXPIRED;
    /* 2 is removeFromCRL, which only a delta CRL may say */
    if (X509_CRL_get0_by_cert(e->crl, &rev, leaf) == 1)
        return X509_V_ERR_CERT_REVOKED;
    return X509_V_OK;
}

static int verify_cb(int ok, X509_STORE_CTX *xs);

/* Runs instead of X509_verify_cert when CRLs are configured: the chain as
 * usual, then the leaf against its issuer's CRL. */
static int verify_chain_and_crl(X509_STORE_CTX *xs, void *arg)
{
    const gw_crl_set *set = arg;
    STACK_OF(X509) * chain;
    X509 *leaf, *issuer;
    int ok = X509_verify_cert(xs), e;

    if (ok <= 0)
        return ok;
    chain = X509_STORE_CTX_get0_chain(xs);
    leaf = sk_X509_value(chain, 0);
    if (sk_X509_num(chain) > 1)
        issuer = sk_X509_value(chain, 1);
    else /* a trusted self-issued certificate is checked against its own CRL */
        issuer = leaf;
    e = crl_status(set, leaf, issuer, time(NULL));
    if (e == X509_V_OK)
        return 1;
    X509_STORE_CTX_set_error(xs, e);
    X509_STORE_CTX_set_error_depth(xs, 0);
    X509_STORE_CTX_set_current_cert(xs, leaf);
    return verify_cb(0, xs);
}

/* Builds a complete SSL_CTX from the settings; NULL with err set. */
static SSL_CTX *build_ssl_ctx(const gw_tls_ctx *c, int *rc_out, char *err, size_t errlen)
{
    SSL_CTX *sc = NULL;
    char *list = NULL, *save = NULL, *tok;
    int minv, maxv, seen_rsa = 0, seen_ec = 0, rc = -EINVAL;

    if (empty(c->certs)) {
        snprintf(err, errlen, "VTN_TLS_CERTS: no certificate configured");
        goto out;
    }
    if (parse_protocols(c->protocols, &minv, &maxv, err, errlen) < 0)
        goto out;
    rc = -ENOMEM;
    ERR_clear_error();
    sc = SSL_CTX_new(TLS_server_method());
    if (sc == NULL) {
        vtn_pki_errstr(err, errlen, "SSL_CTX_new");
        goto out;
    }
    rc = -EINVAL;
    if (SSL_CTX_set_min_proto_version(sc, minv) != 1 ||
        SSL_CTX_set_max_proto_version(sc, maxv) != 1 ||
        SSL_CTX_set_cipher_list(sc, GW_TLS12_CIPHERS) != 1) {
        vtn_pki_errstr(err, errlen, "TLS protocol/cipher setup");
        goto out;
    }
    SSL_CTX_set_options(sc, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                                SSL_OP_CIPHER_SERVER_PREFERENCE);
    /* idle keep-alive connections give their 2 x 16 KiB record buffers back */
    SSL_CTX_set_mode(sc, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_timeout(sc, GW_TLS_SESSION_LIFETIME_S);
    switch (c->resumption) {
    case GW_RESUME_TICKETS:
        /* tickets carry the session, so no server-side cache to bound */
        SSL_CTX_clear_options(sc, SSL_OP_NO_TICKET);
        SSL_CTX_set_session_cache_mode(sc, SSL_SESS_CACHE_OFF);
        SSL_CTX_set_num_tickets(sc, 1);
        break;
    case GW_RESUME_CACHE:
        /* full: OpenSSL drops the oldest session; expired ones go every
         * 255 handshakes */
        SSL_CTX_set_options(sc, SSL_OP_NO_TICKET);
        SSL_CTX_set_session_cache_mode(sc, SSL_SESS_CACHE_SERVER);
        SSL_CTX_sess_set_cache_size(sc, c->session_cache_size);
        SSL_CTX_set_num_tickets(sc, 1); /* TLS 1.3: a ticket naming the cached session */
        break;
    case GW_RESUME_OFF:
        SSL_CTX_set_options(sc, SSL_OP_NO_TICKET);
        SSL_CTX_set_session_cache_mode(sc, SSL_SESS_CACHE_OFF);
        SSL_CTX_set_num_tickets(sc, 0);
        break;
    }
    if (SSL_CTX_set_session_id_context(sc, (const unsigned char *)GW_TLS_SESSION_CONTEXT,
                                       sizeof(GW_TLS_SESSION_CONTEXT) - 1) != 1) {
        vtn_pki_errstr(err, errlen, "session id context");
        goto out;
    }

    list = strdup(c->certs);
    if (list == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    for (tok = strtok_r(list, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
        char *pair = trim(tok);
        if (empty(pair))
            continue;
        if (load_pair(sc, pair, &seen_rsa, &seen_ec, err, errlen) < 0)
            goto out;
    }
    if (seen_rsa + seen_ec == 0) {
        snprintf(err, errlen, "VTN_TLS_CERTS: no certificate configured");
        goto out;
    }
    free(list);

    list = strdup(empty(c->client_ca) ? "" : c->client_ca);
    if (list == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    if (load_client_cas(sc, list, err, errlen) < 0)
        goto out;
    free(list);
    list = NULL;

    {
        X509_VERIFY_PARAM *param = SSL_CTX_get0_param(sc);
        /* trusting an intermediate alone (a utility's VEN sub-CA) must work */
        unsigned long flags = X509_V_FLAG_PARTIAL_CHAIN;
        if (!empty(c->crl)) {
            list = strdup(c->crl);
            if (list == NULL) {
                rc = -ENOMEM;
                goto out;
            }
            if (load_crls(sc, list, err, errlen) < 0)
                goto out;
            SSL_CTX_set_cert_verify_callback(sc, verify_chain_and_crl,
                                             SSL_CTX_get_ex_data(sc, crl_set_index));
        }
        X509_VERIFY_PARAM_set_flags(param, flags);
    }
    SSL_CTX_set_verify(
        sc, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT | SSL_VERIFY_CLIENT_ONCE, verify_cb);
    SSL_CTX_set_verify_depth(sc, GW_TLS_VERIFY_DEPTH);
    rc = 0;
out:
    free(list);
    if (rc < 0) {
        SSL_CTX_free(sc);
        sc = NULL;
    }
    *rc_out = rc;
    return sc;
}

/* -------------------------------------------------------------------------
 * Context
 * ---------------------------------------------------------------------- */

static int dup_setting(char **dst, const char *src)
{
    *dst = strdup(src != NULL ? src : "");
    return *dst != NULL ? 0 : -ENOMEM;
}

void gw_tls_ctx_free(gw_tls_ctx **pc)
{
    gw_tls_ctx *c;
    if (pc == NULL || *pc == NULL)
        return;
    c = *pc;
    SSL_CTX_free(c->ssl_ctx);
    pthread_mutex_destroy(&c->lock);
    free(c->certs);
    free(c->client_ca);
    free(c->crl);
    free(c->protocols);
    free(c);
    *pc = NULL;
}

int gw_tls_ctx_new(const gw_tls_settings *s, gw_tls_ctx **out, char *err, size_t errlen)
{
    gw_tls_ctx *c;
    int rc;

    *out = NULL;
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    pthread_once(&conn_once, conn_once_init);
    if (conn_index < 0 || crl_set_index < 0 || conn_bio_method == NULL) {
        snprintf(err, errlen, "SSL ex_data index or BIO method");
        return -ENOMEM;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        return -ENOMEM;
    pthread_mutex_init(&c->lock, NULL);
    if (dup_setting(&c->certs, s->certs) < 0 || dup_setting(&c->client_ca, s->client_ca) < 0 ||
        dup_setting(&c->crl, s->crl) < 0 || dup_setting(&c->protocols, s->protocols) < 0) {
        gw_tls_ctx_free(&c);
        return -ENOMEM;
    }
    c->handshake_timeout_ms =
        s->handshake_timeout_ms > 0 ? s->handshake_timeout_ms : GW_TLS_DEFAULT_HANDSHAKE_MS;
    if (empty(s->resumption) || strcasecmp(s->resumption, "tickets") == 0) {
        c->resumption = GW_RESUME_TICKETS;
    } else if (strcasecmp(s->resumption, "cache") == 0) {
        c->resumption = GW_RESUME_CACHE;
    } else if (strcasecmp(s->resumption, "off") == 0) {
        c->resumption = GW_RESUME_OFF;
    } else {
        snprintf(err, errlen, "VTN_TLS_RESUMPTION: \"%s\" (use tickets, cache or off)",
                 s->resumption);
        gw_tls_ctx_free(&c);
        return -EINVAL;
    }
    c->session_cache_size = s->session_cache_size > 0 && s->session_cache_size <= LONG_MAX
                                ? (long)s->session_cache_size
                                : GW_TLS_DEFAULT_SESSION_CACHE;
    c->ssl_ctx = build_ssl_ctx(c, &rc, err, errlen);
    if (c->ssl_ctx == NULL) {
        gw_tls_ctx_free(&c);
        return rc;
    }
    c->generation = 1;
    *out = c;
    return 0;
}

int gw_tls_ctx_reload(gw_tls_ctx *c, char *err, size_t errlen)
{
    SSL_CTX *fresh, *old;
    int rc;

    if (err != NULL && errlen > 0)
        err[0] = '\0';
    fresh = build_ssl_ctx(c, &rc, err, errlen);
    if (fresh == NULL)
        return rc;
    pthread_mutex_lock(&c->lock);
    old = c->ssl_ctx;
    c->ssl_ctx = fresh;
    c->generation++;
    pthread_mutex_unlock(&c->lock);
    SSL_CTX_free(old); /* freed for real when its last connection ends */
    return 0;
}

long long gw_tls_ctx_handshake_timeout_ms(const gw_tls_ctx *c)
{
    return c->handshake_timeout_ms;
}

unsigned gw_tls_ctx_generation(const gw_tls_ctx *c)
{
    unsigned g;
    pthread_mutex_lock((pthread_mutex_t *)&c->lock);
    g = c->generation;
    pthread_mutex_unlock((pthread_mutex_t *)&c->lock);
    return g;
}

/* -------------------------------------------------------------------------
 * The connection's BIO
 * ---------------------------------------------------------------------- */

static int conn_bio_write(BIO *b, const char *p, int n)
{
    gw_tls *t = BIO_get_data(b);
    int rc;

    BIO_clear_retry_flags(b);
    if (t->wire == NULL) {
        t->wire_rc = -EIO; /* OpenSSL wrote outside feed/write/shutdown: a bug */
        return -1;
    }
    rc = vtn_buf_append(t->wire, p, (size_t)n);
    if (rc < 0) {
        t->wire_rc = rc;
        return -1;
    }
    return n;
}

static int conn_bio_read(BIO *b, char *p, int n)
{
    gw_tls *t = BIO_get_data(b);
    size_t k;

    BIO_clear_retry_flags(b);
    if (t->in_len == 0) {
        BIO_set_retry_read(b); /* "wait for more", never end of file */
        return -1;
    }
    k = t->in_len < (size_t)n ? t->in_len : (size_t)n;
    memcpy(p, t->in, k);
    t->in += k;
    t->in_len -= k;
    return (int)k;
}

static long conn_bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    gw_tls *t = BIO_get_data(b);
    (void)num;
    (void)ptr;
    switch (cmd) {
    case BIO_CTRL_FLUSH:
        return 1; /* every write already went to wire */
    case BIO_CTRL_PENDING:
        return t != NULL ? (long)(t->in_len > LONG_MAX ? LONG_MAX : t->in_len) : 0;
    case BIO_CTRL_WPENDING:
        return 0;
    default:
        return 0;
    }
}

static int conn_bio_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

static void conn_bio_init(void)
{
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "gw_tls");
    if (m == NULL || !BIO_meth_set_write(m, conn_bio_write) ||
        !BIO_meth_set_read(m, conn_bio_read) || !BIO_meth_set_ctrl(m, conn_bio_ctrl) ||
        !BIO_meth_set_create(m, conn_bio_create)) {
        BIO_meth_free(m);
        return;
    }
    conn_bio_method = m;
}

/* -------------------------------------------------------------------------
 * Connection
 * ---------------------------------------------------------------------- */

/* Keeps log lines one line of printable ASCII whatever a peer put in its
 * certificate's subject. */
static void sanitize(char *s)
{
    for (; *s != '\0'; s++) {
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e || *s == '"' || *s == '\\')
            *s = '?';
    }
}

/* Records the first verification failure with the subject it concerns,
 * which says far more in a log than OpenSSL's "certificate verify failed". */
static int verify_cb(int ok, X509_STORE_CTX *xs)
{
    SSL *ssl;
    gw_tls *t;

    if (ok)
        return ok;
    ssl = X509_STORE_CTX_get_ex_data(xs, SSL_get_ex_data_X509_STORE_CTX_idx());
    t = ssl != NULL ? SSL_get_ex_data(ssl, conn_index) : NULL;
    if (t != NULL && t->error[0] == '\0') {
        char subj[128] = "?";
        X509 *cur = X509_STORE_CTX_get_current_cert(xs);
        int e = X509_STORE_CTX_get_error(xs);
        if (cur != NULL)
            X509_NAME_oneline(X509_get_subject_name(cur), subj, sizeof(subj));
        snprintf(t->error, sizeof(t->error),
                 "client certificate rejected: %s (depth %d, subject %s)",
                 X509_verify_cert_error_string(e), X509_STORE_CTX_get_error_depth(xs), subj);
        sanitize(t->error);
    }
    return ok;
}

int gw_tls_new(gw_tls_ctx *c, gw_tls **out)
{
    gw_tls *t = calloc(1, sizeof(*t));
    BIO *bio;

    *out = NULL;
    if (t == NULL)
        return -ENOMEM;
    pthread_mutex_lock(&c->lock);
    t->ssl = SSL_new(c->ssl_ctx); /* takes its own reference on the SSL_CTX */
    pthread_mutex_unlock(&c->lock);
    bio = BIO_new(conn_bio_method);
    if (t->ssl == NULL || bio == NULL) {
        BIO_free(bio);
        SSL_free(t->ssl);
        free(t);
        ERR_clear_error();
        return -ENOMEM;
    }
    BIO_set_data(bio, t);
    SSL_set_bio(t->ssl, bio, bio); /* one BIO both ways; the SSL owns it now */
    SSL_set_accept_state(t->ssl);
    SSL_set_ex_data(t->ssl, conn_index, t);
    *out = t;
    return 0;
}

void gw_tls_free(gw_tls **pt)
{
    if (pt == NULL || *pt == NULL)
        return;
    /* OpenSSL drops the cached session of a connection that ends without
     * close_notify, and VENs mostly just close theirs; a connection that
     * completed its handshake and saw no protocol error keeps its session */
    if ((*pt)->done && !(*pt)->failed)
        SSL_set_shutdown((*pt)->ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
    SSL_free((*pt)->ssl);
    free(*pt);
    *pt = NULL;
}

/* Points the BIO at this call's input and output. */
static void io_begin(gw_tls *t, const char *in, size_t n, vtn_buf *wire)
{
    t->in = in;
    t->in_len = n;
    t->wire = wire;
    t->wire_rc = 0;
    ERR_clear_error(); /* the queue is per thread and shared by every connection */
}

static void io_end(gw_tls *t)
{
    t->in = NULL;
    t->in_len = 0;
    t->wire = NULL;
}

/* Marks the connection failed with the most useful reason available. */
static int fail(gw_tls *t, int ssl_err, const char *when)
{
    int rc = -EPROTO;

    t->failed = 1;
    if (t->wire_rc < 0) {
        rc = t->wire_rc;
        snprintf(t->error, sizeof(t->error), "%s: output buffer full", when);
    } else if (t->error[0] == '\0') {
        unsigned long e = ERR_peek_error();
        const char *reason = e != 0 ? ERR_reason_error_string(e) : NULL;
        long vr = SSL_get_verify_result(t->ssl);
        if (vr != X509_V_OK) {
            snprintf(t->error, sizeof(t->error), "client certificate rejected: %s",
                     X509_verify_cert_error_string(vr));
        } else if (reason != NULL) {
            snprintf(t->error, sizeof(t->error), "%s: %s", when, reason);
        } else {
            snprintf(t->error, sizeof(t->error), "%s: SSL error %d", when, ssl_err);
        }
        sanitize(t->error);
    }
    ERR_clear_error();
    io_end(t); /* any alert OpenSSL wrote is already in wire: send it, then close */
    return rc;
}

int gw_tls_feed(gw_tls *t, const char *in, size_t n, vtn_buf *plain, vtn_buf *wire)
{
    char tmp[16384]; /* one TLS record of plaintext at most */
    int rc;

    if (t->failed)
        return -EPROTO;
    io_begin(t, in, n, wire);
    if (!t->done) {
        int r = SSL_do_handshake(t->ssl);
        if (r != 1) {
            int e = SSL_get_error(t->ssl, r);
            if (e == SSL_ERROR_WANT_READ && t->wire_rc == 0) {
                io_end(t);
                return 0;
            }
            return fail(t, e, "handshake");
        }
        t->done = 1;
        if (vtn_fingerprint_x509(SSL_get0_peer_certificate(t->ssl), t->fingerprint) < 0)
            return fail(t, 0, "fingerprint of the client certificate");
    }

    for (;;) {
        int r = SSL_read(t->ssl, tmp, sizeof(tmp));
        int e;
        if (r > 0) {
            rc = vtn_buf_append(plain, tmp, (size_t)r);
            if (rc < 0) {
                t->failed = 1;
                snprintf(t->error, sizeof(t->error), "plaintext buffer full");
                io_end(t);
                return rc;
            }
            continue;
        }
        e = SSL_get_error(t->ssl, r);
        if (e == SSL_ERROR_WANT_READ && t->wire_rc == 0)
            break;
        if (e == SSL_ERROR_ZERO_RETURN) {
            t->peer_closed = 1;
            io_end(t);
            return GW_TLS_EOF;
        }
        return fail(t, e, "read");
    }
    io_end(t);
    return 0;
}

/* SSL_write until all of p[0..n) is encrypted into the wire buffer; the BIO
 * never blocks, so OpenSSL never writes part of it. io_begin must be active. */
static int write_all(gw_tls *t, const char *p, size_t n)
{
    while (n > 0) {
        int chunk = n > INT_MAX ? INT_MAX : (int)n;
        int r = SSL_write(t->ssl, p, chunk);
        if (r <= 0)
            return fail(t, SSL_get_error(t->ssl, r), "write");
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

int gw_tls_write(gw_tls *t, const char *p, size_t n, vtn_buf *wire)
{
    gw_tls_iov one = {p, n};
    return gw_tls_writev(t, &one, 1, wire);
}

int gw_tls_writev(gw_tls *t, const gw_tls_iov *iov, int n, vtn_buf *wire)
{
    char rec[16384]; /* one record's plaintext, gathered from small pieces */
    size_t fill = 0;
    int rc;

    if (t->failed)
        return -EPROTO;
    if (!t->done)
        return -EAGAIN;
    io_begin(t, NULL, 0, wire);
    for (int i = 0; i < n; i++) {
        const char *p = iov[i].p;
        size_t len = iov[i].n;
        while (len > 0) {
            if (fill == 0 && len >= sizeof(rec)) {
                /* whole records straight from the caller's memory */
                size_t whole = len - len % sizeof(rec);
                if ((rc = write_all(t, p, whole)) < 0)
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
                if ((rc = write_all(t, rec, fill)) < 0)
                    return rc;
                fill = 0;
            }
        }
    }
    if (fill > 0 && (rc = write_all(t, rec, fill)) < 0)
        return rc;
    io_end(t);
    return 0;
}

int gw_tls_shutdown(gw_tls *t, vtn_buf *wire)
{
    int rc;
    if (!t->done || t->failed || t->shut)
        return 0;
    t->shut = 1;
    io_begin(t, NULL, 0, wire);
    SSL_shutdown(t->ssl); /* 0: our close_notify is out; we do not wait for theirs */
    rc = t->wire_rc;
    ERR_clear_error();
    io_end(t);
    return rc;
}

int gw_tls_handshake_done(const gw_tls *t)
{
    return t->done && !t->failed;
}

const char *gw_tls_fingerprint(const gw_tls *t)
{
    return t->done ? t->fingerprint : "";
}

const char *gw_tls_error(const gw_tls *t)
{
    return t->error;
}

const char *gw_tls_version(const gw_tls *t)
{
    return t->done ? SSL_get_version(t->ssl) : "";
}

const char *gw_tls_cipher(const gw_tls *t)
{
    return t->done ? SSL_get_cipher_name(t->ssl) : "";
}

int gw_tls_resumed(const gw_tls *t)
{
    return t->done && SSL_session_reused(t->ssl);
}
