/* workers/codec/wk_codec.h: every VEN message parses into the right fields, every
 * error gets the right code, reply type and description, and every document
 * the writers emit validates against the OFFICIAL OpenADR 2.0b schema
 * (VTN_OFFICIAL_SCHEMA). Prints a small timing of the hot paths (no timing
 * assertion). */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "wk_codec.h"
#include "vtn/buf.h"
#include "vtn/time.h"
#include "vtn/xml.h"

#define OADR "http://openadr.org/oadr-2.0b/2012/07"
#define EI "http://docs.oasis-open.org/ns/energyinterop/201110"
#define PYLD "http://docs.oasis-open.org/ns/energyinterop/201110/payloads"
#define VEN "ven-00112233445566778899"

static wk_codec *g_codec;
static vtn_xml_schema *g_official;
static vtn_xml_ctx *g_official_ctx;

static int setup(void **state)
{
    (void)state;
    if (wk_oadr_init() != 0)
        return -1;
    g_codec = wk_codec_new();
    char err[VTN_XML_ERR_MAX];
    if (vtn_xml_schema_from_file(VTN_OFFICIAL_SCHEMA, &g_official, err, sizeof err) != 0) {
        fprintf(stderr, "official schema: %s\n", err);
        return -1;
    }
    g_official_ctx = vtn_xml_ctx_new(g_official);
    return g_codec && g_official_ctx ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    wk_codec_free(&g_codec);
    assert_null(g_codec);
    vtn_xml_ctx_free(&g_official_ctx);
    vtn_xml_schema_free(&g_official);
    wk_oadr_shutdown();
    return 0;
}

static char *read_sample(const char *name, size_t *len)
{
    char path[512];
    snprintf(path, sizeof path, "%s/xml/%s", VTN_TEST_DATA, name);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char *buf = malloc(1 << 16);
    *len = fread(buf, 1, 1 << 16, f);
    fclose(f);
    buf[*len] = '\0';
    return buf;
}

static int parse_sample(const char *name, enum wk_service svc, wk_msg *m)
{
    size_t len;
    char *body = read_sample(name, &len);
    int rc = wk_msg_parse(g_codec, svc, body, len, m);
    free(body);
    return rc;
}

static int parse_str(const char *body, enum wk_service svc, wk_msg *m)
{
    return wk_msg_parse(g_codec, svc, body, strlen(body), m);
}

/* The document in b[from..] is well-formed and valid under the official schema. */
static void assert_official(const vtn_buf *b, size_t from)
{
    xmlDoc *doc = NULL;
    int rc = vtn_xml_parse(g_official_ctx, b->data + from, b->len - from, &doc);
    if (rc != 0)
        fail_msg("not well-formed: %s\n%s", vtn_xml_error(g_official_ctx), b->data + from);
    rc = vtn_xml_validate(g_official_ctx, doc);
    if (rc != 0)
        fail_msg("official schema: %s\n%s", vtn_xml_error(g_official_ctx), b->data + from);
    xmlFreeDoc(doc);
}

/* ---- the table ---------------------------------------------------------------- */

static void test_service_paths(void **state)
{
    (void)state;
    static const struct {
        const char *path;
        enum wk_service svc;
    } k[] = {
        {"/OpenADR2/Simple/2.0b/EiRegisterParty", WK_SVC_EI_REGISTER_PARTY},
        {"/OpenADR2/Simple/2.0b/EiEvent", WK_SVC_EI_EVENT},
        {"/OpenADR2/Simple/2.0b/EiReport/", WK_SVC_EI_REPORT},
        {"/OpenADR2/Simple/2.0b/EiOpt?x=1", WK_SVC_EI_OPT},
        {"/OpenADR2/Simple/2.0b/OadrPoll", WK_SVC_OADR_POLL},
        {"/OpenADR2/Simple/2.0b/oadrpoll", WK_SVC_NONE},
        {"/OpenADR2/Simple/2.0b/", WK_SVC_NONE},
        {"/OpenADR2/Simple/2.0a/EiEvent", WK_SVC_NONE},
        {"/OpenADR2/Simple/2.0b/EiEventX", WK_SVC_NONE},
        {"/OpenADR2/Simple/2.0b/EiEvent//", WK_SVC_NONE},
        {"", WK_SVC_NONE},
    };
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++)
        assert_int_equal(wk_service_from_path(k[i].path, strlen(k[i].path)), k[i].svc);
    assert_string_equal(wk_service_name(WK_SVC_OADR_POLL), "OadrPoll");
    assert_string_equal(wk_service_name(WK_SVC_NONE), "");
}

static void test_table(void **state)
{
    (void)state;
    assert_true(wk_msg_allowed(WK_SVC_OADR_POLL, WK_MSG_POLL));
    assert_false(wk_msg_allowed(WK_SVC_EI_REGISTER_PARTY, WK_MSG_POLL));
    assert_true(wk_msg_allowed(WK_SVC_EI_REGISTER_PARTY, WK_MSG_CREATE_PARTY_REGISTRATION));
    assert_true(wk_msg_allowed(WK_SVC_EI_REGISTER_PARTY, WK_MSG_CANCELED_PARTY_REGISTRATION));
    assert_true(wk_msg_allowed(WK_SVC_EI_EVENT, WK_MSG_RESPONSE));
    assert_true(wk_msg_allowed(WK_SVC_EI_REPORT, WK_MSG_UPDATE_REPORT));
    assert_false(wk_msg_allowed(WK_SVC_EI_EVENT, WK_MSG_UPDATE_REPORT));
    assert_true(wk_msg_allowed(WK_SVC_EI_OPT, WK_MSG_CREATE_OPT));
    for (int s = WK_SVC_NONE; s < WK_SVC__COUNT; s++) {
        assert_false(wk_msg_allowed((enum wk_service)s, WK_MSG_DISTRIBUTE_EVENT));
        assert_false(wk_msg_allowed((enum wk_service)s, WK_MSG_CREATED_PARTY_REGISTRATION));
        assert_false(wk_msg_allowed((enum wk_service)s, WK_MSG_NONE));
    }
    assert_int_equal(wk_msg_reply_type(WK_MSG_QUERY_REGISTRATION),
                     WK_MSG_CREATED_PARTY_REGISTRATION);
    assert_int_equal(wk_msg_reply_type(WK_MSG_CANCEL_PARTY_REGISTRATION),
                     WK_MSG_CANCELED_PARTY_REGISTRATION);
    assert_int_equal(wk_msg_reply_type(WK_MSG_POLL), WK_MSG_RESPONSE);
    assert_int_equal(wk_msg_reply_type(WK_MSG_UPDATE_REPORT), WK_MSG_UPDATED_REPORT);
    assert_int_equal(wk_msg_reply_type(WK_MSG_REQUEST_EVENT), WK_MSG_DISTRIBUTE_EVENT);
    for (int t = 1; t < WK_MSG__COUNT; t++)
        assert_true(strncmp(wk_msg_name((enum wk_msg_type)t), "oadr", 4) == 0);
}

/* ---- parsing: fields --------------------------------------------------------------- */

static void test_every_sample_on_its_service(void **state)
{
    (void)state;
    static const struct {
        const char *file;
        enum wk_service svc;
        enum wk_msg_type type;
    } k[] = {
        {"query_registration.xml", WK_SVC_EI_REGISTER_PARTY, WK_MSG_QUERY_REGISTRATION},
        {"create_party_registration.xml", WK_SVC_EI_REGISTER_PARTY,
         WK_MSG_CREATE_PARTY_REGISTRATION},
        {"create_party_registration_push.xml", WK_SVC_EI_REGISTER_PARTY,
         WK_MSG_CREATE_PARTY_REGISTRATION},
        {"cancel_party_registration.xml", WK_SVC_EI_REGISTER_PARTY,
         WK_MSG_CANCEL_PARTY_REGISTRATION},
        {"canceled_party_registration.xml", WK_SVC_EI_REGISTER_PARTY,
         WK_MSG_CANCELED_PARTY_REGISTRATION},
        {"response.xml", WK_SVC_EI_REGISTER_PARTY, WK_MSG_RESPONSE},
        {"poll.xml", WK_SVC_OADR_POLL, WK_MSG_POLL},
        {"poll_default_ns.xml", WK_SVC_OADR_POLL, WK_MSG_POLL},
        {"poll_signed.xml", WK_SVC_OADR_POLL, WK_MSG_POLL},
        {"request_event.xml", WK_SVC_EI_EVENT, WK_MSG_REQUEST_EVENT},
        {"created_event.xml", WK_SVC_EI_EVENT, WK_MSG_CREATED_EVENT},
        {"register_report.xml", WK_SVC_EI_REPORT, WK_MSG_REGISTER_REPORT},
        {"registered_report.xml", WK_SVC_EI_REPORT, WK_MSG_REGISTERED_REPORT},
        {"create_report.xml", WK_SVC_EI_REPORT, WK_MSG_CREATE_REPORT},
        {"created_report.xml", WK_SVC_EI_REPORT, WK_MSG_CREATED_REPORT},
        {"update_report.xml", WK_SVC_EI_REPORT, WK_MSG_UPDATE_REPORT},
        {"cancel_report.xml", WK_SVC_EI_REPORT, WK_MSG_CANCEL_REPORT},
        {"canceled_report.xml", WK_SVC_EI_REPORT, WK_MSG_CANCELED_REPORT},
        {"create_opt.xml", WK_SVC_EI_OPT, WK_MSG_CREATE_OPT},
        {"cancel_opt.xml", WK_SVC_EI_OPT, WK_MSG_CANCEL_OPT},
    };
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++) {
        wk_msg m;
        int rc = parse_sample(k[i].file, k[i].svc, &m);
        if (rc != 0)
            fail_msg("%s: rc %d code %d: %s", k[i].file, rc, m.code, m.desc);
        assert_int_equal(m.type, k[i].type);
        assert_int_equal(m.code, 200);
        assert_int_equal(m.service, k[i].svc);
        assert_int_equal(m.reply, wk_msg_reply_type(k[i].type));
        assert_string_equal(m.payload_name, wk_msg_name(k[i].type));
        assert_non_null(m.doc);
        assert_non_null(m.payload);
        wk_msg_clear(&m);
        assert_null(m.doc);
        /* WK_SVC_NONE (push replies) takes any VEN message. */
        assert_int_equal(parse_sample(k[i].file, WK_SVC_NONE, &m), 0);
        wk_msg_clear(&m);
    }
}

static void test_create_party_registration_fields(void **state)
{
    (void)state;
    wk_msg m;
    assert_int_equal(parse_sample("create_party_registration.xml", WK_SVC_EI_REGISTER_PARTY, &m),
                     0);
    assert_string_equal(m.request_id, "9a3e1c2e-6f4d-4b7e-9c1a-2f6d8e0b5a11");
    assert_string_equal(m.schema_version, "2.0b");
    assert_string_equal(m.registration_id, "");
    assert_string_equal(m.ven_id, "");
    assert_string_equal(m.profile_name, "2.0b");
    assert_string_equal(m.transport_name, "simpleHttp");
    assert_string_equal(m.transport_address, "");
    assert_int_equal(m.report_only, 0);
    assert_int_equal(m.xml_signature, 0);
    assert_int_equal(m.http_pull_model, 1);
    assert_string_equal(m.ven_name, "Building 7 & Annex");
    assert_false(m.ei_response.present);
    wk_msg_clear(&m);

    /* Re-registration of a push VEN, other prefixes, 1/0 booleans, CDATA. */
    assert_int_equal(
        parse_sample("create_party_registration_push.xml", WK_SVC_EI_REGISTER_PARTY, &m), 0);
    assert_string_equal(m.request_id, "rereg-77");
    assert_string_equal(m.registration_id, "reg-0a1b2c3d4e5f60718293");
    assert_string_equal(m.ven_id, VEN);
    assert_string_equal(m.profile_name, "2.0b"); /* " 2.0b " collapsed like xs:token */
    assert_string_equal(m.transport_address, "https://ven.example.com:8443/OpenADR2/Simple/2.0b");
    assert_int_equal(m.report_only, 1);
    assert_int_equal(m.xml_signature, 0);
    assert_int_equal(m.http_pull_model, 0);
    assert_string_equal(m.ven_name, "Plant <North>");
    wk_msg_clear(&m);

    /* Optional elements absent: -1, not a guess. */
    const char *minimal =
        "<oadrPayload xmlns=\"" OADR "\"><oadrSignedObject><oadrCreatePartyRegistration>"
        "<requestID xmlns=\"" PYLD "\">r</requestID><oadrProfileName>2.0b</oadrProfileName>"
        "<oadrTransportName>simpleHttp</oadrTransportName><oadrReportOnly>false</oadrReportOnly>"
        "<oadrXmlSignature>true</oadrXmlSignature></oadrCreatePartyRegistration>"
        "</oadrSignedObject></oadrPayload>";
    assert_int_equal(parse_str(minimal, WK_SVC_EI_REGISTER_PARTY, &m), 0);
    assert_int_equal(m.http_pull_model, -1);
    assert_int_equal(m.xml_signature, 1);
    assert_string_equal(m.ven_name, "");
    assert_string_equal(m.schema_version, "");
    wk_msg_clear(&m);
}

static void test_other_fields(void **state)
{
    (void)state;
    wk_msg m;
    assert_int_equal(parse_sample("query_registration.xml", WK_SVC_EI_REGISTER_PARTY, &m), 0);
    assert_string_equal(m.request_id, "req-query-0001");
    assert_string_equal(m.ven_id, "");
    wk_msg_clear(&m);

    assert_int_equal(parse_sample("cancel_party_registration.xml", WK_SVC_EI_REGISTER_PARTY, &m),
                     0);
    assert_string_equal(m.request_id, "cancel-1");
    assert_string_equal(m.registration_id, "reg-0a1b2c3d4e5f60718293");
    assert_string_equal(m.ven_id, VEN);
    wk_msg_clear(&m);

    assert_int_equal(parse_sample("canceled_party_registration.xml", WK_SVC_EI_REGISTER_PARTY, &m),
                     0);
    assert_true(m.ei_response.present);
    assert_int_equal(m.ei_response.code, 200);
    assert_string_equal(m.ei_response.desc, "OK");
    assert_string_equal(m.ei_response.request_id, "vtn-cancel-42");
    assert_string_equal(m.request_id, "");
    assert_string_equal(m.registration_id, "reg-0a1b2c3d4e5f60718293");
    assert_string_equal(m.ven_id, VEN);
    wk_msg_clear(&m);

    assert_int_equal(parse_sample("response.xml", WK_SVC_EI_REGISTER_PARTY, &m), 0);
    assert_int_equal(m.ei_response.code, 200);
    assert_string_equal(m.ei_response.request_id, "");
    assert_string_equal(m.ven_id, VEN);
    wk_msg_clear(&m);

    static const char *const polls[] = {"poll.xml", "poll_default_ns.xml", "poll_signed.xml"};
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(parse_sample(polls[i], WK_SVC_OADR_POLL, &m), 0);
        assert_string_equal(m.ven_id, VEN);
        wk_msg_clear(&m);
    }

    assert_int_equal(parse_sample("request_event.xml", WK_SVC_EI_EVENT, &m), 0);
    assert_string_equal(m.request_id, "reqev-1");
    assert_string_equal(m.ven_id, VEN);
    wk_msg_clear(&m);

    assert_int_equal(parse_sample("created_event.xml", WK_SVC_EI_EVENT, &m), 0);
    assert_true(m.ei_response.present);
    assert_int_equal(m.ei_response.code, 200);
    assert_string_equal(m.ven_id, VEN);
    wk_msg_clear(&m);

    assert_int_equal(parse_sample("created_report.xml", WK_SVC_EI_REPORT, &m), 0);
    assert_string_equal(m.ei_response.request_id, "vtn-crep-9");
    assert_string_equal(m.ven_id, VEN);
    wk_msg_clear(&m);

    assert_int_equal(parse_sample("update_report.xml", WK_SVC_EI_REPORT, &m), 0);
    assert_string_equal(m.request_id, "upd-1001");
    assert_string_equal(m.ven_id, VEN);
    wk_msg_clear(&m);

    assert_int_equal(parse_sample("create_opt.xml", WK_SVC_EI_OPT, &m), 0);
    assert_string_equal(m.opt_id, "opt-5");
    assert_string_equal(m.request_id, "opt-req-5");
    assert_string_equal(m.ven_id, VEN);
    /* What the EiOpt handler stores, read out of the document. */
    char *opt = json_dumps(m.opt, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(opt, "{\"availability\":[{\"dtstart\":\"2024-05-02T14:00:00Z\","
                             "\"duration\":\"PT4H\"}],\"createdDateTime\":\"2024-05-01T12:00:00Z\","
                             "\"marketContext\":\"http://MarketContext1\",\"optReason\":"
                             "\"x-schedule\",\"optType\":\"optOut\",\"resourceIDs\":[\"hvac-1\"]}");
    free(opt);
    wk_msg_clear(&m);
    assert_null(m.opt); /* cleared */

    assert_int_equal(parse_sample("cancel_opt.xml", WK_SVC_EI_OPT, &m), 0);
    assert_string_equal(m.opt_id, "opt-5");
    assert_string_equal(m.request_id, "opt-cancel-5");
    wk_msg_clear(&m);
}

/* ---- parsing: errors ----------------------------------------------------------------- */

#define POLL_DOC(venid)                                                                            \
    "<oadr:oadrPayload xmlns:oadr=\"" OADR "\" xmlns:ei=\"" EI "\"><oadr:oadrSignedObject>"        \
    "<oadr:oadrPoll ei:schemaVersion=\"2.0b\"><ei:venID>" venid "</ei:venID></oadr:oadrPoll>"      \
    "</oadr:oadrSignedObject></oadr:oadrPayload>"

static void expect_error(const char *body, enum wk_service svc, int code, enum wk_msg_type reply,
                         const char *desc_part)
{
    wk_msg m;
    int rc = parse_str(body, svc, &m);
    assert_int_equal(rc, -EBADMSG);
    assert_int_equal(m.code, code);
    assert_int_equal(m.reply, reply);
    if (strstr(m.desc, desc_part) == NULL)
        fail_msg("description \"%s\" lacks \"%s\"", m.desc, desc_part);
    /* Whatever failed, the error reply can be written and is valid 2.0b. */
    vtn_buf b;
    vtn_buf_init(&b, 1 << 16);
    assert_int_equal(wk_write_error(&b, &m, "openvtn-VTN", 10000), 0);
    assert_official(&b, 0);
    vtn_buf_free(&b);
    wk_msg_clear(&m);
}

static void test_errors(void **state)
{
    (void)state;
    expect_error("this is not XML", WK_SVC_OADR_POLL, 454, WK_MSG_RESPONSE,
                 "malformed XML: line 1");
    expect_error("", WK_SVC_OADR_POLL, 454, WK_MSG_RESPONSE, "empty body");
    expect_error("<a><b></a>", WK_SVC_OADR_POLL, 454, WK_MSG_RESPONSE, "mismatch");
    expect_error("<!DOCTYPE oadrPayload [<!ENTITY x \"y\">]>" POLL_DOC("&x;"), WK_SVC_OADR_POLL,
                 454, WK_MSG_RESPONSE, "DOCTYPE is not allowed");
    expect_error("<oadrPayload xmlns=\"http://openadr.org/oadr-2.0a/2012/07\"/>", WK_SVC_OADR_POLL,
                 454, WK_MSG_RESPONSE, "root element is {http://openadr.org/oadr-2.0a/2012/07}");
    expect_error("<html/>", WK_SVC_OADR_POLL, 454, WK_MSG_RESPONSE, "root element is html");
    expect_error("<oadrPayload xmlns=\"" OADR "\"/>", WK_SVC_OADR_POLL, 454, WK_MSG_RESPONSE,
                 "no oadr:oadrSignedObject");
    expect_error("<oadrPayload xmlns=\"" OADR "\"><oadrSignedObject/></oadrPayload>",
                 WK_SVC_OADR_POLL, 454, WK_MSG_RESPONSE, "no payload element");
    /* 453: not a payload we know, sent by a VTN, or on the wrong endpoint. */
    expect_error("<oadrPayload xmlns=\"" OADR "\"><oadrSignedObject><oadrFooBar/>"
                 "</oadrSignedObject></oadrPayload>",
                 WK_SVC_OADR_POLL, 453, WK_MSG_RESPONSE, "unknown payload oadr:oadrFooBar");
    expect_error("<oadrPayload xmlns=\"" OADR "\"><oadrSignedObject><oadrPoll xmlns=\"urn:x\"/>"
                 "</oadrSignedObject></oadrPayload>",
                 WK_SVC_OADR_POLL, 453, WK_MSG_RESPONSE, "unknown payload {urn:x}oadrPoll");
    expect_error("<oadrPayload xmlns=\"" OADR "\"><oadrSignedObject><oadrDistributeEvent/>"
                 "</oadrSignedObject></oadrPayload>",
                 WK_SVC_EI_EVENT, 453, WK_MSG_RESPONSE, "oadrDistributeEvent is sent by a VTN");
    expect_error(POLL_DOC(VEN), WK_SVC_EI_REGISTER_PARTY, 453, WK_MSG_RESPONSE,
                 "oadrPoll is not accepted on EiRegisterParty (send it to OadrPoll)");
    /* 454 from the schema, in the message's own reply type. */
    expect_error("<oadrPayload xmlns=\"" OADR "\"><oadrSignedObject><oadrPoll/>"
                 "</oadrSignedObject></oadrPayload>",
                 WK_SVC_OADR_POLL, 454, WK_MSG_RESPONSE, "schema: line 1: Element 'oadr:oadrPoll'");
    expect_error(POLL_DOC(VEN "</ei:venID><ei:venID>again"), WK_SVC_OADR_POLL, 454, WK_MSG_RESPONSE,
                 "ei:venID");
}

static void test_invalid_registration_gets_created_party_registration(void **state)
{
    (void)state;
    const char *body =
        "<oadrPayload xmlns=\"" OADR "\"><oadrSignedObject><oadrCreatePartyRegistration>"
        "<requestID xmlns=\"" PYLD "\">r-9</requestID><oadrProfileName>2.0b</oadrProfileName>"
        "<oadrTransportName>simpleHttp</oadrTransportName>"
        "<oadrXmlSignature>false</oadrXmlSignature></oadrCreatePartyRegistration>"
        "</oadrSignedObject></oadrPayload>";
    wk_msg m;
    assert_int_equal(parse_str(body, WK_SVC_EI_REGISTER_PARTY, &m), -EBADMSG);
    assert_int_equal(m.code, 454);
    assert_int_equal(m.type, WK_MSG_CREATE_PARTY_REGISTRATION);
    assert_int_equal(m.reply, WK_MSG_CREATED_PARTY_REGISTRATION);
    assert_non_null(strstr(m.desc, "oadr:oadrXmlSignature"));
    assert_non_null(strstr(m.desc, "oadr:oadrReportOnly"));
    assert_string_equal(m.request_id, "r-9"); /* read although invalid, to echo */
    vtn_buf b;
    vtn_buf_init(&b, 1 << 16);
    assert_int_equal(wk_write_error(&b, &m, "openvtn-VTN", 10000), 0);
    assert_official(&b, 0);
    assert_non_null(strstr(b.data, "<oadr:oadrCreatedPartyRegistration"));
    assert_non_null(strstr(b.data, "<ei:responseCode>454</ei:responseCode>"));
    assert_non_null(strstr(b.data, "<pyld:requestID>r-9</pyld:requestID>"));
    assert_null(strstr(b.data, "<ei:venID>"));
    vtn_buf_free(&b);
    wk_msg_clear(&m);

    /* A bad boolean. */
    const char *bad_bool =
        "<oadrPayload xmlns=\"" OADR "\"><oadrSignedObject><oadrCreatePartyRegistration>"
        "<requestID xmlns=\"" PYLD "\">r</requestID><oadrProfileName>2.0b</oadrProfileName>"
        "<oadrTransportName>simpleHttp</oadrTransportName><oadrReportOnly>yes</oadrReportOnly>"
        "<oadrXmlSignature>false</oadrXmlSignature></oadrCreatePartyRegistration>"
        "</oadrSignedObject></oadrPayload>";
    assert_int_equal(parse_str(bad_bool, WK_SVC_EI_REGISTER_PARTY, &m), -EBADMSG);
    assert_non_null(strstr(m.desc, "'yes' is not a valid value"));
    wk_msg_clear(&m);

    /* An unsupported profile. */
    const char *profile =
        "<oadrPayload xmlns=\"" OADR "\"><oadrSignedObject><oadrCreatePartyRegistration>"
        "<requestID xmlns=\"" PYLD "\">r</requestID><oadrProfileName>3.0</oadrProfileName>"
        "<oadrTransportName>simpleHttp</oadrTransportName><oadrReportOnly>0</oadrReportOnly>"
        "<oadrXmlSignature>false</oadrXmlSignature></oadrCreatePartyRegistration>"
        "</oadrSignedObject></oadrPayload>";
    assert_int_equal(parse_str(profile, WK_SVC_EI_REGISTER_PARTY, &m), -EBADMSG);
    assert_non_null(strstr(m.desc, "oadr:oadrProfileName"));
    wk_msg_clear(&m);
}

static void test_caps(void **state)
{
    (void)state;
    char id[320];
    memset(id, 'v', 129);
    id[129] = '\0';
    char body[1024];
    snprintf(body, sizeof body,
             "<oadrPayload xmlns=\"" OADR "\"><oadrSignedObject><oadrPoll>"
             "<venID xmlns=\"" EI "\">%s</venID></oadrPoll></oadrSignedObject></oadrPayload>",
             id);
    wk_msg m;
    assert_int_equal(parse_str(body, WK_SVC_OADR_POLL, &m), -EBADMSG);
    assert_int_equal(m.code, 454);
    assert_non_null(strstr(m.desc, "ei:venID"));
    assert_string_equal(m.ven_id, ""); /* never a truncated ID */
    wk_msg_clear(&m);
    /* 128 characters exactly is fine. */
    id[128] = '\0';
    snprintf(body, sizeof body,
             "<oadrPayload xmlns=\"" OADR "\"><oadrSignedObject><oadrPoll>"
             "<venID xmlns=\"" EI "\">%s</venID></oadrPoll></oadrSignedObject></oadrPayload>",
             id);
    assert_int_equal(parse_str(body, WK_SVC_OADR_POLL, &m), 0);
    assert_int_equal(strlen(m.ven_id), 128);
    wk_msg_clear(&m);
    /* 100 characters of 3 bytes each pass the schema (it counts
     * characters) but not the byte cap of the copy. */
    size_t n = 0;
    for (int i = 0; i < 100; i++)
        n += (size_t)sprintf(id + n, "\xe2\x82\xac");
    snprintf(body, sizeof body,
             "<oadrPayload xmlns=\"" OADR "\"><oadrSignedObject><oadrPoll>"
             "<venID xmlns=\"" EI "\">%s</venID></oadrPoll></oadrSignedObject></oadrPayload>",
             id);
    assert_int_equal(parse_str(body, WK_SVC_OADR_POLL, &m), -EBADMSG);
    assert_int_equal(m.code, 454);
    assert_string_equal(m.desc, "ei:venID is longer than 128 bytes");
    wk_msg_clear(&m);
}

static void test_lenient_variants(void **state)
{
    (void)state;
    wk_msg m;
    /* Unprefixed schemaVersion and a plain Id, as several VEN libraries send. */
    const char *body = "<oadrPayload xmlns=\"" OADR "\"><oadrSignedObject Id=\"oadrSignedObject\">"
                       "<oadrPoll schemaVersion=\"2.0b\"><venID xmlns=\"" EI "\">v1</venID>"
                       "</oadrPoll></oadrSignedObject></oadrPayload>";
    assert_int_equal(parse_str(body, WK_SVC_OADR_POLL, &m), 0);
    assert_string_equal(m.schema_version, "2.0b");
    assert_string_equal(m.ven_id, "v1");
    wk_msg_clear(&m);
    /* xsi:schemaLocation on the root is allowed and never fetched. */
    const char *xsi =
        "<o:oadrPayload xmlns:o=\"" OADR
        "\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" "
        "xsi:schemaLocation=\"" OADR " http://127.0.0.1:9/oadr_20b.xsd\"><o:oadrSignedObject>"
        "<o:oadrPoll><venID xmlns=\"" EI "\">v2</venID></o:oadrPoll></o:oadrSignedObject>"
        "</o:oadrPayload>";
    assert_int_equal(parse_str(xsi, WK_SVC_OADR_POLL, &m), 0);
    assert_string_equal(m.ven_id, "v2");
    wk_msg_clear(&m);
    /* A payload with an unknown attribute is still refused. */
    const char *extra = "<oadrPayload xmlns=\"" OADR "\"><oadrSignedObject>"
                        "<oadrPoll foo=\"1\"><venID xmlns=\"" EI "\">v1</venID>"
                        "</oadrPoll></oadrSignedObject></oadrPayload>";
    assert_int_equal(parse_str(extra, WK_SVC_OADR_POLL, &m), -EBADMSG);
    assert_non_null(strstr(m.desc, "foo"));
    wk_msg_clear(&m);
}

/* The oadrPoll shortcut (wk_poll_shape_valid) against the schema validator:
 * what it accepts the validator accepts, what it refuses goes to the
 * validator, and the plain shapes VENs send take it. */
static void test_poll_shape_matches_validator(void **state)
{
    (void)state;
    char v128[300] = "", v129[300] = "", u128[600] = "";
    for (int i = 0; i < 128; i++) {
        strcat(v128, "a");
        strcat(u128, "\xc3\xa9"); /* é: 2 bytes, one character */
    }
    snprintf(v129, sizeof v129, "%sa", v128);
#define PRE "<o:oadrPayload xmlns:o=\"" OADR "\" xmlns:ei=\"" EI "\"><o:oadrSignedObject>"
#define POST "</o:oadrSignedObject></o:oadrPayload>"
#define POLL(attrs, inner) PRE "<o:oadrPoll" attrs ">" inner "</o:oadrPoll>" POST
    char b128[1024], b129[1024], bu128[1024];
    snprintf(b128, sizeof b128, POLL(" ei:schemaVersion=\"2.0b\"", "<ei:venID>%s</ei:venID>"),
             v128);
    snprintf(b129, sizeof b129, POLL(" ei:schemaVersion=\"2.0b\"", "<ei:venID>%s</ei:venID>"),
             v129);
    snprintf(bu128, sizeof bu128, POLL("", "<ei:venID>%s</ei:venID>"), u128);
    struct {
        const char *body;
        int shortcut, valid;
        int byte_cap; /* valid, but past the codec's own cap of 128 bytes per id */
    } cases[] = {
        /* the plain shapes: shortcut, valid */
        {POLL(" ei:schemaVersion=\"2.0b\"", "<ei:venID>" VEN "</ei:venID>"), 1, 1, 0},
        {"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n" PRE
         "\n <o:oadrPoll ei:schemaVersion=\"2.0a\">"
         "\n  <!-- c --><ei:venID>v</ei:venID><?pi x?>\n </o:oadrPoll>\n" POST "\n",
         1, 1, 0},
        {"<oadrPayload xmlns=\"" OADR "\"><oadrSignedObject><oadrPoll schemaVersion=\"2.0b\">"
         "<venID xmlns=\"" EI "\">v1</venID></oadrPoll></oadrSignedObject></oadrPayload>",
         1, 1, 0},
        {POLL("", "<ei:venID></ei:venID>"), 1, 1, 0},
        {POLL(" schemaVersion=\"2.0b\" ei:schemaVersion=\"2.0b\"", "<ei:venID>v</ei:venID>"), 1, 1,
         0},
        {b128, 1, 1, 0},
        {bu128, 1, 1, 1},
        {POLL("", "<ei:venID>a &amp; b</ei:venID>"), 1, 1, 0},
        /* valid, left to the validator */
        {PRE "<o:oadrPoll ei:schemaVersion=\" 2.0b \"><ei:venID>v</ei:venID></o:oadrPoll>" POST, 0,
         1, 0},
        {"<o:oadrPayload xmlns:o=\"" OADR "\" xmlns:ei=\"" EI "\"><o:oadrSignedObject Id=\"x\">"
         "<o:oadrPoll><ei:venID>v</ei:venID></o:oadrPoll>" POST,
         0, 1, 0},
        {"<o:oadrPayload xmlns:o=\"" OADR "\" xmlns:ei=\"" EI
         "\" xmlns:ds=\"http://www.w3.org/2000/09/"
         "xmldsig#\"><ds:Signature/><o:oadrSignedObject><o:oadrPoll><ei:venID>v</ei:venID>"
         "</o:oadrPoll>" POST,
         0, 1, 0},
        {"<o:oadrPayload xmlns:o=\"" OADR "\" xmlns:ei=\"" EI
         "\" xmlns:xsi=\"http://www.w3.org/2001/"
         "XMLSchema-instance\" xsi:schemaLocation=\"" OADR " x.xsd\"><o:oadrSignedObject>"
         "<o:oadrPoll><ei:venID>v</ei:venID></o:oadrPoll>" POST,
         0, 1, 0},
        {POLL(" ei:schemaVersion=\"x-1\"", "<ei:venID>v</ei:venID>"), 0, 1, 0},
        {POLL("", "<ei:venID>v<!-- c --></ei:venID>"), 0, 1, 0},
        /* invalid: never the shortcut */
        {b129, 0, 0, 0},
        {POLL("", "<ei:venID>v</ei:venID><ei:venID>w</ei:venID>"), 0, 0, 0},
        {POLL("", "<ei:venID><ei:venID>v</ei:venID></ei:venID>"), 0, 0, 0},
        {POLL("", "x<ei:venID>v</ei:venID>"), 0, 0, 0},
        {POLL("", ""), 0, 0, 0},
        {POLL(" foo=\"1\"", "<ei:venID>v</ei:venID>"), 0, 0, 0},
        {POLL(" ei:schemaVersion=\"3.0\"", "<ei:venID>v</ei:venID>"), 0, 0, 0},
        {POLL(" ei:schemaVersion=\"\"", "<ei:venID>v</ei:venID>"), 0, 0, 0},
        {POLL("", "<venID>v</venID>"), 0, 0, 0},
        {POLL("", "<ei:venID ei:x=\"1\">v</ei:venID>"), 0, 0, 0},
        {POLL("", "<ei:venID>v</ei:venID><o:oadrPoll/>"), 0, 0, 0},
        {PRE POST, 0, 0, 0},
        {"<o:oadrPayload xmlns:o=\"" OADR "\" xmlns:ei=\"" EI "\" foo=\"1\"><o:oadrSignedObject>"
         "<o:oadrPoll><ei:venID>v</ei:venID></o:oadrPoll>" POST,
         0, 0, 0},
        {"<o:oadrPayload xmlns:o=\"" OADR "\" xmlns:ei=\"" EI "\">x<o:oadrSignedObject>"
         "<o:oadrPoll><ei:venID>v</ei:venID></o:oadrPoll>" POST,
         0, 0, 0},
        {"<o:oadrPayload xmlns:o=\"" OADR "\" xmlns:ei=\"" EI "\"><o:oadrSignedObject>"
         "<o:oadrPoll><ei:venID>v</ei:venID></o:oadrPoll><o:oadrPoll><ei:venID>v</ei:venID>"
         "</o:oadrPoll>" POST,
         0, 0, 0},
        {"<o:oadrPayload xmlns:o=\"" OADR "\" xmlns:ei=\"" EI "\"><o:oadrSignedObject/>"
         "<o:oadrSignedObject><o:oadrPoll><ei:venID>v</ei:venID></o:oadrPoll>" POST,
         0, 0, 0},
        {"<o:oadrPayload xmlns:o=\"" OADR "\" xmlns:ei=\"" EI "\"><o:oadrSignedObject>"
         "<o:oadrPoll xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:type=\"x\">"
         "<ei:venID>v</ei:venID></o:oadrPoll>" POST,
         0, 0, 0},
    };
#undef POLL
#undef POST
#undef PRE
    vtn_xml_ctx *x = vtn_xml_ctx_new(wk_codec_schema());
    assert_non_null(x);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        xmlDoc *doc = NULL;
        if (vtn_xml_parse(x, cases[i].body, strlen(cases[i].body), &doc) != 0)
            fail_msg("case %zu not well-formed: %s", i, vtn_xml_error(x));
        int shortcut = wk_poll_shape_valid(xmlDocGetRootElement(doc));
        int valid = vtn_xml_validate(x, doc) == 0;
        xmlFreeDoc(doc);
        if (shortcut != cases[i].shortcut || valid != cases[i].valid)
            fail_msg("case %zu: shortcut %d (want %d), validator %d (want %d)\n%s", i, shortcut,
                     cases[i].shortcut, valid, cases[i].valid, cases[i].body);
        /* The codec answers as the validator does. */
        wk_msg m;
        int rc = parse_str(cases[i].body, WK_SVC_OADR_POLL, &m);
        if (valid && !cases[i].byte_cap ? rc != 0
                                        : rc != -EBADMSG || m.code != WK_OADR_INVALID_DATA)
            fail_msg("case %zu: wk_msg_parse %d code %d (%s)", i, rc, (int)m.code, m.desc);
        wk_msg_clear(&m);
    }
    vtn_xml_ctx_free(&x);
}

/* ---- writers ------------------------------------------------------------------------------ */

static void test_writers_validate_against_official_schema(void **state)
{
    (void)state;
    vtn_buf b;
    vtn_buf_init(&b, 1 << 20);
    size_t at;

    at = b.len;
    assert_int_equal(wk_write_response(&b, 200, "OK", "req-1", VEN), 0);
    assert_official(&b, at);
    assert_non_null(strstr(b.data + at, "<ei:venID>" VEN "</ei:venID>"));
    at = b.len;
    assert_int_equal(wk_write_response(&b, 200, NULL, "", NULL), 0);
    assert_official(&b, at);
    assert_null(strstr(b.data + at, "venID"));
    assert_null(strstr(b.data + at, "responseDescription"));

    wk_created_party_registration r = {200, "OK", "req-2", NULL, NULL, "openvtn-VTN", 10000};
    at = b.len;
    assert_int_equal(wk_write_created_party_registration(&b, &r), 0);
    assert_official(&b, at);
    assert_non_null(strstr(b.data + at, "<xcal:duration>PT10S</xcal:duration>"));
    assert_non_null(strstr(b.data + at, "<oadr:oadrProfileName>2.0b</oadr:oadrProfileName>"));
    assert_non_null(
        strstr(b.data + at, "<oadr:oadrTransportName>simpleHttp</oadr:oadrTransportName>"));
    assert_null(strstr(b.data + at, "registrationID"));
    r.registration_id = "reg-0a1b2c3d4e5f60718293";
    r.ven_id = VEN;
    r.poll_freq_ms = 0;
    at = b.len;
    assert_int_equal(wk_write_created_party_registration(&b, &r), 0);
    assert_official(&b, at);
    assert_non_null(strstr(b.data + at, "<ei:registrationID>reg-0a1b2c3d4e5f60718293<"));
    assert_null(strstr(b.data + at, "oadrRequestedOadrPollFreq"));

    at = b.len;
    assert_int_equal(wk_write_canceled_party_registration(&b, 200, "OK", "c-1", "reg-1", VEN), 0);
    assert_official(&b, at);
    at = b.len;
    assert_int_equal(
        wk_write_canceled_party_registration(&b, 452, "unknown registrationID", "c-2", NULL, NULL),
        0);
    assert_official(&b, at);

    at = b.len;
    assert_int_equal(wk_write_cancel_party_registration(&b, "req-vtn-1", "reg-1", VEN), 0);
    assert_official(&b, at);
    at = b.len;
    assert_int_equal(wk_write_cancel_party_registration(&b, "req-vtn-2", "reg-1", NULL), 0);
    assert_official(&b, at);

    at = b.len;
    assert_int_equal(wk_write_request_reregistration(&b, VEN), 0);
    assert_official(&b, at);

    at = b.len;
    assert_int_equal(wk_write_created_opt(&b, 200, "OK", "opt-req-5", "opt-5"), 0);
    assert_official(&b, at);
    at = b.len;
    assert_int_equal(wk_write_canceled_opt(&b, 200, "OK", "opt-cancel-5", "opt-5"), 0);
    assert_official(&b, at);
    at = b.len;
    assert_int_equal(wk_write_canceled_opt(&b, 452, "unknown optID", "opt-cancel-6", NULL), 0);
    assert_official(&b, at);
    assert_int_equal(wk_write_created_opt(&b, 200, "OK", "r", NULL), -EINVAL);

    /* Every reply type wk_write_error can produce. */
    for (int t = WK_MSG_NONE; t < WK_MSG__COUNT; t++) {
        wk_msg m;
        memset(&m, 0, sizeof m);
        m.reply = (enum wk_msg_type)t;
        m.code = 454;
        snprintf(m.desc, sizeof m.desc, "bad & <worse>");
        snprintf(m.request_id, sizeof m.request_id, "rq");
        snprintf(m.ven_id, sizeof m.ven_id, VEN);
        snprintf(m.registration_id, sizeof m.registration_id, "reg-x");
        snprintf(m.opt_id, sizeof m.opt_id, "opt-1");
        at = b.len;
        assert_int_equal(wk_write_error(&b, &m, "openvtn-VTN", 60000), 0);
        assert_official(&b, at);
        /* The reply types with a payload of their own; all else is oadrResponse. */
        static const enum wk_msg_type own[] = {WK_MSG_CREATED_PARTY_REGISTRATION,
                                               WK_MSG_CANCELED_PARTY_REGISTRATION,
                                               WK_MSG_DISTRIBUTE_EVENT,
                                               WK_MSG_REGISTERED_REPORT,
                                               WK_MSG_UPDATED_REPORT,
                                               WK_MSG_CREATED_REPORT,
                                               WK_MSG_CANCELED_REPORT,
                                               WK_MSG_CREATED_OPT,
                                               WK_MSG_CANCELED_OPT};
        const char *want = "oadrResponse";
        for (size_t i = 0; i < sizeof own / sizeof own[0]; i++)
            if (own[i] == m.reply)
                want = wk_msg_name(m.reply);
        char open[64];
        snprintf(open, sizeof open, "<oadr:%s ", want);
        if (strstr(b.data + at, open) == NULL)
            fail_msg("reply %d: no %s in %s", t, open, b.data + at);
        assert_non_null(strstr(b.data + at, "bad &amp; &lt;worse&gt;"));
        assert_non_null(strstr(b.data + at, "<ei:responseCode>454</ei:responseCode>"));
    }
    {
        wk_msg m;
        memset(&m, 0, sizeof m);
        m.code = 454;
        m.reply = WK_MSG_UPDATED_REPORT;
        at = b.len;
        assert_int_equal(wk_write_error(&b, &m, NULL, 0), 0);
        assert_non_null(strstr(b.data + at, "<oadr:oadrUpdatedReport "));
        m.reply = WK_MSG_DISTRIBUTE_EVENT;
        assert_int_equal(wk_write_error(&b, &m, NULL, 0), -EINVAL); /* vtnID is required */
        m.reply = WK_MSG_CREATED_PARTY_REGISTRATION;
        assert_int_equal(wk_write_error(&b, &m, NULL, 0), -EINVAL);
    }
    vtn_buf_free(&b);
}

static void test_writer_escaping(void **state)
{
    (void)state;
    vtn_buf b;
    vtn_buf_init(&b, 1 << 16);
    /* Specials are escaped; control characters and broken UTF-8 (from a
     * caller or a libxml2 message) cannot make the document ill-formed. */
    assert_int_equal(wk_write_response(&b, 454,
                                       "a<b & \"c\" \x01\x1f caf\xc3\xa9 \xff\xfe \xed\xa0\x80",
                                       "r&<>", "v<1>"),
                     0);
    assert_official(&b, 0);
    assert_non_null(strstr(b.data, "a&lt;b &amp; \"c\" ?? caf\xc3\xa9 ?? ???"));
    assert_non_null(strstr(b.data, "<pyld:requestID>r&amp;&lt;&gt;</pyld:requestID>"));
    vtn_buf_free(&b);
}

static void test_writer_errors_leave_buffer_unchanged(void **state)
{
    (void)state;
    vtn_buf b;
    vtn_buf_init(&b, 700);
    assert_int_equal(vtn_buf_appends(&b, "keep"), 0);
    char big[800];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(wk_write_response(&b, 200, big, "r", NULL), -ENOBUFS);
    assert_int_equal(b.len, 4);
    assert_string_equal(b.data, "keep");
    assert_int_equal(wk_write_response(&b, 2000, NULL, "r", NULL), -EINVAL);
    assert_int_equal(wk_write_response(&b, 200, NULL, NULL, NULL), -EINVAL);
    assert_int_equal(wk_write_request_reregistration(&b, NULL), -EINVAL);
    wk_created_party_registration r = {200, NULL, "r", NULL, NULL, NULL, 0};
    assert_int_equal(wk_write_created_party_registration(&b, &r), -EINVAL);
    assert_int_equal(b.len, 4);
    vtn_buf_free(&b);
}

static void test_xcal_duration(void **state)
{
    (void)state;
    char d[32];
    assert_string_equal(wk_xcal_duration(10000, d, sizeof d), "PT10S");
    assert_string_equal(wk_xcal_duration(90000, d, sizeof d), "PT1M30S");
    assert_string_equal(wk_xcal_duration(3600000, d, sizeof d), "PT1H");
    assert_string_equal(wk_xcal_duration(86400000, d, sizeof d), "P1D");
    assert_string_equal(wk_xcal_duration(90061000, d, sizeof d), "P1DT1H1M1S");
    assert_string_equal(wk_xcal_duration(1500, d, sizeof d), "PT2S");
    assert_string_equal(wk_xcal_duration(0, d, sizeof d), "PT0S");
}

/* ---- threads: one codec each, the compiled schema shared ------------------------------ */

typedef struct thread_arg {
    const char *body;
    size_t len;
    int ok;
} thread_arg;

static void *parse_loop(void *p)
{
    thread_arg *a = p;
    wk_codec *c = wk_codec_new();
    if (c == NULL)
        return NULL;
    wk_msg *m = malloc(sizeof *m);
    for (int i = 0; i < 2000; i++) {
        if (wk_msg_parse(c, WK_SVC_NONE, a->body, a->len, m) == 0 && m->type != WK_MSG_NONE)
            a->ok++;
        wk_msg_clear(m);
    }
    free(m);
    wk_codec_free(&c);
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    static const char *const files[] = {"poll.xml", "update_report.xml", "create_opt.xml",
                                        "create_party_registration.xml"};
    pthread_t th[4];
    thread_arg args[4];
    char *bodies[4];
    for (int i = 0; i < 4; i++) {
        bodies[i] = read_sample(files[i], &args[i].len);
        args[i].body = bodies[i];
        args[i].ok = 0;
        assert_int_equal(pthread_create(&th[i], NULL, parse_loop, &args[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(args[i].ok, 2000);
        free(bodies[i]);
    }
}

/* ---- measurement (printed, not asserted) ------------------------------------------------- */

static void test_measure(void **state)
{
    (void)state;
    size_t len;
    char *poll = read_sample("poll.xml", &len);
    wk_msg *m = malloc(sizeof *m);
    const int n = 20000;
    for (int i = 0; i < 1000; i++) { /* warm up */
        assert_int_equal(wk_msg_parse(g_codec, WK_SVC_OADR_POLL, poll, len, m), 0);
        wk_msg_clear(m);
    }
    uint64_t t0 = vtn_mono_ns();
    for (int i = 0; i < n; i++) {
        wk_msg_parse(g_codec, WK_SVC_OADR_POLL, poll, len, m);
        wk_msg_clear(m);
    }
    double parse_us = (double)(vtn_mono_ns() - t0) / 1e3 / n;

    vtn_buf b;
    vtn_buf_init(&b, 1 << 16);
    t0 = vtn_mono_ns();
    for (int i = 0; i < n * 5; i++) {
        vtn_buf_reset(&b);
        wk_write_response(&b, 200, "OK", "", VEN);
    }
    double resp_us = (double)(vtn_mono_ns() - t0) / 1e3 / (n * 5);
    wk_created_party_registration r = {200,
                                       "OK",
                                       "9a3e1c2e-6f4d-4b7e-9c1a-2f6d8e0b5a11",
                                       "reg-0a1b2c3d4e5f60718293",
                                       VEN,
                                       "openvtn-VTN",
                                       10000};
    t0 = vtn_mono_ns();
    for (int i = 0; i < n * 5; i++) {
        vtn_buf_reset(&b);
        wk_write_created_party_registration(&b, &r);
    }
    double cpr_us = (double)(vtn_mono_ns() - t0) / 1e3 / (n * 5);
    char *reg = read_sample("create_party_registration.xml", &len);
    t0 = vtn_mono_ns();
    for (int i = 0; i < n; i++) {
        wk_msg_parse(g_codec, WK_SVC_EI_REGISTER_PARTY, reg, len, m);
        wk_msg_clear(m);
    }
    double reg_us = (double)(vtn_mono_ns() - t0) / 1e3 / n;
    printf("# oadrPoll parse+validate+extract: %.2f us\n", parse_us);
    printf("# oadrCreatePartyRegistration parse+validate+extract: %.2f us\n", reg_us);
    printf("# wk_write_response: %.2f us\n", resp_us);
    printf("# wk_write_created_party_registration: %.2f us\n", cpr_us);
    vtn_buf_free(&b);
    free(reg);
    free(poll);
    free(m);
}

/* oadrDistributeEvent from the API's JSON: every optional element once (a
 * full event), a minimal one, and none at all; valid under the official
 * schema, and of the venID targets only the receiving VEN's. */
static void test_distribute_event(void **state)
{
    (void)state;
    vtn_buf b;
    vtn_buf_init(&b, 1 << 20);
    json_error_t je;
    json_t *events = json_loads(
        "[{\"eventID\":\"evt-1\",\"modificationNumber\":2,\"modificationReason\":\"moved\","
        "\"modifiedDateTime\":\"2026-12-03T10:00:00Z\",\"createdDateTime\":\"2026-12-02T10:00:"
        "00Z\","
        "\"priority\":1,\"marketContext\":\"http://u.example/cpp\",\"eventStatus\":\"active\","
        "\"testEvent\":true,\"vtnComment\":\"a & b\",\"dtstart\":\"2026-12-03T14:00:00Z\","
        "\"duration\":\"PT1H\",\"tolerance\":\"PT5M\",\"notification\":\"P1D\",\"rampUp\":"
        "\"PT10M\","
        "\"recovery\":\"PT5M\",\"responseRequired\":\"never\","
        "\"signals\":[{\"signalName\":\"SIMPLE\",\"signalType\":\"level\",\"signalID\":\"s0\","
        "\"currentValue\":1,\"intervals\":[{\"duration\":\"PT30M\",\"value\":1},"
        "{\"uid\":\"u1\",\"duration\":\"PT30M\",\"value\":2}]},"
        "{\"signalName\":\"ELECTRICITY_PRICE\",\"signalType\":\"price\",\"signalID\":\"s1\","
        "\"itemBase\":{\"itemDescription\":\"price\",\"itemUnits\":\"USD\",\"siScaleCode\":"
        "\"none\"},"
        "\"intervals\":[{\"duration\":\"PT1H\",\"value\":0.125}]}],"
        "\"targets\":{\"venID\":[\"ven-other\",\"" VEN "\"],\"groupID\":[\"north\"],"
        "\"resourceID\":[\"r1\"],\"partyID\":[\"p1\"]}},"
        "{\"eventID\":\"evt-2\",\"modificationNumber\":0,\"modifiedDateTime\":\"2026-12-03T10:00:"
        "00Z\","
        "\"createdDateTime\":\"2026-12-03T10:00:00Z\",\"priority\":0,\"marketContext\":\"http://"
        "u.example/cpp\","
        "\"eventStatus\":\"far\",\"testEvent\":false,\"dtstart\":\"2026-12-04T14:00:00Z\","
        "\"duration\":\"PT2H\",\"responseRequired\":\"always\",\"signals\":[{\"signalName\":"
        "\"simple\","
        "\"signalType\":\"level\",\"signalID\":\"0\",\"intervals\":[{\"duration\":\"PT2H\","
        "\"value\":3}]}],"
        "\"targets\":{\"groupID\":[\"north\"]}}]",
        0, &je);
    assert_non_null(events);
    assert_int_equal(wk_write_distribute_event(&b, "rq-1", "openvtn-VTN", VEN, events), 0);
    assert_official(&b, 0);
    assert_non_null(strstr(b.data, "<ei:venID>" VEN "</ei:venID>"));
    assert_null(strstr(b.data, "ven-other"));
    assert_non_null(strstr(b.data, "<ei:vtnComment>a &amp; b</ei:vtnComment>"));
    assert_non_null(strstr(b.data, "<ei:testEvent>true</ei:testEvent>"));
    assert_true(strstr(b.data, "evt-1") < strstr(b.data, "evt-2")); /* the order given */
    size_t at = b.len;
    json_t *none = json_array();
    assert_int_equal(wk_write_distribute_event(&b, "rq-2", "openvtn-VTN", VEN, none), 0);
    assert_official(&b, at);
    assert_null(strstr(b.data + at, "oadrEvent"));
    json_decref(none);
    json_decref(events);
    vtn_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_service_paths),
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_poll_shape_matches_validator),
        cmocka_unit_test(test_every_sample_on_its_service),
        cmocka_unit_test(test_create_party_registration_fields),
        cmocka_unit_test(test_other_fields),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_invalid_registration_gets_created_party_registration),
        cmocka_unit_test(test_caps),
        cmocka_unit_test(test_lenient_variants),
        cmocka_unit_test(test_writers_validate_against_official_schema),
        cmocka_unit_test(test_distribute_event),
        cmocka_unit_test(test_writer_escaping),
        cmocka_unit_test(test_writer_errors_leave_buffer_unchanged),
        cmocka_unit_test(test_xcal_duration),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_measure),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
