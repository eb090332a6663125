/* The gateway <-> worker protocol over ZeroMQ (a Paranoid Pirate variant
 * with credits).
 *
 * Sockets: each gateway binds one ROUTER; each worker connects one DEALER per
 * gateway. Every ZeroMQ message between them is a single frame (the ROUTER
 * adds and strips the identity frame) that starts with a 4-byte header:
 *
 *   byte 0  'V'                magic
 *   byte 1  VTN_WIRE_VERSION   major version: a reader refuses another major
 *   byte 2  type               one of enum vtn_wire_type
 *   byte 3  minor              the sender's VTN_WIRE_MINOR (0 before there
 *                              were minors: the byte was "reserved, 0")
 *
 * then the fixed fields of the type, then the extension area:
 *
 * READY     worker -> gateway: u32 credits (how many requests the worker
 *           takes at once from this gateway), str worker name. Sent on
 *           connect and again whenever the worker restarts its session.
 * HEARTBEAT both ways, no fixed fields, every VTN heartbeat interval when
 *           idle; a peer silent for liveness x interval is dead.
 * REQUEST   gateway -> worker: a vtn_request.
 * REPLY     worker -> gateway: a vtn_reply; returns one credit.
 * DISCONNECT both ways, no fixed fields: the peer is going away cleanly.
 * PUSH      worker -> gateway, reserved; no layout is fixed and nothing
 *           sends it. Push mode does without it: the gateway drives each
 *           push VEN's job and asks workers with REQUESTs tagged
 *           VTN_WIRE_EXT_PUSH_VEN (docs/gateway.md, "Push mode"). A worker
 *           would send it only to a gateway whose minor defines it.
 *
 * Integers are little-endian; a str is u32 length + bytes (no NUL). Decoding
 * is zero-copy: vtn_str fields point into the frame, which must outlive them.
 *
 * Upgrade rules (so gateways and workers can be upgraded one at a time):
 * - The fixed fields of a type never change within a major version. A field
 *   added later travels in the extension area: zero or more
 *   tag-length-values (u16 tag, u32 length, bytes) after the fixed fields,
 *   to the end of the frame. A reader skips the tags it does not know;
 *   a tag with VTN_WIRE_EXT_CRITICAL set means "refuse the frame if you do
 *   not know me" (a field that changes the meaning of the others). Tags are
 *   never reused for another meaning.
 * - A reader accepts any minor (newer or older) of its major. Each header
 *   carries the sender's minor, so a peer learns what the other side knows
 *   (vtn_wire_minor_of) and sends a new frame type or a critical tag only to
 *   a peer whose minor has it.
 * - vtn_wire_type_of returns any non-zero type of a known major; a type the
 *   caller does not handle is a frame from a newer peer, to be ignored.
 * - Minor 0 frames without extensions are byte for byte the frames of the
 *   first release, whose readers demanded minor 0 and no trailing bytes: a
 *   peer sends minor >= 1 or extensions only once no such reader is left.
 *
 * Failing with -EPROTO: a short header, a wrong magic or major, type 0, a
 * length that runs past the frame, a truncated tag-length-value, an unknown
 * critical tag, a field value out of range (request kind, reply status,
 * zero credits). */
#ifndef VTN_WIRE_H
#define VTN_WIRE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "vtn/buf.h"

#define VTN_WIRE_MAGIC 'V'
#define VTN_WIRE_VERSION 1 /* major */
#define VTN_WIRE_MINOR 0   /* what this build writes in byte 3 */
#define VTN_WIRE_EXT_CRITICAL 0x8000u
/* REQUEST tag: the request is a push delivery's (docs/gateway.md, "Push
 * mode"), made by the gateway for the push-mode VEN whose venID is the
 * value: the poll it runs on the VEN's behalf, or the VEN's answer from the
 * HTTP response. The worker takes the VEN as authenticated by the gateway
 * (it verified the VEN's server certificate) and refuses a body naming
 * another venID. Critical: a worker that does not know it must not take a
 * VEN's answer without that check. */
#define VTN_WIRE_EXT_PUSH_VEN (VTN_WIRE_EXT_CRITICAL | 0x10u)
#define VTN_WIRE_HEADER 4
#define VTN_HEARTBEAT_MS 1000
#define VTN_HEARTBEAT_LIVENESS 3

enum vtn_wire_type {
    VTN_WIRE_READY = 1,
    VTN_WIRE_HEARTBEAT = 2,
    VTN_WIRE_REQUEST = 3,
    VTN_WIRE_REPLY = 4,
    VTN_WIRE_DISCONNECT = 5,
    VTN_WIRE_PUSH = 6, /* reserved, see above */
};

enum vtn_req_kind {
    VTN_KIND_OADR = 1,      /* a POST to /OpenADR2/Simple/2.0b/<service> */
    VTN_KIND_API = 2,       /* the JSON management API, /api/v1/... */
    VTN_KIND_PUSH_REPLY = 3 /* reserved (push mode sends VTN_KIND_OADR + VTN_WIRE_EXT_PUSH_VEN) */
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
    vtn_str ext; /* extension area: written as is (well-formed TLVs), read raw */
} vtn_request;

typedef struct vtn_reply {
    uint64_t id;
    uint16_t status;      /* HTTP status */
    vtn_str content_type; /* e.g. "application/xml" */
    vtn_str headers;      /* extra header lines, each ending in CRLF, may be empty */
    vtn_str body;
    vtn_str ext;
} vtn_reply;

typedef struct vtn_ready {
    uint32_t credits;
    vtn_str name;
    /* No ext member: callers initialise this struct by position. A READY
     * from a newer minor may still carry extensions; they are checked and
     * skipped. */
} vtn_ready;

/* Header check; returns the type (any non-zero value, see the upgrade
 * rules) or -EPROTO. */
int vtn_wire_type_of(const void *frame, size_t n);
/* The sender's minor version from the header, or -EPROTO. */
int vtn_wire_minor_of(const void *frame, size_t n);

/* Encoders append one complete frame to out (reset it first to start a new
 * one), ext (if any) after the fixed fields. 0, -ENOBUFS, -ENOMEM, or
 * -EINVAL when ext is not a well-formed TLV sequence. */
int vtn_wire_encode_request(vtn_buf *out, const vtn_request *r);
int vtn_wire_encode_reply(vtn_buf *out, const vtn_reply *r);
int vtn_wire_encode_ready(vtn_buf *out, const vtn_ready *r);
int vtn_wire_encode_empty(vtn_buf *out, int type); /* HEARTBEAT, DISCONNECT */

/* Decoders; 0 or -EPROTO. out->ext is the frame's extension area. */
int vtn_wire_decode_request(const void *frame, size_t n, vtn_request *out);
int vtn_wire_decode_reply(const void *frame, size_t n, vtn_reply *out);
int vtn_wire_decode_ready(const void *frame, size_t n, vtn_ready *out);

/* Appends one tag-length-value to out: to build an ext area before
 * encoding, or right after a frame was encoded into out. tag 0 is invalid.
 * 0, -EINVAL, -ENOBUFS, -ENOMEM. */
int vtn_wire_ext_put(vtn_buf *out, uint16_t tag, vtn_str value);
/* Finds tag in an extension area (from a decoder). 0 with *value set, or
 * -ENOENT. */
int vtn_wire_ext_get(vtn_str ext, uint16_t tag, vtn_str *value);

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
