#include "vtn/ops.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "vtn/log.h"
#include "vtn/metrics.h"
#include "vtn/net.h"

#define OPS_MAX_REQUEST 8192
#define OPS_MAX_RESPONSE (8u << 20)

struct vtn_ops {
    int fd;
    int wake[2]; /* written on stop so poll() returns */
    int port;
    pthread_t thread;
    vtn_ops_metrics_fn metrics;
    vtn_ops_ready_fn ready;
    void *ud;
    atomic_int draining;
};

static void send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0) {
            if (w < 0 && errno == EINTR)
                continue;
            return;
        }
        p += w;
        n -= (size_t)w;
    }
}

static void respond(int fd, int status, const char *reason, const char *ctype, const char *body,
                    size_t n, int head_only)
{
    char hdr[256];
    int h = snprintf(hdr, sizeof hdr,
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Cache-Control: no-store\r\nConnection: close\r\n\r\n",
                     status, reason, ctype, n);
    send_all(fd, hdr, (size_t)h);
    if (!head_only)
        send_all(fd, body, n);
}

static void serve(vtn_ops *ops, int fd)
{
    char req[OPS_MAX_REQUEST + 1];
    size_t len = 0;
    struct timeval tv = {2, 0}; /* a slow or idle client cannot hold the ops thread */
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    while (len < OPS_MAX_REQUEST) {
        ssize_t r = recv(fd, req + len, OPS_MAX_REQUEST - len, 0);
        if (r <= 0)
            return;
        len += (size_t)r;
        req[len] = '\0';
        if (strstr(req, "\r\n\r\n") || strstr(req, "\n\n"))
            break;
    }
    req[len] = '\0';
    char method[8], path[256];
    if (sscanf(req, "%7s %255s HTTP/1.", method, path) != 2) {
        respond(fd, 400, "Bad Request", "text/plain", "bad request\n", 12, 0);
        return;
    }
    int head = strcmp(method, "HEAD") == 0;
    if (strcmp(method, "GET") != 0 && !head) {
        respond(fd, 405, "Method Not Allowed", "text/plain", "use GET\n", 8, 0);
        return;
    }
    char *q = strchr(path, '?');
    if (q)
        *q = '\0';
    if (strcmp(path, "/healthz") == 0) {
        respond(fd, 200, "OK", "text/plain", "ok\n", 3, head);
    } else if (strcmp(path, "/readyz") == 0) {
        char why[256] = "";
        int ready = !atomic_load(&ops->draining);
        if (!ready)
            snprintf(why, sizeof why, "draining");
        else if (ops->ready)
            ready = ops->ready(ops->ud, why, sizeof why);
        char body[300];
        int n = snprintf(body, sizeof body, "%s%s%s\n", ready ? "ready" : "not ready",
                         why[0] ? ": " : "", why);
        respond(fd, ready ? 200 : 503, ready ? "OK" : "Service Unavailable", "text/plain", body,
                (size_t)n, head);
    } else if (strcmp(path, "/metrics") == 0) {
        vtn_buf b;
        vtn_buf_init(&b, OPS_MAX_RESPONSE);
        int rc = ops->metrics ? ops->metrics(&b, ops->ud) : 0;
        if (rc == 0)
            rc = vtn_metrics_process(&b);
        if (rc == 0)
            respond(fd, 200, "OK", "text/plain; version=0.0.4", b.data ? b.data : "", b.len, head);
        else
            respond(fd, 500, "Internal Server Error", "text/plain", "metrics failed\n", 15, 0);
        vtn_buf_free(&b);
    } else {
        respond(fd, 404, "Not Found", "text/plain", "not found: try /healthz /readyz /metrics\n",
                41, 0);
    }
}

static void *ops_main(void *arg)
{
    vtn_ops *ops = arg;
    for (;;) {
        struct pollfd p[2] = {{ops->fd, POLLIN, 0}, {ops->wake[0], POLLIN, 0}};
        int n = poll(p, 2, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            vtn_error("ops_poll", "errno=%d", errno);
            return NULL;
        }
        if (p[1].revents)
            return NULL;
        if (p[0].revents & POLLIN) {
            int c = accept(ops->fd, NULL, NULL);
            if (c < 0)
                continue;
            serve(ops, c);
            close(c);
        }
    }
}

int vtn_ops_start(const char *listen_addr, vtn_ops_metrics_fn metrics, vtn_ops_ready_fn ready,
                  void *ud, vtn_ops **out, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    if (vtn_addr_parse(listen_addr, &ss) < 0) {
        snprintf(err, errlen, "ops listener: \"%s\" is not host:port", listen_addr);
        return -EINVAL;
    }
    vtn_ops *ops = calloc(1, sizeof *ops);
    if (ops == NULL)
        return -ENOMEM;
    ops->metrics = metrics;
    ops->ready = ready;
    ops->ud = ud;
    ops->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    int rc = 0;
    if (ops->fd < 0)
        rc = -errno;
    else if (setsockopt(ops->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
             bind(ops->fd, (struct sockaddr *)&ss, sizeof ss) < 0 || listen(ops->fd, 64) < 0)
        rc = -errno;
    if (rc == 0 && pipe2(ops->wake, O_CLOEXEC) < 0)
        rc = -errno;
    if (rc < 0) {
        snprintf(err, errlen, "ops listener %s: %s", listen_addr, strerror(-rc));
        if (ops->fd >= 0)
            close(ops->fd);
        free(ops);
        return rc;
    }
    socklen_t sl = sizeof ss;
    getsockname(ops->fd, (struct sockaddr *)&ss, &sl);
    ops->port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                              : ((struct sockaddr_in6 *)&ss)->sin6_port);
    vtn_buf warm; /* fixes process_start_time_seconds at start, not at the first scrape */
    vtn_buf_init(&warm, 4096);
    vtn_metrics_process(&warm);
    vtn_buf_free(&warm);
    if ((rc = pthread_create(&ops->thread, NULL, ops_main, ops)) != 0) {
        snprintf(err, errlen, "ops thread: %s", strerror(rc));
        close(ops->fd);
        close(ops->wake[0]);
        close(ops->wake[1]);
        free(ops);
        return -rc;
    }
    char a[64];
    vtn_info("listen", "kind=ops addr=%s", vtn_addr_format((struct sockaddr *)&ss, a, sizeof a));
    *out = ops;
    return 0;
}

int vtn_ops_port(const vtn_ops *ops)
{
    return ops->port;
}

void vtn_ops_set_draining(vtn_ops *ops)
{
    if (ops)
        atomic_store(&ops->draining, 1);
}

void vtn_ops_stop(vtn_ops **pops)
{
    vtn_ops *ops = *pops;
    if (ops == NULL)
        return;
    ssize_t w = write(ops->wake[1], "x", 1);
    (void)w;
    pthread_join(ops->thread, NULL);
    close(ops->fd);
    close(ops->wake[0]);
    close(ops->wake[1]);
    free(ops);
    *pops = NULL;
}
