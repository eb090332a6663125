/* EiReport (docs/reports.md): the VEN's oadrRegisterReport and the VTN's
 * report requests, the VEN's answers (oadrRegisteredReport,
 * oadrCreatedReport, oadrCanceledReport) and its interval data
 * (oadrUpdateReport, stored once into the telemetry stream).
 *
 * The requests a registration makes follow the report request policy
 * chosen for the VEN (wk_report_policy_choose, read in the check's round).
 *
 * Every handler makes the registered-VEN check first; each writes what one
 * message changes in one script (repreg, repstate) or, for an update, two
 * in the same round: the telemetry script on the stream's slot and the
 * request's state on the VEN's. */
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

int wk_render_create_report(vtn_buf *b, const char *entry, size_t len, const char *ven_id)
{
    /* Q|<requestID>|<JSON array of report requests> */
    const char *f1 = entry + 2, *end = entry + len;
    const char *bar = memchr(f1, VTN_QUEUE_SEP, (size_t)(end - f1));
    if (bar == NULL || bar == f1 || (size_t)(bar - f1) > WK_ID_MAX)
        return -EINVAL;
    char rid[WK_ID_MAX + 1];
    memcpy(rid, f1, (size_t)(bar - f1));
    rid[bar - f1] = '\0';
    json_t *requests = json_loadb(bar + 1, (size_t)(end - bar - 1), 0, NULL);
    int rc = json_array_size(requests) ? wk_write_create_report(b, rid, ven_id, requests) : -EINVAL;
    json_decref(requests);
    return rc;
}

/* ---- oadrRegisterReport ---- */

enum regrep_stage { REGREP_START = 0, REGREP_CHECKED, REGREP_STORED };

typedef struct regrep_state {
    enum regrep_stage stage;
    wk_ven_gate gate;
    /* The policy's sources, read in the gate's round: the VEN's own, its
     * enrolments, the default and program policies. */
    wk_rh ven_policy, targets, policies;
    wk_rh stored;
    json_t *requests; /* owned: the VTN's requests for this registration */
    int in_reply;     /* the policy's deliverIn is "registered" */
    char source[WK_ID_MAX + 16];
} regrep_state;

static void regrep_fini(void *st)
{
    json_decref(((regrep_state *)st)->requests);
}

/* Queues the repreg script: the reports replace the VEN's earlier ones, the
 * requests are recorded and (delivery "poll") queued as oadrCreateReport. */
static int regrep_store(wk_req *q, regrep_state *s, const char *ven, int in_reply)
{
    char k1[VTN_KEY_MAX], k2[VTN_KEY_MAX], k3[VTN_KEY_MAX], k4[VTN_KEY_MAX];
    size_t n = json_array_size(s->requests);
    size_t argc = 10 + 3 * n;
    const char **argv = calloc(argc, sizeof *argv);
    char **owned = calloc(n + 2, sizeof *owned);
    char cnt[24], qrid[48];
    int rc = -ENOMEM;
    if (argv == NULL || owned == NULL)
        goto out;
    json_t *all = q->msg.reports ? q->msg.reports : json_array();
    owned[0] = json_dumps(all, JSON_COMPACT);
    if (all != q->msg.reports)
        json_decref(all);
    char *entry = NULL;
    if (n && !in_reply) {
        char *js = json_dumps(s->requests, JSON_COMPACT);
        snprintf(qrid, sizeof qrid, "crep-%s", q->rid);
        size_t el = js ? strlen(qrid) + strlen(js) + 4 : 0;
        entry = js ? malloc(el) : NULL;
        if (entry)
            snprintf(entry, el, "%c%c%s%c%s", VTN_QUEUE_KIND_CREATEREPORT, VTN_QUEUE_SEP, qrid,
                     VTN_QUEUE_SEP, js);
        free(js);
        if (entry == NULL)
            goto out;
    }
    owned[1] = entry;
    if (owned[0] == NULL)
        goto out;
    snprintf(cnt, sizeof cnt, "%zu", n);
    argc = 0;
    argv[argc++] = "EVALSHA";
    argv[argc++] = q->w->redis.sha[WK_SCRIPT_REPREG];
    argv[argc++] = "4";
    argv[argc++] = wk_key_venreports(k1, ven);
    argv[argc++] = wk_key_venrr(k2, ven);
    argv[argc++] = wk_key_venq(k3, ven);
    argv[argc++] = wk_key_venreq(k4, ven, q->rid);
    argv[argc++] = owned[0];
    argv[argc++] = entry ? entry : "";
    argv[argc++] = cnt;
    for (size_t i = 0; i < n; i++) {
        json_t *r = json_array_get(s->requests, i);
        owned[2 + i] = json_dumps(r, JSON_COMPACT);
        if (owned[2 + i] == NULL)
            goto out;
        argv[argc++] = jstr(r, "reportRequestID");
        argv[argc++] = jstr(r, "reportSpecifierID");
        argv[argc++] = owned[2 + i];
    }
    s->stored = wk_cmd_argv(q, (int)argc, argv, NULL);
    rc = s->stored < 0 ? s->stored : 0;
    if (rc == 0 && n) {
        /* The scheduler's overdue check watches them from now; an entry whose
         * record was not kept (a retry, the cap) is dropped at its first look. */
        char now[24];
        char(*members)[WK_REPORT_MEMBER_MAX] = calloc(n, sizeof *members);
        rc = -ENOMEM;
        if (members) {
            snprintf(now, sizeof now, "%lld", (long long)vtn_now_ms());
            argc = 0;
            argv[argc++] = "ZADD";
            argv[argc++] = VTN_KEY_REPORTS_CHECK;
            argv[argc++] = "NX";
            for (size_t i = 0; i < n; i++) {
                argv[argc++] = now;
                argv[argc++] = wk_report_index_member(
                    members[i], ven, jstr(json_array_get(s->requests, i), "reportRequestID"));
            }
            wk_rh h = wk_cmd_argv(q, (int)argc, argv, NULL);
            rc = h < 0 ? h : 0;
            free(members);
        }
    }
out:
    for (size_t i = 0; owned && i < n + 2; i++)
        free(owned[i]);
    free(owned);
    free(argv);
    return rc;
}

/* Queues the reads wk_report_policy_choose needs, in the gate's round. */
static int regrep_policy_plan(wk_req *q, regrep_state *s, const char *ven)
{
    char k[VTN_KEY_MAX];
    s->ven_policy = wk_cmd(q, "HGET", wk_key_ven(k, ven), VTN_F_VEN_REPORT_POLICY, NULL);
    s->targets = wk_cmd(q, "SMEMBERS", vtn_key_build(k, VTN_KEY_VENTARGETS, ven, NULL), NULL);
    s->policies = wk_cmd(q, "HGETALL", VTN_KEY_REPORTPOLICIES, NULL);
    return s->ven_policy < 0 || s->targets < 0 || s->policies < 0 ? -ENOBUFS : 0;
}

/* The chosen policy's requests into s->requests; 0 or -ENOMEM. */
static int regrep_policy(wk_req *q, regrep_state *s)
{
    const redisReply *h = wk_rep(q, s->policies), *v = wk_rep(q, s->ven_policy);
    json_t *stored = json_object(), *targets = wk_rep_strings(wk_rep(q, s->targets));
    for (size_t i = 0; stored && h && h->type == REDIS_REPLY_ARRAY && i + 1 < h->elements; i += 2)
        if (h->element[i]->type == REDIS_REPLY_STRING &&
            h->element[i + 1]->type == REDIS_REPLY_STRING)
            json_object_set_new(stored, h->element[i]->str,
                                json_stringn(h->element[i + 1]->str, h->element[i + 1]->len));
    char *vp = v && v->type == REDIS_REPLY_STRING ? strndup(v->str, v->len) : NULL;
    json_t *policy = stored
                         ? wk_report_policy_choose(vp, stored, targets, q->w->cfg.report_request_in,
                                                   s->source, sizeof s->source)
                         : NULL;
    s->requests =
        policy ? wk_report_policy_requests(policy, q->msg.reports, q->rid, vtn_now_ms()) : NULL;
    const char *in = json_string_value(json_object_get(policy, "deliverIn"));
    s->in_reply = in && strcmp(in, "registered") == 0;
    free(vp);
    json_decref(policy);
    json_decref(stored);
    json_decref(targets);
    return s->requests ? 0 : -ENOMEM;
}

static void regrep_step(wk_req *q, void *st)
{
    regrep_state *s = st;
    const char *ven = q->msg.ven_id;
    int in_reply = s->in_reply;
    switch (s->stage) {
    case REGREP_START:
        if (!ven[0]) {
            wk_reply_oadr_error(q, WK_OADR_NOT_REGISTERED, "oadrRegisterReport without venID");
            return;
        }
        s->stage = REGREP_CHECKED;
        wk_ven_gate_pass(q, &s->gate, ven);
        /* A gate that could not ask has answered already. */
        if (s->gate.rec >= 0 && regrep_policy_plan(q, s, ven) < 0)
            wk_reply_no_room(q);
        return;
    case REGREP_CHECKED: {
        if (!wk_ven_gate_pass(q, &s->gate, ven))
            return;
        if (regrep_policy(q, s) < 0) {
            wk_reply_internal(q, "out of memory");
            return;
        }
        in_reply = s->in_reply;
        int rc = regrep_store(q, s, ven, in_reply);
        if (rc < 0) {
            if (rc == -ENOMEM)
                wk_reply_internal(q, "out of memory");
            else
                wk_reply_no_room(q);
            return;
        }
        s->stage = REGREP_STORED;
        return;
    }
    case REGREP_STORED:
        vtn_info("reports_registered",
                 "req=%s ven=%s reports=%zu requests=%zu via=%s policy=\"%s\" retry=%d", q->rid,
                 ven, json_array_size(q->msg.reports), json_array_size(s->requests),
                 in_reply ? "registered" : "poll", s->source, wk_rep_int(q, s->stored, 1) == 0);
        for (size_t i = 0; i < json_array_size(s->requests); i++) {
            json_t *r = json_array_get(s->requests, i);
            const char *asked = jstr(r, "reportBackDurationAsked");
            if (asked)
                vtn_warn("report_back_raised",
                         "req=%s ven=%s rr=%s asked=%s raised_to=%s (the VEN's oadrMinPeriod)",
                         q->rid, ven, jstr(r, "reportRequestID"), asked,
                         jstr(r, "reportBackDuration"));
        }
        vtn_buf_reset(&q->body);
        if (wk_write_registered_report(&q->body, WK_OADR_OK, "OK", wk_reply_request_id(q), ven,
                                       in_reply ? s->requests : NULL) < 0) {
            wk_reply_internal(q, "cannot write oadrRegisteredReport");
            return;
        }
        wk_reply_body(q, 200, "application/xml");
        q->mcode = WK_OADR_OK;
        return;
    }
}

const wk_handler wk_h_register_report =
    WK_HANDLER("oadrRegisterReport", regrep_state, NULL, regrep_fini, regrep_step);

/* ---- oadrRegisteredReport (the VEN's answer to the VTN's METADATA
 * oadrRegisterReport): the report requests it carries are recorded; the VTN
 * offers no report, so it produces none. ---- */

enum ack_stage { ACK_START = 0, ACK_CHECKED, ACK_DONE };

typedef struct ack_state {
    enum ack_stage stage;
    wk_ven_gate gate;
} ack_state;

/* Queues what the acknowledgement records; 0 when nothing needs writing. */
typedef int (*ack_record_fn)(wk_req *q, const char *ven);

static int registered_record(wk_req *q, const char *ven)
{
    if (json_array_size(q->msg.report_requests) == 0)
        return 0;
    char k[VTN_KEY_MAX];
    char *js = json_dumps(q->msg.report_requests, JSON_COMPACT);
    if (js == NULL)
        return -ENOMEM;
    wk_rh h = wk_cmd(q, "SET", wk_key_venasked(k, ven), js, NULL);
    free(js);
    return h < 0 ? h : 1;
}

static int pending_record(wk_req *q, const char *ven, const char *what)
{
    char k[VTN_KEY_MAX], now[24];
    size_t n = json_array_size(q->msg.pending);
    const char **argv = calloc(6 + n, sizeof *argv);
    if (argv == NULL)
        return -ENOMEM;
    snprintf(now, sizeof now, "%lld", (long long)vtn_now_ms());
    int argc = 0;
    argv[argc++] = "EVALSHA";
    argv[argc++] = q->w->redis.sha[WK_SCRIPT_REPSTATE];
    argv[argc++] = "1";
    argv[argc++] = wk_key_venrr(k, ven);
    argv[argc++] = what;
    argv[argc++] = now;
    for (size_t i = 0; i < n; i++)
        argv[argc++] = json_string_value(json_array_get(q->msg.pending, i));
    wk_rh h = wk_cmd_argv(q, argc, argv, NULL);
    free(argv);
    return h < 0 ? h : 1;
}

static int created_record(wk_req *q, const char *ven)
{
    return pending_record(q, ven, "created");
}

static int canceled_record(wk_req *q, const char *ven)
{
    return pending_record(q, ven, "canceled");
}

static void ack_step(wk_req *q, ack_state *s, ack_record_fn record)
{
    const char *ven = q->msg.ven_id;
    switch (s->stage) {
    case ACK_START:
        if (!ven[0]) {
            wk_reply_oadr_error(q, WK_OADR_NOT_REGISTERED, "%s without venID",
                                wk_msg_name(q->msg.type));
            return;
        }
        s->stage = ACK_CHECKED;
        wk_ven_gate_pass(q, &s->gate, ven);
        return;
    case ACK_CHECKED: {
        if (!wk_ven_gate_pass(q, &s->gate, ven))
            return;
        int rc = record(q, ven);
        if (rc < 0) {
            wk_reply_internal(q, rc == -ENOMEM ? "out of memory" : "command buffer full");
            return;
        }
        s->stage = ACK_DONE;
        if (rc == 0)
            ack_step(q, s, record); /* nothing to write: answer now */
        return;
    }
    case ACK_DONE:
        vtn_info("report_ack", "req=%s ven=%s type=%s code=%d requests=%zu pending=%zu", q->rid,
                 ven, wk_msg_name(q->msg.type), q->msg.ei_response.code,
                 json_array_size(q->msg.report_requests), json_array_size(q->msg.pending));
        wk_reply_oadr_response(q, WK_OADR_OK, "OK", ven);
        return;
    }
}

static void registered_step(wk_req *q, void *st)
{
    ack_step(q, st, registered_record);
}

static void created_step(wk_req *q, void *st)
{
    ack_step(q, st, created_record);
}

static void canceled_step(wk_req *q, void *st)
{
    ack_step(q, st, canceled_record);
}

const wk_handler wk_h_registered_report =
    WK_HANDLER("oadrRegisteredReport", ack_state, NULL, NULL, registered_step);
const wk_handler wk_h_created_report =
    WK_HANDLER("oadrCreatedReport", ack_state, NULL, NULL, created_step);
const wk_handler wk_h_canceled_report =
    WK_HANDLER("oadrCanceledReport", ack_state, NULL, NULL, canceled_step);

/* ---- oadrUpdateReport ---- */

enum update_stage { UPDATE_START = 0, UPDATE_CHECKED, UPDATE_STORED };

typedef struct update_state {
    enum update_stage stage;
    wk_ven_gate gate;
    wk_rh rec[WK_REPORTS_MAX]; /* HGET venrr <reportRequestID>, per oadrReport */
    wk_rh stored;              /* the telemetry script */
    size_t points;             /* values in the message */
    /* The requests the VTN is cancelling among those the update cites: the
     * oadrUpdatedReport carries their oadrCancelReport. */
    json_t *cancel; /* owned: reportRequestIDs */
    char cancel_id[WK_ID_MAX + 1];
} update_state;

static void update_fini(void *st)
{
    json_decref(((update_state *)st)->cancel);
}

/* oadrUpdatedReport 200, with the oadrCancelReport of s->cancel if any. */
static void updated_reply(wk_req *q, update_state *s)
{
    const char *rid = wk_reply_request_id(q);
    vtn_buf_reset(&q->body);
    if (wk_write_updated_report(&q->body, WK_OADR_OK, "OK", rid, q->msg.ven_id,
                                json_array_size(s->cancel) ? s->cancel_id : NULL, s->cancel) < 0) {
        wk_reply_internal(q, "cannot write oadrUpdatedReport");
        return;
    }
    wk_reply_body(q, 200, "application/xml");
    q->mcode = WK_OADR_OK;
}

/* A request's record is usable for updates once sent (a request at a future
 * time is not before the scheduler queued it) and while not cancelled or
 * completed (its window, plus one back-interval, over). */
static int request_active(json_t *rec)
{
    const char *st = wk_report_request_state(rec, vtn_now_ms());
    if (json_object_get(rec, "sendAt") && !json_object_get(rec, "queuedAt"))
        return 0;
    return st && strcmp(st, "cancelled") != 0 && strcmp(st, "completed") != 0;
}

/* Notes a request being cancelled, once, for the reply's oadrCancelReport. */
static int update_note_cancel(update_state *s, json_t *rec, const char *rr)
{
    if (strcmp(jstr(rec, "state"), "cancelling") != 0)
        return 0;
    if (s->cancel == NULL && (s->cancel = json_array()) == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < json_array_size(s->cancel); i++)
        if (strcmp(json_string_value(json_array_get(s->cancel, i)), rr) == 0)
            return 0;
    if (!s->cancel_id[0])
        snprintf(s->cancel_id, sizeof s->cancel_id, "%s",
                 jstr(rec, "cancelRequestID") ? jstr(rec, "cancelRequestID") : rr);
    return json_array_append_new(s->cancel, json_string(rr));
}

static int request_has_rid(json_t *rec, const char *rid)
{
    json_t *rids = json_object_get(rec, "rIDs");
    for (size_t i = 0; i < json_array_size(rids); i++)
        if (rid && jstr(json_array_get(rids, i), "rID") &&
            strcmp(jstr(json_array_get(rids, i), "rID"), rid) == 0)
            return 1;
    return 0;
}

/* Checks every report against the request it cites: 0, the responseCode
 * with q->msg.desc filled, or -ENOMEM. Nothing is stored on a refusal.
 * Notes the requests being cancelled (s->cancel). */
static int update_check(wk_req *q, update_state *s, const char *ven)
{
    json_t *reports = q->msg.reports;
    for (size_t i = 0; i < json_array_size(reports); i++) {
        json_t *r = json_array_get(reports, i);
        const char *rr = jstr(r, "reportRequestID");
        char buf[8192];
        json_t *rec = NULL;
        if (wk_rep_str(wk_rep(q, s->rec[i]), buf, sizeof buf))
            rec = json_loads(buf, 0, NULL);
        int code = 0;
        if (rec == NULL) {
            code = WK_OADR_INVALID_ID;
            snprintf(q->msg.desc, sizeof q->msg.desc,
                     "reportRequestID %s is not a report request of this VTN to venID %s",
                     rr ? rr : "", ven);
        } else if (!request_active(rec)) {
            const char *st = wk_report_request_state(rec, vtn_now_ms());
            code = WK_OADR_INVALID_ID;
            snprintf(q->msg.desc, sizeof q->msg.desc, "report request %s is %s", rr,
                     st && strcmp(st, "requested") == 0 ? "not sent yet" : st);
        } else {
            if (update_note_cancel(s, rec, rr) < 0) {
                json_decref(rec);
                return -ENOMEM;
            }
            json_t *ivs = json_object_get(r, "intervals");
            for (size_t k = 0; !code && k < json_array_size(ivs); k++) {
                json_t *pl = json_object_get(json_array_get(ivs, k), "payloads");
                for (size_t j = 0; !code && j < json_array_size(pl); j++) {
                    json_t *p = json_array_get(pl, j);
                    if (!request_has_rid(rec, jstr(p, "rID"))) {
                        code = WK_OADR_INVALID_ID;
                        snprintf(q->msg.desc, sizeof q->msg.desc,
                                 "rID %s is not part of report request %s",
                                 jstr(p, "rID") ? jstr(p, "rID") : "", rr);
                    }
                }
            }
        }
        json_decref(rec);
        if (code)
            return code;
    }
    return 0;
}

/* The interval's start and duration in ms: the interval's, else the
 * report's (an interval without dtstart inherits the report's). 0 or -EINVAL. */
static int point_time(json_t *r, json_t *iv, int64_t *t, int64_t *d, char *why, size_t whylen)
{
    const char *ds = jstr(iv, "dtstart") ? jstr(iv, "dtstart") : jstr(r, "dtstart");
    const char *du = jstr(iv, "duration") ? jstr(iv, "duration") : jstr(r, "duration");
    *t = *d = 0;
    if (ds == NULL || wk_datetime_parse(ds, t) < 0) {
        snprintf(why, whylen, "interval dtstart %s is missing or not a UTC date-time",
                 ds ? ds : "");
        return -EINVAL;
    }
    if (du && wk_duration_parse(du, d) < 0) {
        snprintf(why, whylen, "interval duration %s is not a duration the VTN reads", du);
        return -EINVAL;
    }
    return 0;
}

/* s as a JSON string. The text comes from libxml2, so it is UTF-8: only
 * quotes, backslashes and control characters need escaping. */
static int json_str(vtn_buf *b, const char *s)
{
    int rc = vtn_buf_appends(b, "\"");
    for (const char *p = s; rc == 0 && *p; p++) {
        const char *run = p;
        while (*p && *p != '"' && *p != '\\' && (unsigned char)*p >= 0x20)
            p++;
        rc = vtn_buf_append(b, run, (size_t)(p - run));
        if (rc == 0 && *p)
            rc = *p == '"' || *p == '\\' ? vtn_buf_printf(b, "\\%c", *p)
                                         : vtn_buf_printf(b, "\\u%04x", (unsigned char)*p);
        if (*p == '\0')
            break;
    }
    return rc ? rc : vtn_buf_appends(b, "\"");
}

/* Appends one value as the stream keeps it: [rID, dtstart ms, duration ms,
 * value or status, quality?]. 0, -EINVAL with q->msg.desc, or -ENOMEM. */
static int point_pack(wk_req *q, vtn_buf *b, json_t *r, json_t *iv, json_t *p)
{
    json_t *status = json_object_get(p, "status");
    const char *rid = jstr(p, "rID") ? jstr(p, "rID") : "";
    int64_t t, d;
    if (point_time(r, iv, &t, &d, q->msg.desc, sizeof q->msg.desc) < 0)
        return -EINVAL;
    char *st = NULL;
    if (status) {
        st = json_dumps(status, JSON_COMPACT | JSON_ENCODE_ANY);
        if (st == NULL)
            return -ENOMEM;
        if (strlen(st) > WK_STATUS_MAX) {
            free(st);
            snprintf(q->msg.desc, sizeof q->msg.desc,
                     "an oadrPayloadResourceStatus is longer than %d bytes as JSON", WK_STATUS_MAX);
            return -EINVAL;
        }
    } else if (jstr(p, "value") == NULL) {
        snprintf(q->msg.desc, sizeof q->msg.desc,
                 "rID %s: a payload the VTN does not store (payloadFloat or "
                 "oadrPayloadResourceStatus)",
                 rid);
        return -EINVAL;
    }
    int rc = vtn_buf_appends(b, "[");
    rc = rc ? rc : json_str(b, rid);
    rc = rc ? rc : vtn_buf_printf(b, ",%lld,%lld,", (long long)t, (long long)d);
    rc = rc ? rc : st ? vtn_buf_appends(b, st) : json_str(b, jstr(p, "value"));
    if (rc == 0 && jstr(p, "dataQuality")) {
        rc = vtn_buf_appends(b, ",");
        rc = rc ? rc : json_str(b, jstr(p, "dataQuality"));
    }
    free(st);
    rc = rc ? rc : vtn_buf_appends(b, "]");
    return rc ? -ENOMEM : 0;
}

/* The values of one oadrReport packed as the stream entry's `i` field, a
 * JSON array written straight into b (jansson's pack and dump cost about as
 * much as all the rest of an update); *n its values. 0, -EINVAL with
 * q->msg.desc, or -ENOMEM. */
static int report_pack(wk_req *q, vtn_buf *b, json_t *r, size_t *n)
{
    json_t *ivs = json_object_get(r, "intervals");
    int rc = vtn_buf_appends(b, "[") ? -ENOMEM : 0;
    *n = 0;
    for (size_t v = 0; rc == 0 && v < json_array_size(ivs); v++) {
        json_t *iv = json_array_get(ivs, v), *pl = json_object_get(iv, "payloads");
        for (size_t j = 0; rc == 0 && j < json_array_size(pl); j++) {
            if (*n && vtn_buf_appends(b, ",") < 0)
                return -ENOMEM;
            rc = point_pack(q, b, r, iv, json_array_get(pl, j));
            *n += rc == 0;
        }
    }
    if (rc == 0 && vtn_buf_append(b, "]", 2) < 0) /* with its NUL: argv takes it as a string */
        rc = -ENOMEM;
    return rc;
}

/* Queues the telemetry script for every report of the message and the
 * requests' state. 0, -EINVAL (q->msg.desc says why), or another error. */
static int update_store(wk_req *q, update_state *s, const char *ven)
{
    json_t *reports = q->msg.reports;
    size_t nrep = json_array_size(reports);
    size_t cap = 8 + nrep * 4; /* see the argv below */
    const char **argv = calloc(cap, sizeof *argv);
    char(*members)[WK_REPORT_MEMBER_MAX] = calloc(nrep ? nrep : 1, sizeof *members);
    vtn_buf *packed = calloc(nrep ? nrep : 1, sizeof *packed);
    char(*seen)[VTN_KEY_MAX] = calloc(nrep ? nrep : 1, sizeof *seen);
    char(*counts)[16] = calloc(nrep ? nrep : 1, sizeof *counts);
    char stream[VTN_KEY_MAX], maxlen[24], minid[32] = "", k[VTN_KEY_MAX];
    int rc = -ENOMEM;
    size_t argc = 0;
    if (argv == NULL || packed == NULL || seen == NULL || counts == NULL || members == NULL)
        goto out;
    snprintf(maxlen, sizeof maxlen, "%lld", q->w->cfg.telemetry_maxlen);
    if (q->w->cfg.telemetry_keep_ms > 0)
        snprintf(minid, sizeof minid, "%lld",
                 (long long)(vtn_now_ms() - q->w->cfg.telemetry_keep_ms));
    argv[argc++] = "EVALSHA";
    argv[argc++] = q->w->redis.sha[WK_SCRIPT_TELEMETRY];
    char nk[16];
    snprintf(nk, sizeof nk, "%zu", 1 + nrep);
    argv[argc++] = nk;
    argv[argc++] = vtn_key_build(stream, VTN_KEY_TELEMETRY, NULL, NULL);
    for (size_t i = 0; i < nrep; i++) {
        /* What makes a resend the same report: its request, eiReportID and createdDateTime. */
        json_t *r = json_array_get(reports, i);
        char id[3 * WK_ID_MAX + 8];
        snprintf(id, sizeof id, "%s:%s:%s", jstr(r, "reportRequestID"),
                 jstr(r, "eiReportID") ? jstr(r, "eiReportID") : "",
                 jstr(r, "createdDateTime") ? jstr(r, "createdDateTime") : "");
        argv[argc++] = vtn_key_build(seen[i], VTN_KEY_TELEMETRY_SEEN, ven, id);
    }
    argv[argc++] = maxlen;
    argv[argc++] = minid;
    argv[argc++] = ven;
    s->points = 0;
    for (size_t i = 0; i < nrep; i++) {
        json_t *r = json_array_get(reports, i);
        size_t n;
        vtn_buf_init(&packed[i], (size_t)4 << 20); /* a message is at most 4 MiB of XML */
        rc = report_pack(q, &packed[i], r, &n);
        if (rc < 0)
            goto out;
        rc = -ENOMEM;
        snprintf(counts[i], sizeof counts[i], "%zu", n);
        s->points += n;
        argv[argc++] = jstr(r, "reportRequestID");
        argv[argc++] = counts[i];
        argv[argc++] = packed[i].data;
    }
    s->stored = wk_cmd_argv(q, (int)argc, argv, NULL);
    rc = s->stored < 0 ? s->stored : 0;
    if (rc == 0) {
        /* The requests' state: active, last update now (the VEN's slot). */
        char now[24];
        snprintf(now, sizeof now, "%lld", (long long)vtn_now_ms());
        argc = 0;
        argv[argc++] = "EVALSHA";
        argv[argc++] = q->w->redis.sha[WK_SCRIPT_REPSTATE];
        argv[argc++] = "1";
        argv[argc++] = wk_key_venrr(k, ven);
        argv[argc++] = "update";
        argv[argc++] = now;
        for (size_t i = 0; i < nrep; i++)
            argv[argc++] = jstr(json_array_get(reports, i), "reportRequestID");
        wk_rh h = wk_cmd_argv(q, (int)argc, argv, NULL);
        rc = h < 0 ? h : 0;
    }
    if (rc == 0) {
        /* Out of the overdue set, after the record says active again (the
         * scheduler writes the two the other way round: docs/reports.md). */
        argc = 0;
        argv[argc++] = "ZREM";
        argv[argc++] = VTN_KEY_REPORTS_OVERDUE;
        for (size_t i = 0; i < nrep; i++) {
            argv[argc++] = wk_report_index_member(
                members[i], ven, jstr(json_array_get(reports, i), "reportRequestID"));
        }
        wk_rh h = wk_cmd_argv(q, (int)argc, argv, NULL);
        rc = h < 0 ? h : 0;
    }
out:
    for (size_t i = 0; packed && i < nrep; i++)
        vtn_buf_free(&packed[i]);
    free(packed);
    free(seen);
    free(counts);
    free(members);
    free(argv);
    return rc;
}

static void update_step(wk_req *q, void *st)
{
    update_state *s = st;
    const char *ven = q->msg.ven_id;
    char k[VTN_KEY_MAX];
    json_t *reports = q->msg.reports;
    switch (s->stage) {
    case UPDATE_START:
        if (!ven[0]) {
            wk_reply_oadr_error(q, WK_OADR_NOT_REGISTERED, "oadrUpdateReport without venID");
            return;
        }
        wk_ven_gate_pass(q, &s->gate, ven);
        for (size_t i = 0; i < json_array_size(reports) && !q->done; i++)
            if ((s->rec[i] = wk_cmd(q, "HGET", wk_key_venrr(k, ven),
                                    jstr(json_array_get(reports, i), "reportRequestID"), NULL)) < 0)
                wk_reply_no_room(q);
        s->stage = UPDATE_CHECKED;
        return;
    case UPDATE_CHECKED: {
        if (!wk_ven_gate_pass(q, &s->gate, ven))
            return;
        int code = update_check(q, s, ven);
        if (code == -ENOMEM) {
            wk_reply_internal(q, "out of memory");
            return;
        }
        if (code) {
            char d[WK_DESC_MAX + 1];
            snprintf(d, sizeof d, "%s", q->msg.desc);
            wk_reply_oadr_error(q, code, "%s", d);
            return;
        }
        if (json_array_size(reports) == 0) {
            updated_reply(q, s);
            return;
        }
        int rc = update_store(q, s, ven);
        if (rc == -EINVAL) {
            char d[WK_DESC_MAX + 1];
            snprintf(d, sizeof d, "%s", q->msg.desc);
            wk_reply_oadr_error(q, WK_OADR_INVALID_DATA, "%s", d);
            return;
        }
        if (rc < 0) {
            wk_reply_internal(q, rc == -ENOMEM ? "out of memory" : "command buffer full");
            return;
        }
        s->stage = UPDATE_STORED;
        return;
    }
    case UPDATE_STORED: {
        const redisReply *r = wk_rep(q, s->stored);
        long long added = 0;
        for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i < r->elements; i++)
            if (r->element[i]->type == REDIS_REPLY_INTEGER)
                added += r->element[i]->integer;
        vtn_info("report_update", "req=%s ven=%s reports=%zu values=%zu stored=%lld", q->rid, ven,
                 json_array_size(reports), s->points, added);
        updated_reply(q, s);
        return;
    }
    }
}

const wk_handler wk_h_update_report =
    WK_HANDLER("oadrUpdateReport", update_state, NULL, update_fini, update_step);
