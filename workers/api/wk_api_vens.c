/* The management API's /api/v1/vens (docs/openapi.yaml): list, get,
 * provision, delete and reregister VENs. JSON in and out, every error
 * {"error": "..."}; handlers are steps over pipeline rounds with their own
 * state. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "vtn/hex.h"
#include "vtn/log.h"
#include "vtn/time.h"
#include "wk_api_internal.h"
#include "wk_ven.h"

#define API_PREFIX "/api/v1/vens"

static int force_value(const char *key, const char *val, void *out, char *err, size_t errlen)
{
    if (vtn_parse_bool(val, out) < 0) {
        snprintf(err, errlen, "%s must be true or false", key);
        return -EINVAL;
    }
    return 0;
}

int wk_api_parse_delete_query(const char *q, size_t n, int *force, char *err, size_t errlen)
{
    *force = 0;
    return wk__api_parse_single(q, n, "force", force_value, force, err, errlen);
}

struct provision_body {
    char *name, *fp;
    size_t namelen, fplen;
};

static int provision_field(void *ud, int i, json_t *v, char *err, size_t errlen)
{
    struct provision_body *p = ud;
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (i == 0) { /* venName */
        if (s == NULL || !wk_ven_name_valid(s, n) || n >= p->namelen) {
            snprintf(err, errlen,
                     "venName must be a string of 1 to %d bytes without control characters",
                     WK_NAME_MAX);
            return -EINVAL;
        }
        memcpy(p->name, s, n + 1);
        return 0;
    }
    if (s == NULL || wk_fp_normalize(s, n, p->fp, p->fplen) < 0) { /* fingerprint */
        snprintf(err, errlen,
                 "fingerprint must be the 10-byte OpenADR fingerprint (e.g. "
                 "09:71:9E:0E:51:C0:8F:05:56:C9) or a full SHA-256 fingerprint, in hex");
        return -EINVAL;
    }
    return 0;
}

int wk_api_parse_provision(const char *body, size_t n, char *name, size_t namelen, char *fp,
                           size_t fplen, char *err, size_t errlen)
{
    static const char *const names[] = {"venName", "fingerprint", NULL};
    struct provision_body p = {name, fp, namelen, fplen};
    name[0] = fp[0] = '\0';
    if (n == 0) {
        snprintf(err, errlen, "a JSON object with venName and/or fingerprint is required");
        return -EINVAL;
    }
    json_t *o = wk__api_json_object(body, n, "body must be a JSON object", err, errlen);
    if (o == NULL)
        return -EINVAL;
    int rc = wk__api_json_fields(o, names, provision_field, &p, err, errlen);
    json_decref(o);
    if (rc == 0 && !name[0] && !fp[0]) {
        snprintf(err, errlen, "give venName and/or fingerprint");
        rc = -EINVAL;
    }
    return rc;
}

/* ---- rendering ---- */

static json_t *jstr_or_null(const redisReply *v)
{
    if (v == NULL || v->type != REDIS_REPLY_STRING || v->len == 0)
        return json_null();
    json_t *s = json_stringn(v->str, (size_t)v->len);
    return s ? s : json_null();
}

static int is_one(const redisReply *v)
{
    return v && v->type == REDIS_REPLY_STRING && v->len == 1 && v->str[0] == '1';
}

static json_t *jtime_or_null(const redisReply *v)
{
    if (v == NULL || v->type != REDIS_REPLY_STRING)
        return json_null();
    char buf[40], ts[40];
    snprintf(buf, sizeof buf, "%.*s", (int)v->len, v->str);
    return json_string(vtn_time_format(strtoll(buf, NULL, 10), ts, sizeof ts));
}

/* Push mode: the "pu" field ("<ms> <attempts> <reason>", written when a
 * gateway gave up delivering) as {"since", "attempts", "error"}, or null. */
static json_t *push_undelivered_json(const redisReply *v)
{
    if (v == NULL || v->type != REDIS_REPLY_STRING || v->len == 0)
        return json_null();
    char buf[600], ts[40];
    long long ms = 0, attempts = 0;
    int off = 0;
    snprintf(buf, sizeof buf, "%.*s", (int)v->len, v->str);
    if (sscanf(buf, "%lld %lld %n", &ms, &attempts, &off) < 2)
        return json_null();
    return json_pack("{s:s, s:I, s:s}", "since", vtn_time_format(ms, ts, sizeof ts), "attempts",
                     (json_int_t)attempts, "error", buf + off);
}

/* ---- what a VEN record says ---- */

long long wk__api_ven_last_poll(wk_req *q, const redisReply *h, long long *freq)
{
    const redisReply *v = wk_hfield(h, VTN_F_VEN_LAST_POLL);
    long long ms = 0, f = 0;
    if (v && v->type == REDIS_REPLY_STRING)
        wk_last_poll_parse(v->str, (size_t)v->len, &ms, &f);
    *freq = f > 0 ? f : q->w->cfg.poll_freq_ms;
    return ms;
}

int wk__api_ven_online(wk_req *q, const redisReply *h, int64_t now)
{
    long long freq, lp = wk__api_ven_last_poll(q, h, &freq);
    const redisReply *r = wk_hfield(h, VTN_F_VEN_REG);
    return r && r->len > 0 && lp > 0 && now < lp + 2 * freq;
}

int wk__api_overdue_count(const redisReply *vals, int64_t now)
{
    int n = 0;
    for (size_t i = 0; vals && vals->type == REDIS_REPLY_ARRAY && i < vals->elements; i++) {
        const redisReply *v = vals->element[i];
        json_t *rec = v->type == REDIS_REPLY_STRING ? json_loadb(v->str, v->len, 0, NULL) : NULL;
        const char *st = json_is_object(rec) ? wk_report_request_state(rec, now) : NULL;
        n += st && strcmp(st, "overdue") == 0;
        json_decref(rec);
    }
    return n;
}

json_t *wk__api_ven_json(wk_req *q, const char *ven, const redisReply *h, long long queued,
                         int64_t now)
{
    const redisReply *r = wk__api_hfield(h, "r"), *st = wk__api_hfield(h, "st"),
                     *fp = wk__api_hfield(h, "fp");
    int registered = r && r->type == REDIS_REPLY_STRING && r->len > 0;
    int cancelling = st && st->type == REDIS_REPLY_STRING && st->len == 1 && st->str[0] == 'c';
    json_t *fpj = json_null();
    if (fp && fp->type == REDIS_REPLY_STRING && fp->len > 0 && fp->len <= WK_FP_MAX) {
        char raw[WK_FP_MAX + 1], pretty[WK_FP_MAX * 3 / 2 + 2];
        memcpy(raw, fp->str, (size_t)fp->len);
        raw[fp->len] = '\0';
        wk_fp_pretty(raw, pretty, sizeof pretty);
        fpj = json_string(pretty);
    }
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    json_object_set_new(o, "venID", json_string(ven));
    json_object_set_new(o, "venName", jstr_or_null(wk__api_hfield(h, "n")));
    json_object_set_new(o, "fingerprint", fpj ? fpj : json_null());
    json_object_set_new(o, "provisioned", json_boolean(is_one(wk__api_hfield(h, "pv"))));
    json_object_set_new(o, "state",
                        json_string(cancelling   ? "cancelling"
                                    : registered ? "registered"
                                                 : "unregistered"));
    json_object_set_new(o, "registrationID", jstr_or_null(r));
    json_object_set_new(
        o, "httpPullModel",
        registered ? json_boolean(!wk__api_hfield(h, "pl") || is_one(wk__api_hfield(h, "pl")))
                   : json_null());
    json_object_set_new(o, "transportAddress", jstr_or_null(wk__api_hfield(h, "ta")));
    json_object_set_new(o, "reportOnly",
                        registered ? json_boolean(is_one(wk__api_hfield(h, "ro"))) : json_null());
    json_object_set_new(o, "xmlSignature",
                        registered ? json_boolean(is_one(wk__api_hfield(h, "xs"))) : json_null());
    json_object_set_new(o, "createdAt", jtime_or_null(wk__api_hfield(h, "ct")));
    json_object_set_new(o, "registeredAt",
                        registered ? jtime_or_null(wk__api_hfield(h, "rt")) : json_null());
    json_object_set_new(o, "reregistrationPending", json_boolean(is_one(wk__api_hfield(h, "rq"))));
    json_object_set_new(o, "pushUndelivered", push_undelivered_json(wk__api_hfield(h, "pu")));
    long long freq, lp = wk__api_ven_last_poll(q, h, &freq);
    char ts[40];
    json_object_set_new(o, "lastPoll",
                        lp > 0 ? json_string(vtn_time_format(lp, ts, sizeof ts)) : json_null());
    json_object_set_new(o, "pollFreqSeconds",
                        registered ? json_real((double)freq / 1000.0) : json_null());
    json_object_set_new(o, "online", json_boolean(wk__api_ven_online(q, h, now)));
    if (queued >= 0) {
        json_object_set_new(o, "queuedMessages", json_integer(queued));
        json_object_set_new(o, "queued", json_integer(queued));
    }
    return o;
}

static void reply_ven(wk_req *q, int status, const char *ven, const redisReply *h, long long queued)
{
    json_t *o = wk__api_ven_json(q, ven, h, queued, vtn_now_ms());
    if (o)
        json_object_set_new(o, "reportsOverdue", json_integer(0)); /* a new record has none */
    if (o == NULL) {
        wk_reply_internal(q, "out of memory");
        return;
    }
    wk_reply_json(q, status, o);
}

/* ---- GET /api/v1/vens/{venID} ---- */

typedef struct get_state {
    int asked;
    wk_rh rec, qlen, targets, requests;
} get_state;

static void api_get(wk_req *q, void *st)
{
    get_state *s = st;
    const char *ven = q->path_id;
    char k[VTN_KEY_MAX];
    if (!s->asked) {
        s->asked = 1;
        s->rec = wk_cmd(q, "HGETALL", wk_key_ven(k, ven), NULL);
        s->qlen = wk_cmd(q, "LLEN", wk_key_venq(k, ven), NULL);
        /* What events target it by. */
        s->targets = wk_cmd(q, "SMEMBERS", vtn_key_build(k, VTN_KEY_VENTARGETS, ven, NULL), NULL);
        s->requests = wk_cmd(q, "HVALS", wk_key_venrr(k, ven), NULL); /* reportsOverdue */
        if (s->rec < 0 || s->qlen < 0 || s->targets < 0 || s->requests < 0)
            wk_reply_no_room(q);
        return;
    }
    if (wk_hash_empty(wk_rep(q, s->rec))) {
        wk_reply_json_error(q, 404, "no VEN with venID %s", ven);
        return;
    }
    int64_t now = vtn_now_ms();
    json_t *o = wk__api_ven_json(q, ven, wk_rep(q, s->rec), wk_rep_int(q, s->qlen, 0), now);
    json_t *t = wk__api_ven_targets(wk_rep(q, s->targets));
    if (o)
        json_object_set_new(o, "reportsOverdue",
                            json_integer(wk__api_overdue_count(wk_rep(q, s->requests), now)));
    if (o == NULL || t == NULL) {
        json_decref(o);
        json_decref(t);
        wk_reply_internal(q, "out of memory");
        return;
    }
    json_object_set_new(o, "targets", t);
    wk_reply_json(q, 200, o);
}

/* ---- POST /api/v1/vens ---- */

enum provision_stage {
    PROV_START = 0, /* the request's earlier claim, the indexes of name and fingerprint */
    PROV_OWNERS,    /* -> liveness of their owners */
    PROV_IDS,       /* -> claim the new venID under the request id */
    PROV_CLAIMS,    /* -> claim the indexes */
    PROV_RECORD,    /* -> write the record (commit point) and read it back */
    PROV_DONE,
};

typedef struct provision_state {
    enum provision_stage stage;
    char ven[WK_ID_MAX + 1];
    char new_ven[VTN_ID_MAX];
    char name[WK_NAME_MAX + 1];
    char fp[WK_FP_MAX + 1];
    char fp_owner[WK_ID_MAX + 1];
    char name_owner[WK_ID_MAX + 1];
    int fp_owner_dangling, name_owner_dangling;
    wk_rh prior, name_idx, fp_idx, revoked; /* PROV_START's lookups */
    wk_rh name_alive, fp_alive;
    wk_rh ids;
    wk_rh name_claim, fp_claim;
    wk_rh rec; /* HGETALL after the provision script */
} provision_state;

/* "<venID> ..." from vtn:req:<rid> into s->new_ven; 1 when read. */
static int read_claim(const redisReply *r, provision_state *s)
{
    char claim[2 * VTN_ID_MAX + 2], v[VTN_ID_MAX];
    if (!wk_rep_str(r, claim, sizeof claim) || sscanf(claim, "%47s", v) != 1)
        return 0;
    snprintf(s->new_ven, sizeof s->new_ven, "%s", v);
    return 1;
}

/* Same write order as a registration (docs/redis-keys.md): ids claimed under
 * the request id, then the indexes, then the record. */
static void api_provision(wk_req *q, void *st)
{
    provision_state *s = st;
    char k[VTN_KEY_MAX], err[512];
    switch (s->stage) {
    case PROV_START: {
        if (!wk__api_json_ctype(q->env.content_type)) {
            wk_reply_json_error(q, 415, "Content-Type must be application/json");
            return;
        }
        if (wk_api_parse_provision(q->env.body.p, q->env.body.n, s->name, sizeof s->name, s->fp,
                                   sizeof s->fp, err, sizeof err) < 0) {
            wk_reply_json_error(q, 400, "%s", err);
            return;
        }
        int bad = (s->prior = wk_cmd(q, "GET", wk_key_req(k, q->rid), NULL)) < 0;
        if (s->name[0])
            bad |= (s->name_idx = wk_ven_lookup(q, WK_VEN_BY_NAME, s->name)) < 0;
        if (s->fp[0]) {
            bad |= (s->fp_idx = wk_ven_lookup(q, WK_VEN_BY_FP, s->fp)) < 0;
            bad |= (s->revoked = wk_cmd(q, "GET", wk_key_revokedfp(k, s->fp), NULL)) < 0;
        }
        if (bad)
            wk_reply_no_room(q);
        s->stage = PROV_OWNERS;
        return;
    }
    case PROV_OWNERS: {
        char serial[WK_SERIAL_MAX + 1];
        if (wk_rep_str(wk_rep(q, s->revoked), serial, sizeof serial)) {
            char pretty[WK_FP_MAX * 3 / 2 + 2];
            wk_fp_pretty(s->fp, pretty, sizeof pretty);
            wk_reply_json_error(q, 409,
                                "fingerprint %s belongs to certificate %s, which is revoked",
                                pretty, serial);
            return;
        }
        if (!read_claim(wk_rep(q, s->prior), s) &&
            vtn_id_new("ven", s->new_ven, sizeof s->new_ven) < 0) {
            wk_reply_internal(q, "no randomness for ids");
            return;
        }
        snprintf(s->ven, sizeof s->ven, "%s", s->new_ven);
        wk_ven_found(q, s->name_idx, s->name_owner, sizeof s->name_owner);
        wk_ven_found(q, s->fp_idx, s->fp_owner, sizeof s->fp_owner);
        /* EXISTS of each owner that is not us (us = a retry of this request). Always one
         * command so the next step has a round to run in. */
        int bad = wk_cmd(q, "EXISTS", wk_key_ven(k, s->ven), NULL) < 0;
        bad |= (s->name_alive = wk_ven_owner_exists(q, s->name_owner, s->ven)) < 0;
        bad |= (s->fp_alive = wk_ven_owner_exists(q, s->fp_owner, s->ven)) < 0;
        if (bad)
            wk_reply_no_room(q);
        s->stage = PROV_IDS;
        return;
    }
    case PROV_IDS: {
        s->name_owner_dangling = s->name_alive && wk_rep_int(q, s->name_alive, 1) == 0;
        s->fp_owner_dangling = s->fp_alive && wk_rep_int(q, s->fp_alive, 1) == 0;
        if (s->name_alive && !s->name_owner_dangling) {
            wk_reply_json_error(q, 409, "venName '%s' already belongs to venID %s", s->name,
                                s->name_owner);
            return;
        }
        if (s->fp_alive && !s->fp_owner_dangling) {
            char pretty[WK_FP_MAX * 3 / 2 + 2];
            wk_fp_pretty(s->fp, pretty, sizeof pretty);
            wk_reply_json_error(q, 409, "fingerprint %s already belongs to venID %s", pretty,
                                s->fp_owner);
            return;
        }
        char v[VTN_ID_MAX + 4], ttl[16];
        snprintf(v, sizeof v, "%s -", s->new_ven);
        snprintf(ttl, sizeof ttl, "%d", VTN_TTL_MEMO_S);
        int bad = wk_cmd(q, "SET", wk_key_req(k, q->rid), v, "NX", "EX", ttl, NULL) < 0;
        bad |= (s->ids = wk_cmd(q, "GET", k, NULL)) < 0;
        if (bad)
            wk_reply_no_room(q);
        s->stage = PROV_CLAIMS;
        return;
    }
    case PROV_CLAIMS: {
        if (!read_claim(wk_rep(q, s->ids), s)) {
            wk_reply_internal(q, "request id claim unreadable");
            return;
        }
        snprintf(s->ven, sizeof s->ven, "%s", s->new_ven);
        int bad = wk_cmd(q, "ZADD", VTN_KEY_VENS, "0", s->ven, NULL) < 0;
        if (s->name[0])
            bad |= (s->name_claim = wk_eval(q, WK_SCRIPT_CLAIM, 1, wk_key_name(k, s->name), s->ven,
                                            s->name_owner_dangling ? s->name_owner : "", NULL)) < 0;
        if (s->fp[0])
            bad |= (s->fp_claim = wk_eval(q, WK_SCRIPT_CLAIM, 1, wk_key_fp(k, s->fp), s->ven,
                                          s->fp_owner_dangling ? s->fp_owner : "", NULL)) < 0;
        if (bad)
            wk_reply_no_room(q);
        s->stage = PROV_RECORD;
        return;
    }
    case PROV_RECORD: {
        char got[WK_ID_MAX + 1] = "", now[24];
        if (s->name_claim &&
            (!wk_rep_str(wk_rep(q, s->name_claim), got, sizeof got) || strcmp(got, s->ven))) {
            wk_reply_json_error(q, 409, "venName '%s' was just taken by venID %s", s->name, got);
            return;
        }
        if (s->fp_claim &&
            (!wk_rep_str(wk_rep(q, s->fp_claim), got, sizeof got) || strcmp(got, s->ven))) {
            wk_reply_json_error(q, 409, "fingerprint was just bound to venID %s", got);
            return;
        }
        snprintf(now, sizeof now, "%lld", (long long)vtn_now_ms());
        int bad = wk_eval(q, WK_SCRIPT_PROVISION, 1, wk_key_ven(k, s->ven), s->name, s->fp, now,
                          NULL) < 0;
        bad |= (s->rec = wk_cmd(q, "HGETALL", k, NULL)) < 0;
        if (bad)
            wk_reply_no_room(q);
        s->stage = PROV_DONE;
        return;
    }
    case PROV_DONE:
        vtn_info("ven_provisioned", "req=%s ven=%s", q->rid, s->ven);
        snprintf(q->headers, sizeof q->headers, "Location: " API_PREFIX "/%s\r\n", s->ven);
        reply_ven(q, 201, s->ven, wk_rep(q, s->rec), 0);
        return;
    }
}

/* ---- DELETE /api/v1/vens/{venID} ---- */

/* The requestID of a message queued for the VEN (cancel, reregistration):
 * 0, or -EIO after answering 500. */
static int entry_id(wk_req *q, char rid[VTN_ID_MAX])
{
    if (vtn_id_new("req", rid, VTN_ID_MAX) < 0) {
        wk_reply_internal(q, "no randomness for ids");
        return -EIO;
    }
    return 0;
}

enum delete_stage { DEL_START = 0, DEL_SCRIPT, DEL_CLEANED };

typedef struct delete_state {
    enum delete_stage stage;
    int force;
    wk_rh outcome;
} delete_state;

static void api_delete(wk_req *q, void *st)
{
    delete_state *s = st;
    const char *ven = q->path_id;
    char k1[VTN_KEY_MAX], k2[VTN_KEY_MAX], k3[VTN_KEY_MAX], k4[VTN_KEY_MAX], k5[VTN_KEY_MAX],
        err[512];
    switch (s->stage) {
    case DEL_START: {
        if (wk_api_parse_delete_query(q->query.p, q->query.n, &s->force, err, sizeof err) < 0) {
            wk_reply_json_error(q, 400, "%s", err);
            return;
        }
        char rid[VTN_ID_MAX];
        if (entry_id(q, rid) < 0)
            return;
        s->stage = DEL_SCRIPT;
        s->outcome = wk_eval(q, WK_SCRIPT_APIDELETE, 6, wk_key_ven(k1, ven), wk_key_venq(k2, ven),
                             wk_key_venpm(k3, ven), wk_key_venreq(k4, ven, q->rid),
                             vtn_key_build(k5, VTN_KEY_VENTARGETS, ven, NULL), VTN_KEY_EVENTSVER,
                             s->force ? "1" : "0", rid, ven, NULL);
        if (s->outcome < 0)
            wk_reply_no_room(q);
        return;
    }
    case DEL_SCRIPT: {
        json_t *a = wk_script_outcome(q, wk_rep(q, s->outcome));
        if (a == NULL)
            return;
        const char *kind = json_string_value(json_array_get(a, 0));
        const char *name = json_string_value(json_array_get(a, 1));
        const char *fp = json_string_value(json_array_get(a, 2));
        const char *reg = json_string_value(json_array_get(a, 3));
        if (strcmp(kind, "404") == 0) {
            wk_reply_json_error(q, 404, "no VEN with venID %s", ven);
        } else if (strcmp(kind, "409") == 0) {
            wk_reply_json_error(q, 409,
                                "the message queue of venID %s is full (%d); retry after the VEN "
                                "polled, or use ?force=true",
                                ven, VTN_QUEUE_MAX);
        } else if (strcmp(kind, "202") == 0) {
            vtn_info("ven_cancel_queued", "req=%s ven=%s reg=%s", q->rid, ven, reg ? reg : "");
            wk_reply_json(q, 202,
                          json_pack("{s:s,s:s,s:s?,s:s}", "venID", ven, "state", "cancelling",
                                    "registrationID", reg, "message",
                                    "oadrCancelPartyRegistration queued for the VEN's next poll; "
                                    "the record is deleted when the VEN answers with "
                                    "oadrCanceledPartyRegistration (DELETE ?force=true deletes "
                                    "it now)"));
        } else {
            s->stage = DEL_CLEANED;
            vtn_info("ven_deleted", "req=%s ven=%s forced=%d", q->rid, ven, s->force);
            if (wk_ven_index_cleanup(q, ven, name ? name : "", fp ? fp : "", reg ? reg : "", 1) < 0)
                wk_reply_no_room(q);
        }
        json_decref(a);
        return;
    }
    case DEL_CLEANED:
        wk_reply_json(q, 200, json_pack("{s:s,s:s}", "venID", ven, "state", "deleted"));
        return;
    }
}

/* ---- POST /api/v1/vens/{venID}/reregister ---- */

typedef struct rereg_state {
    int asked;
    wk_rh outcome;
} rereg_state;

static void api_reregister(wk_req *q, void *st)
{
    rereg_state *s = st;
    const char *ven = q->path_id;
    char k1[VTN_KEY_MAX], k2[VTN_KEY_MAX];
    if (!s->asked) {
        char rid[VTN_ID_MAX];
        if (entry_id(q, rid) < 0)
            return;
        s->asked = 1;
        s->outcome =
            wk_eval(q, WK_SCRIPT_REREG, 2, wk_key_ven(k1, ven), wk_key_venq(k2, ven), rid, NULL);
        if (s->outcome < 0)
            wk_reply_no_room(q);
        return;
    }
    char res[16];
    wk_rep_str(wk_rep(q, s->outcome), res, sizeof res);
    if (strcmp(res, "404") == 0)
        wk_reply_json_error(q, 404, "no VEN with venID %s", ven);
    else if (strcmp(res, "409r") == 0)
        wk_reply_json_error(q, 409, "venID %s is not registered", ven);
    else if (strcmp(res, "409c") == 0)
        wk_reply_json_error(q, 409, "the registration of venID %s is being cancelled", ven);
    else if (strcmp(res, "409q") == 0)
        wk_reply_json_error(q, 409, "the message queue of venID %s is full (%d)", ven,
                            VTN_QUEUE_MAX);
    else if (strncmp(res, "202", 3) == 0) {
        int already = res[3] == 'p';
        if (!already)
            vtn_info("ven_reregistration_queued", "req=%s ven=%s", q->rid, ven);
        wk_reply_json(q, 202,
                      json_pack("{s:s,s:s,s:s}", "venID", ven, "status",
                                already ? "already_queued" : "queued", "message",
                                "oadrRequestReregistration is delivered on the VEN's next poll"));
    } else
        wk_reply_internal(q, "unexpected script outcome");
}

const wk_handler wk__api_vens_provision =
    WK_HANDLER("api.vens.provision", provision_state, NULL, NULL, api_provision);
const wk_handler wk__api_vens_get = WK_HANDLER("api.vens.get", get_state, NULL, NULL, api_get);
const wk_handler wk__api_vens_delete =
    WK_HANDLER("api.vens.delete", delete_state, NULL, NULL, api_delete);
const wk_handler wk__api_vens_reregister =
    WK_HANDLER("api.vens.reregister", rereg_state, NULL, NULL, api_reregister);
