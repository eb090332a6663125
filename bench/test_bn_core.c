/* Unit tests for vtn-bench's building blocks. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <libxml/parser.h>
#include <libxml/xmlschemas.h>

#include "vtn/net.h"

#include "bn_internal.h"

static void hist_quantiles_within_bucket_precision(void **state)
{
    (void)state;
    bn_hist *h = malloc(sizeof *h);
    assert_non_null(h);
    bn_hist_init(h);
    /* 1..100000 µs, one sample each: the q-quantile is q*100000 µs. */
    for (uint64_t us = 1; us <= 100000; us++)
        bn_hist_record(h, us * 1000);
    assert_int_equal(h->total, 100000);
    assert_int_equal(h->min, 1000);
    assert_int_equal(h->max, 100000000);
    const double qs[] = {0.5, 0.9, 0.99, 0.999};
    for (size_t i = 0; i < sizeof qs / sizeof qs[0]; i++) {
        double want = qs[i] * 100000 * 1000;
        double got = (double)bn_hist_quantile(h, qs[i]);
        assert_true(got >= want);
        assert_true(got <= want * (1.0 + 1.0 / BN_HIST_SUB));
    }
    assert_int_equal(bn_hist_quantile(h, 1.0), 100000000);
    assert_true(bn_hist_mean(h) > 50000000.0 && bn_hist_mean(h) < 50001000.0);
    free(h);
}

static void hist_small_and_huge_values(void **state)
{
    (void)state;
    bn_hist *h = malloc(sizeof *h);
    assert_non_null(h);
    bn_hist_init(h);
    assert_int_equal(bn_hist_quantile(h, 0.99), 0);
    bn_hist_record(h, 7);
    assert_int_equal(bn_hist_quantile(h, 0.5), 7); /* exact below 256 ns */
    bn_hist_record(h, UINT64_MAX);                 /* past the top bucket: max stays exact */
    assert_int_equal(h->max, UINT64_MAX);
    assert_int_equal(bn_hist_quantile(h, 0.99), BN_HIST_MAX_NS);
    /* The p99 of 99 fast and 1 slow sample is the fast value, p99.9 the slow one. */
    bn_hist_init(h);
    for (int i = 0; i < 99; i++)
        bn_hist_record(h, 1000000);
    bn_hist_record(h, 50000000);
    assert_true(bn_hist_quantile(h, 0.99) < 1010000);
    assert_int_equal(bn_hist_quantile(h, 0.999), 50000000);
    free(h);
}

static void proc_stat_with_awkward_comm(void **state)
{
    (void)state;
    uint64_t t = 0;
    /* comm holding ") " must not shift the fields; utime 1500 + stime 250. */
    const char *stat = "4242 (vtn) (x y) S 1 4242 4242 0 -1 4194560 500 0 0 0 1500 250 0 0 20 "
                       "0 3 0 12345 1000000 300 18446744073709551615";
    assert_int_equal(bn_proc_parse_stat(stat, &t), 0);
    assert_int_equal(t, 1750);
    assert_int_equal(bn_proc_parse_stat("4242 (vtn) S 1 2", &t), -EINVAL);
    assert_int_equal(bn_proc_parse_stat("garbage", &t), -EINVAL);
    /* This process is readable, a pid that cannot exist is not. */
    assert_int_equal(bn_proc_ticks(getpid(), &t), 0);
    assert_int_equal(bn_proc_ticks(0x3ffffff0, &t), -ENOENT);
    uint64_t busy = 0, total = 0;
    assert_int_equal(bn_machine_ticks(&busy, &total), 0);
    assert_true(total > 0 && busy <= total);
}

static void proc_status_memory(void **state)
{
    (void)state;
    uint64_t rss = 0, anon = 0;
    const char *status = "Name:\tvtn-gateway\nVmPeak:\t  300000 kB\nVmHWM:\t   99999 kB\n"
                         "VmRSS:\t   12345 kB\nRssAnon:\t    2345 kB\nRssFile:\t   10000 kB\n";
    assert_int_equal(bn_proc_parse_status(status, &rss, &anon), 0);
    assert_int_equal(rss, 12345); /* not VmHWM, not RssFile */
    assert_int_equal(anon, 2345);
    /* Kernels before 4.5 have no RssAnon: 0, not an error. */
    assert_int_equal(bn_proc_parse_status("VmRSS:\t 7 kB\n", &rss, &anon), 0);
    assert_int_equal(rss, 7);
    assert_int_equal(anon, 0);
    assert_int_equal(bn_proc_parse_status("Name:\tx\nVmRSSx: 5 kB\n", &rss, &anon), -EINVAL);
    assert_int_equal(bn_proc_parse_status("VmRSS: none\n", &rss, &anon), -EINVAL);
    assert_int_equal(bn_proc_mem(getpid(), &rss, &anon), 0);
    assert_true(rss > 0 && anon <= rss);
    assert_int_equal(bn_proc_mem(0x3ffffff0, &rss, &anon), -ENOENT);
}

static void pids_parse_roles(void **state)
{
    (void)state;
    bn_proc p[4];
    char err[256];
    int n = bn_pids_parse("gateway=10,worker=11,worker=12,redis=13", p, 4, err, sizeof err);
    assert_int_equal(n, 4);
    assert_string_equal(p[0].role, "gateway");
    assert_int_equal(p[0].pid, 10);
    assert_string_equal(p[2].role, "worker");
    assert_int_equal(p[3].pid, 13);
    assert_int_equal(bn_pids_parse("", p, 4, err, sizeof err), 0);
    assert_int_equal(bn_pids_parse("gateway", p, 4, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "role=PID"));
    assert_int_equal(bn_pids_parse("gateway=abc", p, 4, err, sizeof err), -EINVAL);
    assert_int_equal(bn_pids_parse("gate way=1", p, 4, err, sizeof err), -EINVAL);
    assert_int_equal(bn_pids_parse("a=1,b=2,c=3,d=4,e=5", p, 4, err, sizeof err), -EINVAL);
}

/* Splits an HTTP request into head and body and checks Content-Length. */
static const char *body_of(const vtn_buf *req, const char *path)
{
    char line[128];
    snprintf(line, sizeof line, "POST %s HTTP/1.1\r\n", path);
    assert_memory_equal(req->data, line, strlen(line));
    assert_non_null(strstr(req->data, "\r\nContent-Type: application/xml\r\n"));
    const char *cl = strstr(req->data, "\r\nContent-Length: ");
    const char *body = strstr(req->data, "\r\n\r\n");
    assert_non_null(cl);
    assert_non_null(body);
    body += 4;
    assert_int_equal(strtoul(cl + 18, NULL, 10), req->len - (size_t)(body - req->data));
    return body;
}

static void assert_valid_oadr(const char *body)
{
    xmlSchemaParserCtxtPtr pc = xmlSchemaNewParserCtxt(VTN_OFFICIAL_SCHEMA);
    assert_non_null(pc);
    xmlSchemaPtr schema = xmlSchemaParse(pc);
    assert_non_null(schema);
    xmlSchemaValidCtxtPtr vc = xmlSchemaNewValidCtxt(schema);
    xmlDocPtr doc = xmlReadMemory(body, (int)strlen(body), "bench.xml", NULL, XML_PARSE_NONET);
    assert_non_null(doc);
    assert_int_equal(xmlSchemaValidateDoc(vc, doc), 0);
    xmlFreeDoc(doc);
    xmlSchemaFreeValidCtxt(vc);
    xmlSchemaFree(schema);
    xmlSchemaFreeParserCtxt(pc);
}

static void requests_are_valid_openadr(void **state)
{
    (void)state;
    vtn_buf req;
    vtn_buf_init(&req, 8192);
    assert_int_equal(bn_request_registration(&req, "127.0.0.1:8080", "bench-r<1>-0", "bench-r-0-0"),
                     0);
    const char *body = body_of(&req, BN_PATH_REGISTER);
    assert_non_null(strstr(body, "<oadr:oadrVenName>bench-r&lt;1&gt;-0</oadr:oadrVenName>"));
    assert_non_null(strstr(body, "<oadr:oadrHttpPullModel>true</oadr:oadrHttpPullModel>"));
    assert_non_null(strstr(req.data, "\r\nHost: 127.0.0.1:8080\r\n"));
    assert_valid_oadr(body);
    /* a push VEN: its endpoint, in the place the schema gives it, and no pulling */
    assert_int_equal(bn_request_registration_push(&req, "127.0.0.1:8080", "bench-r-1",
                                                  "bench-r-1-0",
                                                  "https://127.0.0.1:4443/ven/1?a=1&b=2"),
                     0);
    body = body_of(&req, BN_PATH_REGISTER);
    assert_non_null(strstr(body,
                           "<oadr:oadrTransportAddress>https://127.0.0.1:4443/ven/1?a=1&amp;b=2"
                           "</oadr:oadrTransportAddress>"));
    assert_non_null(strstr(body, "<oadr:oadrHttpPullModel>false</oadr:oadrHttpPullModel>"));
    assert_valid_oadr(body);

    assert_int_equal(bn_request_poll(&req, "127.0.0.1:8080", "ven-0123456789abcdef0123"), 0);
    body = body_of(&req, BN_PATH_POLL);
    assert_non_null(strstr(body, "<ei:venID>ven-0123456789abcdef0123</ei:venID>"));
    assert_valid_oadr(body);

    bn_dist_event ev[2] = {{"evt-1", 0, 1, 0}, {"evt-2", 4, 1, 1}};
    assert_int_equal(bn_request_created_event(&req, "127.0.0.1:8080", "ven-0123456789abcdef0123",
                                              "req-9", ev, 2),
                     0);
    body = body_of(&req, BN_PATH_EVENT);
    assert_non_null(strstr(body, "<ei:eventID>evt-2</ei:eventID><ei:modificationNumber>4<"));
    assert_non_null(strstr(body, "<pyld:requestID>req-9</pyld:requestID>"));
    /* a fleet VEN opts out of a share of the events */
    assert_non_null(strstr(body,
                           "<ei:eventID>evt-1</ei:eventID><ei:modificationNumber>0<"
                           "/ei:modificationNumber></ei:qualifiedEventID><ei:optType>optIn<"));
    assert_non_null(strstr(body,
                           "<ei:eventID>evt-2</ei:eventID><ei:modificationNumber>4<"
                           "/ei:modificationNumber></ei:qualifiedEventID><ei:optType>optOut<"));
    assert_valid_oadr(body);

    /* reports mode: the VEN's METADATA report, its oadrCreatedReport, an update */
    const char *ven = "ven-0123456789abcdef0123";
    assert_int_equal(bn_request_register_report(&req, "127.0.0.1:8080", ven, "regrep-0"), 0);
    body = body_of(&req, BN_PATH_REPORT);
    assert_non_null(strstr(body, "<ei:reportName>METADATA_TELEMETRY_USAGE</ei:reportName>"));
    assert_non_null(strstr(body, "<ei:rID>" BN_REPORT_RID "</ei:rID>"));
    assert_valid_oadr(body);
    assert_int_equal(bn_request_created_report(&req, "127.0.0.1:8080", ven, "crep-1", "rr-x-0"), 0);
    body = body_of(&req, BN_PATH_REPORT);
    assert_non_null(strstr(body, "<oadr:oadrPendingReports><ei:reportRequestID>rr-x-0<"));
    assert_valid_oadr(body);
    vtn_buf scratch;
    vtn_buf_init(&scratch, 1 << 20);
    assert_int_equal(
        bn_request_update_report(&req, &scratch, "127.0.0.1:8080", ven, "rr-x-0", 2, 3), 0);
    body = body_of(&req, BN_PATH_REPORT);
    /* update 2 of 3 intervals: intervals 6, 7, 8, minutes after the base */
    assert_non_null(strstr(body, "<xcal:date-time>2026-01-01T00:06:00Z</xcal:date-time>"));
    assert_non_null(strstr(body, "<ei:value>8.5</ei:value>"));
    assert_null(strstr(body, "<ei:value>9.5</ei:value>"));
    assert_non_null(strstr(body, "<ei:createdDateTime>2026-01-01T00:09:00Z</ei:createdDateTime>"));
    assert_valid_oadr(body);
    vtn_buf_free(&scratch);
    vtn_buf_free(&req);
}

/* The consumer's tally: an entry as the VTN stores it (docs/reports.md). */
static void report_tally_counts_each_interval(void **state)
{
    (void)state;
    uint8_t ok[2] = {1, 0}, seen_a[4] = {0}, seen_b[4] = {0};
    bn_rep_ven v[2] = {{"ven-b", "rr-b", 2, ok, seen_b}, {"ven-a", "rr-a", 2, ok, seen_a}};
    bn_rep_tally t;
    memset(&t, 0, sizeof t);
    bn_rep_sort(v, 2);
    assert_string_equal(v[0].ven_id, "ven-a");
    /* VEN a, update 0 (intervals 0, 1) stored twice; its interval 1 altered once */
    const char *e0 = "[[\"usage\",1767225600000,60000,\"0.5\"],[\"usage\",1767225660000,60000,"
                     "\"1.5\",\"Quality Good - Non Specific\"]]";
    const char *e1 = "[[\"usage\",1767225600000,60000,\"0.5\"],[\"usage\",1767225660000,60000,"
                     "\"7\"]]";
    const char *fv[6] = {"ven", "ven-a", "rr", "rr-a", "i", e0};
    size_t fl[6];
    for (int i = 0; i < 6; i++)
        fl[i] = strlen(fv[i]);
    bn_rep_entry(v, 2, 2, fv, fl, 6, &t);
    fv[5] = e1;
    fl[5] = strlen(e1);
    bn_rep_entry(v, 2, 2, fv, fl, 6, &t);
    /* VEN b: an interval of update 1, which got no 200; another VEN's rr */
    const char *e2 = "[[\"usage\",1767225780000,60000,\"3.5\"]]";
    const char *fb[6] = {"ven", "ven-b", "rr", "rr-b", "i", e2};
    for (int i = 0; i < 6; i++)
        fl[i] = strlen(fb[i]);
    bn_rep_entry(v, 2, 2, fb, fl, 6, &t);
    fb[3] = "rr-a";
    bn_rep_entry(v, 2, 2, fb, fl, 6, &t);
    bn_rep_finish(v, 2, 2, &t);
    assert_int_equal(t.entries, 4);
    assert_int_equal(t.values, 6);
    assert_int_equal(t.foreign, 2);   /* the altered value, the wrong rr */
    assert_int_equal(t.confirmed, 4); /* update 0 of both VENs */
    assert_int_equal(t.stored, 2);    /* VEN a's intervals 0 and 1 */
    assert_int_equal(t.lost, 2);      /* VEN b's update 0 */
    assert_int_equal(t.doubled, 1);   /* VEN a's interval 0 */
    assert_int_equal(t.unconfirmed, 1);
}

static void xml_scanning_ignores_prefixes(void **state)
{
    (void)state;
    char out[64];
    const char *reply =
        "<?xml version=\"1.0\"?><!-- <venID>no</venID> -->"
        "<p:oadrPayload xmlns:p=\"http://openadr.org/oadr-2.0b/2012/07\"><p:oadrSignedObject>"
        "<p:oadrCreatedPartyRegistration><eiResponse xmlns=\"urn:x\"><responseCode> 200 "
        "</responseCode><requestID/></eiResponse><x:registrationID a=\"1>2\" xmlns:x=\"urn:y\">"
        "reg-1</x:registrationID><ei:venID>ven-abc</ei:venID>";
    size_t len = strlen(reply);
    assert_int_equal(bn_xml_text(reply, len, "responseCode", out, sizeof out), 3);
    assert_string_equal(out, "200");
    assert_int_equal(bn_xml_text(reply, len, "venID", out, sizeof out), 7);
    assert_string_equal(out, "ven-abc");
    assert_int_equal(bn_xml_text(reply, len, "registrationID", out, sizeof out), 5);
    assert_string_equal(out, "reg-1");
    assert_int_equal(bn_xml_text(reply, len, "requestID", out, sizeof out), 0);
    assert_int_equal(bn_xml_text(reply, len, "vtnID", out, sizeof out), -ENOENT);
    assert_int_equal(bn_xml_text(reply, len, "venID", out, 4), -ENOBUFS);
    /* Truncated in the middle of the text: not found rather than a partial value. */
    assert_int_equal(bn_xml_text(reply, len - 14, "venID", out, sizeof out), -ENOENT);
    assert_int_equal(bn_xml_payload(reply, len, out, sizeof out), 0);
    assert_string_equal(out, "oadrCreatedPartyRegistration");
    assert_int_equal(bn_xml_payload("<a:oadrPayload><a:oadrSignedObject>", 35, out, sizeof out),
                     -ENOENT);
}

static void loopback_only(void **state)
{
    (void)state;
    struct sockaddr_storage ss;
    assert_int_equal(vtn_addr_parse("127.0.0.1:8080", &ss), 0);
    assert_true(bn_addr_is_loopback(&ss));
    assert_int_equal(vtn_addr_parse("127.1.2.3:1", &ss), 0);
    assert_true(bn_addr_is_loopback(&ss));
    assert_int_equal(vtn_addr_parse("[::1]:8080", &ss), 0);
    assert_true(bn_addr_is_loopback(&ss));
    assert_int_equal(vtn_addr_parse("10.0.0.1:8080", &ss), 0);
    assert_false(bn_addr_is_loopback(&ss));
    assert_int_equal(vtn_addr_parse("[::ffff:192.168.1.1]:80", &ss), 0);
    assert_false(bn_addr_is_loopback(&ss));
    assert_int_equal(vtn_addr_parse("0.0.0.0:80", &ss), 0);
    assert_false(bn_addr_is_loopback(&ss));
}

/* fleet mode: the reportBackDuration a VEN reads from an oadrCreateReport */
static void iso_durations(void **state)
{
    (void)state;
    assert_true(bn_iso_duration_s("PT15M") == 900);
    assert_true(bn_iso_duration_s("PT1H30M") == 5400);
    assert_true(bn_iso_duration_s("PT0.5S") == 0.5);
    assert_true(bn_iso_duration_s("P1DT1S") == 86401);
    assert_true(bn_iso_duration_s("P1W") == 604800);
    assert_true(bn_iso_duration_s("P1M") < 0); /* months have no fixed length */
    assert_true(bn_iso_duration_s("PT") < 0);
    assert_true(bn_iso_duration_s("15M") < 0);
    assert_true(bn_iso_duration_s("-PT1M") < 0);
    assert_true(bn_iso_duration_s("PT1X") < 0);
    assert_true(bn_iso_duration_s("") < 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(hist_quantiles_within_bucket_precision),
        cmocka_unit_test(hist_small_and_huge_values),
        cmocka_unit_test(proc_stat_with_awkward_comm),
        cmocka_unit_test(proc_status_memory),
        cmocka_unit_test(pids_parse_roles),
        cmocka_unit_test(requests_are_valid_openadr),
        cmocka_unit_test(report_tally_counts_each_interval),
        cmocka_unit_test(xml_scanning_ignores_prefixes),
        cmocka_unit_test(loopback_only),
        cmocka_unit_test(iso_durations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
