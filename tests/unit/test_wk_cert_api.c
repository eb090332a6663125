/* The /api/v1/certificates and /api/v1/crl handlers step by step, without
 * Redis: what each round asks Redis for, and what the handler answers to the
 * replies a Redis would give (built by hand here). Covers the order of
 * checks (503 without VTN_CA_DIR after the token check), issuing from a CSR
 * and with a generated key, a retry that finds the first attempt's memo, an
 * attempt that loses the race to another, a VEN deleted meanwhile, revoke,
 * list and the CRL. The real Redis path is tests/e2e/test_certificates.py. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "vtn/fingerprint.h"
#include "wk_api.h"

#define TOKEN "Bearer t0ken"
#define RID "1122334455667788"
#define VEN "ven-00112233445566778899"

static wk_worker W;
static wk_ca CA;
static wk_req Q;

static int setup(void **state)
{
    (void)state;
    static char vtn_id[] = "openvtn-VTN", token[] = "t0ken", name[] = "test-worker";
    W.cfg.vtn_id = vtn_id;
    W.cfg.api_token = token;
    W.cfg.name = name;
    W.redis.m = &W.m; /* never connected */
    for (int i = 0; i < WK_SCRIPT__COUNT; i++)
        snprintf(W.redis.sha[i], sizeof W.redis.sha[i], "%040d", i);
    char err[256], fp[VTN_FINGERPRINT_SIZE];
    W.entry[VTN_KIND_API] = &wk_h_api;
    W.ca = &CA;
    CA.key = vtn_pki_keygen(VTN_KEY_EC);
    vtn_cert_spec spec = {.cn = "unit test CA", .key = CA.key, .is_ca = 1, .days = 3650};
    CA.cert = vtn_pki_issue(&spec, NULL, CA.key, err, sizeof err);
    if (CA.cert == NULL)
        return -1;
    vtn_fingerprint_x509(CA.cert, fp);
    vtn_fingerprint_normalize(fp, CA.id, sizeof CA.id);
    CA.not_after = time(NULL) + 3650L * 86400;
    vtn_buf_init(&Q.cmds, WK_CMD_BUF_MAX);
    vtn_buf_init(&Q.body, WK_REPLY_MAX);
    Q.w = &W;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    wk_req_reset(&Q);
    free(Q.rep);
    Q.rep = NULL;
    vtn_buf_free(&Q.cmds);
    vtn_buf_free(&Q.body);
    wk_ca_free(&CA);
    return 0;
}

static void start(const char *method, const char *path, const char *auth, const char *ctype,
                  const char *body)
{
    wk_req_reset(&Q);
    Q.w = &W;
    Q.env.id = 0x1122334455667788ull;
    snprintf(Q.rid, sizeof Q.rid, "%016llx", (unsigned long long)Q.env.id);
    Q.env.kind = VTN_KIND_API;
    Q.env.method = vtn_str_c(method);
    Q.env.path = vtn_str_c(path);
    Q.env.content_type = vtn_str_c(ctype ? ctype : "");
    Q.env.authorization = vtn_str_c(auth ? auth : "");
    Q.env.fingerprint = vtn_str_c("");
    Q.env.body.p = body;
    Q.env.body.n = body ? (uint32_t)strlen(body) : 0;
    wk_req_start(&Q);
}

/* ---- hand-made Redis replies ---- */

static redisReply *mk(int type)
{
    redisReply *r = calloc(1, sizeof *r);
    r->type = type;
    return r;
}

static redisReply *r_nil(void)
{
    return mk(REDIS_REPLY_NIL);
}

static redisReply *r_int(long long v)
{
    redisReply *r = mk(REDIS_REPLY_INTEGER);
    r->integer = v;
    return r;
}

static redisReply *r_str(const char *s)
{
    redisReply *r = mk(REDIS_REPLY_STRING);
    r->str = strdup(s);
    r->len = strlen(s);
    return r;
}

/* An array of n replies given as arguments. */
static redisReply *r_arr(int n, ...)
{
    redisReply *r = mk(REDIS_REPLY_ARRAY);
    r->elements = (size_t)n;
    r->element = calloc((size_t)(n ? n : 1), sizeof *r->element);
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < n; i++)
        r->element[i] = va_arg(ap, redisReply *);
    va_end(ap);
    return r;
}

/* Runs the next step with these replies (one per command queued), as a
 * Redis round does (which frees them), then any slow work the step handed
 * off (signing runs inline without the helper thread). */
static void feed(int n, ...)
{
    va_list ap;
    if (Q.ncmds != n)
        fail_msg("the round has %d commands, the test feeds %d replies", Q.ncmds, n);
    va_start(ap, n);
    for (int i = 0; i < n; i++)
        Q.rep[i] = va_arg(ap, redisReply *);
    va_end(ap);
    Q.nrep = n;
    wk_req_step(&Q);
    wk_slow_collect(Q.w);
}

/* Argument a of command c of the round, parsed from the RESP in Q.cmds. */
static const char *arg(int c, int a)
{
    static char out[8192];
    const char *p = Q.cmds.data, *end = Q.cmds.data + Q.cmds.len;
    for (int ci = 0; p < end; ci++) {
        int argc = atoi(p + 1);
        p = strstr(p, "\r\n") + 2;
        for (int ai = 0; ai < argc; ai++) {
            size_t len = (size_t)atol(p + 1);
            p = strstr(p, "\r\n") + 2;
            if (ci == c && ai == a) {
                if (len >= sizeof out)
                    fail_msg("argument too long for the test buffer");
                memcpy(out, p, len);
                out[len] = '\0';
                return out;
            }
            p += len + 2;
        }
    }
    fail_msg("no argument %d of command %d in %.*s", a, c, (int)Q.cmds.len, Q.cmds.data);
    return NULL;
}

static void assert_arg(int c, int a, const char *want)
{
    const char *got = arg(c, a);
    if (strcmp(got, want) != 0)
        fail_msg("command %d argument %d: want '%s', got '%s'", c, a, want, got);
}

static json_t *body_json(void)
{
    json_error_t e;
    json_t *o = json_loadb(Q.body.data, Q.body.len, 0, &e);
    if (o == NULL)
        fail_msg("reply is not JSON: %.*s", (int)Q.body.len, Q.body.data);
    return o;
}

static void assert_error(int status, const char *word)
{
    assert_true(Q.done);
    if (Q.status != status)
        fail_msg("status %d, want %d: %.*s", Q.status, status, (int)Q.body.len, Q.body.data);
    assert_string_equal(Q.ctype, "application/json");
    json_t *o = body_json();
    const char *e = json_string_value(json_object_get(o, "error"));
    if (e == NULL || strstr(e, word) == NULL)
        fail_msg("error %s does not mention '%s'", e ? e : "(none)", word);
    json_decref(o);
}

static char *csr_pem(EVP_PKEY *k)
{
    X509_REQ *r = X509_REQ_new();
    X509_REQ_set_pubkey(r, k);
    X509_REQ_sign(r, k, EVP_sha256());
    BIO *b = BIO_new(BIO_s_mem());
    PEM_write_bio_X509_REQ(b, r);
    char *data;
    long len = BIO_get_mem_data(b, &data);
    char *out = strndup(data, (size_t)len);
    BIO_free(b);
    X509_REQ_free(r);
    return out;
}

static char *issue_body(const char *extra)
{
    static char buf[8192];
    snprintf(buf, sizeof buf, "{\"venID\": \"" VEN "\"%s}", extra);
    return buf;
}

/* ---- tests ---- */

static void test_disabled_and_errors(void **state)
{
    (void)state;
    /* the token first, for every route */
    start("GET", "/api/v1/certificates", "", NULL, NULL);
    assert_error(401, "bearer token");
    start("GET", "/api/v1/crl", "Bearer nope", NULL, NULL);
    assert_error(401, "bearer token");
    /* without VTN_CA_DIR: 503 on every certificate route */
    W.ca = NULL;
    static const char *const paths[][2] = {{"GET", "/api/v1/certificates"},
                                           {"POST", "/api/v1/certificates"},
                                           {"GET", "/api/v1/certificates/7B"},
                                           {"POST", "/api/v1/certificates/7B/revoke"},
                                           {"GET", "/api/v1/crl"}};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        start(paths[i][0], paths[i][1], TOKEN, "application/json", "{}");
        assert_error(503, "certificate issuing disabled: set VTN_CA_DIR");
    }
    W.ca = &CA;
    /* methods */
    start("DELETE", "/api/v1/certificates/7B", TOKEN, NULL, NULL);
    assert_error(405, "not allowed");
    assert_non_null(strstr(Q.headers, "Allow: GET\r\n"));
    start("PUT", "/api/v1/crl", TOKEN, NULL, NULL);
    assert_error(405, "not allowed");
    start("GET", "/api/v1/certificates/7B/revoke", TOKEN, NULL, NULL);
    assert_non_null(strstr(Q.headers, "Allow: POST\r\n"));
    /* bodies and queries */
    start("POST", "/api/v1/certificates", TOKEN, "text/plain", issue_body(", \"keyType\": \"ec\""));
    assert_error(415, "application/json");
    start("POST", "/api/v1/certificates", TOKEN, "application/json", issue_body(""));
    assert_error(400, "either csr");
    start("POST", "/api/v1/certificates?x=1", TOKEN, "application/json",
          issue_body(", \"keyType\": \"ec\""));
    assert_error(400, "no query parameters");
    start("GET", "/api/v1/certificates/not-hex", TOKEN, NULL, NULL);
    assert_error(404, "no certificate with serial");
    start("GET", "/api/v1/certificates?limit=0", TOKEN, NULL, NULL);
    assert_error(400, "limit");
    start("GET", "/api/v1/crl?days=400", TOKEN, NULL, NULL);
    assert_error(400, "days");
    start("POST", "/api/v1/certificates/7B/revoke", TOKEN, "text/plain", "{}");
    assert_error(415, "application/json");
    start("POST", "/api/v1/certificates/7B/revoke", TOKEN, "application/json",
          "{\"reason\": \"bored\"}");
    assert_error(400, "reason");
}

static void test_redis_down(void **state)
{
    (void)state;
    start("POST", "/api/v1/certificates", TOKEN, "application/json",
          issue_body(", \"keyType\": \"ec\""));
    assert_false(Q.done);
    wk_req *reqs[1] = {&Q};
    wk_batch_run(&W, reqs, 1);
    assert_error(503, "unavailable");
    assert_non_null(strstr(Q.headers, "Retry-After: "));
}

/* Runs an issue request up to the binding with the memo mechanics of a first
 * attempt; returns the memo JSON this attempt wrote (static). */
static const char *issue_until_record(const char *body, const char *ven_name)
{
    static char memo[8192];
    start("POST", "/api/v1/certificates", TOKEN, "application/json", body);
    assert_false(Q.done);
    /* round 1: the request's memo (a retry?) and the VEN */
    assert_int_equal(Q.ncmds, 2);
    assert_arg(0, 0, "GET");
    assert_arg(0, 1, "vtn:certreq:" RID);
    assert_arg(1, 0, "HMGET");
    assert_arg(1, 1, "ven:{" VEN "}");
    feed(2, r_nil(), r_arr(2, r_str("1700000000000"), ven_name ? r_str(ven_name) : r_nil()));
    assert_false(Q.done);
    /* round 2: signed; claim the request id, read it back */
    assert_int_equal(Q.ncmds, 2);
    assert_arg(0, 0, "SET");
    assert_arg(0, 1, "vtn:certreq:" RID);
    assert_arg(0, 3, "NX");
    assert_arg(0, 5, "300");
    snprintf(memo, sizeof memo, "%s", arg(0, 2));
    assert_null(strstr(memo, "PRIVATE")); /* the key is never stored */
    return memo;
}

/* Round 3 to the end for the certificate in memo m: record, claim the
 * fingerprint, bind (old = previous binding), drop the old index. */
static void finish_issue(const char *m, const char *old_fp)
{
    json_t *memo = json_loads(m, 0, NULL);
    const char *serial = json_string_value(json_object_get(memo, "s"));
    const char *fp = json_string_value(json_object_get(memo, "f"));
    char k[VTN_KEY_MAX];
    assert_int_equal(Q.ncmds, 4);
    assert_arg(0, 0, "HSET");
    snprintf(k, sizeof k, "vtn:cert:%s", serial);
    assert_arg(0, 1, k);
    assert_arg(0, 2, "v");
    assert_arg(0, 3, VEN);
    assert_arg(0, 5, fp);
    assert_arg(1, 0, "ZADD");
    assert_arg(1, 1, "vtn:certs");
    assert_arg(1, 3, serial);
    assert_arg(2, 1, "vencerts:{" VEN "}");
    assert_arg(3, 0, "EVALSHA");
    assert_arg(3, 1, W.redis.sha[WK_SCRIPT_CLAIM]);
    snprintf(k, sizeof k, "vtn:venfp:%s", fp);
    assert_arg(3, 3, k);
    feed(4, r_int(9), r_int(1), r_int(1), r_str(VEN));
    /* the binding: one script over the VEN's keys, memo keyed by the request */
    assert_int_equal(Q.ncmds, 1);
    assert_arg(0, 1, W.redis.sha[WK_SCRIPT_CERTBIND]);
    assert_arg(0, 3, "ven:{" VEN "}");
    assert_arg(0, 4, "venreq:{" VEN "}:" RID);
    assert_arg(0, 5, fp);
    char outcome[64];
    snprintf(outcome, sizeof outcome, "[\"B\",\"%s\"]", old_fp ? old_fp : "");
    feed(1, r_str(outcome));
    if (old_fp) {
        /* the earlier binding's index entry goes (compare-and-delete) */
        assert_int_equal(Q.ncmds, 1);
        assert_arg(0, 1, W.redis.sha[WK_SCRIPT_CAD]);
        snprintf(k, sizeof k, "vtn:venfp:%s", old_fp);
        assert_arg(0, 3, k);
        assert_arg(0, 4, VEN);
        feed(1, r_int(1));
    }
    assert_true(Q.done);
    json_decref(memo);
}

static X509 *reply_cert(json_t *o)
{
    const char *pem = json_string_value(json_object_get(o, "certificate"));
    assert_non_null(pem);
    BIO *b = BIO_new_mem_buf(pem, -1);
    X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
    BIO_free(b);
    assert_non_null(x);
    assert_true(vtn_pki_issued_by(x, CA.cert));
    return x;
}

static void test_issue_csr(void **state)
{
    (void)state;
    EVP_PKEY *k = vtn_pki_keygen(VTN_KEY_EC);
    char *pem = csr_pem(k), extra[4096];
    json_t *js = json_string(pem);
    char *quoted = json_dumps(js, JSON_ENCODE_ANY);
    snprintf(extra, sizeof extra, ", \"csr\": %s", quoted);
    const char *m = issue_until_record(issue_body(extra), "Building 7");
    char memo[8192];
    snprintf(memo, sizeof memo, "%s", m);
    feed(2, r_str("OK"), r_str(memo)); /* our claim won */
    finish_issue(memo, "09719E0E51C08F0556C9");
    assert_int_equal(Q.status, 201);
    json_t *o = body_json();
    X509 *x = reply_cert(o);
    char serial[64], fp[VTN_FINGERPRINT_SIZE], cn[80], loc[160];
    vtn_pki_serial_hex(x, serial, sizeof serial);
    vtn_fingerprint_x509(x, fp);
    assert_string_equal(json_string_value(json_object_get(o, "serial")), serial);
    assert_string_equal(json_string_value(json_object_get(o, "fingerprint")), fp);
    assert_string_equal(json_string_value(json_object_get(o, "previousFingerprint")),
                        "09:71:9E:0E:51:C0:8F:05:56:C9");
    assert_string_equal(json_string_value(json_object_get(o, "status")), "valid");
    assert_string_equal(json_string_value(json_object_get(o, "keyType")), "ec");
    assert_false(json_is_true(json_object_get(o, "generatedKey")));
    assert_null(json_object_get(o, "privateKey"));
    /* CN from the VEN's venName */
    X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof cn);
    assert_string_equal(cn, "Building 7");
    assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(x), k), 1);
    snprintf(loc, sizeof loc, "Location: /api/v1/certificates/%s\r\n", serial);
    assert_string_equal(Q.headers, loc);
    assert_false(Q.wipe_body);
    X509_free(x);
    json_decref(o);
    free(quoted);
    json_decref(js);
    free(pem);
    EVP_PKEY_free(k);
}

static void test_issue_generated(void **state)
{
    (void)state;
    /* a VEN without a name: CN = its venID */
    const char *m = issue_until_record(issue_body(", \"keyType\": \"ec\""), NULL);
    char memo[8192];
    snprintf(memo, sizeof memo, "%s", m);
    feed(2, r_nil(), r_str(memo));
    finish_issue(memo, NULL);
    assert_int_equal(Q.status, 201);
    json_t *o = body_json();
    X509 *x = reply_cert(o);
    char cn[80];
    X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof cn);
    assert_string_equal(cn, VEN);
    const char *kp = json_string_value(json_object_get(o, "privateKey"));
    assert_non_null(kp);
    BIO *b = BIO_new_mem_buf(kp, -1);
    EVP_PKEY *k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
    BIO_free(b);
    assert_int_equal(X509_check_private_key(x, k), 1);
    assert_true(json_is_null(json_object_get(o, "previousFingerprint")));
    assert_true(json_is_true(json_object_get(o, "generatedKey")));
    assert_true(Q.wipe_body); /* the reply is cleared once sent */
    EVP_PKEY_free(k);
    X509_free(x);
    json_decref(o);
    /* cleared on reset */
    char *data = Q.body.data;
    size_t len = Q.body.len;
    wk_req_reset(&Q);
    assert_null(memmem(data, len, "PRIVATE KEY", 11));
}

static void test_issue_refusals(void **state)
{
    (void)state;
    start("POST", "/api/v1/certificates", TOKEN, "application/json",
          issue_body(", \"keyType\": \"ec\""));
    feed(2, r_nil(), r_arr(2, r_nil(), r_nil()));
    assert_error(404, "no VEN with venID " VEN);
    /* a venName too long for a CN, and none given */
    char name[200];
    memset(name, 'n', 100);
    name[100] = '\0';
    start("POST", "/api/v1/certificates", TOKEN, "application/json",
          issue_body(", \"keyType\": \"ec\""));
    feed(2, r_nil(), r_arr(2, r_str("1"), r_str(name)));
    assert_error(400, "give commonName");
    /* the same with a commonName is fine */
    start("POST", "/api/v1/certificates", TOKEN, "application/json",
          issue_body(", \"keyType\": \"ec\", \"commonName\": \"short\""));
    feed(2, r_nil(), r_arr(2, r_str("1"), r_str(name)));
    assert_false(Q.done);
    assert_int_equal(Q.ncmds, 2);
}

/* The gateway retried the request on this worker after the first attempt
 * signed: the first attempt's certificate is finished, not a second one. */
static void test_issue_retry(void **state)
{
    (void)state;
    /* a first attempt's memo, from a CSR */
    const char *m = issue_until_record(issue_body(", \"keyType\": \"ec\""), "v");
    json_t *memo = json_loads(m, 0, NULL);
    json_object_set_new(memo, "g", json_false()); /* as if that attempt had a CSR */
    char *first = json_dumps(memo, JSON_COMPACT);
    json_decref(memo);

    start("POST", "/api/v1/certificates", TOKEN, "application/json",
          issue_body(", \"keyType\": \"ec\""));
    feed(2, r_str(first), r_arr(2, r_str("1"), r_str("v")));
    /* no signing: straight to the record of the first certificate */
    finish_issue(first, NULL);
    assert_int_equal(Q.status, 201);
    json_t *o = body_json();
    memo = json_loads(first, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(o, "serial")),
                        json_string_value(json_object_get(memo, "s")));
    assert_string_equal(json_string_value(json_object_get(o, "certificate")),
                        json_string_value(json_object_get(memo, "pem")));
    json_decref(o);
    json_decref(memo);

    /* A retry of a generated-key request cannot answer with the key: it finishes
     * the binding and says so. */
    memo = json_loads(first, 0, NULL);
    json_object_set_new(memo, "g", json_true());
    char *gen = json_dumps(memo, JSON_COMPACT);
    json_decref(memo);
    start("POST", "/api/v1/certificates", TOKEN, "application/json",
          issue_body(", \"keyType\": \"ec\""));
    feed(2, r_str(gen), r_arr(2, r_str("1"), r_str("v")));
    finish_issue(gen, NULL);
    assert_error(409, "issue a new one");
    assert_null(strstr(Q.body.data, "PRIVATE"));

    /* This attempt signed, but the other one claimed the request id first: the
     * other's certificate is answered (same CSR key), ours is dropped. */
    const char *mine = issue_until_record(issue_body(", \"keyType\": \"ec\""), "v");
    assert_string_not_equal(mine, first);
    feed(2, r_nil(), r_str(first));
    finish_issue(first, NULL);
    assert_int_equal(Q.status, 201);
    o = body_json();
    memo = json_loads(first, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(o, "serial")),
                        json_string_value(json_object_get(memo, "s")));
    assert_null(json_object_get(o, "privateKey")); /* our key belongs to the dropped one */
    json_decref(o);
    json_decref(memo);
    free(first);
    free(gen);
}

static void test_issue_ven_deleted(void **state)
{
    (void)state;
    const char *m = issue_until_record(issue_body(", \"keyType\": \"ec\""), "v");
    char memo[8192];
    snprintf(memo, sizeof memo, "%s", m);
    feed(2, r_nil(), r_str(memo));
    feed(4, r_int(9), r_int(1), r_int(1), r_str(VEN));
    feed(1, r_str("[\"404\"]"));
    /* the fingerprint index claimed for it is released */
    assert_int_equal(Q.ncmds, 1);
    assert_arg(0, 1, W.redis.sha[WK_SCRIPT_CAD]);
    feed(1, r_int(1));
    assert_error(404, "revoke it");
}

static redisReply *cert_hash(const char *fp, long long rv, int rr)
{
    char nb[24], na[24], ia[24], rvs[24], rrs[8];
    long long now = (long long)time(NULL) * 1000;
    snprintf(nb, sizeof nb, "%lld", now - 300000);
    snprintf(na, sizeof na, "%lld", now + 86400000LL * 10);
    snprintf(ia, sizeof ia, "%lld", now);
    snprintf(rvs, sizeof rvs, "%lld", rv);
    snprintf(rrs, sizeof rrs, "%d", rr);
    if (rv)
        return r_arr(22, r_str("v"), r_str(VEN), r_str("f"), r_str(fp), r_str("cn"), r_str("v"),
                     r_str("k"), r_str("rsa"), r_str("g"), r_str("1"), r_str("nb"), r_str(nb),
                     r_str("na"), r_str(na), r_str("ia"), r_str(ia), r_str("ca"), r_str(CA.id),
                     r_str("rv"), r_str(rvs), r_str("rr"), r_str(rrs));
    return r_arr(18, r_str("v"), r_str(VEN), r_str("f"), r_str(fp), r_str("cn"), r_str("v"),
                 r_str("k"), r_str("rsa"), r_str("g"), r_str("1"), r_str("nb"), r_str(nb),
                 r_str("na"), r_str(na), r_str("ia"), r_str(ia), r_str("ca"), r_str(CA.id));
}

static void test_revoke(void **state)
{
    (void)state;
    const char *fp = "09719E0E51C08F0556C9";
    start("POST", "/api/v1/certificates/7b21f5/revoke", TOKEN, "application/json",
          "{\"reason\": \"keyCompromise\"}");
    assert_int_equal(Q.ncmds, 2);
    assert_arg(0, 1, W.redis.sha[WK_SCRIPT_CERTREVOKE]);
    assert_arg(0, 3, "vtn:cert:7B21F5"); /* the serial normalised */
    assert_arg(0, 5, "1");               /* keyCompromise */
    assert_arg(1, 0, "HGETALL");
    long long rv = (long long)time(NULL) * 1000;
    feed(2, r_str("R"), cert_hash(fp, rv, 1));
    /* the CRL entry, the revoked-fingerprint marker, unbind, drop the index */
    assert_int_equal(Q.ncmds, 4);
    char k[VTN_KEY_MAX], member[80];
    snprintf(k, sizeof k, "vtn:ca:{%s}:revoked", CA.id);
    assert_arg(0, 0, "ZADD");
    assert_arg(0, 1, k);
    snprintf(member, sizeof member, "7B21F5:1:%lld", rv / 1000);
    assert_arg(0, 3, member);
    assert_arg(1, 0, "SET");
    assert_arg(1, 1, "vtn:revokedfp:09719E0E51C08F0556C9");
    assert_arg(1, 2, "7B21F5");
    assert_arg(1, 3, "EXAT");
    assert_arg(2, 1, W.redis.sha[WK_SCRIPT_CERTUNBIND]);
    assert_arg(2, 3, "ven:{" VEN "}");
    assert_arg(2, 4, fp);
    assert_arg(3, 1, W.redis.sha[WK_SCRIPT_CAD]);
    assert_arg(3, 3, "vtn:venfp:09719E0E51C08F0556C9");
    feed(4, r_int(1), r_str("OK"), r_int(1), r_int(1));
    assert_int_equal(Q.ncmds, 1);
    feed(1, cert_hash(fp, rv, 1));
    assert_int_equal(Q.status, 200);
    json_t *o = body_json();
    assert_string_equal(json_string_value(json_object_get(o, "status")), "revoked");
    assert_string_equal(json_string_value(json_object_get(o, "revocationReason")), "keyCompromise");
    assert_true(json_is_true(json_object_get(o, "unbound")));
    assert_string_equal(json_string_value(json_object_get(o, "fingerprint")),
                        "09:71:9E:0E:51:C0:8F:05:56:C9");
    json_decref(o);

    start("POST", "/api/v1/certificates/ABCD/revoke", TOKEN, NULL, NULL);
    feed(2, r_str("404"), r_arr(0));
    assert_error(404, "no certificate with serial ABCD");
}

static void test_list_and_get(void **state)
{
    (void)state;
    start("GET", "/api/v1/certificates?venID=" VEN "&limit=2", TOKEN, NULL, NULL);
    assert_int_equal(Q.ncmds, 1);
    assert_arg(0, 0, "ZRANGEBYLEX");
    assert_arg(0, 1, "vencerts:{" VEN "}");
    assert_arg(0, 2, "-");
    assert_arg(0, 6, "3");
    feed(1, r_arr(3, r_str("AA"), r_str("BB"), r_str("CC")));
    assert_int_equal(Q.ncmds, 2); /* the page, not the look-ahead */
    assert_arg(0, 1, "vtn:cert:AA");
    assert_arg(1, 1, "vtn:cert:BB");
    feed(2, cert_hash("09719E0E51C08F0556C9", 0, 0), r_arr(0)); /* BB is gone */
    assert_int_equal(Q.status, 200);
    json_t *o = body_json();
    json_t *a = json_object_get(o, "certificates");
    assert_int_equal(json_array_size(a), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(a, 0), "serial")), "AA");
    assert_string_equal(json_string_value(json_object_get(json_array_get(a, 0), "status")),
                        "valid");
    assert_string_equal(json_string_value(json_object_get(o, "next_cursor")), "4242"); /* "BB" */
    json_decref(o);

    start("GET", "/api/v1/certificates?cursor=4242", TOKEN, NULL, NULL);
    assert_arg(0, 1, "vtn:certs");
    assert_arg(0, 2, "(BB");
    feed(1, r_arr(0));
    assert_int_equal(Q.status, 200);
    assert_string_equal(Q.body.data, "{\"certificates\":[],\"next_cursor\":null}");

    start("GET", "/api/v1/certificates/aa", TOKEN, NULL, NULL);
    assert_arg(0, 1, "vtn:cert:AA");
    feed(1, r_arr(0));
    assert_error(404, "no certificate with serial AA");
}

static void test_crl(void **state)
{
    (void)state;
    start("GET", "/api/v1/crl?days=7", TOKEN, NULL, NULL);
    assert_int_equal(Q.ncmds, 1);
    char k[VTN_KEY_MAX];
    assert_arg(0, 1, W.redis.sha[WK_SCRIPT_CRL]);
    snprintf(k, sizeof k, "vtn:ca:{%s}:revoked", CA.id);
    assert_arg(0, 3, k);
    snprintf(k, sizeof k, "vtn:ca:{%s}:crlnumber", CA.id);
    assert_arg(0, 4, k);
    feed(1, r_arr(2, r_int(42),
                  r_arr(3, r_str("7B21F5:1:1700000000"), r_str("not an entry"),
                        r_str("ABCDEF:0:1700000100"))));
    assert_int_equal(Q.status, 200);
    assert_string_equal(Q.ctype, "application/x-pem-file");
    BIO *b = BIO_new_mem_buf(Q.body.data, (int)Q.body.len);
    X509_CRL *crl = PEM_read_bio_X509_CRL(b, NULL, NULL, NULL);
    BIO_free(b);
    assert_non_null(crl);
    assert_int_equal(X509_CRL_verify(crl, X509_get0_pubkey(CA.cert)), 1);
    STACK_OF(X509_REVOKED) *rev = X509_CRL_get_REVOKED(crl);
    assert_int_equal(sk_X509_REVOKED_num(rev), 2); /* the malformed member is skipped */
    int found = 0;
    for (int i = 0; i < sk_X509_REVOKED_num(rev); i++) {
        BIGNUM *bn =
            ASN1_INTEGER_to_BN(X509_REVOKED_get0_serialNumber(sk_X509_REVOKED_value(rev, i)), NULL);
        char *hex = BN_bn2hex(bn);
        found += strcmp(hex, "7B21F5") == 0 || strcmp(hex, "ABCDEF") == 0;
        OPENSSL_free(hex);
        BN_free(bn);
    }
    assert_int_equal(found, 2);
    ASN1_INTEGER *num = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL);
    assert_int_equal(ASN1_INTEGER_get(num), 42);
    ASN1_INTEGER_free(num);
    /* nextUpdate: 7 days */
    int day, sec;
    ASN1_TIME_diff(&day, &sec, X509_CRL_get0_lastUpdate(crl), X509_CRL_get0_nextUpdate(crl));
    assert_int_equal(day, 7);
    X509_CRL_free(crl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_disabled_and_errors), cmocka_unit_test(test_redis_down),
        cmocka_unit_test(test_issue_csr),           cmocka_unit_test(test_issue_generated),
        cmocka_unit_test(test_issue_refusals),      cmocka_unit_test(test_issue_retry),
        cmocka_unit_test(test_issue_ven_deleted),   cmocka_unit_test(test_revoke),
        cmocka_unit_test(test_list_and_get),        cmocka_unit_test(test_crl),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
