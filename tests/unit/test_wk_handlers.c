/* The worker's request path without Redis: the route table, what each
 * handler's first round asks Redis for (the pipelined commands, byte for
 * byte), the replies that need no Redis, and the 503 + Retry-After every
 * request that needs Redis gets while it is down (never a hang). Behaviour
 * against a real Redis is covered by tests/protocol and tests/e2e.
 *
 * Every OpenADR reply produced here is validated against the official
 * 2.0b schema (VTN_OFFICIAL_SCHEMA). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "vtn/time.h"
#include "vtn/xml.h"
#include "wk_api.h"
#include "wk_oadr.h"

static wk_worker W;
static wk_req Q;
static vtn_xml_schema *g_official;
static vtn_xml_ctx *g_check;

static char *slurp(const char *name, size_t *len)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/xml/%s", VTN_TEST_DATA, name);
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    static char buf[1 << 16];
    *len = fread(buf, 1, sizeof buf - 1, f);
    buf[*len] = '\0';
    fclose(f);
    return buf;
}

static int setup(void **state)
{
    (void)state;
    char err[512];
    vtn_xml_global_init();
    /* The official schema loads its imports from disk: before the codec's lockdown. */
    if (vtn_xml_schema_from_file(VTN_OFFICIAL_SCHEMA, &g_official, err, sizeof err) != 0) {
        fprintf(stderr, "official schema: %s\n", err);
        return -1;
    }
    g_check = vtn_xml_ctx_new(g_official);
    if (wk_oadr_init() != 0)
        return -1;
    static char vtn_id[] = "openvtn-VTN", token[] = "t0ken", name[] = "test-worker";
    W.cfg.vtn_id = vtn_id;
    W.cfg.api_token = token;
    W.cfg.name = name;
    W.cfg.poll_freq_ms = 10000;
    W.policy = WK_POLICY_OPEN;
    W.entry[VTN_KIND_OADR] = &wk_oadr_entry; /* as main.c wires the rooms */
    W.entry[VTN_KIND_API] = &wk_h_api;
    W.codec = wk_codec_new();
    W.redis.m = &W.m; /* never connected: W.redis.c stays NULL */
    for (int i = 0; i < WK_SCRIPT__COUNT; i++)
        snprintf(W.redis.sha[i], sizeof W.redis.sha[i], "%040d", i);
    vtn_buf_init(&Q.cmds, WK_CMD_BUF_MAX);
    vtn_buf_init(&Q.body, WK_REPLY_MAX);
    Q.w = &W;
    return W.codec ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    wk_req_reset(&Q);
    free(Q.rep);
    Q.rep = NULL;
    vtn_buf_free(&Q.cmds);
    vtn_buf_free(&Q.body);
    wk_codec_free(&W.codec);
    vtn_xml_ctx_free(&g_check);
    vtn_xml_schema_free(&g_official);
    return 0;
}

/* Starts one request on the shared slot. */
static void start(int kind, const char *method, const char *path, const char *ctype,
                  const char *auth, const char *body, size_t blen, const char *fp)
{
    wk_req_reset(&Q);
    Q.w = &W;
    Q.env.id = 0x1122334455667788ull;
    snprintf(Q.rid, sizeof Q.rid, "%016llx", (unsigned long long)Q.env.id);
    Q.env.kind = (uint8_t)kind;
    Q.env.method = vtn_str_c(method);
    Q.env.path = vtn_str_c(path);
    Q.env.content_type = vtn_str_c(ctype);
    Q.env.authorization = vtn_str_c(auth);
    Q.env.fingerprint = vtn_str_c(fp ? fp : "");
    Q.env.body.p = body;
    Q.env.body.n = (uint32_t)blen;
    wk_req_start(&Q);
}

static void start_oadr(const char *service, const char *file)
{
    size_t len = 0;
    const char *body = slurp(file, &len);
    assert_non_null(body);
    char path[128];
    snprintf(path, sizeof path, "/OpenADR2/Simple/2.0b/%s", service);
    start(VTN_KIND_OADR, "POST", path, "application/xml", "", body, len, NULL);
}

static void start_api(const char *method, const char *path, const char *auth, const char *ctype,
                      const char *body)
{
    start(VTN_KIND_API, method, path, ctype, auth, body, body ? strlen(body) : 0, NULL);
}

/* The reply body is a valid OpenADR 2.0b document (official schema). */
static void assert_official(void)
{
    xmlDoc *doc = NULL;
    assert_int_equal(vtn_xml_parse(g_check, Q.body.data, Q.body.len, &doc), 0);
    int rc = vtn_xml_validate(g_check, doc);
    if (rc != 0)
        fprintf(stderr, "not valid: %s\n%.*s\n", vtn_xml_error(g_check), (int)Q.body.len,
                Q.body.data);
    assert_int_equal(rc, 0);
    xmlFreeDoc(doc);
}

static void assert_body_has(const char *s)
{
    if (Q.body.data == NULL || strstr(Q.body.data, s) == NULL)
        fail_msg("reply body lacks %s: %.*s", s, (int)Q.body.len, Q.body.data ? Q.body.data : "");
}

/* RESP of commands given as NULL-terminated argument lists, one after the
 * other; the whole list ends with a second NULL. */
static const char *resp(const char *a0, ...)
{
    static char out[4096];
    size_t o = 0;
    const char *argv[32];
    va_list ap;
    va_start(ap, a0);
    const char *a = a0;
    while (a != NULL) {
        int argc = 0;
        for (; a != NULL; a = va_arg(ap, const char *))
            argv[argc++] = a;
        o += (size_t)snprintf(out + o, sizeof out - o, "*%d\r\n", argc);
        for (int i = 0; i < argc; i++)
            o += (size_t)snprintf(out + o, sizeof out - o, "$%zu\r\n%s\r\n", strlen(argv[i]),
                                  argv[i]);
        a = va_arg(ap, const char *);
    }
    va_end(ap);
    return out;
}

/* The commands of the current round, as RESP. */
static void assert_cmd(const char *resp)
{
    if (Q.cmds.len < strlen(resp) || memcmp(Q.cmds.data, resp, strlen(resp)) != 0)
        fail_msg("commands differ:\nwant %s\ngot  %.*s", resp, (int)Q.cmds.len, Q.cmds.data);
}

/* Replies of the round, written as RESP (what Redis would send) and parsed
 * by hiredis' own reader; then the handler's next step runs on them, as a
 * pipelined round does, and any slow work it hands off (inline here). */
static void replies(const char *text)
{
    redisReader *rd = redisReaderCreate();
    redisReaderFeed(rd, text, strlen(text));
    int n = 0;
    void *r = NULL;
    while (n < Q.repcap && redisReaderGetReply(rd, &r) == REDIS_OK && r != NULL)
        Q.rep[n++] = r;
    redisReaderFree(rd);
    if (n != Q.ncmds)
        fail_msg("the round has %d commands, the test gives %d replies", Q.ncmds, n);
    Q.nrep = n;
    wk_req_step(&Q);
    wk_slow_collect(&W);
}

/* ---- route table ---- */

static void test_route_table(void **state)
{
    (void)state;
    /* Every payload a VEN may send has a row; the VTN's own messages have none. */
    for (int t = WK_MSG_QUERY_REGISTRATION; t <= WK_MSG_CANCEL_OPT; t++)
        assert_non_null(wk_route_find((enum wk_msg_type)t));
    for (int t = WK_MSG_CREATED_PARTY_REGISTRATION; t < WK_MSG__COUNT; t++)
        assert_null(wk_route_find((enum wk_msg_type)t));
    assert_null(wk_route_find(WK_MSG_NONE));
    assert_ptr_equal(wk_route_find(WK_MSG_POLL)->handler, &wk_h_poll);
    assert_ptr_equal(wk_route_find(WK_MSG_CREATE_PARTY_REGISTRATION)->handler,
                     &wk_h_create_registration);
    assert_ptr_equal(wk_route_find(WK_MSG_CANCEL_PARTY_REGISTRATION)->handler,
                     &wk_h_cancel_registration);
    assert_ptr_equal(wk_route_find(WK_MSG_CANCELED_PARTY_REGISTRATION)->handler,
                     &wk_h_canceled_registration);
    assert_ptr_equal(wk_route_find(WK_MSG_RESPONSE)->handler, &wk_h_response);
    assert_ptr_equal(wk_route_find(WK_MSG_QUERY_REGISTRATION)->handler, &wk_h_query_registration);
    /* Route table, codec and metrics label come from one list (wk_messages.h): a
     * type has a route exactly when some endpoint accepts it from a VEN. */
    for (int t = WK_MSG_NONE + 1; t < WK_MSG__COUNT; t++) {
        int accepted = 0;
        for (int svc = WK_SVC_NONE + 1; svc < WK_SVC__COUNT; svc++)
            accepted |= wk_msg_allowed((enum wk_service)svc, (enum wk_msg_type)t);
        assert_int_equal(wk_route_find((enum wk_msg_type)t) != NULL, accepted);
        assert_string_equal(wk_metrics_type_label(t), wk_msg_name((enum wk_msg_type)t));
    }
    /* One row per type. */
    for (size_t i = 0; i < wk_nroutes; i++)
        for (size_t j = i + 1; j < wk_nroutes; j++)
            assert_int_not_equal(wk_routes[i].type, wk_routes[j].type);
}

/* ---- replies that need no Redis ---- */

static void test_query_without_redis(void **state)
{
    (void)state;
    start_oadr("EiRegisterParty", "query_registration.xml");
    assert_true(Q.done);
    assert_int_equal(Q.status, 200);
    assert_int_equal(Q.mcode, 200);
    assert_body_has("oadrCreatedPartyRegistration");
    assert_body_has("<ei:vtnID>openvtn-VTN</ei:vtnID>");
    assert_body_has("PT10S");
    assert_null(strstr(Q.body.data, "registrationID"));
    assert_official();
}

static void test_malformed_xml(void **state)
{
    (void)state;
    static const char bad[] = "<oadr:oadrPayload xmlns:oadr=\"http://openadr.org/oadr-2.0b/2012/"
                              "07\"><oadr:oadrSignedObject>";
    start(VTN_KIND_OADR, "POST", "/OpenADR2/Simple/2.0b/OadrPoll", "application/xml", "", bad,
          sizeof bad - 1, NULL);
    assert_true(Q.done);
    assert_int_equal(Q.status, 200);
    assert_int_equal(Q.mcode, 454);
    assert_body_has("<ei:responseCode>454</ei:responseCode>");
    /* A requestID is always there, ours when the VEN gave none. */
    assert_body_has("<pyld:requestID>rsp-1122334455667788</pyld:requestID>");
    assert_official();
}

static void test_push_without_address(void **state)
{
    (void)state;
    size_t len = 0;
    const char *src = slurp("create_party_registration.xml", &len);
    assert_non_null(src);
    char body[8192];
    assert_true(len < sizeof body - 1); /* room for the edit below */
    memcpy(body, src, len + 1);
    char *p = strstr(body, "<oadr:oadrHttpPullModel>true");
    assert_non_null(p);
    memcpy(p + strlen("<oadr:oadrHttpPullModel>"), "false", 5);
    /* "true</..." became "false/..."; put the closing tag back. */
    char *end = p + strlen("<oadr:oadrHttpPullModel>") + 5;
    memmove(end + 1, end, strlen(end) + 1);
    *end = '<';
    assert_non_null(strstr(body, "<oadr:oadrHttpPullModel>false</oadr:oadrHttpPullModel>"));
    start(VTN_KIND_OADR, "POST", "/OpenADR2/Simple/2.0b/EiRegisterParty", "application/xml", "",
          body, strlen(body), NULL);
    assert_true(Q.done);
    assert_int_equal(Q.mcode, 454);
    assert_body_has("oadrTransportAddress is required");
    assert_body_has("oadrCreatedPartyRegistration");
    assert_official();
}

/* ---- first rounds: what each handler pipelines ---- */

static void test_poll_plan_and_redis_down(void **state)
{
    (void)state;
    start_oadr("OadrPoll", "poll.xml");
    assert_false(Q.done);
    assert_int_equal(Q.ncmds, 3);
    /* The set's hash (eh) is not asked: it is read with the events, when they are. */
    assert_cmd(resp("HMGET", "ven:{ven-00112233445566778899}", "r", "fp", "pr", "ev", "en", "ea",
                    "lp", NULL, "LLEN", "venq:{ven-00112233445566778899}", NULL, "GET",
                    "vtn:events:ver", NULL, NULL));
    /* Redis is down: 503 with Retry-After and an OpenADR body, at once. */
    wk_req *reqs[1] = {&Q};
    wk_batch_run(&W, reqs, 1);
    assert_true(Q.done);
    assert_int_equal(Q.status, 503);
    assert_non_null(strstr(Q.headers, "Retry-After: "));
    assert_body_has("<ei:responseCode>503</ei:responseCode>");
    assert_official();
}

static void test_create_plan(void **state)
{
    (void)state;
    start_oadr("EiRegisterParty", "create_party_registration.xml");
    assert_false(Q.done);
    /* The request's earlier claim (retry), then the name index: nothing is written before
     * the VTN has decided to accept the VEN. */
    assert_int_equal(Q.ncmds, 2);
    assert_cmd(resp("GET", "vtn:req:1122334455667788", NULL, "GET",
                    "vtn:venname:Building 7 & Annex", NULL, NULL));
}

static void test_cancel_plan(void **state)
{
    (void)state;
    start_oadr("EiRegisterParty", "cancel_party_registration.xml");
    assert_false(Q.done);
    assert_int_equal(Q.ncmds, 1);
    /* One script over the VEN's keys, with the request's memo key for retries. */
    assert_cmd(resp("EVALSHA", W.redis.sha[WK_SCRIPT_VENCANCEL], "4",
                    "ven:{ven-00112233445566778899}", "venq:{ven-00112233445566778899}",
                    "venpm:{ven-00112233445566778899}",
                    "venreq:{ven-00112233445566778899}:1122334455667788",
                    "reg-0a1b2c3d4e5f60718293", "", NULL, NULL));
}

static void test_unsupported_checks_registration(void **state)
{
    (void)state;
    start_oadr("EiReport", "create_report.xml");
    /* Not handled yet, but a venID still has to be a registered VEN first. */
    assert_false(Q.done);
    assert_int_equal(Q.ncmds, 1);
    assert_non_null(strstr(Q.cmds.data, "HMGET"));
}

/* ---- every stage, with the replies Redis would give ---- */

static void test_poll_stages(void **state)
{
    (void)state;
    /* Registered, nothing queued, no event changed since its last set: one round, 200. */
    start_oadr("OadrPoll", "poll.xml");
    replies("*6\r\n$3\r\nreg\r\n$-1\r\n$-1\r\n$1\r\n7\r\n$-1\r\n$-1\r\n:0\r\n$1\r\n7\r\n");
    assert_true(Q.done);
    assert_int_equal(Q.mcode, 200);
    assert_body_has("oadrResponse");
    assert_body_has(">ven-00112233445566778899<");
    assert_official();

    /* Not registered: 463, in one round. */
    start_oadr("OadrPoll", "poll.xml");
    replies("*6\r\n$-1\r\n$-1\r\n$-1\r\n$-1\r\n$-1\r\n$-1\r\n:0\r\n$-1\r\n");
    assert_true(Q.done);
    assert_int_equal(Q.mcode, 463);
    assert_official();

    /* Something queued: the pop script, then the message it popped (events wait). */
    start_oadr("OadrPoll", "poll.xml");
    replies("*6\r\n$3\r\nreg\r\n$-1\r\n$-1\r\n$-1\r\n$-1\r\n$-1\r\n:1\r\n$1\r\n9\r\n");
    assert_false(Q.done);
    assert_int_equal(Q.ncmds, 1);
    assert_cmd(resp("EVALSHA", W.redis.sha[WK_SCRIPT_POP], "3", "ven:{ven-00112233445566778899}",
                    "venq:{ven-00112233445566778899}", "venpm:{ven-00112233445566778899}",
                    "1122334455667788", WK_QUEUE_KINDS, NULL, NULL));
    replies("*2\r\n$9\r\nR|req-0bb\r\n:0\r\n");
    assert_true(Q.done);
    assert_body_has("oadrRequestReregistration");
    assert_official();

    /* A Redis error in a round is a 500, never a step on half the replies. */
    start_oadr("OadrPoll", "poll.xml");
    replies("-ERR boom\r\n:0\r\n$-1\r\n");
    assert_true(Q.done);
    assert_int_equal(Q.status, 500);
}

/* RESP of a HGETALL of an event record (vtn:event:<id>) for the VEN of
 * poll.xml: created and modified at start - 1 h, status from now. */
static const char *event_record(char *out, size_t outlen, int64_t start, int64_t end, int mn,
                                int cancelled, const char *targets)
{
    char body[1024], f[8][400];
    snprintf(body, sizeof body,
             "{\"marketContext\":\"http://u.example/cpp\",\"priority\":0,\"testEvent\":false,"
             "\"responseRequired\":\"always\",\"dtstart\":\"2026-12-03T14:00:00Z\","
             "\"duration\":\"PT1H\",\"signals\":[{\"signalName\":\"SIMPLE\",\"signalType\":"
             "\"level\",\"signalID\":\"0\",\"intervals\":[{\"duration\":\"PT1H\",\"value\":2}]}],"
             "\"targets\":%s}",
             targets);
    snprintf(f[0], sizeof f[0], "%d", mn);
    snprintf(f[1], sizeof f[1], "%lld", (long long)start);
    snprintf(f[2], sizeof f[2], "%lld", (long long)end);
    snprintf(f[3], sizeof f[3], "%lld", (long long)(start - 3600000));
    const char *kv[] = {"j", body, "p",  "prg-1", "mn", f[0], "s", f[1],
                        "e", f[2], "ct", f[3],    "mt", f[3], "x", cancelled ? "1" : "0"};
    size_t o = (size_t)snprintf(out, outlen, "*16\r\n");
    for (size_t i = 0; i < 16; i++)
        o += (size_t)snprintf(out + o, outlen - o, "$%zu\r\n%s\r\n", strlen(kv[i]), kv[i]);
    return out;
}

/* Events changed since the VEN's last set: the events are read, the VEN
 * gets its set when it differs from what it was sent (else nothing), and
 * the cursor moves on either way. */
static void test_poll_event_stages(void **state)
{
    (void)state;
    char ev1[4096], ev2[4096], ev3[4096], all[12400];
    int64_t now = vtn_now_ms();
    /* ev-b: active, for this VEN; ev-a: far, for this VEN; ev-c: another VEN's. */
    event_record(ev1, sizeof ev1, now + 7200000, now + 10800000, 0, 0,
                 "{\"venID\":[\"ven-00112233445566778899\"]}");
    event_record(ev2, sizeof ev2, now - 600000, now + 3000000, 2, 0,
                 "{\"venID\":[\"ven-00112233445566778899\"]}");
    event_record(ev3, sizeof ev3, now, now + 3600000, 0, 0, "{\"venID\":[\"ven-other\"]}");
    /* Each record comes with the VEN's answer to it: none here. */
    snprintf(all, sizeof all, "%s$-1\r\n%s$-1\r\n%s$-1\r\n", ev1, ev2, ev3);

    start_oadr("OadrPoll", "poll.xml");
    replies("*6\r\n$3\r\nreg\r\n$-1\r\n$-1\r\n$1\r\n6\r\n$-1\r\n$-1\r\n:0\r\n$1\r\n7\r\n");
    assert_false(Q.done);
    /* The version came with the record: the round reads only the targets and
     * the events that have not ended by now (the handler's now, read while
     * it ran: between now and this check). */
    assert_cmd(resp("HGET", "ven:{ven-00112233445566778899}", "eh", NULL, "SMEMBERS",
                    "ventargets:{ven-00112233445566778899}", NULL, NULL));
    const char *z = strstr(Q.cmds.data, "$14\r\nvtn:events:end\r\n$");
    assert_non_null(z);
    const char *after = strstr(z + 5, "\r\n(");
    assert_non_null(after);
    long long shown = atoll(after + 3);
    assert_in_range(shown, now, vtn_now_ms());
    assert_non_null(strstr(z, "\r\n$4\r\n+inf\r\n$7\r\nBYSCORE\r\n$5\r\nLIMIT\r\n$1\r\n0\r\n"
                              "$4\r\n1000\r\n"));
    replies("$-1\r\n*0\r\n*3\r\n$4\r\nev-a\r\n$4\r\nev-b\r\n$4\r\nev-c\r\n");
    assert_int_equal(Q.ncmds, 6);
    assert_cmd(resp("HGETALL", "vtn:event:ev-a", NULL, "HGET", "vtn:event:ev-a:vens:803",
                    "ven-00112233445566778899", NULL, "HGETALL", "vtn:event:ev-b", NULL, NULL));
    replies(all);
    assert_false(Q.done);
    assert_int_equal(Q.ncmds, 1); /* the evsent script: the cursor moves to version 7 */
    assert_non_null(strstr(Q.cmds.data, W.redis.sha[WK_SCRIPT_EVSENT]));
    assert_non_null(strstr(Q.cmds.data, "$1\r\n7\r\n"));
    replies(":1\r\n");
    assert_true(Q.done);
    assert_body_has("oadrDistributeEvent");
    assert_body_has("<ei:vtnID>");
    assert_null(strstr(Q.body.data, "ev-c"));
    /* The active event first, whatever the order of the list. */
    assert_true(strstr(Q.body.data, "ev-b") < strstr(Q.body.data, "ev-a"));
    assert_body_has("<ei:eventStatus>active</ei:eventStatus>");
    assert_body_has("<ei:eventStatus>far</ei:eventStatus>");
    assert_official();

    /* The change was another VEN's: the set hashes as sent last, nothing is sent. */
    start_oadr("OadrPoll", "poll.xml");
    replies("*6\r\n$3\r\nreg\r\n$-1\r\n$-1\r\n$1\r\n6\r\n$-1\r\n$-1\r\n:0\r\n$1\r\n7\r\n");
    replies("$-1\r\n*1\r\n$5\r\nsouth\r\n*1\r\n$4\r\nev-c\r\n");
    snprintf(all, sizeof all, "%s$-1\r\n", ev3);
    replies(all);
    assert_int_equal(Q.ncmds, 1);
    replies(":1\r\n");
    assert_true(Q.done);
    assert_body_has("oadrResponse"); /* the VEN never had events: its empty set is unchanged */

    /* No event left for it (one ended, none else): an empty distribute, the implied cancel. */
    start_oadr("OadrPoll", "poll.xml");
    replies("*6\r\n$3\r\nreg\r\n$-1\r\n$-1\r\n$1\r\n7\r\n$1\r\n5\r\n$1\r\n0\r\n:0\r\n"
            "$1\r\n7\r\n");
    assert_false(Q.done); /* its earliest end (5 ms after the epoch) has passed */
    replies("$16\r\n0123456789abcdef\r\n*0\r\n*0\r\n");
    assert_int_equal(Q.ncmds, 1);
    replies(":1\r\n");
    assert_true(Q.done);
    assert_body_has("oadrDistributeEvent");
    assert_null(strstr(Q.body.data, "oadrEvent>"));
    assert_official();
    /* The VEN has this set already and has not answered (ea=1): it is sent
     * again, and with nothing new to record the reply leaves without the
     * evsent round. */
    char h[17];
    {
        start_oadr("OadrPoll", "poll.xml");
        replies("*6\r\n$3\r\nreg\r\n$-1\r\n$-1\r\n$1\r\n6\r\n$-1\r\n$-1\r\n:0\r\n$1\r\n7\r\n");
        replies("$-1\r\n*0\r\n*1\r\n$4\r\nev-b\r\n");
        snprintf(all, sizeof all, "%s$-1\r\n", ev2);
        replies(all);
        assert_int_equal(Q.ncmds, 1); /* first time: the cursor is written */
        const char *hp = strstr(Q.cmds.data, "$16\r\n");
        assert_non_null(hp);
        memcpy(h, hp + 5, 16);
        h[16] = '\0';
        replies(":1\r\n");
        assert_true(Q.done);
        assert_body_has("oadrDistributeEvent");
    }
    char rec[256], round2[64];
    snprintf(rec, sizeof rec,
             "*6\r\n$3\r\nreg\r\n$-1\r\n$-1\r\n$1\r\n7\r\n$%d\r\n%lld\r\n$1\r\n1\r\n"
             ":0\r\n$1\r\n7\r\n",
             (int)snprintf(NULL, 0, "%lld", (long long)(now + 3000000)),
             (long long)(now + 3000000));
    start_oadr("OadrPoll", "poll.xml");
    replies(rec);
    assert_false(Q.done); /* it awaits an answer: the set is read again, with its hash */
    snprintf(round2, sizeof round2, "$16\r\n%s\r\n*0\r\n*1\r\n$4\r\nev-b\r\n", h);
    replies(round2);
    /* Its participation field: received at modificationNumber 2, no answer. */
    snprintf(all, sizeof all, "%s$9\r\n2 - - - -\r\n", ev2);
    replies(all);
    assert_true(Q.done); /* no evsent round */
    assert_body_has("oadrDistributeEvent");
    assert_body_has("ev-b");
    assert_official();
}

/* oadrRequestEvent: the registered-VEN check with the events list in one
 * round, then the records, replyLimit honoured, the VEN's requestID. */
static void test_request_event_stages(void **state)
{
    (void)state;
    char ev1[4096], ev2[4096], all[8300];
    int64_t now = vtn_now_ms();
    event_record(ev1, sizeof ev1, now + 7200000, now + 10800000, 0, 0,
                 "{\"venID\":[\"ven-00112233445566778899\"]}");
    event_record(ev2, sizeof ev2, now + 3600000, now + 7200000, 1, 1, "{\"groupID\":[\"g\"]}");
    snprintf(all, sizeof all, "%s$-1\r\n%s$-1\r\n", ev1, ev2);
    start_oadr("EiEvent", "request_event.xml");
    assert_int_equal(Q.ncmds, 4);
    assert_non_null(strstr(Q.cmds.data, "HMGET"));
    assert_non_null(strstr(Q.cmds.data, "vtn:events:ver"));
    /* The VEN is in group g: ev-b reaches it through its groupID. */
    replies("*2\r\n$3\r\nreg\r\n$-1\r\n*1\r\n$3\r\ng:g\r\n$1\r\n4\r\n*2\r\n$4\r\nev-a\r\n$4\r\n"
            "ev-b\r\n");
    assert_int_equal(Q.ncmds, 4);
    replies(all);
    assert_int_equal(Q.ncmds, 1); /* the whole set went out: the cursor moves */
    assert_non_null(strstr(Q.cmds.data, W.redis.sha[WK_SCRIPT_EVSENT]));
    replies(":1\r\n");
    assert_true(Q.done);
    assert_body_has("<pyld:requestID>reqev-1</pyld:requestID>");
    assert_body_has("<ei:eventStatus>cancelled</ei:eventStatus>");
    assert_body_has("<ei:groupID>g</ei:groupID>");
    /* Same priority, neither active: the earlier start first. */
    assert_true(strstr(Q.body.data, "ev-b") < strstr(Q.body.data, "ev-a"));
    assert_official();

    /* Not registered: 463 in its own reply type. */
    start_oadr("EiEvent", "request_event.xml");
    replies("*2\r\n$-1\r\n$-1\r\n*0\r\n$-1\r\n*0\r\n");
    assert_true(Q.done);
    assert_int_equal(Q.mcode, 463);
    assert_body_has("oadrDistributeEvent");
    assert_official();
}

/* oadrCreatedEvent (created_event.xml: evt-1 mn 0 optIn, evt-2 mn 3
 * optOut): the registered-VEN check with each event's modificationNumber,
 * then one evopt script per valid answer; the first refusal is answered. */
static void test_created_event_stages(void **state)
{
    (void)state;
    start_oadr("EiEvent", "created_event.xml");
    assert_int_equal(Q.msg.n_event_responses, 2);
    assert_string_equal(Q.msg.event_responses[1].opt, "optOut");
    assert_int_equal(Q.msg.event_responses[1].mod_number, 3);
    assert_int_equal(Q.ncmds, 3);
    assert_non_null(strstr(Q.cmds.data, "vtn:event:evt-1"));
    /* evt-1 is at 0 (recorded), evt-2 is at 4: 450, out of sequence */
    replies("*2\r\n$3\r\nreg\r\n$-1\r\n$1\r\n0\r\n$1\r\n4\r\n");
    assert_false(Q.done);
    assert_int_equal(Q.ncmds, 1);
    assert_non_null(strstr(Q.cmds.data, W.redis.sha[WK_SCRIPT_EVOPT]));
    /* the shard of ven-00112233445566778899 (vtn_event_vens_shard) */
    assert_non_null(strstr(Q.cmds.data, "vtn:event:evt-1:vens:803\r\n"));
    replies(":1\r\n");
    assert_true(Q.done);
    assert_int_equal(Q.mcode, 450);
    assert_body_has("eventID evt-2: modificationNumber 3 is not the current one (4)");
    assert_official();

    /* Both unknown: 452, nothing written. */
    start_oadr("EiEvent", "created_event.xml");
    replies("*2\r\n$3\r\nreg\r\n$-1\r\n$-1\r\n$-1\r\n");
    assert_true(Q.done);
    assert_int_equal(Q.mcode, 452);
    assert_body_has("eventID evt-1 is not an event of this VTN");
    assert_official();
}

/* A new VEN's registration through its five rounds. */
static void test_create_stages(void **state)
{
    (void)state;
    start_oadr("EiRegisterParty", "create_party_registration.xml");
    /* No earlier attempt, nobody owns the name. */
    replies("$-1\r\n$-1\r\n");
    assert_int_equal(Q.ncmds, 1);
    assert_non_null(strstr(Q.cmds.data, "HMGET"));
    /* The target (a fresh venID) has no record: claim ids under the request id. */
    replies("*6\r\n$-1\r\n$-1\r\n$-1\r\n$-1\r\n$-1\r\n$-1\r\n");
    assert_int_equal(Q.ncmds, 2);
    assert_non_null(strstr(Q.cmds.data, "vtn:req:1122334455667788"));
    /* A parallel attempt of the same request won: its ids are the ones used. */
    replies("+OK\r\n$17\r\nven-aaaa reg-bbbb\r\n");
    assert_int_equal(Q.ncmds, 3); /* ZADD, name claim, registrationID claim */
    assert_non_null(strstr(Q.cmds.data, "ven-aaaa"));
    assert_non_null(strstr(Q.cmds.data, "vtn:venname:Building 7 & Annex"));
    replies(":1\r\n$8\r\nven-aaaa\r\n$8\r\nven-aaaa\r\n");
    assert_int_equal(Q.ncmds, 1);
    assert_non_null(strstr(Q.cmds.data, W.redis.sha[WK_SCRIPT_REGISTER]));
    replies(":1\r\n");
    assert_true(Q.done);
    assert_int_equal(Q.mcode, 200);
    assert_body_has("<ei:venID>ven-aaaa</ei:venID>");
    assert_body_has("<ei:registrationID>reg-bbbb</ei:registrationID>");
    assert_official();

    /* The same, but another VEN took the name between lookup and claim. */
    start_oadr("EiRegisterParty", "create_party_registration.xml");
    replies("$-1\r\n$-1\r\n");
    replies("*6\r\n$-1\r\n$-1\r\n$-1\r\n$-1\r\n$-1\r\n$-1\r\n");
    replies("+OK\r\n$17\r\nven-aaaa reg-bbbb\r\n");
    replies(":1\r\n$8\r\nven-zzzz\r\n$8\r\nven-aaaa\r\n");
    assert_true(Q.done);
    assert_int_equal(Q.mcode, 463);
    assert_body_has("was just taken");
    assert_official();
}

/* Redis at maxmemory refuses a write with -OOM (here the claim of the ids,
 * and inside the register script): the VEN gets 503 with Retry-After in
 * its reply type with the reason, never 500, and it is counted. */
static void test_storage_full(void **state)
{
    (void)state;
    uint64_t before = atomic_load(&W.m.redis_oom);
    start_oadr("EiRegisterParty", "create_party_registration.xml");
    replies("$-1\r\n$-1\r\n");
    replies("*6\r\n$-1\r\n$-1\r\n$-1\r\n$-1\r\n$-1\r\n$-1\r\n");
    replies("-OOM command not allowed when used memory > 'maxmemory'.\r\n$-1\r\n");
    assert_true(Q.done);
    assert_int_equal(Q.status, 503);
    assert_int_equal(Q.mcode, 503);
    assert_non_null(strstr(Q.headers, "Retry-After: 30"));
    assert_body_has("oadrCreatedPartyRegistration");
    assert_body_has("<ei:responseCode>503</ei:responseCode>");
    assert_body_has("VTN storage full, retry later");
    assert_official();
    assert_int_equal(atomic_load(&W.m.redis_oom), before + 1);

    /* The same error raised inside a script. */
    start_oadr("EiRegisterParty", "create_party_registration.xml");
    replies("$-1\r\n$-1\r\n");
    replies("*6\r\n$-1\r\n$-1\r\n$-1\r\n$-1\r\n$-1\r\n$-1\r\n");
    replies("+OK\r\n$17\r\nven-aaaa reg-bbbb\r\n");
    replies(":1\r\n$8\r\nven-aaaa\r\n$8\r\nven-aaaa\r\n");
    replies("-OOM command not allowed when used memory > 'maxmemory'. script: 0123, on "
            "@user_script:9.\r\n");
    assert_int_equal(Q.status, 503);
    assert_body_has("VTN storage full, retry later");
    assert_official();

    /* The API: JSON. Any other Redis error stays a 500. */
    start_api("GET", "/api/v1/vens/ven-7", "Bearer t0ken", "", NULL);
    replies("-OOM command not allowed when used memory > 'maxmemory'.\r\n:0\r\n*0\r\n*0\r\n");
    assert_int_equal(Q.status, 503);
    assert_string_equal(Q.ctype, "application/json");
    assert_body_has("storage full");
    start_api("GET", "/api/v1/vens/ven-7", "Bearer t0ken", "", NULL);
    replies("-WRONGTYPE Operation against a key holding the wrong kind of value\r\n:0\r\n*0\r\n"
            "*0\r\n");
    assert_int_equal(Q.status, 500);
    assert_int_equal(atomic_load(&W.m.redis_oom), before + 3);
}

/* A VEN that names itself and its registration: its record comes with the
 * lookups, so a re-registration takes three rounds (lookups, ZADD, the
 * register script). */
static void test_reregistration_stages(void **state)
{
    (void)state;
    size_t len = 0;
    const char *src = slurp("create_party_registration.xml", &len);
    assert_non_null(src);
    static char body[8192];
    const char *at = strstr(src, "</pyld:requestID>");
    assert_non_null(at);
    at += strlen("</pyld:requestID>");
    snprintf(body, sizeof body,
             "%.*s<ei:registrationID>reg-1</ei:registrationID>"
             "<ei:venID>ven-1</ei:venID>%s",
             (int)(at - src), src, at);
    start(VTN_KIND_OADR, "POST", "/OpenADR2/Simple/2.0b/EiRegisterParty", "application/xml", "",
          body, strlen(body), NULL);
    assert_int_equal(Q.ncmds, 4);
    assert_non_null(strstr(Q.cmds.data, "ven:{ven-1}"));
    /* No earlier attempt; reg-1 and the name are ven-1's; its record. */
    replies("$-1\r\n$5\r\nven-1\r\n$5\r\nven-1\r\n"
            "*6\r\n$1\r\n1\r\n$18\r\nBuilding 7 & Annex\r\n$-1\r\n$-1\r\n$5\r\nreg-1\r\n$-1\r\n");
    assert_int_equal(Q.ncmds, 1); /* ZADD: nothing new to claim */
    replies(":0\r\n");
    assert_int_equal(Q.ncmds, 1);
    assert_non_null(strstr(Q.cmds.data, W.redis.sha[WK_SCRIPT_REGISTER]));
    replies(":1\r\n");
    assert_true(Q.done);
    assert_int_equal(Q.mcode, 200);
    assert_body_has("<ei:venID>ven-1</ei:venID>");
    assert_body_has("<ei:registrationID>reg-1</ei:registrationID>");
    assert_official();
}

static void test_cancel_stages(void **state)
{
    (void)state;
    start_oadr("EiRegisterParty", "cancel_party_registration.xml");
    /* The script deleted the record: the indexes are cleaned, then the answer. */
    replies("$48\r\n[\"D\",\"Building 7\",\"\",\"reg-0a1b2c3d4e5f60718293\"]\r\n");
    assert_false(Q.done);
    assert_int_equal(Q.ncmds, 4); /* venreg, venname, ZREM of vtn:vens and vtn:vens:online */
    replies(":1\r\n:1\r\n:1\r\n:1\r\n");
    assert_true(Q.done);
    assert_int_equal(Q.mcode, 200);
    assert_body_has("oadrCanceledPartyRegistration");
    assert_official();

    /* The script's refusal: not this VEN's registration. */
    start_oadr("EiRegisterParty", "cancel_party_registration.xml");
    replies("$7\r\n[\"452\"]\r\n");
    assert_true(Q.done);
    assert_int_equal(Q.mcode, 452);
}

static void test_unsupported_stages(void **state)
{
    (void)state;
    start_oadr("EiReport", "create_report.xml");
    replies("*2\r\n$3\r\nreg\r\n$-1\r\n");
    assert_true(Q.done);
    assert_int_equal(Q.mcode, WK_OADR_NOT_RECOGNIZED);
    assert_official();
}

/* EiOpt: a schedule whose components all ended is refused before any
 * Redis round; the time checks need nothing stored. */
static void test_create_opt_past_schedule(void **state)
{
    (void)state;
    start_oadr("EiOpt", "create_opt.xml"); /* its one component is in May 2024 */
    assert_true(Q.done);
    assert_int_equal(Q.ncmds, 0);
    assert_int_equal(Q.mcode, WK_OADR_INVALID_DATA);
    assert_non_null(strstr(Q.body.data, "ended before now"));
    assert_official();
}

/* oadrCancelOpt: the VEN check, its opt and the request's memo in one round;
 * the optcancel script over the VEN's keys (a schedule: no event keys);
 * oadrCanceledOpt 200 with the optID. */
static void test_cancel_opt_stages(void **state)
{
    (void)state;
    start_oadr("EiOpt", "cancel_opt.xml");
    assert_false(Q.done);
    assert_int_equal(Q.ncmds, 3);
    replies("*2\r\n$3\r\nreg\r\n$-1\r\n"
            "$30\r\n{\"optID\":\"opt-5\",\"m\":\"member\"}\r\n"
            ":0\r\n");
    assert_false(Q.done);
    assert_cmd(resp("EVALSHA", W.redis.sha[WK_SCRIPT_OPTCANCEL], "3",
                    "venopts:{ven-00112233445566778899}", "vtn:opts:sched",
                    "venreq:{ven-00112233445566778899}:1122334455667788", "opt-5",
                    "ven-00112233445566778899", NULL, NULL, NULL));
    replies(":1\r\n");
    assert_true(Q.done);
    assert_int_equal(Q.mcode, 200);
    assert_non_null(strstr(Q.body.data, "<ei:optID>opt-5</ei:optID>"));
    assert_official();
}

/* oadrCancelOpt of an optID the VEN does not have: 452, nothing written. */
static void test_cancel_opt_unknown(void **state)
{
    (void)state;
    start_oadr("EiOpt", "cancel_opt.xml");
    replies("*2\r\n$3\r\nreg\r\n$-1\r\n$-1\r\n:0\r\n");
    assert_true(Q.done);
    assert_int_equal(Q.mcode, WK_OADR_INVALID_ID);
    assert_official();
}

/* Delivers a round's replies to Q the way wk_req_step does, without a step. */
static void deliver(redisReply *r)
{
    if (Q.rep[0])
        freeReplyObject(Q.rep[0]);
    Q.rep[0] = r;
    Q.nrep = 1;
    Q.rep_round = Q.round++;
    Q.ncmds = 0;
}

/* A handle reads its own round only: kept past it, it reads nothing rather
 * than another command's reply. */
static void test_handles(void **state)
{
    (void)state;
    wk_req_reset(&Q);
    Q.w = &W;
    wk_rh h0 = wk_cmd(&Q, "GET", "a", NULL);
    assert_true(h0 > 0);
    assert_null(wk_rep(&Q, h0)); /* no replies yet */
    assert_null(wk_rep(&Q, 0));  /* 0: not asked */
    redisReply *r = calloc(1, sizeof *r);
    r->type = REDIS_REPLY_INTEGER;
    r->integer = 7;
    deliver(r);
    assert_ptr_equal(wk_rep(&Q, h0), r);
    assert_int_equal(wk_rep_int(&Q, h0, -1), 7);
    wk_rh h1 = wk_cmd(&Q, "GET", "b", NULL); /* same place in the next round */
    assert_int_not_equal(h0, h1);
    redisReply *r2 = calloc(1, sizeof *r2);
    r2->type = REDIS_REPLY_NIL;
    deliver(r2);
    assert_null(wk_rep(&Q, h0)); /* stale: round 1's handle */
    assert_ptr_equal(wk_rep(&Q, h1), r2);
    assert_int_equal(wk_rep_int(&Q, h1, -1), -1); /* not an integer: the default */
    wk_req_reset(&Q);
}

/* ---- memory budget and large documents ---- */

/* poll.xml with a comment of pad bytes inside: valid, and as big as wanted. */
static char *big_poll(size_t pad, size_t *len)
{
    size_t plen = 0;
    const char *src = slurp("poll.xml", &plen);
    assert_non_null(src);
    const char *at = strstr(src, "<oadr:oadrSignedObject>");
    assert_non_null(at);
    char *b = malloc(plen + pad + 16);
    size_t head = (size_t)(at - src), o = 0;
    memcpy(b, src, head);
    o = head;
    memcpy(b + o, "<!--", 4);
    o += 4;
    memset(b + o, 'x', pad);
    o += pad;
    memcpy(b + o, "-->", 3);
    o += 3;
    memcpy(b + o, at, plen - head);
    o += plen - head;
    b[o] = '\0';
    *len = o;
    return b;
}

/* A batch of big documents: the worker charges each one before parsing,
 * refuses what would pass the budget (503 + Retry-After, with the reason),
 * never holds more than the budget, frees each tree right after decode,
 * and gets every byte back when the requests are released. */
static void test_budget_batch(void **state)
{
    (void)state;
    enum { N = 8 };
    size_t len = 0;
    char *body = big_poll(100 << 10, &len); /* over the inline-parse size: slow-work path */
    wk_req *r = calloc(N, sizeof *r);
    size_t saved = W.mem_budget;
    W.mem_budget = 16u << 20; /* room for four such requests */
    int admitted = 0, refused = 0;
    for (int i = 0; i < N; i++) {
        wk_req *q = &r[i];
        vtn_buf_init(&q->cmds, WK_CMD_BUF_MAX);
        vtn_buf_init(&q->body, WK_REPLY_MAX);
        q->w = &W;
        q->env.id = (uint64_t)i + 1;
        snprintf(q->rid, sizeof q->rid, "%016llx", (unsigned long long)q->env.id);
        q->env.kind = VTN_KIND_OADR;
        q->env.path = vtn_str_c("/OpenADR2/Simple/2.0b/OadrPoll");
        q->env.body.p = body;
        q->env.body.n = (uint32_t)len;
        if (wk_budget_admit(&W, q, len + 200) < 0) {
            refused++;
            assert_int_equal(q->status, 503);
            assert_non_null(strstr(q->headers, "Retry-After: "));
            assert_non_null(memmem(q->body.data, q->body.len, "memory budget", 13));
        } else {
            admitted++;
            wk_req_start(q);
        }
        assert_true(W.mem_used <= W.mem_budget);
    }
    assert_int_equal(admitted, 4);
    assert_int_equal(refused, N - 4);
    wk_slow_collect(&W); /* the parses handed off finish */
    for (int i = 0; i < N; i++) {
        if (r[i].cost == 0)
            continue;
        /* Decoded and routed: the poll's first round is queued, its tree already gone. */
        assert_int_equal(r[i].msg.type, WK_MSG_POLL);
        assert_null(r[i].msg.doc);
        assert_int_equal(r[i].ncmds, 3);
    }
    for (int i = 0; i < N; i++) {
        wk_budget_release(&W, &r[i]);
        wk_req_reset(&r[i]);
        free(r[i].rep);
        vtn_buf_free(&r[i].cmds);
        vtn_buf_free(&r[i].body);
    }
    assert_int_equal(W.mem_used, 0);

    /* One that can never fit: 413 with the reason, nothing charged. */
    W.mem_budget = 1u << 20;
    wk_req_reset(&Q);
    Q.w = &W;
    Q.env.kind = VTN_KIND_OADR;
    Q.env.body.p = body;
    Q.env.body.n = (uint32_t)len;
    assert_int_equal(wk_budget_admit(&W, &Q, len + 200), -ENOMEM);
    assert_int_equal(Q.status, 413);
    assert_body_has("VTN_WORKER_MEMORY");
    assert_int_equal(W.mem_used, 0);
    W.mem_budget = saved;
    free(r);
    free(body);
}

/* The real helper thread: a large parse runs there, the eventfd wakes the
 * loop, and the request continues on the loop's thread. */
static void test_slow_thread(void **state)
{
    (void)state;
    char err[256];
    assert_int_equal(wk_slow_start(&W, err, sizeof err), 0);
    assert_true(wk_slow_fd(&W) >= 0);
    size_t len = 0;
    char *body = big_poll(200 << 10, &len);
    start(VTN_KIND_OADR, "POST", "/OpenADR2/Simple/2.0b/OadrPoll", "application/xml", "", body, len,
          NULL);
    assert_int_equal(Q.phase, WK_REQ_SLOW); /* handed off, the loop is free */
    int resumed = 0;
    for (int i = 0; i < 50 && !resumed; i++) { /* bounded: 50 waits of at most 100 ms */
        wk_slow_wait(&W, 100);
        resumed = wk_slow_collect(&W);
    }
    assert_int_equal(resumed, 1);
    assert_int_equal(Q.msg.type, WK_MSG_POLL);
    assert_null(Q.msg.doc);
    assert_int_equal(Q.ncmds, 3);
    wk_slow_stop(&W);
    assert_null(W.slow);
    free(body);
}

/* ---- management API ---- */

static void test_api_auth_and_routing(void **state)
{
    (void)state;
    start_api("GET", "/api/v1/vens", "", "", NULL);
    assert_int_equal(Q.status, 401);
    assert_non_null(strstr(Q.headers, "WWW-Authenticate: Bearer"));
    assert_body_has("\"error\"");

    start_api("GET", "/api/v1/vens", "Bearer wrong", "", NULL);
    assert_int_equal(Q.status, 401);

    start_api("GET", "/api/v1/nothing", "Bearer t0ken", "", NULL);
    assert_int_equal(Q.status, 404);
    assert_body_has("no such resource");

    /* Longer than any route takes: 414 with the reason, not "no such resource". */
    static char longq[5200];
    memcpy(longq, "/api/v1/vens?name=", 18);
    memset(longq + 18, 'a', sizeof longq - 19);
    start_api("GET", longq, "Bearer t0ken", "", NULL);
    assert_int_equal(Q.status, 414);
    assert_body_has("query string longer than");

    start_api("PUT", "/api/v1/vens/ven-1", "Bearer t0ken", "", NULL);
    assert_int_equal(Q.status, 405);
    assert_string_equal(Q.headers, "Allow: GET, DELETE\r\n");
    assert_body_has("\"error\"");

    start_api("GET", "/api/v1/vens?limit=0", "Bearer t0ken", "", NULL);
    assert_int_equal(Q.status, 400);
    assert_body_has("limit");

    start_api("POST", "/api/v1/vens", "Bearer t0ken", "text/plain", "{\"venName\":\"a\"}");
    assert_int_equal(Q.status, 415);

    start_api("POST", "/api/v1/vens", "Bearer t0ken", "application/json", "{\"x\":1}");
    assert_int_equal(Q.status, 400);
    assert_body_has("unknown field");

    start_api("POST", "/api/v1/vens/ven-1/reregister?x=1", "Bearer t0ken", "", NULL);
    assert_int_equal(Q.status, 400);

    /* No token configured: the API is off, and says how to turn it on. */
    char *saved = W.cfg.api_token;
    static char empty[] = "";
    W.cfg.api_token = empty;
    start_api("GET", "/api/v1/vens", "Bearer t0ken", "", NULL);
    assert_int_equal(Q.status, 503);
    assert_body_has("VTN_API_TOKEN");
    W.cfg.api_token = saved;
}

static void test_api_plans(void **state)
{
    (void)state;
    start_api("GET", "/api/v1/vens?limit=2", "Bearer t0ken", "", NULL);
    assert_false(Q.done);
    assert_cmd(resp("ZRANGEBYLEX", "vtn:vens", "-", "+", "LIMIT", "0", "3", NULL, NULL));

    char path[200], cur[64];
    assert_int_equal(wk_cursor_encode("ven-5", cur, sizeof cur), 0);
    snprintf(path, sizeof path, "/api/v1/vens?cursor=%s", cur);
    start_api("GET", path, "Bearer t0ken", "", NULL);
    assert_cmd(resp("ZRANGEBYLEX", "vtn:vens", "(ven-5", "+", "LIMIT", "0", "101", NULL, NULL));

    start_api("GET", "/api/v1/vens?name=meter%201", "Bearer t0ken", "", NULL);
    assert_cmd(resp("GET", "vtn:venname:meter 1", NULL, NULL));

    start_api("GET", "/api/v1/vens/ven-7", "Bearer t0ken", "", NULL);
    assert_int_equal(Q.ncmds, 4);
    assert_cmd(resp("HGETALL", "ven:{ven-7}", NULL, "LLEN", "venq:{ven-7}", NULL, "SMEMBERS",
                    "ventargets:{ven-7}", NULL, "HVALS", "venrr:{ven-7}", NULL, NULL));

    /* And with Redis down, a JSON 503 with Retry-After. */
    wk_req *reqs[1] = {&Q};
    wk_batch_run(&W, reqs, 1);
    assert_int_equal(Q.status, 503);
    assert_non_null(strstr(Q.headers, "Retry-After: "));
    assert_string_equal(Q.ctype, "application/json");
    assert_body_has("\"error\"");
}

/* ---- queued messages ---- */

static void test_render_queued(void **state)
{
    (void)state;
    static const char c[] = "C|req-00aa|reg-0011";
    vtn_buf_reset(&Q.body);
    assert_int_equal(wk_render_queued(&Q.body, c, sizeof c - 1, "ven-0042"), 0);
    assert_body_has("oadrCancelPartyRegistration");
    assert_body_has(">req-00aa<");
    assert_body_has(">reg-0011<");
    assert_body_has(">ven-0042<");
    assert_official();

    static const char r[] = "R|req-00bb";
    vtn_buf_reset(&Q.body);
    assert_int_equal(wk_render_queued(&Q.body, r, sizeof r - 1, "ven-0042"), 0);
    assert_body_has("oadrRequestReregistration");
    assert_body_has(">ven-0042<");
    assert_official();

    assert_int_equal(wk_render_queued(&Q.body, "X|1", 3, "v"), -EINVAL);
    assert_int_equal(wk_render_queued(&Q.body, "C|only", 6, "v"), -EINVAL);
    assert_int_equal(wk_render_queued(&Q.body, "C||reg", 6, "v"), -EINVAL);
    assert_int_equal(wk_render_queued(&Q.body, "C", 1, "v"), -EINVAL);
}

static void test_command_builder(void **state)
{
    (void)state;
    wk_req_reset(&Q);
    Q.w = &W;
    wk_rh a = wk_cmd(&Q, "SET", "k", "", NULL);
    wk_rh b = wk_eval(&Q, WK_SCRIPT_CAD, 1, "vtn:venname:a", "ven-1", NULL);
    assert_true(a > 0);
    assert_true(b > 0);
    assert_int_not_equal(a, b);
    assert_int_equal(Q.ncmds, 2);
    char want[512];
    snprintf(want, sizeof want,
             "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n"
             "*5\r\n$7\r\nEVALSHA\r\n$40\r\n%s\r\n$1\r\n1\r\n$13\r\nvtn:venname:a\r\n$5\r\nven-1"
             "\r\n",
             W.redis.sha[WK_SCRIPT_CAD]);
    assert_cmd(want);
    /* Binary-safe arguments. */
    const char *argv[2] = {"GET", "a\r\nb"};
    size_t lens[2] = {3, 4};
    wk_req_reset(&Q);
    Q.w = &W;
    assert_true(wk_cmd_argv(&Q, 2, argv, lens) > 0);
    assert_cmd("*2\r\n$3\r\nGET\r\n$4\r\na\r\nb\r\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_route_table),
        cmocka_unit_test(test_query_without_redis),
        cmocka_unit_test(test_malformed_xml),
        cmocka_unit_test(test_push_without_address),
        cmocka_unit_test(test_poll_plan_and_redis_down),
        cmocka_unit_test(test_create_plan),
        cmocka_unit_test(test_cancel_plan),
        cmocka_unit_test(test_unsupported_checks_registration),
        cmocka_unit_test(test_poll_stages),
        cmocka_unit_test(test_poll_event_stages),
        cmocka_unit_test(test_request_event_stages),
        cmocka_unit_test(test_created_event_stages),
        cmocka_unit_test(test_create_stages),
        cmocka_unit_test(test_storage_full),
        cmocka_unit_test(test_reregistration_stages),
        cmocka_unit_test(test_cancel_stages),
        cmocka_unit_test(test_unsupported_stages),
        cmocka_unit_test(test_create_opt_past_schedule),
        cmocka_unit_test(test_cancel_opt_stages),
        cmocka_unit_test(test_cancel_opt_unknown),
        cmocka_unit_test(test_handles),
        cmocka_unit_test(test_budget_batch),
        cmocka_unit_test(test_slow_thread),
        cmocka_unit_test(test_api_auth_and_routing),
        cmocka_unit_test(test_api_plans),
        cmocka_unit_test(test_render_queued),
        cmocka_unit_test(test_command_builder),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
