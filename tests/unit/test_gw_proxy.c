/* Trusted-proxy mode without sockets: the address list (IPs, CIDRs, IPv6,
 * IPv4-mapped peers, bad entries), the identity headers (nginx's URL-encoded
 * certificate, a fingerprint in any accepted form, garbage), their capture
 * by the HTTP layer (any case, split across reads, empty, duplicated, too
 * long, not carried over to the next request), the settings that exclude
 * each other, and the log rate limit. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "gw_internal.h"
#include "vtn/fingerprint.h"

/* tests/data/tls/fingerprint-test.pem; computed independently with
 * `openssl x509 -fingerprint -sha256` (see test_fingerprint.c) */
#define FIXED_FP "30:DA:67:3F:10:C4:E0:53:23:89"

/* ---- addresses --------------------------------------------------------------- */

static int match4(const gw_proxies *p, const char *ip)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(1234)};
    assert_int_equal(inet_pton(AF_INET, ip, &sa.sin_addr), 1);
    return gw_proxies_match(p, (struct sockaddr *)&sa);
}

static int match6(const gw_proxies *p, const char *ip)
{
    struct sockaddr_in6 sa = {.sin6_family = AF_INET6, .sin6_port = htons(1234)};
    assert_int_equal(inet_pton(AF_INET6, ip, &sa.sin6_addr), 1);
    return gw_proxies_match(p, (struct sockaddr *)&sa);
}

static void addresses_and_cidrs(void **state)
{
    (void)state;
    gw_proxies p;
    char err[256];
    assert_int_equal(gw_proxies_parse(" 10.0.0.5, 10.1.0.0/16,::1 , fd00::/8,192.168.7.128/25", &p,
                                      err, sizeof err),
                     0);
    assert_int_equal(p.n, 5);
    assert_true(match4(&p, "10.0.0.5"));
    assert_false(match4(&p, "10.0.0.6"));
    assert_false(match4(&p, "10.0.0.4"));
    assert_true(match4(&p, "10.1.0.0"));
    assert_true(match4(&p, "10.1.255.254"));
    assert_false(match4(&p, "10.2.0.1"));
    assert_false(match4(&p, "10.0.255.255"));
    assert_true(match4(&p, "192.168.7.200"));
    assert_false(match4(&p, "192.168.7.127"));
    assert_true(match6(&p, "::1"));
    assert_false(match6(&p, "::2"));
    assert_true(match6(&p, "fd12:3456::1"));
    assert_false(match6(&p, "fe80::1"));
    /* a dual-stack listener sees IPv4 peers as ::ffff:a.b.c.d */
    assert_true(match6(&p, "::ffff:10.1.2.3"));
    assert_false(match6(&p, "::ffff:10.3.0.1"));
    /* an IPv4 entry does not match an IPv6 peer with the same bytes elsewhere */
    assert_false(match6(&p, "::a00:5"));
    gw_proxies_free(&p);
    assert_null(p.v);

    assert_int_equal(gw_proxies_parse("0.0.0.0/0", &p, err, sizeof err), 0);
    assert_true(match4(&p, "203.0.113.9"));
    assert_false(match6(&p, "2001:db8::1")); /* IPv4 only */
    gw_proxies_free(&p);

    assert_int_equal(gw_proxies_parse("", &p, err, sizeof err), 0);
    assert_int_equal(p.n, 0);
    assert_false(match4(&p, "127.0.0.1")); /* nobody is trusted */
    assert_int_equal(gw_proxies_parse(NULL, &p, err, sizeof err), 0);
    assert_int_equal(p.n, 0);
}

static void bad_entries_are_named(void **state)
{
    (void)state;
    static const char *bad[] = {"10.0.0.1/8", "10.0.0.0/33", "proxy.example.com", "10.0.0.0/",
                                "/8",         "fd00::/129",  "10.0.0.0/8x",       "10.0.0.0/-1",
                                "1.2.3",      "::1/12/3"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        gw_proxies p;
        char err[256] = "", list[128];
        snprintf(list, sizeof list, "127.0.0.1, %s", bad[i]);
        assert_int_equal(gw_proxies_parse(list, &p, err, sizeof err), -EINVAL);
        assert_int_equal(p.n, 0);
        assert_null(p.v);
        assert_non_null(strstr(err, "VTN_TRUSTED_PROXIES"));
        assert_non_null(strstr(err, bad[i]));
    }
    /* host bits: the message says why */
    gw_proxies p;
    char err[256];
    assert_int_equal(gw_proxies_parse("10.0.0.1/8", &p, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "host bits"));
    /* the cap */
    char list[GW_PROXIES_MAX * 12 + 64] = "";
    for (int i = 0; i <= GW_PROXIES_MAX; i++) {
        char one[16];
        snprintf(one, sizeof one, "10.0.%d.%d,", i / 200, i % 200);
        strcat(list, one);
    }
    assert_int_equal(gw_proxies_parse(list, &p, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "more than"));
}

/* ---- identity headers ----------------------------------------------------------- */

static char *read_file(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char *buf = malloc(8192);
    assert_non_null(buf);
    *n = fread(buf, 1, 8191, f);
    buf[*n] = '\0';
    fclose(f);
    return buf;
}

/* As nginx's $ssl_client_escaped_cert: every byte but unreserved ones as %XX. */
static char *escape(const char *s, int keep_plus)
{
    char *out = malloc(strlen(s) * 3 + 1), *o = out;
    assert_non_null(out);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~' || (keep_plus && c == '+'))
            *o++ = (char)c;
        else
            o += sprintf(o, "%%%02X", c);
    }
    *o = '\0';
    return out;
}

static void certificate_header(void **state)
{
    (void)state;
    size_t n;
    char *pem = read_file(VTN_TEST_DATA "/tls/fingerprint-test.pem", &n);
    char fp[VTN_FINGERPRINT_SIZE];

    char *e = escape(pem, 0);
    assert_int_equal(gw_proxy_cert_fingerprint(e, strlen(e), fp), 0);
    assert_string_equal(fp, FIXED_FP);
    free(e);
    /* base64's '+' left as is (a proxy that escapes less) is still '+' */
    e = escape(pem, 1);
    assert_int_equal(gw_proxy_cert_fingerprint(e, strlen(e), fp), 0);
    assert_string_equal(fp, FIXED_FP);
    /* lower-case escapes */
    for (char *p = e; *p; p++)
        if (*p == '%' && p[1] && p[2]) {
            p[1] = (char)(p[1] >= 'A' && p[1] <= 'F' ? p[1] + 32 : p[1]);
            p[2] = (char)(p[2] >= 'A' && p[2] <= 'F' ? p[2] + 32 : p[2]);
        }
    assert_int_equal(gw_proxy_cert_fingerprint(e, strlen(e), fp), 0);
    assert_string_equal(fp, FIXED_FP);

    /* cut in the middle of the base64: no certificate */
    assert_int_equal(gw_proxy_cert_fingerprint(e, strlen(e) / 2, fp), -EINVAL);
    assert_string_equal(fp, "");
    free(e);

    static const char *bad[] = {
        "",
        "hello",
        "%zz",
        "%4",
        "%",
        "-----BEGIN%20CERTIFICATE-----",
        "-----BEGIN%20CERTIFICATE-----%0AAAAA%0A-----END%20CERTIFICATE-----"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(gw_proxy_cert_fingerprint(bad[i], strlen(bad[i]), fp), -EINVAL);
        assert_string_equal(fp, "");
    }
    free(pem);
}

static void fingerprint_header(void **state)
{
    (void)state;
    char fp[VTN_FINGERPRINT_SIZE];
    /* a full SHA-256 fingerprint: the last 10 bytes count */
    static const char full[] =
        "8F:26:10:C0:EC:4C:55:0D:18:F4:48:1B:EF:CF:7E:CE:19:4B:D8:DA:F8:B2:30:DA:67:3F:10:C4:E0:"
        "53:23:89";
    static const char *good[] = {FIXED_FP, "30da673f10c4e0532389", "30 DA 67 3F 10 C4 E0 53 23 89",
                                 full};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        assert_int_equal(gw_proxy_fp_header(good[i], strlen(good[i]), fp), 0);
        assert_string_equal(fp, FIXED_FP);
    }
    static const char *bad[] = {"", "30DA673F10C4E05323", "30DA673F10C4E0532389ZZ",
                                "not a fingerprint"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(gw_proxy_fp_header(bad[i], strlen(bad[i]), fp), -EINVAL);
        assert_string_equal(fp, "");
    }
    char longv[300];
    memset(longv, 'A', sizeof longv);
    assert_int_equal(gw_proxy_fp_header(longv, sizeof longv, fp), -EINVAL);
}

static void header_names(void **state)
{
    (void)state;
    char low[GW_HNAME_MAX];
    size_t n;
    assert_int_equal(gw_header_name_check("X-Client-Cert", low, &n), 0);
    assert_int_equal(n, 13);
    assert_memory_equal(low, "x-client-cert", 13);
    assert_int_equal(gw_header_name_check("X_SSL.cert~1", low, &n), 0);
    char longname[GW_HNAME_MAX + 1];
    memset(longname, 'x', GW_HNAME_MAX);
    longname[GW_HNAME_MAX] = '\0';
    assert_int_equal(gw_header_name_check(longname, low, &n), -EINVAL);
    longname[GW_HNAME_MAX - 1] = '\0'; /* 63: the longest that is matched */
    assert_int_equal(gw_header_name_check(longname, low, &n), 0);
    assert_int_equal(gw_header_name_check("", low, &n), -EINVAL);
    assert_int_equal(gw_header_name_check("X Client", low, &n), -EINVAL);
    assert_int_equal(gw_header_name_check("X-Client:", low, &n), -EINVAL);
}

/* ---- settings --------------------------------------------------------------------- */

static int check_cfg(const char *certs, const char *ca, const char *crl, const char *proxies,
                     const char *hcert, const char *hfp, char *err, size_t errlen)
{
    gw_config c;
    memset(&c, 0, sizeof c);
    c.tls_certs = (char *)certs;
    c.tls_client_ca = (char *)ca;
    c.tls_crl = (char *)crl;
    c.trusted_proxies = (char *)proxies;
    c.proxy_cert_header = (char *)hcert;
    c.proxy_fp_header = (char *)hfp;
    err[0] = '\0';
    return gw__config_check(&c, err, errlen);
}

static void settings_that_exclude_each_other(void **state)
{
    (void)state;
    char err[512];
    /* fine: plain, TLS, proxy */
    assert_int_equal(check_cfg("", "", "", "", "X-Client-Cert", "", err, sizeof err), 0);
    assert_int_equal(
        check_cfg("a.pem:a.key", "ca.pem", "crl.pem", "", "X-Client-Cert", "", err, sizeof err), 0);
    assert_int_equal(
        check_cfg("", "", "", "10.0.0.5", "X-Client-Cert", "X-Client-Fp", err, sizeof err), 0);
    assert_int_equal(check_cfg("", "", "", "10.0.0.5", "", "X-Client-Fp", err, sizeof err), 0);

    struct {
        const char *certs, *ca, *crl, *proxies, *hcert, *hfp, *want;
    } bad[] = {
        {"", "ca.pem", "", "", "X-C", "", "VTN_TLS_CLIENT_CA is set but VTN_TLS_CERTS is empty"},
        {"", "", "crl.pem", "", "X-C", "", "VTN_TLS_CRL is set but VTN_TLS_CERTS is empty"},
        {"a.pem", "", "", "", "X-C", "", "VTN_TLS_CLIENT_CA is required"},
        {"a.pem", "ca.pem", "", "10.0.0.5", "X-C", "", "exclude each other"},
        {"", "", "", "10.0.0.5", "", "", "nothing carries the VEN's identity"},
        {"", "", "", "10.0.0.1/8", "X-C", "", "host bits"},
        {"", "", "", " , ", "X-C", "", "no address"},
        {"", "", "", "", "X Client", "", "VTN_PROXY_CERT_HEADER"},
        {"", "", "", "", "X-C", "Content-Type", "VTN_PROXY_FINGERPRINT_HEADER"},
        {"", "", "", "", "Authorization", "", "interprets itself"},
        {"", "", "", "", "X-Same", "x-same", "name the same header"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(check_cfg(bad[i].certs, bad[i].ca, bad[i].crl, bad[i].proxies,
                                   bad[i].hcert, bad[i].hfp, err, sizeof err),
                         -EINVAL);
        if (!strstr(err, bad[i].want))
            fail_msg("case %zu: \"%s\" not in \"%s\"", i, bad[i].want, err);
    }
}

/* ---- connections per address ------------------------------------------------------ */

static gw_addr key4(const char *ip)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    assert_int_equal(inet_pton(AF_INET, ip, &sa.sin_addr), 1);
    gw_addr a;
    assert_int_equal(gw_addr_key((struct sockaddr *)&sa, &a), 0);
    return a;
}

static gw_addr key6(const char *ip)
{
    struct sockaddr_in6 sa = {.sin6_family = AF_INET6};
    assert_int_equal(inet_pton(AF_INET6, ip, &sa.sin6_addr), 1);
    gw_addr a;
    assert_int_equal(gw_addr_key((struct sockaddr *)&sa, &a), 0);
    return a;
}

static void connections_per_address(void **state)
{
    (void)state;
    gw_peers t;
    assert_int_equal(gw_peers_init(&t, 100, 12345), 0);
    gw_addr a = key4("192.0.2.7"), b = key4("192.0.2.8");
    gw_addr mapped = key6("::ffff:192.0.2.7"), v6 = key6("2001:db8::7");
    for (int i = 0; i < 3; i++)
        assert_int_equal(gw_peers_acquire(&t, &a, 4), 0);
    /* an IPv4-mapped address is the same peer: no second quota */
    assert_int_equal(gw_peers_acquire(&t, &mapped, 4), 0);
    assert_int_equal(gw_peers_acquire(&t, &a, 4), -EMFILE);
    assert_int_equal(gw_peers_acquire(&t, &mapped, 4), -EMFILE);
    assert_int_equal(gw_peers_count(&t, &a), 4);
    /* others are not affected */
    assert_int_equal(gw_peers_acquire(&t, &b, 4), 0);
    assert_int_equal(gw_peers_acquire(&t, &v6, 4), 0);
    assert_int_equal(t.npeers, 3);
    /* a closed connection gives its slot back; the last one frees the entry */
    gw_peers_release(&t, &a);
    assert_int_equal(gw_peers_acquire(&t, &a, 4), 0);
    for (int i = 0; i < 4; i++)
        gw_peers_release(&t, &a);
    assert_int_equal(gw_peers_count(&t, &a), 0);
    gw_peers_release(&t, &b);
    assert_int_equal(t.npeers, 1);
    gw_peers_free(&t);

    /* the exemption list is parsed like the proxy list, errors name it */
    gw_proxies ex;
    char err[256];
    assert_int_equal(gw_cidrs_parse("VTN_MAX_CONNECTIONS_PER_IP_EXEMPT", "10.0.0.0/8, ::1", &ex,
                                    err, sizeof err),
                     0);
    assert_int_equal(ex.n, 2);
    assert_true(match4(&ex, "10.1.2.3"));
    assert_false(match4(&ex, "11.1.2.3"));
    gw_proxies_free(&ex);
    assert_int_equal(
        gw_cidrs_parse("VTN_MAX_CONNECTIONS_PER_IP_EXEMPT", "10.0.0.1/8", &ex, err, sizeof err),
        -EINVAL);
    assert_non_null(strstr(err, "VTN_MAX_CONNECTIONS_PER_IP_EXEMPT: \"10.0.0.1/8\" has host bits"));
}

/* ---- capture by the HTTP layer ------------------------------------------------------ */

typedef struct th {
    gw_http h;
    gw_http_limits lim;
    vtn_buf out;
    int nreq;
    int has[GW_XHDR_N];
    char val[GW_XHDR_N][4096];
    size_t len[GW_XHDR_N];
} th;

static void on_request(gw_http *h, gw_http_req *q)
{
    th *t = gw_container_of(h, th, h);
    t->nreq++;
    for (int i = 0; i < GW_XHDR_N; i++) {
        t->has[i] = q->has_xhdr[i];
        t->len[i] = q->xhdr[i].len;
        snprintf(t->val[i], sizeof t->val[i], "%.*s", (int)q->xhdr[i].len,
                 q->xhdr[i].len ? q->xhdr[i].data : "");
    }
    gw_http_respond_text(h, 200, NULL, "ok");
}

static int on_send(gw_http *h, const gw_iov *iov, int n)
{
    th *t = gw_container_of(h, th, h);
    for (int i = 0; i < n; i++)
        assert_int_equal(vtn_buf_append(&t->out, iov[i].p, iov[i].n), 0);
    return 0;
}

static const gw_http_cbs cbs = {.on_request = on_request, .send = on_send};

static th *th_new(size_t max_header)
{
    th *t = calloc(1, sizeof *t);
    assert_non_null(t);
    t->lim.max_header = max_header;
    t->lim.max_body = 65536;
    assert_int_equal(
        gw_header_name_check("X-Client-Cert", t->lim.xhdr_name[0], &t->lim.xhdr_len[0]), 0);
    assert_int_equal(
        gw_header_name_check("X-Client-Fingerprint", t->lim.xhdr_name[1], &t->lim.xhdr_len[1]), 0);
    vtn_buf_init(&t->out, 1 << 20);
    gw_http_init(&t->h, &t->lim, &cbs);
    return t;
}

static void th_free(th *t)
{
    gw_http_free(&t->h);
    vtn_buf_free(&t->out);
    free(t);
}

static int first_status(th *t)
{
    int st = -1;
    if (t->out.data)
        sscanf(t->out.data, "HTTP/1.1 %d", &st);
    return st;
}

#define REQ(hdrs) "POST /OpenADR2/Simple/2.0b/OadrPoll HTTP/1.1\r\nHost: v\r\n" hdrs "\r\n"

static void http_captures_identity_headers(void **state)
{
    (void)state;
    th *t = th_new(4096);
    const char *r1 = REQ("x-CLIENT-cert: -----BEGIN%20CERT\r\nX-Client-Fingerprint:  30:DA  \r\n");
    for (const char *p = r1; *p; p++) /* byte by byte: names and values arrive in pieces */
        gw_http_feed(&t->h, p, 1);
    assert_int_equal(t->nreq, 1);
    assert_int_equal(first_status(t), 200);
    assert_true(t->has[0]);
    assert_string_equal(t->val[0], "-----BEGIN%20CERT");
    assert_true(t->has[1]);
    assert_string_equal(t->val[1], "30:DA"); /* llhttp trims the value's outer whitespace */

    /* the next request on the connection starts clean */
    const char *r2 = REQ("X-Client-Certificate: not ours\r\nX-Client-Cert-Extra: nor this\r\n");
    gw_http_feed(&t->h, r2, strlen(r2));
    assert_int_equal(t->nreq, 2);
    assert_false(t->has[0]);
    assert_false(t->has[1]);
    assert_int_equal(t->len[0], 0);

    /* present with an empty value still counts as present */
    const char *r3 = REQ("X-Client-Cert:\r\n");
    gw_http_feed(&t->h, r3, strlen(r3));
    assert_int_equal(t->nreq, 3);
    assert_true(t->has[0]);
    assert_int_equal(t->len[0], 0);
    th_free(t);
}

static void http_refuses_two_identity_headers(void **state)
{
    (void)state;
    th *t = th_new(4096);
    const char *r = REQ("X-Client-Cert: a\r\nx-client-cert: b\r\n");
    gw_http_feed(&t->h, r, strlen(r));
    assert_int_equal(t->nreq, 0);
    assert_int_equal(first_status(t), 400);
    assert_non_null(strstr(t->out.data, "duplicate client identity header"));
    assert_non_null(strstr(t->out.data, "Connection: close"));
    th_free(t);
}

static void http_identity_header_is_bounded(void **state)
{
    (void)state;
    th *t = th_new(2048);
    char req[8192], val[3000];
    memset(val, 'A', sizeof val - 1);
    val[sizeof val - 1] = '\0';
    snprintf(req, sizeof req, REQ("X-Client-Cert: %s\r\n"), val);
    gw_http_feed(&t->h, req, strlen(req));
    assert_int_equal(t->nreq, 0);
    assert_int_equal(first_status(t), 431);
    th_free(t);
}

/* ---- the log rate limit ---------------------------------------------------------------- */

static void ratelog_burst_then_one_a_second(void **state)
{
    (void)state;
    gw_ratelog r = {0};
    uint64_t left = 99, t0 = 5000;
    for (int i = 0; i < GW_RATELOG_BURST; i++) {
        assert_true(gw__ratelog_allow(&r, t0, &left));
        assert_int_equal(left, 0);
    }
    for (int i = 0; i < 5; i++)
        assert_false(gw__ratelog_allow(&r, t0 + 10 * (uint64_t)i, &left));
    assert_false(gw__ratelog_allow(&r, t0 + GW_RATELOG_EVERY_MS - 1, &left));
    assert_true(gw__ratelog_allow(&r, t0 + GW_RATELOG_EVERY_MS, &left));
    assert_int_equal(left, 6); /* the line says how many were left out */
    assert_false(gw__ratelog_allow(&r, t0 + GW_RATELOG_EVERY_MS + 1, &left));
    /* a long quiet spell refills up to the burst, not beyond */
    uint64_t later = t0 + 3600 * 1000;
    int allowed = 0;
    for (int i = 0; i < 3 * GW_RATELOG_BURST; i++)
        allowed += gw__ratelog_allow(&r, later, &left);
    assert_int_equal(allowed, GW_RATELOG_BURST);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(addresses_and_cidrs),
        cmocka_unit_test(bad_entries_are_named),
        cmocka_unit_test(certificate_header),
        cmocka_unit_test(fingerprint_header),
        cmocka_unit_test(header_names),
        cmocka_unit_test(settings_that_exclude_each_other),
        cmocka_unit_test(connections_per_address),
        cmocka_unit_test(http_captures_identity_headers),
        cmocka_unit_test(http_refuses_two_identity_headers),
        cmocka_unit_test(http_identity_header_is_bounded),
        cmocka_unit_test(ratelog_burst_then_one_a_second),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
