/* The worker's config table: every VTN_* variable it reads. */
#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "wk_internal.h"

#define F(x) offsetof(wk_config, x)

const vtn_cfg_item wk_cfg_items[] = {
    {"VTN_GATEWAYS", "--gateways", VTN_CFG_STR, F(gateways), "", 0, 0,
     "comma-separated ZeroMQ endpoints of the gateways (tcp://host:port); empty: discover them "
     "from the Redis ZSET vtn:gateways every second"},
    {"VTN_REDIS_URL", "--redis-url", VTN_CFG_STR, F(redis_url), VTN_REDIS_URL_DEFAULT, 0, 0,
     "Redis: redis://[:password@]host[:port][/db] or redis+unix:///path[?db=N]"},
    VTN_REDIS_SENTINEL_CFG_ITEMS(wk_config),
    {"VTN_OPS_LISTEN", "--ops-listen", VTN_CFG_ADDR, F(ops_listen), "127.0.0.1:9101", 0, 0,
     "address of /healthz, /readyz and /metrics"},
    {"VTN_VTN_ID", "--vtn-id", VTN_CFG_STR, F(vtn_id), "openvtn-VTN", 0, 0,
     "the vtnID in every OpenADR reply (letters, digits, '-', '_', '.'; not all digits)"},
    {"VTN_API_TOKEN", "--api-token", VTN_CFG_SECRET, F(api_token), "", 0, 0,
     "bearer token of the management API; empty disables the API (503)"},
    {"VTN_POLL_FREQ", "--poll-freq", VTN_CFG_MS, F(poll_freq_ms), "10s", 1000, 86400000,
     "oadrRequestedOadrPollFreq told to VENs at registration"},
    {"VTN_REGISTRATION_POLICY", "--registration-policy", VTN_CFG_STR, F(registration_policy),
     "open", 0, 0,
     "open: any VEN may register; provisioned: only VENs pre-provisioned through the "
     "management API (by venName and/or certificate fingerprint)"},
    {"VTN_WORKER_CREDITS", "--credits", VTN_CFG_INT, F(credits), "64", 1, 1024,
     "requests this worker takes at once from each gateway (READY credits)"},
    {"VTN_WORKER_NAME", "--name", VTN_CFG_STR, F(name), "", 0, 0,
     "name sent in READY and logged; empty: hostname:pid"},
    {"VTN_REDIS_TIMEOUT", "--redis-timeout", VTN_CFG_MS, F(redis_timeout_ms), "1s", 10, 60000,
     "connect and reply timeout of Redis; a timeout fails the connection (reconnect with "
     "back-off, requests answered 503 meanwhile)"},
    {"VTN_DRAIN_TIMEOUT", "--drain-timeout", VTN_CFG_MS, F(drain_ms), "2s", 0, 60000,
     "on SIGTERM: after DISCONNECT, keep answering requests that already arrived for at most "
     "this long"},
    {"VTN_CA_DIR", "--ca-dir", VTN_CFG_STR, F(ca_dir), "", 0, 0,
     "folder of the VEN client CA as `vtnctl ca create` makes it (ca.pem, ca.key): the "
     "management API's /api/v1/certificates signs with it; empty: certificate issuing "
     "disabled (503)"},
    {"VTN_WORKER_MEMORY", "--memory", VTN_CFG_SIZE, F(memory), "512MiB", 16LL << 20, 1LL << 40,
     "memory budget of the requests in flight: their frames plus an estimate of what parsing "
     "them costs (32 times the XML); past it a request gets 503 + Retry-After, and one that "
     "can never fit 413"},
    {"VTN_REPORT_REQUEST_IN", "--report-request-in", VTN_CFG_STR, F(report_request_in), "poll", 0,
     0,
     "where the VTN's default report requests reach a VEN after its oadrRegisterReport: poll "
     "(an oadrCreateReport on its next poll, which every VEN handles) or registered (inside the "
     "oadrRegisteredReport answer)"},
    {"VTN_TELEMETRY_MAXLEN", "--telemetry-maxlen", VTN_CFG_INT, F(telemetry_maxlen), "1000000",
     1000, 1000000000,
     "entries (one per oadrReport, its values packed) the telemetry stream vtn:{telemetry} keeps "
     "at most (trimmed approximately, oldest first)"},
    {"VTN_TELEMETRY_RETENTION", "--telemetry-retention", VTN_CFG_MS, F(telemetry_keep_ms), "168h",
     0, 366LL * 86400000,
     "entries of the telemetry stream older than this are trimmed (approximately); 0: by "
     "VTN_TELEMETRY_MAXLEN only"},
};
const size_t wk_cfg_nitems = sizeof wk_cfg_items / sizeof wk_cfg_items[0];

int wk_config_check(const wk_config *cfg, int *policy, char *err, size_t errlen)
{
    if (strcmp(cfg->registration_policy, "open") == 0) {
        *policy = WK_POLICY_OPEN;
    } else if (strcmp(cfg->registration_policy, "provisioned") == 0) {
        *policy = WK_POLICY_PROVISIONED;
    } else {
        snprintf(err, errlen, "VTN_REGISTRATION_POLICY: '%s' is not one of open, provisioned",
                 cfg->registration_policy);
        return -EINVAL;
    }
    if (strcmp(cfg->report_request_in, "poll") != 0 &&
        strcmp(cfg->report_request_in, "registered") != 0) {
        snprintf(err, errlen, "VTN_REPORT_REQUEST_IN: '%s' is not one of poll, registered",
                 cfg->report_request_in);
        return -EINVAL;
    }
    size_t n = strlen(cfg->vtn_id);
    int digits = 1;
    if (n == 0 || n > WK_ID_MAX) {
        snprintf(err, errlen, "VTN_VTN_ID: must be 1..%d characters", WK_ID_MAX);
        return -EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)cfg->vtn_id[i];
        if (!isalnum(c) && c != '-' && c != '_' && c != '.') {
            snprintf(err, errlen, "VTN_VTN_ID: character '%c' not allowed (letters, digits, -_.)",
                     c);
            return -EINVAL;
        }
        if (!isdigit(c))
            digits = 0;
    }
    if (digits) {
        snprintf(err, errlen,
                 "VTN_VTN_ID: must not be all digits (some VENs turn it into a "
                 "number)");
        return -EINVAL;
    }
    /* Gateway endpoints: "tcp://..." or "ipc://..." each, at most WK_MAX_GATEWAYS. */
    const char *list = cfg->gateways, *p;
    size_t len;
    int count = 0;
    while (vtn_cfg_list_next(&list, &p, &len)) {
        if (len) {
            if (len >= WK_ENDPOINT_MAX ||
                (strncmp(p, "tcp://", 6) != 0 && strncmp(p, "ipc://", 6) != 0)) {
                snprintf(err, errlen,
                         "VTN_GATEWAYS: '%.*s' is not a tcp:// or ipc:// endpoint shorter than "
                         "%d bytes",
                         (int)(len > 200 ? 200 : len), p, WK_ENDPOINT_MAX);
                return -EINVAL;
            }
            if (++count > WK_MAX_GATEWAYS) {
                snprintf(err, errlen, "VTN_GATEWAYS: more than %d endpoints", WK_MAX_GATEWAYS);
                return -EINVAL;
            }
        }
    }
    vtn_redis_target t;
    return vtn_redis_target_init(&t, cfg->redis_url, cfg->redis_sentinels,
                                 cfg->redis_sentinel_master, cfg->redis_sentinel_password, err,
                                 errlen);
}
