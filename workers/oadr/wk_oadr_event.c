/* EiEvent: the events that apply to a VEN, as oadrDistributeEvent.
 *
 * An event change writes nothing per VEN: it bumps vtn:events:ver (one
 * INCR). Each VEN record keeps what it was last sent (ev: the version, eh:
 * a hash of its set, en: the earliest end among its events). A poll reads
 * the version with the record; only when it moved, or an event of the VEN's
 * set has ended, does the poll read the events (wk_evset) and compute the
 * VEN's set: when its hash is the one sent last, the VEN gets nothing (the
 * change was about others) and its cursor moves on; else it gets an
 * oadrDistributeEvent with every event that applies to it (an event
 * missing from it is implicitly cancelled for the VEN). oadrRequestEvent
 * answers the set whatever was sent before. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vtn/hex.h"
#include "vtn/id.h"
#include "vtn/keys.h"
#include "vtn/log.h"
#include "vtn/time.h"
#include "wk_oadr.h"
#include "wk_ven.h"

wk_rh wk_evset_start(wk_req *q, wk_evset *e, const char *ven, long long version)
{
    char max[16], after[24], k[VTN_KEY_MAX];
    e->attrs = wk_cmd(q, "SMEMBERS", vtn_key_build(k, VTN_KEY_VENTARGETS, ven, NULL), NULL);
    snprintf(max, sizeof max, "%d", WK_EVENTS_SCAN_MAX);
    /* Only the events that have not ended, earliest end first: the ended
     * ones wait in the list for the retention and would drop out anyway. */
    snprintf(after, sizeof after, "(%lld", (long long)vtn_now_ms());
    /* A version read before the list is never newer than it: the worst is
     * one more recompute on the next poll. */
    e->version = version;
    e->ver = version < 0 ? wk_cmd(q, "GET", VTN_KEY_EVENTSVER, NULL) : 0;
    e->list =
        wk_cmd(q, "ZRANGE", VTN_KEY_EVENTSEND, after, "+inf", "BYSCORE", "LIMIT", "0", max, NULL);
    return e->ver < 0 ? e->ver : e->attrs < 0 ? e->attrs : e->list;
}

int wk_evset_fetch(wk_req *q, wk_evset *e, const char *ven)
{
    char k[VTN_KEY_MAX];
    const unsigned shard = vtn_event_vens_shard(ven); /* its field's shard in every event */
    const redisReply *r = wk_rep(q, e->list);
    char v[24];
    /* Read now: a handle reads its own round only. */
    if (e->version < 0)
        e->version = wk_rep_str(wk_rep(q, e->ver), v, sizeof v) ? atoll(v) : 0;
    e->ids = json_array();
    /* An object keyed by member: each target is one lookup. */
    const redisReply *a = wk_rep(q, e->attrs);
    e->ven_attrs = json_object();
    if (e->ids == NULL || e->ven_attrs == NULL)
        return -ENOMEM;
    for (size_t i = 0; a && a->type == REDIS_REPLY_ARRAY && i < a->elements; i++)
        if (a->element[i]->type == REDIS_REPLY_STRING)
            json_object_set_new(e->ven_attrs, a->element[i]->str, json_true());
    for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        char id[WK_ID_MAX + 1];
        if (!wk_rep_str(r->element[i], id, sizeof id))
            continue;
        wk_rh h = wk_cmd(q, "HGETALL", wk_key_event(k, id), NULL);
        /* The VEN's answer to it, for responseRequired=always. */
        wk_rh a = wk_cmd(q, "HGET", vtn_key_eventvens(k, id, shard), ven, NULL);
        if (h < 0 || a < 0)
            return h < 0 ? h : a;
        if (e->n++ == 0)
            e->first = h; /* handles of one round follow each other: record, answer, ... */
        json_array_append_new(e->ids, json_string(id));
    }
    return e->n;
}

int wk_event_applies(json_t *ev, const char *ven, json_t *attrs)
{
    static const struct {
        const char *list, *prefix;
    } kinds[] = {
        {"groupID", VTN_TARGET_GROUP},
        {"resourceID", VTN_TARGET_RESOURCE},
        {"partyID", VTN_TARGET_PARTY},
    };
    char m[VTN_KEY_MAX];
    json_t *targets = json_object_get(ev, "targets");
    json_t *vens = json_object_get(targets, "venID");
    if (wk_json_list_has(vens, ven))
        return 1;
    size_t named = json_array_size(vens);
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        json_t *list = json_object_get(targets, kinds[k].list);
        named += json_array_size(list);
        for (size_t i = 0; i < json_array_size(list); i++) {
            const char *id = json_string_value(json_array_get(list, i));
            if (id && snprintf(m, sizeof m, "%s%s", kinds[k].prefix, id) > 0 &&
                json_object_get(attrs, m))
                return 1;
        }
    }
    if (named > 0)
        return 0;
    /* No targets: the whole program, i.e. the VENs enrolled in it. */
    const char *program = json_string_value(json_object_get(ev, "programID"));
    snprintf(m, sizeof m, "%s%s", VTN_TARGET_PROGRAM, program ? program : "");
    return program && program[0] && json_object_get(attrs, m) != NULL;
}

typedef struct ranked {
    json_t *ev;
    int active;
    unsigned long long prio; /* 1 is the highest; 0 (none) after every number */
    int64_t start;
} ranked;

/* Active events first, then by priority, then by start (the profile's
 * order), then by eventID so that the order (and the set's hash) is stable. */
static int by_rank(const void *a, const void *b)
{
    const ranked *x = a, *y = b;
    if (x->active != y->active)
        return y->active - x->active;
    if (x->prio != y->prio)
        return x->prio < y->prio ? -1 : 1;
    if (x->start != y->start)
        return x->start < y->start ? -1 : 1;
    return strcmp(json_string_value(json_object_get(x->ev, "eventID")),
                  json_string_value(json_object_get(y->ev, "eventID")));
}

int wk_evset_finish(wk_req *q, wk_evset *e, const char *ven, int64_t now)
{
    ranked *r = calloc((size_t)(e->n ? e->n : 1), sizeof *r);
    if (r == NULL)
        return -ENOMEM;
    int n = 0;
    e->next_end = 0;
    e->awaiting = 0;
    json_decref(e->fresh);
    if ((e->fresh = json_object()) == NULL) {
        free(r);
        return -ENOMEM;
    }
    for (int i = 0; i < e->n; i++) {
        const redisReply *h = wk_rep(q, e->first + 2 * i);
        const redisReply *answer = wk_rep(q, e->first + 2 * i + 1);
        int status = 0;
        /* Shared with the worker's cache: only read from here on. */
        json_t *ev = wk_event_view(q->w, json_string_value(json_array_get(e->ids, (size_t)i)), h,
                                   now, &status);
        if (ev == NULL)
            continue;
        /* A completed event (cancelled ones too, once past their end) drops out. */
        int64_t end = wk_hfield_int(h, VTN_F_EVENT_END);
        if (now >= end || !wk_event_applies(ev, ven, e->ven_attrs)) {
            json_decref(ev);
            continue;
        }
        /* The VEN's field: "<received mn> <answered mn> ...", "-" for not yet. */
        char a[128], recv[24] = "-", ans[24] = "-";
        if (wk_rep_str(answer, a, sizeof a))
            sscanf(a, "%23s %23s", recv, ans);
        long long mn = json_integer_value(json_object_get(ev, "modificationNumber"));
        /* Unanswered (or answered for an older modificationNumber) and required. */
        const char *rr = json_string_value(json_object_get(ev, "responseRequired"));
        if ((rr == NULL || strcmp(rr, "always") == 0) && /* the profile's default */
            (ans[0] == '-' || atoll(ans) != mn))
            e->awaiting++;
        /* Not received at this modificationNumber: the participation records it once sent. */
        if ((recv[0] == '-' || atoll(recv) != mn) &&
            json_object_set_new(e->fresh, json_string_value(json_object_get(ev, "eventID")),
                                json_integer(mn)) < 0) {
            json_decref(ev);
            free(r);
            return -ENOMEM;
        }
        long long prio = json_integer_value(json_object_get(ev, "priority"));
        r[n++] = (ranked){ev, status == WK_EVENT_ACTIVE,
                          prio > 0 ? (unsigned long long)prio : 1ULL << 40,
                          wk_hfield_int(h, VTN_F_EVENT_START)};
        if (e->next_end == 0 || end < e->next_end)
            e->next_end = end;
    }
    qsort(r, (size_t)n, sizeof *r, by_rank);
    e->events = json_array();
    uint64_t hash = VTN_FNV64_INIT; /* the hash only tells "same as last sent" */
    for (int i = 0; i < n; i++) {
        /* The eventStatus is in the hash: a time-driven change (far, near,
         * active) is sent again though the modificationNumber stays. */
        char mn[48];
        snprintf(mn, sizeof mn, ":%lld:%s;",
                 (long long)json_integer_value(json_object_get(r[i].ev, "modificationNumber")),
                 json_string_value(json_object_get(r[i].ev, "eventStatus")));
        hash = vtn_fnv1a64(
            vtn_fnv1a64(hash, json_string_value(json_object_get(r[i].ev, "eventID"))), mn);
        json_array_append_new(e->events, r[i].ev);
    }
    free(r);
    /* The empty set hashes to "": what a VEN that never received anything has. */
    if (n == 0)
        e->hash[0] = '\0';
    else
        vtn_hex_u64(hash, e->hash);
    return e->events ? n : -ENOMEM;
}

wk_rh wk_evset_record(wk_req *q, const wk_evset *e, const char *ven, int sent)
{
    /* EVALSHA sha nkeys, the record, an event's two keys each; 5 args, an mn each. */
    size_t k = sent ? json_object_size(e->fresh) : 0, argc = 0;
    const char **argv = calloc(9 + 3 * k, sizeof *argv);
    char(*keys)[VTN_KEY_MAX] = calloc(1 + 2 * k, sizeof *keys);
    char(*mns)[24] = calloc(k ? k : 1, sizeof *mns);
    char nkeys[16], v[24], end[24];
    wk_rh h = -ENOMEM;
    if (argv == NULL || keys == NULL || mns == NULL)
        goto out;
    snprintf(nkeys, sizeof nkeys, "%zu", 1 + 2 * k);
    snprintf(v, sizeof v, "%lld", e->version);
    snprintf(end, sizeof end, "%lld", (long long)e->next_end);
    argv[argc++] = "EVALSHA";
    argv[argc++] = q->w->redis.sha[WK_SCRIPT_EVSENT];
    argv[argc++] = nkeys;
    argv[argc++] = wk_key_ven(keys[0], ven);
    const char *id;
    json_t *mn;
    size_t i = 0;
    json_object_foreach(e->fresh, id, mn)
    {
        if (i == k)
            break;
        argv[argc++] = wk_key_event(keys[1 + 2 * i], id);
        argv[argc++] = vtn_key_eventvens(keys[2 + 2 * i], id, vtn_event_vens_shard(ven));
        snprintf(mns[i], sizeof mns[i], "%lld", (long long)json_integer_value(mn));
        i++;
    }
    argv[argc++] = v;
    argv[argc++] = e->hash;
    argv[argc++] = end;
    argv[argc++] = e->awaiting ? "1" : "0";
    argv[argc++] = ven;
    for (size_t j = 0; j < i; j++)
        argv[argc++] = mns[j];
    h = wk_cmd_argv(q, (int)argc, argv, NULL);
out:
    free(argv);
    free(keys);
    free(mns);
    return h;
}

void wk_evset_clear(wk_evset *e)
{
    json_decref(e->ids);
    json_decref(e->events);
    json_decref(e->ven_attrs);
    json_decref(e->fresh);
    e->ids = e->events = e->ven_attrs = e->fresh = NULL;
}

int wk_evset_write(wk_req *q, wk_evset *e, const char *request_id, const char *ven, int limit)
{
    json_t *send = e->events;
    if (limit > 0 && json_array_size(e->events) > (size_t)limit) {
        send = json_array();
        for (int i = 0; i < limit; i++)
            json_array_append(send, json_array_get(e->events, (size_t)i));
    }
    vtn_buf_reset(&q->body);
    int rc = wk_write_distribute_event(&q->body, request_id, q->w->cfg.vtn_id, ven, send);
    if (send != e->events)
        json_decref(send);
    return rc;
}

/* ---- oadrRequestEvent ---- */

enum request_stage { REQ_START = 0, REQ_LIST, REQ_RECORDS, REQ_SENT };

typedef struct request_state {
    enum request_stage stage;
    wk_ven_gate gate;
    wk_evset set;
    int complete; /* the whole set went out (no replyLimit cut): the cursor moves */
} request_state;

static void request_fini(void *st)
{
    wk_evset_clear(&((request_state *)st)->set);
}

static void request_answer(wk_req *q, request_state *s, const char *ven)
{
    if (wk_evset_finish(q, &s->set, ven, vtn_now_ms()) < 0) {
        wk_reply_internal(q, "out of memory");
        return;
    }
    int limit = q->msg.reply_limit;
    s->complete = limit == 0 || json_array_size(s->set.events) <= (size_t)limit;
    if (wk_evset_write(q, &s->set, wk_reply_request_id(q), ven, limit) < 0) {
        wk_reply_internal(q, "cannot write oadrDistributeEvent");
        return;
    }
    s->stage = REQ_SENT;
    if (!s->complete) {
        wk_reply_body(q, 200, "application/xml");
        q->mcode = WK_OADR_OK;
        return;
    }
    /* The VEN has its whole set now: its next poll has nothing new to send. */
    if (wk_evset_record(q, &s->set, ven, 1) < 0)
        wk_reply_no_room(q);
}

static void request_step(wk_req *q, void *st)
{
    request_state *s = st;
    const char *ven = q->msg.ven_id;
    switch (s->stage) {
    case REQ_START:
        if (!ven[0]) {
            wk_reply_oadr_error(q, WK_OADR_NOT_REGISTERED, "oadrRequestEvent without venID");
            return;
        }
        /* The events are read in the same round as the registered-VEN check. */
        wk_ven_gate_pass(q, &s->gate, ven);
        if (!q->done && wk_evset_start(q, &s->set, ven, -1) < 0)
            wk_reply_no_room(q);
        s->stage = REQ_LIST;
        return;
    case REQ_LIST: {
        if (!wk_ven_gate_pass(q, &s->gate, ven))
            return;
        int n = wk_evset_fetch(q, &s->set, ven);
        if (n < 0) {
            wk_reply_no_room(q);
            return;
        }
        s->stage = REQ_RECORDS;
        if (n == 0)
            request_answer(q, s, ven);
        return;
    }
    case REQ_RECORDS:
        request_answer(q, s, ven);
        return;
    case REQ_SENT:
        vtn_info("events_requested", "req=%s ven=%s events=%zu", q->rid, ven,
                 json_array_size(s->set.events));
        wk_reply_body(q, 200, "application/xml");
        q->mcode = WK_OADR_OK;
        return;
    }
}

const wk_handler wk_h_request_event =
    WK_HANDLER("oadrRequestEvent", request_state, NULL, request_fini, request_step);

/* ---- oadrCreatedEvent ---- */

/* Each eventResponse names an event by eventID and the modificationNumber
 * the VEN answers: an unknown event is 452 (invalid ID), an answer to
 * another modificationNumber than the current one 450 (out of sequence).
 * Valid answers are recorded (evopt script) even when another one of the
 * same message is refused; the oadrResponse carries the first refusal. */

enum created_stage { CREATED_START = 0, CREATED_CHECKED, CREATED_DONE };

typedef struct created_state {
    enum created_stage stage;
    wk_ven_gate gate;
    wk_rh rec[WK_EVENT_RESPONSES_MAX]; /* HMGET event mn */
    int code;
    char desc[WK_DESC_MAX + 1];
    int recorded;
} created_state;

/* Keeps the first refusal of a message: the one its oadrResponse answers. */
static int created_refuse(created_state *s, int code)
{
    if (s->code != WK_OADR_OK)
        return 0;
    s->code = code;
    return 1;
}

static void created_step(wk_req *q, void *st)
{
    created_state *s = st;
    const wk_msg *m = &q->msg;
    const char *ven = m->ven_id;
    char k1[VTN_KEY_MAX], k2[VTN_KEY_MAX];
    switch (s->stage) {
    case CREATED_START:
        if (!ven[0]) {
            wk_reply_oadr_error(q, WK_OADR_NOT_REGISTERED, "oadrCreatedEvent without venID");
            return;
        }
        wk_ven_gate_pass(q, &s->gate, ven);
        for (int i = 0; i < m->n_event_responses && !q->done; i++)
            if ((s->rec[i] = wk_cmd(q, "HGET", wk_key_event(k1, m->event_responses[i].event_id),
                                    VTN_F_EVENT_MODNUM, NULL)) < 0)
                wk_reply_no_room(q);
        s->stage = CREATED_CHECKED;
        return;
    case CREATED_CHECKED: {
        if (!wk_ven_gate_pass(q, &s->gate, ven))
            return;
        char now[24], code[8], mn[24];
        snprintf(now, sizeof now, "%lld", (long long)vtn_now_ms());
        s->code = WK_OADR_OK;
        for (int i = 0; i < m->n_event_responses; i++) {
            const wk_event_response *er = &m->event_responses[i];
            char cur[24];
            if (!wk_rep_str(wk_rep(q, s->rec[i]), cur, sizeof cur)) {
                if (created_refuse(s, WK_OADR_INVALID_ID))
                    snprintf(s->desc, sizeof s->desc, "eventID %s is not an event of this VTN",
                             er->event_id);
                continue;
            }
            if (atoll(cur) != er->mod_number) {
                if (created_refuse(s, WK_OADR_OUT_OF_SEQUENCE))
                    snprintf(s->desc, sizeof s->desc,
                             "eventID %s: modificationNumber %lld is not the current one (%lld)",
                             er->event_id, er->mod_number, atoll(cur));
                continue;
            }
            snprintf(code, sizeof code, "%d", er->code);
            snprintf(mn, sizeof mn, "%lld", er->mod_number);
            if (wk_eval(q, WK_SCRIPT_EVOPT, 2, wk_key_event(k1, er->event_id),
                        vtn_key_eventvens(k2, er->event_id, vtn_event_vens_shard(ven)), ven, mn,
                        er->opt, code, now, NULL) < 0) {
                wk_reply_no_room(q);
                return;
            }
            s->recorded++;
        }
        s->stage = CREATED_DONE;
        if (s->recorded == 0)
            created_step(q, st); /* nothing to write: answer now */
        return;
    }
    case CREATED_DONE:
        vtn_info("event_answered", "req=%s ven=%s responses=%d recorded=%d code=%d", q->rid, ven,
                 m->n_event_responses, s->recorded, s->code);
        wk_reply_oadr_response(q, s->code, s->code == WK_OADR_OK ? "OK" : s->desc, ven);
        return;
    }
}

const wk_handler wk_h_created_event =
    WK_HANDLER("oadrCreatedEvent", created_state, NULL, NULL, created_step);
