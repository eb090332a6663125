#include "vtn/wire.h"

#include <errno.h>
#include <string.h>

/* Little-endian writers into a reserved buffer region. */
static void put_u32(char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (char)(v >> (8 * i));
}

static void put_u64(char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (char)(v >> (8 * i));
}

static int put_header(vtn_buf *out, int type)
{
    char h[VTN_WIRE_HEADER] = {VTN_WIRE_MAGIC, VTN_WIRE_VERSION, (char)type, VTN_WIRE_MINOR};
    return vtn_buf_append(out, h, sizeof h);
}

static int put_str(vtn_buf *out, vtn_str s)
{
    char n[4];
    put_u32(n, s.n);
    int rc = vtn_buf_append(out, n, 4);
    return rc < 0 ? rc : vtn_buf_append(out, s.p, s.n);
}

static int put_fixed(vtn_buf *out, uint64_t v, int bytes)
{
    char b[8];
    put_u64(b, v);
    return vtn_buf_append(out, b, (size_t)bytes);
}

/* Takes the next tag-length-value off an extension area: 1 with tag and
 * value set, 0 at its end, -EPROTO when it is truncated or has tag 0. */
static int tlv_next(const unsigned char **p, size_t *n, uint16_t *tag, vtn_str *value)
{
    if (*n == 0)
        return 0;
    if (*n < 6)
        return -EPROTO;
    const unsigned char *q = *p;
    uint32_t len =
        (uint32_t)q[2] | (uint32_t)q[3] << 8 | (uint32_t)q[4] << 16 | (uint32_t)q[5] << 24;
    *tag = (uint16_t)(q[0] | q[1] << 8);
    if (*tag == 0 || len > *n - 6)
        return -EPROTO;
    value->p = (const char *)q + 6;
    value->n = len;
    *p += 6 + (size_t)len;
    *n -= 6 + (size_t)len;
    return 1;
}

/* Every tag-length-value must fit, and no critical one may be unknown:
 * VTN_WIRE_EXT_PUSH_VEN is the only critical tag defined. 0 or -EPROTO. */
static int ext_check(const unsigned char *p, size_t n)
{
    uint16_t tag;
    vtn_str v;
    int rc;
    while ((rc = tlv_next(&p, &n, &tag, &v)) == 1)
        if ((tag & VTN_WIRE_EXT_CRITICAL) && tag != VTN_WIRE_EXT_PUSH_VEN)
            return -EPROTO;
    return rc;
}

static int put_ext(vtn_buf *out, vtn_str ext)
{
    if (ext.n == 0)
        return 0;
    if (ext_check((const unsigned char *)ext.p, ext.n) < 0)
        return -EINVAL;
    return vtn_buf_append(out, ext.p, ext.n);
}

int vtn_wire_type_of(const void *frame, size_t n)
{
    const unsigned char *p = frame;
    if (n < VTN_WIRE_HEADER || p[0] != VTN_WIRE_MAGIC || p[1] != VTN_WIRE_VERSION || p[2] == 0)
        return -EPROTO;
    return p[2];
}

int vtn_wire_minor_of(const void *frame, size_t n)
{
    return vtn_wire_type_of(frame, n) < 0 ? -EPROTO : ((const unsigned char *)frame)[3];
}

int vtn_wire_ext_put(vtn_buf *out, uint16_t tag, vtn_str value)
{
    if (tag == 0)
        return -EINVAL;
    char h[6] = {(char)tag, (char)(tag >> 8)};
    put_u32(h + 2, value.n);
    int rc = vtn_buf_reserve(out, sizeof h + value.n);
    if (rc == 0)
        rc = vtn_buf_append(out, h, sizeof h);
    return rc == 0 ? vtn_buf_append(out, value.p, value.n) : rc;
}

int vtn_wire_ext_get(vtn_str ext, uint16_t tag, vtn_str *value)
{
    const unsigned char *p = (const unsigned char *)ext.p;
    size_t n = ext.n;
    uint16_t t;
    vtn_str v;
    while (tlv_next(&p, &n, &t, &v) == 1)
        if (t == tag) {
            *value = v;
            return 0;
        }
    return -ENOENT;
}

int vtn_wire_encode_request(vtn_buf *out, const vtn_request *r)
{
    size_t start = out->len;
    /* One reservation for the whole frame keeps the encoder to a single realloc at most. */
    size_t total = VTN_WIRE_HEADER + 8 + 2 + 8 + 7 * 4 + r->fingerprint.n + r->remote.n +
                   r->method.n + r->path.n + r->content_type.n + r->authorization.n + r->body.n +
                   r->ext.n;
    int rc = vtn_buf_reserve(out, total);
    if (rc == 0)
        rc = put_header(out, VTN_WIRE_REQUEST);
    if (rc == 0)
        rc = put_fixed(out, r->id, 8);
    if (rc == 0)
        rc = put_fixed(out, r->kind, 1);
    if (rc == 0)
        rc = put_fixed(out, r->attempt, 1);
    if (rc == 0)
        rc = put_fixed(out, (uint64_t)r->deadline_ms, 8);
    const vtn_str *fields[] = {&r->fingerprint,  &r->remote,        &r->method, &r->path,
                               &r->content_type, &r->authorization, &r->body};
    for (size_t i = 0; rc == 0 && i < sizeof fields / sizeof fields[0]; i++)
        rc = put_str(out, *fields[i]);
    if (rc == 0)
        rc = put_ext(out, r->ext);
    if (rc < 0)
        out->len = start;
    return rc;
}

int vtn_wire_encode_reply(vtn_buf *out, const vtn_reply *r)
{
    size_t start = out->len;
    int rc = vtn_buf_reserve(out, VTN_WIRE_HEADER + 8 + 2 + 3 * 4 + r->content_type.n +
                                      r->headers.n + r->body.n + r->ext.n);
    if (rc == 0)
        rc = put_header(out, VTN_WIRE_REPLY);
    if (rc == 0)
        rc = put_fixed(out, r->id, 8);
    if (rc == 0)
        rc = put_fixed(out, r->status, 2);
    if (rc == 0)
        rc = put_str(out, r->content_type);
    if (rc == 0)
        rc = put_str(out, r->headers);
    if (rc == 0)
        rc = put_str(out, r->body);
    if (rc == 0)
        rc = put_ext(out, r->ext);
    if (rc < 0)
        out->len = start;
    return rc;
}

int vtn_wire_encode_ready(vtn_buf *out, const vtn_ready *r)
{
    size_t start = out->len;
    int rc = put_header(out, VTN_WIRE_READY);
    if (rc == 0)
        rc = put_fixed(out, r->credits, 4);
    if (rc == 0)
        rc = put_str(out, r->name);
    if (rc < 0)
        out->len = start;
    return rc;
}

int vtn_wire_encode_empty(vtn_buf *out, int type)
{
    if (type != VTN_WIRE_HEARTBEAT && type != VTN_WIRE_DISCONNECT)
        return -EINVAL;
    return put_header(out, type);
}

/* Bounds-checked reader over one frame. */
typedef struct {
    const unsigned char *p;
    size_t left;
    int bad;
} reader;

static uint64_t rd_fixed(reader *r, int bytes)
{
    if (r->bad || r->left < (size_t)bytes) {
        r->bad = 1;
        return 0;
    }
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++)
        v |= (uint64_t)r->p[i] << (8 * i);
    r->p += bytes;
    r->left -= (size_t)bytes;
    return v;
}

static vtn_str rd_str(reader *r)
{
    vtn_str s = {"", 0};
    uint32_t n = (uint32_t)rd_fixed(r, 4);
    if (r->bad || r->left < n) {
        r->bad = 1;
        return s;
    }
    s.p = (const char *)r->p;
    s.n = n;
    r->p += n;
    r->left -= n;
    return s;
}

static int rd_open(reader *r, const void *frame, size_t n, int type)
{
    if (vtn_wire_type_of(frame, n) != type)
        return -EPROTO;
    r->p = (const unsigned char *)frame + VTN_WIRE_HEADER;
    r->left = n - VTN_WIRE_HEADER;
    r->bad = 0;
    return 0;
}

/* What follows the fixed fields is the extension area: fields of a newer
 * minor that this reader skips unless it knows them. */
static int rd_close(const reader *r, vtn_str *ext)
{
    if (r->bad || ext_check(r->p, r->left) < 0)
        return -EPROTO;
    ext->p = (const char *)r->p;
    ext->n = (uint32_t)r->left;
    return 0;
}

int vtn_wire_decode_request(const void *frame, size_t n, vtn_request *out)
{
    reader r;
    if (rd_open(&r, frame, n, VTN_WIRE_REQUEST) < 0)
        return -EPROTO;
    out->id = rd_fixed(&r, 8);
    out->kind = (uint8_t)rd_fixed(&r, 1);
    out->attempt = (uint8_t)rd_fixed(&r, 1);
    out->deadline_ms = (int64_t)rd_fixed(&r, 8);
    out->fingerprint = rd_str(&r);
    out->remote = rd_str(&r);
    out->method = rd_str(&r);
    out->path = rd_str(&r);
    out->content_type = rd_str(&r);
    out->authorization = rd_str(&r);
    out->body = rd_str(&r);
    if (out->kind < VTN_KIND_OADR || out->kind > VTN_KIND_PUSH_REPLY)
        return -EPROTO;
    return rd_close(&r, &out->ext);
}

int vtn_wire_decode_reply(const void *frame, size_t n, vtn_reply *out)
{
    reader r;
    if (rd_open(&r, frame, n, VTN_WIRE_REPLY) < 0)
        return -EPROTO;
    out->id = rd_fixed(&r, 8);
    out->status = (uint16_t)rd_fixed(&r, 2);
    out->content_type = rd_str(&r);
    out->headers = rd_str(&r);
    out->body = rd_str(&r);
    if (out->status < 100 || out->status > 599)
        return -EPROTO;
    return rd_close(&r, &out->ext);
}

int vtn_wire_decode_ready(const void *frame, size_t n, vtn_ready *out)
{
    reader r;
    if (rd_open(&r, frame, n, VTN_WIRE_READY) < 0)
        return -EPROTO;
    out->credits = (uint32_t)rd_fixed(&r, 4);
    out->name = rd_str(&r);
    if (out->credits == 0)
        return -EPROTO;
    vtn_str skipped;
    return rd_close(&r, &skipped);
}
