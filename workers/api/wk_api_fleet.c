/* GET /api/v1/vens: the fleet list with its filters (q, program, group,
 * state) over cursor paging, built to stay fast at 100,000 VENs.
 *
 * A page walks candidates in venID order from one index (vtn:vens; a
 * program's member set with program=; the VENs of vtn:reports:overdue
 * with state=overdue). With group= the walk's WK_VEN_SCAN_MAX candidates
 * first go through one SMISMEMBER of the group's set. It reads each
 * remaining candidate's record (and, for a group or a program the walk
 * does not cover, SMISMEMBER of its ventargets) in pipelined rounds of
 * WK_VEN_SCAN_CHUNK, keeps those that match, and stops at limit matches,
 * at WK_VEN_SCAN_MAX candidates looked at, or at the end of the index. next_cursor is the last
 * candidate looked at, so a filtered page may hold fewer than limit VENs (even none) while
 * next_cursor is not null: only a null next_cursor ends the list. A last round reads the shown
 * VENs' queues (LLEN) and report requests (HVALS venrr). */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "vtn/log.h"
#include "vtn/time.h"
#include "wk_api_internal.h"
#include "wk_ven.h"

#define WK_VEN_SCAN_CHUNK 500      /* candidates read a round (fewer at 3 commands each) */
#define WK_VEN_SCAN_MAX 2000       /* candidates one page looks at, at most */
#define WK_VEN_OVERDUE_READ 100000 /* members of vtn:reports:overdue state=overdue reads */

static const char *const state_names[WK_VS__COUNT] = {
    [WK_VS_ANY] = "",
    [WK_VS_PROVISIONED] = "provisioned",
    [WK_VS_REGISTERED] = "registered",
    [WK_VS_ONLINE] = "online",
    [WK_VS_OFFLINE] = "offline",
    [WK_VS_OVERDUE] = "overdue",
    [WK_VS_PUSH_UNDELIVERABLE] = "push_undeliverable",
};

/* ---- the query ---- */

struct ven_list_q {
    wk__api_page page;
    wk_ven_list_query *out;
    int seen_name, seen_q, seen_program, seen_group, seen_state;
};

static int copy_checked(const char *key, const char *val, int ok, int max, const char *what,
                        char *out, size_t outlen, char *err, size_t errlen)
{
    size_t n = strlen(val);
    if (!ok || n == 0 || n >= outlen) {
        snprintf(err, errlen, "%s must be 1 to %d %s", key, max, what);
        return -EINVAL;
    }
    memcpy(out, val, n + 1);
    return 0;
}

static int ven_list_param(void *ud, const char *key, const char *val, char *err, size_t errlen)
{
    struct ven_list_q *l = ud;
    wk_ven_list_query *o = l->out;
    int rc = wk__api_page_param(&l->page, key, val, err, errlen);
    if (rc != 0)
        return rc < 0 ? rc : 0;
    size_t n = strlen(val);
    if (strcmp(key, "name") == 0 || strcmp(key, "q") == 0) {
        int is_q = key[0] == 'q';
        if (wk__api_param_once(key, is_q ? &l->seen_q : &l->seen_name, err, errlen) < 0)
            return -EINVAL;
        return copy_checked(key, val, wk_ven_name_valid(val, n), WK_NAME_MAX,
                            "bytes without control characters", is_q ? o->q : o->name,
                            is_q ? sizeof o->q : sizeof o->name, err, errlen);
    }
    if (strcmp(key, "program") == 0 || strcmp(key, "group") == 0) {
        int is_p = key[0] == 'p';
        if (wk__api_param_once(key, is_p ? &l->seen_program : &l->seen_group, err, errlen) < 0)
            return -EINVAL;
        return copy_checked(key, val, wk_id_valid(val, n), WK_ID_MAX,
                            is_p ? "characters of a programID ([A-Za-z0-9._:-])"
                                 : "characters of a groupID ([A-Za-z0-9._:-])",
                            is_p ? o->program : o->group,
                            is_p ? sizeof o->program : sizeof o->group, err, errlen);
    }
    if (strcmp(key, "state") == 0) {
        if (wk__api_param_once(key, &l->seen_state, err, errlen) < 0)
            return -EINVAL;
        for (int i = 1; i < WK_VS__COUNT; i++)
            if (strcmp(val, state_names[i]) == 0) {
                o->state = i;
                return 0;
            }
        snprintf(err, errlen,
                 "state must be one of provisioned, registered, online, offline, overdue, "
                 "push_undeliverable");
        return -EINVAL;
    }
    char k[80];
    snprintf(err, errlen,
             "unknown query parameter '%s' (allowed: limit, cursor, name, q, program, group, "
             "state)",
             vtn_log_quote(k, sizeof k, key, strlen(key)));
    return -EINVAL;
}

int wk_api_parse_ven_list(const char *q, size_t n, wk_ven_list_query *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    out->limit = WK_API_LIMIT_DEFAULT;
    struct ven_list_q l = {
        {&out->limit, out->cursor, sizeof out->cursor, 0, 0}, out, 0, 0, 0, 0, 0};
    if (q == NULL)
        return 0;
    int rc = wk__api_each_param(q, n, ven_list_param, &l, err, errlen);
    if (rc == 0 && l.page.seen_cursor && l.seen_name) {
        snprintf(err, errlen, "cursor cannot be combined with name (a name matches one VEN)");
        return -EINVAL;
    }
    return rc;
}

int wk_api_parse_list_query(const char *q, size_t n, int *limit, char *cursor, size_t cursorlen,
                            char *name, size_t namelen, char *err, size_t errlen)
{
    wk_ven_list_query l;
    int rc = wk_api_parse_ven_list(q, n, &l, err, errlen);
    *limit = l.limit;
    snprintf(cursor, cursorlen, "%s", rc == 0 ? l.cursor : "");
    snprintf(name, namelen, "%s", rc == 0 ? l.name : "");
    return rc;
}

/* Case-insensitive substring (ASCII letters; other bytes as they are). */
static int has_substring(const char *s, size_t n, const char *needle)
{
    size_t m = strlen(needle);
    for (size_t i = 0; m <= n && i + m <= n; i++) {
        size_t j = 0;
        while (j < m && tolower((unsigned char)s[i + j]) == tolower((unsigned char)needle[j]))
            j++;
        if (j == m)
            return 1;
    }
    return 0;
}

/* ---- the handler ---- */

enum list_stage { LIST_START = 0, LIST_SCAN, LIST_EXTRAS };

typedef struct list_state {
    enum list_stage stage;
    wk_ven_list_query f;
    const char *source; /* the index walked: NULL with a pool */
    char source_key[VTN_KEY_MAX];
    int member_of; /* SMISMEMBER asked: group, then program when not walked */
    int chunk;     /* candidates asked of the index a round */
    wk_rh page;    /* the index's next candidates (ZRANGEBYLEX, or the pool's read) */
    wk_rh first;   /* the first candidate's HGETALL; the others follow */
    int per;       /* commands per candidate */
    json_t *cands; /* owned: the candidates being read */
    json_t *pool;  /* owned: sorted candidates (name=, state=overdue), NULL when walking */
    size_t pool_at;
    int looked, done;         /* candidates looked at; the index is exhausted */
    char last[WK_ID_MAX + 1]; /* the last candidate looked at */
    /* group= over a walk: the walk's candidates (WK_VEN_SCAN_MAX at once)
     * go through one SMISMEMBER of the group's set, and its members become
     * the pool; raw_last and raw_more say where the walk stopped. */
    int group_pool, checking;
    wk_rh check;
    char raw_last[WK_ID_MAX + 1];
    int raw_more;
    int stopped_early; /* the page filled before the candidates read were all looked at */
    json_t *items;     /* owned: the VENs of the page */
} list_state;

static void list_fini(void *st)
{
    list_state *s = st;
    json_decref(s->cands);
    json_decref(s->pool);
    json_decref(s->items);
    s->cands = s->pool = s->items = NULL;
}

/* Queues the reads of the next candidates (from the pool, or the index's
 * reply cands) and the index's next chunk after them; 0, or answers. */
static int read_candidates(wk_req *q, list_state *s)
{
    char k[VTN_KEY_MAX];
    size_t n = json_array_size(s->cands);
    if (s->source && (int)n < s->chunk)
        s->done = 1;
    if (s->source && !s->done && n > 0 && s->looked + (int)n < WK_VEN_SCAN_MAX) {
        const char *last = json_string_value(json_array_get(s->cands, n - 1));
        if ((s->page = wk__api_page_cmd(q, s->source, last, s->chunk - 1)) < 0)
            goto no_room;
    } else {
        s->page = 0;
    }
    s->first = 0;
    for (size_t i = 0; i < n; i++) {
        const char *ven = json_string_value(json_array_get(s->cands, i));
        wk_rh h = wk_cmd(q, "HGETALL", wk_key_ven(k, ven), NULL);
        if (h < 0)
            goto no_room;
        if (i == 0)
            s->first = h;
        if (s->member_of) { /* one SMISMEMBER for the group and the program not walked */
            char g[WK_ID_MAX + 8], p[WK_ID_MAX + 8];
            const char *argv[4] = {"SMISMEMBER", vtn_key_build(k, VTN_KEY_VENTARGETS, ven, NULL)};
            int argc = 2;
            if (s->f.group[0] && !s->group_pool) {
                snprintf(g, sizeof g, "%s%s", VTN_TARGET_GROUP, s->f.group);
                argv[argc++] = g;
            }
            if (s->f.program[0] && !s->source_key[0]) {
                snprintf(p, sizeof p, "%s%s", VTN_TARGET_PROGRAM, s->f.program);
                argv[argc++] = p;
            }
            if (wk_cmd_argv(q, argc, argv, NULL) < 0)
                goto no_room;
        }
        if (s->f.state == WK_VS_OVERDUE && wk_cmd(q, "HVALS", wk_key_venrr(k, ven), NULL) < 0)
            goto no_room;
    }
    return 0;
no_room:
    wk_reply_no_room(q);
    return -ENOBUFS;
}

/* 1 when the candidate's record h (and its membership reply m, its
 * requests v) passes the filters. */
static int matches(wk_req *q, const list_state *s, const char *ven, const redisReply *h,
                   const redisReply *m, const redisReply *v, int64_t now)
{
    if (wk_hash_empty(h))
        return 0; /* dangling: the record is gone */
    const redisReply *nm = wk_hfield(h, VTN_F_VEN_NAME);
    if (s->f.name[0] && (!nm || (size_t)nm->len != strlen(s->f.name) ||
                         memcmp(nm->str, s->f.name, (size_t)nm->len) != 0))
        return 0; /* a stale name index */
    if (s->f.q[0] && !has_substring(ven, strlen(ven), s->f.q) &&
        !(nm && has_substring(nm->str, (size_t)nm->len, s->f.q)))
        return 0;
    if (s->member_of) {
        for (size_t i = 0; m && m->type == REDIS_REPLY_ARRAY && i < m->elements; i++)
            if (m->element[i]->type != REDIS_REPLY_INTEGER || m->element[i]->integer != 1)
                return 0;
        if (m == NULL || m->type != REDIS_REPLY_ARRAY)
            return 0;
    }
    const redisReply *r = wk_hfield(h, VTN_F_VEN_REG),
                     *pu = wk_hfield(h, VTN_F_VEN_PUSH_UNDELIVERED);
    int registered = r && r->len > 0;
    switch (s->f.state) {
    case WK_VS_PROVISIONED:
        return !registered && wk_hfield_int(h, VTN_F_VEN_PROVISIONED) == 1;
    case WK_VS_REGISTERED:
        return registered;
    case WK_VS_ONLINE:
        return wk__api_ven_online(q, h, now);
    case WK_VS_OFFLINE:
        return registered && !wk__api_ven_online(q, h, now);
    case WK_VS_OVERDUE:
        return wk__api_overdue_count(v, now) > 0;
    case WK_VS_PUSH_UNDELIVERABLE:
        return pu && pu->len > 0;
    default:
        return 1;
    }
}

/* Looks at the candidates read; 1 when the page is full or the walk over. */
static int take_matches(wk_req *q, list_state *s)
{
    int64_t now = vtn_now_ms();
    size_t n = json_array_size(s->cands);
    for (size_t i = 0; i < n; i++) {
        if ((int)json_array_size(s->items) >= s->f.limit) {
            s->stopped_early = 1; /* last stays the one before: this one comes next time */
            return 1;
        }
        const char *ven = json_string_value(json_array_get(s->cands, i));
        wk_rh base = s->first + (wk_rh)i * s->per;
        const redisReply *h = wk_rep(q, base);
        const redisReply *m = s->member_of ? wk_rep(q, base + 1) : NULL;
        const redisReply *v =
            s->f.state == WK_VS_OVERDUE ? wk_rep(q, base + 1 + (s->member_of != 0)) : NULL;
        snprintf(s->last, sizeof s->last, "%s", ven);
        s->looked++;
        if (!matches(q, s, ven, h, m, v, now))
            continue;
        json_t *o = wk__api_ven_json(q, ven, h, -1, now);
        if (o == NULL || json_array_append_new(s->items, o) < 0)
            return -ENOMEM;
    }
    if (s->pool && s->group_pool && s->pool_at >= json_array_size(s->pool))
        snprintf(s->last, sizeof s->last, "%s", s->raw_last); /* the non-members were looked at */
    if (s->pool)
        return s->pool_at >= json_array_size(s->pool) || s->looked >= WK_VEN_SCAN_MAX ||
               (int)json_array_size(s->items) >= s->f.limit;
    return s->done || s->page == 0 || (int)json_array_size(s->items) >= s->f.limit;
}

/* The next slice of the pool as the candidates. */
static int pool_next(list_state *s)
{
    json_decref(s->cands);
    s->cands = json_array();
    if (s->cands == NULL)
        return -ENOMEM;
    size_t total = json_array_size(s->pool);
    for (int i = 0; i < s->chunk && s->pool_at < total; i++)
        json_array_append(s->cands, json_array_get(s->pool, s->pool_at++));
    return 0;
}

/* vtn:reports:overdue's members ("<venID>|<rr>") as the sorted venIDs after
 * the cursor. */
static json_t *overdue_pool(const redisReply *r, const char *cursor)
{
    json_t *ids = json_object(), *out = json_array();
    for (size_t i = 0; ids && r && r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        const redisReply *e = r->element[i];
        const char *bar = e->type == REDIS_REPLY_STRING ? memchr(e->str, '|', e->len) : NULL;
        char ven[WK_ID_MAX + 1];
        size_t n = bar ? (size_t)(bar - e->str) : 0;
        if (n == 0 || n > WK_ID_MAX)
            continue;
        memcpy(ven, e->str, n);
        ven[n] = '\0';
        if (strcmp(ven, cursor) > 0)
            json_object_set_new(ids, ven, json_true());
    }
    const char *key;
    json_t *v;
    json_object_foreach(ids, key, v) json_array_append_new(out, json_string(key));
    json_decref(ids);
    wk__api_sort_strings(out);
    return out;
}

/* Queues SMISMEMBER of the group's set over the walk's candidates (kept in
 * s->cands until the answer); s->check stays 0 when there are none. 0, or
 * -ENOBUFS after answering. */
static int group_check(wk_req *q, list_state *s)
{
    char k[VTN_KEY_MAX];
    s->cands = wk_rep_strings(wk_rep(q, s->page));
    size_t n = json_array_size(s->cands);
    if (s->cands == NULL) {
        wk_reply_internal(q, "out of memory");
        return -ENOMEM;
    }
    if (n == 0)
        return 0;
    snprintf(s->raw_last, sizeof s->raw_last, "%s",
             json_string_value(json_array_get(s->cands, n - 1)));
    s->raw_more = (int)n >= WK_VEN_SCAN_MAX;
    const char *argv[2 + WK_VEN_SCAN_MAX] = {"SMISMEMBER",
                                             vtn_key_build(k, VTN_KEY_GROUPVENS, s->f.group, NULL)};
    for (size_t i = 0; i < n && i < WK_VEN_SCAN_MAX; i++)
        argv[2 + i] = json_string_value(json_array_get(s->cands, i));
    if ((s->check = wk_cmd_argv(q, (int)n + 2, argv, NULL)) < 0) {
        wk_reply_no_room(q);
        return -ENOBUFS;
    }
    return 0;
}

/* The walk's candidates (s->cands) that the SMISMEMBER reply r says are
 * members, in order; s->cands is released. */
static json_t *group_members(list_state *s, const redisReply *r)
{
    json_t *out = json_array();
    for (size_t i = 0; out && r && r->type == REDIS_REPLY_ARRAY && i < r->elements; i++)
        if (r->element[i]->type == REDIS_REPLY_INTEGER && r->element[i]->integer == 1)
            json_array_append(out, json_array_get(s->cands, i));
    json_decref(s->cands);
    s->cands = NULL;
    return out;
}

/* Whether candidates are left after this page: ones read but not looked
 * at, the rest of the pool, or more in the index. */
static int more_left(const list_state *s)
{
    if (s->stopped_early)
        return 1;
    if (s->pool)
        return s->pool_at < json_array_size(s->pool) || s->raw_more;
    return !s->done;
}

static void answer(wk_req *q, list_state *s, int more)
{
    char cur[2 * WK_ID_MAX + 1];
    json_t *next = json_null();
    if (more && s->last[0] && wk_cursor_encode(s->last, cur, sizeof cur) == 0)
        next = json_string(cur);
    json_t *o = json_pack("{s:O, s:o}", "vens", s->items, "next_cursor", next);
    if (o == NULL) {
        wk_reply_internal(q, "out of memory");
        return;
    }
    wk_reply_json(q, 200, o);
}

static void api_list(wk_req *q, void *st)
{
    list_state *s = st;
    char err[512], k[VTN_KEY_MAX];
    switch (s->stage) {
    case LIST_START:
        if (wk_api_parse_ven_list(q->query.p, q->query.n, &s->f, err, sizeof err) < 0) {
            wk_reply_json_error(q, 400, "%s", err);
            return;
        }
        s->items = json_array();
        if (s->items == NULL) {
            wk_reply_internal(q, "out of memory");
            return;
        }
        snprintf(s->last, sizeof s->last, "%s", s->f.cursor);
        int filtered = s->f.q[0] || s->f.program[0] || s->f.group[0] || s->f.state;
        s->chunk = filtered ? WK_VEN_SCAN_CHUNK : s->f.limit + 1;
        s->group_pool = s->f.group[0] && !s->f.name[0] && s->f.state != WK_VS_OVERDUE;
        if (s->f.name[0]) { /* the name index names at most one VEN */
            s->page = wk_ven_lookup(q, WK_VEN_BY_NAME, s->f.name);
        } else if (s->f.state == WK_VS_OVERDUE) {
            char stop[16];
            snprintf(stop, sizeof stop, "%d", WK_VEN_OVERDUE_READ - 1);
            s->page = wk_cmd(q, "ZRANGE", VTN_KEY_REPORTS_OVERDUE, "0", stop, NULL);
        } else {
            s->source = VTN_KEY_VENS;
            if (s->f.program[0]) /* walk the program's members: enrolled by construction */
                s->source = vtn_key_build(s->source_key, VTN_KEY_PROGRAMVENS, s->f.program, NULL);
            s->page = wk__api_page_cmd(q, s->source, s->f.cursor,
                                       s->group_pool ? WK_VEN_SCAN_MAX - 1 : s->chunk - 1);
        }
        s->member_of = (s->f.group[0] && !s->group_pool) || (s->f.program[0] && !s->source_key[0]);
        s->per = 1 + (s->member_of != 0) + (s->f.state == WK_VS_OVERDUE);
        if (s->chunk * s->per > WK_ROUND_CMDS - 1) /* a round's commands, the next page's too */
            s->chunk = (WK_ROUND_CMDS - 1) / s->per;
        s->stage = LIST_SCAN;
        if (s->page < 0)
            wk_reply_no_room(q);
        return;
    case LIST_SCAN: {
        if (s->group_pool && !s->checking) { /* the walk's candidates: which are the group's? */
            s->checking = 1;
            if (group_check(q, s) < 0)
                return;
            if (s->check == 0)
                answer(q, s, 0); /* nothing left in the index */
            return;
        }
        if (s->group_pool && s->pool == NULL) { /* the check's answer: the group's members */
            s->pool = group_members(s, wk_rep(q, s->check));
            s->source = NULL;
            if (s->pool == NULL || pool_next(s) < 0) {
                wk_reply_internal(q, "out of memory");
                return;
            }
            if (json_array_size(s->cands) == 0) { /* none: the next page starts after them */
                snprintf(s->last, sizeof s->last, "%s", s->raw_last);
                answer(q, s, s->raw_more);
                return;
            }
            read_candidates(q, s);
            return;
        }
        if (s->cands == NULL) { /* the first round's answer: the candidates or the pool */
            const redisReply *r = wk_rep(q, s->page);
            if (s->source) {
                s->cands = wk_rep_strings(r);
            } else {
                s->pool = s->f.name[0] ? wk_rep_strings(r) : overdue_pool(r, s->f.cursor);
                if (s->pool && pool_next(s) < 0)
                    json_decref(s->pool), s->pool = NULL;
            }
            if (s->cands == NULL) {
                wk_reply_internal(q, "out of memory");
                return;
            }
            if (read_candidates(q, s) < 0)
                return;
            if (json_array_size(s->cands) == 0) {
                answer(q, s, 0);
                return;
            }
            return;
        }
        int full = take_matches(q, s);
        if (full < 0) {
            wk_reply_internal(q, "out of memory");
            return;
        }
        /* More to look at: the next candidates, read with the next round. */
        int more = 0;
        if (!full && s->pool) {
            more = pool_next(s) == 0 && json_array_size(s->cands) > 0;
        } else if (!full && s->page) {
            json_decref(s->cands);
            s->cands = wk_rep_strings(wk_rep(q, s->page));
            more = s->cands && json_array_size(s->cands) > 0;
            if (!more)
                s->done = 1;
        }
        if (more && s->looked < WK_VEN_SCAN_MAX) {
            read_candidates(q, s);
            return;
        }
        /* The page: its VENs' queues and report requests in one more round. */
        s->stage = LIST_EXTRAS;
        size_t n = json_array_size(s->items);
        s->first = 0;
        for (size_t i = 0; i < n; i++) {
            const char *ven =
                json_string_value(json_object_get(json_array_get(s->items, i), "venID"));
            wk_rh h = wk_cmd(q, "LLEN", wk_key_venq(k, ven), NULL);
            if (h < 0 || wk_cmd(q, "HVALS", wk_key_venrr(k, ven), NULL) < 0) {
                wk_reply_no_room(q);
                return;
            }
            if (i == 0)
                s->first = h;
        }
        if (n == 0) /* nothing to read: answer now */
            answer(q, s, more_left(s));
        return;
    }
    case LIST_EXTRAS: {
        int64_t now = vtn_now_ms();
        size_t n = json_array_size(s->items);
        for (size_t i = 0; i < n; i++) {
            json_t *o = json_array_get(s->items, i);
            long long queued = wk_rep_int(q, s->first + (wk_rh)(2 * i), 0);
            json_object_set_new(o, "queued", json_integer(queued));
            json_object_set_new(
                o, "reportsOverdue",
                json_integer(wk__api_overdue_count(wk_rep(q, s->first + (wk_rh)(2 * i + 1)), now)));
        }
        answer(q, s, more_left(s));
        return;
    }
    }
}

const wk_handler wk__api_vens_list =
    WK_HANDLER("api.vens.list", list_state, NULL, list_fini, api_list);
