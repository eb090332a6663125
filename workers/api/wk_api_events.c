/* The management API's /api/v1/programs and /api/v1/events
 * (docs/openapi.yaml): create, get and list programs; create, get, list
 * (filters + paging), modify and cancel events. The body's validation is
 * wk_event.c's; a change is one Lua script (common/lua/event.lua) that
 * writes the event and bumps vtn:events:ver, a constant number of writes
 * whatever the number of VENs the event targets. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vtn/keys.h"
#include "vtn/log.h"
#include "vtn/time.h"
#include "wk_api_internal.h"
#include "wk_ven.h"

#define PROGRAMS_PREFIX "/api/v1/programs"
#define EVENTS_PREFIX "/api/v1/events"

/* ---- programs ---- */

static json_t *program_json(const char *id, const redisReply *h)
{
    char name[WK_NAME_MAX + 1], mc[WK_MC_MAX + 1], when[32];
    return json_pack("{s:s,s:s,s:s,s:s}", "programID", id, "name",
                     wk_hfield_str(h, VTN_F_PROGRAM_NAME, name, sizeof name), "marketContext",
                     wk_hfield_str(h, VTN_F_PROGRAM_MC, mc, sizeof mc), "createdDateTime",
                     vtn_time_format(wk_hfield_int(h, VTN_F_PROGRAM_CREATED), when, sizeof when));
}

struct program_body {
    char *name, *mc;
};

static int program_field(void *ud, int i, json_t *v, char *err, size_t errlen)
{
    struct program_body *p = ud;
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (i == 0) {
        if (s == NULL || !wk_ven_name_valid(s, n)) {
            snprintf(err, errlen,
                     "name must be a string of 1 to %d bytes without control "
                     "characters",
                     WK_NAME_MAX);
            return -EINVAL;
        }
        memcpy(p->name, s, n + 1);
        return 0;
    }
    if (s == NULL || !wk_mc_valid(s, n)) {
        snprintf(err, errlen,
                 "marketContext must be a URI (e.g. http://utility.example/programs/cpp) of 1 to "
                 "%d bytes without spaces",
                 WK_MC_MAX);
        return -EINVAL;
    }
    memcpy(p->mc, s, n + 1);
    return 0;
}

int wk_api_parse_program(const char *body, size_t n, char *name, char *mc, char *err, size_t errlen)
{
    static const char *const names[] = {"name", "marketContext", NULL};
    struct program_body p = {name, mc};
    name[0] = mc[0] = '\0';
    json_t *o = wk__api_json_object(body, n, "body must be a JSON object {name, marketContext}",
                                    err, errlen);
    if (o == NULL)
        return -EINVAL;
    int rc = wk__api_json_fields(o, names, program_field, &p, err, errlen);
    json_decref(o);
    if (rc == 0 && !mc[0]) {
        snprintf(err, errlen, "marketContext is required");
        rc = -EINVAL;
    }
    if (rc == 0 && !name[0])
        snprintf(name, WK_NAME_MAX + 1, "%s", mc); /* a program is named by its URI by default */
    return rc;
}

typedef struct program_create_state {
    int stage;
    char id[VTN_ID_MAX];
    wk_rh outcome, rec;
} program_create_state;

static void api_program_create(wk_req *q, void *st)
{
    program_create_state *s = st;
    char k1[VTN_KEY_MAX], k2[VTN_KEY_MAX], k3[VTN_KEY_MAX], err[512];
    char name[WK_NAME_MAX + 1], mc[WK_MC_MAX + 1], now[24];
    const redisReply *r;
    switch (s->stage) {
    case 0:
        if (!wk__api_json_ctype(q->env.content_type)) {
            wk_reply_json_error(q, 415, "Content-Type must be application/json");
            return;
        }
        if (wk_api_parse_program(q->env.body.p, q->env.body.n, name, mc, err, sizeof err) < 0) {
            wk_reply_json_error(q, 400, "%s", err);
            return;
        }
        if (vtn_id_new("prg", s->id, sizeof s->id) < 0) {
            wk_reply_internal(q, "no randomness for ids");
            return;
        }
        snprintf(now, sizeof now, "%lld", (long long)vtn_now_ms());
        s->stage = 1;
        s->outcome =
            wk_eval(q, WK_SCRIPT_PROGRAM, 4, wk_key_program(k1, s->id), VTN_KEY_PROGRAMS,
                    vtn_key_build(k2, VTN_KEY_PROGRAMMC, mc, NULL),
                    vtn_key_build(k3, VTN_KEY_REQ, q->rid, NULL), s->id, name, mc, now, NULL);
        if (s->outcome < 0)
            wk_reply_no_room(q);
        return;
    case 1: {
        char kind[8], id[VTN_ID_MAX];
        r = wk_rep(q, s->outcome);
        if (!wk_rep_elem(r, 0, kind, sizeof kind) || !wk_rep_elem(r, 1, id, sizeof id)) {
            wk_reply_internal(q, "unreadable script outcome");
            return;
        }
        if (strcmp(kind, "409") == 0) {
            wk_reply_json_error(q, 409, "that marketContext already belongs to programID %s", id);
            return;
        }
        snprintf(s->id, sizeof s->id, "%s", id); /* a retry: the program the first try made */
        s->stage = 2;
        if ((s->rec = wk_cmd(q, "HGETALL", wk_key_program(k1, s->id), NULL)) < 0)
            wk_reply_no_room(q);
        return;
    }
    default:
        vtn_info("program_created", "req=%s program=%s", q->rid, s->id);
        snprintf(q->headers, sizeof q->headers, "Location: " PROGRAMS_PREFIX "/%s\r\n", s->id);
        wk_reply_json(q, 201, program_json(s->id, wk_rep(q, s->rec)));
        return;
    }
}

/* GET of one record by the path's id: the first step queues its HGETALL
 * and returns NULL, the next returns the reply. */
typedef struct record_get_state {
    int asked;
    wk_rh rec;
} record_get_state;

static const redisReply *record_get(wk_req *q, record_get_state *s, const char *key_pattern)
{
    char k[VTN_KEY_MAX];
    if (s->asked)
        return wk_rep(q, s->rec);
    s->asked = 1;
    if ((s->rec = wk_cmd(q, "HGETALL", vtn_key_build(k, key_pattern, q->path_id, NULL), NULL)) < 0)
        wk_reply_no_room(q);
    return NULL;
}

static void api_program_get(wk_req *q, void *st)
{
    record_get_state *s = st;
    int asked = s->asked;
    const redisReply *h = record_get(q, s, VTN_KEY_PROGRAM);
    if (!asked)
        return;
    if (wk_hash_empty(h)) {
        wk_reply_json_error(q, 404, "no program with programID %s", q->path_id);
        return;
    }
    wk_reply_json(q, 200, program_json(q->path_id, h));
}

static json_t *program_item(void *ud, const char *id, const redisReply *h)
{
    (void)ud;
    return wk_hash_empty(h) ? NULL : program_json(id, h);
}

static void api_program_list(wk_req *q, void *st)
{
    static const wk__api_list_kind programs = {VTN_KEY_PROGRAMS, "programs", VTN_KEY_PROGRAM,
                                               program_item};
    wk__api_plain_list(q, st, &programs);
}

/* ---- events ---- */

static int strcmp_ptr(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void reply_event(wk_req *q, int code, const char *id, const redisReply *h)
{
    json_t *o = wk_event_json(id, h, vtn_now_ms(), NULL);
    if (o == NULL)
        wk_reply_json_error(q, 404, "no event with eventID %s", id);
    else
        wk_reply_json(q, code, o);
}

/* POST /api/v1/events and PUT /api/v1/events/{id}: validate, find the
 * program of the marketContext, run the event script, read the record. */
enum write_stage { WR_START = 0, WR_PROGRAM, WR_MATCH, WR_SCRIPT, WR_DONE };

typedef struct write_state {
    enum write_stage stage;
    int modify;
    char id[WK_ID_MAX + 1];
    char program[VTN_ID_MAX];
    wk_event_in ev;
    wk_rh program_h, outcome, rec;
    wk_rh first_check; /* targetsMustMatch: one count per target, in target_checks order */
    int nchecks;
} write_state;

/* targetsMustMatch: how each kind of target is counted (a venID: its
 * record; the others: their reverse index), in the order refusals name them. */
static const struct {
    const char *kind, *cmd, *key;
} target_checks[] = {
    {"venID", "EXISTS", VTN_KEY_VEN},
    {"groupID", "SCARD", VTN_KEY_GROUPVENS},
    {"resourceID", "SCARD", VTN_KEY_RESOURCEVENS},
    {"partyID", "SCARD", VTN_KEY_PARTYVENS},
};
#define N_TARGET_CHECKS (sizeof target_checks / sizeof target_checks[0])

/* Queues one count per target (or, for a program-wide event, of the
 * program's enrolled VENs). 0 or <0. */
static int queue_target_checks(wk_req *q, write_state *s)
{
    char k[VTN_KEY_MAX];
    json_t *targets = json_object_get(s->ev.body, "targets");
    s->nchecks = 0;
    for (size_t c = 0; c < N_TARGET_CHECKS; c++) {
        json_t *list = json_object_get(targets, target_checks[c].kind);
        for (size_t i = 0; i < json_array_size(list); i++) {
            wk_rh h = wk_cmd(q, target_checks[c].cmd,
                             vtn_key_build(k, target_checks[c].key,
                                           json_string_value(json_array_get(list, i)), NULL),
                             NULL);
            if (h < 0)
                return h;
            if (s->nchecks++ == 0)
                s->first_check = h;
        }
    }
    if (s->nchecks > 0)
        return 0;
    wk_rh h = wk_cmd(q, "ZCARD", vtn_key_build(k, VTN_KEY_PROGRAMVENS, s->program, NULL), NULL);
    s->first_check = h;
    return h < 0 ? h : 0;
}

/* The first target the counts say matches no VEN, into err; 0 when all match. */
static int target_check_failed(wk_req *q, write_state *s, char *err, size_t errlen)
{
    json_t *targets = json_object_get(s->ev.body, "targets");
    if (s->nchecks == 0) {
        if (wk_rep_int(q, s->first_check, 0) > 0)
            return 0;
        snprintf(err, errlen,
                 "targets is empty (the whole program) and program %s has no enrolled VEN",
                 s->program);
        return 1;
    }
    int n = 0;
    for (size_t c = 0; c < N_TARGET_CHECKS; c++) {
        json_t *list = json_object_get(targets, target_checks[c].kind);
        for (size_t i = 0; i < json_array_size(list); i++, n++) {
            if (wk_rep_int(q, s->first_check + n, 0) > 0)
                continue;
            snprintf(err, errlen, "targets.%s[%zu] \"%s\" matches no VEN", target_checks[c].kind, i,
                     json_string_value(json_array_get(list, i)));
            return 1;
        }
    }
    return 0;
}

/* Queues the event script. */
static void write_script(wk_req *q, write_state *s)
{
    char k1[VTN_KEY_MAX], k2[VTN_KEY_MAX], now[24], start[24], end[24], near[24];
    char *body = json_dumps(s->ev.body, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (body == NULL) {
        wk_reply_internal(q, "out of memory");
        return;
    }
    snprintf(now, sizeof now, "%lld", (long long)vtn_now_ms());
    snprintf(start, sizeof start, "%lld", (long long)s->ev.start_ms);
    snprintf(end, sizeof end, "%lld", (long long)s->ev.end_ms);
    /* The status transitions the scheduler drives: near (none without
     * rampUp or notification: far turns active at start), start, end. */
    int64_t near_ms = wk_event_near_ms(s->ev.body);
    snprintf(near, sizeof near, "%lld", (long long)(s->ev.start_ms - (near_ms > 0 ? near_ms : 0)));
    s->stage = WR_SCRIPT;
    s->outcome = wk_eval(q, WK_SCRIPT_EVENT, 6, wk_key_event(k1, s->id), VTN_KEY_EVENTS,
                         VTN_KEY_EVENTSVER, vtn_key_build(k2, VTN_KEY_REQ, q->rid, NULL),
                         VTN_KEY_EVENTSEND, VTN_KEY_EVENTSDUE, s->modify ? "m" : "c", s->id, now,
                         body, s->program, start, end, s->ev.reason, near, NULL);
    free(body);
    if (s->outcome < 0)
        wk_reply_no_room(q);
}

static void write_fini(void *st)
{
    wk_event_in_clear(&((write_state *)st)->ev);
}

static void api_event_write(wk_req *q, write_state *s)
{
    char k1[VTN_KEY_MAX], err[512];
    switch (s->stage) {
    case WR_START:
        if (!wk__api_json_ctype(q->env.content_type)) {
            wk_reply_json_error(q, 415, "Content-Type must be application/json");
            return;
        }
        if (wk_event_parse(q->env.body.p, q->env.body.n, &s->ev, err, sizeof err) < 0) {
            wk_reply_json_error(q, 400, "%s", err);
            return;
        }
        if (s->modify)
            snprintf(s->id, sizeof s->id, "%s", q->path_id);
        else if (vtn_id_new("evt", s->id, sizeof s->id) < 0) {
            wk_reply_internal(q, "no randomness for ids");
            return;
        }
        s->stage = WR_PROGRAM;
        s->program_h = wk_cmd(q, "GET", vtn_key_build(k1, VTN_KEY_PROGRAMMC, s->ev.mc, NULL), NULL);
        if (s->program_h < 0)
            wk_reply_no_room(q);
        return;
    case WR_PROGRAM:
        if (!wk_rep_str(wk_rep(q, s->program_h), s->program, sizeof s->program)) {
            wk_reply_json_error(q, 400,
                                "marketContext %s is the URI of no program "
                                "(POST /api/v1/programs first)",
                                s->ev.mc);
            return;
        }
        if (!s->ev.must_match) {
            write_script(q, s);
            return;
        }
        s->stage = WR_MATCH;
        if (queue_target_checks(q, s) < 0)
            wk_reply_no_room(q);
        return;
    case WR_MATCH:
        if (target_check_failed(q, s, err, sizeof err)) {
            wk_reply_json_error(q, 400, "%s", err);
            return;
        }
        write_script(q, s);
        return;
    case WR_SCRIPT: {
        char kind[8];
        const redisReply *r = wk_rep(q, s->outcome);
        if (!wk_rep_elem(r, 0, kind, sizeof kind)) {
            wk_reply_internal(q, "unreadable script outcome");
            return;
        }
        if (strcmp(kind, "404") == 0) {
            wk_reply_json_error(q, 404, "no event with eventID %s", s->id);
            return;
        }
        if (strcmp(kind, "409") == 0) {
            wk_reply_json_error(q, 409, "event %s is cancelled: it can no longer be modified",
                                s->id);
            return;
        }
        wk_rep_elem(r, 1, s->id, sizeof s->id); /* a retried create: the first try's event */
        s->stage = WR_DONE;
        if ((s->rec = wk_cmd(q, "HGETALL", wk_key_event(k1, s->id), NULL)) < 0)
            wk_reply_no_room(q);
        return;
    }
    case WR_DONE:
        vtn_info(s->modify ? "event_modified" : "event_created", "req=%s event=%s", q->rid, s->id);
        if (!s->modify)
            snprintf(q->headers, sizeof q->headers, "Location: " EVENTS_PREFIX "/%s\r\n", s->id);
        reply_event(q, s->modify ? 200 : 201, s->id, wk_rep(q, s->rec));
        return;
    }
}

static void api_event_create(wk_req *q, void *st)
{
    api_event_write(q, st);
}

static void api_event_modify(wk_req *q, void *st)
{
    ((write_state *)st)->modify = 1;
    api_event_write(q, st);
}

typedef struct cancel_state {
    int stage;
    wk_rh outcome, rec;
} cancel_state;

static void api_event_cancel(wk_req *q, void *st)
{
    cancel_state *s = st;
    char k1[VTN_KEY_MAX], k2[VTN_KEY_MAX], err[512], reason[WK_REASON_MAX + 1], now[24];
    if (s->stage == 0) {
        if (q->env.body.n && !wk__api_json_ctype(q->env.content_type)) {
            wk_reply_json_error(q, 415, "Content-Type must be application/json");
            return;
        }
        if (wk_event_parse_cancel(q->env.body.p, q->env.body.n, reason, sizeof reason, err,
                                  sizeof err) < 0) {
            wk_reply_json_error(q, 400, "%s", err);
            return;
        }
        snprintf(now, sizeof now, "%lld", (long long)vtn_now_ms());
        s->stage = 1;
        s->outcome = wk_eval(q, WK_SCRIPT_EVENT, 6, wk_key_event(k1, q->path_id), VTN_KEY_EVENTS,
                             VTN_KEY_EVENTSVER, vtn_key_build(k2, VTN_KEY_REQ, q->rid, NULL),
                             VTN_KEY_EVENTSEND, VTN_KEY_EVENTSDUE, "x", q->path_id, now, "", "", "",
                             "", reason, "", NULL);
        if (s->outcome < 0)
            wk_reply_no_room(q);
        return;
    }
    if (s->stage == 1) {
        char kind[8];
        if (!wk_rep_elem(wk_rep(q, s->outcome), 0, kind, sizeof kind)) {
            wk_reply_internal(q, "unreadable script outcome");
            return;
        }
        if (strcmp(kind, "404") == 0) {
            wk_reply_json_error(q, 404, "no event with eventID %s", q->path_id);
            return;
        }
        s->stage = 2;
        if ((s->rec = wk_cmd(q, "HGETALL", wk_key_event(k1, q->path_id), NULL)) < 0)
            wk_reply_no_room(q);
        return;
    }
    vtn_info("event_cancelled", "req=%s event=%s", q->rid, q->path_id);
    reply_event(q, 200, q->path_id, wk_rep(q, s->rec));
}

static void api_event_get(wk_req *q, void *st)
{
    record_get_state *s = st;
    int asked = s->asked;
    const redisReply *h = record_get(q, s, VTN_KEY_EVENT);
    if (asked)
        reply_event(q, 200, q->path_id, h);
}

/* ---- GET /api/v1/events: paging over vtn:events, filters on the page ---- */

int wk_api_parse_event_filter(const char *key, const char *val, wk_event_filter *f, char *err,
                              size_t errlen)
{
    if (strcmp(key, "programID") == 0 || strcmp(key, "target") == 0) {
        char *out = key[0] == 'p' ? f->program : f->target;
        size_t n = strlen(val);
        if (out[0] || !wk_id_valid(val, n)) {
            snprintf(err, errlen, "%s must be given once, 1 to %d of A-Z a-z 0-9 . _ : -", key,
                     WK_ID_MAX);
            return -EINVAL;
        }
        memcpy(out, val, n + 1);
        return 0;
    }
    if (strcmp(key, "status") == 0) {
        int st = wk_event_status_of(val);
        if (st < 0) {
            snprintf(err, errlen, "status must be far, near, active, completed or cancelled");
            return -EINVAL;
        }
        f->status_mask |= 1u << st; /* given more than once: any of them */
        return 0;
    }
    if (strcmp(key, "from") == 0 || strcmp(key, "to") == 0) {
        int64_t *out = key[0] == 'f' ? &f->from_ms : &f->to_ms;
        if (*out || wk_datetime_parse(val, out) < 0) {
            snprintf(err, errlen,
                     "%s must be given once, a UTC date-time such as "
                     "2026-12-03T14:00:00Z",
                     key);
            return -EINVAL;
        }
        return 0;
    }
    snprintf(err, errlen,
             "unknown query parameter '%.40s' (allowed: limit, cursor, programID, "
             "status, target, from, to)",
             key);
    return -EINVAL;
}

struct event_list_q {
    wk__api_page page;
    wk_event_filter *f;
};

static int event_list_param(void *ud, const char *key, const char *val, char *err, size_t errlen)
{
    struct event_list_q *l = ud;
    int rc = wk__api_page_param(&l->page, key, val, err, errlen);
    if (rc != 0)
        return rc < 0 ? rc : 0;
    return wk_api_parse_event_filter(key, val, l->f, err, errlen);
}

int wk_api_parse_event_list(const char *q, size_t n, int *limit, char *cursor, size_t cursorlen,
                            wk_event_filter *f, char *err, size_t errlen)
{
    struct event_list_q l = {{limit, cursor, cursorlen, 0, 0}, f};
    memset(f, 0, sizeof *f);
    *limit = WK_API_LIMIT_DEFAULT;
    cursor[0] = '\0';
    if (q == NULL)
        return 0;
    int rc = wk__api_each_param(q, n, event_list_param, &l, err, errlen);
    if (rc == 0 && f->from_ms && f->to_ms && f->to_ms <= f->from_ms) {
        snprintf(err, errlen, "to must be later than from");
        return -EINVAL;
    }
    return rc;
}

static int has_target(json_t *targets, const char *id)
{
    const char *kind;
    json_t *list;
    json_object_foreach(targets, kind, list)
    {
        if (wk_json_list_has(list, id))
            return 1;
    }
    return 0;
}

int wk_event_matches(const wk_event_filter *f, json_t *ev, int status, int64_t start, int64_t end)
{
    if (f->program[0] &&
        strcmp(json_string_value(json_object_get(ev, "programID")), f->program) != 0)
        return 0;
    if (f->status_mask && !(f->status_mask & (1u << status)))
        return 0;
    if (f->target[0] && !has_target(json_object_get(ev, "targets"), f->target))
        return 0;
    if (f->from_ms && end <= f->from_ms)
        return 0;
    if (f->to_ms && start >= f->to_ms)
        return 0;
    return 1;
}

typedef struct event_list_state {
    int stage;
    char cursor[WK_ID_MAX + 1];
    wk_event_filter f;
    int64_t now;
    wk__api_pager pg;
} event_list_state;

static void event_list_fini(void *st)
{
    wk__api_pager_fini(&((event_list_state *)st)->pg);
}

static json_t *event_item(void *ud, const char *id, const redisReply *h)
{
    event_list_state *s = ud;
    int status = 0;
    json_t *o = wk_event_json(id, h, s->now, &status);
    if (o && !wk_event_matches(&s->f, o, status, wk_hfield_int(h, VTN_F_EVENT_START),
                               wk_hfield_int(h, VTN_F_EVENT_END))) {
        json_decref(o);
        o = NULL;
    }
    return o;
}

static void api_event_list(wk_req *q, void *st)
{
    event_list_state *s = st;
    char err[512];
    switch (s->stage) {
    case 0:
        if (wk_api_parse_event_list(q->query.p, q->query.n, &s->pg.limit, s->cursor,
                                    sizeof s->cursor, &s->f, err, sizeof err) < 0) {
            wk_reply_json_error(q, 400, "%s", err);
            return;
        }
        s->stage = 1;
        if ((s->pg.page = wk__api_page_cmd(q, VTN_KEY_EVENTS, s->cursor, s->pg.limit)) < 0)
            wk_reply_no_room(q);
        return;
    case 1:
        s->stage = 2;
        wk__api_pager_fetch(q, &s->pg, "events", VTN_KEY_EVENT);
        return;
    default:
        s->now = vtn_now_ms();
        wk__api_pager_answer(q, &s->pg, "events", event_item, s);
        return;
    }
}

/* ---- GET /api/v1/events/{eventID}/vens: participation ---- */

static int format_value(const char *key, const char *val, void *out, char *err, size_t errlen)
{
    if (strcmp(val, "json") != 0 && strcmp(val, "csv") != 0) {
        snprintf(err, errlen, "%s must be json or csv", key);
        return -EINVAL;
    }
    *(int *)out = val[0] == 'c';
    return 0;
}

int wk_api_parse_participation_query(const char *q, size_t n, int *csv, char *err, size_t errlen)
{
    *csv = 0;
    return wk__api_parse_single(q, n, "format", format_value, csv, err, errlen);
}

typedef struct vens_state {
    int stage;
    int csv;
    wk_rh rec, members;
    wk_rh answers;   /* the first shard's HGETALL; the others follow it in the round */
    wk_rh schedules; /* ZRANGE vtn:opts:sched of those not ended before the event's start */
    int64_t start, end;
    json_t *event; /* owned */
} vens_state;

static void vens_fini(void *st)
{
    json_decref(((vens_state *)st)->event);
}

/* The opt schedules read, by venID: {venID: [member, ...]}, members as
 * vtn:opts:sched holds them (decoded); NULL when out of memory. */
static json_t *schedules_by_ven(const redisReply *r)
{
    json_t *by = json_object();
    for (size_t i = 0; by && r && r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        const redisReply *e = r->element[i];
        json_t *m = e->type == REDIS_REPLY_STRING ? json_loadb(e->str, e->len, 0, NULL) : NULL;
        const char *ven = json_string_value(json_object_get(m, "v"));
        if (ven == NULL) {
            json_decref(m);
            continue;
        }
        json_t *list = json_object_get(by, ven);
        if (list == NULL && json_object_set_new(by, ven, list = json_array()) < 0)
            list = NULL;
        if (list == NULL || json_array_append_new(list, m) < 0) {
            json_decref(by);
            return NULL;
        }
    }
    return by;
}

static const char *opt_name(char letter)
{
    return letter == 'i' ? "optIn" : letter == 'o' ? "optOut" : NULL;
}

/* One VEN's row from its field of its shard of the participation
 * ("<received mn> <answered mn> <i|o> <code> <ms> [<i|o>]", "-" for what it
 * has not done yet; the sixth part its oadrCreateOpt for the event) or
 * none, and its opt schedules: the modificationNumber it last received,
 * its answer and when, and the opt that follows from them (docs/opt.md,
 * "Precedence"): the event opt, else the oadrCreatedEvent answer, else an
 * opt schedule that covers the event, else none. */
static json_t *participant(const char *ven, const redisReply *field, json_t *schedules,
                           const vens_state *s)
{
    char v[160], recv[24] = "-", ans[24] = "-", opt[8] = "-", code[8] = "-", ms[24] = "-";
    char eo[8] = "-", when[32];
    if (wk_rep_str(field, v, sizeof v))
        sscanf(v, "%23s %23s %7s %7s %23s %7s", recv, ans, opt, code, ms, eo);
    const char *effective = opt_name(eo[0]), *source = "eventOpt", *sched_id = NULL;
    if (effective == NULL && (effective = opt_name(opt[0])) != NULL)
        source = "createdEvent";
    if (effective == NULL &&
        (effective = wk_opt_from_schedules(
             schedules, json_string_value(json_object_get(s->event, "marketContext")), s->start,
             s->end, &sched_id)) != NULL)
        source = "schedule";
    if (effective == NULL)
        effective = source = "none";
    const char *answered = opt_name(opt[0]);
    json_t *row = json_pack(
        "{s:s,s:o,s:o,s:s,s:s,s:o,s:o,s:o}", "venID", ven, "receivedModificationNumber",
        recv[0] == '-' ? json_null() : json_integer(atoll(recv)), "modificationNumber",
        ans[0] == '-' ? json_null() : json_integer(atoll(ans)), "opt", effective, "optSource",
        source, "createdEventOpt", answered ? json_string(answered) : json_null(), "responseCode",
        code[0] == '-' ? json_null() : json_integer(atoll(code)), "respondedDateTime",
        ms[0] == '-' ? json_null() : json_string(vtn_time_format(atoll(ms), when, sizeof when)));
    if (row && sched_id && strcmp(source, "schedule") == 0)
        json_object_set_new(row, "optID", json_string(sched_id));
    return row;
}

/* A JSON integer as a CSV cell; null stays the empty cell. */
static void csv_int(char *out, size_t outlen, json_t *v)
{
    if (json_is_integer(v))
        snprintf(out, outlen, "%lld", (long long)json_integer_value(v));
}

static void vens_answer(wk_req *q, vens_state *s)
{
    /* Targeted VENs (venID list and group members) and whoever answered. */
    json_t *seen = json_object(), *rows = json_array();
    json_t *list = json_object_get(json_object_get(s->event, "targets"), "venID");
    json_t *members = s->members ? wk_rep_strings(wk_rep(q, s->members)) : json_array();
    for (size_t i = 0; i < json_array_size(list); i++)
        json_object_set_new(seen, json_string_value(json_array_get(list, i)), json_null());
    for (size_t i = 0; i < json_array_size(members); i++)
        json_object_set_new(seen, json_string_value(json_array_get(members, i)), json_null());
    for (unsigned sh = 0; sh < VTN_EVENT_VENS_SHARDS; sh++) {
        const redisReply *ans = wk_rep(q, s->answers + (wk_rh)sh);
        for (size_t i = 0; ans && ans->type == REDIS_REPLY_ARRAY && i + 1 < ans->elements; i += 2) {
            char ven[WK_ID_MAX + 1];
            if (wk_rep_str(ans->element[i], ven, sizeof ven))
                json_object_set_new(seen, ven, json_null());
        }
    }
    json_decref(members);
    json_t *schedules = schedules_by_ven(wk_rep(q, s->schedules));
    long long in = 0, out = 0, none = 0, received = 0;
    const char *ven;
    json_t *unused;
    /* Sorted by venID: a stable order for the operator and for diffs of the CSV. */
    size_t n = json_object_size(seen), k = 0;
    const char **ids = calloc(n ? n : 1, sizeof *ids);
    if (ids == NULL || rows == NULL || schedules == NULL) {
        free(ids);
        json_decref(seen);
        json_decref(rows);
        json_decref(schedules);
        wk_reply_internal(q, "out of memory");
        return;
    }
    json_object_foreach(seen, ven, unused) ids[k++] = ven;
    qsort(ids, n, sizeof *ids, strcmp_ptr);
    for (size_t i = 0; i < n; i++) {
        const redisReply *a =
            wk_hfield(wk_rep(q, s->answers + (wk_rh)vtn_event_vens_shard(ids[i])), ids[i]);
        json_t *row = participant(ids[i], a, json_object_get(schedules, ids[i]), s);
        const char *opt = json_string_value(json_object_get(row, "opt"));
        in += strcmp(opt, "optIn") == 0;
        out += strcmp(opt, "optOut") == 0;
        none += strcmp(opt, "none") == 0;
        received += !json_is_null(json_object_get(row, "receivedModificationNumber"));
        json_array_append_new(rows, row);
    }
    free(ids);
    json_decref(seen);
    json_decref(schedules);
    if (!s->csv) {
        wk_reply_json(q, 200,
                      json_pack("{s:O,s:O,s:{s:I,s:I,s:I,s:I},s:o}", "eventID",
                                json_object_get(s->event, "eventID"), "modificationNumber",
                                json_object_get(s->event, "modificationNumber"), "counts",
                                "received", (json_int_t)received, "optIn", (json_int_t)in, "optOut",
                                (json_int_t)out, "none", (json_int_t)none, "vens", rows));
        return;
    }
    vtn_buf_reset(&q->body);
    /* New columns go last: the columns before them keep their places. */
    int rc = vtn_buf_printf(&q->body, "venID,modificationNumber,opt,responseCode,"
                                      "respondedDateTime,receivedModificationNumber,optSource\r\n");
    for (size_t i = 0; rc == 0 && i < json_array_size(rows); i++) {
        json_t *r = json_array_get(rows, i);
        char num[24] = "", code[24] = "", recv[24] = "";
        csv_int(num, sizeof num, json_object_get(r, "modificationNumber"));
        csv_int(code, sizeof code, json_object_get(r, "responseCode"));
        csv_int(recv, sizeof recv, json_object_get(r, "receivedModificationNumber"));
        const char *at = json_string_value(json_object_get(r, "respondedDateTime"));
        /* venIDs are [A-Za-z0-9._:-]: no CSV quoting needed */
        rc = vtn_buf_printf(&q->body, "%s,%s,%s,%s,%s,%s,%s\r\n",
                            json_string_value(json_object_get(r, "venID")), num,
                            json_string_value(json_object_get(r, "opt")), code, at ? at : "", recv,
                            json_string_value(json_object_get(r, "optSource")));
    }
    json_decref(rows);
    if (rc < 0) {
        wk_reply_internal(q, "participation too large to answer");
        return;
    }
    wk_reply_body(q, 200, "text/csv; charset=utf-8");
}

/* Queues an HGETALL of each participation shard, in shard order, so the
 * shard of a VEN is the handle s->answers + vtn_event_vens_shard(venID). */
static void vens_read_shards(wk_req *q, vens_state *s)
{
    char k[VTN_KEY_MAX];
    for (unsigned sh = 0; sh < VTN_EVENT_VENS_SHARDS; sh++) {
        wk_rh h = wk_cmd(q, "HGETALL", vtn_key_eventvens(k, q->path_id, sh), NULL);
        if (h < 0) {
            wk_reply_no_room(q);
            return;
        }
        if (sh == 0)
            s->answers = h;
    }
}

static void api_event_vens(wk_req *q, void *st)
{
    vens_state *s = st;
    char k[VTN_KEY_MAX], err[256];
    switch (s->stage) {
    case 0:
        if (wk_api_parse_participation_query(q->query.p, q->query.n, &s->csv, err, sizeof err) <
            0) {
            wk_reply_json_error(q, 400, "%s", err);
            return;
        }
        s->stage = 1;
        s->rec = wk_cmd(q, "HGETALL", wk_key_event(k, q->path_id), NULL);
        if (s->rec < 0)
            wk_reply_no_room(q);
        return;
    case 1: {
        s->event = wk_event_json(q->path_id, wk_rep(q, s->rec), vtn_now_ms(), NULL);
        if (s->event == NULL) {
            wk_reply_json_error(q, 404, "no event with eventID %s", q->path_id);
            return;
        }
        /* The opt schedules that may cover it: those not ended before its
         * start (the score is a schedule's last end), at most
         * VTN_OPT_SCHED_READ_MAX (docs/opt.md). */
        s->start = wk_hfield_int(wk_rep(q, s->rec), VTN_F_EVENT_START);
        s->end = wk_hfield_int(wk_rep(q, s->rec), VTN_F_EVENT_END);
        char after[24], max[16];
        snprintf(after, sizeof after, "(%lld", (long long)s->start);
        snprintf(max, sizeof max, "%d", VTN_OPT_SCHED_READ_MAX);
        if ((s->schedules = wk_cmd(q, "ZRANGE", VTN_KEY_OPTSCHED, after, "+inf", "BYSCORE", "LIMIT",
                                   "0", max, NULL)) < 0) {
            wk_reply_no_room(q);
            return;
        }
        /* The VENs its groups, resourceIDs and partyIDs name (the reverse
         * indexes), or those enrolled in its program for a program-wide
         * event: one ZUNION, which takes SETs too; with it every shard of
         * the participation, the round's VTN_EVENT_VENS_SHARDS HGETALLs
         * (also those of VENs no longer targeted that answered). */
        static const struct {
            const char *kind, *key;
        } via[] = {
            {"groupID", VTN_KEY_GROUPVENS},
            {"resourceID", VTN_KEY_RESOURCEVENS},
            {"partyID", VTN_KEY_PARTYVENS},
        };
        json_t *targets = json_object_get(s->event, "targets");
        size_t n = 0, named = json_array_size(json_object_get(targets, "venID")), argc = 0;
        for (size_t v = 0; v < sizeof via / sizeof via[0]; v++)
            n += json_array_size(json_object_get(targets, via[v].kind));
        named += n;
        s->stage = 2;
        if (named > 0 && n == 0) {
            vens_read_shards(q, s); /* its venIDs only: no members to read */
            return;
        }
        const char **argv = calloc(n + 3, sizeof *argv);
        char(*keys)[VTN_KEY_MAX] = calloc(n + 1, sizeof *keys);
        char count[24];
        if (argv == NULL || keys == NULL) {
            free(argv);
            free(keys);
            wk_reply_internal(q, "out of memory");
            return;
        }
        argv[argc++] = "ZUNION";
        argv[argc++] = count;
        for (size_t v = 0; v < sizeof via / sizeof via[0]; v++) {
            json_t *list = json_object_get(targets, via[v].kind);
            for (size_t i = 0; i < json_array_size(list); i++, argc++)
                argv[argc] = vtn_key_build(keys[argc - 2], via[v].key,
                                           json_string_value(json_array_get(list, i)), NULL);
        }
        if (named == 0)
            argv[argc++] =
                vtn_key_build(keys[0], VTN_KEY_PROGRAMVENS,
                              json_string_value(json_object_get(s->event, "programID")), NULL);
        snprintf(count, sizeof count, "%zu", argc - 2);
        s->members = wk_cmd_argv(q, (int)argc, argv, NULL);
        free(argv);
        free(keys);
        if (s->members < 0)
            wk_reply_no_room(q);
        else
            vens_read_shards(q, s);
        return;
    }
    default:
        vens_answer(q, s);
        return;
    }
}

const wk_handler wk__api_programs_list = WK_HANDLER(
    "api.programs.list", wk__api_plain_list_state, NULL, wk__api_plain_list_fini, api_program_list);
const wk_handler wk__api_programs_create =
    WK_HANDLER("api.programs.create", program_create_state, NULL, NULL, api_program_create);
const wk_handler wk__api_programs_get =
    WK_HANDLER("api.programs.get", record_get_state, NULL, NULL, api_program_get);
const wk_handler wk__api_events_list =
    WK_HANDLER("api.events.list", event_list_state, NULL, event_list_fini, api_event_list);
const wk_handler wk__api_events_create =
    WK_HANDLER("api.events.create", write_state, NULL, write_fini, api_event_create);
const wk_handler wk__api_events_get =
    WK_HANDLER("api.events.get", record_get_state, NULL, NULL, api_event_get);
const wk_handler wk__api_events_modify =
    WK_HANDLER("api.events.modify", write_state, NULL, write_fini, api_event_modify);
const wk_handler wk__api_events_vens =
    WK_HANDLER("api.events.vens", vens_state, NULL, vens_fini, api_event_vens);
const wk_handler wk__api_events_cancel =
    WK_HANDLER("api.events.cancel", cancel_state, NULL, NULL, api_event_cancel);
