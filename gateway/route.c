/* Which requests go to a worker, and the gateway's own answers for the rest:
 * 404 unknown path, 405 wrong method (with Allow), 415 wrong content type. */
#include <string.h>
#include <strings.h>

#include "gw_internal.h"

#define OADR_PREFIX "/OpenADR2/Simple/2.0b/"
#define API_PREFIX "/api/v1"
#define UI_PREFIX "/ui"

static const struct {
    const char *service;
    size_t len;
    int route;
} oadr_services[] = {
    {"EiRegisterParty", 15, GW_ROUTE_REGISTER},
    {"EiEvent", 7, GW_ROUTE_EVENT},
    {"EiReport", 8, GW_ROUTE_REPORT},
    {"EiOpt", 5, GW_ROUTE_OPT},
    {"OadrPoll", 8, GW_ROUTE_POLL},
};

const char *gw_route_name(int route)
{
    switch (route) {
    case GW_ROUTE_REGISTER:
        return "EiRegisterParty";
    case GW_ROUTE_EVENT:
        return "EiEvent";
    case GW_ROUTE_REPORT:
        return "EiReport";
    case GW_ROUTE_OPT:
        return "EiOpt";
    case GW_ROUTE_POLL:
        return "OadrPoll";
    case GW_ROUTE_API:
        return "api";
    case GW_ROUTE_UI:
        return "ui";
    default:
        return "other";
    }
}

/* The media type of a Content-Type value (before ';', without spaces). */
static int media_type_is(const char *ct, size_t n, const char *want)
{
    size_t i = 0, end;
    while (i < n && (ct[i] == ' ' || ct[i] == '\t'))
        i++;
    end = i;
    while (end < n && ct[end] != ';' && ct[end] != ' ' && ct[end] != '\t')
        end++;
    size_t wl = strlen(want);
    return end - i == wl && strncasecmp(ct + i, want, wl) == 0;
}

static int has_prefix(const char *p, size_t n, const char *pre, size_t pl)
{
    return n >= pl && memcmp(p, pre, pl) == 0;
}

void gw_route(int listener_kind, int method, const char *url, size_t url_len, const char *ctype,
              size_t ctype_len, gw_route_result *out)
{
    memset(out, 0, sizeof *out);
    out->route = GW_ROUTE_OTHER;

    /* absolute-form ("http://host/path") must be accepted by servers; forward
     * the origin-form part only. */
    const char *t = url;
    size_t tn = url_len;
    if (has_prefix(t, tn, "http://", 7) || has_prefix(t, tn, "https://", 8)) {
        const char *auth = memchr(t, '/', tn);
        auth += 2;
        const char *slash = memchr(auth, '/', tn - (size_t)(auth - t));
        if (slash) {
            tn -= (size_t)(slash - t);
            t = slash;
        } else {
            t = "/";
            tn = 1;
        }
    }
    out->path = t;
    out->path_len = tn;
    size_t plen = 0; /* path without query / fragment */
    while (plen < tn && t[plen] != '?' && t[plen] != '#')
        plen++;

    if (listener_kind == GW_LISTEN_OADR) {
        const size_t pre = sizeof(OADR_PREFIX) - 1;
        if (has_prefix(t, plen, OADR_PREFIX, pre)) {
            for (size_t i = 0; i < sizeof oadr_services / sizeof oadr_services[0]; i++) {
                if (plen - pre == oadr_services[i].len &&
                    memcmp(t + pre, oadr_services[i].service, oadr_services[i].len) == 0) {
                    out->route = oadr_services[i].route;
                    if (method != HTTP_POST) {
                        out->status = 405;
                        out->extra = "Allow: POST\r\n";
                        out->text = "method not allowed: OpenADR services take POST";
                        return;
                    }
                    if (!media_type_is(ctype, ctype_len, "application/xml") &&
                        !media_type_is(ctype, ctype_len, "text/xml")) {
                        out->status = 415;
                        out->text = "unsupported media type: OpenADR needs application/xml";
                        return;
                    }
                    out->kind = VTN_KIND_OADR;
                    return;
                }
            }
        }
    } else if (listener_kind == GW_LISTEN_API) {
        const size_t pre = sizeof(API_PREFIX) - 1;
        if (has_prefix(t, plen, API_PREFIX, pre) && (plen == pre || t[pre] == '/')) {
            out->route = GW_ROUTE_API;
            out->kind = VTN_KIND_API;
            return;
        }
        /* the console's files, answered by the gateway (ui.c) without the
         * token; status stays 0 and kind unset: no worker sees them */
        const size_t upre = sizeof(UI_PREFIX) - 1;
        if (has_prefix(t, plen, UI_PREFIX, upre) && (plen == upre || t[upre] == '/')) {
            out->route = GW_ROUTE_UI;
            return;
        }
    }
    out->status = 404;
    out->text = "not found";
}
