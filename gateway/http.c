/* HTTP/1.1 for one connection, on llhttp 9 with every lenient flag off.
 *
 * No sockets here: the connection layer (or a test, or the fuzzer) feeds
 * plaintext bytes with gw_http_feed() and gets the bytes to send through
 * cbs->send. Requests are answered strictly in order: on_message_complete
 * pauses the parser (HPE_PAUSED), the request goes to on_request, and parsing
 * resumes only once the response has been written, so pipelined requests
 * wait in a bounded input buffer and a client that does not read its
 * responses stops being read. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "gw_internal.h"

enum {
    H_NONE = 0,
    H_OTHER,
    H_CTYPE,
    H_AUTH,
    H_EXPECT,
    H_TE,
    H_X0 /* H_X0 + i: lim->xhdr_name[i] */
};

#define HEAD_MAX (1024 * 1024) /* response head incl. worker-supplied header lines */

static gw_http *H(llhttp_t *p)
{
    return gw_container_of(p, gw_http, parser);
}

static int fail_with(gw_http *h, int status, const char *reason)
{
    h->err_status = status;
    h->err_reason = reason;
    h->err_extra = NULL;
    llhttp_set_error_reason(&h->parser, reason);
    return HPE_USER;
}

/* Takes n more bytes of the shared body budget for this request, or fails
 * it with 503: the gateway is full of bodies, not this request too big.
 * Bodies over GW_SMALL_BODY may fill only three quarters of the budget: the
 * last quarter stays for the small ones (polls, registrations), so stalled
 * big uploads cannot starve the VENs' everyday messages. */
static int budget_take(gw_http *h, uint64_t n)
{
    gw_budget *b = h->lim->budget;
    if (!b || n == 0)
        return 0;
    uint64_t used = GW_GET(b->used);
    uint64_t cap = h->reserved + n > GW_SMALL_BODY ? b->max - b->max / 4 : b->max;
    if (used + n > cap) {
        GW_INC(b->refused);
        fail_with(h, 503, "server busy: too many request bodies in progress, retry later");
        h->err_extra = h->lim->retry_after;
        return HPE_USER;
    }
    GW_SET(b->used, used + n);
    h->reserved += (size_t)n;
    return 0;
}

/* The request no longer needs its body (answered, failed, or the next one
 * begins). */
static void budget_give_back(gw_http *h)
{
    gw_budget *b = h->lim ? h->lim->budget : NULL; /* NULL: never initialized */
    if (b && h->reserved)
        GW_SET(b->used, GW_GET(b->used) - h->reserved);
    h->reserved = 0;
}

static int count_head(gw_http *h, size_t n)
{
    h->head_bytes += n;
    if (h->head_bytes > h->lim->max_header)
        return fail_with(h, 431, "request header fields too large");
    return 0;
}

/* One big upload should not pin megabytes to an idle keep-alive connection
 * for its lifetime, out of the body budget's sight. */
static void body_release(gw_http *h)
{
    budget_give_back(h);
    if (h->req.body.cap > GW_KEEP_BUF) {
        vtn_buf_free(&h->req.body);
        vtn_buf_init(&h->req.body, h->lim->max_body);
    } else {
        vtn_buf_reset(&h->req.body);
    }
}

static int on_message_begin(llhttp_t *p)
{
    gw_http *h = H(p);
    h->state = GW_HTTP_HEAD;
    h->begun++;
    h->head_bytes = 0;
    h->body_bytes = 0;
    h->hdr = H_NONE;
    h->in_field = 0;
    h->hname_len = 0;
    h->expect_len = 0;
    h->te_len = 0;
    h->te_other = 0;
    h->seen_ctype = h->seen_auth = h->seen_host = 0;
    vtn_buf_reset(&h->req.url);
    vtn_buf_reset(&h->req.ctype);
    vtn_buf_reset(&h->req.auth);
    for (int i = 0; i < GW_XHDR_N; i++) {
        vtn_buf_reset(&h->req.xhdr[i]);
        h->req.has_xhdr[i] = 0;
    }
    body_release(h);
    return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t n)
{
    gw_http *h = H(p);
    if (count_head(h, n))
        return HPE_USER;
    if (h->lim->max_url && h->req.url.len + n > h->lim->max_url) {
        snprintf(h->why, sizeof h->why, "request target too long: at most %zu bytes here",
                 h->lim->max_url);
        return fail_with(h, 414, h->why);
    }
    if (vtn_buf_append(&h->req.url, at, n))
        return fail_with(h, 431, "request target too long");
    return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t n)
{
    gw_http *h = H(p);
    if (count_head(h, n))
        return HPE_USER;
    if (!h->in_field) {
        h->in_field = 1;
        h->hname_len = 0;
    }
    for (size_t i = 0; i < n; i++, h->hname_len++) {
        if (h->hname_len < sizeof h->hname) {
            char c = at[i];
            h->hname[h->hname_len] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
        }
    }
    return 0;
}

static int name_is(const gw_http *h, const char *lower)
{
    size_t n = strlen(lower);
    return h->hname_len == n && memcmp(h->hname, lower, n) == 0;
}

static int on_header_field_complete(llhttp_t *p)
{
    gw_http *h = H(p);
    h->in_field = 0;
    /* ": " and CRLF around every header count too, so a flood of empty
     * headers cannot slip under the byte limit. */
    if (count_head(h, 4))
        return HPE_USER;
    h->hdr = H_OTHER;
    if (name_is(h, "content-type")) {
        if (h->seen_ctype)
            return fail_with(h, 400, "duplicate Content-Type");
        h->seen_ctype = 1;
        h->hdr = H_CTYPE;
    } else if (name_is(h, "authorization")) {
        if (h->seen_auth)
            return fail_with(h, 400, "duplicate Authorization");
        h->seen_auth = 1;
        h->hdr = H_AUTH;
    } else if (name_is(h, "expect")) {
        h->hdr = H_EXPECT;
    } else if (name_is(h, "transfer-encoding")) {
        h->hdr = H_TE;
        h->te_len = 0;
    } else if (name_is(h, "host")) {
        /* two Hosts are a classic way to make two servers disagree */
        if (h->seen_host)
            return fail_with(h, 400, "duplicate Host");
        h->seen_host = 1;
    } else {
        for (int i = 0; i < GW_XHDR_N; i++) {
            size_t n = h->lim->xhdr_len[i];
            if (n && h->hname_len == n && memcmp(h->hname, h->lim->xhdr_name[i], n) == 0) {
                /* two identity headers: which one would a proxy have meant? */
                if (h->req.has_xhdr[i])
                    return fail_with(h, 400, "duplicate client identity header");
                h->req.has_xhdr[i] = 1;
                h->hdr = H_X0 + i;
                break;
            }
        }
    }
    return 0;
}

/* Appends at[0..n) to a fixed buffer of cap bytes holding *len: 1, or 0
 * when it would not fit (then nothing is copied). */
static int small_append(char *buf, size_t cap, size_t *len, const char *at, size_t n)
{
    if (*len + n > cap)
        return 0;
    memcpy(buf + *len, at, n);
    *len += n;
    return 1;
}

static int on_header_value(llhttp_t *p, const char *at, size_t n)
{
    gw_http *h = H(p);
    if (count_head(h, n))
        return HPE_USER;
    switch (h->hdr) {
    case H_CTYPE:
        if (vtn_buf_append(&h->req.ctype, at, n))
            return fail_with(h, 431, "request header fields too large");
        break;
    case H_AUTH:
        if (vtn_buf_append(&h->req.auth, at, n))
            return fail_with(h, 431, "request header fields too large");
        break;
    case H_TE:
        if (!small_append(h->te, sizeof h->te, &h->te_len, at, n))
            h->te_other = 1; /* longer than any list of "chunked"s we accept */
        break;
    case H_EXPECT:
        if (!small_append(h->expect, sizeof h->expect, &h->expect_len, at, n))
            h->expect_len = sizeof h->expect + 1; /* not one we know */
        break;
    default:
        if (h->hdr >= H_X0 && h->hdr < H_X0 + GW_XHDR_N &&
            vtn_buf_append(&h->req.xhdr[h->hdr - H_X0], at, n))
            return fail_with(h, 431, "request header fields too large");
        break;
    }
    return 0;
}

/* Each element of a Transfer-Encoding list must be "chunked": we decode
 * nothing else (gzip, compress, deflate), so a body in such a coding would
 * reach the worker still encoded. Empty elements are allowed (RFC 9110 5.6.1). */
static void te_check(gw_http *h)
{
    size_t i = 0;
    while (i < h->te_len) {
        while (i < h->te_len && (h->te[i] == ' ' || h->te[i] == '\t' || h->te[i] == ','))
            i++;
        size_t start = i;
        while (i < h->te_len && h->te[i] != ',' && h->te[i] != ' ' && h->te[i] != '\t')
            i++;
        if (i > start && (i - start != 7 || strncasecmp(h->te + start, "chunked", 7) != 0))
            h->te_other = 1;
        while (i < h->te_len && (h->te[i] == ' ' || h->te[i] == '\t'))
            i++;
        if (i < h->te_len && h->te[i] != ',')
            h->te_other = 1; /* "chunked x": not one coding name per element */
    }
}

static int on_header_value_complete(llhttp_t *p)
{
    gw_http *h = H(p);
    if (h->hdr == H_TE)
        te_check(h);
    if (h->hdr >= H_X0 && h->hdr < H_X0 + GW_XHDR_N) {
        /* llhttp keeps trailing whitespace; the field value ends before it */
        vtn_buf *b = &h->req.xhdr[h->hdr - H_X0];
        while (b->len && (b->data[b->len - 1] == ' ' || b->data[b->len - 1] == '\t'))
            b->data[--b->len] = '\0';
    }
    h->hdr = H_NONE;
    return 0;
}

static int on_headers_complete(llhttp_t *p)
{
    gw_http *h = H(p);
    if (p->http_major != 1) {
        fail_with(h, 505, "HTTP version not supported");
        return -1;
    }
    if (p->http_minor >= 1 && !h->seen_host) { /* RFC 9112 section 3.2 */
        fail_with(h, 400, "missing Host");
        return -1;
    }
    /* A list that does not end in chunked is llhttp's 400 (RFC 9112 6.3);
     * one that does but holds another coding is a coding we do not know. */
    if ((p->flags & F_CHUNKED) && h->te_other) {
        fail_with(h, 501, "transfer coding not implemented: only chunked is supported");
        return -1;
    }
    if ((p->flags & F_CONTENT_LENGTH) && p->content_length > h->lim->max_body) {
        fail_with(h, 413, "request body too large");
        return -1;
    }
    if (h->cbs->on_head) {
        const char *why = NULL, *extra = NULL;
        h->req.method = (uint8_t)p->method; /* on_head may decide by it (ui.c's 405) */
        int st = h->cbs->on_head(h, &h->req, &why, &extra);
        if (st) {
            fail_with(h, st, why ? why : gw__status_text(st));
            h->err_extra = extra;
            return -1;
        }
    }
    /* the whole declared body now, before the first byte is buffered */
    if ((p->flags & F_CONTENT_LENGTH) && budget_take(h, p->content_length))
        return -1;
    int has_body = (p->flags & F_CHUNKED) || ((p->flags & F_CONTENT_LENGTH) && p->content_length);
    if (has_body && p->http_minor >= 1 && h->expect_len == 12 &&
        strncasecmp(h->expect, "100-continue", 12) == 0) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        gw_iov iov = {cont, sizeof cont - 1};
        if (h->cbs->send(h, &iov, 1) < 0) {
            fail_with(h, 0, "connection lost");
            return -1;
        }
    }
    h->state = GW_HTTP_BODY;
    return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t n)
{
    gw_http *h = H(p);
    h->body_bytes += n;
    if (h->body_bytes > h->lim->max_body)
        return fail_with(h, 413, "request body too large");
    if (vtn_buf_append(&h->req.body, at, n))
        return fail_with(h, 413, "request body too large");
    return 0;
}

/* p->content_length is this chunk's size: refuse it before its bytes come. */
static int on_chunk_header(llhttp_t *p)
{
    gw_http *h = H(p);
    if (p->content_length > h->lim->max_body - h->body_bytes)
        return fail_with(h, 413, "request body too large: chunk over the body limit");
    return budget_take(h, p->content_length);
}

static int on_message_complete(llhttp_t *p)
{
    gw_http *h = H(p);
    h->req.method = p->method;
    h->req.http_major = p->http_major;
    h->req.http_minor = p->http_minor;
    h->req.keep_alive = (uint8_t)llhttp_should_keep_alive(p);
    /* We never switch protocols: answer, then close, because what follows
     * an Upgrade/CONNECT request is not HTTP we could frame. */
    if (p->upgrade)
        h->upgrade = 1;
    h->state = GW_HTTP_WAIT;
    return HPE_PAUSED;
}

static const llhttp_settings_t settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_field_complete = on_header_field_complete,
    .on_header_value = on_header_value,
    .on_header_value_complete = on_header_value_complete,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_chunk_header = on_chunk_header,
    .on_message_complete = on_message_complete,
};

void gw_http_init(gw_http *h, const gw_http_limits *lim, const gw_http_cbs *cbs)
{
    memset(h, 0, sizeof *h);
    llhttp_init(&h->parser, HTTP_REQUEST, &settings);
    h->lim = lim;
    h->cbs = cbs;
    vtn_buf_init(&h->req.url, lim->max_header);
    vtn_buf_init(&h->req.ctype, lim->max_header);
    vtn_buf_init(&h->req.auth, lim->max_header);
    vtn_buf_init(&h->req.body, lim->max_body);
    for (int i = 0; i < GW_XHDR_N; i++)
        vtn_buf_init(&h->req.xhdr[i], lim->max_header);
    vtn_buf_init(&h->in, GW_IN_MAX);
    vtn_buf_init(&h->head, HEAD_MAX);
    h->state = GW_HTTP_IDLE;
}

void gw_http_free(gw_http *h)
{
    budget_give_back(h);
    vtn_buf_free(&h->req.url);
    vtn_buf_free(&h->req.ctype);
    vtn_buf_free(&h->req.auth);
    vtn_buf_free(&h->req.body);
    for (int i = 0; i < GW_XHDR_N; i++)
        vtn_buf_free(&h->req.xhdr[i]);
    vtn_buf_free(&h->in);
    vtn_buf_free(&h->head);
}

/* ---- response framing -------------------------------------------------- */

const char *gw__status_text(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 410:
        return "Gone";
    case 411:
        return "Length Required";
    case 412:
        return "Precondition Failed";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 415:
        return "Unsupported Media Type";
    case 422:
        return "Unprocessable Content";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return status < 300   ? "OK"
               : status < 400 ? "Redirect"
               : status < 500 ? "Error"
                              : "Server Error";
    }
}

/* IMF-fixdate, formatted at most once a second (the loop is single-threaded). */
static const char *http_date(void)
{
    static char buf[40];
    static time_t last = -1;
    time_t now = time(NULL);
    if (now != last) {
        static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
        static const char mons[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
        struct tm tm;
        gmtime_r(&now, &tm);
        snprintf(buf, sizeof buf, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday % 7],
                 tm.tm_mday, mons[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                 tm.tm_sec);
        last = now;
    }
    return buf;
}

static char *put(char *o, const char *s, size_t n)
{
    memcpy(o, s, n);
    return o + n;
}
#define PUTS(o, lit) put(o, lit, sizeof(lit) - 1)

static char *put_u64(char *o, uint64_t v)
{
    char tmp[24];
    int i = 0;
    do {
        tmp[i++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (i)
        *o++ = tmp[--i];
    return o;
}

static int write_response(gw_http *h, int status, const char *ctype, size_t ctlen,
                          const char *extra, size_t extra_len, const char *body, size_t body_len,
                          int close, int head_only)
{
    if (status < 100 || status > 999)
        status = 500;
    int nobody = status < 200 || status == 204 || status == 304;
    const char *text = gw__status_text(status);
    const char *date = http_date();
    size_t need = 64 + strlen(text) + strlen(date) + ctlen + extra_len + 64;
    vtn_buf *o = &h->head;
    vtn_buf_reset(o);
    if (vtn_buf_reserve(o, need))
        return -ENOBUFS;
    char *w = o->data;
    w = PUTS(w, "HTTP/1.1 ");
    w = put_u64(w, (uint64_t)status);
    *w++ = ' ';
    w = put(w, text, strlen(text));
    w = PUTS(w, "\r\nDate: ");
    w = put(w, date, strlen(date));
    w = PUTS(w, "\r\n");
    if (!nobody) {
        if (ctlen) {
            w = PUTS(w, "Content-Type: ");
            w = put(w, ctype, ctlen);
            w = PUTS(w, "\r\n");
        }
        w = PUTS(w, "Content-Length: ");
        w = put_u64(w, body_len);
        w = PUTS(w, "\r\n");
    }
    if (extra_len)
        w = put(w, extra, extra_len);
    if (close)
        w = PUTS(w, "Connection: close\r\n");
    else if (h->req.http_minor == 0)
        w = PUTS(w, "Connection: keep-alive\r\n"); /* HTTP/1.0 asked for it */
    w = PUTS(w, "\r\n");
    o->len = (size_t)(w - o->data);

    gw_iov iov[2] = {{o->data, o->len}, {body, body_len}};
    int n = (!nobody && !head_only && body_len) ? 2 : 1;
    return h->cbs->send(h, iov, n);
}

/* A text/plain body: text (or the status's reason phrase) and a newline,
 * cut to fit. Its length. */
static size_t text_body(char *body, size_t cap, int status, const char *text)
{
    int n = snprintf(body, cap, "%s\n", text ? text : gw__status_text(status));
    if (n < 0)
        return 0;
    return (size_t)n >= cap ? cap - 1 : (size_t)n;
}

static void http_fail(gw_http *h, int status, const char *reason)
{
    int was = h->state;
    h->state = GW_HTTP_DEAD;
    budget_give_back(h);
    /* Never answer out of order (a reply is pending) or after a 0 status
     * (the connection is already gone). */
    if (status == 0 || was == GW_HTTP_WAIT || was == GW_HTTP_FLUSH || was == GW_HTTP_DEAD)
        return;
    char body[160];
    size_t n = text_body(body, sizeof body, status, reason);
    h->error_status = status;
    h->sent_close = 1;
    const char *extra = h->err_status == status ? h->err_extra : NULL;
    (void)write_response(h, status, "text/plain", 10, extra, extra ? strlen(extra) : 0, body, n, 1,
                         0);
}

/* ---- the parse loop ----------------------------------------------------- */

static int in_append(gw_http *h, const char *p, size_t n)
{
    if (h->in_off) {
        size_t left = h->in.len - h->in_off;
        memmove(h->in.data, h->in.data + h->in_off, left);
        h->in.len = left;
        h->in_off = 0;
    }
    return vtn_buf_append(&h->in, p, n);
}

static void save_rest(gw_http *h, const char *p, size_t n)
{
    if (n && h->state != GW_HTTP_DEAD && in_append(h, p, n)) {
        /* The caller ignored gw_http_feed's "stop reading". */
        h->state = GW_HTTP_DEAD;
    }
}

/* Parses buffered input, then p (new bytes), until a request is waiting for
 * its reply, the input runs out, or the connection is dead. */
static void http_process(gw_http *h, const char *p, size_t n)
{
    if (h->in_process) {
        save_rest(h, p, n);
        return;
    }
    h->in_process = 1;
    for (;;) {
        if (h->state == GW_HTTP_WAIT || h->state == GW_HTTP_FLUSH || h->state == GW_HTTP_DEAD)
            break;
        const char *d;
        size_t dn;
        int from_in = gw_http_buffered(h) > 0;
        if (from_in) {
            d = h->in.data + h->in_off;
            dn = gw_http_buffered(h);
        } else if (n) {
            d = p;
            dn = n;
        } else {
            break;
        }
        llhttp_errno_t e = llhttp_execute(&h->parser, d, dn);
        size_t used = dn;
        if (e != HPE_OK) {
            const char *ep = llhttp_get_error_pos(&h->parser);
            used = (ep && ep >= d && ep <= d + dn) ? (size_t)(ep - d) : dn;
        }
        if (from_in) {
            h->in_off += used;
            if (h->in_off == h->in.len) {
                vtn_buf_reset(&h->in);
                h->in_off = 0;
            }
        } else {
            p += used;
            n -= used;
        }
        if (e == HPE_OK)
            continue;
        if (e == HPE_PAUSED && h->state == GW_HTTP_WAIT) {
            llhttp_resume(&h->parser);
            /* The caller's buffer is gone once we return; keep the rest. */
            save_rest(h, p, n);
            n = 0;
            h->cbs->on_request(h, &h->req);
            continue;
        }
        int status = h->err_status ? h->err_status : 400;
        const char *why = h->err_reason;
        char tmp[128];
        if (!h->err_status) {
            snprintf(tmp, sizeof tmp, "bad request: %s", llhttp_get_error_reason(&h->parser));
            why = tmp;
        }
        http_fail(h, status, why);
        break;
    }
    save_rest(h, p, n);
    h->in_process = 0;
}

int gw_http_feed(gw_http *h, const char *p, size_t n)
{
    if (h->state == GW_HTTP_DEAD)
        return 1;
    http_process(h, p, n);
    return h->state == GW_HTTP_DEAD || gw_http_buffered(h) >= GW_IN_HIGH;
}

int gw_http_respond(gw_http *h, int status, const char *ctype, size_t ctype_len, const char *extra,
                    size_t extra_len, const char *body, size_t body_len)
{
    if (h->state != GW_HTTP_WAIT)
        return -EINVAL;
    body_release(h); /* on_request is done with it */
    int close = !h->req.keep_alive || h->closing || h->upgrade;
    int rc = write_response(h, status, ctype, ctype_len, extra, extra_len, body, body_len, close,
                            h->req.method == HTTP_HEAD);
    if (rc < 0 || close) {
        h->state = GW_HTTP_DEAD;
        h->sent_close = rc >= 0;
        return rc < 0 ? rc : 0;
    }
    if (rc > 0) {
        h->state = GW_HTTP_FLUSH;
        return 0;
    }
    h->state = GW_HTTP_IDLE;
    http_process(h, NULL, 0);
    return 0;
}

int gw_http_respond_text(gw_http *h, int status, const char *extra, const char *text)
{
    char body[256];
    size_t n = text_body(body, sizeof body, status, text);
    return gw_http_respond(h, status, "text/plain", 10, extra, extra ? strlen(extra) : 0, body, n);
}

void gw_http_resume(gw_http *h)
{
    if (h->state != GW_HTTP_FLUSH)
        return;
    h->state = GW_HTTP_IDLE;
    http_process(h, NULL, 0);
}

void gw_http_timeout(gw_http *h)
{
    switch (h->state) {
    case GW_HTTP_HEAD:
    case GW_HTTP_BODY:
        http_fail(h, 408, "request timeout");
        break;
    case GW_HTTP_IDLE:
    case GW_HTTP_FLUSH:
        h->state = GW_HTTP_DEAD;
        break;
    default:
        break;
    }
}

void gw_http_set_closing(gw_http *h)
{
    h->closing = 1;
}
