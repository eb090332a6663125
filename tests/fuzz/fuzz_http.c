/* libFuzzer target: arbitrary bytes through the gateway's HTTP request
 * handling (gw_http + gw_route), no sockets. The first input byte picks how
 * the input is cut into reads and how the "connection" behaves (answers now
 * or later, writes that complete or queue); the rest is the byte stream.
 * Besides crashes and sanitizer reports, it aborts when the layer breaks a
 * promise: a request bigger than the limits, an answer that is not HTTP/1.1,
 * or a request left unanswered. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gw_internal.h"

typedef struct fz {
    gw_http h;
    gw_http_limits lim;
    int mode;
    int listener;
    int nreq, nresp;
    int deferred; /* a request waits for its answer */
} fz;

static fz *fz_of(gw_http *h)
{
    return gw_container_of(h, fz, h);
}

static void answer(fz *f)
{
    gw_http_req *q = &f->h.req;
    gw_route_result rr;
    gw_route(f->listener, q->method, q->url.data ? q->url.data : "", q->url.len,
             q->ctype.data ? q->ctype.data : "", q->ctype.len, &rr);
    f->deferred = 0;
    int rc;
    if (rr.status)
        rc = gw_http_respond_text(&f->h, rr.status, rr.extra, rr.text);
    else
        rc = gw_http_respond(&f->h, 200, "application/xml", 15, "X-A: b\r\n", 8,
                             q->body.len ? q->body.data : "", q->body.len);
    if (rc != 0)
        abort();
}

static void on_request(gw_http *h, gw_http_req *q)
{
    fz *f = fz_of(h);
    f->nreq++;
    if (q->url.len > f->lim.max_header || q->body.len > f->lim.max_body ||
        q->ctype.len > f->lim.max_header || q->auth.len > f->lim.max_header)
        abort();
    if (f->mode & 0x10)
        answer(f); /* synchronously, from inside the parse loop */
    else
        f->deferred = 1;
}

static int on_send(gw_http *h, const gw_iov *iov, int n)
{
    fz *f = fz_of(h);
    if (n < 1 || iov[0].n < 12 || memcmp(iov[0].p, "HTTP/1.1 ", 9) != 0)
        abort();
    if (memcmp(iov[0].p, "HTTP/1.1 100 ", 13) != 0)
        f->nresp++;
    return (f->mode & 0x20) ? 1 : 0; /* 1: "queued", the layer must wait for resume */
}

static const gw_http_cbs cbs = {.on_request = on_request, .send = on_send};

static void settle(fz *f)
{
    for (int guard = 0; guard < 100000; guard++) {
        if (f->h.state == GW_HTTP_WAIT && f->deferred)
            answer(f);
        else if (f->h.state == GW_HTTP_FLUSH)
            gw_http_resume(&f->h);
        else
            return;
    }
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    fz *f = calloc(1, sizeof *f);
    if (!f)
        return 0;
    f->mode = data[0];
    f->listener = (data[0] & 0x40) ? GW_LISTEN_API : GW_LISTEN_OADR;
    f->lim.max_header = 1024;
    f->lim.max_body = 4096;
    gw_http_init(&f->h, &f->lim, &cbs);
    if (f->mode & 0x80)
        gw_http_set_closing(&f->h);
    data++;
    size--;
    size_t step = (size_t)(f->mode & 0x0f) * 7 + 1; /* 1..106 bytes per read */
    if ((f->mode & 0x0f) == 0x0f)
        step = size ? size : 1; /* one read */
    for (size_t off = 0; off < size; off += step) {
        size_t n = size - off < step ? size - off : step;
        gw_http_feed(&f->h, (const char *)data + off, n);
        settle(f);
    }
    if (f->h.state == GW_HTTP_HEAD || f->h.state == GW_HTTP_BODY)
        gw_http_timeout(&f->h); /* a 408 for what never completed */
    settle(f);
    if (f->h.state == GW_HTTP_WAIT || f->h.state == GW_HTTP_FLUSH)
        abort();
    /* every request got exactly one answer (plus at most one error) */
    if (f->nresp < f->nreq || f->nresp > f->nreq + 1)
        abort();
    gw_http_free(&f->h);
    free(f);
    return 0;
}
