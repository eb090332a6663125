/* OadrPoll: the next message queued for the VEN, or oadrResponse 200.
 *
 * The hot path is one round of two plain commands (HMGET of the record,
 * LLEN of the queue), pipelined with every other request of the batch; the
 * pop script runs only when something is queued or when this request id
 * already popped a message (a retry must get that same message back). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "vtn/log.h"
#include "wk_oadr.h"
#include "wk_ven.h"

int wk_render_queued(vtn_buf *b, const char *entry, size_t len, const char *ven_id)
{
    /* Entries are "<kind>|<field>|..." (docs/redis-keys.md). */
    char tmp[2 * WK_ID_MAX + 8];
    if (len < 2 || len >= sizeof tmp || entry[1] != '|')
        return -EINVAL;
    memcpy(tmp, entry, len);
    tmp[len] = '\0';
    char *f1 = tmp + 2;
    char *bar = strchr(f1, '|');
    switch (tmp[0]) {
    case 'C': { /* C|<requestID>|<registrationID> */
        if (bar == NULL || bar == f1 || bar[1] == '\0')
            return -EINVAL;
        *bar = '\0';
        return wk_write_cancel_party_registration(b, f1, bar + 1, ven_id);
    }
    case 'R': /* R|<requestID>: oadrRequestReregistration carries no requestID in 2.0b */
        return wk_write_request_reregistration(b, ven_id);
    default:
        return -EINVAL;
    }
}

enum poll_stage { POLL_START = 0, POLL_READ, POLL_POP };

typedef struct poll_state {
    enum poll_stage stage;
    wk_rh rec;  /* HMGET ven r fp pr */
    wk_rh qlen; /* LLEN venq */
    wk_rh pop;  /* the pop script */
} poll_state;

static void poll_pop(wk_req *q, poll_state *s, const char *ven)
{
    const redisReply *r = wk_rep(q, s->pop);
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[1]->type != REDIS_REPLY_INTEGER) {
        wk_reply_internal(q, "unexpected reply of the pop script");
        return;
    }
    const redisReply *e = r->element[0];
    if (e->type != REDIS_REPLY_STRING) {
        wk_reply_oadr_response(q, WK_OADR_OK, "OK", ven);
        return;
    }
    vtn_buf_reset(&q->body);
    int rc = wk_render_queued(&q->body, e->str, (size_t)e->len, ven);
    if (rc == -EINVAL) {
        vtn_warn("queue_entry_bad", "req=%s ven=%s kind=%c", q->rid, ven, e->len ? e->str[0] : '-');
        wk_reply_oadr_response(q, WK_OADR_OK, "OK", ven);
        return;
    }
    if (rc < 0) {
        wk_reply_internal(q, "cannot render queued message");
        return;
    }
    vtn_info("poll_delivered", "req=%s ven=%s kind=%c", q->rid, ven, e->str[0]);
    wk_reply_body(q, 200, "application/xml");
    q->mcode = WK_OADR_OK;
}

static void poll_step(wk_req *q, void *st)
{
    poll_state *s = st;
    const char *ven = q->msg.ven_id;
    char k1[VTN_KEY_MAX], k2[VTN_KEY_MAX], k3[VTN_KEY_MAX];
    switch (s->stage) {
    case POLL_START:
        if (!ven[0]) {
            wk_reply_oadr_error(q, WK_OADR_NOT_REGISTERED, "oadrPoll without venID");
            return;
        }
        /* The hot path: one round of two plain commands, no script. */
        s->rec = wk_cmd(q, "HMGET", wk_key_ven(k1, ven), "r", "fp", "pr", NULL);
        s->qlen = wk_cmd(q, "LLEN", wk_key_venq(k2, ven), NULL);
        if (s->rec < 0 || s->qlen < 0)
            wk_reply_no_room(q);
        s->stage = POLL_READ;
        return;
    case POLL_READ: {
        if (!wk_ven_check(q, s->rec, ven))
            return;
        char pr[24];
        wk_rep_elem(wk_rep(q, s->rec), 2, pr, sizeof pr);
        if (wk_rep_int(q, s->qlen, 0) == 0 && strcmp(pr, q->rid) != 0) {
            wk_reply_oadr_response(q, WK_OADR_OK, "OK", ven);
            return;
        }
        s->pop = wk_eval(q, WK_SCRIPT_POP, 3, wk_key_ven(k1, ven), wk_key_venq(k2, ven),
                         wk_key_venpm(k3, ven), q->rid, WK_QUEUE_KINDS, NULL);
        if (s->pop < 0)
            wk_reply_no_room(q);
        s->stage = POLL_POP;
        return;
    }
    case POLL_POP:
        poll_pop(q, s, ven);
        return;
    }
}

const wk_handler wk_h_poll = WK_HANDLER("oadrPoll", poll_state, NULL, NULL, poll_step);
