#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bn_internal.h"

#define NS_OADR "http://openadr.org/oadr-2.0b/2012/07"
#define NS_EI "http://docs.oasis-open.org/ns/energyinterop/201110"
#define NS_PYLD "http://docs.oasis-open.org/ns/energyinterop/201110/payloads"

/* Request line and headers, then the body; the body is built first so that
 * Content-Length is known. */
static int http_post(vtn_buf *out, const char *host, const char *path, const vtn_buf *body)
{
    vtn_buf_reset(out);
    int rc = vtn_buf_printf(out,
                            "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/xml\r\n"
                            "Content-Length: %zu\r\n\r\n",
                            path, host, body->len);
    if (rc == 0)
        rc = vtn_buf_append(out, body->data, body->len);
    return rc;
}

/* A request whose whole body is one format: built, then posted. 0 or <0. */
static int post_printf(vtn_buf *out, const char *host, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int post_printf(vtn_buf *out, const char *host, const char *path, const char *fmt, ...)
{
    vtn_buf b;
    va_list ap;
    vtn_buf_init(&b, 4096);
    va_start(ap, fmt);
    int rc = vtn_buf_vprintf(&b, fmt, ap);
    va_end(ap);
    if (rc == 0)
        rc = http_post(out, host, path, &b);
    vtn_buf_free(&b);
    return rc;
}

int bn_request_registration(vtn_buf *out, const char *host, const char *ven_name,
                            const char *request_id)
{
    return bn_request_registration_push(out, host, ven_name, request_id, NULL);
}

int bn_request_registration_push(vtn_buf *out, const char *host, const char *ven_name,
                                 const char *request_id, const char *transport_address)
{
    vtn_buf b;
    vtn_buf_init(&b, 4096);
    int rc =
        vtn_buf_appends(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                            "<oadr:oadrPayload xmlns:oadr=\"" NS_OADR "\" xmlns:pyld=\"" NS_PYLD
                            "\" xmlns:ei=\"" NS_EI "\"><oadr:oadrSignedObject>"
                            "<oadr:oadrCreatePartyRegistration ei:schemaVersion=\"2.0b\">"
                            "<pyld:requestID>");
    if (rc == 0)
        rc = vtn_buf_append_xml(&b, request_id, strlen(request_id));
    if (rc == 0)
        rc =
            vtn_buf_appends(&b, "</pyld:requestID><oadr:oadrProfileName>2.0b</oadr:oadrProfileName>"
                                "<oadr:oadrTransportName>simpleHttp</oadr:oadrTransportName>");
    if (rc == 0 && transport_address) /* the schema puts it right after the transport's name */
        rc = vtn_buf_appends(&b, "<oadr:oadrTransportAddress>");
    if (rc == 0 && transport_address)
        rc = vtn_buf_append_xml(&b, transport_address, strlen(transport_address));
    if (rc == 0 && transport_address)
        rc = vtn_buf_appends(&b, "</oadr:oadrTransportAddress>");
    if (rc == 0)
        rc = vtn_buf_appends(&b, "<oadr:oadrReportOnly>false</oadr:oadrReportOnly>"
                                 "<oadr:oadrXmlSignature>false</oadr:oadrXmlSignature>"
                                 "<oadr:oadrVenName>");
    if (rc == 0)
        rc = vtn_buf_append_xml(&b, ven_name, strlen(ven_name));
    if (rc == 0)
        rc = vtn_buf_appends(&b, transport_address ? "</oadr:oadrVenName><oadr:oadrHttpPullModel>"
                                                     "false</oadr:oadrHttpPullModel>"
                                                   : "</oadr:oadrVenName><oadr:oadrHttpPullModel>"
                                                     "true</oadr:oadrHttpPullModel>");
    if (rc == 0)
        rc = vtn_buf_appends(&b, "</oadr:oadrCreatePartyRegistration>"
                                 "</oadr:oadrSignedObject></oadr:oadrPayload>\n");
    if (rc == 0)
        rc = http_post(out, host, BN_PATH_REGISTER, &b);
    vtn_buf_free(&b);
    return rc;
}

int bn_request_poll(vtn_buf *out, const char *host, const char *ven_id)
{
    /* ven_id is copied from the VTN's reply as XML text, so it is already escaped. */
    return post_printf(out, host, BN_PATH_POLL,
                       "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                       "<oadr:oadrPayload xmlns:oadr=\"" NS_OADR "\" xmlns:ei=\"" NS_EI
                       "\"><oadr:oadrSignedObject><oadr:oadrPoll ei:schemaVersion=\"2.0b\">"
                       "<ei:venID>%s</ei:venID></oadr:oadrPoll></oadr:oadrSignedObject>"
                       "</oadr:oadrPayload>\n",
                       ven_id);
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Walks start tags: calls back with the local name of each element start
 * tag and the offset just past its '>'. Stops when cb returns non-zero. */
typedef int (*tag_cb)(const char *local, size_t llen, size_t content, int empty, void *ud);

static int walk_tags(const char *doc, size_t len, tag_cb cb, void *ud)
{
    size_t i = 0;
    while (i < len) {
        const char *lt = memchr(doc + i, '<', len - i);
        if (lt == NULL)
            break;
        i = (size_t)(lt - doc) + 1;
        if (i >= len)
            break;
        char c = doc[i];
        if (c == '/')
            continue; /* an end tag */
        if (c == '?' || c == '!') {
            /* Skip a comment, CDATA section, PI or declaration whole: a tag-like
             * text inside it is not an element. */
            const char *close = c == '?' ? "?>" : "-->";
            if (c == '!' && len - i >= 8 && memcmp(doc + i, "![CDATA[", 8) == 0)
                close = "]]>";
            else if (c == '!' && !(len - i >= 3 && memcmp(doc + i, "!--", 3) == 0))
                close = ">";
            const char *e = memmem(doc + i, len - i, close, strlen(close));
            if (e == NULL)
                break;
            i = (size_t)(e - doc) + strlen(close);
            continue;
        }
        size_t ns = i;
        while (i < len && !is_space(doc[i]) && doc[i] != '>' && doc[i] != '/')
            i++;
        size_t ne = i;
        const char *colon = memchr(doc + ns, ':', ne - ns);
        size_t ls = colon ? (size_t)(colon - doc) + 1 : ns;
        /* Find the end of the start tag; attribute values may hold '>' only if quoted. */
        char quote = 0;
        while (i < len && (quote || doc[i] != '>')) {
            if (quote && doc[i] == quote)
                quote = 0;
            else if (!quote && (doc[i] == '"' || doc[i] == '\''))
                quote = doc[i];
            i++;
        }
        if (i >= len)
            break;
        int empty = i > 0 && doc[i - 1] == '/';
        i++;
        int r = cb(doc + ls, ne - ls, i, empty, ud);
        if (r)
            return r;
    }
    return 0;
}

struct text_find {
    const char *name;
    size_t nlen;
    size_t content;
    int empty;
};

static int text_cb(const char *local, size_t llen, size_t content, int empty, void *ud)
{
    struct text_find *f = ud;
    if (llen != f->nlen || memcmp(local, f->name, llen) != 0)
        return 0;
    f->content = content;
    f->empty = empty;
    return 1;
}

/* Copies the trimmed text that starts at doc[s] up to the next '<' (none
 * for an empty element). Returns its length, -ENOENT when the document ends
 * first, -ENOBUFS when it does not fit. */
static int text_at(const char *doc, size_t len, size_t s, int empty, char *out, size_t outlen)
{
    size_t e = s;
    if (!empty) {
        const char *lt = memchr(doc + s, '<', len - s);
        if (lt == NULL)
            return -ENOENT;
        e = (size_t)(lt - doc);
        while (s < e && is_space(doc[s]))
            s++;
        while (e > s && is_space(doc[e - 1]))
            e--;
    }
    if (e - s >= outlen)
        return -ENOBUFS;
    memcpy(out, doc + s, e - s);
    out[e - s] = '\0';
    return (int)(e - s);
}

int bn_xml_text(const char *doc, size_t len, const char *name, char *out, size_t outlen)
{
    struct text_find f = {name, strlen(name), 0, 0};
    if (outlen == 0 || !walk_tags(doc, len, text_cb, &f))
        return -ENOENT;
    return text_at(doc, len, f.content, f.empty, out, outlen);
}

struct payload_find {
    char *out;
    size_t outlen;
    int rc;
};

static int payload_cb(const char *local, size_t llen, size_t content, int empty, void *ud)
{
    struct payload_find *f = ud;
    (void)content;
    (void)empty;
    if ((llen == 11 && memcmp(local, "oadrPayload", 11) == 0) ||
        (llen == 16 && memcmp(local, "oadrSignedObject", 16) == 0))
        return 0;
    if (llen >= f->outlen) {
        f->rc = -ENOBUFS;
        return 1;
    }
    memcpy(f->out, local, llen);
    f->out[llen] = '\0';
    f->rc = 0;
    return 1;
}

int bn_xml_payload(const char *doc, size_t len, char *out, size_t outlen)
{
    struct payload_find f = {out, outlen, -ENOENT};
    walk_tags(doc, len, payload_cb, &f);
    return f.rc;
}

int bn_addr_is_loopback(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *v4 = (const struct sockaddr_in *)ss;
        return (ntohl(v4->sin_addr.s_addr) >> 24) == 127;
    }
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)ss;
        if (IN6_IS_ADDR_LOOPBACK(&v6->sin6_addr))
            return 1;
        return IN6_IS_ADDR_V4MAPPED(&v6->sin6_addr) && v6->sin6_addr.s6_addr[12] == 127;
    }
    return 0;
}

int bn_request_created_event(vtn_buf *out, const char *host, const char *ven_id,
                             const char *request_id, const bn_dist_event *ev, int n)
{
    vtn_buf b;
    vtn_buf_init(&b, 4096 + (size_t)n * 512);
    /* ven_id, request_id and the eventIDs come from the VTN's XML as text, so
     * they are already escaped. */
    int rc =
        vtn_buf_appends(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                            "<oadr:oadrPayload xmlns:oadr=\"" NS_OADR "\" xmlns:pyld=\"" NS_PYLD
                            "\" xmlns:ei=\"" NS_EI "\"><oadr:oadrSignedObject>"
                            "<oadr:oadrCreatedEvent ei:schemaVersion=\"2.0b\">"
                            "<pyld:eiCreatedEvent><ei:eiResponse><ei:responseCode>200"
                            "</ei:responseCode><pyld:requestID/></ei:eiResponse>"
                            "<ei:eventResponses>");
    for (int i = 0; rc == 0 && i < n; i++)
        rc = vtn_buf_printf(&b,
                            "<ei:eventResponse><ei:responseCode>200</ei:responseCode>"
                            "<pyld:requestID>%s</pyld:requestID><ei:qualifiedEventID>"
                            "<ei:eventID>%s</ei:eventID><ei:modificationNumber>%lld"
                            "</ei:modificationNumber></ei:qualifiedEventID>"
                            "<ei:optType>%s</ei:optType></ei:eventResponse>",
                            request_id, ev[i].id, ev[i].mn, ev[i].opt_out ? "optOut" : "optIn");
    if (rc == 0)
        rc = vtn_buf_printf(&b,
                            "</ei:eventResponses><ei:venID>%s</ei:venID></pyld:eiCreatedEvent>"
                            "</oadr:oadrCreatedEvent></oadr:oadrSignedObject></oadr:oadrPayload>\n",
                            ven_id);
    if (rc == 0)
        rc = http_post(out, host, BN_PATH_EVENT, &b);
    vtn_buf_free(&b);
    return rc;
}

int bn_request_registered_report(vtn_buf *out, const char *host, const char *ven_id,
                                 const char *request_id)
{
    /* both come from the VTN's XML as text, so they are already escaped */
    return post_printf(out, host, BN_PATH_REPORT,
                       "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                       "<oadr:oadrPayload xmlns:oadr=\"" NS_OADR "\" xmlns:pyld=\"" NS_PYLD
                       "\" xmlns:ei=\"" NS_EI "\"><oadr:oadrSignedObject>"
                       "<oadr:oadrRegisteredReport ei:schemaVersion=\"2.0b\">"
                       "<ei:eiResponse><ei:responseCode>200</ei:responseCode>"
                       "<pyld:requestID>%s</pyld:requestID></ei:eiResponse>"
                       "<ei:venID>%s</ei:venID></oadr:oadrRegisteredReport>"
                       "</oadr:oadrSignedObject></oadr:oadrPayload>\n",
                       request_id, ven_id);
}

struct dist_find {
    const char *doc;
    size_t len;
    bn_dist_event *out;
    int max, n, rc;
    char *request_id;
    size_t rlen;
};

#define IS(name) (llen == sizeof(name) - 1 && memcmp(local, name, llen) == 0)

static int dist_cb(const char *local, size_t llen, size_t content, int empty, void *ud)
{
    struct dist_find *f = ud;
    char num[32];
    bn_dist_event *cur = f->n > 0 ? &f->out[f->n - 1] : NULL;
    if (IS("requestID") && f->n == 0 && f->request_id[0] == '\0') {
        /* the oadrDistributeEvent's own requestID comes before any event */
        f->rc = text_at(f->doc, f->len, content, empty, f->request_id, f->rlen);
    } else if (IS("oadrEvent")) {
        if (f->n == f->max) {
            f->rc = -ENOBUFS;
            return 1;
        }
        cur = &f->out[f->n++];
        memset(cur, 0, sizeof *cur);
        cur->mn = -1;
        cur->required = 1; /* the profile's default */
    } else if (cur && IS("eventID") && !cur->id[0]) {
        f->rc = text_at(f->doc, f->len, content, empty, cur->id, sizeof cur->id);
    } else if (cur && IS("modificationNumber") && cur->mn < 0) {
        f->rc = text_at(f->doc, f->len, content, empty, num, sizeof num);
        cur->mn = f->rc >= 0 ? atoll(num) : -1;
    } else if (cur && IS("oadrResponseRequired")) {
        f->rc = text_at(f->doc, f->len, content, empty, num, sizeof num);
        cur->required = f->rc < 0 || strcmp(num, "never") != 0;
    }
    return f->rc < 0;
}

#undef IS

int bn_distribute_parse(const char *doc, size_t len, bn_dist_event *out, int max, char *request_id,
                        size_t rlen)
{
    struct dist_find f = {doc, len, out, max, 0, 0, request_id, rlen};
    if (rlen == 0)
        return -EINVAL;
    request_id[0] = '\0';
    walk_tags(doc, len, dist_cb, &f);
    if (f.rc < 0)
        return f.rc;
    for (int i = 0; i < f.n; i++)
        if (!out[i].id[0] || out[i].mn < 0)
            return -EINVAL; /* an oadrEvent without eventID or modificationNumber */
    return f.n;
}

/* ---- reports mode: the VEN's side of EiReport ---- */

#define NS_REPORT_EXTRA                                                                            \
    "\" xmlns:xcal=\"urn:ietf:params:xml:ns:icalendar-2.0\" "                                      \
    "xmlns:strm=\"urn:ietf:params:xml:ns:icalendar-2.0:stream\" "                                  \
    "xmlns:power=\"http://docs.oasis-open.org/ns/emix/2011/06/power\" "                            \
    "xmlns:scale=\"http://docs.oasis-open.org/ns/emix/2011/06/siscale"

#define REPORT_HEAD(msg)                                                                           \
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"                                                 \
    "<oadr:oadrPayload xmlns:oadr=\"" NS_OADR "\" xmlns:pyld=\"" NS_PYLD                           \
    "\" xmlns:ei=\"" NS_EI NS_REPORT_EXTRA "\"><oadr:oadrSignedObject><oadr:" msg                  \
    " ei:schemaVersion=\"2.0b\">"

static void iso_utc(char *out, size_t len, int64_t s)
{
    time_t t = (time_t)s;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int bn_request_register_report(vtn_buf *out, const char *host, const char *ven_id,
                               const char *request_id)
{
    /* ven_id comes from the VTN's XML as text, so it is already escaped. */
    return post_printf(
        out, host, BN_PATH_REPORT,
        REPORT_HEAD(
            "oadrRegisterReport") "<pyld:requestID>%s</pyld:requestID><oadr:oadrReport>"
                                  "<xcal:duration><xcal:duration>PT1H</xcal:duration></"
                                  "xcal:duration>"
                                  "<oadr:oadrReportDescription><ei:rID>" BN_REPORT_RID "</ei:rID>"
                                  "<ei:reportType>usage</ei:reportType><power:powerReal>"
                                  "<power:itemDescription>RealPower</"
                                  "power:itemDescription><power:itemUnits>W"
                                  "</power:itemUnits><scale:siScaleCode>none</"
                                  "scale:siScaleCode><power:powerAttributes>"
                                  "<power:hertz>60</power:hertz><power:voltage>230</"
                                  "power:voltage><power:ac>true"
                                  "</power:ac></power:powerAttributes></"
                                  "power:powerReal><ei:readingType>Direct Read"
                                  "</"
                                  "ei:readingType><oadr:oadrSamplingRate><oadr:oadrMinPeriod>PT1M</"
                                  "oadr:oadrMinPeriod>"
                                  "<oadr:oadrMaxPeriod>PT1H</"
                                  "oadr:oadrMaxPeriod><oadr:oadrOnChange>false"
                                  "</oadr:oadrOnChange></oadr:oadrSamplingRate></"
                                  "oadr:oadrReportDescription>"
                                  "<ei:reportRequestID>0</"
                                  "ei:reportRequestID><ei:reportSpecifierID>" BN_REPORT_SPEC
                                  "</ei:reportSpecifierID><ei:reportName>METADATA_TELEMETRY_USAGE</"
                                  "ei:reportName>"
                                  "<ei:createdDateTime>2026-01-01T00:00:00Z</ei:createdDateTime></"
                                  "oadr:oadrReport>"
                                  "<ei:venID>%s</ei:venID></oadr:oadrRegisterReport></"
                                  "oadr:oadrSignedObject>"
                                  "</oadr:oadrPayload>\n",
        request_id, ven_id);
}

int bn_request_created_report(vtn_buf *out, const char *host, const char *ven_id,
                              const char *request_id, const char *rr_id)
{
    /* all three come from the VTN's XML as text, so they are already escaped */
    return post_printf(
        out, host, BN_PATH_REPORT,
        REPORT_HEAD(
            "oadrCreatedReport") "<ei:eiResponse><ei:responseCode>200"
                                 "</ei:responseCode><pyld:requestID>%s</pyld:requestID>"
                                 "</ei:eiResponse><oadr:oadrPendingReports><ei:reportRequestID>%s"
                                 "</ei:reportRequestID></oadr:oadrPendingReports><ei:venID>%s"
                                 "</ei:venID></oadr:oadrCreatedReport></oadr:oadrSignedObject>"
                                 "</oadr:oadrPayload>\n",
        request_id, rr_id, ven_id);
}

void bn_report_value(char *out, size_t len, uint32_t j)
{
    snprintf(out, len, "%" PRIu32 ".5", j);
}

int bn_request_update_report(vtn_buf *out, vtn_buf *scratch, const char *host, const char *ven_id,
                             const char *rr_id, uint32_t seq, uint32_t k)
{
    char rid[48], when[32], val[24];
    vtn_buf *b = scratch;
    vtn_buf_reset(b);
    snprintf(rid, sizeof rid, "upd-%" PRIu32, seq);
    int rc = vtn_buf_printf(b,
                            REPORT_HEAD("oadrUpdateReport") "<pyld:requestID>%s</pyld:requestID>"
                                                            "<oadr:oadrReport><strm:intervals>",
                            rid);
    for (uint32_t i = 0; rc == 0 && i < k; i++) {
        uint32_t j = seq * k + i;
        iso_utc(when, sizeof when, BN_REPORT_BASE_S + (int64_t)j * 60);
        bn_report_value(val, sizeof val, j);
        rc = vtn_buf_printf(b,
                            "<ei:interval><xcal:dtstart><xcal:date-time>%s</xcal:date-time>"
                            "</xcal:dtstart><xcal:duration><xcal:duration>PT1M</xcal:duration>"
                            "</xcal:duration><oadr:oadrReportPayload><ei:rID>" BN_REPORT_RID
                            "</ei:rID><ei:payloadFloat><ei:value>%s</ei:value></ei:payloadFloat>"
                            "</oadr:oadrReportPayload></ei:interval>",
                            when, val);
    }
    /* createdDateTime: the end of the last interval, distinct per update (it is
     * part of what makes a resend the same report) */
    iso_utc(when, sizeof when, BN_REPORT_BASE_S + (int64_t)(seq + 1) * k * 60);
    if (rc == 0)
        rc = vtn_buf_printf(
            b,
            "</strm:intervals><ei:eiReportID>%s</ei:eiReportID>"
            "<ei:reportRequestID>%s</ei:reportRequestID><ei:reportSpecifierID>" BN_REPORT_SPEC
            "</ei:reportSpecifierID><ei:reportName>TELEMETRY_USAGE"
            "</ei:reportName><ei:createdDateTime>%s</ei:createdDateTime>"
            "</oadr:oadrReport><ei:venID>%s</ei:venID></oadr:oadrUpdateReport>"
            "</oadr:oadrSignedObject></oadr:oadrPayload>\n",
            rid, rr_id, when, ven_id);
    if (rc == 0)
        rc = http_post(out, host, BN_PATH_REPORT, b);
    return rc;
}

double bn_iso_duration_s(const char *s)
{
    double total = 0;
    int in_time = 0, any = 0;
    if (*s == '-' || *s++ != 'P')
        return -1;
    while (*s) {
        if (*s == 'T' && !in_time) {
            in_time = 1;
            s++;
            continue;
        }
        char *end;
        double v = strtod(s, &end);
        if (end == s || v < 0)
            return -1;
        switch (*end) {
        case 'W':
            total += v * 604800;
            break;
        case 'D':
            total += v * 86400;
            break;
        case 'H':
            total += v * 3600;
            break;
        case 'M':
            if (!in_time)
                return -1; /* months have no fixed length */
            total += v * 60;
            break;
        case 'S':
            total += v;
            break;
        default:
            return -1;
        }
        any = 1;
        s = end + 1;
    }
    return any ? total : -1;
}
