/* vtn-gateway --push-check URL: a TLS handshake with a push-mode VEN's
 * endpoint through the push client engine (push_tls.h) and this gateway's
 * settings, over a plain blocking socket, so an operator can see whether
 * pushes to that VEN would be trusted both ways. Sends no OpenADR message. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "gw_internal.h"
#include "push_tls.h"
#include "vtn/log.h"
#include "vtn/net.h"

#define PUSH_VERDICT_WAIT_MS 2000 /* TLS 1.3: how long to wait for the VEN's verdict on us */

/* https://host[:port][/path...]; the path, query and fragment are ignored. */
static int parse_push_url(const char *url, gw_push_url *t, char *err, size_t errlen)
{
    char why[400];
    if (gw_push_url_parse(url, t, why, sizeof why) != 0) {
        snprintf(err, errlen, "--push-check: %s", why);
        return -EINVAL;
    }
    if (!t->https) {
        snprintf(err, errlen, "--push-check: \"%s\" is not an https:// URL (pushes use TLS)", url);
        return -EINVAL;
    }
    return 0;
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int left_ms(long long deadline)
{
    long long d = deadline - now_ms();
    return d < 0 ? 0 : d > 3600000 ? 3600000 : (int)d;
}

/* Waits for events on fd until deadline: 1 ready, 0 timed out, -errno. */
static int wait_fd(int fd, short events, long long deadline)
{
    for (;;) {
        struct pollfd p = {.fd = fd, .events = events};
        int r = poll(&p, 1, left_ms(deadline));
        if (r >= 0)
            return r;
        if (errno != EINTR)
            return -errno;
    }
}

/* A connected non-blocking TCP socket to one of host's addresses, or -1
 * with the reason in err. */
static int connect_to(const gw_push_url *t, long long deadline, char *addr, size_t addrlen,
                      char *err, size_t errlen)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res, *ai;
    int g = getaddrinfo(t->host, t->port, &hints, &res);
    if (g != 0) {
        snprintf(err, errlen, "cannot resolve %s: %s", t->host, gai_strerror(g));
        return -1;
    }
    snprintf(err, errlen, "no address for %s", t->host);
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        int e = 0;
        socklen_t el = sizeof e;
        vtn_addr_format(ai->ai_addr, addr, addrlen);
        if (fd < 0) {
            snprintf(err, errlen, "socket: %s", strerror(errno));
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
            e = errno;
            if (e == EINPROGRESS) {
                int r = wait_fd(fd, POLLOUT, deadline);
                if (r == 0)
                    e = ETIMEDOUT;
                else if (r < 0)
                    e = -r;
                else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el) != 0)
                    e = errno;
            }
        }
        if (e == 0) {
            freeaddrinfo(res);
            return fd;
        }
        snprintf(err, errlen, "connect to %s: %s", addr, strerror(e));
        close(fd);
    }
    freeaddrinfo(res);
    return -1;
}

/* Sends all of b (then empties it); 0, or -1 with the reason in err. */
static int send_all(int fd, vtn_buf *b, long long deadline, char *err, size_t errlen)
{
    size_t off = 0;
    while (off < b->len) {
        ssize_t n = send(fd, b->data + off, b->len - off, MSG_NOSIGNAL);
        if (n > 0) {
            off += (size_t)n;
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            if (wait_fd(fd, POLLOUT, deadline) > 0 || errno == EINTR)
                continue;
            snprintf(err, errlen, "timed out sending to the VEN");
            return -1;
        }
        snprintf(err, errlen, "send: %s", strerror(errno));
        return -1;
    }
    vtn_buf_reset(b);
    return 0;
}

/* One logfmt line on stdout: what an operator (or a script) reads. */
static void print_result(const char *url, const char *addr, gw_push_tls *t, const char *client,
                         const char *error)
{
    char q[700];
    printf("push_check result=%s url=%s addr=%s", error ? "failed" : "ok",
           vtn_log_quote(q, sizeof q, url, strlen(url)), addr[0] ? addr : "-");
    if (t != NULL) {
        const char *subj = gw_push_tls_subject(t);
        printf(" protocol=%s cipher=%s", *gw_push_tls_version(t) ? gw_push_tls_version(t) : "-",
               *gw_push_tls_cipher(t) ? gw_push_tls_cipher(t) : "-");
        printf(" ven_subject=%s", vtn_log_quote(q, sizeof q, subj, strlen(subj)));
        printf(" ven_fingerprint=%s",
               *gw_push_tls_fingerprint(t) ? gw_push_tls_fingerprint(t) : "-");
        printf(" verify=%s", gw_push_tls_peer_verified(t)  ? "ok"
                             : *gw_push_tls_fingerprint(t) ? "failed"
                                                           : "-");
    }
    printf(" client_cert=%s", client);
    if (error)
        printf(" error=%s", vtn_log_quote(q, sizeof q, error, strlen(error)));
    printf("\n");
    fflush(stdout);
}

/* Connects, completes the handshake, waits for the VEN's verdict on our
 * certificate, says goodbye. Exit status: 0 ok, 1 refused either way. */
static int push_check_run(const gw_config *cfg, const char *url, const gw_push_url *pt)
{
    char err[512] = "", addr[80] = "";
    const char *client = "-";
    gw_push_tls_settings ps = {.cert = cfg->push_cert,
                               .ca = cfg->push_ca,
                               .protocols = cfg->push_protocols,
                               .timeout_ms = cfg->push_timeout_ms};
    gw_push_tls_ctx *ctx = NULL;
    gw_push_tls *t = NULL;
    vtn_buf plain, wire;
    int fd = -1, status = 1, rc;
    long long deadline, verdict_by = 0;
    char buf[16384];

    if (!cfg->push_cert || !*cfg->push_cert) {
        fprintf(stderr, "vtn-gateway: --push-check needs VTN_PUSH_CERT and VTN_PUSH_CA\n");
        return 2;
    }
    if ((rc = gw_push_tls_ctx_new(&ps, &ctx, err, sizeof err)) != 0) {
        fprintf(stderr, "vtn-gateway: %s\n", rc == -ENOMEM ? "out of memory" : err);
        return 2;
    }
    vtn_buf_init(&plain, 64 * 1024); /* nothing is asked for; bounds what a VEN may send */
    vtn_buf_init(&wire, 256 * 1024);
    deadline = now_ms() + gw_push_tls_ctx_timeout_ms(ctx);
    if ((fd = connect_to(pt, deadline, addr, sizeof addr, err, sizeof err)) < 0)
        goto done;
    if (gw_push_tls_new(ctx, pt->host, &t) != 0) {
        snprintf(err, sizeof err, "cannot start TLS for host %s", pt->host);
        goto done;
    }
    rc = gw_push_tls_feed(t, NULL, 0, &plain, &wire);
    for (;;) {
        if (wire.len > 0 && send_all(fd, &wire, deadline, err, sizeof err) < 0)
            goto done;
        if (rc < 0) {
            snprintf(err, sizeof err, "%s", gw_push_tls_error(t));
            goto done;
        }
        if (gw_push_tls_peer_accepted(t)) {
            client = "accepted";
            break;
        }
        if (rc == GW_PUSH_TLS_EOF) {
            snprintf(err, sizeof err,
                     "the VEN closed the TLS connection right after the handshake");
            goto done;
        }
        if (gw_push_tls_handshake_done(t) && verdict_by == 0) {
            /* TLS 1.3: the VEN checks our certificate after our side is done */
            verdict_by = now_ms() + PUSH_VERDICT_WAIT_MS;
            if (verdict_by > deadline)
                verdict_by = deadline;
        }
        int r = wait_fd(fd, POLLIN, verdict_by ? verdict_by : deadline);
        if (r == 0 && verdict_by) {
            client = "unconfirmed";
            fprintf(stderr,
                    "vtn-gateway: TLS 1.3: the VEN sent nothing after the handshake; it did not "
                    "refuse our certificate, but a refusal could still come with a request\n");
            break;
        }
        if (r == 0) {
            snprintf(err, sizeof err, "timed out after %lld ms during the TLS handshake",
                     gw_push_tls_ctx_timeout_ms(ctx));
            goto done;
        }
        ssize_t n = r < 0 ? -1 : recv(fd, buf, sizeof buf, 0);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (n <= 0) {
            snprintf(err, sizeof err, "the VEN closed the connection%s%s",
                     n < 0 ? ": " : " during the TLS handshake", n < 0 ? strerror(errno) : "");
            goto done;
        }
        rc = gw_push_tls_feed(t, buf, (size_t)n, &plain, &wire);
    }
    status = 0;
    if (gw_push_tls_shutdown(t, &wire) == 0 && wire.len > 0)
        (void)send_all(fd, &wire, deadline, err, sizeof err);
    err[0] = '\0';
done:
    if (status != 0 && (strstr(err, "refused our client certificate") != NULL ||
                        strstr(err, "asked for a client certificate") != NULL))
        client = "refused";
    print_result(url, addr, t, client, status != 0 ? err : NULL);
    if (status != 0)
        fprintf(stderr, "vtn-gateway: push check failed: %s\n", err);
    if (fd >= 0)
        close(fd);
    gw_push_tls_free(&t);
    gw_push_tls_ctx_free(&ctx);
    vtn_buf_free(&plain);
    vtn_buf_free(&wire);
    return status;
}

int gw_push_check(const gw_config *cfg, const char *url)
{
    gw_push_url pt;
    char err[512];

    if (parse_push_url(url, &pt, err, sizeof err) < 0) {
        fprintf(stderr, "vtn-gateway: %s\n", err);
        return 2;
    }
    return push_check_run(cfg, url, &pt);
}
