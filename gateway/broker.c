/* The ZeroMQ ROUTER workers connect to, inside the libuv loop.
 *
 * ZMQ_FD is edge-triggered: it signals "something changed", and any
 * zmq_send/zmq_recv/ZMQ_EVENTS call may consume that signal. So after every
 * wakeup we receive until EAGAIN (a failed DONTWAIT receive processes all
 * pending commands first, which is what a ZMQ_EVENTS query would do); and
 * since sends (made while handling HTTP) can also eat the signal, a prepare
 * handle drains again right before the loop blocks whenever a ZeroMQ call
 * happened since the last drain. Everything parsed in one loop iteration is
 * thus sent back to back, and every reply that arrived is handled per wakeup. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <zmq.h>

#include "gw_internal.h"
#include "vtn/log.h"

#define GW_MAX_FRAME ((int64_t)64 << 20) /* largest message a worker may send */

void gw__broker_drain(gw_broker *b)
{
    gw_server *s = b->srv;
    for (;;) {
        zmq_msg_t id, msg;
        zmq_msg_init(&id);
        /* A DONTWAIT receive that finds nothing has just processed every
         * pending command (so the FD is quiet again until new ones arrive);
         * an extra ZMQ_EVENTS query would only repeat that work. */
        if (zmq_msg_recv(&id, b->sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&id);
            b->dirty = 0;
            break;
        }
        if (!zmq_msg_more(&id)) { /* identity without a body: not ours */
            zmq_msg_close(&id);
            continue;
        }
        zmq_msg_init(&msg);
        if (zmq_msg_recv(&msg, b->sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&msg);
            zmq_msg_close(&id);
            break;
        }
        if (zmq_msg_more(&msg)) {
            /* Our protocol has exactly one frame after the identity. */
            do {
                zmq_msg_close(&msg);
                zmq_msg_init(&msg);
            } while (zmq_msg_recv(&msg, b->sock, ZMQ_DONTWAIT) >= 0 && zmq_msg_more(&msg));
            GW_INC(s->pool.stats.protocol_errors);
        } else {
            gw_pool_on_message(&s->pool, zmq_msg_data(&id), zmq_msg_size(&id), zmq_msg_data(&msg),
                               zmq_msg_size(&msg), uv_now(s->loop));
        }
        zmq_msg_close(&msg);
        zmq_msg_close(&id);
    }
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    (void)status;
    (void)events;
    gw__broker_drain(h->data);
}

static void on_prepare(uv_prepare_t *h)
{
    gw_broker *b = h->data;
    if (b->dirty)
        gw__broker_drain(b);
}

int gw__broker_send(void *ud, const uint8_t *ident, size_t ident_len, const void *frame, size_t n)
{
    gw_server *s = ud;
    gw_broker *b = &s->broker;
    b->dirty = 1;
    if (zmq_send(b->sock, ident, ident_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
        return -errno;
    if (zmq_send(b->sock, frame, n, ZMQ_DONTWAIT) < 0)
        return -errno;
    return 0;
}

int gw__broker_init(gw_broker *b, gw_server *s, const char *bind, char *err, size_t errlen)
{
    memset(b, 0, sizeof *b);
    b->srv = s;
    b->ctx = zmq_ctx_new();
    if (!b->ctx) {
        snprintf(err, errlen, "zmq_ctx_new: %s", zmq_strerror(errno));
        return -ENOMEM;
    }
    zmq_ctx_set(b->ctx, ZMQ_IO_THREADS, 1);
    b->sock = zmq_socket(b->ctx, ZMQ_ROUTER);
    if (!b->sock) {
        snprintf(err, errlen, "zmq_socket: %s", zmq_strerror(errno));
        return -ENOMEM;
    }
    int one = 1;
    /* Credits bound what we queue per worker; the HWM only has to be above. */
    int hwm = GW_MAX_CREDITS + 64;
    int linger = 0;
    int64_t maxmsg = GW_MAX_FRAME;
    zmq_setsockopt(b->sock, ZMQ_ROUTER_MANDATORY, &one, sizeof one); /* EHOSTUNREACH, not silence */
    zmq_setsockopt(b->sock, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(b->sock, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt(b->sock, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(b->sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
    if (zmq_bind(b->sock, bind) != 0) {
        snprintf(err, errlen, "VTN_ZMQ_BIND %s: %s", bind, zmq_strerror(errno));
        return -EINVAL;
    }
    size_t len = sizeof b->endpoint;
    if (zmq_getsockopt(b->sock, ZMQ_LAST_ENDPOINT, b->endpoint, &len) != 0)
        snprintf(b->endpoint, sizeof b->endpoint, "%s", bind);
    int fd;
    size_t fdlen = sizeof fd;
    if (zmq_getsockopt(b->sock, ZMQ_FD, &fd, &fdlen) != 0) {
        snprintf(err, errlen, "ZMQ_FD: %s", zmq_strerror(errno));
        return -EIO;
    }
    int rc = uv_poll_init(s->loop, &b->poll, fd);
    if (rc == 0) {
        b->has_poll = 1;
        b->poll.data = b;
        rc = uv_poll_start(&b->poll, UV_READABLE, on_poll);
    }
    if (rc == 0) {
        uv_prepare_init(s->loop, &b->prepare);
        b->has_prepare = 1;
        b->prepare.data = b;
        rc = uv_prepare_start(&b->prepare, on_prepare);
    }
    if (rc != 0) {
        snprintf(err, errlen, "uv_poll on ZMQ_FD: %s", uv_strerror(rc));
        return rc;
    }
    b->dirty = 1; /* pick up anything that arrived before the poll started */
    return 0;
}

void gw__broker_close(gw_broker *b)
{
    if (b->has_poll && !uv_is_closing((uv_handle_t *)&b->poll))
        uv_close((uv_handle_t *)&b->poll, NULL);
    if (b->has_prepare && !uv_is_closing((uv_handle_t *)&b->prepare))
        uv_close((uv_handle_t *)&b->prepare, NULL);
}

void gw__broker_term(gw_broker *b)
{
    if (b->sock) {
        /* Give the DISCONNECTs queued at shutdown a moment to leave. */
        int linger = 500;
        zmq_setsockopt(b->sock, ZMQ_LINGER, &linger, sizeof linger);
        zmq_close(b->sock);
        b->sock = NULL;
    }
    if (b->ctx) {
        zmq_ctx_term(b->ctx);
        b->ctx = NULL;
    }
}
