/* The management API's /api/v1/groups (docs/openapi.yaml): named sets of
 * VENs that events target with targets.groupID. PUT creates or replaces a
 * group's members (at most WK_MEMBERS_MAX; POST .../vens adds and removes in
 * batches, wk_api_members.c) in one Lua script (common/lua/members.lua),
 * which keeps each VEN's ventargets:{venID} set (what its polls read) and
 * bumps vtn:events:ver once. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vtn/keys.h"
#include "vtn/log.h"
#include "vtn/time.h"
#include "wk_api_internal.h"
#include "wk_ven.h"

#define GROUPS_PREFIX "/api/v1/groups"

int wk_api_parse_group(const char *body, size_t n, char *name, json_t **vens, char *err,
                       size_t errlen)
{
    wk_members_in m;
    int rc = wk_api_parse_members(body, n, 0, 1, GROUPS_PREFIX "/{groupID}/vens", &m, err, errlen);
    *vens = NULL;
    name[0] = '\0';
    if (rc < 0)
        return rc;
    snprintf(name, WK_NAME_MAX + 1, "%s", m.name);
    *vens = json_incref(m.add);
    wk_members_in_clear(&m);
    return 0;
}

static json_t *group_json(const char *id, const redisReply *h)
{
    char name[WK_NAME_MAX + 1], ct[32], mt[32];
    return json_pack("{s:s,s:s,s:s,s:s}", "groupID", id, "name",
                     wk_hfield_str(h, VTN_F_GROUP_NAME, name, sizeof name), "createdDateTime",
                     vtn_time_format(wk_hfield_int(h, VTN_F_GROUP_CREATED), ct, sizeof ct),
                     "modifiedDateTime",
                     vtn_time_format(wk_hfield_int(h, VTN_F_GROUP_MODIFIED), mt, sizeof mt));
}

/* Queues the group's record and its members, sorted. */
static void group_read(wk_req *q, wk_rh *rec, wk_rh *members)
{
    char k[VTN_KEY_MAX];
    *rec = wk_cmd(q, "HGETALL", wk_key_group(k, q->path_id), NULL);
    *members =
        wk_cmd(q, "SORT", vtn_key_build(k, VTN_KEY_GROUPVENS, q->path_id, NULL), "ALPHA", NULL);
    if (*rec < 0 || *members < 0)
        wk_reply_no_room(q);
}

/* ---- PUT and DELETE /api/v1/groups/{groupID} ---- */

typedef struct group_write_state {
    int stage;
    int del;
    wk_rh outcome, rec, members;
} group_write_state;

static void group_write(wk_req *q, group_write_state *s)
{
    char err[512], name[WK_NAME_MAX + 1] = "", kind[8];
    switch (s->stage) {
    case 0: {
        json_t *vens = NULL;
        if (!s->del) {
            if (!wk__api_json_ctype(q->env.content_type)) {
                wk_reply_json_error(q, 415, "Content-Type must be application/json");
                return;
            }
            int rc = wk_api_parse_group(q->env.body.p, q->env.body.n, name, &vens, err, sizeof err);
            if (rc < 0) {
                wk_reply_json_error(q, rc == -E2BIG ? 413 : 400, "%s", err);
                return;
            }
            if (!name[0]) /* a group is named by its id by default */
                snprintf(name, sizeof name, "%s", q->path_id);
        }
        s->stage = 1;
        s->outcome = wk__api_members_script(q, &wk__api_group_members, s->del ? "del" : "put", name,
                                            vens, NULL);
        json_decref(vens);
        if (s->outcome < 0)
            wk_reply_no_room(q);
        return;
    }
    case 1:
        if (!wk__api_script_kind(q, s->outcome, kind, sizeof kind, "group", "groupID"))
            return;
        vtn_info(s->del ? "group_deleted" : "group_written", "req=%s group=%s", q->rid, q->path_id);
        if (s->del) {
            wk_reply_json(q, 200,
                          json_pack("{s:s,s:s}", "groupID", q->path_id, "state", "deleted"));
            return;
        }
        s->stage = strcmp(kind, "201") == 0 ? 3 : 2;
        group_read(q, &s->rec, &s->members);
        return;
    default: {
        json_t *o = group_json(q->path_id, wk_rep(q, s->rec));
        json_t *m = wk__api_members(wk_rep(q, s->members));
        if (o == NULL || m == NULL) {
            json_decref(o);
            json_decref(m);
            wk_reply_internal(q, "out of memory");
            return;
        }
        json_object_set_new(o, "venIDs", m);
        if (s->stage == 3)
            snprintf(q->headers, sizeof q->headers, "Location: " GROUPS_PREFIX "/%s\r\n",
                     q->path_id);
        wk_reply_json(q, s->stage == 3 ? 201 : 200, o);
        return;
    }
    }
}

static void api_group_put(wk_req *q, void *st)
{
    group_write(q, st);
}

static void api_group_delete(wk_req *q, void *st)
{
    ((group_write_state *)st)->del = 1;
    group_write(q, st);
}

/* ---- GET /api/v1/groups/{groupID} ---- */

typedef struct group_get_state {
    int asked;
    wk_rh rec, members;
} group_get_state;

static void api_group_get(wk_req *q, void *st)
{
    group_get_state *s = st;
    if (!s->asked) {
        s->asked = 1;
        group_read(q, &s->rec, &s->members);
        return;
    }
    if (wk_hash_empty(wk_rep(q, s->rec))) {
        wk_reply_json_error(q, 404, "no group with groupID %s", q->path_id);
        return;
    }
    s->asked = 0;
    group_write_state w = {.stage = 2, .rec = s->rec, .members = s->members};
    group_write(q, &w);
}

/* ---- GET /api/v1/groups ---- */

static json_t *group_item(void *ud, const char *id, const redisReply *h)
{
    (void)ud;
    return wk_hash_empty(h) ? NULL : group_json(id, h);
}

static void api_group_list(wk_req *q, void *st)
{
    static const wk__api_list_kind groups = {VTN_KEY_GROUPS, "groups", VTN_KEY_GROUP, group_item};
    wk__api_plain_list(q, st, &groups);
}

const wk_handler wk__api_groups_list = WK_HANDLER("api.groups.list", wk__api_plain_list_state, NULL,
                                                  wk__api_plain_list_fini, api_group_list);
const wk_handler wk__api_groups_get =
    WK_HANDLER("api.groups.get", group_get_state, NULL, NULL, api_group_get);
const wk_handler wk__api_groups_put =
    WK_HANDLER("api.groups.put", group_write_state, NULL, NULL, api_group_put);
const wk_handler wk__api_groups_delete =
    WK_HANDLER("api.groups.delete", group_write_state, NULL, NULL, api_group_delete);
