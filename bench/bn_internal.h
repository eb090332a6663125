/* vtn-bench internals: the latency histogram, /proc CPU accounting, the
 * OpenADR request bodies and reply scanning, and the libuv client that
 * simulates a fleet of VENs. Only bench/ includes this header. */
#ifndef BN_INTERNAL_H
#define BN_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "vtn/buf.h"

/* ---- latency histogram (bn_hist.c) ------------------------------------ */

/* Log-linear buckets in the manner of HdrHistogram: every power of two is
 * split into BN_HIST_SUB buckets, so a bucket is at most 1/128 (< 0.8 %)
 * wide relative to its value, whatever the magnitude. Values are ns; values
 * past BN_HIST_MAX_NS land in the last bucket (max stays exact). */
#define BN_HIST_SUB_BITS 7
#define BN_HIST_SUB (1u << BN_HIST_SUB_BITS)
#define BN_HIST_MAX_EXP 33 /* 2^(33+8) ns = about 36 minutes */
#define BN_HIST_MAX_NS ((1ull << (BN_HIST_MAX_EXP + BN_HIST_SUB_BITS + 1)) - 1)
#define BN_HIST_N ((BN_HIST_MAX_EXP + 2) * BN_HIST_SUB)

typedef struct bn_hist {
    uint64_t counts[BN_HIST_N];
    uint64_t total;
    uint64_t min, max; /* exact, ns */
    double sum;        /* ns, for the mean */
} bn_hist;

void bn_hist_init(bn_hist *h);
void bn_hist_record(bn_hist *h, uint64_t ns);
/* The value at quantile q (0..1): the highest value that falls in the same
 * bucket as the q-th sample, clamped to the exact max; 0 when empty. */
uint64_t bn_hist_quantile(const bn_hist *h, double q);
double bn_hist_mean(const bn_hist *h);

/* ---- CPU accounting from /proc (bn_proc.c) ------------------------------ */

#define BN_MAX_PIDS 32
#define BN_ROLE_MAX 32

typedef struct bn_proc {
    char role[BN_ROLE_MAX]; /* "gateway", "worker", "redis", ... */
    pid_t pid;
    uint64_t ticks0, ticks1; /* utime+stime (all threads) at the start and end of the phase */
    int gone;                /* the process disappeared during the run */
} bn_proc;

/* Parses "gateway=123,worker=456,redis=789" (roles [A-Za-z0-9_-], repeated
 * roles allowed). Returns the number of entries, or -EINVAL with a message. */
int bn_pids_parse(const char *s, bn_proc *out, int max, char *err, size_t errlen);
/* utime+stime of every thread of pid, in clock ticks. 0, -ENOENT, -EIO. */
int bn_proc_ticks(pid_t pid, uint64_t *ticks);
/* Parses the content of a /proc/PID/stat file (the comm field may hold
 * spaces and parentheses). 0 or -EINVAL. Exposed for tests. */
int bn_proc_parse_stat(const char *text, uint64_t *ticks);
/* Machine-wide busy and total jiffies from /proc/stat's "cpu" line. */
int bn_machine_ticks(uint64_t *busy, uint64_t *total);

/* ---- OpenADR bodies and reply scanning (bn_oadr.c) ---------------------- */

#define BN_PATH_REGISTER "/OpenADR2/Simple/2.0b/EiRegisterParty"
#define BN_PATH_POLL "/OpenADR2/Simple/2.0b/OadrPoll"

/* A complete HTTP/1.1 POST with an XML body, ready to write. 0 or <0. */
int bn_request_registration(vtn_buf *out, const char *host, const char *ven_name,
                            const char *request_id);
int bn_request_poll(vtn_buf *out, const char *host, const char *ven_id);

/* Copies the text of the first element whose local name is `name` (any
 * prefix) into out, trimmed. Returns its length, -ENOENT when there is no
 * such element, -ENOBUFS when it does not fit. A string search, not a parser:
 * good enough for replies from a VTN under test. */
int bn_xml_text(const char *doc, size_t len, const char *name, char *out, size_t outlen);
/* Local name of the first element that is not oadrPayload or
 * oadrSignedObject, e.g. "oadrResponse". 0 or -ENOENT. */
int bn_xml_payload(const char *doc, size_t len, char *out, size_t outlen);

/* 1 when ss is a loopback address (127.0.0.0/8, ::1, ::ffff:127.x). */
int bn_addr_is_loopback(const struct sockaddr_storage *ss);

/* ---- the simulated fleet (bn_client.c) ---------------------------------- */

enum bn_mode { BN_MODE_POLL = 0, BN_MODE_REGISTER };

/* Error and outcome counters for one phase. */
typedef struct bn_counts {
    uint64_t sent;      /* requests written */
    uint64_t done;      /* replies received */
    uint64_t ok;        /* HTTP 200 and responseCode 200 (or a queued message on a poll) */
    uint64_t http;      /* HTTP status != 200 */
    uint64_t oadr;      /* HTTP 200 but responseCode != 200 or missing, or no venID */
    uint64_t timeouts;  /* no complete reply within the request timeout */
    uint64_t conn;      /* connect failures and connect timeouts */
    uint64_t io;        /* reset, EOF or malformed HTTP while a reply was due */
    uint64_t messages;  /* poll replies that carried a queued payload, not oadrResponse */
    uint64_t status[6]; /* replies by status class: [2] = 2xx ... [5] = 5xx */
} bn_counts;

typedef struct bn_opts {
    struct sockaddr_storage addr;
    char host[128]; /* Host header */
    enum bn_mode mode;
    uint32_t vens, connections;
    uint64_t duration_ns, timeout_ns, register_timeout_ns;
    uint64_t max_requests; /* polls in poll mode */
    double rate;           /* polls per second per VEN; 0 = closed loop */
    char run_id[32];
    bn_proc *procs;
    int nprocs;
} bn_opts;

typedef struct bn_result {
    uint32_t registered, reg_failed;
    double reg_seconds;             /* wall time of the registration phase */
    double seconds;                 /* wall time of the measured phase */
    bn_counts reg, poll;            /* counters by phase */
    bn_hist *reg_hist;              /* registration latencies */
    bn_hist *poll_hist;             /* poll latencies, measured phase only */
    uint64_t self_cpu_us;           /* this process' CPU during the measured phase */
    uint64_t mach_busy, mach_total; /* machine jiffies during the measured phase */
    int interrupted;                /* SIGINT ended the run early */
} bn_result;

/* Runs the fleet to completion (bounded by the options' time limits).
 * Fills res; its histograms are allocated here and freed by
 * bn_result_free. 0, or a negative errno when the run could not start. */
int bn_run(const bn_opts *o, bn_result *res);
void bn_result_free(bn_result *res);

#endif
