/* Certificate requests of the management API, without Redis: the body of
 * POST /api/v1/certificates (CSR parsing, key types, bounds), serials, query
 * strings, routes, and the signing itself against a CA made at test time,
 * checked with OpenSSL's own verification. */
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
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "vtn/fingerprint.h"
#include "wk_api.h"

static EVP_PKEY *g_p256, *g_p256b, *g_p384, *g_rsa2048, *g_rsa1024, *g_ed25519;
static wk_ca g_ca;

static int setup(void **state)
{
    (void)state;
    g_p256 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    g_p256b = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    g_p384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    g_rsa2048 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    g_rsa1024 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    g_ed25519 = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    if (!g_p256 || !g_p256b || !g_p384 || !g_rsa2048 || !g_rsa1024 || !g_ed25519)
        return -1;
    /* The CA, as vtnctl makes it (ECC P-256, self-signed, 10 years). */
    char err[256], fp[VTN_FINGERPRINT_SIZE];
    g_ca.key = vtn_pki_keygen(VTN_KEY_EC);
    vtn_cert_spec spec = {.cn = "unit test CA", .key = g_ca.key, .is_ca = 1, .days = 3650};
    g_ca.cert = vtn_pki_issue(&spec, NULL, g_ca.key, err, sizeof err);
    if (g_ca.cert == NULL)
        return -1;
    vtn_fingerprint_x509(g_ca.cert, fp);
    vtn_fingerprint_normalize(fp, g_ca.id, sizeof g_ca.id);
    g_ca.not_after = time(NULL) + 3650L * 86400;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    EVP_PKEY_free(g_p256);
    EVP_PKEY_free(g_p256b);
    EVP_PKEY_free(g_p384);
    EVP_PKEY_free(g_rsa2048);
    EVP_PKEY_free(g_rsa1024);
    EVP_PKEY_free(g_ed25519);
    wk_ca_free(&g_ca);
    return 0;
}

/* A PEM CSR for pub, signed with signer (pub's own key unless told otherwise). */
static char *csr_pem(EVP_PKEY *pub, EVP_PKEY *signer, const char *cn)
{
    X509_REQ *r = X509_REQ_new();
    X509_NAME *n = X509_NAME_new();
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0);
    X509_REQ_set_subject_name(r, n);
    X509_REQ_set_pubkey(r, pub);
    /* Ed25519 signs without a separate digest */
    X509_REQ_sign(r, signer,
                  EVP_PKEY_get_base_id(signer) == EVP_PKEY_ED25519 ? NULL : EVP_sha256());
    BIO *b = BIO_new(BIO_s_mem());
    PEM_write_bio_X509_REQ(b, r);
    char *data;
    long len = BIO_get_mem_data(b, &data);
    char *out = strndup(data, (size_t)len);
    BIO_free(b);
    X509_NAME_free(n);
    X509_REQ_free(r);
    return out;
}

static void test_check_key(void **state)
{
    (void)state;
    char err[256];
    assert_int_equal(wk_cert_check_key(g_p256, err, sizeof err), 0);
    assert_int_equal(wk_cert_check_key(g_rsa2048, err, sizeof err), 0);
    assert_int_equal(wk_cert_check_key(g_p384, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "P-256"));
    assert_non_null(strstr(err, "secp384r1"));
    assert_int_equal(wk_cert_check_key(g_rsa1024, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "1024"));
    assert_non_null(strstr(err, "2048"));
    assert_int_equal(wk_cert_check_key(g_ed25519, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "ED25519"));
    assert_int_equal(wk_cert_check_key(NULL, err, sizeof err), -EINVAL);
}

static void test_parse_csr(void **state)
{
    (void)state;
    char err[256];
    char *ok = csr_pem(g_p256, g_p256, "ven");
    X509_REQ *r = wk_cert_parse_csr(ok, strlen(ok), err, sizeof err);
    assert_non_null(r);
    X509_REQ_free(r);

    /* The older header some tools write is the same thing. */
    char *old = malloc(strlen(ok) + 16);
    const char *body = strchr(ok, '\n') + 1;
    snprintf(old, strlen(ok) + 16,
             "-----BEGIN NEW CERTIFICATE REQUEST-----\n%.*s"
             "-----END NEW CERTIFICATE REQUEST-----\n",
             (int)(strstr(ok, "-----END") - body), body);
    r = wk_cert_parse_csr(old, strlen(old), err, sizeof err);
    assert_non_null(r);
    X509_REQ_free(r);
    free(old);

    /* Signed by another key: the requester does not hold the key it asks for. */
    char *forged = csr_pem(g_p256, g_p256b, "ven");
    assert_null(wk_cert_parse_csr(forged, strlen(forged), err, sizeof err));
    assert_non_null(strstr(err, "signature"));

    /* Key types: refused with the reason, even when the signature is fine. */
    char *p384 = csr_pem(g_p384, g_p384, "ven");
    assert_null(wk_cert_parse_csr(p384, strlen(p384), err, sizeof err));
    assert_non_null(strstr(err, "P-256"));
    char *rsa1024 = csr_pem(g_rsa1024, g_rsa1024, "ven");
    assert_null(wk_cert_parse_csr(rsa1024, strlen(rsa1024), err, sizeof err));
    assert_non_null(strstr(err, "2048"));
    char *ed = csr_pem(g_ed25519, g_ed25519, "ven");
    assert_null(wk_cert_parse_csr(ed, strlen(ed), err, sizeof err));
    assert_non_null(strstr(err, "ED25519"));
    char *rsa = csr_pem(g_rsa2048, g_rsa2048, "ven");
    r = wk_cert_parse_csr(rsa, strlen(rsa), err, sizeof err);
    assert_non_null(r);
    X509_REQ_free(r);

    /* Not a CSR at all. */
    static const char junk[] = "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n"
                               "-----END CERTIFICATE REQUEST-----\n";
    assert_null(wk_cert_parse_csr(junk, strlen(junk), err, sizeof err));
    assert_non_null(strstr(err, "PEM certificate request"));
    assert_null(wk_cert_parse_csr("hello", 5, err, sizeof err));
    BIO *b = BIO_new(BIO_s_mem());
    PEM_write_bio_X509(b, g_ca.cert);
    char *cert;
    long clen = BIO_get_mem_data(b, &cert);
    assert_null(wk_cert_parse_csr(cert, (size_t)clen, err, sizeof err));
    BIO_free(b);
    /* Size bounds. */
    assert_null(wk_cert_parse_csr(ok, 0, err, sizeof err));
    char *big = calloc(1, WK_CSR_MAX + 2);
    memset(big, 'A', WK_CSR_MAX + 1);
    assert_null(wk_cert_parse_csr(big, WK_CSR_MAX + 1, err, sizeof err));
    assert_non_null(strstr(err, "16384"));
    free(big);
    free(ok);
    free(forged);
    free(p384);
    free(rsa1024);
    free(ed);
    free(rsa);
}

/* {"venID": "ven-1", "csr": <pem>, <extra>} */
static int parse_with_csr(const char *pem, const char *extra, wk_cert_req *r, char *err,
                          size_t errlen)
{
    json_t *o = json_pack("{s:s,s:s}", "venID", "ven-1", "csr", pem);
    if (extra) {
        json_t *e = json_loads(extra, 0, NULL);
        json_object_update(o, e);
        json_decref(e);
    }
    char *s = json_dumps(o, 0);
    json_decref(o);
    int rc = wk_cert_parse_issue(s, strlen(s), r, err, errlen);
    free(s);
    return rc;
}

static int parse(const char *body, wk_cert_req *r, char *err, size_t errlen)
{
    int rc = wk_cert_parse_issue(body, strlen(body), r, err, errlen);
    return rc;
}

static void test_parse_issue(void **state)
{
    (void)state;
    char err[512];
    wk_cert_req r;
    char *pem = csr_pem(g_p256, g_p256, "ven");

    assert_int_equal(parse_with_csr(pem, NULL, &r, err, sizeof err), 0);
    assert_string_equal(r.ven, "ven-1");
    assert_non_null(r.csr);
    assert_int_equal(r.key_type, 0);
    assert_int_equal(r.days, WK_CERT_DAYS_DEFAULT);
    assert_string_equal(r.cn, "");
    wk_cert_req_clear(&r);

    assert_int_equal(
        parse_with_csr(pem, "{\"days\": 1, \"commonName\": \"meter 7\"}", &r, err, sizeof err), 0);
    assert_int_equal(r.days, 1);
    assert_string_equal(r.cn, "meter 7");
    wk_cert_req_clear(&r);
    assert_int_equal(parse_with_csr(pem, "{\"days\": 3650}", &r, err, sizeof err), 0);
    wk_cert_req_clear(&r);

    assert_int_equal(parse("{\"venID\": \"ven-1\", \"keyType\": \"ec\"}", &r, err, sizeof err), 0);
    assert_int_equal(r.key_type, VTN_KEY_EC);
    assert_null(r.csr);
    wk_cert_req_clear(&r);
    assert_int_equal(parse("{\"venID\": \"ven-1\", \"keyType\": \"rsa\"}", &r, err, sizeof err), 0);
    assert_int_equal(r.key_type, VTN_KEY_RSA);
    wk_cert_req_clear(&r);

    /* Each refusal names what is wrong. */
    static const struct {
        const char *body, *word;
    } bad[] = {
        {"", "required"},
        {"{", "not valid JSON"},
        {"[]", "JSON object"},
        {"{\"keyType\": \"ec\"}", "venID is required"},
        {"{\"venID\": \"ven-1\"}", "either csr"},
        {"{\"venID\": \"ven 1\", \"keyType\": \"ec\"}", "venID must be"},
        {"{\"venID\": 7, \"keyType\": \"ec\"}", "venID must be"},
        {"{\"venID\": \"ven-1\", \"keyType\": \"dsa\"}", "keyType must be"},
        {"{\"venID\": \"ven-1\", \"keyType\": 1}", "keyType must be"},
        {"{\"venID\": \"ven-1\", \"csr\": 1}", "csr must be a string"},
        {"{\"venID\": \"ven-1\", \"csr\": \"x\"}", "PEM certificate request"},
        {"{\"venID\": \"ven-1\", \"keyType\": \"ec\", \"days\": 0}", "days must be"},
        {"{\"venID\": \"ven-1\", \"keyType\": \"ec\", \"days\": 3651}", "days must be"},
        {"{\"venID\": \"ven-1\", \"keyType\": \"ec\", \"days\": -5}", "days must be"},
        {"{\"venID\": \"ven-1\", \"keyType\": \"ec\", \"days\": \"30\"}", "days must be"},
        {"{\"venID\": \"ven-1\", \"keyType\": \"ec\", \"days\": 30.5}", "days must be"},
        {"{\"venID\": \"ven-1\", \"keyType\": \"ec\", \"days\": true}", "days must be"},
        {"{\"venID\": \"ven-1\", \"keyType\": \"ec\", \"commonName\": \"\"}", "commonName"},
        {"{\"venID\": \"ven-1\", \"keyType\": \"ec\", \"commonName\": \"a\\u0001b\"}",
         "commonName"},
        {"{\"venID\": \"ven-1\", \"keyType\": \"ec\", \"san\": \"DNS:x\"}", "unknown field 'san'"},
        {"{\"venID\": \"ven-1\", \"keyType\": \"ec\", \"keyType\": \"rsa\"}", "not valid JSON"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        if (parse(bad[i].body, &r, err, sizeof err) != -EINVAL || !strstr(err, bad[i].word))
            fail_msg("body %s: expected an error with '%s', got '%s'", bad[i].body, bad[i].word,
                     err);
        wk_cert_req_clear(&r);
    }
    /* csr and keyType together */
    assert_int_equal(parse_with_csr(pem, "{\"keyType\": \"ec\"}", &r, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "not both"));
    wk_cert_req_clear(&r);

    /* commonName: 64 characters, counted as characters, not bytes */
    char cn[300], body[600];
    memset(cn, 'a', 64);
    cn[64] = '\0';
    snprintf(body, sizeof body,
             "{\"venID\": \"ven-1\", \"keyType\": \"ec\", \"commonName\": \"%s\"}", cn);
    assert_int_equal(parse(body, &r, err, sizeof err), 0);
    wk_cert_req_clear(&r);
    cn[64] = 'a';
    cn[65] = '\0';
    snprintf(body, sizeof body,
             "{\"venID\": \"ven-1\", \"keyType\": \"ec\", \"commonName\": \"%s\"}", cn);
    assert_int_equal(parse(body, &r, err, sizeof err), -EINVAL);
    wk_cert_req_clear(&r);
    cn[0] = '\0';
    for (int i = 0; i < 64; i++)
        strcat(cn, "\xc3\xa9"); /* é: 64 characters in 128 bytes */
    snprintf(body, sizeof body,
             "{\"venID\": \"ven-1\", \"keyType\": \"ec\", \"commonName\": \"%s\"}", cn);
    assert_int_equal(parse(body, &r, err, sizeof err), 0);
    wk_cert_req_clear(&r);
    free(pem);
}

static void test_cn_and_serial(void **state)
{
    (void)state;
    assert_true(wk_cert_cn_valid("ven", 3));
    assert_false(wk_cert_cn_valid("", 0));
    assert_false(wk_cert_cn_valid("a\tb", 3));
    assert_false(wk_cert_cn_valid("a\x7f", 2));

    char out[WK_SERIAL_MAX + 1];
    assert_int_equal(wk_cert_serial_norm("7b21f59a", 8, out, sizeof out), 0);
    assert_string_equal(out, "7B21F59A");
    assert_int_equal(wk_cert_serial_norm("7B:21:F5:9A", 11, out, sizeof out), 0);
    assert_string_equal(out, "7B21F59A");
    assert_int_equal(wk_cert_serial_norm("0007B", 5, out, sizeof out), 0);
    assert_string_equal(out, "7B"); /* as vtn_pki_serial_hex prints it */
    assert_int_equal(wk_cert_serial_norm("", 0, out, sizeof out), -EINVAL);
    assert_int_equal(wk_cert_serial_norm("000", 3, out, sizeof out), -EINVAL);
    assert_int_equal(wk_cert_serial_norm("7G", 2, out, sizeof out), -EINVAL);
    assert_int_equal(wk_cert_serial_norm("ven-1", 5, out, sizeof out), -EINVAL);
    char long_serial[50];
    memset(long_serial, 'A', 41);
    assert_int_equal(wk_cert_serial_norm(long_serial, 40, out, sizeof out), 0);
    assert_int_equal(wk_cert_serial_norm(long_serial, 41, out, sizeof out), -EINVAL);
}

static void test_queries(void **state)
{
    (void)state;
    char err[256], cursor[WK_SERIAL_MAX + 1], ven[WK_ID_MAX + 1];
    int limit, days, reason;
    assert_int_equal(wk_cert_parse_list_query(NULL, 0, &limit, cursor, sizeof cursor, ven,
                                              sizeof ven, err, sizeof err),
                     0);
    assert_int_equal(limit, WK_API_LIMIT_DEFAULT);
    assert_string_equal(ven, "");
    const char *q = "limit=5&venID=ven-abc&cursor=3742";
    assert_int_equal(wk_cert_parse_list_query(q, strlen(q), &limit, cursor, sizeof cursor, ven,
                                              sizeof ven, err, sizeof err),
                     0);
    assert_int_equal(limit, 5);
    assert_string_equal(ven, "ven-abc");
    assert_string_equal(cursor, "7B");
    static const char *const badq[] = {"limit=0",   "limit=1001", "limit=x",        "venID=a%20b",
                                       "cursor=zz", "name=x",     "venID=a&venID=b"};
    for (size_t i = 0; i < sizeof badq / sizeof badq[0]; i++)
        if (wk_cert_parse_list_query(badq[i], strlen(badq[i]), &limit, cursor, sizeof cursor, ven,
                                     sizeof ven, err, sizeof err) != -EINVAL)
            fail_msg("list query %s accepted", badq[i]);

    assert_int_equal(wk_cert_parse_crl_query(NULL, 0, &days, err, sizeof err), 0);
    assert_int_equal(days, WK_CRL_DAYS_DEFAULT);
    assert_int_equal(wk_cert_parse_crl_query("days=7", 6, &days, err, sizeof err), 0);
    assert_int_equal(days, 7);
    assert_int_equal(wk_cert_parse_crl_query("days=0", 6, &days, err, sizeof err), -EINVAL);
    assert_int_equal(wk_cert_parse_crl_query("days=366", 8, &days, err, sizeof err), -EINVAL);
    assert_int_equal(wk_cert_parse_crl_query("limit=1", 7, &days, err, sizeof err), -EINVAL);

    assert_int_equal(wk_cert_parse_revoke("", 0, &reason, err, sizeof err), 0);
    assert_int_equal(reason, VTN_CRL_UNSPECIFIED);
    const char *b = "{\"reason\": \"keyCompromise\"}";
    assert_int_equal(wk_cert_parse_revoke(b, strlen(b), &reason, err, sizeof err), 0);
    assert_int_equal(reason, VTN_CRL_KEY_COMPROMISE);
    b = "{\"reason\": \"lost\"}";
    assert_int_equal(wk_cert_parse_revoke(b, strlen(b), &reason, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "keyCompromise"));
    b = "{\"why\": \"x\"}";
    assert_int_equal(wk_cert_parse_revoke(b, strlen(b), &reason, err, sizeof err), -EINVAL);
    assert_int_equal(wk_cert_parse_revoke("[", 1, &reason, err, sizeof err), -EINVAL);
}

static int route(const char *path, char *id)
{
    const char *q;
    size_t qn;
    return wk_api_route_of(path, strlen(path), id, &q, &qn);
}

static void test_routes(void **state)
{
    (void)state;
    char id[WK_ID_MAX + 1];
    assert_int_equal(route("/api/v1/certificates", id), WK_API_CERTS);
    assert_int_equal(route("/api/v1/certificates/", id), WK_API_CERTS);
    assert_int_equal(route("/api/v1/certificates?venID=ven-1", id), WK_API_CERTS);
    assert_int_equal(route("/api/v1/certificates/7B21F5", id), WK_API_CERT);
    assert_string_equal(id, "7B21F5");
    assert_int_equal(route("/api/v1/certificates/7B21F5/", id), WK_API_CERT);
    assert_int_equal(route("/api/v1/certificates/7B21F5/revoke", id), WK_API_CERT_REVOKE);
    assert_string_equal(id, "7B21F5");
    assert_int_equal(route("/api/v1/certificates/7B21F5/revoke/", id), WK_API_CERT_REVOKE);
    assert_int_equal(route("/api/v1/crl", id), WK_API_CRL);
    assert_int_equal(route("/api/v1/crl/", id), WK_API_CRL);
    assert_int_equal(route("/api/v1/crl?days=7", id), WK_API_CRL);
    assert_int_equal(route("/api/v1/certificatesX", id), WK_API_NONE);
    assert_int_equal(route("/api/v1/certificates/7B/other", id), WK_API_NONE);
    assert_int_equal(route("/api/v1/certificates/7B/revoke/x", id), WK_API_NONE);
    assert_int_equal(route("/api/v1/certificates//revoke", id), WK_API_NONE);
    assert_int_equal(route("/api/v1/crlx", id), WK_API_NONE);
    assert_int_equal(route("/api/v1/crl/x", id), WK_API_NONE);
    /* the existing routes are unchanged */
    assert_int_equal(route("/api/v1/vens/ven-1", id), WK_API_VEN);
    assert_string_equal(wk_api_allow(WK_API_CERTS), "GET, POST");
    assert_string_equal(wk_api_allow(WK_API_CERT), "GET");
    assert_string_equal(wk_api_allow(WK_API_CERT_REVOKE), "POST");
    assert_string_equal(wk_api_allow(WK_API_CRL), "GET");
}

static X509 *read_pem_cert(const char *pem)
{
    BIO *b = BIO_new_mem_buf(pem, -1);
    X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
    BIO_free(b);
    return x;
}

/* The certificate verifies against the CA, as a TLS client certificate. */
static void assert_verifies(X509 *x)
{
    X509_STORE *st = X509_STORE_new();
    X509_STORE_add_cert(st, g_ca.cert);
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    X509_STORE_CTX_init(ctx, st, x, NULL);
    X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT);
    int ok = X509_verify_cert(ctx);
    if (ok != 1)
        fail_msg("verify: %s", X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(st);
}

static void test_sign_csr(void **state)
{
    (void)state;
    char err[512], body[4096], fp[VTN_FINGERPRINT_SIZE], norm[WK_FP_MAX + 1], serial[64];
    char *pem = csr_pem(g_rsa2048, g_rsa2048, "what the VEN asked for");
    json_t *o = json_pack("{s:s,s:s,s:i}", "venID", "ven-1", "csr", pem, "days", 30);
    char *s = json_dumps(o, 0);
    snprintf(body, sizeof body, "%s", s);
    free(s);
    json_decref(o);
    wk_cert_req r;
    assert_int_equal(wk_cert_parse_issue(body, strlen(body), &r, err, sizeof err), 0);
    time_t now = time(NULL);
    wk_cert_issued c;
    assert_int_equal(wk_cert_sign(&g_ca, &r, "meter 7", now, &c, err, sizeof err), 0);
    assert_null(c.key_pem); /* the VEN keeps its key */
    assert_int_equal(c.key_type, VTN_KEY_RSA);
    X509 *x = read_pem_cert(c.pem);
    assert_non_null(x);
    assert_verifies(x);
    /* what the answer and the index say is what the certificate is */
    vtn_pki_serial_hex(x, serial, sizeof serial);
    assert_string_equal(c.serial, serial);
    vtn_fingerprint_x509(x, fp);
    vtn_fingerprint_normalize(fp, norm, sizeof norm);
    assert_string_equal(c.fp, norm);
    /* the VTN's subject, not the CSR's; the CSR's key */
    char cn[128];
    X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof cn);
    assert_string_equal(cn, "meter 7");
    assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(x), g_rsa2048), 1);
    /* 30 days from now, valid from 5 minutes ago */
    assert_int_equal(c.na_ms, ((int64_t)now + 30 * 86400) * 1000);
    assert_int_equal(c.nb_ms, ((int64_t)now - 300) * 1000);
    assert_int_equal(ASN1_TIME_cmp_time_t(X509_get0_notAfter(x), now + 30 * 86400), 0);
    /* a client certificate for the RSA suite */
    uint32_t ku = X509_get_key_usage(x);
    assert_true(ku & KU_KEY_ENCIPHERMENT);
    assert_true(X509_get_extended_key_usage(x) & XKU_SSL_CLIENT);
    X509_free(x);
    wk_cert_issued_clear(&c);
    wk_cert_req_clear(&r);
    free(pem);
}

static void test_sign_generated(void **state)
{
    (void)state;
    char err[512];
    static const char *const bodies[] = {"{\"venID\": \"ven-1\", \"keyType\": \"ec\"}",
                                         "{\"venID\": \"ven-1\", \"keyType\": \"rsa\"}"};
    for (int i = 0; i < 2; i++) {
        wk_cert_req r;
        wk_cert_issued c;
        assert_int_equal(wk_cert_parse_issue(bodies[i], strlen(bodies[i]), &r, err, sizeof err), 0);
        assert_int_equal(wk_cert_sign(&g_ca, &r, "ven-1", time(NULL), &c, err, sizeof err), 0);
        assert_non_null(c.key_pem);
        X509 *x = read_pem_cert(c.pem);
        BIO *b = BIO_new_mem_buf(c.key_pem, -1);
        EVP_PKEY *k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
        BIO_free(b);
        assert_non_null(k);
        assert_int_equal(X509_check_private_key(x, k), 1); /* the key belongs to it */
        char kerr[256];
        assert_int_equal(wk_cert_check_key(k, kerr, sizeof kerr), 0); /* P-256 / RSA 2048 */
        assert_int_equal(EVP_PKEY_get_base_id(k), i == 0 ? EVP_PKEY_EC : EVP_PKEY_RSA);
        assert_int_equal(c.key_type, i == 0 ? VTN_KEY_EC : VTN_KEY_RSA);
        assert_verifies(x);
        /* default validity */
        assert_true(c.na_ms - c.nb_ms == (int64_t)(WK_CERT_DAYS_DEFAULT * 86400L + 300) * 1000);
        EVP_PKEY_free(k);
        X509_free(x);
        wk_cert_issued_clear(&c);
        assert_null(c.key_pem);
        wk_cert_req_clear(&r);
    }
}

static void test_sign_bounded_by_ca(void **state)
{
    (void)state;
    char err[512];
    wk_cert_req r;
    wk_cert_issued c;
    const char *body = "{\"venID\": \"ven-1\", \"keyType\": \"ec\", \"days\": 3650}";
    assert_int_equal(wk_cert_parse_issue(body, strlen(body), &r, err, sizeof err), 0);
    /* A CA that expires in 10 days: the certificate ends with it. */
    wk_ca short_ca = g_ca;
    time_t now = time(NULL);
    short_ca.not_after = now + 10 * 86400;
    assert_int_equal(wk_cert_sign(&short_ca, &r, "ven-1", now, &c, err, sizeof err), 0);
    assert_int_equal(c.na_ms, (int64_t)short_ca.not_after * 1000);
    wk_cert_issued_clear(&c);
    /* An expired CA signs nothing. */
    short_ca.not_after = now - 1;
    assert_int_equal(wk_cert_sign(&short_ca, &r, "ven-1", now, &c, err, sizeof err), -ESTALE);
    assert_non_null(strstr(err, "expire"));
    assert_null(c.pem);
    /* No CA configured. */
    wk_ca none = {0};
    assert_int_equal(wk_cert_sign(&none, &r, "ven-1", now, &c, err, sizeof err), -ENOENT);
    assert_non_null(strstr(err, "VTN_CA_DIR"));
    wk_cert_req_clear(&r);
}

static void test_ca_load(void **state)
{
    (void)state;
    char dir[512], path[600], err[512];
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/vtn-test-wk-cert-XXXXXX", tmp != NULL ? tmp : "/tmp");
    assert_non_null(mkdtemp(dir));
    wk_ca ca;
    /* empty folder */
    assert_int_equal(wk_ca_load(&ca, dir, err, sizeof err) < 0, 1);
    assert_non_null(strstr(err, "ca.pem"));
    snprintf(path, sizeof path, "%s/ca.pem", dir);
    assert_int_equal(vtn_pki_write_cert(path, g_ca.cert, 1), 0);
    /* no key */
    assert_int_equal(wk_ca_load(&ca, dir, err, sizeof err) < 0, 1);
    assert_non_null(strstr(err, "ca.key"));
    /* a key that does not match */
    snprintf(path, sizeof path, "%s/ca.key", dir);
    assert_int_equal(vtn_pki_write_key(path, g_p256, 1), 0);
    assert_int_equal(wk_ca_load(&ca, dir, err, sizeof err) < 0, 1);
    assert_non_null(strstr(err, "does not match"));
    /* the real pair */
    assert_int_equal(vtn_pki_write_key(path, g_ca.key, 1), 0);
    assert_int_equal(wk_ca_load(&ca, dir, err, sizeof err), 0);
    assert_string_equal(ca.id, g_ca.id);
    assert_true(ca.not_after > time(NULL) + 3600L * 24 * 3000);
    wk_ca_free(&ca);
    assert_null(ca.cert);
    /* a leaf certificate is no CA */
    wk_cert_req r;
    wk_cert_issued c;
    const char *body = "{\"venID\": \"ven-1\", \"keyType\": \"ec\"}";
    assert_int_equal(wk_cert_parse_issue(body, strlen(body), &r, err, sizeof err), 0);
    assert_int_equal(wk_cert_sign(&g_ca, &r, "leaf", time(NULL), &c, err, sizeof err), 0);
    snprintf(path, sizeof path, "%s/ca.pem", dir);
    FILE *f = fopen(path, "w");
    fputs(c.pem, f);
    fclose(f);
    snprintf(path, sizeof path, "%s/ca.key", dir);
    f = fopen(path, "w");
    fputs(c.key_pem, f);
    fclose(f);
    assert_int_equal(wk_ca_load(&ca, dir, err, sizeof err) < 0, 1);
    assert_non_null(strstr(err, "not a CA"));
    wk_cert_issued_clear(&c);
    wk_cert_req_clear(&r);
    unlink(path);
    snprintf(path, sizeof path, "%s/ca.pem", dir);
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_check_key),
        cmocka_unit_test(test_parse_csr),
        cmocka_unit_test(test_parse_issue),
        cmocka_unit_test(test_cn_and_serial),
        cmocka_unit_test(test_queries),
        cmocka_unit_test(test_routes),
        cmocka_unit_test(test_sign_csr),
        cmocka_unit_test(test_sign_generated),
        cmocka_unit_test(test_sign_bounded_by_ca),
        cmocka_unit_test(test_ca_load),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
