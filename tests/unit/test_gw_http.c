/* The gateway's HTTP layer without sockets: bytes in, requests out, bytes
 * back. Parsing, pipelining order, keep-alive rules, every limit and its
 * status, request smuggling inputs, and routing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "gw_internal.h"

typedef struct th {
    gw_http h;
    gw_http_limits lim;
    vtn_buf out;
    int nreq;
    int auto_respond; /* answer inside on_request */
    int send_ret;     /* what send() reports: 0 written, 1 queued */
    char method[16];
    char url[256];
    char ctype[128];
    char auth[128];
    char body[256];
    size_t body_len;
} th;

static th *th_of(gw_http *h)
{
    return gw_container_of(h, th, h);
}

static void copy(char *dst, size_t cap, const vtn_buf *b)
{
    size_t n = b->len < cap - 1 ? b->len : cap - 1;
    if (n)
        memcpy(dst, b->data, n);
    dst[n] = 0;
}

static void on_request(gw_http *h, gw_http_req *q)
{
    th *t = th_of(h);
    t->nreq++;
    snprintf(t->method, sizeof t->method, "%s", llhttp_method_name((llhttp_method_t)q->method));
    copy(t->url, sizeof t->url, &q->url);
    copy(t->ctype, sizeof t->ctype, &q->ctype);
    copy(t->auth, sizeof t->auth, &q->auth);
    copy(t->body, sizeof t->body, &q->body);
    t->body_len = q->body.len;
    if (t->auto_respond)
        gw_http_respond_text(h, 200, NULL, t->url);
}

static int on_send(gw_http *h, const gw_iov *iov, int n)
{
    th *t = th_of(h);
    for (int i = 0; i < n; i++)
        assert_int_equal(vtn_buf_append(&t->out, iov[i].p, iov[i].n), 0);
    return t->send_ret;
}

static const gw_http_cbs cbs = {.on_request = on_request, .send = on_send};

static th *th_new(size_t max_header, size_t max_body)
{
    th *t = calloc(1, sizeof *t);
    assert_non_null(t);
    t->lim.max_header = max_header;
    t->lim.max_body = max_body;
    vtn_buf_init(&t->out, 1 << 24);
    gw_http_init(&t->h, &t->lim, &cbs);
    return t;
}

static void th_free(th *t)
{
    gw_http_free(&t->h);
    vtn_buf_free(&t->out);
    free(t);
}

static void feed(th *t, const char *s)
{
    gw_http_feed(&t->h, s, strlen(s));
}

static const char *out(th *t)
{
    return t->out.data ? t->out.data : "";
}

/* Status code of the first response in the output. */
static int first_status(th *t)
{
    int st = 0;
    if (sscanf(out(t), "HTTP/1.1 %d", &st) != 1)
        return -1;
    return st;
}

static int count_of(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

#define POLL_REQ(body)                                                                             \
    "POST /OpenADR2/Simple/2.0b/OadrPoll HTTP/1.1\r\nHost: vtn\r\n"                                \
    "Content-Type: application/xml\r\nContent-Length: " #body "\r\n\r\n"

static void parses_a_post(void **state)
{
    (void)state;
    th *t = th_new(16384, 4096);
    feed(t, "POST /OpenADR2/Simple/2.0b/OadrPoll HTTP/1.1\r\nHost: vtn\r\n"
            "Content-Type: application/xml; charset=utf-8\r\nAuthorization: Bearer x\r\n"
            "Content-Length: 11\r\n\r\n<oadrPoll/>");
    assert_int_equal(t->nreq, 1);
    assert_string_equal(t->method, "POST");
    assert_string_equal(t->url, "/OpenADR2/Simple/2.0b/OadrPoll");
    assert_string_equal(t->ctype, "application/xml; charset=utf-8");
    assert_string_equal(t->auth, "Bearer x");
    assert_string_equal(t->body, "<oadrPoll/>");
    assert_int_equal(t->h.state, GW_HTTP_WAIT);
    assert_int_equal(t->out.len, 0); /* nothing is said before the answer */

    assert_int_equal(gw_http_respond(&t->h, 200, "application/xml", 15, NULL, 0, "<r/>", 4), 0);
    assert_int_equal(first_status(t), 200);
    assert_non_null(strstr(out(t), "\r\nContent-Type: application/xml\r\n"));
    assert_non_null(strstr(out(t), "\r\nContent-Length: 4\r\n"));
    assert_non_null(strstr(out(t), "\r\nDate: "));
    assert_null(strstr(out(t), "Connection:")); /* HTTP/1.1 keep-alive is the default */
    assert_non_null(strstr(out(t), "\r\n\r\n<r/>"));
    assert_int_equal(t->h.state, GW_HTTP_IDLE);
    th_free(t);
}

static void parses_byte_by_byte_and_chunked(void **state)
{
    (void)state;
    th *t = th_new(16384, 4096);
    const char *req = "POST /api/v1/vens HTTP/1.1\r\nHost: vtn\r\nTransfer-Encoding: chunked\r\n"
                      "Content-Type: application/json\r\n\r\n"
                      "4\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\n\r\n";
    for (const char *p = req; *p; p++)
        gw_http_feed(&t->h, p, 1);
    assert_int_equal(t->nreq, 1);
    assert_string_equal(t->url, "/api/v1/vens");
    assert_string_equal(t->ctype, "application/json");
    assert_string_equal(t->body, "{\"a\":1}");
    th_free(t);
}

static void pipelined_requests_answered_in_order(void **state)
{
    (void)state;
    th *t = th_new(16384, 4096);
    feed(t, "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n"
            "GET /c HTTP/1.1\r\nHost: x\r\n\r\n");
    /* Only the first is handed out; the others wait for its answer. */
    assert_int_equal(t->nreq, 1);
    assert_string_equal(t->url, "/a");
    assert_true(gw_http_buffered(&t->h) > 0);
    gw_http_respond_text(&t->h, 200, NULL, "first");
    assert_int_equal(t->nreq, 2);
    assert_string_equal(t->url, "/b");
    gw_http_respond_text(&t->h, 201, NULL, "second");
    assert_int_equal(t->nreq, 3);
    assert_string_equal(t->url, "/c");
    gw_http_respond_text(&t->h, 202, NULL, "third");
    const char *o = out(t);
    const char *a = strstr(o, "first"), *b = strstr(o, "second"), *c = strstr(o, "third");
    assert_true(a && b && c && a < b && b < c);
    assert_int_equal(count_of(o, "HTTP/1.1 "), 3);
    assert_int_equal(t->h.state, GW_HTTP_IDLE);
    th_free(t);
}

static void pipelining_waits_for_the_write(void **state)
{
    (void)state;
    th *t = th_new(16384, 4096);
    t->send_ret = 1; /* the socket took nothing: output is queued */
    feed(t, "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n");
    gw_http_respond_text(&t->h, 200, NULL, "one");
    assert_int_equal(t->h.state, GW_HTTP_FLUSH);
    assert_int_equal(t->nreq, 1); /* /b is not parsed while /a's answer is unwritten */
    t->send_ret = 0;
    gw_http_resume(&t->h);
    assert_int_equal(t->nreq, 2);
    assert_string_equal(t->url, "/b");
    th_free(t);
}

static void synchronous_answers_keep_order(void **state)
{
    (void)state;
    th *t = th_new(16384, 4096);
    t->auto_respond = 1;
    char big[4096] = "";
    for (int i = 0; i < 40; i++) {
        char one[64];
        snprintf(one, sizeof one, "GET /r%02d HTTP/1.1\r\nHost: x\r\n\r\n", i);
        strcat(big, one);
    }
    feed(t, big);
    assert_int_equal(t->nreq, 40);
    const char *prev = out(t);
    for (int i = 0; i < 40; i++) {
        char want[16];
        snprintf(want, sizeof want, "/r%02d\n", i);
        const char *p = strstr(out(t), want);
        assert_non_null(p);
        assert_true(p >= prev);
        prev = p;
    }
    th_free(t);
}

static void connection_close_and_http10(void **state)
{
    (void)state;
    th *t = th_new(16384, 4096);
    feed(t, "GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nGET /b HTTP/1.1\r\n\r\n");
    gw_http_respond_text(&t->h, 200, NULL, "a");
    assert_non_null(strstr(out(t), "\r\nConnection: close\r\n"));
    assert_int_equal(t->h.state, GW_HTTP_DEAD);
    assert_int_equal(t->nreq, 1); /* nothing after a close is served */
    th_free(t);

    t = th_new(16384, 4096);
    feed(t, "GET /a HTTP/1.0\r\n\r\n");
    gw_http_respond_text(&t->h, 200, NULL, "a");
    assert_non_null(strstr(out(t), "\r\nConnection: close\r\n"));
    assert_int_equal(t->h.state, GW_HTTP_DEAD);
    th_free(t);

    t = th_new(16384, 4096);
    feed(t, "GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    gw_http_respond_text(&t->h, 200, NULL, "a");
    assert_non_null(strstr(out(t), "\r\nConnection: keep-alive\r\n"));
    assert_int_equal(t->h.state, GW_HTTP_IDLE);
    th_free(t);

    /* draining: the next answer closes */
    t = th_new(16384, 4096);
    feed(t, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n");
    gw_http_set_closing(&t->h);
    gw_http_respond_text(&t->h, 200, NULL, "a");
    assert_non_null(strstr(out(t), "\r\nConnection: close\r\n"));
    assert_int_equal(t->h.state, GW_HTTP_DEAD);
    th_free(t);
}

/* Feeds req into a fresh parser; returns the status the layer answered with
 * itself (and checks it closed), or 0 when a request came through. */
static int status_for(const char *req, size_t max_header, size_t max_body)
{
    th *t = th_new(max_header, max_body);
    gw_http_feed(&t->h, req, strlen(req));
    int st = 0;
    if (t->nreq == 0) {
        st = first_status(t);
        assert_int_equal(t->h.state, GW_HTTP_DEAD);
        assert_non_null(strstr(out(t), "\r\nConnection: close\r\n"));
        assert_non_null(strstr(out(t), "\r\nContent-Type: text/plain\r\n"));
        assert_int_equal(t->h.error_status, st);
    }
    th_free(t);
    return st;
}

static void header_limit_is_431(void **state)
{
    (void)state;
    char req[8192];
    char pad[3000];
    memset(pad, 'a', sizeof pad - 1);
    pad[sizeof pad - 1] = 0;
    snprintf(req, sizeof req, "GET / HTTP/1.1\r\nHost: x\r\nX-Pad: %s\r\n\r\n", pad);
    assert_int_equal(status_for(req, 2048, 4096), 431);
    assert_int_equal(status_for(req, 4096, 4096), 0);
    /* a long request target counts too */
    snprintf(req, sizeof req, "GET /%s HTTP/1.1\r\nHost: x\r\n\r\n", pad);
    assert_int_equal(status_for(req, 2048, 4096), 431);
    /* many tiny headers cannot slip under the limit */
    char many[8192] = "GET / HTTP/1.1\r\n";
    for (int i = 0; i < 600; i++)
        strcat(many, "a:\r\n");
    strcat(many, "\r\n");
    assert_int_equal(status_for(many, 2048, 4096), 431);
}

static void body_limit_is_413(void **state)
{
    (void)state;
    /* declared length over the limit: refused before any body byte */
    assert_int_equal(status_for(POLL_REQ(5000), 16384, 4096), 413);
    /* exactly at the limit is fine */
    char req[8192];
    snprintf(req, sizeof req, POLL_REQ(4096) "%4096d", 7);
    assert_int_equal(status_for(req, 16384, 4096), 0);
    /* chunked bodies count against the same limit */
    char chunked[16384] =
        "POST /api/v1/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
    for (int i = 0; i < 5; i++) {
        strcat(chunked, "3e8\r\n");
        size_t l = strlen(chunked);
        memset(chunked + l, 'b', 1000);
        chunked[l + 1000] = 0;
        strcat(chunked, "\r\n");
    }
    strcat(chunked, "0\r\n\r\n");
    assert_int_equal(status_for(chunked, 16384, 4096), 413);
    assert_int_equal(status_for(chunked, 16384, 5000), 0);
}

static void transfer_codings_but_chunked_are_501(void **state)
{
    (void)state;
    const char *pre = "POST /api/v1/x HTTP/1.1\r\nHost: x\r\n";
    const char *body = "\r\n3\r\nabc\r\n0\r\n\r\n";
    struct {
        const char *te;
        int want;
    } cases[] = {
        {"Transfer-Encoding: chunked\r\n", 0},
        {"Transfer-Encoding: Chunked\r\n", 0},
        {"Transfer-Encoding: gzip, chunked\r\n", 501},
        {"Transfer-Encoding: deflate,chunked\r\n", 501},
        {"Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n", 501},
        {"Transfer-Encoding: x-very-long-coding-name-indeed, chunked\r\n", 501},
        /* not ending in chunked stays a framing error */
        {"Transfer-Encoding: gzip\r\n", 400},
        {"Transfer-Encoding: chunked, gzip\r\n", 400},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char req[512];
        snprintf(req, sizeof req, "%s%s%s", pre, cases[i].te, body);
        int st = status_for(req, 16384, 4096);
        if (st != cases[i].want)
            fail_msg("case %zu (%s): %d, want %d", i, cases[i].te, st, cases[i].want);
    }
    th *t = th_new(16384, 4096);
    feed(t, "POST /api/v1/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n");
    assert_int_equal(first_status(t), 501);
    assert_non_null(strstr(out(t), "only chunked is supported"));
    th_free(t);
}

static void long_request_target_is_414(void **state)
{
    (void)state;
    char req[1024], path[300];
    memset(path, 'a', sizeof path);
    /* "/api/v1/" + 92 bytes = 100: at the limit */
    snprintf(req, sizeof req, "GET /api/v1/%.*s HTTP/1.1\r\nHost: x\r\n\r\n", 92, path);
    th *t = th_new(16384, 4096);
    t->lim.max_url = 100;
    feed(t, req);
    assert_int_equal(t->nreq, 1);
    th_free(t);
    /* one byte more, fed one byte at a time: 414 with the reason */
    snprintf(req, sizeof req, "GET /api/v1/%.*s HTTP/1.1\r\nHost: x\r\n\r\n", 93, path);
    t = th_new(16384, 4096);
    t->lim.max_url = 100;
    for (const char *c = req; *c && t->h.state != GW_HTTP_DEAD; c++)
        gw_http_feed(&t->h, c, 1);
    assert_int_equal(first_status(t), 414);
    assert_non_null(strstr(out(t), "HTTP/1.1 414 URI Too Long\r\n"));
    assert_non_null(strstr(out(t), "request target too long: at most 100 bytes here"));
    assert_int_equal(t->nreq, 0);
    th_free(t);
}

static void chunk_over_the_limit_is_413_at_its_header(void **state)
{
    (void)state;
    th *t = th_new(16384, 4096);
    /* a chunk header announcing more than the body limit: refused before
     * any of its bytes, and nothing of the body was buffered */
    feed(t, "POST /api/v1/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            "1001\r\nabc");
    assert_int_equal(first_status(t), 413);
    assert_non_null(strstr(out(t), "chunk over the body limit"));
    assert_int_equal(t->h.req.body.len, 0);
    assert_int_equal(t->nreq, 0);
    th_free(t);
    /* the second chunk is what passes it */
    t = th_new(16384, 4096);
    feed(t, "POST /api/v1/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            "800\r\n");
    char chunk[2100];
    memset(chunk, 'a', 2048);
    snprintf(chunk + 2048, sizeof chunk - 2048, "\r\n801\r\n");
    feed(t, chunk);
    assert_int_equal(first_status(t), 413);
    assert_int_equal(t->h.req.body.len, 2048);
    th_free(t);
}

static void body_budget_is_503_then_given_back(void **state)
{
    (void)state;
    gw_budget b = {.max = 6000};
    th *t1 = th_new(16384, 4096), *t2 = th_new(16384, 4096), *t3 = th_new(16384, 4096);
    t1->lim.budget = t2->lim.budget = t3->lim.budget = &b;
    t1->lim.retry_after = t2->lim.retry_after = t3->lim.retry_after = "Retry-After: 7\r\n";
    /* a declared body takes its length when its header is complete */
    feed(t1, POLL_REQ(4000) "abc");
    assert_int_equal(t1->h.state, GW_HTTP_BODY);
    assert_int_equal(GW_GET(b.used), 4000);
    /* one that would pass the budget is refused before its body: 503 */
    feed(t2, POLL_REQ(3000));
    assert_int_equal(first_status(t2), 503);
    assert_non_null(strstr(out(t2), "\r\nRetry-After: 7\r\n"));
    assert_non_null(strstr(out(t2), "\r\nConnection: close\r\n"));
    assert_non_null(strstr(out(t2), "too many request bodies in progress"));
    assert_int_equal(t2->h.state, GW_HTTP_DEAD);
    assert_int_equal(GW_GET(b.refused), 1);
    assert_int_equal(GW_GET(b.used), 4000);
    /* chunked bodies take each chunk at its header */
    feed(t3, "POST /api/v1/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
             "3e8\r\n");
    assert_int_equal(GW_GET(b.used), 5000);
    char rest[1100];
    memset(rest, 'c', 1000);
    snprintf(rest + 1000, sizeof rest - 1000, "\r\n3e9\r\n");
    feed(t3, rest);
    assert_int_equal(first_status(t3), 503);
    assert_int_equal(GW_GET(b.used), 4000); /* the failed request gave its part back */
    /* an answered request gives its bytes back; so does a closed one */
    char body[4000];
    memset(body, 'x', sizeof body);
    gw_http_feed(&t1->h, body, sizeof body - 3);
    assert_int_equal(t1->nreq, 1);
    assert_int_equal(GW_GET(b.used), 4000); /* in flight: still held */
    assert_int_equal(gw_http_respond_text(&t1->h, 200, NULL, "ok"), 0);
    assert_int_equal(GW_GET(b.used), 0);
    feed(t1, POLL_REQ(3500));
    assert_int_equal(GW_GET(b.used), 3500);
    th_free(t1);
    assert_int_equal(GW_GET(b.used), 0);
    th_free(t2);
    th_free(t3);

    /* bodies over 16 KiB fill at most three quarters: the rest stays for
     * small messages */
    gw_budget big = {.max = 80000};
    th *a = th_new(16384, 65536), *c = th_new(16384, 65536), *d = th_new(16384, 65536);
    a->lim.budget = c->lim.budget = d->lim.budget = &big;
    feed(a, POLL_REQ(40000));
    assert_int_equal(GW_GET(big.used), 40000);
    feed(c, POLL_REQ(30000)); /* 70000 > 60000 */
    assert_int_equal(first_status(c), 503);
    feed(d, POLL_REQ(16384)); /* small: may use the last quarter */
    assert_int_equal(d->h.state, GW_HTTP_BODY);
    assert_int_equal(GW_GET(big.used), 56384);
    th_free(a);
    th_free(c);
    th_free(d);
    assert_int_equal(GW_GET(big.used), 0);
}

static int refuse_without_token(gw_http *h, const gw_http_req *q, const char **why,
                                const char **extra)
{
    (void)h;
    if (q->auth.len == 8 && memcmp(q->auth.data, "Bearer k", 8) == 0)
        return 0;
    *why = "missing or wrong bearer token";
    *extra = "WWW-Authenticate: Bearer\r\n";
    return 401;
}

static void head_check_refuses_before_the_body(void **state)
{
    (void)state;
    static const gw_http_cbs checked = {
        .on_request = on_request, .send = on_send, .on_head = refuse_without_token};
    gw_budget b = {.max = 1 << 20};
    th *t = th_new(16384, 4096);
    t->lim.budget = &b;
    gw_http_init(&t->h, &t->lim, &checked);
    feed(t, "POST /api/v1/vens HTTP/1.1\r\nHost: x\r\nContent-Length: 4000\r\n\r\nxyz");
    assert_int_equal(first_status(t), 401);
    assert_non_null(strstr(out(t), "\r\nWWW-Authenticate: Bearer\r\n"));
    assert_non_null(strstr(out(t), "missing or wrong bearer token"));
    assert_int_equal(t->h.req.body.len, 0); /* not one body byte kept */
    assert_int_equal(GW_GET(b.used), 0);    /* nor reserved */
    assert_int_equal(t->nreq, 0);
    th_free(t);
    t = th_new(16384, 4096);
    gw_http_init(&t->h, &t->lim, &checked);
    feed(t, "POST /api/v1/vens HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\n"
            "Content-Length: 2\r\n\r\n{}");
    assert_int_equal(t->nreq, 1);
    assert_string_equal(t->body, "{}");
    th_free(t);
}

static void timeouts_are_408_or_silent(void **state)
{
    (void)state;
    th *t = th_new(16384, 4096);
    feed(t, "POST /OpenADR2/Simple/2.0b/OadrPoll HTTP/1.1\r\nHost: x\r\n");
    assert_int_equal(t->h.state, GW_HTTP_HEAD);
    gw_http_timeout(&t->h);
    assert_int_equal(first_status(t), 408);
    assert_int_equal(t->h.state, GW_HTTP_DEAD);
    th_free(t);

    t = th_new(16384, 4096);
    feed(t, POLL_REQ(10) "abc");
    assert_int_equal(t->h.state, GW_HTTP_BODY);
    gw_http_timeout(&t->h);
    assert_int_equal(first_status(t), 408);
    th_free(t);

    /* idle keep-alive connection: closed without a word */
    t = th_new(16384, 4096);
    feed(t, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n");
    gw_http_respond_text(&t->h, 200, NULL, "a");
    size_t before = t->out.len;
    gw_http_timeout(&t->h);
    assert_int_equal(t->h.state, GW_HTTP_DEAD);
    assert_int_equal(t->out.len, before);
    th_free(t);
}

static void smuggling_inputs_are_400(void **state)
{
    (void)state;
    /* Transfer-Encoding and Content-Length together */
    assert_int_equal(
        status_for("POST /api/v1/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                   "Content-Length: 3\r\n\r\n0\r\n\r\n",
                   16384, 4096),
        400);
    assert_int_equal(status_for("POST /api/v1/x HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
                                "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                                16384, 4096),
                     400);
    /* CVE-2023-30589: a CR without LF inside a header value */
    assert_int_equal(status_for("GET / HTTP/1.1\r\nHost: x\r\nX-Abc: \rxTransfer-Encoding: chunked"
                                "\r\n\r\n1\r\nA\r\n0\r\n\r\n",
                                16384, 4096),
                     400);
    /* bare LF line ends */
    assert_int_equal(status_for("GET / HTTP/1.1\nHost: x\n\n", 16384, 4096), 400);
    assert_int_equal(status_for("GET / HTTP/1.1\r\nHost: x\n\r\n", 16384, 4096), 400);
    /* obs-fold */
    assert_int_equal(status_for("GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n", 16384, 4096),
                     400);
    /* two different Content-Length values */
    assert_int_equal(status_for("POST /api/v1/x HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n"
                                "Content-Length: 2\r\n\r\nab",
                                16384, 4096),
                     400);
    /* whitespace before the colon */
    assert_int_equal(status_for("GET / HTTP/1.1\r\nHost : x\r\n\r\n", 16384, 4096), 400);
    /* a Transfer-Encoding that does not end in chunked on a request */
    assert_int_equal(status_for("POST /api/v1/x HTTP/1.1\r\nHost: x\r\n"
                                "Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
                                16384, 4096),
                     400);
    /* not HTTP at all */
    assert_int_equal(status_for("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 16384, 4096), 400);
    /* Host: required once in HTTP/1.1 (RFC 9112 3.2), not in HTTP/1.0 */
    assert_int_equal(status_for("GET / HTTP/1.1\r\n\r\n", 16384, 4096), 400);
    assert_int_equal(status_for("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 16384, 4096), 400);
    assert_int_equal(status_for("GET / HTTP/1.0\r\n\r\n", 16384, 4096), 0);
    /* a second Content-Type */
    assert_int_equal(status_for("POST /api/v1/x HTTP/1.1\r\nHost: x\r\nContent-Type: a/b\r\n"
                                "Content-Type: c/d\r\nContent-Length: 0\r\n\r\n",
                                16384, 4096),
                     400);
}

static void other_versions_are_refused(void **state)
{
    (void)state;
    assert_int_equal(status_for("GET / HTTP/2.0\r\n\r\n", 16384, 4096), 505);
    assert_int_equal(status_for("GET / HTTP/1.2\r\n\r\n", 16384, 4096), 400);
}

static void garbage_after_a_good_request_waits_its_turn(void **state)
{
    (void)state;
    th *t = th_new(16384, 4096);
    feed(t, "GET /a HTTP/1.1\r\nHost: x\r\n\r\nBLAH\r\n\r\n");
    assert_int_equal(t->nreq, 1);
    assert_int_equal(t->out.len, 0); /* the 400 must not overtake /a's answer */
    gw_http_respond_text(&t->h, 200, NULL, "good");
    const char *o = out(t);
    const char *good = strstr(o, "200 OK"), *bad = strstr(o, "400 Bad Request");
    assert_true(good && bad && good < bad);
    assert_int_equal(t->h.state, GW_HTTP_DEAD);
    feed(t, "GET /b HTTP/1.1\r\n\r\n"); /* ignored once dead */
    assert_int_equal(t->nreq, 1);
    th_free(t);
}

static void expect_continue_and_head(void **state)
{
    (void)state;
    th *t = th_new(16384, 4096);
    feed(t,
         "POST /api/v1/x HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n");
    assert_string_equal(out(t), "HTTP/1.1 100 Continue\r\n\r\n");
    feed(t, "hi");
    assert_int_equal(t->nreq, 1);
    assert_string_equal(t->body, "hi");
    th_free(t);

    t = th_new(16384, 4096);
    feed(t, "HEAD /api/v1/x HTTP/1.1\r\nHost: x\r\n\r\n");
    gw_http_respond(&t->h, 200, "application/json", 16, NULL, 0, "{\"a\":1}", 7);
    assert_non_null(strstr(out(t), "Content-Length: 7\r\n"));
    assert_null(strstr(out(t), "{\"a\":1}")); /* no body after HEAD */
    th_free(t);

    t = th_new(16384, 4096);
    feed(t, "DELETE /api/v1/x HTTP/1.1\r\nHost: x\r\n\r\n");
    gw_http_respond(&t->h, 204, "application/json", 16, NULL, 0, "", 0);
    assert_int_equal(first_status(t), 204);
    assert_null(strstr(out(t), "Content-Length"));
    th_free(t);
}

static void upgrade_is_answered_then_closed(void **state)
{
    (void)state;
    th *t = th_new(16384, 4096);
    feed(t, "GET /api/v1/x HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
            "\x81\x85garbage");
    assert_int_equal(t->nreq, 1);
    gw_http_respond_text(&t->h, 404, NULL, "not found");
    assert_non_null(strstr(out(t), "Connection: close"));
    assert_int_equal(t->h.state, GW_HTTP_DEAD);
    th_free(t);
}

static void route(int kind, int method, const char *url, const char *ct, gw_route_result *r)
{
    gw_route(kind, method, url, strlen(url), ct, strlen(ct), r);
}

static void routes(void **state)
{
    (void)state;
    gw_route_result r;
    route(GW_LISTEN_OADR, HTTP_POST, "/OpenADR2/Simple/2.0b/OadrPoll", "application/xml", &r);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.kind, VTN_KIND_OADR);
    assert_int_equal(r.route, GW_ROUTE_POLL);
    route(GW_LISTEN_OADR, HTTP_POST, "/OpenADR2/Simple/2.0b/EiRegisterParty",
          "Text/XML ; charset=UTF-8", &r);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.route, GW_ROUTE_REGISTER);
    const char *svc[] = {"EiEvent", "EiReport", "EiOpt"};
    for (int i = 0; i < 3; i++) {
        char u[128];
        snprintf(u, sizeof u, "/OpenADR2/Simple/2.0b/%s?x=1", svc[i]);
        route(GW_LISTEN_OADR, HTTP_POST, u, "application/xml", &r);
        assert_int_equal(r.status, 0);
        assert_string_equal(gw_route_name(r.route), svc[i]);
    }
    route(GW_LISTEN_OADR, HTTP_GET, "/OpenADR2/Simple/2.0b/OadrPoll", "", &r);
    assert_int_equal(r.status, 405);
    assert_string_equal(r.extra, "Allow: POST\r\n");
    route(GW_LISTEN_OADR, HTTP_POST, "/OpenADR2/Simple/2.0b/OadrPoll", "application/json", &r);
    assert_int_equal(r.status, 415);
    route(GW_LISTEN_OADR, HTTP_POST, "/OpenADR2/Simple/2.0b/OadrPoll", "", &r);
    assert_int_equal(r.status, 415);
    route(GW_LISTEN_OADR, HTTP_POST, "/OpenADR2/Simple/2.0b/OadrPoll", "application/xmlx", &r);
    assert_int_equal(r.status, 415);
    route(GW_LISTEN_OADR, HTTP_POST, "/OpenADR2/Simple/2.0b/OadrPollx", "application/xml", &r);
    assert_int_equal(r.status, 404);
    route(GW_LISTEN_OADR, HTTP_POST, "/OpenADR2/Simple/2.0b/", "application/xml", &r);
    assert_int_equal(r.status, 404);
    route(GW_LISTEN_OADR, HTTP_POST, "/api/v1/vens", "application/json", &r);
    assert_int_equal(r.status, 404); /* the API lives on its own listener */
    route(GW_LISTEN_API, HTTP_DELETE, "/api/v1/vens/ven-1", "", &r);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.kind, VTN_KIND_API);
    route(GW_LISTEN_API, HTTP_GET, "/api/v1?limit=2", "", &r);
    assert_int_equal(r.status, 0);
    route(GW_LISTEN_API, HTTP_GET, "/api/v10/vens", "", &r);
    assert_int_equal(r.status, 404);
    route(GW_LISTEN_API, HTTP_POST, "/OpenADR2/Simple/2.0b/OadrPoll", "application/xml", &r);
    assert_int_equal(r.status, 404);
    /* absolute-form: the origin-form part is what workers see */
    route(GW_LISTEN_OADR, HTTP_POST, "http://vtn.example:8080/OpenADR2/Simple/2.0b/EiEvent",
          "application/xml", &r);
    assert_int_equal(r.status, 0);
    assert_int_equal((int)r.path_len, (int)strlen("/OpenADR2/Simple/2.0b/EiEvent"));
    assert_memory_equal(r.path, "/OpenADR2/Simple/2.0b/EiEvent", r.path_len);
    route(GW_LISTEN_API, HTTP_GET, "http://host", "", &r);
    assert_int_equal(r.status, 404);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parses_a_post),
        cmocka_unit_test(parses_byte_by_byte_and_chunked),
        cmocka_unit_test(pipelined_requests_answered_in_order),
        cmocka_unit_test(pipelining_waits_for_the_write),
        cmocka_unit_test(synchronous_answers_keep_order),
        cmocka_unit_test(connection_close_and_http10),
        cmocka_unit_test(header_limit_is_431),
        cmocka_unit_test(body_limit_is_413),
        cmocka_unit_test(transfer_codings_but_chunked_are_501),
        cmocka_unit_test(long_request_target_is_414),
        cmocka_unit_test(chunk_over_the_limit_is_413_at_its_header),
        cmocka_unit_test(body_budget_is_503_then_given_back),
        cmocka_unit_test(head_check_refuses_before_the_body),
        cmocka_unit_test(timeouts_are_408_or_silent),
        cmocka_unit_test(smuggling_inputs_are_400),
        cmocka_unit_test(other_versions_are_refused),
        cmocka_unit_test(garbage_after_a_good_request_waits_its_turn),
        cmocka_unit_test(expect_continue_and_head),
        cmocka_unit_test(upgrade_is_answered_then_closed),
        cmocka_unit_test(routes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
