/* The OpenADR 2.0b message codec; see wk_codec.h. */
#include "wk_codec.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "vtn/log.h"
#include "vtn/time.h"
#include "vtn/xml.h"
#include "wk_schemas.h"

#define NS_OADR "http://openadr.org/oadr-2.0b/2012/07"
#define NS_EI "http://docs.oasis-open.org/ns/energyinterop/201110"
#define NS_PYLD "http://docs.oasis-open.org/ns/energyinterop/201110/payloads"
#define NS_XCAL "urn:ietf:params:xml:ns:icalendar-2.0"
#define NS_DS "http://www.w3.org/2000/09/xmldsig#"

/* ---- the message table ---------------------------------------------------- */

#define SVC_BIT(s) (1u << (s))

typedef struct msg_info {
    const char *name;       /* local name in the oadr namespace */
    enum wk_msg_type reply; /* what the VTN answers it with */
    unsigned services;      /* SVC_BITs of the endpoints that accept it; 0: never from a VEN */
    int wrapped;            /* fields sit one level down (pyld:eiRequestEvent, eiCreatedEvent) */
} msg_info;

static const msg_info k_msgs[WK_MSG__COUNT] = {[WK_MSG_NONE] = {"", WK_MSG_RESPONSE, 0, 0},
#define MSG_ROW(id, element, reply, services, wrapped, handler)                                    \
    [WK_MSG_##id] = {element, WK_MSG_##reply, services, wrapped},
                                               WK_MESSAGES(MSG_ROW)
#undef MSG_ROW
};

static const char *const k_services[WK_SVC__COUNT] = {
    [WK_SVC_NONE] = "",
    [WK_SVC_EI_REGISTER_PARTY] = "EiRegisterParty",
    [WK_SVC_EI_EVENT] = "EiEvent",
    [WK_SVC_EI_REPORT] = "EiReport",
    [WK_SVC_EI_OPT] = "EiOpt",
    [WK_SVC_OADR_POLL] = "OadrPoll",
};

static enum wk_msg_type lookup_msg(const char *local)
{
    for (int t = 1; t < WK_MSG__COUNT; t++)
        if (strcmp(k_msgs[t].name, local) == 0)
            return (enum wk_msg_type)t;
    return WK_MSG_NONE;
}

const char *wk_msg_name(enum wk_msg_type t)
{
    return (t > WK_MSG_NONE && t < WK_MSG__COUNT) ? k_msgs[t].name : "";
}

const char *wk_service_name(enum wk_service svc)
{
    return (svc > WK_SVC_NONE && svc < WK_SVC__COUNT) ? k_services[svc] : "";
}

int wk_msg_allowed(enum wk_service svc, enum wk_msg_type t)
{
    if (t <= WK_MSG_NONE || t >= WK_MSG__COUNT || svc <= WK_SVC_NONE || svc >= WK_SVC__COUNT)
        return 0;
    return (k_msgs[t].services & SVC_BIT(svc)) != 0;
}

enum wk_msg_type wk_msg_reply_type(enum wk_msg_type t)
{
    return (t >= WK_MSG_NONE && t < WK_MSG__COUNT) ? k_msgs[t].reply : WK_MSG_RESPONSE;
}

enum wk_service wk_service_from_path(const char *path, size_t len)
{
    static const char prefix[] = "/OpenADR2/Simple/2.0b/";
    const size_t pl = sizeof prefix - 1;
    const char *q = memchr(path, '?', len);
    if (q)
        len = (size_t)(q - path);
    if (len > pl && path[len - 1] == '/')
        len--;
    if (len <= pl || memcmp(path, prefix, pl) != 0)
        return WK_SVC_NONE;
    const char *name = path + pl;
    size_t nl = len - pl;
    for (int s = 1; s < WK_SVC__COUNT; s++)
        if (strlen(k_services[s]) == nl && memcmp(k_services[s], name, nl) == 0)
            return (enum wk_service)s;
    return WK_SVC_NONE;
}

/* ---- process and thread state --------------------------------------------- */

static vtn_xml_schema *g_schema;

struct wk_codec {
    vtn_xml_ctx *x;
};

int wk_oadr_init(void)
{
    if (g_schema)
        return 0;
    char err[VTN_XML_ERR_MAX];
    int rc = vtn_xml_schema_from_memory(wk_schema_files, wk_schema_nfiles, WK_SCHEMA_MAIN,
                                        &g_schema, err, sizeof err);
    if (rc < 0) {
        char q[400];
        vtn_error("schema_compile", "rc=%d error=%s", rc,
                  vtn_log_quote(q, sizeof q, err, strlen(err)));
        return rc;
    }
    /* Every import is resolved now; nothing may load anything from here on. */
    vtn_xml_lockdown();
    return 0;
}

void wk_oadr_shutdown(void)
{
    vtn_xml_schema_free(&g_schema);
}

wk_codec *wk_codec_new(void)
{
    if (g_schema == NULL)
        return NULL;
    wk_codec *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    c->x = vtn_xml_ctx_new(g_schema);
    if (c->x == NULL) {
        free(c);
        return NULL;
    }
    return c;
}

const vtn_xml_schema *wk_codec_schema(void)
{
    return g_schema;
}

void wk_codec_free(wk_codec **c)
{
    if (c == NULL || *c == NULL)
        return;
    vtn_xml_ctx_free(&(*c)->x);
    free(*c);
    *c = NULL;
}

/* ---- reading --------------------------------------------------------------- */

void wk_msg_drop_doc(wk_msg *m)
{
    if (m->doc)
        xmlFreeDoc(m->doc);
    m->doc = NULL;
    m->payload = NULL;
}

void wk_msg_clear(wk_msg *m)
{
    if (m->doc)
        xmlFreeDoc(m->doc);
    json_decref(m->reports);
    json_decref(m->report_requests);
    json_decref(m->pending);
    json_decref(m->opt);
    memset(m, 0, sizeof *m);
    m->report_only = m->xml_signature = m->http_pull_model = -1;
}

static void msg_reset(wk_msg *m, enum wk_service svc)
{
    memset(m, 0, sizeof *m);
    m->service = svc;
    m->reply = WK_MSG_RESPONSE;
    m->code = WK_OADR_OK;
    m->report_only = m->xml_signature = m->http_pull_model = -1;
}

/* libxml2 names elements {uri}local; the prefixes of the 2.0b examples read
 * better in a responseDescription. */
static void shorten_namespaces(char *s)
{
    static const struct {
        const char *uri;
        const char *prefix;
    } k[] = {
        {"{" NS_OADR "}", "oadr:"},
        {"{" NS_PYLD "}", "pyld:"}, /* before NS_EI, which is its prefix */
        {"{" NS_EI "}", "ei:"},
        {"{urn:ietf:params:xml:ns:icalendar-2.0:stream}", "strm:"},
        {"{" NS_XCAL "}", "xcal:"},
        {"{http://docs.oasis-open.org/ns/emix/2011/06/power}", "power:"},
        {"{http://docs.oasis-open.org/ns/emix/2011/06/siscale}", "scale:"},
        {"{http://docs.oasis-open.org/ns/emix/2011/06}", "emix:"},
        {"{" NS_DS "}", "ds:"},
    };
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++) {
        size_t ul = strlen(k[i].uri), pl = strlen(k[i].prefix);
        char *p;
        while ((p = strstr(s, k[i].uri)) != NULL) {
            memcpy(p, k[i].prefix, pl);
            memmove(p + pl, p + ul, strlen(p + ul) + 1);
        }
    }
}

static int fail(wk_msg *m, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(wk_msg *m, int code, const char *fmt, ...)
{
    m->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m->desc, sizeof m->desc, fmt, ap);
    va_end(ap);
    shorten_namespaces(m->desc);
    return -EBADMSG;
}

/* "{uri}local" or "oadr:local" for messages about an element. */
static const char *elem_name(const xmlNode *n, char *out, size_t outlen)
{
    const char *uri = (n->ns && n->ns->href) ? (const char *)n->ns->href : "";
    if (uri[0])
        snprintf(out, outlen, "{%s}%s", uri, (const char *)n->name);
    else
        snprintf(out, outlen, "%s", (const char *)n->name);
    shorten_namespaces(out);
    return out;
}

static int parse_bool(const xmlNode *n, int8_t *out)
{
    char v[8];
    if (vtn_xml_text_trim(n, v, sizeof v) < 0)
        return -EINVAL;
    if (strcmp(v, "true") == 0 || strcmp(v, "1") == 0)
        *out = 1;
    else if (strcmp(v, "false") == 0 || strcmp(v, "0") == 0)
        *out = 0;
    else
        return -EINVAL;
    return 0;
}

typedef struct field_err {
    const char *what; /* first field that did not fit or parse */
    size_t cap;
    const char *unit; /* of cap: NULL for bytes */
} field_err;

/* Copies a trimmed value; on overflow the field is emptied (never echo a
 * truncated ID) and the first such field is remembered. */
static void copy_field(const xmlNode *n, char *out, size_t outlen, const char *what, field_err *fe)
{
    if (vtn_xml_text_trim(n, out, outlen) == -E2BIG) {
        out[0] = '\0';
        if (fe->what == NULL) {
            fe->what = what;
            fe->cap = outlen - 1;
        }
    }
}

static void read_ei_response(const xmlNode *r, wk_ei_response *er, field_err *fe)
{
    er->present = 1;
    for (xmlNode *c = vtn_xml_first_elem(r); c; c = vtn_xml_next_elem(c)) {
        if (vtn_xml_is(c, NS_EI, "responseCode")) {
            char v[8];
            if (vtn_xml_text_trim(c, v, sizeof v) == 3 && v[0] >= '0' && v[0] <= '9' &&
                v[1] >= '0' && v[1] <= '9' && v[2] >= '0' && v[2] <= '9')
                er->code = (v[0] - '0') * 100 + (v[1] - '0') * 10 + (v[2] - '0');
        } else if (vtn_xml_is(c, NS_EI, "responseDescription")) {
            vtn_xml_text(c, er->desc, sizeof er->desc); /* informational: truncation is fine */
        } else if (vtn_xml_is(c, NS_PYLD, "requestID")) {
            copy_field(c, er->request_id, sizeof er->request_id, "eiResponse/pyld:requestID", fe);
        }
    }
}

/* eventResponses of oadrCreatedEvent (the schema has checked their shape). */
static void read_event_responses(const xmlNode *list, wk_msg *m, field_err *fe)
{
    for (xmlNode *r = vtn_xml_first_elem(list); r; r = vtn_xml_next_elem(r)) {
        if (m->n_event_responses == WK_EVENT_RESPONSES_MAX) {
            if (fe->what == NULL) {
                fe->what = "ei:eventResponses";
                fe->cap = WK_EVENT_RESPONSES_MAX;
                fe->unit = "eventResponse elements";
            }
            return;
        }
        wk_event_response *er = &m->event_responses[m->n_event_responses++];
        for (xmlNode *c = vtn_xml_first_elem(r); c; c = vtn_xml_next_elem(c)) {
            char v[24];
            if (vtn_xml_is(c, NS_EI, "responseCode")) {
                if (vtn_xml_text_trim(c, v, sizeof v) > 0)
                    er->code = atoi(v);
            } else if (vtn_xml_is(c, NS_EI, "optType")) {
                copy_field(c, er->opt, sizeof er->opt, "ei:optType", fe);
            } else if (vtn_xml_is(c, NS_EI, "qualifiedEventID")) {
                for (xmlNode *q = vtn_xml_first_elem(c); q; q = vtn_xml_next_elem(q)) {
                    if (vtn_xml_is(q, NS_EI, "eventID"))
                        copy_field(q, er->event_id, sizeof er->event_id, "ei:eventID", fe);
                    else if (vtn_xml_is(q, NS_EI, "modificationNumber") &&
                             vtn_xml_text_trim(q, v, sizeof v) > 0)
                        er->mod_number = atoll(v);
                }
            }
        }
    }
}

/* ---- reports: copied into JSON (wk_msg.reports, .report_requests, .pending) ---- */

static void over_cap(field_err *fe, const char *what, size_t cap, const char *unit)
{
    if (fe->what == NULL) {
        fe->what = what;
        fe->cap = cap;
        fe->unit = unit;
    }
}

/* The trimmed text of n under key (absent when n is NULL or empty); a
 * value over cap bytes makes the message invalid. */
static void jtext(json_t *o, const char *key, const xmlNode *n, size_t cap, field_err *fe)
{
    /* The largest cap a caller passes (a marketContext's), so cap is the
     * one the message names. */
    char v[WK_ADDR_MAX + 1];
    if (n == NULL)
        return;
    if (cap >= sizeof v)
        cap = sizeof v - 1;
    int r = vtn_xml_text_trim(n, v, cap + 1);
    if (r == -E2BIG) {
        over_cap(fe, (const char *)n->name, cap, NULL);
        return;
    }
    if (r > 0)
        json_object_set_new(o, key, json_string(v));
}

/* The trimmed text of n as a new JSON string, NULL when empty or over cap. */
static json_t *text_value(const xmlNode *n, size_t cap, field_err *fe)
{
    json_t *tmp = json_object();
    jtext(tmp, "v", n, cap, fe);
    json_t *v = json_incref(json_object_get(tmp, "v"));
    json_decref(tmp);
    return v;
}

/* xcal:dtstart/xcal:date-time, xcal:duration/xcal:duration and the like:
 * the text of the one element inside. */
static void jinner(json_t *o, const char *key, const xmlNode *n, field_err *fe)
{
    jtext(o, key, vtn_xml_first_elem(n), WK_VALUE_MAX, fe);
}

/* The resourceIDs of an ei:EiTargetType (reportSubject, reportDataSource,
 * an opt's eiTarget); where says where, for the message over the cap. */
static json_t *target_ids(const xmlNode *t, const char *where, field_err *fe)
{
    json_t *a = json_array();
    for (xmlNode *c = vtn_xml_first_elem(t); c && a; c = vtn_xml_next_elem(c)) {
        if (!vtn_xml_is(c, NS_EI, "resourceID"))
            continue;
        if (json_array_size(a) == WK_TARGET_IDS_MAX) {
            over_cap(fe, "ei:resourceID", WK_TARGET_IDS_MAX, where);
            break;
        }
        json_t *v = text_value(c, WK_ID_MAX, fe);
        if (v)
            json_array_append_new(a, v);
    }
    return a;
}

static void read_description(const xmlNode *d, json_t *list, wk_msg *m, field_err *fe)
{
    if (m->n_report_rids++ == WK_REPORT_RIDS_MAX) {
        over_cap(fe, "oadr:oadrReportDescription", WK_REPORT_RIDS_MAX, "in one message");
        return;
    }
    json_t *o = json_object();
    for (xmlNode *c = vtn_xml_first_elem(d); c && o; c = vtn_xml_next_elem(c)) {
        const char *name = (const char *)c->name;
        if (vtn_xml_is(c, NS_EI, "rID"))
            jtext(o, "rID", c, WK_ID_MAX, fe);
        else if (vtn_xml_is(c, NS_EI, "reportType"))
            jtext(o, "reportType", c, WK_VALUE_MAX, fe);
        else if (vtn_xml_is(c, NS_EI, "readingType"))
            jtext(o, "readingType", c, WK_VALUE_MAX, fe);
        else if (vtn_xml_is(c, NS_EI, "reportSubject"))
            json_object_set_new(o, "reportSubject",
                                target_ids(c, "per report subject or data source", fe));
        else if (vtn_xml_is(c, NS_EI, "reportDataSource"))
            json_object_set_new(o, "reportDataSource",
                                target_ids(c, "per report subject or data source", fe));
        else if (strcmp(name, "marketContext") == 0)
            jtext(o, "marketContext", c, WK_ADDR_MAX, fe);
        else if (vtn_xml_is(c, NS_OADR, "oadrSamplingRate")) {
            for (xmlNode *r = vtn_xml_first_elem(c); r; r = vtn_xml_next_elem(r)) {
                if (vtn_xml_is(r, NS_OADR, "oadrMinPeriod"))
                    jtext(o, "minPeriod", r, WK_VALUE_MAX, fe);
                else if (vtn_xml_is(r, NS_OADR, "oadrMaxPeriod"))
                    jtext(o, "maxPeriod", r, WK_VALUE_MAX, fe);
                else if (vtn_xml_is(r, NS_OADR, "oadrOnChange")) {
                    int8_t b = 0;
                    if (parse_bool(r, &b) == 0)
                        json_object_set_new(o, "onChange", json_boolean(b));
                }
            }
        } else {
            /* The emix:itemBase substitute (power:powerReal, oadr:temperature ...). */
            json_t *ib = json_object();
            json_object_set_new(ib, "type", json_string(name));
            for (xmlNode *u = vtn_xml_first_elem(c); u; u = vtn_xml_next_elem(u)) {
                const char *un = (const char *)u->name;
                if (strcmp(un, "itemDescription") == 0 || strcmp(un, "itemUnits") == 0 ||
                    strcmp(un, "siScaleCode") == 0)
                    jtext(ib, un, u, WK_VALUE_MAX, fe);
            }
            json_object_set_new(o, "itemBase", ib);
        }
    }
    json_array_append_new(list, o);
}

/* An element as JSON: its text when it has no child elements, else an
 * object of its children by local name (oadrPayloadResourceStatus). */
static json_t *elem_json(const xmlNode *n, int depth, field_err *fe)
{
    xmlNode *c = vtn_xml_first_elem(n);
    if (c == NULL || depth == 0) {
        json_t *v = text_value(n, WK_VALUE_MAX, fe);
        return v ? v : json_string("");
    }
    json_t *o = json_object();
    for (int i = 0; c && o; c = vtn_xml_next_elem(c), i++) {
        if (i == 16) {
            over_cap(fe, (const char *)n->name, 16, "child elements");
            break;
        }
        json_object_set_new(o, (const char *)c->name, elem_json(c, depth - 1, fe));
    }
    return o;
}

static void read_payload(const xmlNode *p, json_t *list, wk_msg *m, field_err *fe)
{
    if (m->n_report_points++ == WK_REPORT_POINTS_MAX) {
        over_cap(fe, "oadr:oadrReportPayload", WK_REPORT_POINTS_MAX, "in one message");
        return;
    }
    json_t *o = json_object();
    for (xmlNode *c = vtn_xml_first_elem(p); c && o; c = vtn_xml_next_elem(c)) {
        if (vtn_xml_is(c, NS_EI, "rID"))
            jtext(o, "rID", c, WK_ID_MAX, fe);
        else if (vtn_xml_is(c, NS_EI, "confidence"))
            jtext(o, "confidence", c, WK_VALUE_MAX, fe);
        else if (vtn_xml_is(c, NS_EI, "accuracy"))
            jtext(o, "accuracy", c, WK_VALUE_MAX, fe);
        else if (vtn_xml_is(c, NS_EI, "payloadFloat"))
            jtext(o, "value", vtn_xml_child(c, NS_EI, "value"), WK_VALUE_MAX, fe);
        else if (vtn_xml_is(c, NS_OADR, "oadrPayloadResourceStatus"))
            json_object_set_new(o, "status", elem_json(c, 3, fe));
        else if (vtn_xml_is(c, NS_OADR, "oadrDataQuality"))
            jtext(o, "dataQuality", c, WK_VALUE_MAX, fe);
    }
    json_array_append_new(list, o);
}

static json_t *read_intervals(const xmlNode *ivs, wk_msg *m, field_err *fe)
{
    json_t *list = json_array();
    for (xmlNode *iv = vtn_xml_first_elem(ivs); iv && list; iv = vtn_xml_next_elem(iv)) {
        json_t *o = json_object(), *pl = json_array();
        for (xmlNode *c = vtn_xml_first_elem(iv); c && o; c = vtn_xml_next_elem(c)) {
            if (vtn_xml_is(c, NS_XCAL, "dtstart"))
                jinner(o, "dtstart", c, fe);
            else if (vtn_xml_is(c, NS_XCAL, "duration"))
                jinner(o, "duration", c, fe);
            else if (vtn_xml_is(c, NS_XCAL, "uid"))
                jinner(o, "uid", c, fe);
            else if (vtn_xml_is(c, NS_OADR, "oadrReportPayload"))
                read_payload(c, pl, m, fe);
        }
        json_object_set_new(o, "payloads", pl);
        json_array_append_new(list, o);
    }
    return list;
}

static void read_report(const xmlNode *r, wk_msg *m, field_err *fe)
{
    if (m->reports == NULL)
        m->reports = json_array();
    if (json_array_size(m->reports) == WK_REPORTS_MAX) {
        over_cap(fe, "oadr:oadrReport", WK_REPORTS_MAX, "elements");
        return;
    }
    json_t *o = json_object(), *descs = json_array();
    for (xmlNode *c = vtn_xml_first_elem(r); c && o; c = vtn_xml_next_elem(c)) {
        const char *name = (const char *)c->name;
        if (vtn_xml_is(c, NS_XCAL, "dtstart"))
            jinner(o, "dtstart", c, fe);
        else if (vtn_xml_is(c, NS_XCAL, "duration"))
            jinner(o, "duration", c, fe);
        else if (strcmp(name, "intervals") == 0)
            json_object_set_new(o, "intervals", read_intervals(c, m, fe));
        else if (vtn_xml_is(c, NS_OADR, "oadrReportDescription"))
            read_description(c, descs, m, fe);
        else if (vtn_xml_is(c, NS_EI, "eiReportID") || vtn_xml_is(c, NS_EI, "reportRequestID") ||
                 vtn_xml_is(c, NS_EI, "reportSpecifierID"))
            jtext(o, name, c, WK_ID_MAX, fe);
        else if (vtn_xml_is(c, NS_EI, "reportName") || vtn_xml_is(c, NS_EI, "createdDateTime"))
            jtext(o, name, c, WK_VALUE_MAX, fe);
    }
    json_object_set_new(o, "descriptions", descs);
    json_array_append_new(m->reports, o);
}

static void read_report_request(const xmlNode *rr, wk_msg *m, field_err *fe)
{
    if (m->report_requests == NULL)
        m->report_requests = json_array();
    if (json_array_size(m->report_requests) == WK_REPORT_REQUESTS_MAX) {
        over_cap(fe, "oadr:oadrReportRequest", WK_REPORT_REQUESTS_MAX, "elements");
        return;
    }
    json_t *o = json_object(), *rids = json_array();
    jtext(o, "reportRequestID", vtn_xml_child(rr, NS_EI, "reportRequestID"), WK_ID_MAX, fe);
    const xmlNode *sp = vtn_xml_child(rr, NS_EI, "reportSpecifier");
    for (xmlNode *c = sp ? vtn_xml_first_elem(sp) : NULL; c && o; c = vtn_xml_next_elem(c)) {
        if (vtn_xml_is(c, NS_EI, "reportSpecifierID"))
            jtext(o, "reportSpecifierID", c, WK_ID_MAX, fe);
        else if (vtn_xml_is(c, NS_XCAL, "granularity"))
            jinner(o, "granularity", c, fe);
        else if (vtn_xml_is(c, NS_EI, "reportBackDuration"))
            jinner(o, "reportBackDuration", c, fe);
        else if (vtn_xml_is(c, NS_EI, "specifierPayload")) {
            if (m->n_report_specifiers++ == WK_REPORT_SPECIFIERS_MAX) {
                over_cap(fe, "ei:specifierPayload", WK_REPORT_SPECIFIERS_MAX, "in one message");
                continue;
            }
            json_t *p = json_object();
            jtext(p, "rID", vtn_xml_child(c, NS_EI, "rID"), WK_ID_MAX, fe);
            jtext(p, "readingType", vtn_xml_child(c, NS_EI, "readingType"), WK_VALUE_MAX, fe);
            json_array_append_new(rids, p);
        }
    }
    json_object_set_new(o, "rIDs", rids);
    json_array_append_new(m->report_requests, o);
}

static void read_pending(const xmlNode *p, wk_msg *m, field_err *fe)
{
    if (m->pending == NULL)
        m->pending = json_array();
    for (xmlNode *c = vtn_xml_first_elem(p); c && m->pending; c = vtn_xml_next_elem(c)) {
        if (json_array_size(m->pending) == WK_PENDING_MAX) {
            over_cap(fe, "oadr:oadrPendingReports", WK_PENDING_MAX, "reportRequestIDs");
            return;
        }
        json_t *v = text_value(c, WK_ID_MAX, fe);
        if (v)
            json_array_append_new(m->pending, v);
    }
}

/* ---- EiOpt: oadrCreateOpt copied into JSON (wk_msg.opt) ---- */

static json_t *read_availability(const xmlNode *va, field_err *fe)
{
    json_t *list = json_array();
    const xmlNode *comps = vtn_xml_child(va, NS_XCAL, "components");
    size_t n = 0;
    for (xmlNode *a = comps ? vtn_xml_first_elem(comps) : NULL; a && list;
         a = vtn_xml_next_elem(a)) {
        if (n++ == WK_OPT_COMPONENTS_MAX) {
            over_cap(fe, "xcal:vavailability", WK_OPT_COMPONENTS_MAX, "xcal:available components");
            break;
        }
        json_t *o = json_object();
        const xmlNode *props = vtn_xml_child(a, NS_XCAL, "properties");
        for (xmlNode *c = props ? vtn_xml_first_elem(props) : NULL; c && o;
             c = vtn_xml_next_elem(c)) {
            if (vtn_xml_is(c, NS_XCAL, "dtstart"))
                jinner(o, "dtstart", c, fe);
            else if (vtn_xml_is(c, NS_XCAL, "duration"))
                jinner(o, "duration", c, fe);
        }
        json_array_append_new(list, o);
    }
    return list;
}

static void read_create_opt(const xmlNode *p, wk_msg *m, field_err *fe)
{
    json_t *o = m->opt = json_object();
    for (xmlNode *c = vtn_xml_first_elem(p); c && o; c = vtn_xml_next_elem(c)) {
        if (vtn_xml_is(c, NS_EI, "optType") || vtn_xml_is(c, NS_EI, "optReason") ||
            vtn_xml_is(c, NS_EI, "createdDateTime"))
            jtext(o, (const char *)c->name, c, WK_VALUE_MAX, fe);
        else if (strcmp((const char *)c->name, "marketContext") == 0)
            jtext(o, "marketContext", c, WK_ADDR_MAX, fe);
        else if (vtn_xml_is(c, NS_XCAL, "vavailability"))
            json_object_set_new(o, "availability", read_availability(c, fe));
        else if (vtn_xml_is(c, NS_EI, "eiTarget"))
            json_object_set_new(o, "resourceIDs", target_ids(c, "in an opt's eiTarget", fe));
        else if (vtn_xml_is(c, NS_EI, "qualifiedEventID")) {
            jtext(o, "eventID", vtn_xml_child(c, NS_EI, "eventID"), WK_ID_MAX, fe);
            char v[24];
            const xmlNode *mn = vtn_xml_child(c, NS_EI, "modificationNumber");
            if (mn && vtn_xml_text_trim(mn, v, sizeof v) > 0)
                json_object_set_new(o, "modificationNumber", json_integer(atoll(v)));
        }
    }
}

/* One pass over the payload's children: element names mean the same thing
 * in every VEN -> VTN payload, so one switch serves them all. */
static void extract(wk_msg *m, const xmlNode *payload, field_err *fe)
{
    const xmlNode *p = payload;
    if (k_msgs[m->type].wrapped) {
        p = vtn_xml_first_elem(payload); /* pyld:eiRequestEvent / pyld:eiCreatedEvent */
        if (p == NULL)
            return;
    }
    if (vtn_xml_attr(payload, NS_EI, "schemaVersion", m->schema_version, sizeof m->schema_version) <
        0)
        vtn_xml_attr(payload, NULL, "schemaVersion", m->schema_version, sizeof m->schema_version);

    for (xmlNode *c = vtn_xml_first_elem(p); c; c = vtn_xml_next_elem(c)) {
        const char *uri = (c->ns && c->ns->href) ? (const char *)c->ns->href : "";
        const char *name = (const char *)c->name;
        if (strcmp(uri, NS_PYLD) == 0) {
            if (strcmp(name, "requestID") == 0 && m->request_id[0] == '\0')
                copy_field(c, m->request_id, sizeof m->request_id, "pyld:requestID", fe);
            else if (strcmp(name, "replyLimit") == 0) {
                /* xs:unsignedInt; anything past the cap means "no limit" in practice */
                char v[16];
                char *end = NULL;
                long n = vtn_xml_text_trim(c, v, sizeof v) > 0 ? strtol(v, &end, 10) : 0;
                m->reply_limit =
                    end && *end == '\0' && n > 0 ? (n > 1000000 ? 1000000 : (int)n) : 0;
            }
        } else if (strcmp(uri, NS_EI) == 0) {
            if (strcmp(name, "venID") == 0 && m->ven_id[0] == '\0')
                copy_field(c, m->ven_id, sizeof m->ven_id, "ei:venID", fe);
            else if (strcmp(name, "registrationID") == 0)
                copy_field(c, m->registration_id, sizeof m->registration_id, "ei:registrationID",
                           fe);
            else if (strcmp(name, "eiResponse") == 0 && !m->ei_response.present)
                read_ei_response(c, &m->ei_response, fe);
            else if (strcmp(name, "optID") == 0)
                copy_field(c, m->opt_id, sizeof m->opt_id, "ei:optID", fe);
            else if (strcmp(name, "eventResponses") == 0)
                read_event_responses(c, m, fe);
        } else if (strcmp(uri, NS_OADR) == 0 && strncmp(name, "oadr", 4) == 0) {
            const char *s = name + 4;
            if (strcmp(s, "VenName") == 0) {
                /* xs:string: kept as sent, blanks included */
                if (vtn_xml_text(c, m->ven_name, sizeof m->ven_name) == -E2BIG) {
                    m->ven_name[0] = '\0';
                    if (fe->what == NULL)
                        fe->what = "oadr:oadrVenName", fe->cap = WK_NAME_MAX;
                }
            } else if (strcmp(s, "ProfileName") == 0)
                copy_field(c, m->profile_name, sizeof m->profile_name, "oadr:oadrProfileName", fe);
            else if (strcmp(s, "TransportName") == 0)
                copy_field(c, m->transport_name, sizeof m->transport_name, "oadr:oadrTransportName",
                           fe);
            else if (strcmp(s, "TransportAddress") == 0)
                copy_field(c, m->transport_address, sizeof m->transport_address,
                           "oadr:oadrTransportAddress", fe);
            else if (strcmp(s, "ReportOnly") == 0)
                parse_bool(c, &m->report_only);
            else if (strcmp(s, "XmlSignature") == 0)
                parse_bool(c, &m->xml_signature);
            else if (strcmp(s, "HttpPullModel") == 0)
                parse_bool(c, &m->http_pull_model);
            else if (strcmp(s, "Report") == 0)
                read_report(c, m, fe);
            else if (strcmp(s, "ReportRequest") == 0)
                read_report_request(c, m, fe);
            else if (strcmp(s, "PendingReports") == 0)
                read_pending(c, m, fe);
        }
    }
    if (m->type == WK_MSG_CREATE_OPT)
        read_create_opt(p, m, fe);
}

/* ---- the oadrPoll shape: validation without the validator ----------------- */

/* True for what may sit between the elements of element-only content:
 * white space, comments, processing instructions. */
static int ignorable(const xmlNode *n)
{
    if (n->type == XML_COMMENT_NODE || n->type == XML_PI_NODE)
        return 1;
    if (n->type != XML_TEXT_NODE || n->content == NULL)
        return 0;
    for (const xmlChar *p = n->content; *p; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
            return 0;
    return 1;
}

/* The one element child of n, in namespace ns with that local name, with
 * nothing else but ignorable nodes around it; NULL otherwise. */
static const xmlNode *only_child(const xmlNode *n, const char *ns, const char *local)
{
    const xmlNode *found = NULL;
    for (const xmlNode *k = n->children; k; k = k->next) {
        if (k->type == XML_ELEMENT_NODE && found == NULL && vtn_xml_is(k, ns, local))
            found = k;
        else if (!ignorable(k))
            return NULL;
    }
    return found;
}

/* True when the tree of an oadrPoll has the one shape in which the
 * project's schema (schemas/oadr.xsd) accepts it, read directly: oadrPayload
 * and oadrSignedObject without attributes and with exactly their one element
 * child (no ds:Signature), oadrPoll with at most schemaVersion="2.0a"/"2.0b"
 * (ei:-qualified or not) and exactly one ei:venID, whose content is text of
 * at most 128 characters without attributes. Every document it accepts is
 * valid; any other shape (a signature, an Id, xsi: attributes, a
 * schemaVersion to be collapsed, ...) is left to xmlSchemaValidateDoc, so
 * the answer to any document is the validator's (tests/unit/test_wk_oadr_xml.c
 * holds it against the validator). Costs a few hundred instructions where
 * the validator costs about 12,000. */
int wk_poll_shape_valid(const xmlNode *root)
{
    if (root->properties || root->type != XML_ELEMENT_NODE)
        return 0;
    const xmlNode *so = only_child(root, NS_OADR, "oadrSignedObject");
    if (so == NULL || so->properties)
        return 0;
    const xmlNode *poll = only_child(so, NS_OADR, "oadrPoll");
    if (poll == NULL)
        return 0;
    for (const xmlAttr *a = poll->properties; a; a = a->next) {
        const xmlChar *v = a->children && a->children->type == XML_TEXT_NODE && !a->children->next
                               ? a->children->content
                               : NULL;
        if (strcmp((const char *)a->name, "schemaVersion") != 0 ||
            (a->ns && strcmp((const char *)a->ns->href, NS_EI) != 0) || v == NULL ||
            (strcmp((const char *)v, "2.0b") != 0 && strcmp((const char *)v, "2.0a") != 0))
            return 0;
    }
    const xmlNode *ven = only_child(poll, NS_EI, "venID");
    if (ven == NULL || ven->properties)
        return 0;
    size_t chars = 0;
    for (const xmlNode *k = ven->children; k; k = k->next) {
        if (k->type != XML_TEXT_NODE || k->content == NULL)
            return 0;
        for (const xmlChar *p = k->content; *p; p++)
            chars += (*p & 0xc0) != 0x80; /* UTF-8 lead bytes: characters */
    }
    return chars <= 128;
}

int wk_msg_parse(wk_codec *c, enum wk_service svc, const char *body, size_t len, wk_msg *m)
{
    msg_reset(m, svc);
    xmlDoc *doc = NULL;
    int rc = vtn_xml_parse(c->x, body, len, &doc);
    if (rc == -ENOMEM)
        return rc;
    if (rc < 0)
        return fail(m, WK_OADR_INVALID_DATA, "malformed XML: %s", vtn_xml_error(c->x));
    m->doc = doc;

    char nm[200];
    xmlNode *root = xmlDocGetRootElement(doc);
    if (!vtn_xml_is(root, NS_OADR, "oadrPayload"))
        return fail(m, WK_OADR_INVALID_DATA, "root element is %s, expected oadr:oadrPayload",
                    elem_name(root, nm, sizeof nm));
    xmlNode *so = vtn_xml_child(root, NS_OADR, "oadrSignedObject");
    if (so == NULL)
        return fail(m, WK_OADR_INVALID_DATA, "oadrPayload has no oadr:oadrSignedObject");
    xmlNode *payload = vtn_xml_first_elem(so);
    if (payload == NULL)
        return fail(m, WK_OADR_INVALID_DATA, "oadrSignedObject has no payload element");
    m->payload = payload;
    size_t pn = strnlen((const char *)payload->name, sizeof m->payload_name - 1);
    memcpy(m->payload_name, payload->name, pn); /* truncated as snprintf would */
    m->payload_name[pn] = '\0';

    enum wk_msg_type t = vtn_xml_is(payload, NS_OADR, (const char *)payload->name)
                             ? lookup_msg((const char *)payload->name)
                             : WK_MSG_NONE;
    if (t == WK_MSG_NONE)
        return fail(m, WK_OADR_NOT_RECOGNIZED, "unknown payload %s",
                    elem_name(payload, nm, sizeof nm));
    if (k_msgs[t].services == 0)
        return fail(m, WK_OADR_NOT_RECOGNIZED, "%s is sent by a VTN, not accepted from a VEN",
                    k_msgs[t].name);
    if (svc != WK_SVC_NONE && !wk_msg_allowed(svc, t)) {
        const char *home = "";
        for (int s = 1; s < WK_SVC__COUNT && !home[0]; s++)
            if (k_msgs[t].services & SVC_BIT(s))
                home = k_services[s];
        return fail(m, WK_OADR_NOT_RECOGNIZED, "%s is not accepted on %s (send it to %s)",
                    k_msgs[t].name, wk_service_name(svc), home);
    }
    m->type = t;
    m->reply = k_msgs[t].reply;

    field_err fe = {NULL, 0, NULL};
    /* The poll is most of the traffic: its usual shape is checked directly. */
    rc = t == WK_MSG_POLL && wk_poll_shape_valid(root) ? 0 : vtn_xml_validate(c->x, doc);
    if (rc == -ENOMEM)
        return rc;
    /* Read what we can even when invalid: the error reply echoes requestID
     * and venID. */
    extract(m, payload, &fe);
    if (rc < 0)
        return fail(m, WK_OADR_INVALID_DATA, "schema: %s", vtn_xml_error(c->x));
    if (fe.what)
        return fail(m, WK_OADR_INVALID_DATA, "%s is longer than %zu %s", fe.what, fe.cap,
                    fe.unit ? fe.unit : "bytes");
    return 0;
}

/* ---- writing --------------------------------------------------------------- */

typedef struct out {
    vtn_buf *b;
    size_t start;
    int rc;
} out;

static void o_init(out *o, vtn_buf *b, size_t hint)
{
    o->b = b;
    o->start = b->len;
    o->rc = vtn_buf_reserve(b, hint); /* one allocation for the common case */
    if (o->rc == -ENOBUFS)
        o->rc = 0; /* the hint may overshoot a tight cap; appends will tell */
}

static void o_raw(out *o, const char *s, size_t n)
{
    if (o->rc == 0)
        o->rc = vtn_buf_append(o->b, s, n);
}

#define O_LIT(o, lit) o_raw((o), (lit), sizeof(lit) - 1)

/* Length of a valid UTF-8 sequence of an XML Char at s (n bytes left), or 0. */
static size_t utf8_char(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    if (c < 0x80)
        return (c >= 0x20 || c == '\t' || c == '\n' || c == '\r') ? 1 : 0;
    size_t len;
    unsigned cp;
    if ((c & 0xE0) == 0xC0)
        len = 2, cp = c & 0x1F;
    else if ((c & 0xF0) == 0xE0)
        len = 3, cp = c & 0x0F;
    else if ((c & 0xF8) == 0xF0)
        len = 4, cp = c & 0x07;
    else
        return 0;
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    static const unsigned min[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF) || cp == 0xFFFE ||
        cp == 0xFFFF)
        return 0;
    return len;
}

/* Text content: the XML specials escaped, and anything that is not an XML
 * character in UTF-8 replaced by '?', so the document is always well-formed
 * whatever the caller (or a libxml2 error message) passes in. */
static void o_text(out *o, const char *str)
{
    if (o->rc)
        return;
    const unsigned char *s = (const unsigned char *)str;
    size_t n = strlen(str), run = 0, i = 0;
    while (i < n) {
        unsigned char ch = s[i];
        const char *rep = NULL;
        size_t adv = 1;
        if (ch == '&')
            rep = "&amp;";
        else if (ch == '<')
            rep = "&lt;";
        else if (ch == '>')
            rep = "&gt;";
        else if (ch >= 0x20 && ch < 0x80) {
            i++;
            continue;
        } else {
            adv = utf8_char(s + i, n - i);
            if (adv) {
                i += adv;
                continue;
            }
            rep = "?";
            adv = 1;
        }
        o_raw(o, str + run, i - run);
        o_raw(o, rep, strlen(rep));
        i += adv;
        run = i;
    }
    o_raw(o, str + run, n - run);
}

static void o_elem(out *o, const char *open, const char *value, const char *close)
{
    o_raw(o, open, strlen(open));
    o_text(o, value);
    o_raw(o, close, strlen(close));
}

static int o_end(out *o)
{
    if (o->rc) {
        o->b->len = o->start;
        if (o->b->data)
            o->b->data[o->start] = '\0';
    }
    return o->rc;
}

/* Every namespace the writers use, declared once on the root as in the 2.0b
 * examples. */
#define DOC_HEAD                                                                                   \
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"                                                 \
    "<oadr:oadrPayload xmlns:oadr=\"" NS_OADR "\" xmlns:ei=\"" NS_EI "\" xmlns:pyld=\"" NS_PYLD    \
    "\" xmlns:xcal=\"" NS_XCAL "\"><oadr:oadrSignedObject>"
#define DOC_TAIL "</oadr:oadrSignedObject></oadr:oadrPayload>\n"
#define SCHEMA_VERSION " ei:schemaVersion=\"2.0b\">"

static int valid_code(int code)
{
    return code >= 100 && code <= 999;
}

static void o_ei_response(out *o, int code, const char *desc, const char *request_id)
{
    /* valid_code: 100..999, three digits */
    char num[3] = {(char)('0' + code / 100), (char)('0' + code / 10 % 10), (char)('0' + code % 10)};
    O_LIT(o, "<ei:eiResponse><ei:responseCode>");
    o_raw(o, num, 3);
    O_LIT(o, "</ei:responseCode>");
    if (desc)
        o_elem(o, "<ei:responseDescription>", desc, "</ei:responseDescription>");
    o_elem(o, "<pyld:requestID>", request_id, "</pyld:requestID></ei:eiResponse>");
}

static void o_opt_ven(out *o, const char *ven_id)
{
    if (ven_id)
        o_elem(o, "<ei:venID>", ven_id, "</ei:venID>");
}

int wk_write_response(vtn_buf *b, int code, const char *desc, const char *request_id,
                      const char *ven_id)
{
    if (!valid_code(code) || request_id == NULL)
        return -EINVAL;
    out o;
    o_init(&o, b, 700);
    O_LIT(&o, DOC_HEAD "<oadr:oadrResponse" SCHEMA_VERSION);
    o_ei_response(&o, code, desc, request_id);
    o_opt_ven(&o, ven_id);
    O_LIT(&o, "</oadr:oadrResponse>" DOC_TAIL);
    return o_end(&o);
}

const char *wk_xcal_duration(int64_t ms, char *buf, size_t outlen)
{
    /* The 2.0b duration pattern has no fractions: round up to whole seconds
     * so a VEN never polls more often than asked. */
    int64_t s = ms <= 0 ? 0 : (ms + 999) / 1000;
    int64_t d = s / 86400, h = s / 3600 % 24, mi = s / 60 % 60, se = s % 60;
    char tmp[64];
    size_t n = 0;
    tmp[n++] = 'P';
    if (d)
        n += (size_t)snprintf(tmp + n, sizeof tmp - n, "%lldD", (long long)d);
    if (h || mi || se || !d) {
        tmp[n++] = 'T';
        if (h)
            n += (size_t)snprintf(tmp + n, sizeof tmp - n, "%lldH", (long long)h);
        if (mi)
            n += (size_t)snprintf(tmp + n, sizeof tmp - n, "%lldM", (long long)mi);
        if (se || (!h && !mi))
            n += (size_t)snprintf(tmp + n, sizeof tmp - n, "%lldS", (long long)se);
    }
    tmp[n] = '\0';
    snprintf(buf, outlen, "%s", tmp);
    return buf;
}

int wk_write_created_party_registration(vtn_buf *b, const wk_created_party_registration *r)
{
    if (r == NULL || !valid_code(r->code) || r->request_id == NULL || r->vtn_id == NULL)
        return -EINVAL;
    out o;
    o_init(&o, b, 1200);
    O_LIT(&o, DOC_HEAD "<oadr:oadrCreatedPartyRegistration" SCHEMA_VERSION);
    o_ei_response(&o, r->code, r->desc, r->request_id);
    if (r->registration_id)
        o_elem(&o, "<ei:registrationID>", r->registration_id, "</ei:registrationID>");
    o_opt_ven(&o, r->ven_id);
    o_elem(&o, "<ei:vtnID>", r->vtn_id, "</ei:vtnID>");
    O_LIT(&o, "<oadr:oadrProfiles><oadr:oadrProfile><oadr:oadrProfileName>2.0b"
              "</oadr:oadrProfileName><oadr:oadrTransports><oadr:oadrTransport>"
              "<oadr:oadrTransportName>simpleHttp</oadr:oadrTransportName></oadr:oadrTransport>"
              "</oadr:oadrTransports></oadr:oadrProfile></oadr:oadrProfiles>");
    if (r->poll_freq_ms > 0) {
        char d[64];
        wk_xcal_duration(r->poll_freq_ms, d, sizeof d);
        O_LIT(&o, "<oadr:oadrRequestedOadrPollFreq><xcal:duration>");
        o_raw(&o, d, strlen(d));
        O_LIT(&o, "</xcal:duration></oadr:oadrRequestedOadrPollFreq>");
    }
    O_LIT(&o, "</oadr:oadrCreatedPartyRegistration>" DOC_TAIL);
    return o_end(&o);
}

int wk_write_canceled_party_registration(vtn_buf *b, int code, const char *desc,
                                         const char *request_id, const char *registration_id,
                                         const char *ven_id)
{
    if (!valid_code(code) || request_id == NULL)
        return -EINVAL;
    out o;
    o_init(&o, b, 800);
    O_LIT(&o, DOC_HEAD "<oadr:oadrCanceledPartyRegistration" SCHEMA_VERSION);
    o_ei_response(&o, code, desc, request_id);
    if (registration_id)
        o_elem(&o, "<ei:registrationID>", registration_id, "</ei:registrationID>");
    o_opt_ven(&o, ven_id);
    O_LIT(&o, "</oadr:oadrCanceledPartyRegistration>" DOC_TAIL);
    return o_end(&o);
}

int wk_write_cancel_party_registration(vtn_buf *b, const char *request_id,
                                       const char *registration_id, const char *ven_id)
{
    if (request_id == NULL || registration_id == NULL)
        return -EINVAL;
    out o;
    o_init(&o, b, 700);
    O_LIT(&o, DOC_HEAD "<oadr:oadrCancelPartyRegistration" SCHEMA_VERSION);
    o_elem(&o, "<pyld:requestID>", request_id, "</pyld:requestID>");
    o_elem(&o, "<ei:registrationID>", registration_id, "</ei:registrationID>");
    o_opt_ven(&o, ven_id);
    O_LIT(&o, "</oadr:oadrCancelPartyRegistration>" DOC_TAIL);
    return o_end(&o);
}

/* ---- oadrDistributeEvent: from the API's JSON of each event ---- */

#define NS_EMIX "http://docs.oasis-open.org/ns/emix/2011/06"
#define NS_STRM "urn:ietf:params:xml:ns:icalendar-2.0:stream"
#define NS_SCALE "http://docs.oasis-open.org/ns/emix/2011/06/siscale"
#define NS_XSI "http://www.w3.org/2001/XMLSchema-instance"

static const char *jstr(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static void o_opt_str(out *o, json_t *obj, const char *key, const char *open, const char *close)
{
    const char *v = jstr(obj, key);
    if (v)
        o_elem(o, open, v, close);
}

static void o_float(out *o, const char *open, json_t *v, const char *close)
{
    char num[40];
    snprintf(num, sizeof num, "%.9g", json_number_value(v));
    o_elem(o, open, num, close);
}

static void o_ms_time(out *o, const char *open, json_t *v, const char *close)
{
    o_elem(o, open, json_is_string(v) ? json_string_value(v) : "", close);
}

/* A duration wrapped the way each xcal/ei element wants it. */
static void o_duration(out *o, json_t *ev, const char *key, const char *open, const char *close)
{
    const char *d = jstr(ev, key);
    if (d == NULL)
        return;
    o_raw(o, open, strlen(open));
    o_elem(o, "<xcal:duration>", d, "</xcal:duration>");
    o_raw(o, close, strlen(close));
}

static void o_signal(out *o, json_t *sg)
{
    json_t *ivs = json_object_get(sg, "intervals"), *v;
    O_LIT(o, "<ei:eiEventSignal><strm:intervals>");
    for (size_t i = 0; i < json_array_size(ivs); i++) {
        json_t *iv = json_array_get(ivs, i);
        O_LIT(o, "<ei:interval>");
        o_duration(o, iv, "duration", "<xcal:duration>", "</xcal:duration>");
        /* A uid per interval: the VEN's, else its position (as in the 2.0b examples). */
        char pos[24];
        snprintf(pos, sizeof pos, "%zu", i);
        o_elem(o, "<xcal:uid><xcal:text>", jstr(iv, "uid") ? jstr(iv, "uid") : pos,
               "</xcal:text></xcal:uid>");
        o_float(o, "<ei:signalPayload><ei:payloadFloat><ei:value>", json_object_get(iv, "value"),
                "</ei:value></ei:payloadFloat></ei:signalPayload>");
        O_LIT(o, "</ei:interval>");
    }
    O_LIT(o, "</strm:intervals>");
    o_opt_str(o, sg, "signalName", "<ei:signalName>", "</ei:signalName>");
    o_opt_str(o, sg, "signalType", "<ei:signalType>", "</ei:signalType>");
    o_opt_str(o, sg, "signalID", "<ei:signalID>", "</ei:signalID>");
    if ((v = json_object_get(sg, "itemBase"))) {
        O_LIT(o, "<oadr:customUnit>");
        o_opt_str(o, v, "itemDescription", "<oadr:itemDescription>", "</oadr:itemDescription>");
        o_opt_str(o, v, "itemUnits", "<oadr:itemUnits>", "</oadr:itemUnits>");
        o_opt_str(o, v, "siScaleCode", "<scale:siScaleCode>", "</scale:siScaleCode>");
        O_LIT(o, "</oadr:customUnit>");
    }
    if ((v = json_object_get(sg, "currentValue")))
        o_float(o, "<ei:currentValue><ei:payloadFloat><ei:value>", v,
                "</ei:value></ei:payloadFloat></ei:currentValue>");
    O_LIT(o, "</ei:eiEventSignal>");
}

/* eiTarget: the event's groups, resources and parties, and of its venID
 * list only the receiving VEN (a VEN does not learn the others' ids). */
static void o_target(out *o, json_t *targets, const char *ven_id)
{
    static const char *const kinds[][3] = {
        {"groupID", "<ei:groupID>", "</ei:groupID>"},
        {"resourceID", "<ei:resourceID>", "</ei:resourceID>"},
        {"venID", "<ei:venID>", "</ei:venID>"},
        {"partyID", "<ei:partyID>", "</ei:partyID>"},
    };
    O_LIT(o, "<ei:eiTarget>");
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        json_t *list = json_object_get(targets, kinds[k][0]);
        for (size_t i = 0; i < json_array_size(list); i++) {
            const char *id = json_string_value(json_array_get(list, i));
            if (id && (k != 2 || (ven_id && strcmp(id, ven_id) == 0)))
                o_elem(o, kinds[k][1], id, kinds[k][2]);
        }
    }
    O_LIT(o, "</ei:eiTarget>");
}

static void o_event(out *o, json_t *ev, const char *ven_id)
{
    json_t *v;
    char num[24];
    O_LIT(o, "<oadr:oadrEvent><ei:eiEvent><ei:eventDescriptor>");
    o_opt_str(o, ev, "eventID", "<ei:eventID>", "</ei:eventID>");
    snprintf(num, sizeof num, "%lld",
             (long long)json_integer_value(json_object_get(ev, "modificationNumber")));
    o_elem(o, "<ei:modificationNumber>", num, "</ei:modificationNumber>");
    o_ms_time(o, "<ei:modificationDateTime>", json_object_get(ev, "modifiedDateTime"),
              "</ei:modificationDateTime>");
    o_opt_str(o, ev, "modificationReason", "<ei:modificationReason>", "</ei:modificationReason>");
    snprintf(num, sizeof num, "%lld",
             (long long)json_integer_value(json_object_get(ev, "priority")));
    o_elem(o, "<ei:priority>", num, "</ei:priority>");
    o_opt_str(o, ev, "marketContext", "<ei:eiMarketContext><emix:marketContext>",
              "</emix:marketContext></ei:eiMarketContext>");
    o_ms_time(o, "<ei:createdDateTime>", json_object_get(ev, "createdDateTime"),
              "</ei:createdDateTime>");
    o_opt_str(o, ev, "eventStatus", "<ei:eventStatus>", "</ei:eventStatus>");
    o_elem(o, "<ei:testEvent>", json_is_true(json_object_get(ev, "testEvent")) ? "true" : "false",
           "</ei:testEvent>");
    o_opt_str(o, ev, "vtnComment", "<ei:vtnComment>", "</ei:vtnComment>");
    O_LIT(o, "</ei:eventDescriptor><ei:eiActivePeriod><xcal:properties>");
    o_opt_str(o, ev, "dtstart", "<xcal:dtstart><xcal:date-time>",
              "</xcal:date-time></xcal:dtstart>");
    o_duration(o, ev, "duration", "<xcal:duration>", "</xcal:duration>");
    if (jstr(ev, "tolerance"))
        o_opt_str(o, ev, "tolerance", "<xcal:tolerance><xcal:tolerate><xcal:startafter>",
                  "</xcal:startafter></xcal:tolerate></xcal:tolerance>");
    o_duration(o, ev, "notification", "<ei:x-eiNotification>", "</ei:x-eiNotification>");
    o_duration(o, ev, "rampUp", "<ei:x-eiRampUp>", "</ei:x-eiRampUp>");
    o_duration(o, ev, "recovery", "<ei:x-eiRecovery>", "</ei:x-eiRecovery>");
    O_LIT(o, "</xcal:properties><xcal:components xsi:nil=\"true\"/></ei:eiActivePeriod>"
             "<ei:eiEventSignals>");
    json_t *sigs = json_object_get(ev, "signals");
    for (size_t i = 0; i < json_array_size(sigs); i++)
        o_signal(o, json_array_get(sigs, i));
    O_LIT(o, "</ei:eiEventSignals>");
    o_target(o, json_object_get(ev, "targets"), ven_id);
    O_LIT(o, "</ei:eiEvent>");
    v = json_object_get(ev, "responseRequired");
    o_elem(o, "<oadr:oadrResponseRequired>", json_is_string(v) ? json_string_value(v) : "always",
           "</oadr:oadrResponseRequired></oadr:oadrEvent>");
}

int wk_write_distribute_event(vtn_buf *b, const char *request_id, const char *vtn_id,
                              const char *ven_id, json_t *events)
{
    if (request_id == NULL || vtn_id == NULL || !json_is_array(events))
        return -EINVAL;
    out o;
    o_init(&o, b, 1200 + 1500 * json_array_size(events));
    O_LIT(&o, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
              "<oadr:oadrPayload xmlns:oadr=\"" NS_OADR "\" xmlns:ei=\"" NS_EI
              "\" xmlns:pyld=\"" NS_PYLD "\" xmlns:xcal=\"" NS_XCAL "\" xmlns:emix=\"" NS_EMIX
              "\" xmlns:strm=\"" NS_STRM "\" xmlns:scale=\"" NS_SCALE "\" xmlns:xsi=\"" NS_XSI
              "\"><oadr:oadrSignedObject><oadr:oadrDistributeEvent" SCHEMA_VERSION);
    o_elem(&o, "<pyld:requestID>", request_id, "</pyld:requestID>");
    o_elem(&o, "<ei:vtnID>", vtn_id, "</ei:vtnID>");
    for (size_t i = 0; i < json_array_size(events); i++)
        o_event(&o, json_array_get(events, i), ven_id);
    O_LIT(&o, "</oadr:oadrDistributeEvent>" DOC_TAIL);
    return o_end(&o);
}

int wk_write_request_reregistration(vtn_buf *b, const char *ven_id)
{
    if (ven_id == NULL)
        return -EINVAL;
    out o;
    o_init(&o, b, 600);
    O_LIT(&o, DOC_HEAD "<oadr:oadrRequestReregistration" SCHEMA_VERSION);
    o_elem(&o, "<ei:venID>", ven_id, "</ei:venID>");
    O_LIT(&o, "</oadr:oadrRequestReregistration>" DOC_TAIL);
    return o_end(&o);
}

/* ---- reports ---- */

static void o_report_request(out *o, json_t *rr)
{
    json_t *rids = json_object_get(rr, "rIDs");
    o_elem(o, "<oadr:oadrReportRequest><ei:reportRequestID>",
           jstr(rr, "reportRequestID") ? jstr(rr, "reportRequestID") : "", "</ei:reportRequestID>");
    o_elem(o, "<ei:reportSpecifier><ei:reportSpecifierID>",
           jstr(rr, "reportSpecifierID") ? jstr(rr, "reportSpecifierID") : "",
           "</ei:reportSpecifierID>");
    o_elem(o, "<xcal:granularity><xcal:duration>",
           jstr(rr, "granularity") ? jstr(rr, "granularity") : "PT0S",
           "</xcal:duration></xcal:granularity>");
    o_elem(o, "<ei:reportBackDuration><xcal:duration>",
           jstr(rr, "reportBackDuration") ? jstr(rr, "reportBackDuration") : "PT0S",
           "</xcal:duration></ei:reportBackDuration>");
    if (jstr(rr, "dtstart") && jstr(rr, "duration")) {
        /* A one-shot request (the API's duration): its window. */
        o_elem(o, "<ei:reportInterval><xcal:properties><xcal:dtstart><xcal:date-time>",
               jstr(rr, "dtstart"), "</xcal:date-time></xcal:dtstart>");
        o_elem(o, "<xcal:duration><xcal:duration>", jstr(rr, "duration"),
               "</xcal:duration></xcal:duration></xcal:properties></ei:reportInterval>");
    }
    for (size_t i = 0; i < json_array_size(rids); i++) {
        json_t *p = json_array_get(rids, i);
        o_elem(o, "<ei:specifierPayload><ei:rID>", jstr(p, "rID") ? jstr(p, "rID") : "",
               "</ei:rID>");
        o_elem(o, "<ei:readingType>",
               jstr(p, "readingType") ? jstr(p, "readingType") : "x-notApplicable",
               "</ei:readingType></ei:specifierPayload>");
    }
    O_LIT(o, "</ei:reportSpecifier></oadr:oadrReportRequest>");
}

static size_t report_requests_hint(json_t *requests)
{
    size_t n = 0;
    for (size_t i = 0; i < json_array_size(requests); i++)
        n += 600 + 300 * json_array_size(json_object_get(json_array_get(requests, i), "rIDs"));
    return n;
}

int wk_write_registered_report(vtn_buf *b, int code, const char *desc, const char *request_id,
                               const char *ven_id, json_t *requests)
{
    if (!valid_code(code) || request_id == NULL)
        return -EINVAL;
    out o;
    o_init(&o, b, 800 + report_requests_hint(requests));
    O_LIT(&o, DOC_HEAD "<oadr:oadrRegisteredReport" SCHEMA_VERSION);
    o_ei_response(&o, code, desc, request_id);
    for (size_t i = 0; i < json_array_size(requests); i++)
        o_report_request(&o, json_array_get(requests, i));
    o_opt_ven(&o, ven_id);
    O_LIT(&o, "</oadr:oadrRegisteredReport>" DOC_TAIL);
    return o_end(&o);
}

int wk_write_create_report(vtn_buf *b, const char *request_id, const char *ven_id, json_t *requests)
{
    if (request_id == NULL || json_array_size(requests) == 0)
        return -EINVAL;
    out o;
    o_init(&o, b, 600 + report_requests_hint(requests));
    O_LIT(&o, DOC_HEAD "<oadr:oadrCreateReport" SCHEMA_VERSION);
    o_elem(&o, "<pyld:requestID>", request_id, "</pyld:requestID>");
    for (size_t i = 0; i < json_array_size(requests); i++)
        o_report_request(&o, json_array_get(requests, i));
    o_opt_ven(&o, ven_id);
    O_LIT(&o, "</oadr:oadrCreateReport>" DOC_TAIL);
    return o_end(&o);
}

int wk_write_register_report(vtn_buf *b, const char *request_id, const char *ven_id)
{
    if (request_id == NULL)
        return -EINVAL;
    out o;
    o_init(&o, b, 600);
    O_LIT(&o, DOC_HEAD "<oadr:oadrRegisterReport" SCHEMA_VERSION);
    o_elem(&o, "<pyld:requestID>", request_id, "</pyld:requestID>");
    o_opt_ven(&o, ven_id);
    O_LIT(&o, "</oadr:oadrRegisterReport>" DOC_TAIL);
    return o_end(&o);
}

/* The body of an oadrCancelReport: reportToFollow is false, the VTN wants
 * no last report. */
static void o_cancel_report(out *o, const char *request_id, json_t *rrids, const char *ven_id)
{
    O_LIT(o, "<oadr:oadrCancelReport" SCHEMA_VERSION);
    o_elem(o, "<pyld:requestID>", request_id, "</pyld:requestID>");
    for (size_t i = 0; i < json_array_size(rrids); i++)
        o_elem(o, "<ei:reportRequestID>", json_string_value(json_array_get(rrids, i)),
               "</ei:reportRequestID>");
    O_LIT(o, "<pyld:reportToFollow>false</pyld:reportToFollow>");
    o_opt_ven(o, ven_id);
    O_LIT(o, "</oadr:oadrCancelReport>");
}

static int rrids_ok(json_t *rrids)
{
    if (json_array_size(rrids) == 0)
        return 0;
    for (size_t i = 0; i < json_array_size(rrids); i++)
        if (json_string_value(json_array_get(rrids, i)) == NULL)
            return 0;
    return 1;
}

int wk_write_cancel_report(vtn_buf *b, const char *request_id, const char *ven_id, json_t *rrids)
{
    if (request_id == NULL || !rrids_ok(rrids))
        return -EINVAL;
    out o;
    o_init(&o, b, 600 + 200 * json_array_size(rrids));
    O_LIT(&o, DOC_HEAD);
    o_cancel_report(&o, request_id, rrids, ven_id);
    O_LIT(&o, DOC_TAIL);
    return o_end(&o);
}

int wk_write_updated_report(vtn_buf *b, int code, const char *desc, const char *request_id,
                            const char *ven_id, const char *cancel_id, json_t *cancel_rrids)
{
    if (!valid_code(code) || request_id == NULL || (cancel_id != NULL && !rrids_ok(cancel_rrids)))
        return -EINVAL;
    out o;
    o_init(&o, b, 800 + 200 * json_array_size(cancel_rrids));
    O_LIT(&o, DOC_HEAD "<oadr:oadrUpdatedReport" SCHEMA_VERSION);
    o_ei_response(&o, code, desc, request_id);
    if (cancel_id)
        o_cancel_report(&o, cancel_id, cancel_rrids, ven_id);
    o_opt_ven(&o, ven_id);
    O_LIT(&o, "</oadr:oadrUpdatedReport>" DOC_TAIL);
    return o_end(&o);
}

/* ---- EiOpt ---- */

/* oadrCreatedOpt and oadrCanceledOpt: eiResponse and the optID (written
 * when required or given). */
static int write_opt_ack(vtn_buf *b, const char *payload, int code, const char *desc,
                         const char *request_id, const char *opt_id, int opt_required)
{
    if (!valid_code(code) || request_id == NULL || (opt_required && opt_id == NULL))
        return -EINVAL;
    out o;
    o_init(&o, b, 700);
    O_LIT(&o, DOC_HEAD "<oadr:");
    o_raw(&o, payload, strlen(payload));
    O_LIT(&o, SCHEMA_VERSION);
    o_ei_response(&o, code, desc, request_id);
    if (opt_id && (opt_required || opt_id[0]))
        o_elem(&o, "<ei:optID>", opt_id, "</ei:optID>");
    O_LIT(&o, "</oadr:");
    o_raw(&o, payload, strlen(payload));
    O_LIT(&o, ">" DOC_TAIL);
    return o_end(&o);
}

int wk_write_created_opt(vtn_buf *b, int code, const char *desc, const char *request_id,
                         const char *opt_id)
{
    return write_opt_ack(b, "oadrCreatedOpt", code, desc, request_id, opt_id, 1);
}

int wk_write_canceled_opt(vtn_buf *b, int code, const char *desc, const char *request_id,
                          const char *opt_id)
{
    return write_opt_ack(b, "oadrCanceledOpt", code, desc, request_id, opt_id, 0);
}

/* An error reply in a payload that needs only eiResponse plus optional
 * trailing elements (reports). */
static int write_simple_error(vtn_buf *b, const char *payload, const wk_msg *m, const char *mid,
                              const char *ven_id)
{
    out o;
    o_init(&o, b, 800);
    O_LIT(&o, DOC_HEAD "<oadr:");
    o_raw(&o, payload, strlen(payload));
    O_LIT(&o, SCHEMA_VERSION);
    o_ei_response(&o, m->code, m->desc[0] ? m->desc : NULL, m->request_id);
    if (mid)
        o_raw(&o, mid, strlen(mid));
    o_opt_ven(&o, ven_id);
    O_LIT(&o, "</oadr:");
    o_raw(&o, payload, strlen(payload));
    O_LIT(&o, ">" DOC_TAIL);
    return o_end(&o);
}

int wk_write_error(vtn_buf *b, const wk_msg *m, const char *vtn_id, int64_t poll_freq_ms)
{
    if (m == NULL || !valid_code(m->code))
        return -EINVAL;
    /* Answers to a VEN's acknowledgement (oadrCreatedEvent, oadrResponse ...)
     * echo the requestID of its eiResponse. */
    if (m->request_id[0] == '\0' && m->ei_response.request_id[0] != '\0') {
        wk_msg tmp;
        memcpy(&tmp, m, sizeof tmp);
        memcpy(tmp.request_id, m->ei_response.request_id, sizeof tmp.request_id);
        return wk_write_error(b, &tmp, vtn_id, poll_freq_ms);
    }
    const char *desc = m->desc[0] ? m->desc : NULL;
    const char *ven = m->ven_id[0] ? m->ven_id : NULL;
    switch (m->reply) {
    case WK_MSG_CREATED_PARTY_REGISTRATION: {
        if (vtn_id == NULL)
            return -EINVAL;
        /* The registration was not made: no registrationID or venID. */
        wk_created_party_registration r = {m->code, desc,   m->request_id, NULL,
                                           NULL,    vtn_id, poll_freq_ms};
        return wk_write_created_party_registration(b, &r);
    }
    case WK_MSG_CANCELED_PARTY_REGISTRATION:
        return wk_write_canceled_party_registration(
            b, m->code, desc, m->request_id, m->registration_id[0] ? m->registration_id : NULL,
            ven);
    case WK_MSG_DISTRIBUTE_EVENT: {
        if (vtn_id == NULL)
            return -EINVAL;
        out o;
        o_init(&o, b, 800);
        O_LIT(&o, DOC_HEAD "<oadr:oadrDistributeEvent" SCHEMA_VERSION);
        o_ei_response(&o, m->code, desc, m->request_id);
        o_elem(&o, "<pyld:requestID>", m->request_id, "</pyld:requestID>");
        o_elem(&o, "<ei:vtnID>", vtn_id, "</ei:vtnID>");
        O_LIT(&o, "</oadr:oadrDistributeEvent>" DOC_TAIL);
        return o_end(&o);
    }
    case WK_MSG_REGISTERED_REPORT:
        return write_simple_error(b, "oadrRegisteredReport", m, NULL, ven);
    case WK_MSG_UPDATED_REPORT:
        return write_simple_error(b, "oadrUpdatedReport", m, NULL, ven);
    case WK_MSG_CREATED_REPORT:
        return write_simple_error(b, "oadrCreatedReport", m, "<oadr:oadrPendingReports/>", ven);
    case WK_MSG_CANCELED_REPORT:
        return write_simple_error(b, "oadrCanceledReport", m, "<oadr:oadrPendingReports/>", ven);
    case WK_MSG_CREATED_OPT:
        return wk_write_created_opt(b, m->code, desc, m->request_id, m->opt_id);
    case WK_MSG_CANCELED_OPT:
        return wk_write_canceled_opt(b, m->code, desc, m->request_id, m->opt_id);
    default:
        return wk_write_response(b, m->code, desc, m->request_id, ven);
    }
}
