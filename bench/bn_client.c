/* The simulated fleet: VENs spread over keep-alive HTTP/1.1 connections on
 * one libuv loop. Each connection sends one request at a time (no
 * pipelining), so a reply's latency is the VTN's, not queueing in the bench.
 * With TLS (opts->tls) every connection runs an OpenSSL client over memory
 * BIOs (bn_tls.c) between the socket and the HTTP parser; the rest of the
 * path, timers and counting included, is the same as in plain HTTP.
 *
 * Phases: REGISTER (every VEN sends oadrCreatePartyRegistration, up to
 * BN_REG_ATTEMPTS times) -> the measured phase -> DONE. The registration
 * phase is a barrier, so the measured phase, and the CPU measured over it,
 * holds only what is measured. The measured phase by mode:
 * - poll: oadrPoll in a closed loop, or paced at --rate per VEN;
 * - register: none (the registrations are measured);
 * - handshake: each of --connections connections connects, completes a TLS
 *   handshake (optionally one poll), closes with close_notify and connects
 *   again, in a closed loop for --duration;
 * - idle: --connections connections open (at most --ramp at once), each
 *   completes a handshake and one poll, then they stay idle for --duration
 *   while the VTN's resident memory is read.
 * In the last two the VENs (--vens, default 1) register over connections of
 * their own, which are closed when the measured phase starts; measured
 * connection i polls VEN i % vens with that VEN's certificate.
 * Fleet mode (vtn-bench fleet, bn_fleet.c) is the events and reports modes'
 * one connection per VEN with a whole VEN life: registrations retried with
 * backoff, its report set up, polls at an interval with jitter, answers to
 * what the polls bring, updates at the back-interval, reconnects with
 * backoff; the run's owner is called once a second (bn_opts.tick). */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <llhttp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "vtn/id.h"
#include "vtn/log.h"

#include "bn_internal.h"

#define BN_BODY_MAX (1u << 20)  /* a reply body past this is an I/O error */
#define BN_REQ_MAX 8192         /* one request (registration or poll) */
#define BN_VEN_ID_MAX 128       /* venIDs from other VTNs can be longer than ours */
#define BN_REG_ATTEMPTS 3       /* a VEN whose registration fails this often sits out */
#define BN_RECONNECT_MS 100     /* after a connection error; keeps a dead target from spinning */
#define BN_REG_RETRY_MS 100     /* before a registration is retried */
#define BN_POLL_ERR_PAUSE_MS 10 /* after a failed poll, so a 503 storm is not a busy loop */
#define BN_SWEEP_MS 50          /* resolution of request and connect timeouts */
#define BN_TIMER_SLACK_NS 2000000ull /* see conn_next */
#define BN_IDLE_ATTEMPTS 3           /* idle mode: tries to open one connection */
#define BN_IDLE_SETTLE_MS 1000       /* idle mode: from the last connection idle to the reading */
#define BN_TLS_LOG_MAX 5             /* TLS failures logged with their reason */
/* per-poll: a VEN that opened a connection to poll polls on it when its poll is
 * this close (the loop's cached clock can fire the timer a little early) */
#define BN_FRESH_SLACK_NS 100000000ull

enum phase { PH_REGISTER, PH_POLL, PH_HANDSHAKE, PH_IDLE, PH_DONE };
/* CS_HANDSHAKE: TCP connected, TLS handshake running (TLS 1.3 in handshake
 * mode: also until the server confirmed it, see bn_conn.hs) */
enum cstate { CS_IDLE, CS_CONNECTING, CS_HANDSHAKE, CS_READY, CS_BUSY, CS_CLOSING };
/* RK_REREG: a registered VEN registers again during the poll phase
 * (--register-share), so polls share the workers with five-round requests. */
enum rkind { RK_REG, RK_POLL, RK_REREG, RK_CREATED, RK_RPOLL, RK_RREPORT, RK_UPDATE, RK_CREPORT };
/* After every registration the VTN queues its METADATA oadrRegisterReport
 * (docs/reports.md); a VEN takes it with a poll (RK_RPOLL) and answers
 * oadrRegisteredReport (RK_RREPORT) before it goes on, so measured polls
 * find the queue as they did before the VTN sent one. */
/* Reports mode goes on after a first registration's exchange: the VEN's
 * oadrRegisterReport (RR_REGREP), the poll that brings the VTN's
 * oadrCreateReport (RR_CPOLL) and its oadrCreatedReport (RR_CREATED); the VEN
 * counts as registered once they are done, and is ready to send updates. */
enum rrstage { RR_NONE, RR_POLL, RR_ANSWER, RR_REGREP, RR_CPOLL, RR_CREATED };
/* events mode, inside the poll phase: polling before the events exist, then
 * until every VEN has them (or the deadline), one more interval, then the
 * measured polls */
enum evstage { EV_OFF, EV_WARM, EV_FOLLOW, EV_AFTER, EV_MEASURE };
enum vstate { VS_PENDING, VS_OK, VS_FAILED };
enum fail { F_CONNECT, F_TIMEOUT, F_IO, F_TLS };
/* idle mode, per measured connection */
enum istate { IS_NONE, IS_IDLE, IS_GAVE_UP, IS_LOST };

/* A write libuv could not take at once (TLS output lives in a memory BIO that
 * is reused, so what is left is copied here until the write completes). */
typedef struct bn_chunk {
    uv_write_t req;
    char data[];
} bn_chunk;

typedef struct bn_ven {
    char ven_id[BN_VEN_ID_MAX];
    vtn_buf poll_req; /* the whole HTTP request, built once after registration */
    uint8_t state;    /* enum vstate */
    uint8_t attempts;
    /* events mode: slots (bit j = the j-th event created) */
    uint64_t want[2];         /* what targets it */
    uint64_t got[2], ans[2];  /* received, answer acknowledged */
    uint64_t recv_ns, ans_ns; /* when got (ans) covered want, from the first create; BN_NEVER */
    /* reports mode */
    uint8_t ready;               /* its report request is set up: it sends updates */
    char rr_id[BN_EVENT_ID_MAX]; /* the reportRequestID of the VTN's oadrCreateReport */
    uint32_t nupd, cap;          /* updates sent; room in upd_ok */
    uint8_t *upd_ok;             /* [cap]: update seq answered 200 (reports mode only) */
    uint64_t back_ns;            /* fleet mode: its update period, once a request is taken */
} bn_ven;

struct run;

typedef struct bn_conn {
    uv_tcp_t tcp;
    uv_connect_t creq;
    uv_write_t wreq;
    uv_timer_t timer; /* reconnect back-off, retry pause and --rate pacing */
    llhttp_t parser;
    struct run *run;
    enum cstate state;
    int tcp_open;                  /* tcp is initialised and its close callback has not run */
    int write_pending;             /* wreq is in use */
    uint32_t first, count, stride; /* this connection's VENs: first + k*stride, k < count */
    uint32_t cur;                  /* k of the VEN being registered, or last polled */
    uint32_t nreg;                 /* registered VENs on this connection */
    enum rkind kind;               /* of the request in flight */
    uint32_t ven;                  /* VEN index of the request in flight */
    uint64_t origin_ns;            /* latency is measured from here */
    uint64_t deadline_ns;          /* request or connect timeout */
    uint64_t wait_until_ns;        /* no request before this (retry pause) */
    uint64_t sched_ns;             /* --rate: the next poll's intended send time */
    uint64_t reconnect_ms;
    int timer_fired; /* conn_next runs from the pacing timer, not from a reply */
    int status, reply_done, keep_alive, body_overflow;
    vtn_buf body;
    vtn_buf reqbuf; /* the registration request in flight */
    /* TLS */
    uint32_t cert;           /* index of this connection's client certificate */
    bn_tls *tls;             /* while connected */
    bn_tls_session *session; /* the last session the server gave (--resume) */
    /* 0: handshake running; 1: done on our side; 2: the server has it too. In
     * TLS 1.2 the server's Finished comes last, so 1 is 2 at once; in TLS 1.3
     * the client finishes first, and the server's first message after our
     * Finished (a session ticket or a reply) shows it accepted our certificate. */
    uint8_t hs;
    uint64_t hs_start_ns; /* connect + handshake time counts from here */
    /* handshake and idle modes */
    uint8_t reg_only; /* only registers its VEN; closed when the measured phase starts */
    uint8_t polled;   /* the one poll of this connection was sent */
    uint8_t started;  /* idle mode: the ramp has opened it */
    uint8_t idle;     /* idle mode: enum istate */
    uint8_t attempts; /* idle mode: connects tried */
    uint32_t home;    /* the VEN it polls */
    /* events mode: an oadrCreatedEvent is built in reqbuf and goes before the next poll */
    int answer_due;
    uint64_t answering[2]; /* the slots it answers */
    /* the register report exchange of VEN rr_ven (enum rrstage); rr_first: it
     * follows the VEN's first registration, which counts as resolved after it */
    uint8_t rr, rr_first;
    uint32_t rr_ven;
    uint32_t upd_seq; /* reports mode: the update in flight */
    /* fleet mode */
    uint8_t answer_kind; /* of the answer in reqbuf when answer_due: RK_CREATED, RK_CREPORT */
    uint32_t fails;      /* failures in a row: the reconnect and retry backoff grows with them */
    uint64_t next_update_ns; /* its next oadrUpdateReport; 0 = none scheduled */
    /* per-poll connections (opts->per_poll): why we closed it (enum park), it
     * waits for a free slot under --max-open, it was opened for this exchange */
    uint8_t parked, queued, fresh;
} bn_conn;

/* per-poll: a connection we closed ourselves is no reconnect. P_EXCHANGE: the
 * exchange is over, the VEN connects again for its next one; P_REGISTERED: its
 * VEN is in, and connects once the poll phase has started. */
enum park { P_NONE, P_EXCHANGE, P_REGISTERED };

struct run {
    uv_loop_t loop;
    const bn_opts *o;
    bn_result *res;
    bn_ven *vens;
    bn_conn *conns;
    uint32_t nconns;
    uint32_t nmeas;     /* handshake and idle modes: conns[0..nmeas) are measured */
    uint32_t ramp_next; /* idle and events modes: the next connection to open */
    uint32_t opening;   /* idle mode: opened, not yet idle or given up */
    uint32_t idle_done; /* idle mode: idle or given up */
    int holding;        /* idle mode: every connection is idle or given up */
    uint64_t open_start_ns;
    unsigned tls_logged; /* TLS failures logged so far */
    enum phase phase;
    uint32_t resolved; /* VENs registered or given up */
    uint32_t nopen;    /* connections open (descriptors in use) */
    uint32_t *waitq;   /* per-poll: connections waiting for a slot under --max-open, FIFO */
    uint32_t wq_head, wq_len;
    uint64_t in_flight; /* polls and re-registrations sent and not yet answered or failed */
    int stop_sending;   /* --max-requests reached */
    uint64_t connects;  /* successful connects, to tell a dead target from a flaky one */
    int measuring;
    uint64_t reg_start_ns, measure_start_ns;
    uint64_t interval_ns; /* --rate */
    uint64_t self_t0, mach_busy0, mach_total0;
    uint64_t rng;
    uv_timer_t sweep, phase_timer, tick_timer;
    uv_timer_t end_timer; /* fleet with events and a duration: the end */
    uint64_t start_ns;
    uv_signal_t sigint;
    llhttp_settings_t settings;
    /* events mode */
    enum evstage ev_stage;
    bn_api *api;
    uint64_t ev_t0;                              /* the first POST /api/v1/events was sent */
    char ev_ids[BN_EVENTS_MAX][BN_EVENT_ID_MAX]; /* the eventIDs created, by slot */
    uint32_t ev_targeted, ev_received, ev_answered;
    bn_dist_event dist[BN_EVENTS_MAX + 16]; /* one distribute's events */
    vtn_buf scratch;  /* reports mode: an update's body while its request is built */
    char rbuf[65536]; /* shared: libuv calls read_cb right after alloc_cb on one thread */
    char pbuf[16384]; /* decrypted data, one TLS record at most, handed to llhttp at once */
};

static void conn_next(bn_conn *c);
static void conn_connect(bn_conn *c);
static void conn_close_clean(bn_conn *c, uint64_t reconnect_ms);
static void start_measured_phase(struct run *r);
static void finish(struct run *r);
static void on_timer(uv_timer_t *t);
static void on_tick(uv_timer_t *t);
static void idle_resolved(struct run *r);
static void conn_fail(bn_conn *c, enum fail why);
static void ev_summarize(struct run *r);
static void send_request(bn_conn *c, enum rkind kind, uint32_t v, uint64_t origin);
static void ven_resolved(struct run *r);

/* Events and reports modes: one connection per VEN, opened --ramp at a time. */
static int one_per_ven(const bn_opts *o)
{
    return o->mode == BN_MODE_EVENTS || o->mode == BN_MODE_REPORTS || o->mode == BN_MODE_FLEET;
}

static int is_fleet(const struct run *r)
{
    return r->o->mode == BN_MODE_FLEET;
}

/* The VEN registers its own report after registering (reports mode, fleet). */
static int sets_up_reports(const bn_opts *o)
{
    return o->mode == BN_MODE_REPORTS || (o->mode == BN_MODE_FLEET && o->fleet_reports);
}

/* A VEN that takes part in the measured phase. */
static int ven_usable(const struct run *r, uint32_t v)
{
    return r->vens[v].state == VS_OK && (r->o->mode != BN_MODE_REPORTS || r->vens[v].ready);
}

static uint64_t rng_next(struct run *r)
{
    /* xorshift64*: only spreads the first poll of each VEN over one interval */
    r->rng ^= r->rng >> 12;
    r->rng ^= r->rng << 25;
    r->rng ^= r->rng >> 27;
    return r->rng * 2685821657736338717ull;
}

/* fleet mode: a real VEN's wait after its n-th failure in a row: exponential
 * from --retry-base up to --retry-cap, drawn uniformly in [d/2, d] so a fleet
 * that failed together does not come back together. */
static uint64_t backoff_ns(struct run *r, uint32_t n)
{
    uint64_t d = r->o->retry_base_ns;
    for (uint32_t i = 1; i < n && d < r->o->retry_cap_ns; i++)
        d *= 2;
    if (d > r->o->retry_cap_ns)
        d = r->o->retry_cap_ns;
    return d / 2 + (d > 1 ? rng_next(r) % (d / 2 + 1) : 0);
}

static uint32_t ven_of(const bn_conn *c, uint32_t k)
{
    return c->first + k * c->stride;
}

static bn_counts *counts_of(struct run *r, enum rkind k)
{
    if (is_fleet(r) && (k == RK_UPDATE || k == RK_CREPORT))
        return k == RK_UPDATE ? &r->res->upd : &r->res->creport;
    if (k == RK_POLL && r->ev_stage != EV_OFF && r->ev_stage != EV_MEASURE && !is_fleet(r))
        return &r->res->warm;
    return k == RK_REG                        ? &r->res->reg
           : k == RK_REREG                    ? &r->res->rereg
           : k == RK_CREATED                  ? &r->res->created
           : k == RK_RPOLL || k == RK_RREPORT ? &r->res->regrep
                                              : &r->res->poll; /* RK_POLL, RK_UPDATE */
}

/* One failed request or handshake, by why it failed. */
static void count_failure(bn_counts *k, enum fail why)
{
    if (why == F_TIMEOUT)
        k->timeouts++;
    else if (why == F_TLS)
        k->tls++;
    else
        k->io++;
}

/* Where connection-level failures of the current phase are counted. */
static bn_counts *phase_counts(struct run *r)
{
    switch (r->phase) {
    case PH_REGISTER:
        return &r->res->reg;
    case PH_POLL:
        return counts_of(r, RK_POLL);
    default:
        return &r->res->hs;
    }
}

static int measured_conns(const struct run *r)
{
    return r->phase == PH_HANDSHAKE || r->phase == PH_IDLE;
}

static void timer_at(bn_conn *c, uint64_t at_ns)
{
    uint64_t now = uv_hrtime();
    uint64_t ms = at_ns > now ? (at_ns - now + 999999) / 1000000 : 0;
    uv_timer_start(&c->timer, on_timer, ms, 0);
}

static void measure_begin(struct run *r)
{
    const bn_opts *o = r->o;
    for (int i = 0; i < o->nprocs; i++)
        if (bn_proc_ticks(o->procs[i].pid, &o->procs[i].ticks0) < 0)
            o->procs[i].gone = 1;
    bn_proc_ticks(getpid(), &r->self_t0);
    bn_machine_ticks(&r->mach_busy0, &r->mach_total0);
    r->measure_start_ns = uv_hrtime();
    r->measuring = 1;
    if (o->on_measure)
        o->on_measure(o->tick_arg, 0);
}

static void measure_end(struct run *r)
{
    const bn_opts *o = r->o;
    if (!r->measuring)
        return;
    r->measuring = 0;
    r->res->seconds = (double)(uv_hrtime() - r->measure_start_ns) / 1e9;
    for (int i = 0; i < o->nprocs; i++)
        if (o->procs[i].gone || bn_proc_ticks(o->procs[i].pid, &o->procs[i].ticks1) < 0)
            o->procs[i].gone = 1;
    uint64_t self1 = 0, busy1 = 0, total1 = 0;
    bn_proc_ticks(getpid(), &self1);
    bn_machine_ticks(&busy1, &total1);
    long hz = sysconf(_SC_CLK_TCK);
    r->res->self_cpu_us = (self1 - r->self_t0) * 1000000ull / (uint64_t)(hz > 0 ? hz : 100);
    r->res->mach_busy = busy1 - r->mach_busy0;
    r->res->mach_total = total1 - r->mach_total0;
    if (o->on_measure)
        o->on_measure(o->tick_arg, 1);
}

/* idle mode: resident memory of every --pids process at point i. */
static void mem_read(struct run *r, int i)
{
    const bn_opts *o = r->o;
    for (int k = 0; k < o->nprocs; k++)
        if (bn_proc_mem(o->procs[k].pid, &o->procs[k].rss[i], &o->procs[k].anon[i]) < 0)
            o->procs[k].gone = 1;
}

/* ---- socket output ------------------------------------------------------ */

static void on_chunk_written(uv_write_t *req, int status)
{
    bn_conn *c = req->data;
    free(req); /* the chunk starts with its request */
    if (status < 0 && status != UV_ECANCELED)
        conn_fail(c, F_IO);
}

/* Writes ciphertext that lives in a reused buffer: what the socket does not
 * take at once is copied. 0 or a libuv error. */
static int wire_write(bn_conn *c, const char *p, size_t n)
{
    uv_buf_t b = uv_buf_init((char *)p, (unsigned)n);
    /* libuv answers UV_EAGAIN while earlier writes are queued, so order holds */
    int w = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    if (w == (int)n)
        return 0;
    if (w < 0 && w != UV_EAGAIN)
        return w;
    if (w > 0) {
        p += w;
        n -= (size_t)w;
    }
    bn_chunk *ch = malloc(sizeof *ch + n);
    if (ch == NULL)
        return UV_ENOMEM;
    memcpy(ch->data, p, n);
    ch->req.data = c;
    b = uv_buf_init(ch->data, (unsigned)n);
    int rc = uv_write(&ch->req, (uv_stream_t *)&c->tcp, &b, 1, on_chunk_written);
    if (rc < 0)
        free(ch);
    return rc;
}

/* Sends what OpenSSL produced. 0 or a libuv error. */
static int tls_flush(bn_conn *c)
{
    const char *p;
    size_t n = bn_tls_wire(c->tls, &p);
    if (n == 0)
        return 0;
    int rc = wire_write(c, p, n);
    bn_tls_wire_clear(c->tls);
    return rc;
}

static void tls_failed(bn_conn *c)
{
    struct run *r = c->run;
    if (r->tls_logged < BN_TLS_LOG_MAX) {
        char q[320];
        const char *e = bn_tls_error(c->tls);
        r->tls_logged++;
        vtn_warn("tls_failed", "conn=%u reason=%s%s", (unsigned)(c - r->conns),
                 vtn_log_quote(q, sizeof q, e, strlen(e)),
                 r->tls_logged == BN_TLS_LOG_MAX ? " msg=\"further failures are only counted\""
                                                 : "");
    }
    (void)tls_flush(c); /* the alert, if any */
    conn_fail(c, F_TLS);
}

/* idle mode: a measured connection closed. 1 when it is not to be reopened. */
static int idle_closed(bn_conn *c)
{
    struct run *r = c->run;
    if (c->idle == IS_IDLE) {
        c->idle = IS_LOST; /* the server closed an idle connection */
        r->res->idle_lost++;
        return 1;
    }
    if (c->idle != IS_NONE || !c->started)
        return 1;
    if (++c->attempts >= BN_IDLE_ATTEMPTS) {
        c->idle = IS_GAVE_UP;
        r->res->idle_failed++;
        idle_resolved(r);
        return 1;
    }
    return 0;
}

/* per-poll: connections that waited for a slot under --max-open open, oldest
 * first, while there is room. */
static void open_waiting(struct run *r)
{
    while (r->wq_len && r->nopen < r->o->max_open && r->phase != PH_DONE) {
        bn_conn *c = &r->conns[r->waitq[r->wq_head]];
        r->wq_head = (r->wq_head + 1) % r->nconns;
        r->wq_len--;
        c->queued = 0;
        if (c->state == CS_IDLE && !c->tcp_open)
            conn_connect(c);
    }
}

/* per-poll: the VEN's exchange is over (or it waits to start polling): it
 * closes its connection with close_notify, holding no descriptor until then. */
static void conn_park(bn_conn *c, enum park why, uint64_t until_ns)
{
    uint64_t now = uv_hrtime();
    c->parked = (uint8_t)why;
    conn_close_clean(c, until_ns > now ? (until_ns - now + 999999) / 1000000u : 0);
    /* nothing is pending (answers go before the park): a parked VEN gives back
     * its reply and request buffers, which the largest reply it took sized */
    vtn_buf_free(&c->body);
    vtn_buf_init(&c->body, BN_BODY_MAX);
    vtn_buf_free(&c->reqbuf);
    vtn_buf_init(&c->reqbuf, BN_REQ_MAX);
}

static void on_close(uv_handle_t *h)
{
    bn_conn *c = h->data;
    struct run *r = c->run;
    c->tcp_open = 0;
    c->state = CS_IDLE;
    c->write_pending = 0;
    bn_tls_free(&c->tls);
    r->nopen--;
    if (r->phase == PH_DONE)
        return;
    open_waiting(r);
    if (c->reg_only && measured_conns(r))
        return;
    if (r->phase == PH_IDLE && idle_closed(c))
        return;
    if (c->parked == P_REGISTERED) {
        if (r->phase == PH_POLL && c->nreg)
            timer_at(c, c->sched_ns); /* the poll phase started while it closed */
        return;
    }
    if (c->parked == P_NONE)
        r->res->reconnects++;
    timer_at(c, uv_hrtime() + c->reconnect_ms * 1000000ull);
}

static void conn_close(bn_conn *c, uint64_t reconnect_ms)
{
    if (!c->tcp_open || c->state == CS_CLOSING)
        return;
    c->state = CS_CLOSING;
    c->reconnect_ms = reconnect_ms;
    uv_close((uv_handle_t *)&c->tcp, on_close);
}

/* An intended close: a TLS connection says close_notify first, as a VEN does. */
static void conn_close_clean(bn_conn *c, uint64_t reconnect_ms)
{
    if (c->tls && c->hs && c->tcp_open && c->state != CS_CLOSING && c->state != CS_CONNECTING) {
        bn_tls_shutdown(c->tls);
        (void)tls_flush(c);
    }
    conn_close(c, reconnect_ms);
}

/* Checks whether the poll phase is over because --max-requests was reached. */
static void check_end(struct run *r)
{
    if (r->phase == PH_POLL && r->stop_sending && r->in_flight == 0)
        finish(r);
}

/* Events, reports and fleet modes: VENs connect and register --ramp at a
 * time, in order. With a certificate pool the first VEN of each certificate
 * registers before the others of that certificate start, so the VTN sees one
 * registration of each first and more connections of it after. */
static void ramp_open(struct run *r)
{
    uint32_t limit = r->nconns;
    if (is_fleet(r) && r->o->cert_pool && r->resolved < r->o->cert_pool)
        limit = r->o->cert_pool;
    while (r->phase == PH_REGISTER && r->ramp_next < limit &&
           r->ramp_next - r->resolved < r->o->ramp)
        conn_connect(&r->conns[r->ramp_next++]);
}

static void ven_resolved(struct run *r)
{
    r->resolved++;
    if (one_per_ven(r->o))
        ramp_open(r);
    if (r->resolved < r->o->vens)
        return;
    r->res->reg_seconds = (double)(uv_hrtime() - r->reg_start_ns) / 1e9;
    start_measured_phase(r);
}

/* A registration attempt failed: retry it later or give the VEN up. */
static void reg_failed(bn_conn *c, uint32_t v)
{
    struct run *r = c->run;
    bn_ven *ven = &r->vens[v];
    if (ven->state != VS_PENDING)
        return;
    if (is_fleet(r)) {
        /* a real VEN tries again after a backoff, until it is in (or the deadline) */
        if (ven->attempts < UINT8_MAX)
            ven->attempts++;
        c->wait_until_ns = uv_hrtime() + backoff_ns(r, ven->attempts);
        if (r->o->reg_attempts == 0 || ven->attempts < r->o->reg_attempts)
            return;
    } else {
        c->wait_until_ns = uv_hrtime() + BN_REG_RETRY_MS * 1000000ull;
    }
    if (is_fleet(r) || ++ven->attempts >= BN_REG_ATTEMPTS) {
        ven->state = VS_FAILED;
        r->res->reg_failed++;
        vtn_warn("register_failed", "ven=%" PRIu32 " attempts=%d", v, ven->attempts);
        ven_resolved(r);
    }
}

static int rep_setup_begin(bn_conn *c);
static int rep_setup_reply(bn_conn *c, const char *payload, const char *code);
static int fleet_message(bn_conn *c, const char *payload);

/* The register report exchange is over (answered, or failed: the VEN stays
 * registered either way). In reports mode a first registration's exchange that
 * went well goes on with the report setup. */
static void rr_done(bn_conn *c, int ok)
{
    if (ok && c->rr_first && c->rr < RR_REGREP && sets_up_reports(c->run->o) &&
        c->run->phase == PH_REGISTER && rep_setup_begin(c) == 0)
        return;
    int first = c->rr_first;
    c->rr = RR_NONE;
    c->rr_first = 0;
    if (first && c->run->phase == PH_REGISTER)
        ven_resolved(c->run);
}

/* A registration (first or again) succeeded: its report exchange comes next. */
static void rr_begin(bn_conn *c, uint32_t v, int first)
{
    c->rr = RR_POLL;
    c->rr_ven = v;
    c->rr_first = (uint8_t)first;
}

/* Sends the next request of the report exchange. */
static void rr_send(bn_conn *c)
{
    send_request(c, c->rr == RR_POLL || c->rr == RR_CPOLL ? RK_RPOLL : RK_RREPORT, c->rr_ven,
                 uv_hrtime());
}

/* The reply to the exchange's request: 1 when it went as a VEN expects. A
 * poll that finds nothing queued (a VTN that sends no oadrRegisterReport)
 * ends the exchange too. */
static int rr_reply(bn_conn *c, const char *payload, const char *code)
{
    struct run *r = c->run;
    int ok = strcmp(payload, "oadrResponse") == 0 && strcmp(code, "200") == 0;
    if (c->rr >= RR_REGREP)
        return rep_setup_reply(c, payload, code);
    if (is_fleet(r) && !ok) {
        vtn_debug("fleet_report_exchange", "ven=%" PRIu32 " kind=%d payload=%s code=%s", c->rr_ven,
                  (int)c->kind, payload, code);
        if (c->kind == RK_RPOLL && payload[0] && strcmp(payload, "oadrRegisterReport") != 0 &&
            strcmp(payload, "oadrResponse") != 0) {
            /* the poll brought something else first (with a certificate pool,
             * what the other VENs of the certificate caused): a VEN handles it
             * as any poll's message and goes on */
            rr_done(c, 1);
            return fleet_message(c, payload) == 0;
        }
    }
    if (c->kind == RK_RREPORT || strcmp(payload, "oadrRegisterReport") != 0) {
        rr_done(c, ok);
        return ok;
    }
    char rid[128];
    const bn_ven *ven = &r->vens[c->rr_ven];
    if (bn_xml_text(c->body.data, c->body.len, "requestID", rid, sizeof rid) < 0 ||
        bn_request_registered_report(&c->reqbuf, r->o->host, ven->ven_id, rid) < 0) {
        rr_done(c, 0);
        return 0;
    }
    c->rr = RR_ANSWER;
    return 1;
}

/* ---- reports mode: the report setup after registering, and the updates ---- */

/* fleet mode: the VEN sends its updates every --report-back, or, without it,
 * at the reportBackDuration the oadrCreateReport asked for. */
static void fleet_back(struct run *r, bn_ven *ven, const char *doc, size_t len)
{
    char d[64];
    double s = 0;
    if (r->o->report_back_ns) {
        ven->back_ns = r->o->report_back_ns;
        return;
    }
    /* <reportBackDuration><xcal:duration>PT15M</xcal:duration></reportBackDuration> */
    const char *at = memmem(doc, len, "reportBackDuration>", 19);
    if (at && bn_xml_text(at + 19, len - (size_t)(at + 19 - doc), "duration", d, sizeof d) > 0)
        s = bn_iso_duration_s(d);
    if (s > 0)
        ven->back_ns = (uint64_t)(s * 1e9);
}

/* The VEN's oadrRegisterReport goes next. 0, or <0 when it cannot be built. */
static int rep_setup_begin(bn_conn *c)
{
    struct run *r = c->run;
    char rid[64];
    snprintf(rid, sizeof rid, "regrep-%" PRIu32, c->rr_ven);
    if (bn_request_register_report(&c->reqbuf, r->o->host, r->vens[c->rr_ven].ven_id, rid) < 0)
        return -ENOMEM;
    c->rr = RR_REGREP;
    return 0;
}

/* A reply in the report setup: 1 when it went as a VEN expects. */
static int rep_setup_reply(bn_conn *c, const char *payload, const char *code)
{
    struct run *r = c->run;
    bn_ven *ven = &r->vens[c->rr_ven];
    char rid[128];
    switch (c->rr) {
    case RR_REGREP:
        if (strcmp(payload, "oadrRegisteredReport") == 0 && strcmp(code, "200") == 0) {
            c->rr = RR_CPOLL;
            return 1;
        }
        break;
    case RR_CPOLL:
        /* the oadrCreateReport the registration queued: its requestID comes
         * first, then the one oadrReportRequest's reportRequestID */
        if (strcmp(payload, "oadrCreateReport") == 0 &&
            bn_xml_text(c->body.data, c->body.len, "requestID", rid, sizeof rid) > 0 &&
            bn_xml_text(c->body.data, c->body.len, "reportRequestID", ven->rr_id,
                        sizeof ven->rr_id) > 0 &&
            bn_request_created_report(&c->reqbuf, r->o->host, ven->ven_id, rid, ven->rr_id) == 0) {
            c->rr = RR_CREATED;
            if (is_fleet(r))
                fleet_back(r, ven, c->body.data, c->body.len);
            return 1;
        }
        if (is_fleet(r) && strcmp(payload, "oadrResponse") == 0 && strcmp(code, "200") == 0) {
            /* Nothing queued (with a certificate pool another VEN of the same
             * certificate took it): a VEN goes on, and answers a request when
             * a later poll brings one. */
            rr_done(c, 1);
            return 1;
        }
        break;
    case RR_CREATED:
        if (strcmp(payload, "oadrResponse") == 0 && strcmp(code, "200") == 0) {
            ven->ready = 1;
            r->res->rep_ready++;
            rr_done(c, 1);
            return 1;
        }
        break;
    default:
        break;
    }
    vtn_warn("report_setup_failed", "ven=%" PRIu32 " stage=%d payload=%s code=%s", c->rr_ven,
             (int)c->rr, payload, code);
    rr_done(c, 0);
    return 0;
}

/* Sends the VEN's next oadrUpdateReport: intervals seq*k .. seq*k+k-1. */
static void send_update(bn_conn *c, uint32_t v, uint64_t origin)
{
    struct run *r = c->run;
    bn_ven *ven = &r->vens[v];
    if (!is_fleet(r) && ven->nupd == ven->cap) {
        uint32_t cap = ven->cap ? ven->cap * 2 : 64;
        uint8_t *ok = realloc(ven->upd_ok, cap);
        if (ok == NULL) {
            vtn_error("out_of_memory", "ven=%" PRIu32 " updates=%" PRIu32, v, ven->nupd);
            finish(r);
            return;
        }
        memset(ok + ven->cap, 0, cap - ven->cap);
        ven->upd_ok = ok;
        ven->cap = cap;
    }
    if (bn_request_update_report(&c->reqbuf, &r->scratch, r->o->host, ven->ven_id, ven->rr_id,
                                 ven->nupd, r->o->intervals) < 0) {
        vtn_error("request_build", "ven=%" PRIu32, v);
        finish(r);
        return;
    }
    c->upd_seq = ven->nupd++;
    send_request(c, RK_UPDATE, v, origin);
}

/* The request in flight (if any) failed, and the connection goes. */
static void conn_fail(bn_conn *c, enum fail why)
{
    struct run *r = c->run;
    if (r->phase == PH_DONE || c->state == CS_CLOSING || c->state == CS_IDLE)
        return;
    uint64_t reconnect = BN_RECONNECT_MS;
    if (is_fleet(r))
        reconnect = backoff_ns(r, ++c->fails) / 1000000u;
    if (why == F_CONNECT) {
        bn_counts *k = phase_counts(r);
        k->conn++;
        if (r->connects == 0 && k->conn >= 3ull * r->nconns) {
            /* Nobody is listening: give up now rather than at the registration deadline. */
            vtn_error("target_unreachable", "connect_failures=%" PRIu64, k->conn);
            finish(r);
            return;
        }
    } else if (c->state == CS_HANDSHAKE) {
        /* the handshake failed (an EOF here is the server hanging up on it) */
        count_failure(phase_counts(r), why);
    } else if (c->state == CS_BUSY) {
        count_failure(counts_of(r, c->kind), why);
        c->state = CS_READY; /* so a nested finish() sees a settled connection */
        if (c->kind == RK_REG) {
            reg_failed(c, c->ven);
        } else { /* a poll or a re-registration: the VEN stays registered */
            r->in_flight--;
            if (c->kind == RK_RPOLL || c->kind == RK_RREPORT)
                rr_done(c, 0);
            check_end(r);
        }
    } else {
        /* the server closed an idle keep-alive connection: not an error. A
         * fleet VEN connects again when it next has something to send. */
        uint64_t now = uv_hrtime();
        reconnect = 0;
        if (is_fleet(r) && r->phase == PH_POLL && c->sched_ns > now)
            reconnect = (c->sched_ns - now) / 1000000u;
    }
    conn_close(c, reconnect);
}

static void on_write(uv_write_t *req, int status)
{
    bn_conn *c = req->data;
    c->write_pending = 0;
    if (status < 0 && status != UV_ECANCELED)
        conn_fail(c, F_IO);
}

static void send_request(bn_conn *c, enum rkind kind, uint32_t v, uint64_t origin)
{
    struct run *r = c->run;
    vtn_buf *req = kind == RK_POLL || kind == RK_RPOLL ? &r->vens[v].poll_req : &c->reqbuf;
    if (kind == RK_CREATED || kind == RK_CREPORT)
        c->answer_due = 0;
    uint64_t now = uv_hrtime();
    if (c->write_pending && !c->tls) {
        /* The previous request is still being written although its reply came: the
         * server answered early. Start over on a new connection. */
        conn_close(c, 0);
        return;
    }
    c->kind = kind;
    c->ven = v;
    c->origin_ns = origin;
    c->deadline_ns = now + r->o->timeout_ns;
    c->status = 0;
    c->reply_done = 0;
    c->body_overflow = 0;
    vtn_buf_reset(&c->body);
    c->state = CS_BUSY;
    counts_of(r, kind)->sent++;
    if (kind != RK_REG) {
        r->in_flight++;
        if (kind != RK_RPOLL && kind != RK_RREPORT &&
            r->res->poll.sent + r->res->rereg.sent + r->res->warm.sent >= r->o->max_requests)
            r->stop_sending = 1;
    }
    if (c->tls) {
        if (bn_tls_write(c->tls, req->data, req->len) < 0)
            tls_failed(c);
        else if (tls_flush(c) < 0)
            conn_fail(c, F_IO);
        return;
    }
    uv_buf_t b = uv_buf_init(req->data, (unsigned)req->len);
    int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    if (n == (int)req->len)
        return;
    if (n < 0 && n != UV_EAGAIN) {
        conn_fail(c, F_IO);
        return;
    }
    if (n > 0) {
        b.base += n;
        b.len -= (size_t)n;
    }
    c->wreq.data = c;
    c->write_pending = 1;
    if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_write) < 0) {
        c->write_pending = 0;
        conn_fail(c, F_IO);
    }
}

/* The VEN's oadrCreatePartyRegistration: its first (RK_REG) or, in the poll
 * phase, a re-registration (RK_REREG) that lands on the same record by its
 * venName under the open policy. */
static void send_registration(bn_conn *c, enum rkind kind, uint32_t v, uint64_t origin)
{
    struct run *r = c->run;
    char name[96], rid[112];
    snprintf(name, sizeof name, "bench-%s-%" PRIu32, r->o->run_id, v);
    if (kind == RK_REG)
        r->res->reg_attempts++;
    if (kind == RK_REG)
        snprintf(rid, sizeof rid, "%s-%u", name, (unsigned)r->vens[v].attempts);
    else
        snprintf(rid, sizeof rid, "%s-r%" PRIu64, name, r->res->rereg.sent);
    char url[256];
    if (v < r->o->push_vens) /* push_url holds one %u: the VEN's endpoint */
        snprintf(url, sizeof url, r->o->push_url, (unsigned)v);
    if (bn_request_registration_push(&c->reqbuf, r->o->host, name, rid,
                                     v < r->o->push_vens ? url : NULL) < 0) {
        vtn_error("request_build", "ven=%" PRIu32, v);
        if (kind == RK_REG) {
            r->vens[v].attempts = BN_REG_ATTEMPTS - 1;
            reg_failed(c, v);
        }
        return;
    }
    send_request(c, kind, v, origin);
}

/* handshake and idle modes: the one poll of a measured connection. */
static void send_home_poll(bn_conn *c)
{
    struct run *r = c->run;
    c->polled = 1;
    if (r->vens[c->home].state != VS_OK) {
        conn_next(c); /* its VEN did not register: nothing to poll with */
        return;
    }
    send_request(c, RK_POLL, c->home, uv_hrtime());
}

/* fleet mode: the next poll interval, spread by --poll-jitter. */
static uint64_t fleet_interval(struct run *r)
{
    double u = (double)(rng_next(r) >> 11) / 9007199254740992.0; /* [0, 1) */
    double f = 1.0 + r->o->jitter * (2.0 * u - 1.0);
    return (uint64_t)((double)r->interval_ns * (f > 0.01 ? f : 0.01));
}

/* fleet mode: nothing to send before `at`. A keep-alive VEN waits on its
 * connection; a per-poll one closes it and connects again then. */
static void fleet_wait(bn_conn *c, uint64_t at)
{
    if (c->run->o->per_poll)
        conn_park(c, P_EXCHANGE, at);
    else
        timer_at(c, at);
}

/* fleet mode, poll phase: the VEN's update when it is due, else its poll when
 * that is due, else a timer for whichever comes first. A VEN that was away
 * (a reconnect) does not catch up: it polls once and goes on from there. */
static void fleet_next(bn_conn *c, uint64_t now)
{
    struct run *r = c->run;
    uint32_t v = ven_of(c, 0);
    bn_ven *ven = &r->vens[v];
    int fired = c->timer_fired;
    int fresh = c->fresh;
    c->timer_fired = 0;
    c->fresh = 0;
    if (ven->state != VS_OK || v < r->o->push_vens) /* a push VEN does not poll */
        return;
    if (ven->back_ns && c->next_update_ns == 0)
        c->next_update_ns = now + rng_next(r) % ven->back_ns; /* a random phase */
    /* libuv timers have 1 ms steps: see conn_next */
    uint64_t slack = fired ? BN_TIMER_SLACK_NS : fresh ? BN_FRESH_SLACK_NS : 0;
    if (now + slack < c->wait_until_ns) {
        fleet_wait(c, c->wait_until_ns);
        return;
    }
    if (c->next_update_ns && now + slack >= c->next_update_ns) {
        uint64_t origin = !fired && now > c->next_update_ns ? c->next_update_ns : now;
        c->next_update_ns += ven->back_ns;
        if (c->next_update_ns <= now)
            c->next_update_ns = now + ven->back_ns;
        send_update(c, v, origin);
        return;
    }
    if (r->interval_ns && now + slack < c->sched_ns) {
        uint64_t at = c->sched_ns;
        if (c->next_update_ns && c->next_update_ns < at)
            at = c->next_update_ns;
        fleet_wait(c, at);
        return;
    }
    uint64_t origin = now;
    if (r->interval_ns) {
        /* as in conn_next: a poll held back by the previous reply counts from its slot */
        if (!fired && now > c->sched_ns && now - c->sched_ns < r->interval_ns)
            origin = c->sched_ns;
        c->sched_ns += fleet_interval(r);
        if (c->sched_ns <= now)
            c->sched_ns = now + fleet_interval(r);
    }
    send_request(c, RK_POLL, v, origin);
}

/* Decides what a connection that is ready does next. */
static void conn_next(bn_conn *c)
{
    struct run *r = c->run;
    if (c->state != CS_READY)
        return;
    uint64_t now = uv_hrtime();
    if (r->phase == PH_HANDSHAKE) {
        if (c->reg_only)
            return;
        if (r->o->hs_poll && !c->polled) {
            send_home_poll(c);
            return;
        }
        if (c->hs < 2)
            return;             /* TLS 1.3: the server has not confirmed the handshake yet */
        conn_close_clean(c, 0); /* on_close connects again */
        return;
    }
    if (r->phase == PH_IDLE) {
        if (c->reg_only || c->idle != IS_NONE)
            return;
        if (!c->polled) {
            send_home_poll(c);
            return;
        }
        c->idle = IS_IDLE; /* the poll was answered: the connection stays open, idle */
        r->res->idle_ok++;
        idle_resolved(r);
        return;
    }
    if (c->rr != RR_NONE && (r->phase == PH_REGISTER || r->phase == PH_POLL)) {
        /* a refused exchange request is asked again after its pause (on_reply),
         * on this connection: a per-poll park would drop the answer in reqbuf */
        if (now < c->wait_until_ns) {
            timer_at(c, c->wait_until_ns);
            return;
        }
        rr_send(c);
        return;
    }
    if (r->phase == PH_REGISTER) {
        while (c->cur < c->count && r->vens[ven_of(c, c->cur)].state != VS_PENDING)
            c->cur++;
        if (c->cur == c->count) {
            /* all of this connection's VENs are resolved; a per-poll VEN
             * holds no connection until the polls start */
            if (is_fleet(r) && r->o->per_poll)
                conn_park(c, P_REGISTERED, 0);
            return;
        }
        if (now < c->wait_until_ns) {
            timer_at(c, c->wait_until_ns);
            return;
        }
        send_registration(c, RK_REG, ven_of(c, c->cur), uv_hrtime());
        return;
    }
    if (r->phase != PH_POLL || r->stop_sending || c->nreg == 0)
        return;
    if (c->answer_due) {
        /* a VEN answers a distribute (fleet: or a report request) at once, before its next poll */
        send_request(c, is_fleet(r) ? (enum rkind)c->answer_kind : RK_CREATED, ven_of(c, c->cur),
                     now);
        return;
    }
    if (is_fleet(r)) {
        fleet_next(c, now);
        return;
    }
    int fired = c->timer_fired;
    c->timer_fired = 0;
    uint64_t at = c->wait_until_ns;
    if (r->interval_ns && c->sched_ns > at)
        at = c->sched_ns;
    /* libuv timers have 1 ms steps and a cached loop clock, so a timer may fire a
     * little before `at`: accept that rather than wait another whole step. */
    if (now < at && !(fired && at - now < BN_TIMER_SLACK_NS)) {
        timer_at(c, at);
        return;
    }
    do
        c->cur = (c->cur + 1) % c->count;
    while (!ven_usable(r, ven_of(c, c->cur)));
    uint64_t origin = now;
    if (r->interval_ns) {
        /* A poll that is due while the previous reply is still out leaves when that
         * reply arrives; its latency counts from the time it was due, so a slow VTN
         * cannot hide its queueing (coordinated omission). A poll sent by our own
         * timer counts from now: the timer's lateness is the bench's, not the VTN's. */
        if (!fired && now > c->sched_ns)
            origin = c->sched_ns;
        c->sched_ns += r->interval_ns;
    }
    if (r->o->mode == BN_MODE_REPORTS)
        send_update(c, ven_of(c, c->cur), origin);
    else if (r->o->rereg_pct && rng_next(r) % 100 < r->o->rereg_pct)
        send_registration(c, RK_REREG, ven_of(c, c->cur), origin);
    else
        send_request(c, RK_POLL, ven_of(c, c->cur), origin);
}

static void on_timer(uv_timer_t *t)
{
    bn_conn *c = t->data;
    if (c->run->phase == PH_DONE)
        return;
    if (c->state == CS_IDLE) {
        if (!(c->reg_only && measured_conns(c->run)))
            conn_connect(c);
    } else {
        c->timer_fired = 1;
        conn_next(c);
    }
}

/* ---- events mode -------------------------------------------------------- */

static int mask_has(const uint64_t *m, uint32_t j)
{
    return (m[j / 64] >> (j % 64)) & 1u;
}

static void mask_set(uint64_t *m, uint32_t j)
{
    m[j / 64] |= 1ull << (j % 64);
}

static int mask_covers(const uint64_t *m, const uint64_t *want)
{
    return (m[0] & want[0]) == want[0] && (m[1] & want[1]) == want[1];
}

static int ev_slot(const struct run *r, const char *id)
{
    for (uint32_t j = 0; j < r->res->ev_created; j++)
        if (strcmp(r->ev_ids[j], id) == 0)
            return (int)j;
    return -1;
}

static int answers_expected(const bn_opts *o)
{
    return o->answer && !o->rr_never;
}

static void follow_done(struct run *r);
static void on_measure_start(uv_timer_t *t);

/* After a VEN got further: the follow stage ends once every targeted VEN has
 * every event (and, when answers are expected, every answer acknowledged). */
static void ev_check_done(struct run *r)
{
    if (r->ev_stage != EV_FOLLOW || r->ev_received < r->ev_targeted)
        return;
    if (answers_expected(r->o) && r->ev_answered < r->ev_targeted)
        return;
    follow_done(r);
}

/* A poll brought an oadrDistributeEvent: note what the VEN got and, as a VEN
 * does, answer the events that ask for it. 0, or -1 when it is malformed. */
static int on_distribute(bn_conn *c, uint64_t now)
{
    struct run *r = c->run;
    uint32_t v = c->ven;
    bn_ven *ven = &r->vens[v];
    char rid[128];
    int n = bn_distribute_parse(c->body.data, c->body.len, r->dist,
                                (int)(sizeof r->dist / sizeof r->dist[0]), rid, sizeof rid);
    if (n < 0)
        return -1;
    int nans = 0;
    uint64_t answering[2] = {0, 0};
    for (int i = 0; i < n; i++) {
        int j = ev_slot(r, r->dist[i].id);
        if (j < 0)
            r->res->foreign++;
        else
            mask_set(ven->got, (uint32_t)j);
        /* fleet: a VEN answers every event that asks for it each time it gets
         * it (the VTN sends a set again only when it changed or was not answered) */
        if (r->o->answer && r->dist[i].required &&
            (is_fleet(r) || j < 0 || !mask_has(ven->ans, (uint32_t)j))) {
            bn_dist_event *a = &r->dist[nans++];
            *a = r->dist[i];
            if (is_fleet(r) && (double)(rng_next(r) % 1000000u) >= r->o->opt_in_share * 1000000.0) {
                a->opt_out = 1;
                r->res->opted_out++;
            }
            if (j >= 0)
                mask_set(answering, (uint32_t)j);
        }
    }
    r->res->deliveries++;
    if (ven->recv_ns == BN_NEVER && r->ev_stage >= EV_FOLLOW && mask_covers(ven->got, ven->want)) {
        ven->recv_ns = now - r->ev_t0;
        r->ev_received++;
    }
    if (nans > 0) {
        if (bn_request_created_event(&c->reqbuf, r->o->host, ven->ven_id, rid, r->dist, nans) < 0)
            return -1;
        c->answer_due = 1;
        c->answer_kind = RK_CREATED;
        c->answering[0] = answering[0];
        c->answering[1] = answering[1];
    }
    ev_check_done(r);
    return 0;
}

/* The VTN took the VEN's oadrCreatedEvent (oadrResponse 200). */
static void on_answered(bn_conn *c, uint64_t now)
{
    struct run *r = c->run;
    bn_ven *ven = &r->vens[c->ven];
    ven->ans[0] |= c->answering[0];
    ven->ans[1] |= c->answering[1];
    if (ven->ans_ns == BN_NEVER && r->ev_stage >= EV_FOLLOW && answers_expected(r->o) &&
        mask_covers(ven->ans, ven->want)) {
        ven->ans_ns = now - r->ev_t0;
        r->ev_answered++;
    }
    ev_check_done(r);
}

/* fleet mode: a poll brought something other than an event. A VEN answers an
 * oadrCreateReport with oadrCreatedReport (and then sends updates at its
 * back-interval) and an oadrRegisterReport with oadrRegisteredReport; other
 * messages (oadrCancelReport, ...) are taken as they come. 0, or -1 when a
 * request it must answer is malformed. */
static int fleet_message(bn_conn *c, const char *payload)
{
    struct run *r = c->run;
    bn_ven *ven = &r->vens[c->ven];
    char rid[128];
    if (strcmp(payload, "oadrCreateReport") == 0) {
        if (bn_xml_text(c->body.data, c->body.len, "requestID", rid, sizeof rid) <= 0 ||
            bn_xml_text(c->body.data, c->body.len, "reportRequestID", ven->rr_id,
                        sizeof ven->rr_id) <= 0 ||
            bn_request_created_report(&c->reqbuf, r->o->host, ven->ven_id, rid, ven->rr_id) < 0)
            return -1;
        fleet_back(r, ven, c->body.data, c->body.len);
        if (!ven->ready) {
            ven->ready = 1;
            r->res->rep_ready++;
        }
        c->answer_due = 1;
        c->answer_kind = RK_CREPORT;
        return 0;
    }
    if (strcmp(payload, "oadrRegisterReport") == 0) {
        if (bn_xml_text(c->body.data, c->body.len, "requestID", rid, sizeof rid) <= 0 ||
            bn_request_registered_report(&c->reqbuf, r->o->host, ven->ven_id, rid) < 0)
            return -1;
        c->rr = RR_ANSWER; /* conn_next sends it through the register report exchange */
        c->rr_ven = c->ven;
        c->rr_first = 0;
        return 0;
    }
    return 0;
}

static void on_reply(bn_conn *c)
{
    struct run *r = c->run;
    uint64_t now = uv_hrtime();
    /* what was answered: handling the reply may send the next request on c
     * (the last VEN's setup reply starts the measured phase) */
    const enum rkind kind = c->kind;
    const uint32_t ven_i = c->ven;
    const uint64_t origin = c->origin_ns;
    bn_counts *k = counts_of(r, kind);
    char text[BN_VEN_ID_MAX];
    int ok = 0;
    c->state = CS_READY;
    c->reply_done = 0;
    if (!c->keep_alive)
        conn_close(c, 0); /* first, so nothing below sends on this connection */
    k->done++;
    if (c->status >= 100 && c->status < 600)
        k->status[c->status / 100]++;
    if (c->status != 200) {
        k->http++;
    } else if (c->body_overflow) {
        k->io++;
    } else if (c->kind == RK_RPOLL || c->kind == RK_RREPORT) {
        char payload[64];
        if (bn_xml_payload(c->body.data, c->body.len, payload, sizeof payload) < 0)
            payload[0] = '\0';
        if (bn_xml_text(c->body.data, c->body.len, "responseCode", text, sizeof text) < 0)
            text[0] = '\0';
        ok = rr_reply(c, payload, text);
        if (!ok)
            k->oadr++;
    } else if (c->kind == RK_UPDATE) {
        char payload[64];
        if (bn_xml_payload(c->body.data, c->body.len, payload, sizeof payload) == 0 &&
            strcmp(payload, "oadrUpdatedReport") == 0 &&
            bn_xml_text(c->body.data, c->body.len, "responseCode", text, sizeof text) >= 0 &&
            strcmp(text, "200") == 0) {
            ok = 1;
            if (r->vens[c->ven].upd_ok)
                r->vens[c->ven].upd_ok[c->upd_seq] = 1;
            else
                r->res->intervals_ok += r->o->intervals;
        } else {
            k->oadr++;
        }
    } else if (c->kind != RK_POLL) {
        /* a registration must name the venID; an oadrCreatedEvent gets a bare oadrResponse */
        if (bn_xml_text(c->body.data, c->body.len, "responseCode", text, sizeof text) >= 0 &&
            strcmp(text, "200") == 0 &&
            (c->kind == RK_CREATED || c->kind == RK_CREPORT ||
             bn_xml_text(c->body.data, c->body.len, "venID", text, sizeof text) > 0))
            ok = 1;
        else
            k->oadr++;
    } else {
        char payload[64];
        if (bn_xml_payload(c->body.data, c->body.len, payload, sizeof payload) < 0) {
            k->oadr++;
        } else if (strcmp(payload, "oadrResponse") != 0) {
            k->messages++; /* something was queued for this VEN: a valid answer */
            ok = 1;
            int bad = 0;
            if ((r->o->mode == BN_MODE_EVENTS || is_fleet(r)) &&
                strcmp(payload, "oadrDistributeEvent") == 0)
                bad = on_distribute(c, now) < 0;
            else if (is_fleet(r))
                bad = fleet_message(c, payload) < 0;
            if (bad) {
                k->messages--;
                k->oadr++;
                ok = 0;
            }
        } else if (bn_xml_text(c->body.data, c->body.len, "responseCode", text, sizeof text) >= 0 &&
                   strcmp(text, "200") == 0) {
            ok = 1;
        } else {
            k->oadr++;
        }
    }
    if (ok && r->res->tick_hist)
        bn_hist_record(r->res->tick_hist, now - origin);
    if (kind == RK_REG) {
        bn_ven *ven = &r->vens[ven_i];
        if (ok && ven->state == VS_PENDING) {
            k->ok++;
            if ((uint32_t)ven->attempts + 1 > r->res->reg_max_attempts)
                r->res->reg_max_attempts = (uint32_t)ven->attempts + 1;
            c->fails = 0;
            bn_hist_record(r->res->reg_hist, now - origin);
            snprintf(ven->ven_id, sizeof ven->ven_id, "%s", text);
            if (bn_request_poll(&ven->poll_req, r->o->host, ven->ven_id) < 0) {
                ven->state = VS_FAILED;
                r->res->reg_failed++;
                ven_resolved(r);
            } else {
                ven->state = VS_OK;
                r->res->registered++;
                if (ven_i < r->o->push_vens)
                    ven_resolved(r); /* the VTN pushes its report exchange (bn_pushsrv.c) */
                else if (is_fleet(r) && r->o->cert_pool && ven_i >= r->o->cert_pool)
                    /* A pool's certificate is one VEN to the VTN: the first VEN
                     * presenting it ran the report exchanges, this one is another
                     * connection of that VEN and goes on to poll. */
                    ven_resolved(r);
                else
                    rr_begin(c, ven_i, 1); /* resolved once its report exchange is over */
            }
        } else if (!ok) {
            reg_failed(c, ven_i);
        }
    } else {
        r->in_flight--;
        if (ok && kind == RK_REREG)
            rr_begin(c, ven_i, 0);
        if (ok) {
            k->ok++;
            c->fails = 0;
            if (kind == RK_UPDATE && is_fleet(r))
                bn_hist_record(r->res->upd_hist, now - origin);
            else if (kind == RK_CREATED)
                on_answered(c, now);
            else if (kind == RK_RPOLL || kind == RK_RREPORT || kind == RK_CREPORT)
                ; /* the register report exchange, a report request's answer: not measured */
            else if (kind == RK_POLL && k != &r->res->poll)
                ; /* events mode before the measured polls: no latency kept */
            else
                bn_hist_record(kind == RK_REREG ? r->res->rereg_hist : r->res->poll_hist,
                               now - origin);
        } else if (is_fleet(r) && c->rr != RR_NONE) {
            /* the exchange request was refused (a 503) and stays due: a real
             * VEN asks again after the backoff of its registration */
            c->wait_until_ns = now + backoff_ns(r, ++c->fails);
        } else {
            c->wait_until_ns = now + BN_POLL_ERR_PAUSE_MS * 1000000ull;
        }
        check_end(r);
    }
    if (r->phase != PH_DONE)
        conn_next(c);
}

static int on_message_begin(llhttp_t *p)
{
    bn_conn *c = p->data;
    /* A second reply to one request: the stream is out of step. */
    return c->reply_done || c->state != CS_BUSY ? -1 : 0;
}

static int on_headers_complete(llhttp_t *p)
{
    bn_conn *c = p->data;
    c->status = llhttp_get_status_code(p);
    return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
    bn_conn *c = p->data;
    if (!c->body_overflow && vtn_buf_append(&c->body, at, len) < 0)
        c->body_overflow = 1;
    return 0;
}

static int on_message_complete(llhttp_t *p)
{
    bn_conn *c = p->data;
    c->reply_done = 1;
    c->keep_alive = llhttp_should_keep_alive(p);
    return 0;
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    bn_conn *c = h->data;
    (void)hint;
    *buf = uv_buf_init(c->run->rbuf, sizeof c->run->rbuf);
}

/* HTTP bytes from the server (n > 0), or the end of its stream (n < 0:
 * UV_EOF, close_notify or an error). Returns 0 while the connection can take
 * more, -1 when it failed, closed or has no request out. */
static int on_data(bn_conn *c, ssize_t n, const char *p)
{
    if (c->state == CS_CLOSING || c->state == CS_IDLE)
        return -1;
    if (n == UV_EOF && c->state == CS_BUSY && llhttp_finish(&c->parser) == HPE_OK &&
        c->reply_done) {
        c->keep_alive = 0; /* a reply delimited by the end of the connection */
        on_reply(c);
        return -1;
    }
    if (n < 0 || c->state != CS_BUSY) {
        conn_fail(c, F_IO);
        return -1;
    }
    if (llhttp_execute(&c->parser, p, (size_t)n) != HPE_OK) {
        vtn_debug("bad_reply", "reason=\"%s\"", llhttp_get_error_reason(&c->parser));
        conn_fail(c, F_IO);
        return -1;
    }
    if (c->reply_done)
        on_reply(c);
    return c->state == CS_CLOSING || c->state == CS_IDLE ? -1 : 0;
}

/* Handshake and idle modes count a handshake once the server has it too. */
static void hs_confirmed(bn_conn *c)
{
    struct run *r = c->run;
    c->hs = 2;
    if (c->state == CS_HANDSHAKE)
        c->state = CS_READY;
    r->res->handshakes++;
    if (bn_tls_resumed(c->tls))
        r->res->resumed++;
    if (!measured_conns(r) || c->reg_only)
        return;
    bn_counts *k = &r->res->hs;
    k->done++;
    k->ok++;
    if (bn_tls_resumed(c->tls))
        r->res->hs_resumed++;
    bn_hist_record(r->res->hs_hist, uv_hrtime() - c->hs_start_ns);
    if (r->phase == PH_HANDSHAKE && k->ok >= r->o->max_requests)
        finish(r);
}

/* Our side of the handshake is done. */
static void hs_client_done(bn_conn *c)
{
    struct run *r = c->run;
    if (!r->res->tls_desc[0])
        bn_tls_describe(c->tls, r->res->tls_desc, sizeof r->res->tls_desc);
    c->hs = 1;
    /* In handshake mode without a poll, a TLS 1.3 connection waits in
     * CS_HANDSHAKE (under the handshake deadline) for the server's ticket. */
    if (!(r->phase == PH_HANDSHAKE && !r->o->hs_poll && bn_tls_is_tls13(c->tls)))
        c->state = CS_READY;
    if (!bn_tls_is_tls13(c->tls))
        hs_confirmed(c);
    if (r->phase != PH_DONE)
        conn_next(c);
}

static void tls_input(bn_conn *c, const char *p, size_t n)
{
    struct run *r = c->run;
    if (bn_tls_feed(c->tls, p, n) < 0) {
        conn_fail(c, F_IO);
        return;
    }
    if (c->state == CS_HANDSHAKE && c->hs == 0) {
        int rc = bn_tls_handshake(c->tls);
        if (tls_flush(c) < 0) {
            conn_fail(c, F_IO);
            return;
        }
        if (rc < 0) {
            tls_failed(c);
            return;
        }
        if (rc == 0)
            return;
        hs_client_done(c);
    }
    /* Records after the handshake: replies, TLS 1.3 tickets, alerts, close_notify. */
    while (c->state != CS_CLOSING && c->state != CS_IDLE && r->phase != PH_DONE) {
        int m = bn_tls_read(c->tls, r->pbuf, sizeof r->pbuf);
        if (c->hs == 1 && (m > 0 || bn_tls_sessions(c->tls) > 0)) {
            hs_confirmed(c);
            if (r->phase == PH_DONE)
                return;
            if (r->phase == PH_HANDSHAKE)
                conn_next(c); /* closes it when nothing else is due */
        }
        if (m > 0) {
            if (on_data(c, m, r->pbuf) < 0)
                return;
            continue;
        }
        if (m == 0)
            break;
        if (m == BN_TLS_CLOSED) {
            on_data(c, UV_EOF, NULL);
            return;
        }
        tls_failed(c);
        return;
    }
    if (c->state != CS_CLOSING && c->state != CS_IDLE && tls_flush(c) < 0)
        conn_fail(c, F_IO);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    bn_conn *c = s->data;
    if (nread == 0 || c->state == CS_CLOSING)
        return;
    if (c->tls && nread > 0)
        tls_input(c, buf->base, (size_t)nread);
    else
        (void)on_data(c, nread, buf->base);
}

static void on_connect(uv_connect_t *req, int status)
{
    bn_conn *c = req->data;
    if (status == UV_ECANCELED || c->run->phase == PH_DONE || c->state != CS_CONNECTING)
        return;
    if (status < 0) {
        vtn_debug("connect_failed", "error=%s", uv_err_name(status));
        conn_fail(c, F_CONNECT);
        return;
    }
    struct run *r = c->run;
    r->connects++;
    uv_tcp_nodelay(&c->tcp, 1);
    llhttp_init(&c->parser, HTTP_RESPONSE, &r->settings);
    c->parser.data = c;
    if (r->o->tls) {
        /* The handshake has its own --timeout from here. */
        c->state = CS_HANDSHAKE;
        c->hs = 0;
        c->deadline_ns = uv_hrtime() + r->o->timeout_ns;
        /* fleet: only a share of the reconnects resumes, the rest starts afresh */
        if (is_fleet(r) && c->session && r->o->resume_share < 1 &&
            (double)(rng_next(r) % 1000000u) >= r->o->resume_share * 1000000.0)
            bn_tls_session_free(&c->session);
        if (bn_tls_new(r->o->tls, c->cert, &c->session, &c->tls) < 0) {
            vtn_error("tls_new", "reason=\"out of memory\"");
            conn_fail(c, F_TLS);
            return;
        }
        if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0) {
            conn_fail(c, F_IO);
            return;
        }
        int rc = bn_tls_handshake(c->tls); /* writes the ClientHello */
        if (tls_flush(c) < 0)
            conn_fail(c, F_IO);
        else if (rc < 0)
            tls_failed(c);
        return;
    }
    c->state = CS_READY;
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0) {
        conn_fail(c, F_IO);
        return;
    }
    conn_next(c);
}

static void conn_connect(bn_conn *c)
{
    struct run *r = c->run;
    if (r->o->per_poll && r->nopen >= r->o->max_open) {
        /* --max-open: wait for a slot (open_waiting) */
        if (!c->queued) {
            c->queued = 1;
            r->waitq[(r->wq_head + r->wq_len++) % r->nconns] = (uint32_t)(c - r->conns);
        }
        return;
    }
    c->parked = P_NONE;
    c->fresh = (uint8_t)r->o->per_poll;
    c->hs = 0;
    c->polled = 0;
    c->hs_start_ns = uv_hrtime();
    if (measured_conns(r))
        r->res->hs.sent++;
    if (uv_tcp_init(&r->loop, &c->tcp) < 0) {
        phase_counts(r)->conn++;
        timer_at(c, uv_hrtime() + BN_RECONNECT_MS * 1000000ull);
        return;
    }
    c->tcp.data = c;
    c->tcp_open = 1;
    if (++r->nopen > r->res->peak_open)
        r->res->peak_open = r->nopen;
    c->state = CS_CONNECTING;
    c->creq.data = c;
    c->deadline_ns = uv_hrtime() + r->o->timeout_ns;
    int rc = uv_tcp_connect(&c->creq, &c->tcp, (const struct sockaddr *)&r->o->addr, on_connect);
    if (rc < 0) {
        vtn_debug("connect_failed", "error=%s", uv_err_name(rc));
        conn_fail(c, F_CONNECT);
    }
}

static void on_sweep(uv_timer_t *t)
{
    struct run *r = t->data;
    uint64_t now = uv_hrtime();
    for (uint32_t i = 0; i < r->nconns && r->phase != PH_DONE; i++) {
        bn_conn *c = &r->conns[i];
        if (c->state == CS_CONNECTING && now > c->deadline_ns)
            conn_fail(c, F_CONNECT);
        else if ((c->state == CS_BUSY || c->state == CS_HANDSHAKE) && now > c->deadline_ns)
            conn_fail(c, F_TIMEOUT);
    }
}

static void on_handle_closed(uv_handle_t *h)
{
    (void)h;
}

/* Ends the run: stops the measurement and closes every handle, so uv_run returns. */
static void finish(struct run *r)
{
    if (r->phase == PH_DONE)
        return;
    measure_end(r);
    if (r->ev_stage == EV_FOLLOW) /* interrupted while following */
        ev_summarize(r);
    r->phase = PH_DONE;
    /* a last sample for the part of a second since the previous one, so a run
     * shorter than a second has one too */
    if (is_fleet(r) && r->o->tick)
        on_tick(&r->tick_timer);
    uv_close((uv_handle_t *)&r->sweep, on_handle_closed);
    uv_close((uv_handle_t *)&r->tick_timer, on_handle_closed);
    uv_close((uv_handle_t *)&r->end_timer, on_handle_closed);
    uv_close((uv_handle_t *)&r->phase_timer, on_handle_closed);
    uv_close((uv_handle_t *)&r->sigint, on_handle_closed);
    for (uint32_t i = 0; i < r->nconns; i++) {
        bn_conn *c = &r->conns[i];
        uv_close((uv_handle_t *)&c->timer, on_handle_closed);
        conn_close_clean(c, 0);
    }
}

/* fleet mode: the owner's look at the fleet, about once a second. */
static void on_tick(uv_timer_t *t)
{
    struct run *r = t->data;
    bn_tick k;
    uint32_t connected = 0;
    for (uint32_t i = 0; i < r->nconns; i++)
        connected +=
            r->conns[i].tcp_open && (r->conns[i].state == CS_READY || r->conns[i].state == CS_BUSY);
    k.t = (double)(uv_hrtime() - r->start_ns) / 1e9;
    k.phase = r->phase == PH_REGISTER ? "setup" : r->phase == PH_DONE ? "done" : "measure";
    k.connected = connected;
    k.registered = r->res->registered;
    k.res = r->res;
    k.ev_ids = (const char(*)[BN_EVENT_ID_MAX])r->ev_ids;
    r->o->tick(r->o->tick_arg, &k);
}

static void on_phase_end(uv_timer_t *t)
{
    struct run *r = t->data;
    if (r->o->mode == BN_MODE_REPORTS && r->phase == PH_POLL) {
        /* Every update sent gets its answer (or its timeout) before the end,
         * so none is left stored-but-unanswered. */
        r->stop_sending = 1;
        if (r->in_flight)
            return;
    }
    finish(r);
}

static void on_register_deadline(uv_timer_t *t)
{
    struct run *r = t->data;
    /* Registration deadline: whoever is not registered now sits out. */
    vtn_warn("register_deadline", "resolved=%" PRIu32 " vens=%" PRIu32, r->resolved, r->o->vens);
    for (uint32_t i = 0; i < r->nconns; i++)
        r->conns[i].rr_first = 0; /* counted below with the rest */
    for (uint32_t v = 0; v < r->o->vens; v++) {
        if (r->vens[v].state == VS_PENDING) {
            r->vens[v].state = VS_FAILED;
            r->res->reg_failed++;
        }
    }
    for (uint32_t i = 0; i < r->nconns; i++)
        if (r->conns[i].state == CS_BUSY)
            conn_fail(&r->conns[i], F_TIMEOUT);
    r->resolved = r->o->vens - 1;
    ven_resolved(r);
}

static uint64_t ms_of(uint64_t ns)
{
    return (ns + 999999) / 1000000;
}

/* handshake and idle modes: the connections that registered go away. */
static void close_reg_conns(struct run *r)
{
    for (uint32_t i = r->nmeas; i < r->nconns; i++) {
        uv_timer_stop(&r->conns[i].timer);
        conn_close_clean(&r->conns[i], 0);
    }
}

static void start_handshake_phase(struct run *r)
{
    r->phase = PH_HANDSHAKE;
    close_reg_conns(r);
    measure_begin(r);
    uv_timer_start(&r->phase_timer, on_phase_end, ms_of(r->o->duration_ns), 0);
    for (uint32_t i = 0; i < r->nmeas && r->phase == PH_HANDSHAKE; i++)
        conn_connect(&r->conns[i]);
}

/* idle mode: opens connections until --ramp are on their way. */
static void ramp(struct run *r)
{
    while (r->phase == PH_IDLE && !r->holding && r->opening < r->o->ramp &&
           r->ramp_next < r->nmeas) {
        bn_conn *c = &r->conns[r->ramp_next++];
        c->started = 1;
        r->opening++;
        conn_connect(c);
    }
}

static void on_hold_end(uv_timer_t *t)
{
    struct run *r = t->data;
    mem_read(r, 2);
    finish(r);
}

/* A second after the last connection went idle: the memory reading, then the
 * hold, over which the CPU is measured. */
static void on_settled(uv_timer_t *t)
{
    struct run *r = t->data;
    uint32_t open = 0;
    for (uint32_t i = 0; i < r->nmeas; i++)
        open += r->conns[i].idle == IS_IDLE;
    r->res->idle_open = open;
    mem_read(r, 1);
    measure_begin(r);
    uv_timer_start(&r->phase_timer, on_hold_end, ms_of(r->o->duration_ns), 0);
}

static void begin_hold(struct run *r)
{
    if (r->holding)
        return;
    r->holding = 1;
    r->res->open_seconds = (double)(uv_hrtime() - r->open_start_ns) / 1e9;
    uv_timer_stop(&r->phase_timer);
    uv_timer_start(&r->phase_timer, on_settled, BN_IDLE_SETTLE_MS, 0);
}

static void idle_resolved(struct run *r)
{
    r->opening--;
    if (++r->idle_done >= r->nmeas)
        begin_hold(r);
    else
        ramp(r);
}

/* idle mode: what is not idle by --open-timeout is given up. */
static void on_open_timeout(uv_timer_t *t)
{
    struct run *r = t->data;
    vtn_warn("open_timeout", "idle=%" PRIu32 " connections=%" PRIu32, r->res->idle_ok, r->nmeas);
    for (uint32_t i = 0; i < r->nmeas; i++) {
        bn_conn *c = &r->conns[i];
        if (c->idle != IS_NONE)
            continue;
        c->idle = IS_GAVE_UP;
        r->res->idle_failed++;
        uv_timer_stop(&c->timer);
        conn_close(c, 0);
    }
    begin_hold(r);
}

static void start_idle_phase(struct run *r)
{
    r->phase = PH_IDLE;
    close_reg_conns(r);
    mem_read(r, 0);
    r->open_start_ns = uv_hrtime();
    uv_timer_start(&r->phase_timer, on_open_timeout, ms_of(r->o->open_timeout_ns), 0);
    ramp(r);
}

/* ---- events mode: the API side and the stages ---------------------------- */

static void setup_failed(struct run *r, const char *what, int rc, int status, const vtn_buf *body)
{
    if (rc < 0)
        snprintf(r->res->setup_error, sizeof r->res->setup_error, "%s: %s", what, strerror(-rc));
    else
        snprintf(r->res->setup_error, sizeof r->res->setup_error, "%s: HTTP %d %.*s", what, status,
                 (int)(body->len > 160 ? 160 : body->len), body->data ? body->data : "");
}

/* One API request with a JSON body; 0 when the status is the one expected. */
static int api_json(struct run *r, bn_api *api, const char *method, const char *path, json_t *body,
                    int want, vtn_buf *reply, const char *what)
{
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    int status = 0;
    int rc = body && text == NULL
                 ? -ENOMEM
                 : bn_api_call(api, method, path, text, text ? strlen(text) : 0, reply, &status);
    free(text);
    if (rc == 0 && status == want)
        return 0;
    setup_failed(r, what, rc, status, reply);
    return -1;
}

static void group_id(const bn_opts *o, uint32_t g, char *out, size_t len)
{
    snprintf(out, len, "bench-%s-g%" PRIu32, o->run_id, g);
}

static void market_context(const bn_opts *o, char *out, size_t len)
{
    snprintf(out, len, "http://bench.example/%s", o->run_id);
}

/* The program and the groups (VEN i in group i % groups), before polling. */
static int events_setup(struct run *r, bn_api *api, vtn_buf *reply)
{
    const bn_opts *o = r->o;
    char mc[128], name[64], path[160], gid[96];
    market_context(r->o, mc, sizeof mc);
    snprintf(name, sizeof name, "bench %s", o->run_id);
    json_t *b = json_pack("{s:s,s:s}", "name", name, "marketContext", mc);
    int rc = api_json(r, api, "POST", "/api/v1/programs", b, 201, reply, "POST /api/v1/programs");
    json_decref(b);
    if (rc < 0)
        return rc;
    uint64_t t0 = uv_hrtime();
    for (uint32_t g = 0; g < o->groups; g++) {
        json_t *ids = json_array();
        for (uint32_t v = g; v < o->vens; v += o->groups)
            if (r->vens[v].state == VS_OK)
                json_array_append_new(ids, json_string(r->vens[v].ven_id));
        b = json_pack("{s:o}", "venIDs", ids);
        group_id(r->o, g, gid, sizeof gid);
        snprintf(path, sizeof path, "/api/v1/groups/%s", gid);
        rc = api_json(r, api, "PUT", path, b, 201, reply, "PUT /api/v1/groups/{groupID}");
        json_decref(b);
        if (rc < 0)
            return rc;
        r->res->groups_made++;
    }
    r->res->groups_seconds = (double)(uv_hrtime() - t0) / 1e9;
    return 0;
}

/* Event j: one SIMPLE signal for an hour from --event-start, targeting its
 * group (--spread) or every group. */
json_t *bn_event_body(const bn_opts *o, uint32_t j, int value)
{
    char mc[128], start[32], gid[96];
    market_context(o, mc, sizeof mc);
    time_t t = time(NULL) + (time_t)o->start_s;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(start, sizeof start, "%Y-%m-%dT%H:%M:%SZ", &tm);
    json_t *groups = json_array();
    for (uint32_t g = 0; g < o->groups; g++) {
        if (o->spread && g != j % o->groups)
            continue;
        group_id(o, g, gid, sizeof gid);
        json_array_append_new(groups, json_string(gid));
    }
    return json_pack("{s:s,s:i,s:s,s:s,s:s,s:s,s:[{s:s,s:s,s:s,s:[{s:s,s:i}]}],s:{s:o}}",
                     "marketContext", mc, "priority", 1, "responseRequired",
                     o->rr_never ? "never" : "always", "vtnComment", "vtn-bench", "dtstart", start,
                     "duration", "PT1H", "signals", "signalName", "SIMPLE", "signalType", "level",
                     "signalID", "bench", "intervals", "duration", "PT1H", "value", value,
                     "targets", "groupID", groups);
}

static void read_memory(struct run *r, long long *out)
{
    vtn_buf info;
    *out = -1;
    if (!r->o->have_redis)
        return;
    vtn_buf_init(&info, 1 << 20);
    if (bn_redis_inline(&r->o->redis_addr, "INFO memory", &info) == 0)
        *out = bn_info_field(info.data, info.len, "used_memory");
    vtn_buf_free(&info);
}

static void on_follow_deadline(uv_timer_t *t)
{
    struct run *r = t->data;
    r->res->follow_timed_out = 1;
    vtn_warn("events_deadline", "received=%" PRIu32 " answered=%" PRIu32 " targeted=%" PRIu32,
             r->ev_received, r->ev_answered, r->ev_targeted);
    follow_done(r);
}

/* Creates the events, one POST after another, blocking: no poll reply is
 * read meanwhile, so every eventID is known before a VEN can report it. */
static void on_settled_events(uv_timer_t *t)
{
    struct run *r = t->data;
    const bn_opts *o = r->o;
    bn_api *api = r->api;
    vtn_buf reply;
    vtn_buf_init(&reply, 1 << 20);
    read_memory(r, &r->res->mem_before);
    for (uint32_t j = 0; j < o->events; j++) {
        json_t *b = bn_event_body(o, j, 1);
        uint64_t t0 = uv_hrtime();
        if (j == 0)
            r->ev_t0 = t0;
        int rc = api_json(r, api, "POST", "/api/v1/events", b, 201, &reply, "POST /api/v1/events");
        json_decref(b);
        if (rc < 0)
            break;
        r->res->create_ms[j] = (double)(uv_hrtime() - t0) / 1e6;
        json_error_t je;
        json_t *ev = json_loadb(reply.data, reply.len, 0, &je);
        const char *id = json_string_value(json_object_get(ev, "eventID"));
        if (id == NULL || strlen(id) >= BN_EVENT_ID_MAX) {
            setup_failed(r, "POST /api/v1/events: no eventID in", 0, 201, &reply);
            json_decref(ev);
            break;
        }
        snprintf(r->ev_ids[j], sizeof r->ev_ids[j], "%s", id);
        r->res->ev_created++;
        json_decref(ev);
    }
    vtn_buf_free(&reply);
    if (r->res->ev_created < o->events) {
        finish(r);
        return;
    }
    /* what targets each VEN, now that the events exist */
    for (uint32_t v = 0; v < o->vens; v++) {
        bn_ven *ven = &r->vens[v];
        ven->recv_ns = ven->ans_ns = BN_NEVER;
        for (uint32_t j = 0; j < o->events; j++)
            if (!o->spread || j % o->groups == v % o->groups)
                mask_set(ven->want, j);
        if (ven->state == VS_OK && (ven->want[0] | ven->want[1]))
            r->ev_targeted++;
    }
    r->res->targeted = r->ev_targeted;
    r->ev_stage = EV_FOLLOW;
    uv_timer_start(&r->phase_timer, on_follow_deadline, ms_of(o->follow_ns), 0);
    ev_check_done(r);
}

static void ev_summarize(struct run *r)
{
    const bn_opts *o = r->o;
    bn_result *res = r->res;
    uint64_t *rt = malloc(((size_t)r->ev_targeted + 1) * sizeof *rt);
    uint64_t *at = malloc(((size_t)r->ev_targeted + 1) * sizeof *at);
    uint32_t n = 0;
    static const double qs[3] = {0.5, 0.99, 1.0};
    for (uint32_t v = 0; rt && at && v < o->vens; v++) {
        const bn_ven *ven = &r->vens[v];
        if (ven->state != VS_OK || !(ven->want[0] | ven->want[1]))
            continue;
        rt[n] = ven->recv_ns;
        at[n++] = ven->ans_ns;
        int late = ven->recv_ns == BN_NEVER || (answers_expected(o) && ven->ans_ns == BN_NEVER);
        res->late += (uint32_t)late;
        if (late && res->nmissing < sizeof res->missing / sizeof res->missing[0])
            res->missing[res->nmissing++] = v;
    }
    for (int i = 0; i < 3; i++) {
        res->cov_recv[i] = rt && at ? bn_coverage_ns(rt, n, qs[i]) : BN_NEVER;
        res->cov_ans[i] = rt && at && answers_expected(o) ? bn_coverage_ns(at, n, qs[i]) : BN_NEVER;
    }
    res->received = r->ev_received;
    res->answered = r->ev_answered;
    free(rt);
    free(at);
}

/* Everyone has everything (or the deadline struck): the memory reading,
 * then the measured closed-loop polls, if any. */
static void follow_done(struct run *r)
{
    if (r->ev_stage != EV_FOLLOW)
        return;
    uv_timer_stop(&r->phase_timer);
    ev_summarize(r);
    read_memory(r, &r->res->mem_after);
    if (is_fleet(r) && r->o->duration_ns) {
        r->ev_stage = EV_MEASURE; /* the fleet goes on until its duration */
        return;
    }
    if (r->o->measure_ns == 0 || r->res->follow_timed_out) {
        r->ev_stage = EV_MEASURE; /* nothing more to follow */
        finish(r);
        return;
    }
    /* One more interval of paced polls first: the poll after a VEN's answer
     * still reads its set once (the VTN clears its "awaiting an answer" mark
     * then), which is not what a steady poll costs. */
    r->ev_stage = EV_AFTER;
    uv_timer_start(&r->phase_timer, on_measure_start, ms_of(r->interval_ns) + 1000, 0);
}

static void on_measure_start(uv_timer_t *t)
{
    struct run *r = t->data;
    /* Closed loop from here, as --mode poll: every VEN polls again as soon as
     * its reply is in. */
    r->ev_stage = EV_MEASURE;
    r->interval_ns = 0;
    if (r->o->have_redis) {
        /* INFO commandstats then covers the measured polls only */
        vtn_buf ok;
        vtn_buf_init(&ok, 4096);
        (void)bn_redis_inline(&r->o->redis_addr, "CONFIG RESETSTAT", &ok);
        vtn_buf_free(&ok);
    }
    measure_begin(r);
    uv_timer_start(&r->phase_timer, on_phase_end, ms_of(r->o->measure_ns), 0);
    for (uint32_t i = 0; i < r->nconns; i++) {
        bn_conn *c = &r->conns[i];
        c->wait_until_ns = 0;
        if (c->state == CS_READY) {
            uv_timer_stop(&c->timer);
            conn_next(c);
        }
    }
}

/* ---- reports mode: the stream around the measured updates ---------------- */

static void consumer_group(const struct run *r, char *out, size_t len)
{
    snprintf(out, len, "bench-%s", r->o->run_id);
}

/* Before the updates: the consumer group, then the stream's length and
 * Redis' memory, so the group's own bytes are not charged to the intervals. */
static int rep_begin(struct run *r)
{
    char group[64];
    consumer_group(r, group, sizeof group);
    if (bn_rep_group(&r->o->redis_addr, group, r->res->rep_error, sizeof r->res->rep_error) < 0)
        return -EIO;
    r->res->xlen_before = bn_rep_xlen(&r->o->redis_addr);
    read_memory(r, &r->res->mem_before);
    return 0;
}

/* After the updates: memory and length first, then the consumer reads the
 * stream through the group and matches every entry to what was sent. */
static void rep_end(struct run *r)
{
    const bn_opts *o = r->o;
    char group[64];
    read_memory(r, &r->res->mem_after);
    r->res->xlen_after = bn_rep_xlen(&o->redis_addr);
    bn_rep_ven *v = calloc(o->vens ? o->vens : 1, sizeof *v);
    uint8_t **seen = calloc(o->vens ? o->vens : 1, sizeof *seen);
    uint32_t n = 0;
    for (uint32_t i = 0; v && seen && i < o->vens; i++) {
        bn_ven *ven = &r->vens[i];
        if (!ven->ready || ven->nupd == 0)
            continue;
        seen[n] = calloc((size_t)ven->nupd * o->intervals, 1);
        if (seen[n] == NULL)
            break;
        v[n] = (bn_rep_ven){ven->ven_id, ven->rr_id, ven->nupd, ven->upd_ok, seen[n]};
        n++;
    }
    consumer_group(r, group, sizeof group);
    if (v == NULL || seen == NULL)
        snprintf(r->res->rep_error, sizeof r->res->rep_error, "out of memory");
    else if (bn_rep_consume(&o->redis_addr, group, v, n, o->intervals, &r->res->tally,
                            r->res->rep_error, sizeof r->res->rep_error) == 0)
        r->res->tally_done = 1;
    for (uint32_t i = 0; v && i < n; i++)
        free(v[i].seen);
    free(seen);
    free(v);
}

static void start_poll_phase(struct run *r)
{
    r->phase = PH_POLL;
    uint64_t now = uv_hrtime();
    if (r->o->mode == BN_MODE_EVENTS || (is_fleet(r) && r->o->events)) {
        r->ev_stage = EV_WARM;
        if (is_fleet(r))
            measure_begin(r); /* the fleet's measured phase holds the whole fan-out */
        if (is_fleet(r) && r->o->duration_ns)
            uv_timer_start(&r->end_timer, on_phase_end, ms_of(r->o->duration_ns), 0);
        uv_timer_start(&r->phase_timer, on_settled_events, ms_of(r->o->settle_ns), 0);
    } else {
        if (r->o->mode == BN_MODE_REPORTS && rep_begin(r) < 0) {
            finish(r);
            return;
        }
        measure_begin(r);
        uv_timer_start(&r->phase_timer, on_phase_end, ms_of(r->o->duration_ns), 0);
    }
    for (uint32_t i = 0; i < r->nconns; i++) {
        bn_conn *c = &r->conns[i];
        c->nreg = 0;
        for (uint32_t k = 0; k < c->count; k++)
            c->nreg += ven_usable(r, ven_of(c, k));
        c->cur = c->count - 1; /* so the round-robin starts at the first VEN */
        c->wait_until_ns = 0;
        if (r->interval_ns)
            c->sched_ns = now + rng_next(r) % r->interval_ns;
        if (c->state == CS_READY) /* fleet: a VEN whose connection is down polls once it is up */
            conn_next(c);
        else if (c->state == CS_IDLE && c->parked == P_REGISTERED && c->nreg)
            timer_at(c, c->sched_ns); /* per-poll: it connects for its first poll */
    }
}

/* events mode (and fleet with events): the program and groups, then the polls. */
static void start_events(struct run *r)
{
    vtn_buf reply;
    vtn_buf_init(&reply, 1 << 20);
    int rc = events_setup(r, r->api, &reply);
    vtn_buf_free(&reply);
    if (rc < 0)
        finish(r);
    else
        start_poll_phase(r);
}

/* After the registration barrier. */
static void start_measured_phase(struct run *r)
{
    const bn_opts *o = r->o;
    uv_timer_stop(&r->phase_timer);
    int need_vens = o->mode == BN_MODE_POLL || o->mode == BN_MODE_IDLE || one_per_ven(o) ||
                    (o->mode == BN_MODE_HANDSHAKE && o->hs_poll);
    if (need_vens && r->res->registered == 0) {
        vtn_error("no_ven_registered", "vens=%" PRIu32, o->vens);
        finish(r);
        return;
    }
    switch (o->mode) {
    case BN_MODE_POLL:
    case BN_MODE_REPORTS:
        start_poll_phase(r);
        break;
    case BN_MODE_FLEET:
        if (o->storm) {
            finish(r); /* the registrations were what is measured */
            break;
        }
        if (o->events == 0)
            start_poll_phase(r);
        else
            start_events(r); /* the events stages run inside the fleet's polls */
        break;
    case BN_MODE_EVENTS:
        start_events(r);
        break;
    case BN_MODE_HANDSHAKE:
        start_handshake_phase(r);
        break;
    case BN_MODE_IDLE:
        start_idle_phase(r);
        break;
    default:
        finish(r);
        break;
    }
}

static void on_sigint(uv_signal_t *s, int sig)
{
    struct run *r = s->data;
    (void)sig;
    r->res->interrupted = 1;
    finish(r);
}

void bn_result_free(bn_result *res)
{
    free(res->reg_hist);
    free(res->poll_hist);
    free(res->hs_hist);
    free(res->rereg_hist);
    free(res->upd_hist);
    free(res->tick_hist);
    res->reg_hist = res->poll_hist = res->hs_hist = res->rereg_hist = NULL;
    res->upd_hist = res->tick_hist = NULL;
}

int bn_run(const bn_opts *o, bn_result *res)
{
    memset(res, 0, sizeof *res);
    res->reg_hist = malloc(sizeof *res->reg_hist);
    res->poll_hist = malloc(sizeof *res->poll_hist);
    res->hs_hist = malloc(sizeof *res->hs_hist);
    res->rereg_hist = malloc(sizeof *res->rereg_hist);
    struct run *r = calloc(1, sizeof *r);
    if (r == NULL || res->reg_hist == NULL || res->poll_hist == NULL || res->hs_hist == NULL ||
        res->rereg_hist == NULL) {
        free(r);
        bn_result_free(res);
        return -ENOMEM;
    }
    bn_hist_init(res->reg_hist);
    bn_hist_init(res->poll_hist);
    bn_hist_init(res->hs_hist);
    bn_hist_init(res->rereg_hist);
    if (o->mode == BN_MODE_FLEET) {
        res->upd_hist = malloc(sizeof *res->upd_hist);
        res->tick_hist = malloc(sizeof *res->tick_hist);
        if (res->upd_hist == NULL || res->tick_hist == NULL) {
            free(r);
            bn_result_free(res);
            return -ENOMEM;
        }
        bn_hist_init(res->upd_hist);
        bn_hist_init(res->tick_hist);
    }
    r->o = o;
    r->res = res;
    res->mem_before = res->mem_after = res->xlen_before = res->xlen_after = -1;
    for (int i = 0; i < 3; i++)
        res->cov_recv[i] = res->cov_ans[i] = BN_NEVER;
    bn_api api;
    bn_api_init(&api, &o->api_addr, o->api_host, o->api_token, o->timeout_ns / 1000000u);
    r->api = &api;
    int measured = o->mode == BN_MODE_HANDSHAKE || o->mode == BN_MODE_IDLE;
    if (measured) {
        /* --connections measured ones, then one per VEN that registers it */
        r->nmeas = o->connections;
        r->nconns = o->connections + o->vens;
    } else {
        r->nconns = o->connections < o->vens ? o->connections : o->vens;
    }
    r->vens = calloc(o->vens ? o->vens : 1, sizeof *r->vens);
    r->conns = calloc(r->nconns, sizeof *r->conns);
    r->waitq = o->per_poll ? calloc(r->nconns, sizeof *r->waitq) : NULL;
    int rc = uv_loop_init(&r->loop);
    if (r->vens == NULL || r->conns == NULL || (o->per_poll && r->waitq == NULL) || rc < 0) {
        if (rc == 0)
            uv_loop_close(&r->loop);
        free(r->vens);
        free(r->conns);
        free(r->waitq);
        free(r);
        bn_result_free(res);
        return rc < 0 ? rc : -ENOMEM;
    }
    if (o->rate > 0)
        r->interval_ns = (uint64_t)(1e9 / o->rate);
    if (vtn_random64(&r->rng) < 0 || r->rng == 0)
        r->rng = 0x9e3779b97f4a7c15ull;
    llhttp_settings_init(&r->settings);
    r->settings.on_message_begin = on_message_begin;
    r->settings.on_headers_complete = on_headers_complete;
    r->settings.on_body = on_body;
    r->settings.on_message_complete = on_message_complete;
    for (uint32_t v = 0; v < o->vens; v++)
        vtn_buf_init(&r->vens[v].poll_req, BN_REQ_MAX);
    vtn_buf_init(&r->scratch, BN_REQ_MAX * 8);
    for (uint32_t i = 0; i < r->nconns; i++) {
        bn_conn *c = &r->conns[i];
        c->run = r;
        if (!measured) {
            c->first = i;
            c->stride = r->nconns;
            c->count = (o->vens - i + r->nconns - 1) / r->nconns;
            c->cert = i;
        } else if (i < r->nmeas) {
            c->home = o->vens ? i % o->vens : 0;
            c->cert = o->vens ? c->home : i;
        } else {
            c->first = i - r->nmeas;
            c->stride = 1;
            c->count = 1;
            c->cert = c->first;
            c->reg_only = 1;
        }
        vtn_buf_init(&c->body, BN_BODY_MAX);
        vtn_buf_init(&c->reqbuf, BN_REQ_MAX);
        uv_timer_init(&r->loop, &c->timer);
        c->timer.data = c;
    }
    uv_timer_init(&r->loop, &r->sweep);
    uv_timer_init(&r->loop, &r->tick_timer);
    uv_timer_init(&r->loop, &r->end_timer);
    r->tick_timer.data = r->end_timer.data = r;
    r->start_ns = uv_hrtime();
    if (o->tick)
        uv_timer_start(&r->tick_timer, on_tick, 1000, 1000);
    uv_timer_init(&r->loop, &r->phase_timer);
    uv_signal_init(&r->loop, &r->sigint);
    r->sweep.data = r->phase_timer.data = r->sigint.data = r;
    uv_signal_start(&r->sigint, on_sigint, SIGINT);
    uv_timer_start(&r->sweep, on_sweep, BN_SWEEP_MS, BN_SWEEP_MS);
    uv_timer_start(&r->phase_timer, on_register_deadline, ms_of(o->register_timeout_ns), 0);

    r->phase = PH_REGISTER;
    r->reg_start_ns = uv_hrtime();
    if (o->mode == BN_MODE_REGISTER || (o->mode == BN_MODE_FLEET && o->storm))
        measure_begin(r); /* in register mode the registrations are what is measured */
    if (o->vens == 0)
        start_measured_phase(r); /* handshakes without polls need no VEN */
    /* Events mode holds one connection per VEN, 10,000 and more: they open and
     * register --ramp at a time, as a fleet coming online would, rather than
     * all at once into the VTN's overload answer (503). */
    if (one_per_ven(o)) {
        ramp_open(r);
    } else {
        r->ramp_next = r->nconns;
        for (uint32_t i = 0; i < r->nconns && r->phase == PH_REGISTER; i++)
            if (r->conns[i].count)
                conn_connect(&r->conns[i]);
    }

    uv_run(&r->loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&r->loop) != 0)
        vtn_warn("loop_close", "reason=busy");
    bn_api_close(&api);
    if (o->mode == BN_MODE_REPORTS && r->measure_start_ns)
        rep_end(r);

    for (uint32_t v = 0; v < o->vens; v++) {
        vtn_buf_free(&r->vens[v].poll_req);
        free(r->vens[v].upd_ok);
    }
    vtn_buf_free(&r->scratch);
    for (uint32_t i = 0; i < r->nconns; i++) {
        vtn_buf_free(&r->conns[i].body);
        vtn_buf_free(&r->conns[i].reqbuf);
        bn_tls_free(&r->conns[i].tls);
        bn_tls_session_free(&r->conns[i].session);
    }
    free(r->vens);
    free(r->conns);
    free(r->waitq);
    free(r);
    return 0;
}
