/* The management API's door: bearer token, then one route table (path
 * pattern, method, handler with its state type) that answers 404, 405 with
 * Allow, and 414 by itself for every resource (docs/openapi.yaml). */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "vtn/auth.h"
#include "vtn/hex.h"
#include "vtn/log.h"
#include "vtn/time.h"
#include "wk_api_internal.h"

/* ---- parsing (pure, unit-tested) ---- */

#define API_PREFIX "/api/v1/vens"
#define CERT_PREFIX "/api/v1/certificates"
#define CRL_PATH "/api/v1/crl"
#define PROGRAMS_PREFIX "/api/v1/programs"
#define EVENTS_PREFIX "/api/v1/events"
#define GROUPS_PREFIX "/api/v1/groups"
#define REPORTS_PATH "/api/v1/reports"
#define POLICY_DEFAULT_PATH "/api/v1/report-policies/default"
#define HEALTH_PATH "/api/v1/health"

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

/* collection_route for an item with two actions. */
static int collection_route2(const char *p, size_t rest, const char *a1, int act1, const char *a2,
                             int act2, int list, int item, char *id)
{
    int r = collection_route(p, rest, a1, list, item, act1, id);
    return r != WK_API_NONE ? r : collection_route(p, rest, a2, list, item, act2, id);
}

/* Under /api/v1/vens (p, rest): "/{venID}/reports/{reportRequestID}[/]",
 * the venID copied into id. WK_API_NONE for anything else. */
static int ven_report_route(const char *p, size_t rest, char *id)
{
    static const char mid[] = "/reports/";
    if (rest < 2 || p[0] != '/')
        return WK_API_NONE;
    const char *slash = memchr(p + 1, '/', rest - 1);
    if (slash == NULL || !wk_id_valid(p + 1, (size_t)(slash - p - 1)))
        return WK_API_NONE;
    size_t idlen = (size_t)(slash - p - 1), left = rest - idlen - 1;
    if (left <= sizeof mid - 1 || memcmp(slash, mid, sizeof mid - 1) != 0)
        return WK_API_NONE;
    const char *rr = slash + sizeof mid - 1;
    size_t rrlen = left - (sizeof mid - 1);
    if (rr[rrlen - 1] == '/')
        rrlen--;
    if (!wk_id_valid(rr, rrlen))
        return WK_API_NONE;
    memcpy(id, p + 1, idlen);
    id[idlen] = '\0';
    return WK_API_VEN_REPORT;
}

int wk_api_report_request_id(const char *path, size_t len, char *out)
{
    const char *qm = memchr(path, '?', len);
    size_t plen = qm ? (size_t)(qm - path) : len;
    if (plen && path[plen - 1] == '/')
        plen--;
    size_t i = plen;
    while (i > 0 && path[i - 1] != '/')
        i--;
    if (!wk_id_valid(path + i, plen - i))
        return -EINVAL;
    memcpy(out, path + i, plen - i);
    out[plen - i] = '\0';
    return 0;
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
    if ((plen == sizeof HEALTH_PATH - 1 || (plen == sizeof HEALTH_PATH && path[plen - 1] == '/')) &&
        memcmp(path, HEALTH_PATH, sizeof HEALTH_PATH - 1) == 0)
        return WK_API_HEALTH;
    size_t ppre = sizeof PROGRAMS_PREFIX - 1, epre = sizeof EVENTS_PREFIX - 1;
    if (plen >= ppre && memcmp(path, PROGRAMS_PREFIX, ppre) == 0)
        return collection_route2(path + ppre, plen - ppre, "vens", WK_API_PROGRAM_VENS,
                                 "report-policy", WK_API_PROGRAM_POLICY, WK_API_PROGRAMS,
                                 WK_API_PROGRAM, ven_id);
    if ((plen == sizeof POLICY_DEFAULT_PATH - 1 ||
         (plen == sizeof POLICY_DEFAULT_PATH && path[plen - 1] == '/')) &&
        memcmp(path, POLICY_DEFAULT_PATH, sizeof POLICY_DEFAULT_PATH - 1) == 0)
        return WK_API_POLICY_DEFAULT;
    if (plen >= sizeof GROUPS_PREFIX - 1 &&
        memcmp(path, GROUPS_PREFIX, sizeof GROUPS_PREFIX - 1) == 0)
        return collection_route(path + sizeof GROUPS_PREFIX - 1, plen - (sizeof GROUPS_PREFIX - 1),
                                "vens", WK_API_GROUPS, WK_API_GROUP, WK_API_GROUP_VENS, ven_id);
    if (plen >= epre && memcmp(path, EVENTS_PREFIX, epre) == 0)
        return collection_route2(path + epre, plen - epre, "cancel", WK_API_EVENT_CANCEL, "vens",
                                 WK_API_EVENT_VENS, WK_API_EVENTS, WK_API_EVENT, ven_id);
    if ((plen == sizeof REPORTS_PATH - 1 ||
         (plen == sizeof REPORTS_PATH && path[plen - 1] == '/')) &&
        memcmp(path, REPORTS_PATH, sizeof REPORTS_PATH - 1) == 0)
        return WK_API_REPORTS;
    if (plen >= vpre && memcmp(path, API_PREFIX, vpre) == 0) {
        int r = ven_report_route(path + vpre, plen - vpre, ven_id);
        if (r == WK_API_NONE)
            r = collection_route(path + vpre, plen - vpre, "reports", WK_API_VENS, WK_API_VEN,
                                 WK_API_VEN_REPORTS, ven_id);
        if (r == WK_API_NONE || r == WK_API_VENS || r == WK_API_VEN)
            r = collection_route2(path + vpre, plen - vpre, "reregister", WK_API_REREGISTER,
                                  "targets", WK_API_VEN_TARGETS, WK_API_VENS, WK_API_VEN, ven_id);
        if (r == WK_API_NONE)
            r = collection_route2(path + vpre, plen - vpre, "opts", WK_API_VEN_OPTS,
                                  "report-policy", WK_API_VEN_POLICY, WK_API_VENS, WK_API_VEN,
                                  ven_id);
        return r;
    }
    return WK_API_NONE;
}

int wk_api_auth_ok(const char *header, size_t len, const char *token)
{
    return vtn_bearer_ok(header, len, token, strlen(token));
}

/* Percent-decodes s[0..n) into out; '+' is a space. Length or -EINVAL. */
/* ---- the route table ---- */

/* Every resource and method of the API. A row with query 0 refuses a query
 * string; one loop answers 404, 405 (with Allow) and 414 for all of them. */
typedef struct api_row {
    int resource; /* enum wk_api_route: the path pattern */
    const char *method;
    const wk_handler *handler;
    int query;
} api_row;

static const api_row api_rows[] = {
    {WK_API_VENS, "GET", &wk__api_vens_list, 1},
    {WK_API_VENS, "POST", &wk__api_vens_provision, 0},
    {WK_API_VEN, "GET", &wk__api_vens_get, 0},
    {WK_API_VEN, "DELETE", &wk__api_vens_delete, 1},
    {WK_API_REREGISTER, "POST", &wk__api_vens_reregister, 0},
    {WK_API_CERTS, "GET", &wk__api_cert_list, 1},
    {WK_API_CERTS, "POST", &wk__api_cert_issue, 0},
    {WK_API_CERT, "GET", &wk__api_cert_get, 0},
    {WK_API_CERT_REVOKE, "POST", &wk__api_cert_revoke, 0},
    {WK_API_CRL, "GET", &wk__api_crl, 1},
    {WK_API_PROGRAMS, "GET", &wk__api_programs_list, 1},
    {WK_API_PROGRAMS, "POST", &wk__api_programs_create, 0},
    {WK_API_PROGRAM, "GET", &wk__api_programs_get, 0},
    {WK_API_PROGRAM, "DELETE", &wk__api_programs_delete, 0},
    {WK_API_PROGRAM_VENS, "GET", &wk__api_program_vens_get, 1},
    {WK_API_PROGRAM_VENS, "PUT", &wk__api_program_vens_put, 0},
    {WK_API_PROGRAM_VENS, "POST", &wk__api_program_vens_post, 0},
    {WK_API_EVENTS, "GET", &wk__api_events_list, 1},
    {WK_API_EVENTS, "POST", &wk__api_events_create, 0},
    {WK_API_EVENT, "GET", &wk__api_events_get, 0},
    {WK_API_EVENT, "PUT", &wk__api_events_modify, 0},
    {WK_API_EVENT_CANCEL, "POST", &wk__api_events_cancel, 0},
    {WK_API_EVENT_VENS, "GET", &wk__api_events_vens, 1},
    {WK_API_GROUPS, "GET", &wk__api_groups_list, 1},
    {WK_API_GROUP, "GET", &wk__api_groups_get, 0},
    {WK_API_GROUP, "PUT", &wk__api_groups_put, 0},
    {WK_API_GROUP, "DELETE", &wk__api_groups_delete, 0},
    {WK_API_GROUP_VENS, "POST", &wk__api_group_vens_post, 0},
    {WK_API_VEN_TARGETS, "GET", &wk__api_ven_targets_get, 0},
    {WK_API_VEN_TARGETS, "PUT", &wk__api_ven_targets_put, 0},
    {WK_API_VEN_REPORTS, "GET", &wk__api_ven_reports_get, 0},
    {WK_API_VEN_REPORTS, "POST", &wk__api_ven_reports_post, 0},
    {WK_API_VEN_REPORT, "DELETE", &wk__api_ven_report_delete, 0},
    {WK_API_REPORTS, "GET", &wk__api_reports_data, 1},
    {WK_API_VEN_OPTS, "GET", &wk__api_ven_opts_get, 0},
    {WK_API_POLICY_DEFAULT, "GET", &wk__api_policy_get, 0},
    {WK_API_POLICY_DEFAULT, "PUT", &wk__api_policy_put, 0},
    {WK_API_POLICY_DEFAULT, "DELETE", &wk__api_policy_delete, 0},
    {WK_API_PROGRAM_POLICY, "GET", &wk__api_policy_get, 0},
    {WK_API_PROGRAM_POLICY, "PUT", &wk__api_policy_put, 0},
    {WK_API_PROGRAM_POLICY, "DELETE", &wk__api_policy_delete, 0},
    {WK_API_VEN_POLICY, "GET", &wk__api_policy_get, 0},
    {WK_API_VEN_POLICY, "PUT", &wk__api_policy_put, 0},
    {WK_API_VEN_POLICY, "DELETE", &wk__api_policy_delete, 0},
    {WK_API_HEALTH, "GET", &wk__api_health, 0},
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
    q->mtype = WK_MT_API;
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
    if (plen > WK_API_PATH_MAX) {
        wk_reply_json_error(q, 414, "request path longer than %d bytes", WK_API_PATH_MAX);
        return;
    }
    if (qlen > WK_API_QUERY_MAX) {
        wk_reply_json_error(q, 414, "query string longer than %d bytes", WK_API_QUERY_MAX);
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
        snprintf(q->headers, sizeof q->headers, "Allow: %.100s\r\n", wk_api_allow(route));
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
