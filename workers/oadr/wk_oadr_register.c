/* EiRegisterParty: oadrQueryRegistration, oadrCreatePartyRegistration,
 * oadrCancelPartyRegistration, oadrCanceledPartyRegistration, and the
 * VEN's oadrResponse (e.g. to oadrRequestReregistration).
 *
 * Each handler is a state machine over pipeline rounds with its own state
 * type and named stages.
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
#include "wk_oadr.h"
#include "wk_ven.h"

static void copy(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src);
}

#define COPY(dst, src) copy(dst, sizeof(dst), src)

/* Who asked, for the refusal texts of the provisioned policy. */
static void describe_identity(const wk_req *q, const char *name, char *out, size_t outlen)
{
    if (name[0] && q->fp[0])
        snprintf(out, outlen, "venName '%s' or this client certificate", name);
    else if (name[0])
        snprintf(out, outlen, "venName '%s'", name);
    else if (q->fp[0])
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

enum query_stage { QUERY_START = 0, QUERY_INDEX, QUERY_RECORD };

typedef struct query_state {
    enum query_stage stage;
    wk_rh idx; /* GET venfp */
    wk_rh rec; /* HMGET ven r fp */
    char ven[WK_ID_MAX + 1];
} query_state;

/* Works without Redis for a VEN we cannot identify. With a client
 * certificate bound to a registered VEN, the answer carries its venID and
 * registrationID so the VEN can resume. */
static void query_step(wk_req *q, void *st)
{
    query_state *s = st;
    char k[VTN_KEY_MAX];
    switch (s->stage) {
    case QUERY_START:
        if (!q->fp[0]) {
            query_answer(q, NULL, NULL);
            return;
        }
        s->stage = QUERY_INDEX;
        if ((s->idx = wk_ven_lookup(q, WK_VEN_BY_FP, q->fp)) < 0)
            wk_reply_no_room(q);
        return;
    case QUERY_INDEX:
        if (!wk_ven_found(q, s->idx, s->ven, sizeof s->ven)) {
            query_answer(q, NULL, NULL);
            return;
        }
        s->stage = QUERY_RECORD;
        if ((s->rec = wk_cmd(q, "HMGET", wk_key_ven(k, s->ven), "r", "fp", NULL)) < 0)
            wk_reply_no_room(q);
        return;
    case QUERY_RECORD: {
        char fp[WK_FP_MAX + 1], reg[WK_ID_MAX + 1];
        wk_rep_elem(wk_rep(q, s->rec), 0, reg, sizeof reg);
        wk_rep_elem(wk_rep(q, s->rec), 1, fp, sizeof fp);
        /* A dangling index is not an identity. */
        query_answer(q, strcmp(fp, q->fp) == 0 ? reg : NULL, s->ven);
    }
    }
}

const wk_handler wk_h_query_registration =
    WK_HANDLER("oadrQueryRegistration", query_state, NULL, NULL, query_step);

/* ---- oadrCreatePartyRegistration ---- */

enum create_stage {
    CREATE_LOOKUP = 0, /* the request's earlier claim and the indexes of what the VEN gave */
    CREATE_PICK,       /* -> the target record and the liveness of other index owners */
    CREATE_DECIDE,     /* -> accept or refuse; claim new ids under the request id */
    CREATE_IDS,        /* -> the winning ids; claim the indexes */
    CREATE_CLAIMS,     /* -> write the record (commit point) */
    CREATE_COMMIT,     /* -> answer */
};

typedef struct create_state {
    enum create_stage stage;
    enum { SRC_NEW = 0, SRC_REG, SRC_VENID, SRC_FP, SRC_NAME } src; /* how the VEN was found */
    int isnew;
    char ven[WK_ID_MAX + 1];  /* target venID */
    char reg[WK_ID_MAX + 1];  /* registrationID answered */
    char new_ven[VTN_ID_MAX]; /* ids claimed by this request (vtn:req:<rid>) */
    char new_reg[VTN_ID_MAX];
    char name[WK_NAME_MAX + 1];     /* venName */
    char fp_owner[WK_ID_MAX + 1];   /* venID in vtn:venfp:<fp>, "" none */
    char name_owner[WK_ID_MAX + 1]; /* venID in vtn:venname:<name>, "" none */
    char old_name[WK_NAME_MAX + 1]; /* name to release after a rename */
    int fp_owner_dangling, name_owner_dangling;
    int claim_fp, claim_name, claim_reg; /* indexes this registration takes */
    int prefetched;                      /* rec was read with the lookups (payload venID) */
    /* Replies to read back. */
    wk_rh prior;      /* GET vtn:req:<rid> */
    wk_rh reg_idx;    /* GET venreg */
    wk_rh fp_idx;     /* GET venfp */
    wk_rh revoked;    /* GET revokedfp */
    wk_rh name_idx;   /* GET venname */
    wk_rh rec;        /* HMGET of the target record */
    wk_rh fp_alive;   /* EXISTS of the certificate's other owner */
    wk_rh name_alive; /* EXISTS of the name's other owner */
    wk_rh ids;        /* GET vtn:req:<rid> after SET NX */
    wk_rh fp_claim, name_claim, reg_claim;
    wk_rh commit; /* the register script */
} create_state;

static void create_lookup(wk_req *q, create_state *s)
{
    wk_msg *m = &q->msg;
    char k[VTN_KEY_MAX];
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
    if (m->ven_name[0] && !wk_ven_name_valid(m->ven_name, strlen(m->ven_name))) {
        /* The rule the management API applies: the name shows in logs, JSON and XML. */
        wk_reply_oadr_error(q, WK_OADR_INVALID_DATA,
                            "oadrVenName must be 1 to %d bytes without control characters (CR, "
                            "LF, tab ...)",
                            WK_NAME_MAX);
        return;
    }
    COPY(s->name, m->ven_name);
    /* Ids a first attempt of this request claimed, if any (see create_ids). */
    int bad = (s->prior = wk_cmd(q, "GET", wk_key_req(k, q->rid), NULL)) < 0;
    if (m->registration_id[0])
        bad |= (s->reg_idx = wk_ven_lookup(q, WK_VEN_BY_REG, m->registration_id)) < 0;
    if (q->fp[0]) {
        bad |= (s->fp_idx = wk_ven_lookup(q, WK_VEN_BY_FP, q->fp)) < 0;
        /* A certificate revoked through the API is refused here even before the
         * gateways load the new CRL: revoking unbound it, and a registration must not
         * bind it again. */
        bad |= (s->revoked = wk_cmd(q, "GET", wk_key_revokedfp(k, q->fp), NULL)) < 0;
    }
    if (s->name[0])
        bad |= (s->name_idx = wk_ven_lookup(q, WK_VEN_BY_NAME, s->name)) < 0;
    if (m->ven_id[0]) {
        /* Most registrations name their VEN: read its record now, so create_pick can
         * decide without a round of its own. */
        s->rec =
            wk_cmd(q, "HMGET", wk_key_ven(k, m->ven_id), "ct", "n", "fp", "pv", "r", "st", NULL);
        bad |= s->rec < 0;
        s->prefetched = 1;
    }
    if (bad)
        wk_reply_no_room(q);
    s->stage = CREATE_PICK;
}

/* "<venID> <registrationID>" from vtn:req:<rid>; 1 when read. */
static int read_claim(const redisReply *r, create_state *s)
{
    char claim[2 * VTN_ID_MAX + 2], v[VTN_ID_MAX], g[VTN_ID_MAX];
    if (!wk_rep_str(r, claim, sizeof claim) || sscanf(claim, "%47s %47s", v, g) != 2)
        return 0;
    COPY(s->new_ven, v);
    COPY(s->new_reg, g);
    return 1;
}

static void create_decide(wk_req *q, create_state *s);

static void create_pick(wk_req *q, create_state *s)
{
    wk_msg *m = &q->msg;
    char k[VTN_KEY_MAX], reg_owner[WK_ID_MAX + 1] = "";
    if (!read_claim(wk_rep(q, s->prior), s) &&
        (vtn_id_new("ven", s->new_ven, sizeof s->new_ven) < 0 ||
         vtn_id_new("reg", s->new_reg, sizeof s->new_reg) < 0)) {
        wk_reply_internal(q, "no randomness for ids");
        return;
    }
    char serial[WK_SERIAL_MAX + 1];
    if (wk_rep_str(wk_rep(q, s->revoked), serial, sizeof serial)) {
        wk_reply_oadr_error(q, WK_OADR_NOT_REGISTERED,
                            "the client certificate (serial %s) has been revoked", serial);
        return;
    }
    wk_ven_found(q, s->reg_idx, reg_owner, sizeof reg_owner);
    wk_ven_found(q, s->fp_idx, s->fp_owner, sizeof s->fp_owner);
    wk_ven_found(q, s->name_idx, s->name_owner, sizeof s->name_owner);

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
    int fp_other = s->fp_owner[0] && strcmp(s->fp_owner, s->ven) != 0;
    int name_other = s->name_owner[0] && strcmp(s->name_owner, s->ven) != 0;
    if (s->prefetched && strcmp(s->ven, m->ven_id) == 0 && !fp_other && !name_other) {
        /* The VEN named itself, its record came with the lookups, and no other VEN's
         * liveness needs checking: decide now, one round less (a re-registration takes
         * three rounds, not four). */
        create_decide(q, s);
        return;
    }
    s->rec = wk_cmd(q, "HMGET", wk_key_ven(k, s->ven), "ct", "n", "fp", "pv", "r", "st", NULL);
    s->fp_alive = wk_ven_owner_exists(q, s->fp_owner, s->ven);
    s->name_alive = wk_ven_owner_exists(q, s->name_owner, s->ven);
    if (s->rec < 0 || s->fp_alive < 0 || s->name_alive < 0)
        wk_reply_no_room(q);
    s->stage = CREATE_DECIDE;
}

static void plan_claims(wk_req *q, create_state *s);

static void create_decide(wk_req *q, create_state *s)
{
    wk_msg *m = &q->msg;
    wk_worker *w = q->w;
    char k[VTN_KEY_MAX], who[WK_NAME_MAX + 80];
    char ct[32], rec_name[WK_NAME_MAX + 1], rec_fp[WK_FP_MAX + 1], pv[8], r[WK_ID_MAX + 1], st[8];
    const redisReply *rec = wk_rep(q, s->rec);
    int exists = wk_rep_elem(rec, 0, ct, sizeof ct);
    wk_rep_elem(rec, 1, rec_name, sizeof rec_name);
    wk_rep_elem(rec, 2, rec_fp, sizeof rec_fp);
    wk_rep_elem(rec, 3, pv, sizeof pv);
    wk_rep_elem(rec, 4, r, sizeof r);
    wk_rep_elem(rec, 5, st, sizeof st);
    s->fp_owner_dangling = s->fp_alive && wk_rep_int(q, s->fp_alive, 1) == 0;
    s->name_owner_dangling = s->name_alive && wk_rep_int(q, s->name_alive, 1) == 0;

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
        case SRC_NEW:
            break;
        }
        if (w->policy == WK_POLICY_PROVISIONED) {
            describe_identity(q, s->name, who, sizeof who);
            wk_reply_oadr_error(q, WK_OADR_NOT_REGISTERED,
                                "registration refused: this VTN only accepts VENs provisioned "
                                "through its management API, and none is provisioned for %s",
                                who);
            return;
        }
        s->isnew = 1;
        rec_name[0] = rec_fp[0] = r[0] = '\0';
    } else {
        if (q->fp[0] && rec_fp[0] && strcmp(rec_fp, q->fp) != 0) {
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
    if (q->fp[0] && s->fp_owner[0] && strcmp(s->fp_owner, s->ven) != 0 && !s->fp_owner_dangling) {
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

    s->claim_fp = q->fp[0] && !rec_fp[0]; /* first registration with a certificate: bind it */
    s->claim_name = s->name[0] && strcmp(rec_name, s->name) != 0;
    s->claim_reg = !r[0];
    if (s->isnew || !r[0]) {
        /* New ids: claim them under the request id first, so that a concurrent or later
         * attempt of this request (retry on another worker) uses the same ones. */
        char v[2 * VTN_ID_MAX + 2], ttl[16];
        snprintf(v, sizeof v, "%s %s", s->new_ven, s->new_reg);
        snprintf(ttl, sizeof ttl, "%d", VTN_TTL_MEMO_S);
        int bad = wk_cmd(q, "SET", wk_key_req(k, q->rid), v, "NX", "EX", ttl, NULL) < 0;
        bad |= (s->ids = wk_cmd(q, "GET", k, NULL)) < 0;
        if (bad)
            wk_reply_no_room(q);
        s->stage = CREATE_IDS;
        return;
    }
    plan_claims(q, s);
}

/* Index claims and the ZADD. */
static void plan_claims(wk_req *q, create_state *s)
{
    char k[VTN_KEY_MAX];
    int bad = wk_cmd(q, "ZADD", VTN_KEY_VENS, "0", s->ven, NULL) < 0;
    if (s->claim_fp)
        bad |= (s->fp_claim = wk_eval(q, WK_SCRIPT_CLAIM, 1, wk_key_fp(k, q->fp), s->ven,
                                      s->fp_owner_dangling ? s->fp_owner : "", NULL)) < 0;
    if (s->claim_name)
        bad |= (s->name_claim = wk_eval(q, WK_SCRIPT_CLAIM, 1, wk_key_name(k, s->name), s->ven,
                                        s->name_owner_dangling ? s->name_owner : "", NULL)) < 0;
    if (s->claim_reg)
        bad |= (s->reg_claim =
                    wk_eval(q, WK_SCRIPT_CLAIM, 1, wk_key_reg(k, s->reg), s->ven, "", NULL)) < 0;
    if (bad)
        wk_reply_no_room(q);
    s->stage = CREATE_CLAIMS;
}

/* The ids claim answered: adopt the winner's ids (ours, or a parallel attempt's). */
static void create_ids(wk_req *q, create_state *s)
{
    if (!read_claim(wk_rep(q, s->ids), s)) {
        wk_reply_internal(q, "request id claim unreadable");
        return;
    }
    if (s->isnew)
        COPY(s->ven, s->new_ven);
    if (s->claim_reg)
        COPY(s->reg, s->new_reg);
    plan_claims(q, s);
}

/* 1 when the claim behind h was not made or went to ven. */
static int claimed(const wk_req *q, wk_rh h, const char *ven, char *got, size_t gotlen)
{
    got[0] = '\0';
    return h == 0 || (wk_rep_str(wk_rep(q, h), got, gotlen) && strcmp(got, ven) == 0);
}

static void create_claims(wk_req *q, create_state *s)
{
    wk_msg *m = &q->msg;
    char k[VTN_KEY_MAX], k2[VTN_KEY_MAX], got[WK_ID_MAX + 1], now[24];
    if (!claimed(q, s->fp_claim, s->ven, got, sizeof got)) {
        wk_reply_oadr_error(q, WK_OADR_NOT_REGISTERED,
                            "the client certificate was just bound to another VEN");
        return;
    }
    if (!claimed(q, s->name_claim, s->ven, got, sizeof got)) {
        wk_reply_oadr_error(q, WK_OADR_NOT_REGISTERED, "venName '%s' was just taken by another VEN",
                            s->name);
        return;
    }
    if (!claimed(q, s->reg_claim, s->ven, got, sizeof got)) {
        wk_reply_internal(q, "registrationID collision");
        return;
    }
    snprintf(now, sizeof now, "%lld", (long long)vtn_now_ms());
    char regrep[32]; /* the requestID of the VTN's METADATA oadrRegisterReport (docs/reports.md) */
    snprintf(regrep, sizeof regrep, "regrep-%s", q->rid);
    char freq[24]; /* what the reply gives the VEN: "online" is two of these */
    snprintf(freq, sizeof freq, "%lld", q->w->cfg.poll_freq_ms);
    s->commit = wk_eval(q, WK_SCRIPT_REGISTER, 3, wk_key_ven(k, s->ven), wk_key_venq(k2, s->ven),
                        VTN_KEY_PUSHDUE, s->reg, s->name, s->claim_fp ? q->fp : "",
                        m->http_pull_model == 0 ? "0" : "1", m->transport_address,
                        m->report_only == 1 ? "1" : "0", m->xml_signature == 1 ? "1" : "0", now,
                        regrep, s->ven, freq, NULL);
    int bad = s->commit < 0;
    if (s->old_name[0])
        bad |= wk_eval(q, WK_SCRIPT_CAD, 1, wk_key_name(k, s->old_name), s->ven, NULL) < 0;
    if (bad)
        wk_reply_no_room(q);
    s->stage = CREATE_COMMIT;
}

static void create_commit(wk_req *q, create_state *s)
{
    wk_worker *w = q->w;
    if (wk_rep_int(q, s->commit, 0) != 1) {
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

/* Stage -> its function: the table reads like the protocol. */
static void (*const create_stages[])(wk_req *q, create_state *s) = {
    [CREATE_LOOKUP] = create_lookup, [CREATE_PICK] = create_pick,
    [CREATE_DECIDE] = create_decide, [CREATE_IDS] = create_ids,
    [CREATE_CLAIMS] = create_claims, [CREATE_COMMIT] = create_commit,
};

static void create_step(wk_req *q, void *st)
{
    create_state *s = st;
    create_stages[s->stage](q, s);
}

const wk_handler wk_h_create_registration =
    WK_HANDLER("oadrCreatePartyRegistration", create_state, NULL, NULL, create_step);

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

enum cancel_stage {
    CANCEL_START = 0, /* resolve the venID: the payload's, or the registration's owner */
    CANCEL_OWNER,     /* -> the script */
    CANCEL_SCRIPT,    /* -> index clean-up */
    CANCEL_CLEANED,   /* -> answer */
};

typedef struct cancel_state {
    enum cancel_stage stage;
    enum wk_script script; /* vencancel or canceled */
    wk_rh owner;           /* GET venreg */
    wk_rh outcome;         /* the script */
    char ven[WK_ID_MAX + 1];
    char reg[WK_ID_MAX + 1];
} cancel_state;

static void cancel_answer(wk_req *q, cancel_state *s)
{
    wk_msg *m = &q->msg;
    if (s->script == WK_SCRIPT_VENCANCEL) {
        vtn_buf_reset(&q->body);
        if (wk_write_canceled_party_registration(&q->body, WK_OADR_OK, "OK", m->request_id, s->reg,
                                                 s->ven) < 0) {
            wk_reply_internal(q, "cannot write oadrCanceledPartyRegistration");
            return;
        }
        wk_reply_body(q, 200, "application/xml");
        q->mcode = WK_OADR_OK;
        return;
    }
    if (m->ei_response.present && m->ei_response.code != WK_OADR_OK)
        vtn_info("vtn_cancel_refused_by_ven", "req=%s ven=%s code=%d", q->rid, s->ven,
                 m->ei_response.code);
    wk_reply_oadr_response(q, WK_OADR_OK, "OK", s->ven);
}

static void cancel_run_script(wk_req *q, cancel_state *s)
{
    char k1[VTN_KEY_MAX], k2[VTN_KEY_MAX], k3[VTN_KEY_MAX], k4[VTN_KEY_MAX];
    s->stage = CANCEL_SCRIPT;
    s->outcome = wk_eval(q, s->script, 4, wk_key_ven(k1, s->ven), wk_key_venq(k2, s->ven),
                         wk_key_venpm(k3, s->ven), wk_key_venreq(k4, s->ven, q->rid),
                         q->msg.registration_id, q->fp, NULL);
    if (s->outcome < 0)
        wk_reply_no_room(q);
}

static void cancel_step(wk_req *q, void *st)
{
    cancel_state *s = st;
    wk_msg *m = &q->msg;
    switch (s->stage) {
    case CANCEL_START:
        if (m->ven_id[0]) {
            COPY(s->ven, m->ven_id);
            cancel_run_script(q, s);
            return;
        }
        if (!m->registration_id[0]) {
            wk_reply_oadr_error(q, WK_OADR_INVALID_ID, "neither venID nor registrationID given");
            return;
        }
        s->stage = CANCEL_OWNER;
        if ((s->owner = wk_ven_lookup(q, WK_VEN_BY_REG, m->registration_id)) < 0)
            wk_reply_no_room(q);
        return;
    case CANCEL_OWNER:
        if (!wk_ven_found(q, s->owner, s->ven, sizeof s->ven)) {
            wk_reply_oadr_error(q, WK_OADR_INVALID_ID, "registrationID %s is not known to this VTN",
                                m->registration_id);
            return;
        }
        cancel_run_script(q, s);
        return;
    case CANCEL_SCRIPT: {
        char kind[32], name[WK_NAME_MAX + 1], fp[WK_FP_MAX + 1], reg[WK_ID_MAX + 1];
        if (outcome(q, wk_rep(q, s->outcome), kind, sizeof kind, name, fp, reg) < 0)
            return;
        if (refusal(q, kind, s->ven))
            return;
        COPY(s->reg, reg);
        if (strcmp(kind, "N") == 0) {
            cancel_answer(q, s); /* nothing was registered: nothing to clean */
            return;
        }
        s->stage = CANCEL_CLEANED;
        if (wk_ven_index_cleanup(q, s->ven, name, fp, reg, strcmp(kind, "D") == 0) < 0)
            wk_reply_no_room(q);
        vtn_info(s->script == WK_SCRIPT_VENCANCEL ? "ven_cancelled" : "vtn_cancel_acknowledged",
                 "req=%s ven=%s reg=%s record=%s", q->rid, s->ven, reg,
                 strcmp(kind, "D") == 0 ? "deleted" : "kept");
        if (q->ncmds == 0)
            cancel_answer(q, s);
        return;
    }
    case CANCEL_CLEANED:
        cancel_answer(q, s);
        return;
    }
}

static void cancel_init(wk_req *q, void *st)
{
    (void)q;
    ((cancel_state *)st)->script = WK_SCRIPT_VENCANCEL;
}

/* The VEN's answer to a VTN-initiated oadrCancelPartyRegistration: the record
 * goes (whatever responseCode the VEN gives: the VTN's decision stands). */
static void canceled_init(wk_req *q, void *st)
{
    (void)q;
    ((cancel_state *)st)->script = WK_SCRIPT_CANCELED;
}

const wk_handler wk_h_cancel_registration =
    WK_HANDLER("oadrCancelPartyRegistration", cancel_state, cancel_init, NULL, cancel_step);
const wk_handler wk_h_canceled_registration =
    WK_HANDLER("oadrCanceledPartyRegistration", cancel_state, canceled_init, NULL, cancel_step);

/* ---- oadrResponse from the VEN ---- */

/* E.g. the answer to oadrRequestReregistration: nothing to store (the VEN's
 * next oadrCreatePartyRegistration clears the pending flag), but the venID
 * must be a registered VEN. */
static void response_step(wk_req *q, void *st)
{
    wk_msg *m = &q->msg;
    if (!wk_ven_gate_pass(q, st, m->ven_id))
        return;
    if (m->ei_response.present && m->ei_response.code != WK_OADR_OK)
        vtn_info("ven_response", "req=%s ven=%s code=%d", q->rid, m->ven_id[0] ? m->ven_id : "-",
                 m->ei_response.code);
    wk_reply_oadr_response(q, WK_OADR_OK, "OK", m->ven_id[0] ? m->ven_id : NULL);
}

const wk_handler wk_h_response = WK_HANDLER("oadrResponse", wk_ven_gate, NULL, NULL, response_step);
