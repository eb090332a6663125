/* EiRegisterParty: oadrQueryRegistration, oadrCreatePartyRegistration,
 * oadrCancelPartyRegistration, oadrCanceledPartyRegistration, and the
 * VEN's oadrResponse (e.g. to oadrRequestReregistration).
 *
 * Each handler is a state machine over pipeline rounds (wk_hstate.stage).
 * Registration writes global indexes before the VEN's hash, which is the
 * commit point (docs/redis-keys.md, "Write order"); ids of a new VEN are
 * claimed under the request id first, so a retry on another worker makes
 * the same VEN, never a second one. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vtn/log.h"
#include "vtn/time.h"
#include "wk_internal.h"

enum { SRC_NEW = 0, SRC_REG, SRC_VENID, SRC_FP, SRC_NAME };

static void copy(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src);
}

#define COPY(dst, src) copy(dst, sizeof(dst), src)

static void bad_buffer(wk_req *q)
{
    wk_reply_internal(q, "command buffer full");
}

/* Who asked, for the refusal texts of the provisioned policy. */
static void describe_identity(const wk_req *q, char *out, size_t outlen)
{
    if (q->s.name[0] && q->s.fp[0])
        snprintf(out, outlen, "venName '%s' or this client certificate", q->s.name);
    else if (q->s.name[0])
        snprintf(out, outlen, "venName '%s'", q->s.name);
    else if (q->s.fp[0])
        snprintf(out, outlen, "this client certificate");
    else
        snprintf(out, outlen, "a request without venName and without a client certificate");
}

/* ---- oadrQueryRegistration ---- */

static void query_answer(wk_req *q, const char *reg, const char *ven)
{
    wk_worker *w = q->w;
    wk_created_party_registration r = {
        .code = WK_OADR_OK,
        .desc = "OK",
        .request_id = q->msg.request_id,
        .registration_id = reg && reg[0] ? reg : NULL,
        .ven_id = reg && reg[0] ? ven : NULL,
        .vtn_id = w->cfg.vtn_id,
        .poll_freq_ms = w->cfg.poll_freq_ms,
    };
    vtn_buf_reset(&q->body);
    if (wk_write_created_party_registration(&q->body, &r) < 0) {
        wk_reply_internal(q, "cannot write oadrCreatedPartyRegistration");
        return;
    }
    wk_reply_body(q, 200, "application/xml");
    q->mcode = WK_OADR_OK;
}

/* Works without Redis for a VEN we cannot identify. With a client
 * certificate bound to a registered VEN, the answer carries its venID and
 * registrationID so the VEN can resume. */
void wk_h_query_registration(wk_req *q, redisReply **rep, int n)
{
    wk_hstate *s = &q->s;
    char k[WK_KEY_MAX];
    switch (s->stage) {
    case 0:
        if (!s->fp[0]) {
            query_answer(q, NULL, NULL);
            return;
        }
        s->stage = 1;
        if (wk_cmd(q, "GET", wk_key_fp(k, s->fp), NULL) < 0)
            bad_buffer(q);
        return;
    case 1:
        if (wk_check_reps(q, rep, n))
            return;
        if (!wk_rep_str(rep[0], s->ven, sizeof s->ven)) {
            query_answer(q, NULL, NULL);
            return;
        }
        s->stage = 2;
        if (wk_cmd(q, "HMGET", wk_key_ven(k, s->ven), "r", "fp", NULL) < 0)
            bad_buffer(q);
        return;
    default: {
        if (wk_check_reps(q, rep, n))
            return;
        char fp[WK_FP_MAX + 1];
        wk_rep_elem(rep[0], 0, s->reg, sizeof s->reg);
        wk_rep_elem(rep[0], 1, fp, sizeof fp);
        /* A dangling index is not an identity. */
        query_answer(q, strcmp(fp, s->fp) == 0 ? s->reg : NULL, s->ven);
    }
    }
}

/* ---- oadrCreatePartyRegistration ---- */

static void create_lookup(wk_req *q)
{
    wk_hstate *s = &q->s;
    wk_msg *m = &q->msg;
    char k[WK_KEY_MAX];
    if (m->transport_name[0] && strcmp(m->transport_name, "simpleHttp") != 0) {
        wk_reply_oadr_error(q, WK_OADR_INVALID_DATA,
                            "oadrTransportName %s is not supported: this VTN speaks simpleHttp",
                            m->transport_name);
        return;
    }
    if (m->profile_name[0] && strcmp(m->profile_name, "2.0b") != 0) {
        wk_reply_oadr_error(q, WK_OADR_INVALID_DATA,
                            "oadrProfileName %s is not supported: this VTN implements 2.0b",
                            m->profile_name);
        return;
    }
    if (m->http_pull_model == 0 && !m->transport_address[0]) {
        wk_reply_oadr_error(q, WK_OADR_INVALID_DATA,
                            "oadrTransportAddress is required when oadrHttpPullModel is false");
        return;
    }
    COPY(s->name, m->ven_name);
    /* Ids a first attempt of this request claimed, if any (see create_ids). */
    int rc = wk_cmd(q, "GET", wk_key_req(k, q->rid), NULL);
    int i = 1;
    s->at[0] = s->at[1] = s->at[2] = -1;
    if (m->registration_id[0]) {
        rc |= wk_cmd(q, "GET", wk_key_reg(k, m->registration_id), NULL);
        s->at[0] = i++;
    }
    s->at[5] = -1;
    if (s->fp[0]) {
        rc |= wk_cmd(q, "GET", wk_key_fp(k, s->fp), NULL);
        s->at[1] = i++;
        /* A certificate revoked through the API is refused here even before the
         * gateways load the new CRL: revoking unbound it, and a registration must not
         * bind it again. */
        rc |= wk_cmd(q, "GET", wk_key_revokedfp(k, s->fp), NULL);
        s->at[5] = i++;
    }
    if (s->name[0]) {
        rc |= wk_cmd(q, "GET", wk_key_name(k, s->name), NULL);
        s->at[2] = i++;
    }
    if (rc)
        bad_buffer(q);
    s->stage = 1;
}

/* "<venID> <registrationID>" from vtn:req:<rid>; 1 when read. */
static int read_claim(const redisReply *r, wk_hstate *s)
{
    char claim[2 * VTN_ID_MAX + 2], v[VTN_ID_MAX], g[VTN_ID_MAX];
    if (!wk_rep_str(r, claim, sizeof claim) || sscanf(claim, "%47s %47s", v, g) != 2)
        return 0;
    COPY(s->new_ven, v);
    COPY(s->new_reg, g);
    return 1;
}

static void create_pick(wk_req *q, redisReply **rep, int n)
{
    wk_hstate *s = &q->s;
    wk_msg *m = &q->msg;
    char k[WK_KEY_MAX], reg_owner[WK_ID_MAX + 1] = "";
    if (wk_check_reps(q, rep, n))
        return;
    if (!read_claim(rep[0], s) && (vtn_id_new("ven", s->new_ven, sizeof s->new_ven) < 0 ||
                                   vtn_id_new("reg", s->new_reg, sizeof s->new_reg) < 0)) {
        wk_reply_internal(q, "no randomness for ids");
        return;
    }
    char serial[WK_SERIAL_MAX + 1];
    if (s->at[5] >= 0 && wk_rep_str(rep[s->at[5]], serial, sizeof serial)) {
        wk_reply_oadr_error(q, WK_OADR_NOT_REGISTERED,
                            "the client certificate (serial %s) has been revoked", serial);
        return;
    }
    if (s->at[0] >= 0)
        wk_rep_str(rep[s->at[0]], reg_owner, sizeof reg_owner);
    if (s->at[1] >= 0)
        wk_rep_str(rep[s->at[1]], s->fp_owner, sizeof s->fp_owner);
    if (s->at[2] >= 0)
        wk_rep_str(rep[s->at[2]], s->name_owner, sizeof s->name_owner);

    if (m->registration_id[0]) {
        if (!reg_owner[0]) {
            wk_reply_oadr_error(q, WK_OADR_INVALID_ID, "registrationID %s is not known to this VTN",
                                m->registration_id);
            return;
        }
        if (m->ven_id[0] && strcmp(m->ven_id, reg_owner) != 0) {
            wk_reply_oadr_error(q, WK_OADR_INVALID_ID,
                                "registrationID %s does not belong to venID %s", m->registration_id,
                                m->ven_id);
            return;
        }
        COPY(s->ven, reg_owner);
        s->src = SRC_REG;
    } else if (m->ven_id[0]) {
        COPY(s->ven, m->ven_id);
        s->src = SRC_VENID;
    } else if (s->fp_owner[0]) {
        COPY(s->ven, s->fp_owner);
        s->src = SRC_FP;
    } else if (s->name_owner[0]) {
        COPY(s->ven, s->name_owner);
        s->src = SRC_NAME;
    } else {
        COPY(s->ven, s->new_ven);
        s->src = SRC_NEW;
    }
    /* The target's record, and whether index owners other than the target still
     * exist (an owner without a record is dangling and may be replaced). */
    int rc = wk_cmd(q, "HMGET", wk_key_ven(k, s->ven), "ct", "n", "fp", "pv", "r", "st", NULL);
    int i = 1;
    rc |= wk_cmd_owner_exists(q, s->fp_owner, s->ven, &s->at[3], &i);
    rc |= wk_cmd_owner_exists(q, s->name_owner, s->ven, &s->at[4], &i);
    if (rc)
        bad_buffer(q);
    s->stage = 2;
}

static void plan_claims(wk_req *q);

static void create_decide(wk_req *q, redisReply **rep, int n)
{
    wk_hstate *s = &q->s;
    wk_msg *m = &q->msg;
    wk_worker *w = q->w;
    char k[WK_KEY_MAX], who[WK_NAME_MAX + 80];
    char ct[32], rec_name[WK_NAME_MAX + 1], rec_fp[WK_FP_MAX + 1], pv[8], r[WK_ID_MAX + 1], st[8];
    if (wk_check_reps(q, rep, n))
        return;
    int exists = wk_rep_elem(rep[0], 0, ct, sizeof ct);
    wk_rep_elem(rep[0], 1, rec_name, sizeof rec_name);
    wk_rep_elem(rep[0], 2, rec_fp, sizeof rec_fp);
    wk_rep_elem(rep[0], 3, pv, sizeof pv);
    wk_rep_elem(rep[0], 4, r, sizeof r);
    wk_rep_elem(rep[0], 5, st, sizeof st);
    s->fp_owner_dangling = s->at[3] >= 0 && rep[s->at[3]]->integer == 0;
    s->name_owner_dangling = s->at[4] >= 0 && rep[s->at[4]]->integer == 0;

    if (!exists) {
        switch (s->src) {
        case SRC_REG:
            wk_reply_oadr_error(q, WK_OADR_INVALID_ID, "registrationID %s is not known to this VTN",
                                m->registration_id);
            return;
        case SRC_VENID:
            wk_reply_oadr_error(q, WK_OADR_NOT_REGISTERED, "venID %s is not known to this VTN",
                                m->ven_id);
            return;
        case SRC_FP:
        case SRC_NAME:
            /* The index points at a record that is gone: a dangling index from a crashed
             * request. This is a new VEN; the claims below replace the index. */
            if (s->fp_owner[0] && strcmp(s->fp_owner, s->ven) == 0)
                s->fp_owner_dangling = 1;
            if (s->name_owner[0] && strcmp(s->name_owner, s->ven) == 0)
                s->name_owner_dangling = 1;
            COPY(s->ven, s->new_ven);
            break;
        default:
            break;
        }
        if (w->policy == WK_POLICY_PROVISIONED) {
            describe_identity(q, who, sizeof who);
            wk_reply_oadr_error(q, WK_OADR_NOT_REGISTERED,
                                "registration refused: this VTN only accepts VENs provisioned "
                                "through its management API, and none is provisioned for %s",
                                who);
            return;
        }
        s->isnew = 1;
        rec_name[0] = rec_fp[0] = r[0] = '\0';
    } else {
        if (s->fp[0] && rec_fp[0] && strcmp(rec_fp, s->fp) != 0) {
            wk_reply_oadr_error(q, WK_OADR_NOT_REGISTERED,
                                "the client certificate is not the one bound to venID %s", s->ven);
            return;
        }
        if (s->src == SRC_REG && strcmp(r, m->registration_id) != 0) {
            wk_reply_oadr_error(q, WK_OADR_INVALID_ID,
                                "registrationID %s is not the current registration of venID %s",
                                m->registration_id, s->ven);
            return;
        }
        if (strcmp(st, "c") == 0) {
            wk_reply_oadr_error(q, WK_OADR_NOT_ALLOWED,
                                "the VTN has cancelled the registration of venID %s: poll to "
                                "receive its oadrCancelPartyRegistration and answer it first",
                                s->ven);
            return;
        }
        if (w->policy == WK_POLICY_PROVISIONED && strcmp(pv, "1") != 0) {
            wk_reply_oadr_error(q, WK_OADR_NOT_REGISTERED,
                                "registration refused: venID %s was not provisioned through the "
                                "management API (registration policy: provisioned)",
                                s->ven);
            return;
        }
    }
    if (exists && strcmp(pv, "1") == 0 && rec_name[0] && s->name[0] &&
        strcmp(rec_name, s->name) != 0) {
        /* The operator named this VEN when provisioning it; the name the VEN reports does
         * not rename it (the VEN was identified by its certificate or ids). */
        char a[WK_NAME_MAX + 8], b[WK_NAME_MAX + 8];
        vtn_info("ven_name_kept", "req=%s ven=%s name=%s reported=%s", q->rid, s->ven,
                 vtn_log_quote(a, sizeof a, rec_name, strlen(rec_name)),
                 vtn_log_quote(b, sizeof b, s->name, strlen(s->name)));
        COPY(s->name, rec_name);
        s->name_owner[0] = '\0';
    }
    /* The certificate and the name must not belong to another live VEN. */
    if (s->fp[0] && s->fp_owner[0] && strcmp(s->fp_owner, s->ven) != 0 && !s->fp_owner_dangling) {
        wk_reply_oadr_error(q, WK_OADR_NOT_REGISTERED,
                            "the client certificate is bound to another VEN");
        return;
    }
    if (s->name[0] && s->name_owner[0] && strcmp(s->name_owner, s->ven) != 0 &&
        !s->name_owner_dangling) {
        wk_reply_oadr_error(q, WK_OADR_NOT_REGISTERED, "venName '%s' belongs to another VEN",
                            s->name);
        return;
    }
    /* A re-registration keeps its registrationID; a new one uses the claimed id. */
    if (r[0])
        COPY(s->reg, r);
    else
        COPY(s->reg, s->new_reg);
    if (rec_name[0] && s->name[0] && strcmp(rec_name, s->name) != 0)
        COPY(s->old_name, rec_name);

    s->claim_fp = s->fp[0] && !rec_fp[0]; /* first registration with a certificate: bind it */
    s->claim_name = s->name[0] && strcmp(rec_name, s->name) != 0;
    s->claim_reg = !r[0];
    if (s->isnew || !r[0]) {
        /* New ids: claim them under the request id first, so that a concurrent or later
         * attempt of this request (retry on another worker) uses the same ones. */
        char v[2 * VTN_ID_MAX + 2], ttl[16];
        snprintf(v, sizeof v, "%s %s", s->new_ven, s->new_reg);
        snprintf(ttl, sizeof ttl, "%d", WK_MEMO_TTL_S);
        int rc = wk_cmd(q, "SET", wk_key_req(k, q->rid), v, "NX", "EX", ttl, NULL);
        rc |= wk_cmd(q, "GET", k, NULL);
        if (rc)
            bad_buffer(q);
        s->stage = 3;
        return;
    }
    plan_claims(q);
}

/* Index claims and the ZADD; turns the claim_* wishes into reply positions. */
static void plan_claims(wk_req *q)
{
    wk_hstate *s = &q->s;
    char k[WK_KEY_MAX];
    int rc = wk_cmd(q, "ZADD", WK_KEY_VENS, "0", s->ven, NULL);
    int i = 1;
    if (s->claim_fp) {
        rc |= wk_eval(q, WK_SCRIPT_CLAIM, 1, wk_key_fp(k, s->fp), s->ven,
                      s->fp_owner_dangling ? s->fp_owner : "", NULL);
        s->claim_fp = i++;
    }
    if (s->claim_name) {
        rc |= wk_eval(q, WK_SCRIPT_CLAIM, 1, wk_key_name(k, s->name), s->ven,
                      s->name_owner_dangling ? s->name_owner : "", NULL);
        s->claim_name = i++;
    }
    if (s->claim_reg) {
        rc |= wk_eval(q, WK_SCRIPT_CLAIM, 1, wk_key_reg(k, s->reg), s->ven, "", NULL);
        s->claim_reg = i++;
    }
    if (rc)
        bad_buffer(q);
    s->stage = 4;
}

/* The ids claim answered: adopt the winner's ids (ours, or a parallel attempt's). */
static void create_ids(wk_req *q, redisReply **rep, int n)
{
    wk_hstate *s = &q->s;
    if (wk_check_reps(q, rep, n))
        return;
    if (!read_claim(rep[1], s)) {
        wk_reply_internal(q, "request id claim unreadable");
        return;
    }
    if (s->isnew)
        COPY(s->ven, s->new_ven);
    if (s->claim_reg)
        COPY(s->reg, s->new_reg);
    plan_claims(q);
}

static void create_write(wk_req *q, redisReply **rep, int n)
{
    wk_hstate *s = &q->s;
    wk_msg *m = &q->msg;
    char k[WK_KEY_MAX], k2[WK_KEY_MAX], got[WK_ID_MAX + 1], now[24];
    if (wk_check_reps(q, rep, n))
        return;
    if (s->claim_fp && (!wk_rep_str(rep[s->claim_fp], got, sizeof got) || strcmp(got, s->ven))) {
        wk_reply_oadr_error(q, WK_OADR_NOT_REGISTERED,
                            "the client certificate was just bound to another VEN");
        return;
    }
    if (s->claim_name &&
        (!wk_rep_str(rep[s->claim_name], got, sizeof got) || strcmp(got, s->ven))) {
        wk_reply_oadr_error(q, WK_OADR_NOT_REGISTERED, "venName '%s' was just taken by another VEN",
                            s->name);
        return;
    }
    if (s->claim_reg && (!wk_rep_str(rep[s->claim_reg], got, sizeof got) || strcmp(got, s->ven))) {
        wk_reply_internal(q, "registrationID collision");
        return;
    }
    snprintf(now, sizeof now, "%lld", (long long)vtn_now_ms());
    int rc = wk_eval(q, WK_SCRIPT_REGISTER, 2, wk_key_ven(k, s->ven), wk_key_venq(k2, s->ven),
                     s->reg, s->name, s->claim_fp ? s->fp : "", m->http_pull_model == 0 ? "0" : "1",
                     m->transport_address, m->report_only == 1 ? "1" : "0",
                     m->xml_signature == 1 ? "1" : "0", now, NULL);
    if (s->old_name[0])
        rc |= wk_eval(q, WK_SCRIPT_CAD, 1, wk_key_name(k, s->old_name), s->ven, NULL);
    if (rc)
        bad_buffer(q);
    s->stage = 5;
}

static void create_done(wk_req *q, redisReply **rep, int n)
{
    wk_hstate *s = &q->s;
    wk_worker *w = q->w;
    if (wk_check_reps(q, rep, n))
        return;
    if (rep[0]->type != REDIS_REPLY_INTEGER || rep[0]->integer != 1) {
        wk_reply_oadr_error(q, WK_OADR_NOT_ALLOWED,
                            "the VTN cancelled the registration of venID %s meanwhile", s->ven);
        return;
    }
    wk_created_party_registration r = {
        .code = WK_OADR_OK,
        .desc = "OK",
        .request_id = q->msg.request_id,
        .registration_id = s->reg,
        .ven_id = s->ven,
        .vtn_id = w->cfg.vtn_id,
        .poll_freq_ms = w->cfg.poll_freq_ms,
    };
    vtn_buf_reset(&q->body);
    if (wk_write_created_party_registration(&q->body, &r) < 0) {
        wk_reply_internal(q, "cannot write oadrCreatedPartyRegistration");
        return;
    }
    char nq[WK_NAME_MAX + 8];
    vtn_info("registered", "req=%s ven=%s reg=%s new=%d name=%s pull=%d", q->rid, s->ven, s->reg,
             s->isnew, vtn_log_quote(nq, sizeof nq, s->name, strlen(s->name)),
             q->msg.http_pull_model != 0);
    wk_reply_body(q, 200, "application/xml");
    q->mcode = WK_OADR_OK;
}

void wk_h_create_registration(wk_req *q, redisReply **rep, int n)
{
    switch (q->s.stage) {
    case 0:
        create_lookup(q);
        return;
    case 1:
        create_pick(q, rep, n);
        return;
    case 2:
        create_decide(q, rep, n);
        return;
    case 3:
        create_ids(q, rep, n);
        return;
    case 4:
        create_write(q, rep, n);
        return;
    default:
        create_done(q, rep, n);
        return;
    }
}

/* ---- script outcomes ---- */

/* Copies a script's JSON outcome ["kind", name, fp, reg]. 0, or -EPROTO
 * after answering 500. */
static int outcome(wk_req *q, const redisReply *r, char *kind, size_t kindlen, char *name, char *fp,
                   char *reg)
{
    json_t *a = wk_script_outcome(q, r);
    if (a == NULL)
        return -EPROTO;
    snprintf(kind, kindlen, "%s", json_string_value(json_array_get(a, 0)));
    const char *v;
    name[0] = fp[0] = reg[0] = '\0';
    if ((v = json_string_value(json_array_get(a, 1))))
        snprintf(name, WK_NAME_MAX + 1, "%s", v);
    if ((v = json_string_value(json_array_get(a, 2))))
        snprintf(fp, WK_FP_MAX + 1, "%s", v);
    if ((v = json_string_value(json_array_get(a, 3))))
        snprintf(reg, WK_ID_MAX + 1, "%s", v);
    json_decref(a);
    return 0;
}

/* Queues the index clean-up after a record's registration ended (reg) or the
 * record was deleted (all). Compare-and-delete: an index that meanwhile
 * points elsewhere is left alone. */
int wk_queue_index_cleanup(wk_req *q, const char *ven, const char *name, const char *fp,
                           const char *reg, int all)
{
    char k[WK_KEY_MAX];
    int rc = 0;
    if (reg[0])
        rc |= wk_eval(q, WK_SCRIPT_CAD, 1, wk_key_reg(k, reg), ven, NULL);
    if (all) {
        if (name[0])
            rc |= wk_eval(q, WK_SCRIPT_CAD, 1, wk_key_name(k, name), ven, NULL);
        if (fp[0])
            rc |= wk_eval(q, WK_SCRIPT_CAD, 1, wk_key_fp(k, fp), ven, NULL);
        rc |= wk_cmd(q, "ZREM", WK_KEY_VENS, ven, NULL);
    }
    return rc;
}

/* The codes the cancel scripts return for a refusal. */
static int refusal(wk_req *q, const char *kind, const char *ven)
{
    if (strcmp(kind, "463") == 0) {
        wk_reply_oadr_error(q, WK_OADR_NOT_REGISTERED, "venID %s is not registered with this VTN",
                            ven);
        return 1;
    }
    if (strcmp(kind, "463f") == 0) {
        wk_reply_oadr_error(q, WK_OADR_NOT_REGISTERED,
                            "the client certificate is not the one bound to venID %s", ven);
        return 1;
    }
    if (strcmp(kind, "452") == 0) {
        wk_reply_oadr_error(q, WK_OADR_INVALID_ID,
                            "registrationID %s is not the registration of venID %s",
                            q->msg.registration_id, ven);
        return 1;
    }
    return 0;
}

/* ---- oadrCancelPartyRegistration (from the VEN) ---- */

/* Stage 0 resolves the venID (the payload's, or the registration's owner),
 * stage 2 runs the script, stage 3 cleans indexes, stage 4 answers. */
static void cancel_like(wk_req *q, redisReply **rep, int n, enum wk_script script)
{
    wk_hstate *s = &q->s;
    wk_msg *m = &q->msg;
    char k1[WK_KEY_MAX], k2[WK_KEY_MAX], k3[WK_KEY_MAX], k4[WK_KEY_MAX];
    switch (s->stage) {
    case 0:
        if (m->ven_id[0]) {
            COPY(s->ven, m->ven_id);
            break; /* straight to the script */
        }
        if (!m->registration_id[0]) {
            wk_reply_oadr_error(q, WK_OADR_INVALID_ID, "neither venID nor registrationID given");
            return;
        }
        s->stage = 1;
        if (wk_cmd(q, "GET", wk_key_reg(k1, m->registration_id), NULL) < 0)
            bad_buffer(q);
        return;
    case 1:
        if (wk_check_reps(q, rep, n))
            return;
        if (!wk_rep_str(rep[0], s->ven, sizeof s->ven)) {
            wk_reply_oadr_error(q, WK_OADR_INVALID_ID, "registrationID %s is not known to this VTN",
                                m->registration_id);
            return;
        }
        break;
    case 2: {
        char name[WK_NAME_MAX + 1], fp[WK_FP_MAX + 1], reg[WK_ID_MAX + 1];
        if (wk_check_reps(q, rep, n))
            return;
        if (outcome(q, rep[0], s->result, sizeof s->result, name, fp, reg) < 0)
            return;
        if (refusal(q, s->result, s->ven))
            return;
        COPY(s->reg, reg);
        if (strcmp(s->result, "N") == 0) {
            s->stage = 3;
            q->step(q, NULL, 0);
            return;
        }
        s->stage = 3;
        if (wk_queue_index_cleanup(q, s->ven, name, fp, reg, strcmp(s->result, "D") == 0))
            bad_buffer(q);
        vtn_info(script == WK_SCRIPT_VENCANCEL ? "ven_cancelled" : "vtn_cancel_acknowledged",
                 "req=%s ven=%s reg=%s record=%s", q->rid, s->ven, reg,
                 strcmp(s->result, "D") == 0 ? "deleted" : "kept");
        return;
    }
    default:
        if (n && wk_check_reps(q, rep, n))
            return;
        if (script == WK_SCRIPT_VENCANCEL) {
            vtn_buf_reset(&q->body);
            if (wk_write_canceled_party_registration(&q->body, WK_OADR_OK, "OK", m->request_id,
                                                     s->reg, s->ven) < 0) {
                wk_reply_internal(q, "cannot write oadrCanceledPartyRegistration");
                return;
            }
            wk_reply_body(q, 200, "application/xml");
            q->mcode = WK_OADR_OK;
        } else {
            if (m->ei_response.present && m->ei_response.code != WK_OADR_OK)
                vtn_info("vtn_cancel_refused_by_ven", "req=%s ven=%s code=%d", q->rid, s->ven,
                         m->ei_response.code);
            wk_reply_oadr_response(q, WK_OADR_OK, "OK", s->ven);
        }
        return;
    }
    /* Run the script (from stage 0 or 1). */
    s->stage = 2;
    if (wk_eval(q, script, 4, wk_key_ven(k1, s->ven), wk_key_venq(k2, s->ven),
                wk_key_venpm(k3, s->ven), wk_key_venreq(k4, s->ven, q->rid), m->registration_id,
                s->fp, NULL) < 0)
        bad_buffer(q);
}

void wk_h_cancel_registration(wk_req *q, redisReply **rep, int n)
{
    cancel_like(q, rep, n, WK_SCRIPT_VENCANCEL);
}

/* The VEN's answer to a VTN-initiated oadrCancelPartyRegistration: the record
 * goes (whatever responseCode the VEN gives: the VTN's decision stands). */
void wk_h_canceled_registration(wk_req *q, redisReply **rep, int n)
{
    cancel_like(q, rep, n, WK_SCRIPT_CANCELED);
}

/* ---- oadrResponse from the VEN ---- */

/* E.g. the answer to oadrRequestReregistration: nothing to store (the VEN's
 * next oadrCreatePartyRegistration clears the pending flag), but the venID
 * must be a registered VEN. */
void wk_h_response(wk_req *q, redisReply **rep, int n)
{
    wk_msg *m = &q->msg;
    if (q->s.stage == 0 && m->ven_id[0]) {
        q->s.stage = 1;
        if (wk_ven_check_plan(q, m->ven_id) < 0)
            bad_buffer(q);
        return;
    }
    if (q->s.stage == 1 && (wk_check_reps(q, rep, n) || !wk_ven_check(q, rep[0], m->ven_id)))
        return;
    if (m->ei_response.present && m->ei_response.code != WK_OADR_OK)
        vtn_info("ven_response", "req=%s ven=%s code=%d", q->rid, m->ven_id[0] ? m->ven_id : "-",
                 m->ei_response.code);
    wk_reply_oadr_response(q, WK_OADR_OK, "OK", m->ven_id[0] ? m->ven_id : NULL);
}
