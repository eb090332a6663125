/* What events target VENs by, besides their venIDs (docs/openapi.yaml):
 * the members of groups and programs (PUT replaces them, POST .../vens
 * adds and removes in batches), a program's deletion, and the resourceIDs
 * and partyIDs the operator records for a VEN (/api/v1/vens/{venID}/targets).
 *
 * Every change is one Lua script that keeps each VEN's ventargets:{venID}
 * set (the one set its polls read) and the reverse indexes (kind value ->
 * venIDs), and bumps vtn:events:ver once: the writes follow the VENs that
 * change, never the events. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vtn/keys.h"
#include "vtn/log.h"
#include "vtn/time.h"
#include "wk_api_internal.h"
#include "wk_ven.h"

/* ---- bodies (pure, unit-tested) ---- */

int wk_api_id_list(json_t *list, const char *field, size_t max, int idmax, const char *more,
                   char *err, size_t errlen)
{
    if (!json_is_array(list)) {
        snprintf(err, errlen, "%s must be an array of ids (at most %zu)", field, max);
        return -EINVAL;
    }
    if (json_array_size(list) > max) {
        snprintf(err, errlen, "%s has %zu entries: at most %zu per request%s%s", field,
                 json_array_size(list), max, more ? "; " : "", more ? more : "");
        return -E2BIG;
    }
    for (size_t i = 0; i < json_array_size(list); i++) {
        json_t *v = json_array_get(list, i);
        if (!json_is_string(v) || json_string_length(v) > (size_t)idmax ||
            !wk_id_valid(json_string_value(v), json_string_length(v))) {
            snprintf(err, errlen, "%s[%zu] must be 1 to %d of A-Z a-z 0-9 . _ : -", field, i,
                     idmax);
            return -EINVAL;
        }
    }
    return 0;
}

void wk_members_in_clear(wk_members_in *m)
{
    json_decref(m->add);
    json_decref(m->remove);
    memset(m, 0, sizeof *m);
}

int wk_api_parse_members(const char *body, size_t n, int batch, int named, const char *batch_path,
                         wk_members_in *m, char *err, size_t errlen)
{
    static const char *const put_names[] = {"name", "venIDs", NULL};
    static const char *const post_names[] = {"add", "remove", NULL};
    const char *const *names = batch ? post_names : put_names;
    char more[160];
    memset(m, 0, sizeof *m);
    snprintf(more, sizeof more,
             "build bigger sets with POST %s batches of {\"add\": [...], "
             "\"remove\": [...]}",
             batch_path);
    json_t *o = wk__api_json_object(body, n,
                                    batch   ? "body must be a JSON object {add, remove}"
                                    : named ? "body must be a JSON object {name, venIDs}"
                                            : "body must be a JSON object {venIDs}",
                                    err, errlen);
    if (o == NULL)
        return -EINVAL;
    int rc = wk__api_json_fields(o, named || batch ? names : names + 1, NULL, NULL, err, errlen);
    json_t *nm = json_object_get(o, "name");
    if (rc == 0 && !batch && nm &&
        !(json_is_string(nm) && wk_ven_name_valid(json_string_value(nm), json_string_length(nm)))) {
        snprintf(err, errlen, "name must be a string of 1 to %d bytes without control characters",
                 WK_NAME_MAX);
        rc = -EINVAL;
    }
    json_t *add = json_object_get(o, batch ? "add" : "venIDs");
    json_t *rem = json_object_get(o, "remove");
    if (batch && add == NULL && rem == NULL && rc == 0) {
        snprintf(err, errlen, "give add, remove or both (arrays of venIDs)");
        rc = -EINVAL;
    }
    if (batch && add == NULL)
        add = json_array();
    else
        json_incref(add);
    if (batch && rem == NULL)
        rem = json_array();
    else
        json_incref(rem);
    if (rc == 0)
        rc = wk_api_id_list(add, batch ? "add" : "venIDs", WK_MEMBERS_MAX, WK_ID_MAX, more, err,
                            errlen);
    if (rc == 0 && batch)
        rc = wk_api_id_list(rem, "remove", WK_MEMBERS_MAX, WK_ID_MAX, more, err, errlen);
    if (rc == 0 && json_array_size(add) + json_array_size(rem) > WK_MEMBERS_MAX) {
        snprintf(err, errlen, "add and remove have %zu venIDs together: at most %d per request; %s",
                 json_array_size(add) + json_array_size(rem), WK_MEMBERS_MAX, more);
        rc = -E2BIG;
    }
    if (rc == 0) {
        if (nm)
            snprintf(m->name, sizeof m->name, "%s", json_string_value(nm));
        m->add = add;
        m->remove = batch ? rem : NULL;
        if (!batch)
            json_decref(rem);
    } else {
        json_decref(add);
        json_decref(rem);
    }
    json_decref(o);
    return rc;
}

int wk_api_parse_ven_targets(const char *body, size_t n, json_t **resources, json_t **parties,
                             char *err, size_t errlen)
{
    static const char *const names[] = {"resourceID", "partyID", NULL};
    *resources = *parties = NULL;
    json_t *o = wk__api_json_object(body, n, "body must be a JSON object {resourceID, partyID}",
                                    err, errlen);
    if (o == NULL)
        return -EINVAL;
    int rc = wk__api_json_fields(o, names, NULL, NULL, err, errlen);
    json_t *lists[2] = {NULL, NULL};
    for (int i = 0; i < 2; i++) {
        lists[i] = json_object_get(o, names[i]);
        lists[i] = lists[i] ? json_incref(lists[i]) : json_array(); /* absent: none */
        if (rc == 0)
            rc = wk_api_id_list(lists[i], names[i], WK_VEN_TARGET_IDS_MAX, WK_VEN_TARGET_ID_MAX,
                                NULL, err, errlen);
    }
    if (rc == 0) {
        *resources = lists[0];
        *parties = lists[1];
    } else {
        json_decref(lists[0]);
        json_decref(lists[1]);
    }
    json_decref(o);
    return rc < 0 ? -EINVAL : 0;
}

/* ---- the members script (common/lua/members.lua) ---- */

int wk__api_script_kind(wk_req *q, wk_rh h, char *kind, size_t kindlen, const char *what,
                        const char *field)
{
    if (!wk_rep_elem(wk_rep(q, h), 0, kind, kindlen)) {
        wk_reply_internal(q, "unreadable script outcome");
        return 0;
    }
    if (strcmp(kind, "404") == 0) {
        wk_reply_json_error(q, 404, "no %s with %s %s", what, field, q->path_id);
        return 0;
    }
    return 1;
}

const wk__api_members_kind wk__api_group_members = {
    VTN_KEY_GROUP, VTN_KEY_GROUPVENS, VTN_KEY_GROUPS,          VTN_TARGET_GROUP,
    "group",       "groupID",         "/api/v1/groups/%s/vens"};
const wk__api_members_kind wk__api_program_members = {
    VTN_KEY_PROGRAM, VTN_KEY_PROGRAMVENS, VTN_KEY_PROGRAMS,          VTN_TARGET_PROGRAM,
    "program",       "programID",         "/api/v1/programs/%s/vens"};

wk_rh wk__api_members_script(wk_req *q, const wk__api_members_kind *k, const char *op,
                             const char *name, json_t *add, json_t *remove)
{
    char k1[VTN_KEY_MAX], k2[VTN_KEY_MAX], now[24], nadd[24];
    size_t na = json_array_size(add), nr = json_array_size(remove), argc = 0;
    const char **argv = calloc(na + nr + 16, sizeof *argv);
    if (argv == NULL)
        return -ENOMEM;
    snprintf(now, sizeof now, "%lld", (long long)vtn_now_ms());
    snprintf(nadd, sizeof nadd, "%zu", na);
    argv[argc++] = "EVALSHA";
    argv[argc++] = q->w->redis.sha[WK_SCRIPT_MEMBERS];
    argv[argc++] = "4";
    argv[argc++] = vtn_key_build(k1, k->record, q->path_id, NULL);
    argv[argc++] = vtn_key_build(k2, k->members, q->path_id, NULL);
    argv[argc++] = k->list;
    argv[argc++] = VTN_KEY_EVENTSVER;
    argv[argc++] = op;
    argv[argc++] = k->prefix;
    argv[argc++] = q->path_id;
    argv[argc++] = name ? name : "";
    argv[argc++] = now;
    argv[argc++] = nadd;
    for (size_t i = 0; i < na; i++)
        argv[argc++] = json_string_value(json_array_get(add, i));
    for (size_t i = 0; i < nr; i++)
        argv[argc++] = json_string_value(json_array_get(remove, i));
    wk_rh h = wk_cmd_argv(q, (int)argc, argv, NULL);
    free(argv);
    return h;
}

/* Answers a body refused by wk_api_parse_members: 413 past the limit. */
static void reply_bad_members(wk_req *q, int rc, const char *err)
{
    wk_reply_json_error(q, rc == -E2BIG ? 413 : 400, "%s", err);
}

/* ---- PUT and POST /api/v1/{groups,programs}/{id}/vens ---- */

typedef struct members_state {
    int stage;
    wk_rh outcome;
} members_state;

static void members_write(wk_req *q, members_state *s, const wk__api_members_kind *k, int batch)
{
    char err[512], path[WK_ID_MAX + 64], kind[8];
    if (s->stage == 0) {
        wk_members_in m;
        if (!wk__api_json_ctype(q->env.content_type)) {
            wk_reply_json_error(q, 415, "Content-Type must be application/json");
            return;
        }
        snprintf(path, sizeof path, k->batch_path, q->path_id);
        int rc =
            wk_api_parse_members(q->env.body.p, q->env.body.n, batch, 0, path, &m, err, sizeof err);
        if (rc < 0) {
            reply_bad_members(q, rc, err);
            return;
        }
        s->stage = 1;
        s->outcome = wk__api_members_script(q, k, batch ? "batch" : "put", NULL, m.add, m.remove);
        wk_members_in_clear(&m);
        if (s->outcome < 0)
            wk_reply_no_room(q);
        return;
    }
    if (!wk__api_script_kind(q, s->outcome, kind, sizeof kind, k->what, k->id_field))
        return;
    const redisReply *r = wk_rep(q, s->outcome);
    long long n[3] = {0, 0, 0};
    for (size_t i = 0; i < 3 && r->elements > i + 1; i++)
        n[i] = r->element[i + 1]->type == REDIS_REPLY_INTEGER ? r->element[i + 1]->integer : 0;
    vtn_info("members_changed", "req=%s %s=%s members=%lld added=%lld removed=%lld", q->rid,
             k->what, q->path_id, n[0], n[1], n[2]);
    wk_reply_json(q, 200,
                  json_pack("{s:s,s:I,s:I,s:I}", k->id_field, q->path_id, "members",
                            (json_int_t)n[0], "added", (json_int_t)n[1], "removed",
                            (json_int_t)n[2]));
}

static void api_program_vens_put(wk_req *q, void *st)
{
    members_write(q, st, &wk__api_program_members, 0);
}

static void api_program_vens_post(wk_req *q, void *st)
{
    members_write(q, st, &wk__api_program_members, 1);
}

static void api_group_vens_post(wk_req *q, void *st)
{
    members_write(q, st, &wk__api_group_members, 1);
}

/* ---- GET /api/v1/programs/{programID}/vens: paged ---- */

typedef struct program_vens_state {
    int stage;
    int limit;
    char cursor[WK_ID_MAX + 1];
    wk_rh exists, page;
} program_vens_state;

static void api_program_vens_get(wk_req *q, void *st)
{
    program_vens_state *s = st;
    char k[VTN_KEY_MAX], err[512];
    if (s->stage == 0) {
        if (wk__api_parse_page_only(q->query.p, q->query.n, &s->limit, s->cursor, sizeof s->cursor,
                                    err, sizeof err) < 0) {
            wk_reply_json_error(q, 400, "%s", err);
            return;
        }
        s->stage = 1;
        s->exists = wk_cmd(q, "EXISTS", wk_key_program(k, q->path_id), NULL);
        s->page = wk__api_page_cmd(q, vtn_key_build(k, VTN_KEY_PROGRAMVENS, q->path_id, NULL),
                                   s->cursor, s->limit);
        if (s->exists < 0 || s->page < 0)
            wk_reply_no_room(q);
        return;
    }
    if (wk_rep_int(q, s->exists, 0) != 1) {
        wk_reply_json_error(q, 404, "no program with programID %s", q->path_id);
        return;
    }
    json_t *all = wk__api_members(wk_rep(q, s->page)), *shown = json_array();
    if (all == NULL || shown == NULL) {
        json_decref(all);
        json_decref(shown);
        wk_reply_internal(q, "out of memory");
        return;
    }
    size_t n = json_array_size(all) < (size_t)s->limit ? json_array_size(all) : (size_t)s->limit;
    for (size_t i = 0; i < n; i++)
        json_array_append(shown, json_array_get(all, i));
    json_t *next = wk__api_next_cursor(all, s->limit, (int)n);
    json_decref(all);
    wk_reply_json(
        q, 200,
        json_pack("{s:s,s:o,s:o}", "programID", q->path_id, "venIDs", shown, "next_cursor", next));
}

/* ---- DELETE /api/v1/programs/{programID} ---- */

typedef struct program_delete_state {
    int stage;
    wk_rh outcome;
} program_delete_state;

static void api_program_delete(wk_req *q, void *st)
{
    program_delete_state *s = st;
    char k1[VTN_KEY_MAX], k2[VTN_KEY_MAX], now[24], kind[8], live[24], first[WK_ID_MAX + 1];
    if (s->stage == 0) {
        snprintf(now, sizeof now, "%lld", (long long)vtn_now_ms());
        s->stage = 1;
        s->outcome = wk_eval(q, WK_SCRIPT_PROGRAMDEL, 6, wk_key_program(k1, q->path_id),
                             vtn_key_build(k2, VTN_KEY_PROGRAMVENS, q->path_id, NULL),
                             VTN_KEY_PROGRAMS, VTN_KEY_EVENTS, VTN_KEY_EVENTSVER,
                             VTN_KEY_REPORTPOLICIES, q->path_id, now, NULL);
        if (s->outcome < 0)
            wk_reply_no_room(q);
        return;
    }
    if (!wk__api_script_kind(q, s->outcome, kind, sizeof kind, "program", "programID"))
        return;
    const redisReply *r = wk_rep(q, s->outcome);
    if (strcmp(kind, "409") == 0) {
        wk_rep_elem(r, 1, live, sizeof live);
        wk_rep_elem(r, 2, first, sizeof first);
        wk_reply_json_error(q, 409,
                            "program %s has %s event(s) that have not ended (e.g. %s): cancel "
                            "them or wait for their end first",
                            q->path_id, live, first);
        return;
    }
    vtn_info("program_deleted", "req=%s program=%s", q->rid, q->path_id);
    wk_reply_json(q, 200, json_pack("{s:s,s:s}", "programID", q->path_id, "state", "deleted"));
}

/* ---- GET and PUT /api/v1/vens/{venID}/targets ---- */

static int by_string(const void *a, const void *b)
{
    return strcmp(json_string_value(*(json_t *const *)a), json_string_value(*(json_t *const *)b));
}

void wk__api_sort_json(json_t *list, int (*cmp)(const void *, const void *))
{
    size_t n = json_array_size(list);
    json_t **v = calloc(n ? n : 1, sizeof *v);
    if (v == NULL)
        return; /* unsorted, still whole */
    for (size_t i = 0; i < n; i++)
        v[i] = json_incref(json_array_get(list, i));
    qsort(v, n, sizeof *v, cmp);
    json_array_clear(list);
    for (size_t i = 0; i < n; i++)
        json_array_append_new(list, v[i]);
    free(v);
}

void wk__api_sort_strings(json_t *list)
{
    wk__api_sort_json(list, by_string);
}

json_t *wk__api_ven_targets(const redisReply *members)
{
    static const struct {
        const char *prefix, *field;
    } kinds[] = {
        {VTN_TARGET_RESOURCE, "resourceID"},
        {VTN_TARGET_PARTY, "partyID"},
        {VTN_TARGET_GROUP, "groupID"},
        {VTN_TARGET_PROGRAM, "programID"},
    };
    size_t nk = sizeof kinds / sizeof kinds[0];
    json_t *all = wk_rep_strings(members), *o = json_object();
    if (all == NULL || o == NULL) {
        json_decref(all);
        json_decref(o);
        return NULL;
    }
    for (size_t k = 0; k < nk; k++)
        json_object_set_new(o, kinds[k].field, json_array());
    for (size_t i = 0; i < json_array_size(all); i++) {
        const char *m = json_string_value(json_array_get(all, i));
        for (size_t k = 0; k < nk; k++) {
            size_t pl = strlen(kinds[k].prefix);
            if (strncmp(m, kinds[k].prefix, pl) == 0)
                json_array_append_new(json_object_get(o, kinds[k].field), json_string(m + pl));
        }
    }
    json_decref(all);
    for (size_t k = 0; k < nk; k++) /* sorted: a stable answer */
        wk__api_sort_strings(json_object_get(o, kinds[k].field));
    return o;
}

typedef struct ven_targets_state {
    int stage;
    wk_rh rec, members, outcome;
} ven_targets_state;

static void ven_targets_read(wk_req *q, ven_targets_state *s)
{
    char k[VTN_KEY_MAX];
    s->rec = wk_cmd(q, "EXISTS", wk_key_ven(k, q->path_id), NULL);
    s->members =
        wk_cmd(q, "SMEMBERS", vtn_key_build(k, VTN_KEY_VENTARGETS, q->path_id, NULL), NULL);
    if (s->rec < 0 || s->members < 0)
        wk_reply_no_room(q);
}

static void ven_targets_answer(wk_req *q, ven_targets_state *s)
{
    if (wk_rep_int(q, s->rec, 0) != 1) {
        wk_reply_json_error(q, 404, "no VEN with venID %s", q->path_id);
        return;
    }
    json_t *o = wk__api_ven_targets(wk_rep(q, s->members));
    if (o == NULL) {
        wk_reply_internal(q, "out of memory");
        return;
    }
    json_object_set_new(o, "venID", json_string(q->path_id));
    wk_reply_json(q, 200, o);
}

static void api_ven_targets_get(wk_req *q, void *st)
{
    ven_targets_state *s = st;
    if (s->stage++ == 0)
        ven_targets_read(q, s);
    else
        ven_targets_answer(q, s);
}

static void api_ven_targets_put(wk_req *q, void *st)
{
    ven_targets_state *s = st;
    char err[512], k1[VTN_KEY_MAX], k2[VTN_KEY_MAX], kind[8], nres[16];
    switch (s->stage) {
    case 0: {
        json_t *res = NULL, *parties = NULL;
        if (!wk__api_json_ctype(q->env.content_type)) {
            wk_reply_json_error(q, 415, "Content-Type must be application/json");
            return;
        }
        if (wk_api_parse_ven_targets(q->env.body.p, q->env.body.n, &res, &parties, err,
                                     sizeof err) < 0) {
            wk_reply_json_error(q, 400, "%s", err);
            return;
        }
        size_t nr = json_array_size(res), np = json_array_size(parties), argc = 0;
        const char *argv[2 * WK_VEN_TARGET_IDS_MAX + 8];
        snprintf(nres, sizeof nres, "%zu", nr);
        argv[argc++] = "EVALSHA";
        argv[argc++] = q->w->redis.sha[WK_SCRIPT_VENTARGETS];
        argv[argc++] = "3";
        argv[argc++] = wk_key_ven(k1, q->path_id);
        argv[argc++] = vtn_key_build(k2, VTN_KEY_VENTARGETS, q->path_id, NULL);
        argv[argc++] = VTN_KEY_EVENTSVER;
        argv[argc++] = q->path_id;
        argv[argc++] = nres;
        for (size_t i = 0; i < nr; i++)
            argv[argc++] = json_string_value(json_array_get(res, i));
        for (size_t i = 0; i < np; i++)
            argv[argc++] = json_string_value(json_array_get(parties, i));
        s->stage = 1;
        s->outcome = wk_cmd_argv(q, (int)argc, argv, NULL);
        json_decref(res);
        json_decref(parties);
        if (s->outcome < 0)
            wk_reply_no_room(q);
        return;
    }
    case 1:
        if (!wk__api_script_kind(q, s->outcome, kind, sizeof kind, "VEN", "venID"))
            return;
        vtn_info("ven_targets_written", "req=%s ven=%s", q->rid, q->path_id);
        s->stage = 2;
        ven_targets_read(q, s);
        return;
    default:
        ven_targets_answer(q, s);
        return;
    }
}

const wk_handler wk__api_program_vens_get =
    WK_HANDLER("api.programs.vens.get", program_vens_state, NULL, NULL, api_program_vens_get);
const wk_handler wk__api_program_vens_put =
    WK_HANDLER("api.programs.vens.put", members_state, NULL, NULL, api_program_vens_put);
const wk_handler wk__api_program_vens_post =
    WK_HANDLER("api.programs.vens.post", members_state, NULL, NULL, api_program_vens_post);
const wk_handler wk__api_programs_delete =
    WK_HANDLER("api.programs.delete", program_delete_state, NULL, NULL, api_program_delete);
const wk_handler wk__api_group_vens_post =
    WK_HANDLER("api.groups.vens.post", members_state, NULL, NULL, api_group_vens_post);
const wk_handler wk__api_ven_targets_get =
    WK_HANDLER("api.vens.targets.get", ven_targets_state, NULL, NULL, api_ven_targets_get);
const wk_handler wk__api_ven_targets_put =
    WK_HANDLER("api.vens.targets.put", ven_targets_state, NULL, NULL, api_ven_targets_put);
