/* Unit tests for the push VENs' endpoint (bn_pushsrv.c): a TLS client (the
 * bench's own, bn_tls.c, playing the VTN's push client) over a real loopback
 * socket, with a PKI made at test time. The endpoint answers a pushed
 * oadrDistributeEvent with oadrCreatedEvent and an oadrRegisterReport with
 * oadrRegisteredReport, learns the venID, answers bad requests 400 or 413,
 * and refuses a client without a certificate. */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cmocka.h>
#include <jansson.h>
#include <openssl/ssl.h>

#include "vtn/pki.h"

#include "bn_internal.h"
#include "bn_pushsrv.h"

static char dir[128];

static void file(char *out, size_t len, const char *name)
{
    snprintf(out, len, "%s/%s", dir, name);
}

/* One CA; the endpoint's server certificate (IP 127.0.0.1) and the VTN's
 * client certificate from it. */
static int setup(void **state)
{
    (void)state;
    char err[256], f[300];
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/bn-push-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (mkdtemp(dir) == NULL)
        return -1;
    EVP_PKEY *ck = vtn_pki_keygen(VTN_KEY_EC);
    vtn_cert_spec sp = {.cn = "push test CA", .key = ck, .is_ca = 1, .days = 2};
    X509 *ca = vtn_pki_issue(&sp, NULL, ck, err, sizeof err);
    const char *names[2] = {"server", "vtn"};
    int rc = ca == NULL;
    file(f, sizeof f, "ca.pem");
    rc |= ca ? vtn_pki_write_cert(f, ca, 0) : -1;
    for (int i = 0; i < 2 && !rc; i++) {
        EVP_PKEY *k = vtn_pki_keygen(VTN_KEY_EC);
        vtn_cert_spec s = {.cn = names[i], .key = k, .days = 2, .san = i ? NULL : "IP:127.0.0.1"};
        X509 *x = vtn_pki_issue(&s, ca, ck, err, sizeof err);
        char name[32];
        snprintf(name, sizeof name, "%s.pem", names[i]);
        file(f, sizeof f, name);
        rc |= x ? vtn_pki_write_cert(f, x, 0) : -1;
        snprintf(name, sizeof name, "%s.key", names[i]);
        file(f, sizeof f, name);
        rc |= vtn_pki_write_key(f, k, 0);
        X509_free(x);
        EVP_PKEY_free(k);
    }
    X509_free(ca);
    EVP_PKEY_free(ck);
    return rc ? -1 : 0;
}

static int teardown(void **state)
{
    (void)state;
    const char *names[] = {"ca.pem", "server.pem", "server.key", "vtn.pem", "vtn.key"};
    char f[300];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        file(f, sizeof f, names[i]);
        unlink(f);
    }
    rmdir(dir);
    return 0;
}

static bn_pushsrv *start(void)
{
    static char cert[300], key[300], ca[300];
    char err[256] = "";
    file(cert, sizeof cert, "server.pem");
    file(key, sizeof key, "server.key");
    file(ca, sizeof ca, "ca.pem");
    bn_push_opts o = {cert, key, ca, 4, 16, 1.0, 0, 0};
    bn_pushsrv *s = NULL;
    assert_int_equal(bn_pushsrv_start(&o, &s, err, sizeof err), 0);
    return s;
}

static int port_of(const bn_pushsrv *s)
{
    const char *p = strrchr(bn_pushsrv_url(s), ':');
    return atoi(p + 1);
}

/* Sends one request as the VTN (with its certificate, or none) and reads the
 * response until the connection ends or one whole response (by
 * Content-Length) is in. Returns the bytes read, or -1 when the handshake
 * failed. */
static int exchange(const bn_pushsrv *s, int with_cert, const char *req, size_t n, char *out,
                    size_t cap)
{
    char cert[300], key[300], ca[300], err[256];
    file(cert, sizeof cert, "vtn.pem");
    file(key, sizeof key, "vtn.key");
    file(ca, sizeof ca, "ca.pem");
    bn_tls_opts o = {.cert = with_cert ? cert : NULL,
                     .key = with_cert ? key : NULL,
                     .ca = ca,
                     .ciphers = BN_TLS_DEFAULT_CIPHERS,
                     .groups = "",
                     .verify_ip = "127.0.0.1"};
    bn_tls_ctx *ctx = NULL;
    bn_tls *t = NULL;
    bn_tls_session *sess = NULL;
    int crc = bn_tls_ctx_new(&o, 1, &ctx, err, sizeof err);
    if (crc != 0)
        fprintf(stderr, "bn_tls_ctx_new: %s\n", err);
    assert_int_equal(crc, 0);
    assert_int_equal(bn_tls_new(ctx, 0, &sess, &t), 0);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port_of(s))};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    size_t got = 0;
    int sent = 0, done = 0, hs = 0;
    char buf[65536];
    for (int rounds = 0; rounds < 400 && !done; rounds++) { /* at most 400 x 50 ms */
        if (!hs) {
            hs = bn_tls_handshake(t);
            if (hs < 0)
                break;
        }
        if (hs == 1 && !sent) {
            assert_int_equal(bn_tls_write(t, req, n), 0);
            sent = 1;
        }
        const char *w;
        size_t wn = bn_tls_wire(t, &w);
        if (wn) {
            for (size_t off = 0; off < wn;) {
                ssize_t k = write(fd, w + off, wn - off);
                if (k <= 0)
                    break;
                off += (size_t)k;
            }
            bn_tls_wire_clear(t);
        }
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 50) <= 0)
            continue;
        ssize_t r = read(fd, buf, sizeof buf);
        if (r <= 0)
            break;
        bn_tls_feed(t, buf, (size_t)r);
        int k;
        while (hs == 1 && got < cap - 1 && (k = bn_tls_read(t, out + got, cap - 1 - got)) > 0)
            got += (size_t)k;
        out[got] = '\0';
        const char *cl = strstr(out, "Content-Length: ");
        const char *body = strstr(out, "\r\n\r\n");
        if (cl && body && got >= (size_t)(body + 4 - out) + strtoul(cl + 16, NULL, 10))
            done = 1;
    }
    close(fd);
    bn_tls_free(&t);
    bn_tls_session_free(&sess);
    bn_tls_ctx_free(&ctx);
    return hs == 1 ? (int)got : -1;
}

static int post(const bn_pushsrv *s, const char *path, const char *body, char *out, size_t cap)
{
    vtn_buf req;
    vtn_buf_init(&req, 4u << 20);
    assert_int_equal(vtn_buf_printf(&req,
                                    "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                                    "application/xml\r\nContent-Length: %zu\r\n\r\n",
                                    path, strlen(body)),
                     0);
    assert_int_equal(vtn_buf_appends(&req, body), 0);
    int n = exchange(s, 1, req.data, req.len, out, cap);
    vtn_buf_free(&req);
    return n;
}

#define NS "xmlns:oadr=\"http://openadr.org/oadr-2.0b/2012/07\" "
static const char REGISTER_REPORT[] =
    "<oadr:oadrPayload " NS "><oadr:oadrSignedObject><oadr:oadrRegisterReport>"
    "<pyld:requestID>rr-1</pyld:requestID><ei:venID>ven-abc</ei:venID>"
    "</oadr:oadrRegisterReport></oadr:oadrSignedObject></oadr:oadrPayload>";
static const char DISTRIBUTE[] =
    "<oadr:oadrPayload " NS "><oadr:oadrSignedObject><oadr:oadrDistributeEvent>"
    "<pyld:requestID>d-1</pyld:requestID><ei:vtnID>vtn</ei:vtnID><oadr:oadrEvent><ei:eiEvent>"
    "<ei:eventDescriptor><ei:eventID>evt-7</ei:eventID><ei:modificationNumber>2"
    "</ei:modificationNumber></ei:eventDescriptor></ei:eiEvent>"
    "<oadr:oadrResponseRequired>always</oadr:oadrResponseRequired></oadr:oadrEvent>"
    "</oadr:oadrDistributeEvent></oadr:oadrSignedObject></oadr:oadrPayload>";

static void answers_pushes_as_a_ven(void **state)
{
    (void)state;
    static char out[1 << 16];
    bn_pushsrv *s = start();
    assert_string_equal(strstr(bn_pushsrv_url(s), "/ven/"), "/ven/%u");
    assert_true(post(s, "/ven/2/EiReport", REGISTER_REPORT, out, sizeof out) > 0);
    assert_non_null(strstr(out, "HTTP/1.1 200 OK\r\n"));
    assert_non_null(strstr(out, "oadrRegisteredReport"));
    assert_non_null(strstr(out, "<pyld:requestID>rr-1</pyld:requestID>"));
    bn_pushsrv_watch(s, 1);
    assert_true(post(s, "/ven/2/EiEvent", DISTRIBUTE, out, sizeof out) > 0);
    assert_non_null(strstr(out, "HTTP/1.1 200 OK\r\n"));
    assert_non_null(strstr(out, "oadrCreatedEvent"));
    assert_non_null(strstr(out, "<ei:eventID>evt-7</ei:eventID><ei:modificationNumber>2<"));
    assert_non_null(strstr(out, "<ei:venID>ven-abc</ei:venID>")); /* learnt from the first */
    assert_non_null(strstr(out, "<ei:optType>optIn<"));           /* opt-in share 1 */
    bn_push_stats st;
    bn_pushsrv_stats(s, &st);
    assert_int_equal(st.pushes, 2);
    assert_int_equal(st.register_report, 1);
    assert_int_equal(st.distribute, 1);
    assert_int_equal(st.created_event, 1);
    assert_int_equal(st.known, 1);
    assert_int_equal(st.received, 1);
    assert_int_equal(st.answered, 1);
    assert_int_equal(st.err_request + st.err_tls + st.err_too_large, 0);
    json_t *ids = json_array();
    assert_int_equal(bn_pushsrv_ven_ids(s, ids), 1);
    assert_string_equal(json_string_value(json_array_get(ids, 0)), "ven-abc");
    json_decref(ids);
    bn_pushsrv_stop(&s);
    assert_null(s);
}

static void bad_requests_get_4xx(void **state)
{
    (void)state;
    static char out[1 << 16];
    bn_pushsrv *s = start();
    /* no such VEN (4 push VENs: 0..3), and a body that is no OpenADR payload */
    assert_true(post(s, "/ven/4/EiEvent", DISTRIBUTE, out, sizeof out) > 0);
    assert_non_null(strstr(out, "HTTP/1.1 400 Bad Request\r\n"));
    assert_true(post(s, "/ven/1/EiEvent", "not xml", out, sizeof out) > 0);
    assert_non_null(strstr(out, "HTTP/1.1 400 Bad Request\r\n"));
    /* over the 1 MiB cap */
    char *big = malloc((1u << 20) + 2);
    memset(big, 'x', (1u << 20) + 1);
    big[(1u << 20) + 1] = '\0';
    assert_true(post(s, "/ven/1/EiEvent", big, out, sizeof out) > 0);
    free(big);
    assert_non_null(strstr(out, "HTTP/1.1 413 Payload Too Large\r\n"));
    /* the VTN must present its certificate */
    const char req[] = "POST /ven/0/EiEvent HTTP/1.1\r\nContent-Length: 0\r\n\r\n";
    exchange(s, 0, req, sizeof req - 1, out, sizeof out);
    bn_push_stats st;
    bn_pushsrv_stats(s, &st);
    assert_int_equal(st.err_request, 2);
    assert_int_equal(st.err_too_large, 1);
    assert_int_equal(st.err_tls, 1);
    assert_int_equal(st.pushes, 0);
    bn_pushsrv_stop(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(answers_pushes_as_a_ven),
        cmocka_unit_test(bad_requests_get_4xx),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
