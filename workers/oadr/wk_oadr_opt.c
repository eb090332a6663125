/* EiOpt (docs/opt.md): oadrCreateOpt, an opt schedule (vavailability) or
 * an opt for one event (qualifiedEventID), answered oadrCreatedOpt; and
 * oadrCancelOpt, answered oadrCanceledOpt.
 *
 * Everything is checked before anything is written: the components' times
 * (454), the VEN (463), the marketContext (a program's, else 452), the
 * event (one of this VTN's that targets the VEN, else 452; at its current
 * modificationNumber, else 450). Then one script (optcreate) stores the
 * opt in the VEN's venopts hash, a schedule also in vtn:opts:sched (what
 * the API's participation reads), an event opt also in the VEN's
 * participation field of the event, where oadrCreatedEvent no longer
 * changes it (rule 206). A poll reads none of it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vtn/keys.h"
#include "vtn/log.h"
#include "vtn/time.h"
#include "wk_oadr.h"
#include "wk_ven.h"

static const char *jstr(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

/* ---- oadrCreateOpt ---- */

enum create_stage { COPT_START = 0, COPT_CHECKED, COPT_STORED };

typedef struct create_state {
    enum create_stage stage;
    wk_ven_gate gate;
    wk_rh event, attrs, program; /* HGETALL vtn:event:<id>, SMEMBERS ventargets, GET programmc */
    wk_rh stored;                /* the optcreate script */
    json_t *intervals;           /* owned: the schedule's [start, end] pairs (ms) */
    int64_t last_end;
} create_state;

static void create_fini(void *st)
{
    json_decref(((create_state *)st)->intervals);
}

/* The record venopts keeps (the API shows it without "m" and "expires"),
 * as JSON text to free, or NULL. */
static char *create_record(wk_req *q, create_state *s, int64_t expires, char **member)
{
    json_t *opt = q->msg.opt, *rec = json_deep_copy(opt);
    char now[32];
    *member = NULL;
    if (rec == NULL)
        return NULL;
    json_object_set_new(rec, "optID", json_string(q->msg.opt_id));
    json_object_set_new(rec, "receivedDateTime",
                        json_string(vtn_time_format(vtn_now_ms(), now, sizeof now)));
    json_object_set_new(rec, "expires", json_integer(expires));
    if (jstr(opt, "eventID") == NULL) {
        const char *type = jstr(opt, "optType");
        json_t *m = json_pack("{s:s, s:s, s:s, s:O}", "v", q->msg.ven_id, "o", q->msg.opt_id, "t",
                              type && strcmp(type, "optIn") == 0 ? "i" : "o", "c", s->intervals);
        if (m && jstr(opt, "marketContext"))
            json_object_set(m, "mc", json_object_get(opt, "marketContext"));
        *member = m ? json_dumps(m, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
        json_decref(m);
        if (*member == NULL || json_object_set_new(rec, "m", json_string(*member)) < 0) {
            json_decref(rec);
            free(*member);
            *member = NULL;
            return NULL;
        }
    }
    char *text = json_dumps(rec, JSON_COMPACT);
    json_decref(rec);
    return text;
}

/* The checks that need no Redis: a schedule needs components, and every
 * component's times must be readable and not all past. 0, or answered. */
static int create_validate(wk_req *q, create_state *s)
{
    json_t *opt = q->msg.opt;
    json_t *avail = json_object_get(opt, "availability");
    char err[300];
    if (jstr(opt, "eventID") == NULL && json_array_size(avail) == 0) {
        wk_reply_oadr_error(q, WK_OADR_INVALID_DATA,
                            "an oadrCreateOpt without qualifiedEventID needs a vavailability "
                            "with at least one xcal:available component");
        return -EINVAL;
    }
    int rc = wk_opt_intervals(avail, &s->intervals, &s->last_end, err, sizeof err);
    if (rc == -ENOMEM) {
        wk_reply_internal(q, "out of memory");
        return rc;
    }
    if (rc < 0) {
        wk_reply_oadr_error(q, WK_OADR_INVALID_DATA, "%s", err);
        return rc;
    }
    if (json_array_size(avail) > 0 && s->last_end <= vtn_now_ms()) {
        wk_reply_oadr_error(q, WK_OADR_INVALID_DATA,
                            "every component of the vavailability ended before now");
        return -EINVAL;
    }
    return 0;
}

/* The event check: 0, or answered (452 unknown or not the VEN's, 450 not
 * its current modificationNumber). *end is the event's end (ms). */
static int create_check_event(wk_req *q, create_state *s, const char *id, int64_t *end)
{
    const char *ven = q->msg.ven_id;
    const redisReply *h = wk_rep(q, s->event);
    json_t *ev = wk_event_json(id, h, vtn_now_ms(), NULL);
    if (ev == NULL) {
        wk_reply_oadr_error(q, WK_OADR_INVALID_ID, "eventID %s is not an event of this VTN", id);
        return -ENOENT;
    }
    const redisReply *a = wk_rep(q, s->attrs);
    json_t *attrs = json_object();
    for (size_t i = 0; attrs && a && a->type == REDIS_REPLY_ARRAY && i < a->elements; i++)
        if (a->element[i]->type == REDIS_REPLY_STRING)
            json_object_set_new(attrs, a->element[i]->str, json_true());
    int applies = attrs && wk_event_applies(ev, ven, attrs);
    long long cur = json_integer_value(json_object_get(ev, "modificationNumber"));
    json_decref(attrs);
    json_decref(ev);
    if (!applies) {
        wk_reply_oadr_error(q, WK_OADR_INVALID_ID, "eventID %s is not an event of venID %s", id,
                            ven);
        return -ENOENT;
    }
    long long mn = json_integer_value(json_object_get(q->msg.opt, "modificationNumber"));
    if (mn != cur) {
        wk_reply_oadr_error(q, WK_OADR_OUT_OF_SEQUENCE,
                            "eventID %s: modificationNumber %lld is not the current one (%lld)", id,
                            mn, cur);
        return -ESTALE;
    }
    *end = wk_hfield_int(h, VTN_F_EVENT_END);
    return 0;
}

static int create_store(wk_req *q, create_state *s, const char *event, int64_t event_end)
{
    const char *ven = q->msg.ven_id;
    char k1[VTN_KEY_MAX], k3[VTN_KEY_MAX], k4[VTN_KEY_MAX], score[24], now[24];
    int64_t expires = event ? event_end + VTN_OPT_EVENT_KEEP_MS : s->last_end;
    char *member = NULL, *rec = create_record(q, s, expires, &member);
    if (rec == NULL)
        return -ENOMEM;
    const char *type = jstr(q->msg.opt, "optType");
    snprintf(score, sizeof score, "%lld", (long long)s->last_end);
    snprintf(now, sizeof now, "%lld", (long long)vtn_now_ms());
    if (event)
        s->stored =
            wk_eval(q, WK_SCRIPT_OPTCREATE, 4, wk_key_venopts(k1, ven), VTN_KEY_OPTSCHED,
                    wk_key_event(k3, event),
                    vtn_key_eventvens(k4, event, vtn_event_vens_shard(ven)), q->msg.opt_id, rec, "",
                    now, ven, type && strcmp(type, "optIn") == 0 ? "i" : "o", event, NULL);
    else
        s->stored = wk_eval(q, WK_SCRIPT_OPTCREATE, 2, wk_key_venopts(k1, ven), VTN_KEY_OPTSCHED,
                            q->msg.opt_id, rec, score, now, ven, "", "", NULL);
    free(rec);
    free(member);
    return s->stored < 0 ? (int)s->stored : 0;
}

static void create_step(wk_req *q, void *st)
{
    create_state *s = st;
    const char *ven = q->msg.ven_id;
    const char *event = jstr(q->msg.opt, "eventID");
    const char *mc = jstr(q->msg.opt, "marketContext");
    char k[VTN_KEY_MAX];
    switch (s->stage) {
    case COPT_START:
        if (!ven[0] || q->msg.opt == NULL) {
            wk_reply_oadr_error(q, WK_OADR_NOT_REGISTERED, "oadrCreateOpt without venID");
            return;
        }
        if (create_validate(q, s) < 0)
            return;
        s->stage = COPT_CHECKED;
        wk_ven_gate_pass(q, &s->gate, ven);
        if (!q->done && event &&
            ((s->event = wk_cmd(q, "HGETALL", wk_key_event(k, event), NULL)) < 0 ||
             (s->attrs = wk_cmd(q, "SMEMBERS", vtn_key_build(k, VTN_KEY_VENTARGETS, ven, NULL),
                                NULL)) < 0))
            wk_reply_no_room(q);
        if (!q->done && mc &&
            (s->program = wk_cmd(q, "GET", vtn_key_build(k, VTN_KEY_PROGRAMMC, mc, NULL), NULL)) <
                0)
            wk_reply_no_room(q);
        return;
    case COPT_CHECKED: {
        if (!wk_ven_gate_pass(q, &s->gate, ven))
            return;
        char program[WK_ID_MAX + 1];
        if (mc && !wk_rep_str(wk_rep(q, s->program), program, sizeof program)) {
            wk_reply_oadr_error(q, WK_OADR_INVALID_ID,
                                "marketContext %s is not a program of this VTN", mc);
            return;
        }
        int64_t end = 0;
        if (event && create_check_event(q, s, event, &end) < 0)
            return;
        int rc = create_store(q, s, event, end);
        if (rc == -ENOMEM)
            wk_reply_internal(q, "out of memory");
        else if (rc < 0)
            wk_reply_no_room(q);
        s->stage = COPT_STORED;
        return;
    }
    case COPT_STORED: {
        long long r = wk_rep_int(q, s->stored, 0);
        if (r == -1) {
            wk_reply_oadr_error(q, WK_OADR_NOT_ALLOWED,
                                "venID %s has %d opts, the most this VTN keeps: cancel one first",
                                ven, VTN_OPTS_MAX);
            return;
        }
        if (r == -2) {
            wk_reply_oadr_error(q, WK_OADR_INVALID_ID,
                                "optID %s is already an opt of another event or a schedule: "
                                "use a new optID",
                                q->msg.opt_id);
            return;
        }
        if (r == -3) {
            wk_reply_oadr_error(q, WK_OADR_INVALID_ID, "eventID %s is not an event of this VTN",
                                event);
            return;
        }
        if (r != 1) {
            wk_reply_internal(q, "unexpected reply of the optcreate script");
            return;
        }
        vtn_info("opt_created", "req=%s ven=%s opt=%s event=%s type=%s components=%zu", q->rid, ven,
                 q->msg.opt_id, event ? event : "-", jstr(q->msg.opt, "optType"),
                 json_array_size(s->intervals));
        vtn_buf_reset(&q->body);
        if (wk_write_created_opt(&q->body, WK_OADR_OK, "OK", wk_reply_request_id(q),
                                 q->msg.opt_id) < 0) {
            wk_reply_internal(q, "cannot write oadrCreatedOpt");
            return;
        }
        wk_reply_body(q, 200, "application/xml");
        q->mcode = WK_OADR_OK;
        return;
    }
    }
}

const wk_handler wk_h_create_opt =
    WK_HANDLER("oadrCreateOpt", create_state, NULL, create_fini, create_step);

/* ---- oadrCancelOpt ---- */

enum cancel_stage { XOPT_START = 0, XOPT_CHECKED, XOPT_DONE };

typedef struct cancel_state {
    enum cancel_stage stage;
    wk_ven_gate gate;
    wk_rh rec, memo, done; /* HGET venopts optID, EXISTS venreq memo, the optcancel script */
} cancel_state;

static void cancel_answer(wk_req *q)
{
    vtn_info("opt_cancelled", "req=%s ven=%s opt=%s", q->rid, q->msg.ven_id, q->msg.opt_id);
    vtn_buf_reset(&q->body);
    if (wk_write_canceled_opt(&q->body, WK_OADR_OK, "OK", wk_reply_request_id(q), q->msg.opt_id) <
        0) {
        wk_reply_internal(q, "cannot write oadrCanceledOpt");
        return;
    }
    wk_reply_body(q, 200, "application/xml");
    q->mcode = WK_OADR_OK;
}

static void cancel_step(wk_req *q, void *st)
{
    cancel_state *s = st;
    const char *ven = q->msg.ven_id;
    char k1[VTN_KEY_MAX], k3[VTN_KEY_MAX], k4[VTN_KEY_MAX], k5[VTN_KEY_MAX];
    switch (s->stage) {
    case XOPT_START:
        if (!ven[0]) {
            wk_reply_oadr_error(q, WK_OADR_NOT_REGISTERED, "oadrCancelOpt without venID");
            return;
        }
        s->stage = XOPT_CHECKED;
        wk_ven_gate_pass(q, &s->gate, ven);
        if (!q->done &&
            ((s->rec = wk_cmd(q, "HGET", wk_key_venopts(k1, ven), q->msg.opt_id, NULL)) < 0 ||
             (s->memo = wk_cmd(q, "EXISTS", wk_key_venreq(k3, ven, q->rid), NULL)) < 0))
            wk_reply_no_room(q);
        return;
    case XOPT_CHECKED: {
        if (!wk_ven_gate_pass(q, &s->gate, ven))
            return;
        if (wk_rep_int(q, s->memo, 0) == 1) { /* a retry of a cancel that was made */
            cancel_answer(q);
            return;
        }
        const redisReply *r = wk_rep(q, s->rec);
        if (r == NULL || r->type != REDIS_REPLY_STRING) {
            wk_reply_oadr_error(q, WK_OADR_INVALID_ID, "optID %s is not an opt of venID %s",
                                q->msg.opt_id, ven);
            return;
        }
        json_t *rec = json_loadb(r->str, r->len, 0, NULL);
        char event[WK_ID_MAX + 1] = "";
        if (jstr(rec, "eventID"))
            snprintf(event, sizeof event, "%s", jstr(rec, "eventID"));
        json_decref(rec);
        wk_key_venopts(k1, ven);
        wk_key_venreq(k3, ven, q->rid);
        if (event[0])
            s->done = wk_eval(
                q, WK_SCRIPT_OPTCANCEL, 5, k1, VTN_KEY_OPTSCHED, k3, wk_key_event(k4, event),
                vtn_key_eventvens(k5, event, vtn_event_vens_shard(ven)), q->msg.opt_id, ven, NULL);
        else
            s->done = wk_eval(q, WK_SCRIPT_OPTCANCEL, 3, k1, VTN_KEY_OPTSCHED, k3, q->msg.opt_id,
                              ven, NULL);
        if (s->done < 0)
            wk_reply_no_room(q);
        s->stage = XOPT_DONE;
        return;
    }
    case XOPT_DONE:
        if (wk_rep_int(q, s->done, 0) != 1) {
            wk_reply_oadr_error(q, WK_OADR_INVALID_ID, "optID %s is not an opt of venID %s",
                                q->msg.opt_id, ven);
            return;
        }
        cancel_answer(q);
        return;
    }
}

const wk_handler wk_h_cancel_opt =
    WK_HANDLER("oadrCancelOpt", cancel_state, NULL, NULL, cancel_step);
