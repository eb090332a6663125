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
    b.data[1] = VTN_WIRE_VERSION + 1; /* a future version is not guessed at */
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

    /* Trailing garbage. */
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(request_round_trip),
        cmocka_unit_test(reply_and_ready_round_trip),
        cmocka_unit_test(truncated_frames_are_refused),
        cmocka_unit_test(corrupt_frames_are_refused),
        cmocka_unit_test(ready_with_no_credit_is_refused),
        cmocka_unit_test(encoder_respects_cap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
