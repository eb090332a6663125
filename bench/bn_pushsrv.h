/* vtn-bench fleet: the HTTPS endpoint of the fleet's push-mode VENs
 * (bn_pushsrv.c). One TLS listener on 127.0.0.1 serves every push VEN, each
 * on a path of its own: VEN i's transportAddress is
 * https://127.0.0.1:PORT/ven/i, so the VTN POSTs to /ven/i/EiEvent,
 * /ven/i/EiReport ... It runs on a thread and a libuv loop of its own, so the
 * client engine (bn_client.c) does not know it is there. */
#ifndef BN_PUSHSRV_H
#define BN_PUSHSRV_H

#include <stddef.h>
#include <stdint.h>

struct json_t;

typedef struct bn_pushsrv bn_pushsrv;

typedef struct bn_push_opts {
    const char *cert, *key; /* the endpoint's server certificate (PEM; it must name 127.0.0.1) */
    const char *client_ca;  /* verifies the VTN's client certificate, which is required */
    uint32_t vens;          /* push VENs: paths /ven/0 .. /ven/vens-1 */
    uint32_t max_conns;     /* connections open at once; more are closed at accept */
    double opt_in_share;    /* share of the events answered optIn; the rest optOut */
    int close_each;         /* answer with Connection: close and close: every push opens a
                               connection and makes a full handshake */
    uint32_t unreachable;   /* from the watch on, VENs 0..unreachable-1 drop every push
                               unanswered (the connection closed): a VEN that went away */
} bn_push_opts;

/* What the endpoint saw (bn_pushsrv_stats). Errors are the VTN's requests
 * the endpoint could not take, by kind. */
typedef struct bn_push_stats {
    uint64_t pushes;          /* requests answered 200 */
    uint64_t distribute;      /* of them oadrDistributeEvent */
    uint64_t register_report; /* oadrRegisterReport (answered oadrRegisteredReport) */
    uint64_t create_report;   /* oadrCreateReport (answered oadrCreatedReport) */
    uint64_t other;           /* anything else, answered with an empty 200 */
    uint64_t created_event;   /* oadrCreatedEvent answers sent */
    uint64_t opted_out;       /* eventResponses with optOut */
    uint64_t err_tls;         /* handshakes that failed (the VTN's certificate refused ...) */
    uint64_t err_request;     /* malformed HTTP, a path of no VEN, a body no payload (HTTP 4xx) */
    uint64_t err_too_large;   /* a request over the body cap (HTTP 413) */
    uint64_t err_refused;     /* connections over max_conns, closed at once */
    uint64_t dropped;         /* pushes to unreachable VENs, dropped on purpose (no error) */
    uint64_t conns;           /* connections accepted */
    uint32_t open, open_max;  /* open now, most at once */
    uint32_t known;           /* push VENs whose venID a push told (their oadrRegisterReport) */
    uint32_t received;        /* reachable push VENs that got an event after the watch began */
    uint32_t answered;        /* ... and were sent their oadrCreatedEvent for it */
    uint64_t cov_recv[3], cov_ans[3]; /* ns from the watch's t0: 50, 99, 100 % of the
                                         reachable push VENs; BN_NEVER */
} bn_push_stats;

/* Loads the certificates, listens on 127.0.0.1 (a free port) and starts the
 * thread. 0, or <0 with a message in err. */
int bn_pushsrv_start(const bn_push_opts *o, bn_pushsrv **out, char *err, size_t errlen);
/* "https://127.0.0.1:PORT/ven/%u": the transportAddress pattern (bn_opts.push_url). */
const char *bn_pushsrv_url(const bn_pushsrv *s);
/* From t0_ns (uv_hrtime, taken right before the event is created) the first
 * oadrDistributeEvent each push VEN gets counts for the coverage. Called
 * before the creation, since a push may come before the API's reply does: in
 * the push scenario only the run's one event targets the run's VENs. */
void bn_pushsrv_watch(bn_pushsrv *s, uint64_t t0_ns);
void bn_pushsrv_stats(bn_pushsrv *s, bn_push_stats *st);
/* Appends the venIDs the pushes told (strings) to arr; returns how many. */
uint32_t bn_pushsrv_ven_ids(bn_pushsrv *s, struct json_t *arr);
/* Stops the thread, closes every connection, frees; *s = NULL. */
void bn_pushsrv_stop(bn_pushsrv **s);

#endif
