/* The management API's certificates (docs/openapi.yaml): issue a VEN
 * certificate from a CSR or with a generated key, list, get, revoke, and a
 * freshly signed CRL. The worker signs with the client CA in VTN_CA_DIR; the
 * index of what it issued and revoked lives in Redis (docs/redis-keys.md),
 * shared by every worker. Same handler model as wk_api.c: steps over
 * pipeline rounds.
 *
 * Signing runs on the worker's thread inside the batch: an ECC certificate
 * costs about a millisecond, an RSA 2048 key generation 50-250 ms, which
 * delays the other requests of that batch. Issuing is an operator's action,
 * rare next to polls, so this is the simple choice (docs/worker.md). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>

#include "vtn/fingerprint.h"
#include "vtn/log.h"
#include "vtn/time.h"
#include "wk_internal.h"

#define CERT_PATH "/api/v1/certificates"
#define PEM_CTYPE "application/x-pem-file"
#define REVOKEDFP_GRACE_S 86400 /* vtn:revokedfp:* outlives the certificate by a day (skew) */

typedef struct wk_cert_state {
    wk_cert_req req;
    wk_cert_issued iss; /* what this attempt signed, or what the first attempt's memo holds */
    char serial[WK_SERIAL_MAX + 1];
    char cn[WK_CN_MAX * 4 + 1];
    char ca[WK_FP_MAX + 1]; /* CA id the certificate was issued by */
    int64_t ia_ms;
    int generated; /* the VTN generated the key */
    int key_lost;  /* a retry whose first attempt generated (and answered with) the key */
    int ven_gone;  /* the VEN was deleted before the binding */
    int claim_at;  /* reply index of the fingerprint claim */
    char old_fp[WK_FP_MAX + 1];
    /* list */
    int limit;
    char cursor[WK_SERIAL_MAX + 1];
    char ven[WK_ID_MAX + 1];
    json_t *list;
    /* revoke, CRL */
    int reason;
    int revoked_now;
    int unbound;
    int crl_days;
} wk_cert_state;

void wk_cert_state_free(wk_cert_state **st)
{
    wk_cert_state *c = *st;
    if (c == NULL)
        return;
    wk_cert_req_clear(&c->req);
    wk_cert_issued_clear(&c->iss);
    json_decref(c->list);
    free(c);
    *st = NULL;
}

static void bad_buffer(wk_req *q)
{
    wk_reply_internal(q, "command buffer full");
}

static const char *key_type_name(int t)
{
    return t == VTN_KEY_RSA ? "rsa" : "ec";
}

/* ---- rendering ---- */

/* One certificate, from the issuing state or from its vtn:cert:<serial> hash. */
typedef struct cert_info {
    const char *serial, *ven, *fp, *cn, *key_type;
    int generated;
    int64_t nb, na, ia, rv; /* rv 0: not revoked */
    int rr;
} cert_info;

static json_t *jtime(int64_t ms)
{
    char ts[40];
    return ms > 0 ? json_string(vtn_time_format(ms, ts, sizeof ts)) : json_null();
}

static json_t *cert_json(const cert_info *c)
{
    char pretty[VTN_FINGERPRINT_SIZE + 4];
    wk_fp_pretty(c->fp, pretty, sizeof pretty);
    const char *status = c->rv ? "revoked" : c->na <= vtn_now_ms() ? "expired" : "valid";
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    json_object_set_new(o, "serial", json_string(c->serial));
    json_object_set_new(o, "venID", json_string(c->ven));
    json_object_set_new(o, "commonName", json_string(c->cn));
    json_object_set_new(o, "fingerprint", pretty[0] ? json_string(pretty) : json_null());
    json_object_set_new(o, "keyType", json_string(c->key_type));
    json_object_set_new(o, "generatedKey", json_boolean(c->generated));
    json_object_set_new(o, "notBefore", jtime(c->nb));
    json_object_set_new(o, "notAfter", jtime(c->na));
    json_object_set_new(o, "issuedAt", jtime(c->ia));
    json_object_set_new(o, "status", json_string(status));
    json_object_set_new(o, "revokedAt", jtime(c->rv));
    json_object_set_new(o, "revocationReason",
                        c->rv ? json_string(vtn_crl_reason_name(c->rr)) : json_null());
    return o;
}

/* Copies of the hash fields cert_info points into. */
typedef struct cert_bufs {
    char ven[WK_ID_MAX + 1], fp[WK_FP_MAX + 1], cn[WK_CN_MAX * 4 + 1], kt[8], ca[WK_FP_MAX + 1];
} cert_bufs;

static int64_t hnum(const redisReply *h, const char *f)
{
    const redisReply *v = wk_api_hfield(h, f);
    char buf[32];
    if (v == NULL || !wk_rep_str(v, buf, sizeof buf))
        return 0;
    return strtoll(buf, NULL, 10);
}

static void hcopy(const redisReply *h, const char *f, char *out, size_t outlen)
{
    const redisReply *v = wk_api_hfield(h, f);
    if (v == NULL || !wk_rep_str(v, out, outlen))
        out[0] = '\0';
}

/* 0, or -ENOENT when h is no certificate hash (missing or dangling). */
static int cert_from_hash(const char *serial, const redisReply *h, cert_info *c, cert_bufs *b)
{
    if (h == NULL || h->type != REDIS_REPLY_ARRAY || h->elements == 0)
        return -ENOENT;
    hcopy(h, "v", b->ven, sizeof b->ven);
    hcopy(h, "f", b->fp, sizeof b->fp);
    hcopy(h, "cn", b->cn, sizeof b->cn);
    hcopy(h, "k", b->kt, sizeof b->kt);
    hcopy(h, "ca", b->ca, sizeof b->ca);
    *c = (cert_info){.serial = serial,
                     .ven = b->ven,
                     .fp = b->fp,
                     .cn = b->cn,
                     .key_type = b->kt[0] ? b->kt : "ec",
                     .generated = hnum(h, "g") == 1,
                     .nb = hnum(h, "nb"),
                     .na = hnum(h, "na"),
                     .ia = hnum(h, "ia"),
                     .rv = hnum(h, "rv"),
                     .rr = (int)hnum(h, "rr")};
    return 0;
}

/* The JSON of a stored certificate record (an HGETALL reply), or NULL after
 * answering 404 (no such serial) or 500. */
static json_t *stored_cert_json(wk_req *q, const char *serial, const redisReply *h)
{
    cert_info ci;
    cert_bufs b;
    if (cert_from_hash(serial, h, &ci, &b) < 0) {
        wk_reply_json_error(q, 404, "no certificate with serial %s", serial);
        return NULL;
    }
    json_t *o = cert_json(&ci);
    if (o == NULL)
        wk_reply_internal(q, "out of memory");
    return o;
}

/* ---- POST /api/v1/certificates ---- */

/* The memo of an issuing request (vtn:certreq:<rid>): everything a retry
 * needs to finish the same certificate, but never the private key. */
static char *memo_json(const wk_cert_state *c)
{
    json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:s,s:b,s:I,s:I,s:I,s:s}", "s", c->iss.serial, "f",
                          c->iss.fp, "cn", c->cn, "ca", c->ca, "k", key_type_name(c->iss.key_type),
                          "g", c->generated, "nb", (json_int_t)c->iss.nb_ms, "na",
                          (json_int_t)c->iss.na_ms, "ia", (json_int_t)c->ia_ms, "pem", c->iss.pem);
    if (o == NULL)
        return NULL;
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

/* Takes over the certificate in memo r unless it is the one this attempt
 * signed. 1: it is ours; 0: taken over; -EPROTO: unreadable memo. */
static int adopt_memo(wk_req *q, wk_cert_state *c, const redisReply *r)
{
    if (r == NULL || r->type != REDIS_REPLY_STRING)
        return -EPROTO;
    json_error_t e;
    json_t *o = json_loadb(r->str, (size_t)r->len, 0, &e);
    const char *serial = NULL, *fp = NULL, *cn = NULL, *ca = NULL, *kt = NULL, *pem = NULL;
    int g = 0;
    json_int_t nb = 0, na = 0, ia = 0;
    if (o == NULL ||
        json_unpack(o, "{s:s,s:s,s:s,s:s,s:s,s:b,s:I,s:I,s:I,s:s}", "s", &serial, "f", &fp, "cn",
                    &cn, "ca", &ca, "k", &kt, "g", &g, "nb", &nb, "na", &na, "ia", &ia, "pem",
                    &pem) < 0 ||
        strlen(serial) > WK_SERIAL_MAX || strlen(fp) > WK_FP_MAX || strlen(ca) > WK_FP_MAX ||
        strlen(cn) >= sizeof c->cn) {
        json_decref(o);
        return -EPROTO;
    }
    if (c->iss.pem && strcmp(serial, c->iss.serial) == 0) {
        json_decref(o);
        return 1;
    }
    /* Another attempt of this request (the gateway's retry) signed first: finish its
     * certificate, not ours, so the answer and the binding agree. */
    if (c->iss.pem)
        vtn_info("cert_issue_lost_race", "req=%s ours=%s kept=%s", q->rid, c->iss.serial, serial);
    wk_cert_issued_clear(&c->iss);
    snprintf(c->iss.serial, sizeof c->iss.serial, "%s", serial);
    snprintf(c->iss.fp, sizeof c->iss.fp, "%s", fp);
    snprintf(c->cn, sizeof c->cn, "%s", cn);
    snprintf(c->ca, sizeof c->ca, "%s", ca);
    c->iss.key_type = strcmp(kt, "rsa") == 0 ? VTN_KEY_RSA : VTN_KEY_EC;
    c->iss.nb_ms = nb;
    c->iss.na_ms = na;
    c->ia_ms = ia;
    c->iss.pem = strdup(pem);
    c->generated = g;
    c->key_lost = g; /* that key was only in the first attempt's reply */
    json_decref(o);
    return c->iss.pem ? 0 : -ENOMEM;
}

/* Round 3: the certificate's own keys and its fingerprint index. Every
 * command is idempotent (same values on a retry). */
static void queue_record(wk_req *q, wk_cert_state *c)
{
    char k[WK_KEY_MAX], nb[24], na[24], ia[24];
    snprintf(nb, sizeof nb, "%lld", (long long)c->iss.nb_ms);
    snprintf(na, sizeof na, "%lld", (long long)c->iss.na_ms);
    snprintf(ia, sizeof ia, "%lld", (long long)c->ia_ms);
    int rc = wk_cmd(q, "HSET", wk_key_cert(k, c->iss.serial), "v", c->req.ven, "f", c->iss.fp, "cn",
                    c->cn, "k", key_type_name(c->iss.key_type), "g", c->generated ? "1" : "0", "nb",
                    nb, "na", na, "ia", ia, "ca", c->ca, NULL);
    rc |= wk_cmd(q, "ZADD", WK_KEY_CERTS, "0", c->iss.serial, NULL);
    rc |= wk_cmd(q, "ZADD", wk_key_vencerts(k, c->req.ven), "0", c->iss.serial, NULL);
    rc |= wk_eval(q, WK_SCRIPT_CLAIM, 1, wk_key_fp(k, c->iss.fp), c->req.ven, "", NULL);
    c->claim_at = 3;
    if (rc)
        bad_buffer(q);
    q->s.stage = 3;
}

static void issue_finish(wk_req *q, wk_cert_state *c)
{
    if (c->ven_gone) {
        wk_reply_json_error(q, 404,
                            "no VEN with venID %s (deleted while the certificate was issued: "
                            "certificate %s is recorded but bound to no VEN; revoke it)",
                            c->req.ven, c->iss.serial);
        return;
    }
    if (c->key_lost) {
        wk_reply_json_error(q, 409,
                            "this request was carried out by another worker, whose reply held "
                            "the private key; the key is kept nowhere, so certificate %s "
                            "(now bound to venID %s) is of no use: issue a new one",
                            c->iss.serial, c->req.ven);
        return;
    }
    cert_info ci = {.serial = c->iss.serial,
                    .ven = c->req.ven,
                    .fp = c->iss.fp,
                    .cn = c->cn,
                    .key_type = key_type_name(c->iss.key_type),
                    .generated = c->generated,
                    .nb = c->iss.nb_ms,
                    .na = c->iss.na_ms,
                    .ia = c->ia_ms};
    json_t *o = cert_json(&ci);
    if (o == NULL) {
        wk_reply_internal(q, "out of memory");
        return;
    }
    char old[VTN_FINGERPRINT_SIZE + 4];
    wk_fp_pretty(c->old_fp, old, sizeof old);
    json_object_set_new(o, "previousFingerprint",
                        c->old_fp[0] && strcmp(c->old_fp, c->iss.fp) ? json_string(old)
                                                                     : json_null());
    json_object_set_new(o, "certificate", json_string(c->iss.pem));
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (s == NULL) {
        wk_reply_internal(q, "out of memory");
        return;
    }
    snprintf(q->headers, sizeof q->headers, "Location: " CERT_PATH "/%s\r\n", c->iss.serial);
    if (c->iss.key_pem == NULL) {
        wk_reply(q, 201, "application/json", s, strlen(s));
        free(s);
        return;
    }
    /* The key goes straight into the reply buffer, not through jansson, so the only
     * copies are ours to clear: the reply (wipe_body) and c->iss.key_pem. PEM needs
     * no JSON escaping but its line ends. */
    vtn_buf *b = &q->body;
    vtn_buf_reset(b);
    q->s.wipe_body = 1;
    int rc = vtn_buf_append(b, s, strlen(s) - 1); /* without the closing brace */
    rc |= vtn_buf_appends(b, ",\"privateKey\":\"");
    for (const char *p = c->iss.key_pem; rc == 0 && *p; p++)
        rc = *p == '\n' ? vtn_buf_append(b, "\\n", 2) : vtn_buf_append(b, p, 1);
    rc |= vtn_buf_appends(b, "\"}");
    free(s);
    if (rc < 0) {
        OPENSSL_cleanse(b->data, b->len); /* before the error text replaces it */
        wk_reply_internal(q, "reply buffer full");
        return;
    }
    wk_reply_body(q, 201, "application/json");
}

static void cert_issue(wk_req *q, redisReply **rep, int n)
{
    wk_hstate *s = &q->s;
    wk_cert_state *c = s->cert;
    wk_worker *w = q->w;
    char k[WK_KEY_MAX], err[512];
    switch (s->stage) {
    case 0: {
        if (!wk_api_json_ctype(q->env.content_type)) {
            wk_reply_json_error(q, 415, "Content-Type must be application/json");
            return;
        }
        if (wk_cert_parse_issue(q->env.body.p, q->env.body.n, &c->req, err, sizeof err) < 0) {
            wk_reply_json_error(q, 400, "%s", err);
            return;
        }
        int rc = wk_cmd(q, "GET", wk_key_certreq(k, q->rid), NULL);
        rc |= wk_cmd(q, "HMGET", wk_key_ven(k, c->req.ven), "ct", "n", NULL);
        if (rc)
            bad_buffer(q);
        s->stage = 1;
        return;
    }
    case 1: {
        if (wk_check_reps(q, rep, n))
            return;
        if (rep[0]->type == REDIS_REPLY_STRING) {
            /* A retry: the first attempt signed already. */
            if (adopt_memo(q, c, rep[0]) < 0) {
                wk_reply_internal(q, "unreadable certificate request memo");
                return;
            }
            queue_record(q, c);
            return;
        }
        char ct[32], name[WK_NAME_MAX + 1];
        if (!wk_rep_elem(rep[1], 0, ct, sizeof ct)) {
            wk_reply_json_error(q, 404, "no VEN with venID %s", c->req.ven);
            return;
        }
        wk_rep_elem(rep[1], 1, name, sizeof name);
        const char *cn = c->req.cn[0] ? c->req.cn : name[0] ? name : c->req.ven;
        if (!wk_cert_cn_valid(cn, strlen(cn))) {
            wk_reply_json_error(q, 400,
                                "the %s of venID %s cannot be a commonName (more than %d "
                                "characters or control characters): give commonName",
                                name[0] ? "venName" : "venID", c->req.ven, WK_CN_MAX);
            return;
        }
        snprintf(c->cn, sizeof c->cn, "%s", cn);
        snprintf(c->ca, sizeof c->ca, "%s", w->ca.id);
        uint64_t t0 = vtn_mono_ns();
        int rc = wk_cert_sign(&w->ca, &c->req, c->cn, time(NULL), &c->iss, err, sizeof err);
        if (rc == -ESTALE) {
            wk_reply_json_error(q, 503, "%s", err);
            return;
        }
        if (rc < 0) {
            wk_reply_internal(q, err);
            return;
        }
        c->generated = c->req.key_type != 0;
        c->ia_ms = vtn_now_ms();
        vtn_info("cert_signed", "req=%s ven=%s serial=%s key=%s generated=%d us=%llu", q->rid,
                 c->req.ven, c->iss.serial, key_type_name(c->iss.key_type), c->generated,
                 (unsigned long long)((vtn_mono_ns() - t0) / 1000));
        char *memo = memo_json(c);
        if (memo == NULL) {
            wk_reply_internal(q, "out of memory");
            return;
        }
        /* Claim the request id: if another attempt of this request got here first, its
         * certificate wins and ours is dropped unused (never recorded or bound). */
        char ttl[16];
        snprintf(ttl, sizeof ttl, "%d", WK_MEMO_TTL_S);
        rc = wk_cmd(q, "SET", wk_key_certreq(k, q->rid), memo, "NX", "EX", ttl, NULL);
        rc |= wk_cmd(q, "GET", k, NULL);
        free(memo);
        if (rc)
            bad_buffer(q);
        s->stage = 2;
        return;
    }
    case 2: {
        if (wk_check_reps(q, rep, n))
            return;
        int ours = adopt_memo(q, c, rep[1]);
        if (ours < 0) {
            wk_reply_internal(q, "unreadable certificate request memo");
            return;
        }
        if (ours)
            atomic_fetch_add_explicit(&w->m.certs_issued, 1, memory_order_relaxed);
        queue_record(q, c);
        return;
    }
    case 3: {
        char got[WK_ID_MAX + 1], k2[WK_KEY_MAX];
        if (wk_check_reps(q, rep, n))
            return;
        if (!wk_rep_str(rep[c->claim_at], got, sizeof got) || strcmp(got, c->req.ven) != 0) {
            /* 80 bits of a fresh certificate's hash matching another's: not in practice. */
            wk_reply_internal(q, "the new fingerprint is indexed for another VEN");
            return;
        }
        if (wk_eval(q, WK_SCRIPT_CERTBIND, 2, wk_key_ven(k, c->req.ven),
                    wk_key_venreq(k2, c->req.ven, q->rid), c->iss.fp, NULL) < 0)
            bad_buffer(q);
        s->stage = 4;
        return;
    }
    case 4: {
        if (wk_check_reps(q, rep, n))
            return;
        json_t *a = wk_script_outcome(q, rep[0]);
        if (a == NULL)
            return;
        const char *kind = json_string_value(json_array_get(a, 0));
        const char *old = json_string_value(json_array_get(a, 1));
        int rc = 0;
        s->stage = 5;
        if (strcmp(kind, "404") == 0) {
            c->ven_gone = 1; /* drop the index entry claimed for it (compare-and-delete) */
            rc = wk_eval(q, WK_SCRIPT_CAD, 1, wk_key_fp(k, c->iss.fp), c->req.ven, NULL);
        } else {
            snprintf(c->old_fp, sizeof c->old_fp, "%s", old ? old : "");
            vtn_info("cert_bound", "req=%s ven=%s serial=%s fp=%s previous=%s", q->rid, c->req.ven,
                     c->iss.serial, c->iss.fp, c->old_fp[0] ? c->old_fp : "-");
            if (c->old_fp[0] && strcmp(c->old_fp, c->iss.fp) != 0)
                rc = wk_eval(q, WK_SCRIPT_CAD, 1, wk_key_fp(k, c->old_fp), c->req.ven, NULL);
        }
        json_decref(a);
        if (rc)
            bad_buffer(q);
        else if (q->ncmds == 0)
            issue_finish(q, c);
        return;
    }
    default:
        if (wk_check_reps(q, rep, n))
            return;
        issue_finish(q, c);
        return;
    }
}

/* ---- GET /api/v1/certificates ---- */

static void cert_list(wk_req *q, redisReply **rep, int n)
{
    wk_hstate *s = &q->s;
    wk_cert_state *c = s->cert;
    char k[WK_KEY_MAX];
    switch (s->stage) {
    case 0: {
        const char *key = c->ven[0] ? wk_key_vencerts(k, c->ven) : WK_KEY_CERTS;
        if (wk_cmd_page(q, key, c->cursor, c->limit) < 0)
            bad_buffer(q);
        s->stage = 1;
        return;
    }
    case 1: {
        if (wk_check_reps(q, rep, n))
            return;
        c->list = json_array();
        if (c->list == NULL) {
            wk_reply_internal(q, "out of memory");
            return;
        }
        char serial[WK_SERIAL_MAX + 1];
        for (size_t i = 0; rep[0]->type == REDIS_REPLY_ARRAY && i < rep[0]->elements; i++)
            if (wk_rep_str(rep[0]->element[i], serial, sizeof serial))
                json_array_append_new(c->list, json_string(serial));
        size_t count = json_array_size(c->list);
        if (count == 0) {
            wk_reply_json(q, 200, json_pack("{s:[],s:n}", "certificates", "next_cursor"));
            return;
        }
        for (size_t i = 0; i < count && i < (size_t)c->limit; i++)
            if (wk_cmd(q, "HGETALL", wk_key_cert(k, json_string_value(json_array_get(c->list, i))),
                       NULL) < 0) {
                bad_buffer(q);
                return;
            }
        s->stage = 2;
        return;
    }
    default: {
        if (wk_check_reps(q, rep, n))
            return;
        json_t *items = json_array();
        for (int i = 0; i < n; i++) {
            const char *serial = json_string_value(json_array_get(c->list, (size_t)i));
            cert_info ci;
            cert_bufs b;
            if (cert_from_hash(serial, rep[i], &ci, &b) < 0)
                continue; /* listed, record gone: skipped like a dangling VEN */
            json_array_append_new(items, cert_json(&ci));
        }
        json_t *o = json_object();
        json_object_set_new(o, "certificates", items);
        json_object_set_new(o, "next_cursor", wk_api_next_cursor(c->list, c->limit, n));
        wk_reply_json(q, 200, o);
        return;
    }
    }
}

/* ---- GET /api/v1/certificates/{serial} ---- */

static void cert_get(wk_req *q, redisReply **rep, int n)
{
    wk_hstate *s = &q->s;
    wk_cert_state *c = s->cert;
    char k[WK_KEY_MAX];
    if (s->stage == 0) {
        if (wk_cmd(q, "HGETALL", wk_key_cert(k, c->serial), NULL) < 0)
            bad_buffer(q);
        s->stage = 1;
        return;
    }
    if (wk_check_reps(q, rep, n))
        return;
    json_t *o = stored_cert_json(q, c->serial, rep[0]);
    if (o)
        wk_reply_json(q, 200, o);
}

/* ---- POST /api/v1/certificates/{serial}/revoke ---- */

static void cert_revoke(wk_req *q, redisReply **rep, int n)
{
    wk_hstate *s = &q->s;
    wk_cert_state *c = s->cert;
    char k[WK_KEY_MAX], err[512];
    switch (s->stage) {
    case 0: {
        if (q->env.body.n && !wk_api_json_ctype(q->env.content_type)) {
            wk_reply_json_error(q, 415, "Content-Type must be application/json");
            return;
        }
        if (wk_cert_parse_revoke(q->env.body.p, q->env.body.n, &c->reason, err, sizeof err) < 0) {
            wk_reply_json_error(q, 400, "%s", err);
            return;
        }
        char now[24], reason[8];
        snprintf(now, sizeof now, "%lld", (long long)vtn_now_ms());
        snprintf(reason, sizeof reason, "%d", c->reason);
        int rc = wk_eval(q, WK_SCRIPT_CERTREVOKE, 1, wk_key_cert(k, c->serial), now, reason, NULL);
        rc |= wk_cmd(q, "HGETALL", k, NULL);
        if (rc)
            bad_buffer(q);
        s->stage = 1;
        return;
    }
    case 1: {
        if (wk_check_reps(q, rep, n))
            return;
        char res[8];
        wk_rep_str(rep[0], res, sizeof res);
        cert_info ci;
        cert_bufs b;
        if (strcmp(res, "404") == 0 || cert_from_hash(c->serial, rep[1], &ci, &b) < 0) {
            wk_reply_json_error(q, 404, "no certificate with serial %s", c->serial);
            return;
        }
        c->revoked_now = strcmp(res, "R") == 0;
        snprintf(c->ven, sizeof c->ven, "%s", ci.ven);
        /* Every step again on a repeated revocation: a crash after the script must
         * not leave the CRL or the binding behind. */
        char member[WK_SERIAL_MAX + 48], score[24], exat[24];
        snprintf(member, sizeof member, "%s:%d:%lld", c->serial, ci.rr, (long long)(ci.rv / 1000));
        snprintf(score, sizeof score, "%lld", (long long)(ci.na / 1000));
        int rc = wk_cmd(q, "ZADD", wk_key_ca_revoked(k, b.ca[0] ? b.ca : q->w->ca.id), score,
                        member, NULL);
        if (b.fp[0]) {
            snprintf(exat, sizeof exat, "%lld", (long long)(ci.na / 1000 + REVOKEDFP_GRACE_S));
            rc |= wk_cmd(q, "SET", wk_key_revokedfp(k, b.fp), c->serial, "EXAT", exat, NULL);
            /* record first, then the index (docs/redis-keys.md, "Write order") */
            rc |= wk_eval(q, WK_SCRIPT_CERTUNBIND, 1, wk_key_ven(k, b.ven), b.fp, NULL);
            rc |= wk_eval(q, WK_SCRIPT_CAD, 1, wk_key_fp(k, b.fp), b.ven, NULL);
        }
        if (rc)
            bad_buffer(q);
        s->stage = 2;
        return;
    }
    case 2: {
        if (wk_check_reps(q, rep, n))
            return;
        c->unbound = n >= 3 && rep[2]->type == REDIS_REPLY_INTEGER && rep[2]->integer == 1;
        if (c->revoked_now)
            atomic_fetch_add_explicit(&q->w->m.certs_revoked, 1, memory_order_relaxed);
        vtn_info("cert_revoked", "req=%s serial=%s ven=%s now=%d unbound=%d", q->rid, c->serial,
                 c->ven, c->revoked_now, c->unbound);
        /* Read the record again for the answer: one more round, and the truth. */
        s->stage = 3;
        if (wk_cmd(q, "HGETALL", wk_key_cert(k, c->serial), NULL) < 0)
            bad_buffer(q);
        return;
    }
    default: {
        if (wk_check_reps(q, rep, n))
            return;
        json_t *o = stored_cert_json(q, c->serial, rep[0]);
        if (o == NULL)
            return;
        json_object_set_new(o, "unbound", json_boolean(c->unbound));
        wk_reply_json(q, 200, o);
        return;
    }
    }
}

/* ---- GET /api/v1/crl ---- */

static void cert_crl(wk_req *q, redisReply **rep, int n)
{
    wk_hstate *s = &q->s;
    wk_cert_state *c = s->cert;
    wk_worker *w = q->w;
    char k1[WK_KEY_MAX], k2[WK_KEY_MAX], err[512];
    if (s->stage == 0) {
        char now[24], max[16];
        snprintf(now, sizeof now, "%lld", (long long)time(NULL));
        snprintf(max, sizeof max, "%d", WK_CRL_MAX);
        if (wk_eval(q, WK_SCRIPT_CRL, 2, wk_key_ca_revoked(k1, w->ca.id),
                    wk_key_ca_crlnumber(k2, w->ca.id), now, max, NULL) < 0)
            bad_buffer(q);
        s->stage = 1;
        return;
    }
    if (wk_check_reps(q, rep, n))
        return;
    const redisReply *r = rep[0];
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[0]->type != REDIS_REPLY_INTEGER || r->element[1]->type != REDIS_REPLY_ARRAY) {
        wk_reply_internal(q, "unexpected crl script reply");
        return;
    }
    const redisReply *m = r->element[1];
    if (m->elements > WK_CRL_MAX) {
        wk_reply_json_error(q, 500,
                            "more than %d unexpired revoked certificates: the CRL would exceed "
                            "the reply limit",
                            WK_CRL_MAX);
        return;
    }
    vtn_revoked *rv = calloc(m->elements ? m->elements : 1, sizeof *rv);
    char(*serials)[WK_SERIAL_MAX + 1] = calloc(m->elements ? m->elements : 1, sizeof *serials);
    size_t cnt = 0;
    if (rv == NULL || serials == NULL) {
        free(rv);
        free(serials);
        wk_reply_internal(q, "out of memory");
        return;
    }
    for (size_t i = 0; i < m->elements; i++) {
        char mem[WK_SERIAL_MAX + 48];
        int reason;
        long long when;
        /* "<serial>:<reason>:<revoked at, s>"; anything else is skipped, not fatal */
        if (!wk_rep_str(m->element[i], mem, sizeof mem) ||
            sscanf(mem, "%40[0-9A-F]:%d:%lld", serials[cnt], &reason, &when) != 3)
            continue;
        rv[cnt].serial_hex = serials[cnt];
        rv[cnt].reason = reason;
        rv[cnt].when = (time_t)when;
        cnt++;
    }
    X509_CRL *crl = vtn_pki_crl(w->ca.cert, w->ca.key, rv, cnt, r->element[0]->integer, c->crl_days,
                                err, sizeof err);
    free(rv);
    free(serials);
    if (crl == NULL) {
        wk_reply_internal(q, err);
        return;
    }
    BIO *b = BIO_new(BIO_s_mem());
    char *data = NULL;
    long len = b && PEM_write_bio_X509_CRL(b, crl) ? BIO_get_mem_data(b, &data) : 0;
    if (len > 0) {
        wk_reply(q, 200, PEM_CTYPE, data, (size_t)len);
        atomic_fetch_add_explicit(&w->m.crls_signed, 1, memory_order_relaxed);
        vtn_info("crl_signed", "req=%s number=%lld revoked=%zu days=%d", q->rid,
                 r->element[0]->integer, cnt, c->crl_days);
    } else {
        wk_reply_internal(q, "PEM encoding of the CRL failed");
    }
    BIO_free(b);
    X509_CRL_free(crl);
}

/* ---- entry ---- */

void wk_h_api_cert(wk_req *q, int route, const char *id, const char *query, size_t qlen)
{
    wk_hstate *s = &q->s;
    wk_worker *w = q->w;
    char err[512];
    if (w->ca.cert == NULL) {
        wk_reply_json_error(q, 503, "certificate issuing disabled: set VTN_CA_DIR");
        return;
    }
    wk_cert_state *c = calloc(1, sizeof *c);
    if (c == NULL) {
        wk_reply_internal(q, "out of memory");
        return;
    }
    s->cert = c;
    wk_step_fn step;
    int post = vtn_str_eq(q->env.method, "POST");
    if (route == WK_API_CERTS && !post) {
        if (wk_cert_parse_list_query(query, qlen, &c->limit, c->cursor, sizeof c->cursor, c->ven,
                                     sizeof c->ven, err, sizeof err) < 0) {
            wk_reply_json_error(q, 400, "%s", err);
            return;
        }
        step = cert_list;
    } else if (route == WK_API_CRL) {
        if (wk_cert_parse_crl_query(query, qlen, &c->crl_days, err, sizeof err) < 0) {
            wk_reply_json_error(q, 400, "%s", err);
            return;
        }
        step = cert_crl;
    } else {
        if (qlen) {
            wk_reply_json_error(q, 400, "this resource takes no query parameters");
            return;
        }
        if (route == WK_API_CERTS) {
            step = cert_issue;
        } else {
            if (wk_cert_serial_norm(id, strlen(id), c->serial, sizeof c->serial) < 0) {
                char shown[80];
                wk_reply_json_error(q, 404, "no certificate with serial %s (serials are hex)",
                                    vtn_log_quote(shown, sizeof shown, id, strlen(id)));
                return;
            }
            step = route == WK_API_CERT ? cert_get : cert_revoke;
        }
    }
    s->stage = 0;
    q->step = step;
    step(q, NULL, 0);
}
