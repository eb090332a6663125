/* The entry of every OpenADR request (decode, then the message's handler)
 * and the route table generated from the message list (wk_messages.h). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "vtn/log.h"
#include "wk_oadr.h"
#include "wk_ven.h"

/* The handler column of the message list (wk_messages.h). */
#define WK_H_query_registration &wk_h_query_registration
#define WK_H_create_registration &wk_h_create_registration
#define WK_H_cancel_registration &wk_h_cancel_registration
#define WK_H_canceled_registration &wk_h_canceled_registration
#define WK_H_response &wk_h_response
#define WK_H_poll &wk_h_poll
#define WK_H_request_event &wk_h_request_event
#define WK_H_created_event &wk_h_created_event
#define WK_H_register_report &wk_h_register_report
#define WK_H_registered_report &wk_h_registered_report
#define WK_H_created_report &wk_h_created_report
#define WK_H_update_report &wk_h_update_report
#define WK_H_canceled_report &wk_h_canceled_report
#define WK_H_create_opt &wk_h_create_opt
#define WK_H_cancel_opt &wk_h_cancel_opt
#define WK_H_later NULL /* answered by wk_h_unsupported after the venID check */
#define WK_H_vtn NULL

/* One row per payload, in the enum's order, generated from the message
 * list: what a VEN may send (services), and its handler. */
const wk_route wk_routes[] = {
#define ROUTE_ROW(id, element, reply, services, wrapped, handler)                                  \
    {WK_MSG_##id, (services) != 0, WK_H_##handler},
    WK_MESSAGES(ROUTE_ROW)
#undef ROUTE_ROW
};
const size_t wk_nroutes = sizeof wk_routes / sizeof wk_routes[0];

const wk_route *wk_route_find(enum wk_msg_type t)
{
    /* Row i is type i + 1 (WK_MSG_NONE has none). */
    if (t <= WK_MSG_NONE || (size_t)t > wk_nroutes || !wk_routes[t - 1].from_ven)
        return NULL;
    return &wk_routes[t - 1];
}

/* Bodies up to this size are parsed on the loop's thread (tens of
 * microseconds); larger ones on the slow-work thread, where even a hostile
 * document's parse cannot delay a heartbeat or a poll. */
#define WK_INLINE_PARSE_MAX (64 << 10)

enum entry_stage { ENTRY_START = 0, ENTRY_PARSED };

typedef struct entry_state {
    enum entry_stage stage;
    int rc; /* wk_msg_parse's */
} entry_state;

/* On the calling thread's codec: decode, then drop the tree at once (the
 * codec copied what the handlers need into q->msg), so a document's memory
 * lives only as long as its parse. */
static void entry_parse(wk_req *q, void *st)
{
    entry_state *s = st;
    enum wk_service svc = wk_service_from_path(q->env.path.p, q->env.path.n);
    s->rc = wk_msg_parse(wk_slow_codec(q->w), svc, q->env.body.p, q->env.body.n, &q->msg);
    wk_msg_drop_doc(&q->msg);
}

static void entry_route(wk_req *q, entry_state *s)
{
    wk_worker *w = q->w;
    q->mtype = q->msg.type;
    if (s->rc == -ENOMEM) {
        wk_reply_unavailable(q, "VTN out of memory, retry later");
        return;
    }
    if (s->rc < 0) {
        /* The codec says what is wrong and which reply type carries it. */
        vtn_buf_reset(&q->body);
        wk_reply_request_id(q);
        if (wk_write_error(&q->body, &q->msg, w->cfg.vtn_id, w->cfg.poll_freq_ms) < 0) {
            wk_reply_internal(q, "cannot write the error reply");
            return;
        }
        char d[300];
        vtn_info("oadr_invalid", "req=%s service=%s payload=%s code=%d desc=%s", q->rid,
                 wk_service_name(q->msg.service),
                 q->msg.payload_name[0] ? q->msg.payload_name : "-", q->msg.code,
                 vtn_log_quote(d, sizeof d, q->msg.desc, strlen(q->msg.desc)));
        wk_reply_body(q, 200, "application/xml");
        q->mcode = q->msg.code;
        return;
    }
    if (q->env.fingerprint.n) {
        /* The gateway computed it from the client certificate; normalised like the stored
         * ones so that comparison is a plain strcmp. */
        if (wk_fp_normalize(q->env.fingerprint.p, q->env.fingerprint.n, q->fp, sizeof q->fp) < 0) {
            wk_reply_oadr_error(q, WK_OADR_NOT_REGISTERED,
                                "the client certificate fingerprint from the gateway is "
                                "malformed");
            return;
        }
    }
    vtn_str pv;
    if (vtn_wire_ext_get(q->env.ext, VTN_WIRE_EXT_PUSH_VEN, &pv) == 0 &&
        (pv.n == 0 || (q->msg.ven_id[0] && !vtn_str_eq(pv, q->msg.ven_id)))) {
        /* A push delivery: the gateway vouches for this VEN only (it checked
         * the server certificate of its transportAddress). */
        wk_reply_oadr_error(q, WK_OADR_NOT_REGISTERED,
                            "the push VEN's answer names venID %s, not the VEN pushed to",
                            q->msg.ven_id);
        return;
    }
    const wk_route *r = wk_route_find(q->msg.type);
    wk_req_handle(q, r && r->handler ? r->handler : &wk_h_unsupported);
}

static void entry_step(wk_req *q, void *st)
{
    entry_state *s = st;
    switch (s->stage) {
    case ENTRY_START:
        s->stage = ENTRY_PARSED;
        if (q->env.body.n <= WK_INLINE_PARSE_MAX) {
            entry_parse(q, s);
            entry_route(q, s);
        } else if (wk_slow_run(q, entry_parse) < 0) {
            wk_reply_unavailable(q, "VTN busy parsing large documents, retry later");
        }
        return;
    case ENTRY_PARSED:
        entry_route(q, s);
        return;
    }
}

/* Every OpenADR request starts here: decode (inline, or on the slow-work
 * thread for a large body), then hand over to the message's handler. */
const wk_handler wk_oadr_entry = WK_HANDLER("oadr", entry_state, NULL, NULL, entry_step);

/* Valid 2.0b messages of services that come later: answered with their own
 * reply type and 453, after the same venID check every handler does. */
static void unsupported_step(wk_req *q, void *st)
{
    if (!wk_ven_gate_pass(q, st, q->msg.ven_id))
        return;
    wk_reply_oadr_error(q, WK_OADR_NOT_RECOGNIZED, "%s is not supported by this VTN yet",
                        wk_msg_name(q->msg.type));
}

const wk_handler wk_h_unsupported =
    WK_HANDLER("unsupported", wk_ven_gate, NULL, NULL, unsupported_step);
