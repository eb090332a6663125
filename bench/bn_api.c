/* The events mode's side channels, both blocking and short: the VTN's
 * management API (JSON over one keep-alive HTTP/1.1 connection, bearer
 * token) to create the program, groups and events, and Redis's INFO memory.
 * They run on the fleet's loop thread on purpose: while an event is being
 * created no poll reply is handled, so the bench knows the new eventID
 * before any VEN can report it (see bn_client.c). */
#include <errno.h>
#include <llhttp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "bn_internal.h"

#define BN_API_REPLY_MAX (4u << 20)

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* A connected TCP socket to addr, or a negative errno. */
static int tcp_open(const struct sockaddr_storage *addr)
{
    int fd = socket(addr->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    socklen_t len =
        addr->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    if (connect(fd, (const struct sockaddr *)addr, len) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -EIO;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads into buf until done(ud) says the reply is whole; bounded by the
 * deadline. 0, -ETIMEDOUT, -EIO (EOF or error before the end). */
static int read_until(int fd, uint64_t deadline, int (*feed)(void *ud, const char *p, size_t n),
                      void *ud)
{
    char buf[16384];
    for (;;) {
        uint64_t now = now_ms();
        if (now >= deadline)
            return -ETIMEDOUT;
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        int pr = poll(&pf, 1, (int)(deadline - now));
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0)
            return pr == 0 ? -ETIMEDOUT : -EIO;
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return feed(ud, NULL, 0) == 1 ? 0 : -EIO;
        int rc = feed(ud, buf, (size_t)n);
        if (rc != 0)
            return rc == 1 ? 0 : -EIO;
    }
}

/* ---- the management API ------------------------------------------------- */

typedef struct api_reply {
    llhttp_t parser;
    vtn_buf *body;
    int done, keep_alive, overflow;
} api_reply;

static int on_body(llhttp_t *p, const char *at, size_t len)
{
    api_reply *r = p->data;
    if (!r->overflow && vtn_buf_append(r->body, at, len) < 0)
        r->overflow = 1;
    return 0;
}

static int on_complete(llhttp_t *p)
{
    api_reply *r = p->data;
    r->done = 1;
    r->keep_alive = llhttp_should_keep_alive(p);
    return HPE_PAUSED;
}

/* 1: the reply is whole, 0: more, -1: malformed. */
static int api_feed(void *ud, const char *p, size_t n)
{
    api_reply *r = ud;
    llhttp_errno_t e = p ? llhttp_execute(&r->parser, p, n) : llhttp_finish(&r->parser);
    if (r->done)
        return 1;
    return e == HPE_OK ? 0 : -1;
}

void bn_api_init(bn_api *a, const struct sockaddr_storage *addr, const char *host,
                 const char *token, uint64_t timeout_ms)
{
    memset(a, 0, sizeof *a);
    a->fd = -1;
    a->addr = *addr;
    snprintf(a->host, sizeof a->host, "%s", host);
    snprintf(a->token, sizeof a->token, "%s", token ? token : "");
    a->timeout_ms = timeout_ms;
}

void bn_api_close(bn_api *a)
{
    if (a->fd >= 0)
        close(a->fd);
    a->fd = -1;
}

int bn_api_call(bn_api *a, const char *method, const char *path, const char *body, size_t blen,
                vtn_buf *reply, int *status)
{
    vtn_buf req;
    vtn_buf_init(&req, blen + 1024);
    int rc = vtn_buf_printf(&req, "%s %s HTTP/1.1\r\nHost: %s\r\n", method, path, a->host);
    if (rc == 0 && a->token[0])
        rc = vtn_buf_printf(&req, "Authorization: Bearer %s\r\n", a->token);
    if (rc == 0 && body)
        rc =
            vtn_buf_printf(&req, "Content-Type: application/json\r\nContent-Length: %zu\r\n", blen);
    if (rc == 0)
        rc = vtn_buf_appends(&req, "\r\n");
    if (rc == 0 && body)
        rc = vtn_buf_append(&req, body, blen);
    if (rc < 0) {
        vtn_buf_free(&req);
        return -ENOMEM;
    }
    static llhttp_settings_t settings;
    if (settings.on_body == NULL) {
        llhttp_settings_init(&settings);
        settings.on_body = on_body;
        settings.on_message_complete = on_complete;
    }
    /* A kept-alive connection the server closed meanwhile fails at once:
     * one more try on a new connection. */
    for (int attempt = 0; attempt < 2; attempt++) {
        int reused = a->fd >= 0;
        if (a->fd < 0) {
            a->fd = tcp_open(&a->addr);
            if (a->fd < 0) {
                rc = a->fd;
                a->fd = -1;
                break;
            }
        }
        api_reply r = {.body = reply};
        vtn_buf_reset(reply);
        llhttp_init(&r.parser, HTTP_RESPONSE, &settings);
        r.parser.data = &r;
        rc = write_all(a->fd, req.data, req.len);
        if (rc == 0)
            rc = read_until(a->fd, now_ms() + a->timeout_ms, api_feed, &r);
        if (rc == 0 && r.overflow)
            rc = -ENOBUFS;
        if (rc == 0) {
            *status = llhttp_get_status_code(&r.parser);
            if (!r.keep_alive)
                bn_api_close(a);
            break;
        }
        bn_api_close(a);
        if (!reused || rc == -ETIMEDOUT)
            break;
    }
    vtn_buf_free(&req);
    return rc;
}

/* ---- Redis INFO --------------------------------------------------------- */

typedef struct bulk {
    vtn_buf *out;
    long long want; /* bulk length from the "$N" line, -1 until read */
} bulk;

static int bulk_feed(void *ud, const char *p, size_t n)
{
    bulk *b = ud;
    if (p == NULL)
        return -1;
    if (vtn_buf_append(b->out, p, n) < 0)
        return -1;
    if (b->want < 0) {
        const char *nl = memchr(b->out->data, '\n', b->out->len);
        if (nl == NULL)
            return 0;
        if (b->out->data[0] == '+')
            return 1; /* a status reply: +OK */
        if (b->out->data[0] != '$')
            return -1; /* an error reply, e.g. -NOAUTH */
        b->want = atoll(b->out->data + 1) + (long long)(nl - b->out->data) + 1 + 2;
    }
    return (long long)b->out->len >= b->want ? 1 : 0;
}

long long bn_info_field(const char *info, size_t len, const char *name)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i + nl + 1 < len;) {
        const char *eol = memchr(info + i, '\n', len - i);
        size_t end = eol ? (size_t)(eol - info) : len;
        if (end - i > nl && memcmp(info + i, name, nl) == 0 && info[i + nl] == ':')
            return atoll(info + i + nl + 1);
        i = end + 1;
    }
    return -1;
}

int bn_redis_inline(const struct sockaddr_storage *addr, const char *command, vtn_buf *out)
{
    int fd = tcp_open(addr);
    if (fd < 0)
        return fd;
    char cmd[128];
    int n = snprintf(cmd, sizeof cmd, "%s\r\n", command);
    if (n < 0 || (size_t)n >= sizeof cmd) {
        close(fd);
        return -EINVAL;
    }
    vtn_buf_reset(out);
    bulk b = {out, -1};
    int rc = write_all(fd, cmd, (size_t)n);
    if (rc == 0)
        rc = read_until(fd, now_ms() + 5000, bulk_feed, &b);
    close(fd);
    return rc;
}
