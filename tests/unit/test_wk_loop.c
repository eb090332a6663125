/* The worker's loop against a real ZeroMQ ROUTER standing in for a gateway
 * (loopback; no Redis): a frame type the worker does not handle, as a newer
 * gateway may send (vtn/wire.h upgrade rules), is ignored and counted apart
 * from malformed frames, and the gateway stays live. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "vtn/time.h"
#include "wk_internal.h"
#include "wk_oadr.h"

#define WAIT_MS 5000 /* bound for what the loop does within a turn or two */

static wk_worker W;
static volatile sig_atomic_t stop_flag;

static void *run(void *arg)
{
    (void)arg;
    wk_worker_run(&W);
    return NULL;
}

/* Receives one [identity, frame] message within WAIT_MS: the frame's type. */
static int recv_type(void *router, char *id, size_t *idlen)
{
    zmq_pollitem_t it = {router, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&it, 1, WAIT_MS) != 1)
        return -1;
    int n = zmq_recv(router, id, 255, 0);
    if (n < 0)
        return -1;
    *idlen = (size_t)n;
    unsigned char f[64];
    n = zmq_recv(router, f, sizeof f, 0);
    return n >= VTN_WIRE_HEADER ? f[2] : -1;
}

static void send_frame(void *router, const char *id, size_t idlen, const void *f, size_t n)
{
    assert_true(zmq_send(router, id, idlen, ZMQ_SNDMORE) >= 0);
    assert_true(zmq_send(router, f, n, 0) >= 0);
}

static uint64_t wait_count(_Atomic uint64_t *c, uint64_t want)
{
    int64_t end = vtn_now_ms() + WAIT_MS;
    uint64_t v;
    while ((v = atomic_load(c)) < want && vtn_now_ms() < end)
        usleep(10000);
    return v;
}

static void unknown_frame_type_is_ignored(void **state)
{
    (void)state;
    void *zctx = zmq_ctx_new();
    void *router = zmq_socket(zctx, ZMQ_ROUTER);
    int zero = 0;
    zmq_setsockopt(router, ZMQ_LINGER, &zero, sizeof zero);
    assert_int_equal(zmq_bind(router, "tcp://127.0.0.1:*"), 0);
    char ep[256];
    size_t eplen = sizeof ep;
    assert_int_equal(zmq_getsockopt(router, ZMQ_LAST_ENDPOINT, ep, &eplen), 0);

    static char name[] = "loop-test", url[] = "redis://127.0.0.1:1/0", vtn_id[] = "openvtn-VTN";
    W.cfg.gateways = ep;
    W.cfg.redis_url = url; /* nothing listens: the worker runs without Redis */
    W.cfg.name = name;
    W.cfg.vtn_id = vtn_id;
    W.cfg.credits = 4;
    W.cfg.redis_timeout_ms = 100;
    W.cfg.drain_ms = 0;
    W.cfg.memory = WK_MEMORY_DEFAULT;
    W.cfg.poll_freq_ms = 10000;
    W.entry[VTN_KIND_OADR] = &wk_oadr_entry;
    char err[256];
    assert_int_equal(wk_worker_init(&W, WK_POLICY_OPEN, &stop_flag, err, sizeof err), 0);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, run, NULL), 0);

    char id[256];
    size_t idlen = 0;
    assert_int_equal(recv_type(router, id, &idlen), VTN_WIRE_READY);

    vtn_buf b;
    vtn_buf_init(&b, 64);
    assert_int_equal(vtn_wire_encode_empty(&b, VTN_WIRE_HEARTBEAT), 0);
    send_frame(router, id, idlen, b.data, b.len);
    unsigned char newer[VTN_WIRE_HEADER + 4];
    memcpy(newer, b.data, VTN_WIRE_HEADER);
    newer[2] = 200; /* a type of our major that this worker does not know */
    memset(newer + VTN_WIRE_HEADER, 0, 4);
    send_frame(router, id, idlen, newer, sizeof newer);
    send_frame(router, id, idlen, "garbage", 7);
    vtn_buf_free(&b);

    assert_int_equal(wait_count(&W.m.bad_frames, 1), 1);
    assert_int_equal(wait_count(&W.m.frames_ignored, 1), 1);
    assert_int_equal(atomic_load(&W.m.bad_frames), 1); /* the unknown type is not a bad frame */
    /* The gateway stays live: the worker keeps heartbeating it. */
    assert_int_equal(recv_type(router, id, &idlen), VTN_WIRE_HEARTBEAT);

    stop_flag = 1;
    pthread_join(t, NULL);
    wk_worker_free(&W);
    zmq_close(router);
    zmq_ctx_term(zctx);
}

int main(void)
{
    if (wk_oadr_init() != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(unknown_frame_type_is_ignored),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    wk_oadr_shutdown();
    return rc;
}
