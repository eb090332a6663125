/* vtn-bench internals: the latency histogram, /proc CPU accounting, the
 * OpenADR request bodies and reply scanning, and the libuv client that
 * simulates a fleet of VENs. Only bench/ includes this header. */
#ifndef BN_INTERNAL_H
#define BN_INTERNAL_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <jansson.h>

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

/* Fan-out coverage: t[i] is when VEN i got there (ns after the event was
 * created), BN_NEVER when it did not. Returns the time by which the share q
 * (0..1] of all n VENs had got there, i.e. the ceil(q*n)-th smallest time
 * (at least the first), or BN_NEVER when fewer did. */
#define BN_NEVER UINT64_MAX
uint64_t bn_coverage_ns(const uint64_t *t, uint32_t n, double q);

/* ---- CPU accounting from /proc (bn_proc.c) ------------------------------ */

#define BN_MAX_PIDS 32
#define BN_ROLE_MAX 32

typedef struct bn_proc {
    char role[BN_ROLE_MAX]; /* "gateway", "worker", "redis", ... */
    pid_t pid;
    uint64_t ticks0, ticks1; /* utime+stime (all threads) at the start and end of the phase */
    int gone;                /* the process disappeared during the run */
    /* --mode idle: VmRSS and RssAnon (KiB) before the connections opened, once
     * they were all idle, and at the end of the hold */
    uint64_t rss[3], anon[3];
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
/* Resident memory of pid from /proc/PID/status: VmRSS and RssAnon in KiB.
 * 0, -ENOENT, -EIO. */
int bn_proc_mem(pid_t pid, uint64_t *rss_kb, uint64_t *anon_kb);
/* Parses the content of a /proc/PID/status file. 0 or -EINVAL. Exposed for tests. */
int bn_proc_parse_status(const char *text, uint64_t *rss_kb, uint64_t *anon_kb);
/* What the fleet's JSON reports of a process: user and system CPU (clock
 * ticks), peak resident memory (VmHWM, KiB) and context switches summed over
 * its threads. 0, -ENOENT, -EIO. */
typedef struct bn_proc_usage {
    uint64_t utime, stime, hwm_kb, ctx;
} bn_proc_usage;
int bn_proc_usage_read(pid_t pid, bn_proc_usage *u);

/* ---- OpenADR bodies and reply scanning (bn_oadr.c) ---------------------- */

#define BN_PATH_REGISTER "/OpenADR2/Simple/2.0b/EiRegisterParty"
#define BN_PATH_POLL "/OpenADR2/Simple/2.0b/OadrPoll"
#define BN_PATH_EVENT "/OpenADR2/Simple/2.0b/EiEvent"
#define BN_PATH_REPORT "/OpenADR2/Simple/2.0b/EiReport"
#define BN_EVENT_ID_MAX 132 /* the VTN's ids are up to 128 bytes */

/* One oadrEvent of an oadrDistributeEvent. */
typedef struct bn_dist_event {
    char id[BN_EVENT_ID_MAX]; /* eventID */
    long long mn;             /* modificationNumber */
    int required;             /* oadrResponseRequired is not "never" */
    int opt_out;              /* bn_request_created_event answers optOut (else optIn) */
} bn_dist_event;

/* A complete HTTP/1.1 POST with an XML body, ready to write. 0 or <0. */
int bn_request_registration(vtn_buf *out, const char *host, const char *ven_name,
                            const char *request_id);
/* The same for a push-mode VEN: oadrHttpPullModel false, the VTN pushes to
 * transport_address (NULL: a pull VEN, as bn_request_registration). */
int bn_request_registration_push(vtn_buf *out, const char *host, const char *ven_name,
                                 const char *request_id, const char *transport_address);
int bn_request_poll(vtn_buf *out, const char *host, const char *ven_id);
/* oadrCreatedEvent opting in to ev[0..n) (out of those with opt_out) at their
 * modificationNumbers, each eventResponse carrying the distribute's requestID. */
int bn_request_created_event(vtn_buf *out, const char *host, const char *ven_id,
                             const char *request_id, const bn_dist_event *ev, int n);
/* oadrRegisteredReport (responseCode 200, no report requests): a VEN's answer
 * to the VTN's METADATA oadrRegisterReport with that requestID. */
int bn_request_registered_report(vtn_buf *out, const char *host, const char *ven_id,
                                 const char *request_id);
/* The events of an oadrDistributeEvent, in document order, and its requestID.
 * Returns how many (0..max), -ENOBUFS when there are more than max or a value
 * does not fit, -EINVAL when an oadrEvent lacks its eventID or
 * modificationNumber. A string search like bn_xml_text. */
int bn_distribute_parse(const char *doc, size_t len, bn_dist_event *out, int max, char *request_id,
                        size_t rlen);

/* reports mode: every VEN registers one METADATA_TELEMETRY_USAGE report
 * (specifier BN_REPORT_SPEC, one rID BN_REPORT_RID, PT1M) and sends updates
 * of k one-minute intervals: update seq holds intervals j = seq*k .. seq*k+k-1,
 * interval j starting j minutes after BN_REPORT_BASE_S with the value
 * bn_report_value(j), so the consumer can tell every interval apart. */
#define BN_REPORT_SPEC "bench-usage"
#define BN_REPORT_RID "usage"
#define BN_REPORT_BASE_S 1767225600 /* 2026-01-01T00:00:00Z */
int bn_request_register_report(vtn_buf *out, const char *host, const char *ven_id,
                               const char *request_id);
/* oadrCreatedReport answering the oadrCreateReport request_id: rr_id pending. */
int bn_request_created_report(vtn_buf *out, const char *host, const char *ven_id,
                              const char *request_id, const char *rr_id);
/* oadrUpdateReport number seq of a VEN for its request rr_id; scratch holds the body. */
int bn_request_update_report(vtn_buf *out, vtn_buf *scratch, const char *host, const char *ven_id,
                             const char *rr_id, uint32_t seq, uint32_t k);
void bn_report_value(char *out, size_t len, uint32_t j);
/* Seconds of an xs:duration such as "PT15M", "PT1H30M", "PT0.5S", "P1D" (no
 * years or months); -1 when it is not one. */
double bn_iso_duration_s(const char *s);

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

/* ---- management API and Redis, blocking (bn_api.c) ---------------------- */

typedef struct bn_api {
    int fd; /* the keep-alive connection, -1 when closed */
    struct sockaddr_storage addr;
    char host[128];
    char token[256];
    uint64_t timeout_ms;
} bn_api;

void bn_api_init(bn_api *a, const struct sockaddr_storage *addr, const char *host,
                 const char *token, uint64_t timeout_ms);
/* One request (body NULL: none) and its whole reply. 0 with *status and the
 * reply body, or a negative errno (connect, I/O, timeout, -ENOBUFS). */
int bn_api_call(bn_api *a, const char *method, const char *path, const char *body, size_t blen,
                vtn_buf *reply, int *status);
void bn_api_close(bn_api *a);
/* One inline command to Redis (e.g. "INFO memory", "CONFIG RESETSTAT") on a
 * connection of its own; out gets the raw bulk or status reply. 0 or a
 * negative errno (-EIO on an error reply). */
int bn_redis_inline(const struct sockaddr_storage *addr, const char *command, vtn_buf *out);
/* The integer value of "name:" in INFO text, -1 when absent. */
long long bn_info_field(const char *info, size_t len, const char *name);

/* ---- reports mode: the consumer that counts what was stored (bn_reports.c) */

/* One VEN's updates, as the consumer checks them against the stream. */
typedef struct bn_rep_ven {
    const char *ven_id, *rr_id;
    uint32_t nupd;     /* updates sent: seq 0 .. nupd-1 */
    const uint8_t *ok; /* [nupd]: answered 200 */
    uint8_t *seen;     /* [nupd * k]: stream entries found per interval (saturates at 255) */
} bn_rep_ven;

typedef struct bn_rep_tally {
    uint64_t entries;     /* stream entries read through the group (one per oadrReport) */
    uint64_t values;      /* intervals (values) in them */
    uint64_t confirmed;   /* intervals of updates answered 200 */
    uint64_t stored;      /* of them, found in the stream */
    uint64_t lost;        /* of them, not found */
    uint64_t doubled;     /* entries beyond the first for one interval */
    uint64_t unconfirmed; /* intervals found whose update got no 200 (a timeout) */
    uint64_t foreign;     /* entries that are no interval the bench sent, or altered */
    long long pending;    /* entries the group still holds unacknowledged at the end */
} bn_rep_tally;

/* Tallies one stream entry (field, value, field, value ...: ven, rr and i,
 * the packed intervals; docs/reports.md) into v[0..n), sorted by ven_id
 * (bn_rep_sort). */
void bn_rep_entry(bn_rep_ven *v, uint32_t n, uint32_t k, const char *const *fv, const size_t *fvlen,
                  size_t nfv, bn_rep_tally *t);
void bn_rep_sort(bn_rep_ven *v, uint32_t n);
/* confirmed, stored, lost and unconfirmed from the seen counts. */
void bn_rep_finish(const bn_rep_ven *v, uint32_t n, uint32_t k, bn_rep_tally *t);
/* XGROUP CREATE <stream> group $ MKSTREAM: the group reads what is added from
 * now on, so a run against a VTN that already holds telemetry counts its own.
 * An existing group is fine. 0 or <0. */
int bn_rep_group(const struct sockaddr_storage *redis, const char *group, char *err, size_t errlen);
/* The stream's length, or <0. */
long long bn_rep_xlen(const struct sockaddr_storage *redis);
/* A real consumer: XREADGROUP ... > in batches until nothing is left, each
 * batch tallied, then XACKed; at the end XPENDING's count. 0 or <0 with err. */
int bn_rep_consume(const struct sockaddr_storage *redis, const char *group, bn_rep_ven *v,
                   uint32_t n, uint32_t k, bn_rep_tally *t, char *err, size_t errlen);

/* ---- TLS client (bn_tls.c) ---------------------------------------------- */

/* OpenSSL over two memory BIOs: the libuv client does the socket I/O, this
 * layer only turns ciphertext into plaintext and back. */
#define BN_TLS_DEFAULT_CIPHERS "ECDHE-ECDSA-AES128-SHA256"
#define BN_TLS_CLOSED                                                                              \
    (-ESHUTDOWN) /* bn_tls_read: the server sent close_notify (never a byte count) */

typedef struct bn_tls_opts {
    /* Client certificate and key (PEM). A path holding "%d" is a pattern: the
     * certificate with index i is the pattern with %d replaced by i, so every
     * simulated VEN can have a certificate (and fingerprint) of its own. */
    const char *cert, *key;
    const char *ca;      /* CA bundle that verifies the VTN's server certificate */
    int insecure;        /* do not verify the server certificate */
    const char *ciphers; /* TLS 1.2 cipher list (or TLS 1.3 suites "TLS_..." with tls13) */
    const char *groups;  /* key exchange groups, e.g. "P-256"; "" = OpenSSL's default */
    int tls13;           /* TLS 1.3 only; else TLS 1.2 only */
    int resume;          /* keep session tickets and resume with them */
    int no_tickets;      /* TLS 1.2: do not ask for a session ticket */
    char verify_ip[64];  /* the server certificate must name this address */
    /* "CERT.pem,KEY.pem" of a CA: instead of cert/key, a fresh P-256 key and
     * certificate per index (0..ncerts-1) is issued in memory at start */
    const char *mint_ca;
} bn_tls_opts;

typedef struct bn_tls_ctx bn_tls_ctx;
typedef struct bn_tls bn_tls;
typedef struct ssl_session_st bn_tls_session; /* OpenSSL's SSL_SESSION */

/* Loads everything once; ncerts is how many certificates a pattern expands to
 * (indexes 0..ncerts-1). 0 or -EINVAL/-ENOMEM with a message in err. */
int bn_tls_ctx_new(const bn_tls_opts *o, uint32_t ncerts, bn_tls_ctx **out, char *err,
                   size_t errlen);
void bn_tls_ctx_free(bn_tls_ctx **ctx);
/* With mint_ca: the seconds the certificates took to make (0 without). */
double bn_tls_ctx_mint_seconds(const bn_tls_ctx *ctx);
/* One client connection. It presents certificate cert_index (modulo the
 * loaded ones); *slot keeps the connection's session across reconnects:
 * with --resume the next bn_tls_new on the same slot resumes it. 0 or -ENOMEM. */
int bn_tls_new(bn_tls_ctx *ctx, uint32_t cert_index, bn_tls_session **slot, bn_tls **out);
void bn_tls_free(bn_tls **t);
void bn_tls_session_free(bn_tls_session **s);
/* Ciphertext from the socket. 0 or -ENOMEM. */
int bn_tls_feed(bn_tls *t, const char *p, size_t n);
/* Drives the handshake: 1 done, 0 waiting for the server, -EPROTO failed. */
int bn_tls_handshake(bn_tls *t);
/* Plaintext from what was fed: > 0 bytes, 0 none yet, BN_TLS_CLOSED, -EPROTO. */
int bn_tls_read(bn_tls *t, char *out, size_t cap);
/* Encrypts p[0..n) into the wire output. 0 or -EPROTO. */
int bn_tls_write(bn_tls *t, const char *p, size_t n);
/* Queues close_notify (after a completed handshake only). */
void bn_tls_shutdown(bn_tls *t);
/* The ciphertext waiting to be written; clear it once it has been taken. */
size_t bn_tls_wire(bn_tls *t, const char **p);
void bn_tls_wire_clear(bn_tls *t);
int bn_tls_resumed(const bn_tls *t);
/* Sessions (TLS 1.3: tickets) the server issued on this connection; none on a
 * resumed TLS 1.2 session, whose ticket stays good. */
unsigned bn_tls_sessions(const bn_tls *t);
int bn_tls_is_tls13(const bn_tls *t);
const char *bn_tls_error(const bn_tls *t);
/* "TLSv1.2 ECDHE-ECDSA-AES128-SHA256, key exchange X25519, server key ECC" */
void bn_tls_describe(const bn_tls *t, char *out, size_t len);
/* pattern with its first "%d" replaced by index. 0 or -ENAMETOOLONG. */
int bn_tls_path_expand(const char *pattern, uint32_t index, char *out, size_t outlen);
int bn_tls_path_is_pattern(const char *path);

/* ---- the simulated fleet (bn_client.c) ---------------------------------- */

/* poll: register, then measure polls; register: measure registrations;
 * handshake: new TLS connections in a closed loop, each closed after its
 * handshake (and optionally one poll); idle: open N TLS connections, one poll
 * each, then hold them idle and read the VTN's memory. */
enum bn_mode {
    BN_MODE_POLL = 0,
    BN_MODE_REGISTER,
    BN_MODE_HANDSHAKE,
    BN_MODE_IDLE,
    BN_MODE_EVENTS,
    BN_MODE_REPORTS,
    BN_MODE_FLEET /* vtn-bench fleet (bn_fleet.c): VENs living a whole life, one connection each */
};

#define BN_EVENTS_MAX 128 /* events mode: events created in one run */

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
    uint64_t tls;       /* TLS handshake failed or a TLS protocol error */
    uint64_t messages;  /* poll replies that carried a queued payload, not oadrResponse */
    uint64_t status[6]; /* replies by status class: [2] = 2xx ... [5] = 5xx */
} bn_counts;

struct bn_tick;
struct bn_result;

typedef struct bn_opts {
    struct sockaddr_storage addr;
    char host[128]; /* Host header */
    enum bn_mode mode;
    uint32_t vens, connections;
    uint64_t duration_ns, timeout_ns, register_timeout_ns;
    uint64_t max_requests; /* polls in poll mode */
    double rate;           /* polls per second per VEN; 0 = closed loop */
    uint32_t rereg_pct;    /* poll mode: percent of requests sent as re-registrations */
    char run_id[32];
    bn_proc *procs;
    int nprocs;
    bn_tls_ctx *tls;          /* NULL: plain HTTP */
    int hs_poll;              /* handshake mode: one poll on each connection before closing it */
    uint32_t ramp;            /* idle mode: connections opening at once */
    uint64_t open_timeout_ns; /* idle mode: the opening ends after this */
    /* events mode: one VEN per connection, polling at --rate with a random
     * phase; groups and events are made through the management API */
    struct sockaddr_storage api_addr;
    char api_host[128];
    const char *api_token;
    struct sockaddr_storage redis_addr; /* INFO memory before and after, when have_redis */
    int have_redis;
    uint32_t groups;     /* VEN i belongs to group i % groups */
    uint32_t events;     /* events created, one after another */
    int spread;          /* event j targets group j % groups; else every group */
    int answer;          /* VENs answer oadrCreatedEvent optIn */
    int rr_never;        /* the events say responseRequired never (else always) */
    uint64_t settle_ns;  /* polling before the events are created */
    uint64_t follow_ns;  /* after creation: who has not received (answered) by then is missing */
    uint64_t measure_ns; /* then closed-loop polls over which CPU is measured; 0: none */
    int64_t start_s;     /* dtstart of the events, seconds from now */
    /* reports mode: one VEN per connection; after registering, each registers
     * its report, takes the oadrCreateReport and answers it, then sends
     * oadrUpdateReport with `intervals` intervals at --rate (or closed loop) */
    uint32_t intervals;
    /* fleet mode: each VEN on its own connection, opened --ramp at a time,
     * registers (retrying with backoff and jitter until the registration
     * deadline), registers its report (fleet_reports), then polls every 1/rate s
     * (each interval drawn in [1 - jitter, 1 + jitter] times that; closed loop
     * at rate 0), answers oadrDistributeEvent and oadrCreateReport, sends
     * oadrUpdateReport every report_back_ns and reconnects with backoff and
     * jitter. With events > 0 the events stages of events mode run inside. */
    double jitter;
    double opt_in_share;     /* share of (VEN, event) answers that opt in; the rest opt out */
    double resume_share;     /* with resumption on: share of reconnects that resume their session */
    int fleet_reports;       /* register a TELEMETRY_USAGE report, answer oadrCreateReport */
    uint64_t report_back_ns; /* oadrUpdateReport period once a request is taken; 0: none */
    int storm;               /* the registrations are measured; the run ends after them */
    uint32_t cert_pool;      /* K > 0: VEN i presents certificate i % K, so VENs i >= K are,
                                to the VTN, more connections of VEN i % K */
    uint32_t reg_attempts;   /* registrations tried per VEN; 0 = until the deadline */
    int per_poll;            /* a VEN connects for each exchange and closes after it */
    uint32_t max_open;       /* per_poll: connections open at once at most (the rest wait) */
    uint64_t retry_base_ns, retry_cap_ns; /* backoff: [d/2, d], d = base * 2^n capped */
    /* push mode (bn_pushsrv.c): VENs 0..push_vens-1 register with
     * oadrHttpPullModel false and the transportAddress push_url with its "%u"
     * replaced by the VEN's index; they do not poll (the VTN pushes to them)
     * and run no report exchange of their own */
    uint32_t push_vens;
    const char *push_url;
    /* called about once a second from the loop (may block briefly, e.g. an API call) */
    void (*tick)(void *arg, const struct bn_tick *t);
    /* called when the measured phase starts (end 0) and ends (end 1), right
     * where the --pids CPU counters are read */
    void (*on_measure)(void *arg, int end);
    void *tick_arg;
} bn_opts;

/* What the fleet looks like at one tick (fleet mode). */
typedef struct bn_tick {
    double t;           /* seconds since the run started */
    const char *phase;  /* "setup" (registering), "measure", "done" */
    uint32_t connected; /* connections open (TLS: handshake done) */
    uint32_t registered;
    struct bn_result *res; /* counters so far; tick_hist holds the latencies since the last tick */
    const char (*ev_ids)[BN_EVENT_ID_MAX]; /* events created so far (res->ev_created) */
} bn_tick;

typedef struct bn_result {
    uint32_t registered, reg_failed;
    double reg_seconds;             /* wall time of the registration phase */
    double seconds;                 /* wall time of the measured phase */
    bn_counts reg, poll;            /* counters by phase */
    bn_counts rereg;                /* poll mode: re-registrations mixed into the polls */
    bn_counts hs;                   /* handshake and idle modes: sent = connects started,
                                       done = ok = handshakes completed */
    uint64_t hs_resumed;            /* of hs.ok, resumed from a session ticket */
    bn_hist *reg_hist;              /* registration latencies */
    bn_hist *poll_hist;             /* poll latencies, measured phase only */
    bn_hist *rereg_hist;            /* re-registrations mixed into the poll phase */
    bn_hist *hs_hist;               /* connect + handshake, handshake and idle modes */
    char tls_desc[160];             /* version, suite and group of the first handshake */
    uint32_t idle_ok;               /* idle mode: connections that reached idle */
    uint32_t idle_failed;           /* ... that failed to open (after retries) */
    uint32_t idle_open;             /* ... open and idle when the memory was read */
    uint32_t idle_lost;             /* idle connections the server closed */
    double open_seconds;            /* idle mode: time to open them all */
    uint64_t self_cpu_us;           /* this process' CPU during the measured phase */
    uint64_t mach_busy, mach_total; /* machine jiffies during the measured phase */
    int interrupted;                /* SIGINT ended the run early */
    /* events mode */
    char setup_error[256]; /* the API or Redis call that failed, and how */
    uint32_t groups_made;
    double groups_seconds;
    uint32_t ev_created;
    double create_ms[BN_EVENTS_MAX];  /* API round trip of each POST /api/v1/events */
    uint32_t targeted;                /* registered VENs at least one event targets */
    uint32_t received, answered;      /* of them, with every event / every answer acknowledged */
    uint64_t cov_recv[3], cov_ans[3]; /* ns from the first create: 50, 99, 100 %; BN_NEVER */
    bn_counts warm;                   /* polls before the measured polls */
    bn_counts created;                /* oadrCreatedEvent requests */
    bn_counts regrep;                /* the poll and oadrRegisteredReport after each registration */
    uint64_t foreign;                /* distributed events the bench did not create */
    long long mem_before, mem_after; /* Redis used_memory around the events; -1 unread */
    uint32_t late;                   /* targeted VENs that did not get there */
    uint32_t missing[10];            /* the first of them (indexes) */
    uint32_t nmissing;
    int follow_timed_out;
    /* reports mode */
    uint32_t rep_ready;                /* VENs whose report request was set up */
    long long xlen_before, xlen_after; /* the stream's length around the updates; -1 unread */
    bn_rep_tally tally;                /* what the consumer found */
    int tally_done;
    char rep_error[256]; /* the consumer's failure */
    /* fleet mode */
    bn_counts upd;             /* oadrUpdateReport (in reports mode they are in poll) */
    bn_counts creport;         /* oadrCreatedReport answering an oadrCreateReport taken by a poll */
    bn_hist *upd_hist;         /* oadrUpdateReport latencies */
    bn_hist *tick_hist;        /* every OK reply since the last tick; the tick's owner resets it */
    uint64_t handshakes;       /* TLS handshakes completed, all phases */
    uint64_t resumed;          /* of them, resumed */
    uint64_t deliveries;       /* oadrDistributeEvent received */
    uint64_t opted_out;        /* eventResponses sent with optOut */
    uint64_t intervals_ok;     /* intervals of oadrUpdateReports answered 200 */
    uint64_t reg_attempts;     /* registrations sent, first ones included */
    uint32_t reg_max_attempts; /* by one VEN */
    uint64_t reconnects;       /* connections reopened after a failure or a close by the VTN */
    uint32_t peak_open;        /* connections open at once, at most (descriptors in use) */
} bn_result;

/* Runs the fleet to completion (bounded by the options' time limits).
 * Fills res; its histograms are allocated here and freed by
 * bn_result_free. 0, or a negative errno when the run could not start. */
/* The body of POST /api/v1/events for event j of a run (events mode, fleet):
 * a SIMPLE signal at `value` for an hour from start_s, targeting the run's
 * groups (with spread, group j % groups). New reference, or NULL. */
struct json_t *bn_event_body(const bn_opts *o, uint32_t j, int value);
int bn_run(const bn_opts *o, bn_result *res);
void bn_result_free(bn_result *res);

/* ---- shared by main.c and bn_fleet.c (bn_common.c) ------------------------ */

/* The run id in venNames: given (1-24 of [A-Za-z0-9_-], else -EINVAL) or random. */
int bn_run_id(const char *given, char *out, size_t len);
/* Whatever the target does, the process exits (status 3) after seconds;
 * SIGPIPE is ignored. */
void bn_hard_cap(unsigned seconds);
/* The IP address of a, as text (what the VTN's certificate must name). */
void bn_addr_ip(const struct sockaddr_storage *a, char *out, size_t len);
/* Failed requests of a phase, whatever the kind. */
uint64_t bn_counts_errors(const bn_counts *k);
/* Prints j on stdout as one compact line and releases it (NULL prints nothing). */
void bn_print_json(json_t *j);

/* ---- vtn-bench fleet (bn_fleet.c) ---------------------------------------- */

/* `vtn-bench fleet [options]`: argv[0] is "fleet". Returns the exit status. */
int bn_fleet_main(int argc, char **argv);

#endif
