/* What the API's files share (api room only): the query-string walker,
 * list paging, JSON bodies, and reading an HGETALL reply. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "vtn/hex.h"
#include "vtn/log.h"
#include "vtn/time.h"
#include "wk_api_internal.h"

static int pct_decode(const char *s, size_t n, char *out, size_t outlen)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i];
        if (c == '%') {
            if (i + 2 >= n)
                return -EINVAL;
            int hi = vtn_hexval((unsigned char)s[i + 1]), lo = vtn_hexval((unsigned char)s[i + 2]);
            if (hi < 0 || lo < 0)
                return -EINVAL;
            c = hi << 4 | lo;
            i += 2;
        } else if (c == '+') {
            c = ' ';
        }
        if (c == 0 || o + 1 >= outlen)
            return -EINVAL;
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return (int)o;
}

int wk__api_each_param(const char *q, size_t n, wk__api_param_fn fn, void *ud, char *err,
                       size_t errlen)
{
    if (n > WK_API_QUERY_MAX) {
        snprintf(err, errlen, "query string longer than %d bytes", WK_API_QUERY_MAX);
        return -EINVAL;
    }
    size_t i = 0;
    while (i < n) {
        const char *amp = memchr(q + i, '&', n - i);
        size_t plen = amp ? (size_t)(amp - (q + i)) : n - i;
        if (plen) {
            const char *eq = memchr(q + i, '=', plen);
            size_t klen = eq ? (size_t)(eq - (q + i)) : plen;
            char key[64], val[WK_API_QUERY_MAX + 1];
            if (pct_decode(q + i, klen, key, sizeof key) < 0) {
                snprintf(err, errlen, "malformed query parameter name");
                return -EINVAL;
            }
            if (pct_decode(eq ? eq + 1 : "", eq ? plen - klen - 1 : 0, val, sizeof val) < 0) {
                snprintf(err, errlen, "malformed value of query parameter '%s'", key);
                return -EINVAL;
            }
            int rc = fn(ud, key, val, err, errlen);
            if (rc < 0)
                return rc;
        }
        i += plen + 1;
    }
    return 0;
}

int wk__api_param_once(const char *key, int *seen, char *err, size_t errlen)
{
    if (*seen) {
        snprintf(err, errlen, "query parameter '%s' given twice", key);
        return -EINVAL;
    }
    *seen = 1;
    return 0;
}

wk_rh wk__api_page_cmd(wk_req *q, const char *key, const char *cursor, int limit)
{
    char min[WK_ID_MAX + 2], lim[16];
    if ((size_t)snprintf(min, sizeof min, "%s%s", cursor[0] ? "(" : "-", cursor) >= sizeof min)
        return -ENOBUFS;
    snprintf(lim, sizeof lim, "%d", limit + 1);
    return wk_cmd(q, "ZRANGEBYLEX", key, min, "+", "LIMIT", "0", lim, NULL);
}

json_t *wk__api_members(const redisReply *r)
{
    return wk_rep_strings(r);
}

json_t *wk__api_next_cursor(json_t *members, int limit, int shown)
{
    char cur[2 * WK_ID_MAX + 1];
    if (json_array_size(members) <= (size_t)limit || shown <= 0)
        return json_null();
    const char *last = json_string_value(json_array_get(members, (size_t)shown - 1));
    if (last == NULL || wk_cursor_encode(last, cur, sizeof cur) < 0)
        return json_null();
    return json_string(cur);
}

int wk__api_int_value(const char *key, const char *val, int max, int *out, char *err, size_t errlen)
{
    char *end = NULL;
    long v = isdigit((unsigned char)val[0]) ? strtol(val, &end, 10) : -1;
    if (v < 1 || v > max || (end && *end)) {
        snprintf(err, errlen, "%s must be an integer from 1 to %d", key, max);
        return -EINVAL;
    }
    *out = (int)v;
    return 0;
}

struct single_q {
    const char *key;
    wk__api_value_fn parse;
    void *out;
};

static int single_param(void *ud, const char *key, const char *val, char *err, size_t errlen)
{
    struct single_q *s = ud;
    if (strcmp(key, s->key) == 0)
        return s->parse(key, val, s->out, err, errlen);
    char k[80];
    snprintf(err, errlen, "unknown query parameter '%s' (allowed: %s)",
             vtn_log_quote(k, sizeof k, key, strlen(key)), s->key);
    return -EINVAL;
}

int wk__api_parse_single(const char *q, size_t n, const char *key, wk__api_value_fn parse,
                         void *out, char *err, size_t errlen)
{
    struct single_q s = {key, parse, out};
    if (q == NULL)
        return 0;
    return wk__api_each_param(q, n, single_param, &s, err, errlen);
}

int wk__api_page_param(wk__api_page *p, const char *key, const char *val, char *err, size_t errlen)
{
    if (strcmp(key, "limit") == 0) {
        if (wk__api_param_once(key, &p->seen_limit, err, errlen) < 0)
            return -EINVAL;
        return wk__api_int_value(key, val, WK_API_LIMIT_MAX, p->limit, err, errlen) < 0 ? -EINVAL
                                                                                        : 1;
    }
    if (strcmp(key, "cursor") == 0) {
        if (wk__api_param_once(key, &p->seen_cursor, err, errlen) < 0)
            return -EINVAL;
        if (wk_cursor_decode(val, p->cursor, p->cursorlen) < 0) {
            snprintf(err, errlen, "cursor is not one this API returned (use next_cursor as is)");
            return -EINVAL;
        }
        return 1;
    }
    return 0;
}

struct list_q {
    wk__api_page page;
    const wk__api_filter *f;
    char *val;
    size_t vallen;
    int seen_val;
};

static int list_param(void *ud, const char *key, const char *val, char *err, size_t errlen)
{
    struct list_q *l = ud;
    int rc = wk__api_page_param(&l->page, key, val, err, errlen);
    if (rc != 0)
        return rc < 0 ? rc : 0;
    if (strcmp(key, l->f->key) == 0) {
        if (wk__api_param_once(key, &l->seen_val, err, errlen) < 0)
            return -EINVAL;
        size_t n = strlen(val);
        if (!l->f->valid(val, n) || n >= l->vallen) {
            snprintf(err, errlen, "%s must be 1 to %d %s", key, l->f->max, l->f->chars);
            return -EINVAL;
        }
        memcpy(l->val, val, n + 1);
        return 0;
    }
    char k[80];
    snprintf(err, errlen, "unknown query parameter '%s' (allowed: limit, cursor, %s)",
             vtn_log_quote(k, sizeof k, key, strlen(key)), l->f->key);
    return -EINVAL;
}

int wk__api_parse_filtered_list(const char *q, size_t n, const wk__api_filter *f, int *limit,
                                char *cursor, size_t cursorlen, char *val, size_t vallen, char *err,
                                size_t errlen)
{
    struct list_q l = {{limit, cursor, cursorlen, 0, 0}, f, val, vallen, 0};
    *limit = WK_API_LIMIT_DEFAULT;
    cursor[0] = val[0] = '\0';
    if (q == NULL)
        return 0;
    int rc = wk__api_each_param(q, n, list_param, &l, err, errlen);
    if (rc == 0 && f->not_with_cursor != NULL && l.page.seen_cursor && l.seen_val) {
        snprintf(err, errlen, "cursor cannot be combined with %s (%s)", f->key, f->not_with_cursor);
        return -EINVAL;
    }
    return rc;
}

static int page_only_param(void *ud, const char *key, const char *val, char *err, size_t errlen)
{
    int rc = wk__api_page_param(ud, key, val, err, errlen);
    if (rc == 0) {
        char k[80];
        snprintf(err, errlen, "unknown query parameter '%s' (allowed: limit, cursor)",
                 vtn_log_quote(k, sizeof k, key, strlen(key)));
        return -EINVAL;
    }
    return rc < 0 ? rc : 0;
}

int wk__api_parse_page_only(const char *q, size_t n, int *limit, char *cursor, size_t cursorlen,
                            char *err, size_t errlen)
{
    wk__api_page page = {limit, cursor, cursorlen, 0, 0};
    *limit = WK_API_LIMIT_DEFAULT;
    cursor[0] = '\0';
    return q ? wk__api_each_param(q, n, page_only_param, &page, err, errlen) : 0;
}

const redisReply *wk__api_hfield(const redisReply *h, const char *f)
{
    return wk_hfield(h, f);
}

json_t *wk__api_json_object(const char *body, size_t n, const char *not_object, char *err,
                            size_t errlen)
{
    json_error_t je;
    json_t *o = json_loadb(body, n, JSON_REJECT_DUPLICATES, &je);
    if (o == NULL) {
        snprintf(err, errlen, "body is not valid JSON: %s (line %d, column %d)", je.text, je.line,
                 je.column);
        return NULL;
    }
    if (!json_is_object(o)) {
        snprintf(err, errlen, "%s", not_object);
        json_decref(o);
        return NULL;
    }
    return o;
}

int wk__api_json_ctype(vtn_str ct)
{
    static const char want[] = "application/json";
    size_t n = sizeof want - 1;
    if (ct.n < n || strncasecmp(ct.p, want, n) != 0)
        return 0;
    return ct.n == n || ct.p[n] == ';' || ct.p[n] == ' ';
}

int wk__api_pager_fetch(wk_req *q, wk__api_pager *p, const char *items, const char *record_key)
{
    char k[VTN_KEY_MAX];
    p->members = wk__api_members(wk_rep(q, p->page));
    if (p->members == NULL) {
        wk_reply_internal(q, "out of memory");
        return 0;
    }
    size_t count = json_array_size(p->members);
    if (count == 0) {
        wk_reply_json(q, 200, json_pack("{s:[],s:n}", items, "next_cursor"));
        return 0;
    }
    for (size_t i = 0; i < count && i < (size_t)p->limit; i++) {
        const char *member = json_string_value(json_array_get(p->members, i));
        wk_rh h = wk_cmd(q, "HGETALL", vtn_key_build(k, record_key, member, NULL), NULL);
        if (h < 0) {
            wk_reply_no_room(q);
            return 0;
        }
        if (p->nrecords++ == 0)
            p->first = h; /* handles of one round follow each other */
    }
    return 1;
}

void wk__api_pager_answer(wk_req *q, wk__api_pager *p, const char *items,
                          json_t *(*item)(void *ud, const char *member, const redisReply *h),
                          void *ud)
{
    json_t *a = json_array();
    for (int i = 0; i < p->nrecords; i++) {
        const char *member = json_string_value(json_array_get(p->members, (size_t)i));
        json_t *o = item(ud, member, wk_rep(q, p->first + i));
        if (o)
            json_array_append_new(a, o);
    }
    json_t *o = json_object();
    json_object_set_new(o, items, a);
    json_object_set_new(o, "next_cursor", wk__api_next_cursor(p->members, p->limit, p->nrecords));
    wk_reply_json(q, 200, o);
}

void wk__api_pager_fini(wk__api_pager *p)
{
    json_decref(p->members);
    p->members = NULL;
}

int wk__api_json_fields(json_t *o, const char *const *names,
                        int (*field)(void *ud, int i, json_t *v, char *err, size_t errlen),
                        void *ud, char *err, size_t errlen)
{
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v)
    {
        int i = 0;
        while (names[i] && strcmp(names[i], key) != 0)
            i++;
        if (names[i] == NULL) {
            char k[80], allowed[160];
            size_t a = 0;
            allowed[0] = '\0';
            for (int j = 0; names[j] && a < sizeof allowed; j++)
                a += (size_t)snprintf(allowed + a, sizeof allowed - a, "%s%s", j ? ", " : "",
                                      names[j]);
            snprintf(err, errlen, "unknown field '%s' (allowed: %s)",
                     vtn_log_quote(k, sizeof k, key, strlen(key)), allowed);
            return -EINVAL;
        }
        if (field && field(ud, i, v, err, errlen) < 0)
            return -EINVAL;
    }
    return 0;
}

void wk__api_plain_list(wk_req *q, wk__api_plain_list_state *s, const wk__api_list_kind *k)
{
    char err[512];
    switch (s->stage) {
    case 0:
        if (wk__api_parse_page_only(q->query.p, q->query.n, &s->pg.limit, s->cursor,
                                    sizeof s->cursor, err, sizeof err) < 0) {
            wk_reply_json_error(q, 400, "%s", err);
            return;
        }
        s->stage = 1;
        if ((s->pg.page = wk__api_page_cmd(q, k->zset, s->cursor, s->pg.limit)) < 0)
            wk_reply_no_room(q);
        return;
    case 1:
        s->stage = 2;
        wk__api_pager_fetch(q, &s->pg, k->items, k->record_key);
        return;
    default:
        wk__api_pager_answer(q, &s->pg, k->items, k->item, NULL);
        return;
    }
}

void wk__api_plain_list_fini(void *st)
{
    wk__api_pager_fini(&((wk__api_plain_list_state *)st)->pg);
}
