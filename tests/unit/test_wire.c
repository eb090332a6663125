/* The gateway <-> worker envelope: round trips, and every malformed frame a
 * peer could send is refused instead of read past its end. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "vtn/wire.h"

static vtn_request sample_request(void)
{
    vtn_request r = {0};
    r.id = 0x1122334455667788ull;
    r.kind = VTN_KIND_OADR;
    r.attempt = 1;
    r.deadline_ms = 1798000000123;
    r.fingerprint = vtn_str_c("09:71:9E:0E:51:C0:8F:05:56:C9");
    r.remote = vtn_str_c("127.0.0.1:50000");
    r.method = vtn_str_c("POST");
    r.path = vtn_str_c("/OpenADR2/Simple/2.0b/OadrPoll");
    r.content_type = vtn_str_c("application/xml");
    r.authorization = vtn_str_c("");
    r.body = vtn_str_c("<oadrPayload/>");
    return r;
}

static int str_is(vtn_str s, const char *want)
{
    return s.n == strlen(want) && memcmp(s.p, want, s.n) == 0;
}

static void request_round_trip(void **state)
{
    (void)state;
    vtn_buf b;
    vtn_buf_init(&b, 1 << 20);
    vtn_request in = sample_request();
    assert_int_equal(vtn_wire_encode_request(&b, &in), 0);
    assert_int_equal(vtn_wire_type_of(b.data, b.len), VTN_WIRE_REQUEST);
    vtn_request out;
    assert_int_equal(vtn_wire_decode_request(b.data, b.len, &out), 0);
    assert_true(out.id == in.id);
    assert_int_equal(out.kind, VTN_KIND_OADR);
    assert_int_equal(out.attempt, 1);
    assert_true(out.deadline_ms == in.deadline_ms);
    assert_true(str_is(out.fingerprint, "09:71:9E:0E:51:C0:8F:05:56:C9"));
    assert_true(str_is(out.remote, "127.0.0.1:50000"));
    assert_true(str_is(out.method, "POST"));
    assert_true(str_is(out.path, "/OpenADR2/Simple/2.0b/OadrPoll"));
    assert_true(str_is(out.content_type, "application/xml"));
    assert_int_equal(out.authorization.n, 0);
    assert_true(str_is(out.body, "<oadrPayload/>"));
    vtn_buf_free(&b);
}

static void reply_and_ready_round_trip(void **state)
{
    (void)state;
    vtn_buf b;
    vtn_buf_init(&b, 1 << 20);
    vtn_reply rp = {.id = 42, .status = 503};
    rp.content_type = vtn_str_c("text/plain");
    rp.headers = vtn_str_c("Retry-After: 1\r\n");
    rp.body = vtn_str_c("busy");
    assert_int_equal(vtn_wire_encode_reply(&b, &rp), 0);
    vtn_reply got;
    assert_int_equal(vtn_wire_decode_reply(b.data, b.len, &got), 0);
    assert_true(got.id == 42);
    assert_int_equal(got.status, 503);
    assert_true(str_is(got.headers, "Retry-After: 1\r\n"));
    assert_true(str_is(got.body, "busy"));

    vtn_buf_reset(&b);
    vtn_ready rd = {.credits = 64, .name = vtn_str_c("host:123")};
    assert_int_equal(vtn_wire_encode_ready(&b, &rd), 0);
    vtn_ready rg;
    assert_int_equal(vtn_wire_decode_ready(b.data, b.len, &rg), 0);
    assert_int_equal(rg.credits, 64);
    assert_true(str_is(rg.name, "host:123"));

    vtn_buf_reset(&b);
    assert_int_equal(vtn_wire_encode_empty(&b, VTN_WIRE_HEARTBEAT), 0);
    assert_int_equal(vtn_wire_type_of(b.data, b.len), VTN_WIRE_HEARTBEAT);
    assert_int_equal(vtn_wire_encode_empty(&b, VTN_WIRE_REQUEST), -EINVAL);
    vtn_buf_free(&b);
}

/* Every prefix of a valid frame is a truncated frame: none may decode. */
static void truncated_frames_are_refused(void **state)
{
    (void)state;
    vtn_buf b;
    vtn_buf_init(&b, 1 << 20);
    vtn_request in = sample_request();
    assert_int_equal(vtn_wire_encode_request(&b, &in), 0);
    vtn_request out;
    for (size_t n = 0; n < b.len; n++)
        assert_int_equal(vtn_wire_decode_request(b.data, n, &out), -EPROTO);
    vtn_buf_free(&b);
}

static void corrupt_frames_are_refused(void **state)
{
    (void)state;
    vtn_buf b;
    vtn_buf_init(&b, 1 << 20);
    vtn_request in = sample_request();
    assert_int_equal(vtn_wire_encode_request(&b, &in), 0);
    vtn_request out;

    b.data[0] = 'X'; /* magic */
    assert_int_equal(vtn_wire_decode_request(b.data, b.len, &out), -EPROTO);
    b.data[0] = VTN_WIRE_MAGIC;
    b.data[1] = VTN_WIRE_VERSION + 1; /* a future major version is not guessed at */
    assert_int_equal(vtn_wire_decode_request(b.data, b.len, &out), -EPROTO);
    b.data[1] = VTN_WIRE_VERSION;
    b.data[2] = VTN_WIRE_REPLY; /* decoding as the wrong type */
    assert_int_equal(vtn_wire_decode_request(b.data, b.len, &out), -EPROTO);
    b.data[2] = VTN_WIRE_REQUEST;

    /* A string length that points past the end. */
    size_t fp_len_at = VTN_WIRE_HEADER + 8 + 1 + 1 + 8;
    unsigned char saved = (unsigned char)b.data[fp_len_at + 3];
    b.data[fp_len_at + 3] = (char)0x7f;
    assert_int_equal(vtn_wire_decode_request(b.data, b.len, &out), -EPROTO);
    b.data[fp_len_at + 3] = (char)saved;

    /* Trailing garbage: too short to be a tag-length-value. */
    assert_int_equal(vtn_buf_append(&b, "zz", 2), 0);
    assert_int_equal(vtn_wire_decode_request(b.data, b.len, &out), -EPROTO);
    b.len -= 2;

    /* An unknown request kind. */
    b.data[VTN_WIRE_HEADER + 8] = 9;
    assert_int_equal(vtn_wire_decode_request(b.data, b.len, &out), -EPROTO);
    b.data[VTN_WIRE_HEADER + 8] = VTN_KIND_OADR;
    assert_int_equal(vtn_wire_decode_request(b.data, b.len, &out), 0);
    vtn_buf_free(&b);
}

static void ready_with_no_credit_is_refused(void **state)
{
    (void)state;
    vtn_buf b;
    vtn_buf_init(&b, 4096);
    vtn_ready rd = {.credits = 0, .name = vtn_str_c("w")};
    assert_int_equal(vtn_wire_encode_ready(&b, &rd), 0);
    vtn_ready out;
    assert_int_equal(vtn_wire_decode_ready(b.data, b.len, &out), -EPROTO);
    vtn_buf_free(&b);
}

/* A frame that would pass the buffer cap fails cleanly and leaves the buffer as it was. */
static void encoder_respects_cap(void **state)
{
    (void)state;
    vtn_buf b;
    vtn_buf_init(&b, 64);
    vtn_request in = sample_request();
    assert_int_equal(vtn_wire_encode_request(&b, &in), -ENOBUFS);
    assert_int_equal(b.len, 0);
    vtn_buf_free(&b);
}

/* ---- upgrade safety ------------------------------------------------------- */

static void put_le(vtn_buf *b, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++) {
        char c = (char)(v >> (8 * i));
        assert_int_equal(vtn_buf_append(b, &c, 1), 0);
    }
}

static void put_s(vtn_buf *b, const char *s)
{
    put_le(b, strlen(s), 4);
    assert_int_equal(vtn_buf_appends(b, s), 0);
}

/* A REQUEST laid out by hand as the first release wrote it (minor byte 0,
 * nothing after the body): what an old gateway sends. */
static void old_request_frame(vtn_buf *b, const vtn_request *r)
{
    const char h[4] = {'V', 1, 3, 0};
    assert_int_equal(vtn_buf_append(b, h, 4), 0);
    put_le(b, r->id, 8);
    put_le(b, r->kind, 1);
    put_le(b, r->attempt, 1);
    put_le(b, (uint64_t)r->deadline_ms, 8);
    put_s(b, "09:71:9E:0E:51:C0:8F:05:56:C9");
    put_s(b, "127.0.0.1:50000");
    put_s(b, "POST");
    put_s(b, "/OpenADR2/Simple/2.0b/OadrPoll");
    put_s(b, "application/xml");
    put_s(b, "");
    put_s(b, "<oadrPayload/>");
}

static void assert_sample_request(const vtn_request *out)
{
    vtn_request in = sample_request();
    assert_true(out->id == in.id);
    assert_int_equal(out->kind, in.kind);
    assert_int_equal(out->attempt, in.attempt);
    assert_true(out->deadline_ms == in.deadline_ms);
    assert_true(str_is(out->remote, "127.0.0.1:50000"));
    assert_true(str_is(out->path, "/OpenADR2/Simple/2.0b/OadrPoll"));
    assert_true(str_is(out->body, "<oadrPayload/>"));
}

/* An old peer's frame reads here, and this build's frame without extensions
 * is the same bytes, which the old peer's strict reader accepts. */
static void first_release_frames_read_both_ways(void **state)
{
    (void)state;
    vtn_buf old, now;
    vtn_buf_init(&old, 1 << 20);
    vtn_buf_init(&now, 1 << 20);
    vtn_request in = sample_request();
    old_request_frame(&old, &in);
    vtn_request out;
    assert_int_equal(vtn_wire_decode_request(old.data, old.len, &out), 0);
    assert_sample_request(&out);
    assert_int_equal(out.ext.n, 0);
    assert_int_equal(vtn_wire_minor_of(old.data, old.len), 0);

    assert_int_equal(vtn_wire_encode_request(&now, &in), 0);
    assert_int_equal(now.len, old.len);
    assert_memory_equal(now.data, old.data, old.len);
    vtn_buf_free(&old);
    vtn_buf_free(&now);
}

/* A frame from a newer minor: the header says so, and a field this reader
 * does not know follows the fixed ones. The reader takes what it knows. */
static void newer_minor_with_unknown_field_is_read(void **state)
{
    (void)state;
    vtn_buf b;
    vtn_buf_init(&b, 1 << 20);
    vtn_request in = sample_request();
    assert_int_equal(vtn_wire_encode_request(&b, &in), 0);
    b.data[3] = VTN_WIRE_MINOR + 1;
    assert_int_equal(vtn_wire_ext_put(&b, 0x0123, vtn_str_c("a field from the future")), 0);
    assert_int_equal(vtn_wire_ext_put(&b, 0x0124, vtn_str_c("")), 0);
    assert_int_equal(vtn_wire_type_of(b.data, b.len), VTN_WIRE_REQUEST);
    assert_int_equal(vtn_wire_minor_of(b.data, b.len), VTN_WIRE_MINOR + 1);
    vtn_request out;
    assert_int_equal(vtn_wire_decode_request(b.data, b.len, &out), 0);
    assert_sample_request(&out);
    vtn_str v;
    assert_int_equal(vtn_wire_ext_get(out.ext, 0x0123, &v), 0);
    assert_true(str_is(v, "a field from the future"));
    assert_int_equal(vtn_wire_ext_get(out.ext, 0x0124, &v), 0);
    assert_int_equal(v.n, 0);
    assert_int_equal(vtn_wire_ext_get(out.ext, 0x0125, &v), -ENOENT);

    /* The same for the worker's frames: a REPLY and a READY of a newer minor. */
    vtn_buf_reset(&b);
    vtn_reply rp = {.id = 7, .status = 200, .body = vtn_str_c("<ok/>")};
    assert_int_equal(vtn_wire_encode_reply(&b, &rp), 0);
    b.data[3] = VTN_WIRE_MINOR + 1;
    assert_int_equal(vtn_wire_ext_put(&b, 0x0200, vtn_str_c("x")), 0);
    vtn_reply got;
    assert_int_equal(vtn_wire_decode_reply(b.data, b.len, &got), 0);
    assert_true(got.id == 7);
    assert_int_equal(got.status, 200);
    assert_true(str_is(got.body, "<ok/>"));

    vtn_buf_reset(&b);
    vtn_ready rd = {.credits = 8, .name = vtn_str_c("w1")};
    assert_int_equal(vtn_wire_encode_ready(&b, &rd), 0);
    b.data[3] = VTN_WIRE_MINOR + 1;
    assert_int_equal(vtn_wire_ext_put(&b, 0x0300, vtn_str_c("push")), 0);
    vtn_ready rg;
    assert_int_equal(vtn_wire_decode_ready(b.data, b.len, &rg), 0);
    assert_int_equal(rg.credits, 8);
    assert_true(str_is(rg.name, "w1"));
    assert_int_equal(vtn_wire_minor_of(b.data, b.len), VTN_WIRE_MINOR + 1);
    vtn_buf_free(&b);
}

/* Extensions given to an encoder come back from the decoder; a frame type
 * this build does not handle is reported, not refused, so the caller can
 * ignore it. */
static void extensions_round_trip_and_new_types_pass(void **state)
{
    (void)state;
    vtn_buf ext, b;
    vtn_buf_init(&ext, 4096);
    vtn_buf_init(&b, 1 << 20);
    assert_int_equal(vtn_wire_ext_put(&ext, 0x0042, vtn_str_c("value")), 0);
    vtn_request in = sample_request();
    in.ext.p = ext.data;
    in.ext.n = (uint32_t)ext.len;
    assert_int_equal(vtn_wire_encode_request(&b, &in), 0);
    vtn_request out;
    assert_int_equal(vtn_wire_decode_request(b.data, b.len, &out), 0);
    vtn_str v;
    assert_int_equal(vtn_wire_ext_get(out.ext, 0x0042, &v), 0);
    assert_true(str_is(v, "value"));

    vtn_buf_reset(&b);
    assert_int_equal(vtn_wire_encode_empty(&b, VTN_WIRE_HEARTBEAT), 0);
    b.data[2] = VTN_WIRE_PUSH;
    assert_int_equal(vtn_wire_type_of(b.data, b.len), VTN_WIRE_PUSH);
    b.data[2] = 0;
    assert_int_equal(vtn_wire_type_of(b.data, b.len), -EPROTO);
    assert_int_equal(vtn_wire_minor_of(b.data, b.len), -EPROTO);
    vtn_buf_free(&ext);
    vtn_buf_free(&b);
}

/* What a reader cannot skip safely is refused: a field that says "refuse me
 * unless you know me", a truncated field, tag 0; an encoder refuses to write
 * such an extension area. */
static void malformed_or_critical_extensions_are_refused(void **state)
{
    (void)state;
    vtn_buf b;
    vtn_buf_init(&b, 1 << 20);
    vtn_request in = sample_request();
    vtn_request out;
    assert_int_equal(vtn_wire_encode_request(&b, &in), 0);
    size_t fixed = b.len;

    assert_int_equal(vtn_wire_ext_put(&b, VTN_WIRE_EXT_CRITICAL | 1, vtn_str_c("x")), 0);
    assert_int_equal(vtn_wire_decode_request(b.data, b.len, &out), -EPROTO);

    b.len = fixed;
    assert_int_equal(vtn_wire_ext_put(&b, 5, vtn_str_c("abc")), 0);
    for (size_t n = fixed + 1; n < b.len; n++)
        assert_int_equal(vtn_wire_decode_request(b.data, n, &out), -EPROTO);
    assert_int_equal(vtn_wire_decode_request(b.data, b.len, &out), 0);

    b.len = fixed;
    const char tag0[6] = {0, 0, 0, 0, 0, 0};
    assert_int_equal(vtn_buf_append(&b, tag0, sizeof tag0), 0);
    assert_int_equal(vtn_wire_decode_request(b.data, b.len, &out), -EPROTO);
    assert_int_equal(vtn_wire_ext_put(&b, 0, vtn_str_c("x")), -EINVAL);

    vtn_buf c;
    vtn_buf_init(&c, 1 << 20);
    in.ext = vtn_str_c("zz");
    assert_int_equal(vtn_wire_encode_request(&c, &in), -EINVAL);
    assert_int_equal(c.len, 0);
    vtn_buf_free(&c);
    vtn_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(request_round_trip),
        cmocka_unit_test(reply_and_ready_round_trip),
        cmocka_unit_test(truncated_frames_are_refused),
        cmocka_unit_test(corrupt_frames_are_refused),
        cmocka_unit_test(ready_with_no_credit_is_refused),
        cmocka_unit_test(encoder_respects_cap),
        cmocka_unit_test(first_release_frames_read_both_ways),
        cmocka_unit_test(newer_minor_with_unknown_field_is_read),
        cmocka_unit_test(extensions_round_trip_and_new_types_pass),
        cmocka_unit_test(malformed_or_critical_extensions_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
