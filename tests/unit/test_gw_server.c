/* The gateway in one process with real sockets: its loop runs in a thread,
 * fake workers speak the wire protocol over a ZeroMQ DEALER, and the test
 * talks HTTP over loopback. Covers 503 without workers, /readyz, forwarding,
 * keep-alive pipelining, gateway-made errors and limits over a socket, the
 * retry after a worker dies mid-request, the poison-request rule, a client
 * that leaves while its request is in flight, the connection limits,
 * metrics and the drain on SIGTERM. Every wait is bounded.
 *
 * Every test gets a gateway and fake workers of its own (set up and torn
 * down around it), so none depends on another having run: VTN_TEST_ORDER=
 * reverse or shuffle:<seed> runs them in another order, and cmocka's
 * CMOCKA_TEST_FILTER-like VTN_TEST_FILTER=<glob> runs some alone. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <zmq.h>

#include "gw_internal.h"
#include "vtn/log.h"
#include "vtn/net.h"

#define WAIT_MS 10000 /* upper bound for anything we wait for */

static gw_config cfg;
static uv_loop_t loop;
static gw_server *S;
static pthread_t loop_thread;
static char oadr[64], api[64], zep[256];
static int ops_port;
static void *zctx;

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---- fake worker --------------------------------------------------------- */

typedef struct fw {
    void *sock;
    pthread_t th;
    char name[32];
    int credits;
    atomic_int stop;
    atomic_int hold;    /* keep requests instead of answering */
    atomic_int release; /* answer what is held */
    atomic_int mute;    /* no heartbeats either: a stuck worker, still connected */
    atomic_int held, served, got_disconnect;
    uint64_t held_ids[64];
    int nheld;
} fw;

static void fw_send(fw *w, vtn_buf *b)
{
    zmq_send(w->sock, b->data, b->len, ZMQ_DONTWAIT);
}

static void fw_reply(fw *w, const vtn_request *q, uint64_t id)
{
    char body[1024];
    vtn_buf b;
    vtn_buf_init(&b, 1 << 20);
    if (q)
        snprintf(body, sizeof body,
                 "<ok path=\"%.*s\" attempt=\"%d\" kind=\"%d\" auth=\"%.*s\" "
                 "worker=\"%s\" len=\"%u\"/>",
                 (int)q->path.n, q->path.p, q->attempt, q->kind, (int)q->authorization.n,
                 q->authorization.p, w->name, (unsigned)q->body.n);
    else
        snprintf(body, sizeof body, "<late worker=\"%s\"/>", w->name);
    vtn_reply rp = {.id = id, .status = 200};
    rp.content_type = vtn_str_c("application/xml");
    rp.headers = vtn_str_c("X-Worker: fake\r\n");
    rp.body = vtn_str_c(body);
    vtn_wire_encode_reply(&b, &rp);
    fw_send(w, &b);
    vtn_buf_free(&b);
}

static void *fw_main(void *arg)
{
    fw *w = arg;
    vtn_buf b;
    vtn_buf_init(&b, 4096);
    vtn_ready rd = {(uint32_t)w->credits, vtn_str_c(w->name)};
    vtn_wire_encode_ready(&b, &rd);
    fw_send(w, &b);
    struct timespec last;
    clock_gettime(CLOCK_MONOTONIC, &last);
    while (!atomic_load(&w->stop)) {
        zmq_pollitem_t it = {w->sock, 0, ZMQ_POLLIN, 0};
        zmq_poll(&it, 1, 20);
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if ((now.tv_sec - last.tv_sec) * 1000 + (now.tv_nsec - last.tv_nsec) / 1000000 >= 300 &&
            !atomic_load(&w->mute)) {
            vtn_buf_reset(&b);
            vtn_wire_encode_empty(&b, VTN_WIRE_HEARTBEAT);
            fw_send(w, &b);
            last = now;
        }
        if (atomic_load(&w->release)) {
            for (int i = 0; i < w->nheld; i++)
                fw_reply(w, NULL, w->held_ids[i]);
            w->nheld = 0;
            atomic_store(&w->release, 0);
        }
        zmq_msg_t m;
        zmq_msg_init(&m);
        while (zmq_msg_recv(&m, w->sock, ZMQ_DONTWAIT) >= 0) {
            int type = vtn_wire_type_of(zmq_msg_data(&m), zmq_msg_size(&m));
            if (type == VTN_WIRE_DISCONNECT)
                atomic_store(&w->got_disconnect, 1);
            if (type == VTN_WIRE_REQUEST) {
                vtn_request q;
                if (vtn_wire_decode_request(zmq_msg_data(&m), zmq_msg_size(&m), &q) == 0) {
                    if (atomic_load(&w->hold) && w->nheld < 64) {
                        w->held_ids[w->nheld++] = q.id;
                        atomic_fetch_add(&w->held, 1);
                    } else {
                        fw_reply(w, &q, q.id);
                        atomic_fetch_add(&w->served, 1);
                    }
                }
            }
            zmq_msg_close(&m);
            zmq_msg_init(&m);
        }
        zmq_msg_close(&m);
    }
    vtn_buf_free(&b);
    return NULL;
}

/* Every fake worker started, so a failed test's teardown still stops them
 * (zmq_ctx_term waits for every socket). */
#define FW_MAX 8
static fw *fws[FW_MAX];

static fw *fw_start(const char *name, int credits)
{
    fw *w = calloc(1, sizeof *w);
    int slot = 0;
    while (slot < FW_MAX && fws[slot])
        slot++;
    assert_true(slot < FW_MAX);
    fws[slot] = w;
    assert_non_null(w);
    snprintf(w->name, sizeof w->name, "%s", name);
    w->credits = credits;
    w->sock = zmq_socket(zctx, ZMQ_DEALER);
    assert_non_null(w->sock);
    int linger = 0;
    zmq_setsockopt(w->sock, ZMQ_LINGER, &linger, sizeof linger);
    assert_int_equal(zmq_connect(w->sock, zep), 0);
    assert_int_equal(pthread_create(&w->th, NULL, fw_main, w), 0);
    return w;
}

/* Stops without DISCONNECT: to the gateway this looks like a crash. */
static void fw_kill(fw **pw)
{
    fw *w = *pw;
    for (int i = 0; i < FW_MAX; i++)
        if (fws[i] == w)
            fws[i] = NULL;
    atomic_store(&w->stop, 1);
    pthread_join(w->th, NULL);
    zmq_close(w->sock);
    free(w);
    *pw = NULL;
}

/* ---- HTTP client --------------------------------------------------------- */

typedef struct cl {
    int fd;
    char buf[1 << 17];
    size_t len;
} cl;

static cl *cl_open(const char *addr)
{
    struct sockaddr_storage ss;
    assert_int_equal(vtn_addr_parse(addr, &ss), 0);
    cl *c = calloc(1, sizeof *c);
    assert_non_null(c);
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(c->fd >= 0);
    struct timeval tv = {WAIT_MS / 1000, 0};
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    assert_int_equal(connect(c->fd, (struct sockaddr *)&ss, sizeof(struct sockaddr_in)), 0);
    return c;
}

static void cl_close(cl **pc)
{
    close((*pc)->fd);
    free(*pc);
    *pc = NULL;
}

static void cl_send(cl *c, const char *s)
{
    size_t n = strlen(s);
    assert_int_equal(send(c->fd, s, n, MSG_NOSIGNAL), (ssize_t)n);
}

/* Reads one response: status, the head (NUL-terminated) and body. Returns
 * the status, or -1 when the connection ended first. */
static int cl_read(cl *c, char *head, size_t hcap, char *body, size_t bcap)
{
    for (;;) {
        c->buf[c->len] = 0;
        char *end = strstr(c->buf, "\r\n\r\n");
        if (end) {
            size_t hl = (size_t)(end - c->buf) + 4;
            size_t cl_ = 0;
            char *p = strcasestr(c->buf, "\r\nContent-Length: ");
            if (p && p < end)
                cl_ = (size_t)strtoul(p + 18, NULL, 10);
            if (c->len >= hl + cl_) {
                int st = 0;
                sscanf(c->buf, "HTTP/1.1 %d", &st);
                if (head)
                    snprintf(head, hcap, "%.*s", (int)hl, c->buf);
                if (body)
                    snprintf(body, bcap, "%.*s", (int)cl_, c->buf + hl);
                memmove(c->buf, c->buf + hl + cl_, c->len - hl - cl_);
                c->len -= hl + cl_;
                return st;
            }
        }
        if (c->len >= sizeof c->buf - 1)
            return -1;
        ssize_t r = recv(c->fd, c->buf + c->len, sizeof c->buf - 1 - c->len, 0);
        if (r <= 0)
            return -1;
        c->len += (size_t)r;
    }
}

/* After an answer that closes: the next read sees the end of the stream. */
static int cl_closed(cl *c)
{
    char tmp[256];
    for (;;) {
        ssize_t r = recv(c->fd, tmp, sizeof tmp, 0);
        if (r == 0)
            return 1;
        if (r < 0)
            return errno == ECONNRESET;
    }
}

static int request(const char *addr, const char *req, char *head, size_t hcap, char *body,
                   size_t bcap)
{
    cl *c = cl_open(addr);
    cl_send(c, req);
    int st = cl_read(c, head, hcap, body, bcap);
    cl_close(&c);
    return st;
}

#define POLL(path, body)                                                                           \
    "POST /OpenADR2/Simple/2.0b/" path " HTTP/1.1\r\nHost: vtn\r\n"                                \
    "Content-Type: application/xml\r\nContent-Length: " #body "\r\n\r\n"

static const char *poll_req(const char *svc)
{
    static char r[512];
    snprintf(r, sizeof r,
             "POST /OpenADR2/Simple/2.0b/%s HTTP/1.1\r\nHost: vtn\r\n"
             "Content-Type: application/xml\r\nContent-Length: 11\r\n\r\n<oadrPoll/>",
             svc);
    return r;
}

static int ops_get(const char *path, char *body, size_t bcap)
{
    char addr[64], req[256];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", ops_port);
    snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path);
    return request(addr, req, NULL, 0, body, bcap);
}

/* Value of a metric line "name{labels} v" (or "name v"); -1 when absent. */
static long long metric(const char *name)
{
    static char body[1 << 16];
    if (ops_get("/metrics", body, sizeof body) != 200)
        return -1;
    char want[256];
    snprintf(want, sizeof want, "\n%s ", name);
    const char *p = strstr(body, want);
    if (!p)
        return -1;
    return atoll(p + strlen(want));
}

static int wait_metric(const char *name, long long want)
{
    for (int i = 0; i < WAIT_MS / 20; i++) {
        if (metric(name) == want)
            return 1;
        sleep_ms(20);
    }
    return 0;
}

/* ---- fixture -------------------------------------------------------------- */

static void *loop_main(void *arg)
{
    (void)arg;
    gw_server_run(S);
    return NULL;
}

/* Once for the whole run. */
static int group_setup(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    vtn_log_init("gateway-test");
    zctx = zmq_ctx_new();
    return zctx ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    zmq_ctx_term(zctx);
    return 0;
}

static int loop_joined;

/* Before every test: a new gateway on new ports, no worker yet. */
static int setup(void **state)
{
    (void)state;
    memset(&cfg, 0, sizeof cfg);
    cfg.oadr_listen = "127.0.0.1:0";
    cfg.api_listen = "127.0.0.1:0";
    cfg.ops_listen = "127.0.0.1:0";
    cfg.zmq_bind = "tcp://127.0.0.1:0";
    cfg.zmq_advertise = "";
    cfg.redis_url = ""; /* no Redis in unit tests */
    cfg.max_header_bytes = 4096;
    cfg.max_body_bytes = 65536;
    cfg.api_max_body_bytes = 2048;
    cfg.header_timeout_ms = 1500;
    cfg.idle_timeout_ms = 5000;
    cfg.max_connections = 24;
    cfg.api_max_connections = 8;
    cfg.max_conns_per_ip = 0;
    cfg.conn_exempt = "";
    cfg.read_timeout_ms = 8000;
    cfg.request_timeout_ms = 9000;
    cfg.max_pending = 16;
    cfg.retry_after_s = 2;
    uv_loop_init(&loop);
    S = calloc(1, sizeof *S);
    char err[256];
    if (gw_server_init(S, &loop, &cfg, err, sizeof err) != 0) {
        fprintf(stderr, "gw_server_init: %s\n", err);
        return -1;
    }
    snprintf(oadr, sizeof oadr, "%s", S->listeners[0].addr);
    snprintf(api, sizeof api, "%s", S->listeners[1].addr);
    snprintf(zep, sizeof zep, "%s", S->broker.endpoint);
    ops_port = vtn_ops_port(S->ops);
    loop_joined = 0;
    return pthread_create(&loop_thread, NULL, loop_main, NULL);
}

/* After every test, passed or not: the gateway and every fake worker go. */
static int teardown(void **state)
{
    (void)state;
    if (!loop_joined) {
        kill(getpid(), SIGTERM); /* the gateway drains and its loop ends */
        pthread_join(loop_thread, NULL);
        gw_server_free(S);
    }
    free(S);
    S = NULL;
    uv_loop_close(&loop);
    for (int i = 0; i < FW_MAX; i++)
        if (fws[i])
            fw_kill(&fws[i]);
    return 0;
}

/* A fake worker the gateway counts among its live_after live workers. */
static fw *fw_ready(const char *name, int credits, int live_after)
{
    fw *w = fw_start(name, credits);
    assert_true(wait_metric("vtn_gateway_live_workers", live_after));
    return w;
}

/* ---- tests ------------------------------------------------------------------ */

static void without_workers_503_and_not_ready(void **state)
{
    (void)state;
    char head[1024], body[1024];
    assert_int_equal(request(oadr, poll_req("OadrPoll"), head, sizeof head, body, sizeof body),
                     503);
    assert_non_null(strstr(head, "\r\nRetry-After: 2\r\n"));
    assert_non_null(strstr(head, "\r\nContent-Type: text/plain\r\n"));
    assert_string_equal(body, "no worker available\n");
    assert_int_equal(ops_get("/readyz", body, sizeof body), 503);
    assert_int_equal(ops_get("/healthz", body, sizeof body), 200);
}

static void worker_answers_and_ready(void **state)
{
    (void)state;
    fw_start("w1", 4);
    char body[2048], head[1024];
    int st = 0;
    for (int i = 0; i < WAIT_MS / 20 && st != 200; i++) {
        st = ops_get("/readyz", body, sizeof body);
        if (st != 200)
            sleep_ms(20);
    }
    assert_int_equal(st, 200);
    assert_int_equal(request(oadr, poll_req("OadrPoll"), head, sizeof head, body, sizeof body),
                     200);
    assert_non_null(strstr(head, "\r\nContent-Type: application/xml\r\n"));
    assert_non_null(strstr(head, "\r\nX-Worker: fake\r\n")); /* worker's header lines pass */
    assert_non_null(strstr(body, "path=\"/OpenADR2/Simple/2.0b/OadrPoll\""));
    assert_non_null(strstr(body, "attempt=\"0\""));
    assert_non_null(strstr(body, "kind=\"1\""));
    assert_non_null(strstr(body, "auth=\"\"")); /* OpenADR requests carry no Authorization */
    assert_non_null(strstr(body, "len=\"11\""));
}

static void keep_alive_pipelining_in_order(void **state)
{
    (void)state;
    fw_ready("w1", 4, 1);
    cl *c = cl_open(oadr);
    char all[2048];
    snprintf(all, sizeof all, "%s", poll_req("EiEvent"));
    strcat(all, poll_req("EiReport"));
    strcat(all, poll_req("OadrPoll"));
    strcat(all, poll_req("EiOpt"));
    cl_send(c, all);
    const char *want[] = {"EiEvent", "EiReport", "OadrPoll", "EiOpt"};
    for (int i = 0; i < 4; i++) {
        char body[1024], path[128];
        assert_int_equal(cl_read(c, NULL, 0, body, sizeof body), 200);
        snprintf(path, sizeof path, "path=\"/OpenADR2/Simple/2.0b/%s\"", want[i]);
        assert_non_null(strstr(body, path));
    }
    /* the same connection keeps working */
    cl_send(c, poll_req("EiRegisterParty"));
    char body[1024];
    assert_int_equal(cl_read(c, NULL, 0, body, sizeof body), 200);
    assert_non_null(strstr(body, "EiRegisterParty"));
    cl_close(&c);
}

static void gateway_answers_and_api(void **state)
{
    (void)state;
    fw_ready("w1", 4, 1);
    char head[1024], body[1024];
    assert_int_equal(request(oadr, "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n", head, sizeof head, body,
                             sizeof body),
                     404);
    assert_int_equal(request(oadr, "GET /OpenADR2/Simple/2.0b/OadrPoll HTTP/1.1\r\nHost: x\r\n\r\n",
                             head, sizeof head, body, sizeof body),
                     405);
    assert_non_null(strstr(head, "\r\nAllow: POST\r\n"));
    assert_int_equal(request(oadr,
                             "POST /OpenADR2/Simple/2.0b/OadrPoll HTTP/1.1\r\nHost: x\r\n"
                             "Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
                             head, sizeof head, body, sizeof body),
                     415);
    assert_int_equal(request(api,
                             "GET /api/v1/vens?limit=5 HTTP/1.1\r\nHost: x\r\n"
                             "Authorization: Bearer s3cret\r\n\r\n",
                             head, sizeof head, body, sizeof body),
                     200);
    assert_non_null(strstr(body, "path=\"/api/v1/vens?limit=5\""));
    assert_non_null(strstr(body, "kind=\"2\""));
    assert_non_null(strstr(body, "auth=\"Bearer s3cret\""));
    assert_int_equal(request(api, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", head, sizeof head,
                             body, sizeof body),
                     404);
}

static void limits_over_a_socket(void **state)
{
    (void)state;
    char head[1024], body[1024], req[8192];
    char pad[5000];
    memset(pad, 'x', sizeof pad - 1);
    pad[sizeof pad - 1] = 0;
    snprintf(req, sizeof req, "GET /api/v1/x HTTP/1.1\r\nHost: x\r\nX-Pad: %s\r\n\r\n", pad);
    cl *c = cl_open(api);
    cl_send(c, req);
    assert_int_equal(cl_read(c, head, sizeof head, body, sizeof body), 431);
    assert_non_null(strstr(head, "Connection: close"));
    assert_true(cl_closed(c));
    cl_close(&c);

    c = cl_open(oadr);
    cl_send(c, POLL("OadrPoll", 70000));
    assert_int_equal(cl_read(c, head, sizeof head, body, sizeof body), 413);
    assert_true(cl_closed(c));
    cl_close(&c);

    c = cl_open(oadr);
    cl_send(c, "garbage\r\n\r\n");
    assert_int_equal(cl_read(c, head, sizeof head, body, sizeof body), 400);
    assert_true(cl_closed(c));
    cl_close(&c);

    /* a header that never completes: 408 after VTN_HEADER_TIMEOUT, then closed */
    c = cl_open(oadr);
    cl_send(c, "POST /OpenADR2/Simple/2.0b/OadrPoll HTTP/1.1\r\nHost: x\r\n");
    assert_int_equal(cl_read(c, head, sizeof head, body, sizeof body), 408);
    assert_true(cl_closed(c));
    cl_close(&c);
}

static void worker_death_retries_on_another(void **state)
{
    (void)state;
    fw *w1 = fw_ready("w1", 4, 1);
    atomic_store(&w1->hold, 1);
    cl *c = cl_open(oadr);
    cl_send(c, poll_req("EiReport"));
    for (int i = 0; i < WAIT_MS / 10 && atomic_load(&w1->held) < 1; i++)
        sleep_ms(10);
    assert_int_equal(atomic_load(&w1->held), 1);
    fw_ready("w2", 4, 2);
    fw_kill(&w1); /* crashes with the request */
    char body[1024];
    assert_int_equal(cl_read(c, NULL, 0, body, sizeof body), 200);
    assert_non_null(strstr(body, "attempt=\"1\""));
    assert_non_null(strstr(body, "worker=\"w2\""));
    assert_non_null(strstr(body, "EiReport"));
    cl_close(&c);
    assert_true(metric("vtn_gateway_retries_total") >= 1);
    assert_true(wait_metric("vtn_gateway_live_workers", 1));
}

static void client_gone_while_in_flight(void **state)
{
    (void)state;
    fw *w = fw_ready("w1", 4, 1);
    long long dropped = metric("vtn_gateway_dropped_replies_total");
    atomic_store(&w->hold, 1);
    cl *c = cl_open(oadr);
    cl_send(c, poll_req("OadrPoll"));
    for (int i = 0; i < WAIT_MS / 10 && atomic_load(&w->held) < 1; i++)
        sleep_ms(10);
    assert_int_equal(atomic_load(&w->held), 1);
    cl_close(&c);
    assert_true(wait_metric("vtn_gateway_open_connections", 0));
    atomic_store(&w->hold, 0);
    atomic_store(&w->release, 1);
    assert_true(wait_metric("vtn_gateway_dropped_replies_total", dropped + 1));
    /* and the worker's credit came back: new requests still flow */
    char body[1024];
    assert_int_equal(request(oadr, poll_req("OadrPoll"), NULL, 0, body, sizeof body), 200);
}

/* The poison-request rule: a worker that goes silent while connected and
 * holding a request is not handed another worker's chance to stall. */
static void silent_worker_requests_not_retried(void **state)
{
    (void)state;
    fw *w2 = fw_ready("w2", 4, 1);
    fw *w3 = fw_ready("w3", 1, 2);
    atomic_store(&w3->hold, 1);
    atomic_store(&w3->mute, 1);
    long long retries = metric("vtn_gateway_retries_total");
    long long suspects = metric("vtn_gateway_poison_suspects_total");
    int w2_held = atomic_load(&w2->held);
    cl *held = NULL;
    char head[1024], body[1024];
    /* the LRU queue alternates: within two requests one reaches w3 */
    for (int i = 0; i < 2 && !held; i++) {
        cl *c = cl_open(oadr);
        int served = atomic_load(&w2->served);
        cl_send(c, poll_req("OadrPoll"));
        for (int k = 0;
             k < WAIT_MS / 10 && atomic_load(&w3->held) == 0 && atomic_load(&w2->served) == served;
             k++)
            sleep_ms(10);
        if (atomic_load(&w3->held)) {
            held = c;
        } else {
            assert_int_equal(cl_read(c, NULL, 0, body, sizeof body), 200);
            cl_close(&c);
        }
    }
    assert_non_null(held);
    /* w3 has no credit left: other requests keep going to w2 meanwhile */
    for (int i = 0; i < 5; i++) {
        assert_int_equal(request(oadr, poll_req("OadrPoll"), NULL, 0, body, sizeof body), 200);
        assert_non_null(strstr(body, "worker=\"w2\""));
    }
    /* after the liveness window: 503 for that request alone, not a retry */
    assert_int_equal(cl_read(held, head, sizeof head, body, sizeof body), 503);
    assert_non_null(strstr(head, "\r\nRetry-After: 2\r\n"));
    assert_string_equal(body, "worker stalled while handling the request; not retried\n");
    cl_close(&held);
    assert_int_equal(metric("vtn_gateway_retries_total"), retries);
    assert_int_equal(metric("vtn_gateway_poison_suspects_total"), suspects + 1);
    assert_int_equal(atomic_load(&w2->held), w2_held); /* never sent to w2 */
    assert_true(metric("vtn_gateway_unavailable_total{reason=\"worker_stalled\"}") >= 1);
    assert_true(wait_metric("vtn_gateway_live_workers", 1));
    fw_kill(&w3);
}

static void connection_limits_per_listener(void **state)
{
    (void)state;
    fw *w2 = fw_ready("w2", 4, 1);
    char head[512], body[256];
    /* the API listener has its own, smaller limit; when every slot holds a
     * request in progress, a new connection is refused */
    atomic_store(&w2->hold, 1);
    cl *api_conns[8];
    for (int i = 0; i < 8; i++) {
        api_conns[i] = cl_open(api);
        cl_send(api_conns[i], "GET /api/v1/vens HTTP/1.1\r\nHost: x\r\n\r\n");
    }
    assert_true(wait_metric("vtn_gateway_api_open_connections", 8));
    assert_true(wait_metric("vtn_gateway_inflight_requests", 4)); /* w2's credits */
    assert_true(wait_metric("vtn_gateway_pending_requests", 4));
    cl *extra = cl_open(api);
    assert_int_equal(cl_read(extra, head, sizeof head, body, sizeof body), 503);
    assert_non_null(strstr(head, "Retry-After: 2"));
    assert_string_equal(body, "too many connections\n");
    cl_close(&extra);
    atomic_store(&w2->hold, 0);
    atomic_store(&w2->release, 1);
    for (int i = 0; i < 8; i++)
        assert_int_equal(cl_read(api_conns[i], NULL, 0, body, sizeof body), 200);
    /* which does not touch the OpenADR listener's */
    assert_int_equal(request(oadr, poll_req("OadrPoll"), NULL, 0, body, sizeof body), 200);

    /* a full OpenADR listener: the oldest connection that never sent a
     * request makes room for the new one */
    cl *conns[24];
    for (int i = 0; i < 24; i++)
        conns[i] = cl_open(oadr);
    assert_true(wait_metric("vtn_gateway_open_connections", 32));
    long long shed = metric("vtn_gateway_connections_shed_total{tier=\"fresh\"}");
    cl *fresh = cl_open(oadr);
    cl_send(fresh, poll_req("OadrPoll"));
    assert_int_equal(cl_read(fresh, NULL, 0, body, sizeof body), 200);
    assert_true(cl_closed(conns[0]));
    assert_true(metric("vtn_gateway_connections_shed_total{tier=\"fresh\"}") == shed + 1);
    cl_close(&fresh);
    for (int i = 0; i < 24; i++)
        cl_close(&conns[i]);
    assert_true(wait_metric("vtn_gateway_open_connections", 8));

    /* full of keep-alive connections that each had a request answered: the
     * one idle longest goes, not one that was just used */
    for (int i = 0; i < 24; i++) {
        conns[i] = cl_open(oadr);
        cl_send(conns[i], poll_req("OadrPoll"));
        assert_int_equal(cl_read(conns[i], NULL, 0, body, sizeof body), 200);
    }
    cl_send(conns[0], poll_req("OadrPoll")); /* conns[0] is now the most recently used */
    assert_int_equal(cl_read(conns[0], NULL, 0, body, sizeof body), 200);
    long long shed_idle = metric("vtn_gateway_connections_shed_total{tier=\"idle\"}");
    fresh = cl_open(oadr);
    cl_send(fresh, poll_req("OadrPoll"));
    assert_int_equal(cl_read(fresh, NULL, 0, body, sizeof body), 200);
    assert_true(cl_closed(conns[1]));
    assert_true(metric("vtn_gateway_connections_shed_total{tier=\"idle\"}") == shed_idle + 1);
    cl_send(conns[0], poll_req("OadrPoll")); /* still open */
    assert_int_equal(cl_read(conns[0], NULL, 0, body, sizeof body), 200);
    cl_close(&fresh);
    for (int i = 0; i < 24; i++)
        cl_close(&conns[i]);
    for (int i = 0; i < 8; i++)
        cl_close(&api_conns[i]);
    assert_true(wait_metric("vtn_gateway_open_connections", 0));
    assert_true(metric("vtn_gateway_connections_rejected_total") >= 1);
}

static void metrics_name_routes_and_statuses(void **state)
{
    (void)state;
    static char body[1 << 16];
    char head[1024];
    /* the traffic the metrics must show */
    assert_int_equal(request(oadr, poll_req("OadrPoll"), NULL, 0, body, sizeof body), 503);
    fw_ready("w1", 4, 1);
    assert_int_equal(request(oadr, poll_req("OadrPoll"), NULL, 0, body, sizeof body), 200);
    assert_int_equal(
        request(oadr, "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n", NULL, 0, body, sizeof body), 404);
    char big[6000];
    snprintf(big, sizeof big, "GET /api/v1/x HTTP/1.1\r\nHost: x\r\nX-Pad: %04500d\r\n\r\n", 1);
    assert_int_equal(request(api, big, NULL, 0, body, sizeof body), 431);
    assert_int_equal(request(oadr,
                             "POST /OpenADR2/Simple/2.0b/OadrPoll HTTP/1.1\r\nHost: x\r\n"
                             "Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
                             NULL, 0, body, sizeof body),
                     415);
    assert_int_equal(
        request(api, "GET /api/v1/vens HTTP/1.1\r\nHost: x\r\n\r\n", NULL, 0, body, sizeof body),
        200);
    cl *silent = cl_open(oadr); /* says nothing: closed at the header timeout */
    assert_int_equal(cl_read(silent, head, sizeof head, NULL, 0), -1);
    cl_close(&silent);
    assert_int_equal(ops_get("/metrics", body, sizeof body), 200);
    assert_non_null(strstr(body, "vtn_gateway_requests_total{route=\"OadrPoll\",status=\"200\"}"));
    assert_non_null(strstr(body, "vtn_gateway_requests_total{route=\"OadrPoll\",status=\"503\"}"));
    assert_non_null(strstr(body, "vtn_gateway_requests_total{route=\"other\",status=\"404\"}"));
    assert_non_null(strstr(body, "vtn_gateway_requests_total{route=\"other\",status=\"431\"}"));
    assert_non_null(strstr(body, "vtn_gateway_requests_total{route=\"OadrPoll\",status=\"415\"}"));
    assert_non_null(strstr(body, "vtn_gateway_request_duration_seconds_bucket{route=\"api\""));
    assert_non_null(strstr(body, "vtn_gateway_unavailable_total{reason=\"no_worker\"} 1"));
    const char *to = strstr(body, "vtn_gateway_client_timeouts_total{phase=\"header\"} ");
    assert_non_null(to);
    assert_true(atoi(to + strlen("vtn_gateway_client_timeouts_total{phase=\"header\"} ")) >= 1);
    assert_non_null(strstr(body, "\nprocess_cpu_seconds_total "));
}

static void sigterm_drains_and_tells_workers(void **state)
{
    (void)state;
    fw *w2 = fw_ready("w2", 4, 1);
    /* a keep-alive connection that is idle is closed by the drain */
    cl *c = cl_open(oadr);
    cl_send(c, poll_req("OadrPoll"));
    char body[1024];
    assert_int_equal(cl_read(c, NULL, 0, body, sizeof body), 200);
    kill(getpid(), SIGTERM);
    pthread_join(loop_thread, NULL);
    loop_joined = 1;
    assert_true(cl_closed(c));
    cl_close(&c);
    assert_int_equal(ops_get("/readyz", body, sizeof body), 503);
    assert_non_null(strstr(body, "draining"));
    gw_server_free(S); /* flushes the DISCONNECTs */
    for (int i = 0; i < WAIT_MS / 10 && !atomic_load(&w2->got_disconnect); i++)
        sleep_ms(10);
    assert_int_equal(atomic_load(&w2->got_disconnect), 1);
}

/* VTN_TEST_ORDER=reverse or shuffle:<seed> reorders the tests (each must
 * pass whatever ran before it); VTN_TEST_FILTER=<glob> runs only matching
 * ones. */
static void order_tests(struct CMUnitTest *t, size_t n)
{
    const char *order = getenv("VTN_TEST_ORDER");
    if (!order || !*order)
        return;
    if (strcmp(order, "reverse") == 0) {
        for (size_t i = 0; i < n / 2; i++) {
            struct CMUnitTest x = t[i];
            t[i] = t[n - 1 - i];
            t[n - 1 - i] = x;
        }
    } else if (strncmp(order, "shuffle:", 8) == 0) {
        unsigned seed = (unsigned)strtoul(order + 8, NULL, 10);
        for (size_t i = n - 1; i > 0; i--) { /* Fisher-Yates with rand_r */
            size_t j = (size_t)rand_r(&seed) % (i + 1);
            struct CMUnitTest x = t[i];
            t[i] = t[j];
            t[j] = x;
        }
    } else {
        fprintf(stderr, "VTN_TEST_ORDER: \"%s\" is not reverse or shuffle:<seed>\n", order);
        exit(2);
    }
    fprintf(stderr, "order (%s):", order);
    for (size_t i = 0; i < n; i++)
        fprintf(stderr, " %s", t[i].name);
    fprintf(stderr, "\n");
}

int main(void)
{
    struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(without_workers_503_and_not_ready, setup, teardown),
        cmocka_unit_test_setup_teardown(worker_answers_and_ready, setup, teardown),
        cmocka_unit_test_setup_teardown(keep_alive_pipelining_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(gateway_answers_and_api, setup, teardown),
        cmocka_unit_test_setup_teardown(limits_over_a_socket, setup, teardown),
        cmocka_unit_test_setup_teardown(worker_death_retries_on_another, setup, teardown),
        cmocka_unit_test_setup_teardown(client_gone_while_in_flight, setup, teardown),
        cmocka_unit_test_setup_teardown(silent_worker_requests_not_retried, setup, teardown),
        cmocka_unit_test_setup_teardown(connection_limits_per_listener, setup, teardown),
        cmocka_unit_test_setup_teardown(metrics_name_routes_and_statuses, setup, teardown),
        cmocka_unit_test_setup_teardown(sigterm_drains_and_tells_workers, setup, teardown),
    };
    order_tests(tests, sizeof tests / sizeof tests[0]);
    const char *filter = getenv("VTN_TEST_FILTER");
    if (filter && *filter)
        cmocka_set_test_filter(filter);
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
