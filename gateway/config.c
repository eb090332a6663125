/* vtn-gateway's settings: one table, VTN_* variables, --help prints it. */
#include <stddef.h>

#include "gw_internal.h"
#include "vtn/redis.h"

#define F(x) offsetof(gw_config, x)

const vtn_cfg_item gw__config_items[] = {
    {"VTN_OADR_LISTEN", "--oadr-listen", VTN_CFG_ADDR, F(oadr_listen), "127.0.0.1:8080", 0, 0,
     "OpenADR 2.0b listener (plain HTTP until TLS lands); port 0 picks a free port"},
    {"VTN_API_LISTEN", "--api-listen", VTN_CFG_ADDR, F(api_listen), "127.0.0.1:8081", 0, 0,
     "management API listener (/api/v1/...)"},
    {"VTN_OPS_LISTEN", "--ops-listen", VTN_CFG_ADDR, F(ops_listen), "127.0.0.1:9100", 0, 0,
     "/healthz, /readyz (ready with >= 1 live worker) and /metrics"},
    {"VTN_ZMQ_BIND", "--zmq-bind", VTN_CFG_STR, F(zmq_bind), "tcp://127.0.0.1:7100", 0, 0,
     "ZeroMQ ROUTER endpoint workers connect to (tcp://host:port; port 0 picks one)"},
    {"VTN_ZMQ_ADVERTISE", "--zmq-advertise", VTN_CFG_STR, F(zmq_advertise), "", 0, 0,
     "endpoint published to workers in Redis (default: the bound endpoint)"},
    {"VTN_REDIS_URL", "--redis-url", VTN_CFG_STR, F(redis_url), VTN_REDIS_URL_DEFAULT, 0, 0,
     "Redis where the gateway advertises itself (ZSET vtn:gateways); empty = do not advertise"},
    {"VTN_MAX_HEADER_BYTES", "--max-header-bytes", VTN_CFG_SIZE, F(max_header_bytes), "16KiB", 1024,
     1 << 20, "request line + header bytes per request; beyond: 431 and close"},
    {"VTN_MAX_BODY_BYTES", "--max-body-bytes", VTN_CFG_SIZE, F(max_body_bytes), "4MiB", 1024,
     (long long)32 << 20, "request body bytes (chunked or not); beyond: 413 and close"},
    {"VTN_HEADER_TIMEOUT", "--header-timeout", VTN_CFG_MS, F(header_timeout_ms), "10s", 100, 600000,
     "time from a request's first byte to its complete header (408 and close); also how long a "
     "new connection may stay silent"},
    {"VTN_IDLE_TIMEOUT", "--idle-timeout", VTN_CFG_MS, F(idle_timeout_ms), "60s", 100, 3600000,
     "an idle keep-alive connection is closed after this; also the longest pause while a body "
     "arrives (408) or a response is written"},
    {"VTN_MAX_CONNECTIONS", "--max-connections", VTN_CFG_INT, F(max_connections), "10000", 1,
     1000000, "open client connections; beyond: 503 with Retry-After and close"},
    {"VTN_REQUEST_TIMEOUT", "--request-timeout", VTN_CFG_MS, F(request_timeout_ms), "5s", 100,
     600000, "deadline given to workers; no reply by then: 504"},
    {"VTN_MAX_PENDING", "--max-pending", VTN_CFG_INT, F(max_pending), "1024", 0, 1000000,
     "requests waiting for a worker credit; beyond: 503 with Retry-After"},
    {"VTN_RETRY_AFTER", "--retry-after", VTN_CFG_INT, F(retry_after_s), "1", 0, 3600,
     "seconds in the Retry-After header of 503 answers"},
};

const size_t gw__config_nitems = sizeof gw__config_items / sizeof gw__config_items[0];
