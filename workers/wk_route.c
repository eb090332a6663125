/* The route table (payload element -> handler) and the start of every
 * request: decode, validate, route, first step. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "vtn/log.h"
#include "wk_internal.h"

/* Every payload a VEN may send. Types without a step here are valid 2.0b
 * messages whose services come in later issues: they get a precise refusal
 * from wk_h_unsupported after the venID check. */
const wk_route wk_routes[] = {
    {WK_MSG_QUERY_REGISTRATION, wk_h_query_registration},
    {WK_MSG_CREATE_PARTY_REGISTRATION, wk_h_create_registration},
    {WK_MSG_CANCEL_PARTY_REGISTRATION, wk_h_cancel_registration},
    {WK_MSG_CANCELED_PARTY_REGISTRATION, wk_h_canceled_registration},
    {WK_MSG_RESPONSE, wk_h_response},
    {WK_MSG_POLL, wk_h_poll},
    {WK_MSG_REQUEST_EVENT, NULL},
    {WK_MSG_CREATED_EVENT, NULL},
    {WK_MSG_REGISTER_REPORT, NULL},
    {WK_MSG_REGISTERED_REPORT, NULL},
    {WK_MSG_CREATE_REPORT, NULL},
    {WK_MSG_CREATED_REPORT, NULL},
    {WK_MSG_UPDATE_REPORT, NULL},
    {WK_MSG_CANCEL_REPORT, NULL},
    {WK_MSG_CANCELED_REPORT, NULL},
    {WK_MSG_CREATE_OPT, NULL},
    {WK_MSG_CANCEL_OPT, NULL},
};
const size_t wk_nroutes = sizeof wk_routes / sizeof wk_routes[0];

const wk_route *wk_route_find(enum wk_msg_type t)
{
    for (size_t i = 0; i < wk_nroutes; i++)
        if (wk_routes[i].type == t)
            return &wk_routes[i];
    return NULL;
}

static void start_oadr(wk_req *q)
{
    wk_worker *w = q->w;
    enum wk_service svc = wk_service_from_path(q->env.path.p, q->env.path.n);
    int rc = wk_msg_parse(w->codec, svc, q->env.body.p, q->env.body.n, &q->msg);
    q->mtype = q->msg.type;
    if (rc == -ENOMEM) {
        wk_reply_unavailable(q, "VTN out of memory, retry later");
        return;
    }
    if (rc < 0) {
        /* The codec says what is wrong and which reply type carries it. */
        vtn_buf_reset(&q->body);
        wk_reply_request_id(q);
        if (wk_write_error(&q->body, &q->msg, w->cfg.vtn_id, w->cfg.poll_freq_ms) < 0) {
            wk_reply_internal(q, "cannot write the error reply");
            return;
        }
        char d[300];
        vtn_info("oadr_invalid", "req=%s service=%s payload=%s code=%d desc=%s", q->rid,
                 wk_service_name(svc), q->msg.payload_name[0] ? q->msg.payload_name : "-",
                 q->msg.code, vtn_log_quote(d, sizeof d, q->msg.desc, strlen(q->msg.desc)));
        wk_reply_body(q, 200, "application/xml");
        q->mcode = q->msg.code;
        return;
    }
    if (q->env.fingerprint.n) {
        /* The gateway computed it from the client certificate; normalised like the stored
         * ones so that comparison is a plain strcmp. */
        if (wk_fp_normalize(q->env.fingerprint.p, q->env.fingerprint.n, q->s.fp, sizeof q->s.fp) <
            0) {
            wk_reply_oadr_error(q, WK_OADR_NOT_REGISTERED,
                                "the client certificate fingerprint from the gateway is "
                                "malformed");
            return;
        }
    }
    const wk_route *r = wk_route_find(q->msg.type);
    q->step = r && r->step ? r->step : wk_h_unsupported;
    q->step(q, NULL, 0);
}

void wk_req_start(wk_req *q)
{
    switch (q->env.kind) {
    case VTN_KIND_OADR:
        start_oadr(q);
        break;
    case VTN_KIND_API:
        q->mtype = WK_MT_API;
        q->step = wk_h_api;
        q->step(q, NULL, 0);
        break;
    default: {
        static const char msg[] = "request kind not handled by this worker";
        q->mtype = WK_MT_OTHER;
        vtn_warn("unknown_kind", "req=%s kind=%u", q->rid, q->env.kind);
        wk_reply(q, 501, "text/plain", msg, sizeof msg - 1);
    }
    }
}

/* ---- shared checks ---- */

int wk_ven_check_plan(wk_req *q, const char *ven_id)
{
    char k[WK_KEY_MAX];
    return wk_cmd(q, "HMGET", wk_key_ven(k, ven_id), "r", "fp", NULL);
}

int wk_ven_check(wk_req *q, const redisReply *h, const char *ven_id)
{
    char r[WK_ID_MAX + 1], fp[WK_FP_MAX + 1];
    if (!wk_rep_elem(h, 0, r, sizeof r)) {
        wk_reply_oadr_error(q, WK_OADR_NOT_REGISTERED, "venID %s is not registered with this VTN",
                            ven_id);
        return 0;
    }
    wk_rep_elem(h, 1, fp, sizeof fp);
    /* Strict when TLS gives us an identity: the VEN must be bound to exactly this
     * certificate. Without one (plain HTTP) there is nothing to compare. */
    if (q->s.fp[0] && strcmp(fp, q->s.fp) != 0) {
        wk_reply_oadr_error(q, WK_OADR_NOT_REGISTERED,
                            "the client certificate is not the one bound to venID %s", ven_id);
        return 0;
    }
    return 1;
}

/* Valid 2.0b messages of services that come later: answered with their own
 * reply type and 453, after the same venID check every handler does. */
void wk_h_unsupported(wk_req *q, redisReply **rep, int n)
{
    const char *ven = q->msg.ven_id;
    if (q->s.stage == 0 && ven[0]) {
        q->s.stage = 1;
        if (wk_ven_check_plan(q, ven) < 0)
            wk_reply_internal(q, "command buffer");
        return;
    }
    if (q->s.stage == 1) {
        if (wk_check_reps(q, rep, n) || !wk_ven_check(q, rep[0], ven))
            return;
    }
    wk_reply_oadr_error(q, WK_OADR_NOT_RECOGNIZED, "%s is not supported by this VTN yet",
                        wk_msg_name(q->msg.type));
}
