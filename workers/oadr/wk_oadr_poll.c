/* OadrPoll: the next message queued for the VEN, else its events when they
 * changed (oadrDistributeEvent, wk_oadr_event.c), else oadrResponse 200.
 *
 * The hot path is one round of three plain commands (HMGET of the record,
 * LLEN of the queue, GET of the events version), pipelined with every other
 * request of the batch; the pop script runs only when something is queued
 * or when this request id already popped a message (a retry must get that
 * same message back), the events are read only when the version moved past
 * the VEN's cursor or one of its events ended. The hash of the set the VEN
 * was sent last (eh) matters only then, so it is read with the events, not
 * with the record on every poll. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vtn/keys.h"
#include "vtn/log.h"
#include "vtn/time.h"
#include "wk_oadr.h"
#include "wk_ven.h"

int wk_render_queued(vtn_buf *b, const char *entry, size_t len, const char *ven_id)
{
    /* Entries are "<kind>|<field>|..." (docs/redis-keys.md). */
    if (len > 2 && entry[0] == VTN_QUEUE_KIND_CREATEREPORT && entry[1] == VTN_QUEUE_SEP)
        return wk_render_create_report(b, entry, len, ven_id);
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
    case VTN_QUEUE_KIND_REGREPORT: /* M|<requestID> */
        return bar ? -EINVAL : wk_write_register_report(b, f1, ven_id);
    case VTN_QUEUE_KIND_CANCELREPORT: { /* K|<requestID>|<reportRequestID> */
        if (bar == NULL || bar == f1 || bar[1] == '\0')
            return -EINVAL;
        *bar = '\0';
        json_t *rrids = json_pack("[s]", bar + 1);
        int rc = rrids ? wk_write_cancel_report(b, f1, ven_id, rrids) : -ENOMEM;
        json_decref(rrids);
        return rc;
    }
    default:
        return -EINVAL;
    }
}

enum poll_stage { POLL_START = 0, POLL_READ, POLL_POP, POLL_EVENTS, POLL_RECORDS, POLL_SENT };

typedef struct poll_state {
    enum poll_stage stage;
    wk_rh rec;  /* HMGET ven r fp pr ev en ea lp */
    wk_rh qlen; /* LLEN venq */
    wk_rh ver;  /* GET vtn:events:ver */
    wk_rh pop;  /* the pop script */
    wk_rh hash; /* HGET ven eh, with the events */
    int sent;   /* POLL_SENT: 1 an oadrDistributeEvent, 0 nothing new */
    char sent_hash[sizeof(((wk_evset *)0)->hash)]; /* eh: the set the VEN was sent last */
    long long cur_ver, cur_end; /* ev, en: the rest of the VEN's cursor as read */
    int cur_await;              /* ea */
    wk_evset set;               /* when the events may have changed for the VEN */
} poll_state;

static void poll_step(wk_req *q, void *st);

static void poll_fini(void *st)
{
    wk_evset_clear(&((poll_state *)st)->set);
}

/* The VEN's events after the records came: sent when the set differs from
 * what the VEN was sent last; either way the cursor moves to this version. */
static void poll_events(wk_req *q, poll_state *s, const char *ven)
{
    if (wk_evset_finish(q, &s->set, ven, vtn_now_ms()) < 0) {
        wk_reply_internal(q, "out of memory");
        return;
    }
    s->sent = strcmp(s->sent_hash, s->set.hash) != 0 || s->set.awaiting > 0;
    if (s->sent) {
        char rid[VTN_ID_MAX];
        if (vtn_id_new("req", rid, sizeof rid) < 0 || wk_evset_write(q, &s->set, rid, ven, 0) < 0) {
            wk_reply_internal(q, "cannot write oadrDistributeEvent");
            return;
        }
    }
    s->stage = POLL_SENT;
    /* The cursor already says all this (a VEN sent the same set again until
     * it answers, say): nothing to write, the reply leaves a round earlier. */
    if (s->cur_ver == s->set.version && s->cur_end == s->set.next_end &&
        s->cur_await == (s->set.awaiting > 0) && strcmp(s->sent_hash, s->set.hash) == 0 &&
        (!s->sent || json_object_size(s->set.fresh) == 0)) {
        poll_step(q, s);
        return;
    }
    if (wk_evset_record(q, &s->set, ven, s->sent) < 0)
        wk_reply_no_room(q);
}

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

/* The VEN's last poll (lp) and until when it is online (vtn:vens:online:
 * the poll plus two of its poll intervals), written only when the stored
 * poll is older than a quarter of its interval (at most
 * VTN_LASTPOLL_STEP_MS): a VEN polling at its interval costs a write a
 * poll at most, one polling faster no more. Detached: the reply does not
 * wait for it, and a write lost with a Redis outage only ages lp. */
static void note_poll(wk_req *q, const redisReply *rec, const char *ven)
{
    long long lp = 0, freq = 0, now = (long long)vtn_now_ms();
    if (rec && rec->type == REDIS_REPLY_ARRAY && rec->elements > 6 &&
        rec->element[6]->type == REDIS_REPLY_STRING)
        wk_last_poll_parse(rec->element[6]->str, rec->element[6]->len, &lp, &freq);
    if (freq <= 0) /* registered before the VTN recorded it */
        freq = q->w->cfg.poll_freq_ms;
    long long step = freq / 4 < VTN_LASTPOLL_STEP_MS ? freq / 4 : VTN_LASTPOLL_STEP_MS;
    if (lp > 0 && now - lp < step)
        return;
    char k[VTN_KEY_MAX], at[24], every[24], until[24];
    snprintf(at, sizeof at, "%lld", now);
    snprintf(every, sizeof every, "%lld", freq);
    snprintf(until, sizeof until, "%lld", now + 2 * freq);
    if (wk_cmd_detached(q->w, "EVALSHA", q->w->redis.sha[WK_SCRIPT_LASTPOLL], "1",
                        wk_key_ven(k, ven), at, every, NULL) < 0 ||
        wk_cmd_detached(q->w, "ZADD", VTN_KEY_VENSONLINE, until, ven, NULL) < 0)
        vtn_debug("lastpoll_dropped", "req=%s ven=%s", q->rid, ven);
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
        /* The hot path: one round of three plain commands, no script. */
        s->rec = wk_cmd(q, "HMGET", wk_key_ven(k1, ven), VTN_F_VEN_REG, VTN_F_VEN_FP,
                        VTN_F_VEN_POLL_RID, VTN_F_VEN_EVENTS_VER, VTN_F_VEN_EVENTS_END,
                        VTN_F_VEN_EVENTS_AWAIT, VTN_F_VEN_LAST_POLL, NULL);
        s->qlen = wk_cmd(q, "LLEN", wk_key_venq(k2, ven), NULL);
        s->ver = wk_cmd(q, "GET", VTN_KEY_EVENTSVER, NULL);
        if (s->rec < 0 || s->qlen < 0 || s->ver < 0)
            wk_reply_no_room(q);
        s->stage = POLL_READ;
        return;
    case POLL_READ: {
        if (!wk_ven_check(q, s->rec, ven))
            return;
        char pr[24], ev[24] = "", ver[24] = "", en[24] = "";
        const redisReply *rec = wk_rep(q, s->rec);
        note_poll(q, rec, ven);
        wk_rep_elem(rec, 2, pr, sizeof pr);
        if (wk_rep_int(q, s->qlen, 0) > 0 || strcmp(pr, q->rid) == 0) {
            /* Queued registration messages go first; events follow on later polls. */
            s->pop = wk_eval(q, WK_SCRIPT_POP, 3, wk_key_ven(k1, ven), wk_key_venq(k2, ven),
                             wk_key_venpm(k3, ven), q->rid, WK_QUEUE_KINDS, NULL);
            if (s->pop < 0)
                wk_reply_no_room(q);
            s->stage = POLL_POP;
            return;
        }
        wk_rep_elem(rec, 3, ev, sizeof ev);
        wk_rep_elem(rec, 4, en, sizeof en);
        wk_rep_str(wk_rep(q, s->ver), ver, sizeof ver);
        long long end = atoll(en);
        char ea[4] = "";
        wk_rep_elem(rec, 5, ea, sizeof ea);
        s->cur_ver = atoll(ev);
        s->cur_end = end;
        s->cur_await = strcmp(ea, "1") == 0;
        if (atoll(ver) == s->cur_ver && (end == 0 || vtn_now_ms() < end) && !s->cur_await) {
            wk_reply_oadr_response(q, WK_OADR_OK, "OK", ven);
            return;
        }
        /* An event changed since the VEN's last set, one of its events ended, or it has
         * not answered one that needs an answer (sent again until it does). */
        s->hash = wk_cmd(q, "HGET", wk_key_ven(k1, ven), VTN_F_VEN_EVENTS_HASH, NULL);
        if (s->hash < 0 || wk_evset_start(q, &s->set, ven, atoll(ver)) < 0)
            wk_reply_no_room(q);
        s->stage = POLL_EVENTS;
        return;
    }
    case POLL_POP:
        poll_pop(q, s, ven);
        return;
    case POLL_EVENTS: {
        wk_rep_str(wk_rep(q, s->hash), s->sent_hash, sizeof s->sent_hash);
        int n = wk_evset_fetch(q, &s->set, ven);
        if (n < 0)
            wk_reply_no_room(q);
        else if (n == 0)
            poll_events(q, s, ven);
        s->stage = n == 0 ? s->stage : POLL_RECORDS;
        return;
    }
    case POLL_RECORDS:
        poll_events(q, s, ven);
        return;
    case POLL_SENT:
        if (!s->sent) {
            wk_reply_oadr_response(q, WK_OADR_OK, "OK", ven);
            return;
        }
        /* A set the VEN had already (sent again until it answers) is logged
         * at debug: at info, a VEN that never answers would log every poll. */
        if (strcmp(s->sent_hash, s->set.hash) == 0)
            vtn_debug("poll_delivered", "req=%s ven=%s kind=event events=%zu again=1", q->rid, ven,
                      json_array_size(s->set.events));
        else
            vtn_info("poll_delivered", "req=%s ven=%s kind=event events=%zu", q->rid, ven,
                     json_array_size(s->set.events));
        wk_reply_body(q, 200, "application/xml");
        q->mcode = WK_OADR_OK;
        return;
    }
}

const wk_handler wk_h_poll = WK_HANDLER("oadrPoll", poll_state, NULL, poll_fini, poll_step);
