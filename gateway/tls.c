/* TLS server engine on an in-memory BIO (see tls.h). */
#include "tls.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "tls_engine.h"
#include "tls_tickets.h"
#include "vtn/log.h"
#include "vtn/pki.h"
#include "vtn/tlsconf.h"

#define GW_TLS_SESSION_CONTEXT "openvtn-oadr"
/* ticket lifetime: a VEN reconnecting within 2 h resumes */
#define GW_TLS_SESSION_LIFETIME_S 7200
#define GW_TLS_VERIFY_DEPTH 5
#define GW_TLS_DEFAULT_HANDSHAKE_MS 10000
#define GW_TLS_DEFAULT_SESSION_CACHE 10000
#define GW_TLS_ERRLEN 256

struct gw_tls_ctx {
    char *certs, *client_ca, *crl, *protocols, *ticket_keys; /* owned copies of the settings */
    long long handshake_timeout_ms;
    enum { GW_RESUME_TICKETS, GW_RESUME_CACHE, GW_RESUME_OFF } resumption;
    long session_cache_size;
    vtn_tls_slot slot; /* the SSL_CTX for new connections */
};

_Static_assert(GW_TLS_EOF == 1, "gw__tls_feed returns 1 at close_notify");

struct gw_tls {
    gw__tls_conn c; /* first: the engine's callbacks get it back from the SSL */
    char error[GW_TLS_ERRLEN];
};

static int crl_set_index = -1; /* SSL_CTX ex_data slot owning its gw_crl_set */
static pthread_once_t crl_once = PTHREAD_ONCE_INIT;

static void crl_set_free(void *set);
static const gw__tls_ex_dtor crl_set_dtor = {crl_set_free};

static void crl_once_init(void)
{
    crl_set_index = gw__tls_ctx_ex_index(&crl_set_dtor);
}

/* -------------------------------------------------------------------------
 * Settings parsing
 * ---------------------------------------------------------------------- */

static int empty(const char *s)
{
    return s == NULL || s[0] == '\0';
}

static int load_client_cas(SSL_CTX *sc, const char *list, char *err, size_t errlen)
{
    STACK_OF(X509_NAME) *names = sk_X509_NAME_new_null();
    int n;

    if (names == NULL)
        return -ENOMEM;
    n = vtn_tls_load_cas(sc, "VTN_TLS_CLIENT_CA", list, "client_ca", names, err, errlen);
    if (n == 0) {
        snprintf(err, errlen,
                 "VTN_TLS_CLIENT_CA is required with VTN_TLS_CERTS: OpenADR 2.0b needs client "
                 "certificates");
        n = -EINVAL;
    }
    if (n < 0) {
        sk_X509_NAME_pop_free(names, X509_NAME_free);
        return n;
    }
    /* the names go into the CertificateRequest so a VEN can pick its certificate */
    SSL_CTX_set_client_CA_list(sc, names);
    return 0;
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

/* Frees the set with the SSL_CTX, that is when the last connection made
 * under a replaced configuration ends (crl_set_dtor). */
static void crl_set_free(void *p)
{
    gw_crl_set *set = p;
    if (set == NULL)
        return;
    for (size_t i = 0; i < set->n; i++) {
        X509_free(set->crl[i].issuer);
        X509_CRL_free(set->crl[i].crl);
    }
    free(set);
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
    vtn_tls_sanitize(out);
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

struct crl_files {
    gw_crl_set *set;
    X509_STORE *store;
    char *err;
    size_t errlen;
};

/* The CRLs of one PEM file into the set. */
static int load_crl_file(char *path, void *arg)
{
    struct crl_files *f = arg;
    STACK_OF(X509_INFO) * infos;
    int n = 0, rc = 0;

    infos = vtn_tls_read_pem_infos("VTN_TLS_CRL", path, f->err, f->errlen);
    if (infos == NULL)
        return -EINVAL;
    for (int i = 0; i < sk_X509_INFO_num(infos) && rc == 0; i++) {
        X509_CRL *crl = sk_X509_INFO_value(infos, i)->crl;
        if (crl == NULL)
            continue;
        rc = crl_bind(f->set, f->store, crl, path, f->err, f->errlen);
        n++;
    }
    sk_X509_INFO_pop_free(infos, X509_INFO_free);
    if (rc < 0)
        return rc;
    if (n == 0) {
        snprintf(f->err, f->errlen, "VTN_TLS_CRL: %s: no PEM CRL", path);
        return -EINVAL;
    }
    return 0;
}

static int load_crls(SSL_CTX *sc, const char *list, char *err, size_t errlen)
{
    struct crl_files f = {calloc(1, sizeof(gw_crl_set)), SSL_CTX_get_cert_store(sc), err, errlen};
    gw_crl_set *set = f.set;
    int rc;

    if (set == NULL)
        return -ENOMEM;
    if ((rc = vtn_tls_each(list, load_crl_file, &f)) < 0) {
        crl_set_free(set);
        return rc;
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

/* X509_V_OK, or the X509_V_ERR_* that refuses the certificate. issuer is
 * the CA that verified leaf; NULL for a resumed session's certificate,
 * verified when the session began: then the CA that issued it by name and
 * key identifier. */
static int crl_status(const gw_crl_set *set, X509 *leaf, X509 *issuer, time_t now)
{
    const gw_crl *e = NULL;
    X509_REVOKED *rev;

    for (size_t i = 0; i < set->n && e == NULL; i++) {
        X509 *ca = set->crl[i].issuer;
        if (issuer != NULL ? ca == issuer || X509_cmp(ca, issuer) == 0
                           : X509_check_issued(ca, leaf) == X509_V_OK)
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

/* A ticket resumes a session without the certificate checks. With ticket
 * keys shared over gateways and reloads (VTN_TLS_TICKET_KEYS), a ticket can
 * outlive its certificate's validity or be older than the CRL that revokes
 * it, so a decrypted session resumes only if its certificate would still
 * pass the time and revocation checks; otherwise the VEN gets the full
 * handshake, which then refuses it with the reason. */
static SSL_TICKET_RETURN ticket_check_cb(SSL *s, SSL_SESSION *ss, const unsigned char *keyname,
                                         size_t keyname_len, SSL_TICKET_STATUS status, void *arg)
{
    const gw_crl_set *set;
    X509 *peer;
    int e = X509_V_OK;

    (void)keyname;
    (void)keyname_len;
    (void)arg;
    switch (status) {
    case SSL_TICKET_SUCCESS:
    case SSL_TICKET_SUCCESS_RENEW:
        break;
    case SSL_TICKET_EMPTY:
    case SSL_TICKET_NO_DECRYPT:
        return SSL_TICKET_RETURN_IGNORE_RENEW;
    default:
        return SSL_TICKET_RETURN_ABORT;
    }
    peer = SSL_SESSION_get0_peer(ss);
    set = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(s), crl_set_index);
    if (peer == NULL)
        e = X509_V_ERR_UNSPECIFIED;
    else if (X509_cmp_current_time(X509_get0_notAfter(peer)) <= 0)
        e = X509_V_ERR_CERT_HAS_EXPIRED;
    else if (set != NULL)
        e = crl_status(set, peer, NULL, time(NULL));
    if (e != X509_V_OK) {
        char subj[128] = "?";
        if (peer != NULL)
            X509_NAME_oneline(X509_get_subject_name(peer), subj, sizeof(subj));
        vtn_tls_sanitize(subj);
        vtn_debug("tls_ticket_refused", "reason=\"%s\" subject=\"%s\"",
                  X509_verify_cert_error_string(e), subj);
        return SSL_TICKET_RETURN_IGNORE_RENEW;
    }
    return status == SSL_TICKET_SUCCESS ? SSL_TICKET_RETURN_USE : SSL_TICKET_RETURN_USE_RENEW;
}

/* Builds a complete SSL_CTX from the settings; NULL with err set. */
static SSL_CTX *build_ssl_ctx(const void *arg, int *rc_out, char *err, size_t errlen)
{
    const gw_tls_ctx *c = arg;
    SSL_CTX *sc = NULL;
    int n, rc = -EINVAL;

    if (empty(c->certs)) {
        snprintf(err, errlen, "VTN_TLS_CERTS: no certificate configured");
        goto out;
    }
    sc = gw__tls_ssl_ctx_new(TLS_server_method(), "VTN_TLS_PROTOCOLS", c->protocols, &rc, err,
                             errlen);
    if (sc == NULL)
        goto out;
    rc = -EINVAL;
    SSL_CTX_set_options(sc, SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_timeout(sc, GW_TLS_SESSION_LIFETIME_S);
    switch (c->resumption) {
    case GW_RESUME_TICKETS:
        /* tickets carry the session, so no server-side cache to bound */
        SSL_CTX_clear_options(sc, SSL_OP_NO_TICKET);
        SSL_CTX_set_session_cache_mode(sc, SSL_SESS_CACHE_OFF);
        SSL_CTX_set_num_tickets(sc, 1);
        if (SSL_CTX_set_session_ticket_cb(sc, NULL, ticket_check_cb, NULL) != 1) {
            vtn_pki_errstr(err, errlen, "session ticket callback");
            goto out;
        }
        /* without a key file OpenSSL makes a random key for this SSL_CTX */
        if (!empty(c->ticket_keys) &&
            (rc = gw__tls_ticket_keys_load(sc, c->ticket_keys, err, errlen)) < 0)
            goto out;
        rc = -EINVAL;
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

    if ((rc = gw__tls_load_pairs(sc, "VTN_TLS_CERTS", c->certs, "server_certificate",
                                 "no certificate configured", err, errlen)) < 0)
        goto out;
    rc = -EINVAL;
    if ((n = load_client_cas(sc, c->client_ca, err, errlen)) < 0) {
        rc = n;
        goto out;
    }

    {
        X509_VERIFY_PARAM *param = SSL_CTX_get0_param(sc);
        /* trusting an intermediate alone (a utility's VEN sub-CA) must work */
        unsigned long flags = X509_V_FLAG_PARTIAL_CHAIN;
        if (!empty(c->crl)) {
            if ((n = load_crls(sc, c->crl, err, errlen)) < 0) {
                rc = n;
                goto out;
            }
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

void gw_tls_ctx_free(gw_tls_ctx **pc)
{
    gw_tls_ctx *c;
    if (pc == NULL || *pc == NULL)
        return;
    c = *pc;
    vtn_tls_slot_destroy(&c->slot);
    free(c->certs);
    free(c->client_ca);
    free(c->crl);
    free(c->protocols);
    free(c->ticket_keys);
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
    pthread_once(&crl_once, crl_once_init);
    if (crl_set_index < 0) {
        snprintf(err, errlen, "SSL ex_data index");
        return -ENOMEM;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        return -ENOMEM;
    vtn_tls_slot_init(&c->slot);
    if (vtn_tls_dup_setting(&c->certs, s->certs) < 0 ||
        vtn_tls_dup_setting(&c->client_ca, s->client_ca) < 0 ||
        vtn_tls_dup_setting(&c->crl, s->crl) < 0 ||
        vtn_tls_dup_setting(&c->protocols, s->protocols) < 0 ||
        vtn_tls_dup_setting(&c->ticket_keys, s->ticket_keys) < 0) {
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
    if (c->resumption != GW_RESUME_TICKETS && !empty(c->ticket_keys)) {
        snprintf(err, errlen, "VTN_TLS_TICKET_KEYS is set, but VTN_TLS_RESUMPTION is %s",
                 s->resumption);
        gw_tls_ctx_free(&c);
        return -EINVAL;
    }
    c->session_cache_size = s->session_cache_size > 0 && s->session_cache_size <= LONG_MAX
                                ? (long)s->session_cache_size
                                : GW_TLS_DEFAULT_SESSION_CACHE;
    rc = gw_tls_ctx_reload(c, err, errlen); /* generation 1 */
    if (rc < 0) {
        gw_tls_ctx_free(&c);
        return rc;
    }
    *out = c;
    return 0;
}

int gw_tls_ctx_reload(gw_tls_ctx *c, char *err, size_t errlen)
{
    return vtn_tls_slot_build(&c->slot, build_ssl_ctx, c, err, errlen);
}

long long gw_tls_ctx_handshake_timeout_ms(const gw_tls_ctx *c)
{
    return c->handshake_timeout_ms;
}

unsigned gw_tls_ctx_generation(const gw_tls_ctx *c)
{
    return vtn_tls_slot_generation(&c->slot);
}

/* -------------------------------------------------------------------------
 * Connection
 * ---------------------------------------------------------------------- */

/* Records the first verification failure with the subject it concerns,
 * which says far more in a log than OpenSSL's "certificate verify failed". */
static int verify_cb(int ok, X509_STORE_CTX *xs)
{
    gw_tls *t;

    if (ok)
        return ok;
    t = (gw_tls *)gw__tls_conn_of_store(xs);
    if (t != NULL && t->error[0] == '\0') {
        char subj[128] = "?";
        X509 *cur = X509_STORE_CTX_get_current_cert(xs);
        int e = X509_STORE_CTX_get_error(xs);
        if (cur != NULL)
            X509_NAME_oneline(X509_get_subject_name(cur), subj, sizeof(subj));
        snprintf(t->error, sizeof(t->error),
                 "client certificate rejected: %s (depth %d, subject %s)",
                 X509_verify_cert_error_string(e), X509_STORE_CTX_get_error_depth(xs), subj);
        vtn_tls_sanitize(t->error);
    }
    return ok;
}

/* The handshake completed: the envelope needs the client's fingerprint. */
static const char *server_handshake_done(gw__tls_conn *c)
{
    if (vtn_fingerprint_x509(SSL_get0_peer_certificate(c->ssl), c->fingerprint) < 0)
        return "fingerprint of the client certificate";
    return NULL;
}

static const gw__tls_engine server_engine = {
    .rejected = "client certificate rejected",
    .read_when = "read",
    .handshake_done = server_handshake_done,
};

int gw_tls_new(gw_tls_ctx *c, gw_tls **out)
{
    gw_tls *t = calloc(1, sizeof(*t));

    *out = NULL;
    if (t == NULL)
        return -ENOMEM;
    if (gw__tls_conn_init(&t->c, &server_engine, &c->slot, t->error, sizeof(t->error)) < 0) {
        free(t);
        return -ENOMEM;
    }
    SSL_set_accept_state(t->c.ssl);
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
    if ((*pt)->c.done && !(*pt)->c.failed)
        SSL_set_shutdown((*pt)->c.ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
    gw__tls_conn_free(&(*pt)->c);
    free(*pt);
    *pt = NULL;
}

int gw_tls_feed(gw_tls *t, const char *in, size_t n, vtn_buf *plain, vtn_buf *wire)
{
    return gw__tls_feed(&t->c, in, n, plain, wire);
}

int gw_tls_write(gw_tls *t, const char *p, size_t n, vtn_buf *wire)
{
    gw_tls_iov one = {p, n};
    return gw__tls_writev(&t->c, &one, 1, wire);
}

int gw_tls_writev(gw_tls *t, const gw_tls_iov *iov, int n, vtn_buf *wire)
{
    return gw__tls_writev(&t->c, iov, n, wire);
}

int gw_tls_shutdown(gw_tls *t, vtn_buf *wire)
{
    return gw__tls_shutdown(&t->c, wire);
}

int gw_tls_handshake_done(const gw_tls *t)
{
    return t->c.done && !t->c.failed;
}

const char *gw_tls_fingerprint(const gw_tls *t)
{
    return t->c.done ? t->c.fingerprint : "";
}

const char *gw_tls_error(const gw_tls *t)
{
    return t->error;
}

const char *gw_tls_version(const gw_tls *t)
{
    return gw__tls_version(&t->c);
}

const char *gw_tls_cipher(const gw_tls *t)
{
    return gw__tls_cipher(&t->c);
}

int gw_tls_resumed(const gw_tls *t)
{
    return t->c.done && SSL_session_reused(t->c.ssl);
}
