/* The management API, /api/v1/vens (docs/openapi.yaml): JSON in and out,
 * bearer token, every error {"error": "..."}. Same handler model as the
 * OpenADR handlers: steps over pipeline rounds. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "vtn/hex.h"
#include "vtn/log.h"
#include "vtn/time.h"
#include "wk_internal.h"

#define API_PREFIX "/api/v1/vens"
#define API_PATH_MAX 2048
#define API_QUERY_MAX 2048

/* ---- parsing (pure, unit-tested) ---- */

#define CERT_PREFIX "/api/v1/certificates"
#define CRL_PATH "/api/v1/crl"

/* What follows a collection's prefix (p, rest): "" or "/" is the list,
 * "/{id}[/]" an item, "/{id}/<action>[/]" the item's action; the id is
 * copied into id. WK_API_NONE for anything else. */
static int collection_route(const char *p, size_t rest, const char *action, int list, int item,
                            int act, char *id)
{
    if (rest == 0 || (rest == 1 && p[0] == '/'))
        return list;
    if (p[0] != '/')
        return WK_API_NONE; /* "/api/v1/vensX" */
    p++;
    rest--;
    const char *slash = memchr(p, '/', rest);
    size_t idlen = slash ? (size_t)(slash - p) : rest;
    /* A serial is checked (hex) by its handler, which can then say so. */
    if (!wk_id_valid(p, idlen))
        return WK_API_NONE;
    memcpy(id, p, idlen);
    id[idlen] = '\0';
    if (!slash || idlen + 1 == rest)
        return item; /* "/{id}" or with one trailing slash */
    const char *tail = slash + 1;
    size_t tlen = rest - idlen - 1, alen = strlen(action);
    if (memcmp(tail, action, tlen < alen ? tlen : alen) == 0 &&
        (tlen == alen || (tlen == alen + 1 && tail[alen] == '/')))
        return act;
    id[0] = '\0';
    return WK_API_NONE;
}

int wk_api_route_of(const char *path, size_t len, char *ven_id, const char **query,
                    size_t *query_len)
{
    const char *qm = memchr(path, '?', len);
    size_t plen = qm ? (size_t)(qm - path) : len;
    size_t cpre = sizeof CERT_PREFIX - 1, vpre = sizeof API_PREFIX - 1;
    *query = qm ? qm + 1 : NULL;
    *query_len = qm ? len - plen - 1 : 0;
    ven_id[0] = '\0';
    if (plen >= cpre && memcmp(path, CERT_PREFIX, cpre) == 0)
        return collection_route(path + cpre, plen - cpre, "revoke", WK_API_CERTS, WK_API_CERT,
                                WK_API_CERT_REVOKE, ven_id);
    if ((plen == sizeof CRL_PATH - 1 || (plen == sizeof CRL_PATH && path[plen - 1] == '/')) &&
        memcmp(path, CRL_PATH, sizeof CRL_PATH - 1) == 0)
        return WK_API_CRL;
    if (plen >= vpre && memcmp(path, API_PREFIX, vpre) == 0)
        return collection_route(path + vpre, plen - vpre, "reregister", WK_API_VENS, WK_API_VEN,
                                WK_API_REREGISTER, ven_id);
    return WK_API_NONE;
}

int wk_api_auth_ok(const char *header, size_t len, const char *token)
{
    size_t tlen = strlen(token);
    if (tlen == 0 || len < 7 || strncasecmp(header, "Bearer ", 7) != 0)
        return 0;
    const char *t = header + 7;
    size_t n = len - 7;
    while (n && *t == ' ') {
        t++;
        n--;
    }
    while (n && (t[n - 1] == ' ' || t[n - 1] == '\t'))
        n--;
    /* Constant time in the token's length: no early exit on the first difference. */
    unsigned diff = (unsigned)(n != tlen);
    for (size_t i = 0; i < tlen; i++)
        diff |= (unsigned char)token[i] ^ (unsigned char)(i < n ? t[i] : 0);
    return diff == 0;
}

/* Percent-decodes s[0..n) into out; '+' is a space. Length or -EINVAL. */
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

int wk_api_each_param(const char *q, size_t n, wk_api_param_fn fn, void *ud, char *err,
                      size_t errlen)
{
    if (n > API_QUERY_MAX) {
        snprintf(err, errlen, "query string longer than %d bytes", API_QUERY_MAX);
        return -EINVAL;
    }
    size_t i = 0;
    while (i < n) {
        const char *amp = memchr(q + i, '&', n - i);
        size_t plen = amp ? (size_t)(amp - (q + i)) : n - i;
        if (plen) {
            const char *eq = memchr(q + i, '=', plen);
            size_t klen = eq ? (size_t)(eq - (q + i)) : plen;
            char key[64], val[API_QUERY_MAX + 1];
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

int wk_api_param_once(const char *key, int *seen, char *err, size_t errlen)
{
    if (*seen) {
        snprintf(err, errlen, "query parameter '%s' given twice", key);
        return -EINVAL;
    }
    *seen = 1;
    return 0;
}

static int name_ok(const char *s, size_t n)
{
    if (n == 0 || n > WK_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return 0;
    return 1;
}

wk_rh wk_cmd_page(wk_req *q, const char *key, const char *cursor, int limit)
{
    char min[WK_ID_MAX + 2], lim[16];
    if ((size_t)snprintf(min, sizeof min, "%s%s", cursor[0] ? "(" : "-", cursor) >= sizeof min)
        return -ENOBUFS;
    snprintf(lim, sizeof lim, "%d", limit + 1);
    return wk_cmd(q, "ZRANGEBYLEX", key, min, "+", "LIMIT", "0", lim, NULL);
}

json_t *wk_api_members(const redisReply *r)
{
    json_t *a = json_array();
    char id[WK_ID_MAX + 1];
    if (a == NULL || r == NULL)
        return a;
    if (r->type == REDIS_REPLY_STRING) {
        if (wk_rep_str(r, id, sizeof id))
            json_array_append_new(a, json_string(id));
    } else if (r->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i < r->elements; i++)
            if (wk_rep_str(r->element[i], id, sizeof id))
                json_array_append_new(a, json_string(id));
    }
    return a;
}

json_t *wk_api_next_cursor(json_t *members, int limit, int shown)
{
    char cur[2 * WK_ID_MAX + 1];
    if (json_array_size(members) <= (size_t)limit || shown <= 0)
        return json_null();
    const char *last = json_string_value(json_array_get(members, (size_t)shown - 1));
    if (last == NULL || wk_cursor_encode(last, cur, sizeof cur) < 0)
        return json_null();
    return json_string(cur);
}

int wk_api_page_param(wk_api_page *p, const char *key, const char *val, char *err, size_t errlen)
{
    if (strcmp(key, "limit") == 0) {
        if (wk_api_param_once(key, &p->seen_limit, err, errlen) < 0)
            return -EINVAL;
        char *end = NULL;
        long v = isdigit((unsigned char)val[0]) ? strtol(val, &end, 10) : -1;
        if (v < 1 || v > WK_API_LIMIT_MAX || (end && *end)) {
            snprintf(err, errlen, "limit must be an integer from 1 to %d", WK_API_LIMIT_MAX);
            return -EINVAL;
        }
        *p->limit = (int)v;
        return 1;
    }
    if (strcmp(key, "cursor") == 0) {
        if (wk_api_param_once(key, &p->seen_cursor, err, errlen) < 0)
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
    wk_api_page page;
    const wk_api_filter *f;
    char *val;
    size_t vallen;
    int seen_val;
};

static int list_param(void *ud, const char *key, const char *val, char *err, size_t errlen)
{
    struct list_q *l = ud;
    int rc = wk_api_page_param(&l->page, key, val, err, errlen);
    if (rc != 0)
        return rc < 0 ? rc : 0;
    if (strcmp(key, l->f->key) == 0) {
        if (wk_api_param_once(key, &l->seen_val, err, errlen) < 0)
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

int wk_api_parse_filtered_list(const char *q, size_t n, const wk_api_filter *f, int *limit,
                               char *cursor, size_t cursorlen, char *val, size_t vallen, char *err,
                               size_t errlen)
{
    struct list_q l = {{limit, cursor, cursorlen, 0, 0}, f, val, vallen, 0};
    *limit = WK_API_LIMIT_DEFAULT;
    cursor[0] = val[0] = '\0';
    if (q == NULL)
        return 0;
    int rc = wk_api_each_param(q, n, list_param, &l, err, errlen);
    if (rc == 0 && f->not_with_cursor != NULL && l.page.seen_cursor && l.seen_val) {
        snprintf(err, errlen, "cursor cannot be combined with %s (%s)", f->key, f->not_with_cursor);
        return -EINVAL;
    }
    return rc;
}

int wk_api_parse_list_query(const char *q, size_t n, int *limit, char *cursor, size_t cursorlen,
                            char *name, size_t namelen, char *err, size_t errlen)
{
    static const wk_api_filter by_name = {
        "name", name_ok, WK_NAME_MAX, "bytes without control characters", "a name matches one VEN"};
    return wk_api_parse_filtered_list(q, n, &by_name, limit, cursor, cursorlen, name, namelen, err,
                                      errlen);
}

static int delete_param(void *ud, const char *key, const char *val, char *err, size_t errlen)
{
    int *force = ud;
    if (strcmp(key, "force") == 0) {
        if (vtn_parse_bool(val, force) < 0) {
            snprintf(err, errlen, "force must be true or false");
            return -EINVAL;
        }
        return 0;
    }
    char k[80];
    snprintf(err, errlen, "unknown query parameter '%s' (allowed: force)",
             vtn_log_quote(k, sizeof k, key, strlen(key)));
    return -EINVAL;
}

int wk_api_parse_delete_query(const char *q, size_t n, int *force, char *err, size_t errlen)
{
    *force = 0;
    if (q == NULL)
        return 0;
    return wk_api_each_param(q, n, delete_param, force, err, errlen);
}

int wk_api_parse_provision(const char *body, size_t n, char *name, size_t namelen, char *fp,
                           size_t fplen, char *err, size_t errlen)
{
    name[0] = fp[0] = '\0';
    if (n == 0) {
        snprintf(err, errlen, "a JSON object with venName and/or fingerprint is required");
        return -EINVAL;
    }
    json_t *o = wk_api_json_object(body, n, "body must be a JSON object", err, errlen);
    if (o == NULL)
        return -EINVAL;
    int rc = -EINVAL;
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v)
    {
        if (strcmp(key, "venName") == 0) {
            if (!json_is_string(v) || !name_ok(json_string_value(v), json_string_length(v)) ||
                json_string_length(v) >= namelen) {
                snprintf(err, errlen,
                         "venName must be a string of 1 to %d bytes without control characters",
                         WK_NAME_MAX);
                goto out;
            }
            memcpy(name, json_string_value(v), json_string_length(v) + 1);
        } else if (strcmp(key, "fingerprint") == 0) {
            if (!json_is_string(v) ||
                wk_fp_normalize(json_string_value(v), json_string_length(v), fp, fplen) < 0) {
                snprintf(err, errlen,
                         "fingerprint must be the 10-byte OpenADR fingerprint (e.g. "
                         "09:71:9E:0E:51:C0:8F:05:56:C9) or a full SHA-256 fingerprint, in hex");
                goto out;
            }
        } else {
            char k[80];
            snprintf(err, errlen, "unknown field '%s' (allowed: venName, fingerprint)",
                     vtn_log_quote(k, sizeof k, key, strlen(key)));
            goto out;
        }
    }
    if (!name[0] && !fp[0]) {
        snprintf(err, errlen, "give venName and/or fingerprint");
        goto out;
    }
    rc = 0;
out:
    json_decref(o);
    return rc;
}

/* ---- rendering ---- */

static const redisReply *hfield(const redisReply *h, const char *f)
{
    if (h == NULL || h->type != REDIS_REPLY_ARRAY)
        return NULL;
    for (size_t i = 0; i + 1 < h->elements; i += 2) {
        const redisReply *k = h->element[i];
        if (k->type == REDIS_REPLY_STRING && strlen(f) == (size_t)k->len &&
            memcmp(k->str, f, (size_t)k->len) == 0)
            return h->element[i + 1];
    }
    return NULL;
}

const redisReply *wk_api_hfield(const redisReply *h, const char *f)
{
    return hfield(h, f);
}

static json_t *jstr_or_null(const redisReply *v)
{
    if (v == NULL || v->type != REDIS_REPLY_STRING || v->len == 0)
        return json_null();
    json_t *s = json_stringn(v->str, (size_t)v->len);
    return s ? s : json_null();
}

static int is_one(const redisReply *v)
{
    return v && v->type == REDIS_REPLY_STRING && v->len == 1 && v->str[0] == '1';
}

static json_t *jtime_or_null(const redisReply *v)
{
    if (v == NULL || v->type != REDIS_REPLY_STRING)
        return json_null();
    char buf[40], ts[40];
    snprintf(buf, sizeof buf, "%.*s", (int)v->len, v->str);
    return json_string(vtn_time_format(strtoll(buf, NULL, 10), ts, sizeof ts));
}

/* The JSON of one VEN from HGETALL ven:{id}; queued < 0 leaves queuedMessages out. */
static json_t *ven_json(const char *ven, const redisReply *h, long long queued)
{
    const redisReply *r = hfield(h, "r"), *st = hfield(h, "st"), *fp = hfield(h, "fp");
    int registered = r && r->type == REDIS_REPLY_STRING && r->len > 0;
    int cancelling = st && st->type == REDIS_REPLY_STRING && st->len == 1 && st->str[0] == 'c';
    json_t *fpj = json_null();
    if (fp && fp->type == REDIS_REPLY_STRING && fp->len > 0 && fp->len <= WK_FP_MAX) {
        char raw[WK_FP_MAX + 1], pretty[WK_FP_MAX * 3 / 2 + 2];
        memcpy(raw, fp->str, (size_t)fp->len);
        raw[fp->len] = '\0';
        wk_fp_pretty(raw, pretty, sizeof pretty);
        fpj = json_string(pretty);
    }
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    json_object_set_new(o, "venID", json_string(ven));
    json_object_set_new(o, "venName", jstr_or_null(hfield(h, "n")));
    json_object_set_new(o, "fingerprint", fpj ? fpj : json_null());
    json_object_set_new(o, "provisioned", json_boolean(is_one(hfield(h, "pv"))));
    json_object_set_new(o, "state",
                        json_string(cancelling   ? "cancelling"
                                    : registered ? "registered"
                                                 : "unregistered"));
    json_object_set_new(o, "registrationID", jstr_or_null(r));
    json_object_set_new(o, "httpPullModel",
                        registered ? json_boolean(!hfield(h, "pl") || is_one(hfield(h, "pl")))
                                   : json_null());
    json_object_set_new(o, "transportAddress", jstr_or_null(hfield(h, "ta")));
    json_object_set_new(o, "reportOnly",
                        registered ? json_boolean(is_one(hfield(h, "ro"))) : json_null());
    json_object_set_new(o, "xmlSignature",
                        registered ? json_boolean(is_one(hfield(h, "xs"))) : json_null());
    json_object_set_new(o, "createdAt", jtime_or_null(hfield(h, "ct")));
    json_object_set_new(o, "registeredAt",
                        registered ? jtime_or_null(hfield(h, "rt")) : json_null());
    json_object_set_new(o, "reregistrationPending", json_boolean(is_one(hfield(h, "rq"))));
    if (queued >= 0)
        json_object_set_new(o, "queuedMessages", json_integer(queued));
    return o;
}

static int hash_empty(const redisReply *h)
{
    return h == NULL || h->type != REDIS_REPLY_ARRAY || h->elements == 0;
}

static void reply_ven(wk_req *q, int status, const char *ven, const redisReply *h, long long queued)
{
    json_t *o = ven_json(ven, h, queued);
    if (o == NULL) {
        wk_reply_internal(q, "out of memory");
        return;
    }
    wk_reply_json(q, status, o);
}

/* ---- GET /api/v1/vens ---- */

enum list_stage { LIST_START = 0, LIST_PAGE, LIST_RECORDS };

typedef struct list_state {
    enum list_stage stage;
    int limit;
    char cursor[WK_ID_MAX + 1];
    char name[WK_NAME_MAX + 1];
    wk_rh page;      /* the page of venIDs, or the name index */
    int nrecords;    /* HGETALL of each shown member, in order */
    wk_rh first;     /* handle of the first HGETALL: the others follow it */
    json_t *members; /* owned */
} list_state;

static void list_fini(void *st)
{
    json_decref(((list_state *)st)->members);
}

static void api_list(wk_req *q, void *st)
{
    list_state *s = st;
    char k[WK_KEY_MAX], err[512];
    switch (s->stage) {
    case LIST_START:
        if (wk_api_parse_list_query(q->query.p, q->query.n, &s->limit, s->cursor, sizeof s->cursor,
                                    s->name, sizeof s->name, err, sizeof err) < 0) {
            wk_reply_json_error(q, 400, "%s", err);
            return;
        }
        s->stage = LIST_PAGE;
        s->page = s->name[0] ? wk_cmd(q, "GET", wk_key_name(k, s->name), NULL)
                             : wk_cmd_page(q, WK_KEY_VENS, s->cursor, s->limit);
        if (s->page < 0)
            wk_reply_no_room(q);
        return;
    case LIST_PAGE: {
        s->members = wk_api_members(wk_rep(q, s->page));
        if (s->members == NULL) {
            wk_reply_internal(q, "out of memory");
            return;
        }
        size_t count = json_array_size(s->members);
        if (count == 0) {
            wk_reply_json(q, 200, json_pack("{s:[],s:n}", "vens", "next_cursor"));
            return;
        }
        s->stage = LIST_RECORDS;
        for (size_t i = 0; i < count && i < (size_t)s->limit; i++) {
            wk_rh h = wk_cmd(q, "HGETALL",
                             wk_key_ven(k, json_string_value(json_array_get(s->members, i))), NULL);
            if (h < 0) {
                wk_reply_no_room(q);
                return;
            }
            if (s->nrecords++ == 0)
                s->first = h;
        }
        return;
    }
    case LIST_RECORDS: {
        json_t *vens = json_array();
        for (int i = 0; i < s->nrecords; i++) {
            const char *id = json_string_value(json_array_get(s->members, (size_t)i));
            const redisReply *h = wk_rep(q, s->first + i);
            /* Dangling members (record gone, index not yet cleaned) are skipped; a name
             * index whose record carries another name is stale too. */
            if (hash_empty(h))
                continue;
            if (s->name[0]) {
                const redisReply *nm = hfield(h, "n");
                if (!nm || (size_t)nm->len != strlen(s->name) ||
                    memcmp(nm->str, s->name, (size_t)nm->len) != 0)
                    continue;
            }
            json_array_append_new(vens, ven_json(id, h, -1));
        }
        json_t *o = json_object();
        json_object_set_new(o, "vens", vens);
        json_object_set_new(o, "next_cursor",
                            wk_api_next_cursor(s->members, s->limit, s->nrecords));
        wk_reply_json(q, 200, o);
    }
    }
}

/* ---- GET /api/v1/vens/{venID} ---- */

typedef struct get_state {
    int asked;
    wk_rh rec, qlen;
} get_state;

static void api_get(wk_req *q, void *st)
{
    get_state *s = st;
    const char *ven = q->path_id;
    char k[WK_KEY_MAX];
    if (!s->asked) {
        s->asked = 1;
        s->rec = wk_cmd(q, "HGETALL", wk_key_ven(k, ven), NULL);
        s->qlen = wk_cmd(q, "LLEN", wk_key_venq(k, ven), NULL);
        if (s->rec < 0 || s->qlen < 0)
            wk_reply_no_room(q);
        return;
    }
    if (hash_empty(wk_rep(q, s->rec))) {
        wk_reply_json_error(q, 404, "no VEN with venID %s", ven);
        return;
    }
    reply_ven(q, 200, ven, wk_rep(q, s->rec), wk_rep_int(q, s->qlen, 0));
}

/* ---- POST /api/v1/vens ---- */

json_t *wk_api_json_object(const char *body, size_t n, const char *not_object, char *err,
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

int wk_api_json_ctype(vtn_str ct)
{
    static const char want[] = "application/json";
    size_t n = sizeof want - 1;
    if (ct.n < n || strncasecmp(ct.p, want, n) != 0)
        return 0;
    return ct.n == n || ct.p[n] == ';' || ct.p[n] == ' ';
}

enum provision_stage {
    PROV_START = 0, /* the request's earlier claim, the indexes of name and fingerprint */
    PROV_OWNERS,    /* -> liveness of their owners */
    PROV_IDS,       /* -> claim the new venID under the request id */
    PROV_CLAIMS,    /* -> claim the indexes */
    PROV_RECORD,    /* -> write the record (commit point) and read it back */
    PROV_DONE,
};

typedef struct provision_state {
    enum provision_stage stage;
    char ven[WK_ID_MAX + 1];
    char new_ven[VTN_ID_MAX];
    char name[WK_NAME_MAX + 1];
    char fp[WK_FP_MAX + 1];
    char fp_owner[WK_ID_MAX + 1];
    char name_owner[WK_ID_MAX + 1];
    int fp_owner_dangling, name_owner_dangling;
    wk_rh prior, name_idx, fp_idx, revoked; /* PROV_START's lookups */
    wk_rh name_alive, fp_alive;
    wk_rh ids;
    wk_rh name_claim, fp_claim;
    wk_rh rec; /* HGETALL after the provision script */
} provision_state;

/* "<venID> ..." from vtn:req:<rid> into s->new_ven; 1 when read. */
static int read_claim(const redisReply *r, provision_state *s)
{
    char claim[2 * VTN_ID_MAX + 2], v[VTN_ID_MAX];
    if (!wk_rep_str(r, claim, sizeof claim) || sscanf(claim, "%47s", v) != 1)
        return 0;
    snprintf(s->new_ven, sizeof s->new_ven, "%s", v);
    return 1;
}

/* Same write order as a registration (docs/redis-keys.md): ids claimed under
 * the request id, then the indexes, then the record. */
static void api_provision(wk_req *q, void *st)
{
    provision_state *s = st;
    char k[WK_KEY_MAX], err[512];
    switch (s->stage) {
    case PROV_START: {
        if (!wk_api_json_ctype(q->env.content_type)) {
            wk_reply_json_error(q, 415, "Content-Type must be application/json");
            return;
        }
        if (wk_api_parse_provision(q->env.body.p, q->env.body.n, s->name, sizeof s->name, s->fp,
                                   sizeof s->fp, err, sizeof err) < 0) {
            wk_reply_json_error(q, 400, "%s", err);
            return;
        }
        int bad = (s->prior = wk_cmd(q, "GET", wk_key_req(k, q->rid), NULL)) < 0;
        if (s->name[0])
            bad |= (s->name_idx = wk_cmd(q, "GET", wk_key_name(k, s->name), NULL)) < 0;
        if (s->fp[0]) {
            bad |= (s->fp_idx = wk_cmd(q, "GET", wk_key_fp(k, s->fp), NULL)) < 0;
            bad |= (s->revoked = wk_cmd(q, "GET", wk_key_revokedfp(k, s->fp), NULL)) < 0;
        }
        if (bad)
            wk_reply_no_room(q);
        s->stage = PROV_OWNERS;
        return;
    }
    case PROV_OWNERS: {
        char serial[WK_SERIAL_MAX + 1];
        if (wk_rep_str(wk_rep(q, s->revoked), serial, sizeof serial)) {
            char pretty[WK_FP_MAX * 3 / 2 + 2];
            wk_fp_pretty(s->fp, pretty, sizeof pretty);
            wk_reply_json_error(q, 409,
                                "fingerprint %s belongs to certificate %s, which is revoked",
                                pretty, serial);
            return;
        }
        if (!read_claim(wk_rep(q, s->prior), s) &&
            vtn_id_new("ven", s->new_ven, sizeof s->new_ven) < 0) {
            wk_reply_internal(q, "no randomness for ids");
            return;
        }
        snprintf(s->ven, sizeof s->ven, "%s", s->new_ven);
        wk_rep_str(wk_rep(q, s->name_idx), s->name_owner, sizeof s->name_owner);
        wk_rep_str(wk_rep(q, s->fp_idx), s->fp_owner, sizeof s->fp_owner);
        /* EXISTS of each owner that is not us (us = a retry of this request). Always one
         * command so the next step has a round to run in. */
        int bad = wk_cmd(q, "EXISTS", wk_key_ven(k, s->ven), NULL) < 0;
        bad |= (s->name_alive = wk_ven_owner_exists(q, s->name_owner, s->ven)) < 0;
        bad |= (s->fp_alive = wk_ven_owner_exists(q, s->fp_owner, s->ven)) < 0;
        if (bad)
            wk_reply_no_room(q);
        s->stage = PROV_IDS;
        return;
    }
    case PROV_IDS: {
        s->name_owner_dangling = s->name_alive && wk_rep_int(q, s->name_alive, 1) == 0;
        s->fp_owner_dangling = s->fp_alive && wk_rep_int(q, s->fp_alive, 1) == 0;
        if (s->name_alive && !s->name_owner_dangling) {
            wk_reply_json_error(q, 409, "venName '%s' already belongs to venID %s", s->name,
                                s->name_owner);
            return;
        }
        if (s->fp_alive && !s->fp_owner_dangling) {
            char pretty[WK_FP_MAX * 3 / 2 + 2];
            wk_fp_pretty(s->fp, pretty, sizeof pretty);
            wk_reply_json_error(q, 409, "fingerprint %s already belongs to venID %s", pretty,
                                s->fp_owner);
            return;
        }
        char v[VTN_ID_MAX + 4], ttl[16];
        snprintf(v, sizeof v, "%s -", s->new_ven);
        snprintf(ttl, sizeof ttl, "%d", WK_MEMO_TTL_S);
        int bad = wk_cmd(q, "SET", wk_key_req(k, q->rid), v, "NX", "EX", ttl, NULL) < 0;
        bad |= (s->ids = wk_cmd(q, "GET", k, NULL)) < 0;
        if (bad)
            wk_reply_no_room(q);
        s->stage = PROV_CLAIMS;
        return;
    }
    case PROV_CLAIMS: {
        if (!read_claim(wk_rep(q, s->ids), s)) {
            wk_reply_internal(q, "request id claim unreadable");
            return;
        }
        snprintf(s->ven, sizeof s->ven, "%s", s->new_ven);
        int bad = wk_cmd(q, "ZADD", WK_KEY_VENS, "0", s->ven, NULL) < 0;
        if (s->name[0])
            bad |= (s->name_claim = wk_eval(q, WK_SCRIPT_CLAIM, 1, wk_key_name(k, s->name), s->ven,
                                            s->name_owner_dangling ? s->name_owner : "", NULL)) < 0;
        if (s->fp[0])
            bad |= (s->fp_claim = wk_eval(q, WK_SCRIPT_CLAIM, 1, wk_key_fp(k, s->fp), s->ven,
                                          s->fp_owner_dangling ? s->fp_owner : "", NULL)) < 0;
        if (bad)
            wk_reply_no_room(q);
        s->stage = PROV_RECORD;
        return;
    }
    case PROV_RECORD: {
        char got[WK_ID_MAX + 1] = "", now[24];
        if (s->name_claim &&
            (!wk_rep_str(wk_rep(q, s->name_claim), got, sizeof got) || strcmp(got, s->ven))) {
            wk_reply_json_error(q, 409, "venName '%s' was just taken by venID %s", s->name, got);
            return;
        }
        if (s->fp_claim &&
            (!wk_rep_str(wk_rep(q, s->fp_claim), got, sizeof got) || strcmp(got, s->ven))) {
            wk_reply_json_error(q, 409, "fingerprint was just bound to venID %s", got);
            return;
        }
        snprintf(now, sizeof now, "%lld", (long long)vtn_now_ms());
        int bad = wk_eval(q, WK_SCRIPT_PROVISION, 1, wk_key_ven(k, s->ven), s->name, s->fp, now,
                          NULL) < 0;
        bad |= (s->rec = wk_cmd(q, "HGETALL", k, NULL)) < 0;
        if (bad)
            wk_reply_no_room(q);
        s->stage = PROV_DONE;
        return;
    }
    case PROV_DONE:
        vtn_info("ven_provisioned", "req=%s ven=%s", q->rid, s->ven);
        snprintf(q->headers, sizeof q->headers, "Location: " API_PREFIX "/%s\r\n", s->ven);
        reply_ven(q, 201, s->ven, wk_rep(q, s->rec), 0);
        return;
    }
}

/* ---- DELETE /api/v1/vens/{venID} ---- */

enum delete_stage { DEL_START = 0, DEL_SCRIPT, DEL_CLEANED };

typedef struct delete_state {
    enum delete_stage stage;
    int force;
    wk_rh outcome;
} delete_state;

static void api_delete(wk_req *q, void *st)
{
    delete_state *s = st;
    const char *ven = q->path_id;
    char k1[WK_KEY_MAX], k2[WK_KEY_MAX], k3[WK_KEY_MAX], k4[WK_KEY_MAX], err[512];
    switch (s->stage) {
    case DEL_START: {
        if (wk_api_parse_delete_query(q->query.p, q->query.n, &s->force, err, sizeof err) < 0) {
            wk_reply_json_error(q, 400, "%s", err);
            return;
        }
        char rid[VTN_ID_MAX];
        if (vtn_id_new("req", rid, sizeof rid) < 0) {
            wk_reply_internal(q, "no randomness for ids");
            return;
        }
        s->stage = DEL_SCRIPT;
        s->outcome = wk_eval(q, WK_SCRIPT_APIDELETE, 4, wk_key_ven(k1, ven), wk_key_venq(k2, ven),
                             wk_key_venpm(k3, ven), wk_key_venreq(k4, ven, q->rid),
                             s->force ? "1" : "0", rid, NULL);
        if (s->outcome < 0)
            wk_reply_no_room(q);
        return;
    }
    case DEL_SCRIPT: {
        json_t *a = wk_script_outcome(q, wk_rep(q, s->outcome));
        if (a == NULL)
            return;
        const char *kind = json_string_value(json_array_get(a, 0));
        const char *name = json_string_value(json_array_get(a, 1));
        const char *fp = json_string_value(json_array_get(a, 2));
        const char *reg = json_string_value(json_array_get(a, 3));
        if (strcmp(kind, "404") == 0) {
            wk_reply_json_error(q, 404, "no VEN with venID %s", ven);
        } else if (strcmp(kind, "409") == 0) {
            wk_reply_json_error(q, 409,
                                "the message queue of venID %s is full (%d); retry after the VEN "
                                "polled, or use ?force=true",
                                ven, WK_QUEUE_MAX);
        } else if (strcmp(kind, "202") == 0) {
            vtn_info("ven_cancel_queued", "req=%s ven=%s reg=%s", q->rid, ven, reg ? reg : "");
            wk_reply_json(q, 202,
                          json_pack("{s:s,s:s,s:s?,s:s}", "venID", ven, "state", "cancelling",
                                    "registrationID", reg, "message",
                                    "oadrCancelPartyRegistration queued for the VEN's next poll; "
                                    "the record is deleted when the VEN answers with "
                                    "oadrCanceledPartyRegistration (DELETE ?force=true deletes "
                                    "it now)"));
        } else {
            s->stage = DEL_CLEANED;
            vtn_info("ven_deleted", "req=%s ven=%s forced=%d", q->rid, ven, s->force);
            if (wk_ven_index_cleanup(q, ven, name ? name : "", fp ? fp : "", reg ? reg : "", 1) < 0)
                wk_reply_no_room(q);
        }
        json_decref(a);
        return;
    }
    case DEL_CLEANED:
        wk_reply_json(q, 200, json_pack("{s:s,s:s}", "venID", ven, "state", "deleted"));
        return;
    }
}

/* ---- POST /api/v1/vens/{venID}/reregister ---- */

typedef struct rereg_state {
    int asked;
    wk_rh outcome;
} rereg_state;

static void api_reregister(wk_req *q, void *st)
{
    rereg_state *s = st;
    const char *ven = q->path_id;
    char k1[WK_KEY_MAX], k2[WK_KEY_MAX];
    if (!s->asked) {
        char rid[VTN_ID_MAX];
        if (vtn_id_new("req", rid, sizeof rid) < 0) {
            wk_reply_internal(q, "no randomness for ids");
            return;
        }
        s->asked = 1;
        s->outcome =
            wk_eval(q, WK_SCRIPT_REREG, 2, wk_key_ven(k1, ven), wk_key_venq(k2, ven), rid, NULL);
        if (s->outcome < 0)
            wk_reply_no_room(q);
        return;
    }
    char res[16];
    wk_rep_str(wk_rep(q, s->outcome), res, sizeof res);
    if (strcmp(res, "404") == 0)
        wk_reply_json_error(q, 404, "no VEN with venID %s", ven);
    else if (strcmp(res, "409r") == 0)
        wk_reply_json_error(q, 409, "venID %s is not registered", ven);
    else if (strcmp(res, "409c") == 0)
        wk_reply_json_error(q, 409, "the registration of venID %s is being cancelled", ven);
    else if (strcmp(res, "409q") == 0)
        wk_reply_json_error(q, 409, "the message queue of venID %s is full (%d)", ven,
                            WK_QUEUE_MAX);
    else if (strncmp(res, "202", 3) == 0) {
        int already = res[3] == 'p';
        if (!already)
            vtn_info("ven_reregistration_queued", "req=%s ven=%s", q->rid, ven);
        wk_reply_json(q, 202,
                      json_pack("{s:s,s:s,s:s}", "venID", ven, "status",
                                already ? "already_queued" : "queued", "message",
                                "oadrRequestReregistration is delivered on the VEN's next poll"));
    } else
        wk_reply_internal(q, "unexpected script outcome");
}

/* ---- the route table ---- */

static const wk_handler h_list = WK_HANDLER("api.vens.list", list_state, NULL, list_fini, api_list);
static const wk_handler h_provision =
    WK_HANDLER("api.vens.provision", provision_state, NULL, NULL, api_provision);
static const wk_handler h_get = WK_HANDLER("api.vens.get", get_state, NULL, NULL, api_get);
static const wk_handler h_delete =
    WK_HANDLER("api.vens.delete", delete_state, NULL, NULL, api_delete);
static const wk_handler h_rereg =
    WK_HANDLER("api.vens.reregister", rereg_state, NULL, NULL, api_reregister);

/* Every resource and method of the API. A row with query 0 refuses a query
 * string; one loop answers 404, 405 (with Allow) and 414 for all of them. */
typedef struct api_row {
    int resource; /* enum wk_api_route: the path pattern */
    const char *method;
    const wk_handler *handler;
    int query;
} api_row;

static const api_row api_rows[] = {
    {WK_API_VENS, "GET", &h_list, 1},
    {WK_API_VENS, "POST", &h_provision, 0},
    {WK_API_VEN, "GET", &h_get, 0},
    {WK_API_VEN, "DELETE", &h_delete, 1},
    {WK_API_REREGISTER, "POST", &h_rereg, 0},
    {WK_API_CERTS, "GET", &wk_api_cert_list, 1},
    {WK_API_CERTS, "POST", &wk_api_cert_issue, 0},
    {WK_API_CERT, "GET", &wk_api_cert_get, 0},
    {WK_API_CERT_REVOKE, "POST", &wk_api_cert_revoke, 0},
    {WK_API_CRL, "GET", &wk_api_crl, 1},
};

const char *wk_api_allow(int route)
{
    static char allow[WK_API__COUNT][64];
    char *out = allow[route > 0 && route < WK_API__COUNT ? route : 0];
    if (out[0] || route <= 0 || route >= WK_API__COUNT)
        return out;
    size_t o = 0;
    for (size_t i = 0; i < sizeof api_rows / sizeof api_rows[0]; i++)
        if (api_rows[i].resource == route)
            o += (size_t)snprintf(out + o, sizeof allow[0] - o, "%s%s", o ? ", " : "",
                                  api_rows[i].method);
    return out;
}

/* ---- entry ---- */

static void api_entry(wk_req *q, void *st)
{
    (void)st;
    wk_worker *w = q->w;
    if (!w->cfg.api_token[0]) {
        wk_reply_json_error(q, 503, "management API disabled: set VTN_API_TOKEN");
        return;
    }
    if (!wk_api_auth_ok(q->env.authorization.p, q->env.authorization.n, w->cfg.api_token)) {
        snprintf(q->headers, sizeof q->headers, "WWW-Authenticate: Bearer realm=\"openvtn\"\r\n");
        wk_reply_json_error(q, 401, "missing or wrong bearer token");
        return;
    }
    const char *path = q->env.path.p;
    size_t len = q->env.path.n;
    const char *qm = memchr(path, '?', len);
    size_t plen = qm ? (size_t)(qm - path) : len, qlen = qm ? len - plen - 1 : 0;
    char shown[200];
    vtn_log_quote(shown, sizeof shown, path, plen);
    /* Longer than any route takes: say so rather than "no such resource". */
    if (plen > API_PATH_MAX) {
        wk_reply_json_error(q, 414, "request path longer than %d bytes", API_PATH_MAX);
        return;
    }
    if (qlen > API_QUERY_MAX) {
        wk_reply_json_error(q, 414, "query string longer than %d bytes", API_QUERY_MAX);
        return;
    }
    const char *query;
    size_t ql;
    int route = wk_api_route_of(path, len, q->path_id, &query, &ql);
    if (route == WK_API_NONE) {
        wk_reply_json_error(q, 404, "no such resource: %s", shown);
        return;
    }
    vtn_str m = q->env.method;
    const api_row *row = NULL;
    for (size_t i = 0; i < sizeof api_rows / sizeof api_rows[0] && !row; i++)
        if (api_rows[i].resource == route && vtn_str_eq(m, api_rows[i].method))
            row = &api_rows[i];
    if (row == NULL) {
        snprintf(q->headers, sizeof q->headers, "Allow: %s\r\n", wk_api_allow(route));
        wk_reply_json_error(q, 405, "method %.*s not allowed on %s (allowed: %s)",
                            (int)(m.n > 16 ? 16 : m.n), m.p, shown, wk_api_allow(route));
        return;
    }
    if (!row->query && ql) {
        wk_reply_json_error(q, 400, "%s takes no query parameters", shown);
        return;
    }
    q->query = (vtn_str){query, (uint32_t)ql};
    wk_req_handle(q, row->handler);
}

typedef struct api_entry_state {
    int unused;
} api_entry_state;

const wk_handler wk_h_api = WK_HANDLER("api", api_entry_state, NULL, NULL, api_entry);
