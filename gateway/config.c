/* vtn-gateway's settings: one table, VTN_* variables, --help prints it. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "gw_internal.h"
#include "vtn/redis.h"

#define F(x) offsetof(gw_config, x)

#ifndef VTN_UI_DEFAULT_DIR /* set by CMake: the installed share/openvtn/ui */
#define VTN_UI_DEFAULT_DIR "/usr/local/share/openvtn/ui"
#endif

const vtn_cfg_item gw__config_items[] = {
    {"VTN_OADR_LISTEN", "--oadr-listen", VTN_CFG_ADDR, F(oadr_listen), "127.0.0.1:8080", 0, 0,
     "OpenADR 2.0b listener: mutual TLS when VTN_TLS_CERTS is set, plain HTTP otherwise (then "
     "only for a TLS-terminating proxy, see VTN_TRUSTED_PROXIES, or for tests); port 0 picks a "
     "free port"},
    {"VTN_API_LISTEN", "--api-listen", VTN_CFG_ADDR, F(api_listen), "127.0.0.1:8081", 0, 0,
     "management API listener (/api/v1/...)"},
    {"VTN_OPS_LISTEN", "--ops-listen", VTN_CFG_ADDR, F(ops_listen), "127.0.0.1:9100", 0, 0,
     "/healthz, /readyz (ready with >= 1 live worker) and /metrics"},
    {"VTN_ZMQ_BIND", "--zmq-bind", VTN_CFG_STR, F(zmq_bind), "tcp://127.0.0.1:7100", 0, 0,
     "ZeroMQ ROUTER endpoint workers connect to (tcp://host:port; port 0 picks one)"},
    {"VTN_ZMQ_ADVERTISE", "--zmq-advertise", VTN_CFG_STR, F(zmq_advertise), "", 0, 0,
     "endpoint published to workers in Redis (default: the bound endpoint)"},
    {"VTN_REDIS_URL", "--redis-url", VTN_CFG_STR, F(redis_url), VTN_REDIS_URL_DEFAULT, 0, 0,
     "Redis where the gateway advertises itself (ZSET vtn:gateways); empty (and no "
     "VTN_REDIS_SENTINELS) = do not advertise"},
    VTN_REDIS_SENTINEL_CFG_ITEMS(gw_config),
    {"VTN_MAX_HEADER_BYTES", "--max-header-bytes", VTN_CFG_SIZE, F(max_header_bytes), "16KiB", 1024,
     1 << 20, "request line + header bytes per request; beyond: 431 and close"},
    {"VTN_MAX_BODY_BYTES", "--max-body-bytes", VTN_CFG_SIZE, F(max_body_bytes), "4MiB", 1024,
     (long long)32 << 20, "request body bytes (chunked or not); beyond: 413 and close"},
    {"VTN_MAX_URL", "--max-url", VTN_CFG_SIZE, F(max_url), "1KiB", 64, 65536,
     "request target bytes (path + query) on the OpenADR listener, whose paths are about 40 "
     "bytes; beyond: 414"},
    {"VTN_API_MAX_URL", "--api-max-url", VTN_CFG_SIZE, F(api_max_url), "2KiB", 64, 65536,
     "request target bytes (path + query) on the management API listener; beyond: 414"},
    {"VTN_API_MAX_BODY", "--api-max-body", VTN_CFG_SIZE, F(api_max_body_bytes), "1MiB", 1024,
     (long long)32 << 20, "request body bytes on the management API listener; beyond: 413"},
    {"VTN_BODY_BUDGET", "--body-budget", VTN_CFG_SIZE, F(body_budget), "0", 0, (long long)1 << 40,
     "request body bytes buffered across all connections; a body that would pass it is refused "
     "with 503 and Retry-After before it is read, and bodies over 16 KiB may fill only 3/4 of "
     "it; 0 = 1/16 of the machine's memory, between 64 MiB and 2 GiB (at least "
     "VTN_MAX_BODY_BYTES)"},
    {"VTN_API_TOKEN", "--api-token", VTN_CFG_SECRET, F(api_token), "", 0, 0,
     "the management API's bearer token (the workers' VTN_API_TOKEN): a request without it is "
     "refused (401) before its body is read; empty = only the workers check it"},
    {"VTN_HEADER_TIMEOUT", "--header-timeout", VTN_CFG_MS, F(header_timeout_ms), "10s", 100, 600000,
     "time from a request's first byte to its complete header (408 and close); also how long a "
     "new connection may stay silent"},
    {"VTN_IDLE_TIMEOUT", "--idle-timeout", VTN_CFG_MS, F(idle_timeout_ms), "60s", 100, 3600000,
     "an idle keep-alive connection is closed after this; also the longest pause while a body "
     "arrives (408) or a response is written"},
    {"VTN_MAX_CONNECTIONS", "--max-connections", VTN_CFG_INT, F(max_connections), "10000", 1,
     1000000,
     "open connections on the OpenADR listener; when full, a new connection replaces the oldest "
     "one that has not authenticated yet, else the longest idle one, else it is refused (503 "
     "with Retry-After on plain HTTP, closed on TLS)"},
    {"VTN_API_MAX_CONNECTIONS", "--api-max-connections", VTN_CFG_INT, F(api_max_connections), "64",
     1, 100000, "open connections on the management API listener, counted apart"},
    {"VTN_MAX_CONNECTIONS_PER_IP", "--max-connections-per-ip", VTN_CFG_INT, F(max_conns_per_ip),
     "64", 0, 1000000,
     "open connections from one address, both listeners together; beyond: refused like "
     "VTN_MAX_CONNECTIONS; 0 = no cap. Addresses in VTN_TRUSTED_PROXIES are not capped"},
    {"VTN_MAX_CONNECTIONS_PER_IP_EXEMPT", "--max-connections-per-ip-exempt", VTN_CFG_STR,
     F(conn_exempt), "127.0.0.1,::1", 0, 0,
     "IPs/CIDRs, comma-separated, that VTN_MAX_CONNECTIONS_PER_IP does not cap (an aggregator's "
     "NAT, a local load balancer); empty = none"},
    {"VTN_READ_TIMEOUT", "--read-timeout", VTN_CFG_MS, F(read_timeout_ms), "30s", 100, 3600000,
     "time from a request's first byte to its complete body, however steadily it arrives; "
     "beyond: 408 and close"},
    {"VTN_REQUEST_TIMEOUT", "--request-timeout", VTN_CFG_MS, F(request_timeout_ms), "5s", 100,
     600000, "deadline given to workers; no reply by then: 504"},
    {"VTN_MAX_PENDING", "--max-pending", VTN_CFG_INT, F(max_pending), "1024", 0, 1000000,
     "requests waiting for a worker credit; beyond: 503 with Retry-After"},
    {"VTN_RETRY_AFTER", "--retry-after", VTN_CFG_INT, F(retry_after_s), "1", 0, 3600,
     "seconds in the Retry-After header of 503 answers"},
    {"VTN_TLS_CERTS", "--tls-certs", VTN_CFG_STR, F(tls_certs), "", 0, 0,
     "server certificate:key file pairs, comma-separated (at most one RSA and one ECC: "
     "rsa.pem:rsa.key,ecc.pem:ecc.key); set = the OpenADR listener speaks only TLS"},
    {"VTN_TLS_CLIENT_CA", "--tls-client-ca", VTN_CFG_STR, F(tls_client_ca), "", 0, 0,
     "PEM bundle(s) of the CAs that issue VEN certificates, comma-separated; required with "
     "VTN_TLS_CERTS"},
    {"VTN_TLS_CRL", "--tls-crl", VTN_CFG_STR, F(tls_crl), "", 0, 0,
     "PEM CRL file(s), comma-separated, one per client CA; empty = no revocation check"},
    {"VTN_TLS_PROTOCOLS", "--tls-protocols", VTN_CFG_STR, F(tls_protocols), "TLSv1.2", 0, 0,
     "TLSv1.2 (OpenADR 2.0b: its two suites only), TLSv1.3, or TLSv1.2,TLSv1.3"},
    {"VTN_TLS_HANDSHAKE_TIMEOUT", "--tls-handshake-timeout", VTN_CFG_MS,
     F(tls_handshake_timeout_ms), "10s", 100, 600000,
     "time from accept to a completed TLS handshake; then the connection is closed"},
    {"VTN_TLS_RESUMPTION", "--tls-resumption", VTN_CFG_STR, F(tls_resumption), "tickets", 0, 0,
     "how reconnecting VENs resume: tickets (stateless, nothing kept here), cache (session IDs "
     "in this gateway, VTN_TLS_SESSION_CACHE of them; cheapest with OpenSSL 3.0) or off"},
    {"VTN_TLS_SESSION_CACHE", "--tls-session-cache", VTN_CFG_INT, F(tls_session_cache), "10000", 1,
     10000000,
     "sessions kept with VTN_TLS_RESUMPTION=cache, about 10 kB each (the VEN's certificate "
     "chain is kept with it); when full the oldest goes"},
    {"VTN_TLS_TICKET_KEYS", "--tls-ticket-keys", VTN_CFG_STR, F(tls_ticket_keys), "", 0, 0,
     "file of session ticket keys shared by every gateway, one per line as 160 hex digits "
     "(openssl rand -hex 80), the first encrypts; empty = a random key per gateway process "
     "(tickets then resume only where they were issued)"},
    {"VTN_PUSH_CERT", "--push-cert", VTN_CFG_STR, F(push_cert), "", 0, 0,
     "the VTN's client certificate:key for pushes to VENs (push mode), or one file holding "
     "both; RSA or ECC, or one of each comma-separated (the one the VEN's request allows is "
     "sent); requires VTN_PUSH_CA"},
    {"VTN_PUSH_CA", "--push-ca", VTN_CFG_STR, F(push_ca), "", 0, 0,
     "PEM bundle(s) of the CAs trusted for VENs' server certificates, comma-separated; empty = "
     "push TLS not configured; requires VTN_PUSH_CERT"},
    {"VTN_PUSH_PROTOCOLS", "--push-protocols", VTN_CFG_STR, F(push_protocols), "TLSv1.2", 0, 0,
     "TLS versions offered to VENs: TLSv1.2 (OpenADR 2.0b: its two suites only), TLSv1.3, or "
     "TLSv1.2,TLSv1.3"},
    {"VTN_PUSH_TIMEOUT", "--push-timeout", VTN_CFG_MS, F(push_timeout_ms), "10s", 100, 600000,
     "connect + TLS handshake + the VEN's reply, for one push (and for --push-check)"},
    {"VTN_PUSH_CONCURRENCY", "--push-concurrency", VTN_CFG_INT, F(push_concurrency), "256", 0,
     100000,
     "push-mode VENs this gateway delivers to at once (one job per VEN); 0 = none (the jobs "
     "go to other gateways)"},
    {"VTN_PUSH_MAX_ATTEMPTS", "--push-max-attempts", VTN_CFG_INT, F(push_max_attempts), "6", 1,
     1000,
     "failed deliveries in a row after which the VEN is marked undelivered (and tried again at "
     "the recheck)"},
    {"VTN_PUSH_RETRY", "--push-retry", VTN_CFG_MS, F(push_retry_ms), "1s", 10, 3600000,
     "delay before the first retry of a failed push; doubles per attempt, with jitter"},
    {"VTN_PUSH_RETRY_MAX", "--push-retry-max", VTN_CFG_MS, F(push_retry_max_ms), "60s", 10,
     86400000, "longest delay between two push retries"},
    {"VTN_PUSH_LEASE", "--push-lease", VTN_CFG_MS, F(push_lease_ms), "15s", 200, 3600000,
     "how long a gateway holds a push job before another may take it (renewed per message; "
     "must exceed VTN_PUSH_TIMEOUT)"},
    {"VTN_PUSH_RECHECK", "--push-recheck", VTN_CFG_MS, F(push_recheck_ms), "10s", 100, 86400000,
     "a push VEN's job also runs this long after its last one, to deliver what was queued "
     "without a trigger"},
    {"VTN_PUSH_ALLOW_HTTP", "--push-allow-http", VTN_CFG_BOOL, F(push_allow_http), "0", 0, 0,
     "deliver to plain http:// transportAddresses (development only; refused otherwise)"},
    {"VTN_TRUSTED_PROXIES", "--trusted-proxies", VTN_CFG_STR, F(trusted_proxies), "", 0, 0,
     "IPs/CIDRs of TLS-terminating proxies, comma-separated; set = the OpenADR listener is plain "
     "HTTP, serves only these addresses and takes the VEN's identity from their headers"},
    {"VTN_PROXY_CERT_HEADER", "--proxy-cert-header", VTN_CFG_STR, F(proxy_cert_header),
     "X-Client-Cert", 0, 0,
     "header with the client certificate as URL-encoded PEM (nginx $ssl_client_escaped_cert); "
     "empty = not used. Refused (403) from any other address"},
    {"VTN_PROXY_FINGERPRINT_HEADER", "--proxy-fingerprint-header", VTN_CFG_STR, F(proxy_fp_header),
     "", 0, 0,
     "header with the client certificate's fingerprint, verified by the proxy; empty = not "
     "used. Refused (403) from any other address"},
    {"VTN_UI_DIR", "--ui-dir", VTN_CFG_STR, F(ui_dir), VTN_UI_DEFAULT_DIR, 0, 0,
     "the operator console's built files, served under /ui/ on the management API listener "
     "(read once at start; docs/ui.md); empty, missing or without index.html = no console"},
    {"VTN_UI_MAX_BYTES", "--ui-max-bytes", VTN_CFG_SIZE, F(ui_max_bytes), "32MiB", 0,
     (long long)1 << 30, "the console's files together, held in memory; more: no console"},
};

const size_t gw__config_nitems = sizeof gw__config_items / sizeof gw__config_items[0];

static int empty(const char *s)
{
    return s == NULL || *s == '\0';
}

/* Headers the HTTP layer or a worker interprets itself: an identity header
 * with one of these names would be ambiguous. */
static const char *const reserved_headers[] = {"host",
                                               "content-type",
                                               "content-length",
                                               "transfer-encoding",
                                               "authorization",
                                               "connection",
                                               "expect",
                                               "upgrade",
                                               "te",
                                               "trailer",
                                               "keep-alive"};

static int check_header(const char *var, const char *name, char *err, size_t errlen)
{
    char low[GW_HNAME_MAX];
    size_t n;
    if (empty(name))
        return 0;
    if (gw_header_name_check(name, low, &n) != 0) {
        snprintf(err, errlen, "%s: \"%s\" is not a header name (letters, digits, '-', at most %d)",
                 var, name, GW_HNAME_MAX - 1);
        return -EINVAL;
    }
    for (size_t i = 0; i < sizeof reserved_headers / sizeof reserved_headers[0]; i++) {
        if (strcasecmp(name, reserved_headers[i]) == 0) {
            snprintf(err, errlen, "%s: %s is a header the gateway interprets itself", var, name);
            return -EINVAL;
        }
    }
    return 0;
}

int gw__config_check(const gw_config *cfg, char *err, size_t errlen)
{
    int tls = !empty(cfg->tls_certs);
    if (!tls && !empty(cfg->tls_client_ca)) {
        snprintf(err, errlen,
                 "VTN_TLS_CLIENT_CA is set but VTN_TLS_CERTS is empty: the OpenADR listener "
                 "would speak plain HTTP");
        return -EINVAL;
    }
    if (!tls && !empty(cfg->tls_crl)) {
        snprintf(err, errlen,
                 "VTN_TLS_CRL is set but VTN_TLS_CERTS is empty: the OpenADR listener would speak "
                 "plain HTTP");
        return -EINVAL;
    }
    if (tls && empty(cfg->tls_client_ca)) {
        snprintf(err, errlen,
                 "VTN_TLS_CLIENT_CA is required with VTN_TLS_CERTS: OpenADR 2.0b needs client "
                 "certificates");
        return -EINVAL;
    }
    if (cfg->push_lease_ms > 0 && cfg->push_lease_ms <= cfg->push_timeout_ms) {
        snprintf(err, errlen,
                 "VTN_PUSH_LEASE (%lld ms) must exceed VTN_PUSH_TIMEOUT (%lld ms): a push still "
                 "under way would be taken by another gateway",
                 cfg->push_lease_ms, cfg->push_timeout_ms);
        return -EINVAL;
    }
    if (!empty(cfg->push_cert) && empty(cfg->push_ca)) {
        snprintf(err, errlen,
                 "VTN_PUSH_CA is required with VTN_PUSH_CERT: the VEN's server certificate must "
                 "be verified");
        return -EINVAL;
    }
    if (empty(cfg->push_cert) && !empty(cfg->push_ca)) {
        snprintf(err, errlen,
                 "VTN_PUSH_CERT is required with VTN_PUSH_CA: push-mode VENs need the VTN's "
                 "client certificate");
        return -EINVAL;
    }
    if (gw_advert_wanted(cfg)) {
        vtn_redis_target t;
        if (vtn_redis_target_init(&t, cfg->redis_url, cfg->redis_sentinels,
                                  cfg->redis_sentinel_master, cfg->redis_sentinel_password, err,
                                  errlen) < 0)
            return -EINVAL;
    } else if (!empty(cfg->redis_sentinel_master) || !empty(cfg->redis_sentinel_password)) {
        snprintf(err, errlen,
                 "VTN_REDIS_SENTINEL_MASTER or VTN_REDIS_SENTINEL_PASSWORD is set "
                 "but VTN_REDIS_SENTINELS is empty");
        return -EINVAL;
    }
    if (check_header("VTN_PROXY_CERT_HEADER", cfg->proxy_cert_header, err, errlen) ||
        check_header("VTN_PROXY_FINGERPRINT_HEADER", cfg->proxy_fp_header, err, errlen))
        return -EINVAL;
    if (!empty(cfg->proxy_cert_header) && !empty(cfg->proxy_fp_header) &&
        strcasecmp(cfg->proxy_cert_header, cfg->proxy_fp_header) == 0) {
        snprintf(err, errlen,
                 "VTN_PROXY_CERT_HEADER and VTN_PROXY_FINGERPRINT_HEADER name the same header");
        return -EINVAL;
    }
    gw_proxies px;
    int rc =
        gw_cidrs_parse("VTN_MAX_CONNECTIONS_PER_IP_EXEMPT", cfg->conn_exempt, &px, err, errlen);
    if (rc != 0)
        return rc == -ENOMEM ? rc : -EINVAL;
    gw_proxies_free(&px);
    rc = gw_proxies_parse(cfg->trusted_proxies, &px, err, errlen);
    if (rc != 0)
        return rc == -ENOMEM ? rc : -EINVAL;
    size_t n = px.n;
    gw_proxies_free(&px);
    if (n && tls) {
        snprintf(err, errlen,
                 "VTN_TLS_CERTS and VTN_TRUSTED_PROXIES exclude each other: behind a "
                 "TLS-terminating proxy the OpenADR listener speaks plain HTTP");
        return -EINVAL;
    }
    if (n && empty(cfg->proxy_cert_header) && empty(cfg->proxy_fp_header)) {
        snprintf(err, errlen,
                 "VTN_TRUSTED_PROXIES is set but VTN_PROXY_CERT_HEADER and "
                 "VTN_PROXY_FINGERPRINT_HEADER are both empty: nothing carries the VEN's "
                 "identity");
        return -EINVAL;
    }
    if (!empty(cfg->trusted_proxies) && n == 0) {
        snprintf(err, errlen, "VTN_TRUSTED_PROXIES: no address in \"%s\"", cfg->trusted_proxies);
        return -EINVAL;
    }
    return 0;
}
