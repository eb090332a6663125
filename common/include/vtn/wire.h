/* The gateway <-> worker protocol over ZeroMQ (a Paranoid Pirate variant
 * with credits).
 *
 * Sockets: each gateway binds one ROUTER; each worker connects one DEALER per
 * gateway. Every ZeroMQ message between them is a single frame (the ROUTER
 * adds and strips the identity frame) that starts with a 4-byte header:
 *
 *   byte 0  'V'           magic
 *   byte 1  VTN_WIRE_VERSION
 *   byte 2  type          one of enum vtn_wire_type
 *   byte 3  0             reserved
 *
 * READY     worker -> gateway: u32 credits (how many requests the worker
 *           takes at once from this gateway), str worker name. Sent on
 *           connect and again whenever the worker restarts its session.
 * HEARTBEAT both ways, no body, every VTN heartbeat interval when idle;
 *           a peer silent for liveness x interval is dead.
 * REQUEST   gateway -> worker: a vtn_request.
 * REPLY     worker -> gateway: a vtn_reply; returns one credit.
 * DISCONNECT both ways, no body: the peer is going away cleanly.
 *
 * Integers are little-endian; a str is u32 length + bytes (no NUL). Decoding
 * is zero-copy: vtn_str fields point into the frame, which must outlive them.
 * Any length that runs past the frame, an unknown type or version fails with
 * -EPROTO. */
#ifndef VTN_WIRE_H
#define VTN_WIRE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "vtn/buf.h"

#define VTN_WIRE_MAGIC 'V'
#define VTN_WIRE_VERSION 1
#define VTN_WIRE_HEADER 4
#define VTN_HEARTBEAT_MS 1000
#define VTN_HEARTBEAT_LIVENESS 3

enum vtn_wire_type {
    VTN_WIRE_READY = 1,
    VTN_WIRE_HEARTBEAT = 2,
    VTN_WIRE_REQUEST = 3,
    VTN_WIRE_REPLY = 4,
    VTN_WIRE_DISCONNECT = 5,
};

enum vtn_req_kind {
    VTN_KIND_OADR = 1,      /* a POST to /OpenADR2/Simple/2.0b/<service> */
    VTN_KIND_API = 2,       /* the JSON management API, /api/v1/... */
    VTN_KIND_PUSH_REPLY = 3 /* a push VEN's answer to a VTN-initiated POST */
};

typedef struct vtn_str {
    const char *p;
    uint32_t n;
} vtn_str;

typedef struct vtn_request {
    uint64_t id;           /* unique across gateways: random high bits + counter */
    uint8_t kind;          /* enum vtn_req_kind */
    uint8_t attempt;       /* 0 first delivery, 1 a retry on another worker */
    int64_t deadline_ms;   /* wall clock ms; a worker drops requests past it */
    vtn_str fingerprint;   /* OpenADR client certificate fingerprint, "" without TLS */
    vtn_str remote;        /* "ip:port" of the client */
    vtn_str method;        /* "POST", "GET", ... */
    vtn_str path;          /* path and query as received */
    vtn_str content_type;  /* value of Content-Type, may be empty */
    vtn_str authorization; /* value of Authorization (API requests), may be empty */
    vtn_str body;
} vtn_request;

typedef struct vtn_reply {
    uint64_t id;
    uint16_t status;      /* HTTP status */
    vtn_str content_type; /* e.g. "application/xml" */
    vtn_str headers;      /* extra header lines, each ending in CRLF, may be empty */
    vtn_str body;
} vtn_reply;

typedef struct vtn_ready {
    uint32_t credits;
    vtn_str name;
} vtn_ready;

/* Header check; returns the type or -EPROTO. */
int vtn_wire_type_of(const void *frame, size_t n);

/* Encoders append one complete frame to out (reset it first to start a new
 * one). 0, -ENOBUFS or -ENOMEM. */
int vtn_wire_encode_request(vtn_buf *out, const vtn_request *r);
int vtn_wire_encode_reply(vtn_buf *out, const vtn_reply *r);
int vtn_wire_encode_ready(vtn_buf *out, const vtn_ready *r);
int vtn_wire_encode_empty(vtn_buf *out, int type); /* HEARTBEAT, DISCONNECT */

/* Decoders; 0 or -EPROTO. */
int vtn_wire_decode_request(const void *frame, size_t n, vtn_request *out);
int vtn_wire_decode_reply(const void *frame, size_t n, vtn_reply *out);
int vtn_wire_decode_ready(const void *frame, size_t n, vtn_ready *out);

static inline vtn_str vtn_str_c(const char *s)
{
    vtn_str v = {s, s ? (uint32_t)strlen(s) : 0};
    return v;
}
static inline int vtn_str_eq(vtn_str a, const char *s)
{
    size_t n = strlen(s);
    return a.n == n && memcmp(a.p, s, n) == 0;
}

#endif
