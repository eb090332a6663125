/* The reports API (docs/reports.md, docs/openapi.yaml): a VEN's registered
 * reports and the VTN's requests with their states, a report requested now
 * (an oadrCreateReport on the VEN's next poll), a request cancelled (an
 * oadrCancelReport on the next poll), and the received interval data read
 * back from the telemetry stream by VEN, request, rID and time; the report
 * request policies (the default, a program's, a VEN's). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vtn/id.h"
#include "vtn/keys.h"
#include "vtn/log.h"
#include "vtn/time.h"
#include "wk_api_internal.h"

/* Interval data: values in one page (default, most) and stream entries one
 * request reads at most, whatever its filters (the page then ends early
 * with a next_cursor). */
#define REPORT_DATA_LIMIT_DEFAULT 1000
#define REPORT_DATA_LIMIT_MAX 5000
#define REPORT_DATA_SCAN_MAX 5000
/* Bytes of field values one page holds at most: a page of long ids and
 * statuses ends early (escaped or quoted, it stays under WK_REPLY_MAX). */
#define REPORT_DATA_BYTES_MAX (WK_REPLY_MAX / 8)

static const char *jstr(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

/* ---- GET /api/v1/vens/{venID}/reports ---- */

typedef struct ven_reports_state {
    int stage;
    wk_rh ven, reports, requests;
} ven_reports_state;

/* requestedAt order, then reportRequestID: the order they were made. */
static int request_before(json_t *a, json_t *b)
{
    json_int_t ta = json_integer_value(json_object_get(a, "requestedAt"));
    json_int_t tb = json_integer_value(json_object_get(b, "requestedAt"));
    if (ta != tb)
        return ta < tb;
    return strcmp(jstr(a, "reportRequestID") ? jstr(a, "reportRequestID") : "",
                  jstr(b, "reportRequestID") ? jstr(b, "reportRequestID") : "") < 0;
}

/* venrr's HGETALL as a JSON array of records, each with its state as read
 * now, and the number of records in each state into counts; NULL when out
 * of memory. At most VTN_REPORT_REQUESTS_MAX records. */
static json_t *requests_of(const redisReply *h, int64_t now, json_t *counts)
{
    json_t *out = json_array();
    for (size_t i = 0; out && h && h->type == REDIS_REPLY_ARRAY && i + 1 < h->elements; i += 2) {
        const redisReply *v = h->element[i + 1];
        json_t *rec = v->type == REDIS_REPLY_STRING ? json_loadb(v->str, v->len, 0, NULL) : NULL;
        if (!json_is_object(rec)) {
            json_decref(rec);
            continue;
        }
        /* Counted first: st may be the record's own "state" string, which
         * setting the state frees. */
        const char *st = wk_report_request_state(rec, now);
        json_int_t had = st ? json_integer_value(json_object_get(counts, st)) : 0;
        if (st && (json_object_set_new(counts, st, json_integer(had + 1)) < 0 ||
                   json_object_set_new(rec, "state", json_string(st)) < 0)) {
            json_decref(rec);
            json_decref(out);
            return NULL;
        }
        /* Insertion into order: the list is short (a VEN keeps at most 64). */
        size_t at = json_array_size(out);
        while (at > 0 && request_before(rec, json_array_get(out, at - 1)))
            at--;
        if (json_array_insert_new(out, at, rec) < 0) {
            json_decref(out);
            return NULL;
        }
    }
    return out;
}

static void api_ven_reports_get(wk_req *q, void *st)
{
    ven_reports_state *s = st;
    const char *ven = q->path_id;
    char k[VTN_KEY_MAX];
    if (s->stage == 0) {
        s->stage = 1;
        int bad = (s->ven = wk_cmd(q, "EXISTS", wk_key_ven(k, ven), NULL)) < 0;
        bad |= (s->reports = wk_cmd(q, "GET", wk_key_venreports(k, ven), NULL)) < 0;
        bad |= (s->requests = wk_cmd(q, "HGETALL", wk_key_venrr(k, ven), NULL)) < 0;
        if (bad)
            wk_reply_no_room(q);
        return;
    }
    if (wk_rep_int(q, s->ven, 0) == 0) {
        wk_reply_json_error(q, 404, "no VEN with venID %s", ven);
        return;
    }
    const redisReply *r = wk_rep(q, s->reports);
    json_t *reports =
        r && r->type == REDIS_REPLY_STRING ? json_loadb(r->str, r->len, 0, NULL) : json_array();
    /* Every state a request can be in, so a client reads a count without a default. */
    json_t *counts =
        json_pack("{s:i, s:i, s:i, s:i, s:i, s:i, s:i}", "requested", 0, "created", 0, "active", 0,
                  "overdue", 0, "cancelling", 0, "cancelled", 0, "completed", 0);
    json_t *requests = counts ? requests_of(wk_rep(q, s->requests), vtn_now_ms(), counts) : NULL;
    if (reports == NULL || requests == NULL) {
        json_decref(reports);
        json_decref(requests);
        json_decref(counts);
        wk_reply_internal(q, "out of memory or an unreadable venreports record");
        return;
    }
    wk_reply_json(q, 200,
                  json_pack("{s:s, s:o, s:o, s:o}", "venID", ven, "reports", reports, "requests",
                            requests, "counts", counts));
}

/* ---- POST /api/v1/vens/{venID}/reports ---- */

/* What the body asks for. */
typedef struct report_ask {
    char spec[WK_ID_MAX + 1];
    json_t *rids; /* owned: the rIDs asked for (strings), NULL: all */
    char granularity[32], back[32], duration[32];
    int64_t duration_ms;
    int64_t send_at; /* when the VTN sends it (ms); 0 or past: now */
} report_ask;

static int duration_field(const char *key, json_t *v, char *out, size_t outlen, int64_t *ms,
                          char *err, size_t errlen)
{
    const char *s = json_string_value(v);
    int64_t got = 0;
    if (s == NULL || strlen(s) >= outlen || (s[0] && wk_duration_parse(s, &got) < 0)) {
        snprintf(err, errlen,
                 "%s must be an ISO 8601 duration such as PT1M or PT15M (no years, months or "
                 "fractions)",
                 key);
        return -EINVAL;
    }
    memcpy(out, s, strlen(s) + 1);
    if (ms && s[0] && got <= 0) {
        snprintf(err, errlen, "%s must be longer than 0 (or empty: ongoing)", key);
        return -EINVAL;
    }
    if (ms)
        *ms = got;
    return 0;
}

static int ask_field(void *ud, int i, json_t *v, char *err, size_t errlen)
{
    report_ask *a = ud;
    const char *s = json_string_value(v);
    switch (i) {
    case 0: /* reportSpecifierID */
        if (s == NULL || !wk_id_valid(s, strlen(s))) {
            snprintf(err, errlen, "reportSpecifierID must be a non-empty id of at most %d bytes",
                     WK_ID_MAX);
            return -EINVAL;
        }
        memcpy(a->spec, s, strlen(s) + 1);
        return 0;
    case 1: /* rIDs */
        if (!json_is_array(v) || json_array_size(v) == 0 ||
            json_array_size(v) > WK_REPORT_RIDS_MAX) {
            snprintf(err, errlen, "rIDs must be a non-empty array of at most %d rIDs",
                     WK_REPORT_RIDS_MAX);
            return -EINVAL;
        }
        for (size_t k = 0; k < json_array_size(v); k++)
            if (!json_is_string(json_array_get(v, k))) {
                snprintf(err, errlen, "rIDs[%zu] must be a string", k);
                return -EINVAL;
            }
        a->rids = json_incref(v);
        return 0;
    case 2:
        return duration_field("granularity", v, a->granularity, sizeof a->granularity, NULL, err,
                              errlen);
    case 3:
        return duration_field("reportBackDuration", v, a->back, sizeof a->back, NULL, err, errlen);
    case 4:
        return duration_field("duration", v, a->duration, sizeof a->duration, &a->duration_ms, err,
                              errlen);
    case 5: { /* start: now only, for now */
        int64_t t;
        if (s == NULL || wk_datetime_parse(s, &t) < 0) {
            snprintf(err, errlen, "start must be a UTC date-time such as 2026-12-03T14:00:00Z");
            return -EINVAL;
        }
        if (t > vtn_now_ms()) {
            snprintf(err, errlen,
                     "start: a report window starting later is not supported; to request the "
                     "report at a future time, give sendAt");
            return -EINVAL;
        }
        return 0;
    }
    case 6: { /* sendAt: past or now is now; later, the scheduler sends it */
        int64_t t;
        if (s == NULL || wk_datetime_parse(s, &t) < 0) {
            snprintf(err, errlen, "sendAt must be a UTC date-time such as 2026-12-03T14:00:00Z");
            return -EINVAL;
        }
        if (t > vtn_now_ms() + VTN_REPORT_SEND_AHEAD_MAX_MS) {
            snprintf(err, errlen, "sendAt must be at most %lld days ahead",
                     VTN_REPORT_SEND_AHEAD_MAX_MS / 86400000);
            return -EINVAL;
        }
        a->send_at = t;
        return 0;
    }
    }
    return 0;
}

static int parse_report_ask(const char *body, size_t n, report_ask *a, char *err, size_t errlen)
{
    static const char *const names[] = {
        "reportSpecifierID", "rIDs",  "granularity", "reportBackDuration",
        "duration",          "start", "sendAt",      NULL};
    json_t *o = wk__api_json_object(
        body, n, "body must be a JSON object {reportSpecifierID, rIDs, granularity, ...}", err,
        errlen);
    if (o == NULL)
        return -EINVAL;
    int rc = wk__api_json_fields(o, names, ask_field, a, err, errlen);
    json_decref(o);
    if (rc == 0 && !a->spec[0]) {
        snprintf(err, errlen, "reportSpecifierID is required");
        rc = -EINVAL;
    }
    return rc;
}

/* The registered report of specifier spec in the VEN's venreports JSON. */
static json_t *registered_report(json_t *reports, const char *spec)
{
    for (size_t i = 0; i < json_array_size(reports); i++) {
        const char *id = jstr(json_array_get(reports, i), "reportSpecifierID");
        if (id && strcmp(id, spec) == 0)
            return json_array_get(reports, i);
    }
    return NULL;
}

static json_t *description_of(json_t *report, const char *rid)
{
    json_t *descs = json_object_get(report, "descriptions");
    for (size_t i = 0; i < json_array_size(descs); i++) {
        const char *id = jstr(json_array_get(descs, i), "rID");
        if (id && strcmp(id, rid) == 0)
            return json_array_get(descs, i);
    }
    return NULL;
}

/* The request's record (as in venrr) for the asked report of the VEN's
 * registration; NULL with 400's message in err (or "" when out of memory).
 * A request sent later carries sendAt, and its window starts then. */
static json_t *ask_record(report_ask *a, json_t *report, const char *rr, int64_t now, char *err,
                          size_t errlen)
{
    int64_t t0 = a->send_at > now ? a->send_at : now;
    json_t *descs = json_object_get(report, "descriptions");
    json_t *rids = json_array();
    err[0] = '\0';
    size_t n = a->rids ? json_array_size(a->rids) : json_array_size(descs);
    for (size_t i = 0; rids && i < n; i++) {
        const char *id = a->rids ? json_string_value(json_array_get(a->rids, i))
                                 : jstr(json_array_get(descs, i), "rID");
        json_t *d = id ? description_of(report, id) : NULL;
        if (d == NULL) {
            snprintf(err, errlen, "rIDs[%zu] \"%.128s\" is not an rID of reportSpecifierID %s", i,
                     id ? id : "", a->spec);
            json_decref(rids);
            return NULL;
        }
        if (json_array_append_new(rids, json_pack("{s:s, s:s?}", "rID", id, "readingType",
                                                  jstr(d, "readingType"))) < 0) {
            json_decref(rids);
            return NULL;
        }
    }
    if (rids == NULL)
        return NULL;
    /* Unset rates: the shortest the VEN offers for these rIDs, as the
     * default policy does (docs/reports.md). */
    const char *rate = wk_report_shortest_period(descs, a->rids);
    const char *gran = a->granularity[0] ? a->granularity : rate ? rate : "PT1M";
    const char *back = a->back[0] ? a->back : gran;
    json_t *rec = json_pack("{s:s, s:s, s:s?, s:s, s:s, s:o, s:s, s:I, s:s}", "reportRequestID", rr,
                            "reportSpecifierID", a->spec, "reportName", jstr(report, "reportName"),
                            "granularity", gran, "reportBackDuration", back, "rIDs", rids, "state",
                            "requested", "requestedAt", (json_int_t)now, "via", "api");
    if (rec && a->duration_ms > 0 &&
        wk_report_set_window(rec, t0, a->duration, a->duration_ms) < 0) {
        json_decref(rec);
        return NULL;
    }
    if (rec && t0 > now && json_object_set_new(rec, "sendAt", json_integer(t0)) < 0) {
        json_decref(rec);
        return NULL;
    }
    return rec;
}

enum ask_stage { ASK_START = 0, ASK_READ, ASK_ASKED, ASK_INDEXED };

typedef struct ask_state {
    enum ask_stage stage;
    report_ask a;
    wk_rh reports, outcome;
    json_t *rec; /* owned */
} ask_state;

static void ask_fini(void *st)
{
    ask_state *s = st;
    json_decref(s->a.rids);
    json_decref(s->rec);
}

static void api_ven_reports_post(wk_req *q, void *st)
{
    ask_state *s = st;
    const char *ven = q->path_id;
    char k1[VTN_KEY_MAX], k2[VTN_KEY_MAX], k3[VTN_KEY_MAX], err[512];
    switch (s->stage) {
    case ASK_START:
        if (!wk__api_json_ctype(q->env.content_type)) {
            wk_reply_json_error(q, 415, "Content-Type must be application/json");
            return;
        }
        if (parse_report_ask(q->env.body.p, q->env.body.n, &s->a, err, sizeof err) < 0) {
            wk_reply_json_error(q, 400, "%s", err);
            return;
        }
        s->stage = ASK_READ;
        if ((s->reports = wk_cmd(q, "GET", wk_key_venreports(k1, ven), NULL)) < 0)
            wk_reply_no_room(q);
        return;
    case ASK_READ: {
        const redisReply *r = wk_rep(q, s->reports);
        json_t *reports =
            r && r->type == REDIS_REPLY_STRING ? json_loadb(r->str, r->len, 0, NULL) : NULL;
        json_t *report = registered_report(reports, s->a.spec);
        if (report == NULL) {
            json_decref(reports);
            wk_reply_json_error(q, 400,
                                "reportSpecifierID %s is not a report venID %s registered (or "
                                "no such VEN)",
                                s->a.spec, ven);
            return;
        }
        /* The same API request retried makes the same IDs (cf. the policy's). */
        char rr[WK_ID_MAX + 1], qid[WK_ID_MAX + 1];
        snprintf(rr, sizeof rr, "rr-%s-api", q->rid);
        snprintf(qid, sizeof qid, "crapi-%s", q->rid); /* repreg leaves crapi- queued */
        int64_t now = vtn_now_ms();
        s->rec = ask_record(&s->a, report, rr, now, err, sizeof err);
        json_decref(reports);
        if (s->rec == NULL) {
            if (err[0])
                wk_reply_json_error(q, 400, "%s", err);
            else
                wk_reply_internal(q, "out of memory");
            return;
        }
        /* A request for later is only recorded: the scheduler queues it (repdue). */
        int later = json_object_get(s->rec, "sendAt") != NULL;
        json_t *one = json_pack("[O]", s->rec);
        char *rec = json_dumps(s->rec, JSON_COMPACT), *list = json_dumps(one, JSON_COMPACT);
        json_decref(one);
        size_t el = list ? strlen(qid) + strlen(list) + 4 : 0;
        char *entry = list ? malloc(el) : NULL;
        if (entry && later)
            entry[0] = '\0';
        else if (entry)
            snprintf(entry, el, "%c%c%s%c%s", VTN_QUEUE_KIND_CREATEREPORT, VTN_QUEUE_SEP, qid,
                     VTN_QUEUE_SEP, list);
        if (rec && entry) {
            s->stage = ASK_ASKED;
            s->outcome = wk_eval(q, WK_SCRIPT_REPAPI, 3, wk_key_ven(k1, ven), wk_key_venrr(k2, ven),
                                 wk_key_venq(k3, ven), "ask", rr, rec, entry, NULL);
            if (s->outcome < 0)
                wk_reply_no_room(q);
        } else {
            wk_reply_internal(q, "out of memory");
        }
        free(rec);
        free(list);
        free(entry);
        return;
    }
    case ASK_ASKED: {
        char res[16] = "";
        wk_rep_str(wk_rep(q, s->outcome), res, sizeof res);
        const char *rr = jstr(s->rec, "reportRequestID");
        if (strcmp(res, "ok") == 0) {
            /* The scheduler's index, after the record (a retry writes it again): the send
             * index for a request at a future time, else the overdue check from now. */
            char m[WK_REPORT_MEMBER_MAX], at[24];
            json_t *send_at = json_object_get(s->rec, "sendAt");
            wk_report_index_member(m, ven, rr);
            snprintf(at, sizeof at, "%lld",
                     send_at ? (long long)json_integer_value(send_at) : (long long)vtn_now_ms());
            s->stage = ASK_INDEXED;
            if (wk_cmd(q, "ZADD", send_at ? VTN_KEY_REPORTS_SEND : VTN_KEY_REPORTS_CHECK, "NX", at,
                       m, NULL) < 0)
                wk_reply_no_room(q);
            return;
        }
        if (strcmp(res, "404v") == 0) {
            wk_reply_json_error(q, 404, "no VEN with venID %s", ven);
        } else if (strcmp(res, "409m") == 0) {
            wk_reply_json_error(q, 409, "venID %s has %d report requests already; cancel one first",
                                ven, VTN_REPORT_REQUESTS_MAX);
        } else if (strcmp(res, "409q") == 0) {
            wk_reply_json_error(q, 409, "the message queue of venID %s is full (%d)", ven,
                                VTN_QUEUE_MAX);
        } else {
            wk_reply_internal(q, "unexpected script outcome");
        }
        return;
    }
    case ASK_INDEXED: {
        const char *rr = jstr(s->rec, "reportRequestID");
        vtn_info("report_requested", "req=%s ven=%s rr=%s spec=%s send_at=%lld", q->rid, ven, rr,
                 s->a.spec, (long long)json_integer_value(json_object_get(s->rec, "sendAt")));
        snprintf(q->headers, sizeof q->headers, "Location: /api/v1/vens/%s/reports/%s\r\n", ven,
                 rr);
        json_t *body = json_deep_copy(s->rec);
        if (body)
            json_object_set_new(body, "venID", json_string(ven));
        wk_reply_json(q, 201, body);
        return;
    }
    }
}

/* ---- DELETE /api/v1/vens/{venID}/reports/{reportRequestID} ---- */

enum cancel_stage { CANCEL_START = 0, CANCEL_READ, CANCEL_ASKED, CANCEL_UNINDEXED };

typedef struct cancel_state {
    enum cancel_stage stage;
    char rr[WK_ID_MAX + 1];
    char state[16]; /* the answer once the script ran */
    wk_rh rec, outcome;
} cancel_state;

static void cancel_answer(wk_req *q, cancel_state *s, int status, const char *state)
{
    wk_reply_json(q, status,
                  json_pack("{s:s, s:s, s:s}", "venID", q->path_id, "reportRequestID", s->rr,
                            "state", state));
}

static void api_ven_report_delete(wk_req *q, void *st)
{
    cancel_state *s = st;
    const char *ven = q->path_id;
    char k1[VTN_KEY_MAX], k2[VTN_KEY_MAX], k3[VTN_KEY_MAX];
    switch (s->stage) {
    case CANCEL_START:
        if (wk_api_report_request_id(q->env.path.p, q->env.path.n, s->rr) < 0) {
            wk_reply_json_error(q, 404, "no such resource");
            return;
        }
        s->stage = CANCEL_READ;
        if ((s->rec = wk_cmd(q, "HGET", wk_key_venrr(k1, ven), s->rr, NULL)) < 0)
            wk_reply_no_room(q);
        return;
    case CANCEL_READ: {
        char buf[16384];
        json_t *rec =
            wk_rep_str(wk_rep(q, s->rec), buf, sizeof buf) ? json_loads(buf, 0, NULL) : NULL;
        const char *state = rec ? wk_report_request_state(rec, vtn_now_ms()) : NULL;
        if (state == NULL) {
            json_decref(rec);
            wk_reply_json_error(q, 404, "no report request %s of venID %s", s->rr, ven);
            return;
        }
        if (strcmp(state, "requested") && strcmp(state, "created") && strcmp(state, "active") &&
            strcmp(state, "overdue")) {
            /* Cancelled, being cancelled or over: nothing to do (a DELETE again). */
            cancel_answer(q, s, 200, state);
            json_decref(rec);
            return;
        }
        json_decref(rec);
        char cid[VTN_ID_MAX], now[24];
        if (vtn_id_new("req", cid, sizeof cid) < 0) {
            wk_reply_internal(q, "no randomness for ids");
            return;
        }
        snprintf(now, sizeof now, "%lld", (long long)vtn_now_ms());
        s->stage = CANCEL_ASKED;
        s->outcome = wk_eval(q, WK_SCRIPT_REPAPI, 3, wk_key_ven(k1, ven), wk_key_venrr(k2, ven),
                             wk_key_venq(k3, ven), "cancel", s->rr, cid, now, NULL);
        if (s->outcome < 0)
            wk_reply_no_room(q);
        return;
    }
    case CANCEL_ASKED: {
        char *res = s->state;
        wk_rep_str(wk_rep(q, s->outcome), res, sizeof s->state);
        if (strcmp(res, "404v") == 0 || strcmp(res, "404") == 0) {
            wk_reply_json_error(q, 404, "no report request %s of venID %s", s->rr, ven);
        } else if (strcmp(res, "409q") == 0) {
            wk_reply_json_error(q, 409, "the message queue of venID %s is full (%d)", ven,
                                VTN_QUEUE_MAX);
        } else if (strcmp(res, "cancelling") == 0 || strcmp(res, "cancelled") == 0) {
            /* Out of the scheduler's indexes now rather than at its next look. */
            char m[WK_REPORT_MEMBER_MAX];
            wk_report_index_member(m, ven, s->rr);
            s->stage = CANCEL_UNINDEXED;
            int bad = wk_cmd(q, "ZREM", VTN_KEY_REPORTS_SEND, m, NULL) < 0;
            bad |= wk_cmd(q, "ZREM", VTN_KEY_REPORTS_OVERDUE, m, NULL) < 0;
            if (bad)
                wk_reply_no_room(q);
        } else {
            cancel_answer(q, s, 200, res); /* changed meanwhile: as it is now */
        }
        return;
    }
    case CANCEL_UNINDEXED:
        if (strcmp(s->state, "cancelled") == 0) { /* never sent: the VEN hears nothing */
            vtn_info("report_cancelled_unsent", "req=%s ven=%s rr=%s", q->rid, ven, s->rr);
            cancel_answer(q, s, 200, "cancelled");
        } else {
            vtn_info("report_cancel_queued", "req=%s ven=%s rr=%s", q->rid, ven, s->rr);
            cancel_answer(q, s, 202, "cancelling");
        }
        return;
    }
}

/* ---- GET /api/v1/reports: the received interval data ---- */

typedef struct data_query {
    char ven[WK_ID_MAX + 1], rr[WK_ID_MAX + 1], rid[WK_ID_MAX + 1];
    int64_t from_ms, to_ms; /* 0: unbounded */
    int csv, limit;
    char cursor[48]; /* a stream id (an offset with state), "" from the start */
    char state[16];  /* "overdue": list those requests instead of values */
    int seen[9];
} data_query;

/* A stream id: <ms>-<seq>, digits only. */
static int stream_id_valid(const char *s)
{
    size_t n = strlen(s), dash = strcspn(s, "-");
    if (n == 0 || n > 41 || dash == 0 || dash >= n - 1)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (i != dash && (s[i] < '0' || s[i] > '9'))
            return 0;
    return 1;
}

static int data_param(void *ud, const char *key, const char *val, char *err, size_t errlen)
{
    static const char *const keys[] = {"venID",  "reportRequestID", "rID",    "from", "to",
                                       "format", "limit",           "cursor", "state"};
    data_query *d = ud;
    size_t i = 0;
    while (i < sizeof keys / sizeof keys[0] && strcmp(keys[i], key) != 0)
        i++;
    if (i == sizeof keys / sizeof keys[0]) {
        snprintf(err, errlen,
                 "unknown query parameter '%.40s' (allowed: venID, reportRequestID, rID, from, "
                 "to, format, limit, cursor, state)",
                 key);
        return -EINVAL;
    }
    if (wk__api_param_once(key, &d->seen[i], err, errlen) < 0)
        return -EINVAL;
    char *ids[] = {d->ven, d->rr, d->rid};
    int64_t *times[] = {&d->from_ms, &d->to_ms};
    switch (i) {
    case 0:
    case 1:
    case 2:
        if (!wk_id_valid(val, strlen(val))) {
            snprintf(err, errlen, "%s must be an id of 1 to %d bytes", key, WK_ID_MAX);
            return -EINVAL;
        }
        memcpy(ids[i], val, strlen(val) + 1);
        return 0;
    case 3:
    case 4:
        if (wk_datetime_parse(val, times[i - 3]) < 0 || *times[i - 3] <= 0) {
            snprintf(err, errlen, "%s must be a UTC date-time such as 2026-12-03T14:00:00Z", key);
            return -EINVAL;
        }
        return 0;
    case 5:
        if (strcmp(val, "json") && strcmp(val, "csv")) {
            snprintf(err, errlen, "format must be json or csv");
            return -EINVAL;
        }
        d->csv = strcmp(val, "csv") == 0;
        return 0;
    case 6:
        return wk__api_int_value(key, val, REPORT_DATA_LIMIT_MAX, &d->limit, err, errlen);
    case 7: /* checked once the mode is known */
        if (strlen(val) >= sizeof d->cursor || !val[0]) {
            snprintf(err, errlen, "cursor is not one this API returned (use next_cursor as is)");
            return -EINVAL;
        }
        memcpy(d->cursor, val, strlen(val) + 1);
        return 0;
    default:
        /* Only overdue is kept in an index across VENs; any other state would
         * mean reading every VEN. */
        if (strcmp(val, "overdue") != 0) {
            snprintf(err, errlen,
                     "state must be overdue (a VEN's requests in every state are at "
                     "/api/v1/vens/{venID}/reports)");
            return -EINVAL;
        }
        memcpy(d->state, val, strlen(val) + 1);
        return 0;
    }
}

/* An offset cursor of the state listing: digits only. */
static int offset_valid(const char *s)
{
    size_t n = strspn(s, "0123456789");
    return n > 0 && n < 10 && s[n] == '\0';
}

static int parse_report_data(const char *q, size_t n, data_query *d, char *err, size_t errlen)
{
    memset(d, 0, sizeof *d);
    d->limit = REPORT_DATA_LIMIT_DEFAULT;
    if (q && wk__api_each_param(q, n, data_param, d, err, errlen) < 0)
        return -EINVAL;
    if (d->from_ms && d->to_ms && d->to_ms <= d->from_ms) {
        snprintf(err, errlen, "to must be later than from");
        return -EINVAL;
    }
    if (d->state[0] && (d->ven[0] || d->rr[0] || d->rid[0] || d->from_ms || d->to_ms || d->csv)) {
        snprintf(err, errlen, "state lists report requests: it goes with limit and cursor only");
        return -EINVAL;
    }
    if (d->cursor[0] && !(d->state[0] ? offset_valid(d->cursor) : stream_id_valid(d->cursor))) {
        snprintf(err, errlen, "cursor is not one this API returned (use next_cursor as is)");
        return -EINVAL;
    }
    return 0;
}

/* GET /api/v1/reports?state=overdue: the overdue requests of every VEN from
 * vtn:reports:overdue (the scheduler's), the longest overdue first. */
static void overdue_list(wk_req *q, const redisReply *r, const data_query *d)
{
    json_t *rows = json_array();
    size_t n = r && r->type == REDIS_REPLY_ARRAY ? r->elements / 2 : 0;
    int rc = rows == NULL;
    for (size_t i = 0; rc == 0 && i < n && i < (size_t)d->limit; i++) {
        const char *m = r->element[2 * i]->str, *bar = strchr(m, VTN_QUEUE_SEP);
        char since[40] = "";
        vtn_time_format(strtoll(r->element[2 * i + 1]->str, NULL, 10), since, sizeof since);
        if (bar)
            rc = json_array_append_new(rows, json_pack("{s:s#, s:s, s:s}", "venID", m,
                                                       (int)(bar - m), "reportRequestID", bar + 1,
                                                       "overdueSince", since));
    }
    if (rc) {
        json_decref(rows);
        wk_reply_internal(q, "out of memory");
        return;
    }
    char next[24];
    snprintf(next, sizeof next, "%lld", strtoll(d->cursor, NULL, 10) + d->limit);
    wk_reply_json(q, 200,
                  json_pack("{s:o, s:s?}", "requests", rows, "next_cursor",
                            n > (size_t)d->limit ? next : NULL));
}

typedef struct data_state {
    int stage;
    data_query d;
    wk_rh range;
} data_state;

/* A stream entry's field, or NULL. */
static const redisReply *entry_field(const redisReply *fields, const char *name)
{
    for (size_t i = 0; i + 1 < fields->elements; i += 2)
        if (fields->element[i]->type == REDIS_REPLY_STRING &&
            strcmp(fields->element[i]->str, name) == 0 &&
            fields->element[i + 1]->type == REDIS_REPLY_STRING)
            return fields->element[i + 1];
    return NULL;
}

static const char *fstr(const redisReply *fields, const char *name)
{
    const redisReply *r = entry_field(fields, name);
    return r ? r->str : NULL;
}

static int matches(const data_query *d, const redisReply *fields)
{
    const char *want[] = {d->ven, d->rr}, *name[] = {"ven", "rr"};
    for (int i = 0; i < 2; i++)
        if (want[i][0] && (fstr(fields, name[i]) == NULL || strcmp(fstr(fields, name[i]), want[i])))
            return 0;
    return 1;
}

/* One CSV field, quoted when it holds a comma, a quote or a line break. */
static int csv_field(vtn_buf *b, const char *s, int last)
{
    int rc = 0;
    s = s ? s : "";
    if (strpbrk(s, ",\"\r\n")) {
        rc |= vtn_buf_appends(b, "\"");
        for (const char *p = s; *p; p++)
            rc |= *p == '"' ? vtn_buf_appends(b, "\"\"") : vtn_buf_append(b, p, 1);
        rc |= vtn_buf_appends(b, "\"");
    } else {
        rc |= vtn_buf_appends(b, s);
    }
    return rc | vtn_buf_appends(b, last ? "\r\n" : ",");
}

/* One value of an entry's `i` array: [rID, dtstart ms, duration ms, value
 * or status, quality?] (docs/reports.md). */
typedef struct data_point {
    const char *rid, *value, *quality;
    json_t *status;
    long long t, d;
} data_point;

static int point_read(json_t *iv, data_point *p)
{
    json_t *v = json_array_get(iv, 3);
    p->rid = json_string_value(json_array_get(iv, 0));
    p->t = json_integer_value(json_array_get(iv, 1));
    p->d = json_integer_value(json_array_get(iv, 2));
    p->value = json_string_value(v);
    p->status = json_is_object(v) ? v : NULL;
    p->quality = json_string_value(json_array_get(iv, 4));
    return p->rid && (p->value || p->status) ? 0 : -EINVAL;
}

static int csv_row(vtn_buf *b, const char *id, const redisReply *f, const data_point *p)
{
    char when[40] = "", d[24];
    vtn_time_format(p->t, when, sizeof when);
    snprintf(d, sizeof d, "%lld", p->d);
    char *st = p->status ? json_dumps(p->status, JSON_COMPACT) : NULL;
    int rc = csv_field(b, id, 0) | csv_field(b, fstr(f, "ven"), 0) |
             csv_field(b, fstr(f, "rr"), 0) | csv_field(b, p->rid, 0) | csv_field(b, when, 0) |
             csv_field(b, d, 0) | csv_field(b, p->value, 0) | csv_field(b, st, 0) |
             csv_field(b, p->quality, 1);
    free(st);
    return rc;
}

static json_t *json_row(const char *id, const redisReply *f, const data_point *p)
{
    char when[40] = "";
    vtn_time_format(p->t, when, sizeof when);
    return json_pack("{s:s, s:s?, s:s?, s:s, s:s, s:I, s:s*, s:O*, s:s*}", "id", id, "venID",
                     fstr(f, "ven"), "reportRequestID", fstr(f, "rr"), "rID", p->rid, "dtstart",
                     when, "durationMs", (json_int_t)p->d, "value", p->value, "status", p->status,
                     "quality", p->quality);
}

/* The values of one stream entry that pass the rID filter, appended to the
 * page: all of them or, when they would overflow a page that already holds
 * some, none (*full set; a page ends between entries, so the cursor is an
 * entry id). 0 or -ENOMEM. */
static int entry_rows(const data_query *d, const char *id, const redisReply *f, vtn_buf *csv,
                      json_t *rows, int *shown, size_t *bytes, int *full)
{
    json_t *ivs = fstr(f, "i") ? json_loads(fstr(f, "i"), 0, NULL) : NULL;
    size_t n = json_array_size(ivs), match = 0;
    data_point p;
    for (size_t k = 0; k < n; k++)
        match +=
            point_read(json_array_get(ivs, k), &p) == 0 && (!d->rid[0] || !strcmp(p.rid, d->rid));
    size_t per = entry_field(f, "i") ? entry_field(f, "i")->len / (n ? n : 1) : 0;
    size_t more = match * (per + strlen(fstr(f, "ven") ? fstr(f, "ven") : "") +
                           strlen(fstr(f, "rr") ? fstr(f, "rr") : "") + 64);
    if (*shown > 0 &&
        ((size_t)*shown + match > (size_t)d->limit || *bytes + more > REPORT_DATA_BYTES_MAX)) {
        *full = 1;
        json_decref(ivs);
        return 0;
    }
    int rc = 0;
    for (size_t k = 0; rc == 0 && k < n; k++) {
        if (point_read(json_array_get(ivs, k), &p) < 0 || (d->rid[0] && strcmp(p.rid, d->rid)))
            continue;
        rc = csv ? csv_row(csv, id, f, &p) : json_array_append_new(rows, json_row(id, f, &p));
    }
    *shown += (int)match;
    *bytes += more;
    json_decref(ivs);
    return rc ? -ENOMEM : 0;
}

static void api_reports_data(wk_req *q, void *st)
{
    data_state *s = st;
    data_query *d = &s->d;
    char err[512];
    if (s->stage == 0) {
        if (parse_report_data(q->query.p, q->query.n, d, err, sizeof err) < 0) {
            wk_reply_json_error(q, 400, "%s", err);
            return;
        }
        if (d->state[0]) { /* one more than a page: whether more follows */
            char from[24], to[24];
            long long off = strtoll(d->cursor, NULL, 10);
            snprintf(from, sizeof from, "%lld", off);
            snprintf(to, sizeof to, "%lld", off + d->limit);
            s->stage = 1;
            if ((s->range = wk_cmd(q, "ZRANGE", VTN_KEY_REPORTS_OVERDUE, from, to, "WITHSCORES",
                                   NULL)) < 0)
                wk_reply_no_room(q);
            return;
        }
        /* The stream ids are the times the VTN stored the values (ms). */
        char start[64], end[32], count[16], key[VTN_KEY_MAX];
        if (d->cursor[0])
            snprintf(start, sizeof start, "(%s", d->cursor);
        else if (d->from_ms)
            snprintf(start, sizeof start, "%lld", (long long)d->from_ms);
        else
            snprintf(start, sizeof start, "-");
        if (d->to_ms)
            snprintf(end, sizeof end, "%lld", (long long)(d->to_ms - 1));
        else
            snprintf(end, sizeof end, "+");
        snprintf(count, sizeof count, "%d", REPORT_DATA_SCAN_MAX);
        s->stage = 1;
        if ((s->range = wk_cmd(q, "XRANGE", vtn_key_build(key, VTN_KEY_TELEMETRY, NULL, NULL),
                               start, end, "COUNT", count, NULL)) < 0)
            wk_reply_no_room(q);
        return;
    }
    const redisReply *r = wk_rep(q, s->range);
    if (d->state[0]) {
        overdue_list(q, r, d);
        return;
    }
    if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
        wk_reply_internal(q, "cannot read the telemetry stream");
        return;
    }
    json_t *rows = d->csv ? NULL : json_array();
    vtn_buf_reset(&q->body);
    int rc = d->csv ? vtn_buf_appends(&q->body, "id,venID,reportRequestID,rID,dtstart,durationMs,"
                                                "value,status,quality\r\n")
                    : rows == NULL;
    int shown = 0, full = 0;
    size_t bytes = 0;
    const char *last = NULL; /* the last entry looked at */
    for (size_t i = 0;
         rc == 0 && !full && i < r->elements && shown < d->limit && bytes < REPORT_DATA_BYTES_MAX;
         i++) {
        const redisReply *e = r->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
            e->element[0]->type != REDIS_REPLY_STRING || e->element[1]->type != REDIS_REPLY_ARRAY) {
            last = e->type == REDIS_REPLY_ARRAY && e->elements > 0 &&
                           e->element[0]->type == REDIS_REPLY_STRING
                       ? e->element[0]->str
                       : last;
            continue;
        }
        if (matches(d, e->element[1]))
            rc = entry_rows(d, e->element[0]->str, e->element[1], d->csv ? &q->body : NULL, rows,
                            &shown, &bytes, &full);
        if (!full)
            last = e->element[0]->str;
    }
    /* More may follow when the page is full or the scan stopped at its cap. */
    int more = last && (full || shown >= d->limit || bytes >= REPORT_DATA_BYTES_MAX ||
                        r->elements == REPORT_DATA_SCAN_MAX);
    if (rc) {
        json_decref(rows);
        wk_reply_internal(q, "out of memory");
        return;
    }
    if (d->csv) {
        if (more)
            snprintf(q->headers, sizeof q->headers, "X-Next-Cursor: %s\r\n", last);
        wk_reply_body(q, 200, "text/csv; charset=utf-8");
        return;
    }
    wk_reply_json(q, 200,
                  json_pack("{s:o, s:s?}", "data", rows, "next_cursor", more ? last : NULL));
}

/* ---- report request policies: /api/v1/report-policies/default,
 * /api/v1/programs/{programID}/report-policy, /api/v1/vens/{venID}/report-policy ---- */

enum policy_scope { POLICY_DEFAULT = 0, POLICY_PROGRAM, POLICY_VEN };

typedef struct policy_state {
    int stage;
    wk_rh exists, policy, outcome;
    json_t *put; /* owned: the policy a PUT stores, its answer */
} policy_state;

static void policy_fini(void *st)
{
    json_decref(((policy_state *)st)->put);
}

/* Where a scope's policy lives: the record that must exist (record), the
 * hash and field holding the policy, and what a 404 calls the owner. */
typedef struct policy_where {
    char record[VTN_KEY_MAX], hash[VTN_KEY_MAX], field[WK_ID_MAX + 8];
    const char *what;
} policy_where;

static void policy_locate(const wk_req *q, enum policy_scope scope, policy_where *w)
{
    static const char *const what[] = {"", "program", "VEN"};
    w->what = what[scope];
    snprintf(w->hash, sizeof w->hash, "%s", VTN_KEY_REPORTPOLICIES);
    if (scope == POLICY_DEFAULT) {
        snprintf(w->record, sizeof w->record, "%s", VTN_KEY_REPORTPOLICIES);
        snprintf(w->field, sizeof w->field, "%s", WK_POLICY_DEFAULT_FIELD);
    } else if (scope == POLICY_PROGRAM) {
        vtn_key_build(w->record, VTN_KEY_PROGRAM, q->path_id, NULL);
        snprintf(w->field, sizeof w->field, "%s%s", VTN_TARGET_PROGRAM, q->path_id);
    } else {
        wk_key_ven(w->record, q->path_id);
        snprintf(w->hash, sizeof w->hash, "%s", w->record);
        snprintf(w->field, sizeof w->field, "%s", VTN_F_VEN_REPORT_POLICY);
    }
}

static void policy_get(wk_req *q, policy_state *s, enum policy_scope scope)
{
    policy_where w;
    policy_locate(q, scope, &w);
    if (s->stage == 0) {
        s->stage = 1;
        int bad = (s->exists = wk_cmd(q, "EXISTS", w.record, NULL)) < 0;
        bad |= (s->policy = wk_cmd(q, "HGET", w.hash, w.field, NULL)) < 0;
        if (bad)
            wk_reply_no_room(q);
        return;
    }
    if (scope != POLICY_DEFAULT && wk_rep_int(q, s->exists, 0) == 0) {
        wk_reply_json_error(q, 404, "no %s with ID %s", w.what, q->path_id);
        return;
    }
    const redisReply *r = wk_rep(q, s->policy);
    json_t *p = r && r->type == REDIS_REPLY_STRING ? json_loadb(r->str, r->len, 0, NULL) : NULL;
    if (p == NULL && scope == POLICY_DEFAULT) {
        /* None set: the built-in one, said so. */
        p = wk_report_policy_builtin(q->w->cfg.report_request_in);
        if (p && json_object_set_new(p, "builtIn", json_true()) < 0) {
            json_decref(p);
            p = NULL;
        }
        if (p == NULL) {
            wk_reply_internal(q, "out of memory");
            return;
        }
    }
    if (p == NULL) {
        wk_reply_json_error(q, 404,
                            "%s %s has no report policy of its own (GET /api/v1/vens/{venID}/"
                            "report-policy and /api/v1/report-policies/default say what applies)",
                            w.what, q->path_id);
        return;
    }
    wk_reply_json(q, 200, p);
}

/* PUT (body: the policy) and DELETE (body NULL): one reppolicy script. */
static void policy_write(wk_req *q, policy_state *s, enum policy_scope scope, int put)
{
    policy_where w;
    char err[512];
    policy_locate(q, scope, &w);
    if (s->stage == 0) {
        char *js = NULL;
        if (put) {
            if (!wk__api_json_ctype(q->env.content_type)) {
                wk_reply_json_error(q, 415, "Content-Type must be application/json");
                return;
            }
            s->put = wk__api_json_object(q->env.body.p, q->env.body.n,
                                         "body must be a JSON object {deliverIn, rules}", err,
                                         sizeof err);
            if (s->put == NULL || wk_report_policy_check(s->put, err, sizeof err) < 0) {
                wk_reply_json_error(q, 400, "%s", err);
                return;
            }
            js = json_dumps(s->put, JSON_COMPACT | JSON_SORT_KEYS);
            if (js == NULL) {
                wk_reply_internal(q, "out of memory");
                return;
            }
        }
        s->stage = 1;
        s->outcome = wk_eval(q, WK_SCRIPT_REPPOLICY, 2, w.record, w.hash, w.field, js ? js : "",
                             scope == POLICY_DEFAULT ? "0" : "1", NULL);
        free(js);
        if (s->outcome < 0)
            wk_reply_no_room(q);
        return;
    }
    long long rc = wk_rep_int(q, s->outcome, -1);
    if (rc == 0) {
        wk_reply_json_error(q, 404, "no %s with ID %s", w.what, q->path_id);
        return;
    }
    if (rc < 0) {
        wk_reply_internal(q, "reppolicy script failed");
        return;
    }
    vtn_info("api_report_policy", "req=%s scope=%s id=%s op=%s", q->rid,
             scope == POLICY_DEFAULT ? "default" : w.what, q->path_id, put ? "put" : "delete");
    if (put) {
        wk_reply_json(q, 200, json_incref(s->put));
        return;
    }
    if (rc == 2 && scope == POLICY_DEFAULT)
        wk_reply_json_error(q, 404, "no default report policy is set (the built-in one applies)");
    else if (rc == 2)
        wk_reply_json_error(q, 404, "%s %s has no report policy of its own", w.what, q->path_id);
    else
        wk_reply_json(q, 200, json_pack("{s:b}", "deleted", 1));
}

/* The scope of a policy request, from its path (the route table sends the
 * three paths to the same handlers). */
static enum policy_scope policy_scope_of(const wk_req *q)
{
    static const struct {
        const char *prefix;
        enum policy_scope scope;
    } scopes[] = {{"/api/v1/vens/", POLICY_VEN}, {"/api/v1/programs/", POLICY_PROGRAM}};
    for (size_t i = 0; i < sizeof scopes / sizeof scopes[0]; i++) {
        size_t n = strlen(scopes[i].prefix);
        if (q->env.path.n >= n && memcmp(q->env.path.p, scopes[i].prefix, n) == 0)
            return scopes[i].scope;
    }
    return POLICY_DEFAULT;
}

static void api_policy_get(wk_req *q, void *st)
{
    policy_get(q, st, policy_scope_of(q));
}

static void api_policy_put(wk_req *q, void *st)
{
    policy_write(q, st, policy_scope_of(q), 1);
}

static void api_policy_delete(wk_req *q, void *st)
{
    policy_write(q, st, policy_scope_of(q), 0);
}

const wk_handler wk__api_ven_reports_get =
    WK_HANDLER("api.vens.reports.get", ven_reports_state, NULL, NULL, api_ven_reports_get);
const wk_handler wk__api_ven_reports_post =
    WK_HANDLER("api.vens.reports.post", ask_state, NULL, ask_fini, api_ven_reports_post);
const wk_handler wk__api_ven_report_delete =
    WK_HANDLER("api.vens.reports.delete", cancel_state, NULL, NULL, api_ven_report_delete);
const wk_handler wk__api_reports_data =
    WK_HANDLER("api.reports.data", data_state, NULL, NULL, api_reports_data);
const wk_handler wk__api_policy_get =
    WK_HANDLER("api.report_policy.get", policy_state, NULL, NULL, api_policy_get);
const wk_handler wk__api_policy_put =
    WK_HANDLER("api.report_policy.put", policy_state, NULL, policy_fini, api_policy_put);
const wk_handler wk__api_policy_delete =
    WK_HANDLER("api.report_policy.delete", policy_state, NULL, NULL, api_policy_delete);
