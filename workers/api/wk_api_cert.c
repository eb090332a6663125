/* The management API's certificates (docs/openapi.yaml): issue a VEN
 * certificate from a CSR or with a generated key, list, get, revoke, and a
 * freshly signed CRL. The worker signs with the client CA in VTN_CA_DIR; the
 * index of what it issued and revoked lives in Redis (docs/redis-keys.md),
 * shared by every worker. Same handler model as wk_api.c: steps over
 * pipeline rounds.
 *
 * Signing (an ECC certificate: about a millisecond; an RSA 2048 key
 * generation: 50-250 ms) and CRL signing run on the slow-work thread
 * (wk_slow.c): the request waits in a stage while polls keep being
 * answered. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>

#include "vtn/fingerprint.h"
#include "vtn/log.h"
#include "vtn/time.h"
#include "wk_api_internal.h"

#define CERT_PATH "/api/v1/certificates"
#define PEM_CTYPE "application/x-pem-file"

enum issue_stage {
    ISSUE_START = 0, /* the request's memo and the VEN */
    ISSUE_SIGN,      /* -> sign on the slow-work thread (or adopt a retry's memo) */
    ISSUE_SIGNED,    /* -> claim the request id with the memo */
    ISSUE_MEMO,      /* -> record the certificate and claim its fingerprint */
    ISSUE_RECORDED,  /* -> bind it to the VEN */
    ISSUE_BOUND,     /* -> release the old fingerprint (or the orphan claim) */
    ISSUE_DONE,
};

typedef struct issue_state {
    enum issue_stage stage;
    wk_cert_req req;
    wk_cert_issued iss; /* what this attempt signed, or what the first attempt's memo holds */
    char cn[WK_CN_MAX * 4 + 1];
    char ca[WK_FP_MAX + 1]; /* CA id the certificate was issued by */
    int64_t ia_ms;
    int generated; /* the VTN generated the key */
    int key_lost;  /* a retry whose first attempt generated (and answered with) the key */
    int ven_gone;  /* the VEN was deleted before the binding */
    char old_fp[WK_FP_MAX + 1];
    int sign_rc; /* the slow work's outcome */
    uint64_t sign_us;
    char err[256];
    wk_rh memo, ven; /* ISSUE_START's lookups */
    wk_rh claimed;   /* GET of the memo after SET NX */
    wk_rh fp_claim;  /* the fingerprint index claim */
    wk_rh bind;      /* the bind script */
} issue_state;

static void issue_fini(void *st)
{
    issue_state *c = st;
    wk_cert_req_clear(&c->req);
    wk_cert_issued_clear(&c->iss);
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
    const redisReply *v = wk__api_hfield(h, f);
    char buf[32];
    if (v == NULL || !wk_rep_str(v, buf, sizeof buf))
        return 0;
    return strtoll(buf, NULL, 10);
}

static void hcopy(const redisReply *h, const char *f, char *out, size_t outlen)
{
    const redisReply *v = wk__api_hfield(h, f);
    if (v == NULL || !wk_rep_str(v, out, outlen))
        out[0] = '\0';
}

/* 0, or -ENOENT when h is no certificate hash (missing or dangling). */
static int cert_from_hash(const char *serial, const redisReply *h, cert_info *c, cert_bufs *b)
{
    if (wk_hash_empty(h))
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
static char *memo_json(const issue_state *c)
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
static int adopt_memo(wk_req *q, issue_state *c, const redisReply *r)
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
static void queue_record(wk_req *q, issue_state *c)
{
    char k[VTN_KEY_MAX], nb[24], na[24], ia[24];
    snprintf(nb, sizeof nb, "%lld", (long long)c->iss.nb_ms);
    snprintf(na, sizeof na, "%lld", (long long)c->iss.na_ms);
    snprintf(ia, sizeof ia, "%lld", (long long)c->ia_ms);
    int bad = wk_cmd(q, "HSET", wk_key_cert(k, c->iss.serial), "v", c->req.ven, "f", c->iss.fp,
                     "cn", c->cn, "k", key_type_name(c->iss.key_type), "g",
                     c->generated ? "1" : "0", "nb", nb, "na", na, "ia", ia, "ca", c->ca, NULL) < 0;
    bad |= wk_cmd(q, "ZADD", VTN_KEY_CERTS, "0", c->iss.serial, NULL) < 0;
    bad |= wk_cmd(q, "ZADD", wk_key_vencerts(k, c->req.ven), "0", c->iss.serial, NULL) < 0;
    bad |= (c->fp_claim =
                wk_eval(q, WK_SCRIPT_CLAIM, 1, wk_key_fp(k, c->iss.fp), c->req.ven, "", NULL)) < 0;
    if (bad)
        wk_reply_no_room(q);
    c->stage = ISSUE_RECORDED;
}

static void issue_finish(wk_req *q, issue_state *c)
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
    q->wipe_body = 1;
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

/* On the slow-work thread: key generation and signing. */
static void issue_sign(wk_req *q, void *st)
{
    issue_state *c = st;
    uint64_t t0 = vtn_mono_ns();
    c->sign_rc = wk_cert_sign(q->w->ca, &c->req, c->cn, time(NULL), &c->iss, c->err, sizeof c->err);
    c->sign_us = (vtn_mono_ns() - t0) / 1000;
}

/* 503 when the worker has no CA; 1 when it has one. */
static int ca_ready(wk_req *q)
{
    if (q->w->ca == NULL || q->w->ca->cert == NULL) {
        wk_reply_json_error(q, 503, "certificate issuing disabled: set VTN_CA_DIR");
        return 0;
    }
    return 1;
}

static void cert_issue(wk_req *q, void *st)
{
    issue_state *c = st;
    wk_worker *w = q->w;
    char k[VTN_KEY_MAX], err[512];
    switch (c->stage) {
    case ISSUE_START: {
        if (!ca_ready(q))
            return;
        if (!wk__api_json_ctype(q->env.content_type)) {
            wk_reply_json_error(q, 415, "Content-Type must be application/json");
            return;
        }
        if (wk_cert_parse_issue(q->env.body.p, q->env.body.n, &c->req, err, sizeof err) < 0) {
            wk_reply_json_error(q, 400, "%s", err);
            return;
        }
        c->memo = wk_cmd(q, "GET", wk_key_certreq(k, q->rid), NULL);
        c->ven = wk_cmd(q, "HMGET", wk_key_ven(k, c->req.ven), "ct", "n", NULL);
        if (c->memo < 0 || c->ven < 0)
            wk_reply_no_room(q);
        c->stage = ISSUE_SIGN;
        return;
    }
    case ISSUE_SIGN: {
        const redisReply *memo = wk_rep(q, c->memo);
        if (memo && memo->type == REDIS_REPLY_STRING) {
            /* A retry: the first attempt signed already. */
            if (adopt_memo(q, c, memo) < 0) {
                wk_reply_internal(q, "unreadable certificate request memo");
                return;
            }
            queue_record(q, c);
            return;
        }
        char ct[32], name[WK_NAME_MAX + 1];
        if (!wk_rep_elem(wk_rep(q, c->ven), 0, ct, sizeof ct)) {
            wk_reply_json_error(q, 404, "no VEN with venID %s", c->req.ven);
            return;
        }
        wk_rep_elem(wk_rep(q, c->ven), 1, name, sizeof name);
        const char *cn = c->req.cn[0] ? c->req.cn : name[0] ? name : c->req.ven;
        if (!wk_cert_cn_valid(cn, strlen(cn))) {
            wk_reply_json_error(q, 400,
                                "the %s of venID %s cannot be a commonName (more than %d "
                                "characters or control characters): give commonName",
                                name[0] ? "venName" : "venID", c->req.ven, WK_CN_MAX);
            return;
        }
        snprintf(c->cn, sizeof c->cn, "%s", cn);
        snprintf(c->ca, sizeof c->ca, "%s", w->ca->id);
        c->stage = ISSUE_SIGNED;
        if (wk_slow_run(q, issue_sign) < 0)
            wk_reply_unavailable(q, "certificate signing queue full, retry later");
        return;
    }
    case ISSUE_SIGNED: {
        if (c->sign_rc == -ESTALE) {
            wk_reply_json_error(q, 503, "%s", c->err);
            return;
        }
        if (c->sign_rc < 0) {
            wk_reply_internal(q, c->err);
            return;
        }
        c->generated = c->req.key_type != 0;
        c->ia_ms = vtn_now_ms();
        vtn_info("cert_signed", "req=%s ven=%s serial=%s key=%s generated=%d us=%llu", q->rid,
                 c->req.ven, c->iss.serial, key_type_name(c->iss.key_type), c->generated,
                 (unsigned long long)c->sign_us);
        char *memo = memo_json(c);
        if (memo == NULL) {
            wk_reply_internal(q, "out of memory");
            return;
        }
        /* Claim the request id: if another attempt of this request got here first, its
         * certificate wins and ours is dropped unused (never recorded or bound). */
        char ttl[16];
        snprintf(ttl, sizeof ttl, "%d", VTN_TTL_MEMO_S);
        int bad = wk_cmd(q, "SET", wk_key_certreq(k, q->rid), memo, "NX", "EX", ttl, NULL) < 0;
        bad |= (c->claimed = wk_cmd(q, "GET", k, NULL)) < 0;
        free(memo);
        if (bad)
            wk_reply_no_room(q);
        c->stage = ISSUE_MEMO;
        return;
    }
    case ISSUE_MEMO: {
        int ours = adopt_memo(q, c, wk_rep(q, c->claimed));
        if (ours < 0) {
            wk_reply_internal(q, "unreadable certificate request memo");
            return;
        }
        if (ours)
            atomic_fetch_add_explicit(&w->m.certs_issued, 1, memory_order_relaxed);
        queue_record(q, c);
        return;
    }
    case ISSUE_RECORDED: {
        char got[WK_ID_MAX + 1], k2[VTN_KEY_MAX];
        if (!wk_rep_str(wk_rep(q, c->fp_claim), got, sizeof got) || strcmp(got, c->req.ven) != 0) {
            /* 80 bits of a fresh certificate's hash matching another's: not in practice. */
            wk_reply_internal(q, "the new fingerprint is indexed for another VEN");
            return;
        }
        c->bind = wk_eval(q, WK_SCRIPT_CERTBIND, 2, wk_key_ven(k, c->req.ven),
                          wk_key_venreq(k2, c->req.ven, q->rid), c->iss.fp, NULL);
        if (c->bind < 0)
            wk_reply_no_room(q);
        c->stage = ISSUE_BOUND;
        return;
    }
    case ISSUE_BOUND: {
        json_t *a = wk_script_outcome(q, wk_rep(q, c->bind));
        if (a == NULL)
            return;
        const char *kind = json_string_value(json_array_get(a, 0));
        const char *old = json_string_value(json_array_get(a, 1));
        int rc = 0;
        c->stage = ISSUE_DONE;
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
        if (rc < 0)
            wk_reply_no_room(q);
        else if (q->ncmds == 0)
            issue_finish(q, c);
        return;
    }
    case ISSUE_DONE:
        issue_finish(q, c);
        return;
    }
}

/* ---- GET /api/v1/certificates ---- */

enum clist_stage { CLIST_START = 0, CLIST_PAGE, CLIST_RECORDS };

typedef struct clist_state {
    enum clist_stage stage;
    char cursor[WK_SERIAL_MAX + 1];
    char ven[WK_ID_MAX + 1];
    wk__api_pager pg;
} clist_state;

static void clist_fini(void *st)
{
    wk__api_pager_fini(&((clist_state *)st)->pg);
}

/* Listed, record gone: skipped like a dangling VEN. */
static json_t *clist_item(void *ud, const char *serial, const redisReply *h)
{
    (void)ud;
    cert_info ci;
    cert_bufs b;
    return cert_from_hash(serial, h, &ci, &b) < 0 ? NULL : cert_json(&ci);
}

static void cert_list(wk_req *q, void *st)
{
    clist_state *c = st;
    char k[VTN_KEY_MAX], err[512];
    switch (c->stage) {
    case CLIST_START: {
        if (!ca_ready(q))
            return;
        if (wk_cert_parse_list_query(q->query.p, q->query.n, &c->pg.limit, c->cursor,
                                     sizeof c->cursor, c->ven, sizeof c->ven, err,
                                     sizeof err) < 0) {
            wk_reply_json_error(q, 400, "%s", err);
            return;
        }
        const char *key = c->ven[0] ? wk_key_vencerts(k, c->ven) : VTN_KEY_CERTS;
        if ((c->pg.page = wk__api_page_cmd(q, key, c->cursor, c->pg.limit)) < 0)
            wk_reply_no_room(q);
        c->stage = CLIST_PAGE;
        return;
    }
    case CLIST_PAGE:
        c->stage = CLIST_RECORDS;
        wk__api_pager_fetch(q, &c->pg, "certificates", VTN_KEY_CERT);
        return;
    case CLIST_RECORDS:
        wk__api_pager_answer(q, &c->pg, "certificates", clist_item, c);
        return;
    }
}

/* The serial of the path, normalised; 0 after answering 404. */
static int path_serial(wk_req *q, char *serial, size_t len)
{
    if (wk_cert_serial_norm(q->path_id, strlen(q->path_id), serial, len) < 0) {
        char shown[80];
        wk_reply_json_error(q, 404, "no certificate with serial %s (serials are hex)",
                            vtn_log_quote(shown, sizeof shown, q->path_id, strlen(q->path_id)));
        return 0;
    }
    return 1;
}

/* ---- GET /api/v1/certificates/{serial} ---- */

typedef struct cget_state {
    int asked;
    char serial[WK_SERIAL_MAX + 1];
    wk_rh rec;
} cget_state;

static void cert_get(wk_req *q, void *st)
{
    cget_state *c = st;
    char k[VTN_KEY_MAX];
    if (!c->asked) {
        if (!ca_ready(q) || !path_serial(q, c->serial, sizeof c->serial))
            return;
        c->asked = 1;
        if ((c->rec = wk_cmd(q, "HGETALL", wk_key_cert(k, c->serial), NULL)) < 0)
            wk_reply_no_room(q);
        return;
    }
    json_t *o = stored_cert_json(q, c->serial, wk_rep(q, c->rec));
    if (o)
        wk_reply_json(q, 200, o);
}

/* ---- POST /api/v1/certificates/{serial}/revoke ---- */

enum revoke_stage { REVOKE_START = 0, REVOKE_MARKED, REVOKE_UNBOUND, REVOKE_DONE };

typedef struct revoke_state {
    enum revoke_stage stage;
    char serial[WK_SERIAL_MAX + 1];
    char ven[WK_ID_MAX + 1];
    int reason;
    int revoked_now;
    wk_rh outcome, rec; /* the revoke script, the record after it */
    wk_rh unbind;       /* the unbind script (0: no fingerprint to unbind) */
} revoke_state;

static void cert_revoke(wk_req *q, void *st)
{
    revoke_state *c = st;
    char k[VTN_KEY_MAX], err[512];
    switch (c->stage) {
    case REVOKE_START: {
        if (!ca_ready(q) || !path_serial(q, c->serial, sizeof c->serial))
            return;
        if (q->env.body.n && !wk__api_json_ctype(q->env.content_type)) {
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
        c->outcome =
            wk_eval(q, WK_SCRIPT_CERTREVOKE, 1, wk_key_cert(k, c->serial), now, reason, NULL);
        c->rec = wk_cmd(q, "HGETALL", k, NULL);
        if (c->outcome < 0 || c->rec < 0)
            wk_reply_no_room(q);
        c->stage = REVOKE_MARKED;
        return;
    }
    case REVOKE_MARKED: {
        char res[8];
        wk_rep_str(wk_rep(q, c->outcome), res, sizeof res);
        cert_info ci;
        cert_bufs b;
        if (strcmp(res, "404") == 0 || cert_from_hash(c->serial, wk_rep(q, c->rec), &ci, &b) < 0) {
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
        int bad = wk_cmd(q, "ZADD", wk_key_ca_revoked(k, b.ca[0] ? b.ca : q->w->ca->id), score,
                         member, NULL) < 0;
        if (b.fp[0]) {
            snprintf(exat, sizeof exat, "%lld", (long long)(ci.na / 1000 + VTN_TTL_AFTER_EXPIRY_S));
            bad |= wk_cmd(q, "SET", wk_key_revokedfp(k, b.fp), c->serial, "EXAT", exat, NULL) < 0;
            /* record first, then the index (docs/redis-keys.md, "Write order") */
            bad |= (c->unbind =
                        wk_eval(q, WK_SCRIPT_CERTUNBIND, 1, wk_key_ven(k, b.ven), b.fp, NULL)) < 0;
            bad |= wk_eval(q, WK_SCRIPT_CAD, 1, wk_key_fp(k, b.fp), b.ven, NULL) < 0;
        }
        if (bad)
            wk_reply_no_room(q);
        c->stage = REVOKE_UNBOUND;
        return;
    }
    case REVOKE_UNBOUND: {
        int unbound = wk_rep_int(q, c->unbind, 0) == 1;
        if (c->revoked_now)
            atomic_fetch_add_explicit(&q->w->m.certs_revoked, 1, memory_order_relaxed);
        vtn_info("cert_revoked", "req=%s serial=%s ven=%s now=%d unbound=%d", q->rid, c->serial,
                 c->ven, c->revoked_now, unbound);
        /* Read the record again for the answer: one more round, and the truth. */
        c->stage = REVOKE_DONE;
        c->revoked_now = unbound; /* kept for the answer */
        if ((c->rec = wk_cmd(q, "HGETALL", wk_key_cert(k, c->serial), NULL)) < 0)
            wk_reply_no_room(q);
        return;
    }
    case REVOKE_DONE: {
        json_t *o = stored_cert_json(q, c->serial, wk_rep(q, c->rec));
        if (o == NULL)
            return;
        json_object_set_new(o, "unbound", json_boolean(c->revoked_now));
        wk_reply_json(q, 200, o);
        return;
    }
    }
}

/* ---- GET /api/v1/crl ---- */

enum crl_stage { CRL_START = 0, CRL_READ, CRL_SIGNED };

typedef struct crl_state {
    enum crl_stage stage;
    int days;
    wk_rh list; /* the crl script: [number, members] */
    long long number;
    size_t count;
    vtn_revoked *rv;                    /* owned */
    char (*serials)[WK_SERIAL_MAX + 1]; /* owned: rv[i].serial_hex points here */
    char *pem;                          /* owned: the signed CRL */
    long pem_len;
    char err[256];
} crl_state;

static void crl_fini(void *st)
{
    crl_state *c = st;
    free(c->rv);
    free(c->serials);
    free(c->pem);
}

/* On the slow-work thread: sign and encode the CRL. */
static void crl_sign(wk_req *q, void *st)
{
    crl_state *c = st;
    wk_worker *w = q->w;
    X509_CRL *crl = vtn_pki_crl(w->ca->cert, w->ca->key, c->rv, c->count, c->number, c->days,
                                c->err, sizeof c->err);
    if (crl == NULL)
        return;
    BIO *b = BIO_new(BIO_s_mem());
    char *data = NULL;
    long len = b && PEM_write_bio_X509_CRL(b, crl) ? BIO_get_mem_data(b, &data) : 0;
    if (len > 0 && (c->pem = malloc((size_t)len)) != NULL) {
        memcpy(c->pem, data, (size_t)len);
        c->pem_len = len;
    } else {
        snprintf(c->err, sizeof c->err, "PEM encoding of the CRL failed");
    }
    BIO_free(b);
    X509_CRL_free(crl);
}

static void cert_crl(wk_req *q, void *st)
{
    crl_state *c = st;
    wk_worker *w = q->w;
    char k1[VTN_KEY_MAX], k2[VTN_KEY_MAX], err[512];
    switch (c->stage) {
    case CRL_START: {
        if (!ca_ready(q))
            return;
        if (wk_cert_parse_crl_query(q->query.p, q->query.n, &c->days, err, sizeof err) < 0) {
            wk_reply_json_error(q, 400, "%s", err);
            return;
        }
        char now[24], max[16];
        snprintf(now, sizeof now, "%lld", (long long)time(NULL));
        snprintf(max, sizeof max, "%d", WK_CRL_MAX);
        c->list = wk_eval(q, WK_SCRIPT_CRL, 2, wk_key_ca_revoked(k1, w->ca->id),
                          wk_key_ca_crlnumber(k2, w->ca->id), now, max, NULL);
        if (c->list < 0)
            wk_reply_no_room(q);
        c->stage = CRL_READ;
        return;
    }
    case CRL_READ: {
        const redisReply *r = wk_rep(q, c->list);
        if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
            r->element[0]->type != REDIS_REPLY_INTEGER ||
            r->element[1]->type != REDIS_REPLY_ARRAY) {
            wk_reply_internal(q, "unexpected crl script reply");
            return;
        }
        const redisReply *m = r->element[1];
        if (m->elements > WK_CRL_MAX) {
            wk_reply_json_error(q, 500,
                                "more than %d unexpired revoked certificates: the CRL would "
                                "exceed the reply limit",
                                WK_CRL_MAX);
            return;
        }
        /* Copied out of the reply: it is freed before the thread signs. */
        c->rv = calloc(m->elements ? m->elements : 1, sizeof *c->rv);
        c->serials = calloc(m->elements ? m->elements : 1, sizeof *c->serials);
        if (c->rv == NULL || c->serials == NULL) {
            wk_reply_internal(q, "out of memory");
            return;
        }
        for (size_t i = 0; i < m->elements; i++) {
            char mem[WK_SERIAL_MAX + 48];
            int reason;
            long long when;
            /* "<serial>:<reason>:<revoked at, s>"; anything else is skipped, not fatal */
            if (!wk_rep_str(m->element[i], mem, sizeof mem) ||
                sscanf(mem, "%40[0-9A-F]:%d:%lld", c->serials[c->count], &reason, &when) != 3)
                continue;
            c->rv[c->count].serial_hex = c->serials[c->count];
            c->rv[c->count].reason = reason;
            c->rv[c->count].when = (time_t)when;
            c->count++;
        }
        c->number = r->element[0]->integer;
        c->stage = CRL_SIGNED;
        if (wk_slow_run(q, crl_sign) < 0)
            wk_reply_unavailable(q, "certificate signing queue full, retry later");
        return;
    }
    case CRL_SIGNED:
        if (c->pem == NULL) {
            wk_reply_internal(q, c->err);
            return;
        }
        wk_reply(q, 200, PEM_CTYPE, c->pem, (size_t)c->pem_len);
        atomic_fetch_add_explicit(&w->m.crls_signed, 1, memory_order_relaxed);
        vtn_info("crl_signed", "req=%s number=%lld revoked=%zu days=%d", q->rid, c->number,
                 c->count, c->days);
        return;
    }
}

const wk_handler wk__api_cert_issue =
    WK_HANDLER("api.certificates.issue", issue_state, NULL, issue_fini, cert_issue);
const wk_handler wk__api_cert_list =
    WK_HANDLER("api.certificates.list", clist_state, NULL, clist_fini, cert_list);
const wk_handler wk__api_cert_get =
    WK_HANDLER("api.certificates.get", cget_state, NULL, NULL, cert_get);
const wk_handler wk__api_cert_revoke =
    WK_HANDLER("api.certificates.revoke", revoke_state, NULL, NULL, cert_revoke);
const wk_handler wk__api_crl = WK_HANDLER("api.crl", crl_state, NULL, crl_fini, cert_crl);

int wk_api_init(wk_worker *w, char *err, size_t errlen)
{
    if (!w->cfg.ca_dir || !w->cfg.ca_dir[0])
        return 0;
    /* At start, not per request: a missing or broken CA is a deployment error that
     * should stop the rollout, and the key is parsed once. */
    wk_ca *ca = calloc(1, sizeof *ca);
    if (ca == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    w->ca = ca;
    if (wk_ca_load(ca, w->cfg.ca_dir, err, errlen) < 0)
        return -EINVAL;
    char subj[256] = "", shown[300], until[40];
    X509_NAME_oneline(X509_get_subject_name(ca->cert), subj, sizeof subj);
    vtn_info("ca_loaded", "dir=%s subject=%s id=%s not_after=%s", w->cfg.ca_dir,
             vtn_log_quote(shown, sizeof shown, subj, strlen(subj)), ca->id,
             vtn_time_format((int64_t)ca->not_after * 1000, until, sizeof until));
    if (ca->not_after <= time(NULL))
        vtn_warn("ca_expired", "dir=%s msg=\"certificate issuing will answer 503\"", w->cfg.ca_dir);
    return 0;
}

void wk_api_free(wk_worker *w)
{
    if (w->ca == NULL)
        return;
    wk_ca_free(w->ca);
    free(w->ca);
    w->ca = NULL;
}
